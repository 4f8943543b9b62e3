//! Watch: `?watch=true` and the legacy `/watch/` paths, as a stream of JSON event frames.
//!
//! resourceVersion "" and "0" start with synthetic ADDED events for what exists, then live
//! events; "N" streams every change after N. `sendInitialEvents=true` ends the initial events with
//! a BOOKMARK annotated `k8s.io/initial-events-end`. Selectors turn updates that enter or leave
//! the selection into ADDED or DELETED. Below the compacted revision the stream is one ERROR event
//! carrying a 410 Expired Status.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use kubox_storage::{EventKind, KeyValue, Revision, StoreError, WatchStream};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::body::Body;
use crate::encoding::{self, IncludeObject, OutFormat};
use crate::filter::Filter;
use crate::handlers::Ctx;
use crate::objects::{from_stored, name_of, to_version, to_version_many};
use crate::query::parse_resource_version;
use crate::status::{self, ApiError, ApiResult};
use crate::watch_cache::{json_frame, CachedEvent, Interest, NotServed, Registered, Start};

/// How often an idle watch with `allowWatchBookmarks` gets a BOOKMARK.
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(60);
/// Default watch duration when the client sets no timeout (kube-apiserver: 30-60 min).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

struct Encoder {
    info: Arc<crate::registry::ResourceInfo>,
    out: OutFormat,
    /// Frames in Kubernetes protobuf (length-prefixed WatchEvents) instead of JSON lines.
    protobuf: bool,
    include: IncludeObject,
    columns_sent: bool,
    clock: Arc<dyn kubox_storage::Clock>,
}

impl Encoder {
    fn frame(&mut self, ty: &str, obj: Value) -> Bytes {
        let object = match (&self.out, ty) {
            (_, "BOOKMARK") | (_, "ERROR") => obj,
            (OutFormat::Table { version }, _) => {
                let rv = obj["metadata"]["resourceVersion"].clone();
                let with_columns = !self.columns_sent;
                self.columns_sent = true;
                let v = version.clone();
                encoding::table(
                    &self.info,
                    &[obj],
                    json!({"resourceVersion": rv}),
                    &v,
                    self.include,
                    with_columns,
                    self.clock.now(),
                )
            }
            (OutFormat::Metadata { version, .. }, _) => encoding::partial_metadata(&obj, version),
            _ => obj,
        };
        if self.protobuf {
            return Bytes::from(protobuf_frame(ty, &object));
        }
        json_frame(ty, &encoding::json_bytes(&object))
    }

    fn bookmark(&mut self, rev: i64, initial_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": rev.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let obj = json!({"kind": self.info.kind, "apiVersion": self.info.api_version(), "metadata": meta});
        self.frame("BOOKMARK", obj)
    }
}

/// The error that ends a watch whose next object cannot be decoded (logged; kube's storage
/// watcher sends it as an ERROR event).
fn undecodable(key: &str, error: &str) -> ApiError {
    tracing::warn!(%key, %error, "watch: an event cannot be decoded");
    ApiError::internal(format!(
        "unable to decode an event from the watch stream: {error}"
    ))
}

/// The 410 of a watch from a compacted resourceVersion.
fn too_old(requested: impl std::fmt::Display, compacted: i64) -> ApiError {
    ApiError::gone(format!(
        "too old resource version: {requested} ({compacted})"
    ))
}

/// The type of an update seen through a selection: entering it is ADDED, leaving it DELETED.
fn transition(before_in: bool, now_in: bool) -> Option<&'static str> {
    match (before_in, now_in) {
        (true, true) => Some("MODIFIED"),
        (false, true) => Some("ADDED"),
        (true, false) => Some("DELETED"),
        (false, false) => None,
    }
}

/// The ERROR frame of an object that has no protobuf form.
fn protobuf_error(e: &str) -> Bytes {
    use kubox_apimachinery::protobuf::{encode_object, encode_watch_event};
    let status =
        ApiError::internal(format!("the object cannot be encoded as protobuf: {e}")).to_status();
    Bytes::from(encode_watch_event(
        "ERROR",
        &encode_object(&status).unwrap_or_default(),
    ))
}

/// One protobuf watch frame; an object without a protobuf form becomes an ERROR event (a
/// protobuf stream cannot carry JSON).
fn protobuf_frame(ty: &str, object: &Value) -> Vec<u8> {
    use kubox_apimachinery::protobuf::{encode_object, encode_watch_event};
    match encode_object(object) {
        Ok(bytes) => encode_watch_event(ty, &bytes),
        Err(e) => protobuf_error(&e.to_string()).to_vec(),
    }
}

/// The watch handler.
pub async fn watch(ctx: Ctx) -> ApiResult<Response<Body>> {
    if !ctx.info.has_verb("watch") {
        return Err(ApiError::method_not_supported(
            &ctx.info.group_resource(),
            "watch",
        ));
    }
    let q = &ctx.query;
    let filter = Filter::from_query(q, &ctx.info)?;
    let name = if ctx.req.name.is_empty() {
        filter.exact_name()
    } else {
        Some(ctx.req.name.clone())
    };
    let rv_str = q.str("resourceVersion").to_string();
    let rv = parse_resource_version(&rv_str)?;
    // Decoded as kube decodes a *bool: any value but `0`/`false` is true.
    let send_initial = q
        .get("sendInitialEvents")
        .map(crate::request_info::kube_bool);
    let allow_bookmarks = q.flag("allowWatchBookmarks");
    let rv_match = q.str("resourceVersionMatch");
    if send_initial.is_some() {
        if rv_match != "NotOlderThan" {
            return Err(ApiError::bad_request(
                "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless resourceVersionMatch is set to NotOlderThan",
            ));
        }
        if send_initial == Some(true) && !allow_bookmarks {
            return Err(ApiError::bad_request(
                "allowWatchBookmarks: Forbidden: allowWatchBookmarks must be set to true when sendInitialEvents is true",
            ));
        }
    } else if !rv_match.is_empty() {
        return Err(ApiError::bad_request(
            "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
        ));
    }
    let timeout = q
        .int("timeoutSeconds")?
        .filter(|t| *t > 0)
        .map(|t| Duration::from_secs(t as u64))
        // kube-apiserver: min-request-timeout (30 min) times a random factor in [1, 2), so
        // watches opened together do not all end together.
        .unwrap_or_else(|| DEFAULT_TIMEOUT.mul_f64(1.0 + rand::random::<f64>()));
    let include = IncludeObject::parse(q.str("includeObject"))?;

    let info = ctx.info.clone();
    let store = ctx.state.backend.store.clone();
    let gr = info.group_resource();
    let initial = send_initial.unwrap_or(matches!(rv, None | Some(0)));
    let cache = ctx
        .state
        .backend
        .watch_caches
        .cache(&info.storage_prefix, info.namespaced);
    let interest = Interest {
        namespace: (!ctx.req.namespace.is_empty()).then(|| ctx.req.namespace.clone()),
        name: name.clone(),
        field_value: cache.indexed_field().and_then(|f| filter.exact_field(f)),
    };
    let current = store
        .current_revision()
        .await
        .map_err(|e| status::from_store(e, &gr, ""))?;
    // The revision the watch must start at or after: the newest for "" (kube's "most
    // recent"), anything the cache has for "0", at least N for N.
    let at_least = match rv {
        None => current,
        Some(0) => 0,
        Some(n) => n,
    };
    if at_least > current {
        return Err(ApiError::too_large_resource_version(at_least, current));
    }
    let source = if ctx.watch_gone {
        // An injected fault: the watch meets a compacted resourceVersion.
        Source::Gone
    } else {
        let reached = cache.wait_for(at_least).await;
        if let Err(NotServed::NotFresh { current }) = reached {
            return Err(ApiError::too_large_resource_version(at_least, current));
        }
        let start = if initial {
            Start::Objects
        } else {
            Start::After(at_least)
        };
        match cache.register(interest, start) {
            Ok(registered) => Source::Cache(registered),
            Err(NotServed::NotFresh { current }) => {
                return Err(ApiError::too_large_resource_version(at_least, current))
            }
            // Older than the cache's window: from the store's history.
            Err(NotServed::TooOld) => {
                let prefix = match &name {
                    Some(n) => info.key(&ctx.req.namespace, n),
                    None => info.collection_prefix(&ctx.req.namespace),
                };
                match store.watch(&prefix, at_least + 1).await {
                    Ok(s) => Source::Store(s, at_least),
                    Err(StoreError::Compacted { .. }) => Source::Gone,
                    Err(e) => return Err(status::from_store(e, &gr, "")),
                }
            }
        }
    };

    let enc = Encoder {
        info: info.clone(),
        out: ctx.out.clone(),
        protobuf: ctx.protobuf,
        include,
        columns_sent: false,
        clock: ctx.state.backend.clock.clone(),
    };
    let sent = ctx
        .state
        .metrics
        .watch_events(&info.group, &info.version, &info.resource);
    let watch = Watch {
        filter,
        name,
        initial_end: send_initial == Some(true),
        allow_bookmarks,
        sent,
    };
    let body = match source {
        // The common case, served by the connection's task without one of its own: no
        // conversion, every frame shared with the other watchers where it can be.
        Source::Cache(registered) if crate::objects::servable_as_stored(&info) => {
            if !registered.objects.is_empty() {
                // The collection's objects first: not in an h2 connection's task, where the
                // streams sharing the connection would wait (`repoll`).
                crate::repoll::apart_from_connection().await;
            }
            BodyExt::boxed(StreamBody::new(Direct::new(
                watch, enc, registered, cache, timeout,
            )))
        }
        source => {
            let (tx, rx) = mpsc::channel::<Bytes>(64);
            let shutdown = ctx.state.backend.shutdown.clone();
            let compacted = (store, rv_str);
            tokio::spawn(converted(
                watch, enc, source, tx, shutdown, timeout, compacted,
            ));
            BodyExt::boxed(StreamBody::new(
                ReceiverStream::new(rx).map(|b| Ok::<_, Infallible>(Frame::data(b))),
            ))
        }
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(if ctx.protobuf {
            kubox_apimachinery::protobuf::WATCH_CONTENT_TYPE
        } else {
            "application/json"
        }),
    );
    Ok(resp)
}

/// Where a watch's events come from.
enum Source {
    /// The resource's watch cache.
    Cache(Registered),
    /// The store's history (older than the cache's window), after this revision.
    Store(WatchStream, Revision),
    /// The revision was compacted: one ERROR event with a 410.
    Gone,
}

/// What one watch request asked for, whatever serves it.
struct Watch {
    filter: Filter,
    name: Option<String>,
    /// Send the BOOKMARK that ends the initial events (cleared once sent).
    initial_end: bool,
    allow_bookmarks: bool,
    /// The watch-event metric of the request's resource.
    sent: Arc<AtomicU64>,
}

impl Watch {
    fn selected(&self, obj: &Value) -> bool {
        selected(&self.filter, self.name.as_deref(), obj)
    }

    /// The type an event is sent as to this watcher, None when it is outside the selection,
    /// Err when its object cannot be decoded. An update entering the selection is ADDED, one
    /// leaving it DELETED.
    fn event_type(&self, ev: &CachedEvent) -> Result<Option<&'static str>, String> {
        if self.filter.is_everything() && self.name.is_none() {
            return Ok(ev.event_type());
        }
        match ev.event.kind {
            EventKind::Put => {
                let now_in = self.selected(ev.object()?);
                let before_in = ev.previous().is_some_and(|p| self.selected(p));
                Ok(transition(before_in, now_in))
            }
            EventKind::Delete => Ok(ev
                .object()
                .ok()
                .filter(|o| self.selected(o))
                .map(|_| "DELETED")),
        }
    }
}

/// A watch served straight from the cache's events by the connection's task: built-in
/// resources at their storage version (no conversion), in JSON (the shared stamped bytes),
/// protobuf (the shared encoding), a Table or PartialObjectMetadata (encoded per watcher).
struct Direct {
    watch: Watch,
    enc: Encoder,
    initial: std::vec::IntoIter<KeyValue>,
    /// The revision the initial objects are at.
    initial_revision: Revision,
    events: crate::watch_cache::EventStream,
    cache: Arc<crate::watch_cache::Cache>,
    last_revision: Revision,
    deadline: crate::timer::Timer,
    bookmark: Option<crate::timer::Timer>,
    done: bool,
}

/// Initial objects looked at per poll before the task yields.
const INITIAL_BUDGET: usize = 512;

impl Direct {
    fn new(
        watch: Watch,
        enc: Encoder,
        registered: Registered,
        cache: Arc<crate::watch_cache::Cache>,
        timeout: Duration,
    ) -> Self {
        let bookmark = watch
            .allow_bookmarks
            .then(|| crate::timer::Timer::after(BOOKMARK_INTERVAL));
        Direct {
            watch,
            enc,
            initial: registered.objects.into_iter(),
            initial_revision: registered.revision,
            events: registered.events,
            cache,
            last_revision: registered.revision,
            deadline: crate::timer::Timer::after(timeout),
            bookmark,
            done: false,
        }
    }

    /// The frame of an initial object; None when it is not selected.
    fn initial_frame(&mut self, kv: &KeyValue) -> Option<Bytes> {
        let plain = self.enc.out == OutFormat::Json && !self.enc.protobuf;
        if plain && self.watch.filter.is_everything() && self.watch.name.is_none() {
            if let Some(stamped) = crate::objects::stamp(&kv.value, kv.mod_revision) {
                return Some(json_frame("ADDED", &stamped));
            }
        }
        match from_stored(kv) {
            Ok(obj) if self.watch.selected(&obj) => Some(self.enc.frame("ADDED", obj)),
            Ok(_) => None,
            Err(e) => {
                self.done = true;
                let err = undecodable(&kv.key, &e.message);
                Some(self.enc.frame("ERROR", err.to_status()))
            }
        }
    }

    /// The ERROR frame that ends the watch when an event's object cannot be decoded.
    fn undecodable(&mut self, ev: &CachedEvent, e: &str) -> Bytes {
        self.done = true;
        let err = undecodable(&ev.event.kv.key, e);
        self.enc.frame("ERROR", err.to_status())
    }

    /// The frame of a live event; None when it is not selected.
    fn event_frame(&mut self, ev: &CachedEvent) -> Option<Bytes> {
        let ty = match self.watch.event_type(ev) {
            Ok(ty) => ty?,
            Err(e) => return Some(self.undecodable(ev, &e)),
        };
        self.watch.sent.fetch_add(1, Ordering::Relaxed);
        if self.enc.out == OutFormat::Json {
            if self.enc.protobuf {
                return Some(match ev.protobuf() {
                    Ok(bytes) => {
                        Bytes::from(kubox_apimachinery::protobuf::encode_watch_event(ty, bytes))
                    }
                    Err(e) => protobuf_error(&e),
                });
            }
            if Some(ty) == ev.event_type() {
                if let Some(frame) = ev.frame() {
                    return Some(frame.clone());
                }
            } else if let Some(stamped) = ev.stamped() {
                return Some(json_frame(ty, stamped));
            }
        }
        match ev.object() {
            Ok(obj) => {
                let obj = obj.clone();
                Some(self.enc.frame(ty, obj))
            }
            Err(e) => {
                let e = e.to_string();
                Some(self.undecodable(ev, &e))
            }
        }
    }
}

impl futures::Stream for Direct {
    type Item = Result<Frame<Bytes>, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let data = |b: Bytes| Poll::Ready(Some(Ok(Frame::data(b))));
        loop {
            if this.done || this.deadline.fired(cx) {
                this.done = true;
                return Poll::Ready(None);
            }
            let mut looked = 0;
            while let Some(kv) = this.initial.next() {
                if let Some(frame) = this.initial_frame(&kv) {
                    if !this.done {
                        this.watch.sent.fetch_add(1, Ordering::Relaxed);
                    }
                    return data(frame);
                }
                looked += 1;
                if looked >= INITIAL_BUDGET {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
            }
            if std::mem::take(&mut this.watch.initial_end) {
                return data(this.enc.bookmark(this.initial_revision, true));
            }
            if let Some(timer) = &mut this.bookmark {
                if timer.fired(cx) {
                    timer.reset_after(BOOKMARK_INTERVAL);
                    let rev = this.last_revision.max(this.cache.revision());
                    return data(this.enc.bookmark(rev, false));
                }
            }
            match Pin::new(&mut this.events).poll_next(cx) {
                Poll::Ready(Some(Ok(ev))) => {
                    this.last_revision = ev.revision();
                    if let Some(frame) = this.event_frame(&ev) {
                        return data(frame);
                    }
                }
                Poll::Ready(Some(Err(_)) | None) => {
                    this.done = true;
                    return Poll::Ready(None);
                }
                Poll::Pending => {
                    // Waiting for events: an h2 watch in a task of its own (its initial
                    // objects sent) goes back to its connection's (`repoll`).
                    crate::repoll::rejoin_connection();
                    return Poll::Pending;
                }
            }
        }
    }
}

/// Initial objects converted per conversion call.
const CONVERT_CHUNK: usize = 500;

/// A watch whose objects are converted to the request's version (custom resources, built-ins
/// served at a version other than their storage version) or that reads the store's history:
/// a task per watcher, as conversion may call a webhook.
async fn converted(
    mut watch: Watch,
    mut enc: Encoder,
    source: Source,
    tx: mpsc::Sender<Bytes>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    timeout: Duration,
    (store, requested): (kubox_storage::DynStore, String),
) {
    let info = enc.info.clone();
    let at_version = watch.filter.selects_at_request_version(&info);
    let count = |w: &Watch| {
        w.sent.fetch_add(1, Ordering::Relaxed);
    };
    let (objects, start, mut events) = match source {
        Source::Gone => {
            let compact = store.compacted_revision().await.unwrap_or(0);
            let err = too_old(requested, compact);
            let _ = tx.send(enc.frame("ERROR", err.to_status())).await;
            return;
        }
        Source::Cache(r) => (r.objects, r.revision, Events::Cache(r.events)),
        Source::Store(s, after) => (Vec::new(), after, Events::Store(s)),
    };
    // The initial objects, a chunk at a time: decoded, selected, converted, sent.
    for chunk in objects.chunks(CONVERT_CHUNK) {
        let mut decoded = Vec::with_capacity(chunk.len());
        let mut failed = None;
        for kv in chunk {
            match from_stored(kv) {
                Ok(obj) if at_version || watch.selected(&obj) => decoded.push(obj),
                Ok(_) => {}
                Err(e) => {
                    failed = Some(undecodable(&kv.key, &e.message));
                    break;
                }
            }
        }
        // A conversion that fails ends the watch (logged, no event), as kube-apiserver's
        // watch server does when an event cannot be encoded.
        let converted = match to_version_many(&info, decoded).await {
            Ok(objs) => objs,
            Err(e) => {
                tracing::warn!(error = %e.message, "watch: initial objects not converted");
                return;
            }
        };
        for obj in converted {
            if at_version && !watch.selected(&obj) {
                continue;
            }
            count(&watch);
            if tx.send(enc.frame("ADDED", obj)).await.is_err() {
                return;
            }
        }
        if let Some(err) = failed {
            let _ = tx.send(enc.frame("ERROR", err.to_status())).await;
            return;
        }
    }
    drop(objects);
    let mut last_rev = start;
    if std::mem::take(&mut watch.initial_end) && tx.send(enc.bookmark(start, true)).await.is_err() {
        return;
    }
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut bookmarks = tokio::time::interval_at(
        tokio::time::Instant::now() + BOOKMARK_INTERVAL,
        BOOKMARK_INTERVAL,
    );
    loop {
        tokio::select! {
            _ = &mut deadline => return,
            _ = shutdown.changed() => return,
            // The client went away: stop now, not at the next event.
            _ = tx.closed() => return,
            _ = bookmarks.tick(), if watch.allow_bookmarks => {
                if tx.send(enc.bookmark(last_rev, false)).await.is_err() { return; }
            }
            item = events.next() => {
                let event = match item {
                    Some(Ok(ev)) => ev,
                    Some(Err(Some(err))) => {
                        let _ = tx.send(enc.frame("ERROR", err.to_status())).await;
                        return;
                    }
                    Some(Err(None)) | None => return,
                };
                last_rev = event.revision();
                let transformed = match transform(&event, &watch, at_version.then_some(&*info)).await {
                    Ok(t) => t,
                    Err(e) => {
                        // As kube's watcher: the error goes to the client, and the watch ends.
                        let err = undecodable(&event.event.kv.key, &e);
                        let _ = tx.send(enc.frame("ERROR", err.to_status())).await;
                        return;
                    }
                };
                if let Some((ty, obj)) = transformed {
                    let obj = match to_version(&info, obj).await {
                        Ok(obj) => obj,
                        Err(e) => {
                            tracing::warn!(error = %e.message, "watch: event not converted");
                            return;
                        }
                    };
                    count(&watch);
                    if tx.send(enc.frame(ty, obj)).await.is_err() { return; }
                }
            }
        }
    }
}

/// The live events of a converted watch: from the cache, or from the store's history. An
/// `Err(Some(e))` is sent as an ERROR event before the watch ends; `Err(None)` ends it quietly.
enum Events {
    Cache(crate::watch_cache::EventStream),
    Store(WatchStream),
}

impl Events {
    async fn next(&mut self) -> Option<Result<Arc<CachedEvent>, Option<ApiError>>> {
        match self {
            Events::Cache(s) => s.next().await.map(|r| r.map_err(|_| None)),
            Events::Store(s) => s.next().await.map(|r| match r {
                Ok(ev) => Ok(Arc::new(CachedEvent::new(ev))),
                Err(StoreError::Compacted {
                    requested,
                    compact_revision,
                }) => Err(Some(too_old(requested, compact_revision))),
                Err(_) => Err(None),
            }),
        }
    }
}

fn selected(filter: &Filter, name: Option<&str>, obj: &Value) -> bool {
    name.is_none_or(|n| name_of(obj) == n) && filter.matches(obj)
}

/// An event as the client sees it, None when it is outside the selection, Err when the
/// stored object cannot be decoded. With `info` (selectors on fields of a version other than
/// the storage version) the objects are converted to the request's version before they are
/// matched, as kube's per-version storage selects on converted objects.
async fn transform(
    ev: &CachedEvent,
    watch: &Watch,
    info: Option<&crate::registry::ResourceInfo>,
) -> Result<Option<(&'static str, Value)>, String> {
    let Some(info) = info else {
        let Some(ty) = watch.event_type(ev)? else {
            return Ok(None);
        };
        return Ok(Some((ty, ev.object()?.clone())));
    };
    let (mut prev, mut cur) = match ev.event.kind {
        EventKind::Put => (ev.previous().cloned(), Some(ev.object()?.clone())),
        EventKind::Delete => (ev.object().ok().cloned(), None),
    };
    let objs: Vec<Value> = prev.iter().chain(cur.iter()).cloned().collect();
    let mut converted = to_version_many(info, objs)
        .await
        .map_err(|e| e.message)?
        .into_iter();
    prev = prev.and_then(|_| converted.next());
    cur = cur.and_then(|_| converted.next());
    let prev_in = prev.as_ref().is_some_and(|p| watch.selected(p));
    Ok(match cur {
        Some(obj) => transition(prev_in, watch.selected(&obj)).map(|ty| (ty, obj)),
        None => prev.filter(|_| prev_in).map(|obj| ("DELETED", obj)),
    })
}
