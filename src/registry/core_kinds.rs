//! kube-apiserver's validation of six core kinds, with kube's field paths, error types, values
//! and messages, in kube's order: Namespaces, Nodes, ServiceAccounts, PersistentVolumes,
//! PersistentVolumeClaims and Endpoints; and what their strategies change before validating (a
//! Namespace keeps the finalizers it is created with, a Node loses the removed dynamic kubelet
//! configuration, a ServiceAccount's secret references keep only their names, a claim's data
//! sources are dropped or copied into each other as kube does).
//!
//! The generic layer checks metadata once; what kube adds for core kinds (a finalizer without a
//! `/` must be a standard one, `metadata.finalizers[i]`) is here, as many times as kube's
//! strategy reports it: an update runs both kube's create and update checks for most of these
//! kinds, so their errors appear twice (three times for claims), as kube answers them.
//!
//! kubox validates every update alike, whatever the subresource; which one it was is read off
//! what changed, since the strategies already copied the rest from the stored object: `status`
//! differs from it only through `/status`, a Namespace's `spec` only through `/finalize`.

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use kubox_apimachinery::quantity::Quantity;
use kubox_apimachinery::validation::{self as v, FieldError, FieldErrorKind};
use serde_json::{json, Map, Value};

// ---------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------

fn s<'a>(x: &'a Value, k: &str) -> &'a str {
    x.get(k).and_then(Value::as_str).unwrap_or_default()
}

fn items<'a>(x: &'a Value, k: &str) -> &'a [Value] {
    x.get(k)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn strings<'a>(x: &'a Value, k: &str) -> Vec<&'a str> {
    items(x, k).iter().filter_map(Value::as_str).collect()
}

/// The field when it is set (a JSON `null` is Go's nil).
fn set<'a>(x: &'a Value, k: &str) -> Option<&'a Value> {
    x.get(k).filter(|v| !v.is_null())
}

fn json_text(x: &Value) -> String {
    serde_json::to_string(x).unwrap_or_default()
}

/// One `Invalid` per message of a string check.
fn each(errs: &mut Vec<FieldError>, path: &str, value: &str, msgs: Vec<String>) {
    for m in msgs {
        errs.push(FieldError::invalid(path, value, m));
    }
}

/// kube's core `ValidateObjectMeta` / `ValidateObjectMetaUpdate` addition: a finalizer without
/// a `/` must be `kubernetes`, `orphan` or `foregroundDeletion`.
fn kube_finalizers(obj: &Value) -> Vec<FieldError> {
    v::validate_kube_finalizer_names(&obj["metadata"])
}

/// Did an update write `status` (only `/status` can: the main resource keeps the stored one)?
fn status_changed(new: &Value, old: &Value) -> bool {
    new.get("status") != old.get("status")
}

/// A value as Go's semantic equality sees it: nil and empty lists alike (null fields dropped).
fn canonical(x: &Value) -> Option<Value> {
    match x {
        Value::Null => None,
        Value::Array(a) if a.is_empty() => None,
        Value::Array(a) => Some(Value::Array(
            a.iter()
                .map(|i| canonical(i).unwrap_or(Value::Null))
                .collect(),
        )),
        Value::Object(m) => Some(Value::Object(
            m.iter()
                .filter_map(|(k, i)| canonical(i).map(|c| (k.clone(), c)))
                .collect(),
        )),
        other => Some(other.clone()),
    }
}

fn semantic_eq(a: Option<&Value>, b: Option<&Value>) -> bool {
    a.and_then(canonical) == b.and_then(canonical)
}

/// The message tail kube's immutability errors carry: a diff of the old and new values.
fn diff(old: &Value, new: &Value) -> String {
    format!("- {}\n+ {}\n", json_text(old), json_text(new))
}

const VALID_IP: &str = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";
const VALID_CIDR: &str = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)";
const PORT_RANGE: &str = "must be between 1 and 65535, inclusive";
const STANDARD_FINALIZERS: [&str; 3] = ["kubernetes", "orphan", "foregroundDeletion"];
const ACCESS_MODES: [&str; 4] = [
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];
const VOLUME_MODES: [&str; 2] = ["Block", "Filesystem"];

// ---------------------------------------------------------------------------------------------
// Quantities and resource names
// ---------------------------------------------------------------------------------------------

fn quantity(x: &Value) -> Option<Quantity> {
    match x {
        Value::String(t) => Quantity::parse(t),
        Value::Number(n) => Quantity::parse(&n.to_string()),
        _ => None,
    }
}

/// Go's `Quantity.Value()`: the integer, a fraction rounded away from zero.
fn int_value(q: &Quantity) -> i64 {
    q.as_i64().unwrap_or_else(|| {
        let f = q.as_f64();
        (if f < 0.0 { f.floor() } else { f.ceil() }) as i64
    })
}

/// The resources counted in whole units (kube's `IsIntegerResourceName`, extended resources
/// included).
fn is_integer_resource(name: &str) -> bool {
    const INTEGER: [&str; 9] = [
        "pods",
        "resourcequotas",
        "services",
        "replicationcontrollers",
        "secrets",
        "configmaps",
        "persistentvolumeclaims",
        "services.nodeports",
        "services.loadbalancers",
    ];
    INTEGER.contains(&name) || is_extended_resource(name)
}

/// Unprefixed, or in the `kubernetes.io/` domain.
fn is_native_resource(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

fn is_extended_resource(name: &str) -> bool {
    !is_native_resource(name)
        && !name.starts_with("requests.")
        && v::is_qualified_name(&format!("requests.{name}")).is_empty()
}

/// `ValidateNonnegativeQuantity`.
fn nonnegative(path: &str, q: &Quantity, errs: &mut Vec<FieldError>) {
    if *q < Quantity::zero() {
        errs.push(FieldError::invalid(
            path,
            &q.to_string(),
            v::IS_NEGATIVE_ERROR_MSG,
        ));
    }
}

/// `ValidatePositiveQuantityValue`; false when it failed.
fn positive(path: &str, q: &Quantity, errs: &mut Vec<FieldError>) -> bool {
    if *q <= Quantity::zero() {
        errs.push(FieldError::invalid(
            path,
            &q.to_string(),
            "must be greater than zero",
        ));
        return false;
    }
    true
}

/// `validateBasicResource`; false when it failed.
fn basic_resource(path: &str, q: &Quantity, errs: &mut Vec<FieldError>) -> bool {
    if *q < Quantity::zero() {
        errs.push(FieldError::invalid_rendered(
            path,
            int_value(q).to_string(),
            "must be a valid resource quantity",
        ));
        return false;
    }
    true
}

/// `ValidateResourceQuantityValue`: not negative, and whole for integer resources.
fn resource_quantity_value(name: &str, path: &str, q: &Quantity, errs: &mut Vec<FieldError>) {
    nonnegative(path, q, errs);
    if is_integer_resource(name) && q.as_i64().is_none() && q.as_f64().abs() < 9.0e18 {
        errs.push(FieldError::invalid(
            path,
            &q.to_string(),
            "must be an integer",
        ));
    }
}

/// A ResourceList as Go's JSON prints it: keys sorted, quantities canonical.
fn resource_list_text(list: &Map<String, Value>) -> String {
    let shown: BTreeMap<&str, String> = list
        .iter()
        .map(|(k, q)| {
            let q = quantity(q).map_or_else(|| s_of(q), |q| q.to_string());
            (k.as_str(), q)
        })
        .collect();
    serde_json::to_string(&shown).unwrap_or_default()
}

fn s_of(x: &Value) -> String {
    x.as_str().map_or_else(|| json_text(x), str::to_string)
}

// ---------------------------------------------------------------------------------------------
// IP addresses and CIDRs, parsed as kube's legacy fields are (leading zeros allowed)
// ---------------------------------------------------------------------------------------------

fn parse_ipv4_sloppy(text: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = text.split('.');
    for o in &mut octets {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 10 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *o = u8::try_from(part.parse::<u64>().ok()?).ok()?;
    }
    parts.next().is_none().then(|| Ipv4Addr::from(octets))
}

fn parse_ip_sloppy(text: &str) -> Option<IpAddr> {
    if !text.contains(':') {
        return parse_ipv4_sloppy(text).map(IpAddr::V4);
    }
    if let Ok(a) = text.parse::<Ipv6Addr>() {
        return Some(IpAddr::V6(a));
    }
    let (head, tail) = text.rsplit_once(':')?;
    let v4 = parse_ipv4_sloppy(tail)?;
    format!("{head}:{v4}")
        .parse::<Ipv6Addr>()
        .ok()
        .map(IpAddr::V6)
}

/// An IPv4-mapped IPv6 address as the IPv4 address it maps (Go's `To4`).
fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(a) => a.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn parse_cidr_sloppy(text: &str) -> Option<IpAddr> {
    let (ip, bits) = text.split_once('/')?;
    let addr = parse_ip_sloppy(ip)?;
    if bits.is_empty() || bits.len() > 10 || !bits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let bits: u32 = bits.parse().ok()?;
    let max = if ip.contains(':') { 128 } else { 32 };
    (bits <= max).then_some(unmapped(addr))
}

// ---------------------------------------------------------------------------------------------
// Namespace
// ---------------------------------------------------------------------------------------------

/// kube's `ValidateNamespace` on create; on update the checks of the subresource written
/// (`ValidateNamespace` and `ValidateNamespaceUpdate`, `ValidateNamespaceStatusUpdate`,
/// `ValidateNamespaceFinalizeUpdate`).
pub fn namespace_errors(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = kube_finalizers(obj);
    let Some(old) = old else {
        namespace_finalizer_errors(obj, false, &mut errs);
        return errs;
    };
    if status_changed(obj, old) {
        let phase = s(&obj["status"], "phase");
        let deleting = set(&obj["metadata"], "deletionTimestamp").is_some();
        if !deleting && phase != "Active" {
            errs.push(FieldError::invalid(
                "status.Phase",
                phase,
                "may only be 'Active' if `deletionTimestamp` is empty",
            ));
        } else if deleting && phase != "Terminating" {
            errs.push(FieldError::invalid(
                "status.Phase",
                phase,
                "may only be 'Terminating' if `deletionTimestamp` is not empty",
            ));
        }
    } else if obj.get("spec") != old.get("spec") {
        namespace_finalizer_errors(obj, true, &mut errs);
    } else {
        namespace_finalizer_errors(obj, false, &mut errs);
        errs.extend(kube_finalizers(obj));
    }
    errs
}

/// `spec.finalizers`: qualified names, standard unless qualified; reported on the list itself
/// except through `/finalize`, which names the entry.
fn namespace_finalizer_errors(obj: &Value, indexed: bool, errs: &mut Vec<FieldError>) {
    for (i, f) in strings(&obj["spec"], "finalizers").into_iter().enumerate() {
        let path = if indexed {
            format!("spec.finalizers[{i}]")
        } else {
            "spec.finalizers".to_string()
        };
        each(errs, &path, f, v::is_qualified_name(f));
        if !f.contains('/') && !STANDARD_FINALIZERS.contains(&f) {
            errs.push(FieldError::invalid(
                &path,
                f,
                "name is neither a standard finalizer name nor is it fully qualified",
            ));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Node
// ---------------------------------------------------------------------------------------------

const TAINTS_ANNOTATION: &str = "scheduler.alpha.kubernetes.io/taints";
const AVOID_PODS_ANNOTATION: &str = "scheduler.alpha.kubernetes.io/preferAvoidPods";
const TAINT_EFFECTS: [&str; 3] = ["NoSchedule", "PreferNoSchedule", "NoExecute"];
const FEATURE_NAME: &str = "must start with an UpperCamelCase segment, with subsequent segments separated by '/' (e.g., MyFeature or MyFeature/mySubFeature), and contain only alphanumeric characters and slashes";

/// kube's `ValidateNode` on create; on an update of the main resource `ValidateNode` and
/// `ValidateNodeUpdate`, through `/status` `ValidateNodeUpdate` alone.
pub fn node_errors(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match old {
        None => node_create_errors(obj, &mut errs),
        Some(old) if status_changed(obj, old) => node_update_errors(obj, old, &mut errs),
        Some(old) => {
            node_create_errors(obj, &mut errs);
            node_update_errors(obj, old, &mut errs);
        }
    }
    errs
}

fn node_create_errors(obj: &Value, errs: &mut Vec<FieldError>) {
    errs.extend(kube_finalizers(obj));
    node_annotation_errors(obj, errs);
    taint_errors(items(&obj["spec"], "taints"), "metadata.taints", errs);
    node_resource_errors(obj, errs);
    if let Some(cap) = obj["status"]["nodeInfo"]["swap"]["capacity"].as_i64() {
        if cap <= 0 {
            errs.push(FieldError::invalid_rendered(
                "metadata.nodeSwapStatus.capacity",
                cap.to_string(),
                "must be greater than zero",
            ));
        }
    }
    declared_feature_errors(obj, errs);
    pod_cidr_errors(obj, errs);
}

fn node_update_errors(new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
    errs.extend(kube_finalizers(new));
    node_annotation_errors(new, errs);
    node_resource_errors(new, errs);
    declared_feature_errors(new, errs);
    // Sets, here and for taints: repeats found in linear time.
    let mut seen: HashSet<(&str, &str)> = HashSet::new();
    for (i, a) in items(&new["status"], "addresses").iter().enumerate() {
        let pair = (s(a, "type"), s(a, "address"));
        if !seen.insert(pair) {
            errs.push(FieldError {
                field: format!("status.addresses[{i}]"),
                kind: FieldErrorKind::Duplicate,
                value: Some(format!(
                    "{{\"Type\":{},\"Address\":{}}}",
                    json_text(&json!(pair.0)),
                    json_text(&json!(pair.1))
                )),
                message: String::new(),
            });
        }
    }
    let (old_cidrs, new_cidrs) = (
        strings(&old["spec"], "podCIDRs"),
        strings(&new["spec"], "podCIDRs"),
    );
    const CIDR_CHANGE: &str = "node updates may not change podCIDR except from \"\" to valid";
    if !old_cidrs.is_empty() {
        if old_cidrs.len() != new_cidrs.len() {
            errs.push(FieldError::forbidden("spec.podCIDRs", CIDR_CHANGE));
        } else {
            for (o, n) in old_cidrs.iter().zip(&new_cidrs) {
                if o != n {
                    errs.push(FieldError::forbidden("spec.podCIDRs", CIDR_CHANGE));
                }
            }
        }
    }
    let old_provider = s(&old["spec"], "providerID");
    if !old_provider.is_empty() && old_provider != s(&new["spec"], "providerID") {
        errs.push(FieldError::forbidden(
            "spec.providerID",
            "node updates may not change providerID except from \"\" to valid",
        ));
    }
    taint_errors(items(&new["spec"], "taints"), "metadata.taints", errs);
    if s(&new["spec"], "externalID") != s(&old["spec"], "externalID") {
        errs.push(FieldError::forbidden(
            "spec.externalID",
            "may not be updated",
        ));
    }
}

/// The scheduler's taint and avoid-pods annotations (`ValidateNodeSpecificAnnotations`).
fn node_annotation_errors(obj: &Value, errs: &mut Vec<FieldError>) {
    let annotations = &obj["metadata"]["annotations"];
    if let Some(text) = annotations[TAINTS_ANNOTATION]
        .as_str()
        .filter(|t| !t.is_empty())
    {
        match decode_list(text, "[]v1.Taint") {
            Err(e) => errs.push(FieldError::invalid(
                "metadata.annotations",
                TAINTS_ANNOTATION,
                e,
            )),
            Ok(taints) => taint_errors(
                &taints,
                &format!("metadata.annotations.{TAINTS_ANNOTATION}"),
                errs,
            ),
        }
    }
    if let Some(text) = annotations[AVOID_PODS_ANNOTATION]
        .as_str()
        .filter(|t| !t.is_empty())
    {
        let entries = serde_json::from_str::<Value>(text)
            .map_err(|e| e.to_string())
            .and_then(|doc| match doc {
                Value::Object(_) => match set(&doc, "preferAvoidPods") {
                    None => Ok(Vec::new()),
                    Some(Value::Array(a)) if a.iter().all(Value::is_object) => Ok(a.clone()),
                    Some(other) => Err(unmarshal_error(other, "[]v1.PreferAvoidPodsEntry")),
                },
                other => Err(unmarshal_error(&other, "v1.AvoidPods")),
            });
        match entries {
            Err(e) => errs.push(FieldError::invalid(
                "metadata.annotations.AvoidPods",
                AVOID_PODS_ANNOTATION,
                e,
            )),
            Ok(entries) => {
                for (i, entry) in entries.iter().enumerate() {
                    let at = format!("metadata.annotations.{AVOID_PODS_ANNOTATION}[{i}]");
                    match set(&entry["podSignature"], "podController") {
                        None => errs.push(FieldError::required(format!("{at}.PodSignature"), "")),
                        Some(c) if c["controller"] != json!(true) => {
                            errs.push(FieldError::invalid_rendered(
                                format!("{at}.PodSignature.PodController.Controller"),
                                "false",
                                "must point to a controller",
                            ))
                        }
                        Some(_) => {}
                    }
                }
            }
        }
    }
}

/// A JSON list of objects, or the reason it is not one (as Go's decoder words a type mismatch).
fn decode_list(text: &str, go_type: &str) -> Result<Vec<Value>, String> {
    match serde_json::from_str::<Value>(text).map_err(|e| e.to_string())? {
        Value::Null => Ok(Vec::new()),
        Value::Array(a) if a.iter().all(Value::is_object) => Ok(a),
        other => Err(unmarshal_error(&other, go_type)),
    }
}

fn unmarshal_error(x: &Value, go_type: &str) -> String {
    let what = match x {
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        _ => "object",
    };
    format!("json: cannot unmarshal {what} into Go value of type {go_type}")
}

/// `validateNodeTaints`: keys, values, effects, one taint per key and effect.
fn taint_errors(taints: &[Value], path: &str, errs: &mut Vec<FieldError>) {
    let mut seen: HashSet<(&str, &str)> = HashSet::new();
    for (i, t) in taints.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let key = s(t, "key");
        each(errs, &format!("{at}.key"), key, v::is_qualified_name(key));
        let value = s(t, "value");
        let msgs = v::is_valid_label_value(value);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(
                format!("{at}.value"),
                value,
                msgs.join(";"),
            ));
        }
        let effect = s(t, "effect");
        if effect.is_empty() {
            errs.push(FieldError::required(format!("{at}.effect"), ""));
        } else if !TAINT_EFFECTS.contains(&effect) {
            errs.push(FieldError::not_supported(
                format!("{at}.effect"),
                effect,
                &TAINT_EFFECTS,
            ));
        }
        if !seen.insert((effect, key)) {
            let time_added = t.get("timeAdded").cloned().unwrap_or(Value::Null);
            errs.push(FieldError {
                field: at,
                kind: FieldErrorKind::Duplicate,
                value: Some(format!(
                    "{{\"Key\":{},\"Value\":{},\"Effect\":{},\"TimeAdded\":{}}}",
                    json_text(&json!(key)),
                    json_text(&json!(value)),
                    json_text(&json!(effect)),
                    json_text(&time_added)
                )),
                message: "taints must be unique by key and effect pair".into(),
            });
        }
    }
}

/// `ValidateNodeResources`: capacity, then allocatable, at `status.<list>.<name>`.
fn node_resource_errors(obj: &Value, errs: &mut Vec<FieldError>) {
    for list in ["capacity", "allocatable"] {
        for (name, q) in obj["status"][list].as_object().into_iter().flatten() {
            if let Some(q) = quantity(q) {
                resource_quantity_value(name, &format!("status.{list}.{name}"), &q, errs);
            }
        }
    }
}

/// `^[A-Z][a-zA-Z0-9]*(/[a-zA-Z][a-zA-Z0-9]*)*$`.
fn is_feature_name(name: &str) -> bool {
    name.split('/').enumerate().all(|(i, seg)| {
        let mut b = seg.bytes();
        let first_ok = match b.next() {
            Some(c) if i == 0 => c.is_ascii_uppercase(),
            Some(c) => c.is_ascii_alphabetic(),
            None => false,
        };
        first_ok && b.all(|c| c.is_ascii_alphanumeric())
    })
}

/// `status.declaredFeatures`: well-formed names, sorted, without repeats.
fn declared_feature_errors(obj: &Value, errs: &mut Vec<FieldError>) {
    let names = strings(&obj["status"], "declaredFeatures");
    for (i, f) in names.iter().enumerate() {
        let path = format!("status.declaredFeatures[{i}]");
        let problem = if f.len() > v::DNS1123_SUBDOMAIN_MAX_LENGTH {
            Some(v::max_len_error(v::DNS1123_SUBDOMAIN_MAX_LENGTH))
        } else if !is_feature_name(f) {
            Some(FEATURE_NAME.to_string())
        } else {
            None
        };
        if let Some(p) = problem {
            errs.push(FieldError::invalid(
                &path,
                f,
                format!("invalid feature name {}: {p}", v::go_quote(f)),
            ));
        }
        if let Some(next) = names.get(i + 1) {
            let next_path = format!("status.declaredFeatures[{}]", i + 1);
            if f == next {
                errs.push(FieldError::duplicate(next_path, next));
            } else if f > next {
                errs.push(FieldError::invalid(
                    next_path,
                    next,
                    "list must be sorted alphabetically",
                ));
            }
        }
    }
}

/// `spec.podCIDRs`: valid CIDRs, at most one per IP family.
fn pod_cidr_errors(obj: &Value, errs: &mut Vec<FieldError>) {
    let cidrs = strings(&obj["spec"], "podCIDRs");
    let parsed: Vec<Option<IpAddr>> = cidrs.iter().map(|c| parse_cidr_sloppy(c)).collect();
    for (i, (c, p)) in cidrs.iter().zip(&parsed).enumerate() {
        if p.is_none() {
            errs.push(FieldError::invalid(
                format!("spec.podCIDRs[{i}]"),
                c,
                VALID_CIDR,
            ));
        }
    }
    if cidrs.len() < 2 {
        return;
    }
    let dual = match parsed.iter().position(Option::is_none) {
        Some(i) => {
            errs.push(FieldError::internal(
                "spec.podCIDRs",
                format!(
                    "invalid PodCIDRs. failed to check with dual stack with error:invalid CIDR[{i}]: <nil> (invalid CIDR address: {})",
                    cidrs.get(i).copied().unwrap_or_default()
                ),
            ));
            false
        }
        None => {
            let v4 = parsed.iter().flatten().any(IpAddr::is_ipv4);
            let v6 = parsed.iter().flatten().any(IpAddr::is_ipv6);
            v4 && v6
        }
    };
    if !dual || cidrs.len() > 2 {
        errs.push(FieldError::invalid_rendered(
            "spec.podCIDRs",
            json_text(&json!(cidrs)),
            "may specify no more than one CIDR for each IP family",
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// ServiceAccount
// ---------------------------------------------------------------------------------------------

/// kube's `ValidateServiceAccount` (metadata only); an update checks it twice
/// (`ValidateServiceAccountUpdate`: the update's metadata, then the object's).
pub fn service_account_errors(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = kube_finalizers(obj);
    if old.is_some() {
        errs.extend(kube_finalizers(obj));
    }
    errs
}

// ---------------------------------------------------------------------------------------------
// PersistentVolume
// ---------------------------------------------------------------------------------------------

/// The volume sources of a PersistentVolume in kube's order: the JSON field, and the name its
/// "more than 1 volume type" error gives it.
const PV_SOURCES: [(&str, &str); 22] = [
    ("hostPath", "hostPath"),
    ("gcePersistentDisk", "gcePersistentDisk"),
    ("awsElasticBlockStore", "awsElasticBlockStore"),
    ("glusterfs", "glusterfs"),
    ("flocker", "flocker"),
    ("nfs", "nfs"),
    ("rbd", "rbd"),
    ("quobyte", "quobyte"),
    ("cephfs", "cephFS"),
    ("iscsi", "iscsi"),
    ("cinder", "cinder"),
    ("fc", "fc"),
    ("flexVolume", "flexVolume"),
    ("azureFile", "azureFile"),
    ("vsphereVolume", "vsphereVolume"),
    ("photonPersistentDisk", "photonPersistentDisk"),
    ("portworxVolume", "portworxVolume"),
    ("azureDisk", "azureDisk"),
    ("scaleIO", "scaleIO"),
    ("local", "local"),
    ("storageos", "storageos"),
    ("csi", "csi"),
];

/// The sources that take the mount-options annotation.
const MOUNT_OPTION_SOURCES: [&str; 13] = [
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "glusterfs",
    "nfs",
    "rbd",
    "quobyte",
    "iscsi",
    "cinder",
    "cephfs",
    "azureFile",
    "vsphereVolume",
    "azureDisk",
    "photonPersistentDisk",
];

const HOST_PATH_TYPES: [&str; 8] = [
    "",
    "BlockDevice",
    "CharDevice",
    "Directory",
    "DirectoryOrCreate",
    "File",
    "FileOrCreate",
    "Socket",
];

/// The GA labels that replace beta ones in a volume's node affinity.
const BETA_TO_GA: [(&str, &str); 5] = [
    (
        "failure-domain.beta.kubernetes.io/zone",
        "topology.kubernetes.io/zone",
    ),
    (
        "failure-domain.beta.kubernetes.io/region",
        "topology.kubernetes.io/region",
    ),
    ("beta.kubernetes.io/os", "kubernetes.io/os"),
    ("beta.kubernetes.io/arch", "kubernetes.io/arch"),
    (
        "beta.kubernetes.io/instance-type",
        "node.kubernetes.io/instance-type",
    ),
];

/// kube's PersistentVolume strategy: `ValidatePersistentVolume` and the mount-options check on
/// create; on an update both, then `ValidatePersistentVolumeUpdate` (which checks the volume
/// again); through `/status` the metadata update only.
pub fn persistent_volume_errors(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    // Label values a stored volume's required node affinity already holds stay allowed.
    let allow_invalid_values = old.is_some_and(|o| {
        let mut e = Vec::new();
        volume_node_affinity_errors(&o["spec"], false, &mut e);
        e.iter()
            .any(|e| e.field.contains(".values[") && e.kind == FieldErrorKind::Invalid)
    });
    match old {
        Some(old) if status_changed(obj, old) => errs.extend(kube_finalizers(obj)),
        Some(old) => {
            pv_errors(obj, allow_invalid_values, &mut errs);
            mount_option_errors(obj, &mut errs);
            pv_errors(obj, allow_invalid_values, &mut errs);
            pv_update_errors(obj, old, &mut errs);
        }
        None => {
            pv_errors(obj, false, &mut errs);
            mount_option_errors(obj, &mut errs);
        }
    }
    errs
}

/// `ValidatePersistentVolume`.
fn pv_errors(obj: &Value, allow_invalid_values: bool, errs: &mut Vec<FieldError>) {
    errs.extend(kube_finalizers(obj));
    let spec = &obj["spec"];
    if items(spec, "accessModes").is_empty() {
        errs.push(FieldError::required("spec.accessModes", ""));
    }
    access_mode_errors(spec, errs);
    let empty = Map::new();
    let capacity = spec["capacity"].as_object().unwrap_or(&empty);
    if capacity.is_empty() {
        errs.push(FieldError::required("spec.capacity", ""));
    }
    if !capacity.contains_key("storage") || capacity.len() > 1 {
        errs.push(FieldError::not_supported_rendered(
            "spec.capacity",
            resource_list_text(capacity),
            &["storage"],
        ));
    }
    for (name, q) in capacity {
        if let Some(q) = quantity(q) {
            let path = format!("spec.capacity[{name}]");
            basic_resource(&path, &q, errs);
            positive(&path, &q, errs);
        }
    }
    const POLICIES: [&str; 3] = ["Delete", "Recycle", "Retain"];
    let policy = s(spec, "persistentVolumeReclaimPolicy");
    if !policy.is_empty() && !POLICIES.contains(&policy) {
        errs.push(FieldError::not_supported(
            "spec.persistentVolumeReclaimPolicy",
            policy,
            &POLICIES,
        ));
    }
    volume_node_affinity_errors(spec, allow_invalid_values, errs);
    let mut sources = 0;
    for (key, name) in PV_SOURCES {
        let Some(src) = set(spec, key) else { continue };
        if key == "flexVolume" {
            sources += 1;
            continue;
        }
        if sources > 0 {
            errs.push(FieldError::forbidden(
                format!("spec.{name}"),
                "may not specify more than 1 volume type",
            ));
            continue;
        }
        sources += 1;
        match key {
            "hostPath" => host_path_errors(src, errs),
            "nfs" => {
                if s(src, "server").is_empty() {
                    errs.push(FieldError::required("spec.nfs.server", ""));
                }
                let path = s(src, "path");
                if path.is_empty() {
                    errs.push(FieldError::required("spec.nfs.path", ""));
                }
                if !path.starts_with('/') {
                    errs.push(FieldError::invalid(
                        "spec.nfs.path",
                        path,
                        "must be an absolute path",
                    ));
                }
            }
            "local" => {
                let path = s(src, "path");
                if path.is_empty() {
                    errs.push(FieldError::required("spec.local.path", ""));
                } else {
                    no_backsteps("spec.local.path", path, errs);
                }
                if set(spec, "nodeAffinity").is_none() {
                    errs.push(FieldError::required(
                        "spec.nodeAffinity",
                        "Local volume requires node affinity",
                    ));
                }
            }
            "csi" => csi_errors(src, errs),
            _ => {}
        }
    }
    if sources == 0 {
        errs.push(FieldError::required("spec", "must specify a volume type"));
    }
    if let Some(hp) = set(spec, "hostPath") {
        if clean_path(s(hp, "path")) == "/" && policy == "Recycle" {
            errs.push(FieldError::forbidden(
                "spec.persistentVolumeReclaimPolicy",
                "may not be 'recycle' for a hostPath mount of '/'",
            ));
        }
    }
    let class = s(spec, "storageClassName");
    if !class.is_empty() {
        each(
            errs,
            "spec.storageClassName",
            class,
            v::is_dns1123_subdomain(class),
        );
    }
    if let Some(mode) = set(spec, "volumeMode").and_then(Value::as_str) {
        if !VOLUME_MODES.contains(&mode) {
            errs.push(FieldError::not_supported(
                "spec.volumeMode",
                mode,
                &VOLUME_MODES,
            ));
        }
    }
    if let Some(vac) = set(spec, "volumeAttributesClassName").and_then(Value::as_str) {
        if vac.is_empty() {
            errs.push(FieldError::required(
                "spec.volumeAttributesClassName",
                "an empty string is disallowed",
            ));
        } else {
            each(
                errs,
                "spec.volumeAttributesClassName",
                vac,
                v::is_dns1123_subdomain(vac),
            );
        }
        if set(spec, "csi").is_none() {
            errs.push(FieldError::required(
                "spec.csi",
                "has to be specified when using volumeAttributesClassName",
            ));
        }
    }
}

/// Each access mode known; ReadWriteOncePod alone.
fn access_mode_errors(spec: &Value, errs: &mut Vec<FieldError>) {
    let (mut once_pod, mut other) = (false, false);
    for mode in strings(spec, "accessModes") {
        if !ACCESS_MODES.contains(&mode) {
            errs.push(FieldError::not_supported(
                "spec.accessModes",
                mode,
                &ACCESS_MODES,
            ));
        } else if mode == "ReadWriteOncePod" {
            once_pod = true;
        } else {
            other = true;
        }
    }
    if once_pod && other {
        errs.push(FieldError::forbidden(
            "spec.accessModes",
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
}

fn no_backsteps(path: &str, target: &str, errs: &mut Vec<FieldError>) {
    if target.split('/').any(|p| p == "..") {
        errs.push(FieldError::invalid(path, target, "must not contain '..'"));
    }
}

/// Go's `path.Clean`, as far as telling `/` apart needs.
fn clean_path(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

fn host_path_errors(src: &Value, errs: &mut Vec<FieldError>) {
    let path = s(src, "path");
    if path.is_empty() {
        errs.push(FieldError::required("spec.hostPath.path", ""));
        return;
    }
    no_backsteps("spec.hostPath.path", path, errs);
    if let Some(t) = set(src, "type").and_then(Value::as_str) {
        if !HOST_PATH_TYPES.contains(&t) {
            errs.push(FieldError::not_supported(
                "spec.hostPath.type",
                t,
                &HOST_PATH_TYPES,
            ));
        }
    }
}

fn csi_errors(src: &Value, errs: &mut Vec<FieldError>) {
    let driver = s(src, "driver");
    if driver.is_empty() {
        errs.push(FieldError::required("spec.csi.driver", ""));
    }
    if driver.len() > 63 {
        errs.push(FieldError::too_long("spec.csi.driver", 63));
    }
    each(
        errs,
        "spec.csi.driver",
        driver,
        v::is_dns1123_subdomain(&driver.to_lowercase()),
    );
    if s(src, "volumeHandle").is_empty() {
        errs.push(FieldError::required("spec.csi.volumeHandle", ""));
    }
    for r in [
        "controllerPublishSecretRef",
        "controllerExpandSecretRef",
        "nodePublishSecretRef",
        "nodeExpandSecretRef",
    ] {
        let Some(secret) = set(src, r) else { continue };
        let (name, namespace) = (s(secret, "name"), s(secret, "namespace"));
        let path = format!("spec.csi.{r}");
        if name.is_empty() {
            errs.push(FieldError::required(format!("{path}.name"), ""));
        } else {
            each(
                errs,
                &format!("{path}.name"),
                name,
                v::is_dns1123_subdomain(name),
            );
        }
        if namespace.is_empty() {
            errs.push(FieldError::required(format!("{path}.namespace"), ""));
        } else {
            each(
                errs,
                &format!("{path}.namespace"),
                namespace,
                v::is_dns1123_label(namespace),
            );
        }
    }
}

/// `validateVolumeNodeAffinity`: required node constraints, as a NodeSelector.
fn volume_node_affinity_errors(
    spec: &Value,
    allow_invalid_values: bool,
    errs: &mut Vec<FieldError>,
) {
    let Some(affinity) = set(spec, "nodeAffinity") else {
        return;
    };
    let path = "spec.nodeAffinity.required";
    let Some(required) = set(affinity, "required") else {
        errs.push(FieldError::required(
            path,
            "must specify required node constraints",
        ));
        return;
    };
    let terms = items(required, "nodeSelectorTerms");
    if terms.is_empty() {
        errs.push(FieldError::required(
            format!("{path}.nodeSelectorTerms"),
            "must have at least one node selector term",
        ));
    }
    for (i, term) in terms.iter().enumerate() {
        let at = format!("{path}.nodeSelectorTerms[{i}]");
        for (j, r) in items(term, "matchExpressions").iter().enumerate() {
            node_selector_requirement_errors(
                r,
                &format!("{at}.matchExpressions[{j}]"),
                allow_invalid_values,
                errs,
            );
        }
        for (j, r) in items(term, "matchFields").iter().enumerate() {
            node_field_requirement_errors(r, &format!("{at}.matchFields[{j}]"), errs);
        }
    }
}

fn node_selector_requirement_errors(
    r: &Value,
    at: &str,
    allow_invalid_values: bool,
    errs: &mut Vec<FieldError>,
) {
    let op = s(r, "operator");
    let values = strings(r, "values");
    let values_path = format!("{at}.values");
    match op {
        "In" | "NotIn" if values.is_empty() => errs.push(FieldError::required(
            &values_path,
            "must be specified when `operator` is 'In' or 'NotIn'",
        )),
        "Exists" | "DoesNotExist" if !values.is_empty() => errs.push(FieldError::forbidden(
            &values_path,
            "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
        )),
        "Gt" | "Lt" if values.len() != 1 => errs.push(FieldError::required(
            &values_path,
            "must be specified single value when `operator` is 'Lt' or 'Gt'",
        )),
        "In" | "NotIn" | "Exists" | "DoesNotExist" | "Gt" | "Lt" => {}
        other => errs.push(FieldError::invalid(
            format!("{at}.operator"),
            other,
            "not a valid selector operator",
        )),
    }
    let key = s(r, "key");
    each(errs, &format!("{at}.key"), key, v::is_qualified_name(key));
    if !allow_invalid_values {
        for (k, value) in values.iter().enumerate() {
            each(
                errs,
                &format!("{values_path}[{k}]"),
                value,
                v::is_valid_label_value(value),
            );
        }
    }
}

fn node_field_requirement_errors(r: &Value, at: &str, errs: &mut Vec<FieldError>) {
    let values = strings(r, "values");
    match s(r, "operator") {
        "In" | "NotIn" if values.len() != 1 => errs.push(FieldError::required(
            format!("{at}.values"),
            "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
        )),
        "In" | "NotIn" => {}
        other => errs.push(FieldError::invalid(
            format!("{at}.operator"),
            other,
            "not a valid selector operator",
        )),
    }
    let key = s(r, "key");
    if key != "metadata.name" {
        errs.push(FieldError::invalid(
            format!("{at}.key"),
            key,
            "not a valid field selector key",
        ));
    } else {
        for (k, value) in values.iter().enumerate() {
            each(
                errs,
                &format!("{at}.values[{k}]"),
                value,
                v::is_dns1123_subdomain(value),
            );
        }
    }
}

/// The mount-options annotation only on the sources that take mount options.
fn mount_option_errors(obj: &Value, errs: &mut Vec<FieldError>) {
    const ANNOTATION: &str = "volume.beta.kubernetes.io/mount-options";
    let spec = &obj["spec"];
    if MOUNT_OPTION_SOURCES.iter().any(|k| set(spec, k).is_some()) {
        return;
    }
    if obj["metadata"]["annotations"].get(ANNOTATION).is_some() {
        errs.push(FieldError::forbidden(
            format!("metadata.annotations.{ANNOTATION}"),
            "may not specify mount options for this volume type",
        ));
    }
}

/// What an update of a PersistentVolume may not change (after the volume is checked again).
fn pv_update_errors(new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
    let (ns, os) = (&new["spec"], &old["spec"]);
    let sources = |spec: &Value| -> Value {
        Value::Object(
            PV_SOURCES
                .iter()
                .filter_map(|(k, _)| set(spec, k).map(|x| (k.to_string(), x.clone())))
                .collect(),
        )
    };
    let (mut new_src, old_src) = (sources(ns), sources(os));
    // A CSI volume may be given an expansion secret it did not have.
    if set(&os["csi"], "controllerExpandSecretRef").is_none() {
        if let Some(csi) = new_src.get_mut("csi").and_then(Value::as_object_mut) {
            csi.remove("controllerExpandSecretRef");
        }
    }
    if !semantic_eq(Some(&new_src), Some(&old_src)) {
        errs.push(FieldError::forbidden(
            "spec.persistentvolumesource",
            format!(
                "spec.persistentvolumesource is immutable after creation\n{}",
                diff(&old_src, &new_src)
            ),
        ));
    }
    if set(ns, "volumeMode") != set(os, "volumeMode") {
        errs.push(FieldError::invalid_rendered(
            "volumeMode",
            json_text(set(ns, "volumeMode").unwrap_or(&Value::Null)),
            v::FIELD_IMMUTABLE_ERROR_MSG,
        ));
    }
    if set(os, "nodeAffinity").is_some()
        && !node_affinities_equal(set(ns, "nodeAffinity"), set(os, "nodeAffinity"))
    {
        errs.push(FieldError::invalid_rendered(
            "nodeAffinity",
            volume_node_affinity_text(set(ns, "nodeAffinity")),
            "field is immutable, except for updating from beta label to GA",
        ));
    }
    if set(os, "volumeAttributesClassName").is_some()
        && set(ns, "volumeAttributesClassName").is_none()
    {
        errs.push(FieldError::forbidden(
            "spec.volumeAttributesClassName",
            "update from non-nil value to nil is forbidden",
        ));
    }
}

/// Equal node affinities, but for match-expression keys moved from a beta label to its GA one.
fn node_affinities_equal(new: Option<&Value>, old: Option<&Value>) -> bool {
    let (new, old) = match (new, old) {
        (None, None) => return true,
        (Some(n), Some(o)) => (n, o),
        _ => return false,
    };
    let (new, old) = match (set(new, "required"), set(old, "required")) {
        (None, None) => return true,
        (Some(n), Some(o)) => (n, o),
        _ => return false,
    };
    let (nt, ot) = (
        items(new, "nodeSelectorTerms"),
        items(old, "nodeSelectorTerms"),
    );
    nt.len() == ot.len()
        && nt.iter().zip(ot).all(|(n, o)| {
            let (ne, oe) = (items(n, "matchExpressions"), items(o, "matchExpressions"));
            set(n, "matchFields") == set(o, "matchFields")
                && ne.len() == oe.len()
                && ne.iter().zip(oe).all(|(n, o)| {
                    let (nk, ok) = (s(n, "key"), s(o, "key"));
                    s(n, "operator") == s(o, "operator")
                        && set(n, "values") == set(o, "values")
                        && (nk == ok || BETA_TO_GA.contains(&(ok, nk)))
                })
        })
}

/// A VolumeNodeAffinity as kube prints its internal struct (Go field names, nil as null).
fn volume_node_affinity_text(affinity: Option<&Value>) -> String {
    let Some(affinity) = affinity else {
        return "null".into();
    };
    let list = |x: Option<&Value>, each: &dyn Fn(&Value) -> String| -> String {
        match x.and_then(Value::as_array) {
            None => "null".into(),
            Some(a) => format!("[{}]", a.iter().map(each).collect::<Vec<_>>().join(",")),
        }
    };
    let requirement = |r: &Value| -> String {
        format!(
            "{{\"Key\":{},\"Operator\":{},\"Values\":{}}}",
            json_text(&json!(s(r, "key"))),
            json_text(&json!(s(r, "operator"))),
            list(set(r, "values"), &|x| json_text(x))
        )
    };
    let term = |t: &Value| -> String {
        format!(
            "{{\"MatchExpressions\":{},\"MatchFields\":{}}}",
            list(set(t, "matchExpressions"), &requirement),
            list(set(t, "matchFields"), &requirement)
        )
    };
    let required = match set(affinity, "required") {
        None => "null".to_string(),
        Some(r) => format!(
            "{{\"NodeSelectorTerms\":{}}}",
            list(set(r, "nodeSelectorTerms"), &term)
        ),
    };
    format!("{{\"Required\":{required}}}")
}

// ---------------------------------------------------------------------------------------------
// PersistentVolumeClaim
// ---------------------------------------------------------------------------------------------

const STORAGE_CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";
const RESIZE_STATUSES: [&str; 5] = [
    "ControllerResizeInProgress",
    "ControllerResizeInfeasible",
    "NodeResizeInProgress",
    "NodeResizeInfeasible",
    "NodeResizePending",
];

/// What kube lets a claim update keep that a create may not have.
#[derive(Clone, Copy, Default)]
struct ClaimOptions {
    /// The stored selector already has an invalid label value.
    invalid_selector_values: bool,
    /// The stored claim already names an API group in a data source.
    any_api_group: bool,
}

/// kube's PersistentVolumeClaim strategy: `ValidatePersistentVolumeClaim` on create; on an
/// update that, then `ValidatePersistentVolumeClaimUpdate` (which checks the claim again);
/// through `/status` `ValidatePersistentVolumeClaimStatusUpdate`.
pub fn persistent_volume_claim_errors(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(old) = old else {
        claim_errors(obj, ClaimOptions::default(), &mut errs);
        return errs;
    };
    if status_changed(obj, old) {
        claim_status_errors(obj, &mut errs);
        return errs;
    }
    let os = &old["spec"];
    let opts = ClaimOptions {
        invalid_selector_values: v::validate_label_selector_values(
            &os["selector"],
            "spec.selector",
            true,
        )
        .iter()
        .any(|e| e.field.contains(".values[")),
        any_api_group: ["dataSource", "dataSourceRef"]
            .iter()
            .any(|k| !s(&os[*k], "apiGroup").is_empty()),
    };
    claim_errors(obj, opts, &mut errs);
    errs.extend(kube_finalizers(obj));
    claim_errors(obj, opts, &mut errs);
    claim_update_errors(obj, old, &mut errs);
    errs
}

/// `ValidatePersistentVolumeClaim`: metadata, then `ValidatePersistentVolumeClaimSpec`.
fn claim_errors(obj: &Value, opts: ClaimOptions, errs: &mut Vec<FieldError>) {
    errs.extend(kube_finalizers(obj));
    let spec = &obj["spec"];
    if items(spec, "accessModes").is_empty() {
        errs.push(FieldError::required(
            "spec.accessModes",
            "at least 1 access mode is required",
        ));
    }
    if set(spec, "selector").is_some() {
        errs.extend(v::validate_label_selector_values(
            &spec["selector"],
            "spec.selector",
            !opts.invalid_selector_values,
        ));
    }
    access_mode_errors(spec, errs);
    const STORAGE: &str = "spec.resources[storage]";
    match set(&spec["resources"]["requests"], "storage") {
        None => errs.push(FieldError::required(STORAGE, "")),
        Some(q) => {
            if let Some(q) = quantity(q) {
                if positive(STORAGE, &q, errs) {
                    resource_quantity_value("storage", STORAGE, &q, errs);
                }
            }
        }
    }
    if let Some(class) = set(spec, "storageClassName")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
    {
        each(
            errs,
            "spec.storageClassName",
            class,
            v::is_dns1123_subdomain(class),
        );
    }
    if let Some(mode) = set(spec, "volumeMode").and_then(Value::as_str) {
        if !VOLUME_MODES.contains(&mode) {
            errs.push(FieldError::not_supported(
                "spec.volumeMode",
                mode,
                &VOLUME_MODES,
            ));
        }
    }
    let source = set(spec, "dataSource");
    let source_ref = set(spec, "dataSourceRef");
    if let Some(ds) = source {
        data_source_errors(ds, "spec.dataSource", opts, errs);
    }
    let mut ref_namespace = "";
    if let Some(r) = source_ref {
        data_source_errors(r, "spec.dataSourceRef", opts, errs);
        ref_namespace = s(r, "namespace");
        if !ref_namespace.is_empty() {
            each(
                errs,
                "spec.dataSourceRef.namespace",
                ref_namespace,
                v::is_dns1123_label(ref_namespace),
            );
        }
    }
    match (source, source_ref) {
        (Some(_), Some(_)) if !ref_namespace.is_empty() => errs.push(FieldError::invalid_rendered(
            "spec",
            "{}",
            "may not be specified when dataSourceRef.namespace is specified",
        )),
        (Some(ds), Some(r))
            if set(ds, "apiGroup") != set(r, "apiGroup")
                || s(ds, "kind") != s(r, "kind")
                || s(ds, "name") != s(r, "name") =>
        {
            errs.push(FieldError::invalid_rendered(
                "spec",
                "{}",
                "must match dataSourceRef",
            ))
        }
        _ => {}
    }
    if let Some(vac) = set(spec, "volumeAttributesClassName")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
    {
        each(
            errs,
            "spec.volumeAttributesClassName",
            vac,
            v::is_dns1123_subdomain(vac),
        );
    }
}

fn data_source_errors(ds: &Value, path: &str, opts: ClaimOptions, errs: &mut Vec<FieldError>) {
    if s(ds, "name").is_empty() {
        errs.push(FieldError::required(format!("{path}.name"), ""));
    }
    let kind = s(ds, "kind");
    if kind.is_empty() {
        errs.push(FieldError::required(format!("{path}.kind"), ""));
    }
    let group = s(ds, "apiGroup");
    if group.is_empty() && kind != "PersistentVolumeClaim" {
        errs.push(FieldError::invalid(
            path,
            kind,
            "must be 'PersistentVolumeClaim' when referencing the default apiGroup",
        ));
    }
    if !group.is_empty() && !opts.any_api_group {
        each(
            errs,
            &format!("{path}.apiGroup"),
            group,
            v::is_dns1123_subdomain(group),
        );
    }
}

/// A claim spec as Go's semantic equality compares it: quantities by value, empty resource
/// lists as none.
fn claim_spec_canonical(spec: &Value) -> Value {
    let mut spec = canonical(spec).unwrap_or_else(|| json!({}));
    if let Some(res) = spec.get_mut("resources").and_then(Value::as_object_mut) {
        for list in ["requests", "limits"] {
            if let Some(l) = res.get_mut(list).and_then(Value::as_object_mut) {
                for q in l.values_mut() {
                    if let Some(c) = quantity(q) {
                        *q = json!(c.to_string());
                    }
                }
            }
            if res
                .get(list)
                .and_then(Value::as_object)
                .is_some_and(Map::is_empty)
            {
                res.remove(list);
            }
        }
    }
    if let Some(m) = spec.as_object_mut() {
        if m.get("resources")
            .and_then(Value::as_object)
            .is_some_and(Map::is_empty)
        {
            m.remove("resources");
        }
    }
    spec
}

/// The comparisons of `ValidatePersistentVolumeClaimUpdate`.
fn claim_update_errors(new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
    let mut old_spec = old["spec"].clone();
    if let Some(m) = old_spec.as_object_mut() {
        normalize_data_sources(m);
    }
    let mut new_clone = new["spec"].clone();
    let mut old_clone = old_spec.clone();
    // The volume name may be set once.
    if s(&old_spec, "volumeName").is_empty() {
        match set(&new_clone, "volumeName").cloned() {
            Some(name) => old_clone["volumeName"] = name,
            None => remove(&mut old_clone, "volumeName"),
        }
    }
    let annotation = |o: &'_ Value| -> Option<String> {
        o["metadata"]["annotations"][STORAGE_CLASS_ANNOTATION]
            .as_str()
            .map(str::to_string)
    };
    let (old_ann, new_ann) = (annotation(old), annotation(new));
    let old_class = set(&old_spec, "storageClassName").and_then(Value::as_str);
    let new_class = set(&new["spec"], "storageClassName").and_then(Value::as_str);
    let from_annotation = old_ann.is_some()
        && old_class.is_none()
        && new_class.is_some_and(|c| Some(c) == old_ann.as_deref())
        && (new_ann.is_none() || new_ann == old_ann);
    if from_annotation {
        remove(&mut new_clone, "storageClassName");
    } else {
        let new_value = new_ann.clone().unwrap_or_default();
        if new_value != old_ann.clone().unwrap_or_default() {
            errs.push(FieldError::invalid(
                format!("metadata.annotations.{STORAGE_CLASS_ANNOTATION}"),
                &new_value,
                v::FIELD_IMMUTABLE_ERROR_MSG,
            ));
        }
        if old_ann.is_none() && old_class.is_none() && new_class.is_some_and(|c| !c.is_empty()) {
            remove(&mut new_clone, "storageClassName");
        }
    }
    let bound = s(&new["status"], "phase") == "Bound";
    if bound {
        if let Some(requests) = new_clone["resources"]
            .get_mut("requests")
            .and_then(Value::as_object_mut)
        {
            let old_storage = old_spec["resources"]["requests"]["storage"].clone();
            requests.insert(
                "storage".into(),
                if old_storage.is_null() {
                    json!("0")
                } else {
                    old_storage
                },
            );
        }
        if set(&new_clone, "volumeAttributesClassName").is_some() {
            match set(&old_clone, "volumeAttributesClassName").cloned() {
                Some(c) => new_clone["volumeAttributesClassName"] = c,
                None => remove(&mut new_clone, "volumeAttributesClassName"),
            }
        }
    }
    let (new_c, old_c) = (
        claim_spec_canonical(&new_clone),
        claim_spec_canonical(&old_clone),
    );
    if new_c != old_c {
        errs.push(FieldError::forbidden(
            "spec",
            format!(
                "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n{}",
                diff(&old_c, &new_c)
            ),
        ));
    }
    let size = |x: &Value| quantity(x).unwrap_or_default();
    let old_size = size(&old_spec["resources"]["requests"]["storage"]);
    let new_size = size(&new["spec"]["resources"]["requests"]["storage"]);
    let status_size = size(&old["status"]["capacity"]["storage"]);
    if new_size < old_size && new_size <= status_size {
        errs.push(FieldError::forbidden(
            "spec.resources.requests.storage",
            "field can not be less than status.capacity",
        ));
    }
    let new_mode = set(&new["spec"], "volumeMode");
    if new_mode != set(&old_spec, "volumeMode") {
        errs.push(FieldError::invalid_rendered(
            "volumeMode",
            json_text(new_mode.unwrap_or(&Value::Null)),
            v::FIELD_IMMUTABLE_ERROR_MSG,
        ));
    }
    let new_vac = set(&new["spec"], "volumeAttributesClassName");
    if new_vac != set(&old_spec, "volumeAttributesClassName")
        && set(&old["status"], "currentVolumeAttributesClassName").is_some()
    {
        match new_vac.and_then(Value::as_str) {
            None => errs.push(FieldError::forbidden(
                "spec.volumeAttributesClassName",
                "update to nil is forbidden when status.currentVolumeAttributesClassName is not nil",
            )),
            Some("") => errs.push(FieldError::forbidden(
                "spec.volumeAttributesClassName",
                "update to empty string is forbidden when status.currentVolumeAttributesClassName is not nil",
            )),
            Some(_) => {}
        }
    }
}

/// `ValidatePersistentVolumeClaimStatusUpdate`.
fn claim_status_errors(obj: &Value, errs: &mut Vec<FieldError>) {
    errs.extend(kube_finalizers(obj));
    if items(&obj["spec"], "accessModes").is_empty() {
        errs.push(FieldError::required("Spec.accessModes", ""));
    }
    let status = &obj["status"];
    for (name, q) in status["capacity"].as_object().into_iter().flatten() {
        if let Some(q) = quantity(q) {
            basic_resource(&format!("status.capacity[{name}]"), &q, errs);
        }
    }
    const STATUSES: &str = "status.allocatedResourceStatuses";
    for (name, st) in status["allocatedResourceStatuses"]
        .as_object()
        .into_iter()
        .flatten()
    {
        claim_resource_key_errors(name, STATUSES, errs);
        if !RESIZE_STATUSES.contains(&st.as_str().unwrap_or_default()) {
            errs.push(FieldError::not_supported(STATUSES, name, &RESIZE_STATUSES));
        }
    }
    const ALLOCATED: &str = "status.allocatedResources";
    for (name, q) in status["allocatedResources"]
        .as_object()
        .into_iter()
        .flatten()
    {
        let before = errs.len();
        claim_resource_key_errors(name, ALLOCATED, errs);
        if errs.len() != before {
            continue;
        }
        if let Some(q) = quantity(q) {
            let path = format!("{ALLOCATED}[{name}]");
            if basic_resource(&path, &q, errs) {
                nonnegative(&path, &q, errs);
            }
        }
    }
}

/// A claim's resource key: a qualified name; a native one must be `storage`.
fn claim_resource_key_errors(name: &str, path: &str, errs: &mut Vec<FieldError>) {
    let msgs = v::is_qualified_name(name);
    if !msgs.is_empty() {
        each(errs, path, name, msgs);
        return;
    }
    if is_native_resource(name) && name != "storage" {
        errs.push(FieldError::not_supported(path, name, &["storage"]));
    }
}

// ---------------------------------------------------------------------------------------------
// Endpoints
// ---------------------------------------------------------------------------------------------

/// kube's `ValidateEndpoints` on create; on update `ValidateEndpointsUpdate` (the metadata
/// update, then the object, whose subsets' errors do not count while the subsets are
/// unchanged).
pub fn endpoints_errors(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = kube_finalizers(obj);
    if old.is_some() {
        errs.extend(kube_finalizers(obj));
    }
    let mut subset_errs = Vec::new();
    for (i, subset) in items(obj, "subsets").iter().enumerate() {
        subset_errors(subset, &format!("subsets[{i}]"), &mut subset_errs);
    }
    let unchanged = old.is_some_and(|o| semantic_eq(obj.get("subsets"), o.get("subsets")));
    if !unchanged {
        errs.extend(subset_errs);
    }
    errs
}

fn subset_errors(subset: &Value, at: &str, errs: &mut Vec<FieldError>) {
    let addresses = items(subset, "addresses");
    let not_ready = items(subset, "notReadyAddresses");
    if addresses.is_empty() && not_ready.is_empty() {
        errs.push(FieldError::required(
            at,
            "must specify `addresses` or `notReadyAddresses`",
        ));
    }
    for (j, a) in addresses.iter().enumerate() {
        endpoint_address_errors(a, &format!("{at}.addresses[{j}]"), errs);
    }
    for (j, a) in not_ready.iter().enumerate() {
        endpoint_address_errors(a, &format!("{at}.notReadyAddresses[{j}]"), errs);
    }
    let ports = items(subset, "ports");
    for (k, p) in ports.iter().enumerate() {
        endpoint_port_errors(p, ports.len() > 1, &format!("{at}.ports[{k}]"), errs);
    }
}

fn endpoint_address_errors(a: &Value, at: &str, errs: &mut Vec<FieldError>) {
    let ip = s(a, "ip");
    let ip_path = format!("{at}.ip");
    let parsed = parse_ip_sloppy(ip);
    if parsed.is_none() {
        errs.push(FieldError::invalid(&ip_path, ip, VALID_IP));
    }
    let hostname = s(a, "hostname");
    if !hostname.is_empty() {
        each(
            errs,
            &format!("{at}.hostname"),
            hostname,
            v::is_dns1123_label(hostname),
        );
    }
    if let Some(node) = set(a, "nodeName").and_then(Value::as_str) {
        each(
            errs,
            &format!("{at}.nodeName"),
            node,
            v::is_dns1123_subdomain(node),
        );
    }
    let Some(addr) = parsed.map(unmapped) else {
        errs.push(FieldError::invalid(
            &ip_path,
            ip,
            "must be a valid IP address",
        ));
        return;
    };
    if addr.is_unspecified() {
        errs.push(FieldError::invalid(
            &ip_path,
            ip,
            format!("may not be unspecified ({ip})"),
        ));
    }
    if addr.is_loopback() {
        super::more_kinds::loopback_warning(ip);
    }
    let (link_local, link_local_multicast) = match addr {
        IpAddr::V4(a) => (a.is_link_local(), a.octets()[..3] == [224, 0, 0]),
        IpAddr::V6(a) => (
            (a.segments()[0] & 0xffc0) == 0xfe80,
            (a.segments()[0] & 0xff0f) == 0xff02,
        ),
    };
    if link_local {
        errs.push(FieldError::invalid(
            &ip_path,
            ip,
            "may not be in the link-local range (169.254.0.0/16, fe80::/10)",
        ));
    }
    if link_local_multicast {
        errs.push(FieldError::invalid(
            &ip_path,
            ip,
            "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)",
        ));
    }
}

fn endpoint_port_errors(p: &Value, require_name: bool, at: &str, errs: &mut Vec<FieldError>) {
    let name = s(p, "name");
    if require_name && name.is_empty() {
        errs.push(FieldError::required(format!("{at}.name"), ""));
    } else if !name.is_empty() {
        each(errs, &format!("{at}.name"), name, v::is_dns1123_label(name));
    }
    let port = p["port"].as_i64().unwrap_or(0);
    if !(1..=65535).contains(&port) {
        errs.push(FieldError::invalid_rendered(
            format!("{at}.port"),
            port.to_string(),
            PORT_RANGE,
        ));
    }
    const PROTOCOLS: [&str; 3] = ["SCTP", "TCP", "UDP"];
    let protocol = s(p, "protocol");
    if protocol.is_empty() {
        errs.push(FieldError::required(format!("{at}.protocol"), ""));
    } else if !PROTOCOLS.contains(&protocol) {
        errs.push(FieldError::not_supported(
            format!("{at}.protocol"),
            protocol,
            &PROTOCOLS,
        ));
    }
    if let Some(app) = set(p, "appProtocol").and_then(Value::as_str) {
        each(
            errs,
            &format!("{at}.appProtocol"),
            app,
            v::is_qualified_name(app),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Strategy effects
// ---------------------------------------------------------------------------------------------

fn remove(obj: &mut Value, key: &str) {
    if let Some(m) = obj.as_object_mut() {
        m.remove(key);
    }
}

/// Remove `obj.parent.key` (nothing is added when `parent` is missing).
fn remove_in(obj: &mut Value, parent: &str, key: &str) {
    if let Some(p) = obj.get_mut(parent) {
        remove(p, key);
    }
}

/// What these kinds' `PrepareForCreate` changes besides the status.
pub fn prepare_for_create(group: &str, kind: &str, obj: &mut Value) {
    if !group.is_empty() || !obj.is_object() {
        return;
    }
    match kind {
        // The `kubernetes` finalizer joins the ones the namespace is created with.
        "Namespace" => {
            let mut finalizers = obj["spec"]["finalizers"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if !finalizers.iter().any(|f| f == "kubernetes") {
                finalizers.push(json!("kubernetes"));
            }
            obj["spec"] = json!({ "finalizers": finalizers });
        }
        // Dynamic kubelet configuration is gone: its fields are dropped.
        "Node" => {
            remove_in(obj, "spec", "configSource");
            remove_in(obj, "status", "config");
        }
        "ServiceAccount" => keep_secret_names(obj),
        "PersistentVolumeClaim" => prepare_claim(obj, None),
        _ => {}
    }
}

/// What these kinds' `PrepareForUpdate` changes besides the status/spec split (`subresource`:
/// the one written, "" for the main resource).
pub fn prepare_for_update(
    group: &str,
    kind: &str,
    new: &mut Value,
    old: &Value,
    subresource: &str,
) {
    if !group.is_empty() || !new.is_object() {
        return;
    }
    match (kind, subresource) {
        ("Node", "") if set(&old["spec"], "configSource").is_none() => {
            remove_in(new, "spec", "configSource")
        }
        ("Node", "status") if set(&old["status"], "config").is_none() => {
            remove_in(new, "status", "config")
        }
        ("ServiceAccount", _) => keep_secret_names(new),
        ("PersistentVolumeClaim", "") => prepare_claim(new, Some(&old["spec"])),
        _ => {}
    }
}

/// kube's `cleanSecretReferences`: a ServiceAccount's secret references keep only the name.
fn keep_secret_names(obj: &mut Value) {
    let secrets = obj.get_mut("secrets").and_then(Value::as_array_mut);
    for secret in secrets.into_iter().flatten() {
        *secret = match set(secret, "name") {
            Some(name) if name != "" => json!({ "name": name }),
            _ => json!({}),
        };
    }
}

/// A claim's data sources as kube's strategy leaves them: a `dataSourceRef` in another
/// namespace dropped (CrossNamespaceVolumeDataSource is off), a `dataSource` that is neither a
/// claim nor a volume snapshot dropped when no `dataSourceRef` accompanies it, then each copied
/// into the other when only one is set; nothing the stored claim already uses is dropped.
fn prepare_claim(obj: &mut Value, old_spec: Option<&Value>) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let old_uses = |k: &str| old_spec.is_some_and(|o| set(o, k).is_some());
    let ref_namespaced = spec
        .get("dataSourceRef")
        .is_some_and(|r| !s(r, "namespace").is_empty());
    if ref_namespaced && !old_uses("dataSourceRef") {
        spec.remove("dataSourceRef");
    }
    let ref_set = spec.get("dataSourceRef").is_some_and(|r| !r.is_null());
    let source_allowed = spec.get("dataSource").is_none_or(|ds| {
        ds.is_null()
            || matches!(
                (s(ds, "kind"), s(ds, "apiGroup")),
                ("PersistentVolumeClaim", "") | ("VolumeSnapshot", "snapshot.storage.k8s.io")
            )
    });
    if !old_uses("dataSource") && !old_uses("dataSourceRef") && !ref_set && !source_allowed {
        spec.remove("dataSource");
    }
    normalize_data_sources(spec);
}

/// kube's `NormalizeDataSources`: `dataSource` and `dataSourceRef` name the same object.
fn normalize_data_sources(spec: &mut Map<String, Value>) {
    let source = spec.get("dataSource").filter(|x| !x.is_null()).cloned();
    let source_ref = spec.get("dataSourceRef").filter(|x| !x.is_null()).cloned();
    let copy = |from: &Value| -> Value {
        let mut to = Map::new();
        if let Some(g) = set(from, "apiGroup") {
            to.insert("apiGroup".into(), g.clone());
        }
        to.insert("kind".into(), json!(s(from, "kind")));
        to.insert("name".into(), json!(s(from, "name")));
        Value::Object(to)
    };
    match (source, source_ref) {
        (Some(ds), None) => {
            spec.insert("dataSourceRef".into(), copy(&ds));
        }
        (None, Some(r)) if s(&r, "namespace").is_empty() => {
            spec.insert("dataSource".into(), copy(&r));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_ip_parsing_allows_leading_zeros_and_mapped_addresses() {
        assert_eq!(
            parse_ip_sloppy("010.001.0.1"),
            Some(IpAddr::V4(Ipv4Addr::new(10, 1, 0, 1)))
        );
        assert!(parse_ip_sloppy("::ffff:010.0.0.1").is_some());
        assert!(parse_ip_sloppy("256.0.0.1").is_none());
        assert!(parse_ip_sloppy("1.2.3").is_none());
        assert_eq!(
            parse_cidr_sloppy("::ffff:10.0.0.0/104"),
            Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 0)))
        );
        assert!(parse_cidr_sloppy("10.0.0.0/33").is_none());
        assert!(parse_cidr_sloppy("10.0.0.0").is_none());
    }

    #[test]
    fn clean_path_finds_the_root() {
        for root in ["/", "//", "/./", "/..", "/a/..", "/a/../../"] {
            assert_eq!(clean_path(root), "/", "{root}");
        }
        for other in ["/a", "a/..", "", "/a/b/.."] {
            assert_ne!(clean_path(other), "/", "{other}");
        }
    }

    #[test]
    fn feature_names_are_upper_camel_case_segments() {
        for ok in ["A", "MyFeature", "MyFeature/mySub", "F1/x2/Y"] {
            assert!(is_feature_name(ok), "{ok}");
        }
        for bad in ["", "a", "My-Feature", "A/", "A//b", "A/1b", "/A"] {
            assert!(!is_feature_name(bad), "{bad}");
        }
    }
}
