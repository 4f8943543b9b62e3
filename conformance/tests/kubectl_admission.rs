//! Admission through kubectl: a ValidatingAdmissionPolicy that denies (the error kubectl
//! prints) and one that warns (the `Warning:` line kubectl prints), and a mutating webhook
//! (HTTPS, written here) whose change kubectl reads back, called by URL and through a `service`
//! reference routed by a selector-less Service's EndpointSlice on 127.0.0.1; kubectl 1.27 and
//! 1.35.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use base64::Engine;
use kubox_conformance::webhook_server::WebhookServer;
use kubox_conformance::{kubectl_bin, Backend, Kubectl, Target};
use serde_json::{json, Value};

fn policy(name: &str, ns: &str, expression: &str, message: &str, action: &str) -> String {
    format!(
        r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: {name}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - apiGroups: ["apps"]
      apiVersions: ["v1"]
      operations: ["CREATE", "UPDATE"]
      resources: ["deployments"]
  validations:
  - expression: "{expression}"
    message: "{message}"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: {name}
spec:
  policyName: {name}
  validationActions: [{action}]
  matchResources:
    namespaceSelector:
      matchLabels:
        admission-scenario: {ns}
"#
    )
}

fn deployment(name: &str, replicas: u32) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: web
        image: nginx
"#
    )
}

fn scenario(k: &Kubectl, ns: &str) {
    k.run_stdin(
        &["create", "-f", "-"],
        &format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n  labels:\n    admission-scenario: {ns}\n"
        ),
    )
    .success();
    let deny = format!("max-replicas-{ns}");
    let warn = format!("ha-replicas-{ns}");
    k.run_stdin(
        &["apply", "-f", "-"],
        &policy(
            &deny,
            ns,
            "object.spec.replicas <= 5",
            "replicas must be no greater than 5",
            "Deny",
        ),
    )
    .success();
    k.run_stdin(
        &["apply", "-f", "-"],
        &policy(
            &warn,
            ns,
            "object.spec.replicas >= 2",
            "fewer than 2 replicas is not highly available",
            "Warn",
        ),
    )
    .success();

    let err = k
        .run_stdin(&["apply", "-n", ns, "-f", "-"], &deployment("big", 10))
        .failure()
        .stderr;
    assert!(
        err.contains(&format!(
            "ValidatingAdmissionPolicy '{deny}' with binding '{deny}' denied request: replicas must be no greater than 5"
        )),
        "{err}"
    );
    k.run(&["get", "deployment", "big", "-n", ns]).failure();

    let run = k
        .run_stdin(&["apply", "-n", ns, "-f", "-"], &deployment("single", 1))
        .success();
    assert!(
        run.stderr.contains(&format!(
            "Warning: Validation failed for ValidatingAdmissionPolicy '{warn}' with binding '{warn}': fewer than 2 replicas is not highly available"
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.contains("deployment.apps/single created"),
        "{}",
        run.stdout
    );

    // A patch over the limit is an update the policy refuses too.
    let err = k
        .run(&[
            "patch",
            "deployment",
            "single",
            "-n",
            ns,
            "--type=merge",
            "-p",
            r#"{"spec":{"replicas":7}}"#,
        ])
        .failure()
        .stderr;
    assert!(err.contains("replicas must be no greater than 5"), "{err}");

    for name in [&deny, &warn] {
        k.run(&["delete", "validatingadmissionpolicybinding", name])
            .success();
        k.run(&["delete", "validatingadmissionpolicy", name])
            .success();
    }
    k.run_stdin(&["apply", "-n", ns, "-f", "-"], &deployment("big", 10))
        .success();
}

/// A mutating webhook adding the label `mutated-by: kubox-webhook` with a JSONPatch.
fn label_webhook() -> Arc<dyn Fn(Value) -> Option<Value> + Send + Sync> {
    Arc::new(|review: Value| {
        let req = &review["request"];
        let op = if req["object"]["metadata"]["labels"].is_object() {
            json!({"op": "add", "path": "/metadata/labels/mutated-by", "value": "kubox-webhook"})
        } else {
            json!({"op": "add", "path": "/metadata/labels", "value": {"mutated-by": "kubox-webhook"}})
        };
        let patch = base64::engine::general_purpose::STANDARD
            .encode(serde_json::to_vec(&json!([op])).unwrap());
        Some(
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "response": {"uid": req["uid"], "allowed": true, "patchType": "JSONPatch", "patch": patch,
                         "warnings": ["labelled by the test webhook"]}}),
        )
    })
}

/// The labelling webhook's configuration for configmaps in namespace `ns`, reached through
/// `client_config` (the lines under `clientConfig:`, indented by four spaces after the first).
fn label_webhook_config(ns: &str, client_config: &str) -> String {
    format!(
        r#"apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: label-{ns}
webhooks:
- name: label.kubox.test
  clientConfig:
    {client_config}
  rules:
  - apiGroups: [""]
    apiVersions: ["v1"]
    operations: ["CREATE", "UPDATE"]
    resources: ["configmaps"]
  namespaceSelector:
    matchLabels:
      webhook-scenario: {ns}
  failurePolicy: Fail
  sideEffects: None
  admissionReviewVersions: ["v1"]
  timeoutSeconds: 5
"#
    )
}

fn webhook_scenario(k: &Kubectl, ns: &str, ws: &WebhookServer) {
    k.run_stdin(
        &["create", "-f", "-"],
        &format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n  labels:\n    webhook-scenario: {ns}\n"),
    )
    .success();
    let config = label_webhook_config(
        ns,
        &format!(
            "url: {}\n    caBundle: {}",
            ws.url("/mutate"),
            ws.ca_bundle()
        ),
    );
    k.run_stdin(&["apply", "-f", "-"], &config).success();
    let run = k
        .run_stdin(
            &["apply", "-n", ns, "-f", "-"],
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: fast\n",
        )
        .success();
    assert!(
        run.stderr.contains("Warning: labelled by the test webhook"),
        "{}",
        run.stderr
    );
    let label = k
        .run(&[
            "get",
            "configmap",
            "settings",
            "-n",
            ns,
            "-o",
            "jsonpath={.metadata.labels.mutated-by}",
        ])
        .success()
        .stdout;
    assert_eq!(label, "kubox-webhook");
    assert!(ws.calls() >= 1);
    k.run(&[
        "delete",
        "mutatingwebhookconfiguration",
        &format!("label-{ns}"),
    ])
    .success();
}

/// The same webhook named by a `service` reference: a Service without selector and an
/// EndpointSlice naming 127.0.0.1 route it, as on a cluster for a process outside it. Without a
/// ready endpoint the call fails with kube's routing error, and succeeds again once the endpoint
/// is ready.
fn service_webhook_scenario(k: &Kubectl, ns: &str, ws: &WebhookServer) {
    k.run_stdin(
        &["create", "-f", "-"],
        &format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n  labels:\n    webhook-scenario: {ns}\n"),
    )
    .success();
    let port = ws.addr.port();
    let routing = |ready: bool| {
        format!(
            r#"apiVersion: v1
kind: Service
metadata:
  name: label-hook
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
  name: label-hook-1
  namespace: {ns}
  labels:
    kubernetes.io/service-name: label-hook
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
    };
    k.run_stdin(&["apply", "-f", "-"], &routing(false))
        .success();
    let config = label_webhook_config(
        ns,
        &format!(
            "service:\n      namespace: {ns}\n      name: label-hook\n      path: /mutate\n    caBundle: {}",
            ws.ca_bundle()
        ),
    );
    k.run_stdin(&["apply", "-f", "-"], &config).success();
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: fast\n";
    let refused = k.run_stdin(&["apply", "-n", ns, "-f", "-"], cm).failure();
    assert!(
        refused
            .stderr
            .contains("failed calling webhook \"label.kubox.test\"")
            && refused
                .stderr
                .contains("no endpoints available for service \"label-hook\""),
        "{}",
        refused.stderr
    );
    k.run_stdin(&["apply", "-f", "-"], &routing(true)).success();
    k.run_stdin(&["apply", "-n", ns, "-f", "-"], cm).success();
    let label = k
        .run(&[
            "get",
            "configmap",
            "settings",
            "-n",
            ns,
            "-o",
            "jsonpath={.metadata.labels.mutated-by}",
        ])
        .success()
        .stdout;
    assert_eq!(label, "kubox-webhook");
    k.run(&[
        "delete",
        "mutatingwebhookconfiguration",
        &format!("label-{ns}"),
    ])
    .success();
}

fn run(version: &str) {
    let bin = kubectl_bin(version);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let target = rt.block_on(Target::start(Backend::Memory));
    scenario(&Kubectl::new(version, &bin, &target), &target.namespace);
    let ws = rt.block_on(WebhookServer::start(label_webhook(), &[]));
    webhook_scenario(
        &Kubectl::new(version, &bin, &target),
        &format!("{}-wh", target.namespace),
        &ws,
    );
    ws.stop();
    let svc_ns = format!("{}-svc", target.namespace);
    let ws = rt.block_on(WebhookServer::start(
        label_webhook(),
        &[&format!("label-hook.{svc_ns}.svc")],
    ));
    service_webhook_scenario(&Kubectl::new(version, &bin, &target), &svc_ns, &ws);
    ws.stop();
    rt.block_on(target.stop());
}

#[test]
fn kubectl_1_27_shows_policy_denials_warnings_and_webhook_mutations() {
    run("1.27");
}

#[test]
fn kubectl_1_35_shows_policy_denials_warnings_and_webhook_mutations() {
    run("1.35");
}
