//! Conversion between served versions of built-ins that kube-apiserver stores at another version:
//! autoscaling/v1 ↔ autoscaling/v2 HorizontalPodAutoscalers (stored as v2; what v1 cannot carry
//! travels in `autoscaling.alpha.kubernetes.io/*` annotations, as kube-apiserver does), and
//! events.k8s.io/v1 ↔ core v1 Events (one storage, renamed fields).

use serde_json::{json, Map, Value};

const ANN_METRICS: &str = "autoscaling.alpha.kubernetes.io/metrics";
const ANN_CURRENT: &str = "autoscaling.alpha.kubernetes.io/current-metrics";
const ANN_CONDITIONS: &str = "autoscaling.alpha.kubernetes.io/conditions";
const ANN_BEHAVIOR: &str = "autoscaling.alpha.kubernetes.io/behavior";

/// Convert `obj` from apiVersion `from` to `to`; identity when no rule applies.
pub fn convert(kind: &str, obj: Value, from: &str, to: &str) -> Result<Value, String> {
    match (kind, from, to) {
        ("HorizontalPodAutoscaler", "autoscaling/v2", "autoscaling/v1") => Ok(hpa_v2_to_v1(obj)),
        ("HorizontalPodAutoscaler", "autoscaling/v1", "autoscaling/v2") => Ok(hpa_v1_to_v2(obj)),
        ("Event", "v1", "events.k8s.io/v1") => Ok(rename(obj, EVENT_FIELDS, false)),
        ("Event", "events.k8s.io/v1", "v1") => Ok(rename(obj, EVENT_FIELDS, true)),
        _ => Ok(obj),
    }
}

/// (core v1 name, events.k8s.io/v1 name)
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("reportingComponent", "reportingController"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
];

fn rename(mut obj: Value, pairs: &[(&str, &str)], reverse: bool) -> Value {
    if let Some(m) = obj.as_object_mut() {
        for (a, b) in pairs {
            let (from, to) = if reverse { (*b, *a) } else { (*a, *b) };
            if let Some(v) = m.remove(from) {
                m.insert(to.to_string(), v);
            }
        }
    }
    obj
}

fn take_annotation(obj: &mut Value, key: &str) -> Option<Value> {
    let anns = obj
        .get_mut("metadata")?
        .get_mut("annotations")?
        .as_object_mut()?;
    let raw = anns.remove(key)?;
    if anns.is_empty() {
        if let Some(meta) = obj["metadata"].as_object_mut() {
            meta.remove("annotations");
        }
    }
    serde_json::from_str(raw.as_str()?).ok()
}

fn put_annotation(obj: &mut Value, key: &str, value: &Value) {
    if !obj["metadata"]["annotations"].is_object() {
        obj["metadata"]["annotations"] = json!({});
    }
    obj["metadata"]["annotations"][key] = json!(value.to_string());
}

fn is_cpu_utilization(m: &Value) -> bool {
    m["type"] == "Resource"
        && m["resource"]["name"] == "cpu"
        && m["resource"]["target"]["type"] == "Utilization"
}

fn hpa_v2_to_v1(mut obj: Value) -> Value {
    let spec = obj.get("spec").cloned().unwrap_or(json!({}));
    let status = obj.get("status").cloned();
    let mut v1spec = Map::new();
    for k in ["scaleTargetRef", "minReplicas", "maxReplicas"] {
        if let Some(v) = spec.get(k) {
            v1spec.insert(k.into(), v.clone());
        }
    }
    let metrics = spec["metrics"].as_array().cloned().unwrap_or_default();
    let mut others = Vec::new();
    for m in metrics {
        if is_cpu_utilization(&m) && !v1spec.contains_key("targetCPUUtilizationPercentage") {
            v1spec.insert(
                "targetCPUUtilizationPercentage".into(),
                m["resource"]["target"]["averageUtilization"].clone(),
            );
        } else {
            others.push(m);
        }
    }
    if !others.is_empty() {
        put_annotation(&mut obj, ANN_METRICS, &Value::Array(others));
    }
    if let Some(b) = spec.get("behavior") {
        put_annotation(&mut obj, ANN_BEHAVIOR, b);
    }
    obj["spec"] = Value::Object(v1spec);
    if let Some(status) = status {
        let mut v1status = Map::new();
        for k in [
            "observedGeneration",
            "lastScaleTime",
            "currentReplicas",
            "desiredReplicas",
        ] {
            if let Some(v) = status.get(k) {
                v1status.insert(k.into(), v.clone());
            }
        }
        let mut other_current = Vec::new();
        for m in status["currentMetrics"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            if m["type"] == "Resource"
                && m["resource"]["name"] == "cpu"
                && !v1status.contains_key("currentCPUUtilizationPercentage")
            {
                if let Some(u) = m["resource"]["current"].get("averageUtilization") {
                    v1status.insert("currentCPUUtilizationPercentage".into(), u.clone());
                    continue;
                }
            }
            other_current.push(m);
        }
        if !other_current.is_empty() {
            put_annotation(&mut obj, ANN_CURRENT, &Value::Array(other_current));
        }
        if let Some(c) = status.get("conditions") {
            put_annotation(&mut obj, ANN_CONDITIONS, c);
        }
        obj["status"] = Value::Object(v1status);
    }
    obj
}

fn hpa_v1_to_v2(mut obj: Value) -> Value {
    let spec = obj.get("spec").cloned().unwrap_or(json!({}));
    let mut v2spec = Map::new();
    for k in ["scaleTargetRef", "minReplicas", "maxReplicas"] {
        if let Some(v) = spec.get(k) {
            v2spec.insert(k.into(), v.clone());
        }
    }
    let mut metrics = Vec::new();
    if let Some(t) = spec
        .get("targetCPUUtilizationPercentage")
        .filter(|v| !v.is_null())
    {
        metrics.push(json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": t}}}));
    }
    if let Some(Value::Array(more)) = take_annotation(&mut obj, ANN_METRICS) {
        metrics.extend(more);
    }
    if !metrics.is_empty() {
        v2spec.insert("metrics".into(), Value::Array(metrics));
    }
    if let Some(b) = take_annotation(&mut obj, ANN_BEHAVIOR) {
        v2spec.insert("behavior".into(), b);
    }
    obj["spec"] = Value::Object(v2spec);
    let current_more = take_annotation(&mut obj, ANN_CURRENT);
    let conditions = take_annotation(&mut obj, ANN_CONDITIONS);
    if let Some(status) = obj.get("status").cloned() {
        let mut v2status = Map::new();
        for k in [
            "observedGeneration",
            "lastScaleTime",
            "currentReplicas",
            "desiredReplicas",
        ] {
            if let Some(v) = status.get(k) {
                v2status.insert(k.into(), v.clone());
            }
        }
        let mut current = Vec::new();
        if let Some(u) = status
            .get("currentCPUUtilizationPercentage")
            .filter(|v| !v.is_null())
        {
            current.push(json!({"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": u}}}));
        }
        if let Some(Value::Array(more)) = current_more {
            current.extend(more);
        }
        if !current.is_empty() {
            v2status.insert("currentMetrics".into(), Value::Array(current));
        }
        if let Some(c) = conditions {
            v2status.insert("conditions".into(), c);
        }
        obj["status"] = Value::Object(v2status);
    }
    obj
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hpa_round_trips_through_v1_keeping_v2_only_fields() {
        let v2 = json!({"metadata": {"name": "h"}, "spec": {"minReplicas": 1, "maxReplicas": 5,
        "scaleTargetRef": {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"},
        "metrics": [
            {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}},
            {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "10"}}}
        ]}});
        let v1 = convert(
            "HorizontalPodAutoscaler",
            v2.clone(),
            "autoscaling/v2",
            "autoscaling/v1",
        )
        .unwrap();
        assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 70);
        assert!(v1["spec"].get("metrics").is_none());
        let back = convert(
            "HorizontalPodAutoscaler",
            v1,
            "autoscaling/v1",
            "autoscaling/v2",
        )
        .unwrap();
        assert_eq!(back["spec"], v2["spec"]);
        assert!(back["metadata"].get("annotations").is_none());
    }

    #[test]
    fn events_rename_fields_both_ways() {
        let core =
            json!({"involvedObject": {"kind": "Pod"}, "message": "m", "count": 2, "reason": "r"});
        let ev = convert("Event", core.clone(), "v1", "events.k8s.io/v1").unwrap();
        assert_eq!(
            (
                ev["regarding"]["kind"].as_str(),
                ev["note"].as_str(),
                ev["deprecatedCount"].as_i64()
            ),
            (Some("Pod"), Some("m"), Some(2))
        );
        assert_eq!(
            convert("Event", ev, "events.k8s.io/v1", "v1").unwrap(),
            core
        );
    }
}
