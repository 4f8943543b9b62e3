//! `ResourceQuota`: object-count quotas (`count/<resource>[.<group>]` and the legacy names
//! `pods`, `services`, `configmaps`, `secrets`, `persistentvolumeclaims`,
//! `replicationcontrollers`, `resourcequotas`) and pod compute quotas (`requests.cpu`,
//! `requests.memory`, `limits.cpu`, `limits.memory`, `cpu`, `memory`).
//!
//! A create that would take usage over a quota's `spec.hard` is refused with kube's
//! `exceeded quota: …` Forbidden. Usage is counted from the store at the time of the request;
//! [`sync`] keeps `status.hard`/`status.used` current after every write in a namespace with
//! quotas (kube-controller-manager's quota controller does this in a cluster). Quotas with
//! `scopes` or a `scopeSelector` are not enforced. Two concurrent creates can both pass the last
//! free slot (kube serializes them through the quota's resourceVersion).

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::quantity;
use super::{AdmissionPlugin, Attributes, Operation};
use crate::api::ApiState;
use crate::status::{ApiError, ApiResult};

pub(super) struct ResourceQuota;

/// The quota resource names that count one object of `group`/`resource`.
fn count_names(group: &str, resource: &str) -> Vec<String> {
    let mut names = Vec::with_capacity(2);
    if group.is_empty() {
        names.push(format!("count/{resource}"));
        if matches!(
            resource,
            "pods"
                | "services"
                | "configmaps"
                | "secrets"
                | "persistentvolumeclaims"
                | "replicationcontrollers"
                | "resourcequotas"
        ) {
            names.push(resource.to_string());
        }
    } else {
        names.push(format!("count/{resource}.{group}"));
    }
    names
}

/// The `group`/`resource` a quota resource name counts (None for compute names).
fn counted(name: &str) -> Option<(String, String)> {
    if let Some(rest) = name.strip_prefix("count/") {
        return Some(match rest.split_once('.') {
            Some((r, g)) => (g.to_string(), r.to_string()),
            None => (String::new(), rest.to_string()),
        });
    }
    matches!(
        name,
        "pods"
            | "services"
            | "configmaps"
            | "secrets"
            | "persistentvolumeclaims"
            | "replicationcontrollers"
            | "resourcequotas"
    )
    .then(|| (String::new(), name.to_string()))
}

const COMPUTE: &[(&str, &str, &str)] = &[
    ("requests.cpu", "requests", "cpu"),
    ("cpu", "requests", "cpu"),
    ("requests.memory", "requests", "memory"),
    ("memory", "requests", "memory"),
    ("limits.cpu", "limits", "cpu"),
    ("limits.memory", "limits", "memory"),
];

/// A pod's compute usage for a quota name (sum over containers; init containers by max).
fn pod_usage(pod: &Value, name: &str) -> Option<f64> {
    let (_, field, res) = COMPUTE.iter().find(|(n, _, _)| *n == name)?;
    let sum = |list: &str| -> f64 {
        pod["spec"][list]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["resources"][*field][*res].as_str())
            .filter_map(quantity::parse)
            .sum()
    };
    let init_max = pod["spec"]["initContainers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["resources"][*field][*res].as_str())
        .filter_map(quantity::parse)
        .fold(0.0, f64::max);
    Some(sum("containers").max(init_max))
}

fn pod_terminal(pod: &Value) -> bool {
    matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    )
}

fn unscoped(q: &Value) -> bool {
    q["spec"]["scopes"].as_array().is_none_or(|s| s.is_empty())
        && q["spec"]["scopeSelector"].is_null()
}

/// Format a quantity the way kube prints usage: integers plain, fractions of cores in `m`.
fn fmt_quantity(name: &str, v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{}", v as i64)
    } else if name.ends_with("cpu") {
        format!("{}m", (v * 1000.0).round() as i64)
    } else {
        format!("{v}")
    }
}

/// Usage of every name in `hard`, counted from the store.
async fn usage(
    state: &ApiState,
    namespace: &str,
    hard: &serde_json::Map<String, Value>,
) -> ApiResult<BTreeMap<String, f64>> {
    let mut out = BTreeMap::new();
    let mut pods: Option<Vec<Value>> = None;
    for name in hard.keys() {
        if let Some((group, resource)) = counted(name) {
            let Some(info) = state.registry.snapshot().find_storage(&group, &resource) else {
                continue;
            };
            let prefix = info.collection_prefix(namespace);
            let n = if group.is_empty() && resource == "pods" {
                let objs = super::list_prefix(state, &prefix).await?;
                objs.iter().filter(|p| !pod_terminal(p)).count()
            } else {
                count(state, &prefix).await?
            };
            out.insert(name.clone(), n as f64);
        } else if COMPUTE.iter().any(|(n, _, _)| n == name) {
            if pods.is_none() {
                pods = Some(super::list_resource(state, "", "pods", namespace).await?);
            }
            let total = pods
                .iter()
                .flatten()
                .filter(|p| !pod_terminal(p))
                .filter_map(|p| pod_usage(p, name))
                .sum();
            out.insert(name.clone(), total);
        }
    }
    Ok(out)
}

/// How many objects are under `prefix`, without reading them: a one-item page and the store's
/// count of the rest.
async fn count(state: &ApiState, prefix: &str) -> ApiResult<usize> {
    let page = state
        .store
        .list(
            prefix,
            kubox_storage::ListOptions {
                limit: Some(1),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| crate::status::from_store(e, &Default::default(), ""))?;
    Ok(page.items.len() + page.remaining.unwrap_or(0))
}

#[async_trait]
impl AdmissionPlugin for ResourceQuota {
    fn name(&self) -> &'static str {
        "ResourceQuota"
    }

    fn handles(&self, op: Operation) -> bool {
        op == Operation::Create
    }

    async fn validate(&self, state: &ApiState, a: &Attributes) -> ApiResult<()> {
        if !a.info.namespaced || a.namespace.is_empty() || !a.subresource.is_empty() {
            return Ok(());
        }
        let quotas = super::list_resource(state, "", "resourcequotas", &a.namespace).await?;
        if quotas.is_empty() {
            return Ok(());
        }
        let names = count_names(a.group(), a.resource());
        let is_pod = a.is_core("pods");
        let mut requested: BTreeMap<String, f64> = BTreeMap::new();
        for n in &names {
            requested.insert(n.clone(), 1.0);
        }
        if is_pod {
            if let Some(pod) = &a.object {
                for (n, _, _) in COMPUTE {
                    if let Some(u) = pod_usage(pod, n).filter(|u| *u > 0.0) {
                        requested.insert(n.to_string(), u);
                    }
                }
            }
        }
        for q in quotas.iter().filter(|q| unscoped(q)) {
            let Some(hard) = q["spec"]["hard"].as_object() else {
                continue;
            };
            let tracked: serde_json::Map<String, Value> = hard
                .iter()
                .filter(|(k, _)| requested.contains_key(k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if tracked.is_empty() {
                continue;
            }
            let used = usage(state, &a.namespace, &tracked).await?;
            let mut over = Vec::new();
            for (k, limit) in &tracked {
                let limit_s = limit.as_str().unwrap_or_default();
                let limit_v = quantity::parse(limit_s).unwrap_or_default();
                let u = used.get(k).copied().unwrap_or_default();
                let r = requested.get(k).copied().unwrap_or_default();
                if u + r > limit_v {
                    over.push((k.clone(), r, u, limit_s.to_string()));
                }
            }
            if !over.is_empty() {
                let list = |f: &dyn Fn(&(String, f64, f64, String)) -> String| {
                    over.iter().map(f).collect::<Vec<_>>().join(",")
                };
                let msg = format!(
                    "exceeded quota: {}, requested: {}, used: {}, limited: {}",
                    crate::objects::name_of(q),
                    list(&|(k, r, _, _)| format!("{k}={}", fmt_quantity(k, *r))),
                    list(&|(k, _, u, _)| format!("{k}={}", fmt_quantity(k, *u))),
                    list(&|(k, _, _, l)| format!("{k}={l}")),
                );
                return Err(ApiError::forbidden(&a.group_resource(), &a.name, &msg));
            }
        }
        Ok(())
    }
}

/// Does a write to `group`/`resource` change what some quota in the namespace reports?
fn affects(group: &str, resource: &str, quota: &Value) -> bool {
    if group.is_empty() && resource == "resourcequotas" {
        return true;
    }
    let names = count_names(group, resource);
    quota["spec"]["hard"].as_object().is_some_and(|h| {
        h.keys().any(|k| {
            names.contains(k)
                || (group.is_empty()
                    && resource == "pods"
                    && COMPUTE.iter().any(|(n, _, _)| n == k))
        })
    })
}

/// Recompute `status` of the quotas in `namespace` that a write to `group`/`resource` affects.
/// Failures are logged: the write itself has already happened.
pub(crate) async fn sync(state: &ApiState, group: &str, resource: &str, namespace: &str) {
    if namespace.is_empty() {
        return;
    }
    for _ in 0..3 {
        match sync_once(state, group, resource, namespace).await {
            Ok(true) => return,
            Ok(false) => continue,
            Err(e) => {
                tracing::warn!(namespace, error = %e.message, "resource quota status update failed");
                return;
            }
        }
    }
}

/// One pass; Ok(false) when a quota changed under us.
async fn sync_once(
    state: &ApiState,
    group: &str,
    resource: &str,
    namespace: &str,
) -> ApiResult<bool> {
    let prefix = format!(
        "{}{namespace}/",
        crate::registry::storage_prefix("", "resourcequotas")
    );
    let page = state
        .store
        .list(&prefix, Default::default())
        .await
        .map_err(|e| crate::status::from_store(e, &Default::default(), ""))?;
    for kv in &page.items {
        let mut q = crate::objects::from_stored(kv)?;
        if !affects(group, resource, &q) {
            continue;
        }
        let hard = q["spec"]["hard"].as_object().cloned().unwrap_or_default();
        let used = usage(state, namespace, &hard).await?;
        let used: serde_json::Map<String, Value> = hard
            .keys()
            .map(|k| {
                let v = used.get(k).copied().unwrap_or_default();
                (k.clone(), json!(fmt_quantity(k, v)))
            })
            .collect();
        let status = json!({"hard": hard, "used": used});
        if q["status"] == status {
            continue;
        }
        q["status"] = status;
        let bytes = crate::objects::to_stored(&q)?;
        match state
            .store
            .update(&kv.key, bytes, Some(kv.mod_revision))
            .await
        {
            Ok(_) => {}
            Err(kubox_storage::StoreError::Conflict { .. }) => return Ok(false),
            Err(kubox_storage::StoreError::NotFound(_)) => {}
            Err(e) => return Err(crate::status::from_store(e, &Default::default(), "")),
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_names_cover_legacy_and_count_syntax() {
        assert_eq!(count_names("", "pods"), vec!["count/pods", "pods"]);
        assert_eq!(
            count_names("apps", "deployments"),
            vec!["count/deployments.apps"]
        );
        assert_eq!(
            counted("count/deployments.apps"),
            Some(("apps".into(), "deployments".into()))
        );
        assert_eq!(
            counted("configmaps"),
            Some((String::new(), "configmaps".into()))
        );
        assert_eq!(counted("requests.cpu"), None);
    }

    #[test]
    fn pod_usage_sums_containers_and_takes_the_largest_init_container() {
        let pod = json!({"spec": {
            "containers": [
                {"resources": {"requests": {"cpu": "100m"}}},
                {"resources": {"requests": {"cpu": "200m"}}}
            ],
            "initContainers": [{"resources": {"requests": {"cpu": "1"}}}]
        }});
        assert_eq!(pod_usage(&pod, "requests.cpu"), Some(1.0));
        assert_eq!(fmt_quantity("requests.cpu", 0.3), "300m");
    }
}
