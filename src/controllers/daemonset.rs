//! DaemonSets (kube-controller-manager's `daemonset` controller): one pod on every node that
//! should run it.
//!
//! A node should run a DaemonSet's pod when the pod (its template, with the tolerations kube
//! adds to every daemon pod: `node.kubernetes.io/not-ready` and `unreachable` (NoExecute),
//! `disk-pressure`, `memory-pressure`, `pid-pressure`, `unschedulable` (NoSchedule), and
//! `network-unavailable` for a host-network pod) fits it: `spec.nodeName` if set, the
//! `nodeSelector`, the required node affinity, and every NoSchedule or NoExecute taint
//! tolerated. A pod stays on a node it no longer fits only if no NoExecute taint is left
//! untolerated (kube's `NodeShouldRunDaemonPod`).
//!
//! For each DaemonSet, one round does, as kube's `syncDaemonSet`:
//!
//! 1. claims pods and ControllerRevisions (adopts orphans it selects, releases its own it no
//!    longer selects);
//! 2. finds the current revision: the ControllerRevision holding its template
//!    (`{"spec":{"template":{…,"$patch":"replace"}}}`), else a new one `<ds>-<hash>` labelled
//!    `controller-revision-hash: <hash>` (the template's hash with `status.collisionCount`; a
//!    name taken by another template bumps the count), numbered after every older one;
//! 3. manages nodes: creates a pod on every node that should run one and has none (named
//!    `<ds>-xxxxx`, labelled `controller-revision-hash` and `pod-template-generation`, with the
//!    required node affinity `matchFields metadata.name In [<node>]`, which the scheduler binds);
//!    deletes pods on nodes that should not keep them, extra pods on a node (the oldest stays),
//!    Succeeded pods, Failed pods (with kube's backoff per node, 1 s doubling to 15 min), and
//!    pods whose node is gone (at once, as the pod garbage collector would);
//! 4. with `RollingUpdate` and nothing written by step 3: with `maxSurge` 0, deletes old pods
//!    while at most `maxUnavailable` (default 1) nodes lack an available updated pod; with
//!    `maxSurge`, creates the new pod beside the old one on up to `maxSurge` nodes and deletes
//!    the old one once the new is available. `OnDelete` leaves old pods;
//! 5. deletes old revisions beyond `revisionHistoryLimit` that no pod uses;
//! 6. writes the status: desiredNumberScheduled, currentNumberScheduled, numberMisscheduled,
//!    numberReady, numberAvailable, numberUnavailable, updatedNumberScheduled,
//!    observedGeneration.
//!
//! Node changes that matter (added, removed, labels or taints changed) bring every DaemonSet
//! back.
//!
//! `pod-template-generation` is the `deprecated.daemonset.template.generation` annotation kube's
//! DaemonSet strategy keeps; kubox's registry does not keep it, so `metadata.generation` stands
//! in (a pod is updated when its hash or its generation matches).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use super::statefulset::{
    availability, bump_collision_count, delete_pod, name_of, new_revision, queue_owners,
    renumber_revision, revision_data, revision_number, scaled, sort_revisions, truncate,
    write_owned_claims, REVISION_LABEL,
};
use super::workload::claim;
use super::workload::{
    controller_ref, generation_of, is_ready, phase_of, pod_from_template, selector_of,
    template_hash, time_at, uid_of, Cache, Changed, Expectations, Timers, CONTROLLER_MANAGER,
};
use super::{is_deleting, Controller, Interest, Msg, Queue, Reconciler};
use crate::registry::Backend;
use crate::status::ApiResult;

/// The pod label holding the DaemonSet's template generation.
pub const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";
/// The annotation kube's DaemonSet strategy keeps the template generation in.
pub const TEMPLATE_GENERATION_ANNOTATION: &str = "deprecated.daemonset.template.generation";

const FAILED_BACKOFF_START: Duration = Duration::from_secs(1);
const FAILED_BACKOFF_MAX: Duration = Duration::from_secs(15 * 60);

/// The DaemonSet controller.
pub struct DaemonSetController {
    sets: Cache,
    pods: Cache,
    nodes: Cache,
    revisions: Cache,
    expect: Expectations,
    timers: Timers,
    /// (DaemonSet key, node) → (last failed pod deleted at, backoff).
    backoff: HashMap<(String, String), (SystemTime, Duration)>,
}

impl Default for DaemonSetController {
    fn default() -> Self {
        DaemonSetController {
            sets: Cache::new("apps", "daemonsets"),
            pods: Cache::new("", "pods"),
            nodes: Cache::new("", "nodes"),
            revisions: Cache::new("apps", "controllerrevisions"),
            expect: Expectations::default(),
            timers: Timers::default(),
            backoff: HashMap::new(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Does a node fit a pod?

fn label_of<'a>(node: &'a Value, key: &str) -> Option<&'a str> {
    node["metadata"]["labels"][key].as_str()
}

fn values_of(req: &Value) -> Vec<&str> {
    req["values"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

/// One node selector requirement against a value (None: the label or field is absent).
fn requirement_matches(req: &Value, value: Option<&str>) -> bool {
    let values = values_of(req);
    match req["operator"].as_str().unwrap_or_default() {
        "In" => value.is_some_and(|v| values.contains(&v)),
        "NotIn" => value.is_none_or(|v| !values.contains(&v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        op @ ("Gt" | "Lt") => {
            let (Some(v), [bound]) = (value, values.as_slice()) else {
                return false;
            };
            match (v.parse::<i64>(), bound.parse::<i64>()) {
                (Ok(v), Ok(b)) => {
                    if op == "Gt" {
                        v > b
                    } else {
                        v < b
                    }
                }
                _ => false,
            }
        }
        _ => false,
    }
}

/// A node selector term (its expressions on labels and fields, ANDed; an empty term matches
/// nothing). Only `metadata.name` is a field.
fn term_matches(term: &Value, node: &Value) -> bool {
    let exprs = term["matchExpressions"].as_array();
    let fields = term["matchFields"].as_array();
    if exprs.is_none_or(|e| e.is_empty()) && fields.is_none_or(|f| f.is_empty()) {
        return false;
    }
    exprs
        .into_iter()
        .flatten()
        .all(|r| requirement_matches(r, r["key"].as_str().and_then(|k| label_of(node, k))))
        && fields.into_iter().flatten().all(|r| {
            r["key"] == "metadata.name"
                && matches!(r["operator"].as_str(), Some("In" | "NotIn"))
                && requirement_matches(r, node["metadata"]["name"].as_str())
        })
}

/// nodeSelector and required node affinity (kube's `GetRequiredNodeAffinity(pod).Match`).
fn fits_affinity(spec: &Value, node: &Value) -> bool {
    if let Some(sel) = spec["nodeSelector"].as_object() {
        if !sel
            .iter()
            .all(|(k, v)| v.as_str().is_some_and(|v| label_of(node, k) == Some(v)))
        {
            return false;
        }
    }
    let required =
        &spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"];
    if required.is_null() {
        return true;
    }
    required["nodeSelectorTerms"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|t| term_matches(t, node))
}

/// Does `tol` tolerate `taint` (kube's `ToleratesTaint`)?
fn tolerates(tol: &Value, taint: &Value) -> bool {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let effect = s(&tol["effect"]);
    if !effect.is_empty() && effect != s(&taint["effect"]) {
        return false;
    }
    let key = s(&tol["key"]);
    if !key.is_empty() && key != s(&taint["key"]) {
        return false;
    }
    match s(&tol["operator"]).as_str() {
        "" | "Equal" => s(&tol["value"]) == s(&taint["value"]),
        "Exists" => true,
        _ => false,
    }
}

/// The node's taints with one of `effects` that no toleration of `spec` tolerates.
fn untolerated<'a>(spec: &Value, node: &'a Value, effects: &[&str]) -> Option<&'a Value> {
    let tols: Vec<&Value> = spec["tolerations"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    node["spec"]["taints"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["effect"].as_str().is_some_and(|e| effects.contains(&e)))
        .find(|t| !tols.iter().any(|tol| tolerates(tol, t)))
}

/// (should run, should continue running) for a pod with `spec` (kube's
/// `NodeShouldRunDaemonPod`).
fn node_should_run(spec: &Value, node: &Value) -> (bool, bool) {
    let node_name = node["metadata"]["name"].as_str().unwrap_or_default();
    if spec["nodeName"]
        .as_str()
        .is_some_and(|n| !n.is_empty() && n != node_name)
    {
        return (false, false);
    }
    if !fits_affinity(spec, node) {
        return (false, false);
    }
    if untolerated(spec, node, &["NoSchedule", "NoExecute"]).is_some() {
        return (false, untolerated(spec, node, &["NoExecute"]).is_none());
    }
    (true, true)
}

/// Add kube's daemon pod tolerations (`AddOrUpdateDaemonPodTolerations`): each replaces a
/// toleration with its key, operator, value and effect, else is appended.
fn add_daemon_tolerations(spec: &mut Value) {
    let mut defaults = vec![
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    if spec["hostNetwork"] == true {
        defaults.push(("node.kubernetes.io/network-unavailable", "NoSchedule"));
    }
    let mut tols: Vec<Value> = spec["tolerations"].as_array().cloned().unwrap_or_default();
    for (key, effect) in defaults {
        let t = json!({"key": key, "operator": "Exists", "effect": effect});
        let same = |o: &Value| {
            o["key"] == t["key"]
                && o["operator"] == t["operator"]
                && o["value"].as_str().unwrap_or_default() == ""
                && o["effect"] == t["effect"]
        };
        match tols.iter().position(same) {
            Some(i) => tols[i] = t,
            None => tols.push(t),
        }
    }
    spec["tolerations"] = Value::Array(tols);
}

/// The required node affinity pinning a pod to `node` (kube's
/// `ReplaceDaemonSetPodNodeNameNodeAffinity`: the required terms are replaced).
fn pin_to_node(spec: &mut Value, node: &str) {
    let terms =
        json!([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]);
    if !spec["affinity"].is_object() {
        spec["affinity"] = json!({});
    }
    if !spec["affinity"]["nodeAffinity"].is_object() {
        spec["affinity"]["nodeAffinity"] = json!({});
    }
    let na = &mut spec["affinity"]["nodeAffinity"];
    if !na["requiredDuringSchedulingIgnoredDuringExecution"].is_object() {
        na["requiredDuringSchedulingIgnoredDuringExecution"] = json!({});
    }
    na["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"] = terms;
}

/// The node a daemon pod is on or meant for (kube's `GetTargetNodeName`).
fn target_node(pod: &Value) -> Option<&str> {
    if let Some(n) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
        return Some(n);
    }
    pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        ["nodeSelectorTerms"]
        .as_array()?
        .iter()
        .flat_map(|t| t["matchFields"].as_array().into_iter().flatten())
        .find(|r| r["key"] == "metadata.name" && r["operator"] == "In")
        .and_then(|r| match r["values"].as_array().map(Vec::as_slice) {
            Some([v]) => v.as_str(),
            _ => None,
        })
}

/// The DaemonSet's template generation.
fn template_generation(ds: &Value) -> i64 {
    ds["metadata"]["annotations"][TEMPLATE_GENERATION_ANNOTATION]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| generation_of(ds))
}

/// Is the pod of the current template (kube's `IsPodUpdated`)?
fn is_updated(pod: &Value, hash: &str, generation: i64) -> bool {
    let labels = &pod["metadata"]["labels"];
    (!hash.is_empty() && labels[REVISION_LABEL] == hash)
        || labels[TEMPLATE_GENERATION_LABEL] == generation.to_string().as_str()
}

/// Scheduled pods first, then oldest first, by creation time then name (kube's
/// `podByCreationTimestampAndPhase`).
fn by_age(pods: &mut [Arc<Value>]) {
    pods.sort_by(|a, b| {
        let unscheduled = |p: &Value| p["spec"]["nodeName"].as_str().is_none_or(str::is_empty);
        let t = |p: &Value| time_at(&p["metadata"]["creationTimestamp"]);
        unscheduled(a)
            .cmp(&unscheduled(b))
            .then_with(|| t(a).cmp(&t(b)))
            .then_with(|| name_of(a).cmp(name_of(b)))
    });
}

/// A node's updated pod and old pod, each if any.
type NewAndOld<'a> = (Option<&'a Arc<Value>>, Option<&'a Arc<Value>>);

/// (new pod, old pod) on a node, None when it has more than one of either (kube's
/// `findUpdatedPodsOnNode`).
fn updated_and_old<'a>(
    pods: &'a [Arc<Value>],
    hash: &str,
    generation: i64,
) -> Option<NewAndOld<'a>> {
    let (mut new, mut old) = (None, None);
    for p in pods.iter().filter(|p| !is_deleting(p)) {
        let slot = if is_updated(p, hash, generation) {
            &mut new
        } else {
            &mut old
        };
        if slot.is_some() {
            return None;
        }
        *slot = Some(p);
    }
    Some((new, old))
}

/// One round's view of a DaemonSet.
struct Round {
    key: String,
    ns: String,
    name: String,
    ds: Arc<Value>,
    now: SystemTime,
    min_ready: i64,
    hash: String,
    generation: i64,
    wrote: bool,
}

impl Round {
    fn available(&self, pod: &Value, timers: &mut Timers) -> bool {
        match availability(pod, self.min_ready, self.now) {
            Ok(()) => true,
            Err(at) => {
                if let Some(at) = at {
                    timers.at(&self.key, at);
                }
                false
            }
        }
    }
}

/// Node changes that matter to DaemonSets: existence, labels, taints.
fn node_changed(c: &Changed) -> bool {
    match (&c.old, &c.new) {
        (Some(o), Some(n)) => {
            o["metadata"]["labels"] != n["metadata"]["labels"]
                || o["spec"]["taints"] != n["spec"]["taints"]
                || o["metadata"]["uid"] != n["metadata"]["uid"]
        }
        _ => true,
    }
}

impl DaemonSetController {
    /// The pod to create on `node`.
    fn new_pod(&self, r: &Round, node: &str) -> Value {
        let ds = &r.ds;
        let mut template = ds["spec"]["template"].clone();
        if !template["metadata"].is_object() {
            template["metadata"] = json!({});
        }
        if !template["metadata"]["labels"].is_object() {
            template["metadata"]["labels"] = json!({});
        }
        template["metadata"]["labels"][TEMPLATE_GENERATION_LABEL] = json!(r.generation.to_string());
        template["metadata"]["labels"][REVISION_LABEL] = json!(r.hash);
        let mut pod =
            pod_from_template(&template, &r.ns, controller_ref(ds, "apps/v1", "DaemonSet"));
        pod["metadata"]["generateName"] = json!(format!("{}-", r.name));
        if !pod["spec"].is_object() {
            pod["spec"] = json!({});
        }
        add_daemon_tolerations(&mut pod["spec"]);
        pin_to_node(&mut pod["spec"], node);
        pod
    }

    /// The current revision's hash. None: a revision was written (or must be), wait.
    async fn current_revision(
        &self,
        state: &Arc<Backend>,
        r: &mut Round,
        revisions: &[Arc<Value>],
    ) -> ApiResult<Option<String>> {
        let ds = r.ds.clone();
        let data = revision_data(&ds);
        let (current, old): (Vec<&Arc<Value>>, Vec<&Arc<Value>>) =
            revisions.iter().partition(|v| v["data"] == data);
        let next = old.iter().map(|v| revision_number(v)).max().unwrap_or(0) + 1;
        // Several equal revisions: the newest is current.
        let Some(cur) = current.last() else {
            let collisions = ds["status"]["collisionCount"].as_i64().unwrap_or(0);
            let hash = template_hash(&ds["spec"]["template"], Some(collisions));
            let rev_name = format!("{}-{hash}", truncate(&r.name, 223));
            let annotations = ds["metadata"]["annotations"].clone();
            let rev = new_revision(
                &ds,
                "DaemonSet",
                &rev_name,
                data.clone(),
                next,
                &[(REVISION_LABEL, &hash)],
                Some(&annotations),
            );
            r.wrote = true;
            if CONTROLLER_MANAGER
                .create(state, "apps", "controllerrevisions", &r.ns, rev)
                .await?
                .is_none()
            {
                let key = self.revisions.key(&r.ns, &rev_name);
                if let Some((existing, _)) = super::read(state, &key).await? {
                    if existing["data"] != data {
                        bump_collision_count(state, "daemonsets", &r.ns, &ds).await?;
                    }
                }
            }
            return Ok(None);
        };
        if revision_number(cur) < next {
            r.wrote = true;
            renumber_revision(state, &r.ns, cur, next).await?;
            return Ok(None);
        }
        let hash = match cur["metadata"]["labels"][REVISION_LABEL].as_str() {
            Some(h) => h.to_string(),
            None => {
                // kube labels a revision without it with its name's suffix.
                let name = name_of(cur);
                let hash = name
                    .rsplit_once('-')
                    .map(|(_, h)| h)
                    .unwrap_or(name)
                    .to_string();
                r.wrote = true;
                CONTROLLER_MANAGER
                    .update(
                        state,
                        "apps",
                        "controllerrevisions",
                        &r.ns,
                        name,
                        "",
                        Some(uid_of(cur)),
                        |obj| {
                            if !obj["metadata"]["labels"].is_object() {
                                obj["metadata"]["labels"] = json!({});
                            }
                            obj["metadata"]["labels"][REVISION_LABEL] = json!(hash.clone());
                            true
                        },
                    )
                    .await?;
                return Ok(None);
            }
        };
        Ok(Some(hash))
    }

    async fn sync(&mut self, state: &Arc<Backend>, r: &mut Round) -> ApiResult<()> {
        let ds = r.ds.clone();
        let selector = selector_of(&ds);
        if selector.matches_nothing() {
            return Ok(());
        }
        let owner_ref = controller_ref(&ds, "apps/v1", "DaemonSet");
        let (pods, pod_claims) = claim(
            &ds,
            &selector,
            self.pods.in_namespace(&r.ns).map(|(_, v)| v),
            |_| true,
        );
        let (mut revisions, rev_claims) = claim(
            &ds,
            &selector,
            self.revisions.in_namespace(&r.ns).map(|(_, v)| v),
            |_| true,
        );
        if write_owned_claims(state, &r.ns, &owner_ref, &pod_claims, &rev_claims).await? {
            r.wrote = true;
            return Ok(());
        }
        sort_revisions(&mut revisions);
        let Some(hash) = self.current_revision(state, r, &revisions).await? else {
            return Ok(());
        };
        r.hash = hash;
        if is_deleting(&ds) {
            return Ok(());
        }
        // Pods by the node they are on or meant for.
        let mut by_node: BTreeMap<String, Vec<Arc<Value>>> = BTreeMap::new();
        for p in &pods {
            if is_deleting(p) && matches!(phase_of(p), "Succeeded" | "Failed") {
                continue;
            }
            if let Some(n) = target_node(p) {
                by_node.entry(n.to_string()).or_default().push(p.clone());
            }
        }
        for v in by_node.values_mut() {
            by_age(v);
        }
        let mut spec = ds["spec"]["template"]["spec"].clone();
        if !spec.is_object() {
            spec = json!({});
        }
        add_daemon_tolerations(&mut spec);
        let nodes: Vec<(String, (bool, bool))> = self
            .nodes
            .iter()
            .map(|(_, n)| (name_of(n).to_string(), node_should_run(&spec, n)))
            .collect();
        let status = self.status(r, &nodes, &by_node);
        let outcome = self.manage_and_update(state, r, &nodes, &by_node).await;
        self.write_status(state, r, status).await?;
        outcome?;
        // History: old revisions no pod uses, beyond the limit, oldest first.
        let live: Vec<&str> = pods
            .iter()
            .filter_map(|p| p["metadata"]["labels"][REVISION_LABEL].as_str())
            .collect();
        let old: Vec<&Arc<Value>> = revisions
            .iter()
            .filter(|v| {
                v["metadata"]["labels"][REVISION_LABEL] != r.hash.as_str()
                    && !v["metadata"]["labels"][REVISION_LABEL]
                        .as_str()
                        .is_some_and(|h| live.contains(&h))
            })
            .collect();
        let limit = usize::try_from(
            ds["spec"]["revisionHistoryLimit"]
                .as_i64()
                .unwrap_or(10)
                .max(0),
        )
        .unwrap_or(usize::MAX);
        if old.len() > limit {
            for v in &old[..old.len() - limit] {
                r.wrote = true;
                CONTROLLER_MANAGER
                    .delete(
                        state,
                        "apps",
                        "controllerrevisions",
                        &r.ns,
                        name_of(v),
                        Some(uid_of(v)),
                        None,
                        None,
                    )
                    .await?;
            }
        }
        Ok(())
    }

    /// Steps 3 and 4.
    async fn manage_and_update(
        &mut self,
        state: &Arc<Backend>,
        r: &mut Round,
        nodes: &[(String, (bool, bool))],
        by_node: &BTreeMap<String, Vec<Arc<Value>>>,
    ) -> ApiResult<()> {
        let ds = r.ds.clone();
        let strategy = &ds["spec"]["updateStrategy"];
        let rolling = strategy["type"] != "OnDelete";
        let desired = i64::try_from(nodes.iter().filter(|(_, (run, _))| *run).count()).unwrap_or(0);
        let (max_surge, max_unavailable) = if rolling {
            let ru = &strategy["rollingUpdate"];
            let surge = scaled(&ru["maxSurge"], desired, true).unwrap_or(0).max(0);
            let mut unavailable = scaled(&ru["maxUnavailable"], desired, true)
                .unwrap_or(1)
                .max(0);
            if desired > 0 && surge == 0 && unavailable == 0 {
                unavailable = 1;
            }
            (surge, unavailable)
        } else {
            (0, 1)
        };
        let surge_allowed = rolling && {
            let s = scaled(&strategy["rollingUpdate"]["maxSurge"], 1, true).unwrap_or(0);
            s != 0
        };
        let mut create: Vec<String> = Vec::new();
        let mut delete: Vec<(Arc<Value>, Option<i64>)> = Vec::new();
        for (node, (run, keep)) in nodes {
            let pods = by_node.get(node).map(Vec::as_slice).unwrap_or_default();
            if *run && pods.is_empty() {
                create.push(node.clone());
            } else if *keep {
                let mut running: Vec<Arc<Value>> = Vec::new();
                for p in pods.iter().filter(|p| !is_deleting(p)) {
                    match phase_of(p) {
                        "Failed" => {
                            let k = (r.key.clone(), node.clone());
                            match self.backoff.get(&k) {
                                Some((since, delay))
                                    if since.checked_add(*delay).is_some_and(|t| t > r.now) =>
                                {
                                    if let Some(t) = since.checked_add(*delay) {
                                        self.timers.at(&r.key, t);
                                    }
                                }
                                prev => {
                                    let delay = match prev {
                                        Some((since, d))
                                            if r.now.duration_since(*since).unwrap_or_default()
                                                <= FAILED_BACKOFF_MAX * 2 =>
                                        {
                                            (*d * 2).min(FAILED_BACKOFF_MAX)
                                        }
                                        _ => FAILED_BACKOFF_START,
                                    };
                                    self.backoff.insert(k, (r.now, delay));
                                    delete.push((p.clone(), None));
                                }
                            }
                        }
                        "Succeeded" => delete.push((p.clone(), None)),
                        _ => running.push(p.clone()),
                    }
                }
                if running.len() > 1 {
                    if !surge_allowed {
                        delete.extend(running[1..].iter().map(|p| (p.clone(), None)));
                    } else {
                        // Keep the oldest new pod and the oldest old one until the new is
                        // available.
                        let (mut oldest_new, mut oldest_old) = (None, None);
                        for p in &running {
                            let slot = if p["metadata"]["labels"][REVISION_LABEL] == r.hash.as_str()
                            {
                                &mut oldest_new
                            } else {
                                &mut oldest_old
                            };
                            if slot.is_none() {
                                *slot = Some(p.clone());
                            } else {
                                delete.push((p.clone(), None));
                            }
                        }
                        if let (Some(new), Some(old)) = (oldest_new, oldest_old) {
                            if !is_ready(&old) || r.available(&new, &mut self.timers) {
                                delete.push((old, None));
                            }
                        }
                    }
                }
            } else {
                delete.extend(
                    pods.iter()
                        .filter(|p| !is_deleting(p))
                        .map(|p| (p.clone(), None)),
                );
            }
        }
        // Pods of nodes that are gone: at once, as the pod garbage collector.
        for (node, pods) in by_node {
            if !nodes.iter().any(|(n, _)| n == node) {
                delete.extend(pods.iter().map(|p| (p.clone(), Some(0))));
            }
        }
        if !create.is_empty() || !delete.is_empty() {
            self.write_nodes(state, r, &create, &delete).await?;
            return Ok(());
        }
        if !rolling {
            return Ok(());
        }
        // Rolling update.
        let mut create = Vec::new();
        let mut delete = Vec::new();
        let wanted: Vec<&String> = nodes
            .iter()
            .filter(|(_, (run, _))| *run)
            .map(|(n, _)| n)
            .collect();
        let empty: Vec<Arc<Value>> = Vec::new();
        if max_surge == 0 {
            let mut unavailable = 0;
            let mut replace = Vec::new();
            let mut candidates = Vec::new();
            for node in by_node
                .keys()
                .chain(wanted.iter().copied().filter(|n| !by_node.contains_key(*n)))
            {
                let pods = by_node.get(node).unwrap_or(&empty);
                let Some((new, old)) = updated_and_old(pods, &r.hash, r.generation) else {
                    unavailable += 1;
                    continue;
                };
                match (new, old) {
                    (None, None) | (Some(_), Some(_)) => unavailable += 1,
                    (Some(new), None) => {
                        if !r.available(new, &mut self.timers) {
                            unavailable += 1;
                        }
                    }
                    (None, Some(old)) => {
                        if !r.available(old, &mut self.timers) {
                            replace.push(old.clone());
                        } else if unavailable < max_unavailable {
                            candidates.push(old.clone());
                        }
                    }
                }
            }
            let room = usize::try_from((max_unavailable - unavailable).max(0)).unwrap_or(0);
            delete.extend(replace);
            delete.extend(candidates.into_iter().take(room));
        } else {
            let mut surging = 0;
            let mut allowed = Vec::new();
            let mut candidates = Vec::new();
            for (node, pods) in by_node {
                let Some((new, old)) = updated_and_old(pods, &r.hash, r.generation) else {
                    surging += 1;
                    continue;
                };
                match (new, old) {
                    (_, None) => {}
                    (None, Some(old)) => {
                        if !r.available(old, &mut self.timers) {
                            allowed.push(node.clone());
                        } else if surging < max_surge {
                            candidates.push(node.clone());
                        }
                    }
                    (Some(new), Some(old)) => {
                        if r.available(new, &mut self.timers) {
                            delete.push(old.clone());
                        } else {
                            surging += 1;
                        }
                    }
                }
            }
            let room = usize::try_from((max_surge - surging).max(0)).unwrap_or(0);
            create.extend(allowed);
            create.extend(candidates.into_iter().take(room));
        }
        let delete: Vec<(Arc<Value>, Option<i64>)> =
            delete.into_iter().map(|p| (p, None)).collect();
        if !create.is_empty() || !delete.is_empty() {
            self.write_nodes(state, r, &create, &delete).await?;
        }
        Ok(())
    }

    async fn write_nodes(
        &self,
        state: &Arc<Backend>,
        r: &mut Round,
        create: &[String],
        delete: &[(Arc<Value>, Option<i64>)],
    ) -> ApiResult<()> {
        r.wrote = true;
        for node in create {
            CONTROLLER_MANAGER
                .create(state, "", "pods", &r.ns, self.new_pod(r, node))
                .await?;
        }
        for (p, grace) in delete {
            delete_pod(state, &r.ns, p, *grace).await?;
        }
        Ok(())
    }

    /// The status as the pods are now (kube's `updateDaemonSetStatus`).
    fn status(
        &mut self,
        r: &Round,
        nodes: &[(String, (bool, bool))],
        by_node: &BTreeMap<String, Vec<Arc<Value>>>,
    ) -> Value {
        let (mut desired, mut current, mut misscheduled) = (0, 0, 0);
        let (mut ready, mut available, mut updated) = (0, 0, 0);
        for (node, (run, _)) in nodes {
            let pods = by_node.get(node).map(Vec::as_slice).unwrap_or_default();
            if !*run {
                if !pods.is_empty() {
                    misscheduled += 1;
                }
                continue;
            }
            desired += 1;
            let Some(pod) = pods.first() else { continue };
            current += 1;
            if is_ready(pod) {
                ready += 1;
                if r.available(pod, &mut self.timers) {
                    available += 1;
                }
            }
            if is_updated(pod, &r.hash, r.generation) {
                updated += 1;
            }
        }
        json!({
            "observedGeneration": generation_of(&r.ds),
            "desiredNumberScheduled": desired,
            "currentNumberScheduled": current,
            "numberMisscheduled": misscheduled,
            "numberReady": ready,
            "numberAvailable": available,
            "numberUnavailable": desired - available,
            "updatedNumberScheduled": updated,
        })
    }

    async fn write_status(
        &self,
        state: &Arc<Backend>,
        r: &mut Round,
        status: Value,
    ) -> ApiResult<()> {
        let ds = &r.ds;
        let same = status.as_object().is_some_and(|m| {
            m.iter().all(|(k, v)| {
                ds["status"][k] == *v || (v == &json!(0) && ds["status"][k].is_null())
            })
        });
        if same {
            return Ok(());
        }
        r.wrote = true;
        CONTROLLER_MANAGER
            .update(
                state,
                "apps",
                "daemonsets",
                &r.ns,
                &r.name,
                "status",
                Some(uid_of(ds)),
                |obj| {
                    let before = obj["status"].clone();
                    if !obj["status"].is_object() {
                        obj["status"] = json!({});
                    }
                    if let Some(m) = status.as_object() {
                        for (k, v) in m {
                            obj["status"][k] = v.clone();
                        }
                    }
                    obj["status"] != before
                },
            )
            .await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Reconciler for DaemonSetController {
    const CONTROLLER: Controller = Controller::DaemonSet;

    fn interest(&self) -> Interest {
        Interest::caches([&self.sets, &self.pods, &self.nodes, &self.revisions])
    }

    fn expectations(&mut self) -> Option<&mut Expectations> {
        Some(&mut self.expect)
    }

    fn observe(&mut self, _state: &Backend, msg: &Msg, queue: &mut Queue) {
        for c in self.sets.observe(msg) {
            if c.new.is_none() {
                self.backoff.retain(|(k, _), _| *k != c.key);
            }
            queue.add(c.key);
        }
        for c in self.pods.observe(msg) {
            queue_owners(&self.sets, &self.pods, "DaemonSet", &c, queue);
        }
        for c in self.revisions.observe(msg) {
            queue_owners(&self.sets, &self.revisions, "DaemonSet", &c, queue);
        }
        let mut nodes_changed = false;
        for c in self.nodes.observe(msg) {
            nodes_changed |= node_changed(&c);
        }
        if nodes_changed {
            for (k, _) in self.sets.iter() {
                queue.add(k.clone());
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
        let Some(ds) = self.sets.get(key).cloned() else {
            return Ok(());
        };
        let (ns, name) = self.sets.split(key);
        let mut r = Round {
            key: key.to_string(),
            ns: ns.to_string(),
            name: name.to_string(),
            now: state.clock.now(),
            min_ready: ds["spec"]["minReadySeconds"].as_i64().unwrap_or(0),
            hash: String::new(),
            generation: template_generation(&ds),
            ds,
            wrote: false,
        };
        let out = self.sync(state, &mut r).await;
        if r.wrote {
            self.expect.wait_for_store(state, key).await;
        }
        out
    }

    fn timers(&mut self) -> Option<&mut Timers> {
        Some(&mut self.timers)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn node(name: &str, labels: Value, taints: Value) -> Value {
        json!({"metadata": {"name": name, "labels": labels}, "spec": {"taints": taints}})
    }

    #[test]
    fn nodes_fit_by_selector_affinity_and_taints() {
        let n = node(
            "n1",
            json!({"disk": "ssd", "zone": "a", "cores": "8"}),
            json!([]),
        );
        let mut spec = json!({"nodeSelector": {"disk": "ssd"}});
        assert_eq!(node_should_run(&spec, &n), (true, true));
        spec["nodeSelector"]["disk"] = json!("hdd");
        assert_eq!(node_should_run(&spec, &n), (false, false));
        let aff = |terms: Value| json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}});
        assert!(fits_affinity(
            &aff(
                json!([{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}])
            ),
            &n
        ));
        assert!(!fits_affinity(
            &aff(
                json!([{"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]}])
            ),
            &n
        ));
        assert!(fits_affinity(
            &aff(
                json!([{"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["4"]}]}])
            ),
            &n
        ));
        assert!(fits_affinity(
            &aff(
                json!([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}])
            ),
            &n
        ));
        assert!(!fits_affinity(
            &aff(
                json!([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]}])
            ),
            &n
        ));
        assert!(!fits_affinity(&aff(json!([{}])), &n));
        assert!(fits_affinity(
            &aff(json!([{}, {"matchExpressions": [{"key": "gpu", "operator": "DoesNotExist"}]}])),
            &n
        ));

        let tainted = node(
            "n2",
            json!({}),
            json!([{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]),
        );
        let mut spec = json!({});
        add_daemon_tolerations(&mut spec);
        assert_eq!(
            node_should_run(&spec, &tainted),
            (false, true),
            "a NoSchedule taint keeps what runs"
        );
        spec["tolerations"]
            .as_array_mut()
            .unwrap()
            .push(json!({"key": "dedicated", "operator": "Equal", "value": "db"}));
        assert_eq!(node_should_run(&spec, &tainted), (true, true));
        let evicting = node(
            "n3",
            json!({}),
            json!([{"key": "x", "effect": "NoExecute"}]),
        );
        assert_eq!(node_should_run(&json!({}), &evicting), (false, false));
        let not_ready = node(
            "n4",
            json!({}),
            json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}, {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]),
        );
        let mut spec = json!({});
        add_daemon_tolerations(&mut spec);
        assert_eq!(node_should_run(&spec, &not_ready), (true, true));
    }

    #[test]
    fn daemon_tolerations_replace_their_equals_and_pins_replace_required_terms() {
        let mut spec = json!({"tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}], "hostNetwork": true});
        add_daemon_tolerations(&mut spec);
        let tols = spec["tolerations"].as_array().unwrap();
        assert_eq!(tols.len(), 7);
        assert!(tols[0]["tolerationSeconds"].is_null());
        add_daemon_tolerations(&mut spec);
        assert_eq!(spec["tolerations"].as_array().unwrap().len(), 7);

        let mut spec = json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "a", "operator": "Exists"}]}]}}}});
        pin_to_node(&mut spec, "n7");
        let pod = json!({"spec": spec});
        assert_eq!(target_node(&pod), Some("n7"));
        assert_eq!(
            pod["spec"]["affinity"]["nodeAffinity"]
                ["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            target_node(&json!({"spec": {"nodeName": "n9"}})),
            Some("n9")
        );
        assert_eq!(target_node(&json!({"spec": {}})), None);
    }
}
