//! The resource registry: GVR → what is served there and how (its [`Strategy`]).
//!
//! Read-mostly: a request takes a cheap `Arc` snapshot; adding or removing resources (CRDs, later)
//! swaps in a new snapshot. Discovery is computed from here, never declared twice.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use kubox_apimachinery::builtin::{self, BuiltinResource};

mod admissionregistration;
pub mod backend;
mod core_kinds;
pub mod gc_finalizers;
pub mod hooks;
mod kinds;
pub mod managed;
mod more_kinds;
mod pod_spec_more;
pub(crate) mod pods;
mod services;
pub mod spec;
pub mod store;
pub mod strategy;
mod workloads;

pub use backend::Backend;
pub use strategy::{BuiltinStrategy, Strategy};

/// A subresource as discovery lists it.
#[derive(Debug, Clone)]
pub struct SubresourceInfo {
    /// `status`, `scale`, ...
    pub name: String,
    /// Kind of the subresource's object.
    pub kind: String,
    /// Group of that kind ("" = the parent's).
    pub group: String,
    /// Version of that kind ("" = the parent's).
    pub version: String,
    /// Verbs.
    pub verbs: Vec<String>,
}

/// One served resource at one group/version.
#[derive(Clone)]
pub struct ResourceInfo {
    /// API group ("" = core).
    pub group: String,
    /// The version this entry serves.
    pub version: String,
    /// Plural name.
    pub resource: String,
    /// Singular name.
    pub singular: String,
    /// Kind.
    pub kind: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Short names (`po`).
    pub short_names: Vec<String>,
    /// Categories (`all`).
    pub categories: Vec<String>,
    /// Verbs.
    pub verbs: Vec<String>,
    /// Subresources.
    pub subresources: Vec<SubresourceInfo>,
    /// The apiVersion objects are stored at (`apps/v1`; core `v1` for events.k8s.io events,
    /// which share storage with core events as in kube-apiserver).
    pub storage_api_version: String,
    /// Storage key prefix for this resource, ending in `/`. Shared by every version.
    pub storage_prefix: String,
    /// Per-resource behaviour.
    pub strategy: Arc<dyn Strategy>,
    /// What the resource adds to the generic store (allocation, waits, its own deletion).
    pub hooks: Arc<dyn store::Hooks>,
    /// A built-in kind's spec (None for custom resources).
    pub spec: Option<&'static spec::KindSpec>,
}

impl std::fmt::Debug for ResourceInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.group, self.version, self.resource)
    }
}

impl ResourceInfo {
    /// `apps/v1` or `v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Is `api_version` the one this resource serves ([`api_version`](Self::api_version),
    /// compared without being spelled out)?
    pub fn serves_api_version(&self, api_version: &str) -> bool {
        match api_version.split_once('/') {
            Some((g, v)) => !g.is_empty() && g == self.group && v == self.version,
            None => self.group.is_empty() && api_version == self.version,
        }
    }

    /// The group/resource for messages.
    pub fn group_resource(&self) -> crate::status::GroupResource {
        crate::status::GroupResource::new(&self.group, &self.resource)
    }

    /// Does it serve this verb?
    pub fn has_verb(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }

    /// A subresource by name.
    pub fn subresource(&self, name: &str) -> Option<&SubresourceInfo> {
        self.subresources.iter().find(|s| s.name == name)
    }

    /// The structural schema of this resource's objects at the version it serves: a custom
    /// resource version's, or the built-in kind's.
    pub fn schema(&self) -> Option<&kubox_openapi::Structural> {
        self.strategy.structural_schema().or_else(|| {
            kubox_openapi::Schemas::builtin().for_kind(&self.group, &self.version, &self.kind)
        })
    }

    /// The structural schema of this resource's objects at the version they are written at
    /// (see [`crate::objects::to_write_version`]): the storage version's for a built-in kind
    /// (HorizontalPodAutoscalers are stored as `autoscaling/v2` whatever version serves them,
    /// `events.k8s.io` Events as core `v1` Events), the served version's for a custom resource.
    pub fn write_schema(&self) -> Option<&kubox_openapi::Structural> {
        if self.strategy.is_custom() || self.serves_api_version(&self.storage_api_version) {
            return self.schema();
        }
        let (group, version) = match self.storage_api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", self.storage_api_version.as_str()),
        };
        kubox_openapi::Schemas::builtin().for_kind(group, version, &self.kind)
    }

    /// The storage key of one object.
    pub fn key(&self, namespace: &str, name: &str) -> String {
        if self.namespaced {
            format!("{}{}/{}", self.storage_prefix, namespace, name)
        } else {
            format!("{}{}", self.storage_prefix, name)
        }
    }

    /// The storage prefix of a collection (one namespace, or all).
    pub fn collection_prefix(&self, namespace: &str) -> String {
        if self.namespaced && !namespace.is_empty() {
            format!("{}{}/", self.storage_prefix, namespace)
        } else {
            self.storage_prefix.clone()
        }
    }
}

/// An API group with its served versions, preferred first.
#[derive(Debug, Clone)]
pub struct GroupInfo {
    /// Group name ("" = core).
    pub name: String,
    /// Versions, preferred first.
    pub versions: Vec<String>,
}

/// An immutable view of everything served.
#[derive(Default, Clone)]
pub struct Snapshot {
    /// By `group/version/resource` (see [`with_key`]).
    by_gvr: HashMap<String, Arc<ResourceInfo>>,
    /// Groups in discovery order (core first).
    pub groups: Vec<GroupInfo>,
    /// Resources per group/version, in discovery order.
    by_gv: HashMap<String, Vec<Arc<ResourceInfo>>>,
    /// `/openapi/v2` rendered from this snapshot (JSON, protobuf), on first use.
    pub openapi_v2: Rendered,
    /// Aggregated discovery rendered from this snapshot (`/api` and `/apis`, v2 and v2beta1),
    /// on first use, while no extension server adds groups.
    pub discovery: RenderedDiscovery,
    /// `/openapi/v3`'s documents, shared with the registry's other snapshots.
    pub openapi_v3: Arc<crate::openapi::V3Cache>,
}

/// Documents rendered from one snapshot, computed once on first use; a clone (a snapshot
/// being changed into the next) starts empty.
#[derive(Default)]
pub struct Rendered {
    /// The JSON form.
    pub json: std::sync::OnceLock<crate::body::Tagged>,
    /// The protobuf form.
    pub protobuf: std::sync::OnceLock<crate::body::Tagged>,
}

impl Clone for Rendered {
    fn clone(&self) -> Self {
        Rendered::default()
    }
}

/// Aggregated discovery documents rendered from one snapshot, by [`RenderedDiscovery::slot`];
/// a clone starts empty.
#[derive(Default)]
pub struct RenderedDiscovery {
    slots: [std::sync::OnceLock<crate::body::Tagged>; 4],
}

impl RenderedDiscovery {
    /// The slot of `/api` (`core`) or `/apis` in apidiscovery `version` (`v2`, `v2beta1`).
    pub fn slot(&self, core: bool, version: &str) -> &std::sync::OnceLock<crate::body::Tagged> {
        let i = usize::from(core) * 2 + usize::from(version == "v2beta1");
        &self.slots[i]
    }
}

impl Clone for RenderedDiscovery {
    fn clone(&self) -> Self {
        RenderedDiscovery::default()
    }
}

impl Snapshot {
    /// Look up a resource.
    pub fn get(&self, group: &str, version: &str, resource: &str) -> Option<Arc<ResourceInfo>> {
        with_key(&[group, version, resource], |k| self.by_gvr.get(k).cloned())
    }

    /// Resources of one group/version, or None if the group/version is not served.
    pub fn resources(&self, group: &str, version: &str) -> Option<&[Arc<ResourceInfo>]> {
        with_key(&[group, version], |k| {
            self.by_gv.get(k).map(|v| v.as_slice())
        })
    }

    /// Find a group.
    pub fn group(&self, name: &str) -> Option<&GroupInfo> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// Find the resource for a kind at a group/version.
    pub fn by_kind(&self, group: &str, version: &str, kind: &str) -> Option<Arc<ResourceInfo>> {
        self.resources(group, version)?
            .iter()
            .find(|r| r.kind == kind)
            .cloned()
    }

    /// A resource of a group at its preferred version (any version shares its storage).
    pub fn find_storage(&self, group: &str, resource: &str) -> Option<Arc<ResourceInfo>> {
        self.group(group)?
            .versions
            .iter()
            .find_map(|v| self.get(group, v, resource))
    }

    fn insert(&mut self, info: Arc<ResourceInfo>) {
        let gv = format!("{}/{}", info.group, info.version);
        match self.groups.iter_mut().find(|g| g.name == info.group) {
            Some(g) => {
                if !g.versions.contains(&info.version) {
                    g.versions.push(info.version.clone());
                }
            }
            None => self.groups.push(GroupInfo {
                name: info.group.clone(),
                versions: vec![info.version.clone()],
            }),
        }
        self.by_gv.entry(gv).or_default().push(info.clone());
        self.by_gvr.insert(
            format!("{}/{}/{}", info.group, info.version, info.resource),
            info,
        );
    }
}

/// Call `f` with `parts` joined by `/` (a snapshot's map key; no part holds a `/`), built on the
/// stack when it is short: a lookup per request allocates nothing.
fn with_key<R>(parts: &[&str], f: impl FnOnce(&str) -> R) -> R {
    let len = parts
        .iter()
        .map(|p| p.len() + 1)
        .sum::<usize>()
        .saturating_sub(1);
    let mut buf = [0u8; 160];
    if len > buf.len() {
        return f(&parts.join("/"));
    }
    let mut at = 0;
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            buf[at] = b'/';
            at += 1;
        }
        buf[at..at + p.len()].copy_from_slice(p.as_bytes());
        at += p.len();
    }
    match std::str::from_utf8(&buf[..at]) {
        Ok(k) => f(k),
        Err(_) => f(&parts.join("/")),
    }
}

/// The registry: a swappable snapshot of the built-ins plus the custom resources CRDs add.
pub struct Registry {
    current: RwLock<Arc<Snapshot>>,
    builtin: Arc<Snapshot>,
    /// Each CRD's resources, kept as they are until it changes (the `/openapi/v3` cache knows
    /// an unchanged group/version by them).
    custom: std::sync::Mutex<std::collections::BTreeMap<String, Vec<Arc<ResourceInfo>>>>,
    /// Counts the snapshots made since start (a change to await).
    generation: tokio::sync::watch::Sender<u64>,
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Kubernetes' version priority as a sort key (smallest first = most preferred): GA before
/// beta before alpha, higher numbers first; versions not shaped like `v1beta2` come last, by name.
pub fn version_priority(v: &str) -> (u8, i64, i64, String) {
    let parse = || -> Option<(u8, i64, i64)> {
        let rest = v.strip_prefix('v')?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let major: i64 = digits.parse().ok()?;
        let tail = &rest[digits.len()..];
        if tail.is_empty() {
            return Some((0, -major, 0));
        }
        let (class, num) = if let Some(n) = tail.strip_prefix("beta") {
            (1, n)
        } else if let Some(n) = tail.strip_prefix("alpha") {
            (2, n)
        } else {
            return None;
        };
        let minor: i64 = num.parse().ok()?;
        Some((class, -major, -minor))
    };
    match parse() {
        Some((c, ma, mi)) => (c, ma, mi, String::new()),
        None => (3, 0, 0, v.to_string()),
    }
}

/// A built-in resource's storage prefix, laid out as kube-apiserver lays out its etcd keys:
/// `/registry/{resource}/` (whatever the group), but for the resources kube stores elsewhere
/// (services under `services/specs`, endpoints under `services/endpoints`, nodes as `minions`,
/// replication controllers as `controllers`, ingresses as `ingress`), and for the API servers
/// kube-apiserver embeds (`apiextensions.k8s.io`, `apiregistration.k8s.io`), whose resources
/// sit under their group: `/registry/{group}/{resource}/`. Objects are at `{prefix}{name}` or
/// `{prefix}{namespace}/{name}`.
pub fn storage_prefix(group: &str, resource: &str) -> String {
    let path = match (group, resource) {
        ("", "replicationcontrollers") => "controllers",
        ("", "endpoints") => "services/endpoints",
        ("", "nodes") => "minions",
        ("", "services") => "services/specs",
        ("networking.k8s.io" | "extensions", "ingresses") => "ingress",
        ("apiextensions.k8s.io" | "apiregistration.k8s.io", _) => {
            return format!("/registry/{group}/{resource}/")
        }
        _ => resource,
    };
    format!("/registry/{path}/")
}

/// A custom resource's storage prefix, as kube-apiextensions-apiserver lays it out:
/// `/registry/{group}/{plural}/`.
pub fn custom_storage_prefix(group: &str, plural: &str) -> String {
    format!("/registry/{group}/{plural}/")
}

/// Where kubox before kube's layout kept a built-in resource: `/registry/{group}/{resource}/`
/// (`core` for the core group). Read once, by the migration of an older data directory.
pub(crate) fn former_storage_prefix(group: &str, resource: &str) -> String {
    let g = if group.is_empty() { "core" } else { group };
    format!("/registry/{g}/{resource}/")
}

/// Resources stored under another group's resource (kube-apiserver's shared storage).
fn shared_storage(b: &BuiltinResource) -> Option<(&'static str, &'static str)> {
    match (b.group, b.resource) {
        ("events.k8s.io", "events") => Some(("", "events")),
        _ => None,
    }
}

/// Move the objects of a data directory written before kube's key layout to their kube keys
/// (values kept, each under a new revision). Returns how many moved; a store already laid out
/// as kube's moves nothing. Objects already at their new key stay (a migration cut short is
/// finished by the next start).
pub async fn migrate_former_layout(
    store: &kubox_storage::DynStore,
) -> kubox_storage::StoreResult<usize> {
    let mut moved = 0;
    for b in builtin::BUILTIN_RESOURCES {
        if shared_storage(b).is_some() {
            continue;
        }
        let (old, new) = (
            former_storage_prefix(b.group, b.resource),
            storage_prefix(b.group, b.resource),
        );
        if old == new {
            continue;
        }
        loop {
            let page = store
                .list(
                    &old,
                    kubox_storage::ListOptions {
                        limit: Some(500),
                        ..Default::default()
                    },
                )
                .await?;
            if page.items.is_empty() {
                break;
            }
            for kv in page.items {
                let Some(rest) = kv.key.strip_prefix(old.as_str()) else {
                    continue;
                };
                match store
                    .create(&format!("{new}{rest}"), kv.value.clone())
                    .await
                {
                    Ok(_) | Err(kubox_storage::StoreError::AlreadyExists(_)) => {}
                    Err(e) => return Err(e),
                }
                store.delete(&kv.key, Some(kv.mod_revision)).await?;
                moved += 1;
            }
        }
    }
    Ok(moved)
}

fn storage_api_version(b: &BuiltinResource) -> String {
    match shared_storage(b) {
        Some(("", _)) => "v1".to_string(),
        Some((g, _)) => format!("{g}/v1"),
        None if b.group.is_empty() => b.storage_version.to_string(),
        None => format!("{}/{}", b.group, b.storage_version),
    }
}

fn builtin_infos(b: &'static BuiltinResource) -> Vec<ResourceInfo> {
    let strategy: Arc<dyn Strategy> = Arc::new(BuiltinStrategy::new(b));
    let kind_spec = spec::of(b);
    let hooks = hooks::for_spec(kind_spec);
    b.versions
        .iter()
        .map(|v| ResourceInfo {
            group: b.group.to_string(),
            version: v.to_string(),
            resource: b.resource.to_string(),
            singular: b.singular.to_string(),
            kind: b.kind.to_string(),
            namespaced: b.namespaced,
            short_names: strs(b.short_names),
            categories: strs(b.categories),
            verbs: strs(b.verbs),
            subresources: b
                .subresources
                .iter()
                .map(|s| SubresourceInfo {
                    name: s.name.to_string(),
                    kind: s.kind.to_string(),
                    group: s.group.to_string(),
                    version: s.version.to_string(),
                    verbs: strs(s.verbs),
                })
                .collect(),
            storage_api_version: storage_api_version(b),
            storage_prefix: shared_storage(b).map_or_else(
                || storage_prefix(b.group, b.resource),
                |(g, r)| storage_prefix(g, r),
            ),
            strategy: strategy.clone(),
            hooks: hooks.clone(),
            spec: kind_spec,
        })
        .collect()
}

impl Registry {
    /// Every Kubernetes 1.35 built-in resource.
    pub fn builtin() -> Registry {
        let mut snap = Snapshot::default();
        // Groups first, in kube-apiserver's discovery order, so versions come preferred-first.
        for (name, versions) in builtin::groups() {
            snap.groups.push(GroupInfo {
                name: name.to_string(),
                versions: strs(&versions),
            });
        }
        for b in builtin::BUILTIN_RESOURCES {
            for info in builtin_infos(b) {
                snap.insert(Arc::new(info));
            }
        }
        let builtin = Arc::new(snap);
        Registry {
            current: RwLock::new(builtin.clone()),
            builtin,
            custom: Default::default(),
            generation: tokio::sync::watch::channel(0).0,
        }
    }

    /// Serve (or re-serve) the resources of one CRD, replacing what it served before.
    pub fn set_custom(&self, crd: &str, infos: Vec<ResourceInfo>) {
        let mut custom = self.custom.lock().unwrap_or_else(|e| e.into_inner());
        custom.insert(crd.to_string(), infos.into_iter().map(Arc::new).collect());
        self.rebuild(&custom);
    }

    /// Stop serving one CRD's resources.
    pub fn remove_custom(&self, crd: &str) {
        let mut custom = self.custom.lock().unwrap_or_else(|e| e.into_inner());
        if custom.remove(crd).is_some() {
            self.rebuild(&custom);
        }
    }

    /// Is something (built-in or another CRD) already serving this group/resource?
    pub fn is_builtin(&self, group: &str, resource: &str) -> bool {
        self.builtin.groups.iter().any(|g| g.name == group)
            && self
                .builtin
                .by_gvr
                .values()
                .any(|i| i.group == group && i.resource == resource)
    }

    fn rebuild(&self, custom: &std::collections::BTreeMap<String, Vec<Arc<ResourceInfo>>>) {
        let mut snap = (*self.builtin).clone();
        // Custom groups follow the built-ins, ordered by name (kube-aggregator gives CRD groups
        // one priority); versions within a group come in the order the CRD's entries list them
        // (preferred first).
        let mut infos: Vec<&Arc<ResourceInfo>> = custom.values().flatten().collect();
        infos.sort_by(|a, b| a.group.cmp(&b.group));
        for info in infos {
            snap.insert(info.clone());
        }
        for g in snap.groups.iter_mut() {
            if self.builtin.group(&g.name).is_none() {
                g.versions.sort_by_key(|v| version_priority(v));
            }
        }
        snap.openapi_v3.retain_served(&snap);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(snap);
        self.generation.send_modify(|g| *g += 1);
    }

    /// Wakes when the served resources change (a CRD's versions served or gone).
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// The built-in groups and their versions, in discovery order.
    pub fn builtin_groups(&self) -> &[GroupInfo] {
        &self.builtin.groups
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::unwrap_used)]
    fn a_resource_serves_its_own_api_version_and_no_other() {
        let snap = Registry::builtin().snapshot();
        for (g, v, r) in [
            ("", "v1", "pods"),
            ("apps", "v1", "deployments"),
            ("autoscaling", "v1", "horizontalpodautoscalers"),
        ] {
            let info = snap.get(g, v, r).unwrap();
            let own = info.api_version();
            assert!(info.serves_api_version(&own), "{own}");
            for other in [
                "",
                "v1",
                "apps/v1",
                "autoscaling/v2",
                "/v1",
                "v1/",
                "apps",
                "apps/v1/x",
            ] {
                assert_eq!(
                    info.serves_api_version(other),
                    other == own,
                    "{own} / {other}"
                );
            }
        }
    }

    #[test]
    fn resources_are_found_by_their_parts_and_only_by_them() {
        let snap = Registry::builtin().snapshot();
        let kind = |g, v, r| snap.get(g, v, r).map(|i| i.kind.clone());
        assert_eq!(kind("", "v1", "pods").as_deref(), Some("Pod"));
        assert_eq!(
            kind("apps", "v1", "deployments").as_deref(),
            Some("Deployment")
        );
        assert!(snap.resources("apps", "v1").is_some_and(|r| r.len() > 3));
        // Joined parts never stand for other parts.
        assert!(snap.get("", "", "v1/pods").is_none());
        assert!(snap.get("apps/v1", "deployments", "").is_none());
        assert!(snap.resources("", "apps/v1").is_none());
        // Longer than the stack buffer: looked up all the same.
        let long = "x".repeat(300);
        assert!(snap.get(&long, "v1", "pods").is_none());
    }

    /// `/api` and `/apis`, each in v2 and v2beta1: four documents, four slots.
    #[test]
    fn each_aggregated_discovery_document_has_its_own_slot() {
        let r = RenderedDiscovery::default();
        let mut slots: Vec<*const _> = [
            (true, "v2"),
            (true, "v2beta1"),
            (false, "v2"),
            (false, "v2beta1"),
        ]
        .iter()
        .map(|(core, v)| r.slot(*core, v) as *const _)
        .collect();
        slots.sort();
        slots.dedup();
        assert_eq!(slots.len(), 4);
    }

    /// Keys resolve to their resource by the storage prefix that begins them
    /// (`ResourceIndex::for_key`, the informers' `covering`): no prefix may begin another.
    #[test]
    fn no_builtin_storage_prefix_begins_another() {
        let prefixes: Vec<(String, &str)> = builtin::BUILTIN_RESOURCES
            .iter()
            .filter(|b| shared_storage(b).is_none())
            .map(|b| (storage_prefix(b.group, b.resource), b.resource))
            .collect();
        assert!(prefixes.len() > 50);
        for (i, (a, ra)) in prefixes.iter().enumerate() {
            for (j, (b, rb)) in prefixes.iter().enumerate() {
                assert!(
                    i == j || !b.starts_with(a.as_str()),
                    "{ra} at {a} begins {rb} at {b}"
                );
            }
        }
    }

    #[test]
    fn kube_apiservers_exceptions_to_the_layout() {
        assert_eq!(storage_prefix("", "pods"), "/registry/pods/");
        assert_eq!(
            storage_prefix("apps", "deployments"),
            "/registry/deployments/"
        );
        assert_eq!(storage_prefix("", "services"), "/registry/services/specs/");
        assert_eq!(
            storage_prefix("", "endpoints"),
            "/registry/services/endpoints/"
        );
        assert_eq!(storage_prefix("", "nodes"), "/registry/minions/");
        assert_eq!(
            storage_prefix("", "replicationcontrollers"),
            "/registry/controllers/"
        );
        assert_eq!(
            storage_prefix("networking.k8s.io", "ingresses"),
            "/registry/ingress/"
        );
        assert_eq!(
            storage_prefix("apiextensions.k8s.io", "customresourcedefinitions"),
            "/registry/apiextensions.k8s.io/customresourcedefinitions/"
        );
        assert_eq!(
            storage_prefix("apiregistration.k8s.io", "apiservices"),
            "/registry/apiregistration.k8s.io/apiservices/"
        );
        assert_eq!(
            custom_storage_prefix("example.com", "widgets"),
            "/registry/example.com/widgets/"
        );
    }
}
