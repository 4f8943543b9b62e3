//! ReplicaSets and ReplicationControllers (kube's replicaset and replicationcontroller
//! controllers, one code for both kinds).
//!
//! For each owner not being deleted: the pods it controls (controllerRef with its uid), plus
//! orphans its selector matches, which it adopts (an ownerReference added), minus pods it
//! controls that its selector no longer matches, which it releases. Active pods (not finished,
//! not being deleted) are brought to `spec.replicas`: missing ones created from the template in
//! slow-start batches (1, 2, 4, … concurrent creates, stopping at the first failure; at most
//! 500 per round, kube's burstReplicas), extra ones deleted in kube's order (unscheduled before
//! scheduled, pending before running, not ready before ready, lower
//! `controller.kubernetes.io/pod-deletion-cost` first, most recently ready, most restarts,
//! newest). Then the status: `replicas`, `fullyLabeledReplicas`, `readyReplicas`,
//! `availableReplicas` (ready for `minReadySeconds` by the server clock, with a timer when a pod
//! will become available), `observedGeneration`, and the `ReplicaFailure` condition while
//! creates fail. After its writes the controller decides about the owner again only once it
//! has observed them ([`Expectations`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::SystemTime;

use futures::future::join_all;
use serde_json::{json, Value};

use super::workload::{
    available_at, controller_of, controller_ref, controller_uid, drop_condition, generation_of,
    is_active, is_ready, is_terminal, phase_of, pod_from_template, put_condition, selector_of,
    selects, stamp, time_at, uid_of, Cache, Expectations, Timers, CONTROLLER_MANAGER,
};
use super::{Controller, Interest, Msg, Queue, Reconciler};
use crate::objects::{labels_of, name_of, namespace_of};
use crate::registry::store;
use crate::registry::Backend;
use crate::status::ApiResult;

/// kube's burstReplicas: the most pods created or deleted for one owner in one round.
const BURST: usize = 500;
/// The annotation ordering pods for deletion.
const DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

/// The kind managed.
#[derive(Clone, Copy)]
struct Kind {
    group: &'static str,
    resource: &'static str,
    api_version: &'static str,
    kind: &'static str,
}

const REPLICA_SETS: Kind = Kind {
    group: "apps",
    resource: "replicasets",
    api_version: "apps/v1",
    kind: "ReplicaSet",
};

const REPLICATION_CONTROLLERS: Kind = Kind {
    group: "",
    resource: "replicationcontrollers",
    api_version: "v1",
    kind: "ReplicationController",
};

/// The controller of one kind.
pub struct ReplicaSetController {
    kind: Kind,
    owners: Cache,
    pods: Cache,
    expect: Expectations,
    timers: Timers,
    /// Owner keys by uid.
    by_uid: HashMap<String, String>,
    /// What reconciling needs of each pod, read once per change (an owner of a thousand pods
    /// is reconciled after each of their changes).
    summaries: HashMap<String, Arc<PodSummary>>,
    /// Pod keys by their controller's uid.
    by_controller: HashMap<String, BTreeSet<String>>,
    /// Pods without a controller (not finished, not being deleted), by namespace.
    orphans: HashMap<String, BTreeSet<String>>,
}

/// One pod as the controller reasons about it.
#[derive(Clone)]
struct PodSummary {
    obj: Arc<Value>,
    labels: BTreeMap<String, String>,
    controller: Option<String>,
    deleting: bool,
    active: bool,
    ready_since: Option<SystemTime>,
}

impl PodSummary {
    fn of(pod: &Arc<Value>) -> PodSummary {
        PodSummary {
            obj: pod.clone(),
            labels: labels_of(pod),
            controller: controller_uid(pod).map(str::to_string),
            deleting: store::is_deleting(pod),
            active: is_active(pod),
            ready_since: available_at(pod, 0),
        }
    }
}

impl ReplicaSetController {
    fn new(kind: Kind) -> Self {
        ReplicaSetController {
            kind,
            owners: Cache::new(kind.group, kind.resource),
            pods: Cache::new("", "pods"),
            expect: Expectations::default(),
            timers: Timers::default(),
            by_uid: HashMap::new(),
            summaries: HashMap::new(),
            by_controller: HashMap::new(),
            orphans: HashMap::new(),
        }
    }

    /// kube's replicaset controller.
    pub fn replica_sets() -> Self {
        Self::new(REPLICA_SETS)
    }

    /// kube's replicationcontroller controller.
    pub fn replication_controllers() -> Self {
        Self::new(REPLICATION_CONTROLLERS)
    }

    /// The owner keys a pod concerns: its controller of our kind, or owners in its namespace
    /// whose selector matches it when it is an orphan.
    fn owners_of(&self, pod: &Value, out: &mut Vec<String>) {
        let ns = namespace_of(pod);
        match controller_of(pod) {
            Some(r) => {
                if r["kind"] == self.kind.kind {
                    if let Some(name) = r["name"].as_str() {
                        out.push(self.owners.key(ns, name));
                    }
                }
            }
            None => {
                if store::is_deleting(pod) {
                    return;
                }
                for (k, o) in self.owners.in_namespace(ns) {
                    if selects(&selector_of(o), pod) {
                        out.push(k.clone());
                    }
                }
            }
        }
    }
}

impl ReplicaSetController {
    /// Keep the pod summaries and indexes in step with one pod change.
    fn index(&mut self, key: &str, new: Option<&Arc<Value>>) {
        if let Some(old) = self.summaries.remove(key) {
            match &old.controller {
                Some(uid) => {
                    if let Some(set) = self.by_controller.get_mut(uid) {
                        set.remove(key);
                        if set.is_empty() {
                            self.by_controller.remove(uid);
                        }
                    }
                }
                None => {
                    let ns = namespace_of(&old.obj);
                    if let Some(set) = self.orphans.get_mut(ns) {
                        set.remove(key);
                        if set.is_empty() {
                            self.orphans.remove(ns);
                        }
                    }
                }
            }
        }
        let Some(pod) = new else {
            return;
        };
        let summary = Arc::new(PodSummary::of(pod));
        match &summary.controller {
            Some(uid) => {
                self.by_controller
                    .entry(uid.clone())
                    .or_default()
                    .insert(key.to_string());
            }
            None if !summary.deleting && !is_terminal(pod) => {
                self.orphans
                    .entry(namespace_of(pod).to_string())
                    .or_default()
                    .insert(key.to_string());
            }
            None => {}
        }
        self.summaries.insert(key.to_string(), summary);
    }
}

/// kube's ordering of pods to delete first (ActivePods, "less" first).
fn deletion_rank(
    pod: &Value,
) -> (
    bool,
    u8,
    bool,
    i64,
    std::cmp::Reverse<i64>,
    std::cmp::Reverse<i64>,
    std::cmp::Reverse<String>,
) {
    let assigned = pod["spec"]["nodeName"]
        .as_str()
        .is_some_and(|n| !n.is_empty());
    let phase = match phase_of(pod) {
        "Pending" | "" => 0,
        "Unknown" => 1,
        _ => 2,
    };
    let cost = pod["metadata"]["annotations"][DELETION_COST]
        .as_str()
        .and_then(|c| c.parse::<i64>().ok())
        .unwrap_or(0);
    let ready_since = super::workload::condition(pod, "Ready")
        .filter(|c| c["status"] == "True")
        .and_then(|c| time_at(&c["lastTransitionTime"]))
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64);
    let restarts: i64 = pod["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| c["restartCount"].as_i64().unwrap_or(0))
        .max()
        .unwrap_or(0);
    let created = pod["metadata"]["creationTimestamp"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (
        assigned,
        phase,
        is_ready(pod),
        cost,
        std::cmp::Reverse(ready_since),
        std::cmp::Reverse(restarts),
        std::cmp::Reverse(created),
    )
}

#[async_trait::async_trait]
impl Reconciler for ReplicaSetController {
    const CONTROLLER: Controller = Controller::ReplicaSet;

    fn interest(&self) -> Interest {
        Interest::caches([&self.owners, &self.pods])
    }

    fn expectations(&mut self) -> Option<&mut Expectations> {
        Some(&mut self.expect)
    }

    fn observe(&mut self, _state: &Backend, msg: &Msg, queue: &mut Queue) {
        for ch in self.owners.observe(msg) {
            if let Some(old) = &ch.old {
                self.by_uid.remove(uid_of(old));
            }
            if let Some(new) = &ch.new {
                self.by_uid.insert(uid_of(new).to_string(), ch.key.clone());
            }
            queue.add(ch.key);
        }
        let mut keys = Vec::new();
        for ch in self.pods.observe(msg) {
            if let Some(old) = &ch.old {
                self.owners_of(old, &mut keys);
            }
            if let Some(new) = &ch.new {
                self.owners_of(new, &mut keys);
            }
            self.index(&ch.key, ch.new.as_ref());
        }
        for k in keys {
            queue.add(k);
        }
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
        let Some(owner) = self.owners.get(key).cloned() else {
            return Ok(());
        };
        if store::is_deleting(&owner) {
            return Ok(());
        }
        let k = self.kind;
        let ns = namespace_of(&owner).to_string();
        let name = name_of(&owner).to_string();
        let uid = uid_of(&owner).to_string();
        let selector = selector_of(&owner);
        let now = state.clock.now();
        let mut wrote = false;

        // Claim: adopt matching orphans, release controlled pods that no longer match.
        let selected = |s: &PodSummary| !selector.matches_nothing() && selector.matches(&s.labels);
        let mut owned: Vec<Arc<PodSummary>> = Vec::new();
        let mut adopt = Vec::new();
        let mut release = Vec::new();
        for k in self.by_controller.get(&uid).into_iter().flatten() {
            let Some(s) = self.summaries.get(k) else {
                continue;
            };
            if selected(s) {
                owned.push(s.clone());
            } else if !s.deleting {
                release.push(s.obj.clone());
            }
        }
        for k in self.orphans.get(&ns).into_iter().flatten() {
            if let Some(s) = self.summaries.get(k).filter(|s| selected(s)) {
                adopt.push(s.clone());
            }
        }
        let reference = controller_ref(&owner, k.api_version, k.kind);
        for summary in &adopt {
            let pod = &summary.obj;
            let adopted = CONTROLLER_MANAGER
                .adopt(
                    state,
                    "",
                    "pods",
                    &ns,
                    name_of(pod),
                    uid_of(pod),
                    &reference,
                )
                .await?;
            wrote |= adopted;
            if adopted {
                owned.push(summary.clone());
            }
        }
        for pod in &release {
            wrote |= CONTROLLER_MANAGER
                .release(state, "", "pods", &ns, name_of(pod), uid_of(pod), &uid)
                .await?;
        }

        // Scale.
        let replicas = owner["spec"]["replicas"].as_i64().unwrap_or(1).max(0) as usize;
        let mut active: Vec<Arc<Value>> = owned
            .iter()
            .filter(|s| s.active)
            .map(|s| s.obj.clone())
            .collect();
        let mut create_error = None;
        if active.len() < replicas {
            let mut missing = (replicas - active.len()).min(BURST);
            let template = &owner["spec"]["template"];
            let mut batch = 1;
            while missing > 0 {
                let n = batch.min(missing);
                let creates = (0..n).map(|_| {
                    let mut pod = pod_from_template(template, &ns, reference.clone());
                    pod["metadata"]["generateName"] = json!(format!("{name}-"));
                    CONTROLLER_MANAGER.create(state, "", "pods", &ns, pod)
                });
                let results = join_all(creates).await;
                wrote = true;
                let mut failed = false;
                for r in results {
                    if let Err(e) = r {
                        failed = true;
                        create_error = Some(e.message.clone());
                    }
                }
                if failed {
                    break;
                }
                missing -= n;
                batch *= 2;
            }
        } else if active.len() > replicas {
            active.sort_by_cached_key(|p| deletion_rank(p));
            let extra: Vec<Arc<Value>> = active
                .drain(..(active.len() - replicas).min(BURST))
                .collect();
            let deletes = extra.iter().map(|p| {
                CONTROLLER_MANAGER.delete(
                    state,
                    "",
                    "pods",
                    &ns,
                    name_of(p),
                    Some(uid_of(p)),
                    None,
                    None,
                )
            });
            for r in join_all(deletes).await {
                r?;
            }
            wrote = true;
        }
        if wrote {
            self.expect.wait_for_store(state, key).await;
        }

        // Status, from the pods as observed.
        let min_ready = owner["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
        let template_labels = labels_of(&owner["spec"]["template"]);
        let live: Vec<&Arc<PodSummary>> = owned.iter().filter(|s| s.active).collect();
        let ready = live.iter().filter(|s| s.ready_since.is_some()).count();
        let available_at = |s: &PodSummary| {
            s.ready_since
                .map(|t| super::workload::plus_secs(t, min_ready))
        };
        let available = live
            .iter()
            .filter(|s| available_at(s).is_some_and(|t| min_ready == 0 || t <= now))
            .count();
        if min_ready > 0 {
            if let Some(next) = live
                .iter()
                .filter_map(|s| available_at(s))
                .filter(|t| *t > now)
                .min()
            {
                self.timers.at(key, next);
            }
        }
        let labeled = live
            .iter()
            .filter(|s| {
                template_labels
                    .iter()
                    .all(|(k, v)| s.labels.get(k) == Some(v))
            })
            .count();
        let generation = generation_of(&owner);
        let at = stamp(now);
        let status = json!({
            "replicas": live.len(),
            "fullyLabeledReplicas": labeled,
            "readyReplicas": ready,
            "availableReplicas": available,
            "observedGeneration": generation,
        });
        CONTROLLER_MANAGER
            .update(
                state,
                k.group,
                k.resource,
                &ns,
                &name,
                "status",
                Some(&uid),
                |o| {
                    let before = o["status"].clone();
                    if !o["status"].is_object() {
                        o["status"] = json!({});
                    }
                    for (f, v) in status.as_object().into_iter().flatten() {
                        if v == 0 && f != "replicas" {
                            if let Some(m) = o["status"].as_object_mut() {
                                m.remove(f);
                            }
                        } else {
                            o["status"][f] = v.clone();
                        }
                    }
                    match &create_error {
                        Some(msg) => {
                            put_condition(o, "ReplicaFailure", "True", "FailedCreate", msg, &at)
                        }
                        None => drop_condition(o, "ReplicaFailure"),
                    }
                    if o["status"]["conditions"]
                        .as_array()
                        .is_some_and(|c| c.is_empty())
                    {
                        if let Some(m) = o["status"].as_object_mut() {
                            m.remove("conditions");
                        }
                    }
                    o["status"] != before
                },
            )
            .await?;
        if create_error.is_some() {
            // Try again later, as kube's work queue does with its rate limiter.
            self.timers.at(key, now + std::time::Duration::from_secs(1));
        }
        Ok(())
    }

    fn timers(&mut self) -> Option<&mut Timers> {
        Some(&mut self.timers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_are_deleted_unscheduled_pending_unready_cheap_and_new_first() {
        let pod = |name: &str, node: &str, phase: &str, ready: bool, created: &str| {
            json!({
                "metadata": {"name": name, "creationTimestamp": created},
                "spec": {"nodeName": node},
                "status": {"phase": phase, "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }, "lastTransitionTime": created}]},
            })
        };
        let mut pods = [
            pod("old-ready", "n", "Running", true, "2024-01-01T00:00:00Z"),
            pod("new-ready", "n", "Running", true, "2024-01-02T00:00:00Z"),
            pod("unready", "n", "Running", false, "2024-01-01T00:00:00Z"),
            pod("pending", "n", "Pending", false, "2024-01-01T00:00:00Z"),
            pod("unscheduled", "", "Pending", false, "2024-01-01T00:00:00Z"),
        ];
        pods.sort_by_cached_key(deletion_rank);
        let names: Vec<&str> = pods.iter().map(name_of).collect();
        assert_eq!(
            names,
            [
                "unscheduled",
                "pending",
                "unready",
                "new-ready",
                "old-ready"
            ]
        );
    }
}
