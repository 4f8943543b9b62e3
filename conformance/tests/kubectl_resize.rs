//! `kubectl patch pod --subresource resize` (kubectl 1.32 and later) changes a running pod's
//! CPU and memory through `pods/resize`, as on a cluster; what may not change is refused with
//! kube's message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kubox_conformance::{with_kubectl, Kubectl};

fn scenario(k: &Kubectl, ns: &str) {
    k.run(&["create", "namespace", ns]).success();
    let pod = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: r\n  namespace: {ns}\nspec:\n  containers:\n  - name: c\n    image: nginx:1.27\n    resources:\n      requests:\n        cpu: 100m\n        memory: 64Mi\n"
    );
    k.run_stdin(&["create", "-f", "-"], &pod).success();
    let resized = k
        .run(&[
            "patch",
            "pod",
            "r",
            "-n",
            ns,
            "--subresource",
            "resize",
            "-o",
            "json",
            "-p",
            r#"{"spec":{"containers":[{"name":"c","resources":{"requests":{"cpu":"300m"}}}]}}"#,
        ])
        .success()
        .json();
    assert_eq!(
        resized["spec"]["containers"][0]["resources"]["requests"]["cpu"],
        "300m"
    );
    let refused = k
        .run(&[
            "patch", "pod", "r", "-n", ns, "--subresource", "resize", "-p",
            r#"{"spec":{"containers":[{"name":"c","resources":{"limits":{"cpu":"300m","memory":"64Mi"},"requests":{"cpu":"300m","memory":"64Mi"}}}]}}"#,
        ])
        .failure();
    assert!(
        refused
            .stderr
            .contains("Pod QOS Class may not change as a result of resizing"),
        "{}",
        refused.stderr
    );
    let got = k
        .run(&[
            "get",
            "pod",
            "r",
            "-n",
            ns,
            "-o",
            "jsonpath={.spec.containers[0].resources.requests.cpu}",
        ])
        .success();
    assert_eq!(got.stdout, "300m");
}

#[test]
fn kubectl_1_33_resizes_a_pod() {
    with_kubectl("1.33", scenario);
}

#[test]
fn kubectl_1_35_resizes_a_pod() {
    with_kubectl("1.35", scenario);
}
