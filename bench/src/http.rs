//! The HTTP side of the load generator: one keep-alive HTTP/1.1 connection per simulated client
//! (hyper's low-level client, so N clients are exactly N connections and share no pool lock), plus
//! the helpers that build request bodies.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpStream;

use crate::Result;

/// One keep-alive connection to the server.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
    host: String,
}

impl Conn {
    /// Connect to `addr` (must be loopback: this tool sends traffic nowhere else).
    pub async fn connect(addr: SocketAddr) -> Result<Conn> {
        if !addr.ip().is_loopback() {
            return Err(format!("refusing to send load to non-loopback address {addr}").into());
        }
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn {
            sender,
            host: addr.to_string(),
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

    /// Send a request and return the response with its body unread (for watch streams).
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<http::Response<Incoming>> {
        self.sender.ready().await?;
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, &self.host)
            .header(header::ACCEPT, "application/json");
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let req = req.body(Full::new(body.unwrap_or_default()))?;
        Ok(self.sender.send_request(req).await?)
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
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_nodelay(true);
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = format!("GET /readyz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}

/// Nanoseconds since `base` (fits u64 for 584 years).
pub fn nanos_since(base: Instant) -> u64 {
    base.elapsed().as_nanos() as u64
}
