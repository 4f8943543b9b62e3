//! Defaulting for built-in objects, as kube-apiserver's `SetDefaults_*` functions do for the
//! fields users see in `kubectl get -o yaml` (pod spec, workloads, services, secrets), and
//! canonicalisation of quantities (`cpu: 1` is stored as the string "1").

use serde_json::{json, Map, Value};

/// Set `obj[key]` to `value` when it is absent or null.
fn set_default(obj: &mut Value, key: &str, value: Value) {
    if let Some(m) = obj.as_object_mut() {
        match m.get(key) {
            Some(v) if !v.is_null() => {}
            _ => {
                m.insert(key.to_string(), value);
            }
        }
    }
}

/// Keys whose map values are resource quantities.
const QUANTITY_MAPS: &[&str] = &[
    "limits",
    "requests",
    "hard",
    "used",
    "capacity",
    "allocatable",
    "max",
    "min",
    "default",
    "defaultRequest",
    "maxLimitRequestRatio",
    "overhead",
    "allocatedResources",
];

/// Numbers inside quantity maps become strings, as kube-apiserver canonicalises them.
fn canonicalize_quantities(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, child) in m.iter_mut() {
                if QUANTITY_MAPS.contains(&k.as_str()) {
                    if let Value::Object(q) = child {
                        for qv in q.values_mut() {
                            if let Value::Number(n) = qv {
                                *qv = Value::String(n.to_string());
                            }
                        }
                    }
                }
                if k == "sizeLimit" {
                    if let Value::Number(n) = child {
                        *child = Value::String(n.to_string());
                    }
                }
                canonicalize_quantities(child);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(canonicalize_quantities),
        _ => {}
    }
}

fn image_pull_policy(image: &str) -> &'static str {
    let last = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') {
        return "IfNotPresent";
    }
    match last.split_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

fn default_container(c: &mut Value) {
    set_default(c, "terminationMessagePath", json!("/dev/termination-log"));
    set_default(c, "terminationMessagePolicy", json!("File"));
    let policy = image_pull_policy(c["image"].as_str().unwrap_or_default());
    set_default(c, "imagePullPolicy", json!(policy));
    set_default(c, "resources", json!({}));
    if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports {
            set_default(p, "protocol", json!("TCP"));
        }
    }
}

/// Defaults of a PodSpec.
fn default_pod_spec(spec: &mut Value) {
    if !spec.is_object() {
        return;
    }
    set_default(spec, "restartPolicy", json!("Always"));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "securityContext", json!({}));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    for list in ["containers", "initContainers"] {
        if let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) {
            cs.iter_mut().for_each(default_container);
        }
    }
}

fn default_template(obj: &mut Value) {
    if let Some(spec) = obj
        .get_mut("spec")
        .and_then(|s| s.get_mut("template"))
        .and_then(|t| t.get_mut("spec"))
    {
        default_pod_spec(spec);
    }
}

/// Apply defaults for one built-in kind.
pub fn apply(group: &str, kind: &str, obj: &mut Value) {
    // Not in CRDs: their schemas name properties `requests`, `limits`, `max`, `default`...
    // whose numbers (maxProperties: 8, default values) must stay numbers.
    if group != "apiextensions.k8s.io" {
        canonicalize_quantities(obj);
    }
    let spec_present = obj.get("spec").is_some_and(Value::is_object);
    match (group, kind) {
        ("", "Pod") => {
            if let Some(spec) = obj.get_mut("spec") {
                // SetDefaults_Pod (a Pod's, not a template's): requests default to limits.
                for key in ["containers", "initContainers"] {
                    let list = spec.get_mut(key).and_then(Value::as_array_mut);
                    for c in list.into_iter().flatten() {
                        let Some(limits) = c["resources"]["limits"].as_object().cloned() else {
                            continue;
                        };
                        if !c["resources"]["requests"].is_object() {
                            c["resources"]["requests"] = json!({});
                        }
                        for (name, q) in limits {
                            set_default(&mut c["resources"]["requests"], &name, q);
                        }
                    }
                }
                // SetDefaults_Pod: with the host's network, a port's host port is its
                // container port (templates keep theirs unset).
                if spec["hostNetwork"] == json!(true) {
                    for key in ["containers", "initContainers"] {
                        let list = spec.get_mut(key).and_then(Value::as_array_mut);
                        for c in list.into_iter().flatten() {
                            let ports = c.get_mut("ports").and_then(Value::as_array_mut);
                            for p in ports.into_iter().flatten().filter_map(Value::as_object_mut) {
                                let unset =
                                    p.get("hostPort").and_then(Value::as_i64).unwrap_or(0) == 0;
                                let port =
                                    p.get("containerPort").filter(|v| v.is_number()).cloned();
                                if let (true, Some(port)) = (unset, port) {
                                    p.insert("hostPort".into(), port);
                                }
                            }
                        }
                    }
                }
                default_pod_spec(spec);
                set_default(spec, "enableServiceLinks", json!(true));
                set_default(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
                set_default(spec, "priority", json!(0));
            }
        }
        ("", "PodTemplate") => {
            if let Some(spec) = obj.get_mut("template").and_then(|t| t.get_mut("spec")) {
                default_pod_spec(spec);
            }
        }
        ("apps", "Deployment") if spec_present => {
            let spec = &mut obj["spec"];
            set_default(spec, "replicas", json!(1));
            set_default(spec, "revisionHistoryLimit", json!(10));
            set_default(spec, "progressDeadlineSeconds", json!(600));
            set_default(spec, "strategy", json!({"type": "RollingUpdate"}));
            // client-go (protobuf or JSON) sends `strategy: {}`: Go defaults an empty type.
            set_default(&mut spec["strategy"], "type", json!("RollingUpdate"));
            if spec["strategy"]["type"] == json!("RollingUpdate") {
                set_default(&mut spec["strategy"], "rollingUpdate", json!({}));
                let ru = &mut spec["strategy"]["rollingUpdate"];
                set_default(ru, "maxUnavailable", json!("25%"));
                set_default(ru, "maxSurge", json!("25%"));
            }
            default_template(obj);
        }
        ("apps", "ReplicaSet") if spec_present => {
            set_default(&mut obj["spec"], "replicas", json!(1));
            default_template(obj);
        }
        ("", "ReplicationController") if spec_present => {
            // SetDefaults_ReplicationController: the selector and the object's labels come
            // from the template's labels when they are empty.
            let labels = obj["spec"]["template"]["metadata"]["labels"].clone();
            if labels.as_object().is_some_and(|l| !l.is_empty()) {
                let empty = |v: &Value| v.as_object().is_none_or(|m| m.is_empty());
                if empty(&obj["spec"]["selector"]) {
                    obj["spec"]["selector"] = labels.clone();
                }
                if obj["metadata"].is_object() && empty(&obj["metadata"]["labels"]) {
                    obj["metadata"]["labels"] = labels;
                }
            }
            set_default(&mut obj["spec"], "replicas", json!(1));
            default_template(obj);
        }
        ("apps", "StatefulSet") if spec_present => {
            let spec = &mut obj["spec"];
            set_default(spec, "replicas", json!(1));
            set_default(spec, "podManagementPolicy", json!("OrderedReady"));
            set_default(spec, "revisionHistoryLimit", json!(10));
            set_default(spec, "updateStrategy", json!({}));
            set_default(&mut spec["updateStrategy"], "type", json!("RollingUpdate"));
            if spec["updateStrategy"]["type"] == json!("RollingUpdate") {
                set_default(&mut spec["updateStrategy"], "rollingUpdate", json!({}));
                set_default(
                    &mut spec["updateStrategy"]["rollingUpdate"],
                    "partition",
                    json!(0),
                );
            }
            set_default(
                spec,
                "persistentVolumeClaimRetentionPolicy",
                json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
            );
            default_template(obj);
        }
        ("apps", "DaemonSet") if spec_present => {
            let spec = &mut obj["spec"];
            set_default(spec, "revisionHistoryLimit", json!(10));
            set_default(spec, "updateStrategy", json!({}));
            set_default(&mut spec["updateStrategy"], "type", json!("RollingUpdate"));
            if spec["updateStrategy"]["type"] == json!("RollingUpdate") {
                set_default(&mut spec["updateStrategy"], "rollingUpdate", json!({}));
                let ru = &mut spec["updateStrategy"]["rollingUpdate"];
                set_default(ru, "maxUnavailable", json!(1));
                set_default(ru, "maxSurge", json!(0));
            }
            default_template(obj);
        }
        ("batch", "Job") if spec_present => {
            let spec = &mut obj["spec"];
            set_default(spec, "parallelism", json!(1));
            if spec.get("completions").is_none() && spec.get("parallelism") == Some(&json!(1)) {
                set_default(spec, "completions", json!(1));
            }
            set_default(spec, "backoffLimit", json!(6));
            set_default(spec, "completionMode", json!("NonIndexed"));
            set_default(spec, "suspend", json!(false));
            // With a pod failure policy, a pod is replaced only once it has failed.
            let replacement = if spec["podFailurePolicy"].is_null() {
                "TerminatingOrFailed"
            } else {
                "Failed"
            };
            set_default(spec, "podReplacementPolicy", json!(replacement));
            default_template(obj);
        }
        ("batch", "CronJob") if spec_present => {
            let spec = &mut obj["spec"];
            set_default(spec, "concurrencyPolicy", json!("Allow"));
            set_default(spec, "suspend", json!(false));
            set_default(spec, "successfulJobsHistoryLimit", json!(3));
            set_default(spec, "failedJobsHistoryLimit", json!(1));
            if let Some(spec) = obj
                .get_mut("spec")
                .and_then(|s| s.get_mut("jobTemplate"))
                .and_then(|j| j.get_mut("spec"))
                .and_then(|s| s.get_mut("template"))
                .and_then(|t| t.get_mut("spec"))
            {
                default_pod_spec(spec);
            }
        }
        ("", "Service") => {
            set_default(obj, "spec", json!({}));
            let spec = &mut obj["spec"];
            set_default(spec, "type", json!("ClusterIP"));
            set_default(spec, "sessionAffinity", json!("None"));
            let ty = spec["type"].as_str().unwrap_or_default().to_string();
            if ty != "ExternalName" {
                set_default(spec, "internalTrafficPolicy", json!("Cluster"));
            }
            let external_ips = spec["externalIPs"]
                .as_array()
                .is_some_and(|a| !a.is_empty());
            if ty == "NodePort" || ty == "LoadBalancer" || (ty == "ClusterIP" && external_ips) {
                set_default(spec, "externalTrafficPolicy", json!("Cluster"));
            }
            if ty == "LoadBalancer" {
                set_default(spec, "allocateLoadBalancerNodePorts", json!(true));
            }
            match spec["sessionAffinity"].as_str() {
                Some("None") => {
                    if let Some(m) = spec.as_object_mut() {
                        m.remove("sessionAffinityConfig");
                    }
                }
                Some("ClientIP")
                    if spec["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"].is_null() =>
                {
                    spec["sessionAffinityConfig"] = json!({"clientIP": {"timeoutSeconds": 10800}});
                }
                _ => {}
            }
            if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
                for p in ports {
                    set_default(p, "protocol", json!("TCP"));
                    // SetDefaults_Service: a missing, 0 or "" targetPort is the port.
                    let unset = match p.get("targetPort") {
                        None | Some(Value::Null) => true,
                        Some(Value::Number(n)) => n.as_i64() == Some(0),
                        Some(Value::String(s)) => s.is_empty(),
                        _ => false,
                    };
                    if unset {
                        if let Some(port) = p.get("port").cloned() {
                            p["targetPort"] = port;
                        }
                    }
                }
            }
        }
        ("", "Secret") => {
            set_default(obj, "type", json!("Opaque"));
            merge_string_data(obj);
        }
        ("autoscaling", "HorizontalPodAutoscaler")
            if spec_present && obj["apiVersion"] == json!("autoscaling/v2") =>
        {
            let spec = &mut obj["spec"];
            set_default(spec, "minReplicas", json!(1));
            set_default(
                spec,
                "metrics",
                json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]),
            );
        }
        // SetDefaults_RoleBinding / _ClusterRoleBinding / _Subject: the RBAC group where left out.
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
            const RBAC: &str = "rbac.authorization.k8s.io";
            if let Some(role_ref) = obj.get_mut("roleRef").filter(|r| r.is_object()) {
                if role_ref["apiGroup"].as_str().is_none_or(str::is_empty) {
                    role_ref["apiGroup"] = json!(RBAC);
                }
            }
            for subject in obj
                .get_mut("subjects")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if !subject["apiGroup"].as_str().is_none_or(str::is_empty) {
                    continue;
                }
                // A ServiceAccount's group is "", which a Go round trip leaves out.
                if matches!(subject["kind"].as_str(), Some("User" | "Group")) {
                    subject["apiGroup"] = json!(RBAC);
                }
            }
        }
        ("", "ServiceAccount") | ("", "ConfigMap") => {}
        // SetDefaults_Namespace: the name as the `kubernetes.io/metadata.name` label, always.
        ("", "Namespace") => {
            label_namespace_name(obj);
            default_phase(obj, "Active");
        }
        ("", "Node") => default_node(obj),
        ("", "PersistentVolume") => default_persistent_volume(obj),
        ("", "PersistentVolumeClaim") => {
            default_phase(obj, "Pending");
            set_default(obj, "spec", json!({}));
            set_default(&mut obj["spec"], "volumeMode", json!("Filesystem"));
        }
        // SetDefaults_Endpoints: a port's protocol is TCP.
        ("", "Endpoints") => {
            let subsets = obj.get_mut("subsets").and_then(Value::as_array_mut);
            for subset in subsets.into_iter().flatten() {
                let ports = subset.get_mut("ports").and_then(Value::as_array_mut);
                for p in ports.into_iter().flatten() {
                    set_default_if_empty(p, "protocol", "TCP");
                }
            }
        }
        // apiextensions' SetDefaults_CustomResourceDefinitionSpec and _ServiceReference.
        ("apiextensions.k8s.io", "CustomResourceDefinition") if spec_present => {
            let spec = &mut obj["spec"];
            let kind = spec["names"]["kind"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if spec["names"].is_object() {
                let empty = |v: &Value| v.as_str().is_none_or(str::is_empty);
                if empty(&spec["names"]["singular"]) {
                    spec["names"]["singular"] = json!(kind.to_lowercase());
                }
                if empty(&spec["names"]["listKind"]) && !kind.is_empty() {
                    spec["names"]["listKind"] = json!(format!("{kind}List"));
                }
            }
            set_default(spec, "conversion", json!({"strategy": "None"}));
            if let Some(service) = spec["conversion"]
                .get_mut("webhook")
                .and_then(|w| w.get_mut("clientConfig"))
                .and_then(|c| c.get_mut("service"))
                .filter(|s| s.is_object())
            {
                set_default(service, "port", json!(443));
            }
        }
        // admissionregistration/v1 SetDefaults_*: webhooks, policies and bindings.
        (
            "admissionregistration.k8s.io",
            "ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration",
        ) => {
            let mutating = kind == "MutatingWebhookConfiguration";
            let hooks = obj.get_mut("webhooks").and_then(Value::as_array_mut);
            for hook in hooks.into_iter().flatten().filter(|h| h.is_object()) {
                set_default(hook, "failurePolicy", json!("Fail"));
                set_default(hook, "matchPolicy", json!("Equivalent"));
                set_default(hook, "namespaceSelector", json!({}));
                set_default(hook, "objectSelector", json!({}));
                set_default(hook, "timeoutSeconds", json!(10));
                if mutating {
                    set_default(hook, "reinvocationPolicy", json!("Never"));
                }
                default_rules(hook.get_mut("rules"));
                if let Some(service) = hook
                    .get_mut("clientConfig")
                    .and_then(|c| c.get_mut("service"))
                    .filter(|s| s.is_object())
                {
                    set_default(service, "port", json!(443));
                }
            }
        }
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy") if spec_present => {
            let spec = &mut obj["spec"];
            set_default(spec, "failurePolicy", json!("Fail"));
            if let Some(m) = spec.get_mut("matchConstraints").filter(|m| m.is_object()) {
                default_match_resources(m);
            }
        }
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding") if spec_present => {
            if let Some(m) = obj["spec"]
                .get_mut("matchResources")
                .filter(|m| m.is_object())
            {
                default_match_resources(m);
            }
        }
        ("storage.k8s.io", "StorageClass") => {
            set_default(obj, "reclaimPolicy", json!("Delete"));
            set_default(obj, "volumeBindingMode", json!("Immediate"));
        }
        ("discovery.k8s.io", "EndpointSlice") => {
            for p in obj
                .get_mut("ports")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                set_default(p, "name", json!(""));
                set_default(p, "protocol", json!("TCP"));
            }
        }
        ("", "LimitRange") => default_limit_range_items(obj),
        ("apiregistration.k8s.io", "APIService") => {
            let svc = obj.get_mut("spec").and_then(|s| s.get_mut("service"));
            if let Some(svc) = svc.filter(|s| s.is_object()) {
                set_default(svc, "port", json!(443));
            }
        }
        _ => {}
    }
    if let Some(m) = obj.as_object_mut() {
        if m.get("metadata").is_none() {
            m.insert("metadata".into(), Value::Object(Map::new()));
        }
    }
}

/// kube's SetDefaults_LimitRangeItem, for `Container` items only: a missing `default` is
/// `max`, a missing `defaultRequest` is `default`, else `min`.
fn default_limit_range_items(obj: &mut Value) {
    let limits = obj
        .get_mut("spec")
        .and_then(|s| s.get_mut("limits"))
        .and_then(Value::as_array_mut);
    for item in limits.into_iter().flatten() {
        if item.get("type").and_then(Value::as_str) != Some("Container") {
            continue;
        }
        let map = |k: &str| {
            item.get(k)
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        };
        let (max, min) = (map("max"), map("min"));
        let mut default = map("default");
        for (k, v) in max {
            default.entry(k).or_insert(v);
        }
        let mut request = map("defaultRequest");
        for (k, v) in default.iter().chain(&min) {
            request.entry(k.clone()).or_insert_with(|| v.clone());
        }
        if let Some(m) = item.as_object_mut() {
            if !default.is_empty() {
                m.insert("default".into(), Value::Object(default));
            }
            if !request.is_empty() {
                m.insert("defaultRequest".into(), Value::Object(request));
            }
        }
    }
}

/// Set `obj[key]` to `value` when it is absent, null or "" (Go's check of a string field).
fn set_default_if_empty(obj: &mut Value, key: &str, value: &str) {
    if let Some(m) = obj.as_object_mut() {
        if m.get(key).is_none_or(|v| v.is_null() || v == "") {
            m.insert(key.to_string(), json!(value));
        }
    }
}

/// `status.phase` when it is empty (the status is a struct by value in Go: always there).
fn default_phase(obj: &mut Value, phase: &str) {
    let Some(m) = obj.as_object_mut() else {
        return;
    };
    let status = m.entry("status").or_insert_with(|| json!({}));
    if status.is_null() {
        *status = json!({});
    }
    set_default_if_empty(status, "phase", phase);
}

/// A Node: `spec.podCIDR` and `spec.podCIDRs` agree as a round trip through kube's internal
/// form leaves them (`podCIDR` wins when it differs from the first of `podCIDRs`), and
/// SetDefaults_NodeStatus: allocatable is the capacity when left out.
fn default_node(obj: &mut Value) {
    if let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) {
        let first = spec["podCIDRs"][0].as_str().map(str::to_string);
        match spec["podCIDR"].as_str().filter(|c| !c.is_empty()) {
            Some(cidr) if first.as_deref() != Some(cidr) => {
                spec["podCIDRs"] = json!([cidr]);
            }
            Some(_) => {}
            None => {
                if let Some(first) = first {
                    spec["podCIDR"] = json!(first);
                }
            }
        }
    }
    if let Some(status) = obj.get_mut("status").filter(|s| s.is_object()) {
        if status.get("allocatable").is_none_or(Value::is_null) {
            if let Some(capacity) = status.get("capacity").filter(|c| c.is_object()).cloned() {
                status["allocatable"] = capacity;
            }
        }
    }
}

/// SetDefaults_PersistentVolume and those of its volume sources.
fn default_persistent_volume(obj: &mut Value) {
    default_phase(obj, "Pending");
    set_default(obj, "spec", json!({}));
    let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) else {
        return;
    };
    set_default_if_empty(spec, "persistentVolumeReclaimPolicy", "Retain");
    set_default(spec, "volumeMode", json!("Filesystem"));
    let mut source = |key: &str, defaults: &[(&str, &str)]| {
        if let Some(src) = spec.get_mut(key).filter(|s| s.is_object()) {
            for (k, v) in defaults {
                set_default_if_empty(src, k, v);
            }
        }
    };
    source(
        "rbd",
        &[
            ("pool", "rbd"),
            ("user", "admin"),
            ("keyring", "/etc/ceph/keyring"),
        ],
    );
    source("iscsi", &[("iscsiInterface", "default")]);
    source(
        "scaleIO",
        &[("storageMode", "ThinProvisioned"), ("fsType", "xfs")],
    );
    if let Some(hp) = spec.get_mut("hostPath").filter(|s| s.is_object()) {
        set_default(hp, "type", json!(""));
    }
    if let Some(disk) = spec.get_mut("azureDisk").filter(|s| s.is_object()) {
        set_default(disk, "cachingMode", json!("ReadWrite"));
        set_default(disk, "kind", json!("Shared"));
        set_default(disk, "fsType", json!("ext4"));
        set_default(disk, "readOnly", json!(false));
    }
}

/// A Secret's write-only `stringData` goes into `data`, base64-encoded, each key overriding
/// the one in `data` (kube's conversion from v1): it is never stored.
fn merge_string_data(secret: &mut Value) {
    use base64::Engine;
    let Some(Value::Object(string_data)) =
        secret.as_object_mut().and_then(|m| m.remove("stringData"))
    else {
        return;
    };
    if !secret["data"].is_object() {
        secret["data"] = json!({});
    }
    if let Some(data) = secret["data"].as_object_mut() {
        for (k, v) in string_data {
            if let Some(text) = v.as_str() {
                let encoded = base64::engine::general_purpose::STANDARD.encode(text);
                data.insert(k, Value::String(encoded));
            }
        }
    }
}

/// A Namespace's `kubernetes.io/metadata.name` label: its name (kube's defaulting and its
/// namespace strategy's Canonicalize keep it so; a nameless one, `generateName`, gets it once
/// named).
pub fn label_namespace_name(obj: &mut Value) {
    let Some(name) = obj["metadata"]["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .map(str::to_string)
    else {
        return;
    };
    if !obj["metadata"]["labels"].is_object() {
        obj["metadata"]["labels"] = json!({});
    }
    obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(name);
}

/// `rules[].scope` defaults to `*` (admissionregistration/v1 `SetDefaults_Rule`).
fn default_rules(rules: Option<&mut Value>) {
    let rules = rules.and_then(Value::as_array_mut);
    for rule in rules.into_iter().flatten().filter(|r| r.is_object()) {
        set_default(rule, "scope", json!("*"));
    }
}

/// `SetDefaults_MatchResources`: match policy, selectors, and the rules' scope.
fn default_match_resources(m: &mut Value) {
    set_default(m, "matchPolicy", json!("Equivalent"));
    set_default(m, "namespaceSelector", json!({}));
    set_default(m, "objectSelector", json!({}));
    default_rules(m.get_mut("resourceRules"));
    default_rules(m.get_mut("excludeResourceRules"));
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn image_pull_policy_follows_the_tag() {
        assert_eq!(image_pull_policy("nginx"), "Always");
        assert_eq!(image_pull_policy("nginx:latest"), "Always");
        assert_eq!(image_pull_policy("nginx:1.25"), "IfNotPresent");
        assert_eq!(image_pull_policy("localhost:5000/nginx"), "Always");
        assert_eq!(image_pull_policy("repo/nginx@sha256:abc"), "IfNotPresent");
    }

    #[test]
    fn numeric_quantities_become_strings() {
        let mut pod = json!({"spec": {"containers": [{"name": "a", "image": "x", "resources": {"limits": {"cpu": 1, "memory": "1Gi"}}}]}});
        apply("", "Pod", &mut pod);
        assert_eq!(
            pod["spec"]["containers"][0]["resources"]["limits"]["cpu"],
            json!("1")
        );
        assert_eq!(pod["spec"]["restartPolicy"], json!("Always"));
    }

    #[test]
    fn deployment_gets_rolling_update_defaults() {
        let mut d = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "x:1"}]}}}});
        apply("apps", "Deployment", &mut d);
        assert_eq!(
            d["spec"]["strategy"]["rollingUpdate"]["maxSurge"],
            json!("25%")
        );
        assert_eq!(d["spec"]["replicas"], json!(1));
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
            json!("IfNotPresent")
        );
    }

    #[test]
    fn empty_update_strategies_get_their_type_and_parameters() {
        let tmpl = json!({"template": {"spec": {"containers": [{"name": "a", "image": "x:1"}]}}, "updateStrategy": {}});
        let mut ss = json!({"spec": tmpl.clone()});
        apply("apps", "StatefulSet", &mut ss);
        assert_eq!(
            ss["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        );
        let mut ds = json!({"spec": tmpl});
        apply("apps", "DaemonSet", &mut ds);
        assert_eq!(
            ds["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"],
            1
        );
    }
}
