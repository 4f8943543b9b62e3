//! The parts of kube's `ValidatePodSpec` beyond containers and volumes: tolerations, the pod's
//! and each container's `securityContext` (seccomp, AppArmor, Windows options, sysctls, host
//! namespaces, user namespaces, hostProcess), affinity, topology spread constraints,
//! `nodeSelector`, `dnsConfig`, `hostAliases`, readiness gates, priority class and preemption
//! policy, `overhead` and `os` (with its Linux/Windows field checks), as kube-apiserver 1.35
//! validates a create, with its paths, error types, values and messages.
//!
//! `pods.rs` calls these at the places kube's order puts them: a container's security context
//! after its resources; then, after all containers, the hostNetwork port rule; after
//! `dnsPolicy` the scheduling and security fields up to `hostUsers`; after `subdomain` the rest
//! (tolerations to `os`).
//!
//! Choices kube leaves to its configuration, fixed here as clusters run them:
//! - the server runs with `--allow-privileged=true` (kubeadm, kind, minikube and managed
//!   clusters set it): `privileged: true` and hostProcess containers are not refused;
//! - 1.35's default feature gates on create: toleration operators `Lt`/`Gt` are refused
//!   (TaintTolerationComparisonOperators is alpha), only `Recursive` is an SELinux change
//!   policy (SELinuxMount is off), hostNetwork is refused with `hostUsers: false`;
//! - Go walks maps in random order: errors from `nodeSelector`, `matchLabels` and `overhead`
//!   come out sorted by key.
//!
//! Not here: the relaxations an update gets when the old pod already broke a rule, the
//! legacy annotations (seccomp, AppArmor, tolerations), which need the pod's metadata, and
//! what kube's pod `PrepareForCreate` adds to affinity and spread selectors from the pod's
//! labels (`matchLabelKeys`), so a Pod is checked here as a template is.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{Ipv4Addr, Ipv6Addr};

use kubox_apimachinery::quantity::Quantity;
use kubox_apimachinery::validation::{self as v, FieldError};
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// Small readers and Go renderings

fn s<'a>(x: &'a Value, k: &str) -> &'a str {
    x.get(k).and_then(Value::as_str).unwrap_or_default()
}

fn items<'a>(x: &'a Value, k: &str) -> &'a [Value] {
    x.get(k)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// A field that is present and not null (a non-nil Go pointer, map or slice).
fn set<'a>(x: &'a Value, k: &str) -> Option<&'a Value> {
    x.get(k).filter(|v| !v.is_null())
}

fn is_true(x: &Value, k: &str) -> bool {
    x.get(k).and_then(Value::as_bool) == Some(true)
}

/// A string as Go's `encoding/json` writes it (HTML characters escaped): how a typed string,
/// a pointer to a string or a string in a struct shows in an error.
fn go_json_str(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON value as Go's `encoding/json` writes it (compact; object keys in the order given).
fn go_json(x: &Value) -> String {
    match x {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(t) => go_json_str(t),
        Value::Array(a) => format!("[{}]", a.iter().map(go_json).collect::<Vec<_>>().join(",")),
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{}:{}", go_json_str(k), go_json(v)))
                .collect::<Vec<_>>()
                .join(",")
        ),
    }
}

/// A Go pointer field: the JSON of what it points to, or `null`.
fn ptr(x: &Value, k: &str) -> String {
    set(x, k).map_or_else(|| "null".into(), go_json)
}

/// An internal (untagged) Go struct: its fields under their Go names, in declaration order.
fn go_struct(fields: &[(&str, String)]) -> String {
    let body: Vec<String> = fields
        .iter()
        .map(|(name, value)| format!("\"{name}\":{value}"))
        .collect();
    format!("{{{}}}", body.join(","))
}

/// `field.Invalid` for a typed string (an enum): its value shows as JSON.
fn invalid_typed(path: impl Into<String>, value: &str, detail: impl Into<String>) -> FieldError {
    FieldError::invalid_rendered(path, go_json_str(value), detail)
}

/// `field.NotSupported` for a typed string.
fn not_supported_typed(path: impl Into<String>, value: &str, supported: &[&str]) -> FieldError {
    FieldError::not_supported_rendered(path, go_json_str(value), supported)
}

fn label_key_errors(errs: &mut Vec<FieldError>, path: &str, key: &str) {
    errs.extend(v::validate_label_name(key, path));
}

fn subdomain_errors(errs: &mut Vec<FieldError>, path: &str, value: &str) {
    for m in v::is_dns1123_subdomain(value) {
        errs.push(FieldError::invalid(path, value, m));
    }
}

/// The string entries of a Go `map[string]string`, sorted by key.
fn string_map(x: &Value, k: &str) -> BTreeMap<String, String> {
    set(x, k)
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect()
}

const RANGE_ID: &str = "must be between 0 and 2147483647, inclusive";
const VALID_IP: &str = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";

/// kube's `IsValidUserID`/`IsValidGroupID` on an optional field.
fn id_errors(errs: &mut Vec<FieldError>, x: &Value, k: &str, path: &str) {
    if let Some(n) = set(x, k).and_then(Value::as_i64) {
        if !(0..=2_147_483_647).contains(&n) {
            errs.push(FieldError::invalid_rendered(path, n.to_string(), RANGE_ID));
        }
    }
}

/// Go's legacy IP parser (netutils.ParseIPSloppy): IPv4 octets may have leading zeros.
fn is_ip_sloppy(text: &str) -> bool {
    match text.bytes().find(|b| *b == b'.' || *b == b':') {
        Some(b'.') => ipv4_sloppy(text).is_some(),
        Some(_) => {
            text.parse::<Ipv6Addr>().is_ok()
                || text.rsplit_once(':').is_some_and(|(head, tail)| {
                    ipv4_sloppy(tail)
                        .is_some_and(|v4| format!("{head}:{v4}").parse::<Ipv6Addr>().is_ok())
                })
        }
        None => false,
    }
}

fn ipv4_sloppy(text: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = text.split('.');
    for o in &mut octets {
        let part = parts.next()?;
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let digits = part.trim_start_matches('0');
        if digits.len() > 3 {
            return None;
        }
        *o = if digits.is_empty() {
            0
        } else {
            digits.parse().ok()?
        };
    }
    if parts.next().is_some() {
        return None;
    }
    Some(Ipv4Addr::from(octets))
}

/// The containers kube's `VisitContainersWithPath` walks, with their paths: init containers,
/// containers, then ephemeral containers.
fn all_containers<'a>(spec: &'a Value, path: &str) -> Vec<(String, &'a Value)> {
    ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .flat_map(|list| {
            items(spec, list)
                .iter()
                .enumerate()
                .map(move |(i, c)| (format!("{path}.{list}[{i}]"), c))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Security contexts

fn seccomp_profile_errors(errs: &mut Vec<FieldError>, profile: &Value, q: &str) {
    const TYPES: &[&str] = &["Localhost", "RuntimeDefault", "Unconfined"];
    let ty = s(profile, "type");
    match ty {
        "" => errs.push(FieldError::required(
            format!("{q}.type"),
            "type is required when seccompProfile is set",
        )),
        t if !TYPES.contains(&t) => errs.push(not_supported_typed(format!("{q}.type"), t, TYPES)),
        _ => {}
    }
    let at = format!("{q}.localhostProfile");
    let local = set(profile, "localhostProfile");
    if ty == "Localhost" {
        match local {
            None => errs.push(FieldError::required(
                at,
                "must be set when seccomp type is Localhost",
            )),
            Some(p) => {
                let p = p.as_str().unwrap_or_default();
                if p.starts_with('/') {
                    errs.push(FieldError::invalid(&at, p, "must be a relative path"));
                }
                if p.split('/').any(|part| part == "..") {
                    errs.push(FieldError::invalid(&at, p, "must not contain '..'"));
                }
            }
        }
    } else if local.is_some() {
        let shown = go_struct(&[
            ("Type", go_json_str(ty)),
            ("LocalhostProfile", ptr(profile, "localhostProfile")),
        ]);
        errs.push(FieldError::invalid_rendered(
            at,
            shown,
            "can only be set when seccomp type is Localhost",
        ));
    }
}

fn app_armor_profile_errors(errs: &mut Vec<FieldError>, profile: &Value, a: &str) {
    const TYPES: &[&str] = &["Localhost", "RuntimeDefault", "Unconfined"];
    let at = format!("{a}.localhostProfile");
    let local = set(profile, "localhostProfile");
    match s(profile, "type") {
        "Localhost" => match local {
            None => errs.push(FieldError::required(
                at,
                "must be set when AppArmor type is Localhost",
            )),
            Some(p) => {
                let p = p.as_str().unwrap_or_default();
                if p.trim() != p {
                    errs.push(FieldError::invalid(
                        &at,
                        p,
                        "must not be padded with whitespace",
                    ));
                } else if p.is_empty() {
                    errs.push(FieldError::required(
                        &at,
                        "must be set when AppArmor type is Localhost",
                    ));
                }
                if p.len() > 4095 {
                    errs.push(FieldError::too_long(&at, 4095));
                }
            }
        },
        "RuntimeDefault" | "Unconfined" => {
            if let Some(p) = local {
                errs.push(FieldError::invalid_rendered(
                    at,
                    go_json(p),
                    "can only be set when AppArmor type is Localhost",
                ));
            }
        }
        "" => errs.push(FieldError::required(
            format!("{a}.type"),
            "type is required when appArmorProfile is set",
        )),
        t => errs.push(not_supported_typed(format!("{a}.type"), t, TYPES)),
    }
}

/// Matches `^[^\\/:\*\?"<>|\.][^\\/:\*\?"<>|]{0,14}$`.
fn is_netbios_domain(domain: &str) -> bool {
    const BAD: &[char] = &['\\', '/', ':', '*', '?', '"', '<', '>', '|'];
    let chars: Vec<char> = domain.chars().collect();
    match chars.split_first() {
        Some((first, rest)) => {
            !BAD.contains(first)
                && *first != '.'
                && rest.len() <= 14
                && rest.iter().all(|c| !BAD.contains(c))
        }
        None => false,
    }
}

/// Labels of `[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?` joined by dots.
fn is_windows_dns_domain(domain: &str) -> bool {
    domain.split('.').all(|label| {
        let b = label.as_bytes();
        match (b.first(), b.last()) {
            (Some(f), Some(l)) => {
                b.len() <= 63
                    && f.is_ascii_alphanumeric()
                    && l.is_ascii_alphanumeric()
                    && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
            }
            _ => false,
        }
    })
}

fn windows_options_errors(errs: &mut Vec<FieldError>, options: &Value, w: &str) {
    if let Some(name) = set(options, "gmsaCredentialSpecName") {
        let text = name.as_str().unwrap_or_default();
        for m in v::is_dns1123_subdomain(text) {
            errs.push(FieldError::invalid_rendered(
                format!("{w}.gmsaCredentialSpecName"),
                go_json(name),
                m,
            ));
        }
    }
    if let Some(spec) = set(options, "gmsaCredentialSpec") {
        let len = spec.as_str().unwrap_or_default().len();
        let message = if len == 0 {
            Some("gmsaCredentialSpec cannot be an empty string")
        } else if len > 64 * 1024 {
            Some("gmsaCredentialSpec size must be under 64 KiB")
        } else {
            None
        };
        if let Some(m) = message {
            errs.push(FieldError::invalid_rendered(
                format!("{w}.gmsaCredentialSpec"),
                go_json(spec),
                m,
            ));
        }
    }
    let Some(user_name) = set(options, "runAsUserName") else {
        return;
    };
    let at = format!("{w}.runAsUserName");
    let shown = go_json(user_name);
    let name = user_name.as_str().unwrap_or_default();
    let mut push = |m: &str| errs.push(FieldError::invalid_rendered(&at, shown.clone(), m));
    if name.is_empty() {
        push("runAsUserName cannot be an empty string");
        return;
    }
    if name.chars().any(|c| c.is_ascii_control()) {
        push("runAsUserName cannot contain control characters");
        return;
    }
    let parts: Vec<&str> = name.split('\\').collect();
    let (domain, user) = match parts.as_slice() {
        [user] => (None, *user),
        [domain, user] => (Some(*domain), *user),
        _ => {
            push("runAsUserName cannot contain more than one backslash");
            return;
        }
    };
    if domain.is_some_and(|d| d.len() >= 256) {
        push("runAsUserName's Domain length must be under 256 characters");
    }
    if domain.is_some_and(|d| !is_netbios_domain(d) && !is_windows_dns_domain(d)) {
        push("runAsUserName's Domain doesn't match the NetBios nor the DNS format");
    }
    if user.is_empty() {
        push("runAsUserName's User cannot be empty");
    } else if user.len() > 104 {
        push("runAsUserName's User length must not be longer than 104 characters");
    }
    if !user.is_empty() && user.chars().all(|c| c == '.' || c == ' ') {
        push("runAsUserName's User cannot contain only periods or spaces");
    }
    if user.chars().any(|c| "\"/\\:;|=,+*?<>@[]".contains(c)) {
        push(r#"runAsUserName's User cannot contain the following characters: "/\:;|=,+*?<>@[]"#);
    }
}

/// A container's `securityContext` as kube's internal `SecurityContext` prints in an error:
/// JSON with Go's field names, every field present.
fn internal_security_context(sc: &Value) -> String {
    let sub = |k: &str, render: &dyn Fn(&Value) -> String| {
        set(sc, k).map_or_else(|| "null".into(), render)
    };
    let capabilities = sub("capabilities", &|c| {
        go_struct(&[("Add", ptr(c, "add")), ("Drop", ptr(c, "drop"))])
    });
    let se_linux = sub("seLinuxOptions", &|o| {
        go_struct(&[
            ("User", go_json_str(s(o, "user"))),
            ("Role", go_json_str(s(o, "role"))),
            ("Type", go_json_str(s(o, "type"))),
            ("Level", go_json_str(s(o, "level"))),
        ])
    });
    let windows = sub("windowsOptions", &|o| {
        go_struct(&[
            ("GMSACredentialSpecName", ptr(o, "gmsaCredentialSpecName")),
            ("GMSACredentialSpec", ptr(o, "gmsaCredentialSpec")),
            ("RunAsUserName", ptr(o, "runAsUserName")),
            ("HostProcess", ptr(o, "hostProcess")),
        ])
    });
    let profile = |p: &Value| {
        go_struct(&[
            ("Type", go_json_str(s(p, "type"))),
            ("LocalhostProfile", ptr(p, "localhostProfile")),
        ])
    };
    go_struct(&[
        ("Capabilities", capabilities),
        ("Privileged", ptr(sc, "privileged")),
        ("SELinuxOptions", se_linux),
        ("WindowsOptions", windows),
        ("RunAsUser", ptr(sc, "runAsUser")),
        ("RunAsGroup", ptr(sc, "runAsGroup")),
        ("RunAsNonRoot", ptr(sc, "runAsNonRoot")),
        ("ReadOnlyRootFilesystem", ptr(sc, "readOnlyRootFilesystem")),
        (
            "AllowPrivilegeEscalation",
            ptr(sc, "allowPrivilegeEscalation"),
        ),
        ("ProcMount", ptr(sc, "procMount")),
        ("SeccompProfile", sub("seccompProfile", &profile)),
        ("AppArmorProfile", sub("appArmorProfile", &profile)),
    ])
}

/// kube's `ValidateSecurityContext` for the container at `at` (`host_users`: the pod's
/// `hostUsers`, true unless set false). Privileged containers are allowed (see the module
/// documentation).
pub(super) fn container_security_context(
    c: &Value,
    at: &str,
    host_users: bool,
    errs: &mut Vec<FieldError>,
) {
    let Some(sc) = set(c, "securityContext") else {
        return;
    };
    let p = format!("{at}.securityContext");
    id_errors(errs, sc, "runAsUser", &format!("{p}.runAsUser"));
    id_errors(errs, sc, "runAsGroup", &format!("{p}.runAsGroup"));
    if let Some(mount) = set(sc, "procMount") {
        let mount = mount.as_str().unwrap_or_default();
        const MOUNTS: &[&str] = &["Default", "Unmasked"];
        if !MOUNTS.contains(&mount) {
            errs.push(not_supported_typed(format!("{p}.procMount"), mount, MOUNTS));
        }
        if host_users && mount == "Unmasked" {
            errs.push(invalid_typed(
                format!("{p}.procMount"),
                mount,
                "`hostUsers` must be false to use `Unmasked`",
            ));
        }
    }
    if let Some(profile) = set(sc, "seccompProfile") {
        seccomp_profile_errors(errs, profile, &format!("{p}.seccompProfile"));
    }
    if sc.get("allowPrivilegeEscalation").and_then(Value::as_bool) == Some(false) {
        if is_true(sc, "privileged") {
            errs.push(FieldError::invalid_rendered(
                &p,
                internal_security_context(sc),
                "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
            ));
        }
        let added = set(sc, "capabilities").map_or(&[][..], |caps| items(caps, "add"));
        for cap in added {
            if cap.as_str() == Some("CAP_SYS_ADMIN") {
                errs.push(FieldError::invalid_rendered(
                    &p,
                    internal_security_context(sc),
                    "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN",
                ));
            }
        }
    }
    if let Some(options) = set(sc, "windowsOptions") {
        windows_options_errors(errs, options, &format!("{p}.windowsOptions"));
    }
    if let Some(profile) = set(sc, "appArmorProfile") {
        app_armor_profile_errors(errs, profile, &format!("{p}.appArmorProfile"));
    }
}

/// A sysctl name: segments of `[a-z0-9]([-_a-z0-9]*[a-z0-9])?` separated by `.` or `/`, at
/// most 253 characters.
fn is_sysctl_name(name: &str) -> bool {
    name.len() <= 253
        && name.split(['.', '/']).all(|segment| {
            let b = segment.as_bytes();
            let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
            match (b.first(), b.last()) {
                (Some(f), Some(l)) => {
                    alnum(f) && alnum(l) && b.iter().all(|c| alnum(c) || *c == b'-' || *c == b'_')
                }
                _ => false,
            }
        })
}

#[derive(PartialEq)]
enum SysctlNamespace {
    Net,
    Ipc,
    Unknown,
}

/// The kernel namespace a sysctl belongs to (component-helpers' `GetNamespace`).
fn sysctl_namespace(name: &str) -> SysctlNamespace {
    let slashed = name
        .find(['.', '/'])
        .is_some_and(|i| name.as_bytes().get(i) == Some(&b'/'));
    let mut normal: String = if slashed {
        name.chars()
            .map(|c| match c {
                '.' => '/',
                '/' => '.',
                c => c,
            })
            .collect()
    } else {
        name.to_string()
    };
    if let Some(star) = normal.find('*') {
        normal.truncate(star);
    }
    const IPC: &[&str] = &[
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
        "kernel.shm",
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.msg",
    ];
    if IPC.contains(&normal.as_str()) || normal.starts_with("fs.mqueue.") {
        SysctlNamespace::Ipc
    } else if normal.starts_with("net.") {
        SysctlNamespace::Net
    } else {
        SysctlNamespace::Unknown
    }
}

fn sysctl_errors(errs: &mut Vec<FieldError>, spec: &Value, sysctls: &[Value], p: &str) {
    let mut seen: HashSet<&str> = HashSet::new();
    for (i, sysctl) in sysctls.iter().enumerate() {
        let at = format!("{p}[{i}].name");
        let name = s(sysctl, "name");
        if name.is_empty() {
            errs.push(FieldError::required(&at, ""));
        } else if !is_sysctl_name(name) {
            errs.push(FieldError::invalid(
                &at,
                name,
                r"must have at most 253 characters and match regex ^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$",
            ));
        } else if seen.contains(&name) {
            errs.push(FieldError::duplicate(&at, name));
        }
        let namespace = sysctl_namespace(name);
        if is_true(spec, "hostNetwork") && namespace == SysctlNamespace::Net {
            errs.push(FieldError::invalid(
                &at,
                name,
                "may not be specified when 'hostNetwork' is true",
            ));
        } else if is_true(spec, "hostIPC") && namespace == SysctlNamespace::Ipc {
            errs.push(FieldError::invalid(
                &at,
                name,
                "may not be specified when 'hostIPC' is true",
            ));
        }
        seen.insert(name);
    }
}

/// kube's `validatePodSpecSecurityContext` (kube keeps the host namespace switches in it, so
/// they are read from the spec).
fn pod_security_context(spec: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let Some(sc) = set(spec, "securityContext") else {
        return;
    };
    let p = format!("{path}.securityContext");
    id_errors(errs, sc, "fsGroup", &format!("{p}.fsGroup"));
    id_errors(errs, sc, "runAsUser", &format!("{p}.runAsUser"));
    id_errors(errs, sc, "runAsGroup", &format!("{p}.runAsGroup"));
    for (g, gid) in items(sc, "supplementalGroups").iter().enumerate() {
        id_errors_value(errs, gid, &format!("{p}.supplementalGroups[{g}]"));
    }
    if is_true(spec, "shareProcessNamespace") && is_true(spec, "hostPID") {
        errs.push(FieldError::invalid_rendered(
            format!("{p}.shareProcessNamespace"),
            "true",
            "ShareProcessNamespace and HostPID cannot both be enabled",
        ));
    }
    let sysctls = items(sc, "sysctls");
    if !sysctls.is_empty() {
        sysctl_errors(errs, spec, sysctls, &format!("{p}.sysctls"));
    }
    if let Some(policy) = set(sc, "fsGroupChangePolicy") {
        const POLICIES: &[&str] = &["Always", "OnRootMismatch"];
        let policy = policy.as_str().unwrap_or_default();
        if !POLICIES.contains(&policy) {
            errs.push(not_supported_typed(
                format!("{p}.fsGroupChangePolicy"),
                policy,
                POLICIES,
            ));
        }
    }
    if let Some(profile) = set(sc, "seccompProfile") {
        seccomp_profile_errors(errs, profile, &format!("{p}.seccompProfile"));
    }
    if let Some(options) = set(sc, "windowsOptions") {
        windows_options_errors(errs, options, &format!("{p}.windowsOptions"));
    }
    if let Some(profile) = set(sc, "appArmorProfile") {
        app_armor_profile_errors(errs, profile, &format!("{p}.appArmorProfile"));
    }
    if let Some(policy) = set(sc, "supplementalGroupsPolicy") {
        const POLICIES: &[&str] = &["Merge", "Strict"];
        let policy = policy.as_str().unwrap_or_default();
        if !POLICIES.contains(&policy) {
            errs.push(not_supported_typed(
                format!("{p}.supplementalGroupsPolicy"),
                policy,
                POLICIES,
            ));
        }
    }
    if let Some(policy) = set(sc, "seLinuxChangePolicy") {
        let policy = policy.as_str().unwrap_or_default();
        if policy != "Recursive" {
            errs.push(not_supported_typed(
                format!("{p}.seLinuxChangePolicy"),
                policy,
                &["Recursive"],
            ));
        }
    }
}

fn id_errors_value(errs: &mut Vec<FieldError>, id: &Value, path: &str) {
    if let Some(n) = id.as_i64().filter(|n| !(0..=2_147_483_647).contains(n)) {
        errs.push(FieldError::invalid_rendered(path, n.to_string(), RANGE_ID));
    }
}

/// kube's `validateWindowsHostProcessPod`: all containers or none are hostProcess, and
/// hostProcess pods use the host's network.
fn windows_host_process(spec: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let host_process = |sc: Option<&Value>| {
        sc.and_then(|sc| set(sc, "windowsOptions"))
            .and_then(|w| set(w, "hostProcess"))
            .and_then(Value::as_bool)
    };
    let pod = host_process(set(spec, "securityContext"));
    let containers = all_containers(spec, path);
    let mut host_process_containers = 0;
    for (at, c) in &containers {
        let own = host_process(set(c, "securityContext"));
        if let (Some(pod), Some(own)) = (pod, own) {
            if pod != own {
                errs.push(FieldError::invalid_rendered(
                    format!("{at}.securityContext.windowsOptions.hostProcess"),
                    own.to_string(),
                    format!(
                        "pod hostProcess value must be identical if both are specified, was {pod}"
                    ),
                ));
            }
        }
        if own.or(pod) == Some(true) {
            host_process_containers += 1;
        }
    }
    if host_process_containers == 0 {
        return;
    }
    if host_process_containers != containers.len() {
        errs.push(FieldError::invalid(
            path,
            "",
            "If pod contains any hostProcess containers then all containers must be HostProcess containers",
        ));
    }
    if !is_true(spec, "hostNetwork") {
        errs.push(FieldError::invalid_rendered(
            format!("{path}.hostNetwork"),
            "false",
            "hostNetwork must be true if pod contains any hostProcess containers",
        ));
    }
}

/// kube's `validateHostUsers`: a pod in a user namespace shares no other namespace with the
/// host, and mounts no block devices.
fn host_users(spec: &Value, path: &str, errs: &mut Vec<FieldError>) {
    if spec.get("hostUsers").and_then(Value::as_bool) != Some(false) {
        return;
    }
    const DETAIL: &str = "when `hostUsers` is false";
    // kube's paths, capitals included.
    for (field, at) in [
        ("hostNetwork", "hostNetwork"),
        ("hostPID", "HostPID"),
        ("hostIPC", "HostIPC"),
    ] {
        if is_true(spec, field) {
            errs.push(FieldError::forbidden(format!("{path}.{at}"), DETAIL));
        }
    }
    for (at, c) in all_containers(spec, path) {
        if !items(c, "volumeDevices").is_empty() {
            errs.push(FieldError::forbidden(format!("{at}.volumeDevices"), DETAIL));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Affinity and topology spread

fn node_selector_term_errors(
    errs: &mut Vec<FieldError>,
    term: &Value,
    t: &str,
    check_values: bool,
) {
    for (j, e) in items(term, "matchExpressions").iter().enumerate() {
        let at = format!("{t}.matchExpressions[{j}]");
        let values = items(e, "values");
        match s(e, "operator") {
            "In" | "NotIn" if values.is_empty() => errs.push(FieldError::required(
                format!("{at}.values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            )),
            "Exists" | "DoesNotExist" if !values.is_empty() => errs.push(FieldError::forbidden(
                format!("{at}.values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )),
            "Gt" | "Lt" if values.len() != 1 => errs.push(FieldError::required(
                format!("{at}.values"),
                "must be specified single value when `operator` is 'Lt' or 'Gt'",
            )),
            "In" | "NotIn" | "Exists" | "DoesNotExist" | "Gt" | "Lt" => {}
            op => errs.push(invalid_typed(
                format!("{at}.operator"),
                op,
                "not a valid selector operator",
            )),
        }
        label_key_errors(errs, &format!("{at}.key"), s(e, "key"));
        if check_values {
            for (k, value) in values.iter().enumerate() {
                let value = value.as_str().unwrap_or_default();
                for m in v::is_valid_label_value(value) {
                    errs.push(FieldError::invalid(format!("{at}.values[{k}]"), value, m));
                }
            }
        }
    }
    for (j, f) in items(term, "matchFields").iter().enumerate() {
        let at = format!("{t}.matchFields[{j}]");
        let values = items(f, "values");
        match s(f, "operator") {
            "In" | "NotIn" => {
                if values.len() != 1 {
                    errs.push(FieldError::required(
                        format!("{at}.values"),
                        "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
                    ));
                }
            }
            op => errs.push(invalid_typed(
                format!("{at}.operator"),
                op,
                "not a valid selector operator",
            )),
        }
        let key = s(f, "key");
        if key != "metadata.name" {
            errs.push(FieldError::invalid(
                format!("{at}.key"),
                key,
                "not a valid field selector key",
            ));
        } else {
            for (k, value) in values.iter().enumerate() {
                let value = value.as_str().unwrap_or_default();
                subdomain_errors(errs, &format!("{at}.values[{k}]"), value);
            }
        }
    }
}

fn node_affinity_errors(errs: &mut Vec<FieldError>, affinity: &Value, n: &str) {
    if let Some(required) = set(affinity, "requiredDuringSchedulingIgnoredDuringExecution") {
        let at = format!("{n}.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms");
        let terms = items(required, "nodeSelectorTerms");
        if terms.is_empty() {
            errs.push(FieldError::required(
                at,
                "must have at least one node selector term",
            ));
        } else {
            for (i, term) in terms.iter().enumerate() {
                node_selector_term_errors(errs, term, &format!("{at}[{i}]"), true);
            }
        }
    }
    let preferred = items(affinity, "preferredDuringSchedulingIgnoredDuringExecution");
    for (i, term) in preferred.iter().enumerate() {
        let at = format!("{n}.preferredDuringSchedulingIgnoredDuringExecution[{i}]");
        weight_errors(errs, term, &at);
        // kube never checks the values of a preference: one node may still match.
        let preference = term.get("preference").unwrap_or(&Value::Null);
        node_selector_term_errors(errs, preference, &format!("{at}.preference"), false);
    }
}

fn weight_errors(errs: &mut Vec<FieldError>, term: &Value, at: &str) {
    let weight = term.get("weight").and_then(Value::as_i64).unwrap_or(0);
    if !(1..=100).contains(&weight) {
        errs.push(FieldError::invalid_rendered(
            format!("{at}.weight"),
            weight.to_string(),
            "must be in the range 1-100",
        ));
    }
}

fn string_items<'a>(x: &'a Value, k: &str) -> Vec<&'a str> {
    items(x, k)
        .iter()
        .map(|v| v.as_str().unwrap_or_default())
        .collect()
}

/// kube's `validateLabelKeys`: the keys of `matchLabelKeys` or `mismatchLabelKeys`.
fn label_keys_errors(
    errs: &mut Vec<FieldError>,
    at: &str,
    keys: &[&str],
    selector: Option<&Value>,
) {
    if keys.is_empty() {
        return;
    }
    if selector.is_none() {
        errs.push(FieldError::forbidden(
            at,
            "must not be specified when labelSelector is not set",
        ));
        return;
    }
    for (i, key) in keys.iter().enumerate() {
        label_key_errors(errs, &format!("{at}[{i}]"), key);
    }
}

/// kube's `ValidateMatchLabelKeysAndMismatchLabelKeys` for the term or constraint at `t`.
fn match_label_keys_errors(
    errs: &mut Vec<FieldError>,
    t: &str,
    match_keys: &[&str],
    mismatch_keys: &[&str],
    selector: Option<&Value>,
) {
    label_keys_errors(errs, &format!("{t}.matchLabelKeys"), match_keys, selector);
    label_keys_errors(
        errs,
        &format!("{t}.mismatchLabelKeys"),
        mismatch_keys,
        selector,
    );
    if let Some(selector) = selector {
        // Each key at its last place in matchLabelKeys (a Go map's overwrite).
        let last: HashMap<&str, usize> = match_keys
            .iter()
            .enumerate()
            .map(|(i, k)| (*k, i))
            .collect();
        let mut seen: HashSet<String> = string_map(selector, "matchLabels").into_keys().collect();
        for e in items(selector, "matchExpressions") {
            let key = s(e, "key");
            if let Some(&i) = last.get(key) {
                if seen.contains(key) {
                    errs.push(FieldError::invalid(
                        format!("{t}[{i}]"),
                        key,
                        "exists in both matchLabelKeys and labelSelector",
                    ));
                }
            }
            seen.insert(key.to_string());
        }
    }
    let mismatch: HashSet<&str> = mismatch_keys.iter().copied().collect();
    for (i, key) in match_keys.iter().enumerate() {
        if mismatch.contains(key) {
            errs.push(FieldError::invalid(
                format!("{t}.matchLabelKeys[{i}]"),
                key,
                "exists in both matchLabelKeys and mismatchLabelKeys",
            ));
        }
    }
}

fn pod_affinity_term_errors(errs: &mut Vec<FieldError>, term: &Value, t: &str) {
    let selector = set(term, "labelSelector");
    errs.extend(v::validate_label_selector_values(
        selector.unwrap_or(&Value::Null),
        &format!("{t}.labelSelector"),
        true,
    ));
    errs.extend(v::validate_label_selector_values(
        set(term, "namespaceSelector").unwrap_or(&Value::Null),
        &format!("{t}.namespaceSelector"),
        true,
    ));
    for ns in string_items(term, "namespaces") {
        for m in v::is_dns1123_label(ns) {
            errs.push(FieldError::invalid(format!("{t}.namespace"), ns, m));
        }
    }
    match_label_keys_errors(
        errs,
        t,
        &string_items(term, "matchLabelKeys"),
        &string_items(term, "mismatchLabelKeys"),
        selector,
    );
    let topology_key = s(term, "topologyKey");
    if topology_key.is_empty() {
        errs.push(FieldError::required(
            format!("{t}.topologyKey"),
            "can not be empty",
        ));
    }
    label_key_errors(errs, &format!("{t}.topologyKey"), topology_key);
}

fn pod_affinity_errors(errs: &mut Vec<FieldError>, affinity: &Value, p: &str) {
    let required = items(affinity, "requiredDuringSchedulingIgnoredDuringExecution");
    for (i, term) in required.iter().enumerate() {
        let at = format!("{p}.requiredDuringSchedulingIgnoredDuringExecution[{i}]");
        pod_affinity_term_errors(errs, term, &at);
    }
    let preferred = items(affinity, "preferredDuringSchedulingIgnoredDuringExecution");
    for (j, weighted) in preferred.iter().enumerate() {
        let at = format!("{p}.preferredDuringSchedulingIgnoredDuringExecution[{j}]");
        weight_errors(errs, weighted, &at);
        let term = weighted.get("podAffinityTerm").unwrap_or(&Value::Null);
        pod_affinity_term_errors(errs, term, &format!("{at}.podAffinityTerm"));
    }
}

fn affinity(spec: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let Some(affinity) = set(spec, "affinity") else {
        return;
    };
    let a = format!("{path}.affinity");
    if let Some(node) = set(affinity, "nodeAffinity") {
        node_affinity_errors(errs, node, &format!("{a}.nodeAffinity"));
    }
    for kind in ["podAffinity", "podAntiAffinity"] {
        if let Some(pod) = set(affinity, kind) {
            pod_affinity_errors(errs, pod, &format!("{a}.{kind}"));
        }
    }
}

fn topology_spread_constraints(spec: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let constraints = items(spec, "topologySpreadConstraints");
    for (i, c) in constraints.iter().enumerate() {
        let at = format!("{path}.topologySpreadConstraints[{i}]");
        let max_skew = c.get("maxSkew").and_then(Value::as_i64).unwrap_or(0);
        if max_skew <= 0 {
            errs.push(FieldError::invalid_rendered(
                format!("{at}.maxSkew"),
                max_skew.to_string(),
                "must be greater than zero",
            ));
        }
        let key = s(c, "topologyKey");
        if key.is_empty() {
            errs.push(FieldError::required(
                format!("{at}.topologyKey"),
                "can not be empty",
            ));
        }
        let action = s(c, "whenUnsatisfiable");
        const ACTIONS: &[&str] = &["DoNotSchedule", "ScheduleAnyway"];
        if !ACTIONS.contains(&action) {
            errs.push(not_supported_typed(
                format!("{at}.whenUnsatisfiable"),
                action,
                ACTIONS,
            ));
        }
        let repeated = constraints
            .get(i + 1..)
            .unwrap_or_default()
            .iter()
            .any(|later| s(later, "topologyKey") == key && s(later, "whenUnsatisfiable") == action);
        if repeated {
            errs.push(FieldError::duplicate(
                format!("{at}.{{topologyKey, whenUnsatisfiable}}"),
                &format!("{{{key}, {action}}}"),
            ));
        }
        if let Some(min) = set(c, "minDomains").and_then(Value::as_i64) {
            if min <= 0 {
                errs.push(FieldError::invalid_rendered(
                    format!("{at}.minDomains"),
                    min.to_string(),
                    "must be greater than zero",
                ));
            }
            if action != "DoNotSchedule" {
                errs.push(FieldError::invalid_rendered(
                    format!("{at}.minDomains"),
                    min.to_string(),
                    format!(
                        "can only use minDomains if whenUnsatisfiable=DoNotSchedule, not {action}"
                    ),
                ));
            }
        }
        for field in ["nodeAffinityPolicy", "nodeTaintsPolicy"] {
            if let Some(policy) = set(c, field) {
                const POLICIES: &[&str] = &["Honor", "Ignore"];
                let policy = policy.as_str().unwrap_or_default();
                if !POLICIES.contains(&policy) {
                    errs.push(not_supported_typed(
                        format!("{at}.{field}"),
                        policy,
                        POLICIES,
                    ));
                }
            }
        }
        let selector = set(c, "labelSelector");
        match_label_keys_errors(errs, &at, &string_items(c, "matchLabelKeys"), &[], selector);
        errs.extend(v::validate_label_selector_values(
            selector.unwrap_or(&Value::Null),
            &format!("{at}.labelSelector"),
            true,
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// DNS, host aliases, readiness gates

/// Go's `IsDNS1123SubdomainWithUnderscore`: each label may start with `_`, and holds `_`.
fn subdomain_with_underscore_problems(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    if value.len() > 253 {
        out.push(v::max_len_error(253));
    }
    let label_ok = |label: &str| {
        let label = label.strip_prefix('_').unwrap_or(label);
        let b = label.as_bytes();
        let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        match (b.first(), b.last()) {
            (Some(f), Some(l)) => {
                alnum(f) && alnum(l) && b.iter().all(|c| alnum(c) || *c == b'-' || *c == b'_')
            }
            _ => false,
        }
    };
    if !value.split('.').all(label_ok) {
        out.push(v::regex_error(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '_', '-' or '.', and must start and end with an alphanumeric character",
            r"_?[a-z0-9]([-_a-z0-9]*[a-z0-9])?(\._?[a-z0-9]([-_a-z0-9]*[a-z0-9])?)*",
            &["example.com"],
        ));
    }
    out
}

fn dns_config(spec: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let d = format!("{path}.dnsConfig");
    let config = set(spec, "dnsConfig");
    if s(spec, "dnsPolicy") == "None" {
        let Some(config) = config else {
            errs.push(FieldError::required(
                d,
                "must provide `dnsConfig` when `dnsPolicy` is None",
            ));
            return;
        };
        if items(config, "nameservers").is_empty() {
            errs.push(FieldError::required(
                format!("{d}.nameservers"),
                "must provide at least one DNS nameserver when `dnsPolicy` is None",
            ));
            return;
        }
    }
    let Some(config) = config else {
        return;
    };
    let nameservers = items(config, "nameservers");
    if nameservers.len() > 3 {
        errs.push(FieldError::invalid_rendered(
            format!("{d}.nameservers"),
            go_json(&config["nameservers"]),
            "must not have more than 3 nameservers",
        ));
    }
    for (i, ns) in nameservers.iter().enumerate() {
        let ns = ns.as_str().unwrap_or_default();
        if !is_ip_sloppy(ns) {
            errs.push(FieldError::invalid(
                format!("{d}.nameservers[{i}]"),
                ns,
                VALID_IP,
            ));
        }
    }
    let searches = string_items(config, "searches");
    if searches.len() > 32 {
        errs.push(FieldError::invalid_rendered(
            format!("{d}.searches"),
            go_json(&config["searches"]),
            "must not have more than 32 search paths",
        ));
    }
    if searches.join(" ").len() > 2048 {
        errs.push(FieldError::invalid_rendered(
            format!("{d}.searches"),
            go_json(&config["searches"]),
            "must not have more than 2048 characters (including spaces) in the search list",
        ));
    }
    for (i, search) in searches.iter().enumerate() {
        if *search == "." {
            continue;
        }
        let search = search.strip_suffix('.').unwrap_or(search);
        for m in subdomain_with_underscore_problems(search) {
            errs.push(FieldError::invalid(format!("{d}.searches[{i}]"), search, m));
        }
    }
    for (i, option) in items(config, "options").iter().enumerate() {
        if s(option, "name").is_empty() {
            errs.push(FieldError::required(
                format!("{d}.options[{i}]"),
                "must not be empty",
            ));
        }
    }
}

fn host_aliases(spec: &Value, path: &str, errs: &mut Vec<FieldError>) {
    for (i, alias) in items(spec, "hostAliases").iter().enumerate() {
        let at = format!("{path}.hostAliases[{i}]");
        let ip = s(alias, "ip");
        if !is_ip_sloppy(ip) {
            errs.push(FieldError::invalid(format!("{at}.ip"), ip, VALID_IP));
        }
        for (j, hostname) in string_items(alias, "hostnames").iter().enumerate() {
            subdomain_errors(errs, &format!("{at}.hostnames[{j}]"), hostname);
        }
    }
}

fn readiness_gates(spec: &Value, path: &str, errs: &mut Vec<FieldError>) {
    for (i, gate) in items(spec, "readinessGates").iter().enumerate() {
        let at = format!("{path}.readinessGates[{i}].conditionType");
        label_key_errors(errs, &at, s(gate, "conditionType"));
    }
}

// ---------------------------------------------------------------------------------------------
// Tolerations, priority, overhead, os

fn tolerations(spec: &Value, path: &str, errs: &mut Vec<FieldError>) {
    for (i, t) in items(spec, "tolerations").iter().enumerate() {
        let at = format!("{path}.tolerations[{i}]");
        let (key, operator, effect, value) =
            (s(t, "key"), s(t, "operator"), s(t, "effect"), s(t, "value"));
        if !key.is_empty() {
            label_key_errors(errs, &format!("{at}.key"), key);
        }
        if key.is_empty() && operator != "Exists" {
            errs.push(invalid_typed(
                format!("{at}.operator"),
                operator,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        if set(t, "tolerationSeconds").is_some() && effect != "NoExecute" {
            errs.push(invalid_typed(
                format!("{at}.effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        match operator {
            "Equal" | "" => {
                let problems = v::is_valid_label_value(value);
                if !problems.is_empty() {
                    errs.push(FieldError::invalid(
                        format!("{at}.operator"),
                        value,
                        problems.join(";"),
                    ));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    errs.push(FieldError::invalid(
                        format!("{at}.operator"),
                        value,
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            // Alpha in 1.35 (TaintTolerationComparisonOperators), so refused; the list of
            // supported values names them all the same, as kube's does.
            "Lt" | "Gt" => errs.push(not_supported_typed(
                format!("{at}.operator"),
                operator,
                &["Equal", "Exists", "Lt", "Gt"],
            )),
            other => errs.push(not_supported_typed(
                format!("{at}.operator"),
                other,
                &["Equal", "Exists"],
            )),
        }
        const EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];
        if !effect.is_empty() && !EFFECTS.contains(&effect) {
            errs.push(not_supported_typed(format!("{at}.effect"), effect, EFFECTS));
        }
    }
}

fn priority(spec: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let class = s(spec, "priorityClassName");
    if !class.is_empty() {
        subdomain_errors(errs, &format!("{path}.priorityClassName"), class);
    }
}

fn preemption_policy(spec: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let Some(policy) = set(spec, "preemptionPolicy") else {
        return;
    };
    const POLICIES: &[&str] = &["PreemptLowerPriority", "Never"];
    match policy.as_str().unwrap_or_default() {
        "" => errs.push(FieldError::required(format!("{path}.preemptionPolicy"), "")),
        p if !POLICIES.contains(&p) => errs.push(not_supported_typed(
            format!("{path}.preemptionPolicy"),
            p,
            POLICIES,
        )),
        _ => {}
    }
}

const STANDARD_RESOURCES: &[&str] = &[
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
    "resourcequotas",
    "services",
    "replicationcontrollers",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "storage",
    "requests.storage",
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

fn is_native_resource(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

fn is_extended_resource(name: &str) -> bool {
    !is_native_resource(name)
        && !name.starts_with("requests.")
        && v::is_qualified_name(&format!("requests.{name}")).is_empty()
}

/// kube's `validateContainerResourceName`.
fn container_resource_name_errors(errs: &mut Vec<FieldError>, name: &str, at: &str) {
    let problems = v::is_qualified_name(name);
    let qualified = problems.is_empty();
    for m in problems {
        errs.push(invalid_typed(at, name, m));
    }
    let standard = STANDARD_RESOURCES.contains(&name)
        || name.starts_with("hugepages-")
        || name.starts_with("requests.hugepages-");
    if !name.contains('/') {
        if qualified && !standard {
            errs.push(invalid_typed(
                at,
                name,
                "must be a standard resource type or fully qualified",
            ));
        }
        let container = matches!(name, "cpu" | "memory" | "ephemeral-storage")
            || name.starts_with("hugepages-");
        if !container {
            errs.push(invalid_typed(
                at,
                name,
                "must be a standard resource for containers",
            ));
        }
    } else if !is_native_resource(name) && !is_extended_resource(name) {
        errs.push(invalid_typed(
            at,
            name,
            "doesn't follow extended resource name standard",
        ));
    }
}

fn quantity_of(x: &Value) -> Option<Quantity> {
    match x {
        Value::String(t) => Quantity::parse(t),
        Value::Number(n) => Quantity::parse(&n.to_string()),
        _ => None,
    }
}

/// kube's `IsHugePageResourceValueDivisible`.
fn hugepages_divisible(name: &str, q: &Quantity) -> bool {
    let Some(page) = name.strip_prefix("hugepages-").and_then(Quantity::parse) else {
        return false;
    };
    let page_size = page.scaled_value(0);
    if page.is_negative() || page.is_zero() || page.scaled_value(-3) % 1000 != 0 || page_size == 0 {
        return false;
    }
    q.scaled_value(0) % page_size == 0
}

/// kube's `validateOverhead`: the overhead is checked as a container's limits are, at
/// `spec.overhead.limits[<name>]`.
fn overhead(spec: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let Some(list) = set(spec, "overhead").and_then(Value::as_object) else {
        return;
    };
    let o = format!("{path}.overhead");
    let mut cpu_or_memory = false;
    let mut hugepages = false;
    let sorted: BTreeMap<&String, &Value> = list.iter().collect();
    for (name, value) in sorted {
        let at = format!("{o}.limits[{name}]");
        container_resource_name_errors(errs, name, &at);
        if let Some(q) = quantity_of(value) {
            if q.is_negative() {
                errs.push(FieldError::invalid(
                    &at,
                    &q.to_string(),
                    "must be greater than or equal to 0",
                ));
            }
            let integer = INTEGER_RESOURCES.contains(&name.as_str()) || is_extended_resource(name);
            if integer && q.scaled_value(-3) % 1000 != 0 {
                errs.push(invalid_typed(&at, &q.to_string(), "must be an integer"));
            }
            if name.starts_with("hugepages-") && !hugepages_divisible(name, &q) {
                errs.push(FieldError::invalid(
                    &at,
                    &q.to_string(),
                    format!("{q} is not positive integer multiple of {name}"),
                ));
            }
        }
        hugepages |= name.starts_with("hugepages-");
        cpu_or_memory |= matches!(name.as_str(), "cpu" | "memory");
    }
    if hugepages && !cpu_or_memory {
        errs.push(FieldError::forbidden(o, "HugePages require cpu or memory"));
    }
}

/// kube's `validateLinux`: Windows options have no place in a Linux pod.
fn linux_pod(spec: &Value, path: &str, errs: &mut Vec<FieldError>) {
    const DETAIL: &str = "windows options cannot be set for a linux pod";
    if set(spec, "securityContext").is_some_and(|sc| set(sc, "windowsOptions").is_some()) {
        errs.push(FieldError::forbidden(
            format!("{path}.securityContext.windowsOptions"),
            DETAIL,
        ));
    }
    for (at, c) in all_containers(spec, path) {
        if set(c, "securityContext").is_some_and(|sc| set(sc, "windowsOptions").is_some()) {
            errs.push(FieldError::forbidden(
                format!("{at}.securityContext.windowsOptions"),
                DETAIL,
            ));
        }
    }
}

/// kube's `validateWindows`: the Linux-only fields a Windows pod may not set.
fn windows_pod(spec: &Value, path: &str, errs: &mut Vec<FieldError>) {
    const DETAIL: &str = "cannot be set for a windows pod";
    let sc = set(spec, "securityContext").unwrap_or(&Value::Null);
    let in_sc = |k: &str| set(sc, k).is_some();
    let fields: [(bool, &str); 15] = [
        (in_sc("appArmorProfile"), "securityContext.appArmorProfile"),
        (in_sc("seLinuxOptions"), "securityContext.seLinuxOptions"),
        (set(spec, "hostUsers").is_some(), "hostUsers"),
        (is_true(spec, "hostPID"), "hostPID"),
        (is_true(spec, "hostIPC"), "hostIPC"),
        (in_sc("seccompProfile"), "securityContext.seccompProfile"),
        (in_sc("fsGroup"), "securityContext.fsGroup"),
        (
            in_sc("fsGroupChangePolicy"),
            "securityContext.fsGroupChangePolicy",
        ),
        (!items(sc, "sysctls").is_empty(), "securityContext.sysctls"),
        (
            set(spec, "shareProcessNamespace").is_some(),
            "shareProcessNamespace",
        ),
        (in_sc("runAsUser"), "securityContext.runAsUser"),
        (in_sc("runAsGroup"), "securityContext.runAsGroup"),
        (
            in_sc("supplementalGroups"),
            "securityContext.supplementalGroups",
        ),
        (
            in_sc("supplementalGroupsPolicy"),
            "securityContext.supplementalGroupsPolicy",
        ),
        (
            in_sc("seLinuxChangePolicy"),
            "securityContext.seLinuxChangePolicy",
        ),
    ];
    for (present, field) in fields {
        if present {
            errs.push(FieldError::forbidden(format!("{path}.{field}"), DETAIL));
        }
    }
    for (at, c) in all_containers(spec, path) {
        let Some(sc) = set(c, "securityContext") else {
            continue;
        };
        for field in [
            "appArmorProfile",
            "seLinuxOptions",
            "seccompProfile",
            "capabilities",
            "readOnlyRootFilesystem",
            "privileged",
            "allowPrivilegeEscalation",
            "procMount",
            "runAsUser",
            "runAsGroup",
        ] {
            if set(sc, field).is_some() {
                errs.push(FieldError::forbidden(
                    format!("{at}.securityContext.{field}"),
                    DETAIL,
                ));
            }
        }
    }
}

fn os(spec: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let Some(os) = set(spec, "os") else {
        return;
    };
    match s(os, "name") {
        "" => errs.push(FieldError::required(format!("{path}.os.name"), "")),
        "linux" => linux_pod(spec, path, errs),
        "windows" => windows_pod(spec, path, errs),
        other => errs.push(not_supported_typed(
            format!("{path}.os"),
            other,
            &["linux", "windows"],
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// What pods.rs calls, in kube's order

/// After all containers: the ephemeral containers' security contexts (the init and regular
/// ones are checked with the rest of each container), then the hostNetwork port rule.
pub(super) fn after_containers(spec: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let host_users = spec.get("hostUsers").and_then(Value::as_bool) != Some(false);
    for (i, c) in items(spec, "ephemeralContainers").iter().enumerate() {
        container_security_context(
            c,
            &format!("{path}.ephemeralContainers[{i}]"),
            host_users,
            errs,
        );
    }
    if !is_true(spec, "hostNetwork") {
        return;
    }
    // A template's unset host port is allowed (the pod's defaulting copies the container
    // port); a Pod's has been defaulted already, as kube's SetDefaults_Pod does.
    for (i, c) in items(spec, "containers").iter().enumerate() {
        for (j, port) in items(c, "ports").iter().enumerate() {
            let host = port.get("hostPort").and_then(Value::as_i64).unwrap_or(0);
            let container = port
                .get("containerPort")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            if host != 0 && host != container {
                errs.push(FieldError::invalid_rendered(
                    format!("{path}.containers[{i}].ports[{j}].hostPort"),
                    host.to_string(),
                    "must match `containerPort` when `hostNetwork` is true",
                ));
            }
        }
    }
}

/// After `dnsPolicy`: nodeSelector, the pod's security context, affinity, dnsConfig,
/// readiness gates, topology spread constraints, hostProcess and hostUsers.
pub(super) fn after_dns_policy(spec: &Value, path: &str, errs: &mut Vec<FieldError>) {
    errs.extend(v::validate_labels(
        &string_map(spec, "nodeSelector"),
        &format!("{path}.nodeSelector"),
    ));
    pod_security_context(spec, path, errs);
    affinity(spec, path, errs);
    dns_config(spec, path, errs);
    readiness_gates(spec, path, errs);
    topology_spread_constraints(spec, path, errs);
    windows_host_process(spec, path, errs);
    host_users(spec, path, errs);
}

/// After `subdomain`: tolerations, host aliases, priority class, preemption policy,
/// overhead, then the OS and its field rules.
pub(super) fn after_subdomain(spec: &Value, path: &str, errs: &mut Vec<FieldError>) {
    tolerations(spec, path, errs);
    host_aliases(spec, path, errs);
    priority(spec, path, errs);
    preemption_policy(spec, path, errs);
    overhead(spec, path, errs);
    os(spec, path, errs);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn go_json_escapes_html_characters_as_go_does() {
        assert_eq!(
            go_json_str("a<b>&\"\\\n"),
            r#""a\u003cb\u003e\u0026\"\\\n""#
        );
        assert_eq!(
            go_json(&serde_json::json!(["1.2.3.4", "x"])),
            r#"["1.2.3.4","x"]"#
        );
    }

    #[test]
    fn legacy_ip_parsing_accepts_leading_zeros() {
        for ok in [
            "10.0.0.1",
            "010.001.0.1",
            "::1",
            "2001:db8::ffff",
            "::ffff:01.2.3.4",
        ] {
            assert!(is_ip_sloppy(ok), "{ok}");
        }
        for bad in [
            "",
            "1.2.3",
            "1.2.3.256",
            "1.2.3.4.5",
            "a.b.c.d",
            "fe80::1%eth0",
            "host",
        ] {
            assert!(!is_ip_sloppy(bad), "{bad}");
        }
    }

    #[test]
    fn sysctl_names_and_namespaces() {
        assert!(is_sysctl_name("net.ipv4.conf.eno2/100.rp_filter"));
        assert!(is_sysctl_name("kernel.shm_rmid_forced"));
        assert!(!is_sysctl_name("Net.x") && !is_sysctl_name("a..b") && !is_sysctl_name(""));
        assert!(sysctl_namespace("net/ipv4/ip_forward") == SysctlNamespace::Net);
        assert!(sysctl_namespace("kernel.msg*") == SysctlNamespace::Ipc);
        assert!(sysctl_namespace("fs.mqueue.queues_max") == SysctlNamespace::Ipc);
        assert!(sysctl_namespace("kernel.shm") == SysctlNamespace::Ipc);
        assert!(sysctl_namespace("kernel.pid_max") == SysctlNamespace::Unknown);
    }

    #[test]
    fn hugepages_must_be_whole_pages() {
        let q = |t: &str| Quantity::parse(t).unwrap();
        assert!(hugepages_divisible("hugepages-2Mi", &q("4Mi")));
        assert!(!hugepages_divisible("hugepages-2Mi", &q("3Mi")));
        assert!(!hugepages_divisible("hugepages-x", &q("2Mi")));
    }

    #[test]
    fn windows_domains() {
        assert!(is_netbios_domain("CORP") && !is_netbios_domain(".corp"));
        assert!(!is_netbios_domain("ABCDEFGHIJKLMNOP"));
        assert!(is_windows_dns_domain("corp.example.com"));
        assert!(!is_windows_dns_domain("-corp.example"));
    }
}
