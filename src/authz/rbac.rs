//! The RBAC authorizer: Roles, ClusterRoles, RoleBindings and ClusterRoleBindings, held in
//! memory and indexed by subject, so a decision only looks at the bindings of the asking user
//! and its groups (1,000 bindings for other subjects cost nothing).
//!
//! [`Rbac`] is fed by a store watch ([`load_all`], then [`run`]); every change rebuilds an
//! immutable [`Snapshot`] that decisions read without waiting on writers. Writes to RBAC objects
//! return once the index has seen them ([`Rbac::wait_for`], called by the handlers), so the next
//! request is decided with them. The same task runs the ClusterRole aggregation controller:
//! a ClusterRole with an `aggregationRule` gets the rules of every ClusterRole its selectors
//! match (`admin`, `edit`, `view` and the `aggregate-to-*` labels).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use kubox_apimachinery::labels::LabelSelector;
use kubox_storage::EventKind;
use serde_json::{json, Value};
use tokio::sync::watch;

use super::rules::PolicyRule;
use super::{Attributes, Authorizer, Decision};
use crate::authn::UserInfo;
use crate::registry::Backend;
use crate::status::ApiResult;

/// The API group of RBAC.
pub const GROUP: &str = "rbac.authorization.k8s.io";

/// The RBAC resources, each stored under its own prefix (kube's layout), each fed to the index
/// by its own list and watch, with the name `/readyz` gives that loop.
const RESOURCES: [(&str, &str); 4] = [
    ("clusterroles", "the RBAC index (clusterroles)"),
    (
        "clusterrolebindings",
        "the RBAC index (clusterrolebindings)",
    ),
    ("roles", "the RBAC index (roles)"),
    ("rolebindings", "the RBAC index (rolebindings)"),
];

/// Where the RBAC objects of `resource` are stored.
pub fn storage_prefix(resource: &str) -> String {
    crate::registry::storage_prefix(GROUP, resource)
}

fn position(resource: &str) -> Option<usize> {
    RESOURCES.iter().position(|(r, _)| *r == resource)
}

#[derive(Debug, Clone)]
struct StoredClusterRole {
    rules: Arc<Vec<PolicyRule>>,
    labels: BTreeMap<String, String>,
    /// `aggregationRule.clusterRoleSelectors`, when the role is aggregated.
    selectors: Option<Vec<LabelSelector>>,
}

#[derive(Debug, Clone)]
struct Binding {
    role_is_cluster: bool,
    role: Arc<str>,
    /// Subjects as index keys: (is_group, name); ServiceAccounts as their user name.
    subjects: Vec<(bool, String, Arc<str>)>,
}

/// Every RBAC object, as the watch left them.
#[derive(Debug, Default, Clone)]
struct Objects {
    cluster_roles: BTreeMap<String, StoredClusterRole>,
    roles: BTreeMap<(String, String), Arc<Vec<PolicyRule>>>,
    cluster_bindings: BTreeMap<String, Binding>,
    bindings: BTreeMap<(String, String), Binding>,
}

/// One binding that applies to a subject.
#[derive(Debug, Clone)]
struct Grant {
    /// `ClusterRoleBinding "x"` or `RoleBinding "x/ns"`.
    binding: Arc<str>,
    role_is_cluster: bool,
    role: Arc<str>,
    /// `User "jane"`, `Group "g"`, `ServiceAccount "ns/name"`.
    subject: Arc<str>,
}

#[derive(Debug, Default)]
struct SubjectIndex {
    users: HashMap<String, Vec<Grant>>,
    groups: HashMap<String, Vec<Grant>>,
}

impl SubjectIndex {
    fn add(&mut self, is_group: bool, name: &str, grant: Grant) {
        let map = if is_group {
            &mut self.groups
        } else {
            &mut self.users
        };
        map.entry(name.to_string()).or_default().push(grant);
    }

    fn for_user<'a>(&'a self, user: &'a UserInfo) -> impl Iterator<Item = &'a Grant> + 'a {
        let users = self.users.get(&user.username).into_iter().flatten();
        let groups = user
            .groups
            .iter()
            .filter_map(|g| self.groups.get(g))
            .flatten();
        users.chain(groups)
    }
}

/// An immutable view of the RBAC objects, indexed by subject.
#[derive(Debug, Default)]
pub struct Snapshot {
    cluster_roles: HashMap<String, Arc<Vec<PolicyRule>>>,
    roles: HashMap<String, HashMap<String, Arc<Vec<PolicyRule>>>>,
    cluster: SubjectIndex,
    namespaced: HashMap<String, SubjectIndex>,
}

impl Snapshot {
    fn build(o: &Objects) -> Snapshot {
        let mut s = Snapshot {
            cluster_roles: o
                .cluster_roles
                .iter()
                .map(|(k, v)| (k.clone(), v.rules.clone()))
                .collect(),
            ..Default::default()
        };
        for ((ns, name), rules) in &o.roles {
            s.roles
                .entry(ns.clone())
                .or_default()
                .insert(name.clone(), rules.clone());
        }
        for (name, b) in &o.cluster_bindings {
            let binding: Arc<str> = format!("ClusterRoleBinding {name:?}").into();
            for (is_group, key, subject) in &b.subjects {
                s.cluster.add(
                    *is_group,
                    key,
                    Grant {
                        binding: binding.clone(),
                        role_is_cluster: true,
                        role: b.role.clone(),
                        subject: subject.clone(),
                    },
                );
            }
        }
        for ((ns, name), b) in &o.bindings {
            let binding: Arc<str> = format!("RoleBinding \"{name}/{ns}\"").into();
            let index = s.namespaced.entry(ns.clone()).or_default();
            for (is_group, key, subject) in &b.subjects {
                index.add(
                    *is_group,
                    key,
                    Grant {
                        binding: binding.clone(),
                        role_is_cluster: b.role_is_cluster,
                        role: b.role.clone(),
                        subject: subject.clone(),
                    },
                );
            }
        }
        s
    }

    fn rules_of(&self, grant: &Grant, namespace: &str) -> Option<&Arc<Vec<PolicyRule>>> {
        if grant.role_is_cluster {
            self.cluster_roles.get(&*grant.role)
        } else {
            self.roles.get(namespace)?.get(&*grant.role)
        }
    }

    /// Every (grant, rules) that applies to `user` in `namespace` ("" = cluster bindings only).
    fn grants<'a>(
        &'a self,
        user: &'a UserInfo,
        namespace: &'a str,
    ) -> impl Iterator<Item = (&'a Grant, &'a Arc<Vec<PolicyRule>>)> + 'a {
        let cluster = self
            .cluster
            .for_user(user)
            .filter_map(|g| Some((g, self.rules_of(g, "")?)));
        let local = (!namespace.is_empty())
            .then(|| self.namespaced.get(namespace))
            .flatten()
            .into_iter()
            .flat_map(move |idx| idx.for_user(user))
            .filter_map(move |g| Some((g, self.rules_of(g, namespace)?)));
        cluster.chain(local)
    }

    /// Decide one request.
    pub fn authorize(&self, a: &Attributes<'_>) -> Decision {
        let Some(user) = a.user else {
            return Decision::NoOpinion(String::new());
        };
        let ns = if a.resource_request { a.namespace } else { "" };
        for (grant, rules) in self.grants(user, ns) {
            if rules.iter().any(|r| r.allows(a)) {
                let kind = if grant.role_is_cluster {
                    "ClusterRole"
                } else {
                    "Role"
                };
                return Decision::Allow(format!(
                    "RBAC: allowed by {} of {kind} {:?} to {}",
                    grant.binding, grant.role, grant.subject
                ));
            }
        }
        Decision::NoOpinion(String::new())
    }

    /// Every rule `user` holds in `namespace` (cluster-wide rules included), as
    /// kube-apiserver's `RulesFor`.
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> Vec<PolicyRule> {
        let mut out: Vec<PolicyRule> = Vec::new();
        for (_, rules) in self.grants(user, namespace) {
            out.extend(rules.iter().cloned());
        }
        out
    }
}

/// The RBAC authorizer and its index.
pub struct Rbac {
    objects: Mutex<Objects>,
    snapshot: RwLock<Arc<Snapshot>>,
    /// The revision each resource's feed has seen (in [`RESOURCES`] order).
    observed: [watch::Sender<i64>; 4],
}

impl Default for Rbac {
    fn default() -> Self {
        Rbac {
            objects: Mutex::default(),
            snapshot: RwLock::default(),
            observed: std::array::from_fn(|_| watch::channel(0).0),
        }
    }
}

impl std::fmt::Debug for Rbac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rbac").finish_non_exhaustive()
    }
}

impl Rbac {
    /// An index built from RBAC objects (each with its `kind`), without a store: for benches
    /// and tests of the decision itself.
    pub fn from_objects(objects: impl IntoIterator<Item = Value>) -> Rbac {
        let rbac = Rbac::default();
        {
            let mut o = rbac.lock();
            for obj in objects {
                let resource = match obj["kind"].as_str() {
                    Some("ClusterRole") => "clusterroles",
                    Some("Role") => "roles",
                    Some("ClusterRoleBinding") => "clusterrolebindings",
                    Some("RoleBinding") => "rolebindings",
                    _ => continue,
                };
                o.put(resource, &obj);
            }
            rbac.publish(&o);
        }
        rbac
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Every rule `user` holds in `namespace`.
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> Vec<PolicyRule> {
        self.snapshot().rules_for(user, namespace)
    }

    /// The rules of a role reference (None if the role does not exist).
    pub fn role_rules(
        &self,
        cluster: bool,
        namespace: &str,
        name: &str,
    ) -> Option<Vec<PolicyRule>> {
        let s = self.snapshot();
        let rules = if cluster {
            s.cluster_roles.get(name)
        } else {
            s.roles.get(namespace).and_then(|r| r.get(name))
        };
        rules.map(|r| r.to_vec())
    }

    /// Wait (bounded) until the index has seen revision `rev` of `resource`.
    pub async fn wait_for(&self, resource: &str, rev: i64) {
        let Some(observed) = position(resource).and_then(|i| self.observed.get(i)) else {
            return;
        };
        let mut rx = observed.subscribe();
        let _ =
            tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|seen| *seen >= rev)).await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Objects> {
        self.objects.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn publish(&self, o: &Objects) {
        let snap = Arc::new(Snapshot::build(o));
        *self
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner) = snap;
    }
}

impl Authorizer for Rbac {
    fn authorize(&self, attrs: &Attributes<'_>) -> Decision {
        self.snapshot().authorize(attrs)
    }
}

fn rules_of(obj: &Value) -> Arc<Vec<PolicyRule>> {
    Arc::new(serde_json::from_value(obj["rules"].clone()).unwrap_or_default())
}

fn labels_of(obj: &Value) -> BTreeMap<String, String> {
    serde_json::from_value(obj["metadata"]["labels"].clone()).unwrap_or_default()
}

fn binding_of(obj: &Value, namespace: &str) -> Binding {
    let role_ref = &obj["roleRef"];
    let subjects = obj["subjects"]
        .as_array()
        .map(|s| s.as_slice())
        .unwrap_or_default()
        .iter()
        .filter_map(|s| {
            let name = s["name"].as_str()?;
            match s["kind"].as_str()? {
                "User" => Some((false, name.to_string(), format!("User {name:?}").into())),
                "Group" => Some((true, name.to_string(), format!("Group {name:?}").into())),
                "ServiceAccount" => {
                    let ns = s["namespace"]
                        .as_str()
                        .filter(|n| !n.is_empty())
                        .unwrap_or(namespace);
                    Some((
                        false,
                        format!("system:serviceaccount:{ns}:{name}"),
                        format!("ServiceAccount \"{ns}/{name}\"").into(),
                    ))
                }
                _ => None,
            }
        })
        .collect();
    Binding {
        role_is_cluster: role_ref["kind"].as_str() == Some("ClusterRole"),
        role: role_ref["name"].as_str().unwrap_or_default().into(),
        subjects,
    }
}

impl Objects {
    fn put(&mut self, resource: &str, obj: &Value) {
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        match resource {
            "clusterroles" => {
                let selectors = obj
                    .get("aggregationRule")
                    .filter(|a| !a.is_null())
                    .map(|a| {
                        a["clusterRoleSelectors"]
                            .as_array()
                            .map(|s| s.as_slice())
                            .unwrap_or_default()
                            .iter()
                            .filter_map(|s| LabelSelector::from_label_selector_json(s).ok())
                            .collect()
                    });
                self.cluster_roles.insert(
                    name,
                    StoredClusterRole {
                        rules: rules_of(obj),
                        labels: labels_of(obj),
                        selectors,
                    },
                );
            }
            "roles" => {
                self.roles.insert((ns, name), rules_of(obj));
            }
            "clusterrolebindings" => {
                self.cluster_bindings.insert(name, binding_of(obj, ""));
            }
            "rolebindings" => {
                let b = binding_of(obj, &ns);
                self.bindings.insert((ns, name), b);
            }
            _ => {}
        }
    }

    /// Forget every object of `resource` (before its relist).
    fn clear(&mut self, resource: &str) {
        match resource {
            "clusterroles" => self.cluster_roles.clear(),
            "roles" => self.roles.clear(),
            "clusterrolebindings" => self.cluster_bindings.clear(),
            "rolebindings" => self.bindings.clear(),
            _ => {}
        }
    }

    fn remove(&mut self, resource: &str, ns: &str, name: &str) {
        match resource {
            "clusterroles" => {
                self.cluster_roles.remove(name);
            }
            "roles" => {
                self.roles.remove(&(ns.to_string(), name.to_string()));
            }
            "clusterrolebindings" => {
                self.cluster_bindings.remove(name);
            }
            "rolebindings" => {
                self.bindings.remove(&(ns.to_string(), name.to_string()));
            }
            _ => {}
        }
    }

    /// The rules each aggregated ClusterRole should have, where they differ from what it has.
    /// An aggregated role may select roles that are aggregated themselves (admin ⊇ edit ⊇
    /// view through their labels): the union is taken again over the new rules until nothing
    /// changes (at most [`AGGREGATION_ROUNDS`] times), so that each role is written once, with
    /// what it ends with.
    fn aggregation_changes(&self) -> Vec<(String, Vec<PolicyRule>)> {
        let mut new: BTreeMap<&str, Vec<PolicyRule>> = BTreeMap::new();
        for _ in 0..AGGREGATION_ROUNDS {
            let mut changed = false;
            for (name, role) in &self.cluster_roles {
                let Some(selectors) = &role.selectors else {
                    continue;
                };
                let mut rules: Vec<PolicyRule> = Vec::new();
                for (other, o) in &self.cluster_roles {
                    if other == name || !selectors.iter().any(|s| s.matches(&o.labels)) {
                        continue;
                    }
                    let theirs = new.get(other.as_str()).unwrap_or(&o.rules);
                    for r in theirs {
                        if !rules.contains(r) {
                            rules.push(r.clone());
                        }
                    }
                }
                if rules != **new.get(name.as_str()).unwrap_or(&role.rules) {
                    new.insert(name, rules);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        new.into_iter()
            .filter(|(name, rules)| {
                self.cluster_roles
                    .get(*name)
                    .is_some_and(|role| *rules != *role.rules)
            })
            .map(|(name, rules)| (name.to_string(), rules))
            .collect()
    }
}

/// How many times aggregation takes the union over rules it has just aggregated: the depth of
/// aggregated roles selecting aggregated roles it follows (kube's bootstrap policy has three).
const AGGREGATION_ROUNDS: usize = 8;

/// `(namespace, name)` of a storage key under `prefix` (namespace "" when cluster-scoped).
fn parse_key<'k>(prefix: &str, key: &'k str) -> Option<(&'k str, &'k str)> {
    let rest = key.strip_prefix(prefix)?;
    Some(rest.split_once('/').unwrap_or(("", rest)))
}

/// What feeds the index: the informer loop's list and watch of the RBAC prefix
/// ([`crate::informer::list_and_watch`]).
pub struct Feed {
    state: Arc<Backend>,
    rbac: Arc<Rbac>,
    /// Which of [`RESOURCES`] it feeds.
    index: usize,
    resource: &'static str,
    prefix: String,
}

impl Feed {
    /// The feed of `rbac`'s `index`-th resource, whose aggregation writes go to `state`'s store.
    fn new(state: Arc<Backend>, rbac: Arc<Rbac>, index: usize) -> Feed {
        let resource = RESOURCES.get(index).map_or("", |(r, _)| *r);
        Feed {
            state,
            rbac,
            index,
            resource,
            prefix: storage_prefix(resource),
        }
    }

    fn observed(&self, revision: i64) {
        if let Some(o) = self.rbac.observed.get(self.index) {
            o.send_replace(revision);
        }
    }
}

#[async_trait::async_trait]
impl crate::informer::Handler for Feed {
    async fn relisted(
        &self,
        items: Vec<kubox_storage::KeyValue>,
        revision: i64,
    ) -> Result<(), String> {
        {
            let mut o = self.rbac.lock();
            o.clear(self.resource);
            for kv in &items {
                if let Ok(obj) = serde_json::from_slice::<Value>(&kv.value) {
                    o.put(self.resource, &obj);
                }
            }
            self.rbac.publish(&o);
        }
        aggregate(&self.state, &self.rbac).await;
        self.observed(revision);
        Ok(())
    }

    async fn changed(&self, ev: &Arc<kubox_storage::Event>) {
        if apply(&self.rbac, self.resource, &self.prefix, ev) {
            aggregate(&self.state, &self.rbac).await;
        }
        self.observed(ev.revision());
    }
}

/// Read every RBAC object into the index (at start); returns the revision each resource was
/// read at.
pub async fn load_all(state: &Arc<Backend>, rbac: &Arc<Rbac>) -> ApiResult<[i64; 4]> {
    let mut revisions = [0; 4];
    for (i, rev) in revisions.iter_mut().enumerate() {
        let feed = Feed::new(state.clone(), rbac.clone(), i);
        *rev = crate::informer::list_into(&state.store, &feed.prefix, &feed)
            .await
            .map_err(crate::status::ApiError::internal)?;
    }
    Ok(revisions)
}

/// Keep the index current from the revisions [`load_all`] read at until shutdown (relisting
/// after a lost watch): one list and watch per resource.
pub async fn run(state: Arc<Backend>, rbac: Arc<Rbac>, from: [i64; 4]) {
    let loops = from.into_iter().enumerate().map(|(i, rev)| {
        let feed = Arc::new(Feed::new(state.clone(), rbac.clone(), i));
        let name = RESOURCES.get(i).map_or("the RBAC index", |(_, n)| *n);
        let state = state.clone();
        async move {
            let prefix = feed.prefix.clone();
            state
                .informers
                .run(
                    name,
                    state.store.clone(),
                    prefix,
                    feed,
                    Some(rev),
                    state.shutdown.clone(),
                )
                .await;
        }
    });
    futures::future::join_all(loops).await;
}

/// Apply one watch event of `resource` to the index; true when a ClusterRole changed
/// (aggregation may follow).
fn apply(rbac: &Rbac, resource: &str, prefix: &str, ev: &kubox_storage::Event) -> bool {
    let Some((ns, name)) = parse_key(prefix, &ev.kv.key) else {
        return false;
    };
    let mut o = rbac.lock();
    match ev.kind {
        EventKind::Put => match serde_json::from_slice::<Value>(&ev.kv.value) {
            Ok(obj) => o.put(resource, &obj),
            Err(e) => tracing::warn!(key = %ev.kv.key, error = %e, "RBAC object is not JSON"),
        },
        EventKind::Delete => o.remove(resource, ns, name),
    }
    rbac.publish(&o);
    resource == "clusterroles"
}

/// The ClusterRole aggregation controller: write the union of the selected roles' rules into
/// each aggregated role, until nothing changes (admin ⊇ edit ⊇ view chain through labels).
/// Applied to the index at once, so the write that triggered it is decided with the result.
async fn aggregate(state: &Arc<Backend>, rbac: &Rbac) {
    for _ in 0..AGGREGATION_ROUNDS {
        let changes = rbac.lock().aggregation_changes();
        if changes.is_empty() {
            return;
        }
        // Written together: a store that commits in groups (sled) syncs them once.
        let written = futures::future::join_all(
            changes
                .iter()
                .map(|(name, rules)| write_rules(state, name, rules)),
        )
        .await;
        let mut o = rbac.lock();
        let mut failed = false;
        for ((name, rules), outcome) in changes.into_iter().zip(written) {
            if let Err(e) = outcome {
                tracing::warn!(clusterrole = %name, error = %e.message, "aggregation failed");
                failed = true;
                continue;
            }
            if let Some(role) = o.cluster_roles.get_mut(&name) {
                role.rules = Arc::new(rules);
            }
        }
        rbac.publish(&o);
        if failed {
            return;
        }
    }
}

/// Write an aggregated role's rules through the registry store, with admission, as
/// kube-controller-manager's clusterrole-aggregation controller writes them through the API.
async fn write_rules(state: &Arc<Backend>, name: &str, rules: &[PolicyRule]) -> ApiResult<()> {
    let Some(info) = state.registry.snapshot().get(GROUP, "v1", "clusterroles") else {
        return Ok(());
    };
    let scope = crate::registry::store::Scope::system(state, info, "", "");
    let rules = json!(rules);
    // The index's own write: it must not wait for the index, which is busy running it.
    INSIDE_INDEX
        .scope(
            (),
            crate::registry::store::guaranteed_update(&scope, name, None, |obj| {
                if obj["rules"] == rules {
                    return false;
                }
                obj["rules"] = rules.clone();
                true
            }),
        )
        .await?;
    Ok(())
}

tokio::task_local! {
    /// Set while the index's own loop writes (the aggregation).
    static INSIDE_INDEX: ();
}

/// Is this the index's own loop writing? (Its writes do not wait for the index.)
pub fn inside_index() -> bool {
    INSIDE_INDEX.try_with(|_| ()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(name: &str, labels: Value, selects: Option<&str>, resources: &[&str]) -> Value {
        let rules: Vec<Value> = resources
            .iter()
            .map(|r| json!({"verbs": ["get"], "apiGroups": [""], "resources": [r]}))
            .collect();
        let mut obj = json!({"metadata": {"name": name, "labels": labels}, "rules": rules});
        if let Some(label) = selects {
            obj["aggregationRule"] =
                json!({"clusterRoleSelectors": [{"matchLabels": {label: "true"}}]});
        }
        obj
    }

    fn resources(rules: &[PolicyRule]) -> Vec<&str> {
        let mut out: Vec<&str> = rules
            .iter()
            .flat_map(|r| r.resources.iter().map(String::as_str))
            .collect();
        out.sort_unstable();
        out
    }

    /// admin selects edit's label, edit view's, view the widgets role's: one pass gives each
    /// aggregated role what it ends with, so each is written once.
    #[test]
    fn aggregation_follows_aggregated_roles_to_their_final_rules() {
        let mut objects = Objects::default();
        for obj in [
            role("admin", json!({}), Some("to-admin"), &[]),
            role("edit", json!({"to-admin": "true"}), Some("to-edit"), &[]),
            role("view", json!({"to-edit": "true"}), Some("to-view"), &[]),
            role("widgets", json!({"to-view": "true"}), None, &["widgets"]),
            role("gadgets", json!({"to-edit": "true"}), None, &["gadgets"]),
        ] {
            objects.put("clusterroles", &obj);
        }
        let changes: BTreeMap<String, Vec<PolicyRule>> =
            objects.aggregation_changes().into_iter().collect();
        assert_eq!(resources(&changes["view"]), ["widgets"]);
        assert_eq!(resources(&changes["edit"]), ["gadgets", "widgets"]);
        assert_eq!(resources(&changes["admin"]), ["gadgets", "widgets"]);
        assert_eq!(changes.len(), 3, "{changes:?}");
        for (name, rules) in changes {
            if let Some(role) = objects.cluster_roles.get_mut(&name) {
                role.rules = Arc::new(rules);
            }
        }
        assert!(objects.aggregation_changes().is_empty());
    }
}
