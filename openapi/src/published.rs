//! The published schema of a custom resource version: what `/openapi/v3` components and
//! `/openapi/v2` definitions say about a CRD's kind and its list kind, as kube-apiserver's
//! apiextensions OpenAPI builder publishes them.
//!
//! * Names are the group reversed, then version and kind: `stable.example.com/v1 CronTab` is
//!   `com.example.stable.v1.CronTab` (and `...CronTabList`).
//! * The kind's schema is the CRD version's `openAPIV3Schema` with `apiVersion` and `kind`
//!   (TypeMeta's descriptions), `metadata` referencing `ObjectMeta`, and
//!   `x-kubernetes-group-version-kind`; nodes marked `x-kubernetes-embedded-resource` get the
//!   same three properties. Without a schema the kind is a bare `object`.
//! * The list kind has `apiVersion`, `kind`, `metadata` (`ListMeta`) and the required `items`.
//! * The v2 form drops what Swagger 2.0 clients cannot read: `allOf`/`oneOf`/`anyOf`/`not`;
//!   `nullable` fields lose their type and children (and are no longer required); nodes that
//!   preserve unknown fields lose their children (objects also their type); arrays without
//!   items lose their type. A root that preserves unknown fields is published as a bare
//!   `object`, so that v2 clients do not refuse unknown fields.
//!
//! Built once per registration of a CRD version; the documents copy the parts they need.

use serde_json::{json, Map, Value};

use crate::assets::OBJECT_META;
use crate::builtin::{to_v2, Schemas};

const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";

/// What a CRD version contributes to the published OpenAPI documents.
#[derive(Debug, Clone)]
pub struct PublishedSchema {
    definition: String,
    list_definition: String,
    v3: Value,
    v3_list: Value,
    v2: Value,
    v2_list: Value,
    hash: u64,
}

/// The OpenAPI name of a kind: the group reversed, then version and kind
/// (`com.example.stable.v1.CronTab`).
pub fn definition_name(group: &str, version: &str, kind: &str) -> String {
    let mut parts: Vec<&str> = group.split('.').filter(|p| !p.is_empty()).collect();
    parts.reverse();
    parts.push(version);
    parts.push(kind);
    parts.join(".")
}

/// Names and shape of one CRD version, as the builder needs them.
#[derive(Debug, Clone, Copy)]
pub struct CrdVersion<'a> {
    /// `spec.group`.
    pub group: &'a str,
    /// The version's name.
    pub version: &'a str,
    /// `spec.names.kind`.
    pub kind: &'a str,
    /// `spec.names.listKind`.
    pub list_kind: &'a str,
    /// `spec.names.plural`.
    pub plural: &'a str,
    /// The version's `schema.openAPIV3Schema`, if any.
    pub schema: Option<&'a Value>,
    /// `spec.preserveUnknownFields` (legacy).
    pub preserve_unknown_fields: bool,
}

fn v3_ref(name: &str) -> String {
    format!("#/components/schemas/{name}")
}

/// A property of a built-in definition (TypeMeta's `apiVersion`/`kind`, a kind's `metadata`),
/// from the embedded assets; `fallback` if the assets do not have it.
fn builtin_property(definition: &str, property: &str, fallback: Value) -> Value {
    Schemas::builtin()
        .definition(definition)
        .and_then(|d| d.get("properties"))
        .and_then(|p| p.get(property))
        .cloned()
        .unwrap_or(fallback)
}

fn type_meta(property: &str) -> Value {
    builtin_property(
        "io.k8s.api.core.v1.ConfigMap",
        property,
        json!({"type": "string"}),
    )
}

/// `metadata` of a kind (`ObjectMeta`) or of a list (`ListMeta`): a reference with the
/// description built-in kinds carry.
fn meta_property(list: bool) -> Value {
    if list {
        return json!({
            "allOf": [{"$ref": v3_ref(LIST_META)}],
            "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
        });
    }
    let description = builtin_property("io.k8s.api.core.v1.ConfigMap", "metadata", json!({}))
        .get("description")
        .cloned();
    let mut m = Map::new();
    m.insert("allOf".into(), json!([{"$ref": v3_ref(OBJECT_META)}]));
    if let Some(d) = description {
        m.insert("description".into(), d);
    }
    Value::Object(m)
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!([{"group": group, "version": version, "kind": kind}])
}

fn is_true(s: &Map<String, Value>, key: &str) -> bool {
    s.get(key).and_then(Value::as_bool) == Some(true)
}

/// Keys of a CRD schema node that are not part of the published form (kube-apiserver publishes
/// its structural schema, which has no place for them).
const UNPUBLISHED: &[&str] = &["example", "externalDocs", "id", "$schema", "definitions"];

/// The published form of one schema node (v3): unpublished keys dropped, embedded resources
/// given `apiVersion`, `kind` and `metadata`.
fn publish_node(s: &Value, v2: bool) -> Value {
    let Some(m) = s.as_object() else {
        return s.clone();
    };
    let mut out = Map::new();
    for (k, x) in m {
        if UNPUBLISHED.contains(&k.as_str()) {
            continue;
        }
        let x = match k.as_str() {
            "properties" => Value::Object(
                x.as_object()
                    .map(|p| {
                        p.iter()
                            .map(|(n, c)| (n.clone(), publish_node(c, v2)))
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
            "items" | "additionalProperties" if x.is_object() => publish_node(x, v2),
            _ => x.clone(),
        };
        out.insert(k.clone(), x);
    }
    let skip_embedded = v2 && is_true(&out, "x-kubernetes-preserve-unknown-fields");
    if is_true(&out, "x-kubernetes-embedded-resource") && !skip_embedded {
        set_type_meta(&mut out);
        let required = out.entry("required").or_insert_with(|| json!([]));
        if let Some(r) = required.as_array_mut() {
            for k in ["kind", "apiVersion"] {
                if !r.iter().any(|x| x == k) {
                    r.push(json!(k));
                }
            }
        }
    }
    Value::Object(out)
}

fn set_type_meta(s: &mut Map<String, Value>) {
    let props = s.entry("properties").or_insert_with(|| json!({}));
    if let Some(p) = props.as_object_mut() {
        p.insert("apiVersion".into(), type_meta("apiVersion"));
        p.insert("kind".into(), type_meta("kind"));
        p.insert("metadata".into(), meta_property(false));
    }
}

/// Swagger 2.0 restrictions (see the module docs), applied to a published v3 node.
fn to_v2_structural(s: &mut Value) {
    let Some(m) = s.as_object_mut() else {
        return;
    };
    for k in ["allOf", "oneOf", "anyOf", "not"] {
        m.remove(k);
    }
    if is_true(m, "nullable") {
        m.remove("type");
        m.remove("nullable");
        m.remove("items");
        m.remove("properties");
    }
    let preserve = is_true(m, "x-kubernetes-preserve-unknown-fields");
    if preserve {
        m.remove("items");
        m.remove("properties");
    }
    if m.get("type").and_then(Value::as_str) == Some("array") && !m.contains_key("items") {
        m.remove("type");
    }
    if preserve && m.get("type").and_then(Value::as_str) == Some("object") {
        m.remove("type");
    }
    let nullable_children: Vec<String> = m
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| {
            p.iter()
                .filter(|(_, c)| c.get("nullable").and_then(Value::as_bool) == Some(true))
                .map(|(n, _)| n.clone())
                .collect()
        })
        .unwrap_or_default();
    let nullable_values = m
        .get("additionalProperties")
        .and_then(|a| a.get("nullable"))
        .and_then(Value::as_bool)
        == Some(true);
    if nullable_values {
        m.remove("required");
    } else if !nullable_children.is_empty() {
        if let Some(r) = m.get_mut("required").and_then(Value::as_array_mut) {
            r.retain(|x| !nullable_children.iter().any(|n| x == n.as_str()));
            if r.is_empty() {
                m.remove("required");
            }
        }
    }
    if let Some(p) = m.get_mut("properties").and_then(Value::as_object_mut) {
        p.values_mut().for_each(to_v2_structural);
    }
    if let Some(i) = m.get_mut("items") {
        to_v2_structural(i);
    }
    if let Some(a) = m.get_mut("additionalProperties") {
        to_v2_structural(a);
    }
}

fn kind_schema(v: &CrdVersion<'_>, v2: bool) -> Value {
    let bare = match v.schema.and_then(Value::as_object) {
        None => true,
        Some(s) => {
            v2 && (is_true(s, "x-kubernetes-preserve-unknown-fields") || v.preserve_unknown_fields)
        }
    };
    let mut out = if bare {
        json!({"type": "object"})
    } else {
        let mut raw = v.schema.cloned().unwrap_or_default();
        if v2 {
            to_v2_structural(&mut raw);
        }
        let mut s = publish_node(&raw, v2);
        if let Some(m) = s.as_object_mut() {
            set_type_meta(m);
        }
        s
    };
    if let Some(m) = out.as_object_mut() {
        m.insert(
            "x-kubernetes-group-version-kind".into(),
            gvk(v.group, v.version, v.kind),
        );
    }
    out
}

fn list_schema(v: &CrdVersion<'_>, definition: &str) -> Value {
    json!({
        "description": format!("{} is a list of {}", v.list_kind, v.kind),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": type_meta("apiVersion"),
            "kind": type_meta("kind"),
            "metadata": meta_property(true),
            "items": {
                "description": format!(
                    "List of {}. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md",
                    v.plural
                ),
                "type": "array",
                "items": {"$ref": v3_ref(definition)},
            },
        },
        "x-kubernetes-group-version-kind": gvk(v.group, v.version, v.list_kind),
    })
}

impl PublishedSchema {
    /// Build the published schemas of one CRD version.
    pub fn new(v: CrdVersion<'_>) -> PublishedSchema {
        let definition = definition_name(v.group, v.version, v.kind);
        let list_definition = definition_name(v.group, v.version, v.list_kind);
        let v3 = kind_schema(&v, false);
        let v3_list = list_schema(&v, &definition);
        let v2 = to_v2(&kind_schema(&v, true));
        let v2_list = to_v2(&v3_list);
        let hash = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (&definition, &list_definition).hash(&mut h);
            v3.to_string().hash(&mut h);
            v3_list.to_string().hash(&mut h);
            v2.to_string().hash(&mut h);
            h.finish()
        };
        PublishedSchema {
            definition,
            list_definition,
            v3,
            v3_list,
            v2,
            v2_list,
            hash,
        }
    }

    /// The kind's definition name (`com.example.stable.v1.CronTab`).
    pub fn definition(&self) -> &str {
        &self.definition
    }

    /// The list kind's definition name.
    pub fn list_definition(&self) -> &str {
        &self.list_definition
    }

    /// The kind's and the list kind's `/openapi/v3` components (`#/components/schemas/` refs).
    pub fn v3_schemas(&self) -> [(&str, &Value); 2] {
        [
            (&self.definition, &self.v3),
            (&self.list_definition, &self.v3_list),
        ]
    }

    /// The kind's and the list kind's `/openapi/v2` definitions (`#/definitions/` refs).
    pub fn v2_definitions(&self) -> [(&str, &Value); 2] {
        [
            (&self.definition, &self.v2),
            (&self.list_definition, &self.v2_list),
        ]
    }

    /// A hash of everything published: documents that include this change when it does.
    pub fn content_hash(&self) -> u64 {
        self.hash
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn crontab(schema: &Value) -> PublishedSchema {
        PublishedSchema::new(CrdVersion {
            group: "stable.example.com",
            version: "v1",
            kind: "CronTab",
            list_kind: "CronTabList",
            plural: "crontabs",
            schema: Some(schema),
            preserve_unknown_fields: false,
        })
    }

    fn schema() -> Value {
        json!({
            "type": "object",
            "description": "A cron tab.",
            "properties": {
                "spec": {
                    "type": "object",
                    "description": "What to run.",
                    "required": ["cronSpec", "note"],
                    "properties": {
                        "cronSpec": {"type": "string", "description": "When to run."},
                        "note": {"type": "string", "nullable": true},
                        "opts": {"anyOf": [{"required": ["a"]}], "type": "object",
                            "properties": {"a": {"type": "string"}}},
                        "raw": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                            "properties": {"k": {"type": "string"}}},
                        "pod": {"type": "object", "x-kubernetes-embedded-resource": true,
                            "properties": {"spec": {"type": "object"}}},
                    },
                    "example": {"cronSpec": "* * * * *"},
                },
            },
        })
    }

    #[test]
    fn names_reverse_the_group() {
        assert_eq!(
            definition_name("stable.example.com", "v1", "CronTab"),
            "com.example.stable.v1.CronTab"
        );
        let p = crontab(&schema());
        assert_eq!(p.definition(), "com.example.stable.v1.CronTab");
        assert_eq!(p.list_definition(), "com.example.stable.v1.CronTabList");
    }

    #[test]
    fn v3_kind_has_type_meta_object_meta_and_gvk() {
        let p = crontab(&schema());
        let [(_, kind), (_, list)] = p.v3_schemas();
        assert_eq!(
            kind["x-kubernetes-group-version-kind"],
            json!([{"group": "stable.example.com", "version": "v1", "kind": "CronTab"}])
        );
        assert_eq!(
            kind["properties"]["metadata"]["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        );
        assert!(kind["properties"]["metadata"]["description"]
            .as_str()
            .unwrap()
            .starts_with("Standard object's metadata."));
        assert!(kind["properties"]["apiVersion"]["description"]
            .as_str()
            .unwrap()
            .starts_with("APIVersion defines the versioned schema"));
        assert_eq!(kind["properties"]["kind"]["type"], "string");
        let spec = &kind["properties"]["spec"];
        assert_eq!(spec["description"], "What to run.");
        assert!(spec.get("example").is_none());
        assert_eq!(spec["properties"]["note"]["nullable"], true);
        assert!(spec["properties"]["opts"].get("anyOf").is_some());
        let pod = &spec["properties"]["pod"];
        assert_eq!(pod["required"], json!(["kind", "apiVersion"]));
        assert!(pod["properties"]["metadata"]["allOf"].is_array());
        assert!(pod["properties"]["spec"].is_object());
        assert_eq!(list["required"], json!(["items"]));
        assert_eq!(
            list["properties"]["items"]["items"]["$ref"],
            "#/components/schemas/com.example.stable.v1.CronTab"
        );
        assert_eq!(
            list["properties"]["metadata"]["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"
        );
        assert_eq!(list["description"], "CronTabList is a list of CronTab");
        assert_eq!(
            list["x-kubernetes-group-version-kind"][0]["kind"],
            "CronTabList"
        );
    }

    #[test]
    fn v2_drops_what_swagger_2_cannot_express() {
        let p = crontab(&schema());
        let [(_, kind), (_, list)] = p.v2_definitions();
        assert_eq!(
            kind["properties"]["metadata"]["$ref"],
            "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        );
        let spec = &kind["properties"]["spec"];
        // nullable: no type, not required any more.
        assert_eq!(spec["properties"]["note"], json!({}));
        assert_eq!(spec["required"], json!(["cronSpec"]));
        assert!(spec["properties"]["opts"].get("anyOf").is_none());
        assert_eq!(spec["properties"]["opts"]["type"], "object");
        // preserve-unknown-fields: no children, no type.
        assert_eq!(
            spec["properties"]["raw"],
            json!({"x-kubernetes-preserve-unknown-fields": true})
        );
        assert_eq!(
            list["properties"]["items"]["items"]["$ref"],
            "#/definitions/com.example.stable.v1.CronTab"
        );
        assert_eq!(
            list["properties"]["metadata"]["$ref"],
            "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"
        );
    }

    #[test]
    fn v2_root_preserving_unknown_fields_is_a_bare_object() {
        let p = crontab(
            &json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true,
            "properties": {"spec": {"type": "object"}}}),
        );
        let [(_, v2), _] = p.v2_definitions();
        assert_eq!(
            v2,
            &json!({"type": "object", "x-kubernetes-group-version-kind":
                [{"group": "stable.example.com", "version": "v1", "kind": "CronTab"}]})
        );
        let [(_, v3), _] = p.v3_schemas();
        assert!(v3["properties"]["spec"].is_object());
    }

    #[test]
    fn content_hash_follows_the_schema() {
        let a = crontab(&schema());
        let mut changed = schema();
        changed["properties"]["spec"]["properties"]["cronSpec"]["description"] = json!("Other.");
        let b = crontab(&changed);
        assert_eq!(a.content_hash(), crontab(&schema()).content_hash());
        assert_ne!(a.content_hash(), b.content_hash());
    }
}
