//! Which requests a policy or webhook applies to: `rules` (operations, groups, versions,
//! resources with subresources, scope), `namespaceSelector`, `objectSelector`, and the
//! `request` document CEL expressions and webhooks see.

use kubox_apimachinery::labels::LabelSelector;
use serde_json::{json, Value};

use super::{Attributes, Operation};
use crate::registry::Backend;
use crate::status::ApiResult;

fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

fn any_or(list: &[&str], want: &str) -> bool {
    list.iter().any(|x| *x == "*" || *x == want)
}

/// Does `resources` (`pods`, `pods/status`, `*`, `*/status`, `*/*`, `pods/*`) cover the
/// resource and subresource written?
fn resource_matches(patterns: &[&str], resource: &str, sub: &str) -> bool {
    patterns.iter().any(|p| {
        let (r, s) = p.split_once('/').unwrap_or((p, ""));
        let r_ok = r == "*" || r == resource;
        let s_ok = if s.is_empty() {
            sub.is_empty()
        } else {
            s == "*" || s == sub
        };
        r_ok && s_ok
    })
}

/// A `RuleWithOperations` (or `NamedRuleWithOperations`) against the request.
pub fn rule_matches(rule: &Value, a: &Attributes) -> bool {
    let ops = strs(&rule["operations"]);
    if !any_or(&ops, a.operation.as_str()) {
        return false;
    }
    if !any_or(&strs(&rule["apiGroups"]), a.group())
        || !any_or(&strs(&rule["apiVersions"]), &a.info.version)
        || !resource_matches(&strs(&rule["resources"]), a.resource(), &a.subresource)
    {
        return false;
    }
    let names = strs(&rule["resourceNames"]);
    if !names.is_empty() && !names.contains(&a.name.as_str()) {
        return false;
    }
    match rule["scope"].as_str().unwrap_or("*") {
        "Cluster" => !a.info.namespaced,
        "Namespaced" => a.info.namespaced,
        _ => true,
    }
}

/// A selector field as admission reads it: absent means everything.
fn selector(v: &Value) -> LabelSelector {
    if v.is_null() {
        return LabelSelector::everything();
    }
    LabelSelector::from_label_selector_json(v).unwrap_or_else(|_| LabelSelector::nothing())
}

/// The namespace object of a namespaced request (None for cluster-scoped ones or when missing).
pub async fn namespace_object(
    state: &Backend,
    a: &Attributes,
) -> ApiResult<Option<std::sync::Arc<Value>>> {
    if !a.info.namespaced || a.namespace.is_empty() {
        return Ok(None);
    }
    super::get_resource(state, "", "namespaces", "", &a.namespace).await
}

/// `namespaceSelector`: namespaced objects by their namespace's labels, a Namespace by its own,
/// other cluster-scoped objects always match.
pub fn namespace_matches(sel: &Value, a: &Attributes, ns: Option<&Value>) -> bool {
    let s = selector(sel);
    if a.is_core("namespaces") || (a.group().is_empty() && a.resource() == "namespaces") {
        let obj = a.object.as_ref().or(a.old_object.as_ref());
        return obj.is_some_and(|o| s.matches_value(o));
    }
    if !a.info.namespaced {
        return true;
    }
    match ns {
        Some(n) => s.matches_value(n),
        None => s.matches_value(&json!({})),
    }
}

/// `objectSelector`: the new or the old object matches.
pub fn object_matches(sel: &Value, a: &Attributes) -> bool {
    let s = selector(sel);
    [a.object.as_ref(), a.old_object.as_ref()]
        .into_iter()
        .flatten()
        .any(|o| s.matches_value(o))
}

/// `matchResources` / `matchConstraints`: rules, exclusions and selectors.
pub fn match_resources(m: &Value, a: &Attributes, ns: Option<&Value>) -> bool {
    let rules = m["resourceRules"].as_array();
    if !rules.is_some_and(|r| r.iter().any(|r| rule_matches(r, a))) {
        return false;
    }
    if m["excludeResourceRules"]
        .as_array()
        .is_some_and(|r| r.iter().any(|r| rule_matches(r, a)))
    {
        return false;
    }
    namespace_matches(&m["namespaceSelector"], a, ns) && object_matches(&m["objectSelector"], a)
}

/// The `request` document: an `admission.k8s.io/v1` AdmissionRequest without the objects.
pub fn request_json(a: &Attributes, uid: &str) -> Value {
    let gvk = json!({"group": a.group(), "version": a.info.version, "kind": a.kind()});
    let gvr = json!({"group": a.group(), "version": a.info.version, "resource": a.resource()});
    let mut r = json!({
        "uid": uid,
        "kind": gvk,
        "resource": gvr,
        "requestKind": gvk,
        "requestResource": gvr,
        "name": a.name,
        "namespace": a.namespace,
        "operation": a.operation.as_str(),
        "userInfo": a.user,
        "dryRun": a.dry_run,
        "options": a.options,
    });
    if !a.subresource.is_empty() {
        r["subResource"] = json!(a.subresource);
        r["requestSubResource"] = json!(a.subresource);
    }
    if a.operation == Operation::Connect {
        r["options"] = Value::Null;
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_patterns_cover_subresources_only_when_asked() {
        assert!(resource_matches(&["pods"], "pods", ""));
        assert!(!resource_matches(&["pods"], "pods", "status"));
        assert!(resource_matches(&["pods/status"], "pods", "status"));
        assert!(resource_matches(&["*/*"], "pods", "status"));
        assert!(resource_matches(&["*"], "deployments", ""));
        assert!(!resource_matches(&["*"], "deployments", "scale"));
        assert!(resource_matches(&["*/scale"], "deployments", "scale"));
    }
}
