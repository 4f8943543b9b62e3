//! admissionregistration.k8s.io validation as kube-apiserver's (`ValidateValidatingWebhookConfiguration`,
//! `ValidateMutatingWebhookConfiguration`, `ValidateValidatingAdmissionPolicy`, the binding's),
//! on defaulted objects: rules (operations, groups, versions, resources, scope), the policies
//! and webhook fields with kube's supported values, client configs, review versions, names. The
//! CEL expressions are compiled by the caller (`kind_validation`).

use std::collections::HashSet;

use kubox_apimachinery::validation::{
    go_quote, is_dns1035_label, is_dns1123_subdomain, FieldError,
};
use serde_json::Value;

const OPERATIONS: &[&str] = &["*", "CONNECT", "CREATE", "DELETE", "UPDATE"];
const SCOPES: &[&str] = &["*", "Cluster", "Namespaced"];
const FAILURE_POLICIES: &[&str] = &["Fail", "Ignore"];
const MATCH_POLICIES: &[&str] = &["Equivalent", "Exact"];
const NO_SIDE_EFFECTS: &[&str] = &["None", "NoneOnDryRun"];
const REINVOCATION: &[&str] = &["IfNeeded", "Never"];
const REVIEW_VERSIONS: &[&str] = &["v1", "v1beta1"];
const VALIDATION_ACTIONS: &[&str] = &["Audit", "Deny", "Warn"];
const REASONS: &[&str] = &["Forbidden", "Invalid", "RequestEntityTooLarge"];

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

/// Go's `%#v` of a `[]string`.
fn go_strings(list: &[&str]) -> String {
    format!(
        "[]string{{{}}}",
        list.iter()
            .map(|s| go_quote(s))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// A string field that must be one of `supported` when set.
fn one_of(errs: &mut Vec<FieldError>, path: &str, v: &Value, supported: &[&str]) {
    if let Some(s) = v.as_str() {
        if !supported.contains(&s) {
            errs.push(FieldError::not_supported(path, s, supported));
        }
    }
}

/// kube's `validateRuleWithOperations` (and `validateRule`, subresources allowed).
fn rule_errors(errs: &mut Vec<FieldError>, rule: &Value, path: &str) {
    let operations = strings(&rule["operations"]);
    if operations.is_empty() {
        errs.push(FieldError::required(format!("{path}.operations"), ""));
    }
    if operations.len() > 1 && operations.contains(&"*") {
        errs.push(FieldError::invalid_rendered(
            format!("{path}.operations"),
            go_strings(&operations),
            "if '*' is present, must not specify other operations",
        ));
    }
    for (i, op) in operations.iter().enumerate() {
        if !OPERATIONS.contains(op) {
            errs.push(FieldError::not_supported(
                format!("{path}.operations[{i}]"),
                op,
                OPERATIONS,
            ));
        }
    }
    let groups = strings(&rule["apiGroups"]);
    if groups.is_empty() {
        errs.push(FieldError::required(format!("{path}.apiGroups"), ""));
    }
    if groups.len() > 1 && groups.contains(&"*") {
        errs.push(FieldError::invalid_rendered(
            format!("{path}.apiGroups"),
            go_strings(&groups),
            "if '*' is present, must not specify other API groups",
        ));
    }
    let versions = strings(&rule["apiVersions"]);
    if versions.is_empty() {
        errs.push(FieldError::required(format!("{path}.apiVersions"), ""));
    }
    if versions.len() > 1 && versions.contains(&"*") {
        errs.push(FieldError::invalid_rendered(
            format!("{path}.apiVersions"),
            go_strings(&versions),
            "if '*' is present, must not specify other API versions",
        ));
    }
    for (i, v) in versions.iter().enumerate() {
        if v.is_empty() {
            errs.push(FieldError::required(format!("{path}.apiVersions[{i}]"), ""));
        }
    }
    let resources = strings(&rule["resources"]);
    if resources.is_empty() {
        errs.push(FieldError::required(format!("{path}.resources"), ""));
    }
    for (i, r) in resources.iter().enumerate() {
        if r.is_empty() {
            errs.push(FieldError::required(format!("{path}.resources[{i}]"), ""));
        }
    }
    if resources.len() > 1 && resources.contains(&"*/*") {
        errs.push(FieldError::invalid_rendered(
            format!("{path}.resources"),
            go_strings(&resources),
            "if '*/*' is present, must not specify other resources",
        ));
    }
    if resources.contains(&"*") && resources.iter().any(|r| !r.contains('/') && *r != "*") {
        errs.push(FieldError::invalid_rendered(
            format!("{path}.resources"),
            go_strings(&resources),
            "if '*' is present, must not specify other resources without subresources",
        ));
    }
    one_of(errs, &format!("{path}.scope"), &rule["scope"], SCOPES);
}

/// kube's `IsFullyQualifiedName` for a webhook's name.
fn fully_qualified(errs: &mut Vec<FieldError>, path: &str, name: &str) {
    if name.is_empty() {
        errs.push(FieldError::required(path, ""));
        return;
    }
    let problems = is_dns1123_subdomain(name);
    if !problems.is_empty() {
        for p in problems {
            errs.push(FieldError::invalid(path, name, p));
        }
        return;
    }
    if name.split('.').count() < 3 {
        errs.push(FieldError::invalid(
            path,
            name,
            "should be a domain with at least three segments separated by dots",
        ));
    }
}

/// kube's `ValidateWebhookURL` (https required) and `ValidateWebhookService`.
fn client_config_errors(errs: &mut Vec<FieldError>, cc: &Value, path: &str) {
    let (url, service) = (cc.get("url"), cc.get("service"));
    match (
        url.filter(|u| !u.is_null()),
        service.filter(|s| !s.is_null()),
    ) {
        (Some(_), Some(_)) | (None, None) => errs.push(FieldError::required(
            path,
            "exactly one of url or service is required",
        )),
        (Some(u), None) => {
            let u = u.as_str().unwrap_or_default();
            let p = format!("{path}.url");
            match u.split_once("://") {
                Some((scheme, rest)) => {
                    if scheme != "https" {
                        errs.push(FieldError::invalid(
                            &p,
                            u,
                            "'https' is the only allowed URL scheme",
                        ));
                    }
                    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
                    if host.is_empty() {
                        errs.push(FieldError::invalid(&p, u, "host must be specified"));
                    }
                    if host.contains('@') {
                        errs.push(FieldError::invalid(
                            &p,
                            u,
                            "user information is not permitted in the URL",
                        ));
                    }
                    if rest.contains('#') {
                        errs.push(FieldError::invalid(
                            &p,
                            u,
                            "fragments are not permitted in the URL",
                        ));
                    }
                    if rest.contains('?') {
                        errs.push(FieldError::invalid(
                            &p,
                            u,
                            "query parameters are not permitted in the URL",
                        ));
                    }
                }
                None => errs.push(FieldError::invalid(&p, u, "host must be specified")),
            }
        }
        (None, Some(s)) => {
            let p = format!("{path}.service");
            if s["name"].as_str().is_none_or(str::is_empty) {
                errs.push(FieldError::required(
                    format!("{p}.name"),
                    "service name is required",
                ));
            }
            if s["namespace"].as_str().is_none_or(str::is_empty) {
                errs.push(FieldError::required(
                    format!("{p}.namespace"),
                    "service namespace is required",
                ));
            }
            if let Some(port) = s["port"].as_i64() {
                if !(1..=65535).contains(&port) {
                    errs.push(FieldError::invalid_rendered(
                        format!("{p}.port"),
                        port.to_string(),
                        "port is not valid: must be between 1 and 65535, inclusive",
                    ));
                }
            }
            if let Some(sp) = s["path"].as_str() {
                if !sp.starts_with('/') {
                    errs.push(FieldError::invalid(
                        format!("{p}.path"),
                        sp,
                        "must start with a '/'",
                    ));
                }
            }
        }
    }
}

/// kube's `validateAdmissionReviewVersions` (a recognized version required).
fn review_versions_errors(errs: &mut Vec<FieldError>, versions: &Value, path: &str) {
    let list = strings(versions);
    if list.is_empty() {
        errs.push(FieldError::required(
            path,
            "must specify one of v1, v1beta1",
        ));
        return;
    }
    let mut seen: HashSet<&str> = HashSet::new();
    for (i, v) in list.iter().enumerate() {
        if !seen.insert(*v) {
            errs.push(FieldError::invalid(
                format!("{path}[{i}]"),
                v,
                "duplicate version",
            ));
            continue;
        }
        for p in is_dns1035_label(v) {
            errs.push(FieldError::invalid(format!("{path}[{i}]"), v, p));
        }
    }
    if !list.iter().any(|v| REVIEW_VERSIONS.contains(v)) {
        errs.push(FieldError::invalid_rendered(
            path,
            go_strings(&list),
            "must include at least one of v1, v1beta1",
        ));
    }
}

/// A validating or mutating webhook configuration.
pub fn webhook_configuration_errors(obj: &Value, mutating: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut names: HashSet<&str> = HashSet::new();
    for (i, hook) in obj["webhooks"].as_array().into_iter().flatten().enumerate() {
        let p = format!("webhooks[{i}]");
        let name = hook["name"].as_str().unwrap_or_default();
        fully_qualified(&mut errs, &format!("{p}.name"), name);
        for (j, rule) in hook["rules"].as_array().into_iter().flatten().enumerate() {
            rule_errors(&mut errs, rule, &format!("{p}.rules[{j}]"));
        }
        one_of(
            &mut errs,
            &format!("{p}.failurePolicy"),
            &hook["failurePolicy"],
            FAILURE_POLICIES,
        );
        one_of(
            &mut errs,
            &format!("{p}.matchPolicy"),
            &hook["matchPolicy"],
            MATCH_POLICIES,
        );
        match hook["sideEffects"].as_str() {
            None => errs.push(FieldError::required(
                format!("{p}.sideEffects"),
                "must specify one of None, NoneOnDryRun",
            )),
            Some(s) if !NO_SIDE_EFFECTS.contains(&s) => errs.push(FieldError::not_supported(
                format!("{p}.sideEffects"),
                s,
                NO_SIDE_EFFECTS,
            )),
            _ => {}
        }
        if let Some(t) = hook["timeoutSeconds"].as_i64() {
            if !(1..=30).contains(&t) {
                errs.push(FieldError::invalid_rendered(
                    format!("{p}.timeoutSeconds"),
                    t.to_string(),
                    "the timeout value must be between 1 and 30 seconds",
                ));
            }
        }
        if mutating {
            one_of(
                &mut errs,
                &format!("{p}.reinvocationPolicy"),
                &hook["reinvocationPolicy"],
                REINVOCATION,
            );
        }
        client_config_errors(
            &mut errs,
            &hook["clientConfig"],
            &format!("{p}.clientConfig"),
        );
        review_versions_errors(
            &mut errs,
            &hook["admissionReviewVersions"],
            &format!("{p}.admissionReviewVersions"),
        );
        if !name.is_empty() && !names.insert(name) {
            errs.push(FieldError::duplicate(format!("{p}.name"), name));
        }
    }
    errs
}

/// kube's `validateMatchResources` (on a defaulted object).
fn match_resources_errors(errs: &mut Vec<FieldError>, m: &Value, path: &str) {
    match m["matchPolicy"].as_str() {
        None => errs.push(FieldError::required(format!("{path}.matchPolicy"), "")),
        Some(s) if !MATCH_POLICIES.contains(&s) => errs.push(FieldError::not_supported(
            format!("{path}.matchPolicy"),
            s,
            MATCH_POLICIES,
        )),
        _ => {}
    }
    for list in ["resourceRules", "excludeResourceRules"] {
        for (i, rule) in m[list].as_array().into_iter().flatten().enumerate() {
            let rp = format!("{path}.{list}[{i}]");
            let mut seen: HashSet<&str> = HashSet::new();
            for (j, n) in strings(&rule["resourceNames"]).into_iter().enumerate() {
                if !seen.insert(n) {
                    errs.push(FieldError::duplicate(format!("{rp}.resourceNames[{j}]"), n));
                }
            }
            rule_errors(errs, rule, &rp);
        }
    }
}

/// A ValidatingAdmissionPolicy (its expressions are compiled by the caller).
pub fn policy_errors(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = &obj["spec"];
    match spec["failurePolicy"].as_str() {
        None => errs.push(FieldError::required("spec.failurePolicy", "")),
        Some(s) if !FAILURE_POLICIES.contains(&s) => errs.push(FieldError::not_supported(
            "spec.failurePolicy",
            s,
            FAILURE_POLICIES,
        )),
        _ => {}
    }
    if let Some(pk) = spec.get("paramKind").filter(|p| p.is_object()) {
        if pk["apiVersion"].as_str().is_none_or(str::is_empty) {
            errs.push(FieldError::required("spec.paramKind.apiVersion", ""));
        }
        if pk["kind"].as_str().is_none_or(str::is_empty) {
            errs.push(FieldError::required("spec.paramKind.kind", ""));
        }
    }
    match spec.get("matchConstraints").filter(|m| m.is_object()) {
        None => errs.push(FieldError::required("spec.matchConstraints", "")),
        Some(m) => {
            match_resources_errors(&mut errs, m, "spec.matchConstraints");
            if m["resourceRules"].as_array().is_none_or(Vec::is_empty) {
                errs.push(FieldError::required(
                    "spec.matchConstraints.resourceRules",
                    "",
                ));
            }
        }
    }
    let validations = spec["validations"].as_array().map_or(0, Vec::len);
    let annotations = spec["auditAnnotations"].as_array().map_or(0, Vec::len);
    if validations == 0 && annotations == 0 {
        let detail = "validations or auditAnnotations must contain at least one item";
        errs.push(FieldError::required("spec.validations", detail));
        errs.push(FieldError::required("spec.auditAnnotations", detail));
    }
    for (i, v) in spec["validations"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let p = format!("spec.validations[{i}]");
        if v["expression"].as_str().is_none_or(|e| e.trim().is_empty()) {
            errs.push(FieldError::required(
                format!("{p}.expression"),
                "expression is not specified",
            ));
        }
        one_of(&mut errs, &format!("{p}.reason"), &v["reason"], REASONS);
    }
    errs
}

/// A ValidatingAdmissionPolicyBinding.
pub fn binding_errors(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = &obj["spec"];
    if spec["policyName"].as_str().is_none_or(str::is_empty) {
        errs.push(FieldError::required("spec.policyName", ""));
    }
    if let Some(m) = spec.get("matchResources").filter(|m| m.is_object()) {
        match_resources_errors(&mut errs, m, "spec.matchResources");
    }
    let actions = strings(&spec["validationActions"]);
    let mut seen: Vec<&str> = Vec::new();
    for (i, a) in actions.iter().enumerate() {
        let p = format!("spec.validationActions[{i}]");
        if !VALIDATION_ACTIONS.contains(a) {
            errs.push(FieldError::not_supported(&p, a, VALIDATION_ACTIONS));
        }
        if seen.contains(a) {
            errs.push(FieldError::duplicate(&p, a));
        }
        seen.push(a);
    }
    if seen.contains(&"Deny") && seen.contains(&"Warn") {
        errs.push(FieldError::invalid_rendered(
            "spec.validationActions",
            format!(
                "[]admissionregistration.ValidationAction{{{}}}",
                actions.iter().map(|a| go_quote(a)).collect::<Vec<_>>().join(", ")
            ),
            "must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)",
        ));
    }
    if seen.is_empty() {
        errs.push(FieldError::required(
            "spec.validationActions",
            "at least one validation action is required",
        ));
    }
    errs
}
