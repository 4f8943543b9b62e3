//! The resources that add to the generic store ([`Hooks`]), as kube-apiserver's per-resource
//! storage does: Services allocate cluster IPs and node ports, RBAC objects are checked against
//! their author's rights and wait for the RBAC index, CRDs wait for their controller, namespaces
//! are deleted by turning Terminating.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::spec::{HooksKind, KindSpec};
use super::store::{self, DeleteOptions, Hooks, NoHooks, Scope};
use crate::objects;
use crate::status::ApiResult;

/// The hooks a built-in kind's spec names (resources without a spec have none).
pub fn for_spec(spec: Option<&KindSpec>) -> Arc<dyn Hooks> {
    match spec.map(|s| s.hooks) {
        Some(HooksKind::Services) => Arc::new(Services),
        Some(HooksKind::Namespaces) => Arc::new(Namespaces),
        Some(HooksKind::Crds) => Arc::new(Crds),
        Some(HooksKind::Rbac) => Arc::new(Rbac),
        Some(HooksKind::Csrs) => Arc::new(Csrs),
        Some(HooksKind::Pods) => Arc::new(Pods),
        Some(HooksKind::None) | None => Arc::new(NoHooks),
    }
}

/// CertificateSigningRequests: kube's PrepareForCreate replaces whatever the client set in
/// `spec.username`, `uid`, `groups` and `extra` by the requesting user (after impersonation),
/// and a new request has no conditions (it cannot be created approved).
struct Csrs;

#[async_trait]
impl Hooks for Csrs {
    fn prepare_for_create(&self, scope: &Scope, obj: &mut Value) {
        let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
            return;
        };
        for k in ["username", "uid", "groups", "extra"] {
            spec.remove(k);
        }
        let user = &scope.user;
        if !user.username.is_empty() {
            spec.insert("username".into(), json!(user.username));
        }
        if !user.uid.is_empty() {
            spec.insert("uid".into(), json!(user.uid));
        }
        if !user.groups.is_empty() {
            spec.insert("groups".into(), json!(user.groups));
        }
        if !user.extra.is_empty() {
            spec.insert("extra".into(), json!(user.extra));
        }
        obj["status"] = json!({});
    }
}

/// Services: a cluster IP and node ports on create.
struct Services;

#[async_trait]
impl Hooks for Services {
    async fn before_create(&self, scope: &Scope, obj: &mut Value, dry_run: bool) -> ApiResult<()> {
        crate::allocators::on_create(scope, obj, dry_run).await
    }
}

/// RBAC objects: escalation prevention; writes return once the authorizer's index has them,
/// so the next request is decided with them.
struct Rbac;

#[async_trait]
impl Hooks for Rbac {
    fn authorize_write(&self, scope: &Scope, new: &Value, old: Option<&Value>) -> ApiResult<()> {
        crate::authz::escalation::check(scope, new, old)
    }

    async fn after_write(&self, scope: &Scope, rev: i64) {
        if !crate::authz::rbac::inside_index() {
            scope.state.rbac.wait_for(&scope.info.resource, rev).await;
        }
    }
}

/// CRDs: writes return once the CRD controller has seen them, so the API they define is served
/// (or gone) when the client gets its answer.
struct Crds;

#[async_trait]
impl Hooks for Crds {
    async fn after_write(&self, scope: &Scope, rev: i64) {
        scope.state.crds.wait_for(rev).await;
    }

    async fn gone_after_marking(&self, _scope: &Scope) -> bool {
        true
    }
}

/// Namespaces (kube's namespace REST): the first delete turns the namespace Terminating (the
/// namespace controller empties and finalizes it); later ones wait while spec.finalizers remain.
struct Namespaces;

#[async_trait]
impl Hooks for Namespaces {
    fn held_by_spec(&self, obj: &Value) -> bool {
        obj["spec"]["finalizers"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    }

    async fn delete(
        &self,
        scope: &Scope,
        mut obj: Value,
        rev: i64,
        opts: &DeleteOptions,
    ) -> Option<ApiResult<(Value, bool)>> {
        let deleting = store::is_deleting(&obj);
        if deleting && !self.held_by_spec(&obj) {
            // Only metadata.finalizers remain: the generic deletion.
            return None;
        }
        if deleting {
            return Some(Ok((obj, false)));
        }
        obj["metadata"]["deletionTimestamp"] = json!(objects::timestamp(scope.state.clock.now()));
        obj["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        obj["status"]["phase"] = json!("Terminating");
        if let Some(f) = super::gc_finalizers::namespace_deletion_finalizers(
            scope.state.garbage_collection,
            &obj,
            opts,
        ) {
            obj["metadata"]["finalizers"] = json!(f);
        }
        Some(
            store::write_marked(scope, obj, rev, opts.dry_run)
                .await
                .map(|o| (o, false)),
        )
    }
}

/// Pods (kube's pod strategy, CheckGracefulDelete): while simulated kubelets run, a pod bound
/// to a node and not finished is deleted gracefully — it gets a deletionTimestamp
/// `gracePeriodSeconds` ahead (the request's, else `spec.terminationGracePeriodSeconds`, else
/// 30) and stays Terminating until its kubelet deletes it. A later delete may only shorten the
/// period; a period of 0 deletes at once. Unbound and finished pods go at once, as without
/// kubelets.
struct Pods;

#[async_trait]
impl Hooks for Pods {
    async fn delete(
        &self,
        scope: &Scope,
        mut obj: Value,
        rev: i64,
        opts: &DeleteOptions,
    ) -> Option<ApiResult<(Value, bool)>> {
        if !scope.state.kubelets {
            return None;
        }
        let bound = obj["spec"]["nodeName"]
            .as_str()
            .is_some_and(|n| !n.is_empty());
        let finished = matches!(
            obj["status"]["phase"].as_str(),
            Some("Succeeded" | "Failed")
        );
        let grace = opts
            .grace_period_seconds
            .or_else(|| obj["spec"]["terminationGracePeriodSeconds"].as_i64())
            .unwrap_or(30);
        if store::is_deleting(&obj) {
            let current = obj["metadata"]["deletionGracePeriodSeconds"]
                .as_i64()
                .unwrap_or(0);
            if grace >= current {
                return Some(Ok((obj, false)));
            }
            let held = obj["metadata"]["finalizers"]
                .as_array()
                .is_some_and(|f| !f.is_empty());
            if grace <= 0 && !held {
                return None;
            }
        } else if !bound || finished || grace <= 0 {
            return None;
        }
        let now = scope.state.clock.now();
        let grace = grace.max(0);
        let at = now
            .checked_add(std::time::Duration::from_secs(grace.unsigned_abs()))
            .unwrap_or(now);
        obj["metadata"]["deletionTimestamp"] = json!(objects::timestamp(at));
        obj["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
        if let Some(f) = super::gc_finalizers::deletion_finalizers(
            scope.state.garbage_collection,
            &scope.info,
            &obj,
            opts,
        ) {
            obj["metadata"]["finalizers"] = json!(f);
        }
        Some(
            store::write_marked(scope, obj, rev, opts.dry_run)
                .await
                .map(|o| (o, false)),
        )
    }
}
