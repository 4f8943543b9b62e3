//! `NamespaceLifecycle`: no new objects in a namespace that is missing or Terminating, and the
//! system namespaces (`default`, `kube-system`, `kube-public`) cannot be deleted.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use super::{AdmissionPlugin, Attributes, Operation};
use crate::registry::Backend;
use crate::status::{ApiError, ApiResult, GroupResource};

pub(super) struct NamespaceLifecycle;

#[async_trait]
impl AdmissionPlugin for NamespaceLifecycle {
    fn name(&self) -> &'static str {
        "NamespaceLifecycle"
    }

    fn handles(&self, op: Operation) -> bool {
        matches!(op, Operation::Create | Operation::Delete)
    }

    async fn validate(&self, state: &Arc<Backend>, a: &Attributes) -> ApiResult<()> {
        if a.operation == Operation::Delete {
            if a.is_core("namespaces") && crate::namespace::IMMORTAL.contains(&a.name.as_str()) {
                return Err(ApiError::forbidden(
                    &a.group_resource(),
                    &a.name,
                    "this namespace may not be deleted",
                ));
            }
            return Ok(());
        }
        if !a.info.namespaced || a.namespace.is_empty() {
            return Ok(());
        }
        let ns = &a.namespace;
        match super::get_resource(state, "", "namespaces", "", ns).await {
            Ok(Some(nsobj)) => {
                if nsobj["status"]["phase"] != json!("Terminating") {
                    return Ok(());
                }
                let mut e = ApiError::forbidden(
                    &a.group_resource(),
                    &a.name,
                    &format!("unable to create new content in namespace {ns} because it is being terminated"),
                );
                if let Some(d) = e.details.as_mut() {
                    d["causes"] = json!([{"reason": "NamespaceTerminating", "message": format!("namespace {ns} is being terminated"), "field": "metadata.namespace"}]);
                }
                Err(e)
            }
            Ok(None) => Err(ApiError::not_found(
                &GroupResource::new("", "namespaces"),
                ns,
            )),
            Err(e) => Err(e),
        }
    }
}
