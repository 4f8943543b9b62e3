//! Section 5: what the secure handler chain costs. GET of one ConfigMap, the same client
//! concurrency, three servers: (a) plain HTTP with AlwaysAllow, (b) HTTPS with the admin client
//! certificate and AlwaysAllow, (c) HTTPS with a static bearer token and RBAC while 1,000
//! RoleBindings exist (one binds the token's user, the others bind other users).

use std::path::Path;
use std::time::Duration;

use http::Method;

use crate::http::{configmap, configmaps, ensure_namespace, use_bearer_token, use_tls, Conn};
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
    /// RoleBindings in the namespace for mode (c).
    pub bindings: u64,
}

const NS: &str = "bench-chain";
const TOKEN: &str = "bench-chain-token-5f1d0c2a";
const USER: &str = "bench-reader";

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    PlainAllow,
    TlsAllow,
    TlsTokenRbac,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::PlainAllow => "(a) HTTP, AlwaysAllow",
            Mode::TlsAllow => "(b) HTTPS + client cert, AlwaysAllow",
            Mode::TlsTokenRbac => "(c) HTTPS + token, RBAC, 1,000 RoleBindings",
        }
    }
}

pub async fn run(bin: &Path, storage: Storage, opts: &Options) -> Result<()> {
    println!("## 5. The secure handler chain: GET of one object");
    println!(
        "  {} clients, closed loop, {:?} or {} requests per phase, {} run(s) per mode, storage {}.\n  \
         (c) vs (b) is the chain's cost beyond TLS: token authentication + RBAC.\n",
        opts.clients,
        opts.phase_time,
        thousands(opts.max_ops),
        opts.runs,
        storage.name()
    );
    let dir = tempfile::tempdir()?;
    let token_file = dir.path().join("tokens.csv");
    std::fs::write(&token_file, format!("{TOKEN},{USER},uid-bench,\"\"\n"))?;
    let mut table = Table::new(&["mode", "run", "req/s", "p50", "p99", "errors"]);
    let mut rates: Vec<(Mode, f64)> = Vec::new();
    // Runs interleave the modes, so a change in the machine's load hits every mode alike.
    for run in 1..=opts.runs {
        for mode in [Mode::PlainAllow, Mode::TlsAllow, Mode::TlsTokenRbac] {
            eprintln!("chain: {} run {run} …", mode.name());
            use_tls(mode != Mode::PlainAllow);
            let args: Vec<String> = match mode {
                Mode::PlainAllow | Mode::TlsAllow => {
                    vec!["--authorization-mode=AlwaysAllow".into()]
                }
                Mode::TlsTokenRbac => vec![
                    "--authorization-mode=RBAC".into(),
                    format!("--token-auth-file={}", token_file.display()),
                ],
            };
            let kubox = Kubox::start_with(bin, storage, &args)?;
            let addr = kubox.addr();
            ensure_namespace(addr, NS).await?;
            let path = configmaps(NS);
            let mut conn = Conn::connect(addr).await?;
            conn.json(Method::POST, &path, Some(configmap("target", &[])))
                .await?;
            if mode == Mode::TlsTokenRbac {
                seed_bindings(addr, opts.bindings).await?;
                use_bearer_token(&kubox.kubeconfig(), TOKEN)?;
            }
            let get = format!("{path}/target");
            let out = drive(
                addr,
                opts.clients,
                opts.max_ops,
                opts.phase_time,
                move |_| Op {
                    method: Method::GET,
                    path: get.clone(),
                    body: None,
                },
            )
            .await?;
            if let Some(e) = &out.first_error {
                eprintln!("chain: {} errors, first: {e}", out.errors);
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
    let (b, c) = (mean(Mode::TlsAllow), mean(Mode::TlsTokenRbac));
    if b > 0.0 {
        println!(
            "  chain cost beyond TLS ((b) − (c)) / (b), mean of runs: {:.1} %  (aim: < 10 %)",
            (b - c) / b * 100.0
        );
    }
    Ok(())
}

/// `n` RoleBindings of the `view` ClusterRole in the bench namespace: the middle one binds the
/// token's user, every other one a user of its own.
async fn seed_bindings(addr: std::net::SocketAddr, n: u64) -> Result<()> {
    let path = format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{NS}/rolebindings");
    let out = drive(addr, 8, n, Duration::from_secs(120), move |i| {
        let user = if i == n / 2 {
            USER.to_string()
        } else {
            format!("user-{i}")
        };
        let body = serde_json::json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": format!("rb-{i}")},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        });
        Op {
            method: Method::POST,
            path: path.clone(),
            body: Some(body.to_string().into()),
        }
    })
    .await?;
    if out.ok != n {
        return Err(format!(
            "seeding RoleBindings: {} of {n} created ({:?})",
            out.ok, out.first_error
        )
        .into());
    }
    Ok(())
}
