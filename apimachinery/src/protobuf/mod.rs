//! Kubernetes protobuf bodies (`application/vnd.kubernetes.protobuf`): requests transcoded to the
//! JSON that kube-apiserver would produce for the same object, and objects (and watch events)
//! encoded as kube-apiserver writes them (`encode_object`, `encode_watch_event`; see `encode.rs`
//! for the rules and the watch framing).
//!
//! A body is the 4-byte magic `k8s\0` followed by a `runtime.Unknown` envelope:
//! `{typeMeta = 1 {apiVersion = 1, kind = 2}, raw = 2, contentEncoding = 3, contentType = 4}`.
//! `raw` is the object's message; the message type is found from the envelope's apiVersion and
//! kind (`apps/v1` `Deployment` -> `k8s.io.api.apps.v1.Deployment`) and walked with the generated
//! table in `schema.rs` (see `scripts/gen-protobuf-schema.py`).
//!
//! # Zero values
//!
//! gogo-protobuf (which marshals every built-in type in client-go) writes each non-pointer scalar
//! field even when it is zero: a Deployment made by kubectl carries `generateName: ""`,
//! `uid: ""`, `paused: false` and `minReadySeconds: 0` on the wire. Go's JSON encoder then drops
//! them again because their tags say `omitempty`. This decoder does the same from the Go facts
//! recorded in the table: an optional scalar field (string, bytes, bool, int32, int64, double,
//! and IntOrString) whose value is zero is dropped unless the Go field is a pointer
//! (`replicas *int32`, `suspend *bool`, `storageClassName *string`: on the wire only when set, so
//! a zero is meant) or its JSON tag has no `omitempty` (`containerPort`, `ready`). Nested
//! messages are kept whenever present, even empty (`"resources": {}`), as Go's encoder keeps
//! structs. Zero Time/MicroTime values, which Go renders as `null` (or omits with `omitzero`), are
//! omitted. Repeated fields and map values are kept as they are.

mod encode;
#[rustfmt::skip]
mod schema;
mod table;

pub use encode::{
    encode_message, encode_object, encode_watch_event, is_encodable, WATCH_CONTENT_TYPE,
};

use base64::Engine as _;
use serde_json::{Map, Number, Value};

use table::{Field, Kind, Label, Message, Special};

/// The 4 bytes every Kubernetes protobuf body starts with.
pub const MAGIC: &[u8; 4] = b"k8s\0";

/// The media type of Kubernetes protobuf bodies.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// Deepest message nesting accepted (JSONSchemaProps nests itself).
const MAX_DEPTH: usize = 100;

/// Why a protobuf body could not be decoded (or an object encoded).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtobufError {
    /// The body lacks the `k8s\0` prefix.
    #[error(
        "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]"
    )]
    MissingMagic,
    /// The input ended inside a field.
    #[error("unable to decode protobuf: unexpected end of input")]
    Truncated,
    /// Malformed wire data (or, encoding, a JSON value of the wrong type).
    #[error("unable to decode protobuf: {0}")]
    Malformed(String),
    /// The envelope names no apiVersion or kind.
    #[error(
        "Object 'Kind' is missing in protobuf envelope (apiVersion {api_version:?}, kind {kind:?})"
    )]
    MissingKind {
        /// The envelope's apiVersion.
        api_version: String,
        /// The envelope's kind.
        kind: String,
    },
    /// No protobuf schema is known for the envelope's apiVersion and kind.
    #[error("no kind {kind:?} is registered for version {api_version:?} in the protobuf scheme")]
    UnknownKind {
        /// The envelope's apiVersion.
        api_version: String,
        /// The envelope's kind.
        kind: String,
    },
    /// `decode_message` was given a type the table does not have.
    #[error("unknown protobuf message type {0:?}")]
    UnknownMessage(String),
    /// The envelope's contentEncoding is set (no encoding is supported).
    #[error("unsupported protobuf content encoding {0:?}")]
    UnsupportedEncoding(String),
    /// Embedded raw JSON (RawExtension, FieldsV1, JSON) does not parse.
    #[error("unable to decode protobuf: invalid embedded JSON in {field}: {error}")]
    InvalidJson {
        /// The JSON field that holds it.
        field: String,
        /// The parse error.
        error: String,
    },
    /// Messages nested deeper than the limit.
    #[error("unable to decode protobuf: messages nested too deeply")]
    TooDeep,
}

/// Decode a Kubernetes protobuf body (magic + `runtime.Unknown` envelope) into the object's JSON,
/// with `apiVersion` and `kind` from the envelope.
pub fn decode_object(body: &[u8]) -> Result<Value, ProtobufError> {
    let rest = body
        .strip_prefix(MAGIC.as_slice())
        .ok_or(ProtobufError::MissingMagic)?;
    decode_unknown(rest, 0)
}

/// Decode one message of a fully qualified type (`k8s.io.api.core.v1.Pod`) into JSON.
pub fn decode_message(type_name: &str, bytes: &[u8]) -> Result<Value, ProtobufError> {
    let index =
        find_message(type_name).ok_or_else(|| ProtobufError::UnknownMessage(type_name.into()))?;
    decode(index, bytes, 0)
}

/// The fully qualified message type for an apiVersion and kind, if the table has it. Kinds that
/// are not in their group's package (DeleteOptions, CreateOptions, ... sent with the group's
/// apiVersion) are looked up in meta/v1.
pub fn message_type(api_version: &str, kind: &str) -> Option<&'static str> {
    message_index(api_version, kind).map(|i| schema::MESSAGES[i].name)
}

/// The table index of `message_type`'s message.
fn message_index(api_version: &str, kind: &str) -> Option<usize> {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let in_group = schema::GROUPS
        .binary_search_by(|(g, _)| (*g).cmp(group))
        .ok()
        .and_then(|i| find_message(&format!("{}.{version}.{kind}", schema::GROUPS[i].1)));
    in_group.or_else(|| find_message(&format!("k8s.io.apimachinery.pkg.apis.meta.v1.{kind}")))
}

fn find_message(name: &str) -> Option<usize> {
    schema::MESSAGES.binary_search_by(|m| m.name.cmp(name)).ok()
}

/// The envelope (after the magic).
fn decode_unknown(bytes: &[u8], depth: usize) -> Result<Value, ProtobufError> {
    let mut api_version = String::new();
    let mut kind = String::new();
    let mut raw: &[u8] = &[];
    let mut encoding = String::new();
    let mut r = Reader::new(bytes);
    while let Some((tag, wire)) = r.key()? {
        match (tag, wire) {
            (1, WIRE_LEN) => {
                let mut tm = Reader::new(r.bytes()?);
                while let Some((tag, wire)) = tm.key()? {
                    match (tag, wire) {
                        (1, WIRE_LEN) => api_version = tm.string()?,
                        (2, WIRE_LEN) => kind = tm.string()?,
                        _ => tm.skip(wire)?,
                    }
                }
            }
            (2, WIRE_LEN) => raw = r.bytes()?,
            (3, WIRE_LEN) => encoding = r.string()?,
            _ => r.skip(wire)?,
        }
    }
    if !encoding.is_empty() {
        return Err(ProtobufError::UnsupportedEncoding(encoding));
    }
    if api_version.is_empty() || kind.is_empty() {
        return Err(ProtobufError::MissingKind { api_version, kind });
    }
    let index = message_index(&api_version, &kind).ok_or_else(|| ProtobufError::UnknownKind {
        api_version: api_version.clone(),
        kind: kind.clone(),
    })?;
    let mut object = match decode(index, raw, depth)? {
        Value::Object(map) => map,
        _ => return Err(ProtobufError::UnknownKind { api_version, kind }),
    };
    // apiVersion and kind first, as kube-apiserver writes them.
    let mut out = Map::new();
    out.insert("apiVersion".into(), Value::String(api_version));
    out.insert("kind".into(), Value::String(kind));
    out.append(&mut object);
    Ok(Value::Object(out))
}

/// Decode a message by its index in the table.
fn decode(index: usize, bytes: &[u8], depth: usize) -> Result<Value, ProtobufError> {
    if depth > MAX_DEPTH {
        return Err(ProtobufError::TooDeep);
    }
    let message = &schema::MESSAGES[index];
    match message.special {
        Special::None => Ok(Value::Object(decode_fields(message, bytes, depth)?)),
        Special::Time | Special::MicroTime => {
            let (seconds, nanos) = timestamp(bytes)?;
            Ok(match (seconds, nanos) {
                // An empty message is Go's zero time (marshalled as nothing); so is year 1.
                (None, None) | (Some(GO_ZERO_TIME), None | Some(0)) => Value::Null,
                _ => Value::String(format_time(
                    seconds.unwrap_or(0),
                    nanos.unwrap_or(0),
                    message.special == Special::MicroTime,
                )),
            })
        }
        Special::Duration => {
            let mut nanos = 0i64;
            let mut r = Reader::new(bytes);
            while let Some((tag, wire)) = r.key()? {
                match (tag, wire) {
                    (1, WIRE_VARINT) => nanos = r.varint()? as i64,
                    _ => r.skip(wire)?,
                }
            }
            Ok(Value::String(format_duration(nanos)))
        }
        Special::Quantity => {
            let mut s = String::new();
            let mut r = Reader::new(bytes);
            while let Some((tag, wire)) = r.key()? {
                match (tag, wire) {
                    (1, WIRE_LEN) => s = r.string()?,
                    _ => r.skip(wire)?,
                }
            }
            if s.is_empty() {
                s.push('0');
            }
            Ok(Value::String(s))
        }
        Special::IntOrString => {
            let (mut ty, mut int, mut text) = (0i64, 0i32, String::new());
            let mut r = Reader::new(bytes);
            while let Some((tag, wire)) = r.key()? {
                match (tag, wire) {
                    (1, WIRE_VARINT) => ty = r.varint()? as i64,
                    (2, WIRE_VARINT) => int = r.varint()? as i32,
                    (3, WIRE_LEN) => text = r.string()?,
                    _ => r.skip(wire)?,
                }
            }
            match ty {
                0 => Ok(Value::from(int)),
                1 => Ok(Value::String(text)),
                other => Err(ProtobufError::Malformed(format!(
                    "impossible IntOrString.Type {other}"
                ))),
            }
        }
        Special::RawJson => {
            let mut raw: &[u8] = &[];
            let mut r = Reader::new(bytes);
            while let Some((tag, wire)) = r.key()? {
                match (tag, wire) {
                    (1, WIRE_LEN) => raw = r.bytes()?,
                    _ => r.skip(wire)?,
                }
            }
            raw_json(raw, message.name, depth)
        }
        Special::StringList => {
            let mut items = Vec::new();
            let mut r = Reader::new(bytes);
            while let Some((tag, wire)) = r.key()? {
                match (tag, wire) {
                    (1, WIRE_LEN) => items.push(Value::String(r.string()?)),
                    _ => r.skip(wire)?,
                }
            }
            Ok(Value::Array(items))
        }
        Special::SchemaOrArray | Special::SchemaOrBool | Special::SchemaOrStringArray => {
            schema_union(message, bytes, depth)
        }
    }
}

/// apiextensions JSONSchemaPropsOr{Array,Bool,StringArray}: their Go MarshalJSON.
fn schema_union(message: &Message, bytes: &[u8], depth: usize) -> Result<Value, ProtobufError> {
    let mut schema = None;
    let mut list = Vec::new();
    let mut allows = false;
    let mut r = Reader::new(bytes);
    // Schema is tag 1 except in OrBool {allows = 1, schema = 2}.
    let schema_tag = if message.special == Special::SchemaOrBool {
        2
    } else {
        1
    };
    while let Some((tag, wire)) = r.key()? {
        match message.field(tag) {
            Some(field) if tag == schema_tag => {
                let sub = expect_len(&mut r, wire, field)?;
                schema = Some(decode_kind(field, sub, depth)?);
            }
            Some(field) if message.special == Special::SchemaOrBool => {
                expect_wire(wire, WIRE_VARINT, field)?;
                allows = r.varint()? != 0;
            }
            Some(field) => {
                let sub = expect_len(&mut r, wire, field)?;
                list.push(decode_kind(field, sub, depth)?);
            }
            None => r.skip(wire)?,
        }
    }
    Ok(match message.special {
        Special::SchemaOrBool => schema.unwrap_or(Value::Bool(allows)),
        _ if !list.is_empty() => Value::Array(list),
        _ => schema.unwrap_or(Value::Null),
    })
}

/// Decode a length-delimited value of a field's kind (a message or a string/bytes).
fn decode_kind(field: &Field, bytes: &[u8], depth: usize) -> Result<Value, ProtobufError> {
    match field.kind {
        Kind::Message(i) => decode(usize::from(i), bytes, depth + 1),
        Kind::String => Ok(Value::String(String::from_utf8_lossy(bytes).into_owned())),
        Kind::Bytes => Ok(Value::String(
            base64::engine::general_purpose::STANDARD.encode(bytes),
        )),
        _ => Err(ProtobufError::Malformed(format!(
            "field {:?} is not length-delimited",
            field.json
        ))),
    }
}

/// RawExtension / FieldsV1 / JSON bytes: JSON (or a nested protobuf object).
fn raw_json(raw: &[u8], what: &str, depth: usize) -> Result<Value, ProtobufError> {
    if raw.is_empty() {
        return Ok(Value::Null);
    }
    if let Some(rest) = raw.strip_prefix(MAGIC.as_slice()) {
        if depth >= MAX_DEPTH {
            return Err(ProtobufError::TooDeep);
        }
        return decode_unknown(rest, depth + 1);
    }
    serde_json::from_slice(raw).map_err(|e| ProtobufError::InvalidJson {
        field: what.rsplit('.').next().unwrap_or(what).to_string(),
        error: e.to_string(),
    })
}

/// meta/v1 Time / MicroTime {seconds = 1, nanos = 2}.
fn timestamp(bytes: &[u8]) -> Result<(Option<i64>, Option<i32>), ProtobufError> {
    let (mut seconds, mut nanos) = (None, None);
    let mut r = Reader::new(bytes);
    while let Some((tag, wire)) = r.key()? {
        match (tag, wire) {
            (1, WIRE_VARINT) => seconds = Some(r.varint()? as i64),
            (2, WIRE_VARINT) => nanos = Some(r.varint()? as i32),
            _ => r.skip(wire)?,
        }
    }
    Ok((seconds, nanos))
}

/// Decode an ordinary message into a JSON object.
fn decode_fields(
    message: &Message,
    bytes: &[u8],
    depth: usize,
) -> Result<Map<String, Value>, ProtobufError> {
    let mut out = Map::new();
    let mut r = Reader::new(bytes);
    while let Some((tag, wire)) = r.key()? {
        let Some(field) = message.field(tag) else {
            r.skip(wire)?;
            continue;
        };
        match field.label {
            Label::Optional => {
                let value = single(&mut r, wire, field, depth)?;
                if field.inline {
                    if let Value::Object(mut inner) = value {
                        out.append(&mut inner);
                    }
                    continue;
                }
                if value.is_null() || (!field.keep_zero && is_zero_scalar(field, &value)) {
                    // Absent in Go's JSON; a later occurrence of the field still wins.
                    out.remove(field.json);
                    continue;
                }
                out.insert(field.json.to_string(), value);
            }
            Label::Repeated => {
                let slot = out
                    .entry(field.json.to_string())
                    .or_insert_with(|| Value::Array(Vec::new()));
                let Value::Array(items) = slot else {
                    return Err(ProtobufError::Malformed(format!(
                        "field {:?} is both repeated and not",
                        field.json
                    )));
                };
                if wire == WIRE_LEN && is_packable(field.kind) {
                    let mut packed = Reader::new(r.bytes()?);
                    while !packed.done() {
                        items.push(scalar(&mut packed, packed_wire(field.kind), field)?);
                    }
                } else {
                    items.push(single(&mut r, wire, field, depth)?);
                }
            }
            Label::Map => {
                let entry = expect_len(&mut r, wire, field)?;
                let (key, value) = map_entry(entry, field, depth)?;
                let slot = out
                    .entry(field.json.to_string())
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(map) = slot {
                    map.insert(key, value);
                }
            }
        }
    }
    Ok(out)
}

/// One map entry {key = 1, value = 2}; a missing value is the kind's zero value.
fn map_entry(bytes: &[u8], field: &Field, depth: usize) -> Result<(String, Value), ProtobufError> {
    let mut key = String::new();
    let mut value = None;
    let mut r = Reader::new(bytes);
    while let Some((tag, wire)) = r.key()? {
        match tag {
            1 => {
                if wire != WIRE_LEN {
                    return Err(wrong_wire(field));
                }
                key = r.string()?;
            }
            2 => value = Some(single(&mut r, wire, field, depth)?),
            _ => r.skip(wire)?,
        }
    }
    let value = match value {
        Some(v) => v,
        None => match field.kind {
            Kind::Message(_) | Kind::String | Kind::Bytes => decode_kind(field, &[], depth)?,
            Kind::Bool => Value::Bool(false),
            Kind::Double => Value::from(0),
            Kind::Int32 | Kind::Int64 => Value::from(0),
        },
    };
    Ok((key, value))
}

/// One (unpacked) value of a field.
fn single(r: &mut Reader, wire: u8, field: &Field, depth: usize) -> Result<Value, ProtobufError> {
    match field.kind {
        Kind::Message(_) | Kind::String | Kind::Bytes => {
            let bytes = expect_len(r, wire, field)?;
            decode_kind(field, bytes, depth)
        }
        kind => {
            expect_wire(wire, packed_wire(kind), field)?;
            scalar(r, wire, field)
        }
    }
}

/// A numeric or bool value.
fn scalar(r: &mut Reader, wire: u8, field: &Field) -> Result<Value, ProtobufError> {
    Ok(match (field.kind, wire) {
        (Kind::Bool, WIRE_VARINT) => Value::Bool(r.varint()? != 0),
        (Kind::Int32, WIRE_VARINT) => Value::from(r.varint()? as i32),
        (Kind::Int64, WIRE_VARINT) => Value::from(r.varint()? as i64),
        (Kind::Double, WIRE_FIXED64) => double(f64::from_bits(r.fixed64()?))?,
        _ => return Err(wrong_wire(field)),
    })
}

/// A JSON number for a double; integral values print without a fraction, as in Go.
fn double(v: f64) -> Result<Value, ProtobufError> {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return Ok(Value::from(v as i64));
    }
    Number::from_f64(v)
        .map(Value::Number)
        .ok_or_else(|| ProtobufError::Malformed(format!("unsupported float value {v}")))
}

fn is_packable(kind: Kind) -> bool {
    matches!(kind, Kind::Bool | Kind::Int32 | Kind::Int64 | Kind::Double)
}

fn packed_wire(kind: Kind) -> u8 {
    match kind {
        Kind::Double => WIRE_FIXED64,
        _ => WIRE_VARINT,
    }
}

/// The zero value of a scalar-like field: "" / 0 / false, and IntOrString 0 or "".
fn is_zero_scalar(field: &Field, value: &Value) -> bool {
    let scalar_like = match field.kind {
        Kind::Message(i) => schema::MESSAGES[usize::from(i)].special == Special::IntOrString,
        _ => true,
    };
    scalar_like
        && match value {
            Value::Bool(b) => !b,
            Value::Number(n) => n.as_f64() == Some(0.0),
            Value::String(s) => s.is_empty(),
            _ => false,
        }
}

fn expect_wire(wire: u8, want: u8, field: &Field) -> Result<(), ProtobufError> {
    if wire == want {
        Ok(())
    } else {
        Err(wrong_wire(field))
    }
}

fn expect_len<'a>(r: &mut Reader<'a>, wire: u8, field: &Field) -> Result<&'a [u8], ProtobufError> {
    expect_wire(wire, WIRE_LEN, field)?;
    r.bytes()
}

fn wrong_wire(field: &Field) -> ProtobufError {
    ProtobufError::Malformed(format!(
        "wrong wire type for field {:?} (tag {})",
        field.json, field.tag
    ))
}

// --- wire format --------------------------------------------------------------------------------

const WIRE_VARINT: u8 = 0;
const WIRE_FIXED64: u8 = 1;
const WIRE_LEN: u8 = 2;
const WIRE_START_GROUP: u8 = 3;
const WIRE_END_GROUP: u8 = 4;
const WIRE_FIXED32: u8 = 5;

/// A cursor over protobuf wire data.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn varint(&mut self) -> Result<u64, ProtobufError> {
        let mut value = 0u64;
        for i in 0..10 {
            let b = *self.buf.get(self.pos).ok_or(ProtobufError::Truncated)?;
            self.pos += 1;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(value);
            }
        }
        Err(ProtobufError::Malformed(
            "varint longer than 10 bytes".into(),
        ))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtobufError> {
        let end = self.pos.checked_add(n).ok_or(ProtobufError::Truncated)?;
        let out = self
            .buf
            .get(self.pos..end)
            .ok_or(ProtobufError::Truncated)?;
        self.pos = end;
        Ok(out)
    }

    fn fixed64(&mut self) -> Result<u64, ProtobufError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn bytes(&mut self) -> Result<&'a [u8], ProtobufError> {
        let n = self.varint()?;
        let n = usize::try_from(n).map_err(|_| ProtobufError::Truncated)?;
        self.take(n)
    }

    fn string(&mut self) -> Result<String, ProtobufError> {
        Ok(String::from_utf8_lossy(self.bytes()?).into_owned())
    }

    /// The next field key, or None at the end.
    fn key(&mut self) -> Result<Option<(u32, u8)>, ProtobufError> {
        if self.done() {
            return Ok(None);
        }
        let key = self.varint()?;
        let tag = u32::try_from(key >> 3).map_err(|_| {
            ProtobufError::Malformed(format!("field number {} too large", key >> 3))
        })?;
        if tag == 0 {
            return Err(ProtobufError::Malformed("field number 0".into()));
        }
        Ok(Some((tag, (key & 7) as u8)))
    }

    /// Skip a field's value (unknown fields).
    fn skip(&mut self, wire: u8) -> Result<(), ProtobufError> {
        match wire {
            WIRE_VARINT => self.varint().map(drop),
            WIRE_FIXED64 => self.take(8).map(drop),
            WIRE_LEN => self.bytes().map(drop),
            WIRE_FIXED32 => self.take(4).map(drop),
            WIRE_START_GROUP => loop {
                let Some((_, w)) = self.key()? else {
                    return Err(ProtobufError::Truncated);
                };
                if w == WIRE_END_GROUP {
                    return Ok(());
                }
                self.skip(w)?;
            },
            other => Err(ProtobufError::Malformed(format!(
                "invalid wire type {other}"
            ))),
        }
    }
}

// --- Go formats ---------------------------------------------------------------------------------

/// Unix seconds of Go's zero time (0001-01-01T00:00:00Z).
const GO_ZERO_TIME: i64 = -62_135_596_800;

/// RFC 3339 in UTC, `2024-01-02T03:04:05Z`, or with microseconds `2024-01-02T03:04:05.000006Z`.
fn format_time(seconds: i64, nanos: i32, micro: bool) -> String {
    // Normalise nanos into [0, 1e9) as time.Unix does.
    let mut seconds = seconds;
    let mut nanos = i64::from(nanos);
    seconds += nanos.div_euclid(1_000_000_000);
    nanos = nanos.rem_euclid(1_000_000_000);
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (secs / 3600, secs % 3600 / 60, secs % 60);
    if micro {
        format!(
            "{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{:06}Z",
            nanos / 1000
        )
    } else {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Go's `time.Duration.String()`: `1h0m0s`, `1m30s`, `1.5s`, `500ms`, `2µs`, `0s`.
fn format_duration(nanos: i64) -> String {
    let neg = nanos < 0;
    let mut u = nanos.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        if u == 0 {
            return "0s".into();
        }
        let (prec, unit) = if u < 1_000 {
            (0, "ns")
        } else if u < 1_000_000 {
            (3, "µs")
        } else {
            (6, "ms")
        };
        let (frac, whole) = fraction(u, prec);
        out.push_str(&format!("{whole}{frac}{unit}"));
    } else {
        let (frac, secs) = fraction(u, 9);
        u = secs;
        let s = format!("{}{frac}s", u % 60);
        u /= 60;
        if u > 0 {
            let m = u % 60;
            u /= 60;
            if u > 0 {
                out.push_str(&format!("{u}h"));
            }
            out.push_str(&format!("{m}m"));
        }
        out.push_str(&s);
    }
    if neg {
        out.insert(0, '-');
    }
    out
}

/// Split v into v / 10^prec and the fraction ".123" without trailing zeros (empty when zero).
fn fraction(v: u64, prec: u32) -> (String, u64) {
    let div = 10u64.pow(prec);
    let frac = v % div;
    if frac == 0 {
        return (String::new(), v / div);
    }
    let digits = format!("{frac:0width$}", width = prec as usize);
    (format!(".{}", digits.trim_end_matches('0')), v / div)
}

#[cfg(test)]
mod tests;
