//! The schemas of the built-in kinds, from the embedded assets (see [`crate::assets`]).
//!
//! The schemas are unpacked once, on the first use or while a server starts
//! ([`Schemas::preload`]), from what the builder made of the structural asset (what pruning
//! needs, no descriptions) ahead of time ([`crate::packed`]); that asset is built from only to
//! pack it, one definition at a time: each is parsed as the builder reaches it and dropped once
//! built. The first OpenAPI document served decodes the full definitions.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, OnceLock};

use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use crate::assets::{self, OBJECT_META};
use crate::packed::{self, Packed};
use crate::structural::{Arena, Builder, Definitions, Structural};

const STRUCTURAL: &[u8] = include_bytes!("../assets/structural.json.z");
/// What `STRUCTURAL` builds, packed (see [`crate::packed`]).
const PACKED: &[u8] = include_bytes!("../assets/structural.packed.z");
const FULL: &[u8] = include_bytes!("../assets/kubernetes.json.z");

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

/// An asset as read for building schemas: its kinds, and each definition's JSON text.
#[derive(serde::Deserialize)]
struct Asset<'a> {
    kinds: Value,
    #[serde(borrow)]
    definitions: RawDefinitions<'a>,
}

/// Definitions by name, each parsed when a builder asks for it.
#[derive(serde::Deserialize)]
#[serde(transparent)]
struct RawDefinitions<'a>(#[serde(borrow)] HashMap<&'a str, &'a RawValue>);

impl Definitions for RawDefinitions<'_> {
    fn schema(&self, name: &str) -> Option<Cow<'_, Value>> {
        let raw = self.0.get(name)?;
        serde_json::from_str(raw.get()).ok().map(Cow::Owned)
    }

    fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }
}

/// One built-in kind.
#[derive(Debug)]
struct Kind {
    definition: String,
    schema: Structural,
}

/// The schemas of every built-in kind kubox serves (Kubernetes 1.35), built once per process.
#[derive(Debug)]
pub struct Schemas {
    /// By (group, version, kind), sorted.
    kinds: Vec<((String, String, String), Kind)>,
    /// Where each kind name is in `kinds` (one place for most, a few for a kind several groups
    /// or versions serve): a lookup hashes the kind and compares a group and version or two,
    /// where a binary search of the tuples chased three strings' pointers per step.
    by_kind: HashMap<String, Vec<usize>>,
    /// `meta/v1` types that are no kind of their own: ListMeta, Status, discovery documents.
    meta: HashMap<&'static str, Structural>,
    pub(crate) arena: Arc<Arena>,
    /// The full OpenAPI v3 definitions (`#/components/schemas/` references), on first use.
    definitions: OnceLock<Map<String, Value>>,
    /// The operations' query parameters by option type, on first use.
    parameters: OnceLock<Map<String, Value>>,
}

static BUILTIN: OnceLock<Schemas> = OnceLock::new();

const META_PACKAGE: &str = "io.k8s.apimachinery.pkg.apis.meta.v1";

/// The `meta/v1` types [`Schemas::meta_type`] knows.
const META_TYPES: &[&str] = &[
    "ListMeta",
    "Status",
    "APIResourceList",
    "APIGroupList",
    "APIGroup",
    "APIVersions",
];

/// What [`Schemas::for_answer`] found.
#[derive(Debug, Clone, Copy)]
pub enum Answer<'a> {
    /// One object of this schema.
    Object(&'a Structural),
    /// A list whose items have this schema.
    List(&'a Structural),
}

impl Schemas {
    /// The built-in schemas, decoded on first use. Should the embedded asset not decode (a
    /// build problem the tests catch), this is empty and nothing is pruned.
    pub fn builtin() -> &'static Schemas {
        BUILTIN.get_or_init(|| Schemas::load().unwrap_or_else(|_| Schemas::empty()))
    }

    /// Start loading [`Schemas::builtin`] on a thread of its own unless it is loaded or being
    /// loaded, so that a server starting meanwhile does its other work while the schemas
    /// inflate. Only the first call starts a thread.
    pub fn preload() {
        static STARTED: std::sync::Once = std::sync::Once::new();
        STARTED.call_once(|| {
            if BUILTIN.get().is_none() {
                std::thread::spawn(|| {
                    Schemas::builtin();
                });
            }
        });
    }

    fn empty() -> Schemas {
        Schemas {
            kinds: Vec::new(),
            by_kind: HashMap::new(),
            meta: HashMap::new(),
            arena: Arc::default(),
            definitions: OnceLock::new(),
            parameters: OnceLock::new(),
        }
    }

    fn load() -> Result<Schemas, String> {
        Ok(Schemas::assemble(packed::unpack(PACKED)?))
    }

    /// The built-in schemas built from the structural asset, packed: what
    /// `assets/structural.packed.z` must hold (`cargo run -p kubox-openapi --bin pack-schemas`).
    #[doc(hidden)]
    pub fn pack_builtin() -> Result<Vec<u8>, String> {
        Ok(packed::pack(&Schemas::build_from_asset()?))
    }

    /// Build from the structural asset's JSON, one definition at a time: each is parsed as the
    /// builder reaches it and dropped once built.
    pub(crate) fn build_from_asset() -> Result<Packed, String> {
        let text = assets::inflate(STRUCTURAL)?;
        // The whole asset as one `Value` would take ten times its text.
        let doc: Asset<'_> = serde_json::from_slice(&text).map_err(|e| e.to_string())?;
        Ok(Schemas::build_arena(
            &doc.definitions,
            assets::kind_list(&doc.kinds),
        ))
    }

    /// The schemas of the kinds in `list` (group, version, kind, definition).
    #[cfg(test)]
    fn build(
        definitions: &dyn Definitions,
        list: Vec<(String, String, String, String)>,
    ) -> Schemas {
        Schemas::assemble(Schemas::build_arena(definitions, list))
    }

    /// The arena of the kinds in `list` (group, version, kind, definition) and of the
    /// `meta/v1` types, with each one's root.
    fn build_arena(
        definitions: &dyn Definitions,
        list: Vec<(String, String, String, String)>,
    ) -> Packed {
        let mut b = Builder::new(definitions, OPAQUE, SILENT);
        let meta = b.definition(OBJECT_META);
        let kinds: Vec<_> = list
            .into_iter()
            .map(|(g, v, k, def)| {
                let root = b.definition(&def);
                ((g, v, k), def, root)
            })
            .collect();
        let meta_roots = META_TYPES
            .iter()
            .filter(|t| definitions.has(&format!("{META_PACKAGE}.{t}")))
            .map(|t| (t.to_string(), b.definition(&format!("{META_PACKAGE}.{t}"))))
            .collect();
        let mut arena = b.finish();
        arena.set_object_meta(meta);
        Packed {
            arena,
            kinds,
            meta: meta_roots,
        }
    }

    /// Schemas over a built arena.
    fn assemble(built: Packed) -> Schemas {
        let Packed {
            arena,
            kinds: roots,
            meta: meta_roots,
        } = built;
        let arena = Arc::new(arena);
        let meta_types = meta_roots
            .into_iter()
            .filter_map(|(t, root)| {
                let name = META_TYPES.iter().find(|m| **m == t)?;
                let schema = Structural {
                    arena: arena.clone(),
                    root,
                };
                Some((*name, schema))
            })
            .collect();
        let mut kinds: Vec<_> = roots
            .into_iter()
            .map(|(gvk, definition, root)| {
                let schema = Structural {
                    arena: arena.clone(),
                    root,
                };
                (gvk, Kind { definition, schema })
            })
            .collect();
        kinds.sort_by(|a, b| a.0.cmp(&b.0));
        kinds.dedup_by(|a, b| a.0 == b.0);
        let mut by_kind: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, ((_, _, kind), _)) in kinds.iter().enumerate() {
            by_kind.entry(kind.clone()).or_default().push(i);
        }
        Schemas {
            kinds,
            by_kind,
            meta: meta_types,
            arena,
            definitions: OnceLock::new(),
            parameters: OnceLock::new(),
        }
    }

    fn definitions(&self) -> &Map<String, Value> {
        self.definitions.get_or_init(|| {
            match assets::unpack(FULL).map(|mut d| d["definitions"].take()) {
                Ok(Value::Object(mut m)) => {
                    m.values_mut().for_each(metadata_not_required);
                    m
                }
                _ => Map::new(),
            }
        })
    }

    /// A query parameter of the operations kube publishes, as the option type declares it
    /// (`("ListOptions", "labelSelector")`): `{"type": …, "description": …}`.
    pub fn parameter(&self, options: &str, name: &str) -> Option<&Value> {
        self.option_types().get(options)?.get(name)
    }

    /// Every query parameter an option type declares (`PodLogOptions`, `ListOptions`…), by
    /// name: `{"type": …, "description": …}`.
    pub fn parameters_of(&self, options: &str) -> Vec<(&str, &Value)> {
        self.option_types()
            .get(options)
            .and_then(Value::as_object)
            .map(|m| m.iter().map(|(k, v)| (k.as_str(), v)).collect())
            .unwrap_or_default()
    }

    fn option_types(&self) -> &Map<String, Value> {
        self.parameters.get_or_init(|| {
            match assets::unpack(FULL).map(|mut d| d["parameters"].take()) {
                Ok(Value::Object(m)) => m,
                _ => Map::new(),
            }
        })
    }

    /// No schema at all (the asset did not decode)?
    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }

    /// The structural schema of a built-in kind (`("apps", "v1", "Deployment")`).
    pub fn for_kind(&self, group: &str, version: &str, kind: &str) -> Option<&Structural> {
        self.kind(group, version, kind).map(|k| &k.schema)
    }

    fn kind(&self, group: &str, version: &str, kind: &str) -> Option<&Kind> {
        self.by_kind
            .get(kind)?
            .iter()
            .filter_map(|&i| self.kinds.get(i))
            .find(|((g, v, _), _)| g == group && v == version)
            .map(|(_, k)| k)
    }

    /// A `meta/v1` type that is no kind of its own (one of `ListMeta`, `Status`,
    /// `APIResourceList`, `APIGroupList`, `APIGroup`, `APIVersions`).
    pub fn meta_type(&self, name: &str) -> Option<&Structural> {
        self.meta.get(name)
    }

    /// The schema `value` is written with when kube-apiserver answers it: a built-in kind's, a
    /// built-in kind's list (`PodList`: the second of the pair is the items' schema), or one of
    /// the [`meta_type`](Self::meta_type)s, by its `apiVersion` and `kind`. None for anything
    /// else (custom resources, which kube holds as maps and writes sorted).
    pub fn for_answer(&self, value: &Value) -> Option<Answer<'_>> {
        let kind = value.get("kind")?.as_str()?;
        // `/api`'s APIVersions is written without an apiVersion.
        let api_version = match value.get("apiVersion") {
            Some(v) => v.as_str()?,
            None if kind == "APIVersions" => "v1",
            None => return None,
        };
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        if let Some(s) = self.for_kind(group, version, kind) {
            return Some(Answer::Object(s));
        }
        if let Some(item) = kind
            .strip_suffix("List")
            .and_then(|k| self.for_kind(group, version, k))
        {
            return Some(Answer::List(item));
        }
        if group.is_empty() && version == "v1" {
            return self.meta_type(kind).map(Answer::Object);
        }
        None
    }

    /// The OpenAPI definition name of a built-in kind (`io.k8s.api.apps.v1.Deployment`).
    pub fn definition_name(&self, group: &str, version: &str, kind: &str) -> Option<&str> {
        self.kind(group, version, kind)
            .map(|k| k.definition.as_str())
    }

    /// Every (group, version, kind) with a schema.
    pub fn kinds(&self) -> impl Iterator<Item = (&str, &str, &str)> {
        self.kinds
            .iter()
            .map(|((g, v, k), _)| (g.as_str(), v.as_str(), k.as_str()))
    }

    /// One full OpenAPI v3 definition (`#/components/schemas/` references), if known.
    pub fn definition(&self, name: &str) -> Option<&Value> {
        self.definitions().get(name)
    }

    /// A hash of the embedded definitions: what the published schemas depend on besides the
    /// served resources (for the `?hash=` of OpenAPI discovery).
    pub fn content_hash() -> u64 {
        use std::hash::{Hash, Hasher};
        static HASH: OnceLock<u64> = OnceLock::new();
        *HASH.get_or_init(|| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            FULL.hash(&mut h);
            h.finish()
        })
    }

    /// `components` of the `/openapi/v3/{api|apis/group}/{version}` document: the
    /// definitions of the group version's kinds and everything they reference (no schema for
    /// a group version with no built-in kind). Computed on each call (a few milliseconds;
    /// clients cache documents by hash).
    pub fn v3_components(&self, group: &str, version: &str) -> Value {
        self.v3_components_with(group, version, &[])
    }

    /// [`Schemas::v3_components`] plus `extra` schemas (custom resources' kinds) and the
    /// built-in definitions they reference (`ObjectMeta`, `ListMeta`...).
    pub fn v3_components_with(
        &self,
        group: &str,
        version: &str,
        extra: &[(&str, &Value)],
    ) -> Value {
        self.v3_components_with_roots(group, version, extra, &[])
    }

    /// [`v3_components_with`](Self::v3_components_with), with more built-in definitions the
    /// document refers to (`io.k8s.api.autoscaling.v1.Scale` for `/scale` subresources).
    pub fn v3_components_with_roots(
        &self,
        group: &str,
        version: &str,
        extra: &[(&str, &Value)],
        more_roots: &[&str],
    ) -> Value {
        let mut roots: Vec<String> = self
            .kinds
            .iter()
            .filter(|((g, v, _), _)| g == group && v == version)
            .map(|(_, k)| k.definition.clone())
            .collect();
        roots.extend(more_roots.iter().map(|r| r.to_string()));
        for (_, schema) in extra {
            collect_refs(schema, &mut roots);
        }
        let roots: Vec<&str> = roots.iter().map(String::as_str).collect();
        let definitions = self.definitions();
        let mut schemas = Map::new();
        for name in closure(definitions, &roots) {
            if let Some(d) = definitions.get(&name) {
                schemas.insert(name, d.clone());
            }
        }
        for (name, schema) in extra {
            schemas.insert(name.to_string(), (*schema).clone());
        }
        json!({"schemas": schemas})
    }

    /// `definitions` of the `/openapi/v2` document: every built-in definition, with
    /// `#/definitions/` references (a reference with a description is written as Swagger 2.0
    /// does, `$ref` beside `description`).
    pub fn v2_definitions(&self) -> Value {
        Value::Object(
            self.definitions()
                .iter()
                .map(|(name, d)| (name.clone(), to_v2(d)))
                .collect(),
        )
    }
}

/// The names of the definitions reachable from `roots`, sorted.
fn closure(definitions: &Map<String, Value>, roots: &[&str]) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<String> = roots.iter().map(|s| s.to_string()).collect();
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(d) = definitions.get(&name) {
            collect_refs(d, &mut todo);
        }
    }
    seen
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
pub(crate) fn to_v2(v: &Value) -> Value {
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
                } else if matches!(
                    k.as_str(),
                    "properties" | "patternProperties" | "definitions"
                ) && x.is_object()
                {
                    // Property names, not keywords: a property called `$ref` (JSONSchemaProps
                    // has one) is a schema like any other.
                    let props = x
                        .as_object()
                        .map(|p| p.iter().map(|(n, s)| (n.clone(), to_v2(s))).collect())
                        .unwrap_or_default();
                    out.insert(k.clone(), Value::Object(props));
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

/// k8s-openapi makes every kind's `metadata` a required field (it is not an `Option` there);
/// kube-apiserver's documents never require it, and clients that validate against them
/// (kubectl's client-side validation) refuse objects without it.
fn metadata_not_required(def: &mut Value) {
    if def.get("x-kubernetes-group-version-kind").is_none() {
        return;
    }
    if let Some(Value::Array(req)) = def.get_mut("required") {
        req.retain(|r| r != "metadata");
        if req.is_empty() {
            if let Some(m) = def.as_object_mut() {
                m.remove("required");
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::prune::prune;

    #[test]
    fn no_kind_requires_metadata_as_kube_apiservers_documents() {
        let s = Schemas::builtin();
        let sar = s
            .definition("io.k8s.api.authorization.v1.SubjectAccessReview")
            .unwrap();
        assert_eq!(sar["required"], json!(["spec"]));
        let cm = s.definition("io.k8s.api.core.v1.ConfigMap").unwrap();
        assert!(cm.get("required").is_none(), "{:?}", cm.get("required"));
    }

    #[test]
    fn definitions_parsed_one_at_a_time_build_what_the_whole_asset_builds() {
        let doc = assets::unpack(STRUCTURAL).unwrap();
        let whole = Schemas::build(
            doc["definitions"].as_object().unwrap(),
            assets::kind_list(&doc["kinds"]),
        );
        let one_at_a_time = Schemas::builtin();
        assert!(
            whole.arena.nodes.len() > 1000,
            "{}",
            whole.arena.nodes.len()
        );
        assert_eq!(
            format!("{:?}", whole.arena),
            format!("{:?}", one_at_a_time.arena)
        );
        let names = |s: &Schemas| {
            s.kinds
                .iter()
                .map(|(gvk, k)| (gvk.clone(), k.definition.clone(), k.schema.root))
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&whole), names(one_at_a_time));
        let meta = |s: &Schemas| {
            let mut m: Vec<_> = s.meta.iter().map(|(t, s)| (*t, s.root)).collect();
            m.sort();
            m
        };
        assert_eq!(meta(&whole), meta(one_at_a_time));
    }

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
    fn every_kind_is_found_by_its_group_version_and_name_only() {
        let s = Schemas::builtin();
        let mut by_name: HashMap<&str, Vec<(&str, &str)>> = HashMap::new();
        for ((g, v, k), kind) in &s.kinds {
            assert_eq!(
                s.definition_name(g, v, k),
                Some(kind.definition.as_str()),
                "{g}/{v} {k}"
            );
            by_name.entry(k).or_default().push((g, v));
        }
        // Kinds several groups or versions serve resolve to each one's own definition.
        let shared: Vec<_> = by_name.iter().filter(|(_, gvs)| gvs.len() > 1).collect();
        assert!(shared.len() >= 3, "{shared:?}");
        for (k, gvs) in shared {
            let names: BTreeSet<_> = gvs
                .iter()
                .map(|(g, v)| s.definition_name(g, v, k).unwrap())
                .collect();
            assert_eq!(names.len(), gvs.len(), "{k}: {gvs:?}");
        }
        assert_eq!(
            s.definition_name("", "v1", "Event"),
            Some("io.k8s.api.core.v1.Event")
        );
        assert_eq!(
            s.definition_name("events.k8s.io", "v1", "Event"),
            Some("io.k8s.api.events.v1.Event")
        );
        assert!(s.for_kind("apps", "v1", "Pod").is_none());
        assert!(s.for_kind("", "v2", "Pod").is_none());
        assert!(s.for_kind("", "v1", "pod").is_none());
        assert!(s.for_kind("", "v1", "").is_none());
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
    /// `cargo test --release -p kubox-openapi load_time -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn load_time() {
        let rss = || {
            std::fs::read_to_string("/proc/self/statm")
                .ok()
                .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
                .unwrap_or(0)
                * 4
        };
        let r0 = rss();
        let s = super::Schemas::builtin();
        let r1 = rss();
        let _ = s.definition("x");
        let r2 = rss();
        for (g, v, _) in s.kinds().collect::<Vec<_>>() {
            let _ = s.v3_components(g, v);
        }
        let _ = s.v2_definitions();
        let r3 = rss();
        println!(
            "RSS: structural +{} KiB, full definitions +{} KiB, every v3 components and v2 +{} KiB",
            r1 - r0,
            r2 - r1,
            r3 - r2
        );
        let min = |f: &dyn Fn()| {
            (0..20)
                .map(|_| {
                    let t = std::time::Instant::now();
                    f();
                    t.elapsed()
                })
                .min()
                .unwrap_or_default()
        };
        let structural = min(&|| {
            let _ = super::Schemas::load();
        });
        let unpack = min(&|| {
            let _ = super::assets::unpack(super::STRUCTURAL);
        });
        let inflate = min(&|| {
            let _ = miniz_oxide::inflate::decompress_to_vec_zlib(super::STRUCTURAL);
        });
        println!("structural inflate {inflate:?}, inflate+parse {unpack:?}");
        let full = min(&|| {
            let _ = super::assets::unpack(super::FULL);
        });
        let s = super::Schemas::builtin();
        let _ = s.definition("x");
        let components = min(&|| {
            let _ = super::closure(s.definitions(), &["io.k8s.api.apps.v1.Deployment"]);
        });
        println!(
            "structural schemas {structural:?} ({} nodes), full definitions {full:?}, \
             apps/v1 Deployment closure {components:?}",
            s.arena.nodes.len()
        );
    }
}
