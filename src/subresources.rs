//! Subresources other than status: scale (autoscaling/v1 Scale), pod eviction, and the
//! subresources that need a node (log, exec, attach, portforward, proxy), which answer as a
//! cluster without nodes would.

use http::{Response, StatusCode};
use serde_json::{json, Value};

use crate::body::Body;
use crate::encoding;
use crate::handlers::Ctx;
use crate::objects::to_version;
use crate::patch::{self, PatchType};
use crate::registry::store::{self, DeleteOptions, UpdateOptions};
use crate::status::{ApiError, ApiResult, GroupResource};

/// GET on a subresource.
pub async fn get(ctx: Ctx) -> ApiResult<Response<Body>> {
    match ctx.req.subresource.as_str() {
        "status" | "ephemeralcontainers" | "approval" | "resize" => {
            let (obj, _) = ctx.read().await?;
            ctx.respond(StatusCode::OK, obj).await
        }
        "scale" => {
            let (obj, _) = ctx.read().await?;
            let scale = scale_of(&ctx, &to_version(&ctx.info, obj).await?);
            Ok(encoding::encode_as(
                &scale,
                &ctx.out_plain(),
                ctx.protobuf,
                StatusCode::OK,
            ))
        }
        _ => no_node(&ctx).await,
    }
}

/// POST on a subresource (eviction, binding) or on a named object.
pub async fn create(ctx: Ctx) -> ApiResult<Response<Body>> {
    match (ctx.info.resource.as_str(), ctx.req.subresource.as_str()) {
        ("pods", "binding") => {
            let format = encoding::content_format(&ctx.headers)?;
            let binding = encoding::decode_body(&ctx.body, format)?;
            crate::reviews::bind(&ctx, &ctx.req.name, &binding).await
        }
        ("serviceaccounts", "token") => crate::token_request::token_request(&ctx).await,
        ("pods", "eviction") => {
            let format = encoding::content_format(&ctx.headers)?;
            let eviction = if ctx.body.is_empty() {
                json!({})
            } else {
                encoding::decode_body(&ctx.body, format)?
            };
            let mut opts = match eviction.get("deleteOptions").filter(|o| !o.is_null()) {
                Some(o) => DeleteOptions::from_value(o)?,
                None => DeleteOptions::default(),
            };
            opts.dry_run |= ctx.query.dry_run("CreateOptions")?;
            evict(&ctx, &opts).await?;
            store::delete(&ctx.scope(), &ctx.req.name, &opts).await?;
            Ok(encoding::encode_as(
                &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
                &ctx.out_plain(),
                ctx.protobuf,
                StatusCode::CREATED,
            ))
        }
        (_, "") => Err(ApiError::method_not_supported(
            &ctx.info.group_resource(),
            "create",
        )),
        _ => no_node(&ctx).await,
    }
}

/// The most pods a budget lists as disrupted before evictions wait for its controller.
const MAX_DISRUPTED_PODS: usize = 2000;

/// kube's eviction check: a pod that is finished, pending or being deleted goes; otherwise the
/// one PodDisruptionBudget selecting it (more than one is an error) must allow a disruption,
/// which is taken (`disruptionsAllowed` − 1, the pod listed in `disruptedPods`) before the pod
/// is deleted. An unready pod goes when the budget is already met (`IfHealthyBudget`) or its
/// policy is `AlwaysAllow`.
async fn evict(ctx: &Ctx, opts: &DeleteOptions) -> ApiResult<()> {
    // Concurrent evictions (kubectl drain's) race for the budget: a lost race reads it again,
    // as kube's eviction retries on conflict.
    for _ in 0..EVICTION_ATTEMPTS {
        if evict_once(ctx, opts).await? {
            return Ok(());
        }
    }
    Err(ApiError::conflict(
        &GroupResource::new("policy", "poddisruptionbudgets"),
        "",
        "too many concurrent evictions; please try again",
    ))
}

/// How often an eviction reads the budget again after losing a race for it.
const EVICTION_ATTEMPTS: usize = 20;

/// One try: Ok(true) when the pod may go (a disruption taken if one was needed), Ok(false)
/// when the budget changed under the write.
async fn evict_once(ctx: &Ctx, opts: &DeleteOptions) -> ApiResult<bool> {
    let (pod, _) = ctx.read().await?;
    let phase = pod["status"]["phase"].as_str().unwrap_or_default();
    if matches!(phase, "Succeeded" | "Failed" | "Pending" | "") || store::is_deleting(&pod) {
        return Ok(true);
    }
    let state = &ctx.state.backend;
    let ns = &ctx.req.namespace;
    let Some(info) = state
        .registry
        .snapshot()
        .find_storage("policy", "poddisruptionbudgets")
    else {
        return Ok(true);
    };
    let prefix = info.collection_prefix(ns);
    let listed = state
        .store
        .list(&prefix, Default::default())
        .await
        .map_err(|e| crate::status::from_store(e, &info.group_resource(), ""))?;
    let mut budgets = Vec::new();
    for kv in &listed.items {
        let pdb = crate::objects::from_stored(kv)?;
        let selector = &pdb["spec"]["selector"];
        let selects = !selector.is_null()
            && kubox_apimachinery::labels::LabelSelector::from_label_selector_json(selector)
                .is_ok_and(|s| s.matches_value(&pod));
        if selects {
            budgets.push(pdb);
        }
    }
    let pdb = match budgets.len() {
        0 => return Ok(true),
        1 => budgets.remove(0),
        _ => {
            return Err(ApiError::internal(
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            ))
        }
    };
    let ready = pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True");
    let status = &pdb["status"];
    let healthy = status["currentHealthy"].as_i64().unwrap_or(0);
    let desired = status["desiredHealthy"].as_i64().unwrap_or(0);
    if !ready {
        if pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow" {
            return Ok(true);
        }
        if healthy >= desired && desired > 0 {
            return Ok(true);
        }
    }
    let pdb_name = crate::objects::name_of(&pdb).to_string();
    let refuse = |cause: String| {
        ApiError::too_many_requests(
            "Cannot evict pod as it would violate the pod's disruption budget.",
            0,
        )
        .with_causes(vec![
            json!({"reason": "DisruptionBudget", "message": cause}),
        ])
    };
    if status["observedGeneration"].as_i64().unwrap_or(0)
        < pdb["metadata"]["generation"].as_i64().unwrap_or(0)
    {
        return Err(refuse(format!(
            "The disruption budget {pdb_name} is still being processed by the server."
        )));
    }
    let allowed = status["disruptionsAllowed"].as_i64().unwrap_or(0);
    let gr = info.group_resource();
    if allowed < 0 {
        return Err(ApiError::forbidden(
            &gr,
            &pdb_name,
            "pdb disruptions allowed is negative",
        ));
    }
    if status["disruptedPods"]
        .as_object()
        .is_some_and(|m| m.len() > MAX_DISRUPTED_PODS)
    {
        return Err(ApiError::forbidden(
            &gr,
            &pdb_name,
            "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
        ));
    }
    if allowed == 0 {
        return Err(refuse(format!(
            "The disruption budget {pdb_name} needs {desired} healthy pods and has {healthy} currently"
        )));
    }
    if opts.dry_run {
        return Ok(true);
    }
    // Take the disruption: compare-and-swap on the budget read.
    let mut taken = pdb.clone();
    taken["status"]["disruptionsAllowed"] = json!(allowed - 1);
    if !taken["status"]["disruptedPods"].is_object() {
        taken["status"]["disruptedPods"] = json!({});
    }
    let now = crate::objects::timestamp(state.clock.now());
    taken["status"]["disruptedPods"][crate::objects::name_of(&pod)] = json!(now);
    let rev = pdb["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|r| r.parse::<i64>().ok());
    let key = info.key(ns, &pdb_name);
    let kv = listed
        .items
        .iter()
        .find(|kv| kv.key.as_ref() == key.as_str())
        .map(|kv| kv.mod_revision)
        .or(rev)
        .unwrap_or(0);
    match state
        .store
        .update(&key, crate::objects::to_stored(&taken)?, Some(kv))
        .await
    {
        Ok(_) => Ok(true),
        Err(kubox_storage::StoreError::Conflict { .. }) => Ok(false),
        Err(e) => Err(crate::status::from_store(e, &gr, &pdb_name)),
    }
}

async fn no_node(ctx: &Ctx) -> ApiResult<Response<Body>> {
    // The object must exist; then the answer is what a node-less cluster gives, or, for a
    // pod on a simulated node, that nothing runs there to answer.
    let (obj, _) = ctx.read().await?;
    if let Some(node) = obj["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
        return Err(ApiError::bad_request(format!(
            "{} \"{}\" runs on the simulated node {node:?}: kubox runs no containers to serve {}",
            ctx.info.resource, ctx.req.name, ctx.req.subresource
        )));
    }
    Err(ApiError::bad_request(format!(
        "{} \"{}\" has no node to serve {}: kubox runs no nodes",
        ctx.info.resource, ctx.req.name, ctx.req.subresource
    )))
}

/// The label selector of a workload as the string Scale.status.selector carries.
fn selector_string(obj: &Value) -> String {
    let sel = &obj["spec"]["selector"];
    let mut parts: Vec<String> = Vec::new();
    let labels = if sel.get("matchLabels").is_some() || sel.get("matchExpressions").is_some() {
        &sel["matchLabels"]
    } else {
        sel
    };
    if let Some(m) = labels.as_object() {
        for (k, v) in m {
            parts.push(format!("{k}={}", v.as_str().unwrap_or_default()));
        }
    }
    if let Some(exprs) = sel["matchExpressions"].as_array() {
        for e in exprs {
            let key = e["key"].as_str().unwrap_or_default();
            let values: Vec<&str> = e["values"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            match e["operator"].as_str().unwrap_or_default() {
                "In" => parts.push(format!("{key} in ({})", values.join(","))),
                "NotIn" => parts.push(format!("{key} notin ({})", values.join(","))),
                "Exists" => parts.push(key.to_string()),
                "DoesNotExist" => parts.push(format!("!{key}")),
                _ => {}
            }
        }
    }
    parts.sort();
    parts.join(",")
}

/// The autoscaling/v1 Scale of a workload.
pub fn scale_of(ctx: &Ctx, obj: &Value) -> Value {
    let meta = &obj["metadata"];
    let paths = ctx.info.strategy.scale_paths();
    let read = |p: &str| {
        crate::jsonpath::get_simple(obj, p)
            .and_then(Value::as_i64)
            .unwrap_or(0)
    };
    let selector = match &paths.label_selector {
        Some(p) => crate::jsonpath::get_simple(obj, p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        None => selector_string(obj),
    };
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"],
            "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {"replicas": read(&paths.spec_replicas)},
        "status": {"replicas": read(&paths.status_replicas), "selector": selector},
    })
}

async fn write_scale(
    ctx: &Ctx,
    scale: &Value,
    expected_rv: Option<&str>,
    dry_run: bool,
) -> ApiResult<Response<Body>> {
    let (stored, kv) = ctx.read().await?;
    if let Some(rv) = expected_rv.filter(|r| !r.is_empty()) {
        if rv != kv.mod_revision.to_string() {
            return Err(ApiError::stale_update(
                &ctx.info.group_resource(),
                &ctx.req.name,
            ));
        }
    }
    let replicas = &scale["spec"]["replicas"];
    if !(replicas.is_i64() || replicas.is_null()) || replicas.as_i64().is_some_and(|r| r < 0) {
        return Err(ApiError::invalid(
            "Scale",
            "autoscaling",
            &ctx.req.name,
            &[
                kubox_apimachinery::validation::FieldError::invalid_rendered(
                    "spec.replicas",
                    replicas.to_string(),
                    "must be greater than or equal to 0",
                ),
            ],
        ));
    }
    let mut obj = to_version(&ctx.info, stored.clone()).await?;
    let path = ctx.info.strategy.scale_paths().spec_replicas;
    crate::jsonpath::set_simple(&mut obj, &path, json!(replicas.as_i64().unwrap_or(0)));
    let new = crate::objects::to_write_version(&ctx.info, obj).await?;
    let opts = UpdateOptions {
        dry_run,
        ..ctx.update_options_as("UpdateOptions")?
    };
    let (written, _) = store::update(&ctx.scope(), new, stored, kv.mod_revision, &opts).await?;
    let scale = scale_of(ctx, &to_version(&ctx.info, written).await?);
    Ok(encoding::encode_as(
        &scale,
        &ctx.out_plain(),
        ctx.protobuf,
        StatusCode::OK,
    ))
}

/// PUT on /scale.
pub async fn update_scale(ctx: Ctx) -> ApiResult<Response<Body>> {
    let format = encoding::content_format(&ctx.headers)?;
    let scale = encoding::decode_body(&ctx.body, format)?;
    if let Some(n) = scale["metadata"]["name"]
        .as_str()
        .filter(|n| !n.is_empty() && *n != ctx.req.name)
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({n}) does not match the name on the URL ({})",
            ctx.req.name
        )));
    }
    let rv = scale["metadata"]["resourceVersion"]
        .as_str()
        .map(str::to_string);
    write_scale(
        &ctx,
        &scale,
        rv.as_deref(),
        ctx.query.dry_run("UpdateOptions")?,
    )
    .await
}

/// PATCH on /scale: the patch applies to the Scale object.
pub async fn patch_scale(ctx: Ctx, ty: PatchType, dry_run: bool) -> ApiResult<Response<Body>> {
    let (stored, _) = ctx.read().await?;
    let current = scale_of(&ctx, &to_version(&ctx.info, stored).await?);
    let meta = kubox_apimachinery::patch_meta::NoPatchMeta;
    let patched = match ty {
        PatchType::Strategic | PatchType::Apply => {
            let p: Value = encoding::decode_body(&ctx.body, encoding::InFormat::Yaml)?;
            kubox_apimachinery::strategic::apply_strategic_merge_patch(&current, &p, &meta)
                .map_err(|e| ApiError::bad_request(e.to_string()))?
        }
        _ => patch::apply_patch(&ctx, ty, &current, &ctx.body)?.0,
    };
    let pinned = patched["metadata"]["resourceVersion"]
        .as_str()
        .filter(|rv| Some(*rv) != current["metadata"]["resourceVersion"].as_str())
        .map(str::to_string);
    write_scale(&ctx, &patched, pinned.as_deref(), dry_run).await
}
