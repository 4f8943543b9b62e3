//! Section 8: server-side apply against merge patch and update. Each client owns one ConfigMap
//! (10, 50 and 500 data keys in turn) and sends the same content again and again, closed loop: (a) a JSON merge
//! patch, (b) a server-side apply by one field manager, (c) a PUT of the object (no
//! resourceVersion). The content never changes, so every request is a no-op write: what is
//! measured is what the write path spends finding that out (for apply: the merge, the field
//! sets and the managedFields).

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use serde_json::json;

use crate::http::{configmaps, ensure_namespace, Conn};
use crate::kubox::{Kubox, Storage};
use crate::stats::{thousands, Table};
use crate::Result;

pub struct Options {
    /// Concurrent clients (one connection and one object each).
    pub clients: usize,
    /// Length of each measured phase.
    pub phase_time: Duration,
}

const NS: &str = "bench-apply";

fn object(name: &str, keys: usize) -> serde_json::Value {
    let data: serde_json::Map<String, serde_json::Value> = (0..keys)
        .map(|i| (format!("key-{i:02}"), json!(format!("value-{i:02}"))))
        .collect();
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data})
}

#[derive(Clone, Copy)]
enum Mode {
    MergePatch,
    Apply,
    Update,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::MergePatch => "(a) merge patch",
            Mode::Apply => "(b) server-side apply",
            Mode::Update => "(c) update (PUT)",
        }
    }
}

pub async fn run(bin: &Path, storage: Storage, opts: &Options) -> Result<()> {
    println!("## 8. Server-side apply, merge patch and update of an unchanged ConfigMap");
    println!(
        "  {} clients, one object each, closed loop, {:?} per phase, storage {}.\n",
        opts.clients,
        opts.phase_time,
        storage.name()
    );
    let mut table = Table::new(&["keys", "mode", "req/s", "errors"]);
    for keys in [10usize, 50, 500] {
        let kubox = Kubox::start_with(bin, storage, &[])?;
        let addr = kubox.addr();
        ensure_namespace(addr, NS).await?;
        let mut conn = Conn::connect(addr).await?;
        for c in 0..opts.clients {
            conn.json(
                Method::POST,
                &configmaps(NS),
                Some(Bytes::from(object(&format!("cm-{c}"), keys).to_string())),
            )
            .await?;
        }
        for mode in [Mode::MergePatch, Mode::Apply, Mode::Update] {
            let deadline = Instant::now() + opts.phase_time;
            let mut tasks = Vec::new();
            for c in 0..opts.clients {
                tasks.push(tokio::spawn(async move {
                    let mut conn = Conn::connect(addr).await?;
                    let name = format!("cm-{c}");
                    let body = Bytes::from(object(&name, keys).to_string());
                    let (method, path, ct) = match mode {
                        Mode::MergePatch => (
                            Method::PATCH,
                            format!("{}/{name}", configmaps(NS)),
                            "application/merge-patch+json",
                        ),
                        Mode::Apply => (
                            Method::PATCH,
                            format!("{}/{name}?fieldManager=bench&force=true", configmaps(NS)),
                            "application/apply-patch+yaml",
                        ),
                        Mode::Update => (
                            Method::PUT,
                            format!("{}/{name}", configmaps(NS)),
                            "application/json",
                        ),
                    };
                    let (mut ok, mut errors) = (0u64, 0u64);
                    while Instant::now() < deadline {
                        match conn
                            .call_typed(method.clone(), &path, body.clone(), ct)
                            .await
                        {
                            Ok((s, _)) if s.is_success() => ok += 1,
                            _ => errors += 1,
                        }
                    }
                    Ok::<_, crate::Error>((ok, errors))
                }));
            }
            let (mut ok, mut errors) = (0u64, 0u64);
            for t in tasks {
                let (o, e) = t.await.map_err(|e| e.to_string())??;
                ok += o;
                errors += e;
            }
            let rate = ok as f64 / opts.phase_time.as_secs_f64();
            table.row(vec![
                keys.to_string(),
                mode.name().to_string(),
                thousands(rate as u64),
                errors.to_string(),
            ]);
        }
        drop(kubox);
    }
    table.print();
    Ok(())
}
