//! kube's limits as kubectl (client-go over HTTP/2 and TLS) meets them: a body over 3 MiB, a
//! ConfigMap over 1 MiB of data, a JSON patch that copies itself past 3 MiB, a field manager
//! over 128 bytes. Each is an error message kubectl prints, the server goes on.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kubox_conformance::{with_kubectl, Kubectl};

fn configmap(name: &str, ns: &str, bytes: usize) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {ns}\ndata:\n  a: {}\n",
        "x".repeat(bytes)
    )
}

fn limits(k: &Kubectl, ns: &str) {
    k.run(&["create", "namespace", ns]).success();
    // Over the body limit, sent over HTTP/2: the 413 Status, not a reset stream.
    let run = k
        .run_stdin(&["create", "-f", "-"], &configmap("huge", ns, 4 << 20))
        .failure();
    assert!(
        run.stderr
            .contains("Request entity too large: limit is 3145728"),
        "{}",
        run.stderr
    );
    // Under the body limit, over the data limit.
    let run = k
        .run_stdin(&["create", "-f", "-"], &configmap("big", ns, (1 << 20) + 1))
        .failure();
    assert!(
        run.stderr.contains(
            "ConfigMap \"big\" is invalid: []: Too long: may not be more than 1048576 bytes"
        ),
        "{}",
        run.stderr
    );
    // A JSON patch whose copies would double the object again and again.
    k.run_stdin(&["create", "-f", "-"], &configmap("seed", ns, 1000))
        .success();
    let ops: Vec<String> = (0..40)
        .map(|i| format!(r#"{{"op":"copy","from":"/data","path":"/data/k{i}"}}"#))
        .collect();
    let run = k
        .run(&[
            "patch",
            "-n",
            ns,
            "configmap",
            "seed",
            "--type=json",
            "-p",
            &format!("[{}]", ops.join(",")),
        ])
        .failure();
    assert!(
        run.stderr
            .contains("the accumulated size increase of copy is more than the limit 3145728"),
        "{}",
        run.stderr
    );
    let manager = "m".repeat(129);
    let run = k
        .run_stdin(
            &["create", "--field-manager", &manager, "-f", "-"],
            &configmap("managed", ns, 10),
        )
        .failure();
    assert!(
        run.stderr
            .contains("fieldManager: Too long: may not be more than 128 bytes"),
        "{}",
        run.stderr
    );
    // The server goes on.
    let run = k.run(&["get", "--raw", "/readyz"]).success();
    assert_eq!(run.stdout.trim(), "ok");
}

fn run(version: &str) {
    with_kubectl(version, limits);
}

#[test]
fn kubectl_1_35_meets_kubes_limits() {
    run("1.35");
}

#[test]
fn kubectl_1_27_meets_kubes_limits() {
    run("1.27");
}
