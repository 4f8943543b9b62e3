#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::util::{canonical_quantity, format_label_selector, format_rfc3339_utc, parse_rfc3339};
use super::*;
use serde_json::json;
use std::time::{Duration, UNIX_EPOCH};

/// 2024-06-01T12:00:00Z.
const NOW_SECS: u64 = 1_717_243_200;

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW_SECS)
}

/// The RFC 3339 timestamp `secs` seconds before `now()`.
fn ago(secs: i64) -> String {
    format_rfc3339_utc((i128::from(NOW_SECS as i64 - secs)) * 1_000_000_000)
}

fn row(group: &str, kind: &str, obj: &Value) -> Vec<Value> {
    let cells = row_cells(group, kind, obj, now());
    let cols = columns(group, kind).unwrap_or(default_columns());
    assert_eq!(cells.len(), cols.len(), "{group}/{kind}: {cells:?}");
    cells
}

fn names(cols: &[ColumnDefinition]) -> Vec<&'static str> {
    cols.iter().map(|c| c.name).collect()
}

fn pod_cells(pod: &Value) -> Vec<Value> {
    row("", "Pod", pod)
}

// ---------------------------------------------------------------------------------------------
// Durations and timestamps
// ---------------------------------------------------------------------------------------------

#[test]
fn human_duration_matches_go() {
    let cases: &[(u64, &str)] = &[
        (0, "0s"),
        (1, "1s"),
        (59, "59s"),
        (60, "60s"),
        (119, "119s"),
        (120, "2m"),
        (5 * 60, "5m"),
        (5 * 60 + 30, "5m30s"),
        (9 * 60 + 59, "9m59s"),
        (10 * 60, "10m"),
        (10 * 60 + 30, "10m"),
        (179 * 60 + 59, "179m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 5 * 60, "3h5m"),
        (7 * 3600 + 59 * 60 + 59, "7h59m"),
        (8 * 3600, "8h"),
        (47 * 3600 + 59 * 60, "47h"),
        (2 * 86_400, "2d"),
        (3 * 86_400 + 4 * 3600, "3d4h"),
        (7 * 86_400 + 23 * 3600, "7d23h"),
        (8 * 86_400, "8d"),
        (729 * 86_400, "729d"),
        (730 * 86_400, "2y"),
        (740 * 86_400, "2y10d"),
        (8 * 365 * 86_400 - 86_400, "7y364d"),
        (8 * 365 * 86_400, "8y"),
        (20 * 365 * 86_400, "20y"),
    ];
    for (secs, want) in cases {
        assert_eq!(human_duration(Duration::from_secs(*secs)), *want, "{secs}s");
    }
    assert_eq!(human_duration(Duration::from_millis(1999)), "1s");
}

#[test]
fn negative_ages_follow_go() {
    assert_eq!(util::human_duration_nanos(-1_500_000_000), "0s");
    assert_eq!(util::human_duration_nanos(-2_000_000_000), "<invalid>");
    let obj = json!({"metadata": {"name": "x", "creationTimestamp": ago(-3600)}});
    assert_eq!(row("", "ServiceAccount", &obj)[1], "<invalid>");
    let obj = json!({"metadata": {"name": "x"}});
    assert_eq!(row("", "ServiceAccount", &obj)[1], "<unknown>");
}

#[test]
fn parses_rfc3339_variants() {
    let base = parse_rfc3339("2024-06-01T12:00:00Z").unwrap();
    assert_eq!(base, i128::from(NOW_SECS) * 1_000_000_000);
    assert_eq!(
        parse_rfc3339("2024-06-01T14:00:00+02:00").unwrap(),
        base,
        "offsets are honoured"
    );
    assert_eq!(
        parse_rfc3339("2024-06-01T12:00:00.250000Z").unwrap(),
        base + 250_000_000
    );
    assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z").unwrap(), 0);
    assert!(parse_rfc3339("yesterday").is_none());
    assert_eq!(
        format_rfc3339_utc(base + 999_999_999),
        "2024-06-01T12:00:00Z"
    );
    assert_eq!(format_rfc3339_utc(0), "1970-01-01T00:00:00Z");
}

// ---------------------------------------------------------------------------------------------
// Columns
// ---------------------------------------------------------------------------------------------

#[test]
fn pod_columns_match_kube_apiserver() {
    let cols = columns("", "Pod").unwrap();
    assert_eq!(
        names(cols),
        [
            "Name",
            "Ready",
            "Status",
            "Restarts",
            "Age",
            "IP",
            "Node",
            "Nominated Node",
            "Readiness Gates"
        ]
    );
    assert_eq!(cols[0].format, "name");
    assert!(cols[1..].iter().all(|c| c.format.is_empty()));
    let priorities: Vec<i32> = cols.iter().map(|c| c.priority).collect();
    assert_eq!(priorities, [0, 0, 0, 0, 0, 1, 1, 1, 1]);
    assert_eq!(cols[3].type_, "string");
}

#[test]
fn default_columns_are_name_and_created_at() {
    let cols = default_columns();
    assert_eq!(names(cols), ["Name", "Created At"]);
    assert_eq!(cols[0].format, "name");
    assert_eq!(cols[1].type_, "date");
    for (group, kind) in [
        ("rbac.authorization.k8s.io", "Role"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("", "LimitRange"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
        ("example.com", "Widget"),
        ("apps", "Pod"),
    ] {
        assert!(columns(group, kind).is_none(), "{group}/{kind}");
    }
}

#[test]
fn default_cells_format_the_creation_timestamp() {
    let obj =
        json!({"metadata": {"name": "admin", "creationTimestamp": "2024-05-01T10:00:00+02:00"}});
    let cells = row("rbac.authorization.k8s.io", "ClusterRole", &obj);
    assert_eq!(cells, [json!("admin"), json!("2024-05-01T08:00:00Z")]);
    let cells = row(
        "apiextensions.k8s.io",
        "CustomResourceDefinition",
        &json!({}),
    );
    assert_eq!(cells, [json!(""), json!("0001-01-01T00:00:00Z")]);
}

#[test]
fn column_sets_of_common_kinds() {
    let cases: &[(&str, &str, &[&str], &[&str])] = &[
        (
            "apps",
            "Deployment",
            &["Name", "Ready", "Up-to-date", "Available", "Age"],
            &["Containers", "Images", "Selector"],
        ),
        (
            "apps",
            "ReplicaSet",
            &["Name", "Desired", "Current", "Ready", "Age"],
            &["Containers", "Images", "Selector"],
        ),
        (
            "apps",
            "StatefulSet",
            &["Name", "Ready", "Age"],
            &["Containers", "Images"],
        ),
        (
            "apps",
            "DaemonSet",
            &[
                "Name",
                "Desired",
                "Current",
                "Ready",
                "Up-to-date",
                "Available",
                "Node Selector",
                "Age",
            ],
            &["Containers", "Images", "Selector"],
        ),
        (
            "batch",
            "Job",
            &["Name", "Status", "Completions", "Duration", "Age"],
            &["Containers", "Images", "Selector"],
        ),
        (
            "batch",
            "CronJob",
            &[
                "Name",
                "Schedule",
                "Timezone",
                "Suspend",
                "Active",
                "Last Schedule",
                "Age",
            ],
            &["Containers", "Images", "Selector"],
        ),
        (
            "",
            "Service",
            &[
                "Name",
                "Type",
                "Cluster-IP",
                "External-IP",
                "Port(s)",
                "Age",
            ],
            &["Selector"],
        ),
        (
            "",
            "Event",
            &["Last Seen", "Type", "Reason", "Object", "Message"],
            &["Subobject", "Source", "First Seen", "Count", "Name"],
        ),
        ("", "Secret", &["Name", "Type", "Data", "Age"], &[]),
        ("", "ConfigMap", &["Name", "Data", "Age"], &[]),
        ("", "ServiceAccount", &["Name", "Age"], &[]),
        ("", "Namespace", &["Name", "Status", "Age"], &[]),
        (
            "",
            "Node",
            &["Name", "Status", "Roles", "Age", "Version"],
            &[
                "Internal-IP",
                "External-IP",
                "OS-Image",
                "Kernel-Version",
                "Container-Runtime",
            ],
        ),
        (
            "coordination.k8s.io",
            "Lease",
            &["Name", "Holder", "Age"],
            &[],
        ),
        (
            "rbac.authorization.k8s.io",
            "ClusterRoleBinding",
            &["Name", "Role", "Age"],
            &["Users", "Groups", "ServiceAccounts"],
        ),
        (
            "",
            "ResourceQuota",
            &["Name", "Request", "Limit", "Age"],
            &[],
        ),
        (
            "apiregistration.k8s.io",
            "APIService",
            &["Name", "Service", "Available", "Age"],
            &[],
        ),
        (
            "scheduling.k8s.io",
            "PriorityClass",
            &["Name", "Value", "Global-Default", "Age", "PreemptionPolicy"],
            &[],
        ),
    ];
    for (group, kind, normal, wide) in cases {
        let cols = columns(group, kind).unwrap();
        let got_normal: Vec<&str> = cols
            .iter()
            .filter(|c| c.priority == 0)
            .map(|c| c.name)
            .collect();
        let got_wide: Vec<&str> = cols
            .iter()
            .filter(|c| c.priority == 1)
            .map(|c| c.name)
            .collect();
        assert_eq!(&got_normal, normal, "{group}/{kind}");
        assert_eq!(&got_wide, wide, "{group}/{kind}");
        let name_cols = cols.iter().filter(|c| c.format == "name").count();
        assert_eq!(name_cols, 1, "{group}/{kind} has one name column");
    }
}

const ALL_KINDS: &[(&str, &str)] = &[
    ("", "Pod"),
    ("", "PodTemplate"),
    ("", "ReplicationController"),
    ("", "Service"),
    ("", "Endpoints"),
    ("", "Node"),
    ("", "Event"),
    ("", "Namespace"),
    ("", "Secret"),
    ("", "ServiceAccount"),
    ("", "PersistentVolume"),
    ("", "PersistentVolumeClaim"),
    ("", "ComponentStatus"),
    ("", "ConfigMap"),
    ("", "ResourceQuota"),
    ("apps", "ReplicaSet"),
    ("apps", "Deployment"),
    ("apps", "StatefulSet"),
    ("apps", "DaemonSet"),
    ("apps", "ControllerRevision"),
    ("batch", "Job"),
    ("batch", "CronJob"),
    ("autoscaling", "HorizontalPodAutoscaler"),
    ("autoscaling", "Scale"),
    ("policy", "PodDisruptionBudget"),
    ("networking.k8s.io", "Ingress"),
    ("networking.k8s.io", "IngressClass"),
    ("networking.k8s.io", "NetworkPolicy"),
    ("networking.k8s.io", "ServiceCIDR"),
    ("networking.k8s.io", "IPAddress"),
    ("discovery.k8s.io", "EndpointSlice"),
    ("events.k8s.io", "Event"),
    ("rbac.authorization.k8s.io", "RoleBinding"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("certificates.k8s.io", "CertificateSigningRequest"),
    ("certificates.k8s.io", "ClusterTrustBundle"),
    ("certificates.k8s.io", "PodCertificateRequest"),
    ("coordination.k8s.io", "Lease"),
    ("coordination.k8s.io", "LeaseCandidate"),
    ("storage.k8s.io", "StorageClass"),
    ("storage.k8s.io", "VolumeAttributesClass"),
    ("storage.k8s.io", "VolumeAttachment"),
    ("storage.k8s.io", "CSINode"),
    ("storage.k8s.io", "CSIDriver"),
    ("storage.k8s.io", "CSIStorageCapacity"),
    ("scheduling.k8s.io", "PriorityClass"),
    ("scheduling.k8s.io", "Workload"),
    ("node.k8s.io", "RuntimeClass"),
    (
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
    ),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicyBinding",
    ),
    ("admissionregistration.k8s.io", "MutatingAdmissionPolicy"),
    (
        "admissionregistration.k8s.io",
        "MutatingAdmissionPolicyBinding",
    ),
    ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
    ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
    ("internal.apiserver.k8s.io", "StorageVersion"),
    ("storagemigration.k8s.io", "StorageVersionMigration"),
    ("resource.k8s.io", "DeviceClass"),
    ("resource.k8s.io", "ResourceClaim"),
    ("resource.k8s.io", "ResourceClaimTemplate"),
    ("resource.k8s.io", "ResourceSlice"),
    ("resource.k8s.io", "DeviceTaintRule"),
    ("apiregistration.k8s.io", "APIService"),
];

#[test]
fn every_printer_fills_every_column() {
    let sparse = json!({"metadata": {"name": "n", "creationTimestamp": ago(60)}});
    let garbage = json!({"metadata": {"name": 5}, "spec": "nope", "status": [1, 2]});
    for (group, kind) in ALL_KINDS {
        assert!(columns(group, kind).is_some(), "{group}/{kind}");
        row(group, kind, &json!({}));
        row(group, kind, &garbage);
        let cells = row(group, kind, &sparse);
        let cols = columns(group, kind).unwrap();
        if let Some(idx) = cols.iter().position(|c| c.format == "name") {
            assert_eq!(cells[idx], "n", "{group}/{kind}");
        }
        if let Some(idx) = cols.iter().position(|c| c.name == "Age") {
            assert_eq!(cells[idx], "60s", "{group}/{kind}");
        }
        for (col, cell) in cols.iter().zip(&cells) {
            let ok = match col.type_ {
                "integer" => cell.is_i64() || cell.is_string(),
                "boolean" => cell.is_boolean() || cell.is_string(),
                _ => cell.is_string() || cell.is_i64() || cell.is_boolean(),
            };
            assert!(ok, "{group}/{kind} column {}: {cell}", col.name);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Pods
// ---------------------------------------------------------------------------------------------

fn running_container(name: &str, restarts: i64) -> Value {
    json!({
        "name": name, "ready": true, "restartCount": restarts, "started": true,
        "image": "nginx:1.27", "imageID": "docker.io/library/nginx@sha256:abc",
        "state": {"running": {"startedAt": ago(3000)}}
    })
}

fn pod(spec: Value, status: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web-7d4b9c8f5-x2x9k", "namespace": "default", "creationTimestamp": ago(3 * 3600 + 600)},
        "spec": spec,
        "status": status,
    })
}

#[test]
fn pod_running() {
    let p = pod(
        json!({"nodeName": "node-1", "containers": [{"name": "web", "image": "nginx:1.27"}, {"name": "sidecar", "image": "envoy"}]}),
        json!({
            "phase": "Running",
            "podIP": "10.244.1.7",
            "podIPs": [{"ip": "10.244.1.7"}],
            "conditions": [
                {"type": "Initialized", "status": "True"},
                {"type": "Ready", "status": "True"},
                {"type": "ContainersReady", "status": "True"},
                {"type": "PodScheduled", "status": "True"}
            ],
            "containerStatuses": [running_container("web", 0), running_container("sidecar", 0)]
        }),
    );
    assert_eq!(
        pod_cells(&p),
        [
            json!("web-7d4b9c8f5-x2x9k"),
            json!("2/2"),
            json!("Running"),
            json!("0"),
            json!("3h10m"),
            json!("10.244.1.7"),
            json!("node-1"),
            json!("<none>"),
            json!("<none>"),
        ]
    );
}

#[test]
fn pod_pending_without_status() {
    let p = pod(
        json!({"containers": [{"name": "web", "image": "nginx"}]}),
        json!({}),
    );
    let cells = pod_cells(&p);
    assert_eq!(cells[1], "0/1");
    assert_eq!(cells[2], "Pending");
    assert_eq!(cells[3], "0");
    assert_eq!(cells[5], "<none>");
    assert_eq!(cells[6], "<none>");
}

#[test]
fn pod_container_creating() {
    let p = pod(
        json!({"nodeName": "node-1", "containers": [{"name": "web", "image": "nginx"}]}),
        json!({
            "phase": "Pending",
            "containerStatuses": [{"name": "web", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ContainerCreating"}}}]
        }),
    );
    assert_eq!(pod_cells(&p)[2], "ContainerCreating");
}

#[test]
fn pod_init_progress_and_failures() {
    let spec = json!({"initContainers": [{"name": "migrate", "image": "migrate"}],
        "containers": [{"name": "web", "image": "nginx"}]});
    let waiting_main = json!([{"name": "web", "ready": false, "restartCount": 0,
        "state": {"waiting": {"reason": "PodInitializing"}}}]);

    let initializing = pod(
        spec.clone(),
        json!({
            "phase": "Pending",
            "conditions": [{"type": "Initialized", "status": "False", "reason": "ContainersNotInitialized"}],
            "initContainerStatuses": [{"name": "migrate", "ready": false, "restartCount": 0,
                "state": {"running": {"startedAt": ago(5)}}}],
            "containerStatuses": waiting_main.clone()
        }),
    );
    let cells = pod_cells(&initializing);
    assert_eq!(cells[1], "0/1");
    assert_eq!(cells[2], "Init:0/1");

    let pulling = pod(
        spec.clone(),
        json!({
            "phase": "Pending",
            "initContainerStatuses": [{"name": "migrate", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}}],
            "containerStatuses": waiting_main.clone()
        }),
    );
    assert_eq!(pod_cells(&pulling)[2], "Init:ImagePullBackOff");

    let pod_initializing = pod(
        spec.clone(),
        json!({
            "phase": "Pending",
            "initContainerStatuses": [{"name": "migrate", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "PodInitializing"}}}]
        }),
    );
    assert_eq!(pod_cells(&pod_initializing)[2], "Init:0/1");

    let crashing = pod(
        spec.clone(),
        json!({
            "phase": "Pending",
            "initContainerStatuses": [{"name": "migrate", "ready": false, "restartCount": 3,
                "lastTerminationState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(40)}},
                "state": {"waiting": {"reason": "CrashLoopBackOff"}}}],
            "containerStatuses": waiting_main.clone()
        }),
    );
    let cells = pod_cells(&crashing);
    assert_eq!(cells[2], "Init:CrashLoopBackOff");
    assert_eq!(cells[3], "3 (40s ago)");

    let failed = pod(
        spec.clone(),
        json!({
            "phase": "Pending",
            "initContainerStatuses": [{"name": "migrate", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 2, "finishedAt": ago(40)}}}]
        }),
    );
    assert_eq!(pod_cells(&failed)[2], "Init:ExitCode:2");

    let signalled = pod(
        spec,
        json!({
            "phase": "Pending",
            "initContainerStatuses": [{"name": "migrate", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 137, "signal": 9}}}]
        }),
    );
    assert_eq!(pod_cells(&signalled)[2], "Init:Signal:9");
}

#[test]
fn pod_second_of_two_init_containers() {
    let p = pod(
        json!({"initContainers": [{"name": "a", "image": "a"}, {"name": "b", "image": "b"}],
            "containers": [{"name": "web", "image": "nginx"}]}),
        json!({
            "phase": "Pending",
            "initContainerStatuses": [
                {"name": "a", "ready": false, "restartCount": 0,
                    "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                {"name": "b", "ready": false, "restartCount": 0,
                    "state": {"running": {"startedAt": ago(3)}}}
            ]
        }),
    );
    assert_eq!(pod_cells(&p)[2], "Init:1/2");
}

#[test]
fn pod_crash_loop_back_off_with_restart_age() {
    let p = pod(
        json!({"nodeName": "node-2", "containers": [{"name": "api", "image": "api:2"}]}),
        json!({
            "phase": "Running",
            "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "False"}],
            "containerStatuses": [{
                "name": "api", "ready": false, "restartCount": 5, "started": false,
                "lastTerminationState": {"terminated": {"exitCode": 1, "reason": "Error",
                    "startedAt": ago(320), "finishedAt": ago(300)}},
                "state": {"waiting": {"reason": "CrashLoopBackOff",
                    "message": "back-off 2m40s restarting failed container"}}
            }]
        }),
    );
    let cells = pod_cells(&p);
    assert_eq!(cells[1], "0/1");
    assert_eq!(cells[2], "CrashLoopBackOff");
    assert_eq!(cells[3], "5 (5m ago)");
}

#[test]
fn pod_restarts_without_termination_time_have_no_suffix() {
    let mut c = running_container("web", 2);
    c["lastTerminationState"] = json!({});
    let p = pod(
        json!({"containers": [{"name": "web", "image": "nginx"}]}),
        json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [c]}),
    );
    assert_eq!(pod_cells(&p)[3], "2");
}

#[test]
fn pod_completed_and_failed() {
    let completed = pod(
        json!({"restartPolicy": "Never", "containers": [{"name": "job", "image": "busybox"}]}),
        json!({
            "phase": "Succeeded",
            "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "False", "reason": "PodCompleted"}],
            "containerStatuses": [{"name": "job", "ready": false, "restartCount": 0, "started": false,
                "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                    "startedAt": ago(100), "finishedAt": ago(90)}}}]
        }),
    );
    let cells = pod_cells(&completed);
    assert_eq!(cells[1], "0/1");
    assert_eq!(cells[2], "Completed");

    let errored = pod(
        json!({"restartPolicy": "Never", "containers": [{"name": "job", "image": "busybox"}]}),
        json!({
            "phase": "Failed",
            "containerStatuses": [{"name": "job", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]
        }),
    );
    assert_eq!(pod_cells(&errored)[2], "Error");

    let oom = pod(
        json!({"containers": [{"name": "job", "image": "busybox"}]}),
        json!({"phase": "Failed", "containerStatuses": [{"name": "job", "restartCount": 0,
            "state": {"terminated": {"exitCode": 137}}}]}),
    );
    assert_eq!(pod_cells(&oom)[2], "ExitCode:137");

    let evicted = pod(
        json!({"containers": [{"name": "job", "image": "busybox"}]}),
        json!({"phase": "Failed", "reason": "Evicted", "message": "low on memory"}),
    );
    assert_eq!(pod_cells(&evicted)[2], "Evicted");
}

#[test]
fn pod_completed_container_with_running_sibling() {
    // Containers are walked last to first: the first container's state wins.
    let statuses = json!([
        {"name": "a", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
        running_container("b", 0)
    ]);
    let spec = json!({"containers": [{"name": "a", "image": "a"}, {"name": "b", "image": "b"}]});
    let ready = pod(
        spec.clone(),
        json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": statuses.clone()}),
    );
    let cells = pod_cells(&ready);
    assert_eq!(cells[1], "1/2");
    assert_eq!(cells[2], "Running");
    let not_ready = pod(
        spec,
        json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}],
            "containerStatuses": statuses}),
    );
    assert_eq!(pod_cells(&not_ready)[2], "NotReady");
}

#[test]
fn pod_terminating_and_node_lost() {
    let mut p = pod(
        json!({"nodeName": "node-1", "containers": [{"name": "web", "image": "nginx"}]}),
        json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [running_container("web", 0)]}),
    );
    p["metadata"]["deletionTimestamp"] = json!(ago(10));
    p["metadata"]["deletionGracePeriodSeconds"] = json!(30);
    assert_eq!(pod_cells(&p)[2], "Terminating");

    p["status"]["reason"] = json!("NodeLost");
    assert_eq!(pod_cells(&p)[2], "Unknown");

    let mut done = pod(
        json!({"containers": [{"name": "web", "image": "nginx"}]}),
        json!({"phase": "Succeeded", "containerStatuses": [{"name": "web", "restartCount": 0,
            "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}),
    );
    done["metadata"]["deletionTimestamp"] = json!(ago(10));
    assert_eq!(
        pod_cells(&done)[2],
        "Completed",
        "terminal pods are not Terminating"
    );
}

#[test]
fn pod_scheduling_gated() {
    let p = pod(
        json!({"schedulingGates": [{"name": "example.com/gate"}], "containers": [{"name": "web", "image": "nginx"}]}),
        json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
            "reason": "SchedulingGated", "message": "Scheduling is blocked due to non-empty scheduling gates"}]}),
    );
    assert_eq!(pod_cells(&p)[2], "SchedulingGated");
}

#[test]
fn pod_sidecar_containers_count_as_containers() {
    let p = pod(
        json!({
            "initContainers": [
                {"name": "init", "image": "busybox"},
                {"name": "proxy", "image": "envoy", "restartPolicy": "Always"}
            ],
            "containers": [{"name": "web", "image": "nginx"}]
        }),
        json!({
            "phase": "Running",
            "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
            "initContainerStatuses": [
                {"name": "init", "ready": false, "restartCount": 0,
                    "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                {"name": "proxy", "ready": true, "started": true, "restartCount": 1,
                    "lastTerminationState": {"terminated": {"exitCode": 1, "finishedAt": ago(120)}},
                    "state": {"running": {"startedAt": ago(110)}}}
            ],
            "containerStatuses": [running_container("web", 0)]
        }),
    );
    let cells = pod_cells(&p);
    assert_eq!(cells[1], "2/2");
    assert_eq!(cells[2], "Running");
    assert_eq!(cells[3], "1 (2m ago)");
}

#[test]
fn pod_wide_columns() {
    let p = pod(
        json!({
            "nodeName": "node-3",
            "readinessGates": [{"conditionType": "example.com/lb-ready"}, {"conditionType": "example.com/warm"}],
            "containers": [{"name": "web", "image": "nginx"}]
        }),
        json!({
            "phase": "Running",
            "nominatedNodeName": "node-9",
            "podIPs": [{"ip": "fd00::7"}, {"ip": "10.0.0.7"}],
            "conditions": [
                {"type": "Ready", "status": "True"},
                {"type": "example.com/lb-ready", "status": "True"},
                {"type": "example.com/warm", "status": "False"}
            ],
            "containerStatuses": [running_container("web", 0)]
        }),
    );
    let cells = pod_cells(&p);
    assert_eq!(cells[5], "fd00::7");
    assert_eq!(cells[6], "node-3");
    assert_eq!(cells[7], "node-9");
    assert_eq!(cells[8], "1/2");
}

// ---------------------------------------------------------------------------------------------
// Workloads
// ---------------------------------------------------------------------------------------------

#[test]
fn deployment_readiness_and_wide_columns() {
    let d = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "creationTimestamp": ago(2 * 86_400 + 5 * 3600)},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web", "tier": "frontend"}},
            "template": {
                "metadata": {"labels": {"app": "web", "tier": "frontend"}},
                "spec": {"containers": [
                    {"name": "nginx", "image": "nginx:1.27"},
                    {"name": "exporter", "image": "nginx/nginx-prometheus-exporter:1.1"}
                ]}
            }
        },
        "status": {"replicas": 3, "updatedReplicas": 3, "readyReplicas": 2, "availableReplicas": 2}
    });
    assert_eq!(
        row("apps", "Deployment", &d),
        [
            json!("web"),
            json!("2/3"),
            json!(3),
            json!(2),
            json!("2d5h"),
            json!("nginx,exporter"),
            json!("nginx:1.27,nginx/nginx-prometheus-exporter:1.1"),
            json!("app=web,tier=frontend"),
        ]
    );
    let fresh =
        json!({"metadata": {"name": "new"}, "spec": {"selector": {"matchLabels": {"app": "x"}}}});
    let cells = row("apps", "Deployment", &fresh);
    assert_eq!(cells[1], "0/1", "replicas default to 1");
    assert_eq!(cells[2], 0);
}

#[test]
fn replica_set_stateful_set_daemon_set() {
    let rs = json!({
        "metadata": {"name": "web-7d4b9c8f5", "creationTimestamp": ago(600)},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web", "pod-template-hash": "7d4b9c8f5"}},
            "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}},
        "status": {"replicas": 3, "readyReplicas": 1}
    });
    assert_eq!(
        row("apps", "ReplicaSet", &rs),
        [
            json!("web-7d4b9c8f5"),
            json!(3),
            json!(3),
            json!(1),
            json!("10m"),
            json!("nginx"),
            json!("nginx"),
            json!("app=web,pod-template-hash=7d4b9c8f5"),
        ]
    );
    let sts = json!({
        "metadata": {"name": "db", "creationTimestamp": ago(90)},
        "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "pg", "image": "postgres:16"}]}}},
        "status": {"readyReplicas": 3}
    });
    assert_eq!(
        row("apps", "StatefulSet", &sts),
        [
            json!("db"),
            json!("3/3"),
            json!("90s"),
            json!("pg"),
            json!("postgres:16")
        ]
    );
    let ds = json!({
        "metadata": {"name": "kube-proxy", "creationTimestamp": ago(40 * 86_400)},
        "spec": {"selector": {"matchLabels": {"k8s-app": "kube-proxy"}},
            "template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"},
                "containers": [{"name": "kube-proxy", "image": "registry.k8s.io/kube-proxy:v1.35.0"}]}}},
        "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 3,
            "updatedNumberScheduled": 3, "numberAvailable": 3}
    });
    assert_eq!(
        row("apps", "DaemonSet", &ds),
        [
            json!("kube-proxy"),
            json!(3),
            json!(3),
            json!(3),
            json!(3),
            json!(3),
            json!("kubernetes.io/os=linux"),
            json!("40d"),
            json!("kube-proxy"),
            json!("registry.k8s.io/kube-proxy:v1.35.0"),
            json!("k8s-app=kube-proxy"),
        ]
    );
}

fn job(spec: Value, status: Value) -> Value {
    json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "pi", "creationTimestamp": ago(600)},
        "spec": spec, "status": status
    })
}

#[test]
fn job_status_completions_and_duration() {
    let template = json!({"spec": {"containers": [{"name": "pi", "image": "perl:5.34"}], "restartPolicy": "Never"}});
    let complete = job(
        json!({"completions": 1, "parallelism": 1, "template": template.clone(),
            "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "abc"}}}),
        json!({"succeeded": 1, "startTime": ago(600), "completionTime": ago(600 - 75),
        "conditions": [
            {"type": "SuccessCriteriaMet", "status": "True"},
            {"type": "Complete", "status": "True"}
        ]}),
    );
    assert_eq!(
        row("batch", "Job", &complete),
        [
            json!("pi"),
            json!("Complete"),
            json!("1/1"),
            json!("75s"),
            json!("10m"),
            json!("pi"),
            json!("perl:5.34"),
            json!("batch.kubernetes.io/controller-uid=abc"),
        ]
    );

    let running = job(
        json!({"parallelism": 3, "template": template.clone()}),
        json!({"active": 3, "startTime": ago(200)}),
    );
    let cells = row("batch", "Job", &running);
    assert_eq!(cells[1], "Running");
    assert_eq!(cells[2], "0/1 of 3");
    assert_eq!(cells[3], "3m20s");
    assert_eq!(cells[7], "<none>");

    let defaulted = job(json!({"template": template.clone()}), json!({}));
    let cells = row("batch", "Job", &defaulted);
    assert_eq!(cells[2], "0/1");
    assert_eq!(cells[3], "", "no start time, no duration");

    let failed = job(
        json!({"completions": 5, "template": template.clone()}),
        json!({"succeeded": 2, "failed": 7, "startTime": ago(500),
            "conditions": [{"type": "FailureTarget", "status": "True"}, {"type": "Failed", "status": "True"}]}),
    );
    let cells = row("batch", "Job", &failed);
    assert_eq!(cells[1], "Failed");
    assert_eq!(cells[2], "2/5");

    let failing = job(
        json!({"completions": 5, "template": template.clone()}),
        json!({"conditions": [{"type": "FailureTarget", "status": "True"}]}),
    );
    assert_eq!(row("batch", "Job", &failing)[1], "FailureTarget");

    let suspended = job(
        json!({"suspend": true, "template": template.clone()}),
        json!({"conditions": [{"type": "Suspended", "status": "True"}]}),
    );
    assert_eq!(row("batch", "Job", &suspended)[1], "Suspended");

    let succeeding = job(
        json!({"template": template.clone()}),
        json!({"conditions": [{"type": "SuccessCriteriaMet", "status": "True"}]}),
    );
    assert_eq!(row("batch", "Job", &succeeding)[1], "SuccessCriteriaMet");

    let mut terminating = job(json!({"template": template}), json!({}));
    terminating["metadata"]["deletionTimestamp"] = json!(ago(1));
    assert_eq!(row("batch", "Job", &terminating)[1], "Terminating");
}

#[test]
fn cron_job_cells() {
    let cj = json!({
        "metadata": {"name": "hello", "creationTimestamp": ago(3 * 86_400)},
        "spec": {"schedule": "*/1 * * * *",
            "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "hello", "image": "busybox:1.28"}]}}}}},
        "status": {"active": [{"name": "hello-28600000"}], "lastScheduleTime": ago(45)}
    });
    assert_eq!(
        row("batch", "CronJob", &cj),
        [
            json!("hello"),
            json!("*/1 * * * *"),
            json!("<none>"),
            json!("False"),
            json!(1),
            json!("45s"),
            json!("3d"),
            json!("hello"),
            json!("busybox:1.28"),
            json!("<none>"),
        ]
    );
    let tz = json!({"metadata": {"name": "x"}, "spec": {"schedule": "@daily", "timeZone": "Europe/Paris", "suspend": true}});
    let cells = row("batch", "CronJob", &tz);
    assert_eq!(cells[2], "Europe/Paris");
    assert_eq!(cells[3], "True");
    assert_eq!(cells[5], "<none>");
}

#[test]
fn controller_revision_names_its_controller() {
    let cr = json!({
        "metadata": {"name": "fluentd-5d4b8f6c7", "creationTimestamp": ago(60),
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "fluentd", "uid": "u", "controller": true}]},
        "revision": 4
    });
    assert_eq!(
        row("apps", "ControllerRevision", &cr),
        [
            json!("fluentd-5d4b8f6c7"),
            json!("daemonset.apps/fluentd"),
            json!(4),
            json!("60s")
        ]
    );
}

#[test]
fn hpa_targets() {
    let v2 = json!({
        "metadata": {"name": "web", "creationTimestamp": ago(3600)},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 2, "maxReplicas": 10,
            "metrics": [
                {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}},
                {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "1.5Gi"}}},
                {"type": "Pods", "pods": {"metric": {"name": "rps"}, "target": {"type": "AverageValue", "averageValue": "1k"}}}
            ]},
        "status": {"currentReplicas": 3, "desiredReplicas": 3, "currentMetrics": [
            {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 12, "averageValue": "120m"}}}
        ]}
    });
    assert_eq!(
        row("autoscaling", "HorizontalPodAutoscaler", &v2),
        [
            json!("web"),
            json!("Deployment/web"),
            json!("cpu: 12%/50%, memory: <unknown>/1536Mi + 1 more..."),
            json!("2"),
            json!(10),
            json!(3),
            json!("60m"),
        ]
    );
    let v1 = json!({
        "metadata": {"name": "php"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "php-apache"}, "maxReplicas": 10,
            "targetCPUUtilizationPercentage": 50},
        "status": {"currentReplicas": 1, "currentCPUUtilizationPercentage": 0}
    });
    let cells = row("autoscaling", "HorizontalPodAutoscaler", &v1);
    assert_eq!(cells[2], "cpu: 0%/50%");
    assert_eq!(cells[3], "1");
    let defaulted = json!({"metadata": {"name": "d"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "d"}, "maxReplicas": 3}});
    assert_eq!(
        row("autoscaling", "HorizontalPodAutoscaler", &defaulted)[2],
        "cpu: <unknown>/80%"
    );
}

// ---------------------------------------------------------------------------------------------
// Services and networking
// ---------------------------------------------------------------------------------------------

fn service(spec: Value, status: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "default", "creationTimestamp": ago(5 * 60 + 30)},
        "spec": spec, "status": status})
}

#[test]
fn service_cluster_ip() {
    let svc = service(
        json!({"type": "ClusterIP", "clusterIP": "10.96.12.34", "clusterIPs": ["10.96.12.34"],
            "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
            "selector": {"app": "web"}}),
        json!({"loadBalancer": {}}),
    );
    assert_eq!(
        row("", "Service", &svc),
        [
            json!("web"),
            json!("ClusterIP"),
            json!("10.96.12.34"),
            json!("<none>"),
            json!("80/TCP"),
            json!("5m30s"),
            json!("app=web"),
        ]
    );
}

#[test]
fn service_node_ports() {
    let svc = service(
        json!({"type": "NodePort", "clusterIPs": ["10.96.0.10"],
        "ports": [
            {"name": "http", "port": 80, "nodePort": 30080, "protocol": "TCP"},
            {"name": "https", "port": 443, "nodePort": 30443},
            {"name": "dns", "port": 53, "nodePort": 30053, "protocol": "UDP"}
        ]}),
        json!({}),
    );
    let cells = row("", "Service", &svc);
    assert_eq!(cells[1], "NodePort");
    assert_eq!(cells[2], "10.96.0.10");
    assert_eq!(cells[3], "<none>");
    assert_eq!(cells[4], "80:30080/TCP,443:30443/TCP,53:30053/UDP");
    assert_eq!(cells[6], "<none>");
}

#[test]
fn service_external_ips() {
    let pending = service(
        json!({"type": "LoadBalancer", "clusterIP": "10.96.1.1", "ports": [{"port": 443, "nodePort": 31443, "protocol": "TCP"}]}),
        json!({"loadBalancer": {}}),
    );
    assert_eq!(row("", "Service", &pending)[3], "<pending>");

    let provisioned = service(
        json!({"type": "LoadBalancer", "clusterIP": "10.96.1.1", "ports": [{"port": 443, "nodePort": 31443}]}),
        json!({"loadBalancer": {"ingress": [
            {"ip": "203.0.113.20"}, {"hostname": "a1b2c3-1234567890.elb.example.com"}, {"ip": "203.0.113.10"}
        ]}}),
    );
    assert_eq!(
        row("", "Service", &provisioned)[3],
        "203.0.113.10,203.0.113.20,a1b2c3-1234567890.elb.example.com"
    );

    let with_external = service(
        json!({"type": "LoadBalancer", "externalIPs": ["198.51.100.1"], "ports": [{"port": 80}]}),
        json!({"loadBalancer": {"ingress": [{"ip": "203.0.113.10"}]}}),
    );
    assert_eq!(
        row("", "Service", &with_external)[3],
        "203.0.113.10,198.51.100.1"
    );

    let cluster_external = service(
        json!({"clusterIP": "10.0.0.5", "externalIPs": ["198.51.100.1", "198.51.100.2"], "ports": [{"port": 80}]}),
        json!({}),
    );
    let cells = row("", "Service", &cluster_external);
    assert_eq!(cells[1], "ClusterIP", "type defaults to ClusterIP");
    assert_eq!(cells[3], "198.51.100.1,198.51.100.2");

    let external_name = service(
        json!({"type": "ExternalName", "externalName": "db.example.com"}),
        json!({}),
    );
    let cells = row("", "Service", &external_name);
    assert_eq!(cells[2], "<none>");
    assert_eq!(cells[3], "db.example.com");
    assert_eq!(cells[4], "<none>");

    let headless = service(
        json!({"clusterIP": "None", "clusterIPs": ["None"], "ports": [{"port": 5432, "protocol": "TCP"}]}),
        json!({}),
    );
    assert_eq!(row("", "Service", &headless)[2], "None");
}

#[test]
fn endpoints_and_endpoint_slices() {
    let ep = json!({
        "metadata": {"name": "web", "creationTimestamp": ago(30)},
        "subsets": [{
            "addresses": [{"ip": "10.244.1.5"}, {"ip": "10.244.2.6"}],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "metrics", "port": 9090}]
        }]
    });
    assert_eq!(
        row("", "Endpoints", &ep)[1],
        "10.244.1.5:8080,10.244.2.6:8080,10.244.1.5:9090 + 1 more..."
    );
    let v6 = json!({"metadata": {"name": "v6"}, "subsets": [{"addresses": [{"ip": "fd00::5"}], "ports": [{"port": 80}]}]});
    assert_eq!(row("", "Endpoints", &v6)[1], "[fd00::5]:80");
    let headless =
        json!({"metadata": {"name": "h"}, "subsets": [{"addresses": [{"ip": "10.0.0.1"}]}]});
    assert_eq!(row("", "Endpoints", &headless)[1], "10.0.0.1");
    let empty = json!({"metadata": {"name": "e"}});
    assert_eq!(row("", "Endpoints", &empty)[1], "<none>");

    let slice = json!({
        "metadata": {"name": "web-abc12", "creationTimestamp": ago(30)},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": [
            {"addresses": ["10.244.1.5"], "conditions": {"ready": true}},
            {"addresses": ["10.244.2.6"]},
            {"addresses": ["10.244.3.7"]},
            {"addresses": ["10.244.4.8"]}
        ]
    });
    assert_eq!(
        row("discovery.k8s.io", "EndpointSlice", &slice),
        [
            json!("web-abc12"),
            json!("IPv4"),
            json!("8080"),
            json!("10.244.1.5,10.244.2.6,10.244.3.7 + 1 more..."),
            json!("30s"),
        ]
    );
    let bare = json!({"metadata": {"name": "s"}, "addressType": "IPv6", "ports": [{}]});
    let cells = row("discovery.k8s.io", "EndpointSlice", &bare);
    assert_eq!(cells[2], "*");
    assert_eq!(cells[3], "<unset>");
}

#[test]
fn ingress_cells() {
    let ing = json!({
        "metadata": {"name": "web", "creationTimestamp": ago(120)},
        "spec": {"ingressClassName": "nginx",
            "tls": [{"hosts": ["a.example.com"], "secretName": "tls"}],
            "rules": [{"host": "a.example.com"}, {"host": "b.example.com"}, {}, {"host": "c.example.com"}, {"host": "d.example.com"}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}}
    });
    assert_eq!(
        row("networking.k8s.io", "Ingress", &ing),
        [
            json!("web"),
            json!("nginx"),
            json!("a.example.com,b.example.com,c.example.com + 2 more..."),
            json!("192.0.2.10"),
            json!("80, 443"),
            json!("2m"),
        ]
    );
    let catch_all = json!({"metadata": {"name": "all"}, "spec": {"defaultBackend": {"service": {"name": "web"}}}});
    let cells = row("networking.k8s.io", "Ingress", &catch_all);
    assert_eq!(cells[1], "<none>");
    assert_eq!(cells[2], "*");
    assert_eq!(cells[3], "");
    assert_eq!(cells[4], "80");

    let class = json!({"metadata": {"name": "nginx"}, "spec": {"controller": "k8s.io/ingress-nginx",
        "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "external-lb"}}});
    let cells = row("networking.k8s.io", "IngressClass", &class);
    assert_eq!(cells[1], "k8s.io/ingress-nginx");
    assert_eq!(cells[2], "IngressParameters.k8s.example.com/external-lb");
}

#[test]
fn network_policy_selector() {
    let np = json!({"metadata": {"name": "deny"}, "spec": {"podSelector": {}}});
    assert_eq!(row("networking.k8s.io", "NetworkPolicy", &np)[1], "<none>");
    let np = json!({"metadata": {"name": "db"}, "spec": {"podSelector": {
        "matchLabels": {"role": "db"},
        "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "dev"]},
            {"key": "canary", "operator": "DoesNotExist"}]}}});
    assert_eq!(
        row("networking.k8s.io", "NetworkPolicy", &np)[1],
        "!canary,env in (dev,prod),role=db"
    );
}

#[test]
fn label_selector_formatting() {
    assert_eq!(format_label_selector(None), "<none>");
    assert_eq!(format_label_selector(Some(&json!({}))), "<none>");
    assert_eq!(
        format_label_selector(Some(&json!({"matchExpressions": [
            {"key": "tier", "operator": "NotIn", "values": ["cache"]},
            {"key": "app", "operator": "Exists"}
        ]}))),
        "app,tier notin (cache)"
    );
    assert_eq!(
        format_label_selector(Some(
            &json!({"matchExpressions": [{"key": "a", "operator": "Bogus"}]})
        )),
        "<error>"
    );
}

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

#[test]
fn core_event_cells() {
    let ev = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "web-7d4b9c8f5-x2x9k.17d2b5f1a2b3c4d5", "namespace": "default", "creationTimestamp": ago(600)},
        "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web-7d4b9c8f5-x2x9k",
            "apiVersion": "v1", "fieldPath": "spec.containers{web}"},
        "reason": "BackOff",
        "message": "Back-off restarting failed container web in pod web-7d4b9c8f5-x2x9k\n",
        "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": ago(600),
        "lastTimestamp": ago(30),
        "count": 42,
        "type": "Warning",
        "reportingComponent": "kubelet",
        "reportingInstance": "node-1"
    });
    assert_eq!(
        row("", "Event", &ev),
        [
            json!("30s"),
            json!("Warning"),
            json!("BackOff"),
            json!("pod/web-7d4b9c8f5-x2x9k"),
            json!("spec.containers{web}"),
            json!("kubelet, node-1"),
            json!("Back-off restarting failed container web in pod web-7d4b9c8f5-x2x9k"),
            json!("10m"),
            json!(42),
            json!("web-7d4b9c8f5-x2x9k.17d2b5f1a2b3c4d5"),
        ]
    );
}

#[test]
fn new_style_core_event_uses_event_time_and_series() {
    let ev = json!({
        "metadata": {"name": "nginx.1"},
        "involvedObject": {"kind": "Deployment", "name": "nginx"},
        "reason": "ScalingReplicaSet",
        "message": "Scaled up replica set nginx-5869d7778c from 0 to 1",
        "eventTime": "2024-06-01T11:54:59.500000Z",
        "reportingComponent": "deployment-controller",
        "type": "Normal"
    });
    let cells = row("", "Event", &ev);
    assert_eq!(cells[0], "5m");
    assert_eq!(cells[5], "deployment-controller");
    assert_eq!(cells[7], "5m");
    assert_eq!(cells[8], 1, "singleton events count 1");

    let series = json!({
        "metadata": {"name": "n.2"},
        "involvedObject": {"kind": "Node"},
        "eventTime": ago(3600),
        "series": {"count": 7, "lastObservedTime": ago(20)},
        "type": "Warning", "reason": "Rebooted"
    });
    let cells = row("", "Event", &series);
    assert_eq!(cells[0], "20s");
    assert_eq!(cells[3], "node");
    assert_eq!(cells[7], "60m");
    assert_eq!(cells[8], 7);

    let unknown =
        json!({"metadata": {"name": "x"}, "involvedObject": {"kind": "Pod", "name": "p"}});
    let cells = row("", "Event", &unknown);
    assert_eq!(cells[0], "<unknown>");
    assert_eq!(cells[7], "<unknown>");
}

#[test]
fn events_k8s_io_event_cells() {
    let ev = json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "web.1", "namespace": "default"},
        "eventTime": ago(200),
        "reportingController": "default-scheduler",
        "reportingInstance": "default-scheduler-control-plane",
        "action": "Binding",
        "reason": "Scheduled",
        "regarding": {"kind": "Pod", "namespace": "default", "name": "web"},
        "note": "Successfully assigned default/web to node-1",
        "type": "Normal",
        "deprecatedCount": 0
    });
    assert_eq!(
        row("events.k8s.io", "Event", &ev),
        [
            json!("3m20s"),
            json!("Normal"),
            json!("Scheduled"),
            json!("pod/web"),
            json!(""),
            json!("default-scheduler, default-scheduler-control-plane"),
            json!("Successfully assigned default/web to node-1"),
            json!("3m20s"),
            json!(1),
            json!("web.1"),
        ]
    );
    let old = json!({"metadata": {"name": "o"}, "regarding": {"kind": "Node", "name": "n1"},
        "deprecatedFirstTimestamp": ago(7200), "deprecatedLastTimestamp": ago(60), "deprecatedCount": 3,
        "deprecatedSource": {"component": "kubelet", "host": "n1"}});
    let cells = row("events.k8s.io", "Event", &old);
    assert_eq!(cells[0], "60s");
    assert_eq!(cells[5], "kubelet, n1");
    assert_eq!(cells[7], "120m");
    assert_eq!(cells[8], 3);
}

// ---------------------------------------------------------------------------------------------
// Cluster objects
// ---------------------------------------------------------------------------------------------

#[test]
fn node_cells() {
    let node = json!({
        "metadata": {"name": "control-plane", "creationTimestamp": ago(15 * 86_400),
            "labels": {"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/etcd": "",
                "kubernetes.io/role": "master", "kubernetes.io/hostname": "control-plane"}},
        "spec": {"unschedulable": true},
        "status": {
            "conditions": [
                {"type": "MemoryPressure", "status": "False"},
                {"type": "Ready", "status": "True", "reason": "KubeletReady"}
            ],
            "addresses": [{"type": "InternalIP", "address": "172.18.0.2"}, {"type": "Hostname", "address": "control-plane"}],
            "nodeInfo": {"kubeletVersion": "v1.35.0", "osImage": "Debian GNU/Linux 12 (bookworm)",
                "kernelVersion": "6.8.0-31-generic", "containerRuntimeVersion": "containerd://2.1.1"}
        }
    });
    assert_eq!(
        row("", "Node", &node),
        [
            json!("control-plane"),
            json!("Ready,SchedulingDisabled"),
            json!("control-plane,etcd,master"),
            json!("15d"),
            json!("v1.35.0"),
            json!("172.18.0.2"),
            json!("<none>"),
            json!("Debian GNU/Linux 12 (bookworm)"),
            json!("6.8.0-31-generic"),
            json!("containerd://2.1.1"),
        ]
    );
    let bare = json!({"metadata": {"name": "n"}, "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}});
    let cells = row("", "Node", &bare);
    assert_eq!(cells[1], "NotReady");
    assert_eq!(cells[2], "<none>");
    assert_eq!(cells[7], "<unknown>");
    assert_eq!(row("", "Node", &json!({}))[1], "Unknown");
}

#[test]
fn namespace_secret_config_map_service_account() {
    let ns = json!({"metadata": {"name": "kube-system", "creationTimestamp": ago(86_400)}, "status": {"phase": "Active"}});
    assert_eq!(
        row("", "Namespace", &ns),
        [json!("kube-system"), json!("Active"), json!("24h")]
    );
    let mut ns = json!({"metadata": {"name": "gone"}, "status": {"phase": "Terminating"}});
    assert_eq!(row("", "Namespace", &ns)[1], "Terminating");
    ns["status"] = json!({});
    assert_eq!(row("", "Namespace", &ns)[1], "Active");

    let secret = json!({"metadata": {"name": "tls", "creationTimestamp": ago(59)}, "type": "kubernetes.io/tls",
        "data": {"tls.crt": "Y3J0", "tls.key": "a2V5"}});
    assert_eq!(
        row("", "Secret", &secret),
        [
            json!("tls"),
            json!("kubernetes.io/tls"),
            json!(2),
            json!("59s")
        ]
    );
    let opaque = json!({"metadata": {"name": "o"}});
    assert_eq!(row("", "Secret", &opaque)[1], "Opaque");
    assert_eq!(row("", "Secret", &opaque)[2], 0);

    let cm = json!({"metadata": {"name": "kube-root-ca.crt", "creationTimestamp": ago(7200)},
        "data": {"ca.crt": "..."}, "binaryData": {"blob": "AAE="}});
    assert_eq!(
        row("", "ConfigMap", &cm),
        [json!("kube-root-ca.crt"), json!(2), json!("120m")]
    );

    let sa = json!({"metadata": {"name": "default", "creationTimestamp": ago(10)}, "secrets": [{"name": "x"}]});
    assert_eq!(
        row("", "ServiceAccount", &sa),
        [json!("default"), json!("10s")]
    );
}

#[test]
fn persistent_volumes_and_claims() {
    let pv = json!({
        "metadata": {"name": "pv0001", "creationTimestamp": ago(3600)},
        "spec": {"capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Recycle", "storageClassName": "slow",
            "claimRef": {"namespace": "default", "name": "myclaim"}, "volumeMode": "Filesystem",
            "nfs": {"server": "172.17.0.2", "path": "/tmp"}},
        "status": {"phase": "Bound"}
    });
    assert_eq!(
        row("", "PersistentVolume", &pv),
        [
            json!("pv0001"),
            json!("5Gi"),
            json!("RWO,RWX"),
            json!("Recycle"),
            json!("Bound"),
            json!("default/myclaim"),
            json!("slow"),
            json!("<unset>"),
            json!(""),
            json!("60m"),
            json!("Filesystem"),
        ]
    );
    let mut deleting = json!({"metadata": {"name": "p", "deletionTimestamp": ago(1),
        "annotations": {"volume.beta.kubernetes.io/storage-class": "legacy"}},
        "spec": {"capacity": {"storage": "1536Mi"}, "storageClassName": "ignored", "volumeMode": "Block"}});
    let cells = row("", "PersistentVolume", &deleting);
    assert_eq!(cells[1], "1536Mi");
    assert_eq!(cells[3], "Retain");
    assert_eq!(cells[4], "Terminating");
    assert_eq!(cells[6], "legacy");
    assert_eq!(cells[10], "Block");
    deleting["spec"]["capacity"]["storage"] = json!("1.5Gi");
    assert_eq!(row("", "PersistentVolume", &deleting)[1], "1536Mi");

    let bound = json!({
        "metadata": {"name": "data-db-0", "creationTimestamp": ago(300)},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "8Gi"}},
            "storageClassName": "standard", "volumeName": "pvc-1234", "volumeMode": "Filesystem",
            "volumeAttributesClassName": "gold"},
        "status": {"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "8Gi"}}
    });
    assert_eq!(
        row("", "PersistentVolumeClaim", &bound),
        [
            json!("data-db-0"),
            json!("Bound"),
            json!("pvc-1234"),
            json!("8Gi"),
            json!("RWO"),
            json!("standard"),
            json!("gold"),
            json!("5m"),
            json!("Filesystem"),
        ]
    );
    let pending =
        json!({"metadata": {"name": "p"}, "spec": {"resources": {"requests": {"storage": "1Gi"}}}});
    let cells = row("", "PersistentVolumeClaim", &pending);
    assert_eq!(cells[1], "Pending");
    assert_eq!(cells[3], "");
    assert_eq!(cells[4], "");
    assert_eq!(cells[5], "");
    assert_eq!(cells[8], "Filesystem");
}

#[test]
fn quantities_print_canonically() {
    for (input, want) in [
        ("5Gi", "5Gi"),
        ("1.5Gi", "1536Mi"),
        ("1024Mi", "1Gi"),
        ("1000M", "1G"),
        ("0.5", "500m"),
        ("1500m", "1500m"),
        ("2000m", "2"),
        ("100", "100"),
        ("1000", "1k"),
        ("1e3", "1e3"),
        ("1.5e3", "1500"),
        ("0", "0"),
        ("0Gi", "0"),
        ("512", "512"),
        ("100Ki", "100Ki"),
        ("1536", "1536"),
        ("0.1m", "100u"),
        ("1n", "1n"),
        ("0.0000000001", "1n"),
        ("12Ki", "12Ki"),
        ("500Mi", "500Mi"),
        ("-1", "-1"),
        ("not-a-quantity", "not-a-quantity"),
    ] {
        assert_eq!(canonical_quantity(input), want, "{input}");
    }
}

#[test]
fn resource_quota_splits_requests_and_limits() {
    let rq = json!({
        "metadata": {"name": "compute", "creationTimestamp": ago(45)},
        "spec": {"hard": {"requests.cpu": "1", "requests.memory": "1Gi", "limits.cpu": "2", "limits.memory": "2Gi", "pods": "10"}},
        "status": {
            "hard": {"requests.cpu": "1", "requests.memory": "1Gi", "limits.cpu": "2", "limits.memory": "2Gi", "pods": "10"},
            "used": {"requests.cpu": "500m", "requests.memory": "256Mi", "limits.cpu": "1", "pods": "3"}
        }
    });
    assert_eq!(
        row("", "ResourceQuota", &rq),
        [
            json!("compute"),
            json!("pods: 3/10, requests.cpu: 500m/1, requests.memory: 256Mi/1Gi"),
            json!("limits.cpu: 1/2, limits.memory: 0/2Gi"),
            json!("45s"),
        ]
    );
}

#[test]
fn rbac_bindings() {
    let rb = json!({
        "metadata": {"name": "read-pods", "namespace": "default", "creationTimestamp": ago(3 * 3600)},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
        "subjects": [
            {"kind": "User", "name": "jane", "apiGroup": "rbac.authorization.k8s.io"},
            {"kind": "User", "name": "joe"},
            {"kind": "Group", "name": "system:authenticated"},
            {"kind": "ServiceAccount", "name": "builder", "namespace": "ci"}
        ]
    });
    assert_eq!(
        row("rbac.authorization.k8s.io", "RoleBinding", &rb),
        [
            json!("read-pods"),
            json!("Role/pod-reader"),
            json!("3h"),
            json!("jane, joe"),
            json!("system:authenticated"),
            json!("ci/builder"),
        ]
    );
    let crb = json!({"metadata": {"name": "cluster-admin"}, "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "Group", "name": "system:masters"}]});
    let cells = row("rbac.authorization.k8s.io", "ClusterRoleBinding", &crb);
    assert_eq!(cells[1], "ClusterRole/cluster-admin");
    assert_eq!(cells[3], "");
    assert_eq!(cells[4], "system:masters");
}

#[test]
fn lease_storage_class_and_misc() {
    let lease = json!({"metadata": {"name": "kube-scheduler", "creationTimestamp": ago(600)},
        "spec": {"holderIdentity": "control-plane_7f1c", "leaseDurationSeconds": 15}});
    assert_eq!(
        row("coordination.k8s.io", "Lease", &lease),
        [
            json!("kube-scheduler"),
            json!("control-plane_7f1c"),
            json!("10m")
        ]
    );

    let sc = json!({"metadata": {"name": "standard", "creationTimestamp": ago(600),
        "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer"});
    assert_eq!(
        row("storage.k8s.io", "StorageClass", &sc),
        [
            json!("standard (default)"),
            json!("rancher.io/local-path"),
            json!("Delete"),
            json!("WaitForFirstConsumer"),
            json!(false),
            json!("10m"),
        ]
    );

    let pc = json!({"metadata": {"name": "system-cluster-critical"}, "value": 2_000_000_000, "globalDefault": false});
    let cells = row("scheduling.k8s.io", "PriorityClass", &pc);
    assert_eq!(cells[1], 2_000_000_000);
    assert_eq!(cells[2], false);
    assert_eq!(cells[4], "PreemptLowerPriority");

    let pdb = json!({"metadata": {"name": "web"}, "spec": {"minAvailable": "50%"}, "status": {"disruptionsAllowed": 1}});
    let cells = row("policy", "PodDisruptionBudget", &pdb);
    assert_eq!(cells[1], "50%");
    assert_eq!(cells[2], "N/A");
    assert_eq!(cells[3], 1);
    let pdb = json!({"metadata": {"name": "db"}, "spec": {"maxUnavailable": 1}});
    assert_eq!(row("policy", "PodDisruptionBudget", &pdb)[2], "1");

    let csr = json!({"metadata": {"name": "csr-abc", "creationTimestamp": ago(30)},
        "spec": {"signerName": "kubernetes.io/kube-apiserver-client-kubelet", "username": "system:node:node-1",
            "expirationSeconds": 86_400},
        "status": {"conditions": [{"type": "Approved", "status": "True"}], "certificate": "LS0t"}});
    assert_eq!(
        row("certificates.k8s.io", "CertificateSigningRequest", &csr),
        [
            json!("csr-abc"),
            json!("30s"),
            json!("kubernetes.io/kube-apiserver-client-kubelet"),
            json!("system:node:node-1"),
            json!("24h"),
            json!("Approved,Issued"),
        ]
    );

    let cs = json!({"metadata": {"name": "etcd-0"}, "conditions": [{"type": "Healthy", "status": "True", "message": "ok"}]});
    assert_eq!(
        row("", "ComponentStatus", &cs),
        [json!("etcd-0"), json!("Healthy"), json!("ok"), json!("")]
    );

    let csi = json!({"metadata": {"name": "hostpath.csi.k8s.io"}, "spec": {"podInfoOnMount": true,
        "tokenRequests": [{"audience": "vault"}, {"audience": "gcp"}]}});
    let cells = row("storage.k8s.io", "CSIDriver", &csi);
    assert_eq!(
        cells[1..7],
        [
            json!(true),
            json!(true),
            json!(false),
            json!("vault,gcp"),
            json!(false),
            json!("Persistent")
        ]
    );

    let vwc = json!({"metadata": {"name": "policy"}, "webhooks": [{"name": "a"}, {"name": "b"}]});
    assert_eq!(
        row(
            "admissionregistration.k8s.io",
            "ValidatingWebhookConfiguration",
            &vwc
        )[1],
        2
    );

    let binding = json!({"metadata": {"name": "b"}, "spec": {"policyName": "p", "paramRef": {"name": "cfg"}}});
    assert_eq!(
        row(
            "admissionregistration.k8s.io",
            "ValidatingAdmissionPolicyBinding",
            &binding
        )[2],
        "*/cfg"
    );
    let binding = json!({"metadata": {"name": "b"}, "spec": {"policyName": "p",
        "paramRef": {"selector": {"matchLabels": {"a": "b"}}}}});
    assert_eq!(
        row("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding", &binding)[2],
        "&LabelSelector{MatchLabels:map[string]string{a: b,},MatchExpressions:[]LabelSelectorRequirement{},}"
    );
    let vap = json!({"metadata": {"name": "v"}, "spec": {"paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
        "validations": [{"expression": "true"}]}});
    assert_eq!(
        row(
            "admissionregistration.k8s.io",
            "ValidatingAdmissionPolicy",
            &vap
        )[1..3],
        [json!(1), json!("v1/ConfigMap")]
    );
}

#[test]
fn flow_control_and_api_service() {
    let fs = json!({"metadata": {"name": "system-leader-election", "creationTimestamp": ago(60)},
        "spec": {"priorityLevelConfiguration": {"name": "leader-election"}, "matchingPrecedence": 100,
            "distinguisherMethod": {"type": "ByUser"}},
        "status": {"conditions": [{"type": "Dangling", "status": "False"}]}});
    assert_eq!(
        row("flowcontrol.apiserver.k8s.io", "FlowSchema", &fs),
        [
            json!("system-leader-election"),
            json!("leader-election"),
            json!(100),
            json!("ByUser"),
            json!("60s"),
            json!("False"),
        ]
    );
    let plc = json!({"metadata": {"name": "workload-low"}, "spec": {"type": "Limited",
        "limited": {"nominalConcurrencyShares": 100, "limitResponse": {"type": "Queue",
            "queuing": {"queues": 128, "handSize": 6, "queueLengthLimit": 50}}}}});
    assert_eq!(
        row(
            "flowcontrol.apiserver.k8s.io",
            "PriorityLevelConfiguration",
            &plc
        )[1..6],
        [
            json!("Limited"),
            json!(100),
            json!(128),
            json!(6),
            json!(50)
        ]
    );
    let exempt = json!({"metadata": {"name": "exempt"}, "spec": {"type": "Exempt", "exempt": {}}});
    assert_eq!(
        row(
            "flowcontrol.apiserver.k8s.io",
            "PriorityLevelConfiguration",
            &exempt
        )[2],
        "<none>"
    );

    let local = json!({"metadata": {"name": "v1.apps", "creationTimestamp": ago(3600)},
        "spec": {"group": "apps", "version": "v1"},
        "status": {"conditions": [{"type": "Available", "status": "True", "reason": "Local"}]}});
    assert_eq!(
        row("apiregistration.k8s.io", "APIService", &local),
        [
            json!("v1.apps"),
            json!("Local"),
            json!("True"),
            json!("60m")
        ]
    );
    let remote = json!({"metadata": {"name": "v1beta1.metrics.k8s.io"},
        "spec": {"service": {"namespace": "kube-system", "name": "metrics-server"}},
        "status": {"conditions": [{"type": "Available", "status": "False", "reason": "MissingEndpoints"}]}});
    let cells = row("apiregistration.k8s.io", "APIService", &remote);
    assert_eq!(cells[1], "kube-system/metrics-server");
    assert_eq!(cells[2], "False (MissingEndpoints)");
    let unknown = json!({"metadata": {"name": "x"}});
    assert_eq!(
        row("apiregistration.k8s.io", "APIService", &unknown)[2],
        "Unknown"
    );
}

#[test]
fn resource_claims_and_migrations() {
    let pending = json!({"metadata": {"name": "gpu"}});
    assert_eq!(
        row("resource.k8s.io", "ResourceClaim", &pending)[1],
        "pending"
    );
    let reserved = json!({"metadata": {"name": "gpu", "deletionTimestamp": ago(1)},
        "status": {"allocation": {"devices": {}}, "reservedFor": [{"resource": "pods", "name": "p", "uid": "u"}]}});
    assert_eq!(
        row("resource.k8s.io", "ResourceClaim", &reserved)[1],
        "deleted,allocated,reserved"
    );
    let svm = json!({"metadata": {"name": "m"}, "spec": {"resource": {"group": "apps", "resource": "deployments"}},
        "status": {"conditions": [{"type": "Running", "status": "False"}, {"type": "Succeeded", "status": "True"}]}});
    assert_eq!(
        row("storagemigration.k8s.io", "StorageVersionMigration", &svm),
        [json!("m"), json!("deployments.apps"), json!("Succeeded")]
    );
    let ip = json!({"metadata": {"name": "10.96.0.1"}, "spec": {"parentRef": {"group": "", "resource": "services",
        "namespace": "default", "name": "kubernetes"}}});
    assert_eq!(
        row("networking.k8s.io", "IPAddress", &ip),
        [json!("10.96.0.1"), json!("services/default/kubernetes")]
    );
}
