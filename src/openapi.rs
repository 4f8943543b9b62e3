//! `/openapi/v3`: the discovery root and one document per group/version, computed from the
//! registry. Each operation carries `x-kubernetes-group-version-kind` and its query parameters,
//! which is how kubectl learns that the server validates fields itself (`fieldValidation`) and
//! so skips client-side schema validation. `components.schemas` holds the built-in kinds'
//! definitions (from `kubox-openapi`) and what they reference, which `kubectl explain` reads,
//! plus each custom resource's kind and list kind as its CRD publishes them (built once when
//! the CRD version is registered); operations reference their kind's schema.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use serde_json::{json, Map, Value};

use crate::body::Body;
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

/// The `/openapi/v3` documents rendered so far, per group/version, each with its hash; an
/// entry serves while its group/version serves the same resources. Every snapshot of one
/// registry shares it (a CRD's change makes new resources for its own group/versions only),
/// so a change re-renders the group/versions it touched, not every other; the registry drops
/// the entries of group/versions no longer served.
#[derive(Default)]
pub struct V3Cache {
    by_gv: std::sync::Mutex<HashMap<String, Arc<GvDocument>>>,
}

/// One group/version's document: its hash at once, its bytes when first asked for.
struct GvDocument {
    resources: Vec<Arc<ResourceInfo>>,
    hash: String,
    body: OnceLock<Bytes>,
}

impl V3Cache {
    /// The entry of a served group/version, made (hashed) when missing or stale.
    fn entry(&self, snap: &Snapshot, group: &str, version: &str) -> Option<Arc<GvDocument>> {
        let resources = snap.resources(group, version)?;
        let key = gv_path(group, version);
        let same = |d: &GvDocument| {
            d.resources.len() == resources.len()
                && d.resources
                    .iter()
                    .zip(resources)
                    .all(|(a, b)| Arc::ptr_eq(a, b))
        };
        if let Some(d) = self.lock().get(&key).filter(|d| same(d)) {
            return Some(d.clone());
        }
        let doc = Arc::new(GvDocument {
            resources: resources.to_vec(),
            hash: doc_hash(snap, group, version),
            body: OnceLock::new(),
        });
        self.lock().insert(key, doc.clone());
        Some(doc)
    }

    /// Forget the group/versions `snap` does not serve.
    pub fn retain_served(&self, snap: &Snapshot) {
        self.lock().retain(|_, d| {
            d.resources
                .first()
                .is_some_and(|r| snap.resources(&r.group, &r.version).is_some())
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<GvDocument>>> {
        self.by_gv.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// A group/version document's hash, without rendering its components: the operations, the
/// built-in schemas (fixed per build) and its custom resources' published schemas.
fn doc_hash(snap: &Snapshot, group: &str, version: &str) -> String {
    use std::hash::{Hash, Hasher};
    let custom: Vec<u64> = snap
        .resources(group, version)
        .unwrap_or_default()
        .iter()
        .filter_map(|r| r.strategy.published_schema())
        .map(|p| p.content_hash())
        .collect();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_vec(&document(snap, group, version).0)
        .unwrap_or_default()
        .hash(&mut h);
    kubox_openapi::Schemas::content_hash().hash(&mut h);
    custom.hash(&mut h);
    format!("{:016X}", h.finish())
}

/// Serve `/openapi/v3` and `/openapi/v3/{api|apis/...}` as kube-openapi does: the root lists
/// each group/version's URL with its hash; a document asked for with its current hash may be
/// cached for good (`Cache-Control: public, immutable`), one asked for with an older hash
/// redirects to the current one, and both answer `If-None-Match` with 304 Not Modified.
pub fn serve(
    snap: &Snapshot,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
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
                if let Some(doc) = snap.openapi_v3.entry(snap, &g.name, v) {
                    let p = gv_path(&g.name, v);
                    let url = format!("/openapi/v3/{p}?hash={}", doc.hash);
                    paths.insert(p, json!({ "serverRelativeURL": url }));
                }
            }
        }
        let root = crate::body::Tagged::new(
            crate::encoding::json_bytes(&json!({ "paths": paths })).into(),
        );
        return Ok(crate::body::with_etag(
            headers,
            "application/json",
            root.bytes,
            &root.etag,
        ));
    }
    let parts: Vec<&str> = rest.split('/').collect();
    let (group, version) = match parts.as_slice() {
        ["api", v] => ("", *v),
        ["apis", g, v] => (*g, *v),
        _ => return Err(ApiError::path_not_found()),
    };
    let Some(doc) = snap.openapi_v3.entry(snap, group, version) else {
        return Err(ApiError::path_not_found());
    };
    let asked = query
        .unwrap_or_default()
        .split('&')
        .find_map(|kv| kv.strip_prefix("hash="));
    if asked.is_some_and(|h| h != doc.hash) {
        // An older document's URL: to the current one (kube-openapi's 301).
        let location = format!("/openapi/v3/{rest}?hash={}", doc.hash);
        let mut resp = crate::body::bytes_response(
            StatusCode::MOVED_PERMANENTLY,
            "text/html; charset=utf-8",
            format!("<a href=\"{location}\">Moved Permanently</a>.\n\n"),
        );
        if let Ok(v) = HeaderValue::from_str(&location) {
            resp.headers_mut().insert(header::LOCATION, v);
        }
        return Ok(resp);
    }
    let body = doc
        .body
        .get_or_init(|| crate::encoding::json_bytes(&full_document(snap, group, version)).into())
        .clone();
    let etag = format!("\"{}\"", doc.hash);
    let mut resp = crate::body::with_etag(headers, "application/json", body, &etag);
    let h = resp.headers_mut();
    h.insert(header::VARY, HeaderValue::from_static("Accept"));
    if asked.is_some() {
        // The URL names this content: it never changes.
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, immutable"),
        );
        let year = chrono::Utc::now() + chrono::Duration::days(365);
        let expires = year.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        if let Ok(v) = HeaderValue::from_str(&expires) {
            h.insert(header::EXPIRES, v);
        }
    }
    Ok(resp)
}

/// A group/version's whole document: its operations and the components they use.
fn full_document(snap: &Snapshot, group: &str, version: &str) -> Value {
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
    doc
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    fn root(registry: &Registry) -> Value {
        let resp = serve(
            &registry.snapshot(),
            "/openapi/v3",
            None,
            &HeaderMap::new(),
            &[],
        )
        .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let entry = |gv: &str| registry.snapshot().openapi_v3.lock().get(gv).cloned();
        json!({ "apps": entry("apis/apps/v1").map(|d| Arc::as_ptr(&d) as usize),
            "widgets": entry("apis/example.com/v1").map(|d| (Arc::as_ptr(&d) as usize, d.hash.clone())) })
    }

    /// A CRD's change renders its own group/version again, and no other.
    #[test]
    fn a_change_renders_only_the_group_versions_it_touched() {
        let registry = Registry::builtin();
        let widget = || {
            let mut info = (*registry
                .snapshot()
                .get("apps", "v1", "deployments")
                .unwrap())
            .clone();
            info.group = "example.com".into();
            info
        };
        let before = root(&registry);
        assert!(before["apps"].is_u64() && before["widgets"].is_null());
        registry.set_custom("widgets.example.com", vec![widget()]);
        let added = root(&registry);
        assert_eq!(added["apps"], before["apps"]);
        assert!(added["widgets"].is_array());
        let len = registry.snapshot().openapi_v3.len();
        // The CRD changed (the same resources, made again): its entry is new, of the same hash.
        registry.set_custom("widgets.example.com", vec![widget()]);
        let again = root(&registry);
        assert_eq!(again["apps"], before["apps"]);
        assert_ne!(again["widgets"][0], added["widgets"][0]);
        assert_eq!(again["widgets"][1], added["widgets"][1]);
        // Gone with its CRD.
        registry.remove_custom("widgets.example.com");
        assert_eq!(registry.snapshot().openapi_v3.len(), len - 1);
        assert_eq!(root(&registry)["apps"], before["apps"]);
    }
}
