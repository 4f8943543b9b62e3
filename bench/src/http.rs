//! The HTTP side of the load generator: one keep-alive HTTP/1.1 connection per simulated client
//! (hyper's low-level client, so N clients are exactly N connections and share no pool lock),
//! HTTP/2 connections that many requests share (as client-go multiplexes a process's watches),
//! plus the helpers that build request bodies.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};
use tokio::net::TcpStream;

use crate::Result;

/// How to reach the server being measured: plain HTTP with a bearer token, or TLS with a
/// client certificate (both from the kubeconfig `kubox serve` wrote).
#[derive(Clone, Default)]
pub struct Credentials {
    /// TLS client configuration (trusts the server's CA, presents the admin certificate).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Bearer token (plain HTTP).
    pub token: Option<String>,
}

/// The credentials of the kubox currently running (the bench runs one at a time).
static CREDENTIALS: RwLock<Option<Credentials>> = RwLock::new(None);

/// Serve HTTPS (else `--insecure-http`).
static TLS: AtomicBool = AtomicBool::new(false);

/// Clients speak h2 (by ALPN over TLS, by prior knowledge over plain HTTP), one connection
/// each, as kubectl and client-go do; else HTTP/1.1.
static HTTP2: AtomicBool = AtomicBool::new(false);

/// Make every client connection from now on an h2 one (or HTTP/1.1).
pub fn use_http2(on: bool) {
    HTTP2.store(on, Ordering::Relaxed);
}

/// Do the bench's clients speak h2?
pub fn http2() -> bool {
    HTTP2.load(Ordering::Relaxed)
}

/// Measure over TLS from now on.
pub fn use_tls(on: bool) {
    TLS.store(on, Ordering::Relaxed);
}

/// Is the bench measuring over TLS?
pub fn tls() -> bool {
    TLS.load(Ordering::Relaxed)
}

fn credentials() -> Credentials {
    CREDENTIALS
        .read()
        .map(|c| c.clone().unwrap_or_default())
        .unwrap_or_default()
}

/// Forget the credentials (a new server is starting).
pub fn clear_credentials() {
    if let Ok(mut c) = CREDENTIALS.write() {
        *c = None;
    }
}

/// Read the credentials of the kubeconfig at `path`; false while it is not (fully) written.
pub fn load_credentials(path: &Path) -> bool {
    use rustls_pki_types::pem::PemObject;
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .map(|v| v.trim().to_string())
    };
    let decode = |v: String| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(v)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
    };
    let mut creds = Credentials {
        token: field("token:"),
        tls: None,
    };
    if text.contains("server: https://") {
        let (Some(ca), Some(cert), Some(key)) = (
            field("certificate-authority-data:").and_then(decode),
            field("client-certificate-data:").and_then(decode),
            field("client-key-data:").and_then(decode),
        ) else {
            return false;
        };
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_pki_types::CertificateDer::pem_slice_iter(ca.as_bytes()).flatten() {
            let _ = roots.add(c);
        }
        let chain: Vec<_> = rustls_pki_types::CertificateDer::pem_slice_iter(cert.as_bytes())
            .flatten()
            .collect();
        let Ok(key) = rustls_pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()) else {
            return false;
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let Ok(cfg) = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map(|b| b.with_root_certificates(roots))
            .and_then(|b| b.with_client_auth_cert(chain, key))
        else {
            return false;
        };
        creds.tls = Some(Arc::new(cfg));
    } else if creds.token.is_none() {
        return false;
    }
    if let Ok(mut c) = CREDENTIALS.write() {
        *c = Some(creds);
    }
    true
}

/// From now on, authenticate with the bearer `token` over TLS (trusting the CA of the
/// kubeconfig at `path`) and present no client certificate.
pub fn use_bearer_token(path: &Path, token: &str) -> Result<()> {
    use rustls_pki_types::pem::PemObject;
    let text = std::fs::read_to_string(path)?;
    let ca = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("certificate-authority-data:"))
        .and_then(|v| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(v.trim())
                .ok()
        })
        .ok_or("the kubeconfig has no CA")?;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_slice_iter(&ca).flatten() {
        roots.add(c)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let creds = Credentials {
        tls: Some(Arc::new(cfg)),
        token: Some(token.to_string()),
    };
    if let Ok(mut c) = CREDENTIALS.write() {
        *c = Some(creds);
    }
    Ok(())
}

/// One keep-alive connection to the server: HTTP/1.1, or h2 with one stream at a time when
/// [`http2`] (a client of its own, as a kubectl command is).
pub struct Conn {
    sender: Sender,
    authorization: Option<String>,
}

/// How a request reaches the server: its authority in a `Host` header (HTTP/1.1) or in an
/// absolute URI (h2).
enum Sender {
    H1 {
        sender: SendRequest<Full<Bytes>>,
        host: String,
    },
    H2(H2Conn),
}

impl Sender {
    async fn send(
        &mut self,
        req: http::request::Builder,
        body: Bytes,
    ) -> Result<http::Response<Incoming>> {
        match self {
            Sender::H1 { sender, host } => {
                sender.ready().await?;
                let req = req.header(header::HOST, host.as_str());
                Ok(sender.send_request(req.body(Full::new(body))?).await?)
            }
            Sender::H2(h2) => {
                let uri = format!(
                    "{}{}",
                    h2.base,
                    req.uri_ref().map(|u| u.to_string()).unwrap_or_default()
                );
                h2.sender.ready().await?;
                Ok(h2
                    .sender
                    .send_request(req.uri(uri).body(Full::new(body))?)
                    .await?)
            }
        }
    }
}

impl Conn {
    /// Connect to `addr` (must be loopback: this tool sends traffic nowhere else).
    pub async fn connect(addr: SocketAddr) -> Result<Conn> {
        if !addr.ip().is_loopback() {
            return Err(format!("refusing to send load to non-loopback address {addr}").into());
        }
        let creds = credentials();
        if http2() {
            return Ok(Conn {
                sender: Sender::H2(H2Conn::connect(addr).await?),
                authorization: creds.token.map(|t| format!("Bearer {t}")),
            });
        }
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let sender = match creds.tls {
            Some(cfg) => {
                let name = rustls_pki_types::ServerName::IpAddress(addr.ip().into());
                let tls = tokio_rustls::TlsConnector::from(cfg)
                    .connect(name, stream)
                    .await?;
                let (sender, conn) =
                    hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                sender
            }
            None => {
                let (sender, conn) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                sender
            }
        };
        Ok(Conn {
            sender: Sender::H1 {
                sender,
                host: addr.to_string(),
            },
            authorization: creds.token.map(|t| format!("Bearer {t}")),
        })
    }

    /// Send a request and return its status and whole body.
    pub async fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<(StatusCode, Bytes)> {
        let resp = self.send(method, path, body).await?;
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        Ok((status, bytes))
    }

    /// Send a request with a body of `content_type`; return its status and whole body.
    pub async fn call_typed(
        &mut self,
        method: Method,
        path: &str,
        body: Bytes,
        content_type: &str,
    ) -> Result<(StatusCode, Bytes)> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::ACCEPT, "application/json")
            .header(header::CONTENT_TYPE, content_type);
        if let Some(a) = &self.authorization {
            req = req.header(header::AUTHORIZATION, a);
        }
        let resp = self.sender.send(req, body).await?;
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        Ok((status, bytes))
    }

    /// GET `path` with extra request headers; return the status, the response's headers and
    /// its whole body.
    pub async fn get_with(
        &mut self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<(StatusCode, http::HeaderMap, Bytes)> {
        let mut req = Request::builder().method(Method::GET).uri(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(a) = &self.authorization {
            req = req.header(header::AUTHORIZATION, a);
        }
        let resp = self.sender.send(req, Bytes::new()).await?;
        let (parts, body) = resp.into_parts();
        let bytes = body.collect().await?.to_bytes();
        Ok((parts.status, parts.headers, bytes))
    }

    /// Send a request and return the response with its body unread (for watch streams).
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<http::Response<Incoming>> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::ACCEPT, "application/json");
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        if let Some(a) = &self.authorization {
            req = req.header(header::AUTHORIZATION, a);
        }
        self.sender.send(req, body.unwrap_or_default()).await
    }

    /// Like [`Conn::call`] but fails unless the status is a success, and parses the body as JSON.
    pub async fn json(&mut self, method: Method, path: &str, body: Option<Bytes>) -> Result<Value> {
        let (status, bytes) = self.call(method.clone(), path, body).await?;
        if !status.is_success() {
            return Err(format!(
                "{method} {path}: {status}: {}",
                String::from_utf8_lossy(&bytes)
            )
            .into());
        }
        Ok(serde_json::from_slice(&bytes)?)
    }
}

/// One HTTP/2 connection whose streams any number of tasks share (clone it per task).
#[derive(Clone)]
pub struct H2Conn {
    sender: hyper::client::conn::http2::SendRequest<Full<Bytes>>,
    /// `https://addr` or `http://addr`: h2 requests carry an absolute URI.
    base: String,
    authorization: Option<String>,
}

impl H2Conn {
    /// Connect to `addr` (loopback only) and agree on h2: by ALPN over TLS, by prior knowledge
    /// over plain HTTP.
    pub async fn connect(addr: SocketAddr) -> Result<H2Conn> {
        if !addr.ip().is_loopback() {
            return Err(format!("refusing to send load to non-loopback address {addr}").into());
        }
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let creds = credentials();
        let builder = hyper::client::conn::http2::Builder::new(TokioExecutor::new());
        let scheme = if creds.tls.is_some() { "https" } else { "http" };
        let sender = match creds.tls {
            Some(cfg) => {
                let mut cfg = (*cfg).clone();
                cfg.alpn_protocols = vec![b"h2".to_vec()];
                let name = rustls_pki_types::ServerName::IpAddress(addr.ip().into());
                let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
                    .connect(name, stream)
                    .await?;
                if tls.get_ref().1.alpn_protocol() != Some(b"h2") {
                    return Err("the server did not agree on h2".into());
                }
                let (sender, conn) = builder.handshake(TokioIo::new(tls)).await?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                sender
            }
            None => {
                let (sender, conn) = builder.handshake(TokioIo::new(stream)).await?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                sender
            }
        };
        Ok(H2Conn {
            sender,
            base: format!("{scheme}://{addr}"),
            authorization: creds.token.map(|t| format!("Bearer {t}")),
        })
    }

    /// Send a GET on a new stream and return the response with its body unread.
    pub async fn get(&mut self, path: &str) -> Result<http::Response<Incoming>> {
        self.sender.ready().await?;
        let mut req = Request::builder()
            .method(Method::GET)
            .uri(format!("{}{path}", self.base))
            .header(header::ACCEPT, "application/json");
        if let Some(a) = &self.authorization {
            req = req.header(header::AUTHORIZATION, a);
        }
        Ok(self.sender.send_request(req.body(Full::default())?).await?)
    }
}

/// Create a namespace (it is fine if it exists).
pub async fn ensure_namespace(addr: SocketAddr, name: &str) -> Result<()> {
    let mut conn = Conn::connect(addr).await?;
    let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    let (status, bytes) = conn
        .call(
            Method::POST,
            "/api/v1/namespaces",
            Some(Bytes::from(body.to_string())),
        )
        .await?;
    if status.is_success() || status == StatusCode::CONFLICT {
        Ok(())
    } else {
        Err(format!(
            "create namespace {name}: {status}: {}",
            String::from_utf8_lossy(&bytes)
        )
        .into())
    }
}

/// The collection path of ConfigMaps in `ns`.
pub fn configmaps(ns: &str) -> String {
    format!("/api/v1/namespaces/{ns}/configmaps")
}

/// A ConfigMap of about 400 bytes of JSON: two labels and three 64-character values, plus
/// `extra` data entries.
pub fn configmap(name: &str, extra: &[(&str, String)]) -> Bytes {
    let filler = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-_";
    let mut data = serde_json::Map::new();
    for k in ["alpha", "beta", "gamma"] {
        data.insert(k.to_string(), Value::from(filler));
    }
    for (k, v) in extra {
        data.insert(k.to_string(), Value::from(v.as_str()));
    }
    let obj = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"app": "kubox-bench", "tier": "load"}},
        "data": data,
    });
    Bytes::from(obj.to_string())
}

/// A blocking `GET /readyz` on a fresh connection: true when the server answered 200.
/// Any failure (refused, reset, other status) is simply "not ready yet".
pub fn readyz_blocking(addr: SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_nodelay(true);
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let creds = credentials();
    let auth = creds
        .token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!("GET /readyz HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n");
    let mut head = [0u8; 12];
    match creds.tls {
        Some(cfg) => {
            let name = rustls_pki_types::ServerName::IpAddress(addr.ip().into());
            let Ok(conn) = rustls::ClientConnection::new(cfg, name) else {
                return false;
            };
            let mut s = rustls::StreamOwned::new(conn, s);
            s.write_all(req.as_bytes()).is_ok()
                && s.read_exact(&mut head).is_ok()
                && head.starts_with(b"HTTP/1.1 200")
        }
        None => {
            let mut s = s;
            s.write_all(req.as_bytes()).is_ok()
                && s.read_exact(&mut head).is_ok()
                && head.starts_with(b"HTTP/1.1 200")
        }
    }
}

/// Nanoseconds since `base` (fits u64 for 584 years).
pub fn nanos_since(base: Instant) -> u64 {
    base.elapsed().as_nanos() as u64
}
