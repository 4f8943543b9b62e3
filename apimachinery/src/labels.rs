//! Label selectors, as in `k8s.io/apimachinery/pkg/labels`.
//!
//! [`LabelSelector::parse`] reads the query-string syntax of `?labelSelector=` and
//! `kubectl -l`: comma-separated requirements `key=value`, `key==value`, `key!=value`,
//! `key in (a,b)`, `key notin (a)`, `key`, `!key` (and the rarely used `key>1`, `key<1`).
//! Keys must be qualified names and values label values; errors carry Kubernetes' messages,
//! which the API server returns verbatim in a 400 BadRequest.
//!
//! [`LabelSelector::from_label_selector_json`] converts a `metav1.LabelSelector` object
//! (`matchLabels` / `matchExpressions`) the way `metav1.LabelSelectorAsSelector` does.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde_json::Value;

use crate::validation::{
    aggregate_message, go_quote, go_string_slice, is_qualified_name, is_valid_label_value,
    FieldError,
};

/// A selector that could not be parsed or built; `Display` gives Kubernetes' message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SelectorError {
    message: String,
}

impl SelectorError {
    /// Builds an error carrying `message` verbatim.
    pub fn new(message: impl Into<String>) -> Self {
        SelectorError {
            message: message.into(),
        }
    }

    /// The message, as the API server reports it.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// The operator of a label [`Requirement`] (Go's `selection.Operator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operator {
    /// `key in (a,b)`: the label is present with one of the values.
    In,
    /// `key notin (a,b)`: the label is absent or has none of the values.
    NotIn,
    /// `key=value`.
    Equals,
    /// `key==value` (same meaning as `=`).
    DoubleEquals,
    /// `key!=value`: the label is absent or has another value.
    NotEquals,
    /// `key`: the label is present.
    Exists,
    /// `!key`: the label is absent.
    DoesNotExist,
    /// `key>N`: the label is an integer greater than N.
    GreaterThan,
    /// `key<N`: the label is an integer less than N.
    LessThan,
}

impl Operator {
    /// Go's string form of the operator (`in`, `notin`, `=`, `==`, `!=`, `exists`, `!`, `gt`,
    /// `lt`).
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::In => "in",
            Operator::NotIn => "notin",
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::Exists => "exists",
            Operator::DoesNotExist => "!",
            Operator::GreaterThan => "gt",
            Operator::LessThan => "lt",
        }
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The binary operators, in the order Go lists them in parse errors.
const BINARY_OPERATORS: &str = "in, notin, =, ==, !=, gt, lt";

/// One condition of a label selector: a key, an operator and its values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

impl Requirement {
    /// Builds a validated requirement (Go's `labels.NewRequirement`): the key must be a
    /// qualified name, the values label values; `In`/`NotIn` need at least one value,
    /// `=`/`==`/`!=`/`gt`/`lt` exactly one, `Exists`/`DoesNotExist` none; `gt`/`lt` values must
    /// be integers. The error lists every problem as Kubernetes does.
    pub fn new(
        key: impl Into<String>,
        operator: Operator,
        values: Vec<String>,
    ) -> Result<Self, SelectorError> {
        Self::build(key.into(), operator, values, false)
    }

    /// `nil_values` renders an empty value list as a Go nil slice in messages.
    fn build(
        key: String,
        operator: Operator,
        values: Vec<String>,
        nil_values: bool,
    ) -> Result<Self, SelectorError> {
        let mut errs = Vec::new();
        let key_errs = is_qualified_name(&key);
        if !key_errs.is_empty() {
            errs.push(FieldError::invalid("key", &key, key_errs.join("; ")));
        }
        let rendered = || {
            if values.is_empty() && nil_values {
                go_string_slice(None)
            } else {
                go_string_slice(Some(&values))
            }
        };
        match operator {
            Operator::In | Operator::NotIn => {
                if values.is_empty() {
                    errs.push(FieldError::invalid_rendered(
                        "values",
                        rendered(),
                        "for 'in', 'notin' operators, values set can't be empty",
                    ));
                }
            }
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals => {
                if values.len() != 1 {
                    errs.push(FieldError::invalid_rendered(
                        "values",
                        rendered(),
                        "exact-match compatibility requires one single value",
                    ));
                }
            }
            Operator::Exists | Operator::DoesNotExist => {
                if !values.is_empty() {
                    errs.push(FieldError::invalid_rendered(
                        "values",
                        rendered(),
                        "values set must be empty for exists and does not exist",
                    ));
                }
            }
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    errs.push(FieldError::invalid_rendered(
                        "values",
                        rendered(),
                        "for 'Gt', 'Lt' operators, exactly one value is required",
                    ));
                }
                for (i, v) in values.iter().enumerate() {
                    if v.parse::<i64>().is_err() {
                        errs.push(FieldError::invalid(
                            format!("values[{i}]"),
                            v,
                            "for 'Gt', 'Lt' operators, the value must be an integer",
                        ));
                    }
                }
            }
        }
        for (i, v) in values.iter().enumerate() {
            let value_errs = is_valid_label_value(v);
            if !value_errs.is_empty() {
                errs.push(FieldError::invalid(
                    format!("values[{i}][{key}]"),
                    v,
                    value_errs.join("; "),
                ));
            }
        }
        if errs.is_empty() {
            Ok(Requirement {
                key,
                operator,
                values,
            })
        } else {
            Err(SelectorError::new(aggregate_message(&errs)))
        }
    }

    /// The label key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The operator.
    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The values, in the order given (sorted and deduplicated when parsed from a string).
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Whether a set of labels satisfies this requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_with(&|k: &str| labels.get(k).map(String::as_str))
    }

    fn has_value(&self, v: &str) -> bool {
        self.values.iter().any(|x| x == v)
    }

    /// Matches against any label lookup.
    fn matches_with<'a, F: Fn(&str) -> Option<&'a str>>(&self, lookup: &F) -> bool {
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => {
                lookup(&self.key).is_some_and(|v| self.has_value(v))
            }
            Operator::NotIn | Operator::NotEquals => {
                lookup(&self.key).is_none_or(|v| !self.has_value(v))
            }
            Operator::Exists => lookup(&self.key).is_some(),
            Operator::DoesNotExist => lookup(&self.key).is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let Some(actual) = lookup(&self.key).and_then(|v| v.parse::<i64>().ok()) else {
                    return false;
                };
                let [wanted] = self.values.as_slice() else {
                    return false;
                };
                let Ok(wanted) = wanted.parse::<i64>() else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    actual > wanted
                } else {
                    actual < wanted
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    /// Go's `Requirement.String()`: `!k`, `k`, `k=v`, `k==v`, `k!=v`, `k in (a,b)`,
    /// `k notin (a)`, `k>1`, `k<1`; set values are printed sorted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let op = match self.operator {
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => " in ",
            Operator::NotIn => " notin ",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
        };
        f.write_str(op)?;
        let set = matches!(self.operator, Operator::In | Operator::NotIn);
        if set {
            f.write_str("(")?;
        }
        let mut values: Vec<&str> = self.values.iter().map(String::as_str).collect();
        values.sort_unstable();
        f.write_str(&values.join(","))?;
        if set {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// A label selector: the AND of its [`Requirement`]s. The empty selector matches everything;
/// [`LabelSelector::nothing`] (what a `null` `metav1.LabelSelector` converts to) matches
/// nothing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
    nothing: bool,
}

impl LabelSelector {
    /// The selector that matches every object.
    pub fn everything() -> Self {
        LabelSelector::default()
    }

    /// The selector that matches no object.
    pub fn nothing() -> Self {
        LabelSelector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// Parses the string syntax (`a=b,c in (d,e),!f`). The empty string (or only blanks)
    /// selects everything. Requirements are sorted by key, as Go does.
    pub fn parse(selector: &str) -> Result<Self, SelectorError> {
        let mut parser = Parser::new(selector);
        let mut requirements = parser.parse()?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// A selector requiring exactly these labels (Go's `SelectorFromSet`, no validation).
    pub fn from_set(labels: &BTreeMap<String, String>) -> Self {
        LabelSelector {
            requirements: labels
                .iter()
                .map(|(k, v)| Requirement {
                    key: k.clone(),
                    operator: Operator::Equals,
                    values: vec![v.clone()],
                })
                .collect(),
            nothing: false,
        }
    }

    /// Converts a `metav1.LabelSelector` object (Go's `metav1.LabelSelectorAsSelector`):
    /// `null` selects nothing, `{}` everything; `matchLabels` become `=` requirements,
    /// `matchExpressions` with operators `In`, `NotIn`, `Exists`, `DoesNotExist` the
    /// corresponding requirements, validated like [`Requirement::new`].
    pub fn from_label_selector_json(selector: &Value) -> Result<Self, SelectorError> {
        let obj = match selector {
            Value::Null => return Ok(LabelSelector::nothing()),
            Value::Object(o) => o,
            other => {
                return Err(SelectorError::new(format!(
                    "a label selector must be an object, not {other}"
                )))
            }
        };
        let mut requirements = Vec::new();
        match obj.get("matchLabels") {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                for (k, v) in m {
                    let v = match v {
                        Value::String(s) => s.clone(),
                        Value::Null => String::new(),
                        other => {
                            return Err(SelectorError::new(format!(
                                "matchLabels[{k}] must be a string, not {other}"
                            )))
                        }
                    };
                    requirements.push(Requirement::build(
                        k.clone(),
                        Operator::Equals,
                        vec![v],
                        false,
                    )?);
                }
            }
            Some(other) => {
                return Err(SelectorError::new(format!(
                    "matchLabels must be an object, not {other}"
                )))
            }
        }
        match obj.get("matchExpressions") {
            None | Some(Value::Null) => {}
            Some(Value::Array(exprs)) => {
                for expr in exprs {
                    requirements.push(requirement_from_expression(expr)?);
                }
            }
            Some(other) => {
                return Err(SelectorError::new(format!(
                    "matchExpressions must be an array, not {other}"
                )))
            }
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// Returns a copy with more requirements, re-sorted by key (Go's `Selector.Add`).
    pub fn add(&self, more: impl IntoIterator<Item = Requirement>) -> Self {
        let mut requirements = self.requirements.clone();
        requirements.extend(more);
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        LabelSelector {
            requirements,
            nothing: self.nothing,
        }
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// True if the selector does not restrict anything (matches every object).
    pub fn is_empty(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// True for the selector that matches nothing ([`LabelSelector::nothing`]).
    pub fn matches_nothing(&self) -> bool {
        self.nothing
    }

    /// Whether these labels satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_with(&|k: &str| labels.get(k).map(String::as_str))
    }

    /// Whether an object's `metadata.labels` satisfy the selector; an object without labels
    /// has none. Non-string label values are ignored.
    pub fn matches_value(&self, object: &Value) -> bool {
        let labels = object
            .get("metadata")
            .and_then(|m| m.get("labels"))
            .and_then(Value::as_object);
        self.matches_with(&|k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str))
    }

    fn matches_with<'a, F: Fn(&str) -> Option<&'a str>>(&self, lookup: &F) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches_with(lookup))
    }

    /// If the selector pins `label` to a single value (`=`, `==` or a one-value `in`), that
    /// value (Go's `RequiresExactMatch`).
    pub fn requires_exact_match(&self, label: &str) -> Option<&str> {
        let r = self.requirements.iter().find(|r| r.key == label)?;
        match (r.operator, r.values.as_slice()) {
            (Operator::Equals | Operator::DoubleEquals | Operator::In, [v]) => Some(v),
            _ => None,
        }
    }
}

fn requirement_from_expression(expr: &Value) -> Result<Requirement, SelectorError> {
    let Some(e) = expr.as_object() else {
        return Err(SelectorError::new(format!(
            "matchExpressions entries must be objects, not {expr}"
        )));
    };
    let key = match e.get("key") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(SelectorError::new(format!(
                "matchExpressions key must be a string, not {other}"
            )))
        }
    };
    let op_str = e.get("operator").and_then(Value::as_str).unwrap_or("");
    let operator = match op_str {
        "In" => Operator::In,
        "NotIn" => Operator::NotIn,
        "Exists" => Operator::Exists,
        "DoesNotExist" => Operator::DoesNotExist,
        other => {
            return Err(SelectorError::new(format!(
                "{} is not a valid pod selector operator",
                go_quote(other)
            )))
        }
    };
    let values = match e.get("values") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Value::String(s) => out.push(s.clone()),
                    other => {
                        return Err(SelectorError::new(format!(
                            "matchExpressions values must be strings, not {other}"
                        )))
                    }
                }
            }
            out
        }
        Some(other) => {
            return Err(SelectorError::new(format!(
                "matchExpressions values must be an array, not {other}"
            )))
        }
    };
    Requirement::build(key, operator, values, true)
}

impl fmt::Display for LabelSelector {
    /// The canonical string form: requirements joined by `,` (empty for everything and for
    /// nothing).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl FromStr for LabelSelector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LabelSelector::parse(s)
    }
}

// ---------------------------------------------------------------------------------------------
// Lexer and parser (a faithful port of the behaviour of Go's labels.Parser)
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Error,
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

fn keyword_token(s: &[u8]) -> Option<Token> {
    Some(match s {
        b")" => Token::ClosedPar,
        b"," => Token::Comma,
        b"!" => Token::DoesNotExist,
        b"==" => Token::DoubleEquals,
        b"=" => Token::Equals,
        b">" => Token::GreaterThan,
        b"in" => Token::In,
        b"<" => Token::LessThan,
        b"!=" => Token::NotEquals,
        b"notin" => Token::NotIn,
        b"(" => Token::OpenPar,
        _ => return None,
    })
}

fn is_whitespace(ch: u8) -> bool {
    matches!(ch, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special_symbol(ch: u8) -> bool {
    matches!(ch, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

struct Lexer<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Lexer<'_> {
    /// Returns the current byte and advances; 0 at the end (a NUL byte also reads as 0, as in
    /// Go).
    fn read(&mut self) -> u8 {
        match self.s.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                b
            }
            None => 0,
        }
    }

    fn unread(&mut self) {
        self.pos = self.pos.saturating_sub(1);
    }

    fn scan_id_or_keyword(&mut self) -> (Token, String) {
        let mut buf = Vec::new();
        loop {
            let ch = self.read();
            if ch == 0 {
                break;
            }
            if is_special_symbol(ch) || is_whitespace(ch) {
                self.unread();
                break;
            }
            buf.push(ch);
        }
        let lit = String::from_utf8_lossy(&buf).into_owned();
        match keyword_token(&buf) {
            Some(t) => (t, lit),
            None => (Token::Identifier, lit),
        }
    }

    fn scan_special_symbol(&mut self) -> (Token, String) {
        let mut buf = Vec::new();
        let mut last: Option<(Token, String)> = None;
        loop {
            let ch = self.read();
            if ch == 0 {
                break;
            }
            if is_special_symbol(ch) {
                buf.push(ch);
                if let Some(t) = keyword_token(&buf) {
                    last = Some((t, String::from_utf8_lossy(&buf).into_owned()));
                } else if last.is_some() {
                    self.unread();
                    break;
                }
            } else {
                self.unread();
                break;
            }
        }
        match last {
            Some(item) => item,
            None => (
                Token::Error,
                format!(
                    "error expected: keyword found '{}'",
                    String::from_utf8_lossy(&buf)
                ),
            ),
        }
    }

    fn lex(&mut self) -> (Token, String) {
        let mut ch = self.read();
        while is_whitespace(ch) {
            ch = self.read();
        }
        if ch == 0 {
            return (Token::EndOfString, String::new());
        }
        self.unread();
        if is_special_symbol(ch) {
            self.scan_special_symbol()
        } else {
            self.scan_id_or_keyword()
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    Values,
}

struct Parser {
    items: Vec<(Token, String)>,
    position: usize,
}

fn unable(msg: impl fmt::Display) -> SelectorError {
    SelectorError::new(format!("unable to parse requirement: {msg}"))
}

impl Parser {
    fn new(selector: &str) -> Self {
        let mut lexer = Lexer {
            s: selector.as_bytes(),
            pos: 0,
        };
        let mut items = Vec::new();
        loop {
            let (tok, lit) = lexer.lex();
            items.push((tok, lit));
            if tok == Token::EndOfString {
                break;
            }
        }
        Parser { items, position: 0 }
    }

    fn item(&self, idx: usize, ctx: Context) -> (Token, String) {
        let (tok, lit) = self
            .items
            .get(idx)
            .or_else(|| self.items.last())
            .cloned()
            .unwrap_or((Token::EndOfString, String::new()));
        let tok = match (ctx, tok) {
            (Context::Values, Token::In | Token::NotIn) => Token::Identifier,
            (_, t) => t,
        };
        (tok, lit)
    }

    fn lookahead(&self, ctx: Context) -> (Token, String) {
        self.item(self.position, ctx)
    }

    fn consume(&mut self, ctx: Context) -> (Token, String) {
        let it = self.item(self.position, ctx);
        if self.position < self.items.len() {
            self.position += 1;
        }
        it
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, SelectorError> {
        let mut requirements = Vec::new();
        loop {
            let (tok, lit) = self.lookahead(Context::Values);
            match tok {
                Token::Identifier | Token::DoesNotExist => {
                    requirements.push(self.parse_requirement()?);
                    let (t, l) = self.consume(Context::Values);
                    match t {
                        Token::EndOfString => return Ok(requirements),
                        Token::Comma => {
                            let (t2, l2) = self.lookahead(Context::Values);
                            if t2 != Token::Identifier && t2 != Token::DoesNotExist {
                                return Err(SelectorError::new(format!(
                                    "found '{l2}', expected: identifier after ','"
                                )));
                            }
                        }
                        _ => {
                            return Err(SelectorError::new(format!(
                                "found '{l}', expected: ',' or 'end of string'"
                            )))
                        }
                    }
                }
                Token::EndOfString => return Ok(requirements),
                _ => {
                    return Err(SelectorError::new(format!(
                        "found '{lit}', expected: !, identifier, or 'end of string'"
                    )))
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, SelectorError> {
        let (key, inferred) = self.parse_key_and_infer_operator()?;
        if let Some(op) = inferred {
            return Requirement::build(key, op, Vec::new(), false).map_err(unable);
        }
        let op = self.parse_operator()?;
        let values = match op {
            Operator::In | Operator::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        Requirement::build(key, op, values, false).map_err(unable)
    }

    /// Returns the key and, for `!key` or a bare `key`, the unary operator.
    fn parse_key_and_infer_operator(
        &mut self,
    ) -> Result<(String, Option<Operator>), SelectorError> {
        let mut operator = None;
        let (mut tok, mut lit) = self.consume(Context::Values);
        if tok == Token::DoesNotExist {
            operator = Some(Operator::DoesNotExist);
            (tok, lit) = self.consume(Context::Values);
        }
        if tok != Token::Identifier {
            return Err(unable(format!("found '{lit}', expected: identifier")));
        }
        let key_errs = is_qualified_name(&lit);
        if !key_errs.is_empty() {
            // Go validates with a nil field path here, which prints as "<nil>".
            return Err(unable(FieldError::invalid(
                "<nil>",
                &lit,
                key_errs.join("; "),
            )));
        }
        let (t, _) = self.lookahead(Context::Values);
        if (t == Token::EndOfString || t == Token::Comma) && operator.is_none() {
            operator = Some(Operator::Exists);
        }
        Ok((lit, operator))
    }

    fn parse_operator(&mut self) -> Result<Operator, SelectorError> {
        let (tok, lit) = self.consume(Context::KeyAndOperator);
        Ok(match tok {
            Token::In => Operator::In,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            Token::NotIn => Operator::NotIn,
            Token::NotEquals => Operator::NotEquals,
            _ => {
                return Err(unable(format!(
                    "found '{lit}', expected: {BINARY_OPERATORS}"
                )))
            }
        })
    }

    /// `(a,b,c)`: returns the sorted, deduplicated values.
    fn parse_values(&mut self) -> Result<Vec<String>, SelectorError> {
        let (tok, lit) = self.consume(Context::Values);
        if tok != Token::OpenPar {
            return Err(unable(format!("found '{lit}' expected: '('")));
        }
        let (tok, lit) = self.lookahead(Context::Values);
        match tok {
            Token::Identifier | Token::Comma => {
                let values = self.parse_identifiers_list()?;
                let (tok, _) = self.consume(Context::Values);
                if tok != Token::ClosedPar {
                    return Err(unable(format!("found '{lit}', expected: ')'")));
                }
                Ok(values)
            }
            Token::ClosedPar => {
                self.consume(Context::Values);
                Ok(vec![String::new()])
            }
            _ => Err(unable(format!(
                "found '{lit}', expected: ',', ')' or identifier"
            ))),
        }
    }

    fn parse_identifiers_list(&mut self) -> Result<Vec<String>, SelectorError> {
        let mut set = std::collections::BTreeSet::new();
        loop {
            let (tok, lit) = self.consume(Context::Values);
            match tok {
                Token::Identifier => {
                    set.insert(lit);
                    let (tok2, lit2) = self.lookahead(Context::Values);
                    match tok2 {
                        Token::Comma => continue,
                        Token::ClosedPar => return Ok(set.into_iter().collect()),
                        _ => return Err(unable(format!("found '{lit2}', expected: ',' or ')'"))),
                    }
                }
                Token::Comma => {
                    if set.is_empty() {
                        set.insert(String::new());
                    }
                    let (tok2, _) = self.lookahead(Context::Values);
                    if tok2 == Token::ClosedPar {
                        set.insert(String::new());
                        return Ok(set.into_iter().collect());
                    }
                    if tok2 == Token::Comma {
                        set.insert(String::new());
                    }
                }
                _ => {
                    return Err(unable(format!(
                        "found '{lit}', expected: ',', or identifier"
                    )))
                }
            }
        }
    }

    fn parse_exact_value(&mut self) -> Result<Vec<String>, SelectorError> {
        let (tok, _) = self.lookahead(Context::Values);
        if tok == Token::EndOfString || tok == Token::Comma {
            return Ok(vec![String::new()]);
        }
        let (tok, lit) = self.consume(Context::Values);
        if tok == Token::Identifier {
            Ok(vec![lit])
        } else {
            Err(unable(format!("found '{lit}', expected: identifier")))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    const NAME_PART_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
    const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn err(s: &str) -> String {
        LabelSelector::parse(s).unwrap_err().to_string()
    }

    fn canon(s: &str) -> String {
        LabelSelector::parse(s).unwrap().to_string()
    }

    #[test]
    fn parses_valid_selectors() {
        for s in [
            "",
            "   ",
            "x=a,y=b,z=c",
            "x = a",
            "x=a, y=b",
            "x=,z= ",
            "x= ,z= ",
            "!x",
            "x>1",
            "x>1,z<5",
            "x==a",
            "x!=a",
            "x in (a)",
            "x in (a,,b)",
            "x notin ()",
            "x in (,)",
            "x in (,a)",
            "x in (a,)",
            "x in (in)",
            "in in (in)",
            "notin notin (notin)",
            "x\tin\t(a, b)",
            "example.com/app=web",
            "x=A_b-c.D",
        ] {
            assert!(LabelSelector::parse(s).is_ok(), "{s:?}");
        }
    }

    #[test]
    fn canonical_form() {
        assert_eq!(canon(""), "");
        assert_eq!(canon("z=c,x=a,y=b"), "x=a,y=b,z=c");
        assert_eq!(canon("x == a"), "x==a");
        assert_eq!(canon("x in (c,a,b,a)"), "x in (a,b,c)");
        assert_eq!(canon("x notin ()"), "x notin ()");
        assert_eq!(canon("x in (a,,b)"), "x in (,a,b)");
        assert_eq!(canon("!x, y"), "!x,y");
        assert_eq!(canon("x>1"), "x>1");
        assert_eq!(canon("x="), "x=");
        assert_eq!(canon("a in (in)"), "a in (in)");
        assert_eq!(canon("x=a,x!=b"), "x=a,x!=b");
    }

    #[test]
    fn parse_errors() {
        assert_eq!(
            err("a in ("),
            "unable to parse requirement: found '', expected: ',', ')' or identifier"
        );
        assert_eq!(
            err("a in x"),
            "unable to parse requirement: found 'x' expected: '('"
        );
        assert_eq!(
            err("=b"),
            "found '=', expected: !, identifier, or 'end of string'"
        );
        assert_eq!(
            err("a b"),
            "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"
        );
        assert_eq!(err("a,"), "found '', expected: identifier after ','");
        assert_eq!(
            err(",a"),
            "found ',', expected: !, identifier, or 'end of string'"
        );
        assert_eq!(err("a=b c"), "found 'c', expected: ',' or 'end of string'");
        assert_eq!(
            err("a in (x y)"),
            "unable to parse requirement: found 'y', expected: ',' or ')'"
        );
        assert_eq!(
            err("a in (x,"),
            "unable to parse requirement: found '', expected: ',', or identifier"
        );
        assert_eq!(
            err("a in (x,="),
            "unable to parse requirement: found '=', expected: ',', or identifier"
        );
        assert_eq!(
            err("a=("),
            "unable to parse requirement: found '(', expected: identifier"
        );
        assert_eq!(
            err("!"),
            "unable to parse requirement: found '', expected: identifier"
        );
        assert_eq!(err("!a=b"), "found '=', expected: ',' or 'end of string'");
        assert_eq!(err("a=b,,c"), "found ',', expected: identifier after ','");
    }

    #[test]
    fn key_and_value_validation_errors() {
        assert_eq!(
            err("-a=b"),
            format!("unable to parse requirement: <nil>: Invalid value: \"-a\": {NAME_PART_MSG}")
        );
        assert_eq!(
            err("a/b/c"),
            "unable to parse requirement: <nil>: Invalid value: \"a/b/c\": a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        );
        let long_key = "k".repeat(64);
        assert_eq!(
            err(&long_key),
            format!(
                "unable to parse requirement: <nil>: Invalid value: \"{long_key}\": name part must be no more than 63 bytes"
            )
        );
        assert_eq!(
            err("a=b$"),
            format!("unable to parse requirement: values[0][a]: Invalid value: \"b$\": {LABEL_VALUE_MSG}")
        );
        let long = "v".repeat(64);
        assert_eq!(
            err(&format!("a={long}")),
            format!(
                "unable to parse requirement: values[0][a]: Invalid value: \"{long}\": must be no more than 63 bytes"
            )
        );
        assert_eq!(
            err("a in (ok,-bad)"),
            format!("unable to parse requirement: values[0][a]: Invalid value: \"-bad\": {LABEL_VALUE_MSG}")
        );
        assert_eq!(
            err("a>x"),
            format!(
                "unable to parse requirement: values[0]: Invalid value: \"x\": for 'Gt', 'Lt' operators, the value must be an integer"
            )
        );
        assert_eq!(
            err("a>-1"),
            format!("unable to parse requirement: values[0][a]: Invalid value: \"-1\": {LABEL_VALUE_MSG}")
        );
        let e = err("a in (x-,-y)");
        assert!(
            e.starts_with("unable to parse requirement: [values[0][a]: Invalid value: \"-y\""),
            "{e}"
        );
        assert!(e.contains(", values[1][a]: Invalid value: \"x-\""), "{e}");
        assert!(e.ends_with("]"), "{e}");
    }

    #[test]
    fn matching() {
        let l = labels(&[("app", "web"), ("tier", "front"), ("n", "5")]);
        let m = |s: &str| LabelSelector::parse(s).unwrap().matches(&l);
        assert!(m(""));
        assert!(m("app=web"));
        assert!(m("app==web"));
        assert!(!m("app=db"));
        assert!(m("app!=db"));
        assert!(m("missing!=x"));
        assert!(!m("app!=web"));
        assert!(m("app in (web,db)"));
        assert!(!m("app in (db)"));
        assert!(!m("missing in (x)"));
        assert!(m("app notin (db)"));
        assert!(m("missing notin (x)"));
        assert!(!m("app notin (web)"));
        assert!(m("app"));
        assert!(!m("missing"));
        assert!(m("!missing"));
        assert!(!m("!app"));
        assert!(m("app=web,tier=front"));
        assert!(!m("app=web,tier=back"));
        assert!(m("n>4"));
        assert!(!m("n>5"));
        assert!(m("n<6"));
        assert!(!m("app>1"));
        assert!(!m("missing>1"));
        assert!(!m("x="));
        assert!(LabelSelector::parse("x=")
            .unwrap()
            .matches(&labels(&[("x", "")])));
        assert!(LabelSelector::parse("x in (a,)")
            .unwrap()
            .matches(&labels(&[("x", "")])));
        assert!(LabelSelector::parse("in in (in)")
            .unwrap()
            .matches(&labels(&[("in", "in")])));
    }

    #[test]
    fn matches_objects() {
        let obj = json!({"metadata": {"name": "x", "labels": {"app": "web", "weird": 5}}});
        assert!(LabelSelector::parse("app=web").unwrap().matches_value(&obj));
        assert!(!LabelSelector::parse("app=db").unwrap().matches_value(&obj));
        assert!(!LabelSelector::parse("weird").unwrap().matches_value(&obj));
        let bare = json!({"metadata": {"name": "x"}});
        assert!(LabelSelector::parse("!app").unwrap().matches_value(&bare));
        assert!(!LabelSelector::parse("app").unwrap().matches_value(&bare));
        assert!(LabelSelector::everything().matches_value(&bare));
        assert!(!LabelSelector::nothing().matches_value(&obj));
    }

    #[test]
    fn label_selector_json() {
        let s = LabelSelector::from_label_selector_json(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["b", "a"]},
                {"key": "env", "operator": "NotIn", "values": ["prod"]},
                {"key": "canary", "operator": "DoesNotExist"},
                {"key": "zone", "operator": "Exists"}
            ]
        }))
        .unwrap();
        assert_eq!(
            s.to_string(),
            "app=web,!canary,env notin (prod),tier in (a,b),zone"
        );
        assert!(s.matches(&labels(&[("app", "web"), ("tier", "a"), ("zone", "z")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "a")])));
        assert_eq!(s.requires_exact_match("app"), Some("web"));
        assert_eq!(s.requires_exact_match("tier"), None);

        let empty = LabelSelector::from_label_selector_json(&json!({})).unwrap();
        assert!(empty.is_empty());
        assert!(empty.matches(&BTreeMap::new()));
        let none = LabelSelector::from_label_selector_json(&Value::Null).unwrap();
        assert!(none.matches_nothing());
        assert!(!none.matches(&BTreeMap::new()));

        let e = LabelSelector::from_label_selector_json(&json!({
            "matchExpressions": [{"key": "a", "operator": "Foo"}]
        }))
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "\"Foo\" is not a valid pod selector operator"
        );
        let e = LabelSelector::from_label_selector_json(&json!({
            "matchExpressions": [{"key": "a", "operator": "In", "values": []}]
        }))
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty"
        );
        let e = LabelSelector::from_label_selector_json(&json!({
            "matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]
        }))
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "values: Invalid value: []string{\"x\"}: values set must be empty for exists and does not exist"
        );
        let e = LabelSelector::from_label_selector_json(&json!({"matchLabels": {"-a": "b c"}}))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("[key: Invalid value: \"-a\": {NAME_PART_MSG}, values[0][-a]: Invalid value: \"b c\": {LABEL_VALUE_MSG}]")
        );
        assert!(LabelSelector::from_label_selector_json(&json!("x")).is_err());
        assert!(
            LabelSelector::from_label_selector_json(&json!({"matchLabels": {"a": 1}})).is_err()
        );
    }

    #[test]
    fn requirement_constructor() {
        let r = Requirement::new("a", Operator::In, vec!["x".into(), "y".into()]).unwrap();
        assert_eq!(r.key(), "a");
        assert_eq!(r.operator(), Operator::In);
        assert_eq!(r.values(), ["x", "y"]);
        assert_eq!(r.to_string(), "a in (x,y)");
        assert_eq!(
            Requirement::new("a", Operator::Equals, vec![]).unwrap_err().to_string(),
            "values: Invalid value: []string{}: exact-match compatibility requires one single value"
        );
        assert_eq!(
            Requirement::new("a", Operator::GreaterThan, vec!["1".into(), "2".into()])
                .unwrap_err()
                .to_string(),
            "values: Invalid value: []string{\"1\", \"2\"}: for 'Gt', 'Lt' operators, exactly one value is required"
        );
        let s = LabelSelector::everything()
            .add([r, Requirement::new("0", Operator::Exists, vec![]).unwrap()]);
        assert_eq!(s.to_string(), "0,a in (x,y)");
        assert_eq!(Operator::NotIn.to_string(), "notin");
    }

    #[test]
    fn from_set_and_from_str() {
        let s = LabelSelector::from_set(&labels(&[("b", "2"), ("a", "1")]));
        assert_eq!(s.to_string(), "a=1,b=2");
        let p: LabelSelector = "b=2,a=1".parse().unwrap();
        assert_eq!(p, s);
        assert!(LabelSelector::from_set(&BTreeMap::new()).is_empty());
    }

    #[test]
    fn nul_byte_ends_input_like_go() {
        assert!(LabelSelector::parse("\0a=b").unwrap().is_empty());
    }
}
