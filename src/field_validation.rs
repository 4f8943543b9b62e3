//! `fieldValidation` (Strict | Warn | Ignore) on create, update and patch.
//!
//! kube-apiserver decodes built-in objects into Go structs: undeclared fields are always
//! dropped; its strict decoder reports them and duplicated fields, which `Strict` turns into a
//! 400 (`Deployment in version "v1" cannot be handled as a Deployment: strict decoding error:
//! unknown field "spec.foo"`), `Warn` (the default) into `Warning` headers, and `Ignore` drops
//! silently. kubox prunes with the kind's schema from `kubox-openapi`; custom resources with their CRD
//! version's structural schema, with the same messages (as kube-apiserver's pruning reports).

use serde_json::Value;

use kubox_apimachinery::validation::FieldError;
use kubox_openapi::OrderedValue;

use crate::encoding::{self, InFormat};
use crate::handlers::Ctx;
use crate::patch::PatchType;
use crate::query::Query;
use crate::status::{ApiError, ApiResult};
use crate::warning;

/// What to do with unknown and duplicate fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Directive {
    /// Drop them silently.
    Ignore,
    /// Drop them and warn (`Warning` headers): the default.
    Warn,
    /// Refuse the request.
    Strict,
}

/// The request's `fieldValidation`; any other value than `Ignore`, `Warn`, `Strict` (or none)
/// is kube-apiserver's 422 for the request's options kind (`CreateOptions`, `UpdateOptions`,
/// `PatchOptions`).
pub fn directive(query: &Query, options_kind: &str) -> ApiResult<Directive> {
    match query.get("fieldValidation") {
        None | Some("") | Some("Warn") => Ok(Directive::Warn),
        Some("Strict") => Ok(Directive::Strict),
        Some("Ignore") => Ok(Directive::Ignore),
        Some(other) => Err(ApiError::invalid(
            options_kind,
            "meta.k8s.io",
            "",
            &[FieldError::not_supported(
                "fieldValidation",
                other,
                &["", "Ignore", "Strict", "Warn"],
            )],
        )),
    }
}

/// A decoded create or update body (at the request's version, apiVersion and kind checked):
/// drop undeclared fields; with `Strict` refuse them and duplicated fields (400), with `Warn`
/// warn about them, in the order and words of kube's strict decoder. `maybe_repeated`: whether
/// the body may repeat a key (see [`encoding::Decoded`]); a body that repeats none and has no
/// undeclared field is parsed once.
pub fn check_body(
    ctx: &Ctx,
    format: InFormat,
    directive: Directive,
    maybe_repeated: bool,
    obj: &mut Value,
) -> ApiResult<()> {
    let Some(schema) = ctx.info.schema() else {
        return Ok(());
    };
    let removed = kubox_openapi::prune(schema, obj);
    if directive == Directive::Ignore || (removed.is_empty() && !maybe_repeated) {
        return Ok(());
    }
    // Something to report: its words and order come from the document as sent.
    let doc: Option<OrderedValue> = match format {
        InFormat::Json => serde_json::from_slice(&ctx.body).ok(),
        InFormat::Yaml => crate::encoding::from_yaml(&ctx.body).ok(),
        // Protobuf has no strict decoding: unknown fields are dropped silently.
        InFormat::Protobuf => None,
    };
    let errors = doc
        .map(|d| kubox_openapi::strict_errors(schema, &d))
        .unwrap_or_default();
    if errors.is_empty() {
        return Ok(());
    }
    if directive == Directive::Strict {
        // A value of the wrong type is the error Go's decoder reports instead.
        crate::typed::check_shape(&ctx.info.group, &ctx.info.kind, obj)
            .map_err(ApiError::bad_request)?;
        let kind = &ctx.info.kind;
        return Err(ApiError::bad_request(format!(
            "{kind} in version \"{}\" cannot be handled as a {kind}: {}",
            ctx.info.version,
            kubox_openapi::strict_decoding_error(&errors)
        )));
    }
    errors.into_iter().for_each(warning::add);
    Ok(())
}

/// A patched object (at the request's version) of a JSON, merge or strategic merge patch:
/// drop undeclared fields; with `Strict` refuse them and fields duplicated in the patch (422,
/// `patch: Invalid value: …: strict decoding error: …`), with `Warn` warn. `maybe_repeated`:
/// whether the patch document may repeat a key (see [`crate::patch::apply_patch`]).
pub fn check_patched(
    ctx: &Ctx,
    ty: PatchType,
    directive: Directive,
    maybe_repeated: bool,
    patched: &mut Value,
) -> ApiResult<()> {
    let Some(schema) = ctx.info.schema() else {
        return Ok(());
    };
    // Strict's message quotes the patched object before pruning (a strategic patch's quotes
    // the patch instead).
    let before =
        (directive == Directive::Strict && ty != PatchType::Strategic).then(|| patched.clone());
    let removed = kubox_openapi::prune(schema, patched);
    if directive == Directive::Ignore || (removed.is_empty() && !maybe_repeated) {
        return Ok(());
    }
    // Duplicates in the patch document come first (kube's `appliedStrictErrs`); JSON patch
    // operations are decoded as maps of raw values, so only their own keys count.
    let depth = (ty == PatchType::Json).then_some(1);
    let mut errors = OrderedValue::from_json(&ctx.body)
        .map(|d| kubox_openapi::duplicate_fields(&d, depth))
        .unwrap_or_default();
    errors.extend(removed.iter().map(|p| kubox_openapi::unknown_field(p)));
    if errors.is_empty() {
        return Ok(());
    }
    if directive == Directive::Warn {
        errors.into_iter().for_each(warning::add);
        return Ok(());
    }
    let value = if ty == PatchType::Strategic {
        // The patch map, as Go's `%+v` prints it.
        serde_json::from_slice::<Value>(&ctx.body)
            .map(|p| go_value(&p))
            .unwrap_or_default()
    } else {
        before.map(|b| b.to_string()).unwrap_or_default()
    };
    Err(ApiError::invalid(
        "",
        "",
        "",
        &[FieldError::invalid(
            "patch",
            &value,
            kubox_openapi::strict_decoding_error(&errors),
        )],
    ))
}

/// A server-side apply configuration (`application/apply-patch+yaml`): fields the schema does
/// not declare fail the request whatever `fieldValidation` says, as structured-merge-diff
/// refuses to type the patch (a 500 without reason, as kube-apiserver answers).
pub fn check_applied(ctx: &Ctx) -> ApiResult<()> {
    let Some(schema) = ctx.info.schema() else {
        return Ok(());
    };
    let Ok(applied) = encoding::decode_body(&ctx.body, InFormat::Yaml) else {
        return Ok(());
    };
    let errors = kubox_openapi::apply_errors(schema, &applied);
    if errors.is_empty() {
        return Ok(());
    }
    Err(typing_error(ctx, "patch", &applied, &errors))
}

/// structured-merge-diff's failure to type an object (`patch` or `live`): a 500 without
/// reason, as kube-apiserver answers it.
fn typing_error(ctx: &Ctx, which: &str, obj: &serde_json::Value, errors: &[String]) -> ApiError {
    let meta = &obj["metadata"];
    let gvk = format!(
        "{}/{}, Kind={}",
        ctx.info.group, ctx.info.version, ctx.info.kind
    );
    ApiError {
        code: http::StatusCode::INTERNAL_SERVER_ERROR,
        reason: "",
        message: format!(
            "failed to create typed {which} object ({}/{}; {gvk}): {}",
            meta["namespace"].as_str().unwrap_or_default(),
            meta["name"].as_str().unwrap_or_default(),
            kubox_openapi::apply_error_message(errors)
        ),
        details: None,
        retry_after: None,
    }
}

/// The live object of a server-side apply, at the request's version, must have the types that
/// version's schema declares, as structured-merge-diff types it before merging: a custom
/// resource stored at a version whose field types differ fails with kube's 500 (`failed to
/// create typed live object`).
pub fn check_live(ctx: &Ctx, live: &serde_json::Value) -> ApiResult<()> {
    if !ctx.info.strategy.is_custom() {
        return Ok(());
    }
    let Some(schema) = ctx.info.schema() else {
        return Ok(());
    };
    let errors = kubox_openapi::type_errors(schema, live);
    if errors.is_empty() {
        return Ok(());
    }
    Err(typing_error(ctx, "live", live, &errors))
}

/// A JSON value as Go's `fmt` `%+v` prints the `map[string]interface{}` it decodes to.
fn go_value(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_value).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => format!(
            "map[{}]",
            m.iter()
                .map(|(k, v)| format!("{k}:{}", go_value(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_map_format() {
        assert_eq!(
            go_value(&json!({"spec": {"b": [1, "x", null], "a": true}, "kind": "K"})),
            "map[kind:K spec:map[a:true b:[1 x <nil>]]]"
        );
    }

    #[test]
    fn directives() {
        let q = |s: &str| Query::parse(s);
        assert_eq!(
            directive(&q(""), "CreateOptions").ok(),
            Some(Directive::Warn)
        );
        assert_eq!(
            directive(&q("fieldValidation=Strict"), "CreateOptions").ok(),
            Some(Directive::Strict)
        );
        assert_eq!(
            directive(&q("fieldValidation=Ignore"), "CreateOptions").ok(),
            Some(Directive::Ignore)
        );
        let e = directive(&q("fieldValidation=strict"), "PatchOptions").err();
        assert_eq!(
            e.map(|e| (e.code.as_u16(), e.message)),
            Some((
                422,
                "PatchOptions.meta.k8s.io \"\" is invalid: fieldValidation: Unsupported value: \"strict\": supported values: \"\", \"Ignore\", \"Strict\", \"Warn\"".to_string()
            ))
        );
    }
}
