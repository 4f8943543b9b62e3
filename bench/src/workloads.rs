//! Section 10: workloads on simulated nodes. (1) A Deployment of many replicas from its create
//! to every pod Running and Ready (the Deployment's `availableReplicas`), on `--nodes`;
//! (2) the process's CPU while those pods run and nothing changes (timers only: lease renewals
//! every 10 s per node).

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use serde_json::json;

use crate::http::{ensure_namespace, Conn};
use crate::kubox::{Kubox, Storage};
use crate::stats::{ms, Table};
use crate::Result;

pub struct Options {
    /// Replicas of the Deployment.
    pub replicas: usize,
    /// Simulated nodes.
    pub nodes: usize,
    /// How long the idle CPU is measured.
    pub idle: Duration,
}

const NS: &str = "bench-workloads";

pub async fn run(bin: &Path, storages: &[Storage], opts: &Options) -> Result<()> {
    println!("## 10. Workloads on simulated nodes");
    println!(
        "  A Deployment of {} replicas on {} simulated nodes: create → every pod Running and Ready \
         (status.availableReplicas); then the CPU used while they run, idle, over {:?}.\n",
        opts.replicas, opts.nodes, opts.idle
    );
    let mut table = Table::new(&["storage", "create → available", "pods Running", "idle CPU"]);
    for &storage in storages {
        let kubox = Kubox::start_with(bin, storage, &["--nodes".into(), opts.nodes.to_string()])?;
        let addr = kubox.addr();
        ensure_namespace(addr, NS).await?;
        let mut conn = Conn::connect(addr).await?;
        let deployment = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "wide"},
            "spec": {
                "replicas": opts.replicas,
                "selector": {"matchLabels": {"app": "wide"}},
                "template": {"metadata": {"labels": {"app": "wide"}},
                    "spec": {"containers": [{"name": "c", "image": "nginx"}]}},
            },
        });
        let path = format!("/apis/apps/v1/namespaces/{NS}/deployments");
        let began = Instant::now();
        let (status, body) = conn
            .call(
                Method::POST,
                &path,
                Some(Bytes::from(deployment.to_string())),
            )
            .await?;
        if !status.is_success() {
            return Err(format!("create: {status} {}", String::from_utf8_lossy(&body)).into());
        }
        // Polled every 5 ms: the figure is within 5 ms of the moment.
        let took = loop {
            let d = conn
                .json(Method::GET, &format!("{path}/wide"), None)
                .await?;
            if d["status"]["availableReplicas"].as_u64() == Some(opts.replicas as u64) {
                break began.elapsed();
            }
            if began.elapsed() > Duration::from_secs(300) {
                return Err(format!("not available after 300 s: {}", d["status"]).into());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let pods = conn
            .json(
                Method::GET,
                &format!("/api/v1/namespaces/{NS}/pods?fieldSelector=status.phase%3DRunning"),
                None,
            )
            .await?;
        let running = pods["items"].as_array().map_or(0, Vec::len);
        let before = kubox.cpu()?;
        tokio::time::sleep(opts.idle).await;
        let idle = kubox.cpu()?.saturating_sub(before);
        table.row(vec![
            storage.name().to_string(),
            ms(took),
            running.to_string(),
            format!(
                "{} ({:.2}% of one core)",
                ms(idle),
                idle.as_secs_f64() * 100.0 / opts.idle.as_secs_f64()
            ),
        ]);
    }
    table.print();
    println!("  (aims: create → available < 1 s for 1,000 replicas; idle CPU ≈ 0)\n");
    Ok(())
}
