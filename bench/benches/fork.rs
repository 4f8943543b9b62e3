//! Snapshot and fork, in process: a seed server holding `--objects` ConfigMaps and 20 CRDs
//! (the three CRDs of `tests/data/crds` — among them the 3,541-line Workload CRD with 32 CEL
//! rules — each under several groups), one snapshot of it, then `--forks` servers started from
//! it one after another and kept running:
//!
//! - **fork → ready**: `Server::builder().from_snapshot(&snap).start()` until it returns (the
//!   server is serving: bootstrap checked, CRDs loaded and established, controllers settled);
//!   p50 / p99 / max;
//! - **memory per fork**: resident memory with every fork running, minus before the first,
//!   divided by the forks (Linux `/proc/self/statm`);
//! - **snapshot**: `handle.snapshot()` of the seed, and the file form's size.
//!
//! ```sh
//! CARGO_TARGET_DIR=/work/target-bench cargo bench -p kubox-bench --bench fork
//! cargo bench -p kubox-bench --bench fork -- --objects 10000 --forks 20 --threads 2
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use kubox::{Server, ServerHandle};
use serde_json::{json, Value};
use tower::ServiceExt;

struct Options {
    objects: usize,
    forks: usize,
    threads: usize,
}

fn options() -> Options {
    let mut o = Options {
        objects: 10_000,
        forks: 20,
        threads: 2,
    };
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < args.len() {
        let value = || args.get(i + 1).and_then(|v| v.parse::<usize>().ok());
        match args[i].as_str() {
            "--objects" => o.objects = value().expect("--objects N"),
            "--forks" => o.forks = value().expect("--forks N").max(1),
            "--threads" => o.threads = value().expect("--threads N").max(1),
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
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(o.threads)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(run(o));
}

async fn request(h: &ServerHandle, method: Method, path: &str, body: Bytes) -> (StatusCode, Bytes) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(body)
        .unwrap();
    let resp = h.service().oneshot(req).await.unwrap();
    let status = resp.status();
    (status, resp.into_body().collect().await.unwrap().to_bytes())
}

async fn post_ok(h: &ServerHandle, path: &str, obj: &Value) {
    let (status, body) = request(h, Method::POST, path, Bytes::from(obj.to_string())).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "POST {path}: {}",
        String::from_utf8_lossy(&body)
    );
}

/// The test data CRDs, each under `copies` groups: `copies * 3` CRDs.
fn crds(copies: usize) -> Vec<Value> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/crds");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let base: Vec<Value> = files
        .iter()
        .map(|p| serde_yaml::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
        .collect();
    let mut out = Vec::new();
    for i in 0..copies {
        for crd in &base {
            let mut crd = crd.clone();
            let group = format!("g{i}.{}", crd["spec"]["group"].as_str().unwrap());
            let plural = crd["spec"]["names"]["plural"].as_str().unwrap().to_string();
            crd["spec"]["group"] = json!(group);
            crd["metadata"]["name"] = json!(format!("{plural}.{group}"));
            out.push(crd);
        }
    }
    out
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

fn pct(d: &mut [Duration], q: f64) -> String {
    d.sort_unstable();
    let i = ((d.len() as f64 - 1.0) * q).round() as usize;
    format!("{:.2} ms", d[i.min(d.len() - 1)].as_secs_f64() * 1e3)
}

async fn run(o: Options) {
    let seed = Server::builder()
        .memory()
        .start()
        .await
        .expect("seed starts");
    let all = crds(7);
    for crd in all.iter().take(20) {
        post_ok(
            &seed,
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            crd,
        )
        .await;
    }
    let t = Instant::now();
    let path = "/api/v1/namespaces/default/configmaps";
    for i in 0..o.objects {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("cm-{i}"), "labels": {"app": "bench", "i": i.to_string()}},
            "data": {"config.yaml": "key: value\nlist: [1, 2, 3]\n", "n": i.to_string()}});
        post_ok(&seed, path, &cm).await;
    }
    eprintln!("seeded {} ConfigMaps in {:?}", o.objects, t.elapsed());
    let t = Instant::now();
    let snap = seed.snapshot().await.unwrap();
    let took = t.elapsed();
    let file = snap.to_bytes().len();
    seed.shutdown().await.unwrap();
    println!(
        "# snapshot and fork in process ({} runtime threads): {} keys at revision {}, 20 CRDs",
        o.threads,
        snap.len(),
        snap.revision()
    );
    println!(
        "  snapshot of the seed: {:.2} ms; file form: {:.1} MiB",
        took.as_secs_f64() * 1e3,
        file as f64 / (1024.0 * 1024.0)
    );
    let before = rss_bytes();
    let mut times = Vec::new();
    let mut forks = Vec::new();
    for _ in 0..o.forks {
        let t = Instant::now();
        let fork = Server::builder()
            .from_snapshot(&snap)
            .start()
            .await
            .expect("fork starts");
        times.push(t.elapsed());
        forks.push(fork);
    }
    // Every fork serves what the seed held.
    for fork in &forks {
        let (status, _) = request(fork, Method::GET, &format!("{path}/cm-0"), Bytes::new()).await;
        assert_eq!(status, StatusCode::OK);
    }
    let after = rss_bytes();
    println!(
        "  fork → ready ({} forks): p50 {}, p99 {}, max {}",
        o.forks,
        pct(&mut times, 0.5),
        pct(&mut times, 0.99),
        pct(&mut times, 1.0)
    );
    println!(
        "  memory per running fork: {:.1} MiB (RSS {:.0} → {:.0} MiB)",
        (after.saturating_sub(before)) as f64 / o.forks as f64 / (1024.0 * 1024.0),
        before as f64 / (1024.0 * 1024.0),
        after as f64 / (1024.0 * 1024.0)
    );
    for fork in forks {
        fork.shutdown().await.unwrap();
    }
}
