//! Field selectors, as in `k8s.io/apimachinery/pkg/fields`.
//!
//! The syntax of `?fieldSelector=` is a comma-separated list of `field=value`,
//! `field==value` or `field!=value`. In values, `\`, `,` and `=` must be escaped with a
//! backslash ([`escape_value`] / [`unescape_value`]); the field part is taken literally up
//! to the first operator. A field missing from an object compares as the empty string.
//!
//! Which fields a resource supports is up to the server: check [`FieldSelector::requirements`]
//! (or use [`FieldSelector::check_supported`]) and answer 400 for unknown ones.

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

pub use crate::labels::SelectorError;

/// The operator of a field requirement. `=` and `==` both parse to `Equals`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldOperator {
    /// `field=value` or `field==value`.
    Equals,
    /// `field!=value`.
    NotEquals,
}

/// One term of a field selector: the field path, the operator and the (unescaped) value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    /// The field path, e.g. `metadata.name` or `spec.nodeName`.
    pub field: String,
    /// `Equals` or `NotEquals`.
    pub operator: FieldOperator,
    /// The literal value, with escapes removed.
    pub value: String,
}

impl FieldRequirement {
    /// Whether a field whose value is `actual` satisfies this term.
    pub fn matches(&self, actual: &str) -> bool {
        match self.operator {
            FieldOperator::Equals => actual == self.value,
            FieldOperator::NotEquals => actual != self.value,
        }
    }
}

impl fmt::Display for FieldRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.operator {
            FieldOperator::Equals => "=",
            FieldOperator::NotEquals => "!=",
        };
        write!(f, "{}{}{}", self.field, op, escape_value(&self.value))
    }
}

/// A parsed field selector: the AND of its terms. The empty selector matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSelector {
    terms: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// The selector that matches every object.
    pub fn everything() -> Self {
        FieldSelector::default()
    }

    /// A selector with the single term `field=value` (Go's `OneTermEqualSelector`).
    pub fn one_term_equal(field: impl Into<String>, value: impl Into<String>) -> Self {
        FieldSelector {
            terms: vec![FieldRequirement {
                field: field.into(),
                operator: FieldOperator::Equals,
                value: value.into(),
            }],
        }
    }

    /// Parses `a=b,c!=d` like Go's `fields.ParseSelector`. Terms are split on unescaped
    /// commas and sorted; empty terms are skipped; a term without `=`, `==` or `!=` is
    /// rejected with `invalid selector: '<selector>'; can't understand '<term>'`; a value with
    /// a bad escape or an unescaped `=` is rejected with Go's `invalid field selector: ...`.
    /// A term whose field and value are both empty (`=`) is dropped, as Go does.
    pub fn parse(selector: &str) -> Result<Self, SelectorError> {
        let mut parts = split_terms(selector);
        parts.sort_unstable();
        let mut terms = Vec::new();
        for part in parts {
            if part.is_empty() {
                continue;
            }
            let Some((lhs, op, rhs)) = split_term(part) else {
                return Err(SelectorError::new(format!(
                    "invalid selector: '{selector}'; can't understand '{part}'"
                )));
            };
            let value = unescape_value(rhs)?;
            if lhs.is_empty() && value.is_empty() {
                continue;
            }
            terms.push(FieldRequirement {
                field: lhs.to_string(),
                operator: op,
                value,
            });
        }
        Ok(FieldSelector { terms })
    }

    /// The selector with its field names renamed by `rename` (a version's field label
    /// conversion: events.k8s.io's `regarding.name` is the stored Event's
    /// `involvedObject.name`); terms `rename` leaves (None) keep their names.
    pub fn renamed(&self, rename: impl Fn(&str) -> Option<&'static str>) -> Self {
        let mut terms: Vec<FieldRequirement> = self
            .terms
            .iter()
            .map(|t| FieldRequirement {
                field: rename(&t.field).map_or_else(|| t.field.clone(), str::to_string),
                operator: t.operator,
                value: t.value.clone(),
            })
            .collect();
        terms.sort_by_key(|t| t.to_string());
        FieldSelector { terms }
    }

    /// The terms, in canonical (sorted) order, for the server to check each field is
    /// supported by the resource.
    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.terms
    }

    /// True if the selector does not restrict anything.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Fails with `field label not supported: <field>` (the message of Kubernetes' per-type
    /// field label conversions, e.g. for pods and custom resources) for the first field not
    /// in `supported`.
    pub fn check_supported(&self, supported: &[&str]) -> Result<(), SelectorError> {
        match self
            .terms
            .iter()
            .find(|t| !supported.contains(&t.field.as_str()))
        {
            Some(t) => Err(SelectorError::new(format!(
                "field label not supported: {}",
                t.field
            ))),
            None => Ok(()),
        }
    }

    /// The check Kubernetes applies to types without their own field label conversion (Go's
    /// `runtime.DefaultMetaV1FieldSelectorConversion`): only `metadata.name` and
    /// `metadata.namespace`, else `"<field>" is not a known field selector: only
    /// "metadata.name", "metadata.namespace"`.
    pub fn check_default_supported(&self) -> Result<(), SelectorError> {
        match self
            .terms
            .iter()
            .find(|t| t.field != "metadata.name" && t.field != "metadata.namespace")
        {
            Some(t) => Err(SelectorError::new(format!(
                "{} is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
                crate::validation::go_quote(&t.field)
            ))),
            None => Ok(()),
        }
    }

    /// Whether an object satisfies every term; `get_field` returns a field's value as a
    /// string, `None` when absent (which compares as `""`).
    pub fn matches(&self, get_field: impl Fn(&str) -> Option<String>) -> bool {
        self.terms.iter().all(|t| {
            let actual = get_field(&t.field).unwrap_or_default();
            t.matches(&actual)
        })
    }

    /// [`FieldSelector::matches`] reading fields from a JSON object with [`object_field`].
    pub fn matches_value(&self, object: &Value) -> bool {
        self.matches(|path| object_field(object, path))
    }

    /// If a term pins `field` to a single value with `=`, that value (Go's
    /// `RequiresExactMatch`).
    pub fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.field == field && t.operator == FieldOperator::Equals)
            .map(|t| t.value.as_str())
    }
}

impl fmt::Display for FieldSelector {
    /// The canonical form: terms joined by `,`, values escaped, `==` printed as `=`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{t}")?;
        }
        Ok(())
    }
}

impl FromStr for FieldSelector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FieldSelector::parse(s)
    }
}

/// Escapes a literal for use as a field selector value: `\` becomes `\\`, `,` becomes `\,`,
/// `=` becomes `\=`.
pub fn escape_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Reverses [`escape_value`]. Errors (Go's messages): `invalid field selector: invalid escape
/// sequence: \x` for a backslash before anything but `\`, `,`, `=` (or at the end), and
/// `invalid field selector: unescaped character in value: 61` for a bare `=` or `,` (Go prints
/// the rune's code).
pub fn unescape_value(s: &str) -> Result<String, SelectorError> {
    if !s.contains(['\\', ',', '=']) {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            match c {
                '\\' | ',' | '=' => out.push(c),
                other => {
                    return Err(SelectorError::new(format!(
                        "invalid field selector: invalid escape sequence: \\{other}"
                    )))
                }
            }
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => {
                return Err(SelectorError::new(format!(
                    "invalid field selector: unescaped character in value: {}",
                    c as u32
                )))
            }
            other => out.push(other),
        }
    }
    if in_slash {
        return Err(SelectorError::new(
            "invalid field selector: invalid escape sequence: \\",
        ));
    }
    Ok(out)
}

/// Splits on commas not preceded by an escaping backslash; escapes are kept.
fn split_terms(selector: &str) -> Vec<&str> {
    if selector.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in selector.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&selector[start..i]);
            start = i + 1;
        }
    }
    terms.push(&selector[start..]);
    terms
}

/// Splits a term at the first operator (`!=` before `==` before `=` at each position).
fn split_term(term: &str) -> Option<(&str, FieldOperator, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for (op, kind) in [
            ("!=", FieldOperator::NotEquals),
            ("==", FieldOperator::Equals),
            ("=", FieldOperator::Equals),
        ] {
            if let Some(value) = rest.strip_prefix(op) {
                return Some((&term[..i], kind, value));
            }
        }
    }
    None
}

/// Reads a dotted path (`metadata.name`, `spec.nodeName`, `status.phase`,
/// `involvedObject.kind`, `type`) from a JSON object as the string a field selector compares:
/// strings as is, booleans as `true`/`false`, numbers in decimal. Missing fields, `null`,
/// objects and arrays give `None` (which [`FieldSelector::matches`] compares as `""`).
pub fn object_field(obj: &Value, path: &str) -> Option<String> {
    let mut cur = obj;
    for segment in path.split('.') {
        cur = cur.as_object()?.get(segment)?;
    }
    match cur {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(s: &str) -> FieldSelector {
        FieldSelector::parse(s).unwrap()
    }

    #[test]
    fn parses_and_canonicalises() {
        assert!(parse("").is_empty());
        assert!(parse(",,").is_empty());
        assert!(parse("=").is_empty());
        assert_eq!(parse("metadata.name=foo").to_string(), "metadata.name=foo");
        assert_eq!(parse("metadata.name==foo").to_string(), "metadata.name=foo");
        assert_eq!(
            parse("status.phase!=Running,metadata.name=a").to_string(),
            "metadata.name=a,status.phase!=Running"
        );
        let s = parse("spec.nodeName=,metadata.namespace=default");
        assert_eq!(
            s.requirements(),
            &[
                FieldRequirement {
                    field: "metadata.namespace".into(),
                    operator: FieldOperator::Equals,
                    value: "default".into()
                },
                FieldRequirement {
                    field: "spec.nodeName".into(),
                    operator: FieldOperator::Equals,
                    value: String::new()
                },
            ]
        );
        let s = parse("a!=b");
        assert_eq!(s.requirements()[0].operator, FieldOperator::NotEquals);
        let s = parse("a=!b");
        assert_eq!(s.requirements()[0].value, "!b");
        let s = parse("=b");
        assert_eq!(s.requirements()[0].field, "");
    }

    #[test]
    fn parse_errors() {
        assert_eq!(
            FieldSelector::parse("foo").unwrap_err().to_string(),
            "invalid selector: 'foo'; can't understand 'foo'"
        );
        assert_eq!(
            FieldSelector::parse("a=b,foo").unwrap_err().to_string(),
            "invalid selector: 'a=b,foo'; can't understand 'foo'"
        );
        assert_eq!(
            FieldSelector::parse("a=b=c").unwrap_err().to_string(),
            "invalid field selector: unescaped character in value: 61"
        );
        assert_eq!(
            FieldSelector::parse("a=b\\c").unwrap_err().to_string(),
            "invalid field selector: invalid escape sequence: \\c"
        );
        assert_eq!(
            FieldSelector::parse("a=b\\").unwrap_err().to_string(),
            "invalid field selector: invalid escape sequence: \\"
        );
    }

    #[test]
    fn escaping() {
        assert_eq!(escape_value("a,b=c\\d"), "a\\,b\\=c\\\\d");
        assert_eq!(unescape_value("a\\,b\\=c\\\\d").unwrap(), "a,b=c\\d");
        assert_eq!(unescape_value("plain").unwrap(), "plain");
        assert_eq!(
            unescape_value("a,b").unwrap_err().to_string(),
            "invalid field selector: unescaped character in value: 44"
        );
        for raw in ["", "x", "a,b", "=", "\\", "a\\,=,", "ünï,cødé"] {
            assert_eq!(unescape_value(&escape_value(raw)).unwrap(), raw);
        }
        let s = parse("metadata.name=a\\,b,spec.x=c\\=d");
        assert_eq!(s.requirements()[0].value, "a,b");
        assert_eq!(s.requirements()[1].value, "c=d");
        assert_eq!(s.to_string(), "metadata.name=a\\,b,spec.x=c\\=d");
        let s = parse("a=x\\\\,b=y");
        assert_eq!(s.requirements()[0].value, "x\\");
        assert_eq!(s.requirements()[1].value, "y");
    }

    #[test]
    fn matching() {
        let pod = json!({
            "metadata": {"name": "p1", "namespace": "default"},
            "spec": {"nodeName": "n1", "hostNetwork": true, "priority": 10},
            "status": {"phase": "Running"}
        });
        let m = |s: &str| parse(s).matches_value(&pod);
        assert!(m(""));
        assert!(m("metadata.name=p1"));
        assert!(!m("metadata.name=p2"));
        assert!(m("metadata.name!=p2"));
        assert!(m("status.phase=Running,spec.nodeName=n1"));
        assert!(!m("status.phase=Running,spec.nodeName=n2"));
        assert!(m("spec.hostNetwork=true"));
        assert!(m("spec.priority=10"));
        assert!(m("spec.missing="));
        assert!(m("spec.missing!=x"));
        assert!(!m("spec.missing=x"));
        assert!(m("spec=")); // objects compare as empty
        let s = parse("metadata.name=p1");
        assert!(s.matches(|f| (f == "metadata.name").then(|| "p1".to_string())));
    }

    #[test]
    fn object_fields() {
        let ev = json!({"type": "Warning", "involvedObject": {"kind": "Pod", "uid": null}, "count": 3, "ratio": 1.5});
        assert_eq!(object_field(&ev, "type").as_deref(), Some("Warning"));
        assert_eq!(
            object_field(&ev, "involvedObject.kind").as_deref(),
            Some("Pod")
        );
        assert_eq!(object_field(&ev, "involvedObject.uid"), None);
        assert_eq!(object_field(&ev, "involvedObject.name"), None);
        assert_eq!(object_field(&ev, "involvedObject"), None);
        assert_eq!(object_field(&ev, "count").as_deref(), Some("3"));
        assert_eq!(object_field(&ev, "ratio").as_deref(), Some("1.5"));
        assert_eq!(object_field(&ev, "type.x"), None);
    }

    #[test]
    fn supported_fields() {
        let s = parse("metadata.name=a,spec.nodeName=b");
        assert!(s
            .check_supported(&["metadata.name", "spec.nodeName"])
            .is_ok());
        assert_eq!(
            s.check_supported(&["metadata.name"])
                .unwrap_err()
                .to_string(),
            "field label not supported: spec.nodeName"
        );
        assert_eq!(
            s.check_default_supported().unwrap_err().to_string(),
            "\"spec.nodeName\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
        );
        assert!(parse("metadata.namespace=x")
            .check_default_supported()
            .is_ok());
    }

    #[test]
    fn exact_match_and_constructors() {
        let s = parse("metadata.name=a,status.phase!=b");
        assert_eq!(s.requires_exact_match("metadata.name"), Some("a"));
        assert_eq!(s.requires_exact_match("status.phase"), None);
        let one = FieldSelector::one_term_equal("metadata.name", "x,y");
        assert_eq!(one.to_string(), "metadata.name=x\\,y");
        let back: FieldSelector = one.to_string().parse().unwrap();
        assert_eq!(back, one);
        assert!(FieldSelector::everything().is_empty());
    }
}
