//! `/metrics`: kube-apiserver's request and storage metrics in Prometheus' text format (0.0.4),
//! with its metric names and labels, plus the process metrics: requests by verb, resource and
//! code (`apiserver_request_total`), their latency (`apiserver_request_duration_seconds`, not
//! for long-running requests), requests in flight, watch events sent, and the objects stored per
//! resource. The chain records every request ([`MetricsFilter`]); reading is permitted as kube
//! permits it (the `/metrics` non-resource URL).

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::RwLock;

use bytes::Bytes;
use http::{Request, Response, StatusCode};

use crate::body::{bytes_response, Body};
use crate::chain::{BoxFuture, Filter, Next, Req};
use crate::request_info::RequestInfo;

/// kube's buckets for `apiserver_request_duration_seconds`.
const BUCKETS: [f64; 23] = [
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0,
    10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
];

/// How many request series are kept with their resource labels.
const MAX_SERIES: usize = 5000;

/// What a request is counted under (kube's labels, without the code).
#[derive(Debug, Clone, Eq, PartialOrd, Ord)]
struct Labels {
    verb: Cow<'static, str>,
    group: String,
    version: String,
    resource: String,
    subresource: String,
    scope: &'static str,
    dry_run: String,
}

/// Compared on every request (the series lookup): empty labels, the usual case for four of
/// them, and the static scope are told apart without a call to `memcmp`.
impl PartialEq for Labels {
    fn eq(&self, other: &Self) -> bool {
        fn same(a: &str, b: &str) -> bool {
            a.len() == b.len() && (a.is_empty() || a == b)
        }
        (std::ptr::eq(self.scope, other.scope) || self.scope == other.scope)
            && same(&self.verb, &other.verb)
            && same(&self.resource, &other.resource)
            && same(&self.version, &other.version)
            && same(&self.group, &other.group)
            && same(&self.subresource, &other.subresource)
            && same(&self.dry_run, &other.dry_run)
    }
}

impl Hash for Labels {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.scope.hash(state);
        self.verb.hash(state);
        self.resource.hash(state);
        self.version.hash(state);
        self.group.hash(state);
        self.subresource.hash(state);
        self.dry_run.hash(state);
    }
}

/// One label set's series: its request counts per code and its latency histogram, found with
/// one lookup per request.
#[derive(Default)]
struct Series {
    codes: RwLock<Vec<(u16, AtomicU64)>>,
    latency: Histogram,
}

impl Series {
    fn count(&self, code: u16) {
        if let Ok(codes) = self.codes.read() {
            if let Some((_, n)) = codes.iter().find(|(c, _)| *c == code) {
                n.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        if let Ok(mut codes) = self.codes.write() {
            match codes.iter().find(|(c, _)| *c == code) {
                Some((_, n)) => {
                    n.fetch_add(1, Ordering::Relaxed);
                }
                None => codes.push((code, AtomicU64::new(1))),
            }
        }
    }

    /// The counts per code, by code.
    fn codes(&self) -> Vec<(u16, u64)> {
        let mut out: Vec<(u16, u64)> = self
            .codes
            .read()
            .map(|c| {
                c.iter()
                    .map(|(c, n)| (*c, n.load(Ordering::Relaxed)))
                    .collect()
            })
            .unwrap_or_default();
        out.sort_unstable();
        out
    }
}

#[derive(Default)]
struct Histogram {
    /// Requests per bucket, each counted in the first it fits (not cumulative).
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

/// A family of series: each found under a read lock once it exists, its value updated
/// atomically.
struct Family<K, V>(RwLock<HashMap<K, Arc<V>>>);

impl<K, V> Default for Family<K, V> {
    fn default() -> Self {
        Family(RwLock::new(HashMap::new()))
    }
}

impl<K: Hash + Eq + Clone + Ord, V: Default> Family<K, V> {
    fn get(&self, key: &K) -> Arc<V> {
        if let Some(v) = self.0.read().ok().and_then(|m| m.get(key).cloned()) {
            return v;
        }
        match self.0.write() {
            Ok(mut m) => m.entry(key.clone()).or_default().clone(),
            Err(_) => Arc::default(),
        }
    }

    /// The series of `key`; past `max` series, a new key is replaced by `bounded(key)` first.
    fn get_bounded(&self, key: K, max: usize, bounded: impl FnOnce(K) -> K) -> Arc<V> {
        let key = match self.0.read() {
            Ok(m) => match m.get(&key) {
                Some(v) => return v.clone(),
                None if m.len() >= max => bounded(key),
                None => key,
            },
            Err(_) => key,
        };
        self.get(&key)
    }

    /// The series, sorted by key.
    fn sorted(&self) -> Vec<(K, Arc<V>)> {
        let mut all: Vec<(K, Arc<V>)> = self
            .0
            .read()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

/// The server's metrics.
#[derive(Default)]
pub struct Metrics {
    requests: Family<Labels, Series>,
    inflight_mutating: AtomicI64,
    inflight_readonly: AtomicI64,
    watch_events: Family<(String, String, String), AtomicU64>,
}

impl Metrics {
    /// The counter of watch events sent for this group, version and resource (a watch looks
    /// it up once and counts each event it sends with one atomic add).
    pub fn watch_events(&self, group: &str, version: &str, resource: &str) -> Arc<AtomicU64> {
        let key = (group.to_string(), version.to_string(), resource.to_string());
        self.watch_events.get(&key)
    }

    /// The gauge of requests in flight, mutating or read-only.
    fn inflight(&self, mutating: bool) -> &AtomicI64 {
        if mutating {
            &self.inflight_mutating
        } else {
            &self.inflight_readonly
        }
    }

    fn record(&self, labels: Labels, code: u16, elapsed: Option<std::time::Duration>) {
        // Resource names come from request paths: past a bound, new label sets (requests for
        // resources nobody serves, mostly) are counted without their resource, so no client
        // can grow the series without limit.
        let series = self.requests.get_bounded(labels, MAX_SERIES, |mut labels| {
            labels.group.clear();
            labels.version.clear();
            labels.resource.clear();
            labels.subresource.clear();
            labels
        });
        if let Some(d) = elapsed {
            let h = &series.latency;
            // One add, in the first bucket the request fits (none past the last bound): the
            // exposition sums them into kube's cumulative buckets. Adding to every bucket
            // above it made each request 23 atomic adds on lines every core shares.
            let secs = d.as_secs_f64();
            if let Some(i) = BUCKETS.iter().position(|le| secs <= *le) {
                h.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
            h.count.fetch_add(1, Ordering::Relaxed);
            h.sum_nanos.fetch_add(
                u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
                Ordering::Relaxed,
            );
        }
        series.count(code);
    }

    /// The text exposition; `objects` are the stored objects per resource (kube's
    /// `group.resource` form, `resource` for the core group).
    pub fn render(&self, objects: &[(String, usize)]) -> String {
        let mut out = String::with_capacity(16 * 1024);
        let esc = |s: &str| {
            s.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n")
        };
        let labels = |l: &Labels| {
            format!(
                "component=\"apiserver\",dry_run=\"{}\",group=\"{}\",resource=\"{}\",scope=\"{}\",subresource=\"{}\",verb=\"{}\",version=\"{}\"",
                esc(&l.dry_run),
                esc(&l.group),
                esc(&l.resource),
                esc(l.scope),
                esc(&l.subresource),
                esc(&l.verb),
                esc(&l.version)
            )
        };
        out.push_str("# HELP apiserver_request_total [STABLE] Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code.\n# TYPE apiserver_request_total counter\n");
        let series = self.requests.sorted();
        for (l, s) in &series {
            for (code, n) in s.codes() {
                let _ = writeln!(
                    out,
                    "apiserver_request_total{{code=\"{code}\",{}}} {n}",
                    labels(l)
                );
            }
        }
        out.push_str("# HELP apiserver_request_duration_seconds [STABLE] Response latency distribution in seconds for each verb, dry run value, group, version, resource, subresource, scope and component.\n# TYPE apiserver_request_duration_seconds histogram\n");
        // Long-running requests (watches) are counted, not timed.
        for (l, s) in series
            .iter()
            .filter(|(_, s)| s.latency.count.load(Ordering::Relaxed) > 0)
        {
            let h = &s.latency;
            let ls = labels(l);
            let mut cumulative = 0u64;
            for (i, le) in BUCKETS.iter().enumerate() {
                cumulative += h.buckets[i].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "apiserver_request_duration_seconds_bucket{{{ls},le=\"{le}\"}} {cumulative}"
                );
            }
            let count = h.count.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "apiserver_request_duration_seconds_bucket{{{ls},le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "apiserver_request_duration_seconds_sum{{{ls}}} {}",
                h.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9
            );
            let _ = writeln!(
                out,
                "apiserver_request_duration_seconds_count{{{ls}}} {count}"
            );
        }
        out.push_str("# HELP apiserver_current_inflight_requests [STABLE] Maximal number of currently used inflight request limit of this apiserver per request kind in last second.\n# TYPE apiserver_current_inflight_requests gauge\n");
        let _ = writeln!(
            out,
            "apiserver_current_inflight_requests{{request_kind=\"mutating\"}} {}",
            self.inflight_mutating.load(Ordering::Relaxed).max(0)
        );
        let _ = writeln!(
            out,
            "apiserver_current_inflight_requests{{request_kind=\"readOnly\"}} {}",
            self.inflight_readonly.load(Ordering::Relaxed).max(0)
        );
        out.push_str("# HELP apiserver_watch_events_total [ALPHA] Number of events sent in watch clients\n# TYPE apiserver_watch_events_total counter\n");
        for ((group, version, resource), n) in self.watch_events.sorted() {
            let n = n.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "apiserver_watch_events_total{{group=\"{}\",resource=\"{}\",version=\"{}\"}} {n}",
                esc(&group),
                esc(&resource),
                esc(&version)
            );
        }
        out.push_str("# HELP apiserver_storage_objects [STABLE] Number of stored objects at the time of last check split by kind.\n# TYPE apiserver_storage_objects gauge\n");
        for (resource, n) in objects {
            let _ = writeln!(
                out,
                "apiserver_storage_objects{{resource=\"{}\"}} {n}",
                esc(resource)
            );
        }
        process_metrics(&mut out);
        out
    }
}

/// `process_*` metrics from `/proc/self` (Linux; absent elsewhere).
fn process_metrics(out: &mut String) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    // utime and stime are fields 14 and 15 of stat (1-based), in clock ticks of 1/100 s.
    if let (Some(u), Some(s)) = (field(11), field(12)) {
        let _ = writeln!(out, "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total {}", (u + s) / 100.0);
    }
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    if let Some(pages) = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse::<u64>().ok())
    {
        let _ = writeln!(out, "# HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {}", pages * 4096);
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        let _ = writeln!(out, "# HELP process_open_fds Number of open file descriptors.\n# TYPE process_open_fds gauge\nprocess_open_fds {}", fds.count());
    }
    let _ = writeln!(out, "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds {}", start_time());
}

/// When the process started (seconds since the epoch): when metrics were first asked for, or
/// earlier when the server recorded it.
fn start_time() -> f64 {
    static START: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *START.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    })
}

/// kube's reported verb (`CleanVerb`).
fn verb(info: &RequestInfo, req: &Request<Bytes>) -> Cow<'static, str> {
    if !info.is_resource_request {
        let m = req.method().as_str();
        let known = [
            "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT",
        ];
        return Cow::Borrowed(known.into_iter().find(|k| *k == m).unwrap_or("other"));
    }
    let apply = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/apply-patch"));
    match info.verb.as_str() {
        "get" => "GET",
        "list" => "LIST",
        "watch" => "WATCH",
        "create" => "POST",
        "update" => "PUT",
        "patch" if apply => "APPLY",
        "patch" => "PATCH",
        "delete" => "DELETE",
        "deletecollection" => "DELETECOLLECTION",
        other => return Cow::Owned(other.to_ascii_uppercase()),
    }
    .into()
}

/// kube's scope label (`CleanScope`).
fn scope(info: &RequestInfo) -> &'static str {
    if !info.name.is_empty() || info.verb == "create" {
        "resource"
    } else if !info.namespace.is_empty() {
        "namespace"
    } else if info.is_resource_request {
        "cluster"
    } else {
        ""
    }
}

/// Records every request: counted by its labels and code, timed unless long-running, counted
/// in flight while it runs.
#[derive(Clone)]
pub struct MetricsFilter {
    pub metrics: Arc<Metrics>,
}

impl Filter for MetricsFilter {
    fn call(&self, req: Req, next: &Next) -> BoxFuture {
        let info = req
            .extensions()
            .get::<Arc<RequestInfo>>()
            .cloned()
            .unwrap_or_default();
        let dry_run =
            crate::request_info::query_param(req.uri().query().unwrap_or_default(), "dryRun")
                .unwrap_or_default();
        let labels = Labels {
            verb: verb(&info, &req),
            group: info.api_group.clone(),
            version: info.api_version.clone(),
            resource: info.resource.clone(),
            subresource: info.subresource.clone(),
            scope: scope(&info),
            dry_run,
        };
        let long_running = crate::chain::is_long_running(&info);
        let mutating = crate::chain::is_mutating(&info);
        let metrics = self.metrics.clone();
        // Timed from when the connection read the request's head, as kube times from when the
        // request was received (and one clock read fewer per request).
        let started = req
            .extensions()
            .get::<crate::chain::Received>()
            .map_or_else(Instant::now, |r| r.0.into_std());
        let flight = InFlight::enter(metrics, (!long_running).then_some(mutating));
        let answer = next.oneshot(req);
        Box::pin(async move {
            let resp = answer.await;
            let code = resp.as_ref().map_or(500, |r| r.status().as_u16());
            flight
                .metrics
                .record(labels, code, (!long_running).then(|| started.elapsed()));
            resp
        })
    }
}

/// A request counted in flight (when `mutating` is known: not long-running) until it is
/// answered or dropped — a client that goes away mid-request leaves no count behind.
struct InFlight {
    metrics: Arc<Metrics>,
    mutating: Option<bool>,
}

impl InFlight {
    fn enter(metrics: Arc<Metrics>, mutating: Option<bool>) -> InFlight {
        if let Some(m) = mutating {
            metrics.inflight(m).fetch_add(1, Ordering::Relaxed);
        }
        InFlight { metrics, mutating }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(m) = self.mutating {
            self.metrics.inflight(m).fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// The `/metrics` answer.
pub async fn serve(state: &crate::api::ApiState) -> Response<Body> {
    let snap = state.backend.registry.snapshot();
    let mut objects: Vec<(String, usize)> = Vec::new();
    for group in &snap.groups {
        for version in &group.versions {
            for info in snap.resources(&group.name, version).unwrap_or_default() {
                if !info.has_verb("list") {
                    continue;
                }
                let name = if info.group.is_empty() {
                    info.resource.clone()
                } else {
                    format!("{}.{}", info.resource, info.group)
                };
                if objects.iter().any(|(n, _)| *n == name) {
                    continue;
                }
                if let Ok(n) = state.backend.store.count(&info.collection_prefix("")).await {
                    objects.push((name, n));
                }
            }
        }
    }
    objects.sort();
    bytes_response(
        StatusCode::OK,
        "text/plain; version=0.0.4; charset=utf-8",
        state.metrics.render(&objects),
    )
}
