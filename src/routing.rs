//! Service routing: where a `service` reference (a webhook's or conversion webhook's
//! `clientConfig.service`, an APIService's `spec.service`) is reached, found as kube-apiserver's
//! endpoint routing finds it — through the Service's EndpointSlices.
//!
//! The Service must exist and be of type ClusterIP, NodePort or LoadBalancer, and have a port
//! whose `port` is the one asked for. Its EndpointSlices (labelled
//! `kubernetes.io/service-name`, those of the Service's first IP family first) are searched for
//! a port named as the Service's port, and for an endpoint of that slice not marked unready; the
//! first address of a randomly chosen such endpoint, with the slice port's number, is the answer.
//! A Service without selector whose addresses are in an `Endpoints` object and in no slice is
//! read through that object, as kube-controller-manager's mirroring would have made its slice —
//! so a Service plus an EndpointSlice (or Endpoints) naming `127.0.0.1` reaches a process on the
//! developer's machine.
//!
//! Reads come from the server's informers: resolving costs no store read.

use std::sync::Arc;

use rand::Rng;
use serde_json::Value;

use crate::informer::{Cached, Informers};
use crate::registry::storage_prefix;
use crate::webhook::ServiceResolver;

/// The label naming an EndpointSlice's Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Why a service reference could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// No such Service.
    #[error("service \"{0}\" not found")]
    ServiceNotFound(String),
    /// The Service has no port with that number.
    #[error("no service port {port} found for service \"{name}\"")]
    NoServicePort {
        /// The Service.
        name: String,
        /// The port asked for.
        port: u16,
    },
    /// No ready endpoint serves the port.
    #[error("no endpoints available for service \"{0}\"")]
    NoEndpoints(String),
    /// The Service cannot be routed to (ExternalName).
    #[error("unsupported service type \"{0}\"")]
    UnsupportedType(String),
}

/// Resolves service references through the server's informers.
pub struct EndpointsResolver {
    informers: Arc<Informers>,
}

impl EndpointsResolver {
    /// A resolver reading `informers` (which must cache services, endpointslices and endpoints).
    pub fn new(informers: Arc<Informers>) -> Self {
        EndpointsResolver { informers }
    }

    /// The Service `namespace/name`, if it exists.
    pub fn service(&self, namespace: &str, name: &str) -> Option<Cached> {
        let inf = self.informers.for_resource("", "services")?;
        inf.get(&format!(
            "{}{namespace}/{name}",
            storage_prefix("", "services")
        ))
    }

    /// `host:port` of a ready endpoint of port `port` of Service `namespace/name`.
    pub fn endpoint(&self, namespace: &str, name: &str, port: u16) -> Result<String, RouteError> {
        let svc = self
            .service(namespace, name)
            .ok_or_else(|| RouteError::ServiceNotFound(name.to_string()))?;
        let spec = &svc.object["spec"];
        let kind = spec["type"].as_str().unwrap_or("ClusterIP");
        if !matches!(kind, "ClusterIP" | "NodePort" | "LoadBalancer") {
            return Err(RouteError::UnsupportedType(kind.to_string()));
        }
        let port_name =
            service_port_name(&svc.object, port).ok_or_else(|| RouteError::NoServicePort {
                name: name.to_string(),
                port,
            })?;
        let family = spec["ipFamilies"][0].as_str().unwrap_or_default();
        let slices = self.slices(namespace, name);
        let found = if slices.is_empty() {
            self.endpoint_of_endpoints(namespace, name, &port_name)
        } else {
            pick_from_slices(slices, &port_name, family)
        };
        found.ok_or_else(|| RouteError::NoEndpoints(name.to_string()))
    }

    /// Has Service `namespace/name` EndpointSlices, or an Endpoints object?
    pub fn has_endpoints(&self, namespace: &str, name: &str) -> bool {
        !self.slices(namespace, name).is_empty()
            || self
                .informers
                .for_resource("", "endpoints")
                .and_then(|i| {
                    i.get(&format!(
                        "{}{namespace}/{name}",
                        storage_prefix("", "endpoints")
                    ))
                })
                .is_some()
    }

    /// The EndpointSlices of Service `namespace/name`.
    fn slices(&self, namespace: &str, name: &str) -> Vec<Arc<Value>> {
        let Some(inf) = self
            .informers
            .for_resource("discovery.k8s.io", "endpointslices")
        else {
            return Vec::new();
        };
        inf.list(&format!(
            "{}{namespace}/",
            storage_prefix("discovery.k8s.io", "endpointslices")
        ))
        .into_iter()
        .map(|c| c.object)
        .filter(|s| s["metadata"]["labels"][SERVICE_NAME_LABEL].as_str() == Some(name))
        .collect()
    }

    /// A ready address of the Endpoints object `namespace/name` serving port `port_name`.
    fn endpoint_of_endpoints(
        &self,
        namespace: &str,
        name: &str,
        port_name: &str,
    ) -> Option<String> {
        let inf = self.informers.for_resource("", "endpoints")?;
        let eps = inf.get(&format!(
            "{}{namespace}/{name}",
            storage_prefix("", "endpoints")
        ))?;
        let mut candidates = Vec::new();
        for subset in eps.object["subsets"].as_array().into_iter().flatten() {
            let Some(port) = subset["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p["name"].as_str().unwrap_or_default() == port_name)
                .and_then(|p| p["port"].as_u64())
            else {
                continue;
            };
            for addr in subset["addresses"].as_array().into_iter().flatten() {
                if let Some(ip) = addr["ip"].as_str() {
                    candidates.push(join_host_port(ip, port));
                }
            }
        }
        random(candidates)
    }
}

/// The name (`""` when unnamed) of the port of Service `svc` whose `port` is `port`.
pub fn service_port_name(svc: &Value, port: u16) -> Option<String> {
    svc["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["port"].as_u64() == Some(u64::from(port)))
        .map(|p| p["name"].as_str().unwrap_or_default().to_string())
}

impl ServiceResolver for EndpointsResolver {
    fn resolve(&self, namespace: &str, name: &str, port: u16) -> Result<String, String> {
        self.endpoint(namespace, name, port)
            .map(|hp| format!("https://{hp}"))
            .map_err(|e| e.to_string())
    }
}

/// kube's choice among slices: those of the preferred address type first, then the first slice
/// with the port name holding a ready endpoint; a random ready endpoint of it.
fn pick_from_slices(mut slices: Vec<Arc<Value>>, port_name: &str, family: &str) -> Option<String> {
    let mut rng = rand::rng();
    let mut order: Vec<(bool, u32, Arc<Value>)> = slices
        .drain(..)
        .map(|s| (s["addressType"].as_str() != Some(family), rng.random(), s))
        .collect();
    order.sort_by_key(|(other_family, r, _)| (*other_family, *r));
    for (_, _, slice) in order {
        for p in slice["ports"].as_array().into_iter().flatten() {
            // An unnamed port is named "" (kube's EndpointPort defaulting).
            if p["name"].as_str().unwrap_or_default() != port_name {
                continue;
            }
            let Some(port) = p["port"].as_u64() else {
                continue;
            };
            let ready: Vec<String> = slice["endpoints"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|e| e["conditions"]["ready"].as_bool() != Some(false))
                .filter_map(|e| e["addresses"][0].as_str())
                .map(|ip| join_host_port(ip, port))
                .collect();
            if let Some(hp) = random(ready) {
                return Some(hp);
            }
        }
    }
    None
}

fn random(mut candidates: Vec<String>) -> Option<String> {
    if candidates.is_empty() {
        return None;
    }
    let i = rand::rng().random_range(0..candidates.len());
    Some(candidates.swap_remove(i))
}

/// `ip:port`, `[ip]:port` for IPv6 (Go's JoinHostPort).
fn join_host_port(ip: &str, port: u64) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn slice(family: &str, port_name: Option<&str>, port: u16, endpoints: Value) -> Arc<Value> {
        let mut p = json!({"port": port, "protocol": "TCP"});
        if let Some(n) = port_name {
            p["name"] = json!(n);
        }
        Arc::new(json!({"addressType": family, "ports": [p], "endpoints": endpoints}))
    }

    #[test]
    fn a_ready_endpoint_of_the_named_port_is_chosen_preferring_the_services_family() {
        let v4 = slice(
            "IPv4",
            Some("https"),
            8443,
            json!([{"addresses": ["10.0.0.1"], "conditions": {"ready": false}},
                   {"addresses": ["127.0.0.1", "127.0.0.2"]}]),
        );
        let v6 = slice("IPv6", Some("https"), 9443, json!([{"addresses": ["::1"]}]));
        for _ in 0..20 {
            assert_eq!(
                pick_from_slices(vec![v6.clone(), v4.clone()], "https", "IPv4").as_deref(),
                Some("127.0.0.1:8443")
            );
            assert_eq!(
                pick_from_slices(vec![v4.clone(), v6.clone()], "https", "IPv6").as_deref(),
                Some("[::1]:9443")
            );
        }
        // Another port name, or only unready endpoints: nothing.
        assert_eq!(pick_from_slices(vec![v4.clone()], "metrics", "IPv4"), None);
        let unready = slice(
            "IPv4",
            Some(""),
            80,
            json!([{"addresses": ["10.0.0.1"], "conditions": {"ready": false}}]),
        );
        assert_eq!(pick_from_slices(vec![unready], "", "IPv4"), None);
        // An unnamed slice port serves an unnamed service port.
        let unnamed = slice("IPv4", None, 80, json!([{"addresses": ["10.0.0.9"]}]));
        assert_eq!(
            pick_from_slices(vec![unnamed], "", "IPv4").as_deref(),
            Some("10.0.0.9:80")
        );
    }

    #[test]
    fn routing_errors_read_as_kubes() {
        assert_eq!(
            RouteError::NoEndpoints("hook".into()).to_string(),
            "no endpoints available for service \"hook\""
        );
        assert_eq!(
            RouteError::NoServicePort {
                name: "hook".into(),
                port: 443
            }
            .to_string(),
            "no service port 443 found for service \"hook\""
        );
        assert_eq!(
            RouteError::ServiceNotFound("hook".into()).to_string(),
            "service \"hook\" not found"
        );
    }
}
