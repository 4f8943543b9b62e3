//! The TokenRequest subresource (`serviceaccounts/token`): the endpoint side; tokens are
//! signed by `authn::serviceaccount`.

use http::{Response, StatusCode};
use serde_json::{json, Value};

use crate::body::Body;
use crate::handlers::Ctx;
use crate::objects::from_stored;
use crate::status::{ApiError, ApiResult, GroupResource};

/// `POST /api/v1/namespaces/NS/serviceaccounts/NAME/token`: a TokenRequest answered with a
/// bound token.
pub async fn token_request(ctx: &Ctx) -> ApiResult<Response<Body>> {
    let format = crate::encoding::content_format(&ctx.headers)?;
    let mut req = crate::encoding::decode_body(&ctx.body, format)?;
    let ns = ctx.req.namespace.clone();
    let name = ctx.req.name.clone();
    let (sa, _) = ctx.read().await?;
    let spec = &mut req["spec"];
    let expiration = match &spec["expirationSeconds"] {
        Value::Null => crate::authn::serviceaccount::DEFAULT_EXPIRATION_SECONDS,
        v => v.as_i64().unwrap_or_default(),
    };
    let invalid = |field: &str, value: &str, why: &str| {
        ApiError::invalid(
            "TokenRequest",
            "authentication.k8s.io",
            &name,
            &[kubox_apimachinery::validation::FieldError::invalid(
                field, value, why,
            )],
        )
    };
    if expiration < 600 {
        return Err(invalid(
            "spec.expirationSeconds",
            &expiration.to_string(),
            "may not specify a duration less than 10 minutes",
        ));
    }
    if expiration > 1 << 32 {
        return Err(invalid(
            "spec.expirationSeconds",
            &expiration.to_string(),
            "may not specify a duration larger than 2^32 seconds",
        ));
    }
    let mut audiences: Vec<String> = spec["audiences"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if audiences.is_empty() {
        audiences = ctx.state.authentication.api_audiences.clone();
    }
    let bound = &spec["boundObjectRef"];
    let mut bound_to = None;
    if !bound.is_null() {
        let kind = bound["kind"].as_str().unwrap_or_default().to_string();
        let resource = match kind.as_str() {
            "Pod" => "pods",
            "Secret" => "secrets",
            "Node" => "nodes",
            _ => {
                return Err(invalid(
                    "spec.boundObjectRef.kind",
                    &kind,
                    "supported values: \"Pod\", \"Secret\", \"Node\"",
                ))
            }
        };
        let obj_name = bound["name"].as_str().unwrap_or_default().to_string();
        let obj_ns = if kind == "Node" { "" } else { ns.as_str() };
        let key = crate::authn::serviceaccount::key_of(resource, obj_ns, &obj_name);
        let gr = GroupResource::new("", resource);
        let kv = ctx
            .state
            .backend
            .store
            .get(&key, None)
            .await
            .map_err(|e| crate::status::from_store(e, &gr, &obj_name))?;
        let obj = from_stored(&kv)?;
        let uid = crate::authn::serviceaccount::uid_of(&obj);
        if let Some(want) = bound["uid"].as_str().filter(|u| !u.is_empty()) {
            if want != uid {
                return Err(ApiError::conflict(
                    &gr,
                    &obj_name,
                    &format!("the UID in the bound object reference ({want}) does not match the UID in record. The object might have been deleted and then recreated"),
                ));
            }
        }
        spec["boundObjectRef"]["uid"] = json!(uid);
        if spec["boundObjectRef"]["apiVersion"].is_null() {
            spec["boundObjectRef"]["apiVersion"] = json!("v1");
        }
        bound_to = Some((kind, obj_name, uid));
    }
    let (token, exp) = ctx.state.authentication.service_accounts.issue(
        &ns,
        &sa,
        &audiences,
        expiration,
        bound_to
            .as_ref()
            .map(|(k, n, u)| (k.as_str(), n.as_str(), u.as_str())),
    )?;
    spec["audiences"] = json!(audiences);
    spec["expirationSeconds"] = json!(expiration);
    let out = json!({
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {
            "name": name,
            "namespace": ns,
            "creationTimestamp": crate::objects::timestamp(ctx.state.backend.clock.now()),
        },
        "spec": req["spec"],
        "status": {
            "token": token,
            "expirationTimestamp": crate::objects::timestamp(exp),
        },
    });
    Ok(crate::encoding::encode_as(
        &out,
        &ctx.out_plain(),
        ctx.protobuf,
        StatusCode::CREATED,
    ))
}
