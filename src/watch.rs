//! Watch: `?watch=true` and the legacy `/watch/` paths, as a stream of JSON event frames.
//!
//! resourceVersion "" and "0" start with synthetic ADDED events for what exists, then live
//! events; "N" streams every change after N. `sendInitialEvents=true` ends the initial events with
//! a BOOKMARK annotated `k8s.io/initial-events-end`. Selectors turn updates that enter or leave
//! the selection into ADDED or DELETED. Below the compacted revision the stream is one ERROR event
//! carrying a 410 Expired Status.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use kubox_storage::{Event, EventKind, ListOptions, StoreError};
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
        // metav1.WatchEvent's field order: type, then object.
        let mut line = Vec::with_capacity(256);
        line.extend_from_slice(b"{\"type\":\"");
        line.extend_from_slice(ty.as_bytes());
        line.extend_from_slice(b"\",\"object\":");
        line.extend_from_slice(&encoding::json_bytes(&object));
        line.extend_from_slice(b"}\n");
        Bytes::from(line)
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

/// One protobuf watch frame; an object without a protobuf form becomes an ERROR event (a
/// protobuf stream cannot carry JSON).
fn protobuf_frame(ty: &str, object: &Value) -> Vec<u8> {
    use kubox_apimachinery::protobuf::{encode_object, encode_watch_event};
    match encode_object(object) {
        Ok(bytes) => encode_watch_event(ty, &bytes),
        Err(e) => {
            let status =
                ApiError::internal(format!("the object cannot be encoded as protobuf: {e}"))
                    .to_status();
            encode_watch_event("ERROR", &encode_object(&status).unwrap_or_default())
        }
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

    let store = ctx.state.backend.store.clone();
    let prefix = match &name {
        Some(n) => ctx.info.key(&ctx.req.namespace, n),
        None => ctx.info.collection_prefix(&ctx.req.namespace),
    };
    let gr = ctx.info.group_resource();
    let initial = send_initial.unwrap_or(matches!(rv, None | Some(0)));
    let at_version = filter.selects_at_request_version(&ctx.info);

    // Initial state (at a revision R), then live events from R+1.
    let mut initial_objects = Vec::new();
    // An initial object that cannot be decoded: the watch starts, sends what came before it,
    // then an ERROR event and ends, as a live event that cannot be decoded does.
    let mut undecodable: Option<ApiError> = None;
    let start = if initial {
        let mut opts = ListOptions::default();
        let mut rev = 0;
        loop {
            let page = store
                .list(&prefix, opts)
                .await
                .map_err(|e| status::from_store(e, &gr, ""))?;
            rev = if rev == 0 { page.revision } else { rev };
            for kv in &page.items {
                if undecodable.is_some() {
                    break;
                }
                match from_stored(kv) {
                    Ok(obj) => {
                        if at_version || selected(&filter, name.as_deref(), &obj) {
                            initial_objects.push(obj);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(key = %kv.key, error = %e.message, "watch: a stored object cannot be decoded");
                        undecodable = Some(ApiError::internal(format!(
                            "unable to decode an event from the watch stream: {}",
                            e.message
                        )));
                    }
                }
            }
            match page.continue_token.filter(|_| undecodable.is_none()) {
                Some(t) => {
                    opts = ListOptions {
                        continue_token: Some(t),
                        ..Default::default()
                    }
                }
                None => break,
            }
        }
        if let Some(min) = rv.filter(|r| *r > rev) {
            return Err(ApiError::too_large_resource_version(min, rev));
        }
        rev
    } else {
        rv.unwrap_or(0)
    };
    let stream = match store.watch(&prefix, start + 1).await {
        // An injected fault: the watch meets a compacted resourceVersion.
        Ok(_) if ctx.watch_gone => None,
        Ok(s) => Some(s),
        Err(StoreError::FutureRevision { requested, current }) => {
            return Err(ApiError::too_large_resource_version(requested - 1, current))
        }
        Err(StoreError::Compacted { .. }) => None,
        Err(e) => return Err(status::from_store(e, &gr, "")),
    };

    let fast = filter.is_everything()
        && name.is_none()
        && ctx.out == OutFormat::Json
        && !ctx.protobuf
        && crate::objects::servable_as_stored(&ctx.info);
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let mut enc = Encoder {
        info: ctx.info.clone(),
        out: ctx.out.clone(),
        protobuf: ctx.protobuf,
        include,
        columns_sent: false,
        clock: ctx.state.backend.clock.clone(),
    };
    let info = ctx.info.clone();
    let metrics = ctx.state.metrics.clone();
    let count = {
        let info = info.clone();
        move || metrics.watch_event(&info.group, &info.version, &info.resource)
    };
    let mut shutdown = ctx.state.backend.shutdown.clone();
    let compacted_rv = rv_str.clone();
    tokio::spawn(async move {
        let Some(mut stream) = stream else {
            let compact = store.compacted_revision().await.unwrap_or(0);
            let err = ApiError::gone(format!(
                "too old resource version: {compacted_rv} ({compact})"
            ));
            let _ = tx.send(enc.frame("ERROR", err.to_status())).await;
            return;
        };
        // A conversion that fails ends the watch (logged, no event), as kube-apiserver's watch
        // server does when an event cannot be encoded; a stored object that cannot be decoded
        // is an ERROR event, as kube's storage watcher sends it.
        let initial_objects = match to_version_many(&info, initial_objects).await {
            Ok(objs) => objs,
            Err(e) => {
                tracing::warn!(error = %e.message, "watch: initial objects not converted");
                return;
            }
        };
        for obj in initial_objects {
            if at_version && !selected(&filter, name.as_deref(), &obj) {
                continue;
            }
            count();
            if tx.send(enc.frame("ADDED", obj)).await.is_err() {
                return;
            }
        }
        if let Some(err) = undecodable {
            let _ = tx.send(enc.frame("ERROR", err.to_status())).await;
            return;
        }
        let mut last_rev = start;
        if send_initial == Some(true) && tx.send(enc.bookmark(start, true)).await.is_err() {
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
                _ = bookmarks.tick(), if allow_bookmarks => {
                    if tx.send(enc.bookmark(last_rev, false)).await.is_err() { return; }
                }
                item = stream.next() => {
                    let event = match item {
                        Some(Ok(ev)) => ev,
                        Some(Err(StoreError::Compacted { requested, compact_revision })) => {
                            let err = ApiError::gone(format!("too old resource version: {requested} ({compact_revision})"));
                            let _ = tx.send(enc.frame("ERROR", err.to_status())).await;
                            return;
                        }
                        Some(Err(_)) | None => return,
                    };
                    last_rev = event.revision();
                    if fast {
                        if let Some(frame) = raw_frame(&event) {
                            count();
                            if tx.send(frame).await.is_err() { return; }
                            continue;
                        }
                    }
                    let transformed = match transform(&event, &filter, name.as_deref(), at_version.then_some(&*info)).await {
                        Ok(t) => t,
                        Err(e) => {
                            // As kube's watcher: the error goes to the client, and the watch ends.
                            tracing::warn!(key = %event.kv.key, error = %e, "watch: an event cannot be decoded");
                            let err = ApiError::internal(format!(
                                "unable to decode an event from the watch stream: {e}"
                            ));
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
                        count();
                        if tx.send(enc.frame(ty, obj)).await.is_err() { return; }
                    }
                }
            }
        }
    });
    let body = BodyExt::boxed(StreamBody::new(
        ReceiverStream::new(rx).map(|b| Ok::<_, Infallible>(Frame::data(b))),
    ));
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

/// An event frame built from the stored bytes (no selection, plain JSON, storage version).
fn raw_frame(ev: &Event) -> Option<Bytes> {
    let (ty, kv) = match (ev.kind, &ev.prev) {
        (EventKind::Put, None) => ("ADDED", &ev.kv),
        (EventKind::Put, Some(_)) => ("MODIFIED", &ev.kv),
        (EventKind::Delete, Some(prev)) => ("DELETED", prev),
        (EventKind::Delete, None) => return None,
    };
    let object = crate::objects::stamp(&kv.value, ev.kv.mod_revision)?;
    let mut out = Vec::with_capacity(object.len() + 32);
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(ty.as_bytes());
    out.extend_from_slice(b"\",\"object\":");
    out.extend_from_slice(&object);
    out.extend_from_slice(b"}\n");
    Some(Bytes::from(out))
}

fn selected(filter: &Filter, name: Option<&str>, obj: &Value) -> bool {
    name.is_none_or(|n| name_of(obj) == n) && filter.matches(obj)
}

/// A store event as the client sees it, None when it is outside the selection, Err when the
/// stored object cannot be decoded. With `info` (selectors on fields of a version other than
/// the storage version) the objects are converted to the request's version before they are
/// matched, as kube's per-version storage selects on converted objects.
async fn transform(
    ev: &Event,
    filter: &Filter,
    name: Option<&str>,
    info: Option<&crate::registry::ResourceInfo>,
) -> Result<Option<(&'static str, Value)>, String> {
    let mut prev = ev.prev.as_ref().and_then(|kv| from_stored(kv).ok());
    let mut cur = match ev.kind {
        EventKind::Put => {
            let mut obj = from_stored(&ev.kv).map_err(|e| e.message)?;
            crate::objects::set_resource_version(&mut obj, ev.kv.mod_revision);
            Some(obj)
        }
        EventKind::Delete => None,
    };
    if let Some(info) = info {
        let objs: Vec<Value> = prev.iter().chain(cur.iter()).cloned().collect();
        let mut converted = to_version_many(info, objs)
            .await
            .map_err(|e| e.message)?
            .into_iter();
        prev = prev.and_then(|_| converted.next());
        cur = cur.and_then(|_| converted.next());
    }
    let prev_in = prev.as_ref().is_some_and(|p| selected(filter, name, p));
    Ok(match cur {
        Some(obj) => {
            let now_in = selected(filter, name, &obj);
            match (prev_in, now_in) {
                (true, true) => Some(("MODIFIED", obj)),
                (false, true) => Some(("ADDED", obj)),
                (true, false) => Some(("DELETED", obj)),
                (false, false) => None,
            }
        }
        None => prev.filter(|_| prev_in).map(|mut obj| {
            crate::objects::set_resource_version(&mut obj, ev.kv.mod_revision);
            ("DELETED", obj)
        }),
    })
}
