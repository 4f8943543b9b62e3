//! The authentication layer: who sent the request ([`super::Authentication`]). The user goes
//! into the request's extensions; a request nobody authenticates is answered 401.

use std::sync::Arc;

use http::Request;

use super::Authentication;
use crate::body::error_response;
use crate::chain::{BoxFuture, Filter, Next, Req};
use crate::status::ApiError;

/// Puts a [`super::UserInfo`] into every request, or answers 401.
#[derive(Clone)]
pub struct AuthenticationFilter {
    authn: Arc<Authentication>,
    audit: Option<Arc<crate::audit::AuditSink>>,
}

impl AuthenticationFilter {
    /// Authenticate with these authenticators; failures are audited to `audit` (kube's
    /// WithFailedAuthenticationAudit).
    pub fn new(authn: Arc<Authentication>, audit: Option<Arc<crate::audit::AuditSink>>) -> Self {
        AuthenticationFilter { authn, audit }
    }
}

impl Filter for AuthenticationFilter {
    fn call(&self, req: Req, next: &Next) -> BoxFuture {
        let authn = self.authn.clone();
        let audit = self.audit.clone();
        let next = next.clone();
        Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            match authn.authenticate(&parts).await {
                Ok(user) => {
                    parts.extensions.insert(user);
                    next.oneshot(Box::new(Request::from_parts(parts, body)))
                        .await
                }
                Err(e) => {
                    tracing::debug!(uri = %parts.uri, reason = %e.0, "unauthorized");
                    if let Some(sink) = &audit {
                        sink.failed_authentication(&parts).await;
                    }
                    Ok(error_response(&ApiError::unauthorized()))
                }
            }
        })
    }
}
