//! Resources that are computed, never stored: the access reviews, SelfSubjectReview (the
//! request's user, after impersonation), TokenReview (the server's token authenticators), and
//! pod bindings. The access reviews ask the server's authorizer (the same one the chain
//! asks); SelfSubjectRulesReview lists the RBAC rules the user holds in a namespace.

use http::{Response, StatusCode};
use serde_json::{json, Value};

use crate::authn::UserInfo;
use crate::authz::{Attributes, Decision};
use crate::body::Body;
use crate::handlers::Ctx;
use crate::status::{ApiError, ApiResult};

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
            let ns = obj["spec"]["namespace"].as_str().unwrap_or_default();
            obj["status"] = rules_review(ctx, &ctx.user, ns);
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
            let user = spec_user(&obj["spec"], "LocalSubjectAccessReview")?;
            obj["status"] = access_review(ctx, &user, &obj["spec"], "LocalSubjectAccessReview")?;
        }
        ("authorization.k8s.io", "subjectaccessreviews") => {
            let user = spec_user(&obj["spec"], "SubjectAccessReview")?;
            obj["status"] = access_review(ctx, &user, &obj["spec"], "SubjectAccessReview")?;
        }
        ("authorization.k8s.io", "selfsubjectaccessreviews") => {
            obj["status"] = access_review(ctx, &ctx.user, &obj["spec"], "SelfSubjectAccessReview")?;
        }
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

fn review_invalid(kind: &str, field: &str, value: &str, detail: &str) -> ApiError {
    ApiError::invalid(
        kind,
        "authorization.k8s.io",
        "",
        &[kubox_apimachinery::validation::FieldError::invalid(
            field, value, detail,
        )],
    )
}

/// The user a (Local)SubjectAccessReview asks about.
fn spec_user(spec: &Value, kind: &str) -> ApiResult<UserInfo> {
    let user = UserInfo {
        username: spec["user"].as_str().unwrap_or_default().to_string(),
        uid: spec["uid"].as_str().unwrap_or_default().to_string(),
        groups: serde_json::from_value(spec["groups"].clone()).unwrap_or_default(),
        extra: serde_json::from_value(spec["extra"].clone()).unwrap_or_default(),
    };
    if user.username.is_empty() && user.groups.is_empty() {
        return Err(review_invalid(
            kind,
            "spec.user",
            "",
            "at least one of user or group must be specified",
        ));
    }
    Ok(user)
}

fn field<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_default()
}

/// Decide an access review's attributes for `user`: its `status`.
fn access_review(ctx: &Ctx, user: &UserInfo, spec: &Value, kind: &str) -> ApiResult<Value> {
    let res = spec.get("resourceAttributes").filter(|v| !v.is_null());
    let non = spec.get("nonResourceAttributes").filter(|v| !v.is_null());
    let attrs = match (res, non) {
        (Some(r), None) => Attributes {
            user: Some(user),
            verb: field(r, "verb"),
            namespace: field(r, "namespace"),
            api_group: field(r, "group"),
            api_version: field(r, "version"),
            resource: field(r, "resource"),
            subresource: field(r, "subresource"),
            name: field(r, "name"),
            resource_request: true,
            path: "",
        },
        (None, Some(n)) => Attributes {
            user: Some(user),
            verb: field(n, "verb"),
            path: field(n, "path"),
            ..Default::default()
        },
        _ => {
            return Err(review_invalid(
                kind,
                "spec.resourceAttributes",
                "",
                "exactly one of nonResourceAttributes or resourceAttributes must be specified",
            ))
        }
    };
    let mut status = json!({"allowed": false});
    match ctx.state.backend.authorizer.authorize(&attrs) {
        Decision::Allow(reason) => {
            status["allowed"] = json!(true);
            if !reason.is_empty() {
                status["reason"] = json!(reason);
            }
        }
        Decision::Deny(reason) => {
            status["denied"] = json!(true);
            if !reason.is_empty() {
                status["reason"] = json!(reason);
            }
        }
        Decision::NoOpinion(reason) => {
            if !reason.is_empty() {
                status["reason"] = json!(reason);
            }
        }
    }
    Ok(status)
}

/// A SelfSubjectRulesReview's `status`: the RBAC rules `user` holds in `namespace`.
fn rules_review(ctx: &Ctx, user: &UserInfo, namespace: &str) -> Value {
    let mut resource_rules = Vec::new();
    let mut non_resource_rules = Vec::new();
    for r in ctx.state.backend.rbac.rules_for(user, namespace) {
        if r.non_resource_urls.is_empty() {
            let mut v =
                json!({"verbs": r.verbs, "apiGroups": r.api_groups, "resources": r.resources});
            if !r.resource_names.is_empty() {
                v["resourceNames"] = json!(r.resource_names);
            }
            resource_rules.push(v);
        } else {
            non_resource_rules
                .push(json!({"verbs": r.verbs, "nonResourceURLs": r.non_resource_urls}));
        }
    }
    json!({
        "resourceRules": resource_rules,
        "nonResourceRules": non_resource_rules,
        "incomplete": false,
    })
}

/// Bind a pod to a node (`pods/binding` or `bindings`): sets spec.nodeName once.
pub async fn bind(ctx: &Ctx, pod: &str, binding: &Value) -> ApiResult<Response<Body>> {
    let node = binding["target"]["name"].as_str().unwrap_or_default();
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
    crate::registry::pods::assign(
        &ctx.state.backend,
        &ctx.req.namespace,
        pod,
        node,
        &binding["metadata"]["annotations"],
    )
    .await?;
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201});
    Ok(crate::encoding::encode_as(
        &body,
        &ctx.out_plain(),
        ctx.protobuf,
        StatusCode::CREATED,
    ))
}
