//! The in-memory MVCC core shared by every backend: per-key version history, the event log and
//! the watcher hub.
//!
//! Invariants:
//! - `State::current` is the newest *assigned* revision; every revision in
//!   `(State::compacted, State::current]` has exactly one event in `State::log`, in order
//!   (`log[i]` has revision `compacted + 1 + i`).
//! - Each key's history is sorted by revision. Compaction at `c` removes, per key, every version
//!   at or below `c` except the newest one, and removes that one too when it is a tombstone; a key
//!   with no version left is dropped. So the latest value of every live key survives.
//! - `Core::visible` is the revision readers see (`compacted <= visible <= current`). The memory
//!   backend moves it with every write; the durable backend moves it only after a group commit
//!   made the writes durable. Reads, lists, counts and watches never see anything above it.
//! - The hub delivers events to watchers in revision order with no gap, whatever order writers
//!   publish in. A watcher's queue is bounded: a watcher that lets it fill is cut off with
//!   [`StoreError::Unavailable`]; writers never wait for watchers.
//! - No lock is held while doing IO or while sending history to a watcher (history is read from
//!   the log in short chunks under the read lock).

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::ops::Bound;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use parking_lot::{Mutex, RwLock};

use crate::{
    unix_millis, Clock, CompactionPolicy, Event, EventKind, KeyValue, ListOptions, ListResult,
    ProgressRequester, ProgressWatchStream, Revision, StoreError, StoreResult, WatchItem,
    WatchStream,
};

/// Default bound on events queued for one watcher before it is cut off.
pub(crate) const DEFAULT_WATCH_BACKLOG: usize = 10_000;

/// How many revisions one compaction step handles while holding the write lock.
const COMPACT_CHUNK: Revision = 4096;

/// How many log entries a watcher scans per read-lock acquisition while replaying history.
const HISTORY_CHUNK: Revision = 1024;

/// One version of a key.
#[derive(Clone, Debug)]
enum Version {
    Put(KeyValue),
    Deleted(Revision),
}

impl Version {
    fn revision(&self) -> Revision {
        match self {
            Version::Put(kv) => kv.mod_revision,
            Version::Deleted(rev) => *rev,
        }
    }
}

/// A key's versions, oldest first.
type History = Vec<Version>;

/// The value of a key at `rev`, if it existed then.
fn version_at(history: &History, rev: Revision) -> Option<&KeyValue> {
    let idx = history.partition_point(|v| v.revision() <= rev);
    match idx.checked_sub(1).and_then(|i| history.get(i)) {
        Some(Version::Put(kv)) => Some(kv),
        _ => None,
    }
}

/// The newest value of a key, including writes not yet visible.
fn latest(history: &History) -> Option<&KeyValue> {
    match history.last() {
        Some(Version::Put(kv)) => Some(kv),
        _ => None,
    }
}

/// Everything guarded by the core's lock.
pub(crate) struct State {
    current: Revision,
    compacted: Revision,
    keys: BTreeMap<Arc<str>, History>,
    log: VecDeque<Arc<Event>>,
    /// What the events in `log` hold, in bytes (see [`event_bytes`]).
    log_bytes: u64,
    /// `(unix millis, first revision written in that millisecond)`, increasing in both.
    marks: VecDeque<(i64, Revision)>,
    failed: Option<StoreError>,
}

impl State {
    /// An empty store.
    pub(crate) fn empty() -> Self {
        State {
            current: 0,
            compacted: 0,
            keys: BTreeMap::new(),
            log: VecDeque::new(),
            log_bytes: 0,
            marks: VecDeque::new(),
            failed: None,
        }
    }

    fn push_event(&mut self, event: Arc<Event>) {
        self.log_bytes += event_bytes(&event);
        self.log.push_back(event);
    }

    fn mark(&mut self, millis: i64, rev: Revision) {
        if self.marks.back().is_none_or(|&(t, _)| millis > t) {
            self.marks.push_back((millis, rev));
        }
    }

    /// Drop marks that only describe compacted revisions (keeping the one that covers
    /// `compacted + 1`).
    fn prune_marks(&mut self) {
        while self.marks.len() >= 2
            && self
                .marks
                .get(1)
                .is_some_and(|&(_, r)| r <= self.compacted + 1)
        {
            self.marks.pop_front();
        }
    }
}

/// What one event of the history holds: its key and value, and the previous value it keeps
/// alive, plus a fixed overhead.
fn event_bytes(ev: &Event) -> u64 {
    let prev = ev.prev.as_ref().map_or(0, |p| p.value.len());
    (ev.kv.key.len() + ev.kv.value.len() + prev + 128) as u64
}

/// Drop the versions of `key` that compaction at `upto` makes unreachable; record their revisions.
fn prune_key(
    keys: &mut BTreeMap<Arc<str>, History>,
    key: &str,
    upto: Revision,
    removed: &mut Vec<Revision>,
) {
    let Some(history) = keys.get_mut(key) else {
        return;
    };
    let idx = history.partition_point(|v| v.revision() <= upto);
    if idx == 0 {
        return;
    }
    let keep_base = matches!(history.get(idx - 1), Some(Version::Put(_)));
    let cut = if keep_base { idx - 1 } else { idx };
    removed.extend(history.drain(..cut).map(|v| v.revision()));
    if history.is_empty() {
        keys.remove(key);
    }
}

/// A write request.
pub(crate) enum Op {
    /// Create a missing key.
    Create(Bytes),
    /// Replace an existing key's value, optionally only at an expected mod_revision.
    Update(Bytes, Option<Revision>),
    /// Delete an existing key, optionally only at an expected mod_revision.
    Delete(Option<Revision>),
}

/// A write that was refused, with the newest revision its decision depended on.
pub(crate) struct Rejected {
    pub(crate) error: StoreError,
    /// The revision of the key's newest version (0 if none) when the write was refused: the
    /// refusal depends on it, so a durable backend must not report it before that is durable.
    pub(crate) observed: Revision,
}

/// The shared MVCC core.
pub(crate) struct Core {
    state: RwLock<State>,
    visible: AtomicI64,
    closed: AtomicBool,
    auto_visible: bool,
    clock: Arc<dyn Clock>,
    hub: Hub,
    /// Serialises compactions (a durable backend holds it across its IO).
    pub(crate) compact_lock: Mutex<()>,
}

impl Core {
    /// A core over `state`. With `auto_visible`, every write is visible (and published to
    /// watchers) as soon as it is applied; otherwise the owner calls [`Core::advance_visible`].
    pub(crate) fn new(
        state: State,
        clock: Arc<dyn Clock>,
        watch_backlog: usize,
        auto_visible: bool,
    ) -> Self {
        let current = state.current;
        Core {
            state: RwLock::new(state),
            visible: AtomicI64::new(current),
            closed: AtomicBool::new(false),
            auto_visible,
            clock,
            hub: Hub::new(current + 1, watch_backlog),
            compact_lock: Mutex::new(()),
        }
    }

    /// The revision readers see.
    pub(crate) fn visible_revision(&self) -> Revision {
        self.visible.load(Ordering::Acquire)
    }

    /// The compacted revision.
    pub(crate) fn compacted_revision(&self) -> Revision {
        self.state.read().compacted
    }

    /// Whether writes are refused because the store was closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The revision to read at for an optional explicit `requested` revision.
    fn read_revision(&self, st: &State, requested: Option<Revision>) -> StoreResult<Revision> {
        let visible = self.visible_revision();
        match requested {
            Some(r) if r > 0 => {
                if r > visible {
                    Err(StoreError::FutureRevision {
                        requested: r,
                        current: visible,
                    })
                } else if r <= st.compacted {
                    Err(StoreError::Compacted {
                        requested: r,
                        compact_revision: st.compacted,
                    })
                } else {
                    Ok(r)
                }
            }
            _ => Ok(visible),
        }
    }

    /// Read one key.
    pub(crate) fn get(&self, key: &str, revision: Option<Revision>) -> StoreResult<KeyValue> {
        let st = self.state.read();
        let at = self.read_revision(&st, revision)?;
        st.keys
            .get(key)
            .and_then(|h| version_at(h, at))
            .cloned()
            .ok_or_else(|| StoreError::NotFound(key.to_string()))
    }

    /// One page of a prefix list.
    pub(crate) fn list(&self, prefix: &str, opts: &ListOptions) -> StoreResult<ListResult> {
        let st = self.state.read();
        let (at, after) = match &opts.continue_token {
            Some(token) => {
                let (rev, after) = decode_continue(token, prefix)?;
                if rev > self.visible_revision() {
                    return Err(StoreError::InvalidContinue(
                        "token revision is not known to this store".into(),
                    ));
                }
                if rev <= st.compacted {
                    return Err(StoreError::Compacted {
                        requested: rev,
                        compact_revision: st.compacted,
                    });
                }
                (rev, Some(after))
            }
            None => (self.read_revision(&st, opts.revision)?, None),
        };
        let limit = opts.limit.filter(|&l| l > 0);
        let lower = match &after {
            Some(a) => Bound::Excluded(a.as_str()),
            None => Bound::Included(prefix),
        };
        let mut items = Vec::new();
        let mut remaining = 0usize;
        for (key, history) in st.keys.range::<str, _>((lower, Bound::Unbounded)) {
            if !key.starts_with(prefix) {
                break;
            }
            let Some(kv) = version_at(history, at) else {
                continue;
            };
            if limit.is_none_or(|l| items.len() < l) {
                items.push(kv.clone());
            } else {
                remaining += 1;
            }
        }
        let continue_token = match items.last() {
            Some(last) if remaining > 0 => Some(encode_continue(at, &last.key)),
            _ => None,
        };
        Ok(ListResult {
            items,
            revision: at,
            remaining: continue_token.as_ref().map(|_| remaining),
            continue_token,
        })
    }

    /// How many live keys start with `prefix`, at the visible revision.
    pub(crate) fn count(&self, prefix: &str) -> usize {
        let st = self.state.read();
        let at = self.visible_revision();
        st.keys
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(_, h)| version_at(h, at).is_some())
            .count()
    }

    /// Apply one write. `on_apply` runs under the write lock with the event and the write's wall
    /// time (a durable backend enqueues it for commit there, so commits happen in revision order).
    pub(crate) fn write(
        &self,
        key: &str,
        op: Op,
        on_apply: impl FnOnce(&Arc<Event>, i64),
    ) -> Result<Arc<Event>, Rejected> {
        let millis = unix_millis(self.clock.now());
        let mut guard = self.state.write();
        let st = &mut *guard;
        if self.closed.load(Ordering::Acquire) {
            let error = StoreError::Unavailable("store is closed".into());
            return Err(Rejected { error, observed: 0 });
        }
        if let Some(err) = &st.failed {
            return Err(Rejected {
                error: err.clone(),
                observed: 0,
            });
        }
        let rev = st.current + 1;
        // A refusal depends only on this key's newest version (or on its absence).
        let (key_arc, current, key_rev) = match st.keys.get_key_value(key) {
            Some((k, h)) => (
                k.clone(),
                latest(h).cloned(),
                h.last().map_or(0, Version::revision),
            ),
            None => (Arc::<str>::from(key), None, 0),
        };
        let reject = |error: StoreError| Rejected {
            error,
            observed: key_rev,
        };
        let (event, version) = match (op, current) {
            (Op::Create(_), Some(_)) => {
                return Err(reject(StoreError::AlreadyExists(key.to_string())));
            }
            (Op::Create(value), None) => {
                let kv = KeyValue {
                    key: key_arc.clone(),
                    value,
                    create_revision: rev,
                    mod_revision: rev,
                    version: 1,
                };
                (
                    Event {
                        kind: EventKind::Put,
                        kv: kv.clone(),
                        prev: None,
                    },
                    Version::Put(kv),
                )
            }
            (Op::Update(..) | Op::Delete(_), None) => {
                return Err(reject(StoreError::NotFound(key.to_string())));
            }
            (Op::Update(_, Some(expected)) | Op::Delete(Some(expected)), Some(cur))
                if cur.mod_revision != expected =>
            {
                let error = StoreError::Conflict {
                    key: key.to_string(),
                    expected,
                    current: Some(Box::new(cur)),
                };
                return Err(reject(error));
            }
            (Op::Update(value, _), Some(cur)) => {
                let kv = KeyValue {
                    key: key_arc.clone(),
                    value,
                    create_revision: cur.create_revision,
                    mod_revision: rev,
                    version: cur.version + 1,
                };
                (
                    Event {
                        kind: EventKind::Put,
                        kv: kv.clone(),
                        prev: Some(Box::new(cur)),
                    },
                    Version::Put(kv),
                )
            }
            (Op::Delete(_), Some(cur)) => {
                let kv = KeyValue {
                    key: key_arc.clone(),
                    value: Bytes::new(),
                    create_revision: 0,
                    mod_revision: rev,
                    version: 0,
                };
                (
                    Event {
                        kind: EventKind::Delete,
                        kv,
                        prev: Some(Box::new(cur)),
                    },
                    Version::Deleted(rev),
                )
            }
        };
        let event = Arc::new(event);
        match st.keys.get_mut(key) {
            Some(history) => history.push(version),
            None => {
                st.keys.insert(key_arc, vec![version]);
            }
        }
        st.push_event(event.clone());
        st.current = rev;
        st.mark(millis, rev);
        on_apply(&event, millis);
        if self.auto_visible {
            self.visible.store(rev, Ordering::Release);
        }
        drop(guard);
        if self.auto_visible {
            self.hub.publish(std::slice::from_ref(&event));
        }
        Ok(event)
    }

    /// Make revisions up to `rev` visible and deliver `events` (which must be the newly visible
    /// ones, in order) to watchers. Only for cores without `auto_visible`.
    pub(crate) fn advance_visible(&self, rev: Revision, events: &[Arc<Event>]) {
        self.visible.fetch_max(rev, Ordering::AcqRel);
        self.hub.publish(events);
    }

    /// Refuse further writes. Returns the newest assigned revision (every write that will ever be
    /// applied is at or below it).
    pub(crate) fn close_writes(&self) -> Revision {
        let st = self.state.write();
        self.closed.store(true, Ordering::Release);
        st.current
    }

    /// End every watch (queued events are delivered first, then `error`) and refuse new ones.
    pub(crate) fn close_watches(&self, error: StoreError) {
        self.hub.close(error);
    }

    /// The store is broken (e.g. the disk failed): refuse writes with `error` from now on.
    /// Reads and watches go on over what is durable (no event comes that is not).
    pub(crate) fn fail(&self, error: StoreError) {
        self.state.write().failed = Some(error);
    }

    /// Why the store refuses writes, if it does.
    pub(crate) fn failure(&self) -> Option<StoreError> {
        self.state.read().failed.clone()
    }

    /// Forget history at and below `target` (no-op when already compacted that far). Returns the
    /// revisions of the versions removed, so a durable backend can delete them too. The caller
    /// must hold [`Core::compact_lock`].
    pub(crate) fn compact(&self, target: Revision) -> StoreResult<Vec<Revision>> {
        if self.is_closed() {
            return Err(StoreError::Unavailable("store is closed".into()));
        }
        let visible = self.visible_revision();
        if target > visible {
            return Err(StoreError::FutureRevision {
                requested: target,
                current: visible,
            });
        }
        let mut removed = Vec::new();
        loop {
            let mut guard = self.state.write();
            let st = &mut *guard;
            if st.compacted >= target {
                break;
            }
            let upto = target.min(st.compacted + COMPACT_CHUNK);
            let n = usize::try_from(upto - st.compacted)
                .unwrap_or(0)
                .min(st.log.len());
            let mut freed = 0;
            let touched: HashSet<Arc<str>> = st
                .log
                .drain(..n)
                .map(|ev| {
                    freed += event_bytes(&ev);
                    ev.kv.key.clone()
                })
                .collect();
            st.log_bytes -= freed;
            for key in touched {
                prune_key(&mut st.keys, &key, upto, &mut removed);
            }
            st.compacted = upto;
            st.prune_marks();
        }
        Ok(removed)
    }

    /// The revision that `policy` allows compacting to, from the clock and the write marks.
    pub(crate) fn policy_target(&self, policy: CompactionPolicy) -> Revision {
        let now = unix_millis(self.clock.now());
        let min_age = i64::try_from(policy.min_age.as_millis()).unwrap_or(i64::MAX);
        let cutoff = now.saturating_sub(min_age);
        let st = self.state.read();
        let visible = self.visible_revision();
        // Revisions written strictly before `cutoff` are those below the first mark at or after it.
        let idx = st.marks.partition_point(|&(t, _)| t < cutoff);
        let by_age = match st.marks.get(idx) {
            Some(&(_, rev)) => rev - 1,
            None => st.current,
        };
        let by_age = by_age
            .min(visible)
            .min(visible.saturating_sub(policy.min_revisions.max(0)));
        if st.log_bytes <= policy.max_history_bytes {
            return by_age;
        }
        // Over the byte bound: drop the oldest events until half of it is left (never the
        // newest revision, nor anything not yet visible).
        let mut left = st.log_bytes;
        let mut by_bytes = st.compacted;
        for ev in &st.log {
            if left <= policy.max_history_bytes / 2 || ev.revision() >= visible {
                break;
            }
            left -= event_bytes(ev);
            by_bytes = ev.revision();
        }
        by_age.max(by_bytes)
    }

    /// Start a watch of `prefix` from `start` (0 = live only).
    pub(crate) fn watch(
        self: &Arc<Self>,
        prefix: &str,
        start: Revision,
    ) -> StoreResult<WatchStream> {
        let (stream, _) = self.watch_progress(prefix, start)?;
        Ok(Box::pin(stream.filter_map(|item| {
            std::future::ready(match item {
                Ok(WatchItem::Event(ev)) => Some(Ok(ev)),
                Ok(WatchItem::Progress(_)) => None,
                Err(e) => Some(Err(e)),
            })
        })))
    }

    /// [`Core::watch`] with progress reports on request.
    pub(crate) fn watch_progress(
        self: &Arc<Self>,
        prefix: &str,
        start: Revision,
    ) -> StoreResult<(ProgressWatchStream, Arc<dyn ProgressRequester>)> {
        let slot = Arc::new(Slot {
            prefix: Arc::from(prefix),
            queue: Mutex::new(Queue {
                events: VecDeque::new(),
                waker: None,
                end: None,
                progress: None,
            }),
        });
        let dispatched = self.hub.register(slot.clone())?;
        let st = self.state.read();
        let visible = self.visible_revision();
        let from = if start <= 0 {
            visible + 1
        } else if start <= st.compacted {
            return Err(StoreError::Compacted {
                requested: start,
                compact_revision: st.compacted,
            });
        } else if start > visible + 1 {
            return Err(StoreError::FutureRevision {
                requested: start,
                current: visible,
            });
        } else {
            start
        };
        drop(st);
        let requester = Arc::new(Requester {
            core: Arc::downgrade(self),
            slot: Arc::downgrade(&slot),
        });
        let watcher = Watcher {
            core: self.clone(),
            prefix: slot.prefix.clone(),
            slot,
            from,
            next_history: from,
            history_end: dispatched,
            buf: VecDeque::new(),
            done: false,
        };
        Ok((Box::pin(watcher), requester))
    }

    /// Copy history events in `[from, min(to, from + chunk)]` matching `prefix` into `out`.
    /// Returns the next revision to read.
    fn read_history(
        &self,
        prefix: &str,
        from: Revision,
        to: Revision,
        out: &mut VecDeque<Arc<Event>>,
    ) -> StoreResult<Revision> {
        let st = self.state.read();
        if from <= st.compacted {
            return Err(StoreError::Compacted {
                requested: from,
                compact_revision: st.compacted,
            });
        }
        let end = to.min(from + HISTORY_CHUNK - 1);
        let lo = usize::try_from(from - st.compacted - 1).unwrap_or(usize::MAX);
        let hi = usize::try_from(end - st.compacted).unwrap_or(usize::MAX);
        if hi > st.log.len() || lo > hi {
            return Err(StoreError::Internal(format!(
                "event log does not cover revisions {from}..={end}"
            )));
        }
        out.extend(
            st.log
                .range(lo..hi)
                .filter(|ev| ev.kv.key.starts_with(prefix))
                .cloned(),
        );
        Ok(end + 1)
    }
}

/// Rebuilds a [`State`] from durable records, oldest revision first.
pub(crate) struct Restore {
    state: State,
    last: Revision,
}

/// One durable record: a write as stored on disk.
pub(crate) struct Record {
    pub(crate) kind: EventKind,
    pub(crate) key: Arc<str>,
    pub(crate) value: Bytes,
    pub(crate) create_revision: Revision,
    pub(crate) version: i64,
    pub(crate) millis: i64,
}

impl Record {
    /// The record of a key's live value (written at an unknown wall time).
    pub(crate) fn put(kv: &KeyValue) -> Record {
        Record {
            kind: EventKind::Put,
            key: kv.key.clone(),
            value: kv.value.clone(),
            create_revision: kv.create_revision,
            version: kv.version,
            millis: 0,
        }
    }
}

impl Restore {
    /// Start a restore of a store compacted at `compacted`.
    pub(crate) fn new(compacted: Revision) -> Self {
        let mut state = State::empty();
        state.current = compacted;
        state.compacted = compacted;
        Restore { state, last: 0 }
    }

    /// Add the record of revision `rev` (records must come in increasing revision order; above
    /// the compacted revision they must be contiguous).
    pub(crate) fn push(&mut self, rev: Revision, rec: Record) -> StoreResult<()> {
        if rev <= self.last {
            return Err(StoreError::Internal(format!(
                "log record {rev} out of order"
            )));
        }
        self.last = rev;
        let st = &mut self.state;
        let (kv, version) = match rec.kind {
            EventKind::Put => {
                let kv = KeyValue {
                    key: rec.key.clone(),
                    value: rec.value,
                    create_revision: rec.create_revision,
                    mod_revision: rev,
                    version: rec.version,
                };
                (kv.clone(), Version::Put(kv))
            }
            EventKind::Delete => {
                let kv = KeyValue {
                    key: rec.key.clone(),
                    value: Bytes::new(),
                    create_revision: 0,
                    mod_revision: rev,
                    version: 0,
                };
                (kv, Version::Deleted(rev))
            }
        };
        if rev > st.compacted {
            if rev != st.current + 1 {
                return Err(StoreError::Internal(format!(
                    "log is missing revisions {}..{rev}",
                    st.current + 1
                )));
            }
            let prev = st
                .keys
                .get(&*rec.key)
                .and_then(latest)
                .cloned()
                .map(Box::new);
            st.push_event(Arc::new(Event {
                kind: rec.kind,
                kv,
                prev,
            }));
            st.current = rev;
            st.mark(rec.millis, rev);
        }
        st.keys.entry(rec.key).or_default().push(version);
        Ok(())
    }

    /// Finish, given the durable current revision.
    pub(crate) fn finish(mut self, current: Revision) -> StoreResult<State> {
        let st = &mut self.state;
        if current > st.current {
            return Err(StoreError::Internal(format!(
                "log is missing revisions {}..={current}",
                st.current + 1
            )));
        }
        // Anything a compaction should have removed (normally nothing) is dropped here.
        let compacted = st.compacted;
        let keys: Vec<Arc<str>> = st.keys.keys().cloned().collect();
        let mut removed = Vec::new();
        for key in keys {
            prune_key(&mut st.keys, &key, compacted, &mut removed);
        }
        Ok(self.state)
    }
}

const CONTINUE_VERSION: &str = "k1";

/// An opaque continue token: format version, revision and the last key returned (hex).
pub(crate) fn encode_continue(rev: Revision, last_key: &str) -> String {
    let mut s = String::with_capacity(CONTINUE_VERSION.len() + 24 + last_key.len() * 2);
    s.push_str(CONTINUE_VERSION);
    s.push('.');
    s.push_str(&rev.to_string());
    s.push('.');
    for b in last_key.bytes() {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    s
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The revision and last key of a continue token of a list of `prefix`.
pub(crate) fn decode_continue(token: &str, prefix: &str) -> StoreResult<(Revision, String)> {
    let (rev, after) = decode_token(token)?;
    if !after.starts_with(prefix) {
        return Err(StoreError::InvalidContinue(format!(
            "token does not belong to a list of prefix {prefix:?}"
        )));
    }
    Ok((rev, after))
}

fn decode_token(token: &str) -> StoreResult<(Revision, String)> {
    let bad = |why: &str| StoreError::InvalidContinue(why.to_string());
    let mut parts = token.splitn(3, '.');
    if parts.next() != Some(CONTINUE_VERSION) {
        return Err(bad("unknown token format"));
    }
    let rev: Revision = parts
        .next()
        .and_then(|r| r.parse().ok())
        .filter(|&r| r > 0)
        .ok_or_else(|| bad("bad revision"))?;
    let hex = parts.next().ok_or_else(|| bad("missing key"))?.as_bytes();
    if hex.len() % 2 != 0 {
        return Err(bad("bad key encoding"));
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut bytes = Vec::with_capacity(hex.len() / 2);
    for pair in hex.chunks_exact(2) {
        match (
            pair.first().copied().and_then(nibble),
            pair.get(1).copied().and_then(nibble),
        ) {
            (Some(hi), Some(lo)) => bytes.push(hi << 4 | lo),
            _ => return Err(bad("bad key encoding")),
        }
    }
    let key = String::from_utf8(bytes).map_err(|_| bad("key is not UTF-8"))?;
    Ok((rev, key))
}

/// One watcher's bounded queue of live events.
struct Slot {
    prefix: Arc<str>,
    queue: Mutex<Queue>,
}

struct Queue {
    events: VecDeque<Arc<Event>>,
    waker: Option<Waker>,
    /// Set when the watch must end: delivered after the queued events.
    end: Option<StoreError>,
    /// A progress report asked for: every event at or below it is queued or was delivered.
    progress: Option<Revision>,
}

/// Asks one watcher's stream for a progress report.
struct Requester {
    core: Weak<Core>,
    slot: Weak<Slot>,
}

impl ProgressRequester for Requester {
    fn request_progress(&self) {
        if let (Some(core), Some(slot)) = (self.core.upgrade(), self.slot.upgrade()) {
            core.hub.request_progress(&slot);
        }
    }
}

/// Fans events out to watchers, in revision order.
struct Hub {
    inner: Mutex<HubInner>,
    backlog: usize,
}

struct HubInner {
    /// The next revision to deliver; everything below has been delivered.
    next: Revision,
    /// Published events that wait for an earlier revision.
    pending: BTreeMap<Revision, Arc<Event>>,
    watchers: Vec<Arc<Slot>>,
    closed: Option<StoreError>,
    scratch: Vec<Arc<Event>>,
}

impl Hub {
    fn new(next: Revision, backlog: usize) -> Self {
        Hub {
            inner: Mutex::new(HubInner {
                next,
                pending: BTreeMap::new(),
                watchers: Vec::new(),
                closed: None,
                scratch: Vec::new(),
            }),
            backlog: backlog.max(1),
        }
    }

    /// Register a watcher; returns the newest revision already delivered (the watcher gets every
    /// later one).
    fn register(&self, slot: Arc<Slot>) -> StoreResult<Revision> {
        let mut h = self.inner.lock();
        if let Some(err) = &h.closed {
            return Err(err.clone());
        }
        h.watchers.retain(|s| Arc::strong_count(s) > 1);
        h.watchers.push(slot);
        Ok(h.next - 1)
    }

    /// Deliver `events` (any order, any subset of revisions) once every earlier revision was.
    fn publish(&self, events: &[Arc<Event>]) {
        let mut guard = self.inner.lock();
        let h = &mut *guard;
        if h.closed.is_some() {
            return;
        }
        let mut ready = std::mem::take(&mut h.scratch);
        for ev in events {
            let rev = ev.revision();
            let expected = h.next + ready.len() as Revision;
            if rev == expected && h.pending.is_empty() {
                ready.push(ev.clone());
            } else if rev >= expected {
                h.pending.insert(rev, ev.clone());
            }
        }
        let mut next = h.next + ready.len() as Revision;
        while let Some(ev) = h.pending.remove(&next) {
            ready.push(ev);
            next += 1;
        }
        h.next = next;
        if !ready.is_empty() && !h.watchers.is_empty() {
            let backlog = self.backlog;
            h.watchers.retain(|slot| deliver(slot, &ready, backlog));
        }
        ready.clear();
        h.scratch = ready;
    }

    /// Queue a progress report for `slot`: the newest revision dispatched, which the hub has
    /// handed to every watcher it concerns (under this lock, so nothing is in between).
    fn request_progress(&self, slot: &Slot) {
        let h = self.inner.lock();
        let mut q = slot.queue.lock();
        if q.end.is_some() {
            return;
        }
        let at = h.next - 1;
        q.progress = Some(q.progress.map_or(at, |p| p.max(at)));
        let waker = q.waker.take();
        drop(q);
        drop(h);
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn close(&self, error: StoreError) {
        let mut h = self.inner.lock();
        if h.closed.is_some() {
            return;
        }
        h.closed = Some(error.clone());
        for slot in h.watchers.drain(..) {
            let mut q = slot.queue.lock();
            if q.end.is_none() {
                q.end = Some(error.clone());
            }
            let waker = q.waker.take();
            drop(q);
            if let Some(w) = waker {
                w.wake();
            }
        }
        h.pending.clear();
    }
}

/// Queue `events` for one watcher. Returns whether the watcher stays registered.
fn deliver(slot: &Arc<Slot>, events: &[Arc<Event>], backlog: usize) -> bool {
    if Arc::strong_count(slot) == 1 {
        return false; // the stream was dropped
    }
    let mut q = slot.queue.lock();
    if q.end.is_some() {
        return false;
    }
    let mut woke = false;
    for ev in events {
        if !ev.kv.key.starts_with(&*slot.prefix) {
            continue;
        }
        if q.events.len() >= backlog {
            q.events = VecDeque::new();
            q.end = Some(StoreError::Unavailable(format!(
                "watcher fell behind: more than {backlog} undelivered events"
            )));
            woke = true;
            break;
        }
        q.events.push_back(ev.clone());
        woke = true;
    }
    let keep = q.end.is_none();
    let waker = if woke { q.waker.take() } else { None };
    drop(q);
    if let Some(w) = waker {
        w.wake();
    }
    keep
}

/// The stream behind [`crate::WatchStream`]: history first, then the live queue.
struct Watcher {
    core: Arc<Core>,
    slot: Arc<Slot>,
    prefix: Arc<str>,
    /// Only events at or above this revision are delivered.
    from: Revision,
    /// Next history revision to read, while `next_history <= history_end`.
    next_history: Revision,
    /// The newest revision delivered by the hub before this watcher registered.
    history_end: Revision,
    buf: VecDeque<Arc<Event>>,
    done: bool,
}

impl Stream for Watcher {
    type Item = StoreResult<WatchItem>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            if let Some(ev) = this.buf.pop_front() {
                if ev.revision() >= this.from {
                    return Poll::Ready(Some(Ok(WatchItem::Event(ev))));
                }
                continue;
            }
            if this.next_history <= this.history_end {
                match this.core.read_history(
                    &this.prefix,
                    this.next_history,
                    this.history_end,
                    &mut this.buf,
                ) {
                    Ok(next) => this.next_history = next,
                    Err(err) => {
                        this.done = true;
                        return Poll::Ready(Some(Err(err)));
                    }
                }
                continue;
            }
            let mut q = this.slot.queue.lock();
            if !q.events.is_empty() {
                std::mem::swap(&mut q.events, &mut this.buf);
                continue;
            }
            if let Some(rev) = q.progress.take() {
                return Poll::Ready(Some(Ok(WatchItem::Progress(rev))));
            }
            if let Some(err) = q.end.take() {
                this.done = true;
                return Poll::Ready(Some(Err(err)));
            }
            match &mut q.waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                w => *w = Some(cx.waker().clone()),
            }
            return Poll::Pending;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn event(rev: Revision, key: &str) -> Arc<Event> {
        let kv = KeyValue {
            key: Arc::from(key),
            value: Bytes::new(),
            create_revision: rev,
            mod_revision: rev,
            version: 1,
        };
        Arc::new(Event {
            kind: EventKind::Put,
            kv,
            prev: None,
        })
    }

    fn slot(prefix: &str) -> Arc<Slot> {
        Arc::new(Slot {
            prefix: Arc::from(prefix),
            queue: Mutex::new(Queue {
                events: VecDeque::new(),
                waker: None,
                end: None,
                progress: None,
            }),
        })
    }

    fn queued(slot: &Slot) -> Vec<Revision> {
        slot.queue
            .lock()
            .events
            .iter()
            .map(|e| e.revision())
            .collect()
    }

    #[test]
    fn hub_delivers_in_revision_order_whatever_the_publish_order() {
        let hub = Hub::new(1, 100);
        let s = slot("/");
        assert_eq!(hub.register(s.clone()).unwrap(), 0);
        hub.publish(&[event(3, "/c")]);
        hub.publish(&[event(2, "/b")]);
        assert!(queued(&s).is_empty(), "nothing before revision 1 arrived");
        hub.publish(&[event(1, "/a")]);
        assert_eq!(queued(&s), [1, 2, 3]);
        hub.publish(&[event(2, "/b"), event(5, "/e"), event(4, "/d")]);
        assert_eq!(
            queued(&s),
            [1, 2, 3, 4, 5],
            "duplicates are dropped, gaps wait"
        );
        assert_eq!(hub.register(slot("/")).unwrap(), 5);
    }

    #[test]
    fn hub_cuts_off_a_full_watcher_and_forgets_dropped_ones() {
        let hub = Hub::new(1, 2);
        let full = slot("/");
        let other = slot("/x");
        hub.register(full.clone()).unwrap();
        hub.register(other.clone()).unwrap();
        hub.register(slot("/")).unwrap(); // its stream is gone at once
        hub.publish(&[event(1, "/a"), event(2, "/b"), event(3, "/c")]);
        let q = full.queue.lock();
        assert!(q.events.is_empty());
        assert!(matches!(q.end, Some(StoreError::Unavailable(_))));
        drop(q);
        assert!(queued(&other).is_empty());
        assert_eq!(
            hub.inner.lock().watchers.len(),
            1,
            "only the /x watcher is left"
        );
    }

    #[test]
    fn continue_token_round_trips() {
        let token = encode_continue(42, "/registry/pods/ns/ä");
        assert_eq!(
            decode_token(&token).unwrap(),
            (42, "/registry/pods/ns/ä".to_string())
        );
    }

    #[test]
    fn malformed_continue_tokens_are_rejected() {
        for token in [
            "", "k1", "k1.x.00", "k1.0.00", "k1.5.0", "k1.5.zz", "k2.5.00", "k1.5.ff",
        ] {
            assert!(
                matches!(decode_token(token), Err(StoreError::InvalidContinue(_))),
                "{token}"
            );
        }
    }
}
