//! Snapshot and fork through kube-rs: one seeded snapshot (namespace, ConfigMaps, a CRD and its
//! custom resources, a ServiceAccount and a token minted for it), forked by ten tests running in
//! parallel, each seeing the seed exactly (same resourceVersions), writing privately, and seeing
//! none of the others' writes; the seed's credentials work on every fork; a snapshot saved to a
//! file and a fork onto a sled directory hold the same.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, PostParams};
use kube::runtime::{conditions, wait::await_condition};
use kube::Client;
use kubox::snapshot::Snapshot;
use kubox::{Server, ServerHandle};
use serde_json::json;

const NS: &str = "seeded";

struct Seed {
    snapshot: Snapshot,
    /// name → resourceVersion of the seeded ConfigMaps.
    versions: BTreeMap<String, String>,
    /// A token of `seeded/robot`, minted by the seed server.
    token: String,
}

async fn client_of(server: &ServerHandle) -> Client {
    let kc = kube::config::Kubeconfig::from_yaml(server.kubeconfig()).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    Client::try_from(cfg).unwrap()
}

fn widgets(client: &Client) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("example.com", "v1", "Widget");
    Api::namespaced_with(client.clone(), NS, &ApiResource::from_gvk(&gvk))
}

async fn make_seed() -> Seed {
    let server = Server::builder().start().await.unwrap();
    let client = client_of(&server).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": NS}})).unwrap(),
        )
        .await
        .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    let mut versions = BTreeMap::new();
    for i in 0..20 {
        let cm = cms
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": format!("cm-{i}")},
                    "data": {"i": i.to_string()}}))
                .unwrap(),
            )
            .await
            .unwrap();
        versions.insert(
            format!("cm-{i}"),
            cm.metadata.resource_version.unwrap_or_default(),
        );
    }
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    crds.create(
        &PostParams::default(),
        &serde_json::from_value(json!({
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                        "spec": {"type": "object", "properties": {"size": {"type": "integer", "minimum": 1}}}}}}}]}
        }))
        .unwrap(),
    )
    .await
    .unwrap();
    tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(
            crds,
            "widgets.example.com",
            conditions::is_crd_established(),
        ),
    )
    .await
    .unwrap()
    .unwrap();
    let obj: DynamicObject = serde_json::from_value(json!({"apiVersion": "example.com/v1",
        "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 3}}))
    .unwrap();
    widgets(&client)
        .create(&PostParams::default(), &obj)
        .await
        .unwrap();
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), NS);
    sas.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "robot"}})).unwrap(),
    )
    .await
    .unwrap();
    let token = server
        .service_account_token(NS, "robot", Duration::from_secs(3600))
        .await
        .unwrap();
    let snapshot = server.snapshot().await.unwrap();
    server.shutdown().await.unwrap();
    Seed {
        snapshot,
        versions,
        token,
    }
}

/// The seed, made once (on a runtime of its own) for every test of this file.
fn seed() -> &'static Seed {
    static SEED: OnceLock<Seed> = OnceLock::new();
    SEED.get_or_init(|| {
        std::thread::spawn(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap()
                .block_on(make_seed())
        })
        .join()
        .unwrap()
    })
}

/// What a fork must hold: the seed exactly.
async fn holds_the_seed(client: &Client) {
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    for (name, rv) in &seed().versions {
        let cm = cms.get(name).await.unwrap();
        assert_eq!(cm.metadata.resource_version.as_deref(), Some(rv.as_str()));
    }
    let w = widgets(client).get("w").await.unwrap();
    assert_eq!(w.data["spec"]["size"], 3);
}

/// One of ten parallel tests: fork, check the seed, write privately, see no other fork's
/// writes.
async fn isolated_fork(i: usize) {
    let fork = Server::builder()
        .from_snapshot(&seed().snapshot)
        .start()
        .await
        .unwrap();
    let client = client_of(&fork).await;
    holds_the_seed(&client).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    let mine = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": format!("mine-{i}")}})).unwrap(),
        )
        .await
        .unwrap();
    // resourceVersions continue from the snapshot's revision.
    let rv: i64 = mine.metadata.resource_version.unwrap().parse().unwrap();
    assert_eq!(rv, seed().snapshot.revision() + 1);
    // A custom resource the fork's own CRD controller validates (minimum 1).
    let bad: DynamicObject = serde_json::from_value(json!({"apiVersion": "example.com/v1",
        "kind": "Widget", "metadata": {"name": "bad"}, "spec": {"size": 0}}))
    .unwrap();
    let err = widgets(&client)
        .create(&PostParams::default(), &bad)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("spec.size"), "{err}");
    let names: Vec<String> = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .filter(|n| n.starts_with("mine-"))
        .collect();
    assert_eq!(names, vec![format!("mine-{i}")]);
    // The seed's ServiceAccount token is accepted: same signing key.
    let kc = kube::config::Kubeconfig::from_yaml(fork.kubeconfig()).unwrap();
    let mut config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    config.auth_info = kube::config::AuthInfo {
        token: Some(seed().token.clone().into()),
        ..Default::default()
    };
    let robot = Client::try_from(config).unwrap();
    let reviews: Api<SelfSubjectReview> = Api::all(robot);
    let review = reviews
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .unwrap();
    assert_eq!(
        review
            .status
            .and_then(|s| s.user_info)
            .and_then(|u| u.username),
        Some(format!("system:serviceaccount:{NS}:robot"))
    );
    fork.shutdown().await.unwrap();
}

macro_rules! forks {
    ($($name:ident = $i:expr;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            isolated_fork($i).await;
        }
    )*};
}

forks! {
    fork_0 = 0; fork_1 = 1; fork_2 = 2; fork_3 = 3; fork_4 = 4;
    fork_5 = 5; fork_6 = 6; fork_7 = 7; fork_8 = 8; fork_9 = 9;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_snapshot_forks_onto_sled_as_well() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("seed.snapshot");
    seed().snapshot.save(&file).unwrap();
    let loaded = Snapshot::load(&file).unwrap();
    assert_eq!(
        (loaded.revision(), loaded.len()),
        (seed().snapshot.revision(), seed().snapshot.len())
    );
    let fork = Server::builder()
        .sled(dir.path().join("db"))
        .from_snapshot(&loaded)
        .start()
        .await
        .unwrap();
    holds_the_seed(&client_of(&fork).await).await;
    fork.shutdown().await.unwrap();
    // The directory now holds a store: it is not overwritten by another snapshot.
    let again = Server::builder()
        .sled(dir.path().join("db"))
        .from_snapshot(&loaded)
        .start()
        .await;
    assert!(again.is_err());
}
