//! A revisioned key-value store with watch, modelled on etcd v3.
//!
//! One store-wide revision (an `i64` greater than zero) is bumped exactly once per write. Every key
//! carries its `create_revision`, `mod_revision` and `version`. The revision is what the API server
//! hands out as `resourceVersion`.
//!
//! The [`Store`] trait is the whole contract; [`memory::MemoryStore`] is the reference backend and
//! [`sled_store::SledStore`] the durable default. [`testing::store_suite!`] runs the same behaviour
//! suite against any backend.
#![warn(missing_docs)]

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::Stream;

pub mod clock;
mod commit_log;
#[cfg(feature = "etcd")]
pub mod etcd;
#[cfg(feature = "etcd")]
pub mod etcd_process;
pub mod image;
pub mod memory;
mod mvcc;
pub mod sled_store;
pub mod testing;

pub use clock::{Clock, ManualClock, SystemClock};
pub use image::Image;

/// A store-wide revision. Strictly increasing, bumped once per write, always > 0 once written.
pub type Revision = i64;

/// A key with its value and revision metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    /// The key.
    pub key: Arc<str>,
    /// The value bytes (empty for the key of a delete event).
    pub value: Bytes,
    /// Revision at which the key was (last) created.
    pub create_revision: Revision,
    /// Revision of the last modification.
    pub mod_revision: Revision,
    /// Number of modifications since creation (1 after create).
    pub version: i64,
}

/// What happened to a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// Created or updated.
    Put,
    /// Deleted.
    Delete,
}

/// One write, as a watcher sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Put or Delete.
    pub kind: EventKind,
    /// For Put: the new key-value. For Delete: the key, an empty value, and `mod_revision` set to
    /// the revision of the delete.
    pub kv: KeyValue,
    /// The value before this write (None for a create). Boxed: most events of a store's
    /// history are creates, and an event without it fits a smaller allocation.
    pub prev: Option<Box<KeyValue>>,
}

impl Event {
    /// The revision of this write.
    pub fn revision(&self) -> Revision {
        self.kv.mod_revision
    }
}

/// Everything that can go wrong, in one enum, so the server can map each to an HTTP status.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    /// The key does not exist (at the requested revision).
    #[error("key not found: {0}")]
    NotFound(String),
    /// Create of a key that exists.
    #[error("key already exists: {0}")]
    AlreadyExists(String),
    /// A precondition on `mod_revision` failed. Carries the current value (None if the key is gone).
    #[error("conflict on {key}: expected mod_revision {expected}")]
    Conflict {
        /// The key.
        key: String,
        /// The mod_revision the caller expected.
        expected: Revision,
        /// The current value, if the key still exists.
        current: Option<Box<KeyValue>>,
    },
    /// The requested revision has been compacted away.
    #[error(
        "required revision {requested} has been compacted (compacted revision {compact_revision})"
    )]
    Compacted {
        /// What was asked for.
        requested: Revision,
        /// The oldest revision still readable minus one (etcd semantics: revisions <= this are gone).
        compact_revision: Revision,
    },
    /// The requested revision is newer than the store's current revision.
    #[error("required revision {requested} is a future revision (current revision {current})")]
    FutureRevision {
        /// What was asked for.
        requested: Revision,
        /// The store's current revision.
        current: Revision,
    },
    /// The store cannot serve right now (closed, shutting down, a watcher fell too far behind).
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// IO error, corruption, a bad continue token: a bug or a broken disk, never a client's fault
    /// except for [`StoreError::InvalidContinue`].
    #[error("storage internal error: {0}")]
    Internal(String),
    /// A continue token that this store did not produce or cannot decode.
    #[error("invalid continue token: {0}")]
    InvalidContinue(String),
}

/// Result alias for store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// Options for [`Store::list`].
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    /// Read at this revision; `None` or `Some(0)` means the current revision.
    /// Ignored when `continue_token` is set (the token carries the revision of the first page).
    pub revision: Option<Revision>,
    /// At most this many items; `None` or `Some(0)` means no limit.
    pub limit: Option<usize>,
    /// A token from a previous page of the same prefix.
    pub continue_token: Option<String>,
}

/// One page of a list.
#[derive(Clone, Debug, Default)]
pub struct ListResult {
    /// The items, in key order.
    pub items: Vec<KeyValue>,
    /// The revision the list was served at (every page of one list has the same).
    pub revision: Revision,
    /// Present when more items follow.
    pub continue_token: Option<String>,
    /// How many items remain after this page (only when `continue_token` is set).
    pub remaining: Option<usize>,
}

/// A watch: history from the start revision, then live events, in revision order, no gaps and no
/// duplicates. The stream ends with an `Err` when the watcher is cut off (fell behind, compacted,
/// store closed).
pub type WatchStream = Pin<Box<dyn Stream<Item = StoreResult<Arc<Event>>> + Send>>;

/// One item of a watch that reports its progress: an event, or `Progress(r)`, which says every
/// event at or below revision `r` under the watched prefix has been yielded (etcd's progress
/// notification).
#[derive(Clone, Debug)]
pub enum WatchItem {
    /// A write under the prefix.
    Event(Arc<Event>),
    /// Every event at or below this revision was yielded before.
    Progress(Revision),
}

/// A watch that reports progress when asked: [`WatchStream`]'s events and errors, with
/// [`WatchItem::Progress`] in between.
pub type ProgressWatchStream = Pin<Box<dyn Stream<Item = StoreResult<WatchItem>> + Send>>;

/// Asks a [`ProgressWatchStream`] where it stands (etcd's `RequestProgress`): the stream then
/// yields a [`WatchItem::Progress`] at the newest revision the store has dispatched to watchers,
/// after every event up to it.
pub trait ProgressRequester: Send + Sync {
    /// Ask for one progress item (requests before it is yielded are answered together).
    fn request_progress(&self);
}

/// How much history compaction keeps: both bounds hold (the stricter wins).
#[derive(Clone, Copy, Debug)]
pub struct CompactionPolicy {
    /// Keep every revision written within this long...
    pub min_age: Duration,
    /// ...and at least this many most recent revisions...
    pub min_revisions: i64,
    /// ...unless the history kept (the values written since the compacted revision) grows
    /// beyond this many bytes: then compact until it holds half of it, whatever its age.
    pub max_history_bytes: u64,
}

impl Default for CompactionPolicy {
    fn default() -> Self {
        CompactionPolicy {
            min_age: Duration::from_secs(300),
            min_revisions: 10_000,
            max_history_bytes: 64 * 1024 * 1024,
        }
    }
}

/// The storage contract. One store-wide revision, etcd style.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// The current revision (0 for an empty, never-written store).
    async fn current_revision(&self) -> StoreResult<Revision>;

    /// Read a key at the current revision, or at `revision` (> 0) in the past.
    async fn get(&self, key: &str, revision: Option<Revision>) -> StoreResult<KeyValue>;

    /// List keys starting with `prefix`, in key order, one page at a time.
    async fn list(&self, prefix: &str, opts: ListOptions) -> StoreResult<ListResult>;

    /// How many keys start with `prefix` at the current revision.
    async fn count(&self, prefix: &str) -> StoreResult<usize>;

    /// Create a key that does not exist yet. Returns the stored key-value.
    async fn create(&self, key: &str, value: Bytes) -> StoreResult<KeyValue>;

    /// Replace a key's value. With `expected = Some(rev)` the key's mod_revision must equal `rev`,
    /// otherwise [`StoreError::Conflict`] carries the current value. The key must exist.
    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Option<Revision>,
    ) -> StoreResult<KeyValue>;

    /// Delete a key, optionally only at an expected mod_revision. Returns the deleted key-value
    /// (as it was) and the revision of the delete.
    async fn delete(
        &self,
        key: &str,
        expected: Option<Revision>,
    ) -> StoreResult<(KeyValue, Revision)>;

    /// Watch every key starting with `prefix`, from revision `start` (inclusive; `0` = only live
    /// events after the current revision).
    async fn watch(&self, prefix: &str, start: Revision) -> StoreResult<WatchStream>;

    /// [`Store::watch`], reporting progress when asked through the returned requester: what a
    /// cache above the store uses to learn it is as fresh as the store although nothing under
    /// its prefix changed.
    async fn watch_progress(
        &self,
        prefix: &str,
        start: Revision,
    ) -> StoreResult<(ProgressWatchStream, Arc<dyn ProgressRequester>)>;

    /// Forget history at and below `revision`: reads and watches at or below it fail with
    /// [`StoreError::Compacted`]. The latest value of each live key is kept.
    async fn compact(&self, revision: Revision) -> StoreResult<()>;

    /// The current compacted revision (0 if never compacted).
    async fn compacted_revision(&self) -> StoreResult<Revision>;

    /// Compact according to a policy, using the store's clock. Returns the new compacted revision.
    async fn compact_by_policy(&self, policy: CompactionPolicy) -> StoreResult<Revision>;

    /// Make every acknowledged write durable and stop accepting writes; watches end.
    async fn close(&self) -> StoreResult<()>;

    /// Whether the store can take writes: Err says why not (a failed disk). Reads and watches
    /// of what is stored go on either way.
    fn health(&self) -> StoreResult<()> {
        Ok(())
    }
}

/// A shared, dynamically dispatched store: what the server holds.
pub type DynStore = Arc<dyn Store>;

/// The wall-clock time of a revision boundary, used by [`Store::compact_by_policy`].
pub(crate) fn unix_millis(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
