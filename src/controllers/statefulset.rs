//! StatefulSets (kube-controller-manager's `statefulset` controller): pods with a stable
//! identity, `<set>-<ordinal>`, created, scaled and updated in order.
//!
//! For each StatefulSet, one reconcile round does, as kube's `UpdateStatefulSet`:
//!
//! 1. claims pods (orphans named `<set>-<n>` its selector selects are adopted, its own pods it no
//!    longer selects are released) and ControllerRevisions;
//! 2. finds the update revision (a ControllerRevision `<set>-<hash>` holding the pod template as
//!    a strategic merge patch, `{"spec":{"template":{…,"$patch":"replace"}}}`; a template equal to
//!    an older revision re-numbers it, a name taken by another template bumps
//!    `status.collisionCount`) and the current one (`status.currentRevision`);
//! 3. brings the replicas in line, ordinals `spec.ordinals.start` … `start + replicas - 1`, in
//!    order: a Failed or Succeeded pod is deleted (and re-created afterwards), a missing one is
//!    created (its claims first, `<claim>-<set>-<ordinal>` from `volumeClaimTemplates`, labelled
//!    with the selector's labels). With `podManagementPolicy: OrderedReady` it stops at the first
//!    pod it created or that is not yet Running and Ready (and available for
//!    `minReadySeconds`); with `Parallel` it does every ordinal at once;
//! 4. deletes the pods above the range, highest ordinal first (OrderedReady: one at a time,
//!    each gone before the next; only when every replica is healthy);
//! 5. with `RollingUpdate`, deletes the highest pod whose `controller-revision-hash` is not the
//!    update revision, down to `partition`, while fewer than `maxUnavailable` (1) replicas are
//!    unhealthy; it is re-created from the update revision by step 3. `OnDelete` leaves pods;
//! 6. writes the status (replicas, readyReplicas, availableReplicas, currentReplicas,
//!    updatedReplicas, currentRevision, updateRevision, collisionCount, observedGeneration),
//!    moving currentRevision to updateRevision once every pod is updated and ready;
//! 7. deletes revisions beyond `revisionHistoryLimit` that no pod uses.
//!
//! Pods are `hostname: <pod>` and `subdomain: <spec.serviceName>`, labelled
//! `statefulset.kubernetes.io/pod-name`, `apps.kubernetes.io/pod-index` and
//! `controller-revision-hash: <revision name>`; each claim template is a volume of the pod.
//! `persistentVolumeClaimRetentionPolicy` is kept with owner references, as kube does:
//! `whenDeleted: Delete` makes the set own its claims, `whenScaled: Delete` makes a condemned
//! pod own its claims before it is deleted, and the garbage collector deletes them after.
//!
//! A round that writes waits for its writes to be observed ([`Expectations`]) before deciding
//! about the set again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use serde_json::{json, Value};

use super::workload::{
    available_at, claim, controller_of, controller_ref, generation_of, is_ready, phase_of,
    pod_from_template, selector_of, selects, template_hash, uid_of, write_claims, Cache, Changed,
    Claims, Expectations, Timers, CONTROLLER_MANAGER,
};
use super::{is_deleting, Controller, Interest, Msg, Queue, Reconciler};
use crate::registry::Backend;
use crate::status::ApiResult;

/// The pod label naming the pod (kube's `StatefulSetPodNameLabel`).
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// The pod label holding its ordinal (kube's `PodIndexLabel`).
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";
/// The pod label naming its revision (`<set>-<hash>` for a StatefulSet, the hash for a
/// DaemonSet).
pub const REVISION_LABEL: &str = "controller-revision-hash";
/// The ControllerRevision label holding its hash (kube's `ControllerRevisionHashLabel`).
pub const REVISION_HASH_LABEL: &str = "controller.kubernetes.io/hash";

// ---------------------------------------------------------------------------------------------
// What the StatefulSet and DaemonSet controllers share: claiming objects, revisions.

/// Write an owner's claims on its pods and its ControllerRevisions; true when anything was
/// written.
pub(super) async fn write_owned_claims(
    state: &Arc<Backend>,
    ns: &str,
    owner_ref: &Value,
    pods: &Claims,
    revisions: &Claims,
) -> ApiResult<bool> {
    let pods = write_claims(state, "", "pods", ns, owner_ref, pods).await?;
    let revisions = write_claims(
        state,
        "apps",
        "controllerrevisions",
        ns,
        owner_ref,
        revisions,
    )
    .await?;
    Ok(pods || revisions)
}

/// What a ControllerRevision of `owner` holds: its pod template as a strategic merge patch
/// that replaces the template (kube's `getPatch`).
pub(super) fn revision_data(owner: &Value) -> Value {
    let mut template = owner["spec"]["template"].clone();
    if let Some(m) = template.as_object_mut() {
        m.insert("$patch".into(), json!("replace"));
    }
    json!({"spec": {"template": template}})
}

/// The pod template a revision holds.
pub(super) fn revision_template(rev: &Value) -> Value {
    let mut t = rev["data"]["spec"]["template"].clone();
    if let Some(m) = t.as_object_mut() {
        m.remove("$patch");
    }
    t
}

/// A revision's number.
pub(super) fn revision_number(rev: &Value) -> i64 {
    rev["revision"].as_i64().unwrap_or(0)
}

/// metadata.name.
pub(super) fn name_of(obj: &Value) -> &str {
    obj["metadata"]["name"].as_str().unwrap_or_default()
}

/// Sort revisions by number, then name (kube's `history.SortControllerRevisions`).
pub(super) fn sort_revisions(revs: &mut [Arc<Value>]) {
    revs.sort_by(|a, b| {
        revision_number(a)
            .cmp(&revision_number(b))
            .then_with(|| name_of(a).cmp(name_of(b)))
    });
}

/// A new ControllerRevision `name` of `owner` (kube's `history.NewControllerRevision`): the
/// template's labels plus `extra`, `owner`'s controller reference.
pub(super) fn new_revision(
    owner: &Value,
    kind: &str,
    name: &str,
    data: Value,
    revision: i64,
    extra: &[(&str, &str)],
    annotations: Option<&Value>,
) -> Value {
    let mut labels = owner["spec"]["template"]["metadata"]["labels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for (k, v) in extra {
        labels.insert((*k).into(), json!(v));
    }
    let mut meta = json!({
        "name": name,
        "namespace": owner["metadata"]["namespace"],
        "labels": labels,
        "ownerReferences": [controller_ref(owner, "apps/v1", kind)],
    });
    if let Some(a) = annotations.filter(|a| a.as_object().is_some_and(|m| !m.is_empty())) {
        meta["annotations"] = a.clone();
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": meta,
        "data": data,
        "revision": revision,
    })
}

/// Update a revision's number (a rollback to an older template makes it the newest).
pub(super) async fn renumber_revision(
    state: &Arc<Backend>,
    ns: &str,
    rev: &Value,
    number: i64,
) -> ApiResult<bool> {
    CONTROLLER_MANAGER
        .update(
            state,
            "apps",
            "controllerrevisions",
            ns,
            name_of(rev),
            "",
            Some(uid_of(rev)),
            |obj| {
                if obj["revision"] == json!(number) {
                    return false;
                }
                obj["revision"] = json!(number);
                true
            },
        )
        .await
}

/// Bump `status.collisionCount` of `owner` (a revision name taken by another template).
pub(super) async fn bump_collision_count(
    state: &Arc<Backend>,
    resource: &str,
    ns: &str,
    owner: &Value,
) -> ApiResult<bool> {
    let seen = owner["status"]["collisionCount"].as_i64().unwrap_or(0);
    CONTROLLER_MANAGER
        .update(
            state,
            "apps",
            resource,
            ns,
            name_of(owner),
            "status",
            Some(uid_of(owner)),
            |obj| {
                let now = obj["status"]["collisionCount"].as_i64().unwrap_or(0);
                if now > seen {
                    return false;
                }
                if !obj["status"].is_object() {
                    obj["status"] = json!({});
                }
                obj["status"]["collisionCount"] = json!(seen + 1);
                true
            },
        )
        .await
}

/// Delete a pod (its uid as precondition).
pub(super) async fn delete_pod(
    state: &Arc<Backend>,
    ns: &str,
    pod: &Value,
    grace: Option<i64>,
) -> ApiResult<()> {
    CONTROLLER_MANAGER
        .delete(
            state,
            "",
            "pods",
            ns,
            name_of(pod),
            Some(uid_of(pod)),
            None,
            grace,
        )
        .await
}

/// Queue the owners `changed` concerns: the controller of kind `kind` of the old and new
/// object, or for an orphan every owner in its namespace whose selector selects it.
pub(super) fn queue_owners(
    owners: &Cache,
    objects: &Cache,
    kind: &str,
    changed: &Changed,
    queue: &mut Queue,
) {
    let (ns, _) = objects.split(&changed.key);
    for obj in [&changed.old, &changed.new].into_iter().flatten() {
        match controller_of(obj) {
            Some(r) => {
                if r["kind"] == kind {
                    if let Some(n) = r["name"].as_str() {
                        queue.add(owners.key(ns, n));
                    }
                }
            }
            None => {
                for (k, owner) in owners.in_namespace(ns) {
                    if selects(&selector_of(owner), obj) {
                        queue.add(k.clone());
                    }
                }
            }
        }
    }
}

/// Running with Ready=True (kube's `isRunningAndReady`).
pub(super) fn running_and_ready(pod: &Value) -> bool {
    phase_of(pod) == "Running" && is_ready(pod)
}

/// Running and available at `now` with `min_ready` seconds; otherwise, when it will be (if
/// ready).
pub(super) fn availability(
    pod: &Value,
    min_ready: i64,
    now: SystemTime,
) -> Result<(), Option<SystemTime>> {
    if phase_of(pod) != "Running" {
        return Err(None);
    }
    match available_at(pod, min_ready) {
        Some(at) if min_ready <= 0 || at <= now => Ok(()),
        Some(at) => Err(Some(at)),
        None => Err(None),
    }
}

/// An int-or-percent scaled against `total` (kube's `GetScaledValueFromIntOrPercent`).
pub(super) fn scaled(v: &Value, total: i64, round_up: bool) -> Option<i64> {
    if let Some(n) = v.as_i64() {
        return Some(n);
    }
    let s = v.as_str()?;
    let Some(p) = s.strip_suffix('%') else {
        return s.parse().ok();
    };
    let p: i64 = p.parse().ok()?;
    let prod = p.saturating_mul(total);
    Some(if round_up {
        prod.saturating_add(99).div_euclid(100)
    } else {
        prod.div_euclid(100)
    })
}

// ---------------------------------------------------------------------------------------------
// The StatefulSet controller.

/// The StatefulSet controller.
pub struct StatefulSetController {
    sets: Cache,
    pods: Cache,
    revisions: Cache,
    claims: Cache,
    expect: Expectations,
    timers: Timers,
}

impl Default for StatefulSetController {
    fn default() -> Self {
        StatefulSetController {
            sets: Cache::new("apps", "statefulsets"),
            pods: Cache::new("", "pods"),
            revisions: Cache::new("apps", "controllerrevisions"),
            claims: Cache::new("", "persistentvolumeclaims"),
            expect: Expectations::default(),
            timers: Timers::default(),
        }
    }
}

/// `(parent, ordinal)` of a pod name `<parent>-<n>` (kube's `getParentNameAndOrdinal`).
fn parent_and_ordinal(name: &str) -> Option<(&str, i64)> {
    let (parent, ord) = name.rsplit_once('-')?;
    if ord.is_empty() || !ord.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i32 = ord.parse().ok()?;
    Some((parent, i64::from(n)))
}

/// The ordinal of `set`'s pod `pod` (None: not one of its names).
fn ordinal_of(set_name: &str, pod: &Value) -> Option<i64> {
    parent_and_ordinal(name_of(pod))
        .filter(|(p, _)| *p == set_name)
        .map(|(_, o)| o)
}

/// The name of a claim of the pod of `ordinal`.
fn claim_name(template: &Value, set_name: &str, ordinal: i64) -> String {
    format!("{}-{set_name}-{ordinal}", name_of(template))
}

fn claim_templates(set: &Value) -> Vec<Value> {
    set["spec"]["volumeClaimTemplates"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// whenDeleted, whenScaled: is each Delete?
fn retention(set: &Value) -> (bool, bool) {
    let p = &set["spec"]["persistentVolumeClaimRetentionPolicy"];
    (p["whenDeleted"] == "Delete", p["whenScaled"] == "Delete")
}

/// A plain (not controller) owner reference to a pod.
fn pod_ref(pod: &Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "name": pod["metadata"]["name"], "uid": pod["metadata"]["uid"]})
}

/// The owner references a claim should have under the retention policy (kube's
/// `updateClaimOwnerRefForSetAndPod`): only references to the set and to `pod` are touched.
fn claim_refs(set: &Value, pod: Option<&Value>, condemned: bool, refs: &[Value]) -> Vec<Value> {
    let (when_deleted, when_scaled) = retention(set);
    let set_uid = uid_of(set);
    let pod_uid = pod.map(uid_of).unwrap_or_default();
    let (want_set, want_pod) = match (when_deleted, when_scaled) {
        (false, false) => (false, false),
        (true, false) => (true, false),
        (false, true) => (false, condemned),
        (true, true) => (!condemned, condemned),
    };
    let mut out: Vec<Value> = refs
        .iter()
        .filter(|r| {
            let u = r["uid"].as_str().unwrap_or_default();
            !(u == set_uid || (!pod_uid.is_empty() && u == pod_uid))
        })
        .cloned()
        .collect();
    if want_set {
        let keep = refs.iter().find(|r| r["uid"] == set_uid).cloned();
        out.push(keep.unwrap_or_else(|| controller_ref(set, "apps/v1", "StatefulSet")));
    }
    if let (true, Some(pod)) = (want_pod, pod) {
        let keep = refs.iter().find(|r| r["uid"] == pod_uid).cloned();
        out.push(keep.unwrap_or_else(|| pod_ref(pod)));
    }
    out
}

/// The claim for `template` of the pod of `ordinal` (kube's `getPersistentVolumeClaims`).
fn new_claim(set: &Value, template: &Value, ordinal: i64) -> Value {
    let set_name = name_of(set);
    let mut labels = template["metadata"]["labels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    if let Some(m) = set["spec"]["selector"]["matchLabels"].as_object() {
        for (k, v) in m {
            labels.insert(k.clone(), v.clone());
        }
    }
    let mut meta = json!({
        "name": claim_name(template, set_name, ordinal),
        "namespace": set["metadata"]["namespace"],
    });
    if !labels.is_empty() {
        meta["labels"] = Value::Object(labels);
    }
    for k in ["annotations", "finalizers"] {
        if let Some(v) = template["metadata"].get(k).filter(|v| !v.is_null()) {
            meta[k] = v.clone();
        }
    }
    let refs = claim_refs(set, None, false, &[]);
    if !refs.is_empty() {
        meta["ownerReferences"] = Value::Array(refs);
    }
    json!({
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": meta,
        "spec": template["spec"],
    })
}

/// A pod of `set` at `ordinal` from `template`, at revision `revision` (kube's
/// `newStatefulSetPod`: identity, then storage).
fn new_pod(set: &Value, template: &Value, revision: &str, ordinal: i64) -> Value {
    let set_name = name_of(set);
    let ns = set["metadata"]["namespace"].as_str().unwrap_or_default();
    let mut pod = pod_from_template(template, ns, controller_ref(set, "apps/v1", "StatefulSet"));
    let name = format!("{set_name}-{ordinal}");
    pod["metadata"]["name"] = json!(name);
    pod["metadata"]["generateName"] = json!(format!("{set_name}-"));
    if !pod["metadata"]["labels"].is_object() {
        pod["metadata"]["labels"] = json!({});
    }
    let labels = &mut pod["metadata"]["labels"];
    labels[POD_NAME_LABEL] = json!(name);
    labels[POD_INDEX_LABEL] = json!(ordinal.to_string());
    labels[REVISION_LABEL] = json!(revision);
    if !pod["spec"].is_object() {
        pod["spec"] = json!({});
    }
    pod["spec"]["hostname"] = json!(name);
    match set["spec"]["serviceName"]
        .as_str()
        .filter(|s| !s.is_empty())
    {
        Some(svc) => pod["spec"]["subdomain"] = json!(svc),
        None => {
            if let Some(m) = pod["spec"].as_object_mut() {
                m.remove("subdomain");
            }
        }
    }
    let templates = claim_templates(set);
    if !templates.is_empty() {
        let mut volumes: Vec<Value> = templates
            .iter()
            .map(|t| {
                json!({"name": name_of(t), "persistentVolumeClaim": {"claimName": claim_name(t, set_name, ordinal)}})
            })
            .collect();
        let claimed: Vec<&str> = templates.iter().map(name_of).collect();
        for v in pod["spec"]["volumes"].as_array().into_iter().flatten() {
            if !claimed.contains(&name_of_volume(v)) {
                volumes.push(v.clone());
            }
        }
        pod["spec"]["volumes"] = Value::Array(volumes);
    }
    pod
}

fn name_of_volume(v: &Value) -> &str {
    v["name"].as_str().unwrap_or_default()
}

/// The pod's identity is the set's (kube's `identityMatches`).
fn identity_matches(set: &Value, pod: &Value, ordinal: i64) -> bool {
    let name = name_of(pod);
    pod["metadata"]["labels"][POD_NAME_LABEL] == name
        && pod["metadata"]["labels"][POD_INDEX_LABEL] == ordinal.to_string().as_str()
        && pod["metadata"]["namespace"] == set["metadata"]["namespace"]
}

/// What a set's status counts (kube's `computeReplicaStatus`).
#[derive(Default, PartialEq, Debug)]
struct Counts {
    replicas: i64,
    ready: i64,
    available: i64,
    current: i64,
    updated: i64,
}

/// One round's view of a set.
struct Round {
    key: String,
    ns: String,
    name: String,
    set: Arc<Value>,
    now: SystemTime,
    min_ready: i64,
    /// Something was written: wait for it to be observed.
    wrote: bool,
}

impl StatefulSetController {
    fn queue_for_claim(&self, changed: &Changed, queue: &mut Queue) {
        // A claim that goes may let a pod waiting for it be created.
        if changed.new.is_some() {
            return;
        }
        let (ns, claim) = self.claims.split(&changed.key);
        for (k, set) in self.sets.in_namespace(ns) {
            let needle = format!("-{}-", name_of(set));
            if claim.contains(&needle) {
                queue.add(k.clone());
            }
        }
    }

    /// Claims the pod of `ordinal` needs; creates the missing ones. Ok(false): one is being
    /// deleted or still owned by a former pod (kube's `PodClaimIsStale`), wait.
    async fn create_claims(
        &self,
        state: &Arc<Backend>,
        r: &mut Round,
        ordinal: i64,
        pod_uid: Option<&str>,
    ) -> ApiResult<bool> {
        let mut ready = true;
        for t in claim_templates(&r.set) {
            let name = claim_name(&t, &r.name, ordinal);
            match self.claims.get(&self.claims.key(&r.ns, &name)) {
                Some(c) => {
                    let stale = c["metadata"]["ownerReferences"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|o| o["kind"] == "Pod" && pod_uid.is_none_or(|u| o["uid"] != u));
                    if is_deleting(c) || stale {
                        ready = false;
                    }
                }
                None => {
                    r.wrote = true;
                    CONTROLLER_MANAGER
                        .create(
                            state,
                            "",
                            "persistentvolumeclaims",
                            &r.ns,
                            new_claim(&r.set, &t, ordinal),
                        )
                        .await?;
                }
            }
        }
        Ok(ready)
    }

    /// Keep the claims' owner references as the retention policy asks, for a pod that exists.
    async fn fix_claim_refs(
        &self,
        state: &Arc<Backend>,
        r: &mut Round,
        pod: &Value,
        ordinal: i64,
        condemned: bool,
    ) -> ApiResult<()> {
        for t in claim_templates(&r.set) {
            let name = claim_name(&t, &r.name, ordinal);
            let Some(c) = self.claims.get(&self.claims.key(&r.ns, &name)) else {
                continue;
            };
            if is_deleting(c) {
                continue;
            }
            let refs = c["metadata"]["ownerReferences"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let want = claim_refs(&r.set, Some(pod), condemned, &refs);
            if want == refs {
                continue;
            }
            r.wrote = true;
            let set = r.set.clone();
            CONTROLLER_MANAGER
                .update(
                    state,
                    "",
                    "persistentvolumeclaims",
                    &r.ns,
                    &name,
                    "",
                    Some(uid_of(c)),
                    |obj| {
                        let refs = obj["metadata"]["ownerReferences"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default();
                        let want = claim_refs(&set, Some(pod), condemned, &refs);
                        if want == refs {
                            return false;
                        }
                        if want.is_empty() {
                            if let Some(m) = obj["metadata"].as_object_mut() {
                                m.remove("ownerReferences");
                            }
                        } else {
                            obj["metadata"]["ownerReferences"] = Value::Array(want);
                        }
                        true
                    },
                )
                .await?;
        }
        Ok(())
    }

    /// Is the pod healthy for the ordered policy: Running, Ready, available, not terminating.
    /// Schedules a round for when it becomes available.
    fn healthy(&mut self, r: &Round, pod: &Value) -> bool {
        if is_deleting(pod) || !running_and_ready(pod) {
            return false;
        }
        match availability(pod, r.min_ready, r.now) {
            Ok(()) => true,
            Err(at) => {
                if let Some(at) = at {
                    self.timers.at(&r.key, at);
                }
                false
            }
        }
    }

    /// Find (or make) the update revision. Ok(None): a revision was written, wait for it.
    async fn update_revision(
        &self,
        state: &Arc<Backend>,
        r: &mut Round,
        revisions: &[Arc<Value>],
    ) -> ApiResult<Option<Arc<Value>>> {
        let set = r.set.clone();
        let data = revision_data(&set);
        let next = revisions.last().map(|v| revision_number(v)).unwrap_or(0) + 1;
        let equal: Vec<&Arc<Value>> = revisions.iter().filter(|v| v["data"] == data).collect();
        if let Some(last_equal) = equal.last() {
            if revisions.last().is_some_and(|l| Arc::ptr_eq(l, last_equal)) {
                return Ok(Some((*last_equal).clone()));
            }
            r.wrote = true;
            renumber_revision(state, &r.ns, last_equal, next).await?;
            return Ok(None);
        }
        let collisions = set["status"]["collisionCount"].as_i64().unwrap_or(0);
        let hash = template_hash(&data, Some(collisions));
        let rev_name = format!("{}-{hash}", truncate(&r.name, 223));
        let annotations = set["metadata"]["annotations"].clone();
        let rev = new_revision(
            &set,
            "StatefulSet",
            &rev_name,
            data.clone(),
            next,
            &[(REVISION_HASH_LABEL, &hash)],
            Some(&annotations),
        );
        r.wrote = true;
        if CONTROLLER_MANAGER
            .create(state, "apps", "controllerrevisions", &r.ns, rev)
            .await?
            .is_some()
        {
            return Ok(None);
        }
        // The name is taken: by this template (an orphan, adopted next round) or by another.
        let key = self.revisions.key(&r.ns, &rev_name);
        if let Some((existing, _)) = super::read(state, &key).await? {
            if existing["data"] != data {
                bump_collision_count(state, "statefulsets", &r.ns, &set).await?;
            }
        }
        Ok(None)
    }

    async fn sync(&mut self, state: &Arc<Backend>, r: &mut Round) -> ApiResult<()> {
        let set = r.set.clone();
        let selector = selector_of(&set);
        if selector.matches_nothing() {
            return Ok(());
        }
        let owner_ref = controller_ref(&set, "apps/v1", "StatefulSet");
        // 1. Claim pods and revisions.
        let (pods, pod_claims) = claim(
            &set,
            &selector,
            self.pods.in_namespace(&r.ns).map(|(_, v)| v),
            |p| ordinal_of(&r.name, p).is_some(),
        );
        let (mut revisions, rev_claims) = claim(
            &set,
            &selector,
            self.revisions.in_namespace(&r.ns).map(|(_, v)| v),
            |_| true,
        );
        if write_owned_claims(state, &r.ns, &owner_ref, &pod_claims, &rev_claims).await? {
            r.wrote = true;
            return Ok(());
        }
        sort_revisions(&mut revisions);
        // 2. Revisions.
        let Some(update) = self.update_revision(state, r, &revisions).await? else {
            return Ok(());
        };
        let current = set["status"]["currentRevision"]
            .as_str()
            .and_then(|c| revisions.iter().find(|v| name_of(v) == c))
            .cloned()
            .unwrap_or_else(|| update.clone());
        let update_name = name_of(&update).to_string();
        let current_name = name_of(&current).to_string();
        // Pods by ordinal.
        let spec = &set["spec"];
        let start = spec["ordinals"]["start"].as_i64().unwrap_or(0).max(0);
        let count = spec["replicas"].as_i64().unwrap_or(1).max(0);
        let end = start + count; // exclusive
        let mut replicas: BTreeMap<i64, Arc<Value>> = BTreeMap::new();
        let mut condemned: Vec<(i64, Arc<Value>)> = Vec::new();
        for p in &pods {
            let Some(o) = ordinal_of(&r.name, p) else {
                continue;
            };
            if (start..end).contains(&o) {
                replicas.insert(o, p.clone());
            } else {
                condemned.push((o, p.clone()));
            }
        }
        condemned.sort_by_key(|c| std::cmp::Reverse(c.0));
        // Status from what is there now; written at the end of every round.
        let counts = self.counts(r, &pods, &current_name, &update_name);
        let outcome = self
            .pods_round(
                state,
                r,
                (start, end),
                &replicas,
                &condemned,
                (&current, &update),
            )
            .await;
        self.write_status(state, r, &counts, &current_name, &update_name)
            .await?;
        outcome?;
        // 7. History.
        let mut live: Vec<&str> = vec![&current_name, &update_name];
        live.extend(
            pods.iter()
                .filter_map(|p| p["metadata"]["labels"][REVISION_LABEL].as_str()),
        );
        let old: Vec<&Arc<Value>> = revisions
            .iter()
            .filter(|v| !live.contains(&name_of(v)))
            .collect();
        let limit = usize::try_from(spec["revisionHistoryLimit"].as_i64().unwrap_or(10).max(0))
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

    fn counts(&mut self, r: &Round, pods: &[Arc<Value>], current: &str, update: &str) -> Counts {
        let mut c = Counts::default();
        for p in pods {
            if ordinal_of(&r.name, p).is_none() {
                continue;
            }
            let created = !phase_of(p).is_empty();
            if created {
                c.replicas += 1;
            }
            if running_and_ready(p) {
                c.ready += 1;
                match availability(p, r.min_ready, r.now) {
                    Ok(()) => c.available += 1,
                    Err(Some(at)) => self.timers.at(&r.key, at),
                    Err(None) => {}
                }
            }
            if created && !is_deleting(p) {
                let rev = p["metadata"]["labels"][REVISION_LABEL]
                    .as_str()
                    .unwrap_or_default();
                if rev == current {
                    c.current += 1;
                }
                if rev == update {
                    c.updated += 1;
                }
            }
        }
        c
    }

    /// Steps 3 to 5: replicas, condemned pods, rolling update.
    async fn pods_round(
        &mut self,
        state: &Arc<Backend>,
        r: &mut Round,
        (start, end): (i64, i64),
        replicas: &BTreeMap<i64, Arc<Value>>,
        condemned: &[(i64, Arc<Value>)],
        (current, update): (&Arc<Value>, &Arc<Value>),
    ) -> ApiResult<()> {
        let set = r.set.clone();
        let spec = &set["spec"];
        if is_deleting(&set) {
            return Ok(());
        }
        let monotonic = spec["podManagementPolicy"] != "Parallel";
        let rolling = spec["updateStrategy"]["type"] != "OnDelete";
        let partition = spec["updateStrategy"]["rollingUpdate"]["partition"]
            .as_i64()
            .unwrap_or(0);
        let current_count = set["status"]["currentReplicas"].as_i64().unwrap_or(0);
        let has_rolling = spec["updateStrategy"]["rollingUpdate"].is_object();
        let current_template = revision_template(current);
        let update_template = spec["template"].clone();
        // The first unhealthy pod, replicas in order then condemned from the lowest.
        let mut first_unhealthy: Option<String> = None;
        for p in replicas
            .values()
            .chain(condemned.iter().rev().map(|(_, p)| p))
        {
            if is_deleting(p) || !running_and_ready(p) {
                first_unhealthy = Some(name_of(p).to_string());
                break;
            }
        }
        // 3. Replicas, in order.
        for ord in start..end {
            match replicas.get(&ord) {
                Some(p) if matches!(phase_of(p), "Failed" | "Succeeded") => {
                    if !is_deleting(p) {
                        r.wrote = true;
                        delete_pod(state, &r.ns, p, None).await?;
                    }
                    if monotonic {
                        return Ok(());
                    }
                }
                None => {
                    if !self.create_claims(state, r, ord, None).await? {
                        if monotonic {
                            return Ok(());
                        }
                        continue;
                    }
                    // kube's newVersionedStatefulSetPod: below the partition, the current revision.
                    let at_current = rolling
                        && ((!has_rolling && ord < current_count)
                            || (has_rolling && ord < partition));
                    let pod = if at_current {
                        new_pod(&set, &current_template, name_of(current), ord)
                    } else {
                        new_pod(&set, &update_template, name_of(update), ord)
                    };
                    r.wrote = true;
                    CONTROLLER_MANAGER
                        .create(state, "", "pods", &r.ns, pod)
                        .await?;
                    if monotonic {
                        return Ok(());
                    }
                }
                Some(p) => {
                    if phase_of(p) == "Pending" {
                        self.create_claims(state, r, ord, Some(uid_of(p))).await?;
                    }
                    if monotonic && !self.healthy(r, p) {
                        return Ok(());
                    }
                    if !is_deleting(p) {
                        self.fix_claim_refs(state, r, p, ord, false).await?;
                    }
                    if !identity_matches(&set, p, ord) && !is_deleting(p) {
                        r.wrote = true;
                        let name = name_of(p).to_string();
                        CONTROLLER_MANAGER
                            .update(
                                state,
                                "",
                                "pods",
                                &r.ns,
                                &name,
                                "",
                                Some(uid_of(p)),
                                |obj| {
                                    if !obj["metadata"]["labels"].is_object() {
                                        obj["metadata"]["labels"] = json!({});
                                    }
                                    let l = &mut obj["metadata"]["labels"];
                                    let before = l.clone();
                                    l[POD_NAME_LABEL] = json!(name);
                                    l[POD_INDEX_LABEL] = json!(ord.to_string());
                                    *l != before
                                },
                            )
                            .await?;
                    }
                }
            }
        }
        // Claims of condemned pods follow the retention policy before the pods go.
        for (ord, p) in condemned {
            if !is_deleting(p) {
                self.fix_claim_refs(state, r, p, *ord, true).await?;
            }
        }
        // 4. Condemned pods, highest ordinal first.
        for (_, p) in condemned {
            if is_deleting(p) {
                if monotonic {
                    return Ok(());
                }
                continue;
            }
            let first = first_unhealthy.as_deref() == Some(name_of(p));
            if monotonic && !first && !self.healthy(r, p) {
                return Ok(());
            }
            r.wrote = true;
            delete_pod(state, &r.ns, p, None).await?;
            if monotonic {
                return Ok(());
            }
        }
        // 5. Rolling update.
        if !rolling {
            return Ok(());
        }
        let max_unavailable = scaled(
            &spec["updateStrategy"]["rollingUpdate"]["maxUnavailable"],
            end - start,
            true,
        )
        .unwrap_or(1)
        .max(1);
        let mut unavailable = 0;
        for p in replicas.values() {
            if !self.healthy(r, p) {
                unavailable += 1;
            }
        }
        // Ordinals without a pod yet are unavailable too.
        unavailable += (end - start) - i64::try_from(replicas.len()).unwrap_or(0);
        let mut budget = max_unavailable - unavailable;
        for (ord, p) in replicas.iter().rev() {
            if budget <= 0 || *ord < partition {
                break;
            }
            let rev = p["metadata"]["labels"][REVISION_LABEL]
                .as_str()
                .unwrap_or_default();
            if rev != name_of(update) && !is_deleting(p) {
                r.wrote = true;
                delete_pod(state, &r.ns, p, None).await?;
                budget -= 1;
            }
        }
        Ok(())
    }

    async fn write_status(
        &self,
        state: &Arc<Backend>,
        r: &mut Round,
        c: &Counts,
        current: &str,
        update: &str,
    ) -> ApiResult<()> {
        let set = &r.set;
        let rolling = set["spec"]["updateStrategy"]["type"] != "OnDelete";
        // kube's completeRollingUpdate.
        let (current, current_count) =
            if rolling && c.updated == c.replicas && c.ready == c.replicas {
                (update, c.updated)
            } else {
                (current, c.current)
            };
        let generation = generation_of(set);
        let collisions = set["status"]["collisionCount"].as_i64();
        let status = json!({
            "observedGeneration": generation,
            "replicas": c.replicas,
            "readyReplicas": c.ready,
            "currentReplicas": current_count,
            "updatedReplicas": c.updated,
            "availableReplicas": c.available,
            "currentRevision": current,
            "updateRevision": update,
        });
        let same = status.as_object().is_some_and(|m| {
            m.iter().all(|(k, v)| {
                set["status"][k] == *v || (v == &json!(0) && set["status"][k].is_null())
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
                "statefulsets",
                &r.ns,
                &r.name,
                "status",
                Some(uid_of(set)),
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
                    if let Some(cc) = collisions {
                        let now = obj["status"]["collisionCount"].as_i64().unwrap_or(0);
                        obj["status"]["collisionCount"] = json!(now.max(cc));
                    }
                    obj["status"] != before
                },
            )
            .await?;
        Ok(())
    }
}

/// The first `n` bytes of `s` (at a character boundary).
pub(super) fn truncate(s: &str, n: usize) -> &str {
    if s.len() <= n {
        return s;
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[async_trait::async_trait]
impl Reconciler for StatefulSetController {
    const CONTROLLER: Controller = Controller::StatefulSet;

    fn interest(&self) -> Interest {
        Interest::caches([&self.sets, &self.pods, &self.revisions, &self.claims])
    }

    fn expectations(&mut self) -> Option<&mut Expectations> {
        Some(&mut self.expect)
    }

    fn observe(&mut self, _state: &Backend, msg: &Msg, queue: &mut Queue) {
        for c in self.sets.observe(msg) {
            queue.add(c.key);
        }
        for c in self.pods.observe(msg) {
            queue_owners(&self.sets, &self.pods, "StatefulSet", &c, queue);
        }
        for c in self.revisions.observe(msg) {
            queue_owners(&self.sets, &self.revisions, "StatefulSet", &c, queue);
        }
        for c in self.claims.observe(msg) {
            self.queue_for_claim(&c, queue);
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
        let Some(set) = self.sets.get(key).cloned() else {
            return Ok(());
        };
        let (ns, name) = self.sets.split(key);
        let mut r = Round {
            key: key.to_string(),
            ns: ns.to_string(),
            name: name.to_string(),
            min_ready: set["spec"]["minReadySeconds"].as_i64().unwrap_or(0),
            set,
            now: state.clock.now(),
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

    #[test]
    fn ordinals_are_read_from_the_last_dash() {
        assert_eq!(parent_and_ordinal("web-0"), Some(("web", 0)));
        assert_eq!(parent_and_ordinal("my-web-12"), Some(("my-web", 12)));
        assert_eq!(parent_and_ordinal("web-x"), None);
        assert_eq!(parent_and_ordinal("web-"), None);
        assert_eq!(parent_and_ordinal("web"), None);
        assert_eq!(parent_and_ordinal("web-99999999999"), None);
    }

    #[test]
    fn claims_follow_the_retention_policy() {
        let set = |d: &str, s: &str| {
            json!({"metadata": {"name": "web", "uid": "set-uid"},
                "spec": {"persistentVolumeClaimRetentionPolicy": {"whenDeleted": d, "whenScaled": s}}})
        };
        let pod = json!({"metadata": {"name": "web-3", "uid": "pod-uid"}});
        let other = json!({"apiVersion": "v1", "kind": "Foo", "name": "x", "uid": "other"});
        let uids = |refs: Vec<Value>| -> Vec<String> {
            refs.iter()
                .map(|r| r["uid"].as_str().unwrap().to_string())
                .collect()
        };
        let refs = [other.clone()];
        assert_eq!(
            uids(claim_refs(
                &set("Retain", "Retain"),
                Some(&pod),
                true,
                &refs
            )),
            ["other"]
        );
        assert_eq!(
            uids(claim_refs(
                &set("Delete", "Retain"),
                Some(&pod),
                true,
                &refs
            )),
            ["other", "set-uid"]
        );
        assert_eq!(
            uids(claim_refs(
                &set("Retain", "Delete"),
                Some(&pod),
                true,
                &refs
            )),
            ["other", "pod-uid"]
        );
        assert_eq!(
            uids(claim_refs(
                &set("Retain", "Delete"),
                Some(&pod),
                false,
                &refs
            )),
            ["other"]
        );
        assert_eq!(
            uids(claim_refs(
                &set("Delete", "Delete"),
                Some(&pod),
                false,
                &refs
            )),
            ["other", "set-uid"]
        );
        assert_eq!(
            uids(claim_refs(
                &set("Delete", "Delete"),
                Some(&pod),
                true,
                &refs
            )),
            ["other", "pod-uid"]
        );
    }

    #[test]
    fn percentages_scale_as_kube_scales_them() {
        assert_eq!(scaled(&json!(2), 10, true), Some(2));
        assert_eq!(scaled(&json!("25%"), 10, true), Some(3));
        assert_eq!(scaled(&json!("25%"), 10, false), Some(2));
        assert_eq!(scaled(&json!("x%"), 10, false), None);
        assert_eq!(scaled(&Value::Null, 10, false), None);
    }
}
