//! Row cells of the core (group "") kinds.

use super::util::{
    age, age_at, arr, bool_ptr, cell, container_cells, deleting, format_labels, get, i, int_cell,
    int_or_string, join_host_port, len_at, name, opt_b, opt_s, quantity_at, s, since, sorted_set,
    time_at, Nanos,
};
use serde_json::Value;

const NODE_ROLE_PREFIX: &str = "node-role.kubernetes.io/";
const NODE_ROLE_LABEL: &str = "kubernetes.io/role";
const BETA_STORAGE_CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";

fn is_restartable_init_container(c: Option<&Value>) -> bool {
    c.is_some_and(|c| s(c, &["restartPolicy"]) == "Always")
}

fn condition_true(conditions: &[Value], type_: &str) -> bool {
    conditions
        .iter()
        .find(|c| s(c, &["type"]) == type_)
        .is_some_and(|c| s(c, &["status"]) == "True")
}

/// Keeps the latest of the restart times (`lastTerminationState.terminated.finishedAt`).
fn note_restart(latest: &mut Option<Nanos>, status: &Value) {
    if get(status, &["lastTerminationState", "terminated"]).is_some() {
        if let Some(t) = time_at(
            status,
            &["lastTerminationState", "terminated", "finishedAt"],
        ) {
            if latest.is_none_or(|l| l < t) {
                *latest = Some(t);
            }
        }
    }
}

/// The reason shown for a terminated container: its reason, else "Signal:N", else "ExitCode:N".
fn terminated_reason(term: &Value, prefix: &str) -> String {
    let reason = s(term, &["reason"]);
    if !reason.is_empty() {
        return format!("{prefix}{reason}");
    }
    let signal = i(term, &["signal"]);
    if signal != 0 {
        format!("{prefix}Signal:{signal}")
    } else {
        format!("{prefix}ExitCode:{}", i(term, &["exitCode"]))
    }
}

/// Pod: Name, Ready, Status, Restarts, Age, IP, Node, Nominated Node, Readiness Gates.
pub(super) fn pod(pod: &Value, now: Nanos) -> Vec<Value> {
    let spec = get(pod, &["spec"]);
    let status = get(pod, &["status"]);
    let spec_arr = |key: &str| spec.map(|v| arr(v, &[key])).unwrap_or(&[]);
    let status_arr = |key: &str| status.map(|v| arr(v, &[key])).unwrap_or(&[]);
    let conditions = status_arr("conditions");
    let init_specs = spec_arr("initContainers");

    let mut restarts: i64 = 0;
    let mut restartable_init_restarts: i64 = 0;
    let mut total_containers = spec_arr("containers").len();
    let mut ready_containers = 0usize;
    let mut last_restart: Option<Nanos> = None;
    let mut last_restartable_init_restart: Option<Nanos> = None;

    // The API server sets the phase when a pod is created; a stored pod without one is Pending.
    let phase = match s(pod, &["status", "phase"]) {
        "" => "Pending",
        p => p,
    };
    let mut reason = phase.to_string();
    let status_reason = s(pod, &["status", "reason"]);
    if !status_reason.is_empty() {
        reason = status_reason.to_string();
    }
    for c in conditions {
        if s(c, &["type"]) == "PodScheduled" && s(c, &["reason"]) == "SchedulingGated" {
            reason = "SchedulingGated".to_string();
        }
    }

    let init_by_name = |n: &str| init_specs.iter().find(|c| s(c, &["name"]) == n);
    total_containers += init_specs
        .iter()
        .filter(|c| is_restartable_init_container(Some(c)))
        .count();

    let mut initializing = false;
    for (idx, cs) in status_arr("initContainerStatuses").iter().enumerate() {
        restarts += i(cs, &["restartCount"]);
        note_restart(&mut last_restart, cs);
        let restartable = is_restartable_init_container(init_by_name(s(cs, &["name"])));
        if restartable {
            restartable_init_restarts += i(cs, &["restartCount"]);
            note_restart(&mut last_restartable_init_restart, cs);
        }
        let terminated = get(cs, &["state", "terminated"]);
        let waiting = get(cs, &["state", "waiting"]);
        if terminated.is_some_and(|t| i(t, &["exitCode"]) == 0) {
            continue;
        }
        if restartable && opt_b(cs, &["started"]) == Some(true) {
            if opt_b(cs, &["ready"]) == Some(true) {
                ready_containers += 1;
            }
            continue;
        }
        if let Some(t) = terminated {
            reason = terminated_reason(t, "Init:");
        } else if let Some(w) = waiting.filter(|w| {
            let r = s(w, &["reason"]);
            !r.is_empty() && r != "PodInitializing"
        }) {
            reason = format!("Init:{}", s(w, &["reason"]));
        } else {
            reason = format!("Init:{}/{}", idx, init_specs.len());
        }
        initializing = true;
        break;
    }

    if !initializing || condition_true(conditions, "Initialized") {
        restarts = restartable_init_restarts;
        last_restart = last_restartable_init_restart;
        let mut has_running = false;
        let mut error_reason = String::new();
        for cs in status_arr("containerStatuses").iter().rev() {
            restarts += i(cs, &["restartCount"]);
            note_restart(&mut last_restart, cs);
            let waiting_reason = get(cs, &["state", "waiting"]).map(|w| s(w, &["reason"]));
            if let Some(r) = waiting_reason.filter(|r| !r.is_empty()) {
                reason = r.to_string();
            } else if let Some(t) = get(cs, &["state", "terminated"]) {
                reason = terminated_reason(t, "");
                if i(t, &["exitCode"]) != 0 {
                    error_reason = reason.clone();
                }
            } else if opt_b(cs, &["ready"]) == Some(true)
                && get(cs, &["state", "running"]).is_some()
            {
                has_running = true;
                ready_containers += 1;
            }
        }
        // A pod whose last container completed but that still runs others is Running (or
        // NotReady); one with a failed container shows that failure.
        if reason == "Completed" {
            if has_running && condition_true_any(conditions, "Ready") {
                reason = "Running".to_string();
            } else if !error_reason.is_empty() {
                reason = error_reason;
            } else if has_running {
                reason = "NotReady".to_string();
            }
        }
    }

    let raw_phase = s(pod, &["status", "phase"]);
    if deleting(pod) && status_reason == "NodeLost" {
        reason = "Unknown".to_string();
    } else if deleting(pod) && raw_phase != "Succeeded" && raw_phase != "Failed" {
        reason = "Terminating".to_string();
    }

    let restarts_text = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", since(Some(t), now)),
        _ => restarts.to_string(),
    };

    // status.podIP wins over status.podIPs, as in the v1 to internal conversion.
    let mut pod_ip = s(pod, &["status", "podIP"]);
    if pod_ip.is_empty() {
        pod_ip = status_arr("podIPs").first().map_or("", |p| s(p, &["ip"]));
    }
    let or_none = |v: &str| {
        if v.is_empty() {
            "<none>".to_string()
        } else {
            v.to_string()
        }
    };

    let gates = spec_arr("readinessGates");
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let true_count = gates
            .iter()
            .filter(|g| condition_true(conditions, s(g, &["conditionType"])))
            .count();
        format!("{true_count}/{}", gates.len())
    };

    vec![
        cell(name(pod)),
        cell(format!("{ready_containers}/{total_containers}")),
        cell(reason),
        cell(restarts_text),
        cell(age(pod, now)),
        cell(or_none(pod_ip)),
        cell(or_none(s(pod, &["spec", "nodeName"]))),
        cell(or_none(s(pod, &["status", "nominatedNodeName"]))),
        cell(readiness_gates),
    ]
}

/// `hasPodReadyCondition`: any Ready condition that is True.
fn condition_true_any(conditions: &[Value], type_: &str) -> bool {
    conditions
        .iter()
        .any(|c| s(c, &["type"]) == type_ && s(c, &["status"]) == "True")
}

/// PodTemplate: Name, Containers, Images, Pod Labels.
pub(super) fn pod_template(obj: &Value, _now: Nanos) -> Vec<Value> {
    let (names, images) = container_cells(get(obj, &["template", "spec"]));
    vec![
        cell(name(obj)),
        cell(names),
        cell(images),
        cell(format_labels(obj, &["template", "metadata", "labels"])),
    ]
}

/// ReplicationController: Name, Desired, Current, Ready, Age, Containers, Images, Selector.
pub(super) fn replication_controller(obj: &Value, now: Nanos) -> Vec<Value> {
    let (names, images) = container_cells(get(obj, &["spec", "template", "spec"]));
    vec![
        cell(name(obj)),
        // spec.replicas defaults to 1.
        int_cell(super::util::opt_i(obj, &["spec", "replicas"]).unwrap_or(1)),
        int_cell(i(obj, &["status", "replicas"])),
        int_cell(i(obj, &["status", "readyReplicas"])),
        cell(age(obj, now)),
        cell(names),
        cell(images),
        cell(format_labels(obj, &["spec", "selector"])),
    ]
}

fn load_balancer_ingress(obj: &Value, path: &[&str]) -> Vec<String> {
    let items = arr(obj, path).iter().filter_map(|ing| {
        let ip = s(ing, &["ip"]);
        let host = s(ing, &["hostname"]);
        if !ip.is_empty() {
            Some(ip)
        } else if !host.is_empty() {
            Some(host)
        } else {
            None
        }
    });
    sorted_set(items).into_iter().map(str::to_string).collect()
}

/// The load-balancer addresses of a service or ingress status, sorted and joined by ",".
/// (kube-apiserver always renders tables "wide", so the 16-character clipping never applies.)
pub(super) fn load_balancer_addresses(obj: &Value, path: &[&str]) -> String {
    load_balancer_ingress(obj, path).join(",")
}

fn service_external_ip(svc: &Value, svc_type: &str) -> String {
    let external_ips: Vec<&str> = arr(svc, &["spec", "externalIPs"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match svc_type {
        "ClusterIP" | "NodePort" => {
            if external_ips.is_empty() {
                "<none>".to_string()
            } else {
                external_ips.join(",")
            }
        }
        "LoadBalancer" => {
            let lb = load_balancer_ingress(svc, &["status", "loadBalancer", "ingress"]);
            if !external_ips.is_empty() {
                let mut all: Vec<String> = lb;
                all.extend(external_ips.iter().map(|s| s.to_string()));
                return all.join(",");
            }
            if lb.is_empty() {
                "<pending>".to_string()
            } else {
                lb.join(",")
            }
        }
        "ExternalName" => s(svc, &["spec", "externalName"]).to_string(),
        _ => "<unknown>".to_string(),
    }
}

/// The PORT(S) cell of a service: "80/TCP", "80:30080/TCP", joined by ",".
pub(super) fn service_ports(svc: &Value) -> String {
    arr(svc, &["spec", "ports"])
        .iter()
        .map(|p| {
            let protocol = match s(p, &["protocol"]) {
                "" => "TCP",
                proto => proto,
            };
            let port = i(p, &["port"]);
            let node_port = i(p, &["nodePort"]);
            if node_port > 0 {
                format!("{port}:{node_port}/{protocol}")
            } else {
                format!("{port}/{protocol}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Service: Name, Type, Cluster-IP, External-IP, Port(s), Age, Selector.
pub(super) fn service(svc: &Value, now: Nanos) -> Vec<Value> {
    let svc_type = match s(svc, &["spec", "type"]) {
        "" => "ClusterIP",
        t => t,
    };
    // spec.clusterIP wins over spec.clusterIPs, as in the v1 to internal conversion.
    let mut cluster_ip = s(svc, &["spec", "clusterIP"]);
    if cluster_ip.is_empty() {
        cluster_ip = arr(svc, &["spec", "clusterIPs"])
            .first()
            .and_then(Value::as_str)
            .unwrap_or("");
    }
    let cluster_ip = if cluster_ip.is_empty() {
        "<none>"
    } else {
        cluster_ip
    };
    let mut ports = service_ports(svc);
    if ports.is_empty() {
        ports = "<none>".to_string();
    }
    vec![
        cell(name(svc)),
        cell(svc_type),
        cell(cluster_ip),
        cell(service_external_ip(svc, svc_type)),
        cell(ports),
        cell(age(svc, now)),
        cell(format_labels(svc, &["spec", "selector"])),
    ]
}

/// The ENDPOINTS cell of an Endpoints object (`formatEndpoints` with all ports).
pub(super) fn format_endpoints(obj: &Value) -> String {
    let subsets = arr(obj, &["subsets"]);
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    const MAX: usize = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0usize;
    for ss in subsets {
        let addresses = arr(ss, &["addresses"]);
        let ports = arr(ss, &["ports"]);
        if ports.is_empty() {
            count += addresses.len();
            for a in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(s(a, &["ip"]).to_string());
            }
            continue;
        }
        for p in ports {
            count += addresses.len();
            for a in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(join_host_port(s(a, &["ip"]), i(p, &["port"])));
            }
        }
    }
    let ret = list.join(",");
    if more {
        return format!("{ret} + {} more...", count.saturating_sub(MAX));
    }
    ret
}

/// Endpoints: Name, Endpoints, Age.
pub(super) fn endpoints(obj: &Value, now: Nanos) -> Vec<Value> {
    vec![
        cell(name(obj)),
        cell(format_endpoints(obj)),
        cell(age(obj, now)),
    ]
}

fn node_address(node: &Value, type_: &str) -> String {
    arr(node, &["status", "addresses"])
        .iter()
        .find(|a| s(a, &["type"]) == type_)
        .map_or_else(|| "<none>".to_string(), |a| s(a, &["address"]).to_string())
}

/// Node: Name, Status, Roles, Age, Version, Internal-IP, External-IP, OS-Image, Kernel-Version,
/// Container-Runtime.
pub(super) fn node(node: &Value, now: Nanos) -> Vec<Value> {
    // The last Ready condition wins, as with Go's map of conditions.
    let ready = arr(node, &["status", "conditions"])
        .iter()
        .rfind(|c| s(c, &["type"]) == "Ready");
    let mut status = vec![match ready {
        Some(c) if s(c, &["status"]) == "True" => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }];
    if opt_b(node, &["spec", "unschedulable"]) == Some(true) {
        status.push("SchedulingDisabled");
    }
    let labels = super::util::string_map(node, &["metadata", "labels"]);
    let roles = sorted_set(labels.iter().filter_map(|(k, v)| {
        if let Some(role) = k.strip_prefix(NODE_ROLE_PREFIX) {
            (!role.is_empty()).then_some(role)
        } else if *k == NODE_ROLE_LABEL && !v.is_empty() {
            Some(*v)
        } else {
            None
        }
    }))
    .join(",");
    let info = |key: &str| match s(node, &["status", "nodeInfo", key]) {
        "" => "<unknown>".to_string(),
        v => v.to_string(),
    };
    vec![
        cell(name(node)),
        cell(status.join(",")),
        cell(if roles.is_empty() {
            "<none>".to_string()
        } else {
            roles
        }),
        cell(age(node, now)),
        cell(s(node, &["status", "nodeInfo", "kubeletVersion"])),
        cell(node_address(node, "InternalIP")),
        cell(node_address(node, "ExternalIP")),
        cell(info("osImage")),
        cell(info("kernelVersion")),
        cell(info("containerRuntimeVersion")),
    ]
}

/// The fields of an event that the printer uses, read from either a core/v1 Event or an
/// events.k8s.io Event (kube-apiserver prints both through the same internal type).
struct EventFields<'a> {
    first_timestamp: Option<Nanos>,
    last_timestamp: Option<Nanos>,
    event_time: Option<Nanos>,
    series: Option<(i64, Option<Nanos>)>,
    count: i64,
    kind: &'a str,
    object_name: &'a str,
    field_path: &'a str,
    source_component: &'a str,
    source_host: &'a str,
    reporting_controller: &'a str,
    reporting_instance: &'a str,
    message: &'a str,
}

fn event_fields(ev: &Value, events_group: bool) -> EventFields<'_> {
    let series =
        get(ev, &["series"]).map(|se| (i(se, &["count"]), time_at(se, &["lastObservedTime"])));
    if events_group {
        EventFields {
            first_timestamp: time_at(ev, &["deprecatedFirstTimestamp"]),
            last_timestamp: time_at(ev, &["deprecatedLastTimestamp"]),
            event_time: time_at(ev, &["eventTime"]),
            series,
            count: i(ev, &["deprecatedCount"]),
            kind: s(ev, &["regarding", "kind"]),
            object_name: s(ev, &["regarding", "name"]),
            field_path: s(ev, &["regarding", "fieldPath"]),
            source_component: s(ev, &["deprecatedSource", "component"]),
            source_host: s(ev, &["deprecatedSource", "host"]),
            reporting_controller: s(ev, &["reportingController"]),
            reporting_instance: s(ev, &["reportingInstance"]),
            message: s(ev, &["note"]),
        }
    } else {
        EventFields {
            first_timestamp: time_at(ev, &["firstTimestamp"]),
            last_timestamp: time_at(ev, &["lastTimestamp"]),
            event_time: time_at(ev, &["eventTime"]),
            series,
            count: i(ev, &["count"]),
            kind: s(ev, &["involvedObject", "kind"]),
            object_name: s(ev, &["involvedObject", "name"]),
            field_path: s(ev, &["involvedObject", "fieldPath"]),
            source_component: s(ev, &["source", "component"]),
            source_host: s(ev, &["source", "host"]),
            // core/v1 names ReportingController "reportingComponent" on the wire.
            reporting_controller: s(ev, &["reportingComponent"]),
            reporting_instance: s(ev, &["reportingInstance"]),
            message: s(ev, &["message"]),
        }
    }
}

fn event_cells(ev: &Value, now: Nanos, events_group: bool) -> Vec<Value> {
    let f = event_fields(ev, events_group);
    let first_seen = match f.first_timestamp {
        Some(t) => since(Some(t), now),
        None => since(f.event_time, now),
    };
    let mut last_seen = match f.last_timestamp {
        Some(t) => since(Some(t), now),
        None => first_seen.clone(),
    };
    let mut count = f.count;
    if let Some((series_count, last_observed)) = f.series {
        last_seen = since(last_observed, now);
        count = series_count;
    } else if count == 0 {
        // Singleton events of the new API have no count.
        count = 1;
    }
    let target = if f.object_name.is_empty() {
        f.kind.to_lowercase()
    } else {
        format!("{}/{}", f.kind.to_lowercase(), f.object_name)
    };
    let component = if f.source_component.is_empty() {
        f.reporting_controller
    } else {
        f.source_component
    };
    let instance = if f.source_host.is_empty() {
        f.reporting_instance
    } else {
        f.source_host
    };
    let source = if instance.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {instance}")
    };
    vec![
        cell(last_seen),
        cell(s(ev, &["type"])),
        cell(s(ev, &["reason"])),
        cell(target),
        cell(f.field_path),
        cell(source),
        cell(f.message.trim()),
        cell(first_seen),
        int_cell(count),
        cell(name(ev)),
    ]
}

/// core/v1 Event: Last Seen, Type, Reason, Object, Subobject, Source, Message, First Seen,
/// Count, Name.
pub(super) fn event(ev: &Value, now: Nanos) -> Vec<Value> {
    event_cells(ev, now, false)
}

/// events.k8s.io Event, printed with the same columns as core/v1 Event.
pub(super) fn events_event(ev: &Value, now: Nanos) -> Vec<Value> {
    event_cells(ev, now, true)
}

/// Namespace: Name, Status, Age.
pub(super) fn namespace(obj: &Value, now: Nanos) -> Vec<Value> {
    let phase = match s(obj, &["status", "phase"]) {
        "" => "Active",
        p => p,
    };
    vec![cell(name(obj)), cell(phase), cell(age(obj, now))]
}

/// Secret: Name, Type, Data, Age.
pub(super) fn secret(obj: &Value, now: Nanos) -> Vec<Value> {
    let type_ = match s(obj, &["type"]) {
        "" => "Opaque",
        t => t,
    };
    vec![
        cell(name(obj)),
        cell(type_),
        int_cell(len_at(obj, &["data"]) as i64),
        cell(age(obj, now)),
    ]
}

/// ConfigMap: Name, Data (data plus binaryData entries), Age.
pub(super) fn config_map(obj: &Value, now: Nanos) -> Vec<Value> {
    let n = len_at(obj, &["data"]) + len_at(obj, &["binaryData"]);
    vec![cell(name(obj)), int_cell(n as i64), cell(age(obj, now))]
}

/// Name and Age only (ServiceAccount and a few others).
pub(super) fn name_age(obj: &Value, now: Nanos) -> Vec<Value> {
    vec![cell(name(obj)), cell(age(obj, now))]
}

/// `GetAccessModesAsString`: RWO, ROX, RWX, RWOP in that order.
fn access_modes(obj: &Value, path: &[&str]) -> String {
    let modes: Vec<&str> = arr(obj, path).iter().filter_map(Value::as_str).collect();
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(mode, _)| modes.contains(mode))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

fn unset_or(v: Option<&str>) -> String {
    v.map_or_else(|| "<unset>".to_string(), str::to_string)
}

/// PersistentVolume: Name, Capacity, Access Modes, Reclaim Policy, Status, Claim, StorageClass,
/// VolumeAttributesClass, Reason, Age, VolumeMode.
pub(super) fn persistent_volume(pv: &Value, now: Nanos) -> Vec<Value> {
    let claim = match get(pv, &["spec", "claimRef"]) {
        Some(c) => format!("{}/{}", s(c, &["namespace"]), s(c, &["name"])),
        None => String::new(),
    };
    let phase = if deleting(pv) {
        "Terminating"
    } else {
        match s(pv, &["status", "phase"]) {
            "" => "Pending",
            p => p,
        }
    };
    let reclaim = match s(pv, &["spec", "persistentVolumeReclaimPolicy"]) {
        "" => "Retain",
        r => r,
    };
    let class = opt_s(
        pv,
        &["metadata", "annotations", BETA_STORAGE_CLASS_ANNOTATION],
    )
    .unwrap_or_else(|| s(pv, &["spec", "storageClassName"]));
    vec![
        cell(name(pv)),
        cell(quantity_at(pv, &["spec", "capacity", "storage"])),
        cell(access_modes(pv, &["spec", "accessModes"])),
        cell(reclaim),
        cell(phase),
        cell(claim),
        cell(class),
        cell(unset_or(opt_s(pv, &["spec", "volumeAttributesClassName"]))),
        cell(s(pv, &["status", "reason"])),
        cell(age(pv, now)),
        cell(opt_s(pv, &["spec", "volumeMode"]).unwrap_or("Filesystem")),
    ]
}

/// PersistentVolumeClaim: Name, Status, Volume, Capacity, Access Modes, StorageClass,
/// VolumeAttributesClass, Age, VolumeMode.
pub(super) fn persistent_volume_claim(pvc: &Value, now: Nanos) -> Vec<Value> {
    let phase = if deleting(pvc) {
        "Terminating"
    } else {
        match s(pvc, &["status", "phase"]) {
            "" => "Pending",
            p => p,
        }
    };
    let volume = s(pvc, &["spec", "volumeName"]);
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            quantity_at(pvc, &["status", "capacity", "storage"]),
            access_modes(pvc, &["status", "accessModes"]),
        )
    };
    let class = opt_s(
        pvc,
        &["metadata", "annotations", BETA_STORAGE_CLASS_ANNOTATION],
    )
    .or_else(|| opt_s(pvc, &["spec", "storageClassName"]))
    .unwrap_or("");
    vec![
        cell(name(pvc)),
        cell(phase),
        cell(volume),
        cell(capacity),
        cell(modes),
        cell(class),
        cell(unset_or(opt_s(pvc, &["spec", "volumeAttributesClassName"]))),
        cell(age(pvc, now)),
        cell(opt_s(pvc, &["spec", "volumeMode"]).unwrap_or("Filesystem")),
    ]
}

/// ComponentStatus: Name, Status, Message, Error.
pub(super) fn component_status(obj: &Value, _now: Nanos) -> Vec<Value> {
    let healthy = arr(obj, &["conditions"])
        .iter()
        .find(|c| s(c, &["type"]) == "Healthy");
    let (status, message, error) = match healthy {
        Some(c) => (
            if s(c, &["status"]) == "True" {
                "Healthy"
            } else {
                "Unhealthy"
            },
            s(c, &["message"]),
            s(c, &["error"]),
        ),
        None => ("Unknown", "", ""),
    };
    vec![cell(name(obj)), cell(status), cell(message), cell(error)]
}

/// ResourceQuota: Name, Request, Limit, Age.
pub(super) fn resource_quota(obj: &Value, now: Nanos) -> Vec<Value> {
    let mut resources: Vec<&str> = match get(obj, &["status", "hard"]) {
        Some(Value::Object(m)) => m.keys().map(String::as_str).collect(),
        _ => Vec::new(),
    };
    resources.sort_unstable();
    let mut requests: Vec<String> = Vec::new();
    let mut limits: Vec<String> = Vec::new();
    for r in resources {
        let used = quantity_at(obj, &["status", "used", r]);
        let hard = quantity_at(obj, &["status", "hard", r]);
        let text = format!("{r}: {used}/{hard}");
        let pieces: Vec<&str> = r.split('.').collect();
        if pieces.len() > 1 && pieces[0] == "limits" {
            limits.push(text);
        } else {
            requests.push(text);
        }
    }
    vec![
        cell(name(obj)),
        cell(requests.join(", ")),
        cell(limits.join(", ")),
        cell(age(obj, now)),
    ]
}

/// PodDisruptionBudget: Name, Min Available, Max Unavailable, Allowed Disruptions, Age.
pub(super) fn pod_disruption_budget(obj: &Value, now: Nanos) -> Vec<Value> {
    let iors =
        |key: &str| get(obj, &["spec", key]).map_or_else(|| "N/A".to_string(), int_or_string);
    vec![
        cell(name(obj)),
        cell(iors("minAvailable")),
        cell(iors("maxUnavailable")),
        int_cell(i(obj, &["status", "disruptionsAllowed"])),
        cell(age(obj, now)),
    ]
}

/// CronJob's Suspend cell and others use Go's bool-pointer rendering.
pub(super) fn suspend_text(obj: &Value) -> String {
    // batch/v1 defaults spec.suspend to false.
    bool_ptr(Some(opt_b(obj, &["spec", "suspend"]).unwrap_or(false)))
}

/// The age of an optional timestamp field, or `default` when unset.
pub(super) fn age_or(obj: &Value, path: &[&str], now: Nanos, default: &str) -> String {
    if time_at(obj, path).is_some() {
        age_at(obj, path, now)
    } else {
        default.to_string()
    }
}
