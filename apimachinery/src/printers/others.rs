//! Row cells of the networking, rbac, storage, admission, flow-control, certificates,
//! coordination, scheduling, resource and aggregator kinds.

use super::core::load_balancer_addresses;
use super::util::{
    age, arr, bool_cell, cell, deleting, format_label_selector, get, human_duration_nanos, i,
    int_cell, label_selector_go_string, len_at, list_with_more, name, opt_b, opt_i, opt_s,
    quantity_at, s, since, time_at, Nanos,
};
use serde_json::Value;

/// Ingress: Name, Class, Hosts, Address, Ports, Age.
pub(super) fn ingress(obj: &Value, now: Nanos) -> Vec<Value> {
    const MAX: usize = 3;
    let class = opt_s(obj, &["spec", "ingressClassName"]).unwrap_or("<none>");
    let rules = arr(obj, &["spec", "rules"]);
    let mut hosts: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        if hosts.len() == MAX {
            more = true;
        }
        let host = s(rule, &["host"]);
        if !more && !host.is_empty() {
            hosts.push(host);
        }
    }
    let hosts = if hosts.is_empty() {
        "*".to_string()
    } else if more {
        format!("{} + {} more...", hosts.join(","), rules.len() - MAX)
    } else {
        hosts.join(",")
    };
    let ports = if arr(obj, &["spec", "tls"]).is_empty() {
        "80"
    } else {
        "80, 443"
    };
    vec![
        cell(name(obj)),
        cell(class),
        cell(hosts),
        cell(load_balancer_addresses(
            obj,
            &["status", "loadBalancer", "ingress"],
        )),
        cell(ports),
        cell(age(obj, now)),
    ]
}

/// IngressClass: Name, Controller, Parameters ("Kind[.group]/name"), Age.
pub(super) fn ingress_class(obj: &Value, now: Nanos) -> Vec<Value> {
    let parameters = match get(obj, &["spec", "parameters"]) {
        None => "<none>".to_string(),
        Some(p) => {
            let mut text = s(p, &["kind"]).to_string();
            if let Some(group) = opt_s(p, &["apiGroup"]) {
                text.push('.');
                text.push_str(group);
            }
            format!("{text}/{}", s(p, &["name"]))
        }
    };
    vec![
        cell(name(obj)),
        cell(s(obj, &["spec", "controller"])),
        cell(parameters),
        cell(age(obj, now)),
    ]
}

/// NetworkPolicy: Name, Pod-Selector, Age.
pub(super) fn network_policy(obj: &Value, now: Nanos) -> Vec<Value> {
    // spec.podSelector is a struct, never nil: a missing one is the empty selector.
    let empty = Value::Object(serde_json::Map::new());
    let selector = get(obj, &["spec", "podSelector"]).unwrap_or(&empty);
    vec![
        cell(name(obj)),
        cell(format_label_selector(Some(selector))),
        cell(age(obj, now)),
    ]
}

/// RoleBinding and ClusterRoleBinding: Name, Role, Age, Users, Groups, ServiceAccounts.
pub(super) fn role_binding(obj: &Value, now: Nanos) -> Vec<Value> {
    let role = format!(
        "{}/{}",
        s(obj, &["roleRef", "kind"]),
        s(obj, &["roleRef", "name"])
    );
    let mut users = Vec::new();
    let mut groups = Vec::new();
    let mut service_accounts = Vec::new();
    for subject in arr(obj, &["subjects"]) {
        match s(subject, &["kind"]) {
            "ServiceAccount" => service_accounts.push(format!(
                "{}/{}",
                s(subject, &["namespace"]),
                s(subject, &["name"])
            )),
            "User" => users.push(s(subject, &["name"]).to_string()),
            "Group" => groups.push(s(subject, &["name"]).to_string()),
            _ => {}
        }
    }
    vec![
        cell(name(obj)),
        cell(role),
        cell(age(obj, now)),
        cell(users.join(", ")),
        cell(groups.join(", ")),
        cell(service_accounts.join(", ")),
    ]
}

/// CertificateSigningRequest: Name, Age, SignerName, Requestor, RequestedDuration, Condition.
pub(super) fn certificate_signing_request(obj: &Value, now: Nanos) -> Vec<Value> {
    let (mut approved, mut denied, mut failed) = (false, false, false);
    for c in arr(obj, &["status", "conditions"]) {
        match s(c, &["type"]) {
            "Approved" => approved = true,
            "Denied" => denied = true,
            "Failed" => failed = true,
            _ => {}
        }
    }
    let mut condition = if denied {
        "Denied"
    } else if approved {
        "Approved"
    } else {
        "Pending"
    }
    .to_string();
    if failed {
        condition.push_str(",Failed");
    }
    if !s(obj, &["status", "certificate"]).is_empty() {
        condition.push_str(",Issued");
    }
    let signer = match s(obj, &["spec", "signerName"]) {
        "" => "<none>",
        n => n,
    };
    let duration = opt_i(obj, &["spec", "expirationSeconds"]).map_or_else(
        || "<none>".to_string(),
        |secs| human_duration_nanos(i128::from(secs) * 1_000_000_000),
    );
    vec![
        cell(name(obj)),
        cell(age(obj, now)),
        cell(signer),
        cell(s(obj, &["spec", "username"])),
        cell(duration),
        cell(condition),
    ]
}

/// ClusterTrustBundle: Name, SignerName.
pub(super) fn cluster_trust_bundle(obj: &Value, _now: Nanos) -> Vec<Value> {
    let signer = match s(obj, &["spec", "signerName"]) {
        "" => "<none>",
        n => n,
    };
    vec![cell(name(obj)), cell(signer)]
}

/// PodCertificateRequest: Name, PodName, ServiceAccountName, NodeName, SignerName, State.
pub(super) fn pod_certificate_request(obj: &Value, _now: Nanos) -> Vec<Value> {
    let mut state = "Pending";
    for c in arr(obj, &["status", "conditions"]) {
        match s(c, &["type"]) {
            "Issued" => state = "Issued",
            "Denied" => state = "Denied",
            "Failed" => state = "Failed",
            _ => {}
        }
    }
    vec![
        cell(name(obj)),
        cell(s(obj, &["spec", "podName"])),
        cell(s(obj, &["spec", "serviceAccountName"])),
        cell(s(obj, &["spec", "nodeName"])),
        cell(s(obj, &["spec", "signerName"])),
        cell(state),
    ]
}

/// Lease: Name, Holder, Age.
pub(super) fn lease(obj: &Value, now: Nanos) -> Vec<Value> {
    vec![
        cell(name(obj)),
        cell(s(obj, &["spec", "holderIdentity"])),
        cell(age(obj, now)),
    ]
}

/// LeaseCandidate: Name, LeaseName, BinaryVersion, EmulationVersion, Age.
pub(super) fn lease_candidate(obj: &Value, now: Nanos) -> Vec<Value> {
    vec![
        cell(name(obj)),
        cell(s(obj, &["spec", "leaseName"])),
        cell(s(obj, &["spec", "binaryVersion"])),
        cell(s(obj, &["spec", "emulationVersion"])),
        cell(age(obj, now)),
    ]
}

/// StorageClass: Name (with " (default)"), Provisioner, ReclaimPolicy, VolumeBindingMode,
/// AllowVolumeExpansion, Age.
pub(super) fn storage_class(obj: &Value, now: Nanos) -> Vec<Value> {
    let annotation = |key: &str| s(obj, &["metadata", "annotations", key]) == "true";
    let mut display = name(obj).to_string();
    if annotation("storageclass.kubernetes.io/is-default-class")
        || annotation("storageclass.beta.kubernetes.io/is-default-class")
    {
        display.push_str(" (default)");
    }
    vec![
        cell(display),
        cell(s(obj, &["provisioner"])),
        cell(opt_s(obj, &["reclaimPolicy"]).unwrap_or("Delete")),
        cell(opt_s(obj, &["volumeBindingMode"]).unwrap_or("Immediate")),
        bool_cell(opt_b(obj, &["allowVolumeExpansion"]).unwrap_or(false)),
        cell(age(obj, now)),
    ]
}

/// VolumeAttributesClass: Name, DriverName, Age.
pub(super) fn volume_attributes_class(obj: &Value, now: Nanos) -> Vec<Value> {
    vec![
        cell(name(obj)),
        cell(s(obj, &["driverName"])),
        cell(age(obj, now)),
    ]
}

/// PriorityClass: Name, Value, Global-Default, Age, PreemptionPolicy.
pub(super) fn priority_class(obj: &Value, now: Nanos) -> Vec<Value> {
    vec![
        cell(name(obj)),
        int_cell(i(obj, &["value"])),
        bool_cell(opt_b(obj, &["globalDefault"]).unwrap_or(false)),
        cell(age(obj, now)),
        // scheduling/v1 defaults preemptionPolicy.
        cell(opt_s(obj, &["preemptionPolicy"]).unwrap_or("PreemptLowerPriority")),
    ]
}

/// RuntimeClass: Name, Handler, Age.
pub(super) fn runtime_class(obj: &Value, now: Nanos) -> Vec<Value> {
    vec![
        cell(name(obj)),
        cell(s(obj, &["handler"])),
        cell(age(obj, now)),
    ]
}

/// VolumeAttachment: Name, Attacher, PV, Node, Attached, Age.
pub(super) fn volume_attachment(obj: &Value, now: Nanos) -> Vec<Value> {
    vec![
        cell(name(obj)),
        cell(s(obj, &["spec", "attacher"])),
        cell(s(obj, &["spec", "source", "persistentVolumeName"])),
        cell(s(obj, &["spec", "nodeName"])),
        bool_cell(opt_b(obj, &["status", "attached"]).unwrap_or(false)),
        cell(age(obj, now)),
    ]
}

/// EndpointSlice: Name, AddressType, Ports, Endpoints, Age.
pub(super) fn endpoint_slice(obj: &Value, now: Nanos) -> Vec<Value> {
    let ports: Vec<String> = arr(obj, &["ports"])
        .iter()
        .map(|p| match (opt_i(p, &["port"]), opt_s(p, &["name"])) {
            (Some(port), _) => port.to_string(),
            (None, Some(n)) => n.to_string(),
            (None, None) => "*".to_string(),
        })
        .collect();
    let addresses: Vec<String> = arr(obj, &["endpoints"])
        .iter()
        .flat_map(|e| arr(e, &["addresses"]).iter())
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    vec![
        cell(name(obj)),
        cell(s(obj, &["addressType"])),
        cell(list_with_more(&ports, 3)),
        cell(list_with_more(&addresses, 3)),
        cell(age(obj, now)),
    ]
}

/// CSINode: Name, Drivers, Age.
pub(super) fn csi_node(obj: &Value, now: Nanos) -> Vec<Value> {
    vec![
        cell(name(obj)),
        int_cell(len_at(obj, &["spec", "drivers"]) as i64),
        cell(age(obj, now)),
    ]
}

/// CSIDriver: Name, AttachRequired, PodInfoOnMount, StorageCapacity, TokenRequests,
/// RequiresRepublish, Modes, Age.
pub(super) fn csi_driver(obj: &Value, now: Nanos) -> Vec<Value> {
    let flag = |key: &str, default: bool| opt_b(obj, &["spec", key]).unwrap_or(default);
    let token_requests = match get(obj, &["spec", "tokenRequests"]) {
        None => "<unset>".to_string(),
        Some(_) => arr(obj, &["spec", "tokenRequests"])
            .iter()
            .map(|t| s(t, &["audience"]))
            .collect::<Vec<_>>()
            .join(","),
    };
    // storage/v1 defaults volumeLifecycleModes to [Persistent].
    let modes: Vec<&str> = arr(obj, &["spec", "volumeLifecycleModes"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let modes = if modes.is_empty() {
        "Persistent".to_string()
    } else {
        modes.join(",")
    };
    vec![
        cell(name(obj)),
        bool_cell(flag("attachRequired", true)),
        bool_cell(flag("podInfoOnMount", false)),
        bool_cell(flag("storageCapacity", false)),
        cell(token_requests),
        bool_cell(flag("requiresRepublish", false)),
        cell(modes),
        cell(age(obj, now)),
    ]
}

/// CSIStorageCapacity: Name, StorageClassName, Capacity.
pub(super) fn csi_storage_capacity(obj: &Value, _now: Nanos) -> Vec<Value> {
    let capacity = if get(obj, &["capacity"]).is_some() {
        quantity_at(obj, &["capacity"])
    } else {
        "<unset>".to_string()
    };
    vec![
        cell(name(obj)),
        cell(s(obj, &["storageClassName"])),
        cell(capacity),
    ]
}

/// Mutating/ValidatingWebhookConfiguration: Name, Webhooks, Age.
pub(super) fn webhook_configuration(obj: &Value, now: Nanos) -> Vec<Value> {
    vec![
        cell(name(obj)),
        int_cell(len_at(obj, &["webhooks"]) as i64),
        cell(age(obj, now)),
    ]
}

fn param_kind(obj: &Value) -> String {
    match get(obj, &["spec", "paramKind"]) {
        None => "<unset>".to_string(),
        Some(p) => format!("{}/{}", s(p, &["apiVersion"]), s(p, &["kind"])),
    }
}

/// ValidatingAdmissionPolicy: Name, Validations, ParamKind, Age.
pub(super) fn validating_admission_policy(obj: &Value, now: Nanos) -> Vec<Value> {
    vec![
        cell(name(obj)),
        int_cell(len_at(obj, &["spec", "validations"]) as i64),
        cell(param_kind(obj)),
        cell(age(obj, now)),
    ]
}

/// MutatingAdmissionPolicy: Name, Mutations, ParamKind, Age.
pub(super) fn mutating_admission_policy(obj: &Value, now: Nanos) -> Vec<Value> {
    vec![
        cell(name(obj)),
        int_cell(len_at(obj, &["spec", "mutations"]) as i64),
        cell(param_kind(obj)),
        cell(age(obj, now)),
    ]
}

/// Validating/MutatingAdmissionPolicyBinding: Name, PolicyName, ParamRef, Age.
pub(super) fn admission_policy_binding(obj: &Value, now: Nanos) -> Vec<Value> {
    let param = match get(obj, &["spec", "paramRef"]) {
        None => "<unset>".to_string(),
        Some(pr) => {
            let pr_name = s(pr, &["name"]);
            if !pr_name.is_empty() {
                match s(pr, &["namespace"]) {
                    "" => format!("*/{pr_name}"),
                    ns => format!("{ns}/{pr_name}"),
                }
            } else if let Some(sel) = get(pr, &["selector"]) {
                label_selector_go_string(sel)
            } else {
                "<unset>".to_string()
            }
        }
    };
    vec![
        cell(name(obj)),
        cell(s(obj, &["spec", "policyName"])),
        cell(param),
        cell(age(obj, now)),
    ]
}

/// FlowSchema: Name, PriorityLevel, MatchingPrecedence, DistinguisherMethod, Age, MissingPL.
pub(super) fn flow_schema(obj: &Value, now: Nanos) -> Vec<Value> {
    let distinguisher = opt_s(obj, &["spec", "distinguisherMethod", "type"]).unwrap_or("<none>");
    let missing = arr(obj, &["status", "conditions"])
        .iter()
        .find(|c| s(c, &["type"]) == "Dangling")
        .map_or("?", |c| s(c, &["status"]));
    // flowcontrol/v1 defaults a zero matchingPrecedence to 1000.
    let precedence = match i(obj, &["spec", "matchingPrecedence"]) {
        0 => 1000,
        p => p,
    };
    vec![
        cell(name(obj)),
        cell(s(obj, &["spec", "priorityLevelConfiguration", "name"])),
        int_cell(precedence),
        cell(distinguisher),
        cell(age(obj, now)),
        cell(missing),
    ]
}

/// PriorityLevelConfiguration: Name, Type, NominalConcurrencyShares, Queues, HandSize,
/// QueueLengthLimit, Age.
pub(super) fn priority_level_configuration(obj: &Value, now: Nanos) -> Vec<Value> {
    let none = || cell("<none>");
    let (mut ncs, mut queues, mut hand_size, mut queue_length) = (none(), none(), none(), none());
    if let Some(limited) = get(obj, &["spec", "limited"]) {
        // flowcontrol/v1 defaults nominalConcurrencyShares to 30.
        ncs = int_cell(opt_i(limited, &["nominalConcurrencyShares"]).unwrap_or(30));
        if let Some(q) = get(limited, &["limitResponse", "queuing"]) {
            let field = |key: &str, default: i64| match i(q, &[key]) {
                0 => default,
                v => v,
            };
            queues = int_cell(field("queues", 64));
            hand_size = int_cell(field("handSize", 8));
            queue_length = int_cell(field("queueLengthLimit", 50));
        }
    }
    vec![
        cell(name(obj)),
        cell(s(obj, &["spec", "type"])),
        ncs,
        queues,
        hand_size,
        queue_length,
        cell(age(obj, now)),
    ]
}

/// StorageVersion: Name, CommonEncodingVersion, StorageVersions, Age.
pub(super) fn storage_version(obj: &Value, now: Nanos) -> Vec<Value> {
    let common = opt_s(obj, &["status", "commonEncodingVersion"]).unwrap_or("<unset>");
    let versions: Vec<String> = arr(obj, &["status", "storageVersions"])
        .iter()
        .map(|sv| {
            format!(
                "{}={}",
                s(sv, &["apiServerID"]),
                s(sv, &["encodingVersion"])
            )
        })
        .collect();
    vec![
        cell(name(obj)),
        cell(common),
        cell(list_with_more(&versions, 3)),
        cell(age(obj, now)),
    ]
}

/// ResourceClaim: Name, State, Age.
pub(super) fn resource_claim(obj: &Value, now: Nanos) -> Vec<Value> {
    let mut states = Vec::new();
    if deleting(obj) {
        states.push("deleted");
    }
    if get(obj, &["status", "allocation"]).is_none() {
        if !deleting(obj) {
            states.push("pending");
        }
    } else {
        states.push("allocated");
        if !arr(obj, &["status", "reservedFor"]).is_empty() {
            states.push("reserved");
        }
    }
    vec![cell(name(obj)), cell(states.join(",")), cell(age(obj, now))]
}

/// ResourceSlice: Name, Node, Driver, Pool, Age.
pub(super) fn resource_slice(obj: &Value, now: Nanos) -> Vec<Value> {
    vec![
        cell(name(obj)),
        cell(s(obj, &["spec", "nodeName"])),
        cell(s(obj, &["spec", "driver"])),
        cell(s(obj, &["spec", "pool", "name"])),
        cell(age(obj, now)),
    ]
}

/// DeviceTaintRule: Name, Key, Value, Effect, TimeAdded, Age.
pub(super) fn device_taint_rule(obj: &Value, now: Nanos) -> Vec<Value> {
    let added = time_at(obj, &["spec", "taint", "timeAdded"])
        .map_or_else(String::new, |t| since(Some(t), now));
    vec![
        cell(name(obj)),
        cell(s(obj, &["spec", "taint", "key"])),
        cell(s(obj, &["spec", "taint", "value"])),
        cell(s(obj, &["spec", "taint", "effect"])),
        cell(added),
        cell(age(obj, now)),
    ]
}

/// ServiceCIDR: Name, CIDRs, Age.
pub(super) fn service_cidr(obj: &Value, now: Nanos) -> Vec<Value> {
    let cidrs: Vec<&str> = arr(obj, &["spec", "cidrs"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    vec![cell(name(obj)), cell(cidrs.join(",")), cell(age(obj, now))]
}

/// IPAddress: Name, ParentRef ("resource.group[/namespace]/name").
///
/// kube-apiserver also appends an age cell that has no column; it is left out here so a row
/// always matches its columns.
pub(super) fn ip_address(obj: &Value, _now: Nanos) -> Vec<Value> {
    let parent = match get(obj, &["spec", "parentRef"]) {
        None => "<none>".to_string(),
        Some(p) => {
            let resource = s(p, &["resource"]);
            let mut text = match s(p, &["group"]) {
                "" => resource.to_lowercase(),
                g => format!("{resource}.{g}").to_lowercase(),
            };
            let ns = s(p, &["namespace"]);
            if !ns.is_empty() {
                text.push('/');
                text.push_str(ns);
            }
            text.push('/');
            text.push_str(s(p, &["name"]));
            text
        }
    };
    vec![cell(name(obj)), cell(parent)]
}

/// StorageVersionMigration: Name, Resource ("resource.group"), Status.
pub(super) fn storage_version_migration(obj: &Value, _now: Nanos) -> Vec<Value> {
    let resource = s(obj, &["spec", "resource", "resource"]);
    let group = s(obj, &["spec", "resource", "group"]);
    let gr = if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    };
    let mut status = "Unknown";
    for c in arr(obj, &["status", "conditions"]) {
        if s(c, &["status"]) != "True" {
            continue;
        }
        let t = s(c, &["type"]);
        if matches!(t, "Running" | "Failed" | "Succeeded") {
            status = t;
        }
    }
    vec![cell(name(obj)), cell(gr), cell(status)]
}

/// APIService (kube-aggregator): Name, Service ("namespace/name" or "Local"), Available, Age.
pub(super) fn api_service(obj: &Value, now: Nanos) -> Vec<Value> {
    let service = match get(obj, &["spec", "service"]) {
        None => "Local".to_string(),
        Some(svc) => format!("{}/{}", s(svc, &["namespace"]), s(svc, &["name"])),
    };
    let available = arr(obj, &["status", "conditions"])
        .iter()
        .find(|c| s(c, &["type"]) == "Available");
    let status = match available {
        None => "Unknown".to_string(),
        Some(c) => {
            let st = s(c, &["status"]);
            let reason = s(c, &["reason"]);
            if st == "True" || reason.is_empty() {
                st.to_string()
            } else {
                format!("{st} ({reason})")
            }
        }
    };
    vec![
        cell(name(obj)),
        cell(service),
        cell(status),
        cell(age(obj, now)),
    ]
}
