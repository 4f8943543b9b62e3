//! The authorization filter: ask the server's [`Authorizer`] about the request's user and
//! [`RequestInfo`]; Allow passes to the router, anything else is a 403 Status shaped as
//! kube-apiserver's (`pods "x" is forbidden: User "jane" cannot get resource "pods" …`).
//!
//! The user comes from the request's extensions (put there by authentication); a request
//! without one is an in-process request and runs as [`UserInfo::loopback`].

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use tower::{Layer, Service};

use super::{forbidden, Attributes, Authorizer, Decision};
use crate::authn::UserInfo;
use crate::body::{error_response, Body};
use crate::request_info::RequestInfo;

/// Authorize every request with `authorizer`.
#[derive(Clone)]
pub struct AuthorizationLayer {
    authorizer: Arc<dyn Authorizer>,
}

impl AuthorizationLayer {
    /// A layer asking `authorizer`.
    pub fn new(authorizer: Arc<dyn Authorizer>) -> Self {
        AuthorizationLayer { authorizer }
    }
}

impl<S> Layer<S> for AuthorizationLayer {
    type Service = Authorization<S>;
    fn layer(&self, inner: S) -> Authorization<S> {
        Authorization {
            inner,
            authorizer: self.authorizer.clone(),
        }
    }
}

/// The service [`AuthorizationLayer`] wraps around the router.
#[derive(Clone)]
pub struct Authorization<S> {
    inner: S,
    authorizer: Arc<dyn Authorizer>,
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

impl<S> Service<Request<Bytes>> for Authorization<S>
where
    S: Service<Request<Bytes>, Response = Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<Bytes>) -> BoxFuture {
        if req.extensions().get::<UserInfo>().is_none() {
            req.extensions_mut().insert(UserInfo::loopback());
        }
        let refused = {
            let ext = req.extensions();
            // The request-info layer runs first; parse here only if it did not (fail closed).
            let parsed;
            let info = match ext.get::<RequestInfo>() {
                Some(info) => info,
                None => {
                    parsed = RequestInfo::parse(
                        req.method(),
                        req.uri().path(),
                        req.uri().query().unwrap_or_default(),
                    );
                    &parsed
                }
            };
            match ext.get::<UserInfo>() {
                Some(user) => {
                    let attrs = Attributes::of_request(user, info);
                    match self.authorizer.authorize(&attrs) {
                        Decision::Allow(_) => None,
                        Decision::Deny(reason) | Decision::NoOpinion(reason) => {
                            Some(forbidden(&attrs, &reason))
                        }
                    }
                }
                None => None,
            }
        };
        match refused {
            Some(err) => Box::pin(async move { Ok(error_response(&err)) }),
            None => Box::pin(self.inner.call(req)),
        }
    }
}
