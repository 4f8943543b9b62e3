//! The JSONPath Kubernetes uses in CRD printer columns (`.spec.replicas`,
//! `.status.conditions[?(@.type=="Ready")].status`, `.metadata.annotations.example\.com/key`):
//! kube's own dialect ([`kubox_apimachinery::jsonpath`]), and the simple dotted paths of scale
//! subresources.

use serde_json::Value;

pub use kubox_apimachinery::jsonpath::{text_of, Template as Path};

/// Dotted field path (`.spec.replicas`, no filters) as its segments.
pub fn simple_segments(path: &str) -> Vec<String> {
    path.trim_start_matches('.')
        .split('.')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Read a simple dotted path.
pub fn get_simple<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    simple_segments(path)
        .iter()
        .try_fold(obj, |v, seg| v.get(seg))
}

/// Write a simple dotted path, creating objects on the way.
pub fn set_simple(obj: &mut Value, path: &str, value: Value) {
    let segs = simple_segments(path);
    let mut cur = obj;
    for (i, seg) in segs.iter().enumerate() {
        if !cur.is_object() {
            *cur = Value::Object(Default::default());
        }
        let Some(m) = cur.as_object_mut() else { return };
        if i + 1 == segs.len() {
            m.insert(seg.clone(), value);
            return;
        }
        cur = m
            .entry(seg.clone())
            .or_insert_with(|| Value::Object(Default::default()));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn simple_paths_read_and_write() {
        let mut obj = json!({});
        set_simple(&mut obj, ".spec.replicas", json!(3));
        assert_eq!(get_simple(&obj, ".spec.replicas"), Some(&json!(3)));
    }
}
