//! `kubectl get componentstatuses`: computed on each read as kube-apiserver computes them, with
//! kube's deprecation warning; the store is `etcd-0`, kubox's controllers the controller
//! manager, and the scheduler is reported missing (kubox runs none).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kubox_conformance::{with_kubectl, Kubectl};

fn scenario(k: &Kubectl, _ns: &str) {
    let run = k.run(&["get", "componentstatuses"]).success();
    let rows: Vec<Vec<&str>> = run
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0],
        vec!["NAME", "STATUS", "MESSAGE", "ERROR"],
        "{}",
        run.stdout
    );
    let status = |name: &str| {
        rows.iter()
            .find(|r| r.first() == Some(&name))
            .and_then(|r| r.get(1).copied())
            .unwrap_or_default()
    };
    assert_eq!(status("etcd-0"), "Healthy", "{}", run.stdout);
    assert_eq!(status("controller-manager"), "Healthy", "{}", run.stdout);
    assert_eq!(status("scheduler"), "Unhealthy", "{}", run.stdout);
    assert!(
        run.stderr
            .contains("v1 ComponentStatus is deprecated in v1.19+"),
        "{}",
        run.stderr
    );
    let etcd = k
        .run(&["get", "cs", "etcd-0", "-o", "json"])
        .success()
        .json();
    assert_eq!(etcd["conditions"][0]["status"], "True", "{etcd}");
    k.run(&["get", "cs", "nope"]).failure();
}

#[test]
fn kubectl_1_35_gets_componentstatuses() {
    with_kubectl("1.35", scenario);
}
