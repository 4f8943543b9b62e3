//! Validation of CustomResourceDefinition objects, and the schema machinery for their custom
//! resources.

use std::sync::Arc;

use kubox_apimachinery::validation::{self, FieldError};
use kubox_openapi::crd_schema::{validate_crd_schema, CustomResourceSchema};
use serde_json::Value;

use super::strategy::SchemaOps;

/// A CRD version's compiled `openAPIV3Schema`: defaulting, pruning, validation and CEL rules.
struct CrdSchemaOps(CustomResourceSchema);

impl SchemaOps for CrdSchemaOps {
    fn default(&self, obj: &mut Value) {
        self.0.default(obj);
    }

    fn prune(&self, obj: &mut Value) -> Vec<String> {
        self.0.prune(obj)
    }

    fn validate(&self, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
        let (errs, ratcheted) = self.0.validate_with_warnings(obj, old);
        // kube-apiserver returns a ratcheted rule failure as a warning.
        for w in ratcheted {
            crate::warning::add(w);
        }
        errs
    }

    fn structural(&self) -> &kubox_openapi::Structural {
        self.0.structural()
    }

    fn defaults_absent(&self, name: &str) -> bool {
        self.0.defaults_absent(name)
    }

    fn applied_null_errors(&self, config: &Value) -> Vec<FieldError> {
        self.0.applied_null_errors(config)
    }
}

/// The schema operations for one version of a CRD (None when it has no schema). Built once per
/// registration of the version: the schema is parsed and its CEL rules compiled here.
pub fn schema_ops(_crd: &Value, version: &Value) -> Option<Arc<dyn SchemaOps>> {
    let schema = version.get("schema")?.get("openAPIV3Schema")?;
    if !schema.is_object() {
        return None;
    }
    Some(Arc::new(CrdSchemaOps(CustomResourceSchema::new(schema))))
}

/// kube's checks of a printer column (`ValidateCustomResourceColumnDefinition`): name and type
/// required, type and format from kube's sets, the JSONPath a path starting with `.` (kube names
/// that field `JSONPath` in its messages). Whether kube's JSONPath parser takes the path is not
/// checked, as kube does not: a column it cannot parse is dropped when serving.
fn validate_column(c: &Value, at: &str, errs: &mut Vec<FieldError>) {
    const TYPES: &str = "boolean,date,integer,number,string";
    const FORMATS: &str = "byte,date,date-time,double,float,int32,int64,password";
    let s = |k: &str| c[k].as_str().unwrap_or_default();
    if s("name").is_empty() {
        errs.push(FieldError::required(format!("{at}.name"), ""));
    }
    match s("type") {
        "" => errs.push(FieldError::required(
            format!("{at}.type"),
            format!("must be one of {TYPES}"),
        )),
        t if !TYPES.split(',').any(|x| x == t) => errs.push(FieldError::invalid(
            format!("{at}.type"),
            t,
            format!("must be one of {TYPES}"),
        )),
        _ => {}
    }
    let format = s("format");
    if !format.is_empty() && !FORMATS.split(',').any(|x| x == format) {
        errs.push(FieldError::invalid(
            format!("{at}.format"),
            format,
            format!("must be one of {FORMATS}"),
        ));
    }
    match s("jsonPath") {
        "" => errs.push(FieldError::required(format!("{at}.JSONPath"), "")),
        p if !p.starts_with('.') => errs.push(FieldError::invalid(
            format!("{at}.JSONPath"),
            p,
            "must be a simple json path starting with .",
        )),
        _ => {}
    }
}

/// Checks on a CRD beyond its shape: names, group, versions, scope.
pub fn validate_crd(crd: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = &crd["spec"];
    let group = spec["group"].as_str().unwrap_or_default();
    let plural = spec["names"]["plural"].as_str().unwrap_or_default();
    let name = crd["metadata"]["name"].as_str().unwrap_or_default();
    if group.is_empty() {
        errs.push(FieldError::required("spec.group", ""));
    } else {
        if !group.contains('.') {
            errs.push(FieldError::invalid(
                "spec.group",
                group,
                "should be a domain with at least one dot",
            ));
        }
        for m in validation::is_dns1123_subdomain(group) {
            errs.push(FieldError::invalid("spec.group", group, m));
        }
    }
    if plural.is_empty() {
        errs.push(FieldError::required("spec.names.plural", ""));
    } else {
        for m in validation::is_dns1035_label(plural) {
            errs.push(FieldError::invalid("spec.names.plural", plural, m));
        }
    }
    if !plural.is_empty() && !group.is_empty() && name != format!("{plural}.{group}") {
        errs.push(FieldError::invalid(
            "metadata.name",
            name,
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    let kind = spec["names"]["kind"].as_str().unwrap_or_default();
    if kind.is_empty() {
        errs.push(FieldError::required("spec.names.kind", ""));
    }
    if let Some(singular) = spec["names"]["singular"].as_str().filter(|s| !s.is_empty()) {
        for m in validation::is_dns1035_label(singular) {
            errs.push(FieldError::invalid("spec.names.singular", singular, m));
        }
    }
    match spec["scope"].as_str() {
        Some("Namespaced") | Some("Cluster") => {}
        Some(other) => errs.push(FieldError::not_supported(
            "spec.scope",
            other,
            &["Cluster", "Namespaced"],
        )),
        None => errs.push(FieldError::required("spec.scope", "")),
    }
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    if versions.is_empty() {
        errs.push(FieldError::invalid_rendered(
            "spec.versions",
            "null",
            "must have exactly one version marked as storage version",
        ));
    } else {
        let storage = versions.iter().filter(|v| v["storage"] == true).count();
        if storage != 1 {
            errs.push(FieldError::invalid_rendered(
                "spec.versions",
                "[]apiextensions.CustomResourceDefinitionVersion{...}",
                "must have exactly one version marked as storage version",
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, v) in versions.iter().enumerate() {
            for (j, c) in v["additionalPrinterColumns"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                validate_column(
                    c,
                    &format!("spec.versions[{i}].additionalPrinterColumns[{j}]"),
                    &mut errs,
                );
            }
            let vn = v["name"].as_str().unwrap_or_default();
            if !seen.insert(vn.to_string()) {
                errs.push(FieldError::duplicate(
                    format!("spec.versions[{i}].name"),
                    vn,
                ));
            }
            for m in validation::is_dns1035_label(vn) {
                errs.push(FieldError::invalid(
                    format!("spec.versions[{i}].name"),
                    vn,
                    m,
                ));
            }
            // The schema: structural, kube's OpenAPI restrictions, valid defaults, CEL rules
            // that compile within the cost limits.
            if let Some(schema) = v["schema"].get("openAPIV3Schema") {
                errs.extend(validate_crd_schema(
                    schema,
                    &format!("spec.versions[{i}].schema.openAPIV3Schema"),
                ));
            }
        }
        if !versions.iter().any(|v| v["served"] == true) {
            errs.push(FieldError::invalid_rendered(
                "spec.versions",
                "[]apiextensions.CustomResourceDefinitionVersion{...}",
                "must have at least one version marked as served",
            ));
        }
    }
    errs.extend(validate_conversion(&spec["conversion"]));
    errs
}

/// `spec.conversion`: paths and messages of kube-apiserver, which validates the internal form
/// (`webhookClientConfig`, `conversionReviewVersions` directly under `conversion`).
fn validate_conversion(conversion: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let webhook = conversion.get("webhook").filter(|w| !w.is_null());
    match conversion["strategy"].as_str() {
        None | Some("None") => {
            if webhook.is_some_and(|w| w.get("clientConfig").is_some_and(|c| !c.is_null())) {
                errs.push(FieldError::forbidden(
                    "spec.conversion.webhookClientConfig",
                    "should not be set when strategy is not set to Webhook",
                ));
            }
        }
        Some("Webhook") => {
            let config = webhook
                .and_then(|w| w.get("clientConfig"))
                .filter(|c| !c.is_null());
            match config {
                None => errs.push(FieldError::required(
                    "spec.conversion.webhookClientConfig",
                    "required when strategy is set to Webhook",
                )),
                Some(c) => {
                    let url = c["url"].as_str().filter(|u| !u.is_empty());
                    let service = c.get("service").filter(|s| !s.is_null());
                    if url.is_some() == service.is_some() {
                        errs.push(FieldError::required(
                            "spec.conversion.webhookClientConfig",
                            "exactly one of url or service is required",
                        ));
                    }
                    if let Some(u) = url.filter(|u| !u.starts_with("https://")) {
                        errs.push(FieldError::invalid(
                            "spec.conversion.webhookClientConfig.url",
                            u,
                            "'https' is the only allowed URL scheme",
                        ));
                    }
                }
            }
            let versions: Vec<&str> = webhook
                .and_then(|w| w["conversionReviewVersions"].as_array())
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let path = "spec.conversion.conversionReviewVersions";
            if versions.is_empty() {
                errs.push(FieldError::required(path, ""));
            } else if !versions.iter().any(|v| *v == "v1" || *v == "v1beta1") {
                let rendered = versions
                    .iter()
                    .map(|v| validation::go_quote(v))
                    .collect::<Vec<_>>()
                    .join(", ");
                errs.push(FieldError::invalid_rendered(
                    path,
                    format!("[]string{{{rendered}}}"),
                    "must include at least one of v1, v1beta1",
                ));
            }
        }
        Some(other) => errs.push(FieldError::not_supported(
            "spec.conversion.strategy",
            other,
            &["None", "Webhook"],
        )),
    }
    errs
}
