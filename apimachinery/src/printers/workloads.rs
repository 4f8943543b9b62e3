//! Row cells of the apps, batch and autoscaling kinds.

use super::core::{age_or, suspend_text};
use super::util::{
    age, arr, cell, container_cells, deleting, format_label_selector, format_labels, get,
    human_duration_nanos, i, int_cell, name, opt_i, quantity_ptr_at, s, selector_string, time_at,
    Nanos,
};
use serde_json::Value;

/// apps/v1 and core/v1 default spec.replicas to 1.
fn desired_replicas(obj: &Value) -> i64 {
    opt_i(obj, &["spec", "replicas"]).unwrap_or(1)
}

/// ReplicaSet: Name, Desired, Current, Ready, Age, Containers, Images, Selector.
pub(super) fn replica_set(obj: &Value, now: Nanos) -> Vec<Value> {
    let (names, images) = container_cells(get(obj, &["spec", "template", "spec"]));
    vec![
        cell(name(obj)),
        int_cell(desired_replicas(obj)),
        int_cell(i(obj, &["status", "replicas"])),
        int_cell(i(obj, &["status", "readyReplicas"])),
        cell(age(obj, now)),
        cell(names),
        cell(images),
        cell(format_label_selector(get(obj, &["spec", "selector"]))),
    ]
}

/// Deployment: Name, Ready ("ready/desired"), Up-to-date, Available, Age, Containers, Images,
/// Selector.
pub(super) fn deployment(obj: &Value, now: Nanos) -> Vec<Value> {
    let (names, images) = container_cells(get(obj, &["spec", "template", "spec"]));
    let selector =
        selector_string(get(obj, &["spec", "selector"])).unwrap_or_else(|| "<invalid>".to_string());
    vec![
        cell(name(obj)),
        cell(format!(
            "{}/{}",
            i(obj, &["status", "readyReplicas"]),
            desired_replicas(obj)
        )),
        int_cell(i(obj, &["status", "updatedReplicas"])),
        int_cell(i(obj, &["status", "availableReplicas"])),
        cell(age(obj, now)),
        cell(names),
        cell(images),
        cell(selector),
    ]
}

/// StatefulSet: Name, Ready ("ready/desired"), Age, Containers, Images.
pub(super) fn stateful_set(obj: &Value, now: Nanos) -> Vec<Value> {
    let (names, images) = container_cells(get(obj, &["spec", "template", "spec"]));
    vec![
        cell(name(obj)),
        cell(format!(
            "{}/{}",
            i(obj, &["status", "readyReplicas"]),
            desired_replicas(obj)
        )),
        cell(age(obj, now)),
        cell(names),
        cell(images),
    ]
}

/// DaemonSet: Name, Desired, Current, Ready, Up-to-date, Available, Node Selector, Age,
/// Containers, Images, Selector.
pub(super) fn daemon_set(obj: &Value, now: Nanos) -> Vec<Value> {
    let (names, images) = container_cells(get(obj, &["spec", "template", "spec"]));
    vec![
        cell(name(obj)),
        int_cell(i(obj, &["status", "desiredNumberScheduled"])),
        int_cell(i(obj, &["status", "currentNumberScheduled"])),
        int_cell(i(obj, &["status", "numberReady"])),
        int_cell(i(obj, &["status", "updatedNumberScheduled"])),
        int_cell(i(obj, &["status", "numberAvailable"])),
        cell(format_labels(
            obj,
            &["spec", "template", "spec", "nodeSelector"],
        )),
        cell(age(obj, now)),
        cell(names),
        cell(images),
        cell(format_label_selector(get(obj, &["spec", "selector"]))),
    ]
}

/// The status of the first job condition of `type_` is True.
fn job_condition(obj: &Value, type_: &str) -> bool {
    arr(obj, &["status", "conditions"])
        .iter()
        .find(|c| s(c, &["type"]) == type_)
        .is_some_and(|c| s(c, &["status"]) == "True")
}

/// Job: Name, Status, Completions, Duration, Age, Containers, Images, Selector.
pub(super) fn job(obj: &Value, now: Nanos) -> Vec<Value> {
    let succeeded = i(obj, &["status", "succeeded"]);
    let completions = match opt_i(obj, &["spec", "completions"]) {
        Some(c) => format!("{succeeded}/{c}"),
        None => {
            // Without completions nor parallelism batch/v1 defaults both to 1.
            let parallelism = opt_i(obj, &["spec", "parallelism"]).unwrap_or(1);
            if parallelism > 1 {
                format!("{succeeded}/1 of {parallelism}")
            } else {
                format!("{succeeded}/1")
            }
        }
    };
    let duration = match (
        time_at(obj, &["status", "startTime"]),
        time_at(obj, &["status", "completionTime"]),
    ) {
        (None, _) => String::new(),
        (Some(start), None) => human_duration_nanos(now - start),
        (Some(start), Some(end)) => human_duration_nanos(end - start),
    };
    let status = if job_condition(obj, "Complete") {
        "Complete"
    } else if job_condition(obj, "Failed") {
        "Failed"
    } else if deleting(obj) {
        "Terminating"
    } else if job_condition(obj, "Suspended") {
        "Suspended"
    } else if job_condition(obj, "FailureTarget") {
        "FailureTarget"
    } else if job_condition(obj, "SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else {
        "Running"
    };
    let (names, images) = container_cells(get(obj, &["spec", "template", "spec"]));
    vec![
        cell(name(obj)),
        cell(status),
        cell(completions),
        cell(duration),
        cell(age(obj, now)),
        cell(names),
        cell(images),
        cell(format_label_selector(get(obj, &["spec", "selector"]))),
    ]
}

/// CronJob: Name, Schedule, Timezone, Suspend, Active, Last Schedule, Age, Containers, Images,
/// Selector.
pub(super) fn cron_job(obj: &Value, now: Nanos) -> Vec<Value> {
    let job_spec = get(obj, &["spec", "jobTemplate", "spec"]);
    let (names, images) = container_cells(job_spec.and_then(|j| get(j, &["template", "spec"])));
    let time_zone = match get(obj, &["spec", "timeZone"]).and_then(Value::as_str) {
        Some(tz) => tz.to_string(),
        None => "<none>".to_string(),
    };
    vec![
        cell(name(obj)),
        cell(s(obj, &["spec", "schedule"])),
        cell(time_zone),
        cell(suspend_text(obj)),
        int_cell(arr(obj, &["status", "active"]).len() as i64),
        cell(age_or(obj, &["status", "lastScheduleTime"], now, "<none>")),
        cell(age(obj, now)),
        cell(names),
        cell(images),
        cell(format_label_selector(
            job_spec.and_then(|j| get(j, &["selector"])),
        )),
    ]
}

/// ControllerRevision: Name, Controller ("kind.group/name"), Revision, Age.
pub(super) fn controller_revision(obj: &Value, now: Nanos) -> Vec<Value> {
    let controller = arr(obj, &["metadata", "ownerReferences"])
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true));
    let controller_name = match controller {
        None => "<none>".to_string(),
        Some(r) => {
            let api_version = s(r, &["apiVersion"]);
            let group = match api_version.split_once('/') {
                Some((g, _)) => g,
                None => "",
            };
            let kind = s(r, &["kind"]);
            let ref_name = s(r, &["name"]);
            if kind.is_empty() && group.is_empty() {
                ref_name.to_string()
            } else if group.is_empty() {
                format!("{}/{ref_name}", kind.to_lowercase())
            } else {
                format!("{}/{ref_name}", format!("{kind}.{group}").to_lowercase())
            }
        }
    };
    vec![
        cell(name(obj)),
        cell(controller_name),
        int_cell(i(obj, &["revision"])),
        cell(age(obj, now)),
    ]
}

/// One entry of the HPA TARGETS cell.
fn hpa_metric(spec: &Value, status: Option<&Value>) -> String {
    const UNKNOWN: &str = "<unknown>";
    // The status entry of the same index, when it has the field `key`.
    let current = |key: &str| status.and_then(|st| get(st, &[key]));
    match s(spec, &["type"]) {
        key @ ("External" | "Object") => {
            let field = if key == "External" {
                "external"
            } else {
                "object"
            };
            let target = get(spec, &[field, "target"]);
            if target.is_some_and(|t| get(t, &["averageValue"]).is_some()) {
                let cur = current(field)
                    .filter(|c| get(c, &["current", "averageValue"]).is_some())
                    .map_or_else(
                        || UNKNOWN.to_string(),
                        |c| quantity_ptr_at(c, &["current", "averageValue"]),
                    );
                let tgt = quantity_ptr_at(spec, &[field, "target", "averageValue"]);
                format!("{cur}/{tgt} (avg)")
            } else {
                let cur = current(field).map_or_else(
                    || UNKNOWN.to_string(),
                    |c| quantity_ptr_at(c, &["current", "value"]),
                );
                let tgt = quantity_ptr_at(spec, &[field, "target", "value"]);
                format!("{cur}/{tgt}")
            }
        }
        "Pods" => {
            let cur = current("pods").map_or_else(
                || UNKNOWN.to_string(),
                |c| quantity_ptr_at(c, &["current", "averageValue"]),
            );
            let tgt = quantity_ptr_at(spec, &["pods", "target", "averageValue"]);
            format!("{cur}/{tgt}")
        }
        key @ ("Resource" | "ContainerResource") => {
            let field = if key == "Resource" {
                "resource"
            } else {
                "containerResource"
            };
            let res_name = s(spec, &[field, "name"]);
            if get(spec, &[field, "target", "averageValue"]).is_some() {
                let cur = current(field).map_or_else(
                    || UNKNOWN.to_string(),
                    |c| quantity_ptr_at(c, &["current", "averageValue"]),
                );
                let tgt = quantity_ptr_at(spec, &[field, "target", "averageValue"]);
                format!("{res_name}: {cur}/{tgt}")
            } else {
                let cur = current(field)
                    .and_then(|c| opt_i(c, &["current", "averageUtilization"]))
                    .map_or_else(|| UNKNOWN.to_string(), |u| format!("{u}%"));
                let tgt = opt_i(spec, &[field, "target", "averageUtilization"])
                    .map_or_else(|| "<auto>".to_string(), |u| format!("{u}%"));
                format!("{res_name}: {cur}/{tgt}")
            }
        }
        _ => "<unknown type>".to_string(),
    }
}

/// The HPA's metric specs and current statuses as autoscaling/v2 shapes, whichever version the
/// object was written in (autoscaling/v1 only has the CPU utilization fields).
fn hpa_metrics(obj: &Value) -> (Vec<Value>, Vec<Value>) {
    let mut specs = arr(obj, &["spec", "metrics"]).to_vec();
    if specs.is_empty() {
        // autoscaling/v2 defaults an empty metric list to 80% average CPU utilization.
        let target = opt_i(obj, &["spec", "targetCPUUtilizationPercentage"]).unwrap_or(80);
        specs.push(serde_json::json!({
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": target}}
        }));
    }
    let mut statuses = arr(obj, &["status", "currentMetrics"]).to_vec();
    if statuses.is_empty() {
        if let Some(u) = opt_i(obj, &["status", "currentCPUUtilizationPercentage"]) {
            statuses.push(serde_json::json!({
                "type": "Resource",
                "resource": {"name": "cpu", "current": {"averageUtilization": u}}
            }));
        }
    }
    (specs, statuses)
}

/// The TARGETS cell of an HPA (`formatHPAMetrics`).
pub(super) fn hpa_targets(obj: &Value) -> String {
    const MAX: usize = 2;
    let (specs, statuses) = hpa_metrics(obj);
    if specs.is_empty() {
        return "<none>".to_string();
    }
    let list: Vec<String> = specs
        .iter()
        .enumerate()
        .map(|(idx, spec)| hpa_metric(spec, statuses.get(idx)))
        .collect();
    let shown = list
        .iter()
        .take(MAX)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if list.len() > MAX {
        format!("{shown} + {} more...", list.len() - MAX)
    } else {
        shown
    }
}

/// HorizontalPodAutoscaler: Name, Reference, Targets, MinPods, MaxPods, Replicas, Age.
pub(super) fn horizontal_pod_autoscaler(obj: &Value, now: Nanos) -> Vec<Value> {
    let reference = format!(
        "{}/{}",
        s(obj, &["spec", "scaleTargetRef", "kind"]),
        s(obj, &["spec", "scaleTargetRef", "name"])
    );
    // minReplicas defaults to 1.
    let min_pods = opt_i(obj, &["spec", "minReplicas"])
        .unwrap_or(1)
        .to_string();
    vec![
        cell(name(obj)),
        cell(reference),
        cell(hpa_targets(obj)),
        cell(min_pods),
        int_cell(i(obj, &["spec", "maxReplicas"])),
        int_cell(i(obj, &["status", "currentReplicas"])),
        cell(age(obj, now)),
    ]
}

/// Scale (the scale subresource): Name, Desired, Available, Age.
pub(super) fn scale(obj: &Value, now: Nanos) -> Vec<Value> {
    vec![
        cell(name(obj)),
        int_cell(i(obj, &["spec", "replicas"])),
        int_cell(i(obj, &["status", "replicas"])),
        cell(age(obj, now)),
    ]
}
