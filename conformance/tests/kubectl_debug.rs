//! `kubectl debug` adds an ephemeral container through `pods/ephemeralcontainers`, as on a
//! cluster; attaching to it needs a node, so the scenario stops before that (`--attach=false`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kubox_conformance::{with_kubectl, Kubectl};

fn scenario(k: &Kubectl, ns: &str) {
    k.run(&["create", "namespace", ns]).success();
    k.run(&["run", "web", "-n", ns, "--image", "nginx"])
        .success();
    k.run(&[
        "debug",
        "-n",
        ns,
        "web",
        "--image",
        "busybox",
        "-c",
        "dbg",
        "--attach=false",
    ])
    .success();
    let pod = k
        .run(&["get", "pod", "web", "-n", ns, "-o", "json"])
        .success()
        .json();
    let ephemeral = &pod["spec"]["ephemeralContainers"];
    assert_eq!(ephemeral[0]["name"], "dbg", "{pod}");
    assert_eq!(ephemeral[0]["image"], "busybox", "{pod}");
    assert_eq!(pod["spec"]["containers"][0]["image"], "nginx", "{pod}");
}

#[test]
fn kubectl_1_35_debug_adds_an_ephemeral_container() {
    with_kubectl("1.35", scenario);
}
