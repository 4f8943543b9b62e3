//! The garbage collector's finalizers on DELETE, as kube's generic registry store sets them
//! (`deletionFinalizersForGarbageCollection` in store.go, and the namespace REST's own rule):
//! which of `orphan` / `foregroundDeletion` an object gets for the propagation asked for.

use std::collections::BTreeSet;

use serde_json::Value;

use super::spec::GcDefault;
use super::store::{DeleteOptions, Propagation};
use super::ResourceInfo;

/// The finalizer that orphans dependents (metav1.FinalizerOrphanDependents).
pub const ORPHAN: &str = "orphan";
/// The finalizer that holds an owner until its blocking dependents are gone
/// (metav1.FinalizerDeleteDependents).
pub const FOREGROUND: &str = "foregroundDeletion";

/// metadata.finalizers as strings.
pub(crate) fn finalizers_of(obj: &Value) -> Vec<String> {
    obj["metadata"]["finalizers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// A resource's default propagation when a DELETE names none (kube's
/// `DefaultGarbageCollectionPolicy`): its kind's spec (custom resources: background).
fn default_policy(info: &ResourceInfo) -> GcDefault {
    info.spec.map_or(GcDefault::Background, |s| s.gc)
}

/// The object's finalizers after a DELETE with `opts`, when they change: kube-apiserver's
/// `deletionFinalizersForGarbageCollection`. `orphanDependents` wins over `propagationPolicy`,
/// which wins over a GC finalizer already present, which wins over the resource's default.
/// Nothing changes when the garbage collector does not run (as with
/// `--enable-garbage-collector=false`): nobody would remove the finalizers.
pub(crate) fn deletion_finalizers(
    gc_enabled: bool,
    info: &ResourceInfo,
    obj: &Value,
    opts: &DeleteOptions,
) -> Option<Vec<String>> {
    if !gc_enabled {
        return None;
    }
    let default = default_policy(info);
    if default == GcDefault::Unsupported {
        return None;
    }
    let current = finalizers_of(obj);
    let existing = current
        .iter()
        .find(|f| *f == ORPHAN || *f == FOREGROUND)
        .map(String::as_str);
    let orphan_opt = opts.orphan_dependents;
    let policy = opts.propagation.map(Propagation::as_str);
    let orphan = match (orphan_opt, policy, existing) {
        (Some(o), _, _) => o,
        (None, Some(p), _) => p == "Orphan",
        (None, None, Some(f)) => f == ORPHAN,
        (None, None, None) => default == GcDefault::Orphan,
    };
    let foreground = match (orphan_opt, policy, existing) {
        (Some(_), _, _) => false,
        (None, Some(p), _) => p == "Foreground",
        (None, None, Some(f)) => f == FOREGROUND,
        (None, None, None) => false,
    };
    with_gc_finalizers(current, orphan, foreground)
}

/// The namespace REST's own rule (kube's `shouldHaveOrphanFinalizer` and
/// `shouldHaveDeleteDependentsFinalizer`): no resource default, existing finalizers kept.
pub(crate) fn namespace_deletion_finalizers(
    gc_enabled: bool,
    obj: &Value,
    opts: &DeleteOptions,
) -> Option<Vec<String>> {
    if !gc_enabled {
        return None;
    }
    let current = finalizers_of(obj);
    let has = |f: &str| current.iter().any(|c| c == f);
    let (orphan, foreground) = match (
        opts.orphan_dependents,
        opts.propagation.map(Propagation::as_str),
    ) {
        (Some(o), _) => (o, !o),
        (None, Some(p)) => (p == "Orphan", p == "Foreground"),
        (None, None) => (has(ORPHAN), has(FOREGROUND)),
    };
    with_gc_finalizers(current, orphan, foreground)
}

fn with_gc_finalizers(current: Vec<String>, orphan: bool, foreground: bool) -> Option<Vec<String>> {
    let mut new: Vec<String> = current
        .iter()
        .filter(|f| *f != ORPHAN && *f != FOREGROUND)
        .cloned()
        .collect();
    if orphan {
        new.push(ORPHAN.to_string());
    }
    if foreground {
        new.push(FOREGROUND.to_string());
    }
    let old_set: BTreeSet<&String> = current.iter().collect();
    let new_set: BTreeSet<&String> = new.iter().collect();
    (old_set != new_set).then_some(new)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn opts(v: Value) -> DeleteOptions {
        DeleteOptions::from_value(&v).unwrap()
    }

    fn info(group: &str, version: &str, resource: &str) -> ResourceInfo {
        let snap = crate::registry::Registry::builtin().snapshot();
        (*snap
            .get(group, version, resource)
            .expect("a built-in resource"))
        .clone()
    }

    #[test]
    fn delete_finalizers_follow_kube_apiserver() {
        let cm = info("", "v1", "configmaps");
        let plain = json!({"metadata": {}});
        let f = |i: &ResourceInfo, o: &Value, opts: Value| {
            deletion_finalizers(true, i, o, &DeleteOptions::from_value(&opts).unwrap())
        };
        assert_eq!(f(&cm, &plain, json!({})), None);
        assert_eq!(
            f(&cm, &plain, json!({"propagationPolicy": "Foreground"})),
            Some(vec![FOREGROUND.to_string()])
        );
        assert_eq!(
            f(&cm, &plain, json!({"propagationPolicy": "Orphan"})),
            Some(vec![ORPHAN.to_string()])
        );
        assert_eq!(f(&cm, &plain, json!({"orphanDependents": false})), None);
        // Defaults: jobs and RCs orphan, events never get GC finalizers.
        let job = info("batch", "v1", "jobs");
        assert_eq!(f(&job, &plain, json!({})), Some(vec![ORPHAN.to_string()]));
        assert_eq!(
            f(&job, &plain, json!({"propagationPolicy": "Background"})),
            None
        );
        let ev = info("", "v1", "events");
        assert_eq!(f(&ev, &plain, json!({"propagationPolicy": "Orphan"})), None);
        // An existing GC finalizer is kept without options and replaced by explicit ones.
        let held = json!({"metadata": {"finalizers": ["x", "foregroundDeletion"]}});
        assert_eq!(f(&cm, &held, json!({})), None);
        assert_eq!(
            f(&cm, &held, json!({"propagationPolicy": "Orphan"})),
            Some(vec!["x".to_string(), ORPHAN.to_string()])
        );
        assert_eq!(
            f(&cm, &held, json!({"propagationPolicy": "Background"})),
            Some(vec!["x".to_string()])
        );
        assert_eq!(
            deletion_finalizers(
                false,
                &cm,
                &plain,
                &opts(json!({"propagationPolicy": "Orphan"}))
            ),
            None
        );
        assert_eq!(
            namespace_deletion_finalizers(
                true,
                &plain,
                &opts(json!({"propagationPolicy": "Foreground"}))
            ),
            Some(vec![FOREGROUND.to_string()])
        );
        assert_eq!(
            namespace_deletion_finalizers(true, &plain, &opts(json!({"orphanDependents": false}))),
            Some(vec![FOREGROUND.to_string()])
        );
    }
}
