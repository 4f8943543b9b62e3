//! Converting custom resources between versions: the `None` strategy (only apiVersion changes)
//! and the `Webhook` strategy (a `ConversionReview` v1 sent to the CRD's webhook).
//!
//! A webhook call converts every object of one request at once (a list is one review). The
//! reply is checked as kube-apiserver checks it: same uid, `result.status: Success`, one
//! converted object per object sent, each at the desired apiVersion with the same kind, name,
//! namespace and uid. Of the metadata only labels and annotations may change (and must stay
//! valid); everything else is taken back from the original. Any failure is a 500 whose message
//! starts `conversion webhook for <group>/<version>, Kind=<Kind> ...`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kubox_apimachinery::validation;
use serde_json::{json, Value};

use crate::registry::strategy::{api_version_of, ConversionError};
use crate::webhook::{ClientConfig, WebhookClient};

/// How long kube-apiserver waits for a conversion webhook.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Converts custom resources between the versions of one CRD.
#[async_trait::async_trait]
pub trait Converter: Send + Sync {
    /// Convert `objs` (each at its own apiVersion) to apiVersion `to`, in one go.
    async fn convert(&self, objs: Vec<Value>, to: &str) -> Result<Vec<Value>, ConversionError>;
}

/// The `None` conversion strategy: only apiVersion changes.
pub struct NoConversion;

#[async_trait::async_trait]
impl Converter for NoConversion {
    async fn convert(&self, mut objs: Vec<Value>, to: &str) -> Result<Vec<Value>, ConversionError> {
        for o in &mut objs {
            o["apiVersion"] = json!(to);
        }
        Ok(objs)
    }
}

/// The `Webhook` conversion strategy.
pub struct WebhookConverter {
    client: Arc<WebhookClient>,
    config: ClientConfig,
    /// Each version's schema (by apiVersion): what a webhook returns is pruned against the
    /// schema of the version it converted to, as kube-apiserver prunes it.
    schemas: BTreeMap<String, Arc<dyn crate::crd::strategy::SchemaOps>>,
}

impl WebhookConverter {
    /// A converter calling the webhook `config` describes.
    pub fn new(
        client: Arc<WebhookClient>,
        config: ClientConfig,
        schemas: BTreeMap<String, Arc<dyn crate::crd::strategy::SchemaOps>>,
    ) -> Self {
        WebhookConverter {
            client,
            config,
            schemas,
        }
    }
}

/// `group/version, Kind=Kind`, as Go prints a GroupVersionKind.
fn gvk_of(obj: &Value) -> String {
    format!(
        "{}, Kind={}",
        api_version_of(obj),
        obj["kind"].as_str().unwrap_or_default()
    )
}

#[async_trait::async_trait]
impl Converter for WebhookConverter {
    async fn convert(&self, objs: Vec<Value>, to: &str) -> Result<Vec<Value>, ConversionError> {
        let Some(first) = objs.first() else {
            return Ok(objs);
        };
        let gvk = gvk_of(first);
        let uid = uuid::Uuid::new_v4().to_string();
        let review = json!({
            "kind": "ConversionReview",
            "apiVersion": "apiextensions.k8s.io/v1",
            "request": {"uid": uid, "desiredAPIVersion": to, "objects": objs},
        });
        let failed =
            |why: String| ConversionError::Failed(format!("conversion webhook for {gvk} {why}"));
        let reply = self
            .client
            .post(&self.config, &review, TIMEOUT)
            .await
            .map_err(|e| failed(format!("failed: {e}")))?;
        let converted =
            converted_objects(&uid, reply).map_err(|e| failed(format!("failed: {e}")))?;
        if converted.len() != objs.len() {
            return Err(failed(format!(
                "returned {} objects, expected {}",
                converted.len(),
                objs.len()
            )));
        }
        let mut out = Vec::with_capacity(objs.len());
        for (i, (original, mut converted)) in objs.into_iter().zip(converted).enumerate() {
            let invalid = |why: String| {
                failed(format!(
                    "returned invalid converted object at index {i}: {why}"
                ))
            };
            if api_version_of(&converted) != to {
                return Err(invalid(format!(
                    "invalid groupVersion (expected {to}, received {})",
                    api_version_of(&converted)
                )));
            }
            check_identity(&original, &converted).map_err(invalid)?;
            restore_metadata(&original, &mut converted).map_err(|why| {
                failed(format!(
                    "returned invalid metadata in object at index {i}: {why}"
                ))
            })?;
            if let Some(schema) = self.schemas.get(to) {
                schema.prune(&mut converted);
            }
            out.push(converted);
        }
        Ok(out)
    }
}

/// The converted objects of a ConversionReview v1 reply to request `uid`.
fn converted_objects(uid: &str, reply: Value) -> Result<Vec<Value>, String> {
    let gvk = (reply["apiVersion"].as_str(), reply["kind"].as_str());
    if gvk != (Some("apiextensions.k8s.io/v1"), Some("ConversionReview")) {
        return Err(format!(
            "expected webhook response of apiextensions.k8s.io/v1, Kind=ConversionReview, got {}, Kind={}",
            gvk.0.unwrap_or_default(),
            gvk.1.unwrap_or_default()
        ));
    }
    let Some(response) = reply.get("response").filter(|r| r.is_object()) else {
        return Err("no response provided".into());
    };
    let got = response["uid"].as_str().unwrap_or_default();
    if got != uid {
        return Err(format!("expected response.uid={uid:?}, got {got:?}"));
    }
    let status = response["result"]["status"].as_str().unwrap_or_default();
    if status != "Success" {
        return Err(match response["result"]["message"].as_str() {
            Some(m) if !m.is_empty() => m.to_string(),
            _ => format!("response.result.status was '{status}', not 'Success'"),
        });
    }
    Ok(response["convertedObjects"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

/// Kind, name, namespace and uid must survive conversion.
fn check_identity(original: &Value, converted: &Value) -> Result<(), String> {
    let kind = |o: &Value| o["kind"].as_str().unwrap_or_default().to_string();
    if kind(original) != kind(converted) {
        return Err(format!(
            "invalid kind (expected {}, received {})",
            kind(original),
            kind(converted)
        ));
    }
    for (field, what) in [("name", "name"), ("namespace", "namespace"), ("uid", "UID")] {
        let a = original["metadata"][field].as_str().unwrap_or_default();
        let b = converted["metadata"][field].as_str().unwrap_or_default();
        if a != b {
            return Err(format!("must have the same {what}: {a} != {b}"));
        }
    }
    Ok(())
}

/// Put the original metadata back on the converted object, keeping only its labels and
/// annotations (validated when they changed).
fn restore_metadata(original: &Value, converted: &mut Value) -> Result<(), String> {
    let Some(theirs) = converted.get("metadata") else {
        return Err("missing metadata in converted object".into());
    };
    let Some(theirs) = theirs.as_object().cloned() else {
        return Err("invalid metadata in converted object".into());
    };
    let mut meta = original["metadata"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for field in ["labels", "annotations"] {
        let Some(value) = theirs.get(field).filter(|v| !v.is_null()) else {
            meta.remove(field);
            continue;
        };
        let Some(map) = value.as_object() else {
            return Err(format!("invalid metadata.{field} in converted object"));
        };
        let mut strings = BTreeMap::new();
        for (k, v) in map {
            let Some(s) = v.as_str() else {
                return Err(format!(
                    "metadata.{field}[{k}] must be a string in converted object"
                ));
            };
            strings.insert(k.clone(), s.to_string());
        }
        if meta.get(field) != Some(value) {
            let errs = if field == "labels" {
                validation::validate_labels(&strings, "metadata.labels")
            } else {
                validation::validate_annotations(&strings, "metadata.annotation")
            };
            if !errs.is_empty() {
                return Err(validation::aggregate_message(&errs));
            }
        }
        meta.insert(field.to_string(), value.clone());
    }
    converted["metadata"] = Value::Object(meta);
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn converted_metadata_keeps_only_label_and_annotation_changes() {
        let original = json!({"metadata": {"name": "a", "uid": "u", "labels": {"x": "1"},
            "generation": 3}});
        let mut converted = json!({"metadata": {"name": "a", "uid": "u", "labels": {"y": "2"},
            "annotations": {"n": "v"}, "generation": 9, "finalizers": ["f"]}});
        restore_metadata(&original, &mut converted).unwrap();
        assert_eq!(
            converted["metadata"],
            json!({"name": "a", "uid": "u", "labels": {"y": "2"}, "annotations": {"n": "v"},
                "generation": 3})
        );
        let mut bad = json!({"metadata": {"labels": {"in valid": "x"}}});
        assert!(restore_metadata(&original, &mut bad).is_err());
    }

    #[test]
    fn a_reply_for_another_request_is_refused() {
        let reply = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
            "response": {"uid": "other", "result": {"status": "Success"}, "convertedObjects": []}});
        assert_eq!(
            converted_objects("mine", reply).unwrap_err(),
            "expected response.uid=\"mine\", got \"other\""
        );
    }
}
