//! Namespace lifecycle (kube-controller-manager's `namespace` controller).
//!
//! Deleting a namespace (the API's delete handler) sets its deletionTimestamp and phase
//! Terminating; new content is refused from then on. This controller then, for each Terminating
//! namespace that still carries the `kubernetes` finalizer in `spec.finalizers`:
//!
//! 1. deletes every object stored in it, of every namespaced resource the registry serves
//!    (built-in and custom), through the API's delete path with propagationPolicy Background —
//!    objects with finalizers get a deletionTimestamp and stay until their finalizers are gone;
//! 2. reports on the namespace's status the conditions kube's namespace controller reports
//!    (`NamespaceDeletionDiscoveryFailure`, `NamespaceDeletionGroupVersionParsingFailure`,
//!    `NamespaceDeletionContentFailure`, `NamespaceContentRemaining`,
//!    `NamespaceFinalizersRemaining`, with kube's reasons and messages; a condition's
//!    lastTransitionTime moves only when its status does);
//! 3. once nothing is left, removes `kubernetes` from `spec.finalizers` as a `finalize`
//!    subresource update would; with no finalizer left anywhere the update path deletes the
//!    namespace (metadata finalizers such as `orphan` or `foregroundDeletion` hold it until the
//!    garbage collector is done with them).
//!
//! It is watch-driven: any change to an object stored in a Terminating namespace queues that
//! namespace again, so a finalizer removed by someone else finishes the deletion without polling.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures::StreamExt;
use http::StatusCode;
use kubox_storage::EventKind;
use serde_json::{json, Value};

use super::{
    finalizers_of, is_deleting, read, update_with, Controller, Interest, Msg, Queue, Reconciler,
    ResourceIndex,
};
use crate::objects::{from_stored, timestamp};
use crate::registry::storage_prefix;
use crate::registry::store::{self, DeleteOptions, Propagation, Scope};
use crate::registry::Backend;
use crate::status::{from_store, ApiError, ApiResult};

/// The finalizer in `spec.finalizers` that this controller owns.
pub const FINALIZER: &str = "kubernetes";

/// Kube's namespace deletion condition types with their "all is well" reason and message.
const CONDITIONS: [(&str, &str, &str); 5] = [
    (
        "NamespaceDeletionDiscoveryFailure",
        "ResourcesDiscovered",
        "All resources successfully discovered",
    ),
    (
        "NamespaceDeletionGroupVersionParsingFailure",
        "ParsedGroupVersions",
        "All legacy kube types successfully parsed",
    ),
    (
        "NamespaceDeletionContentFailure",
        "ContentDeleted",
        "All content successfully deleted, may be waiting on finalization",
    ),
    (
        "NamespaceContentRemaining",
        "ContentRemoved",
        "All content successfully removed",
    ),
    (
        "NamespaceFinalizersRemaining",
        "ContentHasNoFinalizers",
        "All content-preserving finalizers finished",
    ),
];

fn namespaces_prefix() -> String {
    storage_prefix("", "namespaces")
}

/// How many deletions of one namespace's content are in flight at once.
const DELETE_CONCURRENCY: usize = 32;

/// What became of one object of a Terminating namespace.
enum Outcome {
    Gone,
    /// Still there (finalizers, or already being deleted).
    Kept(Value),
    /// Changed between list and delete.
    Raced,
    Failed(String),
}

/// What deleting a namespace's content left behind.
#[derive(Default)]
struct Content {
    /// `resource.group` → objects remaining.
    remaining: BTreeMap<String, usize>,
    /// finalizer → objects carrying it.
    finalizers: BTreeMap<String, usize>,
    /// Failures, as kube words them.
    errors: Vec<String>,
}

/// Go's `utilerrors.NewAggregate(errs).Error()`.
fn aggregate(errs: &[String]) -> String {
    match errs {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

/// Set the five deletion conditions from `failing` (type → (reason, message)); true on change.
fn update_conditions(
    status: &mut Value,
    failing: &BTreeMap<&str, (String, String)>,
    now: &str,
) -> bool {
    let mut conds: Vec<Value> = status["conditions"].as_array().cloned().unwrap_or_default();
    let mut changed = false;
    for (ty, ok_reason, ok_message) in CONDITIONS {
        let (value, reason, message) = match failing.get(ty) {
            Some((r, m)) => ("True", r.as_str(), m.as_str()),
            None => ("False", ok_reason, ok_message),
        };
        let before = conds.clone();
        crate::objects::set_condition(&mut conds, ty, value, reason, message, now);
        changed |= conds != before;
    }
    if changed {
        status["conditions"] = json!(conds);
    }
    changed
}

/// The namespace controller's state: which namespaces are Terminating.
#[derive(Default)]
pub struct NamespaceController {
    terminating: HashSet<String>,
    index: ResourceIndex,
    /// Some namespace terminates: every change is sent, its content's too.
    content: Arc<AtomicBool>,
}

impl NamespaceController {
    /// Delete what is in `ns`; report what is left.
    async fn delete_content(&mut self, state: &Arc<Backend>, ns: &str) -> ApiResult<Content> {
        self.index.refresh(state);
        let mut content = Content::default();
        let resources: Vec<_> = self
            .index
            .resources()
            .filter(|r| r.namespaced && r.has_verb("delete"))
            .cloned()
            .collect();
        for info in resources {
            let prefix = format!("{}{ns}/", info.storage_prefix);
            let list = state
                .store
                .list(&prefix, Default::default())
                .await
                .map_err(|e| from_store(e, &info.group_resource(), ""))?;
            let mut objs = Vec::with_capacity(list.items.len());
            for kv in &list.items {
                objs.push(from_stored(kv)?);
            }
            // Deletions run DELETE_CONCURRENCY at a time (a durable store commits them together).
            let outcomes: Vec<Outcome> = futures::stream::iter(objs.into_iter().map(|obj| {
                let info = info.clone();
                async move {
                    if is_deleting(&obj) {
                        return Outcome::Kept(obj);
                    }
                    let name = obj["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    let scope = Scope::system(state, info.clone(), ns, "");
                    let opts = DeleteOptions {
                        propagation: Some(Propagation::Background),
                        ..Default::default()
                    };
                    match store::delete(&scope, &name, &opts).await {
                        Ok((_, true)) => Outcome::Gone,
                        Ok((o, false)) => Outcome::Kept(o),
                        Err(e) if e.code == StatusCode::NOT_FOUND => Outcome::Gone,
                        // Written meanwhile: its change event brings this namespace back.
                        Err(e) if e.code == StatusCode::CONFLICT => Outcome::Raced,
                        Err(e) => Outcome::Failed(format!(
                            "error deleting {} {name:?} in namespace {ns:?}: {}",
                            info.group_resource(),
                            e.message
                        )),
                    }
                }
            }))
            .buffer_unordered(DELETE_CONCURRENCY)
            .collect()
            .await;
            let mut left = 0;
            let mut without_finalizers = 0;
            for outcome in outcomes {
                match outcome {
                    Outcome::Gone => {}
                    Outcome::Raced => left += 1,
                    Outcome::Failed(e) => {
                        left += 1;
                        content.errors.push(e);
                    }
                    Outcome::Kept(o) => {
                        left += 1;
                        let fs = finalizers_of(&o);
                        if fs.is_empty() {
                            without_finalizers += 1;
                        }
                        for f in fs {
                            *content.finalizers.entry(f).or_default() += 1;
                        }
                    }
                }
            }
            if left > 0 {
                content
                    .remaining
                    .insert(format!("{}.{}", info.resource, info.group), left);
                if without_finalizers > 0 {
                    content.errors.push(format!(
                        "unexpected items still remain in namespace: {ns} for gvr: {}/{}, Resource={}",
                        info.group, info.version, info.resource
                    ));
                }
            }
        }
        Ok(content)
    }
}

#[async_trait::async_trait]
impl Reconciler for NamespaceController {
    const CONTROLLER: Controller = Controller::Namespace;

    fn interest(&self) -> Interest {
        Interest::prefixes([namespaces_prefix()]).widened_while(self.content.clone())
    }

    fn observe(&mut self, state: &Backend, msg: &Msg, queue: &mut Queue) {
        let prefix = namespaces_prefix();
        match msg {
            Msg::Reset { items, .. } => {
                self.terminating.clear();
                for kv in items.iter() {
                    let Some(name) = kv.key.strip_prefix(prefix.as_str()) else {
                        continue;
                    };
                    if from_stored(kv).is_ok_and(|o| is_deleting(&o)) {
                        self.terminating.insert(name.to_string());
                        queue.add(name);
                    }
                }
            }
            Msg::Change(ev) => {
                if let Some(name) = ev.kv.key.strip_prefix(prefix.as_str()) {
                    let deleting = ev.kind == EventKind::Put
                        && from_stored(&ev.kv).is_ok_and(|o| is_deleting(&o));
                    if deleting {
                        self.terminating.insert(name.to_string());
                        queue.add(name);
                    } else {
                        self.terminating.remove(name);
                    }
                } else if !self.terminating.is_empty() {
                    self.index.refresh(state);
                    if let Some(ns) = self.index.namespace_of(&ev.kv.key) {
                        if self.terminating.contains(ns) {
                            queue.add(ns);
                        }
                    }
                }
            }
        }
        // Set before any reconcile reads the content it will be sent changes of.
        self.content
            .store(!self.terminating.is_empty(), Ordering::SeqCst);
    }

    async fn reconcile(
        &mut self,
        state: &Arc<Backend>,
        name: &str,
        _queue: &mut Queue,
    ) -> ApiResult<()> {
        let key = format!("{}{name}", namespaces_prefix());
        let Some((ns, _)) = read(state, &key).await? else {
            return Ok(());
        };
        if !is_deleting(&ns) {
            return Ok(());
        }
        let uid = ns["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let has_finalizer = ns["spec"]["finalizers"]
            .as_array()
            .is_some_and(|a| a.iter().any(|f| f == FINALIZER));
        if !has_finalizer {
            return Ok(());
        }
        self.index.refresh(state);
        let Some(ns_info) = self.index.for_key(&key) else {
            return Ok(());
        };
        let content = self.delete_content(state, name).await?;
        let mut failing: BTreeMap<&str, (String, String)> = BTreeMap::new();
        if !content.errors.is_empty() {
            failing.insert(
                "NamespaceDeletionContentFailure",
                (
                    "ContentDeletionFailed".into(),
                    format!(
                        "Failed to delete all resource types, {} remaining: {}",
                        content.errors.len(),
                        aggregate(&content.errors)
                    ),
                ),
            );
        }
        if !content.remaining.is_empty() {
            let items: Vec<String> = content
                .remaining
                .iter()
                .map(|(gr, n)| format!("{gr} has {n} resource instances"))
                .collect();
            failing.insert(
                "NamespaceContentRemaining",
                (
                    "SomeResourcesRemain".into(),
                    format!("Some resources are remaining: {}", items.join(", ")),
                ),
            );
        }
        if !content.finalizers.is_empty() {
            let items: Vec<String> = content
                .finalizers
                .iter()
                .map(|(f, n)| format!("{f} in {n} resource instances"))
                .collect();
            failing.insert(
                "NamespaceFinalizersRemaining",
                (
                    "SomeFinalizersRemain".into(),
                    format!(
                        "Some content in the namespace has finalizers remaining: {}",
                        items.join(", ")
                    ),
                ),
            );
        }
        let now = timestamp(state.clock.now());
        update_with(state, &ns_info, &key, "status", Some(&uid), |obj| {
            let mut changed = false;
            if obj["status"]["phase"] != "Terminating" {
                obj["status"]["phase"] = json!("Terminating");
                changed = true;
            }
            update_conditions(&mut obj["status"], &failing, &now) || changed
        })
        .await?;
        if !content.errors.is_empty() {
            return Err(ApiError::internal(aggregate(&content.errors)));
        }
        if content.remaining.is_empty() {
            update_with(state, &ns_info, &key, "finalize", Some(&uid), |obj| {
                let Some(fs) = obj["spec"]["finalizers"].as_array() else {
                    return false;
                };
                let kept: Vec<Value> = fs.iter().filter(|f| *f != FINALIZER).cloned().collect();
                if kept.len() == fs.len() {
                    return false;
                }
                obj["spec"]["finalizers"] = json!(kept);
                true
            })
            .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn conditions_move_their_transition_time_only_on_status_changes() {
        let mut status = json!({"phase": "Terminating"});
        let mut failing = BTreeMap::new();
        failing.insert(
            "NamespaceContentRemaining",
            ("SomeResourcesRemain".to_string(), "x".to_string()),
        );
        assert!(update_conditions(&mut status, &failing, "t1"));
        assert!(!update_conditions(&mut status, &failing, "t2"));
        assert_eq!(status["conditions"].as_array().map(Vec::len), Some(5));
        failing.insert(
            "NamespaceContentRemaining",
            ("SomeResourcesRemain".to_string(), "y".to_string()),
        );
        assert!(update_conditions(&mut status, &failing, "t3"));
        let c = &status["conditions"][3];
        assert_eq!(
            (c["message"].as_str(), c["lastTransitionTime"].as_str()),
            (Some("y"), Some("t1"))
        );
        assert!(update_conditions(&mut status, &BTreeMap::new(), "t4"));
        let c = &status["conditions"][3];
        assert_eq!(
            (c["status"].as_str(), c["lastTransitionTime"].as_str()),
            (Some("False"), Some("t4"))
        );
        assert_eq!(aggregate(&["a".into()]), "a");
        assert_eq!(aggregate(&["a".into(), "b".into()]), "[a, b]");
    }
}
