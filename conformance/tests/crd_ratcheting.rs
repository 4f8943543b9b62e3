//! Validation ratcheting through real clients: after a CRD's schema tightens, an object that no
//! longer fits can still be labelled (kubectl 1.35) and patched elsewhere (kube-rs), while an
//! edit of its invalid field to another invalid value is refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kubox_conformance::{with_kubectl, Backend, Kubectl, Target};
use serde_json::json;

fn crd(max_replicas: Option<i64>) -> String {
    let bound = max_replicas.map_or(String::new(), |m| format!("\n                maximum: {m}"));
    format!(
        r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: pools.ratchet.kubox.dev
spec:
  group: ratchet.kubox.dev
  scope: Namespaced
  names: {{plural: pools, singular: pool, kind: Pool}}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              owner: {{type: string}}
              replicas:
                type: integer{bound}
"#
    )
}

fn pool(ns: &str) -> String {
    format!(
        "apiVersion: ratchet.kubox.dev/v1\nkind: Pool\nmetadata:\n  name: p1\n  namespace: {ns}\nspec:\n  replicas: 50\n  owner: a\n"
    )
}

fn tighten(k: &Kubectl, ns: &str) {
    k.run(&["create", "namespace", ns]).success();
    k.run_stdin(&["apply", "--server-side", "-f", "-"], &crd(None))
        .success();
    k.run(&[
        "wait",
        "--for=condition=Established",
        "crd/pools.ratchet.kubox.dev",
        "--timeout=20s",
    ])
    .success();
    k.run_stdin(&["apply", "-f", "-"], &pool(ns)).success();
    k.run_stdin(&["apply", "--server-side", "-f", "-"], &crd(Some(10)))
        .success();
}

#[test]
fn kubectl_1_35_labels_an_object_the_tightened_schema_no_longer_accepts() {
    with_kubectl("1.35", |k, ns| {
        tighten(k, ns);
        k.run(&["label", "-n", ns, "pool", "p1", "tier=gold"])
            .success();
        let bad = k
            .run(&[
                "patch",
                "-n",
                ns,
                "pool",
                "p1",
                "--type",
                "merge",
                "-p",
                r#"{"spec":{"replicas":60}}"#,
            ])
            .failure();
        assert!(
            bad.stderr
                .contains("spec.replicas in body should be less than or equal to 10"),
            "{}",
            bad.stderr
        );
        k.run(&[
            "patch",
            "-n",
            ns,
            "pool",
            "p1",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"replicas":5}}"#,
        ])
        .success();
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_patches_an_object_the_tightened_schema_no_longer_accepts() {
    let target = Target::start(Backend::Memory).await;
    let kubeconfig = target.kubeconfig.clone();
    // The schema is tightened with kubectl, off the runtime that serves it.
    tokio::task::spawn_blocking(move || {
        let k =
            Kubectl::with_kubeconfig("1.35", &kubox_conformance::kubectl_bin("1.35"), &kubeconfig);
        tighten(&k, "ratchet");
    })
    .await
    .unwrap();
    let client = target.client().await;
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("ratchet.kubox.dev", "v1", "Pool"),
        "pools",
    );
    let pools: Api<DynamicObject> = Api::namespaced_with(client, "ratchet", &ar);
    let pp = PatchParams::default();
    pools
        .patch("p1", &pp, &Patch::Merge(json!({"spec": {"owner": "b"}})))
        .await
        .expect("a change next to the invalid field is accepted");
    let err = pools
        .patch("p1", &pp, &Patch::Merge(json!({"spec": {"replicas": 70}})))
        .await
        .expect_err("the invalid field changed to another invalid value");
    let kube::Error::Api(status) = err else {
        panic!("{err:?}")
    };
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert!(
        status
            .message
            .contains("spec.replicas: Invalid value: 70: spec.replicas in body should be less than or equal to 10"),
        "{}",
        status.message
    );
    target.stop().await;
}
