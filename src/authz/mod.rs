//! Authorization: may this user do this? The chain's authorization layer asks the configured
//! [`Authorizer`] with the request's [`Attributes`]; Allow passes, anything else is 403.
//! The access reviews (`authorization.k8s.io`) ask the same authorizer.

use crate::authn::UserInfo;
use crate::request_info::RequestInfo;

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
        Attributes {
            user: Some(user),
            verb: &info.verb,
            namespace: &info.namespace,
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
