//! The request recorder: every request the server answered, with who sent it, what it asked
//! (kube's verb, group, version, resource, subresource, namespace, name), its field manager and
//! dry-run, the answer's code and — when asked for — the request body. Tests query it
//! ([`Recorder::count`], [`Recorder::requests`], [`Recorder::wait_for`]) to assert what a
//! controller actually sent; `kubox serve --record FILE` writes the same as JSON lines.
//!
//! Memory is bounded: the recorder keeps the newest [`RecorderOptions::capacity`] requests and
//! counts the ones it let go ([`Recorder::dropped`]). A request is recorded when its answer's
//! head is ready (a watch when it starts).
//!
//! ```
//! # async fn demo() -> Result<(), kubox::server::ServerError> {
//! use kubox::recorder::Filter;
//! let server = kubox::Server::builder().start().await?;
//! // … run a controller against `server` …
//! let status_writes = server
//!     .recorder()
//!     .count(&Filter::new().verb("update").resource("deployments").subresource("status"));
//! assert_eq!(status_writes, 0);
//! # server.shutdown().await?; Ok(()) }
//! # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
//! ```

use std::collections::VecDeque;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use std::sync::{Mutex, MutexGuard};

use crate::authn::UserInfo;
use crate::chain::{BoxFuture, Filter as ChainFilter, Next, Req};
use crate::request_info::RequestInfo;

/// One recorded request.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// When it arrived (RFC 3339, microseconds).
    pub time: String,
    /// Who sent it (after impersonation).
    pub user: String,
    /// Their groups.
    pub groups: Vec<String>,
    /// The verb as kube names it (`get`, `list`, `watch`, `create`, `update`, `patch`,
    /// `delete`, `deletecollection`; for other paths the HTTP method, lower case).
    pub verb: String,
    /// The API group ("" for the core group).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// The API version.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// The resource (plural).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub resource: String,
    /// The subresource.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subresource: String,
    /// The namespace.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// The object's name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The path and query.
    pub uri: String,
    /// The `fieldManager` asked for.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub field_manager: String,
    /// `dryRun=All` was asked for.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// The label selector of a list or watch.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub label_selector: String,
    /// The client's user agent.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user_agent: String,
    /// The answer's HTTP status code.
    pub code: u16,
    /// The request body (when [`RecorderOptions::bodies`] is on and there was one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

/// Which records to count, list or wait for: every set condition must hold.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    verb: Option<String>,
    group: Option<String>,
    resource: Option<String>,
    subresource: Option<String>,
    namespace: Option<String>,
    name: Option<String>,
    user: Option<String>,
    field_manager: Option<String>,
    code: Option<u16>,
}

impl Filter {
    /// Every record.
    pub fn new() -> Self {
        Filter::default()
    }
    /// Of this verb (`create`, `update`, `patch`, `list`…).
    pub fn verb(mut self, verb: &str) -> Self {
        self.verb = Some(verb.to_string());
        self
    }
    /// Of this API group ("" for the core group).
    pub fn group(mut self, group: &str) -> Self {
        self.group = Some(group.to_string());
        self
    }
    /// Of this resource (plural).
    pub fn resource(mut self, resource: &str) -> Self {
        self.resource = Some(resource.to_string());
        self
    }
    /// Of this subresource ("" for the resource itself).
    pub fn subresource(mut self, subresource: &str) -> Self {
        self.subresource = Some(subresource.to_string());
        self
    }
    /// In this namespace.
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.namespace = Some(namespace.to_string());
        self
    }
    /// On the object of this name.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }
    /// Sent by this user.
    pub fn user(mut self, user: &str) -> Self {
        self.user = Some(user.to_string());
        self
    }
    /// With this field manager.
    pub fn field_manager(mut self, manager: &str) -> Self {
        self.field_manager = Some(manager.to_string());
        self
    }
    /// Answered with this code.
    pub fn code(mut self, code: u16) -> Self {
        self.code = Some(code);
        self
    }

    /// Whether `r` is one of these.
    pub fn matches(&self, r: &Record) -> bool {
        let is = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        is(&self.verb, &r.verb)
            && is(&self.group, &r.group)
            && is(&self.resource, &r.resource)
            && is(&self.subresource, &r.subresource)
            && is(&self.namespace, &r.namespace)
            && is(&self.name, &r.name)
            && is(&self.user, &r.user)
            && is(&self.field_manager, &r.field_manager)
            && self.code.is_none_or(|c| c == r.code)
    }
}

/// How a recorder keeps requests.
#[derive(Clone, Debug)]
pub struct RecorderOptions {
    /// The newest requests kept in memory (older ones are let go and counted).
    pub capacity: usize,
    /// Keep request bodies (at most [`MAX_BODY`] bytes of each).
    pub bodies: bool,
}

impl Default for RecorderOptions {
    fn default() -> Self {
        RecorderOptions {
            capacity: 100_000,
            bodies: false,
        }
    }
}

/// A lock that a panic elsewhere does not poison for good (what it guards stays consistent:
/// every update is one push or one pop).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The most bytes of a request body a record keeps.
pub const MAX_BODY: usize = 64 * 1024;

/// What every request is recorded in.
pub struct Recorder {
    options: Mutex<RecorderOptions>,
    records: Mutex<VecDeque<Record>>,
    dropped: AtomicU64,
    /// Bumped at every record, for [`Recorder::wait_for`].
    changed: tokio::sync::watch::Sender<u64>,
    file: Option<Mutex<std::io::BufWriter<std::fs::File>>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("records", &lock(&self.records).len())
            .finish()
    }
}

impl Recorder {
    /// A recorder keeping requests in memory.
    pub fn new(options: RecorderOptions) -> Recorder {
        Recorder {
            options: Mutex::new(options),
            records: Mutex::new(VecDeque::new()),
            dropped: AtomicU64::new(0),
            changed: tokio::sync::watch::channel(0).0,
            file: None,
        }
    }

    /// A recorder that also appends every request to `path` as a JSON line (0600: bodies may
    /// hold Secrets).
    pub fn with_file(
        options: RecorderOptions,
        path: &std::path::Path,
    ) -> std::io::Result<Recorder> {
        let file =
            crate::files::append_private(path).map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut r = Recorder::new(options);
        r.file = Some(Mutex::new(std::io::BufWriter::new(file)));
        Ok(r)
    }

    /// Keep request bodies from now on (or stop).
    pub fn record_bodies(&self, on: bool) {
        lock(&self.options).bodies = on;
    }

    fn keeps_bodies(&self) -> bool {
        lock(&self.options).bodies
    }

    fn push(&self, record: Record) {
        if let Some(file) = &self.file {
            let mut f = lock(file);
            // A full disk loses lines, never the request.
            let _ = serde_json::to_writer(&mut *f, &record);
            let _ = f.write_all(b"\n");
            let _ = f.flush();
        }
        {
            let capacity = lock(&self.options).capacity.max(1);
            let mut records = lock(&self.records);
            while records.len() >= capacity {
                records.pop_front();
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            records.push_back(record);
        }
        self.changed.send_modify(|n| *n += 1);
    }

    /// The recorded requests these match, oldest first.
    pub fn requests(&self, filter: &Filter) -> Vec<Record> {
        lock(&self.records)
            .iter()
            .filter(|r| filter.matches(r))
            .cloned()
            .collect()
    }

    /// How many recorded requests these match.
    pub fn count(&self, filter: &Filter) -> usize {
        lock(&self.records)
            .iter()
            .filter(|r| filter.matches(r))
            .count()
    }

    /// Wait until at least `n` recorded requests match, at most `timeout`; the matching
    /// requests, or None when the time ran out.
    pub async fn wait_for(
        &self,
        filter: &Filter,
        n: usize,
        timeout: Duration,
    ) -> Option<Vec<Record>> {
        let mut changed = self.changed.subscribe();
        let wait = async {
            loop {
                let found = self.requests(filter);
                if found.len() >= n {
                    return found;
                }
                if changed.changed().await.is_err() {
                    return found;
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.ok()
    }

    /// Forget every recorded request (the file, if any, is kept).
    pub fn clear(&self) {
        lock(&self.records).clear();
    }

    /// How many requests were let go to stay within the capacity.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The recorder's step of the handler chain (after authentication and impersonation).
#[derive(Clone)]
pub struct RecorderFilter {
    recorder: Arc<Recorder>,
}

impl RecorderFilter {
    /// A step recording into `recorder`.
    pub fn new(recorder: Arc<Recorder>) -> Self {
        RecorderFilter { recorder }
    }
}

impl ChainFilter for RecorderFilter {
    fn call(&self, req: Req, next: &Next) -> BoxFuture {
        let recorder = self.recorder.clone();
        let next = next.clone();
        Box::pin(async move {
            let info = req
                .extensions()
                .get::<Arc<RequestInfo>>()
                .cloned()
                .unwrap_or_default();
            let user = req
                .extensions()
                .get::<UserInfo>()
                .cloned()
                .unwrap_or_else(UserInfo::loopback);
            let query = req.uri().query().unwrap_or_default().to_string();
            let header = |name: http::header::HeaderName| {
                req.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string()
            };
            let body = (recorder.keeps_bodies() && !req.body().is_empty()).then(|| {
                let b = req.body();
                String::from_utf8_lossy(&b[..b.len().min(MAX_BODY)]).into_owned()
            });
            let mut record = Record {
                time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                user: user.username.clone(),
                groups: user.groups.clone(),
                verb: if info.is_resource_request {
                    info.verb.clone()
                } else {
                    req.method().as_str().to_ascii_lowercase()
                },
                group: info.api_group.clone(),
                version: info.api_version.clone(),
                resource: info.resource.clone(),
                subresource: info.subresource.clone(),
                namespace: info.namespace.clone(),
                name: info.name.clone(),
                uri: req
                    .uri()
                    .path_and_query()
                    .map(|p| p.as_str().to_string())
                    .unwrap_or_default(),
                field_manager: crate::request_info::query_param(&query, "fieldManager")
                    .unwrap_or_default(),
                dry_run: crate::request_info::query_param(&query, "dryRun")
                    .is_some_and(|v| v == "All"),
                label_selector: crate::request_info::query_param(&query, "labelSelector")
                    .unwrap_or_default(),
                user_agent: header(http::header::USER_AGENT),
                code: 0,
                body,
            };
            let resp = next.oneshot(req).await?;
            record.code = resp.status().as_u16();
            recorder.push(record);
            Ok(resp)
        })
    }
}
