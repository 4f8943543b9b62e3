//! `pods/resize`, as kube-apiserver's resize strategy and `ValidatePodResize` treat it: only the
//! containers' `resources` and `resizePolicy` are taken from the request, and only CPU and
//! memory may change, without changing the pod's QoS class.

use kubox_apimachinery::validation::FieldError;
use serde_json::Value;

const LISTS: [&str; 2] = ["containers", "initContainers"];

fn names(spec: &Value, list: &str) -> Vec<String> {
    spec[list]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| c["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// kube's resize `PrepareForUpdate`: the stored pod with the request's container `resources`
/// and `resizePolicy` (containers and init containers, matched by position and name). A
/// request whose containers do not line up is kept as sent, for validation to refuse.
pub fn prepare_resize(new: &mut Value, old: &Value) {
    let (spec, old_spec) = (&new["spec"], &old["spec"]);
    if LISTS
        .iter()
        .any(|l| names(spec, l).len() != names(old_spec, l).len())
    {
        return;
    }
    let mut out = old.clone();
    for list in LISTS {
        if names(spec, list) != names(old_spec, list) {
            out["spec"][list] = spec[list].clone();
            continue;
        }
        for (i, c) in spec[list].as_array().into_iter().flatten().enumerate() {
            for field in ["resources", "resizePolicy"] {
                crate::objects::set_or_remove(
                    &mut out["spec"][list][i],
                    field,
                    c.get(field).cloned(),
                );
            }
        }
    }
    for path in ["resourceVersion", "managedFields"] {
        crate::objects::set_or_remove(
            &mut out["metadata"],
            path,
            new["metadata"].get(path).cloned(),
        );
    }
    *new = out;
}

/// A container without the CPU and memory of its requests and limits (an empty or null map
/// of either counts as none, as kube compares them semantically).
fn without_cpu_and_memory(c: &Value) -> Value {
    let mut c = c.clone();
    for kind in ["requests", "limits"] {
        if let Some(m) = c["resources"][kind].as_object_mut() {
            m.remove("cpu");
            m.remove("memory");
        }
        let empty = c["resources"][kind]
            .as_object()
            .is_none_or(|m| m.is_empty());
        if empty {
            if let Some(r) = c["resources"].as_object_mut() {
                r.remove(kind);
            }
        }
    }
    if c["resources"].as_object().is_some_and(|r| r.is_empty()) {
        if let Some(m) = c.as_object_mut() {
            m.remove("resources");
        }
    }
    c
}

/// kube's `ValidatePodResize` after the generic pod checks.
pub fn resize_errors(
    new: &Value,
    old: &Value,
    qos_of: fn(&Value) -> &'static str,
) -> Vec<FieldError> {
    let (spec, old_spec) = (&new["spec"], &old["spec"]);
    if old["metadata"]["annotations"]["kubernetes.io/config.mirror"].is_string() {
        return vec![FieldError::forbidden("[]", "static pods cannot be resized")];
    }
    if old_spec["os"]["name"] == "windows" {
        return vec![FieldError::forbidden(
            "[]",
            "windows pods cannot be resized",
        )];
    }
    let mut errs = Vec::new();
    let current = old["status"]["qosClass"]
        .as_str()
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| qos_of(old_spec));
    if qos_of(spec) != current {
        errs.push(FieldError::invalid(
            "spec",
            current,
            "Pod QOS Class may not change as a result of resizing",
        ));
    }
    let pod_level = |s: &Value| {
        ["requests", "limits"].iter().any(|k| {
            s["resources"][*k]
                .as_object()
                .is_some_and(|m| !m.is_empty())
        })
    };
    if pod_level(spec) || pod_level(old_spec) {
        errs.push(FieldError::forbidden(
            "[]",
            "resize of pods with pod-level resources is forbidden when InPlacePodLevelResourcesVerticalScalingEnabled feature gate is disabled",
        ));
        return errs;
    }
    let mut order = Vec::new();
    for (list, what) in [
        ("containers", "containers"),
        ("initContainers", "initContainers"),
    ] {
        let (now, before) = (names(spec, list), names(old_spec, list));
        if now.len() != before.len() {
            order.push(FieldError::forbidden(
                format!("spec.{list}"),
                format!("{what} may not be added or removed on resize"),
            ));
            continue;
        }
        for (i, (a, b)) in now.iter().zip(&before).enumerate() {
            if a != b {
                order.push(FieldError::forbidden(
                    format!("spec.{list}[{i}].name"),
                    format!("{what} may not be renamed or reordered on resize"),
                ));
            }
        }
    }
    if !order.is_empty() {
        errs.extend(order);
        return errs;
    }
    let keys = |c: &Value, kind: &str| -> Vec<String> {
        c["resources"][kind]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    let sidecar = |c: &Value| c["restartPolicy"] == "Always";
    let pairs = |list: &str| -> Vec<(usize, Value, Value)> {
        spec[list]
            .as_array()
            .into_iter()
            .flatten()
            .zip(old_spec[list].as_array().into_iter().flatten())
            .enumerate()
            .map(|(i, (n, o))| (i, n.clone(), o.clone()))
            .collect()
    };
    let removal = |list: &str, only_sidecars: bool, errs: &mut Vec<FieldError>| {
        for (i, n, o) in pairs(list) {
            if only_sidecars && !sidecar(&o) {
                continue;
            }
            for (kind, what) in [("requests", "requests"), ("limits", "limits")] {
                let now = keys(&n, kind);
                if keys(&o, kind).iter().any(|k| !now.contains(k)) {
                    errs.push(FieldError::forbidden(
                        format!("spec.{list}[{i}].resources.{kind}"),
                        format!("resource {what} cannot be removed"),
                    ));
                }
            }
        }
    };
    removal("initContainers", true, &mut errs);
    removal("containers", false, &mut errs);
    for (_, n, o) in pairs("containers") {
        if without_cpu_and_memory(&n) != without_cpu_and_memory(&o) {
            errs.push(FieldError::forbidden(
                "spec",
                "only cpu and memory resources are mutable",
            ));
        }
    }
    for (_, n, o) in pairs("initContainers") {
        if sidecar(&o) {
            if without_cpu_and_memory(&n) != without_cpu_and_memory(&o) {
                errs.push(FieldError::forbidden(
                    "spec",
                    "only cpu and memory resources for sidecar containers are mutable",
                ));
            }
        } else if n != o {
            errs.push(FieldError::forbidden(
                "spec",
                "resources for non-sidecar init containers are immutable",
            ));
        }
    }
    errs
}

/// What kube's `ValidatePodUpdate` allows a pod's spec to change through the pod itself: the
/// containers' and init containers' images, `activeDeadlineSeconds`, added tolerations and
/// `terminationGracePeriodSeconds` (from a negative value to 1); scheduling gates may be
/// removed. Anything else is one Forbidden error at `spec`, followed by the differing fields.
pub fn pod_update_errors(new: &Value, old: &Value) -> Vec<FieldError> {
    let (spec, old_spec) = (&new["spec"], &old["spec"]);
    for list in LISTS {
        if names(spec, list).len() != names(old_spec, list).len() {
            return vec![FieldError::forbidden(
                format!("spec.{list}"),
                "pod updates may not add or remove containers",
            )];
        }
    }
    // The new spec with what may change taken from the old one.
    let mut munged = spec.clone();
    for list in LISTS {
        for (i, c) in old_spec[list].as_array().into_iter().flatten().enumerate() {
            if let Some(image) = c.get("image") {
                munged[list][i]["image"] = image.clone();
            }
        }
    }
    crate::objects::set_or_remove(
        &mut munged,
        "activeDeadlineSeconds",
        old_spec.get("activeDeadlineSeconds").cloned(),
    );
    let old_tolerations = old_spec["tolerations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let kept_tolerations = spec["tolerations"]
        .as_array()
        .is_none_or(|now| old_tolerations.iter().all(|t| now.contains(t)));
    if kept_tolerations {
        crate::objects::set_or_remove(
            &mut munged,
            "tolerations",
            old_spec.get("tolerations").cloned(),
        );
    }
    let grace = |s: &Value| s["terminationGracePeriodSeconds"].as_i64();
    if grace(old_spec).is_some_and(|g| g < 0) && grace(spec) == Some(1) {
        crate::objects::set_or_remove(
            &mut munged,
            "terminationGracePeriodSeconds",
            old_spec.get("terminationGracePeriodSeconds").cloned(),
        );
    }
    let old_gates = old_spec["schedulingGates"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if spec["schedulingGates"]
        .as_array()
        .is_none_or(|now| now.iter().all(|g| old_gates.contains(g)))
    {
        crate::objects::set_or_remove(
            &mut munged,
            "schedulingGates",
            old_spec.get("schedulingGates").cloned(),
        );
    }
    if &munged == old_spec {
        return Vec::new();
    }
    // kube appends a diff of the specs; this one names each differing field.
    let mut diff = Vec::new();
    let empty = serde_json::Map::new();
    let (now, before) = (
        munged.as_object().unwrap_or(&empty),
        old_spec.as_object().unwrap_or(&empty),
    );
    let mut keys: Vec<&String> = now.keys().chain(before.keys()).collect();
    keys.sort();
    keys.dedup();
    for k in keys {
        if now.get(k) != before.get(k) {
            let show = |v: Option<&Value>| v.map_or("nil".to_string(), |v| v.to_string());
            diff.push(format!(
                "- {k}: {}\n+ {k}: {}",
                show(before.get(k)),
                show(now.get(k))
            ));
        }
    }
    vec![FieldError::forbidden(
        "spec",
        format!(
            "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n{}",
            diff.join("\n")
        ),
    )]
}
