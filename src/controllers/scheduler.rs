//! The scheduler (kube-scheduler's default profile, reduced to what a cluster without
//! containers needs): binds each pending pod whose `schedulerName` is `default-scheduler` to a
//! node, through the same binding as `pods/binding`.
//!
//! Filters, as kube's plugins name their failures:
//! - NodeUnschedulable: `spec.unschedulable` nodes (unless tolerated);
//! - TaintToleration: `NoSchedule` / `NoExecute` taints the pod does not tolerate;
//! - NodeAffinity: `nodeSelector` and required node affinity (`matchExpressions` on labels with
//!   In, NotIn, Exists, DoesNotExist, Gt, Lt; `matchFields` on `metadata.name`);
//! - NodeResourcesFit: CPU, memory and pod count against allocatable, counting the requests of
//!   every pod bound and not finished (init containers by their maximum, plus overhead);
//! - NodePorts: host ports in use;
//! - InterPodAffinity: required pod affinity and anti-affinity over any topology key;
//! - a pod naming `spec.nodeName` is not the scheduler's; nodes not Ready are skipped.
//!
//! Among the nodes that fit, the least requested wins (CPU and memory fractions averaged),
//! then the one with fewest pods, then the name: replicas spread over nodes. A pod that fits
//! nowhere gets `PodScheduled=False`, reason `Unschedulable`, with kube's message ("0/3 nodes
//! are available: 3 Insufficient cpu. preemption: …") and is tried again when a node or a pod
//! changes. A bound pod counts at once (kube's assumed pods), before its change is observed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use futures::future::join_all;
use kubox_apimachinery::labels::LabelSelector;
use kubox_apimachinery::quantity::Quantity;
use serde_json::Value;

use super::workload::{is_terminal, put_condition, stamp, uid_of, Cache, Writer};
use super::{Controller, Interest, Msg, Queue, Reconciler};
use crate::objects::{labels_of, name_of, namespace_of};
use crate::registry::store;
use crate::registry::Backend;
use crate::status::ApiResult;

/// What a bound pod takes from its node.
#[derive(Clone, Default)]
struct Placed {
    node: String,
    namespace: String,
    cpu_milli: i64,
    memory: i64,
    ports: Vec<(String, i64, String)>,
    labels: BTreeMap<String, String>,
    /// Its anti-affinity terms (an incoming pod must not land in their domains either).
    anti: Vec<Value>,
}

/// The scheduler.
pub struct Scheduler {
    nodes: Cache,
    pods: Cache,
    placed: HashMap<String, Placed>,
    /// Pods that fit nowhere last time: tried again when nodes or pods change.
    unschedulable: BTreeSet<String>,
}

/// How many pending pods one round decides.
const BATCH: usize = 64;

impl Default for Scheduler {
    fn default() -> Self {
        Scheduler {
            nodes: Cache::new("", "nodes"),
            pods: Cache::new("", "pods"),
            placed: HashMap::new(),
            unschedulable: BTreeSet::new(),
        }
    }
}

fn quantity(v: &Value) -> Option<Quantity> {
    match v {
        Value::String(s) => Quantity::parse(s),
        Value::Number(n) => n.as_i64().map(Quantity::from_int),
        _ => None,
    }
}

fn milli(v: &Value) -> i64 {
    quantity(v).map_or(0, |q| q.scaled_value(-3))
}

fn units(v: &Value) -> i64 {
    quantity(v).map_or(0, |q| q.scaled_value(0))
}

/// A pod's requests: (cpu millis, memory bytes) — containers summed, init containers by their
/// maximum (sidecars added), plus the pod overhead.
fn requests(pod: &Value) -> (i64, i64) {
    let spec = &pod["spec"];
    let of = |c: &Value| {
        let r = &c["resources"]["requests"];
        (milli(&r["cpu"]), units(&r["memory"]))
    };
    let (mut cpu, mut mem) = (0, 0);
    for c in spec["containers"].as_array().into_iter().flatten() {
        let (a, b) = of(c);
        cpu += a;
        mem += b;
    }
    let (mut init_cpu, mut init_mem) = (0, 0);
    for c in spec["initContainers"].as_array().into_iter().flatten() {
        let (a, b) = of(c);
        if c["restartPolicy"] == "Always" {
            cpu += a;
            mem += b;
        } else {
            init_cpu = init_cpu.max(a);
            init_mem = init_mem.max(b);
        }
    }
    let overhead = &spec["overhead"];
    (
        cpu.max(init_cpu) + milli(&overhead["cpu"]),
        mem.max(init_mem) + units(&overhead["memory"]),
    )
}

fn host_ports(pod: &Value) -> Vec<(String, i64, String)> {
    let mut out = Vec::new();
    for c in pod["spec"]["containers"].as_array().into_iter().flatten() {
        for p in c["ports"].as_array().into_iter().flatten() {
            if let Some(hp) = p["hostPort"].as_i64().filter(|p| *p > 0) {
                out.push((
                    p["protocol"].as_str().unwrap_or("TCP").to_string(),
                    hp,
                    p["hostIP"].as_str().unwrap_or("0.0.0.0").to_string(),
                ));
            }
        }
    }
    out
}

fn is_ours(pod: &Value) -> bool {
    matches!(
        pod["spec"]["schedulerName"].as_str(),
        None | Some("" | "default-scheduler")
    )
}

fn is_pending(pod: &Value) -> bool {
    pod["spec"]["nodeName"].as_str().is_none_or(str::is_empty)
        && is_ours(pod)
        && !store::is_deleting(pod)
        && !is_terminal(pod)
        && pod["spec"]["schedulingGates"]
            .as_array()
            .is_none_or(|g| g.is_empty())
}

/// Does a toleration tolerate a taint (kube's ToleratesTaint)?
fn tolerates(t: &Value, taint: &Value) -> bool {
    let effect = t["effect"].as_str().unwrap_or_default();
    if !effect.is_empty() && Some(effect) != taint["effect"].as_str() {
        return false;
    }
    let key = t["key"].as_str().unwrap_or_default();
    if !key.is_empty() && Some(key) != taint["key"].as_str() {
        return false;
    }
    match t["operator"].as_str().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" => {
            t["value"].as_str().unwrap_or_default() == taint["value"].as_str().unwrap_or_default()
        }
        _ => false,
    }
}

/// A node selector requirement on labels (or, for matchFields, on the node's name).
fn requirement_holds(req: &Value, value: Option<&str>) -> bool {
    let values: Vec<&str> = req["values"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    match req["operator"].as_str().unwrap_or_default() {
        "In" => value.is_some_and(|v| values.contains(&v)),
        "NotIn" => value.is_none_or(|v| !values.contains(&v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), Some(bound)) = (
                value.and_then(|v| v.parse::<i64>().ok()),
                values.first().and_then(|b| b.parse::<i64>().ok()),
            ) else {
                return false;
            };
            if req["operator"] == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

/// A NodeSelectorTerm: every requirement holds (an empty term matches nothing).
fn term_matches(term: &Value, node: &Value) -> bool {
    let labels = labels_of(node);
    let exprs = term["matchExpressions"].as_array();
    let fields = term["matchFields"].as_array();
    if exprs.is_none_or(|e| e.is_empty()) && fields.is_none_or(|f| f.is_empty()) {
        return false;
    }
    exprs.into_iter().flatten().all(|r| {
        requirement_holds(
            r,
            r["key"]
                .as_str()
                .and_then(|k| labels.get(k))
                .map(String::as_str),
        )
    }) && fields
        .into_iter()
        .flatten()
        .all(|r| r["key"] == "metadata.name" && requirement_holds(r, Some(name_of(node))))
}

fn node_affinity_fits(pod: &Value, node: &Value) -> bool {
    let labels = labels_of(node);
    if let Some(sel) = pod["spec"]["nodeSelector"].as_object() {
        for (k, v) in sel {
            if labels.get(k).map(String::as_str) != v.as_str() {
                return false;
            }
        }
    }
    let required =
        &pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"];
    match required["nodeSelectorTerms"].as_array() {
        Some(terms) if !terms.is_empty() => terms.iter().any(|t| term_matches(t, node)),
        _ => true,
    }
}

fn is_node_ready(node: &Value) -> bool {
    node["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// A pod affinity term's selector and namespaces (its own namespace when none are named).
fn term_selects(term: &Value, owner_ns: &str, ns: &str, labels: &BTreeMap<String, String>) -> bool {
    let namespaces: Vec<&str> = term["namespaces"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let in_ns = if namespaces.is_empty() && term["namespaceSelector"].is_null() {
        ns == owner_ns
    } else if !term["namespaceSelector"].is_null() {
        // A namespace selector: an empty one selects every namespace (labels of namespaces
        // are not consulted beyond that).
        term["namespaceSelector"].as_object().is_some_and(|m| {
            m.values()
                .all(|v| v.as_object().is_none_or(|o| o.is_empty()))
        }) || namespaces.contains(&ns)
    } else {
        namespaces.contains(&ns)
    };
    if !in_ns {
        return false;
    }
    let sel = LabelSelector::from_label_selector_json(&term["labelSelector"])
        .unwrap_or_else(|_| LabelSelector::nothing());
    !term["labelSelector"].is_null() && sel.matches(labels)
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Misfit {
    NotReady,
    Unschedulable,
    Taint,
    Affinity,
    Cpu,
    Memory,
    Pods,
    Ports,
    PodAffinity,
    PodAntiAffinity,
    ExistingAntiAffinity,
}

impl Misfit {
    fn message(self, taint: &str) -> String {
        match self {
            Misfit::NotReady => {
                "node(s) had untolerated taint {node.kubernetes.io/not-ready: }".into()
            }
            Misfit::Unschedulable => "node(s) were unschedulable".into(),
            Misfit::Taint => format!("node(s) had untolerated taint {{{taint}}}"),
            Misfit::Affinity => "node(s) didn't match Pod's node affinity/selector".into(),
            Misfit::Cpu => "Insufficient cpu".into(),
            Misfit::Memory => "Insufficient memory".into(),
            Misfit::Pods => "Too many pods".into(),
            Misfit::Ports => "node(s) didn't have free ports for the requested pod ports".into(),
            Misfit::PodAffinity => "node(s) didn't match pod affinity rules".into(),
            Misfit::PodAntiAffinity => "node(s) didn't match pod anti-affinity rules".into(),
            Misfit::ExistingAntiAffinity => {
                "node(s) didn't satisfy existing pods anti-affinity rules".into()
            }
        }
    }
}

impl Scheduler {
    fn place(&mut self, key: &str, pod: &Value, node: &str) {
        let anti = pod["spec"]["affinity"]["podAntiAffinity"]
            ["requiredDuringSchedulingIgnoredDuringExecution"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let (cpu_milli, memory) = requests(pod);
        self.placed.insert(
            key.to_string(),
            Placed {
                node: node.to_string(),
                namespace: namespace_of(pod).to_string(),
                cpu_milli,
                memory,
                ports: host_ports(pod),
                labels: labels_of(pod),
                anti,
            },
        );
    }

    /// Why `pod` does not fit `node` (None: it fits), with the untolerated taint's text.
    fn misfit(&self, pod: &Value, node: &Value, on_node: &[&Placed]) -> Option<(Misfit, String)> {
        let tolerations: Vec<&Value> = pod["spec"]["tolerations"]
            .as_array()
            .into_iter()
            .flatten()
            .collect();
        if !is_node_ready(node) {
            let not_ready =
                serde_json::json!({"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"});
            if !tolerations.iter().any(|t| tolerates(t, &not_ready)) {
                return Some((Misfit::NotReady, String::new()));
            }
        }
        if node["spec"]["unschedulable"] == true {
            let taint = serde_json::json!({"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"});
            if !tolerations.iter().any(|t| tolerates(t, &taint)) {
                return Some((Misfit::Unschedulable, String::new()));
            }
        }
        for taint in node["spec"]["taints"].as_array().into_iter().flatten() {
            if !matches!(taint["effect"].as_str(), Some("NoSchedule" | "NoExecute")) {
                continue;
            }
            if !tolerations.iter().any(|t| tolerates(t, taint)) {
                let text = format!(
                    "{}: {}",
                    taint["key"].as_str().unwrap_or_default(),
                    taint["value"].as_str().unwrap_or_default()
                );
                return Some((Misfit::Taint, text));
            }
        }
        if !node_affinity_fits(pod, node) {
            return Some((Misfit::Affinity, String::new()));
        }
        let alloc = &node["status"]["allocatable"];
        let (cpu, mem) = requests(pod);
        let used_cpu: i64 = on_node.iter().map(|p| p.cpu_milli).sum();
        let used_mem: i64 = on_node.iter().map(|p| p.memory).sum();
        if alloc.get("pods").is_some() && on_node.len() as i64 + 1 > units(&alloc["pods"]) {
            return Some((Misfit::Pods, String::new()));
        }
        if cpu > 0 && used_cpu + cpu > milli(&alloc["cpu"]) {
            return Some((Misfit::Cpu, String::new()));
        }
        if mem > 0 && used_mem + mem > units(&alloc["memory"]) {
            return Some((Misfit::Memory, String::new()));
        }
        let wanted = host_ports(pod);
        if wanted.iter().any(|(proto, port, ip)| {
            on_node
                .iter()
                .flat_map(|p| p.ports.iter())
                .any(|(p2, port2, ip2)| {
                    p2 == proto
                        && port2 == port
                        && (ip == ip2 || ip == "0.0.0.0" || ip2 == "0.0.0.0")
                })
        }) {
            return Some((Misfit::Ports, String::new()));
        }
        None
    }

    /// Pods placed in the topology domain of `node` for `key` (nodes sharing its label value).
    fn in_domain<'a>(&'a self, nodes: &'a Cache, node: &Value, key: &str) -> Vec<&'a Placed> {
        let Some(value) = labels_of(node).get(key).cloned() else {
            return Vec::new();
        };
        let names: BTreeSet<String> = nodes
            .iter()
            .filter(|(_, n)| labels_of(n).get(key) == Some(&value))
            .map(|(_, n)| name_of(n).to_string())
            .collect();
        self.placed
            .values()
            .filter(|p| names.contains(&p.node))
            .collect()
    }

    fn pod_affinity_misfit(&self, nodes: &Cache, pod: &Value, node: &Value) -> Option<Misfit> {
        let ns = namespace_of(pod);
        let labels = labels_of(pod);
        let aff = &pod["spec"]["affinity"];
        for term in aff["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let key = term["topologyKey"].as_str().unwrap_or_default();
            let found = self
                .in_domain(nodes, node, key)
                .iter()
                .any(|p| term_selects(term, ns, &p.namespace, &p.labels));
            // kube lets the first pod of a group that selects itself go anywhere.
            let any_anywhere = self
                .placed
                .values()
                .any(|p| term_selects(term, ns, &p.namespace, &p.labels));
            if !found && (any_anywhere || !term_selects(term, ns, ns, &labels)) {
                return Some(Misfit::PodAffinity);
            }
        }
        for term in aff["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let key = term["topologyKey"].as_str().unwrap_or_default();
            if self
                .in_domain(nodes, node, key)
                .iter()
                .any(|p| term_selects(term, ns, &p.namespace, &p.labels))
            {
                return Some(Misfit::PodAntiAffinity);
            }
        }
        // Pods already placed whose anti-affinity refuses this one in their domain.
        for p in self.placed.values().filter(|p| !p.anti.is_empty()) {
            for term in &p.anti {
                let key = term["topologyKey"].as_str().unwrap_or_default();
                let Some(their_node) = nodes.get(&nodes.key("", &p.node)) else {
                    continue;
                };
                let same = labels_of(their_node)
                    .get(key)
                    .is_some_and(|v| labels_of(node).get(key) == Some(v));
                if same && term_selects(term, &p.namespace, ns, &labels) {
                    return Some(Misfit::ExistingAntiAffinity);
                }
            }
        }
        None
    }

    /// Decide where one pending pod goes (a bind is assumed at once, so the next decision of
    /// the batch counts it), or why it fits nowhere.
    fn decide(&mut self, key: &str) -> Decision {
        let Some(pod) = self.pods.get(key).cloned() else {
            return Decision::Nothing;
        };
        if !is_pending(&pod) || self.placed.contains_key(key) {
            return Decision::Nothing;
        }
        let nodes_cache = &self.nodes;
        let mut by_node: HashMap<&str, Vec<&Placed>> = HashMap::new();
        for p in self.placed.values() {
            by_node.entry(p.node.as_str()).or_default().push(p);
        }
        let mut fits: Vec<(i64, usize, String)> = Vec::new();
        let mut misfits: BTreeMap<(Misfit, String), usize> = BTreeMap::new();
        let total = nodes_cache.len();
        for (_, node) in nodes_cache.iter() {
            let name = name_of(node);
            let on_node = by_node.get(name).map(Vec::as_slice).unwrap_or_default();
            if let Some(m) = self.misfit(&pod, node, on_node) {
                *misfits.entry(m).or_default() += 1;
                continue;
            }
            if let Some(m) = self.pod_affinity_misfit(nodes_cache, &pod, node) {
                *misfits.entry((m, String::new())).or_default() += 1;
                continue;
            }
            let alloc = &node["status"]["allocatable"];
            let (cpu, mem) = requests(&pod);
            let used_cpu: i64 = on_node.iter().map(|p| p.cpu_milli).sum::<i64>() + cpu;
            let used_mem: i64 = on_node.iter().map(|p| p.memory).sum::<i64>() + mem;
            let frac = |used: i64, cap: i64| if cap > 0 { used * 1000 / cap } else { 0 };
            let score =
                frac(used_cpu, milli(&alloc["cpu"])) + frac(used_mem, units(&alloc["memory"]));
            fits.push((score, on_node.len(), name.to_string()));
        }
        drop(by_node);
        if let Some((_, _, node)) = fits.into_iter().min() {
            self.place(key, &pod, &node);
            return Decision::Bind { pod, node };
        }
        let message = if total == 0 {
            "no nodes available to schedule pods".to_string()
        } else {
            let mut parts: Vec<String> = misfits
                .iter()
                .map(|((m, taint), n)| format!("{n} {}", m.message(taint)))
                .collect();
            parts.sort();
            format!(
                "0/{total} nodes are available: {}. preemption: 0/{total} nodes are available: {total} Preemption is not helpful for scheduling.",
                parts.join(", ")
            )
        };
        self.unschedulable.insert(key.to_string());
        Decision::Unschedulable { pod, message }
    }
}

/// What the scheduler decided for one pod.
enum Decision {
    /// Nothing to do (gone, bound, or not pending).
    Nothing,
    /// Bind it to `node`.
    Bind { pod: Arc<Value>, node: String },
    /// It fits nowhere, for this reason.
    Unschedulable { pod: Arc<Value>, message: String },
}

/// Carry a decision out: the binding, or the `PodScheduled=False` condition. Ok(false) when the
/// binding was refused because the pod changed meanwhile (its next change says more).
async fn carry_out(state: &Arc<Backend>, decision: &Decision) -> ApiResult<bool> {
    match decision {
        Decision::Nothing => Ok(true),
        Decision::Bind { pod, node } => {
            let (ns, name) = (namespace_of(pod), name_of(pod));
            match crate::registry::pods::assign(state, ns, name, node, &Value::Null).await {
                Ok(_) => Ok(true),
                Err(e)
                    if e.code == http::StatusCode::CONFLICT
                        || e.code == http::StatusCode::NOT_FOUND =>
                {
                    Ok(false)
                }
                Err(e) => Err(e),
            }
        }
        Decision::Unschedulable { pod, message } => {
            let scheduler = Writer {
                agent: "kube-scheduler",
            };
            let at = stamp(state.clock.now());
            let (ns, name, uid) = (namespace_of(pod), name_of(pod), uid_of(pod));
            scheduler
                .update(state, "", "pods", ns, name, "status", Some(uid), |p| {
                    if !is_pending(p) {
                        return false;
                    }
                    let same = super::workload::condition(p, "PodScheduled").is_some_and(|c| {
                        c["status"] == "False"
                            && c["reason"] == "Unschedulable"
                            && c["message"] == message.as_str()
                    });
                    if same {
                        return false;
                    }
                    put_condition(p, "PodScheduled", "False", "Unschedulable", message, &at);
                    if let Some(c) = p["status"]["conditions"]
                        .as_array_mut()
                        .and_then(|c| c.iter_mut().find(|c| c["type"] == "PodScheduled"))
                    {
                        c["lastProbeTime"] = Value::Null;
                    }
                    true
                })
                .await?;
            Ok(true)
        }
    }
}

#[async_trait::async_trait]
impl Reconciler for Scheduler {
    const CONTROLLER: Controller = Controller::Scheduler;

    fn interest(&self) -> Interest {
        Interest::caches([&self.nodes, &self.pods])
    }

    fn observe(&mut self, _state: &Backend, msg: &Msg, queue: &mut Queue) {
        let node_changes = !self.nodes.observe(msg).is_empty();
        let pod_changes = self.pods.observe(msg);
        let mut freed = false;
        for ch in pod_changes {
            match ch.new.as_deref() {
                Some(p) if !is_terminal(p) => {
                    match p["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
                        Some(node) => {
                            let node = node.to_string();
                            self.place(&ch.key, p, &node);
                        }
                        None => {
                            if self.placed.remove(&ch.key).is_some() {
                                freed = true;
                            }
                            if is_pending(p) {
                                queue.add(ch.key.clone());
                            }
                        }
                    }
                }
                _ => {
                    if self.placed.remove(&ch.key).is_some() {
                        freed = true;
                    }
                    self.unschedulable.remove(&ch.key);
                }
            }
        }
        if node_changes || freed {
            for k in &self.unschedulable {
                queue.add(k.clone());
            }
        }
    }

    async fn reconcile(
        &mut self,
        state: &Arc<Backend>,
        key: &str,
        queue: &mut Queue,
    ) -> ApiResult<()> {
        // Pending pods are decided one after the other, then bound concurrently: each binding
        // waits for its own commit, not for the others'.
        let mut keys = vec![key.to_string()];
        while keys.len() < BATCH {
            match queue.pop() {
                Some(k) => keys.push(k),
                None => break,
            }
        }
        let decisions: Vec<Decision> = keys.iter().map(|k| self.decide(k)).collect();
        let results = join_all(decisions.iter().map(|d| carry_out(state, d))).await;
        let mut first_error = None;
        for (k, r) in keys.iter().zip(results) {
            match r {
                Ok(true) => {
                    if self.placed.contains_key(k) {
                        self.unschedulable.remove(k);
                    }
                }
                Ok(false) => {
                    // Refused: forget the assumption; the pod's next change says where it is.
                    self.placed.remove(k);
                }
                Err(e) => {
                    self.placed.remove(k);
                    if k == key {
                        first_error = Some(e);
                    } else {
                        queue.failed(k);
                    }
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn requests_sum_containers_and_take_the_largest_init_container() {
        let pod = json!({"spec": {
            "containers": [
                {"resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}},
                {"resources": {"requests": {"cpu": "1"}}},
            ],
            "initContainers": [{"resources": {"requests": {"cpu": "2", "memory": "1Gi"}}}],
            "overhead": {"cpu": "10m"},
        }});
        assert_eq!(requests(&pod), (2010, 1 << 30));
    }

    #[test]
    fn tolerations_match_taints_as_kube_does() {
        let taint = json!({"key": "dedicated", "value": "gpu", "effect": "NoSchedule"});
        assert!(tolerates(
            &json!({"key": "dedicated", "operator": "Equal", "value": "gpu"}),
            &taint
        ));
        assert!(tolerates(
            &json!({"key": "dedicated", "operator": "Exists"}),
            &taint
        ));
        assert!(tolerates(&json!({"operator": "Exists"}), &taint));
        assert!(!tolerates(
            &json!({"key": "dedicated", "value": "cpu"}),
            &taint
        ));
        assert!(!tolerates(
            &json!({"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}),
            &taint
        ));
    }

    #[test]
    fn node_affinity_reads_selectors_expressions_and_fields() {
        let node = json!({"metadata": {"name": "n1", "labels": {"zone": "a", "size": "8"}}});
        let pod = |aff: Value| json!({"spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": aff}}}}});
        assert!(node_affinity_fits(
            &pod(
                json!([{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}])
            ),
            &node
        ));
        assert!(!node_affinity_fits(
            &pod(
                json!([{"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]}])
            ),
            &node
        ));
        assert!(node_affinity_fits(
            &pod(
                json!([{"matchExpressions": [{"key": "size", "operator": "Gt", "values": ["4"]}]}])
            ),
            &node
        ));
        assert!(node_affinity_fits(
            &pod(
                json!([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}])
            ),
            &node
        ));
        assert!(!node_affinity_fits(
            &pod(
                json!([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]}])
            ),
            &node
        ));
        assert!(!node_affinity_fits(
            &json!({"spec": {"nodeSelector": {"zone": "b"}}}),
            &node
        ));
    }
}
