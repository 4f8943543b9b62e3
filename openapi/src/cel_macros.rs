//! CEL's two-variable comprehensions (cel-go's `ext.TwoVarComprehensions`, in Kubernetes since
//! 1.32): `all`, `exists` and `existsOne` with an index (or key) and a value, and
//! `transformList`, `transformMap`, `transformMapEntry` (each with an optional filter).
//!
//! The interpreter iterates one variable, so each macro is rewritten into a one-variable
//! comprehension over the receiver's indices (a list) or keys (a map), `@kubox_keys(r)`, with
//! the value variable replaced by `r[i]` wherever it is free in the arguments:
//!
//! - `r.all(i, v, p)` → what `@kubox_keys(r).all(i, p[v := r[i]])` expands to (likewise
//!   `exists`, `existsOne`);
//! - `r.transformList(i, v, [f,] e)` → what `@kubox_keys(r).map(i, [f',] e')` expands to;
//! - `r.transformMap(k, v, [f,] e)` → a comprehension inserting `k: e'` (when `f'`) into `{}`;
//! - `r.transformMapEntry(k, v, [f,] e)` → the same, merging the one-entry maps `e'` yields
//!   (a key given twice is an error, as in cel-go).

use cel::common::ast::{
    operators, CallExpr, ComprehensionExpr, EntryExpr, Expr, IdedEntryExpr, IdedExpr, ListExpr,
    LiteralValue, MapExpr, SelectExpr,
};
use cel::parser::{Macro, MacroExprHelper, ParseError};
use cel::Env;

/// The receiver's indices (a list) or keys (a map), in iteration order.
pub(crate) const KEYS: &str = "@kubox_keys";
/// `map` with `key: value` added (an error when `key` is there already, for map entries).
pub(crate) const MAP_INSERT: &str = "@kubox_mapInsert";
/// `map` merged with the one-entry map `entry` (an error when its key is there already).
pub(crate) const MAP_MERGE: &str = "@kubox_mapMerge";

/// A deep copy of `e` with fresh ids.
fn fresh(h: &mut MacroExprHelper<'_>, e: &IdedExpr) -> IdedExpr {
    let expr = match &e.expr {
        Expr::Call(c) => Expr::Call(CallExpr {
            func_name: c.func_name.clone(),
            target: c.target.as_ref().map(|t| Box::new(fresh(h, t))),
            args: c.args.iter().map(|a| fresh(h, a)).collect(),
        }),
        Expr::Comprehension(c) => Expr::Comprehension(Box::new(ComprehensionExpr {
            iter_range: fresh(h, &c.iter_range),
            iter_var: c.iter_var.clone(),
            iter_var2: c.iter_var2.clone(),
            accu_var: c.accu_var.clone(),
            accu_init: fresh(h, &c.accu_init),
            loop_cond: fresh(h, &c.loop_cond),
            loop_step: fresh(h, &c.loop_step),
            result: fresh(h, &c.result),
        })),
        Expr::List(l) => Expr::List(ListExpr {
            elements: l.elements.iter().map(|x| fresh(h, x)).collect(),
            optional_indices: l.optional_indices.clone(),
        }),
        Expr::Map(m) => Expr::Map(MapExpr {
            entries: m.entries.iter().map(|x| fresh_entry(h, x)).collect(),
        }),
        Expr::Select(s) => Expr::Select(SelectExpr {
            operand: Box::new(fresh(h, &s.operand)),
            field: s.field.clone(),
            test: s.test,
        }),
        Expr::Struct(s) => {
            let mut s = s.clone();
            s.entries = s.entries.iter().map(|x| fresh_entry(h, x)).collect();
            Expr::Struct(s)
        }
        other => other.clone(),
    };
    h.next_expr(expr)
}

fn fresh_entry(h: &mut MacroExprHelper<'_>, e: &IdedEntryExpr) -> IdedEntryExpr {
    let expr = match &e.expr {
        EntryExpr::MapEntry(m) => {
            let mut m = m.clone();
            m.key = fresh(h, &m.key);
            m.value = fresh(h, &m.value);
            EntryExpr::MapEntry(m)
        }
        EntryExpr::StructField(f) => {
            let mut f = f.clone();
            f.value = fresh(h, &f.value);
            EntryExpr::StructField(f)
        }
    };
    let id = h.next_expr(Expr::Unspecified).id;
    IdedEntryExpr { id, expr }
}

/// `e` with every free `var` replaced by (a fresh copy of) `with`.
fn substitute(h: &mut MacroExprHelper<'_>, e: &IdedExpr, var: &str, with: &IdedExpr) -> IdedExpr {
    let expr = match &e.expr {
        Expr::Ident(name) if name == var => return fresh(h, with),
        Expr::Call(c) => Expr::Call(CallExpr {
            func_name: c.func_name.clone(),
            target: c
                .target
                .as_ref()
                .map(|t| Box::new(substitute(h, t, var, with))),
            args: c.args.iter().map(|a| substitute(h, a, var, with)).collect(),
        }),
        Expr::Comprehension(c) => {
            // Inside, a rebinding of `var` shadows it.
            let bound =
                c.iter_var == var || c.iter_var2.as_deref() == Some(var) || c.accu_var == var;
            let inner = |h: &mut MacroExprHelper<'_>, x: &IdedExpr| {
                if bound {
                    fresh(h, x)
                } else {
                    substitute(h, x, var, with)
                }
            };
            Expr::Comprehension(Box::new(ComprehensionExpr {
                iter_range: substitute(h, &c.iter_range, var, with),
                iter_var: c.iter_var.clone(),
                iter_var2: c.iter_var2.clone(),
                accu_var: c.accu_var.clone(),
                accu_init: substitute(h, &c.accu_init, var, with),
                loop_cond: inner(h, &c.loop_cond),
                loop_step: inner(h, &c.loop_step),
                result: inner(h, &c.result),
            }))
        }
        Expr::List(l) => Expr::List(ListExpr {
            elements: l
                .elements
                .iter()
                .map(|x| substitute(h, x, var, with))
                .collect(),
            optional_indices: l.optional_indices.clone(),
        }),
        Expr::Map(m) => Expr::Map(MapExpr {
            entries: m
                .entries
                .iter()
                .map(|x| {
                    let expr = match &x.expr {
                        EntryExpr::MapEntry(me) => {
                            let mut me = me.clone();
                            me.key = substitute(h, &me.key, var, with);
                            me.value = substitute(h, &me.value, var, with);
                            EntryExpr::MapEntry(me)
                        }
                        EntryExpr::StructField(f) => {
                            let mut f = f.clone();
                            f.value = substitute(h, &f.value, var, with);
                            EntryExpr::StructField(f)
                        }
                    };
                    IdedEntryExpr { id: x.id, expr }
                })
                .collect(),
        }),
        Expr::Select(s) => Expr::Select(SelectExpr {
            operand: Box::new(substitute(h, &s.operand, var, with)),
            field: s.field.clone(),
            test: s.test,
        }),
        _ => return fresh(h, e),
    };
    h.next_expr(expr)
}

fn ident_of(h: &MacroExprHelper<'_>, e: &IdedExpr) -> Result<String, ParseError> {
    match &e.expr {
        Expr::Ident(name) => Ok(name.clone()),
        _ => Err(h.new_error(e.id, "argument must be a simple name")),
    }
}

fn call(
    h: &mut MacroExprHelper<'_>,
    name: &str,
    target: Option<IdedExpr>,
    args: Vec<IdedExpr>,
) -> IdedExpr {
    h.next_expr(Expr::Call(CallExpr {
        func_name: name.to_string(),
        target: target.map(Box::new),
        args,
    }))
}

/// The pieces every two-variable macro starts from: the receiver, the two variable names, the
/// keys expression `@kubox_keys(r)`, and `r[i]`.
struct Parts {
    target: IdedExpr,
    first: String,
    second: String,
}

fn parts(
    h: &mut MacroExprHelper<'_>,
    target: &mut Option<IdedExpr>,
    args: &[IdedExpr],
) -> Result<Parts, ParseError> {
    let target = target
        .take()
        .ok_or_else(|| h.new_error(0, "a receiver is required"))?;
    let first = ident_of(h, &args[0])?;
    let second = ident_of(h, &args[1])?;
    if first == second {
        return Err(h.new_error(args[1].id, "duplicate variable name"));
    }
    Ok(Parts {
        target,
        first,
        second,
    })
}

impl Parts {
    fn keys(&self, h: &mut MacroExprHelper<'_>) -> IdedExpr {
        let t = fresh(h, &self.target);
        call(h, KEYS, None, vec![t])
    }

    /// `e` with the value variable replaced by `r[first]`.
    fn bind(&self, h: &mut MacroExprHelper<'_>, e: &IdedExpr) -> IdedExpr {
        let t = fresh(h, &self.target);
        let i = h.next_expr(Expr::Ident(self.first.clone()));
        let value = call(h, "_[_]", None, vec![t, i]);
        substitute(h, e, &self.second, &value)
    }
}

/// A one-variable comprehension over `range` with accumulator `@result`.
fn comprehension(
    h: &mut MacroExprHelper<'_>,
    range: IdedExpr,
    var: &str,
    init: Expr,
    cond: Option<IdedExpr>,
    step: IdedExpr,
    result: Option<IdedExpr>,
) -> IdedExpr {
    let accu_init = h.next_expr(init);
    let loop_cond = match cond {
        Some(c) => c,
        None => h.next_expr(Expr::Literal(LiteralValue::Boolean(true.into()))),
    };
    let result = match result {
        Some(r) => r,
        None => h.next_expr(Expr::Ident(ACCU.to_string())),
    };
    h.next_expr(Expr::Comprehension(Box::new(ComprehensionExpr {
        iter_range: range,
        iter_var: var.to_string(),
        iter_var2: None,
        accu_var: ACCU.to_string(),
        accu_init,
        loop_cond,
        loop_step: step,
        result,
    })))
}

const ACCU: &str = "@result";

fn accu(h: &mut MacroExprHelper<'_>) -> IdedExpr {
    h.next_expr(Expr::Ident(ACCU.to_string()))
}

/// The accumulator's start, loop condition, step and result of `all`, `exists` and
/// `existsOne` over a predicate (as cel-go expands them; None: `true`, or the accumulator).
type Quantifier = (Expr, Option<IdedExpr>, IdedExpr, Option<IdedExpr>);

fn quantifier_parts(h: &mut MacroExprHelper<'_>, name: &str, pred: IdedExpr) -> Quantifier {
    let bool_lit = |b: bool| Expr::Literal(LiteralValue::Boolean(b.into()));
    match name {
        "all" => {
            let a = accu(h);
            let cond = call(h, operators::NOT_STRICTLY_FALSE, None, vec![a]);
            let a = accu(h);
            let step = call(h, operators::LOGICAL_AND, None, vec![a, pred]);
            (bool_lit(true), Some(cond), step, None)
        }
        "exists" => {
            let a = accu(h);
            let not = call(h, operators::LOGICAL_NOT, None, vec![a]);
            let cond = call(h, operators::NOT_STRICTLY_FALSE, None, vec![not]);
            let a = accu(h);
            let step = call(h, operators::LOGICAL_OR, None, vec![a, pred]);
            (bool_lit(false), Some(cond), step, None)
        }
        _ => {
            // existsOne: count the matches, then compare with one.
            let a = accu(h);
            let one = h.next_expr(Expr::Literal(LiteralValue::Int(1.into())));
            let plus = call(h, operators::ADD, None, vec![a, one]);
            let a = accu(h);
            let step = call(h, operators::CONDITIONAL, None, vec![pred, plus, a]);
            let a = accu(h);
            let one = h.next_expr(Expr::Literal(LiteralValue::Int(1.into())));
            let result = call(h, operators::EQUALS, None, vec![a, one]);
            (
                Expr::Literal(LiteralValue::Int(0.into())),
                None,
                step,
                Some(result),
            )
        }
    }
}

/// `all`, `exists`, `existsOne` with two variables (expanded as the one-variable macros are).
fn quantifier(name: &'static str) -> Macro {
    Macro::receiver(name, 3, move |h, target, args| {
        let p = parts(h, target, args)?;
        let keys = p.keys(h);
        let pred = p.bind(h, &args[2]);
        let (init, cond, step, result) = quantifier_parts(h, name, pred);
        Ok(Some(comprehension(
            h, keys, &p.first, init, cond, step, result,
        )))
    })
}

/// `transformList(i, v, [filter,] expr)`: the list of `expr` for each (matching) item.
fn transform_list(arity: usize) -> Macro {
    Macro::receiver("transformList", arity, move |h, target, args| {
        let p = parts(h, target, args)?;
        let keys = p.keys(h);
        let expr = p.bind(h, &args[arity - 1]);
        let item = h.next_expr(Expr::List(ListExpr {
            elements: vec![expr],
            optional_indices: vec![],
        }));
        let a = accu(h);
        let mut step = call(h, operators::ADD, None, vec![a, item]);
        if arity == 4 {
            let filter = p.bind(h, &args[2]);
            let a = accu(h);
            step = call(h, operators::CONDITIONAL, None, vec![filter, step, a]);
        }
        let empty = Expr::List(ListExpr {
            elements: vec![],
            optional_indices: vec![],
        });
        Ok(Some(comprehension(
            h, keys, &p.first, empty, None, step, None,
        )))
    })
}

/// `transformMap` and `transformMapEntry(k, v, [filter,] expr)`: a comprehension inserting
/// into (or merging with) a map.
fn transform_map(name: &'static str, arity: usize, insert: &'static str) -> Macro {
    Macro::receiver(name, arity, move |h, target, args| {
        let p = parts(h, target, args)?;
        let keys = p.keys(h);
        let expr = p.bind(h, &args[arity - 1]);
        let mut step_args = vec![accu(h)];
        if insert == MAP_INSERT {
            step_args.push(h.next_expr(Expr::Ident(p.first.clone())));
        }
        step_args.push(expr);
        let mut step = call(h, insert, None, step_args);
        if arity == 4 {
            let filter = p.bind(h, &args[2]);
            let a = accu(h);
            step = call(h, operators::CONDITIONAL, None, vec![filter, step, a]);
        }
        let empty = Expr::Map(MapExpr { entries: vec![] });
        Ok(Some(comprehension(
            h, keys, &p.first, empty, None, step, None,
        )))
    })
}

/// Declare the macros in `env` (their helper functions are declared by `cel_lib`).
pub(crate) fn register(env: &mut Env) {
    let macros = [
        quantifier("all"),
        quantifier("exists"),
        quantifier("existsOne"),
        transform_list(3),
        transform_list(4),
        transform_map("transformMap", 3, MAP_INSERT),
        transform_map("transformMap", 4, MAP_INSERT),
        transform_map("transformMapEntry", 3, MAP_MERGE),
        transform_map("transformMapEntry", 4, MAP_MERGE),
    ];
    for m in macros {
        // Registration fails only for a duplicate, which these are not.
        let _ = env.add_macro(m);
    }
}

/// cel-go's expansion of the two-variable macros, into comprehensions with two iteration
/// variables. The interpreter cannot run them; the checker costs them ([`crate::cel_check`]),
/// so each costs what it costs in kube.
fn checked(name: &'static str, arity: usize) -> Macro {
    Macro::receiver(name, arity, move |h, target, args| {
        let range = target
            .take()
            .ok_or_else(|| h.new_error(0, "a receiver is required"))?;
        let first = ident_of(h, &args[0])?;
        let second = ident_of(h, &args[1])?;
        if first == second {
            return Err(h.new_error(args[1].id, "duplicate variable name"));
        }
        let bool_lit = |b: bool| Expr::Literal(LiteralValue::Boolean(b.into()));
        let (filter, transform) = if arity == 4 {
            (Some(args[2].clone()), args[3].clone())
        } else {
            (None, args[2].clone())
        };
        let (init, cond, mut step, result) = match name {
            "all" | "exists" | "existsOne" => quantifier_parts(h, name, transform),
            "transformList" => {
                let item = h.next_expr(Expr::List(ListExpr {
                    elements: vec![transform],
                    optional_indices: vec![],
                }));
                let a = accu(h);
                let step = call(h, operators::ADD, None, vec![a, item]);
                let empty = Expr::List(ListExpr {
                    elements: vec![],
                    optional_indices: vec![],
                });
                (empty, None, step, None)
            }
            _ => {
                let mut step_args = vec![accu(h)];
                if name == "transformMap" {
                    step_args.push(h.next_expr(Expr::Ident(first.clone())));
                }
                step_args.push(transform);
                let step = call(h, "cel.@mapInsert", None, step_args);
                (Expr::Map(MapExpr { entries: vec![] }), None, step, None)
            }
        };
        if let Some(f) = filter {
            let a = accu(h);
            step = call(h, operators::CONDITIONAL, None, vec![f, step, a]);
        }
        let accu_init = h.next_expr(init);
        let loop_cond = match cond {
            Some(c) => c,
            None => h.next_expr(bool_lit(true)),
        };
        let result = match result {
            Some(r) => r,
            None => accu(h),
        };
        Ok(Some(h.next_expr(Expr::Comprehension(Box::new(
            ComprehensionExpr {
                iter_range: range,
                iter_var: first,
                iter_var2: Some(second),
                accu_var: ACCU.to_string(),
                accu_init,
                loop_cond,
                loop_step: step,
                result,
            },
        )))))
    })
}

/// Declare the two-variable macros as cel-go expands them (for the checker's parse).
pub(crate) fn register_checked(env: &mut Env) {
    let macros = [
        checked("all", 3),
        checked("exists", 3),
        checked("existsOne", 3),
        checked("transformList", 3),
        checked("transformList", 4),
        checked("transformMap", 3),
        checked("transformMap", 4),
        checked("transformMapEntry", 3),
        checked("transformMapEntry", 4),
    ];
    for m in macros {
        // Registration fails only for a duplicate, which these are not.
        let _ = env.add_macro(m);
    }
}
