//! The endpoints, endpointslice, disruption and podgc controllers through the API, with
//! simulated nodes: the scheduler binds the pods, the simulated kubelets run them and make them
//! Ready, and `settled()` replaces every sleep.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{get, patch, post_json, send, Server, ServerHandle};
use http::Method;
use kubox::{Controller, ManualClock};
use serde_json::{json, Value};

const SVCS: &str = "/api/v1/namespaces/default/services";
const PODS: &str = "/api/v1/namespaces/default/pods";
const EPS: &str = "/api/v1/namespaces/default/endpoints";
const SLICES: &str = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices";
const PDBS: &str = "/apis/policy/v1/namespaces/default/poddisruptionbudgets";

async fn server() -> ServerHandle {
    Server::builder().memory().nodes(2).start().await.unwrap()
}

async fn create(h: &ServerHandle, collection: &str, obj: Value) -> Value {
    let r = post_json(h, collection, &obj).await;
    assert_eq!(
        r.status.as_u16(),
        201,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    r.json()
}

async fn read(h: &ServerHandle, path: &str) -> Option<Value> {
    let r = get(h, path).await;
    match r.status.as_u16() {
        200 => Some(r.json()),
        404 => None,
        c => panic!("GET {path}: {c} {}", String::from_utf8_lossy(&r.body)),
    }
}

async fn must(h: &ServerHandle, path: &str) -> Value {
    read(h, path)
        .await
        .unwrap_or_else(|| panic!("{path} is missing"))
}

async fn delete(h: &ServerHandle, path: &str) {
    let r = send(h, Method::DELETE, path, "", "").await;
    assert!(
        r.status.is_success(),
        "DELETE {path}: {} {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
}

async fn patch_ok(h: &ServerHandle, path: &str, content_type: &str, body: Value) {
    let r = patch(h, path, content_type, &body.to_string()).await;
    assert!(
        r.status.is_success(),
        "PATCH {path}: {} {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
}

const SMP: &str = "application/strategic-merge-patch+json";
const MERGE: &str = "application/merge-patch+json";

/// A pod of `app` serving `http` on 8080 (none when `http` is false).
fn pod(name: &str, app: &str, http: bool) -> Value {
    let ports = if http {
        json!([{"name": "http", "containerPort": 8080}])
    } else {
        json!([])
    };
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"containers": [{"name": "c", "image": "nginx", "ports": ports}]}})
}

fn service(name: &str, app: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": {"team": "a"}},
        "spec": {"selector": {"app": app}, "ports": [
            {"name": "http", "port": 80, "targetPort": "http"},
            {"name": "metrics", "port": 9090, "targetPort": 9100, "appProtocol": "http"}]}})
}

/// The EndpointSlices of a Service.
async fn slices(h: &ServerHandle, svc: &str) -> Vec<Value> {
    let r = must(
        h,
        &format!("{SLICES}?labelSelector=kubernetes.io/service-name%3D{svc}"),
    )
    .await;
    r["items"].as_array().cloned().unwrap_or_default()
}

/// Every endpoint of the slices, by pod name: (ready, serving, terminating).
fn slice_endpoints(slices: &[Value]) -> Vec<(String, bool, bool, bool)> {
    let mut out: Vec<(String, bool, bool, bool)> = slices
        .iter()
        .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
        .map(|e| {
            let c = &e["conditions"];
            (
                e["targetRef"]["name"].as_str().unwrap().to_string(),
                c["ready"] == true,
                c["serving"] == true,
                c["terminating"] == true,
            )
        })
        .collect();
    out.sort();
    out
}

/// The pod names under `field` (addresses or notReadyAddresses) of every subset.
fn addresses(ep: &Value, field: &str) -> Vec<String> {
    let mut out: Vec<String> = ep["subsets"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s[field].as_array().cloned().unwrap_or_default())
        .map(|a| a["targetRef"]["name"].as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

async fn set_ready(h: &ServerHandle, pod: &str, ready: bool) {
    let status = if ready { "True" } else { "False" };
    patch_ok(
        h,
        &format!("{PODS}/{pod}/status"),
        SMP,
        json!({"status": {"conditions": [{"type": "Ready", "status": status}]}}),
    )
    .await;
}

#[tokio::test]
async fn endpoints_and_slices_list_the_ready_pods_with_their_resolved_ports() {
    let h = server().await;
    create(&h, SVCS, service("web", "web")).await;
    for name in ["web-0", "web-1"] {
        create(&h, PODS, pod(name, "web", true)).await;
    }
    create(&h, PODS, pod("web-2", "web", false)).await;
    create(&h, PODS, pod("other", "db", true)).await;
    h.settled().await;

    let p0 = must(&h, &format!("{PODS}/web-0")).await;
    let ip0 = p0["status"]["podIP"].as_str().unwrap().to_string();
    assert!(!ip0.is_empty(), "the kubelet gave the pod an IP: {p0}");
    let node0 = p0["spec"]["nodeName"].as_str().unwrap().to_string();

    let ep = must(&h, &format!("{EPS}/web")).await;
    assert_eq!(
        ep["metadata"]["labels"],
        json!({"team": "a", "endpoints.kubernetes.io/managed-by": "endpoint-controller"})
    );
    let trigger = ep["metadata"]["annotations"]["endpoints.kubernetes.io/last-change-trigger-time"]
        .as_str()
        .unwrap();
    assert!(trigger.ends_with('Z'), "{trigger}");
    assert!(ep["metadata"]["ownerReferences"].is_null());
    let subsets = ep["subsets"].as_array().unwrap();
    assert_eq!(subsets.len(), 2, "{ep:#}");
    // Addresses offering the same ports share a subset: web-2 has no `http` port, so `http`
    // has web-0 and web-1, `metrics` (a numeric targetPort) all three.
    let of_port = |name: &str| {
        subsets
            .iter()
            .find(|s| s["ports"][0]["name"] == name)
            .unwrap_or_else(|| panic!("no subset for {name}: {ep:#}"))
            .clone()
    };
    let http = of_port("http");
    assert_eq!(
        http["ports"],
        json!([{"name": "http", "port": 8080, "protocol": "TCP"}])
    );
    assert_eq!(
        addresses(&json!({"subsets": [http]}), "addresses"),
        ["web-0", "web-1"]
    );
    let metrics = of_port("metrics");
    assert_eq!(
        metrics["ports"],
        json!([{"name": "metrics", "port": 9100, "protocol": "TCP", "appProtocol": "http"}])
    );
    assert_eq!(
        addresses(&json!({"subsets": [metrics]}), "addresses"),
        ["web-0", "web-1", "web-2"]
    );
    let a0 = http["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["targetRef"]["name"] == "web-0")
        .unwrap()
        .clone();
    assert_eq!(a0["ip"], ip0.as_str());
    assert_eq!(a0["nodeName"], node0.as_str());
    assert_eq!(a0["targetRef"]["kind"], "Pod");
    assert_eq!(a0["targetRef"]["namespace"], "default");
    assert_eq!(a0["targetRef"]["uid"], p0["metadata"]["uid"]);

    let ss = slices(&h, "web").await;
    assert_eq!(ss.len(), 2, "one slice per port set: {ss:#?}");
    let svc = must(&h, &format!("{SVCS}/web")).await;
    for s in &ss {
        assert!(s["metadata"]["name"].as_str().unwrap().starts_with("web-"));
        assert_eq!(s["metadata"]["generateName"], "web-");
        assert_eq!(s["addressType"], "IPv4");
        assert_eq!(
            s["metadata"]["labels"],
            json!({"team": "a", "kubernetes.io/service-name": "web",
                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"})
        );
        assert_eq!(
            s["metadata"]["ownerReferences"],
            json!([{"apiVersion": "v1", "kind": "Service", "name": "web", "uid": svc["metadata"]["uid"],
                "controller": true, "blockOwnerDeletion": true}])
        );
        assert!(
            s["metadata"]["annotations"]["endpoints.kubernetes.io/last-change-trigger-time"]
                .is_string()
        );
    }
    let two = ss
        .iter()
        .find(|s| s["ports"].as_array().unwrap().len() == 2)
        .unwrap();
    let e0 = two["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["targetRef"]["name"] == "web-0")
        .unwrap();
    assert_eq!(e0["addresses"], json!([ip0]));
    assert_eq!(e0["nodeName"], node0.as_str());
    assert_eq!(
        e0["conditions"],
        json!({"ready": true, "serving": true, "terminating": false})
    );
    let mut ports: Vec<Value> = two["ports"].as_array().unwrap().clone();
    ports.sort_by_key(|p| p["name"].as_str().unwrap().to_string());
    assert_eq!(
        ports,
        vec![
            json!({"name": "http", "protocol": "TCP", "port": 8080}),
            json!({"name": "metrics", "protocol": "TCP", "port": 9100, "appProtocol": "http"}),
        ]
    );
    assert_eq!(
        slice_endpoints(&ss),
        vec![
            ("web-0".into(), true, true, false),
            ("web-1".into(), true, true, false),
            ("web-2".into(), true, true, false),
        ]
    );
    // The `kubernetes` Service has no selector: neither controller writes for it.
    assert!(slices(&h, "kubernetes").await.is_empty());
    assert!(read(&h, &format!("{EPS}/kubernetes")).await.is_none());
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn endpoints_and_slices_follow_readiness_labels_and_deletion() {
    let h = server().await;
    create(&h, SVCS, service("web", "web")).await;
    for name in ["web-0", "web-1", "web-2"] {
        create(&h, PODS, pod(name, "web", true)).await;
    }
    h.settled().await;
    let ep = must(&h, &format!("{EPS}/web")).await;
    assert_eq!(addresses(&ep, "addresses"), ["web-0", "web-1", "web-2"]);

    // Not ready: a not-ready address, an endpoint neither ready nor serving.
    set_ready(&h, "web-1", false).await;
    h.settled().await;
    let ep = must(&h, &format!("{EPS}/web")).await;
    assert_eq!(addresses(&ep, "addresses"), ["web-0", "web-2"]);
    assert_eq!(addresses(&ep, "notReadyAddresses"), ["web-1"]);
    assert_eq!(
        slice_endpoints(&slices(&h, "web").await),
        vec![
            ("web-0".into(), true, true, false),
            ("web-1".into(), false, false, false),
            ("web-2".into(), true, true, false),
        ]
    );

    // publishNotReadyAddresses: every pod is an address and a ready endpoint.
    patch_ok(
        &h,
        &format!("{SVCS}/web"),
        MERGE,
        json!({"spec": {"publishNotReadyAddresses": true}}),
    )
    .await;
    h.settled().await;
    let ep = must(&h, &format!("{EPS}/web")).await;
    assert_eq!(addresses(&ep, "addresses"), ["web-0", "web-1", "web-2"]);
    assert!(addresses(&ep, "notReadyAddresses").is_empty());
    assert_eq!(
        slice_endpoints(&slices(&h, "web").await),
        vec![
            ("web-0".into(), true, true, false),
            ("web-1".into(), true, false, false),
            ("web-2".into(), true, true, false),
        ]
    );
    patch_ok(
        &h,
        &format!("{SVCS}/web"),
        MERGE,
        json!({"spec": {"publishNotReadyAddresses": false}}),
    )
    .await;
    set_ready(&h, "web-1", true).await;

    // Relabelled away, then deleted: gone from both.
    patch_ok(
        &h,
        &format!("{PODS}/web-0"),
        MERGE,
        json!({"metadata": {"labels": {"app": "elsewhere"}}}),
    )
    .await;
    delete(&h, &format!("{PODS}/web-2")).await;
    h.settled().await;
    let ep = must(&h, &format!("{EPS}/web")).await;
    assert_eq!(addresses(&ep, "addresses"), ["web-1"]);
    assert!(addresses(&ep, "notReadyAddresses").is_empty());
    assert_eq!(
        slice_endpoints(&slices(&h, "web").await),
        vec![("web-1".into(), true, true, false)]
    );

    // A relabelled Service carries its labels over.
    patch_ok(
        &h,
        &format!("{SVCS}/web"),
        MERGE,
        json!({"metadata": {"labels": {"team": "b"}}}),
    )
    .await;
    h.settled().await;
    let ep = must(&h, &format!("{EPS}/web")).await;
    assert_eq!(ep["metadata"]["labels"]["team"], "b");
    for s in slices(&h, "web").await {
        assert_eq!(s["metadata"]["labels"]["team"], "b");
    }

    // The last pod gone: no addresses, one placeholder slice without endpoints or ports.
    delete(&h, &format!("{PODS}/web-1")).await;
    h.settled().await;
    let ep = must(&h, &format!("{EPS}/web")).await;
    assert!(ep["subsets"].as_array().is_none_or(Vec::is_empty), "{ep:#}");
    let ss = slices(&h, "web").await;
    assert_eq!(ss.len(), 1, "{ss:#?}");
    assert!(ss[0]["endpoints"].as_array().is_none_or(Vec::is_empty));
    assert!(ss[0]["ports"].as_array().is_none_or(Vec::is_empty));

    // The Service deleted: its Endpoints and slices go.
    delete(&h, &format!("{SVCS}/web")).await;
    h.settled().await;
    assert!(read(&h, &format!("{EPS}/web")).await.is_none());
    assert!(slices(&h, "web").await.is_empty());
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_sync_that_changes_nothing_writes_nothing() {
    let h = server().await;
    create(&h, SVCS, service("web", "web")).await;
    for name in ["web-0", "web-1"] {
        create(&h, PODS, pod(name, "web", true)).await;
    }
    create(&h, PODS, pod("web-2", "web", false)).await;
    h.settled().await;
    let versions = |ep: &Value, ss: &[Value]| -> Vec<String> {
        std::iter::once(ep)
            .chain(ss.iter())
            .map(|o| {
                o["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    let before = versions(
        &must(&h, &format!("{EPS}/web")).await,
        &slices(&h, "web").await,
    );
    // The Service changes (both controllers sync it), its endpoints do not; a pod's annotation
    // changes nothing either.
    patch_ok(
        &h,
        &format!("{SVCS}/web"),
        MERGE,
        json!({"metadata": {"annotations": {"note": "x"}}}),
    )
    .await;
    patch_ok(
        &h,
        &format!("{PODS}/web-0"),
        MERGE,
        json!({"metadata": {"annotations": {"note": "x"}}}),
    )
    .await;
    h.settled().await;
    let after = versions(
        &must(&h, &format!("{EPS}/web")).await,
        &slices(&h, "web").await,
    );
    assert_eq!(before, after);
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn terminating_pods_stay_in_slices_as_terminating_while_a_finalizer_holds_them() {
    let h = server().await;
    create(&h, SVCS, service("web", "web")).await;
    let mut p = pod("web-0", "web", true);
    p["metadata"]["finalizers"] = json!(["example.com/hold"]);
    // Its containers take their whole grace period to stop.
    p["metadata"]["annotations"] = json!({"kubox.dev/stop-after": "1h"});
    create(&h, PODS, p).await;
    create(&h, PODS, pod("web-1", "web", true)).await;
    h.settled().await;
    delete(&h, &format!("{PODS}/web-0")).await;
    h.settled().await;
    let pod0 = must(&h, &format!("{PODS}/web-0")).await;
    assert!(pod0["metadata"]["deletionTimestamp"].is_string());
    // Terminating: its containers still stop; the pod is still Running and Ready.
    assert_eq!(pod0["status"]["phase"], "Running");
    // Terminating: out of Endpoints; in slices, terminating and serving but not ready.
    let ep = must(&h, &format!("{EPS}/web")).await;
    assert_eq!(addresses(&ep, "addresses"), ["web-1"]);
    assert!(addresses(&ep, "notReadyAddresses").is_empty());
    assert_eq!(
        slice_endpoints(&slices(&h, "web").await),
        vec![
            ("web-0".into(), false, true, true),
            ("web-1".into(), true, true, false),
        ]
    );
    patch_ok(
        &h,
        &format!("{PODS}/web-0"),
        MERGE,
        json!({"metadata": {"finalizers": null}}),
    )
    .await;
    h.settled().await;
    assert_eq!(
        slice_endpoints(&slices(&h, "web").await),
        vec![("web-1".into(), true, true, false)]
    );
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn selectorless_and_headless_services() {
    let h = server().await;
    // Without a selector: whatever the user writes stays as it is.
    create(
        &h,
        SVCS,
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "manual"},
            "spec": {"ports": [{"port": 80}]}}),
    )
    .await;
    let mine = json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "manual"},
        "subsets": [{"addresses": [{"ip": "192.0.2.1"}], "ports": [{"port": 80}]}]});
    create(&h, EPS, mine).await;
    // Headless with a selector: the headless label; a pod naming the Service as its subdomain
    // gets its hostname.
    create(
        &h,
        SVCS,
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db"},
            "spec": {"clusterIP": "None", "selector": {"app": "db"}, "ports": [{"port": 5432}]}}),
    )
    .await;
    let mut p = pod("db-0", "db", false);
    p["spec"]["hostname"] = json!("db-0");
    p["spec"]["subdomain"] = json!("db");
    create(&h, PODS, p).await;
    create(&h, PODS, pod("web-0", "web", true)).await;
    h.settled().await;

    let manual = must(&h, &format!("{EPS}/manual")).await;
    assert_eq!(manual["subsets"][0]["addresses"][0]["ip"], "192.0.2.1");
    assert!(manual["metadata"]["labels"].is_null());
    assert!(slices(&h, "manual").await.is_empty());

    let db = must(&h, &format!("{EPS}/db")).await;
    assert_eq!(
        db["metadata"]["labels"]["service.kubernetes.io/headless"],
        ""
    );
    assert_eq!(db["subsets"][0]["addresses"][0]["hostname"], "db-0");
    assert_eq!(db["subsets"][0]["ports"][0]["port"], 5432);
    let ss = slices(&h, "db").await;
    assert_eq!(ss.len(), 1);
    assert_eq!(
        ss[0]["metadata"]["labels"]["service.kubernetes.io/headless"],
        ""
    );
    assert_eq!(ss[0]["endpoints"][0]["hostname"], "db-0");

    // An Endpoints left over by a deleted selector Service is deleted with it.
    delete(&h, &format!("{SVCS}/db")).await;
    h.settled().await;
    assert!(read(&h, &format!("{EPS}/db")).await.is_none());
    assert!(read(&h, &format!("{EPS}/manual")).await.is_some());
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn endpoints_left_without_a_service_are_deleted_when_the_controller_starts() {
    // Written while no endpoints controller runs (no simulated nodes).
    let before = Server::builder().memory().start().await.unwrap();
    create(
        &before,
        SVCS,
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kept"},
            "spec": {"ports": [{"port": 80}]}}),
    )
    .await;
    let endpoints = |name: &str, annotations: Value| {
        json!({"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": name, "annotations": annotations},
            "subsets": [{"addresses": [{"ip": "192.0.2.1"}], "ports": [{"port": 80}]}]})
    };
    create(&before, EPS, endpoints("kept", json!({}))).await;
    create(&before, EPS, endpoints("left-over", json!({}))).await;
    create(
        &before,
        EPS,
        endpoints(
            "a-lock",
            json!({"control-plane.alpha.kubernetes.io/leader": "{}"}),
        ),
    )
    .await;
    before.settled().await;
    assert!(read(&before, &format!("{EPS}/left-over")).await.is_some());
    let snapshot = before.snapshot().await.unwrap();
    before.shutdown().await.unwrap();

    let h = Server::builder()
        .memory()
        .nodes(1)
        .from_snapshot(&snapshot)
        .start()
        .await
        .unwrap();
    h.settled().await;
    assert!(read(&h, &format!("{EPS}/left-over")).await.is_none());
    assert!(read(&h, &format!("{EPS}/kept")).await.is_some());
    assert!(read(&h, &format!("{EPS}/a-lock")).await.is_some());
    // Later ones are not looked for (until the next start).
    create(&h, EPS, endpoints("later", json!({}))).await;
    h.settled().await;
    assert!(read(&h, &format!("{EPS}/later")).await.is_some());
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn slices_hold_at_most_a_hundred_endpoints() {
    let h = server().await;
    create(&h, SVCS, service("big", "big")).await;
    for i in 0..130 {
        create(&h, PODS, pod(&format!("big-{i:03}"), "big", true)).await;
    }
    h.settled().await;
    let ss = slices(&h, "big").await;
    // Every pod's own address.
    let mut ips: Vec<String> = ss
        .iter()
        .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
        .map(|e| e["addresses"][0].as_str().unwrap().to_string())
        .collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 130);
    let sizes: Vec<usize> = ss
        .iter()
        .map(|s| s["endpoints"].as_array().map_or(0, Vec::len))
        .collect();
    // How the 130 are split depends on how many became ready in each sync (kube's reconciler
    // does not rewrite a slice only to fill it); none holds more than 100, and two suffice.
    assert_eq!(sizes.len(), 2, "{sizes:?}");
    assert!(sizes.iter().all(|n| *n <= 100), "{sizes:?}");
    assert_eq!(slice_endpoints(&ss).len(), 130);
    let ep = must(&h, &format!("{EPS}/big")).await;
    assert_eq!(addresses(&ep, "addresses").len(), 130);
    h.shutdown().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// PodDisruptionBudgets.

fn pdb(name: &str, app: &str, rule: Value) -> Value {
    let mut spec = json!({"selector": {"matchLabels": {"app": app}}});
    for (k, v) in rule.as_object().unwrap() {
        spec[k] = v.clone();
    }
    json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": name}, "spec": spec})
}

fn owned_pod(name: &str, app: &str, owner: &Value, kind: &str, api_version: &str) -> Value {
    let mut p = pod(name, app, true);
    p["metadata"]["ownerReferences"] = json!([{"apiVersion": api_version, "kind": kind,
        "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"], "controller": true}]);
    p
}

/// (expectedPods, desiredHealthy, currentHealthy, disruptionsAllowed, condition status, reason).
async fn budget(h: &ServerHandle, name: &str) -> (i64, i64, i64, i64, String, String) {
    let b = must(h, &format!("{PDBS}/{name}")).await;
    let s = &b["status"];
    assert_eq!(
        s["observedGeneration"], b["metadata"]["generation"],
        "{b:#}"
    );
    let c = s["conditions"]
        .as_array()
        .unwrap_or_else(|| panic!("no conditions: {b:#}"))
        .iter()
        .find(|c| c["type"] == "DisruptionAllowed")
        .unwrap();
    (
        s["expectedPods"].as_i64().unwrap_or(0),
        s["desiredHealthy"].as_i64().unwrap_or(0),
        s["currentHealthy"].as_i64().unwrap_or(0),
        s["disruptionsAllowed"].as_i64().unwrap_or(0),
        c["status"].as_str().unwrap().to_string(),
        c["reason"].as_str().unwrap().to_string(),
    )
}

fn t(
    e: i64,
    d: i64,
    c: i64,
    a: i64,
    status: &str,
    reason: &str,
) -> (i64, i64, i64, i64, String, String) {
    (e, d, c, a, status.to_string(), reason.to_string())
}

#[tokio::test]
async fn budgets_count_healthy_pods_against_min_available_and_max_unavailable() {
    // The ReplicaSet is left to the test: its scale is 4, three of its pods exist.
    let h = Server::builder()
        .memory()
        .nodes(2)
        .disable_controller(Controller::ReplicaSet)
        .disable_controller(Controller::Deployment)
        .disable_controller(Controller::StatefulSet)
        .start()
        .await
        .unwrap();
    let rs = create(
        &h,
        "/apis/apps/v1/namespaces/default/replicasets",
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web"},
            "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}),
    )
    .await;
    for name in ["web-a", "web-b", "web-c"] {
        create(
            &h,
            PODS,
            owned_pod(name, "web", &rs, "ReplicaSet", "apps/v1"),
        )
        .await;
    }
    create(&h, PDBS, pdb("min-int", "web", json!({"minAvailable": 2}))).await;
    create(
        &h,
        PDBS,
        pdb("min-pct", "web", json!({"minAvailable": "50%"})),
    )
    .await;
    create(
        &h,
        PDBS,
        pdb("max-int", "web", json!({"maxUnavailable": 1})),
    )
    .await;
    create(
        &h,
        PDBS,
        pdb("max-pct", "web", json!({"maxUnavailable": "50%"})),
    )
    .await;
    create(&h, PDBS, pdb("nothing", "none", json!({"minAvailable": 1}))).await;
    // A Deployment's pods count at the Deployment's scale (5), not their ReplicaSet's (2); a
    // StatefulSet's at its own.
    let template = json!({"metadata": {"labels": {"app": "api"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
    let deploy = create(
        &h,
        "/apis/apps/v1/namespaces/default/deployments",
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api"},
            "spec": {"replicas": 5, "selector": {"matchLabels": {"app": "api"}}, "template": template}}),
    )
    .await;
    let api_rs = create(
        &h,
        "/apis/apps/v1/namespaces/default/replicasets",
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "api-1",
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "api",
                    "uid": deploy["metadata"]["uid"], "controller": true}]},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "api"}}, "template": template}}),
    )
    .await;
    for name in ["api-a", "api-b"] {
        create(
            &h,
            PODS,
            owned_pod(name, "api", &api_rs, "ReplicaSet", "apps/v1"),
        )
        .await;
    }
    create(&h, PDBS, pdb("api", "api", json!({"maxUnavailable": 1}))).await;
    let sts = create(
        &h,
        "/apis/apps/v1/namespaces/default/statefulsets",
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
            "spec": {"replicas": 3, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}),
    )
    .await;
    create(
        &h,
        PODS,
        owned_pod("db-0", "db", &sts, "StatefulSet", "apps/v1"),
    )
    .await;
    create(&h, PDBS, pdb("db", "db", json!({"minAvailable": "60%"}))).await;
    h.settled().await;
    assert_eq!(
        budget(&h, "api").await,
        t(5, 4, 2, 0, "False", "InsufficientPods")
    );
    assert_eq!(
        budget(&h, "db").await,
        t(3, 2, 1, 0, "False", "InsufficientPods")
    );
    // minAvailable 2 of the 3 matching pods; percentages and maxUnavailable of the scale, 4.
    assert_eq!(
        budget(&h, "min-int").await,
        t(3, 2, 3, 1, "True", "SufficientPods")
    );
    assert_eq!(
        budget(&h, "min-pct").await,
        t(4, 2, 3, 1, "True", "SufficientPods")
    );
    assert_eq!(
        budget(&h, "max-int").await,
        t(4, 3, 3, 0, "False", "InsufficientPods")
    );
    assert_eq!(
        budget(&h, "max-pct").await,
        t(4, 2, 3, 1, "True", "SufficientPods")
    );
    assert_eq!(
        budget(&h, "nothing").await,
        t(0, 1, 0, 0, "False", "InsufficientPods")
    );

    // A pod not ready counts out; a larger scale raises what is expected.
    set_ready(&h, "web-a", false).await;
    patch_ok(
        &h,
        "/apis/apps/v1/namespaces/default/replicasets/web",
        MERGE,
        json!({"spec": {"replicas": 6}}),
    )
    .await;
    h.settled().await;
    assert_eq!(
        budget(&h, "min-int").await,
        t(3, 2, 2, 0, "False", "InsufficientPods")
    );
    assert_eq!(
        budget(&h, "min-pct").await,
        t(6, 3, 2, 0, "False", "InsufficientPods")
    );
    assert_eq!(
        budget(&h, "max-pct").await,
        t(6, 3, 2, 0, "False", "InsufficientPods")
    );

    // A changed spec is a new generation, observed.
    patch_ok(
        &h,
        &format!("{PDBS}/min-int"),
        MERGE,
        json!({"spec": {"minAvailable": 1}}),
    )
    .await;
    h.settled().await;
    assert_eq!(
        budget(&h, "min-int").await,
        t(3, 1, 2, 1, "True", "SufficientPods")
    );
    let b = must(&h, &format!("{PDBS}/min-int")).await;
    assert_eq!(b["metadata"]["generation"], 2);
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_deployments_pods_fill_its_service_and_its_budget_follows_its_scale() {
    let h = server().await;
    create(
        &h,
        "/apis/apps/v1/namespaces/default/deployments",
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                    {"name": "c", "image": "nginx", "ports": [{"name": "http", "containerPort": 8080}]}]}}}}),
    )
    .await;
    create(&h, SVCS, service("web", "web")).await;
    create(
        &h,
        PDBS,
        pdb("web", "web", json!({"maxUnavailable": "25%"})),
    )
    .await;
    h.settled().await;
    let ep = must(&h, &format!("{EPS}/web")).await;
    assert_eq!(addresses(&ep, "addresses").len(), 3, "{ep:#}");
    let eps = slice_endpoints(&slices(&h, "web").await);
    assert_eq!(eps.len(), 3);
    assert!(eps.iter().all(|e| e.1 && e.2 && !e.3), "{eps:?}");
    // 25% of 3, rounded up: one may go.
    assert_eq!(
        budget(&h, "web").await,
        t(3, 2, 3, 1, "True", "SufficientPods")
    );

    patch_ok(
        &h,
        "/apis/apps/v1/namespaces/default/deployments/web",
        MERGE,
        json!({"spec": {"replicas": 5}}),
    )
    .await;
    h.settled().await;
    let ep = must(&h, &format!("{EPS}/web")).await;
    assert_eq!(addresses(&ep, "addresses").len(), 5);
    assert_eq!(slice_endpoints(&slices(&h, "web").await).len(), 5);
    assert_eq!(
        budget(&h, "web").await,
        t(5, 3, 5, 2, "True", "SufficientPods")
    );
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn budgets_over_pods_whose_controller_has_no_scale_fail_safe() {
    let h = server().await;
    let cm = create(
        &h,
        "/api/v1/namespaces/default/configmaps",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner"}}),
    )
    .await;
    create(&h, PODS, owned_pod("odd-0", "odd", &cm, "ConfigMap", "v1")).await;
    create(&h, PDBS, pdb("odd", "odd", json!({"maxUnavailable": 1}))).await;
    // With a numeric minAvailable the scale is not needed.
    create(&h, PDBS, pdb("odd-min", "odd", json!({"minAvailable": 1}))).await;
    h.settled().await;
    let b = must(&h, &format!("{PDBS}/odd")).await;
    assert_eq!(b["status"]["disruptionsAllowed"], 0);
    let c = &b["status"]["conditions"][0];
    assert_eq!(c["type"], "DisruptionAllowed");
    assert_eq!(c["status"], "False");
    assert_eq!(c["reason"], "SyncFailed");
    assert_eq!(
        c["message"],
        "configmaps does not implement the scale subresource"
    );
    assert_eq!(
        budget(&h, "odd-min").await,
        t(1, 1, 1, 0, "False", "InsufficientPods")
    );
    h.shutdown().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Pod garbage collection.

#[tokio::test]
async fn pods_of_a_deleted_node_are_deleted_after_the_quarantine() {
    let clock = ManualClock::default();
    let h = Server::builder()
        .memory()
        .nodes(2)
        .clock(Arc::new(clock.clone()))
        .start()
        .await
        .unwrap();
    let mut p = pod("stranded", "x", false);
    p["spec"]["nodeName"] = json!("kubox-node-1");
    create(&h, PODS, p).await;
    let mut held = pod("held", "x", false);
    held["spec"]["nodeName"] = json!("kubox-node-1");
    held["metadata"]["finalizers"] = json!(["example.com/hold"]);
    create(&h, PODS, held).await;
    let mut safe = pod("safe", "x", false);
    safe["spec"]["nodeName"] = json!("kubox-node-0");
    create(&h, PODS, safe).await;
    h.settled().await;
    assert_eq!(
        must(&h, &format!("{PODS}/stranded")).await["status"]["phase"],
        "Running"
    );

    delete(&h, "/api/v1/nodes/kubox-node-1").await;
    h.settled().await;
    clock.advance(Duration::from_secs(39));
    h.settled().await;
    assert!(read(&h, &format!("{PODS}/stranded")).await.is_some());
    clock.advance(Duration::from_secs(2));
    h.settled().await;
    assert!(read(&h, &format!("{PODS}/stranded")).await.is_none());
    assert!(read(&h, &format!("{PODS}/safe")).await.is_some());
    // Marked Failed with kube's condition before the forced deletion its finalizer holds.
    let held = must(&h, &format!("{PODS}/held")).await;
    assert_eq!(held["status"]["phase"], "Failed");
    assert!(held["metadata"]["deletionTimestamp"].is_string());
    let c = held["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "DisruptionTarget")
        .unwrap()
        .clone();
    assert_eq!(c["status"], "True");
    assert_eq!(c["reason"], "DeletionByPodGC");
    assert_eq!(c["message"], "PodGC: node no longer exists");
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn pods_bound_to_a_node_that_never_existed_wait_out_the_quarantine_too() {
    let clock = ManualClock::default();
    let h = Server::builder()
        .memory()
        .nodes(1)
        .clock(Arc::new(clock.clone()))
        .start()
        .await
        .unwrap();
    let mut p = pod("ghostly", "x", false);
    p["spec"]["nodeName"] = json!("ghost");
    create(&h, PODS, p).await;
    h.settled().await;
    clock.advance(Duration::from_secs(20));
    h.settled().await;
    assert!(read(&h, &format!("{PODS}/ghostly")).await.is_some());
    clock.advance(Duration::from_secs(20));
    h.settled().await;
    assert!(read(&h, &format!("{PODS}/ghostly")).await.is_none());
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn unscheduled_terminating_pods_are_failed_and_deleted_at_once() {
    let h = server().await;
    let mut p = pod("pending", "x", false);
    p["spec"]["nodeSelector"] = json!({"kubox.dev/nowhere": "true"});
    p["metadata"]["finalizers"] = json!(["example.com/hold"]);
    create(&h, PODS, p).await;
    h.settled().await;
    let before = must(&h, &format!("{PODS}/pending")).await;
    assert!(before["spec"]["nodeName"].is_null());
    assert_eq!(before["status"]["phase"], "Pending");
    delete(&h, &format!("{PODS}/pending")).await;
    h.settled().await;
    let after = must(&h, &format!("{PODS}/pending")).await;
    assert_eq!(after["status"]["phase"], "Failed");
    assert_eq!(after["metadata"]["deletionGracePeriodSeconds"], 0);
    patch_ok(
        &h,
        &format!("{PODS}/pending"),
        MERGE,
        json!({"metadata": {"finalizers": null}}),
    )
    .await;
    h.settled().await;
    assert!(read(&h, &format!("{PODS}/pending")).await.is_none());
    h.shutdown().await.unwrap();
}
