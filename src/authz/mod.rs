//! Authorization: may this user do this? The chain's authorization layer asks the configured
//! [`Authorizer`] with the request's [`Attributes`]; Allow passes, anything else is 403.
//! The access reviews (`authorization.k8s.io`) ask the same authorizer.

use std::sync::Arc;

use crate::authn::{UserInfo, MASTERS};
use crate::request_info::RequestInfo;
use crate::status::{ApiError, GroupResource};

pub mod escalation;
pub mod layer;
pub mod policy;
pub mod rbac;
pub mod rules;

/// What is being attempted, as Kubernetes' `authorizer.Attributes`.
#[derive(Debug, Clone, Default)]
pub struct Attributes<'a> {
    /// Who.
    pub user: Option<&'a UserInfo>,
    /// get, list, watch, create, update, patch, delete, deletecollection, or a special verb
    /// (impersonate, bind, escalate, use…); for non-resource requests the lower-case HTTP method.
    pub verb: &'a str,
    /// Resource requests: namespace ("" for cluster scope).
    pub namespace: &'a str,
    /// Resource requests: API group ("" = core).
    pub api_group: &'a str,
    /// Resource requests: API version.
    pub api_version: &'a str,
    /// Resource requests: resource (plural).
    pub resource: &'a str,
    /// Resource requests: subresource.
    pub subresource: &'a str,
    /// Resource requests: object name, when the request names one.
    pub name: &'a str,
    /// A resource request (else a non-resource URL).
    pub resource_request: bool,
    /// Non-resource requests: the URL path.
    pub path: &'a str,
}

impl<'a> Attributes<'a> {
    /// The attributes of a parsed request, for `user`.
    pub fn of_request(user: &'a UserInfo, info: &'a RequestInfo) -> Attributes<'a> {
        // A namespace object is in itself, as kube-apiserver's RequestInfo has it: a RoleBinding
        // in `team` granting `get namespaces` lets its subjects read namespace `team`.
        let namespace = if info.resource == "namespaces" && info.namespace.is_empty() {
            &info.name
        } else {
            &info.namespace
        };
        Attributes {
            user: Some(user),
            verb: &info.verb,
            namespace,
            api_group: &info.api_group,
            api_version: &info.api_version,
            resource: &info.resource,
            subresource: &info.subresource,
            name: &info.name,
            resource_request: info.is_resource_request,
            path: &info.path,
        }
    }
}

/// An authorizer's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed (with the reason, for access reviews).
    Allow(String),
    /// Explicitly denied: no later authorizer is asked.
    Deny(String),
    /// No opinion: the next authorizer is asked; if none allows, the request is forbidden.
    NoOpinion(String),
}

impl Decision {
    /// Is this an Allow?
    pub fn allowed(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }
}

/// Decides requests. Implementations answer from memory (no I/O on the request path).
pub trait Authorizer: Send + Sync {
    /// Decide one request.
    fn authorize(&self, attrs: &Attributes<'_>) -> Decision;
}

/// `--authorization-mode=AlwaysAllow`.
#[derive(Debug, Clone, Copy, Default)]
pub struct AlwaysAllow;

impl Authorizer for AlwaysAllow {
    fn authorize(&self, _attrs: &Attributes<'_>) -> Decision {
        Decision::Allow(String::new())
    }
}

/// `--authorization-mode=AlwaysDeny`.
#[derive(Debug, Clone, Copy, Default)]
pub struct AlwaysDeny;

impl Authorizer for AlwaysDeny {
    fn authorize(&self, _attrs: &Attributes<'_>) -> Decision {
        Decision::NoOpinion("Everything is forbidden.".to_string())
    }
}

/// Members of `system:masters` may do anything: asked before the configured modes, as
/// kube-apiserver's privileged-groups authorizer.
#[derive(Debug, Clone, Copy, Default)]
pub struct PrivilegedGroups;

impl Authorizer for PrivilegedGroups {
    fn authorize(&self, attrs: &Attributes<'_>) -> Decision {
        match attrs.user {
            Some(u) if u.in_group(MASTERS) => Decision::Allow(String::new()),
            _ => Decision::NoOpinion(String::new()),
        }
    }
}

/// Authorizers asked in order; the first Allow or Deny decides.
pub struct Union(pub Vec<Arc<dyn Authorizer>>);

impl Authorizer for Union {
    fn authorize(&self, attrs: &Attributes<'_>) -> Decision {
        let mut reasons = Vec::new();
        for a in &self.0 {
            match a.authorize(attrs) {
                Decision::NoOpinion(r) => {
                    if !r.is_empty() {
                        reasons.push(r)
                    }
                }
                decided => return decided,
            }
        }
        Decision::NoOpinion(reasons.join("\n"))
    }
}

/// One entry of `--authorization-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorizationMode {
    /// Every request is allowed.
    AlwaysAllow,
    /// Every request is refused (system:masters still passes).
    AlwaysDeny,
    /// Role-based access control (the default).
    Rbac,
}

impl AuthorizationMode {
    /// kube-apiserver's default: `RBAC`.
    pub fn default_modes() -> Vec<AuthorizationMode> {
        vec![AuthorizationMode::Rbac]
    }

    /// Parse a comma-separated list as kube-apiserver's `--authorization-mode`.
    pub fn parse_list(s: &str) -> Result<Vec<AuthorizationMode>, String> {
        let mut out = Vec::new();
        for m in s.split(',').map(str::trim).filter(|m| !m.is_empty()) {
            let mode = match m {
                "AlwaysAllow" => AuthorizationMode::AlwaysAllow,
                "AlwaysDeny" => AuthorizationMode::AlwaysDeny,
                "RBAC" => AuthorizationMode::Rbac,
                other => {
                    return Err(format!(
                        "authorization-mode {other:?} is not supported (supported: AlwaysAllow, AlwaysDeny, RBAC)"
                    ))
                }
            };
            if out.contains(&mode) {
                return Err(format!(
                    "authorization-mode {m:?} has already been specified"
                ));
            }
            out.push(mode);
        }
        if out.is_empty() {
            return Err("at least one authorization-mode must be passed".to_string());
        }
        Ok(out)
    }
}

/// The server's authorizer: system:masters first, then the modes in order.
pub fn build(modes: &[AuthorizationMode], rbac: Arc<rbac::Rbac>) -> Arc<dyn Authorizer> {
    let mut chain: Vec<Arc<dyn Authorizer>> = vec![Arc::new(PrivilegedGroups)];
    for m in modes {
        chain.push(match m {
            AuthorizationMode::AlwaysAllow => Arc::new(AlwaysAllow),
            AuthorizationMode::AlwaysDeny => Arc::new(AlwaysDeny),
            AuthorizationMode::Rbac => rbac.clone(),
        });
    }
    Arc::new(Union(chain))
}

/// kube-apiserver's `forbiddenMessage`: what `user` may not do.
pub fn forbidden_message(a: &Attributes<'_>) -> String {
    let user = a.user.map(|u| u.username.as_str()).unwrap_or_default();
    if !a.resource_request {
        return format!("User {user:?} cannot {} path {:?}", a.verb, a.path);
    }
    let mut resource = a.resource.to_string();
    if !a.subresource.is_empty() {
        resource = format!("{resource}/{}", a.subresource);
    }
    if a.namespace.is_empty() {
        format!(
            "User {user:?} cannot {} resource {resource:?} in API group {:?} at the cluster scope",
            a.verb, a.api_group
        )
    } else {
        format!(
            "User {user:?} cannot {} resource {resource:?} in API group {:?} in the namespace {:?}",
            a.verb, a.api_group, a.namespace
        )
    }
}

/// The 403 Status for a refused request (reason appended after `: ` when there is one).
pub fn forbidden(a: &Attributes<'_>, reason: &str) -> ApiError {
    let mut why = forbidden_message(a);
    if !reason.is_empty() {
        why = format!("{why}: {reason}");
    }
    if !a.resource_request {
        return ApiError::forbidden(&GroupResource::default(), "", &why);
    }
    ApiError::forbidden(&GroupResource::new(a.api_group, a.resource), a.name, &why)
}
