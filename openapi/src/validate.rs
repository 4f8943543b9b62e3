//! Validation of a custom resource against its `openAPIV3Schema`, with kube-apiserver's field
//! errors: kube-openapi's schema validator (type, nullable, enum, format, numeric bounds,
//! string length and pattern, item and property counts, required, additionalProperties,
//! allOf/anyOf/oneOf/not) mapped to `field.Error`s the way apiextensions-apiserver does, then
//! the structural checks kube runs beside it (`x-kubernetes-list-type` set/map uniqueness and
//! `x-kubernetes-embedded-resource` type and object meta).
//!
//! Paths are kube-openapi's: `spec.ports[0].name`, map values as `spec.labels.key`; an error
//! kube-openapi reports without a path renders as `<nil>` (apiextensions validates with a nil
//! root path).

use std::collections::{BTreeMap, HashMap};

use kubox_apimachinery::validation::{self as v, go_quote, FieldError, FieldErrorKind};
use serde_json::{Map, Value};

use crate::formats;
use crate::schema_node::{go_bound, go_float, go_value, value_type, Additional, ListType, Node};

/// Errors of one validation, in two groups: the schema validator's, then the structural checks'
/// (kube appends them in this order).
#[derive(Debug, Default)]
pub(crate) struct Errors {
    pub schema: Vec<FieldError>,
    pub extra: Vec<FieldError>,
}

/// Validate `value` against `root`.
pub(crate) fn validate(root: &Node, value: &Value) -> Errors {
    let mut w = Walker {
        path: String::new(),
        out: Errors::default(),
        extra: true,
    };
    w.value(root, value, None);
    w.out
}

/// Validate an update of `old` to `value` with kube's validation ratcheting
/// (CRDValidationRatcheting, on since 1.30): the schema errors a node raises (its own and its
/// descendants') are dropped when the node is unchanged from its correlated old value. Values
/// correlate through object fields and through the items of `x-kubernetes-list-type: map`
/// lists (by key); items of other lists do not, though such a list unchanged as a whole is.
pub(crate) fn validate_update(root: &Node, value: &Value, old: &Value) -> Errors {
    let mut w = Walker {
        path: String::new(),
        out: Errors::default(),
        extra: true,
    };
    w.value(root, value, Some(old));
    w.out
}

/// The errors of the explicit `null`s of an apply configuration: a `null` where the schema
/// declares a field that is neither nullable nor defaulted is "must be of type …", as kube's
/// field manager leaves such nulls in the applied object for validation to refuse (a create or
/// update decodes them away instead).
pub(crate) fn applied_nulls(root: &Node, config: &Value) -> Vec<FieldError> {
    let mut w = Walker {
        path: String::new(),
        out: Errors::default(),
        extra: false,
    };
    w.nulls(root, config);
    w.out.schema
}

/// The items of an old map-list by the values of their keys, the first of each: what a new
/// item correlates with for ratcheting (kube's correlation by list-map keys), found through one
/// index per list rather than a scan per item. None where `n` is no map-list with keys or `old`
/// no list.
pub(crate) fn correlation<'a>(n: &Node, old: &'a Value) -> Option<HashMap<String, &'a Value>> {
    if n.list_type != ListType::Map || n.list_map_keys.is_empty() {
        return None;
    }
    let mut by_key = HashMap::new();
    for o in old.as_array()? {
        by_key.entry(map_key(&n.list_map_keys, o)).or_insert(o);
    }
    Some(by_key)
}

/// The old item `item` correlates with in `index` (see [`correlation`]).
pub(crate) fn correlated<'a>(
    n: &Node,
    index: &HashMap<String, &'a Value>,
    item: &Value,
) -> Option<&'a Value> {
    index.get(&map_key(&n.list_map_keys, item)).copied()
}

/// A map-list item's identity: its keys' values as JSON (an absent key as nothing), apart.
fn map_key(keys: &[String], item: &Value) -> String {
    let mut id = String::new();
    for k in keys {
        if let Some(v) = item.get(k.as_str()) {
            id.push_str(&v.to_string());
        }
        id.push('\u{0}');
    }
    id
}

/// kube's `CachedDeepEqual` of a correlated pair: objects field by field (a field without a
/// schema never compares equal), map-lists item by correlated item in any order, other lists
/// and scalars by value.
pub(crate) fn unchanged(n: &Node, new: &Value, old: &Value) -> bool {
    match (new, old) {
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter().all(|(k, x)| {
                    let schema = n.property(k).or_else(|| n.additional_schema());
                    match (schema, b.get(k)) {
                        (Some(s), Some(y)) => unchanged(s, x, y),
                        _ => false,
                    }
                })
        }
        (Value::Array(a), Value::Array(b)) => {
            if a.len() != b.len() {
                return false;
            }
            match n.items.as_deref() {
                Some(item) if n.list_type == ListType::Map && !n.list_map_keys.is_empty() => {
                    let Some(index) = correlation(n, old) else {
                        return false;
                    };
                    a.iter()
                        .all(|x| correlated(n, &index, x).is_some_and(|y| unchanged(item, x, y)))
                }
                _ => json_eq(new, old),
            }
        }
        _ => json_eq(new, old),
    }
}

struct Walker {
    path: String,
    out: Errors,
    /// Run the structural checks too (not inside allOf/anyOf/oneOf/not).
    extra: bool,
}

fn field_of(path: &str) -> String {
    if path.is_empty() {
        "<nil>".to_string()
    } else {
        path.to_string()
    }
}

fn err(field: String, kind: FieldErrorKind, value: Option<String>, message: String) -> FieldError {
    FieldError {
        field,
        kind,
        value,
        message,
    }
}

/// Is this float an integer as JSON would write it (swag.IsFloat64AJSONInteger)?
fn is_json_integer(f: f64) -> bool {
    if !f.is_finite() || f.abs() > 9_007_199_254_740_991.0 {
        return false;
    }
    if f.fract() == 0.0 {
        return true;
    }
    let g = f.round();
    (f - g).abs() / (f.abs() + g.abs()).max(f64::MIN_POSITIVE) < 1e-9
}

/// Equality as kube-openapi's enum check compares decoded JSON: numbers by value.
pub(crate) fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, a)| y.get(k).is_some_and(|b| json_eq(a, b)))
        }
        _ => a == b,
    }
}

impl Walker {
    fn name(&self) -> &str {
        &self.path
    }

    fn push(&mut self, key: &str) -> usize {
        let len = self.path.len();
        if !self.path.is_empty() {
            self.path.push('.');
        }
        self.path.push_str(key);
        len
    }

    fn push_index(&mut self, i: usize) -> usize {
        let len = self.path.len();
        self.path.push('[');
        self.path.push_str(&i.to_string());
        self.path.push(']');
        len
    }

    fn invalid(&mut self, value: String, message: String) {
        let f = field_of(&self.path);
        self.out
            .schema
            .push(err(f, FieldErrorKind::Invalid, Some(value), message));
    }

    fn composite(&mut self, message: String) {
        self.out.schema.push(err(
            "<nil>".into(),
            FieldErrorKind::Invalid,
            Some("\"\"".into()),
            message,
        ));
    }

    /// Validate against a subschema of allOf/anyOf/oneOf/not: its schema errors alone.
    fn sub(&self, n: &Node, value: &Value) -> Vec<FieldError> {
        let mut w = Walker {
            path: self.path.clone(),
            out: Errors::default(),
            extra: false,
        };
        w.value(n, value, None);
        w.out.schema
    }

    /// Type errors of the `null`s of declared, non-nullable, non-defaulted fields in `value`.
    fn nulls(&mut self, n: &Node, value: &Value) {
        match value {
            Value::Object(m) => {
                for (k, child) in m {
                    let Some(p) = n.property(k).or_else(|| n.additional_schema()) else {
                        continue;
                    };
                    let len = self.push(k);
                    if child.is_null() {
                        if p.default.is_none() {
                            self.type_check(p, child);
                        }
                    } else {
                        self.nulls(p, child);
                    }
                    self.path.truncate(len);
                }
            }
            Value::Array(items) => {
                if let Some(item) = &n.items {
                    for (i, x) in items.iter().enumerate() {
                        let len = self.push_index(i);
                        self.nulls(item, x);
                        self.path.truncate(len);
                    }
                }
            }
            _ => {}
        }
    }

    /// Validate `value` at `n`; `old` is its correlated old value on an update (ratcheting).
    fn value(&mut self, n: &Node, value: &Value, old: Option<&Value>) {
        let mark = self.out.schema.len();
        self.value_here(n, value, old);
        if let Some(o) = old {
            if self.out.schema.len() > mark && unchanged(n, value, o) {
                self.out.schema.truncate(mark);
            }
        }
    }

    fn value_here(&mut self, n: &Node, value: &Value, old: Option<&Value>) {
        if value.is_null() {
            self.type_check(n, value);
            self.enum_check(n, value);
            return;
        }
        self.type_check(n, value);
        self.composition(n, value);
        match value {
            Value::String(s) => {
                self.string(n, s);
                if !n.format.is_empty()
                    && formats::known(&n.format)
                    && !formats::check(&n.format, s)
                {
                    let q = go_quote(s);
                    let msg = format!("{} in body must be of type {}: {q}", self.name(), n.format);
                    let f = field_of(&self.path);
                    self.out
                        .schema
                        .push(err(f, FieldErrorKind::TypeInvalid, Some(q), msg));
                }
            }
            Value::Number(num) => self.number(n, num),
            Value::Array(items) => self.array(n, items, old),
            _ => {}
        }
        self.enum_check(n, value);
        if let Value::Object(m) = value {
            self.object(n, m, old);
        }
    }

    fn type_check(&mut self, n: &Node, value: &Value) {
        let types = n.type_names();
        if types.is_empty() && n.format.is_empty() {
            return;
        }
        let contains = |t: &str| types.split(',').any(|x| x == t);
        let sch = value_type(value);
        if value.is_null() {
            if !types.is_empty() && !n.nullable {
                self.type_error(types, "null");
            }
            return;
        }
        let float_int =
            sch == "number" && contains("integer") && value.as_f64().is_some_and(is_json_integer);
        let int_float = sch == "integer" && contains("number");
        let string_or_slice = value.is_string() || value.is_array();
        if !string_or_slice && !n.format.is_empty() {
            let data_format = match sch {
                "integer" => "int64",
                "number" => "float64",
                _ => "",
            };
            if !(contains(sch) || data_format == n.format || float_int || int_float) {
                let msg = format!(
                    "{} in body must be of type {}: {}",
                    self.name(),
                    n.format,
                    go_quote(data_format)
                );
                let f = field_of(&self.path);
                self.out.schema.push(err(
                    f,
                    FieldErrorKind::TypeInvalid,
                    Some(go_quote(data_format)),
                    msg,
                ));
                return;
            }
        }
        if types.is_empty() {
            return;
        }
        let numeric = contains("number") || contains("integer");
        if !numeric && !n.format.is_empty() && string_or_slice {
            return;
        }
        if !(contains(sch) || float_int || int_float) {
            self.type_error(types, sch);
        }
    }

    fn type_error(&mut self, types: &str, sch: &str) {
        let q = go_quote(sch);
        let msg = format!("{} in body must be of type {types}: {q}", self.name());
        let f = field_of(&self.path);
        self.out
            .schema
            .push(err(f, FieldErrorKind::TypeInvalid, Some(q), msg));
    }

    fn enum_check(&mut self, n: &Node, value: &Value) {
        if n.enum_values.is_empty() || n.enum_values.iter().any(|e| json_eq(value, e)) {
            return;
        }
        let supported: Vec<String> = n
            .enum_values
            .iter()
            .map(|e| match e {
                Value::String(s) => go_quote(s),
                other => go_quote(&other.to_string()),
            })
            .collect();
        let f = field_of(&self.path);
        self.out.schema.push(err(
            f,
            FieldErrorKind::NotSupported,
            Some(go_value(value)),
            format!("supported values: {}", supported.join(", ")),
        ));
    }

    fn composition(&mut self, n: &Node, value: &Value) {
        if n.any_of.is_empty() && n.one_of.is_empty() && n.all_of.is_empty() && n.not.is_none() {
            return;
        }
        let q = go_quote(&self.path);
        if !n.any_of.is_empty() {
            let mut best: Option<Vec<FieldError>> = None;
            let mut ok = false;
            for a in &n.any_of {
                let errs = self.sub(a, value);
                if errs.is_empty() {
                    ok = true;
                    break;
                }
                if best.as_ref().is_none_or(|b| errs.len() < b.len()) {
                    best = Some(errs);
                }
            }
            if !ok {
                self.composite(format!("{q} must validate at least one schema (anyOf)"));
                self.out.schema.extend(best.unwrap_or_default());
            }
        }
        if !n.one_of.is_empty() {
            let mut best: Option<Vec<FieldError>> = None;
            let mut validated = 0;
            for a in &n.one_of {
                let errs = self.sub(a, value);
                if errs.is_empty() {
                    validated += 1;
                    best = None;
                } else if validated == 0 && best.as_ref().is_none_or(|b| errs.len() < b.len()) {
                    best = Some(errs);
                }
            }
            if validated != 1 {
                let more = if validated == 0 {
                    "Found none valid".to_string()
                } else {
                    format!("Found {validated} valid alternatives")
                };
                self.composite(format!(
                    "{q} must validate one and only one schema (oneOf). {more}"
                ));
                self.out.schema.extend(best.unwrap_or_default());
            }
        }
        if !n.all_of.is_empty() {
            let mut validated = 0;
            for a in &n.all_of {
                let errs = self.sub(a, value);
                if errs.is_empty() {
                    validated += 1;
                }
                self.out.schema.extend(errs);
            }
            if validated != n.all_of.len() {
                let more = if validated == 0 {
                    ". None validated"
                } else {
                    ""
                };
                self.composite(format!("{q} must validate all the schemas (allOf){more}"));
            }
        }
        if let Some(not) = &n.not {
            if self.sub(not, value).is_empty() {
                self.composite(format!("{q} must not validate the schema (not)"));
            }
        }
    }

    fn string(&mut self, n: &Node, s: &str) {
        let len = || s.chars().count() as i64;
        if let Some(max) = n.max_length {
            if len() > max {
                let unit = if max == 1 { "byte" } else { "bytes" };
                let f = field_of(&self.path);
                self.out.schema.push(err(
                    f,
                    FieldErrorKind::TooLong,
                    None,
                    format!("may not be more than {max} {unit}"),
                ));
                return;
            }
        }
        if let Some(min) = n.min_length {
            if len() < min {
                let msg = format!(
                    "{} in body should be at least {min} chars long",
                    self.name()
                );
                self.invalid(go_quote(s), msg);
                return;
            }
        }
        if let Some((pattern, re)) = &n.pattern {
            let msg = match re {
                Some(re) if re.is_match(s) => return,
                Some(_) => format!("{} in body should match '{pattern}'", self.name()),
                None => format!(
                    "{} in body should match '{pattern}, but pattern is invalid'",
                    self.name()
                ),
            };
            self.invalid(go_quote(s), msg);
        }
    }

    fn number(&mut self, n: &Node, num: &serde_json::Number) {
        let is_int = num.is_i64() || num.is_u64();
        let data = num.as_f64().unwrap_or_default();
        if n.multiple_of.is_none() && n.minimum.is_none() && n.maximum.is_none() {
            return;
        }
        let rendered = go_value(&Value::Number(num.clone()));
        if let Some(factor) = n.multiple_of {
            let name = self.name().to_string();
            if factor < 0.0 {
                self.invalid(
                    go_float(factor),
                    format!(
                        "factor MultipleOf declared for {name} must be positive: {}",
                        go_bound(factor, is_int && factor.fract() == 0.0)
                    ),
                );
            } else if factor > 0.0 {
                let bad = if is_int && factor.fract() == 0.0 {
                    let d = num.as_i64().unwrap_or_default();
                    let f = factor as i64;
                    f != 0 && d % f != 0
                } else {
                    let mult = if factor < 1.0 {
                        1.0 / factor * data
                    } else {
                        data / factor
                    };
                    !is_json_integer(mult)
                };
                if bad {
                    let shown = go_bound(factor, is_int && factor.fract() == 0.0);
                    self.invalid(
                        rendered.clone(),
                        format!("{name} in body should be a multiple of {shown}"),
                    );
                }
            }
        }
        if let Some(min) = n.minimum {
            let bad = if n.exclusive_minimum {
                data <= min
            } else {
                data < min
            };
            if bad {
                let word = if n.exclusive_minimum {
                    "greater than"
                } else {
                    "greater than or equal to"
                };
                let msg = format!(
                    "{} in body should be {word} {}",
                    self.name(),
                    go_bound(min, is_int)
                );
                self.invalid(rendered.clone(), msg);
            }
        }
        if let Some(max) = n.maximum {
            let bad = if n.exclusive_maximum {
                data >= max
            } else {
                data > max
            };
            if bad {
                let word = if n.exclusive_maximum {
                    "less than"
                } else {
                    "less than or equal to"
                };
                let msg = format!(
                    "{} in body should be {word} {}",
                    self.name(),
                    go_bound(max, is_int)
                );
                self.invalid(rendered, msg);
            }
        }
    }

    fn array(&mut self, n: &Node, items: &[Value], old: Option<&Value>) {
        if let Some(item) = &n.items {
            let index = old.and_then(|o| correlation(n, o));
            for (i, x) in items.iter().enumerate() {
                let len = self.push_index(i);
                let old_x = index.as_ref().and_then(|ix| correlated(n, ix, x));
                self.value(item, x, old_x);
                self.path.truncate(len);
            }
        }
        let size = items.len() as i64;
        if let Some(min) = n.min_items {
            if size < min {
                let msg = format!("{} in body should have at least {min} items", self.name());
                self.invalid(size.to_string(), msg);
            }
        }
        if let Some(max) = n.max_items {
            if size > max {
                self.too_many(size, max);
            }
        }
        if n.unique_items {
            let dup = items
                .iter()
                .enumerate()
                .any(|(i, a)| items[..i].iter().any(|b| json_eq(a, b)));
            if dup {
                let msg = format!("{} in body shouldn't contain duplicates", self.name());
                self.invalid("\"\"".into(), msg);
            }
        }
        if self.extra {
            match n.list_type {
                ListType::Set => self.list_set(items),
                ListType::Map => self.list_map(items, &n.list_map_keys),
                ListType::Atomic => {}
            }
        }
    }

    fn too_many(&mut self, actual: i64, max: i64) {
        let unit = if max == 1 { "item" } else { "items" };
        let f = field_of(&self.path);
        self.out.schema.push(err(
            f,
            FieldErrorKind::TooMany,
            Some(actual.to_string()),
            format!("must have at most {max} {unit}"),
        ));
    }

    fn list_set(&mut self, items: &[Value]) {
        if items.len() <= 1 {
            return;
        }
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (i, x) in items.iter().enumerate() {
            let times = seen.entry(x.to_string()).or_insert(0);
            *times += 1;
            if *times == 2 {
                let len = self.push_index(i);
                let f = field_of(&self.path);
                self.path.truncate(len);
                self.out.extra.push(err(
                    f,
                    FieldErrorKind::Duplicate,
                    Some(go_value(x)),
                    String::new(),
                ));
            }
        }
    }

    fn list_map(&mut self, items: &[Value], keys: &[String]) {
        if keys.is_empty() || items.len() <= 1 {
            return;
        }
        let mut bad = false;
        for (i, x) in items.iter().enumerate() {
            if !x.is_object() {
                bad = true;
                let len = self.push_index(i);
                let f = field_of(&self.path);
                self.path.truncate(len);
                self.out.extra.push(err(
                    f,
                    FieldErrorKind::Invalid,
                    Some(go_value(x)),
                    "must be an object for an array of list-type map".into(),
                ));
            }
        }
        if bad {
            return;
        }
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (i, x) in items.iter().enumerate() {
            let id: String = keys
                .iter()
                .map(|k| x.get(k.as_str()).map_or_else(String::new, Value::to_string))
                .collect::<Vec<_>>()
                .join("\u{0}");
            let times = seen.entry(id).or_insert(0);
            *times += 1;
            if *times >= 2 {
                let mut key = Map::new();
                for k in keys {
                    if let Some(v) = x.get(k.as_str()) {
                        key.insert(k.clone(), v.clone());
                    }
                }
                let key = Value::Object(key);
                let len = self.push_index(i);
                let f = field_of(&self.path);
                self.path.truncate(len);
                self.out.extra.push(err(
                    f,
                    FieldErrorKind::Duplicate,
                    Some(go_value(&key)),
                    String::new(),
                ));
            }
        }
    }

    fn object(&mut self, n: &Node, m: &Map<String, Value>, old: Option<&Value>) {
        let old_of = |k: &str| old.and_then(Value::as_object).and_then(|o| o.get(k));
        if self.extra && n.embedded {
            self.embedded(m);
        }
        let count = m.len() as i64;
        if let Some(min) = n.min_properties {
            if count < min {
                let msg = format!(
                    "{} in body should have at least {min} properties",
                    self.name()
                );
                self.invalid(count.to_string(), msg);
                return;
            }
        }
        if let Some(max) = n.max_properties {
            if count > max {
                self.too_many(count, max);
                return;
            }
        }
        let forbid_others = matches!(n.additional, Additional::Bool(false));
        let additional = n.additional_schema();
        for (k, child) in m {
            match n.property(k) {
                Some(p) => {
                    let len = self.push(k);
                    self.value(p, child, old_of(k));
                    self.path.truncate(len);
                }
                None if forbid_others => {
                    let msg = if self.path.is_empty() {
                        format!(".{k} in body is a forbidden property")
                    } else {
                        format!("{}.{k} in body is a forbidden property", self.name())
                    };
                    self.invalid(go_quote(k), msg);
                }
                None => {
                    if let Some(a) = additional {
                        let len = self.push(k);
                        self.value(a, child, old_of(k));
                        self.path.truncate(len);
                    }
                }
            }
        }
        for r in &n.required {
            if !m.contains_key(r) {
                let len = self.push(r);
                let f = field_of(&self.path);
                self.path.truncate(len);
                self.out.schema.push(FieldError::required(f, ""));
            }
        }
    }

    /// x-kubernetes-embedded-resource: apiVersion and kind are required, and metadata is
    /// object meta.
    fn embedded(&mut self, m: &Map<String, Value>) {
        let child = |w: &Walker, k: &str| {
            if w.path.is_empty() {
                k.to_string()
            } else {
                format!("{}.{k}", w.path)
            }
        };
        let (api_path, kind_path) = (child(self, "apiVersion"), child(self, "kind"));
        match m.get("apiVersion") {
            None => self
                .out
                .extra
                .push(FieldError::required(api_path, "must not be empty")),
            Some(Value::String(s)) if s.is_empty() => {
                self.out
                    .extra
                    .push(FieldError::invalid(api_path, s, "must not be empty"))
            }
            Some(Value::String(s)) => {
                if s.matches('/').count() > 1 {
                    self.out.extra.push(FieldError::invalid(
                        api_path,
                        s,
                        format!("unexpected GroupVersion string: {s}"),
                    ));
                }
            }
            Some(other) => self.out.extra.push(err(
                api_path,
                FieldErrorKind::Invalid,
                Some(go_value(other)),
                "must be a string".into(),
            )),
        }
        match m.get("kind") {
            None => self
                .out
                .extra
                .push(FieldError::required(kind_path, "must not be empty")),
            Some(Value::String(s)) if s.is_empty() => {
                self.out
                    .extra
                    .push(FieldError::invalid(kind_path, s, "must not be empty"))
            }
            Some(Value::String(s)) => {
                let errs = v::is_dns1035_label(&s.to_lowercase());
                if !errs.is_empty() {
                    self.out.extra.push(FieldError::invalid(
                        kind_path,
                        s,
                        format!(
                            "may have mixed case, but should otherwise match: {}",
                            errs.join(",")
                        ),
                    ));
                }
            }
            Some(other) => self.out.extra.push(err(
                kind_path,
                FieldErrorKind::Invalid,
                Some(go_value(other)),
                "must be a string".into(),
            )),
        }
        if let Some(Value::Object(meta)) = m.get("metadata") {
            let meta_path = child(self, "metadata");
            let strmap = |k: &str| -> Option<BTreeMap<String, String>> {
                meta.get(k).and_then(Value::as_object).map(|o| {
                    o.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
            };
            if let Some(labels) = strmap("labels") {
                self.out
                    .extra
                    .extend(v::validate_labels(&labels, &format!("{meta_path}.labels")));
            }
            if let Some(annotations) = strmap("annotations") {
                self.out.extra.extend(v::validate_annotations(
                    &annotations,
                    &format!("{meta_path}.annotations"),
                ));
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors(schema: Value, value: Value) -> Vec<String> {
        let n = Node::parse(&schema);
        let e = validate(&n, &value);
        e.schema
            .iter()
            .chain(&e.extra)
            .map(|e| e.to_string())
            .collect()
    }

    fn spec(props: Value) -> Value {
        json!({"type": "object", "properties": {"spec": {"type": "object", "properties": props}}})
    }

    #[test]
    fn types_with_kube_messages() {
        assert_eq!(
            errors(
                spec(json!({"replicas": {"type": "integer"}})),
                json!({"spec": {"replicas": "string"}})
            ),
            vec![
                r#"spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string""#
            ]
        );
        assert!(errors(
            spec(json!({"replicas": {"type": "integer"}})),
            json!({"spec": {"replicas": 2.0}})
        )
        .is_empty());
        assert!(errors(
            spec(json!({"r": {"type": "number"}})),
            json!({"spec": {"r": 2}})
        )
        .is_empty());
        assert_eq!(
            errors(
                spec(json!({"p": {"x-kubernetes-int-or-string": true}})),
                json!({"spec": {"p": true}})
            ),
            vec![
                r#"spec.p: Invalid value: "boolean": spec.p in body must be of type integer,string: "boolean""#
            ]
        );
        assert!(errors(
            spec(json!({"p": {"x-kubernetes-int-or-string": true}})),
            json!({"spec": {"p": "80%"}})
        )
        .is_empty());
    }

    #[test]
    fn nullable() {
        let s = spec(json!({"a": {"type": "string"}, "b": {"type": "string", "nullable": true}}));
        assert_eq!(
            errors(s.clone(), json!({"spec": {"a": null}})),
            vec![r#"spec.a: Invalid value: "null": spec.a in body must be of type string: "null""#]
        );
        assert!(errors(s, json!({"spec": {"b": null}})).is_empty());
    }

    #[test]
    fn enums_bounds_lengths() {
        let s = spec(json!({
            "color": {"type": "string", "enum": ["red", "blue"]},
            "size": {"type": "integer", "maximum": 100, "minimum": 1},
            "ratio": {"type": "number", "exclusiveMaximum": true, "maximum": 1.5},
            "step": {"type": "integer", "multipleOf": 5},
            "name": {"type": "string", "maxLength": 3, "minLength": 2, "pattern": "^[a-z]+$"},
            "list": {"type": "array", "maxItems": 2, "minItems": 1, "items": {"type": "string"}},
            "map": {"type": "object", "maxProperties": 1, "additionalProperties": {"type": "integer"}},
        }));
        let e = errors(
            s.clone(),
            json!({"spec": {"color": "pink", "size": 200, "ratio": 1.5, "step": 7, "name": "abcd",
                "list": ["a", "b", "c"], "map": {"a": 1, "b": 2}}}),
        );
        assert_eq!(
            e,
            vec![
                r#"spec.color: Unsupported value: "pink": supported values: "red", "blue""#,
                "spec.list: Too many: 3: must have at most 2 items",
                "spec.map: Too many: 2: must have at most 1 item",
                "spec.name: Too long: may not be more than 3 bytes",
                "spec.ratio: Invalid value: 1.5: spec.ratio in body should be less than 1.5",
                "spec.size: Invalid value: 200: spec.size in body should be less than or equal to 100",
                "spec.step: Invalid value: 7: spec.step in body should be a multiple of 5",
            ]
        );
        let e = errors(
            s,
            json!({"spec": {"name": "A", "list": [], "size": 0, "map": {"a": "x"}}}),
        );
        assert_eq!(
            e,
            vec![
                "spec.list: Invalid value: 0: spec.list in body should have at least 1 items",
                r#"spec.map.a: Invalid value: "string": spec.map.a in body must be of type integer: "string""#,
                r#"spec.name: Invalid value: "A": spec.name in body should be at least 2 chars long"#,
                "spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1",
            ]
        );
    }

    #[test]
    fn required_items_and_formats() {
        let s = json!({"type": "object", "required": ["spec"], "properties": {"spec": {
            "type": "object", "required": ["name"],
            "properties": {"name": {"type": "string"}, "id": {"type": "string", "format": "uuid"},
              "ports": {"type": "array", "items": {"type": "object", "required": ["port"],
                 "properties": {"port": {"type": "integer", "format": "int32"}}}}}}}});
        assert_eq!(errors(s.clone(), json!({})), vec!["spec: Required value"]);
        assert_eq!(
            errors(
                s,
                json!({"spec": {"id": "nope", "ports": [{"port": 1}, {}]}})
            ),
            vec![
                r#"spec.id: Invalid value: "nope": spec.id in body must be of type uuid: "nope""#,
                "spec.ports[1].port: Required value",
                "spec.name: Required value",
            ]
        );
    }

    #[test]
    fn list_types_and_embedded() {
        let s = spec(json!({
            "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
            "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
               "items": {"type": "object", "properties": {"name": {"type": "string"}, "port": {"type": "integer"}}}},
            "tmpl": {"type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true},
        }));
        assert_eq!(
            errors(
                s,
                json!({"spec": {"tags": ["a", "b", "a", "a"],
                "ports": [{"name": "web", "port": 1}, {"name": "web", "port": 2}],
                "tmpl": {"kind": "Bad_Kind", "metadata": {"labels": {"a": "b c"}}}}})
            ),
            vec![
                r#"spec.ports[1]: Duplicate value: map[string]interface {}{"name":"web"}"#,
                r#"spec.tags[2]: Duplicate value: "a""#,
                "spec.tmpl.apiVersion: Required value: must not be empty",
                r#"spec.tmpl.kind: Invalid value: "Bad_Kind": may have mixed case, but should otherwise match: a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"#,
                r#"spec.tmpl.metadata.labels: Invalid value: "b c": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"#,
            ]
        );
    }

    #[test]
    fn composition() {
        let s = spec(json!({"v": {"type": "integer", "anyOf": [{"minimum": 10}, {"maximum": 0}]}}));
        assert_eq!(
            errors(s, json!({"spec": {"v": 5}})),
            vec![
                r#"<nil>: Invalid value: "": "spec.v" must validate at least one schema (anyOf)"#,
                "spec.v: Invalid value: 5: spec.v in body should be greater than or equal to 10",
            ]
        );
    }
}
