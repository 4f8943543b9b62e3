//! The parsed form of a custom resource's `openAPIV3Schema`: every keyword that value
//! validation, defaulting and CEL rules need, in a tree that mirrors the schema.
//!
//! Parsing is lenient (a keyword of the wrong JSON type is ignored): whether the schema itself
//! is acceptable is decided by CRD validation ([`crate::crd_schema::validate_crd_schema`]), which
//! reports kube-apiserver's errors.

use regex::Regex;
use serde_json::Value;

use crate::cel::Rule;

/// The JSON type a node declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsonType {
    Object,
    Array,
    String,
    Integer,
    Number,
    Boolean,
}

impl JsonType {
    pub fn parse(s: &str) -> Option<JsonType> {
        Some(match s {
            "object" => JsonType::Object,
            "array" => JsonType::Array,
            "string" => JsonType::String,
            "integer" => JsonType::Integer,
            "number" => JsonType::Number,
            "boolean" => JsonType::Boolean,
            _ => return None,
        })
    }

    #[allow(dead_code)]
    pub fn name(self) -> &'static str {
        match self {
            JsonType::Object => "object",
            JsonType::Array => "array",
            JsonType::String => "string",
            JsonType::Integer => "integer",
            JsonType::Number => "number",
            JsonType::Boolean => "boolean",
        }
    }
}

/// `x-kubernetes-list-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum ListType {
    #[default]
    Atomic,
    Set,
    Map,
}

/// `additionalProperties`.
#[derive(Debug, Default)]
pub(crate) enum Additional {
    #[default]
    Absent,
    Bool(bool),
    Schema(Box<Node>),
}

/// One schema node.
#[derive(Debug, Default)]
pub(crate) struct Node {
    /// `type` as written (empty when absent).
    pub type_name: String,
    pub ty: Option<JsonType>,
    pub nullable: bool,
    pub format: String,
    pub enum_values: Vec<Value>,
    pub maximum: Option<f64>,
    pub exclusive_maximum: bool,
    pub minimum: Option<f64>,
    pub exclusive_minimum: bool,
    pub multiple_of: Option<f64>,
    pub max_length: Option<i64>,
    pub min_length: Option<i64>,
    /// The pattern as written, and compiled (None when it does not compile).
    pub pattern: Option<(String, Option<Regex>)>,
    pub max_items: Option<i64>,
    pub min_items: Option<i64>,
    pub unique_items: bool,
    pub max_properties: Option<i64>,
    pub min_properties: Option<i64>,
    pub required: Vec<String>,
    /// Declared properties, sorted by name.
    pub properties: Vec<(String, Node)>,
    pub additional: Additional,
    pub items: Option<Box<Node>>,
    pub all_of: Vec<Node>,
    pub any_of: Vec<Node>,
    pub one_of: Vec<Node>,
    pub not: Option<Box<Node>>,
    pub default: Option<Value>,
    pub int_or_string: bool,
    pub preserve_unknown: bool,
    pub embedded: bool,
    pub list_type: ListType,
    pub list_map_keys: Vec<String>,
    /// `x-kubernetes-map-type: atomic` (old values do not correlate below it).
    pub map_atomic: bool,
    /// `x-kubernetes-validations` as written.
    pub raw_rules: Vec<Value>,
    /// Compiled `x-kubernetes-validations` (filled by [`crate::cel::compile_tree`]).
    pub rules: Vec<Rule>,
    /// What of the value the rules here read (only that is converted to CEL values).
    pub need: crate::cel::Need,
    /// Some property of this object has a default.
    pub prop_defaults: bool,
    /// Something below (or at) this node has a default, a declared property (null pruning)
    /// or an `allOf` rule: defaulting must walk it.
    pub walk_defaults: bool,
    /// Something at or below this node has CEL rules.
    pub walk_rules: bool,
    /// Something at or below this node needs the extra structural checks (list-type set/map
    /// uniqueness, embedded resources).
    pub walk_extra: bool,
}

impl Node {
    /// Parse a schema (lenient).
    pub fn parse(s: &Value) -> Node {
        let flag = |k: &str| s.get(k).and_then(Value::as_bool) == Some(true);
        let int = |k: &str| s.get(k).and_then(Value::as_i64);
        let num = |k: &str| s.get(k).and_then(Value::as_f64);
        let type_name = s
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let mut n = Node {
            ty: JsonType::parse(&type_name),
            type_name,
            nullable: flag("nullable"),
            format: s
                .get("format")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            enum_values: s
                .get("enum")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            maximum: num("maximum"),
            exclusive_maximum: flag("exclusiveMaximum"),
            minimum: num("minimum"),
            exclusive_minimum: flag("exclusiveMinimum"),
            multiple_of: num("multipleOf"),
            max_length: int("maxLength"),
            min_length: int("minLength"),
            pattern: s
                .get("pattern")
                .and_then(Value::as_str)
                .map(|p| (p.to_string(), Regex::new(p).ok())),
            max_items: int("maxItems"),
            min_items: int("minItems"),
            unique_items: flag("uniqueItems"),
            max_properties: int("maxProperties"),
            min_properties: int("minProperties"),
            required: strings(s.get("required")),
            default: s.get("default").cloned(),
            int_or_string: flag("x-kubernetes-int-or-string"),
            preserve_unknown: flag("x-kubernetes-preserve-unknown-fields"),
            embedded: flag("x-kubernetes-embedded-resource"),
            list_type: match s.get("x-kubernetes-list-type").and_then(Value::as_str) {
                Some("set") => ListType::Set,
                Some("map") => ListType::Map,
                _ => ListType::Atomic,
            },
            list_map_keys: strings(s.get("x-kubernetes-list-map-keys")),
            map_atomic: s.get("x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic"),
            raw_rules: s
                .get("x-kubernetes-validations")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            ..Node::default()
        };
        if let Some(props) = s.get("properties").and_then(Value::as_object) {
            n.properties = props
                .iter()
                .map(|(k, v)| (k.clone(), Node::parse(v)))
                .collect();
            n.properties.sort_by(|a, b| a.0.cmp(&b.0));
        }
        n.additional = match s.get("additionalProperties") {
            Some(Value::Bool(b)) => Additional::Bool(*b),
            Some(a @ Value::Object(_)) => Additional::Schema(Box::new(Node::parse(a))),
            _ => Additional::Absent,
        };
        if let Some(i @ Value::Object(_)) = s.get("items") {
            n.items = Some(Box::new(Node::parse(i)));
        }
        let list = |k: &str| -> Vec<Node> {
            s.get(k)
                .and_then(Value::as_array)
                .map(|a| a.iter().map(Node::parse).collect())
                .unwrap_or_default()
        };
        n.all_of = list("allOf");
        n.any_of = list("anyOf");
        n.one_of = list("oneOf");
        if let Some(x @ Value::Object(_)) = s.get("not") {
            n.not = Some(Box::new(Node::parse(x)));
        }
        n.compute_flags();
        n
    }

    /// Recompute the walk flags of this node from its children's (children first).
    pub fn compute_flags(&mut self) {
        self.prop_defaults = self.properties.iter().any(|(_, p)| p.default.is_some());
        let children = self
            .properties
            .iter()
            .map(|(_, p)| p)
            .chain(self.items.as_deref())
            .chain(match &self.additional {
                Additional::Schema(a) => Some(a.as_ref()),
                _ => None,
            });
        let (mut defaults, mut rules, mut extra) = (false, false, false);
        for c in children {
            defaults |= c.walk_defaults || c.default.is_some();
            rules |= c.walk_rules;
            extra |= c.walk_extra;
        }
        self.walk_defaults = defaults || !self.properties.is_empty();
        self.walk_rules = rules
            || !self.raw_rules.is_empty()
            || !self.rules.is_empty()
            || self.all_of.iter().any(|a| !a.raw_rules.is_empty());
        self.walk_extra =
            extra || self.embedded || matches!(self.list_type, ListType::Set | ListType::Map);
    }

    /// A declared property.
    pub fn property(&self, name: &str) -> Option<&Node> {
        self.properties
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| &self.properties[i].1)
    }

    /// The schema of map values, when `additionalProperties` is a schema.
    pub fn additional_schema(&self) -> Option<&Node> {
        match &self.additional {
            Additional::Schema(a) => Some(a),
            _ => None,
        }
    }

    /// The type names a value is checked against (`integer,string` for int-or-string).
    pub fn type_names(&self) -> &str {
        if self.int_or_string {
            "integer,string"
        } else {
            &self.type_name
        }
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The JSON type name kube-openapi infers for a decoded value (`integer` for JSON integers,
/// `number` for the others).
pub(crate) fn value_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

// ---------------------------------------------------------------------------------------------
// Go rendering, as field.Error and kube-openapi print values.
// ---------------------------------------------------------------------------------------------

/// A bad value as `field.Error` renders it: strings quoted, numbers and booleans bare, `nil` as
/// `"null"`, maps and slices as Go's `%#v`.
pub(crate) fn go_value(v: &Value) -> String {
    match v {
        Value::Null => "\"null\"".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => go_number(n),
        Value::String(s) => kubox_apimachinery::validation::go_quote(s),
        Value::Array(_) | Value::Object(_) => go_sharp_v(v),
    }
}

fn go_number(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        i.to_string()
    } else if let Some(u) = n.as_u64() {
        u.to_string()
    } else {
        go_float(n.as_f64().unwrap_or_default())
    }
}

/// Go's `%#v` of an unstructured value (`map[string]interface {}{"a":1}`).
pub(crate) fn go_sharp_v(v: &Value) -> String {
    match v {
        Value::Null => "interface {}(nil)".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => go_number(n),
        Value::String(s) => kubox_apimachinery::validation::go_quote(s),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(go_sharp_v).collect();
            format!("[]interface {{}}{{{}}}", parts.join(", "))
        }
        Value::Object(m) => {
            let parts: Vec<String> = m
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{}:{}",
                        kubox_apimachinery::validation::go_quote(k),
                        go_sharp_v(v)
                    )
                })
                .collect();
            format!("map[string]interface {{}}{{{}}}", parts.join(", "))
        }
    }
}

/// Go's `%v` of a float64: the shortest representation, in exponent form (`1e+06`) when the
/// exponent is below -4 or at least 6.
pub(crate) fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // Rust's `{:e}` is the shortest round-tripping form: `1.234e5`.
    let e = format!("{f:e}");
    let (mantissa, exp) = match e.split_once('e') {
        Some((m, x)) => (m, x.parse::<i32>().unwrap_or(0)),
        None => return e,
    };
    let neg = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if neg { "-" } else { "" };
    if !(-4..6).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{frac}e{esign}{:02}", exp.abs());
    }
    // Fixed notation: the decimal point sits after exp+1 digits.
    let point = exp + 1;
    if point <= 0 {
        format!("{sign}0.{}{digits}", "0".repeat((-point) as usize))
    } else if point as usize >= digits.len() {
        format!(
            "{sign}{digits}{}",
            "0".repeat(point as usize - digits.len())
        )
    } else {
        let (a, b) = digits.split_at(point as usize);
        format!("{sign}{a}.{b}")
    }
}

/// `%v` of a number constraint: integral values of integral data print without exponent
/// (kube-openapi converts the bound to int64 first), others as Go floats.
pub(crate) fn go_bound(bound: f64, data_is_int: bool) -> String {
    if data_is_int {
        (bound as i64).to_string()
    } else {
        go_float(bound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_floats() {
        assert_eq!(go_float(100.0), "100");
        assert_eq!(go_float(1.5), "1.5");
        assert_eq!(go_float(1_000_000.0), "1e+06");
        assert_eq!(go_float(1_234_567.0), "1.234567e+06");
        assert_eq!(go_float(123_456.0), "123456");
        assert_eq!(go_float(0.0001), "0.0001");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(go_float(-2.5), "-2.5");
    }

    #[test]
    fn go_values() {
        assert_eq!(go_value(&json!(null)), "\"null\"");
        assert_eq!(go_value(&json!("a")), "\"a\"");
        assert_eq!(go_value(&json!(200)), "200");
        assert_eq!(
            go_value(&json!({"name": "a", "port": 80})),
            r#"map[string]interface {}{"name":"a", "port":80}"#
        );
        assert_eq!(
            go_value(&json!(["a", 1, null])),
            r#"[]interface {}{"a", 1, interface {}(nil)}"#
        );
    }
}
