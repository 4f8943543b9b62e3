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
use tower::{Layer, Service, ServiceBuilder, ServiceExt};

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
) -> ApiService {
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
    let router = tower::service_fn(move |req: Request<Bytes>| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(route(state, req).await) }
    });
    let svc = ServiceBuilder::new()
        .layer(filter(CatchPanic))
        .layer(filter(Trace))
        .layer(filter(RequestInfoFilter))
        .layer(filter(crate::faults::CutConnections))
        .layer(filter(crate::encoding::JsonFraming))
        .layer(filter(crate::metrics::MetricsFilter {
            metrics: metrics.clone(),
        }))
        .layer(filter(RequestDeadline {
            max: request_timeout,
        }))
        .layer(filter(authentication))
        .layer(filter(crate::conn::ReadBody))
        .layer(filter(AuditFilter::new(audit)))
        .layer(filter(impersonation))
        .option_layer(recorder.map(filter))
        .layer(filter(faults))
        .layer(filter(MaxInFlight::new(limits)))
        .layer(filter(AuthorizationFilter::new(authorizer)))
        .service(router);
    BoxCloneSyncService::new(svc)
}

/// The rest of the chain, as a [`Filter`] sees it.
pub type Next = ApiService;

/// One cross-cutting step of the chain: it sees the request and either answers it or passes it
/// on to `next` (usually with `next.oneshot(req)`). Every filter of the chain is one of these, so
/// each file holds only its logic; [`filter`] makes it a tower layer.
pub trait Filter: Clone + Send + Sync + 'static {
    /// Handle `req`.
    fn call(&self, req: Request<Bytes>, next: Next) -> BoxFuture;
}

/// The tower layer of a [`Filter`].
pub fn filter<F: Filter>(f: F) -> FilterLayer<F> {
    FilterLayer(f)
}

/// See [`filter`].
#[derive(Clone)]
pub struct FilterLayer<F>(F);

impl<F, S> Layer<S> for FilterLayer<F>
where
    F: Filter,
    S: Service<Request<Bytes>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    type Service = FilterService<F>;
    fn layer(&self, inner: S) -> FilterService<F> {
        FilterService {
            filter: self.0.clone(),
            next: BoxCloneSyncService::new(inner),
        }
    }
}

/// A [`Filter`] in front of the rest of the chain.
#[derive(Clone)]
pub struct FilterService<F> {
    filter: F,
    next: Next,
}

impl<F: Filter> Service<Request<Bytes>> for FilterService<F> {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // The filter drives `next` to readiness itself (`oneshot`).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Bytes>) -> BoxFuture {
        self.filter.call(req, self.next.clone())
    }
}

/// A panic while handling one request becomes a 500 Status; the server keeps running.
#[derive(Clone, Copy)]
struct CatchPanic;

impl Filter for CatchPanic {
    fn call(&self, req: Request<Bytes>, next: Next) -> BoxFuture {
        Box::pin(async move {
            match AssertUnwindSafe(next.oneshot(req)).catch_unwind().await {
                Ok(r) => r,
                Err(panic) => {
                    let msg = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "panic".to_string());
                    Ok(error_response(&ApiError::internal(format!(
                        "a panic occurred while handling the request: {msg}"
                    ))))
                }
            }
        })
    }
}

/// One debug line per request with its status and duration.
#[derive(Clone, Copy)]
struct Trace;

impl Filter for Trace {
    fn call(&self, req: Request<Bytes>, next: Next) -> BoxFuture {
        let method = req.method().clone();
        let uri = req.uri().clone();
        let start = std::time::Instant::now();
        Box::pin(async move {
            let resp = next.oneshot(req).await?;
            tracing::debug!(%method, %uri, status = resp.status().as_u16(), elapsed_us = start.elapsed().as_micros() as u64, "request");
            Ok(resp)
        })
    }
}

/// Parse the request line once into a [`RequestInfo`] extension.
#[derive(Clone, Copy)]
struct RequestInfoFilter;

impl Filter for RequestInfoFilter {
    fn call(&self, mut req: Request<Bytes>, next: Next) -> BoxFuture {
        let info = RequestInfo::parse(
            req.method(),
            req.uri().path(),
            req.uri().query().unwrap_or_default(),
        );
        req.extensions_mut().insert(info);
        Box::pin(next.oneshot(req))
    }
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
    fn call(&self, req: Request<Bytes>, next: Next) -> BoxFuture {
        let long_running = req
            .extensions()
            .get::<RequestInfo>()
            .is_some_and(is_long_running);
        if long_running {
            return Box::pin(next.oneshot(req));
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
        Box::pin(async move {
            match tokio::time::timeout_at(started + timeout, next.oneshot(req)).await {
                Ok(answer) => answer,
                Err(_) => Ok(error_response(&ApiError::timeout(
                    "request did not complete within the allotted timeout",
                ))),
            }
        })
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
    fn call(&self, req: Request<Bytes>, next: Next) -> BoxFuture {
        let info = req
            .extensions()
            .get::<RequestInfo>()
            .cloned()
            .unwrap_or_default();
        let masters = req
            .extensions()
            .get::<crate::authn::UserInfo>()
            .is_some_and(|u| u.groups.iter().any(|g| g == crate::authn::MASTERS));
        let long_running = is_long_running(&info);
        let sem = if is_mutating(&info) {
            self.mutating.clone()
        } else {
            self.readonly.clone()
        };
        let fut = next.oneshot(req);
        Box::pin(async move {
            if long_running || masters {
                return fut.await;
            }
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
