//! The JSONPath Kubernetes uses in CRD printer columns, scale paths and selectable fields
//! (`.spec.replicas`, `.status.conditions[?(@.type=="Ready")].status`), evaluated with
//! serde_json_path (RFC 9535) after turning the Kubernetes form into a `$`-rooted query.

use serde_json::Value;
use serde_json_path::JsonPath;

/// A parsed Kubernetes JSONPath.
#[derive(Debug, Clone)]
pub struct Path {
    query: JsonPath,
}

impl Path {
    /// Parse `.spec.x` / `{.spec.x}` / `$.spec.x`.
    pub fn parse(raw: &str) -> Result<Path, String> {
        let inner = raw
            .trim()
            .trim_start_matches('{')
            .trim_end_matches('}')
            .trim();
        let rooted = if inner.starts_with('$') {
            inner.to_string()
        } else if inner.starts_with('.') || inner.starts_with('[') {
            format!("${inner}")
        } else {
            format!("$.{inner}")
        };
        let query =
            JsonPath::parse(&rooted).map_err(|e| format!("invalid JSONPath {raw:?}: {e}"))?;
        Ok(Path { query })
    }

    /// Every value the path selects.
    pub fn values<'a>(&self, obj: &'a Value) -> Vec<&'a Value> {
        self.query.query(obj).all()
    }

    /// The first selected value.
    #[cfg(test)]
    pub fn first<'a>(&self, obj: &'a Value) -> Option<&'a Value> {
        self.values(obj).into_iter().next()
    }
}

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
    fn kubernetes_paths_with_filters_select_values() {
        let obj = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Other", "status": "False"}]}});
        let p = Path::parse(".status.conditions[?(@.type==\"Ready\")].status").unwrap();
        assert_eq!(p.first(&obj), Some(&json!("True")));
        assert_eq!(
            Path::parse("{.status.conditions[1].type}")
                .unwrap()
                .first(&obj),
            Some(&json!("Other"))
        );
    }

    #[test]
    fn simple_paths_read_and_write() {
        let mut obj = json!({});
        set_simple(&mut obj, ".spec.replicas", json!(3));
        assert_eq!(get_simple(&obj, ".spec.replicas"), Some(&json!(3)));
    }
}
