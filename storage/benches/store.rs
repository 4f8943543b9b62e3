//! Throughput of both backends: create, get, CAS update (1 and 64 concurrent clients), a list of
//! 10,000 keys, and watch fan-out (1,000 watchers × 10,000 events).
//!
//! Run with `cargo bench -p kubox-storage` (sample sizes and times are kept small on purpose).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use futures::StreamExt;
use kubox_storage::memory::{MemoryOptions, MemoryStore};
use kubox_storage::sled_store::{SledOptions, SledStore};
use kubox_storage::{ListOptions, Store};
use tokio::runtime::Runtime;

const VALUE: &[u8] = &[b'x'; 256];
const GET_KEYS: usize = 10_000;
const WATCHERS: usize = 1_000;
const EVENTS: usize = 10_000;

static ROUND: AtomicU64 = AtomicU64::new(0);

#[derive(Clone, Copy, Debug)]
enum Backend {
    Memory,
    Sled,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Memory => "memory",
            Backend::Sled => "sled",
        }
    }

    /// A fresh store (and the directory to keep alive for sled).
    fn open(self, watch_backlog: usize) -> (Arc<dyn Store>, Option<tempfile::TempDir>) {
        match self {
            Backend::Memory => {
                let opts = MemoryOptions {
                    watch_backlog,
                    ..MemoryOptions::default()
                };
                (Arc::new(MemoryStore::with_options(opts)), None)
            }
            Backend::Sled => {
                let dir = tempfile::tempdir().unwrap();
                let opts = SledOptions {
                    watch_backlog,
                    ..SledOptions::default()
                };
                (
                    Arc::new(SledStore::open_with(dir.path(), opts).unwrap()),
                    Some(dir),
                )
            }
        }
    }

    /// Operations per measured batch for writes with `clients` concurrent clients.
    fn write_batch(self, clients: usize) -> usize {
        match (self, clients) {
            (Backend::Memory, _) => 64_000,
            (Backend::Sled, 1) => 500,
            (Backend::Sled, _) => 12_800,
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Create,
    Get,
    Cas,
}

/// `total` split over `parts`: the share of part `i`.
fn share(total: usize, parts: usize, i: usize) -> usize {
    total / parts + usize::from(i < total % parts)
}

/// Run `total` operations of `kind` split over `clients` concurrent tasks; return the elapsed time.
/// Creates use keys `/bench/create/{round}/{client}/{i}`.
async fn batch(
    store: &Arc<dyn Store>,
    keys: &Arc<Vec<String>>,
    kind: Kind,
    clients: usize,
    total: usize,
    round: u64,
) -> Duration {
    let value = Bytes::from_static(VALUE);
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (s, keys, value) = (store.clone(), keys.clone(), value.clone());
            let per_client = share(total, clients, c);
            tokio::spawn(async move {
                match kind {
                    Kind::Create => {
                        for i in 0..per_client {
                            s.create(&format!("/bench/create/{round}/{c}/{i}"), value.clone())
                                .await
                                .unwrap();
                        }
                    }
                    Kind::Get => {
                        for i in 0..per_client {
                            let key = &keys[(c * 7919 + i * 31) % keys.len()];
                            s.get(key, None).await.unwrap();
                        }
                    }
                    Kind::Cas => {
                        let key = format!("/bench/cas/{c}");
                        let mut rev = match s.get(&key, None).await {
                            Ok(kv) => kv.mod_revision,
                            Err(_) => s.create(&key, value.clone()).await.unwrap().mod_revision,
                        };
                        for _ in 0..per_client {
                            rev = s
                                .update(&key, value.clone(), Some(rev))
                                .await
                                .unwrap()
                                .mod_revision;
                        }
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    start.elapsed()
}

/// Delete what `batch` created in `round`, with 64 concurrent clients.
async fn remove_created(store: &Arc<dyn Store>, clients: usize, total: usize, round: u64) {
    let keys: Vec<String> = (0..clients)
        .flat_map(|c| {
            (0..share(total, clients, c)).map(move |i| format!("/bench/create/{round}/{c}/{i}"))
        })
        .collect();
    let keys = Arc::new(keys);
    let tasks: Vec<_> = (0..64)
        .map(|t| {
            let (s, keys) = (store.clone(), keys.clone());
            tokio::spawn(async move {
                for key in keys.iter().skip(t).step_by(64) {
                    s.delete(key, None).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

fn point_ops(c: &mut Criterion, rt: &Runtime) {
    for backend in [Backend::Memory, Backend::Sled] {
        let (store, _dir) = backend.open(10_000);
        let keys: Arc<Vec<String>> = Arc::new(
            (0..GET_KEYS)
                .map(|i| format!("/bench/get/{i:05}"))
                .collect(),
        );
        rt.block_on(async {
            let value = Bytes::from_static(VALUE);
            let tasks: Vec<_> = keys
                .chunks(GET_KEYS / 50)
                .map(|chunk| {
                    let (s, chunk, value) = (store.clone(), chunk.to_vec(), value.clone());
                    tokio::spawn(async move {
                        for k in chunk {
                            s.create(&k, value.clone()).await.unwrap();
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        });
        for kind in [Kind::Create, Kind::Get, Kind::Cas] {
            let mut group =
                c.benchmark_group(format!("{}/{kind:?}", backend.name()).to_lowercase());
            for clients in [1, 64] {
                let total = match kind {
                    Kind::Get => 128_000,
                    _ => backend.write_batch(clients),
                };
                group.throughput(Throughput::Elements(total as u64));
                group.bench_with_input(
                    BenchmarkId::new("clients", clients),
                    &clients,
                    |b, &clients| {
                        b.to_async(rt).iter_custom(|iters| {
                            let (store, keys) = (store.clone(), keys.clone());
                            async move {
                                let mut elapsed = Duration::ZERO;
                                for _ in 0..iters {
                                    let round = ROUND.fetch_add(1, Ordering::Relaxed);
                                    elapsed +=
                                        batch(&store, &keys, kind, clients, total, round).await;
                                    // Keep the store's size and memory steady (not measured).
                                    if let Kind::Create = kind {
                                        remove_created(&store, clients, total, round).await;
                                    }
                                    let current = store.current_revision().await.unwrap();
                                    store.compact(current).await.unwrap();
                                }
                                elapsed
                            }
                        });
                    },
                );
            }
            group.finish();
        }
        rt.block_on(store.close()).unwrap();
    }
}

fn list(c: &mut Criterion, rt: &Runtime) {
    let mut group = c.benchmark_group("list_10k");
    group.throughput(Throughput::Elements(10_000));
    for backend in [Backend::Memory, Backend::Sled] {
        let (store, _dir) = backend.open(10_000);
        rt.block_on(async {
            let tasks: Vec<_> = (0..50)
                .map(|t| {
                    let s = store.clone();
                    tokio::spawn(async move {
                        for i in 0..200 {
                            s.create(
                                &format!("/bench/list/{t:02}/{i:03}"),
                                Bytes::from_static(VALUE),
                            )
                            .await
                            .unwrap();
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        });
        group.bench_function(backend.name(), |b| {
            b.to_async(rt).iter(|| {
                let store = store.clone();
                async move {
                    let list = store
                        .list("/bench/list/", ListOptions::default())
                        .await
                        .unwrap();
                    assert_eq!(list.items.len(), 10_000);
                }
            });
        });
        rt.block_on(store.close()).unwrap();
    }
    group.finish();
}

/// 1,000 watchers each receive all of 10,000 events written by `writers` concurrent writers.
async fn fan_out(store: &Arc<dyn Store>, writers: usize) -> Duration {
    let round = ROUND.fetch_add(1, Ordering::Relaxed);
    let prefix = format!("/bench/fanout/{round}/");
    let start = Instant::now();
    let mut watchers = Vec::with_capacity(WATCHERS);
    for _ in 0..WATCHERS {
        let mut w = store.watch(&prefix, 0).await.unwrap();
        watchers.push(tokio::spawn(async move {
            let mut seen = 0;
            while seen < EVENTS {
                w.next().await.unwrap().unwrap();
                seen += 1;
            }
        }));
    }
    let tasks: Vec<_> = (0..writers)
        .map(|t| {
            let (s, prefix) = (store.clone(), prefix.clone());
            let per_writer = share(EVENTS, writers, t);
            tokio::spawn(async move {
                for i in 0..per_writer {
                    s.create(&format!("{prefix}{t}/{i}"), Bytes::from_static(VALUE))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    for w in watchers {
        w.await.unwrap();
    }
    start.elapsed()
}

fn watch_fan_out(c: &mut Criterion, rt: &Runtime) {
    let mut group = c.benchmark_group("watch_fan_out");
    group.throughput(Throughput::Elements((WATCHERS * EVENTS) as u64));
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(5));
    // One writer against sled would only measure 10,000 serial fsyncs; sled runs with 64.
    for (backend, writers) in [
        (Backend::Memory, 1),
        (Backend::Memory, 64),
        (Backend::Sled, 64),
    ] {
        let (store, _dir) = backend.open(2 * EVENTS);
        group.bench_with_input(
            BenchmarkId::new(backend.name(), format!("writers/{writers}")),
            &writers,
            |b, &writers| {
                b.to_async(rt).iter_custom(|iters| {
                    let store = store.clone();
                    async move {
                        let mut elapsed = Duration::ZERO;
                        for _ in 0..iters {
                            elapsed += fan_out(&store, writers).await;
                            let current = store.current_revision().await.unwrap();
                            store.compact(current).await.unwrap();
                        }
                        elapsed
                    }
                });
            },
        );
        rt.block_on(store.close()).unwrap();
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    point_ops(c, &rt);
    list(c, &rt);
    watch_fan_out(c, &rt);
}

criterion_group! {
    name = store;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = benches
}
criterion_main!(store);
