//! What the workload controllers, the scheduler and the simulated kubelets share: caches of
//! decoded objects fed by the dispatcher, expectations (a controller's own writes observed
//! before it decides again), timers on the server clock, owner references, pod templates and
//! pod states, and writes through the registry store.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::StatusCode;
use kubox_apimachinery::labels::LabelSelector;
use serde_json::{json, Value};

use super::{Msg, Queue};
use crate::registry::store::{
    self, CreateOptions, DeleteOptions, Preconditions, Propagation, Scope,
};
use crate::registry::{storage_prefix, Backend, ResourceInfo};
use crate::status::{ApiError, ApiResult};

// ---------------------------------------------------------------------------------------------
// Caches.

/// One change to a cached object.
pub(crate) struct Changed {
    /// The storage key.
    pub key: String,
    /// Before (None: created, or unknown before a relist).
    pub old: Option<Arc<Value>>,
    /// After (None: deleted).
    pub new: Option<Arc<Value>>,
}

/// The objects of one built-in resource, decoded once as they arrive.
pub(crate) struct Cache {
    prefix: String,
    objects: BTreeMap<String, Arc<Value>>,
}

impl Cache {
    /// The cache of `group`/`resource` (stored at its storage prefix).
    pub fn new(group: &str, resource: &str) -> Cache {
        Cache {
            prefix: storage_prefix(group, resource),
            objects: BTreeMap::new(),
        }
    }

    /// Take one message; the changes it made to this resource.
    pub fn observe(&mut self, msg: &Msg) -> Vec<Changed> {
        match msg {
            Msg::Reset { items, decoded, .. } => {
                let mut fresh = BTreeMap::new();
                for (kv, d) in items.iter().zip(decoded.iter()) {
                    if kv.key.starts_with(&self.prefix) {
                        if let Some(obj) = d.get(kv) {
                            fresh.insert(kv.key.to_string(), obj);
                        }
                    }
                }
                let old = std::mem::replace(&mut self.objects, fresh);
                let keys: BTreeSet<&String> = old.keys().chain(self.objects.keys()).collect();
                keys.into_iter()
                    .map(|k| Changed {
                        key: k.clone(),
                        old: old.get(k).cloned(),
                        new: self.objects.get(k).cloned(),
                    })
                    .collect()
            }
            Msg::Change(ev) => {
                if !ev.kv.key.starts_with(&self.prefix) {
                    return Vec::new();
                }
                let key = ev.kv.key.to_string();
                let new = ev.object();
                let old = match &new {
                    Some(n) => self.objects.insert(key.clone(), n.clone()),
                    None => self.objects.remove(&key),
                };
                vec![Changed { key, old, new }]
            }
        }
    }

    /// The storage prefix of its resource.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Is `key` one of this resource's?
    pub fn owns(&self, key: &str) -> bool {
        key.starts_with(&self.prefix)
    }

    /// The storage key of `ns`/`name` ("" namespace for cluster-scoped objects).
    pub fn key(&self, ns: &str, name: &str) -> String {
        if ns.is_empty() {
            format!("{}{name}", self.prefix)
        } else {
            format!("{}{ns}/{name}", self.prefix)
        }
    }

    /// (namespace, name) of a key of this resource.
    pub fn split<'k>(&self, key: &'k str) -> (&'k str, &'k str) {
        let rest = key.strip_prefix(self.prefix.as_str()).unwrap_or(key);
        rest.split_once('/').unwrap_or(("", rest))
    }

    /// The cached object at `key`.
    pub fn get(&self, key: &str) -> Option<&Arc<Value>> {
        self.objects.get(key)
    }

    /// Every object in `ns`.
    pub fn in_namespace<'a>(
        &'a self,
        ns: &str,
    ) -> impl Iterator<Item = (&'a String, &'a Arc<Value>)> + 'a {
        let from = format!("{}{ns}/", self.prefix);
        self.objects
            .range(from.clone()..)
            .take_while(move |(k, _)| k.starts_with(&from))
    }

    /// Every object.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Arc<Value>)> {
        self.objects.iter()
    }

    /// How many objects.
    pub fn len(&self) -> usize {
        self.objects.len()
    }
}

// ---------------------------------------------------------------------------------------------
// Expectations and timers.

/// A controller's own writes, waited for: after writing for a key, the controller decides
/// about that key again only once it has observed the store up to its last write (kube's
/// expectations), so it never counts from a cache that misses what it just did.
#[derive(Default)]
pub(crate) struct Expectations {
    observed: i64,
    waiting: HashMap<String, i64>,
}

impl Expectations {
    /// The controller observed the store up to `rev`: keys waiting for it are queued.
    pub fn observed(&mut self, rev: i64, queue: &mut Queue) {
        self.observed = self.observed.max(rev);
        let now = self.observed;
        self.waiting.retain(|k, r| {
            if *r <= now {
                queue.add(k.clone());
                false
            } else {
                true
            }
        });
    }

    /// The lowest revision a key waits for (None: none waits).
    pub fn next(&self) -> Option<i64> {
        self.waiting.values().min().copied()
    }

    /// Decide about `key` again once the store is observed up to `rev`.
    pub fn wait(&mut self, key: &str, rev: i64) {
        if rev > self.observed {
            let r = self.waiting.entry(key.to_string()).or_insert(rev);
            *r = (*r).max(rev);
        }
    }

    /// May the controller decide about `key` now?
    pub fn satisfied(&self, key: &str) -> bool {
        !self.waiting.contains_key(key)
    }

    /// After writing for `key`: wait until the store as it is now has been observed.
    pub async fn wait_for_store(&mut self, state: &Backend, key: &str) {
        if let Ok(rev) = state.store.current_revision().await {
            self.wait(key, rev);
        }
    }
}

/// Work due at a moment of the server clock, per key (the earliest wins).
#[derive(Default)]
pub(crate) struct Timers {
    due: BTreeSet<(SystemTime, String)>,
    by_key: HashMap<String, SystemTime>,
}

impl Timers {
    /// Queue `key` at `at` (kept if an earlier moment is already set).
    pub fn at(&mut self, key: &str, at: SystemTime) {
        if let Some(prev) = self.by_key.get(key) {
            if *prev <= at {
                return;
            }
            self.due.remove(&(*prev, key.to_string()));
        }
        self.by_key.insert(key.to_string(), at);
        self.due.insert((at, key.to_string()));
    }

    /// The next moment something is due.
    pub fn next(&self) -> Option<SystemTime> {
        self.due.first().map(|(t, _)| *t)
    }

    /// Queue everything due at `now`.
    pub fn take_due(&mut self, now: SystemTime, queue: &mut Queue) {
        while let Some((t, _)) = self.due.first() {
            if *t > now {
                break;
            }
            if let Some((_, k)) = self.due.pop_first() {
                self.by_key.remove(&k);
                queue.add(k);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Times.

/// Parse a metav1.Time.
pub(crate) fn parse_time(s: &str) -> Option<SystemTime> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| SystemTime::from(t.with_timezone(&chrono::Utc)))
}

/// The time at `obj[path…]`, if it is one.
pub(crate) fn time_at(v: &Value) -> Option<SystemTime> {
    v.as_str().and_then(parse_time)
}

/// `now` as a metav1.Time.
pub(crate) fn stamp(now: SystemTime) -> String {
    crate::objects::timestamp(now)
}

/// `t + secs` (seconds may be negative or huge).
pub(crate) fn plus_secs(t: SystemTime, secs: i64) -> SystemTime {
    if secs >= 0 {
        later(t, Duration::from_secs(secs.unsigned_abs()))
    } else {
        t.checked_sub(Duration::from_secs(secs.unsigned_abs()))
            .unwrap_or(t)
    }
}

/// `from` plus `after`, where a spec or an annotation sets `after` to any length: one past what
/// the clock holds is as good as forever (a thousand years on), not a panic nor now.
pub(crate) fn later(from: SystemTime, after: Duration) -> SystemTime {
    from.checked_add(after)
        .or_else(|| from.checked_add(Duration::from_secs(1000 * 365 * 86_400)))
        .unwrap_or(from)
}

// ---------------------------------------------------------------------------------------------
// Owners.

/// The ownerReference with `controller: true`, if any.
pub(crate) fn controller_of(obj: &Value) -> Option<&Value> {
    obj["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"] == true)
}

/// The controller's uid, if the object has a controller.
pub(crate) fn controller_uid(obj: &Value) -> Option<&str> {
    controller_of(obj).and_then(|r| r["uid"].as_str())
}

/// Is `obj` controlled by an object of `kind` (its name, if so)?
pub(crate) fn controller_named<'a>(obj: &'a Value, kind: &str) -> Option<&'a str> {
    let r = controller_of(obj)?;
    (r["kind"] == kind).then(|| r["name"].as_str()).flatten()
}

/// A controller reference to `owner` (kube's NewControllerRef).
pub(crate) fn controller_ref(owner: &Value, api_version: &str, kind: &str) -> Value {
    json!({
        "apiVersion": api_version,
        "kind": kind,
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// metadata.uid.
pub(crate) fn uid_of(obj: &Value) -> &str {
    obj["metadata"]["uid"].as_str().unwrap_or_default()
}

/// metadata.generation.
pub(crate) fn generation_of(obj: &Value) -> i64 {
    obj["metadata"]["generation"].as_i64().unwrap_or(0)
}

/// The object's `spec.selector` as a label selector (a metav1.LabelSelector, or the map a
/// ReplicationController has); nothing when absent or invalid.
pub(crate) fn selector_of(obj: &Value) -> LabelSelector {
    let sel = &obj["spec"]["selector"];
    if sel.is_null() {
        return LabelSelector::nothing();
    }
    let is_label_selector =
        sel.get("matchLabels").is_some() || sel.get("matchExpressions").is_some();
    if !is_label_selector && sel.is_object() {
        let set: BTreeMap<String, String> = sel
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        if set.is_empty() {
            return LabelSelector::nothing();
        }
        return LabelSelector::from_set(&set);
    }
    LabelSelector::from_label_selector_json(sel).unwrap_or_else(|_| LabelSelector::nothing())
}

/// Does `selector` select `obj` by its labels?
pub(crate) fn selects(selector: &LabelSelector, obj: &Value) -> bool {
    !selector.matches_nothing() && selector.matches_value(obj)
}

// ---------------------------------------------------------------------------------------------
// Pods.

/// A pod from a pod template, controlled by `owner` (kube's GetPodFromTemplate): the
/// template's labels, annotations, finalizers and spec.
pub(crate) fn pod_from_template(template: &Value, ns: &str, owner: Value) -> Value {
    let meta = &template["metadata"];
    let mut m = serde_json::Map::new();
    m.insert("namespace".into(), json!(ns));
    for k in ["labels", "annotations", "finalizers"] {
        if let Some(v) = meta.get(k).filter(|v| !v.is_null()) {
            m.insert(k.into(), v.clone());
        }
    }
    m.insert("ownerReferences".into(), json!([owner]));
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": Value::Object(m),
        "spec": template["spec"].clone(),
    })
}

/// status.phase.
pub(crate) fn phase_of(pod: &Value) -> &str {
    pod["status"]["phase"].as_str().unwrap_or_default()
}

/// Succeeded or Failed.
pub(crate) fn is_terminal(pod: &Value) -> bool {
    matches!(phase_of(pod), "Succeeded" | "Failed")
}

/// Neither terminal nor being deleted (kube's IsPodActive).
pub(crate) fn is_active(pod: &Value) -> bool {
    !is_terminal(pod) && !store::is_deleting(pod)
}

/// The pod's condition of `ty`.
pub(crate) fn condition<'a>(obj: &'a Value, ty: &str) -> Option<&'a Value> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == ty)
}

/// Ready condition True.
pub(crate) fn is_ready(pod: &Value) -> bool {
    condition(pod, "Ready").is_some_and(|c| c["status"] == "True")
}

/// When the pod is (or was) available: ready since `minReadySeconds` (None: not ready).
pub(crate) fn available_at(pod: &Value, min_ready_seconds: i64) -> Option<SystemTime> {
    let c = condition(pod, "Ready").filter(|c| c["status"] == "True")?;
    let since = time_at(&c["lastTransitionTime"]).unwrap_or(SystemTime::UNIX_EPOCH);
    Some(plus_secs(since, min_ready_seconds))
}

/// The pod-template-hash of a template (kube's ComputeHash: FNV-1a of the template and the
/// collision count, its decimal digits spelt in the alphabet of SafeEncodeString).
pub(crate) fn template_hash(template: &Value, collision_count: Option<i64>) -> String {
    let mut h: u32 = 0x811c_9dc5;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u32::from(*b);
            h = h.wrapping_mul(0x0100_0193);
        }
    };
    feed(template.to_string().as_bytes());
    if let Some(c) = collision_count {
        feed(c.to_string().as_bytes());
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    h.to_string()
        .bytes()
        .map(|b| ALPHABET[usize::from(b) % ALPHABET.len()] as char)
        .collect()
}

/// The template without its `pod-template-hash` label (kube's EqualIgnoreHash compares so).
pub(crate) fn without_hash(template: &Value) -> Value {
    let mut t = template.clone();
    if let Some(l) = t["metadata"]["labels"].as_object_mut() {
        l.remove("pod-template-hash");
    }
    t
}

// ---------------------------------------------------------------------------------------------
// Writes, through the registry store as any client's.

/// The resource at its storage version.
pub(crate) fn info(state: &Backend, group: &str, resource: &str) -> ApiResult<Arc<ResourceInfo>> {
    state
        .registry
        .snapshot()
        .find_storage(group, resource)
        .ok_or_else(|| ApiError::internal(format!("the resource {resource}.{group} is not served")))
}

/// A component writing as itself (its user agent names its field manager).
#[derive(Clone, Copy)]
pub(crate) struct Writer {
    /// The user agent: kube-controller-manager, kube-scheduler or kubelet.
    pub agent: &'static str,
}

/// kube-controller-manager's controllers.
pub(crate) const CONTROLLER_MANAGER: Writer = Writer {
    agent: "kube-controller-manager",
};

impl Writer {
    /// A scope for `group`/`resource` in `ns`.
    pub fn scope(
        self,
        state: &Arc<Backend>,
        group: &str,
        resource: &str,
        ns: &str,
        subresource: &str,
    ) -> ApiResult<Scope> {
        let info = info(state, group, resource)?;
        Ok(Scope::system(state, info, ns, subresource).with_user_agent(self.agent))
    }

    /// Create an object; Ok(None) when it exists already or the namespace is terminating.
    pub async fn create(
        self,
        state: &Arc<Backend>,
        group: &str,
        resource: &str,
        ns: &str,
        obj: Value,
    ) -> ApiResult<Option<Value>> {
        let scope = self.scope(state, group, resource, ns, "")?;
        match store::create(&scope, obj, &CreateOptions::default()).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if matches!(e.code, StatusCode::CONFLICT | StatusCode::FORBIDDEN) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Read-modify-write an object (or its `status`), compare-and-swap, retried on Conflict;
    /// nothing when `change` changes nothing or the object (with `uid`) is gone.
    #[allow(clippy::too_many_arguments)]
    pub async fn update<F>(
        self,
        state: &Arc<Backend>,
        group: &str,
        resource: &str,
        ns: &str,
        name: &str,
        subresource: &str,
        uid: Option<&str>,
        change: F,
    ) -> ApiResult<bool>
    where
        F: FnMut(&mut Value) -> bool + Send,
    {
        let scope = self.scope(state, group, resource, ns, subresource)?;
        store::guaranteed_update(&scope, name, uid, change).await
    }

    /// Adopt an object (kube's ControllerRefManager): `owner_ref` added unless it has a
    /// controller already or is being deleted. Whether it was written.
    #[allow(clippy::too_many_arguments)]
    pub async fn adopt(
        self,
        state: &Arc<Backend>,
        group: &str,
        resource: &str,
        ns: &str,
        name: &str,
        uid: &str,
        owner_ref: &Value,
    ) -> ApiResult<bool> {
        self.update(state, group, resource, ns, name, "", Some(uid), |obj| {
            if controller_of(obj).is_some() || store::is_deleting(obj) {
                return false;
            }
            let mut refs = obj["metadata"]["ownerReferences"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            refs.retain(|r| r["uid"] != owner_ref["uid"]);
            refs.push(owner_ref.clone());
            obj["metadata"]["ownerReferences"] = Value::Array(refs);
            true
        })
        .await
    }

    /// Release an object: every reference to `owner_uid` dropped. Whether it was written.
    #[allow(clippy::too_many_arguments)]
    pub async fn release(
        self,
        state: &Arc<Backend>,
        group: &str,
        resource: &str,
        ns: &str,
        name: &str,
        uid: &str,
        owner_uid: &str,
    ) -> ApiResult<bool> {
        self.update(state, group, resource, ns, name, "", Some(uid), |obj| {
            let Some(refs) = obj["metadata"]["ownerReferences"].as_array_mut() else {
                return false;
            };
            let before = refs.len();
            refs.retain(|r| r["uid"] != owner_uid);
            refs.len() != before
        })
        .await
    }

    /// Delete an object (with its uid as precondition); gone already is fine.
    #[allow(clippy::too_many_arguments)]
    pub async fn delete(
        self,
        state: &Arc<Backend>,
        group: &str,
        resource: &str,
        ns: &str,
        name: &str,
        uid: Option<&str>,
        propagation: Option<Propagation>,
        grace_period_seconds: Option<i64>,
    ) -> ApiResult<()> {
        let scope = self.scope(state, group, resource, ns, "")?;
        let opts = DeleteOptions {
            preconditions: Preconditions {
                uid: uid.map(str::to_string),
                ..Default::default()
            },
            propagation,
            grace_period_seconds,
            ..Default::default()
        };
        match store::delete(&scope, name, &opts).await {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.code, StatusCode::NOT_FOUND | StatusCode::CONFLICT) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Claiming (kube's ControllerRefManager).

/// Which of a namespace's objects an owner adopts (orphans it selects and `may_adopt` allows)
/// and releases (its own that it no longer selects): (name, uid) each.
pub(crate) struct Claims {
    pub adopt: Vec<(String, String)>,
    pub release: Vec<(String, String)>,
}

/// Sort `objects` (those of one namespace) into what `owner` controls, adopts or releases
/// (kube's ControllerRefManager). An owner being deleted adopts nothing.
pub(crate) fn claim<'a>(
    owner: &Value,
    selector: &LabelSelector,
    objects: impl Iterator<Item = &'a Arc<Value>>,
    may_adopt: impl Fn(&Value) -> bool,
) -> (Vec<Arc<Value>>, Claims) {
    let uid = uid_of(owner);
    let deleting = store::is_deleting(owner);
    let mut owned = Vec::new();
    let mut claims = Claims {
        adopt: Vec::new(),
        release: Vec::new(),
    };
    for obj in objects {
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let id = uid_of(obj).to_string();
        match controller_uid(obj) {
            Some(c) if c == uid => {
                if selects(selector, obj) || deleting {
                    owned.push(obj.clone());
                } else if !store::is_deleting(obj) {
                    claims.release.push((name, id));
                }
            }
            Some(_) => {}
            None => {
                if !deleting
                    && !store::is_deleting(obj)
                    && selects(selector, obj)
                    && may_adopt(obj)
                    && !uid.is_empty()
                {
                    claims.adopt.push((name, id));
                }
            }
        }
    }
    (owned, claims)
}

/// Write `claims`: adopted objects get `owner_ref`, released ones lose every reference to the
/// owner's uid. Returns whether anything was written.
pub(crate) async fn write_claims(
    state: &Arc<Backend>,
    group: &str,
    resource: &str,
    ns: &str,
    owner_ref: &Value,
    claims: &Claims,
) -> ApiResult<bool> {
    let owner_uid = owner_ref["uid"].as_str().unwrap_or_default();
    let mut wrote = false;
    for (name, uid) in &claims.adopt {
        wrote |= CONTROLLER_MANAGER
            .adopt(state, group, resource, ns, name, uid, owner_ref)
            .await?;
    }
    for (name, uid) in &claims.release {
        wrote |= CONTROLLER_MANAGER
            .release(state, group, resource, ns, name, uid, owner_uid)
            .await?;
    }
    Ok(wrote)
}

/// Set a condition in `obj.status.conditions` (kube's condition helpers: the transition time
/// moves only with the status); `lastUpdateTime` too when `update_time`.
pub(crate) fn put_condition(
    obj: &mut Value,
    ty: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: &str,
) {
    if !obj["status"].is_object() {
        obj["status"] = json!({});
    }
    let mut conds: Vec<Value> = obj["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    crate::objects::set_condition(&mut conds, ty, status, reason, message, now);
    obj["status"]["conditions"] = Value::Array(conds);
}

/// Remove a condition.
pub(crate) fn drop_condition(obj: &mut Value, ty: &str) {
    if let Some(c) = obj["status"]["conditions"].as_array_mut() {
        c.retain(|c| c["type"] != ty);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn times_past_what_the_clock_holds_are_far_off_not_now() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let century = Duration::from_secs(100 * 365 * 86_400);
        assert!(plus_secs(now, i64::MAX) > now + century);
        assert!(later(now, Duration::MAX) > now + century);
        assert_eq!(plus_secs(now, 60), now + Duration::from_secs(60));
        assert_eq!(plus_secs(now, -60), now - Duration::from_secs(60));
    }

    #[test]
    fn template_hashes_are_stable_safe_and_move_with_the_collision_count() {
        let t = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
        let a = template_hash(&t, None);
        assert_eq!(a, template_hash(&t, None));
        assert!(!a.is_empty() && a.len() <= 10);
        assert!(a.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
        assert_ne!(a, template_hash(&t, Some(1)));
        let mut u = t.clone();
        u["spec"]["containers"][0]["image"] = json!("httpd");
        assert_ne!(a, template_hash(&u, None));
    }

    #[test]
    fn selectors_read_label_selectors_and_replication_controller_maps() {
        let rs = json!({"spec": {"selector": {"matchLabels": {"app": "web"}}}});
        let rc = json!({"spec": {"selector": {"app": "web"}}});
        let pod = json!({"metadata": {"labels": {"app": "web", "x": "y"}}});
        let other = json!({"metadata": {"labels": {"app": "db"}}});
        for owner in [&rs, &rc] {
            let s = selector_of(owner);
            assert!(selects(&s, &pod));
            assert!(!selects(&s, &other));
        }
        assert!(!selects(&selector_of(&json!({"spec": {}})), &pod));
    }

    #[test]
    fn timers_keep_the_earliest_moment_per_key() {
        let mut t = Timers::default();
        let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        t.at("a", base + Duration::from_secs(10));
        t.at("a", base + Duration::from_secs(5));
        t.at("a", base + Duration::from_secs(20));
        t.at("b", base + Duration::from_secs(7));
        assert_eq!(t.next(), Some(base + Duration::from_secs(5)));
        let mut q = Queue::default();
        t.take_due(base + Duration::from_secs(6), &mut q);
        assert_eq!(q.pop().as_deref(), Some("a"));
        assert_eq!(t.next(), Some(base + Duration::from_secs(7)));
    }
}
