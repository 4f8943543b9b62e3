//! A memory store with hooks, so that a test can hold a write, or move the store on, at the
//! moment it chooses: everything else goes to the memory store as it is.

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use kubox_storage::memory::MemoryStore;
use kubox_storage::{
    CompactionPolicy, KeyValue, ListOptions, ListResult, ProgressRequester, ProgressWatchStream,
    Revision, Store, StoreResult, WatchStream,
};

type Hook<A, T> = Box<dyn Fn(A) -> BoxFuture<'static, T> + Send + Sync>;

#[derive(Default)]
pub struct HookedStore {
    inner: Arc<MemoryStore>,
    before_create: Option<Hook<String, ()>>,
    current_revision: Option<Hook<Arc<MemoryStore>, StoreResult<Revision>>>,
}

impl HookedStore {
    pub fn new() -> HookedStore {
        HookedStore::default()
    }

    /// Run `hook`, given the key, before each create goes to the store.
    pub fn before_create(
        mut self,
        hook: impl Fn(String) -> BoxFuture<'static, ()> + Send + Sync + 'static,
    ) -> HookedStore {
        self.before_create = Some(Box::new(hook));
        self
    }

    /// Answer `current_revision` with `hook`, given the memory store.
    pub fn current_revision(
        mut self,
        hook: impl Fn(Arc<MemoryStore>) -> BoxFuture<'static, StoreResult<Revision>>
            + Send
            + Sync
            + 'static,
    ) -> HookedStore {
        self.current_revision = Some(Box::new(hook));
        self
    }

    pub fn into_dyn(self) -> kubox_storage::DynStore {
        Arc::new(self)
    }
}

#[async_trait::async_trait]
impl Store for HookedStore {
    async fn current_revision(&self) -> StoreResult<Revision> {
        match &self.current_revision {
            Some(hook) => hook(self.inner.clone()).await,
            None => self.inner.current_revision().await,
        }
    }
    async fn get(&self, key: &str, revision: Option<Revision>) -> StoreResult<KeyValue> {
        self.inner.get(key, revision).await
    }
    async fn list(&self, prefix: &str, opts: ListOptions) -> StoreResult<ListResult> {
        self.inner.list(prefix, opts).await
    }
    async fn count(&self, prefix: &str) -> StoreResult<usize> {
        self.inner.count(prefix).await
    }
    async fn create(&self, key: &str, value: Bytes) -> StoreResult<KeyValue> {
        if let Some(hook) = &self.before_create {
            hook(key.to_string()).await;
        }
        self.inner.create(key, value).await
    }
    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Option<Revision>,
    ) -> StoreResult<KeyValue> {
        self.inner.update(key, value, expected).await
    }
    async fn delete(
        &self,
        key: &str,
        expected: Option<Revision>,
    ) -> StoreResult<(KeyValue, Revision)> {
        self.inner.delete(key, expected).await
    }
    async fn watch(&self, prefix: &str, start: Revision) -> StoreResult<WatchStream> {
        self.inner.watch(prefix, start).await
    }
    async fn watch_progress(
        &self,
        prefix: &str,
        start: Revision,
    ) -> StoreResult<(ProgressWatchStream, Arc<dyn ProgressRequester>)> {
        self.inner.watch_progress(prefix, start).await
    }
    async fn compact(&self, revision: Revision) -> StoreResult<()> {
        self.inner.compact(revision).await
    }
    async fn compacted_revision(&self) -> StoreResult<Revision> {
        self.inner.compacted_revision().await
    }
    async fn compact_by_policy(&self, policy: CompactionPolicy) -> StoreResult<Revision> {
        self.inner.compact_by_policy(policy).await
    }
    async fn close(&self) -> StoreResult<()> {
        self.inner.close().await
    }
}
