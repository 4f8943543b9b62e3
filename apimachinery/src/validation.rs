//! Validation of names, labels, annotations and object metadata, with Kubernetes' messages.
//!
//! This mirrors `k8s.io/apimachinery/pkg/util/validation` (the `is_*` checks, which return the
//! list of problems as plain strings), `k8s.io/apimachinery/pkg/util/validation/field` (the
//! [`FieldError`] type, whose `Display` is Go's `field.Error.Error()`),
//! `k8s.io/apimachinery/pkg/api/validation` (object metadata on create and update) and
//! `apis/meta/v1/validation` (labels and label selectors).
//!
//! Messages follow the long-stable wording of Kubernetes 1.2x (`must be no more than 63
//! characters`, `a qualified name ...`, `a lowercase RFC 1123 subdomain ...`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{json, Map, Value};

// ---------------------------------------------------------------------------------------------
// Field errors
// ---------------------------------------------------------------------------------------------

/// The machine-readable kind of a [`FieldError`] (Go's `field.ErrorType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldErrorKind {
    /// A required value is missing (`FieldValueRequired`).
    Required,
    /// The value is malformed (`FieldValueInvalid`).
    Invalid,
    /// The value is well formed but not permitted here (`FieldValueForbidden`).
    Forbidden,
    /// The value is too long (`FieldValueTooLong`).
    TooLong,
    /// A value that must be unique is repeated (`FieldValueDuplicate`).
    Duplicate,
    /// The value is not one of an enumerated set (`FieldValueNotSupported`).
    NotSupported,
    /// The value has the wrong type (`FieldValueTypeInvalid`).
    TypeInvalid,
    /// A referenced value was not found (`FieldValueNotFound`).
    NotFound,
    /// A list has too many items (`FieldValueTooMany`).
    TooMany,
    /// An error not caused by user input (`InternalError`).
    Internal,
}

impl FieldErrorKind {
    /// The `CauseType` string Kubernetes puts in `Status.details.causes[].reason`.
    pub fn reason(self) -> &'static str {
        match self {
            FieldErrorKind::Required => "FieldValueRequired",
            FieldErrorKind::Invalid => "FieldValueInvalid",
            FieldErrorKind::Forbidden => "FieldValueForbidden",
            FieldErrorKind::TooLong => "FieldValueTooLong",
            FieldErrorKind::Duplicate => "FieldValueDuplicate",
            FieldErrorKind::NotSupported => "FieldValueNotSupported",
            FieldErrorKind::TypeInvalid => "FieldValueTypeInvalid",
            FieldErrorKind::NotFound => "FieldValueNotFound",
            FieldErrorKind::TooMany => "FieldValueTooMany",
            FieldErrorKind::Internal => "InternalError",
        }
    }

    /// The human-readable label used in messages (`Invalid value`, `Required value`, ...).
    pub fn label(self) -> &'static str {
        match self {
            FieldErrorKind::Required => "Required value",
            FieldErrorKind::Invalid | FieldErrorKind::TypeInvalid => "Invalid value",
            FieldErrorKind::Forbidden => "Forbidden",
            FieldErrorKind::TooLong => "Too long",
            FieldErrorKind::Duplicate => "Duplicate value",
            FieldErrorKind::NotSupported => "Unsupported value",
            FieldErrorKind::NotFound => "Not found",
            FieldErrorKind::TooMany => "Too many",
            FieldErrorKind::Internal => "Internal error",
        }
    }
}

/// One field-level validation error (Go's `field.Error`).
///
/// `value` holds the bad value *as Go renders it in the message*: strings are already quoted
/// (`"Foo"`), numbers are bare (`-1`), lists look like `[]string{"a", "b"}`. Use the
/// constructors ([`FieldError::invalid`] quotes a string for you) rather than building the
/// struct by hand. `None` means the message carries no value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the offending field, e.g. `metadata.name` or `metadata.ownerReferences.uid`.
    pub field: String,
    /// What kind of problem this is.
    pub kind: FieldErrorKind,
    /// The bad value, rendered as Go renders it (see the type documentation).
    pub value: Option<String>,
    /// The detail message, e.g. `field is immutable`.
    pub message: String,
}

impl FieldError {
    fn new(
        field: impl Into<String>,
        kind: FieldErrorKind,
        value: Option<String>,
        message: impl Into<String>,
    ) -> Self {
        FieldError {
            field: field.into(),
            kind,
            value,
            message: message.into(),
        }
    }

    /// `field.Required`: the value is missing.
    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(field, FieldErrorKind::Required, None, detail)
    }

    /// `field.Invalid` for a string value (it is quoted like Go's `%q`).
    pub fn invalid(field: impl Into<String>, value: &str, detail: impl Into<String>) -> Self {
        Self::new(
            field,
            FieldErrorKind::Invalid,
            Some(go_quote(value)),
            detail,
        )
    }

    /// `field.Invalid` for a value already rendered as Go would (numbers, lists, structs).
    pub fn invalid_rendered(
        field: impl Into<String>,
        rendered: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        Self::new(
            field,
            FieldErrorKind::Invalid,
            Some(rendered.into()),
            detail,
        )
    }

    /// `field.Forbidden`: the value is not allowed here.
    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(field, FieldErrorKind::Forbidden, None, detail)
    }

    /// `field.TooLong`: the value exceeds `max_bytes` (message `may not be more than N bytes`).
    pub fn too_long(field: impl Into<String>, max_bytes: usize) -> Self {
        let unit = if max_bytes == 1 { "byte" } else { "bytes" };
        Self::new(
            field,
            FieldErrorKind::TooLong,
            None,
            format!("may not be more than {max_bytes} {unit}"),
        )
    }

    /// `field.TooMany`: a list of `actual` items where at most `max` are allowed (message
    /// `must have at most N items`).
    pub fn too_many(field: impl Into<String>, actual: usize, max: usize) -> Self {
        let unit = if max == 1 { "item" } else { "items" };
        Self::new(
            field,
            FieldErrorKind::TooMany,
            Some(actual.to_string()),
            format!("must have at most {max} {unit}"),
        )
    }

    /// `field.NotFound` for a string value (a reference to something that does not exist).
    pub fn not_found(field: impl Into<String>, value: &str) -> Self {
        Self::new(field, FieldErrorKind::NotFound, Some(go_quote(value)), "")
    }

    /// `field.Duplicate` for a string value.
    pub fn duplicate(field: impl Into<String>, value: &str) -> Self {
        Self::new(field, FieldErrorKind::Duplicate, Some(go_quote(value)), "")
    }

    /// `field.NotSupported` for a string value, listing the supported values.
    pub fn not_supported(field: impl Into<String>, value: &str, supported: &[&str]) -> Self {
        Self::not_supported_rendered(field, go_quote(value), supported)
    }

    /// `field.NotSupported` for a value already rendered as Go would (a list of values).
    pub fn not_supported_rendered(
        field: impl Into<String>,
        rendered: impl Into<String>,
        supported: &[&str],
    ) -> Self {
        let detail = if supported.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = supported.iter().map(|s| go_quote(s)).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        Self::new(
            field,
            FieldErrorKind::NotSupported,
            Some(rendered.into()),
            detail,
        )
    }

    /// `field.TypeInvalid` for a value already rendered as Go would.
    pub fn type_invalid(
        field: impl Into<String>,
        rendered: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        Self::new(
            field,
            FieldErrorKind::TypeInvalid,
            Some(rendered.into()),
            detail,
        )
    }

    /// `field.InternalError`.
    pub fn internal(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(field, FieldErrorKind::Internal, None, detail)
    }

    /// The `CauseType` string (`FieldValueInvalid`, ...).
    pub fn reason(&self) -> &'static str {
        self.kind.reason()
    }

    /// The message without the field path (Go's `ErrorBody()`), used as
    /// `Status.details.causes[].message`.
    pub fn body(&self) -> String {
        let mut s = match (self.kind, &self.value) {
            (
                FieldErrorKind::Required
                | FieldErrorKind::Forbidden
                | FieldErrorKind::TooLong
                | FieldErrorKind::Internal,
                _,
            )
            | (_, None) => self.kind.label().to_string(),
            (kind, Some(v)) => format!("{}: {}", kind.label(), v),
        };
        if !self.message.is_empty() {
            s.push_str(": ");
            s.push_str(&self.message);
        }
        s
    }

    /// The `Status.details.causes[]` entry: `{"reason", "message", "field"}`.
    pub fn to_status_cause(&self) -> Value {
        json!({
            "reason": self.reason(),
            "message": self.body(),
            "field": self.field,
        })
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

impl std::error::Error for FieldError {}

/// Renders a list of errors as Go's `ErrorList.ToAggregate().Error()`: identical messages are
/// reported once, a single error stands alone, several are wrapped in `[a, b]`. An empty list
/// renders as the empty string.
pub fn aggregate_message(errs: &[FieldError]) -> String {
    let mut seen = BTreeSet::new();
    let mut msgs = Vec::new();
    for e in errs {
        let m = e.to_string();
        if seen.insert(m.clone()) {
            msgs.push(m);
        }
    }
    join_aggregate(&msgs)
}

/// Joins already rendered messages like Go's `utilerrors.Aggregate`.
pub(crate) fn join_aggregate(msgs: &[String]) -> String {
    match msgs.len() {
        0 => String::new(),
        1 => msgs[0].clone(),
        _ => format!("[{}]", msgs.join(", ")),
    }
}

/// `schema.GroupKind.String()`: `Kind` for the core group, `Kind.group` otherwise.
fn qualified_kind(kind: &str, group: &str) -> String {
    if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    }
}

/// The `Status.message` of a 422 Invalid error (Go's `apierrors.NewInvalid`):
/// `<Kind>[.<group>] "<name>" is invalid: <aggregate>`, e.g.
/// `ConfigMap "Foo" is invalid: metadata.name: Invalid value: "Foo": ...` or, with several
/// errors, `Deployment.apps "x" is invalid: [err1, err2]`.
pub fn invalid_message(kind: &str, group: &str, name: &str, errs: &[FieldError]) -> String {
    let qk = qualified_kind(kind, group);
    if errs.is_empty() {
        format!("{qk} {} is invalid", go_quote(name))
    } else {
        format!(
            "{qk} {} is invalid: {}",
            go_quote(name),
            aggregate_message(errs)
        )
    }
}

/// The whole `Status` object of a 422 Invalid error, with `details.causes` filled in.
pub fn invalid_status(kind: &str, group: &str, name: &str, errs: &[FieldError]) -> Value {
    let mut details = Map::new();
    details.insert("name".into(), Value::String(name.to_string()));
    if !group.is_empty() {
        details.insert("group".into(), Value::String(group.to_string()));
    }
    details.insert("kind".into(), Value::String(kind.to_string()));
    details.insert(
        "causes".into(),
        Value::Array(errs.iter().map(FieldError::to_status_cause).collect()),
    );
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": invalid_message(kind, group, name, errs),
        "reason": "Invalid",
        "details": Value::Object(details),
        "code": 422,
    })
}

// ---------------------------------------------------------------------------------------------
// Go formatting helpers
// ---------------------------------------------------------------------------------------------

/// Quotes a string like Go's `strconv.Quote` / `%q`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() || is_go_unprintable_format(c) => {
                let n = c as u32;
                if n < 0x10000 {
                    out.push_str(&format!("\\u{n:04x}"));
                } else {
                    out.push_str(&format!("\\U{n:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A few non-control code points Go's `unicode.IsPrint` rejects (format and separator chars).
fn is_go_unprintable_format(c: char) -> bool {
    matches!(
        c,
        '\u{ad}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{feff}'
            | '\u{a0}'
            | '\u{2000}'..='\u{200a}'
            | '\u{3000}'
    )
}

/// Renders a list of strings like Go's `%#v` of a `[]string`: `[]string{"a", "b"}`.
/// `None` renders as a nil slice, `[]string(nil)`.
pub fn go_string_slice(values: Option<&[String]>) -> String {
    match values {
        None => "[]string(nil)".to_string(),
        Some(vs) => {
            let q: Vec<String> = vs.iter().map(|v| go_quote(v)).collect();
            format!("[]string{{{}}}", q.join(", "))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Syntax checks (k8s.io/apimachinery/pkg/util/validation)
// ---------------------------------------------------------------------------------------------

/// Maximum length of a DNS (RFC 1123) label.
pub const DNS1123_LABEL_MAX_LENGTH: usize = 63;
/// Maximum length of a DNS (RFC 1123) subdomain.
pub const DNS1123_SUBDOMAIN_MAX_LENGTH: usize = 253;
/// Maximum length of a DNS (RFC 1035) label.
pub const DNS1035_LABEL_MAX_LENGTH: usize = 63;
/// Maximum length of a label value.
pub const LABEL_VALUE_MAX_LENGTH: usize = 63;
/// Maximum length of the name part of a qualified name.
pub const QUALIFIED_NAME_MAX_LENGTH: usize = 63;
/// Maximum total size, in bytes, of all annotation keys and values of an object (256 KiB).
pub const TOTAL_ANNOTATION_SIZE_LIMIT_BYTES: usize = 256 * 1024;
/// The detail message of immutable-field errors.
pub const FIELD_IMMUTABLE_ERROR_MSG: &str = "field is immutable";
/// The detail message for negative values that must not be.
pub const IS_NEGATIVE_ERROR_MSG: &str = "must be greater than or equal to 0";

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_ERR_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const DNS1035_LABEL_ERR_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

/// Go's `validation.MaxLenError`.
pub fn max_len_error(length: usize) -> String {
    format!("must be no more than {length} characters")
}

/// The `content` package's `MaxLenError` (label keys and values since Kubernetes 1.35).
pub fn max_bytes_error(length: usize) -> String {
    format!("must be no more than {length} bytes")
}

/// Go's `validation.EmptyError`.
pub fn empty_error() -> String {
    "must be non-empty".to_string()
}

/// Go's `validation.RegexError`: explains a failed pattern match, with examples.
pub fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let mut out = format!("{msg} (e.g. ");
    for (i, ex) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        out.push('\'');
        out.push_str(ex);
        out.push_str("', ");
    }
    out.push_str("regex used for validation is '");
    out.push_str(fmt);
    out.push_str("')");
    out
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// Matches `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`.
fn matches_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(&f), Some(&l)) => {
            is_lower_alnum(f)
                && is_lower_alnum(l)
                && b.iter().all(|&c| is_lower_alnum(c) || c == b'-')
        }
        _ => false,
    }
}

/// Matches `^label(\.label)*$` for RFC 1123 labels.
fn matches_dns1123_subdomain(s: &str) -> bool {
    s.split('.').all(matches_dns1123_label)
}

/// Matches `^[a-z]([-a-z0-9]*[a-z0-9])?$`.
fn matches_dns1035_label(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(&f), Some(&l)) => {
            f.is_ascii_lowercase()
                && is_lower_alnum(l)
                && b.iter().all(|&c| is_lower_alnum(c) || c == b'-')
        }
        _ => false,
    }
}

/// Matches `^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`.
fn matches_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(&f), Some(&l)) => {
            f.is_ascii_alphanumeric()
                && l.is_ascii_alphanumeric()
                && b.iter()
                    .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// Checks a DNS (RFC 1123) label, e.g. a namespace name. Returns the problems, empty if valid.
pub fn is_dns1123_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_LABEL_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_LABEL_MAX_LENGTH));
    }
    if !matches_dns1123_label(value) {
        if matches_dns1123_subdomain(value) {
            errs.push("must not contain dots".to_string());
        } else {
            errs.push(regex_error(
                DNS1123_LABEL_ERR_MSG,
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    errs
}

/// Go's `IsConfigMapKey`: a key of a ConfigMap's or a Secret's data.
pub fn is_config_map_key(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 253 {
        errs.push(max_len_error(253));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
    if value.is_empty() || !value.chars().all(allowed) {
        errs.push(regex_error(
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
            "[-._a-zA-Z0-9]+",
            &["key.name", "KEY_NAME", "key-name"],
        ));
    }
    if value == "." {
        errs.push("must not be '.'".into());
    } else if value == ".." {
        errs.push("must not be '..'".into());
    } else if value.starts_with("..") {
        errs.push("must not start with '..'".into());
    }
    errs
}

/// Checks a DNS (RFC 1123) subdomain, the usual object name. Returns the problems.
pub fn is_dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    if !matches_dns1123_subdomain(value) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_ERR_MSG,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// Checks a DNS (RFC 1035) label, e.g. a Service name. Returns the problems.
pub fn is_dns1035_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1035_LABEL_MAX_LENGTH {
        errs.push(max_len_error(DNS1035_LABEL_MAX_LENGTH));
    }
    if !matches_dns1035_label(value) {
        errs.push(regex_error(
            DNS1035_LABEL_ERR_MSG,
            DNS1035_LABEL_FMT,
            &["my-name", "abc-123"],
        ));
    }
    errs
}

/// Checks a port name (kube's `IsValidPortName`: an IANA service name). Returns the problems.
pub fn is_valid_port_name(name: &str) -> Vec<&'static str> {
    let mut out = Vec::new();
    if name.len() > 15 {
        out.push("must be no more than 15 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        out.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
    }
    if !name.bytes().any(|b| b.is_ascii_lowercase()) {
        out.push("must contain at least one letter (a-z)");
    }
    if name.contains("--") {
        out.push("must not contain consecutive hyphens");
    }
    if name.starts_with('-') || name.ends_with('-') {
        out.push("must not begin or end with a hyphen");
    }
    out
}

/// Checks a "qualified name" (`[prefix/]name`), the syntax of label and annotation keys and
/// finalizers. Returns the problems.
pub fn is_qualified_name(value: &str) -> Vec<String> {
    // Kubernetes 1.35 checks qualified names with the `content` package's label-key rules,
    // whose length messages count bytes.
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push(format!("prefix part {}", empty_error()));
            } else {
                let mut msgs = Vec::new();
                if prefix.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
                    msgs.push(max_bytes_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
                }
                msgs.extend(
                    is_dns1123_subdomain(prefix)
                        .into_iter()
                        .filter(|m| !m.starts_with("must be no more than")),
                );
                errs.extend(msgs.into_iter().map(|m| format!("prefix part {m}")));
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a valid label key {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(
                    QUALIFIED_NAME_ERR_MSG,
                    QUALIFIED_NAME_FMT,
                    &["MyName", "my.name", "123-abc"]
                )
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push(format!("name part {}", empty_error()));
    } else if name.len() > QUALIFIED_NAME_MAX_LENGTH {
        errs.push(format!(
            "name part {}",
            max_bytes_error(QUALIFIED_NAME_MAX_LENGTH)
        ));
    }
    if !matches_qualified_name_part(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_ERR_MSG,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// Checks a label value (empty, or up to 63 alphanumerics, `-`, `_`, `.`, starting and ending
/// alphanumeric). Returns the problems.
pub fn is_valid_label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > LABEL_VALUE_MAX_LENGTH {
        errs.push(max_bytes_error(LABEL_VALUE_MAX_LENGTH));
    }
    if !value.is_empty() && !matches_qualified_name_part(value) {
        errs.push(regex_error(
            LABEL_VALUE_ERR_MSG,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// Checks that a name can be used as a URL path segment: not `.` or `..`, no `/` or `%`.
pub fn is_valid_path_segment_name(name: &str) -> Vec<String> {
    for illegal in [".", ".."] {
        if name == illegal {
            return vec![format!("may not be '{illegal}'")];
        }
    }
    is_valid_path_segment_prefix(name)
}

/// Checks that a name prefix (a `generateName`) can start a path segment: no `/` or `%`.
pub fn is_valid_path_segment_prefix(name: &str) -> Vec<String> {
    ["/", "%"]
        .iter()
        .filter(|c| name.contains(*c))
        .map(|c| format!("may not contain '{c}'"))
        .collect()
}

/// Which rule an object's `metadata.name` must follow (Go's `ValidateNameFunc`s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NameValidation {
    /// A DNS (RFC 1123) subdomain: most resources (ConfigMaps, Pods, Deployments, CRs...).
    Subdomain,
    /// A DNS (RFC 1123) label: Namespaces and a few others.
    Label,
    /// A DNS (RFC 1035) label: Services.
    Dns1035Label,
    /// Anything usable as a URL path segment: RBAC objects, the generic fallback.
    PathSegment,
}

impl NameValidation {
    /// Validates `name`; with `prefix` true it is a `generateName`, whose trailing `-` is
    /// allowed (the random suffix follows). Returns the problems.
    pub fn validate(self, name: &str, prefix: bool) -> Vec<String> {
        match self {
            NameValidation::PathSegment => {
                if prefix {
                    is_valid_path_segment_prefix(name)
                } else {
                    is_valid_path_segment_name(name)
                }
            }
            NameValidation::Subdomain => is_dns1123_subdomain(&mask_name(name, prefix)),
            NameValidation::Label => is_dns1123_label(&mask_name(name, prefix)),
            NameValidation::Dns1035Label => is_dns1035_label(&mask_name(name, prefix)),
        }
    }
}

/// Go's `maskTrailingDash`: for prefixes ending in `-`, the last two bytes become `a`.
fn mask_name(name: &str, prefix: bool) -> String {
    if prefix && name.ends_with('-') {
        let cut = name.len().saturating_sub(2);
        let head = name.get(..cut).unwrap_or_else(|| {
            // Not a char boundary: drop the dash and the whole previous character.
            let mut it = name.char_indices().rev();
            it.next();
            it.next().map_or("", |(i, _)| &name[..i])
        });
        format!("{head}a")
    } else {
        name.to_string()
    }
}

// ---------------------------------------------------------------------------------------------
// Metadata validation
// ---------------------------------------------------------------------------------------------

fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_error(field: &str, v: &Value, want: &str) -> FieldError {
    FieldError::type_invalid(
        field,
        go_quote(json_type_name(v)),
        format!(
            "{field} in body must be of type {want}: {}",
            go_quote(json_type_name(v))
        ),
    )
}

/// Reads an optional string field; a non-string, non-null value yields a type error.
fn get_str<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    path: &str,
    errs: &mut Vec<FieldError>,
) -> &'a str {
    get_str_lazy(obj, key, &|| path.to_string(), errs)
}

/// [`get_str`] with the object's path worked out only for an error.
fn get_str_lazy<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    path: &dyn Fn() -> String,
    errs: &mut Vec<FieldError>,
) -> &'a str {
    match obj.get(key) {
        None | Some(Value::Null) => "",
        Some(Value::String(s)) => s,
        Some(other) => {
            errs.push(type_error(&format!("{}.{key}", path()), other, "string"));
            ""
        }
    }
}

/// Reads an optional integer field; a non-integer, non-null value yields a type error.
fn get_i64(
    obj: &Map<String, Value>,
    key: &str,
    path: &str,
    errs: &mut Vec<FieldError>,
) -> Option<i64> {
    match obj.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.as_i64().is_some() => n.as_i64(),
        Some(other) => {
            errs.push(type_error(&format!("{path}.{key}"), other, "integer"));
            None
        }
    }
}

/// Reads a `map[string]string` field (labels, annotations, matchLabels).
fn get_string_map(
    obj: &Map<String, Value>,
    key: &str,
    path: &str,
    errs: &mut Vec<FieldError>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    // The field's path is spelled out only for an error (this runs for every write).
    match obj.get(key) {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                match v {
                    Value::String(s) => {
                        out.insert(k.clone(), s.clone());
                    }
                    Value::Null => {
                        out.insert(k.clone(), String::new());
                    }
                    other => errs.push(type_error(&format!("{path}.{key}.{k}"), other, "string")),
                }
            }
        }
        Some(other) => errs.push(type_error(&format!("{path}.{key}"), other, "object")),
    }
    out
}

/// Reads a `[]string` field (finalizers).
fn get_string_list(
    obj: &Map<String, Value>,
    key: &str,
    path: &str,
    errs: &mut Vec<FieldError>,
) -> Vec<String> {
    match obj.get(key) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => {
            let mut out = Vec::new();
            for (i, v) in items.iter().enumerate() {
                match v {
                    Value::String(s) => out.push(s.clone()),
                    other => errs.push(type_error(&format!("{path}.{key}[{i}]"), other, "string")),
                }
            }
            out
        }
        Some(other) => {
            errs.push(type_error(&format!("{path}.{key}"), other, "array"));
            Vec::new()
        }
    }
}

fn as_object<'a>(
    meta: &'a Value,
    path: &str,
    errs: &mut Vec<FieldError>,
) -> Option<&'a Map<String, Value>> {
    match meta {
        Value::Object(m) => Some(m),
        Value::Null => None,
        other => {
            errs.push(type_error(path, other, "object"));
            None
        }
    }
}

/// Validates label keys (qualified names) and values; every error is reported on `path`
/// itself, as Go's `ValidateLabels` does.
pub fn validate_labels(labels: &BTreeMap<String, String>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (k, v) in labels {
        errs.extend(validate_label_name(k, path));
        for msg in is_valid_label_value(v) {
            errs.push(FieldError::invalid(path, v, msg));
        }
    }
    errs
}

/// Validates one label key (a qualified name) reported on `path`.
pub fn validate_label_name(name: &str, path: &str) -> Vec<FieldError> {
    is_qualified_name(name)
        .into_iter()
        .map(|msg| FieldError::invalid(path, name, msg))
        .collect()
}

/// Validates annotation keys (qualified names, case-insensitively) and their total size.
pub fn validate_annotations(annotations: &BTreeMap<String, String>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut total = 0usize;
    for (k, v) in annotations {
        for msg in is_qualified_name(&k.to_lowercase()) {
            errs.push(FieldError::invalid(path, k, msg));
        }
        total += k.len() + v.len();
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT_BYTES {
        errs.push(FieldError::too_long(
            path,
            TOTAL_ANNOTATION_SIZE_LIMIT_BYTES,
        ));
    }
    errs
}

/// Validates finalizer names (qualified names) and that `orphan` and `foregroundDeletion` are
/// not both present.
pub fn validate_finalizers(finalizers: &[String], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for f in finalizers {
        for msg in is_qualified_name(f) {
            errs.push(FieldError::invalid(path, f, msg));
        }
    }
    let orphan = finalizers.iter().any(|f| f == "orphan");
    let foreground = finalizers.iter().any(|f| f == "foregroundDeletion");
    if orphan && foreground {
        errs.push(FieldError::invalid_rendered(
            path,
            go_string_slice(Some(finalizers)),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
    errs
}

/// The extra finalizer check of core (legacy group) resources: a finalizer without a `/` must
/// be one of the standard ones (`kubernetes`, `orphan`, `foregroundDeletion`). Reported on
/// `metadata.finalizers[i]`. Go runs it in addition to [`validate_object_meta`] (and
/// [`validate_object_meta_update`]) for core types only; custom resources merely warn.
pub fn validate_kube_finalizer_names(meta: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(obj) = meta.as_object() else {
        return errs;
    };
    let mut ignored = Vec::new();
    let finalizers = get_string_list(obj, "finalizers", "metadata", &mut ignored);
    for (i, f) in finalizers.iter().enumerate() {
        if !f.contains('/') && !matches!(f.as_str(), "kubernetes" | "orphan" | "foregroundDeletion")
        {
            errs.push(FieldError::invalid(
                format!("metadata.finalizers[{i}]"),
                f,
                "name is neither a standard finalizer name nor is it fully qualified",
            ));
        }
    }
    errs
}

/// Splits an apiVersion like Go's `schema.ParseGroupVersion`: `(group, version)`, both empty
/// when unparsable.
fn parse_group_version(api_version: &str) -> (&str, &str) {
    if api_version.is_empty() || api_version == "/" {
        return ("", "");
    }
    match api_version.matches('/').count() {
        0 => ("", api_version),
        1 => api_version.split_once('/').unwrap_or(("", "")),
        _ => ("", ""),
    }
}

fn render_owner_reference(r: &Map<String, Value>) -> String {
    let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let b = |k: &str| match r.get(k).and_then(Value::as_bool) {
        Some(v) => format!("*{v}"),
        None => "nil".to_string(),
    };
    format!(
        "&OwnerReference{{Kind:{},Name:{},UID:{},APIVersion:{},Controller:{},BlockOwnerDeletion:{},}}",
        s("kind"),
        s("name"),
        s("uid"),
        s("apiVersion"),
        b("controller"),
        b("blockOwnerDeletion")
    )
}

/// Validates `ownerReferences`: apiVersion (with a version), kind, name and uid present, no
/// `v1` `Event` owners, at most one reference with `controller: true`.
pub fn validate_owner_references(refs: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let items = match refs {
        Value::Null => return errs,
        Value::Array(items) => items,
        other => {
            errs.push(type_error(path, other, "array"));
            return errs;
        }
    };
    let mut first_controller: Option<String> = None;
    for (i, item) in items.iter().enumerate() {
        let Some(r) = item.as_object() else {
            errs.push(type_error(&format!("{path}[{i}]"), item, "object"));
            continue;
        };
        let api_version = get_str(r, "apiVersion", path, &mut errs);
        let kind = get_str(r, "kind", path, &mut errs);
        let name = get_str(r, "name", path, &mut errs);
        let uid = get_str(r, "uid", path, &mut errs);
        let (group, version) = parse_group_version(api_version);
        if version.is_empty() {
            errs.push(FieldError::invalid(
                format!("{path}.apiVersion"),
                api_version,
                "version must not be empty",
            ));
        }
        if kind.is_empty() {
            errs.push(FieldError::invalid(
                format!("{path}.kind"),
                kind,
                "must not be empty",
            ));
        }
        if name.is_empty() {
            errs.push(FieldError::invalid(
                format!("{path}.name"),
                name,
                "must not be empty",
            ));
        }
        if uid.is_empty() {
            errs.push(FieldError::invalid(
                format!("{path}.uid"),
                uid,
                "must not be empty",
            ));
        }
        if group.is_empty() && version == "v1" && kind == "Event" {
            errs.push(FieldError::invalid_rendered(
                path,
                render_owner_reference(r),
                "/v1, Kind=Event is disallowed from being an owner",
            ));
        }
        if r.get("controller").and_then(Value::as_bool) == Some(true) {
            let cur = format!("{kind}/{name}");
            match &first_controller {
                Some(first) => {
                    let rendered: Vec<String> = items
                        .iter()
                        .filter_map(Value::as_object)
                        .map(render_owner_reference)
                        .collect();
                    errs.push(FieldError::invalid_rendered(
                        path,
                        format!("[]v1.OwnerReference{{{}}}", rendered.join(", ")),
                        format!(
                            "Only one reference can have Controller set to true. Found \"true\" in references for {first} and {cur}"
                        ),
                    ));
                }
                None => first_controller = Some(cur),
            }
        }
    }
    errs
}

/// Roughly Go's `unicode.IsPrint`.
fn is_printable(c: char) -> bool {
    !c.is_control() && !is_go_unprintable_format(c)
}

/// Validates `managedFields` entries: operation `Apply`/`Update`, fieldsType `FieldsV1`,
/// printable manager of at most 128 bytes, subresource of at most 256 bytes.
pub fn validate_managed_fields(entries: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let items = match entries {
        Value::Null => return errs,
        Value::Array(items) => items,
        other => {
            errs.push(type_error(path, other, "array"));
            return errs;
        }
    };
    for (i, item) in items.iter().enumerate() {
        // The entry's path is spelled out only for an error (every write checks its entries).
        let p = || format!("{path}[{i}]");
        let Some(e) = item.as_object() else {
            errs.push(type_error(&p(), item, "object"));
            continue;
        };
        let get = |key: &str, errs: &mut Vec<FieldError>| get_str_lazy(e, key, &p, errs);
        let op = get("operation", &mut errs);
        if op != "Apply" && op != "Update" {
            errs.push(FieldError::invalid(
                format!("{}.operation", p()),
                op,
                "must be `Apply` or `Update`",
            ));
        }
        let ft = get("fieldsType", &mut errs);
        if !ft.is_empty() && ft != "FieldsV1" {
            errs.push(FieldError::invalid(
                format!("{}.fieldsType", p()),
                ft,
                "must be `FieldsV1`",
            ));
        }
        let manager = get("manager", &mut errs);
        if manager.len() > 128 {
            errs.push(FieldError::too_long(format!("{}.manager", p()), 128));
        }
        for (pos, c) in manager.char_indices() {
            if !is_printable(c) {
                errs.push(FieldError::invalid(
                    format!("{}.manager", p()),
                    manager,
                    format!("invalid character U+{:04X} (at position {pos})", c as u32),
                ));
            }
        }
        let sub = get("subresource", &mut errs);
        if sub.len() > 256 {
            errs.push(FieldError::too_long(format!("{}.subresource", p()), 256));
        }
    }
    errs
}

/// Validates an object's `metadata` on creation (Go's `ValidateObjectMetaAccessor` with the
/// `metadata` path).
///
/// Covers: `generateName` syntax (as a prefix), `name` required and valid per
/// `name_validation`, `namespace` required (and a DNS label) for namespaced resources and
/// forbidden for cluster-scoped ones, non-negative `generation`, labels, annotations (keys and
/// 256 KiB total), ownerReferences, finalizers, managedFields.
///
/// Go expects name generation to have happened already; here a missing `name` is not reported
/// when `generateName` is set, so calling this before generating the name is harmless.
/// `meta` is the `metadata` object itself (not the whole resource).
pub fn validate_object_meta(
    meta: &Value,
    namespaced: bool,
    name_validation: NameValidation,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let empty = Map::new();
    let obj = as_object(meta, "metadata", &mut errs).unwrap_or(&empty);

    let generate_name = get_str(obj, "generateName", "metadata", &mut errs);
    let name = get_str(obj, "name", "metadata", &mut errs);
    if !generate_name.is_empty() {
        for msg in name_validation.validate(generate_name, true) {
            errs.push(FieldError::invalid(
                "metadata.generateName",
                generate_name,
                msg,
            ));
        }
    }
    if name.is_empty() {
        if generate_name.is_empty() {
            errs.push(FieldError::required(
                "metadata.name",
                "name or generateName is required",
            ));
        }
    } else {
        for msg in name_validation.validate(name, false) {
            errs.push(FieldError::invalid("metadata.name", name, msg));
        }
    }

    let namespace = get_str(obj, "namespace", "metadata", &mut errs);
    if namespaced {
        if namespace.is_empty() {
            errs.push(FieldError::required("metadata.namespace", ""));
        } else {
            for msg in NameValidation::Label.validate(namespace, false) {
                errs.push(FieldError::invalid("metadata.namespace", namespace, msg));
            }
        }
    } else if !namespace.is_empty() {
        errs.push(FieldError::forbidden(
            "metadata.namespace",
            "not allowed on this type",
        ));
    }

    validate_meta_common(obj, &mut errs, true);
    errs
}

/// Generation, labels, annotations, ownerReferences, (finalizers), managedFields.
fn validate_meta_common(obj: &Map<String, Value>, errs: &mut Vec<FieldError>, finalizers: bool) {
    if let Some(g) = get_i64(obj, "generation", "metadata", errs) {
        if g < 0 {
            errs.push(FieldError::invalid_rendered(
                "metadata.generation",
                g.to_string(),
                IS_NEGATIVE_ERROR_MSG,
            ));
        }
    }
    let labels = get_string_map(obj, "labels", "metadata", errs);
    errs.extend(validate_labels(&labels, "metadata.labels"));
    let annotations = get_string_map(obj, "annotations", "metadata", errs);
    errs.extend(validate_annotations(&annotations, "metadata.annotations"));
    errs.extend(validate_owner_references(
        obj.get("ownerReferences").unwrap_or(&Value::Null),
        "metadata.ownerReferences",
    ));
    if finalizers {
        let fins = get_string_list(obj, "finalizers", "metadata", errs);
        errs.extend(validate_finalizers(&fins, "metadata.finalizers"));
    }
    errs.extend(validate_managed_fields(
        obj.get("managedFields").unwrap_or(&Value::Null),
        "metadata.managedFields",
    ));
}

/// Validates an update of `metadata` (Go's `ValidateObjectMetaAccessorUpdate`): no finalizer
/// may be added once `deletionTimestamp` is set, `resourceVersion` must be present, generation
/// must not decrease, and `name`, `namespace`, `uid`, `creationTimestamp`,
/// `deletionTimestamp`, `deletionGracePeriodSeconds` are immutable (`field is immutable`);
/// labels, annotations, ownerReferences and managedFields of `new` are validated again.
///
/// As in Kubernetes, the caller is expected to have copied the system fields the user may
/// omit (uid, creationTimestamp, generation, resourceVersion for unconditional updates) from
/// the stored object before calling, and to run [`validate_object_meta`] on `new` as well
/// (Go's `validateCommonFields` does both). `generateName` is not immutable in Kubernetes.
pub fn validate_object_meta_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let empty = Map::new();
    let n = as_object(new, "metadata", &mut errs).unwrap_or(&empty);
    let mut ignored = Vec::new();
    let o = old.as_object().unwrap_or(&empty);

    let old_deletion = o.get("deletionTimestamp").filter(|v| !v.is_null());
    if old_deletion.is_some() {
        let new_f: BTreeSet<String> = get_string_list(n, "finalizers", "metadata", &mut ignored)
            .into_iter()
            .collect();
        let old_f: BTreeSet<String> = get_string_list(o, "finalizers", "metadata", &mut ignored)
            .into_iter()
            .collect();
        let extra: Vec<String> = new_f.difference(&old_f).cloned().collect();
        if !extra.is_empty() {
            errs.push(FieldError::forbidden(
                "metadata.finalizers",
                format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers {}",
                    go_string_slice(Some(&extra))
                ),
            ));
        }
    }

    let rv = get_str(n, "resourceVersion", "metadata", &mut errs);
    if rv.is_empty() {
        errs.push(FieldError::invalid(
            "metadata.resourceVersion",
            rv,
            "must be specified for an update",
        ));
    }

    let new_gen = get_i64(n, "generation", "metadata", &mut errs).unwrap_or(0);
    let old_gen = get_i64(o, "generation", "metadata", &mut ignored).unwrap_or(0);
    if new_gen < old_gen {
        errs.push(FieldError::invalid_rendered(
            "metadata.generation",
            new_gen.to_string(),
            "must not be decremented",
        ));
    }

    for key in ["name", "namespace", "uid"] {
        let nv = get_str(n, key, "metadata", &mut errs);
        let ov = get_str(o, key, "metadata", &mut ignored);
        if nv != ov {
            errs.push(FieldError::invalid(
                format!("metadata.{key}"),
                nv,
                FIELD_IMMUTABLE_ERROR_MSG,
            ));
        }
    }

    // creationTimestamp is a value (zero time when unset), deletionTimestamp a pointer.
    let new_ct = time_field(n.get("creationTimestamp"));
    let old_ct = time_field(o.get("creationTimestamp"));
    if !times_equal(&new_ct, &old_ct) {
        errs.push(FieldError::invalid_rendered(
            "metadata.creationTimestamp",
            render_time(&new_ct).unwrap_or_else(|| ZERO_TIME.to_string()),
            FIELD_IMMUTABLE_ERROR_MSG,
        ));
    }
    let new_dt = time_field(n.get("deletionTimestamp"));
    let old_dt = time_field(o.get("deletionTimestamp"));
    if !times_equal(&new_dt, &old_dt) {
        errs.push(FieldError::invalid_rendered(
            "metadata.deletionTimestamp",
            render_time(&new_dt).unwrap_or_else(|| go_quote("null")),
            FIELD_IMMUTABLE_ERROR_MSG,
        ));
    }
    let new_gp = n.get("deletionGracePeriodSeconds").filter(|v| !v.is_null());
    let old_gp = o.get("deletionGracePeriodSeconds").filter(|v| !v.is_null());
    let as_num =
        |v: Option<&Value>| v.map(|v| v.as_i64().map_or_else(|| v.to_string(), |i| i.to_string()));
    if as_num(new_gp) != as_num(old_gp) {
        errs.push(FieldError::invalid_rendered(
            "metadata.deletionGracePeriodSeconds",
            as_num(new_gp).unwrap_or_else(|| go_quote("null")),
            FIELD_IMMUTABLE_ERROR_MSG,
        ));
    }

    validate_meta_common_update(n, &mut errs);
    errs
}

fn validate_meta_common_update(n: &Map<String, Value>, errs: &mut Vec<FieldError>) {
    let labels = get_string_map(n, "labels", "metadata", errs);
    errs.extend(validate_labels(&labels, "metadata.labels"));
    let annotations = get_string_map(n, "annotations", "metadata", errs);
    errs.extend(validate_annotations(&annotations, "metadata.annotations"));
    errs.extend(validate_owner_references(
        n.get("ownerReferences").unwrap_or(&Value::Null),
        "metadata.ownerReferences",
    ));
    errs.extend(validate_managed_fields(
        n.get("managedFields").unwrap_or(&Value::Null),
        "metadata.managedFields",
    ));
}

const ZERO_TIME: &str = "0001-01-01 00:00:00 +0000 UTC";

/// A timestamp field: `None` when unset, `Some(Ok(epoch seconds))` when parsable,
/// `Some(Err(raw))` otherwise.
type TimeField = Option<Result<i64, String>>;

fn time_field(v: Option<&Value>) -> TimeField {
    match v {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(parse_rfc3339(s).ok_or_else(|| s.clone())),
        Some(other) => Some(Err(other.to_string())),
    }
}

fn times_equal(a: &TimeField, b: &TimeField) -> bool {
    a == b
}

fn render_time(t: &TimeField) -> Option<String> {
    match t {
        None => None,
        Some(Ok(secs)) => Some(format_go_time(*secs)),
        Some(Err(raw)) => Some(go_quote(raw)),
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Parses an RFC 3339 timestamp (`2006-01-02T15:04:05[.frac](Z|±hh:mm)`) to Unix seconds,
/// ignoring fractions (metav1.Time has second precision).
pub(crate) fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let offset = match s.get(i..)? {
        "Z" | "z" => 0,
        rest if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) => {
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            if b[i + 3] != b':' {
                return None;
            }
            let off = oh * 3600 + om * 60;
            if rest.starts_with('-') {
                -off
            } else {
                off
            }
        }
        _ => return None,
    };
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se - offset)
}

/// Formats Unix seconds like Go's `time.Time.String()` in UTC.
fn format_go_time(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} +0000 UTC",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

// ---------------------------------------------------------------------------------------------
// Label selector (metav1.LabelSelector) validation
// ---------------------------------------------------------------------------------------------

/// Validates a `metav1.LabelSelector` object (Go's `ValidateLabelSelector`), reporting on
/// `path` (e.g. `spec.selector`): matchLabels keys and values, each matchExpressions entry's
/// operator, values and key. `null` is valid.
pub fn validate_label_selector(selector: &Value, path: &str) -> Vec<FieldError> {
    validate_label_selector_values(selector, path, false)
}

/// [`validate_label_selector`], and with `check_values` each `matchExpressions[i].values[j]`
/// checked as a label value after the key (kube's `ValidateLabelSelector` without
/// `AllowInvalidLabelValueInSelector`).
pub fn validate_label_selector_values(
    selector: &Value,
    path: &str,
    check_values: bool,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let obj = match selector {
        Value::Null => return errs,
        Value::Object(o) => o,
        other => {
            errs.push(type_error(path, other, "object"));
            return errs;
        }
    };
    let match_labels = get_string_map(obj, "matchLabels", path, &mut errs);
    errs.extend(validate_labels(
        &match_labels,
        &format!("{path}.matchLabels"),
    ));
    let exprs = match obj.get("matchExpressions") {
        None | Some(Value::Null) => return errs,
        Some(Value::Array(a)) => a,
        Some(other) => {
            errs.push(type_error(
                &format!("{path}.matchExpressions"),
                other,
                "array",
            ));
            return errs;
        }
    };
    for (i, expr) in exprs.iter().enumerate() {
        let p = format!("{path}.matchExpressions[{i}]");
        let Some(e) = expr.as_object() else {
            errs.push(type_error(&p, expr, "object"));
            continue;
        };
        let op = get_str(e, "operator", &p, &mut errs);
        let values = get_string_list(e, "values", &p, &mut errs);
        match op {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(FieldError::required(
                        format!("{p}.values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(FieldError::forbidden(
                        format!("{p}.values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            other => errs.push(FieldError::invalid(
                format!("{p}.operator"),
                other,
                "not a valid selector operator",
            )),
        }
        let key = get_str(e, "key", &p, &mut errs);
        errs.extend(validate_label_name(key, &format!("{p}.key")));
        if check_values {
            for (j, value) in values.iter().enumerate() {
                for msg in is_valid_label_value(value) {
                    errs.push(FieldError::invalid(format!("{p}.values[{j}]"), value, msg));
                }
            }
        }
    }
    errs
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
    const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
    const NAME_PART_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
    const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

    fn msgs(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn dns1123_subdomain() {
        for ok in [
            "a",
            "ab",
            "a-b",
            "a.b",
            "0",
            "a.b.c",
            "1.2.3",
            &"a".repeat(253),
        ] {
            assert!(is_dns1123_subdomain(ok).is_empty(), "{ok}");
        }
        for bad in [
            "", "A", "-a", "a-", "a..b", ".a", "a.", "a_b", "a b", "ä", "a.-b",
        ] {
            assert_eq!(
                is_dns1123_subdomain(bad),
                vec![SUBDOMAIN_MSG.to_string()],
                "{bad}"
            );
        }
        let long = "a".repeat(254);
        assert_eq!(
            is_dns1123_subdomain(&long),
            vec!["must be no more than 253 characters".to_string()]
        );
    }

    #[test]
    fn dns1123_label() {
        assert!(is_dns1123_label("my-name").is_empty());
        assert!(is_dns1123_label("123-abc").is_empty());
        assert_eq!(
            is_dns1123_label("a.b"),
            vec!["must not contain dots".to_string()]
        );
        assert_eq!(is_dns1123_label("Abc"), vec![LABEL_MSG.to_string()]);
        assert_eq!(is_dns1123_label(""), vec![LABEL_MSG.to_string()]);
        let long = "a".repeat(64);
        assert_eq!(
            is_dns1123_label(&long),
            vec!["must be no more than 63 characters".to_string()]
        );
    }

    #[test]
    fn dns1035_label() {
        assert!(is_dns1035_label("abc-123").is_empty());
        assert_eq!(
            is_dns1035_label("1abc"),
            vec!["a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')".to_string()]
        );
        assert_eq!(is_dns1035_label("a.b").len(), 1);
    }

    #[test]
    fn qualified_name() {
        for ok in [
            "simple",
            "now-with-dashes",
            "1-starts-with-num",
            "1234",
            "simple/simple",
            "now-with-dashes/simple",
            "example.com/Uppercase_And.dots",
            "a",
            &format!("{}/{}", "a".repeat(253), "b".repeat(63)),
        ] {
            assert!(is_qualified_name(ok).is_empty(), "{ok}");
        }
        assert_eq!(is_qualified_name("-a"), vec![NAME_PART_MSG.to_string()]);
        assert_eq!(
            is_qualified_name(""),
            vec![
                "name part must be non-empty".to_string(),
                NAME_PART_MSG.to_string()
            ]
        );
        assert_eq!(
            is_qualified_name("/a"),
            vec!["prefix part must be non-empty".to_string()]
        );
        assert_eq!(
            is_qualified_name("Example.com/a"),
            vec![format!("prefix part {SUBDOMAIN_MSG}")]
        );
        assert_eq!(
            is_qualified_name("a/b/c"),
            vec!["a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')".to_string()]
        );
        assert_eq!(
            is_qualified_name(&"a".repeat(64)),
            vec!["name part must be no more than 63 bytes".to_string()]
        );
    }

    #[test]
    fn label_values() {
        for ok in ["", "a", "A", "a-b_c.d", "1234", &"x".repeat(63)] {
            assert!(is_valid_label_value(ok).is_empty(), "{ok}");
        }
        assert_eq!(
            is_valid_label_value("-a"),
            vec![LABEL_VALUE_MSG.to_string()]
        );
        assert_eq!(
            is_valid_label_value("a b"),
            vec![LABEL_VALUE_MSG.to_string()]
        );
        assert_eq!(
            is_valid_label_value(&"x".repeat(64)),
            vec!["must be no more than 63 bytes".to_string()]
        );
        assert_eq!(
            is_valid_label_value(&format!("{}-", "x".repeat(64))).len(),
            2
        );
    }

    #[test]
    fn path_segment() {
        assert_eq!(
            is_valid_path_segment_name("."),
            vec!["may not be '.'".to_string()]
        );
        assert_eq!(
            is_valid_path_segment_name(".."),
            vec!["may not be '..'".to_string()]
        );
        assert_eq!(
            is_valid_path_segment_name("a/b%c"),
            vec![
                "may not contain '/'".to_string(),
                "may not contain '%'".to_string()
            ]
        );
        assert!(is_valid_path_segment_name("Any:Thing Goes").is_empty());
        assert!(is_valid_path_segment_prefix("..").is_empty());
        assert!(NameValidation::PathSegment.validate(".", true).is_empty());
    }

    #[test]
    fn generate_name_prefix_masking() {
        assert!(NameValidation::Subdomain.validate("foo-", true).is_empty());
        assert!(!NameValidation::Subdomain.validate("foo-", false).is_empty());
        assert!(NameValidation::Label.validate("ab-", true).is_empty());
        assert!(NameValidation::Dns1035Label.validate("a-", true).is_empty());
        assert!(NameValidation::Subdomain.validate("-", true).is_empty());
        assert_eq!(mask_name("é-", true), "a");
        assert!(!NameValidation::Subdomain.validate("Foo-", true).is_empty());
    }

    #[test]
    fn field_error_display_and_reason() {
        let e = FieldError::invalid("metadata.name", "Foo", SUBDOMAIN_MSG);
        assert_eq!(
            e.to_string(),
            format!("metadata.name: Invalid value: \"Foo\": {SUBDOMAIN_MSG}")
        );
        assert_eq!(e.reason(), "FieldValueInvalid");
        let r = FieldError::required("metadata.name", "name or generateName is required");
        assert_eq!(
            r.to_string(),
            "metadata.name: Required value: name or generateName is required"
        );
        assert_eq!(r.reason(), "FieldValueRequired");
        let r = FieldError::required("metadata.namespace", "");
        assert_eq!(r.to_string(), "metadata.namespace: Required value");
        let f = FieldError::forbidden("metadata.namespace", "not allowed on this type");
        assert_eq!(
            f.to_string(),
            "metadata.namespace: Forbidden: not allowed on this type"
        );
        assert_eq!(f.reason(), "FieldValueForbidden");
        let t = FieldError::too_long("metadata.annotations", 262_144);
        assert_eq!(
            t.to_string(),
            "metadata.annotations: Too long: may not be more than 262144 bytes"
        );
        assert_eq!(t.reason(), "FieldValueTooLong");
        let d = FieldError::duplicate("spec.x[1]", "a");
        assert_eq!(d.to_string(), "spec.x[1]: Duplicate value: \"a\"");
        assert_eq!(d.reason(), "FieldValueDuplicate");
        let n = FieldError::not_supported("spec.policy", "X", &["A", "B"]);
        assert_eq!(
            n.to_string(),
            "spec.policy: Unsupported value: \"X\": supported values: \"A\", \"B\""
        );
        assert_eq!(n.reason(), "FieldValueNotSupported");
        let ti = FieldError::type_invalid("spec.x", "\"integer\"", "must be string");
        assert_eq!(
            ti.to_string(),
            "spec.x: Invalid value: \"integer\": must be string"
        );
        assert_eq!(ti.reason(), "FieldValueTypeInvalid");
        let g = FieldError::invalid_rendered("metadata.generation", "-1", IS_NEGATIVE_ERROR_MSG);
        assert_eq!(
            g.to_string(),
            "metadata.generation: Invalid value: -1: must be greater than or equal to 0"
        );
        assert_eq!(
            e.to_status_cause(),
            json!({"reason": "FieldValueInvalid", "message": format!("Invalid value: \"Foo\": {SUBDOMAIN_MSG}"), "field": "metadata.name"})
        );
    }

    #[test]
    fn go_quoting() {
        assert_eq!(go_quote("a\"b\\c\n\t\u{1}é"), "\"a\\\"b\\\\c\\n\\t\\x01é\"");
        assert_eq!(go_quote("\u{85}"), "\"\\u0085\"");
        assert_eq!(
            go_string_slice(Some(&["a".to_string(), "b".to_string()])),
            "[]string{\"a\", \"b\"}"
        );
        assert_eq!(go_string_slice(Some(&[])), "[]string{}");
        assert_eq!(go_string_slice(None), "[]string(nil)");
    }

    #[test]
    fn invalid_message_rendering() {
        let one = vec![FieldError::invalid("metadata.name", "Foo", "bad")];
        assert_eq!(
            invalid_message("ConfigMap", "", "Foo", &one),
            "ConfigMap \"Foo\" is invalid: metadata.name: Invalid value: \"Foo\": bad"
        );
        let two = vec![
            FieldError::invalid("metadata.name", "Foo", "bad"),
            FieldError::required("spec.replicas", ""),
            FieldError::invalid("metadata.name", "Foo", "bad"),
        ];
        assert_eq!(
            invalid_message("Deployment", "apps", "Foo", &two),
            "Deployment.apps \"Foo\" is invalid: [metadata.name: Invalid value: \"Foo\": bad, spec.replicas: Required value]"
        );
        assert_eq!(invalid_message("Pod", "", "p", &[]), "Pod \"p\" is invalid");
        let st = invalid_status("Deployment", "apps", "Foo", &two);
        assert_eq!(st["code"], 422);
        assert_eq!(st["reason"], "Invalid");
        assert_eq!(st["details"]["group"], "apps");
        assert_eq!(st["details"]["causes"].as_array().unwrap().len(), 3);
        let st = invalid_status("Pod", "", "p", &one);
        assert!(st["details"].get("group").is_none());
    }

    #[test]
    fn object_meta_valid() {
        let meta = json!({
            "name": "my-config",
            "namespace": "default",
            "labels": {"app": "web", "example.com/tier": ""},
            "annotations": {"Example.COM/Note": "anything goes here !"},
            "finalizers": ["example.com/cleanup"],
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "123", "controller": true}],
            "generation": 3,
            "managedFields": [{"manager": "kubectl", "operation": "Update", "fieldsType": "FieldsV1"}]
        });
        assert!(validate_object_meta(&meta, true, NameValidation::Subdomain).is_empty());
    }

    #[test]
    fn object_meta_name_rules() {
        let errs = validate_object_meta(
            &json!({"namespace": "default"}),
            true,
            NameValidation::Subdomain,
        );
        assert_eq!(
            msgs(&errs),
            vec!["metadata.name: Required value: name or generateName is required"]
        );
        let errs = validate_object_meta(
            &json!({"generateName": "web-", "namespace": "default"}),
            true,
            NameValidation::Subdomain,
        );
        assert!(errs.is_empty());
        let errs = validate_object_meta(
            &json!({"generateName": "Web-", "namespace": "default"}),
            true,
            NameValidation::Subdomain,
        );
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "metadata.generateName");
        let errs = validate_object_meta(
            &json!({"name": "Foo", "namespace": "default"}),
            true,
            NameValidation::Subdomain,
        );
        assert_eq!(
            msgs(&errs),
            vec![format!(
                "metadata.name: Invalid value: \"Foo\": {SUBDOMAIN_MSG}"
            )]
        );
        let errs = validate_object_meta(&json!({"name": "a.b"}), false, NameValidation::Label);
        assert_eq!(
            msgs(&errs),
            vec!["metadata.name: Invalid value: \"a.b\": must not contain dots"]
        );
        let errs = validate_object_meta(&json!({"name": ".."}), false, NameValidation::PathSegment);
        assert_eq!(
            msgs(&errs),
            vec!["metadata.name: Invalid value: \"..\": may not be '..'"]
        );
        let errs = validate_object_meta(
            &json!({"name": "system:admin"}),
            false,
            NameValidation::PathSegment,
        );
        assert!(errs.is_empty());
    }

    #[test]
    fn object_meta_namespace_scope() {
        let errs = validate_object_meta(&json!({"name": "a"}), true, NameValidation::Subdomain);
        assert_eq!(msgs(&errs), vec!["metadata.namespace: Required value"]);
        let errs = validate_object_meta(
            &json!({"name": "a", "namespace": "x"}),
            false,
            NameValidation::Subdomain,
        );
        assert_eq!(
            msgs(&errs),
            vec!["metadata.namespace: Forbidden: not allowed on this type"]
        );
        let errs = validate_object_meta(
            &json!({"name": "a", "namespace": "Bad_NS"}),
            true,
            NameValidation::Subdomain,
        );
        assert_eq!(
            msgs(&errs),
            vec![format!(
                "metadata.namespace: Invalid value: \"Bad_NS\": {LABEL_MSG}"
            )]
        );
    }

    #[test]
    fn object_meta_labels_annotations() {
        let meta = json!({"name": "a", "labels": {"-bad": "ok", "good": "bad value"}});
        let errs = validate_object_meta(&meta, false, NameValidation::Subdomain);
        assert_eq!(
            msgs(&errs),
            vec![
                format!("metadata.labels: Invalid value: \"-bad\": {NAME_PART_MSG}"),
                format!("metadata.labels: Invalid value: \"bad value\": {LABEL_VALUE_MSG}"),
            ]
        );
        let meta = json!({"name": "a", "annotations": {"a b": "x"}});
        let errs = validate_object_meta(&meta, false, NameValidation::Subdomain);
        assert_eq!(
            msgs(&errs),
            vec![format!(
                "metadata.annotations: Invalid value: \"a b\": {NAME_PART_MSG}"
            )]
        );
        let big = "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT_BYTES);
        let meta = json!({"name": "a", "annotations": {"k": big}});
        let errs = validate_object_meta(&meta, false, NameValidation::Subdomain);
        assert_eq!(
            msgs(&errs),
            vec!["metadata.annotations: Too long: may not be more than 262144 bytes"]
        );
        let exact = "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT_BYTES - 1);
        let meta = json!({"name": "a", "annotations": {"k": exact}});
        assert!(validate_object_meta(&meta, false, NameValidation::Subdomain).is_empty());
        let meta = json!({"name": "a", "labels": {"a": 1}});
        let errs = validate_object_meta(&meta, false, NameValidation::Subdomain);
        assert_eq!(errs[0].kind, FieldErrorKind::TypeInvalid);
        assert_eq!(errs[0].field, "metadata.labels.a");
    }

    #[test]
    fn object_meta_generation_finalizers_owners() {
        let meta = json!({"name": "a", "generation": -1});
        assert_eq!(
            msgs(&validate_object_meta(
                &meta,
                false,
                NameValidation::Subdomain
            )),
            vec!["metadata.generation: Invalid value: -1: must be greater than or equal to 0"]
        );
        let meta = json!({"name": "a", "finalizers": ["a/b/c", "orphan", "foregroundDeletion"]});
        let errs = validate_object_meta(&meta, false, NameValidation::Subdomain);
        assert_eq!(errs.len(), 2);
        assert!(errs[0]
            .to_string()
            .starts_with("metadata.finalizers: Invalid value: \"a/b/c\": a valid label key"));
        assert_eq!(
            errs[1].to_string(),
            "metadata.finalizers: Invalid value: []string{\"a/b/c\", \"orphan\", \"foregroundDeletion\"}: finalizer orphan and foregroundDeletion cannot be both set"
        );
        let meta = json!({"name": "a", "ownerReferences": [{"apiVersion": "", "kind": "", "name": "", "uid": ""}]});
        assert_eq!(
            msgs(&validate_object_meta(&meta, false, NameValidation::Subdomain)),
            vec![
                "metadata.ownerReferences.apiVersion: Invalid value: \"\": version must not be empty",
                "metadata.ownerReferences.kind: Invalid value: \"\": must not be empty",
                "metadata.ownerReferences.name: Invalid value: \"\": must not be empty",
                "metadata.ownerReferences.uid: Invalid value: \"\": must not be empty",
            ]
        );
        let meta = json!({"name": "a", "ownerReferences": [{"apiVersion": "apps/", "kind": "K", "name": "n", "uid": "u"}]});
        assert_eq!(
            validate_object_meta(&meta, false, NameValidation::Subdomain).len(),
            1
        );
        let meta = json!({"name": "a", "ownerReferences": [{"apiVersion": "v1", "kind": "Event", "name": "n", "uid": "u"}]});
        let errs = validate_object_meta(&meta, false, NameValidation::Subdomain);
        assert_eq!(errs.len(), 1);
        assert!(errs[0]
            .to_string()
            .ends_with("/v1, Kind=Event is disallowed from being an owner"));
        let meta = json!({"name": "a", "ownerReferences": [
            {"apiVersion": "v1", "kind": "A", "name": "x", "uid": "1", "controller": true},
            {"apiVersion": "v1", "kind": "B", "name": "y", "uid": "2", "controller": true}
        ]});
        let errs = validate_object_meta(&meta, false, NameValidation::Subdomain);
        assert_eq!(errs.len(), 1);
        assert!(errs[0]
            .message
            .ends_with("Found \"true\" in references for A/x and B/y"));
    }

    #[test]
    fn kube_finalizers() {
        let meta = json!({"finalizers": ["kubernetes", "foo", "a.io/x"]});
        assert_eq!(
            msgs(&validate_kube_finalizer_names(&meta)),
            vec!["metadata.finalizers[1]: Invalid value: \"foo\": name is neither a standard finalizer name nor is it fully qualified"]
        );
    }

    #[test]
    fn managed_fields() {
        let meta = json!({"name": "a", "managedFields": [{"manager": "m", "operation": "Patch", "fieldsType": "X"}]});
        assert_eq!(
            msgs(&validate_object_meta(&meta, false, NameValidation::Subdomain)),
            vec![
                "metadata.managedFields[0].operation: Invalid value: \"Patch\": must be `Apply` or `Update`",
                "metadata.managedFields[0].fieldsType: Invalid value: \"X\": must be `FieldsV1`",
            ]
        );
        // Every other complaint, each with its entry's path.
        let meta = json!({"name": "a", "managedFields": [
            {"manager": "m", "operation": "Update", "fieldsType": "FieldsV1"},
            "not an entry",
            {"manager": 5, "operation": true, "fieldsType": [], "subresource": {}},
            {"manager": "x".repeat(129), "operation": "Apply", "subresource": "s".repeat(257)},
            {"manager": "a\u{7}b", "operation": "Apply"},
        ]});
        let got = msgs(&validate_object_meta(
            &meta,
            false,
            NameValidation::Subdomain,
        ));
        let expected_paths = [
            "metadata.managedFields[1]: Invalid value",
            "metadata.managedFields[2].operation: Invalid value",
            "metadata.managedFields[2].operation: Invalid value: \"\": must be `Apply` or `Update`",
            "metadata.managedFields[2].fieldsType: Invalid value",
            "metadata.managedFields[2].manager: Invalid value",
            "metadata.managedFields[2].subresource: Invalid value",
            "metadata.managedFields[3].manager: Too long",
            "metadata.managedFields[3].subresource: Too long",
            "metadata.managedFields[4].manager: Invalid value: \"a\\ab\": invalid character U+0007 (at position 1)",
        ];
        assert_eq!(got.len(), expected_paths.len(), "{got:#?}");
        for (g, e) in got.iter().zip(expected_paths) {
            assert!(g.starts_with(e), "{g} / {e}");
        }
    }

    fn old_meta() -> Value {
        json!({
            "name": "a", "namespace": "ns", "uid": "u1", "resourceVersion": "5",
            "creationTimestamp": "2024-01-02T03:04:05Z", "generation": 2,
            "labels": {"x": "y"}
        })
    }

    #[test]
    fn update_ok() {
        let old = old_meta();
        let mut new = old.clone();
        new["labels"] = json!({"x": "z"});
        new["generation"] = json!(3);
        new["creationTimestamp"] = json!("2024-01-02T04:04:05+01:00");
        assert!(validate_object_meta_update(&new, &old).is_empty());
    }

    #[test]
    fn update_immutable_fields() {
        let old = old_meta();
        let mut new = old.clone();
        new["name"] = json!("b");
        new["namespace"] = json!("other");
        new["uid"] = json!("u2");
        new["creationTimestamp"] = json!("2025-01-01T00:00:00Z");
        new["generation"] = json!(1);
        new["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
        new["deletionGracePeriodSeconds"] = json!(30);
        new["resourceVersion"] = json!("");
        assert_eq!(
            msgs(&validate_object_meta_update(&new, &old)),
            vec![
                "metadata.resourceVersion: Invalid value: \"\": must be specified for an update",
                "metadata.generation: Invalid value: 1: must not be decremented",
                "metadata.name: Invalid value: \"b\": field is immutable",
                "metadata.namespace: Invalid value: \"other\": field is immutable",
                "metadata.uid: Invalid value: \"u2\": field is immutable",
                "metadata.creationTimestamp: Invalid value: 2025-01-01 00:00:00 +0000 UTC: field is immutable",
                "metadata.deletionTimestamp: Invalid value: 2025-01-01 00:00:00 +0000 UTC: field is immutable",
                "metadata.deletionGracePeriodSeconds: Invalid value: 30: field is immutable",
            ]
        );
        let mut old2 = old.clone();
        old2["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
        old2["deletionGracePeriodSeconds"] = json!(30);
        old2["finalizers"] = json!(["a.io/x"]);
        let mut new2 = old.clone();
        new2["finalizers"] = json!(["a.io/x", "b.io/y"]);
        assert_eq!(
            msgs(&validate_object_meta_update(&new2, &old2)),
            vec![
                "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{\"b.io/y\"}",
                "metadata.deletionTimestamp: Invalid value: \"null\": field is immutable",
                "metadata.deletionGracePeriodSeconds: Invalid value: \"null\": field is immutable",
            ]
        );
    }

    #[test]
    fn time_parsing() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(
            parse_rfc3339("2024-02-29T12:00:00.123Z"),
            Some(1_709_208_000)
        );
        assert_eq!(parse_rfc3339("garbage"), None);
        assert_eq!(
            format_go_time(1_709_208_000),
            "2024-02-29 12:00:00 +0000 UTC"
        );
        assert_eq!(format_go_time(days_from_civil(1, 1, 1) * 86_400), ZERO_TIME);
    }

    #[test]
    fn label_selector_validation() {
        let sel = json!({"matchLabels": {"app": "x"}, "matchExpressions": [
            {"key": "a", "operator": "In", "values": []},
            {"key": "b", "operator": "Exists", "values": ["x"]},
            {"key": "-c", "operator": "Foo"}
        ]});
        assert_eq!(
            msgs(&validate_label_selector(&sel, "spec.selector")),
            vec![
                "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
                "spec.selector.matchExpressions[1].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                "spec.selector.matchExpressions[2].operator: Invalid value: \"Foo\": not a valid selector operator",
                &format!("spec.selector.matchExpressions[2].key: Invalid value: \"-c\": {NAME_PART_MSG}"),
            ]
        );
        assert!(validate_label_selector(&Value::Null, "spec.selector").is_empty());
    }
}
