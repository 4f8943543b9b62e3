//! The handler chain: every cross-cutting filter a [`Filter`] (one tower layer each, through
//! [`filter`]), built in ONE function.
//!
//! Order (outermost first): catch-panic → trace → request-info → request deadline → authentication
//! (`authn/layer.rs`) → audit (`audit.rs`, logs the authenticated user) → impersonation
//! (`authn/impersonation.rs`) → max-in-flight (knows the user: `system:masters` is exempt) →
//! authorization (`authz/layer.rs`) → router, as in kube-apiserver. The top service is
//! infallible: every failure is a response.

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::FutureExt;
use http::{Request, Response};
use tokio::sync::Semaphore;
use tower::util::BoxCloneSyncService;
use tower::Service;

use crate::api::{route, ApiState};
use crate::audit::AuditFilter;
use crate::authn::impersonation::ImpersonationFilter;
use crate::authn::layer::AuthenticationFilter;
use crate::authz::layer::AuthorizationFilter;
use crate::body::{error_response, Body};
use crate::request_info::RequestInfo;
use crate::status::ApiError;

/// The whole API as one service over fully-read requests.
pub type ApiService = BoxCloneSyncService<Request<Bytes>, Response<Body>, Infallible>;

/// A request as it passes through the chain: boxed once, so each step hands on a pointer
/// instead of copying the request (a few hundred bytes) into the next step's frame.
pub type Req = Box<Request<Bytes>>;

/// What a [`Filter`] answers with.
pub type BoxFuture = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

/// Limits on concurrent requests (kube-apiserver's --max-requests-inflight defaults).
#[derive(Debug, Clone, Copy)]
pub struct InFlightLimits {
    /// Read-only requests at once (watches are long-running and exempt).
    pub readonly: usize,
    /// Mutating requests at once.
    pub mutating: usize,
}

impl Default for InFlightLimits {
    fn default() -> Self {
        InFlightLimits {
            readonly: 400,
            mutating: 200,
        }
    }
}

/// Build the chain around the router; `request_timeout` bounds a request that is not
/// long-running (kube-apiserver's `--request-timeout`, what `?timeout=` may shorten).
pub fn build(
    state: Arc<ApiState>,
    limits: InFlightLimits,
    request_timeout: std::time::Duration,
) -> Chain {
    let authentication =
        AuthenticationFilter::new(state.authentication.clone(), state.audit.clone());
    let impersonation = ImpersonationFilter::new(state.backend.authorizer.clone());
    let authorizer = state.backend.authorizer.clone();
    let audit = state.audit.clone();
    let metrics = state.metrics.clone();
    let recorder = state
        .recording
        .then(|| crate::recorder::RecorderFilter::new(state.recorder.clone()));
    let faults = crate::faults::FaultFilter::new(state.faults.clone());
    let cut = crate::faults::CutConnections::new(state.faults.clone());
    let router = Next(Arc::new(Router(state)));
    // Outermost first, as kube-apiserver's handler chain.
    let steps: Vec<Box<dyn Wrap>> = vec![
        Box::new(crate::audit::AuditInit),
        Box::new(CatchPanic),
        Box::new(Trace),
        Box::new(RequestInfoFilter),
        Box::new(cut),
        Box::new(crate::encoding::JsonFraming),
        Box::new(crate::metrics::MetricsFilter {
            metrics: metrics.clone(),
        }),
        Box::new(RequestDeadline {
            max: request_timeout,
        }),
        Box::new(authentication),
        Box::new(crate::conn::ReadBody),
        Box::new(AuditFilter::new(audit)),
        Box::new(impersonation),
    ];
    let rest: Vec<Box<dyn Wrap>> = vec![
        Box::new(faults),
        Box::new(MaxInFlight::new(limits)),
        Box::new(AuthorizationFilter::new(authorizer)),
    ];
    let recorder = recorder.map(|r| Box::new(r) as Box<dyn Wrap>);
    let top = steps
        .into_iter()
        .chain(recorder)
        .chain(rest)
        .rev()
        .fold(router, |next, step| step.wrap(next));
    Chain(top)
}

/// The rest of the chain, as a [`Filter`] sees it: shared, so passing it on costs one
/// reference count, whatever the chain's length.
#[derive(Clone)]
pub struct Next(Arc<dyn Step>);

impl Next {
    /// Hand the request to the rest of the chain.
    pub fn oneshot(&self, req: Req) -> BoxFuture {
        self.0.call(req)
    }
}

/// One link of the chain: a filter with the rest behind it, or the router.
trait Step: Send + Sync {
    fn call(&self, req: Req) -> BoxFuture;
}

/// Puts a filter in front of the rest of the chain.
trait Wrap {
    fn wrap(self: Box<Self>, next: Next) -> Next;
}

impl<F: Filter> Wrap for F {
    fn wrap(self: Box<Self>, next: Next) -> Next {
        Next(Arc::new(FilterStep {
            filter: *self,
            next,
        }))
    }
}

struct FilterStep<F> {
    filter: F,
    next: Next,
}

impl<F: Filter> Step for FilterStep<F> {
    fn call(&self, req: Req) -> BoxFuture {
        self.filter.call(req, &self.next)
    }
}

/// The end of the chain: the router.
struct Router(Arc<ApiState>);

impl Step for Router {
    fn call(&self, req: Req) -> BoxFuture {
        // A combinator, not an `async` block: a future awaited in a block is held twice (the
        // captured value and the one awaited), and copied whole each time the block moves.
        Box::pin(route(self.0.clone(), *req).map(Ok))
    }
}

/// The whole chain: a tower service ([`Chain::service`]), or called by reference
/// ([`Chain::handle`]) where a connection serves request after request.
#[derive(Clone)]
pub struct Chain(Next);

impl Chain {
    /// Handle one request (no clone of the chain, unlike a tower service's `oneshot`).
    pub fn handle(&self, req: Request<Bytes>) -> BoxFuture {
        self.0.oneshot(Box::new(req))
    }

    /// The chain as a boxed tower service.
    pub fn service(&self) -> ApiService {
        BoxCloneSyncService::new(self.clone())
    }
}

impl Service<Request<Bytes>> for Chain {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Bytes>) -> BoxFuture {
        self.handle(req)
    }
}

/// One cross-cutting step of the chain: it sees the request and either answers it or passes it
/// on to `next` (usually with `next.oneshot(req)`). Every filter of the chain is one of these, so
/// each file holds only its logic; [`build`] puts them in order.
pub trait Filter: Send + Sync + 'static {
    /// Handle `req`.
    fn call(&self, req: Req, next: &Next) -> BoxFuture;
}

/// A panic while handling one request becomes a 500 Status; the server keeps running.
#[derive(Clone, Copy)]
struct CatchPanic;

impl Filter for CatchPanic {
    fn call(&self, req: Req, next: &Next) -> BoxFuture {
        // The later steps run their first part right here, before any future is polled: a
        // panic there is caught too.
        let answer = match std::panic::catch_unwind(AssertUnwindSafe(|| next.oneshot(req))) {
            Ok(answer) => answer,
            Err(panic) => return Box::pin(std::future::ready(Ok(panic_response(&*panic)))),
        };
        Box::pin(async move {
            match AssertUnwindSafe(answer).catch_unwind().await {
                Ok(r) => r,
                Err(panic) => Ok(panic_response(&*panic)),
            }
        })
    }
}

/// The 500 Status a caught panic is answered with.
fn panic_response(panic: &(dyn std::any::Any + Send)) -> Response<Body> {
    let msg = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_string());
    error_response(&ApiError::internal(format!(
        "a panic occurred while handling the request: {msg}"
    )))
}

/// One debug line per request with its status and duration.
#[derive(Clone, Copy)]
struct Trace;

impl Filter for Trace {
    fn call(&self, req: Req, next: &Next) -> BoxFuture {
        if !tracing::enabled!(tracing::Level::DEBUG) {
            return next.oneshot(req);
        }
        let method = req.method().clone();
        let uri = req.uri().clone();
        let start = std::time::Instant::now();
        let answer = next.oneshot(req);
        Box::pin(async move {
            let resp = answer.await?;
            tracing::debug!(%method, %uri, status = resp.status().as_u16(), elapsed_us = start.elapsed().as_micros() as u64, "request");
            Ok(resp)
        })
    }
}

/// Parse the request line once into a [`RequestInfo`] extension.
#[derive(Clone, Copy)]
struct RequestInfoFilter;

impl Filter for RequestInfoFilter {
    fn call(&self, mut req: Req, next: &Next) -> BoxFuture {
        let info = RequestInfo::parse(
            req.method(),
            req.uri().path(),
            req.uri().query().unwrap_or_default(),
        );
        let apart = runs_long(&info);
        // Shared: every later step reads it without a copy of its strings.
        req.extensions_mut().insert(Arc::new(info));
        let answer = next.oneshot(req);
        if !apart {
            return answer;
        }
        // Not in an h2 connection's task: the streams sharing it would wait (`repoll`).
        Box::pin(async move {
            crate::repoll::apart_from_connection().await;
            answer.await
        })
    }
}

/// A request whose work may take long (a list, a collection's deletion, the long-running
/// ones but watches): it does not run in its connection's task. A watch's events are each
/// little work, and the events of one update to the watchers sharing an h2 connection go out
/// together when they are made in its task; a watch that starts with the collection's objects
/// asks for a task of its own itself (`watch`).
fn runs_long(info: &RequestInfo) -> bool {
    matches!(info.verb.as_str(), "list" | "deletecollection")
        || (is_long_running(info) && info.verb != "watch")
}

/// kube-apiserver's long-running requests: watches, proxies, and the streaming subresources.
/// A write (kube's max-in-flight and metrics count writes apart from reads).
pub(crate) fn is_mutating(info: &RequestInfo) -> bool {
    matches!(
        info.verb.as_str(),
        "create" | "update" | "patch" | "delete" | "deletecollection"
    )
}

pub(crate) fn is_long_running(info: &RequestInfo) -> bool {
    matches!(info.verb.as_str(), "watch" | "proxy")
        || matches!(
            info.subresource.as_str(),
            "attach" | "exec" | "proxy" | "log" | "portforward"
        )
}

/// When a request arrived (its head read), put in by the connection layer: the request
/// deadline counts from it, so reading the body is part of the time allowed. A request without
/// it (in process) counts from when the chain sees it.
#[derive(Debug, Clone, Copy)]
pub struct Received(pub tokio::time::Instant);

/// kube-apiserver's request deadline: a request that is not long-running is answered within
/// `?timeout=` (a Go duration; 0, negative or beyond the maximum means the maximum) or the
/// maximum, else `504 Timeout`; a malformed `timeout` is a 400.
#[derive(Clone, Copy)]
struct RequestDeadline {
    max: std::time::Duration,
}

impl Filter for RequestDeadline {
    fn call(&self, req: Req, next: &Next) -> BoxFuture {
        let long_running = req
            .extensions()
            .get::<Arc<RequestInfo>>()
            .is_some_and(|i| is_long_running(i));
        if long_running {
            return next.oneshot(req);
        }
        let asked =
            crate::request_info::query_param(req.uri().query().unwrap_or_default(), "timeout")
                .filter(|v| !v.is_empty());
        let started = req
            .extensions()
            .get::<Received>()
            .map_or_else(tokio::time::Instant::now, |r| r.0);
        let timeout = match asked.as_deref().map(go_duration) {
            None => self.max,
            Some(Err(e)) => {
                let err = ApiError::bad_request(format!(
                    "invalid timeout specified in the request URL - {e}"
                ));
                return Box::pin(async move { Ok(error_response(&err)) });
            }
            Some(Ok(Some(d))) if !d.is_zero() && d < self.max => d,
            Some(Ok(_)) => self.max,
        };
        Box::pin(Deadline {
            answer: next.oneshot(req),
            at: started + timeout,
            timer: None,
        })
    }
}

/// The answer, or a 504 once the deadline passes. The timer is set only when the answer is not
/// ready at once: a request answered on its first poll (most reads) costs none.
struct Deadline {
    answer: BoxFuture,
    at: tokio::time::Instant,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Future for Deadline {
    type Output = Result<Response<Body>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Poll::Ready(answer) = self.answer.as_mut().poll(cx) {
            return Poll::Ready(answer);
        }
        let at = self.at;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Ok(error_response(&ApiError::timeout(
                "request did not complete within the allotted timeout",
            )))),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// A Go duration (`time.ParseDuration`): Ok(None) for a negative one, Go's error text for a
/// malformed one.
fn go_duration(v: &str) -> Result<Option<std::time::Duration>, String> {
    let (negative, unsigned) = match v.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, v.strip_prefix('+').unwrap_or(v)),
    };
    let d = crate::query::parse_duration(unsigned)
        .map_err(|_| format!("time: invalid duration {v:?}"))?;
    Ok((!negative).then_some(d))
}

/// Reject requests beyond the in-flight limits with 429, as kube-apiserver's max-in-flight filter:
/// long-running requests (watches, proxies, logs, exec, attach, port-forward) and members of
/// `system:masters` are not counted.
#[derive(Clone)]
struct MaxInFlight {
    readonly: Arc<Semaphore>,
    mutating: Arc<Semaphore>,
}

impl MaxInFlight {
    fn new(l: InFlightLimits) -> Self {
        MaxInFlight {
            readonly: Arc::new(Semaphore::new(l.readonly)),
            mutating: Arc::new(Semaphore::new(l.mutating)),
        }
    }
}

impl Filter for MaxInFlight {
    fn call(&self, req: Req, next: &Next) -> BoxFuture {
        let info = req
            .extensions()
            .get::<Arc<RequestInfo>>()
            .cloned()
            .unwrap_or_default();
        let masters = req
            .extensions()
            .get::<crate::authn::UserInfo>()
            .is_some_and(|u| u.groups.iter().any(|g| g == crate::authn::MASTERS));
        if masters || is_long_running(&info) {
            return next.oneshot(req);
        }
        let sem = if is_mutating(&info) {
            self.mutating.clone()
        } else {
            self.readonly.clone()
        };
        let fut = next.oneshot(req);
        Box::pin(async move {
            let Ok(_permit) = sem.try_acquire_owned() else {
                return Ok(error_response(&ApiError::too_many_requests(
                    "Too many requests, please try again later.",
                    1,
                )));
            };
            fut.await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    #[test]
    fn lists_collection_deletes_and_long_running_requests_but_watches_run_apart() {
        let cm = "/api/v1/namespaces/default/configmaps";
        let pod = "/api/v1/namespaces/default/pods/p";
        let apart = |method: Method, path: &str, query: &str| {
            runs_long(&RequestInfo::parse(&method, path, query))
        };
        assert!(apart(Method::GET, cm, ""));
        assert!(!apart(Method::GET, cm, "watch=true"));
        assert!(!apart(
            Method::GET,
            "/api/v1/watch/namespaces/default/configmaps",
            ""
        ));
        assert!(apart(Method::DELETE, cm, ""));
        assert!(apart(Method::GET, &format!("{pod}/log"), ""));
        assert!(apart(Method::POST, &format!("{pod}/exec"), "command=ls"));
        assert!(apart(Method::GET, &format!("{pod}/proxy"), ""));
        for (method, path) in [
            (Method::GET, format!("{cm}/one")),
            (Method::POST, cm.to_string()),
            (Method::PUT, format!("{cm}/one")),
            (Method::PATCH, format!("{cm}/one")),
            (Method::DELETE, format!("{cm}/one")),
            (Method::GET, "/version".to_string()),
        ] {
            assert!(!apart(method.clone(), &path, ""), "{method} {path}");
        }
    }
}
