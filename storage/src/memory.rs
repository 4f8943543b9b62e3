//! The in-memory reference backend.
//!
//! Invariants: every write is applied, visible to readers and published to watchers before the
//! call returns (there is nothing to make durable); all state is lost when the store is dropped.
//! Behaviour is otherwise identical to the durable backend (same MVCC core, same suite).

use std::sync::Arc;

use bytes::Bytes;

use crate::mvcc::{Core, Op, State, DEFAULT_WATCH_BACKLOG};
use crate::{
    Clock, CompactionPolicy, KeyValue, ListOptions, ListResult, ProgressRequester,
    ProgressWatchStream, Revision, Store, StoreError, StoreResult, SystemClock, WatchStream,
};

/// Options for [`MemoryStore::with_options`].
#[derive(Clone, Debug)]
pub struct MemoryOptions {
    /// The clock used by [`Store::compact_by_policy`].
    pub clock: Arc<dyn Clock>,
    /// How many undelivered events a watcher may have queued before it is cut off with
    /// [`StoreError::Unavailable`].
    pub watch_backlog: usize,
}

impl Default for MemoryOptions {
    fn default() -> Self {
        MemoryOptions {
            clock: Arc::new(SystemClock),
            watch_backlog: DEFAULT_WATCH_BACKLOG,
        }
    }
}

/// A store that lives in memory only: the reference implementation of [`Store`].
#[derive(Clone)]
pub struct MemoryStore {
    core: Arc<Core>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("revision", &self.core.visible_revision())
            .finish()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store on the system clock.
    pub fn new() -> Self {
        Self::with_options(MemoryOptions::default())
    }

    /// An empty store on the given clock.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self::with_options(MemoryOptions {
            clock,
            ..MemoryOptions::default()
        })
    }

    /// A store holding exactly what `image` holds, its history compacted at the image's
    /// revision (the next write gets the revision after it). The values' bytes are shared with
    /// the image.
    pub fn from_image(image: &crate::Image, opts: MemoryOptions) -> StoreResult<Self> {
        Ok(MemoryStore {
            core: Arc::new(Core::new(
                crate::image::state_of(image)?,
                opts.clock,
                opts.watch_backlog,
                true,
            )),
        })
    }

    /// An empty store with explicit options.
    pub fn with_options(opts: MemoryOptions) -> Self {
        MemoryStore {
            core: Arc::new(Core::new(
                State::empty(),
                opts.clock,
                opts.watch_backlog,
                true,
            )),
        }
    }

    fn write(&self, key: &str, op: Op) -> StoreResult<Arc<crate::Event>> {
        self.core.write(key, op, |_, _| {}).map_err(|r| r.error)
    }
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    async fn current_revision(&self) -> StoreResult<Revision> {
        Ok(self.core.visible_revision())
    }

    async fn get(&self, key: &str, revision: Option<Revision>) -> StoreResult<KeyValue> {
        self.core.get(key, revision)
    }

    async fn list(&self, prefix: &str, opts: ListOptions) -> StoreResult<ListResult> {
        self.core.list(prefix, &opts)
    }

    async fn count(&self, prefix: &str) -> StoreResult<usize> {
        Ok(self.core.count(prefix))
    }

    async fn create(&self, key: &str, value: Bytes) -> StoreResult<KeyValue> {
        Ok(self.write(key, Op::Create(value))?.kv.clone())
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Option<Revision>,
    ) -> StoreResult<KeyValue> {
        Ok(self.write(key, Op::Update(value, expected))?.kv.clone())
    }

    async fn delete(
        &self,
        key: &str,
        expected: Option<Revision>,
    ) -> StoreResult<(KeyValue, Revision)> {
        let event = self.write(key, Op::Delete(expected))?;
        let prev = event
            .prev
            .as_deref()
            .cloned()
            .ok_or_else(|| StoreError::Internal("delete without a previous value".into()))?;
        Ok((prev, event.revision()))
    }

    async fn watch(&self, prefix: &str, start: Revision) -> StoreResult<WatchStream> {
        self.core.watch(prefix, start)
    }

    async fn watch_progress(
        &self,
        prefix: &str,
        start: Revision,
    ) -> StoreResult<(ProgressWatchStream, Arc<dyn ProgressRequester>)> {
        self.core.watch_progress(prefix, start)
    }

    async fn compact(&self, revision: Revision) -> StoreResult<()> {
        let _serial = self.core.compact_lock.lock();
        self.core.compact(revision).map(|_| ())
    }

    async fn compacted_revision(&self) -> StoreResult<Revision> {
        Ok(self.core.compacted_revision())
    }

    async fn compact_by_policy(&self, policy: CompactionPolicy) -> StoreResult<Revision> {
        let _serial = self.core.compact_lock.lock();
        let target = self.core.policy_target(policy);
        if target > self.core.compacted_revision() {
            self.core.compact(target)?;
        }
        Ok(self.core.compacted_revision())
    }

    async fn close(&self) -> StoreResult<()> {
        self.core.close_writes();
        self.core
            .close_watches(StoreError::Unavailable("store is closed".into()));
        Ok(())
    }
}
