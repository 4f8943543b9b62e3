//! Pod specs validated as kube-apiserver 1.35 validates them beyond containers and volumes:
//! tolerations, the pod's and the containers' security contexts, affinity, topology spread,
//! nodeSelector, dnsConfig, hostAliases, readiness gates, priority, overhead and os. For each
//! rule a pod kube refuses, refused with kube's causes (field, type, value, message) in kube's
//! order; pods that kubectl and real charts write are accepted; a workload's template gets the
//! same rules at its own path.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::{json, Value};

const PODS: &str = "/api/v1/namespaces/default/pods";
const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/default/deployments";

const NAME_PART: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_KEY: &str = "a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')";
const LABEL_VALUE: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const SUBDOMAIN: &str = r"a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const SUBDOMAIN_UNDERSCORE: &str = r"a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '_', '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '_?[a-z0-9]([-_a-z0-9]*[a-z0-9])?(\._?[a-z0-9]([-_a-z0-9]*[a-z0-9])?)*')";
const DNS_LABEL: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const VALID_IP: &str = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";
const ID_RANGE: &str = "must be between 0 and 2147483647, inclusive";

/// The causes of a 422 as `field: message` lines, or the answer when it is not a 422.
fn causes(r: &Resp) -> Result<Vec<String>, String> {
    if r.status.as_u16() != 422 {
        return Err(format!("{}: {}", r.status, r.json()));
    }
    Ok(r.invalid_causes())
}

/// A pod; a spec without containers gets one plain container.
fn pod(name: &str, mut spec: Value) -> Value {
    if spec.get("containers").is_none() {
        spec["containers"] = json!([{"name": "c", "image": "nginx:1.27"}]);
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "web"}}, "spec": spec})
}

/// The plain container with a security context.
fn secured(sc: Value) -> Value {
    json!([{"name": "c", "image": "nginx:1.27", "securityContext": sc}])
}

/// Posts each case's pod and compares its causes with kube's.
async fn refused(h: &ServerHandle, cases: Vec<(&str, Value, Vec<String>)>) {
    for (i, (what, spec, expected)) in cases.into_iter().enumerate() {
        let r = post_json(h, PODS, &pod(&format!("bad-{i}"), spec)).await;
        assert_eq!(causes(&r), Ok(expected), "{what}");
    }
}

fn lines(expected: &[&str]) -> Vec<String> {
    expected.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn pods_as_kubectl_and_charts_write_them_are_accepted() {
    let h = server().await;
    // What `kubectl run web --image nginx` sends.
    let run = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"labels": {"run": "web"}, "name": "web"},
        "spec": {"containers": [{"image": "nginx", "name": "web", "resources": {}}],
                 "dnsPolicy": "ClusterFirst", "restartPolicy": "Always"}, "status": {}});
    let r = post_json(&h, PODS, &run).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    let hardened = json!({
        "securityContext": {"runAsNonRoot": true, "runAsUser": 1000, "runAsGroup": 3000, "fsGroup": 2000,
            "fsGroupChangePolicy": "OnRootMismatch", "supplementalGroups": [4000], "supplementalGroupsPolicy": "Merge",
            "seccompProfile": {"type": "RuntimeDefault"}, "seLinuxOptions": {"level": "s0:c123,c456"},
            "seLinuxChangePolicy": "Recursive",
            "sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}, {"name": "kernel.shm_rmid_forced", "value": "1"}]},
        "initContainers": [{"name": "init", "image": "busybox:1.36",
            "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}],
        "containers": [{"name": "app", "image": "ghcr.io/example/app:1.2.3", "ports": [{"name": "http", "containerPort": 8080}],
            "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "runAsNonRoot": true,
                "privileged": false, "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
                "seccompProfile": {"type": "RuntimeDefault"}, "appArmorProfile": {"type": "RuntimeDefault"},
                "procMount": "Default"}},
            {"name": "profiled", "image": "busybox:1.36", "securityContext": {
                "seccompProfile": {"type": "Localhost", "localhostProfile": "profiles/audit.json"},
                "appArmorProfile": {"type": "Localhost", "localhostProfile": "k8s-apparmor-example-deny-write"}}}],
        "tolerations": [{"operator": "Exists"},
            {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"},
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"},
            {"key": "example.com/spot", "value": "true", "effect": "PreferNoSchedule"}],
        "nodeSelector": {"kubernetes.io/os": "linux", "disktype": ""},
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["eu-1a", "eu-1b"]},
                                          {"key": "cpu-count", "operator": "Gt", "values": ["4"]},
                                          {"key": "spot", "operator": "DoesNotExist"}]},
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node-1"]}]},
                    {}]},
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 50, "preference": {"matchExpressions": [{"key": "disktype", "operator": "In", "values": ["ssd"]}]}}]},
            "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["db"]}]},
                 "namespaces": ["default"], "namespaceSelector": {}, "topologyKey": "topology.kubernetes.io/zone"}]},
            "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "web"}},
                    "matchLabelKeys": ["pod-template-hash"], "mismatchLabelKeys": ["tenant"],
                    "topologyKey": "kubernetes.io/hostname"}}]}},
        "topologySpreadConstraints": [
            {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule",
             "labelSelector": {"matchLabels": {"app": "web"}}, "minDomains": 2, "nodeAffinityPolicy": "Honor",
             "nodeTaintsPolicy": "Ignore", "matchLabelKeys": ["pod-template-hash"]},
            {"maxSkew": 2, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway"}],
        "dnsPolicy": "None",
        "dnsConfig": {"nameservers": ["10.96.0.10", "fd00::a"], "searches": ["default.svc.cluster.local", "svc.cluster.local.", ".", "_tcp.example.com"],
                      "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]},
        "hostAliases": [{"ip": "127.0.0.1", "hostnames": ["foo.local", "bar.local"]}, {"ip": "::1"}],
        "readinessGates": [{"conditionType": "www.example.com/feature-1"}],
        "os": {"name": "linux"}});
    // The host's namespaces with a privileged container (kubectl debug node/…, node
    // exporters): allowed, the cluster allowing privileged pods. The host port is defaulted.
    let host = json!({"hostNetwork": true, "hostPID": true, "hostIPC": true,
        "containers": [{"name": "debugger", "image": "busybox:1.36", "ports": [{"containerPort": 9100}],
            "securityContext": {"privileged": true, "allowPrivilegeEscalation": true,
                                "capabilities": {"add": ["SYS_ADMIN", "NET_ADMIN", "CAP_SYS_ADMIN"]}}}],
        "volumes": [{"name": "host-root", "hostPath": {"path": "/"}}]});
    let user_namespace =
        json!({"hostUsers": false, "containers": secured(json!({"procMount": "Unmasked"}))});
    let windows = json!({"os": {"name": "windows"},
        "securityContext": {"windowsOptions": {"runAsUserName": "ContainerUser", "gmsaCredentialSpecName": "webapp-gmsa"}},
        "containers": [{"name": "c", "image": "mcr.microsoft.com/windows/nanoserver:ltsc2022",
            "securityContext": {"windowsOptions": {"hostProcess": false, "runAsUserName": "NT AUTHORITY\\NETWORK SERVICE"}}}]});
    let host_process = json!({"os": {"name": "windows"}, "hostNetwork": true,
        "securityContext": {"windowsOptions": {"hostProcess": true, "runAsUserName": "NT AUTHORITY\\SYSTEM"}}});
    for (name, spec) in [
        ("hardened", hardened),
        ("host", host),
        ("userns", user_namespace),
        ("windows", windows),
        ("host-process", host_process),
    ] {
        let r = post_json(&h, PODS, &pod(name, spec)).await;
        assert_eq!(r.status.as_u16(), 201, "{name}: {}", r.json());
    }
    let stored = get(&h, &format!("{PODS}/host")).await.json();
    assert_eq!(
        stored["spec"]["containers"][0]["ports"][0]["hostPort"], 9100,
        "{stored}"
    );
}

#[tokio::test]
async fn tolerations_are_validated_as_kube_validates_them() {
    let h = server().await;
    let long_bad = format!("-{}", "a".repeat(63));
    let cases: Vec<(&str, Value, Vec<String>)> = vec![
        (
            "key",
            json!({"tolerations": [{"key": "a/b/c", "operator": "Exists"}]}),
            vec![format!(
                r#"spec.tolerations[0].key: Invalid value: "a/b/c": {LABEL_KEY}"#
            )],
        ),
        (
            "no key, not Exists",
            json!({"tolerations": [{"operator": "Equal", "value": "x"}]}),
            lines(&[
                r#"spec.tolerations[0].operator: Invalid value: "Equal": operator must be Exists when `key` is empty, which means "match all values and all keys""#,
            ]),
        ),
        (
            "no key, no operator",
            json!({"tolerations": [{"effect": "NoSchedule"}]}),
            lines(&[
                r#"spec.tolerations[0].operator: Invalid value: "": operator must be Exists when `key` is empty, which means "match all values and all keys""#,
            ]),
        ),
        (
            "seconds without NoExecute",
            json!({"tolerations": [{"operator": "Exists", "tolerationSeconds": 30}]}),
            lines(&[
                r#"spec.tolerations[0].effect: Invalid value: "": effect must be 'NoExecute' when `tolerationSeconds` is set"#,
            ]),
        ),
        (
            "value",
            json!({"tolerations": [{"key": "k", "value": "a b"}]}),
            vec![format!(
                r#"spec.tolerations[0].operator: Invalid value: "a b": {LABEL_VALUE}"#
            )],
        ),
        (
            "value problems joined",
            json!({"tolerations": [{"key": "k", "operator": "Equal", "value": long_bad}]}),
            vec![format!(
                r#"spec.tolerations[0].operator: Invalid value: "{long_bad}": must be no more than 63 bytes;{LABEL_VALUE}"#
            )],
        ),
        (
            "value with Exists",
            json!({"tolerations": [{"key": "k", "operator": "Exists", "value": "v"}]}),
            lines(&[
                r#"spec.tolerations[0].operator: Invalid value: "v": value must be empty when `operator` is 'Exists'"#,
            ]),
        ),
        (
            "comparison operator",
            json!({"tolerations": [{"key": "k", "operator": "Lt", "value": "5"}]}),
            lines(&[
                r#"spec.tolerations[0].operator: Unsupported value: "Lt": supported values: "Equal", "Exists", "Lt", "Gt""#,
            ]),
        ),
        (
            "operator",
            json!({"tolerations": [{"key": "k", "operator": "In", "value": "v"}]}),
            lines(&[
                r#"spec.tolerations[0].operator: Unsupported value: "In": supported values: "Equal", "Exists""#,
            ]),
        ),
        (
            "effect",
            json!({"tolerations": [{"operator": "Exists"}, {"key": "k", "operator": "Exists", "effect": "NoRun"}]}),
            lines(&[
                r#"spec.tolerations[1].effect: Unsupported value: "NoRun": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute""#,
            ]),
        ),
        (
            "all of one toleration, in order",
            json!({"tolerations": [{"key": "/x", "operator": "Gt", "tolerationSeconds": 1, "effect": "Bad"}]}),
            lines(&[
                r#"spec.tolerations[0].key: Invalid value: "/x": prefix part must be non-empty"#,
                r#"spec.tolerations[0].effect: Invalid value: "Bad": effect must be 'NoExecute' when `tolerationSeconds` is set"#,
                r#"spec.tolerations[0].operator: Unsupported value: "Gt": supported values: "Equal", "Exists", "Lt", "Gt""#,
                r#"spec.tolerations[0].effect: Unsupported value: "Bad": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute""#,
            ]),
        ),
    ];
    refused(&h, cases).await;
}

#[tokio::test]
async fn pod_security_contexts_are_validated_as_kube_validates_them() {
    let h = server().await;
    let sc = |v: Value| json!({"securityContext": v});
    let long_profile = "p".repeat(4096);
    let cases: Vec<(&str, Value, Vec<String>)> = vec![
        ("ids", sc(json!({"fsGroup": -1, "runAsUser": 2147483648i64, "runAsGroup": -5, "supplementalGroups": [1, -2]})),
         vec![format!("spec.securityContext.fsGroup: Invalid value: -1: {ID_RANGE}"),
              format!("spec.securityContext.runAsUser: Invalid value: 2147483648: {ID_RANGE}"),
              format!("spec.securityContext.runAsGroup: Invalid value: -5: {ID_RANGE}"),
              format!("spec.securityContext.supplementalGroups[1]: Invalid value: -2: {ID_RANGE}")]),
        ("process namespace", json!({"shareProcessNamespace": true, "hostPID": true}),
         lines(&["spec.securityContext.shareProcessNamespace: Invalid value: true: ShareProcessNamespace and HostPID cannot both be enabled"])),
        ("sysctls", json!({"hostNetwork": true, "securityContext": {"sysctls": [
            {"name": "", "value": "1"}, {"name": "Net.bad", "value": "1"}, {"name": "kernel.shm_rmid_forced", "value": "1"},
            {"name": "kernel.shm_rmid_forced", "value": "0"}, {"name": "net.core.somaxconn", "value": "1024"}]}}),
         lines(&["spec.securityContext.sysctls[0].name: Required value",
                 r#"spec.securityContext.sysctls[1].name: Invalid value: "Net.bad": must have at most 253 characters and match regex ^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$"#,
                 r#"spec.securityContext.sysctls[3].name: Duplicate value: "kernel.shm_rmid_forced""#,
                 r#"spec.securityContext.sysctls[4].name: Invalid value: "net.core.somaxconn": may not be specified when 'hostNetwork' is true"#])),
        ("IPC sysctls with the host's IPC", json!({"hostIPC": true, "securityContext": {"sysctls": [
            {"name": "kernel/shm_rmid_forced", "value": "1"}, {"name": "fs.mqueue.msg_max", "value": "10"}, {"name": "kernel.pid_max", "value": "9"}]}}),
         lines(&[r#"spec.securityContext.sysctls[0].name: Invalid value: "kernel/shm_rmid_forced": may not be specified when 'hostIPC' is true"#,
                 r#"spec.securityContext.sysctls[1].name: Invalid value: "fs.mqueue.msg_max": may not be specified when 'hostIPC' is true"#])),
        ("fsGroupChangePolicy", sc(json!({"fsGroupChangePolicy": "Sometimes"})),
         lines(&[r#"spec.securityContext.fsGroupChangePolicy: Unsupported value: "Sometimes": supported values: "Always", "OnRootMismatch""#])),
        ("seccomp type missing", sc(json!({"seccompProfile": {"type": ""}})),
         lines(&["spec.securityContext.seccompProfile.type: Required value: type is required when seccompProfile is set"])),
        ("seccomp type", sc(json!({"seccompProfile": {"type": "Default"}})),
         lines(&[r#"spec.securityContext.seccompProfile.type: Unsupported value: "Default": supported values: "Localhost", "RuntimeDefault", "Unconfined""#])),
        ("seccomp Localhost without a profile", sc(json!({"seccompProfile": {"type": "Localhost"}})),
         lines(&["spec.securityContext.seccompProfile.localhostProfile: Required value: must be set when seccomp type is Localhost"])),
        ("seccomp Localhost profile path", sc(json!({"seccompProfile": {"type": "Localhost", "localhostProfile": "/etc/../../x.json"}})),
         lines(&[r#"spec.securityContext.seccompProfile.localhostProfile: Invalid value: "/etc/../../x.json": must be a relative path"#,
                 r#"spec.securityContext.seccompProfile.localhostProfile: Invalid value: "/etc/../../x.json": must not contain '..'"#])),
        ("seccomp profile without Localhost", sc(json!({"seccompProfile": {"type": "RuntimeDefault", "localhostProfile": "x"}})),
         lines(&[r#"spec.securityContext.seccompProfile.localhostProfile: Invalid value: {"Type":"RuntimeDefault","LocalhostProfile":"x"}: can only be set when seccomp type is Localhost"#])),
        ("windows options", sc(json!({"windowsOptions": {"gmsaCredentialSpecName": "Bad_Name", "gmsaCredentialSpec": "", "runAsUserName": "a\\b\\c"}})),
         vec![format!(r#"spec.securityContext.windowsOptions.gmsaCredentialSpecName: Invalid value: "Bad_Name": {SUBDOMAIN}"#),
              r#"spec.securityContext.windowsOptions.gmsaCredentialSpec: Invalid value: "": gmsaCredentialSpec cannot be an empty string"#.to_string(),
              r#"spec.securityContext.windowsOptions.runAsUserName: Invalid value: "a\\b\\c": runAsUserName cannot contain more than one backslash"#.to_string()]),
        ("apparmor padded", sc(json!({"appArmorProfile": {"type": "Localhost", "localhostProfile": " p "}})),
         lines(&[r#"spec.securityContext.appArmorProfile.localhostProfile: Invalid value: " p ": must not be padded with whitespace"#])),
        ("apparmor empty", sc(json!({"appArmorProfile": {"type": "Localhost", "localhostProfile": ""}})),
         lines(&["spec.securityContext.appArmorProfile.localhostProfile: Required value: must be set when AppArmor type is Localhost"])),
        ("apparmor too long", sc(json!({"appArmorProfile": {"type": "Localhost", "localhostProfile": long_profile}})),
         lines(&["spec.securityContext.appArmorProfile.localhostProfile: Too long: may not be more than 4095 bytes"])),
        ("apparmor profile without Localhost", sc(json!({"appArmorProfile": {"type": "RuntimeDefault", "localhostProfile": "p"}})),
         lines(&[r#"spec.securityContext.appArmorProfile.localhostProfile: Invalid value: "p": can only be set when AppArmor type is Localhost"#])),
        ("apparmor type missing", sc(json!({"appArmorProfile": {"type": ""}})),
         lines(&["spec.securityContext.appArmorProfile.type: Required value: type is required when appArmorProfile is set"])),
        ("apparmor type", sc(json!({"appArmorProfile": {"type": "Custom"}})),
         lines(&[r#"spec.securityContext.appArmorProfile.type: Unsupported value: "Custom": supported values: "Localhost", "RuntimeDefault", "Unconfined""#])),
        ("supplementalGroupsPolicy", sc(json!({"supplementalGroupsPolicy": "Loose"})),
         lines(&[r#"spec.securityContext.supplementalGroupsPolicy: Unsupported value: "Loose": supported values: "Merge", "Strict""#])),
        ("seLinuxChangePolicy", sc(json!({"seLinuxChangePolicy": "MountOption"})),
         lines(&[r#"spec.securityContext.seLinuxChangePolicy: Unsupported value: "MountOption": supported values: "Recursive""#])),
        ("hostProcess", json!({"hostNetwork": false, "securityContext": {"windowsOptions": {"hostProcess": true}},
            "containers": [{"name": "a", "image": "i:1", "securityContext": {"windowsOptions": {"hostProcess": false}}},
                           {"name": "b", "image": "i:1"}]}),
         lines(&["spec.containers[0].securityContext.windowsOptions.hostProcess: Invalid value: false: pod hostProcess value must be identical if both are specified, was true",
                 r#"spec: Invalid value: "": If pod contains any hostProcess containers then all containers must be HostProcess containers"#,
                 "spec.hostNetwork: Invalid value: false: hostNetwork must be true if pod contains any hostProcess containers"])),
        ("user namespace", json!({"hostUsers": false, "hostNetwork": true, "hostPID": true, "hostIPC": true,
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
            "containers": [{"name": "c", "image": "i:1", "volumeDevices": [{"name": "data", "devicePath": "/dev/xvda"}]}]}),
         lines(&["spec.hostNetwork: Forbidden: when `hostUsers` is false",
                 "spec.HostPID: Forbidden: when `hostUsers` is false",
                 "spec.HostIPC: Forbidden: when `hostUsers` is false",
                 "spec.containers[0].volumeDevices: Forbidden: when `hostUsers` is false"])),
        ("host port with the host's network", json!({"hostNetwork": true,
            "containers": [{"name": "c", "image": "i:1", "ports": [{"containerPort": 80}, {"containerPort": 81, "hostPort": 8081}]}]}),
         lines(&["spec.containers[0].ports[1].hostPort: Invalid value: 8081: must match `containerPort` when `hostNetwork` is true"])),
    ];
    refused(&h, cases).await;
}

#[tokio::test]
async fn container_security_contexts_are_validated_as_kube_validates_them() {
    let h = server().await;
    let cases: Vec<(&str, Value, Vec<String>)> = vec![
        ("ids", json!({"containers": secured(json!({"runAsUser": -1, "runAsGroup": 2147483648i64}))}),
         vec![format!("spec.containers[0].securityContext.runAsUser: Invalid value: -1: {ID_RANGE}"),
              format!("spec.containers[0].securityContext.runAsGroup: Invalid value: 2147483648: {ID_RANGE}")]),
        ("procMount", json!({"containers": secured(json!({"procMount": "Masked"}))}),
         lines(&[r#"spec.containers[0].securityContext.procMount: Unsupported value: "Masked": supported values: "Default", "Unmasked""#])),
        ("Unmasked in the host's user namespace", json!({"containers": secured(json!({"procMount": "Unmasked"}))}),
         lines(&[r#"spec.containers[0].securityContext.procMount: Invalid value: "Unmasked": `hostUsers` must be false to use `Unmasked`"#])),
        ("no escalation but privileged", json!({"containers": secured(json!({"allowPrivilegeEscalation": false, "privileged": true}))}),
         lines(&[r#"spec.containers[0].securityContext: Invalid value: {"Capabilities":null,"Privileged":true,"SELinuxOptions":null,"WindowsOptions":null,"RunAsUser":null,"RunAsGroup":null,"RunAsNonRoot":null,"ReadOnlyRootFilesystem":null,"AllowPrivilegeEscalation":false,"ProcMount":null,"SeccompProfile":null,"AppArmorProfile":null}: cannot set `allowPrivilegeEscalation` to false and `privileged` to true"#])),
        ("no escalation but CAP_SYS_ADMIN", json!({"containers": secured(json!({"allowPrivilegeEscalation": false, "runAsUser": 7,
            "capabilities": {"add": ["CAP_SYS_ADMIN", "SYS_ADMIN", "CAP_SYS_ADMIN"]}, "seccompProfile": {"type": "RuntimeDefault"}}))}),
         lines(&[r#"spec.containers[0].securityContext: Invalid value: {"Capabilities":{"Add":["CAP_SYS_ADMIN","SYS_ADMIN","CAP_SYS_ADMIN"],"Drop":null},"Privileged":null,"SELinuxOptions":null,"WindowsOptions":null,"RunAsUser":7,"RunAsGroup":null,"RunAsNonRoot":null,"ReadOnlyRootFilesystem":null,"AllowPrivilegeEscalation":false,"ProcMount":null,"SeccompProfile":{"Type":"RuntimeDefault","LocalhostProfile":null},"AppArmorProfile":null}: cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN"#,
                 r#"spec.containers[0].securityContext: Invalid value: {"Capabilities":{"Add":["CAP_SYS_ADMIN","SYS_ADMIN","CAP_SYS_ADMIN"],"Drop":null},"Privileged":null,"SELinuxOptions":null,"WindowsOptions":null,"RunAsUser":7,"RunAsGroup":null,"RunAsNonRoot":null,"ReadOnlyRootFilesystem":null,"AllowPrivilegeEscalation":false,"ProcMount":null,"SeccompProfile":{"Type":"RuntimeDefault","LocalhostProfile":null},"AppArmorProfile":null}: cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN"#])),
        ("seccomp", json!({"containers": secured(json!({"seccompProfile": {"type": "Localhost", "localhostProfile": "../x.json"}}))}),
         lines(&[r#"spec.containers[0].securityContext.seccompProfile.localhostProfile: Invalid value: "../x.json": must not contain '..'"#])),
        ("apparmor", json!({"initContainers": [{"name": "i", "image": "i:1", "securityContext": {"appArmorProfile": {"type": "Unconfined", "localhostProfile": "p"}}}]}),
         lines(&[r#"spec.initContainers[0].securityContext.appArmorProfile.localhostProfile: Invalid value: "p": can only be set when AppArmor type is Localhost"#])),
        ("run as user name", json!({"containers": [
            {"name": "a", "image": "i:1", "securityContext": {"windowsOptions": {"runAsUserName": "DOMAIN\\"}}},
            {"name": "b", "image": "i:1", "securityContext": {"windowsOptions": {"runAsUserName": "bad:domain\\us@er"}}},
            {"name": "d", "image": "i:1", "securityContext": {"windowsOptions": {"runAsUserName": ". ."}}},
            {"name": "e", "image": "i:1", "securityContext": {"windowsOptions": {"runAsUserName": ""}}}]}),
         lines(&[r#"spec.containers[0].securityContext.windowsOptions.runAsUserName: Invalid value: "DOMAIN\\": runAsUserName's User cannot be empty"#,
                 r#"spec.containers[1].securityContext.windowsOptions.runAsUserName: Invalid value: "bad:domain\\us@er": runAsUserName's Domain doesn't match the NetBios nor the DNS format"#,
                 r#"spec.containers[1].securityContext.windowsOptions.runAsUserName: Invalid value: "bad:domain\\us@er": runAsUserName's User cannot contain the following characters: "/\:;|=,+*?<>@[]"#,
                 r#"spec.containers[2].securityContext.windowsOptions.runAsUserName: Invalid value: ". .": runAsUserName's User cannot contain only periods or spaces"#,
                 r#"spec.containers[3].securityContext.windowsOptions.runAsUserName: Invalid value: "": runAsUserName cannot be an empty string"#])),
        // A container's security context comes after its ports and before its probes.
        ("order in a container", json!({"containers": [{"name": "c", "image": "i:1", "ports": [{"containerPort": 70000}],
            "securityContext": {"runAsUser": -1}, "livenessProbe": {"successThreshold": 2, "exec": {"command": ["true"]}}}]}),
         vec!["spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive".to_string(),
              format!("spec.containers[0].securityContext.runAsUser: Invalid value: -1: {ID_RANGE}"),
              "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1".to_string()]),
    ];
    refused(&h, cases).await;
}

/// `kubectl debug` adds ephemeral containers through `pods/ephemeralcontainers`; their
/// security contexts get the containers' rules there.
#[tokio::test]
async fn ephemeral_containers_security_contexts_are_validated_when_added() {
    let h = server().await;
    let r = post_json(&h, PODS, &pod("target", json!({}))).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    let mut p = r.json();
    p["spec"]["ephemeralContainers"] = json!([{"name": "dbg", "image": "busybox:1.36",
        "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent",
        "securityContext": {"runAsUser": -1, "seccompProfile": {"type": "Unconfined"}}}]);
    let path = format!("{PODS}/target/ephemeralcontainers");
    let r = put_json(&h, &path, &p).await;
    assert_eq!(
        causes(&r),
        Ok(vec![format!(
            "spec.ephemeralContainers[0].securityContext.runAsUser: Invalid value: -1: {ID_RANGE}"
        )])
    );
    p["spec"]["ephemeralContainers"][0]["securityContext"] = json!({"privileged": true});
    let r = put_json(&h, &path, &p).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.json());
}

#[tokio::test]
async fn affinity_and_topology_spread_are_validated_as_kube_validates_them() {
    let h = server().await;
    let node = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]";
    let term = "spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0]";
    let cases: Vec<(&str, Value, Vec<String>)> = vec![
        ("no node selector terms", json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}}}),
         lines(&["spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms: Required value: must have at least one node selector term"])),
        ("node selector expressions", json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": []},
                                  {"key": "gpu", "operator": "Exists", "values": ["x"]},
                                  {"key": "cores", "operator": "Gt", "values": ["1", "2"]},
                                  {"key": "a b", "operator": "Near", "values": ["bad value"]}],
             "matchFields": [{"key": "metadata.name", "operator": "In", "values": ["a", "b"]},
                             {"key": "spec.nodeName", "operator": "Exists"},
                             {"key": "metadata.name", "operator": "NotIn", "values": ["Node_1"]}]}]}}}}),
         vec![format!("{node}.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"),
              format!("{node}.matchExpressions[1].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"),
              format!("{node}.matchExpressions[2].values: Required value: must be specified single value when `operator` is 'Lt' or 'Gt'"),
              format!(r#"{node}.matchExpressions[3].operator: Invalid value: "Near": not a valid selector operator"#),
              format!(r#"{node}.matchExpressions[3].key: Invalid value: "a b": {NAME_PART}"#),
              format!(r#"{node}.matchExpressions[3].values[0]: Invalid value: "bad value": {LABEL_VALUE}"#),
              format!("{node}.matchFields[0].values: Required value: must be only one value when `operator` is 'In' or 'NotIn' for node field selector"),
              format!(r#"{node}.matchFields[1].operator: Invalid value: "Exists": not a valid selector operator"#),
              format!(r#"{node}.matchFields[1].key: Invalid value: "spec.nodeName": not a valid field selector key"#),
              format!(r#"{node}.matchFields[2].values[0]: Invalid value: "Node_1": {SUBDOMAIN}"#)]),
        ("preferred node term: weight, values unchecked", json!({"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 0, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["bad value"]}]}}]}}}),
         lines(&["spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: Invalid value: 0: must be in the range 1-100"])),
        ("pod affinity term", json!({"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "a b"}, "matchExpressions": [{"key": "tier", "operator": "Gt", "values": ["1"]}]},
             "namespaces": ["Bad.NS"], "topologyKey": ""}]}}}),
         vec![format!(r#"{term}.labelSelector.matchLabels: Invalid value: "a b": {LABEL_VALUE}"#),
              format!(r#"{term}.labelSelector.matchExpressions[0].operator: Invalid value: "Gt": not a valid selector operator"#),
              format!(r#"{term}.namespace: Invalid value: "Bad.NS": {DNS_LABEL}"#),
              format!("{term}.topologyKey: Required value: can not be empty"),
              format!(r#"{term}.topologyKey: Invalid value: "": name part must be non-empty"#),
              format!(r#"{term}.topologyKey: Invalid value: "": {NAME_PART}"#)]),
        ("namespace selector values", json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "In", "values": ["a/b"]}]}, "topologyKey": "zone"}]}}}),
         vec![format!(r#"spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].namespaceSelector.matchExpressions[0].values[0]: Invalid value: "a/b": {LABEL_VALUE}"#)]),
        ("label keys without a selector", json!({"affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 101, "podAffinityTerm": {"matchLabelKeys": ["app"], "topologyKey": "zone"}}]}}}),
         lines(&["spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: Invalid value: 101: must be in the range 1-100",
                 "spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.matchLabelKeys: Forbidden: must not be specified when labelSelector is not set"])),
        ("label keys in the selector and in both lists", json!({"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "web"}, "matchExpressions": [
                {"key": "app", "operator": "Exists"}, {"key": "tier", "operator": "In", "values": ["x"]}, {"key": "tier", "operator": "NotIn", "values": ["y"]}]},
             "matchLabelKeys": ["tier", "app", "Bad/Key/x"], "mismatchLabelKeys": ["tier"], "topologyKey": "zone"}]}}}),
         vec![format!(r#"{term}.matchLabelKeys[2]: Invalid value: "Bad/Key/x": {LABEL_KEY}"#),
              format!(r#"{term}[1]: Invalid value: "app": exists in both matchLabelKeys and labelSelector"#),
              format!(r#"{term}[0]: Invalid value: "tier": exists in both matchLabelKeys and labelSelector"#),
              format!(r#"{term}.matchLabelKeys[0]: Invalid value: "tier": exists in both matchLabelKeys and mismatchLabelKeys"#)]),
        ("spread basics", json!({"topologySpreadConstraints": [{"maxSkew": 0, "topologyKey": "", "whenUnsatisfiable": "Maybe"}]}),
         lines(&["spec.topologySpreadConstraints[0].maxSkew: Invalid value: 0: must be greater than zero",
                 "spec.topologySpreadConstraints[0].topologyKey: Required value: can not be empty",
                 r#"spec.topologySpreadConstraints[0].whenUnsatisfiable: Unsupported value: "Maybe": supported values: "DoNotSchedule", "ScheduleAnyway""#])),
        ("spread duplicates", json!({"topologySpreadConstraints": [
            {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"},
            {"maxSkew": 2, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"},
            {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway"},
            {"maxSkew": 3, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}]}),
         lines(&[r#"spec.topologySpreadConstraints[0].{topologyKey, whenUnsatisfiable}: Duplicate value: "{zone, DoNotSchedule}""#,
                 r#"spec.topologySpreadConstraints[1].{topologyKey, whenUnsatisfiable}: Duplicate value: "{zone, DoNotSchedule}""#])),
        ("minDomains and policies", json!({"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway",
            "minDomains": 0, "nodeAffinityPolicy": "Always", "nodeTaintsPolicy": "honor"}]}),
         lines(&["spec.topologySpreadConstraints[0].minDomains: Invalid value: 0: must be greater than zero",
                 "spec.topologySpreadConstraints[0].minDomains: Invalid value: 0: can only use minDomains if whenUnsatisfiable=DoNotSchedule, not ScheduleAnyway",
                 r#"spec.topologySpreadConstraints[0].nodeAffinityPolicy: Unsupported value: "Always": supported values: "Honor", "Ignore""#,
                 r#"spec.topologySpreadConstraints[0].nodeTaintsPolicy: Unsupported value: "honor": supported values: "Honor", "Ignore""#])),
        ("spread label keys", json!({"topologySpreadConstraints": [
            {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule", "matchLabelKeys": ["pod-template-hash"]},
            {"maxSkew": 1, "topologyKey": "host", "whenUnsatisfiable": "DoNotSchedule", "matchLabelKeys": ["pod-template-hash", "app"],
             "labelSelector": {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "a b"]}]}}]}),
         vec!["spec.topologySpreadConstraints[0].matchLabelKeys: Forbidden: must not be specified when labelSelector is not set".to_string(),
              r#"spec.topologySpreadConstraints[1][1]: Invalid value: "app": exists in both matchLabelKeys and labelSelector"#.to_string(),
              format!(r#"spec.topologySpreadConstraints[1].labelSelector.matchExpressions[0].values[1]: Invalid value: "a b": {LABEL_VALUE}"#)]),
    ];
    refused(&h, cases).await;
}

#[tokio::test]
async fn node_selector_dns_aliases_gates_overhead_and_os_are_validated_as_kube_validates_them() {
    let h = server().await;
    let many: Vec<String> = (0..33).map(|i| format!("s{i}")).collect();
    let long: Vec<String> = (0..9).map(|_| "a".repeat(250)).collect();
    let quoted = |v: &[String]| {
        let q: Vec<String> = v.iter().map(|s| format!("\"{s}\"")).collect();
        format!("[{}]", q.join(","))
    };
    let cases: Vec<(&str, Value, Vec<String>)> = vec![
        // Go walks the map in random order; kubox in key order.
        ("nodeSelector", json!({"nodeSelector": {"zone": "a b", "-bad": "x", "disk": "ssd"}}),
         vec![format!(r#"spec.nodeSelector: Invalid value: "-bad": {NAME_PART}"#),
              format!(r#"spec.nodeSelector: Invalid value: "a b": {LABEL_VALUE}"#)]),
        ("dnsPolicy None without dnsConfig", json!({"dnsPolicy": "None"}),
         lines(&["spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None"])),
        ("dnsPolicy None without nameservers", json!({"dnsPolicy": "None", "dnsConfig": {"searches": ["Bad_Domain"]}}),
         lines(&["spec.dnsConfig.nameservers: Required value: must provide at least one DNS nameserver when `dnsPolicy` is None"])),
        ("dnsConfig", json!({"dnsConfig": {"nameservers": ["1.1.1.1", "8.8.8.8", "010.0.0.1", "dns.local"],
            "searches": ["svc.cluster.local.", ".", "_srv.example.com", "Bad_Domain", "a..b."],
            "options": [{"name": "ndots", "value": "2"}, {"value": "x"}]}}),
         vec![r#"spec.dnsConfig.nameservers: Invalid value: ["1.1.1.1","8.8.8.8","010.0.0.1","dns.local"]: must not have more than 3 nameservers"#.to_string(),
              format!(r#"spec.dnsConfig.nameservers[3]: Invalid value: "dns.local": {VALID_IP}"#),
              format!(r#"spec.dnsConfig.searches[3]: Invalid value: "Bad_Domain": {SUBDOMAIN_UNDERSCORE}"#),
              format!(r#"spec.dnsConfig.searches[4]: Invalid value: "a..b": {SUBDOMAIN_UNDERSCORE}"#),
              "spec.dnsConfig.options[1]: Required value: must not be empty".to_string()]),
        ("too many searches", json!({"dnsConfig": {"searches": many}}),
         vec![format!("spec.dnsConfig.searches: Invalid value: {}: must not have more than 32 search paths", quoted(&many))]),
        ("searches too long", json!({"dnsConfig": {"searches": long}}),
         vec![format!("spec.dnsConfig.searches: Invalid value: {}: must not have more than 2048 characters (including spaces) in the search list", quoted(&long))]),
        ("hostAliases", json!({"hostAliases": [{"ip": "", "hostnames": ["ok.example", "Bad_Host"]}, {"ip": "10.0.0.300", "hostnames": []}, {"ip": "::1"}]}),
         vec![format!(r#"spec.hostAliases[0].ip: Invalid value: "": {VALID_IP}"#),
              format!(r#"spec.hostAliases[0].hostnames[1]: Invalid value: "Bad_Host": {SUBDOMAIN}"#),
              format!(r#"spec.hostAliases[1].ip: Invalid value: "10.0.0.300": {VALID_IP}"#)]),
        ("readinessGates", json!({"readinessGates": [{"conditionType": "example.com/ready"}, {"conditionType": ""}, {"conditionType": "Bad Gate"}]}),
         vec![r#"spec.readinessGates[1].conditionType: Invalid value: "": name part must be non-empty"#.to_string(),
              format!(r#"spec.readinessGates[1].conditionType: Invalid value: "": {NAME_PART}"#),
              format!(r#"spec.readinessGates[2].conditionType: Invalid value: "Bad Gate": {NAME_PART}"#)]),
        ("overhead", json!({"overhead": {"cpu": "-1", "example.com/gpu": "500m", "foo": "1", "hugepages-2Mi": "3Mi"}}),
         lines(&[r#"spec.overhead.limits[cpu]: Invalid value: "-1": must be greater than or equal to 0"#,
                 r#"spec.overhead.limits[example.com/gpu]: Invalid value: "500m": must be an integer"#,
                 r#"spec.overhead.limits[foo]: Invalid value: "foo": must be a standard resource type or fully qualified"#,
                 r#"spec.overhead.limits[foo]: Invalid value: "foo": must be a standard resource for containers"#,
                 r#"spec.overhead.limits[hugepages-2Mi]: Invalid value: "3Mi": 3Mi is not positive integer multiple of hugepages-2Mi"#])),
        ("overhead hugepages alone", json!({"overhead": {"hugepages-2Mi": "2Mi"}}),
         lines(&["spec.overhead: Forbidden: HugePages require cpu or memory"])),
        ("os name missing", json!({"os": {"name": ""}}), lines(&["spec.os.name: Required value"])),
        ("os name", json!({"os": {"name": "macos"}, "securityContext": {"windowsOptions": {}}}),
         lines(&[r#"spec.os: Unsupported value: "macos": supported values: "linux", "windows""#])),
        ("windows options on linux", json!({"os": {"name": "linux"}, "securityContext": {"windowsOptions": {"runAsUserName": "u"}},
            "initContainers": [{"name": "i", "image": "i:1"}],
            "containers": secured(json!({"windowsOptions": {"runAsUserName": "u"}}))}),
         lines(&["spec.securityContext.windowsOptions: Forbidden: windows options cannot be set for a linux pod",
                 "spec.containers[0].securityContext.windowsOptions: Forbidden: windows options cannot be set for a linux pod"])),
        ("linux fields on windows", json!({"os": {"name": "windows"}, "hostPID": true, "shareProcessNamespace": false,
            "securityContext": {"runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}, "supplementalGroups": [1]},
            "initContainers": [{"name": "i", "image": "i:1", "securityContext": {"capabilities": {"drop": ["ALL"]}, "readOnlyRootFilesystem": true}}],
            "containers": secured(json!({"privileged": false, "runAsGroup": 1}))}),
         lines(&["spec.hostPID: Forbidden: cannot be set for a windows pod",
                 "spec.securityContext.seccompProfile: Forbidden: cannot be set for a windows pod",
                 "spec.shareProcessNamespace: Forbidden: cannot be set for a windows pod",
                 "spec.securityContext.runAsUser: Forbidden: cannot be set for a windows pod",
                 "spec.securityContext.supplementalGroups: Forbidden: cannot be set for a windows pod",
                 "spec.initContainers[0].securityContext.capabilities: Forbidden: cannot be set for a windows pod",
                 "spec.initContainers[0].securityContext.readOnlyRootFilesystem: Forbidden: cannot be set for a windows pod",
                 "spec.containers[0].securityContext.privileged: Forbidden: cannot be set for a windows pod",
                 "spec.containers[0].securityContext.runAsGroup: Forbidden: cannot be set for a windows pod"])),
    ];
    refused(&h, cases).await;
}

/// One pod breaking a rule of each part: the causes come in ValidatePodSpec's order, between
/// the checks kubox already made.
#[tokio::test]
async fn pod_spec_errors_come_in_kube_order() {
    let h = server().await;
    let spec = json!({
        "containers": [{"name": "c", "image": "i:1", "ports": [{"containerPort": 80, "hostPort": 81}],
            "securityContext": {"runAsUser": -1}, "livenessProbe": {"successThreshold": 2, "exec": {"command": ["true"]}}}],
        "hostNetwork": true,
        "restartPolicy": "Sometimes",
        "dnsPolicy": "None",
        "nodeSelector": {"k": "a b"},
        "securityContext": {"fsGroup": -1, "windowsOptions": {}},
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}},
        "readinessGates": [{"conditionType": "a b"}],
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "Never"}],
        "hostUsers": false,
        "activeDeadlineSeconds": 0,
        "hostname": "a.b",
        "tolerations": [{"operator": "Equal"}],
        "hostAliases": [{"ip": "x"}],
        "overhead": {"memory": "-1"},
        "os": {"name": "linux"}});
    let r = post_json(&h, PODS, &pod("order", spec)).await;
    let expected = vec![
        format!("spec.containers[0].securityContext.runAsUser: Invalid value: -1: {ID_RANGE}"),
        "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1".to_string(),
        "spec.containers[0].ports[0].hostPort: Invalid value: 81: must match `containerPort` when `hostNetwork` is true".to_string(),
        r#"spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never""#.to_string(),
        format!(r#"spec.nodeSelector: Invalid value: "a b": {LABEL_VALUE}"#),
        format!("spec.securityContext.fsGroup: Invalid value: -1: {ID_RANGE}"),
        "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms: Required value: must have at least one node selector term".to_string(),
        "spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None".to_string(),
        format!(r#"spec.readinessGates[0].conditionType: Invalid value: "a b": {NAME_PART}"#),
        r#"spec.topologySpreadConstraints[0].whenUnsatisfiable: Unsupported value: "Never": supported values: "DoNotSchedule", "ScheduleAnyway""#.to_string(),
        "spec.hostNetwork: Forbidden: when `hostUsers` is false".to_string(),
        "spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive".to_string(),
        r#"spec.hostname: Invalid value: "a.b": must not contain dots"#.to_string(),
        r#"spec.tolerations[0].operator: Invalid value: "Equal": operator must be Exists when `key` is empty, which means "match all values and all keys""#.to_string(),
        format!(r#"spec.hostAliases[0].ip: Invalid value: "x": {VALID_IP}"#),
        r#"spec.overhead.limits[memory]: Invalid value: "-1": must be greater than or equal to 0"#.to_string(),
        "spec.securityContext.windowsOptions: Forbidden: windows options cannot be set for a linux pod".to_string(),
    ];
    assert_eq!(causes(&r), Ok(expected));
}

/// A Deployment's template gets the same rules at `spec.template.spec…`; its unset host ports
/// stay unset (only a Pod's are defaulted), and priority fields, which kube's Priority
/// admission settles for Pods, are validated there.
#[tokio::test]
async fn workload_templates_get_the_same_rules_at_their_own_path() {
    let h = server().await;
    let deployment = |name: &str, spec: Value| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": spec}}})
    };
    let ok = json!({"hostNetwork": true, "priorityClassName": "high-priority", "preemptionPolicy": "Never",
        "containers": [{"name": "c", "image": "nginx:1.27", "ports": [{"containerPort": 80}],
            "securityContext": {"runAsNonRoot": true, "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
                                "seccompProfile": {"type": "RuntimeDefault"}}}],
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "web", "effect": "NoSchedule"}],
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": {"app": "web"}}, "matchLabelKeys": ["pod-template-hash"]}]});
    let r = post_json(&h, DEPLOYMENTS, &deployment("ok", ok)).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    let ports = &r.json()["spec"]["template"]["spec"]["containers"][0]["ports"][0];
    assert!(ports.get("hostPort").is_none(), "{ports}");
    let bad = json!({"hostNetwork": true, "priorityClassName": "High_Priority", "preemptionPolicy": "Sometimes",
        "containers": [{"name": "c", "image": "nginx:1.27", "ports": [{"containerPort": 80}, {"containerPort": 81, "hostPort": 82}]}],
        "securityContext": {"seccompProfile": {"type": "Unconfined", "localhostProfile": "p"}},
        "tolerations": [{"key": "k", "operator": "Exists", "value": "v"}]});
    let r = post_json(&h, DEPLOYMENTS, &deployment("bad", bad)).await;
    assert_eq!(
        causes(&r),
        Ok(vec![
            "spec.template.spec.containers[0].ports[1].hostPort: Invalid value: 82: must match `containerPort` when `hostNetwork` is true".to_string(),
            r#"spec.template.spec.securityContext.seccompProfile.localhostProfile: Invalid value: {"Type":"Unconfined","LocalhostProfile":"p"}: can only be set when seccomp type is Localhost"#.to_string(),
            r#"spec.template.spec.tolerations[0].operator: Invalid value: "v": value must be empty when `operator` is 'Exists'"#.to_string(),
            format!(r#"spec.template.spec.priorityClassName: Invalid value: "High_Priority": {SUBDOMAIN}"#),
            r#"spec.template.spec.preemptionPolicy: Unsupported value: "Sometimes": supported values: "PreemptLowerPriority", "Never""#.to_string(),
        ])
    );
    let empty_policy =
        json!({"preemptionPolicy": "", "containers": [{"name": "c", "image": "nginx:1.27"}]});
    let r = post_json(&h, DEPLOYMENTS, &deployment("empty", empty_policy)).await;
    assert_eq!(
        causes(&r),
        Ok(vec![
            "spec.template.spec.preemptionPolicy: Required value".to_string()
        ])
    );
}
