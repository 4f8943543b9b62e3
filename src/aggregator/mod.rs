//! API aggregation, as kube-aggregator does it in front of kube-apiserver.
//!
//! An `APIService` (`apiregistration.k8s.io/v1`) names who serves one group/version:
//! - **local** (no `spec.service`): kubox itself. One is registered at start for every built-in
//!   group/version kube registers (label `kube-aggregator.kubernetes.io/automanaged: onstart`,
//!   kube's priorities), and one for every group/version a CRD serves (`automanaged: "true"`,
//!   priority 1000/100, removed when no CRD serves it any more). They are always Available
//!   (reason `Local`).
//! - **remote**: an extension API server reached through a Service ([`crate::routing`]).
//!   Requests under `/apis/<group>/<version>` are passed to it after kubox has authenticated
//!   and authorized them ([`proxy`]), with the caller's identity in kube's front-proxy headers
//!   and kubox's front-proxy client certificate. The availability controller ([`available`])
//!   keeps the `Available` condition with kube's reasons, and fetches the server's discovery
//!   document, merged into kubox's discovery ([`discovery`]).
//!
//! The APIServices are read from an informer: routing a request costs no store read.

pub mod available;
pub mod discovery;
pub mod proxy;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use serde_json::{json, Value};

use crate::informer::Informers;
use crate::pki::FrontProxy;
use crate::registry::{storage_prefix, Backend};
use crate::routing::EndpointsResolver;
use crate::webhook::ServiceResolver;

/// The label kube puts on the APIServices it manages.
pub const AUTOMANAGED: &str = "kube-aggregator.kubernetes.io/automanaged";

/// The group and version priorities kube-apiserver registers its built-in group/versions with
/// (kube's `apiVersionPriorities`); only these get a local APIService at start.
const PRIORITIES: &[(&str, &str, i64, i64)] = &[
    ("", "v1", 18000, 1),
    ("apps", "v1", 17800, 15),
    ("events.k8s.io", "v1", 17750, 15),
    ("authentication.k8s.io", "v1", 17700, 15),
    ("authorization.k8s.io", "v1", 17600, 15),
    ("autoscaling", "v1", 17500, 15),
    ("autoscaling", "v2", 17500, 30),
    ("batch", "v1", 17400, 15),
    ("certificates.k8s.io", "v1", 17300, 15),
    ("networking.k8s.io", "v1", 17200, 15),
    ("policy", "v1", 17100, 15),
    ("rbac.authorization.k8s.io", "v1", 17000, 15),
    ("storage.k8s.io", "v1", 16800, 15),
    ("admissionregistration.k8s.io", "v1", 16700, 15),
    ("apiextensions.k8s.io", "v1", 16700, 15),
    ("scheduling.k8s.io", "v1", 16600, 15),
    ("coordination.k8s.io", "v1", 16500, 15),
    ("node.k8s.io", "v1", 16300, 15),
    ("discovery.k8s.io", "v1", 16200, 15),
    ("resource.k8s.io", "v1", 16200, 21),
    ("flowcontrol.apiserver.k8s.io", "v1", 16100, 21),
];

/// The priorities of a group/version a CRD serves (kube's CRD registration controller).
const CRD_PRIORITY: (i64, i64) = (1000, 100);

/// The name of the APIService for `group`/`version` (`v1.apps`, `v1.` for the core group).
pub fn api_service_name(group: &str, version: &str) -> String {
    format!("{version}.{group}")
}

/// A remote APIService, as routing needs it.
#[derive(Debug, Clone)]
pub struct Remote {
    /// The APIService's name.
    pub name: String,
    /// The Service's namespace, name and port.
    pub namespace: String,
    /// The Service's name.
    pub service: String,
    /// The Service's port.
    pub port: u16,
    /// PEM certificates to trust (empty: the system roots).
    pub ca_bundle: Vec<u8>,
    /// Skip verifying the server's certificate.
    pub insecure: bool,
    /// The `Available` condition is True.
    pub available: bool,
}

impl Remote {
    fn from_api_service(obj: &Value) -> Option<Remote> {
        let spec = &obj["spec"];
        let svc = spec.get("service").filter(|s| s.is_object())?;
        let ca_bundle = spec["caBundle"]
            .as_str()
            .and_then(|b| {
                base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b).ok()
            })
            .unwrap_or_default();
        Some(Remote {
            name: obj["metadata"]["name"].as_str()?.to_string(),
            namespace: svc["namespace"].as_str().unwrap_or_default().to_string(),
            service: svc["name"].as_str().unwrap_or_default().to_string(),
            port: svc["port"]
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or(443),
            ca_bundle,
            insecure: spec["insecureSkipTLSVerify"].as_bool().unwrap_or(false),
            available: is_available(obj),
        })
    }

    /// The name the extension server's certificate must carry.
    pub fn server_name(&self) -> String {
        format!("{}.{}.svc", self.service, self.namespace)
    }
}

/// Is the APIService's `Available` condition True?
pub fn is_available(obj: &Value) -> bool {
    obj["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Available" && c["status"] == "True")
}

/// The aggregator's state: shared by the request path and the availability controller.
pub struct Aggregator {
    informers: Arc<Informers>,
    routing: EndpointsResolver,
    resolver: Arc<dyn ServiceResolver>,
    front_proxy: FrontProxy,
    clients: Mutex<HashMap<proxy::ClientKey, proxy::HttpsClient>>,
    /// The discovery documents (APIResourceList) fetched from remote group/versions, and
    /// whether the last fetch succeeded.
    discovered: RwLock<HashMap<(String, String), discovery::Discovered>>,
}

impl Aggregator {
    /// An aggregator reading APIServices, Services and EndpointSlices from `informers`,
    /// reaching extension servers through `resolver` with the `front_proxy` identity.
    pub fn new(
        informers: Arc<Informers>,
        resolver: Arc<dyn ServiceResolver>,
        front_proxy: FrontProxy,
    ) -> Aggregator {
        Aggregator {
            routing: EndpointsResolver::new(informers.clone()),
            informers,
            resolver,
            front_proxy,
            clients: Mutex::default(),
            discovered: RwLock::default(),
        }
    }

    fn api_service_prefix() -> String {
        storage_prefix("apiregistration.k8s.io", "apiservices")
    }

    /// Every APIService, as the informer holds them.
    pub fn api_services(&self) -> Vec<Arc<Value>> {
        self.informers
            .for_resource("apiregistration.k8s.io", "apiservices")
            .map(|i| {
                i.list(&Self::api_service_prefix())
                    .into_iter()
                    .map(|c| c.object)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The remote APIService serving `group`/`version`, if there is one.
    pub fn remote(&self, group: &str, version: &str) -> Option<Remote> {
        let inf = self
            .informers
            .for_resource("apiregistration.k8s.io", "apiservices")?;
        let cached = inf.get(&format!(
            "{}{}",
            Self::api_service_prefix(),
            api_service_name(group, version)
        ))?;
        Remote::from_api_service(&cached.object)
    }
}

/// The local APIService object for `group`/`version`.
fn local_api_service(
    group: &str,
    version: &str,
    priorities: (i64, i64),
    automanaged: &str,
    now: &str,
) -> Value {
    json!({
        "apiVersion": "apiregistration.k8s.io/v1",
        "kind": "APIService",
        "metadata": {
            "name": api_service_name(group, version),
            "uid": uuid::Uuid::new_v4().to_string(),
            "creationTimestamp": now,
            "labels": {AUTOMANAGED: automanaged},
        },
        "spec": {
            "group": group,
            "version": version,
            "groupPriorityMinimum": priorities.0,
            "versionPriority": priorities.1,
        },
        "status": {"conditions": [local_condition(now)]},
    })
}

/// kube's condition for a local APIService.
fn local_condition(now: &str) -> Value {
    json!({
        "type": "Available",
        "status": "True",
        "lastTransitionTime": now,
        "reason": "Local",
        "message": "Local APIServices are always available",
    })
}

/// Register the built-in group/versions kubox serves as local APIServices (what exists is
/// left as it is), as kube-apiserver's autoregistration does at start.
pub async fn register_builtin(state: &Backend) -> crate::status::ApiResult<()> {
    let now = crate::objects::timestamp(state.clock.now());
    let gr = crate::status::GroupResource::new("apiregistration.k8s.io", "apiservices");
    let mut objects = Vec::new();
    for g in state.registry.builtin_groups() {
        for v in &g.versions {
            let Some(&(_, _, group_priority, version_priority)) = PRIORITIES
                .iter()
                .find(|(pg, pv, _, _)| *pg == g.name && pv == v)
            else {
                continue;
            };
            let obj = local_api_service(
                &g.name,
                v,
                (group_priority, version_priority),
                "onstart",
                &now,
            );
            let key = format!(
                "{}{}",
                storage_prefix("apiregistration.k8s.io", "apiservices"),
                api_service_name(&g.name, v)
            );
            objects.push((key, obj, gr.clone()));
        }
    }
    crate::bootstrap::ensure_all(state, objects).await
}

/// The group priority of every group served or registered, for ordering discovery: from the
/// APIServices (the highest of a group's), else kube's table, else a CRD group's.
pub fn group_priority(services: &[Arc<Value>], group: &str) -> i64 {
    let from_services = services
        .iter()
        .filter(|a| a["spec"]["group"].as_str() == Some(group))
        .filter_map(|a| a["spec"]["groupPriorityMinimum"].as_i64())
        .max();
    from_services
        .or_else(|| {
            PRIORITIES
                .iter()
                .filter(|(g, _, _, _)| *g == group)
                .map(|(_, _, p, _)| *p)
                .max()
        })
        .unwrap_or(CRD_PRIORITY.0)
}

/// Bring the CRD-registered APIServices in line with the group/versions CRDs serve: one per
/// served custom group/version, none for a group/version no CRD serves (kube's CRD
/// registration controller). Returns whether it wrote anything.
pub async fn sync_crd_api_services(state: &Backend, services: &[Arc<Value>]) -> bool {
    let snap = state.registry.snapshot();
    let builtin = state.registry.builtin_groups();
    let mut wanted: Vec<(String, String)> = Vec::new();
    for g in &snap.groups {
        if builtin.iter().any(|b| b.name == g.name) {
            continue;
        }
        for v in &g.versions {
            wanted.push((g.name.clone(), v.clone()));
        }
    }
    let prefix = storage_prefix("apiregistration.k8s.io", "apiservices");
    let now = crate::objects::timestamp(state.clock.now());
    let mut wrote = false;
    for (g, v) in &wanted {
        let name = api_service_name(g, v);
        if services
            .iter()
            .any(|a| a["metadata"]["name"].as_str() == Some(name.as_str()))
        {
            continue;
        }
        let obj = local_api_service(g, v, CRD_PRIORITY, "true", &now);
        if let Ok(stored) = crate::objects::to_stored(&obj) {
            if state
                .store
                .create(&format!("{prefix}{name}"), stored)
                .await
                .is_ok()
            {
                wrote = true;
            }
        }
    }
    for a in services {
        let managed = a["metadata"]["labels"][AUTOMANAGED].as_str() == Some("true");
        let (g, v) = (
            a["spec"]["group"].as_str().unwrap_or_default(),
            a["spec"]["version"].as_str().unwrap_or_default(),
        );
        if managed && !wanted.iter().any(|(wg, wv)| wg == g && wv == v) {
            let name = a["metadata"]["name"].as_str().unwrap_or_default();
            if state
                .store
                .delete(&format!("{prefix}{name}"), None)
                .await
                .is_ok()
            {
                wrote = true;
            }
        }
    }
    wrote
}
