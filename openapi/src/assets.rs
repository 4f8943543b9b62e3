//! The embedded schema assets and how they are made (used by `src/bin/generate.rs`).
//!
//! Two zlib-compressed JSON files, both written by the generator from one set of definitions:
//!
//! * `assets/structural.json.z`: the kinds and, for each definition, only what pruning needs
//!   (types, properties, items, maps, references, the structural `x-kubernetes-*` markers).
//!   Small; decoded on the first write that needs a schema.
//! * `assets/kubernetes.json.z`: the kinds and the full definitions (descriptions, formats,
//!   `x-kubernetes-group-version-kind`, patch extensions). Decoded when an OpenAPI document is
//!   first served.
//!
//! Both have the shape `{"kubernetes": "1.35", "kinds": [[group, version, kind, definition],
//! ...], "definitions": {name: schema}}`.
//!
//! A third, `assets/structural.packed.z`, is what the schema builder makes of the structural
//! asset, packed (see the `packed` module): written by `pack-schemas`, not by the generator.

use std::collections::{BTreeMap, HashSet};

use kubox_apimachinery::patch_meta::BuiltinPatchMeta;
use kubox_apimachinery::strategic::{FieldStrategy, PatchMeta};
use serde_json::{json, Map, Value};

/// `ObjectMeta`'s definition name.
pub const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

/// Decompress and parse one asset.
pub fn unpack(packed: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(&inflate(packed)?).map_err(|e| e.to_string())
}

/// Decompress one asset.
pub fn inflate(packed: &[u8]) -> Result<Vec<u8>, String> {
    miniz_oxide::inflate::decompress_to_vec_zlib(packed).map_err(|e| format!("inflate: {e:?}"))
}

/// Serialize and compress one asset.
pub fn pack(doc: &Value) -> Vec<u8> {
    let text = doc.to_string();
    miniz_oxide::deflate::compress_to_vec_zlib(text.as_bytes(), 10)
}

/// An asset's `kinds` array as (group, version, kind, definition).
pub fn kind_list(kinds: &Value) -> Vec<(String, String, String, String)> {
    kinds
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|k| {
                    let s = |i: usize| k.get(i).and_then(Value::as_str).map(str::to_string);
                    Some((s(0)?, s(1)?, s(2)?, s(3)?))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Schema keys pruning and shape checks look at.
const STRUCTURAL_KEYS: &[&str] = &[
    "type",
    "format",
    "properties",
    "items",
    "additionalProperties",
    "$ref",
    "allOf",
    "oneOf",
    "anyOf",
    "x-kubernetes-int-or-string",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "default",
];

/// The structural asset of a full one: every schema reduced to [`STRUCTURAL_KEYS`].
pub fn structural_only(full: &Value) -> Value {
    fn schema(s: &Value) -> Value {
        let Some(m) = s.as_object() else {
            return s.clone();
        };
        let mut out = Map::new();
        for (k, v) in m {
            if !STRUCTURAL_KEYS.contains(&k.as_str()) {
                continue;
            }
            let v = match k.as_str() {
                "properties" => Value::Object(
                    v.as_object()
                        .map(|p| p.iter().map(|(n, x)| (n.clone(), schema(x))).collect())
                        .unwrap_or_default(),
                ),
                "items" | "additionalProperties" => schema(v),
                "allOf" | "oneOf" | "anyOf" => Value::Array(
                    v.as_array()
                        .map(|a| a.iter().map(schema).collect())
                        .unwrap_or_default(),
                ),
                _ => v.clone(),
            };
            out.insert(k.clone(), v);
        }
        Value::Object(out)
    }
    let defs: Map<String, Value> = full["definitions"]
        .as_object()
        .map(|d| d.iter().map(|(n, s)| (n.clone(), schema(s))).collect())
        .unwrap_or_default();
    json!({"kubernetes": full["kubernetes"], "kinds": full["kinds"], "definitions": defs})
}

/// Mark `default: {}` on the properties that hold a struct by value (`fields`: definition and
/// JSON field of every Go field of a named type that is neither a pointer, a slice nor a map),
/// as kube's OpenAPI marks them: such a field is present, as `{}`, in the Go zero value of its
/// parent. A named type is a struct when its schema is an object with properties (types that
/// encode as strings or numbers, such as `Time` and `Quantity`, and maps are not).
pub fn annotate_value_structs(defs: &mut Map<String, Value>, fields: &[(String, String)]) {
    let is_struct = |defs: &Map<String, Value>, s: &Value| -> bool {
        let target = s
            .get("$ref")
            .or_else(|| {
                s.get("allOf")
                    .and_then(|a| a.get(0))
                    .and_then(|x| x.get("$ref"))
            })
            .and_then(Value::as_str)
            .and_then(|r| r.rsplit('/').next())
            .and_then(|n| defs.get(n));
        target.is_some_and(|d| {
            d.get("properties")
                .and_then(Value::as_object)
                .is_some_and(|p| !p.is_empty())
                && d.get("type")
                    .and_then(Value::as_str)
                    .is_none_or(|t| t == "object")
        })
    };
    let mut marked = Vec::new();
    for (def, field) in fields {
        if let Some(prop) = defs.get(def).and_then(|d| d["properties"].get(field)) {
            if is_struct(defs, prop) {
                marked.push((def.clone(), field.clone()));
            }
        }
    }
    for (def, field) in marked {
        if let Some(prop) = defs
            .get_mut(&def)
            .and_then(|d| d.get_mut("properties"))
            .and_then(|p| p.get_mut(&field))
            .and_then(Value::as_object_mut)
        {
            prop.insert("default".to_string(), json!({}));
        }
    }
}

/// The structural asset's marker of a field that is `null` in its parent's Go zero value (a
/// pointer, slice or map without `omitempty`, such as a PodSpec's `containers`): not part of
/// kube's OpenAPI, so kept out of the published definitions.
pub const NULL_IN_ZERO_VALUE: &str = "x-kubox-null-in-zero-value";

/// The structural asset's marker of a field a Go round trip drops when empty (`omitempty` on a
/// slice, a map, or a basic scalar: `[]`, `{}`, `""`, `false`, `0`).
pub const OMIT_EMPTY: &str = "x-kubox-omit-empty";

/// The structural asset's list of a definition's JSON fields in the order the Go struct declares
/// them, which is the order Go's encoder writes them in (kube-apiserver's answers).
pub const GO_ORDER: &str = "x-kubox-go-order";

/// Record each definition's Go field order ([`GO_ORDER`]) in a structural asset.
pub fn annotate_go_order(structural: &mut Value, orders: &[(String, Vec<String>)]) {
    for (def, order) in orders {
        if let Some(d) = structural["definitions"]
            .get_mut(def)
            .and_then(Value::as_object_mut)
        {
            d.insert(GO_ORDER.to_string(), json!(order));
        }
    }
}

/// The structural asset's marker of a scalar field a Go struct holds by value without
/// `omitempty`: its zero value, which Go writes in the zero value of the struct
/// (`{"replicas": 0}` for a ReplicaSet's status).
pub const ZERO_SCALAR: &str = "x-kubox-zero-scalar";

/// Mark [`ZERO_SCALAR`] with the zero value on the given (definition, JSON field) properties.
pub fn annotate_zero_scalars(structural: &mut Value, fields: &[(String, String, Value)]) {
    for (def, field, zero) in fields {
        if let Some(prop) = structural["definitions"]
            .get_mut(def)
            .and_then(|d| d.get_mut("properties"))
            .and_then(|p| p.get_mut(field))
            .and_then(Value::as_object_mut)
        {
            prop.insert(ZERO_SCALAR.to_string(), zero.clone());
        }
    }
}

/// Mark `marker: true` on the given (definition, JSON field) properties of a structural asset.
pub fn annotate_marker(structural: &mut Value, marker: &str, fields: &[(String, String)]) {
    for (def, field) in fields {
        if let Some(prop) = structural["definitions"]
            .get_mut(def)
            .and_then(|d| d.get_mut("properties"))
            .and_then(|p| p.get_mut(field))
            .and_then(Value::as_object_mut)
        {
            prop.insert(marker.to_string(), json!(true));
        }
    }
}

/// Lists whose `x-kubernetes-list-map-keys` are more than the patch merge key, and lists that
/// are atomic for server-side apply although strategic merge patch merges them (from the
/// `+listMapKey` / `+listType` markers of the Kubernetes 1.35 types).
fn list_map_keys(definition: &str, field: &str, merge_key: &str) -> Option<Vec<String>> {
    let keys: &[&str] = match (definition, field) {
        ("io.k8s.api.core.v1.Container" | "io.k8s.api.core.v1.EphemeralContainer", "ports") => {
            &["containerPort", "protocol"]
        }
        ("io.k8s.api.core.v1.ServiceSpec", "ports") => &["port", "protocol"],
        ("io.k8s.api.core.v1.PodSpec", "topologySpreadConstraints") => {
            &["topologyKey", "whenUnsatisfiable"]
        }
        ("io.k8s.api.core.v1.PodSpec", "imagePullSecrets") => return None,
        _ => &[merge_key],
    };
    Some(keys.iter().map(|k| k.to_string()).collect())
}

/// Add `x-kubernetes-patch-strategy`, `x-kubernetes-patch-merge-key`, `x-kubernetes-list-type`
/// and `x-kubernetes-list-map-keys` to the definitions, from kubox's strategic-merge-patch table
/// (k8s-openapi does not carry them).
pub fn annotate_patch_strategies(
    defs: &mut Map<String, Value>,
    kinds: &[(String, String, String, String)],
) {
    // (definition, property) → strategy, found by walking each kind's fields.
    let mut found: BTreeMap<(String, String), FieldStrategy> = BTreeMap::new();
    for (group, _, kind, def) in kinds {
        let meta = BuiltinPatchMeta::for_kind(group, kind);
        if meta.is_known_kind() {
            let mut visited = HashSet::new();
            walk_strategies(defs, def, &mut Vec::new(), &meta, &mut found, &mut visited);
        }
    }
    // ObjectMeta's own (finalizers, ownerReferences), wherever it is used.
    let meta = BuiltinPatchMeta::for_kind("", "ConfigMap");
    let mut visited = HashSet::new();
    let mut path = vec!["metadata".to_string()];
    walk_strategies(
        defs,
        OBJECT_META,
        &mut path,
        &meta,
        &mut found,
        &mut visited,
    );
    for ((def, prop), strategy) in found {
        let Some(p) = defs
            .get_mut(&def)
            .and_then(|d| d.get_mut("properties"))
            .and_then(|p| p.get_mut(&prop))
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        let (name, key) = match &strategy {
            FieldStrategy::Replace => continue,
            FieldStrategy::Merge { key } => ("merge", key.clone()),
            FieldStrategy::RetainKeys => ("retainKeys", None),
            FieldStrategy::MergeRetainKeys { key } => ("merge,retainKeys", key.clone()),
        };
        p.insert("x-kubernetes-patch-strategy".into(), json!(name));
        let is_list = p.get("type").and_then(Value::as_str) == Some("array");
        match key {
            Some(k) => {
                p.insert("x-kubernetes-patch-merge-key".into(), json!(k));
                match list_map_keys(&def, &prop, &k) {
                    Some(keys) if is_list => {
                        p.insert("x-kubernetes-list-type".into(), json!("map"));
                        p.insert("x-kubernetes-list-map-keys".into(), json!(keys));
                    }
                    None if is_list => {
                        p.insert("x-kubernetes-list-type".into(), json!("atomic"));
                    }
                    _ => {}
                }
            }
            None if is_list => {
                p.insert("x-kubernetes-list-type".into(), json!("set"));
            }
            None => {}
        }
    }
}

/// The definition a property schema points to (`$ref`, `allOf: [{$ref}]`, or its items').
fn referenced(prop: &Value) -> Option<String> {
    let direct = |s: &Value| -> Option<String> {
        if let Some(r) = s.get("$ref").and_then(Value::as_str) {
            return r.strip_prefix("#/components/schemas/").map(str::to_string);
        }
        match s.get("allOf").and_then(Value::as_array).map(Vec::as_slice) {
            Some([only]) => only
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
                .map(str::to_string),
            _ => None,
        }
    };
    direct(prop).or_else(|| prop.get("items").and_then(direct))
}

/// The deepest field the strategic-merge-patch table tags is 7 levels down
/// (`spec.jobTemplate.spec.template.spec.containers.env` of a CronJob).
const MAX_DEPTH: usize = 7;

fn walk_strategies(
    defs: &Map<String, Value>,
    def: &str,
    path: &mut Vec<String>,
    meta: &BuiltinPatchMeta,
    found: &mut BTreeMap<(String, String), FieldStrategy>,
    visited: &mut HashSet<(String, Vec<String>)>,
) {
    if path.len() >= MAX_DEPTH || !visited.insert((def.to_string(), path.clone())) {
        return;
    }
    let Some(props) = defs
        .get(def)
        .and_then(|d| d.get("properties"))
        .and_then(Value::as_object)
    else {
        return;
    };
    for (name, prop) in props {
        path.push(name.clone());
        let segs: Vec<&str> = path.iter().map(String::as_str).collect();
        let strategy = meta.lookup(&segs);
        if strategy != FieldStrategy::Replace {
            found.insert((def.to_string(), name.clone()), strategy);
        }
        if let Some(child) = referenced(prop) {
            walk_strategies(defs, &child, path, meta, found, visited);
        }
        path.pop();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn full() -> Value {
        unpack(include_bytes!("../assets/kubernetes.json.z")).unwrap()
    }

    #[test]
    fn structural_asset_matches_the_full_one() {
        let mut structural = unpack(include_bytes!("../assets/structural.json.z")).unwrap();
        // The zero-value markers are the structural asset's own (from the Go sources).
        let mut marked = 0;
        let mut ordered = 0;
        for def in structural["definitions"]
            .as_object_mut()
            .unwrap()
            .values_mut()
        {
            ordered += usize::from(
                def.as_object_mut()
                    .and_then(|d| d.remove(GO_ORDER))
                    .is_some(),
            );
            if let Some(props) = def.get_mut("properties").and_then(Value::as_object_mut) {
                for p in props.values_mut() {
                    if let Some(p) = p.as_object_mut() {
                        marked += usize::from(p.remove(NULL_IN_ZERO_VALUE).is_some());
                        p.remove(OMIT_EMPTY);
                        p.remove(ZERO_SCALAR);
                    }
                }
            }
        }
        assert!(marked > 0, "no {NULL_IN_ZERO_VALUE} markers");
        assert!(ordered > 600, "{ordered} definitions with a {GO_ORDER}");
        assert_eq!(
            structural,
            structural_only(&full()),
            "assets are stale: run `KUBE_GO_SOURCES=… cargo run -p kubox-openapi --features generate --bin generate-schemas`"
        );
    }

    #[test]
    fn patch_extensions_match_the_patch_table() {
        let doc = full();
        let mut defs = doc["definitions"].as_object().unwrap().clone();
        let before = defs.clone();
        annotate_patch_strategies(&mut defs, &kind_list(&doc["kinds"]));
        assert!(
            defs == before,
            "assets are stale: run `cargo run -p kubox-openapi --features generate --bin generate-schemas`"
        );
    }
}
