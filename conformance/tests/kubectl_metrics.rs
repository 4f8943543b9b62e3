//! `kubectl get --raw /metrics` reads kube-apiserver's metrics in Prometheus' text format.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kubox_conformance::{with_kubectl, Kubectl};

fn scenario(k: &Kubectl, ns: &str) {
    k.run(&["create", "namespace", ns]).success();
    k.run(&[
        "create",
        "configmap",
        "m",
        "--namespace",
        ns,
        "--from-literal=a=b",
    ])
    .success();
    k.run(&["get", "configmaps", "--namespace", ns]).success();
    let text = k.run(&["get", "--raw", "/metrics"]).success().stdout;
    assert!(
        text.contains("# TYPE apiserver_request_total counter"),
        "{text}"
    );
    let created = "apiserver_request_total{code=\"201\",component=\"apiserver\",dry_run=\"\",group=\"\",resource=\"configmaps\",scope=\"resource\",subresource=\"\",verb=\"POST\",version=\"v1\"} ";
    assert!(
        text.lines().any(|l| l.starts_with(created)),
        "no {created}in:\n{text}"
    );
    assert!(
        text.lines().any(
            |l| l.starts_with("apiserver_request_duration_seconds_bucket{")
                && l.contains("resource=\"configmaps\"")
                && l.contains("verb=\"LIST\"")
        ),
        "{text}"
    );
    assert!(text.contains("apiserver_storage_objects{resource=\"configmaps\"} "));
}

#[test]
fn kubectl_1_27_reads_metrics() {
    with_kubectl("1.27", scenario);
}

#[test]
fn kubectl_1_35_reads_metrics() {
    with_kubectl("1.35", scenario);
}
