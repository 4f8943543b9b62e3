//! Section 7: what configured admission costs on the create path. ConfigMap creates, the same
//! client concurrency, two servers: (a) the default admission plugins with nothing configured,
//! (b) one ValidatingAdmissionPolicy + binding matching the creates and one object-count
//! ResourceQuota in their namespace. Runs interleave the modes.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use serde_json::json;

use crate::http::{configmap, configmaps, ensure_namespace, Conn};
use crate::kubox::{Kubox, Storage};
use crate::load::{drive, Op};
use crate::stats::{ms, thousands, Table};
use crate::Result;

pub struct Options {
    /// Concurrent clients (one connection each).
    pub clients: usize,
    /// Length of each measured phase.
    pub phase_time: Duration,
    /// Cap on requests per phase.
    pub max_ops: u64,
    /// Runs of each mode.
    pub runs: usize,
}

const NS: &str = "bench-admission";

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Nothing,
    PolicyAndQuota,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Nothing => "(a) default plugins, nothing configured",
            Mode::PolicyAndQuota => "(b) one policy + binding, one quota",
        }
    }
}

pub async fn run(bin: &Path, storage: Storage, opts: &Options) -> Result<()> {
    println!("## 7. Admission on the create path: ConfigMap creates");
    println!(
        "  {} clients, closed loop, {:?} or {} requests per phase, {} run(s) per mode, storage {}.\n  \
         (b) vs (a) is what one ValidatingAdmissionPolicy and one ResourceQuota cost.\n",
        opts.clients,
        opts.phase_time,
        thousands(opts.max_ops),
        opts.runs,
        storage.name()
    );
    let mut table = Table::new(&["mode", "run", "creates/s", "p50", "p99", "errors"]);
    let mut rates: Vec<(Mode, f64)> = Vec::new();
    for run in 1..=opts.runs {
        for mode in [Mode::Nothing, Mode::PolicyAndQuota] {
            eprintln!("admission: {} run {run} …", mode.name());
            let kubox = Kubox::start_with(bin, storage, &[])?;
            let addr = kubox.addr();
            ensure_namespace(addr, NS).await?;
            if mode == Mode::PolicyAndQuota {
                configure(addr).await?;
            }
            let path = configmaps(NS);
            let next = Arc::new(AtomicU64::new(0));
            let out = drive(
                addr,
                opts.clients,
                opts.max_ops,
                opts.phase_time,
                move |_| Op {
                    method: Method::POST,
                    path: path.clone(),
                    body: Some(configmap(
                        &format!("cm-{}", next.fetch_add(1, Ordering::Relaxed)),
                        &[],
                    )),
                },
            )
            .await?;
            if let Some(e) = &out.first_error {
                eprintln!("admission: {} errors, first: {e}", out.errors);
            }
            table.row(vec![
                mode.name().to_string(),
                run.to_string(),
                thousands(out.rate() as u64),
                ms(out.latency.p50),
                ms(out.latency.p99),
                out.errors.to_string(),
            ]);
            rates.push((mode, out.rate()));
            drop(kubox);
        }
    }
    table.print();
    let mean = |m: Mode| crate::stats::mean_of(&rates, m);
    let (a, b) = (mean(Mode::Nothing), mean(Mode::PolicyAndQuota));
    if a > 0.0 {
        println!(
            "  configured admission's cost ((a) − (b)) / (a), mean of runs: {:.1} %  (aim: < 20 %)",
            (a - b) / a * 100.0
        );
    }
    Ok(())
}

/// The policy, its binding and the quota.
async fn configure(addr: SocketAddr) -> Result<()> {
    let mut conn = Conn::connect(addr).await?;
    let vap = "/apis/admissionregistration.k8s.io/v1";
    let body = |v: serde_json::Value| Some(Bytes::from(v.to_string()));
    conn.json(
        Method::POST,
        &format!("{vap}/validatingadmissionpolicies"),
        body(json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": "small-configmaps"},
            "spec": {
                "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                    "operations": ["CREATE"], "resources": ["configmaps"]}]},
                "validations": [{"expression": "size(object.data) < 10"}],
            },
        })),
    )
    .await?;
    conn.json(
        Method::POST,
        &format!("{vap}/validatingadmissionpolicybindings"),
        body(json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": "small-configmaps"},
            "spec": {"policyName": "small-configmaps", "validationActions": ["Deny"]},
        })),
    )
    .await?;
    conn.json(
        Method::POST,
        &format!("/api/v1/namespaces/{NS}/resourcequotas"),
        body(json!({
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "objects"},
            "spec": {"hard": {"configmaps": "10000000"}},
        })),
    )
    .await?;
    Ok(())
}
