//! The audit log: audit.k8s.io/v1 events as JSON lines, filtered by a policy.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use http::Method;
use serde_json::{json, Value};

async fn audited(policy: &str) -> (ServerHandle, tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let h = kubox::Server::builder()
        .memory()
        .disable_controller(kubox::Controller::ServiceAccount)
        .audit_log(&path)
        .audit_policy(kubox::audit::Policy::parse(policy).unwrap())
        .start()
        .await
        .unwrap();
    (h, dir, path)
}

fn events(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

const POLICY: &str = r#"
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: None
  nonResourceURLs: ["/healthz*", "/version"]
- level: RequestResponse
  resources:
  - group: ""
    resources: ["configmaps"]
- level: Metadata
  verbs: ["delete", "get"]
"#;

#[tokio::test]
async fn audit_log_writes_response_complete_events_at_the_policy_level() {
    let (h, _dir, path) = audited(POLICY).await;
    let r = post_json(&h, CM, &configmap("a")).await;
    assert_eq!(r.status, 201);
    let audit_id = r.headers["audit-id"].to_str().unwrap().to_string();
    assert_eq!(get(&h, "/healthz").await.status, 200);
    assert_eq!(
        get(&h, "/api/v1/namespaces/default/secrets/none")
            .await
            .status,
        404
    );
    // list of services matches no rule: not logged.
    assert_eq!(get(&h, "/api/v1/services").await.status, 200);

    let ev = events(&path);
    assert_eq!(ev.len(), 2, "{ev:#?}");
    let cm = &ev[0];
    assert_eq!(cm["kind"], "Event");
    assert_eq!(cm["apiVersion"], "audit.k8s.io/v1");
    assert_eq!(cm["stage"], "ResponseComplete");
    assert_eq!(cm["level"], "RequestResponse");
    assert_eq!(cm["auditID"], audit_id);
    assert_eq!(cm["verb"], "create");
    assert_eq!(cm["requestURI"], CM);
    assert_eq!(cm["user"]["username"], "system:apiserver");
    assert_eq!(
        cm["objectRef"],
        json!({"resource": "configmaps", "namespace": "default", "apiVersion": "v1"})
    );
    assert_eq!(cm["responseStatus"]["code"], 201);
    assert_eq!(cm["requestObject"]["metadata"]["name"], "a");
    assert_eq!(cm["responseObject"]["metadata"]["name"], "a");

    let missing = &ev[1];
    assert_eq!(missing["level"], "Metadata");
    assert_eq!(missing["verb"], "get");
    assert_eq!(missing["objectRef"]["name"], "none");
    assert_eq!(missing["responseStatus"]["code"], 404);
    assert_eq!(missing["responseStatus"]["reason"], "NotFound");
    assert!(missing.get("requestObject").is_none());
    assert!(missing.get("responseObject").is_none());
}

/// kube's WithAuditInit: a client's `Audit-ID` is kept as sent, in the answer and the event;
/// without one, every answer (audited or not, success or error) carries a new UUID.
#[tokio::test]
async fn the_clients_audit_id_is_kept_and_every_answer_carries_one() {
    let (h, _dir, path) = audited(POLICY).await;
    let body = serde_json::to_vec(&configmap("mine")).unwrap();
    let r = send_with(
        &h,
        Method::POST,
        CM,
        &[
            ("content-type", "application/json"),
            ("audit-id", "chosen-by-the-client"),
        ],
        body,
    )
    .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.headers["audit-id"], "chosen-by-the-client");
    let ev = events(&path);
    assert_eq!(ev.len(), 1, "{ev:#?}");
    assert_eq!(ev[0]["auditID"], "chosen-by-the-client");

    let mut seen = std::collections::BTreeSet::new();
    for (path, code) in [
        ("/healthz", 200),
        ("/api/v1/namespaces/default/configmaps/none", 404),
        ("/api/v1/nothing-here", 404),
    ] {
        let r = get(&h, path).await;
        assert_eq!(r.status, code, "{path}");
        let id = r.headers["audit-id"].to_str().unwrap().to_string();
        assert_eq!(id.len(), 36, "{path}: {id}");
        assert!(seen.insert(id), "{path}: a fresh ID per request");
    }
}

#[tokio::test]
async fn audit_log_without_omitted_stages_logs_request_received_first() {
    let (h, _dir, path) = audited(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n  users: [\"system:apiserver\"]\n",
    )
    .await;
    let r = send(&h, Method::DELETE, &format!("{CM}/nope"), "", "").await;
    assert_eq!(r.status, 404);
    let ev = events(&path);
    let stages: Vec<&str> = ev.iter().map(|e| e["stage"].as_str().unwrap()).collect();
    assert_eq!(stages, ["RequestReceived", "ResponseComplete"]);
    assert_eq!(ev[0]["auditID"], ev[1]["auditID"]);
    assert!(ev[0].get("responseStatus").is_none());
}

#[tokio::test]
async fn policy_audit_action_and_audit_annotations_reach_the_event() {
    let (h, _dir, path) = audited(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n  resources:\n  - group: \"\"\n    resources: [configmaps]\n",
    )
    .await;
    let p = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": "cm"},
        "spec": {"matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                    "operations": ["CREATE"], "resources": ["configmaps"]}]},
                 "validations": [{"expression": "!has(object.data.k)", "message": "no k"}],
                 "auditAnnotations": [{"key": "name", "valueExpression": "object.metadata.name"}]}});
    assert_eq!(
        post_json(
            &h,
            "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies",
            &p
        )
        .await
        .status,
        201
    );
    let b = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": "cm-b"}, "spec": {"policyName": "cm", "validationActions": ["Audit"]}});
    assert_eq!(
        post_json(
            &h,
            "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings",
            &b
        )
        .await
        .status,
        201
    );
    assert_eq!(post_json(&h, CM, &configmap("a")).await.status, 201);
    let ev = events(&path);
    let done = ev
        .iter()
        .find(|e| e["stage"] == "ResponseComplete" && e["verb"] == "create")
        .unwrap();
    assert_eq!(done["annotations"]["cm/name"], "a");
    let failure: Value = serde_json::from_str(
        done["annotations"]["validation.policy.admission.k8s.io/validation_failure"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(failure[0]["message"], "no k");
    assert_eq!(failure[0]["policy"], "cm");
}

/// `sourceIPs` are the client's, as kube gives them: forwarded addresses first, then the
/// connection's own; the audit log file is private.
#[tokio::test]
async fn audit_events_carry_the_clients_addresses_and_the_log_is_private() {
    use std::os::unix::fs::PermissionsExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs/audit.log");
    let h = kubox::Server::builder()
        .memory()
        .insecure_http()
        .static_tokens([(
            "t".to_string(),
            kubox::authn::UserInfo {
                username: "admin".into(),
                groups: vec!["system:masters".into()],
                ..Default::default()
            },
        )])
        .audit_log(&path)
        .audit_policy(kubox::audit::Policy::parse(POLICY).unwrap())
        .start()
        .await
        .unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    for forwarded in ["", "X-Forwarded-For: 10.1.2.3, bogus, 10.1.2.4\r\n"] {
        let mut s = tokio::net::TcpStream::connect(h.addr()).await.unwrap();
        let req = format!(
            "GET /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n{forwarded}Connection: close\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    }
    let lists: Vec<Value> = events(&path)
        .into_iter()
        .filter(|e| e["verb"] == "list")
        .collect();
    assert_eq!(lists.len(), 2, "{lists:?}");
    assert_eq!(lists[0]["sourceIPs"], json!(["127.0.0.1"]));
    assert_eq!(
        lists[1]["sourceIPs"],
        json!(["10.1.2.3", "10.1.2.4", "127.0.0.1"])
    );
    h.shutdown().await.unwrap();
}

/// An impersonating request's event names both: `user` is who authenticated, `impersonatedUser`
/// whom the request acted as.
#[tokio::test]
async fn audit_events_name_the_impersonated_user() {
    let (h, _dir, path) = audited(POLICY).await;
    let r = send_with(
        &h,
        Method::GET,
        "/api/v1/namespaces/default/configmaps",
        &[("impersonate-user", "jane"), ("impersonate-group", "devs")],
        "",
    )
    .await;
    assert_eq!(r.status.as_u16(), 403, "jane may not list configmaps");
    let lists: Vec<Value> = events(&path)
        .into_iter()
        .filter(|e| e["verb"] == "list")
        .collect();
    assert_eq!(lists.len(), 1, "{lists:?}");
    assert_eq!(
        lists[0]["user"]["username"], "system:apiserver",
        "{}",
        lists[0]
    );
    assert_eq!(lists[0]["impersonatedUser"]["username"], "jane");
    assert_eq!(
        lists[0]["impersonatedUser"]["groups"],
        json!(["devs", "system:authenticated"])
    );
}

/// A request nobody authenticates is audited as kube-apiserver's
/// WithFailedAuthenticationAudit does: stage ResponseStarted, an empty user, the 401 and which
/// credentials were tried; the event is in the file before the 401 is answered.
#[tokio::test]
async fn failed_authentications_are_audited() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let h = kubox::Server::builder()
        .memory()
        .insecure_http()
        .anonymous_auth(false)
        .audit_log(&path)
        .audit_policy(kubox::audit::Policy::parse(POLICY).unwrap())
        .start()
        .await
        .unwrap();
    let mut ids = Vec::new();
    for credentials in ["Authorization: Bearer not-a-token\r\n", ""] {
        let mut s = tokio::net::TcpStream::connect(h.addr()).await.unwrap();
        let req = format!(
            "GET /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: x\r\nUser-Agent: probe/1\r\n{credentials}Connection: close\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        assert!(out.starts_with("HTTP/1.1 401"), "{out}");
        // Refused before authentication ends, the answer still carries its audit ID.
        let id = out
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("audit-id: ")
                    .map(str::to_string)
            })
            .unwrap_or_else(|| panic!("no Audit-Id in {out}"));
        ids.push(id);
    }
    let failed: Vec<Value> = events(&path)
        .into_iter()
        .filter(|e| e["responseStatus"]["code"] == 401)
        .collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    for (e, id) in failed.iter().zip(&ids) {
        assert_eq!(e["auditID"], json!(id), "{e}");
    }
    for (e, message) in failed.iter().zip([
        "Authentication failed, attempted: bearer",
        "Authentication failed, no credentials provided",
    ]) {
        assert_eq!(e["stage"], "ResponseStarted", "{e}");
        assert_eq!(e["user"], json!({}), "{e}");
        assert_eq!(e["verb"], "list", "{e}");
        assert_eq!(
            e["level"], "RequestResponse",
            "the policy's level for configmaps: {e}"
        );
        assert_eq!(e["responseStatus"]["message"], message, "{e}");
        assert_eq!(e["sourceIPs"], json!(["127.0.0.1"]), "{e}");
        assert_eq!(e["userAgent"], "probe/1", "{e}");
        assert_eq!(
            e["requestURI"], "/api/v1/namespaces/default/configmaps",
            "{e}"
        );
    }
    h.shutdown().await.unwrap();
}
