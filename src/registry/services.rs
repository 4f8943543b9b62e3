//! Services as kube-apiserver's service registry treats them: what an update keeps of the
//! allocated fields, and the spec validated as kube validates it (`validateService`,
//! `ValidateServiceUpdate`, and the registry's early clusterIPs/ipFamilies checks): field paths,
//! error types, values and messages as kube reports them, in kube's order.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use kubox_apimachinery::validation::{self, FieldError};
use serde_json::Value;

const PORT_RANGE: &str = "must be between 1 and 65535, inclusive";
const ONLY_LOAD_BALANCER: &str = "may only be used when `type` is 'LoadBalancer'";
const VALID_IP: &str = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";
const VALID_CIDR: &str = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)";

/// kube's service REST `BeginUpdate`: an update that leaves out what was allocated keeps it —
/// the cluster IPs (and their families and policy) unless either side is ExternalName, node
/// ports of ports with the same name while both sides use them, the health check node port.
pub fn keep_allocated(new: &mut Value, old: &Value) {
    let (ty, old_ty) = (
        str_of(&new["spec"], "type").to_string(),
        str_of(&old["spec"], "type").to_string(),
    );
    let old_spec = &old["spec"];
    let Some(spec) = new.get_mut("spec").filter(|s| s.is_object()) else {
        return;
    };
    if ty != "ExternalName" && old_ty != "ExternalName" {
        let empty = |v: &Value, k: &str| match v.get(k) {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s.is_empty(),
            Some(Value::Array(a)) => a.is_empty(),
            _ => false,
        };
        if empty(spec, "clusterIP") && empty(spec, "clusterIPs") {
            for k in ["clusterIP", "clusterIPs"] {
                if let Some(v) = old_spec.get(k) {
                    spec[k] = v.clone();
                }
            }
        } else if empty(spec, "clusterIPs") && spec.get("clusterIP") == old_spec.get("clusterIP") {
            if let Some(v) = old_spec.get("clusterIPs") {
                spec["clusterIPs"] = v.clone();
            }
        }
        for k in ["ipFamilies", "ipFamilyPolicy"] {
            if empty(spec, k) {
                if let Some(v) = old_spec.get(k) {
                    spec[k] = v.clone();
                }
            }
        }
    }
    let node_ports = |t: &str| t == "NodePort" || t == "LoadBalancer";
    if node_ports(&ty) && node_ports(&old_ty) {
        // Sets and maps, here and in the checks below: a service's ports are matched and
        // checked for repeats in linear time.
        let used: HashSet<i64> = spec["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["nodePort"].as_i64())
            .collect();
        // The old port of each name (the first), and its node port.
        let mut old_ports: HashMap<&str, Option<i64>> = HashMap::new();
        for o in old_spec["ports"].as_array().into_iter().flatten() {
            old_ports
                .entry(str_of(o, "name"))
                .or_insert(o["nodePort"].as_i64());
        }
        for p in spec["ports"].as_array_mut().into_iter().flatten() {
            if p["nodePort"].as_i64().unwrap_or(0) != 0 {
                continue;
            }
            let old_port = old_ports.get(str_of(p, "name")).copied().flatten();
            if let Some(np) = old_port.filter(|np| !used.contains(np)) {
                p["nodePort"] = Value::from(np);
            }
        }
    }
    let health_check = |s: &Value| {
        str_of(s, "type") == "LoadBalancer" && str_of(s, "externalTrafficPolicy") == "Local"
    };
    if health_check(spec)
        && health_check(old_spec)
        && spec["healthCheckNodePort"].as_i64().unwrap_or(0) == 0
    {
        if let Some(v) = old_spec.get("healthCheckNodePort") {
            spec["healthCheckNodePort"] = v.clone();
        }
    }
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

fn json_text(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// The clusterIPs a create validates: kube's registry copies a lone `clusterIP` into
/// `clusterIPs` before it validates.
fn cluster_ips(spec: &Value) -> Vec<String> {
    let ips: Vec<String> = strings(&spec["clusterIPs"])
        .into_iter()
        .map(str::to_string)
        .collect();
    match str_of(spec, "clusterIP") {
        ip if ips.is_empty() && !ip.is_empty() => vec![ip.to_string()],
        _ => ips,
    }
}

fn is_headless(ips: &[String]) -> bool {
    matches!(ips, [only] if only == "None")
}

/// Errors of a Service, as kube reports them on create (and, before the update-only checks, on
/// update). The clusterIPs/ipFamilies checks the registry runs first fail the request alone.
pub fn service_errors(obj: &Value) -> Vec<FieldError> {
    let spec = &obj["spec"];
    let ty = str_of(spec, "type");
    let ips = cluster_ips(spec);
    if ty != "ExternalName" {
        let early = cluster_ip_errors(spec, &ips);
        if !early.is_empty() {
            return early;
        }
    }
    let mut errs = Vec::new();
    topology_errors(obj, &mut errs);
    let headless = is_headless(&ips);
    let ports = spec["ports"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if ports.is_empty() && !headless && ty != "ExternalName" {
        errs.push(FieldError::required("spec.ports", ""));
    }
    match ty {
        "LoadBalancer" | "NodePort" if headless => errs.push(FieldError::invalid(
            "spec.clusterIPs[0]",
            "None",
            format!("may not be set to 'None' for {ty} services"),
        )),
        "ExternalName" => external_name_errors(spec, &ips, &mut errs),
        _ => {}
    }
    let mut names: HashSet<&str> = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        port_errors(port, i, ports.len() > 1, headless, &mut names, &mut errs);
    }
    for (key, value) in spec["selector"].as_object().into_iter().flatten() {
        for m in validation::is_qualified_name(key) {
            errs.push(FieldError::invalid("spec.selector", key, m));
        }
        for m in validation::is_valid_label_value(value.as_str().unwrap_or_default()) {
            errs.push(FieldError::invalid(
                "spec.selector",
                value.as_str().unwrap_or_default(),
                m,
            ));
        }
    }
    session_affinity_errors(spec, &mut errs);
    for (i, ip) in strings(&spec["externalIPs"]).into_iter().enumerate() {
        external_ip_errors(&format!("spec.externalIPs[{i}]"), ip, &mut errs);
    }
    const TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
    if ty.is_empty() {
        errs.push(FieldError::required("spec.type", ""));
    } else if !TYPES.contains(&ty) {
        errs.push(FieldError::not_supported("spec.type", ty, TYPES));
    }
    if ty == "ClusterIP" {
        for (i, port) in ports.iter().enumerate() {
            if port["nodePort"].as_i64().unwrap_or(0) != 0 {
                errs.push(FieldError::forbidden(
                    format!("spec.ports[{i}].nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }
    duplicate_port_errors(ports, &mut errs);
    source_range_errors(obj, ty, &mut errs);
    if ty != "LoadBalancer" && !spec["allocateLoadBalancerNodePorts"].is_null() {
        errs.push(FieldError::forbidden(
            "spec.allocateLoadBalancerNodePorts",
            ONLY_LOAD_BALANCER,
        ));
    }
    load_balancer_class_errors(spec, ty, &mut errs);
    traffic_policy_errors(spec, ty, &mut errs);
    errs
}

/// kube's `ValidateServiceUpdate` checks beyond those of [`service_errors`], in its order:
/// clusterIPs that may not change, a load balancer's class, the health check node port.
pub fn service_update_errors(new: &Value, old: &Value) -> Vec<FieldError> {
    let (spec, old_spec) = (&new["spec"], &old["spec"]);
    let (ty, old_ty) = (str_of(spec, "type"), str_of(old_spec, "type"));
    let mut errs = Vec::new();
    let old_ips = cluster_ips(old_spec);
    // The registry copies the allocated clusterIPs back into an update that leaves them out.
    let ips = match cluster_ips(spec) {
        ips if ips.is_empty() => old_ips.clone(),
        ips => ips,
    };
    if ty != "ExternalName"
        && old_ty != "ExternalName"
        && !(is_headless(&ips) && is_headless(&old_ips))
    {
        let list = serde_json::to_string(&ips).unwrap_or_default();
        if ips.len() == old_ips.len() {
            for (i, (a, b)) in ips.iter().zip(&old_ips).enumerate() {
                if a != b {
                    errs.push(FieldError::invalid_rendered(
                        format!("spec.clusterIPs[{i}]"),
                        list.clone(),
                        "may not change once set",
                    ));
                }
            }
        } else if ips.len() < old_ips.len() {
            if ips.is_empty() {
                errs.push(FieldError::invalid_rendered(
                    "spec.clusterIPs[0]",
                    list,
                    "primary clusterIP can not be unset",
                ));
            } else if ips.first() != old_ips.first() {
                errs.push(FieldError::invalid_rendered(
                    "spec.clusterIPs[0]",
                    list,
                    "may not change once set",
                ));
            }
        } else if !old_ips.is_empty() && ips.first() != old_ips.first() {
            errs.push(FieldError::invalid_rendered(
                "spec.clusterIPs[0]",
                list,
                "may not change once set",
            ));
        }
    }
    if ty == "LoadBalancer"
        && old_ty == "LoadBalancer"
        && spec.get("loadBalancerClass") != old_spec.get("loadBalancerClass")
    {
        errs.push(FieldError::invalid_rendered(
            "spec.loadBalancerClass",
            json_text(spec.get("loadBalancerClass").unwrap_or(&Value::Null)),
            "may not change once set",
        ));
    }
    let needs_health_check = |s: &Value| {
        str_of(s, "type") == "LoadBalancer" && str_of(s, "externalTrafficPolicy") == "Local"
    };
    if needs_health_check(spec)
        && needs_health_check(old_spec)
        && spec.get("healthCheckNodePort") != old_spec.get("healthCheckNodePort")
    {
        errs.push(FieldError::forbidden(
            "spec.healthCheckNodePort",
            "field is immutable",
        ));
    }
    errs
}

fn topology_errors(obj: &Value, errs: &mut Vec<FieldError>) {
    let annotations = &obj["metadata"]["annotations"];
    let mode = annotations["service.kubernetes.io/topology-mode"].as_str();
    let hints = annotations["service.kubernetes.io/topology-aware-hints"].as_str();
    if let (Some(mode), Some(hints)) = (mode, hints) {
        if mode != hints {
            errs.push(FieldError::invalid(
                "metadata.annotations[service.kubernetes.io/topology-mode]",
                mode,
                "must match annotations[service.kubernetes.io/topology-aware-hints] when both are specified",
            ));
        }
    }
}

fn external_name_errors(spec: &Value, ips: &[String], errs: &mut Vec<FieldError>) {
    const NOT_FOR_EXTERNAL_NAME: &str = "may not be set for ExternalName services";
    if !ips.is_empty() {
        errs.push(FieldError::forbidden(
            "spec.clusterIPs",
            NOT_FOR_EXTERNAL_NAME,
        ));
    }
    if spec["ipFamilies"].as_array().is_some_and(|a| !a.is_empty()) {
        errs.push(FieldError::forbidden(
            "spec.ipFamilies",
            NOT_FOR_EXTERNAL_NAME,
        ));
    }
    if !spec["ipFamilyPolicy"].is_null() {
        errs.push(FieldError::forbidden(
            "spec.ipFamilyPolicy",
            NOT_FOR_EXTERNAL_NAME,
        ));
    }
    let name = str_of(spec, "externalName");
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        errs.push(FieldError::required("spec.externalName", ""));
    } else {
        for m in validation::is_dns1123_subdomain(name) {
            errs.push(FieldError::invalid("spec.externalName", name, m));
        }
    }
}

fn port_errors<'a>(
    port: &'a Value,
    i: usize,
    require_name: bool,
    headless: bool,
    names: &mut HashSet<&'a str>,
    errs: &mut Vec<FieldError>,
) {
    let at = |field: &str| format!("spec.ports[{i}].{field}");
    let name = str_of(port, "name");
    if require_name && name.is_empty() {
        errs.push(FieldError::required(at("name"), ""));
    } else if !name.is_empty() {
        for m in validation::is_dns1123_label(name) {
            errs.push(FieldError::invalid(at("name"), name, m));
        }
        if !names.insert(name) {
            errs.push(FieldError::duplicate(at("name"), name));
        }
    }
    let number = port["port"].as_i64().unwrap_or(0);
    if !(1..=65535).contains(&number) {
        errs.push(FieldError::invalid_rendered(
            at("port"),
            number.to_string(),
            PORT_RANGE,
        ));
    }
    const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
    match str_of(port, "protocol") {
        "" => errs.push(FieldError::required(at("protocol"), "")),
        p if !PROTOCOLS.contains(&p) => {
            errs.push(FieldError::not_supported(at("protocol"), p, PROTOCOLS))
        }
        _ => {}
    }
    if !headless {
        match &port["targetPort"] {
            Value::Number(n) => {
                let n = n.as_i64().unwrap_or(0);
                if !(1..=65535).contains(&n) {
                    errs.push(FieldError::invalid_rendered(
                        at("targetPort"),
                        n.to_string(),
                        PORT_RANGE,
                    ));
                }
            }
            Value::String(s) => {
                for m in kubox_apimachinery::validation::is_valid_port_name(s) {
                    errs.push(FieldError::invalid(at("targetPort"), s, m));
                }
            }
            _ => {}
        }
    }
    if let Some(app) = port["appProtocol"].as_str() {
        for m in validation::is_qualified_name(app) {
            errs.push(FieldError::invalid(at("appProtocol"), app, m));
        }
    }
}

fn session_affinity_errors(spec: &Value, errs: &mut Vec<FieldError>) {
    const AFFINITIES: &[&str] = &["ClientIP", "None"];
    const WHEN: &str = "when session affinity type is ClientIP";
    match str_of(spec, "sessionAffinity") {
        "" => errs.push(FieldError::required("spec.sessionAffinity", "")),
        "ClientIP" => {
            let config = &spec["sessionAffinityConfig"];
            if config.is_null() {
                errs.push(FieldError::required("spec.sessionAffinityConfig", WHEN));
            } else if config["clientIP"].is_null() {
                errs.push(FieldError::required(
                    "spec.sessionAffinityConfig.clientIP",
                    WHEN,
                ));
            } else {
                let path = "spec.sessionAffinityConfig.clientIP.timeoutSeconds";
                match config["clientIP"]["timeoutSeconds"].as_i64() {
                    None => errs.push(FieldError::required(path, WHEN)),
                    Some(t) if t <= 0 || t > 86400 => errs.push(FieldError::invalid_rendered(
                        path,
                        t.to_string(),
                        "must be greater than 0 and less than 86400",
                    )),
                    Some(_) => {}
                }
            }
        }
        "None" => {
            if !spec["sessionAffinityConfig"].is_null() {
                errs.push(FieldError::forbidden(
                    "spec.sessionAffinityConfig",
                    "must not be set when session affinity is None",
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            "spec.sessionAffinity",
            other,
            AFFINITIES,
        )),
    }
}

/// kube's `ValidateServiceClusterIPsRelatedFields` (not for ExternalName services).
fn cluster_ip_errors(spec: &Value, ips: &[String]) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let list = serde_json::to_string(ips).unwrap_or_default();
    let cluster_ip = str_of(spec, "clusterIP");
    let given: Vec<&str> = strings(&spec["clusterIPs"]);
    if !cluster_ip.is_empty() {
        if ips.is_empty() {
            errs.push(FieldError::required("spec.clusterIPs", ""));
        } else if ips[0] != cluster_ip {
            errs.push(FieldError::invalid_rendered(
                "spec.clusterIPs",
                list.clone(),
                "first value must match `clusterIP`",
            ));
        }
    } else if !given.is_empty() {
        errs.push(FieldError::invalid_rendered(
            "spec.clusterIPs",
            list.clone(),
            "must be empty when `clusterIP` is not specified",
        ));
    }
    const FAMILIES: &[&str] = &["IPv4", "IPv6"];
    let families = strings(&spec["ipFamilies"]);
    for (i, f) in families.iter().enumerate() {
        let path = format!("spec.ipFamilies[{i}]");
        if !FAMILIES.contains(f) {
            errs.push(FieldError::not_supported(&path, f, FAMILIES));
        }
        if families[..i].contains(f) {
            errs.push(FieldError::duplicate(&path, f));
        }
    }
    const POLICIES: &[&str] = &["PreferDualStack", "RequireDualStack", "SingleStack"];
    if let Some(p) = spec["ipFamilyPolicy"].as_str() {
        if !POLICIES.contains(&p) {
            errs.push(FieldError::not_supported(
                "spec.ipFamilyPolicy",
                p,
                POLICIES,
            ));
        }
    }
    let mut bad_ip = false;
    let mut parsed: Vec<IpAddr> = Vec::new();
    for (i, ip) in ips.iter().enumerate() {
        if ip == "None" && i == 0 {
            if ips.len() > 1 {
                bad_ip = true;
                errs.push(FieldError::invalid_rendered(
                    "spec.clusterIPs",
                    list.clone(),
                    "'None' must be the first and only value",
                ));
            }
            continue;
        }
        match ip.parse::<IpAddr>() {
            Ok(a) => parsed.push(a),
            Err(_) => {
                bad_ip = true;
                errs.push(FieldError::invalid(
                    format!("spec.clusterIPs[{i}]"),
                    ip,
                    VALID_IP,
                ));
            }
        }
    }
    if ips.len() > 2 {
        errs.push(FieldError::invalid_rendered(
            "spec.clusterIPs",
            list.clone(),
            "may only hold up to 2 values",
        ));
    }
    if bad_ip {
        return errs;
    }
    if parsed.len() == 2 && parsed[0].is_ipv4() == parsed[1].is_ipv4() {
        errs.push(FieldError::invalid_rendered(
            "spec.clusterIPs",
            list,
            "may specify no more than one IP for each IP family",
        ));
    }
    if !is_headless(ips) {
        for (i, (ip, family)) in parsed.iter().zip(&families).enumerate() {
            let wanted_v4 = *family == "IPv4";
            if FAMILIES.contains(family) && ip.is_ipv4() != wanted_v4 {
                errs.push(FieldError::invalid(
                    format!("spec.clusterIPs[{i}]"),
                    &ip.to_string(),
                    format!("expected an {family} value as indicated by `ipFamilies[{i}]`"),
                ));
            }
        }
    }
    errs
}

fn external_ip_errors(path: &str, ip: &str, errs: &mut Vec<FieldError>) {
    let Ok(addr) = ip.parse::<IpAddr>() else {
        errs.push(FieldError::invalid(path, ip, VALID_IP));
        return;
    };
    if addr.is_unspecified() {
        errs.push(FieldError::invalid(
            path,
            ip,
            format!("may not be unspecified ({ip})"),
        ));
    }
    if addr.is_loopback() {
        errs.push(FieldError::invalid(
            path,
            ip,
            "may not be in the loopback range (127.0.0.0/8, ::1/128)",
        ));
    }
    let link_local = match addr {
        IpAddr::V4(a) => a.is_link_local(),
        IpAddr::V6(a) => (a.segments()[0] & 0xffc0) == 0xfe80,
    };
    if link_local {
        errs.push(FieldError::invalid(
            path,
            ip,
            "may not be in the link-local range (169.254.0.0/16, fe80::/10)",
        ));
    }
    let link_local_multicast = match addr {
        IpAddr::V4(a) => a.octets()[..3] == [224, 0, 0],
        IpAddr::V6(a) => (a.segments()[0] & 0xff0f) == 0xff02,
    };
    if link_local_multicast {
        errs.push(FieldError::invalid(
            path,
            ip,
            "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)",
        ));
    }
}

fn duplicate_port_errors(ports: &[Value], errs: &mut Vec<FieldError>) {
    let mut node_ports: HashSet<(&str, i64)> = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        let node_port = p["nodePort"].as_i64().unwrap_or(0);
        if node_port == 0 {
            continue;
        }
        let key = (str_of(p, "protocol"), node_port);
        if !node_ports.insert(key) {
            errs.push(FieldError {
                value: Some(node_port.to_string()),
                ..FieldError::duplicate(format!("spec.ports[{i}].nodePort"), "")
            });
        }
    }
    let mut seen: HashSet<(&str, i64)> = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        let key = (str_of(p, "protocol"), p["port"].as_i64().unwrap_or(0));
        if seen.contains(&key) {
            // kube reports the internal ServicePort it compared (no json tags: Go's names).
            let rendered = format!(
                "{{\"Name\":\"\",\"Protocol\":{},\"AppProtocol\":null,\"Port\":{},\"TargetPort\":0,\"NodePort\":0}}",
                json_text(&Value::from(key.0)),
                key.1
            );
            errs.push(FieldError {
                value: Some(rendered),
                ..FieldError::duplicate(format!("spec.ports[{i}]"), "")
            });
        } else {
            seen.insert(key);
        }
    }
}

fn is_cidr(s: &str) -> bool {
    let Some((ip, bits)) = s.split_once('/') else {
        return false;
    };
    let (Ok(addr), Ok(bits)) = (ip.parse::<IpAddr>(), bits.parse::<u8>()) else {
        return false;
    };
    bits <= if addr.is_ipv4() { 32 } else { 128 }
}

fn source_range_errors(obj: &Value, ty: &str, errs: &mut Vec<FieldError>) {
    let ranges = strings(&obj["spec"]["loadBalancerSourceRanges"]);
    if !ranges.is_empty() {
        // kube's path really starts with a capital L.
        if ty != "LoadBalancer" {
            errs.push(FieldError::forbidden(
                "spec.LoadBalancerSourceRanges",
                ONLY_LOAD_BALANCER,
            ));
        }
        for (i, r) in ranges.iter().enumerate() {
            let r = r.trim();
            if !is_cidr(r) {
                errs.push(FieldError::invalid(
                    format!("spec.LoadBalancerSourceRanges[{i}]"),
                    r,
                    VALID_CIDR,
                ));
            }
        }
        return;
    }
    const ANNOTATION: &str = "service.beta.kubernetes.io/load-balancer-source-ranges";
    if let Some(value) = obj["metadata"]["annotations"][ANNOTATION].as_str() {
        let path = format!("metadata.annotations[{ANNOTATION}]");
        if ty != "LoadBalancer" {
            errs.push(FieldError::forbidden(&path, ONLY_LOAD_BALANCER));
        }
        let value = value.trim();
        if !value.is_empty() {
            for r in value.split(',') {
                let r = r.trim();
                if !is_cidr(r) {
                    errs.push(FieldError::invalid(&path, value, VALID_CIDR));
                }
            }
        }
    }
}

fn load_balancer_class_errors(spec: &Value, ty: &str, errs: &mut Vec<FieldError>) {
    let Some(class) = spec["loadBalancerClass"].as_str() else {
        return;
    };
    if ty == "LoadBalancer" {
        for m in validation::is_qualified_name(class) {
            errs.push(FieldError::invalid("spec.loadBalancerClass", class, m));
        }
    } else {
        errs.push(FieldError::forbidden(
            "spec.loadBalancerClass",
            ONLY_LOAD_BALANCER,
        ));
    }
}

fn traffic_policy_errors(spec: &Value, ty: &str, errs: &mut Vec<FieldError>) {
    let external = matches!(ty, "NodePort" | "LoadBalancer")
        || (ty == "ClusterIP"
            && spec["externalIPs"]
                .as_array()
                .is_some_and(|a| !a.is_empty()));
    let policy = str_of(spec, "externalTrafficPolicy");
    const POLICIES: &[&str] = &["Cluster", "Local"];
    if !external && !policy.is_empty() {
        errs.push(FieldError::invalid(
            "spec.externalTrafficPolicy",
            policy,
            "may only be set for externally-accessible services",
        ));
    } else if external && policy.is_empty() {
        errs.push(FieldError::required("spec.externalTrafficPolicy", ""));
    } else if external && !POLICIES.contains(&policy) {
        errs.push(FieldError::not_supported(
            "spec.externalTrafficPolicy",
            policy,
            POLICIES,
        ));
    }
    let needs_health_check = ty == "LoadBalancer" && policy == "Local";
    let health = spec["healthCheckNodePort"].as_i64().unwrap_or(0);
    if !needs_health_check && health != 0 {
        errs.push(FieldError::invalid_rendered(
            "spec.healthCheckNodePort",
            health.to_string(),
            "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
        ));
    } else if needs_health_check && health != 0 && !(1..=65535).contains(&health) {
        errs.push(FieldError::invalid_rendered(
            "spec.healthCheckNodePort",
            health.to_string(),
            PORT_RANGE,
        ));
    }
    match spec["internalTrafficPolicy"].as_str() {
        None if matches!(ty, "ClusterIP" | "NodePort" | "LoadBalancer") => {
            errs.push(FieldError::required("spec.internalTrafficPolicy", ""))
        }
        Some(p) if !POLICIES.contains(&p) => errs.push(FieldError::not_supported(
            "spec.internalTrafficPolicy",
            p,
            POLICIES,
        )),
        _ => {}
    }
    const DISTRIBUTIONS: &[&str] = &["PreferClose", "PreferSameZone", "PreferSameNode"];
    if let Some(d) = spec["trafficDistribution"].as_str() {
        if !DISTRIBUTIONS.contains(&d) {
            errs.push(FieldError::not_supported(
                "spec.trafficDistribution",
                d,
                DISTRIBUTIONS,
            ));
        }
    }
}
