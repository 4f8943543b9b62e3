//! The CronJob controller (kube-controller-manager's `cronjob` controller, its v2).
//!
//! Schedules are kube's (`cron.ParseStandard`: five fields or a descriptor such as `@hourly`,
//! `@every 1h`), evaluated in `spec.timeZone` (an IANA name; UTC when unset) on the server
//! clock; a schedule still carrying a `TZ=` / `CRON_TZ=` prefix (the API refuses new ones, old
//! objects may keep theirs) is read as kube's parser reads it. Each scheduled time gets one Job
//! named `<cronjob>-<scheduled time in minutes since the epoch>`, with the
//! `batch.kubernetes.io/cronjob-scheduled-timestamp` annotation (the time in the CronJob's
//! zone, RFC 3339), the job template's labels, annotations and spec, and the CronJob as
//! controller. As kube: only the most recent missed time is started (and none when it is past
//! `startingDeadlineSeconds`); `concurrencyPolicy` `Forbid` skips a time while a Job is active,
//! `Replace` deletes the active Jobs first; `suspend` starts nothing; finished Jobs beyond
//! `successfulJobsHistoryLimit` / `failedJobsHistoryLimit` are deleted oldest first
//! (background propagation); `status.active`, `lastScheduleTime` and `lastSuccessfulTime`
//! follow the Jobs. The controller sleeps until the next scheduled time (a timer on the server
//! clock, woken when a test moves a manual clock): nothing polls.
//!
//! A Job created by hand from a CronJob (`kubectl create job --from=cronjob/x`) is controlled
//! by it but, as in kube, never enters `status.active`; it counts for the history limits and
//! `lastSuccessfulTime`. Events (`SuccessfulCreate`, `SawCompletedJob`, `MissSchedule`…) are
//! not recorded.

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Value};

use super::job::{finished_condition, is_finished};
use super::workload::{
    controller_named, controller_ref, stamp, time_at, uid_of, Cache, Expectations, Timers,
    CONTROLLER_MANAGER,
};
use super::{is_deleting, read, Controller, Interest, Msg, Queue, Reconciler};
use crate::registry::store::Propagation;
use crate::registry::Backend;
use crate::status::{ApiError, ApiResult};

/// The annotation holding a Job's scheduled time.
pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

// ---------------------------------------------------------------------------------------------
// Schedules.

/// A parsed schedule in its time zone.
#[derive(Debug)]
pub enum Schedule {
    /// A cron expression.
    Cron {
        /// The expression (minutes to weekdays; seconds always 0).
        cron: Box<croner::Cron>,
        /// Where its fields are read.
        zone: chrono_tz::Tz,
    },
    /// `@every <duration>`: the duration (whole seconds, at least one) after the time given.
    Every(Duration),
}

impl Schedule {
    /// Parse `schedule` (with `spec.timeZone`, if any) as kube's controller hands it to
    /// robfig/cron's standard parser. The API validated the schedule with robfig's rules
    /// already, so errors are rare (a zone unknown here, an object stored before validation).
    pub fn parse(schedule: &str, time_zone: Option<&str>) -> Result<Schedule, String> {
        let mut spec = schedule.trim();
        let mut zone = chrono_tz::UTC;
        if let Some(tz) = time_zone {
            zone = chrono_tz::Tz::from_str(tz).map_err(|_| format!("unknown time zone {tz}"))?;
        } else {
            for prefix in ["TZ=", "CRON_TZ="] {
                if let Some(rest) = spec.strip_prefix(prefix) {
                    let (tz, rest) = rest
                        .split_once(' ')
                        .ok_or_else(|| format!("invalid schedule format: {spec}"))?;
                    zone = chrono_tz::Tz::from_str(tz).map_err(|_| {
                        format!("provided bad location {tz}: unknown time zone {tz}")
                    })?;
                    spec = rest.trim();
                    break;
                }
            }
        }
        if let Some(every) = spec.strip_prefix("@every ") {
            let d = crate::query::parse_duration(every.trim())
                .map_err(|_| format!("failed to parse duration @every {every}"))?;
            let secs = d.as_secs().max(1);
            return Ok(Schedule::Every(Duration::from_secs(secs)));
        }
        let expr = match spec {
            "@yearly" | "@annually" => "0 0 1 1 *".to_string(),
            "@monthly" => "0 0 1 * *".to_string(),
            "@weekly" => "0 0 * * 0".to_string(),
            "@daily" | "@midnight" => "0 0 * * *".to_string(),
            "@hourly" => "0 * * * *".to_string(),
            fields => {
                // robfig treats `?` and `*/1` in the day fields as `*` (a day matches both
                // fields then, else either); croner knows only a bare `*`.
                let mut parts: Vec<&str> = fields.split_whitespace().collect();
                for i in [2, 4] {
                    if let Some(p) = parts.get_mut(i) {
                        if *p == "?" || *p == "*/1" {
                            *p = "*";
                        }
                    }
                }
                parts.join(" ")
            }
        };
        let cron = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Disallowed)
            .build()
            .parse(&expr)
            .map_err(|e| e.to_string())?;
        Ok(Schedule::Cron {
            cron: Box::new(cron),
            zone,
        })
    }

    /// The first activation strictly after `t` (robfig's `Next`), None when there is none.
    pub fn next(&self, t: SystemTime) -> Option<SystemTime> {
        match self {
            Schedule::Every(d) => {
                let secs = t.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs();
                SystemTime::UNIX_EPOCH
                    .checked_add(Duration::from_secs(secs))?
                    .checked_add(*d)
            }
            Schedule::Cron { cron, zone } => {
                let utc: DateTime<Utc> = t.into();
                let local = zone.from_utc_datetime(&utc.naive_utc());
                let next = cron.find_next_occurrence(&local, false).ok()?;
                Some(SystemTime::from(next.with_timezone(&Utc)))
            }
        }
    }
}

/// kube's mostRecentScheduleTime: (the time scheduling counts from, the most recent
/// activation at or before `now` after it, how many were missed); Err for a schedule whose
/// activations are less than a second apart (or never come).
fn most_recent(
    cj: &Value,
    now: SystemTime,
    schedule: &Schedule,
    with_deadline: bool,
) -> Result<(SystemTime, Option<SystemTime>, i64), String> {
    let mut earliest = time_at(&cj["status"]["lastScheduleTime"])
        .or_else(|| time_at(&cj["metadata"]["creationTimestamp"]))
        .unwrap_or(now);
    if let Some(d) = cj["spec"]["startingDeadlineSeconds"]
        .as_i64()
        .filter(|_| with_deadline)
    {
        let deadline = super::workload::plus_secs(now, -d);
        if deadline > earliest {
            earliest = deadline;
        }
    }
    let never = || "time difference between two schedules is less than 1 second".to_string();
    let t1 = schedule.next(earliest).ok_or_else(never)?;
    if now < t1 {
        return Ok((earliest, None, 0));
    }
    let t2 = schedule.next(t1).ok_or_else(never)?;
    if now < t2 {
        return Ok((earliest, Some(t1), 0));
    }
    let between = t2
        .duration_since(t1)
        .unwrap_or_default()
        .as_secs_f64()
        .round() as i64;
    if between < 1 {
        return Err(never());
    }
    let elapsed = now.duration_since(t1).unwrap_or_default().as_secs() as i64;
    let missed = elapsed / between + 1;
    let from = super::workload::plus_secs(t1, (missed - 2).saturating_mul(between));
    let mut recent = None;
    let mut t = schedule.next(from);
    // kube walks from the estimate to now: a few steps (bounded here all the same).
    for _ in 0..10_000 {
        match t {
            Some(at) if at <= now => {
                recent = Some(at);
                t = schedule.next(at);
            }
            _ => break,
        }
    }
    Ok((earliest, recent, missed))
}

/// When the controller should look again (kube's nextScheduleTimeDuration, without its
/// 100 ms of slack: the server clock is the only clock).
fn next_look(cj: &Value, now: SystemTime, schedule: &Schedule) -> Option<SystemTime> {
    let from = match most_recent(cj, now, schedule, false) {
        Err(_) => now,
        Ok((_, Some(recent), _)) => recent,
        Ok((earliest, None, missed)) if missed <= 1 => earliest,
        Ok(_) => now,
    };
    schedule.next(from)
}

/// `<cronjob>-<scheduled time in minutes>` (kube's getJobName).
pub fn job_name(cronjob: &str, scheduled: SystemTime) -> String {
    let secs = match scheduled.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    };
    format!("{cronjob}-{}", secs.div_euclid(60))
}

/// The scheduled time as RFC 3339 in `zone` (Go's time.RFC3339: `Z` for UTC, else the offset).
fn scheduled_stamp(scheduled: SystemTime, zone: Option<&str>) -> String {
    let utc: DateTime<Utc> = scheduled.into();
    match zone.and_then(|z| chrono_tz::Tz::from_str(z).ok()) {
        Some(tz) => {
            let local = utc.with_timezone(&tz);
            local.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        }
        None => utc.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    }
}

/// The Job of one scheduled time (kube's getJobFromTemplate2).
fn job_for(cj: &Value, ns: &str, name: &str, scheduled: SystemTime) -> Value {
    let template = &cj["spec"]["jobTemplate"];
    let mut annotations = template["metadata"]["annotations"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    annotations.insert(
        SCHEDULED_TIMESTAMP.into(),
        json!(scheduled_stamp(scheduled, cj["spec"]["timeZone"].as_str())),
    );
    let mut meta = serde_json::Map::new();
    meta.insert("name".into(), json!(job_name(name, scheduled)));
    meta.insert("namespace".into(), json!(ns));
    if let Some(labels) = template["metadata"]["labels"].as_object() {
        meta.insert("labels".into(), Value::Object(labels.clone()));
    }
    meta.insert("annotations".into(), Value::Object(annotations));
    meta.insert(
        "ownerReferences".into(),
        json!([controller_ref(cj, "batch/v1", "CronJob")]),
    );
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": Value::Object(meta),
        "spec": template["spec"].clone(),
    })
}

/// An ObjectReference to a Job, as `status.active` holds them.
fn job_ref(job: &Value) -> Value {
    let m = &job["metadata"];
    json!({
        "kind": "Job",
        "namespace": m["namespace"],
        "name": m["name"],
        "uid": m["uid"],
        "apiVersion": "batch/v1",
        "resourceVersion": m["resourceVersion"],
    })
}

// ---------------------------------------------------------------------------------------------
// The controller.

/// The CronJob controller.
pub struct CronJobController {
    cronjobs: Cache,
    jobs: Cache,
    expect: Expectations,
    timers: Timers,
}

/// The status fields the controller writes.
#[derive(Clone, PartialEq)]
struct Status {
    active: Vec<Value>,
    last_schedule: Option<Value>,
    last_successful: Option<Value>,
}

impl Status {
    fn of(cj: &Value) -> Status {
        let s = &cj["status"];
        Status {
            active: s["active"].as_array().cloned().unwrap_or_default(),
            last_schedule: s.get("lastScheduleTime").filter(|v| !v.is_null()).cloned(),
            last_successful: s
                .get("lastSuccessfulTime")
                .filter(|v| !v.is_null())
                .cloned(),
        }
    }

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
        put(
            "active",
            (!self.active.is_empty()).then(|| Value::Array(self.active.clone())),
        );
        put("lastScheduleTime", self.last_schedule.clone());
        put("lastSuccessfulTime", self.last_successful.clone());
        obj["status"] != before
    }

    fn has_uid(&self, uid: &str) -> bool {
        self.active.iter().any(|r| r["uid"] == uid)
    }

    fn forget(&mut self, uid: &str) {
        self.active.retain(|r| r["uid"] != uid);
    }
}

impl Default for CronJobController {
    fn default() -> Self {
        CronJobController::new()
    }
}

impl CronJobController {
    /// A CronJob controller with empty caches.
    pub fn new() -> CronJobController {
        CronJobController {
            cronjobs: Cache::new("batch", "cronjobs"),
            jobs: Cache::new("batch", "jobs"),
            expect: Expectations::default(),
            timers: Timers::default(),
        }
    }

    async fn delete_job(state: &Arc<Backend>, job: &Value) -> ApiResult<()> {
        let ns = job["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = job["metadata"]["name"].as_str().unwrap_or_default();
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
            .await
    }

    /// kube's cleanupFinishedJobs: the oldest finished Jobs beyond the history limits go.
    async fn cleanup(
        state: &Arc<Backend>,
        cj: &Value,
        jobs: &[Arc<Value>],
        status: &mut Status,
    ) -> ApiResult<bool> {
        let mut wrote = false;
        for (ty, limit) in [
            ("Complete", "successfulJobsHistoryLimit"),
            ("Failed", "failedJobsHistoryLimit"),
        ] {
            let Some(limit) = cj["spec"][limit].as_i64() else {
                continue;
            };
            let mut done: Vec<&Arc<Value>> = jobs
                .iter()
                .filter(|j| finished_condition(j).is_some_and(|c| c["type"] == ty))
                .collect();
            let excess = done
                .len()
                .saturating_sub(usize::try_from(limit).unwrap_or(0));
            if excess == 0 {
                continue;
            }
            // kube's byJobStartTime: started first (oldest first), never started last, then by name.
            done.sort_by(|a, b| {
                let start = |j: &Value| time_at(&j["status"]["startTime"]);
                let key = |j: &Value| (start(j).is_none(), start(j));
                key(a).cmp(&key(b)).then_with(|| {
                    a["metadata"]["name"]
                        .as_str()
                        .cmp(&b["metadata"]["name"].as_str())
                })
            });
            for job in done.into_iter().take(excess) {
                Self::delete_job(state, job).await?;
                status.forget(uid_of(job));
                wrote = true;
            }
        }
        Ok(wrote)
    }

    /// kube's syncCronJob; whether anything was written besides the status.
    async fn sync(
        &mut self,
        state: &Arc<Backend>,
        key: &str,
        cj: &Value,
        jobs: &[Arc<Value>],
        status: &mut Status,
    ) -> ApiResult<bool> {
        let now = state.clock.now();
        let (ns, name) = {
            let (ns, name) = self.cronjobs.split(key);
            (ns.to_string(), name.to_string())
        };
        let children: HashSet<&str> = jobs.iter().map(|j| uid_of(j)).collect();
        for j in jobs {
            let found = status.has_uid(uid_of(j));
            let finished = is_finished(j);
            if found && finished {
                status.forget(uid_of(j));
            } else if !found && finished {
                if let Some(done) = j["status"].get("completionTime").filter(|v| !v.is_null()) {
                    let later = match (&status.last_successful, time_at(done)) {
                        (None, _) => true,
                        (Some(last), Some(t)) => time_at(last).is_none_or(|l| t > l),
                        (Some(_), None) => false,
                    };
                    if later {
                        status.last_successful = Some(done.clone());
                    }
                }
            }
        }
        // Active Jobs that are gone (checked in the store, not only in the cache).
        for r in status.active.clone() {
            let uid = r["uid"].as_str().unwrap_or_default();
            if children.contains(uid) {
                continue;
            }
            let job_name = r["name"].as_str().unwrap_or_default();
            if read(state, &self.jobs.key(&ns, job_name)).await?.is_none() {
                status.forget(uid);
            }
        }
        if is_deleting(cj) {
            return Ok(false);
        }
        let zone = cj["spec"]["timeZone"].as_str();
        if cj["spec"]["suspend"] == true {
            return Ok(false);
        }
        let Ok(schedule) =
            Schedule::parse(cj["spec"]["schedule"].as_str().unwrap_or_default(), zone)
        else {
            return Ok(false);
        };
        let Ok((_, scheduled, _)) = most_recent(cj, now, &schedule, true) else {
            return Ok(false);
        };
        let requeue = |me: &mut Self, status: &Status| {
            let mut view = cj.clone();
            view["status"]["lastScheduleTime"] =
                status.last_schedule.clone().unwrap_or(Value::Null);
            if let Some(at) = next_look(&view, now, &schedule) {
                me.timers.at(key, at);
            }
        };
        let Some(scheduled) = scheduled.filter(|t| *t <= now) else {
            requeue(self, status);
            return Ok(false);
        };
        let too_late = cj["spec"]["startingDeadlineSeconds"]
            .as_i64()
            .is_some_and(|d| super::workload::plus_secs(scheduled, d) < now);
        let this_name = job_name(&name, scheduled);
        let done_already = status
            .active
            .iter()
            .any(|r| r["name"] == this_name.as_str())
            || status.last_schedule.as_ref().and_then(time_at) == Some(truncate(scheduled));
        let forbidden = cj["spec"]["concurrencyPolicy"] == "Forbid" && !status.active.is_empty();
        if too_late || done_already || forbidden {
            requeue(self, status);
            return Ok(false);
        }
        let mut wrote = false;
        if cj["spec"]["concurrencyPolicy"] == "Replace" {
            for r in status.active.clone() {
                let job_name = r["name"].as_str().unwrap_or_default();
                let Some((job, _)) = read(state, &self.jobs.key(&ns, job_name)).await? else {
                    return Err(ApiError::internal(format!(
                        "could not replace job {ns}/{job_name}: it is gone"
                    )));
                };
                Self::delete_job(state, &job).await?;
                status.forget(uid_of(&job));
                wrote = true;
            }
        }
        let created = CONTROLLER_MANAGER
            .create(
                state,
                "batch",
                "jobs",
                &ns,
                job_for(cj, &ns, &name, scheduled),
            )
            .await?;
        let job = match created {
            Some(job) => job,
            None => {
                // Already there (made before a crash, or by someone else), or refused.
                let Some((job, _)) = read(state, &self.jobs.key(&ns, &this_name)).await? else {
                    return Err(ApiError::internal(format!(
                        "could not create job {ns}/{this_name}"
                    )));
                };
                if controller_named(&job, "CronJob") != Some(name.as_str())
                    || super::workload::controller_uid(&job) != Some(uid_of(cj))
                    || status.has_uid(uid_of(&job))
                {
                    return Ok(wrote);
                }
                job
            }
        };
        wrote = true;
        status.active.push(job_ref(&job));
        status.last_schedule = Some(json!(stamp(scheduled)));
        requeue(self, status);
        Ok(wrote)
    }
}

/// `t` at second precision (as metav1.Time keeps it).
fn truncate(t: SystemTime) -> SystemTime {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => SystemTime::UNIX_EPOCH + Duration::from_secs(d.as_secs()),
        Err(_) => t,
    }
}

#[async_trait::async_trait]
impl Reconciler for CronJobController {
    const CONTROLLER: Controller = Controller::CronJob;

    fn interest(&self) -> Interest {
        Interest::caches([&self.cronjobs, &self.jobs])
    }

    fn expectations(&mut self) -> Option<&mut Expectations> {
        Some(&mut self.expect)
    }

    fn observe(&mut self, _state: &Backend, msg: &Msg, queue: &mut Queue) {
        for c in self.cronjobs.observe(msg) {
            queue.add(c.key);
        }
        for c in self.jobs.observe(msg) {
            for job in [c.old.as_deref(), c.new.as_deref()].into_iter().flatten() {
                if let Some(owner) = controller_named(job, "CronJob") {
                    let ns = job["metadata"]["namespace"].as_str().unwrap_or_default();
                    queue.add(self.cronjobs.key(ns, owner));
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
        if !self.expect.satisfied(key) {
            return Ok(());
        }
        let Some(cj) = self.cronjobs.get(key).cloned() else {
            return Ok(());
        };
        let (ns, name) = {
            let (ns, name) = self.cronjobs.split(key);
            (ns.to_string(), name.to_string())
        };
        let jobs: Vec<Arc<Value>> = self
            .jobs
            .in_namespace(&ns)
            .filter(|(_, j)| controller_named(j, "CronJob") == Some(name.as_str()))
            .map(|(_, j)| j.clone())
            .collect();
        let original = Status::of(&cj);
        let mut status = original.clone();
        let mut wrote = Self::cleanup(state, &cj, &jobs, &mut status).await?;
        let synced = self.sync(state, key, &cj, &jobs, &mut status).await;
        if status != original {
            CONTROLLER_MANAGER
                .update(
                    state,
                    "batch",
                    "cronjobs",
                    &ns,
                    &name,
                    "status",
                    Some(uid_of(&cj)),
                    |obj| status.apply(obj),
                )
                .await?;
            wrote = true;
        }
        let synced = synced?;
        if wrote || synced {
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

    fn at(s: &str) -> SystemTime {
        super::super::workload::parse_time(s).unwrap()
    }

    fn next(schedule: &str, zone: Option<&str>, from: &str) -> String {
        let s = Schedule::parse(schedule, zone).unwrap();
        stamp(s.next(at(from)).unwrap())
    }

    #[test]
    fn schedules_follow_robfig_cron() {
        assert_eq!(
            next("*/5 * * * *", None, "2024-01-01T10:02:30Z"),
            "2024-01-01T10:05:00Z"
        );
        assert_eq!(
            next("*/5 * * * *", None, "2024-01-01T10:05:00Z"),
            "2024-01-01T10:10:00Z"
        );
        assert_eq!(
            next("@hourly", None, "2024-01-01T10:00:00Z"),
            "2024-01-01T11:00:00Z"
        );
        assert_eq!(
            next("@daily", None, "2024-01-01T10:00:00Z"),
            "2024-01-02T00:00:00Z"
        );
        assert_eq!(
            next("@weekly", None, "2024-01-01T10:00:00Z"),
            "2024-01-07T00:00:00Z"
        );
        assert_eq!(
            next("@monthly", None, "2024-01-15T10:00:00Z"),
            "2024-02-01T00:00:00Z"
        );
        assert_eq!(
            next("@yearly", None, "2024-01-15T10:00:00Z"),
            "2025-01-01T00:00:00Z"
        );
        assert_eq!(
            next("@every 90s", None, "2024-01-01T10:00:00Z"),
            "2024-01-01T10:01:30Z"
        );
        // Day of month and day of week: either, unless one is `*`.
        assert_eq!(
            next("0 0 13 * 5", None, "2024-01-01T00:00:00Z"),
            "2024-01-05T00:00:00Z"
        );
        assert_eq!(
            next("0 0 * * 5", None, "2024-01-01T00:00:00Z"),
            "2024-01-05T00:00:00Z"
        );
        assert_eq!(
            next("0 0 ? * 5", None, "2024-01-01T00:00:00Z"),
            "2024-01-05T00:00:00Z"
        );
        assert_eq!(
            next("0 9 * * mon-fri", None, "2024-01-06T12:00:00Z"),
            "2024-01-08T09:00:00Z"
        );
        // Time zones: 09:00 in Tokyo is 00:00 UTC; in New York 14:00 UTC in winter, 13:00 in summer.
        assert_eq!(
            next("0 9 * * *", Some("Asia/Tokyo"), "2024-01-01T01:00:00Z"),
            "2024-01-02T00:00:00Z"
        );
        assert_eq!(
            next(
                "0 9 * * *",
                Some("America/New_York"),
                "2024-01-01T00:00:00Z"
            ),
            "2024-01-01T14:00:00Z"
        );
        assert_eq!(
            next(
                "0 9 * * *",
                Some("America/New_York"),
                "2024-07-01T00:00:00Z"
            ),
            "2024-07-01T13:00:00Z"
        );
        assert_eq!(
            next("TZ=Asia/Tokyo 0 9 * * *", None, "2024-01-01T01:00:00Z"),
            "2024-01-02T00:00:00Z"
        );
        assert!(Schedule::parse("0 9 * * *", Some("Mars/Olympus")).is_err());
        assert!(Schedule::parse("61 * * * *", None).is_err());
        assert!(Schedule::parse("@every x", None).is_err());
    }

    #[test]
    fn job_names_count_minutes_and_stamps_keep_the_zone() {
        assert_eq!(
            job_name("hello", at("2024-01-01T00:00:00Z")),
            "hello-28401120"
        );
        assert_eq!(
            scheduled_stamp(at("2024-01-01T00:00:00Z"), Some("Asia/Tokyo")),
            "2024-01-01T09:00:00+09:00"
        );
        assert_eq!(
            scheduled_stamp(at("2024-01-01T00:00:00Z"), None),
            "2024-01-01T00:00:00Z"
        );
    }

    #[test]
    fn the_most_recent_missed_time_is_the_one_started() {
        let s = Schedule::parse("*/5 * * * *", None).unwrap();
        let cj = json!({"metadata": {"creationTimestamp": "2024-01-01T10:01:00Z"}, "spec": {}});
        let (_, t, _) = most_recent(&cj, at("2024-01-01T10:04:59Z"), &s, true).unwrap();
        assert_eq!(t, None);
        let (_, t, _) = most_recent(&cj, at("2024-01-01T10:05:00Z"), &s, true).unwrap();
        assert_eq!(t, Some(at("2024-01-01T10:05:00Z")));
        let (_, t, missed) = most_recent(&cj, at("2024-01-01T11:02:00Z"), &s, true).unwrap();
        assert_eq!(t, Some(at("2024-01-01T11:00:00Z")));
        assert_eq!(missed, 12);
        // With a starting deadline, the count starts at now - deadline.
        let mut late = cj.clone();
        late["spec"]["startingDeadlineSeconds"] = json!(60);
        let (earliest, t, _) = most_recent(&late, at("2024-01-01T11:02:00Z"), &s, true).unwrap();
        assert_eq!(earliest, at("2024-01-01T11:01:00Z"));
        assert_eq!(t, None);
        assert_eq!(
            next_look(&cj, at("2024-01-01T10:02:00Z"), &s),
            Some(at("2024-01-01T10:05:00Z"))
        );
    }
}
