//! Audit log: `audit.k8s.io/v1` Events as JSON lines, one per stage, as kube-apiserver's
//! `--audit-log-path` writes them, filtered by an audit `Policy` (`--audit-policy-file`).
//!
//! The policy's first matching rule gives the level: `None` (nothing logged), `Metadata` (who,
//! what, when, the response code), `Request` (plus the request body), `RequestResponse` (plus the
//! response body, for responses that are not streams). Rules match on `users`, `userGroups`,
//! `verbs`, `resources` (group, resources with `pods/status` style subresources and `*`,
//! `resourceNames`), `namespaces` and `nonResourceURLs` (exact or `prefix*`). Stages are
//! `RequestReceived` and `ResponseComplete` (`ResponseStarted` for watches is not emitted);
//! `omitStages` at the top and per rule drop them. Annotations recorded while the request is
//! served (ValidatingAdmissionPolicy `Audit` actions and `auditAnnotations`) go on the
//! `ResponseComplete` event. Without a policy file every request is logged at `Metadata`.
//!
//! The layer runs after authentication: it reads the [`UserInfo`] from the request's
//! extensions (the loopback identity when there is none). A request nobody authenticates is
//! audited by the authentication layer ([`AuditSink::failed_authentication`]). Every response
//! carries the `Audit-ID` header.
//!
//! Events are written by a thread of their own: requests queue them (a bounded queue: a request
//! waits to hand its event over, never blocking a runtime thread), the thread writes everything
//! queued with one write and one flush, and a request's ResponseComplete event is in the file
//! before its answer is sent.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use http::{HeaderValue, Response};
use http_body_util::BodyExt;
use serde_json::{json, Value};

use crate::authn::UserInfo;
use crate::chain::{BoxFuture, Filter, Next, Req};
use crate::request_info::RequestInfo;

/// How much of a request is logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Nothing.
    None,
    /// Request metadata and the response code.
    Metadata,
    /// Metadata and the request body.
    Request,
    /// Metadata, request and response bodies.
    RequestResponse,
}

impl Level {
    fn parse(s: &str) -> Result<Level, String> {
        match s {
            "None" => Ok(Level::None),
            "Metadata" => Ok(Level::Metadata),
            "Request" => Ok(Level::Request),
            "RequestResponse" => Ok(Level::RequestResponse),
            other => Err(format!("unknown audit level {other:?}")),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Level::None => "None",
            Level::Metadata => "Metadata",
            Level::Request => "Request",
            Level::RequestResponse => "RequestResponse",
        }
    }
}

#[derive(Debug, Clone, Default)]
struct GroupResources {
    group: String,
    resources: Vec<String>,
    resource_names: Vec<String>,
}

#[derive(Debug, Clone)]
struct Rule {
    level: Level,
    users: Vec<String>,
    user_groups: Vec<String>,
    verbs: Vec<String>,
    resources: Vec<GroupResources>,
    namespaces: Vec<String>,
    non_resource_urls: Vec<String>,
    omit_stages: Vec<String>,
}

/// An audit policy (`audit.k8s.io/v1` `Policy`).
#[derive(Debug, Clone)]
pub struct Policy {
    rules: Vec<Rule>,
    omit_stages: Vec<String>,
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

impl Default for Policy {
    /// Everything at `Metadata`.
    fn default() -> Self {
        Policy {
            rules: vec![Rule {
                level: Level::Metadata,
                users: vec![],
                user_groups: vec![],
                verbs: vec![],
                resources: vec![],
                namespaces: vec![],
                non_resource_urls: vec![],
                omit_stages: vec![],
            }],
            omit_stages: vec![],
        }
    }
}

impl Policy {
    /// Parse a policy document (YAML or JSON).
    pub fn parse(text: &str) -> Result<Policy, String> {
        let v: Value = crate::encoding::from_yaml(text.as_bytes())?;
        if v["kind"] != json!("Policy") {
            return Err("an audit policy must have kind: Policy".into());
        }
        let mut rules = Vec::new();
        for r in v["rules"].as_array().into_iter().flatten() {
            rules.push(Rule {
                level: Level::parse(r["level"].as_str().unwrap_or_default())?,
                users: strings(&r["users"]),
                user_groups: strings(&r["userGroups"]),
                verbs: strings(&r["verbs"]),
                resources: r["resources"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|g| GroupResources {
                        group: g["group"].as_str().unwrap_or_default().to_string(),
                        resources: strings(&g["resources"]),
                        resource_names: strings(&g["resourceNames"]),
                    })
                    .collect(),
                namespaces: strings(&r["namespaces"]),
                non_resource_urls: strings(&r["nonResourceURLs"]),
                omit_stages: strings(&r["omitStages"]),
            });
        }
        Ok(Policy {
            rules,
            omit_stages: strings(&v["omitStages"]),
        })
    }

    /// Read a policy file.
    pub fn load(path: &Path) -> Result<Policy, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        Policy::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The level and omitted stages for a request.
    fn decide(&self, user: &UserInfo, ri: &RequestInfo) -> (Level, Vec<String>) {
        for r in &self.rules {
            if r.matches(user, ri) {
                let mut omit = self.omit_stages.clone();
                omit.extend(r.omit_stages.iter().cloned());
                return (r.level, omit);
            }
        }
        (Level::None, vec![])
    }
}

impl Rule {
    fn matches(&self, user: &UserInfo, ri: &RequestInfo) -> bool {
        if !self.users.is_empty() && !self.users.contains(&user.username) {
            return false;
        }
        if !self.user_groups.is_empty() && !self.user_groups.iter().any(|g| user.in_group(g)) {
            return false;
        }
        if !self.verbs.is_empty() && !self.verbs.contains(&ri.verb) {
            return false;
        }
        if ri.is_resource_request {
            if !self.non_resource_urls.is_empty() {
                return false;
            }
            if !self.namespaces.is_empty() && !self.namespaces.contains(&ri.namespace) {
                return false;
            }
            if !self.resources.is_empty() {
                let full = if ri.subresource.is_empty() {
                    ri.resource.clone()
                } else {
                    format!("{}/{}", ri.resource, ri.subresource)
                };
                return self.resources.iter().any(|g| {
                    g.group == ri.api_group
                        && (g.resources.is_empty()
                            || g.resources.iter().any(|r| {
                                r == "*"
                                    || *r == full
                                    || (r == &format!("{}/*", ri.resource)
                                        && !ri.subresource.is_empty())
                                    || (r.starts_with("*/")
                                        && r.get(2..) == Some(ri.subresource.as_str()))
                            }))
                        && (g.resource_names.is_empty() || g.resource_names.contains(&ri.name))
                });
            }
            true
        } else {
            if !self.resources.is_empty() || !self.namespaces.is_empty() {
                return false;
            }
            if self.non_resource_urls.is_empty() {
                return true;
            }
            self.non_resource_urls
                .iter()
                .any(|u| match u.strip_suffix('*') {
                    Some(prefix) => ri.path.starts_with(prefix),
                    None => *u == ri.path,
                })
        }
    }
}

/// Where events go: a policy and a JSON-lines file, written by a thread of its own.
pub struct AuditSink {
    policy: Policy,
    lines: tokio::sync::mpsc::Sender<Line>,
}

/// One event for the writer; `written` hears when it is in the file.
struct Line {
    bytes: Vec<u8>,
    written: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Events waiting for the writer at most (then requests wait to hand theirs over).
const QUEUE: usize = 4096;

impl std::fmt::Debug for AuditSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditSink")
            .field("policy", &self.policy)
            .finish()
    }
}

impl AuditSink {
    /// Append events to the file at `path` (created if missing).
    /// The writer thread takes every event queued, writes them with one write and one flush,
    /// then tells the requests waiting for theirs (group commit): no request thread blocks on
    /// the file, and a request's ResponseComplete event is in the file before its answer goes.
    pub fn open(path: &Path, policy: Policy) -> std::io::Result<AuditSink> {
        let file = crate::files::append_private(path).map_err(std::io::Error::other)?;
        let (lines, rx) = tokio::sync::mpsc::channel(QUEUE);
        std::thread::Builder::new()
            .name("kubox-audit".into())
            .spawn(move || write_lines(file, rx))?;
        Ok(AuditSink { policy, lines })
    }

    /// Queue an event; with `wait`, return once it is written.
    async fn write(&self, event: &Value, wait: bool) {
        // Written as kube's audit log writes events: Go's encoder (`&` in a request URI as
        // `\u0026`).
        let mut bytes = kubox_apimachinery::json_text::to_vec(event).unwrap_or_default();
        bytes.push(b'\n');
        let (tx, rx) = tokio::sync::oneshot::channel();
        let line = Line {
            bytes,
            written: wait.then_some(tx),
        };
        if self.lines.send(line).await.is_err() {
            tracing::warn!("the audit log writer has stopped");
            return;
        }
        if wait {
            let _ = rx.await;
        }
    }

    /// The event kube-apiserver logs for a request nobody authenticated (stage
    /// ResponseStarted, an empty user, why in responseStatus.message), when the policy logs
    /// such requests.
    pub async fn failed_authentication(&self, req: &http::request::Parts) {
        let ri = req
            .extensions
            .get::<Arc<RequestInfo>>()
            .cloned()
            .unwrap_or_default();
        let (level, omit) = self.policy.decide(&UserInfo::default(), &ri);
        if level == Level::None || omit.iter().any(|o| o == "ResponseStarted") {
            return;
        }
        let header = |name: &str| {
            req.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .trim()
                .to_string()
        };
        let mut methods = Vec::new();
        let authorization = header("authorization");
        let scheme = authorization
            .split(' ')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if scheme == "basic" {
            methods.push("basic");
        }
        if scheme == "bearer" && authorization.contains(' ') {
            methods.push("bearer");
        }
        if req.uri.query().is_some_and(|q| {
            q.split('&')
                .any(|kv| kv.starts_with("access_token=") && kv.len() > 13)
        }) {
            methods.push("access_token");
        }
        if req
            .extensions
            .get::<crate::authn::Peer>()
            .is_some_and(|p| p.client_cert.is_some())
        {
            methods.push("x509");
        }
        let message = if methods.is_empty() {
            "Authentication failed, no credentials provided".to_string()
        } else {
            format!("Authentication failed, attempted: {}", methods.join(", "))
        };
        let mut event = new_event(
            level,
            &audit_id_of(&req.extensions),
            "ResponseStarted",
            &req.uri,
            &ri.verb,
            json!({}),
            source_ips(&req.headers, &req.extensions),
        );
        event["responseStatus"] = json!({"metadata": {}, "message": message, "code": 401});
        let ua = header("user-agent");
        if !ua.is_empty() {
            event["userAgent"] = json!(ua);
        }
        self.write(&event, true).await;
    }
}

/// An event's common fields at `stage`, received now.
fn new_event(
    level: Level,
    audit_id: &str,
    stage: &str,
    uri: &http::Uri,
    verb: &str,
    user: Value,
    source_ips: Vec<String>,
) -> Value {
    let received = now();
    json!({
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": level.as_str(),
        "auditID": audit_id,
        "stage": stage,
        "requestURI": uri.to_string(),
        "verb": verb,
        "user": user,
        "sourceIPs": source_ips,
        "requestReceivedTimestamp": received,
        "stageTimestamp": received,
    })
}

/// The writer thread: every queued line, one write and one flush, then the acknowledgements.
fn write_lines(file: std::fs::File, mut rx: tokio::sync::mpsc::Receiver<Line>) {
    let mut out = std::io::BufWriter::with_capacity(256 * 1024, file);
    while let Some(first) = rx.blocking_recv() {
        let mut done = Vec::new();
        let mut next = Some(first);
        while let Some(line) = next {
            if let Err(e) = out.write_all(&line.bytes) {
                tracing::warn!(error = %e, "writing the audit log failed");
            }
            done.extend(line.written);
            next = rx.try_recv().ok();
        }
        if let Err(e) = out.flush() {
            tracing::warn!(error = %e, "writing the audit log failed");
        }
        for d in done {
            let _ = d.send(());
        }
    }
}

/// The audit filter of the chain.
#[derive(Clone)]
pub struct AuditFilter {
    sink: Option<Arc<AuditSink>>,
}

impl AuditFilter {
    /// A filter writing to `sink` (None: only the `Audit-ID` header).
    pub fn new(sink: Option<Arc<AuditSink>>) -> Self {
        AuditFilter { sink }
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn body_json(bytes: &[u8]) -> Option<Value> {
    serde_json::from_slice(bytes).ok()
}

/// Where the impersonation filter (after this one) records whom a request impersonates, for the
/// `impersonatedUser` of the request's ResponseComplete event.
#[derive(Clone, Default)]
pub struct ImpersonatedSlot(pub Arc<Mutex<Option<UserInfo>>>);

/// The client's addresses as kube's `utilnet.SourceIPs` gives them: those `X-Forwarded-For`
/// names, then `X-Real-Ip`, then the connection's peer (127.0.0.1 for an in-process request),
/// each once.
fn source_ips(headers: &http::HeaderMap, extensions: &http::Extensions) -> Vec<String> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let mut ips: Vec<std::net::IpAddr> = Vec::new();
    let forwarded = header("x-forwarded-for").split(',');
    for candidate in forwarded.chain(std::iter::once(header("x-real-ip"))) {
        if let Ok(ip) = candidate.trim().parse() {
            if !ips.contains(&ip) {
                ips.push(ip);
            }
        }
    }
    let peer = extensions
        .get::<crate::authn::Peer>()
        .map(|p| p.addr.ip())
        .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
    if !ips.contains(&peer) {
        ips.push(peer);
    }
    ips.into_iter().map(|ip| ip.to_string()).collect()
}

/// A version 4 UUID from the thread's random generator (object uids, audit IDs: `Uuid::new_v4` asks
/// the kernel each time).
pub fn random_uuid() -> String {
    random_v4().to_string()
}

/// The UUID [`random_uuid`] writes out, for a caller that formats it itself.
fn random_v4() -> uuid::Uuid {
    uuid::Builder::from_random_bytes(rand::random()).into_uuid()
}

/// The header a request may name its audit ID in, and every answer carries it in.
const AUDIT_ID: http::HeaderName = http::HeaderName::from_static("audit-id");

/// A request's audit ID (in its extensions, from [`AuditInit`]).
#[derive(Clone, Debug)]
pub enum AuditId {
    /// Made for the request.
    New(uuid::Uuid),
    /// The client's `Audit-ID` header, as sent.
    Sent(HeaderValue),
}

impl AuditId {
    /// The ID as text for an audit event.
    pub fn text(&self) -> String {
        match self {
            AuditId::New(id) => id.hyphenated().to_string(),
            AuditId::Sent(v) => String::from_utf8_lossy(v.as_bytes()).into_owned(),
        }
    }

    /// The ID as the answer's `Audit-ID` header.
    fn header(self) -> HeaderValue {
        match self {
            // Formatted on the stack: this runs for every request.
            AuditId::New(id) => {
                let mut buf = uuid::Uuid::encode_buffer();
                HeaderValue::from_str(id.hyphenated().encode_lower(&mut buf))
                    .unwrap_or_else(|_| HeaderValue::from_static("unknown"))
            }
            AuditId::Sent(v) => v,
        }
    }
}

/// The audit ID of a request: from [`AuditInit`], else (a request that did not pass it) new.
fn audit_id_of(ext: &http::Extensions) -> String {
    ext.get::<AuditId>().map_or_else(random_uuid, AuditId::text)
}

/// kube-apiserver's WithAuditInit, the outermost step of the chain: a request's audit ID is the
/// client's `Audit-ID` header when it sends one (kept as sent), else a new UUID; it goes into
/// the request's extensions for the audit log, and onto the answer unless the answer (an
/// extension server's) already carries one.
#[derive(Clone, Copy, Debug, Default)]
pub struct AuditInit;

impl Filter for AuditInit {
    fn call(&self, mut req: Req, next: &Next) -> BoxFuture {
        let id = match req.headers().get(&AUDIT_ID).filter(|v| !v.is_empty()) {
            Some(v) => AuditId::Sent(v.clone()),
            None => AuditId::New(random_v4()),
        };
        req.extensions_mut().insert(id.clone());
        let answer = next.oneshot(req);
        Box::pin(answer.map(move |resp| {
            let mut resp = resp?;
            if !resp.headers().contains_key(&AUDIT_ID) {
                resp.headers_mut().insert(AUDIT_ID, id.header());
            }
            Ok(resp)
        }))
    }
}

impl Filter for AuditFilter {
    fn call(&self, req: Req, next: &Next) -> BoxFuture {
        let ri = req
            .extensions()
            .get::<Arc<RequestInfo>>()
            .cloned()
            .unwrap_or_default();
        let audited = self.sink.as_ref().and_then(|s| {
            let (level, omit) = match req.extensions().get::<UserInfo>() {
                Some(user) => s.policy.decide(user, &ri),
                None => s.policy.decide(&UserInfo::loopback(), &ri),
            };
            (level > Level::None).then(|| (s.clone(), level, omit))
        });
        let Some((sink, level, omit)) = audited else {
            // Not audited (no policy, or level None): nothing is copied for an event that is
            // never written (the Audit-Id answer header is [`AuditInit`]'s).
            return next.oneshot(req);
        };
        let next = next.clone();
        Box::pin(async move {
            let audit_id = audit_id_of(req.extensions());
            let user = req
                .extensions()
                .get::<UserInfo>()
                .cloned()
                .unwrap_or_else(UserInfo::loopback);
            let mut event = new_event(
                level,
                &audit_id,
                "RequestReceived",
                req.uri(),
                &ri.verb,
                json!(user),
                source_ips(req.headers(), req.extensions()),
            );
            if let Some(ua) = req
                .headers()
                .get(http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
            {
                event["userAgent"] = json!(ua);
            }
            if ri.is_resource_request {
                let mut r = json!({"resource": ri.resource, "apiVersion": ri.api_version});
                for (k, v) in [
                    ("namespace", &ri.namespace),
                    ("name", &ri.name),
                    ("apiGroup", &ri.api_group),
                    ("subresource", &ri.subresource),
                ] {
                    if !v.is_empty() {
                        r[k] = json!(v);
                    }
                }
                event["objectRef"] = r;
            }
            if level >= Level::Request {
                if let Some(b) = body_json(req.body()) {
                    event["requestObject"] = b;
                }
            }
            if !omit.iter().any(|o| o == "RequestReceived") {
                sink.write(&event, false).await;
            }
            let impersonated = ImpersonatedSlot::default();
            let mut req = req;
            req.extensions_mut().insert(impersonated.clone());
            let (resp, annotations) =
                crate::admission::policy::audit::collect(next.oneshot(req)).await;
            let mut resp = match resp {
                Ok(r) => r,
                Err(e) => match e {},
            };
            if omit.iter().any(|o| o == "ResponseComplete") {
                return Ok(resp);
            }
            event["stage"] = json!("ResponseComplete");
            if let Some(user) = impersonated.0.lock().ok().and_then(|u| u.clone()) {
                event["impersonatedUser"] = json!(user);
            }
            event["stageTimestamp"] = json!(now());
            let code = resp.status().as_u16();
            event["responseStatus"] = json!({"metadata": {}, "code": code});
            if !annotations.is_empty() {
                event["annotations"] = Value::Object(
                    annotations
                        .into_iter()
                        .map(|(k, v)| (k, Value::String(v)))
                        .collect(),
                );
            }
            let stream = ri.verb == "watch";
            if !stream && (level == Level::RequestResponse || code >= 400) {
                let (parts, body) = resp.into_parts();
                let bytes = body
                    .collect()
                    .await
                    .map(|c| c.to_bytes())
                    .unwrap_or_default();
                if let Some(b) = body_json(&bytes) {
                    if code >= 400 {
                        for k in ["status", "message", "reason"] {
                            if let Some(v) = b.get(k) {
                                event["responseStatus"][k] = v.clone();
                            }
                        }
                    }
                    if level == Level::RequestResponse {
                        event["responseObject"] = b;
                    }
                }
                resp = Response::from_parts(parts, crate::body::full(bytes));
            }
            sink.write(&event, true).await;
            Ok(resp)
        })
    }
}
