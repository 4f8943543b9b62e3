//! The authorization filter: ask the server's [`Authorizer`] about the request's user and
//! [`RequestInfo`]; Allow passes to the router, anything else is a 403 Status shaped as
//! kube-apiserver's (`pods "x" is forbidden: User "jane" cannot get resource "pods" …`).
//!
//! The user comes from the request's extensions (put there by authentication); a request
//! without one is an in-process request and runs as [`UserInfo::loopback`].

use std::sync::Arc;

use super::{forbidden, Attributes, Authorizer, Decision};
use crate::authn::UserInfo;
use crate::body::error_response;
use crate::chain::{BoxFuture, Filter, Next, Req};
use crate::request_info::RequestInfo;

/// Authorize every request with `authorizer`.
#[derive(Clone)]
pub struct AuthorizationFilter {
    authorizer: Arc<dyn Authorizer>,
}

impl AuthorizationFilter {
    /// A filter asking `authorizer`.
    pub fn new(authorizer: Arc<dyn Authorizer>) -> Self {
        AuthorizationFilter { authorizer }
    }
}

impl Filter for AuthorizationFilter {
    fn call(&self, mut req: Req, next: &Next) -> BoxFuture {
        if req.extensions().get::<UserInfo>().is_none() {
            req.extensions_mut().insert(UserInfo::loopback());
        }
        let refused = {
            let ext = req.extensions();
            // The request-info layer runs first; parse here only if it did not (fail closed).
            let parsed;
            let info: &RequestInfo = match ext.get::<Arc<RequestInfo>>() {
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
            None => next.oneshot(req),
        }
    }
}
