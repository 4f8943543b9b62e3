//! Answers in Kubernetes protobuf, as kube-apiserver writes them to a client that prefers
//! `application/vnd.kubernetes.protobuf`: objects, lists, Status (success and errors), and watch
//! streams of length-prefixed WatchEvents; custom resources and Tables stay JSON, and a client
//! that accepts only protobuf for a custom resource gets 406.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use http::Method;
use http_body_util::BodyExt;
use kubox_apimachinery::protobuf::{decode_object, CONTENT_TYPE};
use serde_json::{json, Value};
use tower::ServiceExt;

const PB_FIRST: &str = "application/vnd.kubernetes.protobuf, application/json";

async fn get_pb(h: &ServerHandle, path: &str) -> Resp {
    send_with(h, Method::GET, path, &[("accept", PB_FIRST)], "").await
}

fn content_type(r: &Resp) -> &str {
    r.headers["content-type"].to_str().unwrap()
}

/// Read a varint at `at`, advancing it.
fn varint(b: &[u8], at: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let byte = b[*at];
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return v;
        }
        shift += 7;
    }
}

/// The length-delimited fields of a message: (field number, bytes).
fn fields(b: &[u8]) -> Vec<(u64, Vec<u8>)> {
    let mut at = 0;
    let mut out = Vec::new();
    while at < b.len() {
        let key = varint(b, &mut at);
        assert_eq!(key & 7, 2, "only length-delimited fields here");
        let len = varint(b, &mut at) as usize;
        out.push((key >> 3, b[at..at + len].to_vec()));
        at += len;
    }
    out
}

/// One watch frame: a 4-byte big-endian length, then a WatchEvent {type = 1, object = 2
/// RawExtension {raw = 1}} whose raw is an encoded object (magic and envelope).
fn watch_event(frame: &[u8]) -> (String, Value) {
    let event = fields(frame);
    let ty = String::from_utf8(event[0].1.clone()).unwrap();
    assert_eq!(event[0].0, 1);
    assert_eq!(event[1].0, 2);
    let raw = fields(&event[1].1);
    assert_eq!(raw[0].0, 1);
    (ty, decode_object(&raw[0].1).unwrap())
}

#[tokio::test]
async fn objects_lists_and_statuses_are_answered_in_protobuf() {
    let h = server().await;
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "pb", "labels": {"a": "b"}}, "data": {"k": "v"}});
    assert_eq!(
        post_json(&h, "/api/v1/namespaces/default/configmaps", &cm)
            .await
            .status
            .as_u16(),
        201
    );
    let as_json = get(&h, "/api/v1/namespaces/default/configmaps/pb")
        .await
        .json();

    let r = get_pb(&h, "/api/v1/namespaces/default/configmaps/pb").await;
    assert_eq!(r.status.as_u16(), 200);
    assert_eq!(content_type(&r), CONTENT_TYPE);
    assert!(r.body.starts_with(b"k8s\0"));
    assert_eq!(decode_object(&r.body).unwrap(), as_json);

    let r = get_pb(&h, "/api/v1/namespaces/default/configmaps").await;
    assert_eq!(content_type(&r), CONTENT_TYPE);
    let list = decode_object(&r.body).unwrap();
    assert_eq!(list["kind"], "ConfigMapList");
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"pb"), "{names:?}");

    // Errors in protobuf too (a meta/v1 Status).
    let r = get_pb(&h, "/api/v1/namespaces/default/configmaps/missing").await;
    assert_eq!(r.status.as_u16(), 404);
    assert_eq!(content_type(&r), CONTENT_TYPE);
    let status = decode_object(&r.body).unwrap();
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "NotFound");
    assert_eq!(status["code"], 404);
    assert_eq!(status["message"], "configmaps \"missing\" not found");

    // A create answered in protobuf; a delete's Status likewise.
    let r = send_with(
        &h,
        Method::POST,
        "/api/v1/namespaces/default/secrets",
        &[("accept", PB_FIRST), ("content-type", "application/json")],
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
               "stringData": {"k": "v"}})
        .to_string(),
    )
    .await;
    assert_eq!(r.status.as_u16(), 201);
    let secret = decode_object(&r.body).unwrap();
    assert_eq!(secret["data"], json!({"k": "dg=="}));
    let r = send_with(
        &h,
        Method::DELETE,
        "/api/v1/namespaces/default/configmaps/pb",
        &[("accept", PB_FIRST)],
        "",
    )
    .await;
    assert_eq!(r.status.as_u16(), 200);
    let status = decode_object(&r.body).unwrap();
    assert_eq!(status["status"], "Success");
    assert_eq!(status["details"]["name"], "pb");

    // Tables have no protobuf form: the JSON Table asked for next is the answer.
    let r = send_with(
        &h,
        Method::GET,
        "/api/v1/namespaces/default/secrets",
        &[(
            "accept",
            "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io, application/json;as=Table;v=v1;g=meta.k8s.io",
        )],
        "",
    )
    .await;
    assert_eq!(content_type(&r), "application/json");
    assert_eq!(r.json()["kind"], "Table");
}

#[tokio::test]
async fn custom_resources_stay_json_and_protobuf_only_is_not_acceptable() {
    let h = server().await;
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": {"type": "object",
                                   "x-kubernetes-preserve-unknown-fields": true}}}]}});
    assert_eq!(
        post_json(
            &h,
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            &crd
        )
        .await
        .status
        .as_u16(),
        201
    );
    h.settled().await;
    let path = "/apis/example.com/v1/namespaces/default/gadgets";
    let r = get_pb(&h, path).await;
    assert_eq!(
        r.status.as_u16(),
        200,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(content_type(&r), "application/json");
    let r = send_with(&h, Method::GET, path, &[("accept", CONTENT_TYPE)], "").await;
    assert_eq!(r.status.as_u16(), 406);
}

#[tokio::test]
async fn watch_streams_length_prefixed_watch_events() {
    let h = server().await;
    let req = http::Request::builder()
        .uri("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=0")
        .header("accept", PB_FIRST)
        .body(bytes::Bytes::new())
        .unwrap();
    let resp = h.service().oneshot(req).await.unwrap();
    assert_eq!(
        resp.headers()["content-type"],
        "application/vnd.kubernetes.protobuf;stream=watch"
    );
    let mut body = resp.into_body();
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "watched"}, "data": {"k": "v"}});
    assert_eq!(
        post_json(&h, "/api/v1/namespaces/default/configmaps", &cm)
            .await
            .status
            .as_u16(),
        201
    );
    // Frames until the one for `watched` (kube-root-ca.crt may come first).
    let mut buf: Vec<u8> = Vec::new();
    let found = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        loop {
            while buf.len() >= 4 {
                let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
                if buf.len() < 4 + len {
                    break;
                }
                let frame: Vec<u8> = buf.drain(..4 + len).skip(4).collect();
                let (ty, obj) = watch_event(&frame);
                if obj["metadata"]["name"] == "watched" {
                    return (ty, obj);
                }
            }
            let frame = body.frame().await.unwrap().unwrap();
            if let Ok(data) = frame.into_data() {
                buf.extend_from_slice(&data);
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(found.0, "ADDED");
    assert_eq!(found.1["kind"], "ConfigMap");
    assert_eq!(found.1["data"], json!({"k": "v"}));
}
