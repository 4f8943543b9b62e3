//! Custom resource schemas: openAPIV3Schema validation with kube-apiserver's causes, pruning,
//! defaulting (on write and on read), nullable, int-or-string, preserve-unknown-fields islands,
//! embedded resources, list-type uniqueness, CEL rules (messages, message expressions,
//! transition rules), CRD schema checks, and large real-world-style CRDs from tests/data.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::{json, Value};

const CRDS: &str = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
const GIZMOS: &str = "/apis/schema.example.com/v1/namespaces/default/gizmos";

fn gizmo_crd(spec_schema: Value) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gizmos.schema.example.com"},
        "spec": {
            "group": "schema.example.com", "scope": "Namespaced",
            "names": {"plural": "gizmos", "singular": "gizmo", "kind": "Gizmo"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": spec_schema}}}}]
        }
    })
}

fn gizmo(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "schema.example.com/v1", "kind": "Gizmo", "metadata": {"name": name}, "spec": spec})
}

async fn register(h: &ServerHandle, crd: &Value) {
    let r = post_json(h, CRDS, crd).await;
    assert_eq!(
        r.status.as_u16(),
        201,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
}

async fn created(h: &ServerHandle, path: &str, obj: &Value) -> Value {
    let r = post_json(h, path, obj).await;
    assert_eq!(
        r.status.as_u16(),
        201,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    r.json()
}

/// The Status causes as `(field, reason, message)`.
fn causes(status: &Value) -> Vec<(String, String, String)> {
    status["details"]["causes"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|c| {
            (
                c["field"].as_str().unwrap_or_default().to_string(),
                c["reason"].as_str().unwrap_or_default().to_string(),
                c["message"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn cause(field: &str, reason: &str, message: &str) -> (String, String, String) {
    (field.to_string(), reason.to_string(), message.to_string())
}

#[tokio::test]
async fn invalid_custom_resources_are_refused_with_kube_causes() {
    let h = server().await;
    register(
        &h,
        &gizmo_crd(
            json!({"type": "object", "required": ["name"], "properties": {
                "name": {"type": "string", "maxLength": 8, "pattern": "^[a-z]+$"},
                "replicas": {"type": "integer"},
                "color": {"type": "string", "enum": ["red", "blue"]},
                "size": {"type": "integer", "minimum": 1, "maximum": 100},
                "id": {"type": "string", "format": "uuid"},
                "tags": {"type": "array", "maxItems": 2, "items": {"type": "string"}},
            }}),
        ),
    )
    .await;
    let r = post_json(
        &h,
        GIZMOS,
        &gizmo(
            "g1",
            json!({"replicas": "string", "color": "pink", "size": 200, "id": "nope", "tags": ["a", "b", "c"]}),
        ),
    )
    .await;
    let s = r.status_failure(422, "Invalid");
    assert_eq!(s["details"]["kind"], "Gizmo");
    assert_eq!(s["details"]["group"], "schema.example.com");
    assert_eq!(s["details"]["name"], "g1");
    let c = causes(&s);
    for want in [
        cause(
            "spec.color",
            "FieldValueNotSupported",
            r#"Unsupported value: "pink": supported values: "red", "blue""#,
        ),
        cause(
            "spec.replicas",
            "FieldValueTypeInvalid",
            r#"Invalid value: "string": spec.replicas in body must be of type integer: "string""#,
        ),
        cause(
            "spec.size",
            "FieldValueInvalid",
            "Invalid value: 200: spec.size in body should be less than or equal to 100",
        ),
        cause(
            "spec.id",
            "FieldValueTypeInvalid",
            r#"Invalid value: "nope": spec.id in body must be of type uuid: "nope""#,
        ),
        cause(
            "spec.tags",
            "FieldValueTooMany",
            "Too many: 3: must have at most 2 items",
        ),
        cause("spec.name", "FieldValueRequired", "Required value"),
    ] {
        assert!(c.contains(&want), "missing {want:?} in {c:#?}");
    }
    let msg = s["message"].as_str().unwrap();
    assert!(
        msg.starts_with(r#"Gizmo.schema.example.com "g1" is invalid: ["#),
        "{msg}"
    );
    assert!(
        msg.contains(r#"spec.color: Unsupported value: "pink": supported values: "red", "blue""#),
        "{msg}"
    );
    assert!(msg.contains("spec.name: Required value"), "{msg}");

    let r = post_json(&h, GIZMOS, &gizmo("g2", json!({"name": "Way-Too-Long"}))).await;
    let s = r.status_failure(422, "Invalid");
    assert_eq!(
        causes(&s),
        vec![cause(
            "spec.name",
            "FieldValueTooLong",
            "Too long: may not be more than 8 bytes"
        )]
    );
    let r = post_json(&h, GIZMOS, &gizmo("g3", json!({"name": "UPPER"}))).await;
    let s = r.status_failure(422, "Invalid");
    assert_eq!(
        causes(&s),
        vec![cause(
            "spec.name",
            "FieldValueInvalid",
            r#"Invalid value: "UPPER": spec.name in body should match '^[a-z]+$'"#
        )]
    );
    // A valid one goes through.
    created(
        &h,
        GIZMOS,
        &gizmo("g4", json!({"name": "ok", "size": 5, "color": "red"})),
    )
    .await;
}

#[tokio::test]
async fn unknown_fields_are_pruned_and_preserved_islands_are_kept() {
    let h = server().await;
    register(
        &h,
        &gizmo_crd(json!({"type": "object", "properties": {
            "name": {"type": "string"},
            "nested": {"type": "object", "properties": {"x": {"type": "integer"}}},
            "raw": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "partly": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                "properties": {"known": {"type": "object", "properties": {"a": {"type": "string"}}}}},
            "items": {"type": "array", "items": {"type": "object", "properties": {"k": {"type": "string"}}}},
        }})),
    )
    .await;
    let mut obj = gizmo(
        "p1",
        json!({"name": "a", "bogus": 1, "nested": {"x": 1, "y": 2},
            "raw": {"anything": {"deep": [1, {"goes": true}]}},
            "partly": {"free": "kept", "known": {"a": "x", "b": "pruned"}},
            "items": [{"k": "v", "drop": 1}]}),
    );
    obj["extra"] = json!("top-level");
    let want = json!({"name": "a", "nested": {"x": 1},
        "raw": {"anything": {"deep": [1, {"goes": true}]}},
        "partly": {"free": "kept", "known": {"a": "x"}},
        "items": [{"k": "v"}]});
    let c = created(&h, GIZMOS, &obj).await;
    assert_eq!(c["spec"], want);
    assert!(c.get("extra").is_none());
    let g = get(&h, &format!("{GIZMOS}/p1")).await.json();
    assert_eq!(g["spec"], want);
    assert!(g.get("extra").is_none());
}

#[tokio::test]
async fn defaults_apply_on_create_and_when_read() {
    let h = server().await;
    let mut crd = gizmo_crd(json!({"type": "object", "properties": {
        "replicas": {"type": "integer", "default": 1},
        "ports": {"type": "array", "items": {"type": "object", "properties": {
            "port": {"type": "integer"}, "protocol": {"type": "string", "default": "TCP"}}}},
        "tuning": {"type": "object", "default": {}, "properties": {"level": {"type": "integer", "default": 3}}},
    }}));
    register(&h, &crd).await;
    let c = created(
        &h,
        GIZMOS,
        &gizmo(
            "d1",
            json!({"ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}]}),
        ),
    )
    .await;
    assert_eq!(
        c["spec"],
        json!({"replicas": 1, "tuning": {"level": 3},
            "ports": [{"port": 80, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]})
    );
    // A default added to the CRD later shows on objects read afterwards.
    let current = get(&h, &format!("{CRDS}/gizmos.schema.example.com"))
        .await
        .json();
    crd["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"].clone();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        ["mode"] = json!({"type": "string", "default": "auto"});
    let r = put_json(&h, &format!("{CRDS}/gizmos.schema.example.com"), &crd).await;
    assert_eq!(
        r.status.as_u16(),
        200,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let g = get(&h, &format!("{GIZMOS}/d1")).await.json();
    assert_eq!(g["spec"]["mode"], "auto", "{g}");
    assert_eq!(g["spec"]["replicas"], 1);
    let list = get(&h, GIZMOS).await.json();
    assert_eq!(list["items"][0]["spec"]["mode"], "auto");
}

#[tokio::test]
async fn nullable_null_pruning_and_defaulting() {
    let h = server().await;
    register(
        &h,
        &gizmo_crd(json!({"type": "object", "properties": {
            "keep": {"type": "string", "nullable": true},
            "drop": {"type": "string"},
            "dflt": {"type": "string", "default": "x"},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        }})),
    )
    .await;
    let c = created(
        &h,
        GIZMOS,
        &gizmo("n1", json!({"keep": null, "drop": null, "dflt": null})),
    )
    .await;
    assert_eq!(c["spec"], json!({"keep": null, "dflt": "x"}));
    // A null map value is not pruned; it is invalid.
    let r = post_json(&h, GIZMOS, &gizmo("n2", json!({"labels": {"a": null}}))).await;
    let s = r.status_failure(422, "Invalid");
    assert_eq!(
        causes(&s),
        vec![cause(
            "spec.labels.a",
            "FieldValueTypeInvalid",
            r#"Invalid value: "null": spec.labels.a in body must be of type string: "null""#
        )]
    );
}

#[tokio::test]
async fn int_or_string_and_embedded_resources() {
    let h = server().await;
    register(
        &h,
        &gizmo_crd(json!({"type": "object", "properties": {
            "port": {"x-kubernetes-int-or-string": true},
            "template": {"type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true},
            "typed": {"type": "object", "x-kubernetes-embedded-resource": true, "properties": {
                "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}}},
        }})),
    )
    .await;
    created(&h, GIZMOS, &gizmo("i1", json!({"port": 8080}))).await;
    created(&h, GIZMOS, &gizmo("i2", json!({"port": "http"}))).await;
    let r = post_json(&h, GIZMOS, &gizmo("i3", json!({"port": true}))).await;
    let s = r.status_failure(422, "Invalid");
    assert_eq!(
        causes(&s),
        vec![cause(
            "spec.port",
            "FieldValueTypeInvalid",
            r#"Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean""#
        )]
    );
    // Embedded resources keep apiVersion, kind and metadata, and need the first two.
    let c = created(
        &h,
        GIZMOS,
        &gizmo("e1", json!({
            "template": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "labels": {"a": "b"}}, "data": {"k": "v"}},
            "typed": {"apiVersion": "v1", "kind": "Thing", "metadata": {"name": "t"}, "spec": {"size": 1, "gone": 2}, "gone": 3}})),
    )
    .await;
    assert_eq!(c["spec"]["template"]["data"], json!({"k": "v"}));
    assert_eq!(
        c["spec"]["typed"],
        json!({"apiVersion": "v1", "kind": "Thing", "metadata": {"name": "t"}, "spec": {"size": 1}})
    );
    let r = post_json(
        &h,
        GIZMOS,
        &gizmo(
            "e2",
            json!({"template": {"apiVersion": "v1", "metadata": {"labels": {"bad": "no spaces"}}}}),
        ),
    )
    .await;
    let s = r.status_failure(422, "Invalid");
    let c = causes(&s);
    assert_eq!(
        c[0],
        cause(
            "spec.template.kind",
            "FieldValueRequired",
            "Required value: must not be empty"
        )
    );
    assert_eq!(c[1].0, "spec.template.metadata.labels");
    assert_eq!(c.len(), 2, "{c:#?}");
}

#[tokio::test]
async fn list_type_map_and_set_items_must_be_unique() {
    let h = server().await;
    register(
        &h,
        &gizmo_crd(json!({"type": "object", "properties": {
            "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "port": {"type": "integer"}}}},
            "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
        }})),
    )
    .await;
    let r = post_json(
        &h,
        GIZMOS,
        &gizmo("l1", json!({"ports": [{"name": "http", "port": 80}, {"name": "http", "port": 8080}], "tags": ["a", "a"]})),
    )
    .await;
    let s = r.status_failure(422, "Invalid");
    assert_eq!(
        causes(&s),
        vec![
            cause(
                "spec.ports[1]",
                "FieldValueDuplicate",
                r#"Duplicate value: map[string]interface {}{"name":"http"}"#
            ),
            cause(
                "spec.tags[1]",
                "FieldValueDuplicate",
                r#"Duplicate value: "a""#
            ),
        ]
    );
    created(
        &h,
        GIZMOS,
        &gizmo(
            "l2",
            json!({"ports": [{"name": "http"}, {"name": "https"}], "tags": ["a", "b"]}),
        ),
    )
    .await;
}

#[tokio::test]
async fn cel_rules_report_messages_and_message_expressions() {
    let h = server().await;
    register(
        &h,
        &gizmo_crd(json!({"type": "object",
            "x-kubernetes-validations": [
                {"rule": "self.minReplicas <= self.maxReplicas", "message": "minReplicas must not exceed maxReplicas"},
                {"rule": "!has(self.mode) || self.mode != 'legacy' || self.maxReplicas <= 3",
                 "messageExpression": "'legacy mode allows 3 replicas, not %d'.format([self.maxReplicas])",
                 "fieldPath": ".maxReplicas", "reason": "FieldValueForbidden"},
                {"rule": "self.name.startsWith('g-')"},
            ],
            "properties": {
                "minReplicas": {"type": "integer", "default": 1},
                "maxReplicas": {"type": "integer", "default": 1},
                "mode": {"type": "string"},
                "name": {"type": "string", "maxLength": 32, "default": "g-default"},
                "hosts": {"type": "array", "maxItems": 8, "items": {"type": "string", "maxLength": 64,
                    "x-kubernetes-validations": [{"rule": "self.endsWith('.example.com')", "message": "must be in example.com"}]}},
            }})),
    )
    .await;
    created(
        &h,
        GIZMOS,
        &gizmo("c1", json!({"minReplicas": 1, "maxReplicas": 2})),
    )
    .await;
    let r = post_json(
        &h,
        GIZMOS,
        &gizmo("c2", json!({"minReplicas": 5, "maxReplicas": 4, "mode": "legacy", "name": "x", "hosts": ["a.example.com", "b.example.org"]})),
    )
    .await;
    let s = r.status_failure(422, "Invalid");
    assert_eq!(
        causes(&s),
        vec![
            cause(
                "spec",
                "FieldValueInvalid",
                "Invalid value: minReplicas must not exceed maxReplicas"
            ),
            cause(
                "spec.maxReplicas",
                "FieldValueForbidden",
                "Forbidden: legacy mode allows 3 replicas, not 4"
            ),
            cause(
                "spec",
                "FieldValueInvalid",
                "Invalid value: failed rule: self.name.startsWith('g-')"
            ),
            cause(
                "spec.hosts[1]",
                "FieldValueInvalid",
                r#"Invalid value: "b.example.org": must be in example.com"#
            ),
        ]
    );
}

#[tokio::test]
async fn cel_transition_rules_make_fields_immutable() {
    let h = server().await;
    register(
        &h,
        &gizmo_crd(json!({"type": "object", "properties": {
            "storageClass": {"type": "string", "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "storageClass is immutable"}]},
            "size": {"type": "integer"},
        }})),
    )
    .await;
    created(
        &h,
        GIZMOS,
        &gizmo("t1", json!({"storageClass": "fast", "size": 1})),
    )
    .await;
    let path = format!("{GIZMOS}/t1");
    let ok = patch(
        &h,
        &path,
        "application/merge-patch+json",
        r#"{"spec": {"size": 2}}"#,
    )
    .await;
    assert_eq!(
        ok.status.as_u16(),
        200,
        "{}",
        String::from_utf8_lossy(&ok.body)
    );
    let r = patch(
        &h,
        &path,
        "application/merge-patch+json",
        r#"{"spec": {"storageClass": "slow"}}"#,
    )
    .await;
    let s = r.status_failure(422, "Invalid");
    assert_eq!(
        causes(&s),
        vec![cause(
            "spec.storageClass",
            "FieldValueInvalid",
            r#"Invalid value: "slow": storageClass is immutable"#
        )]
    );
    assert_eq!(get(&h, &path).await.json()["spec"]["storageClass"], "fast");
}

#[tokio::test]
async fn crds_with_non_structural_schemas_or_bad_rules_are_refused() {
    let h = server().await;
    let base = "spec.versions[0].schema.openAPIV3Schema";
    let r = post_json(
        &h,
        CRDS,
        &gizmo_crd(json!({"type": "object", "properties": {"x": {"properties": {"y": {"type": "string"}}}}})),
    )
    .await;
    let s = r.status_failure(422, "Invalid");
    assert_eq!(
        causes(&s),
        vec![cause(
            &format!("{base}.properties[spec].properties[x].type"),
            "FieldValueRequired",
            "Required value: must not be empty for specified object fields"
        )]
    );
    let r = post_json(
        &h,
        CRDS,
        &gizmo_crd(
            json!({"type": "object", "properties": {"a": {"type": "string"}},
            "additionalProperties": {"type": "string"}}),
        ),
    )
    .await;
    let s = r.status_failure(422, "Invalid");
    assert_eq!(
        causes(&s),
        vec![cause(
            &format!("{base}.properties[spec].additionalProperties"),
            "FieldValueForbidden",
            "Forbidden: additionalProperties and properties are mutual exclusive"
        )]
    );
    let r = post_json(
        &h,
        CRDS,
        &gizmo_crd(
            json!({"type": "object", "properties": {"a": {"type": "integer"}},
            "x-kubernetes-validations": [{"rule": "self.a >"}, {"rule": "self.b == 1"}]}),
        ),
    )
    .await;
    let s = r.status_failure(422, "Invalid");
    let c = causes(&s);
    assert_eq!(c.len(), 2, "{c:#?}");
    let field = format!("{base}.properties[spec].x-kubernetes-validations[0].rule");
    assert_eq!(
        (c[0].0.as_str(), c[0].1.as_str()),
        (field.as_str(), "FieldValueInvalid")
    );
    assert!(
        c[0].2.starts_with(
            r#"Invalid value: apiextensions.ValidationRule{Rule:"self.a >", Message:"""#
        ) && c[0].2.contains(": compilation failed: ERROR: <input>:1:"),
        "{}",
        c[0].2
    );
    assert!(
        c[1].2
            .contains("compilation failed: ERROR: <input>:1:5: undefined field 'b'"),
        "{}",
        c[1].2
    );
    // Rules that could run too long are refused.
    let r = post_json(
        &h,
        CRDS,
        &gizmo_crd(json!({"type": "object", "properties": {
            "a": {"type": "array", "items": {"type": "string"}}, "b": {"type": "array", "items": {"type": "string"}}},
            "x-kubernetes-validations": [{"rule": "self.a.all(x, self.b.all(y, x != y))"}]})),
    )
    .await;
    let s = r.status_failure(422, "Invalid");
    assert_eq!(
        causes(&s),
        vec![cause(
            &format!("{base}.properties[spec].x-kubernetes-validations[0].rule"),
            "FieldValueForbidden",
            "Forbidden: estimated rule cost exceeds budget by factor of more than 100x (try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)"
        ), cause(
            &format!("{base}.properties[spec].x-kubernetes-validations[0].rule"),
            "FieldValueForbidden",
            "Forbidden: contributed to estimated rule cost total exceeding cost limit for entire OpenAPIv3 schema"
        ), cause(
            base,
            "FieldValueForbidden",
            "Forbidden: x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema exceeds budget by factor of more than 100x (try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)"
        )]
    );
    // Nothing was registered.
    assert_eq!(get(&h, GIZMOS).await.status.as_u16(), 404);
}

// ---------------------------------------------------------------------------------------------
// Large CRDs from tests/data
// ---------------------------------------------------------------------------------------------

fn data(path: &str) -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(path),
    )
    .unwrap()
}

fn data_crds() -> Vec<Value> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/crds");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| serde_yaml::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
        .collect()
}

fn samples() -> Vec<Value> {
    use serde::Deserialize;
    let text = data("cr-samples.yaml");
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap())
        .collect()
}

fn collection(crds: &[Value], obj: &Value) -> String {
    let api = obj["apiVersion"].as_str().unwrap();
    let crd = crds
        .iter()
        .find(|c| {
            api.starts_with(&format!("{}/", c["spec"]["group"].as_str().unwrap()))
                && c["spec"]["names"]["kind"] == obj["kind"]
        })
        .unwrap();
    format!(
        "/apis/{api}/namespaces/default/{}",
        crd["spec"]["names"]["plural"].as_str().unwrap()
    )
}

#[tokio::test]
async fn large_crds_register_and_validate_their_resources() {
    let h = server().await;
    let crds = data_crds();
    assert!(crds.len() >= 3);
    for crd in &crds {
        register(&h, crd).await;
    }
    let all = samples();
    for s in &all {
        let c = created(&h, &collection(&crds, s), s).await;
        assert_eq!(c["metadata"]["name"], s["metadata"]["name"]);
    }
    // Defaults from deep inside the schemas.
    let w = get(&h, &format!("{}/storefront", collection(&crds, &all[0])))
        .await
        .json();
    let web = &w["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(web["terminationMessagePolicy"], "File");
    assert_eq!(web["ports"][0]["protocol"], "TCP");
    assert_eq!(web["readinessProbe"]["timeoutSeconds"], 1);
    assert_eq!(
        w["spec"]["template"]["spec"]["volumes"][0]["configMap"]["defaultMode"],
        420
    );
    assert_eq!(
        w["spec"]["autoscaling"]["metrics"][1]["external"]["target"]["averageValue"],
        "30"
    );
    let route = get(&h, &format!("{}/storefront", collection(&crds, &all[2])))
        .await
        .json();
    assert_eq!(
        route["spec"]["rules"][1]["matches"],
        json!([{"path": {"type": "PathPrefix", "value": "/"}}])
    );
    assert_eq!(route["spec"]["parentRefs"][0]["sectionName"], "");

    // Invalid objects are refused with the schema's and the rules' causes.
    let mut bad = all[0].clone();
    bad["metadata"]["name"] = json!("bad-workload");
    bad["spec"]["autoscaling"]["minReplicas"] = json!(20);
    bad["spec"]["template"]["spec"]["containers"][0]["securityContext"]["seccompProfile"] =
        json!({"type": "Localhost"});
    bad["spec"]["template"]["spec"]["tolerations"][0]["operator"] = json!("Exists");
    let r = post_json(&h, &collection(&crds, &bad), &bad).await;
    let s = r.status_failure(422, "Invalid");
    assert_eq!(
        causes(&s),
        vec![
            cause(
                "spec.autoscaling",
                "FieldValueInvalid",
                "Invalid value: minReplicas must not exceed maxReplicas"
            ),
            cause(
                "spec.template.spec.containers[0].securityContext.seccompProfile.localhostProfile",
                "FieldValueRequired",
                "Required value: localhostProfile must be set if and only if type is Localhost"
            ),
            cause(
                "spec.template.spec.tolerations[0]",
                "FieldValueInvalid",
                "Invalid value: value must be empty when operator is Exists"
            ),
        ]
    );
    let mut bad = all[1].clone();
    bad["metadata"]["name"] = json!("bad-db");
    bad["spec"]["instances"] = json!(4);
    bad["spec"]["backup"]["destination"]["volume"] = json!({"claimName": "x"});
    let r = post_json(&h, &collection(&crds, &bad), &bad).await;
    let s = r.status_failure(422, "Invalid");
    assert_eq!(
        causes(&s),
        vec![
            cause(
                "spec.backup.destination",
                "FieldValueInvalid",
                "Invalid value: exactly one of s3 and volume must be set"
            ),
            cause(
                "spec.instances",
                "FieldValueInvalid",
                "Invalid value: 4: instances must be odd, got 4"
            ),
        ]
    );
    // Transition rules on update.
    let db_path = format!("{}/orders-db", collection(&crds, &all[1]));
    let r = patch(
        &h,
        &db_path,
        "application/merge-patch+json",
        r#"{"spec": {"engine": "mysql", "storage": {"storageClassName": "slow"}}}"#,
    )
    .await;
    let s = r.status_failure(422, "Invalid");
    assert_eq!(
        causes(&s),
        vec![
            cause(
                "spec.version",
                "FieldValueInvalid",
                "Invalid value: only mysql 8.x is supported"
            ),
            cause(
                "spec.engine",
                "FieldValueInvalid",
                r#"Invalid value: "mysql": engine is immutable"#
            ),
            cause(
                "spec.storage.storageClassName",
                "FieldValueInvalid",
                r#"Invalid value: "slow": storageClassName is immutable"#
            ),
        ]
    );
    let r = patch(
        &h,
        &db_path,
        "application/merge-patch+json",
        r#"{"spec": {"instances": 5, "parameters": {"work_mem": "64MB"}}}"#,
    )
    .await;
    assert_eq!(
        r.status.as_u16(),
        200,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.json()["spec"]["parameters"]["work_mem"], "64MB");
}

/// Validation ratcheting (kube's CRDValidationRatcheting): after the schema tightens, an object
/// that no longer fits can still be updated where its invalid values are left as they are — a
/// label, another field — and a ratcheted rule failure comes back as a warning; changing an
/// invalid value to another invalid one, or into a map-list item that is new, is refused.
#[tokio::test]
async fn validation_ratchets_on_unchanged_values() {
    let h = server().await;
    let loose = json!({"type": "object", "properties": {
        "size": {"type": "integer"}, "mode": {"type": "string"}, "note": {"type": "string"},
        "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                  "items": {"type": "object", "required": ["name"], "properties": {
                      "name": {"type": "string"}, "port": {"type": "integer"}}}}}});
    register(&h, &gizmo_crd(loose.clone())).await;
    let spec = json!({"size": 10, "mode": "fast", "ports": [{"name": "a", "port": 70000}]});
    created(&h, GIZMOS, &gizmo("old", spec)).await;
    // The schema tightens: sizes up to 5, modes from a list, ports in range, and a rule.
    let mut strict = loose;
    strict["properties"]["size"]["maximum"] = json!(5);
    strict["properties"]["mode"]["enum"] = json!(["slow"]);
    strict["properties"]["ports"]["items"]["properties"]["port"]["maximum"] = json!(65535);
    strict["properties"]["size"]["x-kubernetes-validations"] =
        json!([{"rule": "self <= 5", "message": "too big"}]);
    let mut crd = get(&h, &format!("{CRDS}/gizmos.schema.example.com"))
        .await
        .json();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"] = strict;
    let r = put_json(&h, &format!("{CRDS}/gizmos.schema.example.com"), &crd).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.json());
    let path = format!("{GIZMOS}/old");
    // A label and an unrelated field: accepted, the rule's failure a warning.
    let r = patch(
        &h,
        &path,
        "application/merge-patch+json",
        r#"{"metadata":{"labels":{"team":"a"}},"spec":{"note":"hello"}}"#,
    )
    .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.json());
    let warning = r
        .headers
        .get("warning")
        .map(|v| v.to_str().unwrap().to_string());
    assert!(
        warning.as_deref().is_some_and(|w| w.contains("too big")),
        "{warning:?}"
    );
    // The invalid size changed to another invalid size: refused, by the schema and the rule.
    let r = patch(
        &h,
        &path,
        "application/merge-patch+json",
        r#"{"spec":{"size":11}}"#,
    )
    .await;
    let s = r.status_failure(422, "Invalid");
    let message = s["message"].as_str().unwrap();
    assert!(
        message.contains(
            "spec.size: Invalid value: 11: spec.size in body should be less than or equal to 5"
        ) && message.contains("too big"),
        "{message}"
    );
    // A new port item is checked; the unchanged old item is not.
    let r = patch(
        &h,
        &path,
        "application/merge-patch+json",
        r#"{"spec":{"ports":[{"name":"a","port":70000},{"name":"b","port":70001}]}}"#,
    )
    .await;
    let s = r.status_failure(422, "Invalid");
    let message = s["message"].as_str().unwrap();
    assert!(message.contains("spec.ports[1].port"), "{message}");
    assert!(!message.contains("spec.ports[0].port"), "{message}");
    // Items correlate by their keys, not their places: the old item moved behind a new valid
    // one is still unchanged.
    let r = patch(
        &h,
        &path,
        "application/merge-patch+json",
        r#"{"spec":{"ports":[{"name":"c","port":80},{"name":"a","port":70000}]}}"#,
    )
    .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.json());
    // Mode changed to another value outside the enum: refused; fixing size is accepted.
    let r = patch(
        &h,
        &path,
        "application/merge-patch+json",
        r#"{"spec":{"mode":"medium"}}"#,
    )
    .await;
    r.status_failure(422, "Invalid");
    let r = patch(
        &h,
        &path,
        "application/merge-patch+json",
        r#"{"spec":{"size":4}}"#,
    )
    .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.json());
    // A create is never ratcheted.
    let r = post_json(&h, GIZMOS, &gizmo("new", json!({"size": 10}))).await;
    r.status_failure(422, "Invalid");
}

/// A server-side apply of a custom resource with an explicit `null` for a typed field is
/// refused as kube refuses it (the applied object is validated as merged), where a create or
/// an update drops the null; nullable fields and fields with a default take it.
#[tokio::test]
async fn an_apply_with_null_for_a_typed_field_is_refused() {
    let h = server().await;
    register(
        &h,
        &gizmo_crd(json!({"type": "object", "properties": {
            "a": {"type": "string"},
            "keep": {"type": "string", "nullable": true},
            "dflt": {"type": "string", "default": "x"}}})),
    )
    .await;
    let apply = |name: &str, spec: Value| {
        let body = json!({"apiVersion": "schema.example.com/v1", "kind": "Gizmo",
                          "metadata": {"name": name}, "spec": spec})
        .to_string();
        let url = format!("{GIZMOS}/{name}?fieldManager=m");
        let h = &h;
        async move { patch(h, &url, "application/apply-patch+yaml", &body).await }
    };
    let r = apply("n", Value::Null).await;
    let s = r.status_failure(422, "Invalid");
    assert_eq!(
        s["message"],
        "Gizmo.schema.example.com \"n\" is invalid: spec: Invalid value: \"null\": spec in body must be of type object: \"null\""
    );
    let r = apply("m", json!({"a": null})).await;
    let s = r.status_failure(422, "Invalid");
    assert!(
        s["message"].as_str().unwrap().contains(
            "spec.a: Invalid value: \"null\": spec.a in body must be of type string: \"null\""
        ),
        "{s}"
    );
    let r = apply("ok", json!({"keep": null, "dflt": null, "a": "v"})).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    // A create drops the same null.
    let r = post_json(&h, GIZMOS, &gizmo("c", json!({"a": null}))).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
}

/// Strict field validation reads preserved fields too: a key given twice inside
/// `x-kubernetes-preserve-unknown-fields` is a duplicate field, as kube's strict decoder reports.
#[tokio::test]
async fn duplicates_inside_preserved_fields_fail_strict_validation() {
    let h = server().await;
    register(
        &h,
        &gizmo_crd(json!({"type": "object", "properties": {
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}})),
    )
    .await;
    let body = r#"{"apiVersion":"schema.example.com/v1","kind":"Gizmo","metadata":{"name":"d"},
        "spec":{"free":{"a":1,"a":2}}}"#;
    let r = send_with(
        &h,
        http::Method::POST,
        &format!("{GIZMOS}?fieldValidation=Strict"),
        &[("content-type", "application/json")],
        body.to_string(),
    )
    .await;
    let s = r.status_failure(400, "BadRequest");
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .contains(r#"strict decoding error: duplicate field "spec.free.a""#),
        "{s}"
    );
}
