//! The state every request shares, and the router from a parsed request to its handler.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response};

use crate::body::{error_response, Body};
use crate::registry::Backend;
use crate::request_info::RequestInfo;
use crate::status::{ApiError, ApiResult};
use crate::{discovery, handlers, watch as watch_handler};

/// Everything a request may need, shared by all requests of one server: the registry layer's
/// [`Backend`] and what only the HTTP side uses.
pub struct ApiState {
    /// The write path below the endpoints (store, registry, admission, hooks' needs).
    pub backend: Arc<Backend>,
    /// The address clients reach the server at (for discovery's serverAddressByClientCIDRs).
    pub advertise_address: String,
    /// Who sent a request; also answers TokenReview and signs ServiceAccount tokens.
    pub authentication: Arc<crate::authn::Authentication>,
    /// Where audit events go (None: no audit log).
    pub audit: Option<Arc<crate::audit::AuditSink>>,
    /// Request and storage metrics (`/metrics`).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Every start step has finished (bootstrap, CRD and RBAC loads, controllers settled):
    /// the post-start health checks pass from then on.
    pub started: std::sync::atomic::AtomicBool,
    /// Every request answered, when recording is on (see `recording`).
    pub recorder: Arc<crate::recorder::Recorder>,
    /// Whether the chain records requests.
    pub recording: bool,
    /// The injected faults.
    pub faults: Arc<crate::faults::Faults>,
    /// The APIServices: remote group/versions proxied, their discovery merged.
    pub aggregator: Arc<crate::aggregator::Aggregator>,
}

/// The group and version of a request under `/apis/<group>/<version>`.
fn apis_group_version(path: &str) -> Option<(&str, &str)> {
    let mut parts = path.strip_prefix("/apis/")?.split('/');
    let group = parts.next().filter(|g| !g.is_empty())?;
    let version = parts.next().filter(|v| !v.is_empty())?;
    Some((group, version))
}

/// Route one request (RequestInfo is already in its extensions).
pub async fn route(state: Arc<ApiState>, req: Request<Bytes>) -> Response<Body> {
    let info = req
        .extensions()
        .get::<Arc<RequestInfo>>()
        .cloned()
        .unwrap_or_default();
    // A group/version served by an extension API server: passed on, already authorized.
    if let Some((group, version)) = apis_group_version(&info.path) {
        if let Some(remote) = state.aggregator.remote(group, version) {
            let user = req
                .extensions()
                .get::<crate::authn::UserInfo>()
                .cloned()
                .unwrap_or_else(crate::authn::UserInfo::anonymous);
            let discovery = !info.is_resource_request
                && info.path.trim_end_matches('/').matches('/').count() == 3;
            return Box::pin(state.aggregator.proxy(&remote, req, &user, discovery)).await;
        }
    }
    if info.is_resource_request {
        // Errors are answered in protobuf to a client that prefers it, as kube writes them.
        let protobuf = crate::encoding::prefers_protobuf(req.headers());
        // Handlers record `Warning` headers (fieldValidation=Warn) on the way.
        // Boxed: the handler's future (1.7 KB) is copied once, into the box, and every future
        // around it stays small — each layer that holds a future by value copies it whole
        // (the router's future was 3.7 KB, copied several times per request).
        let handled = Box::pin(resource_request(&state, &info, req));
        let (result, warnings) = crate::warning::collect(handled).await;
        let mut resp = result.unwrap_or_else(|e| crate::body::error_response_as(&e, protobuf));
        crate::warning::add_headers(&mut resp, &warnings);
        return resp;
    }
    Box::pin(non_resource_request(&state, &info, req))
        .await
        .unwrap_or_else(|e| error_response(&e))
}

async fn non_resource_request(
    state: &Arc<ApiState>,
    info: &RequestInfo,
    req: Request<Bytes>,
) -> ApiResult<Response<Body>> {
    if info.path.trim_end_matches('/') == "/kubox/v1/faults" {
        return faults_endpoint(state, req);
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Err(ApiError::method_not_supported(
            &Default::default(),
            req.method().as_str(),
        ));
    }
    let path = info.path.trim_end_matches('/');
    match path {
        "/version" => Ok(crate::version::response()),
        "/healthz" | "/livez" | "/readyz" => Ok(crate::health::check(
            state,
            path,
            req.uri().query().unwrap_or_default(),
        )),
        p if p.starts_with("/healthz/")
            || p.starts_with("/livez/")
            || p.starts_with("/readyz/") =>
        {
            Ok(crate::health::check(state, p, ""))
        }
        "/metrics" => Ok(crate::metrics::serve(state).await),
        // kubox's own: a consistent image of the store, in the snapshot file format (RBAC
        // grants this path to cluster admins only).
        "/kubox/v1/snapshot" => {
            let image = kubox_storage::Image::read(state.backend.store.as_ref())
                .await
                .map_err(|e| crate::status::from_store(e, &Default::default(), ""))?;
            Ok(crate::body::bytes_response(
                http::StatusCode::OK,
                "application/jsonl",
                crate::snapshot::Snapshot::from_image(image).to_bytes(),
            ))
        }
        "/openapi/v2" | "/swagger-2.0.0.pb-v1" => Ok(crate::openapi_v2::serve(
            &state.backend.registry.snapshot(),
            req.headers(),
            &state.aggregator.openapi_v2_documents(),
        )),
        p if p == "/openapi/v3" || p.starts_with("/openapi/v3/") => {
            if let Some((group, version)) = p
                .strip_prefix("/openapi/v3/apis/")
                .and_then(|gv| gv.split_once('/'))
            {
                if state.aggregator.remote(group, version).is_some() {
                    return match state.aggregator.openapi_v3_document(group, version).await {
                        Some(doc) => Ok(crate::body::bytes_response(
                            http::StatusCode::OK,
                            "application/json",
                            doc,
                        )),
                        None => Err(ApiError::unavailable(format!(
                            "the OpenAPI document of {group}/{version} cannot be fetched from its APIService"
                        ))),
                    };
                }
            }
            crate::openapi::serve(
                &state.backend.registry.snapshot(),
                p,
                req.uri().query(),
                req.headers(),
                &state.aggregator.openapi_v3_paths(),
            )
        }
        _ => discovery::serve(state, info, &req),
    }
}

/// `/kubox/v1/faults`: GET the rules and how often each fired, PUT a `FaultsSpec` (JSON or
/// YAML) to replace them, DELETE them all. RBAC grants it to cluster admins only.
fn faults_endpoint(state: &Arc<ApiState>, req: Request<Bytes>) -> ApiResult<Response<Body>> {
    let faults = &state.faults;
    match *req.method() {
        Method::GET => {}
        Method::DELETE => faults.clear(),
        Method::PUT => {
            let spec =
                crate::faults::FaultsSpec::parse(req.body()).map_err(ApiError::bad_request)?;
            faults.set(spec).map_err(ApiError::bad_request)?;
        }
        ref m => {
            return Err(ApiError::method_not_supported(
                &Default::default(),
                m.as_str(),
            ))
        }
    }
    let report = serde_json::json!({"rules": faults.report()});
    Ok(crate::body::json_response(http::StatusCode::OK, &report))
}

async fn resource_request(
    state: &Arc<ApiState>,
    info: &Arc<RequestInfo>,
    req: Request<Bytes>,
) -> ApiResult<Response<Body>> {
    let snap = state.backend.registry.snapshot();
    let Some(res) = snap.get(&info.api_group, &info.api_version, &info.resource) else {
        return Err(ApiError::path_not_found());
    };
    if !info.namespace.is_empty() && !res.namespaced {
        return Err(ApiError::path_not_found());
    }
    if !info.subresource.is_empty() && res.subresource(&info.subresource).is_none() {
        return Err(ApiError::path_not_found());
    }
    if let Some(w) = res.strategy.deprecation_warning() {
        crate::warning::add(w);
    }
    let ctx = handlers::Ctx::new(state.clone(), res, info.clone(), req)?;
    // Every handler but GET's is boxed: this future stays the size of GET's, not of the
    // largest write path's.
    if info.verb == "get" {
        return handlers::get(ctx).await;
    }
    type Handler = Pin<Box<dyn Future<Output = ApiResult<Response<Body>>> + Send>>;
    let handler: Handler = match info.verb.as_str() {
        "list" => Box::pin(handlers::list(ctx)),
        "watch" => Box::pin(watch_handler::watch(ctx)),
        "create" => Box::pin(handlers::create(ctx)),
        "update" => Box::pin(handlers::update(ctx)),
        "patch" => Box::pin(handlers::patch(ctx)),
        "delete" => Box::pin(handlers::delete(ctx)),
        "deletecollection" => Box::pin(handlers::delete_collection(ctx)),
        other => {
            return Err(ApiError::method_not_supported(
                &ctx.info.group_resource(),
                other,
            ))
        }
    };
    handler.await
}
