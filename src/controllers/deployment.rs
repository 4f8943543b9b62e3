//! Deployments (kube's deployment controller): one ReplicaSet per revision of the pod
//! template, rolled out by the Deployment's strategy.
//!
//! - **The new ReplicaSet** is the one controlled by the Deployment whose template equals the
//!   Deployment's, ignoring `pod-template-hash`; when none does, one is created, named
//!   `<deployment>-<hash>` (the hash of the template and `status.collisionCount`), its template
//!   and selector carrying `pod-template-hash`. Revisions: the new ReplicaSet's
//!   `deployment.kubernetes.io/revision` is one more than the highest old one (an old
//!   ReplicaSet brought back by `kubectl rollout undo` moves up, its former revisions kept in
//!   `deployment.kubernetes.io/revision-history`); the Deployment carries its new
//!   ReplicaSet's revision. The Deployment's own annotations (`kubernetes.io/change-cause`…)
//!   are copied onto its new ReplicaSet, as `desired-replicas` and `max-replicas` are set.
//! - **RollingUpdate**: the new ReplicaSet grows while the total stays within
//!   `replicas + maxSurge`; old ones shrink (unhealthy replicas first, then oldest first)
//!   while available pods stay at least `replicas - maxUnavailable`.
//! - **Recreate**: old ReplicaSets to 0, then, once none of their pods is left running, the
//!   new one to `replicas`.
//! - **Scaling** outside a rollout resizes the one active ReplicaSet; during one, the change is
//!   shared out in proportion to the ReplicaSets' sizes.
//! - **Paused** Deployments are only scaled; `Progressing` turns Unknown (`DeploymentPaused`,
//!   then `DeploymentResumed`).
//! - **Status** as kube writes it: `replicas`, `updatedReplicas`, `readyReplicas`,
//!   `availableReplicas`, `unavailableReplicas`, `observedGeneration`, `collisionCount`;
//!   `Available` (`MinimumReplicasAvailable` / `MinimumReplicasUnavailable`) and `Progressing`
//!   (`NewReplicaSetCreated`, `FoundNewReplicaSet`, `ReplicaSetUpdated`,
//!   `NewReplicaSetAvailable`, and `ProgressDeadlineExceeded` once `progressDeadlineSeconds`
//!   pass without progress, by the server clock).
//! - **History**: old ReplicaSets scaled to 0 beyond `revisionHistoryLimit` are deleted, oldest
//!   revision first.
//!
//! Orphan ReplicaSets the selector matches are adopted, and controlled ones it no longer
//! matches released, before anything else (kube's ClaimReplicaSets).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::workload::{
    claim, controller_named, controller_of, controller_ref, generation_of, is_terminal, plus_secs,
    selector_of, selects, stamp, template_hash, time_at, uid_of, without_hash, write_claims, Cache,
    Expectations, Timers, CONTROLLER_MANAGER,
};
use super::{Controller, Interest, Msg, Queue, Reconciler};
use crate::objects::{name_of, namespace_of};
use crate::registry::store::{self, Propagation};
use crate::registry::Backend;
use crate::status::ApiResult;

const REVISION: &str = "deployment.kubernetes.io/revision";
const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
const HASH_LABEL: &str = "pod-template-hash";

/// Annotations of a Deployment not copied onto its ReplicaSets (kube's skip list).
fn skip_annotation(k: &str) -> bool {
    matches!(
        k,
        "kubectl.kubernetes.io/last-applied-configuration"
            | REVISION
            | REVISION_HISTORY
            | DESIRED_REPLICAS
            | MAX_REPLICAS
            | "deprecated.deployment.rollback.to"
    )
}

/// The deployment controller.
pub struct DeploymentController {
    deployments: Cache,
    replica_sets: Cache,
    pods: Cache,
    expect: Expectations,
    timers: Timers,
}

impl Default for DeploymentController {
    fn default() -> Self {
        DeploymentController {
            deployments: Cache::new("apps", "deployments"),
            replica_sets: Cache::new("apps", "replicasets"),
            pods: Cache::new("", "pods"),
            expect: Expectations::default(),
            timers: Timers::default(),
        }
    }
}

/// A ReplicaSet as the controller reasons about it.
#[derive(Clone)]
struct Rs {
    obj: Arc<Value>,
    name: String,
    replicas: i64,
    status_replicas: i64,
    available: i64,
    ready: i64,
    revision: i64,
    created: String,
}

impl Rs {
    fn of(obj: &Arc<Value>) -> Rs {
        Rs {
            obj: obj.clone(),
            name: name_of(obj).to_string(),
            replicas: obj["spec"]["replicas"].as_i64().unwrap_or(1),
            status_replicas: obj["status"]["replicas"].as_i64().unwrap_or(0),
            available: obj["status"]["availableReplicas"].as_i64().unwrap_or(0),
            ready: obj["status"]["readyReplicas"].as_i64().unwrap_or(0),
            revision: revision_of(obj),
            created: obj["metadata"]["creationTimestamp"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        }
    }
}

fn revision_of(obj: &Value) -> i64 {
    obj["metadata"]["annotations"][REVISION]
        .as_str()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// An intstr (count or percentage of `total`), rounded up or down.
fn int_or_percent(v: &Value, total: i64, round_up: bool) -> i64 {
    match v {
        Value::Number(n) => n.as_i64().unwrap_or(0),
        Value::String(s) => match s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) {
            Some(p) => {
                let scaled = p * total;
                if round_up {
                    (scaled + 99).div_euclid(100)
                } else {
                    scaled.div_euclid(100)
                }
            }
            None => s.parse().unwrap_or(0),
        },
        _ => 0,
    }
}

/// (maxSurge, maxUnavailable) resolved (kube's ResolveFenceposts: both 0 → unavailable 1).
fn fenceposts(d: &Value) -> (i64, i64) {
    let replicas = replicas_of(d);
    if d["spec"]["strategy"]["type"] == "Recreate" {
        return (0, 0);
    }
    let ru = &d["spec"]["strategy"]["rollingUpdate"];
    let surge_v = if ru["maxSurge"].is_null() {
        json!("25%")
    } else {
        ru["maxSurge"].clone()
    };
    let unav_v = if ru["maxUnavailable"].is_null() {
        json!("25%")
    } else {
        ru["maxUnavailable"].clone()
    };
    let surge = int_or_percent(&surge_v, replicas, true).max(0);
    let mut unavailable = int_or_percent(&unav_v, replicas, false).max(0);
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    (surge, unavailable)
}

fn replicas_of(d: &Value) -> i64 {
    d["spec"]["replicas"].as_i64().unwrap_or(1).max(0)
}

fn max_unavailable(d: &Value) -> i64 {
    let replicas = replicas_of(d);
    if d["spec"]["strategy"]["type"] == "Recreate" || replicas == 0 {
        return 0;
    }
    fenceposts(d).1.min(replicas)
}

fn condition<'a>(d: &'a Value, ty: &str) -> Option<&'a Value> {
    super::workload::condition(d, ty)
}

/// kube's SetDeploymentCondition: a condition with the same status and reason is left as it
/// is; otherwise replaced, keeping `lastTransitionTime` when the status stays.
fn set_condition(status: &mut Value, ty: &str, st: &str, reason: &str, message: &str, now: &str) {
    let mut conds: Vec<Value> = status["conditions"].as_array().cloned().unwrap_or_default();
    let current = conds.iter().find(|c| c["type"] == ty).cloned();
    if let Some(c) = &current {
        if c["status"] == st && c["reason"] == reason {
            return;
        }
    }
    let transition = match &current {
        Some(c) if c["status"] == st => c["lastTransitionTime"].clone(),
        _ => json!(now),
    };
    conds.retain(|c| c["type"] != ty);
    conds.push(json!({
        "type": ty,
        "status": st,
        "lastUpdateTime": now,
        "lastTransitionTime": transition,
        "reason": reason,
        "message": message,
    }));
    status["conditions"] = Value::Array(conds);
}

/// A condition of a status object.
fn status_condition<'a>(status: &'a Value, ty: &str) -> Option<&'a Value> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == ty)
}

fn remove_condition(status: &mut Value, ty: &str) {
    if let Some(c) = status["conditions"].as_array_mut() {
        c.retain(|c| c["type"] != ty);
    }
}

/// What one round decided to write to ReplicaSets.
struct Round<'a> {
    state: &'a Arc<Backend>,
    d: &'a Value,
    ns: String,
    wrote: bool,
}

impl Round<'_> {
    /// Scale a ReplicaSet (and stamp desired/max replicas on it).
    async fn scale(&mut self, rs: &mut Rs, to: i64) -> ApiResult<()> {
        let replicas = replicas_of(self.d);
        let (surge, _) = fenceposts(self.d);
        let desired = replicas.to_string();
        let max = (replicas + surge).to_string();
        let uid = uid_of(&rs.obj).to_string();
        let changed = CONTROLLER_MANAGER
            .update(
                self.state,
                "apps",
                "replicasets",
                &self.ns,
                &rs.name,
                "",
                Some(&uid),
                |o| {
                    let before = (
                        o["spec"]["replicas"].clone(),
                        o["metadata"]["annotations"].clone(),
                    );
                    o["spec"]["replicas"] = json!(to);
                    if !o["metadata"]["annotations"].is_object() {
                        o["metadata"]["annotations"] = json!({});
                    }
                    o["metadata"]["annotations"][DESIRED_REPLICAS] = json!(desired);
                    o["metadata"]["annotations"][MAX_REPLICAS] = json!(max);
                    (
                        o["spec"]["replicas"].clone(),
                        o["metadata"]["annotations"].clone(),
                    ) != before
                },
            )
            .await?;
        if changed {
            self.wrote = true;
        }
        rs.replicas = to;
        Ok(())
    }
}

impl DeploymentController {
    /// The Deployment a ReplicaSet belongs to (its key).
    fn deployment_of_rs(&self, rs: &Value) -> Option<String> {
        let name = controller_named(rs, "Deployment")?;
        Some(self.deployments.key(namespace_of(rs), name))
    }

    fn owned_sets(&self, d: &Value) -> Vec<Rs> {
        let uid = uid_of(d);
        let mut out: Vec<Rs> = self
            .replica_sets
            .in_namespace(namespace_of(d))
            .filter(|(_, rs)| {
                controller_of(rs).is_some_and(|r| r["uid"] == uid) && !store::is_deleting(rs)
            })
            .map(|(_, rs)| Rs::of(rs))
            .collect();
        out.sort_by(|a, b| a.created.cmp(&b.created).then(a.name.cmp(&b.name)));
        out
    }

    /// Adopt matching orphan ReplicaSets, release controlled ones the selector no longer
    /// matches (kube's ClaimReplicaSets); true when anything was written.
    async fn claim(&self, state: &Arc<Backend>, d: &Value) -> ApiResult<bool> {
        let selector = selector_of(d);
        if selector.matches_nothing() || store::is_deleting(d) {
            return Ok(false);
        }
        let ns = namespace_of(d);
        let sets = self.replica_sets.in_namespace(ns).map(|(_, rs)| rs);
        let (_, claims) = claim(d, &selector, sets, |_| true);
        let reference = controller_ref(d, "apps/v1", "Deployment");
        write_claims(state, "apps", "replicasets", ns, &reference, &claims).await
    }

    /// Pods of these ReplicaSets still running (Recreate waits for none).
    fn pods_running(&self, ns: &str, sets: &[Rs]) -> bool {
        let uids: Vec<&str> = sets.iter().map(|r| uid_of(&r.obj)).collect();
        self.pods.in_namespace(ns).any(|(_, p)| {
            controller_of(p)
                .and_then(|r| r["uid"].as_str())
                .is_some_and(|u| uids.contains(&u))
                && !is_terminal(p)
        })
    }

    async fn sync(&mut self, state: &Arc<Backend>, key: &str) -> ApiResult<()> {
        let Some(d) = self.deployments.get(key).cloned() else {
            return Ok(());
        };
        if store::is_deleting(&d) {
            return Ok(());
        }
        let now = state.clock.now();
        let at = stamp(now);
        let ns = namespace_of(&d).to_string();
        let name = name_of(&d).to_string();
        let uid = uid_of(&d).to_string();
        let replicas = replicas_of(&d);
        let (surge, _) = fenceposts(&d);
        let paused = d["spec"]["paused"] == true;
        let recreate = d["spec"]["strategy"]["type"] == "Recreate";
        let template = without_hash(&d["spec"]["template"]);
        let mut round = Round {
            state,
            d: &d,
            ns: ns.clone(),
            wrote: false,
        };

        // Claim: orphan ReplicaSets the selector matches are adopted (a Deployment deleted with
        // --cascade=orphan and created again takes its ReplicaSets back); controlled ones it no
        // longer matches are released. The next round works from what was written.
        if self.claim(state, &d).await? {
            self.expect.wait_for_store(state, key).await;
            return Ok(());
        }
        let mut sets = self.owned_sets(&d);
        // The new ReplicaSet: the oldest whose template is the Deployment's.
        let new_at = sets
            .iter()
            .position(|rs| without_hash(&rs.obj["spec"]["template"]) == template);
        let mut new_rs = new_at.map(|i| sets.remove(i));
        let mut old = sets;
        let max_old_revision = old.iter().map(|r| r.revision).max().unwrap_or(0);
        let mut progress_note: Option<(&str, String)> = None;
        let mut collision_bump = false;

        // Sync the new ReplicaSet's revision and annotations.
        if let Some(rs) = new_rs.as_mut() {
            let wanted_revision = if rs.revision <= max_old_revision {
                max_old_revision + 1
            } else {
                rs.revision
            };
            let copy = annotations_to_copy(&d);
            let rs_uid = uid_of(&rs.obj).to_string();
            let min_ready = d["spec"]["minReadySeconds"].clone();
            let changed = CONTROLLER_MANAGER
                .update(
                    state,
                    "apps",
                    "replicasets",
                    &ns,
                    &rs.name,
                    "",
                    Some(&rs_uid),
                    |o| {
                        let before = (
                            o["metadata"]["annotations"].clone(),
                            o["spec"]["minReadySeconds"].clone(),
                        );
                        if !o["metadata"]["annotations"].is_object() {
                            o["metadata"]["annotations"] = json!({});
                        }
                        let a = &mut o["metadata"]["annotations"];
                        for (k, v) in &copy {
                            a[k] = json!(v);
                        }
                        let current = a[REVISION]
                            .as_str()
                            .and_then(|r| r.parse::<i64>().ok())
                            .unwrap_or(0);
                        if current != wanted_revision {
                            if current > 0 {
                                let mut history: Vec<String> = a[REVISION_HISTORY]
                                    .as_str()
                                    .filter(|h| !h.is_empty())
                                    .map(|h| h.split(',').map(str::to_string).collect())
                                    .unwrap_or_default();
                                history.push(current.to_string());
                                a[REVISION_HISTORY] = json!(history.join(","));
                            }
                            a[REVISION] = json!(wanted_revision.to_string());
                        }
                        if a.get(DESIRED_REPLICAS).is_none() {
                            a[DESIRED_REPLICAS] = json!(replicas.to_string());
                        }
                        if a.get(MAX_REPLICAS).is_none() {
                            a[MAX_REPLICAS] = json!((replicas + surge).to_string());
                        }
                        if min_ready.is_null() {
                            if let Some(s) = o["spec"].as_object_mut() {
                                s.remove("minReadySeconds");
                            }
                        } else {
                            o["spec"]["minReadySeconds"] = min_ready.clone();
                        }
                        (
                            o["metadata"]["annotations"].clone(),
                            o["spec"]["minReadySeconds"].clone(),
                        ) != before
                    },
                )
                .await?;
            round.wrote |= changed;
            rs.revision = wanted_revision;
            if condition(&d, "Progressing").is_none() {
                progress_note = Some((
                    "FoundNewReplicaSet",
                    format!("Found new replica set {:?}", rs.name),
                ));
            }
        }

        let scaling = !paused && is_scaling_event(&d, new_rs.as_ref(), &old);
        if paused || scaling {
            self.scale(&mut round, &d, &mut new_rs, &mut old).await?;
        } else if recreate {
            let mut scaled_down = false;
            for rs in old.iter_mut().filter(|r| r.replicas > 0) {
                round.scale(rs, 0).await?;
                scaled_down = true;
            }
            let waiting = scaled_down || self.pods_running(&ns, &old);
            if !waiting {
                if new_rs.is_none() {
                    match self
                        .create_new(
                            state,
                            &d,
                            max_old_revision + 1,
                            replicas,
                            &mut collision_bump,
                        )
                        .await?
                    {
                        Some(rs) => {
                            progress_note = Some((
                                "NewReplicaSetCreated",
                                format!("Created new replica set {:?}", rs.name),
                            ));
                            round.wrote = true;
                            new_rs = Some(rs);
                        }
                        None => round.wrote = true,
                    }
                } else if let Some(rs) = new_rs.as_mut() {
                    if rs.replicas != replicas {
                        round.scale(rs, replicas).await?;
                    }
                }
            }
        } else {
            // RollingUpdate.
            if new_rs.is_none() {
                let total: i64 = old.iter().map(|r| r.replicas).sum();
                let start = new_rs_replicas(replicas, surge, total, 0);
                if let Some(rs) = self
                    .create_new(state, &d, max_old_revision + 1, start, &mut collision_bump)
                    .await?
                {
                    progress_note = Some((
                        "NewReplicaSetCreated",
                        format!("Created new replica set {:?}", rs.name),
                    ));
                    new_rs = Some(rs);
                }
                round.wrote = true;
            } else if let Some(rs) = new_rs.as_mut() {
                // Grow (or shrink) the new ReplicaSet.
                if rs.replicas > replicas {
                    round.scale(rs, replicas).await?;
                } else if rs.replicas < replicas {
                    let total: i64 = old.iter().map(|r| r.replicas).sum::<i64>() + rs.replicas;
                    let to = new_rs_replicas(replicas, surge, total, rs.replicas);
                    if to != rs.replicas {
                        round.scale(rs, to).await?;
                    }
                }
                if !round.wrote {
                    self.scale_down_old(&mut round, &d, rs, &mut old).await?;
                }
            }
        }

        // History.
        let complete_now = new_rs.as_ref().is_some_and(|rs| {
            rs.replicas == replicas && rs.available == replicas && rs.status_replicas == replicas
        }) && old
            .iter()
            .all(|r| r.replicas == 0 && r.status_replicas == 0);
        if complete_now && !paused {
            self.cleanup(state, &d, &old).await?;
        }

        // Status.
        let all: Vec<&Rs> = new_rs.iter().chain(old.iter()).collect();
        let available: i64 = all.iter().map(|r| r.available).sum();
        let total_spec: i64 = all.iter().map(|r| r.replicas).sum();
        let mut status = json!({
            "observedGeneration": generation_of(&d),
            "replicas": all.iter().map(|r| r.status_replicas).sum::<i64>(),
            "updatedReplicas": new_rs.as_ref().map_or(0, |r| r.status_replicas),
            "readyReplicas": all.iter().map(|r| r.ready).sum::<i64>(),
            "availableReplicas": available,
            "unavailableReplicas": (total_spec - available).max(0),
        });
        let collision =
            d["status"]["collisionCount"].as_i64().unwrap_or(0) + i64::from(collision_bump);
        if collision > 0 {
            status["collisionCount"] = json!(collision);
        }
        status["conditions"] = d["status"]["conditions"].clone();
        if replicas - max_unavailable(&d) <= available {
            set_condition(
                &mut status,
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
                &at,
            );
        } else {
            set_condition(
                &mut status,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
                &at,
            );
        }
        let deadline = d["spec"]["progressDeadlineSeconds"].as_i64();
        if deadline.is_none() {
            remove_condition(&mut status, "Progressing");
        } else if paused {
            if condition(&d, "Progressing").is_none_or(|c| c["reason"] != "DeploymentPaused") {
                set_condition(
                    &mut status,
                    "Progressing",
                    "Unknown",
                    "DeploymentPaused",
                    "Deployment is paused",
                    &at,
                );
            }
        } else if condition(&d, "Progressing").is_some_and(|c| c["reason"] == "DeploymentPaused") {
            set_condition(
                &mut status,
                "Progressing",
                "Unknown",
                "DeploymentResumed",
                "Deployment is resumed",
                &at,
            );
        }
        if let Some((reason, message)) = &progress_note {
            set_condition(&mut status, "Progressing", "True", reason, message, &at);
        }
        if let (Some(secs), false) = (deadline, paused) {
            let rs_name = new_rs.as_ref().map(|r| r.name.clone());
            let current = status_condition(&status, "Progressing").cloned();
            let already_complete = current
                .as_ref()
                .is_some_and(|c| c["reason"] == "NewReplicaSetAvailable")
                && status["replicas"] == status["updatedReplicas"];
            if !already_complete {
                let complete = status["updatedReplicas"] == replicas
                    && status["replicas"] == replicas
                    && status["availableReplicas"] == replicas;
                let progressed = progressed(&d["status"], &status);
                if complete {
                    let msg = match &rs_name {
                        Some(n) => format!("ReplicaSet {n:?} has successfully progressed."),
                        None => format!("Deployment {name:?} has successfully progressed."),
                    };
                    set_condition(
                        &mut status,
                        "Progressing",
                        "True",
                        "NewReplicaSetAvailable",
                        &msg,
                        &at,
                    );
                } else if progressed || progress_note.is_some() {
                    let msg = match &rs_name {
                        Some(n) => format!("ReplicaSet {n:?} is progressing."),
                        None => format!("Deployment {name:?} is progressing."),
                    };
                    // Progress moves lastUpdateTime even under the same reason.
                    let transition = current
                        .as_ref()
                        .filter(|c| c["status"] == "True")
                        .map(|c| c["lastTransitionTime"].clone());
                    if progress_note.is_none() {
                        remove_condition(&mut status, "Progressing");
                        set_condition(
                            &mut status,
                            "Progressing",
                            "True",
                            "ReplicaSetUpdated",
                            &msg,
                            &at,
                        );
                        if let Some(t) = transition {
                            if let Some(c) = status["conditions"]
                                .as_array_mut()
                                .and_then(|c| c.iter_mut().find(|c| c["type"] == "Progressing"))
                            {
                                c["lastTransitionTime"] = t;
                            }
                        }
                    }
                } else if let Some(c) = &current {
                    let since = time_at(&c["lastUpdateTime"]).unwrap_or(now);
                    let due = plus_secs(since, secs);
                    if c["reason"] != "ProgressDeadlineExceeded" && due < now {
                        let msg = match &rs_name {
                            Some(n) => format!("ReplicaSet {n:?} has timed out progressing."),
                            None => format!("Deployment {name:?} has timed out progressing."),
                        };
                        set_condition(
                            &mut status,
                            "Progressing",
                            "False",
                            "ProgressDeadlineExceeded",
                            &msg,
                            &at,
                        );
                    }
                }
            }
            // A rollout in progress is checked again when its deadline passes.
            if let Some(c) = status_condition(&status, "Progressing") {
                if c["status"] == "True" && c["reason"] != "NewReplicaSetAvailable" {
                    let since = time_at(&c["lastUpdateTime"]).unwrap_or(now);
                    self.timers
                        .at(key, plus_secs(since, secs) + Duration::from_secs(1));
                }
            }
        }
        if status["conditions"]
            .as_array()
            .is_some_and(|c| c.is_empty())
            || status["conditions"].is_null()
        {
            if let Some(m) = status.as_object_mut() {
                m.remove("conditions");
            }
        }
        for f in [
            "readyReplicas",
            "availableReplicas",
            "unavailableReplicas",
            "updatedReplicas",
            "replicas",
        ] {
            if status[f] == 0 && f != "replicas" {
                if let Some(m) = status.as_object_mut() {
                    m.remove(f);
                }
            }
        }
        let revision = new_rs.as_ref().map(|r| r.revision);
        if let Some(rev) = revision.filter(|r| *r != revision_of(&d)) {
            round.wrote |= CONTROLLER_MANAGER
                .update(
                    state,
                    "apps",
                    "deployments",
                    &ns,
                    &name,
                    "",
                    Some(&uid),
                    |o| {
                        if !o["metadata"]["annotations"].is_object() {
                            o["metadata"]["annotations"] = json!({});
                        }
                        if o["metadata"]["annotations"][REVISION] == rev.to_string().as_str() {
                            return false;
                        }
                        o["metadata"]["annotations"][REVISION] = json!(rev.to_string());
                        true
                    },
                )
                .await?;
        }
        let wrote = round.wrote;
        CONTROLLER_MANAGER
            .update(
                state,
                "apps",
                "deployments",
                &ns,
                &name,
                "status",
                Some(&uid),
                |o| {
                    if o["status"] == status {
                        return false;
                    }
                    o["status"] = status.clone();
                    true
                },
            )
            .await?;
        if wrote {
            self.expect.wait_for_store(state, key).await;
        }
        Ok(())
    }

    /// Create the new ReplicaSet with `replicas`. None when its name is taken by another
    /// template (the collision count moves up and the next round tries another name).
    async fn create_new(
        &self,
        state: &Arc<Backend>,
        d: &Value,
        revision: i64,
        replicas: i64,
        collision_bump: &mut bool,
    ) -> ApiResult<Option<Rs>> {
        let ns = namespace_of(d);
        let collision = d["status"]["collisionCount"].as_i64();
        let template = without_hash(&d["spec"]["template"]);
        let hash = template_hash(&template, collision);
        let name = format!("{}-{hash}", name_of(d));
        let mut t = template.clone();
        if !t["metadata"]["labels"].is_object() {
            t["metadata"]["labels"] = json!({});
        }
        t["metadata"]["labels"][HASH_LABEL] = json!(hash);
        let mut selector = d["spec"]["selector"].clone();
        if !selector["matchLabels"].is_object() {
            selector["matchLabels"] = json!({});
        }
        selector["matchLabels"][HASH_LABEL] = json!(hash);
        let mut labels = d["spec"]["template"]["metadata"]["labels"].clone();
        if !labels.is_object() {
            labels = json!({});
        }
        labels[HASH_LABEL] = json!(hash);
        let mut annotations: serde_json::Map<String, Value> = annotations_to_copy(d)
            .into_iter()
            .map(|(k, v)| (k, json!(v)))
            .collect();
        let (surge, _) = fenceposts(d);
        annotations.insert(REVISION.into(), json!(revision.to_string()));
        annotations.insert(DESIRED_REPLICAS.into(), json!(replicas_of(d).to_string()));
        annotations.insert(
            MAX_REPLICAS.into(),
            json!((replicas_of(d) + surge).to_string()),
        );
        let mut spec = json!({
            "replicas": replicas,
            "selector": selector,
            "template": t,
        });
        if let Some(m) = d["spec"]["minReadySeconds"].as_i64() {
            spec["minReadySeconds"] = json!(m);
        }
        let rs = json!({
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": name,
                "namespace": ns,
                "labels": labels,
                "annotations": annotations,
                "ownerReferences": [controller_ref(d, "apps/v1", "Deployment")],
            },
            "spec": spec,
        });
        let scope = CONTROLLER_MANAGER.scope(state, "apps", "replicasets", ns, "")?;
        match store::create(&scope, rs, &Default::default()).await {
            Ok(created) => Ok(Some(Rs::of(&Arc::new(created)))),
            Err(e) if e.code == http::StatusCode::CONFLICT => {
                // Taken: by our own ReplicaSet (seen at the next round), or by another
                // template's (a hash collision).
                let existing = store::get(&scope, &name).await?;
                match existing {
                    Some((o, _))
                        if controller_of(&o).is_some_and(|r| r["uid"] == uid_of(d))
                            && without_hash(&o["spec"]["template"]) == template =>
                    {
                        Ok(Some(Rs::of(&Arc::new(o))))
                    }
                    _ => {
                        *collision_bump = true;
                        Ok(None)
                    }
                }
            }
            Err(e) if e.code == http::StatusCode::FORBIDDEN => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// kube's reconcileOldReplicaSets: unhealthy old replicas first, then old ones oldest
    /// first, keeping `replicas - maxUnavailable` available.
    async fn scale_down_old(
        &self,
        round: &mut Round<'_>,
        d: &Value,
        new_rs: &Rs,
        old: &mut [Rs],
    ) -> ApiResult<()> {
        let old_count: i64 = old.iter().map(|r| r.replicas).sum();
        if old_count == 0 {
            return Ok(());
        }
        let all_count = old_count + new_rs.replicas;
        let min_available = replicas_of(d) - max_unavailable(d);
        let new_unavailable = (new_rs.replicas - new_rs.available).max(0);
        let max_scaled_down = all_count - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return Ok(());
        }
        // Unhealthy replicas first.
        let mut cleaned = 0;
        for rs in old.iter_mut() {
            if cleaned >= max_scaled_down {
                break;
            }
            if rs.replicas == 0 || rs.replicas == rs.available {
                continue;
            }
            let n = (max_scaled_down - cleaned).min(rs.replicas - rs.available);
            let to = rs.replicas - n;
            round.scale(rs, to).await?;
            cleaned += n;
        }
        // Then available ones, while enough stay available.
        let available: i64 =
            old.iter().map(|r| r.available.min(r.replicas)).sum::<i64>() + new_rs.available;
        if available <= min_available {
            return Ok(());
        }
        let mut budget = (available - min_available).min(max_scaled_down - cleaned);
        for rs in old.iter_mut() {
            if budget <= 0 {
                break;
            }
            if rs.replicas == 0 {
                continue;
            }
            let n = rs.replicas.min(budget);
            let to = rs.replicas - n;
            round.scale(rs, to).await?;
            budget -= n;
        }
        Ok(())
    }

    /// kube's scale(): one active ReplicaSet takes the new size; when saturated old ones go to
    /// 0; during a rollout the change is shared out in proportion.
    async fn scale(
        &self,
        round: &mut Round<'_>,
        d: &Value,
        new_rs: &mut Option<Rs>,
        old: &mut [Rs],
    ) -> ApiResult<()> {
        let replicas = replicas_of(d);
        let active: usize = new_rs
            .iter()
            .chain(old.iter())
            .filter(|r| r.replicas > 0)
            .count();
        if active <= 1 {
            // The active one; else the new one; else the latest old one.
            let old_active = old.iter().position(|r| r.replicas > 0);
            let latest_old = (0..old.len()).max_by(|a, b| old[*a].created.cmp(&old[*b].created));
            let target: Option<&mut Rs> = if new_rs.as_ref().is_some_and(|n| n.replicas > 0) {
                new_rs.as_mut()
            } else if let Some(i) = old_active {
                old.get_mut(i)
            } else if new_rs.is_some() {
                new_rs.as_mut()
            } else {
                latest_old.and_then(|i| old.get_mut(i))
            };
            if let Some(rs) = target {
                let sized = rs.obj["metadata"]["annotations"][DESIRED_REPLICAS]
                    == replicas.to_string().as_str();
                if rs.replicas != replicas || !sized {
                    round.scale(rs, replicas).await?;
                }
            }
            return Ok(());
        }
        if let Some(n) = new_rs.as_ref() {
            if n.replicas == replicas && n.available == replicas {
                for rs in old.iter_mut().filter(|r| r.replicas > 0) {
                    round.scale(rs, 0).await?;
                }
                return Ok(());
            }
        }
        // Proportional.
        let (surge, _) = fenceposts(d);
        let allowed = replicas + surge;
        let current: i64 = new_rs.iter().chain(old.iter()).map(|r| r.replicas).sum();
        let mut to_add = allowed - current;
        if to_add == 0 {
            return Ok(());
        }
        let mut sets: Vec<&mut Rs> = new_rs
            .iter_mut()
            .chain(old.iter_mut())
            .filter(|r| r.replicas > 0)
            .collect();
        // Scaling up: larger and newer first; down: larger and older first.
        if to_add > 0 {
            sets.sort_by(|a, b| b.replicas.cmp(&a.replicas).then(b.created.cmp(&a.created)));
        } else {
            sets.sort_by(|a, b| b.replicas.cmp(&a.replicas).then(a.created.cmp(&b.created)));
        }
        let shares: Vec<i64> = sets
            .iter()
            .map(|r| {
                if current > 0 {
                    r.replicas * (allowed - current) / current
                } else {
                    0
                }
            })
            .collect();
        let mut sizes: Vec<i64> = sets.iter().map(|r| r.replicas).collect();
        for (i, s) in shares.iter().enumerate() {
            sizes[i] += s;
            to_add -= s;
        }
        if let Some(first) = sizes.first_mut() {
            *first += to_add;
        }
        for (rs, size) in sets.into_iter().zip(sizes) {
            let size = size.max(0);
            if size != rs.replicas {
                round.scale(rs, size).await?;
            }
        }
        Ok(())
    }

    /// Delete old ReplicaSets at 0 beyond `revisionHistoryLimit`, oldest revision first.
    async fn cleanup(&self, state: &Arc<Backend>, d: &Value, old: &[Rs]) -> ApiResult<()> {
        let limit = d["spec"]["revisionHistoryLimit"]
            .as_i64()
            .unwrap_or(10)
            .max(0) as usize;
        let mut idle: Vec<&Rs> = old
            .iter()
            .filter(|r| {
                r.replicas == 0
                    && r.status_replicas == 0
                    && r.obj["status"]["observedGeneration"].as_i64().unwrap_or(0)
                        >= generation_of(&r.obj)
            })
            .collect();
        if idle.len() <= limit {
            return Ok(());
        }
        idle.sort_by_key(|r| (r.revision, r.created.clone()));
        let ns = namespace_of(d);
        for rs in &idle[..idle.len() - limit] {
            CONTROLLER_MANAGER
                .delete(
                    state,
                    "apps",
                    "replicasets",
                    ns,
                    &rs.name,
                    Some(uid_of(&rs.obj)),
                    Some(Propagation::Background),
                    None,
                )
                .await?;
        }
        Ok(())
    }
}

/// kube's NewRSNewReplicas for a rolling update: grow up to `replicas + maxSurge` in total.
fn new_rs_replicas(replicas: i64, surge: i64, total: i64, current_new: i64) -> i64 {
    let max_total = replicas + surge;
    if total >= max_total {
        return current_new;
    }
    let up = max_total - total;
    current_new + up.min(replicas - current_new).max(0)
}

/// Did the Deployment's replicas change since its active ReplicaSets were sized
/// (`desired-replicas`)?
fn is_scaling_event(d: &Value, new_rs: Option<&Rs>, old: &[Rs]) -> bool {
    let want = replicas_of(d).to_string();
    new_rs
        .into_iter()
        .chain(old.iter())
        .filter(|r| r.replicas > 0)
        .any(|r| {
            r.obj["metadata"]["annotations"][DESIRED_REPLICAS]
                .as_str()
                .is_some_and(|v| v != want)
        })
}

/// kube's DeploymentProgressing: more updated, fewer old, more ready or more available.
fn progressed(old: &Value, new: &Value) -> bool {
    let n = |s: &Value, f: &str| s[f].as_i64().unwrap_or(0);
    let old_old = n(old, "replicas") - n(old, "updatedReplicas");
    let new_old = n(new, "replicas") - n(new, "updatedReplicas");
    n(new, "updatedReplicas") > n(old, "updatedReplicas")
        || new_old < old_old
        || n(new, "readyReplicas") > n(old, "readyReplicas")
        || n(new, "availableReplicas") > n(old, "availableReplicas")
}

fn annotations_to_copy(d: &Value) -> BTreeMap<String, String> {
    d["metadata"]["annotations"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| !skip_annotation(k))
        .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
        .collect()
}

#[async_trait::async_trait]
impl Reconciler for DeploymentController {
    const CONTROLLER: Controller = Controller::Deployment;

    fn interest(&self) -> Interest {
        Interest::caches([&self.deployments, &self.replica_sets, &self.pods])
    }

    fn expectations(&mut self) -> Option<&mut Expectations> {
        Some(&mut self.expect)
    }

    fn observe(&mut self, _state: &Backend, msg: &Msg, queue: &mut Queue) {
        for ch in self.deployments.observe(msg) {
            queue.add(ch.key);
        }
        let mut keys = Vec::new();
        for ch in self.replica_sets.observe(msg) {
            for o in [&ch.old, &ch.new].into_iter().flatten() {
                if let Some(k) = self.deployment_of_rs(o) {
                    keys.push(k);
                } else if controller_of(o).is_none() && !store::is_deleting(o) {
                    // An orphan: the Deployments that would adopt it.
                    for (k, d) in self.deployments.in_namespace(namespace_of(o)) {
                        if selects(&selector_of(d), o) {
                            keys.push(k.clone());
                        }
                    }
                }
            }
        }
        // Pods matter to Recreate: it waits for the old ones to stop.
        for ch in self.pods.observe(msg) {
            let gone_or_done = ch.new.as_deref().is_none_or(is_terminal);
            if !gone_or_done {
                continue;
            }
            let Some(old) = ch.old.as_deref() else {
                continue;
            };
            if let Some(rs) = controller_named(old, "ReplicaSet") {
                let rs_key = self.replica_sets.key(namespace_of(old), rs);
                if let Some(k) = self
                    .replica_sets
                    .get(&rs_key)
                    .and_then(|r| self.deployment_of_rs(r))
                {
                    if self
                        .deployments
                        .get(&k)
                        .is_some_and(|d| d["spec"]["strategy"]["type"] == "Recreate")
                    {
                        keys.push(k);
                    }
                }
            }
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
        self.sync(state, key).await
    }

    fn timers(&mut self) -> Option<&mut Timers> {
        Some(&mut self.timers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fenceposts_round_surge_up_and_unavailable_down() {
        let d = |r: i64, s: Value, u: Value| json!({"spec": {"replicas": r, "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": s, "maxUnavailable": u}}}});
        assert_eq!(fenceposts(&d(10, json!("25%"), json!("25%"))), (3, 2));
        assert_eq!(fenceposts(&d(1, json!("25%"), json!("25%"))), (1, 0));
        assert_eq!(fenceposts(&d(3, json!(0), json!(0))), (0, 1));
        assert_eq!(fenceposts(&d(4, json!(2), json!("50%"))), (2, 2));
    }

    #[test]
    fn the_new_replica_set_grows_within_the_surge() {
        assert_eq!(new_rs_replicas(3, 1, 3, 0), 1);
        assert_eq!(new_rs_replicas(3, 1, 4, 1), 1);
        assert_eq!(new_rs_replicas(3, 1, 2, 1), 3);
        assert_eq!(new_rs_replicas(10, 3, 0, 0), 10);
    }
}
