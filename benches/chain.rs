//! A GET of one ConfigMap through the whole handler chain, in process (no TLS, no socket): what
//! kubox's own steps cost per request, finer than the network bench can tell. Twice: as `kubox
//! serve` runs (no request recorder), and as the test harness runs by default (recording).
//! `cargo bench -p kubox --bench chain`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use http::{Method, Request};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// The allocator `kubox serve` runs on.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CM: &str = "/api/v1/namespaces/default/configmaps";

fn chain(c: &mut Criterion) {
    get(c, "GET a ConfigMap through the chain", false);
    get(c, "GET a ConfigMap through the chain, recording", true);
}

fn get(c: &mut Criterion, name: &str, recording: bool) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let h = rt.block_on(async {
        let builder = kubox::Server::builder().memory();
        let builder = if recording {
            builder
        } else {
            builder.no_recorder()
        };
        let h = builder.start().await.expect("server starts");
        let body = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "bench"}, "data": {"k": "v".repeat(300)}});
        let req = Request::builder()
            .method(Method::POST)
            .uri(CM)
            .header("content-type", "application/json")
            .body(Bytes::from(serde_json::to_vec(&body).unwrap()))
            .unwrap();
        let resp = h.service().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), 201);
        h
    });
    let service = h.service();
    let path = format!("{CM}/bench");
    c.bench_function(name, |b| {
        b.to_async(&rt).iter(|| {
            let req = Request::builder()
                .method(Method::GET)
                .uri(path.as_str())
                .body(Bytes::new())
                .unwrap();
            let service = service.clone();
            async move {
                let resp = service.oneshot(req).await.unwrap();
                assert_eq!(resp.status(), 200);
                resp.into_body().collect().await.unwrap().to_bytes()
            }
        })
    });
}

criterion_group!(benches, chain);
criterion_main!(benches);
