//! `MutatingAdmissionWebhook` and `ValidatingAdmissionWebhook`: admissionregistration.k8s.io/v1
//! webhook configurations, called with an `admission.k8s.io/v1` AdmissionReview.
//!
//! A webhook is called when one of its `rules` matches (operations, groups, versions, resources
//! with subresources, scope; with `matchPolicy: Equivalent`, the default, a rule naming another
//! served version of the same resource matches too, and the webhook gets the object at that
//! version), its `namespaceSelector` and `objectSelector` match, and its `matchConditions` (CEL
//! over `object`, `oldObject`, `request`) all hold. A dry-run request is refused (400) by a
//! matching webhook whose `sideEffects` is not `None` / `NoneOnDryRun`. A call that fails
//! (unreachable, TLS, `timeoutSeconds`, a bad reply, a match condition that errors) refuses the
//! request under `failurePolicy: Fail` (the default) and is skipped under `Ignore`. A denial
//! carries the webhook's `status` (code at least 400) and kube's `admission webhook "…" denied
//! the request` message; `warnings` become `Warning` headers; `auditAnnotations` go to the audit
//! event. Mutating webhooks answer with a base64 JSONPatch; those with
//! `reinvocationPolicy: IfNeeded` are called once more when a later webhook changed the object.
//! Configurations are read from the store per request, in name order; validating webhooks are
//! called one after another. Writes to admissionregistration.k8s.io objects are never sent to
//! webhooks, so a broken webhook cannot lock its own configuration.
//!
//! Calls go through [`WebhookCaller`], implemented by the server's HTTPS
//! [`crate::webhook::WebhookClient`] (shared with CRD conversion); tests may substitute one.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use http::StatusCode;
use serde_json::{json, Value};

use super::matching;
use super::{AdmissionPlugin, Attributes, Operation};
use crate::registry::Backend;
use crate::registry::ResourceInfo;
use crate::status::{ApiError, ApiResult};

const GROUP: &str = "admissionregistration.k8s.io";

/// Posts an AdmissionReview to the webhook a `clientConfig` names and returns its reply.
#[async_trait]
pub trait WebhookCaller: Send + Sync {
    /// POST `review` (JSON) within `timeout`; Err carries a message in kube's words
    /// (`Post "https://…": context deadline exceeded`).
    async fn call(
        &self,
        client_config: &Value,
        review: &Value,
        timeout: Duration,
    ) -> Result<Value, String>;
}

/// The server's HTTPS client (`clientConfig` url or service through the resolver, caBundle).
#[async_trait]
impl WebhookCaller for crate::webhook::WebhookClient {
    async fn call(
        &self,
        client_config: &Value,
        review: &Value,
        timeout: Duration,
    ) -> Result<Value, String> {
        let config = crate::webhook::ClientConfig::from_json(client_config)?;
        self.post(&config, review, timeout)
            .await
            .map_err(|e| e.to_string())
    }
}

/// Which of the two plugins.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Mutating,
    Validating,
}

pub(super) struct MutatingAdmissionWebhook(pub(super) Arc<dyn WebhookCaller>);
pub(super) struct ValidatingAdmissionWebhook(pub(super) Arc<dyn WebhookCaller>);

/// A webhook that matched, with the resource version it is called at.
struct Matched {
    hook: Value,
    info: Arc<ResourceInfo>,
}

/// The webhooks of every configuration of one kind, configurations in name order.
async fn webhooks(state: &Backend, kind: Kind) -> ApiResult<Vec<Value>> {
    let resource = match kind {
        Kind::Mutating => "mutatingwebhookconfigurations",
        Kind::Validating => "validatingwebhookconfigurations",
    };
    let mut configs = super::list_resource(state, GROUP, resource, "").await?;
    configs.sort_by(|a, b| crate::objects::name_of(a).cmp(crate::objects::name_of(b)));
    Ok(configs
        .into_iter()
        .flat_map(|c| match c.get("webhooks").cloned() {
            Some(Value::Array(hooks)) => hooks,
            _ => Vec::new(),
        })
        .collect())
}

fn hook_name(h: &Value) -> &str {
    h["name"].as_str().unwrap_or_default()
}

fn fail_open(h: &Value) -> bool {
    h["failurePolicy"].as_str() == Some("Ignore")
}

/// The resource version a webhook's rules match the request at (None: no match).
fn rules_match(state: &Backend, h: &Value, a: &Attributes) -> Option<Arc<ResourceInfo>> {
    let rules = h["rules"].as_array()?;
    if rules.iter().any(|r| matching::rule_matches(r, a)) {
        return Some(a.info.clone());
    }
    if h["matchPolicy"].as_str() == Some("Exact") {
        return None;
    }
    // Equivalent: the same resource at another served version.
    let snap = state.registry.snapshot();
    let versions = snap.group(a.group())?.versions.clone();
    for v in versions.iter().filter(|v| **v != a.info.version) {
        let Some(info) = snap.get(a.group(), v, a.resource()) else {
            continue;
        };
        let mut alt = a.clone();
        alt.info = info.clone();
        if rules.iter().any(|r| matching::rule_matches(r, &alt)) {
            return Some(info);
        }
    }
    None
}

/// An error for a webhook call that failed (failurePolicy Fail).
fn call_failed(name: &str, why: &str) -> ApiError {
    ApiError::internal(format!(
        "failed calling webhook \"{name}\": failed to call webhook: {why}"
    ))
}

/// kube's `ToStatusErr`: a denial with the webhook's status.
fn denied(name: &str, status: &Value) -> ApiError {
    let by = format!("admission webhook \"{name}\" denied the request");
    let code = status["code"]
        .as_u64()
        .and_then(|c| u16::try_from(c).ok())
        .filter(|c| *c >= 400)
        .and_then(|c| StatusCode::from_u16(c).ok())
        .unwrap_or(StatusCode::BAD_REQUEST);
    let reason = status["reason"].as_str().unwrap_or_default();
    let message = match status["message"].as_str().filter(|m| !m.is_empty()) {
        Some(m) => format!("{by}: {m}"),
        None if !reason.is_empty() => format!("{by}: {reason}"),
        None => format!("{by} without explanation"),
    };
    let mut e = ApiError::with_code_and_reason(code, reason, message);
    if status["details"].is_object() {
        e.details = Some(status["details"].clone());
    }
    e
}

/// Collect what matches, in order: the webhooks to call and the version each sees.
async fn matching_hooks(state: &Backend, a: &Attributes, kind: Kind) -> ApiResult<Vec<Matched>> {
    if a.group() == GROUP {
        return Ok(Vec::new());
    }
    let hooks = webhooks(state, kind).await?;
    if hooks.is_empty() {
        return Ok(Vec::new());
    }
    let ns = matching::namespace_object(state, a).await?;
    let mut out = Vec::new();
    for h in hooks {
        let Some(info) = rules_match(state, &h, a) else {
            continue;
        };
        if !matching::namespace_matches(&h["namespaceSelector"], a, ns.as_deref())
            || !matching::object_matches(&h["objectSelector"], a)
        {
            continue;
        }
        out.push(Matched { hook: h, info });
    }
    Ok(out)
}

/// `matchConditions`: Ok(true) to call, Ok(false) to skip, Err when one errors.
fn conditions_hold(h: &Value, a: &Attributes, request: &Value) -> Result<bool, String> {
    let object = a.object.clone().unwrap_or(Value::Null);
    let old = a.old_object.clone().unwrap_or(Value::Null);
    let mut budget = kubox_openapi::CostBudget::match_conditions();
    for c in h["matchConditions"].as_array().into_iter().flatten() {
        let src = c["expression"].as_str().unwrap_or_default();
        let e = kubox_openapi::Expression::cached(src).map_err(|e| {
            format!(
                "compilation failed for match condition {:?}: {e}",
                c["name"]
            )
        })?;
        match e.eval_within(
            &[
                ("object", &object),
                ("oldObject", &old),
                ("request", request),
            ],
            &mut budget,
        ) {
            Ok(Value::Bool(true)) => {}
            Ok(Value::Bool(false)) => return Ok(false),
            Ok(other) => {
                return Err(format!(
                    "match condition {:?} did not evaluate to a bool: {other}",
                    c["name"]
                ))
            }
            Err(err) => {
                return Err(format!(
                    "failed to evaluate match condition {:?}: {err}",
                    c["name"]
                ))
            }
        }
    }
    Ok(true)
}

/// The object at the webhook's version (objects in attributes are at the storage version).
async fn at_version(info: &ResourceInfo, obj: &Option<Value>) -> ApiResult<Value> {
    match obj {
        Some(o) => crate::objects::to_version(info, o.clone()).await,
        None => Ok(Value::Null),
    }
}

/// Call one webhook. Ok(None) when it was skipped (conditions, Ignore on failure); Ok(Some) is
/// the `response` of an admitted review; Err refuses the request.
async fn call(caller: &dyn WebhookCaller, m: &Matched, a: &Attributes) -> ApiResult<Option<Value>> {
    let h = &m.hook;
    let name = hook_name(h);
    let uid = uuid::Uuid::new_v4().to_string();
    let mut request = matching::request_json(a, &uid);
    let gvk = json!({"group": m.info.group, "version": m.info.version, "kind": m.info.kind});
    let gvr =
        json!({"group": m.info.group, "version": m.info.version, "resource": m.info.resource});
    request["kind"] = gvk;
    request["resource"] = gvr;
    match conditions_hold(h, a, &request) {
        Ok(true) => {}
        Ok(false) => return Ok(None),
        Err(e) if fail_open(h) => {
            tracing::warn!(webhook = name, error = %e, "match condition failed; ignored");
            return Ok(None);
        }
        Err(e) => return Err(call_failed(name, &e)),
    }
    if a.dry_run && !matches!(h["sideEffects"].as_str(), Some("None" | "NoneOnDryRun")) {
        return Err(ApiError::bad_request(format!(
            "admission webhook \"{name}\" does not support dry run"
        )));
    }
    request["object"] = at_version(&m.info, &a.object).await?;
    request["oldObject"] = at_version(&m.info, &a.old_object).await?;
    let versions: Vec<&str> = h["admissionReviewVersions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let api_version = if versions.contains(&"v1") || !versions.contains(&"v1beta1") {
        "admission.k8s.io/v1"
    } else {
        "admission.k8s.io/v1beta1"
    };
    let review = json!({"apiVersion": api_version, "kind": "AdmissionReview", "request": request});
    let timeout = Duration::from_secs(h["timeoutSeconds"].as_u64().unwrap_or(10).clamp(1, 30));
    let reply = match caller.call(&h["clientConfig"], &review, timeout).await {
        Ok(r) => r,
        Err(e) if fail_open(h) => {
            tracing::warn!(webhook = name, error = %e, "webhook call failed; ignored");
            return Ok(None);
        }
        Err(e) => return Err(call_failed(name, &e)),
    };
    let resp = &reply["response"];
    let bad = if !resp.is_object() {
        Some("webhook response was absent".to_string())
    } else if resp["uid"].as_str() != Some(uid.as_str()) {
        Some(format!(
            "expected response.uid=\"{uid}\", got \"{}\"",
            resp["uid"].as_str().unwrap_or_default()
        ))
    } else {
        None
    };
    if let Some(why) = bad {
        if fail_open(h) {
            return Ok(None);
        }
        return Err(call_failed(name, &why));
    }
    for w in resp["warnings"].as_array().into_iter().flatten() {
        if let Some(w) = w.as_str() {
            crate::warning::add(w);
        }
    }
    if let Some(anns) = resp["auditAnnotations"].as_object() {
        for (k, v) in anns {
            super::policy::audit::add(
                format!("{name}/{k}"),
                v.as_str().unwrap_or_default().to_string(),
            );
        }
    }
    if resp["allowed"] != json!(true) {
        return Err(denied(name, &resp["status"]));
    }
    Ok(Some(resp.clone()))
}

/// Apply a mutating webhook's JSONPatch to the object; true when it changed.
async fn apply_patch(m: &Matched, a: &mut Attributes, resp: &Value) -> ApiResult<bool> {
    let name = hook_name(&m.hook);
    let Some(patch) = resp["patch"].as_str().filter(|p| !p.is_empty()) else {
        return Ok(false);
    };
    if resp["patchType"].as_str() != Some("JSONPatch") {
        return Err(call_failed(
            name,
            &format!("unsupported patch type {:?}", resp["patchType"]),
        ));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(patch)
        .map_err(|e| call_failed(name, &format!("patch is not base64: {e}")))?;
    let ops: json_patch::Patch = serde_json::from_slice(&bytes)
        .map_err(|e| call_failed(name, &format!("patch is not a JSON patch: {e}")))?;
    let Some(obj) = &a.object else {
        return Ok(false);
    };
    let mut doc = crate::objects::to_version(&m.info, obj.clone()).await?;
    let before = doc.clone();
    json_patch::patch(&mut doc, &ops).map_err(|e| {
        ApiError::internal(format!(
            "admission webhook \"{name}\" attempted to modify the object, which is not supported for this operation: {e}"
        ))
    })?;
    if doc == before {
        return Ok(false);
    }
    a.object = Some(crate::objects::to_storage_version(&m.info, doc).await?);
    a.patched_by_webhook = true;
    Ok(true)
}

#[async_trait]
impl AdmissionPlugin for MutatingAdmissionWebhook {
    fn name(&self) -> &'static str {
        "MutatingAdmissionWebhook"
    }

    fn handles(&self, op: Operation) -> bool {
        op != Operation::Connect
    }

    async fn admit(&self, state: &Arc<Backend>, a: &mut Attributes) -> ApiResult<()> {
        let hooks = matching_hooks(state, a, Kind::Mutating).await?;
        if hooks.is_empty() {
            return Ok(());
        }
        // First pass; remember, per webhook, whether a later one changed the object.
        let mut called_at: Vec<Option<usize>> = vec![None; hooks.len()];
        let mut last_change = None;
        for (i, m) in hooks.iter().enumerate() {
            if let Some(resp) = call(self.0.as_ref(), m, a).await? {
                called_at[i] = Some(i);
                if apply_patch(m, a, &resp).await? {
                    last_change = Some(i);
                }
            }
        }
        // reinvocationPolicy IfNeeded: once more for those called before a later change.
        for (i, m) in hooks.iter().enumerate() {
            let if_needed = m.hook["reinvocationPolicy"].as_str() == Some("IfNeeded");
            if if_needed && called_at[i].is_some() && last_change.is_some_and(|c| c > i) {
                if let Some(resp) = call(self.0.as_ref(), m, a).await? {
                    apply_patch(m, a, &resp).await?;
                }
            }
        }
        Ok(())
    }
}

#[async_trait]
impl AdmissionPlugin for ValidatingAdmissionWebhook {
    fn name(&self) -> &'static str {
        "ValidatingAdmissionWebhook"
    }

    fn handles(&self, op: Operation) -> bool {
        op != Operation::Connect
    }

    async fn validate(&self, state: &Arc<Backend>, a: &Attributes) -> ApiResult<()> {
        for m in matching_hooks(state, a, Kind::Validating).await? {
            call(self.0.as_ref(), &m, a).await?;
        }
        Ok(())
    }
}
