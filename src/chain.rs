//! The handler chain: every cross-cutting filter as a tower layer, built in ONE function.
//!
//! Order (outermost first): catch-panic → trace → request-info → max-in-flight →
//! authentication (`authn/layer.rs`) → audit (`audit.rs`, logs the authenticated user) →
//! impersonation (`authn/impersonation.rs`) → authorization (`authz/layer.rs`) → router,
//! as in kube-apiserver. The top service is infallible: every failure is a response.

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
use crate::authn::impersonation::ImpersonationLayer;
use crate::authn::layer::AuthenticationLayer;
use crate::authz::layer::AuthorizationLayer;
use crate::body::{error_response, Body};
use crate::request_info::RequestInfo;
use crate::status::ApiError;

/// The whole API as one service over fully-read requests.
pub type ApiService = BoxCloneSyncService<Request<Bytes>, Response<Body>, Infallible>;

type BoxFuture = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

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

/// Build the chain around the router.
pub fn build(state: Arc<ApiState>, limits: InFlightLimits) -> ApiService {
    let authentication = AuthenticationLayer::new(state.authentication.clone());
    let impersonation = ImpersonationLayer::new(state.authorizer.clone());
    let authorizer = state.authorizer.clone();
    let audit = state.audit.clone();
    let router = tower::service_fn(move |req: Request<Bytes>| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(route(state, req).await) }
    });
    let svc = ServiceBuilder::new()
        .layer(CatchPanicLayer)
        .layer(TraceLayer)
        .layer(RequestInfoLayer)
        .layer(MaxInFlightLayer::new(limits))
        .layer(authentication)
        .layer(crate::audit::AuditLayer::new(audit))
        .layer(impersonation)
        .layer(AuthorizationLayer::new(authorizer))
        .service(router);
    BoxCloneSyncService::new(svc)
}

macro_rules! simple_layer {
    ($layer:ident, $svc:ident) => {
        #[derive(Clone, Copy, Debug, Default)]
        struct $layer;
        impl<S> Layer<S> for $layer {
            type Service = $svc<S>;
            fn layer(&self, inner: S) -> $svc<S> {
                $svc { inner }
            }
        }
        #[derive(Clone)]
        struct $svc<S> {
            inner: S,
        }
    };
}

simple_layer!(CatchPanicLayer, CatchPanic);

/// A panic while handling one request becomes a 500 Status; the server keeps running.
impl<S> Service<Request<Bytes>> for CatchPanic<S>
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
        Box::pin(async move {
            match AssertUnwindSafe(inner.oneshot(req)).catch_unwind().await {
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

simple_layer!(TraceLayer, Trace);

/// One debug line per request with its status and duration.
impl<S> Service<Request<Bytes>> for Trace<S>
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
        let method = req.method().clone();
        let uri = req.uri().clone();
        let start = std::time::Instant::now();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let resp = fut.await?;
            tracing::debug!(%method, %uri, status = resp.status().as_u16(), elapsed_us = start.elapsed().as_micros() as u64, "request");
            Ok(resp)
        })
    }
}

simple_layer!(RequestInfoLayer, RequestInfoService);

/// Parse the request line once into a [`RequestInfo`] extension.
impl<S> Service<Request<Bytes>> for RequestInfoService<S>
where
    S: Service<Request<Bytes>, Response = Response<Body>, Error = Infallible>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<Bytes>) -> S::Future {
        let info = RequestInfo::parse(
            req.method(),
            req.uri().path(),
            req.uri().query().unwrap_or_default(),
        );
        req.extensions_mut().insert(info);
        self.inner.call(req)
    }
}

/// Reject requests beyond the in-flight limits with 429, as kube-apiserver's max-in-flight filter.
#[derive(Clone)]
struct MaxInFlightLayer {
    readonly: Arc<Semaphore>,
    mutating: Arc<Semaphore>,
}

impl MaxInFlightLayer {
    fn new(l: InFlightLimits) -> Self {
        MaxInFlightLayer {
            readonly: Arc::new(Semaphore::new(l.readonly)),
            mutating: Arc::new(Semaphore::new(l.mutating)),
        }
    }
}

impl<S> Layer<S> for MaxInFlightLayer {
    type Service = MaxInFlight<S>;
    fn layer(&self, inner: S) -> MaxInFlight<S> {
        MaxInFlight {
            inner,
            limits: self.clone(),
        }
    }
}

#[derive(Clone)]
struct MaxInFlight<S> {
    inner: S,
    limits: MaxInFlightLayer,
}

impl<S> Service<Request<Bytes>> for MaxInFlight<S>
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
        let verb = req
            .extensions()
            .get::<RequestInfo>()
            .map(|i| i.verb.clone())
            .unwrap_or_default();
        let long_running = verb == "watch";
        let sem = match verb.as_str() {
            "create" | "update" | "patch" | "delete" | "deletecollection" => {
                self.limits.mutating.clone()
            }
            _ => self.limits.readonly.clone(),
        };
        let fut = self.inner.clone().oneshot(req);
        Box::pin(async move {
            if long_running {
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
