//! CustomResourceDefinitions through kubectl: apply, wait for Established, use the new API.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kubox_conformance::{with_kubectl, Kubectl};

const CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gizmos.demo.kubox.dev
spec:
  group: demo.kubox.dev
  scope: Namespaced
  names:
    plural: gizmos
    singular: gizmo
    kind: Gizmo
    shortNames: [gz]
    categories: [all]
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
              color: {type: string}
              replicas: {type: integer}
          status:
            type: object
            properties:
              replicas: {type: integer}
              selector: {type: string}
    subresources:
      status: {}
      scale:
        specReplicasPath: .spec.replicas
        statusReplicasPath: .status.replicas
        labelSelectorPath: .status.selector
    additionalPrinterColumns:
    - name: Color
      type: string
      jsonPath: .spec.color
    - name: Replicas
      type: integer
      jsonPath: .spec.replicas
      priority: 1
"#;

fn gizmo(color: &str) -> String {
    format!("apiVersion: demo.kubox.dev/v1\nkind: Gizmo\nmetadata:\n  name: g1\nspec:\n  color: {color}\n  replicas: 1\n")
}

fn scenario(k: &Kubectl, ns: &str) {
    k.run_stdin(
        &["create", "-f", "-"],
        &format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n"),
    )
    .success();
    k.run_stdin(&["apply", "-f", "-"], CRD).success();
    k.run(&[
        "wait",
        "--for=condition=Established",
        "crd/gizmos.demo.kubox.dev",
        "--timeout=20s",
    ])
    .success();
    let out = k
        .run(&["api-resources", "--api-group=demo.kubox.dev"])
        .success()
        .stdout;
    assert!(out.contains("gizmos") && out.contains("gz"), "{out}");
    k.run_stdin(&["apply", "-n", ns, "-f", "-"], &gizmo("red"))
        .success();
    k.run_stdin(&["apply", "-n", ns, "-f", "-"], &gizmo("green"))
        .success();
    let table = k.run(&["get", "gz", "-n", ns]).success().stdout;
    assert!(
        table.contains("COLOR") && table.contains("green") && !table.contains("REPLICAS"),
        "{table}"
    );
    let wide = k
        .run(&["get", "gizmos", "-n", ns, "-o", "wide"])
        .success()
        .stdout;
    assert!(wide.contains("REPLICAS"), "{wide}");
    let all = k.run(&["get", "all", "-n", ns]).success().stdout;
    assert!(all.contains("gizmo.demo.kubox.dev/g1"), "{all}");
    k.run(&["scale", "gizmo", "g1", "-n", ns, "--replicas", "3"])
        .success();
    let jp = k
        .run(&[
            "get",
            "gizmo",
            "g1",
            "-n",
            ns,
            "-o",
            "jsonpath={.spec.replicas}",
        ])
        .success()
        .stdout;
    assert_eq!(jp, "3");
    k.run(&[
        "patch",
        "gizmo",
        "g1",
        "-n",
        ns,
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"color":"blue"}}"#,
    ])
    .success();
    let out = k
        .run(&[
            "patch",
            "gizmo",
            "g1",
            "-n",
            ns,
            "-p",
            r#"{"spec":{"color":"x"}}"#,
        ])
        .failure()
        .stderr;
    assert!(
        out.to_lowercase().contains("strategic merge patch")
            || out.contains("415")
            || out.contains("UnsupportedMediaType")
            || out.contains("unknown format"),
        "{out}"
    );
    k.run(&["delete", "crd", "gizmos.demo.kubox.dev"]).success();
    let out = k.run(&["get", "gizmos", "-n", ns]).failure().stderr;
    assert!(
        out.contains("the server doesn't have a resource type")
            || out.contains("NotFound")
            || out.contains("not found"),
        "{out}"
    );
}

fn run(version: &str) {
    with_kubectl(version, scenario);
}

#[test]
fn kubectl_1_27_drives_a_crd_end_to_end() {
    run("1.27");
}

#[test]
fn kubectl_1_31_drives_a_crd_end_to_end() {
    run("1.31");
}

#[test]
fn kubectl_1_35_drives_a_crd_end_to_end() {
    run("1.35");
}
