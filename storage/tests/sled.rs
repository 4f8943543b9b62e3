kubox_storage::store_suite!(kubox_storage::testing::sled_fixture);
