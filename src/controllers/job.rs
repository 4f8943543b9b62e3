//! The Job controller (kube-controller-manager's `job` controller, 1.35) and, in the same
//! reconciler, its `ttl-after-finished` controller.
//!
//! # Pods
//!
//! A Job's pods come from `spec.template`, controlled by the Job (controller reference) and
//! labelled by the template, which the registry's defaulting gave the Job's name and uid
//! (`batch.kubernetes.io/job-name`, `batch.kubernetes.io/controller-uid` and the legacy
//! `job-name`, `controller-uid`). Each carries the `batch.kubernetes.io/job-tracking`
//! finalizer while it counts for the Job: once a pod is finished (or failed, or the Job is
//! done) its uid goes to `status.uncountedTerminatedPods`, the finalizer is removed, then the
//! uid moves to the `succeeded` / `failed` counters, as kube does, so a finished pod deleted by
//! anyone is never lost or counted twice. Finished pods are kept. A pod whose Job is gone or
//! finished loses the finalizer too (kube's orphan-pod queue).
//!
//! `NonIndexed` pods are named `<job>-<suffix>`; `Indexed` pods `<job>-<index>-<suffix>`, with
//! the `batch.kubernetes.io/job-completion-index` annotation and label, the hostname
//! `<job>-<index>` and the `JOB_COMPLETION_INDEX` environment variable; `completedIndexes`
//! lists the indexes done. At most `parallelism` pods run, never more than the completions
//! left; with `podReplacementPolicy: Failed` (or a `podFailurePolicy`) a terminating pod is
//! replaced only once it has failed. After a pod failure new pods wait kube's backoff (10 s,
//! doubling, at most 10 min, from the last failure by the server clock).
//!
//! # Ending
//!
//! As kube 1.35 writes it: `SuccessCriteriaMet` then `Complete` (reason `CompletionsReached`,
//! or `SuccessPolicy` when a `successPolicy` rule matched), with `completionTime`;
//! `FailureTarget` then `Failed` once no pod is terminating, reason `BackoffLimitExceeded`
//! (more failed pods than `backoffLimit`, or, with `restartPolicy: OnFailure`, container
//! restarts reaching it), `DeadlineExceeded` (`activeDeadlineSeconds` after `startTime`, a timer
//! on the server clock) or `PodFailurePolicy` (a `FailJob` rule; `Ignore` rules do not count a
//! failure, `Count` rules do). The active pods of a Job that ends are deleted. `suspend`
//! deletes the active pods (they do not count as failures) under the `Suspended` condition;
//! resuming resets `startTime`.
//!
//! # TTL after finished
//!
//! kube runs `ttl-after-finished` as a controller of its own; here the Job controller does its
//! work: a finished Job with `ttlSecondsAfterFinished` is deleted (background propagation,
//! its uid as precondition) once the server clock passes the time of its `Complete` or
//! `Failed` condition plus the TTL.
//!
//! Not done: `backoffLimitPerIndex` / `maxFailedIndexes` and the `FailIndex` action, the
//! adoption of orphan pods that match a Job's selector, Events.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use super::workload::{
    controller_of, controller_ref, is_active, is_ready, is_terminal, phase_of, plus_secs,
    pod_from_template, stamp, time_at, uid_of, Cache, Expectations, Timers, CONTROLLER_MANAGER,
};
use super::{is_deleting, Controller, Interest, Msg, Queue, Reconciler};
use crate::registry::store::Propagation;
use crate::registry::Backend;
use crate::status::ApiResult;

/// The finalizer a Job's pods carry until they are counted.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// The annotation and label of an Indexed Job's pod: its completion index.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
/// The value of `spec.managedBy` that means this controller (as when unset).
const MANAGED_BY_US: &str = "kubernetes.io/job-controller";
/// The pod failure backoff: 10 s, doubling per failure since the last success, at most 10 min.
const POD_FAILURE_BACKOFF: Duration = Duration::from_secs(10);
const MAX_POD_FAILURE_BACKOFF: Duration = Duration::from_secs(600);
/// At most this many uids wait in `uncountedTerminatedPods` (kube's MaxUncountedPods).
const MAX_UNCOUNTED: usize = 500;
/// At most this many pods created or deleted per sync (kube's MaxPodCreateDeletePerSync).
const MAX_PER_SYNC: usize = 500;
/// kube's MaxGeneratedNameLength: the longest generateName prefix kept.
const MAX_PREFIX: usize = 58;

const COMPLETIONS_REACHED: &str = "CompletionsReached";
const COMPLETIONS_REACHED_MESSAGE: &str = "Reached expected number of succeeded pods";

// ---------------------------------------------------------------------------------------------
// Reading a Job and its pods.

/// What the controller reads of a Job's spec.
struct Spec<'a> {
    parallelism: i64,
    completions: Option<i64>,
    backoff_limit: i64,
    indexed: bool,
    suspend: bool,
    deadline: Option<i64>,
    failure_policy: Option<&'a Value>,
    success_policy: Option<&'a Value>,
    only_replace_failed: bool,
    on_failure: bool,
}

impl<'a> Spec<'a> {
    fn of(job: &'a Value) -> Spec<'a> {
        let s = &job["spec"];
        let failure_policy = s.get("podFailurePolicy").filter(|v| v.is_object());
        Spec {
            parallelism: s["parallelism"].as_i64().unwrap_or(1).max(0),
            completions: s["completions"].as_i64().map(|c| c.max(0)),
            backoff_limit: s["backoffLimit"].as_i64().unwrap_or(6),
            indexed: s["completionMode"] == "Indexed",
            suspend: s["suspend"] == true,
            deadline: s["activeDeadlineSeconds"].as_i64(),
            failure_policy,
            success_policy: s.get("successPolicy").filter(|v| v.is_object()),
            only_replace_failed: s["podReplacementPolicy"] == "Failed" || failure_policy.is_some(),
            on_failure: s["template"]["spec"]["restartPolicy"] == "OnFailure",
        }
    }

    /// An Indexed Job's pod with an index in range (every pod of a NonIndexed Job).
    fn valid_index(&self, pod: &Value) -> bool {
        !self.indexed || completion_index(pod).is_some_and(|i| i < self.completions.unwrap_or(0))
    }
}

/// Is the Job finished (Complete or Failed True)?
pub(crate) fn is_finished(job: &Value) -> bool {
    finished_condition(job).is_some()
}

/// The Complete or Failed condition that is True.
pub(crate) fn finished_condition(job: &Value) -> Option<&Value> {
    job["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| (c["type"] == "Complete" || c["type"] == "Failed") && c["status"] == "True")
}

fn true_condition<'a>(job: &'a Value, ty: &str) -> Option<&'a Value> {
    job["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == ty && c["status"] == "True")
}

fn has_finalizer(pod: &Value) -> bool {
    pod["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| f.iter().any(|f| f == TRACKING_FINALIZER))
}

/// The pod's completion index (its annotation; None when absent or not a number).
fn completion_index(pod: &Value) -> Option<i64> {
    pod["metadata"]["annotations"][COMPLETION_INDEX]
        .as_str()?
        .parse::<i64>()
        .ok()
        .filter(|i| *i >= 0)
}

/// The uid of the Job controlling `pod`, if its controller is a Job.
fn job_owner_uid(pod: &Value) -> Option<&str> {
    controller_of(pod)
        .filter(|r| r["kind"] == "Job")
        .and_then(|r| r["uid"].as_str())
}

/// kube's isPodFailed: Failed, or (unless only failed pods are replaced) being deleted
/// without having succeeded.
fn is_pod_failed(pod: &Value, spec: &Spec) -> bool {
    if phase_of(pod) == "Failed" {
        return true;
    }
    !spec.only_replace_failed && is_deleting(pod) && phase_of(pod) != "Succeeded"
}

/// When the pod finished (kube's getFinishedTime): a terminal pod's Ready condition turning
/// False, else its containers' last termination, else when its deletion was asked for, else
/// its creation.
fn finish_time(pod: &Value) -> SystemTime {
    let ready_false = super::workload::condition(pod, "Ready")
        .filter(|c| is_terminal(pod) && c["status"] == "False")
        .and_then(|c| time_at(&c["lastTransitionTime"]));
    let statuses: Vec<&Value> = pod["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    let containers = if statuses.is_empty() {
        None
    } else {
        statuses
            .iter()
            .map(|c| time_at(&c["state"]["terminated"]["finishedAt"]))
            .collect::<Option<Vec<_>>>()
            .and_then(|t| t.into_iter().max())
    };
    let deleted = time_at(&pod["metadata"]["deletionTimestamp"]).map(|t| {
        let grace = pod["metadata"]["deletionGracePeriodSeconds"]
            .as_i64()
            .unwrap_or(0);
        plus_secs(t, -grace)
    });
    ready_false
        .or(containers)
        .or(deleted)
        .or_else(|| time_at(&pod["metadata"]["creationTimestamp"]))
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// kube's backoff record of a Job: the pod failures since the last success and when the last
/// one happened, from the pods seen finishing (kept in memory, as kube keeps it).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Backoff {
    failures: u32,
    last_failure: Option<SystemTime>,
}

impl Backoff {
    /// kube's newBackoffRecord: the record after these newly finished pods.
    fn after(self, succeeded: &[&Arc<Value>], failed: &[&Arc<Value>]) -> Backoff {
        let mut failed_at: Vec<SystemTime> = failed.iter().map(|p| finish_time(p)).collect();
        failed_at.sort();
        let last_success = succeeded.iter().map(|p| finish_time(p)).max();
        match last_success {
            None if failed_at.is_empty() => self,
            None => Backoff {
                failures: self
                    .failures
                    .saturating_add(u32::try_from(failed_at.len()).unwrap_or(u32::MAX)),
                last_failure: failed_at.last().copied(),
            },
            Some(success) => {
                let after: Vec<SystemTime> =
                    failed_at.into_iter().filter(|t| *t > success).collect();
                Backoff {
                    failures: u32::try_from(after.len()).unwrap_or(u32::MAX),
                    last_failure: after.last().copied(),
                }
            }
        }
    }

    /// When pods may be created again (None: now).
    fn until(self) -> Option<SystemTime> {
        let last = self.last_failure.filter(|_| self.failures > 0)?;
        let mut backoff = POD_FAILURE_BACKOFF;
        for _ in 1..self.failures {
            backoff = backoff.saturating_mul(2);
            if backoff >= MAX_POD_FAILURE_BACKOFF {
                backoff = MAX_POD_FAILURE_BACKOFF;
                break;
            }
        }
        last.checked_add(backoff)
    }
}

/// The container restarts of the running and pending pods (kube's pastBackoffLimitOnFailure).
fn past_backoff_limit_on_failure(spec: &Spec, pods: &[Arc<Value>]) -> bool {
    if !spec.on_failure {
        return false;
    }
    let restarts: i64 = pods
        .iter()
        .filter(|p| matches!(phase_of(p), "Running" | "Pending"))
        .flat_map(|p| {
            ["initContainerStatuses", "containerStatuses"]
                .into_iter()
                .flat_map(move |k| p["status"][k].as_array().into_iter().flatten())
        })
        .map(|c| c["restartCount"].as_i64().unwrap_or(0))
        .fold(0i64, i64::saturating_add);
    if spec.backoff_limit == 0 {
        restarts > 0
    } else {
        restarts >= spec.backoff_limit
    }
}

// ---------------------------------------------------------------------------------------------
// The pod failure policy.

/// What a rule of the pod failure policy says about a failed pod.
struct PolicyMatch {
    /// A FailJob rule's message.
    fail_job: Option<String>,
    /// Does the failure count towards the backoff limit (not for Ignore)?
    counts: bool,
}

/// kube's matchPodFailurePolicy: the first rule matching the pod's terminated containers
/// (non-zero exit codes, `In` / `NotIn`, optionally one container) or its conditions.
fn match_failure_policy(policy: Option<&Value>, pod: &Value) -> PolicyMatch {
    let no_match = PolicyMatch {
        fail_job: None,
        counts: true,
    };
    let Some(policy) = policy else {
        return no_match;
    };
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    for (index, rule) in policy["rules"].as_array().into_iter().flatten().enumerate() {
        let action = rule["action"].as_str().unwrap_or_default();
        let what = if rule["onExitCodes"].is_object() {
            exit_code_match(pod, &rule["onExitCodes"]).map(|(container, code)| {
                format!(
                    "Container {container} for pod {ns}/{name} failed with exit code {code} matching {action} rule at index {index}"
                )
            })
        } else if let Some(patterns) = rule["onPodConditions"].as_array() {
            condition_match(pod, patterns).map(|ty| {
                format!(
                    "Pod {ns}/{name} has condition {ty} matching {action} rule at index {index}"
                )
            })
        } else {
            None
        };
        let Some(message) = what else {
            continue;
        };
        match action {
            "Ignore" => {
                return PolicyMatch {
                    fail_job: None,
                    counts: false,
                }
            }
            "Count" => return no_match,
            "FailJob" => {
                return PolicyMatch {
                    fail_job: Some(message),
                    counts: true,
                }
            }
            // FailIndex needs backoffLimitPerIndex, which is not built: the rule falls through.
            _ => {}
        }
    }
    no_match
}

/// The first terminated container (then init container) whose non-zero exit code the
/// requirement matches: (its name, the code).
fn exit_code_match(pod: &Value, req: &Value) -> Option<(String, i64)> {
    let only = req["containerName"].as_str();
    let values: Vec<i64> = req["values"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_i64)
        .collect();
    let operator = req["operator"].as_str().unwrap_or_default();
    ["containerStatuses", "initContainerStatuses"]
        .iter()
        .flat_map(|k| pod["status"][*k].as_array().into_iter().flatten())
        .find_map(|c| {
            let code = c["state"]["terminated"]["exitCode"].as_i64()?;
            let name = c["name"].as_str().unwrap_or_default();
            if only.is_some_and(|o| o != name) || code == 0 {
                return None;
            }
            let matched = match operator {
                "In" => values.contains(&code),
                "NotIn" => !values.contains(&code),
                _ => false,
            };
            matched.then(|| (name.to_string(), code))
        })
}

/// The type of the first pod condition a pattern matches.
fn condition_match(pod: &Value, patterns: &[Value]) -> Option<String> {
    pod["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| {
            patterns
                .iter()
                .any(|p| p["type"] == c["type"] && p["status"] == c["status"])
        })
        .and_then(|c| c["type"].as_str().map(str::to_string))
}

// ---------------------------------------------------------------------------------------------
// Completed indexes: sorted, disjoint, inclusive intervals (kube's orderedIntervals).

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Intervals(Vec<(i64, i64)>);

impl Intervals {
    /// kube's parseIndexesFromString: "1,3-5"; indexes at or past `completions` dropped.
    fn parse(s: &str, completions: i64) -> Intervals {
        let mut out = Intervals::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (a, b) = match part.split_once('-') {
                Some((a, b)) => (a.parse::<i64>(), b.parse::<i64>()),
                None => (part.parse::<i64>(), part.parse::<i64>()),
            };
            let (Ok(a), Ok(b)) = (a, b) else {
                continue;
            };
            let b = b.min(completions - 1);
            if a < 0 || a > b {
                continue;
            }
            out.insert_range(a, b);
        }
        out
    }

    fn insert_range(&mut self, a: i64, b: i64) {
        let mut merged = (a, b);
        let mut kept = Vec::with_capacity(self.0.len() + 1);
        for &(x, y) in &self.0 {
            if y.saturating_add(1) < merged.0 || merged.1.saturating_add(1) < x {
                kept.push((x, y));
            } else {
                merged = (merged.0.min(x), merged.1.max(y));
            }
        }
        kept.push(merged);
        kept.sort_unstable();
        self.0 = kept;
    }

    fn insert(&mut self, i: i64) {
        if !self.contains(i) {
            self.insert_range(i, i);
        }
    }

    fn contains(&self, i: i64) -> bool {
        self.0.iter().any(|&(a, b)| a <= i && i <= b)
    }

    /// The end of the interval holding `i`, if one does.
    fn end_of(&self, i: i64) -> Option<i64> {
        self.0
            .iter()
            .find(|&&(a, b)| a <= i && i <= b)
            .map(|&(_, b)| b)
    }

    fn total(&self) -> i64 {
        self.0.iter().map(|(a, b)| b - a + 1).sum()
    }

    fn render(&self) -> String {
        self.0
            .iter()
            .map(|&(a, b)| {
                if a == b {
                    a.to_string()
                } else {
                    format!("{a}-{b}")
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// kube's matchSuccessPolicy: the message of the first rule the succeeded indexes meet.
fn match_success_policy(
    policy: Option<&Value>,
    succeeded: &Intervals,
    completions: i64,
) -> Option<String> {
    let policy = policy?;
    for (index, rule) in policy["rules"].as_array().into_iter().flatten().enumerate() {
        let wanted_count = rule["succeededCount"].as_i64();
        let met = match rule["succeededIndexes"].as_str() {
            Some(indexes) => {
                let wanted = Intervals::parse(indexes, completions);
                let done = wanted
                    .0
                    .iter()
                    .map(|&(a, b)| (a..=b).filter(|i| succeeded.contains(*i)).count() as i64)
                    .sum::<i64>();
                match wanted_count {
                    Some(n) => done >= n,
                    None => done == wanted.total() && wanted.total() > 0,
                }
            }
            None => wanted_count.is_some_and(|n| succeeded.total() >= n),
        };
        if met {
            return Some(format!("Matched rules at index {index}"));
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// The status the controller writes.

/// A condition to be (kube's newCondition: both times now).
#[derive(Clone, Debug)]
struct Cond {
    ty: &'static str,
    reason: String,
    message: String,
}

impl Cond {
    fn new(ty: &'static str, reason: &str, message: &str) -> Cond {
        Cond {
            ty,
            reason: reason.to_string(),
            message: message.to_string(),
        }
    }

    fn value(&self, now: &str) -> Value {
        json!({
            "type": self.ty,
            "status": "True",
            "lastProbeTime": now,
            "lastTransitionTime": now,
            "reason": self.reason,
            "message": self.message,
        })
    }
}

/// kube's ensureJobConditionStatus: replace the condition of `ty` when its status, reason or
/// message differ (both times now); add it unless it would be False. True when changed.
fn ensure_condition(
    conds: &mut Vec<Value>,
    ty: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: &str,
) -> bool {
    let fresh = json!({
        "type": ty,
        "status": status,
        "lastProbeTime": now,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    });
    if let Some(c) = conds.iter_mut().find(|c| c["type"] == ty) {
        if c["status"] != status || c["reason"] != reason || c["message"] != message {
            *c = fresh;
            return true;
        }
        return false;
    }
    if status != "False" {
        conds.push(fresh);
        return true;
    }
    false
}

/// The fields of a Job's status this controller owns.
#[derive(Clone, Debug, PartialEq)]
struct Status {
    active: i64,
    ready: i64,
    terminating: i64,
    succeeded: i64,
    failed: i64,
    start_time: Option<Value>,
    completion_time: Option<Value>,
    completed_indexes: Option<String>,
    uncounted_succeeded: Vec<String>,
    uncounted_failed: Vec<String>,
    conditions: Vec<Value>,
}

impl Status {
    fn of(job: &Value) -> Status {
        let s = &job["status"];
        let n = |k: &str| s[k].as_i64().unwrap_or(0);
        let uids = |k: &str| -> Vec<String> {
            s["uncountedTerminatedPods"][k]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|u| u.as_str().map(str::to_string))
                .collect()
        };
        Status {
            active: n("active"),
            ready: n("ready"),
            terminating: n("terminating"),
            succeeded: n("succeeded"),
            failed: n("failed"),
            start_time: s.get("startTime").filter(|v| !v.is_null()).cloned(),
            completion_time: s.get("completionTime").filter(|v| !v.is_null()).cloned(),
            completed_indexes: s["completedIndexes"]
                .as_str()
                .filter(|c| !c.is_empty())
                .map(str::to_string),
            uncounted_succeeded: uids("succeeded"),
            uncounted_failed: uids("failed"),
            conditions: s["conditions"].as_array().cloned().unwrap_or_default(),
        }
    }

    /// Write these fields into `obj.status` (Go's omitempty for the counters); whether
    /// anything changed.
    fn apply(&self, obj: &mut Value) -> bool {
        if !obj["status"].is_object() {
            obj["status"] = json!({});
        }
        let before = obj["status"].clone();
        let Some(s) = obj["status"].as_object_mut() else {
            return false;
        };
        let mut put = |k: &str, v: Option<Value>| match v {
            Some(v) => {
                s.insert(k.to_string(), v);
            }
            None => {
                s.remove(k);
            }
        };
        let counter = |n: i64| (n != 0).then(|| json!(n));
        put("active", counter(self.active));
        put("ready", Some(json!(self.ready)));
        put("terminating", Some(json!(self.terminating)));
        put("succeeded", counter(self.succeeded));
        put("failed", counter(self.failed));
        put("startTime", self.start_time.clone());
        put("completionTime", self.completion_time.clone());
        put(
            "completedIndexes",
            self.completed_indexes.clone().map(Value::from),
        );
        let mut uncounted = serde_json::Map::new();
        if !self.uncounted_succeeded.is_empty() {
            uncounted.insert("succeeded".into(), json!(self.uncounted_succeeded));
        }
        if !self.uncounted_failed.is_empty() {
            uncounted.insert("failed".into(), json!(self.uncounted_failed));
        }
        put("uncountedTerminatedPods", Some(Value::Object(uncounted)));
        put(
            "conditions",
            (!self.conditions.is_empty()).then(|| Value::Array(self.conditions.clone())),
        );
        obj["status"] != before
    }

    /// kube's cleanUncountedPodsWithoutFinalizers: uncounted uids whose pod no longer has
    /// the finalizer move to the counters.
    fn count_released(&mut self, with_finalizer: &HashSet<String>) {
        let before = self.uncounted_succeeded.len();
        self.uncounted_succeeded
            .retain(|u| with_finalizer.contains(u));
        self.succeeded += (before - self.uncounted_succeeded.len()) as i64;
        let before = self.uncounted_failed.len();
        self.uncounted_failed.retain(|u| with_finalizer.contains(u));
        self.failed += (before - self.uncounted_failed.len()) as i64;
    }
}

// ---------------------------------------------------------------------------------------------
// New pods.

/// kube's podGenerateNameWithIndex.
fn generate_name_with_index(job: &str, index: i64) -> String {
    let append = format!("-{index}-");
    let keep = MAX_PREFIX.saturating_sub(append.len());
    let base: String = if job.len() + append.len() > MAX_PREFIX {
        job.chars().take(keep).collect()
    } else {
        job.to_string()
    };
    format!("{base}{append}")
}

/// A pod for `job` (with its completion index, for an Indexed Job).
fn new_pod(job: &Value, ns: &str, name: &str, index: Option<i64>) -> Value {
    let mut template = job["spec"]["template"].clone();
    if index.is_some() {
        for list in ["containers", "initContainers"] {
            for c in template["spec"][list].as_array_mut().into_iter().flatten() {
                let has = c["env"]
                    .as_array()
                    .is_some_and(|e| e.iter().any(|v| v["name"] == "JOB_COMPLETION_INDEX"));
                if has || !c.is_object() {
                    continue;
                }
                if !c["env"].is_array() {
                    c["env"] = json!([]);
                }
                if let Some(env) = c["env"].as_array_mut() {
                    env.push(json!({
                        "name": "JOB_COMPLETION_INDEX",
                        "valueFrom": {"fieldRef": {
                            "fieldPath": format!("metadata.labels['{COMPLETION_INDEX}']"),
                        }},
                    }));
                }
            }
        }
    }
    let mut pod = pod_from_template(&template, ns, controller_ref(job, "batch/v1", "Job"));
    let meta = &mut pod["metadata"];
    let mut finalizers: Vec<Value> = meta["finalizers"].as_array().cloned().unwrap_or_default();
    if !finalizers.iter().any(|f| f == TRACKING_FINALIZER) {
        finalizers.push(json!(TRACKING_FINALIZER));
    }
    meta["finalizers"] = Value::Array(finalizers);
    match index {
        Some(i) => {
            for k in ["annotations", "labels"] {
                if !meta[k].is_object() {
                    meta[k] = json!({});
                }
                meta[k][COMPLETION_INDEX] = json!(i.to_string());
            }
            meta["generateName"] = json!(generate_name_with_index(name, i));
            pod["spec"]["hostname"] = json!(format!("{name}-{i}"));
        }
        None => {
            let prefix: String = format!("{name}-").chars().take(MAX_PREFIX).collect();
            meta["generateName"] = json!(prefix);
        }
    }
    pod
}

/// kube's controller.ActivePods order: the pods to delete first come first (unscheduled,
/// pending, not ready, more restarts, newer).
fn removal_order(a: &Value, b: &Value) -> std::cmp::Ordering {
    let assigned = |p: &Value| {
        p["spec"]["nodeName"]
            .as_str()
            .is_some_and(|n| !n.is_empty())
    };
    let phase = |p: &Value| match phase_of(p) {
        "Pending" => 0,
        "Running" => 2,
        _ => 1,
    };
    let restarts = |p: &Value| -> i64 {
        p["status"]["containerStatuses"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| c["restartCount"].as_i64().unwrap_or(0))
            .max()
            .unwrap_or(0)
    };
    let created = |p: &Value| time_at(&p["metadata"]["creationTimestamp"]);
    assigned(a)
        .cmp(&assigned(b))
        .then(phase(a).cmp(&phase(b)))
        .then(is_ready(a).cmp(&is_ready(b)))
        .then(restarts(b).cmp(&restarts(a)))
        .then(created(b).cmp(&created(a)))
}

// ---------------------------------------------------------------------------------------------
// The controller.

/// The Job controller, with ttl-after-finished.
pub struct JobController {
    jobs: Cache,
    pods: Cache,
    /// A Job's uid → the keys of the pods it controls.
    owned: HashMap<String, BTreeSet<String>>,
    /// A pod's key → the uid of the Job controlling it.
    owner: HashMap<String, String>,
    expect: Expectations,
    timers: Timers,
    /// Each Job's pod failure backoff (by key).
    backoffs: HashMap<String, Backoff>,
}

impl Default for JobController {
    fn default() -> Self {
        JobController::new()
    }
}

impl JobController {
    /// A Job controller with empty caches.
    pub fn new() -> JobController {
        JobController {
            jobs: Cache::new("batch", "jobs"),
            pods: Cache::new("", "pods"),
            owned: HashMap::new(),
            owner: HashMap::new(),
            expect: Expectations::default(),
            timers: Timers::default(),
            backoffs: HashMap::new(),
        }
    }

    /// Is this pod's finalizer no Job's business any more (no Job controls it, its Job is
    /// gone or finished)?
    fn orphaned(&self, pod: &Value) -> bool {
        let Some(r) = controller_of(pod) else {
            return true;
        };
        if r["kind"] != "Job" || r["apiVersion"] != "batch/v1" {
            return false;
        }
        let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = r["name"].as_str().unwrap_or_default();
        match self.jobs.get(&self.jobs.key(ns, name)) {
            Some(job) => uid_of(job) != r["uid"].as_str().unwrap_or_default() || is_finished(job),
            None => true,
        }
    }

    fn index_pod(&mut self, key: &str, pod: Option<&Value>) {
        if let Some(uid) = self.owner.remove(key) {
            if let Some(set) = self.owned.get_mut(&uid) {
                set.remove(key);
                if set.is_empty() {
                    self.owned.remove(&uid);
                }
            }
        }
        if let Some(uid) = pod.and_then(job_owner_uid) {
            self.owned
                .entry(uid.to_string())
                .or_default()
                .insert(key.to_string());
            self.owner.insert(key.to_string(), uid.to_string());
        }
    }

    /// The pods `job` controls, from the cache.
    fn pods_of(&self, job: &Value) -> Vec<Arc<Value>> {
        let uid = uid_of(job);
        self.owned
            .get(uid)
            .into_iter()
            .flatten()
            .filter_map(|k| self.pods.get(k).cloned())
            .filter(|p| job_owner_uid(p) == Some(uid))
            .collect()
    }

    /// Remove the tracking finalizer from a pod; true when it is gone (or the pod is).
    async fn release(state: &Arc<Backend>, pod: &Value) -> ApiResult<bool> {
        let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        let result = CONTROLLER_MANAGER
            .update(state, "", "pods", ns, name, "", Some(uid_of(pod)), |obj| {
                let Some(f) = obj["metadata"]["finalizers"].as_array_mut() else {
                    return false;
                };
                let before = f.len();
                f.retain(|f| f != TRACKING_FINALIZER);
                f.len() != before
            })
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.code == http::StatusCode::NOT_FOUND => Ok(true),
            Err(e) => Err(e),
        }
    }

    async fn delete_pod(state: &Arc<Backend>, pod: &Value) -> ApiResult<()> {
        let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        CONTROLLER_MANAGER
            .delete(state, "", "pods", ns, name, Some(uid_of(pod)), None, None)
            .await
    }

    /// A pod key queued for its finalizer: remove it if no running Job needs it.
    async fn sync_orphan(&mut self, state: &Arc<Backend>, key: &str) -> ApiResult<()> {
        let Some(pod) = self.pods.get(key).cloned() else {
            return Ok(());
        };
        if !has_finalizer(&pod) || !self.orphaned(&pod) {
            return Ok(());
        }
        Self::release(state, &pod).await?;
        Ok(())
    }

    /// A finished Job: its pods' finalizers (a backup, as kube's), then its TTL.
    async fn sync_finished(
        &mut self,
        state: &Arc<Backend>,
        key: &str,
        job: &Value,
    ) -> ApiResult<bool> {
        let mut wrote = false;
        let holding = self.pods_of(job);
        for pod in holding
            .iter()
            .filter(|p| has_finalizer(p))
            .take(MAX_PER_SYNC)
        {
            Self::release(state, pod).await?;
            wrote = true;
        }
        let Some(ttl) = job["spec"]["ttlSecondsAfterFinished"].as_i64() else {
            return Ok(wrote);
        };
        if is_deleting(job) {
            return Ok(wrote);
        }
        let Some(finished) =
            finished_condition(job).and_then(|c| time_at(&c["lastTransitionTime"]))
        else {
            return Ok(wrote);
        };
        let expire = plus_secs(finished, ttl);
        if state.clock.now() < expire {
            self.timers.at(key, expire);
            return Ok(wrote);
        }
        let (ns, name) = self.jobs.split(key);
        CONTROLLER_MANAGER
            .delete(
                state,
                "batch",
                "jobs",
                ns,
                name,
                Some(uid_of(job)),
                Some(Propagation::Background),
                None,
            )
            .await?;
        Ok(true)
    }

    /// kube's syncJob for a Job that is not finished; whether anything was written.
    async fn sync_job(&mut self, state: &Arc<Backend>, key: &str, job: &Value) -> ApiResult<bool> {
        let now = state.clock.now();
        let now_s = stamp(now);
        let (ns, name) = {
            let (ns, name) = self.jobs.split(key);
            (ns.to_string(), name.to_string())
        };
        let spec = Spec::of(job);
        let completions = spec.completions.unwrap_or(0);
        let mut pods = self.pods_of(job);
        if spec.indexed {
            pods.sort_by_key(|p| completion_index(p));
        }
        let mut st = Status::of(job);
        let original = st.clone();
        let uncounted: HashSet<String> = st
            .uncounted_succeeded
            .iter()
            .chain(&st.uncounted_failed)
            .cloned()
            .collect();
        let uncounted_failed: HashSet<String> = st.uncounted_failed.iter().cloned().collect();

        let active_pods: Vec<Arc<Value>> = pods.iter().filter(|p| is_active(p)).cloned().collect();
        let mut active = active_pods.len() as i64;
        let mut ready = active_pods.iter().filter(|p| is_ready(p)).count() as i64;
        let mut terminating = pods
            .iter()
            .filter(|p| is_deleting(p) && !is_terminal(p))
            .count() as i64;
        let new_finished = |p: &&Arc<Value>| {
            has_finalizer(p) && !uncounted.contains(uid_of(p)) && spec.valid_index(p)
        };
        let new_succeeded: Vec<&Arc<Value>> = pods
            .iter()
            .filter(new_finished)
            .filter(|p| phase_of(p) == "Succeeded")
            .collect();
        let new_failed: Vec<&Arc<Value>> = pods
            .iter()
            .filter(new_finished)
            .filter(|p| is_pod_failed(p, &spec))
            .collect();
        let new_failed_counted = new_failed
            .iter()
            .filter(|p| match_failure_policy(spec.failure_policy, p).counts)
            .count() as i64;
        let mut succeeded =
            st.succeeded + new_succeeded.len() as i64 + st.uncounted_succeeded.len() as i64;
        let failed = st.failed + new_failed_counted + st.uncounted_failed.len() as i64;
        let backoff = self
            .backoffs
            .get(key)
            .copied()
            .unwrap_or_default()
            .after(&new_succeeded, &new_failed);

        if st.start_time.is_none() && !spec.suspend {
            st.start_time = Some(json!(now_s));
        }

        // How the Job ends, if it does.
        let mut finished: Option<Cond> = true_condition(job, "SuccessCriteriaMet").map(|c| {
            Cond::new(
                "SuccessCriteriaMet",
                c["reason"].as_str().unwrap_or_default(),
                c["message"].as_str().unwrap_or_default(),
            )
        });
        if finished.is_none() {
            if let Some(c) = true_condition(job, "FailureTarget") {
                finished = Some(Cond::new(
                    "Failed",
                    c["reason"].as_str().unwrap_or_default(),
                    c["message"].as_str().unwrap_or_default(),
                ));
            } else if let Some(message) = pods
                .iter()
                .filter(|p| spec.failure_policy.is_some() && is_pod_failed(p, &spec))
                .find_map(|p| match_failure_policy(spec.failure_policy, p).fail_job)
            {
                finished = Some(Cond::new("FailureTarget", "PodFailurePolicy", &message));
            }
        }
        let start = st.start_time.as_ref().and_then(time_at);
        if finished.is_none() {
            let deadline_at = spec.deadline.zip(start).map(|(d, s)| plus_secs(s, d));
            if failed > spec.backoff_limit || past_backoff_limit_on_failure(&spec, &pods) {
                finished = Some(Cond::new(
                    "FailureTarget",
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                ));
            } else if deadline_at.is_some_and(|at| now >= at) && !spec.suspend {
                finished = Some(Cond::new(
                    "FailureTarget",
                    "DeadlineExceeded",
                    "Job was active longer than specified deadline",
                ));
            } else if let Some(at) = deadline_at.filter(|_| !spec.suspend) {
                self.timers.at(key, at);
            }
        }
        let mut prev_indexes = Intervals::default();
        let mut succeeded_indexes = Intervals::default();
        if spec.indexed {
            prev_indexes = Intervals::parse(
                st.completed_indexes.as_deref().unwrap_or_default(),
                completions,
            );
            succeeded_indexes = prev_indexes.clone();
            for p in &pods {
                if phase_of(p) == "Succeeded" && has_finalizer(p) && spec.valid_index(p) {
                    if let Some(i) = completion_index(p) {
                        succeeded_indexes.insert(i);
                    }
                }
            }
            succeeded = succeeded_indexes.total();
            if finished.is_none() {
                if let Some(message) =
                    match_success_policy(spec.success_policy, &succeeded_indexes, completions)
                {
                    finished = Some(Cond::new("SuccessCriteriaMet", "SuccessPolicy", &message));
                }
            }
        }

        let mut wrote = false;
        if finished.is_some() {
            // The Job ends: its active pods go (their finalizers kept until they are counted).
            let mut deleted = 0;
            for p in active_pods.iter().take(MAX_PER_SYNC) {
                Self::delete_pod(state, p).await?;
                wrote = true;
                deleted += 1;
                if is_ready(p) {
                    ready -= 1;
                }
            }
            if deleted != active {
                finished = None;
            }
            active -= deleted;
            terminating += deleted;
        } else {
            let mut managed = false;
            if !is_deleting(job) {
                let (now_active, did_write) = self
                    .manage_job(
                        state,
                        key,
                        job,
                        &spec,
                        &pods,
                        &active_pods,
                        backoff,
                        succeeded,
                        &succeeded_indexes,
                        (&mut ready, &mut terminating),
                    )
                    .await?;
                active = now_active;
                wrote |= did_write;
                managed = true;
            }
            let complete = match spec.completions {
                None => succeeded > 0 && active == 0,
                Some(c) => succeeded >= c && active == 0,
            };
            if complete {
                finished = Some(Cond::new(
                    "SuccessCriteriaMet",
                    COMPLETIONS_REACHED,
                    COMPLETIONS_REACHED_MESSAGE,
                ));
            } else if managed {
                if spec.suspend {
                    ensure_condition(
                        &mut st.conditions,
                        "Suspended",
                        "True",
                        "JobSuspended",
                        "Job suspended",
                        &now_s,
                    );
                } else if ensure_condition(
                    &mut st.conditions,
                    "Suspended",
                    "False",
                    "JobResumed",
                    "Job resumed",
                    &now_s,
                ) {
                    st.start_time = Some(json!(now_s));
                }
            }
        }
        st.active = active;
        st.ready = ready.max(0);
        st.terminating = terminating;

        // kube's trackJobStatusAndRemoveFinalizers.
        let mut with_finalizer: HashSet<String> = pods
            .iter()
            .filter(|p| has_finalizer(p))
            .map(|p| uid_of(p).to_string())
            .collect();
        st.count_released(&with_finalizer);
        let in_uncounted_s: HashSet<String> = st.uncounted_succeeded.iter().cloned().collect();
        let mut release = Vec::new();
        let mut new_indexes = Vec::new();
        let mut reached_max = false;
        let ends_in_failure = finished
            .as_ref()
            .is_some_and(|f| f.ty != "SuccessCriteriaMet");
        for p in pods.iter().filter(|p| has_finalizer(p)) {
            let uid = uid_of(p).to_string();
            let failed_pod = is_pod_failed(p, &spec);
            let can_release =
                is_deleting(job) || finished.is_some() || phase_of(p) == "Succeeded" || failed_pod;
            if !can_release {
                continue;
            }
            release.push(p.clone());
            if phase_of(p) == "Succeeded" && !uncounted_failed.contains(&uid) {
                if spec.indexed {
                    if let Some(i) = completion_index(p).filter(|_| spec.valid_index(p)) {
                        if !prev_indexes.contains(i) {
                            new_indexes.push(i);
                        }
                    }
                } else if !in_uncounted_s.contains(&uid) {
                    st.uncounted_succeeded.push(uid);
                }
            } else if (failed_pod || ends_in_failure)
                && !uncounted_failed.contains(&uid)
                && spec.valid_index(p)
                && match_failure_policy(spec.failure_policy, p).counts
            {
                st.uncounted_failed.push(uid);
            }
            if new_indexes.len() + st.uncounted_succeeded.len() + st.uncounted_failed.len()
                >= MAX_UNCOUNTED
            {
                reached_max = true;
                break;
            }
        }
        if spec.indexed {
            let mut all = prev_indexes.clone();
            for i in new_indexes {
                all.insert(i);
            }
            st.succeeded = all.total();
            let rendered = all.render();
            st.completed_indexes = (!rendered.is_empty()).then_some(rendered);
        }
        if let Some(f) = finished.take() {
            finished = Some(match f.ty {
                "FailureTarget" => {
                    st.conditions.push(f.value(&now_s));
                    Cond { ty: "Failed", ..f }
                }
                "SuccessCriteriaMet" => {
                    if true_condition(job, "SuccessCriteriaMet").is_none()
                        && !st
                            .conditions
                            .iter()
                            .any(|c| c["type"] == "SuccessCriteriaMet")
                    {
                        st.conditions.push(f.value(&now_s));
                    }
                    Cond {
                        ty: "Complete",
                        ..f
                    }
                }
                _ => f,
            });
        }
        let uid = uid_of(job).to_string();
        let write_status = |st: Status| {
            let (ns, name, uid) = (ns.clone(), name.clone(), uid.clone());
            async move {
                CONTROLLER_MANAGER
                    .update(
                        state,
                        "batch",
                        "jobs",
                        &ns,
                        &name,
                        "status",
                        Some(&uid),
                        |obj| st.apply(obj),
                    )
                    .await
            }
        };
        let mut written = original.clone();
        if st != written {
            wrote |= write_status(st.clone()).await?;
            written = st.clone();
            // The newly finished pods are in the status now: the record counts them.
            self.backoffs.insert(key.to_string(), backoff);
        }
        for p in &release {
            if Self::release(state, p).await? {
                with_finalizer.remove(uid_of(p));
                wrote = true;
            }
        }
        st.count_released(&with_finalizer);
        if let Some(f) = finished.filter(|_| !reached_max) {
            let uncounted_left = st.uncounted_succeeded.len() + st.uncounted_failed.len();
            if uncounted_left == 0 && st.terminating == 0 {
                ensure_condition(
                    &mut st.conditions,
                    f.ty,
                    "True",
                    &f.reason,
                    &f.message,
                    &now_s,
                );
                if f.ty == "Complete" {
                    st.completion_time = Some(json!(now_s));
                }
            }
        }
        if st != written {
            wrote |= write_status(st).await?;
        }
        Ok(wrote)
    }

    /// kube's manageJob: pods deleted while suspended or above what is wanted, created below;
    /// the active count after, and whether anything was written.
    #[allow(clippy::too_many_arguments)]
    async fn manage_job(
        &mut self,
        state: &Arc<Backend>,
        key: &str,
        job: &Value,
        spec: &Spec<'_>,
        pods: &[Arc<Value>],
        active_pods: &[Arc<Value>],
        backoff: Backoff,
        succeeded: i64,
        succeeded_indexes: &Intervals,
        (ready, terminating): (&mut i64, &mut i64),
    ) -> ApiResult<(i64, bool)> {
        let mut active = active_pods.len() as i64;
        let (ns, name) = self.jobs.split(key);
        let (ns, name) = (ns.to_string(), name.to_string());
        let remove = |p: &Arc<Value>, ready: &mut i64, terminating: &mut i64| {
            if is_ready(p) {
                *ready -= 1;
            }
            *terminating += 1;
        };
        if spec.suspend {
            for p in active_pods.iter().take(MAX_PER_SYNC) {
                Self::release(state, p).await?;
                Self::delete_pod(state, p).await?;
                remove(p, ready, terminating);
                active -= 1;
            }
            return Ok((active, !active_pods.is_empty()));
        }
        let want = match spec.completions {
            None if succeeded > 0 => active,
            None => spec.parallelism,
            Some(c) => (c - succeeded).min(spec.parallelism).max(0),
        };
        // Pods to delete: an Indexed Job's pods with a bad or repeated index, then the least
        // advanced pods above what is wanted.
        let mut doomed: Vec<Arc<Value>> = Vec::new();
        let mut rest: Vec<Arc<Value>> = Vec::new();
        if spec.indexed {
            let mut seen = HashSet::new();
            let mut sorted: Vec<Arc<Value>> = active_pods.to_vec();
            sorted.sort_by(|a, b| {
                completion_index(a)
                    .cmp(&completion_index(b))
                    .then(removal_order(b, a))
            });
            for p in sorted {
                match completion_index(&p).filter(|_| spec.valid_index(&p)) {
                    Some(i) if seen.insert(i) => rest.push(p),
                    _ => doomed.push(p),
                }
            }
        } else {
            rest = active_pods.to_vec();
        }
        let at_least = (active - want).max(0) as usize;
        if doomed.len() < at_least {
            rest.sort_by(|a, b| removal_order(a, b));
            let more = at_least - doomed.len();
            doomed.extend(rest.into_iter().take(more));
        }
        if !doomed.is_empty() {
            for p in doomed.iter().take(MAX_PER_SYNC) {
                Self::release(state, p).await?;
                Self::delete_pod(state, p).await?;
                remove(p, ready, terminating);
                active -= 1;
            }
            return Ok((active, true));
        }
        let waiting_replacement = if spec.only_replace_failed {
            *terminating
        } else {
            0
        };
        let diff = want - waiting_replacement - active;
        if diff <= 0 {
            return Ok((active, false));
        }
        if let Some(at) = backoff.until() {
            if at > state.clock.now() {
                self.timers.at(key, at);
                return Ok((active, false));
            }
        }
        let diff = (diff as usize).min(MAX_PER_SYNC);
        let indexes: Vec<Option<i64>> = if spec.indexed {
            let busy: HashSet<i64> = pods
                .iter()
                .filter(|p| {
                    is_active(p) || (spec.only_replace_failed && is_deleting(p) && !is_terminal(p))
                })
                .filter_map(|p| completion_index(p))
                .collect();
            first_pending(
                succeeded_indexes,
                &busy,
                diff,
                spec.completions.unwrap_or(0),
            )
            .into_iter()
            .map(Some)
            .collect()
        } else {
            vec![None; diff]
        };
        let mut wrote = false;
        for index in indexes {
            let pod = new_pod(job, &ns, &name, index);
            if CONTROLLER_MANAGER
                .create(state, "", "pods", &ns, pod)
                .await?
                .is_some()
            {
                active += 1;
                wrote = true;
            } else {
                // The namespace is going, or a quota refuses: nothing more this round.
                break;
            }
        }
        Ok((active, wrote))
    }
}

/// The lowest `count` indexes below `completions` that neither succeeded nor have a pod.
fn first_pending(
    done: &Intervals,
    busy: &HashSet<i64>,
    count: usize,
    completions: i64,
) -> Vec<i64> {
    let mut out = Vec::new();
    let mut i = 0;
    while out.len() < count && i < completions {
        if let Some(end) = done.end_of(i) {
            i = end + 1;
            continue;
        }
        if !busy.contains(&i) {
            out.push(i);
        }
        i += 1;
    }
    out
}

#[async_trait::async_trait]
impl Reconciler for JobController {
    const CONTROLLER: Controller = Controller::Job;

    fn interest(&self) -> Interest {
        Interest::caches([&self.jobs, &self.pods])
    }

    fn expectations(&mut self) -> Option<&mut Expectations> {
        Some(&mut self.expect)
    }

    fn observe(&mut self, _state: &Backend, msg: &Msg, queue: &mut Queue) {
        for c in self.jobs.observe(msg) {
            queue.add(c.key.clone());
            let gone_or_done = c.new.as_ref().is_none_or(|j| is_finished(j));
            if gone_or_done {
                // Its pods' finalizers are no Job's business any more.
                let uids = [c.old.as_deref(), c.new.as_deref()];
                for uid in uids.into_iter().flatten().map(uid_of) {
                    for pod in self.owned.get(uid).into_iter().flatten() {
                        if self.pods.get(pod).is_some_and(|p| has_finalizer(p)) {
                            queue.add(pod.clone());
                        }
                    }
                }
            }
        }
        for c in self.pods.observe(msg) {
            self.index_pod(&c.key, c.new.as_deref());
            for pod in [c.old.as_deref(), c.new.as_deref()].into_iter().flatten() {
                if let Some(r) = controller_of(pod).filter(|r| r["kind"] == "Job") {
                    let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
                    let name = r["name"].as_str().unwrap_or_default();
                    queue.add(self.jobs.key(ns, name));
                }
            }
            if let Some(pod) = c.new.as_deref() {
                if has_finalizer(pod) && self.orphaned(pod) {
                    queue.add(c.key.clone());
                }
            }
        }
    }

    async fn reconcile(
        &mut self,
        state: &Arc<Backend>,
        key: &str,
        _queue: &mut Queue,
    ) -> ApiResult<()> {
        if self.pods.owns(key) {
            return self.sync_orphan(state, key).await;
        }
        if !self.expect.satisfied(key) {
            return Ok(());
        }
        let Some(job) = self.jobs.get(key).cloned() else {
            self.backoffs.remove(key);
            return Ok(());
        };
        let managed_by = job["spec"]["managedBy"].as_str();
        if managed_by.is_some_and(|m| m != MANAGED_BY_US) {
            return Ok(());
        }
        let mode = job["spec"]["completionMode"].as_str();
        if mode.is_some_and(|m| m != "NonIndexed" && m != "Indexed") {
            return Ok(());
        }
        let wrote = if is_finished(&job) {
            self.backoffs.remove(key);
            self.sync_finished(state, key, &job).await?
        } else {
            self.sync_job(state, key, &job).await?
        };
        if wrote {
            self.expect.wait_for_store(state, key).await;
        }
        Ok(())
    }

    fn timers(&mut self) -> Option<&mut Timers> {
        Some(&mut self.timers)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn completed_indexes_are_intervals_as_kube_writes_them() {
        let mut i = Intervals::parse("0,2-4,9", 8);
        assert_eq!(i.render(), "0,2-4");
        assert_eq!(i.total(), 4);
        i.insert(1);
        assert_eq!(i.render(), "0-4");
        i.insert(6);
        i.insert(5);
        assert_eq!(i.render(), "0-6");
        assert!(Intervals::parse("x,3-1,-2", 10).0.is_empty());
        let busy: HashSet<i64> = [5].into_iter().collect();
        assert_eq!(first_pending(&i, &busy, 3, 10), vec![7, 8, 9]);
        assert_eq!(
            first_pending(&Intervals::default(), &busy, 2, 10),
            vec![0, 1]
        );
    }

    #[test]
    fn indexed_pod_names_keep_the_index_when_the_job_name_is_long() {
        assert_eq!(generate_name_with_index("pi", 3), "pi-3-");
        let long = "a".repeat(60);
        let g = generate_name_with_index(&long, 12);
        assert_eq!(g.len(), MAX_PREFIX);
        assert!(g.ends_with("-12-"));
    }

    #[test]
    fn pod_failure_policy_rules_match_exit_codes_and_conditions_in_order() {
        let policy = json!({"rules": [
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
            {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}},
            {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [1]}},
        ]});
        let pod = |code: i64, conds: Value| {
            json!({
                "metadata": {"namespace": "ns", "name": "p"},
                "status": {"phase": "Failed", "conditions": conds, "containerStatuses": [
                    {"name": "main", "state": {"terminated": {"exitCode": code}}}
                ]},
            })
        };
        let m = match_failure_policy(Some(&policy), &pod(42, json!([])));
        assert_eq!(
            m.fail_job.as_deref(),
            Some("Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 1")
        );
        let m = match_failure_policy(
            Some(&policy),
            &pod(42, json!([{"type": "DisruptionTarget", "status": "True"}])),
        );
        assert!(!m.counts && m.fail_job.is_none());
        let m = match_failure_policy(Some(&policy), &pod(1, json!([])));
        assert!(m.counts && m.fail_job.is_none());
    }

    #[test]
    fn success_policies_match_indexes_and_counts() {
        let done = Intervals::parse("0-2", 10);
        let by_index = json!({"rules": [{"succeededIndexes": "0,1"}]});
        assert_eq!(
            match_success_policy(Some(&by_index), &done, 10).as_deref(),
            Some("Matched rules at index 0")
        );
        let by_count = json!({"rules": [{"succeededIndexes": "5-9"}, {"succeededCount": 3}]});
        assert_eq!(
            match_success_policy(Some(&by_count), &done, 10).as_deref(),
            Some("Matched rules at index 1")
        );
        let unmet = json!({"rules": [{"succeededIndexes": "0-5", "succeededCount": 4}]});
        assert_eq!(match_success_policy(Some(&unmet), &done, 10), None);
    }
}
