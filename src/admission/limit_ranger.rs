//! `LimitRanger`: LimitRange items of type `Container` default the resources of a pod's
//! containers (`default` → limits, `defaultRequest` → requests, annotated
//! `kubernetes.io/limit-ranger` as kube does) and bound them (`min`, `max`,
//! `maxLimitRequestRatio`), with kube's messages.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{json, Map, Value};

use super::quantity;
use super::{AdmissionPlugin, Attributes, Operation};
use crate::registry::Backend;
use crate::status::{ApiError, ApiResult};

pub(super) struct LimitRanger;

const ANNOTATION: &str = "kubernetes.io/limit-ranger";

/// A `Container` item with kube's LimitRangeItem defaults applied: `default` falls back to
/// `max`, `defaultRequest` to `default` then `min`.
struct Item {
    default: Map<String, Value>,
    default_request: Map<String, Value>,
    min: Map<String, Value>,
    max: Map<String, Value>,
    ratio: Map<String, Value>,
}

fn map(v: &Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

fn container_items(ranges: &[Value]) -> Vec<Item> {
    let mut out = Vec::new();
    for lr in ranges {
        for it in lr["spec"]["limits"].as_array().into_iter().flatten() {
            if it["type"] != json!("Container") {
                continue;
            }
            let max = map(&it["max"]);
            let min = map(&it["min"]);
            let mut default = map(&it["default"]);
            for (k, v) in &max {
                default.entry(k.clone()).or_insert_with(|| v.clone());
            }
            let mut default_request = map(&it["defaultRequest"]);
            for (k, v) in default.iter().chain(min.iter()) {
                default_request
                    .entry(k.clone())
                    .or_insert_with(|| v.clone());
            }
            out.push(Item {
                default,
                default_request,
                min,
                max,
                ratio: map(&it["maxLimitRequestRatio"]),
            });
        }
    }
    out
}

async fn ranges(state: &Backend, a: &Attributes) -> ApiResult<Vec<Item>> {
    let list = super::list_resource(state, "", "limitranges", &a.namespace).await?;
    Ok(container_items(&list))
}

fn applies(a: &Attributes) -> bool {
    a.is_core("pods") && a.operation == Operation::Create && a.object.is_some()
}

/// The containers of a pod, with the annotation prefix kube uses for each list.
fn container_lists() -> [(&'static str, &'static str); 2] {
    [
        ("initContainers", "init container"),
        ("containers", "container"),
    ]
}

#[async_trait]
impl AdmissionPlugin for LimitRanger {
    fn name(&self) -> &'static str {
        "LimitRanger"
    }

    fn handles(&self, op: Operation) -> bool {
        op == Operation::Create
    }

    async fn admit(&self, state: &Arc<Backend>, a: &mut Attributes) -> ApiResult<()> {
        if !applies(a) {
            return Ok(());
        }
        let items = ranges(state, a).await?;
        let Some(pod) = a.object.as_mut() else {
            return Ok(());
        };
        let mut notes = Vec::new();
        for item in &items {
            for (list, prefix) in container_lists() {
                let Some(cs) = pod
                    .get_mut("spec")
                    .and_then(|s| s.get_mut(list))
                    .and_then(Value::as_array_mut)
                else {
                    continue;
                };
                for c in cs.iter_mut() {
                    let name = c["name"].as_str().unwrap_or_default().to_string();
                    for (field, defaults, what) in [
                        ("requests", &item.default_request, "request"),
                        ("limits", &item.default, "limit"),
                    ] {
                        let mut set: Vec<&str> = Vec::new();
                        for (k, v) in defaults {
                            if c["resources"][field].get(k).is_none() {
                                c["resources"][field][k] = v.clone();
                                set.push(k);
                            }
                        }
                        if !set.is_empty() {
                            set.sort_unstable();
                            notes.push(format!("{} {what} for {prefix} {name}", set.join(", ")));
                        }
                    }
                }
            }
        }
        if !notes.is_empty() {
            pod["metadata"]["annotations"][ANNOTATION] =
                json!(format!("LimitRanger plugin set: {}", notes.join("; ")));
        }
        Ok(())
    }

    async fn validate(&self, state: &Arc<Backend>, a: &Attributes) -> ApiResult<()> {
        if !applies(a) {
            return Ok(());
        }
        let items = ranges(state, a).await?;
        let Some(pod) = a.object.as_ref() else {
            return Ok(());
        };
        let mut errs = Vec::new();
        for item in &items {
            for (list, _) in container_lists() {
                for c in pod["spec"][list].as_array().into_iter().flatten() {
                    check(item, &c["resources"], &mut errs);
                }
            }
        }
        match errs.len() {
            0 => Ok(()),
            1 => Err(ApiError::forbidden(&a.group_resource(), &a.name, &errs[0])),
            _ => Err(ApiError::forbidden(
                &a.group_resource(),
                &a.name,
                &format!("[{}]", errs.join(", ")),
            )),
        }
    }
}

/// kube's minConstraint, maxConstraint and limitRequestRatioConstraint for one container.
fn check(item: &Item, res: &Value, errs: &mut Vec<String>) {
    let q = |field: &str, k: &str| {
        res[field]
            .get(k)
            .and_then(Value::as_str)
            .map(|s| (s.to_string(), quantity::parse(s).unwrap_or_default()))
    };
    for (k, v) in &item.min {
        let enforced = v.as_str().unwrap_or_default();
        let e = quantity::parse(enforced).unwrap_or_default();
        match q("requests", k) {
            None => errs.push(format!(
                "minimum {k} usage per Container is {enforced}.  No request is specified"
            )),
            Some((s, r)) if r < e => errs.push(format!(
                "minimum {k} usage per Container is {enforced}, but request is {s}"
            )),
            _ => {}
        }
        if let Some((s, l)) = q("limits", k) {
            if l < e {
                errs.push(format!(
                    "minimum {k} usage per Container is {enforced}, but limit is {s}"
                ));
            }
        }
    }
    for (k, v) in &item.max {
        let enforced = v.as_str().unwrap_or_default();
        let e = quantity::parse(enforced).unwrap_or_default();
        match q("limits", k) {
            None => errs.push(format!(
                "maximum {k} usage per Container is {enforced}.  No limit is specified"
            )),
            Some((s, l)) if l > e => errs.push(format!(
                "maximum {k} usage per Container is {enforced}, but limit is {s}"
            )),
            _ => {}
        }
        if let Some((s, r)) = q("requests", k) {
            if r > e {
                errs.push(format!(
                    "maximum {k} usage per Container is {enforced}, but request is {s}"
                ));
            }
        }
    }
    for (k, v) in &item.ratio {
        let enforced = v.as_str().unwrap_or_default();
        let e = quantity::parse(enforced).unwrap_or_default();
        let (Some((_, r)), Some((_, l))) = (q("requests", k), q("limits", k)) else {
            errs.push(format!(
                "{k} max limit to request ratio per Container is {enforced}, but no request is specified or request is 0"
            ));
            continue;
        };
        let ratio = l.as_f64() / r.as_f64();
        if !r.is_zero() && ratio > e.as_f64() {
            errs.push(format!(
                "{k} max limit to request ratio per Container is {enforced}, but provided ratio is {:.6}",
                ratio
            ));
        }
    }
}
