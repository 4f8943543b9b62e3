//! The limit of the watch section: a bare hyper (+ rustls) server in its own process that does
//! only what a watch's delivery cannot do without — it holds every watch stream open, answers
//! each ConfigMap create with the bytes it was sent, and hands one event line built from them
//! (the same bytes for every stream) to every open watch. No store, no validation, no
//! selectors: what the machine's cores, its loopback and TLS, hyper and tokio take to carry an
//! event to W streams, measured by the same client in the same run as kubox.
//!
//! This binary run again with `--serve-watch-limit DIR`: `DIR` holds `addr` and, for TLS, the
//! serving certificate and key kubox wrote into its data directory (`apiserver.crt`,
//! `apiserver.key`). It speaks HTTP/1.1 and h2 (ALPN over TLS, prior knowledge without), with
//! kubox's bound of streams per connection.

use std::convert::Infallible;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Incoming};
use hyper_util::rt::TokioExecutor;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::Stream;

use crate::Result;

/// kubox's own bound of concurrent streams on one h2 connection.
const MAX_STREAMS: u32 = 1000;
/// Events a watch may fall behind by before it is ended (a lagging stream ends, as kubox ends
/// a watch whose client does not keep up).
const BACKLOG: usize = 4096;

/// Run the watch limit server (the `--serve-watch-limit DIR` mode); returns only on error.
pub fn serve(dir: &Path, tls: bool) -> Result<()> {
    let (events, _) = broadcast::channel::<Bytes>(BACKLOG);
    crate::limit::serve_each(dir, tls, &[b"h2", b"http/1.1"], move |io| {
        let events = events.clone();
        async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let events = events.clone();
                async move { Ok::<_, Infallible>(respond(req, &events).await) }
            });
            let mut http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            http.http2().max_concurrent_streams(MAX_STREAMS);
            let _ = http.serve_connection(io, service).await;
        }
    })
}

async fn respond(
    req: Request<Incoming>,
    events: &broadcast::Sender<Bytes>,
) -> Response<BoxBody<Bytes, Infallible>> {
    let full = |status: StatusCode, body: Bytes| {
        let mut resp = Response::new(Full::new(body).boxed());
        *resp.status_mut() = status;
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        resp
    };
    let watch = req
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "watch=true"));
    match (req.method().clone(), watch) {
        (Method::GET, true) => {
            let mut resp = Response::new(
                Watch {
                    events: BroadcastStream::new(events.subscribe()),
                }
                .boxed(),
            );
            resp.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            resp
        }
        (Method::POST, _) => {
            let configmaps = req.uri().path().ends_with("/configmaps");
            let Ok(body) = req.into_body().collect().await.map(|b| b.to_bytes()) else {
                return full(StatusCode::BAD_REQUEST, Bytes::new());
            };
            if configmaps {
                let mut line = Vec::with_capacity(body.len() + 32);
                line.extend_from_slice(br#"{"type":"ADDED","object":"#);
                line.extend_from_slice(&body);
                line.extend_from_slice(b"}\n");
                // No watcher yet is no error: the event is for nobody.
                let _ = events.send(Bytes::from(line));
            }
            full(StatusCode::CREATED, body)
        }
        // /readyz, and the list a watch starts from.
        _ => full(
            StatusCode::OK,
            Bytes::from_static(
                br#"{"kind":"ConfigMapList","apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":[]}"#,
            ),
        ),
    }
}

/// A watch stream's body: every event sent after it subscribed, until it falls `BACKLOG`
/// behind or the server ends.
struct Watch {
    events: BroadcastStream<Bytes>,
}

impl Body for Watch {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, Infallible>>> {
        match Pin::new(&mut self.events).poll_next(cx) {
            Poll::Ready(Some(Ok(event))) => Poll::Ready(Some(Ok(Frame::data(event)))),
            Poll::Ready(Some(Err(_)) | None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]

    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    fn request(addr: std::net::SocketAddr, head: &str, body: &str) -> TcpStream {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).ok();
        let req = format!(
            "{head} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).expect("write");
        s
    }

    /// Read until `needle` arrived; what was read.
    fn read_until(s: &mut TcpStream, needle: &str) -> String {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&got).contains(needle) {
            let n = s.read(&mut buf).expect("read");
            assert!(
                n > 0,
                "closed before {needle:?}: {}",
                String::from_utf8_lossy(&got)
            );
            got.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&got).into_owned()
    }

    #[test]
    fn hands_each_create_to_every_open_watch_as_an_added_event() {
        let dir = tempfile::tempdir().expect("tempdir");
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port");
        std::fs::write(dir.path().join("addr"), addr.to_string()).expect("addr");
        let served = dir.path().to_path_buf();
        std::thread::spawn(move || super::serve(&served, false));
        while !crate::http::readyz_blocking(addr) {
            std::thread::sleep(Duration::from_millis(5));
        }
        let path = "/api/v1/namespaces/n/configmaps";
        let mut watches: Vec<TcpStream> = (0..3)
            .map(|_| request(addr, &format!("GET {path}?watch=true"), ""))
            .collect();
        for w in &mut watches {
            read_until(w, "\r\n\r\n");
        }
        // A watch is served once its head is out; its subscription came before: the event of
        // a create made now reaches it.
        let object = r#"{"metadata":{"name":"a"},"data":{"sentNanos":"42"}}"#;
        let mut writer = request(addr, &format!("POST {path}"), object);
        let answer = read_until(&mut writer, object);
        assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
        for w in &mut watches {
            let got = read_until(w, "}}\n");
            let line = &got[got.find(r#"{"type""#).expect("an event")..];
            let line = &line[..=line.find('\n').expect("a whole line")];
            assert_eq!(
                line,
                format!("{{\"type\":\"ADDED\",\"object\":{object}}}\n")
            );
            // What the watch section's watchers read of it.
            assert_eq!(
                crate::watch::sent_nanos(line.trim_end().as_bytes()),
                Some(42)
            );
        }
    }
}
