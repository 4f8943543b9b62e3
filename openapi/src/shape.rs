//! Whether a built-in object surely decodes into its typed form: every value has the JSON type
//! its schema declares, integers fit their format, and times and base64 text parse (as the
//! caller's typed decode parses them).
//!
//! kube-apiserver decodes built-in objects into Go structs, and a value of the wrong type is a
//! 400. Decoding into the typed structs to find out allocates the whole object again; this walk
//! allocates nothing. It is conservative: `true` means the typed decode accepts the object, and
//! `false` only that the typed decode must be asked (for its verdict and its words).

use serde_json::Value;

use crate::structural::{Arena, Format, Node, NodeId, Structural, Type};

/// A string format the typed decode parses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringFormat {
    /// `byte`: base64 text.
    Byte,
    /// `date-time`: an RFC 3339 time.
    DateTime,
}

/// Does `value` surely decode as `schema`'s type (see the module's documentation)? `parses`
/// tells whether a string of a format parses as the typed decode parses it.
pub fn decodes_plainly(
    schema: &Structural,
    value: &Value,
    parses: &dyn Fn(StringFormat, &str) -> bool,
) -> bool {
    Walk {
        arena: &schema.arena,
        parses,
    }
    .plain(schema.root, value)
}

struct Walk<'a> {
    arena: &'a Arena,
    parses: &'a dyn Fn(StringFormat, &str) -> bool,
}

impl Walk<'_> {
    /// `null` is never plain: Go takes it anywhere, the typed decode only for optional fields,
    /// and the schema does not say which fields are required.
    fn plain(&self, id: NodeId, v: &Value) -> bool {
        let n = self.arena.node(id);
        if v.is_null() {
            return false;
        }
        if n.int_or_string {
            return v.is_string() || int32(v);
        }
        match n.ty {
            Type::Any => opaque(n),
            Type::Object => {
                let Some(members) = v.as_object() else {
                    return false;
                };
                if n.properties.is_empty() && n.additional.is_none() {
                    // An empty struct, or a type that keeps any JSON.
                    return true;
                }
                members.iter().all(|(k, child)| {
                    match n.property(k).or(n.additional) {
                        Some(c) => self.plain(c, child),
                        // Undeclared: the typed decode skips it.
                        None => true,
                    }
                })
            }
            Type::Array => match (v.as_array(), n.items) {
                (Some(items), Some(item)) => items.iter().all(|child| self.plain(item, child)),
                _ => false,
            },
            Type::String => v.as_str().is_some_and(|s| match n.format {
                Format::Byte => (self.parses)(StringFormat::Byte, s),
                Format::DateTime => (self.parses)(StringFormat::DateTime, s),
                _ => true,
            }),
            Type::Integer => match n.format {
                Format::Int64 => v.is_i64(),
                _ => int32(v),
            },
            Type::Number => v.is_number(),
            Type::Boolean => v.is_boolean(),
        }
    }
}

/// A node whose Go (and Rust) type keeps any JSON as it is.
fn opaque(n: &Node) -> bool {
    n.preserve_unknown
        && n.properties.is_empty()
        && n.items.is_none()
        && n.additional.is_none()
        && n.alternatives.is_empty()
}

fn int32(v: &Value) -> bool {
    v.as_i64().is_some_and(|i| i32::try_from(i).is_ok())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment() -> &'static Structural {
        crate::Schemas::builtin()
            .for_kind("apps", "v1", "Deployment")
            .unwrap()
    }

    #[test]
    fn plain_objects_pass_and_each_kind_of_doubt_does_not() {
        let ok = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"a": "b"}, "generation": 5_000_000_000_i64},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                     "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
                     "template": {"spec": {"containers": [{"name": "c", "image": "i",
                         "resources": {"limits": {"cpu": "1", "memory": 5}}}]}}}});
        let parses = |f: StringFormat, s: &str| f == StringFormat::DateTime && s.ends_with('Z');
        let plainly = |v: &Value| decodes_plainly(deployment(), v, &parses);
        assert!(plainly(&ok));
        let mut timed = ok.clone();
        timed["metadata"]["creationTimestamp"] = json!("2024-01-01T00:00:00Z");
        assert!(plainly(&timed));
        for (pointer, bad) in [
            ("/spec/replicas", json!("two")),
            ("/spec/replicas", json!(2.0)),
            ("/spec/replicas", json!(3_000_000_000_i64)),
            ("/metadata/generation", json!(1.5)),
            ("/metadata/labels/a", Value::Null),
            ("/metadata/creationTimestamp", Value::Null),
            ("/metadata/labels", json!(["a"])),
            ("/metadata/creationTimestamp", json!("yesterday")),
            ("/spec/strategy/rollingUpdate/maxSurge", json!(1.5)),
            ("/spec/template/spec/containers/0", Value::Null),
            ("/spec/template/spec/containers", json!({})),
            ("/spec/paused", json!("yes")),
        ] {
            let mut v = ok.clone();
            let (parent, key) = pointer.rsplit_once('/').unwrap();
            let parent = v.pointer_mut(parent).unwrap();
            match key.parse::<usize>() {
                Ok(i) => parent[i] = bad.clone(),
                Err(_) => parent[key] = bad.clone(),
            }
            assert!(!plainly(&v), "{pointer} = {bad}");
        }
    }
}
