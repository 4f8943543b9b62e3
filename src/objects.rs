//! Moving objects between their stored form and what clients see.
//!
//! Stored: JSON bytes at the storage version, without `metadata.resourceVersion` (the store's
//! mod_revision is the resourceVersion, set on the way out, as kube-apiserver does with etcd).

use bytes::Bytes;
use kubox_storage::KeyValue;
use serde_json::{json, Value};

use crate::registry::strategy::{api_version_of, ConversionError};
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
///
/// Layout: `{"metadata":{...},"apiVersion":...}` — metadata first, so that [`stamp`] can add the
/// resourceVersion to the stored bytes without decoding them.
pub fn to_stored(obj: &Value) -> ApiResult<Bytes> {
    let err = |e: serde_json::Error| ApiError::internal(e.to_string());
    let Some(top) = obj.as_object() else {
        return serde_json::to_vec(obj).map(Bytes::from).map_err(err);
    };
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"{\"metadata\":");
    match top.get("metadata").and_then(Value::as_object) {
        Some(meta) => {
            out.push(b'{');
            let mut first = true;
            for (k, v) in meta {
                if k == "resourceVersion" || k == "selfLink" {
                    continue;
                }
                if !first {
                    out.push(b',');
                }
                first = false;
                serde_json::to_writer(&mut out, k).map_err(err)?;
                out.push(b':');
                serde_json::to_writer(&mut out, v).map_err(err)?;
            }
            out.push(b'}');
        }
        None => out.extend_from_slice(b"{}"),
    }
    for (k, v) in top {
        if k == "metadata" {
            continue;
        }
        out.push(b',');
        serde_json::to_writer(&mut out, k).map_err(err)?;
        out.push(b':');
        serde_json::to_writer(&mut out, v).map_err(err)?;
    }
    out.push(b'}');
    Ok(Bytes::from(out))
}

/// The stored bytes with `metadata.resourceVersion` added, without decoding them; None when the
/// bytes do not have the metadata-first layout of [`to_stored`].
pub fn stamp(stored: &[u8], rev: i64) -> Option<Vec<u8>> {
    const HEAD: &[u8] = b"{\"metadata\":{";
    let rest = stored.strip_prefix(HEAD)?;
    let mut out = Vec::with_capacity(stored.len() + 32);
    out.extend_from_slice(HEAD);
    out.extend_from_slice(b"\"resourceVersion\":\"");
    out.extend_from_slice(rev.to_string().as_bytes());
    out.push(b'"');
    if !rest.starts_with(b"}") {
        out.push(b',');
    }
    out.extend_from_slice(rest);
    Some(out)
}

/// Can this resource's stored bytes be served as they are (plus a resourceVersion)? True for
/// built-ins served at their storage version: nothing is converted or defaulted on read.
pub fn servable_as_stored(info: &ResourceInfo) -> bool {
    !info.strategy.is_custom() && info.api_version() == info.storage_api_version
}

/// Convert a stored object to the version a request is served at.
pub async fn to_version(info: &ResourceInfo, obj: Value) -> ApiResult<Value> {
    let mut out = to_version_many(info, vec![obj]).await?;
    out.pop()
        .ok_or_else(|| ApiError::internal("conversion returned no object"))
}

/// Convert stored objects to the version a request is served at, in one conversion call (one
/// ConversionReview for a list). Objects already at that version are not sent.
pub async fn to_version_many(info: &ResourceInfo, objs: Vec<Value>) -> ApiResult<Vec<Value>> {
    let mut objs = to_api_version(info, objs, &info.api_version()).await?;
    // Custom resources are defaulted and pruned when read, as kube-apiserver's storage
    // decoder does: a default added to the CRD later shows on objects stored before.
    if info.strategy.is_custom() {
        objs.iter_mut().for_each(|obj| info.strategy.default(obj));
    }
    Ok(objs)
}

/// Convert an incoming object to the storage version.
pub async fn to_storage_version(info: &ResourceInfo, obj: Value) -> ApiResult<Value> {
    let mut out = convert(info, vec![obj], &info.storage_api_version)
        .await
        .map_err(|e| match e {
            ConversionError::Invalid(m) => ApiError::bad_request(m),
            ConversionError::Failed(m) => ApiError::conversion_failed(m),
        })?;
    let mut obj = out
        .pop()
        .ok_or_else(|| ApiError::internal("conversion returned no object"))?;
    obj["apiVersion"] = json!(info.storage_api_version);
    obj["kind"] = json!(info.kind);
    Ok(obj)
}

/// The version an incoming object is defaulted, prepared and validated at: custom resources at
/// the version of the request (their schema is per version, as in kube-apiserver, and only the
/// store sees the storage version), built-ins at their storage version.
pub async fn to_write_version(info: &ResourceInfo, obj: Value) -> ApiResult<Value> {
    if info.strategy.is_custom() {
        to_version(info, obj).await
    } else {
        to_storage_version(info, obj).await
    }
}

/// Convert objects to any apiVersion the resource is served at (`apiVersion` and `kind` set).
pub async fn to_api_version(
    info: &ResourceInfo,
    objs: Vec<Value>,
    to: &str,
) -> ApiResult<Vec<Value>> {
    let mut objs = convert(info, objs, to).await.map_err(|e| match e {
        ConversionError::Invalid(m) => ApiError::internal(m),
        ConversionError::Failed(m) => ApiError::conversion_failed(m),
    })?;
    for obj in &mut objs {
        obj["apiVersion"] = json!(to);
        obj["kind"] = json!(info.kind);
    }
    Ok(objs)
}

/// Convert the objects not yet at `to` (an object without apiVersion counts as stored at the
/// storage version), keeping their order.
async fn convert(
    info: &ResourceInfo,
    mut objs: Vec<Value>,
    to: &str,
) -> Result<Vec<Value>, ConversionError> {
    let pending: Vec<bool> = objs
        .iter()
        .map(|o| {
            let from = api_version_of(o);
            let from = if from.is_empty() {
                info.storage_api_version.as_str()
            } else {
                from
            };
            from != to
        })
        .collect();
    let batch: Vec<Value> = objs
        .iter_mut()
        .zip(&pending)
        .filter(|(_, p)| **p)
        .map(|(o, _)| {
            let mut o = std::mem::take(o);
            if api_version_of(&o).is_empty() {
                o["apiVersion"] = json!(info.storage_api_version);
            }
            o
        })
        .collect();
    if batch.is_empty() {
        return Ok(objs);
    }
    let sent = batch.len();
    let converted = info.strategy.convert_objects(batch, to).await?;
    if converted.len() != sent {
        return Err(ConversionError::Failed(format!(
            "expected {sent} converted objects, got {}",
            converted.len()
        )));
    }
    let mut converted = converted.into_iter();
    for (o, _) in objs.iter_mut().zip(&pending).filter(|(_, p)| **p) {
        if let Some(c) = converted.next() {
            *o = c;
        }
    }
    Ok(objs)
}

/// Set `obj[key]` to `value`, or remove the key when there is no value.
pub fn set_or_remove(obj: &mut Value, key: &str, value: Option<Value>) {
    match value {
        Some(v) => obj[key] = v,
        None => {
            if let Some(m) = obj.as_object_mut() {
                m.remove(key);
            }
        }
    }
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn stored_bytes_put_metadata_first_and_stamp_adds_the_resource_version() {
        let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "b"},
            "metadata": {"name": "x", "resourceVersion": "9", "uid": "u"}});
        let stored = to_stored(&obj).unwrap();
        assert!(stored.starts_with(b"{\"metadata\":{\"name\""));
        let stamped: Value = serde_json::from_slice(&stamp(&stored, 42).unwrap()).unwrap();
        let mut expected = obj.clone();
        expected["metadata"]["resourceVersion"] = json!("42");
        assert_eq!(stamped, expected);
        let empty = to_stored(&json!({"kind": "X"})).unwrap();
        let stamped: Value = serde_json::from_slice(&stamp(&empty, 1).unwrap()).unwrap();
        assert_eq!(
            stamped,
            json!({"kind": "X", "metadata": {"resourceVersion": "1"}})
        );
        assert!(stamp(b"{\"kind\":\"X\"}", 1).is_none());
    }
}
