//! Pruning and strict field validation against a [`Structural`] schema.
//!
//! kube-apiserver decodes built-in objects into Go structs: fields the struct does not declare
//! are dropped, and with `fieldValidation=Strict|Warn` its strict JSON decoder
//! (sigs.k8s.io/json) reports them, with duplicated fields, as
//! `unknown field "spec.template.spec.containers[0].foo"` / `duplicate field "spec.replicas"`:
//! a path of field names joined by dots, map keys like field names, list indices in brackets,
//! in document order, each message once, at most 100.
//!
//! What is never looked into: `x-kubernetes-preserve-unknown-fields` values without declared
//! fields (RawExtension, JSON, FieldsV1 for built-ins), int-or-string values, and values whose
//! type does not match the schema (left for the type check to refuse). Below a *silent* node
//! (Go types that decode their content non-strictly, like `JSONSchemaPropsOrArray`) undeclared
//! fields are dropped but not reported, as in Go.

use std::collections::HashSet;
use std::fmt::Write as _;

use serde_json::Value;

use crate::ordered::OrderedValue;
use crate::structural::{Arena, Node, NodeId, Structural, Type};

/// The most strict-decoding errors Go collects for one document.
const MAX_ERRORS: usize = 100;

/// Remove the fields `schema` does not declare from `value`. Returns the removed fields' paths
/// as Go's strict decoder prints them (`spec.template.spec.containers[0].foo`), in the order of
/// `value`'s keys (sorted).
pub fn prune(schema: &Structural, value: &mut Value) -> Vec<String> {
    let mut w = Walk::new(&schema.arena, Style::Go);
    w.value(schema.root, value, false);
    w.out
}

/// The errors kube's strict decoder reports for `doc` against `schema`: `unknown field "…"`
/// and `duplicate field "…"`, in document order, without repeats, at most 100.
pub fn strict_errors(schema: &Structural, doc: &OrderedValue) -> Vec<String> {
    let mut s = Strict {
        arena: &schema.arena,
        path: String::new(),
        out: Vec::new(),
        seen: HashSet::new(),
    };
    s.value(schema.root, doc, false);
    s.out
}

/// The duplicate-field errors of a schemaless document (`map[string]interface{}` in Go, as
/// patches are decoded): `duplicate field "spec.replicas"`, in document order, without repeats,
/// at most 100. With `max_depth`, members nested deeper than that many objects are not looked
/// at (1: only the members of top-level objects and of the objects of a top-level array).
pub fn duplicate_fields(doc: &OrderedValue, max_depth: Option<usize>) -> Vec<String> {
    fn walk(
        v: &OrderedValue,
        depth: usize,
        max: Option<usize>,
        path: &mut String,
        out: &mut Vec<String>,
    ) {
        if max.is_some_and(|m| depth >= m) {
            return;
        }
        match v {
            OrderedValue::Object(members) => {
                let mut seen = HashSet::new();
                for (key, child) in members {
                    let full = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    if !seen.insert(key.as_str()) && out.len() < MAX_ERRORS {
                        let msg = format!(
                            "duplicate field {}",
                            kubox_apimachinery::validation::go_quote(&full)
                        );
                        if !out.contains(&msg) {
                            out.push(msg);
                        }
                    }
                    let len = path.len();
                    *path = full;
                    walk(child, depth + 1, max, path, out);
                    path.truncate(len);
                }
            }
            OrderedValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    walk(item, depth, max, path, out);
                    path.truncate(len);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(doc, 0, max_depth, &mut String::new(), &mut out);
    out
}

/// The message of one unknown field, as Go prints it: `unknown field "spec.foo"`.
pub fn unknown_field(path: &str) -> String {
    format!(
        "unknown field {}",
        kubox_apimachinery::validation::go_quote(path)
    )
}

/// Join strict-decoding messages the way `runtime.NewStrictDecodingError` does:
/// `strict decoding error: unknown field "a", unknown field "b"`.
pub fn strict_decoding_error(errors: &[String]) -> String {
    format!("strict decoding error: {}", errors.join(", "))
}

/// The errors server-side apply reports when an applied configuration has fields the schema
/// does not declare, in structured-merge-diff's path syntax: `.spec.foo: field not declared in
/// schema`, list elements of associative lists named by their keys (`[name="web"]`), others by
/// index.
pub fn apply_errors(schema: &Structural, value: &Value) -> Vec<String> {
    let mut copy = value.clone();
    let mut w = Walk::new(&schema.arena, Style::Smd);
    w.value(schema.root, &mut copy, false);
    w.out
        .into_iter()
        .map(|p| format!("{p}: field not declared in schema"))
        .collect()
}

/// What structured-merge-diff reports when it types an object whose values do not have the
/// schema's types (a stored custom resource read through a version whose schema changed a
/// field's type): `.spec.size: expected numeric (int or float), got string`.
pub fn type_errors(schema: &Structural, value: &Value) -> Vec<String> {
    let mut copy = value.clone();
    let mut w = Walk::new(&schema.arena, Style::Smd);
    w.types = true;
    w.value(schema.root, &mut copy, false);
    w.out
}

/// Go's `%#v` of a decoded JSON value.
fn go_sharp(v: &Value) -> String {
    match v {
        Value::Null => "interface {}(nil)".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => kubox_apimachinery::validation::go_quote(s),
        Value::Array(a) => format!(
            "[]interface {{}}{{{}}}",
            a.iter().map(go_sharp).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(m) => format!(
            "map[string]interface {{}}{{{}}}",
            m.iter()
                .map(|(k, v)| format!(
                    "{}:{}",
                    kubox_apimachinery::validation::go_quote(k),
                    go_sharp(v)
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Go's `%v` of a decoded JSON value.
fn go_plain(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_plain).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => format!(
            "map[{}]",
            m.iter()
                .map(|(k, v)| format!("{k}:{}", go_plain(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}

/// Join apply errors as structured-merge-diff's `ValidationErrors` does.
pub fn apply_error_message(errors: &[String]) -> String {
    match errors {
        [one] => one.clone(),
        many => {
            let mut s = String::from("errors:");
            for e in many {
                s.push_str("\n  ");
                s.push_str(e);
            }
            s
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    /// sigs.k8s.io/json: `spec.containers[0].foo`.
    Go,
    /// structured-merge-diff: `.spec.containers[name="web"].foo`.
    Smd,
}

/// What a member of an object is, per the object's schema.
enum Member {
    Declared(NodeId),
    Kept,
    Undeclared,
}

fn member(arena: &Arena, n: &Node, key: &str) -> Member {
    if let Some(c) = n.property(key) {
        return Member::Declared(c);
    }
    if n.embedded {
        match key {
            "apiVersion" | "kind" => return Member::Kept,
            "metadata" => return arena.object_meta.map_or(Member::Kept, Member::Declared),
            _ => {}
        }
    }
    if let Some(a) = n.additional {
        return Member::Declared(a);
    }
    if n.preserve_unknown {
        return Member::Kept;
    }
    Member::Undeclared
}

/// Resolve a union node to the member matching the value's type.
pub(crate) fn pick(arena: &Arena, id: NodeId, matches: impl Fn(Type) -> bool) -> NodeId {
    let n = arena.node(id);
    n.alternatives
        .iter()
        .copied()
        .find(|a| {
            let t = arena.node(*a).ty;
            t != Type::Any && matches(t)
        })
        .unwrap_or(id)
}

fn walks_objects(n: &Node) -> bool {
    !n.is_opaque()
        && (n.ty == Type::Object
            || (n.ty == Type::Any
                && (!n.properties.is_empty() || n.additional.is_some() || n.embedded)))
}

fn walks_arrays(n: &Node) -> bool {
    !n.is_opaque() && n.items.is_some() && matches!(n.ty, Type::Array | Type::Any)
}

struct Walk<'a> {
    arena: &'a Arena,
    style: Style,
    path: String,
    out: Vec<String>,
    /// Report values of the wrong JSON type (structured-merge-diff's typing of an object)
    /// instead of undeclared fields.
    types: bool,
}

impl<'a> Walk<'a> {
    fn new(arena: &'a Arena, style: Style) -> Self {
        Walk {
            arena,
            style,
            path: String::new(),
            out: Vec::new(),
            types: false,
        }
    }

    /// structured-merge-diff's complaint about a value of the wrong type here, if any.
    fn type_error(n: &Node, v: &Value) -> Option<String> {
        if v.is_null() || n.int_or_string || n.is_opaque() || n.ty.matches(v) {
            return None;
        }
        Some(match n.ty {
            Type::Integer | Type::Number => format!(
                "expected numeric (int or float), got {}",
                match v {
                    Value::String(_) => "string",
                    Value::Bool(_) => "bool",
                    Value::Object(_) => "map[string]interface {}",
                    _ => "[]interface {}",
                }
            ),
            Type::String => format!(
                "expected string, got &value.valueUnstructured{{Value:{}}}",
                go_sharp(v)
            ),
            Type::Boolean => format!("expected boolean, got &{{{}}}", go_plain(v)),
            Type::Object => format!("expected map, got &{{{}}}", go_plain(v)),
            Type::Array => format!("expected list, got &{{{}}}", go_plain(v)),
            Type::Any => return None,
        })
    }

    fn push_key(&mut self, key: &str) -> usize {
        let len = self.path.len();
        if self.style == Style::Smd || !self.path.is_empty() {
            self.path.push('.');
        }
        self.path.push_str(key);
        len
    }

    fn push_item(&mut self, list: &Node, i: usize, item: &Value) -> usize {
        let len = self.path.len();
        if self.style == Style::Smd && !list.list_keys.is_empty() {
            let parts: Option<Vec<String>> = list
                .list_keys
                .iter()
                .map(|k| item.get(k.as_ref()).map(|v| format!("{k}={v}")))
                .collect();
            if let Some(parts) = parts {
                self.path.push('[');
                self.path.push_str(&parts.join(","));
                self.path.push(']');
                return len;
            }
        }
        let _ = write!(self.path, "[{i}]");
        len
    }

    fn value(&mut self, id: NodeId, v: &mut Value, silent: bool) {
        let arena = self.arena;
        let silent = silent || arena.node(id).silent;
        let id = pick(arena, id, |t| t.matches(v));
        let n = arena.node(id);
        let silent = silent || n.silent;
        if self.types {
            if let Some(e) = Self::type_error(n, v) {
                self.out.push(format!("{}: {e}", self.path));
                return;
            }
        }
        match v {
            Value::Object(map) if walks_objects(n) => {
                // Undeclared members are reported in order and removed after the walk (no key
                // copied unless it goes).
                let mut undeclared = Vec::new();
                for (key, child) in map.iter_mut() {
                    match member(arena, n, key) {
                        Member::Declared(c) => {
                            let len = self.push_key(key);
                            self.value(c, child, silent);
                            self.path.truncate(len);
                        }
                        Member::Kept => {}
                        Member::Undeclared => {
                            undeclared.push(key.clone());
                            if !silent && !self.types {
                                let len = self.push_key(key);
                                self.out.push(self.path.clone());
                                self.path.truncate(len);
                            }
                        }
                    }
                }
                for key in undeclared {
                    map.remove(&key);
                }
            }
            Value::Array(items) if walks_arrays(n) => {
                if let Some(item_id) = n.items {
                    for (i, item) in items.iter_mut().enumerate() {
                        let len = self.push_item(n, i, item);
                        self.value(item_id, item, silent);
                        self.path.truncate(len);
                    }
                }
            }
            _ => {}
        }
    }
}

struct Strict<'a> {
    arena: &'a Arena,
    path: String,
    out: Vec<String>,
    seen: HashSet<String>,
}

impl Strict<'_> {
    fn report(&mut self, kind: &str, key: &str) {
        if self.out.len() >= MAX_ERRORS {
            return;
        }
        let full = if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        };
        let msg = format!(
            "{kind} field {}",
            kubox_apimachinery::validation::go_quote(&full)
        );
        if self.seen.insert(msg.clone()) {
            self.out.push(msg);
        }
    }

    /// Step into field `key` of the current path; returns the length to truncate back to.
    fn enter(&mut self, key: &str) -> usize {
        let len = self.path.len();
        if !self.path.is_empty() {
            self.path.push('.');
        }
        self.path.push_str(key);
        len
    }

    /// Duplicate keys inside a preserved value (no schema below).
    fn kept(&mut self, v: &OrderedValue) {
        match v {
            OrderedValue::Object(members) => {
                let mut seen: HashSet<&str> = HashSet::new();
                for (key, child) in members {
                    if !seen.insert(key.as_str()) {
                        self.report("duplicate", key);
                    }
                    let len = self.enter(key);
                    self.kept(child);
                    self.path.truncate(len);
                }
            }
            OrderedValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let len = self.path.len();
                    let _ = write!(self.path, "[{i}]");
                    self.kept(item);
                    self.path.truncate(len);
                }
            }
            _ => {}
        }
    }

    fn value(&mut self, id: NodeId, v: &OrderedValue, silent: bool) {
        let arena = self.arena;
        let silent = silent || arena.node(id).silent;
        let id = pick(arena, id, |t| v.type_matches(t));
        let n = arena.node(id);
        let silent = silent || n.silent;
        // A preserved object (`x-kubernetes-preserve-unknown-fields` without properties) is
        // still read by the strict decoder: its keys may not repeat either.
        if n.preserve_unknown && n.ty == Type::Object && n.properties.is_empty() && !silent {
            self.kept(v);
            return;
        }
        match v {
            OrderedValue::Object(members) if walks_objects(n) => {
                let mut declared_seen: HashSet<&str> = HashSet::new();
                for (key, child) in members {
                    match member(arena, n, key) {
                        Member::Declared(c) => {
                            if !declared_seen.insert(key.as_str()) && !silent {
                                self.report("duplicate", key);
                            }
                            let len = self.enter(key);
                            self.value(c, child, silent);
                            self.path.truncate(len);
                        }
                        Member::Kept => {
                            // Preserved fields are still JSON a strict decoder reads: keys
                            // given twice are duplicates, at any depth.
                            if !declared_seen.insert(key.as_str()) && !silent {
                                self.report("duplicate", key);
                            }
                            if !silent {
                                let len = self.enter(key);
                                self.kept(child);
                                self.path.truncate(len);
                            }
                        }
                        Member::Undeclared => {
                            if !silent {
                                self.report("unknown", key);
                            }
                        }
                    }
                }
            }
            OrderedValue::Array(items) if walks_arrays(n) => {
                if let Some(item_id) = n.items {
                    for (i, item) in items.iter().enumerate() {
                        let len = self.path.len();
                        let _ = write!(self.path, "[{i}]");
                        self.value(item_id, item, silent);
                        self.path.truncate(len);
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Structural {
        Structural::from_openapi_v3(&json!({
            "type": "object",
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "metadata": {"type": "object", "properties": {
                    "name": {"type": "string"},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                }},
                "spec": {"type": "object", "properties": {
                    "replicas": {"type": "integer"},
                    "port": {"x-kubernetes-int-or-string": true},
                    "raw": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    "partly": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                        "properties": {"known": {"type": "object", "properties": {"a": {"type": "string"}}}}},
                    "byName": {"type": "object", "additionalProperties": {
                        "type": "object", "properties": {"x": {"type": "string"}}}},
                    "containers": {"type": "array", "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["name"],
                        "items": {"type": "object", "properties": {
                            "name": {"type": "string"},
                            "env": {"type": "array", "items": {"type": "object", "properties": {
                                "name": {"type": "string"}, "value": {"type": "string"}}}},
                        }}},
                    "embedded": {"type": "object", "x-kubernetes-embedded-resource": true,
                        "properties": {"spec": {"type": "object", "properties": {}}}},
                }},
            },
        }))
    }

    #[test]
    fn prunes_unknown_fields_with_go_paths() {
        let mut v = json!({
            "apiVersion": "v1", "kind": "K", "bar": 1,
            "metadata": {"name": "n", "labels": {"anything": "goes"}, "bogus": true},
            "spec": {
                "replicas": 1, "foo": {"deep": 1},
                "containers": [
                    {"name": "a", "x": 1, "env": [{"name": "E", "valueFrom": {}}]},
                    {"name": "b"},
                ],
            },
        });
        let removed = prune(&schema(), &mut v);
        assert_eq!(
            removed,
            vec![
                "bar",
                "metadata.bogus",
                "spec.containers[0].env[0].valueFrom",
                "spec.containers[0].x",
                "spec.foo",
            ]
        );
        assert_eq!(
            v,
            json!({
                "apiVersion": "v1", "kind": "K",
                "metadata": {"name": "n", "labels": {"anything": "goes"}},
                "spec": {"replicas": 1, "containers": [
                    {"name": "a", "env": [{"name": "E"}]}, {"name": "b"}]},
            })
        );
    }

    #[test]
    fn preserve_unknown_fields_and_int_or_string() {
        let mut v = json!({"spec": {
            "port": {"weird": "but kept"},
            "raw": {"a": {"b": [1, {"c": 2}]}},
            "partly": {"free": 1, "known": {"a": "x", "b": "pruned"}},
        }});
        let removed = prune(&schema(), &mut v);
        assert_eq!(removed, vec!["spec.partly.known.b"]);
        assert_eq!(v["spec"]["raw"], json!({"a": {"b": [1, {"c": 2}]}}));
        assert_eq!(v["spec"]["port"], json!({"weird": "but kept"}));
        assert_eq!(v["spec"]["partly"], json!({"free": 1, "known": {"a": "x"}}));
    }

    #[test]
    fn maps_of_objects_use_the_key_as_a_field_name() {
        let mut v = json!({"spec": {"byName": {"k1": {"x": "1", "y": 2}, "k2": {}}}});
        assert_eq!(prune(&schema(), &mut v), vec!["spec.byName.k1.y"]);
        assert_eq!(v["spec"]["byName"], json!({"k1": {"x": "1"}, "k2": {}}));
    }

    #[test]
    fn wrong_types_are_left_alone() {
        let mut v = json!({"spec": "not an object", "metadata": {"labels": ["x"]}});
        let before = v.clone();
        assert!(prune(&schema(), &mut v).is_empty());
        assert_eq!(v, before);
    }

    #[test]
    fn embedded_resources_allow_type_meta_and_object_meta() {
        let mut v = json!({"spec": {"embedded": {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"},
            "spec": {"gone": 1}, "extra": 2,
        }}});
        let removed = prune(&schema(), &mut v);
        assert_eq!(
            removed,
            vec!["spec.embedded.extra", "spec.embedded.spec.gone"]
        );
    }

    #[test]
    fn strict_errors_in_document_order_with_duplicates() {
        let doc = OrderedValue::from_json(
            br#"{"spec": {"foo": 1, "replicas": 1, "replicas": 2,
                 "containers": [{"name": "a"}, {"name": "b", "zzz": 1, "zzz": 2}]},
                 "bar": {"nested": {"unknown": 1}},
                 "metadata": {"labels": {"a": "1", "a": "2"}},
                 "spec": {}}"#,
        )
        .unwrap();
        assert_eq!(
            strict_errors(&schema(), &doc),
            vec![
                r#"unknown field "spec.foo""#,
                r#"duplicate field "spec.replicas""#,
                r#"unknown field "spec.containers[1].zzz""#,
                r#"unknown field "bar""#,
                r#"duplicate field "metadata.labels.a""#,
                r#"duplicate field "spec""#,
            ]
        );
        assert_eq!(
            strict_decoding_error(&strict_errors(
                &schema(),
                &OrderedValue::from_json(br#"{"spec": {"foo": 1}, "bar": 2}"#).unwrap()
            )),
            r#"strict decoding error: unknown field "spec.foo", unknown field "bar""#
        );
    }

    /// Preserved fields are JSON a strict decoder reads too: a key given twice inside a
    /// preserved island, at any depth, is a duplicate.
    #[test]
    fn duplicates_inside_preserved_fields_are_reported() {
        let doc = OrderedValue::from_json(
            br#"{"spec": {"raw": {"x": 1, "x": 2, "deep": [{"y": 1, "y": 2}]},
                          "partly": {"free": 1, "free": 2}}}"#,
        )
        .unwrap();
        assert_eq!(
            strict_errors(&schema(), &doc),
            vec![
                r#"duplicate field "spec.raw.x""#,
                r#"duplicate field "spec.raw.deep[0].y""#,
                r#"duplicate field "spec.partly.free""#,
            ]
        );
    }

    #[test]
    fn strict_errors_capped_at_one_hundred() {
        let mut text = String::from("{");
        for i in 0..150 {
            text.push_str(&format!("\"f{i}\": 1,"));
        }
        text.push_str("\"kind\": \"K\"}");
        let doc = OrderedValue::from_json(text.as_bytes()).unwrap();
        assert_eq!(strict_errors(&schema(), &doc).len(), 100);
    }

    #[test]
    fn duplicates_of_schemaless_documents() {
        let doc =
            OrderedValue::from_json(br#"{"a": 1, "a": 2, "b": {"c": [{"d": 1, "d": 1}], "c": 0}}"#)
                .unwrap();
        assert_eq!(
            duplicate_fields(&doc, None),
            vec![
                r#"duplicate field "a""#,
                r#"duplicate field "b.c[0].d""#,
                r#"duplicate field "b.c""#,
            ]
        );
        let ops = OrderedValue::from_json(
            br#"[{"op": "add", "op": "replace", "value": {"x": 1, "x": 2}}]"#,
        )
        .unwrap();
        assert_eq!(
            duplicate_fields(&ops, Some(1)),
            vec![r#"duplicate field "[0].op""#]
        );
    }

    #[test]
    fn apply_errors_use_structured_merge_diff_paths() {
        let v = json!({"spec": {"foo": 1, "containers": [{"name": "web", "bad": 1}],
            "byName": {"k": {"y": 1}}}});
        let errs = apply_errors(&schema(), &v);
        assert_eq!(
            errs,
            vec![
                ".spec.byName.k.y: field not declared in schema",
                r#".spec.containers[name="web"].bad: field not declared in schema"#,
                ".spec.foo: field not declared in schema",
            ]
        );
        assert_eq!(
            apply_error_message(&errs[..1]),
            ".spec.byName.k.y: field not declared in schema"
        );
        assert!(apply_error_message(&errs).starts_with("errors:\n  .spec.byName.k.y"));
    }

    #[test]
    fn type_errors_are_worded_as_structured_merge_diffs() {
        let schema = Structural::for_custom_resource(&json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
                "n": {"type": "integer"}, "s": {"type": "string"}, "b": {"type": "boolean"},
                "m": {"type": "object", "properties": {"x": {"type": "string"}}},
                "l": {"type": "array", "items": {"type": "string"}},
                "ok": {"type": "string"}, "any": {"x-kubernetes-int-or-string": true}}}}}));
        let obj = json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "a"},
            "spec": {"n": "3", "s": 3, "b": "yes", "m": "x", "l": {"a": 1}, "ok": "fine",
                     "any": "50%"}});
        assert_eq!(
            type_errors(&schema, &obj),
            vec![
                ".spec.b: expected boolean, got &{yes}",
                ".spec.l: expected list, got &{map[a:1]}",
                ".spec.m: expected map, got &{x}",
                ".spec.n: expected numeric (int or float), got string",
                ".spec.s: expected string, got &value.valueUnstructured{Value:3}",
            ]
        );
    }
}
