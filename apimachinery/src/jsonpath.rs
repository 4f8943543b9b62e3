//! Kubernetes JSONPath (k8s.io/client-go/util/jsonpath): the template dialect of CRD printer
//! columns and `kubectl -o jsonpath`. A template is text with actions in braces
//! (`{.metadata.name}`); inside an action:
//!
//! - `.field` (a backslash escapes a terminator: `.metadata.annotations.example\.com/key`),
//!   `.*` (every value), `..` (every nested object and list, then what follows selects in them);
//! - `[n]`, `[-1]`, `[start:end:step]`, `[*]`; `['key']` (read as `.key`); unions
//!   `[a,b]` of the same forms;
//! - filters `[?(@.type=="Ready")]` comparing with `==`, `!=`, `<`, `>`, `<=`, `>=`, or an
//!   existence test `[?(@.field)]`;
//! - `$` and `@` (the value at hand), string, number and boolean literals;
//! - `range …` / `end` around a part of the template, repeated for each value.
//!
//! Missing keys select nothing (printer columns and kubectl set `AllowMissingKeys`).

use std::cmp::Ordering;

use serde_json::Value;

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Action(Vec<Node>),
    Range(Vec<Node>, Vec<Part>),
}

/// One step of a path.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Field(String),
    Wildcard,
    Recursive,
    Index(i64),
    Slice(Option<i64>, Option<i64>, Option<i64>),
    Filter(Box<Filter>),
    Union(Vec<Vec<Node>>),
    Literal(Value),
}

#[derive(Debug, Clone, PartialEq)]
struct Filter {
    left: Vec<Node>,
    /// None: an existence test.
    op: Option<(Op, Vec<Node>)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

/// Deepest nesting of ranges, unions and filters a template may have.
const MAX_DEPTH: usize = 32;

impl Template {
    /// Parse a template (`{.spec.replicas}`, `name: {.metadata.name}`, `{range .items[*]}…{end}`).
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut p = Parser {
            s: text,
            pos: 0,
            depth: 0,
        };
        let (parts, ended) = p.template()?;
        if ended {
            return Err("not in range, nothing to end".into());
        }
        Ok(Template { parts })
    }

    /// Parse a path as a printer column or a scale path gives it: `.spec.x`, with or without
    /// the braces.
    pub fn parse_path(path: &str) -> Result<Template, String> {
        let t = path.trim();
        if t.starts_with('{') {
            Template::parse(t)
        } else {
            Template::parse(&format!("{{{t}}}"))
        }
    }

    /// The values the template's first action selects (what a printer column shows the first
    /// of). Evaluation errors (an index out of range, a filter over a non-list) select nothing.
    pub fn values<'a>(&self, data: &'a Value) -> Vec<Cow<'a>> {
        for part in &self.parts {
            if let Part::Action(nodes) = part {
                return eval_list(vec![Cow::Borrowed(data)], nodes).unwrap_or_default();
            }
        }
        Vec::new()
    }

    /// Render the template as kubectl's `-o jsonpath` prints it: text as is, each selected value
    /// as text (strings bare, other values as JSON), values of one action separated by a space.
    pub fn render(&self, data: &Value) -> Result<String, String> {
        let mut out = String::new();
        render_parts(&self.parts, data, &mut out)?;
        Ok(out)
    }
}

/// A selected value: a part of the input, or a literal of the template.
pub type Cow<'a> = std::borrow::Cow<'a, Value>;

fn render_parts(parts: &[Part], data: &Value, out: &mut String) -> Result<(), String> {
    for part in parts {
        match part {
            Part::Text(t) => out.push_str(t),
            Part::Action(nodes) => {
                let values = eval_list(vec![Cow::Borrowed(data)], nodes)?;
                let texts: Vec<String> = values.iter().map(|v| text_of(v)).collect();
                out.push_str(&texts.join(" "));
            }
            Part::Range(nodes, body) => {
                for v in eval_list(vec![Cow::Borrowed(data)], nodes)? {
                    // A range over one list walks its items.
                    match v.as_ref() {
                        Value::Array(items) => {
                            for item in items {
                                render_parts(body, item, out)?;
                            }
                        }
                        other => render_parts(body, other, out)?,
                    }
                }
            }
        }
    }
    Ok(())
}

/// A value as JSONPath prints it: a string as it is, anything else as JSON.
pub fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------------------------

fn eval_list<'a>(mut cur: Vec<Cow<'a>>, nodes: &[Node]) -> Result<Vec<Cow<'a>>, String> {
    for n in nodes {
        cur = eval(cur, n)?;
    }
    Ok(cur)
}

fn children<'a>(v: &Cow<'a>) -> Vec<Cow<'a>> {
    match v {
        Cow::Borrowed(Value::Object(m)) => m.values().map(Cow::Borrowed).collect(),
        Cow::Borrowed(Value::Array(a)) => a.iter().map(Cow::Borrowed).collect(),
        Cow::Owned(Value::Object(m)) => m.values().cloned().map(Cow::Owned).collect(),
        Cow::Owned(Value::Array(a)) => a.iter().cloned().map(Cow::Owned).collect(),
        _ => Vec::new(),
    }
}

fn field<'a>(v: &Cow<'a>, name: &str) -> Option<Cow<'a>> {
    match v {
        Cow::Borrowed(Value::Object(m)) => m.get(name).map(Cow::Borrowed),
        Cow::Owned(Value::Object(m)) => m.get(name).cloned().map(Cow::Owned),
        _ => None,
    }
}

fn eval<'a>(input: Vec<Cow<'a>>, node: &Node) -> Result<Vec<Cow<'a>>, String> {
    let mut out = Vec::new();
    match node {
        Node::Literal(l) => out.push(Cow::Owned(l.clone())),
        Node::Field(name) => {
            for v in &input {
                if let Some(x) = field(v, name) {
                    out.push(x);
                }
            }
        }
        Node::Wildcard => {
            for v in &input {
                out.extend(children(v));
            }
        }
        Node::Recursive => {
            fn walk<'a>(v: Cow<'a>, out: &mut Vec<Cow<'a>>) {
                let kids = children(&v);
                if kids.is_empty() {
                    return;
                }
                out.push(v);
                for k in kids {
                    walk(k, out);
                }
            }
            for v in input {
                walk(v, &mut out);
            }
        }
        Node::Index(i) => {
            for v in &input {
                let items = children_of_list(v)?;
                let len = items.len() as i64;
                let at = if *i < 0 { len + i } else { *i };
                if at < 0 || at >= len {
                    return Err(format!(
                        "array index out of bounds: index {i}, length {len}"
                    ));
                }
                out.push(items[at as usize].clone());
            }
        }
        Node::Slice(start, end, step) => {
            for v in &input {
                let items = children_of_list(v)?;
                let len = items.len() as i64;
                let clamp = |x: i64| -> i64 {
                    let x = if x < 0 { len + x } else { x };
                    x.clamp(0, len)
                };
                let s = clamp(start.unwrap_or(0));
                let e = clamp(end.unwrap_or(len));
                let step = step.unwrap_or(1);
                if step <= 0 {
                    return Err(format!("step must be > 0, got {step}"));
                }
                let mut i = s;
                while i < e {
                    out.push(items[i as usize].clone());
                    i += step;
                }
            }
        }
        Node::Union(alternatives) => {
            for alt in alternatives {
                out.extend(eval_list(input.clone(), alt)?);
            }
        }
        Node::Filter(f) => {
            for v in &input {
                let items = match v.as_ref() {
                    Value::Array(_) => children(v),
                    other => {
                        return Err(format!(
                            "{other} is not array or slice and cannot be filtered"
                        ))
                    }
                };
                for item in items {
                    let lefts = eval_list(vec![item.clone()], &f.left)?;
                    let Some((op, right)) = &f.op else {
                        if !lefts.is_empty() {
                            out.push(item);
                        }
                        continue;
                    };
                    if lefts.len() > 1 {
                        return Err("can only compare one element at a time".into());
                    }
                    let rights = eval_list(vec![item.clone()], right)?;
                    if rights.len() > 1 {
                        return Err("can only compare one element at a time".into());
                    }
                    let (Some(l), Some(r)) = (lefts.first(), rights.first()) else {
                        continue;
                    };
                    if compare(l, r, *op)? {
                        out.push(item);
                    }
                }
            }
        }
    }
    Ok(out)
}

fn children_of_list<'a>(v: &Cow<'a>) -> Result<Vec<Cow<'a>>, String> {
    match v.as_ref() {
        Value::Array(_) => Ok(children(v)),
        other => Err(format!("{other} is not array or slice")),
    }
}

/// Go template comparisons: values of one basic kind (integers with integers, floats with
/// floats, strings, booleans for equality).
fn compare(l: &Value, r: &Value, op: Op) -> Result<bool, String> {
    let ord = match (l, r) {
        (Value::Number(a), Value::Number(b)) => match (a.as_i64(), b.as_i64()) {
            (Some(x), Some(y)) => x.cmp(&y),
            (None, None) => a
                .as_f64()
                .zip(b.as_f64())
                .and_then(|(x, y)| x.partial_cmp(&y))
                .ok_or("incomparable numbers")?,
            _ => return Err("incompatible types for comparison".into()),
        },
        (Value::String(a), Value::String(b)) => a.cmp(b),
        (Value::Bool(a), Value::Bool(b)) if matches!(op, Op::Eq | Op::Ne) => a.cmp(b),
        _ => return Err("incompatible types for comparison".into()),
    };
    Ok(match op {
        Op::Eq => ord == Ordering::Equal,
        Op::Ne => ord != Ordering::Equal,
        Op::Lt => ord == Ordering::Less,
        Op::Gt => ord == Ordering::Greater,
        Op::Le => ord != Ordering::Greater,
        Op::Ge => ord != Ordering::Less,
    })
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

struct Parser<'s> {
    s: &'s str,
    pos: usize,
    depth: usize,
}

fn is_terminator(c: char) -> bool {
    c.is_whitespace() || matches!(c, '.' | ',' | '[' | ']' | '$' | '@' | '{' | '}')
}

impl<'s> Parser<'s> {
    fn rest(&self) -> &'s str {
        &self.s[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    /// Text and actions up to the end, or up to an `{end}` (second value true).
    fn template(&mut self) -> Result<(Vec<Part>, bool), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err("template nested too deeply".into());
        }
        let mut parts = Vec::new();
        loop {
            let Some(open) = self.rest().find('{') else {
                if !self.rest().is_empty() {
                    parts.push(Part::Text(self.rest().to_string()));
                }
                self.pos = self.s.len();
                self.depth -= 1;
                return Ok((parts, false));
            };
            if open > 0 {
                parts.push(Part::Text(self.rest()[..open].to_string()));
            }
            self.pos += open + 1;
            let trimmed = self.rest().trim_start();
            if let Some(after) = trimmed.strip_prefix("end") {
                if after.trim_start().starts_with('}') {
                    self.pos = self.s.len() - after.trim_start().len() + 1;
                    self.depth -= 1;
                    return Ok((parts, true));
                }
            }
            if let Some(after) = trimmed.strip_prefix("range") {
                if after.starts_with(char::is_whitespace) {
                    self.pos = self.s.len() - after.len();
                    let nodes = self.action()?;
                    let (body, ended) = self.template()?;
                    if !ended {
                        return Err("unclosed range: no {end}".into());
                    }
                    parts.push(Part::Range(nodes, body));
                    continue;
                }
            }
            parts.push(Part::Action(self.action()?));
        }
    }

    /// The nodes of one action, through its closing brace.
    fn action(&mut self) -> Result<Vec<Node>, String> {
        let mut nodes = Vec::new();
        loop {
            let Some(c) = self.peek() else {
                return Err("unclosed action".into());
            };
            match c {
                '}' => {
                    self.bump();
                    return Ok(nodes);
                }
                _ => self.node(&mut nodes, true)?,
            }
        }
    }

    /// One node of a path (in an action, `in_action`, or in a filter operand / union item,
    /// which end at the end of their text).
    fn node(&mut self, nodes: &mut Vec<Node>, in_action: bool) -> Result<(), String> {
        let Some(c) = self.peek() else {
            return Ok(());
        };
        match c {
            c if c.is_whitespace() => {
                self.bump();
            }
            '@' | '$' => {
                self.bump();
            }
            '.' => {
                if self.rest().starts_with("..") {
                    self.pos += 1;
                    nodes.push(Node::Recursive);
                    // `..name`: the field follows the second dot.
                    self.field(nodes);
                } else {
                    self.field(nodes);
                }
            }
            '[' => self.array(nodes)?,
            '"' | '\'' => nodes.push(Node::Literal(Value::String(self.quoted(c)?))),
            '+' | '-' | '0'..='9' => nodes.push(Node::Literal(self.number()?)),
            c if c.is_alphanumeric() || c == '_' => {
                let word: String = self
                    .rest()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                self.pos += word.len();
                match word.as_str() {
                    "true" => nodes.push(Node::Literal(Value::Bool(true))),
                    "false" => nodes.push(Node::Literal(Value::Bool(false))),
                    _ => return Err(format!("unrecognized identifier {word}")),
                }
            }
            '}' if !in_action => return Err("unexpected }".into()),
            c => return Err(format!("unrecognized character in action: {c:?}")),
        }
        Ok(())
    }

    /// `.name` (at the dot): up to an unescaped terminator; `\` escapes the next character.
    fn field(&mut self, nodes: &mut Vec<Node>) {
        self.bump();
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if c == '\\' {
                self.bump();
                if let Some(e) = self.bump() {
                    name.push(e);
                }
                continue;
            }
            if is_terminator(c) {
                break;
            }
            name.push(c);
            self.bump();
        }
        nodes.push(if name == "*" {
            Node::Wildcard
        } else {
            Node::Field(name)
        });
    }

    fn quoted(&mut self, q: char) -> Result<String, String> {
        self.bump();
        let mut out = String::new();
        loop {
            match self.bump() {
                None => return Err("unterminated string".into()),
                Some('\\') => match self.bump() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some(c) => out.push(c),
                    None => return Err("unterminated string".into()),
                },
                Some(c) if c == q => return Ok(out),
                Some(c) => out.push(c),
            }
        }
    }

    fn number(&mut self) -> Result<Value, String> {
        let text: String = self
            .rest()
            .chars()
            .take_while(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | '.' | 'e' | 'E'))
            .collect();
        self.pos += text.len();
        if let Ok(i) = text.parse::<i64>() {
            return Ok(Value::from(i));
        }
        text.parse::<f64>()
            .ok()
            .and_then(|f| serde_json::Number::from_f64(f).map(Value::Number))
            .ok_or_else(|| format!("cannot parse number {text}"))
    }

    /// `[…]` (at the bracket): a filter, a union, a quoted key, an index or a slice.
    fn array(&mut self, nodes: &mut Vec<Node>) -> Result<(), String> {
        if self.rest().starts_with("[?(") {
            return self.filter(nodes);
        }
        // The text up to the matching bracket, quotes respected.
        let body_start = self.pos + 1;
        let mut quote: Option<char> = None;
        let mut end = None;
        for (i, c) in self.rest().char_indices().skip(1) {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '\'' | '"') => quote = Some(c),
                (None, ']') => {
                    end = Some(self.pos + i);
                    break;
                }
                _ => {}
            }
        }
        let end = end.ok_or("unterminated array")?;
        let text = self.s[body_start..end].trim().to_string();
        self.pos = end + 1;
        let text = if text == "*" { ":".to_string() } else { text };
        let items = split_top(&text, ',');
        if items.len() > 1 {
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return Err("union nested too deeply".into());
            }
            let mut alts = Vec::new();
            for item in items {
                let mut sub = Parser {
                    s: "",
                    pos: 0,
                    depth: self.depth,
                };
                let text = format!("[{}]", item.trim());
                sub.s = &text;
                let mut alt = Vec::new();
                while sub.pos < sub.s.len() {
                    sub.node(&mut alt, false)?;
                }
                alts.push(alt);
            }
            self.depth -= 1;
            nodes.push(Node::Union(alts));
            return Ok(());
        }
        if let Some(key) = text
            .strip_prefix('\'')
            .and_then(|t| t.strip_suffix('\''))
            .filter(|k| !k.contains('\''))
        {
            // `['a.b']` reads as `.a.b`, as kube reads it.
            let dotted = format!(".{key}");
            let mut sub = Parser {
                s: &dotted,
                pos: 0,
                depth: self.depth,
            };
            while sub.pos < sub.s.len() {
                sub.node(nodes, false)?;
            }
            return Ok(());
        }
        let parts: Vec<&str> = text.split(':').collect();
        let num = |s: &str| -> Result<Option<i64>, String> {
            let s = s.trim();
            if s.is_empty() {
                Ok(None)
            } else {
                s.parse::<i64>()
                    .map(Some)
                    .map_err(|_| format!("invalid array index {text}"))
            }
        };
        match parts.as_slice() {
            [one] => match num(one)? {
                Some(i) => nodes.push(Node::Index(i)),
                None => return Err(format!("invalid array index {text}")),
            },
            [a, b] => nodes.push(Node::Slice(num(a)?, num(b)?, None)),
            [a, b, c] => nodes.push(Node::Slice(num(a)?, num(b)?, num(c)?)),
            _ => return Err(format!("invalid array index {text}")),
        }
        Ok(())
    }

    /// `[?(left op right)]` or `[?(path)]`.
    fn filter(&mut self, nodes: &mut Vec<Node>) -> Result<(), String> {
        self.pos += 3;
        let start = self.pos;
        let mut quote: Option<char> = None;
        let mut close = None;
        for (i, c) in self.rest().char_indices() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '\'' | '"') => quote = Some(c),
                (None, ')') => {
                    close = Some(start + i);
                    break;
                }
                (None, '\n') => return Err("unterminated filter".into()),
                _ => {}
            }
        }
        let close = close.ok_or("unterminated filter")?;
        let text = self.s[start..close].to_string();
        self.pos = close + 1;
        if self.bump() != Some(']') {
            return Err("unclosed array expect ]".into());
        }
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err("filter nested too deeply".into());
        }
        let operand = |t: &str, depth: usize| -> Result<Vec<Node>, String> {
            let mut sub = Parser {
                s: t.trim(),
                pos: 0,
                depth,
            };
            let mut out = Vec::new();
            while sub.pos < sub.s.len() {
                sub.node(&mut out, false)?;
            }
            Ok(out)
        };
        let op = find_operator(&text);
        let filter = match op {
            None => Filter {
                left: operand(&text, self.depth)?,
                op: None,
            },
            Some((at, len, op)) => Filter {
                left: operand(&text[..at], self.depth)?,
                op: Some((op, operand(&text[at + len..], self.depth)?)),
            },
        };
        self.depth -= 1;
        nodes.push(Node::Filter(Box::new(filter)));
        Ok(())
    }
}

/// Split on `sep` outside quotes and brackets.
fn split_top(text: &str, sep: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut depth = 0usize;
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '[' | '(') => depth += 1,
            (None, ']' | ')') => depth = depth.saturating_sub(1),
            (None, c) if c == sep && depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out
}

/// The first comparison operator outside quotes: (byte offset, length, operator).
fn find_operator(text: &str) -> Option<(usize, usize, Op)> {
    let b = text.as_bytes();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == b'\'' || c == b'"' => quote = Some(c),
            None => {
                let two = b.get(i + 1).copied();
                let found = match (c, two) {
                    (b'=', Some(b'=')) => Some((2, Op::Eq)),
                    (b'!', Some(b'=')) => Some((2, Op::Ne)),
                    (b'<', Some(b'=')) => Some((2, Op::Le)),
                    (b'>', Some(b'=')) => Some((2, Op::Ge)),
                    (b'<', _) => Some((1, Op::Lt)),
                    (b'>', _) => Some((1, Op::Gt)),
                    _ => None,
                };
                if let Some((len, op)) = found {
                    return Some((i, len, op));
                }
            }
        }
        i += 1;
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn values(path: &str, data: &Value) -> Vec<Value> {
        Template::parse_path(path)
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .values(data)
            .into_iter()
            .map(|v| v.into_owned())
            .collect()
    }

    #[test]
    fn fields_escapes_and_quoted_keys() {
        let obj = json!({"metadata": {"name": "n", "annotations": {"example.com/key": "v", "a": "b"}},
                         "spec": {"x-y": 1}});
        assert_eq!(values(".metadata.name", &obj), vec![json!("n")]);
        assert_eq!(values("{.metadata.name}", &obj), vec![json!("n")]);
        assert_eq!(
            values(".metadata.annotations.example\\.com/key", &obj),
            vec![json!("v")]
        );
        assert_eq!(values(".spec.x-y", &obj), vec![json!(1)]);
        assert_eq!(values("['metadata']['name']", &obj), vec![json!("n")]);
        assert_eq!(values("['metadata.name']", &obj), vec![json!("n")]);
        assert!(values(".metadata.missing", &obj).is_empty());
        assert_eq!(values("$.metadata.name", &obj), vec![json!("n")]);
    }

    #[test]
    fn arrays_slices_filters_unions_and_recursion() {
        let obj = json!({"status": {"conditions": [
            {"type": "Ready", "status": "True", "n": 1},
            {"type": "Synced", "status": "False", "n": 2},
            {"type": "Other", "status": "True", "n": 3}]}});
        assert_eq!(
            values(".status.conditions[?(@.type==\"Ready\")].status", &obj),
            vec![json!("True")]
        );
        assert_eq!(
            values(".status.conditions[?(@.type == 'Synced')].status", &obj),
            vec![json!("False")]
        );
        assert_eq!(
            values(".status.conditions[?(@.n>1)].type", &obj),
            vec![json!("Synced"), json!("Other")]
        );
        assert_eq!(
            values(".status.conditions[?(@.n)].n", &obj),
            vec![json!(1), json!(2), json!(3)]
        );
        assert_eq!(
            values(".status.conditions[-1].type", &obj),
            vec![json!("Other")]
        );
        assert_eq!(
            values(".status.conditions[0:2].n", &obj),
            vec![json!(1), json!(2)]
        );
        assert_eq!(
            values(".status.conditions[::2].n", &obj),
            vec![json!(1), json!(3)]
        );
        assert_eq!(values(".status.conditions[*].n", &obj).len(), 3);
        assert_eq!(
            values(".status.conditions[0]['type','status']", &obj),
            vec![json!("Ready"), json!("True")]
        );
        assert_eq!(
            values("..type", &obj),
            vec![json!("Ready"), json!("Synced"), json!("Other")]
        );
        assert!(values(".status.conditions[5].n", &obj).is_empty());
    }

    #[test]
    fn templates_render_text_and_ranges() {
        let list = json!({"items": [{"metadata": {"name": "a"}}, {"metadata": {"name": "b"}}]});
        let t = Template::parse("{range .items[*]}{.metadata.name}{\"\\n\"}{end}").unwrap();
        assert_eq!(t.render(&list).unwrap(), "a\nb\n");
        let t = Template::parse("names: {.items[*].metadata.name}").unwrap();
        assert_eq!(t.render(&list).unwrap(), "names: a b");
        assert_eq!(
            Template::parse("{.items[0].metadata}")
                .unwrap()
                .render(&list)
                .unwrap(),
            r#"{"name":"a"}"#
        );
    }

    #[test]
    fn malformed_templates_are_errors() {
        for bad in [
            "{.a",
            "{.a[}",
            "{.a[x]}",
            "{.a[?(@.b==\"c\"}",
            "{range .a}{.b}",
            "{end}",
            "{.a[1:2:3:4]}",
            "{foo}",
        ] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
        let deep = format!("{{.a{}{}}}", "[?(@.b".repeat(40), ")]".repeat(40));
        assert!(Template::parse(&deep).is_err());
    }
}
