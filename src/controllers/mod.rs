//! The built-in controllers kube-controller-manager would run, in-process: the garbage collector
//! ([`gc`]), namespace lifecycle ([`namespace`]), service accounts and the root CA ConfigMap
//! ([`serviceaccount`]) and event expiry ([`event_ttl`]). Each is on by default and can be
//! switched off ([`ControllerSet`], `kubox serve --controllers=*,-garbage-collector`).
//!
//! # Shape
//!
//! One *dispatcher* task lists the whole store at revision R, then watches it from R+1 (no gap,
//! no duplicate; a watch that is cut off is followed by a fresh list). A list goes to every enabled
//! controller, a change to those whose [`Interest`] takes its key (the garbage collector takes
//! all; the others the resources they cache), in revision order, over unbounded channels; then
//! the dispatcher publishes the revision it has reached, which counts as observed by a
//! controller once it has taken what was sent to it (expectations, "Settled"). Each controller
//! is one task running a [`Reconciler`] in a loop:
//!
//! 1. take every change already waiting and let the reconciler update its caches and queue keys
//!    (`observe`: synchronous, no IO);
//! 2. move timed work that is due into the queue (`take_due`; only event expiry has any);
//! 3. process one queued key (`reconcile`), then start over;
//! 4. with nothing queued, publish its [`Progress`] and sleep until a change arrives, timed work
//!    falls due, the clock is moved by hand ([`Clock::changes`]) or a retry's backoff ends.
//!
//! Nothing polls: an idle server spends no CPU here. Writes go through the API's own code
//! (`registry::store::create`, `guaranteed_update`, `delete`): defaults, validation,
//! finalizers and the garbage collector's deletion finalizers apply to controllers as to clients,
//! every update is a compare-and-swap on the resourceVersion just read, retried on Conflict.
//! A key whose reconcile fails is retried after 10 ms, doubling, at most [`MAX_RETRIES`] times,
//! then dropped until the next change that concerns it.
//!
//! # Settled
//!
//! [`Controllers::settled`] (and `ServerHandle::settled`) returns when, for the store's current
//! revision R, the dispatcher has handed out every change up to R, every enabled controller has
//! observed the last change sent to it, has nothing queued, nothing waiting for a retry, no
//! write of its own it waits to see (expectations) and no timed work due at the clock's current
//! time — and the store is still at R afterwards, so the controllers' own writes have been
//! observed and handled too.
//! It does not wait for work that depends on someone else: a namespace whose content waits on a
//! finalizer nobody removes stays Terminating, and its controller is settled. Time-based work
//! that is not yet due (an event that expires in an hour) does not hold it either.

pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod disruption;
pub mod endpoints;
pub mod endpointslice;
pub mod event_ttl;
pub mod gc;
pub mod job;
pub mod kubelet;
pub mod namespace;
pub mod podgc;
pub mod replicaset;
pub mod scheduler;
pub mod serviceaccount;
pub mod statefulset;
pub mod token;
pub(crate) mod workload;

pub use kubelet::NodeOptions;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use kubox_storage::{Clock, DynStore, Event, KeyValue, StoreError};
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::objects::from_stored;
use crate::registry::store::{self, Scope};
use crate::registry::Backend;
use crate::registry::{ResourceInfo, Snapshot};
use crate::status::{from_store, ApiResult, GroupResource};

/// How many times a failing key is retried (10 ms, 20 ms, … 320 ms) before it is dropped.
pub const MAX_RETRIES: u32 = 6;

/// One built-in controller. Names are kube-controller-manager's (`--controllers`); the
/// scheduler and the simulated kubelets run beside them when the server simulates nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Controller {
    /// `garbage-collector`: ownerReferences, cascading deletion (background, foreground, orphan).
    GarbageCollector,
    /// `namespace`: deletes a Terminating namespace's content, then the namespace.
    Namespace,
    /// `serviceaccount`: the `default` ServiceAccount and `kube-root-ca.crt` in every namespace.
    ServiceAccount,
    /// `serviceaccount-token`: fills `kubernetes.io/service-account-token` Secrets.
    ServiceAccountToken,
    /// `event-ttl`: core/v1 and events.k8s.io/v1 Events expire after a TTL.
    EventTtl,
    /// `deployment`: ReplicaSets for each revision of a Deployment's template, rolled out.
    Deployment,
    /// `replicaset`: a ReplicaSet's pods.
    ReplicaSet,
    /// `replicationcontroller`: a ReplicationController's pods.
    ReplicationController,
    /// `statefulset`: ordinal pods and their claims.
    StatefulSet,
    /// `daemonset`: one pod per matching node.
    DaemonSet,
    /// `job`: pods until completions, or failure after the backoff limit.
    Job,
    /// `cronjob`: Jobs on a schedule, by the server's clock.
    CronJob,
    /// `endpoints`: a Service's Endpoints from its ready pods.
    Endpoints,
    /// `endpointslice`: a Service's EndpointSlices from its pods.
    EndpointSlice,
    /// `disruption`: PodDisruptionBudget status.
    Disruption,
    /// `podgc`: terminated pods above the threshold, pods of nodes that are gone.
    PodGc,
    /// The scheduler (`kube-scheduler`): binds pending pods to simulated nodes. Runs with
    /// simulated nodes; not named by `--controllers`.
    Scheduler,
    /// The simulated kubelets: register nodes, renew their Leases, run pods without
    /// containers. Run with simulated nodes; not named by `--controllers`.
    Kubelet,
}

impl Controller {
    /// Every controller `--controllers` names, in start order.
    pub const ALL: [Controller; 16] = [
        Controller::GarbageCollector,
        Controller::Namespace,
        Controller::ServiceAccount,
        Controller::ServiceAccountToken,
        Controller::EventTtl,
        Controller::Deployment,
        Controller::ReplicaSet,
        Controller::ReplicationController,
        Controller::StatefulSet,
        Controller::DaemonSet,
        Controller::Job,
        Controller::CronJob,
        Controller::Endpoints,
        Controller::EndpointSlice,
        Controller::Disruption,
        Controller::PodGc,
    ];

    /// The controllers that run by default whether or not nodes are simulated.
    pub const CORE: [Controller; 5] = [
        Controller::GarbageCollector,
        Controller::Namespace,
        Controller::ServiceAccount,
        Controller::ServiceAccountToken,
        Controller::EventTtl,
    ];

    /// The workload controllers: on by default when nodes are simulated (`--nodes`), off
    /// otherwise unless named.
    pub const WORKLOADS: [Controller; 11] = [
        Controller::Deployment,
        Controller::ReplicaSet,
        Controller::ReplicationController,
        Controller::StatefulSet,
        Controller::DaemonSet,
        Controller::Job,
        Controller::CronJob,
        Controller::Endpoints,
        Controller::EndpointSlice,
        Controller::Disruption,
        Controller::PodGc,
    ];

    /// The name `--controllers` uses.
    pub fn name(self) -> &'static str {
        match self {
            Controller::GarbageCollector => "garbage-collector",
            Controller::Namespace => "namespace",
            Controller::ServiceAccount => "serviceaccount",
            Controller::ServiceAccountToken => "serviceaccount-token",
            Controller::EventTtl => "event-ttl",
            Controller::Deployment => "deployment",
            Controller::ReplicaSet => "replicaset",
            Controller::ReplicationController => "replicationcontroller",
            Controller::StatefulSet => "statefulset",
            Controller::DaemonSet => "daemonset",
            Controller::Job => "job",
            Controller::CronJob => "cronjob",
            Controller::Endpoints => "endpoints",
            Controller::EndpointSlice => "endpointslice",
            Controller::Disruption => "disruption",
            Controller::PodGc => "podgc",
            Controller::Scheduler => "kube-scheduler",
            Controller::Kubelet => "kubelet",
        }
    }

    /// Other names kube-controller-manager accepts for it (its `-controller` names, older
    /// aliases).
    fn aliases(self) -> &'static [&'static str] {
        match self {
            Controller::GarbageCollector => &["garbagecollector"],
            Controller::Endpoints => &["endpoint"],
            Controller::PodGc => &["pod-garbage-collector"],
            _ => &[],
        }
    }
}

impl fmt::Display for Controller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Controller {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bare = s.strip_suffix("-controller").unwrap_or(s);
        Controller::ALL
            .into_iter()
            .find(|c| c.name() == bare || c.aliases().contains(&bare))
            .ok_or_else(|| {
                let known: Vec<&str> = Controller::ALL.iter().map(|c| c.name()).collect();
                format!(
                    "{s:?} is not in the list of known controllers ({})",
                    known.join(", ")
                )
            })
    }
}

/// Which controllers run. The default (`*`) is every core controller, and the workload
/// controllers too when nodes are simulated ([`ControllerSet::effective`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControllerSet {
    enabled: BTreeSet<Controller>,
    /// Built from `*`: the workload controllers follow `--nodes` unless disabled.
    star: bool,
    /// What a `*` set had switched off by name.
    disabled: BTreeSet<Controller>,
}

impl Default for ControllerSet {
    fn default() -> Self {
        ControllerSet::all()
    }
}

impl ControllerSet {
    /// Every controller on by default (`*`): the core ones, and the workload ones when nodes
    /// are simulated.
    pub fn all() -> Self {
        ControllerSet {
            enabled: Controller::CORE.into_iter().collect(),
            star: true,
            disabled: BTreeSet::new(),
        }
    }

    /// No controller: objects are stored and served, nothing reacts to them.
    pub fn none() -> Self {
        ControllerSet {
            enabled: BTreeSet::new(),
            star: false,
            disabled: BTreeSet::new(),
        }
    }

    /// kube-controller-manager's `--controllers` syntax: a comma-separated list where `*` means
    /// every controller that is on by default, `foo` enables `foo` and `-foo` disables it. An
    /// empty list means `*`. Names are kube's (`deployment`, `deployment-controller`).
    pub fn parse(spec: &str) -> Result<Self, String> {
        let items: Vec<&str> = spec
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if items.is_empty() {
            return Ok(ControllerSet::all());
        }
        let mut star = false;
        let mut on = BTreeSet::new();
        let mut off = BTreeSet::new();
        for item in items {
            if item == "*" {
                star = true;
            } else if let Some(name) = item.strip_prefix('-') {
                off.insert(name.parse::<Controller>()?);
            } else {
                on.insert(item.parse::<Controller>()?);
            }
        }
        let mut set = if star {
            ControllerSet::all()
        } else {
            ControllerSet::none()
        };
        for c in on {
            set.enable(c);
        }
        for c in off {
            set.disable(c);
        }
        Ok(set)
    }

    /// Is `c` enabled (leaving aside what simulated nodes add)?
    pub fn contains(&self, c: Controller) -> bool {
        self.enabled.contains(&c)
    }

    /// Enable `c`.
    pub fn enable(&mut self, c: Controller) {
        self.enabled.insert(c);
        self.disabled.remove(&c);
    }

    /// Disable `c`.
    pub fn disable(&mut self, c: Controller) {
        self.enabled.remove(&c);
        if self.star {
            self.disabled.insert(c);
        }
    }

    /// The enabled controllers, in start order.
    pub fn iter(&self) -> impl Iterator<Item = Controller> + '_ {
        self.enabled.iter().copied()
    }

    /// What runs: with simulated nodes, a `*` set adds every workload controller it did not
    /// switch off.
    pub fn effective(&self, nodes: bool) -> ControllerSet {
        let mut out = self.clone();
        if nodes && self.star {
            for c in Controller::WORKLOADS {
                if !self.disabled.contains(&c) {
                    out.enabled.insert(c);
                }
            }
        }
        out
    }
}

impl fmt::Display for ControllerSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Controller::name).collect();
        f.write_str(&names.join(","))
    }
}

/// Everything the controllers are configured with.
#[derive(Clone, Debug)]
pub struct ControllerOptions {
    /// Which controllers run.
    pub enabled: ControllerSet,
    /// How long an Event lives after its creation (kube-apiserver's `--event-ttl`, 1 h).
    pub event_ttl: Duration,
    /// The PEM bundle published as `ca.crt` in every namespace's `kube-root-ca.crt` ConfigMap.
    /// The server sets it to its CA at start.
    pub root_ca: String,
    /// Simulated nodes (none by default): with some, the scheduler, the simulated kubelets and
    /// the workload controllers run.
    pub nodes: NodeOptions,
    /// How many finished pods may exist before the pod GC deletes the oldest
    /// (kube-controller-manager's `--terminated-pod-gc-threshold`, 12,500; 0: never).
    pub terminated_pod_gc_threshold: usize,
    /// The most endpoints in one EndpointSlice (`--max-endpoints-per-slice`, 100).
    pub max_endpoints_per_slice: usize,
}

impl Default for ControllerOptions {
    fn default() -> Self {
        ControllerOptions {
            enabled: ControllerSet::all(),
            event_ttl: Duration::from_secs(3600),
            root_ca: String::new(),
            nodes: NodeOptions::default(),
            terminated_pod_gc_threshold: podgc::DEFAULT_TERMINATED_POD_THRESHOLD,
            max_endpoints_per_slice: endpointslice::MAX_ENDPOINTS_PER_SLICE,
        }
    }
}

pub use crate::query::parse_duration;

// ---------------------------------------------------------------------------------------------
// The loop every controller runs.

/// What the dispatcher hands a controller.
pub(crate) enum Msg {
    /// Everything in the store at `revision` (a fresh list): rebuild caches from it.
    Reset {
        items: Arc<Vec<KeyValue>>,
        /// `items` decoded, each at most once whichever controllers ask.
        decoded: Arc<Vec<Decoded>>,
        revision: i64,
    },
    /// One change, in revision order after the last Reset.
    Change(Arc<Change>),
}

/// A value decoded at most once, by the first controller that asks, shared by the others
/// (a dozen controllers follow pods: each change is parsed once, not a dozen times).
#[derive(Default)]
pub(crate) struct Decoded(std::sync::OnceLock<Option<Arc<Value>>>);

impl Decoded {
    /// The stored object, decoded (None if it does not decode).
    pub fn get(&self, kv: &KeyValue) -> Option<Arc<Value>> {
        self.0
            .get_or_init(|| from_stored(kv).ok().map(Arc::new))
            .clone()
    }
}

/// One change of the store as the controllers receive it: the event, and its new value decoded
/// once for all of them.
pub(crate) struct Change {
    event: Arc<Event>,
    decoded: Decoded,
}

impl Change {
    /// The object after a Put (None after a Delete, or when it does not decode).
    pub fn object(&self) -> Option<Arc<Value>> {
        match self.event.kind {
            kubox_storage::EventKind::Put => self.decoded.get(&self.event.kv),
            kubox_storage::EventKind::Delete => None,
        }
    }
}

impl std::ops::Deref for Change {
    type Target = Event;

    fn deref(&self) -> &Event {
        &self.event
    }
}

impl Msg {
    fn revision(&self) -> i64 {
        match self {
            Msg::Reset { revision, .. } => *revision,
            Msg::Change(ev) => ev.revision(),
        }
    }
}

/// What a controller reports after each round (see the module docs, "Settled").
#[derive(Clone, Copy, Debug, Default)]
pub struct Progress {
    /// How far this controller had observed the store when it last reported: the revision of
    /// the last change sent to it, or of a later one handed out to others (not to it).
    pub observed: i64,
    /// Nothing queued, no retry pending, no write of its own it waits to observe.
    pub idle: bool,
    /// When its next timed work falls due (event expiry), by the server's clock.
    pub next_due: Option<SystemTime>,
}

/// A controller's work queue: each key at most once; failures retried with backoff.
#[derive(Default)]
pub(crate) struct Queue {
    ready: VecDeque<String>,
    queued: HashSet<String>,
    failures: HashMap<String, u32>,
    delayed: Vec<(tokio::time::Instant, String)>,
}

impl Queue {
    /// Queue `key` (once).
    pub fn add(&mut self, key: impl Into<String>) {
        let key = key.into();
        if self.queued.insert(key.clone()) {
            self.ready.push_back(key);
        }
    }

    fn pop(&mut self) -> Option<String> {
        let now = tokio::time::Instant::now();
        let mut due = Vec::new();
        self.delayed.retain(|(at, k)| {
            if *at <= now {
                due.push(k.clone());
                false
            } else {
                true
            }
        });
        for k in due {
            self.add(k);
        }
        let key = self.ready.pop_front()?;
        self.queued.remove(&key);
        Some(key)
    }

    fn succeeded(&mut self, key: &str) {
        self.failures.remove(key);
    }

    /// Schedule a retry; false when the key has failed too often and is dropped.
    fn failed(&mut self, key: &str) -> bool {
        let n = self.failures.entry(key.to_string()).or_insert(0);
        *n += 1;
        if *n > MAX_RETRIES {
            self.failures.remove(key);
            return false;
        }
        let delay = Duration::from_millis(10 << (*n - 1));
        self.delayed
            .push((tokio::time::Instant::now() + delay, key.to_string()));
        true
    }

    fn next_retry(&self) -> Option<tokio::time::Instant> {
        self.delayed.iter().map(|(at, _)| *at).min()
    }

    fn idle(&self) -> bool {
        self.ready.is_empty() && self.delayed.is_empty()
    }
}

/// Which changes the dispatcher sends a controller (a fresh list goes to every one), by key.
pub(crate) struct Interest(Option<KeyFilter>);

type KeyFilter = Box<dyn Fn(&str) -> bool + Send + Sync>;

impl Interest {
    /// Every change (the garbage collector: any object may have owners or dependents).
    pub fn all() -> Interest {
        Interest(None)
    }

    /// Changes to the keys `f` takes.
    pub fn matching(f: impl Fn(&str) -> bool + Send + Sync + 'static) -> Interest {
        Interest(Some(Box::new(f)))
    }

    /// Changes to keys under these storage prefixes.
    pub fn prefixes<S: Into<String>>(prefixes: impl IntoIterator<Item = S>) -> Interest {
        let prefixes: Vec<String> = prefixes.into_iter().map(Into::into).collect();
        Interest::matching(move |key| prefixes.iter().any(|p| key.starts_with(p.as_str())))
    }

    /// Changes to the objects these caches hold.
    pub fn caches<'c>(caches: impl IntoIterator<Item = &'c workload::Cache>) -> Interest {
        Interest::prefixes(caches.into_iter().map(|c| c.prefix().to_string()))
    }

    /// Every change too, while `flag` is true. The controller sets it while it observes, so a
    /// change it was not sent while the flag was false was written before it set it: a read it
    /// makes after setting it sees that change.
    pub fn widened_while(self, flag: Arc<AtomicBool>) -> Interest {
        match self.0 {
            None => self,
            Some(f) => Interest::matching(move |key| flag.load(Ordering::SeqCst) || f(key)),
        }
    }

    fn wants(&self, key: &str) -> bool {
        self.0.as_ref().is_none_or(|f| f(key))
    }
}

/// One controller's logic; [`run`] drives it.
#[async_trait::async_trait]
pub(crate) trait Reconciler: Send + 'static {
    /// The controller this is.
    const CONTROLLER: Controller;

    /// Which changes it is sent: every one unless it says otherwise. Those it is not sent
    /// still count as observed (expectations, [`Controllers::settled`]).
    fn interest(&self) -> Interest {
        Interest::all()
    }

    /// Its expectations, if it keeps any: the loop tells them how far the store has been
    /// observed, also when the changes that got it there were not sent to this controller.
    fn expectations(&mut self) -> Option<&mut workload::Expectations> {
        None
    }

    /// Update caches from one change (or a fresh list) and queue the keys it concerns. No IO.
    fn observe(&mut self, state: &Backend, msg: &Msg, queue: &mut Queue);

    /// Bring one key in line. Errors are retried with backoff.
    async fn reconcile(
        &mut self,
        state: &Arc<Backend>,
        key: &str,
        queue: &mut Queue,
    ) -> ApiResult<()>;

    /// The timers a controller keeps its timed work in, if any: the defaults of
    /// [`Reconciler::next_due`] and [`Reconciler::take_due`] read them.
    fn timers(&mut self) -> Option<&mut workload::Timers> {
        None
    }

    /// When the next timed work falls due (None: no timed work).
    fn next_due(&mut self) -> Option<SystemTime> {
        self.timers().and_then(|t| t.next())
    }

    /// Queue the timed work due at `now`.
    fn take_due(&mut self, now: SystemTime, queue: &mut Queue) {
        if let Some(t) = self.timers() {
            t.take_due(now, queue);
        }
    }
}

async fn clock_moved(rx: &mut Option<watch::Receiver<SystemTime>>) {
    let closed = match rx.as_mut() {
        Some(r) => r.changed().await.is_err(),
        None => return std::future::pending().await,
    };
    if closed {
        *rx = None;
    }
}

async fn sleep_until_retry(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn sleep_for(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// Wait until the dispatcher has handed out every change up to `rev` (forever when None).
async fn dispatched_up_to(rx: &mut watch::Receiver<i64>, rev: Option<i64>) {
    match rev {
        Some(rev) => {
            if rx.wait_for(|d| *d >= rev).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

/// Drive one reconciler until shutdown. `dispatched` is the last revision the dispatcher has
/// handed out to every controller that wants it.
async fn run<R: Reconciler>(
    mut r: R,
    state: Arc<Backend>,
    mut rx: mpsc::UnboundedReceiver<Msg>,
    progress: watch::Sender<Progress>,
    mut dispatched: watch::Receiver<i64>,
) {
    let mut shutdown = state.shutdown.clone();
    let mut clock_changes = state.clock.changes();
    let mut queue = Queue::default();
    let mut observed = 0;
    loop {
        if *shutdown.borrow() {
            return;
        }
        // Read before taking what waits: every change up to it that this controller wants was
        // sent before it was published, so it is taken below.
        let reached = *dispatched.borrow_and_update();
        loop {
            match rx.try_recv() {
                Ok(msg) => {
                    observed = observed.max(msg.revision());
                    r.observe(&state, &msg, &mut queue);
                }
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => return,
            }
        }
        observed = observed.max(reached);
        if let Some(e) = r.expectations() {
            e.observed(observed, &mut queue);
        }
        r.take_due(state.clock.now(), &mut queue);
        if let Some(key) = queue.pop() {
            match r.reconcile(&state, &key, &mut queue).await {
                Ok(()) => queue.succeeded(&key),
                Err(e) => {
                    if queue.failed(&key) {
                        tracing::debug!(controller = %R::CONTROLLER, %key, error = %e.message, "will retry");
                    } else {
                        tracing::warn!(controller = %R::CONTROLLER, %key, error = %e.message, "giving up until the next change");
                    }
                }
            }
            // A reconcile that never waited must not starve the dispatcher (and the rest of
            // a single-threaded runtime).
            tokio::task::yield_now().await;
            continue;
        }
        let next_due = r.next_due();
        let expected = r.expectations().and_then(|e| e.next());
        progress.send_replace(Progress {
            observed,
            idle: queue.idle() && expected.is_none(),
            next_due,
        });
        let due_in = next_due.map(|t| t.duration_since(state.clock.now()).unwrap_or_default());
        let retry_at = queue.next_retry();
        tokio::select! {
            _ = shutdown.changed() => return,
            msg = rx.recv() => match msg {
                Some(msg) => {
                    observed = observed.max(msg.revision());
                    r.observe(&state, &msg, &mut queue);
                }
                None => return,
            },
            // A write of its own it waits to see may be followed by changes it is not sent.
            _ = dispatched_up_to(&mut dispatched, expected) => {}
            _ = sleep_for(due_in) => {}
            _ = clock_moved(&mut clock_changes) => {}
            _ = sleep_until_retry(retry_at) => {}
        }
    }
}

/// One controller as the dispatcher sees it.
struct Route {
    tx: mpsc::UnboundedSender<Msg>,
    interest: Interest,
    /// The revision of the last message sent to it.
    sent: Arc<AtomicI64>,
}

/// What feeds the controllers: the informer loop's list and watch of the whole store. Every
/// list goes to every controller, each change to those that want it ([`Interest`]); then
/// `dispatched` moves on to its revision.
struct Dispatch {
    routes: Vec<Route>,
    dispatched: watch::Sender<i64>,
}

#[async_trait::async_trait]
impl crate::informer::Handler for Dispatch {
    async fn relisted(&self, items: Vec<KeyValue>, revision: i64) -> Result<(), String> {
        let decoded = Arc::new(items.iter().map(|_| Decoded::default()).collect());
        let items = Arc::new(items);
        for r in &self.routes {
            r.sent.store(revision, Ordering::SeqCst);
            let _ = r.tx.send(Msg::Reset {
                items: items.clone(),
                decoded: Arc::clone(&decoded),
                revision,
            });
        }
        self.dispatched.send_replace(revision);
        Ok(())
    }

    async fn changed(&self, event: &Arc<Event>) {
        let mut change = None;
        for r in self
            .routes
            .iter()
            .filter(|r| r.interest.wants(&event.kv.key))
        {
            let change = change.get_or_insert_with(|| {
                Arc::new(Change {
                    event: event.clone(),
                    decoded: Decoded::default(),
                })
            });
            r.sent.store(event.revision(), Ordering::SeqCst);
            let _ = r.tx.send(Msg::Change(change.clone()));
        }
        self.dispatched.send_replace(event.revision());
    }
}

/// The running controllers: what [`ServerHandle::settled`](crate::ServerHandle::settled) waits on.
#[derive(Clone)]
pub struct Controllers {
    store: DynStore,
    clock: Arc<dyn Clock>,
    /// Those running now (none on a replica that does not hold the controllers' lease).
    running: Arc<std::sync::Mutex<Running>>,
}

/// One running controller: its progress, and the revision of the last change sent to it.
#[derive(Clone)]
struct Watched {
    controller: Controller,
    progress: watch::Receiver<Progress>,
    sent: Arc<AtomicI64>,
}

/// The controllers of one term, and how far their dispatcher has got.
#[derive(Clone, Default)]
struct Running {
    controllers: Vec<Watched>,
    dispatched: Option<watch::Receiver<i64>>,
}

impl fmt::Debug for Controllers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = self.running();
        f.debug_struct("Controllers")
            .field("running", &names)
            .finish()
    }
}

impl Controllers {
    fn current(&self) -> Running {
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The controllers that run (in this process: none while another replica leads).
    pub fn running(&self) -> Vec<Controller> {
        self.current()
            .controllers
            .iter()
            .map(|w| w.controller)
            .collect()
    }

    /// The last progress each controller reported.
    pub fn progress(&self) -> Vec<(Controller, Progress)> {
        self.current()
            .controllers
            .iter()
            .map(|w| (w.controller, *w.progress.borrow()))
            .collect()
    }

    /// A handle with no controller running yet (a replica waiting for leadership).
    pub(crate) fn idle(store: DynStore, clock: Arc<dyn Clock>) -> Controllers {
        Controllers {
            store,
            clock,
            running: Arc::default(),
        }
    }

    /// Report `term`'s controllers through this handle from now on (None: none run).
    pub(crate) fn adopt(&self, term: Option<&Controllers>) {
        let running = term.map(Controllers::current).unwrap_or_default();
        *self
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = running;
    }

    /// Wait until the controllers have nothing left to do (see the module docs, "Settled").
    /// Returns at once when no controller runs, and when the server is shutting down.
    pub async fn settled(&self) {
        let running = self.current();
        let Some(mut dispatched) = running.dispatched else {
            return;
        };
        loop {
            let Ok(rev) = self.store.current_revision().await else {
                return;
            };
            // Every change up to `rev` handed out; then each controller has observed the last
            // one it was sent, and is idle.
            if dispatched.wait_for(|d| *d >= rev).await.is_err() {
                return;
            }
            for w in &running.controllers {
                let sent = w.sent.load(Ordering::SeqCst);
                let mut rx = w.progress.clone();
                let clock = self.clock.clone();
                let done = rx
                    .wait_for(|p| {
                        p.observed >= sent && p.idle && p.next_due.is_none_or(|t| t > clock.now())
                    })
                    .await;
                if done.is_err() {
                    return;
                }
            }
            match self.store.current_revision().await {
                Ok(now) if now == rev => return,
                Ok(_) => continue,
                Err(_) => return,
            }
        }
    }
}

/// The controllers being started: each one's task, channel and progress.
struct Wiring {
    state: Arc<Backend>,
    dispatched: watch::Receiver<i64>,
    routes: Vec<Route>,
    running: Vec<Watched>,
    tasks: Vec<JoinHandle<()>>,
}

impl Wiring {
    fn spawn<R: Reconciler>(&mut self, controller: Controller, r: R) {
        let (tx, rx) = mpsc::unbounded_channel();
        let (ptx, prx) = watch::channel(Progress::default());
        let sent = Arc::new(AtomicI64::new(0));
        self.routes.push(Route {
            tx,
            interest: r.interest(),
            sent: sent.clone(),
        });
        self.running.push(Watched {
            controller,
            progress: prx,
            sent,
        });
        let (state, dispatched) = (self.state.clone(), self.dispatched.clone());
        self.tasks
            .push(tokio::spawn(run(r, state, rx, ptx, dispatched)));
    }
}

/// Start the enabled controllers and their dispatcher; the tasks stop when `stop` turns true
/// (the server's shutdown, or the end of a leadership term).
pub(crate) fn start(
    state: &Arc<Backend>,
    opts: &ControllerOptions,
    signer: &Arc<crate::authn::serviceaccount::Tokens>,
    stop: watch::Receiver<bool>,
) -> (Controllers, Vec<JoinHandle<()>>) {
    let simulated = opts.nodes.count > 0;
    let mut enabled: Vec<Controller> = opts.enabled.effective(simulated).iter().collect();
    if simulated {
        enabled.extend([Controller::Scheduler, Controller::Kubelet]);
    }
    let (dispatched_tx, dispatched) = watch::channel(0);
    let mut w = Wiring {
        state: state.clone(),
        dispatched: dispatched.clone(),
        routes: Vec::new(),
        running: Vec::new(),
        tasks: Vec::new(),
    };
    for c in enabled {
        match c {
            Controller::GarbageCollector => w.spawn(c, gc::GarbageCollector::default()),
            Controller::Namespace => w.spawn(c, namespace::NamespaceController::default()),
            Controller::ServiceAccount => w.spawn(
                c,
                serviceaccount::ServiceAccountController::new(opts.root_ca.clone()),
            ),
            Controller::ServiceAccountToken => w.spawn(
                c,
                token::TokenController::new(opts.root_ca.clone(), signer.clone()),
            ),
            Controller::EventTtl => w.spawn(c, event_ttl::EventTtl::new(opts.event_ttl)),
            Controller::Deployment => w.spawn(c, deployment::DeploymentController::default()),
            Controller::ReplicaSet => w.spawn(c, replicaset::ReplicaSetController::replica_sets()),
            Controller::ReplicationController => w.spawn(
                c,
                replicaset::ReplicaSetController::replication_controllers(),
            ),
            Controller::Scheduler => w.spawn(c, scheduler::Scheduler::default()),
            Controller::Kubelet => w.spawn(c, kubelet::Kubelets::new(opts.nodes.clone())),
            Controller::Job => w.spawn(c, job::JobController::new()),
            Controller::CronJob => w.spawn(c, cronjob::CronJobController::new()),
            Controller::Endpoints => w.spawn(c, endpoints::EndpointsController::default()),
            Controller::EndpointSlice => w.spawn(
                c,
                endpointslice::EndpointSliceController::new(opts.max_endpoints_per_slice),
            ),
            Controller::Disruption => w.spawn(c, disruption::DisruptionController::default()),
            Controller::PodGc => w.spawn(c, podgc::PodGc::new(opts.terminated_pod_gc_threshold)),
            Controller::StatefulSet => w.spawn(c, statefulset::StatefulSetController::default()),
            Controller::DaemonSet => w.spawn(c, daemonset::DaemonSetController::default()),
        }
    }
    let Wiring {
        routes,
        running,
        mut tasks,
        ..
    } = w;
    let dispatched = (!routes.is_empty()).then_some(dispatched);
    if !routes.is_empty() {
        let informers = state.informers.clone();
        let (store, shutdown) = (state.store.clone(), stop);
        let dispatch = Dispatch {
            routes,
            dispatched: dispatched_tx,
        };
        tasks.push(tokio::spawn(async move {
            informers
                .run(
                    "the controllers' list and watch",
                    store,
                    "/registry/".to_string(),
                    Arc::new(dispatch),
                    None,
                    shutdown,
                )
                .await
        }));
    }
    (
        Controllers {
            store: state.store.clone(),
            clock: state.clock.clone(),
            running: Arc::new(std::sync::Mutex::new(Running {
                controllers: running,
                dispatched,
            })),
        },
        tasks,
    )
}

// ---------------------------------------------------------------------------------------------
// Reading and writing through the API's own code.

/// Every stored resource by storage prefix, each as the version objects are stored at when that
/// version is served (else the preferred one). Shared storage (events) appears once.
pub(crate) fn resources_by_prefix(snap: &Snapshot) -> BTreeMap<String, Arc<ResourceInfo>> {
    let mut out: BTreeMap<String, Arc<ResourceInfo>> = BTreeMap::new();
    for g in &snap.groups {
        for v in &g.versions {
            for r in snap.resources(&g.name, v).unwrap_or_default() {
                let stored_here = r.serves_api_version(&r.storage_api_version);
                match out.get(&r.storage_prefix) {
                    Some(prev) if prev.serves_api_version(&prev.storage_api_version) => {}
                    Some(_) if !stored_here => {}
                    _ => {
                        out.insert(r.storage_prefix.clone(), r.clone());
                    }
                }
            }
        }
    }
    out
}

/// The entry whose storage prefix begins `key`. No storage prefix begins another, so it is the
/// greatest prefix not after the key, if that one begins it.
fn prefix_of<'m, V>(by_prefix: &'m BTreeMap<String, V>, key: &str) -> Option<(&'m String, &'m V)> {
    by_prefix
        .range::<str, _>((std::ops::Bound::Unbounded, std::ops::Bound::Included(key)))
        .next_back()
        .filter(|(prefix, _)| key.starts_with(prefix.as_str()))
}

/// [`resources_by_prefix`] of the registry's current snapshot, rebuilt when CRDs change it.
#[derive(Default)]
pub(crate) struct ResourceIndex {
    snapshot: Option<Arc<Snapshot>>,
    by_prefix: BTreeMap<String, Arc<ResourceInfo>>,
}

impl ResourceIndex {
    /// Bring the index up to date; true when the registry changed since the last call.
    pub fn refresh(&mut self, state: &Backend) -> bool {
        let snap = state.registry.snapshot();
        if self
            .snapshot
            .as_ref()
            .is_some_and(|s| Arc::ptr_eq(s, &snap))
        {
            return false;
        }
        self.by_prefix = resources_by_prefix(&snap);
        self.snapshot = Some(snap);
        true
    }

    /// The registry snapshot the index was built from.
    pub fn snapshot(&self) -> Option<&Arc<Snapshot>> {
        self.snapshot.as_ref()
    }

    /// Every stored resource by storage prefix.
    pub fn resources(&self) -> impl Iterator<Item = &Arc<ResourceInfo>> {
        self.by_prefix.values()
    }

    /// The resource a storage key belongs to.
    pub fn for_key(&self, key: &str) -> Option<Arc<ResourceInfo>> {
        prefix_of(&self.by_prefix, key).map(|(_, info)| info.clone())
    }

    /// The namespace of a namespaced object's storage key (None for a cluster-scoped one or a
    /// key of no known resource).
    pub fn namespace_of<'k>(&self, key: &'k str) -> Option<&'k str> {
        let (prefix, info) = prefix_of(&self.by_prefix, key)?;
        if !info.namespaced {
            return None;
        }
        let (ns, name) = key.get(prefix.len()..)?.split_once('/')?;
        (!ns.is_empty() && !name.is_empty()).then_some(ns)
    }
}

/// The resource serving `kind` at `apiVersion` (another served version of the group if that one
/// is not served, as a RESTMapper resolves group and kind).
pub(crate) fn resource_for_kind(
    snap: &Snapshot,
    api_version: &str,
    kind: &str,
) -> Option<Arc<ResourceInfo>> {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    if let Some(r) = snap.by_kind(group, version, kind) {
        return Some(r);
    }
    snap.group(group)?
        .versions
        .iter()
        .find_map(|v| snap.by_kind(group, v, kind))
}

/// The scope of a controller's write to the object stored at `key` (a key of `info`), and the
/// object's name.
pub(crate) fn scope_for_key(
    state: &Arc<Backend>,
    info: &Arc<ResourceInfo>,
    key: &str,
    subresource: &str,
) -> (Scope, String) {
    let rest = key
        .strip_prefix(info.storage_prefix.as_str())
        .unwrap_or(key);
    let (ns, name) = match rest.split_once('/') {
        Some((ns, name)) if info.namespaced => (ns, name),
        _ => ("", rest),
    };
    (
        Scope::system(state, info.clone(), ns, subresource),
        name.to_string(),
    )
}

/// Read one stored object: (object at the storage version, resourceVersion), None if absent.
pub(crate) async fn read(state: &Backend, key: &str) -> ApiResult<Option<(Value, i64)>> {
    match state.store.get(key, None).await {
        Ok(kv) => Ok(Some((from_stored(&kv)?, kv.mod_revision))),
        Err(StoreError::NotFound(_)) => Ok(None),
        Err(e) => Err(from_store(e, &GroupResource::default(), key)),
    }
}

/// Read-modify-write one object through the registry store ([`store::guaranteed_update`]:
/// compare-and-swap, retried on Conflict). `change` edits the object and says whether it changed anything; nothing is written
/// when it did not. With `uid`, an object that was replaced by a namesake is left alone.
/// Returns whether a write happened (a removed last finalizer deletes the object).
pub(crate) async fn update_with<F>(
    state: &Arc<Backend>,
    info: &Arc<ResourceInfo>,
    key: &str,
    subresource: &str,
    uid: Option<&str>,
    change: F,
) -> ApiResult<bool>
where
    F: FnMut(&mut Value) -> bool + Send,
{
    let (scope, name) = scope_for_key(state, info, key, subresource);
    store::guaranteed_update(&scope, &name, uid, change).await
}

pub(crate) use crate::registry::gc_finalizers::finalizers_of;

/// Does the object carry a deletionTimestamp?
pub(crate) fn is_deleting(obj: &Value) -> bool {
    store::is_deleting(obj)
}

/// Remove one finalizer (through the update path: the last one going deletes the object).
pub(crate) async fn remove_finalizer(
    state: &Arc<Backend>,
    info: &Arc<ResourceInfo>,
    key: &str,
    uid: &str,
    finalizer: &str,
) -> ApiResult<bool> {
    update_with(state, info, key, "", Some(uid), |obj| {
        let before = finalizers_of(obj);
        if !before.iter().any(|f| f == finalizer) {
            return false;
        }
        let after: Vec<String> = before.into_iter().filter(|f| f != finalizer).collect();
        obj["metadata"]["finalizers"] = serde_json::json!(after);
        true
    })
    .await
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn controllers_flag_follows_kube_controller_manager() {
        assert_eq!(ControllerSet::parse("*").unwrap(), ControllerSet::all());
        assert_eq!(ControllerSet::parse("").unwrap(), ControllerSet::all());
        let s = ControllerSet::parse("*,-garbage-collector").unwrap();
        assert!(!s.contains(Controller::GarbageCollector));
        assert!(s.contains(Controller::Namespace) && s.contains(Controller::EventTtl));
        let s = ControllerSet::parse("namespace,event-ttl").unwrap();
        assert_eq!(s.to_string(), "namespace,event-ttl");
        let s = ControllerSet::parse("-namespace").unwrap();
        assert_eq!(s, ControllerSet::none());
        assert!(ControllerSet::parse("*,-bogus")
            .unwrap_err()
            .contains("not in the list of known controllers"));
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("1h0m0s").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert!(parse_duration("1 hour").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn storage_keys_resolve_to_their_resource_whatever_the_depth_of_its_prefix() {
        let prefixes: BTreeMap<String, bool> = [
            ("/registry/deployments/", true),
            ("/registry/namespaces/", false),
            ("/registry/services/specs/", true),
            ("/registry/services/endpoints/", true),
            ("/registry/example.com/widgets/", true),
            ("/registry/example.com/gadgets/", false),
        ]
        .into_iter()
        .map(|(p, n)| (p.to_string(), n))
        .collect();
        let of = |key: &str| prefix_of(&prefixes, key).map(|(p, _)| p.as_str());
        assert_eq!(
            of("/registry/deployments/ns/web"),
            Some("/registry/deployments/")
        );
        assert_eq!(of("/registry/namespaces/ns"), Some("/registry/namespaces/"));
        assert_eq!(
            of("/registry/services/specs/default/kubernetes"),
            Some("/registry/services/specs/")
        );
        assert_eq!(
            of("/registry/services/endpoints/default/kubernetes"),
            Some("/registry/services/endpoints/")
        );
        assert_eq!(
            of("/registry/example.com/widgets/ns/w"),
            Some("/registry/example.com/widgets/")
        );
        assert_eq!(
            of("/registry/example.com/gadgets/g"),
            Some("/registry/example.com/gadgets/")
        );
        // Between two prefixes, beginning neither.
        assert_eq!(of("/registry/example.com/other/x"), None);
        assert_eq!(of("/registry/pods/ns/p"), None);
        assert_eq!(of("/registry/zzz"), None);
    }
}
