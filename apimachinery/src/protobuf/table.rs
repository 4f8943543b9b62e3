//! The shape of the generated protobuf schema (`schema.rs`, made by
//! `scripts/gen-protobuf-schema.py`): messages, their fields, how each field maps to JSON and
//! when gogo-protobuf writes it.

/// The wire kind of a field (of a map's value, for `Label::Map`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `string`: a UTF-8 JSON string.
    String,
    /// `bytes`: a base64 JSON string.
    Bytes,
    /// `bool`.
    Bool,
    /// `int32` (negative values are 10-byte varints).
    Int32,
    /// `int64`.
    Int64,
    /// `double` (fixed64).
    Double,
    /// A nested message: an index into `MESSAGES`.
    Message(u16),
}

/// How often a field occurs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Label {
    /// At most once (proto2 `optional`; the last occurrence wins).
    Optional,
    /// `repeated`: a JSON array (scalars packed or not).
    Repeated,
    /// `map<string, kind>`: repeated entries {key = 1, value = 2}, a JSON object.
    Map,
}

/// Messages whose JSON form is not an object of their fields (a custom MarshalJSON in Go).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Special {
    /// An ordinary message: a JSON object.
    None,
    /// meta/v1 Time {seconds = 1, nanos = 2}: RFC 3339 at second precision, null when zero.
    Time,
    /// meta/v1 MicroTime: RFC 3339 with six fractional digits, null when zero.
    MicroTime,
    /// meta/v1 Duration {duration = 1 (ns)}: a Go duration string.
    Duration,
    /// resource.Quantity {string = 1}: the string.
    Quantity,
    /// intstr.IntOrString {type = 1, intVal = 2, strVal = 3}: a number or a string.
    IntOrString,
    /// runtime.RawExtension, meta/v1 FieldsV1, apiextensions JSON {raw = 1}: the raw JSON.
    RawJson,
    /// A named `[]string` (ExtraValue, Verbs) {items = 1}: a JSON array.
    StringList,
    /// apiextensions JSONSchemaPropsOrArray {schema = 1, jSONSchemas = 2}.
    SchemaOrArray,
    /// apiextensions JSONSchemaPropsOrBool {allows = 1, schema = 2}.
    SchemaOrBool,
    /// apiextensions JSONSchemaPropsOrStringArray {schema = 1, property = 2}.
    SchemaOrStringArray,
}

/// One field of a message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field {
    /// The protobuf field number.
    pub tag: u32,
    /// The JSON key (empty for inlined fields).
    pub json: &'static str,
    /// The wire kind (of the map value for maps).
    pub kind: Kind,
    /// Optional, repeated or map.
    pub label: Label,
    /// Keep the zero value ("" / 0 / false / IntOrString 0) of an optional field: the Go field
    /// is a pointer or its JSON tag has no `omitempty`.
    pub keep_zero: bool,
    /// The Go field can be nil (a pointer, `[]byte` or a named slice): gogo writes it only when
    /// set. Other optional fields (plain scalars, non-pointer structs) are written always, zero
    /// or not. Always false for repeated, map and inlined fields.
    pub nullable: bool,
    /// `json:",inline"`: the nested message's fields belong to this JSON object.
    pub inline: bool,
}

/// One protobuf message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Message {
    /// Fully qualified name (`k8s.io.api.core.v1.Pod`).
    pub name: &'static str,
    /// A JSON form other than an object.
    pub special: Special,
    /// Fields, sorted by tag.
    pub fields: &'static [Field],
}

impl Message {
    /// The field with this tag.
    pub(crate) fn field(&self, tag: u32) -> Option<&'static Field> {
        self.fields
            .binary_search_by_key(&tag, |f| f.tag)
            .ok()
            .map(|i| &self.fields[i])
    }
}

/// What a field is besides its tag, JSON name and kind.
#[derive(Clone, Copy)]
struct Flags {
    label: Label,
    keep_zero: bool,
    nullable: bool,
    inline: bool,
}

const fn field(tag: u32, json: &'static str, kind: Kind, flags: Flags) -> Field {
    Field {
        tag,
        json,
        kind,
        label: flags.label,
        keep_zero: flags.keep_zero,
        nullable: flags.nullable,
        inline: flags.inline,
    }
}

const fn optional_flags(keep_zero: bool, nullable: bool) -> Flags {
    Flags {
        label: Label::Optional,
        keep_zero,
        nullable,
        inline: false,
    }
}

/// An optional field, always written, whose zero value is dropped from JSON.
pub(crate) const fn optional(tag: u32, json: &'static str, kind: Kind) -> Field {
    field(tag, json, kind, optional_flags(false, false))
}

/// An optional field, always written, whose zero value is kept in JSON.
pub(crate) const fn optional_keep_zero(tag: u32, json: &'static str, kind: Kind) -> Field {
    field(tag, json, kind, optional_flags(true, false))
}

/// A nullable optional field (written only when set) whose zero value is dropped from JSON.
pub(crate) const fn nullable(tag: u32, json: &'static str, kind: Kind) -> Field {
    field(tag, json, kind, optional_flags(false, true))
}

/// A nullable optional field (written only when set) whose zero value is kept in JSON.
pub(crate) const fn nullable_keep_zero(tag: u32, json: &'static str, kind: Kind) -> Field {
    field(tag, json, kind, optional_flags(true, true))
}

const fn list_flags(label: Label) -> Flags {
    Flags {
        label,
        keep_zero: false,
        nullable: false,
        inline: false,
    }
}

/// A repeated field.
pub(crate) const fn repeated(tag: u32, json: &'static str, kind: Kind) -> Field {
    field(tag, json, kind, list_flags(Label::Repeated))
}

/// A `map<string, kind>` field.
pub(crate) const fn map(tag: u32, json: &'static str, kind: Kind) -> Field {
    field(tag, json, kind, list_flags(Label::Map))
}

/// An inlined message field.
pub(crate) const fn inline(tag: u32, kind: Kind) -> Field {
    let flags = Flags {
        label: Label::Optional,
        keep_zero: true,
        nullable: false,
        inline: true,
    };
    field(tag, "", kind, flags)
}

/// A message.
pub(crate) const fn msg(name: &'static str, special: Special, fields: &'static [Field]) -> Message {
    Message {
        name,
        special,
        fields,
    }
}
