//! The built-in controllers through kube-rs: `DeleteParams` in each propagation mode on a
//! Deployment → ReplicaSet → Pod chain and on a custom resource owning ConfigMaps; a namespace
//! deleted to completion while a kube-rs controller releases finalizers; Event expiry on a
//! controllable clock (an in-process kubox with a `ManualClock`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::runtime::{conditions, wait::await_condition, watcher, WatchStreamExt};
use kube::{Client, Resource, ResourceExt};
use kubox::{ManualClock, Server};
use kubox_conformance::{Backend, Target};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

async fn setup(target: &Target) -> Client {
    let client = target.client().await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": target.namespace}})).unwrap(),
        )
        .await
        .unwrap();
    client
}

/// Wait (bounded) until the object with this uid is gone.
async fn gone<K>(api: &Api<K>, name: &str, uid: &str)
where
    K: Resource
        + Clone
        + k8s_openapi::serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + 'static,
{
    tokio::time::timeout(
        WAIT,
        await_condition(api.clone(), name, conditions::is_deleted(uid)),
    )
    .await
    .unwrap_or_else(|_| panic!("{name} is still there"))
    .unwrap();
}

fn owner_of<K: Resource<DynamicType = ()>>(o: &K) -> OwnerReference {
    let mut r = o.controller_owner_ref(&()).unwrap();
    r.block_owner_deletion = Some(true);
    r
}

struct Chain {
    deploy: Deployment,
    rs: ReplicaSet,
    pods: Vec<Pod>,
}

async fn chain(client: &Client, ns: &str) -> Chain {
    let pp = PostParams::default();
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let template = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}});
    let deploy = deploys
        .create(&pp, &serde_json::from_value(json!({
            "metadata": {"name": "web"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": template},
        })).unwrap())
        .await
        .unwrap();
    let rs = rss
        .create(&pp, &serde_json::from_value(json!({
            "metadata": {"name": "web-1", "ownerReferences": [owner_of(&deploy)]},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": template},
        })).unwrap())
        .await
        .unwrap();
    let mut made = Vec::new();
    for name in ["web-1-a", "web-1-b"] {
        made.push(
            pods.create(&pp, &serde_json::from_value(json!({
                "metadata": {"name": name, "labels": {"app": "web"}, "ownerReferences": [owner_of(&rs)]},
                "spec": template["spec"],
            })).unwrap())
            .await
            .unwrap(),
        );
    }
    Chain {
        deploy,
        rs,
        pods: made,
    }
}

fn uid<K: Resource>(o: &K) -> String {
    o.meta().uid.clone().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_params_choose_how_dependents_go() {
    let target = Target::start(Backend::Memory).await;
    let client = setup(&target).await;
    let ns = target.namespace.clone();
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);

    // Foreground: the owner answers with the finalizer, and goes after its dependents.
    let c = chain(&client, &ns).await;
    let answer = deploys
        .delete("web", &DeleteParams::foreground())
        .await
        .unwrap();
    let held = answer
        .left()
        .expect("a foreground delete answers the object");
    assert_eq!(held.finalizers(), ["foregroundDeletion"]);
    assert!(held.meta().deletion_timestamp.is_some());
    gone(&deploys, "web", &uid(&c.deploy)).await;
    assert!(rss.get_opt("web-1").await.unwrap().is_none());
    assert!(pods.get_opt("web-1-a").await.unwrap().is_none());

    // Background: the owner goes at once, the dependents follow.
    let c = chain(&client, &ns).await;
    let answer = deploys
        .delete("web", &DeleteParams::background())
        .await
        .unwrap();
    assert!(
        answer.is_right(),
        "a background delete of an owner without finalizers is final"
    );
    gone(&rss, "web-1", &uid(&c.rs)).await;
    for p in &c.pods {
        gone(&pods, &p.name_any(), &uid(p)).await;
    }

    // Orphan: the owner carries the orphan finalizer; the ReplicaSet stays, unowned.
    let c = chain(&client, &ns).await;
    let answer = deploys
        .delete("web", &DeleteParams::orphan())
        .await
        .unwrap();
    assert_eq!(answer.left().unwrap().finalizers(), ["orphan"]);
    gone(&deploys, "web", &uid(&c.deploy)).await;
    let rs = rss.get("web-1").await.unwrap();
    assert!(rs.owner_references().is_empty(), "{:?}", rs.metadata);
    assert_eq!(
        pods.get("web-1-a").await.unwrap().owner_references().len(),
        1
    );
    rss.delete("web-1", &DeleteParams::default()).await.unwrap();
    for p in &c.pods {
        gone(&pods, &p.name_any(), &uid(p)).await;
    }
    target.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_resource_owns_configmaps() {
    let target = Target::start(Backend::Memory).await;
    let client = setup(&target).await;
    let ns = target.namespace.clone();
    let crds: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
            "customresourcedefinitions",
        ),
    );
    let crd: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "owners.conformance.kubox.dev"},
        "spec": {"group": "conformance.kubox.dev", "scope": "Namespaced",
            "names": {"plural": "owners", "singular": "owner", "kind": "Owner"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
    }))
    .unwrap();
    crds.create(&PostParams::default(), &crd).await.unwrap();
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("conformance.kubox.dev", "v1", "Owner"),
        "owners",
    );
    let owners: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ar);
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let established = || async {
        for _ in 0..100 {
            if owners.list(&Default::default()).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the CRD is not served");
    };
    established().await;
    for (mode, dp) in [
        ("foreground", DeleteParams::foreground()),
        ("background", DeleteParams::background()),
    ] {
        let owner = owners
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"apiVersion": "conformance.kubox.dev/v1", "kind": "Owner", "metadata": {"name": "o"}})).unwrap(),
            )
            .await
            .unwrap();
        let reference = json!({"apiVersion": "conformance.kubox.dev/v1", "kind": "Owner", "name": "o",
            "uid": uid(&owner), "controller": true, "blockOwnerDeletion": true});
        let mut parts = Vec::new();
        for name in ["part-1", "part-2"] {
            parts.push(
                cms.create(
                    &PostParams::default(),
                    &serde_json::from_value(json!({"metadata": {"name": name, "ownerReferences": [reference]}, "data": {"mode": mode}})).unwrap(),
                )
                .await
                .unwrap(),
            );
        }
        owners.delete("o", &dp).await.unwrap();
        gone(&owners, "o", &uid(&owner)).await;
        for p in &parts {
            gone(&cms, &p.name_any(), &uid(p)).await;
        }
    }
    target.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_is_deleted_once_a_controller_releases_its_finalizers() {
    const HOLD: &str = "conformance.kubox.dev/hold";
    let target = Target::start(Backend::Memory).await;
    let client = setup(&target).await;
    let ns = target.namespace.clone();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    for i in 0..30 {
        let finalizers: Vec<&str> = if i % 3 == 0 { vec![HOLD] } else { vec![] };
        cms.create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": format!("cm-{i}"), "finalizers": finalizers}}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns_obj = namespaces.get(&ns).await.unwrap();
    let answer = namespaces
        .delete(&ns, &DeleteParams::default())
        .await
        .unwrap();
    let terminating = answer
        .left()
        .expect("a namespace delete answers the namespace");
    assert_eq!(
        terminating.status.and_then(|s| s.phase).as_deref(),
        Some("Terminating")
    );
    // Held content keeps the namespace: it reports what remains.
    let remaining = tokio::time::timeout(
        WAIT,
        await_condition(namespaces.clone(), &ns, |n: Option<&Namespace>| {
            n.and_then(|n| n.status.as_ref()?.conditions.as_ref())
                .is_some_and(|cs| {
                    cs.iter().any(|c| {
                        c.type_ == "NamespaceFinalizersRemaining"
                            && c.status == "True"
                            && c.message.as_deref()
                                == Some("Some content in the namespace has finalizers remaining: conformance.kubox.dev/hold in 10 resource instances")
                    })
                })
        }),
    )
    .await;
    assert!(remaining.is_ok(), "the namespace reports its held content");
    // The test controller releases them; the namespace goes.
    let releaser = tokio::spawn({
        let cms = cms.clone();
        async move {
            let mut stream = watcher(cms.clone(), watcher::Config::default())
                .applied_objects()
                .boxed();
            while let Some(Ok(cm)) = stream.next().await {
                if cm.metadata.deletion_timestamp.is_some()
                    && cm.finalizers().iter().any(|f| f == HOLD)
                {
                    let _ = cms
                        .patch(
                            &cm.name_any(),
                            &PatchParams::default(),
                            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
                        )
                        .await;
                }
            }
        }
    });
    gone(&namespaces, &ns, &uid(&ns_obj)).await;
    releaser.abort();
    target.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_expire_on_a_controllable_clock() {
    let clock = ManualClock::default();
    let server = Server::builder()
        .memory()
        .clock(Arc::new(clock.clone()))
        .start()
        .await
        .unwrap();
    let kc = kube::config::Kubeconfig::from_yaml(server.kubeconfig()).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    let client = Client::try_from(cfg).unwrap();
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let new_events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(client.clone(), "default");
    events
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "pulled"},
                "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
                "reason": "Pulled", "message": "image pulled", "type": "Normal", "count": 1,
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    new_events
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "scheduled"},
                "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "conformance",
                "reportingInstance": "conformance-1", "action": "Schedule", "reason": "Scheduled",
                "type": "Normal", "regarding": {"kind": "Pod", "name": "p", "namespace": "default"},
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    server.settled().await;
    clock.advance(Duration::from_secs(59 * 60));
    server.settled().await;
    assert!(
        events.get_opt("pulled").await.unwrap().is_some(),
        "not expired before the TTL"
    );
    clock.advance(Duration::from_secs(2 * 60));
    server.settled().await;
    assert!(
        events.get_opt("pulled").await.unwrap().is_none(),
        "expired after the TTL"
    );
    assert!(new_events.get_opt("scheduled").await.unwrap().is_none());
    server.shutdown().await.unwrap();
}
