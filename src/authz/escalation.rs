//! Privilege escalation prevention on RBAC writes, as kube-apiserver's policy-based RBAC
//! storage: a Role or ClusterRole may only be written with rules its author already holds
//! (unless the author may `escalate` roles), and a RoleBinding or ClusterRoleBinding may only
//! reference a role whose rules its author holds (unless the author may `bind` that role).
//! Members of system:masters are exempt. Refusals are 403 with kube-apiserver's message.

use serde_json::Value;

use super::rbac::GROUP;
use super::rules::{go_quoted, missing, PolicyRule};
use super::Attributes;
use crate::authn::MASTERS;
use crate::registry::store::Scope;
use crate::status::{ApiError, ApiResult, GroupResource};

fn rules(obj: &Value) -> Vec<PolicyRule> {
    serde_json::from_value(obj["rules"].clone()).unwrap_or_default()
}

fn has_aggregation(obj: &Value) -> bool {
    obj.get("aggregationRule").is_some_and(|a| !a.is_null())
}

/// Refuse a create (`old` None) or update of an RBAC object that would grant more than its
/// author holds.
pub fn check(ctx: &Scope, new: &Value, old: Option<&Value>) -> ApiResult<()> {
    if ctx.info.group != GROUP || ctx.user.in_group(MASTERS) {
        return Ok(());
    }
    let resource = ctx.info.resource.as_str();
    let namespace = new["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = new["metadata"]["name"].as_str().unwrap_or_default();
    let gr = GroupResource::new(GROUP, resource);
    let allowed = |verb: &str, resource: &str, name: &str| {
        let attrs = Attributes {
            user: Some(&ctx.user),
            verb,
            namespace,
            api_group: GROUP,
            api_version: "*",
            resource,
            name,
            resource_request: true,
            ..Default::default()
        };
        ctx.state.authorizer.authorize(&attrs).allowed()
    };
    let wanted = match resource {
        "roles" | "clusterroles" => {
            let unchanged = old.is_some_and(|o| {
                rules(o) == rules(new) && o.get("aggregationRule") == new.get("aggregationRule")
            });
            if unchanged || allowed("escalate", resource, name) {
                return Ok(());
            }
            if has_aggregation(new) {
                let everything = [
                    PolicyRule::new(&["*"], &["*"], &["*"]),
                    PolicyRule::urls(&["*"], &["*"]),
                ];
                if !missing(&ctx.state.rbac.rules_for(&ctx.user, namespace), &everything).is_empty()
                {
                    return Err(ApiError::forbidden(
                        &gr,
                        name,
                        "must have cluster-admin privileges to use the aggregationRule",
                    ));
                }
            }
            rules(new)
        }
        "rolebindings" | "clusterrolebindings" => {
            if old.is_some_and(|o| o["roleRef"] == new["roleRef"]) {
                return Ok(());
            }
            let role_ref = &new["roleRef"];
            let role_name = role_ref["name"].as_str().unwrap_or_default();
            let cluster = role_ref["kind"].as_str() == Some("ClusterRole");
            let role_resource = if cluster { "clusterroles" } else { "roles" };
            if allowed("bind", role_resource, role_name) {
                return Ok(());
            }
            match ctx.state.rbac.role_rules(cluster, namespace, role_name) {
                Some(r) => r,
                None => {
                    return Err(ApiError::not_found(
                        &GroupResource::new(GROUP, role_resource),
                        role_name,
                    ))
                }
            }
        }
        _ => return Ok(()),
    };
    let lacking = missing(&ctx.state.rbac.rules_for(&ctx.user, namespace), &wanted);
    if lacking.is_empty() {
        return Ok(());
    }
    let mut described: Vec<String> = lacking.iter().map(PolicyRule::compact_string).collect();
    described.sort();
    described.dedup();
    Err(ApiError::forbidden(
        &gr,
        name,
        &format!(
            "user {:?} (groups={}) is attempting to grant RBAC permissions not currently held:\n{}",
            ctx.user.username,
            go_quoted(&ctx.user.groups),
            described.join("\n")
        ),
    ))
}
