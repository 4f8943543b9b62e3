//! Injected faults: rules that make the server fail on purpose, so a controller's retry,
//! relist and backoff paths run in tests, deterministically.
//!
//! A rule matches requests (verb as kube names it, group, resource, subresource, namespace,
//! name, user, user agent — every condition set must hold) and acts: answer a Status (409
//! Conflict, 429 with Retry-After, 500, 503, 504…), add latency, end a watch after N events,
//! answer a watch with 410 Gone, cut the connection mid-response, or compact the store's history
//! now. It fires at most `times` times (unbounded when unset), each match with `probability`
//! (drawn from a generator seeded by [`FaultsSpec::seed`], so a run replays). Rules are tried
//! in order; the first that fires acts. Each reports how often it fired.
//!
//! In process: [`crate::server::ServerHandle::faults`]. For a process: `kubox serve --faults
//! FILE` (YAML or JSON of a [`FaultsSpec`]) and the admin-only `/kubox/v1/faults` (GET the
//! rules and counts, PUT a spec, DELETE them all).
//!
//! ```yaml
//! seed: 7
//! rules:
//! - match: {verb: update, resource: deployments, subresource: status}
//!   action: {status: {code: 409}}
//!   times: 2
//! - match: {verb: watch, resource: configmaps}
//!   action: watchGone
//!   times: 1
//! ```

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use http::{HeaderValue, Response, StatusCode};
use http_body_util::BodyExt;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::authn::UserInfo;
use crate::body::{error_response, Body};
use crate::chain::{BoxFuture, Filter, Next, Req};
use crate::request_info::RequestInfo;
use crate::status::ApiError;

/// Which requests a rule applies to: every set field must match.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Match {
    /// kube's verb (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
    /// `deletecollection`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verb: Option<String>,
    /// API group ("" for the core group).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Resource (plural).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// Subresource ("" for the resource itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subresource: Option<String>,
    /// Namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Object name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// User name (after impersonation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// A string the User-Agent header contains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

/// The Status a rule answers.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StatusFault {
    /// HTTP code (400–599).
    pub code: u16,
    /// The Status reason (default: kube's for the code: Conflict, TooManyRequests,
    /// InternalError, ServiceUnavailable, Timeout…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The Status message (default: says the fault was injected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// A Retry-After header, in seconds (and `details.retryAfterSeconds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
}

/// What a rule does when it fires.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Action {
    /// Answer this Status instead of serving the request.
    Status(StatusFault),
    /// Wait this long, then serve the request.
    Latency {
        /// Milliseconds.
        millis: u64,
    },
    /// Serve a watch, and end it after this many events (bookmarks count).
    EndWatchAfter {
        /// Events.
        events: u64,
    },
    /// Answer a watch as for a compacted resourceVersion: one ERROR event holding a 410
    /// Expired Status (as kube-apiserver answers it), so the client relists.
    WatchGone,
    /// Serve the request and cut the connection halfway through the answer's body.
    DropConnection,
    /// Compact the store's history up to the current revision, then serve the request.
    Compact,
}

/// One rule.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    /// Which requests.
    #[serde(default, rename = "match")]
    pub matches: Match,
    /// What happens.
    pub action: Action,
    /// Fire at most this many times (unbounded when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u64>,
    /// Fire on a match with this probability (0–1; always when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
}

/// A set of rules and the seed of their random draws: the form of `--faults FILE` and of
/// `/kubox/v1/faults`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultsSpec {
    /// Seed of the probability draws.
    #[serde(default)]
    pub seed: u64,
    /// The rules, tried in order.
    #[serde(default)]
    pub rules: Vec<Rule>,
}

impl FaultsSpec {
    /// Read a spec from YAML or JSON.
    pub fn parse(text: &[u8]) -> Result<FaultsSpec, String> {
        // Through a JSON tree: actions are written as one-key maps (`{status: {code: 409}}`)
        // or plain names (`watchGone`), as serde's JSON form of an enum.
        let tree: serde_json::Value =
            crate::encoding::from_yaml(text).map_err(|e| format!("not a faults spec: {e}"))?;
        serde_json::from_value(tree).map_err(|e| format!("not a faults spec: {e}"))
    }
}

/// A rule as reported: the rule and how often it fired.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RuleReport {
    /// Its id ([`Faults::add`] returns it).
    pub id: u64,
    /// The rule.
    #[serde(flatten)]
    pub rule: Rule,
    /// How many requests it acted on.
    pub fired: u64,
}

struct Live {
    id: u64,
    rule: Rule,
    fired: AtomicU64,
}

/// The fault rules of one server.
pub struct Faults {
    rules: Mutex<Vec<Arc<Live>>>,
    /// Whether any rule is set (read by every request; written under the rules' lock).
    armed: AtomicBool,
    rng: Mutex<rand::rngs::StdRng>,
    next_id: AtomicU64,
    store: kubox_storage::DynStore,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Rule {
    /// A rule acting on every request that `matches`.
    pub fn new(matches: Match, action: Action) -> Rule {
        Rule {
            matches,
            action,
            times: None,
            probability: None,
        }
    }

    /// At most `n` times.
    pub fn times(mut self, n: u64) -> Rule {
        self.times = Some(n);
        self
    }

    /// With probability `p`.
    pub fn probability(mut self, p: f64) -> Rule {
        self.probability = Some(p);
        self
    }

    fn check(&self) -> Result<(), String> {
        if let Some(p) = self.probability {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("probability {p} is not between 0 and 1"));
            }
        }
        if let Action::Status(s) = &self.action {
            if !(400..=599).contains(&s.code) {
                return Err(format!("status code {} is not between 400 and 599", s.code));
            }
        }
        Ok(())
    }
}

impl Match {
    /// Match requests of this verb on this resource (any group, namespace, name).
    pub fn verb_resource(verb: &str, resource: &str) -> Match {
        Match {
            verb: Some(verb.to_string()),
            resource: Some(resource.to_string()),
            ..Match::default()
        }
    }

    fn matches(&self, info: &RequestInfo, user: &str, user_agent: &str) -> bool {
        let is = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        is(&self.verb, &info.verb)
            && is(&self.group, &info.api_group)
            && is(&self.resource, &info.resource)
            && is(&self.subresource, &info.subresource)
            && is(&self.namespace, &info.namespace)
            && is(&self.name, &info.name)
            && is(&self.user, user)
            && self
                .user_agent
                .as_deref()
                .is_none_or(|w| user_agent.contains(w))
    }
}

impl Faults {
    /// No rules; `store` is what a compaction fault compacts.
    pub fn new(store: kubox_storage::DynStore) -> Faults {
        Faults {
            rules: Mutex::new(Vec::new()),
            armed: AtomicBool::new(false),
            rng: Mutex::new(rand::rngs::StdRng::seed_from_u64(0)),
            next_id: AtomicU64::new(1),
            store,
        }
    }

    /// Add a rule (after the others); its id, for [`Faults::fired`].
    pub fn add(&self, rule: Rule) -> Result<u64, String> {
        rule.check()?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut rules = lock(&self.rules);
        rules.push(Arc::new(Live {
            id,
            rule,
            fired: AtomicU64::new(0),
        }));
        self.armed.store(true, Ordering::Release);
        Ok(id)
    }

    /// Replace every rule with those of `spec`, and reseed the draws.
    pub fn set(&self, spec: FaultsSpec) -> Result<Vec<u64>, String> {
        for r in &spec.rules {
            r.check()?;
        }
        *lock(&self.rng) = rand::rngs::StdRng::seed_from_u64(spec.seed);
        self.clear();
        spec.rules.into_iter().map(|r| self.add(r)).collect()
    }

    /// How often rule `id` fired (0 for an unknown id).
    pub fn fired(&self, id: u64) -> u64 {
        lock(&self.rules)
            .iter()
            .find(|r| r.id == id)
            .map_or(0, |r| r.fired.load(Ordering::Relaxed))
    }

    /// Every rule, with how often it fired.
    pub fn report(&self) -> Vec<RuleReport> {
        lock(&self.rules)
            .iter()
            .map(|r| RuleReport {
                id: r.id,
                rule: r.rule.clone(),
                fired: r.fired.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// Remove every rule.
    pub fn clear(&self) {
        let mut rules = lock(&self.rules);
        rules.clear();
        self.armed.store(false, Ordering::Release);
    }

    /// Whether any rule is set: without one, requests pass the faults' step untouched.
    pub fn armed(&self) -> bool {
        self.armed.load(Ordering::Acquire)
    }

    /// The action of the first rule that fires for this request, if any.
    fn fire(&self, info: &RequestInfo, user: &str, user_agent: &str) -> Option<Action> {
        let rules = lock(&self.rules).clone();
        for r in rules {
            if !r.rule.matches.matches(info, user, user_agent) {
                continue;
            }
            match r.rule.action {
                Action::WatchGone | Action::EndWatchAfter { .. } if info.verb != "watch" => {
                    continue
                }
                _ => {}
            }
            if let Some(p) = r.rule.probability {
                if !lock(&self.rng).random_bool(p) {
                    continue;
                }
            }
            // Count the firing only if it is within `times` (concurrent requests race for the
            // last ones).
            let fired = r
                .fired
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    r.rule.times.is_none_or(|t| n < t).then_some(n + 1)
                });
            if fired.is_ok() {
                return Some(r.rule.action.clone());
            }
        }
        None
    }
}

/// kube's reason for a status code.
fn reason_for(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        406 => "NotAcceptable",
        409 => "Conflict",
        410 => "Expired",
        413 => "RequestEntityTooLarge",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "InternalError",
    }
}

/// Marks a watch request an injected fault wants answered as for a compacted
/// resourceVersion: one ERROR event holding a 410 Expired Status, as kube-apiserver sends it.
#[derive(Clone, Copy, Debug)]
pub struct WatchGoneInjected;

/// A body that ends after `frames` frames.
fn first_frames(body: Body, frames: u64) -> Body {
    use futures::StreamExt;
    let stream =
        http_body_util::BodyStream::new(body).take(usize::try_from(frames).unwrap_or(usize::MAX));
    BodyExt::boxed(http_body_util::StreamBody::new(stream))
}

/// The answer with its connection cut halfway: the head promises more bytes than the body
/// sends (a stream without a known length, so the server writes the promised length), so the
/// client sees the connection end early.
async fn cut_halfway(resp: Response<Body>) -> Response<Body> {
    let (mut parts, body) = resp.into_parts();
    let streaming = http_body::Body::size_hint(&body).exact().is_none();
    use futures::StreamExt;
    // Pending once after what is sent, so the server flushes it before the body ends short
    // (and the connection with it).
    let pause = || futures::stream::once(tokio::task::yield_now()).filter_map(|()| async { None });
    let (promised, body) = if streaming {
        let first = http_body_util::BodyStream::new(body).take(1);
        (
            1u64 << 40,
            BodyExt::boxed(http_body_util::StreamBody::new(first.chain(pause()))),
        )
    } else {
        let bytes = body
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        let half = bytes.slice(..bytes.len() / 2);
        let chunk = futures::stream::iter([Ok::<_, std::convert::Infallible>(
            http_body::Frame::data(half),
        )]);
        (
            bytes.len() as u64,
            BodyExt::boxed(http_body_util::StreamBody::new(chunk.chain(pause()))),
        )
    };
    if let Ok(v) = HeaderValue::from_str(&promised.to_string()) {
        parts.headers.insert(http::header::CONTENT_LENGTH, v);
    }
    Response::from_parts(parts, body)
}

/// Marks an answer whose connection an injected fault cuts halfway through its body.
#[derive(Clone, Copy, Debug)]
struct CutHalfway;

/// The step of the chain that cuts the answers marked [`CutHalfway`]: near the outside, after
/// every step that reframes an answer has run. With no rule set when a request arrives, its
/// answer is not looked at (a rule added while it runs applies from the next request).
#[derive(Clone)]
pub struct CutConnections {
    faults: Arc<Faults>,
}

impl CutConnections {
    /// The step for the answers `faults` mark.
    pub fn new(faults: Arc<Faults>) -> Self {
        CutConnections { faults }
    }
}

impl Filter for CutConnections {
    fn call(&self, req: Req, next: &Next) -> BoxFuture {
        if !self.faults.armed() {
            return next.oneshot(req);
        }
        let next = next.clone();
        Box::pin(async move {
            let resp = next.oneshot(req).await?;
            if resp.extensions().get::<CutHalfway>().is_none() {
                return Ok(resp);
            }
            Ok(cut_halfway(resp).await)
        })
    }
}

/// The faults' step of the handler chain (after authentication, impersonation and the
/// recorder, so that the recorder sees what the client got).
#[derive(Clone)]
pub struct FaultFilter {
    faults: Arc<Faults>,
}

impl FaultFilter {
    /// A step applying `faults`.
    pub fn new(faults: Arc<Faults>) -> Self {
        FaultFilter { faults }
    }
}

impl Filter for FaultFilter {
    fn call(&self, req: Req, next: &Next) -> BoxFuture {
        // Most servers never have a rule: their requests pass without the rules' lock.
        if !self.faults.armed() {
            return next.oneshot(req);
        }
        let faults = self.faults.clone();
        let next = next.clone();
        Box::pin(async move {
            let info = req
                .extensions()
                .get::<Arc<RequestInfo>>()
                .cloned()
                .unwrap_or_default();
            // kubox's own admin paths are never faulted (a test could not take its rules back).
            if !info.is_resource_request && info.path.starts_with("/kubox/") {
                return next.oneshot(req).await;
            }
            let user = req
                .extensions()
                .get::<UserInfo>()
                .map(|u| u.username.clone())
                .unwrap_or_default();
            let user_agent = req
                .headers()
                .get(http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let Some(action) = faults.fire(&info, &user, &user_agent) else {
                return next.oneshot(req).await;
            };
            tracing::debug!(verb = %info.verb, resource = %info.resource, ?action, "fault injected");
            match action {
                Action::Status(s) => {
                    let code =
                        StatusCode::from_u16(s.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                    let message = s.message.unwrap_or_else(|| {
                        format!(
                            "injected fault: {} {} {}",
                            info.verb, info.resource, info.name
                        )
                    });
                    let mut err = ApiError::with_code_and_reason(
                        code,
                        s.reason.as_deref().unwrap_or(reason_for(s.code)),
                        message,
                    );
                    if info.is_resource_request {
                        let mut details = serde_json::json!({});
                        for (k, v) in [
                            ("name", &info.name),
                            ("group", &info.api_group),
                            ("kind", &info.resource),
                        ] {
                            if !v.is_empty() {
                                details[k] = serde_json::json!(v);
                            }
                        }
                        err.details = Some(details);
                    }
                    if let Some(secs) = s.retry_after_seconds {
                        err.retry_after = Some(secs);
                        let details = err.details.get_or_insert_with(|| serde_json::json!({}));
                        details["retryAfterSeconds"] = serde_json::json!(secs);
                    }
                    Ok(error_response(&err))
                }
                Action::Latency { millis } => {
                    tokio::time::sleep(Duration::from_millis(millis)).await;
                    next.oneshot(req).await
                }
                Action::WatchGone => {
                    let mut req = req;
                    req.extensions_mut().insert(WatchGoneInjected);
                    next.oneshot(req).await
                }
                Action::EndWatchAfter { events } => {
                    let resp = next.oneshot(req).await?;
                    let (parts, body) = resp.into_parts();
                    Ok(Response::from_parts(parts, first_frames(body, events)))
                }
                Action::DropConnection => {
                    // Cut by [`CutConnections`], outside the steps that still reframe the
                    // answer.
                    let mut resp = next.oneshot(req).await?;
                    resp.extensions_mut().insert(CutHalfway);
                    Ok(resp)
                }
                Action::Compact => {
                    let store = faults.store.clone();
                    if let Ok(rev) = store.current_revision().await {
                        if let Err(e) = store.compact(rev).await {
                            tracing::warn!(error = %e, "injected compaction failed");
                        }
                    }
                    next.oneshot(req).await
                }
            }
        })
    }
}
