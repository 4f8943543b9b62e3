//! PATCH: JSON patch (RFC 6902), JSON merge patch (RFC 7386), strategic merge patch (built-ins),
//! and apply (`application/apply-patch+yaml`).
//!
//! A patch is applied to the object at the request's version, then written with the same
//! machinery as an update, retrying on a lost race unless the patch pins a resourceVersion.
//! Apply is served without field ownership for now: it creates a missing object, and otherwise
//! merges the applied configuration like a strategic merge patch (a merge patch for custom
//! resources); managedFields are not tracked.

use http::{Response, StatusCode};
use serde_json::Value;

use crate::body::Body;
use crate::encoding::{self, InFormat};
use crate::field_validation;
use crate::handlers::{check_type, Ctx};
use crate::objects::{name_of, to_version};
use crate::registry::store::{self, CreateOptions};
use crate::status::{ApiError, ApiResult};
use crate::subresources;

/// The patch types kube-apiserver accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// application/json-patch+json
    Json,
    /// application/merge-patch+json
    Merge,
    /// application/strategic-merge-patch+json
    Strategic,
    /// application/apply-patch+yaml (or +json / +cbor)
    Apply,
}

fn patch_type(ctx: &Ctx) -> ApiResult<PatchType> {
    let ct = ctx
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = encoding::parse_media_types(ct)
        .first()
        .map(|m| m.essence.clone())
        .unwrap_or_default();
    match essence.as_ref() {
        "application/json-patch+json" => Ok(PatchType::Json),
        "application/merge-patch+json" => Ok(PatchType::Merge),
        "application/strategic-merge-patch+json" => Ok(PatchType::Strategic),
        "application/apply-patch+yaml" | "application/apply-patch+json" => Ok(PatchType::Apply),
        _ => Err(ApiError::unsupported_media_type(ct)),
    }
}

/// A `test` of `null` at a path that is absent from an existing object or list passes, as in
/// kube-apiserver's JSON patch (kube-rs' finalizer helper sends it before adding the first
/// finalizer).
fn tests_absent_as_null(doc: &Value, op: &json_patch::PatchOperation) -> bool {
    let json_patch::PatchOperation::Test(t) = op else {
        return false;
    };
    if !t.value.is_null() {
        return false;
    }
    let path = t.path.as_str();
    let parent = path.rfind('/').map(|i| &path[..i]);
    doc.pointer(path).is_none()
        && parent.is_some_and(|p| {
            doc.pointer(p)
                .is_some_and(|v| v.is_object() || v.is_array())
        })
}

/// Apply one patch document to an object (both at the request's version). The flag: whether the
/// patch document may repeat a key (what strict field validation reports); only merge and
/// strategic merge patches are known not to.
pub fn apply_patch(
    ctx: &Ctx,
    ty: PatchType,
    current: &Value,
    body: &[u8],
) -> ApiResult<(Value, bool)> {
    let patched = match ty {
        PatchType::Json => {
            let ops: json_patch::Patch = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            if ops.0.len() > MAX_JSON_PATCH_OPERATIONS {
                return Err(ApiError::entity_too_large(format!(
                    "The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, got {}",
                    ops.0.len()
                )));
            }
            let mut doc = current.clone();
            let mut bounds = JsonPatchBounds::default();
            for (i, op) in ops.0.iter().enumerate() {
                if tests_absent_as_null(&doc, op) {
                    continue;
                }
                bounds.charge(&doc, op)?;
                json_patch::patch_unsafe(&mut doc, std::slice::from_ref(op)).map_err(|e| {
                    unprocessable(format!(
                        "operation '/{i}' failed at path '{}': {}",
                        e.path, e.kind
                    ))
                })?;
            }
            (doc, true)
        }
        PatchType::Merge => {
            let (p, repeated) = patch_doc(body)?;
            let mut doc = current.clone();
            json_patch::merge(&mut doc, &p);
            (doc, repeated)
        }
        PatchType::Strategic => {
            let (p, repeated) = patch_doc(body)?;
            let Some(meta) = ctx.info.strategy.patch_meta() else {
                return Err(ApiError::unsupported_media_type(
                    "application/strategic-merge-patch+json",
                ));
            };
            let doc =
                kubox_apimachinery::strategic::apply_strategic_merge_patch(current, &p, &meta)
                    .map_err(strategic_error)?;
            (doc, repeated)
        }
        PatchType::Apply => {
            let p = encoding::decode_body(body, InFormat::Yaml)?;
            // Server-side apply merges by the object's schema (list and map types), built-in
            // and custom resources alike, as structured-merge-diff does.
            let doc = match ctx.info.schema() {
                Some(schema) => kubox_apimachinery::fieldpath::merge(current, &p, schema),
                None => kubox_apimachinery::fieldpath::merge(
                    current,
                    &p,
                    &kubox_apimachinery::fieldpath::Untyped,
                ),
            };
            (doc, true)
        }
    };
    Ok(patched)
}

/// kube-apiserver's bound on the operations of one JSON patch (413 beyond it).
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;
/// kube-apiserver's bound on what the `copy` operations of one JSON patch may add in all, in
/// bytes of JSON (`JSONPatchMaxCopyBytes`, the request body limit; 422 beyond it).
pub const MAX_JSON_PATCH_COPY_BYTES: usize = crate::server::MAX_BODY_BYTES;
/// The most array items one JSON patch may shift (an `add`, `remove` or `move` inside an array
/// shifts the items after it): 10,000 operations on an array of 10,000 items.
pub const MAX_JSON_PATCH_SHIFTS: usize = 100_000_000;

/// What a JSON patch has cost so far.
#[derive(Default)]
struct JsonPatchBounds {
    copied: usize,
    shifted: usize,
}

impl JsonPatchBounds {
    /// Charge `op` against the bounds before it is applied to `doc`.
    fn charge(&mut self, doc: &Value, op: &json_patch::PatchOperation) -> ApiResult<()> {
        use json_patch::PatchOperation as Op;
        let (paths, copy_from): (&[&str], Option<&str>) = match op {
            Op::Add(o) => (&[o.path.as_str()], None),
            Op::Remove(o) => (&[o.path.as_str()], None),
            Op::Move(o) => (&[o.from.as_str(), o.path.as_str()], None),
            Op::Copy(o) => (&[o.path.as_str()], Some(o.from.as_str())),
            Op::Replace(_) | Op::Test(_) => (&[], None),
        };
        for path in paths {
            let parent = path.rfind('/').map_or("", |i| &path[..i]);
            if let Some(Value::Array(items)) = doc.pointer(parent) {
                self.shifted = self.shifted.saturating_add(items.len());
            }
        }
        if self.shifted > MAX_JSON_PATCH_SHIFTS {
            return Err(ApiError::entity_too_large(format!(
                "the JSON patch shifts more than {MAX_JSON_PATCH_SHIFTS} array items"
            )));
        }
        if let Some(value) = copy_from.and_then(|from| doc.pointer(from)) {
            let room = MAX_JSON_PATCH_COPY_BYTES.saturating_sub(self.copied);
            let size = json_size_within(value, room).unwrap_or(room.saturating_add(1));
            self.copied = self.copied.saturating_add(size);
            if self.copied > MAX_JSON_PATCH_COPY_BYTES {
                return Err(unprocessable(format!(
                    "Unable to complete the copy, the accumulated size increase of copy is more than the limit {MAX_JSON_PATCH_COPY_BYTES}"
                )));
            }
        }
        Ok(())
    }
}

/// The size of `value` as compact JSON, or `None` when it is over `limit` (counted without
/// writing more than `limit` bytes anywhere).
fn json_size_within(value: &Value, limit: usize) -> Option<usize> {
    struct Counter {
        n: usize,
        limit: usize,
    }
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.n = self.n.saturating_add(buf.len());
            if self.n > self.limit {
                return Err(std::io::Error::other("over the limit"));
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Counter { n: 0, limit };
    serde_json::to_writer(&mut c, value).ok()?;
    Some(c.n)
}

/// A strategic merge patch (or apply) error as kube-apiserver answers it.
fn strategic_error(e: kubox_apimachinery::strategic::StrategicMergeError) -> ApiError {
    match e.status_code() {
        413 => ApiError::entity_too_large(e.message()),
        422 => unprocessable(e.message().to_string()),
        _ => ApiError::bad_request(e.message()),
    }
}

fn unprocessable(message: String) -> ApiError {
    let mut e = ApiError::bad_request(message);
    e.code = StatusCode::UNPROCESSABLE_ENTITY;
    e.reason = "Invalid";
    e
}

/// A merge patch document, and whether it repeats a key.
fn patch_doc(body: &[u8]) -> ApiResult<(Value, bool)> {
    let (v, repeated) = crate::json_decode::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
    if !v.is_object() {
        return Err(ApiError::bad_request(format!(
            "error decoding patch: json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            encoding::json_type(&v)
        )));
    }
    Ok((v, repeated))
}

const MAX_RETRIES: usize = 8;

/// PATCH handler.
pub async fn patch(ctx: Ctx) -> ApiResult<Response<Body>> {
    if !ctx.info.has_verb("patch") {
        return Err(ApiError::method_not_supported(
            &ctx.info.group_resource(),
            "patch",
        ));
    }
    let ty = patch_type(&ctx)?;
    if ctx.body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "the body of the request was empty; a patch is required",
        ));
    }
    ctx.query
        .validate_write_options("PatchOptions", Some(ty == PatchType::Apply))?;
    let mut opts = ctx.update_options_as("PatchOptions")?;
    if ty == PatchType::Apply {
        // The configuration applied: what the applier owns afterwards.
        opts.applied = encoding::decode_body(&ctx.body, InFormat::Yaml).ok();
    }
    let dry_run = opts.dry_run;
    let directive = field_validation::directive(&ctx.query, "PatchOptions")?;
    if ctx.req.subresource == "scale" {
        return subresources::patch_scale(ctx, ty, dry_run).await;
    }
    if !ctx.req.subresource.is_empty()
        && !matches!(
            ctx.req.subresource.as_str(),
            "status" | "ephemeralcontainers" | "approval" | "resize"
        )
    {
        return Err(ApiError::method_not_supported(
            &ctx.info.group_resource(),
            "patch",
        ));
    }
    for _ in 0..MAX_RETRIES {
        let (stored, kv) = match ctx.read().await {
            Ok(found) => found,
            Err(e)
                if e.code == StatusCode::NOT_FOUND
                    && ty == PatchType::Apply
                    && ctx.req.subresource.is_empty() =>
            {
                let mut obj = encoding::decode_body(&ctx.body, InFormat::Yaml)?;
                check_type(&ctx.info, &mut obj)?;
                field_validation::check_applied(&ctx)?;
                if name_of(&obj) != ctx.req.name {
                    return Err(ApiError::bad_request(format!(
                        "the name of the object ({}) does not match the name on the URL ({})",
                        name_of(&obj),
                        ctx.req.name
                    )));
                }
                let created =
                    store::create(&ctx.scope(), obj, &CreateOptions::from_update(&opts)).await?;
                return ctx.respond(StatusCode::CREATED, created).await;
            }
            Err(e) => return Err(e),
        };
        let current = to_version(&ctx.info, stored.clone()).await?;
        if ty == PatchType::Apply {
            // structured-merge-diff types the applied configuration, then the live object.
            field_validation::check_applied(&ctx)?;
            field_validation::check_live(&ctx, &current)?;
        }
        let (mut patched, maybe_repeated) =
            if ctx.body.len() + kv.value.len() >= encoding::LARGE_BODY {
                encoding::cpu_heavy(|| apply_patch(&ctx, ty, &current, &ctx.body))?
            } else {
                apply_patch(&ctx, ty, &current, &ctx.body)?
            };
        if patched.get("kind") != current.get("kind")
            || patched.get("apiVersion") != current.get("apiVersion")
        {
            return Err(ApiError::bad_request(
                "the kind and apiVersion of an object cannot be changed by a patch",
            ));
        }
        if name_of(&patched) != ctx.req.name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({})",
                name_of(&patched),
                ctx.req.name
            )));
        }
        if ty != PatchType::Apply {
            field_validation::check_patched(&ctx, ty, directive, maybe_repeated, &mut patched)?;
        }
        // A resourceVersion in the patched result is a precondition.
        let pinned = patched["metadata"]["resourceVersion"]
            .as_str()
            .map(str::to_string);
        let pinned_by_patch = pinned.as_deref() != current["metadata"]["resourceVersion"].as_str();
        if let Some(rv) = pinned.as_deref().filter(|_| pinned_by_patch) {
            if rv != kv.mod_revision.to_string() {
                return Err(ApiError::stale_update(
                    &ctx.info.group_resource(),
                    &ctx.req.name,
                ));
            }
        }
        if let Some(m) = patched["metadata"].as_object_mut() {
            m.remove("resourceVersion");
        }
        let new = crate::objects::to_write_version(&ctx.info, patched).await?;
        match store::update(&ctx.scope(), new, stored, kv.mod_revision, &opts).await {
            Ok((obj, _)) => return ctx.respond(StatusCode::OK, obj).await,
            Err(e)
                if e.code == StatusCode::CONFLICT
                    && e.reason == "Conflict"
                    && !pinned_by_patch
                    && !e.is_apply_conflict() =>
            {
                continue
            }
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::conflict(
        &ctx.info.group_resource(),
        &ctx.req.name,
        "the object has been modified too often while patching; please try again",
    ))
}
