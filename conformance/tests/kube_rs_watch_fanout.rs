//! Many watches of one resource through kube-rs, as controllers and kubelets open them: each gets
//! exactly the events of what it watches (a namespace, one object by name, the Pods of one node
//! through `spec.nodeName`), in order; a streaming list (`sendInitialEvents`) starts from the
//! current state; a watch from a resourceVersion taken before anyone watched still replays
//! what happened since.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, ListParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::watcher::{self, watcher, Event};
use kube::{Client, ResourceExt};
use kubox_conformance::{Backend, Target};
use serde_json::json;

/// Upper bound for any single wait on the server.
const WAIT: Duration = Duration::from_secs(30);

async fn setup(target: &Target) -> Client {
    let client = target.client().await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for name in [
        target.namespace.clone(),
        format!("{}-other", target.namespace),
    ] {
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name),
                ..Default::default()
            },
            ..Default::default()
        };
        namespaces
            .create(&PostParams::default(), &ns)
            .await
            .expect("namespace created");
    }
    client
}

fn pod(name: &str, node: Option<&str>) -> Pod {
    let mut spec = json!({"containers": [{"name": "c", "image": "busybox:1.36"}]});
    if let Some(node) = node {
        spec["nodeName"] = json!(node);
    }
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap()
}

type Changes = std::pin::Pin<Box<dyn Stream<Item = kube::Result<WatchEvent<Pod>>> + Send>>;

/// The next change (not a BOOKMARK), as "TYPE name".
async fn next_change(s: &mut Changes, what: &str) -> String {
    loop {
        let ev = tokio::time::timeout(WAIT, s.next())
            .await
            .unwrap_or_else(|_| panic!("no event in time: {what}"))
            .unwrap_or_else(|| panic!("watch ended: {what}"))
            .unwrap_or_else(|e| panic!("watch failed: {what}: {e}"));
        return match ev {
            WatchEvent::Added(o) => format!("ADDED {}", o.name_any()),
            WatchEvent::Modified(o) => format!("MODIFIED {}", o.name_any()),
            WatchEvent::Deleted(o) => format!("DELETED {}", o.name_any()),
            WatchEvent::Bookmark(_) => continue,
            WatchEvent::Error(e) => format!("ERROR {e:?}"),
        };
    }
}

async fn expect(s: &mut Changes, expected: &[&str], who: &str) {
    let mut got = Vec::new();
    for want in expected {
        got.push(next_change(s, &format!("{who}: {want}")).await);
    }
    assert_eq!(got, expected, "{who}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_watch_gets_exactly_what_it_watches() {
    let target = Target::start(Backend::Memory).await;
    let client = setup(&target).await;
    let ns = target.namespace.clone();
    let other_ns = format!("{ns}-other");
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let other: Api<Pod> = Api::namespaced(client.clone(), &other_ns);
    let all: Api<Pod> = Api::all(client.clone());
    let rv = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();

    let mut namespace_watches = Vec::new();
    for _ in 0..20 {
        namespace_watches.push(
            pods.watch(&WatchParams::default(), &rv)
                .await
                .unwrap()
                .boxed(),
        );
    }
    let by_name = WatchParams::default().fields("metadata.name=p1");
    let mut one: Changes = pods.watch(&by_name, &rv).await.unwrap().boxed();
    let by_node = WatchParams::default().fields("spec.nodeName=node-a");
    let mut node_a: Changes = all.watch(&by_node, &rv).await.unwrap().boxed();
    // The scheduler's watch: the Pods no node has yet.
    let unbound_pods = WatchParams::default().fields("spec.nodeName=");
    let mut unbound: Changes = all.watch(&unbound_pods, &rv).await.unwrap().boxed();

    let pp = PostParams::default();
    pods.create(&pp, &pod("p1", None)).await.unwrap();
    pods.create(&pp, &pod("p2", Some("node-a"))).await.unwrap();
    pods.create(&pp, &pod("p1-x", Some("node-b")))
        .await
        .unwrap();
    other.create(&pp, &pod("p1", Some("node-a"))).await.unwrap();
    // The scheduler's binding: p1 comes to node-a.
    let binding = json!({
        "apiVersion": "v1", "kind": "Binding",
        "metadata": {"name": "p1"},
        "target": {"apiVersion": "v1", "kind": "Node", "name": "node-a"},
    });
    pods.create_subresource::<serde_json::Value, serde_json::Value>("binding", "p1", &pp, &binding)
        .await
        .unwrap();
    pods.delete("p2", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();

    for (i, w) in namespace_watches.iter_mut().enumerate() {
        expect(
            w,
            &[
                "ADDED p1",
                "ADDED p2",
                "ADDED p1-x",
                "MODIFIED p1",
                "DELETED p2",
            ],
            &format!("namespace watch {i}"),
        )
        .await;
    }
    expect(&mut one, &["ADDED p1", "MODIFIED p1"], "watch of p1").await;
    // Every namespace's Pods on node-a: entering by creation or by binding, leaving by deletion.
    expect(
        &mut node_a,
        &["ADDED p2", "ADDED p1", "ADDED p1", "DELETED p2"],
        "watch of node-a",
    )
    .await;
    // Nothing more for the watch of p1: p1-x and the other namespace's p1 are not it.
    pods.create(&pp, &pod("p3", None)).await.unwrap();
    // Unbound Pods: p1 until its binding, then p3.
    expect(
        &mut unbound,
        &["ADDED p1", "DELETED p1", "ADDED p3"],
        "watch of unbound Pods",
    )
    .await;
    let quiet = tokio::time::timeout(Duration::from_millis(200), one.next()).await;
    assert!(
        quiet.is_err(),
        "the watch of p1 got {:?}",
        quiet.ok().flatten().map(|r| r.map(|e| format!("{e:?}")))
    );
    target.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streaming_list_starts_from_the_current_state() {
    let target = Target::start(Backend::Memory).await;
    let client = setup(&target).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &target.namespace);
    let pp = PostParams::default();
    let cm = |name: &str| -> ConfigMap {
        serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": name}})).unwrap()
    };
    for name in ["a", "b", "c"] {
        cms.create(&pp, &cm(name)).await.unwrap();
    }
    // sendInitialEvents=true&resourceVersionMatch=NotOlderThan: the initial objects, a BOOKMARK
    // that ends them (kube-rs's InitDone), then changes.
    let config = watcher::Config::default().streaming_lists();
    let mut events = watcher(cms.clone(), config).boxed();
    let mut initial = Vec::new();
    loop {
        let ev = tokio::time::timeout(WAIT, events.next())
            .await
            .expect("watcher event in time")
            .expect("watcher open")
            .expect("watcher event");
        match ev {
            Event::Init => {}
            Event::InitApply(o) => initial.push(o.name_any()),
            Event::InitDone => break,
            other => panic!("before InitDone: {other:?}"),
        }
    }
    initial.retain(|n| n != "kube-root-ca.crt");
    initial.sort();
    assert_eq!(initial, ["a", "b", "c"]);
    cms.create(&pp, &cm("d")).await.unwrap();
    let ev = tokio::time::timeout(WAIT, events.next())
        .await
        .expect("watcher event in time")
        .unwrap()
        .unwrap();
    match ev {
        Event::Apply(o) => assert_eq!(o.name_any(), "d"),
        other => panic!("expected Apply(d), got {other:?}"),
    }
    target.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_from_before_anyone_watched_replays_what_happened_since() {
    let target = Target::start(Backend::Memory).await;
    let client = setup(&target).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &target.namespace);
    let rv = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let pp = PostParams::default();
    for name in ["x", "y", "z"] {
        let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        cms.create(&pp, &cm).await.unwrap();
    }
    // Twice: the first watch starts the resource's cache after those writes; the second finds it.
    for round in 0..2 {
        let mut w = cms
            .watch(&WatchParams::default(), &rv)
            .await
            .unwrap()
            .boxed();
        let mut got = Vec::new();
        while got.len() < 3 {
            let ev = tokio::time::timeout(WAIT, w.next())
                .await
                .expect("event in time")
                .expect("watch open")
                .expect("event");
            match ev {
                WatchEvent::Added(o) if o.name_any() != "kube-root-ca.crt" => {
                    got.push(o.name_any())
                }
                WatchEvent::Added(_) | WatchEvent::Bookmark(_) => {}
                other => panic!("round {round}: {other:?}"),
            }
        }
        assert_eq!(got, ["x", "y", "z"], "round {round}");
    }
    target.stop().await;
}
