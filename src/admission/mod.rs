//! Admission: plugins that see every write after decoding and before storage, as
//! kube-apiserver's admission chain does (k8s.io/apiserver/pkg/admission).
//!
//! The registry store (`registry::store`) calls [`Admission::admit`] (mutating phase, every
//! plugin in order, each may change the object) before the strategy prepares and validates the
//! object, and [`Admission::validate`] (validating phase) after, just before the storage write.
//! Create, update (PUT, PATCH, apply, status and scale writes) and delete take this path;
//! controllers' writes too, since they go through the same store.
//!
//! Built-in plugins, in kube-apiserver's order: `NamespaceLifecycle`, `LimitRanger`,
//! `ServiceAccount`, `MutatingAdmissionWebhook`, `ValidatingAdmissionPolicy`,
//! `ValidatingAdmissionWebhook`, `ResourceQuota`. Each one reads its
//! configuration (LimitRanges, ResourceQuotas, policies and bindings) from the server's
//! informers (`crate::informer`), which have seen every configuration write that returned, at the time
//! of the request, so a configuration applies as soon as its create returns.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use crate::authn::UserInfo;
use crate::registry::Backend;
use crate::registry::ResourceInfo;
use crate::status::ApiResult;

mod limit_ranger;
pub mod matching;
mod namespace_lifecycle;
pub mod policy;
pub mod quantity;
mod resource_quota;
mod service_account;
pub mod webhook;

/// What a request does to an object (admission's `Operation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// A new object.
    Create,
    /// A replacement, patch, or subresource write.
    Update,
    /// A deletion.
    Delete,
    /// A connection to a subresource (exec, attach, port-forward, proxy).
    Connect,
}

impl Operation {
    /// The wire name (`CREATE`, `UPDATE`, `DELETE`, `CONNECT`).
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Connect => "CONNECT",
        }
    }
}

/// Everything a plugin may look at (kube's `admission.Attributes`).
#[derive(Debug, Clone)]
pub struct Attributes {
    /// The operation.
    pub operation: Operation,
    /// The resource written.
    pub info: Arc<ResourceInfo>,
    /// Subresource written (`status`, `scale`), or empty.
    pub subresource: String,
    /// Namespace of the object (empty for cluster-scoped objects).
    pub namespace: String,
    /// Name of the object (may be empty on create with `generateName`).
    pub name: String,
    /// The object being written (None on delete).
    pub object: Option<Value>,
    /// The object as stored before this request (update and delete).
    pub old_object: Option<Value>,
    /// Who asks.
    pub user: UserInfo,
    /// Nothing will be persisted.
    pub dry_run: bool,
    /// CreateOptions, UpdateOptions or DeleteOptions, as sent.
    pub options: Value,
    /// A mutating webhook changed the object: its values may be of any type, and are checked
    /// against the kind's schema again (kubox's own plugins write values of the right types).
    pub patched_by_webhook: bool,
}

impl Attributes {
    /// The group of the resource.
    pub fn group(&self) -> &str {
        &self.info.group
    }

    /// The plural resource name.
    pub fn resource(&self) -> &str {
        &self.info.resource
    }

    /// The kind of the object.
    pub fn kind(&self) -> &str {
        &self.info.kind
    }

    /// The group/resource, for error messages.
    pub fn group_resource(&self) -> crate::status::GroupResource {
        self.info.group_resource()
    }

    /// Is this a write to the main resource (not a subresource) of core `resource`?
    pub fn is_core(&self, resource: &str) -> bool {
        self.info.group.is_empty() && self.info.resource == resource && self.subresource.is_empty()
    }
}

/// One admission plugin. Mutating plugins implement [`admit`](Self::admit), validating ones
/// [`validate`](Self::validate); a plugin may do both.
#[async_trait]
pub trait AdmissionPlugin: Send + Sync {
    /// The name, as kube-apiserver's `--enable-admission-plugins` spells it.
    fn name(&self) -> &'static str;
    /// Does this plugin care about `op` at all?
    fn handles(&self, op: Operation) -> bool;
    /// Mutating phase: may change `attrs.object`.
    async fn admit(&self, _state: &Arc<Backend>, _attrs: &mut Attributes) -> ApiResult<()> {
        Ok(())
    }
    /// Validating phase: may only refuse.
    async fn validate(&self, _state: &Arc<Backend>, _attrs: &Attributes) -> ApiResult<()> {
        Ok(())
    }
}

/// The built-in plugin names, in the order they run.
pub const PLUGINS: &[&str] = &[
    "NamespaceLifecycle",
    "LimitRanger",
    "ServiceAccount",
    "MutatingAdmissionWebhook",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionWebhook",
    "ResourceQuota",
];

/// The plugins a server runs, in order.
#[derive(Clone, Default)]
pub struct Admission {
    plugins: Vec<Arc<dyn AdmissionPlugin>>,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.plugins.iter().map(|p| p.name()))
            .finish()
    }
}

/// Which admission plugins run, and how (the server builder's and `kubox serve`'s options).
#[derive(Debug, Clone)]
pub struct AdmissionConfig {
    /// Plugin names switched off (kube-apiserver's `--disable-admission-plugins`).
    pub disabled: Vec<String>,
    /// The ServiceAccount plugin mounts the `kube-api-access-*` projected token volume into
    /// pods (on by default, as kube-apiserver does).
    pub mount_service_account_token: bool,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        AdmissionConfig {
            disabled: Vec::new(),
            mount_service_account_token: true,
        }
    }
}

impl AdmissionConfig {
    /// Parse a comma-separated `--disable-admission-plugins` list; unknown names are errors.
    pub fn disable_list(&mut self, list: &str) -> Result<(), String> {
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if !PLUGINS.contains(&name) {
                return Err(format!(
                    "unknown admission plugin {name:?}; known: {}",
                    PLUGINS.join(", ")
                ));
            }
            self.disabled.push(name.to_string());
        }
        Ok(())
    }
}

impl Admission {
    /// The built-in chain, minus what `config` switches off; webhooks are called through
    /// `webhooks`.
    pub fn new(config: &AdmissionConfig, webhooks: Arc<dyn webhook::WebhookCaller>) -> Admission {
        let all: Vec<Arc<dyn AdmissionPlugin>> = vec![
            Arc::new(namespace_lifecycle::NamespaceLifecycle),
            Arc::new(limit_ranger::LimitRanger),
            Arc::new(service_account::ServiceAccount {
                mount_token: config.mount_service_account_token,
            }),
            Arc::new(webhook::MutatingAdmissionWebhook(webhooks.clone())),
            Arc::new(policy::ValidatingAdmissionPolicy),
            Arc::new(webhook::ValidatingAdmissionWebhook(webhooks)),
            Arc::new(resource_quota::ResourceQuota::default()),
        ];
        Admission {
            plugins: all
                .into_iter()
                .filter(|p| !config.disabled.iter().any(|d| d == p.name()))
                .collect(),
        }
    }

    /// No plugins at all.
    pub fn none() -> Admission {
        Admission::default()
    }

    /// Mutating phase: every plugin's `admit`, in order.
    pub async fn admit(&self, state: &Arc<Backend>, attrs: &mut Attributes) -> ApiResult<()> {
        let op = attrs.operation;
        for p in self.plugins.iter().filter(|p| p.handles(op)) {
            p.admit(state, attrs).await?;
        }
        Ok(())
    }

    /// Validating phase: every plugin's `validate`, in order; the first refusal wins.
    pub async fn validate(&self, state: &Arc<Backend>, attrs: &Attributes) -> ApiResult<()> {
        for p in self.plugins.iter().filter(|p| p.handles(attrs.operation)) {
            p.validate(state, attrs).await?;
        }
        Ok(())
    }
}

/// After a write to a namespaced resource: the namespace's quotas report the new usage (when the
/// `ResourceQuota` plugin runs).
/// `released`: the write may have freed quota (a delete, a create that failed after admission
/// charged it); else usage only grows and charges of requests still in flight are kept.
pub(crate) async fn sync_quotas(
    state: &Arc<Backend>,
    info: &ResourceInfo,
    namespace: &str,
    released: bool,
) {
    if state
        .admission
        .plugins
        .iter()
        .any(|p| p.name() == "ResourceQuota")
    {
        resource_quota::sync(state, &info.group, &info.resource, namespace, released).await;
    }
}

/// List the objects under a storage prefix, decoded (configuration lookups): from the
/// resource's informer when it has one, else from the store.
pub(crate) async fn list_prefix(state: &Backend, prefix: &str) -> ApiResult<Vec<Value>> {
    if let Some(inf) = informer_of(state, prefix) {
        return Ok(inf
            .list(prefix)
            .into_iter()
            .map(|c| Value::clone(&c.object))
            .collect());
    }
    let page = state
        .store
        .list(prefix, Default::default())
        .await
        .map_err(|e| crate::status::from_store(e, &Default::default(), ""))?;
    let mut out = Vec::with_capacity(page.items.len());
    for kv in &page.items {
        out.push(crate::objects::from_stored(kv)?);
    }
    Ok(out)
}

/// The informer caching the resource whose collection `prefix` is (a storage prefix, or one
/// namespace of it).
fn informer_of<'a>(state: &'a Backend, prefix: &str) -> Option<&'a Arc<crate::informer::Informer>> {
    state.informers.covering(prefix)
}

/// The stored objects of a built-in resource in one namespace ("" = all).
pub(crate) async fn list_resource(
    state: &Backend,
    group: &str,
    resource: &str,
    namespace: &str,
) -> ApiResult<Vec<Value>> {
    // Most of what admission lists (webhook configurations, limit ranges, quotas) is usually
    // not there at all: say so without building a prefix to look under.
    if state
        .informers
        .for_resource(group, resource)
        .is_some_and(|inf| inf.is_empty())
    {
        return Ok(Vec::new());
    }
    let mut prefix = crate::registry::storage_prefix(group, resource);
    if !namespace.is_empty() {
        prefix.push_str(namespace);
        prefix.push('/');
    }
    list_prefix(state, &prefix).await
}

/// Read one stored object of a built-in resource (None if absent).
pub(crate) async fn get_resource(
    state: &Backend,
    group: &str,
    resource: &str,
    namespace: &str,
    name: &str,
) -> ApiResult<Option<Arc<Value>>> {
    let mut key = crate::registry::storage_prefix(group, resource);
    if !namespace.is_empty() {
        key.push_str(namespace);
        key.push('/');
    }
    key.push_str(name);
    if let Some(inf) = state.informers.for_resource(group, resource) {
        if let Some(c) = inf.get(&key) {
            return Ok(Some(c.object));
        }
    }
    // Not in the informer: it may not have seen a write that just returned (a namespace
    // created by another server process sharing the store); ask the store, as kube's
    // lifecycle plugin does on a miss.
    match state.store.get(&key, None).await {
        Ok(kv) => Ok(Some(Arc::new(crate::objects::from_stored(&kv)?))),
        Err(kubox_storage::StoreError::NotFound(_)) => Ok(None),
        Err(e) => Err(crate::status::from_store(e, &Default::default(), name)),
    }
}
