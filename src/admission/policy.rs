//! `ValidatingAdmissionPolicy`: admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy and
//! ValidatingAdmissionPolicyBinding, evaluated in the validating phase.
//!
//! For each binding whose policy exists: the policy's `matchConstraints` and the binding's
//! `matchResources` must match the request; with a `paramKind`, the binding's `paramRef` picks
//! the params (by name or selector, in `paramRef.namespace` or the request's namespace;
//! `parameterNotFoundAction`); `matchConditions` must all hold; then `variables` are computed
//! and every `validations` expression must hold. A failure is acted on per the binding's
//! `validationActions`: Deny refuses with kube's message, reason (default Invalid, 422) and
//! code; Warn adds a `Warning` header; Audit records the failure in the audit annotations
//! (`validation.policy.admission.k8s.io/validation_failure`). `auditAnnotations` are computed
//! and recorded likewise. An expression that cannot be evaluated is a failure under
//! `failurePolicy: Fail` (the default) and ignored under `Ignore`.
//!
//! CEL variables: `object`, `oldObject`, `request`, `params`, `namespaceObject`, `variables`
//! (untyped: `status.typeChecking` is never filled in). No `authorizer` variable.

use std::sync::Arc;

use async_trait::async_trait;
use http::StatusCode;
use kubox_openapi::{CostBudget, Expression};
use serde_json::{json, Map, Value};

use super::matching;
use super::{AdmissionPlugin, Attributes, Operation};
use crate::registry::Backend;
use crate::status::{ApiError, ApiResult};

pub(super) struct ValidatingAdmissionPolicy;

const GROUP: &str = "admissionregistration.k8s.io";

/// One failed validation: what went wrong and with which reason.
struct Failure {
    message: String,
    reason: String,
}

/// Evaluate an expression, charged to `budget` in kube's cost units; Err carries kube-style
/// text for the failure.
fn eval(src: &str, vars: &[(&str, &Value)], budget: &mut CostBudget) -> Result<Value, String> {
    let e = Expression::cached(src)
        .map_err(|e| format!("compilation failed for expression '{src}': {e}"))?;
    e.eval_within(vars, budget)
        .map_err(|e| format!("expression '{src}' resulted in error: {e}"))
}

/// Audit annotations recorded by policies for the request being served.
pub mod audit {
    use std::cell::RefCell;
    use std::future::Future;

    tokio::task_local! {
        static ANNOTATIONS: RefCell<Vec<(String, String)>>;
    }

    /// Record an annotation (ignored outside [`collect`]).
    pub fn add(key: String, value: String) {
        let _ = ANNOTATIONS.try_with(|a| a.borrow_mut().push((key, value)));
    }

    /// Run `f` recording annotations; returns its output and them.
    pub async fn collect<F: Future>(f: F) -> (F::Output, Vec<(String, String)>) {
        ANNOTATIONS
            .scope(RefCell::new(Vec::new()), async {
                let out = f.await;
                let a = ANNOTATIONS.with(|a| a.take());
                (out, a)
            })
            .await
    }
}

/// The params a binding selects (one evaluation per param; `[Null]` without a paramKind).
/// Err(message) when params are required and missing (Deny).
async fn params(
    state: &Backend,
    policy: &Value,
    binding: &Value,
    a: &Attributes,
) -> ApiResult<Result<Vec<Value>, String>> {
    let kind = &policy["spec"]["paramKind"];
    if kind.is_null() {
        return Ok(Ok(vec![Value::Null]));
    }
    let pref = &binding["spec"]["paramRef"];
    let not_found = || -> Result<Vec<Value>, String> {
        if pref["parameterNotFoundAction"] == json!("Deny") {
            Err("no params found for policy binding with `Deny` parameterNotFoundAction".into())
        } else {
            Ok(Vec::new())
        }
    };
    if pref.is_null() {
        return Ok(Err(format!(
            "policy '{}' has a paramKind but binding '{}' has no paramRef",
            crate::objects::name_of(policy),
            crate::objects::name_of(binding)
        )));
    }
    let api_version = kind["apiVersion"].as_str().unwrap_or_default();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let snap = state.registry.snapshot();
    let Some(info) = snap.by_kind(group, version, kind["kind"].as_str().unwrap_or_default()) else {
        return Ok(Err(format!(
            "failed to find resource for param kind {api_version} {}",
            kind["kind"].as_str().unwrap_or_default()
        )));
    };
    let ns = match pref["namespace"].as_str().filter(|n| !n.is_empty()) {
        Some(n) => n.to_string(),
        None if info.namespaced => a.namespace.clone(),
        None => String::new(),
    };
    if info.namespaced && ns.is_empty() {
        return Ok(not_found());
    }
    if let Some(name) = pref["name"].as_str().filter(|n| !n.is_empty()) {
        return match state.store.get(&info.key(&ns, name), None).await {
            Ok(kv) => Ok(Ok(vec![
                crate::objects::to_version(&info, crate::objects::from_stored(&kv)?).await?,
            ])),
            Err(kubox_storage::StoreError::NotFound(_)) => Ok(not_found()),
            Err(e) => Err(crate::status::from_store(e, &info.group_resource(), name)),
        };
    }
    let sel =
        kubox_apimachinery::labels::LabelSelector::from_label_selector_json(&pref["selector"])
            .unwrap_or_else(|_| kubox_apimachinery::labels::LabelSelector::nothing());
    let mut found = Vec::new();
    for o in super::list_prefix(state, &info.collection_prefix(&ns)).await? {
        if sel.matches_value(&o) {
            found.push(crate::objects::to_version(&info, o).await?);
        }
    }
    if found.is_empty() {
        return Ok(not_found());
    }
    Ok(Ok(found))
}

/// Evaluate one policy for one param: the failures (empty = admitted). `base` binds object,
/// oldObject, request, params and namespaceObject; `variables` is computed here.
fn evaluate(policy: &Value, base: &[(&str, &Value)]) -> Vec<Failure> {
    let fail_closed = policy["spec"]["failurePolicy"].as_str() != Some("Ignore");
    let mut out = Vec::new();
    let on_error = |out: &mut Vec<Failure>, msg: String| {
        if fail_closed {
            out.push(Failure {
                message: msg,
                reason: "Invalid".into(),
            });
        }
    };
    let mut variables = Value::Object(Map::new());
    // Match conditions have their own budget; variables, validations, messages and audit
    // annotations share the policy's.
    let mut conditions_budget = CostBudget::match_conditions();
    let mut budget = CostBudget::policy();
    fn refs<'a>(base: &[(&'a str, &'a Value)], variables: &'a Value) -> Vec<(&'a str, &'a Value)> {
        let mut r = base.to_vec();
        r.push(("variables", variables));
        r
    }
    // matchConditions: all true, or the policy does not apply.
    for c in policy["spec"]["matchConditions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let src = c["expression"].as_str().unwrap_or_default();
        match eval(src, &refs(base, &variables), &mut conditions_budget) {
            Ok(Value::Bool(true)) => {}
            Ok(Value::Bool(false)) => return out,
            Ok(other) => {
                on_error(
                    &mut out,
                    format!("expression '{src}' did not evaluate to a bool: {other}"),
                );
                return out;
            }
            Err(e) => {
                on_error(&mut out, e);
                return out;
            }
        }
    }
    // variables, in order; each may use the ones before it.
    for v in policy["spec"]["variables"].as_array().into_iter().flatten() {
        let name = v["name"].as_str().unwrap_or_default();
        let src = v["expression"].as_str().unwrap_or_default();
        let value = eval(src, &refs(base, &variables), &mut budget);
        if let (Ok(val), Value::Object(m)) = (value, &mut variables) {
            m.insert(name.to_string(), val);
        }
    }
    let refs = refs(base, &variables);
    for val in policy["spec"]["validations"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let src = val["expression"].as_str().unwrap_or_default();
        let reason = val["reason"].as_str().unwrap_or("Invalid").to_string();
        match eval(src, &refs, &mut budget) {
            Ok(Value::Bool(true)) => {}
            Ok(Value::Bool(false)) => {
                let from_expr = val["messageExpression"]
                    .as_str()
                    .and_then(|me| eval(me, &refs, &mut budget).ok())
                    .and_then(|m| m.as_str().map(|s| s.trim().to_string()))
                    .filter(|m| !m.is_empty() && !m.contains('\n'));
                let message = from_expr.unwrap_or_else(|| {
                    match val["message"]
                        .as_str()
                        .map(str::trim)
                        .filter(|m| !m.is_empty())
                    {
                        Some(m) => m.to_string(),
                        None => format!("failed expression: {}", src.trim()),
                    }
                });
                out.push(Failure { message, reason });
            }
            Ok(other) => on_error(
                &mut out,
                format!("expression '{src}' did not evaluate to a bool: {other}"),
            ),
            Err(e) => on_error(&mut out, e),
        }
    }
    for an in policy["spec"]["auditAnnotations"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let key = an["key"].as_str().unwrap_or_default();
        if let Ok(Value::String(s)) = eval(
            an["valueExpression"].as_str().unwrap_or_default(),
            &refs,
            &mut budget,
        ) {
            audit::add(format!("{}/{key}", crate::objects::name_of(policy)), s);
        }
    }
    out
}

/// Does any expression of the policy refer to variable `name`? (An expression that does not
/// compile counts as using it: its evaluation reports the error.)
fn policy_uses(policy: &Value, name: &str) -> bool {
    let spec = &policy["spec"];
    let field = |list: &str, f: &'static str| {
        spec[list]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(move |e| e[f].as_str())
    };
    field("matchConditions", "expression")
        .chain(field("variables", "expression"))
        .chain(field("validations", "expression"))
        .chain(field("validations", "messageExpression"))
        .chain(field("auditAnnotations", "valueExpression"))
        .any(|src| Expression::cached(src).map_or(true, |e| e.uses(name)))
}

/// Every object of one admissionregistration resource, from its informer (no copies).
async fn configuration(state: &Backend, resource: &str) -> ApiResult<Vec<std::sync::Arc<Value>>> {
    match state.informers.for_resource(GROUP, resource) {
        Some(inf) => Ok(inf
            .list(inf.prefix())
            .into_iter()
            .map(|c| c.object)
            .collect()),
        None => Ok(super::list_resource(state, GROUP, resource, "")
            .await?
            .into_iter()
            .map(std::sync::Arc::new)
            .collect()),
    }
}

/// The ValidatingAdmissionPolicy of this name.
async fn policy_named(state: &Backend, name: &str) -> ApiResult<Option<std::sync::Arc<Value>>> {
    if let Some(inf) = state
        .informers
        .for_resource(GROUP, "validatingadmissionpolicies")
    {
        return Ok(inf
            .get(&format!("{}{name}", inf.prefix()))
            .map(|c| c.object));
    }
    super::get_resource(state, GROUP, "validatingadmissionpolicies", "", name).await
}

/// A validation's `reason` and the code kube answers it with (`Invalid`, 422, by default).
fn reason_code(reason: &str) -> (&'static str, StatusCode) {
    match reason {
        "Forbidden" => ("Forbidden", StatusCode::FORBIDDEN),
        "Unauthorized" => ("Unauthorized", StatusCode::UNAUTHORIZED),
        "RequestEntityTooLarge" => ("RequestEntityTooLarge", StatusCode::PAYLOAD_TOO_LARGE),
        _ => ("Invalid", StatusCode::UNPROCESSABLE_ENTITY),
    }
}

#[async_trait]
impl AdmissionPlugin for ValidatingAdmissionPolicy {
    fn name(&self) -> &'static str {
        "ValidatingAdmissionPolicy"
    }

    fn handles(&self, _op: Operation) -> bool {
        true
    }

    async fn validate(&self, state: &Arc<Backend>, a: &Attributes) -> ApiResult<()> {
        // Admission configuration itself is exempt, so a bad policy cannot lock itself in.
        if a.group() == GROUP {
            return Ok(());
        }
        let bindings = configuration(state, "validatingadmissionpolicybindings").await?;
        if bindings.is_empty() {
            return Ok(());
        }
        let mut ns_obj: Option<Option<std::sync::Arc<Value>>> = None;
        let mut request: Option<Value> = None;
        const NULL: &Value = &Value::Null;
        for binding in &bindings {
            let binding: &Value = binding;
            let policy_name = binding["spec"]["policyName"].as_str().unwrap_or_default();
            let Some(policy) = policy_named(state, policy_name).await? else {
                continue;
            };
            let policy: &Value = &policy;
            if ns_obj.is_none() {
                ns_obj = Some(matching::namespace_object(state, a).await?);
            }
            let ns = ns_obj.as_ref().and_then(Option::as_deref);
            if !matching::match_resources(&policy["spec"]["matchConstraints"], a, ns) {
                continue;
            }
            let mr = &binding["spec"]["matchResources"];
            if !mr.is_null() {
                let mut m = mr.clone();
                if m["resourceRules"].is_null() {
                    m["resourceRules"] = json!([{"apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*", "*/*"], "operations": ["*"]}]);
                }
                if !matching::match_resources(&m, a, ns) {
                    continue;
                }
            }
            let failures = match params(state, policy, binding, a).await? {
                Err(message) => vec![Failure {
                    message,
                    reason: "Invalid".into(),
                }],
                Ok(ps) => {
                    let request: &Value = request.get_or_insert_with(|| {
                        if policy_uses(policy, "request") {
                            matching::request_json(a, "")
                        } else {
                            Value::Null
                        }
                    });
                    let mut failures = Vec::new();
                    for p in &ps {
                        let base = [
                            ("object", a.object.as_ref().unwrap_or(NULL)),
                            ("oldObject", a.old_object.as_ref().unwrap_or(NULL)),
                            ("request", request),
                            ("params", p),
                            ("namespaceObject", ns.unwrap_or(NULL)),
                        ];
                        failures.extend(evaluate(policy, &base));
                    }
                    failures
                }
            };
            let bname = crate::objects::name_of(binding);
            let actions: Vec<&str> = binding["spec"]["validationActions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            for f in failures {
                if actions.contains(&"Warn") {
                    crate::warning::add(format!(
                        "Validation failed for ValidatingAdmissionPolicy '{policy_name}' with binding '{bname}': {}",
                        f.message
                    ));
                }
                if actions.contains(&"Audit") {
                    audit::add(
                        "validation.policy.admission.k8s.io/validation_failure".into(),
                        json!([{"message": f.message, "policy": policy_name, "binding": bname, "expressionIndex": 0, "validationActions": actions}]).to_string(),
                    );
                }
                if actions.contains(&"Deny") {
                    let message = format!(
                        "ValidatingAdmissionPolicy '{policy_name}' with binding '{bname}' denied request: {}",
                        f.message
                    );
                    let mut e = ApiError::forbidden(&a.group_resource(), &a.name, &message);
                    (e.reason, e.code) = reason_code(&f.reason);
                    if let Some(d) = e.details.as_mut() {
                        d["causes"] = json!([{"message": message}]);
                    }
                    return Err(e);
                }
            }
        }
        Ok(())
    }
}
