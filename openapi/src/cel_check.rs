//! The type check and static cost estimate of a CRD validation rule, as kube-apiserver makes
//! them: cel-go's checker cost model (`checker/cost.go`), with the cost estimates of cel-go's
//! extension libraries and of Kubernetes' libraries (`k8s.io/apiserver/pkg/cel/library`), and
//! sizes taken from the schema as Kubernetes declares it to CEL (`SchemaDeclType`: `maxItems`,
//! `maxProperties`, `maxLength` × 4, or what a 3 MiB request could hold when they are unset).
//!
//! The estimate is an interval of cost units (`min`, `max`); kube-apiserver compares `max`,
//! times how many times the rule can run, with its limits. Every size and cost saturates at
//! `u64::MAX` as cel-go's do.
//!
//! It walks the tree the parser builds with cel-go's macro expansions (two-variable
//! comprehensions included, see [`crate::cel_macros::register_checked`]), so each node costs
//! what it costs in kube. On the way it reports what cel-go's checker reports for CRD rules
//! (undeclared identifiers and functions, undefined fields) and records which parts of `self`
//! the rule reads ([`Need`]).

use std::collections::HashMap;

use cel::common::ast::{CallExpr, ComprehensionExpr, EntryExpr, Expr, IdedExpr, LiteralValue};

use serde_json::Value;

use crate::cel::{escape, Need, LIST_ELEMENTS};
use crate::schema_node::{JsonType, Node};

/// kube-apiserver's `MaxRequestSizeBytes`: the size bound of values a schema leaves unbounded.
const MAX_REQUEST_BYTES: u64 = 3 * 1024 * 1024;
/// cel-go's cost constants (`common/cost.go`).
const STRING_TRAVERSAL: f64 = 0.1;
const REGEX_LENGTH: f64 = 0.25;
const LIST_CREATE: u64 = 10;
const MAP_CREATE: u64 = 30;
/// Kubernetes' `MaxNameFormatRegexSize` and `MaxFormatSize`.
const NAMED_FORMAT_REGEX: f64 = 128.0;
const MAX_FORMAT_SIZE: u64 = 64;

/// An interval of sizes or costs, saturating at `u64::MAX`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Range {
    pub min: u64,
    pub max: u64,
}

impl Range {
    const UNKNOWN: Range = Range {
        min: 0,
        max: u64::MAX,
    };
    /// The identity of `union`.
    const EMPTY: Range = Range {
        min: u64::MAX,
        max: 0,
    };

    pub(crate) const fn fixed(n: u64) -> Range {
        Range { min: n, max: n }
    }

    fn add(self, o: Range) -> Range {
        Range {
            min: self.min.saturating_add(o.min),
            max: self.max.saturating_add(o.max),
        }
    }

    fn mul(self, o: Range) -> Range {
        Range {
            min: self.min.saturating_mul(o.min),
            max: self.max.saturating_mul(o.max),
        }
    }

    /// Times a cost factor, each end rounded up.
    fn factor(self, f: f64) -> Range {
        Range {
            min: by_factor(self.min, f),
            max: by_factor(self.max, f),
        }
    }

    fn union(self, o: Range) -> Range {
        Range {
            min: self.min.min(o.min),
            max: self.max.max(o.max),
        }
    }
}

fn by_factor(x: u64, f: f64) -> u64 {
    let two_to_64 = 18_446_744_073_709_551_616.0_f64;
    let xf = x as f64;
    if xf > 0.0 && f > 0.0 && xf > two_to_64 / f {
        return u64::MAX;
    }
    let c = (xf * f).ceil();
    if c >= two_to_64 {
        u64::MAX
    } else {
        c as u64
    }
}

// ---------------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------------

/// The values of Kubernetes' CEL libraries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lib {
    Ip,
    Cidr,
    Quantity,
    Semver,
    Url,
    Format,
}

/// A CEL type as the checker knows it.
#[derive(Clone, Debug)]
enum Ty<'a> {
    /// Declared by a schema node (`true`: an (embedded) resource root, which shows `apiVersion`,
    /// `kind` and `metadata.name` / `metadata.generateName`).
    Schema(&'a Node, bool),
    /// The `metadata` of a resource root.
    Meta,
    Bool,
    Int,
    Uint,
    Double,
    Str,
    Bytes,
    Null,
    Duration,
    Timestamp,
    Type,
    Dyn,
    List(Box<Ty<'a>>),
    Map(Box<Ty<'a>>, Box<Ty<'a>>),
    Optional(Box<Ty<'a>>),
    Lib(Lib),
}

/// cel-go's type kinds, as far as the cost model tells them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Bool,
    Int,
    Uint,
    Double,
    Str,
    Bytes,
    Null,
    Duration,
    Timestamp,
    Type,
    Dyn,
    List,
    Map,
    /// Objects: schema objects, Quantity, Semver, URL, named formats.
    Struct,
    /// IPs, CIDRs, optionals.
    Opaque,
}

/// How a schema node is declared to CEL (kube's `SchemaDeclType`): None when it is not (no type,
/// an array without items, a map of such) and so is hidden from rules.
fn node_kind(n: &Node) -> Option<Kind> {
    if n.int_or_string {
        return Some(Kind::Dyn);
    }
    Some(match n.ty? {
        JsonType::Array => {
            node_kind(n.items.as_deref()?)?;
            Kind::List
        }
        JsonType::Object => match n.additional_schema() {
            Some(a) => {
                node_kind(a)?;
                Kind::Map
            }
            None => Kind::Struct,
        },
        JsonType::String => match n.format.as_str() {
            "byte" => Kind::Bytes,
            "duration" => Kind::Duration,
            "date" | "date-time" => Kind::Timestamp,
            _ => Kind::Str,
        },
        JsonType::Boolean => Kind::Bool,
        JsonType::Number => Kind::Double,
        JsonType::Integer => Kind::Int,
    })
}

/// Does a resource root's schema declare `apiVersion`, `kind` and `metadata.name` /
/// `metadata.generateName` itself (kube's `WithTypeAndObjectMeta` leaves it as it is)?
fn declares_type_meta(n: &Node) -> bool {
    let is = |n: Option<&Node>, t: JsonType| n.is_some_and(|n| n.ty == Some(t));
    let meta = n.property("metadata");
    is(n.property("kind"), JsonType::String)
        && is(n.property("apiVersion"), JsonType::String)
        && is(meta, JsonType::Object)
        && is(meta.and_then(|m| m.property("name")), JsonType::String)
        && is(
            meta.and_then(|m| m.property("generateName")),
            JsonType::String,
        )
}

/// The smallest JSON a value of this node serializes to (kube's `MinSerializedSize`).
fn min_size(n: &Node) -> u64 {
    if n.int_or_string {
        return 1;
    }
    match node_kind(n) {
        Some(Kind::Struct) => {
            let mut size = 2u64;
            for (name, p) in &n.properties {
                if node_kind(p).is_some()
                    && p.default.is_none()
                    && n.required.iter().any(|r| r == name)
                {
                    size = size
                        .saturating_add(name.len() as u64)
                        .saturating_add(min_size(p))
                        .saturating_add(4);
                }
            }
            size
        }
        Some(Kind::Bool) => 4,
        Some(Kind::Int | Kind::Double) => 1,
        Some(Kind::Duration) => 3,
        Some(Kind::Timestamp) if n.format == "date" => 12,
        Some(Kind::Timestamp) => 21,
        _ => 2,
    }
}

/// How many elements a value of this node can have (kube's `MaxElements`): items, properties,
/// or characters (`maxLength` × 4: a character is at most four bytes); 0 for scalars and
/// objects.
fn max_elements(n: &Node) -> u64 {
    let unbounded_string = MAX_REQUEST_BYTES - 2;
    let non_negative = |v: i64| v.max(0) as u64;
    if n.int_or_string {
        return n
            .max_length
            .map_or(unbounded_string, |m| non_negative(m).saturating_mul(4));
    }
    match node_kind(n) {
        Some(Kind::List) => n.max_items.map_or_else(
            || {
                let item = n.items.as_deref().map_or(1, min_size);
                unbounded_string / (item + 1)
            },
            non_negative,
        ),
        Some(Kind::Map) => n.max_properties.map_or_else(
            || {
                let value = n.additional_schema().map_or(1, min_size);
                unbounded_string / (value + 6)
            },
            non_negative,
        ),
        Some(Kind::Bytes) => n.max_length.map_or(unbounded_string, non_negative),
        Some(Kind::Duration) => 32,
        Some(Kind::Timestamp) if n.format == "date" => 12,
        Some(Kind::Timestamp) => 32,
        Some(Kind::Str) => match n.max_length {
            Some(m) => non_negative(m).saturating_mul(4),
            None if !n.enum_values.is_empty() => n
                .enum_values
                .iter()
                .filter_map(|v| v.as_str())
                .map(|s| s.len() as u64)
                .max()
                .unwrap_or(0),
            None => unbounded_string,
        },
        _ => 0,
    }
}

/// How many times a rule on a node of this minimum size can run in one object when nothing
/// above it bounds that (kube's `maxCardinality`).
pub(crate) fn max_cardinality(n: &Node) -> u64 {
    MAX_REQUEST_BYTES / (min_size(n) + 1)
}

impl<'a> Ty<'a> {
    fn kind(&self) -> Kind {
        match self {
            Ty::Schema(n, _) => node_kind(n).unwrap_or(Kind::Dyn),
            Ty::Meta => Kind::Struct,
            Ty::Bool => Kind::Bool,
            Ty::Int => Kind::Int,
            Ty::Uint => Kind::Uint,
            Ty::Double => Kind::Double,
            Ty::Str => Kind::Str,
            Ty::Bytes => Kind::Bytes,
            Ty::Null => Kind::Null,
            Ty::Duration => Kind::Duration,
            Ty::Timestamp => Kind::Timestamp,
            Ty::Type => Kind::Type,
            Ty::Dyn => Kind::Dyn,
            Ty::List(_) => Kind::List,
            Ty::Map(..) => Kind::Map,
            Ty::Optional(_) => Kind::Opaque,
            Ty::Lib(Lib::Ip | Lib::Cidr) => Kind::Opaque,
            Ty::Lib(_) => Kind::Struct,
        }
    }

    /// cel-go's `isScalar`: a value of fixed size.
    fn is_scalar(&self) -> bool {
        match self {
            Ty::Optional(t) => t.is_scalar(),
            _ => matches!(
                self.kind(),
                Kind::Bool
                    | Kind::Double
                    | Kind::Duration
                    | Kind::Int
                    | Kind::Timestamp
                    | Kind::Uint
            ),
        }
    }

    fn same(&self, o: &Ty<'a>) -> bool {
        match (self, o) {
            (Ty::Schema(a, ra), Ty::Schema(b, rb)) => std::ptr::eq(*a, *b) && ra == rb,
            (Ty::List(a), Ty::List(b)) | (Ty::Optional(a), Ty::Optional(b)) => a.same(b),
            (Ty::Map(ak, av), Ty::Map(bk, bv)) => ak.same(bk) && av.same(bv),
            (Ty::Lib(a), Ty::Lib(b)) => a == b,
            (Ty::Schema(..), _) | (_, Ty::Schema(..)) => false,
            _ => std::mem::discriminant(self) == std::mem::discriminant(o),
        }
    }

    /// The type of elements (lists) or values (maps).
    fn elem(&self) -> Ty<'a> {
        match self {
            Ty::Schema(n, _) => match node_kind(n) {
                Some(Kind::List) => n
                    .items
                    .as_deref()
                    .map_or(Ty::Dyn, |i| Ty::Schema(i, i.embedded)),
                Some(Kind::Map) => n
                    .additional_schema()
                    .map_or(Ty::Dyn, |a| Ty::Schema(a, a.embedded)),
                _ => Ty::Dyn,
            },
            Ty::List(e) | Ty::Map(_, e) => (**e).clone(),
            _ => Ty::Dyn,
        }
    }

    /// The type of keys (maps: strings for schema maps) or indices (lists).
    fn key(&self) -> Ty<'a> {
        match self.kind() {
            Kind::List => Ty::Int,
            Kind::Map => match self {
                Ty::Map(k, _) => (**k).clone(),
                _ => Ty::Str,
            },
            Kind::Struct => Ty::Str,
            _ => Ty::Dyn,
        }
    }

    /// What a single-variable comprehension iterates: list elements, map keys.
    fn iter_elem(&self) -> Ty<'a> {
        match self.kind() {
            Kind::List => self.elem(),
            _ => self.key(),
        }
    }

    /// The type of `self.<name>`; Err(message) for an undefined field.
    fn field(&self, name: &str) -> Result<Ty<'a>, String> {
        match self {
            Ty::Schema(n, resource) => match node_kind(n) {
                Some(Kind::Struct) => {
                    if *resource && !declares_type_meta(n) {
                        match name {
                            "apiVersion" | "kind" => return Ok(Ty::Str),
                            "metadata" => return Ok(Ty::Meta),
                            _ => {}
                        }
                    }
                    n.properties
                        .iter()
                        .find(|(k, p)| escape(k).as_deref() == Some(name) && node_kind(p).is_some())
                        .map(|(_, p)| Ty::Schema(p, p.embedded))
                        .ok_or_else(|| format!("undefined field '{name}'"))
                }
                Some(Kind::Map) => Ok(self.elem()),
                _ => Ok(Ty::Dyn),
            },
            Ty::Meta => match name {
                "name" | "generateName" => Ok(Ty::Str),
                _ => Err(format!("undefined field '{name}'")),
            },
            Ty::Map(_, v) => Ok((**v).clone()),
            _ => Ok(Ty::Dyn),
        }
    }
}

/// One type for two: the same, or dyn.
fn unify<'a>(a: Ty<'a>, b: &Ty<'a>) -> Ty<'a> {
    if a.same(b) {
        return a;
    }
    match (&a, b) {
        (Ty::List(x), Ty::List(y)) => Ty::List(Box::new(unify((**x).clone(), y))),
        (Ty::Map(xk, xv), Ty::Map(yk, yv)) => Ty::Map(
            Box::new(unify((**xk).clone(), yk)),
            Box::new(unify((**xv).clone(), yv)),
        ),
        _ if matches!(a, Ty::Dyn) => b.clone(),
        _ if matches!(b, Ty::Dyn) => a,
        _ => Ty::Dyn,
    }
}

// ---------------------------------------------------------------------------------------------
// Size estimates from the schema
// ---------------------------------------------------------------------------------------------

/// Where a field path through the declared types leads.
#[derive(Clone, Copy)]
enum Decl<'a> {
    Node(&'a Node, bool),
    Meta,
    /// A string declared without bounds (`apiVersion`, `kind`, `metadata.name`).
    Str,
    /// The keys of a schema map (declared with no bound).
    Key,
}

/// kube's `sizeEstimator.EstimateSize`: follow `path` (a variable, then field names, `@items`,
/// `@values` and `@keys`) from `self`'s declared type to the declared size of what it reaches.
fn declared_size(root: &Node, resource: bool, path: &[String]) -> Option<Range> {
    if path.is_empty() {
        return None;
    }
    let mut cur = Decl::Node(root, resource);
    for step in &path[1..] {
        cur = match (cur, step.as_str()) {
            (Decl::Node(n, _), "@items" | "@values") => match node_kind(n)? {
                Kind::List => {
                    let i = n.items.as_deref()?;
                    Decl::Node(i, i.embedded)
                }
                Kind::Map => {
                    let a = n.additional_schema()?;
                    Decl::Node(a, a.embedded)
                }
                _ => return None,
            },
            (Decl::Node(n, _), "@keys") if node_kind(n)? == Kind::Map => Decl::Key,
            (Decl::Node(n, resource), name) if node_kind(n)? == Kind::Struct => {
                if resource && !declares_type_meta(n) && matches!(name, "apiVersion" | "kind") {
                    Decl::Str
                } else if resource && !declares_type_meta(n) && name == "metadata" {
                    Decl::Meta
                } else {
                    let (_, p) = n.properties.iter().find(|(k, p)| {
                        escape(k).as_deref() == Some(name) && node_kind(p).is_some()
                    })?;
                    Decl::Node(p, p.embedded)
                }
            }
            (Decl::Meta, "name" | "generateName") => Decl::Str,
            _ => return None,
        };
    }
    let max = match cur {
        Decl::Node(n, _) => max_elements(n),
        Decl::Meta | Decl::Key => 0,
        Decl::Str => MAX_REQUEST_BYTES - 2,
    };
    Some(Range { min: 0, max })
}

/// The size a path reaches in the values a rule runs on (`self`, `oldSelf`): the largest of the
/// strings, lists or maps it reaches (a list's items or a map's values all count), 0 for
/// scalars and objects as their declared size is. With it the estimate is of the run on these
/// values instead of the worst case the schema allows.
fn actual_size(
    root: &Node,
    resource: bool,
    values: (&Value, Option<&Value>),
    path: &[String],
) -> Option<Range> {
    // As kube's size estimator, any root (a type name too) stands for `self`'s type.
    let start = match path.first()?.as_str() {
        "oldSelf" => values.1?,
        _ => values.0,
    };
    let mut cur: Vec<(Decl<'_>, &Value)> = vec![(Decl::Node(root, resource), start)];
    for step in &path[1..] {
        let mut next = Vec::new();
        for (decl, v) in cur {
            match (decl, step.as_str()) {
                (Decl::Node(n, _), "@items" | "@values") => {
                    let (elem, vals): (&Node, Vec<&Value>) = match node_kind(n)? {
                        Kind::List => (
                            n.items.as_deref()?,
                            v.as_array().into_iter().flatten().collect(),
                        ),
                        Kind::Map => (
                            n.additional_schema()?,
                            v.as_object().into_iter().flat_map(|m| m.values()).collect(),
                        ),
                        _ => return None,
                    };
                    next.extend(
                        vals.into_iter()
                            .map(|x| (Decl::Node(elem, elem.embedded), x)),
                    );
                }
                (Decl::Node(n, _), "@keys") if node_kind(n)? == Kind::Map => {
                    // Keys are sized by their length (a bare string value stands for it).
                    let longest = v
                        .as_object()
                        .into_iter()
                        .flat_map(|m| m.keys())
                        .map(|k| k.chars().count() as u64)
                        .max()
                        .unwrap_or(0);
                    return Some(Range {
                        min: 0,
                        max: longest,
                    });
                }
                (Decl::Node(n, resource), name) if node_kind(n)? == Kind::Struct => {
                    let decl = if resource
                        && !declares_type_meta(n)
                        && matches!(name, "apiVersion" | "kind")
                    {
                        Decl::Str
                    } else if resource && !declares_type_meta(n) && name == "metadata" {
                        Decl::Meta
                    } else {
                        let (_, p) = n.properties.iter().find(|(k, p)| {
                            escape(k).as_deref() == Some(name) && node_kind(p).is_some()
                        })?;
                        Decl::Node(p, p.embedded)
                    };
                    let key = v.as_object().and_then(|m| {
                        m.keys()
                            .find(|k| escape(k).as_deref() == Some(name))
                            .cloned()
                    });
                    if let Some(x) = key.and_then(|k| v.get(k)) {
                        next.push((decl, x));
                    }
                }
                (Decl::Meta, "name" | "generateName") => {
                    if let Some(x) = v.get(step.as_str()) {
                        next.push((Decl::Str, x));
                    }
                }
                _ => return None,
            }
        }
        cur = next;
    }
    let size = |decl: Decl<'_>, v: &Value| -> u64 {
        let chars = |v: &Value| v.as_str().map_or(0, |s| s.chars().count() as u64);
        match decl {
            Decl::Node(n, _) => match node_kind(n) {
                Some(Kind::List) => v.as_array().map_or(0, |a| a.len() as u64),
                Some(Kind::Map) => v.as_object().map_or(0, |m| m.len() as u64),
                Some(Kind::Bytes) => chars(v) * 3 / 4,
                Some(Kind::Str | Kind::Dyn | Kind::Duration | Kind::Timestamp) => chars(v),
                _ => 0,
            },
            Decl::Str | Decl::Key => chars(v),
            Decl::Meta => 0,
        }
    };
    let max = cur.into_iter().map(|(d, v)| size(d, v)).max().unwrap_or(0);
    Some(Range { min: 0, max })
}

// ---------------------------------------------------------------------------------------------
// The walk
// ---------------------------------------------------------------------------------------------

/// The size of a list's elements or a map's keys and values, where known.
#[derive(Clone, Copy, Debug)]
struct Entry {
    list: bool,
    key: Range,
    val: Range,
}

impl Entry {
    fn union(a: Option<Entry>, b: Option<Entry>) -> Option<Entry> {
        let (a, b) = (a?, b?);
        Some(Entry {
            list: a.list,
            key: a.key.union(b.key),
            val: a.val.union(b.val),
        })
    }
}

/// A comprehension variable in scope.
struct Local<'a> {
    path: Vec<String>,
    size: Option<Range>,
    entry: Option<Entry>,
    ty: Ty<'a>,
    /// For values taken from `self` (or `oldSelf`): the [`Need`] path they come from (`[]` for
    /// `self`; a list's elements add [`LIST_ELEMENTS`]).
    need: Option<Vec<String>>,
}

/// How a function call is costed: cel-go's overload classes, its extensions' estimators and
/// Kubernetes' library estimator.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Ov {
    /// One unit plus the arguments.
    Unit,
    Logical,
    Conditional,
    /// `==` / `!=`: bounded by the smaller operand (`kube`: Kubernetes' types compare in O(1)).
    Equality {
        kube: bool,
    },
    /// `<`, `<=`, `>`, `>=` on strings or bytes.
    Compare,
    AddString,
    AddList,
    IndexList,
    IndexMap,
    InList,
    Matches,
    Contains,
    StartsEnds,
    StringToBytes,
    BytesToString,
    Quote,
    FormatString,
    /// Kubernetes' list functions over a list (`isSorted`, `sum`, `min`, `max`, `indexOf`,
    /// `lastIndexOf`).
    ListFold,
    /// A traversal of the receiver, sized like it (`lowerAscii`, `indexOf` on a string…).
    Traverse {
        sized: bool,
    },
    /// A traversal of the first argument (`url`, `isIP`, `quantity`…), its result sized like
    /// it when `sized`.
    Parse {
        sized: bool,
        factor: f64,
    },
    Replace,
    Split,
    Join,
    Find,
    ContainsIp {
        string: bool,
    },
    ContainsCidr {
        string: bool,
    },
    Validate,
    Sets(f64),
    ListSlice,
    ListsRange,
    ListReverse,
    ListFlatten,
    ListDistinct,
    ListSort(f64),
}

/// The estimated cost of one run of a (checked) expression on these values of `self` and
/// `oldSelf`: kube's estimate with the sizes of the values instead of the schema's bounds. It is
/// what a run costs at most in kube's units, and the same for the same values on any machine.
pub(crate) fn run_cost(
    expr: &IdedExpr,
    n: &Node,
    resource: bool,
    optional_old_self: bool,
    values: (&Value, Option<&Value>),
) -> u64 {
    let mut c = Checker::new(n, resource, optional_old_self);
    c.actual = Some(values);
    c.check(expr).0.max
}

/// The size a path reaches in untyped variables' values (the variable's name first): the
/// largest string (characters), list or map (entries) it reaches. Without values (`vars` empty)
/// nothing is known.
fn untyped_size(vars: &[(&str, &Value)], path: &[String]) -> Option<Range> {
    let first = path.first()?;
    let (_, start) = vars.iter().find(|(n, _)| *n == first.as_str())?;
    let mut cur: Vec<&Value> = vec![start];
    for step in &path[1..] {
        let mut next = Vec::new();
        for v in cur {
            match step.as_str() {
                "@items" | "@values" => match v {
                    Value::Array(a) => next.extend(a.iter()),
                    Value::Object(m) => next.extend(m.values()),
                    _ => {}
                },
                "@keys" => {
                    let longest = v
                        .as_object()
                        .into_iter()
                        .flat_map(|m| m.keys())
                        .map(|k| k.chars().count() as u64)
                        .max()
                        .unwrap_or(0);
                    return Some(Range {
                        min: 0,
                        max: longest,
                    });
                }
                "@indices" => return None,
                field => {
                    if let Some(x) = v.get(field) {
                        next.push(x);
                    }
                }
            }
        }
        cur = next;
    }
    let max = cur
        .into_iter()
        .map(|v| match v {
            Value::String(s) => s.chars().count() as u64,
            Value::Array(a) => a.len() as u64,
            Value::Object(m) => m.len() as u64,
            _ => 0,
        })
        .max()
        .unwrap_or(0);
    Some(Range { min: 0, max })
}

/// The estimated cost of an expression over untyped variables: for any values (`vars` empty:
/// unbounded where sizes matter), or for these values.
pub(crate) fn untyped_cost(expr: &IdedExpr, vars: &[(&str, &Value)]) -> u64 {
    let root = Node::default();
    let mut c = Checker::new(&root, false, false);
    c.untyped = Some(vars);
    c.check(expr).0.max
}

/// The checker and coster of one expression.
pub(crate) struct Checker<'a> {
    root: &'a Node,
    resource: bool,
    /// The values of `self` and `oldSelf`, when estimating one run on them.
    actual: Option<(&'a Value, Option<&'a Value>)>,
    /// Untyped variables (admission policies, match conditions): every free identifier is a
    /// dyn variable; with values, sizes come from them.
    untyped: Option<&'a [(&'a str, &'a Value)]>,
    optional_old_self: bool,
    locals: HashMap<String, Vec<Local<'a>>>,
    paths: HashMap<u64, Vec<String>>,
    sizes: HashMap<u64, Range>,
    entries: HashMap<u64, Entry>,
    types: HashMap<u64, Ty<'a>>,
    /// Inside a field chain whose need is already marked: reading its root marks nothing more.
    chain: usize,
    pub errors: Vec<(u64, String)>,
    pub uses_old_self: bool,
    pub nodes: usize,
    pub need: Need,
}

/// `x.a.b` (or `has(x.a.b)`) on an identifier: the identifier and the field names.
fn field_chain(e: &IdedExpr) -> Option<(&str, Vec<&str>)> {
    let mut fields = Vec::new();
    let mut cur = e;
    loop {
        match &cur.expr {
            Expr::Select(sel) => {
                fields.push(sel.field.as_str());
                cur = &sel.operand;
            }
            Expr::Ident(name) => {
                fields.reverse();
                return Some((name.as_str(), fields));
            }
            _ => return None,
        }
    }
}

/// Identifiers that name types.
const TYPE_IDENTS: &[&str] = &[
    "int",
    "uint",
    "double",
    "bool",
    "string",
    "bytes",
    "list",
    "map",
    "null_type",
    "type",
    "dyn",
];

/// Namespaces of functions (`strings.quote(x)` parses as a member call on `strings`).
const NAMESPACES: &[&str] = &[
    "strings", "lists", "optional", "ip", "sets", "format", "math", "cel",
];

/// A literal integer argument (negative ones read as 0), as cel-go's list estimators read them.
fn int_literal(e: Option<&IdedExpr>) -> Option<u64> {
    match e.map(|e| &e.expr) {
        Some(Expr::Literal(LiteralValue::Int(i))) => Some((*i.inner()).max(0) as u64),
        _ => None,
    }
}

/// The size of a literal, list or map written in the expression.
fn written_size(e: &IdedExpr) -> Option<Range> {
    let n = match &e.expr {
        Expr::Literal(LiteralValue::String(s)) => s.inner().chars().count() as u64,
        Expr::Literal(LiteralValue::Bytes(b)) => b.inner().len() as u64,
        Expr::Literal(_) => 1,
        Expr::List(l) => l.elements.len() as u64,
        Expr::Map(m) => m.entries.len() as u64,
        _ => return None,
    };
    Some(Range::fixed(n))
}

impl<'a> Checker<'a> {
    /// A checker for rules on `root` (a resource root when `resource`).
    pub(crate) fn new(root: &'a Node, resource: bool, optional_old_self: bool) -> Self {
        Checker {
            root,
            resource,
            actual: None,
            untyped: None,
            optional_old_self,
            locals: HashMap::new(),
            paths: HashMap::new(),
            sizes: HashMap::new(),
            entries: HashMap::new(),
            types: HashMap::new(),
            chain: 0,
            errors: Vec::new(),
            uses_old_self: false,
            nodes: 0,
            need: Need::default(),
        }
    }

    /// Check and cost an expression: its estimated cost, and whether its type is `bool`
    /// (Some(false)) or `string`, as far as known (None: dyn).
    pub(crate) fn check(&mut self, e: &IdedExpr) -> (Range, Option<&'static str>) {
        let cost = self.cost(e);
        let ty = match self.ty_of(e).kind() {
            Kind::Bool => Some("bool"),
            Kind::Str => Some("string"),
            Kind::Dyn => None,
            _ => Some("other"),
        };
        (cost, ty)
    }

    fn error(&mut self, id: u64, msg: String) {
        if !self.errors.iter().any(|(i, m)| *i == id && *m == msg) {
            self.errors.push((id, msg));
        }
    }

    fn local(&self, name: &str) -> Option<&Local<'a>> {
        self.locals.get(name).and_then(|v| v.last())
    }

    fn push_local(&mut self, name: &str, local: Local<'a>) {
        self.locals.entry(name.to_string()).or_default().push(local);
    }

    fn pop_local(&mut self, name: &str) {
        if let Some(v) = self.locals.get_mut(name) {
            v.pop();
        }
    }

    fn ty_of(&self, e: &IdedExpr) -> Ty<'a> {
        self.types.get(&e.id).cloned().unwrap_or(Ty::Dyn)
    }

    fn path_of(&self, e: &IdedExpr) -> Vec<String> {
        if let Expr::Ident(name) = &e.expr {
            if let Some(l) = self.local(name) {
                return l.path.clone();
            }
        }
        self.paths.get(&e.id).cloned().unwrap_or_default()
    }

    /// The type and need path of a variable.
    fn variable(&self, name: &str) -> Option<(Ty<'a>, Option<Vec<String>>)> {
        if let Some(l) = self.local(name) {
            return Some((l.ty.clone(), l.need.clone()));
        }
        if self.untyped.is_some() {
            return Some((Ty::Dyn, None));
        }
        let root = Ty::Schema(self.root, self.resource);
        match name {
            "self" => Some((root, Some(Vec::new()))),
            "oldSelf" if self.optional_old_self => {
                Some((Ty::Optional(Box::new(root)), Some(Vec::new())))
            }
            "oldSelf" => Some((root, Some(Vec::new()))),
            _ => None,
        }
    }

    /// cel-go's `computeSize`.
    fn size(&mut self, e: &IdedExpr) -> Option<Range> {
        if let Some(s) = self.sizes.get(&e.id) {
            return Some(*s);
        }
        if let Some(s) = written_size(e) {
            return Some(s);
        }
        let path = self.path_of(e);
        let sized = match (self.untyped, self.actual) {
            (Some(vars), _) => untyped_size(vars, &path),
            (None, Some(values)) => actual_size(self.root, self.resource, values, &path),
            (None, None) => declared_size(self.root, self.resource, &path),
        };
        if let Some(s) = sized {
            self.sizes.insert(e.id, s);
            return Some(s);
        }
        if self.ty_of(e).is_scalar() {
            return Some(Range::fixed(1));
        }
        if let Expr::Ident(name) = &e.expr {
            return self.local(name).and_then(|l| l.size);
        }
        None
    }

    fn size_or_unknown(&mut self, e: &IdedExpr) -> Range {
        self.size(e).unwrap_or(Range::UNKNOWN)
    }

    fn entry(&self, e: &IdedExpr) -> Option<Entry> {
        if let Some(s) = self.entries.get(&e.id) {
            return Some(*s);
        }
        if let Expr::Ident(name) = &e.expr {
            return self.local(name).and_then(|l| l.entry);
        }
        None
    }

    fn set_entry(&mut self, e: &IdedExpr, entry: Option<Entry>) {
        if let Some(s) = entry {
            self.entries.insert(e.id, s);
        }
    }

    /// Mark `path` (then `fields`) as read: all of it, or only its presence (`has()`).
    fn mark(&mut self, path: &[String], fields: &[&str], presence: bool) {
        let full: Vec<&str> = path
            .iter()
            .map(String::as_str)
            .chain(fields.iter().copied())
            .collect();
        if presence {
            self.need.mark_present(&full);
        } else {
            self.need.mark(&full);
        }
    }

    fn cost(&mut self, e: &IdedExpr) -> Range {
        self.nodes += 1;
        match &e.expr {
            Expr::Unspecified => Range::fixed(0),
            Expr::Literal(l) => {
                let ty = match l {
                    LiteralValue::Int(_) => Ty::Int,
                    LiteralValue::UInt(_) => Ty::Uint,
                    LiteralValue::Double(_) => Ty::Double,
                    LiteralValue::String(_) => Ty::Str,
                    LiteralValue::Bytes(_) => Ty::Bytes,
                    LiteralValue::Boolean(_) => Ty::Bool,
                    LiteralValue::Null => Ty::Null,
                };
                self.types.insert(e.id, ty);
                Range::fixed(0)
            }
            Expr::Ident(name) => {
                let ty = match self.variable(name) {
                    Some((ty, need)) => {
                        if name == "oldSelf" && self.local(name).is_none() {
                            self.uses_old_self = true;
                        }
                        if self.chain == 0 {
                            if let Some(p) = need {
                                self.mark(&p, &[], false);
                            }
                        }
                        ty
                    }
                    None if TYPE_IDENTS.contains(&name.as_str()) => Ty::Type,
                    None => {
                        self.error(
                            e.id,
                            format!("undeclared reference to '{name}' (in container '')"),
                        );
                        Ty::Dyn
                    }
                };
                self.types.insert(e.id, ty);
                let path = match self.local(name) {
                    Some(l) => l.path.clone(),
                    None => vec![name.clone()],
                };
                self.paths.insert(e.id, path);
                Range::fixed(1)
            }
            Expr::Select(sel) => {
                // `google.protobuf.Duration` and its kin name types.
                if let Some((root, fields)) = field_chain(e) {
                    if root == "google" && self.variable(root).is_none() && !sel.test {
                        let name = std::iter::once(root).chain(fields).collect::<Vec<_>>();
                        self.types.insert(e.id, Ty::Type);
                        self.paths.insert(e.id, vec![name.join(".")]);
                        return Range::fixed(1);
                    }
                }
                // A chain on a variable holding (part of) `self`: only the fields read are
                // needed (or only their presence, for `has()`).
                let chain = match field_chain(e) {
                    Some((root, fields)) if self.chain == 0 => self
                        .variable(root)
                        .and_then(|(_, need)| need)
                        .map(|p| (p, fields)),
                    _ => None,
                };
                if let Some((p, fields)) = &chain {
                    self.mark(p, fields, sel.test);
                    self.chain += 1;
                }
                let operand_cost = self.cost(&sel.operand);
                if chain.is_some() {
                    self.chain -= 1;
                }
                let operand = self.ty_of(&sel.operand);
                let field = match operand.field(&sel.field) {
                    Ok(t) => t,
                    Err(msg) => {
                        self.error(e.id, msg);
                        Ty::Dyn
                    }
                };
                if sel.test {
                    // kube does not charge presence tests.
                    self.types.insert(e.id, Ty::Bool);
                    return operand_cost;
                }
                self.types.insert(e.id, field);
                let mut path = self.path_of(&sel.operand);
                path.push(sel.field.clone());
                self.paths.insert(e.id, path);
                match operand.kind() {
                    Kind::Map | Kind::Struct => operand_cost.add(Range::fixed(1)),
                    _ => operand_cost,
                }
            }
            Expr::List(list) => {
                let mut cost = Range::fixed(0);
                let mut item = if list.elements.is_empty() {
                    Range::fixed(0)
                } else {
                    Range::EMPTY
                };
                let mut elem: Option<Ty<'a>> = None;
                for x in &list.elements {
                    cost = cost.add(self.cost(x));
                    item = item.union(self.size_or_unknown(x));
                    let t = self.ty_of(x);
                    elem = Some(match elem {
                        Some(prev) => unify(prev, &t),
                        None => t,
                    });
                }
                self.entries.insert(
                    e.id,
                    Entry {
                        list: true,
                        key: Range::fixed(1),
                        val: item,
                    },
                );
                self.types
                    .insert(e.id, Ty::List(Box::new(elem.unwrap_or(Ty::Dyn))));
                cost.add(Range::fixed(LIST_CREATE))
            }
            Expr::Map(map) => {
                let mut cost = Range::fixed(0);
                let (mut keys, mut vals) = if map.entries.is_empty() {
                    (Range::fixed(0), Range::fixed(0))
                } else {
                    (Range::EMPTY, Range::EMPTY)
                };
                let (mut kt, mut vt): (Option<Ty<'a>>, Option<Ty<'a>>) = (None, None);
                for entry in &map.entries {
                    match &entry.expr {
                        EntryExpr::MapEntry(me) => {
                            cost = cost.add(self.cost(&me.key));
                            cost = cost.add(self.cost(&me.value));
                            keys = keys.union(self.size_or_unknown(&me.key));
                            vals = vals.union(self.size_or_unknown(&me.value));
                            let (k, v) = (self.ty_of(&me.key), self.ty_of(&me.value));
                            kt = Some(kt.map_or(k.clone(), |p| unify(p, &k)));
                            vt = Some(vt.map_or(v.clone(), |p| unify(p, &v)));
                        }
                        EntryExpr::StructField(sf) => {
                            cost = cost.add(self.cost(&sf.value));
                        }
                    }
                }
                self.entries.insert(
                    e.id,
                    Entry {
                        list: false,
                        key: keys,
                        val: vals,
                    },
                );
                self.types.insert(
                    e.id,
                    Ty::Map(
                        Box::new(kt.unwrap_or(Ty::Dyn)),
                        Box::new(vt.unwrap_or(Ty::Dyn)),
                    ),
                );
                cost.add(Range::fixed(MAP_CREATE))
            }
            Expr::Struct(s) => {
                self.error(
                    e.id,
                    format!(
                        "undeclared reference to '{}' (in container '')",
                        s.type_name
                    ),
                );
                Range::fixed(0)
            }
            Expr::Comprehension(c) => self.comprehension(e, c),
            Expr::Call(call) => self.call(e, call),
        }
    }

    fn comprehension(&mut self, e: &IdedExpr, c: &ComprehensionExpr) -> Range {
        // Over a list taken from `self`, a one-variable comprehension needs its elements only as
        // far as the variable is read.
        let range_need = match field_chain(&c.iter_range) {
            Some((root, fields)) if self.chain == 0 && c.iter_var2.is_none() => {
                self.variable(root).and_then(|(_, need)| need).map(|p| {
                    p.into_iter()
                        .chain(fields.iter().map(|f| f.to_string()))
                        .collect::<Vec<String>>()
                })
            }
            _ => None,
        };
        let before = range_need.as_ref().map(|_| self.need.clone());
        let mut sum = self.cost(&c.iter_range);
        let range_ty = self.ty_of(&c.iter_range);
        let elem_need = match (range_need, before) {
            (Some(mut p), Some(before)) if matches!(range_ty, Ty::Schema(n, _) if n.ty == Some(JsonType::Array)) =>
            {
                self.need = before;
                let fields: Vec<&str> = p.iter().map(String::as_str).collect();
                self.need.mark_present(&fields);
                p.push(LIST_ELEMENTS.to_string());
                Some(p)
            }
            _ => None,
        };
        sum = sum.add(self.cost(&c.accu_init));
        let accu = Local {
            path: self.path_of(&c.accu_init),
            size: self.size(&c.accu_init),
            entry: self.entry(&c.accu_init),
            ty: self.ty_of(&c.accu_init),
            need: None,
        };
        self.push_local(&c.accu_var, accu);

        let entry = self.entry(&c.iter_range);
        let list = match entry {
            Some(en) => en.list,
            None => range_ty.kind() == Kind::List,
        };
        let range_path = self.path_of(&c.iter_range);
        let with = |step: &str| {
            let mut p = range_path.clone();
            p.push(step.to_string());
            p
        };
        match &c.iter_var2 {
            Some(v2) => {
                self.push_local(
                    &c.iter_var,
                    Local {
                        path: with(if list { "@indices" } else { "@keys" }),
                        size: entry.map(|en| en.key),
                        entry: None,
                        ty: range_ty.key(),
                        need: None,
                    },
                );
                self.push_local(
                    v2,
                    Local {
                        path: with(if list { "@items" } else { "@values" }),
                        size: entry.map(|en| en.val),
                        entry: None,
                        ty: range_ty.elem(),
                        need: None,
                    },
                );
            }
            None => {
                self.push_local(
                    &c.iter_var,
                    Local {
                        path: with(if list { "@items" } else { "@keys" }),
                        size: entry.map(|en| if list { en.val } else { en.key }),
                        entry: None,
                        ty: range_ty.iter_elem(),
                        need: elem_need,
                    },
                );
            }
        }
        let loop_cost = self.cost(&c.loop_cond);
        let step_cost = self.cost(&c.loop_step);
        self.pop_local(&c.iter_var);
        if let Some(v2) = &c.iter_var2 {
            self.pop_local(v2);
        }
        // The accumulator holds what the steps build.
        let step_ty = self.ty_of(&c.loop_step);
        if let Some(l) = self.locals.get_mut(&c.accu_var).and_then(|v| v.last_mut()) {
            let refined = unify(l.ty.clone(), &step_ty);
            l.ty = refined;
        }
        sum = sum.add(self.cost(&c.result));
        self.pop_local(&c.accu_var);
        let result_ty = self.ty_of(&c.result);
        self.types.insert(e.id, result_ty);

        let count = self.size_or_unknown(&c.iter_range);
        sum = sum.add(count.mul(step_cost.add(loop_cost)));
        match &c.accu_init.expr {
            Expr::Literal(_) => {
                if let Some(s) = self.size(&c.accu_init) {
                    self.sizes.insert(e.id, s);
                }
            }
            Expr::List(_) | Expr::Map(_) => {
                self.sizes.insert(e.id, count);
                let step_entry = self.entry(&c.loop_step);
                self.set_entry(e, step_entry);
            }
            _ => {}
        }
        let is_bind = matches!(&c.iter_range.expr, Expr::List(l) if l.elements.is_empty())
            && matches!(&c.loop_cond.expr, Expr::Literal(LiteralValue::Boolean(b)) if !*b.inner())
            && c.accu_var != "__result__"
            && c.accu_var != "@result";
        if is_bind {
            self.error(
                e.id,
                "undeclared reference to 'cel.bind' (in container '')".to_string(),
            );
        }
        sum
    }

    fn call(&mut self, e: &IdedExpr, call: &CallExpr) -> Range {
        // `ns.f(x)` parses as a member call on the identifier `ns`.
        let mut name = call.func_name.clone();
        let mut target = call.target.as_deref();
        if let Some(IdedExpr {
            expr: Expr::Ident(ns),
            ..
        }) = target
        {
            if NAMESPACES.contains(&ns.as_str()) && self.variable(ns).is_none() {
                name = format!("{ns}.{name}");
                target = None;
            }
        }
        let args = &call.args;
        if name == "dyn" && target.is_none() && args.len() == 1 {
            let c = self.cost(&args[0]);
            if let Some(s) = self.size(&args[0]) {
                self.sizes.insert(e.id, s);
            }
            let en = self.entry(&args[0]);
            self.set_entry(e, en);
            self.types.insert(e.id, Ty::Dyn);
            return Range::fixed(1).add(c);
        }
        let arg_costs: Vec<Range> = args.iter().map(|a| self.cost(a)).collect();
        let target_cost = target.map(|t| self.cost(t));
        let arg_tys: Vec<Ty<'a>> = args.iter().map(|a| self.ty_of(a)).collect();
        let target_ty = target.map(|t| self.ty_of(t));
        let field = match (name.as_str(), args.get(1).map(|a| &a.expr)) {
            ("_?._", Some(Expr::Literal(LiteralValue::String(f)))) => Some(f.inner().to_string()),
            _ => None,
        };
        let Some((ovs, ty)) =
            self.resolve(&name, target_ty.as_ref(), &arg_tys, field.as_deref(), e.id)
        else {
            self.types.insert(e.id, Ty::Dyn);
            return Range::fixed(0);
        };
        self.types.insert(e.id, ty);
        let mut fn_cost = Range::EMPTY;
        let mut result: Option<Range> = None;
        for ov in ovs {
            let (c, size) = self.function_cost(e, ov, target, args, &arg_costs);
            fn_cost = fn_cost.union(c);
            if let Some(s) = size {
                result = Some(result.map_or(s, |r| r.union(s)));
            }
            match ov {
                Ov::IndexList | Ov::IndexMap => {
                    result = self.entry(&args[0]).map(|en| en.val);
                    let mut path = self.path_of(&args[0]);
                    path.push(
                        if ov == Ov::IndexList {
                            "@items"
                        } else {
                            "@values"
                        }
                        .into(),
                    );
                    self.paths.insert(e.id, path);
                }
                _ => {}
            }
            if result.is_none() {
                result = self.size(e);
            }
        }
        if let Some(s) = result {
            self.sizes.insert(e.id, s);
        }
        target_cost.unwrap_or(Range::fixed(0)).add(fn_cost)
    }

    /// The overloads a call can resolve to and its result type; None (with the checker's error)
    /// for a function kube's environment does not declare.
    fn resolve(
        &mut self,
        name: &str,
        target: Option<&Ty<'a>>,
        args: &[Ty<'a>],
        field: Option<&str>,
        id: u64,
    ) -> Option<(Vec<Ov>, Ty<'a>)> {
        use Kind as K;
        let arg = |i: usize| args.get(i).cloned().unwrap_or(Ty::Dyn);
        let kind = |i: usize| args.get(i).map_or(K::Dyn, Ty::kind);
        let recv = target.cloned().unwrap_or(Ty::Dyn);
        let one = |ty: Ty<'a>| Some((vec![Ov::Unit], ty));
        let stringy = |k: K| matches!(k, K::Str | K::Bytes);
        let member = target.is_some();
        match name {
            "_&&_" | "_||_" => Some((vec![Ov::Logical], Ty::Bool)),
            "!_" | "@not_strictly_false" => one(Ty::Bool),
            "-_" => one(arg(0)),
            "_?_:_" => Some((vec![Ov::Conditional], unify(arg(1), &arg(2)))),
            "_==_" | "_!=_" => Some((
                vec![Ov::Equality {
                    kube: name == "_==_",
                }],
                Ty::Bool,
            )),
            "_<_" | "_<=_" | "_>_" | "_>=_" => {
                let ovs = if stringy(kind(0)) || stringy(kind(1)) {
                    vec![Ov::Compare]
                } else if kind(0) == K::Dyn && kind(1) == K::Dyn {
                    vec![Ov::Compare, Ov::Unit]
                } else {
                    vec![Ov::Unit]
                };
                Some((ovs, Ty::Bool))
            }
            "_+_" => {
                let (a, b) = (kind(0), kind(1));
                Some(match (a, b) {
                    (K::Str, _) | (_, K::Str) => (vec![Ov::AddString], Ty::Str),
                    (K::Bytes, _) | (_, K::Bytes) => (vec![Ov::AddString], Ty::Bytes),
                    (K::List, _) | (_, K::List) => {
                        let elem = unify(arg(0).elem(), &arg(1).elem());
                        let ty = match (a, b) {
                            (K::List, K::List) => Ty::List(Box::new(elem)),
                            (K::List, _) => arg(0),
                            _ => arg(1),
                        };
                        (vec![Ov::AddList], ty)
                    }
                    (K::Dyn, K::Dyn) => (vec![Ov::Unit, Ov::AddString, Ov::AddList], Ty::Dyn),
                    (K::Timestamp, _) | (_, K::Timestamp) => (vec![Ov::Unit], Ty::Timestamp),
                    (K::Dyn, _) => (vec![Ov::Unit], arg(1)),
                    _ => (vec![Ov::Unit], arg(0)),
                })
            }
            "_-_" => Some(match (kind(0), kind(1)) {
                (K::Timestamp, K::Timestamp) => (vec![Ov::Unit], Ty::Duration),
                (K::Dyn, _) => (vec![Ov::Unit], arg(1)),
                _ => (vec![Ov::Unit], arg(0)),
            }),
            "_*_" | "_/_" | "_%_" => one(if kind(0) == K::Dyn { arg(1) } else { arg(0) }),
            "_[_]" => {
                let c = arg(0);
                Some(match c.kind() {
                    K::List => (vec![Ov::IndexList], c.elem()),
                    K::Map => (vec![Ov::IndexMap], c.elem()),
                    K::Opaque => match &c {
                        Ty::Optional(inner) => {
                            (vec![Ov::Unit], Ty::Optional(Box::new(inner.elem())))
                        }
                        _ => (vec![Ov::Unit], Ty::Dyn),
                    },
                    _ => (vec![Ov::IndexList, Ov::IndexMap], Ty::Dyn),
                })
            }
            "_[?_]" => {
                let c = match arg(0) {
                    Ty::Optional(inner) => *inner,
                    c => c,
                };
                one(Ty::Optional(Box::new(c.elem())))
            }
            "_?._" => {
                let operand = match arg(0) {
                    Ty::Optional(inner) => *inner,
                    t => t,
                };
                let field = field.map_or(Ty::Dyn, |f| operand.field(f).unwrap_or(Ty::Dyn));
                one(Ty::Optional(Box::new(field)))
            }
            "@in" => {
                let ovs = match kind(1) {
                    K::List => vec![Ov::InList],
                    K::Map => vec![Ov::Unit],
                    _ => vec![Ov::InList, Ov::Unit],
                };
                Some((ovs, Ty::Bool))
            }
            "size" => one(Ty::Int),
            "int" => one(Ty::Int),
            "uint" => one(Ty::Uint),
            "double" => one(Ty::Double),
            "bool" => one(Ty::Bool),
            "duration" => one(Ty::Duration),
            "timestamp" => one(Ty::Timestamp),
            "type" => one(Ty::Type),
            "string" => Some(match kind(0) {
                K::Bytes => (vec![Ov::BytesToString], Ty::Str),
                K::Dyn => (vec![Ov::Unit, Ov::BytesToString], Ty::Str),
                _ => (vec![Ov::Unit], Ty::Str),
            }),
            "bytes" => Some(match kind(0) {
                K::Str => (vec![Ov::StringToBytes], Ty::Bytes),
                K::Dyn => (vec![Ov::Unit, Ov::StringToBytes], Ty::Bytes),
                _ => (vec![Ov::Unit], Ty::Bytes),
            }),
            "matches" => Some((vec![if member { Ov::Matches } else { Ov::Unit }], Ty::Bool)),
            "contains" if member => Some((vec![Ov::Contains], Ty::Bool)),
            "startsWith" | "endsWith" if member => Some((vec![Ov::StartsEnds], Ty::Bool)),
            "getFullYear" | "getMonth" | "getDayOfYear" | "getDayOfMonth" | "getDate"
            | "getDayOfWeek" | "getHours" | "getMinutes" | "getSeconds" | "getMilliseconds"
                if member =>
            {
                one(Ty::Int)
            }
            // cel-go's strings extension, version 2.
            "charAt" if member => one(Ty::Str),
            "indexOf" | "lastIndexOf" if member => {
                if recv.kind() == K::List {
                    Some((vec![Ov::ListFold], Ty::Int))
                } else {
                    Some((vec![Ov::Traverse { sized: false }], Ty::Int))
                }
            }
            "lowerAscii" | "upperAscii" | "trim" | "substring" if member => {
                Some((vec![Ov::Traverse { sized: true }], Ty::Str))
            }
            "replace" if member => Some((vec![Ov::Replace], Ty::Str)),
            "split" if member => Some((vec![Ov::Split], Ty::List(Box::new(Ty::Str)))),
            "join" if member => Some((vec![Ov::Join], Ty::Str)),
            "format" if member => Some((vec![Ov::FormatString], Ty::Str)),
            "strings.quote" => Some((vec![Ov::Quote], Ty::Str)),
            // Kubernetes' list and regex libraries.
            "isSorted" if member => Some((vec![Ov::ListFold], Ty::Bool)),
            "sum" | "min" | "max" if member => Some((vec![Ov::ListFold], recv.elem())),
            "find" if member => Some((vec![Ov::Find], Ty::Str)),
            "findAll" if member => Some((vec![Ov::Find], Ty::List(Box::new(Ty::Str)))),
            // cel-go's lists extension, version 3, and sets.
            "slice" if member => Some((vec![Ov::ListSlice], recv)),
            "flatten" if member => Some((
                vec![Ov::ListFlatten],
                Ty::List(Box::new(recv.elem().elem())),
            )),
            "reverse" if member && recv.kind() != K::Str => Some((vec![Ov::ListReverse], recv)),
            "distinct" if member => Some((vec![Ov::ListDistinct], recv)),
            "sort" if member => {
                let factor = if stringy(recv.elem().kind()) {
                    2.1
                } else {
                    2.0
                };
                Some((vec![Ov::ListSort(factor)], recv))
            }
            "lists.range" => Some((vec![Ov::ListsRange], Ty::List(Box::new(Ty::Int)))),
            "sets.contains" | "sets.intersects" => Some((vec![Ov::Sets(1.0)], Ty::Bool)),
            "sets.equivalent" => Some((vec![Ov::Sets(2.0)], Ty::Bool)),
            // Optionals.
            "optional.of" | "optional.ofNonZeroValue" => one(Ty::Optional(Box::new(arg(0)))),
            "optional.none" => one(Ty::Optional(Box::new(Ty::Dyn))),
            "hasValue" if member => one(Ty::Bool),
            "value" if member => one(match recv {
                Ty::Optional(t) => *t,
                _ => Ty::Dyn,
            }),
            "or" if member => one(recv),
            "orValue" if member => one(match recv {
                Ty::Optional(t) => *t,
                _ => arg(0),
            }),
            // What two-variable comprehensions build maps with.
            "cel.@mapInsert" => one(arg(0)),
            // Kubernetes' URL library.
            "url" if !member => Some((
                vec![Ov::Parse {
                    sized: true,
                    factor: STRING_TRAVERSAL,
                }],
                Ty::Lib(Lib::Url),
            )),
            "isURL" if !member => one(Ty::Bool),
            "getScheme" | "getHost" | "getHostname" | "getPort" | "getEscapedPath" if member => {
                one(Ty::Str)
            }
            "getQuery" if member => one(Ty::Map(
                Box::new(Ty::Str),
                Box::new(Ty::List(Box::new(Ty::Str))),
            )),
            // IPs and CIDRs.
            "ip" if member => one(Ty::Lib(Lib::Ip)),
            "ip" | "cidr" | "isIP" | "isCIDR" => Some((
                vec![Ov::Parse {
                    sized: false,
                    factor: STRING_TRAVERSAL,
                }],
                match name {
                    "ip" => Ty::Lib(Lib::Ip),
                    "cidr" => Ty::Lib(Lib::Cidr),
                    _ => Ty::Bool,
                },
            )),
            "ip.isCanonical" => Some((
                vec![Ov::Parse {
                    sized: false,
                    factor: 2.0 * STRING_TRAVERSAL,
                }],
                Ty::Bool,
            )),
            "family" | "prefixLength" if member => one(Ty::Int),
            "isUnspecified"
            | "isLoopback"
            | "isLinkLocalMulticast"
            | "isLinkLocalUnicast"
            | "isGlobalUnicast"
                if member =>
            {
                one(Ty::Bool)
            }
            "masked" if member => one(Ty::Lib(Lib::Cidr)),
            "containsIP" | "containsCIDR" if member => {
                let strings: &[bool] = match kind(0) {
                    K::Str => &[true],
                    K::Dyn => &[false, true],
                    _ => &[false],
                };
                let ovs = strings
                    .iter()
                    .map(|&string| {
                        if name == "containsIP" {
                            Ov::ContainsIp { string }
                        } else {
                            Ov::ContainsCidr { string }
                        }
                    })
                    .collect();
                Some((ovs, Ty::Bool))
            }
            // Quantities and semantic versions.
            "quantity" | "isQuantity" | "semver" | "isSemver" if !member => Some((
                vec![Ov::Parse {
                    sized: false,
                    factor: STRING_TRAVERSAL,
                }],
                match name {
                    "quantity" => Ty::Lib(Lib::Quantity),
                    "semver" => Ty::Lib(Lib::Semver),
                    _ => Ty::Bool,
                },
            )),
            "sign" | "asInteger" | "compareTo" | "major" | "minor" | "patch" if member => {
                one(Ty::Int)
            }
            "isInteger" | "isGreaterThan" | "isLessThan" if member => one(Ty::Bool),
            "asApproximateFloat" if member => one(Ty::Double),
            "add" | "sub" if member => one(Ty::Lib(Lib::Quantity)),
            // Named formats.
            "format.named" => one(Ty::Optional(Box::new(Ty::Lib(Lib::Format)))),
            n if n
                .strip_prefix("format.")
                .is_some_and(crate::cel_lib::is_named_format) =>
            {
                one(Ty::Lib(Lib::Format))
            }
            "validate" if member => Some((
                vec![Ov::Validate],
                Ty::Optional(Box::new(Ty::List(Box::new(Ty::Str)))),
            )),
            "reverse" if member => {
                self.error(
                    id,
                    "found no matching overload for 'reverse' applied to 'string.()'".into(),
                );
                None
            }
            _ => {
                self.error(
                    id,
                    format!("undeclared reference to '{name}' (in container '')"),
                );
                None
            }
        }
    }

    /// The cost of one overload of a call (without its receiver's cost), and its result size.
    fn function_cost(
        &mut self,
        e: &IdedExpr,
        ov: Ov,
        target: Option<&IdedExpr>,
        args: &[IdedExpr],
        arg_costs: &[Range],
    ) -> (Range, Option<Range>) {
        let args_sum = arg_costs.iter().fold(Range::fixed(0), |acc, c| acc.add(*c));
        let unit = Range::fixed(1);
        let size = |me: &mut Self, i: usize| match args.get(i) {
            Some(a) => me.size_or_unknown(a),
            None => Range::UNKNOWN,
        };
        let recv_size = |me: &mut Self| match target {
            Some(t) => me.size_or_unknown(t),
            None => Range::UNKNOWN,
        };
        let (cost, result) = match ov {
            Ov::Unit => (unit, None),
            Ov::Logical => {
                let (l, r) = (arg_costs[0], arg_costs[1]);
                return (
                    Range {
                        min: l.min,
                        max: l.add(r).max,
                    },
                    None,
                );
            }
            Ov::Conditional => {
                let s = size(self, 1).union(size(self, 2));
                let en = Entry::union(self.entry(&args[1]), self.entry(&args[2]));
                self.set_entry(e, en);
                let c = arg_costs[0].add(arg_costs[1].union(arg_costs[2]));
                return (c, Some(s));
            }
            Ov::Equality { kube } => {
                let (lt, rt) = (self.ty_of(&args[0]), self.ty_of(&args[1]));
                if kube && lt.same(&rt) {
                    match lt {
                        Ty::Lib(Lib::Ip | Lib::Cidr | Lib::Quantity | Lib::Semver) => {
                            return (unit.add(args_sum), None);
                        }
                        Ty::Lib(Lib::Format) => {
                            let c = Range {
                                min: 1,
                                max: MAX_FORMAT_SIZE,
                            }
                            .factor(STRING_TRAVERSAL);
                            return (c.add(args_sum), None);
                        }
                        Ty::Lib(Lib::Url) => {
                            let s = self.size(&args[1]).unwrap_or(Range::fixed(1));
                            let c = Range { min: 1, max: s.max }.factor(STRING_TRAVERSAL);
                            return (c.add(args_sum), None);
                        }
                        _ => {}
                    }
                }
                (compare_cost(size(self, 0), size(self, 1)), None)
            }
            Ov::Compare => (compare_cost(size(self, 0), size(self, 1)), None),
            Ov::AddString | Ov::AddList => {
                let s = size(self, 0).add(size(self, 1));
                let en = Entry::union(self.entry(&args[0]), self.entry(&args[1]));
                self.set_entry(e, en);
                let c = if ov == Ov::AddList {
                    unit
                } else {
                    s.factor(STRING_TRAVERSAL)
                };
                (c, Some(s))
            }
            Ov::IndexList | Ov::IndexMap => (unit, None),
            Ov::InList => (size(self, 1), None),
            Ov::Matches => {
                let s = recv_size(self).add(unit).factor(STRING_TRAVERSAL);
                (s.mul(size(self, 0).factor(REGEX_LENGTH)), None)
            }
            Ov::Contains => {
                let s = recv_size(self).factor(STRING_TRAVERSAL);
                (s.mul(size(self, 0).factor(STRING_TRAVERSAL)), None)
            }
            Ov::StartsEnds => (size(self, 0).factor(STRING_TRAVERSAL), None),
            Ov::StringToBytes => {
                let s = size(self, 0);
                (
                    s.factor(STRING_TRAVERSAL),
                    Some(Range {
                        min: s.min,
                        max: s.max.saturating_mul(4),
                    }),
                )
            }
            Ov::BytesToString => {
                let s = size(self, 0);
                (
                    s.factor(STRING_TRAVERSAL),
                    Some(Range {
                        min: s.min / 4,
                        max: s.max,
                    }),
                )
            }
            Ov::Quote => {
                let s = size(self, 0);
                (
                    s.factor(STRING_TRAVERSAL),
                    Some(Range {
                        min: s.min.saturating_add(2),
                        max: s.max.saturating_mul(2).saturating_add(2),
                    }),
                )
            }
            Ov::FormatString => (recv_size(self).factor(STRING_TRAVERSAL), None),
            Ov::ListFold => {
                let list = recv_size(self);
                let elem_kind = target.map(|t| self.ty_of(t).elem().kind());
                let mut el = unit;
                if matches!(elem_kind, Some(Kind::Str | Kind::Bytes)) {
                    let s = self.element_size(target);
                    el = el.add(s.factor(STRING_TRAVERSAL));
                }
                (list.mul(el), None)
            }
            Ov::Traverse { sized } => {
                let s = recv_size(self);
                (s.factor(STRING_TRAVERSAL), sized.then_some(s))
            }
            Ov::Parse { sized, factor } => {
                let s = size(self, 0);
                (s.factor(factor), sized.then_some(s))
            }
            Ov::Replace => {
                let (s, from, to) = (recv_size(self), size(self, 0), size(self, 1));
                (
                    s.factor(2.0 * STRING_TRAVERSAL),
                    Some(replace_size(s, from, to)),
                )
            }
            Ov::Split => {
                let s = recv_size(self);
                let max = match args.get(1).map(|a| &a.expr) {
                    Some(Expr::Literal(LiteralValue::Int(i))) => *i.inner() as u64,
                    _ => s.max,
                };
                (
                    s.factor(2.0 * STRING_TRAVERSAL),
                    Some(Range { min: 0, max }),
                )
            }
            Ov::Join => {
                let list = recv_size(self);
                let mut s = Range::fixed(0);
                if target.is_some_and(|t| self.ty_of(t).kind() == Kind::List) {
                    s = list.mul(self.element_size(target));
                }
                if !args.is_empty() {
                    let sep = size(self, 0);
                    let seps = Range {
                        min: list.min.saturating_sub(1),
                        max: list.max.saturating_sub(1),
                    };
                    s = s.add(sep.mul(seps));
                }
                (s.factor(STRING_TRAVERSAL), Some(s))
            }
            Ov::Find => {
                let s = recv_size(self);
                let str_cost = s.add(unit).factor(STRING_TRAVERSAL);
                let regex = size(self, 0).factor(REGEX_LENGTH);
                (str_cost.mul(regex), Some(Range { min: 0, max: s.max }))
            }
            Ov::ContainsIp { string } | Ov::ContainsCidr { string } => {
                let ip = Range { min: 4, max: 16 };
                let mut c = ip.add(ip).factor(STRING_TRAVERSAL);
                if matches!(ov, Ov::ContainsCidr { .. }) {
                    c = c.add(ip.factor(STRING_TRAVERSAL)).add(unit);
                }
                if string {
                    c = c.add(size(self, 0).factor(STRING_TRAVERSAL));
                }
                (c, None)
            }
            Ov::Validate => (
                size(self, 0)
                    .factor(STRING_TRAVERSAL)
                    .factor(NAMED_FORMAT_REGEX * REGEX_LENGTH),
                None,
            ),
            Ov::Sets(factor) => (
                size(self, 0).mul(size(self, 1)).factor(factor).add(unit),
                None,
            ),
            Ov::ListSlice => {
                let s = recv_size(self);
                let start = int_literal(args.first()).unwrap_or(0);
                let end = int_literal(args.get(1)).unwrap_or(s.max);
                allocating_list(1.0, Range::fixed(end.wrapping_sub(start)))
            }
            Ov::ListsRange => {
                let n = int_literal(args.first()).unwrap_or(u64::MAX);
                allocating_list(1.0, Range::fixed(n))
            }
            Ov::ListReverse => allocating_list(1.0, recv_size(self)),
            Ov::ListFlatten => {
                let depth = if args.is_empty() {
                    1
                } else {
                    int_literal(args.first()).unwrap_or(u64::MAX)
                };
                allocating_list(depth as f64, recv_size(self))
            }
            Ov::ListDistinct => {
                let s = recv_size(self);
                allocating_list(2.0, s.mul(s))
            }
            Ov::ListSort(factor) => {
                let s = recv_size(self);
                allocating_list(factor, s.mul(s))
            }
        };
        (cost.add(args_sum), result)
    }

    /// The size of a list's elements, by the path of the list (kube's `listElementNode`).
    fn element_size(&mut self, list: Option<&IdedExpr>) -> Range {
        let Some(list) = list else {
            return Range::UNKNOWN;
        };
        let mut path = self.path_of(list);
        if path.is_empty() {
            return Range::UNKNOWN;
        }
        path.push("@items".into());
        match (self.untyped, self.actual) {
            (Some(vars), _) => untyped_size(vars, &path),
            (None, Some(values)) => actual_size(self.root, self.resource, values, &path),
            (None, None) => declared_size(self.root, self.resource, &path),
        }
        .unwrap_or(Range::UNKNOWN)
    }
}

/// cel-go's cost of comparing two values of these sizes (equality, or ordering of strings).
fn compare_cost(a: Range, b: Range) -> Range {
    let smallest = a.max.min(b.max);
    Range {
        min: u64::from(smallest > 0),
        max: smallest,
    }
    .factor(STRING_TRAVERSAL)
}

/// A list-building call of cel-go's lists extension.
fn allocating_list(factor: f64, size: Range) -> (Range, Option<Range>) {
    let cost = size
        .factor(factor)
        .add(Range::fixed(1))
        .add(Range::fixed(LIST_CREATE));
    (cost, Some(size))
}

/// The size of `s.replace(from, to)` (Kubernetes' estimate).
fn replace_size(s: Range, from: Range, to: Range) -> Range {
    let mut count = Range::fixed(0);
    let mut kept = Range::fixed(0);
    if from.min == 0 {
        count.max = if s.max < u64::MAX { s.max + 1 } else { s.max };
        kept.max = s.max;
    } else if to.max <= from.min {
        count.max = 0;
        kept.max = s.max;
    } else {
        count.max = (s.max as f64 / from.min as f64).ceil() as u64;
    }
    if from.max == 0 {
        count.min = if s.min < u64::MAX { s.min + 1 } else { s.min };
        kept.min = s.min;
    } else if from.max <= to.min {
        count.min = 0;
        kept.min = s.min;
    } else {
        count.min = (s.min as f64 / from.max as f64).ceil() as u64;
    }
    count.mul(to).add(kept)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// The upper end of the estimated cost of `rule` on a node with this schema (not a
    /// resource root), as kube's `Compile` reports it in `MaxCost`.
    fn cost(schema: Value, rule: &str) -> Result<u64, String> {
        let n = Node::parse(&schema);
        let mut env = cel::Env::stdlib();
        crate::cel_macros::register_checked(&mut env);
        let program = env.compile(rule).map_err(|e| e.to_string())?;
        let mut c = Checker::new(&n, false, false);
        let (r, _) = c.check(program.expression());
        if !c.errors.is_empty() {
            return Err(format!("{:?}", c.errors));
        }
        Ok(r.max)
    }

    /// A schema of `t` (`int-or-string`, or a type with an optional `/format`), bounded by
    /// `max` where it applies (`maxItems`, `maxProperties` or `maxLength`).
    fn scalar(t: &str) -> Value {
        match t {
            "int-or-string" => json!({"x-kubernetes-int-or-string": true}),
            _ => match t.split_once('/') {
                Some((t, f)) => json!({"type": t, "format": f}),
                None => json!({"type": t}),
            },
        }
    }

    fn bound(mut s: Value, key: &str, max: Option<i64>) -> Value {
        if let Some(m) = max {
            s[key] = json!(m);
        }
        s
    }

    fn list(item: Value, max: Option<i64>) -> Value {
        bound(json!({"type": "array", "items": item}), "maxItems", max)
    }

    fn map(value: Value, max: Option<i64>) -> Value {
        bound(
            json!({"type": "object", "additionalProperties": value}),
            "maxProperties",
            max,
        )
    }

    fn string(max: Option<i64>) -> Value {
        bound(json!({"type": "string"}), "maxLength", max)
    }

    fn object_with_required() -> Value {
        json!({"type": "object", "required": ["required"], "properties": {
            "required": {"type": "string"}, "optional": {"type": "string"}}})
    }

    /// kube's estimates for rules of many shapes: each schema unbounded, then bounded. The
    /// figures are what kube-apiserver 1.35's `Compile` reports as `MaxCost` for the same schema
    /// and rule (read from its estimator and its tests).
    #[test]
    fn estimates_match_kubes() {
        type Gen = fn(Option<i64>) -> Value;
        let cases: Vec<(&str, Gen, &str, u64, i64, u64)> = vec![
            (
                "numbers",
                |m| list(scalar("number"), m),
                "self.all(x, true)",
                4718591,
                10,
                32,
            ),
            (
                "strings",
                |m| list(scalar("string"), m),
                "self.all(x, true)",
                3145727,
                20,
                62,
            ),
            (
                "booleans",
                |m| list(scalar("boolean"), m),
                "self.all(x, true)",
                1887437,
                5,
                17,
            ),
            (
                "lists of lists",
                |m| list(list(scalar("number"), None), m),
                "self.all(x, true)",
                3145727,
                100,
                302,
            ),
            (
                "objects",
                |m| list(object_with_required(), m),
                "self.all(x, true)",
                555128,
                50,
                152,
            ),
            (
                "number map",
                |m| map(scalar("number"), m),
                "self.all(x, true)",
                1348169,
                10,
                32,
            ),
            // A presence test is free; reading `self` costs one.
            (
                "number map has",
                |m| map(scalar("number"), m),
                "has(self.x)",
                1,
                100,
                1,
            ),
            (
                "string map",
                |m| map(scalar("string"), m),
                "self.all(x, true)",
                1179647,
                3,
                11,
            ),
            (
                "boolean map",
                |m| map(scalar("boolean"), m),
                "self.all(x, true)",
                943718,
                100,
                302,
            ),
            ("contains", string, "self.contains('test')", 314574, 10, 5),
            ("startsWith", string, "self.startsWith('test')", 2, 15, 2),
            ("endsWith", string, "self.endsWith('test')", 2, 30, 2),
            (
                "concatenation",
                string,
                r#"size(self + "hello") > size("hello")"#,
                314578,
                4,
                7,
            ),
            (
                "index of numbers",
                |m| list(scalar("number"), m),
                "self[1] == 0.0",
                2,
                5000,
                2,
            ),
            (
                "index of strings",
                |m| list(scalar("string"), m),
                "self[1] == self[1]",
                314577,
                8,
                314577,
            ),
            ("regex", string, r#"self.matches("x")"#, 314574, 50, 22),
            (
                "regex on a literal",
                string,
                r#""".matches("(((((((((())))))))))[0-9]")"#,
                7,
                10,
                7,
            ),
            ("empty regex", string, r#"self.matches("")"#, 1, 100, 1),
            (
                "map values",
                |m| map(string(m), m),
                "self.all(x, x.contains(self[x]))",
                2752507,
                10,
                72,
            ),
            (
                "empty list",
                |m| list(scalar("number"), m),
                "self[3] == 0.0",
                2,
                0,
                2,
            ),
            (
                "empty map",
                |m| map(scalar("number"), m),
                r#"self["x"] == 0.0"#,
                2,
                0,
                2,
            ),
            ("empty string", string, r#"self == "x""#, 2, 0, 1),
            (
                "empty bytes",
                |m| bound(scalar("string/byte"), "maxLength", m),
                r#"self == b"x""#,
                2,
                0,
                1,
            ),
            (
                "a bound above the estimate",
                |m| list(scalar("number"), m),
                "self.all(x, x == 0.0)",
                6291454,
                3 * 1024 * 2048,
                25165826,
            ),
            (
                "nested maps",
                |m| list(map(bound(object_with_required(), "maxProperties", m), m), m),
                r#"self.all(x, x["y"].required == "z")"#,
                7340027,
                10,
                72,
            ),
            (
                "int-or-strings",
                |m| list(scalar("int-or-string"), m),
                "self.all(x, true)",
                4718591,
                10,
                32,
            ),
            (
                "index of int-or-strings",
                |m| list(scalar("int-or-string"), m),
                "self[0] == 5",
                3,
                10,
                3,
            ),
            (
                "index of booleans",
                |m| list(scalar("boolean"), m),
                "self[0] == false",
                2,
                25,
                2,
            ),
            (
                "index of objects",
                |m| list(object_with_required(), m),
                "self[0] == null",
                2,
                422,
                2,
            ),
            (
                "index of lists",
                |m| list(list(scalar("number"), None), m),
                "self[0][0] == -1.0",
                3,
                51,
                3,
            ),
            (
                "number maps",
                |m| list(map(scalar("number"), None), m),
                "self.all(x, x.y == 25.2)",
                6291452,
                12,
                74,
            ),
            (
                "index of number maps",
                |m| list(map(scalar("number"), None), m),
                "self[0].x > 2.0",
                4,
                3000,
                4,
            ),
            (
                "durations",
                |m| list(scalar("string/duration"), m),
                "self.all(x, true)",
                2359295,
                5,
                17,
            ),
            (
                "index of durations",
                |m| list(scalar("string/duration"), m),
                "self[0].getHours() == 2",
                4,
                525,
                4,
            ),
            (
                "dates",
                |m| list(scalar("string/date"), m),
                "self.all(x, true)",
                725936,
                15,
                47,
            ),
            (
                "index of dates",
                |m| list(scalar("string/date"), m),
                "self[2].getDayOfMonth() == 13",
                4,
                42,
                4,
            ),
            (
                "date-times",
                |m| list(scalar("string/date-time"), m),
                "self.all(x, true)",
                428963,
                25,
                77,
            ),
            (
                "int-or-string map",
                |m| map(scalar("int-or-string"), m),
                "self.all(x, true)",
                1348169,
                15,
                47,
            ),
            (
                "object map",
                |m| map(object_with_required(), m),
                "self.all(x, true)",
                428963,
                20,
                62,
            ),
            (
                "map of maps",
                |m| map(map(scalar("number"), None), m),
                "self.all(x, true)",
                1179647,
                10,
                32,
            ),
            (
                "map of lists",
                |m| map(list(scalar("number"), None), m),
                "self.all(x, true)",
                1179647,
                25,
                77,
            ),
            (
                "duration map",
                |m| map(scalar("string/duration"), m),
                "self.all(x, true)",
                1048577,
                5,
                17,
            ),
            (
                "date map",
                |m| map(scalar("string/date"), m),
                "self.all(x, true)",
                524288,
                10,
                32,
            ),
            (
                "date-time map",
                |m| map(scalar("string/date-time"), m),
                "self.all(x, true)",
                349526,
                25,
                77,
            ),
            ("find", string, "self.find('[0-9]+') == ''", 629147, 10, 11),
            (
                "join",
                |m| list(string(m), m),
                "self.join(' ') == 'aa bb'",
                329853068905,
                10,
                43,
            ),
            (
                "isSorted",
                |m| list(string(m), m),
                "self.isSorted() == true",
                329854432052,
                10,
                52,
            ),
            (
                "replace",
                |m| json!({"type": "object", "properties": {"str": string(m), "before": string(Some(2)), "after": string(Some(4))}}),
                "self.str.replace(self.before, self.after) == 'does not matter'",
                629154,
                4,
                12,
            ),
            (
                "split",
                |m| json!({"type": "object", "properties": {"str": string(m), "separator": string(m)}}),
                "self.str.split(self.separator) == []",
                629160,
                10,
                22,
            ),
            (
                "lowerAscii",
                string,
                "self.lowerAscii() == 'lower!'",
                314575,
                10,
                6,
            ),
            (
                "size",
                |m| map(scalar("integer"), m),
                "oldSelf.size() == self.size()",
                5,
                10,
                5,
            ),
            (
                "timestamps",
                |m| map(scalar("string/date-time"), m),
                r#"self["a"] == self["b"]"#,
                8,
                7,
                8,
            ),
            (
                "durations compared",
                |m| map(scalar("string/duration"), m),
                r#"self["c"] == self["d"]"#,
                8,
                42,
                8,
            ),
            (
                "enum",
                |m| {
                    bound(
                        json!({"type": "string", "enum": ["A", "B", "C", "LongValue"]}),
                        "maxLength",
                        m,
                    )
                },
                "self.contains('A')",
                2,
                1000,
                401,
            ),
            (
                "quantity",
                |m| bound(scalar("int-or-string"), "maxLength", m),
                "isQuantity(self)",
                314574,
                20,
                9,
            ),
        ];
        let mut wrong = Vec::new();
        for (name, gen, rule, unbounded, max, bounded) in cases {
            for (schema, want) in [(gen(None), unbounded), (gen(Some(max)), bounded)] {
                match cost(schema, rule) {
                    Ok(got) if got == want => {}
                    other => wrong.push(format!("{name}: {rule}: want {want}, got {other:?}")),
                }
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn nested_loops_exceed_the_limit_unless_bounded() {
        let numbers = |m| list(scalar("number"), m);
        let two = "self.all(x, self.all(y, true))";
        let three = "self.all(x, self.all(y, self.all(z, true)))";
        assert!(cost(numbers(None), two).unwrap() > 10_000_000);
        assert!(cost(numbers(None), three).unwrap() > 10_000_000);
        assert_eq!(cost(numbers(Some(10)), two).unwrap(), 352);
        assert_eq!(cost(numbers(Some(10)), three).unwrap(), 3552);
    }
}
