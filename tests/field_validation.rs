//! `fieldValidation` on create, update and patch of built-in objects: unknown and duplicate
//! fields are refused (Strict), dropped with `Warning` headers (Warn, the default) or dropped
//! silently (Ignore), with kube-apiserver's messages.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use http::Method;
use serde_json::{json, Value};

const DEPLOYS: &str = "/apis/apps/v1/namespaces/default/deployments";

/// A Deployment manifest as JSON text: `extra_spec` is spliced into `spec`, `extra_top` at the
/// top level (so key order and duplicates are the test's to choose).
fn deployment(name: &str, extra_spec: &str, extra_top: &str) -> String {
    format!(
        r#"{{"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {{"name": "{name}"}},
            "spec": {{"replicas": 1, {extra_spec}
                "selector": {{"matchLabels": {{"app": "web"}}}},
                "template": {{"metadata": {{"labels": {{"app": "web"}}}},
                    "spec": {{"containers": [{{"name": "web", "image": "nginx"}}]}}}}}}
            {extra_top}}}"#
    )
}

fn warnings(r: &Resp) -> Vec<String> {
    r.headers
        .get_all("warning")
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect()
}

async fn post(h: &ServerHandle, query: &str, body: &str) -> Resp {
    send(
        h,
        Method::POST,
        &format!("{DEPLOYS}{query}"),
        "application/json",
        body.to_string(),
    )
    .await
}

#[tokio::test]
async fn strict_refuses_unknown_fields_with_kubes_message() {
    let h = server().await;
    let body = deployment("web", r#""foo": 1,"#, r#", "bar": {"x": 1}"#);
    let r = post(&h, "?fieldValidation=Strict", &body).await;
    let s = r.status_failure(400, "BadRequest");
    assert_eq!(
        s["message"],
        r#"Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: unknown field "spec.foo", unknown field "bar""#
    );
    // Nothing was created.
    get(&h, &format!("{DEPLOYS}/web"))
        .await
        .status_failure(404, "NotFound");
}

#[tokio::test]
async fn strict_reports_nested_paths_and_duplicates_in_document_order() {
    let h = server().await;
    let body = r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"a": "1", "a": "2"}},
        "spec": {"containers": [{"name": "c", "image": "i", "imagePullPolicy": "Always", "imagePullPolicy": "Never",
                                 "ports": [{"containerPort": 80, "bogus": true}]}]}}"#;
    let r = send(
        &h,
        Method::POST,
        "/api/v1/namespaces/default/pods?fieldValidation=Strict",
        "application/json",
        body,
    )
    .await;
    let s = r.status_failure(400, "BadRequest");
    assert_eq!(
        s["message"],
        r#"Pod in version "v1" cannot be handled as a Pod: strict decoding error: duplicate field "metadata.labels.a", duplicate field "spec.containers[0].imagePullPolicy", unknown field "spec.containers[0].ports[0].bogus""#
    );
}

#[tokio::test]
async fn strict_accepts_a_clean_object_and_keeps_maps_and_raw_values() {
    let h = server().await;
    let r = post(&h, "?fieldValidation=Strict", &deployment("web", "", "")).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    assert!(warnings(&r).is_empty());
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "labels": {"any": "label"}, "annotations": {"x/y": "z"}},
        "data": {"free": "keys"}});
    let r = send(
        &h,
        Method::POST,
        &format!("{CM}?fieldValidation=Strict"),
        "application/json",
        cm.to_string(),
    )
    .await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    assert_eq!(r.json()["data"], json!({"free": "keys"}));
    // A RawExtension keeps whatever it holds.
    let rev = json!({"apiVersion": "apps/v1", "kind": "ControllerRevision",
        "metadata": {"name": "r"}, "revision": 1, "data": {"anything": {"goes": [1, 2]}}});
    let r = send(
        &h,
        Method::POST,
        "/apis/apps/v1/namespaces/default/controllerrevisions?fieldValidation=Strict",
        "application/json",
        rev.to_string(),
    )
    .await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    assert_eq!(r.json()["data"], json!({"anything": {"goes": [1, 2]}}));
}

#[tokio::test]
async fn warn_is_the_default_drops_and_warns() {
    let h = server().await;
    for (name, query) in [("a", ""), ("b", "?fieldValidation=Warn")] {
        let body = deployment(name, r#""foo": 1,"#, r#", "bar": 2"#);
        let r = post(&h, query, &body).await;
        assert_eq!(r.status.as_u16(), 201, "{}", r.json());
        assert_eq!(
            warnings(&r),
            vec![
                r#"299 - "unknown field \"spec.foo\"""#,
                r#"299 - "unknown field \"bar\"""#
            ]
        );
        let created = r.json();
        assert!(created["spec"].get("foo").is_none(), "{created}");
        assert!(created.get("bar").is_none(), "{created}");
        let stored = get(&h, &format!("{DEPLOYS}/{name}")).await.json();
        assert!(stored["spec"].get("foo").is_none(), "{stored}");
        assert_eq!(stored["spec"]["replicas"], 1);
    }
}

#[tokio::test]
async fn ignore_drops_silently() {
    let h = server().await;
    let body = deployment("web", r#""foo": 1,"#, r#", "bar": 2"#);
    let r = post(&h, "?fieldValidation=Ignore", &body).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    assert!(warnings(&r).is_empty());
    let created = r.json();
    assert!(created["spec"].get("foo").is_none() && created.get("bar").is_none());
}

#[tokio::test]
async fn invalid_field_validation_value_is_refused() {
    let h = server().await;
    let r = post(&h, "?fieldValidation=strict", &deployment("web", "", "")).await;
    let s = r.status_failure(422, "Invalid");
    assert_eq!(
        s["message"],
        r#"CreateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "strict": supported values: "", "Ignore", "Strict", "Warn""#
    );
    assert_eq!(s["details"]["causes"][0]["field"], "fieldValidation");
    let r = send(
        &h,
        Method::PATCH,
        &format!("{CM}/x?fieldValidation=Bogus"),
        "application/merge-patch+json",
        "{}",
    )
    .await;
    let s = r.status_failure(422, "Invalid");
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .starts_with(r#"PatchOptions.meta.k8s.io "" is invalid"#),
        "{s}"
    );
}

#[tokio::test]
async fn yaml_bodies_are_checked_too() {
    let h = server().await;
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\n  nope: 1\ndata:\n  a: b\nextra: true\n";
    assert_eq!(
        strict_yaml_refusal(&h, yaml).await,
        r#"ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: unknown field "metadata.nope", unknown field "extra""#
    );
}

/// The message of the 400 a strict create of a YAML ConfigMap gets.
async fn strict_yaml_refusal(h: &ServerHandle, yaml: &str) -> Value {
    let r = send(
        h,
        Method::POST,
        &format!("{CM}?fieldValidation=Strict"),
        "application/yaml",
        yaml.to_string(),
    )
    .await;
    r.status_failure(400, "BadRequest")["message"].clone()
}

#[tokio::test]
async fn wrong_types_stay_the_decode_error() {
    let h = server().await;
    let body = deployment("web", r#""replicas": "three", "foo": 1,"#, "");
    let r = post(&h, "?fieldValidation=Strict", &body).await;
    let s = r.status_failure(400, "BadRequest");
    let msg = s["message"].as_str().unwrap();
    assert!(!msg.contains("strict decoding error"), "{msg}");
    assert!(msg.starts_with("Deployment in version \"v1\" cannot be handled as a Deployment"));
}

#[tokio::test]
async fn update_checks_fields() {
    let h = server().await;
    let r = post(&h, "", &deployment("web", "", "")).await;
    assert_eq!(r.status.as_u16(), 201);
    let mut current: Value = r.json();
    current["spec"]["foo"] = json!(1);
    let path = format!("{DEPLOYS}/web");
    let r = send(
        &h,
        Method::PUT,
        &format!("{path}?fieldValidation=Strict"),
        "application/json",
        current.to_string(),
    )
    .await;
    let s = r.status_failure(400, "BadRequest");
    assert_eq!(
        s["message"],
        r#"Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: unknown field "spec.foo""#
    );
    let r = send(
        &h,
        Method::PUT,
        &path,
        "application/json",
        current.to_string(),
    )
    .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.json());
    assert_eq!(warnings(&r), vec![r#"299 - "unknown field \"spec.foo\"""#]);
    assert!(r.json()["spec"].get("foo").is_none());
}

#[tokio::test]
async fn patches_check_the_patched_object() {
    let h = server().await;
    assert_eq!(
        post(&h, "", &deployment("web", "", ""))
            .await
            .status
            .as_u16(),
        201
    );
    let path = format!("{DEPLOYS}/web");
    // Merge patch, Strict: 422 with the patched object as the invalid value.
    let r = send(
        &h,
        Method::PATCH,
        &format!("{path}?fieldValidation=Strict"),
        "application/merge-patch+json",
        r#"{"spec": {"foo": 1}}"#,
    )
    .await;
    let s = r.status_failure(422, "Invalid");
    let msg = s["message"].as_str().unwrap();
    assert!(
        msg.starts_with(r#" "" is invalid: patch: Invalid value: "{"#),
        "{msg}"
    );
    assert!(
        msg.ends_with(r#": strict decoding error: unknown field "spec.foo""#),
        "{msg}"
    );
    // Strategic merge patch, Strict: the patch map as Go prints it; duplicates in the patch.
    let r = send(
        &h,
        Method::PATCH,
        &format!("{path}?fieldValidation=Strict"),
        "application/strategic-merge-patch+json",
        r#"{"spec": {"paused": true, "paused": false, "foo": 1}}"#,
    )
    .await;
    let s = r.status_failure(422, "Invalid");
    assert_eq!(
        s["message"],
        r#" "" is invalid: patch: Invalid value: "map[spec:map[foo:1 paused:false]]": strict decoding error: duplicate field "spec.paused", unknown field "spec.foo""#
    );
    // JSON patch, Warn (default): applied, field dropped, warning.
    let r = send(
        &h,
        Method::PATCH,
        &path,
        "application/json-patch+json",
        r#"[{"op": "add", "path": "/spec/foo", "value": 1}, {"op": "replace", "path": "/spec/replicas", "value": 3}]"#,
    )
    .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.json());
    assert_eq!(warnings(&r), vec![r#"299 - "unknown field \"spec.foo\"""#]);
    let patched = r.json();
    assert_eq!(patched["spec"]["replicas"], 3);
    assert!(patched["spec"].get("foo").is_none());
    // Ignore: silent.
    let r = send(
        &h,
        Method::PATCH,
        &format!("{path}?fieldValidation=Ignore"),
        "application/merge-patch+json",
        r#"{"spec": {"foo": 1, "replicas": 4}}"#,
    )
    .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.json());
    assert!(warnings(&r).is_empty());
    assert_eq!(r.json()["spec"]["replicas"], 4);
}

#[tokio::test]
async fn server_side_apply_refuses_undeclared_fields() {
    let h = server().await;
    let path = format!("{DEPLOYS}/web?fieldManager=test");
    let yaml = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: default\nspec:\n  bogus: 1\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: nginx\n        wat: 2\n";
    let r = send(
        &h,
        Method::PATCH,
        &path,
        "application/apply-patch+yaml",
        yaml,
    )
    .await;
    assert_eq!(r.status.as_u16(), 500);
    let s = r.json();
    assert!(s.get("reason").is_none(), "{s}");
    assert_eq!(
        s["message"],
        "failed to create typed patch object (default/web; apps/v1, Kind=Deployment): errors:\n  .spec.bogus: field not declared in schema\n  .spec.template.spec.containers[name=\"web\"].wat: field not declared in schema"
    );
}

#[tokio::test]
async fn openapi_v3_documents_carry_schemas() {
    let h = server().await;
    let root = get(&h, "/openapi/v3").await.json();
    let url = root["paths"]["apis/apps/v1"]["serverRelativeURL"]
        .as_str()
        .unwrap()
        .to_string();
    let doc = get(&h, &url).await.json();
    let schemas = &doc["components"]["schemas"];
    let d = &schemas["io.k8s.api.apps.v1.Deployment"];
    assert_eq!(
        d["x-kubernetes-group-version-kind"],
        json!([{"group": "apps", "kind": "Deployment", "version": "v1"}])
    );
    assert_eq!(
        d["properties"]["spec"]["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"
    );
    assert!(
        schemas["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["replicas"]["description"]
            .as_str()
            .unwrap()
            .contains("Number of desired pods")
    );
    let op = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["get"];
    assert_eq!(
        op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/io.k8s.api.apps.v1.Deployment"
    );
    let core = get(&h, "/openapi/v3/api/v1").await.json();
    assert!(core["components"]["schemas"]["io.k8s.api.core.v1.Pod"].is_object());
    let v2 = get(&h, "/openapi/v2").await.json();
    assert_eq!(
        v2["definitions"]["io.k8s.api.apps.v1.Deployment"]["properties"]["spec"]["$ref"],
        "#/definitions/io.k8s.api.apps.v1.DeploymentSpec"
    );
}

/// A body whose only fault is a repeated key is reported as one with undeclared fields is:
/// creates and updates (JSON and YAML), merge and strategic merge patches.
#[tokio::test]
async fn a_repeated_key_alone_is_reported() {
    let h = server().await;
    let body = deployment("web", r#""replicas": 2,"#, "");
    let r = post(&h, "?fieldValidation=Strict", &body).await;
    let s = r.status_failure(400, "BadRequest");
    assert_eq!(
        s["message"],
        r#"Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: duplicate field "spec.replicas""#
    );
    let r = post(&h, "", &body).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    assert_eq!(
        warnings(&r),
        vec![r#"299 - "duplicate field \"spec.replicas\"""#]
    );
    // The last of the repeated values is kept, as Go's decoder keeps it.
    assert_eq!(r.json()["spec"]["replicas"], 2);

    let path = format!("{DEPLOYS}/web");
    let mut current = r.json();
    current["spec"]["replicas"] = json!(3);
    let text = current.to_string().replacen(
        r#""metadata":{"#,
        r#""metadata":{"labels":{"a":"1"},"labels":{"a":"2"},"#,
        1,
    );
    let r = send(&h, Method::PUT, &path, "application/json", text).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.json());
    assert_eq!(
        warnings(&r),
        vec![r#"299 - "duplicate field \"metadata.labels\"""#]
    );

    let r = send(
        &h,
        Method::PATCH,
        &path,
        "application/merge-patch+json",
        r#"{"spec": {"paused": true, "paused": false}}"#,
    )
    .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.json());
    assert_eq!(
        warnings(&r),
        vec![r#"299 - "duplicate field \"spec.paused\"""#]
    );
    let r = send(
        &h,
        Method::PATCH,
        &format!("{path}?fieldValidation=Strict"),
        "application/strategic-merge-patch+json",
        r#"{"spec": {"minReadySeconds": 1, "minReadySeconds": 2}}"#,
    )
    .await;
    let s = r.status_failure(422, "Invalid");
    assert_eq!(
        s["message"],
        r#" "" is invalid: patch: Invalid value: "map[spec:map[minReadySeconds:2]]": strict decoding error: duplicate field "spec.minReadySeconds""#
    );

    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\ndata:\n  a: b\n  a: c\n";
    assert_eq!(
        strict_yaml_refusal(&h, yaml).await,
        r#"ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: duplicate field "data.a""#
    );
}
