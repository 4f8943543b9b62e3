//! JSON objects encoded as kube-apiserver writes them in protobuf: the inverse of the decoder,
//! byte for byte what the gogo-protobuf marshallers of k8s.io/api and k8s.io/apimachinery write
//! for the Go object that the JSON decodes to.
//!
//! # What gogo writes
//!
//! * Fields in ascending field-number order.
//! * An optional field whose Go type cannot be nil (a plain scalar, a named string, a non-pointer
//!   struct) is written always: `generateName: ""`, `paused: false`, `minReadySeconds: 0`, an
//!   empty `metadata` or `resources`. An absent or `null` JSON value is the Go zero value, and a
//!   struct's zero value is itself written field by field (an absent `spec.template` still
//!   carries its ObjectMeta's zero strings).
//! * A nullable field (a pointer, `[]byte`, a named slice such as `Verbs`; `nullable` in the
//!   table) only when set: present and not `null` in the JSON. `replicas: 0` is written;
//!   `caBundle: ""` is written as an empty value.
//! * Repeated fields one element at a time, scalars too (proto2, never packed); maps as entries
//!   `{key = 1, value = 2}` in byte order of their keys (gogo's sortkeys). A map value is written
//!   even when empty, except a `null` `[]byte` value, which writes the entry with its key alone.
//! * int32 and int64 as varints (a negative int32 sign-extended to 10 bytes), bool as a varint,
//!   double as fixed64, bytes from the JSON's base64.
//!
//! The messages with a Go marshaller of their own:
//!
//! * meta/v1 Time: `{seconds = 1, nanos = 2}` with nanos always 0 (`Time.ProtoTime` drops them);
//!   Go's zero time (and `null`) writes an empty message. MicroTime likewise, with the nanos
//!   truncated to microseconds.
//! * meta/v1 Duration `{duration = 1}`: the Go duration string in nanoseconds.
//! * resource.Quantity `{string = 1}`: the canonical string (`Quantity.String()`), "0" when absent.
//! * intstr.IntOrString `{type = 1, intVal = 2, strVal = 3}`: all three always.
//! * runtime.RawExtension, meta/v1 FieldsV1, apiextensions JSON `{raw = 1}`: the compact JSON
//!   text of the value; nothing inside when `null`.
//! * apiextensions JSONSchemaPropsOrBool `{allows = 1, schema = 2}` (a schema sets allows),
//!   OrArray `{schema = 1, jSONSchemas = 2}`, OrStringArray `{schema = 1, property = 2}`.
//! * `json:",inline"` members (a Volume's VolumeSource, a Probe's handler) are read from the
//!   enclosing JSON object.
//!
//! JSON keys the table does not know are ignored (`apiVersion` and `kind` of an object are not
//! message fields: TypeMeta has no protobuf tag). A value of the wrong JSON type is an error.
//!
//! # The envelope
//!
//! `encode_object` writes what the protobuf serializer of k8s.io/apimachinery
//! (`pkg/runtime/serializer/protobuf/protobuf.go`, with `runtime.Unknown.NestedMarshalTo` in
//! `pkg/runtime/types_proto.go`) writes: the magic `k8s\0`, then a `runtime.Unknown` with
//! `typeMeta = 1 {apiVersion = 1, kind = 2}` (both always, from the object's group/version and
//! kind), `raw = 2` (the object's message), and the empty strings `contentEncoding = 3` and
//! `contentType = 4`, which gogo writes because they are plain Go strings. Lists come out the
//! same when the server streams them (`collections.go`: ListMeta = 1, then each item = 2).
//!
//! # Watch streams
//!
//! kube-apiserver answers a protobuf watch (`application/vnd.kubernetes.protobuf;stream=watch`)
//! with frames (k8s.io/apiserver `pkg/endpoints/handlers/watch.go` and `response.go`, the
//! `watchEncoder`; the codec factory's protobuf `StreamSerializer` in apimachinery
//! `pkg/runtime/serializer/codec_factory.go`):
//!
//! * each event is framed by `framer.NewLengthDelimitedFrameWriter`
//!   (apimachinery `pkg/util/framer/framer.go`): a 4-byte big-endian length, then the bytes;
//! * the event is a meta/v1 `WatchEvent {type = 1, object = 2 RawExtension {raw = 1}}` written
//!   by the *raw* serializer (`NewRawSerializer`: no magic, no envelope);
//! * its `object.raw` is the object encoded by the full serializer: magic + envelope, as
//!   `encode_object` writes it (an ERROR event carries a meta/v1 Status this way).

use base64::Engine as _;
use serde_json::{Map, Value};

use super::table::{Field, Kind, Label, Message, Special};
use super::{find_message, message_type, schema, ProtobufError, GO_ZERO_TIME, MAGIC, MAX_DEPTH};
use super::{WIRE_FIXED64, WIRE_LEN, WIRE_VARINT};

/// The media type of a protobuf watch stream.
pub const WATCH_CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf;stream=watch";

/// Encode an object (its `apiVersion` and `kind` pick the message type) as kube-apiserver writes
/// it in protobuf: magic + `runtime.Unknown` envelope. `UnknownKind` when the table has no
/// message for the kind (custom resources, `Table`, which kube serves in JSON only), so the
/// caller can answer in JSON.
pub fn encode_object(obj: &Value) -> Result<Vec<u8>, ProtobufError> {
    let text = |key: &str| {
        obj.get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (api_version, kind) = (text("apiVersion"), text("kind"));
    if api_version.is_empty() || kind.is_empty() {
        return Err(ProtobufError::MissingKind { api_version, kind });
    }
    let index = encodable(&api_version, &kind).ok_or_else(|| ProtobufError::UnknownKind {
        api_version: api_version.clone(),
        kind: kind.clone(),
    })?;
    let mut w = Rev::with_capacity(256);
    // runtime.Unknown, last field first: contentType = 4 and contentEncoding = 3 (empty).
    w.string(4, "");
    w.string(3, "");
    let start = w.len();
    message(&mut w, index, Some(obj), 0)?;
    w.len_field(2, start);
    let start = w.len();
    w.string(2, &kind);
    w.string(1, &api_version);
    w.len_field(1, start);
    w.raw(MAGIC);
    Ok(w.finish())
}

/// Encode one message of a fully qualified type (`k8s.io.api.core.v1.PodSpec`), no envelope.
pub fn encode_message(type_name: &str, v: &Value) -> Result<Vec<u8>, ProtobufError> {
    let index =
        find_message(type_name).ok_or_else(|| ProtobufError::UnknownMessage(type_name.into()))?;
    let mut w = Rev::with_capacity(256);
    message(&mut w, index, Some(v), 0)?;
    Ok(w.finish())
}

/// One frame of a protobuf watch stream: the 4-byte big-endian length, then a meta/v1
/// `WatchEvent {type = 1, object = 2 {raw = 1}}` (no magic, no envelope) whose raw object is
/// `object`, an `encode_object` result. `event_type` is `ADDED`, `MODIFIED`, `DELETED`,
/// `BOOKMARK` or `ERROR`.
pub fn encode_watch_event(event_type: &str, object: &[u8]) -> Vec<u8> {
    let mut w = Rev::with_capacity(object.len() + event_type.len() + 24);
    let start = w.len();
    w.bytes(1, object);
    w.len_field(2, start);
    w.string(1, event_type);
    let size = u32::try_from(w.len()).unwrap_or(u32::MAX);
    w.raw(&size.to_be_bytes());
    w.finish()
}

/// Whether `encode_object` can encode objects of this apiVersion and kind.
pub fn is_encodable(api_version: &str, kind: &str) -> bool {
    encodable(api_version, kind).is_some()
}

/// The table index of an ordinary (object-shaped) message for an apiVersion and kind.
fn encodable(api_version: &str, kind: &str) -> Option<usize> {
    message_type(api_version, kind)
        .and_then(find_message)
        .filter(|&i| schema::MESSAGES[i].special == Special::None)
}

// --- messages -----------------------------------------------------------------------------------

/// Write the body of a message (no key, no length) from its JSON value; None is absent or `null`
/// (Go's zero value).
fn message(
    w: &mut Rev,
    index: usize,
    v: Option<&Value>,
    depth: usize,
) -> Result<(), ProtobufError> {
    if depth > MAX_DEPTH {
        return Err(ProtobufError::TooDeep);
    }
    let msg = &schema::MESSAGES[index];
    let v = v.filter(|v| !v.is_null());
    match msg.special {
        Special::None => fields(w, msg, object(msg, v)?, depth),
        Special::Time | Special::MicroTime => {
            let Some(v) = v else { return Ok(()) };
            let text = v
                .as_str()
                .ok_or_else(|| wrong_type(msg.name, None, "a time string", v))?;
            let (seconds, nanos) = parse_time(text).ok_or_else(|| {
                ProtobufError::Malformed(format!("invalid time {text:?} for {}", short(msg.name)))
            })?;
            if seconds == GO_ZERO_TIME && nanos == 0 {
                return Ok(());
            }
            // Time keeps seconds only; MicroTime keeps microseconds.
            let nanos = if msg.special == Special::MicroTime {
                nanos - nanos % 1000
            } else {
                0
            };
            w.varint_field(2, i64::from(nanos) as u64);
            w.varint_field(1, seconds as u64);
            Ok(())
        }
        Special::Duration => {
            let nanos = match v {
                None => 0,
                Some(v) => {
                    let text = v
                        .as_str()
                        .ok_or_else(|| wrong_type(msg.name, None, "a duration string", v))?;
                    parse_duration(text).ok_or_else(|| {
                        ProtobufError::Malformed(format!("invalid duration {text:?}"))
                    })?
                }
            };
            w.varint_field(1, nanos as u64);
            Ok(())
        }
        Special::Quantity => {
            let text = match v {
                None => "0".to_string(),
                Some(Value::String(s)) => canonical_quantity(s),
                Some(Value::Number(n)) => canonical_quantity(&n.to_string()),
                Some(v) => return Err(wrong_type(msg.name, None, "a quantity string", v)),
            };
            w.string(1, &text);
            Ok(())
        }
        Special::IntOrString => {
            let (ty, int, text) = match v {
                None => (0, 0, ""),
                Some(Value::String(s)) => (1, 0, s.as_str()),
                Some(v @ Value::Number(n)) => {
                    let int = n
                        .as_i64()
                        .and_then(|n| i32::try_from(n).ok())
                        .ok_or_else(|| wrong_type(msg.name, None, "an int32 or a string", v))?;
                    (0, int, "")
                }
                Some(v) => return Err(wrong_type(msg.name, None, "an int32 or a string", v)),
            };
            w.string(3, text);
            w.varint_field(2, i64::from(int) as u64);
            w.varint_field(1, ty);
            Ok(())
        }
        Special::RawJson => {
            if let Some(v) = v {
                let text = serde_json::to_vec(v)
                    .map_err(|e| ProtobufError::Malformed(format!("unencodable JSON: {e}")))?;
                w.bytes(1, &text);
            }
            Ok(())
        }
        Special::StringList => {
            let items = match v {
                None => &[][..],
                Some(Value::Array(items)) => items.as_slice(),
                Some(v) => return Err(wrong_type(msg.name, None, "an array of strings", v)),
            };
            let field = &msg.fields[0];
            for item in items.iter().rev() {
                single(w, msg, field, Some(item), depth)?;
            }
            Ok(())
        }
        Special::SchemaOrBool => {
            // {allows = 1, schema = 2}: a schema object means allows = true.
            let (allows, schema) = match v {
                None => (false, None),
                Some(Value::Bool(b)) => (*b, None),
                Some(v @ Value::Object(_)) => (true, Some(v)),
                Some(v) => return Err(wrong_type(msg.name, None, "a bool or a schema", v)),
            };
            if let Some(schema) = schema {
                single(w, msg, field_at(msg, 2)?, Some(schema), depth)?;
            }
            w.varint_field(1, u64::from(allows));
            Ok(())
        }
        Special::SchemaOrArray | Special::SchemaOrStringArray => {
            // {schema = 1, jSONSchemas / property = 2}: an object is the schema, an array the list.
            match v {
                None => {}
                Some(v @ Value::Object(_)) => single(w, msg, field_at(msg, 1)?, Some(v), depth)?,
                Some(Value::Array(items)) => {
                    let field = field_at(msg, 2)?;
                    for item in items.iter().rev() {
                        single(w, msg, field, Some(item), depth)?;
                    }
                }
                // Go's UnmarshalJSON leaves both unset for any other JSON value.
                Some(_) => {}
            }
            Ok(())
        }
    }
}

fn field_at(msg: &Message, tag: u32) -> Result<&'static Field, ProtobufError> {
    msg.field(tag)
        .ok_or_else(|| ProtobufError::Malformed(format!("{} has no field {tag}", short(msg.name))))
}

/// The JSON object of an ordinary message (None when absent).
fn object<'a>(
    msg: &Message,
    v: Option<&'a Value>,
) -> Result<Option<&'a Map<String, Value>>, ProtobufError> {
    match v {
        None => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(v) => Err(wrong_type(msg.name, None, "an object", v)),
    }
}

/// The fields of an ordinary message, last field first (the writer runs backwards).
fn fields(
    w: &mut Rev,
    msg: &Message,
    obj: Option<&Map<String, Value>>,
    depth: usize,
) -> Result<(), ProtobufError> {
    for field in msg.fields.iter().rev() {
        if field.inline {
            // The member's fields sit in this JSON object.
            let Kind::Message(i) = field.kind else {
                return Err(ProtobufError::Malformed(format!(
                    "inlined field {} of {} is not a message",
                    field.tag,
                    short(msg.name)
                )));
            };
            let start = w.len();
            let inner = &schema::MESSAGES[usize::from(i)];
            if inner.special != Special::None {
                return Err(ProtobufError::Malformed(format!(
                    "inlined {} is not an object",
                    short(inner.name)
                )));
            }
            if depth >= MAX_DEPTH {
                return Err(ProtobufError::TooDeep);
            }
            fields(w, inner, obj, depth + 1)?;
            w.len_field(field.tag, start);
            continue;
        }
        let value = obj.and_then(|o| o.get(field.json)).filter(|v| !v.is_null());
        match field.label {
            Label::Optional => {
                if value.is_none() && field.nullable {
                    continue;
                }
                single(w, msg, field, value, depth)?;
            }
            Label::Repeated => match value {
                None => {}
                Some(Value::Array(items)) => {
                    for item in items.iter().rev() {
                        single(w, msg, field, Some(item), depth)?;
                    }
                }
                Some(v) => return Err(wrong_type(msg.name, Some(field.json), "an array", v)),
            },
            Label::Map => match value {
                None => {}
                Some(Value::Object(map)) => {
                    let mut keys: Vec<&String> = map.keys().collect();
                    keys.sort_unstable();
                    for key in keys.into_iter().rev() {
                        let start = w.len();
                        let v = map.get(key.as_str()).filter(|v| !v.is_null());
                        // A nil []byte value writes no value field.
                        if !(v.is_none() && field.kind == Kind::Bytes) {
                            single_tagged(w, msg, field, 2, v, depth)?;
                        }
                        w.string(1, key);
                        w.len_field(field.tag, start);
                    }
                }
                Some(v) => return Err(wrong_type(msg.name, Some(field.json), "an object", v)),
            },
        }
    }
    Ok(())
}

/// One value of a field with its key (None is the zero value).
fn single(
    w: &mut Rev,
    msg: &Message,
    field: &Field,
    v: Option<&Value>,
    depth: usize,
) -> Result<(), ProtobufError> {
    single_tagged(w, msg, field, field.tag, v, depth)
}

/// One value of a field's kind under `tag` (a map entry's value is tag 2).
fn single_tagged(
    w: &mut Rev,
    msg: &Message,
    field: &Field,
    tag: u32,
    v: Option<&Value>,
    depth: usize,
) -> Result<(), ProtobufError> {
    let v = v.filter(|v| !v.is_null());
    let bad = |want: &str, v: &Value| wrong_type(msg.name, Some(field.json), want, v);
    match field.kind {
        Kind::String => match v {
            None => w.string(tag, ""),
            Some(Value::String(s)) => w.string(tag, s),
            Some(v) => return Err(bad("a string", v)),
        },
        Kind::Bytes => match v {
            None => w.bytes(tag, &[]),
            Some(Value::String(s)) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .map_err(|e| {
                        ProtobufError::Malformed(format!(
                            "invalid base64 in {}.{}: {e}",
                            short(msg.name),
                            field.json
                        ))
                    })?;
                w.bytes(tag, &bytes);
            }
            Some(v) => return Err(bad("a base64 string", v)),
        },
        Kind::Bool => match v {
            None => w.varint_field(tag, 0),
            Some(Value::Bool(b)) => w.varint_field(tag, u64::from(*b)),
            Some(v) => return Err(bad("a bool", v)),
        },
        Kind::Int32 => {
            let n = match v {
                None => 0,
                Some(v) => v
                    .as_i64()
                    .and_then(|n| i32::try_from(n).ok())
                    .ok_or_else(|| bad("an int32", v))?,
            };
            // Sign-extended: a negative int32 is a 10-byte varint.
            w.varint_field(tag, i64::from(n) as u64);
        }
        Kind::Int64 => {
            let n = match v {
                None => 0,
                Some(v) => v.as_i64().ok_or_else(|| bad("an int64", v))?,
            };
            w.varint_field(tag, n as u64);
        }
        Kind::Double => {
            let x = match v {
                None => 0.0,
                Some(v) => v.as_f64().ok_or_else(|| bad("a number", v))?,
            };
            w.raw(&x.to_bits().to_le_bytes());
            w.key(tag, WIRE_FIXED64);
        }
        Kind::Message(i) => {
            let start = w.len();
            message(w, usize::from(i), v, depth + 1)?;
            w.len_field(tag, start);
        }
    }
    Ok(())
}

/// A JSON value of the wrong type for a message (or one of its fields).
fn wrong_type(message: &str, field: Option<&str>, want: &str, got: &Value) -> ProtobufError {
    let got = match got {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    let at = match field {
        Some(field) => format!("{}.{field}", short(message)),
        None => short(message).to_string(),
    };
    ProtobufError::Malformed(format!(
        "invalid value for {at}: expected {want}, got {got}"
    ))
}

/// `k8s.io.api.core.v1.Pod` -> `Pod`.
fn short(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name)
}

/// kube writes `Quantity.String()`, the canonical form; a string that does not parse goes as is.
fn canonical_quantity(text: &str) -> String {
    match crate::quantity::Quantity::parse(text) {
        Some(q) => q.to_string(),
        None => text.to_string(),
    }
}

// --- the writer ---------------------------------------------------------------------------------

/// A protobuf writer that runs backwards, as gogo's `MarshalToSizedBuffer` does: a message's
/// fields are written last first, each value before its length and key, so a nested message's
/// length is known when its key is written. `finish` turns the bytes around.
struct Rev(Vec<u8>);

impl Rev {
    fn with_capacity(n: usize) -> Self {
        Rev(Vec::with_capacity(n))
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    /// Bytes that read as `b` once turned around.
    fn raw(&mut self, b: &[u8]) {
        let start = self.0.len();
        self.0.extend_from_slice(b);
        self.0[start..].reverse();
    }

    fn varint(&mut self, mut v: u64) {
        if v < 0x80 {
            self.0.push(v as u8);
            return;
        }
        let mut tmp = [0u8; 10];
        let mut n = 0;
        while v >= 0x80 {
            tmp[n] = (v as u8) | 0x80;
            v >>= 7;
            n += 1;
        }
        tmp[n] = v as u8;
        self.raw(&tmp[..=n]);
    }

    fn key(&mut self, tag: u32, wire: u8) {
        self.varint((u64::from(tag) << 3) | u64::from(wire));
    }

    fn varint_field(&mut self, tag: u32, v: u64) {
        self.varint(v);
        self.key(tag, WIRE_VARINT);
    }

    /// The length and key of a length-delimited field whose value was written since `start`.
    fn len_field(&mut self, tag: u32, start: usize) {
        self.varint((self.0.len() - start) as u64);
        self.key(tag, WIRE_LEN);
    }

    fn bytes(&mut self, tag: u32, b: &[u8]) {
        let start = self.len();
        self.raw(b);
        self.len_field(tag, start);
    }

    fn string(&mut self, tag: u32, s: &str) {
        self.bytes(tag, s.as_bytes());
    }

    fn finish(mut self) -> Vec<u8> {
        self.0.reverse();
        self.0
    }
}

// --- Go formats ---------------------------------------------------------------------------------

/// RFC 3339 (`time.Parse(time.RFC3339, ...)`, which also takes fractional seconds) to Unix
/// seconds and nanoseconds.
fn parse_time(s: &str) -> Option<(i64, i32)> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !matches!(b[10], b'T' | b't') {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut i = 19;
    let mut nanos = 0i64;
    if b[i] == b'.' || b[i] == b',' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 9 {
                nanos = nanos * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        let digits = i - start;
        if digits == 0 {
            return None;
        }
        for _ in digits..9 {
            nanos *= 10;
        }
    }
    let offset = match b.get(i..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digits = [*h1, *h2, *m1, *m2];
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let h = i64::from((h1 - b'0') * 10 + (h2 - b'0'));
            let m = i64::from((m1 - b'0') * 10 + (m2 - b'0'));
            if h >= 24 || m >= 60 {
                return None;
            }
            let off = h * 3600 + m * 60;
            if *sign == b'-' {
                -off
            } else {
                off
            }
        }
        _ => return None,
    };
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour >= 24
        || minute >= 60
        || second >= 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Some((seconds, nanos as i32))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Go's `time.ParseDuration`: `1h30m`, `1.5s`, `300ms`, `2us`, `-1m`, `0`.
fn parse_duration(s: &str) -> Option<i64> {
    const LIMIT: u64 = 1 << 63;
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        // The integer part.
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let mut v: u64 = 0;
        for c in rest[..int_len].bytes() {
            v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
            if v > LIMIT {
                return None;
            }
        }
        rest = &rest[int_len..];
        // The fraction (digits past what fits are ignored, as Go does).
        let (mut frac, mut scale) = (0u64, 1f64);
        if let Some(after) = rest.strip_prefix('.') {
            let frac_len = after.bytes().take_while(u8::is_ascii_digit).count();
            let mut overflow = false;
            for c in after[..frac_len].bytes() {
                if overflow {
                    continue;
                }
                match frac
                    .checked_mul(10)
                    .and_then(|f| f.checked_add(u64::from(c - b'0')))
                {
                    Some(f) if f <= LIMIT => {
                        frac = f;
                        scale *= 10.0;
                    }
                    _ => overflow = true,
                }
            }
            rest = &after[frac_len..];
            if int_len == 0 && frac_len == 0 {
                return None;
            }
        } else if int_len == 0 {
            return None;
        }
        let unit_len = rest
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map_or(rest.len(), |(i, _)| i);
        let unit: u64 = match &rest[..unit_len] {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        rest = &rest[unit_len..];
        if v > LIMIT / unit {
            return None;
        }
        v *= unit;
        if frac > 0 {
            v += (frac as f64 * (unit as f64 / scale)) as u64;
            if v > LIMIT {
                return None;
            }
        }
        total = total.checked_add(v)?;
        if total > LIMIT {
            return None;
        }
    }
    if neg {
        return Some((total as i64).wrapping_neg());
    }
    i64::try_from(total).ok()
}

#[cfg(test)]
#[path = "encode_tests.rs"]
mod tests;
