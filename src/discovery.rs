//! Discovery, computed from the registry: `/api`, `/apis`, `/apis/{group}`, the per-version
//! resource lists, and aggregated discovery (apidiscovery.k8s.io v2 and v2beta1) for `/api` and
//! `/apis`.

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use serde_json::{json, Value};

use crate::api::ApiState;
use crate::body::{json_response, Body};
use crate::encoding::parse_media_types;
use crate::registry::{ResourceInfo, Snapshot};
use crate::request_info::RequestInfo;
use crate::status::{ApiError, ApiResult};

fn gv(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

/// Which aggregated discovery version the client accepts, if any.
fn aggregated_version(req: &Request<Bytes>) -> Option<&'static str> {
    let accept = req
        .headers()
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    for mt in parse_media_types(accept) {
        if mt.essence != "application/json" {
            continue;
        }
        if mt.param("g") == Some("apidiscovery.k8s.io")
            && mt.param("as") == Some("APIGroupDiscoveryList")
        {
            match mt.param("v") {
                Some("v2") => return Some("v2"),
                Some("v2beta1") => return Some("v2beta1"),
                _ => {}
            }
        } else if mt.param("as").is_none() {
            return None;
        }
    }
    None
}

/// Serve a non-resource GET under `/api` or `/apis` (or 404).
pub fn serve(
    state: &ApiState,
    info: &RequestInfo,
    req: &Request<Bytes>,
) -> ApiResult<Response<Body>> {
    let snap = state.backend.registry.snapshot();
    let path = info.path.trim_end_matches('/');
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["api"] => match aggregated_version(req) {
            Some(v) => Ok(aggregated(state, &snap, true, v, &[], req.headers())),
            None => Ok(json_response(
                StatusCode::OK,
                &json!({
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": state.advertise_address}],
                }),
            )),
        },
        ["apis"] => {
            let remotes = state.aggregator.remote_groups(|g| snap.group(g).is_some());
            match aggregated_version(req) {
                Some(v) => Ok(aggregated(state, &snap, false, v, &remotes, req.headers())),
                None => {
                    let mut groups: Vec<Value> = snap
                        .groups
                        .iter()
                        .filter(|g| !g.name.is_empty())
                        .map(|g| group_json(&g.name, &g.versions))
                        .collect();
                    let order = local_order(state, &snap);
                    // Insert from the last so earlier positions stay right.
                    for r in remotes.iter().rev() {
                        let at = crate::aggregator::discovery::position(&order, r);
                        let versions: Vec<String> =
                            r.versions.iter().map(|v| v.version.clone()).collect();
                        groups.insert(at, group_json(&r.name, &versions));
                    }
                    Ok(json_response(
                        StatusCode::OK,
                        &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}),
                    ))
                }
            }
        }
        ["apis", group] => {
            let mut body = match snap.group(group).filter(|g| !g.name.is_empty()) {
                Some(g) => group_json(&g.name, &g.versions),
                None => {
                    let remotes = state.aggregator.remote_groups(|g| g != *group);
                    let r = remotes.first().ok_or_else(ApiError::path_not_found)?;
                    let versions: Vec<String> =
                        r.versions.iter().map(|v| v.version.clone()).collect();
                    group_json(&r.name, &versions)
                }
            };
            body["kind"] = json!("APIGroup");
            body["apiVersion"] = json!("v1");
            Ok(json_response(StatusCode::OK, &body))
        }
        ["api", version] => resource_list(&snap, "", version),
        ["apis", group, version] => resource_list(&snap, group, version),
        _ => Err(ApiError::path_not_found()),
    }
}

fn group_json(name: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": gv(name, v), "version": v}))
        .collect();
    json!({
        "name": name,
        "versions": vs,
        "preferredVersion": vs.first().cloned().unwrap_or(json!({})),
    })
}

fn resource_list(snap: &Snapshot, group: &str, version: &str) -> ApiResult<Response<Body>> {
    let resources = snap
        .resources(group, version)
        .ok_or_else(ApiError::path_not_found)?;
    let mut out = Vec::new();
    for r in resources {
        let mut entry = json!({
            "name": r.resource,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": r.verbs,
        });
        if !r.short_names.is_empty() {
            entry["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            entry["categories"] = json!(r.categories);
        }
        if let Some(hash) = storage_version_hash(r) {
            entry["storageVersionHash"] = json!(hash);
        }
        out.push(entry);
        for s in &r.subresources {
            let mut sub = json!({
                "name": format!("{}/{}", r.resource, s.name),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": s.kind,
                "verbs": s.verbs,
            });
            if !s.group.is_empty() {
                sub["group"] = json!(s.group);
            }
            if !s.version.is_empty() {
                sub["version"] = json!(s.version);
            }
            out.push(sub);
        }
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv(group, version), "resources": out}),
    ))
}

/// kube's `storageVersionHash` of a stored resource: the first 8 bytes of the SHA-256 of
/// `group/version/kind` at its storage version, base64. Resources without storage (reviews,
/// bindings, componentstatuses: nothing to watch) have none.
fn storage_version_hash(r: &ResourceInfo) -> Option<String> {
    use base64::Engine as _;
    if !r.verbs.iter().any(|v| v == "watch") {
        return None;
    }
    let (group, version) = r
        .storage_api_version
        .rsplit_once('/')
        .unwrap_or(("", r.storage_api_version.as_str()));
    let gvk = format!("{group}/{version}/{}", r.kind);
    let digest = ring::digest::digest(&ring::digest::SHA256, gvk.as_bytes());
    Some(base64::engine::general_purpose::STANDARD.encode(&digest.as_ref()[..8]))
}

// The aggregated discovery document (apidiscovery.k8s.io/v2), its fields declared in the Go
// structs' order, which is the order kube-apiserver writes them in.

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct GroupDiscoveryList {
    kind: &'static str,
    api_version: String,
    metadata: Empty,
    items: Vec<GroupDiscovery>,
}

#[derive(serde::Serialize)]
struct Empty {}

#[derive(serde::Serialize)]
struct GroupDiscovery {
    metadata: GroupMeta,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    versions: Vec<VersionDiscovery>,
}

#[derive(serde::Serialize)]
struct GroupMeta {
    #[serde(skip_serializing_if = "str::is_empty")]
    name: String,
}

#[derive(serde::Serialize)]
struct VersionDiscovery {
    version: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    resources: Vec<ResourceDiscovery>,
    freshness: &'static str,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ResourceDiscovery {
    resource: String,
    response_kind: Gvk,
    scope: &'static str,
    singular_resource: String,
    verbs: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    short_names: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    categories: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    subresources: Vec<SubresourceDiscovery>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct SubresourceDiscovery {
    subresource: String,
    response_kind: Gvk,
    verbs: Vec<String>,
}

#[derive(serde::Serialize)]
struct Gvk {
    group: String,
    version: String,
    kind: String,
}

fn discovery_resource(r: &ResourceInfo) -> ResourceDiscovery {
    ResourceDiscovery {
        resource: r.resource.clone(),
        response_kind: Gvk {
            group: r.group.clone(),
            version: r.version.clone(),
            kind: r.kind.clone(),
        },
        scope: if r.namespaced {
            "Namespaced"
        } else {
            "Cluster"
        },
        singular_resource: r.singular.clone(),
        verbs: r.verbs.clone(),
        short_names: r.short_names.clone(),
        categories: r.categories.clone(),
        subresources: r
            .subresources
            .iter()
            .map(|s| {
                let inherit = s.group.is_empty() && s.version.is_empty();
                SubresourceDiscovery {
                    subresource: s.name.clone(),
                    response_kind: Gvk {
                        group: if inherit {
                            r.group.clone()
                        } else {
                            s.group.clone()
                        },
                        version: if s.version.is_empty() {
                            r.version.clone()
                        } else {
                            s.version.clone()
                        },
                        kind: s.kind.clone(),
                    },
                    verbs: s.verbs.clone(),
                }
            })
            .collect(),
    }
}

/// The local `/apis` groups in discovery order, with their priorities.
fn local_order(state: &ApiState, snap: &Snapshot) -> Vec<(String, i64)> {
    let services = state.aggregator.api_services();
    snap.groups
        .iter()
        .filter(|g| !g.name.is_empty())
        .map(|g| {
            (
                g.name.clone(),
                crate::aggregator::group_priority(&services, &g.name),
            )
        })
        .collect()
}

/// A remote group as aggregated discovery shows it: each version's resources from the
/// extension server's last discovery document.
fn remote_group_discovery(r: &crate::aggregator::discovery::RemoteGroup) -> GroupDiscovery {
    GroupDiscovery {
        metadata: GroupMeta {
            name: r.name.clone(),
        },
        versions: r
            .versions
            .iter()
            .map(|v| VersionDiscovery {
                version: v.version.clone(),
                resources: v
                    .discovered
                    .list
                    .as_deref()
                    .map(|l| remote_resources(&r.name, &v.version, l))
                    .unwrap_or_default(),
                freshness: if v.discovered.fresh {
                    "Current"
                } else {
                    "Stale"
                },
            })
            .collect(),
    }
}

/// An `APIResourceList` in aggregated discovery's shape: subresources (`pods/status`) under
/// their resource, kinds defaulting to the group/version's.
fn remote_resources(group: &str, version: &str, list: &Value) -> Vec<ResourceDiscovery> {
    let items = list["resources"].as_array().cloned().unwrap_or_default();
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect()
    };
    let gvk = |r: &Value| Gvk {
        group: r["group"].as_str().unwrap_or(group).to_string(),
        version: r["version"]
            .as_str()
            .filter(|v| !v.is_empty())
            .unwrap_or(version)
            .to_string(),
        kind: r["kind"].as_str().unwrap_or_default().to_string(),
    };
    let mut out: Vec<ResourceDiscovery> = Vec::new();
    for r in items.iter() {
        let name = r["name"].as_str().unwrap_or_default();
        if name.is_empty() || name.contains('/') {
            continue;
        }
        out.push(ResourceDiscovery {
            resource: name.to_string(),
            response_kind: gvk(r),
            scope: if r["namespaced"].as_bool().unwrap_or(false) {
                "Namespaced"
            } else {
                "Cluster"
            },
            singular_resource: r["singularName"].as_str().unwrap_or_default().to_string(),
            verbs: strings(&r["verbs"]),
            short_names: strings(&r["shortNames"]),
            categories: strings(&r["categories"]),
            subresources: Vec::new(),
        });
    }
    for r in items.iter() {
        let Some((parent, sub)) = r["name"].as_str().and_then(|n| n.split_once('/')) else {
            continue;
        };
        if let Some(p) = out.iter_mut().find(|p| p.resource == parent) {
            p.subresources.push(SubresourceDiscovery {
                subresource: sub.to_string(),
                response_kind: gvk(r),
                verbs: strings(&r["verbs"]),
            });
        }
    }
    out
}

/// The aggregated discovery answer for `/api` (core only) or `/apis` (every other group, with
/// the remote APIServices' groups among them): kube's, with an ETag of the content, 304 for a
/// client that holds it, cacheable by anyone (its content is the same for every user).
/// Without remote groups it is rendered once per snapshot.
fn aggregated(
    state: &ApiState,
    snap: &Snapshot,
    core: bool,
    version: &str,
    remotes: &[crate::aggregator::discovery::RemoteGroup],
    headers: &http::HeaderMap,
) -> Response<Body> {
    let render =
        || crate::body::Tagged::new(Bytes::from(document(state, snap, core, version, remotes)));
    let fresh;
    let tagged = if remotes.is_empty() {
        snap.discovery.slot(core, version).get_or_init(render)
    } else {
        fresh = render();
        &fresh
    };
    let mut resp = crate::body::with_etag(
        headers,
        &format!("application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList"),
        tagged.bytes.clone(),
        &tagged.etag,
    );
    let h = resp.headers_mut();
    h.insert(http::header::VARY, http::HeaderValue::from_static("Accept"));
    h.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("public"),
    );
    resp
}

/// The aggregated discovery document's bytes.
fn document(
    state: &ApiState,
    snap: &Snapshot,
    core: bool,
    version: &str,
    remotes: &[crate::aggregator::discovery::RemoteGroup],
) -> Vec<u8> {
    let mut items: Vec<GroupDiscovery> = snap
        .groups
        .iter()
        .filter(|g| g.name.is_empty() == core)
        .map(|g| GroupDiscovery {
            metadata: GroupMeta {
                name: g.name.clone(),
            },
            versions: g
                .versions
                .iter()
                .map(|v| VersionDiscovery {
                    version: v.clone(),
                    resources: snap
                        .resources(&g.name, v)
                        .unwrap_or_default()
                        .iter()
                        .map(|r| discovery_resource(r))
                        .collect(),
                    freshness: "Current",
                })
                .collect(),
        })
        .collect();
    if !remotes.is_empty() {
        let order = local_order(state, snap);
        for r in remotes.iter().rev() {
            let at = crate::aggregator::discovery::position(&order, r);
            items.insert(at, remote_group_discovery(r));
        }
    }
    let body = GroupDiscoveryList {
        kind: "APIGroupDiscoveryList",
        api_version: format!("apidiscovery.k8s.io/{version}"),
        metadata: Empty {},
        items,
    };
    kubox_apimachinery::json_text::to_vec(&body).unwrap_or_default()
}
