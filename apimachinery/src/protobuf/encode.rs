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
//!
//! # The writer
//!
//! As gogo's `MarshalToSizedBuffer` does, the encoder writes backwards, last field first, into
//! one buffer filled from its end (`Back`): a nested message's length is known when its key is
//! written, and nothing is written twice or copied into place. A message's values are found by
//! looking each key of its JSON object up in a hash table of the message's JSON names
//! (`FieldIndex`); raw JSON (FieldsV1, RawExtension) is written as JSON text straight into the
//! buffer; a quantity already in canonical form is written as it is.

use std::borrow::Cow;
use std::sync::LazyLock;

use base64::Engine as _;
use serde_json::{Map, Value};

use super::table::{Field, Kind, Label, Message, Special};

/// The message a managedFields entry's `fieldsV1` is.
const FIELDS_V1: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1";
use super::{find_message, message_index, schema, ProtobufError, GO_ZERO_TIME, MAGIC, MAX_DEPTH};
use super::{WIRE_FIXED64, WIRE_LEN, WIRE_VARINT};

/// The media type of a protobuf watch stream.
pub const WATCH_CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf;stream=watch";

/// Encode an object (its `apiVersion` and `kind` pick the message type) as kube-apiserver writes
/// it in protobuf: magic + `runtime.Unknown` envelope. `UnknownKind` when the table has no
/// message for the kind (custom resources, `Table`, which kube serves in JSON only), so the
/// caller can answer in JSON.
pub fn encode_object(obj: &Value) -> Result<Vec<u8>, ProtobufError> {
    let text = |key: &str| obj.get(key).and_then(Value::as_str).unwrap_or_default();
    let (api_version, kind) = (text("apiVersion"), text("kind"));
    if api_version.is_empty() || kind.is_empty() {
        return Err(ProtobufError::MissingKind {
            api_version: api_version.into(),
            kind: kind.into(),
        });
    }
    let index = encodable(api_version, kind).ok_or_else(|| ProtobufError::UnknownKind {
        api_version: api_version.into(),
        kind: kind.into(),
    })?;
    let mut e = Encoder::new(INITIAL_CAPACITY);
    let w = &mut e.out;
    // runtime.Unknown, last field first: contentType = 4 and contentEncoding = 3 (empty).
    w.string(4, "");
    w.string(3, "");
    let start = w.len();
    e.message(index, Some(obj), 0)?;
    let w = &mut e.out;
    w.len_field(2, start);
    let start = w.len();
    w.string(2, kind);
    w.string(1, api_version);
    w.len_field(1, start);
    w.put(MAGIC);
    Ok(e.out.finish())
}

/// Encode one message of a fully qualified type (`k8s.io.api.core.v1.PodSpec`), no envelope.
pub fn encode_message(type_name: &str, v: &Value) -> Result<Vec<u8>, ProtobufError> {
    let index =
        find_message(type_name).ok_or_else(|| ProtobufError::UnknownMessage(type_name.into()))?;
    let mut e = Encoder::new(INITIAL_CAPACITY);
    e.message(index, Some(v), 0)?;
    Ok(e.out.finish())
}

/// One frame of a protobuf watch stream: the 4-byte big-endian length, then a meta/v1
/// `WatchEvent {type = 1, object = 2 {raw = 1}}` (no magic, no envelope) whose raw object is
/// `object`, an `encode_object` result. `event_type` is `ADDED`, `MODIFIED`, `DELETED`,
/// `BOOKMARK` or `ERROR`.
pub fn encode_watch_event(event_type: &str, object: &[u8]) -> Vec<u8> {
    // Two keys and lengths for the object (at most 1 + 10 bytes each), one for the type, the
    // frame length: the buffer never grows.
    let mut w = Back::with_capacity(object.len() + event_type.len() + 40);
    let start = w.len();
    w.bytes(1, object);
    w.len_field(2, start);
    w.string(1, event_type);
    let size = u32::try_from(w.len()).unwrap_or(u32::MAX);
    w.put(&size.to_be_bytes());
    w.finish()
}

/// Whether `encode_object` can encode objects of this apiVersion and kind.
pub fn is_encodable(api_version: &str, kind: &str) -> bool {
    encodable(api_version, kind).is_some()
}

/// The table index of an ordinary (object-shaped) message for an apiVersion and kind.
fn encodable(api_version: &str, kind: &str) -> Option<usize> {
    message_index(api_version, kind).filter(|&i| schema::MESSAGES[i].special == Special::None)
}

/// What the output buffer starts with: a typical object fits, a list grows it a few times.
const INITIAL_CAPACITY: usize = 4096;

// --- field lookup -------------------------------------------------------------------------------

/// For every message, a hash table from its fields' JSON names to their positions (inlined
/// fields, which have no name, left out), built once. A message's values are found by looking up
/// each key of its JSON object, which usually has far fewer keys than the message has fields:
/// looking up each field in the object instead would search the object once for every field,
/// present or not.
///
/// Open addressing: message `i`'s table is `slots[starts[i]..starts[i + 1]]`, a power of two at
/// least twice its field count, each slot a field position + 1 (0 is empty), probed linearly
/// from the key's hash.
struct FieldIndex {
    starts: Vec<usize>,
    slots: Vec<u8>,
}

static FIELD_INDEX: LazyLock<FieldIndex> = LazyLock::new(|| {
    let mut starts = Vec::with_capacity(schema::MESSAGES.len() + 1);
    let mut slots = Vec::new();
    starts.push(0);
    for msg in schema::MESSAGES {
        let start = slots.len();
        let size = (2 * msg.fields.len()).next_power_of_two();
        slots.resize(start + size, 0);
        let table = &mut slots[start..];
        for (pos, field) in msg.fields.iter().enumerate().filter(|(_, f)| !f.inline) {
            let mut at = name_hash(field.json) & (size - 1);
            while table[at] != 0 {
                at = (at + 1) & (size - 1);
            }
            // Messages have at most a few dozen fields (a test checks that every one is found).
            table[at] = pos as u8 + 1;
        }
        starts.push(slots.len());
    }
    FieldIndex { starts, slots }
});

impl FieldIndex {
    /// Message `index`'s fields and table, to look keys up in with `find`.
    fn of(&self, index: usize) -> (&'static [Field], &[u8]) {
        let table = &self.slots[self.starts[index]..self.starts[index + 1]];
        (schema::MESSAGES[index].fields, table)
    }
}

/// The position among `fields` of the field named `key`, from their `FieldIndex` table.
#[inline]
fn find(fields: &[Field], table: &[u8], key: &str) -> Option<usize> {
    let mask = table.len().checked_sub(1)?;
    let mut at = name_hash(key) & mask;
    loop {
        let pos = usize::from(table[at].checked_sub(1)?);
        if fields[pos].json == key {
            return Some(pos);
        }
        at = (at + 1) & mask;
    }
}

/// A JSON name's hash: its length and first, middle and last bytes, which tell a message's
/// field names apart well enough (a collision costs one more comparison), mixed by a
/// multiplication so that the low bits depend on all of them.
fn name_hash(name: &str) -> usize {
    let b = name.as_bytes();
    let n = b.len();
    let word = match b {
        [] => 0,
        [first, ..] => {
            u64::from(*first)
                | u64::from(b[n / 2]) << 8
                | u64::from(b[n - 1]) << 16
                | (n as u64) << 24
        }
    };
    (word.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) as usize
}

// --- messages -----------------------------------------------------------------------------------

/// The encoder's state: the output and the values of the fields of the messages being written.
struct Encoder<'a> {
    /// The output, written backwards.
    out: Back,
    /// The JSON values of the fields of the messages being written, one slot per field
    /// (absent and `null` are None), outermost message first: a message takes its slots on
    /// entry and gives them back when written, so nested messages share one allocation.
    slots: Vec<Option<&'a Value>>,
}

impl<'a> Encoder<'a> {
    fn new(capacity: usize) -> Self {
        Encoder {
            out: Back::with_capacity(capacity),
            slots: Vec::with_capacity(64),
        }
    }

    /// Write the body of a message (no key, no length) from its JSON value; None is absent or
    /// `null` (Go's zero value).
    fn message(
        &mut self,
        index: usize,
        v: Option<&'a Value>,
        depth: usize,
    ) -> Result<(), ProtobufError> {
        if depth > MAX_DEPTH {
            return Err(ProtobufError::TooDeep);
        }
        let msg = &schema::MESSAGES[index];
        let v = v.filter(|v| !v.is_null());
        let w = &mut self.out;
        match msg.special {
            Special::None => self.fields(index, object(msg, v)?, depth),
            Special::Time | Special::MicroTime => {
                let Some(v) = v else { return Ok(()) };
                let text = v
                    .as_str()
                    .ok_or_else(|| wrong_type(msg.name, None, "a time string", v))?;
                let (seconds, nanos) = parse_time(text).ok_or_else(|| {
                    ProtobufError::Malformed(format!(
                        "invalid time {text:?} for {}",
                        short(msg.name)
                    ))
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
                    None => Cow::Borrowed("0"),
                    Some(Value::String(s)) => canonical_quantity(s),
                    Some(Value::Number(n)) => {
                        Cow::Owned(canonical_quantity(&n.to_string()).into_owned())
                    }
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
                    let start = w.len();
                    match v {
                        // FieldsV1's bytes are structured-merge-diff's text, its members in
                        // their path elements' order.
                        Value::Object(fields) if msg.name == FIELDS_V1 => {
                            let mut text = Vec::with_capacity(256);
                            crate::fieldpath::write_fields_v1(fields, &mut text);
                            w.put(&text);
                        }
                        _ => w.json(v).map_err(|e| {
                            ProtobufError::Malformed(format!("unencodable JSON: {e}"))
                        })?,
                    }
                    w.len_field(1, start);
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
                    self.single(msg, field, Some(item), depth)?;
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
                    self.single(msg, field_at(msg, 2)?, Some(schema), depth)?;
                }
                self.out.varint_field(1, u64::from(allows));
                Ok(())
            }
            Special::SchemaOrArray | Special::SchemaOrStringArray => {
                // {schema = 1, jSONSchemas / property = 2}: an object is the schema, an array
                // the list.
                match v {
                    None => {}
                    Some(v @ Value::Object(_)) => {
                        self.single(msg, field_at(msg, 1)?, Some(v), depth)?
                    }
                    Some(Value::Array(items)) => {
                        let field = field_at(msg, 2)?;
                        for item in items.iter().rev() {
                            self.single(msg, field, Some(item), depth)?;
                        }
                    }
                    // Go's UnmarshalJSON leaves both unset for any other JSON value.
                    Some(_) => {}
                }
                Ok(())
            }
        }
    }

    /// The fields of an ordinary message, last field first (the writer runs backwards).
    fn fields(
        &mut self,
        index: usize,
        obj: Option<&'a Map<String, Value>>,
        depth: usize,
    ) -> Result<(), ProtobufError> {
        let msg = &schema::MESSAGES[index];
        let base = self.slots.len();
        self.slots.resize(base + msg.fields.len(), None);
        if let Some(obj) = obj {
            self.find_values(index, obj, base);
        }
        let written = self.write_fields(msg, base, obj, depth);
        self.slots.truncate(base);
        written
    }

    /// Put the values of message `index`'s fields in `obj` into the slots from `base` (keys the
    /// message does not know are passed over).
    fn find_values(&mut self, index: usize, obj: &'a Map<String, Value>, base: usize) {
        let (fields, table) = FIELD_INDEX.of(index);
        for (key, value) in obj {
            if let Some(pos) = find(fields, table, key) {
                self.slots[base + pos] = Some(value).filter(|v| !v.is_null());
            }
        }
    }

    /// Write the fields of `msg`, whose values are in the slots from `base`, last first.
    fn write_fields(
        &mut self,
        msg: &Message,
        base: usize,
        obj: Option<&'a Map<String, Value>>,
        depth: usize,
    ) -> Result<(), ProtobufError> {
        for (pos, field) in msg.fields.iter().enumerate().rev() {
            if field.inline {
                // The member's fields sit in this JSON object.
                let Kind::Message(i) = field.kind else {
                    return Err(ProtobufError::Malformed(format!(
                        "inlined field {} of {} is not a message",
                        field.tag,
                        short(msg.name)
                    )));
                };
                let i = usize::from(i);
                let inner = &schema::MESSAGES[i];
                if inner.special != Special::None {
                    return Err(ProtobufError::Malformed(format!(
                        "inlined {} is not an object",
                        short(inner.name)
                    )));
                }
                if depth >= MAX_DEPTH {
                    return Err(ProtobufError::TooDeep);
                }
                let start = self.out.len();
                self.fields(i, obj, depth + 1)?;
                self.out.len_field(field.tag, start);
                continue;
            }
            let value = self.slots[base + pos];
            match field.label {
                Label::Optional => {
                    if value.is_none() && field.nullable {
                        continue;
                    }
                    self.single(msg, field, value, depth)?;
                }
                Label::Repeated => match value {
                    None => {}
                    Some(Value::Array(items)) => {
                        for item in items.iter().rev() {
                            self.single(msg, field, Some(item), depth)?;
                        }
                    }
                    Some(v) => return Err(wrong_type(msg.name, Some(field.json), "an array", v)),
                },
                // Entries in byte order of their keys, the map's own order.
                Label::Map => match value {
                    None => {}
                    Some(Value::Object(map)) => {
                        for (key, v) in map.iter().rev() {
                            let start = self.out.len();
                            let v = Some(v).filter(|v| !v.is_null());
                            // A nil []byte value writes no value field.
                            if !(v.is_none() && field.kind == Kind::Bytes) {
                                self.value(msg, field, 2, v, depth)?;
                            }
                            self.out.string(1, key);
                            self.out.len_field(field.tag, start);
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
        &mut self,
        msg: &Message,
        field: &Field,
        v: Option<&'a Value>,
        depth: usize,
    ) -> Result<(), ProtobufError> {
        self.value(msg, field, field.tag, v, depth)
    }

    /// One value of a field's kind under `tag` (a map entry's value is tag 2).
    fn value(
        &mut self,
        msg: &Message,
        field: &Field,
        tag: u32,
        v: Option<&'a Value>,
        depth: usize,
    ) -> Result<(), ProtobufError> {
        let v = v.filter(|v| !v.is_null());
        let bad = |want: &str, v: &Value| wrong_type(msg.name, Some(field.json), want, v);
        let w = &mut self.out;
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
                w.put(&x.to_bits().to_le_bytes());
                w.key(tag, WIRE_FIXED64);
            }
            Kind::Message(i) => {
                let start = w.len();
                self.message(usize::from(i), v, depth + 1)?;
                self.out.len_field(tag, start);
            }
        }
        Ok(())
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
fn canonical_quantity(text: &str) -> Cow<'_, str> {
    if is_canonical_quantity(text) {
        return Cow::Borrowed(text);
    }
    match crate::quantity::Quantity::parse(text) {
        Some(q) => Cow::Owned(q.to_string()),
        None => Cow::Borrowed(text),
    }
}

/// Whether a quantity is written in its canonical form already, as most are (`100m`, `128Mi`,
/// `2`), judged from its text: an integer of at most nine digits (nothing to round or overflow)
/// without a leading zero, and either a decimal suffix (or none) after fewer than three trailing
/// zeros (`1000m` is `1`, `1500m` is `1500m`), or a binary suffix after a number that is not a
/// multiple of 1024 (`2048Ki` is `2Mi`; `Ei` is the largest). Anything else is parsed and
/// printed again.
fn is_canonical_quantity(text: &str) -> bool {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, suffix) = text.split_at(digits);
    if number.is_empty() || number.len() > 9 || number.starts_with('0') {
        return text == "0";
    }
    match suffix {
        "" | "n" | "u" | "m" | "k" | "M" | "G" | "T" | "P" | "E" => !number.ends_with("000"),
        "Ki" | "Mi" | "Gi" | "Ti" | "Pi" => number.parse::<u32>().is_ok_and(|n| n % 1024 != 0),
        "Ei" => true,
        _ => false,
    }
}

/// Whether serde_json escapes this byte in a string.
fn escaped(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// Whether a string has a byte to escape, looked for eight bytes at a time (most strings have
/// none): a word has one when a byte is below 0x20 or, xor'ed with a word of `"` or `\`, zero
/// (the bit tricks of "Bit Twiddling Hacks", exact for whether any byte matches).
fn needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x & HIGH != 0;
    let word = |chunk: &[u8]| {
        let mut w = [0; 8];
        w.copy_from_slice(chunk);
        let x = u64::from_le_bytes(w);
        below(x, 0x20)
            || below(x ^ (ONES * u64::from(b'"')), 1)
            || below(x ^ (ONES * u64::from(b'\\')), 1)
    };
    if bytes.len() < 8 {
        return bytes.iter().any(|&b| escaped(b));
    }
    // The whole words, then the last eight bytes (overlapping the last whole word).
    bytes.chunks_exact(8).any(word) || word(&bytes[bytes.len() - 8..])
}

// --- the writer ---------------------------------------------------------------------------------

/// A protobuf writer that runs backwards, as gogo's `MarshalToSizedBuffer` does: a message's
/// fields are written last first, each value before its length and key, so a nested message's
/// length is known when its key is written. The bytes fill the buffer from its end (`pos` is
/// where the written bytes start); a full buffer moves them to the end of one twice as large.
struct Back {
    buf: Vec<u8>,
    pos: usize,
}

impl Back {
    fn with_capacity(n: usize) -> Self {
        Back {
            buf: vec![0; n],
            pos: n,
        }
    }

    /// Bytes written so far.
    fn len(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Room for `n` more bytes.
    #[inline]
    fn reserve(&mut self, n: usize) {
        if self.pos < n {
            self.grow(n);
        }
    }

    #[cold]
    fn grow(&mut self, n: usize) {
        let len = self.len();
        let size = (self.buf.len() * 2).max(len + n);
        let mut buf = vec![0; size];
        buf[size - len..].copy_from_slice(&self.buf[self.pos..]);
        self.buf = buf;
        self.pos = size - len;
    }

    /// Bytes that come before everything written so far.
    #[inline]
    fn put(&mut self, b: &[u8]) {
        self.reserve(b.len());
        let end = self.pos;
        self.pos -= b.len();
        self.buf[self.pos..end].copy_from_slice(b);
    }

    #[inline]
    fn byte(&mut self, b: u8) {
        self.reserve(1);
        self.pos -= 1;
        self.buf[self.pos] = b;
    }

    #[inline]
    fn varint(&mut self, v: u64) {
        if v < 0x80 {
            self.byte(v as u8);
        } else {
            self.long_varint(v);
        }
    }

    fn long_varint(&mut self, mut v: u64) {
        let mut tmp = [0u8; 10];
        let mut n = 0;
        while v >= 0x80 {
            tmp[n] = (v as u8) | 0x80;
            v >>= 7;
            n += 1;
        }
        tmp[n] = v as u8;
        self.put(&tmp[..=n]);
    }

    fn key(&mut self, tag: u32, wire: u8) {
        self.varint((u64::from(tag) << 3) | u64::from(wire));
    }

    fn varint_field(&mut self, tag: u32, v: u64) {
        self.varint(v);
        self.key(tag, WIRE_VARINT);
    }

    /// The length and key of a length-delimited field whose value was written since `start`
    /// (a `len()`).
    fn len_field(&mut self, tag: u32, start: usize) {
        self.varint((self.len() - start) as u64);
        self.key(tag, WIRE_LEN);
    }

    fn bytes(&mut self, tag: u32, b: &[u8]) {
        self.put(b);
        self.varint(b.len() as u64);
        self.key(tag, WIRE_LEN);
    }

    fn string(&mut self, tag: u32, s: &str) {
        self.bytes(tag, s.as_bytes());
    }

    /// `v` as compact JSON text, byte for byte what `serde_json::to_vec` writes (object keys in
    /// the map's order), written backwards like everything else: the closing bracket first, then
    /// the members last first. Floats are written by serde_json.
    fn json(&mut self, v: &Value) -> Result<(), serde_json::Error> {
        match v {
            Value::Null => self.put(b"null"),
            Value::Bool(true) => self.put(b"true"),
            Value::Bool(false) => self.put(b"false"),
            Value::Number(n) => match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => self.decimal(u),
                (None, Some(i)) => {
                    self.decimal(i.unsigned_abs());
                    self.byte(b'-');
                }
                _ => self.put(&serde_json::to_vec(n)?),
            },
            Value::String(s) => self.json_string(s),
            Value::Array(items) if items.is_empty() => self.put(b"[]"),
            Value::Object(map) if map.is_empty() => self.put(b"{}"),
            // Each item or member is written with the comma before it; the comma before the
            // first becomes the opening bracket.
            Value::Array(items) => {
                self.byte(b']');
                for item in items.iter().rev() {
                    self.json(item)?;
                    self.byte(b',');
                }
                self.buf[self.pos] = b'[';
            }
            Value::Object(map) => {
                self.byte(b'}');
                for (key, value) in map.iter().rev() {
                    self.json(value)?;
                    self.byte(b':');
                    self.json_string(key);
                    self.byte(b',');
                }
                self.buf[self.pos] = b'{';
            }
        }
        Ok(())
    }

    /// A JSON string, escaped as serde_json escapes it: `"`, `\` and the control characters
    /// (`\n`, `\t`, `\r`, `\b`, `\f`, else `\u00xx`); nothing else. The text between escapes is
    /// copied as it is, last run first.
    fn json_string(&mut self, s: &str) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let bytes = s.as_bytes();
        self.byte(b'"');
        if !needs_escape(bytes) {
            self.put(bytes);
            self.byte(b'"');
            return;
        }
        let mut end = bytes.len();
        while let Some(at) = bytes[..end].iter().rposition(|&b| escaped(b)) {
            self.put(&bytes[at + 1..end]);
            match bytes[at] {
                b'"' => self.put(b"\\\""),
                b'\\' => self.put(b"\\\\"),
                b'\n' => self.put(b"\\n"),
                b'\t' => self.put(b"\\t"),
                b'\r' => self.put(b"\\r"),
                0x08 => self.put(b"\\b"),
                0x0c => self.put(b"\\f"),
                c => self.put(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[usize::from(c >> 4)],
                    HEX[usize::from(c & 0xf)],
                ]),
            }
            end = at;
        }
        self.put(&bytes[..end]);
        self.byte(b'"');
    }

    /// An unsigned integer in decimal, last digit first.
    fn decimal(&mut self, mut n: u64) {
        loop {
            self.byte(b'0' + (n % 10) as u8);
            n /= 10;
            if n == 0 {
                break;
            }
        }
    }

    /// The bytes written.
    fn finish(self) -> Vec<u8> {
        let Back { mut buf, pos } = self;
        buf.drain(..pos);
        buf
    }
}

// --- Go formats ---------------------------------------------------------------------------------

/// RFC 3339 (`time.Parse(time.RFC3339, ...)`, which also takes fractional seconds) to Unix
/// seconds and nanoseconds.
fn parse_time(s: &str) -> Option<(i64, i32)> {
    let b = s.as_bytes();
    // Two or four digits.
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        b.get(r)?.iter().try_fold(0, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
        })
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
