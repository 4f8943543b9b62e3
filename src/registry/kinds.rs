//! kube-apiserver's validation of more built-in kinds, with kube's field paths, error types,
//! values and messages, in kube's order: HorizontalPodAutoscalers, PodDisruptionBudgets,
//! Ingresses, IngressClasses, NetworkPolicies, PriorityClasses and Leases.

use std::net::IpAddr;

use kubox_apimachinery::validation::{self as v, FieldError};
use serde_json::Value;

fn s<'a>(x: &'a Value, k: &str) -> &'a str {
    x.get(k).and_then(Value::as_str).unwrap_or_default()
}

fn json_text(x: &Value) -> String {
    serde_json::to_string(x).unwrap_or_default()
}

const PERCENT: &str = "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')";
const PORT_RANGE: &str = "must be between 1 and 65535, inclusive";

fn int_or_percent(path: &str, x: &Value, errs: &mut Vec<FieldError>) {
    match x {
        Value::String(t) => {
            let digits = t
                .strip_suffix('%')
                .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            match digits {
                None => errs.push(FieldError::invalid(path, t, PERCENT)),
                Some(n) if n.parse::<u64>().is_ok_and(|n| n > 100) => errs.push(
                    FieldError::invalid(path, t, "must not be greater than 100%"),
                ),
                Some(_) => {}
            }
        }
        Value::Number(n) if n.as_i64().is_some_and(|n| n < 0) => errs.push(
            FieldError::invalid_rendered(path, n.to_string(), "must be greater than or equal to 0"),
        ),
        _ => {}
    }
}

fn subdomain(path: &str, value: &str, errs: &mut Vec<FieldError>) {
    for m in v::is_dns1123_subdomain(value) {
        errs.push(FieldError::invalid(path, value, m));
    }
}

fn path_segment(path: &str, value: &str, errs: &mut Vec<FieldError>) {
    for m in v::is_valid_path_segment_name(value) {
        errs.push(FieldError::invalid(path, value, m));
    }
}

/// A HorizontalPodAutoscaler (autoscaling/v2, as stored).
pub fn hpa_errors(obj: &Value) -> Vec<FieldError> {
    let spec = &obj["spec"];
    let mut errs = Vec::new();
    let min = spec["minReplicas"].as_i64();
    let max = spec["maxReplicas"].as_i64().unwrap_or(0);
    if let Some(m) = min.filter(|m| *m < 1) {
        errs.push(FieldError::invalid_rendered(
            "spec.minReplicas",
            m.to_string(),
            "must be greater than or equal to 1",
        ));
    }
    if max < 1 {
        errs.push(FieldError::invalid_rendered(
            "spec.maxReplicas",
            max.to_string(),
            "must be greater than 0",
        ));
    }
    if min.is_some_and(|m| max < m) {
        errs.push(FieldError::invalid_rendered(
            "spec.maxReplicas",
            max.to_string(),
            "must be greater than or equal to `minReplicas`",
        ));
    }
    let target = &spec["scaleTargetRef"];
    for field in ["kind", "name"] {
        let value = s(target, field);
        let path = format!("spec.scaleTargetRef.{field}");
        if value.is_empty() {
            errs.push(FieldError::required(path, ""));
        } else {
            path_segment(&path, value, &mut errs);
        }
    }
    const TYPES: &[&str] = &[
        "ContainerResource",
        "External",
        "Object",
        "Pods",
        "Resource",
    ];
    for (i, m) in spec["metrics"].as_array().into_iter().flatten().enumerate() {
        let at = format!("spec.metrics[{i}]");
        let ty = s(m, "type");
        if ty.is_empty() {
            errs.push(FieldError::required(
                format!("{at}.type"),
                "must specify a metric source type",
            ));
        }
        if !TYPES.contains(&ty) {
            errs.push(FieldError::not_supported(format!("{at}.type"), ty, TYPES));
        }
        let block_of = |t: &str| match t {
            "Object" => "object",
            "Pods" => "pods",
            "Resource" => "resource",
            "External" => "external",
            "ContainerResource" => "containerResource",
            _ => "",
        };
        let block = block_of(ty);
        if let Some(source) = [
            "object",
            "external",
            "pods",
            "resource",
            "containerResource",
        ]
        .iter()
        .find(|b| m[**b].is_object())
        {
            metric_source_errors(&m[*source], &format!("{at}.{source}"), source, &mut errs);
        }
        if block.is_empty() {
            errs.push(FieldError::not_supported(format!("{at}.type"), ty, TYPES));
        } else if !m[block].is_object() {
            errs.push(FieldError::required(
                format!("{at}.{block}"),
                "must populate information for the given metric source",
            ));
        }
        let set: Vec<&str> = [
            "object",
            "external",
            "pods",
            "resource",
            "containerResource",
        ]
        .into_iter()
        .filter(|b| m[*b].is_object())
        .collect();
        if set.len() > 1 {
            for b in set.into_iter().filter(|b| *b != block) {
                errs.push(FieldError::forbidden(
                    format!("{at}.{b}"),
                    "must populate the given metric source only",
                ));
            }
        }
    }
    for direction in ["scaleUp", "scaleDown"] {
        let rules = &spec["behavior"][direction];
        if !rules.is_object() {
            continue;
        }
        let at = format!("spec.behavior.{direction}");
        if let Some(w) = rules["stabilizationWindowSeconds"].as_i64() {
            if w < 0 {
                errs.push(FieldError::invalid_rendered(
                    format!("{at}.stabilizationWindowSeconds"),
                    w.to_string(),
                    "must be greater than or equal to zero",
                ));
            } else if w > 3600 {
                errs.push(FieldError::invalid_rendered(
                    format!("{at}.stabilizationWindowSeconds"),
                    w.to_string(),
                    "must be less than or equal to 3600",
                ));
            }
        }
        const SELECT: &[&str] = &["Disabled", "Max", "Min"];
        if let Some(p) = rules["selectPolicy"]
            .as_str()
            .filter(|p| !SELECT.contains(p))
        {
            errs.push(FieldError::not_supported(
                format!("{at}.selectPolicy"),
                p,
                SELECT,
            ));
        }
        let policies = rules["policies"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        if policies.is_empty() {
            errs.push(FieldError::required(
                format!("{at}.policies"),
                "must specify at least one Policy",
            ));
        }
        for (k, p) in policies.iter().enumerate() {
            let pat = format!("{at}.policies[{k}]");
            let t = s(p, "type");
            if t != "Pods" && t != "Percent" {
                errs.push(FieldError::not_supported(
                    format!("{pat}.type"),
                    t,
                    &["Percent", "Pods"],
                ));
            }
            let value = p["value"].as_i64().unwrap_or(0);
            if value <= 0 {
                errs.push(FieldError::invalid_rendered(
                    format!("{pat}.value"),
                    value.to_string(),
                    "must be greater than zero",
                ));
            }
            let period = p["periodSeconds"].as_i64().unwrap_or(0);
            if period <= 0 {
                errs.push(FieldError::invalid_rendered(
                    format!("{pat}.periodSeconds"),
                    period.to_string(),
                    "must be greater than zero",
                ));
            } else if period > 1800 {
                errs.push(FieldError::invalid_rendered(
                    format!("{pat}.periodSeconds"),
                    period.to_string(),
                    "must be less than or equal to 1800",
                ));
            }
        }
    }
    errs
}

fn metric_source_errors(block: &Value, at: &str, kind: &str, errs: &mut Vec<FieldError>) {
    if matches!(kind, "resource" | "containerResource") && s(block, "name").is_empty() {
        errs.push(FieldError::required(
            format!("{at}.name"),
            "must specify a resource name",
        ));
    }
    if matches!(kind, "object" | "pods" | "external") {
        let name = s(&block["metric"], "name");
        if name.is_empty() {
            errs.push(FieldError::required(
                format!("{at}.metric.name"),
                "must specify a metric name",
            ));
        } else {
            path_segment(&format!("{at}.metric.name"), name, errs);
        }
    }
    let target = &block["target"];
    let tat = format!("{at}.target");
    match s(target, "type") {
        "" => errs.push(FieldError::required(
            format!("{tat}.type"),
            "must specify a metric target type",
        )),
        "Utilization" | "Value" | "AverageValue" => {}
        other => errs.push(FieldError::invalid(
            format!("{tat}.type"),
            other,
            "must be either Utilization, Value, or AverageValue",
        )),
    }
    if let Some(u) = target["averageUtilization"].as_i64().filter(|u| *u < 1) {
        errs.push(FieldError::invalid_rendered(
            format!("{tat}.averageUtilization"),
            u.to_string(),
            "must be greater than 0",
        ));
    }
    let (value, average) = (
        !target["value"].is_null(),
        !target["averageValue"].is_null(),
    );
    let utilization = !target["averageUtilization"].is_null();
    match kind {
        "resource" | "containerResource" if !utilization && !average => {
            errs.push(FieldError::required(
                format!("{tat}.averageUtilization"),
                "must set either a target raw value or a target utilization",
            ))
        }
        "resource" | "containerResource" if utilization && average => {
            errs.push(FieldError::forbidden(
                format!("{tat}.averageValue"),
                "may not set both a target raw value and a target utilization",
            ))
        }
        "pods" if !average => errs.push(FieldError::required(
            format!("{tat}.averageValue"),
            "must specify a positive target averageValue",
        )),
        "object" if !value && !average => errs.push(FieldError::required(
            format!("{tat}.averageValue"),
            "must set either a target value or averageValue",
        )),
        "external" if !value && !average => errs.push(FieldError::required(
            format!("{tat}.averageValue"),
            "must set either a target value for metric or a per-pod target",
        )),
        "external" if value && average => errs.push(FieldError::forbidden(
            format!("{tat}.value"),
            "may not set both a target value for metric and a per-pod target",
        )),
        _ => {}
    }
}

/// A PodDisruptionBudget.
pub fn pdb_errors(obj: &Value) -> Vec<FieldError> {
    let spec = &obj["spec"];
    let mut errs = Vec::new();
    let (min, max) = (&spec["minAvailable"], &spec["maxUnavailable"]);
    if !min.is_null() && !max.is_null() {
        // kube reports its internal spec, whose fields have no json tags.
        let rendered = format!(
            "{{\"MinAvailable\":{},\"Selector\":{},\"MaxUnavailable\":{},\"UnhealthyPodEvictionPolicy\":{}}}",
            json_text(min),
            json_text(&spec["selector"]),
            json_text(max),
            json_text(&spec["unhealthyPodEvictionPolicy"]),
        );
        errs.push(FieldError::invalid_rendered(
            "spec",
            rendered,
            "minAvailable and maxUnavailable cannot be both set",
        ));
    }
    int_or_percent("spec.minAvailable", min, &mut errs);
    int_or_percent("spec.maxUnavailable", max, &mut errs);
    errs.extend(v::validate_label_selector(
        &spec["selector"],
        "spec.selector",
    ));
    const POLICIES: &[&str] = &["AlwaysAllow", "IfHealthyBudget"];
    if let Some(p) = spec["unhealthyPodEvictionPolicy"].as_str() {
        if !POLICIES.contains(&p) {
            errs.push(FieldError::not_supported(
                "spec.unhealthyPodEvictionPolicy",
                p,
                POLICIES,
            ));
        }
    }
    errs
}

fn wildcard_or_subdomain(path: &str, host: &str, errs: &mut Vec<FieldError>) {
    if host.contains('*') {
        let ok = host
            .strip_prefix("*.")
            .is_some_and(|rest| v::is_dns1123_subdomain(rest).is_empty() && !rest.contains('*'));
        if host.len() > 253 {
            errs.push(FieldError::invalid(
                path,
                host,
                "must be no more than 253 characters",
            ));
        }
        if !ok {
            errs.push(FieldError::invalid(
                path,
                host,
                "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. '*.example.com', regex used for validation is '\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
            ));
        }
    } else {
        subdomain(path, host, errs);
    }
}

fn backend_errors(b: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let (resource, service) = (&b["resource"], &b["service"]);
    if resource.is_object() && service.is_object() {
        errs.push(FieldError::invalid(
            path,
            "",
            "cannot set both resource and service backends",
        ));
        return;
    }
    if resource.is_object() {
        let at = format!("{path}.resource");
        if let Some(g) = resource["apiGroup"].as_str().filter(|g| !g.is_empty()) {
            subdomain(&format!("{at}.apiGroup"), g, errs);
        }
        for (field, message) in [("kind", "kind is required"), ("name", "name is required")] {
            let value = s(resource, field);
            if value.is_empty() {
                errs.push(FieldError::required(format!("{at}.{field}"), message));
            } else {
                path_segment(&format!("{at}.{field}"), value, errs);
            }
        }
    } else if service.is_object() {
        let name = s(service, "name");
        if name.is_empty() {
            errs.push(FieldError::required(format!("{path}.service.name"), ""));
        } else {
            for m in v::is_dns1035_label(name) {
                errs.push(FieldError::invalid(format!("{path}.service.name"), name, m));
            }
        }
        let port = &service["port"];
        let (pname, number) = (s(port, "name"), port["number"].as_i64().unwrap_or(0));
        match (pname.is_empty(), number) {
            (false, n) if n != 0 => errs.push(FieldError::invalid(
                path,
                "",
                "cannot set both port name & port number",
            )),
            (false, _) => {
                super::pods::port_name_errors(errs, &format!("{path}.service.port.name"), pname);
            }
            (true, 0) => errs.push(FieldError::required(
                path,
                "port name or number is required",
            )),
            (true, n) if !(1..=65535).contains(&n) => errs.push(FieldError::invalid_rendered(
                format!("{path}.service.port.number"),
                n.to_string(),
                PORT_RANGE,
            )),
            _ => {}
        }
    } else {
        errs.push(FieldError::invalid(
            path,
            "",
            "resource or service backend is required",
        ));
    }
}

/// An Ingress (`create`: the create-only annotation check).
pub fn ingress_errors(obj: &Value, create: bool) -> Vec<FieldError> {
    let spec = &obj["spec"];
    let mut errs = Vec::new();
    let rules = spec["rules"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if rules.is_empty() && spec["defaultBackend"].is_null() {
        errs.push(FieldError::invalid_rendered(
            "spec",
            json_text(&spec["rules"]),
            "either `defaultBackend` or `rules` must be specified",
        ));
    }
    if spec["defaultBackend"].is_object() {
        backend_errors(&spec["defaultBackend"], "spec.defaultBackend", &mut errs);
    }
    for (i, rule) in rules.iter().enumerate() {
        let at = format!("spec.rules[{i}]");
        let host = s(rule, "host");
        if !host.is_empty() {
            if host.parse::<IpAddr>().is_ok() {
                errs.push(FieldError::invalid(
                    format!("{at}.host"),
                    host,
                    "must be a DNS name, not an IP address",
                ));
            }
            if host.parse::<std::net::Ipv4Addr>().is_err() {
                wildcard_or_subdomain(&format!("{at}.host"), host, &mut errs);
            }
        }
        let http = &rule["http"];
        if !http.is_object() {
            continue;
        }
        let paths = http["paths"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        if paths.is_empty() {
            errs.push(FieldError::required(format!("{at}.http.paths"), ""));
        }
        for (j, p) in paths.iter().enumerate() {
            let pat = format!("{at}.http.paths[{j}]");
            let path = s(p, "path");
            match p["pathType"].as_str() {
                None => {
                    errs.push(FieldError::required(
                        format!("{pat}.pathType"),
                        "pathType must be specified",
                    ));
                    continue;
                }
                Some("Exact" | "Prefix") => {
                    if !path.starts_with('/') {
                        errs.push(FieldError::invalid(
                            format!("{pat}.path"),
                            path,
                            "must be an absolute path",
                        ));
                    }
                    if !path.is_empty() {
                        for seq in ["//", "/./", "/../", "%2f", "%2F"] {
                            if path.contains(seq) {
                                errs.push(FieldError::invalid(
                                    format!("{pat}.path"),
                                    path,
                                    format!("must not contain '{seq}'"),
                                ));
                            }
                        }
                        for suffix in ["/..", "/."] {
                            if path.ends_with(suffix) {
                                errs.push(FieldError::invalid(
                                    format!("{pat}.path"),
                                    path,
                                    format!("cannot end with '{suffix}'"),
                                ));
                            }
                        }
                    }
                }
                Some("ImplementationSpecific") => {
                    if !path.is_empty() && !path.starts_with('/') {
                        errs.push(FieldError::invalid(
                            format!("{pat}.path"),
                            path,
                            "must be an absolute path",
                        ));
                    }
                }
                Some(other) => errs.push(FieldError::not_supported(
                    format!("{pat}.pathType"),
                    other,
                    &["Exact", "ImplementationSpecific", "Prefix"],
                )),
            }
            backend_errors(&p["backend"], &format!("{pat}.backend"), &mut errs);
        }
    }
    for (t, tls) in spec["tls"].as_array().into_iter().flatten().enumerate() {
        for (h, host) in tls["hosts"].as_array().into_iter().flatten().enumerate() {
            wildcard_or_subdomain(
                &format!("spec.tls[{t}].hosts[{h}]"),
                host.as_str().unwrap_or_default(),
                &mut errs,
            );
        }
        if let Some(secret) = tls["secretName"].as_str().filter(|x| !x.is_empty()) {
            subdomain(&format!("spec.tls[{t}].secretName"), secret, &mut errs);
        }
    }
    let class = spec["ingressClassName"].as_str();
    if let Some(c) = class {
        subdomain("spec.ingressClassName", c, &mut errs);
    }
    if create {
        let annotation = obj["metadata"]["annotations"]["kubernetes.io/ingress.class"].as_str();
        if let (Some(a), Some(c)) = (annotation, class) {
            if a != c {
                errs.push(FieldError::invalid(
                    "annotations.kubernetes.io/ingress.class",
                    a,
                    "must match `ingressClassName` when both are specified",
                ));
            }
        }
    }
    errs
}

/// An IngressClass; `old` on update (its controller is immutable).
pub fn ingress_class_errors(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let spec = &obj["spec"];
    let mut errs = Vec::new();
    let controller = s(spec, "controller");
    if let Some(o) = old {
        if s(&o["spec"], "controller") != controller {
            errs.push(FieldError::invalid(
                "spec.controller",
                controller,
                "field is immutable",
            ));
        }
    }
    if controller.len() > 250 {
        errs.push(FieldError::too_long("spec.controller", 250));
    }
    if controller.is_empty() {
        errs.push(FieldError::required("spec.controller", ""));
    } else {
        match controller.split_once('/') {
            Some((host, path)) if !host.is_empty() && !path.is_empty() => {
                subdomain("spec.controller", host, &mut errs);
                let ok = path
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/-._~%!$&'()*+,;=:".contains(&b));
                if !ok {
                    errs.push(FieldError::invalid(
                        "spec.controller",
                        path,
                        "Invalid path (regex used for validation is '[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+')",
                    ));
                }
            }
            _ => errs.push(FieldError::invalid(
                "spec.controller",
                controller,
                "must be a domain-prefixed path (such as \"acme.io/foo\")",
            )),
        }
    }
    errs
}

fn cidr(x: &str) -> Option<(IpAddr, u8)> {
    let (ip, bits) = x.split_once('/')?;
    let (ip, bits) = (ip.parse::<IpAddr>().ok()?, bits.parse::<u8>().ok()?);
    (bits <= if ip.is_ipv4() { 32 } else { 128 }).then_some((ip, bits))
}

fn in_cidr(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(bits))
            };
            (u32::from(a) & mask) == (u32::from(n) & mask)
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(bits))
            };
            (u128::from(a) & mask) == (u128::from(n) & mask)
        }
        _ => false,
    }
}

/// A NetworkPolicy.
pub fn network_policy_errors(obj: &Value) -> Vec<FieldError> {
    let spec = &obj["spec"];
    let mut errs = Vec::new();
    errs.extend(v::validate_label_selector(
        &spec["podSelector"],
        "spec.podSelector",
    ));
    for (direction, peers) in [("ingress", "from"), ("egress", "to")] {
        for (i, rule) in spec[direction].as_array().into_iter().flatten().enumerate() {
            let at = format!("spec.{direction}[{i}]");
            for (k, port) in rule["ports"].as_array().into_iter().flatten().enumerate() {
                let q = format!("{at}.ports[{k}]");
                const PROTOCOLS: &[&str] = &["TCP", "UDP", "SCTP"];
                if let Some(p) = port["protocol"].as_str().filter(|p| !PROTOCOLS.contains(p)) {
                    errs.push(FieldError::not_supported(
                        format!("{q}.protocol"),
                        p,
                        PROTOCOLS,
                    ));
                }
                let end = port["endPort"].as_i64();
                match &port["port"] {
                    Value::Number(n) => {
                        let n = n.as_i64().unwrap_or(0);
                        if !(1..=65535).contains(&n) {
                            errs.push(FieldError::invalid_rendered(
                                format!("{q}.port"),
                                n.to_string(),
                                PORT_RANGE,
                            ));
                        }
                        if let Some(e) = end {
                            if e < n {
                                errs.push(FieldError::invalid_rendered(
                                    format!("{q}.endPort"),
                                    n.to_string(),
                                    "must be greater than or equal to `port`",
                                ));
                            }
                            if !(1..=65535).contains(&e) {
                                errs.push(FieldError::invalid_rendered(
                                    format!("{q}.endPort"),
                                    e.to_string(),
                                    PORT_RANGE,
                                ));
                            }
                        }
                    }
                    Value::String(name) => {
                        if let Some(e) = end {
                            errs.push(FieldError::invalid_rendered(
                                format!("{q}.endPort"),
                                e.to_string(),
                                "may not be specified when `port` is non-numeric",
                            ));
                        }
                        super::pods::port_name_errors(&mut errs, &format!("{q}.port"), name);
                    }
                    _ => {
                        if let Some(e) = end {
                            errs.push(FieldError::invalid_rendered(
                                format!("{q}.endPort"),
                                e.to_string(),
                                "may not be specified when `port` is not specified",
                            ));
                        }
                    }
                }
            }
            for (k, peer) in rule[peers].as_array().into_iter().flatten().enumerate() {
                let r = format!("{at}.{peers}[{k}]");
                let mut present = 0;
                for sel in ["podSelector", "namespaceSelector"] {
                    if peer[sel].is_object() {
                        present += 1;
                        errs.extend(v::validate_label_selector(
                            &peer[sel],
                            &format!("{r}.{sel}"),
                        ));
                    }
                }
                let block = &peer["ipBlock"];
                if block.is_object() {
                    present += 1;
                    let c = s(block, "cidr");
                    if c.is_empty() {
                        errs.push(FieldError::required(format!("{r}.ipBlock.cidr"), ""));
                    } else if let Some((net, bits)) = cidr(c) {
                        for (j, x) in block["except"].as_array().into_iter().flatten().enumerate() {
                            let x = x.as_str().unwrap_or_default();
                            let path = format!("{r}.ipBlock.except[{j}]");
                            match cidr(x) {
                                None => errs.push(FieldError::invalid(&path, x, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")),
                                Some((ip, b)) if b <= bits || !in_cidr(ip, net, bits) => errs.push(
                                    FieldError::invalid(&path, x, "must be a strict subset of `cidr`"),
                                ),
                                Some(_) => {}
                            }
                        }
                    } else {
                        errs.push(FieldError::invalid(
                            format!("{r}.ipBlock.cidr"),
                            c,
                            "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
                        ));
                    }
                }
                if present == 0 {
                    errs.push(FieldError::required(&r, "must specify a peer"));
                } else if present > 1 && block.is_object() {
                    errs.push(FieldError::forbidden(
                        &r,
                        "may not specify both ipBlock and another peer",
                    ));
                }
            }
        }
    }
    let types = spec["policyTypes"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    if types.len() > 2 {
        errs.push(FieldError::invalid_rendered(
            "spec.policyTypes",
            json_text(&spec["policyTypes"]),
            "may not specify more than two policyTypes",
        ));
    } else {
        for (k, t) in types.iter().enumerate() {
            let t = t.as_str().unwrap_or_default();
            if t != "Ingress" && t != "Egress" {
                errs.push(FieldError::not_supported(
                    format!("spec.policyTypes[{k}]"),
                    t,
                    &["Ingress", "Egress"],
                ));
            }
        }
    }
    errs
}

/// A PriorityClass; `old` on update (then only the update rules apply).
pub fn priority_class_errors(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(o) = old {
        if obj.get("value") != o.get("value") {
            errs.push(FieldError::forbidden(
                "value",
                "may not be changed in an update.",
            ));
        }
        if obj.get("preemptionPolicy") != o.get("preemptionPolicy") {
            errs.push(FieldError::invalid(
                "preemptionPolicy",
                s(obj, "preemptionPolicy"),
                "field is immutable",
            ));
        }
        return errs;
    }
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    let value = obj["value"].as_i64().unwrap_or(0);
    if name.starts_with("system-") {
        let known = [
            ("system-cluster-critical", 2_000_000_000),
            ("system-node-critical", 2_000_001_000),
        ];
        let problem = match known.iter().find(|(n, _)| *n == name) {
            None => Some(format!("{name} is not a known system priority class")),
            Some((_, expected)) if value != *expected => {
                Some(format!("value of {name} PriorityClass must be {expected}"))
            }
            Some(_) if obj["globalDefault"] == true => Some(format!(
                "globalDefault of {name} PriorityClass must be false"
            )),
            Some(_) => None,
        };
        if let Some(p) = problem {
            errs.push(FieldError::forbidden(
                "metadata.name",
                format!("priority class names with 'system-' prefix are reserved for system use only. error: {p}"),
            ));
        }
    } else if value > 1_000_000_000 {
        errs.push(FieldError::forbidden(
            "value",
            "maximum allowed value of a user defined priority is 1000000000",
        ));
    }
    const POLICIES: &[&str] = &["PreemptLowerPriority", "Never"];
    match obj["preemptionPolicy"].as_str() {
        Some("") => errs.push(FieldError::required("preemptionPolicy", "")),
        Some(p) if !POLICIES.contains(&p) => {
            errs.push(FieldError::not_supported("preemptionPolicy", p, POLICIES))
        }
        _ => {}
    }
    errs
}

/// A Lease.
pub fn lease_errors(obj: &Value) -> Vec<FieldError> {
    let spec = &obj["spec"];
    let mut errs = Vec::new();
    if let Some(d) = spec["leaseDurationSeconds"].as_i64().filter(|d| *d <= 0) {
        errs.push(FieldError::invalid_rendered(
            "spec.leaseDurationSeconds",
            d.to_string(),
            "must be greater than 0",
        ));
    }
    if let Some(t) = spec["leaseTransitions"].as_i64().filter(|t| *t < 0) {
        errs.push(FieldError::invalid_rendered(
            "spec.leaseTransitions",
            t.to_string(),
            "must be greater than or equal to 0",
        ));
    }
    errs
}

/// A Role or ClusterRole's rules (`namespaced`: a Role) and a ClusterRole's aggregation rule.
pub fn role_errors(obj: &Value, namespaced: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let non_empty = |r: &Value, k: &str| r[k].as_array().is_some_and(|a| !a.is_empty());
    for (i, rule) in obj["rules"].as_array().into_iter().flatten().enumerate() {
        let at = format!("rules[{i}]");
        if !non_empty(rule, "verbs") {
            errs.push(FieldError::required(
                format!("{at}.verbs"),
                "verbs must contain at least one value",
            ));
        }
        if non_empty(rule, "nonResourceURLs") {
            let urls = json_text(&rule["nonResourceURLs"]);
            if namespaced {
                errs.push(FieldError::invalid_rendered(
                    format!("{at}.nonResourceURLs"),
                    urls.clone(),
                    "namespaced rules cannot apply to non-resource URLs",
                ));
            }
            if ["apiGroups", "resources", "resourceNames"]
                .iter()
                .any(|k| non_empty(rule, k))
            {
                errs.push(FieldError::invalid_rendered(
                    format!("{at}.nonResourceURLs"),
                    urls,
                    "rules cannot apply to both regular resources and non-resource URLs",
                ));
            }
            continue;
        }
        if !non_empty(rule, "apiGroups") {
            errs.push(FieldError::required(
                format!("{at}.apiGroups"),
                "resource rules must supply at least one api group",
            ));
        }
        if !non_empty(rule, "resources") {
            errs.push(FieldError::required(
                format!("{at}.resources"),
                "resource rules must supply at least one resource",
            ));
        }
    }
    let aggregation = &obj["aggregationRule"];
    if aggregation.is_object() {
        let selectors = aggregation["clusterRoleSelectors"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        if selectors.is_empty() {
            errs.push(FieldError::required(
                "aggregationRule.clusterRoleSelectors",
                "at least one clusterRoleSelector required if aggregationRule is non-nil",
            ));
        }
        for (i, sel) in selectors.iter().enumerate() {
            errs.extend(v::validate_label_selector(
                sel,
                &format!("aggregationRule.clusterRoleSelectors[{i}]"),
            ));
        }
    }
    errs
}

/// A RoleBinding or ClusterRoleBinding (`cluster`); `old` on update (roleRef is immutable).
pub fn binding_errors(obj: &Value, cluster: bool, old: Option<&Value>) -> Vec<FieldError> {
    const RBAC: &str = "rbac.authorization.k8s.io";
    let mut errs = Vec::new();
    let role_ref = &obj["roleRef"];
    let group = s(role_ref, "apiGroup");
    if group != RBAC {
        errs.push(FieldError::not_supported(
            "roleRef.apiGroup",
            group,
            &[RBAC],
        ));
    }
    let kinds: &[&str] = if cluster {
        &["ClusterRole"]
    } else {
        &["Role", "ClusterRole"]
    };
    let kind = s(role_ref, "kind");
    if !kinds.contains(&kind) {
        errs.push(FieldError::not_supported("roleRef.kind", kind, kinds));
    }
    let name = s(role_ref, "name");
    if name.is_empty() {
        errs.push(FieldError::required("roleRef.name", ""));
    } else {
        path_segment("roleRef.name", name, &mut errs);
    }
    for (i, subject) in obj["subjects"].as_array().into_iter().flatten().enumerate() {
        let at = format!("subjects[{i}]");
        let sname = s(subject, "name");
        if sname.is_empty() {
            errs.push(FieldError::required(format!("{at}.name"), ""));
        }
        let sgroup = s(subject, "apiGroup");
        match s(subject, "kind") {
            "ServiceAccount" => {
                if !sname.is_empty() {
                    subdomain(&format!("{at}.name"), sname, &mut errs);
                }
                if !sgroup.is_empty() {
                    errs.push(FieldError::not_supported(
                        format!("{at}.apiGroup"),
                        sgroup,
                        &[""],
                    ));
                }
                if cluster && s(subject, "namespace").is_empty() {
                    errs.push(FieldError::required(format!("{at}.namespace"), ""));
                }
            }
            "User" | "Group" => {
                if sgroup != RBAC {
                    errs.push(FieldError::not_supported(
                        format!("{at}.apiGroup"),
                        sgroup,
                        &[RBAC],
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(
                format!("{at}.kind"),
                other,
                &["ServiceAccount", "User", "Group"],
            )),
        }
    }
    if let Some(o) = old {
        if o["roleRef"] != obj["roleRef"] {
            // kube reports its internal RoleRef, whose fields have no json tags.
            let rendered = format!(
                "{{\"APIGroup\":{},\"Kind\":{},\"Name\":{}}}",
                json_text(&Value::from(group)),
                json_text(&Value::from(kind)),
                json_text(&Value::from(name)),
            );
            errs.push(FieldError::invalid_rendered(
                "roleRef",
                rendered,
                "cannot change roleRef",
            ));
        }
    }
    errs
}

/// kube-aggregator's ValidateAPIService (beyond metadata): the name is `version.group`, the
/// group a DNS subdomain (only `v1` may have none), the version a DNS-1035 label, both
/// priorities in range; a local APIService (no service) carries no caBundle or
/// insecureSkipTLSVerify; a remote one names its service and a valid port, and not both a
/// caBundle and insecureSkipTLSVerify.
pub fn api_service_errors(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = &obj["spec"];
    let (group, version) = (s(spec, "group"), s(spec, "version"));
    let required = format!("{version}.{group}");
    let name = s(&obj["metadata"], "name");
    if !name.is_empty() && v::is_valid_path_segment_name(name).is_empty() && name != required {
        errs.push(FieldError::invalid(
            "metadata.name",
            name,
            format!("must be `spec.version+\".\"+spec.group`: {:?}", required),
        ));
    }
    if group.is_empty() && version != "v1" {
        errs.push(FieldError::required(
            "spec.group",
            "only v1 may have an empty group and it better be legacy kube",
        ));
    }
    if !group.is_empty() {
        for m in v::is_dns1123_subdomain(group) {
            errs.push(FieldError::invalid("spec.group", group, m));
        }
    }
    for m in v::is_dns1035_label(version) {
        errs.push(FieldError::invalid("spec.version", version, m));
    }
    let int = |k: &str| spec[k].as_i64().unwrap_or(0);
    let group_priority = int("groupPriorityMinimum");
    if group_priority <= 0 || group_priority > 20000 {
        errs.push(FieldError::invalid_rendered(
            "spec.groupPriorityMinimum",
            group_priority.to_string(),
            "must be positive and less than 20000",
        ));
    }
    let version_priority = int("versionPriority");
    if version_priority <= 0 || version_priority > 1000 {
        errs.push(FieldError::invalid_rendered(
            "spec.versionPriority",
            version_priority.to_string(),
            "must be positive and less than 1000",
        ));
    }
    let ca_bundle = s(spec, "caBundle");
    let insecure = spec["insecureSkipTLSVerify"].as_bool().unwrap_or(false);
    let service = &spec["service"];
    if !service.is_object() {
        if !ca_bundle.is_empty() {
            let bytes =
                base64::Engine::decode(&base64::engine::general_purpose::STANDARD, ca_bundle)
                    .map_or(ca_bundle.len(), |b| b.len());
            errs.push(FieldError::invalid(
                "spec.caBundle",
                &format!("{bytes} bytes"),
                "local APIServices may not have a caBundle",
            ));
        }
        if insecure {
            errs.push(FieldError::invalid_rendered(
                "spec.insecureSkipTLSVerify",
                "true",
                "local APIServices may not have insecureSkipTLSVerify",
            ));
        }
        return errs;
    }
    if s(service, "namespace").is_empty() {
        errs.push(FieldError::required("spec.service.namespace", ""));
    }
    if s(service, "name").is_empty() {
        errs.push(FieldError::required("spec.service.name", ""));
    }
    let port = service["port"].as_i64().unwrap_or(443);
    if !(1..=65535).contains(&port) {
        errs.push(FieldError::invalid_rendered(
            "spec.service.port",
            port.to_string(),
            format!("port is not valid: {PORT_RANGE}"),
        ));
    }
    if insecure && !ca_bundle.is_empty() {
        errs.push(FieldError::invalid_rendered(
            "spec.insecureSkipTLSVerify",
            "true",
            "may not be true if caBundle is present",
        ));
    }
    errs
}
