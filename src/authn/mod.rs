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

pub mod impersonation;
pub mod layer;
pub mod serviceaccount;
pub mod token_file;
pub mod x509;

use std::net::SocketAddr;
use std::sync::Arc;

use rustls_pki_types::CertificateDer;

/// The prefix of ServiceAccount user names (`system:serviceaccount:<ns>:<name>`).
pub const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";

/// The group of the ServiceAccounts of one namespace.
pub fn service_account_namespace_group(namespace: &str) -> String {
    format!("{SERVICE_ACCOUNTS}:{namespace}")
}

/// The marker the accept loop puts on every request that came over the network. A request
/// without it was sent in process ([`crate::ServerHandle::service`]).
#[derive(Debug, Clone)]
pub struct Peer {
    /// The client's address.
    pub addr: SocketAddr,
    /// The certificate chain the client presented in the TLS handshake, if any.
    pub client_cert: Option<Arc<PeerCertificate>>,
}

/// A client certificate chain and whether it verified against the client CA.
#[derive(Debug)]
pub struct PeerCertificate {
    /// End entity first.
    pub chain: Vec<CertificateDer<'static>>,
    /// Ok when the chain leads to the client CA and is valid now; else why not.
    pub verified: Result<(), String>,
    /// The user the end entity names, read once per connection (x509.rs).
    pub user: std::sync::OnceLock<Result<UserInfo, Unauthorized>>,
}

/// Authentication failed: the request is answered 401 (the message is only logged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unauthorized(pub String);

/// One way to authenticate a request (client certificate, bearer token…).
#[async_trait::async_trait]
pub trait Authenticator: Send + Sync {
    /// `Ok(None)`: this authenticator has no opinion (no credential of its kind).
    async fn authenticate(
        &self,
        parts: &http::request::Parts,
    ) -> Result<Option<UserInfo>, Unauthorized>;
}

/// What a token authenticator found: the user, and the audiences the token is valid for.
#[derive(Debug, Clone)]
pub struct TokenResponse {
    /// Who the token stands for.
    pub user: UserInfo,
    /// The audiences (of those asked for) the token was accepted for.
    pub audiences: Vec<String>,
}

/// One way to authenticate a bearer token (static token file, ServiceAccount JWTs).
#[async_trait::async_trait]
pub trait TokenAuthenticator: Send + Sync {
    /// `Ok(None)`: not a token of this kind. `audiences`: what the token must be meant for.
    async fn authenticate_token(
        &self,
        token: &str,
        audiences: &[String],
    ) -> Result<Option<TokenResponse>, Unauthorized>;
}

/// The request authenticators in kube-apiserver's order, then anonymous.
pub struct Authentication {
    /// Client certificates, then bearer tokens.
    pub request: Vec<Arc<dyn Authenticator>>,
    /// The bearer token authenticators (also used by TokenReview).
    pub tokens: Arc<TokenUnion>,
    /// Are requests without credentials allowed in as `system:anonymous`?
    pub anonymous: bool,
    /// The audiences a token must be meant for to authenticate to this server.
    pub api_audiences: Vec<String>,
    /// Signs (and checks) ServiceAccount tokens.
    pub service_accounts: Arc<serviceaccount::Tokens>,
}

impl Authentication {
    /// Who sent this request? Credentials are tried in order; the first that authenticates
    /// wins. A request with a credential nobody accepts is Unauthorized. Without credentials:
    /// in process → the `UserInfo` the caller put into the request's extensions, else
    /// [`UserInfo::loopback`]; over the network → anonymous if enabled.
    pub async fn authenticate(
        &self,
        parts: &http::request::Parts,
    ) -> Result<UserInfo, Unauthorized> {
        let mut errors = Vec::new();
        for a in &self.request {
            match a.authenticate(parts).await {
                Ok(Some(user)) => return Ok(with_authenticated_group(user)),
                Ok(None) => {}
                Err(e) => errors.push(e.0),
            }
        }
        if !errors.is_empty() {
            return Err(Unauthorized(errors.join(", ")));
        }
        if parts.extensions.get::<Peer>().is_none() {
            // In process: the caller may act as a user of its choosing (it could as well read
            // the store directly); otherwise it is the privileged loopback client.
            return Ok(parts
                .extensions
                .get::<UserInfo>()
                .cloned()
                .unwrap_or_else(UserInfo::loopback));
        }
        if self.anonymous {
            return Ok(UserInfo::anonymous());
        }
        Err(Unauthorized("no credentials".to_string()))
    }
}

/// Every authenticated user is in `system:authenticated` (kube-apiserver's group adder).
pub fn with_authenticated_group(mut user: UserInfo) -> UserInfo {
    if user.username != ANONYMOUS && !user.in_group(AUTHENTICATED) {
        user.groups.push(AUTHENTICATED.to_string());
    }
    user
}

/// Token authenticators tried in order.
#[derive(Default)]
pub struct TokenUnion {
    /// In order.
    pub authenticators: Vec<Arc<dyn TokenAuthenticator>>,
}

impl TokenUnion {
    /// The first authenticator that accepts the token wins; if none does, the token is invalid.
    pub async fn authenticate(
        &self,
        token: &str,
        audiences: &[String],
    ) -> Result<TokenResponse, Unauthorized> {
        let mut errors = Vec::new();
        for a in &self.authenticators {
            match a.authenticate_token(token, audiences).await {
                Ok(Some(mut r)) => {
                    r.user = with_authenticated_group(r.user);
                    return Ok(r);
                }
                Ok(None) => {}
                Err(e) => errors.push(e.0),
            }
        }
        if errors.is_empty() {
            return Err(Unauthorized("invalid bearer token".to_string()));
        }
        Err(Unauthorized(errors.join(", ")))
    }
}

/// Bearer tokens (`Authorization: Bearer …`) through the token authenticators.
pub struct BearerToken {
    /// The token authenticators.
    pub tokens: Arc<TokenUnion>,
    /// The audiences a token must be meant for.
    pub audiences: Vec<String>,
}

#[async_trait::async_trait]
impl Authenticator for BearerToken {
    async fn authenticate(
        &self,
        parts: &http::request::Parts,
    ) -> Result<Option<UserInfo>, Unauthorized> {
        let Some(value) = parts.headers.get(http::header::AUTHORIZATION) else {
            return Ok(None);
        };
        let value = value.to_str().unwrap_or_default().trim();
        let Some((scheme, token)) = value.split_once(' ') else {
            return Ok(None);
        };
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Ok(None);
        }
        let token = token.trim();
        if token.is_empty() {
            return Ok(None);
        }
        self.tokens
            .authenticate(token, &self.audiences)
            .await
            .map(|r| Some(r.user))
    }
}
