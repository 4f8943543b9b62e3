//! Server-side apply as kube-rs controllers use it (`Patch::Apply`): two controllers sharing an
//! object, a conflict answered 409 with kube's causes, `force` taking the field, ownership in
//! `managedFields`, and an apply to `/status` recorded with its subresource.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kubox_conformance::{Backend, Target};
use serde_json::json;

fn deployment(replicas: Option<i32>, image: &str) -> serde_json::Value {
    let mut d = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "shared"},
        "spec": {"selector": {"matchLabels": {"app": "shared"}},
                 "template": {"metadata": {"labels": {"app": "shared"}},
                              "spec": {"containers": [{"name": "app", "image": image}]}}}});
    if let Some(r) = replicas {
        d["spec"]["replicas"] = json!(r);
    }
    d
}

#[tokio::test]
async fn two_kube_rs_controllers_share_an_object_through_apply() {
    let target = Target::start(Backend::Memory).await;
    let client = target.client().await;
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: ObjectMeta {
                    name: Some(target.namespace.clone()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let api: Api<Deployment> = Api::namespaced(client, &target.namespace);
    let deployer = PatchParams::apply("deployer");
    let scaler = PatchParams::apply("scaler");
    api.patch(
        "shared",
        &deployer,
        &Patch::Apply(deployment(Some(2), "nginx:1")),
    )
    .await
    .unwrap();
    // The scaler changing the deployer's replicas conflicts…
    let err = api
        .patch(
            "shared",
            &scaler,
            &Patch::Apply(deployment(Some(5), "nginx:1")),
        )
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("expected a Status, got {err:?}")
    };
    assert_eq!(status.code, 409, "{status:?}");
    assert_eq!(status.reason, "Conflict");
    assert_eq!(
        status.message,
        "Apply failed with 1 conflict: conflict with \"deployer\": .spec.replicas"
    );
    // … until it forces: then it owns replicas, the deployer keeps the rest.
    let d = api
        .patch(
            "shared",
            &scaler.clone().force(),
            &Patch::Apply(json!({"apiVersion": "apps/v1", "kind": "Deployment",
                                 "metadata": {"name": "shared"}, "spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    assert_eq!(d.spec.as_ref().unwrap().replicas, Some(5));
    let managed = d.metadata.managed_fields.clone().unwrap();
    let owner = |m: &str| {
        managed
            .iter()
            .find(|e| e.manager.as_deref() == Some(m))
            .and_then(|e| e.fields_v1.as_ref())
            .map(|f| f.0.clone())
            .unwrap_or_else(|| panic!("no entry for {m}: {managed:?}"))
    };
    assert_eq!(owner("scaler"), json!({"f:spec": {"f:replicas": {}}}));
    assert!(owner("deployer")["f:spec"].get("f:replicas").is_none());
    // The deployer re-applies without replicas: no conflict, replicas stay the scaler's.
    let d = api
        .patch(
            "shared",
            &deployer,
            &Patch::Apply(deployment(None, "nginx:2")),
        )
        .await
        .unwrap();
    assert_eq!(d.spec.as_ref().unwrap().replicas, Some(5));
    // A status apply is recorded with its subresource.
    let d = api
        .patch_status(
            "shared",
            &PatchParams::apply("status-writer").force(),
            &Patch::Apply(json!({"apiVersion": "apps/v1", "kind": "Deployment",
                                 "metadata": {"name": "shared"},
                                 "status": {"observedGeneration": 1}})),
        )
        .await
        .unwrap();
    let entry = d
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .find(|e| e.manager.as_deref() == Some("status-writer"))
        .expect("the status applier's entry");
    assert_eq!(entry.operation.as_deref(), Some("Apply"));
    assert_eq!(entry.subresource.as_deref(), Some("status"));
    assert_eq!(
        entry.fields_v1.unwrap().0,
        json!({"f:status": {"f:observedGeneration": {}}})
    );
    target.stop().await;
}
