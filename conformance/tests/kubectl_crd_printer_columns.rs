//! Printer columns written as operators write them (an annotation key with dots, escaped; a
//! condition picked by a filter): the CRD is Established and served, and `kubectl get` prints
//! the columns as on a cluster.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kubox_conformance::{with_kubectl, Kubectl};

const CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: releases.cols.kubox.dev
spec:
  group: cols.kubox.dev
  scope: Namespaced
  names: {plural: releases, singular: release, kind: Release}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
    additionalPrinterColumns:
    - name: Channel
      type: string
      jsonPath: .metadata.annotations.release\.example\.com/channel
    - name: Ready
      type: string
      jsonPath: .status.conditions[?(@.type=="Ready")].status
    - name: Age
      type: date
      jsonPath: .metadata.creationTimestamp
"#;

fn scenario(k: &Kubectl, ns: &str) {
    k.run(&["create", "namespace", ns]).success();
    k.run_stdin(&["apply", "--server-side", "-f", "-"], CRD)
        .success();
    k.run(&[
        "wait",
        "--for=condition=Established",
        "crd/releases.cols.kubox.dev",
        "--timeout=20s",
    ])
    .success();
    let release = format!(
        "apiVersion: cols.kubox.dev/v1\nkind: Release\nmetadata:\n  name: r1\n  namespace: {ns}\n  annotations:\n    release.example.com/channel: stable\nstatus:\n  conditions:\n  - type: Synced\n    status: \"False\"\n  - type: Ready\n    status: \"True\"\n"
    );
    k.run_stdin(&["apply", "-f", "-"], &release).success();
    let table = k.run(&["get", "releases", "-n", ns]).success().stdout;
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, vec!["NAME", "CHANNEL", "READY", "AGE"], "{table}");
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(&row[..3], &["r1", "stable", "True"], "{table}");
}

#[test]
fn kubectl_1_35_prints_columns_with_escaped_keys_and_filters() {
    with_kubectl("1.35", scenario);
}

#[test]
fn kubectl_1_27_prints_columns_with_escaped_keys_and_filters() {
    with_kubectl("1.27", scenario);
}
