//! A webhook written in the test: HTTPS on 127.0.0.1 with a throwaway CA (rcgen), answering
//! each JSON POST with what a handler returns. Shared by the conversion webhook scenarios and
//! the in-process tests (`tests/common` includes this file), and meant for admission webhooks.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// What the webhook answers: Some(reply) is a 200 with that JSON, None a 500.
pub type Handler = Arc<dyn Fn(Value) -> Option<Value> + Send + Sync>;

/// A running test webhook.
pub struct WebhookServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The CA certificate (PEM) that signed its serving certificate.
    pub ca_pem: String,
    calls: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

/// A CA and a serving certificate for 127.0.0.1, localhost and `extra_names`: the CA's PEM, the
/// certificate's DER and its key's PKCS#8 DER.
pub fn certificates(extra_names: &[&str]) -> (String, Vec<u8>, Vec<u8>) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "kubox test CA");
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let mut names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
    names.extend(extra_names.iter().map(|n| n.to_string()));
    let params = rcgen::CertificateParams::new(names).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();
    (ca.pem(), cert.der().to_vec(), key.serialize_der())
}

impl WebhookServer {
    /// Serve `handler` over HTTPS; the certificate also names `extra_names` (such as
    /// `<service>.<namespace>.svc` for a service reference).
    pub async fn start(handler: Handler, extra_names: &[&str]) -> WebhookServer {
        let (ca_pem, cert, key) = certificates(extra_names);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.into()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.into()),
            )
            .unwrap();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let handler = handler.clone();
                let counter = counter.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let handler = handler.clone();
                        let counter = counter.clone();
                        async move {
                            counter.fetch_add(1, Ordering::SeqCst);
                            let body = req.into_body().collect().await?.to_bytes();
                            // Handlers may block (a slow webhook sleeps): off the runtime's
                            // workers, so the caller's timers keep running.
                            let reply = match serde_json::from_slice::<Value>(&body) {
                                Ok(v) => {
                                    let handler = handler.clone();
                                    tokio::task::spawn_blocking(move || handler(v))
                                        .await
                                        .ok()
                                        .flatten()
                                }
                                Err(_) => None,
                            };
                            let resp = match reply {
                                Some(v) => Response::builder()
                                    .status(200)
                                    .header("content-type", "application/json")
                                    .body(Full::new(Bytes::from(v.to_string()))),
                                None => Response::builder()
                                    .status(500)
                                    .body(Full::new(Bytes::from_static(b"webhook failed"))),
                            };
                            Ok::<_, hyper::Error>(resp.unwrap())
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), svc)
                        .await;
                });
            }
        });
        WebhookServer {
            addr,
            ca_pem,
            calls,
            task,
        }
    }

    /// `https://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    /// The CA as a clientConfig `caBundle` (base64 of the PEM).
    pub fn ca_bundle(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(self.ca_pem.as_bytes())
    }

    /// Requests served so far.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Stop listening (connections are refused afterwards).
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for WebhookServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The reply to a ConversionReview v1: each object converted by `convert(object, desired)`.
pub fn conversion_reply(review: &Value, convert: impl Fn(Value, &str) -> Value) -> Value {
    let request = &review["request"];
    let desired = request["desiredAPIVersion"].as_str().unwrap_or_default();
    let converted: Vec<Value> = request["objects"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| convert(o.clone(), desired))
        .collect();
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "ConversionReview",
        "response": {"uid": request["uid"], "result": {"status": "Success"}, "convertedObjects": converted},
    })
}

/// The example conversion the scenarios use: `v1` keeps `spec.size` as a string ("3"), `v2`
/// keeps `spec.replicas` as an integer (3); other fields pass through.
pub fn size_replicas(mut obj: Value, desired: &str) -> Value {
    let to_v2 = desired.ends_with("/v2");
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        if to_v2 {
            if let Some(size) = spec.remove("size") {
                let n = size
                    .as_str()
                    .and_then(|s| s.parse::<i64>().ok())
                    .unwrap_or(0);
                spec.insert("replicas".into(), json!(n));
            }
        } else if let Some(replicas) = spec.remove("replicas") {
            spec.insert(
                "size".into(),
                json!(replicas.as_i64().unwrap_or(0).to_string()),
            );
        }
    }
    obj["apiVersion"] = json!(desired);
    obj
}

/// A handler converting with [`size_replicas`].
pub fn size_replicas_handler() -> Handler {
    Arc::new(|review| Some(conversion_reply(&review, size_replicas)))
}
