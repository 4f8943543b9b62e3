//! API aggregation in process: the local APIServices kube registers, the ones CRD groups get
//! (and lose), APIService validation, and a remote APIService's group in legacy and aggregated
//! discovery, its requests passed on with the caller's identity.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::extension_server::ExtensionServer;
use common::*;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::runtime::wait::{await_condition, conditions};
use kube::Api;
use serde_json::{json, Value};

async fn client(h: &ServerHandle) -> kube::Client {
    let kc: kube::config::Kubeconfig = serde_yaml::from_str(h.kubeconfig()).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    kube::Client::try_from(cfg).unwrap()
}

fn available(reason: &'static str) -> impl Fn(Option<&APIService>) -> bool {
    move |a: Option<&APIService>| {
        a.and_then(|a| a.status.as_ref())
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Available"))
            .is_some_and(|c| c.reason.as_deref() == Some(reason))
    }
}

#[tokio::test]
async fn local_api_services_are_registered_as_kube_registers_them() {
    let h = server().await;
    let list = get(&h, "/apis/apiregistration.k8s.io/v1/apiservices")
        .await
        .json();
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["metadata"]["name"].as_str().unwrap())
        .collect();
    for n in [
        "v1.",
        "v1.apps",
        "v1.autoscaling",
        "v2.autoscaling",
        "v1.rbac.authorization.k8s.io",
    ] {
        assert!(names.contains(&n), "{n} in {names:?}");
    }
    assert!(!names.contains(&"v1.apiregistration.k8s.io"));
    let apps = get(&h, "/apis/apiregistration.k8s.io/v1/apiservices/v1.apps")
        .await
        .json();
    assert_eq!(apps["spec"]["groupPriorityMinimum"], 17800);
    assert_eq!(apps["spec"]["versionPriority"], 15);
    assert_eq!(
        apps["metadata"]["labels"]["kube-aggregator.kubernetes.io/automanaged"],
        "onstart"
    );
    let c = &apps["status"]["conditions"][0];
    assert_eq!(
        (&c["type"], &c["status"], &c["reason"], &c["message"]),
        (
            &json!("Available"),
            &json!("True"),
            &json!("Local"),
            &json!("Local APIServices are always available")
        )
    );
}

#[tokio::test]
async fn a_crd_group_gets_a_local_api_service_and_loses_it_with_the_crd() {
    let h = server().await;
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gizmos.stable.example.com"},
        "spec": {"group": "stable.example.com", "scope": "Namespaced",
                 "names": {"plural": "gizmos", "singular": "gizmo", "kind": "Gizmo"},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": {"type": "object"}}}]}});
    let r = post_json(
        &h,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        &crd,
    )
    .await;
    assert_eq!(r.status.as_u16(), 201);
    let api: Api<APIService> = Api::all(client(&h).await);
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        await_condition(api.clone(), "v1.stable.example.com", available("Local")),
    )
    .await
    .unwrap()
    .unwrap();
    let a = get(
        &h,
        "/apis/apiregistration.k8s.io/v1/apiservices/v1.stable.example.com",
    )
    .await
    .json();
    assert_eq!(a["spec"]["groupPriorityMinimum"], 1000);
    assert_eq!(a["spec"]["versionPriority"], 100);
    assert_eq!(
        a["metadata"]["labels"]["kube-aggregator.kubernetes.io/automanaged"],
        "true"
    );
    let uid = a["metadata"]["uid"].as_str().unwrap().to_string();
    let r = send(
        &h,
        http::Method::DELETE,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gizmos.stable.example.com",
        "application/json",
        "",
    )
    .await;
    assert!(r.status.is_success());
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        await_condition(api, "v1.stable.example.com", conditions::is_deleted(&uid)),
    )
    .await
    .unwrap()
    .unwrap();
}

#[tokio::test]
async fn api_services_are_validated_and_defaulted_as_kube_does() {
    let h = server().await;
    let path = "/apis/apiregistration.k8s.io/v1/apiservices";
    let bad = json!({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
        "metadata": {"name": "v1.wrong.example.com"},
        "spec": {"group": "metrics.example.com", "version": "v1", "groupPriorityMinimum": 0,
                 "versionPriority": 2000, "caBundle": "UEVN"}});
    let r = post_json(&h, path, &bad).await;
    assert_eq!(
        r.invalid_causes(),
        [
            "metadata.name: Invalid value: \"v1.wrong.example.com\": must be `spec.version+\".\"+spec.group`: \"v1.metrics.example.com\"",
            "spec.groupPriorityMinimum: Invalid value: 0: must be positive and less than 20000",
            "spec.versionPriority: Invalid value: 2000: must be positive and less than 1000",
            "spec.caBundle: Invalid value: \"3 bytes\": local APIServices may not have a caBundle",
        ]
    );
    let remote = json!({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
        "metadata": {"name": "v1beta1.metrics.example.com"},
        "spec": {"group": "metrics.example.com", "version": "v1beta1", "groupPriorityMinimum": 100,
                 "versionPriority": 100, "insecureSkipTLSVerify": true,
                 "service": {"namespace": "kube-system", "name": "metrics-server"}}});
    let r = post_json(&h, path, &remote).await;
    assert_eq!(r.status.as_u16(), 201);
    let created = r.json();
    assert_eq!(created["spec"]["service"]["port"], 443);
    assert!(created
        .get("status")
        .is_none_or(|s| s["conditions"].is_null()));
}

fn service_and_slice(port: u16) -> Vec<(&'static str, Value)> {
    vec![
        (
            "/api/v1/namespaces",
            json!({"metadata": {"name": "wardle"}}),
        ),
        (
            "/api/v1/namespaces/wardle/services",
            json!({"metadata": {"name": "api"},
                   "spec": {"ports": [{"name": "https", "port": 443, "targetPort": port}]}}),
        ),
        (
            "/apis/discovery.k8s.io/v1/namespaces/wardle/endpointslices",
            json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                   "metadata": {"name": "api-1", "labels": {"kubernetes.io/service-name": "api"}},
                   "addressType": "IPv4",
                   "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
                   "endpoints": [{"addresses": ["127.0.0.1"]}]}),
        ),
    ]
}

#[tokio::test]
async fn a_remote_group_is_discovered_in_its_place_and_its_requests_passed_on() {
    let h = server().await;
    let cm = get(
        &h,
        "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication",
    )
    .await
    .json();
    let data = &cm["data"];
    assert_eq!(
        data["requestheader-allowed-names"],
        "[\"front-proxy-client\"]"
    );
    assert_eq!(
        data["requestheader-username-headers"],
        "[\"X-Remote-User\"]"
    );
    assert_eq!(data["requestheader-group-headers"], "[\"X-Remote-Group\"]");
    assert_eq!(
        data["requestheader-extra-headers-prefix"],
        "[\"X-Remote-Extra-\"]"
    );
    let ca = data["requestheader-client-ca-file"].as_str().unwrap();
    let ext = ExtensionServer::start(&["api.wardle.svc".to_string()], ca).await;
    for (path, obj) in service_and_slice(ext.addr.port()) {
        assert_eq!(
            post_json(&h, path, &obj).await.status.as_u16(),
            201,
            "{path}"
        );
    }
    // A CRD group at the same priority: groups of equal priority go by name.
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "zebras.zoo.example.com"},
        "spec": {"group": "zoo.example.com", "scope": "Namespaced",
                 "names": {"plural": "zebras", "singular": "zebra", "kind": "Zebra"},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": {"type": "object"}}}]}});
    assert_eq!(
        post_json(
            &h,
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            &crd
        )
        .await
        .status
        .as_u16(),
        201
    );
    let api_service = json!({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
        "metadata": {"name": "v1alpha1.wardle.example.com"},
        "spec": {"group": "wardle.example.com", "version": "v1alpha1", "groupPriorityMinimum": 1000,
                 "versionPriority": 15, "caBundle": ext.ca_bundle(),
                 "service": {"namespace": "wardle", "name": "api"}}});
    assert_eq!(
        post_json(
            &h,
            "/apis/apiregistration.k8s.io/v1/apiservices",
            &api_service
        )
        .await
        .status
        .as_u16(),
        201
    );
    let api: Api<APIService> = Api::all(client(&h).await);
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        await_condition(api, "v1alpha1.wardle.example.com", available("Passed")),
    )
    .await
    .unwrap()
    .unwrap();

    // Legacy discovery: after the built-ins, before zoo.example.com (same priority, by name).
    let groups: Vec<String> = get(&h, "/apis").await.json()["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap().to_string())
        .collect();
    let wardle = groups
        .iter()
        .position(|g| g == "wardle.example.com")
        .unwrap();
    let zoo = groups.iter().position(|g| g == "zoo.example.com").unwrap();
    let flowcontrol = groups
        .iter()
        .position(|g| g == "flowcontrol.apiserver.k8s.io")
        .unwrap();
    assert!(flowcontrol < wardle && wardle < zoo, "{groups:?}");
    let group = get(&h, "/apis/wardle.example.com").await.json();
    assert_eq!(group["kind"], "APIGroup");
    assert_eq!(
        group["preferredVersion"]["groupVersion"],
        "wardle.example.com/v1alpha1"
    );

    // Aggregated discovery carries the extension server's resources.
    let r = send_with(
        &h,
        http::Method::GET,
        "/apis",
        &[(
            "accept",
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
        )],
        "",
    )
    .await
    .json();
    let item = r["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["metadata"]["name"] == "wardle.example.com")
        .unwrap()
        .clone();
    let v = &item["versions"][0];
    assert_eq!(v["freshness"], "Current");
    assert_eq!(v["resources"][0]["resource"], "flunders");
    assert_eq!(v["resources"][0]["scope"], "Namespaced");
    assert_eq!(
        v["resources"][0]["responseKind"],
        json!({"group": "wardle.example.com", "version": "v1alpha1", "kind": "Flunder"})
    );

    // Requests go on with the caller's identity, answers come back as written.
    let base = "/apis/wardle.example.com/v1alpha1/namespaces/wardle/flunders";
    let r = post_json(
        &h,
        base,
        &json!({"apiVersion": "wardle.example.com/v1alpha1", "kind": "Flunder",
                "metadata": {"name": "f1"}, "spec": {"reference": "r"}}),
    )
    .await;
    assert_eq!(r.status.as_u16(), 201);
    let body = String::from_utf8_lossy(&r.body).to_string();
    assert!(!body.ends_with('\n'), "passed on as written: {body:?}");
    let f1 = get(&h, &format!("{base}/f1")).await.json();
    let seen = ext.seen();
    let creator = f1["metadata"]["annotations"]["wardle.example.com/created-by"]
        .as_str()
        .unwrap();
    assert!(seen
        .iter()
        .any(|s| s.user == creator && s.request.starts_with("POST")));
    let list = get(&h, "/apis/wardle.example.com/v1alpha1").await.json();
    assert_eq!(list["kind"], "APIResourceList");

    // Its OpenAPI v3 document is listed with the extension server's hash and fetched from it.
    let index = get(&h, "/openapi/v3").await.json();
    let url = index["paths"]["apis/wardle.example.com/v1alpha1"]["serverRelativeURL"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        url,
        "/openapi/v3/apis/wardle.example.com/v1alpha1?hash=F1UNDE12"
    );
    let doc = get(&h, &url).await.json();
    assert!(doc["components"]["schemas"]["com.example.wardle.v1alpha1.Flunder"].is_object());
    // /openapi/v2 merges its paths and definitions with kubox's.
    let v2 = get(&h, "/openapi/v2").await.json();
    assert!(v2["definitions"]["com.example.wardle.v1alpha1.Flunder"].is_object());
    assert!(v2["definitions"]["io.k8s.api.core.v1.Pod"].is_object());
    assert!(
        v2["paths"]["/apis/wardle.example.com/v1alpha1/namespaces/{namespace}/flunders"]["get"]
            .is_object()
    );
    // Its protobuf form too (kubox's document, then the extension server's paths and
    // definitions as further occurrences of the same fields, which protobuf merges).
    let pb = send_with(
        &h,
        http::Method::GET,
        "/openapi/v2",
        &[("accept", OPENAPI_V2_PROTOBUF)],
        "",
    )
    .await;
    let contains = |needle: &str| pb.body_contains(needle);
    assert!(contains("com.example.wardle.v1alpha1.Flunder"));
    assert!(contains(
        "/apis/wardle.example.com/v1alpha1/namespaces/{namespace}/flunders"
    ));
    assert!(contains("io.k8s.api.core.v1.Pod"));
}
