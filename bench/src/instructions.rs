//! Section 11: instructions, not seconds. `kubox serve` runs under valgrind's callgrind, which
//! counts the instructions every thread of the server executes: the same binary, flags and
//! requests give the same count whatever else the machine is doing, so two builds compare
//! where their wall-clock figures drown in the machine's noise. Each configuration is started
//! twice: once idle (start-up, then shutdown), once creating objects (small ConfigMaps, or Pods
//! of the size a Deployment's template gives one) one after another over one connection; the
//! difference, divided by the creates, is what one create costs — the request, its commit, and
//! whatever the controllers and caches do because of it.
//!
//! For the memory store only, in effect: sled's threads work by the clock (its flusher wakes
//! every half second), and under callgrind's slowdown their share of a run varies from one run
//! to the next by hundreds of millions of instructions; etcd's work is in another process.

use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::json;

use crate::http::{configmap, configmaps, Conn};
use crate::kubox::{Kubox, Storage};
use crate::stats::Table;
use crate::Result;

pub struct Options {
    /// Sequential creates in the measured run.
    pub creates: u64,
    /// Simulated node counts to run with (0: none), each a configuration of its own.
    pub nodes: Vec<usize>,
    /// Where to keep each run's profile (`callgrind.<storage>.<nodes>.<creates>.out`, with
    /// `.pod` before `.out` for Pods), if anywhere.
    pub keep: Option<PathBuf>,
    /// What the creates make, each a configuration of its own.
    pub kinds: Vec<Kind>,
}

/// What one counted create makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// A ConfigMap of about 400 bytes: two labels, three data entries.
    Configmap,
    /// A Pod of about 1.3 KiB, as a Deployment's template makes them: labels, a container
    /// with two ports, env, resources, two probes and a mount, a ConfigMap volume.
    Pod,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Configmap => "ConfigMap",
            Kind::Pod => "Pod",
        }
    }

    fn path(self) -> String {
        match self {
            Kind::Configmap => configmaps("default"),
            Kind::Pod => "/api/v1/namespaces/default/pods".to_string(),
        }
    }

    fn body(self, name: &str) -> Bytes {
        match self {
            Kind::Configmap => configmap(name, &[]),
            Kind::Pod => pod(name),
        }
    }
}

/// A Pod as a web Deployment's template would make it (no node runs it: with no simulated
/// nodes the scheduler finds none).
fn pod(name: &str) -> Bytes {
    let probe = |path: &str| {
        json!({"httpGet": {"path": path, "port": "http"}, "periodSeconds": 5,
               "initialDelaySeconds": 2})
    };
    let obj = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {"app": "web", "tier": "frontend", "pod-template-hash": "5d8c7b9f4"},
            "annotations": {"kubox.dev/bench": "instructions"},
        },
        "spec": {
            "containers": [{
                "name": "web",
                "image": "registry.example.com/web:1.27.3",
                "args": ["--port=8080", "--metrics-port=9090"],
                "ports": [
                    {"name": "http", "containerPort": 8080},
                    {"name": "metrics", "containerPort": 9090},
                ],
                "env": [
                    {"name": "MODE", "value": "production"},
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                ],
                "resources": {
                    "requests": {"cpu": "100m", "memory": "128Mi"},
                    "limits": {"memory": "256Mi"},
                },
                "readinessProbe": probe("/ready"),
                "livenessProbe": probe("/healthz"),
                "volumeMounts": [{"name": "config", "mountPath": "/etc/web"}],
            }],
            "volumes": [{"name": "config", "configMap": {"name": "web-config"}}],
        },
    });
    Bytes::from(obj.to_string())
}

pub async fn run(bin: &Path, storages: &[Storage], opts: &Options) -> Result<()> {
    println!("## 11. Instructions per create (valgrind's callgrind)");
    println!(
        "  `kubox serve` under `valgrind --tool=callgrind`: every thread's instructions, counted. \
         Idle = start-up to /readyz, then shutdown; with creates = the same plus {} creates of \
         the kind one after another over one connection. Repeatable for the same binary and \
         flags whatever the load, unlike the sections timed in seconds. Memory store only, in \
         effect: sled's threads work by the clock, so their share varies from run to run.\n",
        opts.creates
    );
    let version = Command::new("valgrind").arg("--version").output();
    if !version.is_ok_and(|o| o.status.success()) {
        return Err("the instructions section needs valgrind (Debian's valgrind package)".into());
    }
    let mut table = Table::new(&[
        "storage",
        "nodes",
        "kind",
        "idle",
        "with creates",
        "per create",
    ]);
    for &storage in storages {
        for &nodes in &opts.nodes {
            let keep = opts.keep.as_deref();
            let idle = count(bin, storage, nodes, None, keep).await?;
            for &kind in &opts.kinds {
                let loaded = count(bin, storage, nodes, Some((kind, opts.creates)), keep).await?;
                let per = loaded.saturating_sub(idle) / opts.creates.max(1);
                table.row(vec![
                    storage.name().to_string(),
                    nodes.to_string(),
                    kind.name().to_string(),
                    millions(idle),
                    millions(loaded),
                    format!("{:.1} k", per as f64 / 1e3),
                ]);
            }
        }
    }
    table.print();
    Ok(())
}

/// Instructions of one `kubox serve` run that makes `creates` creates of a kind (none: idle),
/// start to exit.
async fn count(
    bin: &Path,
    storage: Storage,
    nodes: usize,
    creates: Option<(Kind, u64)>,
    keep: Option<&Path>,
) -> Result<u64> {
    let out = tempfile::Builder::new()
        .prefix("kubox-bench-callgrind-")
        .tempdir()?;
    let file = out.path().join("callgrind.out");
    let launcher = [
        "valgrind".to_string(),
        "--tool=callgrind".to_string(),
        "--quiet".to_string(),
        format!("--callgrind-out-file={}", file.display()),
    ];
    let extra = if nodes > 0 {
        vec!["--nodes".to_string(), nodes.to_string()]
    } else {
        Vec::new()
    };
    let kubox = Kubox::start_under(&launcher, bin, storage, &extra)?;
    let mut conn = Conn::connect(kubox.addr()).await?;
    let (kind, creates) = creates.unwrap_or((Kind::Configmap, 0));
    let path = kind.path();
    for i in 0..creates {
        let body = kind.body(&format!("counted-{i}"));
        let (status, answer) = conn.call(Method::POST, &path, Some(body)).await?;
        if status != StatusCode::CREATED {
            return Err(
                format!("create {i}: {status} {}", String::from_utf8_lossy(&answer)).into(),
            );
        }
    }
    drop(conn);
    // SIGINT, and wait for the exit: callgrind writes its counts then.
    drop(kubox);
    let text = std::fs::read_to_string(&file)
        .map_err(|e| format!("no callgrind output at {}: {e}", file.display()))?;
    if let Some(dir) = keep {
        std::fs::create_dir_all(dir)?;
        let suffix = if kind == Kind::Pod { ".pod" } else { "" };
        let name = format!("callgrind.{}.{nodes}.{creates}{suffix}.out", storage.name());
        std::fs::write(dir.join(name), &text)?;
    }
    text.lines()
        .find_map(|l| l.strip_prefix("summary:"))
        .or_else(|| text.lines().find_map(|l| l.strip_prefix("totals:")))
        .and_then(|n| n.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("no summary line in {}", file.display()).into())
}

fn millions(n: u64) -> String {
    format!("{:.1} M", n as f64 / 1e6)
}
