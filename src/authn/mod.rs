//! Authentication: who is asking. The chain's authentication layer puts a [`UserInfo`] into
//! every request's extensions (or answers 401); everything after it (impersonation,
//! authorization, admission, audit) reads the user from there.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The user of anonymous requests.
pub const ANONYMOUS: &str = "system:anonymous";
/// The group of every authenticated user.
pub const AUTHENTICATED: &str = "system:authenticated";
/// The group of anonymous requests.
pub const UNAUTHENTICATED: &str = "system:unauthenticated";
/// The superuser group: always allowed.
pub const MASTERS: &str = "system:masters";
/// The group of every ServiceAccount.
pub const SERVICE_ACCOUNTS: &str = "system:serviceaccounts";

/// An authenticated identity, shaped as Kubernetes' `user.Info` (and `authentication.k8s.io`
/// `UserInfo` on the wire).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    /// The user name (`system:serviceaccount:ns:name` for ServiceAccounts).
    #[serde(default)]
    pub username: String,
    /// A unique id, when the authenticator knows one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// Group memberships.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Further attributes (scopes, the bound pod, the credential id…).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// The identity of anonymous requests.
    pub fn anonymous() -> UserInfo {
        UserInfo {
            username: ANONYMOUS.to_string(),
            groups: vec![UNAUTHENTICATED.to_string()],
            ..Default::default()
        }
    }

    /// The privileged identity of in-process requests that carry no credentials
    /// ([`crate::ServerHandle::service`]), like kube-apiserver's loopback client.
    pub fn loopback() -> UserInfo {
        UserInfo {
            username: "system:apiserver".to_string(),
            groups: vec![MASTERS.to_string(), AUTHENTICATED.to_string()],
            ..Default::default()
        }
    }

    /// Is this user in `group`?
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}
