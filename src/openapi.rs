//! `/openapi/v3`: the discovery root and one document per group/version, computed from the
//! registry. Each operation carries `x-kubernetes-group-version-kind` and its query parameters,
//! which is how kubectl learns that the server validates fields itself (`fieldValidation`) and
//! so skips client-side schema validation. `components.schemas` holds the built-in kinds'
//! definitions (from `kubox-openapi`) and what they reference, which `kubectl explain` reads,
//! plus each custom resource's kind and list kind as its CRD publishes them (built once when
//! the CRD version is registered); operations reference their kind's schema.

use http::{Response, StatusCode};
use serde_json::{json, Map, Value};

use crate::body::{json_response, Body};
use crate::openapi_routes::{Param, Returns};
use crate::registry::{ResourceInfo, Snapshot};
use crate::status::{ApiError, ApiResult};

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// A content hash for a group/version document, so clients can cache it.
fn doc_hash(doc: &Value) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    doc.to_string().hash(&mut h);
    format!("{:016X}", h.finish())
}

/// Serve `/openapi/v3` and `/openapi/v3/{api|apis/...}`.
pub fn serve(
    snap: &Snapshot,
    path: &str,
    remote: &[(String, String)],
) -> ApiResult<Response<Body>> {
    let rest = path.trim_start_matches("/openapi/v3").trim_matches('/');
    if rest.is_empty() {
        let mut paths = Map::new();
        // Extension servers' group/versions: their documents are fetched from them when asked
        // for; the hash is the one they publish.
        for (p, url) in remote {
            let hash = url.split_once("hash=").map(|(_, h)| h).unwrap_or_default();
            paths.insert(
                p.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={hash}")}),
            );
        }
        for g in &snap.groups {
            for v in &g.versions {
                let p = gv_path(&g.name, v);
                // Built-in components are fixed per build, custom resources' change with their
                // CRD: hash the operations, the schema asset and the custom schemas.
                let custom: Vec<u64> = snap
                    .resources(&g.name, v)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|r| r.strategy.published_schema())
                    .map(|p| p.content_hash())
                    .collect();
                let hash = doc_hash(&json!([
                    document(snap, &g.name, v).0,
                    kubox_openapi::Schemas::content_hash(),
                    custom,
                ]));
                paths.insert(
                    p.clone(),
                    json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={hash}")}),
                );
            }
        }
        return Ok(json_response(StatusCode::OK, &json!({"paths": paths})));
    }
    let parts: Vec<&str> = rest.split('/').collect();
    let (group, version) = match parts.as_slice() {
        ["api", v] => ("", *v),
        ["apis", g, v] => (*g, *v),
        _ => return Err(ApiError::path_not_found()),
    };
    if snap.resources(group, version).is_none() {
        return Err(ApiError::path_not_found());
    }
    let (mut doc, refs) = document(snap, group, version);
    let resources = snap.resources(group, version).unwrap_or_default();
    let custom: Vec<(&str, &Value)> = resources
        .iter()
        .filter_map(|r| r.strategy.published_schema())
        .flat_map(|p| p.v3_schemas())
        .collect();
    // Besides the group/version's kinds, what the operations read and answer (Status,
    // WatchEvent, DeleteOptions, Patch, Scale, the subresources' kinds).
    let custom_names: std::collections::HashSet<&str> = custom.iter().map(|(n, _)| *n).collect();
    let more: Vec<&str> = refs
        .iter()
        .map(String::as_str)
        .filter(|r| !custom_names.contains(r))
        .collect();
    doc["components"] =
        kubox_openapi::Schemas::builtin().v3_components_with_roots(group, version, &custom, &more);
    Ok(json_response(StatusCode::OK, &doc))
}

/// The component name of a resource's kind: built-in, or published by its CRD.
pub(crate) fn definition_name(r: &ResourceInfo) -> Option<&str> {
    match r.strategy.published_schema() {
        Some(p) => Some(p.definition()),
        None => kubox_openapi::Schemas::builtin().definition_name(&r.group, &r.version, &r.kind),
    }
}

fn v3_param(p: &Param) -> Value {
    let mut v = json!({"name": p.name, "in": p.location, "description": p.description,
        "schema": {"type": p.ty, "uniqueItems": true}});
    if p.required {
        v["required"] = json!(true);
    }
    v
}

fn v3_schema(r: &Returns) -> Value {
    match r {
        Returns::Definition(d) => json!({"$ref": format!("#/components/schemas/{d}")}),
        Returns::Text => json!({"type": "string"}),
    }
}

/// The group/version's document without its components, and the definitions its operations
/// refer to.
fn document(snap: &Snapshot, group: &str, version: &str) -> (Value, Vec<String>) {
    let mut paths = Map::new();
    let mut refs = std::collections::BTreeSet::new();
    for item in crate::openapi_routes::paths(snap, Some((group, version))) {
        let mut item_json = Map::new();
        for op in &item.ops {
            let mut responses = Map::new();
            for (code, description, returns) in &op.responses {
                let mut r = json!({"description": description});
                if let Some(ret) = returns {
                    if let Returns::Definition(d) = ret {
                        refs.insert(d.clone());
                    }
                    let content: Map<String, Value> = op
                        .produces
                        .iter()
                        .map(|m| (m.to_string(), json!({"schema": v3_schema(ret)})))
                        .collect();
                    r["content"] = Value::Object(content);
                }
                responses.insert(code.to_string(), r);
            }
            let (g, v, k) = &op.gvk;
            let mut op_json = json!({
                "tags": [op.tag],
                "description": op.description,
                "operationId": op.id,
                "responses": responses,
                "x-kubernetes-action": op.action,
                "x-kubernetes-group-version-kind": {"group": g, "version": v, "kind": k},
            });
            let params: Vec<Value> = op
                .params
                .iter()
                .filter(|p| p.location != "body")
                .map(v3_param)
                .collect();
            if !params.is_empty() {
                op_json["parameters"] = json!(params);
            }
            if let Some(b) = op.params.iter().find(|p| p.location == "body") {
                if let Some(def) = &b.schema {
                    refs.insert(def.clone());
                    let schema = json!({"$ref": format!("#/components/schemas/{def}")});
                    let content: Map<String, Value> = op
                        .consumes
                        .iter()
                        .map(|m| (m.to_string(), json!({"schema": schema})))
                        .collect();
                    op_json["requestBody"] = json!({"content": content, "required": b.required});
                }
            }
            item_json.insert(op.method.to_string(), op_json);
        }
        if !item.params.is_empty() {
            item_json.insert(
                "parameters".into(),
                item.params.iter().map(v3_param).collect(),
            );
        }
        paths.insert(item.path, Value::Object(item_json));
    }
    let doc = json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": format!("v1.{}.0", crate::version::KUBERNETES_MINOR)},
        "paths": paths,
        "components": {"schemas": {}},
    });
    (doc, refs.into_iter().collect())
}
