kubox_storage::store_suite!(kubox_storage::testing::memory_fixture);
