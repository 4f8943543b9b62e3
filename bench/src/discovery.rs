//! Section 12: what kubectl reads before its commands — the `/openapi/v3` root, a group/version's
//! document at the URL the root names (kubectl's `explain`, and its check that the server
//! validates fields, read them), aggregated discovery (`/apis`) — each GET timed over one
//! connection, whole and revalidated (`If-None-Match`, 304 Not Modified), with the server's
//! CPU per GET; then the root and a custom group's document once 20 CRDs serve in that group.

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::StatusCode;
use serde_json::{json, Value};

use crate::http::Conn;
use crate::kubox::{Kubox, Storage};
use crate::stats::{ms, Summary, Table};
use crate::Result;

pub struct Options {
    /// Timed GETs per row.
    pub gets: usize,
    /// CRDs (one group) created before the last rows.
    pub crds: usize,
}

const AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
const GROUP: &str = "discovery.bench.kubox.dev";

pub async fn run(bin: &Path, storage: Storage, opts: &Options) -> Result<()> {
    println!("## 12. What kubectl reads before its commands");
    println!(
        "  Over one connection, {} GETs per row after one untimed: the `/openapi/v3` root, the\n  \
         apps/v1 document at the URL the root names, aggregated discovery (`/apis`); then each\n  \
         revalidated with the ETag it answered (`If-None-Match`: 304, no body); then the root and\n  \
         a custom group's document once {} CRDs serve in that group. \"server CPU/GET\" is the\n  \
         process's CPU over the row divided by its GETs. Storage: {}.\n",
        opts.gets,
        opts.crds,
        storage.name()
    );
    eprintln!("discovery: {} …", storage.name());
    let k = Kubox::start(bin, storage)?;
    let mut conn = Conn::connect(k.addr()).await?;
    let root = conn.json(http::Method::GET, "/openapi/v3", None).await?;
    let apps = server_url(&root, "apis/apps/v1")?;
    let mut table = Table::new(&["GET", "answer", "bytes", "p50", "p99", "server CPU/GET"]);
    let aggregated: &[(&str, &str)] = &[("accept", AGGREGATED)];
    let none: &[(&str, &str)] = &[];
    let rows = [
        ("/openapi/v3", "/openapi/v3".to_string(), none),
        ("apps/v1 document", apps, none),
        ("/apis (aggregated)", "/apis".to_string(), aggregated),
    ];
    for (name, path, headers) in &rows {
        let row = measure(&k, &mut conn, path, headers, opts.gets, false).await?;
        table.row(row.cells(name));
        let row = measure(&k, &mut conn, path, headers, opts.gets, true).await?;
        table.row(row.cells(&format!("{name}, revalidated")));
    }

    for i in 0..opts.crds {
        let (status, body) = conn
            .call(
                http::Method::POST,
                "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                Some(Bytes::from(crd(i).to_string())),
            )
            .await?;
        if status != StatusCode::CREATED {
            return Err(format!("CRD {i}: {status}: {}", String::from_utf8_lossy(&body)).into());
        }
    }
    // Served once the root names the group's version.
    let deadline = Instant::now() + Duration::from_secs(30);
    let custom = loop {
        let root = conn.json(http::Method::GET, "/openapi/v3", None).await?;
        if let Ok(url) = server_url(&root, &format!("apis/{GROUP}/v1")) {
            break url;
        }
        if Instant::now() > deadline {
            return Err(format!("{GROUP}/v1 not in /openapi/v3 within 30 s").into());
        }
        tokio::task::yield_now().await;
    };
    let row = measure(&k, &mut conn, "/openapi/v3", &[], opts.gets, false).await?;
    table.row(row.cells(&format!("/openapi/v3, {} CRDs", opts.crds)));
    let row = measure(&k, &mut conn, &custom, &[], opts.gets, false).await?;
    table.row(row.cells(&format!("{GROUP}/v1 document")));
    table.print();
    Ok(())
}

fn server_url(root: &Value, gv: &str) -> Result<String> {
    root["paths"][gv]["serverRelativeURL"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("{gv} not in /openapi/v3").into())
}

/// A small CRD of the bench's group: `Kind{i}`.
fn crd(i: usize) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("kind{i}s.{GROUP}")},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": format!("kind{i}s"), "kind": format!("Kind{i}")},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {
                    "type": "object", "properties": {
                        "size": {"type": "integer", "minimum": 0},
                        "name": {"type": "string", "maxLength": 63}}}}}}}],
        },
    })
}

struct Row {
    status: StatusCode,
    bytes: usize,
    latency: Summary,
    cpu_per_get: Duration,
}

impl Row {
    fn cells(&self, name: &str) -> Vec<String> {
        vec![
            name.to_string(),
            self.status.as_u16().to_string(),
            self.bytes.to_string(),
            ms(self.latency.p50),
            ms(self.latency.p99),
            ms(self.cpu_per_get),
        ]
    }
}

/// `gets` timed GETs of `path` after one untimed; `revalidate`: each with the ETag the untimed
/// one answered, in `If-None-Match` (a server that gave none answers 200 again: the row says).
async fn measure(
    k: &Kubox,
    conn: &mut Conn,
    path: &str,
    headers: &[(&str, &str)],
    gets: usize,
    revalidate: bool,
) -> Result<Row> {
    let (status, answered, _) = conn.get_with(path, headers).await?;
    if status != StatusCode::OK {
        return Err(format!("GET {path}: {status}").into());
    }
    let etag = answered
        .get(http::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let mut with: Vec<(&str, &str)> = headers.to_vec();
    if revalidate && !etag.is_empty() {
        with.push(("if-none-match", &etag));
    }
    let cpu = k.cpu()?;
    let mut samples = Vec::with_capacity(gets);
    let (mut status, mut bytes) = (StatusCode::OK, 0);
    for _ in 0..gets.max(1) {
        let t = Instant::now();
        let (s, _, body) = conn.get_with(path, &with).await?;
        samples.push(t.elapsed().as_nanos() as u64);
        (status, bytes) = (s, body.len());
    }
    let cpu = k.cpu()?.saturating_sub(cpu);
    Ok(Row {
        status,
        bytes,
        latency: Summary::of(&mut samples),
        cpu_per_get: cpu / gets.max(1) as u32,
    })
}
