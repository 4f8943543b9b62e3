//! Injected faults as clients see them (Status bodies, Retry-After, a connection cut
//! mid-answer), the admin-only `/kubox/v1/faults` and `/kubox/v1/snapshot` endpoints, and the
//! request recorder's records and bounds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::*;
use http::Method;
use kubox::faults::{Action, Match, Rule, StatusFault};
use kubox::recorder::{Filter, RecorderOptions};
use serde_json::{json, Value};

const CM: &str = "/api/v1/namespaces/default/configmaps";

fn status(code: u16, retry: Option<u64>) -> Action {
    Action::Status(StatusFault {
        code,
        reason: None,
        message: None,
        retry_after_seconds: retry,
    })
}

#[tokio::test]
async fn injected_statuses_are_kube_statuses() {
    let h = server().await;
    post_json(
        &h,
        CM,
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}),
    )
    .await;
    let faults = h.faults();
    let conflict = faults
        .add(
            Rule::new(
                Match::verb_resource("update", "configmaps"),
                status(409, None),
            )
            .times(1),
        )
        .unwrap();
    let busy = faults
        .add(
            Rule::new(
                Match::verb_resource("list", "configmaps"),
                status(429, Some(3)),
            )
            .times(1),
        )
        .unwrap();
    let cm = get(&h, &format!("{CM}/a")).await.json();
    let r = put_json(&h, &format!("{CM}/a"), &cm).await;
    assert_eq!(r.status.as_u16(), 409);
    let s = r.json();
    assert_eq!(
        (s["kind"].as_str(), s["reason"].as_str(), s["code"].as_i64()),
        (Some("Status"), Some("Conflict"), Some(409))
    );
    assert_eq!(s["details"], json!({"name": "a", "kind": "configmaps"}));
    // `times: 1`: the next update goes through.
    assert_eq!(
        put_json(&h, &format!("{CM}/a"), &cm).await.status.as_u16(),
        200
    );
    let r = get(&h, CM).await;
    assert_eq!(r.status.as_u16(), 429);
    assert_eq!(r.headers["retry-after"], "3");
    assert_eq!(r.json()["details"]["retryAfterSeconds"], 3);
    assert_eq!(r.json()["reason"], "TooManyRequests");
    assert_eq!(get(&h, CM).await.status.as_u16(), 200);
    assert_eq!((faults.fired(conflict), faults.fired(busy)), (1, 1));
    // Other verbs, resources, names never match.
    let named = faults
        .add(Rule::new(
            Match {
                name: Some("b".into()),
                ..Match::verb_resource("get", "configmaps")
            },
            status(500, None),
        ))
        .unwrap();
    assert_eq!(get(&h, &format!("{CM}/a")).await.status.as_u16(), 200);
    assert_eq!(get(&h, &format!("{CM}/b")).await.status.as_u16(), 500);
    assert_eq!(faults.fired(named), 1);
    // Rules that make no sense are refused.
    assert!(faults
        .add(Rule::new(Match::default(), status(200, None)))
        .is_err());
    assert!(faults
        .add(Rule::new(Match::default(), status(500, None)).probability(1.5))
        .is_err());
    faults.clear();
    assert!(faults.report().is_empty());
}

#[tokio::test]
async fn a_compaction_fault_compacts_history_now() {
    let h = server().await;
    let r = post_json(
        &h,
        CM,
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}),
    )
    .await;
    let first = r.json()["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    post_json(
        &h,
        CM,
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}}),
    )
    .await;
    h.faults()
        .add(Rule::new(Match::verb_resource("get", "configmaps"), Action::Compact).times(1))
        .unwrap();
    assert_eq!(get(&h, &format!("{CM}/a")).await.status.as_u16(), 200);
    // A list at the first revision is now too old.
    let r = get(
        &h,
        &format!("{CM}?resourceVersion={first}&resourceVersionMatch=Exact"),
    )
    .await;
    assert_eq!(r.status.as_u16(), 410, "{}", r.json());
}

/// A raw HTTP GET over TCP: the Content-Length the head promised and the body bytes that came.
fn raw_get(addr: std::net::SocketAddr, token: &str, path: &str) -> (usize, usize) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n").unwrap();
    let mut bytes = Vec::new();
    let _ = s.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let length = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(|v| v.trim().parse::<usize>().unwrap())
        })
        .expect("a Content-Length");
    (length, body.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_ends_the_answer_early() {
    let h = Server::builder().insecure_http().start().await.unwrap();
    let token = h
        .kubeconfig()
        .lines()
        .find_map(|l| l.trim().strip_prefix("token: "))
        .unwrap()
        .to_string();
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"},
        "data": {"k": "v".repeat(1000)}});
    post_json(&h, CM, &body).await;
    h.faults()
        .add(
            Rule::new(
                Match::verb_resource("get", "configmaps"),
                Action::DropConnection,
            )
            .times(1),
        )
        .unwrap();
    let addr = h.addr();
    let path = format!("{CM}/a");
    let (promised, got) = tokio::task::spawn_blocking({
        let (token, path) = (token.clone(), path.clone());
        move || raw_get(addr, &token, &path)
    })
    .await
    .unwrap();
    assert!(got < promised, "{got} of {promised} bytes");
    let (promised, got) = tokio::task::spawn_blocking(move || raw_get(addr, &token, &path))
        .await
        .unwrap();
    assert_eq!(got, promised);
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_admin_endpoints_are_for_cluster_admins() {
    let h = server().await;
    let spec = "seed: 3\nrules:\n- match: {verb: get, resource: configmaps, name: x}\n  action: {status: {code: 503, retryAfterSeconds: 1}}\n  times: 2\n";
    let r = send(
        &h,
        Method::PUT,
        "/kubox/v1/faults",
        "application/yaml",
        spec,
    )
    .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.json());
    assert_eq!(get(&h, &format!("{CM}/x")).await.status.as_u16(), 503);
    let report = get(&h, "/kubox/v1/faults").await.json();
    assert_eq!(report["rules"][0]["fired"], 1);
    assert_eq!(
        report["rules"][0]["match"],
        json!({"verb": "get", "resource": "configmaps", "name": "x"})
    );
    assert_eq!(
        report["rules"][0]["action"],
        json!({"status": {"code": 503, "retryAfterSeconds": 1}})
    );
    let bad = send(
        &h,
        Method::PUT,
        "/kubox/v1/faults",
        "application/json",
        r#"{"rules":[{"action":"explode"}]}"#,
    )
    .await;
    assert_eq!(bad.status.as_u16(), 400, "{}", bad.json());
    assert_eq!(
        send(&h, Method::DELETE, "/kubox/v1/faults", "", "")
            .await
            .status
            .as_u16(),
        200
    );
    assert_eq!(get(&h, "/kubox/v1/faults").await.json()["rules"], json!([]));
    assert_eq!(get(&h, &format!("{CM}/x")).await.status.as_u16(), 404);
    // Someone who is not a cluster admin gets neither the rules nor a snapshot.
    for (method, path) in [
        (Method::GET, "/kubox/v1/faults"),
        (Method::PUT, "/kubox/v1/faults"),
        (Method::GET, "/kubox/v1/snapshot"),
    ] {
        let r = send_with(&h, method, path, &[("impersonate-user", "bob")], "{}").await;
        assert_eq!(r.status.as_u16(), 403, "{path}");
    }
    let snap = get(&h, "/kubox/v1/snapshot").await;
    assert_eq!(snap.status.as_u16(), 200);
    let read = kubox::Snapshot::read_from(&snap.body[..]).unwrap();
    assert!(read.len() > 10, "{read:?}");
}

#[tokio::test]
async fn the_recorder_keeps_what_was_asked_and_stays_bounded() {
    let h = Server::builder()
        .recorder(RecorderOptions {
            capacity: 5,
            bodies: true,
        })
        .start()
        .await
        .unwrap();
    let rec = h.recorder();
    rec.clear();
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}});
    let r = send_with(
        &h,
        Method::POST,
        &format!("{CM}?fieldManager=me&dryRun=All"),
        &[
            ("content-type", "application/json"),
            ("user-agent", "tests/1"),
        ],
        body.to_string(),
    )
    .await;
    assert_eq!(r.status.as_u16(), 201);
    let got = rec.requests(&Filter::new().verb("create"));
    assert_eq!(got.len(), 1);
    let c = &got[0];
    assert_eq!(
        (
            c.resource.as_str(),
            c.namespace.as_str(),
            c.field_manager.as_str(),
            c.dry_run,
            c.code,
            c.user_agent.as_str()
        ),
        ("configmaps", "default", "me", true, 201, "tests/1")
    );
    assert_eq!(
        serde_json::from_str::<Value>(c.body.as_deref().unwrap()).unwrap(),
        body
    );
    let line: Value = serde_json::to_value(c).unwrap();
    assert_eq!(line["verb"], "create");
    get(&h, &format!("{CM}/missing")).await;
    assert_eq!(
        rec.count(&Filter::new().verb("get").code(404).name("missing")),
        1
    );
    for _ in 0..10 {
        get(&h, "/version").await;
    }
    assert_eq!(rec.requests(&Filter::new()).len(), 5);
    assert!(rec.dropped() >= 7);
    // wait_for: already there, and not there within a short bound.
    assert!(rec
        .wait_for(&Filter::new().verb("get"), 1, Duration::from_secs(5))
        .await
        .is_some());
    assert!(rec
        .wait_for(&Filter::new().verb("delete"), 1, Duration::from_millis(1))
        .await
        .is_none());
    let off = Server::builder().no_recorder().start().await.unwrap();
    get(&off, "/version").await;
    assert_eq!(off.recorder().count(&Filter::new()), 0);
}
