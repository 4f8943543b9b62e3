//! Structural schemas: the part of an OpenAPI schema that says which fields exist.
//!
//! A [`Structural`] is what pruning and strict field validation walk. It is built from OpenAPI v3
//! JSON: the built-in definitions (a graph: `$ref`s, cycles through `JSONSchemaProps`) or a
//! custom resource's self-contained `openAPIV3Schema` (a tree). Both land in the same arena of
//! nodes, so one walker serves both.

use std::borrow::Cow;
use std::collections::HashMap;

use kubox_apimachinery::fieldpath::{At, ListType, PathElement, Schema as FieldSchema};
use std::sync::Arc;

use serde_json::Value;

/// Up to this many properties, [`Node::property`] scans instead of searching.
const PROPERTY_SCAN: usize = 32;

/// Index of a node in its arena.
pub(crate) type NodeId = u32;

/// The JSON type a schema node declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Type {
    /// No type: anything (int-or-string, preserved, or a union resolved by value).
    #[default]
    Any,
    /// `type: object`.
    Object,
    /// `type: array`.
    Array,
    /// `type: string`.
    String,
    /// `type: integer`.
    Integer,
    /// `type: number`.
    Number,
    /// `type: boolean`.
    Boolean,
}

impl Type {
    fn parse(s: &str) -> Type {
        match s {
            "object" => Type::Object,
            "array" => Type::Array,
            "string" => Type::String,
            "integer" => Type::Integer,
            "number" => Type::Number,
            "boolean" => Type::Boolean,
            _ => Type::Any,
        }
    }

    /// Does a JSON value have this type (Any matches everything)?
    pub(crate) fn matches(self, v: &Value) -> bool {
        match self {
            Type::Any => true,
            Type::Object => v.is_object(),
            Type::Array => v.is_array(),
            Type::String => v.is_string(),
            Type::Integer | Type::Number => v.is_number(),
            Type::Boolean => v.is_boolean(),
        }
    }
}

/// The formats of a schema node that tell how a built-in type decodes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Format {
    /// None, or one that changes nothing in decoding (`double`).
    #[default]
    Plain,
    /// `int32`: an integer within 32 bits.
    Int32,
    /// `int64`.
    Int64,
    /// `byte`: base64 text.
    Byte,
    /// `date-time`: an RFC 3339 time.
    DateTime,
}

impl Format {
    fn parse(s: &str) -> Format {
        match s {
            "int32" => Format::Int32,
            "int64" => Format::Int64,
            "byte" => Format::Byte,
            "date-time" => Format::DateTime,
            _ => Format::Plain,
        }
    }
}

/// One schema node.
#[derive(Debug, Clone, Default)]
pub(crate) struct Node {
    pub ty: Type,
    /// `format`, where it matters to decoding.
    pub format: Format,
    /// Declared properties, sorted by name.
    pub properties: Vec<(Box<str>, NodeId)>,
    /// The schema of array items.
    pub items: Option<NodeId>,
    /// The schema of map values (`additionalProperties`).
    pub additional: Option<NodeId>,
    /// Union members (`oneOf`/`anyOf` of an untyped node), chosen by the value's JSON type.
    pub alternatives: Vec<NodeId>,
    /// `x-kubernetes-preserve-unknown-fields`: undeclared fields are kept.
    pub preserve_unknown: bool,
    /// `x-kubernetes-int-or-string`: a scalar.
    pub int_or_string: bool,
    /// `x-kubernetes-embedded-resource`: apiVersion, kind and metadata (ObjectMeta) are allowed.
    pub embedded: bool,
    /// Below here, undeclared fields are dropped without being reported (Go types whose
    /// `UnmarshalJSON` decodes non-strictly, like `JSONSchemaPropsOrArray`).
    pub silent: bool,
    /// `x-kubernetes-list-map-keys` of an associative list.
    pub list_keys: Vec<Box<str>>,
    /// `x-kubernetes-list-type: set`.
    pub list_set: bool,
    /// `x-kubernetes-map-type: atomic`.
    pub map_atomic: bool,
    /// Properties whose schema says `default: {}`: in a built-in type, the fields that hold a
    /// struct by value, present in the Go zero value (sorted).
    pub zero_fields: Vec<Box<str>>,
    /// Properties `null` in a built-in type's Go zero value (pointers, slices and maps without
    /// `omitempty`; [`crate::assets::NULL_IN_ZERO_VALUE`]), sorted.
    pub null_fields: Vec<Box<str>>,
    /// Properties a built-in type's Go round trip drops when empty (`omitempty` slices, maps
    /// and basic scalars; [`crate::assets::OMIT_EMPTY`]), sorted.
    pub omit_empty: Vec<Box<str>>,
    /// Per property (same index as `properties`), its place in the order the built-in type's Go
    /// struct declares its fields ([`crate::assets::GO_ORDER`]; `u32::MAX` for a property the
    /// Go struct does not have); empty for other schemas.
    pub go_rank: Vec<u32>,
    /// Scalars held by value without `omitempty` and their zero values
    /// ([`crate::assets::ZERO_SCALAR`]), sorted.
    pub zero_scalars: Vec<(Box<str>, Value)>,
}

impl Node {
    pub fn property(&self, name: &str) -> Option<NodeId> {
        // Most objects have a few dozen fields at most: a scan touches less memory than a
        // binary search, each of whose steps reads a name, since string equality compares the
        // lengths (held beside the pointers) first and reads a name only when they match.
        if self.properties.len() <= PROPERTY_SCAN {
            return self
                .properties
                .iter()
                .find(|(n, _)| n.as_ref() == name)
                .map(|(_, id)| *id);
        }
        self.properties
            .binary_search_by(|(n, _)| n.as_ref().cmp(name))
            .ok()
            .map(|i| self.properties[i].1)
    }

    /// Nothing inside is ever pruned or reported.
    pub fn is_opaque(&self) -> bool {
        self.int_or_string
            || (self.ty == Type::Any
                && self.properties.is_empty()
                && self.items.is_none()
                && self.additional.is_none()
                && self.alternatives.is_empty())
            || (self.preserve_unknown
                && self.properties.is_empty()
                && self.items.is_none()
                && self.additional.is_none())
    }
}

/// The nodes of one or more schemas.
#[derive(Debug, Default)]
pub(crate) struct Arena {
    pub nodes: Vec<Node>,
    /// `ObjectMeta`, for the metadata of embedded resources and custom resource roots.
    pub object_meta: Option<NodeId>,
    /// `FieldsV1` (a managedFields entry's `fieldsV1`), written in structured-merge-diff's
    /// order rather than as a map.
    pub fields_v1: Option<NodeId>,
}

impl Arena {
    /// Note `ObjectMeta`'s node, and `FieldsV1`'s below it.
    pub fn set_object_meta(&mut self, meta: NodeId) {
        self.object_meta = Some(meta);
        self.fields_v1 = self
            .node(meta)
            .property("managedFields")
            .and_then(|f| self.node(f).items)
            .and_then(|e| self.node(e).property("fieldsV1"));
    }

    pub fn node(&self, id: NodeId) -> &Node {
        // Ids are only ever made by this arena's builder, so they are in range.
        &self.nodes[id as usize]
    }

    fn push(&mut self, n: Node) -> NodeId {
        self.nodes.push(n);
        (self.nodes.len() - 1) as NodeId
    }

    /// Copy the subgraph at `id` of `other` into this arena.
    fn import(&mut self, other: &Arena, id: NodeId, memo: &mut HashMap<NodeId, NodeId>) -> NodeId {
        if let Some(&mine) = memo.get(&id) {
            return mine;
        }
        let mine = self.push(Node::default());
        memo.insert(id, mine);
        let src = other.node(id).clone();
        let mut n = src.clone();
        n.properties = src
            .properties
            .iter()
            .map(|(k, c)| (k.clone(), self.import(other, *c, memo)))
            .collect();
        n.items = src.items.map(|c| self.import(other, c, memo));
        n.additional = src.additional.map(|c| self.import(other, c, memo));
        n.alternatives = src
            .alternatives
            .iter()
            .map(|c| self.import(other, *c, memo))
            .collect();
        self.nodes[mine as usize] = n;
        mine
    }
}

/// A structural schema: which fields exist where, what is a map, a list, a preserved or an
/// int-or-string value. Cheap to clone (the nodes are shared).
#[derive(Debug, Clone)]
pub struct Structural {
    pub(crate) arena: Arc<Arena>,
    pub(crate) root: NodeId,
}

impl Structural {
    /// Parse a self-contained OpenAPI v3 schema (no `$ref`s), such as a
    /// CustomResourceDefinition version's `schema.openAPIV3Schema`, as is: no field is implied.
    pub fn from_openapi_v3(schema: &Value) -> Structural {
        let empty = serde_json::Map::new();
        let mut b = Builder::new(&empty, &[], &[]);
        let root = b.node(schema);
        Structural {
            arena: Arc::new(b.arena),
            root,
        }
    }

    /// Parse a custom resource's `openAPIV3Schema` the way kube-apiserver prunes custom
    /// resources: at the root `apiVersion` and `kind` are always allowed and `metadata` is an
    /// `ObjectMeta` (whatever the schema says about it); embedded resources
    /// (`x-kubernetes-embedded-resource`) get the same three fields.
    pub fn for_custom_resource(schema: &Value) -> Structural {
        let empty = serde_json::Map::new();
        let mut b = Builder::new(&empty, &[], &[]);
        let builtin = crate::Schemas::builtin();
        if let Some(meta) = builtin.arena.object_meta {
            let mut memo = HashMap::new();
            let id = b.arena.import(&builtin.arena, meta, &mut memo);
            b.arena.set_object_meta(id);
        }
        let root = b.node(schema);
        let mut n = b.arena.node(root).clone();
        n.embedded = true;
        if n.ty == Type::Any && !n.preserve_unknown {
            n.ty = Type::Object;
        }
        n.properties
            .retain(|(k, _)| !matches!(k.as_ref(), "apiVersion" | "kind" | "metadata"));
        b.arena.nodes[root as usize] = n;
        Structural {
            arena: Arc::new(b.arena),
            root,
        }
    }

    pub(crate) fn node(&self) -> &Node {
        self.arena.node(self.root)
    }

    /// The schema of a declared property, of map values or of array items, following a path
    /// of field names (`["spec", "template", "spec", "containers", "image"]`; list items are
    /// stepped through transparently).
    pub fn field(&self, path: &[&str]) -> Option<Structural> {
        let mut id = self.root;
        for seg in path {
            let mut n = self.arena.node(id);
            while let Some(items) = n.items {
                id = items;
                n = self.arena.node(id);
            }
            id = match n.property(seg) {
                Some(c) => c,
                None => match (n.embedded, *seg) {
                    (true, "metadata") => self.arena.object_meta?,
                    _ => n.additional?,
                },
            };
        }
        Some(Structural {
            arena: self.arena.clone(),
            root: id,
        })
    }

    /// The declared type of this node.
    pub fn ty(&self) -> Type {
        self.node().ty
    }

    /// The names of the declared properties, sorted.
    pub fn property_names(&self) -> Vec<&str> {
        self.node()
            .properties
            .iter()
            .map(|(k, _)| k.as_ref())
            .collect()
    }

    /// The zero value of a built-in type as its Go struct encodes it, for the containers it
    /// holds: every field holding a struct by value (`default: {}` in the schema) present, as
    /// that struct's zero value, and pointers, slices and maps without `omitempty` as `null`
    /// (scalars are left out). `{"metadata": {}, "spec": {"selector": null, "strategy": {},
    /// "template": {"metadata": {}, "spec": {"containers": null}}}, "status": {}}` for a
    /// Deployment.
    pub fn zero_value(&self) -> Value {
        self.zero(false)
    }

    /// The zero value as Go's encoder writes it: [`zero_value`](Self::zero_value) with the
    /// scalars held by value without `omitempty` too (`{"replicas": 0}` for a ReplicaSet's
    /// status) — what a create that resets a status answers.
    pub fn encoded_zero_value(&self) -> Value {
        self.zero(true)
    }

    fn zero(&self, scalars: bool) -> Value {
        fn walk(arena: &Arena, id: NodeId, depth: usize, scalars: bool) -> Value {
            let n = arena.node(id);
            let mut out = serde_json::Map::new();
            // Go structs cannot hold themselves by value; the bound only guards odd schemas.
            if depth < 32 {
                for name in &n.null_fields {
                    out.insert(name.to_string(), Value::Null);
                }
                if scalars {
                    for (name, zero) in &n.zero_scalars {
                        out.insert(name.to_string(), zero.clone());
                    }
                }
                for name in &n.zero_fields {
                    if let Some(child) = n.property(name) {
                        out.insert(name.to_string(), walk(arena, child, depth + 1, scalars));
                    }
                }
            }
            Value::Object(out)
        }
        walk(&self.arena, self.root, 0, scalars)
    }

    /// Is this `x-kubernetes-preserve-unknown-fields` (or otherwise opaque)?
    pub fn preserves_unknown_fields(&self) -> bool {
        let n = self.node();
        n.preserve_unknown || n.is_opaque()
    }
}

impl Structural {
    /// The node a field-set path leads to (None where the schema says nothing).
    fn at_path(&self, path: &[PathElement]) -> Option<&Node> {
        let mut id = self.root;
        for pe in path {
            id = self.step(id, pe)?;
        }
        Some(self.settle(id))
    }

    /// The node one path element below `id` (None where the schema says nothing).
    fn step(&self, id: NodeId, pe: &PathElement) -> Option<NodeId> {
        // A union (`JSONSchemaPropsOrArray`, `…OrBool`) is its object member below a field
        // step, its array member below an index.
        let member = |want: Type| {
            let n = self.arena.node(id);
            n.alternatives
                .iter()
                .copied()
                .find(|a| self.arena.node(*a).ty == want)
                .unwrap_or(id)
        };
        let id = match pe {
            PathElement::Field(_) => member(Type::Object),
            _ => member(Type::Array),
        };
        let n = self.arena.node(id);
        match pe {
            PathElement::Field(name) => match n.property(name) {
                Some(c) => Some(c),
                None if n.embedded && name == "metadata" => self.arena.object_meta,
                None => n.additional,
            },
            _ => n.items,
        }
    }

    /// The node asked about where a path ends at `id`: on a union, its object member.
    fn settle(&self, id: NodeId) -> &Node {
        let n = self.arena.node(id);
        let id = n
            .alternatives
            .iter()
            .copied()
            .find(|a| self.arena.node(*a).ty == Type::Object)
            .unwrap_or(id);
        self.arena.node(id)
    }

    /// The node at a walk's position (None: below where the schema says anything).
    fn node_at(&self, at: At, path: &[PathElement]) -> Option<&Node> {
        match at {
            At::Node(id) => Some(self.settle(id)),
            At::Nowhere => None,
            At::Path => self.at_path(path),
        }
    }
}

fn list_type_of(n: Option<&Node>) -> ListType {
    match n {
        Some(n) if !n.list_keys.is_empty() => {
            ListType::Map(n.list_keys.iter().map(|k| k.to_string()).collect())
        }
        Some(n) if n.list_set => ListType::Set,
        _ => ListType::Atomic,
    }
}

/// Kubernetes' list-map keys with a default: the `protocol` of container, service and endpoint
/// ports (`+default="TCP"`), the one key default the built-in types declare.
fn key_default_of(n: Option<&Node>, key: &str) -> Option<Value> {
    let keys = &n?.list_keys;
    (key == "protocol" && keys.iter().any(|k| k.as_ref() == "protocol"))
        .then(|| Value::String("TCP".into()))
}

/// The schema server-side apply reads: list types, atomic maps, declared fields.
impl FieldSchema for Structural {
    fn list_type(&self, path: &[PathElement]) -> ListType {
        list_type_of(self.at_path(path))
    }

    fn atomic_map(&self, path: &[PathElement]) -> bool {
        self.at_path(path).is_some_and(|n| n.map_atomic)
    }

    fn key_default(&self, path: &[PathElement], key: &str) -> Option<Value> {
        key_default_of(self.at_path(path), key)
    }

    fn root(&self) -> At {
        At::Node(self.root)
    }

    fn step(&self, at: At, pe: &PathElement) -> At {
        match at {
            At::Node(id) => Structural::step(self, id, pe).map_or(At::Nowhere, At::Node),
            other => other,
        }
    }

    fn list_type_at(&self, at: At, path: &[PathElement]) -> ListType {
        list_type_of(self.node_at(at, path))
    }

    fn atomic_map_at(&self, at: At, path: &[PathElement]) -> bool {
        self.node_at(at, path).is_some_and(|n| n.map_atomic)
    }

    fn key_default_at(&self, at: At, path: &[PathElement], key: &str) -> Option<Value> {
        key_default_of(self.node_at(at, path), key)
    }

    fn is_field(&self, path: &[PathElement], key: &str) -> bool {
        self.at_path(path).is_some_and(|n| {
            n.property(key).is_some()
                || (n.embedded && matches!(key, "apiVersion" | "kind" | "metadata"))
        })
    }

    fn omit_empty(&self, path: &[PathElement], key: &str) -> bool {
        self.at_path(path).is_some_and(|n| {
            n.omit_empty
                .binary_search_by(|k| k.as_ref().cmp(key))
                .is_ok()
        })
    }
}

/// Kubernetes 1.35 types server-side apply owns whole (`+structType=atomic`,
/// `+mapType=atomic` on the type): k8s-openapi's schemas do not carry the marker.
const ATOMIC_STRUCTS: &[&str] = &[
    "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
    "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference",
    "io.k8s.api.core.v1.SecretReference",
    "io.k8s.api.core.v1.FileKeySelector",
    "io.k8s.api.core.v1.ObjectFieldSelector",
    "io.k8s.api.core.v1.ResourceFieldSelector",
    "io.k8s.api.core.v1.ConfigMapKeySelector",
    "io.k8s.api.core.v1.SecretKeySelector",
    "io.k8s.api.core.v1.NodeSelector",
    "io.k8s.api.core.v1.NodeSelectorTerm",
    "io.k8s.api.core.v1.TopologySelectorTerm",
    "io.k8s.api.core.v1.EndpointAddress",
    "io.k8s.api.core.v1.EndpointPort",
    "io.k8s.api.core.v1.ObjectReference",
    "io.k8s.api.core.v1.LocalObjectReference",
    "io.k8s.api.core.v1.TypedLocalObjectReference",
    "io.k8s.api.core.v1.ScopeSelector",
    "io.k8s.api.autoscaling.v1.CrossVersionObjectReference",
    "io.k8s.api.discovery.v1.EndpointPort",
    "io.k8s.api.networking.v1.ServiceBackendPort",
    "io.k8s.api.rbac.v1.Subject",
    "io.k8s.api.rbac.v1.RoleRef",
    "io.k8s.api.admissionregistration.v1.ParamKind",
    "io.k8s.api.admissionregistration.v1.ParamRef",
    "io.k8s.api.admissionregistration.v1.Variable",
    "io.k8s.api.admissionregistration.v1.MatchResources",
    "io.k8s.api.admissionregistration.v1.NamedRuleWithOperations",
];

/// Map fields marked `+mapType=atomic` in Kubernetes 1.35: (definition, field).
const ATOMIC_MAP_FIELDS: &[(&str, &str)] = &[
    ("io.k8s.api.core.v1.PodSpec", "nodeSelector"),
    ("io.k8s.api.core.v1.ReplicationControllerSpec", "selector"),
    ("io.k8s.api.core.v1.ServiceSpec", "selector"),
];

/// Where a [`Builder`] finds the definitions that `$ref`s name.
pub(crate) trait Definitions {
    /// The schema of definition `name`, if there is one.
    fn schema(&self, name: &str) -> Option<Cow<'_, Value>>;
    /// Is there a definition `name`?
    fn has(&self, name: &str) -> bool;
}

impl Definitions for serde_json::Map<String, Value> {
    fn schema(&self, name: &str) -> Option<Cow<'_, Value>> {
        self.get(name).map(Cow::Borrowed)
    }

    fn has(&self, name: &str) -> bool {
        self.contains_key(name)
    }
}

/// Builds nodes from OpenAPI JSON, resolving `#/components/schemas/` and `#/definitions/` refs
/// against `defs`.
pub(crate) struct Builder<'a> {
    pub arena: Arena,
    defs: &'a dyn Definitions,
    def_ids: HashMap<String, NodeId>,
    /// Definitions whose Go type keeps any JSON as is (RawExtension, JSON, FieldsV1).
    opaque: &'a [&'a str],
    /// Definitions whose Go type decodes its content non-strictly.
    silent: &'a [&'a str],
}

impl<'a> Builder<'a> {
    pub fn new(defs: &'a dyn Definitions, opaque: &'a [&'a str], silent: &'a [&'a str]) -> Self {
        Builder {
            arena: Arena::default(),
            defs,
            def_ids: HashMap::new(),
            opaque,
            silent,
        }
    }

    /// The node of a named definition (an empty object when it is missing).
    pub fn definition(&mut self, name: &str) -> NodeId {
        if let Some(&id) = self.def_ids.get(name) {
            return id;
        }
        let id = self.arena.push(Node::default());
        self.def_ids.insert(name.to_string(), id);
        let mut atomic_fields: Vec<(Box<str>, NodeId)> = Vec::new();
        let node = if self.opaque.contains(&name) {
            Node {
                preserve_unknown: true,
                ..Node::default()
            }
        } else {
            let defs = self.defs;
            let mut n = match defs.schema(name) {
                Some(s) => self.build(&s),
                None => Node {
                    preserve_unknown: true,
                    ..Node::default()
                },
            };
            n.silent |= self.silent.contains(&name);
            n.map_atomic |= ATOMIC_STRUCTS.contains(&name);
            for (field, child) in &n.properties {
                if ATOMIC_MAP_FIELDS.contains(&(name, field.as_ref())) {
                    // A field-level marker: the map this field holds is owned whole.
                    let mut c = self.arena.node(*child).clone();
                    c.map_atomic = true;
                    let cid = self.arena.push(c);
                    atomic_fields.push((field.clone(), cid));
                }
            }
            n
        };
        let mut node = node;
        for (field, cid) in atomic_fields {
            if let Some(slot) = node.properties.iter_mut().find(|(f, _)| *f == field) {
                slot.1 = cid;
            }
        }
        self.arena.nodes[id as usize] = node;
        id
    }

    /// The node of a schema (a ref resolves to the definition's node).
    pub fn node(&mut self, s: &Value) -> NodeId {
        if let Some(name) = s.get("$ref").and_then(Value::as_str).and_then(ref_name) {
            let name = name.to_string();
            return self.definition(&name);
        }
        if let Some([only]) = s.get("allOf").and_then(Value::as_array).map(Vec::as_slice) {
            let structural = ["type", "properties", "items", "additionalProperties"];
            if !structural.iter().any(|k| s.get(*k).is_some()) {
                return self.node(only);
            }
        }
        let id = self.arena.push(Node::default());
        let n = self.build(s);
        self.arena.nodes[id as usize] = n;
        id
    }

    fn build(&mut self, s: &Value) -> Node {
        let flag = |k: &str| s.get(k).and_then(Value::as_bool) == Some(true);
        let mut n = Node {
            preserve_unknown: flag("x-kubernetes-preserve-unknown-fields"),
            int_or_string: flag("x-kubernetes-int-or-string"),
            embedded: flag("x-kubernetes-embedded-resource"),
            ..Node::default()
        };
        let props = s.get("properties").and_then(Value::as_object);
        n.ty = match s.get("type").and_then(Value::as_str) {
            Some(t) => Type::parse(t),
            None if props.is_some() || s.get("additionalProperties").is_some() => Type::Object,
            None if s.get("items").is_some() => Type::Array,
            None => Type::Any,
        };
        n.format = s
            .get("format")
            .and_then(Value::as_str)
            .map_or(Format::Plain, Format::parse);
        if n.int_or_string {
            return n;
        }
        n.list_set = s.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("set");
        n.map_atomic = s.get("x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic");
        if s.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("map") {
            if let Some(keys) = s
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
            {
                n.list_keys = keys
                    .iter()
                    .filter_map(Value::as_str)
                    .map(Box::from)
                    .collect();
                n.list_keys.sort();
            }
        }
        if let Some(props) = props {
            let mut list: Vec<(Box<str>, NodeId)> = props
                .iter()
                .map(|(k, v)| (Box::from(k.as_str()), self.node(v)))
                .collect();
            list.sort_by(|a, b| a.0.cmp(&b.0));
            n.properties = list;
            // The properties a marker is on, sorted.
            let marked = |on: &dyn Fn(&Value) -> bool| -> Vec<Box<str>> {
                let mut names: Vec<Box<str>> = props
                    .iter()
                    .filter(|(_, v)| on(v))
                    .map(|(k, _)| Box::from(k.as_str()))
                    .collect();
                names.sort();
                names
            };
            let flag = |v: &Value, key: &str| v.get(key).and_then(Value::as_bool) == Some(true);
            n.zero_fields = marked(&|v| {
                v.get("default")
                    .and_then(Value::as_object)
                    .is_some_and(|d| d.is_empty())
            });
            n.null_fields = marked(&|v| flag(v, crate::assets::NULL_IN_ZERO_VALUE));
            n.omit_empty = marked(&|v| flag(v, crate::assets::OMIT_EMPTY));
            n.zero_scalars = props
                .iter()
                .filter_map(|(k, v)| {
                    v.get(crate::assets::ZERO_SCALAR)
                        .map(|z| (Box::from(k.as_str()), z.clone()))
                })
                .collect();
            n.zero_scalars.sort_by(|a, b| a.0.cmp(&b.0));
            if let Some(order) = s.get(crate::assets::GO_ORDER).and_then(Value::as_array) {
                let mut rank = vec![u32::MAX; n.properties.len()];
                for (place, field) in order.iter().filter_map(Value::as_str).enumerate() {
                    if let Ok(i) = n
                        .properties
                        .binary_search_by(|(k, _)| k.as_ref().cmp(field))
                    {
                        rank[i] = place as u32;
                    }
                }
                n.go_rank = rank;
            }
        }
        n.items = match s.get("items") {
            Some(i @ Value::Object(_)) => Some(self.node(i)),
            _ => None,
        };
        n.additional = match s.get("additionalProperties") {
            Some(Value::Bool(true)) => Some(self.anything()),
            Some(Value::Object(m)) if m.is_empty() => Some(self.anything()),
            Some(a @ Value::Object(_)) => Some(self.node(a)),
            _ => None,
        };
        if n.ty == Type::Any && !n.preserve_unknown {
            for key in ["oneOf", "anyOf"] {
                if let Some(alts) = s.get(key).and_then(Value::as_array) {
                    n.alternatives = alts.iter().map(|a| self.node(a)).collect();
                }
            }
        }
        n
    }

    /// A node any value satisfies, kept as is.
    fn anything(&mut self) -> NodeId {
        self.arena.push(Node {
            preserve_unknown: true,
            ..Node::default()
        })
    }

    pub fn finish(self) -> Arena {
        self.arena
    }
}

/// `#/components/schemas/X` or `#/definitions/X` → `X`.
fn ref_name(r: &str) -> Option<&str> {
    r.strip_prefix("#/components/schemas/")
        .or_else(|| r.strip_prefix("#/definitions/"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A walk that steps down one element at a time stands where the whole path leads, for
    /// every path of a built-in object and of a custom resource with a union: what it asks of
    /// a node (list type, atomic map, key default) is the same.
    #[test]
    fn stepping_down_reaches_the_node_the_path_leads_to() {
        fn walk(s: &Structural, v: &Value, at: At, path: &mut Vec<PathElement>, seen: &mut usize) {
            let by_path = s.at_path(path).map(|n| n as *const Node);
            let by_step = s.node_at(at, &[]).map(|n| n as *const Node);
            assert_eq!(by_step, by_path, "at {path:?}");
            assert_eq!(s.list_type_at(at, path), s.list_type(path));
            assert_eq!(s.atomic_map_at(at, path), s.atomic_map(path));
            assert_eq!(
                s.key_default_at(at, path, "protocol"),
                s.key_default(path, "protocol")
            );
            *seen += 1;
            let children: Vec<(PathElement, &Value)> = match v {
                Value::Object(m) => m
                    .iter()
                    .map(|(k, v)| (PathElement::Field(k.clone()), v))
                    .collect(),
                Value::Array(a) => a
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (PathElement::Index(i as i64), v))
                    .collect(),
                _ => Vec::new(),
            };
            for (pe, child) in children {
                let next = FieldSchema::step(s, at, &pe);
                path.push(pe);
                walk(s, child, next, path, seen);
                path.pop();
            }
        }
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labels": {"a": "b"}, "ownerReferences": [{"uid": "u"}],
                         "managedFields": [{"fieldsV1": {"f:spec": {}}}]},
            "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}],
                                     "env": [{"name": "E", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}]}],
                     "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                         {"nodeSelectorTerms": [{"matchExpressions": [{"key": "k", "values": ["v"]}]}]}}},
                     "unknown": {"deep": [1, {"x": 2}]}},
            "status": {"conditions": [{"type": "Ready"}]}});
        let builtin = crate::Schemas::builtin().for_kind("", "v1", "Pod").unwrap();
        let crd = crate::Schemas::builtin()
            .for_kind("apiextensions.k8s.io", "v1", "CustomResourceDefinition")
            .unwrap();
        let crd_obj = json!({"spec": {"versions": [{"name": "v1", "schema": {"openAPIV3Schema": {
            "type": "object", "properties": {"a": {"items": {"type": "string"}},
                                             "b": {"items": [{"type": "string"}]}},
            "additionalProperties": false}}}]}});
        let cr = Structural::for_custom_resource(&json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {"list": {"type": "array",
                "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                "items": {"type": "object", "properties": {"name": {"type": "string"}}}}}},
            "meta": {"type": "object", "x-kubernetes-map-type": "atomic"}}}));
        let cr_obj = json!({"metadata": {"name": "x"}, "spec": {"list": [{"name": "a"}]},
                            "meta": {"k": "v"}, "other": [1]});
        for (s, v) in [(builtin, &pod), (crd, &crd_obj), (&cr, &cr_obj)] {
            let mut seen = 0;
            walk(s, v, FieldSchema::root(s), &mut Vec::new(), &mut seen);
            assert!(seen > 10, "{seen} nodes");
        }
    }

    #[test]
    fn parses_types_maps_lists() {
        let s = Structural::from_openapi_v3(&json!({
            "type": "object",
            "properties": {
                "spec": {"type": "object", "properties": {
                    "replicas": {"type": "integer"},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "ports": {"type": "array", "items": {"type": "object", "properties": {"port": {"type": "integer"}}}},
                    "port": {"x-kubernetes-int-or-string": true},
                    "raw": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                }},
            },
        }));
        assert_eq!(s.ty(), Type::Object);
        assert_eq!(s.field(&["spec", "replicas"]).unwrap().ty(), Type::Integer);
        assert_eq!(
            s.field(&["spec", "labels", "a"]).unwrap().ty(),
            Type::String
        );
        assert_eq!(
            s.field(&["spec", "ports", "port"]).unwrap().ty(),
            Type::Integer
        );
        assert!(s
            .field(&["spec", "port"])
            .unwrap()
            .preserves_unknown_fields());
        assert!(s
            .field(&["spec", "raw"])
            .unwrap()
            .preserves_unknown_fields());
        assert!(s.field(&["spec", "nope"]).is_none());
        assert_eq!(
            s.field(&["spec"]).unwrap().property_names(),
            vec!["labels", "port", "ports", "raw", "replicas"]
        );
    }

    #[test]
    fn a_property_is_found_by_its_exact_name_in_small_and_large_objects() {
        for count in [1, 5, PROPERTY_SCAN, PROPERTY_SCAN + 1, 200] {
            // Names of one length and of several, some prefixes of others.
            let names: Vec<String> = (0..count)
                .map(|i| match i % 3 {
                    0 => format!("f{i:03}"),
                    1 => format!("f{i:03}x"),
                    _ => format!("field{i}"),
                })
                .collect();
            let props: serde_json::Map<String, Value> = names
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    (
                        n.clone(),
                        json!({"type": "integer", "format": format!("{i}")}),
                    )
                })
                .collect();
            let s = Structural::from_openapi_v3(&json!({"type": "object", "properties": props}));
            let node = s.node();
            assert_eq!(node.properties.len(), count);
            for n in &names {
                let id = node.property(n).unwrap_or_else(|| panic!("{count}: {n}"));
                assert_eq!(s.arena.node(id).ty, Type::Integer);
                assert_eq!(
                    node.properties
                        .iter()
                        .find(|(p, _)| p.as_ref() == n)
                        .unwrap()
                        .1,
                    id,
                    "{count}: {n}"
                );
            }
            for missing in ["", "f", "f00", "F000", "f000y", "f0000", "field", "zzz"] {
                if !names.iter().any(|n| n == missing) {
                    assert!(node.property(missing).is_none(), "{count}: {missing}");
                }
            }
        }
    }

    #[test]
    fn refs_and_cycles() {
        let defs = json!({
            "A": {"type": "object", "properties": {"b": {"allOf": [{"$ref": "#/components/schemas/B"}], "description": "x"}}},
            "B": {"type": "object", "properties": {"a": {"$ref": "#/components/schemas/A"}, "n": {"type": "string"}}},
        });
        let defs = defs.as_object().unwrap();
        let mut b = Builder::new(defs, &[], &[]);
        let root = b.definition("A");
        let s = Structural {
            arena: Arc::new(b.finish()),
            root,
        };
        assert_eq!(s.field(&["b", "a", "b", "n"]).unwrap().ty(), Type::String);
        assert_eq!(s.arena.nodes.len(), 3);
    }
}
