//! Every class of bad input gets a Kubernetes Status with kube-apiserver's code and reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use serde_json::json;
use tower::ServiceExt;

#[tokio::test]
async fn malformed_json_body_is_400_bad_request() {
    let h = server().await;
    let r = send(
        &h,
        Method::POST,
        CM,
        "application/json",
        "{\"apiVersion\": \"v1\",",
    )
    .await;
    let s = r.status_failure(400, "BadRequest");
    assert!(s["message"].as_str().unwrap().contains("json"), "{s}");
}

#[tokio::test]
async fn malformed_yaml_body_is_400_bad_request() {
    let h = server().await;
    let r = send(
        &h,
        Method::POST,
        CM,
        "application/yaml",
        "kind: ConfigMap\nmetadata: [unclosed\n",
    )
    .await;
    r.status_failure(400, "BadRequest");
}

#[tokio::test]
async fn non_object_body_is_400() {
    let h = server().await;
    send(&h, Method::POST, CM, "application/json", "[1,2]")
        .await
        .status_failure(400, "BadRequest");
    send(&h, Method::POST, CM, "application/json", "")
        .await
        .status_failure(400, "BadRequest");
}

#[tokio::test]
async fn yaml_body_creates_an_object() {
    let h = server().await;
    let r = send(
        &h,
        Method::POST,
        CM,
        "application/yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\ndata:\n  a: b\n",
    )
    .await;
    assert_eq!(
        r.status.as_u16(),
        201,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.json()["data"]["a"], "b");
}

#[tokio::test]
async fn unsupported_content_type_is_415() {
    let h = server().await;
    send(&h, Method::POST, CM, "text/plain", "x")
        .await
        .status_failure(415, "UnsupportedMediaType");
    post_json(&h, CM, &configmap("p")).await;
    let r = send(
        &h,
        Method::PATCH,
        &format!("{CM}/p"),
        "application/json",
        "{}",
    )
    .await;
    r.status_failure(415, "UnsupportedMediaType");
}

#[tokio::test]
async fn unacceptable_accept_header_is_406() {
    let h = server().await;
    let r = send_with(
        &h,
        Method::GET,
        CM,
        // Tables have no protobuf form.
        &[(
            "accept",
            "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io",
        )],
        "",
    )
    .await;
    r.status_failure(406, "NotAcceptable");
    let r = send_with(&h, Method::GET, CM, &[("accept", "text/html")], "").await;
    r.status_failure(406, "NotAcceptable");
}

#[tokio::test]
async fn wrong_kind_or_api_version_for_the_endpoint_is_400() {
    let h = server().await;
    let mut d = configmap("w");
    d["kind"] = json!("Secret");
    let s = post_json(&h, CM, &d)
        .await
        .status_failure(400, "BadRequest");
    // kube decodes the Secret, then cannot convert it to the endpoint's internal type.
    assert_eq!(
        s["message"],
        "Secret in version \"v1\" cannot be handled as a ConfigMap: converting (v1.Secret) to (core.ConfigMap): unknown conversion"
    );
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}});
    let s = post_json(&h, "/api/v1/namespaces", &pod)
        .await
        .status_failure(400, "BadRequest");
    assert_eq!(
        s["message"],
        "Pod in version \"v1\" cannot be handled as a Namespace: converting (v1.Pod) to (core.Namespace): unknown conversion"
    );
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "d"}});
    let s = post_json(&h, "/apis/apps/v1/namespaces/default/deployments", &cm)
        .await
        .status_failure(400, "BadRequest");
    assert_eq!(
        s["message"],
        "ConfigMap in version \"v1\" cannot be handled as a Deployment: converting (v1.ConfigMap) to (apps.Deployment): unknown conversion"
    );
    let mut d = configmap("w");
    d["apiVersion"] = json!("apps/v1");
    post_json(&h, CM, &d)
        .await
        .status_failure(400, "BadRequest");
}

#[tokio::test]
async fn wrong_field_types_are_400_with_kube_apiserver_decode_message() {
    let h = server().await;
    let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"replicas": "three", "selector": {"matchLabels": {"a": "b"}},
                 "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
    let r = post_json(&h, "/apis/apps/v1/namespaces/default/deployments", &d).await;
    let s = r.status_failure(400, "BadRequest");
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .starts_with("Deployment in version \"v1\" cannot be handled as a Deployment"),
        "{s}"
    );
}

/// A value of the wrong type where admission plugins and defaulting reach (a Pod's `spec`, a
/// workload's pod template, a Service's `spec`) is a 400 before they touch it: never a 500.
#[tokio::test]
async fn wrong_shapes_are_400_before_admission_and_defaulting_on_every_write() {
    let h = server().await;
    let cases = [
        (
            "/api/v1/namespaces/default/pods",
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": "x"}),
        ),
        (
            "/api/v1/namespaces/default/pods",
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i", "env": "x"}]}}),
        ),
        (
            "/api/v1/namespaces/default/services",
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": "x"}),
        ),
        (
            "/apis/apps/v1/namespaces/default/deployments",
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"template": {"spec": "x"}}}),
        ),
        (
            "/apis/batch/v1/namespaces/default/jobs",
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"}, "spec": {"template": "x"}}),
        ),
        (
            "/api/v1/namespaces/default/limitranges",
            json!({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "l"}, "spec": {"limits": "x"}}),
        ),
        (
            "/api/v1/namespaces/default/resourcequotas",
            json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"}, "spec": "x"}),
        ),
    ];
    for (path, obj) in &cases {
        let r = post_json(&h, path, obj).await;
        let s = r.status_failure(400, "BadRequest");
        assert!(
            s["message"]
                .as_str()
                .unwrap()
                .contains("cannot be handled as a"),
            "{s}"
        );
    }
    // The same through an update and a merge patch of an existing Pod.
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "ok"},
        "spec": {"containers": [{"name": "c", "image": "i"}]}});
    post_json(&h, "/api/v1/namespaces/default/pods", &pod).await;
    let mut bad = pod.clone();
    bad["spec"] = json!("x");
    let r = send(
        &h,
        Method::PUT,
        "/api/v1/namespaces/default/pods/ok",
        "application/json",
        serde_json::to_vec(&bad).unwrap(),
    )
    .await;
    r.status_failure(400, "BadRequest");
    let r = send(
        &h,
        Method::PATCH,
        "/api/v1/namespaces/default/pods/ok",
        "application/merge-patch+json",
        r#"{"spec": "x"}"#,
    )
    .await;
    r.status_failure(400, "BadRequest");
}

#[tokio::test]
async fn invalid_name_is_422_with_field_causes() {
    let h = server().await;
    let r = post_json(&h, CM, &configmap("Not_Valid")).await;
    let s = r.status_failure(422, "Invalid");
    assert_eq!(s["details"]["causes"][0]["field"], "metadata.name");
    assert_eq!(s["details"]["causes"][0]["reason"], "FieldValueInvalid");
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .starts_with("ConfigMap \"Not_Valid\" is invalid: metadata.name: Invalid value"),
        "{s}"
    );
}

#[tokio::test]
async fn missing_required_fields_are_422() {
    let h = server().await;
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": []}});
    let s = post_json(&h, "/api/v1/namespaces/default/pods", &pod)
        .await
        .status_failure(422, "Invalid");
    assert_eq!(s["details"]["causes"][0]["reason"], "FieldValueRequired");
    let no_name = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}});
    post_json(&h, CM, &no_name)
        .await
        .status_failure(422, "Invalid");
}

#[tokio::test]
async fn duplicate_create_is_409_already_exists() {
    let h = server().await;
    assert_eq!(
        post_json(&h, CM, &configmap("dup")).await.status.as_u16(),
        201
    );
    let s = post_json(&h, CM, &configmap("dup"))
        .await
        .status_failure(409, "AlreadyExists");
    assert_eq!(s["message"], "configmaps \"dup\" already exists");
    assert_eq!(s["details"]["name"], "dup");
}

#[tokio::test]
async fn stale_resource_version_update_is_409_conflict() {
    let h = server().await;
    let created = post_json(&h, CM, &configmap("c")).await.json();
    let mut v1 = created.clone();
    v1["data"]["k"] = json!("new");
    assert_eq!(
        put_json(&h, &format!("{CM}/c"), &v1).await.status.as_u16(),
        200
    );
    let mut stale = created;
    stale["data"]["k"] = json!("lost");
    let s = put_json(&h, &format!("{CM}/c"), &stale)
        .await
        .status_failure(409, "Conflict");
    assert_eq!(
        s["message"],
        "Operation cannot be fulfilled on configmaps \"c\": the object has been modified; please apply your changes to the latest version and try again"
    );
}

#[tokio::test]
async fn unknown_paths_and_objects_are_404() {
    let h = server().await;
    get(&h, "/api/v1/namespaces/default/widgets")
        .await
        .status_failure(404, "NotFound");
    get(&h, "/apis/nope.example.com/v1")
        .await
        .status_failure(404, "NotFound");
    let s = get(&h, &format!("{CM}/missing"))
        .await
        .status_failure(404, "NotFound");
    assert_eq!(s["message"], "configmaps \"missing\" not found");
    let s = get(&h, "/apis/apps/v1/namespaces/default/deployments/missing")
        .await
        .status_failure(404, "NotFound");
    assert_eq!(s["message"], "deployments.apps \"missing\" not found");
}

#[tokio::test]
async fn create_in_a_missing_namespace_is_404() {
    let h = server().await;
    let s = post_json(&h, "/api/v1/namespaces/nope/configmaps", &configmap("x"))
        .await
        .status_failure(404, "NotFound");
    assert_eq!(s["message"], "namespaces \"nope\" not found");
}

#[tokio::test]
async fn namespace_mismatch_between_body_and_url_is_400() {
    let h = server().await;
    let mut cm = configmap("x");
    cm["metadata"]["namespace"] = json!("kube-system");
    post_json(&h, CM, &cm)
        .await
        .status_failure(400, "BadRequest");
}

#[tokio::test]
async fn bad_label_selector_is_400() {
    let h = server().await;
    let r = get(&h, &format!("{CM}?labelSelector=a%20in%20(")).await;
    r.status_failure(400, "BadRequest");
    get(&h, &format!("{CM}?labelSelector=%3Db"))
        .await
        .status_failure(400, "BadRequest");
}

#[tokio::test]
async fn unsupported_field_selector_is_400() {
    let h = server().await;
    let s = get(&h, &format!("{CM}?fieldSelector=spec.bogus%3Dx"))
        .await
        .status_failure(400, "BadRequest");
    assert!(s["message"].as_str().unwrap().contains("spec.bogus"), "{s}");
    let s = get(&h, "/api/v1/pods?fieldSelector=spec.bogus%3Dx")
        .await
        .status_failure(400, "BadRequest");
    assert_eq!(s["message"], "field label not supported: spec.bogus");
    assert_eq!(
        get(&h, "/api/v1/pods?fieldSelector=spec.nodeName%3Dn1")
            .await
            .status
            .as_u16(),
        200
    );
}

#[tokio::test]
async fn bad_resource_versions_are_400() {
    let h = server().await;
    get(&h, &format!("{CM}?resourceVersion=abc"))
        .await
        .status_failure(400, "BadRequest");
    get(&h, &format!("{CM}?resourceVersionMatch=Exact"))
        .await
        .status_failure(400, "BadRequest");
    get(
        &h,
        &format!("{CM}?resourceVersion=1&resourceVersionMatch=Sometimes"),
    )
    .await
    .status_failure(400, "BadRequest");
    get(&h, &format!("{CM}?resourceVersion=5&continue=abc"))
        .await
        .status_failure(400, "BadRequest");
    get(&h, &format!("{CM}?continue=not-a-token"))
        .await
        .status_failure(400, "BadRequest");
}

#[tokio::test]
async fn future_resource_version_is_504_too_large() {
    let h = server().await;
    let r = get(&h, &format!("{CM}?resourceVersion=999999")).await;
    let s = r.status_failure(504, "Timeout");
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .starts_with("Too large resource version"),
        "{s}"
    );
}

#[tokio::test]
async fn malformed_patches_are_400_and_failing_ones_422() {
    let h = server().await;
    post_json(&h, CM, &configmap("p")).await;
    let path = format!("{CM}/p");
    patch(
        &h,
        &path,
        "application/json-patch+json",
        "{\"op\": \"add\"}",
    )
    .await
    .status_failure(400, "BadRequest");
    patch(&h, &path, "application/merge-patch+json", "[1]")
        .await
        .status_failure(400, "BadRequest");
    patch(
        &h,
        &path,
        "application/strategic-merge-patch+json",
        "{not json",
    )
    .await
    .status_failure(400, "BadRequest");
    patch(&h, &path, "application/merge-patch+json", "")
        .await
        .status_failure(400, "BadRequest");
    let r = patch(
        &h,
        &path,
        "application/json-patch+json",
        r#"[{"op": "test", "path": "/data/k", "value": "other"}]"#,
    )
    .await;
    r.status_failure(422, "Invalid");
    let r = patch(
        &h,
        &path,
        "application/json-patch+json",
        r#"[{"op": "remove", "path": "/data/missing"}]"#,
    )
    .await;
    r.status_failure(422, "Invalid");
    let r = patch(
        &h,
        &path,
        "application/strategic-merge-patch+json",
        r#"{"data": {"$patch": "explode"}}"#,
    )
    .await;
    assert!(
        r.status.is_client_error(),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
}

#[tokio::test]
async fn patch_of_a_missing_object_is_404() {
    let h = server().await;
    patch(
        &h,
        &format!("{CM}/none"),
        "application/merge-patch+json",
        "{}",
    )
    .await
    .status_failure(404, "NotFound");
}

#[tokio::test]
async fn apply_patch_without_field_manager_is_422() {
    let h = server().await;
    let r = patch(
        &h,
        &format!("{CM}/a"),
        "application/apply-patch+yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
    )
    .await;
    r.status_failure(422, "Invalid");
}

#[tokio::test]
async fn name_mismatch_between_body_and_url_on_update_is_400() {
    let h = server().await;
    post_json(&h, CM, &configmap("a")).await;
    put_json(&h, &format!("{CM}/a"), &configmap("b"))
        .await
        .status_failure(400, "BadRequest");
}

#[tokio::test]
async fn bad_dry_run_and_propagation_values_are_rejected() {
    let h = server().await;
    post_json(&h, CM, &configmap("a")).await;
    let r = send(
        &h,
        Method::POST,
        &format!("{CM}?dryRun=Sometimes"),
        "application/json",
        serde_json::to_vec(&configmap("b")).unwrap(),
    )
    .await;
    // kube-apiserver's ValidateCreateOptions: 422 naming CreateOptions.
    let s = r.status_failure(422, "Invalid");
    assert_eq!(
        s["message"],
        "CreateOptions.meta.k8s.io \"\" is invalid: dryRun: Unsupported value: [\"Sometimes\"]: supported values: \"All\""
    );
    let r = send(
        &h,
        Method::DELETE,
        &format!("{CM}/a?propagationPolicy=Eventually"),
        "",
        "",
    )
    .await;
    r.status_failure(422, "Invalid");
}

#[tokio::test]
async fn immutable_configmap_data_cannot_change() {
    let h = server().await;
    let mut cm = configmap("imm");
    cm["immutable"] = json!(true);
    post_json(&h, CM, &cm).await;
    let r = patch(
        &h,
        &format!("{CM}/imm"),
        "application/merge-patch+json",
        r#"{"data": {"k": "changed"}}"#,
    )
    .await;
    r.status_failure(422, "Invalid");
}

#[tokio::test]
async fn protected_namespaces_cannot_be_deleted() {
    let h = server().await;
    let r = send(&h, Method::DELETE, "/api/v1/namespaces/default", "", "").await;
    let s = r.status_failure(403, "Forbidden");
    assert_eq!(
        s["message"],
        "namespaces \"default\" is forbidden: this namespace may not be deleted"
    );
}

#[tokio::test]
async fn requests_beyond_the_in_flight_limit_get_429_with_retry_after() {
    let h = Server::builder()
        .memory()
        .in_flight_limits(kubox::chain::InFlightLimits {
            readonly: 0,
            mutating: 1,
        })
        .start()
        .await
        .unwrap();
    // Members of system:masters (the in-process caller here) are not limited, as in kube.
    assert_eq!(get(&h, CM).await.status, StatusCode::OK);
    let jane = kubox::authn::UserInfo {
        username: "jane".into(),
        groups: vec!["system:authenticated".into()],
        ..Default::default()
    };
    let as_jane = |path: &str| {
        let mut req = http::Request::get(path).body(bytes::Bytes::new()).unwrap();
        req.extensions_mut().insert(jane.clone());
        h.service().oneshot(req)
    };
    let r = as_jane(CM).await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers().get("retry-after").unwrap(), "1");
    let body = r.into_body().collect().await.unwrap().to_bytes();
    let s: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(s["reason"], "TooManyRequests", "{s}");
    // Long-running requests are not counted either (jane may not read logs: 403, not 429).
    let r = as_jane("/api/v1/namespaces/default/pods/p/log")
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn oversized_body_is_413_over_http() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let h = Server::builder()
        .memory()
        .insecure_http()
        .start()
        .await
        .unwrap();
    let mut s = tokio::net::TcpStream::connect(h.addr()).await.unwrap();
    let size = 4 * 1024 * 1024;
    let head = format!(
        "POST {CM} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b' '; 64 * 1024];
    for _ in 0..(size / chunk.len()) {
        if s.write_all(&chunk).await.is_err() {
            break;
        }
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(
        text.contains("\"reason\":\"RequestEntityTooLarge\""),
        "{text}"
    );
}

#[tokio::test]
async fn json_patch_test_of_null_passes_for_an_absent_field() {
    let h = server().await;
    post_json(&h, CM, &configmap("t")).await;
    let path = format!("{CM}/t");
    // What kube-rs' finalizer helper sends to add the first finalizer.
    let add_first = r#"[{"op": "test", "path": "/metadata/finalizers", "value": null},
        {"op": "add", "path": "/metadata/finalizers", "value": ["example.com/f"]}]"#;
    let r = patch(&h, &path, "application/json-patch+json", add_first).await;
    assert_eq!(
        r.status.as_u16(),
        200,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.json()["metadata"]["finalizers"], json!(["example.com/f"]));
    // Now present: the same test fails, naming the operation.
    let s = patch(&h, &path, "application/json-patch+json", add_first)
        .await
        .status_failure(422, "Invalid");
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .starts_with("operation '/0' failed at path '/metadata/finalizers'"),
        "{s}"
    );
    // A missing parent is still an error; later operations keep their index.
    patch(
        &h,
        &path,
        "application/json-patch+json",
        r#"[{"op": "test", "path": "/nothing/here", "value": null}]"#,
    )
    .await
    .status_failure(422, "Invalid");
    let s = patch(
        &h,
        &path,
        "application/json-patch+json",
        r#"[{"op": "test", "path": "/data/absent", "value": null},
            {"op": "remove", "path": "/data/missing"}]"#,
    )
    .await
    .status_failure(422, "Invalid");
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .starts_with("operation '/1' failed"),
        "{s}"
    );
    let cm = get(&h, &path).await.json();
    assert_eq!(cm["metadata"]["finalizers"], json!(["example.com/f"]));
    patch(
        &h,
        &path,
        "application/json-patch+json",
        r#"[{"op": "remove", "path": "/metadata/finalizers"}]"#,
    )
    .await;
}

/// ConfigMap and Secret data as kube validates it: keys, keys in both bags, what each Secret type
/// requires, and a Secret's type never changes.
#[tokio::test]
async fn config_map_and_secret_data_are_validated_as_kube_validates_them() {
    let h = server().await;
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
        "data": {"bad key": "x", "..hidden": "y", "a": "1"}, "binaryData": {"a": "MQ=="}});
    assert_eq!(
        post_json(&h, CM, &cm).await.invalid_causes(),
        [
            "data[..hidden]: Invalid value: \"..hidden\": must not start with '..'",
            "data[a]: Invalid value: \"a\": duplicate of key present in binaryData",
            "data[bad key]: Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
        ]
    );
    let secrets = "/api/v1/namespaces/default/secrets";
    let secret = |name: &str, ty: &str, data: serde_json::Value| json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": ty, "data": data});
    for (ty, data, want) in [
        ("kubernetes.io/tls", json!({"tls.crt": "YQ=="}), vec!["data[tls.key]: Required value"]),
        (
            "kubernetes.io/dockerconfigjson",
            json!({".dockerconfigjson": "W10="}),
            vec!["data[.dockerconfigjson]: Invalid value: \"<secret contents redacted>\": json: cannot unmarshal array into Go value of type map[string]interface {}"],
        ),
        ("kubernetes.io/basic-auth", json!({}), vec!["data[%s][username]: Required value", "data[%s][password]: Required value"]),
        ("kubernetes.io/ssh-auth", json!({}), vec!["data[%s][ssh-privatekey]: Required value"]),
        (
            "kubernetes.io/service-account-token",
            json!({}),
            vec!["metadata.annotations[kubernetes.io/service-account.name]: Required value"],
        ),
    ] {
        let got = post_json(&h, secrets, &secret("s", ty, data)).await.invalid_causes();
        assert_eq!(got, want, "{ty}");
    }
    let ok = secret(
        "t",
        "kubernetes.io/tls",
        json!({"tls.crt": "YQ==", "tls.key": "Yg=="}),
    );
    assert_eq!(post_json(&h, secrets, &ok).await.status, 201);
    let mut changed = ok.clone();
    changed["type"] = json!("Opaque");
    assert_eq!(
        put_json(&h, &format!("{secrets}/t"), &changed)
            .await
            .invalid_causes(),
        ["type: Invalid value: \"Opaque\": field is immutable"]
    );
}

/// Label keys and values are checked with Kubernetes 1.35's label-key rules: lengths counted
/// in bytes, and "a valid label key" for a key with more than one `/`. Annotation keys and
/// finalizers alike.
#[tokio::test]
async fn label_keys_and_values_are_checked_with_kubes_label_key_rules() {
    let h = server().await;
    let long = "v".repeat(64);
    let mut cm = configmap("labels");
    cm["metadata"]["labels"] = json!({"a/b/c": "x", "k": long});
    cm["metadata"]["annotations"] = json!({format!("{long}.io/{long}"): "x"});
    let r = post_json(&h, "/api/v1/namespaces/default/configmaps", &cm).await;
    let status = r.status_failure(422, "Invalid");
    let causes: Vec<(String, String)> = status["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["field"].as_str().unwrap().to_string(),
                c["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let has = |field: &str, message: &str| {
        assert!(
            causes
                .iter()
                .any(|(f, m)| f == field && m.ends_with(message)),
            "no {field}: …{message} in {causes:?}"
        );
    };
    has(
        "metadata.labels",
        "with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
    );
    assert!(causes
        .iter()
        .any(|(_, m)| m.contains(": a valid label key must consist of")));
    has(
        "metadata.labels",
        &format!("Invalid value: \"{long}\": must be no more than 63 bytes"),
    );
    has(
        "metadata.annotations",
        "name part must be no more than 63 bytes",
    );
}
