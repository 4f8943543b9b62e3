//! The strategy of one served version of a custom resource, built from its CRD.

use std::sync::Arc;
use std::time::SystemTime;

use kubox_apimachinery::patch_meta::BuiltinPatchMeta;
use kubox_apimachinery::printers::{self, ColumnDefinition};
use kubox_apimachinery::validation::{self, FieldError, NameValidation};
use kubox_openapi::published::PublishedSchema;
use kubox_openapi::Structural;
use serde_json::{json, Value};

use crate::crd::conversion::Converter;
use crate::jsonpath::Path;
use crate::registry::strategy::{spec_of, split_status, ConversionError, ScalePaths, Strategy};

/// A printer column of a CRD version.
#[derive(Debug, Clone)]
pub struct PrinterColumn {
    /// Column name.
    pub name: String,
    /// OpenAPI type (`string`, `integer`, `number`, `boolean`, `date`).
    pub type_: String,
    /// OpenAPI format.
    pub format: String,
    /// Description.
    pub description: String,
    /// 0 = always shown, >0 = only with `-o wide`.
    pub priority: i32,
    /// The JSONPath that fills it.
    pub path: Path,
}

/// Behaviour of one custom resource version.
pub struct CustomResourceStrategy {
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// `subresources.status` is set.
    pub status: bool,
    /// `subresources.scale` paths.
    pub scale: Option<ScalePaths>,
    /// Printer columns (empty = the default NAME, AGE).
    pub columns: Vec<PrinterColumn>,
    /// Leaked, 'static column definitions for the Table encoder.
    column_defs: &'static [ColumnDefinition],
    /// Selectable fields (`spec.color`), from `selectableFields`.
    pub selectable: &'static [&'static str],
    /// Version-specific schema machinery (validation, pruning, defaulting, CEL).
    pub schema: Option<Arc<dyn SchemaOps>>,
    /// Conversion between versions.
    pub conversion: Arc<dyn Converter>,
    /// The `Warning` requests to a deprecated version carry.
    pub deprecation_warning: Option<String>,
    /// The kind's and list kind's published OpenAPI schemas.
    pub published: Option<Arc<PublishedSchema>>,
}

/// What a CRD's structural schema does to objects of one version.
pub trait SchemaOps: Send + Sync {
    /// Apply defaults (on create, update and read).
    fn default(&self, obj: &mut Value);
    /// Remove unknown fields; returns their paths.
    fn prune(&self, obj: &mut Value) -> Vec<String>;
    /// Validate (schema and CEL rules); `old` is set on update for transition rules.
    fn validate(&self, obj: &Value, old: Option<&Value>) -> Vec<FieldError>;
    /// The structural schema (for strict field validation).
    fn structural(&self) -> &Structural;
    /// Does defaulting add the top-level property `name` when an object lacks it?
    fn defaults_absent(&self, name: &str) -> bool;
    /// The errors of an apply configuration's explicit `null`s of typed fields.
    fn applied_null_errors(&self, config: &Value) -> Vec<FieldError>;
}

fn leak_columns(cols: &[PrinterColumn]) -> &'static [ColumnDefinition] {
    let mut defs = vec![ColumnDefinition {
        name: "Name",
        type_: "string",
        format: "name",
        description: "Name must be unique within a namespace.",
        priority: 0,
    }];
    if cols.is_empty() {
        defs.push(ColumnDefinition {
            name: "Age",
            type_: "date",
            format: "",
            description: "CreationTimestamp is a timestamp representing the server time when this object was created.",
            priority: 0,
        });
    }
    for c in cols {
        defs.push(ColumnDefinition {
            name: Box::leak(c.name.clone().into_boxed_str()),
            type_: Box::leak(c.type_.clone().into_boxed_str()),
            format: Box::leak(c.format.clone().into_boxed_str()),
            description: Box::leak(c.description.clone().into_boxed_str()),
            priority: c.priority,
        });
    }
    Box::leak(defs.into_boxed_slice())
}

impl CustomResourceStrategy {
    /// A strategy; column and selectable-field tables are built once here.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        namespaced: bool,
        status: bool,
        scale: Option<ScalePaths>,
        columns: Vec<PrinterColumn>,
        selectable: Vec<String>,
        schema: Option<Arc<dyn SchemaOps>>,
        conversion: Arc<dyn Converter>,
        deprecation_warning: Option<String>,
    ) -> Self {
        // Column and field tables are leaked once per CRD version registration: bounded by the
        // number of CRD changes, and what lets Strategy hand out 'static slices.
        let column_defs = leak_columns(&columns);
        let selectable: Vec<&'static str> = selectable
            .into_iter()
            .map(|s| &*Box::leak(s.into_boxed_str()))
            .collect();
        CustomResourceStrategy {
            namespaced,
            status,
            scale,
            columns,
            column_defs,
            selectable: Box::leak(selectable.into_boxed_slice()),
            schema,
            conversion,
            deprecation_warning,
            published: None,
        }
    }

    /// With the schemas this version publishes in the OpenAPI documents.
    pub fn with_published_schema(mut self, published: Option<Arc<PublishedSchema>>) -> Self {
        self.published = published;
        self
    }
}

/// A printer column's cell as kube-apiserver makes it (`cellForJSONValue`): the value when it
/// has the column's type (an integer column truncates floats, a number column takes integers),
/// a string column prints any value (strings bare, lists and objects as JSON), a date column
/// shows the age of a timestamp (`<invalid>` when it is not one); otherwise null.
fn cell(v: Option<&Value>, type_: &str, now: SystemTime) -> Value {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Value::Null;
    };
    match (type_, v) {
        ("integer", Value::Number(n)) => match n.as_i64() {
            Some(i) => json!(i),
            None => n.as_f64().map_or(Value::Null, |f| json!(f as i64)),
        },
        ("number", Value::Number(_)) => v.clone(),
        ("boolean", Value::Bool(_)) => v.clone(),
        ("string", v) => json!(crate::jsonpath::text_of(v)),
        ("date", Value::String(s)) => match chrono::DateTime::parse_from_rfc3339(s) {
            Ok(t) => {
                let then: SystemTime = t.into();
                json!(printers::human_duration(
                    now.duration_since(then).unwrap_or_default()
                ))
            }
            Err(_) => json!("<invalid>"),
        },
        _ => Value::Null,
    }
}

#[async_trait::async_trait]
impl Strategy for CustomResourceStrategy {
    fn has_status(&self) -> bool {
        self.status
    }

    fn published_schema(&self) -> Option<&PublishedSchema> {
        self.published.as_deref()
    }

    fn structural_schema(&self) -> Option<&Structural> {
        self.schema.as_ref().map(|s| s.structural())
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        if self.status {
            if let Some(m) = obj.as_object_mut() {
                m.remove("status");
            }
        }
        obj["metadata"]["generation"] = json!(1);
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value, subresource: &str) {
        if self.status {
            split_status(new, old, subresource);
        }
        let gen = old["metadata"]["generation"].as_i64().unwrap_or(1);
        // Without a status subresource every non-metadata change counts; with one, spec_of
        // already leaves status out.
        let changed = if self.status {
            spec_of(new) != spec_of(old)
        } else {
            let strip = |v: &Value| {
                let mut o = v.clone();
                if let Some(m) = o.as_object_mut() {
                    m.remove("metadata");
                    m.remove("apiVersion");
                    m.remove("kind");
                }
                o
            };
            strip(new) != strip(old)
        };
        new["metadata"]["generation"] = json!(if changed { gen + 1 } else { gen });
    }

    fn default(&self, obj: &mut Value) {
        if let Some(s) = &self.schema {
            s.default(obj);
            s.prune(obj);
        }
    }

    fn validate(&self, obj: &Value) -> Result<Vec<FieldError>, String> {
        let mut errs = validation::validate_object_meta(
            &obj["metadata"],
            self.namespaced,
            NameValidation::Subdomain,
        );
        if let Some(s) = &self.schema {
            errs.extend(s.validate(obj, None));
        }
        Ok(errs)
    }

    fn applied_null_errors(&self, config: &Value) -> Vec<FieldError> {
        match &self.schema {
            Some(s) => s.applied_null_errors(config),
            None => Vec::new(),
        }
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Result<Vec<FieldError>, String> {
        let mut errs = validation::validate_object_meta(
            &new["metadata"],
            self.namespaced,
            NameValidation::Subdomain,
        );
        errs.extend(validation::validate_object_meta_update(
            &new["metadata"],
            &old["metadata"],
        ));
        if let Some(s) = &self.schema {
            errs.extend(s.validate(new, Some(old)));
        }
        Ok(errs)
    }

    fn selectable_fields(&self) -> &'static [&'static str] {
        self.selectable
    }

    fn columns(&self) -> &'static [ColumnDefinition] {
        self.column_defs
    }

    fn row_cells(&self, obj: &Value, now: SystemTime) -> Vec<Value> {
        let mut cells = vec![obj["metadata"]["name"].clone()];
        if self.columns.is_empty() {
            cells.push(cell(obj["metadata"].get("creationTimestamp"), "date", now));
        }
        for c in &self.columns {
            // The first value the path selects, as kube's table convertor takes it.
            let values = c.path.values(obj);
            cells.push(cell(values.first().map(|v| v.as_ref()), &c.type_, now));
        }
        cells
    }

    fn patch_meta(&self) -> Option<BuiltinPatchMeta> {
        None
    }

    fn is_custom(&self) -> bool {
        true
    }

    async fn convert_objects(
        &self,
        objs: Vec<Value>,
        to: &str,
    ) -> Result<Vec<Value>, ConversionError> {
        self.conversion.convert(objs, to).await
    }

    fn deprecation_warning(&self) -> Option<&str> {
        self.deprecation_warning.as_deref()
    }

    fn settled_by_create(&self) -> bool {
        // Defaulting then pruning is idempotent; of what prepare_for_create changes after it,
        // only a dropped `status` could be defaulted back.
        !(self.status
            && self
                .schema
                .as_ref()
                .is_some_and(|s| s.defaults_absent("status")))
    }

    fn scale_paths(&self) -> ScalePaths {
        self.scale.clone().unwrap_or(ScalePaths {
            spec_replicas: ".spec.replicas".into(),
            status_replicas: ".status.replicas".into(),
            label_selector: None,
        })
    }
}
