//! The pod garbage collector (kube-controller-manager's `podgc` controller). kube's runs every
//! 20 s; this one acts on the changes that call for it, with the server clock for its waits:
//!
//! - terminated pods (phase other than Pending, Running, Unknown) above the threshold
//!   (`--terminated-pod-gc-threshold`, 12500; 0 turns it off) are deleted, evicted ones first,
//!   then oldest first (creation time, then name);
//! - with simulated nodes only: pods bound to a node that does not exist are deleted once the
//!   node has been missing for 40 s (kube's quarantine), marked Failed first with the
//!   `DisruptionTarget` condition (reason `DeletionByPodGC`, "PodGC: node no longer exists");
//! - pods being deleted that were never scheduled are deleted at once, and so are pods being
//!   deleted on a node that is not Ready and carries the `node.kubernetes.io/out-of-service`
//!   taint.
//!
//! Every deletion is a forced one (grace period 0), after the pod is marked Failed if it had not
//! finished; finalizers still hold a pod as they do for kube.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use super::workload::{
    condition, phase_of, stamp, time_at, uid_of, Cache, Expectations, Timers, CONTROLLER_MANAGER,
};
use super::{read, Controller, Interest, Msg, Queue, Reconciler};
use crate::registry::store::is_deleting;
use crate::registry::Backend;
use crate::status::ApiResult;

/// kube-controller-manager's `--terminated-pod-gc-threshold` default.
pub const DEFAULT_TERMINATED_POD_THRESHOLD: usize = 12500;
/// How long a node must stay missing before its pods are deleted.
pub const QUARANTINE: Duration = Duration::from_secs(40);
/// The taint that lets terminating pods of a node that is down be deleted.
pub const OUT_OF_SERVICE_TAINT: &str = "node.kubernetes.io/out-of-service";

const TERMINATED: &str = "terminated";
const NODE_PREFIX: &str = "node:";

/// kube's isPodTerminated: any phase but Pending, Running and Unknown.
fn is_terminated(pod: &Value) -> bool {
    !matches!(phase_of(pod), "Pending" | "Running" | "Unknown")
}

fn node_of(pod: &Value) -> Option<&str> {
    pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty())
}

/// Evicted pods first, then by creation time, then by name (kube's
/// byEvictionAndCreationTimestamp).
fn gc_order(a: &Value, b: &Value) -> std::cmp::Ordering {
    let evicted = |p: &Value| phase_of(p) == "Failed" && p["status"]["reason"] == "Evicted";
    let created = |p: &Value| time_at(&p["metadata"]["creationTimestamp"]);
    evicted(b)
        .cmp(&evicted(a))
        .then_with(|| created(a).cmp(&created(b)))
        .then_with(|| {
            a["metadata"]["name"]
                .as_str()
                .cmp(&b["metadata"]["name"].as_str())
        })
}

/// The pods to delete so that at most `threshold` terminated pods remain.
fn over_threshold(terminated: Vec<&Arc<Value>>, threshold: usize) -> Vec<&Arc<Value>> {
    if threshold == 0 || terminated.len() <= threshold {
        return Vec::new();
    }
    let excess = terminated.len() - threshold;
    let mut sorted = terminated;
    sorted.sort_by(|a, b| gc_order(a, b));
    sorted.truncate(excess);
    sorted
}

/// A node that is not Ready and is tainted out of service.
fn out_of_service(node: &Value) -> bool {
    let ready = condition(node, "Ready").is_some_and(|c| c["status"] == "True");
    let tainted = node["spec"]["taints"]
        .as_array()
        .is_some_and(|t| t.iter().any(|t| t["key"] == OUT_OF_SERVICE_TAINT));
    !ready && tainted
}

/// The pod garbage collector.
pub struct PodGc {
    threshold: usize,
    pods: Cache,
    nodes: Cache,
    terminated: BTreeSet<String>,
    /// Node name → the keys of the pods bound to it.
    by_node: BTreeMap<String, BTreeSet<String>>,
    /// Missing node → since when (by the server clock).
    quarantine: HashMap<String, SystemTime>,
    timers: Timers,
    expect: Expectations,
}

impl Default for PodGc {
    fn default() -> Self {
        PodGc::new(DEFAULT_TERMINATED_POD_THRESHOLD)
    }
}

impl PodGc {
    /// Keep at most `threshold` terminated pods (0: keep them all).
    pub fn new(threshold: usize) -> Self {
        PodGc {
            threshold,
            pods: Cache::new("", "pods"),
            nodes: Cache::new("", "nodes"),
            terminated: BTreeSet::new(),
            by_node: BTreeMap::new(),
            quarantine: HashMap::new(),
            timers: Timers::default(),
            expect: Expectations::default(),
        }
    }

    fn node_exists(&self, name: &str) -> bool {
        self.nodes.get(&self.nodes.key("", name)).is_some()
    }

    /// Start the quarantine of a missing node (once).
    fn missing(&mut self, node: &str, now: SystemTime) {
        if self.node_exists(node) || self.quarantine.contains_key(node) {
            return;
        }
        self.quarantine.insert(node.to_string(), now);
        self.timers.at(
            &format!("{NODE_PREFIX}{node}"),
            now.checked_add(QUARANTINE).unwrap_or(now),
        );
    }

    /// Must this deleting pod be deleted at once (unscheduled, or on a node out of service)?
    fn force_now(&self, pod: &Value) -> bool {
        if !is_deleting(pod) {
            return false;
        }
        // Done already: marked Failed and deleted at once, held by finalizers.
        if is_terminated(pod) && pod["metadata"]["deletionGracePeriodSeconds"] == 0 {
            return false;
        }
        match node_of(pod) {
            None => true,
            Some(n) => self
                .nodes
                .get(&self.nodes.key("", n))
                .is_some_and(|node| out_of_service(node)),
        }
    }

    /// Mark the pod Failed (with `condition`) unless it finished, then delete it at once.
    async fn fail_and_delete(
        &self,
        state: &Arc<Backend>,
        pod: &Value,
        cond: Option<(&str, &str)>,
    ) -> ApiResult<()> {
        let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        let uid = uid_of(pod);
        if !matches!(phase_of(pod), "Succeeded" | "Failed") {
            let now = stamp(state.clock.now());
            CONTROLLER_MANAGER
                .update(state, "", "pods", ns, name, "status", Some(uid), |obj| {
                    if matches!(phase_of(obj), "Succeeded" | "Failed") {
                        return false;
                    }
                    obj["status"]["phase"] = json!("Failed");
                    if let Some((reason, message)) = cond {
                        let c = json!({"type": "DisruptionTarget", "status": "True", "lastProbeTime": null,
                            "lastTransitionTime": now, "reason": reason, "message": message});
                        match obj["status"]["conditions"].as_array_mut() {
                            Some(list) => match list.iter_mut().find(|c| c["type"] == "DisruptionTarget") {
                                Some(old) => *old = c,
                                None => list.push(c),
                            },
                            None => obj["status"]["conditions"] = json!([c]),
                        }
                    }
                    true
                })
                .await?;
        }
        CONTROLLER_MANAGER
            .delete(state, "", "pods", ns, name, Some(uid), None, Some(0))
            .await
    }

    async fn gc_terminated(&mut self, state: &Arc<Backend>) -> ApiResult<()> {
        let terminated: Vec<&Arc<Value>> = self
            .terminated
            .iter()
            .filter_map(|k| self.pods.get(k))
            .collect();
        let victims: Vec<Arc<Value>> = over_threshold(terminated, self.threshold)
            .into_iter()
            .cloned()
            .collect();
        if victims.is_empty() {
            return Ok(());
        }
        tracing::info!(pods = victims.len(), "garbage collecting terminated pods");
        for pod in &victims {
            self.fail_and_delete(state, pod, None).await?;
        }
        self.expect.wait_for_store(state, TERMINATED).await;
        Ok(())
    }

    async fn gc_orphans(&mut self, state: &Arc<Backend>, node: &str) -> ApiResult<()> {
        let Some(since) = self.quarantine.get(node).copied() else {
            return Ok(());
        };
        let due = since.checked_add(QUARANTINE).unwrap_or(since);
        if state.clock.now() < due {
            self.timers.at(&format!("{NODE_PREFIX}{node}"), due);
            return Ok(());
        }
        let key = self.nodes.key("", node);
        if self.node_exists(node) || read(state, &key).await?.is_some() {
            self.quarantine.remove(node);
            return Ok(());
        }
        let pods: Vec<Arc<Value>> = self
            .by_node
            .get(node)
            .into_iter()
            .flatten()
            .filter_map(|k| self.pods.get(k).cloned())
            .collect();
        for pod in &pods {
            tracing::info!(pod = ?pod["metadata"]["name"], node, "deleting a pod whose node is gone");
            self.fail_and_delete(
                state,
                pod,
                Some(("DeletionByPodGC", "PodGC: node no longer exists")),
            )
            .await?;
        }
        self.quarantine.remove(node);
        let mark = format!("{NODE_PREFIX}{node}");
        self.expect.wait_for_store(state, &mark).await;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Reconciler for PodGc {
    const CONTROLLER: Controller = Controller::PodGc;

    fn interest(&self) -> Interest {
        Interest::caches([&self.pods, &self.nodes])
    }

    fn expectations(&mut self) -> Option<&mut Expectations> {
        Some(&mut self.expect)
    }

    fn observe(&mut self, state: &Backend, msg: &Msg, queue: &mut Queue) {
        let now = state.clock.now();
        let orphans = state.kubelets;
        let mut node_changes = Vec::new();
        for c in self.nodes.observe(msg) {
            let (_, name) = self.nodes.split(&c.key);
            node_changes.push((name.to_string(), c.new.is_some()));
        }
        if matches!(msg, Msg::Reset { .. }) {
            self.terminated.clear();
            self.by_node.clear();
        }
        let pod_changes = self.pods.observe(msg);
        for c in &pod_changes {
            if let Some(old) = c.old.as_deref().and_then(node_of) {
                if let Some(set) = self.by_node.get_mut(old) {
                    set.remove(&c.key);
                    if set.is_empty() {
                        self.by_node.remove(old);
                    }
                }
            }
            self.terminated.remove(&c.key);
            let Some(pod) = &c.new else {
                continue;
            };
            if is_terminated(pod) {
                self.terminated.insert(c.key.clone());
            }
            if let Some(node) = node_of(pod) {
                self.by_node
                    .entry(node.to_string())
                    .or_default()
                    .insert(c.key.clone());
                if orphans {
                    let node = node.to_string();
                    self.missing(&node, now);
                }
            }
            if self.force_now(pod) {
                queue.add(c.key.clone());
            }
        }
        for (name, exists) in node_changes {
            if exists {
                self.quarantine.remove(&name);
            } else if orphans && self.by_node.contains_key(&name) {
                self.missing(&name, now);
            }
            let keys: Vec<String> = self
                .by_node
                .get(&name)
                .into_iter()
                .flatten()
                .cloned()
                .collect();
            for k in keys {
                if self.pods.get(&k).is_some_and(|p| self.force_now(p)) {
                    queue.add(k);
                }
            }
        }
        if self.threshold > 0 && self.terminated.len() > self.threshold {
            queue.add(TERMINATED);
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
        if !self.expect.satisfied(key) {
            return Ok(());
        }
        if key == TERMINATED {
            return self.gc_terminated(state).await;
        }
        if let Some(node) = key.strip_prefix(NODE_PREFIX) {
            if !state.kubelets {
                return Ok(());
            }
            return self.gc_orphans(state, node).await;
        }
        let Some(pod) = self.pods.get(key).cloned() else {
            return Ok(());
        };
        if self.force_now(&pod) {
            self.fail_and_delete(state, &pod, None).await?;
            self.expect.wait_for_store(state, key).await;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pod(name: &str, created: &str, phase: &str, reason: Option<&str>) -> Arc<Value> {
        Arc::new(
            json!({"metadata": {"name": name, "creationTimestamp": created},
            "status": {"phase": phase, "reason": reason}}),
        )
    }

    #[test]
    fn the_oldest_terminated_pods_go_first_evicted_before_all() {
        let pods = [
            pod("new", "2024-01-03T00:00:00Z", "Succeeded", None),
            pod("old-b", "2024-01-01T00:00:00Z", "Failed", None),
            pod("old-a", "2024-01-01T00:00:00Z", "Succeeded", None),
            pod("evicted", "2024-01-05T00:00:00Z", "Failed", Some("Evicted")),
            pod("mid", "2024-01-02T00:00:00Z", "Succeeded", None),
        ];
        let names = |v: Vec<&Arc<Value>>| -> Vec<String> {
            v.iter()
                .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(
            names(over_threshold(pods.iter().collect(), 2)),
            vec!["evicted", "old-a", "old-b"]
        );
        assert!(over_threshold(pods.iter().collect(), 5).is_empty());
        assert!(over_threshold(pods.iter().collect(), 0).is_empty());
    }

    #[test]
    fn terminated_means_any_phase_but_pending_running_unknown() {
        for (phase, t) in [
            ("Pending", false),
            ("Running", false),
            ("Unknown", false),
            ("Succeeded", true),
            ("Failed", true),
        ] {
            assert_eq!(
                is_terminated(&json!({"status": {"phase": phase}})),
                t,
                "{phase}"
            );
        }
    }

    #[test]
    fn out_of_service_needs_the_taint_and_a_node_not_ready() {
        let node = |ready: &str, taint: bool| {
            json!({
            "spec": {"taints": if taint { json!([{"key": OUT_OF_SERVICE_TAINT, "effect": "NoExecute"}]) } else { json!([]) }},
            "status": {"conditions": [{"type": "Ready", "status": ready}]}})
        };
        assert!(out_of_service(&node("False", true)));
        assert!(!out_of_service(&node("True", true)));
        assert!(!out_of_service(&node("False", false)));
    }
}
