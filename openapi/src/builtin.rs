//! The schemas of the built-in kinds, from `assets/kubernetes.json.z`.
//!
//! The asset is written by `src/bin/generate.rs` from k8s-openapi's schemars implementations; it
//! is embedded in the binary and decoded the first time anything asks for a schema (about
//! 190 KB compressed, 1 MB of JSON, a few milliseconds), so server start-up does not pay for it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

use kubox_apimachinery::patch_meta::BuiltinPatchMeta;
use kubox_apimachinery::strategic::{FieldStrategy, PatchMeta};
use serde_json::{json, Map, Value};

use crate::structural::{Builder, Structural};

const ASSET: &[u8] = include_bytes!("../assets/kubernetes.json.z");

/// Go types whose `UnmarshalJSON` keeps any JSON as is: never pruned or reported inside.
const OPAQUE: &[&str] = &[
    "io.k8s.apimachinery.pkg.runtime.RawExtension",
    "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON",
];

/// Go types whose `UnmarshalJSON` decodes their content non-strictly: unknown fields inside are
/// dropped without a strict-decoding error.
const SILENT: &[&str] = &[
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrArray",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrBool",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrStringArray",
];

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

/// One built-in kind.
#[derive(Debug)]
struct Kind {
    definition: String,
    schema: Structural,
}

/// The schemas of every built-in kind kubox serves (Kubernetes 1.35), built once per process.
#[derive(Debug)]
pub struct Schemas {
    kinds: HashMap<(String, String, String), Kind>,
    /// OpenAPI v3 definitions with `#/components/schemas/` references, patch extensions added.
    definitions: Map<String, Value>,
    pub(crate) arena: Arc<crate::structural::Arena>,
    components: Mutex<HashMap<(String, String), Arc<Value>>>,
    v2: OnceLock<Arc<Value>>,
}

static BUILTIN: OnceLock<Schemas> = OnceLock::new();

impl Schemas {
    /// The built-in schemas, decoded on first use. Should the embedded asset not decode (a
    /// build problem the tests catch), this is empty and nothing is pruned.
    pub fn builtin() -> &'static Schemas {
        BUILTIN.get_or_init(|| Schemas::load().unwrap_or_else(|_| Schemas::empty()))
    }

    /// Decode the asset now (e.g. on a background thread at start-up) so that the first
    /// request does not wait for it.
    pub fn warm_up() {
        let _ = Schemas::builtin();
    }

    fn empty() -> Schemas {
        Schemas {
            kinds: HashMap::new(),
            definitions: Map::new(),
            arena: Arc::default(),
            components: Mutex::default(),
            v2: OnceLock::new(),
        }
    }

    fn load() -> Result<Schemas, String> {
        let t0 = std::time::Instant::now();
        let text = miniz_oxide::inflate::decompress_to_vec_zlib(ASSET)
            .map_err(|e| format!("inflate: {e:?}"))?;
        eprintln!("inflated {:?}", t0.elapsed());
        let mut doc: Value = serde_json::from_slice(&text).map_err(|e| e.to_string())?;
        let mut definitions = match doc.get_mut("definitions").map(Value::take) {
            Some(Value::Object(m)) => m,
            _ => return Err("no definitions".into()),
        };
        let list: Vec<(String, String, String, String)> = doc["kinds"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|k| {
                        let s = |i: usize| k.get(i).and_then(Value::as_str).map(str::to_string);
                        Some((s(0)?, s(1)?, s(2)?, s(3)?))
                    })
                    .collect()
            })
            .unwrap_or_default();
        eprintln!("parsed {:?}", t0.elapsed());
        annotate_patch_strategies(&mut definitions, &list);
        eprintln!("annotated {:?}", t0.elapsed());
        let mut b = Builder::new(&definitions, OPAQUE, SILENT);
        let meta = b.definition(OBJECT_META);
        let roots: Vec<_> = list
            .iter()
            .map(|(g, v, k, def)| {
                (
                    (g.clone(), v.clone(), k.clone()),
                    def.clone(),
                    b.definition(def),
                )
            })
            .collect();
        let mut arena = b.finish();
        arena.object_meta = Some(meta);
        let arena = Arc::new(arena);
        let kinds = roots
            .into_iter()
            .map(|(gvk, definition, root)| {
                let schema = Structural {
                    arena: arena.clone(),
                    root,
                };
                (gvk, Kind { definition, schema })
            })
            .collect();
        Ok(Schemas {
            kinds,
            definitions,
            arena,
            components: Mutex::default(),
            v2: OnceLock::new(),
        })
    }

    /// No schema at all (the asset did not decode)?
    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }

    /// The structural schema of a built-in kind (`("apps", "v1", "Deployment")`).
    pub fn for_kind(&self, group: &str, version: &str, kind: &str) -> Option<&Structural> {
        self.kinds
            .get(&(group.to_string(), version.to_string(), kind.to_string()))
            .map(|k| &k.schema)
    }

    /// The OpenAPI definition name of a built-in kind (`io.k8s.api.apps.v1.Deployment`).
    pub fn definition_name(&self, group: &str, version: &str, kind: &str) -> Option<&str> {
        self.kinds
            .get(&(group.to_string(), version.to_string(), kind.to_string()))
            .map(|k| k.definition.as_str())
    }

    /// Every (group, version, kind) with a schema.
    pub fn kinds(&self) -> impl Iterator<Item = (&str, &str, &str)> {
        self.kinds
            .keys()
            .map(|(g, v, k)| (g.as_str(), v.as_str(), k.as_str()))
    }

    /// One OpenAPI v3 definition (`#/components/schemas/` references), if known.
    pub fn definition(&self, name: &str) -> Option<&Value> {
        self.definitions.get(name)
    }

    /// `components` of the `/openapi/v3/{api|apis/group}/{version}` document: the
    /// definitions of the group version's kinds and everything they reference. Computed once
    /// per group version.
    pub fn v3_components(&self, group: &str, version: &str) -> Arc<Value> {
        let key = (group.to_string(), version.to_string());
        if let Ok(cache) = self.components.lock() {
            if let Some(c) = cache.get(&key) {
                return c.clone();
            }
        }
        let roots: Vec<&str> = self
            .kinds
            .iter()
            .filter(|((g, v, _), _)| g == group && v == version)
            .map(|(_, k)| k.definition.as_str())
            .collect();
        let mut schemas = Map::new();
        for name in self.closure(&roots) {
            if let Some(d) = self.definitions.get(&name) {
                schemas.insert(name, d.clone());
            }
        }
        let c = Arc::new(json!({"schemas": schemas}));
        if let Ok(mut cache) = self.components.lock() {
            cache.insert(key, c.clone());
        }
        c
    }

    /// `definitions` of the `/openapi/v2` document: every built-in definition, with
    /// `#/definitions/` references (a reference with a description is written as Swagger 2.0
    /// does, `$ref` beside `description`).
    pub fn v2_definitions(&self) -> Arc<Value> {
        self.v2
            .get_or_init(|| {
                let mut defs = Map::new();
                for (name, d) in &self.definitions {
                    defs.insert(name.clone(), to_v2(d));
                }
                Arc::new(Value::Object(defs))
            })
            .clone()
    }

    /// The names of the definitions reachable from `roots`, sorted.
    fn closure(&self, roots: &[&str]) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<String> = roots.iter().map(|s| s.to_string()).collect();
        while let Some(name) = todo.pop() {
            if !seen.insert(name.clone()) {
                continue;
            }
            if let Some(d) = self.definitions.get(&name) {
                collect_refs(d, &mut todo);
            }
        }
        seen
    }
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "$ref" {
                    if let Some(name) = x
                        .as_str()
                        .and_then(|r| r.strip_prefix("#/components/schemas/"))
                    {
                        out.push(name.to_string());
                    }
                } else {
                    collect_refs(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

/// A v3 schema in Swagger 2.0 form: `#/definitions/` references, `allOf: [{$ref}]` wrappers
/// unwrapped.
fn to_v2(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, x) in m {
                if k == "$ref" {
                    let r = x
                        .as_str()
                        .unwrap_or_default()
                        .replace("#/components/schemas/", "#/definitions/");
                    out.insert(k.clone(), Value::String(r));
                } else if k == "allOf" {
                    match x.as_array().map(Vec::as_slice) {
                        Some([only]) if only.get("$ref").is_some() => {
                            if let Value::Object(inner) = to_v2(only) {
                                out.extend(inner);
                            }
                        }
                        _ => {
                            out.insert(k.clone(), to_v2(x));
                        }
                    }
                } else {
                    out.insert(k.clone(), to_v2(x));
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(to_v2).collect()),
        other => other.clone(),
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
fn annotate_patch_strategies(
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
    use crate::prune::prune;

    #[test]
    fn asset_decodes() {
        let s = Schemas::builtin();
        assert!(!s.is_empty());
        assert!(s.kinds().count() >= 90);
        assert_eq!(
            s.definition_name("apps", "v1", "Deployment"),
            Some("io.k8s.api.apps.v1.Deployment")
        );
        assert!(s.for_kind("", "v1", "Pod").is_some());
        assert!(s.for_kind("example.com", "v1", "Widget").is_none());
    }

    #[test]
    fn every_served_kind_has_a_schema() {
        use kubox_apimachinery::builtin::BUILTIN_RESOURCES;
        let s = Schemas::builtin();
        let mut missing = Vec::new();
        for r in BUILTIN_RESOURCES {
            for v in r.versions {
                if s.for_kind(r.group, v, r.kind).is_none() {
                    missing.push(format!("{}/{v} {}", r.group, r.kind));
                }
                for sub in r.subresources {
                    let group = if sub.group.is_empty() {
                        r.group
                    } else {
                        sub.group
                    };
                    let version = if sub.version.is_empty() {
                        v
                    } else {
                        sub.version
                    };
                    // Subresources returning a non-object (`pods/log`) or a proxy have no kind.
                    if s.for_kind(group, version, sub.kind).is_none()
                        && !matches!(
                            sub.name,
                            "log" | "proxy" | "exec" | "attach" | "portforward"
                        )
                    {
                        missing.push(format!("{group}/{version} {} ({})", sub.kind, sub.name));
                    }
                }
            }
        }
        assert!(missing.is_empty(), "no schema for {missing:?}");
    }

    #[test]
    fn deployment_pruning() {
        let s = Schemas::builtin()
            .for_kind("apps", "v1", "Deployment")
            .unwrap();
        let mut d = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"a": "b"}, "annotations": {"x": "y"},
                "managedFields": [{"manager": "m", "fieldsV1": {"f:spec": {"f:x": {}}}}]},
            "spec": {
                "replicas": 2, "bogus": true,
                "selector": {"matchLabels": {"a": "b"}},
                "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
                "template": {"metadata": {"labels": {"a": "b"}, "nope": 1}, "spec": {
                    "containers": [{"name": "c", "image": "i", "foo": 1,
                        "resources": {"limits": {"cpu": "1", "memory": 128}},
                        "ports": [{"containerPort": 80, "wat": 1}]}]}},
            },
        });
        let removed = prune(s, &mut d);
        assert_eq!(
            removed,
            vec![
                "spec.bogus",
                "spec.template.metadata.nope",
                "spec.template.spec.containers[0].foo",
                "spec.template.spec.containers[0].ports[0].wat",
            ]
        );
        assert_eq!(
            d["metadata"]["managedFields"][0]["fieldsV1"],
            json!({"f:spec": {"f:x": {}}})
        );
        assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"],
            128
        );
    }

    #[test]
    fn raw_extensions_are_kept() {
        let s = Schemas::builtin()
            .for_kind("apps", "v1", "ControllerRevision")
            .unwrap();
        let mut d = json!({"data": {"anything": {"at": ["all"]}}, "revision": 1});
        assert!(prune(s, &mut d).is_empty());
        assert_eq!(d["data"], json!({"anything": {"at": ["all"]}}));
    }

    #[test]
    fn crd_nested_schemas_are_pruned_silently() {
        let s = Schemas::builtin()
            .for_kind("apiextensions.k8s.io", "v1", "CustomResourceDefinition")
            .unwrap();
        let mut d = json!({"spec": {"group": "g", "bogus": 1, "versions": [{"name": "v1",
            "schema": {"openAPIV3Schema": {"type": "object", "wrong": 1,
                "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                    "items": {"type": "string", "alsoWrong": 1}, "default": {"free": "form"}}}}}}]}});
        let removed = prune(s, &mut d);
        assert_eq!(
            removed,
            vec![
                "spec.bogus",
                "spec.versions[0].schema.openAPIV3Schema.wrong"
            ]
        );
        let spec = &d["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
        assert_eq!(spec["items"], json!({"type": "string"}));
        assert_eq!(spec["default"], json!({"free": "form"}));
        assert_eq!(spec["x-kubernetes-preserve-unknown-fields"], true);
    }

    #[test]
    fn custom_resource_roots_get_object_meta() {
        let s = Structural::for_custom_resource(&json!({
            "type": "object",
            "properties": {
                "metadata": {"type": "object"},
                "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
            },
        }));
        let mut v = json!({"apiVersion": "x/v1", "kind": "W",
            "metadata": {"name": "n", "labels": {"a": "b"}, "junk": 1},
            "spec": {"size": 1, "color": "red"}, "status": {}});
        let removed = prune(&s, &mut v);
        assert_eq!(removed, vec!["metadata.junk", "spec.color", "status"]);
        assert_eq!(v["metadata"]["labels"], json!({"a": "b"}));
    }

    #[test]
    fn v3_components_hold_the_closure_with_extensions() {
        let c = Schemas::builtin().v3_components("apps", "v1");
        let schemas = c["schemas"].as_object().unwrap();
        let d = &schemas["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(
            d["x-kubernetes-group-version-kind"],
            json!([{"group": "apps", "kind": "Deployment", "version": "v1"}])
        );
        assert!(schemas.contains_key("io.k8s.api.core.v1.PodSpec"));
        assert!(schemas.contains_key("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"));
        assert!(!schemas.contains_key("io.k8s.api.batch.v1.JobSpec"));
        let containers = &schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
        assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
        assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
        assert_eq!(containers["x-kubernetes-list-type"], "map");
        assert_eq!(containers["x-kubernetes-list-map-keys"], json!(["name"]));
        let ports = &schemas["io.k8s.api.core.v1.Container"]["properties"]["ports"];
        assert_eq!(
            ports["x-kubernetes-list-map-keys"],
            json!(["containerPort", "protocol"])
        );
        let finalizers =
            &schemas["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"]["finalizers"];
        assert_eq!(finalizers["x-kubernetes-list-type"], "set");
        let strategy = &schemas["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["strategy"];
        assert_eq!(strategy["x-kubernetes-patch-strategy"], "retainKeys");
        let replicas = &schemas["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["replicas"];
        assert!(replicas["description"]
            .as_str()
            .unwrap()
            .starts_with("Number of desired pods"));
        // Every reference resolves inside the document.
        let mut refs = Vec::new();
        collect_refs(&c, &mut refs);
        assert!(refs.iter().all(|r| schemas.contains_key(r)));
    }

    #[test]
    fn v2_definitions_use_definitions_refs() {
        let d = Schemas::builtin().v2_definitions();
        let meta = &d["io.k8s.api.apps.v1.Deployment"]["properties"]["metadata"];
        assert_eq!(
            meta["$ref"],
            "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        );
        assert!(meta.get("allOf").is_none());
        assert!(meta["description"].is_string());
    }
}

#[cfg(test)]
mod timing {
    #[test]
    #[ignore]
    fn load_time() {
        let t = std::time::Instant::now();
        let s = super::Schemas::load().unwrap_or_else(|_| super::Schemas::empty());
        let load = t.elapsed();
        let t = std::time::Instant::now();
        let c = s.v3_components("apps", "v1");
        let comp = t.elapsed();
        println!(
            "load {load:?}, nodes {}, apps/v1 components {comp:?} ({} bytes)",
            s.arena.nodes.len(),
            c.to_string().len()
        );
    }
}
