//! Workloads validated as kube-apiserver validates them beyond metadata: Deployments,
//! ReplicaSets, StatefulSets, DaemonSets (apps), Jobs and CronJobs (batch), with kube's field
//! paths, error types, values and messages, in kube's order; and what an update may change.

use kubox_apimachinery::validation::{self, FieldError};
use serde_json::{json, Value};

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn json_text(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// A LabelSelector as Go's encoder writes it (matchLabels before matchExpressions).
fn selector_text(sel: &Value) -> String {
    let mut parts = Vec::new();
    for key in ["matchLabels", "matchExpressions"] {
        if let Some(v) = sel.get(key).filter(|v| !v.is_null()) {
            parts.push(format!("{}:{}", json_text(&json!(key)), json_text(v)));
        }
    }
    format!("{{{}}}", parts.join(","))
}

/// kube's `ValidateNonnegativeField`.
fn non_negative(path: &str, v: &Value, errs: &mut Vec<FieldError>) {
    if let Some(n) = v.as_i64().filter(|n| *n < 0) {
        errs.push(FieldError::invalid_rendered(
            path,
            n.to_string(),
            "must be greater than or equal to 0",
        ));
    }
}

/// kube's `ValidatePositiveIntOrPercent`.
fn int_or_percent(path: &str, v: &Value, errs: &mut Vec<FieldError>) {
    match v {
        Value::String(s) if !is_percent(s) => errs.push(FieldError::invalid_rendered(
            path,
            json_text(v),
            "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
        )),
        Value::Number(_) => non_negative(path, v, errs),
        _ => {}
    }
}

fn is_percent(s: &str) -> bool {
    s.strip_suffix('%')
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The number an int-or-percent stands for in kube's "is zero" checks.
fn int_or_percent_value(v: &Value) -> i64 {
    match v {
        Value::Number(n) => n.as_i64().unwrap_or(0),
        Value::String(s) => s.trim_end_matches('%').parse().unwrap_or(0),
        _ => 0,
    }
}

fn not_more_than_100_percent(path: &str, v: &Value, errs: &mut Vec<FieldError>) {
    if let Value::String(s) = v {
        if is_percent(s) && int_or_percent_value(v) > 100 {
            errs.push(FieldError::invalid_rendered(
                path,
                json_text(v),
                "must not be greater than 100%",
            ));
        }
    }
}

/// Does a label selector select these labels? A selector without terms selects everything.
fn selects(sel: &Value, labels: &Value) -> bool {
    let label = |k: &str| labels.get(k).and_then(Value::as_str);
    let by_labels = sel["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| label(k) == v.as_str());
    let by_expressions = sel["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|e| {
            let values: Vec<&str> = e["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let key = str_of(e, "key");
            match str_of(e, "operator") {
                "In" => label(key).is_some_and(|v| values.contains(&v)),
                "NotIn" => label(key).is_none_or(|v| !values.contains(&v)),
                "Exists" => label(key).is_some(),
                "DoesNotExist" => label(key).is_none(),
                _ => false,
            }
        });
    by_labels && by_expressions
}

fn selector_is_empty(sel: &Value) -> bool {
    let none = |k: &str| {
        sel[k].as_object().is_none_or(|m| m.is_empty())
            && sel[k].as_array().is_none_or(|a| a.is_empty())
    };
    none("matchLabels") && none("matchExpressions")
}

/// The selector rules kube's apps validators share: Required (unless `required` is false),
/// the selector's own content, empty (`empty selector is invalid for <what>`), then whether it
/// selects the template's labels.
fn selector_errors(spec: &Value, required: bool, empty_message: &str, errs: &mut Vec<FieldError>) {
    let sel = &spec["selector"];
    if sel.is_null() {
        if required {
            errs.push(FieldError::required("spec.selector", ""));
        }
    } else {
        errs.extend(validation::validate_label_selector(sel, "spec.selector"));
        if selector_is_empty(sel) {
            errs.push(FieldError::invalid_rendered(
                "spec.selector",
                selector_text(sel),
                empty_message,
            ));
            return;
        }
    }
    // A missing selector selects nothing: the template's labels never match it.
    let labels = &spec["template"]["metadata"]["labels"];
    if sel.is_null() || !selects(sel, labels) {
        errs.push(FieldError::invalid_rendered(
            "spec.template.metadata.labels",
            json_text(labels),
            "`selector` does not match template `labels`",
        ));
    }
}

/// kube's pod template validation: the pod spec's rules at `<path>.spec`, and no ephemeral
/// containers.
fn pod_template_errors(tmpl: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let spec = &tmpl["spec"];
    errs.extend(super::pods::pod_spec_errors(spec, &format!("{path}.spec")));
    if spec["ephemeralContainers"]
        .as_array()
        .is_some_and(|a| !a.is_empty())
    {
        errs.push(FieldError::forbidden(
            format!("{path}.spec.ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
    if str_of(spec, "restartPolicy").is_empty() {
        errs.push(FieldError::required(
            format!("{path}.spec.restartPolicy"),
            "",
        ));
    }
}

/// The template rules of the kinds whose pods always restart.
fn always_restarting_template(spec: &Value, what: &str, errs: &mut Vec<FieldError>) {
    let tmpl = &spec["template"];
    pod_template_errors(tmpl, "spec.template", errs);
    let policy = str_of(&tmpl["spec"], "restartPolicy");
    if !policy.is_empty() && policy != "Always" {
        errs.push(FieldError::not_supported(
            "spec.template.spec.restartPolicy",
            policy,
            &["Always"],
        ));
    }
    if !tmpl["spec"]["activeDeadlineSeconds"].is_null() {
        errs.push(FieldError::forbidden(
            "spec.template.spec.activeDeadlineSeconds",
            format!("activeDeadlineSeconds in {what} is not Supported"),
        ));
    }
}

/// A Deployment (kube's `ValidateDeploymentSpec`).
pub fn deployment_errors(obj: &Value) -> Vec<FieldError> {
    let spec = &obj["spec"];
    let mut errs = Vec::new();
    non_negative("spec.replicas", &spec["replicas"], &mut errs);
    selector_errors(
        spec,
        true,
        "empty selector is invalid for deployment",
        &mut errs,
    );
    always_restarting_template(spec, "ReplicaSet", &mut errs);
    let strategy = &spec["strategy"];
    let rolling = &strategy["rollingUpdate"];
    match str_of(strategy, "type") {
        "Recreate" if !rolling.is_null() => errs.push(FieldError::forbidden(
            "spec.strategy.rollingUpdate",
            "may not be specified when strategy `type` is 'Recreate'",
        )),
        "Recreate" => {}
        "RollingUpdate" if rolling.is_null() => errs.push(FieldError::required(
            "spec.strategy.rollingUpdate",
            "this should be defaulted and never be nil",
        )),
        "RollingUpdate" => {
            let (unavailable, surge) = (&rolling["maxUnavailable"], &rolling["maxSurge"]);
            let at = |f: &str| format!("spec.strategy.rollingUpdate.{f}");
            int_or_percent(&at("maxUnavailable"), unavailable, &mut errs);
            int_or_percent(&at("maxSurge"), surge, &mut errs);
            if int_or_percent_value(unavailable) == 0 && int_or_percent_value(surge) == 0 {
                errs.push(FieldError::invalid_rendered(
                    at("maxUnavailable"),
                    json_text(unavailable),
                    "may not be 0 when `maxSurge` is 0",
                ));
            }
            not_more_than_100_percent(&at("maxUnavailable"), unavailable, &mut errs);
        }
        other => {
            // kube reports its internal strategy struct, which has no json tags.
            let rendered = format!(
                "{{\"Type\":{},\"RollingUpdate\":{}}}",
                json_text(&json!(other)),
                if rolling.is_null() {
                    "null".to_string()
                } else {
                    format!(
                        "{{\"MaxUnavailable\":{},\"MaxSurge\":{}}}",
                        json_text(&rolling["maxUnavailable"]),
                        json_text(&rolling["maxSurge"])
                    )
                }
            );
            errs.push(FieldError::not_supported_rendered(
                "spec.strategy",
                rendered,
                &["Recreate", "RollingUpdate"],
            ));
        }
    }
    non_negative("spec.minReadySeconds", &spec["minReadySeconds"], &mut errs);
    non_negative(
        "spec.revisionHistoryLimit",
        &spec["revisionHistoryLimit"],
        &mut errs,
    );
    if let Some(deadline) = spec["progressDeadlineSeconds"].as_i64() {
        non_negative(
            "spec.progressDeadlineSeconds",
            &spec["progressDeadlineSeconds"],
            &mut errs,
        );
        if deadline <= spec["minReadySeconds"].as_i64().unwrap_or(0) {
            errs.push(FieldError::invalid_rendered(
                "spec.progressDeadlineSeconds",
                deadline.to_string(),
                "must be greater than minReadySeconds",
            ));
        }
    }
    errs
}

/// A ReplicaSet (kube's `ValidateReplicaSetSpec`).
pub fn replica_set_errors(obj: &Value) -> Vec<FieldError> {
    let spec = &obj["spec"];
    let mut errs = Vec::new();
    non_negative("spec.replicas", &spec["replicas"], &mut errs);
    non_negative("spec.minReadySeconds", &spec["minReadySeconds"], &mut errs);
    // sic: kube's ReplicaSet check names deployments.
    selector_errors(
        spec,
        true,
        "empty selector is invalid for deployment",
        &mut errs,
    );
    always_restarting_template(spec, "ReplicaSet", &mut errs);
    errs
}

/// A StatefulSet (kube's `ValidateStatefulSetSpec`); `create` adds the create-only checks.
pub fn stateful_set_errors(obj: &Value, create: bool) -> Vec<FieldError> {
    let spec = &obj["spec"];
    let mut errs = Vec::new();
    match str_of(spec, "podManagementPolicy") {
        "" => errs.push(FieldError::required("spec.podManagementPolicy", "")),
        "OrderedReady" | "Parallel" => {}
        other => errs.push(FieldError::invalid(
            "spec.podManagementPolicy",
            other,
            "must be 'OrderedReady' or 'Parallel'",
        )),
    }
    let strategy = &spec["updateStrategy"];
    let rolling = &strategy["rollingUpdate"];
    match str_of(strategy, "type") {
        "" => errs.push(FieldError::required("spec.updateStrategy", "")),
        "OnDelete" if !rolling.is_null() => errs.push(FieldError::invalid_rendered(
            "spec.updateStrategy.rollingUpdate",
            json_text(rolling),
            "only allowed for updateStrategy 'RollingUpdate'",
        )),
        "OnDelete" => {}
        "RollingUpdate" => {
            non_negative(
                "spec.updateStrategy.rollingUpdate.partition",
                &rolling["partition"],
                &mut errs,
            );
            let unavailable = &rolling["maxUnavailable"];
            if !unavailable.is_null() {
                let path = "spec.updateStrategy.rollingUpdate.maxUnavailable";
                int_or_percent(path, unavailable, &mut errs);
                if int_or_percent_value(unavailable) == 0 {
                    errs.push(FieldError::invalid_rendered(
                        path,
                        json_text(unavailable),
                        "cannot be 0",
                    ));
                }
                not_more_than_100_percent(path, unavailable, &mut errs);
            }
        }
        _ => errs.push(FieldError::invalid_rendered(
            "spec.updateStrategy",
            json_text(strategy),
            "must be 'RollingUpdate' or 'OnDelete'",
        )),
    }
    let retention = &spec["persistentVolumeClaimRetentionPolicy"];
    for field in ["whenDeleted", "whenScaled"] {
        if let Some(p) = retention[field].as_str() {
            if p != "Retain" && p != "Delete" {
                errs.push(FieldError::not_supported(
                    format!("spec.persistentVolumeClaimRetentionPolicy.{field}"),
                    p,
                    &["Retain", "Delete"],
                ));
            }
        }
    }
    non_negative("spec.replicas", &spec["replicas"], &mut errs);
    non_negative("spec.minReadySeconds", &spec["minReadySeconds"], &mut errs);
    non_negative("spec.ordinals.start", &spec["ordinals"]["start"], &mut errs);
    if create {
        let service = str_of(spec, "serviceName");
        if !service.is_empty() {
            for m in validation::is_dns1123_label(service) {
                errs.push(FieldError::invalid("spec.serviceName", service, m));
            }
        }
    }
    selector_errors(
        spec,
        true,
        "empty selector is invalid for statefulset",
        &mut errs,
    );
    // The claims the set makes are the pods' volumes too: mounts may name them.
    let mut with_claims = spec.clone();
    let claims: Vec<String> = spec["volumeClaimTemplates"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    if !claims.is_empty() {
        let volumes = &mut with_claims["template"]["spec"]["volumes"];
        if !volumes.is_array() {
            *volumes = Value::Array(Vec::new());
        }
        if let Some(list) = volumes.as_array_mut() {
            for c in claims {
                if !list.iter().any(|v| v["name"] == c.as_str()) {
                    list.push(
                        serde_json::json!({"name": c, "persistentVolumeClaim": {"claimName": c}}),
                    );
                }
            }
        }
    }
    always_restarting_template(&with_claims, "StatefulSet", &mut errs);
    errs
}

/// What a StatefulSet update may change.
const STATEFUL_SET_MUTABLE: &[&str] = &[
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "revisionHistoryLimit",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
];

/// A DaemonSet (kube's `ValidateDaemonSetSpec`).
pub fn daemon_set_errors(obj: &Value) -> Vec<FieldError> {
    let spec = &obj["spec"];
    let mut errs = Vec::new();
    selector_errors(
        spec,
        false,
        "empty selector is invalid for daemonset",
        &mut errs,
    );
    always_restarting_template(spec, "DaemonSet", &mut errs);
    non_negative("spec.minReadySeconds", &spec["minReadySeconds"], &mut errs);
    let strategy = &spec["updateStrategy"];
    let rolling = &strategy["rollingUpdate"];
    match str_of(strategy, "type") {
        "OnDelete" => {}
        "RollingUpdate" if rolling.is_null() => errs.push(FieldError::required(
            "spec.updateStrategy.rollingUpdate",
            "",
        )),
        "RollingUpdate" => {
            let (unavailable, surge) = (&rolling["maxUnavailable"], &rolling["maxSurge"]);
            let at = |f: &str| format!("spec.updateStrategy.rollingUpdate.{f}");
            int_or_percent(&at("maxUnavailable"), unavailable, &mut errs);
            int_or_percent(&at("maxSurge"), surge, &mut errs);
            not_more_than_100_percent(&at("maxUnavailable"), unavailable, &mut errs);
            not_more_than_100_percent(&at("maxSurge"), surge, &mut errs);
            let (u, s) = (
                int_or_percent_value(unavailable),
                int_or_percent_value(surge),
            );
            if u != 0 && s != 0 {
                errs.push(FieldError::invalid_rendered(
                    at("maxSurge"),
                    json_text(surge),
                    "may not be set when maxUnavailable is non-zero",
                ));
            }
            if u == 0 && s == 0 {
                errs.push(FieldError::required(
                    at("maxUnavailable"),
                    "cannot be 0 when maxSurge is 0",
                ));
            }
        }
        _ => errs.push(FieldError::not_supported_rendered(
            "spec.updateStrategy",
            json_text(strategy),
            &["RollingUpdate", "OnDelete"],
        )),
    }
    non_negative(
        "spec.revisionHistoryLimit",
        &spec["revisionHistoryLimit"],
        &mut errs,
    );
    errs
}

/// The rules of a Job's spec at `path` (`spec`, or a CronJob's `spec.jobTemplate.spec`);
/// `selector` adds the selector rules (not for a CronJob's template).
fn job_spec_errors(spec: &Value, path: &str, selector: bool, errs: &mut Vec<FieldError>) {
    let at = |f: &str| format!("{path}.{f}");
    for field in [
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
        "backoffLimitPerIndex",
        "maxFailedIndexes",
    ] {
        non_negative(&at(field), &spec[field], errs);
    }
    if !spec["maxFailedIndexes"].is_null() && spec["backoffLimitPerIndex"].is_null() {
        errs.push(FieldError::required(
            at("backoffLimitPerIndex"),
            "when maxFailedIndexes is specified",
        ));
    }
    let mode = spec["completionMode"].as_str();
    if let Some(m) = mode.filter(|m| *m != "NonIndexed" && *m != "Indexed") {
        errs.push(FieldError::not_supported(
            at("completionMode"),
            m,
            &["NonIndexed", "Indexed"],
        ));
    }
    if mode == Some("Indexed") {
        if spec["completions"].is_null() {
            errs.push(FieldError::required(
                at("completions"),
                "when completion mode is Indexed",
            ));
        }
        if spec["parallelism"].as_i64().is_some_and(|p| p > 100_000) {
            errs.push(FieldError::invalid_rendered(
                at("parallelism"),
                spec["parallelism"].to_string(),
                "must be less than or equal to 100000 when completion mode is Indexed",
            ));
        }
    } else {
        for field in ["backoffLimitPerIndex", "maxFailedIndexes"] {
            if !spec[field].is_null() {
                errs.push(FieldError::invalid_rendered(
                    at(field),
                    spec[field].to_string(),
                    "requires indexed completion mode",
                ));
            }
        }
    }
    if let Some(p) = spec["podReplacementPolicy"].as_str() {
        let allowed: &[&str] = if spec["podFailurePolicy"].is_null() {
            &["Failed", "TerminatingOrFailed"]
        } else {
            &["Failed"]
        };
        if !allowed.contains(&p) {
            errs.push(FieldError::not_supported(
                at("podReplacementPolicy"),
                p,
                allowed,
            ));
        }
    }
    let tmpl = &spec["template"];
    pod_template_errors(tmpl, &at("template"), errs);
    let policy = str_of(&tmpl["spec"], "restartPolicy");
    let restart_path = at("template.spec.restartPolicy");
    match policy {
        "" | "Always" => errs.push(FieldError::required(
            &restart_path,
            "valid values: \"OnFailure\", \"Never\"",
        )),
        "OnFailure" if !spec["podFailurePolicy"].is_null() => errs.push(FieldError::invalid(
            &restart_path,
            policy,
            "only \"Never\" is supported when podFailurePolicy is specified",
        )),
        "OnFailure" | "Never" => {}
        other => errs.push(FieldError::not_supported(
            &restart_path,
            other,
            &["OnFailure", "Never"],
        )),
    }
    if selector {
        let sel = &spec["selector"];
        if sel.is_null() {
            errs.push(FieldError::required(at("selector"), ""));
        } else {
            errs.extend(validation::validate_label_selector(sel, &at("selector")));
        }
        let labels = &tmpl["metadata"]["labels"];
        if sel.is_null() || (!selector_is_empty(sel) && !selects(sel, labels)) {
            errs.push(FieldError::invalid_rendered(
                at("template.metadata.labels"),
                json_text(labels),
                "`selector` does not match template `labels`",
            ));
        }
    }
}

/// A Job (kube's `ValidateJob`: its spec).
pub fn job_errors(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    job_spec_errors(&obj["spec"], "spec", true, &mut errs);
    errs
}

/// A CronJob (kube's `ValidateCronJobCreate`/`Update`); `old` for an update.
pub fn cron_job_errors(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let spec = &obj["spec"];
    let mut errs = Vec::new();
    if old.is_none() {
        let name = obj["metadata"]["name"].as_str().unwrap_or_default();
        if name.len() > 52 {
            errs.push(FieldError::invalid(
                "metadata.name",
                name,
                "must be no more than 52 characters",
            ));
        }
    }
    let schedule = str_of(spec, "schedule");
    if schedule.is_empty() {
        errs.push(FieldError::required("spec.schedule", ""));
    } else {
        if let Err(e) = parse_schedule(schedule) {
            errs.push(FieldError::invalid("spec.schedule", schedule, e));
        }
        let tz_allowed = old.is_some_and(|o| str_of(&o["spec"], "schedule").contains("TZ"));
        if schedule.contains("TZ") && !tz_allowed {
            errs.push(FieldError::invalid(
                "spec.schedule",
                schedule,
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ));
        } else if schedule.contains("TZ") && !spec["timeZone"].is_null() {
            errs.push(FieldError::invalid(
                "spec.schedule",
                schedule,
                "cannot use both timeZone field and TZ or CRON_TZ in schedule",
            ));
        }
    }
    non_negative(
        "spec.startingDeadlineSeconds",
        &spec["startingDeadlineSeconds"],
        &mut errs,
    );
    let zone_changed = old.is_none_or(|o| o["spec"].get("timeZone") != spec.get("timeZone"));
    if let Some(tz) = spec["timeZone"].as_str().filter(|_| zone_changed) {
        if let Some(message) = time_zone_error(tz) {
            errs.push(FieldError::invalid("spec.timeZone", tz, message));
        }
    }
    const POLICIES: &[&str] = &["Allow", "Forbid", "Replace"];
    match str_of(spec, "concurrencyPolicy") {
        "" => errs.push(FieldError::required("spec.concurrencyPolicy", "")),
        p if !POLICIES.contains(&p) => errs.push(FieldError::not_supported(
            "spec.concurrencyPolicy",
            p,
            POLICIES,
        )),
        _ => {}
    }
    let job = &spec["jobTemplate"]["spec"];
    job_spec_errors(job, "spec.jobTemplate.spec", false, &mut errs);
    if !job["selector"].is_null() {
        errs.push(FieldError::invalid_rendered(
            "spec.jobTemplate.spec.selector",
            selector_text(&job["selector"]),
            "`selector` will be auto-generated",
        ));
    }
    if job["manualSelector"] == true {
        errs.push(FieldError::not_supported_rendered(
            "spec.jobTemplate.spec.manualSelector",
            "true",
            &["nil", "false"],
        ));
    }
    non_negative(
        "spec.successfulJobsHistoryLimit",
        &spec["successfulJobsHistoryLimit"],
        &mut errs,
    );
    non_negative(
        "spec.failedJobsHistoryLimit",
        &spec["failedJobsHistoryLimit"],
        &mut errs,
    );
    errs
}

fn time_zone_error(tz: &str) -> Option<String> {
    if tz.is_empty() {
        return Some("timeZone must be nil or non-empty string".to_string());
    }
    let part_ok = |p: &str| {
        p != "."
            && p != ".."
            && !p.starts_with('-')
            && (1..=14).contains(&p.len())
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b))
    };
    if !tz.split('/').all(part_ok) {
        return Some(format!("unknown time zone {tz}"));
    }
    if tz.eq_ignore_ascii_case("local") {
        return Some(
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones"
                .to_string(),
        );
    }
    if tz.parse::<chrono_tz::Tz>().is_err() {
        return Some(format!("unknown time zone {tz}"));
    }
    None
}

/// The errors of an update beyond those of the new object (kube's `Validate*Update`).
pub fn update_errors(kind: &str, new: &Value, old: &Value) -> Vec<FieldError> {
    let (spec, old_spec) = (&new["spec"], &old["spec"]);
    let mut errs = Vec::new();
    let immutable = |errs: &mut Vec<FieldError>, field: &str| {
        if spec.get(field) != old_spec.get(field) {
            let v = spec.get(field).unwrap_or(&Value::Null);
            let rendered = if field == "selector" {
                selector_text(v)
            } else {
                json_text(v)
            };
            errs.push(FieldError::invalid_rendered(
                format!("spec.{field}"),
                rendered,
                "field is immutable",
            ));
        }
    };
    match kind {
        "Deployment" | "ReplicaSet" | "DaemonSet" => immutable(&mut errs, "selector"),
        "StatefulSet" => {
            let fixed = |s: &Value| {
                let mut s = s.clone();
                if let Some(m) = s.as_object_mut() {
                    m.retain(|k, _| !STATEFUL_SET_MUTABLE.contains(&k.as_str()));
                }
                s
            };
            if fixed(spec) != fixed(old_spec) {
                errs.push(FieldError::forbidden(
                    "spec",
                    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
                ));
            }
        }
        "Job" => {
            // kube validates the new spec again in ValidateJobUpdate: its errors come twice.
            job_spec_errors(spec, "spec", true, &mut errs);
            if old_spec["completionMode"].as_str() != Some("Indexed") {
                immutable(&mut errs, "completions");
            } else if spec["completions"] != old_spec["completions"]
                && spec["completions"] != spec["parallelism"]
            {
                errs.push(FieldError::invalid_rendered(
                    "spec.completions",
                    spec["completions"].to_string(),
                    "can only be modified in tandem with spec.parallelism",
                ));
            }
            for field in [
                "selector",
                "completionMode",
                "podFailurePolicy",
                "backoffLimitPerIndex",
                "managedBy",
                "successPolicy",
            ] {
                immutable(&mut errs, field);
            }
            if old_spec["suspend"] != true {
                immutable(&mut errs, "template");
            }
        }
        _ => {}
    }
    errs
}

// ---------------------------------------------------------------------------------------------
// Cron schedules as kube parses them (robfig/cron v3's standard parser), for its messages.

/// Parse a standard cron schedule: five fields or a descriptor; the error as robfig words it.
pub fn parse_schedule(spec: &str) -> Result<(), String> {
    let mut spec = spec.trim();
    for prefix in ["TZ=", "CRON_TZ="] {
        if let Some(rest) = spec.strip_prefix(prefix) {
            match rest.split_once(' ') {
                Some((_, rest)) => spec = rest.trim(),
                None => return Err(format!("invalid schedule format: {spec}")),
            }
        }
    }
    if let Some(descriptor) = spec.strip_prefix('@') {
        return match descriptor {
            "yearly" | "annually" | "monthly" | "weekly" | "daily" | "midnight" | "hourly" => {
                Ok(())
            }
            d => match d.strip_prefix("every ") {
                Some(duration) if crate::query::parse_duration(duration).is_ok() => Ok(()),
                Some(duration) => Err(format!(
                    "failed to parse duration @every {duration}: time: invalid duration \"{duration}\""
                )),
                None => Err(format!("unrecognized descriptor: {spec}")),
            },
        };
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    const MONTHS: &[&str] = &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    let bounds: [(i64, i64, &[&str], i64); 5] = [
        (0, 59, &[], 0),
        (0, 23, &[], 0),
        (1, 31, &[], 0),
        (1, 12, MONTHS, 1),
        (0, 6, DAYS, 0),
    ];
    for (field, (min, max, names, first)) in fields.iter().zip(bounds) {
        for expr in field.split(',') {
            cron_range(expr, min, max, names, first)?;
        }
    }
    Ok(())
}

fn cron_range(expr: &str, min: i64, max: i64, names: &[&str], first: i64) -> Result<(), String> {
    let number = |s: &str| -> Result<i64, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            return Ok(i as i64 + first);
        }
        let n: i64 = s.parse().map_err(|_| {
            format!("failed to parse int from {s}: strconv.Atoi: parsing {s:?}: invalid syntax")
        })?;
        if n < 0 {
            return Err(format!("negative number ({n}) not allowed: {s}"));
        }
        Ok(n)
    };
    let parts: Vec<&str> = expr.split('/').collect();
    if parts.len() > 2 {
        return Err(format!("too many slashes: {expr}"));
    }
    let bounds: Vec<&str> = parts[0].split('-').collect();
    let (start, end) = match bounds.as_slice() {
        ["*" | "?"] => (min, max),
        [single] => {
            let n = number(single)?;
            (n, if parts.len() == 2 { max } else { n })
        }
        [a, b] => (number(a)?, number(b)?),
        _ => return Err(format!("too many hyphens: {expr}")),
    };
    if let Some(step) = parts.get(1) {
        if number(step)? == 0 {
            return Err(format!("step of range should be a positive number: {expr}"));
        }
    }
    if start < min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({min}): {expr}"
        ));
    }
    if end > max {
        return Err(format!(
            "end of range ({end}) above maximum ({max}): {expr}"
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_schedule;

    #[test]
    fn schedules_are_parsed_as_robfig_cron_parses_them() {
        for ok in [
            "*/5 * * * *",
            "0 0 1 jan-dec mon-fri",
            "@hourly",
            "@every 1h30m",
            "0 12 * * ?",
            "5/10 * * * *",
        ] {
            assert_eq!(parse_schedule(ok), Ok(()), "{ok}");
        }
        for (bad, message) in [
            ("foo", "expected exactly 5 fields, found 1: [foo]"),
            ("60 * * * *", "end of range (60) above maximum (59): 60"),
            ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
            (
                "* 5-3 * * *",
                "beginning of range (5) beyond end of range (3): 5-3",
            ),
            (
                "x * * * *",
                "failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax",
            ),
            (
                "*/0 * * * *",
                "step of range should be a positive number: */0",
            ),
            ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
            ("@often", "unrecognized descriptor: @often"),
        ] {
            assert_eq!(parse_schedule(bad), Err(message.to_string()), "{bad}");
        }
    }
}
