//! `/openapi/v2` in the protobuf form client-go downloads (gnostic `openapi.v2.Document`), and
//! in JSON for clients that ask for it. Like `/openapi/v3`, it lists every operation with its
//! `x-kubernetes-group-version-kind` and query parameters (older kubectl reads `fieldValidation`
//! support from here). The JSON form also carries the built-in kinds' `definitions` (from
//! `kubox-openapi`) and operations reference them; the protobuf form has no definitions yet.

use http::{HeaderMap, Response, StatusCode};
use serde_json::{json, Map, Value};

use crate::body::{bytes_response, json_response, Body};
use crate::registry::{ResourceInfo, Snapshot};

/// Minimal protobuf writer: just what the OpenAPI document needs.
#[derive(Default)]
struct Pb(Vec<u8>);

impl Pb {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.varint(((field as u64) << 3) | 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }
    fn string(&mut self, field: u32, s: &str) {
        if !s.is_empty() {
            self.bytes(field, s.as_bytes());
        }
    }
    fn message(&mut self, field: u32, m: Pb) {
        self.bytes(field, &m.0);
    }
}

struct Op {
    action: &'static str,
    params: &'static [&'static str],
}

const WRITE: &[&str] = &["dryRun", "fieldManager", "fieldValidation"];

fn ops(r: &ResourceInfo, item: bool) -> Vec<(&'static str, Op)> {
    let mut v = Vec::new();
    let mut add = |method, verb: &str, action, params| {
        if r.has_verb(verb) {
            v.push((method, Op { action, params }));
        }
    };
    if item {
        add("get", "get", "get", &[] as &[&str]);
        add("put", "update", "put", WRITE);
        add(
            "patch",
            "patch",
            "patch",
            &["dryRun", "fieldManager", "fieldValidation", "force"],
        );
        add(
            "delete",
            "delete",
            "delete",
            &["dryRun", "gracePeriodSeconds", "propagationPolicy"],
        );
    } else {
        add(
            "get",
            "list",
            "list",
            &[
                "labelSelector",
                "fieldSelector",
                "limit",
                "continue",
                "resourceVersion",
                "watch",
            ],
        );
        add("post", "create", "post", WRITE);
        add(
            "delete",
            "deletecollection",
            "deletecollection",
            &["labelSelector", "fieldSelector"],
        );
    }
    v
}

fn paths(snap: &Snapshot) -> Vec<(String, &ResourceInfo, bool)> {
    let mut out = Vec::new();
    for g in &snap.groups {
        for v in &g.versions {
            let prefix = if g.name.is_empty() {
                format!("/api/{v}")
            } else {
                format!("/apis/{}/{v}", g.name)
            };
            for r in snap.resources(&g.name, v).unwrap_or_default() {
                let coll = if r.namespaced {
                    format!("{prefix}/namespaces/{{namespace}}/{}", r.resource)
                } else {
                    format!("{prefix}/{}", r.resource)
                };
                out.push((coll.clone(), r.as_ref(), false));
                out.push((format!("{coll}/{{name}}"), r.as_ref(), true));
            }
        }
    }
    out
}

fn method_field(method: &str) -> u32 {
    match method {
        "get" => 2,
        "put" => 3,
        "post" => 4,
        "delete" => 5,
        _ => 8,
    }
}

fn gvk_yaml(r: &ResourceInfo) -> String {
    format!(
        "group: \"{}\"\nkind: {}\nversion: {}\n",
        r.group, r.kind, r.version
    )
}

fn protobuf(snap: &Snapshot) -> Vec<u8> {
    let mut doc = Pb::default();
    doc.string(1, "2.0");
    let mut info = Pb::default();
    info.string(1, "Kubernetes");
    info.string(2, &format!("v1.{}.0", crate::version::KUBERNETES_MINOR));
    doc.message(2, info);
    let mut paths_pb = Pb::default();
    for (path, r, item) in paths(snap) {
        let mut item_pb = Pb::default();
        for (method, op) in ops(r, item) {
            let mut op_pb = Pb::default();
            op_pb.string(5, &format!("{}{}", op.action, r.kind));
            for p in op.params {
                let mut q = Pb::default();
                q.string(2, "query");
                q.string(4, p);
                q.string(6, "string");
                let mut nbp = Pb::default();
                nbp.message(3, q);
                let mut param = Pb::default();
                param.message(2, nbp);
                let mut pi = Pb::default();
                pi.message(1, param);
                op_pb.message(8, pi);
            }
            let mut resp = Pb::default();
            resp.string(1, "OK");
            let mut rv = Pb::default();
            rv.message(1, resp);
            let mut nrv = Pb::default();
            nrv.string(1, "200");
            nrv.message(2, rv);
            let mut responses = Pb::default();
            responses.message(1, nrv);
            op_pb.message(9, responses);
            for (name, yaml) in [
                ("x-kubernetes-action", format!("{}\n", op.action)),
                ("x-kubernetes-group-version-kind", gvk_yaml(r)),
            ] {
                let mut any = Pb::default();
                any.string(2, &yaml);
                let mut named = Pb::default();
                named.string(1, name);
                named.message(2, any);
                op_pb.message(13, named);
            }
            item_pb.message(method_field(method), op_pb);
        }
        let mut named = Pb::default();
        named.string(1, &path);
        named.message(2, item_pb);
        paths_pb.message(2, named);
    }
    doc.message(8, paths_pb);
    doc.0
}

fn json_doc(snap: &Snapshot) -> Value {
    let mut paths_json = Map::new();
    for (path, r, item) in paths(snap) {
        let mut item_json = Map::new();
        for (method, op) in ops(r, item) {
            let params: Vec<Value> = op
                .params
                .iter()
                .map(|p| json!({"name": p, "in": "query", "type": "string", "uniqueItems": true}))
                .collect();
            let mut op_json = json!({
                "operationId": format!("{}{}", op.action, r.kind),
                "parameters": params,
                "responses": {"200": {"description": "OK"}},
                "x-kubernetes-action": op.action,
                "x-kubernetes-group-version-kind": {"group": r.group, "version": r.version, "kind": r.kind},
            });
            let definition = crate::openapi::definition_name(r);
            if let (Some(def), "get" | "put" | "post" | "patch") = (definition, op.action) {
                op_json["responses"]["200"]["schema"] =
                    json!({"$ref": format!("#/definitions/{def}")});
            }
            item_json.insert(method.to_string(), op_json);
        }
        paths_json.insert(path, Value::Object(item_json));
    }
    let mut definitions = kubox_openapi::Schemas::builtin().v2_definitions();
    if let Some(defs) = definitions.as_object_mut() {
        for g in &snap.groups {
            for v in &g.versions {
                for r in snap.resources(&g.name, v).unwrap_or_default() {
                    if let Some(p) = r.strategy.published_schema() {
                        for (name, schema) in p.v2_definitions() {
                            defs.insert(name.to_string(), schema.clone());
                        }
                    }
                }
            }
        }
    }
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": format!("v1.{}.0", crate::version::KUBERNETES_MINOR)},
        "paths": paths_json,
        "definitions": definitions,
    })
}

/// Serve `/openapi/v2` (and the legacy `/swagger-2.0.0.pb-v1`).
pub fn serve(snap: &Snapshot, headers: &HeaderMap) -> Response<Body> {
    let accept = headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if accept.contains("protobuf") {
        bytes_response(
            StatusCode::OK,
            "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
            protobuf(snap),
        )
    } else {
        json_response(StatusCode::OK, &json_doc(snap))
    }
}
