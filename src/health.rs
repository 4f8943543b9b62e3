//! `/healthz`, `/livez`, `/readyz`, their `?verbose` and per-check forms, in kube-apiserver's
//! format: `[+]name ok` / `[-]name failed: reason withheld` lines, `ok` or `<endpoint> check
//! failed` with 500 when a check fails (the reason is logged, not shown).

use http::{Response, StatusCode};

use crate::api::ApiState;
use crate::body::{bytes_response, Body};

/// One named check and, when it fails, why.
struct Check {
    name: &'static str,
    failure: Option<String>,
}

/// The checks of `endpoint`, run now.
fn checks(state: &ApiState, endpoint: &str) -> Vec<Check> {
    let ok = |name| Check {
        name,
        failure: None,
    };
    let mut out = vec![
        ok("ping"),
        ok("log"),
        Check {
            name: "etcd",
            failure: state.backend.store.health().err().map(|e| e.to_string()),
        },
        ok("poststarthook/start-kubox-controllers"),
    ];
    if endpoint == "readyz" {
        let behind = state.backend.informers.out_of_sync();
        out.push(Check {
            name: "informer-sync",
            failure: (!behind.is_empty()).then(|| format!("not in sync: {}", behind.join(", "))),
        });
        out.push(Check {
            name: "shutdown",
            failure: (*state.backend.shutdown.borrow())
                .then(|| "the server is shutting down".to_string()),
        });
    }
    out
}

fn text(code: StatusCode, body: impl Into<bytes::Bytes>) -> Response<Body> {
    let mut r = bytes_response(code, "text/plain; charset=utf-8", body);
    r.headers_mut().insert(
        "x-content-type-options",
        http::HeaderValue::from_static("nosniff"),
    );
    r
}

/// Answer a health endpoint.
pub fn check(state: &ApiState, path: &str, query: &str) -> Response<Body> {
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let endpoint = parts.next().unwrap_or_default();
    let results = checks(state, endpoint);
    if let Some(single) = parts.next() {
        return match results.iter().find(|c| c.name == single) {
            Some(Check { failure: None, .. }) => text(StatusCode::OK, "ok"),
            Some(Check {
                failure: Some(why),
                name,
            }) => {
                tracing::warn!(check = name, reason = %why, "{endpoint} check failed");
                text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal server error: reason withheld\n",
                )
            }
            None => text(StatusCode::NOT_FOUND, "404 page not found\n"),
        };
    }
    let verbose = query
        .split('&')
        .any(|kv| kv == "verbose" || kv.starts_with("verbose="));
    let failed = results.iter().any(|c| c.failure.is_some());
    if !verbose && !failed {
        return text(StatusCode::OK, "ok");
    }
    let mut out = String::new();
    for c in &results {
        match &c.failure {
            None => out.push_str(&format!("[+]{} ok\n", c.name)),
            Some(why) => {
                tracing::warn!(check = c.name, reason = %why, "{endpoint} check failed");
                out.push_str(&format!("[-]{} failed: reason withheld\n", c.name));
            }
        }
    }
    if failed {
        out.push_str(&format!("{endpoint} check failed\n"));
        text(StatusCode::INTERNAL_SERVER_ERROR, out)
    } else {
        out.push_str(&format!("{endpoint} check passed\n"));
        text(StatusCode::OK, out)
    }
}
