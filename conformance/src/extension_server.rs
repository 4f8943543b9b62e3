//! An extension API server written in the test, as sample-apiserver is one: HTTPS on
//! 127.0.0.1, serving the group `wardle.example.com/v1alpha1` with one namespaced resource,
//! `flunders` (get, list, watch, create; Tables for kubectl; an OpenAPI v3 document). It trusts the caller's identity
//! only from a client certificate signed by the request-header CA it is given (what kube-system's
//! `extension-apiserver-authentication` publishes), reads it from `X-Remote-User` and
//! `X-Remote-Group`, records it, and stamps the creator on each created object
//! (`wardle.example.com/created-by`).
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

/// The group and version served.
pub const GROUP_VERSION: &str = "wardle.example.com/v1alpha1";

/// Who asked, as the extension server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// `X-Remote-User`.
    pub user: String,
    /// `X-Remote-Group`, in order.
    pub groups: Vec<String>,
    /// The method and path.
    pub request: String,
    /// `X-Forwarded-For`.
    pub forwarded_for: Option<String>,
}

#[derive(Default)]
struct Store {
    /// namespace/name -> object
    objects: BTreeMap<String, Value>,
    revision: u64,
}

struct Shared {
    store: Mutex<Store>,
    events: broadcast::Sender<(String, Value)>,
    seen: Mutex<Vec<Seen>>,
}

/// A running extension API server.
pub struct ExtensionServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The CA that signed its serving certificate (PEM).
    pub ca_pem: String,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

fn json_response(code: u16, v: &Value) -> Response<BoxBody> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(full(v.to_string()))
        .unwrap()
}

type BoxBody = http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>;

fn full(s: impl Into<Bytes>) -> BoxBody {
    Full::new(s.into()).boxed()
}

fn status(code: u16, reason: &str, message: &str) -> Response<BoxBody> {
    json_response(
        code,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": message, "reason": reason, "code": code}),
    )
}

fn resource_list() -> Value {
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": GROUP_VERSION,
        "resources": [{
            "name": "flunders", "singularName": "flunder", "namespaced": true,
            "kind": "Flunder", "verbs": ["create", "get", "list", "watch"],
            "shortNames": ["fl"],
        }],
    })
}

/// The OpenAPI v3 index and the group/version's document (Flunder, with its GVK).
fn openapi_index() -> Value {
    json!({"paths": {format!("apis/{GROUP_VERSION}"): {
        "serverRelativeURL": format!("/openapi/v3/apis/{GROUP_VERSION}?hash=F1UNDE12")}}})
}

fn openapi_document() -> Value {
    json!({
        "openapi": "3.0.0",
        "info": {"title": "wardle", "version": "v1alpha1"},
        "paths": {format!("/apis/{GROUP_VERSION}/namespaces/{{namespace}}/flunders/{{name}}"): {
            "get": {
                "operationId": "readWardleV1alpha1NamespacedFlunder",
                "responses": {"200": {"description": "OK", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/com.example.wardle.v1alpha1.Flunder"}}}}},
                "x-kubernetes-action": "get",
                "x-kubernetes-group-version-kind":
                    {"group": "wardle.example.com", "version": "v1alpha1", "kind": "Flunder"},
            },
        }},
        "components": {"schemas": {"com.example.wardle.v1alpha1.Flunder": {
            "type": "object",
            "description": "A Flunder is what the wardle server keeps.",
            "properties": {
                "apiVersion": {"type": "string", "description": "The API version."},
                "kind": {"type": "string", "description": "The kind."},
                "metadata": {"type": "object", "description": "Standard object metadata."},
                "spec": {"type": "object", "description": "What the flunder should be.",
                         "properties": {"reference": {"type": "string",
                             "description": "The name of the flunder it refers to."}}},
            },
            "x-kubernetes-group-version-kind": [
                {"group": "wardle.example.com", "version": "v1alpha1", "kind": "Flunder"}],
        }}},
    })
}

/// The OpenAPI v2 document: the list path and the Flunder definition.
fn openapi_v2() -> Value {
    json!({
        "swagger": "2.0",
        "info": {"title": "wardle", "version": "v1alpha1"},
        "paths": {format!("/apis/{GROUP_VERSION}/namespaces/{{namespace}}/flunders"): {"get": {
            "operationId": "listWardleV1alpha1NamespacedFlunder",
            "responses": {"200": {"description": "OK"}},
            "x-kubernetes-action": "list",
            "x-kubernetes-group-version-kind":
                {"group": "wardle.example.com", "version": "v1alpha1", "kind": "Flunder"},
        }}},
        "definitions": {"com.example.wardle.v1alpha1.Flunder": {
            "type": "object",
            "description": "A Flunder, as OpenAPI v2 describes it.",
            "x-kubernetes-group-version-kind":
                [{"group": "wardle.example.com", "version": "v1alpha1", "kind": "Flunder"}],
        }},
    })
}

fn table(objects: &[Value], revision: u64) -> Value {
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            json!({
                "cells": [o["metadata"]["name"], o["spec"]["reference"].as_str().unwrap_or("")],
                "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                           "metadata": o["metadata"]},
            })
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": revision.to_string()},
        "columnDefinitions": [
            {"name": "Name", "type": "string", "format": "name", "description": "the name", "priority": 0},
            {"name": "Reference", "type": "string", "format": "", "description": "spec.reference", "priority": 0},
        ],
        "rows": rows,
    })
}

impl ExtensionServer {
    /// Serve on 127.0.0.1 with a certificate also naming `names` (`<svc>.<ns>.svc`), trusting
    /// identity headers only from client certificates signed by `requestheader_ca` (PEM).
    pub async fn start(names: &[String], requestheader_ca: &str) -> ExtensionServer {
        Self::start_on("127.0.0.1:0", names, requestheader_ca).await
    }

    /// As [`ExtensionServer::start`], on `addr`.
    pub async fn start_on(addr: &str, names: &[String], requestheader_ca: &str) -> ExtensionServer {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let (ca_pem, cert, key) = super::webhook_server::certificates(&names);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls::pki_types::CertificateDer::pem_slice_iter(requestheader_ca.as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .allow_unauthenticated()
        .build()
        .unwrap();
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![cert.into()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.into()),
            )
            .unwrap();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            store: Mutex::default(),
            events: broadcast::channel(64).0,
            seen: Mutex::default(),
        });
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let conns = connections.clone();
        let state = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let state = state.clone();
                let conn = tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    // Identity headers count only from a verified client certificate.
                    let proxied = tls.get_ref().1.peer_certificates().is_some();
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let state = state.clone();
                        async move { Ok::<_, hyper::Error>(serve(&state, req, proxied).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), svc)
                        .await;
                });
                conns.lock().unwrap().push(conn);
            }
        });
        ExtensionServer {
            addr,
            ca_pem,
            shared,
            task,
            connections,
        }
    }

    /// The CA as an APIService `caBundle` (base64 of the PEM).
    pub fn ca_bundle(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(self.ca_pem.as_bytes())
    }

    /// Who asked what, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// Stop: the listener and every open connection (watches end).
    pub fn stop(&self) {
        self.task.abort();
        for c in self.connections.lock().unwrap().drain(..) {
            c.abort();
        }
    }
}

impl Drop for ExtensionServer {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn serve(state: &Arc<Shared>, req: Request<Incoming>, proxied: bool) -> Response<BoxBody> {
    let header_values = |name: &str| -> Vec<String> {
        req.headers()
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect()
    };
    let user = header_values("x-remote-user").into_iter().next();
    let Some(user) = user.filter(|_| proxied) else {
        return status(401, "Unauthorized", "Unauthorized");
    };
    let groups = header_values("x-remote-group");
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    state.seen.lock().unwrap().push(Seen {
        user: user.clone(),
        groups,
        request: format!("{} {path}", req.method()),
        forwarded_for: header_values("x-forwarded-for").into_iter().next(),
    });
    let as_table = req
        .headers()
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("as=Table"));
    let watch = query
        .split('&')
        .any(|p| p == "watch=true" || p == "watch=1");
    let prefix = format!("/apis/{GROUP_VERSION}");
    if path == prefix {
        return json_response(200, &resource_list());
    }
    if path == "/openapi/v2" {
        return json_response(200, &openapi_v2());
    }
    if path == "/openapi/v3" {
        return json_response(200, &openapi_index());
    }
    if path == format!("/openapi/v3/apis/{GROUP_VERSION}") {
        return json_response(200, &openapi_document());
    }
    let Some(rest) = path.strip_prefix(&format!("{prefix}/namespaces/")) else {
        return status(
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
    };
    let parts: Vec<&str> = rest.split('/').collect();
    match (req.method().as_str(), parts.as_slice()) {
        ("GET", [ns, "flunders"]) if watch => {
            let ns = ns.to_string();
            let mut rx = state.events.subscribe();
            let (tx, out) = tokio::sync::mpsc::channel::<Bytes>(16);
            tokio::spawn(async move {
                while let Ok((ty, obj)) = rx.recv().await {
                    if obj["metadata"]["namespace"] != ns.as_str() {
                        continue;
                    }
                    let rv = obj["metadata"]["resourceVersion"]
                        .as_str()
                        .and_then(|r| r.parse().ok())
                        .unwrap_or(0);
                    let object = if as_table { table(&[obj], rv) } else { obj };
                    let line = format!("{}\n", json!({"type": ty, "object": object}));
                    if tx.send(Bytes::from(line)).await.is_err() {
                        return;
                    }
                }
            });
            let stream = futures::StreamExt::map(tokio_stream_like(out), |b| {
                Ok::<_, std::convert::Infallible>(Frame::data(b))
            });
            Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .body(BodyExt::boxed(StreamBody::new(stream)))
                .unwrap()
        }
        ("GET", [ns, "flunders"]) => {
            let store = state.store.lock().unwrap();
            let items: Vec<Value> = store
                .objects
                .range(format!("{ns}/")..)
                .take_while(|(k, _)| k.starts_with(&format!("{ns}/")))
                .map(|(_, v)| v.clone())
                .collect();
            if as_table {
                return json_response(200, &table(&items, store.revision));
            }
            json_response(
                200,
                &json!({"kind": "FlunderList", "apiVersion": GROUP_VERSION,
                        "metadata": {"resourceVersion": store.revision.to_string()}, "items": items}),
            )
        }
        ("GET", [ns, "flunders", name]) => {
            let store = state.store.lock().unwrap();
            match store.objects.get(&format!("{ns}/{name}")) {
                Some(o) if as_table => {
                    json_response(200, &table(std::slice::from_ref(o), store.revision))
                }
                Some(o) => json_response(200, o),
                None => status(
                    404,
                    "NotFound",
                    &format!("flunders.wardle.example.com \"{name}\" not found"),
                ),
            }
        }
        ("POST", [ns, "flunders"]) => {
            let ns = ns.to_string();
            let body = match req.into_body().collect().await {
                Ok(b) => b.to_bytes(),
                Err(_) => return status(400, "BadRequest", "unreadable body"),
            };
            let Ok(mut obj) = serde_json::from_slice::<Value>(&body) else {
                return status(400, "BadRequest", "the body is not JSON");
            };
            let name = obj["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if name.is_empty() {
                return status(422, "Invalid", "metadata.name: Required value");
            }
            let mut store = state.store.lock().unwrap();
            let key = format!("{ns}/{name}");
            if store.objects.contains_key(&key) {
                return status(
                    409,
                    "AlreadyExists",
                    &format!("flunders.wardle.example.com \"{name}\" already exists"),
                );
            }
            store.revision += 1;
            obj["metadata"]["namespace"] = json!(ns);
            obj["metadata"]["resourceVersion"] = json!(store.revision.to_string());
            obj["metadata"]["uid"] = json!(format!("wardle-{}", store.revision));
            obj["metadata"]["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
            obj["metadata"]["annotations"]["wardle.example.com/created-by"] = json!(user);
            store.objects.insert(key, obj.clone());
            let _ = state.events.send(("ADDED".into(), obj.clone()));
            json_response(201, &obj)
        }
        _ => status(
            405,
            "MethodNotAllowed",
            "not supported by the wardle server",
        ),
    }
}

/// A receiver as a stream.
fn tokio_stream_like(
    mut rx: tokio::sync::mpsc::Receiver<Bytes>,
) -> impl futures::Stream<Item = Bytes> + Send + Sync {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
