//! List and watch filtering: label and field selectors applied to JSON objects.

use kubox_apimachinery::fields::{self, FieldSelector};
use kubox_apimachinery::labels::LabelSelector;
use serde_json::Value;

use crate::objects::labels_of;
use crate::query::Query;
use crate::registry::ResourceInfo;
use crate::status::{ApiError, ApiResult};

/// The selectors of one list or watch request.
#[derive(Debug, Default)]
pub struct Filter {
    labels: Option<LabelSelector>,
    fields: Option<FieldSelector>,
}

impl Filter {
    /// Parse `labelSelector` and `fieldSelector`, checking fields against what the resource supports.
    pub fn from_query(q: &Query, info: &ResourceInfo) -> ApiResult<Filter> {
        let labels = match q.get("labelSelector").filter(|s| !s.trim().is_empty()) {
            Some(s) => {
                Some(LabelSelector::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?)
            }
            None => None,
        };
        let fields = match q.get("fieldSelector").filter(|s| !s.trim().is_empty()) {
            Some(s) => {
                let mut sel =
                    FieldSelector::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?;
                if info.group == "events.k8s.io" {
                    sel = sel.renamed(events_field_label);
                }
                let own = info.strategy.selectable_fields();
                let checked = if own.is_empty() {
                    sel.check_default_supported()
                } else {
                    let mut all = vec!["metadata.name", "metadata.namespace"];
                    all.extend_from_slice(own);
                    sel.check_supported(&all)
                };
                checked.map_err(|e| ApiError::bad_request(e.to_string()))?;
                Some(sel)
            }
            None => None,
        };
        Ok(Filter { labels, fields })
    }

    /// Does the filter select everything?
    pub fn is_everything(&self) -> bool {
        self.labels.is_none() && self.fields.is_none()
    }

    /// Does an object match?
    pub fn matches(&self, obj: &Value) -> bool {
        if let Some(l) = &self.labels {
            if !l.matches(&labels_of(obj)) {
                return false;
            }
        }
        if let Some(f) = &self.fields {
            if !f.matches(|path| selectable_value(obj, path)) {
                return false;
            }
        }
        true
    }

    /// Must objects be converted to the request's version before they are matched? For a
    /// custom resource when the field selector reads more than the metadata and the request is
    /// not at the storage version: each version has its own selectable fields, read from the
    /// object at that version. (Built-in field labels name the stored object's fields, as
    /// kube's field label conversion maps them to the internal type.)
    pub fn selects_at_request_version(&self, info: &ResourceInfo) -> bool {
        if !info.strategy.is_custom() {
            return false;
        }
        let object_fields = self.fields.as_ref().is_some_and(|f| {
            f.requirements()
                .iter()
                .any(|r| !matches!(r.field.as_str(), "metadata.name" | "metadata.namespace"))
        });
        object_fields && !info.serves_api_version(&info.storage_api_version)
    }

    /// The single object name a `metadata.name=x` field selector pins, if any.
    pub fn exact_name(&self) -> Option<String> {
        self.exact_field("metadata.name")
    }

    /// The single value an `f=x` field selector pins field `f` to, if any.
    pub fn exact_field(&self, field: &str) -> Option<String> {
        self.fields
            .as_ref()
            .and_then(|f| f.requires_exact_match(field))
            .map(str::to_string)
    }
}

/// events.k8s.io's field labels as the stored (core) Event names them (kube's field label
/// conversion for events.k8s.io/v1).
fn events_field_label(field: &str) -> Option<&'static str> {
    Some(match field {
        "regarding.kind" => "involvedObject.kind",
        "regarding.namespace" => "involvedObject.namespace",
        "regarding.name" => "involvedObject.name",
        "regarding.uid" => "involvedObject.uid",
        "regarding.apiVersion" => "involvedObject.apiVersion",
        "regarding.resourceVersion" => "involvedObject.resourceVersion",
        "regarding.fieldPath" => "involvedObject.fieldPath",
        "reportingController" => "reportingComponent",
        _ => return None,
    })
}

/// A selectable field's value as kube's `ToSelectableFields` formats it: an unset field is its
/// Go zero value (`false` for `spec.unschedulable` and `spec.hostNetwork`, `0` for the replica
/// and success counts, `""` otherwise), and an Event's `source` is its source component.
fn selectable_value(obj: &Value, path: &str) -> Option<String> {
    if path == "source" && obj["source"].is_object() {
        return fields::object_field(obj, "source.component");
    }
    fields::object_field(obj, path).or_else(|| {
        let zero = match path {
            "spec.unschedulable" | "spec.hostNetwork" => "false",
            "status.replicas" | "status.successful" => "0",
            _ => return None,
        };
        Some(zero.to_string())
    })
}
