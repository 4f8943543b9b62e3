//! StatefulSets and DaemonSets through kubectl (1.27 and 1.35) on three simulated nodes: a
//! StatefulSet created and scaled in ordinal order (`kubectl scale`, `kubectl rollout status`,
//! pods made Ready through a readiness gate with `kubectl patch --subresource=status`, their
//! deletion held by a finalizer so the order shows), and a DaemonSet on every node, rolled to a
//! new image (`kubectl set image`, `rollout status`, `rollout history`, `rollout undo`).
//!
//! Against the kubox these scenarios start, waiting for the controllers is `settled()`; against an
//! external server (`KUBOX_CONFORMANCE_KUBECONFIG`) the same checks are polled.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use kubox_conformance::{kubectl_bin, Backend, Kubectl, Run, Target};

const GATE: &str = "conformance.kubox.dev/gate";
const HOLD: &str = "conformance.kubox.dev/hold";

struct Scenario<'a> {
    k: &'a Kubectl,
    target: &'a Target,
    rt: &'a tokio::runtime::Runtime,
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
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn run(&self, args: &[&str]) -> String {
        let mut all = args.to_vec();
        all.extend(["-n", self.ns]);
        self.k.run(&all).success().stdout
    }

    fn apply(&self, yaml: &str) {
        self.k
            .run_stdin(&["apply", "-n", self.ns, "-f", "-"], yaml)
            .success();
    }

    /// Names of the pods labelled app=`app`, sorted; with `deleting`, only those being deleted.
    fn pods(&self, app: &str, deleting: bool) -> Vec<String> {
        let out = self.run(&[
            "get",
            "pods",
            "-l",
            &format!("app={app}"),
            "-o",
            "jsonpath={range .items[*]}{.metadata.name} {.metadata.deletionTimestamp}{\"\\n\"}{end}",
        ]);
        let mut v: Vec<String> = out
            .lines()
            .filter_map(|l| {
                let mut parts = l.split_whitespace();
                let name = parts.next()?;
                let going = parts.next().is_some();
                (!deleting || going).then(|| name.to_string())
            })
            .collect();
        v.sort();
        v
    }

    /// Open a pod's readiness gate and report it Ready, as its kubelet would.
    fn make_ready(&self, pod: &str) {
        self.run(&[
            "patch",
            "pod",
            pod,
            "--subresource=status",
            "--type=strategic",
            "-p",
            &format!(
                r#"{{"status":{{"conditions":[{{"type":"{GATE}","status":"True"}},{{"type":"Ready","status":"True"}}]}}}}"#
            ),
        ]);
    }

    fn release(&self, pod: &str) {
        self.run(&[
            "patch",
            "pod",
            pod,
            "--type=merge",
            "-p",
            r#"{"metadata":{"finalizers":null}}"#,
        ]);
    }

    fn rollout_status(&self, what: &str, timeout: &str) -> Run {
        self.k.run(&[
            "rollout",
            "status",
            what,
            "-n",
            self.ns,
            &format!("--timeout={timeout}"),
        ])
    }
}

fn stateful_set() -> String {
    format!(
        "apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  clusterIP: None
  selector:
    app: web
  ports:
  - port: 80
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  replicas: 3
  serviceName: web
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
      finalizers:
      - {HOLD}
    spec:
      readinessGates:
      - conditionType: {GATE}
      containers:
      - name: web
        image: nginx:1.25
"
    )
}

fn stateful_set_scenario(s: &Scenario) {
    s.apply(&stateful_set());
    s.eventually("web-0 alone, not Ready yet", || {
        s.pods("web", false) == ["web-0"]
    });
    let waiting = s.rollout_status("statefulset/web", "1s");
    assert!(!waiting.ok, "{waiting:?}");
    assert!(
        waiting.stdout.contains("Waiting for 3 pods to be ready..."),
        "{waiting:?}"
    );
    for (i, next) in [(0, "web-1"), (1, "web-2")] {
        s.make_ready(&format!("web-{i}"));
        s.eventually(&format!("{next} follows web-{i}"), || {
            s.pods("web", false).last().map(String::as_str) == Some(next)
        });
    }
    assert_eq!(s.pods("web", false), ["web-0", "web-1", "web-2"]);
    s.make_ready("web-2");
    s.eventually("three ready replicas", || {
        s.run(&[
            "get",
            "sts",
            "web",
            "-o",
            "jsonpath={.status.readyReplicas}",
        ]) == "3"
    });
    let done = s.rollout_status("statefulset/web", "60s");
    assert!(done.ok, "{done:?}");
    assert!(
        done.stdout
            .contains("partitioned roll out complete: 3 new pods have been updated..."),
        "{done:?}"
    );
    // Identity and revision.
    let pod =
        s.k.run(&["get", "pod", "web-1", "-n", s.ns, "-o", "json"])
            .success()
            .json();
    assert_eq!(pod["spec"]["hostname"], "web-1");
    assert_eq!(pod["spec"]["subdomain"], "web");
    assert_eq!(
        pod["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"],
        "web-1"
    );
    let update = s.run(&[
        "get",
        "sts",
        "web",
        "-o",
        "jsonpath={.status.updateRevision}",
    ]);
    assert_eq!(
        pod["metadata"]["labels"]["controller-revision-hash"],
        update.as_str()
    );
    assert_eq!(
        s.run(&[
            "get",
            "sts",
            "web",
            "-o",
            "jsonpath={.status.currentRevision}"
        ]),
        update
    );
    let history = s.run(&["rollout", "history", "statefulset/web"]);
    assert!(
        history.lines().any(|l| l.trim_start().starts_with('1')),
        "{history}"
    );

    // Scale down with kubectl scale: the highest ordinal first, one at a time.
    s.run(&["scale", "statefulset", "web", "--replicas=1"]);
    s.eventually("web-2 goes first", || s.pods("web", true) == ["web-2"]);
    assert_eq!(s.pods("web", false), ["web-0", "web-1", "web-2"]);
    s.release("web-2");
    s.eventually("then web-1", || s.pods("web", true) == ["web-1"]);
    assert_eq!(s.pods("web", false), ["web-0", "web-1"]);
    s.release("web-1");
    s.eventually("web-0 is left", || s.pods("web", false) == ["web-0"]);
    let done = s.rollout_status("statefulset/web", "60s");
    assert!(done.ok, "{done:?}");
    assert_eq!(
        s.run(&["get", "sts", "web", "-o", "jsonpath={.status.replicas}"]),
        "1"
    );

    // Scale up again: web-1 comes back, then waits to be Ready before web-2.
    s.run(&["scale", "statefulset", "web", "--replicas=3"]);
    s.eventually("web-1 comes back", || {
        s.pods("web", false) == ["web-0", "web-1"]
    });
    s.make_ready("web-1");
    s.eventually("then web-2", || {
        s.pods("web", false) == ["web-0", "web-1", "web-2"]
    });
    s.make_ready("web-2");
    let done = s.rollout_status("statefulset/web", "60s");
    assert!(done.ok, "{done:?}");

    // Clean up: the pods are held.
    s.run(&["delete", "statefulset", "web", "--wait=false"]);
    for p in ["web-0", "web-1", "web-2"] {
        s.release(p);
    }
    s.eventually("the pods go with their set", || {
        s.pods("web", false).is_empty()
    });
}

const DAEMON_SET: &str = "apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
spec:
  selector:
    matchLabels:
      app: agent
  template:
    metadata:
      labels:
        app: agent
    spec:
      containers:
      - name: agent
        image: fluentd:1
";

fn daemon_set_scenario(s: &Scenario) {
    let mut nodes: Vec<String> =
        s.k.run(&["get", "nodes", "-o", "jsonpath={.items[*].metadata.name}"])
            .success()
            .stdout
            .split_whitespace()
            .map(str::to_string)
            .collect();
    nodes.sort();
    assert!(!nodes.is_empty());
    let nodes_of_pods = || {
        let mut v: Vec<String> = s
            .run(&[
                "get",
                "pods",
                "-l",
                "app=agent",
                "-o",
                "jsonpath={.items[*].spec.nodeName}",
            ])
            .split_whitespace()
            .map(str::to_string)
            .collect();
        v.sort();
        v
    };
    s.apply(DAEMON_SET);
    s.eventually("a pod on every node", || nodes_of_pods() == nodes);
    let done = s.rollout_status("daemonset/agent", "60s");
    assert!(done.ok, "{done:?}");
    assert!(
        done.stdout
            .contains("daemon set \"agent\" successfully rolled out"),
        "{done:?}"
    );
    let ds =
        s.k.run(&["get", "ds", "agent", "-n", s.ns, "-o", "json"])
            .success()
            .json();
    let n = nodes.len();
    for field in [
        "desiredNumberScheduled",
        "currentNumberScheduled",
        "numberReady",
        "numberAvailable",
        "updatedNumberScheduled",
    ] {
        assert_eq!(ds["status"][field], n, "{field}: {}", ds["status"]);
    }
    // kubectl get ds: DESIRED CURRENT READY UP-TO-DATE AVAILABLE.
    let table = s.run(&["get", "ds", "agent", "--no-headers"]);
    let cols: Vec<&str> = table.split_whitespace().collect();
    assert_eq!(&cols[1..6], [n.to_string().as_str(); 5], "{table}");

    // A new image, rolled node by node.
    s.run(&["set", "image", "daemonset/agent", "agent=fluentd:2"]);
    let done = s.rollout_status("daemonset/agent", "60s");
    assert!(done.ok, "{done:?}");
    s.eventually("every pod runs the new image", || {
        let images = s.run(&[
            "get",
            "pods",
            "-l",
            "app=agent",
            "-o",
            "jsonpath={.items[*].spec.containers[0].image}",
        ]);
        let images: Vec<&str> = images.split_whitespace().collect();
        images.len() == n && images.iter().all(|i| *i == "fluentd:2")
    });
    assert_eq!(nodes_of_pods(), nodes);
    let history = s.run(&["rollout", "history", "daemonset/agent"]);
    let revisions: Vec<&str> = history
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.chars().all(|c| c.is_ascii_digit()))
        .collect();
    assert_eq!(revisions, ["1", "2"], "{history}");

    // Undo: back to the first template, as a third revision.
    s.run(&["rollout", "undo", "daemonset/agent"]);
    let done = s.rollout_status("daemonset/agent", "60s");
    assert!(done.ok, "{done:?}");
    s.eventually("every pod runs the first image again", || {
        let images = s.run(&[
            "get",
            "pods",
            "-l",
            "app=agent",
            "-o",
            "jsonpath={.items[*].spec.containers[0].image}",
        ]);
        let images: Vec<&str> = images.split_whitespace().collect();
        images.len() == n && images.iter().all(|i| *i == "fluentd:1")
    });
    let history = s.run(&["rollout", "history", "daemonset/agent"]);
    let revisions: Vec<&str> = history
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.chars().all(|c| c.is_ascii_digit()))
        .collect();
    assert_eq!(revisions, ["2", "3"], "{history}");
    s.run(&["delete", "daemonset", "agent"]);
    s.eventually("the pods go with their DaemonSet", || {
        nodes_of_pods().is_empty()
    });
}

fn run(version: &str, scenario: fn(&Scenario)) {
    let bin = kubectl_bin(version);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let target = rt.block_on(Target::start_with(Backend::Memory, |b| b.nodes(3)));
    let k = Kubectl::new(version, &bin, &target);
    let ns = target.namespace.clone();
    k.run(&["create", "namespace", &ns]).success();
    scenario(&Scenario {
        k: &k,
        target: &target,
        rt: &rt,
        ns: &ns,
    });
    k.run(&["delete", "namespace", &ns, "--wait=false"])
        .success();
    rt.block_on(target.stop());
}

#[test]
fn kubectl_1_27_stateful_set_scales_in_order() {
    run("1.27", stateful_set_scenario);
}

#[test]
fn kubectl_1_35_stateful_set_scales_in_order() {
    run("1.35", stateful_set_scenario);
}

#[test]
fn kubectl_1_27_daemon_set_on_every_node() {
    run("1.27", daemon_set_scenario);
}

#[test]
fn kubectl_1_35_daemon_set_on_every_node() {
    run("1.35", daemon_set_scenario);
}
