//! Content negotiation: what the client sent (JSON, YAML or Kubernetes protobuf) and what it
//! wants back (JSON, YAML, Table, PartialObjectMetadata(List)), and in which encoding: built-in
//! objects, lists, Status and watch events are answered in Kubernetes protobuf
//! (`application/vnd.kubernetes.protobuf`) when the client prefers it, as client-go based tools
//! do; custom resources and Tables stay JSON, as kube's have no protobuf form.

use std::borrow::Cow;
use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use kubox_apimachinery::json_text;
use serde_json::{json, Value};

use crate::body::{bytes_response, Body};
use crate::registry::ResourceInfo;
use crate::status::{ApiError, ApiResult};

/// The body formats a request may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InFormat {
    /// application/json (and every JSON patch type when patching).
    Json,
    /// application/yaml.
    Yaml,
    /// application/vnd.kubernetes.protobuf (create/update/delete bodies; never a patch).
    Protobuf,
}

/// What the client asked to get back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutFormat {
    /// Plain JSON.
    Json,
    /// YAML.
    Yaml,
    /// meta.k8s.io Table (v1 or v1beta1).
    Table {
        /// `v1` or `v1beta1`.
        version: String,
    },
    /// meta.k8s.io PartialObjectMetadata / PartialObjectMetadataList.
    Metadata {
        /// `v1` or `v1beta1`.
        version: String,
        /// PartialObjectMetadataList was asked for (a single object cannot be one, a list
        /// cannot be a PartialObjectMetadata: both are 406, as in kube).
        list: bool,
    },
}

/// One media range of an Accept header, borrowing from the header (lowercased copies only
/// where the header was not lowercase already).
#[derive(Debug, Clone, Default)]
pub struct MediaType<'a> {
    /// `application/json`.
    pub essence: Cow<'a, str>,
    /// Parameters (lowercased keys).
    pub params: Vec<(Cow<'a, str>, &'a str)>,
}

impl MediaType<'_> {
    /// A parameter.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }
}

/// `s` in ASCII lowercase, copied only when it has an uppercase letter.
fn lowercase(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(s.to_ascii_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

/// Parse an Accept (or Content-Type) header into media types, in order.
pub fn parse_media_types(header: &str) -> Vec<MediaType<'_>> {
    header
        .split(',')
        .filter_map(|part| {
            let mut it = part.split(';');
            let essence = lowercase(it.next()?.trim());
            if essence.is_empty() {
                return None;
            }
            let params = it
                .filter_map(|p| {
                    let (k, v) = p.split_once('=')?;
                    Some((lowercase(k.trim()), v.trim().trim_matches('"')))
                })
                .collect();
            Some(MediaType { essence, params })
        })
        .collect()
}

fn header_str(headers: &HeaderMap, name: http::header::HeaderName) -> &str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// Decide the response format from the Accept header, and whether it is written in protobuf.
/// `tables`: the endpoint converts to Tables (kube's endpoints whose storage has no table
/// convertor — the reviews, bindings, evictions, token requests — skip a Table media type and
/// take the next one, 406 if none). `protobuf`: the endpoint's objects have a protobuf form
/// (built-in kinds); without one a protobuf media type is skipped, as kube skips it for custom
/// resources.
pub fn negotiate(
    headers: &HeaderMap,
    tables: bool,
    protobuf: bool,
) -> ApiResult<(OutFormat, bool)> {
    let accept = header_str(headers, http::header::ACCEPT);
    if accept.trim().is_empty() {
        return Ok((OutFormat::Json, false));
    }
    for mt in parse_media_types(accept) {
        let as_ = mt.param("as");
        let g = mt.param("g").unwrap_or_default();
        let v = mt.param("v").unwrap_or("v1").to_string();
        if mt.essence == kubox_apimachinery::protobuf::CONTENT_TYPE {
            if !protobuf {
                continue;
            }
            match as_ {
                None => return Ok((OutFormat::Json, true)),
                // Tables have no protobuf form in kube: the next media type decides.
                Some(kind @ ("PartialObjectMetadata" | "PartialObjectMetadataList"))
                    if g == "meta.k8s.io" && (v == "v1" || v == "v1beta1") =>
                {
                    return Ok((
                        OutFormat::Metadata {
                            version: v,
                            list: kind == "PartialObjectMetadataList",
                        },
                        true,
                    ))
                }
                _ => continue,
            }
        }
        let found = match mt.essence.as_ref() {
            "application/json" | "*/*" | "application/*" => match as_ {
                None => Some(OutFormat::Json),
                Some("Table") if tables && g == "meta.k8s.io" && (v == "v1" || v == "v1beta1") => {
                    Some(OutFormat::Table { version: v })
                }
                Some(kind @ ("PartialObjectMetadata" | "PartialObjectMetadataList"))
                    if g == "meta.k8s.io" && (v == "v1" || v == "v1beta1") =>
                {
                    Some(OutFormat::Metadata {
                        version: v,
                        list: kind == "PartialObjectMetadataList",
                    })
                }
                _ => None,
            },
            "application/yaml" if as_.is_none() => Some(OutFormat::Yaml),
            _ => None,
        };
        if let Some(f) = found {
            return Ok((f, false));
        }
    }
    Err(ApiError::not_acceptable())
}

/// Does the client put protobuf first (the encoding its errors are answered in)?
pub fn prefers_protobuf(headers: &HeaderMap) -> bool {
    parse_media_types(header_str(headers, http::header::ACCEPT))
        .first()
        .is_some_and(|m| {
            m.essence == kubox_apimachinery::protobuf::CONTENT_TYPE && m.param("as").is_none()
        })
}

/// `value` (an object, list or Status with apiVersion and kind) in Kubernetes protobuf; JSON
/// when it has no protobuf form.
pub fn protobuf_response(value: &Value, code: StatusCode) -> http::Response<Body> {
    match kubox_apimachinery::protobuf::encode_object(value) {
        Ok(bytes) => bytes_response(code, kubox_apimachinery::protobuf::CONTENT_TYPE, bytes),
        Err(e) => {
            tracing::debug!(error = %e, "no protobuf form: answered in JSON");
            bytes_response(code, "application/json", json_bytes(value))
        }
    }
}

/// Encode a value in the negotiated format and encoding.
pub fn encode_as(
    value: &Value,
    format: &OutFormat,
    protobuf: bool,
    code: StatusCode,
) -> http::Response<Body> {
    if protobuf && !matches!(format, OutFormat::Yaml | OutFormat::Table { .. }) {
        return protobuf_response(value, code);
    }
    encode(value, format, code)
}

/// The format of a request body. Unknown types are a 415.
pub fn content_format(headers: &HeaderMap) -> ApiResult<InFormat> {
    let ct = header_str(headers, http::header::CONTENT_TYPE);
    let essence = parse_media_types(ct)
        .first()
        .map(|m| m.essence.clone())
        .unwrap_or_default();
    match essence.as_ref() {
        "" | "application/json" | "*/*" => Ok(InFormat::Json),
        "application/yaml" | "application/x-yaml" | "text/yaml" => Ok(InFormat::Yaml),
        kubox_apimachinery::protobuf::CONTENT_TYPE => Ok(InFormat::Protobuf),
        _ => Err(ApiError::unsupported_media_type(ct)),
    }
}

/// Parse YAML text, after a linear pre-scan refused flow collections nested deeper than
/// [`kubox_apimachinery::yaml::MAX_FLOW_DEPTH`] (which the parser handles in quadratic time).
pub fn from_yaml<T: serde::de::DeserializeOwned>(text: &[u8]) -> Result<T, String> {
    kubox_apimachinery::yaml::check_flow_depth(text, kubox_apimachinery::yaml::MAX_FLOW_DEPTH)
        .map_err(|e| e.to_string())?;
    serde_yaml::from_slice(text).map_err(|e| e.to_string())
}

/// Bodies from this size on are decoded off the async worker (see [`cpu_heavy`]).
pub(crate) const LARGE_BODY: usize = 64 * 1024;

/// Run CPU-heavy work of one request without holding up the others: on a multi-threaded
/// runtime the worker first hands its other tasks to another thread (`block_in_place`); on a
/// current-thread runtime (a `#[tokio::test]`) it simply runs.
pub fn cpu_heavy<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

/// Decode a request body into a JSON tree. Malformed input is a 400.
pub fn decode_body(body: &[u8], format: InFormat) -> ApiResult<Value> {
    decode_object(body, format).map(|d| d.value)
}

/// A decoded create or update body.
pub struct Decoded {
    /// The object.
    pub value: Value,
    /// Whether an object in the body may repeat a key: known for JSON, always for YAML (whose
    /// decoder keeps the last), never for protobuf.
    pub maybe_repeated: bool,
}

/// [`decode_body`], noting whether the body may repeat keys (which strict field validation
/// reports).
pub fn decode_object(body: &[u8], format: InFormat) -> ApiResult<Decoded> {
    if body.len() >= LARGE_BODY {
        cpu_heavy(|| decode_body_here(body, format))
    } else {
        decode_body_here(body, format)
    }
}

fn decode_body_here(body: &[u8], format: InFormat) -> ApiResult<Decoded> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "the request body is empty; an object is required",
        ));
    }
    let (v, maybe_repeated) = match format {
        InFormat::Json => crate::json_decode::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
        })?,
        InFormat::Yaml => (
            from_yaml(body).map_err(|e| {
                ApiError::bad_request(format!("error converting YAML to JSON: yaml: {e}"))
            })?,
            true,
        ),
        InFormat::Protobuf => (
            kubox_apimachinery::protobuf::decode_object(body)
                .map_err(|e| ApiError::bad_request(e.to_string()))?,
            false,
        ),
    };
    if !v.is_object() {
        return Err(ApiError::bad_request(format!(
            "couldn't get version/kind; json parse error: cannot unmarshal {} into Go value of type struct",
            json_type(&v)
        )));
    }
    Ok(Decoded {
        value: v,
        maybe_repeated,
    })
}

/// Go's name for a JSON value's type in unmarshal errors.
pub fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Encode a value (object, list or Status) in the plain formats.
pub fn encode(value: &Value, format: &OutFormat, code: StatusCode) -> http::Response<Body> {
    match format {
        OutFormat::Yaml => match serde_yaml::to_string(value) {
            Ok(s) => bytes_response(code, "application/yaml", Bytes::from(s)),
            Err(e) => crate::body::error_response(&ApiError::internal(e.to_string())),
        },
        _ => bytes_response(code, "application/json", json_bytes(value)),
    }
}

/// JSON text indented by two spaces per level, members kept in their order, as Go's
/// `json.MarshalIndent` writes it for `?pretty=true` (empty objects and arrays stay
/// `{}` and `[]`).
pub fn indent(compact: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(compact.len() * 2);
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let newline = |out: &mut Vec<u8>, depth: usize| {
        out.push(b'\n');
        out.extend(std::iter::repeat_n(b' ', depth * 2));
    };
    let mut i = 0;
    while let Some(&c) = compact.get(i) {
        i += 1;
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            b'"' => {
                in_string = true;
                out.push(c);
            }
            b'{' | b'[' => {
                let close = if c == b'{' { b'}' } else { b']' };
                let next = compact[i..].iter().position(|b| !b.is_ascii_whitespace());
                if next.is_some_and(|n| compact[i + n] == close) {
                    out.extend_from_slice(&[c, close]);
                    i += next.unwrap_or(0) + 1;
                } else {
                    out.push(c);
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            b',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            b':' => out.extend_from_slice(b": "),
            c if c.is_ascii_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

/// The JSON text kube-apiserver writes for `value`: built-in objects, their typed lists (items
/// without `kind` and `apiVersion`), Status and the discovery documents in their Go structs'
/// field order; anything else (custom resources, which kube holds as maps) with sorted keys.
/// Strings escaped as Go's encoder escapes them ([`json_text`]: HTML characters too).
pub fn json_bytes(value: &Value) -> Vec<u8> {
    let schemas = kubox_openapi::Schemas::builtin();
    match schemas.for_answer(value) {
        Some(kubox_openapi::Answer::Object(s)) => s.to_go_json(value),
        Some(kubox_openapi::Answer::List(item)) => match value.get("items") {
            Some(Value::Array(items)) => {
                let mut out = Vec::with_capacity(1024);
                item.write_go_list(
                    value["kind"].as_str().unwrap_or_default(),
                    value["apiVersion"].as_str().unwrap_or_default(),
                    &value["metadata"],
                    schemas.meta_type("ListMeta"),
                    items,
                    &mut out,
                );
                out
            }
            _ => json_text::to_vec(value).unwrap_or_default(),
        },
        None => json_text::to_vec(value).unwrap_or_default(),
    }
}

/// PartialObjectMetadata for one object.
pub fn partial_metadata(obj: &Value, version: &str) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": format!("meta.k8s.io/{version}"),
        "metadata": obj.get("metadata").cloned().unwrap_or(json!({})),
    })
}

/// What a Table row carries as its object (`includeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeObject {
    /// No object.
    None,
    /// PartialObjectMetadata (the default).
    Metadata,
    /// The whole object.
    Object,
}

impl IncludeObject {
    /// From the `includeObject` query parameter.
    pub fn parse(v: &str) -> ApiResult<IncludeObject> {
        match v {
            "" | "Metadata" => Ok(IncludeObject::Metadata),
            "None" => Ok(IncludeObject::None),
            "Object" => Ok(IncludeObject::Object),
            other => Err(ApiError::bad_request(format!(
                "includeObject: Unsupported value: \"{other}\": supported values: \"Metadata\", \"None\", \"Object\""
            ))),
        }
    }
}

/// A Table of objects (already at the requested version, with apiVersion/kind set).
pub fn table(
    info: &ResourceInfo,
    objects: &[Value],
    list_meta: Value,
    version: &str,
    include: IncludeObject,
    with_columns: bool,
    now: SystemTime,
) -> Value {
    let columns: Vec<Value> = if with_columns {
        info.strategy
            .columns()
            .iter()
            .map(|c| {
                json!({"name": c.name, "type": c.type_, "format": c.format, "description": c.description, "priority": c.priority})
            })
            .collect()
    } else {
        Vec::new()
    };
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut row = json!({"cells": info.strategy.row_cells(o, now)});
            match include {
                IncludeObject::None => {}
                IncludeObject::Metadata => row["object"] = partial_metadata(o, version),
                IncludeObject::Object => row["object"] = o.clone(),
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": format!("meta.k8s.io/{version}"),
        "metadata": list_meta,
        "columnDefinitions": columns,
        "rows": rows,
    })
}

/// JSON answers framed as kube-apiserver's serializer frames them: API answers (objects,
/// lists, Status, discovery, Tables) end with a newline, or are indented (two spaces, no
/// newline) when the request asks with `?pretty=` (Go's `ParseBool`) or comes from curl, Wget
/// or a browser; `/version` is always indented. Watch streams and the other documents are left
/// as they are.
#[derive(Clone, Copy)]
pub struct JsonFraming;

/// Go's `strconv.ParseBool`.
fn go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// kube's `isPrettyPrint`.
fn pretty_requested(req: &http::Request<Bytes>) -> bool {
    let query = req.uri().query().unwrap_or_default();
    if query.contains("pretty") {
        if let Some(v) = crate::request_info::query_param(query, "pretty").filter(|v| !v.is_empty())
        {
            return go_bool(&v).unwrap_or(false);
        }
    }
    let agent = req
        .headers()
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    agent.starts_with("curl") || agent.starts_with("Wget") || agent.starts_with("Mozilla/5.0")
}

impl crate::chain::Filter for JsonFraming {
    fn call(&self, req: crate::chain::Req, next: &crate::chain::Next) -> crate::chain::BoxFuture {
        use futures::FutureExt;
        use http_body_util::BodyExt;
        let path = req.uri().path();
        let api = path == "/api"
            || path == "/apis"
            || path.starts_with("/api/")
            || path.starts_with("/apis/");
        let version = path.trim_end_matches('/') == "/version";
        let watch = req
            .extensions()
            .get::<std::sync::Arc<crate::request_info::RequestInfo>>()
            .is_some_and(|i| i.verb == "watch");
        let pretty = pretty_requested(&req);
        let answer = next.oneshot(req);
        let framed = move |resp: &http::Response<crate::body::Body>| {
            // An extension server's answer is passed on as it wrote it; `/version` writes its
            // document indented itself, in its own field order.
            let proxied = resp
                .extensions()
                .get::<crate::aggregator::proxy::Proxied>()
                .is_some();
            let json = resp
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|t| t.starts_with("application/json"));
            let indented_version = version && resp.status().is_success();
            // 304 Not Modified has no body, nor a newline.
            let bodiless = resp.status() == http::StatusCode::NOT_MODIFIED;
            json && (api || version) && !proxied && !indented_version && !watch && !bodiless
        };
        if !pretty {
            // The newline follows the body as a frame of its own: nothing is collected or
            // copied, and the length stays exact (a Content-Length).
            return Box::pin(answer.map(move |resp| {
                let resp = resp?;
                if !framed(&resp) {
                    return Ok(resp);
                }
                let (mut parts, body) = resp.into_parts();
                parts.headers.remove(http::header::CONTENT_LENGTH);
                Ok(http::Response::from_parts(
                    parts,
                    crate::body::then_newline(body),
                ))
            }));
        }
        Box::pin(async move {
            let resp = answer.await?;
            if !framed(&resp) {
                return Ok(resp);
            }
            let (mut parts, body) = resp.into_parts();
            let Ok(collected) = body.collect().await;
            parts.headers.remove(http::header::CONTENT_LENGTH);
            Ok(http::Response::from_parts(
                parts,
                crate::body::full(indent(&collected.to_bytes())),
            ))
        })
    }
}
