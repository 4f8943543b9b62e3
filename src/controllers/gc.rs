//! The garbage collector (kube-controller-manager's `garbage-collector`): ownerReferences across
//! every stored resource, built-in and custom, namespaced and cluster-scoped.
//!
//! The delete handler decides the propagation (kube-apiserver's
//! `deletionFinalizersForGarbageCollection`, in `registry::store::delete`): Background deletes the
//! owner at once; Foreground keeps it with the `foregroundDeletion` finalizer and a
//! deletionTimestamp; Orphan keeps it with the `orphan` finalizer. This controller does the rest,
//! as kube's does:
//!
//! - **Graph.** From the dispatcher's list and watch it keeps, per stored object, its uid, its
//!   owners' uids (with `blockOwnerDeletion`) and whether it is being deleted with `orphan` or
//!   `foregroundDeletion`; and an index owner uid → dependent keys. Objects whose owner uid is not
//!   in the graph are checked (a *dangling* reference: the owner is gone or never existed).
//! - **Check a dependent** (not being deleted, has ownerReferences): each owner is looked up live
//!   by apiVersion/kind/name (the dependent's namespace for a namespaced owner). Absent, or
//!   present with another uid: *dangling*. Being deleted with `foregroundDeletion`: *waiting*.
//!   Otherwise *solid*. With a solid owner, dangling and waiting references are removed from the
//!   dependent; with none, the dependent is deleted — in Foreground when an owner waits and the
//!   dependent has dependents of its own (after making its references non-blocking if one of its
//!   dependents waits too, to break cycles), otherwise with the policy its own finalizers ask for
//!   (`orphan`, `foregroundDeletion`, else Background). An owner whose kind no served resource
//!   has, or a namespaced owner of a cluster-scoped object, is unresolvable: the dependent is left
//!   alone (and re-checked when the registry changes, CRDs coming and going).
//! - **An owner in foreground deletion**: its dependents are checked (so deleted); once no
//!   dependent with `blockOwnerDeletion: true` is left, `foregroundDeletion` is removed and the
//!   owner goes (unless other finalizers hold it).
//! - **An owner being orphaned**: every dependent loses its references to the owner's uid, then
//!   `orphan` is removed.
//!
//! Deletions go through `registry::store::delete` with uid and resourceVersion preconditions, so
//! the dependents' own finalizers are honoured; reference and finalizer removals through
//! `registry::store::guaranteed_update` (compare-and-swap, retried on Conflict).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use http::StatusCode;
use kubox_storage::{EventKind, KeyValue};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    finalizers_of, is_deleting, read, remove_finalizer, resource_for_kind, update_with, Controller,
    Msg, Queue, Reconciler, ResourceIndex,
};
pub use crate::registry::gc_finalizers::{FOREGROUND, ORPHAN};
use crate::registry::store::{self, DeleteOptions, Preconditions, Propagation, Scope};
use crate::registry::Backend;
use crate::registry::ResourceInfo;
use crate::status::ApiResult;

/// An object's uid as the graph keeps it: the 16 bytes of a UUID in its canonical text (every
/// uid kubox assigns), else the text itself. Kube compares uids as strings; only a uid that
/// prints back exactly as it was written is kept as bytes, so no two texts share one value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Uid {
    Uuid([u8; 16]),
    Text(Box<str>),
}

impl Uid {
    fn new(text: &str) -> Uid {
        if let Ok(u) = uuid::Uuid::try_parse(text) {
            let mut buf = uuid::Uuid::encode_buffer();
            if u.hyphenated().encode_lower(&mut buf) == text {
                return Uid::Uuid(u.into_bytes());
            }
        }
        Uid::Text(text.into())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Owner {
    uid: Uid,
    block: bool,
}

/// What the graph keeps of an object that owners or finalizers make interesting (most objects
/// have neither: they are only in the uid index).
#[derive(Debug, Clone)]
struct Node {
    uid: Uid,
    owners: Vec<Owner>,
    /// deletionTimestamp set.
    deleting: bool,
    foreground: bool,
    orphan: bool,
}

impl Node {
    fn waiting_for_dependents(&self) -> bool {
        self.deleting && self.foreground
    }

    /// Whether the graph needs more of the object than its uid: it has owners, or the
    /// collector has a finalizer of its to act on.
    fn kept(&self) -> bool {
        !self.owners.is_empty() || self.foreground || self.orphan
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredOwner {
    uid: Option<String>,
    block_owner_deletion: Option<bool>,
}

/// The graph's node of a stored object: its object read up to its `metadata` and no further
/// (`spec`, `status`, `data`, most of an object's bytes in the order kubox stores them, are
/// not read at all), and of the metadata only `uid`, `ownerReferences`, `finalizers` and
/// `deletionTimestamp` parsed, the rest skipped as text. kubox writes a built-in object's
/// metadata in Go's field order, where these four come before `managedFields`, which ends it,
/// and a custom resource's sorted, where `uid` comes after `managedFields`: once `uid` was
/// read, `managedFields` (the metadata's largest member) and what follows it are not read.
fn parse(value: &[u8]) -> Option<Node> {
    use std::borrow::Cow;
    // A member name as written; one with escapes (kubox writes none in these) decoded.
    fn name(raw: &[u8]) -> Cow<'_, [u8]> {
        if raw.contains(&b'\\') {
            let quoted = [&b"\""[..], raw, b"\""].concat();
            let decoded = serde_json::from_slice::<String>(&quoted).unwrap_or_default();
            Cow::Owned(decoded.into_bytes())
        } else {
            Cow::Borrowed(raw)
        }
    }
    let mut s = crate::objects::Scan::new(value);
    s.eat(b'{')?;
    loop {
        let key = s.string()?;
        s.eat(b':')?;
        if *name(key) == *b"metadata" {
            break;
        }
        s.value()?;
        s.comma();
    }
    s.eat(b'{')?;
    let (mut uid, mut owners, mut finalizers, mut deleting) = (None, None, None, false);
    while !s.at(b'}') {
        let key = name(s.string()?);
        s.eat(b':')?;
        if *key == *b"managedFields" && uid.is_some() {
            break;
        }
        let start = s.pos();
        s.value()?;
        let text = &value[start..s.pos()];
        match &*key {
            b"uid" => uid = serde_json::from_slice::<Option<String>>(text).ok()?,
            b"ownerReferences" => {
                owners = serde_json::from_slice::<Option<Vec<StoredOwner>>>(text).ok()?
            }
            b"finalizers" => {
                finalizers = serde_json::from_slice::<Option<Vec<String>>>(text).ok()?
            }
            b"deletionTimestamp" => deleting = text.trim_ascii() != b"null",
            _ => {}
        }
        s.comma();
    }
    let uid = uid.filter(|u| !u.is_empty())?;
    let finalizers = finalizers.unwrap_or_default();
    Some(Node {
        uid: Uid::new(&uid),
        owners: owners
            .unwrap_or_default()
            .into_iter()
            .filter_map(|o| {
                Some(Owner {
                    uid: Uid::new(&o.uid.filter(|u| !u.is_empty())?),
                    block: o.block_owner_deletion == Some(true),
                })
            })
            .collect(),
        deleting,
        foreground: finalizers.iter().any(|f| f == FOREGROUND),
        orphan: finalizers.iter().any(|f| f == ORPHAN),
    })
}

/// How one ownerReference stands (kube's classifyReferences).
enum Standing {
    Solid,
    Dangling,
    Waiting,
    Unresolvable,
}

/// The garbage collector's state: the dependency graph.
#[derive(Default)]
pub struct GarbageCollector {
    /// The objects with owners or a collector's finalizer. Keys are the store's own (one
    /// allocation per object, shared by the maps).
    nodes: HashMap<Arc<str>, Node>,
    /// Every object's uid → its key.
    by_uid: HashMap<Uid, Arc<str>>,
    dependents: HashMap<Uid, BTreeSet<Arc<str>>>,
    /// Dependents left alone because an owner's kind could not be resolved.
    unresolved: BTreeSet<String>,
    index: ResourceIndex,
}

impl GarbageCollector {
    fn clear(&mut self) {
        self.nodes.clear();
        self.by_uid.clear();
        self.dependents.clear();
    }

    /// Forget the object at `key` whose uid is `uid`; returns its node if it had one.
    fn remove(&mut self, key: &str, uid: &Uid) -> Option<Node> {
        if self.by_uid.get(uid).is_some_and(|k| &**k == key) {
            self.by_uid.remove(uid);
        }
        let old = self.nodes.remove(key)?;
        if old.uid != *uid && self.by_uid.get(&old.uid).is_some_and(|k| &**k == key) {
            self.by_uid.remove(&old.uid);
        }
        for o in &old.owners {
            if let Some(set) = self.dependents.get_mut(&o.uid) {
                set.remove(key);
                if set.is_empty() {
                    self.dependents.remove(&o.uid);
                }
            }
        }
        Some(old)
    }

    fn insert(&mut self, key: &Arc<str>, node: Node) -> Option<Node> {
        let old = self.remove(key, &node.uid);
        self.by_uid.insert(node.uid.clone(), key.clone());
        if node.kept() {
            for o in &node.owners {
                self.dependents
                    .entry(o.uid.clone())
                    .or_default()
                    .insert(key.clone());
            }
            self.nodes.insert(key.clone(), node);
        }
        old
    }

    fn owner_waiting(&self, uid: &Uid) -> Option<&Arc<str>> {
        let key = self.by_uid.get(uid)?;
        self.nodes
            .get(key)
            .filter(|n| n.waiting_for_dependents())
            .map(|_| key)
    }

    /// Does this object need a look: being deleted with a GC finalizer, or an owner that is
    /// absent from the graph or waiting for its dependents?
    fn needs_check(&self, node: &Node) -> bool {
        (node.deleting && (node.foreground || node.orphan))
            || node
                .owners
                .iter()
                .any(|o| !self.by_uid.contains_key(&o.uid) || self.owner_waiting(&o.uid).is_some())
    }

    fn dependents_of(&self, uid: &str) -> Vec<String> {
        self.dependents
            .get(&Uid::new(uid))
            .map(|s| s.iter().map(|k| k.to_string()).collect())
            .unwrap_or_default()
    }

    fn observe_put(&mut self, kv: &KeyValue, queue: &mut Queue) {
        let key = &kv.key;
        let Some(node) = parse(&kv.value) else {
            // No uid to index it by: only a node it had can be dropped.
            if let Some(old) = self.nodes.get(&**key).map(|n| n.uid.clone()) {
                if let Some(old) = self.remove(key, &old) {
                    self.after_removal(&old.uid, &old.owners, queue);
                }
            }
            return;
        };
        let new_owners = node.owners.clone();
        let deleting = node.deleting;
        let old = self.insert(key, node);
        if let Some(n) = self.nodes.get(key) {
            if self.needs_check(n) {
                queue.add(&**key);
            }
        }
        // An owner waiting for its dependents re-checks when one of them changes what blocks it.
        let changed = match &old {
            Some(o) => o.owners != new_owners || o.deleting != deleting,
            None => !new_owners.is_empty(),
        };
        if changed {
            let mut uids: Vec<&Uid> = new_owners.iter().map(|o| &o.uid).collect();
            if let Some(o) = &old {
                uids.extend(o.owners.iter().map(|o| &o.uid));
            }
            let owners: Vec<String> = uids
                .into_iter()
                .filter_map(|u| self.owner_waiting(u).map(|k| k.to_string()))
                .collect();
            for k in owners {
                queue.add(k);
            }
        }
    }

    /// After an object left the graph: its dependents lost an owner; an owner waiting for it may
    /// be free.
    fn after_removal(&self, uid: &Uid, owners: &[Owner], queue: &mut Queue) {
        if let Some(deps) = self.dependents.get(uid) {
            for d in deps {
                queue.add(&**d);
            }
        }
        for o in owners {
            if let Some(k) = self.owner_waiting(&o.uid) {
                queue.add(&**k);
            }
        }
    }

    async fn classify(
        &self,
        state: &Arc<Backend>,
        dependent_ns: &str,
        reference: &Value,
    ) -> ApiResult<Standing> {
        let Some(snap) = self.index.snapshot() else {
            return Ok(Standing::Unresolvable);
        };
        let api_version = reference["apiVersion"].as_str().unwrap_or_default();
        let kind = reference["kind"].as_str().unwrap_or_default();
        let name = reference["name"].as_str().unwrap_or_default();
        let uid = reference["uid"].as_str().unwrap_or_default();
        let Some(info) = resource_for_kind(snap, api_version, kind) else {
            return Ok(Standing::Unresolvable);
        };
        if info.namespaced && dependent_ns.is_empty() {
            // A cluster-scoped object cannot be owned by a namespaced one.
            return Ok(Standing::Unresolvable);
        }
        let key = info.key(if info.namespaced { dependent_ns } else { "" }, name);
        let Some((owner, _)) = read(state, &key).await? else {
            return Ok(Standing::Dangling);
        };
        if owner["metadata"]["uid"].as_str() != Some(uid) {
            return Ok(Standing::Dangling);
        }
        if is_deleting(&owner) && finalizers_of(&owner).iter().any(|f| f == FOREGROUND) {
            return Ok(Standing::Waiting);
        }
        Ok(Standing::Solid)
    }

    /// Delete one object through the API's delete path.
    async fn delete(
        state: &Arc<Backend>,
        info: &Arc<ResourceInfo>,
        obj: &Value,
        rev: i64,
        policy: Propagation,
        key: &str,
        queue: &mut Queue,
    ) -> ApiResult<()> {
        let ns = obj["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = obj["metadata"]["name"].as_str().unwrap_or_default();
        let opts = DeleteOptions {
            propagation: Some(policy),
            preconditions: Preconditions {
                uid: obj["metadata"]["uid"].as_str().map(str::to_string),
                resource_version: Some(rev.to_string()),
            },
            ..Default::default()
        };
        let scope = Scope::system(state, info.clone(), ns, "");
        match store::delete(&scope, name, &opts).await {
            Ok(_) => Ok(()),
            Err(e) if e.code == StatusCode::NOT_FOUND => Ok(()),
            // Changed since it was read: look again.
            Err(e) if e.code == StatusCode::CONFLICT => {
                queue.add(key);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Remove the references to `uids` from one object.
    async fn drop_references(
        state: &Arc<Backend>,
        info: &Arc<ResourceInfo>,
        key: &str,
        uid: Option<&str>,
        uids: &[String],
    ) -> ApiResult<()> {
        update_with(state, info, key, "", uid, |obj| {
            let Some(refs) = obj["metadata"]["ownerReferences"].as_array() else {
                return false;
            };
            let kept: Vec<Value> = refs
                .iter()
                .filter(|r| !uids.iter().any(|u| r["uid"].as_str() == Some(u)))
                .cloned()
                .collect();
            if kept.len() == refs.len() {
                return false;
            }
            if kept.is_empty() {
                if let Some(m) = obj["metadata"].as_object_mut() {
                    m.remove("ownerReferences");
                }
            } else {
                obj["metadata"]["ownerReferences"] = json!(kept);
            }
            true
        })
        .await
        .map(|_| ())
    }

    async fn orphan_dependents(&mut self, state: &Arc<Backend>, uid: &str) -> ApiResult<()> {
        let owner = [uid.to_string()];
        for d in self.dependents_of(uid) {
            let Some(info) = self.index.for_key(&d) else {
                continue;
            };
            Self::drop_references(state, &info, &d, None, &owner).await?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Reconciler for GarbageCollector {
    const CONTROLLER: Controller = Controller::GarbageCollector;

    fn observe(&mut self, state: &Backend, msg: &Msg, queue: &mut Queue) {
        match msg {
            Msg::Reset { items, .. } => {
                self.clear();
                for kv in items.iter() {
                    if let Some(n) = parse(&kv.value) {
                        self.insert(&kv.key, n);
                    }
                }
                let keys: Vec<&Arc<str>> = self
                    .nodes
                    .iter()
                    .filter(|(_, n)| self.needs_check(n))
                    .map(|(k, _)| k)
                    .collect();
                for k in keys {
                    queue.add(&**k);
                }
            }
            Msg::Change(ev) => match ev.kind {
                EventKind::Put => self.observe_put(&ev.kv, queue),
                EventKind::Delete => {
                    // The uid of an object without a node is read from the value it had.
                    let uid = match self.nodes.get(&*ev.kv.key) {
                        Some(n) => Some(n.uid.clone()),
                        None => ev
                            .prev
                            .as_ref()
                            .and_then(|p| parse(&p.value))
                            .map(|n| n.uid),
                    };
                    if let Some(uid) = uid {
                        let old = self.remove(&ev.kv.key, &uid);
                        let owners = old.as_ref().map_or(&[][..], |o| &o.owners[..]);
                        self.after_removal(&uid, owners, queue);
                    }
                }
            },
        }
        if self.index.refresh(state) {
            for k in std::mem::take(&mut self.unresolved) {
                queue.add(k);
            }
        }
    }

    async fn reconcile(
        &mut self,
        state: &Arc<Backend>,
        key: &str,
        queue: &mut Queue,
    ) -> ApiResult<()> {
        self.index.refresh(state);
        let Some((obj, rev)) = read(state, key).await? else {
            return Ok(());
        };
        let Some(info) = self.index.for_key(key) else {
            return Ok(());
        };
        let uid = obj["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let finalizers = finalizers_of(&obj);
        if is_deleting(&obj) {
            if finalizers.iter().any(|f| f == ORPHAN) {
                self.orphan_dependents(state, &uid).await?;
                remove_finalizer(state, &info, key, &uid, ORPHAN).await?;
            } else if finalizers.iter().any(|f| f == FOREGROUND) {
                let deps = self.dependents_of(&uid);
                let owner = Uid::new(&uid);
                let blocking = deps.iter().any(|d| {
                    self.nodes
                        .get(d.as_str())
                        .is_some_and(|n| n.owners.iter().any(|o| o.uid == owner && o.block))
                });
                if blocking {
                    for d in deps {
                        if self.nodes.get(d.as_str()).is_some_and(|n| !n.deleting) {
                            queue.add(d);
                        }
                    }
                } else {
                    remove_finalizer(state, &info, key, &uid, FOREGROUND).await?;
                }
            }
            // Otherwise: a one-way trip to deletion; its dependents are looked at once it is gone.
            return Ok(());
        }
        let refs = obj["metadata"]["ownerReferences"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if refs.is_empty() {
            return Ok(());
        }
        let ns = obj["metadata"]["namespace"].as_str().unwrap_or_default();
        let (mut solid, mut dangling, mut waiting) = (0, Vec::new(), Vec::new());
        for r in &refs {
            let ref_uid = r["uid"].as_str().unwrap_or_default().to_string();
            match self.classify(state, ns, r).await? {
                Standing::Solid => solid += 1,
                Standing::Dangling => dangling.push(ref_uid),
                Standing::Waiting => waiting.push(ref_uid),
                Standing::Unresolvable => {
                    tracing::debug!(%key, reference = %r, "owner cannot be resolved; leaving it");
                    self.unresolved.insert(key.to_string());
                    return Ok(());
                }
            }
        }
        if solid > 0 {
            if dangling.is_empty() && waiting.is_empty() {
                return Ok(());
            }
            let mut gone = dangling;
            gone.extend(waiting);
            return Self::drop_references(state, &info, key, Some(&uid), &gone).await;
        }
        let has_dependents = !self.dependents_of(&uid).is_empty();
        if !waiting.is_empty() && has_dependents {
            let cycle = self.dependents_of(&uid).iter().any(|d| {
                self.nodes
                    .get(d.as_str())
                    .is_some_and(Node::waiting_for_dependents)
            });
            if cycle {
                // Make this object's references non-blocking so its owners are not stuck on it.
                update_with(state, &info, key, "", Some(&uid), |o| {
                    let mut changed = false;
                    if let Some(refs) = o["metadata"]["ownerReferences"].as_array_mut() {
                        for r in refs.iter_mut() {
                            if r["blockOwnerDeletion"] == json!(true) {
                                r["blockOwnerDeletion"] = json!(false);
                                changed = true;
                            }
                        }
                    }
                    changed
                })
                .await?;
            }
            let Some((obj, rev)) = read(state, key).await? else {
                return Ok(());
            };
            return Self::delete(state, &info, &obj, rev, Propagation::Foreground, key, queue)
                .await;
        }
        let policy = if finalizers.iter().any(|f| f == ORPHAN) {
            Propagation::Orphan
        } else if finalizers.iter().any(|f| f == FOREGROUND) {
            Propagation::Foreground
        } else {
            Propagation::Background
        };
        Self::delete(state, &info, &obj, rev, policy, key, queue).await
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn only_a_canonical_uuid_is_kept_as_bytes() {
        let lower = "0b7e4a5c-3f7d-4c53-9a43-1f0e2d3c4b5a";
        assert!(matches!(Uid::new(lower), Uid::Uuid(_)));
        // Kube compares uids as text: other spellings of the same UUID are other uids.
        for other in [
            "0B7E4A5C-3F7D-4C53-9A43-1F0E2D3C4B5A",
            "0b7e4a5c3f7d4c539a431f0e2d3c4b5a",
            "{0b7e4a5c-3f7d-4c53-9a43-1f0e2d3c4b5a}",
            "urn:uuid:0b7e4a5c-3f7d-4c53-9a43-1f0e2d3c4b5a",
        ] {
            assert!(matches!(Uid::new(other), Uid::Text(_)), "{other}");
            assert_ne!(Uid::new(other), Uid::new(lower), "{other}");
        }
        assert_eq!(Uid::new("not-a-uuid"), Uid::Text("not-a-uuid".into()));
    }

    #[test]
    fn the_graph_reads_an_object_up_to_its_metadata_wherever_that_stands() {
        let owner = "0b7e4a5c-3f7d-4c53-9a43-1f0e2d3c4b5a";
        let meta = format!(
            r#"{{"uid":"u1","ownerReferences":[{{"uid":"{owner}","blockOwnerDeletion":true}}],"finalizers":["orphan"]}}"#
        );
        let texts = [
            // As kubox stores a built-in object: metadata before spec and status.
            format!(
                r#"{{"kind":"Pod","apiVersion":"v1","metadata":{meta},"spec":{{"a":[1,2]}},"status":{{}}}}"#
            ),
            // Other members first, keys with escapes, metadata last.
            format!(
                r#"{{"a\"b":{{"metadata":{{"uid":"no"}}}},"spec":[{{"x":"y"}}],"meta\u0064ata":{meta}}}"#
            ),
            // Members skipped as text hold brackets, quotes and escapes in their strings;
            // the members read have escapes in their names; spaces between tokens.
            format!(
                concat!(
                    r#"{{ "kind" : "X", "metadata" : {{ "name" : "a}}\"{{]", "#,
                    r#""managedFields" : [ {{ "fieldsV1" : {{ "f:a\\" : {{ }}, "k:{{\"n\":\"]\"}}" : {{ }} }} }} ], "#,
                    r#""u\u0069d" : "u1", "labels" : {{ "uid" : "no" }}, "#,
                    r#""ownerReferences" : [ {{ "uid" : "{owner}", "blockOwnerDeletion" : true }} ], "#,
                    r#""fin\u0061lizers" : [ "orphan" ] }}, "spec" : {{ }} }}"#
                ),
                owner = owner
            ),
        ];
        for text in &texts {
            let node = parse(text.as_bytes()).expect(text);
            assert_eq!(node.uid, Uid::new("u1"), "{text}");
            assert_eq!(node.owners.len(), 1, "{text}");
            assert_eq!(node.owners[0].uid, Uid::new(owner), "{text}");
            assert!(
                node.owners[0].block && node.orphan && !node.foreground,
                "{text}"
            );
        }
        // What follows the metadata is not read: a stored object cut short after it still
        // gives its graph node, one cut short before it does not.
        let whole = &texts[0];
        let cut = whole.find(r#","spec""#).expect("spec");
        assert!(parse(&whole.as_bytes()[..cut + 3]).is_some());
        let before = whole.find("metadata").expect("metadata");
        assert!(parse(&whole.as_bytes()[..before]).is_none());
        // A built-in object as kubox stores it (Go's order: managedFields last in metadata,
        // after the members read) is not read past the start of its managedFields; a custom
        // resource's (sorted: managedFields before uid, ownerReferences, finalizers) is read
        // through them.
        let pod = serde_json::json!({"kind": "Pod", "apiVersion": "v1", "metadata": {
            "name": "p", "namespace": "n", "uid": "u1", "finalizers": ["orphan"],
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "o",
                                 "uid": owner, "blockOwnerDeletion": true}],
            "managedFields": [{"manager": "m", "fieldsV1": {"f:metadata": {}}}]},
            "spec": {"containers": [{"name": "c", "image": "i"}]}});
        let stored = crate::objects::to_stored(&pod).expect("stored");
        let text = std::str::from_utf8(&stored).expect("utf-8");
        let fields = text.find(r#""managedFields":[{"#).expect("managedFields");
        assert!(text[..fields].contains(r#""finalizers""#), "{text}");
        let node = parse(&stored[..fields + 20]).expect(text);
        assert_eq!(node.owners.len(), 1);
        assert!(node.orphan && node.owners[0].block);
        let mut cr = pod.clone();
        cr["apiVersion"] = serde_json::json!("x.io/v1");
        cr["kind"] = serde_json::json!("X");
        let stored = crate::objects::to_stored(&cr).expect("stored");
        let text = std::str::from_utf8(&stored).expect("utf-8");
        assert!(
            text.find("managedFields") < text.find(r#""uid":"u1""#),
            "{text}"
        );
        let node = parse(&stored).expect(text);
        assert_eq!(
            (node.uid, node.owners.len(), node.orphan),
            (Uid::new("u1"), 1, true)
        );
        for none in [
            r#"{"kind":"Pod"}"#,
            r#"{"metadata":null}"#,
            r#"{"metadata":{"uid":""}}"#,
            "[]",
            "x",
        ] {
            assert!(parse(none.as_bytes()).is_none(), "{none}");
        }
    }

    #[test]
    fn objects_without_owners_or_collector_finalizers_are_only_indexed_by_uid() {
        let mut gc = GarbageCollector::default();
        let mut queue = Queue::default();
        let kv = |key: &str, value: serde_json::Value| KeyValue {
            key: Arc::from(key),
            value: bytes::Bytes::from(value.to_string()),
            create_revision: 1,
            mod_revision: 1,
            version: 1,
        };
        let owner = "0b7e4a5c-3f7d-4c53-9a43-1f0e2d3c4b5a";
        gc.observe_put(
            &kv(
                "/registry/configmaps/ns/owner",
                json!({"metadata": {"uid": owner}}),
            ),
            &mut queue,
        );
        assert!(gc.nodes.is_empty());
        assert_eq!(gc.by_uid.len(), 1);
        gc.observe_put(
            &kv(
                "/registry/configmaps/ns/dep",
                json!({"metadata": {"uid": "dep-uid", "ownerReferences": [{"uid": owner}]}}),
            ),
            &mut queue,
        );
        assert_eq!(gc.nodes.len(), 1);
        assert_eq!(gc.dependents_of(owner), vec!["/registry/configmaps/ns/dep"]);
    }
}
