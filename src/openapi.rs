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
pub fn serve(snap: &Snapshot, path: &str) -> ApiResult<Response<Body>> {
    let rest = path.trim_start_matches("/openapi/v3").trim_matches('/');
    if rest.is_empty() {
        let mut paths = Map::new();
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
                    document(snap, &g.name, v),
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
    let mut doc = document(snap, group, version);
    let resources = snap.resources(group, version).unwrap_or_default();
    let custom: Vec<(&str, &Value)> = resources
        .iter()
        .filter_map(|r| r.strategy.published_schema())
        .flat_map(|p| p.v3_schemas())
        .collect();
    let scale = resources.iter().any(|r| r.subresource("scale").is_some());
    let more: &[&str] = if scale { &[SCALE_DEFINITION] } else { &[] };
    doc["components"] =
        kubox_openapi::Schemas::builtin().v3_components_with_roots(group, version, &custom, more);
    Ok(json_response(StatusCode::OK, &doc))
}

/// The component name of a resource's kind: built-in, or published by its CRD.
pub(crate) fn definition_name(r: &ResourceInfo) -> Option<&str> {
    match r.strategy.published_schema() {
        Some(p) => Some(p.definition()),
        None => kubox_openapi::Schemas::builtin().definition_name(&r.group, &r.version, &r.kind),
    }
}

fn param(name: &str) -> Value {
    json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}})
}

fn operation(r: &ResourceInfo, action: &str, query: &[&str]) -> Value {
    let mut params: Vec<Value> = query.iter().map(|q| param(q)).collect();
    params.push(
        json!({"name": "pretty", "in": "query", "schema": {"type": "string", "uniqueItems": true}}),
    );
    let mut op = json!({
        "operationId": format!("{action}{}", r.kind),
        "parameters": params,
        "responses": {"200": {"description": "OK"}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": r.group, "version": r.version, "kind": r.kind},
    });
    if let Some(def) = definition_name(r) {
        let schema = json!({"$ref": format!("#/components/schemas/{def}")});
        if matches!(action, "get" | "put" | "post" | "patch") {
            op["responses"]["200"]["content"] = json!({"application/json": {"schema": schema}});
        }
        if matches!(action, "put" | "post") {
            op["requestBody"] = json!({"content": {"*/*": {"schema": schema}}, "required": true});
        }
    }
    op
}

const WRITE_PARAMS: &[&str] = &["dryRun", "fieldManager", "fieldValidation"];

/// The kind every `/scale` subresource reads and writes.
const SCALE_DEFINITION: &str = "io.k8s.api.autoscaling.v1.Scale";

/// The operations of subresource `sub` of `r` (`/status`, `/scale`, …): its object's schema is
/// the resource's own for `status`, autoscaling/v1 Scale for `scale`.
fn subresource_item(
    r: &ResourceInfo,
    sub: &crate::registry::SubresourceInfo,
) -> Map<String, Value> {
    let definition = match sub.name.as_str() {
        "scale" => Some(SCALE_DEFINITION.to_string()),
        "status" => definition_name(r).map(str::to_string),
        _ => None,
    };
    let suffix = {
        let mut c = sub.name.chars();
        c.next()
            .map(|f| f.to_uppercase().chain(c).collect::<String>())
            .unwrap_or_default()
    };
    let op = |action: &str, query: &[&str]| -> Value {
        let mut op = operation(r, action, query);
        op["operationId"] = json!(format!("{action}{}{suffix}", r.kind));
        if let Some(def) = &definition {
            let schema = json!({"$ref": format!("#/components/schemas/{def}")});
            op["responses"]["200"]["content"] = json!({"application/json": {"schema": schema}});
            if action == "put" {
                op["requestBody"] =
                    json!({"content": {"*/*": {"schema": schema}}, "required": true});
            }
        }
        op
    };
    let has = |verb: &str| sub.verbs.iter().any(|v| v == verb);
    let mut item = Map::new();
    if has("get") {
        item.insert("get".into(), op("get", &[]));
    }
    if has("update") {
        item.insert("put".into(), op("put", WRITE_PARAMS));
    }
    if has("patch") {
        item.insert(
            "patch".into(),
            op(
                "patch",
                &["dryRun", "fieldManager", "fieldValidation", "force"],
            ),
        );
    }
    if has("create") {
        item.insert("post".into(), op("post", WRITE_PARAMS));
    }
    item
}

fn document(snap: &Snapshot, group: &str, version: &str) -> Value {
    let mut paths = Map::new();
    let prefix = if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    };
    for r in snap.resources(group, version).unwrap_or_default() {
        let collection = if r.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}", r.resource)
        } else {
            format!("{prefix}/{}", r.resource)
        };
        let mut coll = Map::new();
        if r.has_verb("list") {
            coll.insert(
                "get".into(),
                operation(
                    r,
                    "list",
                    &[
                        "labelSelector",
                        "fieldSelector",
                        "limit",
                        "continue",
                        "resourceVersion",
                        "watch",
                    ],
                ),
            );
        }
        if r.has_verb("create") {
            coll.insert("post".into(), operation(r, "post", WRITE_PARAMS));
        }
        if r.has_verb("deletecollection") {
            coll.insert(
                "delete".into(),
                operation(r, "deletecollection", &["labelSelector", "fieldSelector"]),
            );
        }
        if !coll.is_empty() {
            paths.insert(collection.clone(), Value::Object(coll));
        }
        let mut item = Map::new();
        if r.has_verb("get") {
            item.insert("get".into(), operation(r, "get", &[]));
        }
        if r.has_verb("update") {
            item.insert("put".into(), operation(r, "put", WRITE_PARAMS));
        }
        if r.has_verb("patch") {
            item.insert(
                "patch".into(),
                operation(
                    r,
                    "patch",
                    &["dryRun", "fieldManager", "fieldValidation", "force"],
                ),
            );
        }
        if r.has_verb("delete") {
            item.insert(
                "delete".into(),
                operation(
                    r,
                    "delete",
                    &["dryRun", "gracePeriodSeconds", "propagationPolicy"],
                ),
            );
        }
        if !item.is_empty() {
            paths.insert(format!("{collection}/{{name}}"), Value::Object(item));
        }
        for sub in &r.subresources {
            let item = subresource_item(r, sub);
            if !item.is_empty() {
                paths.insert(
                    format!("{collection}/{{name}}/{}", sub.name),
                    Value::Object(item),
                );
            }
        }
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": format!("v1.{}.0", crate::version::KUBERNETES_MINOR)},
        "paths": paths,
        "components": {"schemas": {}},
    })
}
