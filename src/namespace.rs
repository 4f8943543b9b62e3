//! Namespace deletion: a deleted namespace turns Terminating, its content is deleted (objects
//! with finalizers get a deletionTimestamp and stay until their finalizers go), and once it is
//! empty the `kubernetes` finalizer is removed and the namespace itself goes.
//!
//! This runs inline with the DELETE request: a namespace whose objects still wait on finalizers
//! stays Terminating until it is deleted again (the watch-driven namespace controller replaces
//! this pass).

use std::collections::BTreeSet;

use serde_json::json;

use crate::api::ApiState;
use crate::objects::{from_stored, timestamp, to_stored};
use crate::registry::storage_prefix;
use crate::status::{from_store, ApiResult, GroupResource};

/// Namespaces that can never be deleted (kube-apiserver's NamespaceLifecycle admission).
pub const IMMORTAL: &[&str] = &["default", "kube-system", "kube-public"];

/// Delete everything in `ns`; true when nothing is left.
async fn drain(state: &ApiState, ns: &str) -> ApiResult<bool> {
    let snap = state.registry.snapshot();
    let mut prefixes = BTreeSet::new();
    for g in &snap.groups {
        for v in &g.versions {
            for r in snap.resources(&g.name, v).unwrap_or_default() {
                if r.namespaced {
                    prefixes.insert(r.storage_prefix.clone());
                }
            }
        }
    }
    let mut empty = true;
    let now = timestamp(state.clock.now());
    for prefix in prefixes {
        let p = format!("{prefix}{ns}/");
        let list = state
            .store
            .list(&p, Default::default())
            .await
            .map_err(|e| from_store(e, &GroupResource::default(), ""))?;
        for kv in list.items {
            let mut obj = from_stored(&kv)?;
            let finalizers = obj["metadata"]["finalizers"]
                .as_array()
                .is_some_and(|a| !a.is_empty());
            let result = if finalizers {
                empty = false;
                if obj["metadata"]
                    .get("deletionTimestamp")
                    .is_some_and(|v| !v.is_null())
                {
                    continue;
                }
                obj["metadata"]["deletionTimestamp"] = json!(now);
                obj["metadata"]["deletionGracePeriodSeconds"] = json!(0);
                state
                    .store
                    .update(&kv.key, to_stored(&obj)?, Some(kv.mod_revision))
                    .await
                    .map(|_| ())
            } else {
                state
                    .store
                    .delete(&kv.key, Some(kv.mod_revision))
                    .await
                    .map(|_| ())
            };
            match result {
                Ok(()) | Err(kubox_storage::StoreError::NotFound(_)) => {}
                Err(kubox_storage::StoreError::Conflict { .. }) => empty = false,
                Err(e) => return Err(from_store(e, &GroupResource::default(), "")),
            }
        }
    }
    Ok(empty)
}

/// After a namespace turned Terminating: drain it and, when empty, finalize and delete it.
/// Returns true when the namespace is gone.
pub async fn finish_deletion(state: &ApiState, name: &str) -> ApiResult<bool> {
    if !drain(state, name).await? {
        return Ok(false);
    }
    let gr = GroupResource::new("", "namespaces");
    let key = storage_prefix("", "namespaces") + name;
    let kv = match state.store.get(&key, None).await {
        Ok(kv) => kv,
        Err(kubox_storage::StoreError::NotFound(_)) => return Ok(true),
        Err(e) => return Err(from_store(e, &gr, name)),
    };
    let obj = from_stored(&kv)?;
    if obj["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|a| !a.is_empty())
    {
        return Ok(false);
    }
    match state.store.delete(&key, Some(kv.mod_revision)).await {
        Ok(_) | Err(kubox_storage::StoreError::NotFound(_)) => Ok(true),
        Err(kubox_storage::StoreError::Conflict { .. }) => Ok(false),
        Err(e) => Err(from_store(e, &gr, name)),
    }
}
