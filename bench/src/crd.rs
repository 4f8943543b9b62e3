//! Section 9: custom resources. (1) How long a CRD with a 1.6 MB schema (1,500 described fields
//! and a rule) takes from its create to Established; (2) validated creates per second of a
//! custom resource whose schema carries 40 CEL rules, against the same schema without rules.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use serde_json::{json, Value};

use crate::http::{ensure_namespace, Conn};
use crate::kubox::{Kubox, Storage};
use crate::load::{drive, Op};
use crate::stats::{ms, thousands, Table};
use crate::Result;

pub struct Options {
    /// Concurrent clients (one connection each) for the creates.
    pub clients: usize,
    /// Length of each measured create phase.
    pub phase_time: Duration,
    /// Cap on requests per phase.
    pub max_ops: u64,
    /// CRDs created for the Established figure.
    pub crds: usize,
}

const NS: &str = "bench-crd";
const CRDS: &str = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";

fn body(v: &Value) -> Option<Bytes> {
    Some(Bytes::from(v.to_string()))
}

/// A CRD of `group` named `plural` whose `spec` has this schema.
fn crd(plural: &str, spec: Value) -> Value {
    let kind = format!(
        "{}{}",
        plural[..1].to_uppercase(),
        &plural[1..plural.len() - 1]
    );
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.bench.kubox.dev")},
        "spec": {
            "group": "bench.kubox.dev",
            "scope": "Namespaced",
            "names": {"plural": plural, "kind": kind},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": spec}}}}],
        },
    })
}

/// 1,500 fields of about a kilobyte of description each, and one rule.
fn large_spec() -> Value {
    let mut props = serde_json::Map::new();
    for i in 0..1500 {
        props.insert(
            format!("setting{i:04}"),
            json!({"type": "string", "maxLength": 64,
                "description": format!("Field {i} of the generated settings block. ").repeat(24)}),
        );
    }
    json!({"type": "object", "properties": props, "x-kubernetes-validations": [
        {"rule": "!has(self.setting0000) || self.setting0000 != 'forbidden'"}]})
}

/// Forty rules of the kinds operators write, over a spec of strings, numbers, a list and a map.
fn rules() -> Value {
    let mut rules = Vec::new();
    for i in 0..8 {
        rules.push(json!({"rule": format!("self.name{i}.matches('^[a-z][-a-z0-9]*$')")}));
        rules.push(json!({"rule": format!("self.count{i} >= 0 && self.count{i} <= 1000")}));
        rules.push(
            json!({"rule": format!("self.name{i}.size() <= 63 && !self.name{i}.startsWith('-')")}),
        );
    }
    for r in [
        "self.tags.all(t, t.size() < 32)",
        "self.tags.exists_one(t, t == 'primary')",
        "self.labels.all(k, k.matches('^[a-z./-]+$'))",
        "self.labels.all(k, self.labels[k].size() <= 63)",
        "isQuantity(self.memory) && quantity(self.memory).isLessThan(quantity('64Gi'))",
        "isIP(self.address)",
        "isURL(self.endpoint)",
        "self.count0 <= self.count1 + 1000",
        "self.tags.size() <= 16",
        "has(self.endpoint) == has(self.address)",
        "self.name0 != self.name1",
        "self.labels.size() <= 32",
        "self.tags.all(t, !t.contains(' '))",
        "self.memory.endsWith('i') || self.memory.endsWith('M') || self.memory.endsWith('G')",
        "self.address.split('.').size() == 4",
        "self.endpoint.startsWith('https://')",
    ] {
        rules.push(json!({"rule": r}));
    }
    Value::Array(rules)
}

fn validated_spec(with_rules: bool) -> Value {
    let mut props = serde_json::Map::new();
    for i in 0..8 {
        props.insert(
            format!("name{i}"),
            json!({"type": "string", "maxLength": 63}),
        );
        props.insert(format!("count{i}"), json!({"type": "integer"}));
    }
    props.insert(
        "tags".into(),
        json!({"type": "array", "maxItems": 16, "items": {"type": "string", "maxLength": 31}}),
    );
    props.insert(
        "labels".into(),
        json!({"type": "object", "maxProperties": 32, "additionalProperties": {"type": "string", "maxLength": 63}}),
    );
    for f in ["memory", "address", "endpoint"] {
        props.insert(f.into(), json!({"type": "string", "maxLength": 256}));
    }
    let mut spec = json!({"type": "object", "properties": props});
    if with_rules {
        spec["x-kubernetes-validations"] = rules();
    }
    spec
}

fn object(plural: &str, name: &str) -> Bytes {
    let mut spec = serde_json::Map::new();
    for i in 0..8 {
        spec.insert(format!("name{i}"), json!(format!("name-{i}")));
        spec.insert(format!("count{i}"), json!(i * 10));
    }
    spec.insert("tags".into(), json!(["primary", "web", "eu"]));
    spec.insert(
        "labels".into(),
        json!({"app.kubernetes.io/name": "web", "tier": "front"}),
    );
    spec.insert("memory".into(), json!("512Mi"));
    spec.insert("address".into(), json!("10.1.2.3"));
    spec.insert("endpoint".into(), json!("https://api.example.com/v1"));
    let kind = format!(
        "{}{}",
        plural[..1].to_uppercase(),
        &plural[1..plural.len() - 1]
    );
    Bytes::from(
        json!({"apiVersion": "bench.kubox.dev/v1", "kind": kind,
            "metadata": {"name": name}, "spec": spec})
        .to_string(),
    )
}

async fn established(conn: &mut Conn, name: &str) -> Result<bool> {
    let crd = conn
        .json(Method::GET, &format!("{CRDS}/{name}"), None)
        .await?;
    Ok(crd["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Established" && c["status"] == "True"))
}

/// Create `crd` and wait until it is Established and its resource answers; the time it took.
async fn create_until_served(addr: SocketAddr, crd: &Value, list: &str) -> Result<Duration> {
    let mut conn = Conn::connect(addr).await?;
    let name = crd["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let started = Instant::now();
    conn.json(Method::POST, CRDS, body(crd)).await?;
    loop {
        if established(&mut conn, &name).await? {
            let (status, _) = conn.call(Method::GET, list, None).await?;
            if status.is_success() {
                return Ok(started.elapsed());
            }
        }
        if started.elapsed() > Duration::from_secs(60) {
            return Err(format!("{name} not served after 60 s").into());
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

pub async fn run(bin: &Path, storage: Storage, opts: &Options) -> Result<()> {
    println!("## 9. Custom resources");
    let kubox = Kubox::start_with(bin, storage, &[])?;
    let addr = kubox.addr();
    ensure_namespace(addr, NS).await?;

    let large = large_spec();
    let size = crd("settings", large.clone()).to_string().len();
    println!(
        "  (1) create → Established and served, a CRD of {:.1} MB ({} runs), storage {}.\n",
        size as f64 / 1e6,
        opts.crds,
        storage.name()
    );
    let mut times = Vec::new();
    for i in 0..opts.crds {
        let plural = format!("settings{i}s");
        let c = crd(&plural, large.clone());
        let list = format!("/apis/bench.kubox.dev/v1/namespaces/{NS}/{plural}");
        times.push(create_until_served(addr, &c, &list).await?);
    }
    times.sort();
    let pick = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    let mut table = Table::new(&["CRD", "p50", "p90", "max"]);
    table.row(vec![
        format!("{:.1} MB schema", size as f64 / 1e6),
        ms(pick(0.5)),
        ms(pick(0.9)),
        ms(pick(1.0)),
    ]);
    table.print();
    println!("  (aim: p50 < 200 ms)\n");

    println!(
        "  (2) custom resource creates, {} clients, {:?} or {} requests per phase: the same schema \
         without and with 40 CEL rules.\n",
        opts.clients,
        opts.phase_time,
        thousands(opts.max_ops)
    );
    let mut table = Table::new(&["schema", "creates/s", "p50", "p99", "errors"]);
    for (plural, with_rules) in [("plains", false), ("ruleds", true)] {
        let c = crd(plural, validated_spec(with_rules));
        let list = format!("/apis/bench.kubox.dev/v1/namespaces/{NS}/{plural}");
        create_until_served(addr, &c, &list).await?;
        let next = Arc::new(AtomicU64::new(0));
        let path = list.clone();
        let p = plural.to_string();
        let out = drive(
            addr,
            opts.clients,
            opts.max_ops,
            opts.phase_time,
            move |_| Op {
                method: Method::POST,
                path: path.clone(),
                body: Some(object(
                    &p,
                    &format!("o-{}", next.fetch_add(1, Ordering::Relaxed)),
                )),
            },
        )
        .await?;
        if let Some(e) = &out.first_error {
            eprintln!("crd: {} errors, first: {e}", out.errors);
        }
        table.row(vec![
            if with_rules { "40 rules" } else { "no rules" }.to_string(),
            thousands(out.rate() as u64),
            ms(out.latency.p50),
            ms(out.latency.p99),
            out.errors.to_string(),
        ]);
    }
    table.print();
    println!("  (aim: ≥ 5,000 validated creates/s with 40 rules)");
    drop(kubox);
    Ok(())
}
