//! What the write path below the endpoints runs on: the registry store's storage, served
//! resources and admission chain, and what the per-resource hooks need.
//!
//! Everything here is HTTP-free. The endpoints (`api.rs`, `handlers.rs`, `watch.rs`) hold a
//! [`Backend`] inside their `ApiState`; controllers, the admission plugins, the RBAC and CRD
//! loops and bootstrap hold only the [`Backend`], as kube's controllers and admission plugins
//! are given a client and informers rather than the API server.

use std::sync::Arc;

use kubox_storage::{Clock, DynStore};
use tokio::sync::watch;

use crate::registry::store::NameGenerator;
use crate::registry::Registry;

/// The registry layer's shared parts, one per server.
pub struct Backend {
    /// The store.
    pub store: DynStore,
    /// The watch caches every API watch is served from, one per watched resource.
    pub watch_caches: crate::watch_cache::WatchCaches,
    /// The served resources.
    pub registry: Registry,
    /// Time as the server sees it.
    pub clock: Arc<dyn Clock>,
    /// Flips to true when the server shuts down: loops and watches end.
    pub shutdown: watch::Receiver<bool>,
    /// The admission plugins every write goes through.
    pub admission: crate::admission::Admission,
    /// Decoded copies of the resources admission reads on every write.
    pub informers: Arc<crate::informer::Informers>,
    /// The names `generateName` gives.
    pub names: NameGenerator,
    /// The garbage collector runs: DELETE adds the `orphan` / `foregroundDeletion` finalizers
    /// the propagation policy asks for (kube-apiserver's `--enable-garbage-collector`).
    pub garbage_collection: bool,
    /// Simulated kubelets run: a pod on a node is deleted gracefully (its kubelet finishes
    /// the deletion), as on a cluster.
    pub kubelets: bool,
    /// How far the CRD controller has got (CRD writes wait for it).
    pub crds: crate::crd::Tracker,
    /// Cluster-IP allocation for Services.
    pub service_ips: crate::allocators::ServiceIps,
    /// Calls webhooks (CRD conversion).
    pub webhooks: Arc<crate::webhook::WebhookClient>,
    /// Decides requests; role writes check escalation with it.
    pub authorizer: Arc<dyn crate::authz::Authorizer>,
    /// The RBAC objects, indexed by subject: the RBAC authorizer, the rules the access reviews
    /// list, the escalation checks on role writes.
    pub rbac: Arc<crate::authz::rbac::Rbac>,
}
