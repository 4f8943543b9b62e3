//! The built-in controllers through the API: garbage collection in every propagation mode,
//! namespace lifecycle, default ServiceAccount and root CA, event expiry on a manual clock, and
//! switching controllers off. `settled()` replaces every sleep.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{configmap, get, patch, post_json, send, Resp, Server, ServerHandle, CM};
use http::Method;
use kubox::{Controller, ControllerSet, ManualClock};
use serde_json::{json, Value};

const NS: &str = "/api/v1/namespaces";

async fn create_ns(h: &ServerHandle, name: &str) {
    let r = post_json(
        h,
        NS,
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
    )
    .await;
    assert_eq!(
        r.status.as_u16(),
        201,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
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

async fn exists(h: &ServerHandle, path: &str) -> bool {
    let r = get(h, path).await;
    match r.status.as_u16() {
        200 => true,
        404 => false,
        c => panic!("GET {path}: {c} {}", String::from_utf8_lossy(&r.body)),
    }
}

async fn delete(h: &ServerHandle, path: &str) -> Resp {
    let r = send(h, Method::DELETE, path, "", "").await;
    assert!(
        r.status.is_success(),
        "DELETE {path}: {} {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
    r
}

fn owner_ref(owner: &Value, block: bool) -> Value {
    json!({
        "apiVersion": owner["apiVersion"], "kind": owner["kind"],
        "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
        "controller": true, "blockOwnerDeletion": block,
    })
}

fn owned_configmap(name: &str, owners: &[Value]) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "ownerReferences": owners}})
}

fn deployment(name: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})
}

fn replicaset(name: &str, owner: &Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name, "ownerReferences": [owner_ref(owner, true)]},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})
}

fn pod(name: &str, owner: &Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "web"}, "ownerReferences": [owner_ref(owner, true)]},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
}

const DEPLOYS: &str = "/apis/apps/v1/namespaces/default/deployments";
const RSS: &str = "/apis/apps/v1/namespaces/default/replicasets";
const PODS: &str = "/api/v1/namespaces/default/pods";

/// Deployment web → ReplicaSet web-1 → Pods web-1-a, web-1-b (blockOwnerDeletion everywhere).
async fn chain(h: &ServerHandle) {
    let d = create(h, DEPLOYS, deployment("web")).await;
    let rs = create(h, RSS, replicaset("web-1", &d)).await;
    create(h, PODS, pod("web-1-a", &rs)).await;
    create(h, PODS, pod("web-1-b", &rs)).await;
}

async fn chain_left(h: &ServerHandle) -> [bool; 4] {
    [
        exists(h, &format!("{DEPLOYS}/web")).await,
        exists(h, &format!("{RSS}/web-1")).await,
        exists(h, &format!("{PODS}/web-1-a")).await,
        exists(h, &format!("{PODS}/web-1-b")).await,
    ]
}

/// Every controller runs (common::server() leaves the serviceaccount controller off).
async fn server() -> ServerHandle {
    Server::builder().memory().start().await.unwrap()
}

#[tokio::test]
async fn settled_returns_on_an_idle_server() {
    let h = server().await;
    h.settled().await;
    h.settled().await;
    assert_eq!(h.controllers().running(), Controller::CORE.to_vec());
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn background_deletion_removes_the_whole_chain_after_the_owner() {
    let h = server().await;
    chain(&h).await;
    h.settled().await;
    assert_eq!(
        chain_left(&h).await,
        [true; 4],
        "owned objects with live owners stay"
    );
    let r = delete(&h, &format!("{DEPLOYS}/web?propagationPolicy=Background")).await;
    assert_eq!(
        r.json()["kind"],
        "Status",
        "background deletion removes the owner at once"
    );
    h.settled().await;
    assert_eq!(chain_left(&h).await, [false; 4]);
}

#[tokio::test]
async fn foreground_deletion_keeps_the_owner_until_blocking_dependents_are_gone() {
    let h = server().await;
    chain(&h).await;
    // A pod held by a finalizer keeps the whole chain waiting.
    patch(
        &h,
        &format!("{PODS}/web-1-a"),
        "application/merge-patch+json",
        r#"{"metadata":{"finalizers":["example.com/hold"]}}"#,
    )
    .await;
    let r = send(
        &h,
        Method::DELETE,
        &format!("{DEPLOYS}/web"),
        "application/json",
        r#"{"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Foreground"}"#,
    )
    .await;
    let d = r.json();
    assert_eq!(
        d["metadata"]["finalizers"],
        json!(["foregroundDeletion"]),
        "{d}"
    );
    assert!(d["metadata"]["deletionTimestamp"].is_string());
    h.settled().await;
    assert_eq!(chain_left(&h).await, [true, true, true, false]);
    let rs = get(&h, &format!("{RSS}/web-1")).await.json();
    assert_eq!(
        rs["metadata"]["finalizers"],
        json!(["foregroundDeletion"]),
        "dependents with dependents go in foreground too"
    );
    let held = get(&h, &format!("{PODS}/web-1-a")).await.json();
    assert!(held["metadata"]["deletionTimestamp"].is_string());
    patch(
        &h,
        &format!("{PODS}/web-1-a"),
        "application/merge-patch+json",
        r#"{"metadata":{"finalizers":null}}"#,
    )
    .await;
    h.settled().await;
    assert_eq!(chain_left(&h).await, [false; 4]);
}

#[tokio::test]
async fn foreground_owner_does_not_wait_for_non_blocking_dependents() {
    let h = server().await;
    let owner = create(&h, CM, configmap("owner")).await;
    let mut held = owned_configmap("held", &[owner_ref(&owner, false)]);
    held["metadata"]["finalizers"] = json!(["example.com/hold"]);
    create(&h, CM, held).await;
    delete(&h, &format!("{CM}/owner?propagationPolicy=Foreground")).await;
    h.settled().await;
    assert!(!exists(&h, &format!("{CM}/owner")).await);
    let held = get(&h, &format!("{CM}/held")).await.json();
    assert!(
        held["metadata"]["deletionTimestamp"].is_string(),
        "the dependent is being deleted: {held}"
    );
}

#[tokio::test]
async fn orphan_deletion_removes_the_owner_reference_and_keeps_the_dependents() {
    let h = server().await;
    chain(&h).await;
    let other = create(&h, CM, configmap("other-owner")).await;
    let rs = get(&h, &format!("{RSS}/web-1")).await.json();
    let mut two = owned_configmap(
        "two-owners",
        &[owner_ref(&rs, true), owner_ref(&other, false)],
    );
    two["metadata"]["ownerReferences"][1]["controller"] = json!(false);
    create(&h, CM, two).await;
    let r = delete(&h, &format!("{RSS}/web-1?propagationPolicy=Orphan")).await;
    assert_eq!(r.json()["metadata"]["finalizers"], json!(["orphan"]));
    h.settled().await;
    assert_eq!(chain_left(&h).await, [true, false, true, true]);
    for p in ["web-1-a", "web-1-b"] {
        let pod = get(&h, &format!("{PODS}/{p}")).await.json();
        assert!(pod["metadata"].get("ownerReferences").is_none(), "{pod}");
    }
    let two = get(&h, &format!("{CM}/two-owners")).await.json();
    let refs = two["metadata"]["ownerReferences"].as_array().unwrap();
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0]["uid"], other["metadata"]["uid"]);
}

#[tokio::test]
async fn jobs_orphan_by_default_and_replication_controllers_too() {
    let h = server().await;
    let job = create(
        &h,
        "/apis/batch/v1/namespaces/default/jobs",
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}),
    )
    .await;
    create(&h, PODS, pod("j-pod", &job)).await;
    let r = delete(&h, "/apis/batch/v1/namespaces/default/jobs/j").await;
    assert_eq!(r.json()["metadata"]["finalizers"], json!(["orphan"]));
    h.settled().await;
    assert!(!exists(&h, "/apis/batch/v1/namespaces/default/jobs/j").await);
    let p = get(&h, &format!("{PODS}/j-pod")).await.json();
    assert!(p["metadata"].get("ownerReferences").is_none(), "{p}");
    // Explicit Background cascades.
    let job = create(
        &h,
        "/apis/batch/v1/namespaces/default/jobs",
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "k"},
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}),
    )
    .await;
    create(&h, PODS, pod("k-pod", &job)).await;
    delete(
        &h,
        "/apis/batch/v1/namespaces/default/jobs/k?propagationPolicy=Background",
    )
    .await;
    h.settled().await;
    assert!(!exists(&h, &format!("{PODS}/k-pod")).await);
    // core/v1 ReplicationControllers orphan by default too.
    let rc = create(
        &h,
        "/api/v1/namespaces/default/replicationcontrollers",
        json!({"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "rc"},
            "spec": {"replicas": 1, "selector": {"app": "web"},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}),
    )
    .await;
    create(&h, PODS, pod("rc-pod", &rc)).await;
    let r = delete(&h, "/api/v1/namespaces/default/replicationcontrollers/rc").await;
    assert_eq!(r.json()["metadata"]["finalizers"], json!(["orphan"]));
    h.settled().await;
    let p = get(&h, &format!("{PODS}/rc-pod")).await.json();
    assert!(p["metadata"].get("ownerReferences").is_none(), "{p}");
}

#[tokio::test]
async fn delete_options_reject_both_orphan_flags() {
    let h = server().await;
    create(&h, CM, configmap("x")).await;
    let r = send(
        &h,
        Method::DELETE,
        &format!("{CM}/x?propagationPolicy=Orphan&orphanDependents=true"),
        "",
        "",
    )
    .await;
    r.status_failure(422, "Invalid");
}

#[tokio::test]
async fn dangling_references_are_cleaned_up() {
    let h = server().await;
    let ghost = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ghost", "uid": "00000000-0000-0000-0000-000000000001"}});
    let live = create(&h, CM, configmap("live")).await;
    create(
        &h,
        CM,
        owned_configmap("orphaned", &[owner_ref(&ghost, false)]),
    )
    .await;
    let mut mixed = owned_configmap(
        "mixed",
        &[owner_ref(&ghost, false), owner_ref(&live, false)],
    );
    mixed["metadata"]["ownerReferences"][1]["controller"] = json!(false);
    create(&h, CM, mixed).await;
    // A reference to the right name but another uid dangles too.
    let mut stale = live.clone();
    stale["metadata"]["uid"] = json!("00000000-0000-0000-0000-000000000002");
    create(
        &h,
        CM,
        owned_configmap("stale", &[owner_ref(&stale, false)]),
    )
    .await;
    // A kind nobody serves cannot be resolved: left alone.
    let unknown = json!({"apiVersion": "nowhere.example.com/v1", "kind": "Thing", "metadata": {"name": "t", "uid": "00000000-0000-0000-0000-000000000003"}});
    create(
        &h,
        CM,
        owned_configmap("unresolvable", &[owner_ref(&unknown, false)]),
    )
    .await;
    h.settled().await;
    assert!(!exists(&h, &format!("{CM}/orphaned")).await);
    assert!(!exists(&h, &format!("{CM}/stale")).await);
    assert!(exists(&h, &format!("{CM}/unresolvable")).await);
    let mixed = get(&h, &format!("{CM}/mixed")).await.json();
    let refs = mixed["metadata"]["ownerReferences"].as_array().unwrap();
    assert_eq!(refs.len(), 1, "{mixed}");
    assert_eq!(refs[0]["uid"], live["metadata"]["uid"]);
}

#[tokio::test]
async fn cluster_scoped_owners_and_custom_resources_own_objects() {
    let h = server().await;
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "stacks.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "stacks", "singular": "stack", "kind": "Stack"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
    });
    create(
        &h,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        crd,
    )
    .await;
    const STACKS: &str = "/apis/example.com/v1/namespaces/default/stacks";
    let stack = create(
        &h,
        STACKS,
        json!({"apiVersion": "example.com/v1", "kind": "Stack", "metadata": {"name": "s"}}),
    )
    .await;
    let role = create(
        &h,
        "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "owner-role"}, "rules": []}),
    )
    .await;
    create(
        &h,
        CM,
        owned_configmap("of-stack", &[owner_ref(&stack, true)]),
    )
    .await;
    create(
        &h,
        CM,
        owned_configmap("of-role", &[owner_ref(&role, true)]),
    )
    .await;
    // A custom resource owned by a custom resource, in foreground.
    let child = create(&h, STACKS, json!({"apiVersion": "example.com/v1", "kind": "Stack", "metadata": {"name": "child", "ownerReferences": [owner_ref(&stack, true)]}})).await;
    create(
        &h,
        CM,
        owned_configmap("of-child", &[owner_ref(&child, true)]),
    )
    .await;
    h.settled().await;
    delete(&h, &format!("{STACKS}/s?propagationPolicy=Foreground")).await;
    delete(
        &h,
        "/apis/rbac.authorization.k8s.io/v1/clusterroles/owner-role",
    )
    .await;
    h.settled().await;
    for name in ["of-stack", "of-role", "of-child"] {
        assert!(!exists(&h, &format!("{CM}/{name}")).await, "{name}");
    }
    assert!(!exists(&h, &format!("{STACKS}/s")).await);
    assert!(!exists(&h, &format!("{STACKS}/child")).await);
}

#[tokio::test]
async fn namespace_deletion_empties_the_namespace_then_removes_it() {
    let h = server().await;
    create_ns(&h, "doomed").await;
    const DCM: &str = "/api/v1/namespaces/doomed/configmaps";
    for i in 0..5 {
        create(&h, DCM, configmap(&format!("cm-{i}"))).await;
    }
    let mut held = configmap("held");
    held["metadata"]["finalizers"] = json!(["example.com/hold"]);
    create(&h, DCM, held).await;
    h.settled().await;
    let r = delete(&h, &format!("{NS}/doomed")).await;
    let ns = r.json();
    assert_eq!(ns["status"]["phase"], "Terminating");
    assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
    h.settled().await;
    let ns = get(&h, &format!("{NS}/doomed")).await.json();
    let cond = |ty: &str| {
        ns["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == ty)
            .cloned()
            .unwrap_or_else(|| panic!("no {ty} in {ns}"))
    };
    assert_eq!(
        cond("NamespaceContentRemaining")["reason"],
        "SomeResourcesRemain"
    );
    assert_eq!(
        cond("NamespaceContentRemaining")["message"],
        "Some resources are remaining: configmaps. has 1 resource instances"
    );
    assert_eq!(
        cond("NamespaceFinalizersRemaining")["message"],
        "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
    );
    assert_eq!(cond("NamespaceDeletionDiscoveryFailure")["status"], "False");
    assert_eq!(
        cond("NamespaceDeletionContentFailure")["reason"],
        "ContentDeleted"
    );
    let list = get(&h, DCM).await.json();
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["held"],
        "the default ServiceAccount's ConfigMap and the rest are gone"
    );
    assert!(!exists(&h, "/api/v1/namespaces/doomed/serviceaccounts/default").await);
    // New content is refused while Terminating.
    post_json(&h, DCM, &configmap("late"))
        .await
        .status_failure(403, "Forbidden");
    // A second DELETE answers the namespace, still waiting.
    assert_eq!(
        delete(&h, &format!("{NS}/doomed")).await.json()["status"]["phase"],
        "Terminating"
    );
    patch(
        &h,
        &format!("{DCM}/held"),
        "application/merge-patch+json",
        r#"{"metadata":{"finalizers":null}}"#,
    )
    .await;
    h.settled().await;
    assert!(!exists(&h, &format!("{NS}/doomed")).await);
}

#[tokio::test]
async fn namespace_deletion_reaches_custom_resources_and_waits_for_an_orphan_finalizer() {
    let h = server().await;
    create_ns(&h, "crs").await;
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gizmos.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "gizmos", "singular": "gizmo", "kind": "Gizmo"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
    });
    create(
        &h,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        crd,
    )
    .await;
    create(
        &h,
        "/apis/example.com/v1/namespaces/crs/gizmos",
        json!({"apiVersion": "example.com/v1", "kind": "Gizmo", "metadata": {"name": "g"}}),
    )
    .await;
    let r = delete(&h, &format!("{NS}/crs?propagationPolicy=Orphan")).await;
    assert_eq!(r.json()["metadata"]["finalizers"], json!(["orphan"]));
    h.settled().await;
    assert!(!exists(&h, &format!("{NS}/crs")).await);
    assert!(!exists(&h, "/apis/example.com/v1/namespaces/crs/gizmos/g").await);
}

#[tokio::test]
async fn every_namespace_gets_a_default_service_account_and_the_root_ca() {
    let h = server().await;
    create_ns(&h, "fresh").await;
    h.settled().await;
    for ns in [
        "default",
        "kube-system",
        "kube-public",
        "kube-node-lease",
        "fresh",
    ] {
        let sa = get(&h, &format!("{NS}/{ns}/serviceaccounts/default")).await;
        assert_eq!(sa.status.as_u16(), 200, "{ns}");
        let cm = get(&h, &format!("{NS}/{ns}/configmaps/kube-root-ca.crt"))
            .await
            .json();
        assert_eq!(
            cm["data"],
            json!({"ca.crt": h.ca_pem()}),
            "the server's CA: {cm}"
        );
        assert!(cm["metadata"]["annotations"]["kubernetes.io/description"]
            .as_str()
            .unwrap()
            .starts_with("Contains a CA bundle"));
    }
    // Deleted or edited, they come back.
    delete(&h, &format!("{NS}/fresh/serviceaccounts/default")).await;
    patch(
        &h,
        &format!("{NS}/fresh/configmaps/kube-root-ca.crt"),
        "application/merge-patch+json",
        r#"{"data":{"ca.crt":"tampered"}}"#,
    )
    .await;
    h.settled().await;
    assert!(exists(&h, &format!("{NS}/fresh/serviceaccounts/default")).await);
    let cm = get(&h, &format!("{NS}/fresh/configmaps/kube-root-ca.crt"))
        .await
        .json();
    assert_eq!(cm["data"]["ca.crt"], h.ca_pem());
    delete(&h, &format!("{NS}/fresh/configmaps/kube-root-ca.crt")).await;
    h.settled().await;
    assert!(exists(&h, &format!("{NS}/fresh/configmaps/kube-root-ca.crt")).await);
}

fn core_event(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": name},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
        "reason": "Test", "message": "m", "type": "Normal", "count": 1})
}

#[tokio::test]
async fn events_expire_after_the_ttl_on_a_manual_clock() {
    let clock = ManualClock::default();
    let h = Server::builder()
        .memory()
        .clock(Arc::new(clock.clone()))
        .start()
        .await
        .unwrap();
    create(&h, "/api/v1/namespaces/default/events", core_event("old")).await;
    let ev = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "new"},
        "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "ctrl", "reportingInstance": "ctrl-1",
        "action": "Act", "reason": "Test", "type": "Normal", "regarding": {"kind": "Pod", "name": "p", "namespace": "default"}});
    create(&h, "/apis/events.k8s.io/v1/namespaces/default/events", ev).await;
    h.settled().await;
    clock.advance(Duration::from_secs(30 * 60));
    // Updating an Event does not restart its TTL (it runs from creation).
    patch(
        &h,
        "/api/v1/namespaces/default/events/old",
        "application/merge-patch+json",
        r#"{"count":2}"#,
    )
    .await;
    create(
        &h,
        "/api/v1/namespaces/default/events",
        core_event("younger"),
    )
    .await;
    clock.advance(Duration::from_secs(29 * 60));
    h.settled().await;
    assert!(exists(&h, "/api/v1/namespaces/default/events/old").await);
    assert!(exists(&h, "/apis/events.k8s.io/v1/namespaces/default/events/new").await);
    clock.advance(Duration::from_secs(2 * 60));
    h.settled().await;
    assert!(!exists(&h, "/api/v1/namespaces/default/events/old").await);
    assert!(!exists(&h, "/apis/events.k8s.io/v1/namespaces/default/events/new").await);
    assert!(exists(&h, "/api/v1/namespaces/default/events/younger").await);
    clock.advance(Duration::from_secs(30 * 60));
    h.settled().await;
    assert!(!exists(&h, "/api/v1/namespaces/default/events/younger").await);
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_event_ttl_is_configurable() {
    let clock = ManualClock::default();
    let h = Server::builder()
        .memory()
        .clock(Arc::new(clock.clone()))
        .event_ttl(Duration::from_secs(60))
        .start()
        .await
        .unwrap();
    create(&h, "/api/v1/namespaces/default/events", core_event("brief")).await;
    h.settled().await;
    clock.advance(Duration::from_secs(61));
    h.settled().await;
    assert!(!exists(&h, "/api/v1/namespaces/default/events/brief").await);
}

/// How far each controller has observed the store.
fn observed(h: &ServerHandle) -> std::collections::BTreeMap<Controller, i64> {
    h.controllers()
        .progress()
        .into_iter()
        .map(|(c, p)| (c, p.observed))
        .collect()
}

fn revision_of(obj: &Value) -> i64 {
    obj["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_change_reaches_only_the_controllers_that_follow_its_resource() {
    let h = server().await;
    h.settled().await;
    let before = observed(&h);
    // A ConfigMap other than the root CA's: only the garbage collector follows every object.
    let cm = create(&h, CM, configmap("plain")).await;
    h.settled().await;
    let after = observed(&h);
    assert!(after[&Controller::GarbageCollector] >= revision_of(&cm));
    for c in [
        Controller::Namespace,
        Controller::ServiceAccount,
        Controller::ServiceAccountToken,
        Controller::EventTtl,
    ] {
        assert_eq!(after[&c], before[&c], "{c} was sent a ConfigMap: {after:?}");
    }
    // An Event goes to event expiry; a Secret to the token controller.
    let ev = create(
        &h,
        "/api/v1/namespaces/default/events",
        json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"},
               "involvedObject": {"kind": "ConfigMap", "name": "plain", "namespace": "default"}}),
    )
    .await;
    let secret = create(
        &h,
        "/api/v1/namespaces/default/secrets",
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}),
    )
    .await;
    h.settled().await;
    let now = observed(&h);
    assert!(now[&Controller::EventTtl] >= revision_of(&ev), "{now:?}");
    assert!(
        now[&Controller::ServiceAccountToken] >= revision_of(&secret),
        "{now:?}"
    );
    assert_eq!(
        now[&Controller::ServiceAccount],
        before[&Controller::ServiceAccount]
    );
    // The root CA's ConfigMap is the service account controller's: deleted, it comes back.
    delete(&h, "/api/v1/namespaces/default/configmaps/kube-root-ca.crt").await;
    h.settled().await;
    assert!(exists(&h, "/api/v1/namespaces/default/configmaps/kube-root-ca.crt").await);
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn while_a_namespace_terminates_its_controller_follows_the_content_too() {
    let h = server().await;
    create_ns(&h, "going").await;
    h.settled().await;
    // A finalizer nobody removes holds the content, and so the namespace.
    create(
        &h,
        "/api/v1/namespaces/going/configmaps",
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "held", "finalizers": ["example.com/hold"]}}),
    )
    .await;
    delete(&h, &format!("{NS}/going")).await;
    h.settled().await;
    assert!(exists(&h, &format!("{NS}/going")).await);
    // Unrelated content elsewhere is now sent to it as well; releasing the finalizer is seen.
    let elsewhere = create(&h, CM, configmap("elsewhere")).await;
    h.settled().await;
    assert!(observed(&h)[&Controller::Namespace] >= revision_of(&elsewhere));
    let r = patch(
        &h,
        "/api/v1/namespaces/going/configmaps/held",
        "application/merge-patch+json",
        &json!({"metadata": {"finalizers": null}}).to_string(),
    )
    .await;
    assert_eq!(
        r.status.as_u16(),
        200,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    h.settled().await;
    assert!(!exists(&h, &format!("{NS}/going")).await);
    // Nothing terminates any more: a ConfigMap is not its business again.
    let before = observed(&h)[&Controller::Namespace];
    create(&h, CM, configmap("later")).await;
    h.settled().await;
    assert_eq!(observed(&h)[&Controller::Namespace], before);
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn controllers_can_be_switched_off() {
    let h = Server::builder()
        .memory()
        .controllers(ControllerSet::parse("*,-garbage-collector,-namespace").unwrap())
        .disable_controller(Controller::ServiceAccount)
        .start()
        .await
        .unwrap();
    assert_eq!(
        h.controllers().running(),
        [Controller::ServiceAccountToken, Controller::EventTtl]
    );
    create_ns(&h, "quiet").await;
    let owner = create(
        &h,
        "/api/v1/namespaces/quiet/configmaps",
        configmap("owner"),
    )
    .await;
    create(
        &h,
        "/api/v1/namespaces/quiet/configmaps",
        owned_configmap("dep", &[owner_ref(&owner, true)]),
    )
    .await;
    // Without a garbage collector, DELETE adds no GC finalizer (nobody would remove it).
    let r = delete(
        &h,
        "/api/v1/namespaces/quiet/configmaps/owner?propagationPolicy=Foreground",
    )
    .await;
    assert_eq!(r.json()["kind"], "Status");
    delete(&h, &format!("{NS}/quiet")).await;
    h.settled().await;
    assert!(exists(&h, "/api/v1/namespaces/quiet/configmaps/dep").await);
    assert!(!exists(&h, "/api/v1/namespaces/quiet/serviceaccounts/default").await);
    let ns = get(&h, &format!("{NS}/quiet")).await.json();
    assert_eq!(
        ns["status"]["phase"], "Terminating",
        "no namespace controller: it stays"
    );

    let none = Server::builder()
        .memory()
        .controllers(ControllerSet::none())
        .start()
        .await
        .unwrap();
    assert!(none.controllers().running().is_empty());
    none.settled().await;
}

#[tokio::test]
async fn controllers_pick_up_state_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let h = Server::builder()
        .sled(dir.path())
        .controllers(ControllerSet::none())
        .start()
        .await
        .unwrap();
    create_ns(&h, "later").await;
    let owner = create(
        &h,
        "/api/v1/namespaces/later/configmaps",
        configmap("owner"),
    )
    .await;
    create(
        &h,
        "/api/v1/namespaces/later/configmaps",
        owned_configmap("dep", &[owner_ref(&owner, true)]),
    )
    .await;
    delete(&h, "/api/v1/namespaces/later/configmaps/owner").await;
    h.shutdown().await.unwrap();
    let h = Server::builder().sled(dir.path()).start().await.unwrap();
    h.settled().await;
    assert!(
        !exists(&h, "/api/v1/namespaces/later/configmaps/dep").await,
        "dangling after restart"
    );
    assert!(exists(&h, "/api/v1/namespaces/later/serviceaccounts/default").await);
    h.shutdown().await.unwrap();
}

#[test]
fn the_cli_takes_kube_controller_manager_syntax() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let kubox = env!("CARGO_BIN_EXE_kubox");
    for (flag, complaint) in [
        (
            "--controllers=*,-bogus",
            "not in the list of known controllers",
        ),
        ("--event-ttl=soon", "invalid duration"),
    ] {
        let out = Command::new(kubox)
            .args([
                "serve",
                "--storage",
                "memory",
                "--listen",
                "127.0.0.1:0",
                flag,
            ])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{flag} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(complaint), "{flag}: {err}");
    }
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(kubox)
        .args(["serve", "--storage", "memory", "--listen", "127.0.0.1:0"])
        .args(["--controllers=*,-serviceaccount", "--event-ttl=1h30m"])
        .arg("--data-dir")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let first = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .next()
        .unwrap()
        .unwrap();
    assert!(first.contains("is serving"), "{first}");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn an_owner_kind_that_appears_later_is_resolved_when_its_crd_arrives() {
    let h = server().await;
    // The owner's kind is not served yet: the dependent is left alone.
    let later = json!({"apiVersion": "later.example.com/v1", "kind": "Later",
        "metadata": {"name": "gone-already", "uid": "00000000-0000-0000-0000-000000000009"}});
    create(
        &h,
        CM,
        owned_configmap("waits", &[owner_ref(&later, false)]),
    )
    .await;
    h.settled().await;
    assert!(exists(&h, &format!("{CM}/waits")).await);
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "laters.later.example.com"},
        "spec": {"group": "later.example.com", "scope": "Namespaced",
            "names": {"plural": "laters", "singular": "later", "kind": "Later"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
    });
    create(
        &h,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        crd,
    )
    .await;
    h.settled().await;
    assert!(
        !exists(&h, &format!("{CM}/waits")).await,
        "once the kind is served the owner is found absent"
    );
}
