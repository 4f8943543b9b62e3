//! `x-kubernetes-validations`: CEL rules on custom resources, compiled once per CRD version
//! with the `cel` crate (cel-rust) and evaluated on create and update.
//!
//! * **Variables**: `self` is the value at the node the rule is on; `oldSelf` the old value at
//!   the same place on update (transition rules only run when one exists: through object
//!   properties, maps, and `x-kubernetes-list-type: map` items matched by key).
//!   `optionalOldSelf: true` binds `oldSelf` as an optional instead.
//! * **Types** follow the schema: `integer` is int, `number` double, `date-time` strings are
//!   timestamps, `duration` strings durations, `byte` strings bytes; objects with properties
//!   are maps keyed by the escaped property names (`x-y` is `x__dash__y`, `namespace` is
//!   `__namespace__`); at a resource root `apiVersion`, `kind` and `metadata.name` /
//!   `metadata.generateName` are visible.
//! * **Functions**: the CEL standard library (`size`, `contains`, `startsWith`, `endsWith`,
//!   `matches`, conversions, timestamps and durations, `has`, `all`, `exists`, `exists_one`,
//!   `map`, `filter`), cel-rust's strings, lists and math extensions, and Kubernetes' list
//!   library (`isSorted`, `sum`, `min`, `max`, `indexOf`, `lastIndexOf`) and regex library
//!   (`find`, `findAll`).
//! * **Compile-time checks**, as cel-go's checker would make them: unknown identifiers,
//!   functions and (for declared objects) fields are errors.
//! * **Cost**: each rule's worst-case cost is estimated statically from the schema (maxItems,
//!   maxProperties, maxLength, or what a 3 MiB request could hold when unset), multiplied by how
//!   many times the rule can run (the sizes of the lists and maps above it) and checked against
//!   kube-apiserver's limits (10M per rule, 100M per CRD); a CRD over them is refused with kube's
//!   messages. At run time a wall-clock budget per object stops further rules once spent.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use cel::common::ast::{Expr, IdedExpr, LiteralValue};
use cel::common::types::{
    CelBool, CelBytes, CelDouble, CelDuration, CelInt, CelList, CelMap, CelMapKey, CelNull,
    CelOptional, CelString, CelTimestamp, CelUInt, LIST_TYPE, STRING_TYPE,
};
use cel::common::value::{CowVal, Val};
use cel::{Context, Env, ExecutionError, Program};
use kubox_apimachinery::validation::{go_quote, FieldError, FieldErrorKind};
use serde_json::Value;

use crate::formats;
use crate::schema_node::{go_value, Additional, JsonType, ListType, Node};

/// kube-apiserver's `StaticEstimatedCostLimit`: the most one rule may cost, times the number of
/// times it can be evaluated.
pub(crate) const PER_RULE_COST_LIMIT: f64 = 10_000_000.0;
/// kube-apiserver's `StaticEstimatedCRDCostLimit`: the most all rules of a schema may cost.
pub(crate) const CRD_COST_LIMIT: f64 = 100_000_000.0;
/// kube-apiserver's request size limit, which bounds unbounded lists, maps and strings.
const MAX_REQUEST_BYTES: f64 = 3.0 * 1024.0 * 1024.0;
/// Wall-clock CEL budget for the rules of one object.
const RUNTIME_BUDGET: Duration = Duration::from_secs(1);
/// Largest rule, in AST nodes.
const MAX_AST_NODES: usize = 10_000;
/// cel-go's bound on an expression's length, in code points.
const MAX_EXPRESSION_CODE_POINTS: usize = 100_000;
/// The deepest expression tree accepted (cel-go's parser recursion limit).
const MAX_AST_DEPTH: usize = 250;
/// Expression trees deeper than this are evaluated on a thread with a large stack: the
/// interpreter recurses once per level, and a debug build's frames can fill a 2 MiB stack
/// (a tokio worker's) within a hundred levels.
const INLINE_EVAL_DEPTH: usize = 24;
/// The stack reserved for parsing and for deep evaluations (virtual memory; what is touched
/// is what counts).
const BIG_STACK: usize = 256 << 20;

/// Runs `f` on a thread of its own with a [`BIG_STACK`], waiting for it.
fn on_big_stack<T: Send>(f: impl FnOnce() -> T + Send) -> Result<T, String> {
    std::thread::scope(|s| {
        let handle = std::thread::Builder::new()
            .name("kubox-cel".into())
            .stack_size(BIG_STACK)
            .spawn_scoped(s, f)
            .map_err(|e| format!("cannot start a thread to compile the expression: {e}"))?;
        handle
            .join()
            .map_err(|_| "the expression could not be parsed".to_string())
    })
}

/// An upper bound, from the text alone, of how deep `source`'s tree goes: how deeply `(`, `[`
/// and `{` nest, or how many operators one chain strings together at one level (`1 + 1 + …`
/// and `a.b.c…` nest one level per operator; `&&`, `||`, `,`, `?` and `:` end a chain).
/// String literals are skipped.
fn nesting_estimate(source: &str) -> usize {
    let b = source.as_bytes();
    let (mut i, mut deepest) = (0, 0);
    // One operator count per open bracket, the outermost first.
    let mut chains = vec![0usize];
    let reset = |chains: &mut Vec<usize>| {
        if let Some(n) = chains.last_mut() {
            *n = 0;
        }
    };
    let count = |chains: &mut Vec<usize>| {
        if let Some(n) = chains.last_mut() {
            *n += 1;
        }
    };
    while let Some(&c) = b.get(i) {
        let next = b.get(i + 1).copied();
        match c {
            b'\'' | b'"' => {
                i = skip_string(b, i);
                continue;
            }
            b'(' | b'[' | b'{' => chains.push(0),
            b')' | b']' | b'}' if chains.len() > 1 => {
                chains.pop();
            }
            b',' | b'?' | b':' => reset(&mut chains),
            b'&' | b'|' if next == Some(c) => {
                reset(&mut chains);
                i += 1;
            }
            b'+' | b'-' | b'*' | b'/' | b'%' | b'<' | b'>' => count(&mut chains),
            b'=' | b'!' if next == Some(b'=') => {
                count(&mut chains);
                i += 1;
            }
            b'.' => {
                let in_number =
                    i > 0 && b[i - 1].is_ascii_digit() && next.is_some_and(|d| d.is_ascii_digit());
                if !in_number {
                    count(&mut chains);
                }
            }
            _ => {}
        }
        deepest = deepest
            .max(chains.len() - 1)
            .max(chains.last().copied().unwrap_or(0));
        i += 1;
    }
    deepest
}

/// The index after the string literal that starts at `b[start]` (`'…'`, `"…"`, their tripled
/// forms, raw when an `r` precedes).
fn skip_string(b: &[u8], start: usize) -> usize {
    let q = b[start];
    let tripled = |i: usize| b.get(i..i + 3).is_some_and(|t| t.iter().all(|&x| x == q));
    let triple = tripled(start);
    let raw = start > 0 && matches!(b[start - 1], b'r' | b'R');
    let mut i = start + if triple { 3 } else { 1 };
    while let Some(&c) = b.get(i) {
        if c == b'\\' && !raw {
            i += 2;
        } else if c == q && !triple {
            return i + 1;
        } else if c == q && tripled(i) {
            return i + 3;
        } else {
            i += 1;
        }
    }
    i
}

/// The depth of an expression tree, counted without recursion.
fn ast_depth(root: &IdedExpr) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(root, 1usize)];
    while let Some((e, d)) = stack.pop() {
        deepest = deepest.max(d);
        stack.extend(children(e).into_iter().map(|c| (c, d + 1)));
    }
    deepest
}

/// The direct subexpressions of `e`.
fn children(e: &IdedExpr) -> Vec<&IdedExpr> {
    use cel::common::ast::EntryExpr;
    match &e.expr {
        Expr::Call(c) => c.target.as_deref().into_iter().chain(&c.args).collect(),
        Expr::Comprehension(c) => vec![
            &c.iter_range,
            &c.accu_init,
            &c.loop_cond,
            &c.loop_step,
            &c.result,
        ],
        Expr::List(l) => l.elements.iter().collect(),
        Expr::Map(cel::common::ast::MapExpr { entries })
        | Expr::Struct(cel::common::ast::StructExpr { entries, .. }) => entries
            .iter()
            .flat_map(|entry| match &entry.expr {
                EntryExpr::MapEntry(me) => vec![&me.key, &me.value],
                EntryExpr::StructField(f) => vec![&f.value],
            })
            .collect(),
        Expr::Select(sel) => vec![&sel.operand],
        Expr::Unspecified | Expr::Ident(_) | Expr::Literal(_) => Vec::new(),
    }
}

/// Parses `source` as kube-apiserver bounds it (size, then depth). Ok carries the tree's
/// depth. Call it on a large stack ([`on_big_stack`]): the parser recurses once per level of
/// nesting, and so does dropping a tree refused for its depth.
fn parse_bounded(source: &str) -> Result<(Program, usize), String> {
    let size = source.chars().count();
    if size > MAX_EXPRESSION_CODE_POINTS {
        return Err(format!(
            "expression code point size exceeds limit: size: {size}, limit {MAX_EXPRESSION_CODE_POINTS}"
        ));
    }
    // Refuse absurd nesting before the parser sees it: it takes time quadratic in the depth.
    // (The estimate may count a chain of mixed operators twice: twice the limit is certain.)
    if nesting_estimate(source) > 2 * MAX_AST_DEPTH {
        return Err(format!(
            "expression recursion limit exceeded: {MAX_AST_DEPTH}"
        ));
    }
    let program = env().compile(source).map_err(|e| e.to_string())?;
    let depth = ast_depth(program.expression());
    if depth > MAX_AST_DEPTH {
        return Err(format!(
            "expression recursion limit exceeded: {MAX_AST_DEPTH}"
        ));
    }
    Ok((program, depth))
}

/// Runs a program, on a large stack when its tree is deep.
fn execute(
    program: &Program,
    depth: usize,
    ctx: &Context<'_, '_>,
) -> Result<cel::Value, ExecutionError> {
    if depth <= INLINE_EVAL_DEPTH {
        return program.execute(ctx);
    }
    on_big_stack(|| program.execute(ctx))
        .unwrap_or_else(|e| Err(ExecutionError::function_error("cel", e)))
}
/// kube's `MaxEvaluatedMessageExpressionSizeBytes`.
const MAX_MESSAGE_BYTES: usize = 5 * 1024;

/// `reason` of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    Invalid,
    Forbidden,
    Required,
    Duplicate,
}

/// What part of `self` (and `oldSelf`) rules read: the fields reached by `self.a.b` chains
/// (and by `x.a.b` where `x` iterates over a list of `self`), or all of it. Only that is
/// converted to CEL values when the rules run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Need {
    /// These fields (CEL names, or map keys), each with what is read of it; of a list,
    /// [`LIST_ELEMENTS`] holds what is read of each element. A field whose need is empty
    /// `Fields` is only tested for presence (`has()`).
    Fields(std::collections::BTreeMap<String, Need>),
    /// The whole value.
    All,
}

impl Default for Need {
    fn default() -> Self {
        Need::Fields(Default::default())
    }
}

/// The [`Need`] key of a list's elements; no CEL field name or escaped property name has
/// brackets.
const LIST_ELEMENTS: &str = "[]";

impl Need {
    /// Only the presence of `path` is read: its parents become `Fields`, nothing becomes `All`.
    fn mark_present(&mut self, path: &[&str]) {
        match (self, path.split_first()) {
            (Need::All, _) | (_, None) => {}
            (Need::Fields(m), Some((first, rest))) => {
                m.entry(first.to_string()).or_default().mark_present(rest);
            }
        }
    }

    fn mark(&mut self, path: &[&str]) {
        match (self, path.split_first()) {
            (Need::All, _) => {}
            (me, None) => *me = Need::All,
            (Need::Fields(m), Some((first, rest))) => {
                m.entry(first.to_string()).or_default().mark(rest);
            }
        }
    }

    pub(crate) fn merge(&mut self, other: &Need) {
        match (self, other) {
            (Need::All, _) => {}
            (me, Need::All) => *me = Need::All,
            (Need::Fields(a), Need::Fields(b)) => {
                for (k, v) in b {
                    a.entry(k.clone()).or_default().merge(v);
                }
            }
        }
    }
}

/// A compiled rule.
#[derive(Debug)]
pub(crate) struct Rule {
    pub rule: String,
    pub message: String,
    pub message_expression: Option<(Program, usize)>,
    pub reason: Option<Reason>,
    /// The normalized `fieldPath` (`foo.bar`, `foo[key]`), appended to the node's path.
    pub field_path: Option<String>,
    pub program: Program,
    /// The depth of `program`'s tree.
    pub depth: usize,
    pub uses_old_self: bool,
    pub optional_old_self: bool,
}

impl Rule {
    /// kube's `ruleErrorString`.
    fn error_string(&self) -> &str {
        let m = self.message.trim();
        if m.is_empty() {
            self.rule.trim()
        } else {
            m
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Environment
// ---------------------------------------------------------------------------------------------

fn env() -> &'static Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Env::stdlib();
        // Registration only fails on duplicate declarations, which these libraries do not make.
        let _ = env.add_extension(cel::extensions::strings);
        let _ = env.add_extension(cel::extensions::lists);
        let _ = env.add_extension(cel::extensions::math);
        let list_fns: [(&str, cel::common::functions::Function); 4] = [
            ("isSorted", k8s_is_sorted),
            ("sum", k8s_sum),
            ("min", k8s_min),
            ("max", k8s_max),
        ];
        for (name, f) in list_fns {
            let _ = env.add_member_overload(name, &format!("list.{name}()"), LIST_TYPE, vec![], f);
        }
        for (name, f) in [
            ("indexOf", k8s_index_of as cel::common::functions::Function),
            ("lastIndexOf", k8s_last_index_of),
        ] {
            let _ = env.add_member_overload(
                name,
                &format!("list.{name}(dyn)"),
                LIST_TYPE,
                vec![cel::common::types::DYN_TYPE],
                f,
            );
        }
        let _ = env.add_overload(
            "matches",
            "matches(string,string)",
            vec![STRING_TYPE, STRING_TYPE],
            k8s_matches,
        );
        let _ = env.add_member_overload(
            "matches",
            "string.matches(string)",
            STRING_TYPE,
            vec![STRING_TYPE],
            k8s_matches,
        );
        let _ = env.add_member_overload(
            "find",
            "string.find(string)",
            STRING_TYPE,
            vec![STRING_TYPE],
            k8s_find,
        );
        let _ = env.add_member_overload(
            "findAll",
            "string.findAll(string)",
            STRING_TYPE,
            vec![STRING_TYPE],
            k8s_find_all,
        );
        let _ = env.add_member_overload(
            "findAll",
            "string.findAll(string,int)",
            STRING_TYPE,
            vec![STRING_TYPE, cel::common::types::INT_TYPE],
            k8s_find_all_n,
        );
        crate::cel_lib::register(&mut env);
        Arc::new(env)
    })
}

type CelResult<'b, 'v> = Result<CowVal<'b, 'v>, ExecutionError>;

fn values(args: &[CowVal<'_, '_>]) -> Result<Vec<cel::Value>, ExecutionError> {
    args.iter()
        .map(|a| cel::Value::try_from(a.as_ref()))
        .collect()
}

fn owned<'b, 'v>(v: cel::Value) -> CelResult<'b, 'v> {
    let b: Box<dyn Val> = v.try_into()?;
    Ok(CowVal::Owned(b))
}

fn list_arg(v: &cel::Value) -> Result<&[cel::Value], ExecutionError> {
    match v {
        cel::Value::List(l) => Ok(l.as_slice()),
        other => Err(ExecutionError::function_error(
            "list",
            format!("expected a list, got {}", other.type_of()),
        )),
    }
}

fn k8s_is_sorted<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    let v = values(&args)?;
    let l = list_arg(&v[0])?;
    let sorted = l
        .windows(2)
        .all(|w| w[0].partial_cmp(&w[1]) != Some(std::cmp::Ordering::Greater));
    owned(cel::Value::Bool(sorted))
}

fn k8s_sum<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    let v = values(&args)?;
    let l = list_arg(&v[0])?;
    let mut int: i64 = 0;
    let mut float: f64 = 0.0;
    let mut is_float = false;
    for x in l {
        match x {
            cel::Value::Int(i) => {
                int = int
                    .checked_add(*i)
                    .ok_or_else(|| ExecutionError::function_error("sum", "integer overflow"))?;
            }
            cel::Value::UInt(u) => int = int.saturating_add(*u as i64),
            cel::Value::Float(f) => {
                is_float = true;
                float += f;
            }
            other => {
                return Err(ExecutionError::function_error(
                    "sum",
                    format!("cannot sum {}", other.type_of()),
                ))
            }
        }
    }
    owned(if is_float {
        cel::Value::Float(float + int as f64)
    } else {
        cel::Value::Int(int)
    })
}

fn extreme<'b, 'v>(
    args: Vec<CowVal<'b, 'v>>,
    want: std::cmp::Ordering,
    name: &str,
) -> CelResult<'b, 'v> {
    let v = values(&args)?;
    let l = list_arg(&v[0])?;
    let mut best: Option<&cel::Value> = None;
    for x in l {
        best = match best {
            Some(b) if x.partial_cmp(b) != Some(want) => Some(b),
            _ => Some(x),
        };
    }
    match best {
        Some(b) => owned(b.clone()),
        None => Err(ExecutionError::function_error(
            name,
            "cannot be called on an empty list",
        )),
    }
}

fn k8s_min<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    extreme(args, std::cmp::Ordering::Less, "min")
}

fn k8s_max<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    extreme(args, std::cmp::Ordering::Greater, "max")
}

fn k8s_index_of<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    let v = values(&args)?;
    let l = list_arg(&v[0])?;
    let i = l.iter().position(|x| *x == v[1]).map_or(-1, |i| i as i64);
    owned(cel::Value::Int(i))
}

fn k8s_last_index_of<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    let v = values(&args)?;
    let l = list_arg(&v[0])?;
    let i = l.iter().rposition(|x| *x == v[1]).map_or(-1, |i| i as i64);
    owned(cel::Value::Int(i))
}

/// Compiled regular expressions by pattern: rules use a few literal patterns, compiled once.
fn regex(pattern: &str, name: &str) -> Result<Arc<regex::Regex>, ExecutionError> {
    type Cache = std::sync::Mutex<HashMap<String, Arc<regex::Regex>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(re) = cache.lock().ok().and_then(|c| c.get(pattern).cloned()) {
        return Ok(re);
    }
    let re =
        Arc::new(regex::Regex::new(pattern).map_err(|e| ExecutionError::function_error(name, e))?);
    if let Ok(mut c) = cache.lock() {
        if c.len() >= 4096 {
            c.clear();
        }
        c.insert(pattern.to_string(), re.clone());
    }
    Ok(re)
}

fn regex_args(
    args: &[CowVal<'_, '_>],
    name: &str,
) -> Result<(String, Arc<regex::Regex>), ExecutionError> {
    let v = values(args)?;
    match (&v[0], &v[1]) {
        (cel::Value::String(s), cel::Value::String(p)) => Ok((s.to_string(), regex(p, name)?)),
        _ => Err(ExecutionError::function_error(name, "expected strings")),
    }
}

fn k8s_matches<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    let (s, p) = match (args.first(), args.get(1)) {
        (Some(s), Some(p)) => (s, p),
        _ => return Err(ExecutionError::invalid_argument_count(2, args.len())),
    };
    let text = |v: &CowVal<'_, '_>| -> Result<String, ExecutionError> {
        let s: Result<&str, _> = v.as_ref().try_into();
        s.map(str::to_string)
            .map_err(|_| ExecutionError::function_error("matches", "expected string arguments"))
    };
    let (s, p) = (text(s)?, text(p)?);
    owned(cel::Value::Bool(regex(&p, "matches")?.is_match(&s)))
}

fn k8s_find<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    let (s, re) = regex_args(&args, "find")?;
    let found = re
        .find(&s)
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    owned(cel::Value::String(Arc::new(found)))
}

fn find_all(args: &[CowVal<'_, '_>], limit: i64) -> Result<cel::Value, ExecutionError> {
    let (s, re) = regex_args(args, "findAll")?;
    let take = if limit < 0 {
        usize::MAX
    } else {
        limit as usize
    };
    let found: Vec<cel::Value> = re
        .find_iter(&s)
        .take(take)
        .map(|m| cel::Value::String(Arc::new(m.as_str().to_string())))
        .collect();
    Ok(cel::Value::List(Arc::new(found)))
}

fn k8s_find_all<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    owned(find_all(&args, -1)?)
}

fn k8s_find_all_n<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    let n = match cel::Value::try_from(args[2].as_ref())? {
        cel::Value::Int(n) => n,
        _ => -1,
    };
    owned(find_all(&args[..2], n)?)
}

// ---------------------------------------------------------------------------------------------
// Property name escaping (k8s.io/apiserver/pkg/cel/escaping.go)
// ---------------------------------------------------------------------------------------------

const RESERVED: &[&str] = &[
    "true",
    "false",
    "null",
    "in",
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
];

/// The CEL name of a property, or None when it cannot be accessed as a field.
pub(crate) fn escape(ident: &str) -> Option<String> {
    if ident.is_empty() || ident.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    if RESERVED.contains(&ident) {
        return Some(format!("__{ident}__"));
    }
    let mut out = String::with_capacity(ident.len());
    let mut chars = ident.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '_' if chars.peek() == Some(&'_') => {
                chars.next();
                out.push_str("__underscores__");
            }
            '.' => out.push_str("__dot__"),
            '-' => out.push_str("__dash__"),
            '/' => out.push_str("__slash__"),
            c if c.is_ascii_alphanumeric() || c == '_' => out.push(c),
            _ => return None,
        }
    }
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// Expressions outside schemas (admission policies, match conditions)
// ---------------------------------------------------------------------------------------------

/// A CEL expression over untyped JSON variables (`object`, `oldObject`, `request`, `params`…),
/// compiled once with the same environment and libraries as CRD rules. Used by
/// ValidatingAdmissionPolicy validations and webhook `matchConditions`.
pub struct Expression {
    source: String,
    program: Program,
    depth: usize,
    /// The variables the expression refers to: only those are converted when it runs.
    variables: Vec<String>,
}

impl std::fmt::Debug for Expression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Expression").field(&self.source).finish()
    }
}

impl Expression {
    /// Compile `source` once per process: later calls with the same source share the program
    /// (admission policies and match conditions are read per request, their expressions rarely
    /// change). The cache is bounded; when full it starts again.
    pub fn cached(source: &str) -> Result<std::sync::Arc<Expression>, String> {
        use std::collections::HashMap;
        use std::sync::{Arc, Mutex, OnceLock};
        const MAX: usize = 4096;
        static CACHE: OnceLock<Mutex<HashMap<String, Arc<Expression>>>> = OnceLock::new();
        let cache = CACHE.get_or_init(Default::default);
        if let Some(e) = cache.lock().ok().and_then(|c| c.get(source).cloned()) {
            return Ok(e);
        }
        let e = Arc::new(Expression::compile(source)?);
        if let Ok(mut c) = cache.lock() {
            if c.len() >= MAX {
                c.clear();
            }
            c.insert(source.to_string(), e.clone());
        }
        Ok(e)
    }

    /// Compile `source`; Err carries the compiler's message.
    pub fn compile(source: &str) -> Result<Expression, String> {
        let (program, depth) = on_big_stack(|| parse_bounded(source))??;
        let variables = program
            .references()
            .variables()
            .into_iter()
            .map(str::to_string)
            .collect();
        Ok(Expression {
            source: source.to_string(),
            program,
            depth,
            variables,
        })
    }

    /// Does the expression refer to variable `name`?
    pub fn uses(&self, name: &str) -> bool {
        self.variables.iter().any(|v| v == name)
    }

    /// The source text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluate with these variables bound (JSON mapped naturally: objects are maps, numbers
    /// ints when integral). The result comes back as JSON; Err carries the evaluation error.
    pub fn eval(&self, vars: &[(&str, &Value)]) -> Result<Value, String> {
        let mut ctx = Context::with_env(env().clone());
        for (name, v) in vars
            .iter()
            .filter(|(name, _)| self.variables.iter().any(|r| r == name))
        {
            ctx.add_variable_as_val(*name, to_val(v, None, false));
        }
        match execute(&self.program, self.depth, &ctx) {
            Ok(v) => Ok(cel_to_json(&v)),
            Err(ExecutionError::NoSuchOverload(_)) => Err("no such overload".to_string()),
            Err(e) => Err(eval_error_text(&e)),
        }
    }
}

fn cel_to_json(v: &cel::Value) -> Value {
    match v {
        cel::Value::Bool(b) => Value::Bool(*b),
        cel::Value::Int(i) => Value::from(*i),
        cel::Value::UInt(u) => Value::from(*u),
        cel::Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        cel::Value::String(s) => Value::String(s.to_string()),
        cel::Value::Null => Value::Null,
        cel::Value::List(l) => Value::Array(l.iter().map(cel_to_json).collect()),
        cel::Value::Map(m) => Value::Object(
            m.map
                .iter()
                .map(|(k, v)| {
                    let k = match k {
                        cel::objects::Key::String(s) => s.to_string(),
                        cel::objects::Key::Int(i) => i.to_string(),
                        cel::objects::Key::Uint(u) => u.to_string(),
                        cel::objects::Key::Bool(b) => b.to_string(),
                    };
                    (k, cel_to_json(v))
                })
                .collect(),
        ),
        other => Value::String(cel_text(other)),
    }
}

// ---------------------------------------------------------------------------------------------
// JSON → CEL values
// ---------------------------------------------------------------------------------------------

fn key<'v>(s: std::borrow::Cow<'v, str>) -> CelMapKey<'v> {
    CelMapKey::String(CelString::from(s))
}

/// The CEL value of `v`, typed by its schema node (None: untyped, natural JSON mapping).
/// `resource` marks a resource root (the custom resource, or an embedded resource).
pub(crate) fn to_val<'v>(v: &'v Value, n: Option<&Node>, resource: bool) -> Box<dyn Val + 'v> {
    match v {
        Value::Null => Box::new(CelNull),
        Value::Bool(b) => Box::new(CelBool::from(*b)),
        Value::Number(num) => {
            let ty = n.and_then(|n| n.ty);
            if ty == Some(JsonType::Number) {
                return Box::new(CelDouble::from(num.as_f64().unwrap_or_default()));
            }
            if let Some(i) = num.as_i64() {
                return Box::new(CelInt::from(i));
            }
            if let Some(u) = num.as_u64() {
                return Box::new(CelUInt::from(u));
            }
            let f = num.as_f64().unwrap_or_default();
            if ty == Some(JsonType::Integer) && f.fract() == 0.0 && f.abs() < 9.2e18 {
                return Box::new(CelInt::from(f as i64));
            }
            Box::new(CelDouble::from(f))
        }
        Value::String(s) => {
            if let Some(n) = n.filter(|n| n.ty == Some(JsonType::String)) {
                match n.format.as_str() {
                    "date-time" | "datetime" => {
                        if let Some(t) = formats::parse_date_time(s) {
                            return Box::new(CelTimestamp::from(t));
                        }
                    }
                    "duration" => {
                        if let Some(d) = formats::go_duration(s) {
                            return Box::new(CelDuration::from(d));
                        }
                    }
                    "byte" => {
                        use base64::Engine as _;
                        if let Ok(b) = base64::engine::general_purpose::STANDARD.decode(s) {
                            return Box::new(CelBytes::from(b));
                        }
                    }
                    _ => {}
                }
            }
            Box::new(CelString::from(s.as_str()))
        }
        Value::Array(items) => {
            let item = n.and_then(|n| n.items.as_deref());
            let embedded = item.is_some_and(|i| i.embedded);
            let list: Vec<Box<dyn Val + 'v>> =
                items.iter().map(|x| to_val(x, item, embedded)).collect();
            Box::new(CelList::from(list))
        }
        Value::Object(m) => {
            let mut out: HashMap<CelMapKey<'v>, Box<dyn Val + 'v>> =
                HashMap::with_capacity(m.len());
            match n {
                Some(n) if !n.properties.is_empty() || resource => {
                    for (k, x) in m {
                        if let Some(p) = n.property(k) {
                            if let Some(esc) = escape(k) {
                                let name = if esc == *k {
                                    std::borrow::Cow::Borrowed(k.as_str())
                                } else {
                                    std::borrow::Cow::Owned(esc)
                                };
                                out.insert(key(name), to_val(x, Some(p), p.embedded));
                            }
                        } else if resource && (k == "apiVersion" || k == "kind") {
                            out.insert(key(k.as_str().into()), to_val(x, None, false));
                        } else if resource && k == "metadata" {
                            let mut meta: HashMap<CelMapKey<'v>, Box<dyn Val + 'v>> =
                                HashMap::new();
                            for f in ["name", "generateName"] {
                                if let Some(s @ Value::String(_)) = x.get(f) {
                                    meta.insert(key(f.into()), to_val(s, None, false));
                                }
                            }
                            out.insert(key("metadata".into()), Box::new(CelMap::from(meta)));
                        } else if let Some(a) = n.additional_schema() {
                            out.insert(key(k.as_str().into()), to_val(x, Some(a), a.embedded));
                        }
                    }
                }
                Some(n) if n.additional_schema().is_some() => {
                    let a = n.additional_schema();
                    let embedded = a.is_some_and(|a| a.embedded);
                    for (k, x) in m {
                        out.insert(key(k.as_str().into()), to_val(x, a, embedded));
                    }
                }
                _ => {
                    for (k, x) in m {
                        out.insert(key(k.as_str().into()), to_val(x, None, false));
                    }
                }
            }
            Box::new(CelMap::from(out))
        }
    }
}

/// Like [`to_val`], converting only what `need` says the rules read.
pub(crate) fn to_val_need<'v>(
    v: &'v Value,
    n: &Node,
    resource: bool,
    need: &Need,
) -> Box<dyn Val + 'v> {
    let (Need::Fields(fields), Value::Object(m)) = (need, v) else {
        if let (Need::Fields(fields), Value::Array(items), Some(item)) =
            (need, v, n.items.as_deref())
        {
            if let Some(sub) = fields.get(LIST_ELEMENTS) {
                let list: Vec<Box<dyn Val + 'v>> = items
                    .iter()
                    .map(|x| to_val_need(x, item, item.embedded, sub))
                    .collect();
                return Box::new(CelList::from(list));
            }
        }
        return to_val(v, Some(n), resource);
    };
    let mut out: HashMap<CelMapKey<'v>, Box<dyn Val + 'v>> = HashMap::with_capacity(fields.len());
    if !n.properties.is_empty() || resource {
        for (k, x) in m {
            if let Some(p) = n.property(k) {
                let Some(esc) = escape(k) else { continue };
                if let Some(sub) = fields.get(&esc) {
                    let name = if esc == *k {
                        std::borrow::Cow::Borrowed(k.as_str())
                    } else {
                        std::borrow::Cow::Owned(esc)
                    };
                    out.insert(key(name), to_val_need(x, p, p.embedded, sub));
                }
            } else if resource && matches!(k.as_str(), "apiVersion" | "kind") {
                if fields.contains_key(k.as_str()) {
                    out.insert(key(k.as_str().into()), to_val(x, None, false));
                }
            } else if resource && k == "metadata" {
                if fields.contains_key("metadata") {
                    out.insert(key("metadata".into()), root_meta(x));
                }
            } else if let Some(a) = n.additional_schema() {
                if let Some(sub) = fields.get(k.as_str()) {
                    out.insert(key(k.as_str().into()), to_val_need(x, a, a.embedded, sub));
                }
            }
        }
    } else if let Some(a) = n.additional_schema() {
        for (k, x) in m {
            if let Some(sub) = fields.get(k.as_str()) {
                out.insert(key(k.as_str().into()), to_val_need(x, a, a.embedded, sub));
            }
        }
    } else {
        return to_val(v, Some(n), resource);
    }
    Box::new(CelMap::from(out))
}

/// A resource root's `metadata`: only `name` and `generateName` are visible.
fn root_meta<'v>(x: &'v Value) -> Box<dyn Val + 'v> {
    let mut meta: HashMap<CelMapKey<'v>, Box<dyn Val + 'v>> = HashMap::new();
    for f in ["name", "generateName"] {
        if let Some(s @ Value::String(_)) = x.get(f) {
            meta.insert(key(f.into()), to_val(s, None, false));
        }
    }
    Box::new(CelMap::from(meta))
}

// ---------------------------------------------------------------------------------------------
// Static checks and cost estimation
// ---------------------------------------------------------------------------------------------

/// What is known statically about a value.
#[derive(Clone, Debug)]
enum Ty<'a> {
    /// Described by a schema node (`true`: a resource root).
    Schema(&'a Node, bool),
    /// The metadata of a resource root: `name` and `generateName`.
    RootMeta,
    List(Box<Ty<'a>>, f64),
    Map(Box<Ty<'a>>, f64),
    Str(f64),
    Bytes(f64),
    Scalar,
    /// Anything, at most this big.
    Dyn(f64),
}

fn min_size(n: &Node) -> f64 {
    if n.int_or_string {
        return 1.0;
    }
    match n.ty {
        Some(JsonType::String) => 2.0 + n.min_length.unwrap_or(0).max(0) as f64,
        Some(JsonType::Integer) | Some(JsonType::Number) => 1.0,
        Some(JsonType::Boolean) => 4.0,
        Some(JsonType::Object) | Some(JsonType::Array) => 2.0,
        None => 1.0,
    }
}

fn est_items(item: Option<&Node>) -> f64 {
    let m = item.map_or(1.0, min_size);
    ((MAX_REQUEST_BYTES - 2.0) / (m + 1.0)).floor()
}

fn est_props(value: Option<&Node>) -> f64 {
    let m = value.map_or(1.0, min_size);
    ((MAX_REQUEST_BYTES - 2.0) / (m + 4.0)).floor()
}

/// How many elements (list items, map entries, string characters) a node's value can have.
fn node_size(n: &Node) -> f64 {
    if n.int_or_string {
        return n.max_length.map_or(MAX_REQUEST_BYTES - 2.0, |m| m as f64);
    }
    match n.ty {
        Some(JsonType::Array) => n
            .max_items
            .map_or_else(|| est_items(n.items.as_deref()), |m| m as f64),
        Some(JsonType::Object) => match &n.additional {
            Additional::Schema(a) => n
                .max_properties
                .map_or_else(|| est_props(Some(a)), |m| m as f64),
            Additional::Bool(true) => n
                .max_properties
                .map_or_else(|| est_props(None), |m| m as f64),
            _ if n.preserve_unknown && n.properties.is_empty() => n
                .max_properties
                .map_or_else(|| est_props(None), |m| m as f64),
            _ => n.properties.len().max(1) as f64,
        },
        Some(JsonType::String) => n.max_length.map_or(MAX_REQUEST_BYTES - 2.0, |m| m as f64),
        Some(_) => 1.0,
        None => MAX_REQUEST_BYTES,
    }
}

impl<'a> Ty<'a> {
    fn size(&self) -> f64 {
        match self {
            Ty::Schema(n, _) => node_size(n),
            Ty::RootMeta => 2.0,
            Ty::List(_, s) | Ty::Map(_, s) | Ty::Str(s) | Ty::Bytes(s) | Ty::Dyn(s) => *s,
            Ty::Scalar => 1.0,
        }
    }

    fn is_stringy(&self) -> bool {
        match self {
            Ty::Str(_) | Ty::Bytes(_) => true,
            Ty::Schema(n, _) => n.ty == Some(JsonType::String) || n.int_or_string,
            _ => false,
        }
    }

    /// What iterating it yields (map keys for maps).
    fn iter_elem(&self) -> Ty<'a> {
        match self {
            Ty::Schema(n, _) => match n.ty {
                Some(JsonType::Array) => match &n.items {
                    Some(i) => Ty::Schema(i, i.embedded),
                    None => Ty::Dyn(MAX_REQUEST_BYTES),
                },
                Some(JsonType::Object) => Ty::Str(MAX_REQUEST_BYTES),
                _ => Ty::Dyn(MAX_REQUEST_BYTES),
            },
            Ty::List(e, _) => (**e).clone(),
            Ty::Map(_, _) | Ty::RootMeta => Ty::Str(MAX_REQUEST_BYTES),
            _ => Ty::Dyn(MAX_REQUEST_BYTES),
        }
    }

    /// What indexing it yields (map values for maps).
    fn index_elem(&self) -> Ty<'a> {
        match self {
            Ty::Schema(n, _) => match (n.ty, n.additional_schema()) {
                (Some(JsonType::Array), _) => self.iter_elem(),
                (_, Some(a)) => Ty::Schema(a, a.embedded),
                _ => Ty::Dyn(MAX_REQUEST_BYTES),
            },
            Ty::List(e, _) | Ty::Map(e, _) => (**e).clone(),
            Ty::RootMeta => Ty::Str(253.0),
            _ => Ty::Dyn(MAX_REQUEST_BYTES),
        }
    }

    /// The type of `self.<field>`; Err(message) for an undefined field.
    fn field(&self, name: &str) -> Result<Ty<'a>, String> {
        match self {
            Ty::Schema(n, resource) => {
                if n.ty == Some(JsonType::Object) || *resource || !n.properties.is_empty() {
                    if *resource && (name == "apiVersion" || name == "kind") {
                        return Ok(Ty::Str(MAX_REQUEST_BYTES));
                    }
                    if *resource && name == "metadata" {
                        return Ok(Ty::RootMeta);
                    }
                    if let Some((_, p)) = n
                        .properties
                        .iter()
                        .find(|(k, _)| escape(k).as_deref() == Some(name))
                    {
                        return Ok(Ty::Schema(p, p.embedded));
                    }
                    if let Some(a) = n.additional_schema() {
                        return Ok(Ty::Schema(a, a.embedded));
                    }
                    if n.preserve_unknown || matches!(n.additional, Additional::Bool(true)) {
                        return Ok(Ty::Dyn(MAX_REQUEST_BYTES));
                    }
                    if n.ty == Some(JsonType::Object) || *resource {
                        return Err(format!("undefined field '{name}'"));
                    }
                }
                Ok(Ty::Dyn(MAX_REQUEST_BYTES))
            }
            Ty::RootMeta => match name {
                "name" | "generateName" => Ok(Ty::Str(253.0)),
                _ => Err(format!("undefined field '{name}'")),
            },
            Ty::Map(e, _) => Ok((**e).clone()),
            _ => Ok(Ty::Dyn(MAX_REQUEST_BYTES)),
        }
    }
}

/// Identifiers that name types or function namespaces.
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
    "google",
    "math",
    "strings",
    "lists",
    "optional",
];

struct Est<'a> {
    /// Variables in scope, innermost last: name, type, and for values taken from `self` (or
    /// `oldSelf`) the [`Need`] path they come from (`[]` for `self`; a list's elements add `[]`).
    vars: Vec<(String, Ty<'a>, Option<Vec<String>>)>,
    /// Inside a field chain whose need is already marked: reading its root marks nothing more.
    chain: usize,
    errors: Vec<(u64, String)>,
    quiet: usize,
    uses_old_self: bool,
    nodes: usize,
    need: Need,
}

/// `x.a.b` (or `has(x.a.b)`) on any identifier: the identifier and the field names.
fn self_chain_of(e: &IdedExpr) -> Option<(&str, Vec<&str>)> {
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

/// `self.a.b` (or `oldSelf...`, or `has(self.a.b)`): the root and the field names.
fn self_chain(e: &IdedExpr) -> Option<(&str, Vec<&str>)> {
    self_chain_of(e).filter(|(root, _)| matches!(*root, "self" | "oldSelf"))
}

fn sat(x: f64) -> f64 {
    if x.is_finite() {
        x
    } else {
        f64::MAX
    }
}

impl<'a> Est<'a> {
    fn error(&mut self, id: u64, msg: String) {
        if self.quiet == 0 && !self.errors.iter().any(|(i, m)| *i == id && *m == msg) {
            self.errors.push((id, msg));
        }
    }

    /// `self` / `oldSelf` not shadowed by a comprehension variable.
    fn is_root_var(&self, name: &str) -> bool {
        self.vars
            .iter()
            .rposition(|(n, _, _)| n == name)
            .is_some_and(|i| i < 2)
    }

    fn lookup(&self, name: &str) -> Option<Ty<'a>> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _, _)| n == name)
            .map(|(_, t, _)| t.clone())
    }

    /// The need path of a variable holding (part of) `self`.
    fn need_path(&self, name: &str) -> Option<Vec<String>> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _, _)| n == name)
            .and_then(|(_, _, p)| p.clone())
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

    fn expr(&mut self, e: &IdedExpr) -> (f64, Ty<'a>) {
        self.nodes += 1;
        match &e.expr {
            Expr::Unspecified => (0.0, Ty::Dyn(MAX_REQUEST_BYTES)),
            Expr::Literal(l) => (
                0.0,
                match l {
                    LiteralValue::String(s) => Ty::Str(s.inner().chars().count() as f64),
                    LiteralValue::Bytes(b) => Ty::Bytes(b.inner().len() as f64),
                    _ => Ty::Scalar,
                },
            ),
            Expr::Ident(name) => {
                if name == "oldSelf" {
                    self.uses_old_self = true;
                }
                if self.chain == 0 {
                    if let Some(p) = self.need_path(name) {
                        self.mark(&p, &[], false);
                    }
                }
                match self.lookup(name) {
                    Some(t) => (1.0, t),
                    None if TYPE_IDENTS.contains(&name.as_str()) => (1.0, Ty::Scalar),
                    None => {
                        self.error(
                            e.id,
                            format!("undeclared reference to '{name}' (in container '')"),
                        );
                        (1.0, Ty::Dyn(MAX_REQUEST_BYTES))
                    }
                }
            }
            Expr::Select(sel) => {
                if let Some((root, fields)) = self_chain(e).filter(|(r, _)| self.is_root_var(r)) {
                    if root == "oldSelf" {
                        self.uses_old_self = true;
                    }
                    if sel.test {
                        self.need.mark_present(&fields);
                    } else {
                        self.need.mark(&fields);
                    }
                    self.nodes += fields.len();
                    let mut t = self.lookup(root).unwrap_or(Ty::Dyn(MAX_REQUEST_BYTES));
                    for f in &fields {
                        t = match t.field(f) {
                            Ok(ft) => ft,
                            Err(msg) => {
                                self.error(e.id, msg);
                                Ty::Dyn(MAX_REQUEST_BYTES)
                            }
                        };
                    }
                    let cost = fields.len() as f64 + 1.0;
                    return (cost, if sel.test { Ty::Scalar } else { t });
                }
                // A chain on a variable holding part of `self` (a comprehension over a list of
                // it): only the fields read are needed.
                let chain = match self_chain_of(e) {
                    Some((root, fields)) if self.chain == 0 => {
                        self.need_path(root).map(|p| (p, fields))
                    }
                    _ => None,
                };
                if let Some((p, fields)) = &chain {
                    self.mark(p, fields, sel.test);
                    self.chain += 1;
                }
                let (c, t) = self.expr(&sel.operand);
                if chain.is_some() {
                    self.chain -= 1;
                }
                match t.field(&sel.field) {
                    Ok(ft) => (c + 1.0, if sel.test { Ty::Scalar } else { ft }),
                    Err(msg) => {
                        self.error(e.id, msg);
                        (c + 1.0, Ty::Dyn(MAX_REQUEST_BYTES))
                    }
                }
            }
            Expr::List(list) => {
                let mut cost = 10.0;
                let mut elem: Option<Ty<'a>> = None;
                for x in &list.elements {
                    let (c, t) = self.expr(x);
                    cost += c;
                    elem = Some(match elem {
                        Some(prev) if prev.size() >= t.size() => prev,
                        _ => t,
                    });
                }
                (
                    cost,
                    Ty::List(
                        Box::new(elem.unwrap_or(Ty::Dyn(0.0))),
                        list.elements.len() as f64,
                    ),
                )
            }
            Expr::Map(map) => {
                let mut cost = 30.0;
                let mut elem: Option<Ty<'a>> = None;
                for entry in &map.entries {
                    match &entry.expr {
                        cel::common::ast::EntryExpr::MapEntry(me) => {
                            cost += self.expr(&me.key).0;
                            let (c, t) = self.expr(&me.value);
                            cost += c;
                            elem = Some(t);
                        }
                        cel::common::ast::EntryExpr::StructField(sf) => {
                            cost += self.expr(&sf.value).0;
                        }
                    }
                }
                (
                    cost,
                    Ty::Map(
                        Box::new(elem.unwrap_or(Ty::Dyn(0.0))),
                        map.entries.len() as f64,
                    ),
                )
            }
            Expr::Struct(s) => {
                self.error(
                    e.id,
                    format!(
                        "undeclared reference to '{}' (in container '')",
                        s.type_name
                    ),
                );
                (1.0, Ty::Dyn(MAX_REQUEST_BYTES))
            }
            Expr::Comprehension(c) => {
                // Over a list taken from `self`: its elements are needed only as far as the
                // iteration variable is read.
                let range_path = match self_chain_of(&c.iter_range) {
                    Some((root, fields)) if self.chain == 0 && c.iter_var2.is_none() => self
                        .need_path(root)
                        .map(|p| p.into_iter().chain(fields.iter().map(|f| f.to_string())))
                        .map(Iterator::collect::<Vec<String>>),
                    _ => None,
                };
                let before = range_path.as_ref().map(|_| self.need.clone());
                let (rc, rt) = self.expr(&c.iter_range);
                let elem_path = match (range_path, before) {
                    (Some(mut p), Some(before)) if matches!(rt, Ty::Schema(n, _) if n.ty == Some(JsonType::Array)) =>
                    {
                        self.need = before;
                        let fields: Vec<&str> = p.iter().map(String::as_str).collect();
                        self.need.mark_present(&fields);
                        p.push(LIST_ELEMENTS.to_string());
                        Some(p)
                    }
                    _ => None,
                };
                let n = rt.size();
                let (elem, key) = match &c.iter_var2 {
                    Some(_) => (
                        rt.index_elem(),
                        match rt {
                            Ty::List(..) => Ty::Scalar,
                            Ty::Schema(n, _) if n.ty == Some(JsonType::Array) => Ty::Scalar,
                            _ => Ty::Str(MAX_REQUEST_BYTES),
                        },
                    ),
                    None => (rt.iter_elem(), Ty::Scalar),
                };
                let (ic, it) = self.expr(&c.accu_init);
                let bind_iter = |s: &mut Self| match &c.iter_var2 {
                    Some(v2) => {
                        s.vars.push((c.iter_var.clone(), key.clone(), None));
                        s.vars.push((v2.clone(), elem.clone(), None));
                        2
                    }
                    None => {
                        s.vars
                            .push((c.iter_var.clone(), elem.clone(), elem_path.clone()));
                        1
                    }
                };
                // First pass (quiet): how the accumulator grows per iteration.
                self.quiet += 1;
                self.vars.push((c.accu_var.clone(), it.clone(), None));
                let k = bind_iter(self);
                let (_, st) = self.expr(&c.loop_step);
                for _ in 0..k {
                    self.vars.pop();
                }
                self.vars.pop();
                self.quiet -= 1;
                let accu = match (&it, &st) {
                    (_, Ty::List(e, s)) => {
                        let grow = (s - it.size()).max(0.0);
                        Ty::List(e.clone(), sat(it.size() + n * grow))
                    }
                    (_, Ty::Map(e, s)) => {
                        let grow = (s - it.size()).max(0.0);
                        Ty::Map(e.clone(), sat(it.size() + n * grow))
                    }
                    (_, Ty::Str(s)) => {
                        let grow = (s - it.size()).max(0.0);
                        Ty::Str(sat(it.size() + n * grow))
                    }
                    _ => st.clone(),
                };
                self.vars.push((c.accu_var.clone(), accu, None));
                let k = bind_iter(self);
                let (cc, _) = self.expr(&c.loop_cond);
                let (sc, _) = self.expr(&c.loop_step);
                for _ in 0..k {
                    self.vars.pop();
                }
                let (resc, rest) = self.expr(&c.result);
                self.vars.pop();
                (sat(rc + ic + n * (cc + sc + 1.0) + resc), rest)
            }
            Expr::Call(call) => self.call(e.id, call),
        }
    }

    fn call(&mut self, id: u64, call: &cel::common::ast::CallExpr) -> (f64, Ty<'a>) {
        // `ns.f(x)` parses as a member call on the identifier `ns`.
        let mut name = call.func_name.clone();
        let mut target = call.target.as_deref();
        if let Some(IdedExpr {
            expr: Expr::Ident(ns),
            ..
        }) = target
        {
            if matches!(
                ns.as_str(),
                "math" | "strings" | "lists" | "optional" | "ip" | "sets" | "format"
            ) && self.lookup(ns).is_none()
            {
                name = format!("{ns}.{name}");
                target = None;
            }
        }
        let mut cost = 0.0;
        let t = target.map(|t| {
            let (c, ty) = self.expr(t);
            cost += c;
            ty
        });
        let mut args = Vec::with_capacity(call.args.len());
        for a in &call.args {
            let (c, ty) = self.expr(a);
            cost += c;
            args.push(ty);
        }
        let literal_int = call.args.first().and_then(|a| match &a.expr {
            Expr::Literal(LiteralValue::Int(i)) => Some(*i.inner() as f64),
            _ => None,
        });
        match call_cost(&name, t.as_ref(), &args, literal_int) {
            Some((c, ty)) => (sat(cost + c), ty),
            None => {
                self.error(
                    id,
                    format!("undeclared reference to '{name}' (in container '')"),
                );
                (cost + 1.0, Ty::Dyn(MAX_REQUEST_BYTES))
            }
        }
    }
}

/// The cost and result type of a function or operator call, None when it is not declared.
fn call_cost<'a>(
    name: &str,
    target: Option<&Ty<'a>>,
    args: &[Ty<'a>],
    literal_int: Option<f64>,
) -> Option<(f64, Ty<'a>)> {
    let arg = |i: usize| args.get(i).cloned().unwrap_or(Ty::Scalar);
    let recv = || {
        target
            .cloned()
            .or_else(|| args.first().cloned())
            .unwrap_or(Ty::Scalar)
    };
    let size = |t: &Ty| t.size();
    let scan = |t: &Ty| 0.1 * t.size();
    Some(match name {
        "_&&_" | "_||_" | "!_" | "@not_strictly_false" | "-_" | "_-_" | "_*_" | "_/_" | "_%_" => {
            (1.0, Ty::Scalar)
        }
        "_?_:_" => {
            let (a, b) = (arg(1), arg(2));
            (1.0, if a.size() >= b.size() { a } else { b })
        }
        "_==_" | "_!=_" => {
            let (a, b) = (arg(0), arg(1));
            (1.0 + 0.1 * size(&a).min(size(&b)), Ty::Scalar)
        }
        "_<_" | "_<=_" | "_>_" | "_>=_" => {
            let a = arg(0);
            let c = if a.is_stringy() { 1.0 + scan(&a) } else { 1.0 };
            (c, Ty::Scalar)
        }
        "_+_" => {
            let (a, b) = (arg(0), arg(1));
            let total = sat(size(&a) + size(&b));
            let ty = match (&a, &b) {
                (Ty::List(e, _), _) | (_, Ty::List(e, _)) => Ty::List(e.clone(), total),
                _ if a.is_stringy() || b.is_stringy() => Ty::Str(total),
                (Ty::Schema(n, _), _) if n.ty == Some(JsonType::Array) => {
                    Ty::List(Box::new(a.iter_elem()), total)
                }
                (Ty::Dyn(_), _) | (_, Ty::Dyn(_)) => Ty::Dyn(total),
                _ => Ty::Scalar,
            };
            let c = if matches!(ty, Ty::Scalar) {
                1.0
            } else {
                1.0 + 0.1 * total
            };
            (c, ty)
        }
        "_[_]" | "_[?_]" => (1.0, arg(0).index_elem()),
        "_?._" => (1.0, Ty::Dyn(MAX_REQUEST_BYTES)),
        "@in" => {
            let c = arg(1);
            let is_list = matches!(c, Ty::List(..))
                || matches!(c, Ty::Schema(n, _) if n.ty == Some(JsonType::Array));
            (if is_list { 1.0 + size(&c) } else { 1.0 }, Ty::Scalar)
        }
        "size"
        | "int"
        | "uint"
        | "double"
        | "bool"
        | "type"
        | "duration"
        | "timestamp"
        | "getFullYear"
        | "getMonth"
        | "getDayOfYear"
        | "getDayOfMonth"
        | "getDate"
        | "getDayOfWeek"
        | "getHours"
        | "getMinutes"
        | "getSeconds"
        | "getMilliseconds"
        | "hasValue"
        | "value"
        | "optional.of"
        | "optional.none"
        | "optional.ofNonZeroValue"
        | "or"
        | "orValue"
        | "math.ceil"
        | "math.floor"
        | "math.round"
        | "math.trunc"
        | "math.abs"
        | "math.sign"
        | "math.isInf"
        | "math.isNaN"
        | "math.isFinite"
        | "math.bitAnd"
        | "math.bitOr"
        | "math.bitXor"
        | "math.bitNot"
        | "math.bitShiftLeft"
        | "math.bitShiftRight"
        | "math.sqrt" => (1.0, Ty::Scalar),
        "dyn" => (1.0, arg(0)),
        "string" => (1.0 + scan(&arg(0)), Ty::Str(size(&arg(0)).max(32.0))),
        "bytes" => (1.0 + scan(&arg(0)), Ty::Bytes(size(&arg(0)))),
        "contains" => {
            let (r, a) = (recv(), arg(if target.is_some() { 0 } else { 1 }));
            (
                1.0 + (0.1 * size(&r)).ceil() * (0.1 * size(&a)).ceil().max(1.0),
                Ty::Scalar,
            )
        }
        "startsWith" | "endsWith" => {
            let a = arg(if target.is_some() { 0 } else { 1 });
            (1.0 + scan(&a), Ty::Scalar)
        }
        "matches" | "find" => {
            let (r, a) = (recv(), arg(if target.is_some() { 0 } else { 1 }));
            let c = 1.0 + (0.1 * size(&r)).ceil() * (0.1 * size(&a)).ceil().max(1.0);
            (
                c,
                if name == "find" {
                    Ty::Str(size(&r))
                } else {
                    Ty::Scalar
                },
            )
        }
        "findAll" => {
            let (r, a) = (recv(), arg(0));
            let c = 1.0 + (0.1 * size(&r)).ceil() * (0.1 * size(&a)).ceil().max(1.0);
            (c, Ty::List(Box::new(Ty::Str(size(&r))), size(&r)))
        }
        "charAt" => (1.0 + scan(&recv()), Ty::Str(1.0)),
        "indexOf" | "lastIndexOf" | "isSorted" | "sum" | "min" | "max" => {
            let r = recv();
            (
                1.0 + size(&r),
                if matches!(name, "min" | "max") {
                    r.iter_elem()
                } else {
                    Ty::Scalar
                },
            )
        }
        "lowerAscii" | "upperAscii" | "trim" | "reverse" | "substring" => {
            let r = recv();
            if r.is_stringy() {
                (1.0 + scan(&r), Ty::Str(size(&r)))
            } else {
                (1.0 + size(&r), r)
            }
        }
        "replace" => {
            let r = recv();
            let grow = size(&arg(1)).max(1.0);
            (1.0 + scan(&r), Ty::Str(sat(size(&r) * grow)))
        }
        "split" => {
            let r = recv();
            (
                1.0 + scan(&r),
                Ty::List(Box::new(Ty::Str(size(&r))), size(&r)),
            )
        }
        "join" => {
            let r = recv();
            let total = sat(size(&r) * size(&r.iter_elem()) + size(&r) * size(&arg(0)));
            (1.0 + 0.1 * total, Ty::Str(total))
        }
        "format" => {
            let r = recv();
            let total = sat(size(&r) + size(&arg(0)) * size(&arg(0).iter_elem()));
            (1.0 + 0.1 * total, Ty::Str(total))
        }
        "strings.quote" => {
            let a = arg(0);
            (1.0 + scan(&a), Ty::Str(sat(2.0 * size(&a) + 2.0)))
        }
        "slice" | "distinct" | "sort" | "@sortByAssociatedKeys" => {
            let r = recv();
            let n = size(&r);
            let c = if name == "distinct" {
                1.0 + n * n * 0.1
            } else {
                1.0 + n * n.max(2.0).log2()
            };
            (sat(c), Ty::List(Box::new(r.iter_elem()), n))
        }
        "flatten" => {
            let r = recv();
            let inner = r.iter_elem();
            let total = sat(size(&r) * size(&inner));
            (1.0 + total, Ty::List(Box::new(inner.iter_elem()), total))
        }
        "lists.range" => {
            let n = literal_int.unwrap_or(1_000_000.0).max(0.0);
            (1.0 + n, Ty::List(Box::new(Ty::Scalar), n))
        }
        "math.greatest" | "math.least" => {
            let n: f64 = args
                .iter()
                .map(|a| match a {
                    Ty::List(..) => a.size(),
                    _ => 1.0,
                })
                .sum();
            (1.0 + n, Ty::Scalar)
        }
        // Kubernetes' URL, IP, CIDR, quantity and semver libraries (`cel_lib`): parsing
        // traverses the string once; accessors and comparisons are nominal.
        "url" if target.is_none() => {
            let a = arg(0);
            (1.0 + scan(&a), Ty::Str(size(&a)))
        }
        "cidr" | "isIP" | "isCIDR" | "quantity" | "isQuantity" | "semver" | "isSemver" => {
            (1.0 + scan(&arg(0)), Ty::Scalar)
        }
        "ip" if target.is_none() => (1.0 + scan(&arg(0)), Ty::Scalar),
        "ip.isCanonical" => (1.0 + 2.0 * scan(&arg(0)), Ty::Scalar),
        "getScheme" | "getHost" | "getHostname" | "getPort" | "getEscapedPath" => {
            (1.0, Ty::Str(size(&recv())))
        }
        "getQuery" => (1.0, Ty::Dyn(size(&recv()))),
        "isURL"
        | "ip"
        | "masked"
        | "prefixLength"
        | "family"
        | "isUnspecified"
        | "isLoopback"
        | "isLinkLocalMulticast"
        | "isLinkLocalUnicast"
        | "isGlobalUnicast"
        | "sign"
        | "asInteger"
        | "isInteger"
        | "asApproximateFloat"
        | "isGreaterThan"
        | "isLessThan"
        | "compareTo"
        | "add"
        | "sub"
        | "major"
        | "minor"
        | "patch" => (1.0, Ty::Scalar),
        "sets.contains" | "sets.equivalent" | "sets.intersects" => {
            (1.0 + size(&arg(0)) * size(&arg(1)).max(1.0), Ty::Scalar)
        }
        // A named format's check runs its regular expressions over the string.
        "validate" => {
            let a = arg(0);
            (
                1.0 + 32.0 * scan(&a),
                Ty::List(Box::new(Ty::Str(size(&a))), 8.0),
            )
        }
        n if n.starts_with("format.") => (1.0, Ty::Scalar),
        // The two-variable comprehensions' helpers (`cel_macros`).
        "@kubox_keys" => {
            let r = arg(0);
            (1.0 + size(&r), Ty::List(Box::new(Ty::Scalar), size(&r)))
        }
        "@kubox_mapInsert" | "@kubox_mapMerge" => {
            let m = arg(0);
            (1.0, Ty::Dyn(sat(size(&m) + 1.0)))
        }
        "containsIP" | "containsCIDR" => {
            // Two addresses of 4 or 16 bytes compared (and, for a CIDR, masked), plus parsing
            // a string argument.
            let a = arg(0);
            let base = if name == "containsIP" { 3.2 } else { 5.8 };
            let parse = if a.is_stringy() { scan(&a) } else { 0.0 };
            (1.0 + base + parse, Ty::Scalar)
        }
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------------
// Compilation
// ---------------------------------------------------------------------------------------------

/// Where a node sits, for compiling its rules.
#[derive(Clone)]
pub(crate) struct Site {
    /// The schema path (`spec.versions[0].schema.openAPIV3Schema.properties[spec]`).
    pub path: String,
    /// How many times a rule here can run (product of the list and map sizes above).
    pub cardinality: f64,
    /// The first ancestor below which old values do not correlate.
    pub uncorrelatable: Option<String>,
    /// A resource root (the custom resource or an embedded resource).
    pub resource: bool,
}

/// Where `id` is in `source`: 1-based line, 0-based column (cel-go prints column + 1).
fn location(program: &Program, id: u64) -> (usize, usize) {
    let source = &program.source_info().source;
    let start = program
        .source_info()
        .offset_for(id)
        .map_or(0, |(s, _)| s as usize);
    let before = source.get(..start.min(source.len())).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .unwrap_or_default()
        .chars()
        .count();
    (line, col)
}

fn format_errors(program: &Program, errors: &[(u64, String)]) -> String {
    let source = &program.source_info().source;
    let mut out = String::new();
    for (i, (id, msg)) in errors.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let (line, col) = location(program, *id);
        let _ = write!(out, "ERROR: <input>:{line}:{}: {msg}", col + 1);
        if let Some(text) = source.lines().nth(line - 1) {
            let _ = write!(out, "\n | {text}\n | {}^", ".".repeat(col));
        }
    }
    out
}

/// A rule compiled and checked: Ok(program, uses oldSelf, estimated cost) or the error detail.
type Compiled = ((Program, usize), bool, f64, Need);

/// Compiles and checks a rule on a large stack (see [`parse_bounded`]; the estimator recurses
/// over the tree too).
fn compile_expression(source: &str, self_ty: Ty<'_>) -> Result<Compiled, String> {
    on_big_stack(|| compile_expression_here(source, self_ty))?
}

fn compile_expression_here(source: &str, self_ty: Ty<'_>) -> Result<Compiled, String> {
    let (program, depth) = parse_bounded(source)?;
    let mut est = Est {
        vars: vec![
            ("self".to_string(), self_ty.clone(), Some(Vec::new())),
            ("oldSelf".to_string(), self_ty, Some(Vec::new())),
        ],
        chain: 0,
        errors: Vec::new(),
        quiet: 0,
        uses_old_self: false,
        nodes: 0,
        need: Need::default(),
    };
    let (cost, _) = est.expr(program.expression());
    if est.nodes > MAX_AST_NODES {
        return Err(format!(
            "expression has {} nodes, more than the {MAX_AST_NODES} allowed",
            est.nodes
        ));
    }
    if !est.errors.is_empty() {
        return Err(format_errors(&program, &est.errors));
    }
    Ok(((program, depth), est.uses_old_self, cost, est.need))
}

/// Go's `%#v` of an `apiextensions.ValidationRule`, the value kube reports for a bad rule.
fn go_rule(raw: &Value) -> String {
    let s = |k: &str| go_quote(raw.get(k).and_then(Value::as_str).unwrap_or_default());
    let reason = if raw.get("reason").and_then(Value::as_str).is_some() {
        "(*apiextensions.FieldValueErrorReason)(0xc000000000)"
    } else {
        "(*apiextensions.FieldValueErrorReason)(nil)"
    };
    let optional = match raw.get("optionalOldSelf").and_then(Value::as_bool) {
        Some(_) => "(*bool)(0xc000000000)",
        None => "(*bool)(nil)",
    };
    format!(
        "apiextensions.ValidationRule{{Rule:{}, Message:{}, MessageExpression:{}, Reason:{reason}, FieldPath:{}, OptionalOldSelf:{optional}}}",
        s("rule"),
        s("message"),
        s("messageExpression"),
        s("fieldPath"),
    )
}

/// kube's `ValidFieldPath`: a JSON path of fields and `['key']` map keys valid for the node;
/// returns the normalized field path (`foo.bar`, `foo[key]`).
fn valid_field_path(path: &str, mut n: &Node) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = path;
    let step = |name: &str, out: &mut String, n: &mut &Node| -> Result<(), String> {
        if !n.properties.is_empty() {
            let p = n.property(name).ok_or("does not refer to a valid field")?;
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(name);
            *n = p;
        } else if let Some(a) = n.additional_schema() {
            let _ = write!(out, "[{name}]");
            *n = a;
        } else {
            return Err("does not refer to a valid field".into());
        }
        Ok(())
    };
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return Err("unexpected end of JSON path".into());
            }
            step(&r[..end], &mut out, &mut n)?;
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix("['") {
            let end = r.find("']").ok_or("unexpected end of JSON path")?;
            step(&r[..end].replace("\\'", "'"), &mut out, &mut n)?;
            rest = &r[end + 2..];
        } else {
            return Err(format!("expected [ or . but got: {rest}"));
        }
    }
    if out.is_empty() {
        return Err("unexpected end of JSON path".into());
    }
    Ok(out)
}

/// Compile the rules of one node. Returns the rules, the CRD errors, and the summed estimated
/// cost (cost × cardinality).
pub(crate) fn compile_node(n: &Node, site: &Site) -> (Vec<Rule>, Vec<FieldError>, f64, Need) {
    let mut need = Need::default();
    let mut rules = Vec::new();
    let mut errs = Vec::new();
    let mut total = 0.0;
    for (i, raw) in n.raw_rules.iter().enumerate() {
        let base = format!("{}.x-kubernetes-validations[{i}]", site.path);
        let rule = raw.get("rule").and_then(Value::as_str).unwrap_or_default();
        let message = raw
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if rule.trim().is_empty() {
            errs.push(FieldError::required(
                format!("{base}.rule"),
                "rule is not specified",
            ));
            continue;
        }
        if !message.is_empty() && message.trim().is_empty() {
            errs.push(FieldError::invalid(
                format!("{base}.message"),
                message,
                "message must be non-empty if specified",
            ));
            continue;
        }
        if message.trim().contains(['\n', '\r']) {
            errs.push(FieldError::invalid(
                format!("{base}.message"),
                message,
                "message must not contain line breaks",
            ));
            continue;
        }
        if rule.trim().contains(['\n', '\r']) && message.trim().is_empty() {
            errs.push(FieldError::required(
                format!("{base}.message"),
                "message must be specified if rule contains line breaks",
            ));
            continue;
        }
        let reason = match raw.get("reason").and_then(Value::as_str) {
            None => None,
            Some("FieldValueInvalid") => Some(Reason::Invalid),
            Some("FieldValueForbidden") => Some(Reason::Forbidden),
            Some("FieldValueRequired") => Some(Reason::Required),
            Some("FieldValueDuplicate") => Some(Reason::Duplicate),
            Some(other) => {
                errs.push(FieldError::not_supported(
                    format!("{base}.reason"),
                    other,
                    &[
                        "FieldValueDuplicate",
                        "FieldValueForbidden",
                        "FieldValueInvalid",
                        "FieldValueRequired",
                    ],
                ));
                continue;
            }
        };
        let field_path = match raw.get("fieldPath").and_then(Value::as_str) {
            None | Some("") => None,
            Some(fp) => match valid_field_path(fp, n) {
                Ok(p) => Some(p),
                Err(e) => {
                    errs.push(FieldError::invalid(
                        format!("{base}.fieldPath"),
                        fp,
                        format!("fieldPath must be a valid path: {e}"),
                    ));
                    continue;
                }
            },
        };
        let self_ty = Ty::Schema(n, site.resource);
        let ((program, depth), uses_old_self, cost) =
            match compile_expression(rule, self_ty.clone()) {
                Ok((p, o, c, nd)) => {
                    need.merge(&nd);
                    (p, o, c)
                }
                Err(detail) => {
                    errs.push(FieldError::invalid_rendered(
                        format!("{base}.rule"),
                        go_rule(raw),
                        format!("compilation failed: {detail}"),
                    ));
                    continue;
                }
            };
        let expression_cost = sat(cost * site.cardinality);
        if expression_cost > PER_RULE_COST_LIMIT {
            errs.push(FieldError::forbidden(
                format!("{base}.rule"),
                cost_error_message("estimated rule cost", expression_cost, PER_RULE_COST_LIMIT),
            ));
        }
        total += expression_cost;
        if uses_old_self {
            if let Some(u) = &site.uncorrelatable {
                errs.push(FieldError::invalid(
                    format!("{base}.rule"),
                    rule,
                    format!("oldSelf cannot be used on the uncorrelatable portion of the schema within {u}"),
                ));
            }
        }
        let message_expression = match raw.get("messageExpression").and_then(Value::as_str) {
            None | Some("") => None,
            Some(me) => match compile_expression(me, self_ty) {
                Ok((p, _, c, nd)) => {
                    need.merge(&nd);
                    total += sat(c * site.cardinality);
                    Some(p)
                }
                Err(detail) => {
                    errs.push(FieldError::invalid_rendered(
                        format!("{base}.messageExpression"),
                        go_rule(raw),
                        format!("messageExpression compilation failed: {detail}"),
                    ));
                    continue;
                }
            },
        };
        rules.push(Rule {
            rule: rule.to_string(),
            message: message.to_string(),
            message_expression,
            reason,
            field_path,
            program,
            depth,
            uses_old_self,
            optional_old_self: raw.get("optionalOldSelf").and_then(Value::as_bool) == Some(true),
        });
    }
    (rules, errs, total, need)
}

/// kube's `getCostErrorMessage`.
pub(crate) fn cost_error_message(name: &str, cost: f64, limit: f64) -> String {
    let factor = cost / limit;
    let factor = if factor > 100.0 {
        "more than 100x".to_string()
    } else if factor < 1.5 {
        format!("{factor:.6}x")
    } else {
        format!("{factor:.1}x")
    };
    format!(
        "{name} exceeds budget by factor of {factor} (try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)"
    )
}

/// Compile the rules of a whole tree in place; returns the CRD errors and the total cost.
pub(crate) fn compile_tree(n: &mut Node, site: Site) -> (Vec<FieldError>, f64) {
    let mut errs = Vec::new();
    let mut total = 0.0;
    let mut need = Need::default();
    if !n.raw_rules.is_empty() {
        let (rules, e, c, nd) = compile_node(n, &site);
        n.rules = rules;
        errs.extend(e);
        total += c;
        need.merge(&nd);
    }
    for (i, a) in n.all_of.iter_mut().enumerate() {
        if !a.raw_rules.is_empty() {
            // allOf rules see the value of this node.
            let sub = Site {
                path: format!("{}.allOf[{i}]", site.path),
                ..site.clone()
            };
            let (rules, e, c, nd) = compile_node(a, &sub);
            a.rules = rules;
            errs.extend(e);
            total += c;
            need.merge(&nd);
        }
    }
    n.need = need;
    let size = node_size(n);
    let correlatable = !n.map_atomic;
    for (k, p) in n.properties.iter_mut() {
        let path = format!("{}.properties[{k}]", site.path);
        let uncorrelatable = site
            .uncorrelatable
            .clone()
            .or_else(|| (!correlatable).then(|| site.path.clone()));
        let (e, c) = compile_tree(
            p,
            Site {
                path,
                cardinality: site.cardinality,
                uncorrelatable,
                resource: p.embedded,
            },
        );
        errs.extend(e);
        total += c;
    }
    if let Some(items) = n.items.as_deref_mut() {
        let uncorrelatable = site
            .uncorrelatable
            .clone()
            .or_else(|| (n.list_type != ListType::Map).then(|| site.path.clone()));
        let (e, c) = compile_tree(
            items,
            Site {
                path: format!("{}.items", site.path),
                cardinality: sat(site.cardinality * size),
                uncorrelatable,
                resource: items.embedded,
            },
        );
        errs.extend(e);
        total += c;
    }
    if let Additional::Schema(a) = &mut n.additional {
        let uncorrelatable = site
            .uncorrelatable
            .clone()
            .or_else(|| (!correlatable).then(|| site.path.clone()));
        let embedded = a.embedded;
        let (e, c) = compile_tree(
            a,
            Site {
                path: format!("{}.additionalProperties", site.path),
                cardinality: sat(site.cardinality * size),
                uncorrelatable,
                resource: embedded,
            },
        );
        errs.extend(e);
        total += c;
    }
    n.compute_flags();
    (errs, total)
}

// ---------------------------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------------------------

/// kube's rendering of a CEL evaluation error.
fn eval_error_text(e: &ExecutionError) -> String {
    match e {
        ExecutionError::NoSuchKey(k) => format!("no such key: {k}"),
        ExecutionError::IndexOutOfBounds(i) => format!("index out of bounds: {}", cel_text(i)),
        ExecutionError::DivisionByZero(_) => "division by zero".into(),
        ExecutionError::RemainderByZero(_) => "modulus by zero".into(),
        ExecutionError::Overflow(..) => "integer overflow".into(),
        ExecutionError::FunctionError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

fn cel_text(v: &cel::Value) -> String {
    match v {
        cel::Value::Int(i) => i.to_string(),
        cel::Value::UInt(u) => u.to_string(),
        cel::Value::Float(f) => f.to_string(),
        cel::Value::String(s) => s.to_string(),
        other => format!("{other:?}"),
    }
}

struct RuleWalker<'a> {
    /// kube's field.Path of the current node, rendered.
    path: String,
    errs: Vec<FieldError>,
    deadline: Instant,
    exhausted: bool,
    /// The correlated (node, new, old) pairs from the root to the current node, and whether
    /// each is unchanged (computed when a failure asks).
    correlated: Vec<(&'a Node, &'a Value, &'a Value, Option<bool>)>,
    /// Failures ratcheted into warnings.
    warnings: Vec<String>,
}

/// Evaluate every rule of the tree on `obj` (`old` on update). Returns the failures, and the
/// failures ratcheted into warnings: on an update, a failure of a rule without `oldSelf` is a
/// warning when its node — or, where the node has no correlated old value, its nearest
/// correlated ancestor — is unchanged (kube's CRDValidationRatcheting).
pub(crate) fn validate(
    root: &Node,
    obj: &Value,
    old: Option<&Value>,
) -> (Vec<FieldError>, Vec<String>) {
    let mut w = RuleWalker {
        path: String::new(),
        errs: Vec::new(),
        deadline: Instant::now() + RUNTIME_BUDGET,
        exhausted: false,
        correlated: Vec::new(),
        warnings: Vec::new(),
    };
    w.node(root, obj, old, true);
    (w.errs, w.warnings)
}

impl<'a> RuleWalker<'a> {
    /// Are failures at the current node ratcheted (its nearest correlated node unchanged)?
    fn should_ratchet(&mut self) -> bool {
        let Some((n, new, old, memo)) = self.correlated.last_mut() else {
            return false;
        };
        *memo.get_or_insert_with(|| crate::validate::unchanged(n, new, old))
    }

    fn field(&self) -> String {
        if self.path.is_empty() {
            "<nil>".into()
        } else {
            self.path.clone()
        }
    }

    fn node(&mut self, n: &'a Node, v: &'a Value, old: Option<&'a Value>, resource: bool) {
        let old = old.filter(|o| !o.is_null());
        if let Some(o) = old {
            self.correlated.push((n, v, o, None));
        }
        self.node_here(n, v, old, resource);
        if old.is_some() {
            self.correlated.pop();
        }
    }

    fn node_here(&mut self, n: &'a Node, v: &'a Value, old: Option<&'a Value>, resource: bool) {
        if v.is_null() || !n.walk_rules || self.exhausted {
            return;
        }
        if !n.rules.is_empty() || n.all_of.iter().any(|a| !a.rules.is_empty()) {
            self.rules(n, v, old, resource);
        }
        match v {
            Value::Object(m) => {
                let correlatable = !n.map_atomic;
                let additional = n.additional_schema().filter(|a| a.walk_rules);
                for (k, x) in m {
                    let old_x = old.filter(|_| correlatable).and_then(|o| o.get(k.as_str()));
                    if let Some(p) = n.property(k) {
                        if p.walk_rules {
                            let len = self.path.len();
                            if !self.path.is_empty() {
                                self.path.push('.');
                            }
                            self.path.push_str(k);
                            self.node(p, x, old_x, p.embedded);
                            self.path.truncate(len);
                        }
                    } else if let Some(a) = additional {
                        let len = self.path.len();
                        let _ = write!(self.path, "[{k}]");
                        self.node(a, x, old_x, a.embedded);
                        self.path.truncate(len);
                    }
                }
            }
            Value::Array(items) => {
                let Some(item) = n.items.as_deref().filter(|i| i.walk_rules) else {
                    return;
                };
                let old_items = old
                    .filter(|_| n.list_type == ListType::Map && !n.list_map_keys.is_empty())
                    .and_then(Value::as_array);
                for (i, x) in items.iter().enumerate() {
                    let old_x = old_items.and_then(|olds| {
                        olds.iter().find(|o| {
                            n.list_map_keys
                                .iter()
                                .all(|k| o.get(k.as_str()) == x.get(k.as_str()))
                        })
                    });
                    let len = self.path.len();
                    let _ = write!(self.path, "[{i}]");
                    self.node(item, x, old_x, item.embedded);
                    self.path.truncate(len);
                }
            }
            _ => {}
        }
    }

    fn rules(&mut self, n: &Node, v: &Value, old: Option<&Value>, resource: bool) {
        // Only errors show it.
        let type_value = || go_quote(&n.type_name);
        let self_val = to_val_need(v, n, resource, &n.need);
        let mut ctx = Context::with_env(env().clone());
        ctx.add_variable_as_val("self", self_val);
        let needs_old = n
            .rules
            .iter()
            .chain(n.all_of.iter().flat_map(|a| a.rules.iter()))
            .any(|r| r.uses_old_self);
        let mut optional_ctx = None;
        if needs_old {
            if let Some(o) = old {
                ctx.add_variable_as_val("oldSelf", to_val_need(o, n, resource, &n.need));
            }
            if n.rules
                .iter()
                .chain(n.all_of.iter().flat_map(|a| a.rules.iter()))
                .any(|r| r.optional_old_self)
            {
                let mut c = Context::with_env(env().clone());
                c.add_variable_as_val("self", to_val_need(v, n, resource, &n.need));
                let opt = match old {
                    Some(o) => CelOptional::of(to_val_need(o, n, resource, &n.need)),
                    None => CelOptional::none(),
                };
                c.add_variable_as_val("oldSelf", Box::new(opt));
                optional_ctx = Some(c);
            }
        }
        let all: Vec<&Rule> = n
            .rules
            .iter()
            .chain(n.all_of.iter().flat_map(|a| a.rules.iter()))
            .collect();
        for rule in all {
            if rule.uses_old_self && old.is_none() && !rule.optional_old_self {
                continue;
            }
            if Instant::now() > self.deadline {
                self.errs.push(FieldError::invalid_rendered(
                    self.field(),
                    type_value(),
                    "validation failed due to running out of cost budget, no further validation rules will be run",
                ));
                self.exhausted = true;
                return;
            }
            let c = match (&optional_ctx, rule.optional_old_self) {
                (Some(oc), true) => oc,
                _ => &ctx,
            };
            let mark = self.errs.len();
            self.evaluate_rule(n, v, rule, c);
            if !rule.uses_old_self && self.errs.len() > mark && self.should_ratchet() {
                let ratcheted: Vec<FieldError> = self.errs.drain(mark..).collect();
                self.warnings
                    .extend(ratcheted.iter().map(ToString::to_string));
            }
        }
    }

    fn evaluate_rule(&mut self, n: &Node, v: &Value, rule: &Rule, c: &Context<'_, '_>) {
        let type_value = || go_quote(&n.type_name);
        {
            match execute(&rule.program, rule.depth, c) {
                Ok(cel::Value::Bool(true)) => {}
                Ok(cel::Value::Bool(false)) => self.failure(n, v, rule, c),
                Ok(other) => self.errs.push(FieldError::invalid_rendered(
                    self.field(),
                    type_value(),
                    format!(
                        "rule did not evaluate to a bool (got {}) evaluating rule: {}",
                        other.type_of(),
                        rule.error_string()
                    ),
                )),
                Err(ExecutionError::NoSuchOverload(_)) => {
                    self.errs.push(FieldError::invalid_rendered(
                        self.field(),
                        type_value(),
                        format!(
                            "'no such overload': call arguments did not match a supported operator, function or macro signature for rule: {}",
                            rule.error_string()
                        ),
                    ))
                }
                Err(e) => self.errs.push(FieldError::invalid_rendered(
                    self.field(),
                    type_value(),
                    format!("{} evaluating rule: {}", eval_error_text(&e), rule.error_string()),
                )),
            }
        }
    }

    fn failure(&mut self, n: &Node, v: &Value, rule: &Rule, ctx: &Context<'_, '_>) {
        let mut detail = None;
        if let Some((me, depth)) = &rule.message_expression {
            if let Ok(cel::Value::String(s)) = execute(me, *depth, ctx) {
                let t = s.trim();
                if !t.is_empty() && t.len() <= MAX_MESSAGE_BYTES && !t.contains('\n') {
                    detail = Some(t.to_string());
                }
            }
        }
        let detail = detail.unwrap_or_else(|| {
            let m = rule.message.trim();
            if m.is_empty() {
                format!("failed rule: {}", rule.error_string())
            } else {
                m.to_string()
            }
        });
        let mut path = self.path.clone();
        if let Some(fp) = &rule.field_path {
            if !path.is_empty() && !fp.starts_with('[') {
                path.push('.');
            }
            path.push_str(fp);
        }
        let field = if path.is_empty() {
            "<nil>".to_string()
        } else {
            path
        };
        let value = match (n.ty, v) {
            (Some(JsonType::Object | JsonType::Array), _)
            | (_, Value::Object(_) | Value::Array(_)) => None,
            _ => Some(go_value(v)),
        };
        self.errs.push(match rule.reason {
            Some(Reason::Forbidden) => FieldError::forbidden(field, detail),
            Some(Reason::Required) => FieldError::required(field, detail),
            Some(Reason::Duplicate) => FieldError {
                field,
                kind: FieldErrorKind::Duplicate,
                value,
                message: String::new(),
            },
            Some(Reason::Invalid) | None => FieldError {
                field,
                kind: FieldErrorKind::Invalid,
                value,
                message: detail,
            },
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn nesting_estimate_counts_brackets_and_chains_outside_strings() {
        use super::nesting_estimate as est;
        assert_eq!(est("[[1], (2)]"), 2);
        assert_eq!(est(r#"'((((' + "[[[[\"" + [1]"#), 2);
        assert_eq!(est(r#"'''(('((''' + r'\' + ({})"#), 2);
        assert_eq!(est(r#"b"{{" == b'' && size([]) == 0"#), 2);
        assert_eq!(est("self.a.b.c > 1.5"), 4);
        assert_eq!(est("a + b && c + d || e + f"), 1);
        assert_eq!(est("f(a + b, c + d, e + f)"), 1);
    }

    use super::*;
    use serde_json::json;

    #[test]
    fn cached_expressions_are_compiled_once_and_evaluate_like_fresh_ones() {
        let src = "object.spec.replicas <= params.max";
        let a = Expression::cached(src).unwrap();
        let b = Expression::cached(src).unwrap();
        assert!(std::sync::Arc::ptr_eq(&a, &b));
        let obj = json!({"spec": {"replicas": 3}});
        let params = json!({"max": 2});
        let vars = [("object", &obj), ("params", &params)];
        assert_eq!(a.eval(&vars).unwrap(), json!(false));
        assert_eq!(
            Expression::compile(src).unwrap().eval(&vars).unwrap(),
            json!(false)
        );
        assert!(Expression::cached("object.").is_err());
    }

    fn compiled(schema: Value) -> (Node, Vec<String>) {
        let mut n = Node::parse(&schema);
        let (errs, _) = compile_tree(
            &mut n,
            Site {
                path: "openAPIV3Schema".into(),
                cardinality: 1.0,
                uncorrelatable: None,
                resource: true,
            },
        );
        (n, errs.iter().map(|e| e.to_string()).collect())
    }

    fn rule_schema(rules: Value) -> Value {
        json!({"type": "object", "properties": {"spec": {"type": "object",
        "x-kubernetes-validations": rules,
        "properties": {
            "replicas": {"type": "integer"}, "max": {"type": "integer"},
            "name": {"type": "string", "maxLength": 64},
            "tags": {"type": "array", "maxItems": 10, "items": {"type": "string", "maxLength": 32}},
            "x-y": {"type": "string"}, "namespace": {"type": "string"},
            "when": {"type": "string", "format": "date-time"},
            "ratio": {"type": "number"},
            "url": {"type": "string", "maxLength": 256}, "ip": {"type": "string", "maxLength": 64},
            "net": {"type": "string", "maxLength": 64}, "cpu": {"type": "string", "maxLength": 64},
            "v": {"type": "string", "maxLength": 64},
        }}}})
    }

    fn check(rules: Value, spec: Value, old: Option<Value>) -> Vec<String> {
        let (n, errs) = compiled(rule_schema(rules));
        assert!(errs.is_empty(), "{errs:?}");
        let obj =
            json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "n"}, "spec": spec});
        let old = old.map(
            |o| json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "n"}, "spec": o}),
        );
        validate(&n, &obj, old.as_ref())
            .0
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn escaping() {
        assert_eq!(escape("foo").as_deref(), Some("foo"));
        assert_eq!(escape("x-y").as_deref(), Some("x__dash__y"));
        assert_eq!(escape("a.b/c").as_deref(), Some("a__dot__b__slash__c"));
        assert_eq!(escape("a__b").as_deref(), Some("a__underscores__b"));
        assert_eq!(escape("namespace").as_deref(), Some("__namespace__"));
        assert_eq!(escape("1x"), None);
        assert_eq!(escape("a b"), None);
    }

    #[test]
    fn rules_messages_and_reasons() {
        assert!(check(
            json!([{"rule": "self.replicas <= self.max"}]),
            json!({"replicas": 1, "max": 2}),
            None
        )
        .is_empty());
        assert_eq!(
            check(
                json!([{"rule": "self.replicas <= self.max"}]),
                json!({"replicas": 3, "max": 2}),
                None
            ),
            vec!["spec: Invalid value: failed rule: self.replicas <= self.max"]
        );
        assert_eq!(
            check(
                json!([{"rule": "self.replicas <= self.max", "message": "too many", "fieldPath": ".replicas", "reason": "FieldValueForbidden"}]),
                json!({"replicas": 3, "max": 2}),
                None
            ),
            vec!["spec.replicas: Forbidden: too many"]
        );
        assert_eq!(
            check(
                json!([{"rule": "self.replicas <= self.max", "messageExpression": "'replicas ' + string(self.replicas) + ' > ' + string(self.max)"}]),
                json!({"replicas": 3, "max": 2}),
                None
            ),
            vec!["spec: Invalid value: replicas 3 > 2"]
        );
        assert_eq!(
            check(json!([{"rule": "self.replicas > 0"}]), json!({}), None),
            vec![
                r#"spec: Invalid value: "object": no such key: replicas evaluating rule: self.replicas > 0"#
            ]
        );
        assert!(check(
            json!([{"rule": "!has(self.replicas) || self.replicas > 0"}]),
            json!({}),
            None
        )
        .is_empty());
    }

    #[test]
    fn functions_and_types() {
        let ok = |rule: &str, spec: Value| {
            let errs = check(json!([{"rule": rule}]), spec, None);
            assert!(errs.is_empty(), "{rule}: {errs:?}");
        };
        ok(
            "self.name.startsWith('a') && self.name.endsWith('z') && self.name.contains('b')",
            json!({"name": "abz"}),
        );
        ok(
            "self.name.matches('^[a-z]+$') && size(self.name) == 3 && self.name.size() == 3",
            json!({"name": "abz"}),
        );
        ok("self.tags.all(t, t.size() > 0) && self.tags.exists(t, t == 'a') && self.tags.exists_one(t, t == 'b')", json!({"tags": ["a", "b"]}));
        ok("self.tags.map(t, t + '!') == ['a!', 'b!'] && self.tags.filter(t, t != 'a').size() == 1", json!({"tags": ["a", "b"]}));
        ok(
            "int('5') == 5 && string(5) == '5' && double(1) == 1.0 && self.ratio == 2.0",
            json!({"ratio": 2}),
        );
        ok(
            "self.x__dash__y == 'v' && self.__namespace__ == 'ns'",
            json!({"x-y": "v", "namespace": "ns"}),
        );
        ok(
            "self.when < timestamp('2030-01-01T00:00:00Z')",
            json!({"when": "2024-01-01T00:00:00Z"}),
        );
        ok("self.tags.isSorted() && self.tags.indexOf('b') == 1 && [1, 2, 3].sum() == 6 && [3, 1].min() == 1", json!({"tags": ["a", "b"]}));
        ok(
            "self.name.find('[0-9]+') == '42' && self.name.findAll('[a-z]').size() == 2",
            json!({"name": "ab42"}),
        );
        ok(
            "self.name.lowerAscii() == 'ab' && self.name.split('').size() >= 0",
            json!({"name": "AB"}),
        );
    }

    /// Two-variable comprehensions (cel-go's ext.TwoVarComprehensions): index and value over a
    /// list, key and value over a map, with kube's documented results.
    #[test]
    fn two_variable_comprehensions() {
        let ok = |rule: &str| {
            let errs = check(
                json!([{"rule": rule}]),
                json!({"name": "abz", "tags": ["a", "b"]}),
                None,
            );
            assert!(errs.is_empty(), "{rule}: {errs:?}");
        };
        for rule in [
            "self.tags.all(i, t, i < 2 && t != '')",
            "self.tags.exists(i, t, i == 1 && t == 'b') && !self.tags.exists(i, t, i == 0 && t == 'b')",
            "self.tags.existsOne(i, t, t == 'a')",
            "{'a': 1, 'b': 2}.all(k, v, v > 0 && k != '')",
            "{'a': 1, 'b': 2}.exists(k, v, k == 'b' && v == 2)",
            "self.tags.transformList(i, t, t + string(i)) == ['a0', 'b1']",
            "self.tags.transformList(i, t, i > 0, t) == ['b']",
            "self.tags.transformMap(i, t, t) == {0: 'a', 1: 'b'}",
            "{'a': 1, 'b': 2}.transformMap(k, v, v > 1, v * 10) == {'b': 20}",
            "{'a': 1}.transformMapEntry(k, v, {v: k}) == {1: 'a'}",
            "[1, 2].transformMapEntry(i, v, {string(v): i}) == {'1': 0, '2': 1}",
            "self.tags.all(i, t, self.tags.exists(j, u, j == i && u == t))",
            "self.tags.all(i, t, [t].all(t, t != ''))",
        ] {
            ok(rule);
        }
        let errs = check(
            json!([{"rule": "[1, 1].transformMapEntry(i, v, {v: i}) == {}"}]),
            json!({"name": "abz", "tags": ["a"]}),
            None,
        );
        assert!(
            errs.len() == 1 && errs[0].contains("already exists"),
            "{errs:?}"
        );
    }

    /// kube's sets and named-format libraries.
    #[test]
    fn sets_and_formats() {
        let ok = |rule: &str| {
            let errs = check(
                json!([{"rule": rule}]),
                json!({"name": "abz", "tags": ["a", "b"]}),
                None,
            );
            assert!(errs.is_empty(), "{rule}: {errs:?}");
        };
        for rule in [
            "sets.contains(self.tags, ['a']) && !sets.contains(self.tags, ['c'])",
            "sets.equivalent(self.tags, ['b', 'a', 'a']) && !sets.equivalent(self.tags, ['a'])",
            "sets.intersects(self.tags, ['x', 'b']) && !sets.intersects(self.tags, ['x'])",
            "sets.contains([1, 2], [1.0])",
            "!format.dns1123Label().validate(self.name).hasValue()",
            "format.dns1123Label().validate('Not_A_Label').hasValue()",
            "format.dns1123Label().validate('A').value()[0].startsWith('a lowercase RFC 1123 label')",
            "format.named('dns1123Subdomain').hasValue() && !format.named('nope').hasValue()",
            "!format.named('labelValue').value().validate('ok-1').hasValue()",
            "!format.dns1123LabelPrefix().validate('web-').hasValue()",
            "format.uuid().validate('x').value() == ['does not match the UUID format']",
            "!format.uri().validate('https://example.com/').hasValue()",
            "!format.date().validate('2024-02-29').hasValue() && format.datetime().validate('x').hasValue()",
        ] {
            ok(rule);
        }
    }

    /// kube's URL, IP, CIDR, quantity and semver libraries, with the examples kube documents:
    /// each rule holds, and a bad literal is a runtime error naming the rule.
    #[test]
    fn kubernetes_libraries() {
        let ok = |rule: &str, spec: Value| {
            let errs = check(json!([{"rule": rule}]), spec, None);
            assert!(errs.is_empty(), "{rule}: {errs:?}");
        };
        let spec = json!({"url": "https://user@example.com:8080/a%20b?x=1&x=2&y=",
                          "ip": "10.1.2.3", "net": "10.0.0.0/8", "cpu": "1500m", "v": "1.2.3"});
        for rule in [
            "isURL(self.url) && !isURL('example.com') && isURL('/absolute-path')",
            "url(self.url).getScheme() == 'https' && url(self.url).getHost() == 'example.com:8080'",
            "url(self.url).getHostname() == 'example.com' && url(self.url).getPort() == '8080'",
            "url(self.url).getEscapedPath() == '/a%20b' && url(self.url).getQuery() == {'x': ['1', '2'], 'y': ['']}",
            "url('https://[::1]:80/').getHostname() == '::1' && url('https://[::1]/').getPort() == ''",
            "isIP(self.ip) && !isIP('10.1.2.3/8') && !isIP('::ffff:1.2.3.4') && !isIP('fe80::1%eth0')",
            "ip(self.ip).family() == 4 && ip('::1').family() == 6 && ip('::1').isLoopback()",
            "ip('0.0.0.0').isUnspecified() && ip('224.0.0.1').isLinkLocalMulticast() && ip('fe80::1').isLinkLocalUnicast()",
            "ip(self.ip).isGlobalUnicast() && !ip('255.255.255.255').isGlobalUnicast()",
            "ip.isCanonical('2001:db8::1') && !ip.isCanonical('2001:DB8::1') && string(ip('2001:DB8::1')) == '2001:db8::1'",
            "ip('10.1.2.3') == ip(self.ip) && ip('10.1.2.3') != ip('10.1.2.4')",
            "isCIDR(self.net) && !isCIDR('10.0.0.0/33') && cidr(self.net).containsIP(self.ip) && cidr(self.net).containsIP(ip('10.9.9.9'))",
            "cidr('10.0.0.0/8').containsCIDR('10.1.0.0/16') && !cidr('10.1.0.0/16').containsCIDR(cidr('10.0.0.0/8'))",
            "cidr('192.168.1.5/24').masked() == cidr('192.168.1.0/24') && cidr('192.168.1.5/24').prefixLength() == 24",
            "string(cidr('192.168.1.5/24').ip()) == '192.168.1.5' && string(cidr('10.0.0.0/8')) == '10.0.0.0/8'",
            "isQuantity(self.cpu) && !isQuantity('1.5 Gi') && quantity(self.cpu).isGreaterThan(quantity('1'))",
            "quantity('50k').asInteger() == 50000 && quantity('50k').isInteger() && !quantity('1500m').isInteger()",
            "quantity('1Gi') == quantity('1024Mi') && quantity('1').add(quantity('500m')) == quantity(self.cpu)",
            "quantity(self.cpu).sub(1).compareTo(quantity('500m')) == 0 && quantity('-1').sign() == -1",
            "quantity('9999999999999999999999999999999999999G').isInteger() == false",
            "quantity('1500m').asApproximateFloat() == 1.5 && quantity('1').isLessThan(quantity(self.cpu))",
            "isSemver(self.v) && !isSemver('v1.2.3') && isSemver('v1.2', true) && semver('v1.2', true) == semver('1.2.0')",
            "semver(self.v).major() == 1 && semver(self.v).minor() == 2 && semver(self.v).patch() == 3",
            "semver('1.0.0-alpha').isLessThan(semver('1.0.0')) && semver('1.10.0').isGreaterThan(semver('1.9.0'))",
            "semver('1.0.0+a') == semver('1.0.0+b') && semver('2.0.0').compareTo(semver('1.0.0')) == 1",
        ] {
            ok(rule, spec.clone());
        }
        for (rule, want) in [
            ("url('not a url').getScheme() == ''", "url"),
            ("ip('1.2.3') == ip('1.2.3.4')", "ip"),
            ("cidr('10.0.0.0') == cidr('10.0.0.0/8')", "cidr"),
            ("quantity('1.5 Gi').sign() == 1", "quantity"),
            ("quantity('1500m').asInteger() == 1", "asInteger"),
            ("semver('v1.2.3').major() == 1", "semver"),
        ] {
            let errs = check(json!([{"rule": rule}]), spec.clone(), None);
            assert_eq!(errs.len(), 1, "{rule}: {errs:?}");
            assert!(errs[0].contains(want), "{rule}: {errs:?}");
        }
    }

    #[test]
    fn root_rules_see_type_meta_and_name() {
        let (n, errs) = compiled(json!({"type": "object",
            "x-kubernetes-validations": [{"rule": "self.metadata.name.startsWith('n') && self.kind == 'K'"}],
            "properties": {"spec": {"type": "object"}}}));
        assert!(errs.is_empty(), "{errs:?}");
        let obj =
            json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "other"}, "spec": {}});
        let errs: Vec<String> = validate(&n, &obj, None)
            .0
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(errs, vec!["<nil>: Invalid value: failed rule: self.metadata.name.startsWith('n') && self.kind == 'K'"]);
    }

    #[test]
    fn transition_rules() {
        let rules = json!([{"rule": "self.name == oldSelf.name", "message": "name is immutable"}]);
        assert!(check(rules.clone(), json!({"name": "b"}), None).is_empty());
        assert!(check(
            rules.clone(),
            json!({"name": "a"}),
            Some(json!({"name": "a"}))
        )
        .is_empty());
        assert_eq!(
            check(rules, json!({"name": "b"}), Some(json!({"name": "a"}))),
            vec!["spec: Invalid value: name is immutable"]
        );
        let (n, errs) = compiled(
            json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "name": {"type": "string", "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "immutable"}]}}}}}),
        );
        assert!(errs.is_empty());
        let errs: Vec<String> = validate(
            &n,
            &json!({"spec": {"name": "b"}}),
            Some(&json!({"spec": {"name": "a"}})),
        )
        .0
        .iter()
        .map(|e| e.to_string())
        .collect();
        assert_eq!(errs, vec![r#"spec.name: Invalid value: "b": immutable"#]);
    }

    #[test]
    fn compile_errors() {
        let (_, errs) = compiled(rule_schema(json!([{"rule": "self.replicas >"}])));
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with("openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: Invalid value: apiextensions.ValidationRule{Rule:\"self.replicas >\""), "{}", errs[0]);
        assert!(
            errs[0].contains("compilation failed: ERROR: <input>:1:"),
            "{}",
            errs[0]
        );
        let (_, errs) = compiled(rule_schema(json!([{"rule": "self.nope == 1"}])));
        assert!(
            errs[0].contains("compilation failed: ERROR: <input>:1:5: undefined field 'nope'"),
            "{}",
            errs[0]
        );
        let (_, errs) = compiled(rule_schema(json!([{"rule": "foo(self) == 1"}])));
        assert!(
            errs[0].contains("undeclared reference to 'foo'"),
            "{}",
            errs[0]
        );
        let (_, errs) = compiled(rule_schema(json!([{"rule": "bar == 1"}])));
        assert!(
            errs[0].contains("undeclared reference to 'bar'"),
            "{}",
            errs[0]
        );
    }

    #[test]
    fn cost_limits() {
        // Two nested comprehensions over unbounded lists of unbounded strings.
        let (_, errs) = compiled(
            json!({"type": "object", "properties": {"spec": {"type": "object",
            "x-kubernetes-validations": [{"rule": "self.a.all(x, self.b.all(y, x != y))"}],
            "properties": {"a": {"type": "array", "items": {"type": "string"}},
                           "b": {"type": "array", "items": {"type": "string"}}}}}}),
        );
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].starts_with("openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: Forbidden: estimated rule cost exceeds budget by factor of more than 100x"), "{}", errs[0]);
        // Bounded, the same rule is fine.
        let (_, errs) = compiled(
            json!({"type": "object", "properties": {"spec": {"type": "object",
            "x-kubernetes-validations": [{"rule": "self.a.all(x, self.b.all(y, x != y))"}],
            "properties": {"a": {"type": "array", "maxItems": 100, "items": {"type": "string", "maxLength": 64}},
                           "b": {"type": "array", "maxItems": 100, "items": {"type": "string", "maxLength": 64}}}}}}),
        );
        assert!(errs.is_empty(), "{errs:?}");
        // Transition rules are refused where old values cannot be matched.
        let (_, errs) = compiled(
            json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "list": {"type": "array", "maxItems": 5, "items": {"type": "string", "maxLength": 5,
                "x-kubernetes-validations": [{"rule": "self == oldSelf"}]}}}}}}),
        );
        assert_eq!(
            errs,
            vec![
                r#"openAPIV3Schema.properties[spec].properties[list].items.x-kubernetes-validations[0].rule: Invalid value: "self == oldSelf": oldSelf cannot be used on the uncorrelatable portion of the schema within openAPIV3Schema.properties[spec].properties[list]"#
            ]
        );
    }

    #[test]
    fn comprehension_variables_need_only_the_fields_they_read() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
            "x-kubernetes-validations": [
                {"rule": "self.items.all(i, i.name != '' && (!has(i.env) || i.env.size() < 3))"},
                {"rule": "!has(self.extra) || self.pairs.exists(p, p.key == 'a')"}],
            "properties": {
                "items": {"type": "array", "maxItems": 10, "items": {"type": "object", "properties": {
                    "name": {"type": "string", "maxLength": 8},
                    "env": {"type": "array", "maxItems": 5, "items": {"type": "string", "maxLength": 8}},
                    "big": {"type": "object", "properties": {"x": {"type": "string", "maxLength": 8}}}}}},
                "pairs": {"type": "array", "maxItems": 10, "items": {"type": "object", "properties": {
                    "key": {"type": "string", "maxLength": 8}}}},
                "extra": {"type": "object", "properties": {"deep": {"type": "string", "maxLength": 8}}}}}}});
        let (n, errs) = compiled(schema);
        assert!(errs.is_empty(), "{errs:?}");
        let spec = n.property("spec").unwrap();
        let fields = |need: &Need| match need {
            Need::Fields(m) => m.clone(),
            Need::All => panic!("all of it"),
        };
        let top = fields(&spec.need);
        let item = fields(&fields(&top["items"])[LIST_ELEMENTS]);
        assert_eq!(item.keys().collect::<Vec<_>>(), ["env", "name"]);
        assert_eq!(item["name"], Need::All);
        assert_eq!(item["env"], Need::All);
        assert_eq!(top["extra"], Need::default(), "has() reads presence only");
        let pair = fields(&fields(&top["pairs"])[LIST_ELEMENTS]);
        assert_eq!(pair.keys().collect::<Vec<_>>(), ["key"]);

        let run = |spec: Value| -> Vec<String> {
            let obj =
                json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "n"}, "spec": spec});
            validate(&n, &obj, None)
                .0
                .iter()
                .map(|e| e.to_string())
                .collect()
        };
        assert!(run(
            json!({"items": [{"name": "a", "big": {"x": "y"}}, {"name": "b", "env": ["1"]}],
            "pairs": [{"key": "b"}]})
        )
        .is_empty());
        assert_eq!(
            run(json!({"items": [{"name": "a", "env": ["1", "2", "3"]}]})),
            vec!["spec: Invalid value: failed rule: self.items.all(i, i.name != '' && (!has(i.env) || i.env.size() < 3))"]
        );
        assert_eq!(
            run(json!({"items": [], "extra": {}, "pairs": [{"key": "b"}]})),
            vec!["spec: Invalid value: failed rule: !has(self.extra) || self.pairs.exists(p, p.key == 'a')"]
        );
        assert!(
            run(json!({"items": [], "extra": {"deep": "x"}, "pairs": [{"key": "a"}]})).is_empty()
        );
        // Used whole, the element is needed whole.
        let (n, _) = compiled(rule_schema(json!([{"rule": "self.tags.all(t, t != '')"}])));
        let top = fields(&n.property("spec").unwrap().need);
        assert_eq!(fields(&top["tags"])[LIST_ELEMENTS], Need::All);
    }
}
