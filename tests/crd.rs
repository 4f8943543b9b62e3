//! CustomResourceDefinitions: registration, serving, names, deletion, restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use http::Method;
use serde_json::{json, Value};

const CRDS: &str = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
const WIDGETS: &str = "/apis/example.com/v1/namespaces/default/widgets";

fn widget_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"], "categories": ["all"]},
            "versions": [
                {"name": "v1", "served": true, "storage": true,
                 "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {"size": {"type": "integer"}, "color": {"type": "string"}, "replicas": {"type": "integer"}}},
                    "status": {"type": "object", "properties": {"ready": {"type": "boolean"}, "replicas": {"type": "integer"}, "selector": {"type": "string"}}}}}},
                 "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas", "labelSelectorPath": ".status.selector"}},
                 "additionalPrinterColumns": [
                    {"name": "Color", "type": "string", "jsonPath": ".spec.color"},
                    {"name": "Size", "type": "integer", "jsonPath": ".spec.size", "priority": 1}]},
                {"name": "v1beta1", "served": true, "storage": false,
                 "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}
            ]
        }
    })
}

fn widget(name: &str) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name}, "spec": {"size": 3, "color": "blue", "replicas": 1}})
}

#[tokio::test]
async fn creating_a_crd_serves_its_api_at_once_and_establishes_it() {
    let h = server().await;
    let r = post_json(&h, CRDS, &widget_crd()).await;
    assert_eq!(
        r.status.as_u16(),
        201,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(
        r.json()["metadata"]["finalizers"],
        json!(["customresourcecleanup.apiextensions.k8s.io"])
    );
    let w = post_json(&h, WIDGETS, &widget("w1")).await;
    assert_eq!(
        w.status.as_u16(),
        201,
        "{}",
        String::from_utf8_lossy(&w.body)
    );
    assert_eq!(w.json()["metadata"]["generation"], 1);
    let crd = get(&h, &format!("{CRDS}/widgets.example.com")).await.json();
    let conds = crd["status"]["conditions"].as_array().unwrap();
    for ty in ["NamesAccepted", "Established"] {
        assert!(
            conds
                .iter()
                .any(|c| c["type"] == ty && c["status"] == "True"),
            "{crd}"
        );
    }
    assert_eq!(crd["status"]["storedVersions"], json!(["v1"]));
    let disc = get(&h, "/apis/example.com").await.json();
    assert_eq!(disc["preferredVersion"]["version"], "v1");
    let res = get(&h, "/apis/example.com/v1").await.json();
    let names: Vec<&str> = res["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["widgets", "widgets/status", "widgets/scale"]);
    assert_eq!(res["resources"][0]["shortNames"], json!(["wd"]));
}

#[tokio::test]
async fn custom_resources_are_served_at_every_served_version() {
    let h = server().await;
    post_json(&h, CRDS, &widget_crd()).await;
    post_json(&h, WIDGETS, &widget("w1")).await;
    let beta = get(
        &h,
        "/apis/example.com/v1beta1/namespaces/default/widgets/w1",
    )
    .await
    .json();
    assert_eq!(beta["apiVersion"], "example.com/v1beta1");
    assert_eq!(beta["spec"]["color"], "blue");
    let list = get(&h, "/apis/example.com/v1/widgets").await.json();
    assert_eq!(list["kind"], "WidgetList");
    assert_eq!(
        list["items"][0]["kind"], "Widget",
        "custom resource lists keep apiVersion/kind per item"
    );
}

#[tokio::test]
async fn custom_resources_support_status_scale_and_printer_columns() {
    let h = server().await;
    post_json(&h, CRDS, &widget_crd()).await;
    post_json(&h, WIDGETS, &widget("w1")).await;
    let r = patch(
        &h,
        &format!("{WIDGETS}/w1/status"),
        "application/merge-patch+json",
        r#"{"status":{"ready":true,"replicas":1,"selector":"app=w"},"spec":{"size":99}}"#,
    )
    .await
    .json();
    assert_eq!(
        (r["status"]["ready"].as_bool(), r["spec"]["size"].as_i64()),
        (Some(true), Some(3))
    );
    assert_eq!(r["metadata"]["generation"], 1);
    let s = patch(
        &h,
        &format!("{WIDGETS}/w1/scale"),
        "application/merge-patch+json",
        r#"{"spec":{"replicas":4}}"#,
    )
    .await
    .json();
    assert_eq!(
        (
            s["spec"]["replicas"].as_i64(),
            s["status"]["selector"].as_str()
        ),
        (Some(4), Some("app=w"))
    );
    let w = get(&h, &format!("{WIDGETS}/w1")).await.json();
    assert_eq!(
        (
            w["spec"]["replicas"].as_i64(),
            w["metadata"]["generation"].as_i64()
        ),
        (Some(4), Some(2))
    );
    let t = send_with(
        &h,
        Method::GET,
        WIDGETS,
        &[("accept", "application/json;as=Table;v=v1;g=meta.k8s.io")],
        "",
    )
    .await
    .json();
    let cols: Vec<&str> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(cols, vec!["Name", "Color", "Size"]);
    assert_eq!(t["rows"][0]["cells"], json!(["w1", "blue", 3]));
}

#[tokio::test]
async fn strategic_merge_patch_on_a_custom_resource_is_415() {
    let h = server().await;
    post_json(&h, CRDS, &widget_crd()).await;
    post_json(&h, WIDGETS, &widget("w1")).await;
    let r = patch(
        &h,
        &format!("{WIDGETS}/w1"),
        "application/strategic-merge-patch+json",
        r#"{"spec":{"size":1}}"#,
    )
    .await;
    r.status_failure(415, "UnsupportedMediaType");
}

#[tokio::test]
async fn conflicting_names_are_not_accepted() {
    let h = server().await;
    post_json(&h, CRDS, &widget_crd()).await;
    let mut other = widget_crd();
    other["metadata"]["name"] = json!("gadgets.example.com");
    other["spec"]["names"] =
        json!({"plural": "gadgets", "singular": "gadget", "kind": "Gadget", "shortNames": ["wd"]});
    assert_eq!(post_json(&h, CRDS, &other).await.status.as_u16(), 201);
    let crd = get(&h, &format!("{CRDS}/gadgets.example.com")).await.json();
    let accepted = crd["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "NamesAccepted")
        .unwrap()
        .clone();
    assert_eq!(
        (accepted["status"].as_str(), accepted["reason"].as_str()),
        (Some("False"), Some("ShortNamesConflict"))
    );
    get(&h, "/apis/example.com/v1/namespaces/default/gadgets")
        .await
        .status_failure(404, "NotFound");
}

#[tokio::test]
async fn invalid_crds_are_refused_with_causes() {
    let h = server().await;
    let mut bad = widget_crd();
    bad["metadata"]["name"] = json!("wrong.example.com");
    bad["spec"]["versions"][1]["storage"] = json!(true);
    let s = post_json(&h, CRDS, &bad)
        .await
        .status_failure(422, "Invalid");
    let fields: Vec<&str> = s["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"metadata.name") && fields.contains(&"spec.versions"),
        "{s}"
    );
}

#[tokio::test]
async fn deleting_a_crd_deletes_its_resources_then_its_api() {
    let h = server().await;
    post_json(&h, CRDS, &widget_crd()).await;
    post_json(&h, WIDGETS, &widget("w1")).await;
    let r = send(
        &h,
        Method::DELETE,
        &format!("{CRDS}/widgets.example.com"),
        "",
        "",
    )
    .await;
    assert!(
        r.status.is_success(),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    get(&h, &format!("{CRDS}/widgets.example.com"))
        .await
        .status_failure(404, "NotFound");
    get(&h, "/apis/example.com/v1")
        .await
        .status_failure(404, "NotFound");
    // A new CRD of the same name starts empty.
    post_json(&h, CRDS, &widget_crd()).await;
    let list = get(&h, WIDGETS).await.json();
    assert_eq!(list["items"], json!([]));
}

#[tokio::test]
async fn crds_and_custom_resources_survive_a_restart_on_sled() {
    let dir = tempfile::tempdir().unwrap();
    let h = Server::builder().sled(dir.path()).start().await.unwrap();
    post_json(&h, CRDS, &widget_crd()).await;
    post_json(&h, WIDGETS, &widget("kept")).await;
    h.shutdown().await.unwrap();
    let h = Server::builder().sled(dir.path()).start().await.unwrap();
    let w = get(&h, &format!("{WIDGETS}/kept")).await;
    assert_eq!(
        w.status.as_u16(),
        200,
        "{}",
        String::from_utf8_lossy(&w.body)
    );
    assert_eq!(w.json()["spec"]["color"], "blue");
    h.shutdown().await.unwrap();
}

/// The `serverRelativeURL` of a group version in the `/openapi/v3` root.
async fn v3_url(h: &kubox::ServerHandle, gv: &str) -> Option<String> {
    get(h, "/openapi/v3").await.json()["paths"][gv]["serverRelativeURL"]
        .as_str()
        .map(str::to_string)
}

/// `/openapi/v3` answers as kube-openapi does, so clients (kubectl's HTTP cache) fetch a
/// document once: its URL with the current hash is cacheable for good, an older hash redirects
/// to the current one, and `If-None-Match` gets 304 Not Modified, root and documents alike.
#[tokio::test]
async fn openapi_v3_documents_are_cached_by_their_hash() {
    let h = server().await;
    let with = |path: String, headers: Vec<(&'static str, String)>| {
        let h = &h;
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            send_with(h, Method::GET, &path, &headers, "").await
        }
    };
    let header = |r: &Resp, name: &str| {
        r.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };

    // The root: an ETag, and 304 for a client that holds it.
    let root = get(&h, "/openapi/v3").await;
    let root_etag = header(&root, "etag").expect("the root's ETag");
    let again = with(
        "/openapi/v3".into(),
        vec![("if-none-match", root_etag.clone())],
    )
    .await;
    assert_eq!(again.status.as_u16(), 304);
    assert!(again.body.is_empty());

    // A document at its listed URL: cacheable for good, its ETag the hash.
    let url = v3_url(&h, "apis/apps/v1").await.unwrap();
    let hash = url.split_once("?hash=").unwrap().1.to_string();
    let doc = get(&h, &url).await;
    assert_eq!(doc.status.as_u16(), 200);
    assert_eq!(
        header(&doc, "cache-control").as_deref(),
        Some("public, immutable")
    );
    assert!(header(&doc, "expires").is_some_and(|e| e.ends_with(" GMT")));
    assert_eq!(header(&doc, "etag"), Some(format!("\"{hash}\"")));
    assert_eq!(header(&doc, "vary").as_deref(), Some("Accept"));
    assert!(doc.json()["paths"]["/apis/apps/v1/deployments"].is_object());
    // Without the hash: the same bytes, revalidated each time.
    let plain = get(&h, "/openapi/v3/apis/apps/v1").await;
    assert_eq!(plain.body, doc.body);
    assert_eq!(header(&plain, "cache-control"), None);
    let etag = header(&plain, "etag").unwrap();
    let revalidated = with(
        "/openapi/v3/apis/apps/v1".into(),
        vec![("if-none-match", etag)],
    )
    .await;
    assert_eq!(revalidated.status.as_u16(), 304);
    // An older hash: moved to the current URL.
    let old = get(&h, "/openapi/v3/apis/apps/v1?hash=0123456789ABCDEF").await;
    assert_eq!(old.status.as_u16(), 301);
    assert_eq!(header(&old, "location"), Some(url.clone()));
    // A group/version not served: 404, hash or not.
    for path in [
        "/openapi/v3/apis/nope.example.com/v1",
        "/openapi/v3/apis/nope.example.com/v1?hash=AB",
    ] {
        assert_eq!(get(&h, path).await.status.as_u16(), 404, "{path}");
    }

    // A CRD changes the root (a new group/version), not the other documents' hashes.
    assert_eq!(
        post_json(&h, CRDS, &widget_crd()).await.status.as_u16(),
        201
    );
    let changed = with("/openapi/v3".into(), vec![("if-none-match", root_etag)]).await;
    assert_eq!(changed.status.as_u16(), 200);
    assert!(changed.json()["paths"]["apis/example.com/v1"].is_object());
    assert_eq!(v3_url(&h, "apis/apps/v1").await, Some(url));
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn crd_schemas_are_published_in_openapi_v3_and_v2() {
    let h = server().await;
    // Read once before the CRD exists: what is rendered then is not served after.
    let before = get(&h, "/openapi/v2").await.json();
    assert!(before["definitions"].get("com.example.v1.Widget").is_none());
    let mut crd = widget_crd();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        ["size"]["description"] = json!("How big the widget is.");
    assert_eq!(post_json(&h, CRDS, &crd).await.status.as_u16(), 201);

    let url = v3_url(&h, "apis/example.com/v1").await.unwrap();
    let doc = get(&h, &url).await.json();
    let schemas = &doc["components"]["schemas"];
    let widget = &schemas["com.example.v1.Widget"];
    assert_eq!(
        widget["x-kubernetes-group-version-kind"],
        json!([{"group": "example.com", "version": "v1", "kind": "Widget"}])
    );
    assert_eq!(
        widget["properties"]["spec"]["properties"]["size"]["description"],
        "How big the widget is."
    );
    assert_eq!(
        widget["properties"]["metadata"]["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    );
    assert!(widget["properties"]["kind"]["description"]
        .as_str()
        .unwrap()
        .starts_with("Kind is a string value"));
    let list = &schemas["com.example.v1.WidgetList"];
    assert_eq!(
        list["properties"]["items"]["items"]["$ref"],
        "#/components/schemas/com.example.v1.Widget"
    );
    // What they reference is in the same document.
    for name in [
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta",
        "io.k8s.apimachinery.pkg.apis.meta.v1.ManagedFieldsEntry",
    ] {
        assert!(schemas[name].is_object(), "{name} missing");
    }
    let get_op = &doc["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}"]["get"];
    assert_eq!(
        get_op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/com.example.v1.Widget"
    );

    let v2 = get(&h, "/openapi/v2").await.json();
    assert_eq!(
        v2["paths"]["/apis/example.com/v1/watch/namespaces/{namespace}/widgets"]["get"]
            ["operationId"],
        "watchExampleComV1NamespacedWidgetList"
    );
    let defs = &v2["definitions"];
    assert_eq!(
        defs["com.example.v1.Widget"]["properties"]["metadata"]["$ref"],
        "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    );
    assert_eq!(
        defs["com.example.v1.Widget"]["properties"]["spec"]["properties"]["size"]["type"],
        "integer"
    );
    // v1beta1 preserves unknown fields at the root: a bare object in v2, so that v2 clients
    // do not refuse fields, but its declared shape in v3.
    assert_eq!(
        defs["com.example.v1beta1.Widget"],
        json!({"type": "object", "x-kubernetes-group-version-kind":
            [{"group": "example.com", "version": "v1beta1", "kind": "Widget"}]})
    );
    assert!(defs["com.example.v1beta1.WidgetList"].is_object());
    assert_eq!(
        v2["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}"]["get"]
            ["responses"]["200"]["schema"]["$ref"],
        "#/definitions/com.example.v1.Widget"
    );

    // The protobuf form (what client-go downloads) carries the same definitions.
    let pb = send_with(
        &h,
        http::Method::GET,
        "/openapi/v2",
        &[("accept", OPENAPI_V2_PROTOBUF)],
        "",
    )
    .await;
    assert_eq!(pb.status.as_u16(), 200);
    let contains = |needle: &str| pb.body_contains(needle);
    assert!(contains("com.example.v1.WidgetList"));
    assert!(contains("How big the widget is."));
    assert!(contains("io.k8s.api.apps.v1.Deployment"));
    // Served with an ETag; asking again with it is a 304 until a CRD changes.
    let etag = pb.headers["etag"].to_str().unwrap().to_string();
    let cached = |etag: String| {
        let h = &h;
        async move {
            send_with(
                h,
                http::Method::GET,
                "/openapi/v2",
                &[("accept", OPENAPI_V2_PROTOBUF), ("if-none-match", &etag)],
                "",
            )
            .await
            .status
            .as_u16()
        }
    };
    assert_eq!(cached(etag.clone()).await, 304);

    // Changing the schema changes the v3 hash of that group version (clients refetch).
    let beta_url = v3_url(&h, "apis/example.com/v1beta1").await.unwrap();
    let mut current = get(&h, &format!("{CRDS}/widgets.example.com")).await.json();
    current["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
        ["properties"]["size"]["description"] = json!("Size in centimetres.");
    let r = put_json(&h, &format!("{CRDS}/widgets.example.com"), &current).await;
    assert_eq!(
        r.status.as_u16(),
        200,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let new_url = v3_url(&h, "apis/example.com/v1").await.unwrap();
    assert_ne!(new_url, url);
    assert_eq!(cached(etag).await, 200);
    assert_eq!(
        v3_url(&h, "apis/example.com/v1beta1").await.unwrap(),
        beta_url
    );
    let doc = get(&h, &new_url).await.json();
    assert_eq!(
        doc["components"]["schemas"]["com.example.v1.Widget"]["properties"]["spec"]["properties"]
            ["size"]["description"],
        "Size in centimetres."
    );

    // Deleting the CRD removes its group versions from the documents.
    let r = send(
        &h,
        http::Method::DELETE,
        &format!("{CRDS}/widgets.example.com"),
        "",
        "",
    )
    .await;
    assert!(
        r.status.is_success(),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while v3_url(&h, "apis/example.com/v1").await.is_some() {
        assert!(std::time::Instant::now() < deadline, "still published");
        tokio::task::yield_now().await;
    }
    let v2 = get(&h, "/openapi/v2").await.json();
    assert!(v2["definitions"].get("com.example.v1.Widget").is_none());
}

#[tokio::test]
async fn unknown_fields_of_custom_resources_follow_field_validation() {
    let h = server().await;
    assert_eq!(
        post_json(&h, CRDS, &widget_crd()).await.status.as_u16(),
        201
    );
    let mut bad = widget("w1");
    bad["spec"]["bogus"] = json!(true);
    let r = post_json(&h, &format!("{WIDGETS}?fieldValidation=Strict"), &bad).await;
    let status = r.status_failure(400, "BadRequest");
    assert_eq!(
        status["message"],
        r#"Widget in version "v1" cannot be handled as a Widget: strict decoding error: unknown field "spec.bogus""#
    );
    let r = post_json(&h, WIDGETS, &bad).await;
    assert_eq!(r.status.as_u16(), 201);
    let warning = r.headers.get("warning").unwrap().to_str().unwrap();
    assert!(
        warning.contains(r#"unknown field \"spec.bogus\""#),
        "{warning}"
    );
    assert!(r.json()["spec"].get("bogus").is_none());
    // v1beta1 preserves unknown fields: nothing to report.
    let mut kept = widget("w2");
    kept["apiVersion"] = json!("example.com/v1beta1");
    kept["spec"]["bogus"] = json!(true);
    let r = post_json(
        &h,
        &format!(
            "{}?fieldValidation=Strict",
            WIDGETS.replace("/v1/", "/v1beta1/")
        ),
        &kept,
    )
    .await;
    assert_eq!(
        r.status.as_u16(),
        201,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
}

/// A custom resource has no unconditional update (kube's CRD strategy): a PUT without
/// `metadata.resourceVersion` is 422 with kube's message, one with it is applied.
#[tokio::test]
async fn a_put_of_a_custom_resource_must_carry_its_resource_version() {
    let h = server().await;
    assert_eq!(post_json(&h, CRDS, &widget_crd()).await.status, 201);
    let created = post_json(&h, WIDGETS, &widget("w")).await.json();
    let mut replacement = widget("w");
    replacement["spec"] = json!({"size": 2});
    let r = put_json(&h, &format!("{WIDGETS}/w"), &replacement).await;
    let s = r.status_failure(422, "Invalid");
    assert_eq!(
        s["message"],
        "widgets.example.com \"w\" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update",
        "{s}"
    );
    assert_eq!(s["details"]["kind"], "widgets", "{s}");
    replacement["metadata"]["resourceVersion"] = created["metadata"]["resourceVersion"].clone();
    let r = put_json(&h, &format!("{WIDGETS}/w"), &replacement).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.json());
    // A missing object is still NotFound (custom resources are not created by PUT).
    put_json(&h, &format!("{WIDGETS}/nope"), &widget("nope"))
        .await
        .status_failure(404, "NotFound");
}

/// Server-side apply on a custom resource merges by the CRD schema's list types: two appliers
/// each own their item of an associative list (`x-kubernetes-list-type: map`), and an item one
/// of them stops applying goes while the other's stays.
#[tokio::test]
async fn appliers_share_a_custom_resources_associative_list() {
    let h = server().await;
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "routers.example.com"},
        "spec": {
            "group": "example.com", "scope": "Namespaced",
            "names": {"plural": "routers", "singular": "router", "kind": "Router"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {
                        "routes": {"type": "array", "x-kubernetes-list-type": "map",
                                   "x-kubernetes-list-map-keys": ["name"],
                                   "items": {"type": "object", "required": ["name"], "properties": {
                                       "name": {"type": "string"}, "to": {"type": "string"}}}}}}}}}}]
        }
    });
    assert_eq!(post_json(&h, CRDS, &crd).await.status.as_u16(), 201);
    let path = "/apis/example.com/v1/namespaces/default/routers/r";
    let apply = |manager: &str, routes: Value| {
        let body = json!({"apiVersion": "example.com/v1", "kind": "Router",
                          "metadata": {"name": "r"}, "spec": {"routes": routes}})
        .to_string();
        let url = format!("{path}?fieldManager={manager}");
        let h = &h;
        async move { patch(h, &url, "application/apply-patch+yaml", &body).await }
    };
    let r = apply("team-a", json!([{"name": "a", "to": "svc-a"}])).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    let r = apply("team-b", json!([{"name": "b", "to": "svc-b"}])).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.json());
    assert_eq!(
        r.json()["spec"]["routes"],
        json!([{"name": "a", "to": "svc-a"}, {"name": "b", "to": "svc-b"}])
    );
    // team-a changing team-b's route conflicts.
    let r = apply(
        "team-a",
        json!([{"name": "a", "to": "svc-a"}, {"name": "b", "to": "mine"}]),
    )
    .await;
    let s = r.status_failure(409, "Conflict");
    assert_eq!(
        s["message"],
        "Apply failed with 1 conflict: conflict with \"team-b\": .spec.routes[name=\"b\"].to"
    );
    // team-a stops applying its route: it goes, team-b's stays.
    let r = apply("team-a", json!([])).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.json());
    assert_eq!(
        r.json()["spec"]["routes"],
        json!([{"name": "b", "to": "svc-b"}])
    );
}

/// Managers are compared at the version they wrote at: `spec.weights` is a granular map in v1
/// and an atomic one in v2, so an applier of v2 replacing it changes a key a v1 applier owns — a
/// conflict at v1 that v2's schema alone would not show.
#[tokio::test]
async fn custom_resource_managers_are_compared_at_their_own_version() {
    let h = server().await;
    let schema = |atomic: bool| {
        let mut weights = json!({"type": "object", "additionalProperties": {"type": "integer"}});
        if atomic {
            weights["x-kubernetes-map-type"] = json!("atomic");
        }
        json!({"openAPIV3Schema": {"type": "object", "properties": {
            "spec": {"type": "object", "properties": {"weights": weights}}}}})
    };
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "splits.example.com"},
        "spec": {
            "group": "example.com", "scope": "Namespaced",
            "names": {"plural": "splits", "singular": "split", "kind": "Split"},
            "versions": [
                {"name": "v1", "served": true, "storage": true, "schema": schema(false)},
                {"name": "v2", "served": true, "storage": false, "schema": schema(true)}]
        }
    });
    assert_eq!(post_json(&h, CRDS, &crd).await.status.as_u16(), 201);
    let apply = |version: &str, manager: &str, weights: Value| {
        let body = json!({"apiVersion": format!("example.com/{version}"), "kind": "Split",
                          "metadata": {"name": "s"}, "spec": {"weights": weights}})
        .to_string();
        let url = format!(
            "/apis/example.com/{version}/namespaces/default/splits/s?fieldManager={manager}"
        );
        let h = &h;
        async move { patch(h, &url, "application/apply-patch+yaml", &body).await }
    };
    let r = apply("v1", "old", json!({"a": 1})).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    let r = apply("v2", "new", json!({"a": 2, "b": 1})).await;
    let s = r.status_failure(409, "Conflict");
    assert_eq!(
        s["message"],
        "Apply failed with 1 conflict: conflict with \"old\": .spec.weights.a"
    );
}

/// Printer columns as kube serves them: kube's JSONPath (an escaped dot in an annotation key, a
/// filter, a quoted key), the first selected value, typed as the column says (an integer column
/// of a string is empty, a string column of a list prints JSON); a column kube's JSONPath cannot
/// parse keeps the version served with the columns before it.
#[tokio::test]
async fn printer_columns_use_kubes_jsonpath_and_never_keep_a_crd_from_being_served() {
    let h = server().await;
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.example.com"},
        "spec": {
            "group": "example.com", "scope": "Namespaced",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                "additionalPrinterColumns": [
                    {"name": "Owner", "type": "string", "jsonPath": ".metadata.annotations.example\\.com/owner"},
                    {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"},
                    {"name": "Zones", "type": "string", "jsonPath": ".spec['zones']"},
                    {"name": "Count", "type": "integer", "jsonPath": ".spec.count"},
                    {"name": "Broken", "type": "string", "jsonPath": ".spec[?(@.x"},
                    {"name": "After", "type": "string", "jsonPath": ".spec.count"}]}]
        }
    });
    let r = post_json(&h, CRDS, &crd).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    let stored = get(&h, &format!("{CRDS}/gadgets.example.com")).await.json();
    let established = stored["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["type"] == "Established" && c["status"] == "True");
    assert!(established, "{stored}");
    let path = "/apis/example.com/v1/namespaces/default/gadgets";
    let g = json!({"apiVersion": "example.com/v1", "kind": "Gadget",
        "metadata": {"name": "g", "annotations": {"example.com/owner": "team-a"}},
        "spec": {"zones": ["a", "b"], "count": "three"},
        "status": {"conditions": [{"type": "Synced", "status": "False"}, {"type": "Ready", "status": "True"}]}});
    let r = post_json(&h, path, &g).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    let t = send_with(
        &h,
        Method::GET,
        path,
        &[("accept", "application/json;as=Table;v=v1;g=meta.k8s.io")],
        "",
    )
    .await
    .json();
    let cols: Vec<&str> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(cols, vec!["Name", "Owner", "Ready", "Zones", "Count"]);
    assert_eq!(
        t["rows"][0]["cells"],
        json!(["g", "team-a", "True", "[\"a\",\"b\"]", null])
    );
}

/// A printer column is checked as kube checks it: type and format from its sets, a JSONPath
/// starting with a dot.
#[tokio::test]
async fn invalid_printer_columns_are_refused_with_kubes_messages() {
    let h = server().await;
    let mut crd = widget_crd();
    crd["spec"]["versions"][0]["additionalPrinterColumns"] = json!([
        {"name": "A", "type": "text", "jsonPath": "spec.a"},
        {"name": "", "type": "string", "format": "uuid", "jsonPath": ".spec.b"},
        {"name": "C", "type": "", "jsonPath": ""}]);
    let r = post_json(&h, CRDS, &crd).await;
    let s = r.status_failure(422, "Invalid");
    let message = s["message"].as_str().unwrap();
    for part in [
        r#"spec.versions[0].additionalPrinterColumns[0].type: Invalid value: "text": must be one of boolean,date,integer,number,string"#,
        r#"spec.versions[0].additionalPrinterColumns[0].JSONPath: Invalid value: "spec.a": must be a simple json path starting with ."#,
        "spec.versions[0].additionalPrinterColumns[1].name: Required value",
        r#"spec.versions[0].additionalPrinterColumns[1].format: Invalid value: "uuid": must be one of byte,date,date-time,double,float,int32,int64,password"#,
        "spec.versions[0].additionalPrinterColumns[2].type: Required value: must be one of boolean,date,integer,number,string",
        "spec.versions[0].additionalPrinterColumns[2].JSONPath: Required value",
    ] {
        assert!(message.contains(part), "{part}\n{message}");
    }
}

/// A CRD as kube stores it: `names.singular` and `names.listKind` and `conversion` defaulted
/// (`{strategy: None}`), a webhook service's port defaulted to 443, and the created object's
/// status holding the storage version.
#[tokio::test]
async fn crds_are_defaulted_as_kube_defaults_them() {
    let h = server().await;
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "plainthings.example.com"},
        "spec": {"group": "example.com", "scope": "Cluster",
            "names": {"plural": "plainthings", "kind": "PlainThing"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object"}}}]}
    });
    let r = post_json(&h, CRDS, &crd).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    let created = r.json();
    assert_eq!(
        created["status"]["storedVersions"],
        json!(["v1"]),
        "{created}"
    );
    let got = get(&h, &format!("{CRDS}/plainthings.example.com"))
        .await
        .json();
    assert_eq!(got["spec"]["names"]["singular"], "plainthing", "{got}");
    assert_eq!(got["spec"]["names"]["listKind"], "PlainThingList", "{got}");
    assert_eq!(
        got["spec"]["conversion"],
        json!({"strategy": "None"}),
        "{got}"
    );
    let mut hooked = crd.clone();
    hooked["metadata"]["name"] = json!("hookedthings.example.com");
    hooked["spec"]["names"] = json!({"plural": "hookedthings", "kind": "HookedThing"});
    hooked["spec"]["versions"] = json!([
        {"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {"type": "object"}}},
        {"name": "v2", "served": true, "storage": false, "schema": {"openAPIV3Schema": {"type": "object"}}}]);
    hooked["spec"]["conversion"] = json!({"strategy": "Webhook", "webhook": {
        "conversionReviewVersions": ["v1"],
        "clientConfig": {"service": {"namespace": "default", "name": "converter"}}}});
    let r = post_json(&h, CRDS, &hooked).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    assert_eq!(
        r.json()["spec"]["conversion"]["webhook"]["clientConfig"]["service"]["port"],
        443,
        "{}",
        r.json()
    );
}

/// A CRD's schema as kube stores it: what a Go round trip of JSONSchemaProps drops (`properties:
/// {}`, `required: []`, `description: ""`, `nullable: false`) is dropped; pointers keep their
/// zero (`minimum: 0`, `maxProperties: 0`).
#[tokio::test]
async fn crd_schemas_drop_what_a_go_round_trip_drops() {
    let h = server().await;
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "sparsethings.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "sparsethings", "kind": "SparseThing"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "description": "",
                    "required": [], "properties": {
                        "spec": {"type": "object", "properties": {}, "nullable": false,
                                 "maxProperties": 0},
                        "count": {"type": "integer", "minimum": 0, "description": ""},
                        "tags": {"type": "array", "items": {"type": "string", "description": "",
                                 "required": [], "nullable": false}},
                        "labels": {"type": "object", "additionalProperties": {"type": "string",
                                   "description": "", "enum": []}}}}}}]}
    });
    let r = post_json(&h, CRDS, &crd).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    let got = get(&h, &format!("{CRDS}/sparsethings.example.com"))
        .await
        .json();
    let schema = &got["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    assert_eq!(
        schema,
        &json!({"type": "object", "properties": {
            "spec": {"type": "object", "maxProperties": 0},
            "count": {"type": "integer", "minimum": 0},
            "tags": {"type": "array", "items": {"type": "string"}},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}}}}),
        "{got}"
    );
}

/// A CRD's `/status` and `/scale` subresources are operations of its `/openapi/v3` document,
/// `/scale` reading and writing autoscaling/v1 Scale (included in its components), as kube
/// publishes them; built-ins' subresources too.
#[tokio::test]
async fn subresources_are_published_in_openapi_v3() {
    let h = server().await;
    post_json(&h, CRDS, &widget_crd()).await;
    let url = v3_url(&h, "apis/example.com/v1").await.unwrap();
    let doc = get(&h, &url).await.json();
    let base = "/apis/example.com/v1/namespaces/{namespace}/widgets/{name}";
    let status = &doc["paths"][format!("{base}/status")];
    for op in ["get", "put", "patch"] {
        assert!(status.get(op).is_some(), "{op}: {status}");
    }
    assert_eq!(
        status["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/com.example.v1.Widget"
    );
    let scale = &doc["paths"][format!("{base}/scale")];
    assert_eq!(
        scale["put"]["requestBody"]["content"]["*/*"]["schema"]["$ref"],
        "#/components/schemas/io.k8s.api.autoscaling.v1.Scale",
        "{scale}"
    );
    assert!(doc["components"]["schemas"]
        .get("io.k8s.api.autoscaling.v1.Scale")
        .is_some());
    let url = v3_url(&h, "apis/apps/v1").await.unwrap();
    let apps = get(&h, &url).await.json();
    let d = "/apis/apps/v1/namespaces/{namespace}/deployments/{name}";
    assert!(apps["paths"].get(format!("{d}/status")).is_some());
    assert!(apps["paths"].get(format!("{d}/scale")).is_some());
}

/// `/openapi/v2` as Go clients parse it: JSONSchemaProps' property named `$ref` is a schema
/// (a string), not a reference emptied by the v3 → v2 rewrite.
#[tokio::test]
async fn openapi_v2_keeps_properties_named_like_keywords() {
    let h = server().await;
    let v2 = get(&h, "/openapi/v2").await.json();
    let props = &v2["definitions"]
        ["io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps"]["properties"];
    assert_eq!(props["$ref"]["type"], "string", "{}", props["$ref"]);
    assert_eq!(props["$schema"]["type"], "string");
    // And references stay references.
    assert_eq!(
        v2["definitions"]["io.k8s.api.apps.v1.Deployment"]["properties"]["spec"]["$ref"],
        "#/definitions/io.k8s.api.apps.v1.DeploymentSpec"
    );
}

/// A server-side apply types the live object with the schema of the request's version (as
/// structured-merge-diff does): an object stored through another version whose field has
/// another type there is refused with kube's 500; the same apply at the storage version, and
/// other patches, go through.
#[tokio::test]
async fn an_apply_over_an_object_that_no_longer_fits_its_version_is_refused() {
    let h = server().await;
    let version = |name: &str, storage: bool, size: &str| {
        json!({"name": name, "served": true, "storage": storage,
            "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                "spec": {"type": "object", "properties": {"size": {"type": size}}}}}}})
    };
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "gadgets", "kind": "Gadget"},
            "versions": [version("v1", true, "string"), version("v2", false, "integer")]}
    });
    assert_eq!(post_json(&h, CRDS, &crd).await.status.as_u16(), 201);
    let v1 = "/apis/example.com/v1/namespaces/default/gadgets";
    let v2 = "/apis/example.com/v2/namespaces/default/gadgets";
    let g = json!({"apiVersion": "example.com/v1", "kind": "Gadget",
        "metadata": {"name": "g1"}, "spec": {"size": "3"}});
    assert_eq!(post_json(&h, v1, &g).await.status.as_u16(), 201);
    let apply = |path: String, api_version: &str| {
        let body = format!(
            r#"{{"apiVersion":"{api_version}","kind":"Gadget","metadata":{{"name":"g1","labels":{{"a":"b"}}}}}}"#
        );
        let h = &h;
        async move {
            send(
                h,
                http::Method::PATCH,
                &path,
                "application/apply-patch+yaml",
                body,
            )
            .await
        }
    };
    let r = apply(format!("{v2}/g1?fieldManager=t"), "example.com/v2").await;
    assert_eq!(r.status.as_u16(), 500, "{}", r.json());
    let s = r.json();
    assert_eq!(
        s["message"],
        "failed to create typed live object (default/g1; example.com/v2, Kind=Gadget): .spec.size: expected numeric (int or float), got string"
    );
    assert!(
        s.get("reason").is_none(),
        "no reason, as kube's unknown errors: {s}"
    );
    let r = apply(format!("{v1}/g1?fieldManager=t"), "example.com/v1").await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.json());
    let r = patch(
        &h,
        &format!("{v2}/g1"),
        "application/merge-patch+json",
        r#"{"metadata":{"labels":{"c":"d"}}}"#,
    )
    .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.json());
}
