//! `/openapi/v2` in the protobuf form client-go downloads (gnostic `openapi.v2.Document`), and
//! in JSON for clients that ask for it: every route kube-apiserver publishes for the served
//! resources (`openapi_routes.rs`: ids, tags, descriptions, media types, path, query and body
//! parameters with their descriptions, responses, `x-kubernetes-action` and
//! `x-kubernetes-group-version-kind`; older kubectl reads `fieldValidation` support from
//! here). Both forms carry `definitions`: the built-in kinds' (from `kubox-openapi`) and those
//! the served CRD versions publish (`kubectl explain --output plaintext-openapiv2` reads them).

use std::sync::Arc;

use http::{HeaderMap, Response};
use serde_json::{json, Map, Value};

use crate::body::{Body, Tagged};
use crate::openapi_routes::{paths, Param, Returns};
use crate::registry::Snapshot;

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
    fn uint(&mut self, field: u32, v: u64) {
        if v != 0 {
            self.varint((field as u64) << 3);
            self.varint(v);
        }
    }
    fn double(&mut self, field: u32, v: f64) {
        if v != 0.0 {
            self.varint(((field as u64) << 3) | 1);
            self.0.extend_from_slice(&v.to_le_bytes());
        }
    }
}

/// A gnostic `Any` holding a JSON value as YAML (JSON is YAML's flow style).
fn any(v: &Value) -> Pb {
    let mut a = Pb::default();
    a.string(2, &format!("{v}\n"));
    a
}

/// One Swagger 2.0 schema (`#/definitions/` references) as a gnostic `openapi.v2.Schema`.
fn schema_pb(s: &Value) -> Pb {
    let mut pb = Pb::default();
    let Some(m) = s.as_object() else {
        return pb;
    };
    let str_of = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or_default();
    let int_of = |k: &str| m.get(k).and_then(Value::as_u64).unwrap_or(0);
    let num_of = |k: &str| m.get(k).and_then(Value::as_f64).unwrap_or(0.0);
    let bool_of = |k: &str| u64::from(m.get(k).and_then(Value::as_bool) == Some(true));
    pb.string(1, str_of("$ref"));
    pb.string(2, str_of("format"));
    pb.string(3, str_of("title"));
    pb.string(4, str_of("description"));
    if let Some(d) = m.get("default") {
        pb.message(5, any(d));
    }
    pb.double(6, num_of("multipleOf"));
    pb.double(7, num_of("maximum"));
    pb.uint(8, bool_of("exclusiveMaximum"));
    pb.double(9, num_of("minimum"));
    pb.uint(10, bool_of("exclusiveMinimum"));
    pb.uint(11, int_of("maxLength"));
    pb.uint(12, int_of("minLength"));
    pb.string(13, str_of("pattern"));
    pb.uint(14, int_of("maxItems"));
    pb.uint(15, int_of("minItems"));
    pb.uint(16, bool_of("uniqueItems"));
    pb.uint(17, int_of("maxProperties"));
    pb.uint(18, int_of("minProperties"));
    for r in m
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        pb.string(19, r.as_str().unwrap_or_default());
    }
    for e in m
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        pb.message(20, any(e));
    }
    match m.get("additionalProperties") {
        Some(Value::Bool(b)) => {
            let mut item = Pb::default();
            item.varint(2 << 3);
            item.varint(u64::from(*b));
            pb.message(21, item);
        }
        Some(a @ Value::Object(_)) => {
            let mut item = Pb::default();
            item.message(1, schema_pb(a));
            pb.message(21, item);
        }
        _ => {}
    }
    if let Some(t) = m.get("type").and_then(Value::as_str) {
        let mut ty = Pb::default();
        ty.string(1, t);
        pb.message(22, ty);
    }
    if let Some(i) = m.get("items").filter(|i| i.is_object()) {
        let mut items = Pb::default();
        items.message(1, schema_pb(i));
        pb.message(23, items);
    }
    for a in m
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        pb.message(24, schema_pb(a));
    }
    if let Some(props) = m.get("properties").and_then(Value::as_object) {
        let mut p = Pb::default();
        for (name, s) in props {
            let mut named = Pb::default();
            named.string(1, name);
            named.message(2, schema_pb(s));
            p.message(1, named);
        }
        pb.message(25, p);
    }
    pb.uint(27, bool_of("readOnly"));
    if let Some(e) = m.get("example") {
        pb.message(30, any(e));
    }
    for (k, v) in m.iter().filter(|(k, _)| k.starts_with("x-")) {
        let mut named = Pb::default();
        named.string(1, k);
        named.message(2, any(v));
        pb.message(31, named);
    }
    pb
}

fn method_field(method: &str) -> u32 {
    match method {
        "get" => 2,
        "put" => 3,
        "post" => 4,
        "delete" => 5,
        "options" => 6,
        "head" => 7,
        _ => 8,
    }
}

fn gvk_yaml((group, version, kind): &(String, String, String)) -> String {
    format!("group: \"{group}\"\nkind: {kind}\nversion: {version}\n")
}

/// A gnostic `ParametersItem`.
fn param_pb(p: &Param) -> Pb {
    let mut param = Pb::default();
    if p.location == "body" {
        let mut b = Pb::default();
        b.string(2, &p.name);
        b.string(3, "body");
        b.uint(4, u64::from(p.required));
        if let Some(def) = &p.schema {
            b.message(
                5,
                schema_pb(&json!({"$ref": format!("#/definitions/{def}")})),
            );
        }
        param.message(1, b);
    } else {
        // Query and path sub-schemas differ from `type` on (query has allowEmptyValue).
        let (sub_field, type_field, unique_field) = if p.location == "path" {
            (4, 5, 19)
        } else {
            (3, 6, 20)
        };
        let mut q = Pb::default();
        q.uint(1, u64::from(p.required));
        q.string(2, p.location);
        q.string(3, &p.description);
        q.string(4, &p.name);
        q.string(type_field, p.ty);
        q.uint(unique_field, 1);
        let mut nbp = Pb::default();
        nbp.message(sub_field, q);
        param.message(2, nbp);
    }
    let mut item = Pb::default();
    item.message(1, param);
    item
}

/// A Swagger 2.0 parameter (JSON) as a gnostic `ParametersItem`: a `$ref`, a body parameter,
/// or a header, formData, query or path one.
fn json_param_pb(p: &Value) -> Pb {
    let str_of = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or_default();
    let mut item = Pb::default();
    if let Some(r) = p.get("$ref").and_then(Value::as_str) {
        let mut reference = Pb::default();
        reference.string(1, r);
        item.message(2, reference);
        return item;
    }
    let required = u64::from(p.get("required").and_then(Value::as_bool) == Some(true));
    let mut param = Pb::default();
    if str_of("in") == "body" {
        let mut b = Pb::default();
        b.string(1, str_of("description"));
        b.string(2, str_of("name"));
        b.string(3, "body");
        b.uint(4, required);
        if let Some(schema) = p.get("schema") {
            b.message(5, schema_pb(schema));
        }
        param.message(1, b);
    } else {
        // gnostic's sub-schemas: header 1, formData 2, query 3, path 4; their `type` and
        // `uniqueItems` fields sit at different numbers.
        let (sub_field, type_field, unique_field) = match str_of("in") {
            "path" => (4, 5, 19),
            "header" => (1, 5, 19),
            "formData" => (2, 6, 20),
            _ => (3, 6, 20),
        };
        let mut q = Pb::default();
        q.uint(1, required);
        q.string(2, str_of("in"));
        q.string(3, str_of("description"));
        q.string(4, str_of("name"));
        q.string(type_field, str_of("type"));
        q.uint(
            unique_field,
            u64::from(p.get("uniqueItems").and_then(Value::as_bool) == Some(true)),
        );
        let mut nbp = Pb::default();
        nbp.message(sub_field, q);
        param.message(2, nbp);
    }
    item.message(1, param);
    item
}

/// Vendor extensions (`x-…`) of a JSON object as gnostic `NamedAny`s in `field`.
fn extensions_pb(pb: &mut Pb, field: u32, v: &Value) {
    for (k, x) in v
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| k.starts_with("x-"))
    {
        let mut named = Pb::default();
        named.string(1, k);
        named.message(2, any(x));
        pb.message(field, named);
    }
}

/// A Swagger 2.0 operation (JSON) as a gnostic `Operation`.
fn json_operation_pb(op: &Value) -> Pb {
    let strs = |k: &str| -> Vec<&str> {
        op.get(k)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect()
    };
    let str_of = |k: &str| op.get(k).and_then(Value::as_str).unwrap_or_default();
    let mut pb = Pb::default();
    for t in strs("tags") {
        pb.string(1, t);
    }
    pb.string(2, str_of("summary"));
    pb.string(3, str_of("description"));
    pb.string(5, str_of("operationId"));
    for p in strs("produces") {
        pb.string(6, p);
    }
    for c in strs("consumes") {
        pb.string(7, c);
    }
    for p in op
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        pb.message(8, json_param_pb(p));
    }
    let mut responses = Pb::default();
    for (code, r) in op
        .get("responses")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let mut resp = Pb::default();
        resp.string(
            1,
            r.get("description")
                .and_then(Value::as_str)
                .unwrap_or_default(),
        );
        if let Some(schema) = r.get("schema") {
            let mut item = Pb::default();
            item.message(1, schema_pb(schema));
            resp.message(2, item);
        }
        let mut rv = Pb::default();
        rv.message(1, resp);
        let mut nrv = Pb::default();
        nrv.string(1, code);
        nrv.message(2, rv);
        responses.message(1, nrv);
    }
    pb.message(9, responses);
    for s in strs("schemes") {
        pb.string(10, s);
    }
    pb.uint(
        11,
        u64::from(op.get("deprecated").and_then(Value::as_bool) == Some(true)),
    );
    extensions_pb(&mut pb, 13, op);
    pb
}

/// An extension server's paths and definitions (JSON), minus the names kubox already has, as
/// the two top-level `Document` fields (paths 8, definitions 9). A protobuf parser merges a
/// message field that occurs twice, so these follow kubox's own document as they are.
fn remote_pb(snap: &Snapshot, remote: &[Arc<Value>]) -> Vec<u8> {
    let local_paths: std::collections::HashSet<String> = paths(snap, None)
        .into_iter()
        .map(|i| i.path.clone())
        .collect();
    let local_defs = definitions(snap);
    let mut seen_paths = std::collections::HashSet::new();
    let mut seen_defs = std::collections::HashSet::new();
    let mut paths_pb = Pb::default();
    let mut defs_pb = Pb::default();
    for doc in remote {
        for (path, item) in doc["paths"].as_object().into_iter().flatten() {
            if local_paths.contains(path) || !seen_paths.insert(path.clone()) {
                continue;
            }
            let mut item_pb = Pb::default();
            for method in ["get", "put", "post", "delete", "options", "head", "patch"] {
                if let Some(op) = item.get(method) {
                    item_pb.message(method_field(method), json_operation_pb(op));
                }
            }
            for p in item
                .get("parameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                item_pb.message(9, json_param_pb(p));
            }
            extensions_pb(&mut item_pb, 10, item);
            let mut named = Pb::default();
            named.string(1, path);
            named.message(2, item_pb);
            paths_pb.message(2, named);
        }
        for (name, schema) in doc["definitions"].as_object().into_iter().flatten() {
            if local_defs.get(name).is_some() || !seen_defs.insert(name.clone()) {
                continue;
            }
            let mut named = Pb::default();
            named.string(1, name);
            named.message(2, schema_pb(schema));
            defs_pb.message(1, named);
        }
    }
    let mut out = Pb::default();
    out.message(8, paths_pb);
    out.message(9, defs_pb);
    out.0
}

fn returns_json(r: &Returns) -> Value {
    match r {
        Returns::Definition(d) => json!({"$ref": format!("#/definitions/{d}")}),
        Returns::Text => json!({"type": "string"}),
    }
}

fn protobuf(snap: &Snapshot) -> Vec<u8> {
    let mut doc = Pb::default();
    doc.string(1, "2.0");
    let mut info = Pb::default();
    info.string(1, "Kubernetes");
    info.string(2, &format!("v1.{}.0", crate::version::KUBERNETES_MINOR));
    doc.message(2, info);
    let mut paths_pb = Pb::default();
    for item in paths(snap, None) {
        let mut item_pb = Pb::default();
        for op in &item.ops {
            let mut op_pb = Pb::default();
            op_pb.string(1, &op.tag);
            op_pb.string(3, &op.description);
            op_pb.string(5, &op.id);
            for p in &op.produces {
                op_pb.string(6, p);
            }
            for c in op.consumes {
                op_pb.string(7, c);
            }
            for p in &op.params {
                op_pb.message(8, param_pb(p));
            }
            let mut responses = Pb::default();
            for (code, description, returns) in &op.responses {
                let mut resp = Pb::default();
                resp.string(1, description);
                if let Some(r) = returns {
                    let mut item = Pb::default();
                    item.message(1, schema_pb(&returns_json(r)));
                    resp.message(2, item);
                }
                let mut rv = Pb::default();
                rv.message(1, resp);
                let mut nrv = Pb::default();
                nrv.string(1, &code.to_string());
                nrv.message(2, rv);
                responses.message(1, nrv);
            }
            op_pb.message(9, responses);
            op_pb.string(10, "https");
            for (name, yaml) in [
                ("x-kubernetes-action", format!("{}\n", op.action)),
                ("x-kubernetes-group-version-kind", gvk_yaml(&op.gvk)),
            ] {
                let mut any = Pb::default();
                any.string(2, &yaml);
                let mut named = Pb::default();
                named.string(1, name);
                named.message(2, any);
                op_pb.message(13, named);
            }
            item_pb.message(method_field(op.method), op_pb);
        }
        for p in &item.params {
            item_pb.message(9, param_pb(p));
        }
        let mut named = Pb::default();
        named.string(1, &item.path);
        named.message(2, item_pb);
        paths_pb.message(2, named);
    }
    doc.message(8, paths_pb);
    let mut defs = Pb::default();
    if let Value::Object(all) = definitions(snap) {
        for (name, s) in &all {
            let mut named = Pb::default();
            named.string(1, name);
            named.message(2, schema_pb(s));
            defs.message(1, named);
        }
    }
    doc.message(9, defs);
    doc.0
}

fn param_json(p: &Param) -> Value {
    if p.location == "body" {
        let mut v = json!({"in": "body", "name": p.name, "required": p.required});
        if let Some(def) = &p.schema {
            v["schema"] = json!({"$ref": format!("#/definitions/{def}")});
        }
        return v;
    }
    let mut v = json!({"description": p.description, "in": p.location, "name": p.name,
        "type": p.ty, "uniqueItems": true});
    if p.required {
        v["required"] = json!(true);
    }
    v
}

fn json_doc(snap: &Snapshot) -> Value {
    let mut paths_json = Map::new();
    for item in paths(snap, None) {
        let mut item_json = Map::new();
        for op in &item.ops {
            let mut responses = Map::new();
            for (code, description, returns) in &op.responses {
                let mut r = json!({"description": description});
                if let Some(ret) = returns {
                    r["schema"] = returns_json(ret);
                }
                responses.insert(code.to_string(), r);
            }
            let (group, version, kind) = &op.gvk;
            let mut op_json = json!({
                "consumes": op.consumes,
                "description": op.description,
                "operationId": op.id,
                "produces": op.produces,
                "responses": responses,
                "schemes": ["https"],
                "tags": [op.tag],
                "x-kubernetes-action": op.action,
                "x-kubernetes-group-version-kind": {"group": group, "kind": kind, "version": version},
            });
            if !op.params.is_empty() {
                op_json["parameters"] = op.params.iter().map(param_json).collect();
            }
            item_json.insert(op.method.to_string(), op_json);
        }
        if !item.params.is_empty() {
            item_json.insert(
                "parameters".to_string(),
                item.params.iter().map(param_json).collect(),
            );
        }
        paths_json.insert(item.path, Value::Object(item_json));
    }
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": format!("v1.{}.0", crate::version::KUBERNETES_MINOR)},
        "paths": paths_json,
        "definitions": definitions(snap),
    })
}

/// Every definition: the built-in kinds' and those the served custom resources publish.
fn definitions(snap: &Snapshot) -> Value {
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
    definitions
}

/// Serve `/openapi/v2` (and the legacy `/swagger-2.0.0.pb-v1`).
pub fn serve(snap: &Snapshot, headers: &HeaderMap, remote: &[Arc<Value>]) -> Response<Body> {
    let accept = headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    // Rendered once per snapshot of the served resources: it changes with CRDs only. Extension
    // servers' paths and definitions join both forms (kube-aggregator's merge; a name already
    // taken keeps kubox's).
    let local_protobuf = || {
        snap.openapi_v2
            .protobuf
            .get_or_init(|| Tagged::new(protobuf(snap).into()))
    };
    let (content_type, tagged) = if !remote.is_empty() && accept.contains("protobuf") {
        let mut merged = local_protobuf().bytes.to_vec();
        merged.extend_from_slice(&remote_pb(snap, remote));
        (
            "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
            Tagged::new(merged.into()),
        )
    } else if !remote.is_empty() {
        let mut doc = json_doc(snap);
        for r in remote {
            for key in ["paths", "definitions"] {
                if let (Some(into), Some(from)) = (doc[key].as_object_mut(), r[key].as_object()) {
                    for (k, v) in from {
                        into.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                }
            }
        }
        let body = serde_json::to_vec(&doc).unwrap_or_default();
        ("application/json", Tagged::new(body.into()))
    } else if accept.contains("protobuf") {
        (
            "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
            local_protobuf().clone(),
        )
    } else {
        let t = snap.openapi_v2.json.get_or_init(|| {
            Tagged::new(
                serde_json::to_vec(&json_doc(snap))
                    .unwrap_or_default()
                    .into(),
            )
        });
        ("application/json", t.clone())
    };
    // An ETag of the content, so HTTP caches (kubectl's) revalidate instead of downloading.
    crate::body::with_etag(headers, content_type, tagged.bytes, &tagged.etag)
}
