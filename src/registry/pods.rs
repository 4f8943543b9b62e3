//! `pods/resize`, as kube-apiserver's resize strategy and `ValidatePodResize` treat it: only the
//! containers' `resources` and `resizePolicy` are taken from the request, and only CPU and
//! memory may change, without changing the pod's QoS class.

use std::collections::HashSet;

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

// ---------------------------------------------------------------------------------------------
// A pod spec validated as kube's `ValidatePodSpec` validates it (the rules users hit: names,
// images, ports, env, resources, volumes and mounts, probes, pull and restart policies; the
// security contexts, scheduling fields, DNS, tolerations, overhead and OS are in
// `pod_spec_more.rs`, called from here in kube's order).

use kubox_apimachinery::quantity::Quantity;
use kubox_apimachinery::validation as v;

fn s<'a>(x: &'a Value, k: &str) -> &'a str {
    x.get(k).and_then(Value::as_str).unwrap_or_default()
}

fn items<'a>(x: &'a Value, k: &str) -> &'a [Value] {
    x.get(k)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn label_errors(errs: &mut Vec<FieldError>, path: &str, value: &str) {
    for m in v::is_dns1123_label(value) {
        errs.push(FieldError::invalid(path, value, m));
    }
}

/// kube's port-name check at `path`; true when the name is valid.
pub(super) fn port_name_errors(errs: &mut Vec<FieldError>, path: &str, name: &str) -> bool {
    let problems = kubox_apimachinery::validation::is_valid_port_name(name);
    for m in &problems {
        errs.push(FieldError::invalid(path, name, *m));
    }
    problems.is_empty()
}

const PORT_RANGE: &str = "must be between 1 and 65535, inclusive";

fn port_number(errs: &mut Vec<FieldError>, path: &str, port: &Value) {
    match port {
        Value::Number(n) => {
            let n = n.as_i64().unwrap_or(0);
            if !(1..=65535).contains(&n) {
                errs.push(FieldError::invalid_rendered(
                    path,
                    n.to_string(),
                    PORT_RANGE,
                ));
            }
        }
        Value::String(name) => {
            port_name_errors(errs, path, name);
        }
        _ => {}
    }
}

const VOLUME_SOURCES: &[&str] = &[
    "emptyDir",
    "hostPath",
    "gitRepo",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "flocker",
    "persistentVolumeClaim",
    "rbd",
    "cinder",
    "cephfs",
    "quobyte",
    "downwardAPI",
    "fc",
    "flexVolume",
    "configMap",
    "azureFile",
    "vsphereVolume",
    "photonPersistentDisk",
    "portworxVolume",
    "azureDisk",
    "storageos",
    "projected",
    "scaleIO",
    "csi",
    "ephemeral",
    "image",
];

/// The volumes' errors; the names of the volumes without errors (what mounts may name).
fn volume_errors(spec: &Value, path: &str, errs: &mut Vec<FieldError>) -> HashSet<String> {
    // Sets, here and below: a pod's lists are checked for repeats in linear time.
    let mut valid: HashSet<String> = HashSet::new();
    for (i, vol) in items(spec, "volumes").iter().enumerate() {
        let at = format!("{path}.volumes[{i}]");
        let before = errs.len();
        let mut found = false;
        for src in VOLUME_SOURCES {
            if vol.get(*src).is_none_or(Value::is_null) {
                continue;
            }
            if found {
                // kube's paths, quirks included.
                let name = match *src {
                    "downwardAPI" => "downwarAPI",
                    "cephfs" => "cephFS",
                    other => other,
                };
                errs.push(FieldError::forbidden(
                    format!("{at}.{name}"),
                    "may not specify more than 1 volume type",
                ));
            }
            found = true;
        }
        if !found {
            errs.push(FieldError::required(&at, "must specify a volume type"));
        }
        let name = s(vol, "name");
        if name.is_empty() {
            errs.push(FieldError::required(format!("{at}.name"), ""));
        } else {
            label_errors(errs, &format!("{at}.name"), name);
        }
        if errs.len() == before && !valid.insert(name.to_string()) {
            errs.push(FieldError::duplicate(format!("{at}.name"), name));
        }
    }
    valid
}

fn quantity_of(x: &Value) -> Option<Quantity> {
    match x {
        Value::String(t) => Quantity::parse(t),
        Value::Number(n) => Quantity::parse(&n.to_string()),
        _ => None,
    }
}

fn resource_errors(c: &Value, at: &str, errs: &mut Vec<FieldError>) {
    let res = &c["resources"];
    let zero = Quantity::zero();
    for kind in ["limits", "requests"] {
        for (name, q) in res[kind].as_object().into_iter().flatten() {
            if quantity_of(q).is_some_and(|q| q < zero) {
                let shown = quantity_of(q).map(|q| q.to_string()).unwrap_or_default();
                errs.push(FieldError::invalid(
                    format!("{at}.resources.{kind}[{name}]"),
                    &shown,
                    "must be greater than or equal to 0",
                ));
            }
        }
    }
    for (name, req) in res["requests"].as_object().into_iter().flatten() {
        let (Some(req), Some(limit)) = (
            quantity_of(req),
            res["limits"].get(name).and_then(quantity_of),
        ) else {
            continue;
        };
        let overcommittable = !(name.starts_with("hugepages-") || name.contains('/'));
        if overcommittable && req > limit {
            errs.push(FieldError::invalid(
                format!("{at}.resources.requests"),
                &req.to_string(),
                format!("must be less than or equal to {name} limit of {limit}"),
            ));
        } else if !overcommittable && req != limit {
            errs.push(FieldError::invalid(
                format!("{at}.resources.requests"),
                &req.to_string(),
                format!("must be equal to {name} limit of {limit}"),
            ));
        }
    }
}

fn probe_errors(c: &Value, at: &str, errs: &mut Vec<FieldError>) {
    for kind in ["livenessProbe", "readinessProbe", "startupProbe"] {
        let probe = &c[kind];
        if !probe.is_object() {
            continue;
        }
        let p = format!("{at}.{kind}");
        let mut found = false;
        for handler in ["exec", "httpGet", "tcpSocket", "grpc"] {
            let h = &probe[handler];
            if h.is_null() {
                continue;
            }
            if found {
                errs.push(FieldError::forbidden(
                    format!("{p}.{handler}"),
                    "may not specify more than 1 handler type",
                ));
                continue;
            }
            found = true;
            match handler {
                "exec" if items(h, "command").is_empty() => {
                    errs.push(FieldError::required(format!("{p}.exec.command"), ""))
                }
                "httpGet" | "tcpSocket" | "grpc" => {
                    port_number(errs, &format!("{p}.{handler}.port"), &h["port"])
                }
                _ => {}
            }
        }
        if !found {
            errs.push(FieldError::required(&p, "must specify a handler type"));
        }
        for field in [
            "initialDelaySeconds",
            "timeoutSeconds",
            "periodSeconds",
            "successThreshold",
            "failureThreshold",
        ] {
            if let Some(n) = probe[field].as_i64().filter(|n| *n < 0) {
                errs.push(FieldError::invalid_rendered(
                    format!("{p}.{field}"),
                    n.to_string(),
                    "must be greater than or equal to 0",
                ));
            }
        }
        if let Some(n) = probe["terminationGracePeriodSeconds"].as_i64() {
            if kind == "readinessProbe" {
                errs.push(FieldError::invalid_rendered(
                    format!("{p}.terminationGracePeriodSeconds"),
                    n.to_string(),
                    "must not be set for readinessProbes",
                ));
            } else if n <= 0 {
                errs.push(FieldError::invalid_rendered(
                    format!("{p}.terminationGracePeriodSeconds"),
                    n.to_string(),
                    "must be greater than 0",
                ));
            }
        }
        if kind != "readinessProbe" {
            if let Some(n) = probe["successThreshold"].as_i64().filter(|n| *n != 1) {
                errs.push(FieldError::invalid_rendered(
                    format!("{p}.successThreshold"),
                    n.to_string(),
                    "must be 1",
                ));
            }
        }
    }
}

/// One container's own checks, in kube's order (`validateContainerCommon`).
fn container_errors(
    c: &Value,
    at: &str,
    volumes: &HashSet<String>,
    host_users: bool,
    errs: &mut Vec<FieldError>,
) {
    let name = s(c, "name");
    if name.is_empty() {
        errs.push(FieldError::required(format!("{at}.name"), ""));
    } else {
        label_errors(errs, &format!("{at}.name"), name);
    }
    if s(c, "image").is_empty() {
        errs.push(FieldError::required(format!("{at}.image"), ""));
    }
    const MESSAGE_POLICIES: &[&str] = &["File", "FallbackToLogsOnError"];
    match s(c, "terminationMessagePolicy") {
        "" => {}
        p if !MESSAGE_POLICIES.contains(&p) => errs.push(FieldError::not_supported(
            format!("{at}.terminationMessagePolicy"),
            p,
            MESSAGE_POLICIES,
        )),
        _ => {}
    }
    let mut port_names: HashSet<&str> = HashSet::new();
    for (j, port) in items(c, "ports").iter().enumerate() {
        let p = format!("{at}.ports[{j}]");
        let pname = s(port, "name");
        if !pname.is_empty()
            && port_name_errors(errs, &format!("{p}.name"), pname)
            && !port_names.insert(pname)
        {
            errs.push(FieldError::duplicate(format!("{p}.name"), pname));
        }
        match port["containerPort"].as_i64().unwrap_or(0) {
            0 => errs.push(FieldError::required(format!("{p}.containerPort"), "")),
            n if !(1..=65535).contains(&n) => errs.push(FieldError::invalid_rendered(
                format!("{p}.containerPort"),
                n.to_string(),
                PORT_RANGE,
            )),
            _ => {}
        }
        if let Some(n) = port["hostPort"].as_i64().filter(|n| *n != 0) {
            if !(1..=65535).contains(&n) {
                errs.push(FieldError::invalid_rendered(
                    format!("{p}.hostPort"),
                    n.to_string(),
                    PORT_RANGE,
                ));
            }
        }
        const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
        let proto = s(port, "protocol");
        if !proto.is_empty() && !PROTOCOLS.contains(&proto) {
            errs.push(FieldError::not_supported(
                format!("{p}.protocol"),
                proto,
                PROTOCOLS,
            ));
        }
    }
    for (k, env) in items(c, "env").iter().enumerate() {
        let p = format!("{at}.env[{k}]");
        let ename = s(env, "name");
        if ename.is_empty() {
            errs.push(FieldError::required(format!("{p}.name"), ""));
        } else if !ename
            .bytes()
            .all(|b| (0x20..=0x7e).contains(&b) && b != b'=')
        {
            errs.push(FieldError::invalid(
                format!("{p}.name"),
                ename,
                "a valid environment variable name must consist only of printable ASCII characters other than '='",
            ));
        }
        let from = &env["valueFrom"];
        if from.is_object() {
            let sources = [
                "fieldRef",
                "resourceFieldRef",
                "configMapKeyRef",
                "secretKeyRef",
                "fileKeyRef",
            ]
            .iter()
            .filter(|k| !from[**k].is_null())
            .count();
            let message = if sources == 0 {
                Some("must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef`, `secretKeyRef` or `fileKeyRef`")
            } else if !s(env, "value").is_empty() {
                Some("may not be specified when `value` is not empty")
            } else if sources > 1 {
                Some("may not have more than one field specified at a time")
            } else {
                None
            };
            if let Some(m) = message {
                errs.push(FieldError::invalid(format!("{p}.valueFrom"), "", m));
            }
        }
    }
    let mut mount_paths: HashSet<&str> = HashSet::new();
    for (m, mount) in items(c, "volumeMounts").iter().enumerate() {
        let p = format!("{at}.volumeMounts[{m}]");
        let mname = s(mount, "name");
        if mname.is_empty() {
            errs.push(FieldError::required(format!("{p}.name"), ""));
        }
        if !volumes.contains(mname) {
            errs.push(FieldError::not_found(format!("{p}.name"), mname));
        }
        let mpath = s(mount, "mountPath");
        if mpath.is_empty() {
            errs.push(FieldError::required(format!("{p}.mountPath"), ""));
        }
        if !mount_paths.insert(mpath) {
            errs.push(FieldError::invalid(
                format!("{p}.mountPath"),
                mpath,
                "must be unique",
            ));
        }
    }
    const PULL: &[&str] = &["Always", "IfNotPresent", "Never"];
    let pull = s(c, "imagePullPolicy");
    if !pull.is_empty() && !PULL.contains(&pull) {
        errs.push(FieldError::not_supported(
            format!("{at}.imagePullPolicy"),
            pull,
            PULL,
        ));
    }
    resource_errors(c, at, errs);
    super::pod_spec_more::container_security_context(c, at, host_users, errs);
}

/// A pod spec at `path` (`spec`, or a template's `spec.template.spec`).
pub fn pod_spec_errors(spec: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    // `hostUsers` unset means the host's user namespace.
    let host_users = spec["hostUsers"].as_bool() != Some(false);
    let volumes = volume_errors(spec, path, &mut errs);
    let containers = items(spec, "containers");
    if containers.is_empty() {
        errs.push(FieldError::required(format!("{path}.containers"), ""));
    }
    let mut names: HashSet<&str> = HashSet::new();
    for (i, c) in containers.iter().enumerate() {
        let at = format!("{path}.containers[{i}]");
        container_errors(c, &at, &volumes, host_users, &mut errs);
        let name = s(c, "name");
        if !names.insert(name) {
            errs.push(FieldError::duplicate(format!("{at}.name"), name));
        }
        probe_errors(c, &at, &mut errs);
    }
    let mut host_ports: HashSet<String> = HashSet::new();
    for (i, c) in containers.iter().enumerate() {
        for (j, port) in items(c, "ports").iter().enumerate() {
            let Some(hp) = port["hostPort"].as_i64().filter(|p| *p != 0) else {
                continue;
            };
            let key = format!("{}/{}/{hp}", s(port, "protocol"), s(port, "hostIP"));
            if host_ports.contains(&key) {
                errs.push(FieldError::duplicate(
                    format!("{path}.containers[{i}].ports[{j}].hostPort"),
                    &key,
                ));
            } else {
                host_ports.insert(key);
            }
        }
    }
    for (i, c) in items(spec, "initContainers").iter().enumerate() {
        let at = format!("{path}.initContainers[{i}]");
        container_errors(c, &at, &volumes, host_users, &mut errs);
        let name = s(c, "name");
        if !name.is_empty() && !names.insert(name) {
            errs.push(FieldError::duplicate(format!("{at}.name"), name));
        }
        if c["restartPolicy"] == "Always" {
            probe_errors(c, &at, &mut errs);
        } else {
            for field in [
                "lifecycle",
                "livenessProbe",
                "readinessProbe",
                "startupProbe",
            ] {
                if !c[field].is_null() {
                    errs.push(FieldError::forbidden(
                        format!("{at}.{field}"),
                        "may not be set for init containers without restartPolicy=Always",
                    ));
                }
            }
        }
    }
    super::pod_spec_more::after_containers(spec, path, &mut errs);
    const RESTART: &[&str] = &["Always", "OnFailure", "Never"];
    let restart = s(spec, "restartPolicy");
    if !restart.is_empty() && !RESTART.contains(&restart) {
        errs.push(FieldError::not_supported(
            format!("{path}.restartPolicy"),
            restart,
            RESTART,
        ));
    }
    const DNS: &[&str] = &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
    let dns = s(spec, "dnsPolicy");
    if !dns.is_empty() && !DNS.contains(&dns) {
        errs.push(FieldError::not_supported(
            format!("{path}.dnsPolicy"),
            dns,
            DNS,
        ));
    }
    super::pod_spec_more::after_dns_policy(spec, path, &mut errs);
    let account = s(spec, "serviceAccountName");
    if !account.is_empty() {
        for m in v::is_dns1123_subdomain(account) {
            errs.push(FieldError::invalid(
                format!("{path}.serviceAccountName"),
                account,
                m,
            ));
        }
    }
    if let Some(n) = spec["activeDeadlineSeconds"].as_i64() {
        if !(1..=2_147_483_647).contains(&n) {
            errs.push(FieldError::invalid_rendered(
                format!("{path}.activeDeadlineSeconds"),
                n.to_string(),
                "must be between 1 and 2147483647, inclusive",
            ));
        }
    }
    for field in ["hostname", "subdomain"] {
        let value = s(spec, field);
        if !value.is_empty() {
            label_errors(&mut errs, &format!("{path}.{field}"), value);
        }
    }
    super::pod_spec_more::after_subdomain(spec, path, &mut errs);
    errs
}

/// Bind a pod to a node (kube's binding REST, setPodNodeAndMetadata): `spec.nodeName` set once,
/// the binding's annotations copied, the `PodScheduled` condition True. A pod being deleted or
/// already bound is a Conflict. Returns the write's revision.
pub async fn assign(
    state: &super::Backend,
    namespace: &str,
    pod: &str,
    node: &str,
    annotations: &Value,
) -> crate::status::ApiResult<i64> {
    use crate::status::{self, ApiError, GroupResource};
    let gr = GroupResource::new("", "pods");
    let key = super::storage_prefix("", "pods") + &format!("{namespace}/{pod}");
    let kv = state
        .store
        .get(&key, None)
        .await
        .map_err(|e| status::from_store(e, &gr, pod))?;
    let mut obj = crate::objects::from_stored(&kv)?;
    if super::store::is_deleting(&obj) {
        return Err(ApiError::conflict(
            &gr,
            pod,
            &format!("pod {pod} is being deleted, cannot be assigned to a host"),
        ));
    }
    if let Some(bound) = obj["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
        return Err(ApiError::conflict(
            &gr,
            pod,
            &format!("pod {pod} is already assigned to node {bound:?}"),
        ));
    }
    obj["spec"]["nodeName"] = Value::from(node);
    if let Some(a) = annotations.as_object().filter(|a| !a.is_empty()) {
        if !obj["metadata"]["annotations"].is_object() {
            obj["metadata"]["annotations"] = serde_json::json!({});
        }
        for (k, v) in a {
            obj["metadata"]["annotations"][k] = v.clone();
        }
    }
    if !obj["status"].is_object() {
        obj["status"] = serde_json::json!({});
    }
    let mut conds: Vec<Value> = obj["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let now = crate::objects::timestamp(state.clock.now());
    crate::objects::set_condition(&mut conds, "PodScheduled", "True", "", "", &now);
    for c in conds.iter_mut().filter(|c| c["type"] == "PodScheduled") {
        if let Some(m) = c.as_object_mut() {
            m.retain(|k, v| !(matches!(k.as_str(), "reason" | "message") && v == ""));
            m.entry("lastProbeTime").or_insert(Value::Null);
        }
    }
    obj["status"]["conditions"] = Value::Array(conds);
    let written = state
        .store
        .update(
            &key,
            crate::objects::to_stored(&obj)?,
            Some(kv.mod_revision),
        )
        .await
        .map_err(|e| status::from_store(e, &gr, pod))?;
    Ok(written.mod_revision)
}
