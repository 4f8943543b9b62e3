//! Simulated nodes, the scheduler and the simulated kubelets (`Server::builder().nodes(n)`,
//! `kubox serve --nodes N`), through the API; time moved by a ManualClock, waits by settled().
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::*;
use http::Method;
use kubox::ManualClock;
use serde_json::{json, Value};

const PODS: &str = "/api/v1/namespaces/default/pods";

async fn nodes(n: u32) -> (ServerHandle, ManualClock) {
    let clock = ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let h = Server::builder()
        .memory()
        .clock(Arc::new(clock.clone()))
        .nodes(n)
        .start()
        .await
        .unwrap();
    h.settled().await;
    (h, clock)
}

fn pod(name: &str, spec: Value) -> Value {
    let mut spec = spec;
    if spec.get("containers").is_none() {
        spec["containers"] = json!([{"name": "c", "image": "nginx"}]);
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})
}

async fn get_pod(h: &ServerHandle, name: &str) -> Value {
    let r = get(h, &format!("{PODS}/{name}")).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

fn condition<'a>(obj: &'a Value, ty: &str) -> &'a Value {
    obj["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == ty))
        .unwrap_or(&Value::Null)
}

#[tokio::test]
async fn nodes_register_ready_with_capacity_and_renew_their_leases_on_the_server_clock() {
    let (h, clock) = nodes(3).await;
    let list = get(&h, "/api/v1/nodes").await.json();
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["kubox-node-0", "kubox-node-1", "kubox-node-2"]);
    let n = &list["items"][1];
    assert_eq!(
        n["metadata"]["labels"]["kubernetes.io/hostname"],
        "kubox-node-1"
    );
    assert_eq!(n["metadata"]["labels"]["kubernetes.io/os"], "linux");
    assert_eq!(n["status"]["allocatable"]["pods"], "110");
    assert_eq!(n["spec"]["podCIDR"], "10.244.1.0/24");
    assert_eq!(condition(n, "Ready")["status"], "True");
    assert_eq!(condition(n, "Ready")["reason"], "KubeletReady");
    let lease_path = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/kubox-node-1";
    let lease = get(&h, lease_path).await.json();
    assert_eq!(lease["spec"]["holderIdentity"], "kubox-node-1");
    assert_eq!(lease["spec"]["leaseDurationSeconds"], 40);
    assert_eq!(lease["metadata"]["ownerReferences"][0]["kind"], "Node");
    let renewed = lease["spec"]["renewTime"].as_str().unwrap().to_string();
    // Nothing is due before 10 s: the lease stays as it is.
    clock.advance(Duration::from_secs(5));
    h.settled().await;
    assert_eq!(
        get(&h, lease_path).await.json()["spec"]["renewTime"],
        renewed.as_str()
    );
    clock.advance(Duration::from_secs(5));
    h.settled().await;
    let later = get(&h, lease_path).await.json();
    assert_ne!(later["spec"]["renewTime"], renewed.as_str());
    assert!(later["spec"]["renewTime"]
        .as_str()
        .unwrap()
        .starts_with("2027-01-15T08:00:10"));
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_pod_is_scheduled_and_runs_with_an_ip_and_ready_conditions() {
    let (h, _) = nodes(2).await;
    let r = post_json(&h, PODS, &pod("web", json!({}))).await;
    assert_eq!(r.status, 201);
    h.settled().await;
    let p = get_pod(&h, "web").await;
    assert_eq!(p["status"]["phase"], "Running", "{p}");
    let node = p["spec"]["nodeName"].as_str().unwrap();
    assert!(node.starts_with("kubox-node-"));
    let ip = p["status"]["podIP"].as_str().unwrap();
    let i = node.trim_start_matches("kubox-node-");
    assert!(ip.starts_with(&format!("10.244.{i}.")), "{ip}");
    assert_eq!(p["status"]["podIPs"][0]["ip"], ip);
    assert!(p["status"]["hostIP"]
        .as_str()
        .unwrap()
        .starts_with("172.18."));
    for ty in [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled",
    ] {
        assert_eq!(condition(&p, ty)["status"], "True", "{ty}: {p}");
    }
    let cs = &p["status"]["containerStatuses"][0];
    assert_eq!(cs["ready"], true);
    assert_eq!(cs["image"], "docker.io/library/nginx:latest");
    assert!(cs["state"]["running"]["startedAt"].is_string());
    // Field selectors over what the kubelet wrote, as kubectl asks.
    let by_node = get(&h, &format!("{PODS}?fieldSelector=spec.nodeName%3D{node}"))
        .await
        .json();
    assert_eq!(by_node["items"].as_array().unwrap().len(), 1);
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn pods_spread_over_nodes_and_get_distinct_ips() {
    let (h, _) = nodes(3).await;
    for i in 0..9 {
        let r = post_json(&h, PODS, &pod(&format!("p{i}"), json!({}))).await;
        assert_eq!(r.status, 201);
    }
    h.settled().await;
    let list = get(&h, PODS).await.json();
    let mut per_node = std::collections::BTreeMap::<String, usize>::new();
    let mut ips = std::collections::BTreeSet::new();
    for p in list["items"].as_array().unwrap() {
        assert_eq!(p["status"]["phase"], "Running");
        *per_node
            .entry(p["spec"]["nodeName"].as_str().unwrap().to_string())
            .or_default() += 1;
        assert!(ips.insert(p["status"]["podIP"].as_str().unwrap().to_string()));
    }
    assert_eq!(per_node.values().copied().collect::<Vec<_>>(), [3, 3, 3]);
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn unschedulable_pods_say_why_and_are_scheduled_when_room_appears() {
    let (h, _) = nodes(2).await;
    let big = pod(
        "big",
        json!({"containers": [{"name": "c", "image": "nginx", "resources": {"requests": {"cpu": "40"}}}]}),
    );
    assert_eq!(post_json(&h, PODS, &big).await.status, 201);
    let picky = pod("picky", json!({"nodeSelector": {"disk": "ssd"}}));
    assert_eq!(post_json(&h, PODS, &picky).await.status, 201);
    h.settled().await;
    let p = get_pod(&h, "big").await;
    assert_eq!(p["status"]["phase"], "Pending");
    let c = condition(&p, "PodScheduled");
    assert_eq!(c["status"], "False");
    assert_eq!(c["reason"], "Unschedulable");
    assert_eq!(
        c["message"],
        "0/2 nodes are available: 2 Insufficient cpu. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
    );
    let p = get_pod(&h, "picky").await;
    assert!(condition(&p, "PodScheduled")["message"]
        .as_str()
        .unwrap()
        .contains("2 node(s) didn't match Pod's node affinity/selector"));
    // A label on one node makes room for the picky pod.
    let r = patch(
        &h,
        "/api/v1/nodes/kubox-node-1",
        "application/merge-patch+json",
        r#"{"metadata":{"labels":{"disk":"ssd"}}}"#,
    )
    .await;
    assert_eq!(r.status, 200);
    h.settled().await;
    let p = get_pod(&h, "picky").await;
    assert_eq!(p["spec"]["nodeName"], "kubox-node-1");
    assert_eq!(p["status"]["phase"], "Running");
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn taints_keep_pods_away_unless_tolerated() {
    let (h, _) = nodes(1).await;
    let r = patch(
        &h,
        "/api/v1/nodes/kubox-node-0",
        "application/merge-patch+json",
        r#"{"spec":{"taints":[{"key":"dedicated","value":"gpu","effect":"NoSchedule"}]}}"#,
    )
    .await;
    assert_eq!(r.status, 200);
    post_json(&h, PODS, &pod("plain", json!({}))).await;
    post_json(
        &h,
        PODS,
        &pod(
            "tolerant",
            json!({"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]}),
        ),
    )
    .await;
    h.settled().await;
    let plain = get_pod(&h, "plain").await;
    assert_eq!(
        condition(&plain, "PodScheduled")["message"],
        "0/1 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
    );
    assert_eq!(get_pod(&h, "tolerant").await["status"]["phase"], "Running");
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn pods_that_run_to_completion_succeed_or_fail_by_their_annotations_on_the_server_clock() {
    let (h, clock) = nodes(1).await;
    post_json(&h, PODS, &pod("quick", json!({"restartPolicy": "Never"}))).await;
    let mut slow = pod("slow", json!({"restartPolicy": "Never"}));
    slow["metadata"]["annotations"] = json!({"kubox.dev/run-for": "30s"});
    post_json(&h, PODS, &slow).await;
    let mut bad = pod("bad", json!({"restartPolicy": "Never"}));
    bad["metadata"]["annotations"] = json!({"kubox.dev/exit-code": "3"});
    post_json(&h, PODS, &bad).await;
    let mut crashy = pod("crashy", json!({"restartPolicy": "OnFailure"}));
    crashy["metadata"]["annotations"] = json!({"kubox.dev/exit-code": "1"});
    post_json(&h, PODS, &crashy).await;
    h.settled().await;
    let quick = get_pod(&h, "quick").await;
    assert_eq!(quick["status"]["phase"], "Succeeded", "{quick}");
    let t = &quick["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(t["exitCode"], 0);
    assert_eq!(t["reason"], "Completed");
    assert_eq!(condition(&quick, "Ready")["reason"], "PodCompleted");
    assert_eq!(get_pod(&h, "slow").await["status"]["phase"], "Running");
    let bad = get_pod(&h, "bad").await;
    assert_eq!(bad["status"]["phase"], "Failed");
    assert_eq!(
        bad["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"],
        3
    );
    let crashy = get_pod(&h, "crashy").await;
    assert_eq!(crashy["status"]["phase"], "Running");
    let cs = &crashy["status"]["containerStatuses"][0];
    assert_eq!(cs["restartCount"], 1);
    assert_eq!(cs["state"]["waiting"]["reason"], "CrashLoopBackOff");
    assert_eq!(cs["lastState"]["terminated"]["exitCode"], 1);

    clock.advance(Duration::from_secs(30));
    h.settled().await;
    assert_eq!(get_pod(&h, "slow").await["status"]["phase"], "Succeeded");
    // After its 10 s back-off the crashing container ran and failed again.
    let crashy = get_pod(&h, "crashy").await;
    assert_eq!(crashy["status"]["containerStatuses"][0]["restartCount"], 2);
    h.shutdown().await.unwrap();
}

/// A run time past what the clock holds (`kubox.dev/run-for` takes any length) is a pod that
/// runs on, not a kubelet that stops.
#[tokio::test]
async fn a_pod_that_runs_for_longer_than_the_clock_holds_runs_and_its_kubelet_goes_on() {
    let (h, clock) = nodes(1).await;
    let mut forever = pod("forever", json!({"restartPolicy": "Never"}));
    forever["metadata"]["annotations"] = json!({"kubox.dev/run-for": "3000000000000000h"});
    post_json(&h, PODS, &forever).await;
    h.settled().await;
    post_json(&h, PODS, &pod("quick", json!({"restartPolicy": "Never"}))).await;
    h.settled().await;
    assert_eq!(get_pod(&h, "forever").await["status"]["phase"], "Running");
    assert_eq!(get_pod(&h, "quick").await["status"]["phase"], "Succeeded");
    clock.advance(Duration::from_secs(365 * 86_400));
    h.settled().await;
    assert_eq!(get_pod(&h, "forever").await["status"]["phase"], "Running");
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn bound_pods_are_deleted_gracefully_and_finished_by_their_kubelet() {
    let (h, _) = nodes(1).await;
    post_json(&h, PODS, &pod("web", json!({}))).await;
    post_json(&h, PODS, &pod("held", json!({}))).await;
    h.settled().await;
    let r = patch(
        &h,
        &format!("{PODS}/held"),
        "application/merge-patch+json",
        r#"{"metadata":{"finalizers":["example.com/hold"]}}"#,
    )
    .await;
    assert_eq!(r.status, 200);
    let r = send(
        &h,
        Method::DELETE,
        &format!("{PODS}/web"),
        "application/json",
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    let answered = r.json();
    assert_eq!(answered["metadata"]["deletionGracePeriodSeconds"], 30);
    assert!(answered["metadata"]["deletionTimestamp"].is_string());
    h.settled().await;
    assert_eq!(get(&h, &format!("{PODS}/web")).await.status, 404);
    // A finalizer still holds a pod its kubelet has finished with.
    send(
        &h,
        Method::DELETE,
        &format!("{PODS}/held"),
        "application/json",
        "",
    )
    .await;
    h.settled().await;
    let held = get_pod(&h, "held").await;
    assert_eq!(held["metadata"]["deletionGracePeriodSeconds"], 0);
    // Unbound pods go at once, as without kubelets.
    let stuck = pod("stuck", json!({"nodeSelector": {"no": "such"}}));
    post_json(&h, PODS, &stuck).await;
    h.settled().await;
    let r = send(
        &h,
        Method::DELETE,
        &format!("{PODS}/stuck"),
        "application/json",
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(get(&h, &format!("{PODS}/stuck")).await.status, 404);
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn without_nodes_nothing_runs_and_pods_stay_pending() {
    let h = Server::builder().memory().start().await.unwrap();
    post_json(&h, PODS, &pod("web", json!({}))).await;
    h.settled().await;
    let p = get_pod(&h, "web").await;
    assert_eq!(p["status"]["phase"], "Pending");
    assert!(p["spec"]["nodeName"].is_null());
    assert_eq!(get(&h, "/api/v1/nodes").await.json()["items"], json!([]));
    assert!(!h
        .controllers()
        .running()
        .contains(&kubox::Controller::Deployment));
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn finished_pods_above_the_gc_threshold_are_deleted_oldest_first() {
    let clock = ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let h = Server::builder()
        .memory()
        .clock(Arc::new(clock.clone()))
        .nodes(1)
        .terminated_pod_gc_threshold(2)
        .start()
        .await
        .unwrap();
    for i in 0..4 {
        post_json(
            &h,
            PODS,
            &pod(&format!("done-{i}"), json!({"restartPolicy": "Never"})),
        )
        .await;
        h.settled().await;
        clock.advance(Duration::from_secs(1));
    }
    h.settled().await;
    let left: Vec<String> = get(&h, PODS).await.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(left, ["done-2", "done-3"]);
    h.shutdown().await.unwrap();
}
