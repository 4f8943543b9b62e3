//! Resources that are computed, never stored: the access reviews, SelfSubjectReview (the
//! request's user, after impersonation), TokenReview (the server's token authenticators), and
//! pod bindings. With no authorizer configured yet every access is allowed, as kube-apiserver
//! answers with `--authorization-mode=AlwaysAllow`.

use http::{Response, StatusCode};
use serde_json::{json, Value};

use crate::body::Body;
use crate::handlers::Ctx;
use crate::objects::{from_stored, to_stored};
use crate::status::{self, ApiError, ApiResult, GroupResource};

/// Is this resource computed rather than stored?
pub fn is_virtual(group: &str, resource: &str) -> bool {
    matches!(
        (group, resource),
        ("authorization.k8s.io", _) | ("authentication.k8s.io", _) | ("", "bindings")
    )
}

/// Answer a create on a computed resource: the object with its status filled in.
pub async fn create(ctx: &Ctx, mut obj: Value) -> ApiResult<Response<Body>> {
    match (ctx.info.group.as_str(), ctx.info.resource.as_str()) {
        ("authorization.k8s.io", "selfsubjectrulesreviews") => {
            obj["status"] = json!({
                "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                "incomplete": false,
            });
        }
        ("authorization.k8s.io", "localsubjectaccessreviews") => {
            let ns = obj["spec"]["resourceAttributes"]["namespace"]
                .as_str()
                .unwrap_or_default();
            if ns != ctx.req.namespace {
                return Err(ApiError::invalid(
                    "LocalSubjectAccessReview",
                    "authorization.k8s.io",
                    "",
                    &[kubox_apimachinery::validation::FieldError::invalid(
                        "spec.resourceAttributes.namespace",
                        ns,
                        "must match metadata.namespace",
                    )],
                ));
            }
            obj["status"] = json!({"allowed": true});
        }
        ("authorization.k8s.io", _) => obj["status"] = json!({"allowed": true}),
        ("authentication.k8s.io", "selfsubjectreviews") => {
            obj["status"] = json!({"userInfo": ctx.user});
        }
        ("authentication.k8s.io", "tokenreviews") => {
            obj["status"] = token_review(ctx, &obj["spec"]).await?;
        }
        ("", "bindings") => {
            let pod = obj["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            return bind(ctx, &pod, &obj).await;
        }
        _ => {
            return Err(ApiError::method_not_supported(
                &ctx.info.group_resource(),
                "create",
            ))
        }
    }
    if obj["metadata"].is_null() {
        obj["metadata"] = json!({});
    }
    obj["metadata"]["creationTimestamp"] = Value::Null;
    Ok(ctx.respond_object(StatusCode::CREATED, obj))
}

/// TokenReview: authenticate `spec.token` with the server's token authenticators, for
/// `spec.audiences` (the API's own audiences when none are given).
async fn token_review(ctx: &Ctx, spec: &Value) -> ApiResult<Value> {
    let token = spec["token"].as_str().unwrap_or_default();
    if token.is_empty() {
        return Err(ApiError::bad_request(
            "token is required for TokenReview in authentication",
        ));
    }
    let authn = &ctx.state.authentication;
    let asked: Vec<String> = spec["audiences"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let audiences = if asked.is_empty() {
        authn.api_audiences.clone()
    } else {
        asked
    };
    Ok(match authn.tokens.authenticate(token, &audiences).await {
        Ok(r) => json!({"authenticated": true, "user": r.user, "audiences": r.audiences}),
        Err(e) => json!({"user": {}, "error": e.0}),
    })
}

/// Bind a pod to a node (`pods/binding` or `bindings`): sets spec.nodeName once.
pub async fn bind(ctx: &Ctx, pod: &str, binding: &Value) -> ApiResult<Response<Body>> {
    let node = binding["target"]["name"].as_str().unwrap_or_default();
    let gr = GroupResource::new("", "pods");
    if node.is_empty() {
        return Err(ApiError::invalid(
            "Binding",
            "",
            pod,
            &[kubox_apimachinery::validation::FieldError::required(
                "target.name",
                "",
            )],
        ));
    }
    let key = crate::registry::storage_prefix("", "pods") + &format!("{}/{pod}", ctx.req.namespace);
    let kv = ctx
        .state
        .store
        .get(&key, None)
        .await
        .map_err(|e| status::from_store(e, &gr, pod))?;
    let mut obj = from_stored(&kv)?;
    if obj["spec"]["nodeName"]
        .as_str()
        .is_some_and(|n| !n.is_empty())
    {
        return Err(ApiError::conflict(
            &gr,
            pod,
            &format!(
                "pod {pod} is already assigned to node {:?}",
                obj["spec"]["nodeName"].as_str().unwrap_or_default()
            ),
        ));
    }
    obj["spec"]["nodeName"] = json!(node);
    ctx.state
        .store
        .update(&key, to_stored(&obj)?, Some(kv.mod_revision))
        .await
        .map_err(|e| status::from_store(e, &gr, pod))?;
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201});
    Ok(crate::encoding::encode(
        &body,
        &ctx.out_plain(),
        StatusCode::CREATED,
    ))
}
