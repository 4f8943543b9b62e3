//! The resource verbs: get, list, create, update, patch, delete, deletecollection.
//!
//! Every resource, built-in or custom, takes this one path; what differs is its [`Strategy`].
//! Write path: decode → defaults → prepare (status split, generation) → validate → store.
//!
//! [`Strategy`]: crate::registry::Strategy

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use kubox_storage::{KeyValue, ListOptions, StoreError};
use serde_json::{json, Value};

use crate::api::ApiState;
use crate::authn::UserInfo;
use crate::body::Body;
use crate::encoding::{self, IncludeObject, OutFormat};
use crate::filter::Filter;
use crate::objects::{self, from_stored, name_of, namespace_of, to_version};
use crate::query::{parse_resource_version, Query};
use crate::registry::store::{self, CreateOptions, DeleteOptions, Scope, UpdateOptions};
use crate::registry::ResourceInfo;
use crate::request_info::RequestInfo;
use crate::status::{self, ApiError, ApiResult};
use crate::{field_validation, patch, subresources};

/// Everything about one resource request.
pub struct Ctx {
    /// Shared server state.
    pub state: Arc<ApiState>,
    /// The resource served.
    pub info: Arc<ResourceInfo>,
    /// The parsed request line.
    pub req: Arc<RequestInfo>,
    /// Request headers.
    pub headers: HeaderMap,
    /// Query options.
    pub query: Query,
    /// Request body.
    pub body: Bytes,
    /// What to answer in.
    pub out: OutFormat,
    /// Who is asking (after impersonation).
    pub user: UserInfo,
    /// An injected fault asks a watch to answer as for a compacted resourceVersion.
    pub watch_gone: bool,
    /// Answer in Kubernetes protobuf (the client prefers it and the kind has the form).
    pub protobuf: bool,
}

impl Ctx {
    /// Build the context; an unacceptable Accept header fails here.
    pub fn new(
        state: Arc<ApiState>,
        info: Arc<ResourceInfo>,
        req: Arc<RequestInfo>,
        http: Request<Bytes>,
    ) -> ApiResult<Ctx> {
        let (mut parts, body) = http.into_parts();
        let query = Query::parse(parts.uri.query().unwrap_or_default());
        // kube's lister storages all convert to Tables; the create-only ones (reviews,
        // `bindings`) and the binding, eviction and token subresources do not.
        let tables = info.verbs.iter().any(|v| v == "list")
            && !matches!(req.subresource.as_str(), "binding" | "eviction" | "token");
        // Built-in kinds have a protobuf form; custom resources answer in JSON.
        let (out, protobuf) =
            encoding::negotiate(&parts.headers, tables, !info.strategy.is_custom())?;
        // Taken, not copied: the request's extensions end here.
        let user = parts
            .extensions
            .remove::<UserInfo>()
            .unwrap_or_else(UserInfo::loopback);
        let watch_gone = parts
            .extensions
            .get::<crate::faults::WatchGoneInjected>()
            .is_some();
        Ok(Ctx {
            user,
            watch_gone,
            protobuf,
            state,
            info,
            req,
            headers: parts.headers,
            query,
            body,
            out,
        })
    }

    /// The storage key of the named object.
    pub fn key(&self) -> String {
        self.info.key(&self.req.namespace, &self.req.name)
    }

    /// Read the named object as stored (storage version).
    pub async fn read(&self) -> ApiResult<(Value, KeyValue)> {
        store::read(
            &self.state.backend,
            &self.info,
            &self.req.namespace,
            &self.req.name,
        )
        .await
    }

    /// Encode one object (at the storage version) for the client.
    pub async fn respond(&self, code: StatusCode, stored_obj: Value) -> ApiResult<Response<Body>> {
        let obj = to_version(&self.info, stored_obj).await?;
        Ok(self.respond_object(code, obj))
    }

    /// Encode one object already at the request's version.
    pub fn respond_object(&self, code: StatusCode, obj: Value) -> Response<Body> {
        match &self.out {
            OutFormat::Table { version } => {
                let include = IncludeObject::parse(self.query.str("includeObject"))
                    .unwrap_or(IncludeObject::Metadata);
                let rv = obj["metadata"]["resourceVersion"].clone();
                let t = encoding::table(
                    &self.info,
                    &[obj],
                    json!({"resourceVersion": rv}),
                    version,
                    include,
                    true,
                    self.state.backend.clock.now(),
                );
                encoding::encode(&t, &OutFormat::Json, code)
            }
            OutFormat::Metadata { list: true, .. } => {
                crate::body::error_response(&ApiError::not_acceptable_conversion(format!(
                    "you requested PartialObjectMetadataList, but the requested object is not a list ({})",
                    go_type_name(&self.info, false)
                )))
            }
            OutFormat::Metadata { version, .. } => encoding::encode_as(
                &encoding::partial_metadata(&obj, version),
                &OutFormat::Json,
                self.protobuf,
                code,
            ),
            f => encoding::encode_as(&obj, f, self.protobuf, code),
        }
    }

    fn gr(&self) -> status::GroupResource {
        self.info.group_resource()
    }
}

/// GET one object.
pub async fn get(ctx: Ctx) -> ApiResult<Response<Body>> {
    let rv = parse_resource_version(ctx.query.str("resourceVersion"))?;
    if rv.is_none()
        && ctx.req.subresource.is_empty()
        && ctx.out == OutFormat::Json
        && !ctx.protobuf
        && objects::servable_as_stored(&ctx.info)
        && !is_component_statuses(&ctx.info)
    {
        // Fast path: the stored bytes are the answer.
        let kv = ctx
            .state
            .backend
            .store
            .get(&ctx.key(), None)
            .await
            .map_err(|e| status::from_store(e, &ctx.gr(), &ctx.req.name))?;
        if let Some(bytes) = objects::stamp(&kv.value, kv.mod_revision) {
            return Ok(crate::body::bytes_response(
                StatusCode::OK,
                "application/json",
                bytes,
            ));
        }
    }
    // Boxed: the fast path's future stays small.
    Box::pin(get_decoded(ctx, rv)).await
}

/// GET of a subresource, of a computed object, at a resourceVersion, or in another form than
/// the stored JSON.
async fn get_decoded(ctx: Ctx, rv: Option<i64>) -> ApiResult<Response<Body>> {
    if !ctx.req.subresource.is_empty() {
        return subresources::get(ctx).await;
    }
    if is_component_statuses(&ctx.info) {
        let name = ctx.req.name.clone();
        return match component_statuses(&ctx)
            .into_iter()
            .find(|c| c["metadata"]["name"] == json!(name))
        {
            Some(c) => ctx.respond(StatusCode::OK, c).await,
            None => Err(ApiError::not_found(&ctx.gr(), &name)),
        };
    }
    let (obj, _) = ctx.read().await?;
    if let Some(min) = rv.filter(|r| *r > 0) {
        let current = ctx
            .state
            .backend
            .store
            .current_revision()
            .await
            .map_err(|e| status::from_store(e, &ctx.gr(), ""))?;
        if min > current {
            return Err(ApiError::too_large_resource_version(min, current));
        }
    }
    ctx.respond(StatusCode::OK, obj).await
}

/// A list object holding `items` (moved in: `json!` would copy every item).
fn list_value(info: &ResourceInfo, meta: Value, items: Vec<Value>) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("kind".into(), Value::String(list_kind(info)));
    m.insert("apiVersion".into(), Value::String(info.api_version()));
    m.insert("metadata".into(), meta);
    m.insert("items".into(), Value::Array(items));
    Value::Object(m)
}

/// The list kind for a resource (`ConfigMapList`).
pub fn list_kind(info: &ResourceInfo) -> String {
    format!("{}List", info.kind)
}

/// Parse the list options shared by list and deletecollection; returns the store options.
fn list_options(ctx: &Ctx) -> ApiResult<(ListOptions, Option<usize>)> {
    let q = &ctx.query;
    let rv_str = q.str("resourceVersion");
    let rv = parse_resource_version(rv_str)?;
    let rv_match = q.str("resourceVersionMatch");
    let limit = q.int("limit")?.filter(|l| *l > 0).map(|l| l as usize);
    // Not used by a list, but decoded as kube decodes ListOptions: a malformed or
    // out-of-range value is a 400.
    q.int("timeoutSeconds")?;
    let cont = q
        .get("continue")
        .filter(|c| !c.is_empty())
        .map(str::to_string);
    if cont.is_some() && !rv_str.is_empty() && rv_str != "0" {
        return Err(ApiError::bad_request(
            "specifying resource version is not allowed when using continue",
        ));
    }
    if !rv_match.is_empty() && rv_str.is_empty() {
        return Err(ApiError::bad_request(
            "resourceVersionMatch is forbidden unless resourceVersion is provided",
        ));
    }
    let revision = match rv_match {
        "" | "NotOlderThan" => None,
        "Exact" => {
            if rv == Some(0) {
                return Err(ApiError::bad_request(
                    "resourceVersionMatch \"Exact\" is forbidden for resourceVersion \"0\"",
                ));
            }
            rv
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "resourceVersionMatch: Unsupported value: \"{other}\": supported values: \"Exact\", \"NotOlderThan\""
            )))
        }
    };
    Ok((
        ListOptions {
            revision,
            limit: None,
            continue_token: cont,
        },
        limit,
    ))
}

/// One page of a filtered list: items (stored form), list revision, continue, remaining.
pub struct Page {
    /// Matching objects at the storage version, resourceVersion set (when decoded).
    pub items: Vec<Value>,
    /// Matching objects as stored (when the caller allowed it and nothing needed decoding).
    pub raw: Vec<KeyValue>,
    /// The revision the list was served at.
    pub revision: i64,
    /// Continue token for the next page.
    pub continue_token: Option<String>,
    /// Remaining items (only without selectors).
    pub remaining: Option<usize>,
}

/// List a collection with selectors and paging; the page is filled up to `limit` matches.
pub async fn list_page(
    ctx: &Ctx,
    filter: &Filter,
    mut opts: ListOptions,
    limit: Option<usize>,
    raw_ok: bool,
) -> ApiResult<Page> {
    let prefix = ctx.info.collection_prefix(&ctx.req.namespace);
    let gr = ctx.gr();
    let map_err = |e: StoreError| match e {
        StoreError::Compacted { .. } if opts_has_continue(&ctx.query) => {
            ApiError::continue_expired()
        }
        e => status::from_store(e, &gr, ""),
    };
    // resourceVersion=N (NotOlderThan): the store must have reached N.
    if let Ok(Some(min)) = parse_resource_version(ctx.query.str("resourceVersion")) {
        if opts.revision.is_none() && min > 0 {
            let current = ctx
                .state
                .backend
                .store
                .current_revision()
                .await
                .map_err(map_err)?;
            if min > current {
                return Err(ApiError::too_large_resource_version(min, current));
            }
        }
    }
    let mut items = Vec::new();
    let mut raw = Vec::new();
    let mut revision = 0;
    // Without selectors, objects need not be decoded to be selected; the caller decides
    // whether it needs them decoded (`Page::items`) or can serve the stored bytes (`Page::raw`).
    let decode = !(filter.is_everything() && raw_ok);
    let at_version = filter.selects_at_request_version(&ctx.info);
    loop {
        let want = limit.map(|l| l - items.len() - raw.len());
        opts.limit = want;
        let page = ctx
            .state
            .backend
            .store
            .list(&prefix, opts.clone())
            .await
            .map_err(map_err)?;
        revision = if revision == 0 {
            page.revision
        } else {
            revision
        };
        let mut decoded = Vec::new();
        for kv in &page.items {
            if ctx.info.namespaced && !ctx.req.namespace.is_empty() && !kv.key.starts_with(&prefix)
            {
                continue;
            }
            if !decode {
                raw.push(kv.clone());
                continue;
            }
            decoded.push(from_stored(kv)?);
        }
        if at_version {
            decoded = objects::to_version_many(&ctx.info, decoded).await?;
        }
        items.extend(decoded.into_iter().filter(|obj| filter.matches(obj)));
        match page.continue_token {
            Some(token) if limit.is_some_and(|l| items.len() + raw.len() < l) => {
                opts = ListOptions {
                    revision: None,
                    limit: None,
                    continue_token: Some(token),
                };
            }
            token => {
                let remaining = if filter.is_everything() {
                    page.remaining
                } else {
                    None
                };
                return Ok(Page {
                    items,
                    raw,
                    revision,
                    continue_token: token,
                    remaining,
                });
            }
        }
    }
}

/// A `…List` document assembled from stored bytes (None if one of them lacks the layout).
fn raw_list(info: &ResourceInfo, meta: &Value, kvs: &[KeyValue]) -> Option<Vec<u8>> {
    // A typed list as kube writes it: kind, apiVersion, metadata (a ListMeta), items without
    // their kind and apiVersion.
    let head = json!({"kind": list_kind(info), "apiVersion": info.api_version(), "metadata": meta, "items": []});
    let mut out = encoding::json_bytes(&head);
    if !out.ends_with(b"[]}") {
        return None;
    }
    out.truncate(out.len() - 2);
    // Room for every item at once: grown as it fills, the list would be copied whole at each
    // doubling (a large copy, slow on some processors; see `conn::COPY_PIECE`). Each item
    // gains at most its resourceVersion (up to 40 bytes with its key) and loses its kind.
    out.reserve(kvs.iter().map(|kv| kv.value.len() + 41).sum::<usize>() + 2);
    for (i, kv) in kvs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if !objects::stamp_into(&kv.value, kv.mod_revision, true, &mut out) {
            return None;
        }
    }
    out.extend_from_slice(b"]}");
    Some(out)
}

fn opts_has_continue(q: &Query) -> bool {
    q.get("continue").is_some_and(|c| !c.is_empty())
}

/// The `componentstatuses` kube-apiserver computes on each read (deprecated since 1.19, still
/// served): the scheduler (kubox runs none), the controller manager (kubox's controllers run
/// in-process) and the store as `etcd-0`.
fn component_statuses(ctx: &Ctx) -> Vec<Value> {
    // Every read carries kube's deprecation warning.
    crate::warning::add("v1 ComponentStatus is deprecated in v1.19+");
    let status = |name: &str, healthy: Result<(), String>| {
        let condition = match healthy {
            Ok(()) => json!({"type": "Healthy", "status": "True", "message": "ok"}),
            Err(e) => json!({"type": "Healthy", "status": "False", "message": e, "error": e}),
        };
        json!({"apiVersion": "v1", "kind": "ComponentStatus", "metadata": {"name": name},
               "conditions": [condition]})
    };
    vec![
        status("scheduler", Err("kubox runs no scheduler".into())),
        status("controller-manager", Ok(())),
        status(
            "etcd-0",
            ctx.state.backend.store.health().map_err(|e| e.to_string()),
        ),
    ]
}

fn is_component_statuses(info: &ResourceInfo) -> bool {
    info.group.is_empty() && info.resource == "componentstatuses"
}

/// GET a collection.
pub async fn list(ctx: Ctx) -> ApiResult<Response<Body>> {
    if is_component_statuses(&ctx.info) {
        let items = component_statuses(&ctx);
        return encode_list(&ctx, items, json!({}));
    }
    let filter = Filter::from_query(&ctx.query, &ctx.info)?;
    let (opts, limit) = list_options(&ctx)?;
    let fast =
        ctx.out == OutFormat::Json && !ctx.protobuf && objects::servable_as_stored(&ctx.info);
    let page = list_page(&ctx, &filter, opts, limit, fast).await?;
    let mut meta = json!({"resourceVersion": page.revision.to_string()});
    if let Some(c) = &page.continue_token {
        meta["continue"] = json!(c);
        if let Some(r) = page.remaining {
            meta["remainingItemCount"] = json!(r);
        }
    }
    if fast && page.items.is_empty() {
        // Fast path: the list is written from the stored bytes.
        if let Some(body) = raw_list(&ctx.info, &meta, &page.raw) {
            return Ok(crate::body::bytes_response(
                StatusCode::OK,
                "application/json",
                body,
            ));
        }
    }
    let mut page = page;
    for kv in &page.raw {
        page.items.push(from_stored(kv)?);
    }
    let items = objects::to_version_many(&ctx.info, page.items).await?;
    encode_list(&ctx, items, meta)
}

/// A list answer in the format asked for (JSON/YAML list, Table, PartialObjectMetadataList).
fn encode_list(ctx: &Ctx, mut items: Vec<Value>, meta: Value) -> ApiResult<Response<Body>> {
    let body = match &ctx.out {
        OutFormat::Table { version } => {
            let include = IncludeObject::parse(ctx.query.str("includeObject"))?;
            encoding::table(
                &ctx.info,
                &items,
                meta,
                version,
                include,
                true,
                ctx.state.backend.clock.now(),
            )
        }
        OutFormat::Metadata { list: false, .. } => {
            return Err(ApiError::not_acceptable_conversion(format!(
                "you requested PartialObjectMetadata, but the requested object is a list ({})",
                go_type_name(&ctx.info, true)
            )))
        }
        OutFormat::Metadata { version, .. } => {
            let mut m = serde_json::Map::new();
            m.insert("kind".into(), json!("PartialObjectMetadataList"));
            m.insert("apiVersion".into(), json!(format!("meta.k8s.io/{version}")));
            m.insert("metadata".into(), meta);
            m.insert(
                "items".into(),
                Value::Array(
                    items
                        .iter()
                        .map(|o| encoding::partial_metadata(o, version))
                        .collect(),
                ),
            );
            Value::Object(m)
        }
        _ => {
            for o in items.iter_mut().filter(|_| !ctx.info.strategy.is_custom()) {
                if let Some(m) = o.as_object_mut() {
                    m.remove("apiVersion");
                    m.remove("kind");
                }
            }
            list_value(&ctx.info, meta, items)
        }
    };
    let fmt = if matches!(ctx.out, OutFormat::Yaml) {
        OutFormat::Yaml
    } else {
        OutFormat::Json
    };
    Ok(encoding::encode_as(
        &body,
        &fmt,
        ctx.protobuf,
        StatusCode::OK,
    ))
}

/// The Go package kube-apiserver holds a built-in resource's objects in (its internal
/// version): `core` for the core group, else the group's first label (`apps`, `rbac`…).
fn internal_package(info: &ResourceInfo) -> &str {
    match info.storage_api_version.rsplit_once('/') {
        Some((group, _)) => match group.split('.').next() {
            Some("internal") => "apiserverinternal",
            Some(g) => g,
            None => "core",
        },
        None => "core",
    }
}

/// The Go type (`%T`) kube-apiserver names a resource's object or list by in messages:
/// `*core.ConfigMap`, `*apps.DeploymentList`, `*unstructured.Unstructured` for custom
/// resources.
fn go_type_name(info: &ResourceInfo, list: bool) -> String {
    let suffix = if list { "List" } else { "" };
    if info.strategy.is_custom() {
        format!("*unstructured.Unstructured{suffix}")
    } else {
        format!("*{}.{}{suffix}", internal_package(info), info.kind)
    }
}

/// Check and complete the apiVersion/kind of a decoded body against the endpoint.
pub fn check_type(info: &ResourceInfo, obj: &mut Value) -> ApiResult<()> {
    let kind = obj
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let av = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if kind.is_empty() {
        obj["kind"] = json!(info.kind);
    } else if kind != info.kind {
        // A built-in kind kube decodes, then cannot convert to the endpoint's internal type.
        let (group, version) = av.rsplit_once('/').unwrap_or(("", av.as_str()));
        let known = !info.strategy.is_custom()
            && kubox_openapi::Schemas::builtin()
                .for_kind(group, version, &kind)
                .is_some();
        if known {
            return Err(ApiError::bad_request(format!(
                "{kind} in version {version:?} cannot be handled as a {expected}: converting ({version}.{kind}) to ({internal}.{expected}): unknown conversion",
                expected = info.kind,
                internal = internal_package(info),
            )));
        }
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({}) for {}",
            info.kind,
            info.group_resource()
        )));
    }
    if av.is_empty() {
        obj["apiVersion"] = json!(info.api_version());
    } else if av != info.api_version() {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({av}) does not match the expected API version ({})",
            info.api_version()
        )));
    }
    if !obj["metadata"].is_object() {
        if obj["metadata"].is_null() {
            obj["metadata"] = json!({});
        } else {
            return Err(ApiError::bad_request(format!(
                "{} in version \"{}\" cannot be handled as a {}: json: cannot unmarshal {} into Go struct field {}.metadata of type v1.ObjectMeta",
                info.kind, info.version, info.kind, encoding::json_type(&obj["metadata"]), info.kind
            )));
        }
    }
    Ok(())
}

/// POST a new object.
pub async fn create(ctx: Ctx) -> ApiResult<Response<Body>> {
    if !ctx.req.subresource.is_empty() || !ctx.req.name.is_empty() {
        return subresources::create(ctx).await;
    }
    if !ctx.info.has_verb("create") {
        return Err(ApiError::method_not_supported(&ctx.gr(), "create"));
    }
    let format = encoding::content_format(&ctx.headers)?;
    ctx.query.validate_write_options("CreateOptions", None)?;
    let directive = field_validation::directive(&ctx.query, "CreateOptions")?;
    let decoded = encoding::decode_object(&ctx.body, format)?;
    let mut obj = decoded.value;
    check_type(&ctx.info, &mut obj)?;
    field_validation::check_body(&ctx, format, directive, decoded.maybe_repeated, &mut obj)?;
    if crate::reviews::is_virtual(&ctx.info.group, &ctx.info.resource) {
        return crate::reviews::create(&ctx, obj).await;
    }
    let opts = ctx.create_options()?;
    let (obj, kv) = store::create_stored(&ctx.scope(), obj, &opts).await?;
    // The stored bytes with the resourceVersion are the answer, as a GET's.
    if let Some(kv) = kv.filter(|_| {
        ctx.out == OutFormat::Json && !ctx.protobuf && objects::servable_as_stored(&ctx.info)
    }) {
        if let Some(bytes) = objects::stamp(&kv.value, kv.mod_revision) {
            return Ok(crate::body::bytes_response(
                StatusCode::CREATED,
                "application/json",
                bytes,
            ));
        }
    }
    if ctx.info.strategy.settled_by_create()
        && ctx.info.serves_api_version(&ctx.info.storage_api_version)
    {
        return Ok(ctx.respond_object(StatusCode::CREATED, obj));
    }
    ctx.respond(StatusCode::CREATED, obj).await
}

/// PUT a replacement object.
pub async fn update(ctx: Ctx) -> ApiResult<Response<Body>> {
    if ctx.req.subresource == "scale" {
        return subresources::update_scale(ctx).await;
    }
    if !ctx.req.subresource.is_empty()
        && !matches!(
            ctx.req.subresource.as_str(),
            "status" | "finalize" | "ephemeralcontainers" | "approval" | "resize"
        )
    {
        return Err(ApiError::method_not_supported(&ctx.gr(), "update"));
    }
    if !ctx.info.has_verb("update") {
        return Err(ApiError::method_not_supported(&ctx.gr(), "update"));
    }
    let format = encoding::content_format(&ctx.headers)?;
    ctx.query.validate_write_options("UpdateOptions", None)?;
    let directive = field_validation::directive(&ctx.query, "UpdateOptions")?;
    let decoded = encoding::decode_object(&ctx.body, format)?;
    let mut obj = decoded.value;
    check_type(&ctx.info, &mut obj)?;
    field_validation::check_body(&ctx, format, directive, decoded.maybe_repeated, &mut obj)?;
    let body_name = name_of(&obj).to_string();
    if body_name.is_empty() {
        obj["metadata"]["name"] = json!(ctx.req.name);
    } else if body_name != ctx.req.name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({})",
            ctx.req.name
        )));
    }
    let opts = ctx.update_options()?;
    let expected = parse_resource_version(
        obj["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default(),
    )
    .map_err(|_| {
        ApiError::invalid(
            &ctx.info.kind,
            &ctx.info.group,
            &ctx.req.name,
            &[kubox_apimachinery::validation::FieldError::invalid(
                "metadata.resourceVersion",
                obj["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or_default(),
                "must be a valid resource version",
            )],
        )
    })?;
    let (obj, created) =
        store::update_by_name(&ctx.scope(), &ctx.req.name, obj, expected, &opts).await?;
    let code = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    ctx.respond(code, obj).await
}

/// PATCH an object (JSON patch, merge patch, strategic merge patch, apply).
pub async fn patch(ctx: Ctx) -> ApiResult<Response<Body>> {
    patch::patch(ctx).await
}

/// DELETE one object.
pub async fn delete(ctx: Ctx) -> ApiResult<Response<Body>> {
    if !ctx.req.subresource.is_empty() || !ctx.info.has_verb("delete") {
        return Err(ApiError::method_not_supported(&ctx.gr(), "delete"));
    }
    let opts = ctx.delete_options()?;
    let (obj, deleted) = store::delete(&ctx.scope(), &ctx.req.name, &opts).await?;
    if !deleted {
        // Deletion waits on finalizers: the object comes back with 200, as kube-apiserver answers
        // (202 only when orphanDependents=false was asked for).
        let code = if opts.orphan_dependents == Some(false) {
            StatusCode::ACCEPTED
        } else {
            StatusCode::OK
        };
        return ctx.respond(code, obj).await;
    }
    if ctx.info.strategy.return_deleted_object() {
        return ctx.respond(StatusCode::OK, obj).await;
    }
    let status = status::success_status(&ctx.gr(), &ctx.req.name, obj["metadata"]["uid"].as_str());
    Ok(encoding::encode_as(
        &status,
        &ctx.out_plain(),
        ctx.protobuf,
        StatusCode::OK,
    ))
}

impl Ctx {
    /// JSON or YAML (Table/metadata requests get JSON for Status bodies).
    pub fn out_plain(&self) -> OutFormat {
        if self.out == OutFormat::Yaml {
            OutFormat::Yaml
        } else {
            OutFormat::Json
        }
    }

    /// The scope of this request's writes: its resource, namespace, subresource and user.
    pub fn scope(&self) -> Scope {
        Scope::new(
            self.state.backend.clone(),
            self.info.clone(),
            &self.req.namespace,
            &self.req.subresource,
            self.user.clone(),
        )
        .with_user_agent(
            self.headers
                .get(http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default(),
        )
    }

    /// CreateOptions from the query (`dryRun`, `fieldManager`).
    pub fn create_options(&self) -> ApiResult<CreateOptions> {
        Ok(CreateOptions {
            dry_run: self.query.dry_run("CreateOptions")?,
            field_manager: self.field_manager(),
            applied: None,
        })
    }

    /// UpdateOptions from the query; `kind` names them in errors (`UpdateOptions`,
    /// `PatchOptions`).
    pub fn update_options_as(&self, kind: &str) -> ApiResult<UpdateOptions> {
        Ok(UpdateOptions {
            dry_run: self.query.dry_run(kind)?,
            field_manager: self.field_manager(),
            applied: None,
            force: self
                .query
                .get("force")
                .is_some_and(crate::request_info::kube_bool),
        })
    }

    /// UpdateOptions from the query.
    pub fn update_options(&self) -> ApiResult<UpdateOptions> {
        self.update_options_as("UpdateOptions")
    }

    fn field_manager(&self) -> Option<String> {
        self.query
            .get("fieldManager")
            .filter(|m| !m.is_empty())
            .map(str::to_string)
    }

    /// DeleteOptions from the body (JSON or YAML) and the query, which wins.
    pub fn delete_options(&self) -> ApiResult<DeleteOptions> {
        let mut opts = if self.body.iter().all(u8::is_ascii_whitespace) {
            json!({})
        } else {
            let format = encoding::content_format(&self.headers)?;
            let v = encoding::decode_body(&self.body, format)?;
            if !v.is_object() {
                return Err(ApiError::bad_request(format!(
                    "json: cannot unmarshal {} into Go value of type v1.DeleteOptions",
                    encoding::json_type(&v)
                )));
            }
            v
        };
        if let Some(p) = self.query.get("propagationPolicy") {
            opts["propagationPolicy"] = json!(p);
        }
        if let Some(g) = self.query.int("gracePeriodSeconds")? {
            opts["gracePeriodSeconds"] = json!(g);
        }
        if let Some(o) = self.query.get("orphanDependents") {
            opts["orphanDependents"] = json!(crate::request_info::kube_bool(o));
        }
        let mut opts = DeleteOptions::from_value(&opts)?;
        opts.dry_run |= self.query.dry_run("DeleteOptions")?;
        Ok(opts)
    }
}

/// DELETE a collection: every object the selectors match; answers the list of what was deleted.
pub async fn delete_collection(ctx: Ctx) -> ApiResult<Response<Body>> {
    if !ctx.info.has_verb("deletecollection") {
        return Err(ApiError::method_not_supported(
            &ctx.gr(),
            "deletecollection",
        ));
    }
    let filter = Filter::from_query(&ctx.query, &ctx.info)?;
    let opts = ctx.delete_options()?;
    let (list_opts, _) = list_options(&ctx)?;
    let page = list_page(&ctx, &filter, list_opts, None, false).await?;
    let scope = ctx.scope();
    let mut deleted = Vec::new();
    for obj in page.items {
        let name = name_of(&obj).to_string();
        let scope = scope.in_namespace(namespace_of(&obj));
        match store::delete(&scope, &name, &opts).await {
            Ok((o, _)) => deleted.push(o),
            Err(e) if e.code == StatusCode::NOT_FOUND => {}
            Err(e) => return Err(e),
        }
    }
    let rev = ctx
        .state
        .backend
        .store
        .current_revision()
        .await
        .map_err(|e| status::from_store(e, &ctx.gr(), ""))?;
    let mut deleted = objects::to_version_many(&ctx.info, deleted).await?;
    for o in deleted
        .iter_mut()
        .filter(|_| !ctx.info.strategy.is_custom())
    {
        if let Some(m) = o.as_object_mut() {
            m.remove("apiVersion");
            m.remove("kind");
        }
    }
    let body = list_value(
        &ctx.info,
        json!({"resourceVersion": rev.to_string()}),
        deleted,
    );
    Ok(encoding::encode_as(
        &body,
        &ctx.out_plain(),
        ctx.protobuf,
        StatusCode::OK,
    ))
}
