//! PATCH: JSON patch (RFC 6902), JSON merge patch (RFC 7386), strategic merge patch (built-ins),
//! and apply (`application/apply-patch+yaml`).
//!
//! A patch is applied to the object at the request's version, then written with the same
//! machinery as an update, retrying on a lost race unless the patch pins a resourceVersion.
//! Apply is served without field ownership for now: it creates a missing object, and otherwise
//! merges the applied configuration like a strategic merge patch (a merge patch for custom
//! resources); managedFields are not tracked.

use http::{Response, StatusCode};
use serde_json::{json, Value};

use crate::body::Body;
use crate::encoding::{self, InFormat};
use crate::field_validation;
use crate::handlers::{self, check_type, Ctx};
use crate::objects::{name_of, to_version};
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
    match essence.as_str() {
        "application/json-patch+json" => Ok(PatchType::Json),
        "application/merge-patch+json" => Ok(PatchType::Merge),
        "application/strategic-merge-patch+json" => Ok(PatchType::Strategic),
        "application/apply-patch+yaml" | "application/apply-patch+json" => Ok(PatchType::Apply),
        _ => Err(ApiError::unsupported_media_type(ct)),
    }
}

/// Apply one patch document to an object (both at the request's version).
pub fn apply_patch(ctx: &Ctx, ty: PatchType, current: &Value, body: &[u8]) -> ApiResult<Value> {
    match ty {
        PatchType::Json => {
            let ops: json_patch::Patch = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            let mut doc = current.clone();
            json_patch::patch(&mut doc, &ops).map_err(|e| unprocessable(e.to_string()))?;
            Ok(doc)
        }
        PatchType::Merge => {
            let p = patch_doc(body)?;
            let mut doc = current.clone();
            json_patch::merge(&mut doc, &p);
            Ok(doc)
        }
        PatchType::Strategic => {
            let p = patch_doc(body)?;
            let Some(meta) = ctx.info.strategy.patch_meta() else {
                return Err(ApiError::unsupported_media_type(
                    "application/strategic-merge-patch+json",
                ));
            };
            kubox_apimachinery::strategic::apply_strategic_merge_patch(current, &p, &meta)
                .map_err(|e| ApiError::bad_request(e.to_string()))
        }
        PatchType::Apply => {
            let p = encoding::decode_body(body, InFormat::Yaml)?;
            match ctx.info.strategy.patch_meta() {
                Some(meta) => {
                    kubox_apimachinery::strategic::apply_strategic_merge_patch(current, &p, &meta)
                        .map_err(|e| ApiError::bad_request(e.to_string()))
                }
                None => {
                    let mut doc = current.clone();
                    json_patch::merge(&mut doc, &p);
                    Ok(doc)
                }
            }
        }
    }
}

fn unprocessable(message: String) -> ApiError {
    let mut e = ApiError::bad_request(message);
    e.code = StatusCode::UNPROCESSABLE_ENTITY;
    e.reason = "Invalid";
    e
}

fn patch_doc(body: &[u8]) -> ApiResult<Value> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
    if !v.is_object() {
        return Err(ApiError::bad_request(format!(
            "error decoding patch: json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            encoding::json_type(&v)
        )));
    }
    Ok(v)
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
    let dry_run = ctx.query.dry_run()?;
    let directive = field_validation::directive(&ctx.query, "PatchOptions")?;
    if ty == PatchType::Apply && ctx.query.str("fieldManager").is_empty() {
        return Err(unprocessable_manager());
    }
    if ctx.req.subresource == "scale" {
        return subresources::patch_scale(ctx, ty, dry_run).await;
    }
    if !ctx.req.subresource.is_empty() && ctx.req.subresource != "status" {
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
                let created = handlers::create_object(&ctx, obj, dry_run).await?;
                return ctx.respond(StatusCode::CREATED, created).await;
            }
            Err(e) => return Err(e),
        };
        let current = to_version(&ctx.info, stored.clone()).await?;
        let mut patched = apply_patch(&ctx, ty, &current, &ctx.body)?;
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
        if ty == PatchType::Apply {
            field_validation::check_applied(&ctx)?;
        } else {
            field_validation::check_patched(&ctx, ty, directive, &mut patched)?;
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
        match handlers::update_object(&ctx, new, stored, kv.mod_revision, dry_run).await {
            Ok((obj, _)) => return ctx.respond(StatusCode::OK, obj).await,
            Err(e)
                if e.code == StatusCode::CONFLICT && e.reason == "Conflict" && !pinned_by_patch =>
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

fn unprocessable_manager() -> ApiError {
    let mut e = ApiError::bad_request("PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch");
    e.code = StatusCode::UNPROCESSABLE_ENTITY;
    e.reason = "Invalid";
    e.details = Some(
        json!({"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [{"reason": "FieldValueRequired", "message": "Required value: is required for apply patch", "field": "fieldManager"}]}),
    );
    e
}
