//! JSON text as kube-apiserver's Go encoder writes it: the fields of a built-in type in the order
//! its Go struct declares them (`kind`, `apiVersion`, `metadata`, `spec`, `status`; inside
//! `metadata` `name`, `generateName`, `namespace`, `selfLink`, `uid`, `resourceVersion`…), map
//! keys sorted (Go's encoder sorts them). Fields a schema does not declare, and every object of a
//! schema without a Go order (custom resources, whose objects kube holds as maps), come sorted.

use kubox_apimachinery::json_text;
use serde_json::{Map, Value};

use crate::structural::{Arena, NodeId, Structural, Type};

impl Structural {
    /// The JSON text of `v` under this schema.
    pub fn to_go_json(&self, v: &Value) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        self.write_go_json(v, &[], &mut out);
        out
    }

    /// Append the JSON text of `v` under this schema to `out`, leaving out the members of the
    /// top-level `metadata` named in `skip_metadata` (what storage does not keep).
    pub fn write_go_json(&self, v: &Value, skip_metadata: &[&str], out: &mut Vec<u8>) {
        match v {
            Value::Object(m) if !skip_metadata.is_empty() => {
                let n = self.arena.node(self.root);
                let meta = n.property("metadata");
                write_object(
                    &self.arena,
                    Some(self.root),
                    m,
                    out,
                    &|k, child, id, out| match (k, child) {
                        ("metadata", Value::Object(mm)) => {
                            let kept = |key: &str| !skip_metadata.contains(&key);
                            write_object_where(&self.arena, meta, mm, &kept, out);
                        }
                        _ => write(&self.arena, id, child, out),
                    },
                );
            }
            _ => write(&self.arena, Some(self.root), v, out),
        }
    }

    /// A list of this schema's objects as kube writes a typed list (`PodList`): `kind`,
    /// `apiVersion`, `metadata` (a ListMeta), `items`, each item without its `kind` and
    /// `apiVersion` (kube's typed lists do not repeat them). `list_meta` orders the metadata.
    pub fn write_go_list(
        &self,
        kind: &str,
        api_version: &str,
        metadata: &Value,
        list_meta: Option<&Structural>,
        items: &[Value],
        out: &mut Vec<u8>,
    ) {
        out.extend_from_slice(b"{\"kind\":");
        push_json(out, &Value::from(kind));
        out.extend_from_slice(b",\"apiVersion\":");
        push_json(out, &Value::from(api_version));
        out.extend_from_slice(b",\"metadata\":");
        match list_meta {
            Some(s) => write(&s.arena, Some(s.root), metadata, out),
            None => push_json(out, metadata),
        }
        out.extend_from_slice(b",\"items\":[");
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            match item {
                Value::Object(m) => {
                    let kept = |key: &str| key != "kind" && key != "apiVersion";
                    write_object_where(&self.arena, Some(self.root), m, &kept, out);
                }
                other => write(&self.arena, Some(self.root), other, out),
            }
        }
        out.extend_from_slice(b"]}");
    }
}

/// Writes one member's value (its name, its value, the value's schema, the text so far).
type WriteMember<'a> = dyn Fn(&str, &Value, Option<NodeId>, &mut Vec<u8>) + 'a;

/// Visits one member in Go's order (as [`WriteMember`], once each).
type EachMember<'a> = dyn FnMut(&str, &Value, Option<NodeId>, &mut Vec<u8>) + 'a;

fn push_json(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::String(s) => push_str(out, s),
        // Writing a Value into a Vec cannot fail.
        other => {
            let _ = json_text::to_writer(out, other);
        }
    }
}

fn push_key(out: &mut Vec<u8>, k: &str) {
    push_str(out, k);
    out.push(b':');
}

use kubox_apimachinery::json_text::push_str;

/// The node of a union member matching the value's JSON type, else the node itself.
fn resolve(arena: &Arena, id: NodeId, v: &Value) -> NodeId {
    crate::prune::pick(arena, id, |t| t.matches(v))
}

/// The schema of member `k` of an object under `id`.
fn member(arena: &Arena, id: Option<NodeId>, k: &str) -> Option<NodeId> {
    let n = arena.node(id?);
    n.property(k).or(n.additional).or_else(|| {
        (n.embedded && k == "metadata")
            .then_some(arena.object_meta)
            .flatten()
    })
}

fn write(arena: &Arena, id: Option<NodeId>, v: &Value, out: &mut Vec<u8>) {
    let id = id.map(|i| resolve(arena, i, v));
    match v {
        Value::Object(m) if id.is_some() && id == arena.fields_v1 => {
            kubox_apimachinery::fieldpath::write_fields_v1(m, out)
        }
        Value::Object(m) => write_object(arena, id, m, out, &|_, child, id, out| {
            write(arena, id, child, out)
        }),
        Value::Array(a) => {
            let items = id.and_then(|i| arena.node(i).items);
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(arena, items, x, out);
            }
            out.push(b']');
        }
        scalar => push_json(out, scalar),
    }
}

fn write_object_where(
    arena: &Arena,
    id: Option<NodeId>,
    m: &Map<String, Value>,
    kept: &dyn Fn(&str) -> bool,
    out: &mut Vec<u8>,
) {
    let id = id.map(|i| crate::prune::pick(arena, i, |t| t == Type::Object));
    let mut first = true;
    write_members(arena, id, m, out, &mut |k, child, id, out| {
        if !kept(k) {
            return;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        push_key(out, k);
        write(arena, id, child, out);
    });
}

fn write_object(
    arena: &Arena,
    id: Option<NodeId>,
    m: &Map<String, Value>,
    out: &mut Vec<u8>,
    value: &WriteMember<'_>,
) {
    let mut first = true;
    write_members(arena, id, m, out, &mut |k, child, id, out| {
        if !first {
            out.push(b',');
        }
        first = false;
        push_key(out, k);
        value(k, child, id, out);
    });
}

/// Call `each` for the members of `m` in the order Go writes them, between the braces, with
/// each member's schema (found once, for its rank and for what it holds).
fn write_members(
    arena: &Arena,
    id: Option<NodeId>,
    m: &Map<String, Value>,
    out: &mut Vec<u8>,
    each: &mut EachMember<'_>,
) {
    out.push(b'{');
    match id.map(|i| arena.node(i)).filter(|n| !n.go_rank.is_empty()) {
        Some(n) => {
            // Declared fields by their Go rank; the others (none for an object that fits its
            // type) after them, sorted, as the map iterates (the sort is stable).
            let mut members: Vec<(u32, &str, &Value, Option<NodeId>)> = m
                .iter()
                .map(
                    |(k, v)| match n.properties.binary_search_by(|(p, _)| p.as_ref().cmp(k)) {
                        Ok(i) => {
                            let rank = n.go_rank.get(i).copied().unwrap_or(u32::MAX);
                            (rank, k.as_str(), v, Some(n.properties[i].1))
                        }
                        Err(_) => (u32::MAX, k.as_str(), v, member(arena, id, k)),
                    },
                )
                .collect();
            members.sort_by_key(|(rank, ..)| *rank);
            for (_, k, v, child) in members {
                each(k, v, child, out);
            }
        }
        None => {
            for (k, child) in m {
                each(k, child, member(arena, id, k), out);
            }
        }
    }
    out.push(b'}');
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use serde_json::json;

    use super::{json_text, push_key, push_str};
    use crate::Schemas;

    fn text(group: &str, version: &str, kind: &str, v: &serde_json::Value) -> String {
        let s = Schemas::builtin().for_kind(group, version, kind).unwrap();
        String::from_utf8(s.to_go_json(v)).unwrap()
    }

    #[test]
    fn built_in_objects_are_written_in_go_field_order() {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"labels": {"b": "1", "a": "2"}, "uid": "u", "name": "p", "namespace": "d",
                         "resourceVersion": "7", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"restartPolicy": "Always", "containers": [
                {"name": "c", "image": "i", "ports": [{"protocol": "TCP", "containerPort": 80}]}]},
            "status": {"phase": "Pending", "qosClass": "BestEffort"},
        });
        assert_eq!(
            text("", "v1", "Pod", &pod),
            concat!(
                r#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p","namespace":"d","uid":"u","#,
                r#""resourceVersion":"7","creationTimestamp":"2026-01-01T00:00:00Z","labels":{"a":"2","b":"1"}},"#,
                r#""spec":{"containers":[{"name":"c","image":"i","ports":[{"containerPort":80,"protocol":"TCP"}]}],"#,
                r#""restartPolicy":"Always"},"status":{"phase":"Pending","qosClass":"BestEffort"}}"#
            )
        );
    }

    /// Go's encoder escapes HTML characters and the line separators: so does every string of
    /// an object, member names included.
    #[test]
    fn strings_are_written_as_go_writes_them() {
        for s in [
            "",
            "plain",
            "with space",
            "quote\"",
            "back\\slash",
            "tab\t",
            "nl\n",
            "\u{1}",
            "\u{1f}",
            "\u{7f}",
            "é ü 日本",
            "<a&b>",
            "\u{2028}",
            "end\\",
        ] {
            let want = json_text::to_vec(s).unwrap();
            let mut out = Vec::new();
            push_str(&mut out, s);
            assert_eq!(out, want, "{s:?}");
            let mut key = Vec::new();
            push_key(&mut key, s);
            assert_eq!(key, [want, b":".to_vec()].concat());
        }
        let cm = json!({"kind": "ConfigMap", "apiVersion": "v1",
                        "metadata": {"name": "x", "annotations": {"a&b": "<p>\u{2028}"}},
                        "data": {"run": "make && make install > log"}});
        assert_eq!(
            text("", "v1", "ConfigMap", &cm),
            concat!(
                r#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"x","annotations":"#,
                r#"{"a\u0026b":"\u003cp\u003e\u2028"}},"data":{"run":"make \u0026\u0026 make install \u003e log"}}"#
            )
        );
    }

    /// A managedFields entry's `fieldsV1` is structured-merge-diff's text (ports by number),
    /// in built-in objects and in custom resources.
    #[test]
    fn fields_v1_is_written_in_structured_merge_diffs_order() {
        let fields = json!({"f:spec": {"f:ports": {
            ".": {},
            "k:{\"port\":443,\"protocol\":\"TCP\"}": {".": {}, "f:port": {}},
            "k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:port": {}},
        }}});
        let want = concat!(
            r#""fieldsV1":{"f:spec":{"f:ports":{".":{},"#,
            r#""k:{\"port\":80,\"protocol\":\"TCP\"}":{".":{},"f:port":{}},"#,
            r#""k:{\"port\":443,\"protocol\":\"TCP\"}":{".":{},"f:port":{}}}}}"#
        );
        let obj = |kind: &str| {
            json!({"kind": kind, "apiVersion": "v1", "metadata": {"name": "s", "managedFields": [
                {"manager": "m", "operation": "Update", "fieldsType": "FieldsV1", "fieldsV1": fields}
            ]}})
        };
        let svc = text("", "v1", "Service", &obj("Service"));
        assert!(svc.contains(want), "{svc}");
        let cr = crate::Structural::for_custom_resource(
            &json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
        );
        let cr = String::from_utf8(cr.to_go_json(&obj("X"))).unwrap();
        assert!(cr.contains(want), "{cr}");
    }

    #[test]
    fn undeclared_fields_follow_the_declared_ones_sorted() {
        let cm = json!({"kind": "ConfigMap", "apiVersion": "v1", "zz": 1, "aa": 2,
                        "metadata": {"name": "x"}, "data": {"k": "v"}});
        assert_eq!(
            text("", "v1", "ConfigMap", &cm),
            r#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"x"},"data":{"k":"v"},"aa":2,"zz":1}"#
        );
    }

    #[test]
    fn metadata_members_can_be_left_out_and_lists_drop_item_types() {
        let s = Schemas::builtin().for_kind("", "v1", "ConfigMap").unwrap();
        let cm = json!({"kind": "ConfigMap", "apiVersion": "v1",
                        "metadata": {"name": "x", "resourceVersion": "3", "uid": "u"}});
        let mut out = Vec::new();
        s.write_go_json(&cm, &["resourceVersion"], &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"x","uid":"u"}}"#
        );
        let list_meta = Schemas::builtin().meta_type("ListMeta");
        let mut out = Vec::new();
        s.write_go_list(
            "ConfigMapList",
            "v1",
            &json!({"continue": "c", "resourceVersion": "9"}),
            list_meta,
            &[cm],
            &mut out,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            concat!(
                r#"{"kind":"ConfigMapList","apiVersion":"v1","metadata":{"resourceVersion":"9","continue":"c"},"#,
                r#""items":[{"metadata":{"name":"x","uid":"u","resourceVersion":"3"}}]}"#
            )
        );
    }
}
