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
