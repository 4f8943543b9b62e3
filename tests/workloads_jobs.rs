//! The Job and CronJob controllers through the API, with simulated nodes
//! (`Server::builder().nodes(2)`): completions and parallelism, Indexed Jobs, the backoff limit
//! (failed pods, container restarts), the active deadline, the pod failure policy, suspension,
//! the TTL after finished; CronJob schedules, time zones, concurrency policies, the starting
//! deadline and history limits. Time is a ManualClock moved by the test; waits are settled().
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use common::*;
use http::Method;
use kubox::ManualClock;
use serde_json::{json, Value};

const JOBS: &str = "/apis/batch/v1/namespaces/default/jobs";
const CRONJOBS: &str = "/apis/batch/v1/namespaces/default/cronjobs";
const PODS: &str = "/api/v1/namespaces/default/pods";

/// 2027-01-15T08:00:00Z: on a five-minute boundary.
const START: u64 = 1_800_000_000;

async fn server() -> (ServerHandle, ManualClock) {
    let clock = ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(START));
    let h = Server::builder()
        .memory()
        .clock(Arc::new(clock.clone()))
        .nodes(2)
        .start()
        .await
        .unwrap();
    h.settled().await;
    (h, clock)
}

async fn advance(h: &ServerHandle, clock: &ManualClock, secs: u64) {
    clock.advance(Duration::from_secs(secs));
    h.settled().await;
}

/// A Job whose pods run `restartPolicy` with these pod annotations (kubox.dev/run-for,
/// kubox.dev/exit-code) and the spec fields of `extra`.
fn job(name: &str, restart: &str, annotations: Value, extra: Value) -> Value {
    let mut spec = json!({
        "template": {
            "metadata": {"annotations": annotations},
            "spec": {"restartPolicy": restart, "containers": [{"name": "c", "image": "busybox"}]},
        },
    });
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": spec})
}

async fn create(h: &ServerHandle, path: &str, obj: &Value) -> Value {
    let r = post_json(h, path, obj).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

async fn get_job(h: &ServerHandle, name: &str) -> Value {
    let r = get(h, &format!("{JOBS}/{name}")).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

async fn exists(h: &ServerHandle, path: &str) -> bool {
    get(h, path).await.status == 200
}

/// The Job's pods (by kube's job-name label), oldest first.
async fn pods_of(h: &ServerHandle, job: &str) -> Vec<Value> {
    let list = get(
        h,
        &format!("{PODS}?labelSelector=batch.kubernetes.io%2Fjob-name%3D{job}"),
    )
    .await
    .json();
    let mut pods = list["items"].as_array().cloned().unwrap_or_default();
    pods.sort_by_key(|p| {
        (
            p["metadata"]["creationTimestamp"]
                .as_str()
                .unwrap()
                .to_string(),
            p["metadata"]["name"].as_str().unwrap().to_string(),
        )
    });
    pods
}

fn phases(pods: &[Value]) -> Vec<&str> {
    pods.iter()
        .map(|p| p["status"]["phase"].as_str().unwrap_or(""))
        .collect()
}

fn condition<'a>(obj: &'a Value, ty: &str) -> &'a Value {
    obj["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == ty))
        .unwrap_or(&Value::Null)
}

fn condition_types(obj: &Value) -> Vec<String> {
    obj["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            format!(
                "{}={}",
                c["type"].as_str().unwrap(),
                c["status"].as_str().unwrap()
            )
        })
        .collect()
}

async fn patch_merge(h: &ServerHandle, path: &str, body: Value) {
    let r = patch(h, path, "application/merge-patch+json", &body.to_string()).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

// ---------------------------------------------------------------------------------------------
// Jobs.

#[tokio::test]
async fn a_job_runs_parallel_pods_until_its_completions_then_is_complete() {
    let (h, clock) = server().await;
    let created = create(
        &h,
        JOBS,
        &job(
            "pi",
            "Never",
            json!({"kubox.dev/run-for": "5s"}),
            json!({"completions": 3, "parallelism": 2}),
        ),
    )
    .await;
    let uid = created["metadata"]["uid"].as_str().unwrap();
    h.settled().await;

    let pods = pods_of(&h, "pi").await;
    assert_eq!(phases(&pods), ["Running", "Running"]);
    for p in &pods {
        let m = &p["metadata"];
        assert!(m["name"].as_str().unwrap().starts_with("pi-"), "{m}");
        assert_eq!(m["generateName"], "pi-");
        assert_eq!(m["labels"]["batch.kubernetes.io/job-name"], "pi");
        assert_eq!(m["labels"]["job-name"], "pi");
        assert_eq!(m["labels"]["batch.kubernetes.io/controller-uid"], uid);
        assert_eq!(m["labels"]["controller-uid"], uid);
        assert_eq!(m["finalizers"], json!(["batch.kubernetes.io/job-tracking"]));
        let owner = &m["ownerReferences"][0];
        assert_eq!(owner["kind"], "Job");
        assert_eq!(owner["apiVersion"], "batch/v1");
        assert_eq!(owner["uid"], uid);
        assert_eq!(owner["controller"], true);
        assert_eq!(owner["blockOwnerDeletion"], true);
    }
    let j = get_job(&h, "pi").await;
    assert_eq!(j["status"]["active"], 2, "{j}");
    assert_eq!(j["status"]["ready"], 2);
    assert_eq!(j["status"]["terminating"], 0);
    assert_eq!(j["status"]["startTime"], "2027-01-15T08:00:00Z");
    assert_eq!(j["status"]["uncountedTerminatedPods"], json!({}));
    assert!(j["status"].get("succeeded").is_none());
    assert!(j["status"].get("conditions").is_none());

    // Two finish; only one more is needed.
    advance(&h, &clock, 5).await;
    let pods = pods_of(&h, "pi").await;
    assert_eq!(phases(&pods), ["Succeeded", "Succeeded", "Running"]);
    assert_eq!(
        pods[0]["metadata"].get("finalizers"),
        None,
        "counted: {}",
        pods[0]
    );
    let j = get_job(&h, "pi").await;
    assert_eq!(j["status"]["succeeded"], 2, "{j}");
    assert_eq!(j["status"]["active"], 1);

    advance(&h, &clock, 5).await;
    let j = get_job(&h, "pi").await;
    let s = &j["status"];
    assert_eq!(s["succeeded"], 3, "{j}");
    assert!(s.get("active").is_none());
    assert_eq!(s["ready"], 0);
    assert_eq!(s["terminating"], 0);
    assert_eq!(s["completionTime"], "2027-01-15T08:00:10Z");
    assert_eq!(
        condition_types(&j),
        ["SuccessCriteriaMet=True", "Complete=True"]
    );
    for ty in ["SuccessCriteriaMet", "Complete"] {
        let c = condition(&j, ty);
        assert_eq!(c["reason"], "CompletionsReached");
        assert_eq!(c["message"], "Reached expected number of succeeded pods");
        assert_eq!(c["lastTransitionTime"], "2027-01-15T08:00:10Z");
        assert_eq!(c["lastProbeTime"], "2027-01-15T08:00:10Z");
    }
    // Finished pods are kept, without the finalizer.
    let pods = pods_of(&h, "pi").await;
    assert_eq!(phases(&pods), ["Succeeded", "Succeeded", "Succeeded"]);
    assert!(pods
        .iter()
        .all(|p| p["metadata"].get("finalizers").is_none()));
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_job_without_completions_is_complete_when_one_pod_succeeds() {
    let (h, _clock) = server().await;
    let j = job("work-queue", "Never", json!({}), json!({"parallelism": 3}));
    assert!(j["spec"].get("completions").is_none());
    create(&h, JOBS, &j).await;
    h.settled().await;
    let j = get_job(&h, "work-queue").await;
    assert_eq!(phases(&pods_of(&h, "work-queue").await), ["Succeeded"; 3]);
    assert_eq!(j["status"]["succeeded"], 3, "{j}");
    assert_eq!(condition(&j, "Complete")["status"], "True");
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_indexed_job_gives_each_pod_its_index_and_lists_the_completed_indexes() {
    let (h, clock) = server().await;
    create(
        &h,
        JOBS,
        &job(
            "idx",
            "Never",
            json!({"kubox.dev/run-for": "5s"}),
            json!({"completions": 4, "parallelism": 3, "completionMode": "Indexed"}),
        ),
    )
    .await;
    h.settled().await;
    let mut pods = pods_of(&h, "idx").await;
    pods.sort_by_key(|p| {
        p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
            .as_str()
            .unwrap()
            .to_string()
    });
    assert_eq!(pods.len(), 3);
    for (i, p) in pods.iter().enumerate() {
        let m = &p["metadata"];
        let index = i.to_string();
        assert_eq!(
            m["annotations"]["batch.kubernetes.io/job-completion-index"],
            index.as_str()
        );
        assert_eq!(
            m["labels"]["batch.kubernetes.io/job-completion-index"],
            index.as_str()
        );
        assert_eq!(m["generateName"], format!("idx-{i}-"));
        assert!(m["name"]
            .as_str()
            .unwrap()
            .starts_with(&format!("idx-{i}-")));
        assert_eq!(p["spec"]["hostname"], format!("idx-{i}"));
        let env = &p["spec"]["containers"][0]["env"][0];
        assert_eq!(env["name"], "JOB_COMPLETION_INDEX");
        assert_eq!(
            env["valueFrom"]["fieldRef"]["fieldPath"],
            "metadata.labels['batch.kubernetes.io/job-completion-index']"
        );
    }
    advance(&h, &clock, 5).await;
    let j = get_job(&h, "idx").await;
    assert_eq!(j["status"]["completedIndexes"], "0-2", "{j}");
    assert_eq!(j["status"]["succeeded"], 3);
    assert_eq!(j["status"]["active"], 1);
    let last: Vec<Value> = pods_of(&h, "idx")
        .await
        .into_iter()
        .filter(|p| p["status"]["phase"] == "Running")
        .collect();
    assert_eq!(last.len(), 1);
    assert_eq!(last[0]["spec"]["hostname"], "idx-3");
    advance(&h, &clock, 5).await;
    let j = get_job(&h, "idx").await;
    assert_eq!(j["status"]["completedIndexes"], "0-3", "{j}");
    assert_eq!(j["status"]["succeeded"], 4);
    assert_eq!(condition(&j, "Complete")["status"], "True");
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn failed_pods_are_retried_after_a_backoff_until_the_backoff_limit_fails_the_job() {
    let (h, clock) = server().await;
    create(
        &h,
        JOBS,
        &job(
            "flaky",
            "Never",
            json!({"kubox.dev/exit-code": "1"}),
            json!({"backoffLimit": 2}),
        ),
    )
    .await;
    h.settled().await;
    assert_eq!(phases(&pods_of(&h, "flaky").await), ["Failed"]);
    let j = get_job(&h, "flaky").await;
    assert_eq!(j["status"]["failed"], 1, "{j}");
    assert!(j["status"].get("conditions").is_none(), "{j}");
    // The replacement waits 10 s after the failure, then 20 s after the next.
    advance(&h, &clock, 9).await;
    assert_eq!(pods_of(&h, "flaky").await.len(), 1);
    advance(&h, &clock, 1).await;
    assert_eq!(phases(&pods_of(&h, "flaky").await), ["Failed", "Failed"]);
    assert_eq!(get_job(&h, "flaky").await["status"]["failed"], 2);
    advance(&h, &clock, 19).await;
    assert_eq!(pods_of(&h, "flaky").await.len(), 2);
    advance(&h, &clock, 1).await;
    assert_eq!(phases(&pods_of(&h, "flaky").await), ["Failed"; 3]);

    let j = get_job(&h, "flaky").await;
    assert_eq!(j["status"]["failed"], 3, "{j}");
    assert_eq!(condition_types(&j), ["FailureTarget=True", "Failed=True"]);
    for ty in ["FailureTarget", "Failed"] {
        assert_eq!(condition(&j, ty)["reason"], "BackoffLimitExceeded");
        assert_eq!(
            condition(&j, ty)["message"],
            "Job has reached the specified backoff limit"
        );
    }
    assert!(j["status"].get("completionTime").is_none());
    assert!(j["status"].get("active").is_none());
    // Nothing more happens to a failed Job.
    advance(&h, &clock, 600).await;
    assert_eq!(pods_of(&h, "flaky").await.len(), 3);
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn with_restart_policy_on_failure_container_restarts_count_towards_the_backoff_limit() {
    let (h, clock) = server().await;
    create(
        &h,
        JOBS,
        &job(
            "crashy",
            "OnFailure",
            json!({"kubox.dev/exit-code": "1"}),
            json!({"backoffLimit": 2}),
        ),
    )
    .await;
    h.settled().await;
    let mut steps = 0;
    loop {
        let j = get_job(&h, "crashy").await;
        if condition(&j, "Failed")["status"] == "True" {
            assert_eq!(condition(&j, "Failed")["reason"], "BackoffLimitExceeded");
            // The restarting pod was deleted, and counts as failed.
            assert_eq!(j["status"]["failed"], 1, "{j}");
            break;
        }
        let pods = pods_of(&h, "crashy").await;
        assert_eq!(pods.len(), 1, "one pod restarting its container");
        let restarts = pods[0]["status"]["containerStatuses"][0]["restartCount"]
            .as_i64()
            .unwrap_or(0);
        assert!(
            restarts < 2,
            "restarts reached the limit, the Job is still on: {j}"
        );
        steps += 1;
        assert!(steps < 20, "the Job never failed");
        advance(&h, &clock, 10).await;
    }
    assert!(pods_of(&h, "crashy").await.is_empty());
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_active_deadline_fails_a_job_on_the_server_clock_and_deletes_its_pods() {
    let (h, clock) = server().await;
    create(
        &h,
        JOBS,
        &job(
            "slow",
            "Never",
            json!({"kubox.dev/run-for": "1h"}),
            json!({"activeDeadlineSeconds": 30, "parallelism": 2, "completions": 2}),
        ),
    )
    .await;
    h.settled().await;
    assert_eq!(phases(&pods_of(&h, "slow").await), ["Running", "Running"]);
    advance(&h, &clock, 29).await;
    assert!(get_job(&h, "slow").await["status"]
        .get("conditions")
        .is_none());
    advance(&h, &clock, 1).await;
    let j = get_job(&h, "slow").await;
    assert_eq!(
        condition_types(&j),
        ["FailureTarget=True", "Failed=True"],
        "{j}"
    );
    assert_eq!(condition(&j, "Failed")["reason"], "DeadlineExceeded");
    assert_eq!(
        condition(&j, "Failed")["message"],
        "Job was active longer than specified deadline"
    );
    assert_eq!(j["status"]["failed"], 2);
    assert_eq!(j["status"]["terminating"], 0);
    assert!(j["status"].get("active").is_none());
    assert!(pods_of(&h, "slow").await.is_empty());
    h.shutdown().await.unwrap();
}

fn policy_job(name: &str, exit_code: &str, backoff_limit: i64, rules: Value) -> Value {
    job(
        name,
        "Never",
        json!({"kubox.dev/exit-code": exit_code}),
        json!({
            "backoffLimit": backoff_limit,
            "podFailurePolicy": {"rules": rules},
            "podReplacementPolicy": "Failed",
        }),
    )
}

#[tokio::test]
async fn the_pod_failure_policy_fails_the_job_ignores_or_counts_failures_by_exit_code() {
    let (h, clock) = server().await;
    let rules = json!([
        {"action": "FailJob", "onExitCodes": {"containerName": "c", "operator": "In", "values": [42]}},
        {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [3]}},
        {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [0]}},
    ]);
    create(&h, JOBS, &policy_job("fatal", "42", 6, rules.clone())).await;
    create(&h, JOBS, &policy_job("ignored", "3", 0, rules.clone())).await;
    create(&h, JOBS, &policy_job("counted", "7", 0, rules)).await;
    h.settled().await;

    let j = get_job(&h, "fatal").await;
    let pod = pods_of(&h, "fatal").await[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        condition_types(&j),
        ["FailureTarget=True", "Failed=True"],
        "{j}"
    );
    assert_eq!(condition(&j, "Failed")["reason"], "PodFailurePolicy");
    assert_eq!(
        condition(&j, "Failed")["message"],
        format!("Container c for pod default/{pod} failed with exit code 42 matching FailJob rule at index 0")
    );
    assert_eq!(j["status"]["failed"], 1);

    let j = get_job(&h, "counted").await;
    assert_eq!(
        condition(&j, "Failed")["reason"],
        "BackoffLimitExceeded",
        "{j}"
    );
    assert_eq!(j["status"]["failed"], 1);

    // An ignored failure is not counted: the pod is replaced (after the backoff) however
    // low the limit.
    let j = get_job(&h, "ignored").await;
    assert!(j["status"].get("conditions").is_none(), "{j}");
    assert!(j["status"].get("failed").is_none(), "{j}");
    advance(&h, &clock, 10).await;
    assert_eq!(phases(&pods_of(&h, "ignored").await), ["Failed", "Failed"]);
    assert!(get_job(&h, "ignored").await["status"]
        .get("failed")
        .is_none());
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn suspending_a_job_deletes_its_pods_and_resuming_starts_it_again() {
    let (h, clock) = server().await;
    create(
        &h,
        JOBS,
        &job(
            "later",
            "Never",
            json!({"kubox.dev/run-for": "1h"}),
            json!({"suspend": true, "parallelism": 2, "completions": 4}),
        ),
    )
    .await;
    h.settled().await;
    assert!(pods_of(&h, "later").await.is_empty());
    let j = get_job(&h, "later").await;
    let c = condition(&j, "Suspended");
    assert_eq!(c["status"], "True", "{j}");
    assert_eq!(c["reason"], "JobSuspended");
    assert_eq!(c["message"], "Job suspended");
    assert!(j["status"].get("startTime").is_none());

    advance(&h, &clock, 60).await;
    patch_merge(
        &h,
        &format!("{JOBS}/later"),
        json!({"spec": {"suspend": false}}),
    )
    .await;
    h.settled().await;
    assert_eq!(phases(&pods_of(&h, "later").await), ["Running", "Running"]);
    let j = get_job(&h, "later").await;
    let c = condition(&j, "Suspended");
    assert_eq!(c["status"], "False", "{j}");
    assert_eq!(c["reason"], "JobResumed");
    assert_eq!(c["message"], "Job resumed");
    assert_eq!(j["status"]["startTime"], "2027-01-15T08:01:00Z");
    assert_eq!(j["status"]["active"], 2);

    patch_merge(
        &h,
        &format!("{JOBS}/later"),
        json!({"spec": {"suspend": true}}),
    )
    .await;
    h.settled().await;
    assert!(pods_of(&h, "later").await.is_empty());
    let j = get_job(&h, "later").await;
    assert_eq!(condition(&j, "Suspended")["status"], "True", "{j}");
    assert!(j["status"].get("active").is_none());
    // Pods of a suspended Job are not failures.
    assert!(j["status"].get("failed").is_none());
    assert!(condition(&j, "Failed").is_null());
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_deleted_pod_of_a_running_job_counts_as_failed_and_is_replaced() {
    let (h, clock) = server().await;
    create(
        &h,
        JOBS,
        &job(
            "steady",
            "Never",
            json!({"kubox.dev/run-for": "1h"}),
            json!({}),
        ),
    )
    .await;
    h.settled().await;
    let first = pods_of(&h, "steady").await[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let r = send(
        &h,
        Method::DELETE,
        &format!("{PODS}/{first}"),
        "",
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 200);
    h.settled().await;
    assert!(
        !exists(&h, &format!("{PODS}/{first}")).await,
        "the finalizer is removed"
    );
    let j = get_job(&h, "steady").await;
    assert_eq!(j["status"]["failed"], 1, "{j}");
    assert!(j["status"].get("active").is_none(), "{j}");
    // A deleted pod is a failure for the backoff too: the replacement comes 10 s later.
    assert!(pods_of(&h, "steady").await.is_empty());
    advance(&h, &clock, 10).await;
    let pods = pods_of(&h, "steady").await;
    assert_eq!(phases(&pods), ["Running"]);
    assert_ne!(pods[0]["metadata"]["name"], first.as_str());
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_finished_job_is_deleted_with_its_pods_once_its_ttl_has_passed() {
    let (h, clock) = server().await;
    create(
        &h,
        JOBS,
        &job(
            "brief",
            "Never",
            json!({}),
            json!({"ttlSecondsAfterFinished": 60}),
        ),
    )
    .await;
    h.settled().await;
    assert_eq!(
        condition(&get_job(&h, "brief").await, "Complete")["status"],
        "True"
    );
    assert_eq!(pods_of(&h, "brief").await.len(), 1);
    advance(&h, &clock, 59).await;
    assert!(exists(&h, &format!("{JOBS}/brief")).await);
    advance(&h, &clock, 1).await;
    assert!(!exists(&h, &format!("{JOBS}/brief")).await);
    assert!(
        pods_of(&h, "brief").await.is_empty(),
        "background propagation"
    );
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn deleting_a_running_job_releases_its_pods() {
    let (h, _clock) = server().await;
    create(
        &h,
        JOBS,
        &job(
            "gone",
            "Never",
            json!({"kubox.dev/run-for": "1h"}),
            json!({"parallelism": 2, "completions": 2}),
        ),
    )
    .await;
    h.settled().await;
    assert_eq!(pods_of(&h, "gone").await.len(), 2);
    let r = send(
        &h,
        Method::DELETE,
        &format!("{JOBS}/gone?propagationPolicy=Background"),
        "",
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 200);
    h.settled().await;
    assert!(pods_of(&h, "gone").await.is_empty());
    h.shutdown().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// CronJobs.

fn cronjob(name: &str, schedule: &str, annotations: Value, extra: Value) -> Value {
    let mut spec = json!({
        "schedule": schedule,
        "jobTemplate": {
            "metadata": {"labels": {"app": name}},
            "spec": {"template": {
                "metadata": {"annotations": annotations},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]},
            }},
        },
    });
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name}, "spec": spec})
}

/// The names of the CronJob's Jobs (by its label), sorted.
async fn jobs_of(h: &ServerHandle, cronjob: &str) -> Vec<String> {
    let list = get(h, &format!("{JOBS}?labelSelector=app%3D{cronjob}"))
        .await
        .json();
    let mut names: Vec<String> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|j| j["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

/// The Job name of a scheduled time `secs` after START.
fn scheduled(cronjob: &str, secs: u64) -> String {
    format!("{cronjob}-{}", (START + secs) / 60)
}

#[tokio::test]
async fn a_cronjob_starts_a_job_at_each_scheduled_time_and_tracks_it() {
    let (h, clock) = server().await;
    let cj = create(
        &h,
        CRONJOBS,
        &cronjob("tick", "*/5 * * * *", json!({}), json!({})),
    )
    .await;
    h.settled().await;
    advance(&h, &clock, 299).await;
    assert!(jobs_of(&h, "tick").await.is_empty());
    // The first pod completes at once: the Job is active, then done.
    advance(&h, &clock, 1).await;
    let name = scheduled("tick", 300);
    assert_eq!(jobs_of(&h, "tick").await, std::slice::from_ref(&name));
    let j = get_job(&h, &name).await;
    let m = &j["metadata"];
    assert_eq!(
        m["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"],
        "2027-01-15T08:05:00Z"
    );
    assert_eq!(m["labels"]["app"], "tick");
    assert_eq!(m["ownerReferences"][0]["kind"], "CronJob");
    assert_eq!(m["ownerReferences"][0]["uid"], cj["metadata"]["uid"]);
    assert_eq!(m["ownerReferences"][0]["controller"], true);
    assert_eq!(condition(&j, "Complete")["status"], "True");
    let c = get(&h, &format!("{CRONJOBS}/tick")).await.json();
    assert_eq!(
        c["status"]["lastScheduleTime"], "2027-01-15T08:05:00Z",
        "{c}"
    );
    assert_eq!(c["status"]["lastSuccessfulTime"], "2027-01-15T08:05:00Z");
    assert!(c["status"].get("active").is_none(), "{c}");

    advance(&h, &clock, 300).await;
    assert_eq!(jobs_of(&h, "tick").await, [name, scheduled("tick", 600)]);
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_running_job_is_listed_as_active_and_forbid_skips_a_time_while_it_runs() {
    let (h, clock) = server().await;
    let long = json!({"kubox.dev/run-for": "90s"});
    create(
        &h,
        CRONJOBS,
        &cronjob(
            "forbid",
            "* * * * *",
            long.clone(),
            json!({"concurrencyPolicy": "Forbid"}),
        ),
    )
    .await;
    create(
        &h,
        CRONJOBS,
        &cronjob(
            "replace",
            "* * * * *",
            long.clone(),
            json!({"concurrencyPolicy": "Replace"}),
        ),
    )
    .await;
    create(
        &h,
        CRONJOBS,
        &cronjob("allow", "* * * * *", long, json!({})),
    )
    .await;
    h.settled().await;
    advance(&h, &clock, 60).await;
    for cj in ["forbid", "replace", "allow"] {
        assert_eq!(jobs_of(&h, cj).await, [scheduled(cj, 60)]);
        let c = get(&h, &format!("{CRONJOBS}/{cj}")).await.json();
        let active = c["status"]["active"].as_array().unwrap();
        assert_eq!(active.len(), 1, "{c}");
        assert_eq!(active[0]["kind"], "Job");
        assert_eq!(active[0]["apiVersion"], "batch/v1");
        assert_eq!(active[0]["name"], scheduled(cj, 60).as_str());
        assert_eq!(active[0]["namespace"], "default");
        assert!(active[0]["uid"].is_string() && active[0]["resourceVersion"].is_string());
    }
    advance(&h, &clock, 60).await;
    assert_eq!(jobs_of(&h, "forbid").await, [scheduled("forbid", 60)]);
    assert_eq!(jobs_of(&h, "replace").await, [scheduled("replace", 120)]);
    assert_eq!(
        jobs_of(&h, "allow").await,
        [scheduled("allow", 60), scheduled("allow", 120)]
    );
    let c = get(&h, &format!("{CRONJOBS}/forbid")).await.json();
    assert_eq!(c["status"]["lastScheduleTime"], "2027-01-15T08:01:00Z");
    // The Forbid Job ends at 08:02:30: the time it made wait, 08:02, starts then (there is no
    // starting deadline), and keeps 08:03 waiting in turn.
    advance(&h, &clock, 30).await;
    let c = get(&h, &format!("{CRONJOBS}/forbid")).await.json();
    assert_eq!(
        c["status"]["lastSuccessfulTime"], "2027-01-15T08:02:30Z",
        "{c}"
    );
    assert_eq!(c["status"]["lastScheduleTime"], "2027-01-15T08:02:00Z");
    assert_eq!(
        c["status"]["active"][0]["name"],
        scheduled("forbid", 120).as_str()
    );
    advance(&h, &clock, 30).await;
    assert_eq!(
        jobs_of(&h, "forbid").await,
        [scheduled("forbid", 60), scheduled("forbid", 120)]
    );
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn schedules_are_read_in_the_cronjobs_time_zone() {
    let (h, clock) = server().await;
    // START is 08:00 UTC, 17:00 in Tokyo: 09:00 UTC comes in an hour, 09:00 in Tokyo
    // (00:00 UTC) in 16.
    create(
        &h,
        CRONJOBS,
        &cronjob(
            "tokyo",
            "0 9 * * *",
            json!({}),
            json!({"timeZone": "Asia/Tokyo"}),
        ),
    )
    .await;
    create(
        &h,
        CRONJOBS,
        &cronjob("utc", "0 9 * * *", json!({}), json!({})),
    )
    .await;
    h.settled().await;
    advance(&h, &clock, 3600).await;
    assert_eq!(jobs_of(&h, "utc").await, [scheduled("utc", 3600)]);
    assert_eq!(
        get_job(&h, &scheduled("utc", 3600)).await["metadata"]["annotations"]
            ["batch.kubernetes.io/cronjob-scheduled-timestamp"],
        "2027-01-15T09:00:00Z"
    );
    assert!(jobs_of(&h, "tokyo").await.is_empty());
    advance(&h, &clock, 15 * 3600 - 1).await;
    assert!(jobs_of(&h, "tokyo").await.is_empty());
    advance(&h, &clock, 1).await;
    let name = scheduled("tokyo", 16 * 3600);
    assert_eq!(jobs_of(&h, "tokyo").await, std::slice::from_ref(&name));
    assert_eq!(
        get_job(&h, &name).await["metadata"]["annotations"]
            ["batch.kubernetes.io/cronjob-scheduled-timestamp"],
        "2027-01-16T09:00:00+09:00"
    );

    // TZ= and CRON_TZ= in the schedule are refused, as kube refuses them.
    let r = post_json(
        &h,
        CRONJOBS,
        &cronjob("tz", "TZ=Asia/Tokyo 0 9 * * *", json!({}), json!({})),
    )
    .await;
    assert_eq!(r.status, 422);
    assert!(
        String::from_utf8_lossy(&r.body)
            .contains("cannot use TZ or CRON_TZ in schedule, use timeZone field instead"),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn only_the_most_recent_missed_time_starts_and_not_past_the_starting_deadline() {
    let (h, clock) = server().await;
    create(
        &h,
        CRONJOBS,
        &cronjob(
            "late",
            "*/5 * * * *",
            json!({}),
            json!({"startingDeadlineSeconds": 30}),
        ),
    )
    .await;
    create(
        &h,
        CRONJOBS,
        &cronjob("catchup", "*/5 * * * *", json!({}), json!({})),
    )
    .await;
    create(
        &h,
        CRONJOBS,
        &cronjob("paused", "*/5 * * * *", json!({}), json!({"suspend": true})),
    )
    .await;
    h.settled().await;
    // The clock jumps 11 minutes: 08:05 and 08:10 were missed.
    clock.advance(Duration::from_secs(660));
    h.settled().await;
    assert_eq!(jobs_of(&h, "catchup").await, [scheduled("catchup", 600)]);
    assert!(jobs_of(&h, "late").await.is_empty(), "08:10 + 30 s is past");
    assert!(jobs_of(&h, "paused").await.is_empty());
    advance(&h, &clock, 240).await;
    assert_eq!(jobs_of(&h, "late").await, [scheduled("late", 900)]);
    assert!(jobs_of(&h, "paused").await.is_empty());
    // Resumed, a suspended CronJob starts its most recent missed time.
    patch_merge(
        &h,
        &format!("{CRONJOBS}/paused"),
        json!({"spec": {"suspend": false}}),
    )
    .await;
    h.settled().await;
    assert_eq!(jobs_of(&h, "paused").await, [scheduled("paused", 900)]);
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn finished_jobs_beyond_the_history_limits_are_deleted_oldest_first() {
    let (h, clock) = server().await;
    create(
        &h,
        CRONJOBS,
        &cronjob(
            "keep2",
            "* * * * *",
            json!({}),
            json!({"successfulJobsHistoryLimit": 2}),
        ),
    )
    .await;
    let mut failing = cronjob(
        "fail1",
        "* * * * *",
        json!({"kubox.dev/exit-code": "1"}),
        json!({"failedJobsHistoryLimit": 1}),
    );
    failing["spec"]["jobTemplate"]["spec"]["backoffLimit"] = json!(0);
    create(&h, CRONJOBS, &failing).await;
    h.settled().await;
    for _ in 0..4 {
        advance(&h, &clock, 60).await;
    }
    assert_eq!(
        jobs_of(&h, "keep2").await,
        [scheduled("keep2", 180), scheduled("keep2", 240)]
    );
    assert_eq!(jobs_of(&h, "fail1").await, [scheduled("fail1", 240)]);
    let j = get_job(&h, &scheduled("fail1", 240)).await;
    assert_eq!(condition(&j, "Failed")["status"], "True", "{j}");
    // The deleted Jobs' pods went with them.
    assert_eq!(pods_of(&h, &scheduled("keep2", 60)).await.len(), 0);
    assert_eq!(pods_of(&h, &scheduled("keep2", 240)).await.len(), 1);
    h.shutdown().await.unwrap();
}
