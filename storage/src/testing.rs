//! The behaviour suite every backend must pass, and its test support.
//!
//! `kubox_storage::store_suite!(factory)` expands to one `#[test]` per case in [`cases`]. The
//! factory is an async function (or closure) taking a [`SuiteConfig`] and returning anything that
//! converts into a [`Fixture`] (a store, or a store plus a guard such as a temporary directory):
//!
//! ```text
//! kubox_storage::store_suite!(kubox_storage::testing::memory_fixture);
//! ```
//!
//! Invariants: every case gets a fresh store; cases synchronise only on store results and stream
//! items (never on sleeps); a time-out only turns a hang into a failure.
//!
//! A fresh store has no keys and nothing compacted, but its revision need not be 0 (a backend may
//! start higher, or a fixture may have written and deleted keys): cases read it before writing
//! and count every revision from there.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::any::Any;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::memory::{MemoryOptions, MemoryStore};
use crate::mvcc::DEFAULT_WATCH_BACKLOG;
use crate::sled_store::{SledOptions, SledStore};
use crate::{Clock, ManualClock, Store};

/// How a case wants its store built.
#[derive(Clone, Debug)]
pub struct SuiteConfig {
    /// The clock the store must use for [`Store::compact_by_policy`].
    pub clock: Arc<dyn Clock>,
    /// The store's watch backlog (events queued per watcher before it is cut off).
    pub watch_backlog: usize,
}

impl Default for SuiteConfig {
    fn default() -> Self {
        SuiteConfig {
            clock: Arc::new(ManualClock::default()),
            watch_backlog: DEFAULT_WATCH_BACKLOG,
        }
    }
}

/// A store under test, plus whatever must outlive it (dropped after the store).
pub struct Fixture {
    /// The store.
    pub store: Arc<dyn Store>,
    // Declared after `store`, so dropped after it: a database closes before its directory goes.
    _guard: Option<Box<dyn Any + Send + Sync>>,
}

impl Fixture {
    /// A fixture that is just a store.
    pub fn new(store: impl Store) -> Self {
        Fixture {
            store: Arc::new(store),
            _guard: None,
        }
    }

    /// A store plus a guard (e.g. its temporary directory) dropped after it.
    pub fn with_guard(store: impl Store, guard: impl Any + Send + Sync) -> Self {
        Fixture {
            store: Arc::new(store),
            _guard: Some(Box::new(guard)),
        }
    }
}

impl From<MemoryStore> for Fixture {
    fn from(store: MemoryStore) -> Self {
        Fixture::new(store)
    }
}

impl From<SledStore> for Fixture {
    fn from(store: SledStore) -> Self {
        Fixture::new(store)
    }
}

impl<S: Store, G: Any + Send + Sync> From<(S, G)> for Fixture {
    fn from((store, guard): (S, G)) -> Self {
        Fixture::with_guard(store, guard)
    }
}

/// Builds a fresh store per case. Implemented for every `Fn(SuiteConfig) -> impl Future`.
pub trait Factory: Send + Sync {
    /// A fresh store configured as asked.
    fn make(&self, config: SuiteConfig) -> Pin<Box<dyn Future<Output = Fixture> + Send + 'static>>;
}

impl<F, Fut, T> Factory for F
where
    F: Fn(SuiteConfig) -> Fut + Send + Sync,
    Fut: Future<Output = T> + Send + 'static,
    T: Into<Fixture> + 'static,
{
    fn make(&self, config: SuiteConfig) -> Pin<Box<dyn Future<Output = Fixture> + Send + 'static>> {
        let fut = self(config);
        Box::pin(async move { fut.await.into() })
    }
}

/// Identity, to give a factory closure its parameter type.
pub fn factory<F, Fut, T>(f: F) -> F
where
    F: Fn(SuiteConfig) -> Fut + Send + Sync,
    Fut: Future<Output = T> + Send + 'static,
    T: Into<Fixture> + 'static,
{
    f
}

/// A fresh [`MemoryStore`].
pub async fn memory_fixture(config: SuiteConfig) -> MemoryStore {
    MemoryStore::with_options(MemoryOptions {
        clock: config.clock,
        watch_backlog: config.watch_backlog,
    })
}

/// A fresh [`SledStore`] in a temporary directory.
pub async fn sled_fixture(config: SuiteConfig) -> (SledStore, TempDir) {
    let dir = TempDir::new("suite");
    let opts = SledOptions {
        clock: config.clock,
        watch_backlog: config.watch_backlog,
        ..SledOptions::default()
    };
    let store = SledStore::open_with(dir.path(), opts).expect("open sled store");
    (store, dir)
}

/// A directory under the system temporary directory, removed on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Create a new, empty, uniquely named directory.
    pub fn new(label: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "kubox-storage-{label}-{}-{nanos}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("create temporary directory");
        TempDir { path }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Run one async case on a fresh two-thread runtime, failing it if it takes over two minutes.
pub fn block_on<F: Future<Output = ()>>(case: F) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("build tokio runtime");
    runtime.block_on(async {
        tokio::time::timeout(std::time::Duration::from_secs(120), case)
            .await
            .expect("case timed out");
    });
}

/// The deterministic write load of the crash test: what task `task` does as its `seq`-th write.
pub mod crash {
    /// One write of the crash load.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum CrashOp {
        /// Create `key` with `value`.
        Create(String, String),
        /// Update `key` to `value`.
        Update(String, String),
        /// Delete `key`.
        Delete(String),
    }

    impl CrashOp {
        /// The key written.
        pub fn key(&self) -> &str {
            match self {
                CrashOp::Create(k, _) | CrashOp::Update(k, _) | CrashOp::Delete(k) => k,
            }
        }
    }

    /// Task `task`'s `seq`-th write: create a key, update it, then delete it (odd keys) or
    /// update it again (even keys), and move on to the next key.
    pub fn op(task: usize, seq: usize) -> CrashOp {
        let n = seq / 3;
        let key = format!("/crash/{task:03}/{n:07}");
        match (seq % 3, n % 2) {
            (0, _) => CrashOp::Create(key, format!("c-{task}-{n}")),
            (1, _) => CrashOp::Update(key, format!("u-{task}-{n}")),
            (_, 1) => CrashOp::Delete(key),
            _ => CrashOp::Update(key, format!("w-{task}-{n}")),
        }
    }

    /// `value` made larger than sled's blob threshold (items over about 128 KiB go to files of
    /// their own): the crash writer's `large` mode writes these.
    pub fn large(value: &str) -> String {
        format!("{value}:{}", "x".repeat(140 * 1024))
    }

    /// The value of `key` after task `task` applied its writes `0..count` (None: absent).
    pub fn expected_after(task: usize, count: usize, key: &str) -> Option<String> {
        let mut value = None;
        for seq in 0..count {
            match op(task, seq) {
                CrashOp::Create(k, v) | CrashOp::Update(k, v) if k == key => value = Some(v),
                CrashOp::Delete(k) if k == key => value = None,
                _ => {}
            }
        }
        value
    }
}

/// Expands to one `#[test]` per behaviour case, each on a fresh store from `$factory`.
#[macro_export]
macro_rules! store_suite {
    ($factory:expr) => {
        $crate::__store_suite_cases!($factory;
            empty_store_has_no_keys_and_nothing_compacted,
            create_sets_version_one_and_both_revisions,
            create_of_existing_key_fails_with_already_exists,
            every_write_bumps_the_revision_by_exactly_one,
            refused_writes_do_not_bump_the_revision,
            get_of_missing_key_returns_not_found,
            values_are_stored_byte_for_byte,
            update_increments_version_and_keeps_create_revision,
            update_of_missing_key_returns_not_found,
            update_with_stale_mod_revision_conflicts_and_carries_current_value,
            update_with_matching_mod_revision_succeeds,
            unconditional_update_always_succeeds,
            delete_returns_previous_value_and_delete_revision,
            delete_of_missing_key_returns_not_found,
            delete_with_stale_mod_revision_conflicts_and_keeps_key,
            delete_with_matching_mod_revision_deletes,
            recreate_after_delete_resets_version_and_create_revision,
            get_at_past_revision_returns_value_as_of_then,
            get_at_revision_before_creation_returns_not_found,
            deleted_key_is_readable_at_revisions_before_the_delete,
            get_at_future_revision_returns_future_revision,
            get_at_compacted_revision_returns_compacted_and_just_above_works,
            list_returns_prefix_matches_in_key_order,
            list_skips_deleted_keys,
            list_at_past_revision_sees_the_state_then,
            list_at_future_revision_returns_future_revision,
            list_below_compaction_returns_compacted,
            list_without_limit_returns_everything_without_token,
            list_pages_with_limit_and_continue_token,
            continue_tokens_stay_consistent_while_writes_go_on,
            malformed_continue_token_returns_invalid_continue,
            continue_token_of_another_prefix_is_invalid,
            continue_token_whose_revision_was_compacted_returns_compacted,
            count_counts_live_keys_under_prefix,
            compaction_makes_old_revisions_unreadable,
            compaction_keeps_latest_value_of_every_live_key,
            deleted_key_stays_deleted_after_compaction,
            compact_to_future_revision_returns_future_revision,
            compaction_never_moves_backwards,
            compact_by_policy_keeps_at_least_min_revisions,
            compact_by_policy_keeps_revisions_younger_than_min_age,
            compact_by_policy_does_nothing_when_all_history_is_young,
            compact_by_policy_bounds_the_bytes_of_history_whatever_its_age,
            watch_from_compacted_revision_returns_compacted,
            watch_from_future_revision_returns_future_revision,
            watch_from_zero_only_sees_later_writes,
            watch_from_next_revision_is_live_only,
            watch_replays_history_then_streams_live_events,
            watch_only_sees_keys_under_its_prefix,
            watch_events_carry_previous_values,
            progress_reports_the_revision_reached_although_nothing_under_the_prefix_changed,
            progress_comes_after_every_event_it_covers,
            delete_event_has_empty_value_and_delete_revision,
            watch_history_live_seam_has_no_gap_or_duplicate_under_concurrent_writes,
            watch_sees_every_revision_once_in_order_under_8_concurrent_writers,
            slow_watcher_is_cut_off_while_writers_proceed,
            dropped_watchers_do_not_hold_back_writers_or_other_watchers,
            close_ends_watches_with_unavailable,
            close_refuses_writes_but_keeps_reads,
            watch_after_close_returns_unavailable,
            concurrent_creates_of_one_key_let_exactly_one_win,
            sixteen_tasks_cas_incrementing_one_key_end_at_2000,
        );
    };
}

#[doc(inline)]
pub use crate::store_suite;

/// Implementation detail of [`store_suite!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __store_suite_cases {
    ($factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                let factory = $crate::testing::factory($factory);
                $crate::testing::block_on(async move { $crate::testing::cases::$case(&factory).await });
            }
        )*
    };
}

/// The behaviour cases. Each takes a [`Factory`] and panics on a failed expectation.
pub mod cases {
    use std::collections::{BTreeMap, HashSet};
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;
    use futures::StreamExt;

    use super::{Factory, Fixture, SuiteConfig};
    use crate::{
        CompactionPolicy, Event, EventKind, KeyValue, ListOptions, ManualClock, Revision, Store,
        StoreError, WatchItem, WatchStream,
    };

    const WAIT: Duration = Duration::from_secs(60);

    async fn fresh(f: &dyn Factory) -> Fixture {
        f.make(SuiteConfig::default()).await
    }

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    async fn next(w: &mut WatchStream) -> Arc<Event> {
        match tokio::time::timeout(WAIT, w.next())
            .await
            .expect("watch event in time")
        {
            Some(Ok(ev)) => ev,
            Some(Err(e)) => panic!("watch failed: {e}"),
            None => panic!("watch ended"),
        }
    }

    async fn collect(w: &mut WatchStream, n: usize) -> Vec<Arc<Event>> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(next(w).await);
        }
        out
    }

    async fn fill(s: &dyn Store, prefix: &str, n: usize) -> Vec<KeyValue> {
        let mut out = Vec::new();
        for i in 0..n {
            out.push(
                s.create(&format!("{prefix}{i:04}"), b(&format!("v{i}")))
                    .await
                    .unwrap(),
            );
        }
        out
    }

    /// The revision of a fresh store before the case writes: 0, or above for a backend that
    /// starts higher. Its first write gets `base + 1`.
    async fn base_revision(s: &dyn Store) -> Revision {
        s.current_revision().await.unwrap()
    }

    fn assert_consecutive(events: &[Arc<Event>], first: Revision) {
        for (i, ev) in events.iter().enumerate() {
            assert_eq!(
                ev.revision(),
                first + i as Revision,
                "event {i} out of order or missing"
            );
        }
    }

    /// A new store has no keys and nothing compacted (0); lists are served at its current
    /// revision (0 or above, depending on the backend), and reads do not move it.
    pub async fn empty_store_has_no_keys_and_nothing_compacted(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        let base = base_revision(s).await;
        assert!(base >= 0, "revision {base}");
        assert_eq!(s.compacted_revision().await.unwrap(), 0);
        assert!(matches!(
            s.get("/a", None).await,
            Err(StoreError::NotFound(_))
        ));
        let list = s.list("", ListOptions::default()).await.unwrap();
        assert!(list.items.is_empty());
        assert_eq!(list.revision, base);
        assert_eq!(s.count("").await.unwrap(), 0);
        assert_eq!(s.current_revision().await.unwrap(), base);
    }

    /// Create stores version 1 with create_revision = mod_revision = the new revision.
    pub async fn create_sets_version_one_and_both_revisions(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        let base = base_revision(s).await;
        let kv = s.create("/a", b("1")).await.unwrap();
        assert_eq!(
            (&*kv.key, kv.value.as_ref(), kv.version),
            ("/a", &b"1"[..], 1)
        );
        assert_eq!((kv.create_revision, kv.mod_revision), (base + 1, base + 1));
        assert_eq!(s.get("/a", None).await.unwrap(), kv);
        assert_eq!(s.current_revision().await.unwrap(), base + 1);
    }

    /// A second create of the same key fails and changes nothing.
    pub async fn create_of_existing_key_fails_with_already_exists(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        let base = base_revision(s).await;
        let kv = s.create("/a", b("1")).await.unwrap();
        assert_eq!(
            s.create("/a", b("2")).await,
            Err(StoreError::AlreadyExists("/a".into()))
        );
        assert_eq!(s.get("/a", None).await.unwrap(), kv);
        assert_eq!(s.current_revision().await.unwrap(), base + 1);
    }

    /// Creates, updates and deletes each move the store revision by exactly one.
    pub async fn every_write_bumps_the_revision_by_exactly_one(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        let base = base_revision(s).await;
        assert_eq!(s.create("/a", b("1")).await.unwrap().mod_revision, base + 1);
        assert_eq!(s.create("/b", b("1")).await.unwrap().mod_revision, base + 2);
        assert_eq!(
            s.update("/a", b("2"), None).await.unwrap().mod_revision,
            base + 3
        );
        assert_eq!(s.delete("/b", None).await.unwrap().1, base + 4);
        assert_eq!(
            s.create("/b", b("again")).await.unwrap().mod_revision,
            base + 5
        );
        assert_eq!(s.current_revision().await.unwrap(), base + 5);
    }

    /// Refused writes (exists, missing, conflict) leave the revision alone.
    pub async fn refused_writes_do_not_bump_the_revision(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        let base = base_revision(s).await;
        s.create("/a", b("1")).await.unwrap();
        assert!(s.create("/a", b("1")).await.is_err());
        assert!(s.update("/missing", b("1"), None).await.is_err());
        assert!(s.update("/a", b("1"), Some(base + 99)).await.is_err());
        assert!(s.delete("/a", Some(base + 99)).await.is_err());
        assert!(s.delete("/missing", None).await.is_err());
        assert_eq!(s.current_revision().await.unwrap(), base + 1);
        assert_eq!(s.create("/b", b("1")).await.unwrap().mod_revision, base + 2);
    }

    /// Get of a key that never existed is NotFound.
    pub async fn get_of_missing_key_returns_not_found(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        s.create("/a", b("1")).await.unwrap();
        assert_eq!(
            s.get("/b", None).await,
            Err(StoreError::NotFound("/b".into()))
        );
        assert!(matches!(
            s.get("/a/", None).await,
            Err(StoreError::NotFound(_))
        ));
    }

    /// Empty, binary and large values come back unchanged; keys sort bytewise.
    pub async fn values_are_stored_byte_for_byte(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        let big: Bytes = (0..200_000u32)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<u8>>()
            .into();
        let binary = Bytes::from_static(b"\x00\xff\x00\n");
        s.create("/v/empty", Bytes::new()).await.unwrap();
        s.create("/v/binary", binary.clone()).await.unwrap();
        s.create("/v/big", big.clone()).await.unwrap();
        s.create("/v/é", b("unicode")).await.unwrap();
        s.create("/v/z", b("z")).await.unwrap();
        assert_eq!(s.get("/v/empty", None).await.unwrap().value, Bytes::new());
        assert_eq!(s.get("/v/binary", None).await.unwrap().value, binary);
        assert_eq!(s.get("/v/big", None).await.unwrap().value, big);
        let keys: Vec<String> = s
            .list("/v/", ListOptions::default())
            .await
            .unwrap()
            .items
            .iter()
            .map(|kv| kv.key.to_string())
            .collect();
        assert_eq!(keys, ["/v/big", "/v/binary", "/v/empty", "/v/z", "/v/é"]);
    }

    /// Update bumps version, sets mod_revision, keeps create_revision.
    pub async fn update_increments_version_and_keeps_create_revision(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        let base = base_revision(s).await;
        s.create("/other", b("x")).await.unwrap();
        let created = s.create("/a", b("1")).await.unwrap();
        let u1 = s.update("/a", b("2"), None).await.unwrap();
        let u2 = s.update("/a", b("3"), None).await.unwrap();
        assert_eq!((u1.version, u2.version), (2, 3));
        assert_eq!(
            (u1.create_revision, u2.create_revision),
            (created.create_revision, created.create_revision)
        );
        assert_eq!((u1.mod_revision, u2.mod_revision), (base + 3, base + 4));
        assert_eq!(s.get("/a", None).await.unwrap(), u2);
    }

    /// Update of a missing key is NotFound, with or without a precondition.
    pub async fn update_of_missing_key_returns_not_found(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        let base = base_revision(s).await;
        assert_eq!(
            s.update("/a", b("1"), None).await,
            Err(StoreError::NotFound("/a".into()))
        );
        assert!(matches!(
            s.update("/a", b("1"), Some(base + 1)).await,
            Err(StoreError::NotFound(_))
        ));
        s.create("/a", b("1")).await.unwrap();
        s.delete("/a", None).await.unwrap();
        assert!(matches!(
            s.update("/a", b("1"), None).await,
            Err(StoreError::NotFound(_))
        ));
    }

    /// A stale expected mod_revision is a Conflict carrying the current value.
    pub async fn update_with_stale_mod_revision_conflicts_and_carries_current_value(
        f: &dyn Factory,
    ) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        let old = s.create("/a", b("1")).await.unwrap();
        let cur = s.update("/a", b("2"), None).await.unwrap();
        match s.update("/a", b("3"), Some(old.mod_revision)).await {
            Err(StoreError::Conflict {
                key,
                expected,
                current,
            }) => {
                assert_eq!(key, "/a");
                assert_eq!(expected, old.mod_revision);
                assert_eq!(current.as_deref(), Some(&cur));
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
        assert_eq!(s.get("/a", None).await.unwrap(), cur);
    }

    /// A matching expected mod_revision lets the update through.
    pub async fn update_with_matching_mod_revision_succeeds(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        let kv = s.create("/a", b("1")).await.unwrap();
        let u = s.update("/a", b("2"), Some(kv.mod_revision)).await.unwrap();
        assert_eq!(u.value, b("2"));
        let u2 = s.update("/a", b("3"), Some(u.mod_revision)).await.unwrap();
        assert_eq!(u2.version, 3);
    }

    /// Without a precondition an update of an existing key always wins.
    pub async fn unconditional_update_always_succeeds(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        s.create("/a", b("0")).await.unwrap();
        for i in 1..=20 {
            assert_eq!(
                s.update("/a", b(&i.to_string()), None)
                    .await
                    .unwrap()
                    .version,
                i + 1
            );
        }
        assert_eq!(s.get("/a", None).await.unwrap().value, b("20"));
    }

    /// Delete returns the value as it was and the delete's revision; the key is gone.
    pub async fn delete_returns_previous_value_and_delete_revision(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        let base = base_revision(s).await;
        s.create("/a", b("1")).await.unwrap();
        let cur = s.update("/a", b("2"), None).await.unwrap();
        let (prev, rev) = s.delete("/a", None).await.unwrap();
        assert_eq!(prev, cur);
        assert_eq!(rev, base + 3);
        assert_eq!(s.current_revision().await.unwrap(), base + 3);
        assert!(matches!(
            s.get("/a", None).await,
            Err(StoreError::NotFound(_))
        ));
    }

    /// Delete of a missing (or already deleted) key is NotFound.
    pub async fn delete_of_missing_key_returns_not_found(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        let base = base_revision(s).await;
        assert_eq!(
            s.delete("/a", None).await,
            Err(StoreError::NotFound("/a".into()))
        );
        s.create("/a", b("1")).await.unwrap();
        s.delete("/a", None).await.unwrap();
        assert!(matches!(
            s.delete("/a", None).await,
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            s.delete("/a", Some(base + 1)).await,
            Err(StoreError::NotFound(_))
        ));
    }

    /// Delete with a stale expected mod_revision conflicts and the key survives.
    pub async fn delete_with_stale_mod_revision_conflicts_and_keeps_key(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        let old = s.create("/a", b("1")).await.unwrap();
        let cur = s.update("/a", b("2"), None).await.unwrap();
        match s.delete("/a", Some(old.mod_revision)).await {
            Err(StoreError::Conflict {
                expected, current, ..
            }) => {
                assert_eq!(expected, old.mod_revision);
                assert_eq!(current.as_deref(), Some(&cur));
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
        assert_eq!(s.get("/a", None).await.unwrap(), cur);
    }

    /// Delete with the current mod_revision deletes.
    pub async fn delete_with_matching_mod_revision_deletes(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        let base = base_revision(s).await;
        let kv = s.create("/a", b("1")).await.unwrap();
        let (prev, rev) = s.delete("/a", Some(kv.mod_revision)).await.unwrap();
        assert_eq!(prev, kv);
        assert_eq!(rev, base + 2);
        assert!(matches!(
            s.get("/a", None).await,
            Err(StoreError::NotFound(_))
        ));
    }

    /// A key created again after a delete starts over at version 1 with a new create_revision.
    pub async fn recreate_after_delete_resets_version_and_create_revision(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        let base = base_revision(s).await;
        s.create("/a", b("1")).await.unwrap();
        s.update("/a", b("2"), None).await.unwrap();
        s.delete("/a", None).await.unwrap();
        let again = s.create("/a", b("3")).await.unwrap();
        assert_eq!(again.version, 1);
        assert_eq!(again.create_revision, base + 4);
        assert_eq!(again.mod_revision, base + 4);
        let u = s.update("/a", b("4"), None).await.unwrap();
        assert_eq!((u.version, u.create_revision), (2, base + 4));
    }

    /// Get at a past revision returns the value as it was then.
    pub async fn get_at_past_revision_returns_value_as_of_then(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        let base = base_revision(s).await;
        let v1 = s.create("/a", b("1")).await.unwrap();
        s.create("/b", b("x")).await.unwrap();
        let v2 = s.update("/a", b("2"), None).await.unwrap();
        s.update("/a", b("3"), None).await.unwrap();
        assert_eq!(s.get("/a", Some(base + 1)).await.unwrap(), v1);
        assert_eq!(s.get("/a", Some(base + 2)).await.unwrap(), v1);
        assert_eq!(s.get("/a", Some(base + 3)).await.unwrap(), v2);
        assert_eq!(s.get("/a", Some(base + 4)).await.unwrap().value, b("3"));
        assert_eq!(s.get("/a", Some(0)).await.unwrap().value, b("3"));
    }

    /// A key read at a revision before it was created is NotFound.
    pub async fn get_at_revision_before_creation_returns_not_found(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        let base = base_revision(s).await;
        s.create("/x", b("x")).await.unwrap();
        s.create("/a", b("1")).await.unwrap();
        assert!(matches!(
            s.get("/a", Some(base + 1)).await,
            Err(StoreError::NotFound(_))
        ));
        assert!(s.get("/a", Some(base + 2)).await.is_ok());
    }

    /// After a delete, the key is still readable at earlier revisions, and NotFound after.
    pub async fn deleted_key_is_readable_at_revisions_before_the_delete(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        let kv = s.create("/a", b("1")).await.unwrap();
        let (_, del) = s.delete("/a", None).await.unwrap();
        s.create("/b", b("x")).await.unwrap();
        assert_eq!(s.get("/a", Some(del - 1)).await.unwrap(), kv);
        assert!(matches!(
            s.get("/a", Some(del)).await,
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            s.get("/a", Some(del + 1)).await,
            Err(StoreError::NotFound(_))
        ));
    }

    /// Reading above the current revision is FutureRevision.
    pub async fn get_at_future_revision_returns_future_revision(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        let base = base_revision(s).await;
        s.create("/a", b("1")).await.unwrap();
        assert_eq!(
            s.get("/a", Some(base + 2)).await,
            Err(StoreError::FutureRevision {
                requested: base + 2,
                current: base + 1
            })
        );
        assert!(matches!(
            s.get("/missing", Some(base + 50)).await,
            Err(StoreError::FutureRevision { .. })
        ));
    }

    /// Reads at the compacted revision fail with Compacted; one above it works.
    pub async fn get_at_compacted_revision_returns_compacted_and_just_above_works(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        let base = base_revision(s).await;
        for i in 0..6 {
            s.create(&format!("/k{i}"), b("v")).await.unwrap();
        }
        s.compact(base + 3).await.unwrap();
        assert_eq!(s.compacted_revision().await.unwrap(), base + 3);
        assert_eq!(
            s.get("/k0", Some(base + 3)).await,
            Err(StoreError::Compacted {
                requested: base + 3,
                compact_revision: base + 3
            })
        );
        assert!(matches!(
            s.get("/k0", Some(base + 1)).await,
            Err(StoreError::Compacted { .. })
        ));
        assert_eq!(
            s.get("/k0", Some(base + 4)).await.unwrap().mod_revision,
            base + 1
        );
        assert!(matches!(
            s.get("/k4", Some(base + 4)).await,
            Err(StoreError::NotFound(_))
        ));
        assert!(s.get("/k0", None).await.is_ok());
    }

    /// List returns exactly the keys under the prefix, in key order.
    pub async fn list_returns_prefix_matches_in_key_order(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        let base = base_revision(s).await;
        for k in ["/b/2", "/a", "/b/1", "/bb", "/b/10", "/c", "/b/"] {
            s.create(k, b(k)).await.unwrap();
        }
        let list = s.list("/b/", ListOptions::default()).await.unwrap();
        let keys: Vec<&str> = list.items.iter().map(|kv| &*kv.key).collect();
        assert_eq!(keys, ["/b/", "/b/1", "/b/10", "/b/2"]);
        assert!(list.items.iter().all(|kv| kv.value == b(&kv.key)));
        assert_eq!(list.revision, base + 7);
        assert_eq!(
            s.list("", ListOptions::default())
                .await
                .unwrap()
                .items
                .len(),
            7
        );
        assert!(s
            .list("/z", ListOptions::default())
            .await
            .unwrap()
            .items
            .is_empty());
    }

    /// Deleted keys do not appear in lists.
    pub async fn list_skips_deleted_keys(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        fill(s, "/p/", 5).await;
        s.delete("/p/0001", None).await.unwrap();
        s.delete("/p/0003", None).await.unwrap();
        let keys: Vec<String> = s
            .list("/p/", ListOptions::default())
            .await
            .unwrap()
            .items
            .iter()
            .map(|kv| kv.key.to_string())
            .collect();
        assert_eq!(keys, ["/p/0000", "/p/0002", "/p/0004"]);
    }

    /// A list at a past revision sees keys and values as they were.
    pub async fn list_at_past_revision_sees_the_state_then(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        let before = fill(s, "/p/", 3).await;
        let rev = s.current_revision().await.unwrap();
        s.update("/p/0000", b("new"), None).await.unwrap();
        s.delete("/p/0001", None).await.unwrap();
        s.create("/p/0009", b("late")).await.unwrap();
        let then = s
            .list(
                "/p/",
                ListOptions {
                    revision: Some(rev),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(then.items, before);
        assert_eq!(then.revision, rev);
        let now = s.list("/p/", ListOptions::default()).await.unwrap();
        assert_eq!(now.items.len(), 3);
        assert_eq!(now.revision, rev + 3);
    }

    /// A list above the current revision is FutureRevision.
    pub async fn list_at_future_revision_returns_future_revision(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        let base = base_revision(s).await;
        fill(s, "/p/", 2).await;
        let res = s
            .list(
                "/p/",
                ListOptions {
                    revision: Some(base + 3),
                    ..Default::default()
                },
            )
            .await;
        assert_eq!(
            res.unwrap_err(),
            StoreError::FutureRevision {
                requested: base + 3,
                current: base + 2
            }
        );
    }

    /// A list with an explicit revision at or below the compacted one is Compacted.
    pub async fn list_below_compaction_returns_compacted(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        let base = base_revision(s).await;
        fill(s, "/p/", 5).await;
        s.compact(base + 4).await.unwrap();
        for rev in [base + 1, base + 4] {
            let res = s
                .list(
                    "/p/",
                    ListOptions {
                        revision: Some(rev),
                        ..Default::default()
                    },
                )
                .await;
            assert_eq!(
                res.unwrap_err(),
                StoreError::Compacted {
                    requested: rev,
                    compact_revision: base + 4
                }
            );
        }
        assert_eq!(
            s.list(
                "/p/",
                ListOptions {
                    revision: Some(base + 5),
                    ..Default::default()
                }
            )
            .await
            .unwrap()
            .items
            .len(),
            5
        );
        assert_eq!(
            s.list("/p/", ListOptions::default())
                .await
                .unwrap()
                .items
                .len(),
            5
        );
    }

    /// Without a limit (or limit 0) a list is one page: no token, no remaining count.
    pub async fn list_without_limit_returns_everything_without_token(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        fill(s, "/p/", 30).await;
        for limit in [None, Some(0), Some(30), Some(31)] {
            let list = s
                .list(
                    "/p/",
                    ListOptions {
                        limit,
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            assert_eq!(list.items.len(), 30);
            assert!(list.continue_token.is_none());
            assert!(list.remaining.is_none());
        }
    }

    /// Pages of `limit` items chain through continue tokens, with remaining counts, at one revision.
    pub async fn list_pages_with_limit_and_continue_token(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        let base = base_revision(s).await;
        let all = fill(s, "/p/", 25).await;
        s.create("/q", b("outside")).await.unwrap();
        let mut got = Vec::new();
        let mut token = None;
        let mut pages = 0;
        loop {
            let page = s
                .list(
                    "/p/",
                    ListOptions {
                        limit: Some(10),
                        continue_token: token.take(),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            pages += 1;
            assert_eq!(page.revision, base + 26);
            got.extend(page.items.iter().cloned());
            match page.continue_token {
                Some(t) => {
                    assert_eq!(page.items.len(), 10);
                    assert_eq!(page.remaining, Some(25 - got.len()));
                    token = Some(t);
                }
                None => {
                    assert!(page.remaining.is_none());
                    break;
                }
            }
        }
        assert_eq!(pages, 3);
        assert_eq!(got, all);
    }

    /// Every page of one list is served at the first page's revision while writes go on.
    pub async fn continue_tokens_stay_consistent_while_writes_go_on(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = fx.store.clone();
        let snapshot = fill(&*s, "/p/", 100).await;
        let first = s
            .list(
                "/p/",
                ListOptions {
                    limit: Some(7),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let rev = first.revision;
        let writer = {
            let s = s.clone();
            tokio::spawn(async move {
                for i in 0..100 {
                    let key = format!("/p/{i:04}");
                    match i % 3 {
                        0 => drop(s.delete(&key, None).await.unwrap()),
                        1 => drop(s.update(&key, b("changed"), None).await.unwrap()),
                        _ => drop(s.create(&format!("{key}x"), b("inserted")).await.unwrap()),
                    }
                }
            })
        };
        let mut got = first.items.clone();
        let mut token = first.continue_token.clone();
        let mut step = 0;
        while let Some(t) = token.take() {
            // Make sure writes land between pages, whatever the scheduling.
            s.create(&format!("/p/{step:04}y"), b("between pages"))
                .await
                .unwrap();
            step += 1;
            let page = s
                .list(
                    "/p/",
                    ListOptions {
                        limit: Some(7),
                        continue_token: Some(t),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            assert_eq!(page.revision, rev);
            got.extend(page.items.iter().cloned());
            token = page.continue_token;
        }
        writer.await.unwrap();
        assert_eq!(
            got, snapshot,
            "pages must show the state at the first page's revision"
        );
        assert!(s.current_revision().await.unwrap() > rev);
    }

    /// Tokens that this store did not produce are InvalidContinue.
    pub async fn malformed_continue_token_returns_invalid_continue(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        let base = base_revision(s).await;
        fill(s, "/p/", 3).await;
        let tokens = [
            String::new(),
            "garbage".into(),
            format!("k1.{}", base + 2),
            "k1.x.2f70".into(),
            format!("k1.{}.zz", base + 2),
            format!("k1.{}.2f70", base + 999),
        ];
        for token in tokens {
            let res = s
                .list(
                    "/p/",
                    ListOptions {
                        continue_token: Some(token.clone()),
                        ..Default::default()
                    },
                )
                .await;
            assert!(
                matches!(res, Err(StoreError::InvalidContinue(_))),
                "token {token:?}: {res:?}"
            );
        }
    }

    /// A token from a list of one prefix cannot continue a list of another.
    pub async fn continue_token_of_another_prefix_is_invalid(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        fill(s, "/a/", 5).await;
        fill(s, "/b/", 5).await;
        let page = s
            .list(
                "/a/",
                ListOptions {
                    limit: Some(2),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let token = page.continue_token.expect("more pages");
        let res = s
            .list(
                "/b/",
                ListOptions {
                    continue_token: Some(token.clone()),
                    ..Default::default()
                },
            )
            .await;
        assert!(
            matches!(res, Err(StoreError::InvalidContinue(_))),
            "{res:?}"
        );
        let ok = s
            .list(
                "/a/",
                ListOptions {
                    continue_token: Some(token),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(ok.items.len(), 3);
    }

    /// A continue token whose revision got compacted is Compacted.
    pub async fn continue_token_whose_revision_was_compacted_returns_compacted(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        let base = base_revision(s).await;
        fill(s, "/p/", 10).await;
        let page = s
            .list(
                "/p/",
                ListOptions {
                    limit: Some(3),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        s.update("/p/0000", b("x"), None).await.unwrap();
        s.compact(page.revision).await.unwrap();
        let res = s
            .list(
                "/p/",
                ListOptions {
                    continue_token: page.continue_token,
                    ..Default::default()
                },
            )
            .await;
        assert_eq!(
            res.unwrap_err(),
            StoreError::Compacted {
                requested: base + 10,
                compact_revision: base + 10
            }
        );
    }

    /// Count counts live keys under a prefix at the current revision.
    pub async fn count_counts_live_keys_under_prefix(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        fill(s, "/p/", 12).await;
        fill(s, "/q/", 3).await;
        s.delete("/p/0004", None).await.unwrap();
        s.update("/p/0005", b("x"), None).await.unwrap();
        assert_eq!(s.count("/p/").await.unwrap(), 11);
        assert_eq!(s.count("/q/").await.unwrap(), 3);
        assert_eq!(s.count("").await.unwrap(), 14);
        assert_eq!(s.count("/r/").await.unwrap(), 0);
    }

    /// After compaction, reads of compacted revisions fail; current reads still work.
    pub async fn compaction_makes_old_revisions_unreadable(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        let base = base_revision(s).await;
        s.create("/a", b("1")).await.unwrap();
        for i in 2..=10 {
            s.update("/a", b(&i.to_string()), None).await.unwrap();
        }
        s.compact(base + 7).await.unwrap();
        for rev in base + 1..=base + 7 {
            assert_eq!(
                s.get("/a", Some(rev)).await,
                Err(StoreError::Compacted {
                    requested: rev,
                    compact_revision: base + 7
                })
            );
        }
        assert_eq!(s.get("/a", Some(base + 8)).await.unwrap().value, b("8"));
        assert_eq!(s.get("/a", None).await.unwrap().value, b("10"));
    }

    /// Compaction keeps the latest value (and its metadata) of every live key.
    pub async fn compaction_keeps_latest_value_of_every_live_key(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        let base = base_revision(s).await;
        fill(s, "/p/", 20).await;
        for i in (0..20).step_by(2) {
            s.update(&format!("/p/{i:04}"), b("second"), None)
                .await
                .unwrap();
        }
        let before = s.list("/p/", ListOptions::default()).await.unwrap();
        let current = s.current_revision().await.unwrap();
        s.compact(current).await.unwrap();
        let after = s.list("/p/", ListOptions::default()).await.unwrap();
        assert_eq!(after.items, before.items);
        assert_eq!(s.current_revision().await.unwrap(), current);
        assert_eq!(s.count("/p/").await.unwrap(), 20);
        let next = s.update("/p/0000", b("third"), None).await.unwrap();
        assert_eq!(
            (next.version, next.create_revision, next.mod_revision),
            (3, base + 1, current + 1)
        );
    }

    /// A key deleted before the compacted revision stays deleted.
    pub async fn deleted_key_stays_deleted_after_compaction(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        let base = base_revision(s).await;
        s.create("/a", b("1")).await.unwrap();
        s.update("/a", b("2"), None).await.unwrap();
        s.delete("/a", None).await.unwrap();
        s.create("/b", b("1")).await.unwrap();
        s.compact(base + 4).await.unwrap();
        assert!(matches!(
            s.get("/a", None).await,
            Err(StoreError::NotFound(_))
        ));
        assert_eq!(s.count("").await.unwrap(), 1);
        let again = s.create("/a", b("3")).await.unwrap();
        assert_eq!((again.version, again.create_revision), (1, base + 5));
    }

    /// Compacting above the current revision is FutureRevision.
    pub async fn compact_to_future_revision_returns_future_revision(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        let base = base_revision(s).await;
        fill(s, "/p/", 3).await;
        assert_eq!(
            s.compact(base + 4).await,
            Err(StoreError::FutureRevision {
                requested: base + 4,
                current: base + 3
            })
        );
        assert_eq!(s.compacted_revision().await.unwrap(), 0);
    }

    /// Compacting to an older revision than the compacted one is a no-op.
    pub async fn compaction_never_moves_backwards(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        let base = base_revision(s).await;
        fill(s, "/p/", 8).await;
        s.compact(base + 5).await.unwrap();
        s.compact(base + 3).await.unwrap();
        s.compact(base + 5).await.unwrap();
        assert_eq!(s.compacted_revision().await.unwrap(), base + 5);
        assert!(s.get("/p/0007", Some(base + 6)).await.is_err());
        assert!(s.get("/p/0007", Some(base + 8)).await.is_ok());
    }

    /// The policy keeps at least `min_revisions` revisions even when all are old.
    pub async fn compact_by_policy_keeps_at_least_min_revisions(f: &dyn Factory) {
        let clock = ManualClock::default();
        let fx = f
            .make(SuiteConfig {
                clock: Arc::new(clock.clone()),
                ..Default::default()
            })
            .await;
        let s = &*fx.store;
        let base = base_revision(s).await;
        for i in 0..50 {
            s.create(&format!("/p/{i}"), b("v")).await.unwrap();
            clock.advance(Duration::from_millis(3));
        }
        clock.advance(Duration::from_secs(3600));
        let policy = CompactionPolicy {
            min_age: Duration::from_secs(300),
            min_revisions: 10,
            ..Default::default()
        };
        assert_eq!(s.compact_by_policy(policy).await.unwrap(), base + 40);
        assert_eq!(s.compacted_revision().await.unwrap(), base + 40);
        assert!(s.get("/p/49", Some(base + 41)).await.is_err());
        assert_eq!(s.compact_by_policy(policy).await.unwrap(), base + 40);
    }

    /// The policy keeps every revision written within `min_age`, using the store's clock.
    pub async fn compact_by_policy_keeps_revisions_younger_than_min_age(f: &dyn Factory) {
        let clock = ManualClock::default();
        let fx = f
            .make(SuiteConfig {
                clock: Arc::new(clock.clone()),
                ..Default::default()
            })
            .await;
        let s = &*fx.store;
        let base = base_revision(s).await;
        for i in 0..10 {
            s.create(&format!("/old/{i}"), b("v")).await.unwrap();
        }
        clock.advance(Duration::from_secs(600));
        for i in 0..10 {
            s.create(&format!("/new/{i}"), b("v")).await.unwrap();
            clock.advance(Duration::from_secs(1));
        }
        clock.advance(Duration::from_secs(60));
        let policy = CompactionPolicy {
            min_age: Duration::from_secs(300),
            min_revisions: 0,
            ..Default::default()
        };
        assert_eq!(s.compact_by_policy(policy).await.unwrap(), base + 10);
        // The new writes happened at t+0s..t+9s and it is now t+70s. At t+304.5s the first five
        // (t+0s..t+4s) are older than 5 minutes, the sixth (t+5s) is not.
        clock.advance(Duration::from_millis(234_500));
        assert_eq!(s.compact_by_policy(policy).await.unwrap(), base + 15);
        // The default policy also keeps 10,000 revisions: nothing more goes.
        clock.advance(Duration::from_secs(3600));
        assert_eq!(
            s.compact_by_policy(CompactionPolicy::default())
                .await
                .unwrap(),
            base + 15
        );
    }

    /// With every write younger than `min_age`, the policy compacts nothing.
    pub async fn compact_by_policy_does_nothing_when_all_history_is_young(f: &dyn Factory) {
        let clock = ManualClock::default();
        let fx = f
            .make(SuiteConfig {
                clock: Arc::new(clock.clone()),
                ..Default::default()
            })
            .await;
        let s = &*fx.store;
        let base = base_revision(s).await;
        fill(s, "/p/", 20).await;
        clock.advance(Duration::from_secs(100));
        let policy = CompactionPolicy {
            min_age: Duration::from_secs(300),
            min_revisions: 0,
            ..Default::default()
        };
        assert_eq!(s.compact_by_policy(policy).await.unwrap(), 0);
        assert!(s.get("/p/0000", Some(base + 1)).await.is_ok());
    }

    /// Past `max_history_bytes`, the policy compacts young history too, until half is left.
    pub async fn compact_by_policy_bounds_the_bytes_of_history_whatever_its_age(f: &dyn Factory) {
        let clock = ManualClock::default();
        let fx = f
            .make(SuiteConfig {
                clock: Arc::new(clock.clone()),
                ..Default::default()
            })
            .await;
        let s = &*fx.store;
        let base = base_revision(s).await;
        let value = Bytes::from(vec![b'x'; 1000]);
        s.create("/big", value.clone()).await.unwrap();
        for _ in 1..100 {
            s.update("/big", value.clone(), None).await.unwrap();
        }
        let policy = CompactionPolicy {
            min_age: Duration::from_secs(300),
            min_revisions: 1000,
            max_history_bytes: 40_000,
        };
        // ~2,100 bytes an update (new value, previous value, overhead): 100 writes are ~200 KB.
        let compacted = s.compact_by_policy(policy).await.unwrap();
        assert!(
            compacted > base + 80 && compacted < base + 100,
            "compacted to {compacted}"
        );
        assert_eq!(s.get("/big", None).await.unwrap().value, value);
        // Under the bound, nothing more goes.
        assert_eq!(s.compact_by_policy(policy).await.unwrap(), compacted);
        // Nothing goes under the default bound.
        let fx2 = fresh(f).await;
        fx2.store.create("/k", value).await.unwrap();
        assert_eq!(
            fx2.store
                .compact_by_policy(CompactionPolicy::default())
                .await
                .unwrap(),
            0
        );
    }

    /// A watch starting at or below the compacted revision is Compacted.
    pub async fn watch_from_compacted_revision_returns_compacted(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        let base = base_revision(s).await;
        fill(s, "/p/", 6).await;
        s.compact(base + 4).await.unwrap();
        for start in [base + 1, base + 4] {
            match s.watch("/p/", start).await {
                Err(err) => assert_eq!(
                    err,
                    StoreError::Compacted {
                        requested: start,
                        compact_revision: base + 4
                    }
                ),
                Ok(_) => panic!("watch from {start} must fail"),
            }
        }
        let mut w = s.watch("/p/", base + 5).await.unwrap();
        assert_eq!(next(&mut w).await.revision(), base + 5);
    }

    /// A watch starting beyond the next revision is FutureRevision.
    pub async fn watch_from_future_revision_returns_future_revision(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        let base = base_revision(s).await;
        fill(s, "/p/", 3).await;
        match s.watch("/p/", base + 5).await {
            Err(err) => assert_eq!(
                err,
                StoreError::FutureRevision {
                    requested: base + 5,
                    current: base + 3
                }
            ),
            Ok(_) => panic!("watch from the future must fail"),
        }
    }

    /// Start 0 means live only: nothing at or before the current revision is delivered.
    pub async fn watch_from_zero_only_sees_later_writes(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        let base = base_revision(s).await;
        fill(s, "/p/", 5).await;
        let mut w = s.watch("/p/", 0).await.unwrap();
        s.create("/p/new", b("n")).await.unwrap();
        let ev = next(&mut w).await;
        assert_eq!(
            (&*ev.kv.key, ev.revision(), ev.kind),
            ("/p/new", base + 6, EventKind::Put)
        );
    }

    /// Start = current + 1 is valid and yields exactly the following writes.
    pub async fn watch_from_next_revision_is_live_only(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        let base = base_revision(s).await;
        fill(s, "/p/", 5).await;
        let mut w = s.watch("/p/", base + 6).await.unwrap();
        fill(s, "/p/x", 3).await;
        let events = collect(&mut w, 3).await;
        assert_consecutive(&events, base + 6);
    }

    /// A watch from a past revision replays history, then continues with live writes.
    pub async fn watch_replays_history_then_streams_live_events(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        let base = base_revision(s).await;
        fill(s, "/p/", 10).await;
        let mut w = s.watch("/p/", base + 4).await.unwrap();
        fill(s, "/p/live", 5).await;
        let events = collect(&mut w, 12).await;
        assert_consecutive(&events, base + 4);
        assert_eq!(&*events[0].kv.key, "/p/0003");
        assert_eq!(&*events[7].kv.key, "/p/live0000");
    }

    /// Watches only see keys under their prefix.
    pub async fn watch_only_sees_keys_under_its_prefix(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        let base = base_revision(s).await;
        let mut w = s.watch("/a/", 0).await.unwrap();
        let mut all = s.watch("", 0).await.unwrap();
        for k in ["/a/1", "/b/1", "/ab", "/a/2", "/a"] {
            s.create(k, b("v")).await.unwrap();
        }
        let mine: Vec<String> = collect(&mut w, 2)
            .await
            .iter()
            .map(|e| e.kv.key.to_string())
            .collect();
        assert_eq!(mine, ["/a/1", "/a/2"]);
        assert_consecutive(&collect(&mut all, 5).await, base + 1);
        // Nothing else is queued for the prefix watcher: the next event is the next /a/ write.
        s.create("/a/3", b("v")).await.unwrap();
        assert_eq!(&*next(&mut w).await.kv.key, "/a/3");
    }

    async fn next_item(w: &mut crate::ProgressWatchStream) -> WatchItem {
        match tokio::time::timeout(WAIT, w.next())
            .await
            .expect("watch item in time")
        {
            Some(Ok(item)) => item,
            Some(Err(e)) => panic!("watch failed: {e}"),
            None => panic!("watch ended"),
        }
    }

    /// A progress request is answered with the store's revision even when every write since
    /// the watch began was under another prefix; nothing is reported unasked.
    pub async fn progress_reports_the_revision_reached_although_nothing_under_the_prefix_changed(
        f: &dyn Factory,
    ) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        let base = base_revision(s).await;
        let (mut w, progress) = s.watch_progress("/a/", 0).await.unwrap();
        fill(s, "/b/", 3).await;
        progress.request_progress();
        match next_item(&mut w).await {
            WatchItem::Progress(rev) => assert_eq!(rev, base + 3),
            WatchItem::Event(ev) => panic!("unexpected event {:?}", ev.kv.key),
        }
        // Unasked, the next item is the next event under the prefix.
        s.create("/b/x", b("v")).await.unwrap();
        s.create("/a/1", b("v")).await.unwrap();
        match next_item(&mut w).await {
            WatchItem::Event(ev) => assert_eq!((&*ev.kv.key, ev.revision()), ("/a/1", base + 5)),
            WatchItem::Progress(rev) => panic!("unasked progress {rev}"),
        }
    }

    /// A progress report never overtakes an event at or below its revision, history included.
    pub async fn progress_comes_after_every_event_it_covers(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        let base = base_revision(s).await;
        fill(s, "/a/", 5).await;
        let (mut w, progress) = s.watch_progress("/a/", base + 2).await.unwrap();
        s.create("/a/live", b("v")).await.unwrap();
        progress.request_progress();
        let mut seen = Vec::new();
        loop {
            match next_item(&mut w).await {
                WatchItem::Event(ev) => seen.push(ev.revision()),
                WatchItem::Progress(rev) => {
                    assert_eq!(rev, base + 6);
                    break;
                }
            }
        }
        assert_eq!(seen, [2, 3, 4, 5, 6].map(|n| base + n));
    }

    /// Put events carry the previous value (None for a create); deletes carry the deleted value.
    pub async fn watch_events_carry_previous_values(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        let base = base_revision(s).await;
        let mut w = s.watch("/a", 0).await.unwrap();
        let c = s.create("/a", b("1")).await.unwrap();
        let u = s.update("/a", b("2"), None).await.unwrap();
        s.delete("/a", None).await.unwrap();
        let again = s.create("/a", b("3")).await.unwrap();
        let events = collect(&mut w, 4).await;
        assert_eq!(events[0].prev, None);
        assert_eq!(events[0].kv, c);
        assert_eq!(events[1].prev.as_deref(), Some(&c));
        assert_eq!(events[1].kv, u);
        assert_eq!(events[2].prev.as_deref(), Some(&u));
        assert_eq!(events[3].prev, None);
        assert_eq!(events[3].kv, again);
        // The same prev values come back when the events are replayed from history.
        let mut replay = s.watch("/a", base + 1).await.unwrap();
        let replayed = collect(&mut replay, 4).await;
        assert_eq!(replayed, events);
    }

    /// A delete event has kind Delete, an empty value and the delete's revision.
    pub async fn delete_event_has_empty_value_and_delete_revision(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        let kv = s.create("/a", b("1")).await.unwrap();
        let mut w = s.watch("/a", 0).await.unwrap();
        let (_, rev) = s.delete("/a", None).await.unwrap();
        let ev = next(&mut w).await;
        assert_eq!(ev.kind, EventKind::Delete);
        assert_eq!(&*ev.kv.key, "/a");
        assert!(ev.kv.value.is_empty());
        assert_eq!(ev.kv.mod_revision, rev);
        assert_eq!(ev.revision(), rev);
        assert_eq!(ev.prev.as_deref(), Some(&kv));
    }

    /// Watches opened from the past while writers run get history then live, no gap, no dup.
    pub async fn watch_history_live_seam_has_no_gap_or_duplicate_under_concurrent_writes(
        f: &dyn Factory,
    ) {
        let fx = fresh(f).await;
        let s = fx.store.clone();
        let base = base_revision(&*s).await;
        fill(&*s, "/p/seed", 50).await;
        let writers: Vec<_> = (0..4)
            .map(|t| {
                let s = s.clone();
                tokio::spawn(async move {
                    for i in 0..150 {
                        s.create(&format!("/p/{t}/{i}"), b("v")).await.unwrap();
                    }
                })
            })
            .collect();
        let last: Revision = base + 50 + 4 * 150;
        let mut watches = Vec::new();
        for round in 0..6 {
            let current = s.current_revision().await.unwrap();
            let start = (current - 20 * round).max(base + 1);
            watches.push((start, s.watch("/p/", start).await.unwrap()));
            tokio::task::yield_now().await;
        }
        for w in writers {
            w.await.unwrap();
        }
        for (start, mut w) in watches {
            let events = collect(&mut w, usize::try_from(last - start + 1).unwrap()).await;
            assert_consecutive(&events, start);
        }
    }

    /// One watch under 8 concurrent writers sees every revision exactly once, in order.
    pub async fn watch_sees_every_revision_once_in_order_under_8_concurrent_writers(
        f: &dyn Factory,
    ) {
        let fx = fresh(f).await;
        let s = fx.store.clone();
        let base = base_revision(&*s).await;
        let mut w = s.watch("/w/", 0).await.unwrap();
        let writers: Vec<_> = (0..8)
            .map(|t| {
                let s = s.clone();
                tokio::spawn(async move {
                    for i in 0..250 {
                        let key = format!("/w/{t}/{}", i % 50);
                        if i < 50 {
                            s.create(&key, b("v")).await.unwrap();
                        } else {
                            s.update(&key, b(&i.to_string()), None).await.unwrap();
                        }
                    }
                })
            })
            .collect();
        let events = collect(&mut w, 2000).await;
        for h in writers {
            h.await.unwrap();
        }
        assert_consecutive(&events, base + 1);
        let keys: HashSet<&str> = events.iter().map(|e| &*e.kv.key).collect();
        assert_eq!(keys.len(), 400);
        assert_eq!(s.current_revision().await.unwrap(), base + 2000);
    }

    /// A watcher that stops reading is cut off with Unavailable; writers are not slowed down.
    pub async fn slow_watcher_is_cut_off_while_writers_proceed(f: &dyn Factory) {
        let fx = f
            .make(SuiteConfig {
                watch_backlog: 16,
                ..Default::default()
            })
            .await;
        let s = fx.store.clone();
        let base = base_revision(&*s).await;
        let mut slow = s.watch("/p/", 0).await.unwrap();
        let writers: Vec<_> = (0..4)
            .map(|t| {
                let s = s.clone();
                tokio::spawn(async move {
                    for i in 0..50 {
                        s.create(&format!("/p/{t}/{i}"), b("v")).await.unwrap();
                    }
                })
            })
            .collect();
        for h in writers {
            h.await.unwrap();
        }
        assert_eq!(s.current_revision().await.unwrap(), base + 200);
        let mut delivered = 0;
        let err = loop {
            match tokio::time::timeout(super::cases::WAIT, slow.next())
                .await
                .unwrap()
            {
                Some(Ok(_)) => delivered += 1,
                Some(Err(e)) => break e,
                None => panic!("stream ended without an error"),
            }
        };
        assert!(
            delivered <= 16,
            "a cut-off watcher delivered {delivered} events"
        );
        assert!(
            matches!(err, StoreError::Unavailable(ref m) if m.contains("fell behind")),
            "{err:?}"
        );
        assert!(
            slow.next().await.is_none(),
            "the stream ends after the error"
        );
        // The store and other watchers are fine.
        let mut fresh_watch = s.watch("/p/", base + 190).await.unwrap();
        assert_consecutive(&collect(&mut fresh_watch, 11).await, base + 190);
    }

    /// Dropping watch streams frees them: writes go on and live watchers keep up.
    pub async fn dropped_watchers_do_not_hold_back_writers_or_other_watchers(f: &dyn Factory) {
        let fx = f
            .make(SuiteConfig {
                watch_backlog: 8,
                ..Default::default()
            })
            .await;
        let s = &*fx.store;
        let base = base_revision(s).await;
        for _ in 0..50 {
            drop(s.watch("/p/", 0).await.unwrap());
        }
        let mut live = s.watch("/p/", 0).await.unwrap();
        for i in 0..40 {
            s.create(&format!("/p/{i}"), b("v")).await.unwrap();
            assert_eq!(next(&mut live).await.revision(), base + i + 1);
        }
    }

    /// Close ends every watch with Unavailable after the events already queued.
    pub async fn close_ends_watches_with_unavailable(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        let base = base_revision(s).await;
        let mut w = s.watch("/p/", 0).await.unwrap();
        let mut idle = s.watch("/other/", 0).await.unwrap();
        s.create("/p/1", b("v")).await.unwrap();
        s.close().await.unwrap();
        let mut got = 0;
        loop {
            match tokio::time::timeout(WAIT, w.next()).await.unwrap() {
                Some(Ok(ev)) => {
                    assert_eq!(ev.revision(), base + 1);
                    got += 1;
                }
                Some(Err(e)) => {
                    assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
                    break;
                }
                None => panic!("watch ended without an error"),
            }
        }
        assert!(got <= 1);
        assert!(w.next().await.is_none());
        let idle_end = tokio::time::timeout(WAIT, idle.next()).await.unwrap();
        assert!(
            matches!(idle_end, Some(Err(StoreError::Unavailable(_)))),
            "{idle_end:?}"
        );
    }

    /// After close, writes (and compaction) fail with Unavailable; what was written is still
    /// readable, and closing again is fine.
    pub async fn close_refuses_writes_but_keeps_reads(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        let base = base_revision(s).await;
        let kv = s.create("/a", b("1")).await.unwrap();
        s.close().await.unwrap();
        assert!(matches!(
            s.create("/b", b("1")).await,
            Err(StoreError::Unavailable(_))
        ));
        assert!(matches!(
            s.update("/a", b("2"), None).await,
            Err(StoreError::Unavailable(_))
        ));
        assert!(matches!(
            s.delete("/a", None).await,
            Err(StoreError::Unavailable(_))
        ));
        assert!(matches!(
            s.compact(base + 1).await,
            Err(StoreError::Unavailable(_))
        ));
        assert_eq!(s.get("/a", None).await.unwrap(), kv);
        assert_eq!(s.current_revision().await.unwrap(), base + 1);
        s.close().await.unwrap();
    }

    /// New watches on a closed store fail with Unavailable.
    pub async fn watch_after_close_returns_unavailable(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = &*fx.store;
        let base = base_revision(s).await;
        s.create("/a", b("1")).await.unwrap();
        s.close().await.unwrap();
        assert!(matches!(
            s.watch("/", 0).await,
            Err(StoreError::Unavailable(_))
        ));
        assert!(matches!(
            s.watch("/", base + 1).await,
            Err(StoreError::Unavailable(_))
        ));
    }

    /// Many tasks racing to create one key: exactly one wins, the others get AlreadyExists.
    pub async fn concurrent_creates_of_one_key_let_exactly_one_win(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = fx.store.clone();
        let base = base_revision(&*s).await;
        let tasks: Vec<_> = (0..16)
            .map(|t| {
                let s = s.clone();
                tokio::spawn(async move { s.create("/race", b(&t.to_string())).await })
            })
            .collect();
        let mut wins = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok(kv) => wins.push(kv),
                Err(StoreError::AlreadyExists(_)) => {}
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        assert_eq!(wins.len(), 1);
        assert_eq!(s.get("/race", None).await.unwrap(), wins[0]);
        assert_eq!(s.current_revision().await.unwrap(), base + 1);
    }

    /// 16 tasks each CAS-increment one counter 125 times, retrying on Conflict with the value
    /// it carries: the counter ends at exactly 2,000. (Each attempt is one etcd proposal, and
    /// sixteen contending tasks make about six attempts per increment.)
    pub async fn sixteen_tasks_cas_incrementing_one_key_end_at_2000(f: &dyn Factory) {
        let fx = fresh(f).await;
        let s = fx.store.clone();
        let base = base_revision(&*s).await;
        s.create("/counter", b("0")).await.unwrap();
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let s = s.clone();
                tokio::spawn(async move {
                    let mut cur = s.get("/counter", None).await.unwrap();
                    let mut conflicts = 0u64;
                    for _ in 0..125 {
                        loop {
                            let n: u64 = std::str::from_utf8(&cur.value).unwrap().parse().unwrap();
                            match s
                                .update("/counter", b(&(n + 1).to_string()), Some(cur.mod_revision))
                                .await
                            {
                                Ok(kv) => {
                                    cur = kv;
                                    break;
                                }
                                Err(StoreError::Conflict {
                                    current: Some(now), ..
                                }) => {
                                    conflicts += 1;
                                    cur = *now;
                                }
                                Err(e) => panic!("unexpected {e:?}"),
                            }
                        }
                    }
                    conflicts
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let kv = s.get("/counter", None).await.unwrap();
        assert_eq!(kv.value, b("2000"));
        assert_eq!(kv.version, 2_001);
        assert_eq!(s.current_revision().await.unwrap(), base + 2_001);
        // Every increment is one revision: the history holds each value exactly once.
        let mut w = s.watch("/counter", base + 2).await.unwrap();
        let values: BTreeMap<Revision, Bytes> = collect(&mut w, 2_000)
            .await
            .iter()
            .map(|e| (e.revision(), e.kv.value.clone()))
            .collect();
        assert!(values
            .iter()
            .all(|(rev, v)| v == &b(&(rev - base - 1).to_string())));
    }
}
