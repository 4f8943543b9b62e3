//! Client certificates: the chain verified against the client CA during the connection's
//! setup (see `tls.rs`); the subject's CN is the user name, each O a group.

use x509_parser::prelude::{FromDer, X509Certificate};

use super::{Authenticator, Peer, Unauthorized, UserInfo};

/// Authenticates the verified client certificate of the request's connection.
#[derive(Debug, Default)]
pub struct ClientCert;

#[async_trait::async_trait]
impl Authenticator for ClientCert {
    async fn authenticate(
        &self,
        parts: &http::request::Parts,
    ) -> Result<Option<UserInfo>, Unauthorized> {
        let Some(cert) = parts
            .extensions
            .get::<Peer>()
            .and_then(|p| p.client_cert.as_ref())
        else {
            return Ok(None);
        };
        let Some(end) = cert.chain.first() else {
            return Ok(None);
        };
        if let Err(e) = &cert.verified {
            return Err(Unauthorized(format!("verifying certificate failed: {e}")));
        }
        // Parsed once per connection: its requests all present the same certificate. Kept
        // with `system:authenticated` already added, so a request's copy is not grown again.
        cert.user
            .get_or_init(|| user_of(end.as_ref()).map(super::with_authenticated_group))
            .clone()
            .map(Some)
    }
}

/// CN → user name, O → groups (kube-apiserver's `CommonNameUserConversion`).
pub fn user_of(der: &[u8]) -> Result<UserInfo, Unauthorized> {
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| Unauthorized(format!("unreadable client certificate: {e}")))?;
    let subject = cert.subject();
    let username = subject
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or_default()
        .to_string();
    if username.is_empty() {
        return Err(Unauthorized(
            "common name of client certificate is empty".to_string(),
        ));
    }
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok())
        .map(str::to_string)
        .collect();
    Ok(UserInfo {
        username,
        groups,
        ..Default::default()
    })
}
