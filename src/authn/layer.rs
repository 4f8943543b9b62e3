//! The authentication layer: who sent the request ([`super::Authentication`]). The user goes
//! into the request's extensions; a request nobody authenticates is answered 401.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use tower::{Layer, Service, ServiceExt};

use super::Authentication;
use crate::body::{error_response, Body};
use crate::status::ApiError;

type BoxFuture = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

/// Puts a [`super::UserInfo`] into every request, or answers 401.
#[derive(Clone)]
pub struct AuthenticationLayer {
    authn: Arc<Authentication>,
}

impl AuthenticationLayer {
    /// Authenticate with these authenticators.
    pub fn new(authn: Arc<Authentication>) -> Self {
        AuthenticationLayer { authn }
    }
}

impl<S> Layer<S> for AuthenticationLayer {
    type Service = AuthenticationService<S>;
    fn layer(&self, inner: S) -> AuthenticationService<S> {
        AuthenticationService {
            inner,
            authn: self.authn.clone(),
        }
    }
}

/// See [`AuthenticationLayer`].
#[derive(Clone)]
pub struct AuthenticationService<S> {
    inner: S,
    authn: Arc<Authentication>,
}

impl<S> Service<Request<Bytes>> for AuthenticationService<S>
where
    S: Service<Request<Bytes>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Bytes>) -> BoxFuture {
        let inner = self.inner.clone();
        let authn = self.authn.clone();
        Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            match authn.authenticate(&parts).await {
                Ok(user) => {
                    parts.extensions.insert(user);
                    inner.oneshot(Request::from_parts(parts, body)).await
                }
                Err(e) => {
                    tracing::debug!(uri = %parts.uri, reason = %e.0, "unauthorized");
                    Ok(error_response(&ApiError::unauthorized()))
                }
            }
        })
    }
}
