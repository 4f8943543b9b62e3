//! JSON vs Kubernetes protobuf answers, in process (through the server's tower service, no
//! socket): a server holding `--pods` Pods (two containers, probes, resources, labels,
//! managedFields), then for each encoding
//!
//! - **GET** one Pod, `--rounds` times: mean time and answer size;
//! - **LIST** every Pod, `--rounds / 10` times: mean time and size;
//! - **watch** from resourceVersion 0: time until the initial ADDED event of every Pod has
//!   arrived, and the bytes streamed.
//!
//! ```sh
//! CARGO_TARGET_DIR=/work/target-bench cargo bench -p kubox-bench --bench encoding
//! cargo bench -p kubox-bench --bench encoding -- --pods 500 --rounds 2000
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use kubox::{Server, ServerHandle};
use serde_json::{json, Value};
use tower::ServiceExt;

const JSON: &str = "application/json";
const PROTOBUF: &str = "application/vnd.kubernetes.protobuf, application/json";

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(run(arg("--pods", 500), arg("--rounds", 2000)));
}

fn pod(i: usize) -> Value {
    let container = |name: &str, image: &str| {
        json!({"name": name, "image": image,
               "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
               "env": [{"name": "MODE", "value": "production"}, {"name": "INDEX", "value": i.to_string()}],
               "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                             "limits": {"cpu": "500m", "memory": "256Mi"}},
               "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 5},
               "livenessProbe": {"tcpSocket": {"port": 8080}, "initialDelaySeconds": 10}})
    };
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": format!("pod-{i:05}"),
                        "labels": {"app": "web", "tier": "frontend", "index": i.to_string()},
                        "annotations": {"example.com/owner": "team-a"}},
           "spec": {"containers": [container("web", "nginx:1.25"), container("sidecar", "envoy:1.30")],
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "web", "effect": "NoSchedule"}]}})
}

async fn call(
    h: &ServerHandle,
    method: Method,
    path: &str,
    accept: &str,
    body: Bytes,
) -> (StatusCode, Bytes) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("accept", accept)
        .header("content-type", JSON)
        .header("user-agent", "bench")
        .body(body)
        .unwrap();
    let resp = h.service().oneshot(req).await.unwrap();
    let status = resp.status();
    (status, resp.into_body().collect().await.unwrap().to_bytes())
}

/// Counts the frames of a watch body as its chunks arrive: JSON lines, or length-prefixed
/// protobuf events (each chunk is looked at once).
#[derive(Default)]
struct Frames {
    buf: Vec<u8>,
    at: usize,
    count: usize,
}

impl Frames {
    fn push(&mut self, data: &[u8], protobuf: bool) {
        if !protobuf {
            self.count += data.iter().filter(|b| **b == b'\n').count();
            return;
        }
        self.buf.extend_from_slice(data);
        while self.at + 4 <= self.buf.len() {
            let b = &self.buf[self.at..];
            let len = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
            if self.at + 4 + len > self.buf.len() {
                break;
            }
            self.at += 4 + len;
            self.count += 1;
        }
    }
}

async fn watch_initial(h: &ServerHandle, accept: &str, pods: usize) -> (Duration, usize) {
    let protobuf = accept != JSON;
    let start = Instant::now();
    let req = Request::builder()
        .uri("/api/v1/namespaces/bench/pods?watch=true&resourceVersion=0")
        .header("accept", accept)
        .body(Bytes::new())
        .unwrap();
    let mut body = h.service().oneshot(req).await.unwrap().into_body();
    let mut frames = Frames::default();
    let mut bytes = 0;
    while frames.count < pods {
        let frame = body.frame().await.unwrap().unwrap();
        if let Ok(data) = frame.into_data() {
            bytes += data.len();
            frames.push(&data, protobuf);
        }
    }
    (start.elapsed(), bytes)
}

async fn run(pods: usize, rounds: usize) {
    let h = Server::builder().memory().start().await.unwrap();
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}});
    call(
        &h,
        Method::POST,
        "/api/v1/namespaces",
        JSON,
        Bytes::from(ns.to_string()),
    )
    .await;
    for i in 0..pods {
        let (s, _) = call(
            &h,
            Method::POST,
            "/api/v1/namespaces/bench/pods",
            JSON,
            Bytes::from(pod(i).to_string()),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED);
    }
    h.settled().await;
    println!(
        "{pods} Pods; GET × {rounds}, LIST × {}",
        (rounds / 10).max(1)
    );
    println!("| | JSON | protobuf |");
    println!("|---|---|---|");
    let mut rows: Vec<(String, String, String)> = Vec::new();
    let mut get = Vec::new();
    let mut list = Vec::new();
    let mut watch = Vec::new();
    for accept in [JSON, PROTOBUF] {
        let one = "/api/v1/namespaces/bench/pods/pod-00007";
        let (_, sample) = call(&h, Method::GET, one, accept, Bytes::new()).await;
        let start = Instant::now();
        for _ in 0..rounds {
            call(&h, Method::GET, one, accept, Bytes::new()).await;
        }
        get.push((start.elapsed() / rounds as u32, sample.len()));
        let n = (rounds / 10).max(1);
        let all = "/api/v1/namespaces/bench/pods";
        let (_, sample) = call(&h, Method::GET, all, accept, Bytes::new()).await;
        let start = Instant::now();
        for _ in 0..n {
            call(&h, Method::GET, all, accept, Bytes::new()).await;
        }
        list.push((start.elapsed() / n as u32, sample.len()));
        watch.push(watch_initial(&h, accept, pods).await);
    }
    rows.push((
        "GET one Pod: mean, size".into(),
        format!("{:.1} µs, {} B", get[0].0.as_secs_f64() * 1e6, get[0].1),
        format!("{:.1} µs, {} B", get[1].0.as_secs_f64() * 1e6, get[1].1),
    ));
    rows.push((
        format!("LIST {pods} Pods: mean, size"),
        format!(
            "{:.2} ms, {} KiB",
            list[0].0.as_secs_f64() * 1e3,
            list[0].1 / 1024
        ),
        format!(
            "{:.2} ms, {} KiB",
            list[1].0.as_secs_f64() * 1e3,
            list[1].1 / 1024
        ),
    ));
    rows.push((
        format!("watch from 0, {pods} initial events: time, bytes"),
        format!(
            "{:.2} ms, {} KiB",
            watch[0].0.as_secs_f64() * 1e3,
            watch[0].1 / 1024
        ),
        format!(
            "{:.2} ms, {} KiB",
            watch[1].0.as_secs_f64() * 1e3,
            watch[1].1 / 1024
        ),
    ));
    for (what, j, p) in rows {
        println!("| {what} | {j} | {p} |");
    }
    h.shutdown().await.unwrap();
}
