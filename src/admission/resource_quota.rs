//! `ResourceQuota`: object-count quotas (`count/<resource>[.<group>]` and the legacy names
//! `pods`, `services`, `configmaps`, `secrets`, `persistentvolumeclaims`,
//! `replicationcontrollers`, `resourcequotas`) and pod compute quotas (`requests.cpu`,
//! `requests.memory`, `limits.cpu`, `limits.memory`, `cpu`, `memory`).
//!
//! A create that would take usage over a quota's `spec.hard` is refused with kube's
//! `exceeded quota: …` Forbidden. Usage is what the store holds or what the quota was charged
//! with, whichever is more; a request that fits is charged to the quota's `status.used` through
//! the quota's resourceVersion before it goes on, so two concurrent creates cannot both take
//! the last free slot (kube's quota admission). [`sync`] recounts `status` from the store after
//! every write in a namespace with quotas (kube-controller-manager's quota controller does this
//! in a cluster). Quotas with `scopes` or a `scopeSelector` are not enforced.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use serde_json::{json, Value};

use super::quantity::{self, Quantity};
use super::{AdmissionPlugin, Attributes, Operation};
use crate::registry::Backend;
use crate::status::{ApiError, ApiResult, GroupResource};
use tokio::sync::oneshot;

/// The plugin; its charger batches the charges of concurrent requests per namespace.
#[derive(Default)]
pub(super) struct ResourceQuota {
    charger: Arc<Charger>,
}

/// The quota resource names that count one object of `group`/`resource`.
fn count_names(group: &str, resource: &str) -> Vec<String> {
    let mut names = Vec::with_capacity(2);
    if group.is_empty() {
        names.push(format!("count/{resource}"));
        if matches!(
            resource,
            "pods"
                | "services"
                | "configmaps"
                | "secrets"
                | "persistentvolumeclaims"
                | "replicationcontrollers"
                | "resourcequotas"
        ) {
            names.push(resource.to_string());
        }
    } else {
        names.push(format!("count/{resource}.{group}"));
    }
    names
}

/// The `group`/`resource` a quota resource name counts (None for compute names).
fn counted(name: &str) -> Option<(String, String)> {
    if let Some(rest) = name.strip_prefix("count/") {
        return Some(match rest.split_once('.') {
            Some((r, g)) => (g.to_string(), r.to_string()),
            None => (String::new(), rest.to_string()),
        });
    }
    matches!(
        name,
        "pods"
            | "services"
            | "configmaps"
            | "secrets"
            | "persistentvolumeclaims"
            | "replicationcontrollers"
            | "resourcequotas"
    )
    .then(|| (String::new(), name.to_string()))
}

const COMPUTE: &[(&str, &str, &str)] = &[
    ("requests.cpu", "requests", "cpu"),
    ("cpu", "requests", "cpu"),
    ("requests.memory", "requests", "memory"),
    ("memory", "requests", "memory"),
    ("limits.cpu", "limits", "cpu"),
    ("limits.memory", "limits", "memory"),
];

/// A pod's compute usage for a quota name (sum over containers; init containers by max).
fn pod_usage(pod: &Value, name: &str) -> Option<Quantity> {
    let (_, field, res) = COMPUTE.iter().find(|(n, _, _)| *n == name)?;
    let quantities = |list: &str| {
        pod["spec"][list]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["resources"][*field][*res].as_str())
            .filter_map(quantity::parse)
            .collect::<Vec<Quantity>>()
    };
    let mut sum = Quantity::zero();
    for q in quantities("containers") {
        sum = sum.checked_add(&q)?;
    }
    let init_max = quantities("initContainers").into_iter().max();
    Some(init_max.map_or(sum, |m| sum.max(m)))
}

fn pod_terminal(pod: &Value) -> bool {
    matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    )
}

fn unscoped(q: &Value) -> bool {
    q["spec"]["scopes"].as_array().is_none_or(|s| s.is_empty())
        && q["spec"]["scopeSelector"].is_null()
}

/// A quantity as kube prints usage (Go's canonical form: `3`, `600m`, `1536Mi`).
fn fmt_quantity(_name: &str, v: Quantity) -> String {
    v.to_string()
}

/// `a + b`, saturating at `a` on overflow (a sum too large to represent cannot be charged).
fn plus(a: Quantity, b: Quantity) -> Quantity {
    a.checked_add(&b).unwrap_or(a)
}

/// Usage of every name in `hard`, counted from the store.
async fn usage(
    state: &Backend,
    namespace: &str,
    hard: &serde_json::Map<String, Value>,
) -> ApiResult<BTreeMap<String, Quantity>> {
    let mut out = BTreeMap::new();
    let mut pods: Option<Vec<Value>> = None;
    for name in hard.keys() {
        if let Some((group, resource)) = counted(name) {
            let Some(info) = state.registry.snapshot().find_storage(&group, &resource) else {
                continue;
            };
            let prefix = info.collection_prefix(namespace);
            let n = if group.is_empty() && resource == "pods" {
                let objs = super::list_prefix(state, &prefix).await?;
                objs.iter().filter(|p| !pod_terminal(p)).count()
            } else {
                count(state, &prefix).await?
            };
            out.insert(
                name.clone(),
                Quantity::from_int(i64::try_from(n).unwrap_or(i64::MAX)),
            );
        } else if COMPUTE.iter().any(|(n, _, _)| n == name) {
            if pods.is_none() {
                pods = Some(super::list_resource(state, "", "pods", namespace).await?);
            }
            let total = pods
                .iter()
                .flatten()
                .filter(|p| !pod_terminal(p))
                .filter_map(|p| pod_usage(p, name))
                .fold(Quantity::zero(), plus);
            out.insert(name.clone(), total);
        }
    }
    Ok(out)
}

/// How many objects are under `prefix`, without reading them: a one-item page and the store's
/// count of the rest.
async fn count(state: &Backend, prefix: &str) -> ApiResult<usize> {
    let page = state
        .store
        .list(
            prefix,
            kubox_storage::ListOptions {
                limit: Some(1),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| crate::status::from_store(e, &Default::default(), ""))?;
    Ok(page.items.len() + page.remaining.unwrap_or(0))
}

#[async_trait]
impl AdmissionPlugin for ResourceQuota {
    fn name(&self) -> &'static str {
        "ResourceQuota"
    }

    fn handles(&self, op: Operation) -> bool {
        op == Operation::Create
    }

    async fn validate(&self, state: &Arc<Backend>, a: &Attributes) -> ApiResult<()> {
        if !a.info.namespaced || a.namespace.is_empty() || !a.subresource.is_empty() {
            return Ok(());
        }
        let prefix = quota_prefix(&a.namespace);
        // No quota in the namespace (its informer has seen every quota write that returned).
        if let Some(inf) = state.informers.for_resource("", "resourcequotas") {
            if inf.in_sync() && !inf.any(&prefix) {
                return Ok(());
            }
        }
        // Concurrent requests in a namespace are charged together: one quota write for all
        // of them, as kube's quota evaluator batches them.
        let (reply, outcome) = oneshot::channel();
        let pending = Pending {
            gr: a.group_resource(),
            name: a.name.clone(),
            requested: requested(a),
            dry_run: a.dry_run,
            reply,
        };
        self.charger.enqueue(state, &a.namespace, pending);
        match outcome.await {
            Ok(Outcome::Charged) => return Ok(()),
            Ok(Outcome::Refused(e)) => return Err(e),
            // A quota whose status does not yet cover the names asked for (or the worker is
            // gone): count from the store, one request at a time.
            Ok(Outcome::Unknown) | Err(_) => {}
        }
        // A quota charged by a concurrent request changes under us: check again against it.
        for _ in 0..CHARGE_ATTEMPTS {
            if admit_once(state, a).await? {
                return Ok(());
            }
        }
        Err(too_busy(&a.group_resource(), &a.name))
    }
}

fn too_busy(gr: &GroupResource, name: &str) -> ApiError {
    ApiError::conflict(
        gr,
        name,
        "the resource quotas of the namespace changed too often while this request was charged to them; please try again",
    )
}

fn quota_prefix(namespace: &str) -> String {
    // Asked on every namespaced write: the resource's prefix is worked out once.
    static RESOURCE: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| crate::registry::storage_prefix("", "resourcequotas"));
    [RESOURCE.as_str(), namespace, "/"].concat()
}

/// What a request asks of quotas: one of each count name, and a pod's compute.
fn requested(a: &Attributes) -> BTreeMap<String, Quantity> {
    let mut requested: BTreeMap<String, Quantity> = count_names(a.group(), a.resource())
        .into_iter()
        .map(|n| (n, Quantity::from_int(1)))
        .collect();
    if a.is_core("pods") {
        if let Some(pod) = &a.object {
            for (n, _, _) in COMPUTE {
                if let Some(u) = pod_usage(pod, n).filter(|u| !u.is_zero()) {
                    requested.insert(n.to_string(), u);
                }
            }
        }
    }
    requested
}

/// One request waiting to be charged.
struct Pending {
    gr: GroupResource,
    name: String,
    requested: BTreeMap<String, Quantity>,
    dry_run: bool,
    reply: oneshot::Sender<Outcome>,
}

/// How a request's charge went.
enum Outcome {
    /// It fits every quota and is charged to them.
    Charged,
    /// It does not fit (or the quotas changed too often).
    Refused(ApiError),
    /// A quota's status does not cover what it asks: count instead.
    Unknown,
}

/// Requests waiting per namespace; a namespace present in the map has a worker charging them.
#[derive(Default)]
struct Charger {
    queues: Mutex<HashMap<String, Vec<Pending>>>,
}

impl Charger {
    fn enqueue(self: &Arc<Self>, state: &Arc<Backend>, namespace: &str, p: Pending) {
        let mut queues = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(waiting) = queues.get_mut(namespace) {
            waiting.push(p);
            return;
        }
        queues.insert(namespace.to_string(), vec![p]);
        drop(queues);
        // The worker is a task of its own, so a request that goes away cannot strand the
        // others waiting behind it.
        tokio::spawn(self.clone().work(state.clone(), namespace.to_string()));
    }

    /// Charge batches until none is waiting.
    async fn work(self: Arc<Self>, state: Arc<Backend>, namespace: String) {
        loop {
            let batch = {
                let mut queues = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
                match queues.get_mut(&namespace) {
                    Some(waiting) if !waiting.is_empty() => std::mem::take(waiting),
                    _ => {
                        queues.remove(&namespace);
                        return;
                    }
                }
            };
            charge_batch(&state, &namespace, batch).await;
        }
    }
}

/// Charge a batch against the namespace's quotas with one write per quota; retried as a whole
/// when a quota changes meanwhile.
async fn charge_batch(state: &Arc<Backend>, namespace: &str, batch: Vec<Pending>) {
    let prefix = quota_prefix(namespace);
    for _ in 0..CHARGE_ATTEMPTS {
        let page = match state.store.list(&prefix, Default::default()).await {
            Ok(p) => p,
            Err(e) => {
                let e = crate::status::from_store(e, &Default::default(), "");
                for p in batch {
                    let _ = p.reply.send(Outcome::Refused(e.clone()));
                }
                return;
            }
        };
        // (as read, as charged, whether charged)
        let mut quotas: Vec<(&kubox_storage::KeyValue, Value, Value, bool)> = Vec::new();
        for kv in &page.items {
            match crate::objects::from_stored(kv) {
                Ok(q) if unscoped(&q) && q["spec"]["hard"].is_object() => {
                    quotas.push((kv, q.clone(), q, false))
                }
                _ => {}
            }
        }
        let mut outcomes = Vec::with_capacity(batch.len());
        for p in &batch {
            outcomes.push(charge_one(&mut quotas, p));
        }
        let mut conflict = false;
        for (kv, old, q, _) in quotas.iter().filter(|(_, _, _, c)| *c) {
            match write_quota(state, namespace, old, kv.mod_revision, q).await {
                Ok(true) => {}
                Ok(false) => {
                    conflict = true;
                    break;
                }
                Err(e) => {
                    for p in batch {
                        let _ = p.reply.send(Outcome::Refused(e.clone()));
                    }
                    return;
                }
            }
        }
        if conflict {
            continue;
        }
        for (p, o) in batch.into_iter().zip(outcomes) {
            let _ = p.reply.send(o);
        }
        return;
    }
    for p in batch {
        let e = too_busy(&p.gr, &p.name);
        let _ = p.reply.send(Outcome::Refused(e));
    }
}

/// Check one request against the quotas (as charged so far in this batch) and charge it.
fn charge_one(
    quotas: &mut [(&kubox_storage::KeyValue, Value, Value, bool)],
    p: &Pending,
) -> Outcome {
    let mut charges: Vec<(usize, Vec<(String, Quantity)>)> = Vec::new();
    for (i, (_, _, q, _)) in quotas.iter().enumerate() {
        let tracked = tracked(q, &p.requested);
        if tracked.is_empty() {
            continue;
        }
        if !status_covers(q, &tracked) {
            return Outcome::Unknown;
        }
        match fit(q, &tracked, &p.requested, &BTreeMap::new()) {
            Ok(after) => charges.push((i, after)),
            Err(over) => return Outcome::Refused(exceeded(&p.gr, &p.name, q, &over)),
        }
    }
    if !p.dry_run {
        for (i, after) in charges {
            let (_, _, q, changed) = &mut quotas[i];
            for (k, v) in after {
                q["status"]["used"][k.as_str()] = json!(fmt_quantity(&k, v));
            }
            *changed = true;
        }
    }
    Outcome::Charged
}

/// The names of `q`'s limits the request asks for, with their limits.
fn tracked<'q>(
    q: &'q Value,
    requested: &BTreeMap<String, Quantity>,
) -> Vec<(&'q String, &'q Value)> {
    q["spec"]["hard"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| requested.contains_key(k.as_str()))
        .collect()
}

/// Does `q`'s status cover these names (its controller has counted them), so that admission
/// may trust `status.used` as kube's quota admission does?
fn status_covers(q: &Value, tracked: &[(&String, &Value)]) -> bool {
    tracked.iter().all(|(k, v)| {
        q["status"]["hard"].get(k.as_str()) == Some(*v)
            && q["status"]["used"].get(k.as_str()).is_some()
    })
}

/// The usage of each tracked name once `requested` is charged to `q` — in use is what `q`'s
/// status says or what `counted` found, whichever is more — or the names it would take over
/// their limits.
fn fit(
    q: &Value,
    tracked: &[(&String, &Value)],
    requested: &BTreeMap<String, Quantity>,
    counted: &BTreeMap<String, Quantity>,
) -> Result<Vec<(String, Quantity)>, Vec<Over>> {
    let mut over: Vec<Over> = Vec::new();
    let mut after = Vec::new();
    for (k, limit) in tracked {
        let limit_s = limit.as_str().unwrap_or_default();
        let limit_v = quantity::parse(limit_s).unwrap_or_default();
        let u = counted
            .get(k.as_str())
            .copied()
            .unwrap_or_default()
            .max(charged(q, k));
        let r = requested.get(k.as_str()).copied().unwrap_or_default();
        if plus(u, r) > limit_v {
            over.push(((*k).clone(), r, u, limit_s.to_string()));
        }
        after.push(((*k).clone(), plus(u, r)));
    }
    if over.is_empty() {
        Ok(after)
    } else {
        Err(over)
    }
}

/// kube's `exceeded quota` Forbidden.
fn exceeded(gr: &GroupResource, name: &str, q: &Value, over: &[Over]) -> ApiError {
    let list = |f: &dyn Fn(&Over) -> String| over.iter().map(f).collect::<Vec<_>>().join(",");
    let msg = format!(
        "exceeded quota: {}, requested: {}, used: {}, limited: {}",
        crate::objects::name_of(q),
        list(&|(k, r, _, _)| format!("{k}={}", fmt_quantity(k, *r))),
        list(&|(k, _, u, _)| format!("{k}={}", fmt_quantity(k, *u))),
        list(&|(k, _, _, l)| format!("{k}={l}")),
    );
    ApiError::forbidden(gr, name, &msg)
}

/// A quota name the request would take over its limit: (name, requested, used, limit).
type Over = (String, Quantity, Quantity, String);

/// How often a request tries to charge quotas that change under it.
const CHARGE_ATTEMPTS: usize = 16;

/// One pass: Ok(true) when the request fits every quota and was charged to them, Ok(false)
/// when a quota changed meanwhile, Err when it does not fit.
async fn admit_once(state: &Arc<Backend>, a: &Attributes) -> ApiResult<bool> {
    let prefix = quota_prefix(&a.namespace);
    let page = state
        .store
        .list(&prefix, Default::default())
        .await
        .map_err(|e| crate::status::from_store(e, &Default::default(), ""))?;
    if page.items.is_empty() {
        return Ok(true);
    }
    let requested = requested(a);
    for kv in &page.items {
        let old = crate::objects::from_stored(kv)?;
        if !unscoped(&old) {
            continue;
        }
        let tracked = tracked(&old, &requested);
        if tracked.is_empty() {
            continue;
        }
        // What is in use: what the quota's status says (charged by admission, recounted after
        // deletes) once its status covers these names, as kube's quota admission trusts it;
        // before that, counted from the store (or the charge, whichever is more).
        let counted = if status_covers(&old, &tracked) {
            BTreeMap::new()
        } else {
            let names: serde_json::Map<String, Value> = tracked
                .iter()
                .map(|(k, v)| ((*k).clone(), (*v).clone()))
                .collect();
            usage(state, &a.namespace, &names).await?
        };
        let used_after = match fit(&old, &tracked, &requested, &counted) {
            Ok(after) => after,
            Err(over) => return Err(exceeded(&a.group_resource(), &a.name, &old, &over)),
        };
        if a.dry_run {
            continue;
        }
        // Charge the quota through its resourceVersion, as kube's quota admission does: of
        // two requests racing for the last slot, one wins, the other checks again.
        let mut q = old.clone();
        q["status"]["hard"] = q["spec"]["hard"].clone();
        if !q["status"]["used"].is_object() {
            q["status"]["used"] = json!({});
        }
        for (k, v) in used_after {
            q["status"]["used"][k.as_str()] = json!(fmt_quantity(&k, v));
        }
        if !write_quota(state, &a.namespace, &old, kv.mod_revision, &q).await? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// What `quota`'s status says is used of `name`.
fn charged(quota: &Value, name: &str) -> Quantity {
    quota["status"]["used"][name]
        .as_str()
        .and_then(quantity::parse)
        .unwrap_or_default()
}

/// Write `quota`'s status over `old`, read at `rev`, through the registry store with
/// admission (as kube's quota admission and controller update `resourcequotas/status` through
/// the API): Ok(false) when it changed meanwhile (a quota deleted meanwhile needs nothing more).
/// (A boxed future: a quota write runs the store's after-write step, which may recount quotas.)
fn write_quota<'a>(
    state: &'a Arc<Backend>,
    namespace: &'a str,
    old: &'a Value,
    rev: i64,
    quota: &'a Value,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ApiResult<bool>> + Send + 'a>> {
    Box::pin(async move {
        let Some(info) = state.registry.snapshot().get("", "v1", "resourcequotas") else {
            return Ok(true);
        };
        let scope = crate::registry::store::Scope::system(state, info, namespace, "status");
        let opts = crate::registry::store::UpdateOptions::default();
        match crate::registry::store::update(&scope, quota.clone(), old.clone(), rev, &opts).await {
            Ok(_) => Ok(true),
            Err(e) if e.code == http::StatusCode::NOT_FOUND => Ok(true),
            Err(e) if e.code == http::StatusCode::CONFLICT && e.reason == "Conflict" => Ok(false),
            Err(e) => Err(e),
        }
    })
}

/// Does a write to `group`/`resource` change what some quota in the namespace reports?
fn affects(group: &str, resource: &str, quota: &Value) -> bool {
    if group.is_empty() && resource == "resourcequotas" {
        return true;
    }
    let names = count_names(group, resource);
    quota["spec"]["hard"].as_object().is_some_and(|h| {
        h.keys().any(|k| {
            names.contains(k)
                || (group.is_empty()
                    && resource == "pods"
                    && COMPUTE.iter().any(|(n, _, _)| n == k))
        })
    })
}

/// Recompute `status` of the quotas in `namespace` that a write to `group`/`resource` affects.
/// Failures are logged: the write itself has already happened.
pub(crate) async fn sync(
    state: &Arc<Backend>,
    group: &str,
    resource: &str,
    namespace: &str,
    released: bool,
) {
    if namespace.is_empty() {
        return;
    }
    for _ in 0..3 {
        match sync_once(state, group, resource, namespace, released).await {
            Ok(true) => return,
            Ok(false) => continue,
            Err(e) => {
                tracing::warn!(namespace, error = %e.message, "resource quota status update failed");
                return;
            }
        }
    }
}

/// One pass; Ok(false) when a quota changed under us.
async fn sync_once(
    state: &Arc<Backend>,
    group: &str,
    resource: &str,
    namespace: &str,
    released: bool,
) -> ApiResult<bool> {
    let page = state
        .store
        .list(&quota_prefix(namespace), Default::default())
        .await
        .map_err(|e| crate::status::from_store(e, &Default::default(), ""))?;
    for kv in &page.items {
        let old = crate::objects::from_stored(kv)?;
        if !affects(group, resource, &old) {
            continue;
        }
        let hard = old["spec"]["hard"].as_object().cloned().unwrap_or_default();
        let used = usage(state, namespace, &hard).await?;
        let used: serde_json::Map<String, Value> = hard
            .keys()
            .map(|k| {
                let mut v = used.get(k).copied().unwrap_or_default();
                if !released {
                    // Requests admitted but not yet stored are in the charge, not the count.
                    v = v.max(charged(&old, k));
                }
                (k.clone(), json!(fmt_quantity(k, v)))
            })
            .collect();
        let status = json!({"hard": hard, "used": used});
        if old["status"] == status {
            continue;
        }
        let mut q = old.clone();
        q["status"] = status;
        if !write_quota(state, namespace, &old, kv.mod_revision, &q).await? {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_names_cover_legacy_and_count_syntax() {
        assert_eq!(count_names("", "pods"), vec!["count/pods", "pods"]);
        assert_eq!(
            count_names("apps", "deployments"),
            vec!["count/deployments.apps"]
        );
        assert_eq!(
            counted("count/deployments.apps"),
            Some(("apps".into(), "deployments".into()))
        );
        assert_eq!(
            counted("configmaps"),
            Some((String::new(), "configmaps".into()))
        );
        assert_eq!(counted("requests.cpu"), None);
    }

    #[test]
    fn pod_usage_sums_containers_and_takes_the_largest_init_container() {
        let pod = json!({"spec": {
            "containers": [
                {"resources": {"requests": {"cpu": "100m"}}},
                {"resources": {"requests": {"cpu": "200m"}}}
            ],
            "initContainers": [{"resources": {"requests": {"cpu": "1"}}}]
        }});
        assert_eq!(
            pod_usage(&pod, "requests.cpu").map(|q| q.to_string()),
            Some("1".to_string())
        );
        let small = json!({"spec": {"containers": [
            {"resources": {"requests": {"cpu": "100m", "memory": "512Mi"}}},
            {"resources": {"requests": {"cpu": "0.2", "memory": "1Gi"}}}
        ]}});
        // Exact sums, printed as kube prints them (floats made 0.30000000000000004).
        assert_eq!(
            pod_usage(&small, "requests.cpu").map(|q| q.to_string()),
            Some("300m".to_string())
        );
        assert_eq!(
            pod_usage(&small, "requests.memory").map(|q| q.to_string()),
            Some("1536Mi".to_string())
        );
    }
}
