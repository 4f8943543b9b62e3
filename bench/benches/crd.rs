//! Custom resources with a large schema, in process: requests go through the server's tower
//! service (`ServerHandle::service()`, no socket), memory storage.
//!
//! 1. **registration**: from the POST of a CRD to (a) its answer, (b) `Established=True` in a
//!    watch on CRDs opened before the POST, (c) the first successful create of one of its custom
//!    resources; p50/p99 over `--runs` CRDs, for a small CRD and for the ~3,500-line Workload CRD
//!    of `tests/data/crds` (32 CEL rules).
//! 2. **validated creates**: `--creates` Workload objects (the first sample of
//!    `tests/data/cr-samples.yaml`: defaulting, pruning, schema validation, 45 CEL rule
//!    evaluations each) POSTed by `--clients` concurrent tasks; the same objects under a schema
//!    that only preserves unknown fields as the baseline.
//!
//! ```sh
//! CARGO_TARGET_DIR=/work/target-bench cargo bench -p kubox-bench --bench crd
//! cargo bench -p kubox-bench --bench crd -- --runs 50 --creates 5000 --clients 8 --threads 2
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use kubox::{Server, ServerHandle};
use serde::Deserialize;
use serde_json::{json, Value};
use tower::ServiceExt;

const CRDS: &str = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";

struct Options {
    runs: usize,
    creates: usize,
    clients: usize,
    threads: usize,
}

fn options() -> Options {
    let mut o = Options {
        runs: 30,
        creates: 3000,
        clients: 8,
        threads: 2,
    };
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < args.len() {
        let value = || args.get(i + 1).and_then(|v| v.parse::<usize>().ok());
        match args[i].as_str() {
            "--runs" => o.runs = value().expect("--runs N").max(1),
            "--creates" => o.creates = value().expect("--creates N").max(1),
            "--clients" => o.clients = value().expect("--clients N").max(1),
            "--threads" => o.threads = value().expect("--threads N").max(1),
            // `cargo bench` passes `--bench`; anything else is not ours either.
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    o
}

fn main() {
    let o = options();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(o.threads)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run(o));
}

async fn run(o: Options) {
    println!(
        "# custom resources in process (memory storage, {} runtime threads); load average before: {}",
        o.threads,
        loadavg()
    );
    let h = Arc::new(
        // As the API tests run it: the serviceaccount controller off, the others on.
        Server::builder()
            .memory()
            .disable_controller(kubox::Controller::ServiceAccount)
            .start()
            .await
            .expect("server starts"),
    );
    let workloads = data_crds()
        .into_iter()
        .find(|c| c["spec"]["names"]["kind"] == "Workload")
        .expect("the Workload CRD");
    let sample = samples().remove(0);

    println!("\n## CRD create → answered / Established=True in a watch / first custom resource created ({} runs each)", o.runs);
    println!(
        "  {:<22} {:>19} {:>19} {:>19}",
        "CRD", "answered p50/p99", "Established p50/p99", "first CR p50/p99"
    );
    let small = small_crd();
    let small_obj = json!({"apiVersion": "v1", "kind": "Widget",
        "metadata": {"name": "w"}, "spec": {"size": 3, "color": "red"}});
    for (label, crd, obj) in [
        ("small (1 CEL rule)", &small, &small_obj),
        ("Workload (3,541 lines)", &workloads, &sample),
    ] {
        let mut answered = Vec::new();
        let mut established = Vec::new();
        let mut first = Vec::new();
        for i in 0..o.runs {
            let (a, e, f) = register_once(&h, crd, obj, &format!("r{i}")).await;
            answered.push(a);
            established.push(e);
            first.push(f);
        }
        println!(
            "  {label:<22} {:>19} {:>19} {:>19}",
            pair(&mut answered),
            pair(&mut established),
            pair(&mut first)
        );
    }
    println!("  (load average: {})", loadavg());

    println!(
        "\n## Validated creates: {} Workload objects, {} concurrent clients",
        o.creates, o.clients
    );
    let group = "apps.kubox.example";
    post_ok(&h, CRDS, &workloads).await;
    let path = format!("/apis/{group}/v1/namespaces/default/workloads");
    let (rate, lat) = creates(&h, &path, &sample, o.creates, o.clients, "wl").await;
    println!(
        "  Workload schema (45 CEL evaluations)   {rate:>6.0}/s   latency {}",
        pair(&mut lat.clone())
    );
    let mut open = workloads.clone();
    open["metadata"]["name"] = json!("workloads.open.kubox.example");
    open["spec"]["group"] = json!("open.kubox.example");
    open["spec"]["versions"][0]["schema"] = json!({"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}});
    post_ok(&h, CRDS, &open).await;
    let mut open_sample = sample.clone();
    open_sample["apiVersion"] = json!("open.kubox.example/v1");
    let (rate, lat) = creates(
        &h,
        "/apis/open.kubox.example/v1/namespaces/default/workloads",
        &open_sample,
        o.creates,
        o.clients,
        "wl",
    )
    .await;
    println!(
        "  same objects, no schema (baseline)     {rate:>6.0}/s   latency {}",
        pair(&mut lat.clone())
    );
    println!("  (load average: {})", loadavg());
}

/// One registration of `crd` under a fresh group: (answered, Established in a watch, first
/// custom resource created), each measured from the start of the POST.
async fn register_once(
    h: &Arc<ServerHandle>,
    crd: &Value,
    obj: &Value,
    tag: &str,
) -> (Duration, Duration, Duration) {
    let plural = crd["spec"]["names"]["plural"].as_str().unwrap();
    let version = crd["spec"]["versions"][0]["name"].as_str().unwrap();
    let group = format!("{tag}.bench.kubox.example");
    let name = format!("{plural}.{group}");
    let mut crd = crd.clone();
    crd["metadata"] = json!({"name": name});
    crd["spec"]["group"] = json!(group);
    let mut obj = obj.clone();
    obj["apiVersion"] = json!(format!("{group}/{version}"));

    // The watch is open (its response headers are back) before the POST starts.
    let watch = request(
        h,
        Method::GET,
        &format!("{CRDS}?watch=true&fieldSelector=metadata.name%3D{name}"),
        Bytes::new(),
    )
    .await;
    assert_eq!(watch.status(), StatusCode::OK);
    let (tx, rx) = tokio::sync::oneshot::channel();
    let watcher = tokio::spawn(async move {
        let mut body = watch.into_body();
        let mut buf = Vec::new();
        while let Some(Ok(frame)) = body.frame().await {
            let Ok(data) = frame.into_data() else {
                continue;
            };
            buf.extend_from_slice(&data);
            while let Some(end) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=end).collect();
                let Ok(ev) = serde_json::from_slice::<Value>(&line) else {
                    continue;
                };
                let established = ev["object"]["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Established" && c["status"] == "True");
                if established {
                    let _ = tx.send(Instant::now());
                    return;
                }
            }
        }
    });

    let start = Instant::now();
    post_ok(h, CRDS, &crd).await;
    let answered = start.elapsed();
    let path = format!("/apis/{group}/{version}/namespaces/default/{plural}");
    loop {
        let r = request(h, Method::POST, &path, Bytes::from(obj.to_string())).await;
        if r.status() == StatusCode::CREATED {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no custom resource created: {}",
            r.status()
        );
        tokio::task::yield_now().await;
    }
    let first = start.elapsed();
    let established = tokio::time::timeout(Duration::from_secs(10), rx)
        .await
        .expect("Established=True within 10 s")
        .expect("watch ended")
        .duration_since(start);
    watcher.abort();
    (answered, established, first)
}

/// `n` creates of `obj` (named `{prefix}-{i}`) by `clients` tasks: (creates/s, latencies).
async fn creates(
    h: &Arc<ServerHandle>,
    path: &str,
    obj: &Value,
    n: usize,
    clients: usize,
    prefix: &str,
) -> (f64, Vec<Duration>) {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..clients {
        let (h, path, obj, prefix) = (h.clone(), path.to_string(), obj.clone(), prefix.to_string());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            for i in (w..n).step_by(clients) {
                let mut obj = obj.clone();
                obj["metadata"]["name"] = json!(format!("{prefix}-{i}"));
                let t = Instant::now();
                let r = request(&h, Method::POST, &path, Bytes::from(obj.to_string())).await;
                lat.push(t.elapsed());
                assert_eq!(r.status(), StatusCode::CREATED);
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    (n as f64 / start.elapsed().as_secs_f64(), all)
}

async fn request(
    h: &ServerHandle,
    method: Method,
    path: &str,
    body: Bytes,
) -> http::Response<kubox::body::Body> {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(body)
        .unwrap();
    h.service().oneshot(req).await.unwrap()
}

async fn post_ok(h: &ServerHandle, path: &str, obj: &Value) {
    let r = request(h, Method::POST, path, Bytes::from(obj.to_string())).await;
    let status = r.status();
    if status != StatusCode::CREATED {
        let body = r.into_body().collect().await.unwrap().to_bytes();
        panic!("POST {path}: {status}: {}", String::from_utf8_lossy(&body));
    }
}

/// `p50 / p99` of some durations.
fn pair(d: &mut [Duration]) -> String {
    d.sort_unstable();
    let at = |q: f64| {
        let rank = ((q * d.len() as f64).ceil() as usize).clamp(1, d.len());
        d[rank - 1]
    };
    format!("{} / {}", ms(at(0.5)), ms(at(0.99)))
}

fn ms(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.0} µs")
    } else {
        format!("{:.1} ms", us / 1000.0)
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn small_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.small.kubox.example"},
        "spec": {
            "group": "small.kubox.example",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object",
                        "x-kubernetes-validations": [{"rule": "self.size <= 100", "message": "too big"}],
                        "properties": {
                            "size": {"type": "integer", "default": 1},
                            "color": {"type": "string", "enum": ["red", "green", "blue"]}}},
                    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}]
        }
    })
}

fn data_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data")
}

fn data_crds() -> Vec<Value> {
    let mut files: Vec<_> = std::fs::read_dir(data_dir().join("crds"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| serde_yaml::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
        .collect()
}

fn samples() -> Vec<Value> {
    let text = std::fs::read_to_string(data_dir().join("cr-samples.yaml")).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap())
        .collect()
}
