//! Jobs and CronJobs through kubectl (1.27 and 1.35), on kubox with two simulated nodes and a
//! manual clock: `kubectl create job` then `kubectl wait --for=condition=complete`; a Job whose
//! pods exit 1 (`kubox.dev/exit-code`) with `backoffLimit: 1` ending Failed while
//! `kubectl wait --for=condition=failed` watches; `kubectl create cronjob`, `kubectl create
//! job --from=cronjob/…`, and the CronJob's own Job once the test moves the clock to its next
//! scheduled minute.
//!
//! Against the kubox these scenarios start, time is the manual clock and waiting for the
//! controllers is `settled()`; against an external server (`KUBOX_CONFORMANCE_KUBECONFIG`)
//! real time passes instead and the same checks are polled.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use kubox::ManualClock;
use kubox_conformance::{kubectl_bin, Backend, Kubectl, Target};
use serde_json::Value;

/// 2027-01-15T08:00:00Z, on a minute boundary.
const START: u64 = 1_800_000_000;

struct Scenario<'a> {
    k: &'a Kubectl,
    target: &'a Target,
    rt: &'a tokio::runtime::Runtime,
    clock: &'a ManualClock,
    ns: &'a str,
}

impl Scenario<'_> {
    /// Wait until `done` holds: after the controllers settle (local kubox), or polling (remote).
    fn eventually(&self, what: &str, done: impl Fn() -> bool) {
        if let Some(server) = self.target.server() {
            self.rt.block_on(server.settled());
            assert!(done(), "not true once the controllers settled: {what}");
            return;
        }
        let start = Instant::now();
        while !done() {
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "timed out: {what}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Let `secs` of server time pass: the manual clock moves (local kubox), or real time goes
    /// by (remote).
    fn pass(&self, secs: u64) {
        match self.target.server() {
            Some(server) => {
                self.clock.advance(Duration::from_secs(secs));
                self.rt.block_on(server.settled());
            }
            None => std::thread::sleep(Duration::from_secs(secs)),
        }
    }

    fn get(&self, what: &str) -> Value {
        self.k
            .run(&["get", what, "-n", self.ns, "-o", "json"])
            .success()
            .json()
    }

    /// The items of a list, as JSON.
    fn list(&self, args: &[&str]) -> Vec<Value> {
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-n", self.ns, "-o", "json"]);
        self.k.run(&all).success().json()["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    fn pods_of(&self, job: &str) -> Vec<Value> {
        self.list(&["pods", "-l", &format!("batch.kubernetes.io/job-name={job}")])
    }

    fn wait(&self, condition: &str, what: &str) {
        let out = self
            .k
            .run(&[
                "wait",
                &format!("--for=condition={condition}"),
                what,
                "-n",
                self.ns,
                "--timeout=60s",
            ])
            .success()
            .stdout;
        assert!(out.contains("condition met"), "{out}");
    }
}

fn condition<'a>(obj: &'a Value, ty: &str) -> &'a Value {
    obj["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == ty))
        .unwrap_or(&Value::Null)
}

fn failing_job(ns: &str) -> String {
    format!(
        "apiVersion: batch/v1
kind: Job
metadata:
  name: flaky
  namespace: {ns}
spec:
  backoffLimit: 1
  template:
    metadata:
      annotations:
        kubox.dev/exit-code: \"1\"
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox
        command: [\"false\"]
"
    )
}

fn jobs(s: &Scenario) {
    let (k, ns) = (s.k, s.ns);
    // A Job that completes: its pod runs (and ends) at once on a simulated node.
    k.run(&[
        "create",
        "job",
        "hello",
        "--image=busybox",
        "-n",
        ns,
        "--",
        "echo",
        "hi",
    ])
    .success();
    s.wait("complete", "job/hello");
    let job = s.get("job/hello");
    assert_eq!(job["status"]["succeeded"], 1, "{job}");
    for ty in ["SuccessCriteriaMet", "Complete"] {
        assert_eq!(condition(&job, ty)["status"], "True", "{job}");
        assert_eq!(condition(&job, ty)["reason"], "CompletionsReached");
    }
    assert!(job["status"]["completionTime"].is_string());
    let pods = s.pods_of("hello");
    assert_eq!(pods.len(), 1);
    assert_eq!(pods[0]["status"]["phase"], "Succeeded");
    let table = k.run(&["get", "job", "hello", "-n", ns]).success().stdout;
    assert!(table.contains("1/1"), "{table}");
    assert!(table.contains("Complete"), "{table}");

    // A Job whose pods fail, with one retry allowed: `kubectl wait` sees it fail once the
    // retry (10 s of back-off later) has failed too.
    k.run_stdin(&["create", "-f", "-"], &failing_job(ns))
        .success();
    let waiting = k
        .command(&[
            "wait",
            "--for=condition=failed",
            "job/flaky",
            "-n",
            ns,
            "--timeout=90s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl wait starts");
    s.eventually("the first pod failed", || {
        s.pods_of("flaky")
            .iter()
            .any(|p| p["status"]["phase"] == "Failed")
    });
    let job = s.get("job/flaky");
    assert!(
        condition(&job, "Failed").is_null(),
        "one failure is allowed: {job}"
    );
    s.pass(10);
    let out = waiting.wait_with_output().expect("kubectl wait ends");
    assert!(
        out.status.success(),
        "kubectl wait: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("condition met"));
    let job = s.get("job/flaky");
    assert_eq!(job["status"]["failed"], 2, "{job}");
    assert_eq!(condition(&job, "FailureTarget")["status"], "True");
    assert_eq!(condition(&job, "Failed")["reason"], "BackoffLimitExceeded");
    assert_eq!(
        condition(&job, "Failed")["message"],
        "Job has reached the specified backoff limit"
    );
    let pods = s.pods_of("flaky");
    assert_eq!(pods.len(), 2);
    for p in &pods {
        assert_eq!(p["status"]["phase"], "Failed");
        let code = &p["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"];
        assert_eq!(code, 1, "{p}");
    }
    let table = k.run(&["get", "job", "flaky", "-n", ns]).success().stdout;
    assert!(table.contains("0/1"), "{table}");
}

fn cronjobs(s: &Scenario) {
    let (k, ns) = (s.k, s.ns);
    k.run(&[
        "create",
        "cronjob",
        "tick",
        "--image=busybox",
        "--schedule=*/1 * * * *",
        "-n",
        ns,
        "--",
        "date",
    ])
    .success();
    let cj = s.get("cronjob/tick");
    assert_eq!(cj["spec"]["concurrencyPolicy"], "Allow");
    assert_eq!(cj["spec"]["successfulJobsHistoryLimit"], 3);

    // By hand, from the CronJob's template: controlled by it, never in its active list.
    k.run(&["create", "job", "manual", "--from=cronjob/tick", "-n", ns])
        .success();
    s.wait("complete", "job/manual");
    let manual = s.get("job/manual");
    assert_eq!(
        manual["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"],
        "manual"
    );
    assert_eq!(manual["metadata"]["ownerReferences"][0]["kind"], "CronJob");
    assert_eq!(
        manual["metadata"]["ownerReferences"][0]["uid"],
        cj["metadata"]["uid"]
    );

    // The next minute: the CronJob's own Job.
    let scheduled = |s: &Scenario| -> Vec<Value> {
        s.list(&["jobs"])
            .into_iter()
            .filter(|j| {
                j["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
                    .is_string()
            })
            .collect()
    };
    assert!(scheduled(s).is_empty(), "nothing before the next minute");
    s.pass(60);
    s.eventually("the scheduled Job exists", || !scheduled(s).is_empty());
    let job = &scheduled(s)[0];
    let name = job["metadata"]["name"].as_str().unwrap().to_string();
    let stamp = job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
        .as_str()
        .unwrap()
        .to_string();
    if s.target.server().is_some() {
        assert_eq!(name, format!("tick-{}", (START + 60) / 60));
        assert_eq!(stamp, "2027-01-15T08:01:00Z");
    } else {
        assert!(name.starts_with("tick-"), "{name}");
    }
    assert_eq!(job["metadata"]["ownerReferences"][0]["kind"], "CronJob");
    s.wait("complete", &format!("job/{name}"));
    s.eventually("the CronJob saw its Job succeed", || {
        let cj = s.get("cronjob/tick");
        cj["status"]["lastScheduleTime"] == stamp.as_str()
            && cj["status"]["lastSuccessfulTime"].is_string()
            && cj["status"].get("active").is_none()
    });
    let listed = k
        .run(&["get", "cronjob", "tick", "-n", ns])
        .success()
        .stdout;
    assert!(listed.contains("*/1 * * * *"), "{listed}");
}

fn run(version: &str) {
    let bin = kubectl_bin(version);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let clock = ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(START));
    let server_clock = Arc::new(clock.clone());
    let target = rt.block_on(Target::start_with(Backend::Memory, move |b| {
        b.nodes(2).clock(server_clock)
    }));
    let k = Kubectl::new(version, &bin, &target);
    let ns = target.namespace.clone();
    k.run(&["create", "namespace", &ns]).success();
    let s = Scenario {
        k: &k,
        target: &target,
        rt: &rt,
        clock: &clock,
        ns: &ns,
    };
    jobs(&s);
    cronjobs(&s);
    k.run(&["delete", "namespace", &ns, "--wait=false"])
        .success();
    rt.block_on(target.stop());
}

#[test]
fn kubectl_1_27_runs_jobs_and_cronjobs() {
    run("1.27");
}

#[test]
fn kubectl_1_35_runs_jobs_and_cronjobs() {
    run("1.35");
}
