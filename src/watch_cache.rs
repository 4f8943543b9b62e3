//! The watch cache (kube-apiserver's cacher): one per storage prefix — a resource, all its
//! versions — fed by one store watch and serving every API watch of that resource.
//!
//! A cache lists its prefix at a revision R, then watches the store from R+1 and keeps the
//! objects (the stored bytes, shared with the store's own copy for the in-process backends), a
//! window of recent events bounded by bytes and count, and its watchers, indexed by what they
//! watch: one object (its key), one namespace, a value of the field kube indexes (a Pod's
//! `spec.nodeName`), or everything. Writers only hand the store's event to the cache's one
//! store watcher; the cache's task wraps each event once ([`CachedEvent`]: decoded and encoded
//! at most once, whatever the number of watchers) and queues it for the watchers it concerns.
//!
//! A watch starts from the cache: its initial objects are the cache's objects at its revision
//! (after the cache has caught up with the store when the request asks for the newest state),
//! a watch from a resourceVersion replays the window. Older than the window, the caller watches
//! the store directly. The cache learns how far the store got without an event under its prefix
//! through the store's progress reports (etcd's progress notifications), so a backend that
//! reports progress sits under the cache unchanged.
//!
//! Bounded: a watcher's queue holds at most [`MAX_QUEUED`] events (a watcher that lets it fill
//! is ended, and its client watches again, as kube's cacher ends a blocked watcher); the window
//! at most [`MAX_WINDOW_BYTES`] and [`MAX_WINDOW_EVENTS`]. A lost store watch ends every
//! watcher and the cache lists again, with backoff.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Bound;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use futures::{FutureExt, Stream, StreamExt};
use kubox_storage::{
    DynStore, Event, EventKind, KeyValue, ListOptions, ProgressRequester, Revision, StoreError,
    WatchItem,
};
use serde_json::Value;
use tokio::sync::watch;

use crate::backoff::Backoff;

/// Events queued for one watcher before it is ended.
pub const MAX_QUEUED: usize = 10_000;
/// Bytes of stored values the window of recent events keeps.
pub const MAX_WINDOW_BYTES: usize = 16 << 20;
/// Events the window keeps.
pub const MAX_WINDOW_EVENTS: usize = 100_000;
/// How long a watch waits for the cache to reach the revision it asks for (kube's cacher
/// waits 3 s, then answers that the resourceVersion is too large).
pub const FRESHNESS_WAIT: Duration = Duration::from_secs(3);
/// Events handled under one lock of the cache.
const BATCH: usize = 256;
/// A list page while the cache fills.
const LIST_PAGE: usize = 10_000;

/// A lock that outlives a panic elsewhere: what it guards stays consistent at every step.
trait Locked<T> {
    fn locked(&self) -> MutexGuard<'_, T>;
}

impl<T> Locked<T> for Mutex<T> {
    fn locked(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The caches of one server, created on a resource's first watch.
pub struct WatchCaches {
    store: DynStore,
    shutdown: watch::Receiver<bool>,
    caches: Mutex<HashMap<String, Arc<Cache>>>,
}

impl WatchCaches {
    /// No cache yet; each is started by the first watch of its prefix.
    pub fn new(store: DynStore, shutdown: watch::Receiver<bool>) -> Self {
        WatchCaches {
            store,
            shutdown,
            caches: Mutex::new(HashMap::new()),
        }
    }

    /// The cache of a storage prefix (every key of a resource: `/registry/pods/`), started if
    /// it was not. `namespaced`: keys are `prefix + namespace/name`.
    pub fn cache(&self, prefix: &str, namespaced: bool) -> Arc<Cache> {
        let mut caches = self.caches.locked();
        match caches.get(prefix) {
            Some(c) if c.namespaced == namespaced => return c.clone(),
            // A resource served again with another scope (a CRD deleted and created anew):
            // its old cache stops, and its watchers end.
            Some(old) => {
                old.retired.send_replace(true);
            }
            None => {}
        }
        let cache = Arc::new(Cache::new(prefix, namespaced, indexed_field(prefix)));
        caches.insert(prefix.to_string(), cache.clone());
        tokio::spawn(feed(
            cache.clone(),
            self.store.clone(),
            self.shutdown.clone(),
        ));
        cache
    }
}

/// The field kube indexes watchers of a resource by (`spec.nodeName` for Pods: every kubelet
/// watches the Pods of its node).
fn indexed_field(storage_prefix: &str) -> Option<&'static str> {
    (storage_prefix == crate::registry::storage_prefix("", "pods")).then_some("spec.nodeName")
}

/// One resource's cache.
pub struct Cache {
    prefix: String,
    namespaced: bool,
    indexed_field: Option<&'static str>,
    inner: Mutex<Inner>,
    /// The revision the cache has reached; -1 until its first list is in.
    revision: watch::Sender<Revision>,
    progress: Mutex<Option<Arc<dyn ProgressRequester>>>,
    /// Set when another cache took this one's place: its loop stops.
    retired: watch::Sender<bool>,
}

struct Inner {
    ready: bool,
    revision: Revision,
    objects: BTreeMap<Arc<str>, KeyValue>,
    window: VecDeque<Arc<Event>>,
    window_bytes: usize,
    /// The window holds every event above this revision, up to `revision`.
    window_from: Revision,
    watchers: Watchers,
}

#[derive(Default)]
struct Watchers {
    all: Vec<Arc<Slot>>,
    by_namespace: HashMap<String, Vec<Arc<Slot>>>,
    by_key: HashMap<String, Vec<Arc<Slot>>>,
    by_field: HashMap<String, Vec<Arc<Slot>>>,
    /// Registrations since dropped watchers were last swept out of every list.
    since_sweep: usize,
}

/// What one watcher watches.
#[derive(Clone, Debug, Default)]
pub struct Interest {
    /// Only this namespace's objects.
    pub namespace: Option<String>,
    /// Only the object of this name (with `namespace`).
    pub name: Option<String>,
    /// Only objects whose indexed field has (or had) this value.
    pub field_value: Option<String>,
}

/// Where a watch starts.
#[derive(Clone, Copy, Debug)]
pub enum Start {
    /// The cache's objects, then every later event.
    Objects,
    /// Every event after this revision.
    After(Revision),
}

/// A watch registered with a cache.
pub struct Registered {
    /// The objects at `revision` (for [`Start::Objects`]), in key order.
    pub objects: Vec<KeyValue>,
    /// The revision the watch starts after.
    pub revision: Revision,
    /// The events after it.
    pub events: EventStream,
}

/// Why a cache cannot serve a watch.
#[derive(Debug)]
pub enum NotServed {
    /// The revision is older than the cache's window: watch the store.
    TooOld,
    /// The cache has not reached the revision in time.
    NotFresh {
        /// The revision the cache has reached.
        current: Revision,
    },
}

impl Cache {
    fn new(prefix: &str, namespaced: bool, indexed_field: Option<&'static str>) -> Self {
        Cache {
            prefix: prefix.to_string(),
            namespaced,
            indexed_field,
            inner: Mutex::new(Inner {
                ready: false,
                revision: 0,
                objects: BTreeMap::new(),
                window: VecDeque::new(),
                window_bytes: 0,
                window_from: 0,
                watchers: Watchers::default(),
            }),
            revision: watch::channel(-1).0,
            progress: Mutex::new(None),
            retired: watch::channel(false).0,
        }
    }

    /// The field whose exact-match selectors index this cache's watchers, if any.
    pub fn indexed_field(&self) -> Option<&'static str> {
        self.indexed_field
    }

    /// The revision the cache has reached (-1 before its first list).
    pub fn revision(&self) -> Revision {
        *self.revision.borrow()
    }

    /// Wait until the cache has reached `revision` (asking the store how far it got), at most
    /// [`FRESHNESS_WAIT`]. Returns the revision reached.
    pub async fn wait_for(&self, revision: Revision) -> Result<Revision, NotServed> {
        let mut rx = self.revision.subscribe();
        let deadline = tokio::time::Instant::now() + FRESHNESS_WAIT;
        loop {
            let at = *rx.borrow_and_update();
            if at >= revision && at >= 0 {
                return Ok(at);
            }
            if at >= 0 {
                let requester = self.progress.locked().clone();
                if let Some(p) = requester {
                    p.request_progress();
                }
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                _ => return Err(NotServed::NotFresh { current: at }),
            }
        }
    }

    /// Register a watcher. For [`Start::After`] the cache must have reached the revision
    /// ([`Cache::wait_for`]); events after it come from the window.
    pub fn register(&self, interest: Interest, start: Start) -> Result<Registered, NotServed> {
        let prefix = self.watch_prefix(&interest);
        let exact_key = interest.name.as_ref().map(|n| self.key(&interest, n));
        let mut guard = self.inner.locked();
        let inner = &mut *guard;
        if !inner.ready {
            return Err(NotServed::NotFresh { current: -1 });
        }
        let wanted = |key: &str| match &exact_key {
            Some(k) => key == k,
            None => key.starts_with(&prefix),
        };
        let mut queued = VecDeque::new();
        let objects = match start {
            Start::Objects => match &exact_key {
                Some(k) => inner.objects.get(k.as_str()).cloned().into_iter().collect(),
                None => inner
                    .objects
                    .range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded))
                    .take_while(|(k, _)| k.starts_with(&prefix))
                    .map(|(_, kv)| kv.clone())
                    .collect(),
            },
            Start::After(rev) => {
                if rev < inner.window_from {
                    return Err(NotServed::TooOld);
                }
                if rev > inner.revision {
                    return Err(NotServed::NotFresh {
                        current: inner.revision,
                    });
                }
                // The window is in revision order: skip to the first event after `rev`.
                let first = inner.window.partition_point(|ev| ev.revision() <= rev);
                queued.extend(
                    inner
                        .window
                        .range(first..)
                        .filter(|ev| wanted(&ev.kv.key))
                        .map(|ev| Arc::new(CachedEvent::new(ev.clone()))),
                );
                Vec::new()
            }
        };
        let revision = match start {
            Start::Objects => inner.revision,
            Start::After(rev) => rev,
        };
        let slot = Arc::new(Slot {
            prefix: prefix.clone(),
            queue: Mutex::new(Queue {
                events: queued,
                waker: None,
                end: None,
            }),
        });
        let w = &mut inner.watchers;
        w.since_sweep += 1;
        if w.since_sweep >= 64 {
            w.sweep();
        }
        match (&interest.field_value, exact_key, &interest.namespace) {
            (Some(v), _, _) if self.indexed_field.is_some() => {
                w.by_field.entry(v.clone()).or_default().push(slot.clone())
            }
            (_, Some(k), _) => w.by_key.entry(k).or_default().push(slot.clone()),
            (_, None, Some(ns)) if self.namespaced => w
                .by_namespace
                .entry(ns.clone())
                .or_default()
                .push(slot.clone()),
            _ => w.all.push(slot.clone()),
        }
        Ok(Registered {
            objects,
            revision,
            events: EventStream {
                slot,
                buf: VecDeque::new(),
            },
        })
    }

    fn watch_prefix(&self, interest: &Interest) -> String {
        match &interest.namespace {
            Some(ns) if self.namespaced => format!("{}{ns}/", self.prefix),
            _ => self.prefix.clone(),
        }
    }

    fn key(&self, interest: &Interest, name: &str) -> String {
        match &interest.namespace {
            Some(ns) if self.namespaced => format!("{}{ns}/{name}", self.prefix),
            _ => format!("{}{name}", self.prefix),
        }
    }

    /// The namespace part of a key under the prefix.
    fn namespace_of<'k>(&self, key: &'k str) -> Option<&'k str> {
        if !self.namespaced {
            return None;
        }
        key.strip_prefix(&self.prefix)?
            .split_once('/')
            .map(|(ns, _)| ns)
    }

    /// A fresh list: the objects at `revision`. Every watcher of the previous state is ended
    /// (its client watches again), as kube's cacher ends them when it relists.
    fn reset(&self, objects: BTreeMap<Arc<str>, KeyValue>, revision: Revision) {
        let mut inner = self.inner.locked();
        let old = std::mem::take(&mut inner.watchers);
        inner.objects = objects;
        inner.window.clear();
        inner.window_bytes = 0;
        inner.window_from = revision;
        inner.revision = revision;
        inner.ready = true;
        drop(inner);
        old.end_all(End::Reset);
        self.revision.send_replace(revision);
    }

    /// The store watch is lost: watchers end, the cache waits for its next list.
    fn lost(&self) {
        let mut inner = self.inner.locked();
        inner.ready = false;
        let old = std::mem::take(&mut inner.watchers);
        drop(inner);
        old.end_all(End::Reset);
        *self.progress.locked() = None;
    }

    fn progressed(&self, revision: Revision) {
        let mut inner = self.inner.locked();
        if revision > inner.revision {
            inner.revision = revision;
            drop(inner);
            self.revision.send_if_modified(|r| {
                let newer = revision > *r;
                if newer {
                    *r = revision;
                }
                newer
            });
        }
    }

    /// Apply events (in revision order) and queue them for their watchers.
    fn apply(&self, events: &[Arc<Event>]) {
        let Some(last) = events.last().map(|e| e.revision()) else {
            return;
        };
        let mut wake = Vec::new();
        let mut guard = self.inner.locked();
        let inner = &mut *guard;
        for ev in events {
            match ev.kind {
                EventKind::Put => {
                    inner.objects.insert(ev.kv.key.clone(), ev.kv.clone());
                }
                EventKind::Delete => {
                    inner.objects.remove(&*ev.kv.key);
                }
            }
            inner.window_bytes += event_bytes(ev);
            inner.window.push_back(ev.clone());
            while inner.window.len() > MAX_WINDOW_EVENTS
                || (inner.window_bytes > MAX_WINDOW_BYTES && inner.window.len() > 1)
            {
                let Some(old) = inner.window.pop_front() else {
                    break;
                };
                inner.window_bytes -= event_bytes(&old);
                inner.window_from = old.revision();
            }
            if inner.watchers.is_empty() {
                continue;
            }
            let cached = Arc::new(CachedEvent::new(ev.clone()));
            let w = &mut inner.watchers;
            deliver_all(&mut w.all, &cached, &mut wake);
            if let Some(ns) = self.namespace_of(&ev.kv.key) {
                if let Some(list) = w.by_namespace.get_mut(ns) {
                    deliver_all(list, &cached, &mut wake);
                    if list.is_empty() {
                        w.by_namespace.remove(ns);
                    }
                }
            }
            if let Some(list) = w.by_key.get_mut(&*ev.kv.key) {
                deliver_all(list, &cached, &mut wake);
                if list.is_empty() {
                    w.by_key.remove(&*ev.kv.key);
                }
            }
            if let (Some(field), false) = (self.indexed_field, w.by_field.is_empty()) {
                let (now, before) = cached.field_values(field);
                let before = before.filter(|b| Some(b) != now.as_ref());
                for value in [now, before].into_iter().flatten() {
                    if let Some(list) = w.by_field.get_mut(&value) {
                        list.retain(|slot| {
                            !ev.kv.key.starts_with(&slot.prefix)
                                || deliver(slot, &cached, &mut wake)
                        });
                        if list.is_empty() {
                            w.by_field.remove(&value);
                        }
                    }
                }
            }
        }
        inner.revision = inner.revision.max(last);
        drop(guard);
        self.revision.send_replace(last);
        for w in wake {
            w.wake();
        }
    }
}

impl Watchers {
    fn is_empty(&self) -> bool {
        self.all.is_empty()
            && self.by_namespace.is_empty()
            && self.by_key.is_empty()
            && self.by_field.is_empty()
    }

    /// Drop the watchers whose stream is gone.
    fn sweep(&mut self) {
        self.since_sweep = 0;
        let live = |s: &Arc<Slot>| Arc::strong_count(s) > 1;
        self.all.retain(live);
        for map in [&mut self.by_namespace, &mut self.by_key, &mut self.by_field] {
            map.retain(|_, list| {
                list.retain(live);
                !list.is_empty()
            });
        }
    }

    fn end_all(self, why: End) {
        let lists = self
            .by_namespace
            .into_values()
            .chain(self.by_key.into_values())
            .chain(self.by_field.into_values())
            .chain(std::iter::once(self.all));
        for slot in lists.flatten() {
            let mut q = slot.queue.locked();
            q.end.get_or_insert(why);
            let waker = q.waker.take();
            drop(q);
            if let Some(w) = waker {
                w.wake();
            }
        }
    }
}

/// What a store event costs the window, in bytes.
fn event_bytes(ev: &Event) -> usize {
    ev.kv.key.len() + ev.kv.value.len() + ev.prev.as_ref().map_or(0, |p| p.value.len()) + 64
}

fn deliver_all(list: &mut Vec<Arc<Slot>>, ev: &Arc<CachedEvent>, wake: &mut Vec<Waker>) {
    list.retain(|slot| deliver(slot, ev, wake));
}

/// Queue an event for one watcher; false when the watcher is gone or was ended.
fn deliver(slot: &Arc<Slot>, ev: &Arc<CachedEvent>, wake: &mut Vec<Waker>) -> bool {
    if Arc::strong_count(slot) == 1 {
        return false;
    }
    let mut q = slot.queue.locked();
    if q.end.is_some() {
        return false;
    }
    if q.events.len() >= MAX_QUEUED {
        q.events = VecDeque::new();
        q.end = Some(End::FellBehind);
    } else {
        q.events.push_back(ev.clone());
    }
    if let Some(w) = q.waker.take() {
        wake.push(w);
    }
    q.end.is_none()
}

/// Why a cache ended a watcher.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// More than [`MAX_QUEUED`] events waited for it.
    FellBehind,
    /// The cache lost its store watch or listed again.
    Reset,
}

struct Slot {
    /// The keys this watcher watches (checked for field-indexed watchers).
    prefix: String,
    queue: Mutex<Queue>,
}

struct Queue {
    events: VecDeque<Arc<CachedEvent>>,
    waker: Option<Waker>,
    end: Option<End>,
}

/// A watcher's events, in revision order; ends with `Err` when the cache ends the watcher.
pub struct EventStream {
    slot: Arc<Slot>,
    buf: VecDeque<Arc<CachedEvent>>,
}

impl Stream for EventStream {
    type Item = Result<Arc<CachedEvent>, End>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(ev) = this.buf.pop_front() {
            return Poll::Ready(Some(Ok(ev)));
        }
        let mut q = this.slot.queue.locked();
        if !q.events.is_empty() {
            std::mem::swap(&mut q.events, &mut this.buf);
            drop(q);
            return Poll::Ready(this.buf.pop_front().map(Ok));
        }
        if let Some(end) = q.end {
            return Poll::Ready(Some(Err(end)));
        }
        match &mut q.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            w => *w = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

/// A store event as every watcher of a cache shares it: decoded at most once, its answer bytes
/// built at most once.
pub struct CachedEvent {
    /// The store's event.
    pub event: Arc<Event>,
    object: OnceLock<Result<Value, String>>,
    previous: OnceLock<Option<Value>>,
    stamped: OnceLock<Option<Bytes>>,
    frame: OnceLock<Option<Bytes>>,
    protobuf: OnceLock<Result<Bytes, String>>,
}

impl CachedEvent {
    /// Wrap a store event.
    pub fn new(event: Arc<Event>) -> Self {
        CachedEvent {
            event,
            object: OnceLock::new(),
            previous: OnceLock::new(),
            stamped: OnceLock::new(),
            frame: OnceLock::new(),
            protobuf: OnceLock::new(),
        }
    }

    /// The event's revision.
    pub fn revision(&self) -> Revision {
        self.event.revision()
    }

    /// The watch event type the store's event is without selection: ADDED, MODIFIED or DELETED
    /// (None for a delete without its old value, which a store never sends).
    pub fn event_type(&self) -> Option<&'static str> {
        match (self.event.kind, &self.event.prev) {
            (EventKind::Put, None) => Some("ADDED"),
            (EventKind::Put, Some(_)) => Some("MODIFIED"),
            (EventKind::Delete, Some(_)) => Some("DELETED"),
            (EventKind::Delete, None) => None,
        }
    }

    /// The object the event carries, decoded, with its resourceVersion: the new value of a put,
    /// the old value of a delete at the delete's revision.
    pub fn object(&self) -> Result<&Value, &str> {
        self.object
            .get_or_init(|| {
                let kv = match (self.event.kind, &self.event.prev) {
                    (EventKind::Delete, Some(prev)) => prev,
                    (EventKind::Delete, None) => return Err("a delete without its object".into()),
                    (EventKind::Put, _) => &self.event.kv,
                };
                let mut obj: Value = serde_json::from_slice(&kv.value)
                    .map_err(|e| format!("stored object {} is not JSON: {e}", kv.key))?;
                crate::objects::set_resource_version(&mut obj, self.event.kv.mod_revision);
                Ok(obj)
            })
            .as_ref()
            .map_err(String::as_str)
    }

    /// The value before a put (None for a create or a delete), decoded, at its own revision.
    pub fn previous(&self) -> Option<&Value> {
        self.previous
            .get_or_init(|| match (self.event.kind, &self.event.prev) {
                (EventKind::Put, Some(prev)) => crate::objects::from_stored(prev).ok(),
                _ => None,
            })
            .as_ref()
    }

    /// The object's JSON as a built-in's answer at its storage version: the stored bytes with
    /// the resourceVersion spliced in.
    pub fn stamped(&self) -> Option<&Bytes> {
        self.stamped
            .get_or_init(|| {
                let kv = match (self.event.kind, &self.event.prev) {
                    (EventKind::Delete, Some(prev)) => prev,
                    (EventKind::Delete, None) => return None,
                    (EventKind::Put, _) => &self.event.kv,
                };
                crate::objects::stamp(&kv.value, self.event.kv.mod_revision).map(Bytes::from)
            })
            .as_ref()
    }

    /// The JSON frame of the event as [`CachedEvent::event_type`] types it, over
    /// [`CachedEvent::stamped`].
    pub fn frame(&self) -> Option<&Bytes> {
        self.frame
            .get_or_init(|| Some(json_frame(self.event_type()?, self.stamped()?)))
            .as_ref()
    }

    /// The object in Kubernetes protobuf (a built-in kind).
    pub fn protobuf(&self) -> Result<&Bytes, String> {
        self.protobuf
            .get_or_init(|| {
                let obj = self.object().map_err(str::to_string)?;
                kubox_apimachinery::protobuf::encode_object(obj)
                    .map(Bytes::from)
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(String::clone)
    }

    /// The indexed field's value now and before the event.
    fn field_values(&self, field: &str) -> (Option<String>, Option<String>) {
        // An absent field is the empty string, as in the field selector (Go's zero value): the
        // scheduler watches `spec.nodeName=` for the Pods not bound yet.
        let read = |obj: &Value| {
            let v = field.split('.').fold(obj, |v, part| &v[part]);
            Some(v.as_str().unwrap_or_default().to_string())
        };
        let now = match self.event.kind {
            EventKind::Put => self.object().ok().and_then(read),
            EventKind::Delete => None,
        };
        let before = match self.event.kind {
            EventKind::Put => self.previous().and_then(read),
            EventKind::Delete => self.object().ok().and_then(read),
        };
        (now, before)
    }
}

/// `{"type":"…","object":…}\n`: metav1.WatchEvent's fields in Go's order.
pub fn json_frame(ty: &str, object: &[u8]) -> Bytes {
    let mut line = Vec::with_capacity(object.len() + 32);
    line.extend_from_slice(b"{\"type\":\"");
    line.extend_from_slice(ty.as_bytes());
    line.extend_from_slice(b"\",\"object\":");
    line.extend_from_slice(object);
    line.extend_from_slice(b"}\n");
    Bytes::from(line)
}

/// The cache's loop: list, then watch from the list's revision; list again after a lost watch.
async fn feed(cache: Arc<Cache>, store: DynStore, shutdown: watch::Receiver<bool>) {
    let mut backoff = Backoff::standard("the watch cache's list and watch");
    // Stop on the server's shutdown or when the cache is retired.
    let (stop_tx, mut stop) = watch::channel(false);
    let mut retired = cache.retired.subscribe();
    let mut server = shutdown;
    let _stopper = tokio::spawn(async move {
        tokio::select! {
            _ = server.wait_for(|s| *s) => {}
            _ = retired.wait_for(|r| *r) => {}
        }
        let _ = stop_tx.send(true);
    });
    let mut shutdown = stop.clone();
    loop {
        if *stop.borrow_and_update() {
            cache.lost();
            return;
        }
        let err = match list_and_watch(&cache, &store, &mut shutdown, &mut backoff).await {
            Ok(()) => {
                cache.lost();
                return;
            }
            Err(e) => e,
        };
        cache.lost();
        let wait = backoff.failed(&err);
        if !crate::backoff::wait(wait, &mut shutdown).await {
            return;
        }
    }
}

/// One list and the watch after it. Ok on shutdown, Err when the watch is lost.
async fn list_and_watch(
    cache: &Cache,
    store: &DynStore,
    shutdown: &mut watch::Receiver<bool>,
    backoff: &mut Backoff,
) -> Result<(), StoreError> {
    let mut objects = BTreeMap::new();
    let mut opts = ListOptions {
        limit: Some(LIST_PAGE),
        ..Default::default()
    };
    let mut revision = None;
    loop {
        let page = store.list(&cache.prefix, opts).await?;
        revision.get_or_insert(page.revision);
        objects.extend(page.items.into_iter().map(|kv| (kv.key.clone(), kv)));
        match page.continue_token {
            Some(t) => {
                opts = ListOptions {
                    limit: Some(LIST_PAGE),
                    continue_token: Some(t),
                    ..Default::default()
                }
            }
            None => break,
        }
    }
    let revision = revision.unwrap_or(0);
    let (mut stream, progress) = store.watch_progress(&cache.prefix, revision + 1).await?;
    *cache.progress.locked() = Some(progress);
    cache.reset(objects, revision);
    backoff.succeeded();
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let item = tokio::select! {
            _ = shutdown.changed() => return Ok(()),
            item = stream.next() => item,
        };
        let mut item = item;
        loop {
            match item {
                Some(Ok(WatchItem::Event(ev))) => batch.push(ev),
                Some(Ok(WatchItem::Progress(rev))) => {
                    cache.apply(&batch);
                    batch.clear();
                    cache.progressed(rev);
                }
                Some(Err(e)) => return Err(e),
                None => return Err(StoreError::Unavailable("the store watch ended".into())),
            }
            if batch.len() >= BATCH {
                break;
            }
            // Take what is ready now into the same batch.
            match stream.next().now_or_never() {
                Some(next) => item = next,
                None => break,
            }
        }
        cache.apply(&batch);
        batch.clear();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use kubox_storage::memory::MemoryStore;
    use kubox_storage::Store;

    const WAIT: Duration = Duration::from_secs(30);

    fn pod(ns: &str, name: &str, node: &str) -> Bytes {
        Bytes::from(
            serde_json::to_vec(&serde_json::json!({
                "kind": "Pod", "apiVersion": "v1",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"nodeName": node},
            }))
            .unwrap_or_default(),
        )
    }

    /// Where the server stores Pods: the index by `spec.nodeName` is this prefix's.
    fn pods_prefix() -> String {
        crate::registry::storage_prefix("", "pods")
    }

    fn key(ns: &str, name: &str) -> String {
        format!("{}{ns}/{name}", pods_prefix())
    }

    struct Fixture {
        store: Arc<MemoryStore>,
        caches: WatchCaches,
        _stop: watch::Sender<bool>,
    }

    fn fixture() -> Fixture {
        let store = Arc::new(MemoryStore::new());
        let (stop, shutdown) = watch::channel(false);
        let caches = WatchCaches::new(store.clone(), shutdown);
        Fixture {
            store,
            caches,
            _stop: stop,
        }
    }

    impl Fixture {
        async fn pods(&self) -> Arc<Cache> {
            let cache = self.caches.cache(&pods_prefix(), true);
            assert_eq!(cache.indexed_field(), Some("spec.nodeName"));
            let now = self.store.current_revision().await.unwrap_or_default();
            assert!(cache.wait_for(now).await.is_ok());
            cache
        }

        async fn put(&self, ns: &str, name: &str, node: &str) -> Revision {
            let k = key(ns, name);
            match self.store.get(&k, None).await {
                Ok(_) => self.store.update(&k, pod(ns, name, node), None).await,
                Err(_) => self.store.create(&k, pod(ns, name, node)).await,
            }
            .map(|kv| kv.mod_revision)
            .unwrap_or_default()
        }
    }

    fn interest(ns: Option<&str>, name: Option<&str>, node: Option<&str>) -> Interest {
        Interest {
            namespace: ns.map(str::to_string),
            name: name.map(str::to_string),
            field_value: node.map(str::to_string),
        }
    }

    async fn next(events: &mut EventStream) -> Arc<CachedEvent> {
        match tokio::time::timeout(WAIT, events.next()).await {
            Ok(Some(Ok(ev))) => ev,
            other => panic!(
                "no event: {:?}",
                other.map(|o| o.map(|r| r.map(|e| e.revision())))
            ),
        }
    }

    /// What is queued now, without waiting.
    fn queued(events: &mut EventStream) -> Vec<String> {
        let mut keys = Vec::new();
        while let Some(Some(Ok(ev))) = events.next().now_or_never() {
            keys.push(ev.event.kv.key.to_string());
        }
        keys
    }

    /// Watchers get the events of what they watch — everything, a namespace, one object (not
    /// another whose name starts with its name), a node — and the watchers of one event share
    /// one decoded, encoded event.
    #[tokio::test]
    async fn each_watcher_gets_what_it_watches_and_the_event_is_shared() {
        let fx = fixture();
        let cache = fx.pods().await;
        let mut all = cache
            .register(interest(None, None, None), Start::Objects)
            .unwrap()
            .events;
        let mut ns_a = cache
            .register(interest(Some("a"), None, None), Start::Objects)
            .unwrap()
            .events;
        let mut one = cache
            .register(interest(Some("a"), Some("p"), None), Start::Objects)
            .unwrap()
            .events;
        let mut node = cache
            .register(interest(None, None, Some("n1")), Start::Objects)
            .unwrap()
            .events;
        let last = fx.put("a", "p", "n1").await;
        fx.put("a", "p-2", "n2").await;
        fx.put("b", "p", "n1").await;
        let last = last.max(fx.put("b", "q", "n2").await);
        assert!(cache.wait_for(last).await.is_ok());
        let first_all = next(&mut all).await;
        let first_one = next(&mut one).await;
        assert!(
            Arc::ptr_eq(&first_all, &first_one),
            "one CachedEvent for every watcher"
        );
        assert_eq!(
            first_all.frame().map(|b| b.as_ptr()),
            first_one.frame().map(|b| b.as_ptr()),
            "one frame for every watcher"
        );
        assert_eq!(
            queued(&mut all),
            [key("a", "p-2"), key("b", "p"), key("b", "q")]
        );
        assert_eq!(queued(&mut ns_a), [key("a", "p"), key("a", "p-2")]);
        assert_eq!(queued(&mut one), Vec::<String>::new());
        assert_eq!(queued(&mut node), [key("a", "p"), key("b", "p")]);
    }

    /// A field-indexed watcher hears of an object that leaves its value (to send DELETED) and
    /// of one that comes to it (ADDED).
    #[tokio::test]
    async fn a_field_indexed_watcher_sees_objects_come_and_go() {
        let fx = fixture();
        fx.put("a", "p", "n1").await;
        let cache = fx.pods().await;
        let mut n2 = cache
            .register(interest(None, None, Some("n2")), Start::Objects)
            .unwrap()
            .events;
        let moved = fx.put("a", "p", "n2").await;
        let back = fx.put("a", "p", "n1").await;
        assert!(cache.wait_for(back).await.is_ok());
        assert_eq!(next(&mut n2).await.revision(), moved);
        assert_eq!(next(&mut n2).await.revision(), back);
    }

    /// The watcher of `spec.nodeName=` (the scheduler's) hears of Pods without a node, and of
    /// one that gets a node (to send DELETED).
    #[tokio::test]
    async fn the_watcher_of_unbound_pods_sees_pods_without_a_node() {
        let fx = fixture();
        let cache = fx.pods().await;
        let mut unbound = cache
            .register(interest(None, None, Some("")), Start::Objects)
            .unwrap()
            .events;
        let k = key("a", "p");
        let bare = Bytes::from_static(br#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p","namespace":"a"},"spec":{}}"#);
        let created = fx.store.create(&k, bare).await.unwrap().mod_revision;
        let bound = fx.put("a", "p", "n1").await;
        fx.put("a", "q", "n2").await;
        let last = fx.put("a", "p", "n2").await;
        assert!(cache.wait_for(last).await.is_ok());
        assert_eq!(next(&mut unbound).await.revision(), created);
        assert_eq!(next(&mut unbound).await.revision(), bound);
        assert!(queued(&mut unbound).is_empty());
    }

    /// A watch from a revision replays the window; older than the window it is not served (the
    /// caller reads the store's history), newer than the cache it waits.
    #[tokio::test]
    async fn a_watch_from_a_revision_replays_the_window() {
        let fx = fixture();
        let before = fx.put("a", "old", "n1").await;
        let cache = fx.pods().await;
        let from = cache.revision();
        fx.put("a", "p", "n1").await;
        let last = fx.put("a", "q", "n1").await;
        assert!(cache.wait_for(last).await.is_ok());
        let mut events = cache
            .register(interest(Some("a"), None, None), Start::After(from))
            .unwrap()
            .events;
        assert_eq!(queued(&mut events), [key("a", "p"), key("a", "q")]);
        assert!(matches!(
            cache.register(interest(None, None, None), Start::After(before - 1)),
            Err(NotServed::TooOld)
        ));
        assert!(matches!(
            cache.register(interest(None, None, None), Start::After(last + 1)),
            Err(NotServed::NotFresh { .. })
        ));
    }

    /// The cache learns how far the store got from its progress reports, although nothing under
    /// its prefix changed.
    #[tokio::test]
    async fn the_cache_catches_up_with_writes_elsewhere() {
        let fx = fixture();
        let cache = fx.pods().await;
        let mut last = 0;
        for i in 0..5 {
            last = fx
                .store
                .create(
                    &format!("/registry/configmaps/a/{i}"),
                    Bytes::from_static(b"{}"),
                )
                .await
                .map(|kv| kv.mod_revision)
                .unwrap_or_default();
        }
        assert_eq!(cache.wait_for(last).await.ok(), Some(last));
    }

    /// A watcher that lets its queue fill is ended; the others go on.
    #[tokio::test]
    async fn a_watcher_that_falls_behind_is_ended() {
        let fx = fixture();
        let cache = fx.pods().await;
        let mut slow = cache
            .register(interest(None, None, None), Start::Objects)
            .unwrap()
            .events;
        let events: Vec<Arc<Event>> = (1..=MAX_QUEUED as i64 + 1)
            .map(|rev| {
                Arc::new(Event {
                    kind: EventKind::Put,
                    kv: KeyValue {
                        key: Arc::from(key("a", &rev.to_string()).as_str()),
                        value: pod("a", "x", "n"),
                        create_revision: rev,
                        mod_revision: rev,
                        version: 1,
                    },
                    prev: None,
                })
            })
            .collect();
        let mut fast = cache
            .register(interest(None, None, None), Start::Objects)
            .unwrap()
            .events;
        for chunk in events.chunks(1000) {
            cache.apply(chunk);
            assert_eq!(queued(&mut fast).len(), chunk.len());
        }
        assert_eq!(
            slow.next().await.map(|r| r.err()),
            Some(Some(End::FellBehind))
        );
    }

    /// A resource served again with another scope gets a new cache; the old one's watchers end.
    #[tokio::test]
    async fn a_resource_served_with_another_scope_gets_a_new_cache() {
        let fx = fixture();
        let prefix = "/registry/example.com/widgets/";
        let cluster = fx.caches.cache(prefix, false);
        assert!(cluster.wait_for(0).await.is_ok());
        let mut events = cluster
            .register(interest(None, None, None), Start::Objects)
            .unwrap()
            .events;
        assert!(Arc::ptr_eq(&cluster, &fx.caches.cache(prefix, false)));
        let namespaced = fx.caches.cache(prefix, true);
        assert!(!Arc::ptr_eq(&cluster, &namespaced));
        assert_eq!(
            tokio::time::timeout(WAIT, events.next())
                .await
                .ok()
                .flatten()
                .map(|r| r.err()),
            Some(Some(End::Reset))
        );
        assert!(namespaced.wait_for(0).await.is_ok());
    }

    /// A lost store watch ends every watcher (their clients watch again).
    #[tokio::test]
    async fn losing_the_store_watch_ends_the_watchers() {
        let fx = fixture();
        let cache = fx.pods().await;
        let mut events = cache
            .register(interest(None, None, None), Start::Objects)
            .unwrap()
            .events;
        cache.lost();
        assert_eq!(events.next().await.map(|r| r.err()), Some(Some(End::Reset)));
        assert!(matches!(
            cache.register(interest(None, None, None), Start::Objects),
            Err(NotServed::NotFresh { current: -1 })
        ));
    }
}
