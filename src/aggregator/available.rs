//! The availability controller: keeps each APIService's `Available` condition as
//! kube-aggregator's local and remote availability controllers do, and registers the
//! group/versions CRDs serve.
//!
//! A local APIService is always Available (`Local`). A remote one is checked in kube's order:
//! its Service exists (`ServiceNotFound`); a ClusterIP Service has the port
//! (`ServicePortError`), EndpointSlices (`EndpointsNotFound`) and a ready endpoint with the
//! port's name (`MissingEndpoints`); the extension server answers its discovery document with
//! a 2xx within 5 seconds (`FailedDiscoveryCheck`); else `Passed`. The document it answered is
//! what discovery shows of that group/version.
//!
//! A pass runs at start, whenever APIServices, Services, EndpointSlices, Endpoints or the
//! served CRDs change, and every 30 seconds (kube's resync), until shutdown.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::{Aggregator, Remote};
use crate::objects::{timestamp, to_stored};
use crate::registry::{storage_prefix, Backend};

/// How often every APIService is checked again without a change.
const RESYNC: Duration = Duration::from_secs(30);

/// The condition an APIService should carry now: (status, reason, message).
async fn desired(agg: &Aggregator, obj: &Value) -> (&'static str, String, String) {
    let Some(remote) = Remote::from_api_service(obj) else {
        return (
            "True",
            "Local".into(),
            "Local APIServices are always available".into(),
        );
    };
    let (ns, name) = (remote.namespace.as_str(), remote.service.as_str());
    let Some(svc) = agg.routing.service(ns, name) else {
        return (
            "False",
            "ServiceNotFound".into(),
            format!("service/{name} in {ns:?} is not present"),
        );
    };
    let spec = &svc.object["spec"];
    if spec["type"].as_str().unwrap_or("ClusterIP") == "ClusterIP" {
        let Some(port_name) = crate::routing::service_port_name(&svc.object, remote.port) else {
            return (
                "False",
                "ServicePortError".into(),
                format!(
                    "service/{name} in {ns:?} is not listening on port {}",
                    remote.port
                ),
            );
        };
        match agg.routing.endpoint(ns, name, remote.port) {
            Ok(_) => {}
            Err(crate::routing::RouteError::NoEndpoints(_)) if !agg.routing.has_endpoints(ns, name) => {
                return (
                    "False",
                    "EndpointsNotFound".into(),
                    format!("cannot find endpointslices for service/{name} in {ns:?}"),
                )
            }
            Err(_) => {
                return (
                    "False",
                    "MissingEndpoints".into(),
                    format!(
                        "endpointslices for service/{name} in {ns:?} have no addresses with port name {port_name:?}"
                    ),
                )
            }
        }
    }
    let (group, version) = (
        obj["spec"]["group"].as_str().unwrap_or_default(),
        obj["spec"]["version"].as_str().unwrap_or_default(),
    );
    let path = if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    };
    match agg.get_from(&remote, &path).await {
        Ok(body) => {
            agg.discovered(group, version, serde_json::from_slice(&body).ok());
            // Where its OpenAPI v3 document is (optional: an extension server may publish none).
            let openapi = agg
                .get_from(&remote, "/openapi/v3")
                .await
                .ok()
                .and_then(|b| {
                    let index: Value = serde_json::from_slice(&b).ok()?;
                    index["paths"][path.trim_start_matches('/')]["serverRelativeURL"]
                        .as_str()
                        .map(str::to_string)
                });
            agg.openapi_v3_found(group, version, openapi);
            let v2 = agg
                .get_from(&remote, "/openapi/v2")
                .await
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                .filter(|d| d["paths"].is_object());
            agg.openapi_v2_found(group, version, v2);
            ("True", "Passed".into(), "all checks passed".into())
        }
        Err(e) => {
            agg.discovered(group, version, None);
            ("False", "FailedDiscoveryCheck".into(), e)
        }
    }
}

/// `conditions` with the Available condition set as kube's SetAPIServiceCondition sets it
/// (the transition time moves only when the status does).
fn with_available(
    conditions: &Value,
    status: &str,
    reason: &str,
    message: &str,
    now: &str,
) -> Vec<Value> {
    let mut conditions: Vec<Value> = conditions.as_array().cloned().unwrap_or_default();
    crate::objects::set_condition(&mut conditions, "Available", status, reason, message, now);
    conditions
}

/// Check one APIService and write its condition if it changed.
async fn sync_one(state: &Backend, agg: &Aggregator, obj: &Value) {
    let (status, reason, message) = desired(agg, obj).await;
    let now = timestamp(state.clock.now());
    let cached = &obj["status"]["conditions"];
    if with_available(cached, status, &reason, &message, &now).as_slice()
        == cached.as_array().map(Vec::as_slice).unwrap_or_default()
    {
        return;
    }
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    let key = format!(
        "{}{name}",
        storage_prefix("apiregistration.k8s.io", "apiservices")
    );
    let Ok(kv) = state.store.get(&key, None).await else {
        return;
    };
    let Ok(mut live) = crate::objects::from_stored(&kv) else {
        return;
    };
    let before = live["status"]["conditions"].clone();
    let conditions = with_available(&before, status, &reason, &message, &now);
    if status != before_status(before.as_array().map(Vec::as_slice).unwrap_or_default()) {
        tracing::info!(apiservice = %name, status, %reason, %message, "APIService availability changed");
    }
    live["status"] = json!({"conditions": conditions});
    if let Ok(bytes) = to_stored(&live) {
        // A conflict means someone wrote it meanwhile: the change brings another pass.
        let _ = state.store.update(&key, bytes, Some(kv.mod_revision)).await;
    }
}

fn before_status(conditions: &[Value]) -> &str {
    conditions
        .iter()
        .find(|c| c["type"] == "Available")
        .and_then(|c| c["status"].as_str())
        .unwrap_or("Unknown")
}

/// One pass over every APIService (remote ones checked concurrently).
pub async fn sync_all(state: &Backend, agg: &Aggregator) {
    let services = agg.api_services();
    if super::sync_crd_api_services(state, &services).await {
        // The new or removed ones come back through the informer: the next pass sees them.
        return;
    }
    let keep: Vec<(String, String)> = services
        .iter()
        .filter(|a| a["spec"]["service"].is_object())
        .map(|a| {
            (
                a["spec"]["group"].as_str().unwrap_or_default().to_string(),
                a["spec"]["version"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    agg.forget_discovery_except(&keep);
    futures::future::join_all(services.iter().map(|a| sync_one(state, agg, a))).await;
}

/// Run passes until shutdown: at start, on every change to what they read, every 30 s.
pub async fn run(state: Arc<Backend>, agg: Arc<Aggregator>) {
    let informer = |g: &str, r: &str| state.informers.for_resource(g, r).map(|i| i.changes());
    let (Some(mut a), Some(mut s), Some(mut e), Some(mut ep)) = (
        informer("apiregistration.k8s.io", "apiservices"),
        informer("", "services"),
        informer("discovery.k8s.io", "endpointslices"),
        informer("", "endpoints"),
    ) else {
        return;
    };
    let mut crds = state.registry.changes();
    let mut shutdown = state.shutdown.clone();
    loop {
        sync_all(&state, &agg).await;
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = a.changed() => {}
            _ = s.changed() => {}
            _ = e.changed() => {}
            _ = ep.changed() => {}
            _ = crds.changed() => {}
            _ = tokio::time::sleep(RESYNC) => {}
        }
        if *shutdown.borrow() {
            return;
        }
    }
}
