//! Simulated nodes and their kubelets (as kwok simulates them): no containers, no images, no
//! network — Node objects, their heartbeats, and pods moved through their lifecycle by the
//! server clock.
//!
//! - **Nodes.** `kubox-node-0` … `kubox-node-<N-1>` register as Ready Nodes with kube's
//!   well-known labels, capacity and allocatable ([`NodeOptions`]), a pod CIDR
//!   (`10.244.<i>.0/24`, and on from `10.245.0.0` past 256 nodes) and an InternalIP
//!   (`172.18.<…>`). A node deleted while kubox runs stays deleted, until the next start.
//! - **Heartbeats.** Each node's Lease in `kube-node-lease` is renewed every 10 s (a quarter of
//!   its 40 s duration, as the kubelet does) and its Ready condition's `lastHeartbeatTime` every
//!   5 minutes, on the server clock: a timer each, nothing polls.
//! - **Pods bound to a node.** Pending → Running at once: host and pod IPs, `startTime`,
//!   running container statuses (init containers completed first), and the conditions
//!   `PodReadyToStartContainers`, `Initialized`, `ContainersReady` and `Ready` True (`Ready`
//!   waits for the pod's readiness gates). A pod whose `restartPolicy` is `Never` or
//!   `OnFailure` runs for the run time ([`NodeOptions::pod_run_time`], or the pod's
//!   `kubox.dev/run-for` annotation, a Go duration) and exits with the code of its
//!   `kubox.dev/exit-code` annotation (default 0): 0 → Succeeded; otherwise Failed under
//!   `Never`, and under `OnFailure` the containers restart after kube's crash-loop back-off
//!   (10 s, doubling, at most 5 minutes), `restartCount` counting.
//! - **Deletion.** A bound pod being deleted gracefully (see `registry::hooks`) has its
//!   containers stopped — at once, or after its `kubox.dev/stop-after` annotation (a Go
//!   duration, at most the grace period, after which they would be killed) — then it is
//!   reported Failed (containers terminated with exit code 137) and deleted with a grace period
//!   of 0, as a kubelet does when its containers are gone.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::future::join_all;
use serde_json::{json, Value};

use super::workload::{
    is_terminal, later, put_condition, stamp, time_at, uid_of, Cache, Expectations, Timers, Writer,
};
use super::{Controller, Interest, Msg, Queue, Reconciler};
use crate::objects::{name_of, namespace_of};
use crate::registry::store;
use crate::registry::Backend;
use crate::status::ApiResult;

/// The annotation asking a pod to run for a while before it exits (Go duration).
pub const RUN_FOR_ANNOTATION: &str = "kubox.dev/run-for";
/// The annotation giving the exit code of a pod's containers.
pub const EXIT_CODE_ANNOTATION: &str = "kubox.dev/exit-code";
/// The annotation saying how long a pod's containers take to stop once it is deleted (Go
/// duration, at most its grace period; default: at once).
pub const STOP_AFTER_ANNOTATION: &str = "kubox.dev/stop-after";
/// The label and annotation marking a node as simulated.
pub const SIMULATED_LABEL: &str = "kubox.dev/simulated";

/// How many pods one round handles at once.
const POD_BATCH: usize = 64;
/// How often a node's Lease is renewed.
const LEASE_RENEW: Duration = Duration::from_secs(10);
/// A node Lease's duration.
const LEASE_SECONDS: i64 = 40;
/// How often the node status is reported when nothing changes (nodeStatusReportFrequency).
const STATUS_REPORT: Duration = Duration::from_secs(300);
/// The first crash-loop back-off, doubled at each restart up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(10);
/// The longest crash-loop back-off.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// The simulated nodes.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    /// How many nodes (0: none, and no scheduler, kubelets or workload controllers by default).
    pub count: u32,
    /// How long a pod with `restartPolicy` Never or OnFailure runs before it exits (default 0:
    /// it completes at once). A pod's `kubox.dev/run-for` annotation overrides it.
    pub pod_run_time: Duration,
    /// Each node's CPU capacity.
    pub cpu: String,
    /// Each node's memory capacity.
    pub memory: String,
    /// How many pods each node takes.
    pub pods: u32,
}

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions {
            count: 0,
            pod_run_time: Duration::ZERO,
            cpu: "32".into(),
            memory: "256Gi".into(),
            pods: 110,
        }
    }
}

impl NodeOptions {
    /// The name of node `i`.
    pub fn node_name(i: u32) -> String {
        format!("kubox-node-{i}")
    }
}

/// One simulated node.
struct SimNode {
    name: String,
    /// The first three octets of its pod CIDR.
    cidr: [u8; 3],
    host_ip: String,
    /// Registered by this process (a node deleted afterwards stays deleted).
    registered: bool,
    /// When its status was last reported.
    reported: Option<SystemTime>,
}

/// Every simulated kubelet, as one reconciler. Keys: `n/<node>` (registration and heartbeats)
/// and `p/<pod storage key>`.
pub struct Kubelets {
    opts: NodeOptions,
    nodes: Vec<SimNode>,
    by_name: HashMap<String, usize>,
    node_cache: Cache,
    pods: Cache,
    /// Pod IPs given, by pod key (before and after the pod's status says so).
    ips: HashMap<String, (usize, String)>,
    timers: Timers,
    expect: Expectations,
}

impl Kubelets {
    /// The kubelets of `opts.count` nodes.
    pub fn new(opts: NodeOptions) -> Self {
        let nodes: Vec<SimNode> = (0..opts.count)
            .map(|i| {
                let ip = i + 2;
                SimNode {
                    name: NodeOptions::node_name(i),
                    cidr: [10, (244 + i / 256).min(255) as u8, (i % 256) as u8],
                    host_ip: format!("172.18.{}.{}", ip / 256, ip % 256),
                    registered: false,
                    reported: None,
                }
            })
            .collect();
        let by_name = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.clone(), i))
            .collect();
        Kubelets {
            opts,
            nodes,
            by_name,
            node_cache: Cache::new("", "nodes"),
            pods: Cache::new("", "pods"),
            ips: HashMap::new(),
            timers: Timers::default(),
            expect: Expectations::default(),
        }
    }

    fn node_of(&self, pod: &Value) -> Option<usize> {
        let n = pod["spec"]["nodeName"].as_str()?;
        self.by_name.get(n).copied()
    }

    /// A free pod IP on node `i`.
    fn free_ip(&self, i: usize) -> Option<String> {
        let node = &self.nodes[i];
        let prefix = format!("{}.{}.{}.", node.cidr[0], node.cidr[1], node.cidr[2]);
        let used: BTreeSet<&str> = self
            .ips
            .values()
            .filter(|(n, _)| *n == i)
            .map(|(_, ip)| ip.as_str())
            .collect();
        (2..255)
            .map(|o| format!("{prefix}{o}"))
            .find(|ip| !used.contains(ip.as_str()))
    }

    fn node_object(&self, i: usize, now: &str) -> Value {
        let n = &self.nodes[i];
        let cidr = format!("{}.{}.{}.0/24", n.cidr[0], n.cidr[1], n.cidr[2]);
        json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": n.name,
                "labels": {
                    "beta.kubernetes.io/arch": "amd64",
                    "beta.kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "kubernetes.io/hostname": n.name,
                    "kubernetes.io/os": "linux",
                    "node.kubernetes.io/instance-type": "kubox",
                    SIMULATED_LABEL: "true",
                },
                "annotations": {
                    "node.alpha.kubernetes.io/ttl": "0",
                    "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                },
            },
            "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
            "status": self.node_status(i, now),
        })
    }

    fn node_status(&self, i: usize, now: &str) -> Value {
        let n = &self.nodes[i];
        let resources = json!({
            "cpu": self.opts.cpu,
            "memory": self.opts.memory,
            "pods": self.opts.pods.to_string(),
            "ephemeral-storage": "100Gi",
        });
        let cond = |ty: &str, status: &str, reason: &str, message: &str| {
            json!({
                "type": ty, "status": status, "reason": reason, "message": message,
                "lastHeartbeatTime": now, "lastTransitionTime": now,
            })
        };
        json!({
            "capacity": resources,
            "allocatable": resources,
            "conditions": [
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "addresses": [
                {"type": "InternalIP", "address": n.host_ip},
                {"type": "Hostname", "address": n.name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": "",
                "containerRuntimeVersion": "kubox://1.35.0",
                "kernelVersion": "",
                "kubeProxyVersion": "",
                "kubeletVersion": format!("v1.{}.0", crate::version::KUBERNETES_MINOR),
                "machineID": "",
                "operatingSystem": "linux",
                "osImage": "kubox simulated node",
                "systemUUID": "",
            },
        })
    }

    async fn reconcile_node(&mut self, state: &Arc<Backend>, i: usize) -> ApiResult<()> {
        let now = state.clock.now();
        let at = stamp(now);
        let name = self.nodes[i].name.clone();
        let kubelet = Writer { agent: "kubelet" };
        let node_key = self.node_cache.key("", &name);
        let existing = self.node_cache.get(&node_key).cloned();
        let node = match existing {
            Some(n) => n,
            None if !self.nodes[i].registered => {
                let created = kubelet
                    .create(state, "", "nodes", "", self.node_object(i, &at))
                    .await?;
                self.nodes[i].registered = true;
                self.nodes[i].reported = Some(now);
                let status = self.node_status(i, &at);
                // Status is the kubelet's to report, through its subresource.
                kubelet
                    .update(state, "", "nodes", "", &name, "status", None, |n| {
                        if n["status"]["conditions"].is_array() {
                            return false;
                        }
                        n["status"] = status.clone();
                        true
                    })
                    .await?;
                match created {
                    Some(n) => Arc::new(n),
                    None => return Ok(()),
                }
            }
            // Deleted while we ran: stays deleted.
            None => return Ok(()),
        };
        self.nodes[i].registered = true;
        let uid = uid_of(&node).to_string();
        // The Lease.
        let renew = micro_time(now);
        let lease = json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": name,
                "namespace": "kube-node-lease",
                "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": name, "uid": uid}],
            },
            "spec": {
                "holderIdentity": name,
                "leaseDurationSeconds": LEASE_SECONDS,
                "renewTime": renew,
            },
        });
        let renewed = kubelet
            .update(
                state,
                "coordination.k8s.io",
                "leases",
                "kube-node-lease",
                &name,
                "",
                None,
                |l| {
                    l["spec"]["holderIdentity"] = json!(name);
                    l["spec"]["leaseDurationSeconds"] = json!(LEASE_SECONDS);
                    l["spec"]["renewTime"] = json!(renew);
                    true
                },
            )
            .await?;
        if !renewed {
            kubelet
                .create(
                    state,
                    "coordination.k8s.io",
                    "leases",
                    "kube-node-lease",
                    lease,
                )
                .await?;
        }
        // The status report, every 5 minutes.
        let report_due = self.nodes[i]
            .reported
            .is_none_or(|t| t + STATUS_REPORT <= now);
        if report_due {
            kubelet
                .update(state, "", "nodes", "", &name, "status", Some(&uid), |n| {
                    let Some(conds) = n["status"]["conditions"].as_array_mut() else {
                        return false;
                    };
                    for c in conds.iter_mut() {
                        c["lastHeartbeatTime"] = json!(at);
                    }
                    true
                })
                .await?;
            self.nodes[i].reported = Some(now);
        }
        let next_report = self.nodes[i].reported.unwrap_or(now) + STATUS_REPORT;
        self.timers
            .at(&format!("n/{name}"), (now + LEASE_RENEW).min(next_report));
        Ok(())
    }

    async fn reconcile_pod(
        &self,
        state: &Arc<Backend>,
        key: &str,
    ) -> ApiResult<(bool, Option<SystemTime>)> {
        let mut timer = None;
        let Some(pod) = self.pods.get(key).cloned() else {
            return Ok((false, timer));
        };
        let Some(i) = self.node_of(&pod) else {
            return Ok((false, timer));
        };
        let kubelet = Writer { agent: "kubelet" };
        let (ns, name) = (namespace_of(&pod).to_string(), name_of(&pod).to_string());
        let uid = uid_of(&pod).to_string();
        if store::is_deleting(&pod) {
            if pod["metadata"]["deletionGracePeriodSeconds"].as_i64() == Some(0) {
                // Deleted already; finalizers hold it.
                return Ok((false, timer));
            }
            if !is_terminal(&pod) && pod["status"]["startTime"].is_string() {
                // The containers stop at once, or after `kubox.dev/stop-after` (at most the
                // grace period, when they would be killed) …
                let now = state.clock.now();
                let grace = pod["metadata"]["deletionGracePeriodSeconds"]
                    .as_i64()
                    .unwrap_or(0)
                    .max(0);
                let deadline = time_at(&pod["metadata"]["deletionTimestamp"]).unwrap_or(now);
                let asked = pod["metadata"]["annotations"][STOP_AFTER_ANNOTATION]
                    .as_str()
                    .and_then(|d| crate::query::parse_duration(d).ok())
                    .unwrap_or(Duration::ZERO)
                    .min(Duration::from_secs(grace.unsigned_abs()));
                let stops = deadline
                    .checked_sub(Duration::from_secs(grace.unsigned_abs()))
                    .unwrap_or(deadline)
                    + asked;
                if stops > now {
                    timer = Some(stops);
                    return Ok((false, timer));
                }
                // … and the pod is reported in its terminal phase (exit code 137) before it is
                // deleted, as the kubelet does.
                let at = stamp(now);
                kubelet
                    .update(state, "", "pods", &ns, &name, "status", Some(&uid), |p| {
                        if is_terminal(p) {
                            return false;
                        }
                        p["status"]["phase"] = json!("Failed");
                        for list in ["containerStatuses", "initContainerStatuses"] {
                            for c in p["status"][list].as_array_mut().into_iter().flatten() {
                                if c["state"]["terminated"].is_object() {
                                    continue;
                                }
                                c["state"] = json!({"terminated": {
                                    "exitCode": 137, "reason": "Error",
                                    "startedAt": c["state"]["running"]["startedAt"].clone(),
                                    "finishedAt": at, "containerID": c["containerID"].clone(),
                                }});
                                c["ready"] = json!(false);
                                c["started"] = json!(false);
                            }
                        }
                        put_condition(p, "ContainersReady", "False", "PodFailed", "", &at);
                        put_condition(p, "Ready", "False", "PodFailed", "", &at);
                        tidy_conditions(p);
                        true
                    })
                    .await?;
                return Ok((true, timer));
            }
            return kubelet
                .delete(state, "", "pods", &ns, &name, Some(&uid), None, Some(0))
                .await
                .map(|_| (true, timer));
        }
        if is_terminal(&pod) {
            return Ok((false, timer));
        }
        let now = state.clock.now();
        let at = stamp(now);
        let policy = pod["spec"]["restartPolicy"].as_str().unwrap_or("Always");
        let started =
            pod["status"]["startTime"].is_string() && pod["status"]["containerStatuses"].is_array();
        if !started {
            let host_network = pod["spec"]["hostNetwork"] == true;
            let host_ip = self.nodes[i].host_ip.clone();
            // The address was reserved before the batch ran (see `reserve_ip`).
            let pod_ip = if host_network {
                Some(host_ip.clone())
            } else {
                self.ips.get(key).map(|(_, ip)| ip.clone())
            };
            let Some(pod_ip) = pod_ip else {
                // No address left on the node: it stays Pending.
                return Ok((false, timer));
            };
            let status = running_status(&pod, &host_ip, &pod_ip, &at);
            kubelet
                .update(state, "", "pods", &ns, &name, "status", Some(&uid), |p| {
                    if p["status"]["startTime"].is_string() || store::is_deleting(p) {
                        return false;
                    }
                    for (k, v) in status.as_object().into_iter().flatten() {
                        p["status"][k] = v.clone();
                    }
                    set_ready_conditions(p, &at);
                    true
                })
                .await?;
            if policy != "Always" {
                timer = Some(later(now, self.run_for(&pod)));
            }
            return Ok((true, timer));
        }
        // Readiness gates: Ready follows the conditions others set.
        let gated = pod["spec"]["readinessGates"]
            .as_array()
            .is_some_and(|g| !g.is_empty());
        let containers_ready = super::workload::condition(&pod, "ContainersReady")
            .is_some_and(|c| c["status"] == "True");
        if gated && containers_ready {
            let mut want = (*pod).clone();
            set_ready_conditions(&mut want, &at);
            let ready =
                |p: &Value| super::workload::condition(p, "Ready").map(|c| c["status"].clone());
            if ready(&want) != ready(&pod) {
                kubelet
                    .update(state, "", "pods", &ns, &name, "status", Some(&uid), |p| {
                        let before = ready(p);
                        set_ready_conditions(p, &at);
                        ready(p) != before
                    })
                    .await?;
                return Ok((true, timer));
            }
        }
        if policy == "Always" {
            return Ok((false, timer));
        }
        // Runs to completion: when the current run ends, or a back-off is over.
        let statuses = pod["status"]["containerStatuses"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let waiting = statuses
            .iter()
            .any(|c| c["state"]["waiting"]["reason"] == "CrashLoopBackOff");
        if waiting {
            let restarts = statuses
                .iter()
                .map(|c| c["restartCount"].as_i64().unwrap_or(0))
                .max()
                .unwrap_or(0);
            let finished = statuses
                .iter()
                .filter_map(|c| time_at(&c["lastState"]["terminated"]["finishedAt"]))
                .max()
                .unwrap_or(now);
            let due = finished + backoff(restarts);
            if due > now {
                timer = Some(due);
                return Ok((false, timer));
            }
            kubelet
                .update(state, "", "pods", &ns, &name, "status", Some(&uid), |p| {
                    let Some(cs) = p["status"]["containerStatuses"].as_array_mut() else {
                        return false;
                    };
                    for c in cs.iter_mut() {
                        c["state"] = json!({"running": {"startedAt": at}});
                        c["ready"] = json!(true);
                        c["started"] = json!(true);
                    }
                    set_ready_conditions(p, &at);
                    true
                })
                .await?;
            timer = Some(later(now, self.run_for(&pod)));
            return Ok((true, timer));
        }
        let began = statuses
            .iter()
            .filter_map(|c| time_at(&c["state"]["running"]["startedAt"]))
            .max()
            .unwrap_or(now);
        let ends = later(began, self.run_for(&pod));
        if ends > now {
            timer = Some(ends);
            return Ok((false, timer));
        }
        let code = pod["metadata"]["annotations"][EXIT_CODE_ANNOTATION]
            .as_str()
            .and_then(|c| c.trim().parse::<i64>().ok())
            .unwrap_or(0);
        let terminated = json!({
            "exitCode": code,
            "reason": if code == 0 { "Completed" } else { "Error" },
            "startedAt": stamp(began),
            "finishedAt": at,
            "containerID": "",
        });
        if code != 0 && policy == "OnFailure" {
            kubelet
                .update(state, "", "pods", &ns, &name, "status", Some(&uid), |p| {
                    let pod_name = name_of(p).to_string();
                    let pod_ns = namespace_of(p).to_string();
                    let pod_uid = uid_of(p).to_string();
                    let Some(cs) = p["status"]["containerStatuses"].as_array_mut() else {
                        return false;
                    };
                    for c in cs.iter_mut() {
                        let restarts = c["restartCount"].as_i64().unwrap_or(0) + 1;
                        let mut t = terminated.clone();
                        t["containerID"] = c["containerID"].clone();
                        c["lastState"] = json!({"terminated": t});
                        c["restartCount"] = json!(restarts);
                        c["ready"] = json!(false);
                        c["started"] = json!(false);
                        c["state"] = json!({"waiting": {
                            "reason": "CrashLoopBackOff",
                            "message": format!(
                                "back-off {} restarting failed container={} pod={pod_name}_{pod_ns}({pod_uid})",
                                go_duration(backoff(restarts)),
                                c["name"].as_str().unwrap_or_default()
                            ),
                        }});
                    }
                    put_condition(p, "ContainersReady", "False", "ContainersNotReady", "containers with unready status", &at);
                    put_condition(p, "Ready", "False", "ContainersNotReady", "containers with unready status", &at);
                    true
                })
                .await?;
            timer = Some(now + backoff(1));
            return Ok((true, timer));
        }
        let phase = if code == 0 { "Succeeded" } else { "Failed" };
        kubelet
            .update(state, "", "pods", &ns, &name, "status", Some(&uid), |p| {
                if is_terminal(p) {
                    return false;
                }
                p["status"]["phase"] = json!(phase);
                if let Some(cs) = p["status"]["containerStatuses"].as_array_mut() {
                    for c in cs.iter_mut() {
                        let mut t = terminated.clone();
                        t["containerID"] = c["containerID"].clone();
                        c["state"] = json!({"terminated": t});
                        c["ready"] = json!(false);
                        c["started"] = json!(false);
                    }
                }
                let reason = if code == 0 {
                    "PodCompleted"
                } else {
                    "PodFailed"
                };
                put_condition(p, "PodReadyToStartContainers", "False", "", "", &at);
                put_condition(p, "ContainersReady", "False", reason, "", &at);
                put_condition(p, "Ready", "False", reason, "", &at);
                tidy_conditions(p);
                true
            })
            .await?;
        Ok((true, timer))
    }

    /// Reserve a pod IP for a pod about to start (before pods start concurrently).
    fn reserve_ip(&mut self, key: &str) {
        let Some(pod) = self.pods.get(key) else {
            return;
        };
        let Some(i) = self.node_of(pod) else {
            return;
        };
        let starting =
            !pod["status"]["startTime"].is_string() && pod["spec"]["hostNetwork"] != true;
        if starting && !self.ips.contains_key(key) {
            if let Some(ip) = self.free_ip(i) {
                self.ips.insert(key.to_string(), (i, ip));
            }
        }
    }

    fn run_for(&self, pod: &Value) -> Duration {
        pod["metadata"]["annotations"][RUN_FOR_ANNOTATION]
            .as_str()
            .and_then(|d| crate::query::parse_duration(d).ok())
            .unwrap_or(self.opts.pod_run_time)
    }
}

/// Crash-loop back-off before restart number `restarts` (1-based).
fn backoff(restarts: i64) -> Duration {
    let shift = u32::try_from(restarts.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
    FIRST_BACKOFF.saturating_mul(1u32 << shift).min(MAX_BACKOFF)
}

/// A duration as Go prints it (`10s`, `5m0s`).
fn go_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 {
        format!("{}m{}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// metav1.MicroTime.
fn micro_time(t: SystemTime) -> String {
    let dt: chrono::DateTime<chrono::Utc> = t.into();
    dt.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// A stable hex id from some text (container and image ids).
fn hex_id(text: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// A container image as the runtime reports it (`nginx` → `docker.io/library/nginx:latest`).
fn full_image(image: &str) -> String {
    let (name, tagged) = match image.rsplit_once('/') {
        Some((_, last)) => (image.to_string(), last.contains(':') || last.contains('@')),
        None => (
            image.to_string(),
            image.contains(':') || image.contains('@'),
        ),
    };
    let first = name.split('/').next().unwrap_or_default();
    let qualified = if !name.contains('/') {
        format!("docker.io/library/{name}")
    } else if first.contains('.') || first.contains(':') || first == "localhost" {
        name
    } else {
        format!("docker.io/{name}")
    };
    if tagged {
        qualified
    } else {
        format!("{qualified}:latest")
    }
}

fn container_status(pod: &Value, c: &Value, state: Value, ready: bool, started: bool) -> Value {
    let name = c["name"].as_str().unwrap_or_default();
    let image = c["image"].as_str().unwrap_or_default();
    let full = full_image(image);
    let repo = full
        .rsplit_once(':')
        .filter(|(_, t)| !t.contains('/'))
        .map_or(full.as_str(), |(r, _)| r)
        .to_string();
    json!({
        "name": name,
        "image": full,
        "imageID": format!("{repo}@sha256:{}", hex_id(image)),
        "containerID": format!("kubox://{}", hex_id(&format!("{}/{name}", uid_of(pod)))),
        "ready": ready,
        "started": started,
        "restartCount": 0,
        "state": state,
        "lastState": {},
    })
}

/// The status of a pod whose containers just started.
fn running_status(pod: &Value, host_ip: &str, pod_ip: &str, at: &str) -> Value {
    let spec = &pod["spec"];
    let containers: Vec<Value> = spec["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| container_status(pod, c, json!({"running": {"startedAt": at}}), true, true))
        .collect();
    let init: Vec<Value> = spec["initContainers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            if c["restartPolicy"] == "Always" {
                // A sidecar: keeps running.
                container_status(pod, c, json!({"running": {"startedAt": at}}), true, true)
            } else {
                container_status(
                    pod,
                    c,
                    json!({"terminated": {
                        "exitCode": 0, "reason": "Completed", "startedAt": at, "finishedAt": at,
                        "containerID": "",
                    }}),
                    true,
                    false,
                )
            }
        })
        .collect();
    let mut status = json!({
        "phase": "Running",
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": at,
        "containerStatuses": containers,
    });
    if !init.is_empty() {
        status["initContainerStatuses"] = Value::Array(init);
    }
    status
}

/// The conditions of a pod whose containers run and are ready (Ready also waits for its
/// readiness gates).
fn set_ready_conditions(p: &mut Value, at: &str) {
    put_condition(p, "PodReadyToStartContainers", "True", "", "", at);
    put_condition(p, "Initialized", "True", "", "", at);
    put_condition(p, "ContainersReady", "True", "", "", at);
    let gates: Vec<String> = p["spec"]["readinessGates"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|g| g["conditionType"].as_str().map(str::to_string))
        .collect();
    let missing: Vec<&String> = gates
        .iter()
        .filter(|g| super::workload::condition(p, g).is_none_or(|c| c["status"] != "True"))
        .collect();
    if missing.is_empty() {
        put_condition(p, "Ready", "True", "", "", at);
    } else {
        let names: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
        put_condition(
            p,
            "Ready",
            "False",
            "ReadinessGatesNotReady",
            &format!(
                "corresponding condition of pod readiness gate {:?} does not exist.",
                names[0]
            ),
            at,
        );
    }
    tidy_conditions(p);
}

/// kube's order of pod conditions; empty reasons and messages dropped.
fn tidy_conditions(p: &mut Value) {
    const ORDER: [&str; 6] = [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled",
        "DisruptionTarget",
    ];
    if let Some(conds) = p["status"]["conditions"].as_array_mut() {
        for c in conds.iter_mut() {
            if let Some(m) = c.as_object_mut() {
                m.retain(|k, v| !(matches!(k.as_str(), "reason" | "message") && v == ""));
                m.entry("lastProbeTime").or_insert(Value::Null);
            }
        }
        conds.sort_by_key(|c| {
            ORDER
                .iter()
                .position(|t| c["type"] == *t)
                .unwrap_or(ORDER.len())
        });
    }
}

#[async_trait::async_trait]
impl Reconciler for Kubelets {
    const CONTROLLER: Controller = Controller::Kubelet;

    fn interest(&self) -> Interest {
        Interest::caches([&self.node_cache, &self.pods])
    }

    fn expectations(&mut self) -> Option<&mut Expectations> {
        Some(&mut self.expect)
    }

    fn observe(&mut self, _state: &Backend, msg: &Msg, queue: &mut Queue) {
        if let Msg::Reset { .. } = msg {
            for n in &self.nodes {
                queue.add(format!("n/{}", n.name));
            }
        }
        // A simulated node deleted stays deleted (its heartbeat finds it gone).
        self.node_cache.observe(msg);
        for ch in self.pods.observe(msg) {
            match ch.new.as_deref() {
                Some(p) if !is_terminal(p) => {
                    if let (Some(i), Some(ip)) = (self.node_of(p), p["status"]["podIP"].as_str()) {
                        if p["spec"]["hostNetwork"] != true {
                            self.ips.insert(ch.key.clone(), (i, ip.to_string()));
                        }
                    }
                }
                _ => {
                    self.ips.remove(&ch.key);
                }
            }
            if ch.new.as_deref().and_then(|p| self.node_of(p)).is_some() {
                queue.add(format!("p/{}", ch.key));
            }
        }
    }

    async fn reconcile(
        &mut self,
        state: &Arc<Backend>,
        key: &str,
        queue: &mut Queue,
    ) -> ApiResult<()> {
        if let Some(node) = key.strip_prefix("n/") {
            let Some(i) = self.by_name.get(node).copied() else {
                return Ok(());
            };
            return self.reconcile_node(state, i).await;
        }
        if let Some(first) = key.strip_prefix("p/") {
            // Pods are handled in batches, their writes concurrent: each waits for its own
            // commit (sled's fsync), not for the others'.
            let mut keys = vec![first.to_string()];
            let mut others = Vec::new();
            while keys.len() < POD_BATCH {
                match queue.pop() {
                    Some(k) => match k.strip_prefix("p/") {
                        Some(p) => keys.push(p.to_string()),
                        None => others.push(k),
                    },
                    None => break,
                }
            }
            for k in others {
                queue.add(k);
            }
            keys.retain(|k| self.expect.satisfied(&format!("p/{k}")));
            for k in &keys {
                self.reserve_ip(k);
            }
            let results = join_all(keys.iter().map(|k| self.reconcile_pod(state, k))).await;
            let mut wrote = Vec::new();
            let mut first_error = None;
            for (k, r) in keys.iter().zip(results) {
                match r {
                    Ok((w, timer)) => {
                        if let Some(t) = timer {
                            self.timers.at(k, t);
                        }
                        if w {
                            wrote.push(k);
                        }
                    }
                    Err(e) if k == first => first_error = Some(e),
                    Err(_) => {
                        queue.failed(&format!("p/{k}"));
                    }
                }
            }
            if !wrote.is_empty() {
                if let Ok(rev) = state.store.current_revision().await {
                    for k in wrote {
                        self.expect.wait(&format!("p/{k}"), rev);
                    }
                }
            }
            return first_error.map_or(Ok(()), Err);
        }
        Ok(())
    }

    fn timers(&mut self) -> Option<&mut Timers> {
        Some(&mut self.timers)
    }

    fn take_due(&mut self, now: SystemTime, queue: &mut Queue) {
        let mut due = Queue::default();
        self.timers.take_due(now, &mut due);
        while let Some(k) = due.pop() {
            if k.starts_with("n/") {
                queue.add(k);
            } else {
                queue.add(format!("p/{k}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_reported_fully_qualified() {
        assert_eq!(full_image("nginx"), "docker.io/library/nginx:latest");
        assert_eq!(full_image("nginx:1.25"), "docker.io/library/nginx:1.25");
        assert_eq!(
            full_image("bitnami/redis"),
            "docker.io/bitnami/redis:latest"
        );
        assert_eq!(
            full_image("registry.k8s.io/pause:3.9"),
            "registry.k8s.io/pause:3.9"
        );
        assert_eq!(
            full_image("localhost:5000/app"),
            "localhost:5000/app:latest"
        );
    }

    #[test]
    fn crash_loop_back_off_doubles_up_to_five_minutes() {
        assert_eq!(backoff(1), Duration::from_secs(10));
        assert_eq!(backoff(2), Duration::from_secs(20));
        assert_eq!(backoff(5), Duration::from_secs(160));
        assert_eq!(backoff(6), Duration::from_secs(300));
        assert_eq!(backoff(1000), Duration::from_secs(300));
        assert_eq!(go_duration(Duration::from_secs(300)), "5m0s");
    }
}
