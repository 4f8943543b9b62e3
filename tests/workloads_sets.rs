//! The StatefulSet and DaemonSet controllers through the API, on three simulated nodes (the
//! scheduler binds, the simulated kubelets run pods Ready at once). Pods whose readiness the
//! test decides carry a readiness gate; pods whose deletion the test holds carry a finalizer.
//! `settled()` replaces every sleep.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{get, patch, post_json, send, Server, ServerHandle};
use http::Method;
use serde_json::{json, Value};

const PODS: &str = "/api/v1/namespaces/default/pods";
const PVCS: &str = "/api/v1/namespaces/default/persistentvolumeclaims";
const STS: &str = "/apis/apps/v1/namespaces/default/statefulsets";
const DS: &str = "/apis/apps/v1/namespaces/default/daemonsets";
const REVS: &str = "/apis/apps/v1/namespaces/default/controllerrevisions";
const NODES: &str = "/api/v1/nodes";
const GATE: &str = "kubox.dev/gate";
const HOLD: &str = "kubox.dev/hold";
const MERGE: &str = "application/merge-patch+json";
const STRATEGIC: &str = "application/strategic-merge-patch+json";

async fn server() -> ServerHandle {
    let h = Server::builder().memory().nodes(3).start().await.unwrap();
    h.settled().await;
    h
}

async fn create(h: &ServerHandle, path: &str, obj: Value) -> Value {
    let r = post_json(h, path, &obj).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

async fn read(h: &ServerHandle, path: &str) -> Value {
    let r = get(h, path).await;
    assert_eq!(
        r.status,
        200,
        "GET {path}: {}",
        String::from_utf8_lossy(&r.body)
    );
    r.json()
}

async fn patch_ok(h: &ServerHandle, path: &str, ty: &str, body: Value) -> Value {
    let r = patch(h, path, ty, &body.to_string()).await;
    assert_eq!(
        r.status,
        200,
        "PATCH {path}: {}",
        String::from_utf8_lossy(&r.body)
    );
    r.json()
}

/// Items of a list, by name.
async fn list(h: &ServerHandle, path: &str) -> Vec<Value> {
    let mut items: Vec<Value> = read(h, path).await["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    items.sort_by_key(|i| i["metadata"]["name"].as_str().unwrap().to_string());
    items
}

fn names(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

async fn pods_of(h: &ServerHandle, app: &str) -> Vec<Value> {
    list(h, &format!("{PODS}?labelSelector=app%3D{app}")).await
}

async fn pod_names(h: &ServerHandle, app: &str) -> Vec<String> {
    names(&pods_of(h, app).await)
}

/// Pods being deleted (held by the finalizer), by name.
async fn terminating(h: &ServerHandle, app: &str) -> Vec<String> {
    names(
        &pods_of(h, app)
            .await
            .into_iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_string())
            .collect::<Vec<_>>(),
    )
}

/// Open the readiness gate: the pod turns Ready, as its kubelet would report it.
async fn make_ready(h: &ServerHandle, pod: &str) {
    patch_ok(
        h,
        &format!("{PODS}/{pod}/status"),
        STRATEGIC,
        json!({"status": {"conditions": [
            {"type": GATE, "status": "True"},
            {"type": "Ready", "status": "True"},
        ]}}),
    )
    .await;
}

/// Let a held pod go.
async fn release(h: &ServerHandle, pod: &str) {
    patch_ok(
        h,
        &format!("{PODS}/{pod}"),
        MERGE,
        json!({"metadata": {"finalizers": null}}),
    )
    .await;
}

fn container(image: &str) -> Value {
    json!([{"name": "c", "image": image}])
}

/// A StatefulSet `name` (pods labelled app=name) with `replicas`; `gated`: its pods wait for
/// the test to make them Ready; `held`: their deletion waits for the test.
fn stateful_set(name: &str, replicas: i64, gated: bool, held: bool) -> Value {
    let mut template = json!({
        "metadata": {"labels": {"app": name}},
        "spec": {"containers": container("nginx:1.25")},
    });
    if gated {
        template["spec"]["readinessGates"] = json!([{"conditionType": GATE}]);
    }
    if held {
        template["metadata"]["finalizers"] = json!([HOLD]);
    }
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "serviceName": format!("{name}-svc"),
            "selector": {"matchLabels": {"app": name}},
            "template": template,
        },
    })
}

async fn scale(h: &ServerHandle, path: &str, replicas: i64) {
    patch_ok(h, path, MERGE, json!({"spec": {"replicas": replicas}})).await;
}

#[tokio::test]
async fn ordered_ready_creates_in_order_and_scales_down_from_the_highest_ordinal() {
    let h = server().await;
    let sts = format!("{STS}/web");
    create(&h, STS, stateful_set("web", 3, true, true)).await;
    h.settled().await;
    assert_eq!(
        pod_names(&h, "web").await,
        ["web-0"],
        "web-1 waits for web-0 to be Ready"
    );
    let s = read(&h, &sts).await;
    assert_eq!(s["status"]["replicas"], 1);
    assert_eq!(s["status"]["readyReplicas"].as_i64().unwrap_or(0), 0);
    make_ready(&h, "web-0").await;
    h.settled().await;
    assert_eq!(pod_names(&h, "web").await, ["web-0", "web-1"]);
    make_ready(&h, "web-1").await;
    h.settled().await;
    assert_eq!(pod_names(&h, "web").await, ["web-0", "web-1", "web-2"]);
    make_ready(&h, "web-2").await;
    h.settled().await;

    // Identity, revision, status.
    let s = read(&h, &sts).await;
    let status = &s["status"];
    let rev = status["updateRevision"].as_str().unwrap().to_string();
    assert!(rev.starts_with("web-"), "{rev}");
    assert_eq!(status["currentRevision"], rev.as_str());
    for (k, v) in [
        ("replicas", 3),
        ("readyReplicas", 3),
        ("availableReplicas", 3),
        ("currentReplicas", 3),
        ("updatedReplicas", 3),
    ] {
        assert_eq!(status[k], v, "{k}: {status}");
    }
    assert_eq!(status["observedGeneration"], s["metadata"]["generation"]);
    for (i, p) in pods_of(&h, "web").await.iter().enumerate() {
        let name = format!("web-{i}");
        let labels = &p["metadata"]["labels"];
        assert_eq!(labels["statefulset.kubernetes.io/pod-name"], name.as_str());
        assert_eq!(
            labels["apps.kubernetes.io/pod-index"],
            i.to_string().as_str()
        );
        assert_eq!(labels["controller-revision-hash"], rev.as_str());
        assert_eq!(p["spec"]["hostname"], name.as_str());
        assert_eq!(p["spec"]["subdomain"], "web-svc");
        assert!(p["spec"]["nodeName"].is_string(), "scheduled: {p}");
        let owner = &p["metadata"]["ownerReferences"][0];
        assert_eq!(
            (owner["kind"].as_str(), owner["controller"].as_bool()),
            (Some("StatefulSet"), Some(true))
        );
        assert_eq!(owner["uid"], s["metadata"]["uid"]);
    }
    let cr = read(&h, &format!("{REVS}/{rev}")).await;
    assert_eq!(cr["revision"], 1);
    assert_eq!(cr["metadata"]["labels"]["app"], "web");
    assert_eq!(cr["metadata"]["ownerReferences"][0]["kind"], "StatefulSet");
    assert_eq!(cr["data"]["spec"]["template"]["$patch"], "replace");
    assert_eq!(
        cr["data"]["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.25"
    );

    // Scale down to 1: web-2 goes first, web-1 only once web-2 is gone.
    scale(&h, &sts, 1).await;
    h.settled().await;
    assert_eq!(terminating(&h, "web").await, ["web-2"]);
    release(&h, "web-2").await;
    h.settled().await;
    assert_eq!(pod_names(&h, "web").await, ["web-0", "web-1"]);
    assert_eq!(terminating(&h, "web").await, ["web-1"]);
    release(&h, "web-1").await;
    h.settled().await;
    assert_eq!(pod_names(&h, "web").await, ["web-0"]);
    let s = read(&h, &sts).await;
    assert_eq!(s["status"]["replicas"], 1);
    assert_eq!(s["status"]["readyReplicas"], 1);

    // A deleted pod comes back with its identity.
    let uid = read(&h, &format!("{PODS}/web-0")).await["metadata"]["uid"].clone();
    let r = send(&h, Method::DELETE, &format!("{PODS}/web-0"), "", "").await;
    assert!(r.status.is_success());
    release(&h, "web-0").await;
    h.settled().await;
    let p = read(&h, &format!("{PODS}/web-0")).await;
    assert_ne!(p["metadata"]["uid"], uid);
    assert_eq!(p["spec"]["hostname"], "web-0");
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_unready_pod_blocks_ordered_scaling_and_parallel_pods_go_at_once() {
    let h = server().await;
    // OrderedReady: scaling down waits while a lower pod is not Ready.
    create(&h, STS, stateful_set("db", 3, true, false)).await;
    for p in ["db-0", "db-1", "db-2"] {
        h.settled().await;
        make_ready(&h, p).await;
    }
    h.settled().await;
    assert_eq!(pod_names(&h, "db").await, ["db-0", "db-1", "db-2"]);
    patch_ok(
        &h,
        &format!("{PODS}/db-0/status"),
        STRATEGIC,
        json!({"status": {"conditions": [
            {"type": GATE, "status": "False"},
            {"type": "Ready", "status": "False"},
        ]}}),
    )
    .await;
    scale(&h, &format!("{STS}/db"), 2).await;
    h.settled().await;
    assert_eq!(
        pod_names(&h, "db").await,
        ["db-0", "db-1", "db-2"],
        "db-0 is not Ready"
    );
    let s = read(&h, &format!("{STS}/db")).await;
    assert_eq!(s["status"]["readyReplicas"], 2);
    make_ready(&h, "db-0").await;
    h.settled().await;
    assert_eq!(pod_names(&h, "db").await, ["db-0", "db-1"]);

    // Parallel: every pod at once, Ready or not; every pod goes at once.
    let mut par = stateful_set("par", 3, true, true);
    par["spec"]["podManagementPolicy"] = json!("Parallel");
    create(&h, STS, par).await;
    h.settled().await;
    assert_eq!(pod_names(&h, "par").await, ["par-0", "par-1", "par-2"]);
    let s = read(&h, &format!("{STS}/par")).await;
    assert_eq!(s["status"]["replicas"], 3);
    assert_eq!(s["status"]["readyReplicas"].as_i64().unwrap_or(0), 0);
    scale(&h, &format!("{STS}/par"), 0).await;
    h.settled().await;
    assert_eq!(terminating(&h, "par").await, ["par-0", "par-1", "par-2"]);
    for p in ["par-0", "par-1", "par-2"] {
        release(&h, p).await;
    }
    h.settled().await;
    assert!(pod_names(&h, "par").await.is_empty());
    let s = read(&h, &format!("{STS}/par")).await;
    assert_eq!(s["status"]["replicas"].as_i64().unwrap_or(0), 0);
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn volume_claim_templates_make_claims_kept_on_scale_down_unless_the_policy_deletes_them() {
    let h = server().await;
    let mut set = stateful_set("data", 2, false, false);
    set["spec"]["volumeClaimTemplates"] = json!([{
        "metadata": {"name": "www", "labels": {"tier": "storage"}},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }]);
    create(&h, STS, set).await;
    h.settled().await;
    assert_eq!(pod_names(&h, "data").await, ["data-0", "data-1"]);
    let claims = list(&h, PVCS).await;
    assert_eq!(names(&claims), ["www-data-0", "www-data-1"]);
    for c in &claims {
        assert_eq!(
            c["metadata"]["labels"]["app"], "data",
            "the selector's labels: {c}"
        );
        assert_eq!(c["metadata"]["labels"]["tier"], "storage");
        assert!(
            c["metadata"]["ownerReferences"].is_null(),
            "Retain: nobody owns it"
        );
        assert_eq!(c["spec"]["resources"]["requests"]["storage"], "1Gi");
    }
    let p = read(&h, &format!("{PODS}/data-1")).await;
    let vols = p["spec"]["volumes"].as_array().unwrap();
    assert!(
        vols.iter()
            .any(|v| v["name"] == "www" && v["persistentVolumeClaim"]["claimName"] == "www-data-1"),
        "{vols:?}"
    );

    // Retain: a scaled-down pod's claim stays, and is used again on scale-up.
    scale(&h, &format!("{STS}/data"), 1).await;
    h.settled().await;
    assert_eq!(pod_names(&h, "data").await, ["data-0"]);
    assert_eq!(names(&list(&h, PVCS).await), ["www-data-0", "www-data-1"]);
    let kept = read(&h, &format!("{PVCS}/www-data-1")).await["metadata"]["uid"].clone();
    scale(&h, &format!("{STS}/data"), 2).await;
    h.settled().await;
    assert_eq!(pod_names(&h, "data").await, ["data-0", "data-1"]);
    assert_eq!(
        read(&h, &format!("{PVCS}/www-data-1")).await["metadata"]["uid"],
        kept
    );

    // whenScaled: Delete: the condemned pod's claim goes with it.
    patch_ok(
        &h,
        &format!("{STS}/data"),
        MERGE,
        json!({"spec": {"replicas": 1, "persistentVolumeClaimRetentionPolicy": {"whenScaled": "Delete", "whenDeleted": "Delete"}}}),
    )
    .await;
    h.settled().await;
    assert_eq!(pod_names(&h, "data").await, ["data-0"]);
    assert_eq!(names(&list(&h, PVCS).await), ["www-data-0"]);
    // whenDeleted: Delete: the set owns its claims, which go with it.
    let s = read(&h, &format!("{STS}/data")).await;
    let c = read(&h, &format!("{PVCS}/www-data-0")).await;
    assert_eq!(
        c["metadata"]["ownerReferences"][0]["uid"],
        s["metadata"]["uid"]
    );
    let r = send(&h, Method::DELETE, &format!("{STS}/data"), "", "").await;
    assert!(r.status.is_success());
    h.settled().await;
    assert!(pod_names(&h, "data").await.is_empty());
    assert!(list(&h, PVCS).await.is_empty());
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn rolling_updates_go_from_the_highest_ordinal_down_to_the_partition() {
    let h = server().await;
    let sts = format!("{STS}/roll");
    create(&h, STS, stateful_set("roll", 3, false, false)).await;
    h.settled().await;
    let first = read(&h, &sts).await["status"]["updateRevision"]
        .as_str()
        .unwrap()
        .to_string();
    let revision_of = |p: &Value| {
        p["metadata"]["labels"]["controller-revision-hash"]
            .as_str()
            .unwrap()
            .to_string()
    };

    // Partition 2: only roll-2 moves to the new template.
    patch_ok(
        &h,
        &sts,
        STRATEGIC,
        json!({"spec": {
            "updateStrategy": {"rollingUpdate": {"partition": 2}},
            "template": {"spec": {"containers": [{"name": "c", "image": "nginx:1.26"}]}},
        }}),
    )
    .await;
    h.settled().await;
    let s = read(&h, &sts).await;
    let second = s["status"]["updateRevision"].as_str().unwrap().to_string();
    assert_ne!(second, first);
    assert_eq!(s["status"]["currentRevision"], first.as_str());
    assert_eq!(s["status"]["updatedReplicas"], 1);
    assert_eq!(s["status"]["currentReplicas"], 2);
    assert_eq!(s["status"]["readyReplicas"], 3);
    let pods = pods_of(&h, "roll").await;
    let revs: Vec<String> = pods.iter().map(revision_of).collect();
    assert_eq!(revs, [first.clone(), first.clone(), second.clone()]);
    assert_eq!(pods[2]["spec"]["containers"][0]["image"], "nginx:1.26");
    assert_eq!(pods[0]["spec"]["containers"][0]["image"], "nginx:1.25");
    assert_eq!(read(&h, &format!("{REVS}/{second}")).await["revision"], 2);

    // A pod below the partition that is deleted comes back at the current revision.
    let r = send(&h, Method::DELETE, &format!("{PODS}/roll-0"), "", "").await;
    assert!(r.status.is_success());
    h.settled().await;
    let p = read(&h, &format!("{PODS}/roll-0")).await;
    assert_eq!(revision_of(&p), first);
    assert_eq!(p["spec"]["containers"][0]["image"], "nginx:1.25");

    // Partition 0: the rest follows; the current revision becomes the update revision.
    patch_ok(
        &h,
        &sts,
        MERGE,
        json!({"spec": {"updateStrategy": {"rollingUpdate": {"partition": 0}}}}),
    )
    .await;
    h.settled().await;
    let s = read(&h, &sts).await;
    assert_eq!(s["status"]["currentRevision"], second.as_str());
    assert_eq!(s["status"]["updateRevision"], second.as_str());
    assert_eq!(s["status"]["updatedReplicas"], 3);
    assert_eq!(s["status"]["currentReplicas"], 3);
    assert!(pods_of(&h, "roll")
        .await
        .iter()
        .all(|p| revision_of(p) == second));

    // Back to the first template: its revision is renumbered, not copied.
    patch_ok(
        &h,
        &sts,
        STRATEGIC,
        json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}}}}),
    )
    .await;
    h.settled().await;
    let s = read(&h, &sts).await;
    assert_eq!(s["status"]["updateRevision"], first.as_str());
    assert_eq!(s["status"]["currentRevision"], first.as_str());
    assert_eq!(read(&h, &format!("{REVS}/{first}")).await["revision"], 3);
    let revisions = list(&h, REVS).await;
    assert_eq!(revisions.len(), 2, "{:?}", names(&revisions));

    // OnDelete: a template change waits for pods to be deleted.
    patch_ok(
        &h,
        &sts,
        STRATEGIC,
        json!({"spec": {
            "updateStrategy": {"type": "OnDelete", "rollingUpdate": null},
            "template": {"spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}},
        }}),
    )
    .await;
    h.settled().await;
    let s = read(&h, &sts).await;
    let third = s["status"]["updateRevision"].as_str().unwrap().to_string();
    assert_eq!(s["status"]["updatedReplicas"].as_i64().unwrap_or(0), 0);
    assert!(pods_of(&h, "roll")
        .await
        .iter()
        .all(|p| revision_of(p) == first));
    let r = send(&h, Method::DELETE, &format!("{PODS}/roll-1"), "", "").await;
    assert!(r.status.is_success());
    h.settled().await;
    let revs: Vec<String> = pods_of(&h, "roll").await.iter().map(revision_of).collect();
    assert_eq!(revs, [first.clone(), third.clone(), first.clone()]);
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_rolling_update_replaces_one_pod_at_a_time_from_the_highest_ordinal() {
    let h = server().await;
    let sts = format!("{STS}/seq");
    create(&h, STS, stateful_set("seq", 3, false, true)).await;
    h.settled().await;
    assert_eq!(pod_names(&h, "seq").await, ["seq-0", "seq-1", "seq-2"]);
    patch_ok(
        &h,
        &sts,
        STRATEGIC,
        json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx:1.26"}]}}}}),
    )
    .await;
    for p in ["seq-2", "seq-1", "seq-0"] {
        h.settled().await;
        assert_eq!(terminating(&h, "seq").await, [p]);
        release(&h, p).await;
        h.settled().await;
        let pod = read(&h, &format!("{PODS}/{p}")).await;
        assert_eq!(
            pod["spec"]["containers"][0]["image"], "nginx:1.26",
            "{p} is back, updated"
        );
    }
    let s = read(&h, &sts).await;
    assert_eq!(
        s["status"]["currentRevision"],
        s["status"]["updateRevision"]
    );
    assert_eq!(s["status"]["updatedReplicas"], 3);
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn start_ordinals_are_honoured() {
    let h = server().await;
    let mut set = stateful_set("ord", 2, false, false);
    set["spec"]["ordinals"] = json!({"start": 5});
    create(&h, STS, set).await;
    h.settled().await;
    assert_eq!(pod_names(&h, "ord").await, ["ord-5", "ord-6"]);
    let p = read(&h, &format!("{PODS}/ord-6")).await;
    assert_eq!(p["metadata"]["labels"]["apps.kubernetes.io/pod-index"], "6");
    h.shutdown().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// DaemonSets.

fn daemon_set(name: &str, spec_extra: Value) -> Value {
    let mut ds = json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": container("fluentd:1")},
            },
        },
    });
    for (k, v) in spec_extra.as_object().unwrap() {
        ds["spec"]["template"]["spec"][k] = v.clone();
    }
    ds
}

/// The node each pod of `app` is on, sorted.
async fn nodes_of(h: &ServerHandle, app: &str) -> Vec<String> {
    let mut v: Vec<String> = pods_of(h, app)
        .await
        .iter()
        .map(|p| {
            p["spec"]["nodeName"]
                .as_str()
                .unwrap_or("<unscheduled>")
                .to_string()
        })
        .collect();
    v.sort();
    v
}

async fn node_names(h: &ServerHandle) -> Vec<String> {
    names(&list(h, NODES).await)
}

#[tokio::test]
async fn a_daemon_set_runs_one_pod_per_matching_node() {
    let h = server().await;
    let nodes = node_names(&h).await;
    assert_eq!(nodes.len(), 3);
    create(
        &h,
        DS,
        daemon_set(
            "agent",
            json!({"nodeSelector": {"kubernetes.io/os": "linux"}}),
        ),
    )
    .await;
    h.settled().await;
    assert_eq!(nodes_of(&h, "agent").await, nodes);
    let ds = read(&h, &format!("{DS}/agent")).await;
    let status = &ds["status"];
    for (k, v) in [
        ("desiredNumberScheduled", 3),
        ("currentNumberScheduled", 3),
        ("numberReady", 3),
        ("numberAvailable", 3),
        ("updatedNumberScheduled", 3),
    ] {
        assert_eq!(status[k], v, "{k}: {status}");
    }
    assert_eq!(status["numberMisscheduled"], 0);
    assert_eq!(status["numberUnavailable"].as_i64().unwrap_or(0), 0);
    assert_eq!(status["observedGeneration"], ds["metadata"]["generation"]);
    let revisions = list(&h, REVS).await;
    assert_eq!(revisions.len(), 1);
    let hash = revisions[0]["metadata"]["labels"]["controller-revision-hash"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        revisions[0]["metadata"]["name"],
        format!("agent-{hash}").as_str()
    );
    for p in pods_of(&h, "agent").await {
        assert!(p["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with("agent-"));
        assert_eq!(
            p["metadata"]["labels"]["controller-revision-hash"],
            hash.as_str()
        );
        assert_eq!(p["metadata"]["labels"]["pod-template-generation"], "1");
        let node = p["spec"]["nodeName"].as_str().unwrap();
        let term = &p["spec"]["affinity"]["nodeAffinity"]
            ["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0];
        assert_eq!(
            term["matchFields"],
            json!([{"key": "metadata.name", "operator": "In", "values": [node]}])
        );
        let tolerations: Vec<String> = p["spec"]["tolerations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                format!(
                    "{}:{}",
                    t["key"].as_str().unwrap(),
                    t["effect"].as_str().unwrap()
                )
            })
            .collect();
        for t in [
            "node.kubernetes.io/not-ready:NoExecute",
            "node.kubernetes.io/unreachable:NoExecute",
            "node.kubernetes.io/disk-pressure:NoSchedule",
            "node.kubernetes.io/memory-pressure:NoSchedule",
            "node.kubernetes.io/pid-pressure:NoSchedule",
            "node.kubernetes.io/unschedulable:NoSchedule",
        ] {
            assert!(tolerations.iter().any(|x| x == t), "{t} in {tolerations:?}");
        }
    }

    // A selector only one node matches.
    let one = &nodes[1];
    create(
        &h,
        DS,
        daemon_set(
            "only",
            json!({"nodeSelector": {"kubernetes.io/hostname": one}}),
        ),
    )
    .await;
    h.settled().await;
    assert_eq!(nodes_of(&h, "only").await, [one.to_string()]);
    assert_eq!(
        read(&h, &format!("{DS}/only")).await["status"]["desiredNumberScheduled"],
        1
    );
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn taints_and_node_changes_move_daemon_pods() {
    let h = server().await;
    let nodes = node_names(&h).await;
    create(&h, DS, daemon_set("agent", json!({}))).await;
    h.settled().await;
    assert_eq!(nodes_of(&h, "agent").await, nodes);

    // NoSchedule: the pod that runs there stays, though the node no longer wants one.
    let tainted = &nodes[2];
    patch_ok(
        &h,
        &format!("{NODES}/{tainted}"),
        MERGE,
        json!({"spec": {"taints": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]}}),
    )
    .await;
    h.settled().await;
    assert_eq!(nodes_of(&h, "agent").await, nodes);
    let status = read(&h, &format!("{DS}/agent")).await["status"].clone();
    assert_eq!(status["desiredNumberScheduled"], 2, "{status}");
    assert_eq!(status["numberMisscheduled"], 1, "{status}");
    // A DaemonSet made now does not go there.
    create(&h, DS, daemon_set("late", json!({}))).await;
    h.settled().await;
    assert_eq!(nodes_of(&h, "late").await, nodes[..2]);
    // One that tolerates it does.
    create(
        &h,
        DS,
        daemon_set(
            "tolerant",
            json!({"tolerations": [{"key": "dedicated", "operator": "Exists"}]}),
        ),
    )
    .await;
    h.settled().await;
    assert_eq!(nodes_of(&h, "tolerant").await, nodes);

    // NoExecute: the pod goes.
    patch_ok(
        &h,
        &format!("{NODES}/{tainted}"),
        MERGE,
        json!({"spec": {"taints": [{"key": "dedicated", "value": "db", "effect": "NoExecute"}]}}),
    )
    .await;
    h.settled().await;
    assert_eq!(nodes_of(&h, "agent").await, nodes[..2]);
    assert_eq!(nodes_of(&h, "tolerant").await, nodes);
    let status = read(&h, &format!("{DS}/agent")).await["status"].clone();
    assert_eq!(status["desiredNumberScheduled"], 2, "{status}");
    assert_eq!(status["numberMisscheduled"], 0, "{status}");
    assert_eq!(status["currentNumberScheduled"], 2, "{status}");

    // The taint removed: the pod comes back.
    patch_ok(
        &h,
        &format!("{NODES}/{tainted}"),
        MERGE,
        json!({"spec": {"taints": null}}),
    )
    .await;
    h.settled().await;
    assert_eq!(nodes_of(&h, "agent").await, nodes);

    // A node labelled for a selector gets a pod; unlabelled, loses it.
    create(
        &h,
        DS,
        daemon_set("edge", json!({"nodeSelector": {"role": "edge"}})),
    )
    .await;
    h.settled().await;
    assert!(pods_of(&h, "edge").await.is_empty());
    let labelled = &nodes[0];
    patch_ok(
        &h,
        &format!("{NODES}/{labelled}"),
        MERGE,
        json!({"metadata": {"labels": {"role": "edge"}}}),
    )
    .await;
    h.settled().await;
    assert_eq!(nodes_of(&h, "edge").await, [labelled.to_string()]);
    patch_ok(
        &h,
        &format!("{NODES}/{labelled}"),
        MERGE,
        json!({"metadata": {"labels": {"role": null}}}),
    )
    .await;
    h.settled().await;
    assert!(pods_of(&h, "edge").await.is_empty());

    // A node added gets a pod (pinned to it); removed, its pod goes.
    create(
        &h,
        NODES,
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "extra", "labels": {"kubernetes.io/hostname": "extra", "kubernetes.io/os": "linux"}}}),
    )
    .await;
    h.settled().await;
    let pods = pods_of(&h, "agent").await;
    assert_eq!(pods.len(), 4);
    let extra: Vec<&Value> = pods
        .iter()
        .filter(|p| {
            p["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
                ["nodeSelectorTerms"][0]["matchFields"][0]["values"][0]
                == "extra"
        })
        .collect();
    assert_eq!(extra.len(), 1, "one pod pinned to the new node");
    assert_eq!(
        read(&h, &format!("{DS}/agent")).await["status"]["desiredNumberScheduled"],
        4
    );
    let r = send(&h, Method::DELETE, &format!("{NODES}/extra"), "", "").await;
    assert!(r.status.is_success());
    h.settled().await;
    assert_eq!(nodes_of(&h, "agent").await, nodes);
    assert_eq!(
        read(&h, &format!("{DS}/agent")).await["status"]["desiredNumberScheduled"],
        3
    );
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn daemon_set_rolling_updates_replace_one_node_at_a_time() {
    let h = server().await;
    let mut ds = daemon_set("roll", json!({}));
    ds["spec"]["template"]["metadata"]["finalizers"] = json!([HOLD]);
    // Old pods stay Terminating (Running) while the test holds them.
    ds["spec"]["template"]["metadata"]["annotations"] = json!({"kubox.dev/stop-after": "1h"});
    create(&h, DS, ds).await;
    h.settled().await;
    assert_eq!(pods_of(&h, "roll").await.len(), 3);
    let old_hash = list(&h, REVS).await[0]["metadata"]["labels"]["controller-revision-hash"]
        .as_str()
        .unwrap()
        .to_string();
    patch_ok(
        &h,
        &format!("{DS}/roll"),
        STRATEGIC,
        json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "fluentd:2"}]}}}}),
    )
    .await;
    // maxUnavailable 1: one old pod at a time.
    for round in 0..3 {
        h.settled().await;
        let going = terminating(&h, "roll").await;
        assert_eq!(going.len(), 1, "round {round}: {going:?}");
        let status = read(&h, &format!("{DS}/roll")).await["status"].clone();
        let updated = status["updatedNumberScheduled"].as_i64().unwrap_or(0);
        assert_eq!(updated, round, "{status}");
        release(&h, &going[0]).await;
    }
    h.settled().await;
    assert!(terminating(&h, "roll").await.is_empty());
    let pods = pods_of(&h, "roll").await;
    assert_eq!(pods.len(), 3);
    assert!(pods
        .iter()
        .all(
            |p| p["metadata"]["labels"]["controller-revision-hash"] != old_hash.as_str()
                && p["metadata"]["labels"]["pod-template-generation"] == "2"
                && p["spec"]["containers"][0]["image"] == "fluentd:2"
        ));
    let status = read(&h, &format!("{DS}/roll")).await["status"].clone();
    assert_eq!(status["updatedNumberScheduled"], 3, "{status}");
    assert_eq!(status["numberAvailable"], 3, "{status}");
    assert_eq!(list(&h, REVS).await.len(), 2);

    // maxSurge: the new pod starts beside the old one, which goes once the new is available;
    // the new pods wait for the test to be Ready.
    patch_ok(
        &h,
        &format!("{DS}/roll"),
        STRATEGIC,
        json!({"spec": {
            "updateStrategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {"spec": {
                "containers": [{"name": "c", "image": "fluentd:3"}],
                "readinessGates": [{"conditionType": GATE}],
            }},
        }}),
    )
    .await;
    for round in 0..3 {
        h.settled().await;
        let live: Vec<Value> = pods_of(&h, "roll")
            .await
            .into_iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .collect();
        assert_eq!(
            live.len(),
            4,
            "round {round}: one node runs the old pod and the new one"
        );
        let surged: Vec<&Value> = live
            .iter()
            .filter(|p| {
                p["spec"]["containers"][0]["image"] == "fluentd:3"
                    && p["status"]["conditions"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "False")
            })
            .collect();
        assert_eq!(surged.len(), 1, "round {round}: one new pod at a time");
        let node = surged[0]["spec"]["nodeName"].clone();
        assert!(terminating(&h, "roll").await.is_empty());
        make_ready(&h, surged[0]["metadata"]["name"].as_str().unwrap()).await;
        h.settled().await;
        let going = terminating(&h, "roll").await;
        assert_eq!(going.len(), 1, "round {round}: {going:?}");
        let old = read(&h, &format!("{PODS}/{}", going[0])).await;
        assert_eq!(
            old["spec"]["nodeName"], node,
            "the old pod beside the new one goes"
        );
        assert_eq!(old["spec"]["containers"][0]["image"], "fluentd:2");
        release(&h, &going[0]).await;
    }
    h.settled().await;
    let pods = pods_of(&h, "roll").await;
    assert_eq!(pods.len(), 3);
    assert!(pods
        .iter()
        .all(|p| p["spec"]["containers"][0]["image"] == "fluentd:3"));
    h.shutdown().await.unwrap();
}
