//! `/healthz`, `/livez`, `/readyz`, their `?verbose` and per-check forms, in kube-apiserver's
//! format: `[+]name ok` / `[-]name failed: reason withheld` lines, `ok` or `<endpoint> check
//! failed` with 500 when a check fails (the reason is logged, not shown).

use http::{Response, StatusCode};

use crate::api::ApiState;
use crate::body::{bytes_response, Body};

/// One named check and, when it fails, why.
struct Check {
    name: String,
    failure: Option<String>,
}

/// The start steps kube-apiserver reports as post-start hooks, by kube's names, that kubox
/// runs too: admission and informers set up, CRDs loaded and their controller running, the
/// bootstrap objects (namespaces, the `kubernetes` Service, RBAC policy, system priority
/// classes, the cluster authentication ConfigMap) written, the object counts tracked; the
/// aggregator's informers, local APIServices and controllers (availability, discovery, OpenAPI)
/// running; and kubox's own controllers settled. They pass once the server has finished starting.
const POST_START_HOOKS: [&str; 21] = [
    "start-apiserver-admission-initializer",
    "generic-apiserver-start-informers",
    "storage-object-count-tracker-hook",
    "start-apiextensions-informers",
    "start-apiextensions-controllers",
    "crd-informer-synced",
    "start-system-namespaces-controller",
    "start-cluster-authentication-info-controller",
    "rbac/bootstrap-roles",
    "scheduling/bootstrap-system-priority-classes",
    "bootstrap-controller",
    "aggregator-reload-proxy-client-cert",
    "start-kube-aggregator-informers",
    "apiservice-status-local-available-controller",
    "apiservice-status-remote-available-controller",
    "apiservice-registration-controller",
    "apiservice-discovery-controller",
    "kube-apiserver-autoregistration",
    "apiservice-openapi-controller",
    "apiservice-openapiv3-controller",
    "start-kubox-controllers",
];

/// The checks of `endpoint`, run now.
fn checks(state: &ApiState, endpoint: &str) -> Vec<Check> {
    let ok = |name: &str| Check {
        name: name.to_string(),
        failure: None,
    };
    let mut out = vec![
        ok("ping"),
        ok("log"),
        Check {
            name: "etcd".to_string(),
            failure: state.backend.store.health().err().map(|e| e.to_string()),
        },
    ];
    let readyz = endpoint == "readyz";
    if readyz {
        let behind = state.backend.informers.out_of_sync();
        out.push(Check {
            name: "informer-sync".to_string(),
            failure: (!behind.is_empty()).then(|| format!("not in sync: {}", behind.join(", "))),
        });
    }
    let started = state.started.load(std::sync::atomic::Ordering::Acquire);
    out.extend(POST_START_HOOKS.iter().map(|hook| Check {
        name: format!("poststarthook/{hook}"),
        failure: (!started).then(|| "not finished".to_string()),
    }));
    // kube-aggregator's boot-sequence check: every local APIService registered at start is
    // Available (they are once start has registered them).
    out.push(Check {
        name: "autoregister-completion".to_string(),
        failure: (!started).then(|| "missing APIService: the start has not finished".to_string()),
    });
    if readyz {
        out.push(Check {
            name: "shutdown".to_string(),
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
                tracing::warn!(check = %name, reason = %why, "{endpoint} check failed");
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
                tracing::warn!(check = %c.name, reason = %why, "{endpoint} check failed");
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
