//! `/metrics`: kube-apiserver's request, latency, in-flight, watch and storage metrics in
//! Prometheus' text format, readable as kube's RBAC permits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use http::Method;

/// The value of the series `name{labels}` (labels as written, in their sorted order).
fn series(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

const CM: &str = "/api/v1/namespaces/default/configmaps";

fn request_labels(code: u16, scope: &str, verb: &str) -> String {
    format!("apiserver_request_total{{code=\"{code}\",component=\"apiserver\",dry_run=\"\",group=\"\",resource=\"configmaps\",scope=\"{scope}\",subresource=\"\",verb=\"{verb}\",version=\"v1\"}}")
}

#[tokio::test]
async fn requests_are_counted_and_timed_by_verb_resource_and_code() {
    let h = server().await;
    assert_eq!(
        post_json(&h, CM, &configmap("m1")).await.status.as_u16(),
        201
    );
    for _ in 0..2 {
        assert_eq!(get(&h, &format!("{CM}/m1")).await.status.as_u16(), 200);
    }
    assert_eq!(get(&h, &format!("{CM}/nope")).await.status.as_u16(), 404);
    assert_eq!(get(&h, CM).await.status.as_u16(), 200);
    let apply = send(
        &h,
        Method::PATCH,
        &format!("{CM}/m1?fieldManager=t"),
        "application/apply-patch+yaml",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"m1"},"data":{"a":"b"}}"#,
    )
    .await;
    assert_eq!(apply.status.as_u16(), 200);

    let r = get(&h, "/metrics").await;
    assert_eq!(r.status.as_u16(), 200);
    assert_eq!(
        r.headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = String::from_utf8(r.body.to_vec()).unwrap();
    for (code, scope, verb, n) in [
        (201, "resource", "POST", 1.0),
        (200, "resource", "GET", 2.0),
        (404, "resource", "GET", 1.0),
        (200, "namespace", "LIST", 1.0),
        (200, "resource", "APPLY", 1.0),
    ] {
        let s = request_labels(code, scope, verb);
        assert_eq!(series(&text, &s), Some(n), "{s}\n{text}");
    }
    // One histogram per label set without the code: both GETs and the 404.
    let labels = "component=\"apiserver\",dry_run=\"\",group=\"\",resource=\"configmaps\",scope=\"resource\",subresource=\"\",verb=\"GET\",version=\"v1\"";
    let count = series(
        &text,
        &format!("apiserver_request_duration_seconds_count{{{labels}}}"),
    );
    assert_eq!(count, Some(3.0));
    let inf = series(
        &text,
        &format!("apiserver_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}}"),
    );
    assert_eq!(inf, count);
    let buckets: Vec<f64> = text
        .lines()
        .filter(|l| {
            l.starts_with(&format!(
                "apiserver_request_duration_seconds_bucket{{{labels},le="
            ))
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(buckets.len(), 24, "23 of kube's buckets and +Inf");
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
    // Cumulative, as kube's: every request took under a minute, so `le="60"` holds all three.
    assert_eq!(Some(buckets[22]), count, "{buckets:?}");
    let stored = series(&text, "apiserver_storage_objects{resource=\"configmaps\"}");
    assert!(stored.is_some_and(|n| n >= 1.0), "{text}");
    assert!(series(
        &text,
        "apiserver_current_inflight_requests{request_kind=\"readOnly\"}"
    )
    .is_some());
    assert!(text.contains("# TYPE apiserver_request_total counter\n"));
    assert!(text.contains("# TYPE apiserver_request_duration_seconds histogram\n"));
    assert!(series(&text, "process_resident_memory_bytes").is_some_and(|b| b > 0.0));
}

#[tokio::test]
async fn watch_events_are_counted() {
    let h = server().await;
    assert_eq!(
        post_json(&h, CM, &configmap("w1")).await.status.as_u16(),
        201
    );
    // A watch from the beginning sends the object as ADDED, then ends at its timeout.
    let r = get(&h, &format!("{CM}?watch=1&timeoutSeconds=1")).await;
    assert_eq!(r.status.as_u16(), 200);
    assert!(String::from_utf8_lossy(&r.body).contains("\"ADDED\""));
    let text = String::from_utf8(get(&h, "/metrics").await.body.to_vec()).unwrap();
    let n = series(
        &text,
        "apiserver_watch_events_total{group=\"\",resource=\"configmaps\",version=\"v1\"}",
    );
    assert!(n.is_some_and(|n| n >= 1.0), "{text}");
}

#[tokio::test]
async fn metrics_are_readable_only_as_rbac_permits() {
    let h = server().await;
    let r = send_with(
        &h,
        Method::GET,
        "/metrics",
        &[("Impersonate-User", "alice")],
        bytes::Bytes::new(),
    )
    .await;
    let s = r.status_failure(403, "Forbidden");
    assert_eq!(
        s["message"],
        "forbidden: User \"alice\" cannot get path \"/metrics\""
    );
}

/// Resource labels come from request paths; requests for resources nobody serves cannot grow
/// the series without bound.
#[tokio::test]
async fn request_series_are_bounded() {
    let h = server().await;
    for i in 0..5100 {
        let r = get(&h, &format!("/apis/made-up-{i}.example.com/v1/things")).await;
        assert_eq!(r.status.as_u16(), 404);
    }
    let text = String::from_utf8(get(&h, "/metrics").await.body.to_vec()).unwrap();
    let count = text
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
        .count();
    assert!(count <= 5010, "{count} series");
    assert!(text.contains("group=\"made-up-0.example.com\""));
    assert!(!text.contains("group=\"made-up-5099.example.com\""));
    let unlabelled = "apiserver_request_total{code=\"404\",component=\"apiserver\",dry_run=\"\",group=\"\",resource=\"\",scope=\"cluster\",subresource=\"\",verb=\"LIST\",version=\"\"}";
    assert!(
        series(&text, unlabelled).is_some_and(|n| n >= 100.0),
        "{unlabelled}"
    );
}

#[tokio::test]
async fn a_request_given_up_midway_leaves_no_count_in_flight() {
    use kubox::faults::{Action, Match, Rule};
    let h = server().await;
    let in_flight = || async {
        let text = String::from_utf8(get(&h, "/metrics").await.body.to_vec()).unwrap();
        // The `/metrics` read itself is in flight while it is answered.
        series(
            &text,
            "apiserver_current_inflight_requests{request_kind=\"readOnly\"}",
        )
    };
    assert_eq!(in_flight().await, Some(1.0));
    h.faults()
        .add(Rule::new(
            Match::verb_resource("list", "configmaps"),
            Action::Latency { millis: 600_000 },
        ))
        .unwrap();
    let mut stuck = Box::pin(get(&h, CM));
    assert!(futures::poll!(stuck.as_mut()).is_pending());
    assert_eq!(in_flight().await, Some(2.0));
    // The client goes away: its request is dropped mid-way.
    drop(stuck);
    assert_eq!(in_flight().await, Some(1.0));
}
