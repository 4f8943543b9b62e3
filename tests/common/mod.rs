//! In-process helpers: a server per test, requests through its tower service (no socket).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

pub use kubox::{Server, ServerHandle};

pub mod hooked;

/// A server for API tests. Namespaces stay as clients leave them: the serviceaccount controller
/// (default ServiceAccount and kube-root-ca.crt in every namespace) is off; the other built-in
/// controllers run. tests/controllers.rs covers the full set.
pub async fn server() -> ServerHandle {
    Server::builder()
        .memory()
        .disable_controller(kubox::Controller::ServiceAccount)
        .start()
        .await
        .expect("server starts")
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// The media type of `/openapi/v2` in protobuf, as client-go asks for it.
pub const OPENAPI_V2_PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

impl Resp {
    /// Whether the body holds these bytes anywhere (a protobuf document's strings).
    pub fn body_contains(&self, needle: &str) -> bool {
        self.body
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// Assert a Status failure with this code and reason; returns the Status.
    #[track_caller]
    /// The causes of a 422 Invalid, as `field: message` lines (panics on any other answer).
    #[allow(dead_code)]
    pub fn invalid_causes(&self) -> Vec<String> {
        let s = self.status_failure(422, "Invalid");
        s["details"]["causes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                format!(
                    "{}: {}",
                    c["field"].as_str().unwrap_or_default(),
                    c["message"].as_str().unwrap_or_default()
                )
            })
            .collect()
    }

    pub fn status_failure(&self, code: u16, reason: &str) -> Value {
        let s = self.json();
        assert_eq!(self.status.as_u16(), code, "HTTP code; body: {s}");
        assert_eq!(s["kind"], "Status", "{s}");
        assert_eq!(s["status"], "Failure", "{s}");
        assert_eq!(s["code"], code, "{s}");
        assert_eq!(s["reason"], reason, "{s}");
        s
    }
}

pub async fn send(
    h: &ServerHandle,
    method: Method,
    path: &str,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Resp {
    send_with(h, method, path, &[("content-type", content_type)], body).await
}

pub async fn send_with(
    h: &ServerHandle,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Resp {
    let mut b = Request::builder().method(method).uri(path);
    for (k, v) in headers {
        if !v.is_empty() {
            b = b.header(*k, *v);
        }
    }
    let resp = h
        .service()
        .oneshot(b.body(body.into()).unwrap())
        .await
        .unwrap();
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Resp {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

pub async fn get(h: &ServerHandle, path: &str) -> Resp {
    send(h, Method::GET, path, "", Bytes::new()).await
}

pub async fn post_json(h: &ServerHandle, path: &str, body: &Value) -> Resp {
    send(
        h,
        Method::POST,
        path,
        "application/json",
        serde_json::to_vec(body).unwrap(),
    )
    .await
}

pub async fn put_json(h: &ServerHandle, path: &str, body: &Value) -> Resp {
    send(
        h,
        Method::PUT,
        path,
        "application/json",
        serde_json::to_vec(body).unwrap(),
    )
    .await
}

pub async fn patch(h: &ServerHandle, path: &str, content_type: &str, body: &str) -> Resp {
    send(h, Method::PATCH, path, content_type, body.to_string()).await
}

pub fn configmap(name: &str) -> Value {
    serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"app": "demo"}}, "data": {"k": "v"}})
}

pub const CM: &str = "/api/v1/namespaces/default/configmaps";

/// The HTTPS webhook written in the test (shared with the conformance scenarios).
#[path = "../../conformance/src/webhook_server.rs"]
pub mod webhook_server;

#[path = "../../conformance/src/extension_server.rs"]
pub mod extension_server;

/// Run kubectl `version` (1.35 from `.tools/bin`, else the preinstalled `kubectl.1.NN`) against
/// `kubeconfig`, with `stdin`; panics with its stderr unless it succeeds. Returns its stdout.
pub fn kubectl(
    version: &str,
    kubeconfig: &std::path::Path,
    args: &[&str],
    stdin: Option<&str>,
) -> String {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let bin = if version == "1.35" {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/bin/kubectl-1.35")
    } else {
        std::path::PathBuf::from(format!("/usr/lib/google-cloud-sdk/bin/kubectl.{version}"))
    };
    let mut child = Command::new(&bin)
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{} ({e}): run scripts/install-tools", bin.display()));
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "kubectl {version} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
