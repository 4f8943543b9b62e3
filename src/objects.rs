//! Moving objects between their stored form and what clients see.
//!
//! Stored: JSON bytes at the storage version, without `metadata.resourceVersion` (the store's
//! mod_revision is the resourceVersion, set on the way out, as kube-apiserver does with etcd).

use bytes::Bytes;
use kubox_storage::KeyValue;
use serde_json::{json, Value};

use crate::registry::ResourceInfo;
use crate::status::{ApiError, ApiResult};

/// Decode a stored value and stamp its resourceVersion.
pub fn from_stored(kv: &KeyValue) -> ApiResult<Value> {
    let mut obj: Value = serde_json::from_slice(&kv.value)
        .map_err(|e| ApiError::internal(format!("stored object {} is not JSON: {e}", kv.key)))?;
    set_resource_version(&mut obj, kv.mod_revision);
    Ok(obj)
}

/// Set metadata.resourceVersion.
pub fn set_resource_version(obj: &mut Value, rev: i64) {
    if !obj["metadata"].is_object() {
        obj["metadata"] = json!({});
    }
    obj["metadata"]["resourceVersion"] = json!(rev.to_string());
}

/// Encode an object for storage (resourceVersion removed).
pub fn to_stored(obj: &Value) -> ApiResult<Bytes> {
    let mut o = obj.clone();
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
        m.remove("selfLink");
    }
    serde_json::to_vec(&o)
        .map(Bytes::from)
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// Convert a stored object to the version a request is served at.
pub fn to_version(info: &ResourceInfo, obj: Value) -> ApiResult<Value> {
    let served = info.api_version();
    let mut obj = if served == info.storage_api_version {
        obj
    } else {
        info.strategy
            .convert(obj, &info.storage_api_version, &served)
            .map_err(ApiError::internal)?
    };
    obj["apiVersion"] = json!(served);
    obj["kind"] = json!(info.kind);
    Ok(obj)
}

/// Convert an incoming object to the storage version.
pub fn to_storage_version(info: &ResourceInfo, obj: Value) -> ApiResult<Value> {
    let served = info.api_version();
    let mut obj = if served == info.storage_api_version {
        obj
    } else {
        info.strategy
            .convert(obj, &served, &info.storage_api_version)
            .map_err(ApiError::bad_request)?
    };
    obj["apiVersion"] = json!(info.storage_api_version);
    obj["kind"] = json!(info.kind);
    Ok(obj)
}

/// metadata.name.
pub fn name_of(obj: &Value) -> &str {
    obj["metadata"]["name"].as_str().unwrap_or_default()
}

/// metadata.namespace.
pub fn namespace_of(obj: &Value) -> &str {
    obj["metadata"]["namespace"].as_str().unwrap_or_default()
}

/// metadata.labels as a map.
pub fn labels_of(obj: &Value) -> std::collections::BTreeMap<String, String> {
    obj["metadata"]["labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// RFC 3339 timestamp at second precision, as metav1.Time.
pub fn timestamp(t: std::time::SystemTime) -> String {
    let dt: chrono::DateTime<chrono::Utc> = t.into();
    dt.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
