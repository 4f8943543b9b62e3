//! `kubectl explain` (OpenAPI v3 component schemas) and server-side field validation
//! (`fieldValidation=Strict`, which kubectl ≥ 1.27 sends by default) through real kubectl.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kubox_conformance::{with_kubectl, Kubectl};

fn deployment(name: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: 2
{extra_spec}  selector:
    matchLabels:
      app: {name}
  template:
    metadata:
      labels:
        app: {name}
    spec:
      containers:
      - name: web
        image: nginx
"
    )
}

/// Whether kubectl's log (`-v=9`) says the answer to the GET of `url_part` came from its HTTP
/// cache (the `X-From-Cache` header its cache adds, listed under the response line).
fn from_cache(log: &str, url_part: &str) -> bool {
    let mut lines = log.lines();
    lines
        .by_ref()
        .find(|l| l.contains("\"Response\" verb=\"GET\"") && l.contains(url_part))
        .unwrap_or_else(|| panic!("no answer to {url_part} in:\n{log}"));
    lines
        .take_while(|l| l.starts_with('\t'))
        .any(|l| l.trim() == "X-From-Cache: 1")
}

fn explain_and_validate(k: &Kubectl, ns: &str) {
    // explain reads /openapi/v3/apis/apps/v1: the field, its type and its description. The
    // document's URL names its hash, and kubectl's cache keeps it for good: the next explain
    // reads it from there (the root revalidated by its ETag).
    let first = k
        .run(&["explain", "deployment.spec.replicas", "-v=9"])
        .success();
    let doc = "/openapi/v3/apis/apps/v1?hash=";
    assert!(!from_cache(&first.stderr, doc));
    let again = k
        .run(&["explain", "deployment.spec.replicas", "-v=9"])
        .success();
    assert!(from_cache(&again.stderr, doc));
    assert!(from_cache(&again.stderr, "/openapi/v3?"));
    assert_eq!(again.stdout, first.stdout);
    let out = first.stdout;
    assert!(out.contains("KIND:       Deployment"), "{out}");
    assert!(out.contains("VERSION:    v1"), "{out}");
    assert!(out.contains("FIELD: replicas <integer>"), "{out}");
    assert!(out.contains("Number of desired pods."), "{out}");
    let out = k.run(&["explain", "deployment.spec"]).success().stdout;
    assert!(out.contains("DeploymentSpec is the specification"), "{out}");
    assert!(
        out.contains("template\t<PodTemplateSpec> -required-"),
        "{out}"
    );
    assert!(out.contains("strategy\t<DeploymentStrategy>"), "{out}");
    let out = k
        .run(&["explain", "pods.spec.containers.ports"])
        .success()
        .stdout;
    assert!(out.contains("containerPort\t<integer> -required-"), "{out}");
    let out = k.run(&["explain", "configmap"]).success().stdout;
    assert!(out.contains("data\t<map[string]string>"), "{out}");
    let out = k
        .run(&["explain", "deployment.spec.bogus"])
        .failure()
        .stderr;
    assert!(out.contains("field \"bogus\" does not exist"), "{out}");

    k.run_stdin(
        &["create", "-f", "-"],
        &format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n"),
    )
    .success();
    // kubectl sends fieldValidation=Strict: an unknown field fails with kube's message.
    let bad = deployment("bad", "  bogus: true\n");
    let err = k
        .run_stdin(&["create", "-n", ns, "-f", "-"], &bad)
        .failure()
        .stderr;
    assert!(
        err.contains(
            r#"Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: unknown field "spec.bogus""#
        ),
        "{err}"
    );
    assert!(err.contains("Error from server (BadRequest)"), "{err}");
    k.run(&["get", "deployment", "bad", "-n", ns]).failure();
    // --validate=false sends fieldValidation=Ignore: created, field dropped, no warning.
    let run = k
        .run_stdin(&["create", "--validate=false", "-n", ns, "-f", "-"], &bad)
        .success();
    assert!(!run.stderr.contains("unknown field"), "{}", run.stderr);
    let got = k
        .run(&["get", "deployment", "bad", "-n", ns, "-o", "json"])
        .success()
        .json();
    assert!(got["spec"].get("bogus").is_none(), "{got}");
    assert_eq!(got["spec"]["replicas"], 2);
    // --validate=warn: created, with kubectl printing the server's warning.
    let run = k
        .run_stdin(
            &["create", "--validate=warn", "-n", ns, "-f", "-"],
            &deployment("warned", "  bogus: true\n"),
        )
        .success();
    assert!(
        run.stderr
            .contains(r#"Warning: unknown field "spec.bogus""#),
        "{}",
        run.stderr
    );
    // A clean manifest goes through strict validation, and so does a round trip of it.
    k.run_stdin(&["create", "-n", ns, "-f", "-"], &deployment("good", ""))
        .success();
    let yaml = k
        .run(&["get", "deployment", "good", "-n", ns, "-o", "yaml"])
        .success()
        .stdout;
    let run = k
        .run_stdin(&["replace", "-n", ns, "-f", "-"], &yaml)
        .success();
    assert!(!run.stderr.contains("Warning"), "{}", run.stderr);
}

fn run(version: &str) {
    with_kubectl(version, explain_and_validate);
}

#[test]
fn kubectl_1_35_explain_and_field_validation() {
    run("1.35");
}

#[test]
fn kubectl_1_33_explain_and_field_validation() {
    run("1.33");
}
