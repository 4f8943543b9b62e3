//! CEL expressions of absurd size or depth are refused when compiled, and every accepted one
//! compiles and evaluates on an ordinary 2 MiB thread stack (a tokio worker's), also in debug
//! builds: no expression takes the process down.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kubox_openapi::Expression;

/// Runs `f` on a thread with a tokio worker's default stack.
fn on_worker_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .expect("no stack overflow, no panic")
}

fn shapes(n: usize) -> Vec<(&'static str, String)> {
    vec![
        (
            "parentheses",
            format!("{}1{}", "(".repeat(n), ")".repeat(n)),
        ),
        ("lists", format!("{}1{}", "[".repeat(n), "]".repeat(n))),
        ("negations", format!("{}true", "!".repeat(n))),
        ("sums", format!("1{}", " + 1".repeat(n))),
        ("conjunctions", format!("true{}", " && true".repeat(n))),
        ("selections", format!("{{'a': 1}}{}", ".a".repeat(n))),
        (
            "calls",
            format!("{}1{}", "string(".repeat(n), ")".repeat(n)),
        ),
    ]
}

#[test]
fn deeply_nested_expressions_are_refused_at_compile_time() {
    for (shape, source) in shapes(3_000) {
        let outcome =
            on_worker_stack(move || Expression::compile(&source).map(|e| e.eval(&[]).map(|_| ())));
        match (shape, outcome) {
            // The parser folds `!!` and balances `&&` chains (as cel-go does): what remains is
            // shallow, and evaluates.
            ("negations" | "conjunctions", Ok(Ok(()))) => {}
            (_, Err(e)) => assert!(
                e.contains("recursion limit") || e.contains("Recursion limit"),
                "{shape}: {e}"
            ),
            (shape, Ok(r)) => panic!("{shape}: accepted ({r:?})"),
        }
    }
}

#[test]
fn expressions_over_100000_code_points_are_refused() {
    let source = format!("'{}' != ''", "é".repeat(100_000));
    let size = source.chars().count();
    let err = Expression::compile(&source).unwrap_err();
    assert_eq!(
        err,
        format!("expression code point size exceeds limit: size: {size}, limit 100000")
    );
    // Counted in code points, not bytes: 50,001 two-byte characters are within the limit.
    assert!(Expression::compile(&format!("'{}' != ''", "é".repeat(50_001))).is_ok());
}

#[test]
fn accepted_deep_expressions_evaluate_on_a_worker_stack() {
    for (shape, source) in shapes(80) {
        let outcome =
            on_worker_stack(move || Expression::compile(&source).map(|e| e.eval(&[]).map(|_| ())));
        match (shape, outcome) {
            // The parser refuses nesting of calls, lists and parentheses earlier.
            ("parentheses" | "lists" | "calls", Err(e)) => assert!(e.contains("limit"), "{e}"),
            ("selections", Ok(Err(_))) => {} // `1.a` is no map: an evaluation error, not a crash
            (_, Ok(Ok(()))) => {}
            (shape, other) => panic!("{shape}: {other:?}"),
        }
    }
}
