//! Hostile requests and connections: none may take kubox down. Each scenario runs over a real
//! socket, checks the Status it is answered with, and checks that `/readyz` keeps answering 200
//! to another client while the attack runs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::hooked::HookedStore;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper_util::rt::{TokioExecutor, TokioIo};
use kubox::authn::UserInfo;
use kubox::{ConnectionLimits, Server, ServerHandle};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ADMIN: &str = "admin-token";
/// An authenticated user with no rights beyond the bootstrap policy's (`system:basic-user`:
/// self subject access reviews).
const USER: &str = "user-token";
const CM: &str = "/api/v1/namespaces/default/configmaps";

fn tokens() -> Vec<(String, UserInfo)> {
    vec![
        (
            ADMIN.to_string(),
            UserInfo {
                username: "admin".into(),
                groups: vec!["system:masters".into()],
                ..Default::default()
            },
        ),
        (
            USER.to_string(),
            UserInfo {
                username: "jane".into(),
                groups: vec!["system:authenticated".into()],
                ..Default::default()
            },
        ),
    ]
}

async fn start_with(limits: ConnectionLimits) -> ServerHandle {
    Server::builder()
        .memory()
        .insecure_http()
        .static_tokens(tokens())
        .connection_limits(limits)
        .start()
        .await
        .unwrap()
}

async fn start() -> ServerHandle {
    start_with(ConnectionLimits::default()).await
}

/// Limits short enough for a test to watch them act.
fn short_limits() -> ConnectionLimits {
    ConnectionLimits {
        header_read_timeout: Duration::from_millis(500),
        idle_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_secs(1),
        ..Default::default()
    }
}

struct Resp {
    status: StatusCode,
    body: Bytes,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// Assert a Status failure with this code and reason; returns the Status.
    #[track_caller]
    fn status_failure(&self, code: u16, reason: &str) -> Value {
        let s = self.json();
        assert_eq!(self.status.as_u16(), code, "{s}");
        assert_eq!(s["kind"], "Status", "{s}");
        assert_eq!(s["code"], code, "{s}");
        assert_eq!(s["reason"], reason, "{s}");
        s
    }
}

/// A watch of the ConfigMaps on a new HTTP/1.1 connection (`more`: further query parameters,
/// each after `&`), once its answer's status line says 200.
async fn open_watch(addr: SocketAddr, more: &str) -> TcpStream {
    let mut watch = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "GET {CM}?watch=true{more} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\n\r\n"
    );
    watch.write_all(head.as_bytes()).await.unwrap();
    let mut buf = [0u8; 12];
    watch.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"HTTP/1.1 200", "{head}");
    watch
}

/// One request on a new HTTP/1.1 connection.
async fn call(
    addr: SocketAddr,
    token: &str,
    method: Method,
    path: &str,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Resp {
    let resp = send(addr, token, method, path, content_type, body)
        .await
        .await
        .unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Resp { status, body }
}

/// Send one request on a new HTTP/1.1 connection: its answer, still to come.
async fn send(
    addr: SocketAddr,
    token: &str,
    method: Method,
    path: &str,
    content_type: &str,
    body: impl Into<Bytes>,
) -> impl std::future::Future<Output = hyper::Result<hyper::Response<hyper::body::Incoming>>> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string())
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", content_type)
        .body(Full::new(body.into()))
        .unwrap();
    send.send_request(req)
}

async fn post(addr: SocketAddr, path: &str, body: &Value) -> Resp {
    call(
        addr,
        ADMIN,
        Method::POST,
        path,
        "application/json",
        serde_json::to_vec(body).unwrap(),
    )
    .await
}

/// While `attack` runs, another client asks `/readyz` again and again: every answer is 200.
/// Returns the attack's result and how many probes were answered.
async fn with_readyz_probe<T>(addr: SocketAddr, attack: impl std::future::Future<Output = T>) -> T {
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let probe = tokio::spawn(async move {
        let mut answered = 0u32;
        loop {
            let r = call(addr, ADMIN, Method::GET, "/readyz", "", "").await;
            assert_eq!(
                r.status,
                StatusCode::OK,
                "{}",
                String::from_utf8_lossy(&r.body)
            );
            answered += 1;
            tokio::select! {
                _ = stop_rx.changed() => return answered,
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
        }
    });
    let out = attack.await;
    stop_tx.send(true).unwrap();
    let answered = probe.await.expect("readyz answered 200 throughout");
    assert!(answered > 0);
    out
}

fn configmap(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "b"}})
}

// ---------------------------------------------------------------------------------------------
// 1. Work that grows faster than the body

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_patch_copies_that_double_an_array_stop_at_the_accumulated_copy_limit() {
    let h = start().await;
    let addr = h.addr();
    let mut cm = configmap("doubling");
    cm["data"]["a"] = json!("x".repeat(1000));
    assert_eq!(post(addr, CM, &cm).await.status, StatusCode::CREATED);
    // jane may patch this one ConfigMap and nothing else.
    let rbac = "/apis/rbac.authorization.k8s.io/v1/namespaces/default";
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "patch-one"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["doubling"],
                   "verbs": ["patch"]}]});
    assert_eq!(
        post(addr, &format!("{rbac}/roles"), &role).await.status,
        StatusCode::CREATED
    );
    let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "jane-patch-one"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "patch-one"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "jane"}]});
    assert_eq!(
        post(addr, &format!("{rbac}/rolebindings"), &binding)
            .await
            .status,
        StatusCode::CREATED
    );
    // Each copy puts the whole map into itself: 40 of them would need 2^40 KB.
    let ops: Vec<Value> = (0..40)
        .map(|i| json!({"op": "copy", "from": "/data", "path": format!("/data/k{i}")}))
        .collect();
    let r = with_readyz_probe(
        addr,
        call(
            addr,
            USER,
            Method::PATCH,
            &format!("{CM}/doubling"),
            "application/json-patch+json",
            serde_json::to_vec(&ops).unwrap(),
        ),
    )
    .await;
    let s = r.status_failure(422, "Invalid");
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .contains("the accumulated size increase of copy is more than the limit 3145728"),
        "{s}"
    );
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_patch_of_more_than_10000_operations_is_413() {
    let h = start().await;
    let addr = h.addr();
    post(addr, CM, &configmap("many")).await;
    let ops: Vec<Value> = (0..10_001)
        .map(|_| json!({"op": "test", "path": "/data/a", "value": "b"}))
        .collect();
    let r = call(
        addr,
        ADMIN,
        Method::PATCH,
        &format!("{CM}/many"),
        "application/json-patch+json",
        serde_json::to_vec(&ops).unwrap(),
    )
    .await;
    let s = r.status_failure(413, "RequestEntityTooLarge");
    assert_eq!(
        s["message"],
        "Request entity too large: The allowed maximum operations in a JSON patch is 10000, got 10001"
    );
    // 10,000 are fine.
    let ops = &ops[..10_000];
    let r = call(
        addr,
        ADMIN,
        Method::PATCH,
        &format!("{CM}/many"),
        "application/json-patch+json",
        serde_json::to_vec(ops).unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_patch_inserts_at_the_front_of_a_long_array_are_bounded() {
    let h = start().await;
    let addr = h.addr();
    let mut cm = configmap("shifting");
    cm["metadata"]["finalizers"] = json!((0..20_000).map(|i| format!("f/{i}")).collect::<Vec<_>>());
    assert_eq!(post(addr, CM, &cm).await.status, StatusCode::CREATED);
    // Each insert at index 0 shifts every item: 10,000 of them shift 200 million.
    let ops: Vec<Value> = (0..10_000)
        .map(|_| json!({"op": "add", "path": "/metadata/finalizers/0", "value": "f/new"}))
        .collect();
    let r = with_readyz_probe(
        addr,
        call(
            addr,
            ADMIN,
            Method::PATCH,
            &format!("{CM}/shifting"),
            "application/json-patch+json",
            serde_json::to_vec(&ops).unwrap(),
        ),
    )
    .await;
    r.status_failure(413, "RequestEntityTooLarge");
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strategic_merge_patch_of_huge_lists_is_refused_not_merged_for_hours() {
    let h = start().await;
    let addr = h.addr();
    let mut cm = configmap("smp");
    cm["metadata"]["finalizers"] = json!((0..20_000).map(|i| format!("f/{i}")).collect::<Vec<_>>());
    assert_eq!(post(addr, CM, &cm).await.status, StatusCode::CREATED);
    let list: Vec<String> = (0..40_000).map(|i| format!("g/{i}")).collect();
    let patch = json!({"metadata": {"finalizers": list, "$setElementOrder/finalizers": list}});
    let r = with_readyz_probe(
        addr,
        call(
            addr,
            ADMIN,
            Method::PATCH,
            &format!("{CM}/smp"),
            "application/strategic-merge-patch+json",
            serde_json::to_vec(&patch).unwrap(),
        ),
    )
    .await;
    let s = r.status_failure(413, "RequestEntityTooLarge");
    assert!(
        s["message"].as_str().unwrap().contains("too complex"),
        "{s}"
    );
    // A malformed directive is a 400, as kube-apiserver answers it.
    let r = call(
        addr,
        ADMIN,
        Method::PATCH,
        &format!("{CM}/smp"),
        "application/strategic-merge-patch+json",
        r#"{"data": {"$patch": "bogus"}}"#,
    )
    .await;
    r.status_failure(400, "BadRequest");
    h.shutdown().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// 2. Deeply nested YAML

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_yaml_from_any_user_is_refused_at_once() {
    let h = start().await;
    let addr = h.addr();
    let ssar = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
    // 2 MB of flow nesting: parsed as such it would take hours.
    for unit in ["{a: ", "[", "[{", "- [a, "] {
        let body = unit.repeat(2_000_000 / unit.len());
        let r = with_readyz_probe(
            addr,
            call(addr, USER, Method::POST, ssar, "application/yaml", body),
        )
        .await;
        let s = r.status_failure(400, "BadRequest");
        assert!(
            s["message"]
                .as_str()
                .unwrap()
                .starts_with("error converting YAML to JSON: yaml: exceeded max depth of 128"),
            "{unit}: {s}"
        );
    }
    // Ordinary YAML from the same user still works.
    let ok = "apiVersion: authorization.k8s.io/v1\nkind: SelfSubjectAccessReview\nspec:\n  resourceAttributes: {verb: get, resource: pods, namespace: default}\n";
    let r = call(addr, USER, Method::POST, ssar, "application/yaml", ok).await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    h.shutdown().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// 4. Connections that never finish

/// Read from `stream` until the server closes it (or `limit` passes, a failure).
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit, stream.read(&mut buf)).await {
            Err(_) => panic!(
                "the server kept the connection open: {:?}",
                String::from_utf8_lossy(&got)
            ),
            Ok(Ok(0)) | Ok(Err(_)) => return got,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_sent_a_byte_at_a_time_are_cut_off_at_the_header_read_timeout() {
    // A short header bound and a long idle one: the idle bound must not be what cuts it off.
    let h = start_with(ConnectionLimits {
        header_read_timeout: Duration::from_millis(500),
        idle_timeout: Duration::from_secs(3600),
        ..Default::default()
    })
    .await;
    let addr = h.addr();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let got = with_readyz_probe(
        addr,
        read_until_closed(&mut stream, Duration::from_secs(30)),
    )
    .await;
    assert!(
        !got.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_over_http1_and_http2() {
    let h = start_with(ConnectionLimits {
        header_read_timeout: Duration::from_secs(3600),
        idle_timeout: Duration::from_millis(500),
        ..Default::default()
    })
    .await;
    let addr = h.addr();
    // HTTP/1.1: one request, then nothing.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let got = read_until_closed(&mut stream, Duration::from_secs(30)).await;
    assert!(
        got.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    // HTTP/2 (prior knowledge): one request, then nothing; the server ends the connection.
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http2::handshake::<_, _, Full<Bytes>>(
        TokioExecutor::new(),
        TokioIo::new(stream),
    )
    .await
    .unwrap();
    let conn = tokio::spawn(conn);
    let req = Request::get("/readyz")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    drop(resp);
    let ended = tokio::time::timeout(Duration::from_secs(30), conn).await;
    assert!(ended.is_ok(), "the idle HTTP/2 connection stayed open");
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_that_never_ends_is_answered_504_at_the_request_deadline() {
    let h = start_with(short_limits()).await;
    let addr = h.addr();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {CM} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{{\"a\":\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let got = with_readyz_probe(
        addr,
        read_until_closed(&mut stream, Duration::from_secs(30)),
    )
    .await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 504"), "{text}");
    assert!(
        text.contains(
            r#""message":"Timeout: request did not complete within the allotted timeout""#
        ),
        "{text}"
    );
    assert!(text.contains(r#""reason":"Timeout""#), "{text}");
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_hold_more_than_its_share_of_connections() {
    let h = start_with(ConnectionLimits {
        max_connections_per_address: 4,
        ..Default::default()
    })
    .await;
    let addr = h.addr();
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 12];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"HTTP/1.1 200");
        held.push(s);
    }
    // The fifth is closed as soon as it is accepted.
    let mut fifth = TcpStream::connect(addr).await.unwrap();
    let _ = fifth
        .write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let got = read_until_closed(&mut fifth, Duration::from_secs(30)).await;
    assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));
    // Once one goes, a new one is served.
    drop(held.pop());
    let r = loop {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let _ = s
            .write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await;
        let got = read_until_closed(&mut s, Duration::from_secs(30)).await;
        if !got.is_empty() {
            break got;
        }
        tokio::task::yield_now().await; // the server has not seen the close yet
    };
    assert!(r.starts_with(b"HTTP/1.1 200"));
    h.shutdown().await.unwrap();
}

/// Over HTTP/1.1 a request head of up to 100 header fields is read; more are answered 431 by
/// the HTTP layer, whatever their bytes.
#[tokio::test]
async fn more_than_100_header_fields_are_answered_431() {
    let h = start().await;
    let addr = h.addr();
    for (fields, expected) in [(90, "HTTP/1.1 200"), (120, "HTTP/1.1 431")] {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let extra: String = (0..fields).map(|i| format!("X-F{i}: v\r\n")).collect();
        let head = format!(
            "GET /readyz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\n{extra}Connection: close\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let got = read_until_closed(&mut stream, Duration::from_secs(30)).await;
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with(expected), "{fields} fields: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_headers_are_answered_431_and_oversized_urls_414() {
    let h = start().await;
    let addr = h.addr();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "GET {CM} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(1_200_000)
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let got = read_until_closed(&mut stream, Duration::from_secs(30)).await;
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.starts_with("HTTP/1.1 431"),
        "{}",
        &text[..text.len().min(300)]
    );
    assert!(text.contains(r#""kind":"Status""#), "{text}");
    assert!(text.contains("more than the 1048576 allowed"), "{text}");
    // A URL over 64 KiB cannot be represented by the HTTP layer: a 414 Status, also when it
    // is the second request of a kept-alive connection and arrives a little at a time.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let first = format!("GET /readyz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\n\r\n");
    stream.write_all(first.as_bytes()).await.unwrap();
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).ends_with("ok") {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "{}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&chunk[..n]);
    }
    let head = format!(
        "GET {CM}?labelSelector={} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "a".repeat(100_000)
    );
    for part in head.as_bytes().chunks(7_000) {
        if stream.write_all(part).await.is_err() {
            break;
        }
    }
    let got = read_until_closed(&mut stream, Duration::from_secs(30)).await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 414"), "{text}");
    assert!(
        text.contains(r#""kind":"Status""#) && text.contains(r#""code":414"#),
        "{text}"
    );
    // A target just under the limit reaches the handlers.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let path = format!("{CM}?labelSelector=a%3D");
    let head = format!(
        "GET {path}{} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\nConnection: close\r\n\r\n",
        "b".repeat(65_534 - path.len())
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let got = read_until_closed(&mut stream, Duration::from_secs(30)).await;
    let text = String::from_utf8_lossy(&got);
    assert!(
        !text.starts_with("HTTP/1.1 414"),
        "{}",
        &text[..text.len().min(300)]
    );
    // And the server goes on.
    let r = call(addr, ADMIN, Method::GET, "/readyz", "", "").await;
    assert_eq!(r.status, StatusCode::OK);
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_3_mib_is_a_413_status_over_http1_and_http2() {
    let h = start().await;
    let addr = h.addr();
    let big = serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "big"}, "data": {"a": "x".repeat(4 << 20)}}))
    .unwrap();
    let r = call(
        addr,
        ADMIN,
        Method::POST,
        CM,
        "application/json",
        big.clone(),
    )
    .await;
    r.status_failure(413, "RequestEntityTooLarge");
    // HTTP/2, streamed without a length: the client reads the Status, not a reset stream.
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let chunks: Vec<Result<hyper::body::Frame<Bytes>, std::convert::Infallible>> = big
        .chunks(64 * 1024)
        .map(|c| Ok(hyper::body::Frame::data(Bytes::copy_from_slice(c))))
        .collect();
    let req = Request::post(CM)
        .header("authorization", format!("Bearer {ADMIN}"))
        .header("content-type", "application/json")
        .body(StreamBody::new(futures::stream::iter(chunks)))
        .unwrap();
    let resp = send
        .send_request(req)
        .await
        .expect("an answer, not a reset");
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let r = Resp { status, body };
    let s = r.status_failure(413, "RequestEntityTooLarge");
    assert_eq!(s["message"], "Request entity too large: limit is 3145728");
    h.shutdown().await.unwrap();
}

/// The object names of a watch stream's next `n` events at least (whole frames are read),
/// each an ADDED event and each within 30 s.
async fn added_names(body: &mut hyper::body::Incoming, n: usize, what: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut buf = Vec::new();
    while names.len() < n {
        let frame = tokio::time::timeout(Duration::from_secs(30), body.frame())
            .await
            .expect(what)
            .unwrap()
            .unwrap();
        buf.extend_from_slice(&frame.into_data().unwrap_or_default());
        while let Some(end) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=end).collect();
            let event: Value = serde_json::from_slice(&line).unwrap();
            assert_eq!(event["type"], "ADDED", "{event}");
            let name = event["object"]["metadata"]["name"].as_str().unwrap();
            names.push(name.to_string());
        }
    }
    names
}

/// Many requests at once over one HTTP/2 connection (kubectl's and client-go's transport):
/// each is polled first in the connection's task, a list or a watch in a task of its own, a
/// create on the sled store waits for its commit in one. Every one is answered, and a watch
/// on the same connection sees every create.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_requests_at_once_on_one_http2_connection_are_all_answered() {
    const N: usize = 48;
    let dir = tempfile::tempdir().unwrap();
    for sled in [false, true] {
        let builder = Server::builder().insecure_http().static_tokens(tokens());
        let builder = match sled {
            true => builder.sled(dir.path().join("store")),
            false => builder.memory(),
        };
        let h = builder.start().await.unwrap();
        let stream = TcpStream::connect(h.addr()).await.unwrap();
        let (send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);
        let request = |method: Method, path: String, body: Option<Value>| {
            let mut send = send.clone();
            async move {
                let body = body.map(|b| serde_json::to_vec(&b).unwrap());
                let req = Request::builder()
                    .method(method)
                    .uri(path)
                    .header("authorization", format!("Bearer {ADMIN}"))
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(body.unwrap_or_default())))
                    .unwrap();
                let resp = send.send_request(req).await.unwrap();
                let status = resp.status();
                (status, resp.into_body())
            }
        };
        let read = |body: hyper::body::Incoming| async move {
            let bytes = body.collect().await.unwrap().to_bytes();
            serde_json::from_slice::<Value>(&bytes).unwrap()
        };
        let (status, list) = request(Method::GET, CM.to_string(), None).await;
        assert_eq!(status, StatusCode::OK);
        let rv = read(list).await["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .to_string();
        let (status, mut watch) = request(
            Method::GET,
            format!("{CM}?watch=true&resourceVersion={rv}"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        // Creates, lists and GETs of what may not exist yet, all at once.
        let creates = (0..N).map(|i| {
            let name = format!("h2-{i}");
            request(Method::POST, CM.to_string(), Some(configmap(&name)))
        });
        let others = (0..N).map(|i| {
            let path = match i % 2 {
                0 => CM.to_string(),
                _ => format!("{CM}/h2-{i}"),
            };
            request(Method::GET, path, None)
        });
        let (created, others) = tokio::join!(
            futures::future::join_all(creates),
            futures::future::join_all(others)
        );
        for (status, body) in created {
            assert_eq!(status, StatusCode::CREATED, "{}", read(body).await);
        }
        for (status, body) in others {
            let v = read(body).await;
            assert!(
                status == StatusCode::OK || status == StatusCode::NOT_FOUND,
                "{status}: {v}"
            );
        }
        let names = added_names(&mut watch, N, "every create reaches the watch").await;
        let seen: std::collections::BTreeSet<_> = names.into_iter().collect();
        assert_eq!(seen.len(), N);
        h.shutdown().await.unwrap();
    }
}

/// Watchers sharing one HTTP/2 connection, as client-go's informers share theirs, opened all
/// at once: some from a list's resourceVersion (served in the connection's task), some from
/// "0" (the collection's objects first, in a task of their own, then back in the
/// connection's). The events of one write go out to them together, gathered into large
/// writes; each watcher still gets every event, in order, including events larger than what
/// one write gathers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_sharing_one_http2_connection_each_get_every_event_in_order() {
    const WATCHERS: usize = 40;
    const EXISTING: usize = 3;
    let h = Server::builder()
        .insecure_http()
        .static_tokens(tokens())
        .memory()
        .start()
        .await
        .unwrap();
    let addr = h.addr();
    for i in 0..EXISTING {
        assert_eq!(
            post(addr, CM, &configmap(&format!("old-{i}"))).await.status,
            201
        );
    }
    let stream = TcpStream::connect(addr).await.unwrap();
    let (send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let get = |path: String| {
        let mut send = send.clone();
        async move {
            let req = Request::builder()
                .uri(path)
                .header("authorization", format!("Bearer {ADMIN}"))
                .body(Full::new(Bytes::new()))
                .unwrap();
            let resp = send.send_request(req).await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            resp.into_body()
        }
    };
    let list = get(CM.to_string())
        .await
        .collect()
        .await
        .unwrap()
        .to_bytes();
    let list: Value = serde_json::from_slice(&list).unwrap();
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    // What a watch from "0" begins with: the namespace's ConfigMaps (kube-root-ca.crt too).
    let existing: Vec<String> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|cm| cm["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(existing.len(), EXISTING + 1, "{existing:?}");
    let watches = (0..WATCHERS).map(|i| {
        let from = if i % 2 == 0 { rv.as_str() } else { "0" };
        get(format!("{CM}?watch=true&resourceVersion={from}"))
    });
    let watches = futures::future::join_all(watches).await;

    // Small events, and events larger than what one write gathers (64 KiB).
    let mut written = Vec::new();
    for i in 0..12 {
        let name = format!("new-{i}");
        let mut cm = configmap(&name);
        if i % 4 == 3 {
            cm["data"] = json!({ "big": "x".repeat(100 * 1024) });
        }
        assert_eq!(post(addr, CM, &cm).await.status, 201);
        written.push(name);
    }
    let mut readers = Vec::new();
    for (i, mut body) in watches.into_iter().enumerate() {
        let mut expected: Vec<String> = written.clone();
        if i % 2 == 1 {
            expected = existing.iter().cloned().chain(expected).collect();
        }
        readers.push(tokio::spawn(async move {
            let what = "every event reaches every watcher";
            let seen = added_names(&mut body, expected.len(), what).await;
            assert_eq!(seen, expected, "watcher {i}");
        }));
    }
    for r in readers {
        r.await.unwrap();
    }
    h.shutdown().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Shutdown while hostile requests are in flight

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_completes_within_5s_while_hostile_requests_are_in_flight() {
    let h = start().await; // kube's limits: 32 s headers, 60 s requests
    let addr = h.addr();
    let mut slow_headers = TcpStream::connect(addr).await.unwrap();
    slow_headers
        .write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut slow_body = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {CM} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{{\r\n"
    );
    slow_body.write_all(head.as_bytes()).await.unwrap();
    let mut watch = open_watch(addr, "").await;
    tokio::time::timeout(Duration::from_secs(5), h.shutdown())
        .await
        .expect("shutdown within 5 s")
        .unwrap();
    // Every connection was ended.
    for s in [&mut slow_headers, &mut slow_body, &mut watch] {
        read_until_closed(s, Duration::from_secs(5)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// 6. Limits kube enforces

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configmaps_and_secrets_over_1_mib_of_data_are_422() {
    let h = start().await;
    let addr = h.addr();
    let half = "x".repeat(600 * 1024);
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"},
        "data": {"a": half}, "binaryData": {"b": base64_of(&half)}});
    let s = post(addr, CM, &cm).await.status_failure(422, "Invalid");
    assert_eq!(
        s["message"],
        "ConfigMap \"big\" is invalid: []: Too long: may not be more than 1048576 bytes"
    );
    assert_eq!(s["details"]["causes"][0]["field"], "[]");
    let secrets = "/api/v1/namespaces/default/secrets";
    for (name, secret) in [
        (
            "data",
            json!({"data": {"a": base64_of(&half), "b": base64_of(&half)}}),
        ),
        (
            "stringdata",
            json!({"stringData": {"a": half.clone()}, "data": {"b": base64_of(&half)}}),
        ),
    ] {
        let mut secret = secret;
        secret["apiVersion"] = json!("v1");
        secret["kind"] = json!("Secret");
        secret["metadata"] = json!({"name": name});
        let s = post(addr, secrets, &secret)
            .await
            .status_failure(422, "Invalid");
        assert_eq!(
            s["message"],
            format!(
                "Secret \"{name}\" is invalid: data: Too long: may not be more than 1048576 bytes"
            ),
        );
    }
    // Exactly 1 MiB is fine, and stringData is stored as data.
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "max"},
        "data": {"a": "x".repeat(1 << 20)}});
    assert_eq!(post(addr, CM, &cm).await.status, StatusCode::CREATED);
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
        "stringData": {"user": "admin"}, "data": {"user": "b2xk", "pw": "cHc="}});
    let r = post(addr, secrets, &secret).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let s = r.json();
    assert_eq!(s["data"], json!({"user": "YWRtaW4=", "pw": "cHc="}));
    assert!(s.get("stringData").is_none(), "{s}");
    h.shutdown().await.unwrap();
}

fn base64_of(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_options_are_validated_as_kube_validates_them() {
    let h = start().await;
    let addr = h.addr();
    let body = serde_json::to_vec(&configmap("opts")).unwrap();
    let create = |query: String| {
        let body = body.clone();
        async move {
            call(
                addr,
                ADMIN,
                Method::POST,
                &format!("{CM}?{query}"),
                "application/json",
                body,
            )
            .await
        }
    };
    let manager = "m".repeat(129);
    let s = create(format!("fieldManager={manager}"))
        .await
        .status_failure(422, "Invalid");
    assert_eq!(
        s["message"],
        "CreateOptions.meta.k8s.io \"\" is invalid: fieldManager: Too long: may not be more than 128 bytes"
    );
    let s = create("fieldManager=a%07b".to_string())
        .await
        .status_failure(422, "Invalid");
    assert_eq!(
        s["message"],
        "CreateOptions.meta.k8s.io \"\" is invalid: fieldManager: Invalid value: \"a\\ab\": invalid character U+0007 (at position 1)"
    );
    let s = create("dryRun=Sometimes".to_string())
        .await
        .status_failure(422, "Invalid");
    assert_eq!(
        s["message"],
        "CreateOptions.meta.k8s.io \"\" is invalid: dryRun: Unsupported value: [\"Sometimes\"]: supported values: \"All\""
    );
    assert_eq!(
        create(format!("fieldManager={}", "m".repeat(128)))
            .await
            .status,
        StatusCode::CREATED
    );
    // A patch may force only when it applies.
    let r = call(
        addr,
        ADMIN,
        Method::PATCH,
        &format!("{CM}/opts?force=true"),
        "application/merge-patch+json",
        "{}",
    )
    .await;
    let s = r.status_failure(422, "Invalid");
    assert_eq!(
        s["message"],
        "PatchOptions.meta.k8s.io \"\" is invalid: force: Forbidden: may not be specified for non-apply patch"
    );
    // Out-of-range integers in list options are a 400.
    for q in ["timeoutSeconds=99999999999999999999", "limit=x"] {
        let r = call(addr, ADMIN, Method::GET, &format!("{CM}?{q}"), "", "").await;
        r.status_failure(400, "BadRequest");
    }
    h.shutdown().await.unwrap();
}

/// The largest timeout a watch may ask for is a watch that does not end by itself, served like
/// any other (a deadline computed past what the clock holds must not take the server down).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_with_the_largest_timeout_is_served_and_the_server_goes_on() {
    let h = start().await;
    let addr = h.addr();
    let mut watches = Vec::new();
    for q in [
        format!("timeoutSeconds={}", i64::MAX),
        format!("timeoutSeconds={}&allowWatchBookmarks=true", i64::MAX),
    ] {
        watches.push(open_watch(addr, &format!("&{q}")).await);
    }
    // The server still answers, and the watches see a change.
    let r = post(addr, CM, &configmap("seen")).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    for watch in &mut watches {
        let mut seen = Vec::new();
        let mut chunk = [0u8; 4096];
        while !String::from_utf8_lossy(&seen).contains("\"seen\"") {
            let n = tokio::time::timeout(Duration::from_secs(10), watch.read(&mut chunk))
                .await
                .expect("the watch sees the create within 10 s")
                .unwrap();
            assert!(n > 0, "the watch ended");
            seen.extend_from_slice(&chunk[..n]);
        }
    }
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cel_expressions_of_absurd_depth_are_refused_when_their_object_is_created() {
    let h = start().await;
    let addr = h.addr();
    let deep = format!("{}self.x{}", "(".repeat(5000), " == 1)".repeat(5000));
    let long_chain = format!("self.x{} == 1", " + 1".repeat(3000));
    for rule in [&deep, &long_chain] {
        let crd = json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
                "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                    "type": "object", "properties": {"spec": {"type": "object",
                        "properties": {"x": {"type": "integer"}},
                        "x-kubernetes-validations": [{"rule": rule}]}}}}}]}
        });
        let r = with_readyz_probe(
            addr,
            post(
                addr,
                "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                &crd,
            ),
        )
        .await;
        let s = r.status_failure(422, "Invalid");
        assert!(
            s["message"]
                .as_str()
                .unwrap()
                .contains("compilation failed"),
            "{s}"
        );
        assert!(
            s["message"].as_str().unwrap().contains("recursion limit"),
            "{s}"
        );
        let vap = json!({
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": "deep"},
            "spec": {"matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                        "operations": ["CREATE"], "resources": ["configmaps"]}]},
                "validations": [{"expression": rule}]}
        });
        let r = post(
            addr,
            "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies",
            &vap,
        )
        .await;
        let s = r.status_failure(422, "Invalid");
        assert!(
            s["message"]
                .as_str()
                .unwrap()
                .starts_with("ValidatingAdmissionPolicy.admissionregistration.k8s.io \"deep\" is invalid: spec.validations[0].expression: Invalid value: "),
            "{s}"
        );
    }
    h.shutdown().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// An X.509 v1 client certificate from a foreign CA

/// DER: one tag-length-value.
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 128 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

fn der_seq(parts: &[Vec<u8>]) -> Vec<u8> {
    der(0x30, &parts.concat())
}

/// A self-signed X.509 *version 1* certificate (no version field, no extensions) for CN=`cn`,
/// with an ECDSA P-256 key: (certificate PEM, key PEM). Go's TLS stack accepts such a
/// certificate in a handshake; webpki cannot parse it.
fn v1_certificate(cn: &str) -> (String, String) {
    use rcgen::{PublicKeyData, SigningKey};
    let key = rcgen::KeyPair::generate().unwrap();
    let ecdsa_sha256 = der(0x06, &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x02]);
    let alg = der_seq(&[ecdsa_sha256]);
    let name = der_seq(&[der(
        0x31,
        &der_seq(&[der(0x06, &[0x55, 0x04, 0x03]), der(0x0C, cn.as_bytes())]),
    )]);
    let validity = der_seq(&[der(0x17, b"250101000000Z"), der(0x17, b"491231235959Z")]);
    let tbs = der_seq(&[
        der(0x02, &[0x01]),
        alg.clone(),
        name.clone(),
        validity,
        name,
        key.subject_public_key_info(),
    ]);
    let signature = key.sign(&tbs).unwrap();
    let mut bits = vec![0u8];
    bits.extend(signature);
    let cert = der_seq(&[tbs, alg, der(0x03, &bits)]);
    let pem = |label: &str, bytes: &[u8]| {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            lines.join("\n")
        )
    };
    (pem("CERTIFICATE", &cert), key.serialize_pem())
}

/// Presents one certificate and key, whatever they are (rustls' own configuration refuses a
/// certificate it cannot parse; Go's TLS stack, kubectl's, sends it).
#[derive(Debug)]
struct Present(std::sync::Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for Present {
    fn resolve(
        &self,
        _hints: &[&[u8]],
        _schemes: &[rustls::SignatureScheme],
    ) -> Option<std::sync::Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_x509_v1_client_certificate_from_a_foreign_ca_is_401_not_a_tls_alert() {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use std::sync::Arc;
    let h = Server::builder().memory().start().await.unwrap();
    let (cert_pem, key_pem) = v1_certificate("mallory");
    let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap();
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let signing = rustls::crypto::ring::sign::any_supported_type(&key).unwrap();
    let certified = rustls::sign::CertifiedKey::new(vec![cert], signing);
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(h.ca_pem().as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_cert_resolver(Arc::new(Present(Arc::new(certified))));
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(h.addr()).await.unwrap();
    let mut tls = connector
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .expect("the handshake succeeds");
    let body = r#"{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}"#;
    let req = format!(
        "POST /apis/authentication.k8s.io/v1/selfsubjectreviews HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tls.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 401"), "{text}");
    assert!(text.contains(r#""reason":"Unauthorized""#), "{text}");
    h.shutdown().await.unwrap();
}

/// The body is read after authentication: a client nobody authenticates is answered 401 at
/// once, whatever body it announces, without the server waiting for (or holding) that body.
#[tokio::test]
async fn unauthenticated_requests_are_answered_before_their_body_is_read() {
    let h = start().await;
    let addr = h.addr();
    with_readyz_probe(addr, async {
        for declared in [1_000_000usize, 50_000_000] {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            let head = format!(
                "POST {CM} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer forged\r\nContent-Type: application/json\r\nContent-Length: {declared}\r\nConnection: close\r\n\r\n{{\"a\":"
            );
            stream.write_all(head.as_bytes()).await.unwrap();
            // The rest of the body never comes: the answer must not wait for it.
            let mut got = vec![0u8; 12];
            tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut got))
                .await
                .expect("answered without the body")
                .unwrap();
            assert_eq!(&got, b"HTTP/1.1 401", "{}", String::from_utf8_lossy(&got));
        }
    })
    .await;
    // An authenticated client still gets its body read, and its oversized one refused.
    let r = post(addr, CM, &configmap("read-after-authn")).await;
    assert_eq!(r.status, StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_sent_while_the_server_starts_is_answered_once_start_up_is_done() {
    // A port of our own (the server's address is known only once `start` returns).
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (reached, at_hold) = tokio::sync::oneshot::channel();
    // Start-up held at the controllers' first write (the default namespace's ServiceAccount),
    // after connections began to be accepted: its create says it got there, then waits until
    // the test lets it go.
    let reached = Arc::new(std::sync::Mutex::new(Some(reached)));
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let gate = release.clone();
    let store = HookedStore::new().before_create(move |key| {
        let (reached, gate) = (reached.clone(), gate.clone());
        Box::pin(async move {
            if key == "/registry/serviceaccounts/default/default" {
                if let Some(reached) = reached.lock().unwrap().take() {
                    let _ = reached.send(());
                }
                gate.acquire().await.unwrap().forget();
            }
        })
    });
    let starting = tokio::spawn(
        Server::builder()
            .listen(addr)
            .insecure_http()
            .static_tokens(tokens())
            .store(store.into_dyn())
            .start(),
    );
    at_hold.await.unwrap();
    let answer = send(
        addr,
        ADMIN,
        Method::GET,
        "/api/v1/namespaces/default/serviceaccounts/default",
        "application/json",
        Bytes::new(),
    )
    .await;
    tokio::pin!(answer);
    // Served now, it would be a 404: the ServiceAccount is not there yet.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut answer)
            .await
            .is_err(),
        "answered before start-up was done"
    );
    release.add_permits(1);
    let server = starting.await.unwrap().unwrap();
    let resp = answer.await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let sa: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(sa["metadata"]["name"], "default");
    server.shutdown().await.unwrap();
}
