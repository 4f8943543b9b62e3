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
//! * **Compile-time checks and cost** ([`crate::cel_check`]): what cel-go's checker refuses in
//!   kube's environment (unknown identifiers, functions and fields; fields a
//!   preserve-unknown-fields object does not declare; a rule that is not a bool), and kube's
//!   static cost estimate, number for number: sizes from `maxItems`, `maxProperties`,
//!   `maxLength` (or what a 3 MiB request could hold), each rule's estimate times the number of
//!   times it can run, checked against kube-apiserver's limits (10M per rule, 100M per CRD) with
//!   kube's messages.
//! * **Runtime cost**: each run is charged kube's estimate for the values it runs on, against
//!   kube's limits (1M units a run, 10M an object), with kube's messages; the same object costs
//!   the same on any machine.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

use cel::common::ast::{Expr, IdedExpr};
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
pub(crate) const PER_RULE_COST_LIMIT: u64 = 10_000_000;
/// kube-apiserver's `StaticEstimatedCRDCostLimit`: the most all rules of a schema may cost.
pub(crate) const CRD_COST_LIMIT: u64 = 100_000_000;
/// kube-apiserver's `RuntimeCELCostBudget`: what the rules of one object may cost together.
const RUNTIME_BUDGET: u64 = 10_000_000;
/// kube-apiserver's `PerCallLimit`: what one run of one expression may cost.
const PER_CALL_LIMIT: u64 = 1_000_000;
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
pub(crate) const LIST_ELEMENTS: &str = "[]";

impl Need {
    /// Only the presence of `path` is read: its parents become `Fields`, nothing becomes `All`.
    pub(crate) fn mark_present(&mut self, path: &[&str]) {
        match (self, path.split_first()) {
            (Need::All, _) | (_, None) => {}
            (Need::Fields(m), Some((first, rest))) => {
                m.entry(first.to_string()).or_default().mark_present(rest);
            }
        }
    }

    pub(crate) fn mark(&mut self, path: &[&str]) {
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

/// A compiled `messageExpression`.
#[derive(Debug)]
pub(crate) struct MessageExpression {
    pub source: String,
    pub program: Program,
    pub depth: usize,
    /// The checker's parse, and its estimated cost.
    pub checked: Program,
    pub cost: u64,
}

/// A compiled rule.
#[derive(Debug)]
pub(crate) struct Rule {
    pub rule: String,
    pub message: String,
    pub message_expression: Option<MessageExpression>,
    pub reason: Option<Reason>,
    /// The normalized `fieldPath` (`foo.bar`, `foo[key]`), appended to the node's path.
    pub field_path: Option<String>,
    pub program: Program,
    /// The depth of `program`'s tree.
    pub depth: usize,
    /// The checker's parse (to estimate one run on given values), and the estimated cost of a
    /// run on any value the schema allows.
    pub checked: Program,
    pub cost: u64,
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
    /// The checker's parse, and the estimated cost of a run on any values (`u64::MAX` where
    /// it depends on their sizes).
    checked: Program,
    bound: u64,
}

/// What the CEL expressions of one admission decision may cost together, in kube's units.
#[derive(Debug)]
pub struct CostBudget {
    remaining: u64,
}

impl CostBudget {
    /// kube's `RuntimeCELCostBudget`: the expressions of one policy evaluation.
    pub fn policy() -> CostBudget {
        CostBudget {
            remaining: RUNTIME_BUDGET,
        }
    }

    /// kube's `RuntimeCELCostBudgetMatchConditions`: a webhook's match conditions.
    pub fn match_conditions() -> CostBudget {
        CostBudget {
            remaining: 2_500_000,
        }
    }
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
        let checked = on_big_stack(|| check_env().compile(source).map_err(|e| e.to_string()))??;
        let bound = on_big_stack(|| crate::cel_check::untyped_cost(checked.expression(), &[]))?;
        Ok(Expression {
            source: source.to_string(),
            program,
            depth,
            variables,
            checked,
            bound,
        })
    }

    /// [`Expression::eval`], charged to `budget` what kube's estimator gives for these values
    /// (deterministic): a run over kube's per-call limit, or over what is left of the budget,
    /// is an error instead.
    pub fn eval_within(
        &self,
        vars: &[(&str, &Value)],
        budget: &mut CostBudget,
    ) -> Result<Value, String> {
        let cost = if self.bound <= PER_CALL_LIMIT {
            self.bound
        } else {
            let checked = &self.checked;
            let estimate = || crate::cel_check::untyped_cost(checked.expression(), vars);
            if self.depth <= INLINE_EVAL_DEPTH {
                estimate()
            } else {
                on_big_stack(estimate)?
            }
        };
        if cost > budget.remaining {
            budget.remaining = 0;
            return Err(
                "validation failed due to running out of cost budget, no further validation rules will be run"
                    .into(),
            );
        }
        if cost > PER_CALL_LIMIT {
            return Err("operation cancelled: actual cost limit exceeded".into());
        }
        budget.remaining -= cost;
        self.eval(vars)
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
// Compilation
// ---------------------------------------------------------------------------------------------

/// Where a node sits, for compiling its rules.
#[derive(Clone)]
pub(crate) struct Site {
    /// The schema path (`spec.versions[0].schema.openAPIV3Schema.properties[spec]`).
    pub path: String,
    /// How many times a rule here can run, when the `maxItems` and `maxProperties` of every
    /// list and map above bound it (kube's `CELSchemaContext.MaxCardinality`).
    pub cardinality: Option<u64>,
    /// The first ancestor below which old values do not correlate.
    pub uncorrelatable: Option<String>,
    /// A resource root (the custom resource or an embedded resource).
    pub resource: bool,
}

/// The estimated costs of a schema's rules: their total, and the most expensive ones (those
/// over 1% of the limit, at most four, costliest first), as kube's `TotalCost` keeps them.
#[derive(Debug, Default)]
pub(crate) struct Costs {
    pub total: u64,
    pub most_expensive: Vec<(String, u64)>,
}

impl Costs {
    fn observe(&mut self, path: String, cost: u64) {
        self.total = self.total.saturating_add(cost);
        if cost < CRD_COST_LIMIT / 100 {
            return;
        }
        self.most_expensive.push((path, cost));
        self.most_expensive.sort_by_key(|e| std::cmp::Reverse(e.1));
        self.most_expensive.truncate(4);
    }
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

/// A rule compiled and checked: the program (and its depth), whether it uses `oldSelf`, its
/// estimated cost (the upper end of kube's estimate), what of `self` it reads, and the
/// checker's parse (to estimate a run on given values).
type Compiled = ((Program, usize), bool, u64, Need, Program);

/// The environment of the checker's parse: cel-go's expansion of every macro.
fn check_env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Env::stdlib();
        crate::cel_macros::register_checked(&mut env);
        env
    })
}

/// What an expression must evaluate to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Output {
    Bool,
    String,
}

/// Compiles and checks a rule on a large stack (see [`parse_bounded`]; the checker recurses
/// over the tree too).
fn compile_expression(
    source: &str,
    n: &Node,
    site: &Site,
    optional_old_self: bool,
    output: Output,
    prefix: &str,
) -> Result<Compiled, String> {
    on_big_stack(|| compile_expression_here(source, n, site, optional_old_self, output, prefix))?
}

/// Err carries kube's detail: `prefix` and the compiler's message, or a wrong output type.
fn compile_expression_here(
    source: &str,
    n: &Node,
    site: &Site,
    optional_old_self: bool,
    output: Output,
    prefix: &str,
) -> Result<Compiled, String> {
    let failed = |detail: String| format!("{prefix}{detail}");
    let (program, depth) = parse_bounded(source).map_err(failed)?;
    // The same source parses for the interpreter and for the checker; only the expansion of
    // two-variable comprehensions differs.
    let checked = check_env()
        .compile(source)
        .map_err(|e| failed(e.to_string()))?;
    let mut checker = crate::cel_check::Checker::new(n, site.resource, optional_old_self);
    let (cost, ty) = checker.check(checked.expression());
    if checker.nodes > MAX_AST_NODES {
        return Err(failed(format!(
            "expression has {} nodes, more than the {MAX_AST_NODES} allowed",
            checker.nodes
        )));
    }
    if !checker.errors.is_empty() {
        return Err(failed(format_errors(&checked, &checker.errors)));
    }
    match (output, ty) {
        (Output::Bool, Some(t)) if t != "bool" => {
            return Err("cel expression must evaluate to a bool".into())
        }
        (Output::String, Some(t)) if t != "string" => {
            return Err("messageExpression must evaluate to a string".into())
        }
        _ => {}
    }
    let (uses_old_self, need) = (checker.uses_old_self, checker.need);
    Ok(((program, depth), uses_old_self, cost.max, need, checked))
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

/// Compile the rules of one node. Returns the rules, the CRD errors and what the rules read;
/// their estimated costs (rules: times the cardinality) go to `costs`.
pub(crate) fn compile_node(
    n: &Node,
    site: &Site,
    costs: &mut Costs,
) -> (Vec<Rule>, Vec<FieldError>, Need) {
    let mut need = Need::default();
    let mut rules = Vec::new();
    let mut errs = Vec::new();
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
        let optional_old_self = raw.get("optionalOldSelf").and_then(Value::as_bool);
        let compiled = compile_expression(
            rule,
            n,
            site,
            optional_old_self == Some(true),
            Output::Bool,
            "compilation failed: ",
        );
        let cost = compiled.as_ref().map_or(0, |(_, _, c, _, _)| *c);
        let cardinality = site
            .cardinality
            .unwrap_or_else(|| crate::cel_check::max_cardinality(n));
        let expression_cost = cost.saturating_mul(cardinality);
        if expression_cost > PER_RULE_COST_LIMIT {
            errs.push(FieldError::forbidden(
                format!("{base}.rule"),
                cost_error_message("estimated rule cost", expression_cost, PER_RULE_COST_LIMIT),
            ));
        }
        costs.observe(format!("{base}.rule"), expression_cost);
        let uses_old_self = compiled.as_ref().is_ok_and(|(_, o, _, _, _)| *o);
        let old_self_error = if uses_old_self {
            site.uncorrelatable.as_ref().map(|u| {
                FieldError::invalid(
                    format!("{base}.rule"),
                    rule,
                    format!("oldSelf cannot be used on the uncorrelatable portion of the schema within {u}"),
                )
            })
        } else {
            optional_old_self.map(|o| {
                FieldError::invalid_rendered(
                    format!("{base}.optionalOldSelf"),
                    o.to_string(),
                    "may not be set if oldSelf is not used in rule",
                )
            })
        };
        let ((program, depth), checked) = match compiled {
            Ok((p, _, _, nd, checked)) => {
                need.merge(&nd);
                (p, checked)
            }
            Err(detail) => {
                errs.push(FieldError::invalid_rendered(
                    format!("{base}.rule"),
                    go_rule(raw),
                    detail,
                ));
                errs.extend(old_self_error);
                continue;
            }
        };
        let message_expression = match raw.get("messageExpression").and_then(Value::as_str) {
            None | Some("") => None,
            Some(me) => match compile_expression(
                me,
                n,
                site,
                optional_old_self == Some(true),
                Output::String,
                "messageExpression compilation failed: ",
            ) {
                Ok(((p, depth), _, c, nd, message_checked)) => {
                    need.merge(&nd);
                    // kube does not multiply a message's cost by the rule's cardinality.
                    if c > PER_RULE_COST_LIMIT {
                        errs.push(FieldError::forbidden(
                            format!("{base}.messageExpression"),
                            cost_error_message(
                                "estimated messageExpression cost",
                                c,
                                PER_RULE_COST_LIMIT,
                            ),
                        ));
                    }
                    costs.observe(format!("{base}.messageExpression"), c);
                    Some(MessageExpression {
                        source: me.to_string(),
                        program: p,
                        depth,
                        checked: message_checked,
                        cost: c,
                    })
                }
                Err(detail) => {
                    errs.push(FieldError::invalid_rendered(
                        format!("{base}.messageExpression"),
                        go_rule(raw),
                        detail,
                    ));
                    errs.extend(old_self_error);
                    continue;
                }
            },
        };
        errs.extend(old_self_error);
        rules.push(Rule {
            rule: rule.to_string(),
            message: message.to_string(),
            message_expression,
            reason,
            field_path,
            program,
            depth,
            checked,
            cost,
            uses_old_self,
            optional_old_self: optional_old_self == Some(true),
        });
    }
    (rules, errs, need)
}

/// kube's `getCostErrorMessage`.
pub(crate) fn cost_error_message(name: &str, cost: u64, limit: u64) -> String {
    let factor = cost as f64 / limit as f64;
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

/// kube's `extractMaxElements`: how many values a node holds below it (None: unbounded).
fn max_children(n: &Node) -> Option<u64> {
    let non_negative = |v: i64| v.max(0) as u64;
    match n.type_name.as_str() {
        "object" if !matches!(n.additional, Additional::Absent) => {
            n.max_properties.map(non_negative)
        }
        "array" => n.max_items.map(non_negative),
        _ => Some(1),
    }
}

/// Compile the rules of a whole tree in place; returns the CRD errors. The estimated costs go
/// to `costs`.
pub(crate) fn compile_tree(n: &mut Node, site: Site, costs: &mut Costs) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut need = Need::default();
    if !n.raw_rules.is_empty() {
        let (rules, e, nd) = compile_node(n, &site, costs);
        n.rules = rules;
        errs.extend(e);
        need.merge(&nd);
    }
    for (i, a) in n.all_of.iter_mut().enumerate() {
        if !a.raw_rules.is_empty() {
            // allOf rules see the value of this node.
            let sub = Site {
                path: format!("{}.allOf[{i}]", site.path),
                ..site.clone()
            };
            let (rules, e, nd) = compile_node(a, &sub, costs);
            a.rules = rules;
            errs.extend(e);
            need.merge(&nd);
        }
    }
    n.need = need;
    let cardinality = site
        .cardinality
        .and_then(|c| max_children(n).map(|m| c.saturating_mul(m)));
    let correlatable = !n.map_atomic;
    for (k, p) in n.properties.iter_mut() {
        let path = format!("{}.properties[{k}]", site.path);
        let uncorrelatable = site
            .uncorrelatable
            .clone()
            .or_else(|| (!correlatable).then(|| site.path.clone()));
        let resource = p.embedded;
        errs.extend(compile_tree(
            p,
            Site {
                path,
                cardinality,
                uncorrelatable,
                resource,
            },
            costs,
        ));
    }
    if let Some(items) = n.items.as_deref_mut() {
        let uncorrelatable = site
            .uncorrelatable
            .clone()
            .or_else(|| (n.list_type != ListType::Map).then(|| site.path.clone()));
        let resource = items.embedded;
        errs.extend(compile_tree(
            items,
            Site {
                path: format!("{}.items", site.path),
                cardinality,
                uncorrelatable,
                resource,
            },
            costs,
        ));
    }
    if let Additional::Schema(a) = &mut n.additional {
        let uncorrelatable = site
            .uncorrelatable
            .clone()
            .or_else(|| (!correlatable).then(|| site.path.clone()));
        let resource = a.embedded;
        errs.extend(compile_tree(
            a,
            Site {
                path: format!("{}.additionalProperties", site.path),
                cardinality,
                uncorrelatable,
                resource,
            },
            costs,
        ));
    }
    n.compute_flags();
    errs
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

/// Where a rule runs: its node (and the node it was compiled on: an allOf member's rules are
/// compiled on the member), the value, the old value, and whether the node is a resource root.
#[derive(Clone, Copy)]
struct At<'a> {
    node: &'a Node,
    compiled_on: &'a Node,
    value: &'a Value,
    old: Option<&'a Value>,
    resource: bool,
}

/// One run of an expression: the checker's parse and the values it runs on.
struct Run<'a> {
    checked: &'a Program,
    /// The depth of the tree (deep ones are estimated on a large stack).
    depth: usize,
    node: &'a Node,
    resource: bool,
    optional_old_self: bool,
    value: &'a Value,
    old: Option<&'a Value>,
    /// The estimate for any value the schema allows.
    bound: u64,
}

impl Run<'_> {
    /// The estimate for the values it runs on.
    fn cost(&self) -> u64 {
        let estimate = || {
            crate::cel_check::run_cost(
                self.checked.expression(),
                self.node,
                self.resource,
                self.optional_old_self,
                (self.value, self.old),
            )
        };
        if self.depth <= INLINE_EVAL_DEPTH {
            estimate()
        } else {
            on_big_stack(estimate).unwrap_or(u64::MAX)
        }
    }
}

/// Why a run may not happen.
enum Over {
    /// The object's budget is spent.
    Budget,
    /// The run alone costs more than one call may.
    Call,
}

/// The CEL budget of one object, in kube's cost units (deterministic: the same object costs
/// the same on any machine). Each run is charged what kube's estimator gives for the values it
/// runs on. While the schema's bounds of all runs so far fit the budget together, no run can
/// spend it, so those runs are charged their bound without estimating them again; once they do
/// not, every run so far is estimated on its values and from then each run is.
#[derive(Default)]
struct Meter<'a> {
    bounds: u64,
    exact: bool,
    spent: u64,
    runs: Vec<Run<'a>>,
}

impl<'a> Meter<'a> {
    fn spent_all(&self) -> bool {
        self.exact && self.spent >= RUNTIME_BUDGET
    }

    fn charge(&mut self, run: Run<'a>) -> Result<(), Over> {
        if !self.exact && self.bounds.saturating_add(run.bound) > RUNTIME_BUDGET {
            self.exact = true;
            self.spent = self
                .runs
                .drain(..)
                .fold(0u64, |sum, r| sum.saturating_add(r.cost()));
        }
        let cost = if self.exact || run.bound > PER_CALL_LIMIT {
            run.cost()
        } else {
            run.bound
        };
        if self.exact {
            if cost > RUNTIME_BUDGET.saturating_sub(self.spent) {
                return Err(Over::Budget);
            }
            self.spent += cost;
        } else {
            self.bounds += run.bound;
        }
        if cost > PER_CALL_LIMIT {
            return Err(Over::Call);
        }
        if !self.exact {
            self.runs.push(run);
        }
        Ok(())
    }
}

struct RuleWalker<'a> {
    /// kube's field.Path of the current node, rendered.
    path: String,
    errs: Vec<FieldError>,
    meter: Meter<'a>,
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
        meter: Meter::default(),
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

    /// The field a rule's failure is reported at: the node, then the rule's `fieldPath`.
    fn rule_field(&self, rule: &Rule) -> String {
        let mut path = self.path.clone();
        if let Some(fp) = &rule.field_path {
            if !path.is_empty() && !fp.starts_with('[') {
                path.push('.');
            }
            path.push_str(fp);
        }
        if path.is_empty() {
            "<nil>".to_string()
        } else {
            path
        }
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
                // Items correlate with the old list's by their keys, through one index.
                let index = old.and_then(|o| crate::validate::correlation(n, o));
                for (i, x) in items.iter().enumerate() {
                    let old_x = index
                        .as_ref()
                        .and_then(|ix| crate::validate::correlated(n, ix, x));
                    let len = self.path.len();
                    let _ = write!(self.path, "[{i}]");
                    self.node(item, x, old_x, item.embedded);
                    self.path.truncate(len);
                }
            }
            _ => {}
        }
    }

    fn rules(&mut self, n: &'a Node, v: &'a Value, old: Option<&'a Value>, resource: bool) {
        // Only errors show it.
        let type_value = || go_quote(&n.type_name);
        if self.meter.spent_all() {
            self.errs.push(FieldError::invalid_rendered(
                self.field(),
                type_value(),
                "validation failed due to running out of cost budget, no further validation rules will be run",
            ));
            self.exhausted = true;
            return;
        }
        let self_val = to_val_need(v, n, resource, &n.need);
        let mut ctx = Context::with_env(env().clone());
        ctx.add_variable_as_val("self", self_val);
        // Each rule with the node it was compiled on (allOf rules on their allOf schema).
        let all: Vec<(&'a Rule, &'a Node)> = n
            .rules
            .iter()
            .map(|r| (r, n))
            .chain(
                n.all_of
                    .iter()
                    .flat_map(|a| a.rules.iter().map(move |r| (r, a))),
            )
            .collect();
        let needs_old = all.iter().any(|(r, _)| r.uses_old_self);
        let mut optional_ctx = None;
        if needs_old {
            if let Some(o) = old {
                ctx.add_variable_as_val("oldSelf", to_val_need(o, n, resource, &n.need));
            }
            if all.iter().any(|(r, _)| r.optional_old_self) {
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
        for (rule, compiled_on) in all {
            if rule.uses_old_self && old.is_none() && !rule.optional_old_self {
                continue;
            }
            let run = Run {
                checked: &rule.checked,
                depth: rule.depth,
                node: compiled_on,
                resource,
                optional_old_self: rule.optional_old_self,
                value: v,
                old,
                bound: rule.cost,
            };
            match self.meter.charge(run) {
                Ok(()) => {}
                Err(over) => {
                    let detail = match over {
                        Over::Budget => "validation failed due to running out of cost budget, no further validation rules will be run".to_string(),
                        Over::Call => format!(
                            "'operation cancelled: actual cost limit exceeded': no further validation rules will be run due to call cost exceeds limit for rule: {}",
                            rule.error_string()
                        ),
                    };
                    self.errs.push(FieldError::invalid_rendered(
                        self.field(),
                        type_value(),
                        detail,
                    ));
                    self.exhausted = true;
                    return;
                }
            }
            let c = match (&optional_ctx, rule.optional_old_self) {
                (Some(oc), true) => oc,
                _ => &ctx,
            };
            let mark = self.errs.len();
            let at = At {
                node: n,
                compiled_on,
                value: v,
                old,
                resource,
            };
            self.evaluate_rule(at, rule, c);
            if !rule.uses_old_self && self.errs.len() > mark && self.should_ratchet() {
                let ratcheted: Vec<FieldError> = self.errs.drain(mark..).collect();
                self.warnings
                    .extend(ratcheted.iter().map(ToString::to_string));
            }
            if self.exhausted {
                return;
            }
        }
    }

    fn evaluate_rule(&mut self, at: At<'a>, rule: &'a Rule, c: &Context<'_, '_>) {
        let type_value = || go_quote(&at.node.type_name);
        {
            match execute(&rule.program, rule.depth, c) {
                Ok(cel::Value::Bool(true)) => {}
                Ok(cel::Value::Bool(false)) => self.failure(at, rule, c),
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

    fn failure(&mut self, at: At<'a>, rule: &'a Rule, ctx: &Context<'_, '_>) {
        let (n, v) = (at.node, at.value);
        let mut detail = None;
        if let Some(me) = &rule.message_expression {
            let run = Run {
                checked: &me.checked,
                depth: me.depth,
                node: at.compiled_on,
                resource: at.resource,
                optional_old_self: rule.optional_old_self,
                value: v,
                old: at.old,
                bound: me.cost,
            };
            if let Err(over) = self.meter.charge(run) {
                let detail = match over {
                    Over::Budget => "messageExpression evaluation failed due to running out of cost budget, no further validation rules will be run".to_string(),
                    Over::Call => format!(
                        "no further validation rules will be run due to call cost exceeds limit for messageExpression: {}",
                        go_quote(&me.source)
                    ),
                };
                let field = self.rule_field(rule);
                self.errs.push(FieldError::invalid_rendered(
                    field,
                    go_quote(&n.type_name),
                    detail,
                ));
                self.exhausted = true;
                return;
            }
            if let Ok(cel::Value::String(s)) = execute(&me.program, me.depth, ctx) {
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
        let field = self.rule_field(rule);
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
        let errs = compile_tree(
            &mut n,
            Site {
                path: "openAPIV3Schema".into(),
                cardinality: Some(1),
                uncorrelatable: None,
                resource: true,
            },
            &mut Costs::default(),
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
        let (n, errs) = compiled(rule_schema(rules.clone()));
        assert!(errs.is_empty(), "{rules}: {errs:?}");
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
                json!([{"rule": "self.replicas <= self.max", "messageExpression": "'replicas %d > %d'.format([self.replicas, self.max])"}]),
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
            "self.tags.transformList(i, t, t.size() + i) == [1, 2]",
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
            "ip('10.1.2.3') == ip(self.ip) && !(ip('10.1.2.3') == ip('10.1.2.4'))",
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

    /// Runs are charged kube's cost units for the values they run on: the same object passes
    /// or fails the same way on any machine.
    #[test]
    fn runs_are_charged_in_cost_units_against_kubes_limits() {
        let run = |n: &Node, spec: Value| -> Vec<String> {
            let obj =
                json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "n"}, "spec": spec});
            validate(n, &obj, None)
                .0
                .iter()
                .map(|e| e.to_string())
                .collect()
        };
        // One run over a 1,400-item list inside a loop over it: accepted by the estimate
        // (bounded by maxItems), over the per-call limit when the list is full.
        let rule = "self.a.all(x, self.a.all(y, x >= 0))";
        let (n, errs) = compiled(json!({"type": "object", "properties": {"spec": {
            "type": "object", "x-kubernetes-validations": [{"rule": rule}],
            "properties": {"a": {"type": "array", "maxItems": 1400, "items": {"type": "integer"}}}}}}));
        assert!(errs.is_empty(), "{errs:?}");
        assert!(run(&n, json!({"a": vec![1; 100]})).is_empty());
        let full = json!({"a": vec![1; 1400]});
        let want = vec![format!("spec: Invalid value: \"object\": 'operation cancelled: actual cost limit exceeded': no further validation rules will be run due to call cost exceeds limit for rule: {rule}")];
        assert_eq!(run(&n, full.clone()), want);
        assert_eq!(run(&n, full), want, "the same object, the same answer");

        // Five rules on each of 24 items, 100,102 units a run on 10,000-character strings
        // (2 for `self.s`, ⌈10,001 × 0.1⌉ × ⌈400 × 0.25⌉ for the match): the 100th run would
        // pass the object's 10M budget, so it stops at items[19].
        let regex = format!("^a*{}$", "(b?)".repeat(99));
        assert_eq!(regex.len(), 400);
        let rules: Vec<Value> = (0..5)
            .map(|_| json!({"rule": format!("self.s.matches('{regex}')")}))
            .collect();
        let (n, errs) = compiled(json!({"type": "object", "properties": {"spec": {
            "type": "object", "properties": {"items": {"type": "array", "maxItems": 24,
                "items": {"type": "object", "x-kubernetes-validations": rules,
                    "properties": {"s": {"type": "string", "maxLength": 10000}}}}}}}}));
        assert!(errs.is_empty(), "{errs:?}");
        let item = json!({"s": "a".repeat(10_000)});
        assert!(run(&n, json!({"items": vec![item.clone(); 19]})).is_empty());
        assert_eq!(
            run(&n, json!({"items": vec![item; 24]})),
            vec!["spec.items[19]: Invalid value: \"object\": validation failed due to running out of cost budget, no further validation rules will be run"]
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
