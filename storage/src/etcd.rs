//! The etcd v3 backend: the [`Store`] contract over an etcd cluster, through the `etcd-client`
//! gRPC client.
//!
//! - Revisions are etcd's own: the store-wide revision is etcd's, `mod_revision` and
//!   `create_revision` are the key's. A fresh etcd is at revision 1, so its first write gets 2.
//! - Creates, updates and deletes are single transactions: a create compares the key's
//!   `create_revision` with 0, a conditional update or delete its `mod_revision` with the expected
//!   one; a refused write reads the key in the same transaction, so a conflict carries the value
//!   it lost to.
//! - Compaction is etcd's. This contract forgets revisions *at and below* the compacted one,
//!   etcd those *below* it, so `compact(r)` asks etcd to compact at `r + 1` (at `r` when `r` is
//!   the current revision). The compacted revision is what this process knows: its own
//!   compactions, and what etcd's refusals told it.
//! - Watches are etcd watches with previous values, one gRPC stream each, pumped into a bounded
//!   queue: a watcher that falls behind is cut off, never etcd's stream held back.
//! - Progress reports are checked, not taken from etcd's progress notifications (which etcd
//!   before 3.4.24 and 3.5.8 may send ahead of the events they cover): asked for one, the watch
//!   reads the newest revision R and the prefix's key count with one linearizable read, and
//!   reports R only when no key under the prefix changed after its last event (no key modified
//!   since, and as many keys as its events account for). Otherwise it asks again after the
//!   next event or a short pause. An event that arrives at or below a revision already
//!   reported ends the watch with an error (its reader relists).
//! - Every request is bounded by a time-out; an unreachable etcd is [`StoreError::Unavailable`],
//!   and [`Store::health`] says so until etcd answers again (a background probe asks every
//!   second while it does not, every five seconds while it does).
//! - Keys: a [`KeyRoot`] maps the root of kubox's keys onto another one in etcd (kube-apiserver's
//!   `--etcd-prefix`).
use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use etcd_client as ec;
use parking_lot::Mutex;
use tokio::sync::{mpsc, watch, Notify};

use crate::mvcc::{decode_continue, encode_continue, DEFAULT_WATCH_BACKLOG};
use crate::{
    unix_millis, Clock, CompactionPolicy, Event, EventKind, KeyValue, ListOptions, ListResult,
    ProgressRequester, ProgressWatchStream, Revision, Store, StoreError, StoreResult, SystemClock,
    WatchItem, WatchStream,
};

/// Where kubox's keys live in etcd: keys beginning with `kubox` are stored beginning with `etcd`
/// instead (both without a trailing `/`); other keys are stored as they are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRoot {
    /// The root of kubox's own keys (e.g. `/registry`).
    pub kubox: String,
    /// What stands for it in etcd (e.g. `/team-a/registry`).
    pub etcd: String,
}

/// TLS towards etcd: the CA that signed its serving certificates and a client identity (PEM).
#[derive(Clone, Debug, Default)]
pub struct EtcdTls {
    /// CA certificates (PEM) that etcd's serving certificate must chain to.
    pub ca_pem: Option<Vec<u8>>,
    /// Client certificate and key (PEM), when etcd asks for one.
    pub client_pem: Option<(Vec<u8>, Vec<u8>)>,
}

/// How to reach etcd.
#[derive(Clone)]
pub struct EtcdOptions {
    /// Client URLs of the cluster's members (`http://` or `https://`).
    pub endpoints: Vec<String>,
    /// Where kubox's keys live in etcd (`None`: as they are).
    pub root: Option<KeyRoot>,
    /// TLS settings for `https://` endpoints.
    pub tls: Option<EtcdTls>,
    /// The clock of [`Store::compact_by_policy`].
    pub clock: Arc<dyn Clock>,
    /// Events queued per watcher before it is cut off.
    pub watch_backlog: usize,
    /// How long one request may take before it is [`StoreError::Unavailable`].
    pub request_timeout: Duration,
}

impl Default for EtcdOptions {
    fn default() -> Self {
        EtcdOptions {
            endpoints: vec!["http://127.0.0.1:2379".to_string()],
            root: None,
            tls: None,
            clock: Arc::new(SystemClock),
            watch_backlog: DEFAULT_WATCH_BACKLOG,
            request_timeout: Duration::from_secs(5),
        }
    }
}

impl std::fmt::Debug for EtcdOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdOptions")
            .field("endpoints", &self.endpoints)
            .field("root", &self.root)
            .field("tls", &self.tls.is_some())
            .field("watch_backlog", &self.watch_backlog)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

/// The [`Store`] over an etcd v3 cluster.
#[derive(Clone)]
pub struct EtcdStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: ec::Client,
    root: Option<KeyRoot>,
    clock: Arc<dyn Clock>,
    backlog: usize,
    timeout: Duration,
    closed: AtomicBool,
    close_tx: watch::Sender<bool>,
    /// The compacted revision as this process knows it.
    compacted: AtomicI64,
    /// Whether etcd's compaction before this process was learned ([`Inner::learn_compaction`]).
    learned: AtomicBool,
    /// Why etcd cannot be used right now (None: it answered last time).
    unhealthy: Mutex<Option<String>>,
    /// Set when no member answered within the time-out (and until one does): requests fail at
    /// once instead of each waiting out the time-out; the probe finds out when etcd is back.
    tripped: AtomicBool,
    policy: Mutex<PolicyLog>,
}

/// What [`Store::compact_by_policy`] decides on: when revisions were seen, and the bytes of
/// history this process wrote.
#[derive(Default)]
struct PolicyLog {
    /// (wall-clock millis, newest revision seen by then), both increasing.
    marks: VecDeque<(i64, Revision)>,
    /// (revision, bytes of history it keeps alive) of this process's writes.
    writes: VecDeque<(Revision, u64)>,
    bytes: u64,
}

impl PolicyLog {
    fn mark(&mut self, millis: i64, rev: Revision) {
        match self.marks.back_mut() {
            Some((t, r)) if *t >= millis => *r = (*r).max(rev),
            Some((_, r)) if *r >= rev => {}
            _ => self.marks.push_back((millis, rev)),
        }
    }

    fn forget_upto(&mut self, compacted: Revision) {
        while self.marks.len() >= 2 && self.marks.get(1).is_some_and(|&(_, r)| r <= compacted) {
            self.marks.pop_front();
        }
        while let Some(&(rev, bytes)) = self.writes.front() {
            if rev > compacted {
                break;
            }
            self.bytes -= bytes;
            self.writes.pop_front();
        }
    }
}

/// An etcd failure before it is given the context of the request that met it.
enum Failure {
    Compacted,
    Future,
    Unavailable(String),
    Internal(String),
}

impl Failure {
    fn classify(err: ec::Error) -> Failure {
        match err {
            ec::Error::GRpcStatus(status) => {
                let msg = status.message();
                if msg.contains("required revision has been compacted") {
                    Failure::Compacted
                } else if msg.contains("required revision is a future revision") {
                    Failure::Future
                } else {
                    use tonic::Code;
                    match status.code() {
                        Code::Unavailable
                        | Code::DeadlineExceeded
                        | Code::Cancelled
                        | Code::ResourceExhausted
                        | Code::Aborted
                        | Code::Unknown => {
                            Failure::Unavailable(format!("etcd: {msg}{}", causes(&status)))
                        }
                        _ => Failure::Internal(format!("etcd: {msg}{}", causes(&status))),
                    }
                }
            }
            ec::Error::TransportError(e) => {
                Failure::Unavailable(format!("etcd: {e}{}", causes(&e)))
            }
            ec::Error::IoError(e) => Failure::Unavailable(format!("etcd: {e}")),
            ec::Error::WatchError(e) => Failure::Unavailable(format!("etcd watch: {e}")),
            other => Failure::Internal(format!("etcd: {other}")),
        }
    }
}

/// What caused `err`, each cause after a colon (a transport error says what broke).
fn causes(err: &dyn std::error::Error) -> String {
    let mut out = String::new();
    let mut next = err.source();
    while let Some(cause) = next {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        next = cause.source();
    }
    out
}

/// The smallest key after every key beginning with `prefix` (etcd's prefix range end).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

impl EtcdStore {
    /// A store over the etcd cluster at `opts.endpoints`. Connections are made lazily: an etcd
    /// that is not up yet makes requests fail with [`StoreError::Unavailable`] until it is.
    pub async fn connect(opts: EtcdOptions) -> StoreResult<EtcdStore> {
        if opts.endpoints.is_empty() {
            return Err(StoreError::Internal("no etcd endpoints given".into()));
        }
        let mut connect = ec::ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5))
            .with_keep_alive_while_idle(true);
        if let Some(tls) = &opts.tls {
            let mut t = ec::TlsOptions::new();
            if let Some(ca) = &tls.ca_pem {
                t = t.ca_certificate(ec::Certificate::from_pem(ca));
            }
            if let Some((cert, key)) = &tls.client_pem {
                t = t.identity(ec::Identity::from_pem(cert, key));
            }
            connect = connect.with_tls(t);
        }
        let client = ec::Client::connect(&opts.endpoints, Some(connect))
            .await
            .map_err(|e| StoreError::Internal(format!("etcd client: {e}")))?;
        let inner = Arc::new(Inner {
            client,
            root: opts.root.filter(|r| r.kubox != r.etcd),
            clock: opts.clock,
            backlog: opts.watch_backlog.max(1),
            timeout: opts.request_timeout,
            closed: AtomicBool::new(false),
            close_tx: watch::channel(false).0,
            compacted: AtomicI64::new(0),
            learned: AtomicBool::new(false),
            unhealthy: Mutex::new(None),
            tripped: AtomicBool::new(false),
            policy: Mutex::new(PolicyLog::default()),
        });
        tokio::spawn(probe(Arc::downgrade(&inner)));
        Ok(EtcdStore { inner })
    }
}

/// Ask etcd whether it answers: every second while it does not, every five while it does.
async fn probe(inner: Weak<Inner>) {
    loop {
        let pause = match inner.upgrade() {
            Some(i) if !i.closed.load(Ordering::Acquire) => {
                if let Ok(current) = i.probe().await {
                    if !i.learned.load(Ordering::Acquire) {
                        let _ = i.learn_compaction(current).await;
                    }
                }
                if i.unhealthy.lock().is_some() {
                    Duration::from_secs(1)
                } else {
                    Duration::from_secs(5)
                }
            }
            _ => return,
        };
        tokio::time::sleep(pause).await;
    }
}

impl Inner {
    fn etcd_key(&self, key: &str) -> Vec<u8> {
        match &self.root {
            Some(root) => match key.strip_prefix(root.kubox.as_str()) {
                Some(rest) => format!("{}{rest}", root.etcd).into_bytes(),
                None => key.as_bytes().to_vec(),
            },
            None => key.as_bytes().to_vec(),
        }
    }

    fn kubox_key(&self, key: &[u8]) -> Arc<str> {
        let key = String::from_utf8_lossy(key);
        match &self.root {
            Some(root) => match key.strip_prefix(root.etcd.as_str()) {
                Some(rest) => Arc::from(format!("{}{rest}", root.kubox)),
                None => Arc::from(key.as_ref()),
            },
            None => Arc::from(key.as_ref()),
        }
    }

    fn kv(&self, kv: &ec::KeyValue) -> KeyValue {
        KeyValue {
            key: self.kubox_key(kv.key()),
            value: Bytes::copy_from_slice(kv.value()),
            create_revision: kv.create_revision(),
            mod_revision: kv.mod_revision(),
            version: kv.version(),
        }
    }

    fn event(&self, ev: &ec::Event) -> Option<Event> {
        let kv = ev.kv()?;
        let prev = ev.prev_kv().map(|p| Box::new(self.kv(p)));
        Some(match ev.event_type() {
            ec::EventType::Put => Event {
                kind: EventKind::Put,
                kv: self.kv(kv),
                prev,
            },
            ec::EventType::Delete => Event {
                kind: EventKind::Delete,
                kv: KeyValue {
                    key: self.kubox_key(kv.key()),
                    value: Bytes::new(),
                    create_revision: 0,
                    mod_revision: kv.mod_revision(),
                    version: 0,
                },
                prev,
            },
        })
    }

    /// Run one etcd request under the time-out, noting whether etcd answered; at once
    /// [`Failure::Unavailable`] while no member answers.
    async fn call<T>(
        &self,
        request: impl Future<Output = Result<T, ec::Error>>,
    ) -> Result<T, Failure> {
        if self.tripped.load(Ordering::Acquire) {
            let why = self.unhealthy.lock().clone();
            return Err(Failure::Unavailable(
                why.unwrap_or_else(|| "etcd does not answer".to_string()),
            ));
        }
        self.call_anyway(request).await
    }

    /// [`Inner::call`] even while no member answered last time (the probe).
    async fn call_anyway<T>(
        &self,
        request: impl Future<Output = Result<T, ec::Error>>,
    ) -> Result<T, Failure> {
        let outcome = match tokio::time::timeout(self.timeout, request).await {
            Err(_) => {
                self.tripped.store(true, Ordering::Release);
                Err(Failure::Unavailable(format!(
                    "etcd did not answer within {:?}",
                    self.timeout
                )))
            }
            Ok(Err(e)) => Err(Failure::classify(e)),
            Ok(Ok(v)) => Ok(v),
        };
        match &outcome {
            Err(Failure::Unavailable(why)) => *self.unhealthy.lock() = Some(why.clone()),
            _ => {
                *self.unhealthy.lock() = None;
                self.tripped.store(false, Ordering::Release);
            }
        }
        outcome
    }

    /// Learn how far etcd was compacted before this process (by another replica, an earlier
    /// run, an operator): the oldest revision it still reads, found by bisection between
    /// revision 1 and `current` (etcd reads every revision from its compaction on).
    async fn learn_compaction(&self, current: Revision) -> Result<(), Failure> {
        let readable = |rev: Revision| async move {
            match self.call(self.revision_read(rev)).await {
                Ok(_) => Ok(true),
                Err(Failure::Compacted) => Ok(false),
                Err(f) => Err(f),
            }
        };
        if current <= 1 || readable(1).await? {
            self.learned.store(true, Ordering::Release);
            return Ok(());
        }
        // Revision `lo` is refused, `hi` is read.
        let (mut lo, mut hi) = (1, current);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if readable(mid).await? {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        self.compacted.fetch_max(hi - 1, Ordering::AcqRel);
        self.learned.store(true, Ordering::Release);
        Ok(())
    }

    /// Ask etcd for its revision even while it does not answer. Failing twice in a row (a
    /// refused connection, not only a time-out) also makes requests fail at once until it
    /// answers; once may be a connection to a member that just went away.
    async fn probe(&self) -> Result<Revision, Failure> {
        let mut last = None;
        for _ in 0..2 {
            match self.call_anyway(self.revision_read(0)).await {
                Ok(resp) => return Ok(resp.header().map_or(0, |h| h.revision())),
                Err(Failure::Unavailable(why)) => last = Some(why),
                Err(f) => return Err(f),
            }
        }
        self.tripped.store(true, Ordering::Release);
        Err(Failure::Unavailable(
            last.unwrap_or_else(|| "etcd does not answer".to_string()),
        ))
    }

    fn kv_client(&self) -> ec::KvClient {
        self.client.kv_client()
    }

    /// A read of no value, for etcd's revision (`at` 0) or to learn whether revision `at` is
    /// still readable.
    fn revision_read(
        &self,
        at: Revision,
    ) -> impl Future<Output = Result<ec::GetResponse, ec::Error>> + use<> {
        let mut kv = self.kv_client();
        let mut opts = ec::GetOptions::new().with_count_only().with_limit(1);
        if at > 0 {
            opts = opts.with_revision(at);
        }
        let key = self.etcd_key("/");
        async move { kv.get(key, Some(opts)).await }
    }

    /// Compacted when `requested` is at or below the compacted revision this process knows.
    fn check_not_compacted(&self, requested: Revision) -> StoreResult<()> {
        if requested <= self.compacted() {
            return Err(self.compacted_error(requested));
        }
        Ok(())
    }

    fn now_millis(&self) -> i64 {
        unix_millis(self.clock.now())
    }

    fn compacted(&self) -> Revision {
        self.compacted.load(Ordering::Acquire)
    }

    fn compacted_error(&self, requested: Revision) -> StoreError {
        StoreError::Compacted {
            requested,
            compact_revision: self.compacted().max(requested),
        }
    }

    fn check_writable(&self) -> StoreResult<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Unavailable("store is closed".into()));
        }
        Ok(())
    }

    /// A plain failure (no revision asked for) as a store error.
    fn plain(&self, f: Failure) -> StoreError {
        match f {
            Failure::Compacted => self.compacted_error(self.compacted() + 1),
            Failure::Future => StoreError::Internal("etcd: unexpected future revision".into()),
            Failure::Unavailable(m) => StoreError::Unavailable(m),
            Failure::Internal(m) => StoreError::Internal(m),
        }
    }

    /// A failure of a read at `requested`.
    async fn at(&self, f: Failure, requested: Revision) -> StoreError {
        match f {
            Failure::Compacted => {
                self.compacted.fetch_max(requested, Ordering::AcqRel);
                self.compacted_error(requested)
            }
            Failure::Future => match self.current_revision().await {
                Ok(current) => StoreError::FutureRevision { requested, current },
                Err(e) => e,
            },
            other => self.plain(other),
        }
    }

    async fn current_revision(&self) -> StoreResult<Revision> {
        let resp = self
            .call(self.revision_read(0))
            .await
            .map_err(|f| self.plain(f))?;
        let rev = resp.header().map_or(0, |h| h.revision());
        self.policy.lock().mark(self.now_millis(), rev);
        Ok(rev)
    }

    fn wrote(&self, rev: Revision, bytes: usize) {
        let mut log = self.policy.lock();
        log.mark(self.now_millis(), rev);
        let bytes = bytes as u64 + 128;
        log.bytes += bytes;
        log.writes.push_back((rev, bytes));
    }

    async fn txn(&self, txn: ec::Txn) -> StoreResult<ec::TxnResponse> {
        let mut kv = self.kv_client();
        self.call(kv.txn(txn)).await.map_err(|f| self.plain(f))
    }

    /// Run `op` on an existing key (at `expected` mod_revision when given) in one transaction;
    /// a refusal reads the key, to say NotFound or Conflict with its current value.
    async fn on_existing(
        &self,
        key: &str,
        k: Vec<u8>,
        expected: Option<Revision>,
        op: ec::TxnOp,
        what: &str,
    ) -> StoreResult<ec::TxnResponse> {
        let mut when = vec![ec::Compare::version(k.clone(), ec::CompareOp::Greater, 0)];
        if let Some(e) = expected {
            when.push(ec::Compare::mod_revision(
                k.clone(),
                ec::CompareOp::Equal,
                e,
            ));
        }
        let txn = ec::Txn::new()
            .when(when)
            .and_then([op])
            .or_else([ec::TxnOp::get(k, None)]);
        let resp = self.txn(txn).await?;
        if resp.succeeded() {
            return Ok(resp);
        }
        Err(match (self.refused_read(&resp), expected) {
            (None, _) => StoreError::NotFound(key.to_string()),
            (Some(current), Some(expected)) => StoreError::Conflict {
                key: key.to_string(),
                expected,
                current: Some(Box::new(current)),
            },
            (Some(_), None) => {
                StoreError::Internal(format!("etcd refused an unconditional {what} of {key}"))
            }
        })
    }

    /// The key's current value, read in the else branch of a refused transaction.
    fn refused_read(&self, resp: &ec::TxnResponse) -> Option<KeyValue> {
        resp.op_responses().into_iter().find_map(|op| match op {
            ec::TxnOpResponse::Get(get) => get.kvs().first().map(|kv| self.kv(kv)),
            _ => None,
        })
    }

    /// Count the keys under `prefix` (etcd form) at `revision` (0: current): (count, revision).
    async fn count_at(
        &self,
        prefix: &[u8],
        revision: Revision,
    ) -> Result<(i64, Revision), Failure> {
        let mut opts = ec::GetOptions::new().with_prefix().with_count_only();
        if revision > 0 {
            opts = opts.with_revision(revision);
        }
        let mut kv = self.kv_client();
        let resp = self.call(kv.get(prefix.to_vec(), Some(opts))).await?;
        Ok((resp.count(), resp.header().map_or(0, |h| h.revision())))
    }

    /// How many keys under `prefix` were modified after `after`, at `revision`.
    async fn modified_after(
        &self,
        prefix: &[u8],
        after: Revision,
        revision: Revision,
    ) -> Result<i64, Failure> {
        let opts = ec::GetOptions::new()
            .with_prefix()
            .with_count_only()
            .with_revision(revision)
            .with_min_mod_revision(after + 1);
        let mut kv = self.kv_client();
        let resp = self.call(kv.get(prefix.to_vec(), Some(opts))).await?;
        Ok(resp.count())
    }
}

#[async_trait::async_trait]
impl Store for EtcdStore {
    async fn current_revision(&self) -> StoreResult<Revision> {
        self.inner.current_revision().await
    }

    async fn get(&self, key: &str, revision: Option<Revision>) -> StoreResult<KeyValue> {
        let inner = &*self.inner;
        let mut opts = ec::GetOptions::new();
        let requested = revision.filter(|&r| r > 0);
        if let Some(r) = requested {
            inner.check_not_compacted(r)?;
            opts = opts.with_revision(r);
        }
        let mut kv = inner.kv_client();
        let resp = match inner.call(kv.get(inner.etcd_key(key), Some(opts))).await {
            Ok(resp) => resp,
            Err(f) => return Err(inner.at(f, requested.unwrap_or(0)).await),
        };
        resp.kvs()
            .first()
            .map(|kv| inner.kv(kv))
            .ok_or_else(|| StoreError::NotFound(key.to_string()))
    }

    async fn list(&self, prefix: &str, opts: ListOptions) -> StoreResult<ListResult> {
        let inner = &*self.inner;
        let etcd_prefix = inner.etcd_key(prefix);
        let (at, after) = match &opts.continue_token {
            Some(token) => {
                let (rev, after) = decode_continue(token, prefix)?;
                inner.check_not_compacted(rev)?;
                (Some(rev), Some(after))
            }
            None => {
                let at = opts.revision.filter(|&r| r > 0);
                if let Some(r) = at {
                    inner.check_not_compacted(r)?;
                }
                (at, None)
            }
        };
        let (start, mut get) = match &after {
            Some(after) => {
                let mut start = inner.etcd_key(after);
                start.push(0);
                (
                    start,
                    ec::GetOptions::new().with_range(prefix_end(&etcd_prefix)),
                )
            }
            None => (etcd_prefix.clone(), ec::GetOptions::new().with_prefix()),
        };
        if let Some(r) = at {
            get = get.with_revision(r);
        }
        let limit = opts.limit.filter(|&l| l > 0);
        if let Some(l) = limit {
            get = get.with_limit(i64::try_from(l).unwrap_or(i64::MAX));
        }
        let mut kv = inner.kv_client();
        let resp = match inner.call(kv.get(start, Some(get))).await {
            Ok(resp) => resp,
            Err(Failure::Future) if opts.continue_token.is_some() => {
                return Err(StoreError::InvalidContinue(
                    "token revision is not known to this store".into(),
                ))
            }
            Err(f) => return Err(inner.at(f, at.unwrap_or(0)).await),
        };
        let revision = at.unwrap_or_else(|| resp.header().map_or(0, |h| h.revision()));
        let items: Vec<KeyValue> = resp.kvs().iter().map(|kv| inner.kv(kv)).collect();
        let total = usize::try_from(resp.count()).unwrap_or(0);
        let remaining = total.saturating_sub(items.len());
        let continue_token = match items.last() {
            Some(last) if remaining > 0 => Some(encode_continue(revision, &last.key)),
            _ => None,
        };
        Ok(ListResult {
            items,
            revision,
            remaining: continue_token.as_ref().map(|_| remaining),
            continue_token,
        })
    }

    async fn count(&self, prefix: &str) -> StoreResult<usize> {
        let inner = &*self.inner;
        let (count, _) = inner
            .count_at(&inner.etcd_key(prefix), 0)
            .await
            .map_err(|f| inner.plain(f))?;
        Ok(usize::try_from(count).unwrap_or(0))
    }

    async fn create(&self, key: &str, value: Bytes) -> StoreResult<KeyValue> {
        let inner = &*self.inner;
        inner.check_writable()?;
        let k = inner.etcd_key(key);
        let txn = ec::Txn::new()
            .when([ec::Compare::create_revision(
                k.clone(),
                ec::CompareOp::Equal,
                0,
            )])
            .and_then([ec::TxnOp::put(k, value.to_vec(), None)]);
        let resp = inner.txn(txn).await?;
        if !resp.succeeded() {
            return Err(StoreError::AlreadyExists(key.to_string()));
        }
        let rev = resp.header().map_or(0, |h| h.revision());
        inner.wrote(rev, key.len() + value.len());
        Ok(KeyValue {
            key: Arc::from(key),
            value,
            create_revision: rev,
            mod_revision: rev,
            version: 1,
        })
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Option<Revision>,
    ) -> StoreResult<KeyValue> {
        let inner = &*self.inner;
        inner.check_writable()?;
        let k = inner.etcd_key(key);
        let put = ec::TxnOp::put(
            k.clone(),
            value.to_vec(),
            Some(ec::PutOptions::new().with_prev_key()),
        );
        let resp = inner.on_existing(key, k, expected, put, "update").await?;
        let rev = resp.header().map_or(0, |h| h.revision());
        let prev = resp.op_responses().into_iter().find_map(|op| match op {
            ec::TxnOpResponse::Put(put) => put.prev_key().map(|kv| inner.kv(kv)),
            _ => None,
        });
        let Some(prev) = prev else {
            return Err(StoreError::Internal(format!(
                "etcd returned no previous value for the update of {key}"
            )));
        };
        inner.wrote(rev, key.len() + value.len() + prev.value.len());
        Ok(KeyValue {
            key: Arc::from(key),
            value,
            create_revision: prev.create_revision,
            mod_revision: rev,
            version: prev.version + 1,
        })
    }

    async fn delete(
        &self,
        key: &str,
        expected: Option<Revision>,
    ) -> StoreResult<(KeyValue, Revision)> {
        let inner = &*self.inner;
        inner.check_writable()?;
        let k = inner.etcd_key(key);
        let del = ec::TxnOp::delete(k.clone(), Some(ec::DeleteOptions::new().with_prev_key()));
        let resp = inner.on_existing(key, k, expected, del, "delete").await?;
        let rev = resp.header().map_or(0, |h| h.revision());
        let prev = resp.op_responses().into_iter().find_map(|op| match op {
            ec::TxnOpResponse::Delete(del) => del.prev_kvs().first().map(|kv| inner.kv(kv)),
            _ => None,
        });
        let Some(prev) = prev else {
            return Err(StoreError::Internal(format!(
                "etcd returned no previous value for the delete of {key}"
            )));
        };
        inner.wrote(rev, key.len() + prev.value.len());
        Ok((prev, rev))
    }

    async fn watch(&self, prefix: &str, start: Revision) -> StoreResult<WatchStream> {
        use futures::StreamExt;
        let (stream, _) = self.watch_progress(prefix, start).await?;
        Ok(Box::pin(stream.filter_map(|item| {
            std::future::ready(match item {
                Ok(WatchItem::Event(ev)) => Some(Ok(ev)),
                Ok(WatchItem::Progress(_)) => None,
                Err(e) => Some(Err(e)),
            })
        })))
    }

    async fn watch_progress(
        &self,
        prefix: &str,
        start: Revision,
    ) -> StoreResult<(ProgressWatchStream, Arc<dyn ProgressRequester>)> {
        let inner = &*self.inner;
        inner.check_writable()?;
        let current = inner.current_revision().await?;
        let from = if start <= 0 {
            current + 1
        } else if start > current + 1 {
            return Err(StoreError::FutureRevision {
                requested: start,
                current,
            });
        } else {
            inner.check_not_compacted(start)?;
            start
        };
        let etcd_prefix = inner.etcd_key(prefix);
        // How many keys its events start from: what a progress check compares with.
        let live = if from <= 1 {
            // Before etcd's first revision nothing exists (0 would mean "now" to etcd).
            Some(0)
        } else {
            inner
                .count_at(&etcd_prefix, from - 1)
                .await
                .ok()
                .map(|(n, _)| n)
        };
        let opts = ec::WatchOptions::new()
            .with_prefix()
            .with_start_revision(from)
            .with_prev_key();
        let mut watch_client = inner.client.watch_client();
        let stream = inner
            .call(watch_client.watch(etcd_prefix.clone(), Some(opts)))
            .await
            .map_err(|f| inner.plain(f))?;
        let (tx, mut rx) = mpsc::channel(inner.backlog + 1);
        let asked = Arc::new(Notify::new());
        let pump = Pump {
            store: self.inner.clone(),
            prefix: etcd_prefix,
            tx,
            asked: asked.clone(),
            delivered: from - 1,
            reported: 0,
            live,
        };
        tokio::spawn(pump.run(stream, inner.close_tx.subscribe()));
        let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
        Ok((Box::pin(stream), Arc::new(Requester(asked))))
    }

    async fn compact(&self, revision: Revision) -> StoreResult<()> {
        let inner = &*self.inner;
        inner.check_writable()?;
        let current = inner.current_revision().await?;
        if revision > current {
            return Err(StoreError::FutureRevision {
                requested: revision,
                current,
            });
        }
        if revision <= inner.compacted() {
            return Ok(());
        }
        // etcd keeps its compaction revision readable; this contract does not.
        let target = if revision < current {
            revision + 1
        } else {
            revision
        };
        let mut kv = inner.kv_client();
        match inner.call(kv.compact(target, None)).await {
            Ok(_) | Err(Failure::Compacted) => {}
            Err(f) => return Err(inner.plain(f)),
        }
        inner.compacted.fetch_max(revision, Ordering::AcqRel);
        inner.policy.lock().forget_upto(revision);
        Ok(())
    }

    async fn compacted_revision(&self) -> StoreResult<Revision> {
        let inner = &*self.inner;
        if !inner.learned.load(Ordering::Acquire) {
            let current = inner.current_revision().await?;
            inner
                .learn_compaction(current)
                .await
                .map_err(|f| inner.plain(f))?;
        }
        Ok(inner.compacted())
    }

    async fn compact_by_policy(&self, policy: CompactionPolicy) -> StoreResult<Revision> {
        let inner = &*self.inner;
        let current = inner.current_revision().await?;
        let compacted = inner.compacted();
        let target = {
            let log = inner.policy.lock();
            let min_age = i64::try_from(policy.min_age.as_millis()).unwrap_or(i64::MAX);
            let cutoff = inner.now_millis().saturating_sub(min_age);
            // The newest revision known to exist before the cut-off.
            let idx = log.marks.partition_point(|&(t, _)| t < cutoff);
            let by_age = match idx.checked_sub(1).and_then(|i| log.marks.get(i)) {
                Some(&(_, rev)) => rev,
                None => compacted,
            }
            .min(current.saturating_sub(policy.min_revisions.max(0)));
            if log.bytes <= policy.max_history_bytes {
                by_age
            } else {
                let mut left = log.bytes;
                let mut by_bytes = compacted;
                for &(rev, bytes) in &log.writes {
                    if left <= policy.max_history_bytes / 2 || rev >= current {
                        break;
                    }
                    left -= bytes;
                    by_bytes = rev;
                }
                by_age.max(by_bytes)
            }
        };
        if target > compacted {
            self.compact(target).await?;
        }
        Ok(inner.compacted())
    }

    async fn close(&self) -> StoreResult<()> {
        self.inner.closed.store(true, Ordering::Release);
        self.inner.close_tx.send_replace(true);
        Ok(())
    }

    fn health(&self) -> StoreResult<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(StoreError::Unavailable("store is closed".into()));
        }
        match &*self.inner.unhealthy.lock() {
            Some(why) => Err(StoreError::Unavailable(why.clone())),
            None => Ok(()),
        }
    }
}

/// Asks one watch for a progress report.
struct Requester(Arc<Notify>);

impl ProgressRequester for Requester {
    fn request_progress(&self) {
        self.0.notify_one();
    }
}

/// One watch: etcd's stream of responses into the watcher's bounded queue.
struct Pump {
    store: Arc<Inner>,
    prefix: Vec<u8>,
    tx: mpsc::Sender<StoreResult<WatchItem>>,
    asked: Arc<Notify>,
    /// The revision of the last event passed on (or the one before the watch's start).
    delivered: Revision,
    /// The newest progress reported.
    reported: Revision,
    /// Keys under the prefix after the events passed on (None: unknown).
    live: Option<i64>,
}

/// How soon a progress check that found events on their way is made again.
const PROGRESS_RECHECK: Duration = Duration::from_millis(20);

impl Pump {
    async fn run(mut self, stream: ec::WatchStream, mut closed: watch::Receiver<bool>) {
        let (_requests, mut responses) = stream.split();
        let mut wanted = false;
        let mut recheck: Option<tokio::time::Instant> = None;
        loop {
            if *closed.borrow_and_update() {
                self.end(StoreError::Unavailable("store is closed".into()));
                return;
            }
            let sleep = async {
                match recheck {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = closed.changed() => {}
                _ = self.tx.closed() => return,
                _ = self.asked.notified() => {
                    wanted = true;
                    recheck = Some(tokio::time::Instant::now());
                }
                _ = sleep => {
                    recheck = None;
                    if wanted {
                        match self.check_progress().await {
                            Ok(true) => wanted = false,
                            Ok(false) => {
                                recheck = Some(tokio::time::Instant::now() + PROGRESS_RECHECK);
                            }
                            Err(e) => {
                                self.end(e);
                                return;
                            }
                        }
                    }
                }
                message = responses.message() => {
                    let response = match message {
                        Ok(Some(r)) => r,
                        Ok(None) => {
                            self.end(StoreError::Unavailable("the etcd watch ended".into()));
                            return;
                        }
                        Err(e) => {
                            self.end(self.store.plain(Failure::classify(e)));
                            return;
                        }
                    };
                    if let Err(e) = self.handle(&response) {
                        self.end(e);
                        return;
                    }
                    if wanted && recheck.is_none() {
                        recheck = Some(tokio::time::Instant::now());
                    }
                }
            }
        }
    }

    /// Pass a response's events on.
    fn handle(&mut self, response: &ec::WatchResponse) -> StoreResult<()> {
        if response.canceled() {
            let compact = response.compact_revision();
            return Err(if compact > 0 {
                // etcd's compaction revision is the oldest it kept; this contract's is below.
                self.store
                    .compacted
                    .fetch_max(compact - 1, Ordering::AcqRel);
                StoreError::Compacted {
                    requested: self.delivered + 1,
                    compact_revision: compact - 1,
                }
            } else {
                StoreError::Unavailable(format!(
                    "etcd cancelled the watch: {}",
                    response.cancel_reason()
                ))
            });
        }
        for ev in response.events() {
            let Some(event) = self.store.event(ev) else {
                continue;
            };
            let rev = event.revision();
            if rev <= self.reported {
                return Err(StoreError::Unavailable(format!(
                    "etcd delivered revision {rev} after progress at {} was reported",
                    self.reported
                )));
            }
            match event.kind {
                EventKind::Put if event.kv.version == 1 => self.live = self.live.map(|n| n + 1),
                EventKind::Delete => self.live = self.live.map(|n| n - 1),
                EventKind::Put => {}
            }
            self.delivered = self.delivered.max(rev);
            self.send(Ok(WatchItem::Event(Arc::new(event))))?;
        }
        Ok(())
    }

    /// Queue an item, cutting the watcher off when its queue is full (one place is kept for
    /// the error).
    fn send(&self, item: StoreResult<WatchItem>) -> StoreResult<()> {
        if self.tx.capacity() <= 1 {
            return Err(StoreError::Unavailable(format!(
                "watcher fell behind: more than {} undelivered events",
                self.store.backlog
            )));
        }
        self.tx
            .try_send(item)
            .map_err(|_| StoreError::Unavailable("the watcher went away".into()))
    }

    /// Report progress when nothing under the prefix changed after the last event passed on.
    async fn check_progress(&mut self) -> StoreResult<bool> {
        let store = self.store.clone();
        let (count, revision) = match store.count_at(&self.prefix, 0).await {
            Ok(r) => r,
            Err(Failure::Unavailable(_)) => return Ok(false),
            Err(f) => return Err(store.plain(f)),
        };
        if revision > self.delivered {
            if self.live.is_some_and(|n| n != count) {
                return Ok(false);
            }
            match store
                .modified_after(&self.prefix, self.delivered, revision)
                .await
            {
                Ok(0) => {}
                Ok(_) | Err(Failure::Unavailable(_) | Failure::Compacted) => return Ok(false),
                Err(f) => return Err(store.plain(f)),
            }
        }
        let revision = revision.max(self.delivered);
        if revision > self.reported {
            self.reported = revision;
            self.send(Ok(WatchItem::Progress(revision)))?;
        }
        Ok(true)
    }

    fn end(&self, error: StoreError) {
        let _ = self.tx.try_send(Err(error));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A transport error names what broke (tonic says only "transport error").
    #[test]
    fn a_failure_names_its_causes() {
        #[derive(Debug)]
        struct Transport(std::io::Error);
        impl std::fmt::Display for Transport {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("transport error")
            }
        }
        impl std::error::Error for Transport {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection reset");
        let status = tonic::Status::from_error(Box::new(Transport(reset)));
        let Failure::Unavailable(why) = Failure::classify(ec::Error::GRpcStatus(status)) else {
            panic!("not unavailable");
        };
        assert!(
            why.starts_with("etcd: transport error") && why.ends_with(": connection reset"),
            "{why}"
        );
    }
}
