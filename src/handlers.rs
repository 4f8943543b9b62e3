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

use crate::admission::{Attributes, Operation};
use crate::api::ApiState;
use crate::authn::UserInfo;
use crate::body::Body;
use crate::encoding::{self, IncludeObject, OutFormat};
use crate::filter::Filter;
use crate::objects::{
    self, from_stored, name_of, namespace_of, to_storage_version, to_stored, to_version,
};
use crate::query::{parse_resource_version, Query};
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
    pub req: RequestInfo,
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
}

impl Ctx {
    /// Build the context; an unacceptable Accept header fails here.
    pub fn new(
        state: Arc<ApiState>,
        info: Arc<ResourceInfo>,
        req: RequestInfo,
        http: Request<Bytes>,
    ) -> ApiResult<Ctx> {
        let (parts, body) = http.into_parts();
        let query = Query::parse(parts.uri.query().unwrap_or_default());
        let out = encoding::negotiate(&parts.headers)?;
        let user = parts
            .extensions
            .get::<UserInfo>()
            .cloned()
            .unwrap_or_else(UserInfo::loopback);
        Ok(Ctx {
            user,
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
        let kv = self
            .state
            .store
            .get(&self.key(), None)
            .await
            .map_err(|e| status::from_store(e, &self.info.group_resource(), &self.req.name))?;
        Ok((from_stored(&kv)?, kv))
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
                    self.state.clock.now(),
                );
                encoding::encode(&t, &OutFormat::Json, code)
            }
            OutFormat::Metadata { version } => encoding::encode(
                &encoding::partial_metadata(&obj, version),
                &OutFormat::Json,
                code,
            ),
            f => encoding::encode(&obj, f, code),
        }
    }

    fn gr(&self) -> status::GroupResource {
        self.info.group_resource()
    }

    /// Admission attributes for a write of this request.
    fn attributes(
        &self,
        operation: Operation,
        name: &str,
        object: Option<Value>,
        old_object: Option<Value>,
        dry_run: bool,
        options: Value,
    ) -> Attributes {
        Attributes {
            operation,
            info: self.info.clone(),
            subresource: self.req.subresource.clone(),
            namespace: if self.info.namespaced {
                self.req.namespace.clone()
            } else {
                String::new()
            },
            name: name.to_string(),
            object,
            old_object,
            user: self.user.clone(),
            dry_run,
            options,
        }
    }

    /// The CreateOptions/UpdateOptions of this request, as admission reports them.
    fn write_options(&self, kind: &str) -> Value {
        let mut o = json!({"kind": kind, "apiVersion": "meta.k8s.io/v1"});
        if let Some(d) = self.query.get("dryRun").filter(|d| !d.is_empty()) {
            o["dryRun"] = json!([d]);
        }
        if let Some(m) = self.query.get("fieldManager").filter(|m| !m.is_empty()) {
            o["fieldManager"] = json!(m);
        }
        o
    }
}

/// GET one object.
pub async fn get(ctx: Ctx) -> ApiResult<Response<Body>> {
    if !ctx.req.subresource.is_empty() {
        return subresources::get(ctx).await;
    }
    let rv = parse_resource_version(ctx.query.str("resourceVersion"))?;
    if rv.is_none() && ctx.out == OutFormat::Json && objects::servable_as_stored(&ctx.info) {
        // Fast path: the stored bytes are the answer.
        let kv = ctx
            .state
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
    let (obj, _) = ctx.read().await?;
    if let Some(min) = rv.filter(|r| *r > 0) {
        let current = ctx
            .state
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
            let current = ctx.state.store.current_revision().await.map_err(map_err)?;
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
    loop {
        let want = limit.map(|l| l - items.len() - raw.len());
        opts.limit = want;
        let page = ctx
            .state
            .store
            .list(&prefix, opts.clone())
            .await
            .map_err(map_err)?;
        revision = if revision == 0 {
            page.revision
        } else {
            revision
        };
        for kv in &page.items {
            if ctx.info.namespaced && !ctx.req.namespace.is_empty() && !kv.key.starts_with(&prefix)
            {
                continue;
            }
            if !decode {
                raw.push(kv.clone());
                continue;
            }
            let obj = from_stored(kv)?;
            if filter.matches(&obj) {
                items.push(obj);
            }
        }
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
    let head = json!({"kind": list_kind(info), "apiVersion": info.api_version(), "metadata": meta});
    let mut out = serde_json::to_vec(&head).ok()?;
    out.pop();
    out.extend_from_slice(b",\"items\":[");
    for (i, kv) in kvs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&objects::stamp(&kv.value, kv.mod_revision)?);
    }
    out.extend_from_slice(b"]}");
    Some(out)
}

fn opts_has_continue(q: &Query) -> bool {
    q.get("continue").is_some_and(|c| !c.is_empty())
}

/// GET a collection.
pub async fn list(ctx: Ctx) -> ApiResult<Response<Body>> {
    let filter = Filter::from_query(&ctx.query, &ctx.info)?;
    let (opts, limit) = list_options(&ctx)?;
    let fast = ctx.out == OutFormat::Json && objects::servable_as_stored(&ctx.info);
    let page = list_page(&ctx, &filter, opts, limit, fast).await?;
    let mut meta = json!({"resourceVersion": page.revision.to_string()});
    if let Some(c) = &page.continue_token {
        meta["continue"] = json!(c);
        if let Some(r) = page.remaining {
            meta["remainingItemCount"] = json!(r);
        }
    }
    if fast && page.items.is_empty() {
        // Fast path: the list is written from the stored bytes, items keep apiVersion/kind.
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
    let mut items = objects::to_version_many(&ctx.info, page.items).await?;
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
                ctx.state.clock.now(),
            )
        }
        OutFormat::Metadata { version } => json!({
            "kind": "PartialObjectMetadataList",
            "apiVersion": format!("meta.k8s.io/{version}"),
            "metadata": meta,
            "items": items.iter().map(|o| encoding::partial_metadata(o, version)).collect::<Vec<_>>(),
        }),
        _ => {
            for o in items.iter_mut().filter(|_| !ctx.info.strategy.is_custom()) {
                if let Some(m) = o.as_object_mut() {
                    m.remove("apiVersion");
                    m.remove("kind");
                }
            }
            json!({"kind": list_kind(&ctx.info), "apiVersion": ctx.info.api_version(), "metadata": meta, "items": items})
        }
    };
    let fmt = if matches!(ctx.out, OutFormat::Yaml) {
        OutFormat::Yaml
    } else {
        OutFormat::Json
    };
    Ok(encoding::encode(&body, &fmt, StatusCode::OK))
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

const GENERATE_CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

pub(crate) fn generate_suffix() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..5)
        .map(|_| GENERATE_CHARS[rng.random_range(0..GENERATE_CHARS.len())] as char)
        .collect()
}

fn invalid(
    info: &ResourceInfo,
    obj: &Value,
    errs: &[kubox_apimachinery::validation::FieldError],
) -> ApiError {
    ApiError::invalid(&info.kind, &info.group, name_of(obj), errs)
}

/// A built-in object's shape against its typed definition: a value of the wrong type is a 400.
fn check_shape(info: &ResourceInfo, obj: &Value) -> ApiResult<()> {
    if info.strategy.is_custom() {
        return Ok(());
    }
    crate::typed::check_shape(&info.group, &info.kind, obj).map_err(ApiError::bad_request)
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
    let mut obj = encoding::decode_body(&ctx.body, format)?;
    check_type(&ctx.info, &mut obj)?;
    field_validation::check_body(&ctx, format, directive, &mut obj)?;
    if crate::reviews::is_virtual(&ctx.info.group, &ctx.info.resource) {
        return crate::reviews::create(&ctx, obj).await;
    }
    let dry_run = ctx.query.dry_run("CreateOptions")?;
    let obj = create_object(&ctx, obj, dry_run).await?;
    if ctx.info.strategy.settled_by_create()
        && ctx.info.api_version() == ctx.info.storage_api_version
    {
        return Ok(ctx.respond_object(StatusCode::CREATED, obj));
    }
    ctx.respond(StatusCode::CREATED, obj).await
}

/// The create path shared by POST, PUT-creates and server-side apply.
pub async fn create_object(ctx: &Ctx, mut obj: Value, dry_run: bool) -> ApiResult<Value> {
    let info = &ctx.info;
    // Namespace: from the URL, and the body must agree.
    if info.namespaced {
        let body_ns = namespace_of(&obj).to_string();
        if !body_ns.is_empty() && body_ns != ctx.req.namespace {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        obj["metadata"]["namespace"] = json!(ctx.req.namespace);
    } else if let Some(m) = obj["metadata"].as_object_mut() {
        if m.get("namespace").and_then(Value::as_str) == Some("") {
            m.remove("namespace");
        }
    }
    if name_of(&obj).is_empty() {
        if let Some(gen) = obj["metadata"]["generateName"]
            .as_str()
            .filter(|g| !g.is_empty())
        {
            obj["metadata"]["name"] = json!(format!("{gen}{}", generate_suffix()));
        }
    }
    let mut obj = objects::to_write_version(info, obj).await?;
    // A value of the wrong type is a 400 before defaulting or admission work on the object
    // (kube decodes into typed objects first); validation checks again what admission made.
    check_shape(info, &obj)?;
    let now = ctx.state.clock.now();
    {
        let meta = &mut obj["metadata"];
        meta["uid"] = json!(uuid::Uuid::new_v4().to_string());
        meta["creationTimestamp"] = json!(objects::timestamp(now));
        if let Some(m) = meta.as_object_mut() {
            m.remove("resourceVersion");
            m.remove("deletionTimestamp");
            m.remove("deletionGracePeriodSeconds");
            m.remove("selfLink");
        }
    }
    info.strategy.default(&mut obj);
    let name = name_of(&obj).to_string();
    let mut attrs = ctx.attributes(
        Operation::Create,
        &name,
        Some(obj),
        None,
        dry_run,
        ctx.write_options("CreateOptions"),
    );
    ctx.state.admission.admit(&ctx.state, &mut attrs).await?;
    let mut obj = attrs.object.take().unwrap_or_default();
    info.strategy.prepare_for_create(&mut obj);
    crate::authz::escalation::check(ctx, &obj, None)?;
    let errs = info
        .strategy
        .validate(&obj)
        .map_err(ApiError::bad_request)?;
    if !errs.is_empty() {
        return Err(invalid(info, &obj, &errs));
    }
    let name = name_of(&obj).to_string();
    attrs.name = name.clone();
    attrs.object = Some(obj);
    ctx.state.admission.validate(&ctx.state, &attrs).await?;
    let mut obj = attrs.object.take().unwrap_or_default();
    if dry_run {
        crate::allocators::on_create(ctx, &mut obj).await?;
        return Ok(obj);
    }
    let stored = async {
        crate::allocators::on_create(ctx, &mut obj).await?;
        let key = info.key(&ctx.req.namespace, &name);
        let stored = to_stored(&to_storage_version(info, obj.clone()).await?)?;
        ctx.state
            .store
            .create(&key, stored)
            .await
            .map_err(|e| status::from_store(e, &ctx.gr(), &name))
    }
    .await;
    let kv = match stored {
        Ok(kv) => kv,
        Err(e) => {
            // Admission charged the namespace's quotas with this object: count them again.
            if info.namespaced {
                crate::admission::sync_quotas(&ctx.state, info, &ctx.req.namespace, true).await;
            }
            return Err(e);
        }
    };
    objects::set_resource_version(&mut obj, kv.mod_revision);
    after_write(ctx, kv.mod_revision, false).await;
    Ok(obj)
}

/// Writes to CRDs return once the CRD controller has seen them, so the API they define is served
/// (or gone) when the client gets its answer; writes to RBAC objects once the authorizer's index
/// has them, so the next request is decided with them. Quotas in the namespace report the new
/// usage before the client gets its answer.
async fn after_write(ctx: &Ctx, rev: i64, released: bool) {
    if ctx.info.group == "apiextensions.k8s.io" && ctx.info.resource == "customresourcedefinitions"
    {
        ctx.state.crds.wait_for(rev).await;
    }
    if ctx.info.group == crate::authz::rbac::GROUP {
        ctx.state.rbac.wait_for(rev).await;
    }
    if ctx.info.namespaced && ctx.req.subresource.is_empty() {
        crate::admission::sync_quotas(&ctx.state, &ctx.info, &ctx.req.namespace, released).await;
    }
}

/// PUT a replacement object.
pub async fn update(ctx: Ctx) -> ApiResult<Response<Body>> {
    if ctx.req.subresource == "scale" {
        return subresources::update_scale(ctx).await;
    }
    if !ctx.req.subresource.is_empty()
        && !matches!(ctx.req.subresource.as_str(), "status" | "finalize")
    {
        return Err(ApiError::method_not_supported(&ctx.gr(), "update"));
    }
    if !ctx.info.has_verb("update") {
        return Err(ApiError::method_not_supported(&ctx.gr(), "update"));
    }
    let format = encoding::content_format(&ctx.headers)?;
    ctx.query.validate_write_options("UpdateOptions", None)?;
    let directive = field_validation::directive(&ctx.query, "UpdateOptions")?;
    let mut obj = encoding::decode_body(&ctx.body, format)?;
    check_type(&ctx.info, &mut obj)?;
    field_validation::check_body(&ctx, format, directive, &mut obj)?;
    let body_name = name_of(&obj).to_string();
    if body_name.is_empty() {
        obj["metadata"]["name"] = json!(ctx.req.name);
    } else if body_name != ctx.req.name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({})",
            ctx.req.name
        )));
    }
    let dry_run = ctx.query.dry_run("UpdateOptions")?;
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
    let new = objects::to_write_version(&ctx.info, obj).await?;
    // Without a resourceVersion an update of a built-in is unconditional: a race with another
    // writer is retried on the newer object, as kube's GuaranteedUpdate does.
    let unconditional = expected.is_none_or(|e| e == 0) && !ctx.info.strategy.is_custom();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let (old, old_kv) = match ctx.read().await {
            Ok(found) => found,
            Err(e)
                if e.code == StatusCode::NOT_FOUND
                    && ctx.info.strategy.allow_create_on_update()
                    && ctx.req.subresource.is_empty() =>
            {
                let created = create_object(&ctx, new, dry_run).await?;
                return ctx.respond(StatusCode::CREATED, created).await;
            }
            Err(e) => return Err(e),
        };
        if let Some(exp) = expected.filter(|e| *e > 0) {
            if exp != old_kv.mod_revision {
                return Err(ApiError::stale_update(&ctx.gr(), &ctx.req.name));
            }
        }
        match update_object(&ctx, new.clone(), old, old_kv.mod_revision, dry_run).await {
            Ok((obj, _)) => return ctx.respond(StatusCode::OK, obj).await,
            Err(e)
                if unconditional
                    && attempts < UNCONDITIONAL_RETRIES
                    && e.code == StatusCode::CONFLICT
                    && e.reason == "Conflict" => {}
            Err(e) => return Err(e),
        }
    }
}

/// How often an unconditional update is tried against a newer object before the conflict is
/// reported.
const UNCONDITIONAL_RETRIES: usize = 16;

/// Write an updated object over `old` (as stored), which was read at `old_rev`. Both are
/// brought to the write version ([`objects::to_write_version`]) first. Returns the object
/// written, at that version, and whether it still exists (false when the last finalizer went).
pub async fn update_object(
    ctx: &Ctx,
    new: Value,
    old: Value,
    old_rev: i64,
    dry_run: bool,
) -> ApiResult<(Value, bool)> {
    let info = &ctx.info;
    let mut new = objects::to_write_version(info, new).await?;
    let old = objects::to_write_version(info, old).await?;
    // System fields come from the old object: identity when the client left it out, deletion
    // state always (an update cannot set or clear it).
    for k in ["uid", "creationTimestamp", "namespace"] {
        let given = new["metadata"]
            .get(k)
            .is_some_and(|v| !v.is_null() && *v != json!(""));
        if !given {
            objects::set_or_remove(&mut new["metadata"], k, old["metadata"].get(k).cloned());
        }
    }
    for k in ["deletionTimestamp", "deletionGracePeriodSeconds"] {
        objects::set_or_remove(&mut new["metadata"], k, old["metadata"].get(k).cloned());
    }
    objects::set_resource_version(&mut new, old_rev);
    check_shape(info, &new)?;
    info.strategy.default(&mut new);
    let mut old_for_admission = old.clone();
    objects::set_resource_version(&mut old_for_admission, old_rev);
    let mut attrs = ctx.attributes(
        Operation::Update,
        name_of(&old),
        Some(new),
        Some(old_for_admission),
        dry_run,
        ctx.write_options("UpdateOptions"),
    );
    ctx.state.admission.admit(&ctx.state, &mut attrs).await?;
    let mut new = attrs.object.take().unwrap_or_default();
    info.strategy
        .prepare_for_update(&mut new, &old, &ctx.req.subresource);
    crate::authz::escalation::check(ctx, &new, Some(&old))?;
    let mut errs = info
        .strategy
        .validate_update(&new, &old)
        .map_err(ApiError::bad_request)?;
    let deleting = old["metadata"]
        .get("deletionTimestamp")
        .is_some_and(|v| !v.is_null());
    if deleting {
        let old_f: Vec<&Value> = old["metadata"]["finalizers"]
            .as_array()
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        if let Some(new_f) = new["metadata"]["finalizers"].as_array() {
            if new_f.iter().any(|f| !old_f.contains(&f)) {
                errs.push(kubox_apimachinery::validation::FieldError::forbidden(
                    "metadata.finalizers",
                    "no new finalizers can be added if the object is being deleted",
                ));
            }
        }
    }
    if !errs.is_empty() {
        return Err(invalid(info, &new, &errs));
    }
    attrs.object = Some(new);
    ctx.state.admission.validate(&ctx.state, &attrs).await?;
    let mut new = attrs.object.take().unwrap_or_default();
    let name = name_of(&new).to_string();
    let key = info.key(&ctx.req.namespace, &name);
    let gr = ctx.gr();
    let is_namespace = info.kind == "Namespace" && info.group.is_empty();
    let no_finalizers = new["metadata"]["finalizers"]
        .as_array()
        .is_none_or(|a| a.is_empty())
        && (!is_namespace
            || new["spec"]["finalizers"]
                .as_array()
                .is_none_or(|a| a.is_empty()));
    if deleting && no_finalizers {
        if dry_run {
            return Ok((new, false));
        }
        let (_, rev) = ctx
            .state
            .store
            .delete(&key, Some(old_rev))
            .await
            .map_err(|e| status::from_store(e, &gr, &name))?;
        objects::set_resource_version(&mut new, rev);
        return Ok((new, false));
    }
    // A no-op update writes nothing and keeps the resourceVersion.
    let mut old_cmp = old.clone();
    objects::set_resource_version(&mut old_cmp, old_rev);
    let mut new_cmp = new.clone();
    objects::set_resource_version(&mut new_cmp, old_rev);
    if old_cmp == new_cmp || dry_run {
        objects::set_resource_version(&mut new, old_rev);
        return Ok((new, true));
    }
    let stored = to_stored(&to_storage_version(info, new.clone()).await?)?;
    let kv = ctx
        .state
        .store
        .update(&key, stored, Some(old_rev))
        .await
        .map_err(|e| status::from_store(e, &gr, &name))?;
    objects::set_resource_version(&mut new, kv.mod_revision);
    after_write(ctx, kv.mod_revision, false).await;
    Ok((new, true))
}

/// PATCH an object (JSON patch, merge patch, strategic merge patch, apply).
pub async fn patch(ctx: Ctx) -> ApiResult<Response<Body>> {
    patch::patch(ctx).await
}

/// Parse DeleteOptions from the body and the query.
fn delete_options(ctx: &Ctx) -> ApiResult<Value> {
    let mut opts = if ctx.body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        let format = encoding::content_format(&ctx.headers)?;
        encoding::decode_body(&ctx.body, format)?
    };
    if let Some(p) = ctx.query.get("propagationPolicy") {
        opts["propagationPolicy"] = json!(p);
    }
    if let Some(g) = ctx.query.int("gracePeriodSeconds")? {
        opts["gracePeriodSeconds"] = json!(g);
    }
    if let Some(o) = ctx.query.get("orphanDependents") {
        opts["orphanDependents"] = json!(crate::request_info::kube_bool(o));
    }
    if opts["orphanDependents"].is_boolean() && opts["propagationPolicy"].is_string() {
        return Err(ApiError::invalid(
            "DeleteOptions",
            "",
            "",
            &[kubox_apimachinery::validation::FieldError::invalid(
                "propagationPolicy",
                opts["propagationPolicy"].as_str().unwrap_or_default(),
                "orphanDependents and deletionPropagation cannot be both set",
            )],
        ));
    }
    if let Some(p) = opts.get("propagationPolicy").and_then(Value::as_str) {
        if !matches!(p, "Orphan" | "Background" | "Foreground") {
            return Err(ApiError::invalid(
                "DeleteOptions",
                "",
                "",
                &[kubox_apimachinery::validation::FieldError::not_supported(
                    "propagationPolicy",
                    p,
                    &["Foreground", "Background", "Orphan", "nil"],
                )],
            ));
        }
    }
    Ok(opts)
}

/// DELETE one object.
pub async fn delete(ctx: Ctx) -> ApiResult<Response<Body>> {
    if !ctx.req.subresource.is_empty() || !ctx.info.has_verb("delete") {
        return Err(ApiError::method_not_supported(&ctx.gr(), "delete"));
    }
    let opts = delete_options(&ctx)?;
    let dry_run = ctx.query.dry_run("DeleteOptions")?
        || opts["dryRun"]
            .as_array()
            .is_some_and(|a| a.contains(&json!("All")));
    let (obj, deleted) = delete_object(&ctx, &ctx.req.name, &opts, dry_run).await?;
    if !deleted {
        // Deletion waits on finalizers: the object comes back with 200, as kube-apiserver answers
        // (202 only when orphanDependents=false was asked for).
        let code = if opts["orphanDependents"] == json!(false) {
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
    Ok(encoding::encode(&status, &ctx.out_plain(), StatusCode::OK))
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
}

/// Delete one object by name; returns the object and whether it is gone (false = finalizers wait).
pub async fn delete_object(
    ctx: &Ctx,
    name: &str,
    opts: &Value,
    dry_run: bool,
) -> ApiResult<(Value, bool)> {
    let key = ctx.info.key(&ctx.req.namespace, name);
    let gr = ctx.gr();
    let kv = ctx
        .state
        .store
        .get(&key, None)
        .await
        .map_err(|e| status::from_store(e, &gr, name))?;
    let mut obj = from_stored(&kv)?;
    let pre = &opts["preconditions"];
    if let Some(uid) = pre["uid"].as_str() {
        if obj["metadata"]["uid"].as_str() != Some(uid) {
            return Err(ApiError::conflict(
                &gr,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    obj["metadata"]["uid"].as_str().unwrap_or_default()
                ),
            ));
        }
    }
    if let Some(rv) = pre["resourceVersion"].as_str() {
        if rv != kv.mod_revision.to_string() {
            return Err(ApiError::conflict(
                &gr,
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    kv.mod_revision
                ),
            ));
        }
    }
    let is_namespace = ctx.info.kind == "Namespace" && ctx.info.group.is_empty();
    let mut options = opts.clone();
    options["kind"] = json!("DeleteOptions");
    options["apiVersion"] = json!("meta.k8s.io/v1");
    let mut old = obj.clone();
    objects::set_resource_version(&mut old, kv.mod_revision);
    let mut attrs = ctx.attributes(Operation::Delete, name, None, Some(old), dry_run, options);
    ctx.state.admission.admit(&ctx.state, &mut attrs).await?;
    ctx.state.admission.validate(&ctx.state, &attrs).await?;
    let deleting = obj["metadata"]
        .get("deletionTimestamp")
        .is_some_and(|v| !v.is_null());
    let now = json!(objects::timestamp(ctx.state.clock.now()));
    if is_namespace
        && (!deleting
            || obj["spec"]["finalizers"]
                .as_array()
                .is_some_and(|a| !a.is_empty()))
    {
        // kube's namespace REST: the first delete turns the namespace Terminating (the namespace
        // controller empties and finalizes it); later ones wait while spec.finalizers remain.
        if deleting {
            return Ok((obj, false));
        }
        obj["metadata"]["deletionTimestamp"] = now;
        obj["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        obj["status"]["phase"] = json!("Terminating");
        if let Some(f) = crate::controllers::gc::namespace_deletion_finalizers(
            ctx.state.garbage_collection,
            &obj,
            opts,
        ) {
            obj["metadata"]["finalizers"] = json!(f);
        }
        if dry_run {
            return Ok((obj, false));
        }
        let new = ctx
            .state
            .store
            .update(&key, to_stored(&obj)?, Some(kv.mod_revision))
            .await
            .map_err(|e| status::from_store(e, &gr, name))?;
        objects::set_resource_version(&mut obj, new.mod_revision);
        return Ok((obj, false));
    }
    // The garbage collector's finalizers for the propagation asked for (or the default).
    let gc_changed = match crate::controllers::gc::deletion_finalizers(
        ctx.state.garbage_collection,
        &ctx.info,
        &obj,
        opts,
    ) {
        Some(f) => {
            obj["metadata"]["finalizers"] = json!(f);
            true
        }
        None => false,
    };
    let has_finalizers = obj["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|a| !a.is_empty());
    if has_finalizers {
        if deleting && !gc_changed {
            return Ok((obj, false));
        }
        if !deleting {
            obj["metadata"]["deletionTimestamp"] = now;
            obj["metadata"]["deletionGracePeriodSeconds"] = json!(0);
            // kube's markAsDeleting: generation moves when deletion starts.
            if let Some(g) = obj["metadata"]["generation"].as_i64().filter(|g| *g > 0) {
                obj["metadata"]["generation"] = json!(g + 1);
            }
        }
        if dry_run {
            return Ok((obj, false));
        }
        let new = ctx
            .state
            .store
            .update(&key, to_stored(&obj)?, Some(kv.mod_revision))
            .await
            .map_err(|e| status::from_store(e, &gr, name))?;
        objects::set_resource_version(&mut obj, new.mod_revision);
        after_write(ctx, new.mod_revision, true).await;
        // A CRD whose custom resources are already gone is released by the controller.
        if ctx.info.resource == "customresourcedefinitions" {
            if let Err(kubox_storage::StoreError::NotFound(_)) =
                ctx.state.store.get(&key, None).await
            {
                return Ok((obj, true));
            }
        }
        return Ok((obj, false));
    }
    if dry_run {
        return Ok((obj, true));
    }
    let (_, rev) = ctx
        .state
        .store
        .delete(&key, Some(kv.mod_revision))
        .await
        .map_err(|e| status::from_store(e, &gr, name))?;
    after_write(ctx, rev, true).await;
    Ok((obj, true))
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
    let opts = delete_options(&ctx)?;
    let dry_run = ctx.query.dry_run("DeleteOptions")?;
    let (list_opts, _) = list_options(&ctx)?;
    let page = list_page(&ctx, &filter, list_opts, None, false).await?;
    let mut deleted = Vec::new();
    for obj in page.items {
        let name = name_of(&obj).to_string();
        let ns = namespace_of(&obj).to_string();
        let sub = Ctx {
            state: ctx.state.clone(),
            info: ctx.info.clone(),
            req: RequestInfo {
                namespace: ns,
                name: name.clone(),
                ..ctx.req.clone()
            },
            headers: ctx.headers.clone(),
            query: ctx.query.clone(),
            body: Bytes::new(),
            out: ctx.out.clone(),
            user: ctx.user.clone(),
        };
        match delete_object(&sub, &name, &opts, dry_run).await {
            Ok((o, _)) => deleted.push(o),
            Err(e) if e.code == StatusCode::NOT_FOUND => {}
            Err(e) => return Err(e),
        }
    }
    let rev = ctx
        .state
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
    let body = json!({"kind": list_kind(&ctx.info), "apiVersion": ctx.info.api_version(), "metadata": {"resourceVersion": rev.to_string()}, "items": deleted});
    Ok(encoding::encode(&body, &ctx.out_plain(), StatusCode::OK))
}
