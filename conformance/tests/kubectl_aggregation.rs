//! API aggregation through kubectl: an extension API server written here (HTTPS on 127.0.0.1,
//! group `wardle.example.com`) registered by an APIService that names a selector-less Service
//! whose EndpointSlice points at it. kubectl lists its resources, creates, gets and watches
//! them through kubox; the caller's identity reaches the extension server in the front-proxy
//! headers, and kubox's RBAC decides first. The APIService's `Available` condition follows the
//! endpoint and the server (MissingEndpoints, ServiceNotFound, FailedDiscoveryCheck) and comes
//! back; the local APIServices kube registers are listed. kubectl 1.27 and 1.35.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use kubox_conformance::extension_server::ExtensionServer;
use kubox_conformance::{kubectl_bin, Backend, Kubectl, Target};

const API_SERVICE: &str = "v1alpha1.wardle.example.com";

fn routing(ns: &str, port: u16, ready: bool) -> String {
    format!(
        r#"apiVersion: v1
kind: Service
metadata:
  name: wardle
  namespace: {ns}
spec:
  ports:
  - name: https
    port: 443
    targetPort: {port}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: wardle-1
  namespace: {ns}
  labels:
    kubernetes.io/service-name: wardle
addressType: IPv4
ports:
- name: https
  port: {port}
  protocol: TCP
endpoints:
- addresses: ["127.0.0.1"]
  conditions:
    ready: {ready}
"#
    )
}

fn api_service(ns: &str, ca_bundle: &str) -> String {
    format!(
        r#"apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata:
  name: {API_SERVICE}
spec:
  group: wardle.example.com
  version: v1alpha1
  groupPriorityMinimum: 1000
  versionPriority: 15
  caBundle: {ca_bundle}
  service:
    namespace: {ns}
    name: wardle
"#
    )
}

fn flunder(name: &str) -> String {
    format!(
        "apiVersion: wardle.example.com/v1alpha1\nkind: Flunder\nmetadata:\n  name: {name}\nspec:\n  reference: {name}-ref\n"
    )
}

fn wait_reason(k: &Kubectl, reason: &str) {
    k.run(&[
        "wait",
        &format!("apiservice/{API_SERVICE}"),
        &format!("--for=jsonpath={{.status.conditions[0].reason}}={reason}"),
        "--timeout=60s",
    ])
    .success();
}

fn scenario(k: &Kubectl, ns: &str) {
    k.run(&["create", "namespace", ns]).success();
    let requestheader_ca = k
        .run(&[
            "get",
            "configmap",
            "-n",
            "kube-system",
            "extension-apiserver-authentication",
            "-o",
            "jsonpath={.data.requestheader-client-ca-file}",
        ])
        .success()
        .stdout;
    assert!(requestheader_ca.contains("BEGIN CERTIFICATE"));
    let names = vec![format!("wardle.{ns}.svc")];
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(ExtensionServer::start(&names, &requestheader_ca));

    // Local APIServices, as kube registers them.
    let local = k
        .run(&[
            "get",
            "apiservice",
            "v1.apps",
            "-o",
            "jsonpath={.spec.groupPriorityMinimum} {.status.conditions[0].reason}",
        ])
        .success()
        .stdout;
    assert_eq!(local, "17800 Local");

    k.run_stdin(
        &["apply", "-f", "-"],
        &routing(ns, server.addr.port(), true),
    )
    .success();
    k.run_stdin(&["apply", "-f", "-"], &api_service(ns, &server.ca_bundle()))
        .success();
    k.run(&[
        "wait",
        &format!("apiservice/{API_SERVICE}"),
        "--for=condition=Available",
        "--timeout=60s",
    ])
    .success();

    let resources = k
        .run(&["api-resources", "--api-group=wardle.example.com"])
        .success()
        .stdout;
    assert!(
        resources.contains("flunders") && resources.contains("Flunder"),
        "{resources}"
    );
    let groups = k.run(&["api-versions"]).success().stdout;
    assert!(groups.contains("wardle.example.com/v1alpha1"), "{groups}");
    // The extension server's OpenAPI v2 definitions, merged into kubox's /openapi/v2 (kubectl's
    // `plaintext-openapiv2` explain reads its protobuf form).
    {
        let explain = k
            .run(&["explain", "flunders", "--output=plaintext-openapiv2"])
            .success()
            .stdout;
        assert!(
            explain.contains("A Flunder, as OpenAPI v2 describes it."),
            "{explain}"
        );
    }
    // The extension server's OpenAPI v3 document, through kubox's /openapi/v3.
    if k.version == "1.35" {
        let explain = k.run(&["explain", "flunders.spec"]).success().stdout;
        assert!(
            explain.contains("reference")
                && explain.contains("The name of the flunder it refers to."),
            "{explain}"
        );
    }

    // Create and read through kubox; the creator is who kubox authenticated.
    k.run_stdin(&["create", "-n", ns, "-f", "-"], &flunder("alpha"))
        .success();
    let creator = k
        .run(&[
            "get",
            "flunder",
            "alpha",
            "-n",
            ns,
            "-o",
            "jsonpath={.metadata.annotations.wardle\\.example\\.com/created-by}",
        ])
        .success()
        .stdout;
    assert_eq!(creator, "kubernetes-admin");
    let table = k.run(&["get", "flunders", "-n", ns]).success().stdout;
    assert!(
        table.contains("REFERENCE") && table.contains("alpha-ref"),
        "{table}"
    );

    // A watch streams through kubox.
    let mut watch = k.command(&["get", "flunders", "-n", ns, "-w", "--no-headers"]);
    watch.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = watch.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    // The listed object first, then the one created after the watch started.
    let first = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert!(first.starts_with("alpha"), "{first}");
    k.run_stdin(&["create", "-n", ns, "-f", "-"], &flunder("beta"))
        .success();
    let next = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert!(next.starts_with("beta"), "{next}");
    let _ = child.kill();
    let _ = child.wait();

    // kubox's RBAC decides before the extension server sees anything.
    let denied = k.run(&["get", "flunders", "-n", ns, "--as=jane"]).failure();
    assert!(
        denied.stderr.contains(
            "User \"jane\" cannot list resource \"flunders\" in API group \"wardle.example.com\""
        ),
        "{}",
        denied.stderr
    );
    assert!(!server.seen().iter().any(|s| s.user == "jane"));
    k.run(&[
        "create",
        "role",
        "flunder-reader",
        "-n",
        ns,
        "--verb=get,list",
        "--resource=flunders.wardle.example.com",
    ])
    .success();
    k.run(&[
        "create",
        "rolebinding",
        "jane-reads",
        "-n",
        ns,
        "--role=flunder-reader",
        "--user=jane",
    ])
    .success();
    k.run(&["get", "flunders", "-n", ns, "--as=jane", "--as-group=devs"])
        .success();
    let jane = server
        .seen()
        .into_iter()
        .find(|s| s.user == "jane")
        .expect("the extension server saw jane");
    assert_eq!(jane.groups, ["devs", "system:authenticated"]);
    assert_eq!(jane.forwarded_for.as_deref(), Some("127.0.0.1"));

    // Availability follows the endpoint, the Service and the server, and comes back.
    k.run_stdin(
        &["apply", "-f", "-"],
        &routing(ns, server.addr.port(), false),
    )
    .success();
    wait_reason(k, "MissingEndpoints");
    let unavailable = k.run(&["get", "flunders", "-n", ns]).failure();
    assert!(
        unavailable
            .stderr
            .contains("the server is currently unable to handle the request"),
        "{}",
        unavailable.stderr
    );
    k.run(&["delete", "service", "wardle", "-n", ns]).success();
    wait_reason(k, "ServiceNotFound");
    server.stop();
    k.run_stdin(
        &["apply", "-f", "-"],
        &routing(ns, server.addr.port(), true),
    )
    .success();
    wait_reason(k, "FailedDiscoveryCheck");
    let restarted = rt.block_on(ExtensionServer::start(&names, &requestheader_ca));
    k.run_stdin(
        &["apply", "-f", "-"],
        &api_service(ns, &restarted.ca_bundle()),
    )
    .success();
    k.run_stdin(
        &["apply", "-f", "-"],
        &routing(ns, restarted.addr.port(), true),
    )
    .success();
    wait_reason(k, "Passed");
    k.run(&["get", "flunders", "-n", ns]).success();
    k.run(&["delete", "apiservice", API_SERVICE]).success();
}

fn run(version: &str) {
    let bin = kubectl_bin(version);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let target = rt.block_on(Target::start(Backend::Memory));
    scenario(&Kubectl::new(version, &bin, &target), &target.namespace);
    rt.block_on(target.stop());
}

#[test]
fn kubectl_1_27_reaches_an_aggregated_api() {
    run("1.27");
}

#[test]
fn kubectl_1_35_reaches_an_aggregated_api() {
    run("1.35");
}
