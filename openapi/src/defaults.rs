//! Defaulting of custom resources, as kube-apiserver's structural defaulting does it: a declared
//! property that is absent, or `null` without `nullable: true`, gets a deep copy of its
//! `default`; defaults also apply to array items and map values that are `null`; defaults are
//! applied top-down, so the default of an object is itself defaulted. A `null` in a declared,
//! non-nullable property without a default is pruned (`PruneNonNullableNullsWithoutDefaults`).
//!
//! Applied on create, on update and when objects are read from storage, so a default added to a
//! CRD later shows on the objects stored before.

use serde_json::Value;

use crate::schema_node::Node;

/// Apply the defaults of `n` to `v`.
pub(crate) fn apply(n: &Node, v: &mut Value) {
    match v {
        Value::Object(map) => {
            if !n.walk_defaults {
                return;
            }
            if n.prop_defaults {
                for (k, p) in &n.properties {
                    match map.get_mut(k.as_str()) {
                        None => {
                            if let Some(d) = &p.default {
                                map.insert(k.clone(), d.clone());
                            }
                        }
                        Some(x) if x.is_null() && !p.nullable => match &p.default {
                            Some(d) => *x = d.clone(),
                            None => {
                                map.remove(k.as_str());
                            }
                        },
                        Some(_) => {}
                    }
                }
            } else if map.values().any(Value::is_null) {
                map.retain(|k, x| !x.is_null() || n.property(k).is_none_or(|p| p.nullable));
            }
            let additional = n.additional_schema();
            for (k, x) in map.iter_mut() {
                match n.property(k) {
                    Some(p) => apply(p, x),
                    None => {
                        if let Some(a) = additional {
                            if x.is_null() && !a.nullable {
                                if let Some(d) = &a.default {
                                    *x = d.clone();
                                }
                            }
                            apply(a, x);
                        }
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(it) = &n.items {
                if !(it.walk_defaults || it.default.is_some()) {
                    return;
                }
                for x in items.iter_mut() {
                    if x.is_null() && !it.nullable {
                        if let Some(d) = &it.default {
                            *x = d.clone();
                        }
                    }
                    apply(it, x);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_nested_items_maps_and_nulls() {
        let n = Node::parse(&json!({"type": "object", "properties": {"spec": {
        "type": "object", "default": {},
        "properties": {
            "replicas": {"type": "integer", "default": 1},
            "mode": {"type": "string", "default": "auto"},
            "opt": {"type": "string", "nullable": true, "default": "x"},
            "gone": {"type": "string"},
            "ports": {"type": "array", "items": {"type": "object", "properties": {
                "protocol": {"type": "string", "default": "TCP"}}}},
            "byName": {"type": "object", "additionalProperties": {
                "type": "object", "default": {}, "properties": {"weight": {"type": "integer", "default": 5}}}},
        }}}}));
        let mut v = json!({});
        apply(&n, &mut v);
        assert_eq!(
            v,
            json!({"spec": {"replicas": 1, "mode": "auto", "opt": "x"}})
        );

        let mut v = json!({"spec": {"replicas": null, "mode": "manual", "opt": null, "gone": null,
            "ports": [{"port": 1}, {"protocol": "UDP"}], "byName": {"a": null, "b": {"weight": 1}}}});
        apply(&n, &mut v);
        assert_eq!(
            v,
            json!({"spec": {"replicas": 1, "mode": "manual", "opt": null,
                "ports": [{"port": 1, "protocol": "TCP"}, {"protocol": "UDP"}],
                "byName": {"a": {"weight": 5}, "b": {"weight": 1}}}})
        );
    }
}
