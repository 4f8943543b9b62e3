//! Field sets of built-in objects through their published schemas: what server-side apply
//! records for them (list types, atomic maps, declared fields), compared with the managedFields
//! kube-apiserver writes for the same objects.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use kubox_apimachinery::fieldpath::fields_of;
use kubox_openapi::Schemas;
use serde_json::json;

#[test]
fn a_deployments_fields_follow_its_schema() {
    let schema = Schemas::builtin()
        .for_kind("apps", "v1", "Deployment")
        .expect("the Deployment schema");
    // What kubectl apply --server-side sends, without what kube strips from field sets
    // (apiVersion, kind, metadata.name).
    let d = json!({
        "metadata": {"labels": {"app": "web"}, "finalizers": ["example.com/hold"]},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"nodeSelector": {"disk": "ssd"},
                         "containers": [{"name": "web", "image": "nginx",
                                          "env": [{"name": "A", "value": "1"}]}]}
            }
        }
    });
    assert_eq!(
        fields_of(&d, schema).to_json(),
        concat!(
            r#"{"f:metadata":{"f:finalizers":{"v:\"example.com/hold\"":{}},"f:labels":{"f:app":{}}},"#,
            r#""f:spec":{"f:replicas":{},"f:selector":{},"f:template":{"f:metadata":{"f:labels":{"f:app":{}}},"#,
            r#""f:spec":{"f:containers":{"k:{\"name\":\"web\"}":{".":{},"f:env":{"k:{\"name\":\"A\"}":{"#,
            r#"".":{},"f:name":{},"f:value":{}}},"f:image":{},"f:name":{}}},"f:nodeSelector":{}}}}}"#
        )
    );
}

/// As the server-side apply documentation shows an applied ConfigMap's fields: map keys are
/// members, the struct fields holding them are not.
#[test]
fn a_configmaps_data_keys_are_map_keys() {
    let schema = Schemas::builtin()
        .for_kind("", "v1", "ConfigMap")
        .expect("the ConfigMap schema");
    let cm = json!({"data": {"a": "1"}, "metadata": {"annotations": {"note": "x"}}});
    assert_eq!(
        fields_of(&cm, schema).to_json(),
        r#"{"f:data":{"f:a":{}},"f:metadata":{"f:annotations":{"f:note":{}}}}"#
    );
}

/// A list-map key left out takes its default: a Service port without `protocol` is the item
/// `k:{"port":80,"protocol":"TCP"}`, as kube names it.
#[test]
fn defaulted_list_map_keys_name_the_item() {
    let schema = Schemas::builtin()
        .for_kind("", "v1", "Service")
        .expect("the Service schema");
    let svc = json!({"spec": {"ports": [{"port": 80}]}});
    assert_eq!(
        fields_of(&svc, schema).to_json(),
        r#"{"f:spec":{"f:ports":{"k:{\"port\":80,\"protocol\":\"TCP\"}":{".":{},"f:port":{}}}}}"#
    );
}
