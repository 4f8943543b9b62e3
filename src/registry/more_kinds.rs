//! kube-apiserver's validation of StorageClasses, EndpointSlices, CertificateSigningRequests,
//! ResourceQuotas and LimitRanges, with kube's field paths, error types, values and messages in
//! kube's order, and what these kinds' strategies do beyond the generic ones: EndpointSlices
//! drop `deprecatedTopology` (moving a known node name to `nodeName`) and count label changes
//! as a new generation; a CertificateSigningRequest's spec never changes after create and its
//! `/status` keeps the Approved and Denied conditions as they were; a LimitRange created
//! without a name is given one.
//!
//! Errors produced while walking a map (parameters, `hard`, LimitRange items' maps) come out
//! in key order, where kube's order is Go's map order (unspecified).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use base64::Engine as _;
use kubox_apimachinery::quantity::Quantity;
use kubox_apimachinery::validation::{self as v, FieldError};
use serde_json::{json, Map, Value};

/// The kind-specific errors of `obj` (`old`: the object it replaces, on update).
pub fn errors(group: &str, kind: &str, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    match (group, kind) {
        ("storage.k8s.io", "StorageClass") => storage_class_errors(obj, old),
        ("discovery.k8s.io", "EndpointSlice") => endpoint_slice_errors(obj, old),
        ("certificates.k8s.io", "CertificateSigningRequest") => csr_errors(obj, old),
        ("", "ResourceQuota") => resource_quota_errors(obj, old),
        ("", "LimitRange") => limit_range_errors(obj),
        _ => Vec::new(),
    }
}

/// What these kinds' PrepareForCreate does beyond the generic strategy.
pub fn prepare_for_create(group: &str, kind: &str, obj: &mut Value) {
    match (group, kind) {
        ("discovery.k8s.io", "EndpointSlice") => {
            for ep in endpoints_mut(obj) {
                if let Some(m) = ep.as_object_mut() {
                    m.remove("deprecatedTopology");
                }
            }
        }
        ("", "LimitRange") => {
            if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                if meta
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .is_empty()
                {
                    meta.insert("name".into(), json!(uuid::Uuid::new_v4().to_string()));
                }
            }
        }
        _ => {}
    }
}

/// What these kinds' PrepareForUpdate does beyond the generic strategy (which has already
/// split spec and status and counted the generation). `/approval` never gets here.
pub fn prepare_for_update(
    group: &str,
    kind: &str,
    new: &mut Value,
    old: &Value,
    subresource: &str,
) {
    match (group, kind, subresource) {
        ("discovery.k8s.io", "EndpointSlice", _) => prepare_endpoint_slice_update(new, old),
        ("certificates.k8s.io", "CertificateSigningRequest", "") => {
            crate::objects::set_or_remove(new, "spec", old.get("spec").cloned());
        }
        ("certificates.k8s.io", "CertificateSigningRequest", "status") => {
            crate::objects::set_or_remove(new, "spec", old.get("spec").cloned());
            keep_approval_conditions(new, old);
            super::strategy::stamp_conditions(new, old);
        }
        _ => {}
    }
}

/// The update rules that depend on the endpoint written through (`""` for the main resource).
pub fn subresource_update_errors(
    group: &str,
    kind: &str,
    subresource: &str,
    new: &Value,
    old: &Value,
) -> Vec<FieldError> {
    match (group, kind) {
        ("certificates.k8s.io", "CertificateSigningRequest") => {
            csr_update_errors(subresource, new, old)
        }
        _ => Vec::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------

fn s<'a>(x: &'a Value, k: &str) -> &'a str {
    x.get(k).and_then(Value::as_str).unwrap_or_default()
}

fn items(x: &Value) -> &[Value] {
    x.as_array().map(Vec::as_slice).unwrap_or_default()
}

fn strings(x: &Value) -> Vec<&str> {
    items(x)
        .iter()
        .map(|v| v.as_str().unwrap_or_default())
        .collect()
}

/// One Invalid per message, all with the same value.
fn invalid_each(errs: &mut Vec<FieldError>, path: &str, value: &str, msgs: Vec<String>) {
    errs.extend(
        msgs.into_iter()
            .map(|m| FieldError::invalid(path, value, m)),
    );
}

/// A value as Go's JSON encoding prints it in an error (lists, named strings, structs).
fn json_text(x: &Value) -> String {
    serde_json::to_string(x).unwrap_or_default()
}

/// kube's semantic equality as far as JSON shows it: a missing field, `null` and an empty
/// list or map are the same.
fn semantic_eq(a: &Value, b: &Value) -> bool {
    normalized(a) == normalized(b)
}

fn normalized(x: &Value) -> Value {
    match x {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), normalized(v)))
                .filter(|(_, v)| !is_empty(v))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(normalized).collect()),
        other => other.clone(),
    }
}

fn is_empty(x: &Value) -> bool {
    match x {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

fn quantity(x: &Value) -> Option<Quantity> {
    x.as_str().and_then(Quantity::parse)
}

fn base64_bytes(x: &Value) -> Vec<u8> {
    x.as_str()
        .and_then(|t| base64::engine::general_purpose::STANDARD.decode(t).ok())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// StorageClass
// ---------------------------------------------------------------------------------------------

const MAX_PARAMETERS: usize = 512;
const MAX_PARAMETERS_BYTES: usize = 256 * 1024;

/// kube's ValidateStorageClass, and on update ValidateStorageClassUpdate.
fn storage_class_errors(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let provisioner = s(obj, "provisioner");
    if provisioner.is_empty() {
        errs.push(FieldError::required("provisioner", ""));
    } else {
        let lower = provisioner.to_lowercase();
        let msgs = v::is_qualified_name(&lower);
        invalid_each(&mut errs, "provisioner", &lower, msgs);
    }
    if let Some(params) = obj.get("parameters").and_then(Value::as_object) {
        if params.len() > MAX_PARAMETERS {
            errs.push(FieldError::too_long("parameters", MAX_PARAMETERS));
        } else {
            let mut size = 0usize;
            for (k, val) in params {
                if k.is_empty() {
                    errs.push(FieldError::invalid(
                        "parameters",
                        "",
                        "field can not be empty.",
                    ));
                }
                size += k.len() + val.as_str().map_or(0, str::len);
            }
            if size > MAX_PARAMETERS_BYTES {
                errs.push(FieldError::too_long("parameters", MAX_PARAMETERS_BYTES));
            }
        }
    }
    const POLICIES: &[&str] = &["Delete", "Retain"];
    if let Some(policy) = obj.get("reclaimPolicy").and_then(Value::as_str) {
        if !policy.is_empty() && !POLICIES.contains(&policy) {
            errs.push(FieldError::not_supported("reclaimPolicy", policy, POLICIES));
        }
    }
    const MODES: &[&str] = &["Immediate", "WaitForFirstConsumer"];
    match obj.get("volumeBindingMode").and_then(Value::as_str) {
        None => errs.push(FieldError::required("volumeBindingMode", "")),
        Some(mode) if !MODES.contains(&mode) => {
            errs.push(FieldError::not_supported("volumeBindingMode", mode, MODES))
        }
        Some(_) => {}
    }
    allowed_topologies_errors(&obj["allowedTopologies"], &mut errs);
    if let Some(old) = old {
        // Go's reflect.DeepEqual: a stored object never holds an empty map (omitempty), a
        // request's `parameters: {}` does, and the two differ.
        let new_params = obj.get("parameters").filter(|p| !p.is_null());
        let old_params = old
            .get("parameters")
            .filter(|p| p.as_object().is_some_and(|m| !m.is_empty()));
        if new_params != old_params {
            errs.push(FieldError::forbidden(
                "parameters",
                "updates to parameters are forbidden.",
            ));
        }
        if provisioner != s(old, "provisioner") {
            errs.push(FieldError::forbidden(
                "provisioner",
                "updates to provisioner are forbidden.",
            ));
        }
        let opt = |o: &Value, k: &str| o.get(k).and_then(Value::as_str).map(str::to_string);
        if opt(obj, "reclaimPolicy") != opt(old, "reclaimPolicy") {
            errs.push(FieldError::forbidden(
                "reclaimPolicy",
                "updates to reclaimPolicy are forbidden.",
            ));
        }
        let mode = opt(obj, "volumeBindingMode");
        if mode != opt(old, "volumeBindingMode") {
            errs.push(match mode {
                Some(m) => {
                    FieldError::invalid("volumeBindingMode", &m, v::FIELD_IMMUTABLE_ERROR_MSG)
                }
                None => FieldError::invalid_rendered(
                    "volumeBindingMode",
                    "null",
                    v::FIELD_IMMUTABLE_ERROR_MSG,
                ),
            });
        }
    }
    errs
}

/// kube's validateAllowedTopologies: each term's expressions, then terms equal to an earlier
/// one. kube compares each term with a list that starts with one empty placeholder per term,
/// so a term without expressions is reported once per placeholder (and per earlier empty term).
fn allowed_topologies_errors(terms: &Value, errs: &mut Vec<FieldError>) {
    let terms = items(terms);
    let mut earlier: Vec<BTreeMap<&str, BTreeSet<&str>>> = vec![BTreeMap::new(); terms.len()];
    for (i, term) in terms.iter().enumerate() {
        let mut exprs: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for (j, e) in items(&term["matchLabelExpressions"]).iter().enumerate() {
            let at = format!("allowedTopologies[{i}].matchLabelExpressions[{j}]");
            let values = strings(&e["values"]);
            if values.is_empty() {
                errs.push(FieldError::required(format!("{at}.values"), ""));
            }
            let mut set = BTreeSet::new();
            for (k, value) in values.iter().enumerate() {
                if !set.insert(*value) {
                    errs.push(FieldError::duplicate(format!("{at}.values[{k}]"), value));
                }
            }
            let key = s(e, "key");
            invalid_each(errs, &format!("{at}.key"), key, v::is_qualified_name(key));
            if exprs.contains_key(key) {
                errs.push(FieldError::duplicate(format!("{at}.key"), key));
            }
            exprs.insert(key, set);
        }
        for seen in &earlier {
            if *seen == exprs {
                errs.push(FieldError::duplicate(
                    format!("allowedTopologies[{i}].matchLabelExpressions"),
                    "",
                ));
            }
        }
        earlier.push(exprs);
    }
}

// ---------------------------------------------------------------------------------------------
// EndpointSlice
// ---------------------------------------------------------------------------------------------

const VALID_IP: &str = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";
const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

/// kube's ValidateEndpointSlice (and, on update, ValidateEndpointSliceUpdate). Endpoints
/// equal to the old object's are not validated again on update.
fn endpoint_slice_errors(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let ty = s(obj, "addressType");
    if ty.is_empty() {
        errs.push(FieldError::required("addressType", ""));
    } else if !matches!(ty, "IPv4" | "IPv6" | "FQDN") {
        errs.push(FieldError::not_supported(
            "addressType",
            ty,
            &["FQDN", "IPv4", "IPv6"],
        ));
    }
    endpoint_port_errors(&obj["ports"], &mut errs);
    if !old.is_some_and(|o| semantic_eq(&o["endpoints"], &obj["endpoints"])) {
        endpoints_errors(&obj["endpoints"], ty, &mut errs);
    }
    if let Some(old) = old {
        if s(old, "addressType") != ty {
            errs.push(FieldError::invalid(
                "addressType",
                ty,
                v::FIELD_IMMUTABLE_ERROR_MSG,
            ));
        }
    }
    errs
}

fn endpoint_port_errors(ports: &Value, errs: &mut Vec<FieldError>) {
    const MAX_PORTS: usize = 20000;
    const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
    let ports = items(ports);
    if ports.len() > MAX_PORTS {
        errs.push(FieldError::too_many("ports", ports.len(), MAX_PORTS));
        return;
    }
    let mut names = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let at = format!("ports[{i}]");
        let name = s(p, "name");
        if !name.is_empty() {
            invalid_each(errs, &format!("{at}.name"), name, v::is_dns1123_label(name));
        }
        if !names.insert(name) {
            errs.push(FieldError::duplicate(format!("{at}.name"), name));
        }
        match p.get("protocol").and_then(Value::as_str) {
            None => errs.push(FieldError::required(format!("{at}.protocol"), "")),
            Some(proto) if !PROTOCOLS.contains(&proto) => errs.push(FieldError::not_supported(
                format!("{at}.protocol"),
                proto,
                PROTOCOLS,
            )),
            Some(_) => {}
        }
        if let Some(app) = p.get("appProtocol").and_then(Value::as_str) {
            invalid_each(
                errs,
                &format!("{at}.appProtocol"),
                app,
                v::is_qualified_name(app),
            );
        }
    }
}

fn endpoints_errors(endpoints: &Value, ty: &str, errs: &mut Vec<FieldError>) {
    const MAX_ENDPOINTS: usize = 1000;
    const MAX_ADDRESSES: usize = 100;
    let endpoints = items(endpoints);
    if endpoints.len() > MAX_ENDPOINTS {
        errs.push(FieldError::too_many(
            "endpoints",
            endpoints.len(),
            MAX_ENDPOINTS,
        ));
        return;
    }
    for (i, ep) in endpoints.iter().enumerate() {
        let at = format!("endpoints[{i}]");
        let list_path = format!("{at}.addresses");
        let addresses = strings(&ep["addresses"]);
        if addresses.is_empty() {
            errs.push(FieldError::required(
                &list_path,
                "must contain at least 1 address",
            ));
        } else if addresses.len() > MAX_ADDRESSES {
            errs.push(FieldError::too_many(
                &list_path,
                addresses.len(),
                MAX_ADDRESSES,
            ));
        }
        for (k, address) in addresses.iter().enumerate() {
            let path = format!("{list_path}[{k}]");
            match ty {
                "IPv4" | "IPv6" => ip_address_errors(&path, &list_path, address, ty, errs),
                "FQDN" => fqdn_errors(&path, address, errs),
                _ => {}
            }
        }
        if let Some(node) = ep.get("nodeName").and_then(Value::as_str) {
            invalid_each(
                errs,
                &format!("{at}.nodeName"),
                node,
                v::is_dns1123_subdomain(node),
            );
        }
        if let Some(host) = ep.get("hostname").and_then(Value::as_str) {
            invalid_each(
                errs,
                &format!("{at}.hostname"),
                host,
                v::is_dns1123_label(host),
            );
        }
        if let Some(hints) = ep.get("hints").filter(|h| h.is_object()) {
            hints_errors(&format!("{at}.hints"), hints, errs);
        }
    }
}

/// An address of an IPv4 or IPv6 slice: parsed as kube's legacy parser does (leading zeros
/// and IPv4-mapped IPv6 accepted), of the slice's family, and usable as an endpoint.
fn ip_address_errors(
    path: &str,
    list_path: &str,
    address: &str,
    ty: &str,
    errs: &mut Vec<FieldError>,
) {
    let Some(ip) = parse_ip_sloppy(address) else {
        errs.push(FieldError::invalid(path, address, VALID_IP));
        return;
    };
    if ty == "IPv4" && !ip.is_ipv4() {
        errs.push(FieldError::invalid(
            list_path,
            address,
            "must be an IPv4 address",
        ));
    }
    if ty == "IPv6" && ip.is_ipv4() {
        errs.push(FieldError::invalid(
            list_path,
            address,
            "must be an IPv6 address",
        ));
    }
    for msg in endpoint_ip_problems(ip, address) {
        errs.push(FieldError::invalid(path, address, msg));
    }
}

/// Go's legacy `ParseIP` (netutils.ParseIPSloppy): IPv4 octets may have leading zeros; an
/// IPv4-mapped IPv6 address is an IPv4 address.
fn parse_ip_sloppy(text: &str) -> Option<IpAddr> {
    let first = text.bytes().find(|b| *b == b'.' || *b == b':')?;
    let ip = if first == b'.' {
        IpAddr::V4(parse_ipv4_sloppy(text)?)
    } else {
        let v6 = match text.parse::<std::net::Ipv6Addr>() {
            Ok(a) => a,
            // An embedded IPv4 part with leading zeros.
            Err(_) => {
                let (head, tail) = text.rsplit_once(':')?;
                let v4 = parse_ipv4_sloppy(tail)?;
                format!("{head}:{v4}").parse().ok()?
            }
        };
        match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        }
    };
    Some(ip)
}

fn parse_ipv4_sloppy(text: &str) -> Option<std::net::Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = text.split('.');
    for o in &mut octets {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 6 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *o = part
            .parse::<u32>()
            .ok()
            .and_then(|n| u8::try_from(n).ok())?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(octets.into())
}

/// The warning for an endpoint address kube-apiserver would refuse and kubox accepts.
pub fn loopback_warning(ip: &str) {
    crate::warning::add(format!(
        "{ip}: a loopback address, accepted by kubox (kube-apiserver refuses it: may not be in the loopback range (127.0.0.0/8, ::1/128)); it reaches processes on the machine kubox runs on"
    ));
}

/// kube's ValidateEndpointIP: addresses an endpoint may not have (kubox accepts loopback).
fn endpoint_ip_problems(ip: IpAddr, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    if ip.is_unspecified() {
        out.push(format!("may not be unspecified ({text})"));
    }
    // Loopback addresses are where kubox's neighbours live (extension API servers and webhooks
    // on the developer's machine): accepted, unlike kube-apiserver, with a warning saying so.
    if ip.is_loopback() {
        loopback_warning(text);
    }
    let (link_local, link_local_multicast) = match ip {
        IpAddr::V4(a) => (a.is_link_local(), a.octets()[..3] == [224, 0, 0]),
        IpAddr::V6(a) => (
            (a.segments()[0] & 0xffc0) == 0xfe80,
            (a.segments()[0] & 0xff0f) == 0xff02,
        ),
    };
    if link_local {
        out.push("may not be in the link-local range (169.254.0.0/16, fe80::/10)".into());
    }
    if link_local_multicast {
        out.push("may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)".into());
    }
    out
}

/// kube's IsFullyQualifiedDomainName: the first problem only.
fn fqdn_errors(path: &str, name: &str, errs: &mut Vec<FieldError>) {
    if name.is_empty() {
        errs.push(FieldError::required(path, ""));
        return;
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    let msgs = v::is_dns1123_subdomain(name);
    if !msgs.is_empty() {
        errs.push(FieldError::invalid(path, name, msgs.join(",")));
        return;
    }
    if name.split('.').count() < 2 {
        errs.push(FieldError::invalid(
            path,
            name,
            "should be a domain with at least two segments separated by dots",
        ));
        return;
    }
    for label in name.split('.') {
        let msgs = v::is_dns1123_label(label);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(path, label, msgs.join(",")));
            return;
        }
    }
}

fn hints_errors(at: &str, hints: &Value, errs: &mut Vec<FieldError>) {
    const MAX_HINTS: usize = 8;
    type Check = fn(&str) -> Vec<String>;
    let lists: [(&str, Check); 2] = [
        ("forZones", v::is_valid_label_value),
        ("forNodes", v::is_dns1123_subdomain),
    ];
    for (field, check) in lists {
        let path = format!("{at}.{field}");
        let list = items(&hints[field]);
        if list.len() > MAX_HINTS {
            errs.push(FieldError::too_many(&path, list.len(), MAX_HINTS));
            return;
        }
        let mut seen = BTreeSet::new();
        for (j, h) in list.iter().enumerate() {
            let name = s(h, "name");
            let p = format!("{path}[{j}].name");
            if !seen.insert(name) {
                errs.push(FieldError::duplicate(&p, name));
            }
            invalid_each(errs, &p, name, check(name));
        }
    }
}

fn endpoints_mut(obj: &mut Value) -> impl Iterator<Item = &mut Value> {
    obj.get_mut("endpoints")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
}

/// kube's EndpointSlice PrepareForUpdate beyond the generic generation count: a label change
/// is a new generation too; when the endpoints change, `deprecatedTopology` is dropped (v1
/// does not take it), its node name moving to `nodeName` when the old object knew that node.
fn prepare_endpoint_slice_update(new: &mut Value, old: &Value) {
    let labels_changed = !semantic_eq(&new["metadata"]["labels"], &old["metadata"]["labels"]);
    if labels_changed && super::strategy::spec_of(new) == super::strategy::spec_of(old) {
        let gen = old["metadata"]["generation"].as_i64().unwrap_or(1);
        new["metadata"]["generation"] = json!(gen + 1);
    }
    if semantic_eq(&new["endpoints"], &old["endpoints"]) {
        return;
    }
    let known: BTreeSet<&str> = items(&old["endpoints"])
        .iter()
        .filter_map(|ep| ep["deprecatedTopology"][HOSTNAME_LABEL].as_str())
        .collect();
    for ep in endpoints_mut(new) {
        let Some(m) = ep.as_object_mut() else {
            continue;
        };
        let topology = m.remove("deprecatedTopology");
        let node = topology
            .as_ref()
            .and_then(|t| t[HOSTNAME_LABEL].as_str())
            .filter(|n| known.contains(n) && v::is_dns1123_subdomain(n).is_empty());
        if let Some(node) = node {
            if m.get("nodeName").is_none_or(Value::is_null) {
                m.insert("nodeName".into(), json!(node));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// CertificateSigningRequest
// ---------------------------------------------------------------------------------------------

const LEGACY_SIGNER: &str = "kubernetes.io/legacy-unknown";
const USAGES: &[&str] = &[
    "any",
    "cert sign",
    "client auth",
    "code signing",
    "content commitment",
    "crl sign",
    "data encipherment",
    "decipher only",
    "digital signature",
    "email protection",
    "encipher only",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "key agreement",
    "key encipherment",
    "microsoft sgc",
    "netscape sgc",
    "ocsp signing",
    "s/mime",
    "server auth",
    "signing",
    "timestamping",
];
const TRUE_ONLY: &[&str] = &["Approved", "Denied", "Failed"];
const PEM_TYPE: &str = "PEM block type must be CERTIFICATE REQUEST";

/// What an update tolerates because the stored object already has it (kube keeps such
/// objects writable).
#[derive(Default)]
struct Tolerated {
    approved_and_denied: bool,
    legacy_signer: bool,
    duplicate_conditions: bool,
    empty_condition_type: bool,
    any_certificate: bool,
    unknown_usages: bool,
    duplicate_usages: bool,
}

fn has_duplicates(values: &[&str]) -> bool {
    let mut seen = BTreeSet::new();
    values.iter().any(|x| !seen.insert(*x))
}

fn condition_types(obj: &Value) -> Vec<&str> {
    items(&obj["status"]["conditions"])
        .iter()
        .map(|c| s(c, "type"))
        .collect()
}

fn tolerated(new: &Value, old: Option<&Value>) -> Tolerated {
    let Some(old) = old else {
        return Tolerated::default();
    };
    let types = condition_types(old);
    let usages = strings(&old["spec"]["usages"]);
    let old_cert = base64_bytes(&old["status"]["certificate"]);
    Tolerated {
        approved_and_denied: types.contains(&"Approved") && types.contains(&"Denied"),
        legacy_signer: s(&old["spec"], "signerName") == LEGACY_SIGNER,
        duplicate_conditions: has_duplicates(&types),
        empty_condition_type: types.contains(&""),
        any_certificate: base64_bytes(&new["status"]["certificate"]) == old_cert
            || certificate_problem(&old_cert).is_some(),
        unknown_usages: usages.iter().any(|u| !USAGES.contains(u)),
        duplicate_usages: has_duplicates(&usages),
    }
}

/// kube's validateCertificateSigningRequest (create, and every update before the update rules).
fn csr_errors(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let t = tolerated(obj, old);
    let spec = &obj["spec"];
    let mut errs = Vec::new();
    let request = base64_bytes(&spec["request"]);
    if let Some(problem) = request_problem(&request) {
        let rendered = format!(
            "\"{}\"",
            base64::engine::general_purpose::STANDARD.encode(&request)
        );
        errs.push(FieldError::invalid_rendered(
            "spec.request",
            rendered,
            problem,
        ));
    }
    let usages = strings(&spec["usages"]);
    if usages.is_empty() {
        errs.push(FieldError::required("spec.usages", ""));
    }
    if !t.unknown_usages {
        for (i, u) in usages.iter().enumerate() {
            if !USAGES.contains(u) {
                errs.push(FieldError::not_supported(
                    format!("spec.usages[{i}]"),
                    u,
                    USAGES,
                ));
            }
        }
    }
    if !t.duplicate_usages {
        let mut seen = BTreeSet::new();
        for (i, u) in usages.iter().enumerate() {
            if !seen.insert(*u) {
                errs.push(FieldError::duplicate(format!("spec.usages[{i}]"), u));
            }
        }
    }
    let signer = s(spec, "signerName");
    if !t.legacy_signer && signer == LEGACY_SIGNER {
        errs.push(FieldError::invalid(
            "spec.signerName",
            signer,
            "the legacy signerName is not allowed via this API version",
        ));
    } else {
        signer_name_errors("spec.signerName", signer, &mut errs);
    }
    if let Some(secs) = spec
        .get("expirationSeconds")
        .and_then(Value::as_i64)
        .filter(|n| *n < 600)
    {
        errs.push(FieldError::invalid_rendered(
            "spec.expirationSeconds",
            secs.to_string(),
            "may not specify a duration less than 600 seconds (10 minutes)",
        ));
    }
    condition_errors(obj, &t, &mut errs);
    if !t.any_certificate {
        if let Some(problem) = certificate_problem(&base64_bytes(&obj["status"]["certificate"])) {
            errs.push(FieldError::invalid(
                "status.certificate",
                "<certificate data>",
                problem,
            ));
        }
    }
    errs
}

fn condition_errors(obj: &Value, t: &Tolerated, errs: &mut Vec<FieldError>) {
    const MUTUALLY_EXCLUSIVE: &str = "Approved and Denied conditions are mutually exclusive";
    let mut seen = BTreeSet::new();
    let (mut approved, mut denied) = (false, false);
    for (i, c) in items(&obj["status"]["conditions"]).iter().enumerate() {
        let at = format!("status.conditions[{i}]");
        let (ty, status) = (s(c, "type"), s(c, "status"));
        if !t.empty_condition_type && ty.is_empty() {
            errs.push(FieldError::required(format!("{at}.type"), ""));
        }
        let allowed: &[&str] = if TRUE_ONLY.contains(&ty) {
            &["True"]
        } else {
            &["False", "True", "Unknown"]
        };
        if status.is_empty() {
            errs.push(FieldError::required(format!("{at}.status"), ""));
        } else if !allowed.contains(&status) {
            errs.push(FieldError::not_supported(
                format!("{at}.status"),
                status,
                allowed,
            ));
        }
        if !t.approved_and_denied {
            let conflict = match ty {
                "Approved" => {
                    approved = true;
                    denied
                }
                "Denied" => {
                    denied = true;
                    approved
                }
                _ => false,
            };
            if conflict {
                errs.push(FieldError::invalid(
                    "status.conditions",
                    ty,
                    MUTUALLY_EXCLUSIVE,
                ));
            }
        }
        if !t.duplicate_conditions && !seen.insert(ty) {
            errs.push(FieldError::duplicate(format!("{at}.type"), ty));
        }
    }
}

/// kube's ValidateSignerName: `<domain>/<path>`, the domain a DNS name of two labels or more.
fn signer_name_errors(path: &str, name: &str, errs: &mut Vec<FieldError>) {
    const MAX_DOMAIN: usize = v::DNS1123_SUBDOMAIN_MAX_LENGTH;
    if name.is_empty() {
        errs.push(FieldError::required(path, ""));
        return;
    }
    let Some((domain, signer_path)) = name.split_once('/').filter(|(_, p)| !p.contains('/')) else {
        errs.push(FieldError::invalid(
            path,
            name,
            "must be a fully qualified domain and path of the form 'example.com/signer-name'",
        ));
        return;
    };
    if domain.len() > MAX_DOMAIN {
        errs.push(FieldError::too_long(path, MAX_DOMAIN));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if let Some((label, msgs)) = labels
        .iter()
        .map(|l| (*l, v::is_dns1123_label(l)))
        .find(|(_, m)| !m.is_empty())
    {
        for m in msgs {
            errs.push(FieldError::invalid(
                path,
                domain,
                format!("validating label {}: {m}", v::go_quote(label)),
            ));
        }
    }
    if labels.len() < 2 {
        errs.push(FieldError::invalid(
            path,
            domain,
            "should be a domain with at least two segments separated by dots",
        ));
    }
    if let Some((label, msgs)) = signer_path
        .split('.')
        .map(|l| (l, v::is_dns1123_subdomain(l)))
        .find(|(_, m)| !m.is_empty())
    {
        for m in msgs {
            errs.push(FieldError::invalid(
                path,
                signer_path,
                format!("validating label {}: {m}", v::go_quote(label)),
            ));
        }
    }
    let max = MAX_DOMAIN + v::DNS1123_SUBDOMAIN_MAX_LENGTH + 1;
    if name.len() > max {
        errs.push(FieldError::too_long(path, max));
    }
}

/// Why `spec.request` is not a PEM certificate request signed by its own key (kube reads the
/// first PEM block only).
fn request_problem(pem: &[u8]) -> Option<String> {
    use x509_parser::prelude::{FromDer, X509CertificationRequest};
    let block = match pem_decode(pem) {
        Some((b, _)) if b.kind == b"CERTIFICATE REQUEST" => b,
        _ => return Some(PEM_TYPE.into()),
    };
    let (rest, csr) = match X509CertificationRequest::from_der(&block.bytes) {
        Ok(parsed) => parsed,
        Err(_) => return Some("x509: malformed certificate request".into()),
    };
    if !rest.is_empty() {
        return Some("asn1: syntax error: trailing data".into());
    }
    if csr.verify_signature().is_err() {
        let alg = csr.signature_algorithm.algorithm.to_id_string();
        return Some(
            if alg.starts_with("1.2.840.10045.") {
                "x509: ECDSA verification failure"
            } else if alg == "1.3.101.112" {
                "x509: Ed25519 verification failure"
            } else {
                "crypto/rsa: verification error"
            }
            .into(),
        );
    }
    None
}

/// kube's validateCertificate: `status.certificate` holds CERTIFICATE PEM blocks only,
/// without headers, each holding certificates (text around the blocks is ignored).
fn certificate_problem(pem: &[u8]) -> Option<String> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    if pem.is_empty() {
        return None;
    }
    let mut data = pem;
    let mut blocks = 0;
    while let Some((block, rest)) = pem_decode(data) {
        if block.kind != b"CERTIFICATE" {
            return Some(format!(
                "only CERTIFICATE PEM blocks are allowed, found {}",
                v::go_quote(&String::from_utf8_lossy(&block.kind))
            ));
        }
        if block.headers {
            return Some("no PEM block headers are permitted".into());
        }
        blocks += 1;
        let mut der = block.bytes.as_slice();
        let mut certs = 0;
        while !der.is_empty() {
            match X509Certificate::from_der(der) {
                Ok((rest, _)) => {
                    der = rest;
                    certs += 1;
                }
                Err(_) => return Some("x509: malformed certificate".into()),
            }
        }
        if certs == 0 {
            return Some("found CERTIFICATE PEM block containing 0 certificates".into());
        }
        data = rest;
    }
    if blocks == 0 {
        return Some("must contain at least one CERTIFICATE PEM block".into());
    }
    None
}

/// One PEM block as Go's `pem.Decode` finds it.
struct PemBlock {
    kind: Vec<u8>,
    headers: bool,
    bytes: Vec<u8>,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A line without its `\n` (and one `\r`), trailing spaces and tabs trimmed; and the rest.
fn get_line(data: &[u8]) -> (&[u8], &[u8]) {
    let (mut line, rest) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &data[data.len()..]),
    };
    if data.len() > line.len() {
        line = line.strip_suffix(b"\r").unwrap_or(line);
    }
    while let Some(l) = line.strip_suffix(b" ").or_else(|| line.strip_suffix(b"\t")) {
        line = l;
    }
    (line, rest)
}

/// Go's `pem.Decode`: the first well-formed block (a malformed one is skipped) and what
/// follows it.
fn pem_decode(data: &[u8]) -> Option<(PemBlock, &[u8])> {
    const BEGIN: &[u8] = b"\n-----BEGIN ";
    const END: &[u8] = b"\n-----END ";
    const DASHES: &[u8] = b"-----";
    let mut rest = data;
    loop {
        if rest.starts_with(&BEGIN[1..]) {
            rest = &rest[BEGIN.len() - 1..];
        } else if let Some(i) = find(rest, BEGIN) {
            rest = &rest[i + BEGIN.len()..];
        } else {
            return None;
        }
        let (type_line, after) = get_line(rest);
        rest = after;
        let Some(kind) = type_line.strip_suffix(DASHES) else {
            continue;
        };
        let mut headers = false;
        loop {
            if rest.is_empty() {
                return None;
            }
            let (line, next) = get_line(rest);
            if !line.contains(&b':') {
                break;
            }
            headers = true;
            rest = next;
        }
        let (end, trailer_at) = if !headers && rest.starts_with(&END[1..]) {
            (0, END.len() - 1)
        } else {
            match find(rest, END) {
                Some(i) => (i, i + END.len()),
                None => continue,
            }
        };
        let trailer = &rest[trailer_at..];
        let trailer_len = kind.len() + DASHES.len();
        if trailer.len() < trailer_len {
            continue;
        }
        let (trailer, rest_of_line) = trailer.split_at(trailer_len);
        if !trailer.starts_with(kind) || !trailer.ends_with(DASHES) {
            continue;
        }
        if !get_line(rest_of_line).0.is_empty() {
            continue;
        }
        let encoded: Vec<u8> = rest[..end]
            .iter()
            .copied()
            .filter(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
            .collect();
        let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
            continue;
        };
        let (_, after) = get_line(&rest[end + END.len() - 1..]);
        return Some((
            PemBlock {
                kind: kind.to_vec(),
                headers,
                bytes,
            },
            after,
        ));
    }
}

fn conditions_of<'a>(obj: &'a Value, ty: &str) -> Vec<&'a Value> {
    items(&obj["status"]["conditions"])
        .iter()
        .filter(|c| s(c, "type") == ty)
        .collect()
}

/// kube's csrStatusStrategy: the Approved and Denied conditions stay as they were, position
/// by position, when the request has as many of them (a different count is refused by
/// validation).
fn keep_approval_conditions(new: &mut Value, old: &Value) {
    for ty in ["Approved", "Denied"] {
        let olds: Vec<Value> = conditions_of(old, ty).into_iter().cloned().collect();
        let Some(conds) = new
            .get_mut("status")
            .and_then(|st| st.get_mut("conditions"))
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        let mine: Vec<&mut Value> = conds.iter_mut().filter(|c| s(c, "type") == ty).collect();
        if mine.len() == olds.len() {
            for (c, o) in mine.into_iter().zip(olds) {
                *c = o;
            }
        }
    }
}

/// kube's update rules of a CertificateSigningRequest: conditions that may not go away,
/// approval conditions only through `/approval`, the certificate only through `/status`
/// and only once.
fn csr_update_errors(sub: &str, new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for ty in TRUE_ONLY {
        if conditions_of(new, ty).len() < conditions_of(old, ty).len() {
            errs.push(FieldError::forbidden(
                "status.conditions",
                format!(
                    "updates may not remove a condition of type {}",
                    v::go_quote(ty)
                ),
            ));
        }
    }
    if sub != "approval" {
        for ty in ["Approved", "Denied"] {
            let (olds, news) = (conditions_of(old, ty), conditions_of(new, ty));
            if news.len() > olds.len() {
                errs.push(FieldError::forbidden(
                    "status.conditions",
                    format!(
                        "updates may not add a condition of type {}",
                        v::go_quote(ty)
                    ),
                ));
            } else if news.len() == olds.len()
                && !olds.iter().zip(&news).all(|(a, b)| semantic_eq(a, b))
            {
                errs.push(FieldError::forbidden(
                    "status.conditions",
                    format!(
                        "updates may not modify a condition of type {}\n{}",
                        v::go_quote(ty),
                        line_diff(&olds, &news)
                    ),
                ));
            }
        }
    }
    let cert = |o: &Value| base64_bytes(&o["status"]["certificate"]);
    let old_cert = cert(old);
    if cert(new) != old_cert {
        if sub != "status" {
            errs.push(FieldError::forbidden(
                "status.certificate",
                "updates may not set certificate content",
            ));
        } else if !old_cert.is_empty() {
            errs.push(FieldError::forbidden(
                "status.certificate",
                "updates may not modify existing certificate content",
            ));
        }
    }
    errs
}

/// The lines of `old` and `new` (pretty JSON) that differ, `-` and `+` prefixed.
fn line_diff(old: &[&Value], new: &[&Value]) -> String {
    let lines = |x: &[&Value]| -> Vec<String> {
        serde_json::to_string_pretty(x)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    };
    let (a, b) = (lines(old), lines(new));
    let mut out: Vec<String> = a
        .iter()
        .filter(|l| !b.contains(l))
        .map(|l| format!("-{l}"))
        .collect();
    out.extend(b.iter().filter(|l| !a.contains(l)).map(|l| format!("+{l}")));
    out.join("\n")
}

// ---------------------------------------------------------------------------------------------
// Resource names (ResourceQuota, LimitRange)
// ---------------------------------------------------------------------------------------------

const STANDARD_QUOTA_RESOURCES: &[&str] = &[
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.storage",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
    "resourcequotas",
    "services",
    "replicationcontrollers",
    "secrets",
    "persistentvolumeclaims",
    "configmaps",
    "services.nodeports",
    "services.loadbalancers",
];
const INTEGER_RESOURCES: &[&str] = &[
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

fn is_standard_quota_resource(name: &str) -> bool {
    STANDARD_QUOTA_RESOURCES.contains(&name)
        || name.starts_with("hugepages-")
        || name.starts_with("requests.hugepages-")
}

fn is_standard_resource(name: &str) -> bool {
    name == "storage" || is_standard_quota_resource(name)
}

/// kube's IsNativeResource: unprefixed, or under `kubernetes.io/`.
fn is_native_resource(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

fn is_extended_resource(name: &str) -> bool {
    !is_native_resource(name)
        && !name.starts_with("requests.")
        && v::is_qualified_name(&format!("requests.{name}")).is_empty()
}

fn is_integer_resource(name: &str) -> bool {
    INTEGER_RESOURCES.contains(&name) || is_extended_resource(name)
}

/// kube's validateResourceName.
fn resource_name_errors(path: &str, name: &str, errs: &mut Vec<FieldError>) {
    let msgs = v::is_qualified_name(name);
    if !msgs.is_empty() {
        invalid_each(errs, path, name, msgs);
        return;
    }
    if !name.contains('/') && !is_standard_resource(name) {
        errs.push(FieldError::invalid(
            path,
            name,
            "must be a standard resource type or fully qualified",
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// ResourceQuota
// ---------------------------------------------------------------------------------------------

const QUOTA_SCOPES: &[&str] = &[
    "Terminating",
    "NotTerminating",
    "BestEffort",
    "NotBestEffort",
    "PriorityClass",
    "CrossNamespacePodAffinity",
    "VolumeAttributesClass",
];
const CONFLICTING_SCOPES: [[&str; 2]; 2] = [
    ["BestEffort", "NotBestEffort"],
    ["Terminating", "NotTerminating"],
];

fn scope_valid_for(scope: &str, resource: &str) -> bool {
    const POD_COMPUTE: &[&str] = &[
        "pods",
        "cpu",
        "memory",
        "limits.cpu",
        "limits.memory",
        "requests.cpu",
        "requests.memory",
    ];
    match scope {
        "Terminating"
        | "NotTerminating"
        | "NotBestEffort"
        | "PriorityClass"
        | "CrossNamespacePodAffinity" => POD_COMPUTE.contains(&resource),
        "BestEffort" => resource == "pods",
        "VolumeAttributesClass" => {
            matches!(resource, "persistentvolumeclaims" | "requests.storage")
        }
        _ => true,
    }
}

/// kube's ValidateResourceQuota (spec, then status) and, on update, the immutable scopes.
fn resource_quota_errors(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = &obj["spec"];
    quota_map_errors("spec.hard", &spec["hard"], &mut errs);
    let hard: Vec<&str> = spec["hard"]
        .as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let scopes = strings(&spec["scopes"]);
    let scopes_text = json_text(&spec["scopes"]);
    if !scopes.is_empty() {
        for scope in &scopes {
            if !QUOTA_SCOPES.contains(scope) {
                errs.push(FieldError::invalid_rendered(
                    "spec.scopes",
                    &scopes_text,
                    "unsupported scope",
                ));
            }
            for r in &hard {
                if is_standard_quota_resource(r) && !scope_valid_for(scope, r) {
                    errs.push(FieldError::invalid_rendered(
                        "spec.scopes",
                        &scopes_text,
                        "unsupported scope applied to resource",
                    ));
                }
            }
        }
        for pair in CONFLICTING_SCOPES {
            if pair.iter().all(|p| scopes.contains(p)) {
                errs.push(FieldError::invalid_rendered(
                    "spec.scopes",
                    &scopes_text,
                    "conflicting scopes",
                ));
            }
        }
    }
    if let Some(selector) = spec.get("scopeSelector").filter(|x| x.is_object()) {
        scope_selector_errors(selector, &hard, &scopes_text, &mut errs);
    }
    quota_map_errors("status.hard", &obj["status"]["hard"], &mut errs);
    quota_map_errors("status.used", &obj["status"]["used"], &mut errs);
    if let Some(old) = old {
        let set = |o: &Value| -> BTreeSet<String> {
            strings(&o["spec"]["scopes"])
                .into_iter()
                .map(str::to_string)
                .collect()
        };
        if set(obj) != set(old) {
            errs.push(FieldError::invalid_rendered(
                "spec.scopes",
                &scopes_text,
                v::FIELD_IMMUTABLE_ERROR_MSG,
            ));
        }
    }
    errs
}

/// kube's validateResourceQuotaResourceName and ValidateResourceQuantityValue over a map.
fn quota_map_errors(path: &str, map: &Value, errs: &mut Vec<FieldError>) {
    for (name, value) in map.as_object().into_iter().flatten() {
        let at = format!("{path}[{name}]");
        resource_name_errors(&at, name, errs);
        if !name.contains('/') && !is_standard_quota_resource(name) {
            errs.push(FieldError::invalid(
                &at,
                name,
                "must be a standard resource for quota",
            ));
        }
        let Some(q) = quantity(value) else {
            continue;
        };
        if q.is_negative() {
            errs.push(FieldError::invalid(
                &at,
                &q.to_string(),
                v::IS_NEGATIVE_ERROR_MSG,
            ));
        }
        if is_integer_resource(name) && q.scaled_value(-3) % 1000 != 0 {
            errs.push(FieldError::invalid(
                &at,
                &q.to_string(),
                "must be an integer",
            ));
        }
    }
}

/// kube's validateScopedResourceSelectorRequirement (paths not indexed, as kube's).
fn scope_selector_errors(
    selector: &Value,
    hard: &[&str],
    scopes_text: &str,
    errs: &mut Vec<FieldError>,
) {
    const PATH: &str = "spec.scopeSelector.matchExpressions";
    const EXISTS_ONLY: &str = "must be 'Exists' when scope is any of ResourceQuotaScopeTerminating, ResourceQuotaScopeNotTerminating, ResourceQuotaScopeBestEffort, ResourceQuotaScopeNotBestEffort or ResourceQuotaScopeCrossNamespacePodAffinity";
    let mut seen = BTreeSet::new();
    for req in items(&selector["matchExpressions"]) {
        let scope = s(req, "scopeName");
        let op = s(req, "operator");
        if !QUOTA_SCOPES.contains(&scope) {
            errs.push(FieldError::invalid(
                format!("{PATH}.scopeName"),
                scope,
                "unsupported scope",
            ));
        }
        for r in hard {
            if is_standard_quota_resource(r) && !scope_valid_for(scope, r) {
                errs.push(FieldError::invalid_rendered(
                    PATH,
                    go_scope_selector(selector),
                    "unsupported scope applied to resource",
                ));
            }
        }
        if matches!(
            scope,
            "BestEffort"
                | "NotBestEffort"
                | "Terminating"
                | "NotTerminating"
                | "CrossNamespacePodAffinity"
        ) && op != "Exists"
        {
            errs.push(FieldError::invalid(
                format!("{PATH}.operator"),
                op,
                EXISTS_ONLY,
            ));
        }
        let values = items(&req["values"]);
        match op {
            "In" | "NotIn" if values.is_empty() => errs.push(FieldError::required(
                format!("{PATH}.values"),
                "must be at least one value when `operator` is 'In' or 'NotIn' for scope selector",
            )),
            "Exists" | "DoesNotExist" if !values.is_empty() => errs
                .push(FieldError::invalid_rendered(
                format!("{PATH}.values"),
                json_text(&req["values"]),
                "must be no value when `operator` is 'Exist' or 'DoesNotExist' for scope selector",
            )),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            _ => errs.push(FieldError::invalid(
                format!("{PATH}.operator"),
                op,
                "not a valid selector operator",
            )),
        }
        seen.insert(scope);
    }
    for pair in CONFLICTING_SCOPES {
        if pair.iter().all(|p| seen.contains(p)) {
            errs.push(FieldError::invalid_rendered(
                PATH,
                scopes_text,
                "conflicting scopes",
            ));
        }
    }
}

/// A scope selector as Go's JSON encoding prints kube's internal struct (Go field names).
fn go_scope_selector(selector: &Value) -> String {
    let exprs = match selector.get("matchExpressions").and_then(Value::as_array) {
        None => Value::Null,
        Some(list) => Value::Array(
            list.iter()
                .map(|e| {
                    let mut m = Map::new();
                    m.insert("ScopeName".into(), json!(s(e, "scopeName")));
                    m.insert("Operator".into(), json!(s(e, "operator")));
                    m.insert(
                        "Values".into(),
                        e.get("values").cloned().unwrap_or(Value::Null),
                    );
                    Value::Object(m)
                })
                .collect(),
        ),
    };
    // serde_json orders keys; write them in the struct's field order.
    let fields: Vec<String> = match &exprs {
        Value::Array(list) => list
            .iter()
            .map(|e| {
                format!(
                    "{{\"ScopeName\":{},\"Operator\":{},\"Values\":{}}}",
                    json_text(&e["ScopeName"]),
                    json_text(&e["Operator"]),
                    json_text(&e["Values"])
                )
            })
            .collect(),
        _ => return "{\"MatchExpressions\":null}".into(),
    };
    format!("{{\"MatchExpressions\":[{}]}}", fields.join(","))
}

// ---------------------------------------------------------------------------------------------
// LimitRange
// ---------------------------------------------------------------------------------------------

/// kube's validateLimitRangeResourceName: Pod and Container items take container resources.
fn limit_resource_name_errors(ty: &str, path: &str, name: &str, errs: &mut Vec<FieldError>) {
    resource_name_errors(path, name, errs);
    if !matches!(ty, "Pod" | "Container") {
        return;
    }
    if !name.contains('/') {
        let container = matches!(name, "cpu" | "memory" | "ephemeral-storage")
            || name.starts_with("hugepages-");
        if !container {
            errs.push(FieldError::invalid(
                path,
                name,
                "must be a standard resource for containers",
            ));
        }
    } else if !is_native_resource(name) && !is_extended_resource(name) {
        errs.push(FieldError::invalid(
            path,
            name,
            "doesn't follow extended resource name standard",
        ));
    }
}

/// kube's ValidateLimitRange (create and update alike).
fn limit_range_errors(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut types = BTreeSet::new();
    for (i, item) in items(&obj["spec"]["limits"]).iter().enumerate() {
        let at = format!("spec.limits[{i}]");
        let ty = s(item, "type");
        let type_path = format!("{at}.type");
        let msgs = v::is_qualified_name(ty);
        if !msgs.is_empty() {
            invalid_each(&mut errs, &type_path, ty, msgs);
        } else if !ty.contains('/') && !matches!(ty, "Pod" | "Container" | "PersistentVolumeClaim")
        {
            errs.push(FieldError::invalid(
                &type_path,
                ty,
                "must be a standard limit type or fully qualified",
            ));
        }
        if !types.insert(ty) {
            errs.push(FieldError::duplicate(&type_path, ty));
        }
        let mut keys: BTreeSet<&str> = BTreeSet::new();
        let read = |field: &str, errs: &mut Vec<FieldError>| -> BTreeMap<String, Quantity> {
            let mut out = BTreeMap::new();
            for (name, value) in item[field].as_object().into_iter().flatten() {
                limit_resource_name_errors(ty, &format!("{at}.{field}[{name}]"), name, errs);
                if let Some(q) = quantity(value) {
                    out.insert(name.clone(), q);
                }
            }
            out
        };
        let max = read("max", &mut errs);
        let min = read("min", &mut errs);
        let (default, default_request) = if ty == "Pod" {
            for field in ["default", "defaultRequest"] {
                if item[field].as_object().is_some_and(|m| !m.is_empty()) {
                    errs.push(FieldError::forbidden(
                        format!("{at}.{field}"),
                        "may not be specified when `type` is 'Pod'",
                    ));
                }
            }
            (BTreeMap::new(), BTreeMap::new())
        } else {
            let d = read("default", &mut errs);
            (d, read("defaultRequest", &mut errs))
        };
        if ty == "PersistentVolumeClaim" {
            let has = |f: &str| item[f].get("storage").is_some();
            if !has("min") && !has("max") {
                errs.push(FieldError::required(
                    format!("{at}.limits"),
                    "either minimum or maximum storage value is required, but neither was provided",
                ));
            }
        }
        let ratios = read("maxLimitRequestRatio", &mut errs);
        for field in ["max", "min", "maxLimitRequestRatio"] {
            keys.extend(
                item[field]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, _)| k.as_str()),
            );
        }
        if ty != "Pod" {
            for field in ["default", "defaultRequest"] {
                keys.extend(
                    item[field]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(k, _)| k.as_str()),
                );
            }
        }
        for k in keys {
            let limits = Limits {
                min: min.get(k),
                max: max.get(k),
                default: default.get(k),
                default_request: default_request.get(k),
                ratio: ratios.get(k),
            };
            limits.errors(&at, k, &mut errs);
        }
    }
    errs
}

/// One resource's bounds in one LimitRange item.
struct Limits<'a> {
    min: Option<&'a Quantity>,
    max: Option<&'a Quantity>,
    default: Option<&'a Quantity>,
    default_request: Option<&'a Quantity>,
    ratio: Option<&'a Quantity>,
}

impl Limits<'_> {
    fn errors(&self, at: &str, k: &str, errs: &mut Vec<FieldError>) {
        let path = |field: &str| format!("{at}.{field}[{k}]");
        let mut push = |field: &str, value: &Quantity, msg: String| {
            errs.push(FieldError::invalid(path(field), &value.to_string(), msg));
        };
        if let (Some(min), Some(max)) = (self.min, self.max) {
            if min > max {
                push(
                    "min",
                    min,
                    format!("min value {min} is greater than max value {max}"),
                );
            }
        }
        if let (Some(dr), Some(min)) = (self.default_request, self.min) {
            if min > dr {
                push(
                    "defaultRequest",
                    dr,
                    format!("min value {min} is greater than default request value {dr}"),
                );
            }
        }
        if let (Some(dr), Some(max)) = (self.default_request, self.max) {
            if dr > max {
                push(
                    "defaultRequest",
                    dr,
                    format!("default request value {dr} is greater than max value {max}"),
                );
            }
        }
        if let (Some(dr), Some(d)) = (self.default_request, self.default) {
            if dr > d {
                push(
                    "defaultRequest",
                    dr,
                    format!("default request value {dr} is greater than default limit value {d}"),
                );
            }
        }
        if let (Some(d), Some(min)) = (self.default, self.min) {
            if min > d {
                push(
                    "default",
                    min,
                    format!("min value {min} is greater than default value {d}"),
                );
            }
        }
        if let (Some(d), Some(max)) = (self.default, self.max) {
            if d > max {
                push(
                    "default",
                    max,
                    format!("default value {d} is greater than max value {max}"),
                );
            }
        }
        if let Some(ratio) = self.ratio {
            if *ratio < Quantity::from_int(1) {
                push(
                    "maxLimitRequestRatio",
                    ratio,
                    format!("ratio {ratio} is less than 1"),
                );
            }
            if let (Some(min), Some(max)) = (self.min, self.max) {
                // kube compares milli-values when all three fit, whole values otherwise.
                const MAX_MILLI: i64 = i64::MAX / 1000;
                let milli = [ratio, min, max]
                    .iter()
                    .all(|q| q.scaled_value(0) <= MAX_MILLI);
                let val = |q: &Quantity| {
                    if milli {
                        q.scaled_value(-3) as f64 / 1000.0
                    } else {
                        q.scaled_value(0) as f64
                    }
                };
                let limit = val(max) / val(min);
                if val(ratio) > limit {
                    push(
                        "maxLimitRequestRatio",
                        ratio,
                        format!("ratio {ratio} is greater than max/min = {limit:.6}"),
                    );
                }
            }
        }
        let overcommit = is_native_resource(k) && !k.starts_with("hugepages-");
        if let (false, Some(d), Some(dr)) = (overcommit, self.default, self.default_request) {
            if d != dr {
                push(
                    "defaultRequest",
                    dr,
                    format!("default value {d} must equal to defaultRequest value {dr} in {k}"),
                );
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn legacy_ip_parsing_takes_leading_zeros_and_mapped_addresses() {
        assert_eq!(
            parse_ip_sloppy("010.001.002.003"),
            Some("10.1.2.3".parse().unwrap())
        );
        assert_eq!(
            parse_ip_sloppy("::ffff:1.2.3.4"),
            Some("1.2.3.4".parse().unwrap())
        );
        assert_eq!(
            parse_ip_sloppy("2001:db8::1"),
            Some("2001:db8::1".parse().unwrap())
        );
        for bad in [
            "",
            "1.2.3",
            "1.2.3.256",
            "1.2.3.4.5",
            "a.b.c.d",
            "fe80::1%eth0",
            "1.2.3.4:80",
        ] {
            assert_eq!(parse_ip_sloppy(bad), None, "{bad}");
        }
    }

    #[test]
    fn pem_blocks_are_found_as_go_finds_them() {
        let text = b"junk\n-----BEGIN X-----\nAQID\n-----END X-----\ntrailer";
        let (b, rest) = pem_decode(text).unwrap();
        assert_eq!(
            (b.kind.as_slice(), b.bytes.as_slice()),
            (&b"X"[..], &[1u8, 2, 3][..])
        );
        assert!(!b.headers);
        assert_eq!(rest, b"trailer");
        let headed = b"-----BEGIN X-----\nProc-Type: 4\n\nAQID\n-----END X-----\n";
        assert!(pem_decode(headed).unwrap().0.headers);
        // A block whose END names another type is skipped.
        assert!(pem_decode(b"-----BEGIN X-----\nAQID\n-----END Y-----\n").is_none());
        assert!(pem_decode(b"no pem here").is_none());
    }
}
