//! `/healthz`, `/livez`, `/readyz` and their `?verbose` and per-check forms.

use http::{Response, StatusCode};

use crate::body::{bytes_response, Body};

const CHECKS: &[&str] = &[
    "ping",
    "log",
    "etcd",
    "poststarthook/start-kubox-controllers",
];

/// Answer a health endpoint.
pub fn check(path: &str, query: &str) -> Response<Body> {
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let endpoint = parts.next().unwrap_or_default();
    if let Some(single) = parts.next() {
        return if CHECKS.contains(&single) {
            bytes_response(StatusCode::OK, "text/plain; charset=utf-8", "ok")
        } else {
            bytes_response(
                StatusCode::NOT_FOUND,
                "text/plain; charset=utf-8",
                "404 page not found\n",
            )
        };
    }
    if query
        .split('&')
        .any(|kv| kv == "verbose" || kv.starts_with("verbose="))
    {
        let mut out = String::new();
        for c in CHECKS {
            out.push_str(&format!("[+]{c} ok\n"));
        }
        out.push_str(&format!("{endpoint} check passed\n"));
        bytes_response(StatusCode::OK, "text/plain; charset=utf-8", out)
    } else {
        bytes_response(StatusCode::OK, "text/plain; charset=utf-8", "ok")
    }
}
