kubox_storage::store_suite!(kubox_storage::testing::memory_fixture);

/// The suite again on a memory store that has already written: a fresh store need not start at
/// revision 0, and no case may count revisions from 0.
mod after_writes {
    use kubox_storage::memory::{MemoryOptions, MemoryStore};
    use kubox_storage::testing::SuiteConfig;
    use kubox_storage::Store;

    /// A memory store at revision 2 with no keys and nothing compacted: `/a` was created, then
    /// deleted.
    #[allow(clippy::expect_used)]
    async fn fixture(config: SuiteConfig) -> MemoryStore {
        let store = MemoryStore::with_options(MemoryOptions {
            clock: config.clock,
            watch_backlog: config.watch_backlog,
        });
        store
            .create("/a", bytes::Bytes::from_static(b"before"))
            .await
            .expect("create /a");
        store.delete("/a", None).await.expect("delete /a");
        assert_eq!(store.current_revision().await.expect("revision"), 2);
        assert_eq!(store.count("").await.expect("count"), 0);
        assert_eq!(store.compacted_revision().await.expect("compacted"), 0);
        store
    }

    kubox_storage::store_suite!(fixture);
}
