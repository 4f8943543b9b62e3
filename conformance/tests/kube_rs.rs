//! Scenarios driven through kube-rs: typed CRUD, watcher, reflector, controller, raw watch.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions, WatchEvent,
    WatchParams,
};
use kube::core::Status;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::{conditions, reflector as reflect_stream, wait, WatchStreamExt};
use kube::{Client, Resource, ResourceExt};
use kubox_conformance::{Backend, Target};
use serde_json::json;
use tokio::sync::watch as progress_channel;

/// Upper bound for any single wait on the server.
const WAIT: Duration = Duration::from_secs(30);

/// Create the scenario's namespace; return a client.
async fn setup(target: &Target) -> Client {
    let client = target.client().await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(target.namespace.clone()),
            ..Default::default()
        },
        ..Default::default()
    };
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("namespace created");
    client
}

fn configmap(name: &str, labels: &[(&str, &str)], data: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        ..Default::default()
    }
}

fn web_deployment() -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [
                    {"name": "web", "image": "nginx:1.25", "ports": [{"containerPort": 80}]},
                    {"name": "sidecar", "image": "busybox:1.36"}
                ]}
            }
        }
    }))
    .unwrap()
}

/// The Status of an API error; panics on any other outcome.
#[track_caller]
fn api_error<T: std::fmt::Debug>(r: Result<T, kube::Error>) -> Box<Status> {
    match r {
        Err(kube::Error::Api(s)) => s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn names<K: ResourceExt>(items: impl IntoIterator<Item = K>) -> BTreeSet<String> {
    items.into_iter().map(|o| o.name_any()).collect()
}

fn data_of(cm: &ConfigMap) -> BTreeMap<String, String> {
    cm.data.clone().unwrap_or_default()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

async fn typed_crud(backend: Backend) {
    let target = Target::start(backend).await;
    let client = setup(&target).await;
    let ns = target.namespace.as_str();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let pp = PostParams::default();

    // Namespace: get, field-selected list.
    let got = namespaces.get(ns).await.unwrap();
    assert_eq!(
        got.status.and_then(|s| s.phase).as_deref(),
        Some("Active"),
        "a new namespace is Active"
    );
    let listed = namespaces
        .list(&ListParams::default().fields(&format!("metadata.name={ns}")))
        .await
        .unwrap();
    assert_eq!(names(listed), set(&[ns]));

    // Create, with generateName too.
    let alpha = cms
        .create(
            &pp,
            &configmap(
                "alpha",
                &[("suite", "crud"), ("app", "web"), ("tier", "front")],
                &[("k", "a")],
            ),
        )
        .await
        .unwrap();
    assert_eq!(alpha.name_any(), "alpha");
    assert!(alpha.uid().is_some_and(|u| !u.is_empty()));
    assert!(alpha.resource_version().is_some_and(|r| !r.is_empty()));
    assert!(alpha.metadata.creation_timestamp.is_some());
    cms.create(
        &pp,
        &configmap(
            "beta",
            &[("suite", "crud"), ("app", "web"), ("tier", "back")],
            &[("k", "b")],
        ),
    )
    .await
    .unwrap();
    cms.create(
        &pp,
        &configmap("gamma", &[("suite", "crud"), ("app", "db")], &[("k", "c")]),
    )
    .await
    .unwrap();
    let mut generated = configmap("", &[("suite", "crud"), ("app", "gen")], &[("k", "g")]);
    generated.metadata.name = None;
    generated.metadata.generate_name = Some("gen-".into());
    let generated = cms.create(&pp, &generated).await.unwrap();
    let gen_name = generated.name_any();
    assert!(
        gen_name.starts_with("gen-") && gen_name.len() == "gen-".len() + 5,
        "generateName gives a 5-character suffix: {gen_name}"
    );
    let err = api_error(
        cms.create(&pp, &configmap("alpha", &[], &[("k", "again")]))
            .await,
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "AlreadyExists"));

    // Get.
    let got = cms.get("alpha").await.unwrap();
    assert_eq!(data_of(&got)["k"], "a");
    assert_eq!(got.uid(), alpha.uid());
    assert_eq!(cms.get(&gen_name).await.unwrap().uid(), generated.uid());

    // Label selectors: equality and set-based.
    let by_labels = |sel: &str| {
        let cms = cms.clone();
        let sel = format!("suite=crud,{sel}");
        async move { names(cms.list(&ListParams::default().labels(&sel)).await.unwrap()) }
    };
    assert_eq!(by_labels("app=web").await, set(&["alpha", "beta"]));
    assert_eq!(by_labels("app==db").await, set(&["gamma"]));
    assert_eq!(by_labels("app!=web").await, set(&["gamma", &gen_name]));
    assert_eq!(
        by_labels("tier in (front,back)").await,
        set(&["alpha", "beta"])
    );
    assert_eq!(
        by_labels("app notin (web,db)").await,
        set(&[gen_name.as_str()])
    );
    assert_eq!(by_labels("tier").await, set(&["alpha", "beta"]));
    assert_eq!(by_labels("!tier").await, set(&["gamma", &gen_name]));
    assert_eq!(
        by_labels("app in (web),tier notin (back)").await,
        set(&["alpha"])
    );

    // Field selectors.
    let listed = cms
        .list(&ListParams::default().fields("metadata.name=alpha"))
        .await
        .unwrap();
    assert_eq!(names(listed), set(&["alpha"]));
    let listed = cms
        .list(
            &ListParams::default()
                .fields("metadata.name!=alpha")
                .labels("suite=crud"),
        )
        .await
        .unwrap();
    assert_eq!(names(listed), set(&["beta", "gamma", &gen_name]));

    // Pagination: limit + continue walk the whole collection exactly once.
    let all = cms.list(&ListParams::default()).await.unwrap();
    let all_names: Vec<String> = all.items.iter().map(|o| o.name_any()).collect();
    assert!(all_names.len() >= 4);
    let mut paged = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut lp = ListParams::default().limit(2);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = cms.list(&lp).await.unwrap();
        pages += 1;
        assert!(page.items.len() <= 2, "a page holds at most `limit` items");
        if pages == 1 {
            assert_eq!(
                page.metadata.remaining_item_count,
                Some(all_names.len() as i64 - 2),
                "the first page counts what remains"
            );
        }
        paged.extend(page.items.iter().map(|o| o.name_any()));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!(paged, all_names, "pages concatenate to the full list");
    assert_eq!(pages, all_names.len().div_ceil(2));

    // Replace: a stale resourceVersion conflicts; a fresh one succeeds.
    let stale = cms.get("alpha").await.unwrap();
    cms.patch(
        "alpha",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"touched": "yes"}})),
    )
    .await
    .unwrap();
    let mut replacement = stale.clone();
    replacement
        .data
        .get_or_insert_default()
        .insert("replaced".into(), "yes".into());
    let err = api_error(cms.replace("alpha", &pp, &replacement).await);
    assert_eq!(
        (err.code, err.reason.as_str()),
        (409, "Conflict"),
        "{err:?}"
    );
    let mut fresh = cms.get("alpha").await.unwrap();
    fresh
        .data
        .get_or_insert_default()
        .insert("replaced".into(), "yes".into());
    let replaced = cms.replace("alpha", &pp, &fresh).await.unwrap();
    assert_ne!(replaced.resource_version(), fresh.resource_version());
    assert_eq!(data_of(&replaced)["replaced"], "yes");
    assert_eq!(data_of(&replaced)["touched"], "yes");

    // Patch: merge, JSON, strategic.
    let patched = cms
        .patch(
            "beta",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"tier": null, "merged": "yes"}}, "data": {"m": "1"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        patched.labels().get("merged").map(String::as_str),
        Some("yes")
    );
    assert!(!patched.labels().contains_key("tier"), "null removes a key");
    assert_eq!(data_of(&patched)["m"], "1");
    let json_patch = Patch::Json::<()>(
        serde_json::from_value(json!([
            {"op": "test", "path": "/data/k", "value": "b"},
            {"op": "add", "path": "/data/j", "value": "2"},
            {"op": "remove", "path": "/data/m"}
        ]))
        .unwrap(),
    );
    let patched = cms
        .patch("beta", &PatchParams::default(), &json_patch)
        .await
        .unwrap();
    assert_eq!(
        data_of(&patched),
        BTreeMap::from([("k".into(), "b".into()), ("j".into(), "2".into())])
    );
    let failing = Patch::Json::<()>(
        serde_json::from_value(json!([{"op": "test", "path": "/data/k", "value": "nope"}]))
            .unwrap(),
    );
    let err = api_error(cms.patch("beta", &PatchParams::default(), &failing).await);
    assert_eq!(
        err.code, 422,
        "a failed JSON-patch test is unprocessable: {err:?}"
    );

    let created = deploys.create(&pp, &web_deployment()).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    let patched = deploys
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [
                {"name": "sidecar", "image": "busybox:1.37"}
            ]}}}})),
        )
        .await
        .unwrap();
    let containers = patched
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers
        .clone();
    let images: Vec<(String, Option<String>)> = containers
        .iter()
        .map(|c| (c.name.clone(), c.image.clone()))
        .collect();
    assert_eq!(
        images,
        vec![
            ("web".to_string(), Some("nginx:1.25".to_string())),
            ("sidecar".to_string(), Some("busybox:1.37".to_string())),
        ],
        "strategic merge patches containers by name"
    );
    assert_eq!(
        containers[0].ports.as_ref().map(|p| p[0].container_port),
        Some(80),
        "the untouched container keeps its fields"
    );
    assert_eq!(patched.metadata.generation, Some(2));
    let patched = deploys
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [
                {"name": "sidecar", "$patch": "delete"}
            ]}}}})),
        )
        .await
        .unwrap();
    let containers: Vec<String> = patched
        .spec
        .unwrap()
        .template
        .spec
        .unwrap()
        .containers
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(containers, ["web"], "$patch: delete removes one container");

    // Server-side apply: creates, then updates.
    let ssa = PatchParams::apply("kube-rs-conformance");
    let applied = cms
        .patch(
            "applied",
            &ssa,
            &Patch::Apply(json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "applied", "labels": {"suite": "ssa"}},
                "data": {"a": "1"}
            })),
        )
        .await
        .unwrap();
    assert_eq!(data_of(&applied)["a"], "1");
    assert!(applied.uid().is_some());
    let reapplied = cms
        .patch(
            "applied",
            &ssa,
            &Patch::Apply(json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "applied", "labels": {"suite": "ssa"}},
                "data": {"a": "2", "b": "3"}
            })),
        )
        .await
        .unwrap();
    assert_eq!(reapplied.uid(), applied.uid());
    assert_eq!(data_of(&reapplied)["a"], "2");
    assert_eq!(data_of(&reapplied)["b"], "3");
    assert_eq!(data_of(&cms.get("applied").await.unwrap())["a"], "2");
    let deploy_apply = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.26"}]}}
        }
    });
    let applied = deploys
        .patch("web", &ssa.clone().force(), &Patch::Apply(deploy_apply))
        .await
        .unwrap();
    let containers = &applied
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers;
    assert_eq!(containers[0].image.as_deref(), Some("nginx:1.26"));

    // Scale subresource.
    let scale = deploys.get_scale("web").await.unwrap();
    assert_eq!(scale.spec.as_ref().and_then(|s| s.replicas), Some(1));
    assert_eq!(
        scale
            .status
            .as_ref()
            .and_then(|s| s.selector.clone())
            .as_deref(),
        Some("app=web")
    );
    let scale = deploys
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 4}})),
        )
        .await
        .unwrap();
    assert_eq!(scale.spec.as_ref().and_then(|s| s.replicas), Some(4));
    let d = deploys.get("web").await.unwrap();
    assert_eq!(d.spec.as_ref().unwrap().replicas, Some(4));
    let generation = d.metadata.generation;

    // Status subresource: /status writes status only; PUT on the object keeps status.
    let d = deploys
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({
                "spec": {"replicas": 9},
                "status": {"replicas": 4, "readyReplicas": 3, "observedGeneration": generation}
            })),
        )
        .await
        .unwrap();
    assert_eq!(
        d.spec.as_ref().unwrap().replicas,
        Some(4),
        "/status ignores spec"
    );
    assert_eq!(d.status.as_ref().unwrap().ready_replicas, Some(3));
    assert_eq!(
        d.metadata.generation, generation,
        "status does not bump generation"
    );
    let mut put = deploys.get("web").await.unwrap();
    put.status.as_mut().unwrap().ready_replicas = Some(0);
    put.spec.as_mut().unwrap().replicas = Some(2);
    let d = deploys.replace("web", &pp, &put).await.unwrap();
    assert_eq!(d.spec.as_ref().unwrap().replicas, Some(2));
    assert_eq!(
        d.status.as_ref().unwrap().ready_replicas,
        Some(3),
        "PUT on the object keeps status"
    );

    // dryRun create is answered but not persisted.
    let dry = cms
        .create(
            &PostParams {
                dry_run: true,
                ..Default::default()
            },
            &configmap("dry", &[], &[("k", "v")]),
        )
        .await
        .unwrap();
    assert_eq!(dry.name_any(), "dry");
    let err = api_error(cms.get("dry").await);
    assert_eq!((err.code, err.reason.as_str()), (404, "NotFound"));

    // Delete: a Status for a plain object, then 404.
    let deleted = cms.delete("gamma", &DeleteParams::default()).await.unwrap();
    let status = deleted
        .right()
        .expect("a configmap delete answers a Status");
    assert!(status.is_success(), "{status:?}");
    let err = api_error(cms.get("gamma").await);
    assert_eq!((err.code, err.reason.as_str()), (404, "NotFound"));
    assert!(cms.get_opt("gamma").await.unwrap().is_none());
    let err = api_error(cms.delete("gamma", &DeleteParams::default()).await);
    assert_eq!(err.code, 404);

    // Delete preconditions: a stale resourceVersion or another uid conflicts.
    let beta = cms.get("beta").await.unwrap();
    for pre in [
        Preconditions {
            resource_version: Some("1".into()),
            uid: None,
        },
        Preconditions {
            resource_version: None,
            uid: Some("00000000-0000-0000-0000-000000000000".into()),
        },
    ] {
        let dp = DeleteParams {
            preconditions: Some(pre),
            ..Default::default()
        };
        let err = api_error(cms.delete("beta", &dp).await);
        assert_eq!(
            (err.code, err.reason.as_str()),
            (409, "Conflict"),
            "{err:?}"
        );
    }

    // Metadata-only get and list (PartialObjectMetadata).
    let meta = cms.get_metadata("beta").await.unwrap();
    assert_eq!(meta.metadata.uid, beta.metadata.uid);
    assert_eq!(meta.metadata.labels, beta.metadata.labels);
    assert_eq!(
        meta.types.as_ref().map(|t| t.kind.as_str()),
        Some("PartialObjectMetadata")
    );
    let metas = cms
        .list_metadata(&ListParams::default().labels("suite=crud"))
        .await
        .unwrap();
    assert_eq!(names(metas), set(&["alpha", "beta", &gen_name]));

    // deletecollection with a label selector answers the deleted objects.
    let gone = cms
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("suite=crud,app=gen"),
        )
        .await
        .unwrap();
    let gone = gone.left().expect("deletecollection answers a list");
    assert_eq!(names(gone), set(&[gen_name.as_str()]));
    assert!(cms.get_opt(&gen_name).await.unwrap().is_none());
    assert!(cms.get_opt("beta").await.unwrap().is_some());

    // Finalizers hold a deleted object until they are removed.
    let mut held = configmap("held", &[], &[("k", "v")]);
    held.metadata.finalizers = Some(vec!["conformance.kubox.dev/hold".into()]);
    cms.create(&pp, &held).await.unwrap();
    let deleted = cms.delete("held", &DeleteParams::default()).await.unwrap();
    let pending = deleted
        .left()
        .expect("a delete waiting on finalizers answers the object");
    assert!(pending.metadata.deletion_timestamp.is_some());
    let still = cms.get("held").await.unwrap();
    assert!(still.metadata.deletion_timestamp.is_some());
    assert_eq!(
        still.finalizers(),
        ["conformance.kubox.dev/hold".to_string()]
    );
    let err = api_error(
        cms.patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"finalizers": ["conformance.kubox.dev/hold", "another"]}}),
            ),
        )
        .await,
    );
    assert_eq!(
        err.code, 422,
        "no new finalizers on a deleted object: {err:?}"
    );
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    let err = api_error(cms.get("held").await);
    assert_eq!((err.code, err.reason.as_str()), (404, "NotFound"));

    // A generated namespace can be deleted; it goes away.
    let mut gen_ns = Namespace::default();
    gen_ns.metadata.generate_name = Some("kube-rs-gen-".into());
    let gen_ns = namespaces.create(&pp, &gen_ns).await.unwrap();
    let gen_ns_name = gen_ns.name_any();
    assert!(gen_ns_name.starts_with("kube-rs-gen-"));
    namespaces
        .delete(&gen_ns_name, &DeleteParams::default())
        .await
        .unwrap();
    let uid = gen_ns.uid().unwrap();
    tokio::time::timeout(
        WAIT,
        wait::await_condition(
            namespaces.clone(),
            &gen_ns_name,
            conditions::is_deleted(&uid),
        ),
    )
    .await
    .expect("namespace deleted in time")
    .unwrap();

    target.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_crud_through_kube_api() {
    typed_crud(Backend::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_crud_through_kube_api_on_sled() {
    typed_crud(Backend::Sled).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_crud_through_kube_api_on_etcd() {
    typed_crud(Backend::Etcd).await;
}

/// The next item of a stream, within [`WAIT`].
async fn next<S: Stream + Unpin>(s: &mut S, what: &str) -> S::Item {
    tokio::time::timeout(WAIT, s.next())
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
        .unwrap_or_else(|| panic!("stream ended while waiting for {what}"))
}

/// The next watcher event, skipping the `kube-root-ca.crt` ConfigMap a real cluster publishes in
/// every namespace.
async fn next_watcher_event<S>(s: &mut S, what: &str) -> Event<ConfigMap>
where
    S: Stream<Item = watcher::Result<Event<ConfigMap>>> + Unpin,
{
    loop {
        let ev = next(s, what).await.unwrap();
        match &ev {
            Event::InitApply(o) | Event::Apply(o) | Event::Delete(o)
                if o.name_any() == "kube-root-ca.crt" => {}
            _ => return ev,
        }
    }
}

fn describe(ev: &Event<ConfigMap>) -> String {
    match ev {
        Event::Init => "Init".into(),
        Event::InitApply(o) => format!("InitApply({})", o.name_any()),
        Event::InitDone => "InitDone".into(),
        Event::Apply(o) => format!("Apply({})", o.name_any()),
        Event::Delete(o) => format!("Delete({})", o.name_any()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_sees_initial_list_then_later_changes() {
    let target = Target::start(Backend::Memory).await;
    let client = setup(&target).await;
    let cms: Api<ConfigMap> = Api::namespaced(client, &target.namespace);
    let pp = PostParams::default();
    for name in ["one", "two"] {
        cms.create(&pp, &configmap(name, &[], &[("v", "0")]))
            .await
            .unwrap();
    }

    let mut events = watcher(cms.clone(), watcher::Config::default()).boxed();
    let mut seen = Vec::new();
    loop {
        let ev = next_watcher_event(&mut events, "initial events").await;
        let done = matches!(ev, Event::InitDone);
        seen.push(describe(&ev));
        if done {
            break;
        }
    }
    assert_eq!(seen.first().map(String::as_str), Some("Init"), "{seen:?}");
    let applied: BTreeSet<&str> = seen[1..seen.len() - 1].iter().map(String::as_str).collect();
    assert_eq!(
        applied,
        BTreeSet::from(["InitApply(one)", "InitApply(two)"]),
        "{seen:?}"
    );

    cms.create(&pp, &configmap("three", &[], &[("v", "0")]))
        .await
        .unwrap();
    cms.patch(
        "one",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"v": "1"}})),
    )
    .await
    .unwrap();
    cms.delete("two", &DeleteParams::default()).await.unwrap();

    match next_watcher_event(&mut events, "Apply(three)").await {
        Event::Apply(o) => assert_eq!(o.name_any(), "three"),
        other => panic!("expected Apply(three), got {}", describe(&other)),
    }
    match next_watcher_event(&mut events, "Apply(one)").await {
        Event::Apply(o) => {
            assert_eq!(o.name_any(), "one");
            assert_eq!(data_of(&o)["v"], "1");
        }
        other => panic!("expected Apply(one), got {}", describe(&other)),
    }
    match next_watcher_event(&mut events, "Delete(two)").await {
        Event::Delete(o) => assert_eq!(o.name_any(), "two"),
        other => panic!("expected Delete(two), got {}", describe(&other)),
    }
    drop(events);
    target.stop().await;
}

/// What a reflector's driving task has seen so far.
#[derive(Debug, Default, Clone)]
struct Progress {
    events: u64,
    inits: u64,
    errors: Vec<String>,
}

/// A reflector over ConfigMaps, driven by a background task that publishes its progress.
struct Reflected {
    store: Store<ConfigMap>,
    progress: progress_channel::Receiver<Progress>,
    task: tokio::task::JoinHandle<()>,
}

impl Reflected {
    fn start(api: Api<ConfigMap>, config: watcher::Config) -> Reflected {
        let (store, writer) = reflector::store::<ConfigMap>();
        let stream = reflect_stream(writer, watcher(api, config).default_backoff());
        let (tx, progress) = progress_channel::channel(Progress::default());
        let task = tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            // The reflector updates the store before it yields each event.
            while let Some(ev) = stream.next().await {
                tx.send_modify(|p| {
                    p.events += 1;
                    match &ev {
                        Ok(Event::Init) => p.inits += 1,
                        Err(e) => p.errors.push(e.to_string()),
                        Ok(_) => {}
                    }
                });
            }
        });
        Reflected {
            store,
            progress,
            task,
        }
    }

    /// Wait (on watcher events, within [`WAIT`]) until `pred` holds for the store.
    async fn wait_until(&mut self, what: &str, mut pred: impl FnMut(&Store<ConfigMap>) -> bool) {
        let store = self.store.clone();
        let progress = &mut self.progress;
        let waited = tokio::time::timeout(WAIT, async {
            store
                .wait_until_ready()
                .await
                .expect("reflector writer alive");
            loop {
                progress.borrow_and_update();
                if pred(&store) {
                    return;
                }
                progress
                    .changed()
                    .await
                    .expect("the reflector stream ended");
            }
        })
        .await;
        if waited.is_err() {
            panic!(
                "timed out waiting until {what}; progress {:?}",
                self.progress.borrow()
            );
        }
    }

    fn stop(self) -> Progress {
        self.task.abort();
        let p = self.progress.borrow().clone();
        p
    }
}

type Snapshot = BTreeMap<String, (String, BTreeMap<String, String>)>;

fn snapshot<'a>(items: impl IntoIterator<Item = &'a ConfigMap>) -> Snapshot {
    items
        .into_iter()
        .map(|cm| {
            (
                cm.name_any(),
                (cm.resource_version().unwrap_or_default(), data_of(cm)),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflector_stays_in_sync_across_10000_updates_without_relisting() {
    const OBJECTS: usize = 100;
    const UPDATES: usize = 100;
    const WRITERS: usize = 4;

    let target = Target::start(Backend::Memory).await;
    let client = setup(&target).await;
    let cms: Api<ConfigMap> = Api::namespaced(client, &target.namespace);
    let pp = PostParams::default();
    for i in 0..OBJECTS {
        cms.create(
            &pp,
            &configmap(
                &format!("cm-{i:03}"),
                &[("suite", "reflector")],
                &[("v", "init")],
            ),
        )
        .await
        .unwrap();
    }

    let mut reflected = Reflected::start(
        cms.clone(),
        watcher::Config::default().labels("suite=reflector"),
    );
    reflected
        .wait_until("the initial list is in the store", |s| {
            s.state().len() == OBJECTS
        })
        .await;

    // Each writer owns a slice of the objects and updates each of them UPDATES times.
    let started = Instant::now();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let cms = cms.clone();
            tokio::spawn(async move {
                for round in 0..UPDATES {
                    for i in (w..OBJECTS).step_by(WRITERS) {
                        cms.patch(
                            &format!("cm-{i:03}"),
                            &PatchParams::default(),
                            &Patch::Merge(json!({"data": {"v": round.to_string()}})),
                        )
                        .await
                        .unwrap();
                    }
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let writing = started.elapsed();

    let expected = cms
        .list(&ListParams::default().labels("suite=reflector"))
        .await
        .unwrap();
    assert_eq!(expected.items.len(), OBJECTS);
    assert!(expected
        .items
        .iter()
        .all(|cm| data_of(cm)["v"] == (UPDATES - 1).to_string()));
    let expected = snapshot(&expected.items);
    reflected
        .wait_until("the store equals a fresh list", |s| {
            snapshot(s.state().iter().map(|cm| cm.as_ref())) == expected
        })
        .await;
    let caught_up = started.elapsed();
    let progress = reflected.stop();
    eprintln!(
        "{} updates written in {writing:?}; store in sync after {caught_up:?}; {} watcher events",
        OBJECTS * UPDATES,
        progress.events
    );
    assert_eq!(progress.inits, 1, "the watcher relisted: {progress:?}");
    assert!(progress.errors.is_empty(), "watcher errors: {progress:?}");
    assert!(
        progress.events >= (OBJECTS * UPDATES) as u64,
        "every update reached the watcher: {progress:?}"
    );
    target.stop().await;
}

/// Reconcile a source ConfigMap: apply `<name>-mirror` with the same data, owned by the source.
async fn reconcile_mirror(
    src: Arc<ConfigMap>,
    api: Arc<Api<ConfigMap>>,
) -> Result<Action, kube::Error> {
    if src.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let owner = src
        .controller_owner_ref(&())
        .expect("source has a name and uid");
    let name = format!("{}-mirror", src.name_any());
    let mirror = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "ownerReferences": [owner]},
        "data": src.data.clone().unwrap_or_default(),
    });
    api.patch(
        &name,
        &PatchParams::apply("mirror-controller").force(),
        &Patch::Apply(mirror),
    )
    .await?;
    Ok(Action::await_change())
}

fn mirrors_match(store: &Store<ConfigMap>, sources: &[&str]) -> bool {
    let all: BTreeMap<String, Arc<ConfigMap>> = store
        .state()
        .into_iter()
        .map(|cm| (cm.name_any(), cm))
        .collect();
    sources.iter().all(|s| {
        let (Some(src), Some(mirror)) = (all.get(*s), all.get(&format!("{s}-mirror"))) else {
            return false;
        };
        let owned = mirror.owner_references().iter().any(|o| {
            Some(&o.uid) == src.uid().as_ref()
                && o.kind == "ConfigMap"
                && o.name == *s
                && o.controller == Some(true)
        });
        owned && data_of(src) == data_of(mirror)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_mirrors_labelled_configmaps() {
    let target = Target::start(Backend::Memory).await;
    let client = setup(&target).await;
    let cms: Api<ConfigMap> = Api::namespaced(client, &target.namespace);
    let pp = PostParams::default();

    let controller = Controller::new(cms.clone(), watcher::Config::default().labels("app=mirror"))
        .owns(cms.clone(), watcher::Config::default())
        .run(
            reconcile_mirror,
            |_src, _err, _ctx| Action::requeue(Duration::from_millis(200)),
            Arc::new(cms.clone()),
        )
        .for_each(|_| async {});
    let controller = tokio::spawn(controller);

    let mut reflected = Reflected::start(cms.clone(), watcher::Config::default());
    let sources = ["red", "green", "blue"];
    for (i, s) in sources.iter().enumerate() {
        cms.create(
            &pp,
            &configmap(
                s,
                &[("app", "mirror")],
                &[("colour", s), ("n", &i.to_string())],
            ),
        )
        .await
        .unwrap();
    }
    cms.create(&pp, &configmap("plain", &[("app", "other")], &[("k", "v")]))
        .await
        .unwrap();
    reflected
        .wait_until("every source has a matching mirror", |s| {
            mirrors_match(s, &sources)
        })
        .await;

    cms.patch(
        "green",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"colour": "lime", "extra": "yes"}})),
    )
    .await
    .unwrap();
    reflected
        .wait_until("the updated source's mirror follows", |s| {
            mirrors_match(s, &sources)
                && s.state()
                    .iter()
                    .any(|cm| cm.name_any() == "green-mirror" && data_of(cm)["colour"] == "lime")
        })
        .await;
    assert!(
        cms.get_opt("plain-mirror").await.unwrap().is_none(),
        "unlabelled ConfigMaps are not mirrored"
    );
    let mirror = cms.get("green-mirror").await.unwrap();
    assert_eq!(data_of(&mirror)["extra"], "yes");

    controller.abort();
    let progress = reflected.stop();
    assert_eq!(progress.inits, 1, "{progress:?}");
    target.stop().await;
}

/// The next watch event that is not a BOOKMARK.
async fn next_change<S>(s: &mut S, what: &str) -> WatchEvent<ConfigMap>
where
    S: Stream<Item = kube::Result<WatchEvent<ConfigMap>>> + Unpin,
{
    loop {
        match next(s, what).await.unwrap() {
            WatchEvent::Bookmark(_) => continue,
            ev => return ev,
        }
    }
}

fn change(ev: &WatchEvent<ConfigMap>) -> String {
    match ev {
        WatchEvent::Added(o) => format!("ADDED {}", o.name_any()),
        WatchEvent::Modified(o) => format!("MODIFIED {}", o.name_any()),
        WatchEvent::Deleted(o) => format!("DELETED {}", o.name_any()),
        WatchEvent::Bookmark(b) => format!("BOOKMARK {}", b.metadata.resource_version),
        WatchEvent::Error(e) => format!("ERROR {e:?}"),
    }
}

async fn expect_changes<S>(s: &mut S, expected: &[&str])
where
    S: Stream<Item = kube::Result<WatchEvent<ConfigMap>>> + Unpin,
{
    let mut got = Vec::new();
    for want in expected {
        got.push(change(&next_change(s, want).await));
    }
    assert_eq!(got, expected);
}

/// The label every object of the raw-watch scenario carries, and its watches select.
const RAW: &str = "suite=raw";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_watch_semantics() {
    let target = Target::start(Backend::Memory).await;
    let client = setup(&target).await;
    let cms: Api<ConfigMap> = Api::namespaced(client, &target.namespace);
    let pp = PostParams::default();
    let merge = |v: serde_json::Value| Patch::Merge(v);
    for name in ["a", "b"] {
        cms.create(&pp, &configmap(name, &[("suite", "raw")], &[("v", "0")]))
            .await
            .unwrap();
    }

    // resourceVersion "0": ADDED for what exists, then live changes.
    let mut from_zero = cms
        .watch(&WatchParams::default().labels(RAW), "0")
        .await
        .unwrap()
        .boxed();
    let mut initial = BTreeSet::new();
    for _ in 0..2 {
        initial.insert(change(&next_change(&mut from_zero, "initial ADDED").await));
    }
    assert_eq!(initial, set(&["ADDED a", "ADDED b"]));
    cms.create(&pp, &configmap("c", &[("suite", "raw")], &[("v", "0")]))
        .await
        .unwrap();
    expect_changes(&mut from_zero, &["ADDED c"]).await;
    drop(from_zero);

    // From a list's resourceVersion: exactly the later changes, in order.
    let rv = cms
        .list(&ListParams::default().labels(RAW))
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    cms.create(&pp, &configmap("d", &[("suite", "raw")], &[("v", "0")]))
        .await
        .unwrap();
    cms.patch(
        "d",
        &PatchParams::default(),
        &merge(json!({"data": {"v": "1"}})),
    )
    .await
    .unwrap();
    cms.patch(
        "a",
        &PatchParams::default(),
        &merge(json!({"data": {"v": "1"}})),
    )
    .await
    .unwrap();
    cms.delete("d", &DeleteParams::default()).await.unwrap();
    let mut from_rv = cms
        .watch(&WatchParams::default().labels(RAW), &rv)
        .await
        .unwrap()
        .boxed();
    expect_changes(
        &mut from_rv,
        &["ADDED d", "MODIFIED d", "MODIFIED a", "DELETED d"],
    )
    .await;
    // Nothing else is in between: the next change is a marker made now.
    cms.create(&pp, &configmap("marker-1", &[("suite", "raw")], &[]))
        .await
        .unwrap();
    expect_changes(&mut from_rv, &["ADDED marker-1"]).await;
    drop(from_rv);

    // A label-selected watch: objects entering the selection are ADDED, leaving it DELETED.
    let rv = cms
        .list(&ListParams::default().labels(RAW))
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut selected = cms
        .watch(&WatchParams::default().labels("suite=raw,tier=front"), &rv)
        .await
        .unwrap()
        .boxed();
    cms.create(
        &pp,
        &configmap("f", &[("suite", "raw"), ("tier", "back")], &[("v", "0")]),
    )
    .await
    .unwrap();
    cms.patch(
        "f",
        &PatchParams::default(),
        &merge(json!({"data": {"v": "unselected"}})),
    )
    .await
    .unwrap();
    cms.patch(
        "f",
        &PatchParams::default(),
        &merge(json!({"metadata": {"labels": {"tier": "front"}}})),
    )
    .await
    .unwrap();
    cms.patch(
        "f",
        &PatchParams::default(),
        &merge(json!({"data": {"v": "1"}})),
    )
    .await
    .unwrap();
    cms.patch(
        "f",
        &PatchParams::default(),
        &merge(json!({"metadata": {"labels": {"tier": "back"}}})),
    )
    .await
    .unwrap();
    cms.create(
        &pp,
        &configmap("g", &[("suite", "raw"), ("tier", "front")], &[]),
    )
    .await
    .unwrap();
    let first = next_change(&mut selected, "ADDED f").await;
    match &first {
        WatchEvent::Added(o) => {
            assert_eq!(o.name_any(), "f");
            assert_eq!(data_of(o)["v"], "unselected");
        }
        other => panic!("expected ADDED f, got {}", change(other)),
    }
    expect_changes(&mut selected, &["MODIFIED f", "DELETED f", "ADDED g"]).await;
    drop(selected);

    // Streaming list: ADDED for every object, then a BOOKMARK marking the end of initial events.
    let listed = cms.list(&ListParams::default().labels(RAW)).await.unwrap();
    let list_rv: i64 = listed
        .metadata
        .resource_version
        .clone()
        .unwrap()
        .parse()
        .unwrap();
    let mut streaming = cms
        .watch(&WatchParams::streaming_lists().labels(RAW), "0")
        .await
        .unwrap()
        .boxed();
    let mut added = BTreeSet::new();
    let bookmark = loop {
        match next(&mut streaming, "initial events").await.unwrap() {
            WatchEvent::Added(o) => {
                added.insert(o.name_any());
            }
            WatchEvent::Bookmark(b) => break b,
            other => panic!("unexpected initial event {}", change(&other)),
        }
    };
    assert_eq!(added, names(listed.items));
    assert_eq!(
        bookmark
            .metadata
            .annotations
            .get("k8s.io/initial-events-end")
            .map(String::as_str),
        Some("true"),
        "{:?}",
        bookmark.metadata.annotations
    );
    let bookmark_rv: i64 = bookmark.metadata.resource_version.parse().unwrap();
    assert!(bookmark_rv >= list_rv, "{bookmark_rv} < {list_rv}");
    cms.create(&pp, &configmap("h", &[("suite", "raw")], &[]))
        .await
        .unwrap();
    expect_changes(&mut streaming, &["ADDED h"]).await;
    drop(streaming);

    target.stop().await;
}
