//! Moving objects between their stored form and what clients see.
//!
//! Stored: JSON bytes at the storage version, without `metadata.resourceVersion` (the store's
//! mod_revision is the resourceVersion, set on the way out, as kube-apiserver does with etcd).

use bytes::Bytes;
use kubox_apimachinery::json_text;
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
/// A built-in object is written as kube-apiserver writes it, in its Go struct's field order
/// (`{"kind":…,"apiVersion":…,"metadata":{"name":…`), so that its stored bytes plus a
/// resourceVersion ([`stamp`]) are the answer to a read. Anything else is written metadata
/// first, then sorted.
pub fn to_stored(obj: &Value) -> ApiResult<Bytes> {
    const NOT_STORED: &[&str] = &["resourceVersion", "selfLink"];
    if let Some(kubox_openapi::Answer::Object(schema)) =
        kubox_openapi::Schemas::builtin().for_answer(obj)
    {
        let mut out = Vec::with_capacity(256);
        schema.write_go_json(obj, NOT_STORED, &mut out);
        return Ok(exact(out));
    }
    let err = |e: serde_json::Error| ApiError::internal(e.to_string());
    let Some(top) = obj.as_object() else {
        return json_text::to_vec(obj).map(exact).map_err(err);
    };
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"{\"metadata\":");
    match top.get("metadata").and_then(Value::as_object) {
        Some(meta) => {
            out.push(b'{');
            let mut first = true;
            for (k, v) in meta {
                if NOT_STORED.contains(&k.as_str()) {
                    continue;
                }
                if !first {
                    out.push(b',');
                }
                first = false;
                json_text::to_writer(&mut out, k).map_err(err)?;
                out.push(b':');
                json_text::to_writer(&mut out, v).map_err(err)?;
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
        json_text::to_writer(&mut out, k).map_err(err)?;
        out.push(b':');
        json_text::to_writer(&mut out, v).map_err(err)?;
    }
    out.push(b'}');
    Ok(exact(out))
}

/// Bytes that keep no spare capacity: the store holds them as long as the object lives (a
/// vector grown by doubling would keep up to twice its length). Shrinking the vector is not
/// enough: an allocator may keep the block it has (mimalloc keeps a block shrunk by less than
/// half, so a 1,400-byte object stayed in a 2,048-byte block), so spare bytes mean a copy
/// into an allocation of the object's own size (in pieces: see `copy`).
fn exact(out: Vec<u8>) -> Bytes {
    if out.capacity() == out.len() {
        Bytes::from(out)
    } else {
        let mut exact = Vec::with_capacity(out.len());
        crate::copy::extend(&mut exact, &out);
        Bytes::from(exact)
    }
}

/// The stored bytes with `metadata.resourceVersion` added where Go's encoder writes it (after
/// `name`, `generateName`, `namespace`, `selfLink` and `uid`), without decoding them; None when
/// the bytes are not an object with a `metadata` object.
pub fn stamp(stored: &[u8], rev: i64) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(stored.len() + 40);
    stamp_into(stored, rev, false, &mut out).then_some(out)
}

/// [`stamp`] for an item of a typed list: its `kind` and `apiVersion` left out, as kube's typed
/// lists (`PodList`) leave them out.
pub fn stamp_list_item(stored: &[u8], rev: i64) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(stored.len() + 40);
    stamp_into(stored, rev, true, &mut out).then_some(out)
}

/// Append [`stamp`] (or, for a list item, [`stamp_list_item`]) of `stored` to `out`; false,
/// with `out` as it was, when the bytes are not an object with a `metadata` object.
pub fn stamp_into(stored: &[u8], rev: i64, list_item: bool, out: &mut Vec<u8>) -> bool {
    if stamp_go_layout(stored, rev, list_item, out) {
        return true;
    }
    let before = out.len();
    let done = stamp_as(stored, rev, list_item, out).is_some();
    if !done {
        out.truncate(before);
    }
    done
}

/// [`stamp_into`] for the layout [`to_stored`] writes built-ins in (`{"kind":"…","apiVersion":
/// "…","metadata":{"name":"…",…`), without parsing: the members before `resourceVersion` are
/// names and a uid, strings without escapes. False, with `out` untouched, for anything else.
fn stamp_go_layout(stored: &[u8], rev: i64, list_item: bool, out: &mut Vec<u8>) -> bool {
    /// After `"`: the closing quote of a string without escapes.
    fn plain_string_end(b: &[u8], from: usize) -> Option<usize> {
        let len = b
            .get(from..)?
            .iter()
            .position(|&c| c == b'"' || c == b'\\')?;
        (b.get(from + len) == Some(&b'"')).then_some(from + len)
    }
    let mut i = 0;
    let take = |prefix: &[u8], i: &mut usize| -> Option<()> {
        stored
            .get(*i..)?
            .starts_with(prefix)
            .then(|| *i += prefix.len())
    };
    let parsed = (|| {
        take(br#"{"kind":""#, &mut i)?;
        let kind_end = plain_string_end(stored, i)?;
        i = kind_end + 1;
        take(br#","apiVersion":""#, &mut i)?;
        i = plain_string_end(stored, i)? + 1;
        let types_end = i;
        take(br#","metadata":{"#, &mut i)?;
        let meta_start = i;
        for key in [
            &br#""name":""#[..],
            br#""generateName":""#,
            br#""namespace":""#,
            br#""uid":""#,
        ] {
            if take(key, &mut i).is_some() {
                i = plain_string_end(stored, i)? + 1;
                if stored.get(i) == Some(&b',') {
                    i += 1;
                } else if stored.get(i) != Some(&b'}') {
                    return None;
                }
            }
        }
        Some((types_end, meta_start))
    })();
    let Some((types_end, meta_start)) = parsed else {
        return false;
    };
    if stored.get(i).is_none() {
        return false;
    }
    if list_item {
        out.extend_from_slice(b"{");
        // `,"metadata":{…` without its comma.
        crate::copy::extend(out, &stored[types_end + 1..i]);
    } else {
        crate::copy::extend(out, &stored[..i]);
    }
    let closes = stored.get(i) == Some(&b'}');
    if closes && i > meta_start {
        // Every member came before resourceVersion: it goes last, after a comma.
        out.push(b',');
    }
    {
        use std::io::Write;
        // Writing into a Vec cannot fail.
        let _ = write!(out, "\"resourceVersion\":\"{rev}\"");
    }
    if !closes {
        out.push(b',');
    }
    crate::copy::extend(out, &stored[i..]);
    true
}

fn stamp_as(stored: &[u8], rev: i64, list_item: bool, out: &mut Vec<u8>) -> Option<()> {
    /// ObjectMeta's fields Go writes before `resourceVersion`.
    const BEFORE: &[&[u8]] = &[b"name", b"generateName", b"namespace", b"selfLink", b"uid"];
    let rv = |out: &mut Vec<u8>| {
        use std::io::Write;
        // Writing into a Vec cannot fail.
        let _ = write!(out, "\"resourceVersion\":\"{rev}\"");
    };
    let mut s = Scan { b: stored, i: 0 };
    s.eat(b'{')?;
    out.push(b'{');
    let mut first = true;
    let mut stamped = false;
    // A list item's `kind` and `apiVersion` still to be left out (Go order has them first).
    let mut types_left = if list_item { 2 } else { 0 };
    while !s.at(b'}') {
        let start = s.i;
        let key = s.string()?;
        s.eat(b':')?;
        if list_item && (key == b"kind" || key == b"apiVersion") {
            s.value()?;
            s.comma();
            types_left -= 1;
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        if key != b"metadata" || stamped {
            s.value()?;
            crate::copy::extend(out, &stored[start..s.i]);
            s.comma();
            continue;
        }
        crate::copy::extend(out, &stored[start..s.i]);
        s.eat(b'{')?;
        out.push(b'{');
        let mut first_member = true;
        while !s.at(b'}') {
            let member = s.i;
            let k = s.string()?;
            if !stamped && !BEFORE.contains(&k) {
                if !first_member {
                    out.push(b',');
                }
                rv(out);
                first_member = false;
                stamped = true;
                if k != b"resourceVersion" && types_left == 0 {
                    // Nothing else changes: the rest is copied as it is.
                    out.push(b',');
                    crate::copy::extend(out, &stored[member..]);
                    return Some(());
                }
            }
            s.eat(b':')?;
            s.value()?;
            if k != b"resourceVersion" {
                if !first_member {
                    out.push(b',');
                }
                crate::copy::extend(out, &stored[member..s.i]);
                first_member = false;
            }
            s.comma();
        }
        if !stamped {
            if !first_member {
                out.push(b',');
            }
            rv(out);
            stamped = true;
        }
        s.eat(b'}')?;
        out.push(b'}');
        s.comma();
        if types_left == 0 && !s.at(b'}') {
            out.push(b',');
            crate::copy::extend(out, &stored[s.i..]);
            return Some(());
        }
    }
    out.push(b'}');
    stamped.then_some(())
}

/// A cursor over JSON text kubox wrote (valid JSON, so little is checked): for [`stamp`], and
/// for the garbage collector's reads of stored objects. Nothing it is given makes it read out
/// of bounds; text that is not JSON gives None or nonsense.
pub(crate) struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scan<'a> {
    /// A scan of `b` from its start.
    pub(crate) fn new(b: &'a [u8]) -> Scan<'a> {
        Scan { b, i: 0 }
    }

    /// Where the scan stands.
    pub(crate) fn pos(&self) -> usize {
        self.i
    }

    fn skip_space(&mut self) {
        while self.b.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    pub(crate) fn at(&mut self, c: u8) -> bool {
        self.skip_space();
        self.b.get(self.i) == Some(&c)
    }

    pub(crate) fn eat(&mut self, c: u8) -> Option<()> {
        self.at(c).then(|| self.i += 1)
    }

    pub(crate) fn comma(&mut self) {
        if self.at(b',') {
            self.i += 1;
        }
    }

    /// A string's raw contents (escapes left as they are).
    pub(crate) fn string(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let start = self.i;
        loop {
            let rest = self.b.get(self.i..)?;
            self.i += rest.iter().position(|&c| c == b'"' || c == b'\\')?;
            if self.b.get(self.i) == Some(&b'"') {
                self.i += 1;
                return self.b.get(start..self.i - 1);
            }
            self.i += 2;
        }
    }

    /// Skip one value.
    pub(crate) fn value(&mut self) -> Option<()> {
        /// The bytes a container's scan stops at.
        static STOPS: [bool; 256] = {
            let mut t = [false; 256];
            t[b'"' as usize] = true;
            t[b'{' as usize] = true;
            t[b'[' as usize] = true;
            t[b'}' as usize] = true;
            t[b']' as usize] = true;
            t
        };
        self.skip_space();
        match self.b.get(self.i)? {
            b'"' => self.string().map(|_| ()),
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    let rest = self.b.get(self.i..)?;
                    self.i += rest.iter().position(|&c| STOPS[usize::from(c)])?;
                    match self.b.get(self.i)? {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        _ => {
                            depth -= 1;
                            if depth == 0 {
                                self.i += 1;
                                return Some(());
                            }
                        }
                    }
                    self.i += 1;
                }
            }
            _ => {
                while self
                    .b
                    .get(self.i)
                    .is_some_and(|c| !matches!(c, b',' | b'}' | b']') && !c.is_ascii_whitespace())
                {
                    self.i += 1;
                }
                Some(())
            }
        }
    }
}

/// Can this resource's stored bytes be served as they are (plus a resourceVersion)? True for
/// built-ins served at their storage version: nothing is converted or defaulted on read.
pub fn servable_as_stored(info: &ResourceInfo) -> bool {
    !info.strategy.is_custom() && info.serves_api_version(&info.storage_api_version)
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

/// Set condition `ty` in `conditions` as kube's condition helpers do: an existing one takes the
/// new status, reason and message, and its `lastTransitionTime` moves to `now` only when the
/// status changes; a new one starts at `now`.
pub fn set_condition(
    conditions: &mut Vec<Value>,
    ty: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: &str,
) {
    match conditions.iter_mut().find(|c| c["type"] == ty) {
        Some(c) => {
            if c["status"] != status {
                c["status"] = Value::from(status);
                c["lastTransitionTime"] = Value::from(now);
            }
            c["reason"] = Value::from(reason);
            c["message"] = Value::from(message);
        }
        None => conditions.push(serde_json::json!({
            "type": ty,
            "status": status,
            "lastTransitionTime": now,
            "reason": reason,
            "message": message,
        })),
    }
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
    fn stored_bytes_keep_no_spare_room_whatever_their_size() {
        for len in [10, crate::copy::PIECE, crate::copy::PIECE + 1, 300_000] {
            let mut out = Vec::with_capacity(2 * len);
            out.extend((0..len).map(|i| (i % 251) as u8));
            let want = out.clone();
            let stored = exact(out);
            assert_eq!(stored, want, "len {len}");
            let owned = stored.try_into_mut().unwrap();
            assert_eq!(owned.capacity(), len, "len {len}");
        }
    }

    #[test]
    fn built_in_objects_are_stored_in_go_order_and_stamped_in_place() {
        let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "b"},
            "metadata": {"name": "x", "resourceVersion": "9", "uid": "u", "labels": {"l": "v"}}});
        let stored = to_stored(&obj).unwrap();
        assert_eq!(
            std::str::from_utf8(&stored).unwrap(),
            r#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"x","uid":"u","labels":{"l":"v"}},"data":{"a":"b"}}"#
        );
        assert_eq!(
            std::str::from_utf8(&stamp(&stored, 42).unwrap()).unwrap(),
            r#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"x","uid":"u","resourceVersion":"42","labels":{"l":"v"}},"data":{"a":"b"}}"#
        );
        assert_eq!(
            std::str::from_utf8(&stamp_list_item(&stored, 42).unwrap()).unwrap(),
            r#"{"metadata":{"name":"x","uid":"u","resourceVersion":"42","labels":{"l":"v"}},"data":{"a":"b"}}"#
        );
    }

    #[test]
    fn stamp_reads_any_layout_and_refuses_what_has_no_metadata() {
        // Custom resources (and objects stored by earlier releases) are metadata first.
        let cr = to_stored(
            &json!({"apiVersion": "x.io/v1", "kind": "X", "spec": {"a": "}\"{"},
            "metadata": {"name": "n", "resourceVersion": "3"}}),
        )
        .unwrap();
        let stamped: Value = serde_json::from_slice(&stamp(&cr, 7).unwrap()).unwrap();
        assert_eq!(
            stamped,
            json!({"apiVersion": "x.io/v1", "kind": "X", "spec": {"a": "}\"{"},
                   "metadata": {"name": "n", "resourceVersion": "7"}})
        );
        let empty = to_stored(&json!({"kind": "X"})).unwrap();
        let stamped: Value = serde_json::from_slice(&stamp(&empty, 1).unwrap()).unwrap();
        assert_eq!(
            stamped,
            json!({"kind": "X", "metadata": {"resourceVersion": "1"}})
        );
        let text = |b: Option<Vec<u8>>| String::from_utf8(b.unwrap()).unwrap();
        let name_only =
            br#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"x"},"data":{}}"#;
        assert_eq!(
            text(stamp(name_only, 4)),
            r#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"x","resourceVersion":"4"},"data":{}}"#
        );
        assert_eq!(
            text(stamp_list_item(name_only, 4)),
            r#"{"metadata":{"name":"x","resourceVersion":"4"},"data":{}}"#
        );
        // Metadata first, as earlier releases stored built-ins.
        let old = br#"{"metadata":{"creationTimestamp":"t","name":"x"},"apiVersion":"v1","data":{},"kind":"ConfigMap"}"#;
        assert_eq!(
            text(stamp_list_item(old, 5)),
            r#"{"metadata":{"resourceVersion":"5","creationTimestamp":"t","name":"x"},"data":{}}"#
        );
        assert_eq!(
            text(stamp(old, 5)),
            r#"{"metadata":{"resourceVersion":"5","creationTimestamp":"t","name":"x"},"apiVersion":"v1","data":{},"kind":"ConfigMap"}"#
        );
        assert!(stamp(b"{\"kind\":\"X\"}", 1).is_none());
        assert!(stamp(b"{\"metadata\":{\"name\":", 1).is_none());
        assert!(stamp(b"[]", 1).is_none());
    }
}
