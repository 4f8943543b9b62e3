//! CRD versions: conversion webhooks (ConversionReview v1 over HTTPS to a webhook written here),
//! deprecation warnings, storedVersions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::webhook_server::{self, WebhookServer};
use common::*;
use http::Request;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

const CRDS: &str = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
const V1: &str = "/apis/example.com/v1/namespaces/default/widgets";
const V2: &str = "/apis/example.com/v2/namespaces/default/widgets";

/// Widgets: v1 (storage) keeps `spec.size` as a string, v2 `spec.replicas` as an integer.
fn widget_crd(client_config: Value) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "conversion": {"strategy": "Webhook", "webhook": {
                "clientConfig": client_config, "conversionReviewVersions": ["v1"]}},
            "versions": [
                {"name": "v1", "served": true, "storage": true,
                 "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {"size": {"type": "string"}, "color": {"type": "string"}}}}}}},
                {"name": "v2", "served": true, "storage": false,
                 "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {"replicas": {"type": "integer"}, "color": {"type": "string"}}}}}}}
            ]
        }
    })
}

fn url_config(hook: &WebhookServer) -> Value {
    json!({"url": hook.url("/convert"), "caBundle": hook.ca_bundle()})
}

fn widget_v1(name: &str, size: &str) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": name}, "spec": {"size": size, "color": "blue"}})
}

async fn create_crd(h: &ServerHandle, crd: &Value) {
    let r = post_json(h, CRDS, crd).await;
    assert_eq!(
        r.status.as_u16(),
        201,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
}

async fn with_webhook(handler: webhook_server::Handler) -> (ServerHandle, WebhookServer) {
    let hook = WebhookServer::start(handler, &[]).await;
    let h = server().await;
    create_crd(&h, &widget_crd(url_config(&hook))).await;
    (h, hook)
}

#[tokio::test]
async fn objects_round_trip_between_versions_through_the_conversion_webhook() {
    let (h, _hook) = with_webhook(webhook_server::size_replicas_handler()).await;
    let created = post_json(&h, V1, &widget_v1("w1", "3")).await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.json());

    let as_v2 = get(&h, &format!("{V2}/w1")).await.json();
    assert_eq!(as_v2["apiVersion"], "example.com/v2");
    assert_eq!(as_v2["spec"], json!({"replicas": 3, "color": "blue"}));
    assert_eq!(as_v2["metadata"]["uid"], created.json()["metadata"]["uid"]);

    let mut update = as_v2.clone();
    update["spec"]["replicas"] = json!(5);
    let updated = put_json(&h, &format!("{V2}/w1"), &update).await;
    assert_eq!(updated.status.as_u16(), 200, "{}", updated.json());
    assert_eq!(
        updated.json()["spec"],
        json!({"replicas": 5, "color": "blue"})
    );
    assert_eq!(updated.json()["metadata"]["generation"], 2);

    let as_v1 = get(&h, &format!("{V1}/w1")).await.json();
    assert_eq!(as_v1["apiVersion"], "example.com/v1");
    assert_eq!(as_v1["spec"], json!({"size": "5", "color": "blue"}));

    let patched = patch(
        &h,
        &format!("{V2}/w1"),
        "application/merge-patch+json",
        r#"{"spec":{"replicas":7}}"#,
    )
    .await;
    assert_eq!(patched.status.as_u16(), 200, "{}", patched.json());
    assert_eq!(patched.json()["spec"]["replicas"], 7);
    assert_eq!(
        get(&h, &format!("{V1}/w1")).await.json()["spec"]["size"],
        "7"
    );

    let created_v2 = post_json(
        &h,
        V2,
        &json!({"apiVersion": "example.com/v2", "kind": "Widget",
            "metadata": {"name": "w2"}, "spec": {"replicas": 2}}),
    )
    .await;
    assert_eq!(created_v2.status.as_u16(), 201, "{}", created_v2.json());
    assert_eq!(
        get(&h, &format!("{V1}/w2")).await.json()["spec"]["size"],
        "2"
    );
}

#[tokio::test]
async fn a_list_is_converted_in_one_review_and_reads_at_the_storage_version_call_no_webhook() {
    let (h, hook) = with_webhook(webhook_server::size_replicas_handler()).await;
    for (i, size) in ["1", "2", "3"].iter().enumerate() {
        let r = post_json(&h, V1, &widget_v1(&format!("w{i}"), size)).await;
        assert_eq!(r.status.as_u16(), 201);
    }
    let before = hook.calls();
    let list = get(&h, V2).await.json();
    assert_eq!(hook.calls(), before + 1, "one review for the whole list");
    assert_eq!(list["apiVersion"], "example.com/v2");
    let replicas: Vec<i64> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            assert_eq!(i["apiVersion"], "example.com/v2");
            i["spec"]["replicas"].as_i64().unwrap()
        })
        .collect();
    assert_eq!(replicas, vec![1, 2, 3]);

    let before = hook.calls();
    let list = get(&h, V1).await.json();
    assert_eq!(list["items"][0]["spec"]["size"], "1");
    assert_eq!(
        hook.calls(),
        before,
        "objects at the requested version are not sent"
    );
}

/// Start a watch; the returned task reads frames until `n` events arrived (bounded by a timeout).
async fn watch_events(
    h: &ServerHandle,
    path: &str,
    n: usize,
) -> tokio::task::JoinHandle<Vec<Value>> {
    let req = Request::builder()
        .uri(path)
        .body(bytes::Bytes::new())
        .unwrap();
    let resp = h.service().oneshot(req).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let mut body = resp.into_body();
    tokio::spawn(async move {
        let mut buf = Vec::new();
        let mut events = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), async {
            while events.len() < n {
                let Some(frame) = body.frame().await else {
                    break;
                };
                if let Ok(data) = frame.unwrap().into_data() {
                    buf.extend_from_slice(&data);
                    while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = buf.drain(..=pos).collect();
                        events.push(serde_json::from_slice(&line).unwrap());
                    }
                }
            }
        })
        .await
        .expect("watch events arrive in time");
        events
    })
}

#[tokio::test]
async fn a_watch_in_the_non_storage_version_gets_converted_events() {
    let (h, _hook) = with_webhook(webhook_server::size_replicas_handler()).await;
    assert_eq!(
        post_json(&h, V1, &widget_v1("a", "1"))
            .await
            .status
            .as_u16(),
        201
    );
    let watcher = watch_events(&h, &format!("{V2}?watch=1&resourceVersion=0"), 3).await;
    let b = post_json(&h, V1, &widget_v1("b", "2")).await;
    assert_eq!(b.status.as_u16(), 201);
    let mut b = b.json();
    b["spec"]["size"] = json!("4");
    assert_eq!(
        put_json(&h, &format!("{V1}/b"), &b).await.status.as_u16(),
        200
    );
    let events = watcher.await.unwrap();
    let seen: Vec<(String, String, i64)> = events
        .iter()
        .map(|e| {
            assert_eq!(e["object"]["apiVersion"], "example.com/v2", "{e}");
            (
                e["type"].as_str().unwrap().to_string(),
                e["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                e["object"]["spec"]["replicas"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(seen.contains(&("ADDED".into(), "a".into(), 1)), "{seen:?}");
    assert!(
        seen.contains(&("MODIFIED".into(), "b".into(), 4)),
        "{seen:?}"
    );
}

/// Selectable fields are each version's own, matched on the object at the request's version
/// (as kube's per-version storage converts before it selects): v1 selects on `spec.size`, v2 on
/// `spec.replicas`, which only the webhook's conversion produces.
#[tokio::test]
async fn selectable_fields_are_matched_at_the_version_of_the_request() {
    let hook = WebhookServer::start(webhook_server::size_replicas_handler(), &[]).await;
    let h = server().await;
    let mut crd = widget_crd(url_config(&hook));
    crd["spec"]["versions"][0]["selectableFields"] = json!([{"jsonPath": ".spec.size"}]);
    crd["spec"]["versions"][1]["selectableFields"] = json!([{"jsonPath": ".spec.replicas"}]);
    create_crd(&h, &crd).await;
    for (name, size) in [("a", "3"), ("b", "5")] {
        assert_eq!(
            post_json(&h, V1, &widget_v1(name, size))
                .await
                .status
                .as_u16(),
            201
        );
    }
    let names = |list: Value| -> Vec<String> {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    let at_v2 = get(&h, &format!("{V2}?fieldSelector=spec.replicas%3D3")).await;
    assert_eq!(at_v2.status.as_u16(), 200, "{}", at_v2.json());
    assert_eq!(names(at_v2.json()), ["a"]);
    let at_v1 = get(&h, &format!("{V1}?fieldSelector=spec.size%3D5")).await;
    assert_eq!(names(at_v1.json()), ["b"]);
    // Each version accepts only its own fields.
    let wrong = get(&h, &format!("{V2}?fieldSelector=spec.size%3D5")).await;
    assert_eq!(wrong.status.as_u16(), 400, "{}", wrong.json());

    // A watch at v2 sees b enter the selection when its size becomes 3.
    let watcher = watch_events(
        &h,
        &format!("{V2}?watch=1&fieldSelector=spec.replicas%3D3"),
        2,
    )
    .await;
    let mut b = get(&h, &format!("{V1}/b")).await.json();
    b["spec"]["size"] = json!("3");
    assert_eq!(
        put_json(&h, &format!("{V1}/b"), &b).await.status.as_u16(),
        200
    );
    let events = watcher.await.unwrap();
    let seen: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_string(),
                e["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("ADDED".to_string(), "a".to_string()),
            ("ADDED".into(), "b".into())
        ]
    );
}

#[tokio::test]
async fn an_unreachable_webhook_fails_conversions_with_a_500_naming_the_kind() {
    let (h, hook) = with_webhook(webhook_server::size_replicas_handler()).await;
    assert_eq!(
        post_json(&h, V1, &widget_v1("w", "1"))
            .await
            .status
            .as_u16(),
        201
    );
    hook.stop();
    // Wait until the listener is closed (abort is asynchronous).
    let deadline = Instant::now() + Duration::from_secs(5);
    while tokio::net::TcpStream::connect(hook.addr).await.is_ok() {
        assert!(Instant::now() < deadline, "webhook still listening");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let expected = format!(
        "conversion webhook for example.com/v1, Kind=Widget failed: Post \"{}?timeout=30s\"",
        hook.url("/convert")
    );
    for r in [get(&h, &format!("{V2}/w")).await, get(&h, V2).await] {
        let s = r.json();
        assert_eq!(r.status.as_u16(), 500, "{s}");
        assert_eq!(s["kind"], "Status");
        assert!(
            s.get("reason").is_none(),
            "no reason, as kube-apiserver: {s}"
        );
        assert!(s["message"].as_str().unwrap().starts_with(&expected), "{s}");
    }
    let create = post_json(
        &h,
        V2,
        &json!({"apiVersion": "example.com/v2", "kind": "Widget", "metadata": {"name": "x"}, "spec": {"replicas": 1}}),
    )
    .await;
    assert_eq!(create.status.as_u16(), 500, "{}", create.json());
    assert!(create.json()["message"]
        .as_str()
        .unwrap()
        .starts_with("conversion webhook for example.com/v2, Kind=Widget failed: Post"));
    // Reads at the storage version need no webhook.
    assert_eq!(get(&h, &format!("{V1}/w")).await.status.as_u16(), 200);
}

#[tokio::test]
async fn a_reply_with_another_uid_is_refused() {
    let handler: webhook_server::Handler = Arc::new(|review| {
        let mut reply = webhook_server::conversion_reply(&review, webhook_server::size_replicas);
        reply["response"]["uid"] = json!("not-the-request");
        Some(reply)
    });
    let (h, _hook) = with_webhook(handler).await;
    assert_eq!(
        post_json(&h, V1, &widget_v1("w", "1"))
            .await
            .status
            .as_u16(),
        201
    );
    let r = get(&h, &format!("{V2}/w")).await;
    assert_eq!(r.status.as_u16(), 500);
    let message = r.json()["message"].as_str().unwrap().to_string();
    assert!(
        message.starts_with(
            "conversion webhook for example.com/v1, Kind=Widget failed: expected response.uid="
        ),
        "{message}"
    );
    assert!(message.ends_with(", got \"not-the-request\""), "{message}");
}

#[tokio::test]
async fn a_converted_object_at_the_wrong_api_version_is_refused() {
    let handler: webhook_server::Handler = Arc::new(|review| {
        Some(webhook_server::conversion_reply(&review, |o, _| {
            webhook_server::size_replicas(o, "example.com/v3")
        }))
    });
    let (h, _hook) = with_webhook(handler).await;
    assert_eq!(
        post_json(&h, V1, &widget_v1("w", "1"))
            .await
            .status
            .as_u16(),
        201
    );
    let r = get(&h, &format!("{V2}/w")).await;
    assert_eq!(r.status.as_u16(), 500);
    assert_eq!(
        r.json()["message"],
        "conversion webhook for example.com/v1, Kind=Widget returned invalid converted object at index 0: invalid groupVersion (expected example.com/v2, received example.com/v3)"
    );
}

#[tokio::test]
async fn a_failed_result_reports_the_webhook_message() {
    let handler: webhook_server::Handler = Arc::new(|review| {
        Some(
            json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
            "response": {"uid": review["request"]["uid"],
                "result": {"status": "Failure", "message": "cannot convert widgets today"}}}),
        )
    });
    let (h, _hook) = with_webhook(handler).await;
    assert_eq!(
        post_json(&h, V1, &widget_v1("w", "1"))
            .await
            .status
            .as_u16(),
        201
    );
    let r = get(&h, &format!("{V2}/w")).await;
    assert_eq!(r.status.as_u16(), 500);
    assert_eq!(
        r.json()["message"],
        "conversion webhook for example.com/v1, Kind=Widget failed: cannot convert widgets today"
    );
}

#[tokio::test]
async fn only_label_and_annotation_changes_of_the_webhook_are_kept() {
    let handler: webhook_server::Handler = Arc::new(|review| {
        Some(webhook_server::conversion_reply(&review, |o, to| {
            let mut o = webhook_server::size_replicas(o, to);
            o["metadata"]["labels"] = json!({"converted-to": to.replace('/', "_")});
            o["metadata"]["generation"] = json!(42);
            o["metadata"]["finalizers"] = json!(["example.com/sneaky"]);
            o
        }))
    });
    let (h, _hook) = with_webhook(handler).await;
    assert_eq!(
        post_json(&h, V1, &widget_v1("w", "1"))
            .await
            .status
            .as_u16(),
        201
    );
    let w = get(&h, &format!("{V2}/w")).await.json();
    assert_eq!(
        w["metadata"]["labels"],
        json!({"converted-to": "example.com_v2"})
    );
    assert_eq!(w["metadata"]["generation"], 1);
    assert!(w["metadata"].get("finalizers").is_none(), "{w}");
}

struct LoopbackResolver {
    port: u16,
}

impl kubox::ServiceResolver for LoopbackResolver {
    fn resolve(&self, namespace: &str, name: &str, port: u16) -> Result<String, String> {
        if (namespace, name, port) == ("webhooks", "widget-converter", 8443) {
            Ok(format!("https://127.0.0.1:{}", self.port))
        } else {
            Err(format!("no such service {namespace}/{name}:{port}"))
        }
    }
}

fn service_config(hook: &WebhookServer) -> Value {
    json!({"service": {"namespace": "webhooks", "name": "widget-converter", "path": "/convert", "port": 8443},
        "caBundle": hook.ca_bundle()})
}

#[tokio::test]
async fn a_service_reference_is_called_through_the_configured_resolver() {
    let hook = WebhookServer::start(
        webhook_server::size_replicas_handler(),
        &["widget-converter.webhooks.svc"],
    )
    .await;
    let h = Server::builder()
        .memory()
        .disable_controller(kubox::Controller::ServiceAccount)
        .service_resolver(Arc::new(LoopbackResolver {
            port: hook.addr.port(),
        }))
        .start()
        .await
        .unwrap();
    create_crd(&h, &widget_crd(service_config(&hook))).await;
    assert_eq!(
        post_json(&h, V1, &widget_v1("w", "6"))
            .await
            .status
            .as_u16(),
        201
    );
    let w = get(&h, &format!("{V2}/w")).await.json();
    assert_eq!(w["spec"]["replicas"], 6, "{w}");
    assert!(hook.calls() > 0);
}

/// Without a resolver, a service reference is routed as kube-apiserver routes it: through
/// the Service's EndpointSlices. No Service: kube's error; a selector-less Service whose
/// EndpointSlice names 127.0.0.1: the webhook is called.
#[tokio::test]
async fn a_service_reference_is_routed_through_the_services_endpointslice() {
    let hook = WebhookServer::start(
        webhook_server::size_replicas_handler(),
        &["widget-converter.webhooks.svc"],
    )
    .await;
    let h = server().await;
    create_crd(&h, &widget_crd(service_config(&hook))).await;
    assert_eq!(
        post_json(&h, V1, &widget_v1("w", "6"))
            .await
            .status
            .as_u16(),
        201
    );
    let r = get(&h, &format!("{V2}/w")).await;
    assert_eq!(r.status.as_u16(), 500);
    let message = r.json()["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("service \"widget-converter\" not found"),
        "{message}"
    );
    assert_eq!(hook.calls(), 0);
    for (path, obj) in [
        (
            "/api/v1/namespaces",
            json!({"metadata": {"name": "webhooks"}}),
        ),
        (
            "/api/v1/namespaces/webhooks/services",
            json!({"metadata": {"name": "widget-converter"},
                   "spec": {"ports": [{"name": "https", "port": 8443, "targetPort": 9443}]}}),
        ),
        (
            "/apis/discovery.k8s.io/v1/namespaces/webhooks/endpointslices",
            json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                   "metadata": {"name": "widget-converter-1",
                                "labels": {"kubernetes.io/service-name": "widget-converter"}},
                   "addressType": "IPv4",
                   "ports": [{"name": "https", "port": hook.addr.port(), "protocol": "TCP"}],
                   "endpoints": [{"addresses": ["127.0.0.1"]}]}),
        ),
    ] {
        let r = post_json(&h, path, &obj).await;
        assert_eq!(
            r.status.as_u16(),
            201,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
    let w = get(&h, &format!("{V2}/w")).await.json();
    assert_eq!(w["spec"]["replicas"], 6, "{w}");
    assert!(hook.calls() > 0);
}

#[tokio::test]
async fn a_webhook_whose_certificate_is_not_signed_by_the_ca_bundle_is_not_called() {
    let hook = WebhookServer::start(webhook_server::size_replicas_handler(), &[]).await;
    let other = WebhookServer::start(webhook_server::size_replicas_handler(), &[]).await;
    let h = server().await;
    create_crd(
        &h,
        &widget_crd(json!({"url": hook.url("/convert"), "caBundle": other.ca_bundle()})),
    )
    .await;
    assert_eq!(
        post_json(&h, V1, &widget_v1("w", "6"))
            .await
            .status
            .as_u16(),
        201
    );
    let r = get(&h, &format!("{V2}/w")).await;
    assert_eq!(r.status.as_u16(), 500, "{}", r.json());
    assert_eq!(hook.calls(), 0);
}

#[tokio::test]
async fn a_webhook_strategy_without_a_v1_review_version_is_invalid() {
    let h = server().await;
    let mut crd = widget_crd(json!({"url": "https://127.0.0.1:1/convert"}));
    crd["spec"]["conversion"]["webhook"]["conversionReviewVersions"] = json!(["v2"]);
    let r = post_json(&h, CRDS, &crd).await;
    let s = r.status_failure(422, "Invalid");
    assert!(
        s["message"].as_str().unwrap().contains(
            "spec.conversion.conversionReviewVersions: Invalid value: []string{\"v2\"}: must include at least one of v1, v1beta1"
        ),
        "{s}"
    );
    crd["spec"]["conversion"]["webhook"] = json!({"conversionReviewVersions": ["v1"]});
    let r = post_json(&h, CRDS, &crd).await;
    let s = r.status_failure(422, "Invalid");
    assert!(
        s["message"].as_str().unwrap().contains(
            "spec.conversion.webhookClientConfig: Required value: required when strategy is set to Webhook"
        ),
        "{s}"
    );
}

fn warnings(r: &Resp) -> Vec<String> {
    r.headers
        .get_all("warning")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn requests_to_a_deprecated_version_carry_a_warning() {
    let h = server().await;
    let mut crd = widget_crd(Value::Null);
    crd["spec"]["conversion"] = json!({"strategy": "None"});
    crd["spec"]["versions"][0]["deprecated"] = json!(true);
    crd["spec"]["versions"][1]["deprecated"] = json!(true);
    crd["spec"]["versions"][1]["deprecationWarning"] =
        json!("example.com/v2 Widget is going away; use v3");
    create_crd(&h, &crd).await;

    let created = post_json(&h, V1, &widget_v1("w", "1")).await;
    assert_eq!(created.status.as_u16(), 201);
    let default_warning = vec!["299 - \"example.com/v1 Widget is deprecated\"".to_string()];
    assert_eq!(warnings(&created), default_warning);
    assert_eq!(warnings(&get(&h, V1).await), default_warning);
    let missing = get(&h, &format!("{V1}/nope")).await;
    assert_eq!(missing.status.as_u16(), 404);
    assert_eq!(warnings(&missing), default_warning, "failures warn too");
    assert_eq!(
        warnings(&get(&h, &format!("{V2}/w")).await),
        vec!["299 - \"example.com/v2 Widget is going away; use v3\"".to_string()]
    );
    let crd_read = get(&h, &format!("{CRDS}/widgets.example.com")).await;
    assert!(warnings(&crd_read).is_empty());
}

#[tokio::test]
async fn changing_the_storage_version_appends_to_stored_versions() {
    let h = server().await;
    let mut crd = widget_crd(Value::Null);
    crd["spec"]["conversion"] = json!({"strategy": "None"});
    create_crd(&h, &crd).await;
    let path = format!("{CRDS}/widgets.example.com");
    let mut current = get(&h, &path).await.json();
    assert_eq!(current["status"]["storedVersions"], json!(["v1"]));
    current["spec"]["versions"][0]["storage"] = json!(false);
    current["spec"]["versions"][1]["storage"] = json!(true);
    let r = put_json(&h, &path, &current).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.json());
    assert_eq!(
        get(&h, &path).await.json()["status"]["storedVersions"],
        json!(["v1", "v2"])
    );
    // New objects are stored at v2 now and read back at v1 unchanged (strategy None).
    let w = post_json(
        &h,
        V2,
        &json!({"apiVersion": "example.com/v2", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"color": "red"}}),
    )
    .await;
    assert_eq!(w.status.as_u16(), 201);
    let as_v1 = get(&h, &format!("{V1}/w")).await.json();
    assert_eq!(as_v1["apiVersion"], "example.com/v1");
    assert_eq!(as_v1["spec"]["color"], "red");
}

/// Conversion latency through the webhook (loopback HTTPS, keep-alive).
/// `cargo test -p kubox --test crd_conversion -- --ignored --nocapture conversion_latency`
#[tokio::test]
#[ignore]
async fn conversion_latency() {
    let (h, hook) = with_webhook(webhook_server::size_replicas_handler()).await;
    let n = 500;
    for i in 0..n {
        let r = post_json(&h, V1, &widget_v1(&format!("w{i}"), "3")).await;
        assert_eq!(r.status.as_u16(), 201);
    }
    let gets = 500;
    let start = Instant::now();
    for i in 0..gets {
        let r = get(&h, &format!("{V2}/w{}", i % n)).await;
        assert_eq!(r.status.as_u16(), 200);
    }
    let per_get = start.elapsed() / gets;
    let start = Instant::now();
    for i in 0..gets {
        let r = get(&h, &format!("{V1}/w{}", i % n)).await;
        assert_eq!(r.status.as_u16(), 200);
    }
    let per_get_storage = start.elapsed() / gets;
    let lists = 20;
    let start = Instant::now();
    for _ in 0..lists {
        let r = get(&h, V2).await;
        assert_eq!(r.json()["items"].as_array().unwrap().len(), n as usize);
    }
    let per_list = start.elapsed() / lists;
    let start = Instant::now();
    for _ in 0..lists {
        let r = get(&h, V1).await;
        assert_eq!(r.json()["items"].as_array().unwrap().len(), n as usize);
    }
    let per_list_storage = start.elapsed() / lists;
    println!(
        "get via webhook {per_get:?} (storage version {per_get_storage:?}); list of {n} via webhook {per_list:?} (storage version {per_list_storage:?}); webhook calls {}",
        hook.calls()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_client_reports_status_timeout_and_connection_failures_as_typed_errors() {
    use kubox::webhook::{ClientConfig, NoServiceResolver, WebhookClient, WebhookError};
    let handler: webhook_server::Handler = Arc::new(|body: Value| match body["mode"].as_str() {
        Some("fail") => None,
        Some("slow") => {
            // A webhook slower than the caller's timeout.
            std::thread::sleep(Duration::from_millis(1500));
            Some(json!({"ok": true}))
        }
        _ => Some(json!({"echo": body})),
    });
    let hook = WebhookServer::start(handler, &[]).await;
    let client = WebhookClient::new(Arc::new(NoServiceResolver));
    let config =
        ClientConfig::from_json(&json!({"url": hook.url("/"), "caBundle": hook.ca_bundle()}))
            .unwrap();
    let timeout = Duration::from_millis(300);

    let reply = client
        .post(&config, &json!({"mode": "echo"}), timeout)
        .await
        .unwrap();
    assert_eq!(reply, json!({"echo": {"mode": "echo"}}));
    match client
        .post(&config, &json!({"mode": "fail"}), timeout)
        .await
    {
        Err(WebhookError::Status { code: 500, body }) => assert_eq!(body, "webhook failed"),
        other => panic!("expected a status error, got {other:?}"),
    }
    match client
        .post(&config, &json!({"mode": "slow"}), timeout)
        .await
    {
        Err(WebhookError::Timeout { url }) => {
            assert_eq!(url, format!("{}?timeout=300ms", hook.url("/")))
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    let http = ClientConfig::from_json(&json!({"url": format!("http://{}/", hook.addr)})).unwrap();
    assert!(matches!(
        client.post(&http, &json!({}), timeout).await,
        Err(WebhookError::Config(_))
    ));
    hook.stop();
    let deadline = Instant::now() + Duration::from_secs(5);
    while tokio::net::TcpStream::connect(hook.addr).await.is_ok() {
        assert!(Instant::now() < deadline, "webhook still listening");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A fresh client: the cached one may hold a pooled connection to the stopped server.
    let fresh = WebhookClient::new(Arc::new(NoServiceResolver));
    assert!(matches!(
        fresh.post(&config, &json!({}), timeout).await,
        Err(WebhookError::Connection { .. })
    ));
}

#[tokio::test]
async fn a_watch_ends_when_an_event_cannot_be_converted() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let broken = Arc::new(AtomicBool::new(false));
    let flag = broken.clone();
    let handler: webhook_server::Handler = Arc::new(move |review| {
        if flag.load(Ordering::SeqCst) {
            None
        } else {
            Some(webhook_server::conversion_reply(
                &review,
                webhook_server::size_replicas,
            ))
        }
    });
    let (h, _hook) = with_webhook(handler).await;
    let a = post_json(&h, V1, &widget_v1("a", "1")).await.json();
    let rv = a["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let watcher = watch_events(&h, &format!("{V2}?watch=1&resourceVersion={rv}"), 1).await;
    broken.store(true, Ordering::SeqCst);
    assert_eq!(
        post_json(&h, V1, &widget_v1("b", "2"))
            .await
            .status
            .as_u16(),
        201
    );
    let events = watcher.await.unwrap();
    assert!(
        events.is_empty(),
        "the stream ends without the event: {events:?}"
    );
}

/// What a conversion webhook returns is pruned against the schema of the version it converted
/// to, as kube-apiserver prunes it: a field the webhook invents is neither stored nor served.
#[tokio::test]
async fn webhook_output_is_pruned_against_the_target_schema() {
    let handler: webhook_server::Handler = Arc::new(|review| {
        Some(webhook_server::conversion_reply(&review, |obj, desired| {
            let mut out = webhook_server::size_replicas(obj, desired);
            out["spec"]["invented"] = json!("by the webhook");
            out
        }))
    });
    let (h, _hook) = with_webhook(handler).await;
    let v2 = json!({"apiVersion": "example.com/v2", "kind": "Widget",
        "metadata": {"name": "w9"}, "spec": {"replicas": 2, "color": "red"}});
    let created = post_json(&h, V2, &v2).await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.json());
    assert!(
        created.json()["spec"].get("invented").is_none(),
        "{}",
        created.json()
    );
    let as_v2 = get(&h, &format!("{V2}/w9")).await.json();
    assert_eq!(
        as_v2["spec"],
        json!({"replicas": 2, "color": "red"}),
        "{as_v2}"
    );
    // Stored at v1 without it.
    let as_v1 = get(&h, &format!("{V1}/w9")).await.json();
    assert_eq!(
        as_v1["spec"],
        json!({"size": "2", "color": "red"}),
        "{as_v1}"
    );
    let page = h
        .store()
        .list("", kubox_storage::ListOptions::default())
        .await
        .unwrap();
    let stored = page
        .items
        .iter()
        .find(|kv| kv.key.ends_with("/default/w9"))
        .expect("stored");
    let text = String::from_utf8_lossy(&stored.value);
    assert!(!text.contains("invented"), "{text}");
}
