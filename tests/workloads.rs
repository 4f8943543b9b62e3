//! Deployments, ReplicaSets and ReplicationControllers on simulated nodes, through the API;
//! waits are settled(), time a ManualClock.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::hooked::HookedStore;
use common::*;
use kubox::ManualClock;
use kubox_storage::Store;
use serde_json::{json, Value};

const DEPLOYS: &str = "/apis/apps/v1/namespaces/default/deployments";
const RSS: &str = "/apis/apps/v1/namespaces/default/replicasets";
const PODS: &str = "/api/v1/namespaces/default/pods";
const MERGE: &str = "application/merge-patch+json";

async fn cluster(nodes: u32) -> (ServerHandle, ManualClock) {
    let clock = ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let h = Server::builder()
        .memory()
        .clock(Arc::new(clock.clone()))
        .nodes(nodes)
        .start()
        .await
        .unwrap();
    h.settled().await;
    (h, clock)
}

fn deployment(name: &str, replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": image}]},
            },
        },
    })
}

fn condition<'a>(obj: &'a Value, ty: &str) -> &'a Value {
    obj["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == ty))
        .unwrap_or(&Value::Null)
}

async fn items(h: &ServerHandle, path: &str) -> Vec<Value> {
    get(h, path).await.json()["items"]
        .as_array()
        .unwrap()
        .clone()
}

async fn pods_of(h: &ServerHandle, app: &str) -> Vec<Value> {
    items(h, &format!("{PODS}?labelSelector=app%3D{app}")).await
}

#[tokio::test]
async fn a_deployment_rolls_out_to_available_with_one_replica_set_and_running_pods() {
    let (h, _) = cluster(3).await;
    let r = post_json(&h, DEPLOYS, &deployment("web", 3, "nginx:1.25")).await;
    assert_eq!(r.status, 201);
    h.settled().await;
    let d = get(&h, &format!("{DEPLOYS}/web")).await.json();
    let s = &d["status"];
    assert_eq!(s["observedGeneration"], 1, "{d}");
    assert_eq!(
        (
            s["replicas"].clone(),
            s["updatedReplicas"].clone(),
            s["readyReplicas"].clone(),
            s["availableReplicas"].clone()
        ),
        (json!(3), json!(3), json!(3), json!(3))
    );
    assert!(s.get("unavailableReplicas").is_none());
    assert_eq!(condition(&d, "Available")["status"], "True");
    assert_eq!(
        condition(&d, "Available")["reason"],
        "MinimumReplicasAvailable"
    );
    assert_eq!(
        condition(&d, "Progressing")["reason"],
        "NewReplicaSetAvailable"
    );
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "1"
    );
    let rss = items(&h, RSS).await;
    assert_eq!(rss.len(), 1);
    let rs = &rss[0];
    let hash = rs["metadata"]["labels"]["pod-template-hash"]
        .as_str()
        .unwrap();
    assert_eq!(rs["metadata"]["name"], format!("web-{hash}"));
    assert_eq!(
        rs["spec"]["selector"]["matchLabels"]["pod-template-hash"],
        hash
    );
    assert_eq!(
        rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"],
        "3"
    );
    assert_eq!(
        rs["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"],
        "4"
    );
    assert_eq!(rs["metadata"]["ownerReferences"][0]["kind"], "Deployment");
    assert_eq!(rs["status"]["readyReplicas"], 3);
    let pods = pods_of(&h, "web").await;
    assert_eq!(pods.len(), 3);
    for p in &pods {
        assert!(p["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with(&format!("web-{hash}-")));
        assert_eq!(p["status"]["phase"], "Running");
        assert_eq!(
            p["metadata"]["ownerReferences"][0]["name"],
            format!("web-{hash}")
        );
    }
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn scale_set_image_and_undo_move_replicas_between_revisions() {
    let (h, _) = cluster(2).await;
    post_json(&h, DEPLOYS, &deployment("web", 2, "nginx:1.25")).await;
    h.settled().await;
    // Scale through the scale subresource.
    let r = patch(
        &h,
        &format!("{DEPLOYS}/web/scale"),
        MERGE,
        r#"{"spec":{"replicas":5}}"#,
    )
    .await;
    assert_eq!(r.status, 200);
    h.settled().await;
    assert_eq!(pods_of(&h, "web").await.len(), 5);
    let d = get(&h, &format!("{DEPLOYS}/web")).await.json();
    assert_eq!(d["status"]["availableReplicas"], 5);
    // A new image: a second ReplicaSet takes every replica, the first goes to 0.
    let r = patch(
        &h,
        &format!("{DEPLOYS}/web"),
        MERGE,
        r#"{"metadata":{"annotations":{"kubernetes.io/change-cause":"to 1.26"}},"spec":{"template":{"spec":{"containers":[{"name":"c","image":"nginx:1.26"}]}}}}"#,
    )
    .await;
    assert_eq!(r.status, 200);
    h.settled().await;
    let d = get(&h, &format!("{DEPLOYS}/web")).await.json();
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );
    assert_eq!(d["status"]["updatedReplicas"], 5);
    assert_eq!(d["status"]["replicas"], 5);
    let mut rss = items(&h, RSS).await;
    rss.sort_by_key(|r| {
        r["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
            .as_str()
            .unwrap()
            .to_string()
    });
    assert_eq!(rss.len(), 2);
    assert_eq!(rss[0]["spec"]["replicas"], 0);
    assert_eq!(rss[1]["spec"]["replicas"], 5);
    assert_eq!(
        rss[1]["metadata"]["annotations"]["kubernetes.io/change-cause"],
        "to 1.26"
    );
    let pods = pods_of(&h, "web").await;
    assert_eq!(pods.len(), 5);
    assert!(pods
        .iter()
        .all(|p| p["spec"]["containers"][0]["image"] == "nginx:1.26"));
    // Undo as kubectl does it: the old template back; the old ReplicaSet becomes revision 3.
    let old_template = rss[0]["spec"]["template"].clone();
    let mut t = old_template.clone();
    t["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove("pod-template-hash");
    let r = patch(
        &h,
        &format!("{DEPLOYS}/web"),
        MERGE,
        &json!({"spec": {"template": t}}).to_string(),
    )
    .await;
    assert_eq!(r.status, 200);
    h.settled().await;
    let rs0 = get(
        &h,
        &format!("{RSS}/{}", rss[0]["metadata"]["name"].as_str().unwrap()),
    )
    .await
    .json();
    assert_eq!(rs0["spec"]["replicas"], 5);
    assert_eq!(
        rs0["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "3"
    );
    assert_eq!(
        rs0["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"],
        "1"
    );
    assert_eq!(items(&h, RSS).await.len(), 2, "no third ReplicaSet");
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_rolling_update_keeps_within_surge_and_unavailability_at_every_step() {
    let (h, _) = cluster(2).await;
    let mut d = deployment("web", 4, "nginx:1");
    d["spec"]["strategy"] =
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}});
    post_json(&h, DEPLOYS, &d).await;
    h.settled().await;
    // Watch every ReplicaSet write during the rollout.
    let rv = get(&h, RSS).await.json()["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    patch(
        &h,
        &format!("{DEPLOYS}/web"),
        MERGE,
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"c","image":"nginx:2"}]}}}}"#,
    )
    .await;
    h.settled().await;
    let events = get(
        &h,
        &format!("{RSS}?watch=true&resourceVersion={rv}&timeoutSeconds=1"),
    )
    .await;
    let mut sizes = std::collections::BTreeMap::<String, i64>::new();
    let mut steps = 0;
    for line in String::from_utf8_lossy(&events.body).lines() {
        let ev: Value = serde_json::from_str(line).unwrap();
        let o = &ev["object"];
        sizes.insert(
            o["metadata"]["name"].as_str().unwrap().to_string(),
            o["spec"]["replicas"].as_i64().unwrap(),
        );
        let total: i64 = sizes.values().sum();
        assert!(total <= 5, "over replicas + maxSurge: {sizes:?}");
        steps += 1;
    }
    assert!(steps >= 4, "the rollout went step by step ({steps} writes)");
    let d = get(&h, &format!("{DEPLOYS}/web")).await.json();
    assert_eq!(d["status"]["updatedReplicas"], 4);
    assert_eq!(d["status"]["availableReplicas"], 4);
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn recreate_scales_the_old_replica_set_down_before_the_new_one_up() {
    let (h, _) = cluster(1).await;
    let mut d = deployment("db", 2, "postgres:15");
    d["spec"]["strategy"] = json!({"type": "Recreate"});
    post_json(&h, DEPLOYS, &d).await;
    h.settled().await;
    patch(
        &h,
        &format!("{DEPLOYS}/db"),
        MERGE,
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"c","image":"postgres:16"}]}}}}"#,
    )
    .await;
    h.settled().await;
    let pods = pods_of(&h, "db").await;
    assert_eq!(pods.len(), 2);
    assert!(pods
        .iter()
        .all(|p| p["spec"]["containers"][0]["image"] == "postgres:16"));
    let d = get(&h, &format!("{DEPLOYS}/db")).await.json();
    assert_eq!(d["status"]["availableReplicas"], 2);
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn paused_deployments_scale_but_do_not_roll_out_until_resumed() {
    let (h, _) = cluster(1).await;
    post_json(&h, DEPLOYS, &deployment("web", 1, "nginx:1")).await;
    h.settled().await;
    patch(
        &h,
        &format!("{DEPLOYS}/web"),
        MERGE,
        r#"{"spec":{"paused":true}}"#,
    )
    .await;
    patch(&h, &format!("{DEPLOYS}/web"), MERGE, r#"{"spec":{"replicas":2,"template":{"spec":{"containers":[{"name":"c","image":"nginx:2"}]}}}}"#).await;
    h.settled().await;
    let d = get(&h, &format!("{DEPLOYS}/web")).await.json();
    assert_eq!(condition(&d, "Progressing")["status"], "Unknown");
    assert_eq!(condition(&d, "Progressing")["reason"], "DeploymentPaused");
    assert_eq!(items(&h, RSS).await.len(), 1);
    let pods = pods_of(&h, "web").await;
    assert_eq!(pods.len(), 2);
    assert!(pods
        .iter()
        .all(|p| p["spec"]["containers"][0]["image"] == "nginx:1"));
    patch(
        &h,
        &format!("{DEPLOYS}/web"),
        MERGE,
        r#"{"spec":{"paused":false}}"#,
    )
    .await;
    h.settled().await;
    let d = get(&h, &format!("{DEPLOYS}/web")).await.json();
    assert_eq!(
        condition(&d, "Progressing")["reason"],
        "NewReplicaSetAvailable"
    );
    assert!(pods_of(&h, "web")
        .await
        .iter()
        .all(|p| p["spec"]["containers"][0]["image"] == "nginx:2"));
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_rollout_that_cannot_progress_times_out_by_the_server_clock() {
    let (h, clock) = cluster(1).await;
    let mut d = deployment("big", 1, "nginx");
    d["spec"]["progressDeadlineSeconds"] = json!(60);
    d["spec"]["template"]["spec"]["containers"][0]["resources"] =
        json!({"requests": {"cpu": "100"}});
    post_json(&h, DEPLOYS, &d).await;
    h.settled().await;
    let d = get(&h, &format!("{DEPLOYS}/big")).await.json();
    assert_eq!(condition(&d, "Progressing")["status"], "True");
    assert_eq!(condition(&d, "Available")["status"], "False");
    assert_eq!(d["status"]["unavailableReplicas"], 1);
    clock.advance(Duration::from_secs(30));
    h.settled().await;
    let d = get(&h, &format!("{DEPLOYS}/big")).await.json();
    assert_eq!(condition(&d, "Progressing")["status"], "True");
    clock.advance(Duration::from_secs(40));
    h.settled().await;
    let d = get(&h, &format!("{DEPLOYS}/big")).await.json();
    let c = condition(&d, "Progressing");
    assert_eq!(c["status"], "False", "{d}");
    assert_eq!(c["reason"], "ProgressDeadlineExceeded");
    assert!(c["message"]
        .as_str()
        .unwrap()
        .ends_with("has timed out progressing."));
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn old_replica_sets_beyond_the_history_limit_are_deleted() {
    let (h, _) = cluster(1).await;
    let mut d = deployment("web", 1, "nginx:0");
    d["spec"]["revisionHistoryLimit"] = json!(2);
    post_json(&h, DEPLOYS, &d).await;
    h.settled().await;
    for v in 1..=4 {
        let p = json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": format!("nginx:{v}")}]}}}});
        patch(&h, &format!("{DEPLOYS}/web"), MERGE, &p.to_string()).await;
        h.settled().await;
    }
    let rss = items(&h, RSS).await;
    let mut revisions: Vec<i64> = rss
        .iter()
        .map(|r| {
            r["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    revisions.sort();
    assert_eq!(revisions, [3, 4, 5]);
    h.shutdown().await.unwrap();
}

/// The deployment controller is sent Deployments, ReplicaSets and pods, not ConfigMaps. After
/// it writes it waits to observe the store as it was then, which here takes a ConfigMap it is
/// never sent, written after it went to sleep: it still goes on, and settles.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_settles_when_what_it_waits_to_observe_is_never_sent_to_it() {
    // While `noise` lasts, each read of the current revision answers one more than it is, and a
    // moment later a ConfigMap makes it so (a store read ahead of its watch, as etcd's may be).
    let noise = Arc::new(AtomicU32::new(0));
    let counter = noise.clone();
    let store = HookedStore::new().current_revision(move |inner| {
        let noise = counter.clone();
        Box::pin(async move {
            let rev = inner.current_revision().await?;
            let n = noise.load(Ordering::SeqCst);
            if n == 0
                || noise
                    .compare_exchange(n, n - 1, Ordering::SeqCst, Ordering::SeqCst)
                    .is_err()
            {
                return Ok(rev);
            }
            tokio::spawn(async move {
                for _ in 0..5_000 {
                    tokio::task::yield_now().await;
                }
                let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                                "metadata": {"name": format!("noise-{n}"), "namespace": "default",
                                             "uid": format!("00000000-0000-0000-0000-{n:012}"),
                                             "creationTimestamp": "2027-01-15T08:00:00Z"}});
                let key = format!("/registry/configmaps/default/noise-{n}");
                inner.create(&key, cm.to_string().into()).await.unwrap();
            });
            Ok(rev + 1)
        })
    });
    // The deployment controller alone: nothing else writes what it follows, and no kubelet's
    // timer wakes anything. Only what it observes, or is told it has observed, moves it.
    let h = Server::builder()
        .store(store.into_dyn())
        .controllers(kubox::ControllerSet::parse("deployment").unwrap())
        .start()
        .await
        .unwrap();
    h.settled().await;
    noise.store(20, Ordering::SeqCst);
    let r = post_json(&h, DEPLOYS, &deployment("noisy", 4, "nginx:1.25")).await;
    assert_eq!(r.status, 201);
    tokio::time::timeout(Duration::from_secs(60), h.settled())
        .await
        .expect("the deployment controller settles");
    assert!(noise.load(Ordering::SeqCst) < 20, "the noise was written");
    let sets = items(&h, RSS).await;
    assert_eq!(sets.len(), 1);
    assert_eq!(sets[0]["spec"]["replicas"], 4);
}

#[tokio::test]
async fn replica_sets_replace_deleted_pods_adopt_orphans_and_release_mislabelled_ones() {
    let (h, _) = cluster(2).await;
    let rs = json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "front"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"tier": "front"}},
            "template": {"metadata": {"labels": {"tier": "front"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}},
        },
    });
    // An orphan that matches comes first: it is adopted and counts.
    let orphan = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "orphan", "labels": {"tier": "front"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
    post_json(&h, PODS, &orphan).await;
    post_json(&h, RSS, &rs).await;
    h.settled().await;
    let pods = items(&h, &format!("{PODS}?labelSelector=tier%3Dfront")).await;
    assert_eq!(pods.len(), 3);
    let o = get(&h, &format!("{PODS}/orphan")).await.json();
    assert_eq!(o["metadata"]["ownerReferences"][0]["name"], "front");
    // A deleted pod is replaced.
    let victim = pods
        .iter()
        .find(|p| p["metadata"]["name"] != "orphan")
        .unwrap()["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    send(
        &h,
        http::Method::DELETE,
        &format!("{PODS}/{victim}"),
        "application/json",
        "",
    )
    .await;
    h.settled().await;
    assert_eq!(
        items(&h, &format!("{PODS}?labelSelector=tier%3Dfront"))
            .await
            .len(),
        3
    );
    // A pod relabelled away is released and replaced.
    patch(
        &h,
        &format!("{PODS}/orphan"),
        MERGE,
        r#"{"metadata":{"labels":{"tier":"other"}}}"#,
    )
    .await;
    h.settled().await;
    let o = get(&h, &format!("{PODS}/orphan")).await.json();
    assert!(
        o["metadata"]["ownerReferences"]
            .as_array()
            .is_none_or(|r| r.is_empty()),
        "{o}"
    );
    assert_eq!(
        items(&h, &format!("{PODS}?labelSelector=tier%3Dfront"))
            .await
            .len(),
        3
    );
    let rs = get(&h, &format!("{RSS}/front")).await.json();
    assert_eq!(rs["status"]["replicas"], 3);
    assert_eq!(rs["status"]["availableReplicas"], 3);
    assert_eq!(rs["status"]["fullyLabeledReplicas"], 3);
    // Scaled to 1: not-ready pods go before ready ones; two are deleted.
    patch(
        &h,
        &format!("{RSS}/front"),
        MERGE,
        r#"{"spec":{"replicas":1}}"#,
    )
    .await;
    h.settled().await;
    assert_eq!(
        items(&h, &format!("{PODS}?labelSelector=tier%3Dfront"))
            .await
            .len(),
        1
    );
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn replication_controllers_keep_their_replicas_too() {
    let (h, _) = cluster(1).await;
    let rc = json!({
        "apiVersion": "v1", "kind": "ReplicationController",
        "metadata": {"name": "legacy"},
        "spec": {"replicas": 2, "selector": {"app": "legacy"}, "template": {"metadata": {"labels": {"app": "legacy"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
    });
    assert_eq!(
        post_json(&h, "/api/v1/namespaces/default/replicationcontrollers", &rc)
            .await
            .status,
        201
    );
    h.settled().await;
    let pods = pods_of(&h, "legacy").await;
    assert_eq!(pods.len(), 2);
    assert_eq!(
        pods[0]["metadata"]["ownerReferences"][0]["kind"],
        "ReplicationController"
    );
    let rc = get(
        &h,
        "/api/v1/namespaces/default/replicationcontrollers/legacy",
    )
    .await
    .json();
    assert_eq!(rc["status"]["readyReplicas"], 2);
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn deleting_a_deployment_removes_its_replica_sets_and_pods() {
    let (h, _) = cluster(1).await;
    post_json(&h, DEPLOYS, &deployment("web", 2, "nginx")).await;
    h.settled().await;
    send(
        &h,
        http::Method::DELETE,
        &format!("{DEPLOYS}/web"),
        "application/json",
        "",
    )
    .await;
    h.settled().await;
    assert!(items(&h, RSS).await.is_empty());
    assert!(pods_of(&h, "web").await.is_empty());
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn eviction_honours_the_pods_disruption_budget() {
    let (h, _) = cluster(2).await;
    post_json(&h, DEPLOYS, &deployment("web", 3, "nginx")).await;
    let pdb = json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "web"},
        "spec": {"minAvailable": 3, "selector": {"matchLabels": {"app": "web"}}},
    });
    let pdbs = "/apis/policy/v1/namespaces/default/poddisruptionbudgets";
    assert_eq!(post_json(&h, pdbs, &pdb).await.status, 201);
    h.settled().await;
    let victim = pods_of(&h, "web").await[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let eviction =
        json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": victim}});
    let path = format!("{PODS}/{victim}/eviction");
    let r = post_json(&h, &path, &eviction).await;
    let s = r.status_failure(429, "TooManyRequests");
    assert_eq!(
        s["message"],
        "Cannot evict pod as it would violate the pod's disruption budget."
    );
    assert_eq!(s["details"]["causes"][0]["reason"], "DisruptionBudget");
    assert_eq!(
        s["details"]["causes"][0]["message"],
        "The disruption budget web needs 3 healthy pods and has 3 currently"
    );
    assert!(r.headers.get("retry-after").is_none());
    // One disruption allowed: taken by the eviction, the pod replaced.
    let r = patch(
        &h,
        &format!("{pdbs}/web"),
        MERGE,
        r#"{"spec":{"minAvailable":2}}"#,
    )
    .await;
    assert_eq!(r.status, 200);
    h.settled().await;
    let r = post_json(&h, &path, &eviction).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let budget = get(&h, &format!("{pdbs}/web")).await.json();
    assert_eq!(budget["status"]["disruptionsAllowed"], 0, "{budget}");
    assert!(budget["status"]["disruptedPods"][&victim].is_string());
    h.settled().await;
    assert_eq!(get(&h, &path.replace("/eviction", "")).await.status, 404);
    let pods = pods_of(&h, "web").await;
    assert_eq!(pods.len(), 3);
    assert!(pods.iter().all(|p| p["status"]["phase"] == "Running"));
    let budget = get(&h, &format!("{pdbs}/web")).await.json();
    assert_eq!(budget["status"]["disruptionsAllowed"], 1);
    // Two budgets over one pod: kube refuses to choose.
    let mut second = pdb.clone();
    second["metadata"]["name"] = json!("other");
    post_json(&h, pdbs, &second).await;
    h.settled().await;
    let other = pods[0]["metadata"]["name"].as_str().unwrap();
    let r = post_json(
        &h,
        &format!("{PODS}/{other}/eviction"),
        &json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": other}}),
    )
    .await;
    let s = r.status_failure(500, "InternalError");
    assert!(s["message"]
        .as_str()
        .unwrap()
        .contains("more than one PodDisruptionBudget"));
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_evictions_take_the_budget_once_and_the_rest_wait() {
    // One node with room for exactly the 24 pods, whose containers take an hour to stop: the
    // evicted pod keeps its place while it terminates, so its replacement cannot run and the
    // budget stays spent for the whole race.
    let h = Server::builder()
        .memory()
        .node_options(kubox::NodeOptions {
            count: 1,
            pods: 24,
            ..Default::default()
        })
        .start()
        .await
        .unwrap();
    let mut d = deployment("web", 24, "nginx");
    d["spec"]["template"]["metadata"]["annotations"] = json!({"kubox.dev/stop-after": "1h"});
    d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = json!(3600);
    post_json(&h, DEPLOYS, &d).await;
    let pdb = json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "web"},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "web"}}},
    });
    let pdbs = "/apis/policy/v1/namespaces/default/poddisruptionbudgets";
    post_json(&h, pdbs, &pdb).await;
    h.settled().await;
    let names: Vec<String> = pods_of(&h, "web")
        .await
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    let h = Arc::new(h);
    // Every eviction at once, on several threads: they race for the one disruption allowed.
    let tasks: Vec<_> = names
        .iter()
        .map(|n| {
            let body =
                json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": n}});
            let path = format!("{PODS}/{n}/eviction");
            let h = h.clone();
            tokio::spawn(async move { post_json(&h, &path, &body).await.status.as_u16() })
        })
        .collect();
    let mut counts = std::collections::BTreeMap::<u16, usize>::new();
    for t in tasks {
        *counts.entry(t.await.unwrap()).or_default() += 1;
    }
    assert_eq!(counts.get(&201), Some(&1), "{counts:?}");
    assert_eq!(counts.get(&429), Some(&23), "{counts:?}");
}

#[tokio::test]
async fn a_deployment_created_again_adopts_the_replica_set_an_orphaning_delete_left() {
    let (h, _) = cluster(1).await;
    post_json(&h, DEPLOYS, &deployment("web", 2, "nginx")).await;
    h.settled().await;
    let pods_before: Vec<String> = pods_of(&h, "web")
        .await
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    let r = send(
        &h,
        http::Method::DELETE,
        &format!("{DEPLOYS}/web?propagationPolicy=Orphan"),
        "application/json",
        "",
    )
    .await;
    assert!(r.status.is_success());
    h.settled().await;
    let rss = items(&h, RSS).await;
    assert_eq!(rss.len(), 1);
    assert!(rss[0]["metadata"]["ownerReferences"]
        .as_array()
        .is_none_or(|r| r.is_empty()));
    let created = post_json(&h, DEPLOYS, &deployment("web", 2, "nginx"))
        .await
        .json();
    h.settled().await;
    let rss = items(&h, RSS).await;
    assert_eq!(
        rss.len(),
        1,
        "the old ReplicaSet is taken back, no new one made"
    );
    assert_eq!(
        rss[0]["metadata"]["ownerReferences"][0]["uid"],
        created["metadata"]["uid"]
    );
    let mut pods_after: Vec<String> = pods_of(&h, "web")
        .await
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    pods_after.sort();
    let mut before = pods_before.clone();
    before.sort();
    assert_eq!(pods_after, before, "the same pods keep running");
    let d = get(&h, &format!("{DEPLOYS}/web")).await.json();
    assert_eq!(d["status"]["availableReplicas"], 2);
    h.shutdown().await.unwrap();
}
