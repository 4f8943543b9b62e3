//! A CRD with two versions converted by a webhook written in the test (HTTPS, own CA): kubectl
//! and kube-rs write and read both versions; the deprecated version warns.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use kubox_conformance::webhook_server::{size_replicas_handler, WebhookServer};
use kubox_conformance::{kubectl_bin, Backend, Kubectl, Target};
use serde_json::json;

/// v1 (storage, deprecated) keeps `spec.size` as a string, v2 `spec.replicas` as an integer.
fn crd(hook: &WebhookServer) -> String {
    format!(
        r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.conv.kubox.dev
spec:
  group: conv.kubox.dev
  scope: Namespaced
  names: {{plural: widgets, singular: widget, kind: Widget}}
  conversion:
    strategy: Webhook
    webhook:
      conversionReviewVersions: [v1]
      clientConfig:
        url: {url}
        caBundle: {ca}
  versions:
  - name: v1
    served: true
    storage: true
    deprecated: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {{type: string}}
              color: {{type: string}}
  - name: v2
    served: true
    storage: false
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              replicas: {{type: integer}}
              color: {{type: string}}
"#,
        url = hook.url("/convert"),
        ca = hook.ca_bundle()
    )
}

const DEPRECATED: &str = "Warning: conv.kubox.dev/v1 Widget is deprecated";

fn scenario(k: &Kubectl, ns: &str, hook: &WebhookServer) {
    k.run_stdin(
        &["create", "-f", "-"],
        &format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n"),
    )
    .success();
    k.run_stdin(&["apply", "-f", "-"], &crd(hook)).success();
    k.run(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.conv.kubox.dev",
        "--timeout=20s",
    ])
    .success();

    let v1 = "apiVersion: conv.kubox.dev/v1\nkind: Widget\nmetadata:\n  name: w1\nspec:\n  size: \"3\"\n  color: blue\n";
    let applied = k.run_stdin(&["apply", "-n", ns, "-f", "-"], v1).success();
    assert!(applied.stderr.contains(DEPRECATED), "{}", applied.stderr);

    let as_v2 = k
        .run(&[
            "get",
            "widgets.v2.conv.kubox.dev",
            "w1",
            "-n",
            ns,
            "-o",
            "json",
        ])
        .success();
    assert!(!as_v2.stderr.contains("deprecated"), "{}", as_v2.stderr);
    let w = as_v2.json();
    assert_eq!(w["apiVersion"], "conv.kubox.dev/v2");
    assert_eq!(w["spec"], json!({"replicas": 3, "color": "blue"}));

    let v2 = "apiVersion: conv.kubox.dev/v2\nkind: Widget\nmetadata:\n  name: w1\nspec:\n  replicas: 5\n  color: blue\n";
    k.run_stdin(&["apply", "-n", ns, "-f", "-"], v2).success();
    let size = k
        .run(&[
            "get",
            "widgets.v1.conv.kubox.dev",
            "w1",
            "-n",
            ns,
            "-o",
            "jsonpath={.spec.size}",
        ])
        .success();
    assert_eq!(size.stdout, "5");
    assert!(size.stderr.contains(DEPRECATED), "{}", size.stderr);

    let v2b = "apiVersion: conv.kubox.dev/v2\nkind: Widget\nmetadata:\n  name: w2\nspec:\n  replicas: 2\n";
    k.run_stdin(&["create", "-n", ns, "-f", "-"], v2b).success();
    let sizes = k
        .run(&[
            "get",
            "widgets.v1.conv.kubox.dev",
            "-n",
            ns,
            "-o",
            "jsonpath={.items[*].spec.size}",
        ])
        .success()
        .stdout;
    assert_eq!(sizes, "5 2");
    let replicas = k
        .run(&[
            "get",
            "widgets.v2.conv.kubox.dev",
            "-n",
            ns,
            "-o",
            "jsonpath={.items[*].spec.replicas}",
        ])
        .success()
        .stdout;
    assert_eq!(replicas, "5 2");
    let table = k
        .run(&["get", "widgets.v2.conv.kubox.dev", "-n", ns])
        .success()
        .stdout;
    assert!(table.contains("w1") && table.contains("w2"), "{table}");
}

fn run(version: &str) {
    let bin = kubectl_bin(version);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let hook = rt.block_on(WebhookServer::start(size_replicas_handler(), &[]));
    let target = rt.block_on(Target::start(Backend::Memory));
    scenario(
        &Kubectl::new(version, &bin, &target),
        &target.namespace,
        &hook,
    );
    assert!(hook.calls() > 0);
    rt.block_on(target.stop());
}

#[test]
fn kubectl_1_27_reads_and_writes_both_versions_through_a_conversion_webhook() {
    run("1.27");
}

#[test]
fn kubectl_1_35_reads_and_writes_both_versions_through_a_conversion_webhook() {
    run("1.35");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_dynamic_objects_round_trip_through_a_conversion_webhook() {
    let hook = WebhookServer::start(size_replicas_handler(), &[]).await;
    let target = Target::start(Backend::Memory).await;
    let client = target.client().await;
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    let crd = serde_yaml::from_str(&crd(&hook)).unwrap();
    crds.create(&PostParams::default(), &crd).await.unwrap();
    let ns: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    ns.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": target.namespace}})).unwrap(),
    )
    .await
    .unwrap();
    let resource = |version: &str| {
        ApiResource::from_gvk(&GroupVersionKind::gvk("conv.kubox.dev", version, "Widget"))
    };
    let v1: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &target.namespace, &resource("v1"));
    let v2: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &target.namespace, &resource("v2"));

    let mut obj = DynamicObject::new("k1", &resource("v2"));
    obj.data = json!({"spec": {"replicas": 4, "color": "red"}});
    let created = v2.create(&PostParams::default(), &obj).await.unwrap();
    assert_eq!(created.data["spec"]["replicas"], 4);

    let mut old = v1.get("k1").await.unwrap();
    assert_eq!(old.types.as_ref().unwrap().api_version, "conv.kubox.dev/v1");
    assert_eq!(old.data["spec"], json!({"size": "4", "color": "red"}));
    old.data["spec"]["size"] = json!("9");
    let replaced = v1
        .replace("k1", &PostParams::default(), &old)
        .await
        .unwrap();
    assert_eq!(replaced.data["spec"]["size"], "9");

    let new = v2.get("k1").await.unwrap();
    assert_eq!(new.data["spec"], json!({"replicas": 9, "color": "red"}));
    assert_eq!(new.metadata.uid, created.metadata.uid);
    let listed = v2.list(&Default::default()).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].data["spec"]["replicas"], 9);
    target.stop().await;
}
