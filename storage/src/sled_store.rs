//! The durable backend: the shared MVCC core, plus a write-ahead log of revisions in sled.
//!
//! On disk (one sled tree): `l` + big-endian revision → a *group*: the records of the writes of
//! one group commit, each `[revision i64][length u32][record]` (a record is the key-value or a
//! tombstone, plus the wall time of the write); the key is the group's first revision.
//! `m/compacted` → the compacted revision; `m/current` → a revision the log must reach (written
//! with an image, checked on open). On open, the in-memory core is rebuilt from the groups, in
//! revision order; the current revision is the newest record's, or the compacted one.
//!
//! Invariants:
//! - A write is applied to the in-memory core under its lock (so preconditions see every earlier
//!   write, durable or not) and queued for commit in revision order. A commit takes everything
//!   queued, writes it as one group in ONE sled insert (a large commit as several groups in one
//!   atomic batch) and as one frame of the commit log ([`crate::commit_log`]), `fdatasync`s the
//!   log, and only then makes those revisions visible to readers and watchers and wakes the
//!   writers: a write is acknowledged only once durable, and nothing non-durable is ever
//!   observable. Commits never overlap (one commit lock). The committer thread makes them, and
//!   concurrent writers share its syncs (group commit); a write that comes apart from others
//!   (see `Pace`) and finds nothing else queued and no commit in flight makes its own on its
//!   own thread, sparing two thread hand-offs, and leaves the log's upkeep (checkpoints,
//!   zero-extension) to the committer. sled itself is flushed by its own flusher and at the
//!   log's checkpoints, when its files are synced too (sled's flush neither empties the
//!   device's cache nor syncs its blob files); on open, the log's frames are put back into
//!   sled. While syncs are deferred ([`SledOptions::defer_syncs`]), a writer makes that commit
//!   itself, without the sync.
//! - A refused write (Conflict, NotFound, AlreadyExists) is reported only once every revision its
//!   decision depended on is durable, so errors never reveal state that a crash could lose.
//! - Every revision above the compacted one has its record on disk. Compaction drops superseded
//!   records (and tombstones together with everything they hide) by rewriting the groups that hold
//!   them, and moves `m/compacted`, in one atomic batch per step of at most 2,000 revisions: a
//!   deleted key can never come back after a crash. Compactions are serialised.
//! - Groups hold disjoint, increasing revision ranges, so reading them in key order replays the
//!   log in revision order.
//! - No lock of the core is held during IO.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex};
use tokio::sync::watch;

use crate::commit_log::{self, CommitLog};
use crate::mvcc::{Core, Op, Record, Restore, DEFAULT_WATCH_BACKLOG};
use crate::{
    Clock, CompactionPolicy, Event, EventKind, KeyValue, ListOptions, ListResult,
    ProgressRequester, ProgressWatchStream, Revision, Store, StoreError, StoreResult, SystemClock,
    WatchStream,
};

const LOG_PREFIX: u8 = b'l';
const META_CURRENT: &[u8] = b"m/current";
const META_COMPACTED: &[u8] = b"m/compacted";
const TREE_NAME: &[u8] = b"kubox-revisions";
/// The longest the latest commit may have taken for a write to commit alone: the thread
/// hand-offs a lone commit spares are worth a tenth of a millisecond, and a slow or stalling
/// disk should hold the committer, not a runtime's worker.
const LONE_COMMIT_MAX: Duration = Duration::from_millis(1);
const LONE_COMMIT_MAX_NANOS: u64 = LONE_COMMIT_MAX.as_nanos() as u64;
/// The most revisions one compaction batch covers (see [`Inner::compact`]).
const COMPACTION_STEP: Revision = 2_000;

/// Options for [`SledStore::open_with`].
#[derive(Clone, Debug)]
pub struct SledOptions {
    /// The clock used by [`Store::compact_by_policy`] (and to time-stamp writes).
    pub clock: Arc<dyn Clock>,
    /// How many undelivered events a watcher may have queued before it is cut off with
    /// [`StoreError::Unavailable`].
    pub watch_backlog: usize,
    /// Size of sled's page cache, in bytes.
    pub cache_capacity: u64,
    /// Write commits without syncing them until [`SledStore::end_deferred_syncs`]: for a
    /// server's own start-up writes, which it makes again should it stop before then, and which
    /// otherwise each wait for a sync (dozens of them, one after another). A write acknowledged
    /// meanwhile is not durable until then.
    pub defer_syncs: bool,
    /// How far the commit log's frames may reach before it is checkpointed (sled flushed and
    /// its files synced) and reused from its start.
    pub commit_log_checkpoint: u64,
}

impl Default for SledOptions {
    fn default() -> Self {
        SledOptions {
            clock: Arc::new(SystemClock),
            watch_backlog: DEFAULT_WATCH_BACKLOG,
            cache_capacity: 16 * 1024 * 1024,
            defer_syncs: false,
            commit_log_checkpoint: commit_log::CHECKPOINT_AT,
        }
    }
}

/// A durable store in a sled database directory. Reads are served from memory. Clones share the
/// store; the database closes when the last clone is dropped (or on [`Store::close`]).
#[derive(Clone)]
pub struct SledStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore")
            .field("revision", &self.inner.core.visible_revision())
            .finish()
    }
}

/// What the committer publishes: the newest durable revision, or why nothing more will be.
#[derive(Clone, Debug)]
struct Durable {
    rev: Revision,
    error: Option<StoreError>,
}

/// Writes applied in memory, waiting for the committer.
struct CommitQueue {
    state: Mutex<QueueState>,
    wake: Condvar,
    /// Commits are written without a sync ([`SledOptions::defer_syncs`]).
    deferring: AtomicBool,
}

#[derive(Default)]
struct QueueState {
    events: Vec<Arc<Event>>,
    millis: Vec<i64>,
    /// A writer committed alone and left the commit log's upkeep to the committer.
    upkeep: bool,
    shutdown: bool,
}

struct Inner {
    core: Arc<Core>,
    /// The database (and its tree): `None` only while being dropped, see `Drop`.
    db: Option<sled::Db>,
    tree: Option<sled::Tree>,
    durable: watch::Receiver<Durable>,
    committer: Mutex<Option<JoinHandle<()>>>,
    /// What commits: the committer thread, and while syncs are deferred the writers themselves.
    commits: Arc<Commits>,
}

/// Everything a commit needs; one commit at a time (`lock`), in revision order.
struct Commits {
    core: Arc<Core>,
    db: sled::Db,
    tree: sled::Tree,
    queue: CommitQueue,
    durable: watch::Sender<Durable>,
    /// How often writes come, against how long a commit takes.
    pace: Pace,
    /// Commits made by a writer alone.
    #[cfg(test)]
    lone_commits: std::sync::atomic::AtomicUsize,
    /// Held for a commit; what it holds are the buffers the commit swaps with the queue's, so
    /// that neither is allocated anew for each commit.
    lock: Mutex<Taken>,
}

/// When writes arrive, against how long a commit takes: a write may commit alone on its own
/// thread only if writes have been coming further apart than a commit lasts, the one before it
/// too (so a commit of that one would be over by now), and commits are quick
/// ([`LONE_COMMIT_MAX`]). Writes that come faster (or in bursts) share the committer's syncs,
/// and none holds a runtime's worker, which other requests need, for a sync.
struct Pace {
    start: Instant,
    /// Nanoseconds from `start` to the latest write's arrival.
    last_arrival: AtomicU64,
    /// The mean time between arrivals, in nanoseconds, weighted to the latest (each gap
    /// counts 1/8, the mean before it 7/8), each gap counted as at most two commits' time: one
    /// pause (a checkpoint, the clients' own) does not make a busy stream of writes look sparse.
    mean_gap: AtomicU64,
    /// Nanoseconds the latest commit took to write and sync.
    last_commit: AtomicU64,
}

impl Pace {
    fn new() -> Self {
        Pace {
            start: Instant::now(),
            last_arrival: AtomicU64::new(0),
            mean_gap: AtomicU64::new(0),
            last_commit: AtomicU64::new(0),
        }
    }

    fn nanos(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Note a write's arrival: true when writes, this one too, come further apart than a
    /// commit takes. (Concurrent arrivals may each miss the other's gap in the mean: it only
    /// steers where a commit is made.)
    fn arrive(&self) -> bool {
        self.arrive_at(self.nanos())
    }

    /// [`Pace::arrive`] at `now` nanoseconds from `start`.
    fn arrive_at(&self, now: u64) -> bool {
        let gap = now.saturating_sub(self.last_arrival.swap(now, Ordering::Relaxed));
        let commit = self.last_commit.load(Ordering::Relaxed);
        let mean = self.mean_gap.load(Ordering::Relaxed);
        let mean = mean - mean / 8 + gap.min(commit.saturating_mul(2)) / 8;
        self.mean_gap.store(mean, Ordering::Relaxed);
        gap > commit && mean > commit && commit < LONE_COMMIT_MAX_NANOS
    }

    fn committed(&self, took: Duration) {
        let took = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.last_commit.store(took, Ordering::Relaxed);
    }
}

/// The writes one commit takes from the queue, and the commit log it appends them to.
struct Taken {
    events: Vec<Arc<Event>>,
    millis: Vec<i64>,
    log: CommitLog,
}

pub(crate) fn io_error(what: &str, err: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(format!("{what}: {err}"))
}

fn log_key(rev: Revision) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = LOG_PREFIX;
    k[1..].copy_from_slice(&rev.to_be_bytes());
    k
}

fn decode_i64(bytes: &[u8], what: &str) -> StoreResult<i64> {
    let arr: [u8; 8] = bytes
        .try_into()
        .map_err(|_| StoreError::Internal(format!("corrupt {what}")))?;
    Ok(i64::from_be_bytes(arr))
}

/// `[kind][create_revision][version][millis][key length u32][key][value]`, integers big-endian.
fn encode_record(ev: &Event, millis: i64) -> Vec<u8> {
    let key = ev.kv.key.as_bytes();
    let mut out = Vec::with_capacity(1 + 8 * 3 + 4 + key.len() + ev.kv.value.len());
    out.push(match ev.kind {
        EventKind::Put => 0,
        EventKind::Delete => 1,
    });
    out.extend_from_slice(&ev.kv.create_revision.to_be_bytes());
    out.extend_from_slice(&ev.kv.version.to_be_bytes());
    out.extend_from_slice(&millis.to_be_bytes());
    out.extend_from_slice(&u32::try_from(key.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(&ev.kv.value);
    out
}

fn decode_record(rev: Revision, bytes: &[u8]) -> StoreResult<Record> {
    let corrupt = || StoreError::Internal(format!("corrupt log record at revision {rev}"));
    let (&kind, rest) = bytes.split_first().ok_or_else(corrupt)?;
    let kind = match kind {
        0 => EventKind::Put,
        1 => EventKind::Delete,
        _ => return Err(corrupt()),
    };
    let int = |range: std::ops::Range<usize>| -> StoreResult<i64> {
        rest.get(range)
            .ok_or_else(corrupt)
            .and_then(|b| decode_i64(b, "log record"))
    };
    let create_revision = int(0..8)?;
    let version = int(8..16)?;
    let millis = int(16..24)?;
    let key_len: [u8; 4] = rest
        .get(24..28)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(corrupt)?;
    let key_end = 28 + usize::try_from(u32::from_be_bytes(key_len)).map_err(|_| corrupt())?;
    let key = rest.get(28..key_end).ok_or_else(corrupt)?;
    let key = std::str::from_utf8(key).map_err(|_| corrupt())?;
    let value = rest.get(key_end..).ok_or_else(corrupt)?;
    Ok(Record {
        kind,
        key: Arc::from(key),
        value: Bytes::copy_from_slice(value),
        create_revision,
        version,
        millis,
    })
}

/// Open (or create) the sled database in `path`, its log tree and its commit log, and put
/// back into the tree what the commit log holds that sled may have lost.
fn open_files(path: &Path, opts: &SledOptions) -> StoreResult<(sled::Db, sled::Tree, CommitLog)> {
    let (db, tree) = open_tree(path, opts.cache_capacity)?;
    let compacted = read_meta(&tree, META_COMPACTED)?;
    let (mut log, replayed) = CommitLog::open(path, opts.commit_log_checkpoint, |first, group| {
        // At or below the compacted revision, sled holds the groups (the compaction that
        // moved it came after them in sled's log), and compaction may have rewritten them.
        if first > compacted {
            tree.insert(&log_key(first)[..], group)
                .map_err(|e| io_error("cannot replay the commit log", e))?;
        }
        Ok(())
    })?;
    if replayed {
        log.checkpoint(&db)
            .map_err(|e| io_error("cannot checkpoint the replayed commit log", e))?;
    } else {
        log.start_generation()
            .map_err(|e| io_error("cannot write the commit log", e))?;
    }
    Ok((db, tree, log))
}

fn read_meta(tree: &sled::Tree, key: &[u8]) -> StoreResult<Revision> {
    match tree
        .get(key)
        .map_err(|e| io_error("cannot read metadata", e))?
    {
        Some(v) => decode_i64(&v, "metadata"),
        None => Ok(0),
    }
}

/// Open (or create) the sled database in `path` and its log tree.
fn open_tree(path: &Path, cache_capacity: u64) -> StoreResult<(sled::Db, sled::Tree)> {
    let config = sled::Config::new()
        .path(path)
        .cache_capacity(cache_capacity)
        // sled cleans its log segments only from its periodic flusher: without it the
        // directory kept growing (300 MiB after the bench's soak, 237 MiB with it). Commits
        // are durable in the commit log; sled is flushed by this flusher and by checkpoints.
        .flush_every_ms(Some(1000));
    // A store of this process dropped just before may still hold the directory's lock for
    // a moment (sled's I/O threads finish their last writes): wait a little for it.
    let mut wait = std::time::Duration::from_millis(10);
    let db = loop {
        match config.open() {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && wait < std::time::Duration::from_secs(2) =>
            {
                std::thread::sleep(wait);
                wait *= 2;
            }
            other => break other.map_err(|e| io_error("cannot open sled database", e))?,
        }
    };
    let tree = db
        .open_tree(TREE_NAME)
        .map_err(|e| io_error("cannot open sled tree", e))?;
    Ok((db, tree))
}

/// Most records (and bytes) the committer puts in one group; a larger commit writes several.
const GROUP_MAX_RECORDS: usize = 4096;
const GROUP_MAX_BYTES: usize = 4 * 1024 * 1024;

/// Append one `[revision][length][record]` entry to a group.
fn push_entry(group: &mut Vec<u8>, rev: Revision, record: &[u8]) {
    group.extend_from_slice(&rev.to_be_bytes());
    group.extend_from_slice(
        &u32::try_from(record.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    group.extend_from_slice(record);
}

/// The `(revision, record bytes)` entries of a group, in order.
fn decode_group<'a>(key: &[u8], bytes: &'a [u8]) -> StoreResult<Vec<(Revision, &'a [u8])>> {
    let first = decode_i64(key.get(1..).unwrap_or_default(), "log key")?;
    let corrupt = || StoreError::Internal(format!("corrupt log group at revision {first}"));
    let mut entries = Vec::new();
    let mut rest = bytes;
    let mut last = first - 1;
    while !rest.is_empty() {
        let rev = decode_i64(rest.get(..8).ok_or_else(corrupt)?, "log group")?;
        let len: [u8; 4] = rest
            .get(8..12)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(corrupt)?;
        let end = 12 + usize::try_from(u32::from_be_bytes(len)).map_err(|_| corrupt())?;
        let record = rest.get(12..end).ok_or_else(corrupt)?;
        if rev <= last {
            return Err(corrupt());
        }
        last = rev;
        entries.push((rev, record));
        rest = rest.get(end..).ok_or_else(corrupt)?;
    }
    Ok(entries)
}

impl SledStore {
    /// Open (or create) a store in directory `path` with default options.
    pub fn open(path: impl AsRef<Path>) -> StoreResult<Self> {
        Self::open_with(path, SledOptions::default())
    }

    /// Open (or create) a store in directory `path`. Rebuilds the in-memory state from disk; the
    /// revision counter, the compacted revision and every acknowledged write survive a crash.
    pub fn open_with(path: impl AsRef<Path>, opts: SledOptions) -> StoreResult<Self> {
        let (db, tree, log) = open_files(path.as_ref(), &opts)?;
        Self::from_tree(db, tree, log, opts)
    }

    /// Create a store in directory `path`, which must not hold one yet, holding exactly what
    /// `image` holds, its history compacted at the image's revision (the next write gets the
    /// revision after it).
    pub fn create_from_image(
        path: impl AsRef<Path>,
        image: &crate::Image,
        opts: SledOptions,
    ) -> StoreResult<Self> {
        crate::image::state_of(image)?;
        let (db, tree, mut log) = open_files(path.as_ref(), &opts)?;
        if tree
            .first()
            .map_err(|e| io_error("cannot read log", e))?
            .is_some()
        {
            return Err(StoreError::Internal(format!(
                "{} already holds a store",
                path.as_ref().display()
            )));
        }
        let mut kvs: Vec<&KeyValue> = image.kvs.iter().collect();
        kvs.sort_by_key(|kv| kv.mod_revision);
        let mut batch = sled::Batch::default();
        for chunk in kvs.chunks(GROUP_MAX_RECORDS) {
            let mut group = Vec::new();
            for kv in chunk {
                let event = Event {
                    kind: EventKind::Put,
                    kv: (*kv).clone(),
                    prev: None,
                };
                push_entry(&mut group, kv.mod_revision, &encode_record(&event, 0));
            }
            if let Some(first) = chunk.first() {
                batch.insert(&log_key(first.mod_revision), group);
            }
        }
        batch.insert(META_COMPACTED, &image.revision.to_be_bytes());
        batch.insert(META_CURRENT, &image.revision.to_be_bytes());
        tree.apply_batch(batch)
            .map_err(|e| io_error("cannot write the image", e))?;
        log.checkpoint(&db)
            .map_err(|e| io_error("cannot sync the image", e))?;
        Self::from_tree(db, tree, log, opts)
    }

    fn from_tree(
        db: sled::Db,
        tree: sled::Tree,
        log: CommitLog,
        opts: SledOptions,
    ) -> StoreResult<Self> {
        let current = read_meta(&tree, META_CURRENT)?;
        let compacted = read_meta(&tree, META_COMPACTED)?;
        let mut restore = Restore::new(compacted);
        for item in tree.scan_prefix([LOG_PREFIX]) {
            let (k, v) = item.map_err(|e| io_error("cannot read log", e))?;
            for (rev, record) in decode_group(&k, &v)? {
                restore.push(rev, decode_record(rev, record)?)?;
            }
        }
        let state = restore.finish(current)?;
        let core = Arc::new(Core::new(state, opts.clock, opts.watch_backlog, false));
        let start = core.visible_revision();
        let (durable_tx, durable_rx) = watch::channel(Durable {
            rev: start,
            error: None,
        });
        let queue = CommitQueue {
            state: Mutex::new(QueueState::default()),
            wake: Condvar::new(),
            deferring: AtomicBool::new(opts.defer_syncs),
        };
        let commits = Arc::new(Commits {
            core: core.clone(),
            db: db.clone(),
            tree: tree.clone(),
            queue,
            durable: durable_tx,
            pace: Pace::new(),
            #[cfg(test)]
            lone_commits: Default::default(),
            lock: Mutex::new(Taken {
                events: Vec::new(),
                millis: Vec::new(),
                log,
            }),
        });
        let committer = {
            let commits = commits.clone();
            std::thread::Builder::new()
                .name("kubox-sled-commit".into())
                .spawn(move || commits.run())
                .map_err(|e| io_error("cannot start committer thread", e))?
        };
        Ok(SledStore {
            inner: Arc::new(Inner {
                core,
                db: Some(db),
                tree: Some(tree),
                durable: durable_rx,
                committer: Mutex::new(Some(committer)),
                commits,
            }),
        })
    }

    /// Stop deferring syncs ([`SledOptions::defer_syncs`]) and sync what was written
    /// meanwhile: once this returns, every acknowledged write is durable, and every later commit
    /// is synced before it is acknowledged.
    pub async fn end_deferred_syncs(&self) -> StoreResult<()> {
        if !self
            .inner
            .commits
            .queue
            .deferring
            .swap(false, Ordering::SeqCst)
        {
            return Ok(());
        }
        self.blocking(|inner| {
            // After any commit a writer is making itself (see `write`): the sync covers it.
            let mut taken = inner.commits.lock.lock();
            if let Some(failure) = inner.core.failure() {
                return Err(failure);
            }
            taken
                .log
                .sync()
                .map_err(|e| io_error("cannot sync the writes made while syncs were deferred", e))
        })
        .await
    }

    async fn write(&self, key: &str, op: Op) -> StoreResult<Arc<Event>> {
        let inner = &self.inner;
        let spaced = inner.commits.pace.arrive();
        let applied = inner.core.write(key, op, |ev, millis| {
            let mut q = inner.commits.queue.state.lock();
            q.events.push(ev.clone());
            q.millis.push(millis);
        });
        match applied {
            Ok(ev) => {
                if inner.commits.queue.deferring.load(Ordering::SeqCst) {
                    // Without a sync to wait for, a commit is sled's insert alone: the writer
                    // makes it here, sparing two thread hand-offs per write (start-up's writes
                    // come one after another).
                    inner.commits.commit_queued();
                } else if !(spaced && inner.commits.commit_alone()) {
                    inner.commits.queue.wake.notify_one();
                }
                inner.wait_durable(ev.revision()).await?;
                Ok(ev)
            }
            Err(rejected) => {
                if matches!(
                    rejected.error,
                    StoreError::Conflict { .. }
                        | StoreError::NotFound(_)
                        | StoreError::AlreadyExists(_)
                ) {
                    inner.wait_durable(rejected.observed).await?;
                }
                Err(rejected.error)
            }
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| StoreError::Internal(format!("storage task failed: {e}")))?
    }
}

impl Inner {
    fn db(&self) -> StoreResult<&sled::Db> {
        self.db
            .as_ref()
            .ok_or_else(|| StoreError::Unavailable("store is closed".into()))
    }

    fn tree(&self) -> StoreResult<&sled::Tree> {
        self.tree
            .as_ref()
            .ok_or_else(|| StoreError::Unavailable("store is closed".into()))
    }

    /// Wait until revision `rev` is durable (and so visible).
    async fn wait_durable(&self, rev: Revision) -> StoreResult<()> {
        if self.durable.borrow().rev >= rev {
            return Ok(());
        }
        let mut rx = self.durable.clone();
        let outcome = match rx.wait_for(|d| d.rev >= rev || d.error.is_some()).await {
            Ok(d) if d.rev >= rev => Ok(()),
            Ok(d) => Err(d
                .error
                .clone()
                .unwrap_or_else(|| StoreError::Internal("commit failed".into()))),
            Err(_) => Err(StoreError::Unavailable("store is closed".into())),
        };
        outcome
    }

    /// Compact memory and disk to `target` (serialised with other compactions), in steps of at
    /// most [`COMPACTION_STEP`] revisions, each one atomic batch (its rewritten groups and the
    /// new `m/compacted`) and one flush. sled keeps everything one batch replaces until the
    /// batch ends, and the allocator keeps that peak: one batch for a whole compaction of a busy
    /// store took the process from ~75 to ~240 MiB of heap, steps keep it near 80.
    fn compact(&self, target: Revision) -> StoreResult<Revision> {
        let _serial = self.core.compact_lock.lock();
        let mut done = self.core.compacted_revision();
        while done < target {
            if self.core.is_closed() {
                return Err(StoreError::Unavailable("store is closed".into()));
            }
            let step = target.min(done.saturating_add(COMPACTION_STEP));
            let removed = self.core.compact(step)?;
            let after = self.core.compacted_revision();
            if after <= done {
                break;
            }
            let mut batch = self.drop_records(removed)?;
            batch.insert(META_COMPACTED, &after.to_be_bytes()[..]);
            self.tree()?
                .apply_batch(batch)
                .map_err(|e| io_error("cannot write compaction", e))?;
            self.db()?
                .flush()
                .map_err(|e| io_error("cannot flush compaction", e))?;
            done = after;
        }
        Ok(self.core.compacted_revision())
    }

    /// A batch that rewrites (or removes) every group holding one of the `removed` revisions,
    /// without them.
    fn drop_records(&self, mut removed: Vec<Revision>) -> StoreResult<sled::Batch> {
        removed.sort_unstable();
        let mut batch = sled::Batch::default();
        let mut i = 0;
        while let Some(&rev) = removed.get(i) {
            let found = self
                .tree()?
                .range(&[LOG_PREFIX][..]..=&log_key(rev)[..])
                .next_back()
                .transpose()
                .map_err(|e| io_error("cannot read log", e))?;
            let Some((key, value)) = found else {
                i += 1; // not on disk (cannot happen): nothing to drop
                continue;
            };
            let entries = decode_group(&key, &value)?;
            let last = entries.last().map_or(rev, |&(r, _)| r.max(rev));
            let mut drop = std::collections::HashSet::new();
            while let Some(&r) = removed.get(i).filter(|&&r| r <= last) {
                drop.insert(r);
                i += 1;
            }
            let kept: Vec<_> = entries.iter().filter(|(r, _)| !drop.contains(r)).collect();
            if kept.is_empty() {
                batch.remove(key);
            } else if kept.len() < entries.len() {
                let mut group = Vec::with_capacity(value.len());
                for &&(r, record) in &kept {
                    push_entry(&mut group, r, record);
                }
                batch.insert(key, group);
            }
        }
        Ok(batch)
    }

    /// Stop the committer (after it drained its queue) and flush.
    fn shutdown(&self) -> StoreResult<()> {
        let queue = &self.commits.queue;
        queue.state.lock().shutdown = true;
        queue.wake.notify_all();
        let handle = self.committer.lock().take();
        if let Some(handle) = handle {
            handle
                .join()
                .map_err(|_| StoreError::Internal("committer thread panicked".into()))?;
        }
        // Unless a write failed: sled after a failed write (a full disk) may wait forever to
        // make anything more stable, and nothing acknowledged is left to flush then.
        if let Some(failure) = self.core.failure() {
            return Err(failure);
        }
        // Flushed and synced, sled holds every commit: the next open replays nothing.
        let db = self.db()?;
        let mut taken = self.commits.lock.lock();
        taken
            .log
            .checkpoint(db)
            .and_then(|()| taken.log.sync())
            .map_err(|e| io_error("cannot checkpoint the commit log", e))
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Err(err) = self.shutdown() {
            tracing::error!(%err, "closing the sled store failed");
        }
        if self.core.failure().is_some() {
            // Dropping sled's last handle flushes, and after a failed write (a full disk) that
            // flush waits forever: leave the handles to the process's end instead.
            std::mem::forget(self.tree.take());
            std::mem::forget(self.db.take());
        }
    }
}

impl Commits {
    /// The committer thread's loop: wait for queued writes, commit them.
    fn run(&self) {
        loop {
            {
                let mut q = self.queue.state.lock();
                while q.events.is_empty() && !q.upkeep && !q.shutdown {
                    self.queue.wake.wait(&mut q);
                }
                if q.events.is_empty() && !q.upkeep {
                    return; // shut down with nothing left to commit
                }
            }
            if !self.commit_queued() {
                return;
            }
        }
    }

    /// Take everything queued, write it in one batch, flush (unless syncs are deferred),
    /// publish, then see to the log's upkeep. False once the store failed.
    fn commit_queued(&self) -> bool {
        self.commit(&mut self.lock.lock(), true)
    }

    /// Commit on the writer's own thread when it is the only write queued and no commit is in
    /// flight (for a write that came apart from others, see [`Pace`]), sparing the two thread
    /// hand-offs (to the committer and back) that otherwise cost as much as the sync itself;
    /// the log's upkeep is left to the committer. False when the committer has to do it.
    fn commit_alone(&self) -> bool {
        let Some(mut taken) = self.lock.try_lock() else {
            return false;
        };
        if self.queue.state.lock().events.len() != 1 {
            return false;
        }
        #[cfg(test)]
        self.lone_commits.fetch_add(1, Ordering::SeqCst);
        if self.commit(&mut taken, false) && taken.log.wants_upkeep() {
            drop(taken);
            self.queue.state.lock().upkeep = true;
            self.queue.wake.notify_one();
        }
        true
    }

    /// Commit what is queued with the commit lock held (`taken`); `upkeep`: then checkpoint or
    /// extend the log if it needs it (what a lone commit asked for is then done). False once
    /// the store failed.
    fn commit(&self, taken: &mut Taken, upkeep: bool) -> bool {
        if self.core.failure().is_some() {
            return false;
        }
        {
            let mut q = self.queue.state.lock();
            std::mem::swap(&mut q.events, &mut taken.events);
            std::mem::swap(&mut q.millis, &mut taken.millis);
            if upkeep {
                q.upkeep = false;
            }
        }
        let Taken {
            events,
            millis,
            log,
        } = taken;
        let committed = match events.last().map(|ev| ev.revision()) {
            Some(last) => self.timed_write(events, millis, log).map(|()| {
                self.core.advance_visible(last, events);
                self.durable.send_modify(|d| d.rev = last);
                events.clear();
                millis.clear();
            }),
            None => Ok(()), // committed by another
        }
        // Between commits: what the log needs, while no writer waits for it if possible.
        .and_then(|()| {
            if upkeep {
                self.maintain_log(log)
            } else {
                Ok(())
            }
        });
        match committed {
            Ok(()) => true,
            Err(err) => {
                tracing::error!(%err, "sled commit failed; the store refuses further writes until kubox restarts (reads and watches go on)");
                // The writes waiting on this commit get its error; later ones are refused up
                // front. What was applied in memory but never made durable is never visible.
                self.core.fail(StoreError::Unavailable(format!(
                    "the store refuses writes since a commit failed ({err}); restart kubox once the cause is fixed"
                )));
                self.durable.send_modify(|d| d.error = Some(err));
                false
            }
        }
    }

    /// [`Commits::write`], its time noted in [`Commits::pace`].
    fn timed_write(
        &self,
        events: &[Arc<Event>],
        millis: &[i64],
        log: &mut CommitLog,
    ) -> StoreResult<()> {
        let start = Instant::now();
        let written = self.write(events, millis, log);
        self.pace.committed(start.elapsed());
        written
    }

    /// Write one commit: its records into sled as groups (not flushed), and those groups as
    /// one frame of the commit log, synced unless syncs are deferred.
    fn write(&self, events: &[Arc<Event>], millis: &[i64], log: &mut CommitLog) -> StoreResult<()> {
        let mut groups: Vec<(Revision, Vec<u8>)> = Vec::new();
        let mut group_len = 0;
        for (ev, &ms) in events.iter().zip(millis) {
            let full = groups
                .last()
                .is_none_or(|(_, g)| group_len == GROUP_MAX_RECORDS || g.len() >= GROUP_MAX_BYTES);
            if full {
                groups.push((ev.revision(), Vec::new()));
                group_len = 0;
            }
            if let Some((_, group)) = groups.last_mut() {
                push_entry(group, ev.revision(), &encode_record(ev, ms));
            }
            group_len += 1;
        }
        log.prepare_frame(&groups)
            .map_err(|e| io_error("cannot write the commit log", e))?;
        // Into sled (its memory: not flushed) before the frame is written, so the commit waits
        // for the log's sync alone. One group is one insert: sled writes a batch of several
        // keys as two log buffers.
        if let [(first, group)] = &mut groups[..] {
            self.tree
                .insert(&log_key(*first)[..], std::mem::take(group))
                .map(drop)
        } else {
            let mut batch = sled::Batch::default();
            for (first, group) in groups {
                batch.insert(&log_key(first)[..], group);
            }
            self.tree.apply_batch(batch)
        }
        .map_err(|e| io_error("cannot write log", e))?;
        // Read after the write: should `end_deferred_syncs` have cleared it since, its own
        // sync (of the log, after this commit: it takes the commit lock) covers this write.
        let sync = !self.queue.deferring.load(Ordering::SeqCst);
        log.write_frame(sync)
            .map_err(|e| io_error("cannot write the commit log", e))
    }

    /// Checkpoint the commit log once its frames reached the checkpoint size; else, when no
    /// write is queued, extend it with zeros if it is running short.
    fn maintain_log(&self, log: &mut CommitLog) -> StoreResult<()> {
        if log.wants_checkpoint() {
            return log
                .checkpoint(&self.db)
                .map_err(|e| io_error("cannot checkpoint the commit log", e));
        }
        let idle = self.queue.state.lock().events.is_empty();
        if idle && !self.queue.deferring.load(Ordering::SeqCst) {
            log.extend_if_short()
                .map_err(|e| io_error("cannot extend the commit log", e))?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Store for SledStore {
    async fn current_revision(&self) -> StoreResult<Revision> {
        Ok(self.inner.core.visible_revision())
    }

    async fn get(&self, key: &str, revision: Option<Revision>) -> StoreResult<KeyValue> {
        self.inner.core.get(key, revision)
    }

    async fn list(&self, prefix: &str, opts: ListOptions) -> StoreResult<ListResult> {
        self.inner.core.list(prefix, &opts)
    }

    async fn count(&self, prefix: &str) -> StoreResult<usize> {
        Ok(self.inner.core.count(prefix))
    }

    async fn create(&self, key: &str, value: Bytes) -> StoreResult<KeyValue> {
        Ok(self.write(key, Op::Create(value)).await?.kv.clone())
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Option<Revision>,
    ) -> StoreResult<KeyValue> {
        Ok(self
            .write(key, Op::Update(value, expected))
            .await?
            .kv
            .clone())
    }

    async fn delete(
        &self,
        key: &str,
        expected: Option<Revision>,
    ) -> StoreResult<(KeyValue, Revision)> {
        let event = self.write(key, Op::Delete(expected)).await?;
        let prev = event
            .prev
            .as_deref()
            .cloned()
            .ok_or_else(|| StoreError::Internal("delete without a previous value".into()))?;
        Ok((prev, event.revision()))
    }

    async fn watch(&self, prefix: &str, start: Revision) -> StoreResult<WatchStream> {
        self.inner.core.watch(prefix, start)
    }

    async fn watch_progress(
        &self,
        prefix: &str,
        start: Revision,
    ) -> StoreResult<(ProgressWatchStream, Arc<dyn ProgressRequester>)> {
        self.inner.core.watch_progress(prefix, start)
    }

    async fn compact(&self, revision: Revision) -> StoreResult<()> {
        self.blocking(move |inner| inner.compact(revision))
            .await
            .map(|_| ())
    }

    async fn compacted_revision(&self) -> StoreResult<Revision> {
        Ok(self.inner.core.compacted_revision())
    }

    async fn compact_by_policy(&self, policy: CompactionPolicy) -> StoreResult<Revision> {
        self.blocking(move |inner| {
            let target = inner.core.policy_target(policy);
            if target > inner.core.compacted_revision() {
                inner.compact(target)
            } else {
                Ok(inner.core.compacted_revision())
            }
        })
        .await
    }

    fn health(&self) -> StoreResult<()> {
        match self.inner.core.failure() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    async fn close(&self) -> StoreResult<()> {
        let last = self.inner.core.close_writes();
        let drained = self.inner.wait_durable(last).await;
        self.inner
            .core
            .close_watches(StoreError::Unavailable("store is closed".into()));
        self.blocking(|inner| inner.shutdown()).await?;
        drained
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn records_round_trip() {
        let ev = Event {
            kind: EventKind::Put,
            kv: KeyValue {
                key: Arc::from("/a/ключ"),
                value: Bytes::from_static(b"\x00value"),
                create_revision: 3,
                mod_revision: 9,
                version: 4,
            },
            prev: None,
        };
        let rec = decode_record(9, &encode_record(&ev, 1234)).unwrap();
        assert_eq!(rec.kind, EventKind::Put);
        assert_eq!(&*rec.key, "/a/ключ");
        assert_eq!(rec.value, ev.kv.value);
        assert_eq!((rec.create_revision, rec.version, rec.millis), (3, 4, 1234));
    }

    #[test]
    fn truncated_records_are_corrupt() {
        let ev = Event {
            kind: EventKind::Delete,
            kv: KeyValue {
                key: Arc::from("k"),
                value: Bytes::new(),
                create_revision: 0,
                mod_revision: 2,
                version: 0,
            },
            prev: None,
        };
        let bytes = encode_record(&ev, 0);
        for len in 0..bytes.len() {
            assert!(decode_record(2, &bytes[..len]).is_err(), "length {len}");
        }
        assert!(decode_record(2, &bytes).is_ok());
    }

    fn one_record_group(
        kind: EventKind,
        key: &str,
        value: &'static [u8],
        rev: Revision,
    ) -> (Revision, Vec<u8>) {
        let put = kind == EventKind::Put;
        let ev = Event {
            kind,
            kv: KeyValue {
                key: Arc::from(key),
                value: Bytes::from_static(value),
                create_revision: if put { rev } else { 0 },
                mod_revision: rev,
                version: i64::from(put),
            },
            prev: None,
        };
        let mut group = Vec::new();
        push_entry(&mut group, rev, &encode_record(&ev, 0));
        (rev, group)
    }

    /// Writes come alone when they come further apart than a commit lasts, and a pause in a
    /// stream of writes closer together than that does not make the next ones alone.
    #[test]
    fn pace_tells_sparse_writes_from_a_busy_stream() {
        let pace = Pace::new();
        pace.committed(Duration::from_micros(200));
        let mut now = 0;
        let mut arrive = |gap_micros: u64| {
            now += gap_micros * 1_000;
            pace.arrive_at(now)
        };
        let sparse: Vec<bool> = (0..40).map(|_| arrive(500)).collect();
        assert!(sparse[20..].iter().all(|&alone| alone), "{sparse:?}");
        let busy: Vec<bool> = (0..40).map(|_| arrive(50)).collect();
        assert!(busy[20..].iter().all(|&alone| !alone), "{busy:?}");
        // A 50 ms pause (a checkpoint, say), then the stream again.
        assert!(!arrive(50_000), "one long gap against a busy mean");
        let after: Vec<bool> = (0..20).map(|_| arrive(50)).collect();
        assert!(after.iter().all(|&alone| !alone), "{after:?}");
        // Gaps above a commit's time but close to it still count as sparse.
        let near: Vec<bool> = (0..60).map(|_| arrive(250)).collect();
        assert!(near[40..].iter().all(|&alone| alone), "{near:?}");
        // Once a commit took longer than a lone one may, none is alone, however sparse.
        pace.committed(LONE_COMMIT_MAX + Duration::from_micros(1));
        let slow: Vec<bool> = (0..40).map(|_| arrive(50_000)).collect();
        assert!(slow.iter().all(|&alone| !alone), "{slow:?}");
    }

    /// A write that commits on its own thread leaves the log's upkeep to the committer: the
    /// log is still reused from its start once its frames reach the checkpoint size, and kept
    /// extended with zeros ahead of them.
    #[tokio::test]
    async fn lone_commits_leave_the_logs_upkeep_to_the_committer() {
        let dir = tempfile::tempdir().unwrap();
        let checkpoint = 8 * 1024;
        let opts = SledOptions {
            commit_log_checkpoint: checkpoint,
            ..SledOptions::default()
        };
        let s = SledStore::open_with(dir.path(), opts).unwrap();
        let commits = s.inner.commits.clone();
        let value = Bytes::from(vec![b'v'; 512]);
        // Lone commits whose frames fill the log about four times over (a write commits alone
        // unless the committer holds the commit lock just then, which a busy machine makes
        // more likely: write until enough did).
        let wanted = (4 * checkpoint) as usize / value.len();
        let mut writes = 0;
        while commits.lone_commits.load(Ordering::SeqCst) < wanted && writes < 20 * wanted {
            // Each write comes as if long after the one before.
            commits.pace.last_commit.store(0, Ordering::Relaxed);
            commits.pace.mean_gap.store(u64::MAX / 2, Ordering::Relaxed);
            s.create(&format!("/k{writes}"), value.clone())
                .await
                .unwrap();
            writes += 1;
        }
        let lone = commits.lone_commits.load(Ordering::SeqCst);
        assert!(lone >= wanted, "{lone} of {writes} writes committed alone");

        // The upkeep the last lone commit asked for, if any, is over once the committer took
        // it (the flag cleared) and let go of the commit lock.
        let waited = tokio::time::timeout(Duration::from_secs(30), async {
            while commits.queue.state.lock().upkeep {
                tokio::task::yield_now().await;
            }
        })
        .await;
        assert!(waited.is_ok(), "the committer never took the upkeep");
        let (pos, len, generation) = commits.lock.lock().log.extent();
        assert!(
            pos < checkpoint,
            "frames reach {pos}, past the checkpoint at {checkpoint}"
        );
        assert!(generation >= 3, "checkpoints: {}", generation - 1);
        assert!(
            len >= pos + commit_log::EXTEND_BY / 4,
            "zeros ahead of the frames: {}",
            len - pos
        );

        s.close().await.unwrap();
        drop((s, commits)); // sled's handles, that hold its lock
        let s = SledStore::open(dir.path()).unwrap();
        for i in 0..writes {
            assert_eq!(s.get(&format!("/k{i}"), None).await.unwrap().value, value);
        }
    }

    /// Frames whose groups a compaction has since removed from sled are not put back: a crash
    /// after a compaction would otherwise bring its garbage back to disk for good.
    #[tokio::test]
    async fn replay_puts_back_only_groups_above_the_compacted_revision() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = SledStore::open(dir.path()).unwrap();
            s.create("/k", Bytes::from_static(b"1")).await.unwrap();
            s.delete("/k", None).await.unwrap();
            s.create("/j", Bytes::from_static(b"3")).await.unwrap();
            s.compact(2).await.unwrap();
            s.close().await.unwrap();
        }
        // As if the process had died after the compaction, the three commits' frames still in
        // the log.
        let (mut log, replayed) =
            CommitLog::open(dir.path(), commit_log::CHECKPOINT_AT, |_, _| Ok(())).unwrap();
        assert!(!replayed, "a closed store's log holds no frame");
        log.start_generation().unwrap();
        log.append(&[one_record_group(EventKind::Put, "/k", b"1", 1)], true)
            .unwrap();
        log.append(&[one_record_group(EventKind::Delete, "/k", b"", 2)], true)
            .unwrap();
        log.append(&[one_record_group(EventKind::Put, "/j", b"3", 3)], true)
            .unwrap();
        drop(log);

        let s = SledStore::open(dir.path()).unwrap();
        let firsts: Vec<Revision> = s
            .inner
            .tree()
            .unwrap()
            .scan_prefix([LOG_PREFIX])
            .map(|item| {
                let (key, _) = item.unwrap();
                i64::from_be_bytes(key[1..9].try_into().unwrap())
            })
            .collect();
        assert_eq!(firsts, vec![3], "groups in sled after the replay");
        assert_eq!(
            s.get("/j", None).await.unwrap().value,
            Bytes::from_static(b"3")
        );
        assert!(matches!(
            s.get("/k", None).await,
            Err(StoreError::NotFound(_))
        ));
        assert_eq!(s.compacted_revision().await.unwrap(), 2);
    }
}
