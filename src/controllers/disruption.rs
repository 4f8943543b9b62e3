//! PodDisruptionBudget status (kube-controller-manager's `disruption` controller).
//!
//! For every policy/v1 PodDisruptionBudget, from the pods its selector matches in its namespace
//! (`{}` matches every pod, no selector none):
//! - `expectedPods` and `desiredHealthy`: with `maxUnavailable` (a number or a percentage, rounded
//!   up) the expected count is the sum of the scales of the pods' controllers and desired is
//!   expected minus maxUnavailable (not below 0); with a numeric `minAvailable` the expected
//!   count is the number of matching pods and desired is minAvailable; with a percentage, the
//!   controllers' scale again and desired is that share of it, rounded up. A controller's scale is
//!   a ReplicationController's, a Deployment's (through its ReplicaSet), a ReplicaSet's or a
//!   StatefulSet's `spec.replicas`, or the `scale` subresource of any other kind that has one;
//!   pods without a controller are left out of the scale.
//! - `currentHealthy`: ready pods that are neither being deleted nor listed in `disruptedPods`
//!   for less than two minutes (entries older than that, or of pods gone or being deleted, are
//!   dropped; the budget is looked at again when the next one expires, by the server clock).
//! - `disruptionsAllowed`: currentHealthy − desiredHealthy, 0 when negative or when no pod is
//!   expected; `observedGeneration`; the `DisruptionAllowed` condition (True/`SufficientPods`
//!   or False/`InsufficientPods`).
//!
//! When the expected count cannot be worked out (a pod whose controller is gone, or of a kind
//! without a scale subresource such as a Job) the budget fails safe as kube's does:
//! `disruptionsAllowed: 0` and the condition False/`SyncFailed` with the error as message.
//!
//! Like kube's, the controller also resets a pod's `DisruptionTarget` condition to False when the
//! pod it was set on is still not being deleted two minutes after it was set (unless the kubelet
//! set it, or the pod has finished).
//!
//! Eviction (`pods/eviction` in `subresources.rs`) does not consult budgets yet: it deletes the
//! pod as a DELETE would; the budgets' status is what a client reads.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use kubox_apimachinery::labels::LabelSelector;
use serde_json::{json, Map, Value};

use super::workload::{
    condition, controller_of, generation_of, is_ready, is_terminal, parse_time, stamp, time_at,
    uid_of, Cache, Expectations, Timers, CONTROLLER_MANAGER,
};
use super::{read, resource_for_kind, Controller, Interest, Msg, Queue, Reconciler};
use crate::objects::labels_of;
use crate::registry::store::is_deleting;
use crate::registry::Backend;
use crate::status::ApiResult;

/// How long a pod listed in `disruptedPods` is expected to take to go (kube's DeletionTimeout).
pub const DELETION_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a `DisruptionTarget` condition may stay on a pod not being deleted.
pub const STALE_DISRUPTION_TIMEOUT: Duration = Duration::from_secs(120);

const CONDITION: &str = "DisruptionAllowed";

/// The disruption controller.
pub struct DisruptionController {
    pdbs: Cache,
    pods: Cache,
    replica_sets: Cache,
    deployments: Cache,
    stateful_sets: Cache,
    replication_controllers: Cache,
    expect: Expectations,
    timers: Timers,
}

impl Default for DisruptionController {
    fn default() -> Self {
        DisruptionController {
            pdbs: Cache::new("policy", "poddisruptionbudgets"),
            pods: Cache::new("", "pods"),
            replica_sets: Cache::new("apps", "replicasets"),
            deployments: Cache::new("apps", "deployments"),
            stateful_sets: Cache::new("apps", "statefulsets"),
            replication_controllers: Cache::new("", "replicationcontrollers"),
            expect: Expectations::default(),
            timers: Timers::default(),
        }
    }
}

/// A budget's selector (Go's LabelSelectorAsSelector: none selects nothing, `{}` everything).
fn pdb_selector(pdb: &Value) -> Result<LabelSelector, String> {
    LabelSelector::from_label_selector_json(&pdb["spec"]["selector"]).map_err(|e| e.to_string())
}

/// kube's GetScaledValueFromIntOrPercent with rounding up.
fn scaled(v: &Value, total: i64) -> Result<i64, String> {
    if let Some(n) = v.as_i64() {
        return Ok(n);
    }
    let Some(s) = v.as_str() else {
        return Err(format!("invalid value for IntOrString: invalid type: {v}"));
    };
    let Some(num) = s.strip_suffix('%') else {
        return Err(
            "invalid value for IntOrString: invalid type: string is not a percentage".into(),
        );
    };
    let pct: i64 = num
        .parse()
        .map_err(|e| format!("invalid value \"{s}\": {e}"))?;
    Ok(pct.saturating_mul(total).saturating_add(99).div_euclid(100))
}

/// The pod fields a budget depends on.
fn pdb_view(pod: &Value) -> Value {
    json!([
        pod["metadata"]["labels"],
        pod["metadata"]["deletionTimestamp"],
        controller_of(pod).map(|r| r["uid"].clone()),
        is_ready(pod),
    ])
}

/// A pod's stale `DisruptionTarget`: when it goes stale (None: none to clean up).
fn stale_disruption_at(pod: &Value) -> Option<SystemTime> {
    if is_deleting(pod) || is_terminal(pod) {
        return None;
    }
    let c = condition(pod, "DisruptionTarget")?;
    if c["status"] != "True" || c["reason"] == "TerminationByKubelet" {
        return None;
    }
    let since = time_at(&c["lastTransitionTime"]).unwrap_or(SystemTime::UNIX_EPOCH);
    since.checked_add(STALE_DISRUPTION_TIMEOUT)
}

/// What one sync of a budget found.
struct Computed {
    expected: i64,
    desired: i64,
    current: i64,
    disrupted: Map<String, Value>,
    recheck: Option<SystemTime>,
}

impl DisruptionController {
    /// The scale of a controller found in the caches (kube's finders for
    /// ReplicationControllers, Deployments, ReplicaSets and StatefulSets): Some((uid, scale)).
    fn cached_scale(&self, r: &Value, ns: &str) -> Option<(String, i64)> {
        let (kind, name, uid) = (r["kind"].as_str()?, r["name"].as_str()?, r["uid"].as_str()?);
        let group = r["apiVersion"]
            .as_str()
            .and_then(|v| v.rsplit_once('/'))
            .map_or("", |(g, _)| g);
        let replicas = |o: &Value| o["spec"]["replicas"].as_i64().unwrap_or(1);
        let found = |cache: &Cache| {
            cache
                .get(&cache.key(ns, name))
                .filter(|o| uid_of(o) == uid)
                .cloned()
        };
        match (group, kind) {
            ("", "ReplicationController") => {
                let rc = found(&self.replication_controllers)?;
                Some((uid.into(), replicas(&rc)))
            }
            ("apps" | "extensions", "ReplicaSet") => {
                let rs = found(&self.replica_sets)?;
                match controller_of(&rs) {
                    Some(d) if d["kind"] == "Deployment" => {
                        let (dname, duid) = (d["name"].as_str()?, d["uid"].as_str()?);
                        let dep = self
                            .deployments
                            .get(&self.deployments.key(ns, dname))
                            .filter(|o| uid_of(o) == duid)?;
                        Some((duid.into(), replicas(dep)))
                    }
                    _ => Some((uid.into(), replicas(&rs))),
                }
            }
            ("apps", "StatefulSet") => {
                let sts = found(&self.stateful_sets)?;
                Some((uid.into(), replicas(&sts)))
            }
            _ => None,
        }
    }

    /// kube's getScaleController: the scale subresource of any kind that has one.
    async fn generic_scale(
        &self,
        state: &Backend,
        r: &Value,
        ns: &str,
    ) -> Result<Option<(String, i64)>, String> {
        let api_version = r["apiVersion"].as_str().unwrap_or_default();
        let kind = r["kind"].as_str().unwrap_or_default();
        let snap = state.registry.snapshot();
        let Some(info) = resource_for_kind(&snap, api_version, kind) else {
            return Err(format!(
                "no matches for kind \"{kind}\" in version \"{api_version}\""
            ));
        };
        if info.subresource("scale").is_none() {
            return Err(format!(
                "{} does not implement the scale subresource",
                info.group_resource()
            ));
        }
        let name = r["name"].as_str().unwrap_or_default();
        let key = if info.namespaced {
            format!("{}{ns}/{name}", info.storage_prefix)
        } else {
            format!("{}{name}", info.storage_prefix)
        };
        let Some((obj, _)) = read(state, &key).await.map_err(|e| e.message)? else {
            return Ok(None);
        };
        if uid_of(&obj) != r["uid"].as_str().unwrap_or_default() {
            return Ok(None);
        }
        let path = info.strategy.scale_paths().spec_replicas;
        let replicas = crate::jsonpath::get_simple(&obj, &path)
            .and_then(Value::as_i64)
            .unwrap_or(0);
        Ok(Some((uid_of(&obj).to_string(), replicas)))
    }

    /// kube's getExpectedScale: the sum of the scales of the pods' controllers.
    async fn expected_scale(
        &self,
        state: &Backend,
        ns: &str,
        pods: &[Arc<Value>],
    ) -> Result<i64, String> {
        let mut scales: BTreeMap<String, i64> = BTreeMap::new();
        for pod in pods {
            let Some(r) = controller_of(pod) else {
                continue;
            };
            if r["uid"].as_str().is_some_and(|u| scales.contains_key(u)) {
                continue;
            }
            let found = match self.cached_scale(r, ns) {
                Some(s) => Some(s),
                None => self.generic_scale(state, r, ns).await?,
            };
            match found {
                Some((uid, scale)) => {
                    scales.insert(uid, scale);
                }
                None => {
                    return Err(format!(
                        "found no controllers for pod {:?}",
                        pod["metadata"]["name"].as_str().unwrap_or_default()
                    ))
                }
            }
        }
        Ok(scales.values().fold(0i64, |a, b| a.saturating_add(*b)))
    }

    async fn compute(
        &self,
        state: &Backend,
        pdb: &Value,
        now: SystemTime,
    ) -> Result<Computed, String> {
        let ns = pdb["metadata"]["namespace"].as_str().unwrap_or_default();
        let selector = pdb_selector(pdb)?;
        let pods: Vec<Arc<Value>> = self
            .pods
            .in_namespace(ns)
            .filter(|(_, p)| selector.matches(&labels_of(p)))
            .map(|(_, p)| p.clone())
            .collect();
        let spec = &pdb["spec"];
        let (mut expected, mut desired) = (0, 0);
        if !spec["maxUnavailable"].is_null() {
            expected = self.expected_scale(state, ns, &pods).await?;
            let max = scaled(&spec["maxUnavailable"], expected)?;
            desired = expected.saturating_sub(max).max(0);
        } else if let Some(n) = spec["minAvailable"].as_i64() {
            desired = n;
            expected = i64::try_from(pods.len()).unwrap_or(i64::MAX);
        } else if spec["minAvailable"].is_string() {
            expected = self.expected_scale(state, ns, &pods).await?;
            desired = scaled(&spec["minAvailable"], expected)?;
        }
        let listed = pdb["status"]["disruptedPods"].as_object();
        let mut disrupted = Map::new();
        let mut recheck: Option<SystemTime> = None;
        for pod in &pods {
            if is_deleting(pod) {
                continue;
            }
            let name = pod["metadata"]["name"].as_str().unwrap_or_default();
            let Some(at) = listed.and_then(|l| l.get(name)) else {
                continue;
            };
            let since = at
                .as_str()
                .and_then(parse_time)
                .unwrap_or(SystemTime::UNIX_EPOCH);
            let due = since.checked_add(DELETION_TIMEOUT).unwrap_or(since);
            if due >= now {
                recheck = Some(recheck.map_or(due, |r| r.min(due)));
                disrupted.insert(name.to_string(), at.clone());
            }
        }
        let current = pods
            .iter()
            .filter(|p| !is_deleting(p))
            .filter(|p| {
                !p["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| disrupted.contains_key(n))
            })
            .filter(|p| is_ready(p))
            .count();
        Ok(Computed {
            expected,
            desired,
            current: i64::try_from(current).unwrap_or(i64::MAX),
            disrupted,
            recheck,
        })
    }

    async fn sync_pdb(&mut self, state: &Arc<Backend>, key: &str) -> ApiResult<()> {
        let Some(pdb) = self.pdbs.get(key).cloned() else {
            return Ok(());
        };
        let ns = pdb["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = pdb["metadata"]["name"].as_str().unwrap_or_default();
        let uid = uid_of(&pdb);
        let now = state.clock.now();
        let stamp_now = stamp(now);
        let generation = generation_of(&pdb);
        let wrote = match self.compute(state, &pdb, now).await {
            Ok(c) => {
                let allowed = if c.expected <= 0 {
                    0
                } else {
                    c.current.saturating_sub(c.desired).max(0)
                };
                let (status, reason) = if allowed > 0 {
                    ("True", "SufficientPods")
                } else {
                    ("False", "InsufficientPods")
                };
                if let Some(at) = c.recheck {
                    self.timers.at(key, at);
                }
                CONTROLLER_MANAGER
                    .update(
                        state,
                        "policy",
                        "poddisruptionbudgets",
                        ns,
                        name,
                        "status",
                        Some(uid),
                        |obj| {
                            let mut new = Map::new();
                            new.insert("observedGeneration".into(), json!(generation));
                            if !c.disrupted.is_empty() {
                                new.insert(
                                    "disruptedPods".into(),
                                    Value::Object(c.disrupted.clone()),
                                );
                            }
                            new.insert("disruptionsAllowed".into(), json!(allowed));
                            new.insert("currentHealthy".into(), json!(c.current));
                            new.insert("desiredHealthy".into(), json!(c.desired));
                            new.insert("expectedPods".into(), json!(c.expected));
                            let mut conds = obj["status"]["conditions"]
                                .as_array()
                                .cloned()
                                .unwrap_or_default();
                            set_condition(&mut conds, status, reason, "", generation, &stamp_now);
                            new.insert("conditions".into(), Value::Array(conds));
                            let new = Value::Object(new);
                            if same_status(&obj["status"], &new) {
                                return false;
                            }
                            obj["status"] = new;
                            true
                        },
                    )
                    .await?
            }
            Err(message) => {
                tracing::debug!(pdb = %key, error = %message, "disruption budget sync failed");
                CONTROLLER_MANAGER
                    .update(
                        state,
                        "policy",
                        "poddisruptionbudgets",
                        ns,
                        name,
                        "status",
                        Some(uid),
                        |obj| {
                            let before = obj["status"].clone();
                            if !obj["status"].is_object() {
                                obj["status"] = json!({});
                            }
                            let observed =
                                obj["status"]["observedGeneration"].as_i64().unwrap_or(0);
                            obj["status"]["disruptionsAllowed"] = json!(0);
                            let mut conds = obj["status"]["conditions"]
                                .as_array()
                                .cloned()
                                .unwrap_or_default();
                            set_condition(
                                &mut conds,
                                "False",
                                "SyncFailed",
                                &message,
                                observed,
                                &stamp_now,
                            );
                            obj["status"]["conditions"] = Value::Array(conds);
                            obj["status"] != before
                        },
                    )
                    .await?
            }
        };
        if wrote {
            self.expect.wait_for_store(state, key).await;
        }
        Ok(())
    }

    async fn sync_pod(&mut self, state: &Arc<Backend>, key: &str) -> ApiResult<()> {
        let Some(pod) = self.pods.get(key).cloned() else {
            return Ok(());
        };
        let Some(at) = stale_disruption_at(&pod) else {
            return Ok(());
        };
        let now = state.clock.now();
        if at > now {
            self.timers.at(key, at);
            return Ok(());
        }
        let (ns, name) = self.pods.split(key);
        let stamp_now = stamp(now);
        CONTROLLER_MANAGER
            .update(state, "", "pods", ns, name, "status", Some(uid_of(&pod)), |obj| {
                let Some(conds) = obj["status"]["conditions"].as_array_mut() else {
                    return false;
                };
                let Some(c) = conds.iter_mut().find(|c| c["type"] == "DisruptionTarget") else {
                    return false;
                };
                if c["status"] != "True" {
                    return false;
                }
                *c = json!({"type": "DisruptionTarget", "status": "False", "lastProbeTime": null, "lastTransitionTime": stamp_now});
                true
            })
            .await?;
        Ok(())
    }

    /// Queue the budgets in `ns` selecting a pod with these labels.
    fn queue_budgets(&self, ns: &str, labels: &[BTreeMap<String, String>], queue: &mut Queue) {
        for (k, pdb) in self.pdbs.in_namespace(ns) {
            let Ok(sel) = pdb_selector(pdb) else {
                continue;
            };
            if labels.iter().any(|l| sel.matches(l)) {
                queue.add(k.clone());
            }
        }
    }
}

/// kube's SetStatusCondition for `DisruptionAllowed`: the transition time moves with the
/// status only.
fn set_condition(
    conds: &mut Vec<Value>,
    status: &str,
    reason: &str,
    message: &str,
    generation: i64,
    now: &str,
) {
    match conds.iter_mut().find(|c| c["type"] == CONDITION) {
        Some(c) => {
            if c["status"] != status {
                c["status"] = json!(status);
                c["lastTransitionTime"] = json!(now);
            }
            c["reason"] = json!(reason);
            c["message"] = json!(message);
            c["observedGeneration"] = json!(generation);
        }
        None => conds.push(json!({
            "type": CONDITION,
            "status": status,
            "observedGeneration": generation,
            "lastTransitionTime": now,
            "reason": reason,
            "message": message,
        })),
    }
}

/// The status as compared: absent counts and an empty `disruptedPods` as none.
fn same_status(old: &Value, new: &Value) -> bool {
    let norm = |s: &Value| -> Value {
        let mut m = s.as_object().cloned().unwrap_or_default();
        m.retain(|_, v| {
            !(v.is_null() || v.as_object().is_some_and(Map::is_empty) || v.as_i64() == Some(0))
        });
        Value::Object(m)
    };
    norm(old) == norm(new)
}

#[async_trait::async_trait]
impl Reconciler for DisruptionController {
    const CONTROLLER: Controller = Controller::Disruption;

    fn interest(&self) -> Interest {
        Interest::caches([
            &self.pdbs,
            &self.pods,
            &self.replica_sets,
            &self.deployments,
            &self.stateful_sets,
            &self.replication_controllers,
        ])
    }

    fn expectations(&mut self) -> Option<&mut Expectations> {
        Some(&mut self.expect)
    }

    fn observe(&mut self, _state: &Backend, msg: &Msg, queue: &mut Queue) {
        for c in self.pdbs.observe(msg) {
            if c.new.is_some() {
                queue.add(c.key);
            }
        }
        let relist = matches!(msg, Msg::Reset { .. });
        for c in self.pods.observe(msg) {
            if let Some(at) = c.new.as_deref().and_then(stale_disruption_at) {
                self.timers.at(&c.key, at);
            }
            if relist {
                // Every budget is queued already.
                continue;
            }
            if let (Some(o), Some(n)) = (&c.old, &c.new) {
                if pdb_view(o) == pdb_view(n) {
                    continue;
                }
            }
            let (ns, _) = self.pods.split(&c.key);
            let labels: Vec<_> = [c.old.as_deref(), c.new.as_deref()]
                .into_iter()
                .flatten()
                .map(labels_of)
                .collect();
            self.queue_budgets(ns, &labels, queue);
        }
        let mut scaled_ns = Vec::new();
        for cache in [
            &mut self.replica_sets,
            &mut self.deployments,
            &mut self.stateful_sets,
            &mut self.replication_controllers,
        ] {
            for c in cache.observe(msg) {
                let replicas = |o: Option<&Arc<Value>>| {
                    o.map(|o| (uid_of(o).to_string(), o["spec"]["replicas"].clone()))
                };
                if replicas(c.old.as_ref()) != replicas(c.new.as_ref()) {
                    scaled_ns.push(cache.split(&c.key).0.to_string());
                }
            }
        }
        for ns in scaled_ns {
            let keys: Vec<String> = self
                .pdbs
                .in_namespace(&ns)
                .map(|(k, _)| k.clone())
                .collect();
            for k in keys {
                queue.add(k);
            }
        }
    }

    fn timers(&mut self) -> Option<&mut Timers> {
        Some(&mut self.timers)
    }

    async fn reconcile(
        &mut self,
        state: &Arc<Backend>,
        key: &str,
        _queue: &mut Queue,
    ) -> ApiResult<()> {
        if self.pods.owns(key) {
            return self.sync_pod(state, key).await;
        }
        if !self.expect.satisfied(key) {
            return Ok(());
        }
        self.sync_pdb(state, key).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn percentages_round_up() {
        assert_eq!(scaled(&json!(2), 10).unwrap(), 2);
        assert_eq!(scaled(&json!("50%"), 5).unwrap(), 3);
        assert_eq!(scaled(&json!("34%"), 3).unwrap(), 2);
        assert_eq!(scaled(&json!("0%"), 3).unwrap(), 0);
        assert_eq!(scaled(&json!("100%"), 4).unwrap(), 4);
        assert!(scaled(&json!("half"), 4).is_err());
    }

    #[test]
    fn the_condition_moves_its_transition_time_with_its_status_only() {
        let mut c = Vec::new();
        set_condition(&mut c, "False", "InsufficientPods", "", 1, "t1");
        set_condition(&mut c, "False", "InsufficientPods", "", 2, "t2");
        assert_eq!(c[0]["lastTransitionTime"], "t1");
        assert_eq!(c[0]["observedGeneration"], 2);
        set_condition(&mut c, "True", "SufficientPods", "", 2, "t3");
        assert_eq!(c[0]["lastTransitionTime"], "t3");
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn stale_disruption_targets_are_those_not_set_by_the_kubelet() {
        let pod = |reason: &str| {
            json!({"status": {"phase": "Running", "conditions": [
            {"type": "DisruptionTarget", "status": "True", "reason": reason, "lastTransitionTime": "2024-01-01T00:00:00Z"}]}})
        };
        let at = stale_disruption_at(&pod("EvictionByEvictionAPI")).unwrap();
        assert_eq!(stamp(at), "2024-01-01T00:02:00Z");
        assert!(stale_disruption_at(&pod("TerminationByKubelet")).is_none());
    }
}
