//! Per-resource behaviour: what differs between resources while they all take the same path.
//!
//! A [`Strategy`] decides create/update preparation (status reset, status/spec split, generation),
//! validation, field-selector fields, table columns and version conversion. Built-ins share one
//! [`BuiltinStrategy`] driven by the catalogue; custom resources get their own.

use std::time::SystemTime;

use kubox_apimachinery::builtin::BuiltinResource;
use kubox_apimachinery::patch_meta::BuiltinPatchMeta;
use kubox_apimachinery::printers::{self, ColumnDefinition};
use kubox_apimachinery::validation::{self, FieldError};
use serde_json::{json, Value};

use super::spec::{KindSpec, Validation};
use crate::defaults;

/// Why objects could not be converted between versions.
#[derive(Debug, Clone)]
pub enum ConversionError {
    /// The object has no form at the target version (built-in conversion): 400 on writes, 500
    /// on reads.
    Invalid(String),
    /// The converter itself failed (a conversion webhook): a 500 carrying this message on reads
    /// and writes alike, as kube-apiserver answers.
    Failed(String),
}

/// The apiVersion an object says it is at.
pub fn api_version_of(obj: &Value) -> &str {
    obj["apiVersion"].as_str().unwrap_or_default()
}

/// Per-resource behaviour. Objects are JSON trees at the storage version for built-ins and at the
/// request's version for custom resources ([`crate::objects::to_write_version`]).
#[async_trait::async_trait]
pub trait Strategy: Send + Sync {
    /// Does the resource have a status subresource (spec/status split)?
    fn has_status(&self) -> bool;

    /// Reset or set what a create must not carry from the client (status, generation).
    fn prepare_for_create(&self, obj: &mut Value);

    /// Carry over what an update of the main resource (or of `/status`) must not change.
    fn prepare_for_update(&self, new: &mut Value, old: &Value, subresource: &str);

    /// Fill in defaults (run on every write, before validation).
    fn default(&self, obj: &mut Value);

    /// Validate a new object whose shape (each value's type) the store has checked. Errors a
    /// client's request cannot be served with otherwise come back as `Err(message)`: a 400.
    fn validate(&self, obj: &Value) -> Result<Vec<FieldError>, String>;

    /// Validate an update against the old object.
    fn validate_update(&self, new: &Value, old: &Value) -> Result<Vec<FieldError>, String>;

    /// What an update through subresource `sub` may not do beyond the resource's own rules
    /// (a Pod's existing ephemeral containers may not change through `ephemeralcontainers`).
    fn validate_subresource_update(
        &self,
        _sub: &str,
        _new: &Value,
        _old: &Value,
    ) -> Vec<FieldError> {
        Vec::new()
    }

    /// The errors of the explicit `null`s a server-side apply configuration sets: a custom
    /// resource's typed, non-nullable fields refuse them (kube validates the applied object
    /// as merged); built-ins drop them as a Go round trip does.
    fn applied_null_errors(&self, _config: &Value) -> Vec<FieldError> {
        Vec::new()
    }

    /// Field-selector fields besides metadata.name and metadata.namespace.
    fn selectable_fields(&self) -> &'static [&'static str];

    /// PUT of a missing object creates it.
    fn allow_create_on_update(&self) -> bool {
        false
    }

    /// Table columns.
    fn columns(&self) -> &'static [ColumnDefinition];

    /// One table row's cells.
    fn row_cells(&self, obj: &Value, now: SystemTime) -> Vec<Value>;

    /// Strategic-merge-patch metadata, or None when strategic merge patch is not supported.
    fn patch_meta(&self) -> Option<BuiltinPatchMeta>;

    /// Convert an object between apiVersions (`from`/`to` are full apiVersions such as
    /// `autoscaling/v2`); its apiVersion field is rewritten by the caller.
    fn convert(&self, obj: Value, _from: &str, _to: &str) -> Result<Value, String> {
        Ok(obj)
    }

    /// Convert objects, each from the apiVersion it carries, to apiVersion `to`: one call for a
    /// whole list, so a conversion webhook sees one review per request. Built-ins convert one
    /// object at a time through [`Strategy::convert`].
    async fn convert_objects(
        &self,
        objs: Vec<Value>,
        to: &str,
    ) -> Result<Vec<Value>, ConversionError> {
        objs.into_iter()
            .map(|o| {
                let from = api_version_of(&o).to_string();
                self.convert(o, &from, to).map_err(ConversionError::Invalid)
            })
            .collect()
    }

    /// The `Warning` every request to this version carries (a deprecated CRD version).
    fn deprecation_warning(&self) -> Option<&str> {
        None
    }

    /// Where the scale subresource reads and writes replicas (built-in workloads: spec.replicas,
    /// status.replicas, and a selector computed from spec.selector).
    fn scale_paths(&self) -> ScalePaths {
        ScalePaths {
            spec_replicas: ".spec.replicas".into(),
            status_replicas: ".status.replicas".into(),
            label_selector: None,
        }
    }

    /// Custom resources keep apiVersion and kind on list items; built-in lists drop them.
    fn is_custom(&self) -> bool {
        false
    }

    /// Is an object as `create_object` leaves it (defaulted, prepared, validated) already what
    /// reading it back at the storage version gives? Custom resources are defaulted and pruned
    /// when read; when this holds, the answer to a create skips doing that a second time.
    fn settled_by_create(&self) -> bool {
        false
    }

    /// Does a delete return the deleted object (true) or a Status (false)?
    fn return_deleted_object(&self) -> bool {
        false
    }

    /// What a custom resource version publishes in `/openapi/v3` and `/openapi/v2` (built-in
    /// kinds' schemas come from `kubox_openapi::Schemas`).
    fn published_schema(&self) -> Option<&kubox_openapi::published::PublishedSchema> {
        None
    }

    /// A custom resource version's structural schema: unknown fields are reported and pruned
    /// with it as with a built-in kind's.
    fn structural_schema(&self) -> Option<&kubox_openapi::Structural> {
        None
    }
}

/// JSON paths of a scale subresource.
#[derive(Debug, Clone)]
pub struct ScalePaths {
    /// Desired replicas (`.spec.replicas`).
    pub spec_replicas: String,
    /// Observed replicas (`.status.replicas`).
    pub status_replicas: String,
    /// A string label selector in the object (custom resources), or None to derive it from
    /// `spec.selector`.
    pub label_selector: Option<String>,
}

/// The strategy every built-in resource uses, parameterised by its catalogue entry and its
/// [`KindSpec`].
pub struct BuiltinStrategy {
    group: &'static str,
    kind: &'static str,
    storage_version: &'static str,
    namespaced: bool,
    has_status: bool,
    spec: &'static KindSpec,
    /// The status a create starts from when the kind declares none: the Go zero value of its
    /// status struct (`{}`, what kube's strategies reset it to), computed once.
    zero_status: std::sync::OnceLock<Option<Value>>,
}

impl BuiltinStrategy {
    /// Validate a new object (`old`: the object it replaces, on update).
    fn validate_against(
        &self,
        obj: &Value,
        old: Option<&Value>,
    ) -> Result<Vec<FieldError>, String> {
        let mut errs =
            validation::validate_object_meta(&obj["metadata"], self.namespaced, self.spec.names);
        if self.spec.validation == Validation::Kube {
            errs.extend(kind_validation(self.group, self.kind, obj, old));
        }
        Ok(errs)
    }

    /// The strategy for a catalogue entry.
    pub fn new(b: &'static BuiltinResource) -> Self {
        BuiltinStrategy {
            group: b.group,
            kind: b.kind,
            storage_version: b.storage_version,
            namespaced: b.namespaced,
            has_status: b.subresources.iter().any(|s| s.name == "status"),
            spec: super::spec::of(b).unwrap_or(&KindSpec::PLAIN),
            zero_status: std::sync::OnceLock::new(),
        }
    }

    fn zero_status(&self) -> Option<&Value> {
        self.zero_status
            .get_or_init(|| {
                kubox_openapi::Schemas::builtin()
                    .for_kind(self.group, self.storage_version, self.kind)
                    .map(|s| s.encoded_zero_value()["status"].clone())
                    .filter(Value::is_object)
            })
            .as_ref()
    }
}

/// The spec/status split of an update: through `/status` only status (and labels, annotations)
/// change; through the main resource status is kept as it was.
pub fn split_status(new: &mut Value, old: &Value, subresource: &str) {
    if subresource == "status" {
        keep_only(
            new,
            old,
            &[
                &["status"],
                &["metadata", "labels"],
                &["metadata", "annotations"],
            ],
        );
    } else {
        crate::objects::set_or_remove(new, "status", old.get("status").cloned());
    }
}

/// A write through a subresource that changes only `paths`: `new` becomes `old` with those
/// paths (and the write's resourceVersion precondition and managedFields) taken from `new`.
fn keep_only(new: &mut Value, old: &Value, paths: &[&[&str]]) {
    let mut out = old.clone();
    let paths = paths.iter().copied().chain([
        &["metadata", "resourceVersion"][..],
        &["metadata", "managedFields"][..],
    ]);
    for path in paths {
        let Some((last, parents)) = path.split_last() else {
            continue;
        };
        let value = path.iter().try_fold(&*new, |v, k| v.get(*k)).cloned();
        let mut at = &mut out;
        for k in parents {
            if !at[*k].is_object() {
                at[*k] = json!({});
            }
            at = &mut at[*k];
        }
        crate::objects::set_or_remove(at, last, value);
    }
    *new = out;
}

/// Everything of an object but metadata and status: what a "spec change" compares.
pub fn spec_of(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
        m.remove("apiVersion");
        m.remove("kind");
    }
    o
}

impl Strategy for BuiltinStrategy {
    fn has_status(&self) -> bool {
        self.has_status
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        if self.group == "batch" && self.kind == "Job" && obj["spec"]["manualSelector"] != true {
            generate_job_selector(obj);
        }
        // A Node keeps the status it is created with (kubelets register with theirs).
        let keeps_status = self.group.is_empty() && self.kind == "Node";
        if self.has_status && !keeps_status {
            match self
                .spec
                .initial_status
                .and_then(|s| serde_json::from_str::<Value>(s).ok())
            {
                Some(s) => obj["status"] = s,
                None => match self.zero_status() {
                    Some(zero) => obj["status"] = zero.clone(),
                    None => {
                        if let Some(m) = obj.as_object_mut() {
                            m.remove("status");
                        }
                    }
                },
            }
        }
        if self.group.is_empty() && self.kind == "Pod" && obj["status"].is_object() {
            obj["status"]["qosClass"] = json!(pod_qos_class(&obj["spec"]));
        }
        if self.spec.generation {
            obj["metadata"]["generation"] = json!(1);
        } else if let Some(m) = obj["metadata"].as_object_mut() {
            m.remove("generation");
        }
        super::more_kinds::prepare_for_create(self.group, self.kind, obj);
        if self.kind == "Namespace" && self.group.is_empty() {
            crate::defaults::label_namespace_name(obj);
        }
        super::core_kinds::prepare_for_create(self.group, self.kind, obj);
        if self.kind == "CustomResourceDefinition" {
            let mut f: Vec<Value> = obj["metadata"]["finalizers"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if !f.contains(&json!(crate::crd::FINALIZER)) {
                f.push(json!(crate::crd::FINALIZER));
            }
            obj["metadata"]["finalizers"] = json!(f);
            // kube's PrepareForCreate: a fresh status (Go's zero acceptedNames) that records
            // the storage version as stored.
            let storage: Vec<Value> = obj["spec"]["versions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|v| v["storage"] == true)
                .take(1)
                .map(|v| v["name"].clone())
                .collect();
            obj["status"] = json!({"acceptedNames": {"kind": "", "plural": ""},
                                   "storedVersions": storage});
        }
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value, subresource: &str) {
        if subresource == "approval" {
            // kube's csrApprovalStrategy: only the conditions change, each stamped.
            keep_only(new, old, &[&["status", "conditions"]]);
            stamp_conditions(new, old);
            return;
        }
        if subresource == "ephemeralcontainers" {
            // kube's dropNonEphemeralContainerUpdates: only the ephemeral containers change.
            keep_only(new, old, &[&["spec", "ephemeralContainers"]]);
            return;
        }
        if subresource == "resize" {
            // kube's resize strategy: only the containers' resources and resize policies.
            super::pods::prepare_resize(new, old);
        }
        if self.group.is_empty() && self.kind == "Service" && subresource.is_empty() {
            super::services::keep_allocated(new, old);
        }
        if self.has_status {
            split_status(new, old, subresource);
        }
        super::core_kinds::prepare_for_update(self.group, self.kind, new, old, subresource);
        let old_gen = old["metadata"]["generation"].as_i64();
        if self.spec.generation {
            let gen = old_gen.unwrap_or(1);
            let gen = if spec_of(new) != spec_of(old) {
                gen + 1
            } else {
                gen
            };
            new["metadata"]["generation"] = json!(gen);
        } else if let Some(m) = new["metadata"].as_object_mut() {
            m.remove("generation");
        }
        if self.kind == "Namespace" && self.group.is_empty() && subresource != "finalize" {
            // spec.finalizers changes only through /finalize.
            new["spec"] = old.get("spec").cloned().unwrap_or(json!({}));
        }
        super::more_kinds::prepare_for_update(self.group, self.kind, new, old, subresource);
    }

    fn default(&self, obj: &mut Value) {
        defaults::apply(self.group, self.kind, obj);
    }

    fn validate_subresource_update(&self, sub: &str, new: &Value, old: &Value) -> Vec<FieldError> {
        match sub {
            "ephemeralcontainers" => ephemeral_container_errors(new, old),
            "resize" => super::pods::resize_errors(new, old, pod_qos_class),
            "" if (self.group, self.kind) == ("", "Pod") => {
                super::pods::pod_update_errors(new, old)
            }
            _ => super::more_kinds::subresource_update_errors(self.group, self.kind, sub, new, old),
        }
    }

    fn validate(&self, obj: &Value) -> Result<Vec<FieldError>, String> {
        self.validate_against(obj, None)
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Result<Vec<FieldError>, String> {
        let mut errs = self.validate_against(new, Some(old))?;
        if (self.group, self.kind) == ("", "Secret") && new.get("type") != old.get("type") {
            errs.push(FieldError::invalid(
                "type",
                new["type"].as_str().unwrap_or_default(),
                "field is immutable",
            ));
        }
        errs.extend(validation::validate_object_meta_update(
            &new["metadata"],
            &old["metadata"],
        ));
        if (self.group, self.kind) == ("", "Service") && self.spec.validation == Validation::Kube {
            errs.extend(super::services::service_update_errors(new, old));
        }
        if matches!(self.group, "apps" | "batch") && self.spec.validation == Validation::Kube {
            errs.extend(super::workloads::update_errors(self.kind, new, old));
        }
        if matches!((self.group, self.kind), ("", "ConfigMap") | ("", "Secret"))
            && old.get("immutable").and_then(Value::as_bool) == Some(true)
        {
            let fields: &[&str] = if self.kind == "Secret" {
                &["data", "type"]
            } else {
                &["data", "binaryData"]
            };
            for f in fields {
                if new.get(*f) != old.get(*f) {
                    errs.push(immutable_error(
                        f,
                        "field is immutable when `immutable` is set",
                    ));
                }
            }
            if new.get("immutable") != old.get("immutable") {
                errs.push(immutable_error(
                    "immutable",
                    "field is immutable when `immutable` is set",
                ));
            }
        }
        Ok(errs)
    }

    fn selectable_fields(&self) -> &'static [&'static str] {
        self.spec.selectable
    }

    fn allow_create_on_update(&self) -> bool {
        self.spec.create_on_update
    }

    fn columns(&self) -> &'static [ColumnDefinition] {
        printers::columns(self.group, self.kind).unwrap_or_else(printers::default_columns)
    }

    fn row_cells(&self, obj: &Value, now: SystemTime) -> Vec<Value> {
        if printers::columns(self.group, self.kind).is_some() {
            printers::row_cells(self.group, self.kind, obj, now)
        } else {
            vec![
                obj["metadata"]["name"].clone(),
                obj["metadata"]["creationTimestamp"].clone(),
            ]
        }
    }

    fn patch_meta(&self) -> Option<BuiltinPatchMeta> {
        Some(BuiltinPatchMeta::for_kind(self.group, self.kind))
    }

    fn convert(&self, obj: Value, from: &str, to: &str) -> Result<Value, String> {
        crate::conversion::convert(self.kind, obj, from, to)
    }

    fn return_deleted_object(&self) -> bool {
        // Graceful-deletion resources return the object, as kube-apiserver does for pods.
        self.spec.returns_deleted
    }
}

fn immutable_error(field: &str, message: &str) -> FieldError {
    FieldError::forbidden(field, message)
}

/// Checks beyond metadata that clients rely on seeing refused.
fn kind_validation(group: &str, kind: &str, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match (group, kind) {
        ("", "Pod") => errs.extend(super::pods::pod_spec_errors(&obj["spec"], "spec")),
        ("autoscaling", "HorizontalPodAutoscaler") => errs.extend(super::kinds::hpa_errors(obj)),
        ("policy", "PodDisruptionBudget") => errs.extend(super::kinds::pdb_errors(obj)),
        ("networking.k8s.io", "Ingress") => {
            errs.extend(super::kinds::ingress_errors(obj, old.is_none()))
        }
        ("networking.k8s.io", "IngressClass") => {
            errs.extend(super::kinds::ingress_class_errors(obj, old))
        }
        ("networking.k8s.io", "NetworkPolicy") => {
            errs.extend(super::kinds::network_policy_errors(obj))
        }
        ("scheduling.k8s.io", "PriorityClass") => {
            errs.extend(super::kinds::priority_class_errors(obj, old))
        }
        ("coordination.k8s.io", "Lease") => errs.extend(super::kinds::lease_errors(obj)),
        ("apiregistration.k8s.io", "APIService") => {
            errs.extend(super::kinds::api_service_errors(obj))
        }
        ("rbac.authorization.k8s.io", "Role" | "ClusterRole") => {
            errs.extend(super::kinds::role_errors(obj, kind == "Role"))
        }
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => errs.extend(
            super::kinds::binding_errors(obj, kind == "ClusterRoleBinding", old),
        ),
        ("apps", "Deployment") => errs.extend(super::workloads::deployment_errors(obj)),
        ("apps", "ReplicaSet") => errs.extend(super::workloads::replica_set_errors(obj)),
        ("apps", "StatefulSet") => {
            errs.extend(super::workloads::stateful_set_errors(obj, old.is_none()))
        }
        ("apps", "DaemonSet") => errs.extend(super::workloads::daemon_set_errors(obj)),
        ("batch", "Job") => errs.extend(super::workloads::job_errors(obj)),
        ("batch", "CronJob") => errs.extend(super::workloads::cron_job_errors(obj, old)),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            errs.extend(crate::crd::validation::validate_crd(obj))
        }
        // Admission CEL expressions are compiled when their object is written (kube's
        // ValidateValidatingAdmissionPolicy and webhook matchConditions): one that cannot
        // compile is refused then, not at every request it would judge.
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding") => {
            errs.extend(super::admissionregistration::binding_errors(obj));
        }
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy") => {
            errs.extend(super::admissionregistration::policy_errors(obj));
            let spec = &obj["spec"];
            let lists: [(&str, &[&str]); 4] = [
                ("validations", &["expression", "messageExpression"]),
                ("matchConditions", &["expression"]),
                ("variables", &["expression"]),
                ("auditAnnotations", &["valueExpression"]),
            ];
            for (list, fields) in lists {
                errs.extend(expression_errors(
                    spec,
                    &format!("spec.{list}"),
                    list,
                    fields,
                ));
            }
        }
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration")
        | ("admissionregistration.k8s.io", "MutatingWebhookConfiguration") => {
            errs.extend(super::admissionregistration::webhook_configuration_errors(
                obj,
                kind == "MutatingWebhookConfiguration",
            ));
            for (i, hook) in obj["webhooks"].as_array().into_iter().flatten().enumerate() {
                errs.extend(expression_errors(
                    hook,
                    &format!("webhooks[{i}].matchConditions"),
                    "matchConditions",
                    &["expression"],
                ));
            }
        }
        // kube's ValidateConfigMap / ValidateSecret: what the data holds, decoded, is at most
        // 1 MiB (for a ConfigMap the error names the whole object: field `[]`).
        ("", "ConfigMap") => {
            let binary = obj["binaryData"].as_object();
            for key in obj["data"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k)
            {
                key_errors(&mut errs, "data", key);
                if binary.is_some_and(|b| b.contains_key(key)) {
                    errs.push(FieldError::invalid(
                        format!("data[{key}]"),
                        key,
                        "duplicate of key present in binaryData",
                    ));
                }
            }
            for key in binary.into_iter().flatten().map(|(k, _)| k) {
                key_errors(&mut errs, "binaryData", key);
            }
            let size = string_values_len(&obj["data"], false)
                .saturating_add(string_values_len(&obj["binaryData"], true));
            if size > MAX_DATA_BYTES {
                errs.push(FieldError::too_long("[]", MAX_DATA_BYTES));
            }
        }
        ("", "Secret") => errs.extend(secret_errors(obj)),
        ("", "Service") => errs.extend(super::services::service_errors(obj)),
        ("", "Namespace") => errs.extend(super::core_kinds::namespace_errors(obj, old)),
        ("", "Node") => errs.extend(super::core_kinds::node_errors(obj, old)),
        ("", "ServiceAccount") => errs.extend(super::core_kinds::service_account_errors(obj, old)),
        ("", "PersistentVolume") => {
            errs.extend(super::core_kinds::persistent_volume_errors(obj, old))
        }
        ("", "PersistentVolumeClaim") => {
            errs.extend(super::core_kinds::persistent_volume_claim_errors(obj, old))
        }
        ("", "Endpoints") => errs.extend(super::core_kinds::endpoints_errors(obj, old)),
        _ => {}
    }
    errs.extend(super::more_kinds::errors(group, kind, obj, old));
    errs
}

/// kube's `IsConfigMapKey` errors of a data key, at `path[key]`.
fn key_errors(errs: &mut Vec<FieldError>, path: &str, key: &str) {
    for msg in validation::is_config_map_key(key) {
        errs.push(FieldError::invalid(format!("{path}[{key}]"), key, msg));
    }
}

/// kube's `ValidateSecret` beyond metadata: keys, size, and what each type requires.
fn secret_errors(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let data = obj["data"].as_object();
    for key in data.into_iter().flatten().map(|(k, _)| k) {
        key_errors(&mut errs, "data", key);
    }
    if string_values_len(&obj["data"], true) > MAX_DATA_BYTES {
        errs.push(FieldError::too_long("data", MAX_DATA_BYTES));
    }
    let has = |k: &str| data.is_some_and(|d| d.contains_key(k));
    let decoded = |k: &str| {
        use base64::Engine as _;
        data.and_then(|d| d.get(k))
            .and_then(Value::as_str)
            .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
    };
    let json_errors = |errs: &mut Vec<FieldError>, key: &str| match decoded(key) {
        None => errs.push(FieldError::required(format!("data[{key}]"), "")),
        Some(bytes) => {
            if let Some(e) = go_json_object_error(&bytes) {
                errs.push(FieldError::invalid(
                    format!("data[{key}]"),
                    "<secret contents redacted>",
                    e,
                ));
            }
        }
    };
    match obj["type"].as_str().unwrap_or_default() {
        "kubernetes.io/service-account-token" => {
            let name = obj["metadata"]["annotations"]["kubernetes.io/service-account.name"]
                .as_str()
                .unwrap_or_default();
            if name.is_empty() {
                errs.push(FieldError::required(
                    "metadata.annotations[kubernetes.io/service-account.name]",
                    "",
                ));
            }
        }
        "kubernetes.io/dockercfg" => json_errors(&mut errs, ".dockercfg"),
        "kubernetes.io/dockerconfigjson" => json_errors(&mut errs, ".dockerconfigjson"),
        // kube builds these two paths from "data[%s]", and its messages carry it.
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            errs.push(FieldError::required("data[%s][username]", ""));
            errs.push(FieldError::required("data[%s][password]", ""));
        }
        "kubernetes.io/ssh-auth" if decoded("ssh-privatekey").is_none_or(|b| b.is_empty()) => {
            errs.push(FieldError::required("data[%s][ssh-privatekey]", ""));
        }
        "kubernetes.io/tls" => {
            for key in ["tls.crt", "tls.key"] {
                if !has(key) {
                    errs.push(FieldError::required(format!("data[{key}]"), ""));
                }
            }
        }
        _ => {}
    }
    errs
}

/// Why Go's `json.Unmarshal` of `bytes` into a `map[string]interface{}` fails, in its words.
fn go_json_object_error(bytes: &[u8]) -> Option<String> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(_) | Value::Null) => None,
        Ok(v) => Some(format!(
            "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            match v {
                Value::Array(_) => "array",
                Value::String(_) => "string",
                Value::Number(_) => "number",
                _ => "bool",
            }
        )),
        Err(e) if e.is_eof() => Some("unexpected end of JSON input".into()),
        Err(_) => {
            let first = bytes
                .iter()
                .find(|b| !b.is_ascii_whitespace())
                .map_or(' ', |b| *b as char);
            Some(format!(
                "invalid character '{first}' looking for beginning of value"
            ))
        }
    }
}

/// The compile errors of the CEL expressions in `parent[list][*][field]`, at `path[i].field`.
fn expression_errors(parent: &Value, path: &str, list: &str, fields: &[&str]) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, item) in parent[list].as_array().into_iter().flatten().enumerate() {
        for field in fields {
            let Some(expression) = item[*field].as_str().filter(|e| !e.trim().is_empty()) else {
                continue;
            };
            if let Err(e) = kubox_openapi::Expression::cached(expression) {
                errs.push(FieldError::invalid(
                    format!("{path}[{i}].{field}"),
                    expression,
                    format!("compilation failed: {e}"),
                ));
            }
        }
    }
    errs
}

/// The most a ConfigMap's or a Secret's data may hold, in bytes (kube's `MaxSecretSize`).
pub const MAX_DATA_BYTES: usize = 1024 * 1024;

/// The summed length of a map's string values; with `base64`, of the bytes they encode.
fn string_values_len(map: &Value, base64: bool) -> usize {
    map.as_object()
        .into_iter()
        .flatten()
        .filter_map(|(_, v)| v.as_str())
        .map(|v| {
            if base64 {
                let padding = v.bytes().rev().take_while(|b| *b == b'=').count();
                (v.len() / 4 * 3).saturating_sub(padding)
            } else {
                v.len()
            }
        })
        .fold(0usize, usize::saturating_add)
}

/// kube's job strategy (`generateSelector`): the pod template is labelled with the job's name
/// and uid (`batch.kubernetes.io/job-name`, `batch.kubernetes.io/controller-uid`, and the
/// legacy `job-name`, `controller-uid`), and the selector matches the uid, where the user left
/// them unset.
fn generate_job_selector(obj: &mut Value) {
    let name = obj["metadata"]["name"].clone();
    let uid = obj["metadata"]["uid"].clone();
    if !obj["spec"].is_object() {
        return;
    }
    let template = &mut obj["spec"]["template"];
    if !template.is_object() {
        *template = json!({});
    }
    if !template["metadata"].is_object() {
        template["metadata"] = json!({});
    }
    if !template["metadata"]["labels"].is_object() {
        template["metadata"]["labels"] = json!({});
    }
    let labels = &mut template["metadata"]["labels"];
    for (key, value) in [
        ("job-name", &name),
        ("batch.kubernetes.io/job-name", &name),
        ("controller-uid", &uid),
        ("batch.kubernetes.io/controller-uid", &uid),
    ] {
        if labels.get(key).is_none() {
            labels[key] = value.clone();
        }
    }
    let selector = &mut obj["spec"]["selector"];
    if !selector.is_object() {
        *selector = json!({});
    }
    if !selector["matchLabels"].is_object() {
        selector["matchLabels"] = json!({});
    }
    if selector["matchLabels"]
        .get("batch.kubernetes.io/controller-uid")
        .is_none()
    {
        selector["matchLabels"]["batch.kubernetes.io/controller-uid"] = uid;
    }
}

/// A Pod's quality-of-service class as kube computes it (`GetPodQOS`) from its containers'
/// and init containers' CPU and memory: no request or limit anywhere is BestEffort; limits on
/// both in every container, with the summed requests equal to the summed limits, Guaranteed;
/// anything else Burstable.
fn pod_qos_class(spec: &Value) -> &'static str {
    use kubox_apimachinery::quantity::Quantity;
    use std::collections::BTreeMap;
    let supported = |name: &str| matches!(name, "cpu" | "memory");
    let mut requests: BTreeMap<String, Quantity> = BTreeMap::new();
    let mut limits: BTreeMap<String, Quantity> = BTreeMap::new();
    let mut guaranteed = true;
    let containers = ["containers", "initContainers"]
        .iter()
        .flat_map(|k| spec[*k].as_array().into_iter().flatten());
    let add = |into: &mut BTreeMap<String, Quantity>, name: &str, q: Quantity| {
        let sum = match into.get(name) {
            Some(prev) => prev.checked_add(&q).unwrap_or(q),
            None => q,
        };
        into.insert(name.to_string(), sum);
    };
    for c in containers {
        let positive = |v: &Value| {
            v.as_str()
                .map(str::to_string)
                .or_else(|| v.as_i64().map(|i| i.to_string()))
                .and_then(|s| Quantity::parse(&s))
                .filter(|q| *q > Quantity::zero())
        };
        for (name, v) in c["resources"]["requests"].as_object().into_iter().flatten() {
            if let Some(q) = positive(v).filter(|_| supported(name)) {
                add(&mut requests, name, q);
            }
        }
        let mut found = Vec::new();
        for (name, v) in c["resources"]["limits"].as_object().into_iter().flatten() {
            if let Some(q) = positive(v).filter(|_| supported(name)) {
                found.push(name.clone());
                add(&mut limits, name, q);
            }
        }
        if !(found.iter().any(|n| n == "cpu") && found.iter().any(|n| n == "memory")) {
            guaranteed = false;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    if guaranteed
        && requests.iter().all(|(n, q)| limits.get(n) == Some(q))
        && requests.len() == limits.len()
    {
        return "Guaranteed";
    }
    "Burstable"
}

/// kube's `populateConditionTimestamps` for CertificateSigningRequest conditions: where the
/// client left them out, `lastUpdateTime` is now and `lastTransitionTime` is that of an old
/// condition of the same type and status (now when there is none).
pub(super) fn stamp_conditions(new: &mut Value, old: &Value) {
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let olds: Vec<Value> = old["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for c in new["status"]
        .get_mut("conditions")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        if c.get("lastUpdateTime").is_none_or(Value::is_null) {
            c["lastUpdateTime"] = json!(now);
        }
        if c.get("lastTransitionTime").is_none_or(Value::is_null) {
            let before = olds.iter().find(|o| {
                o["type"] == c["type"]
                    && o["status"] == c["status"]
                    && o["lastTransitionTime"].is_string()
            });
            c["lastTransitionTime"] = match before {
                Some(o) => o["lastTransitionTime"].clone(),
                None => json!(now),
            };
        }
    }
}

/// kube's checks of an ephemeral-containers update: the existing ones stay as they are (none
/// removed or changed), and a new one's name is not any other container's.
fn ephemeral_container_errors(new: &Value, old: &Value) -> Vec<FieldError> {
    fn list(o: &Value) -> &[Value] {
        o["spec"]["ephemeralContainers"]
            .as_array()
            .map_or(&[], Vec::as_slice)
    }
    let (new_list, old_list) = (list(new), list(old));
    // Each old container is looked up by its name among the new ones (a later one of a
    // repeated name standing for it, as in kube's index), not compared with each of them.
    let by_name: std::collections::HashMap<&str, &Value> = new_list
        .iter()
        .map(|c| (c["name"].as_str().unwrap_or_default(), c))
        .collect();
    let mut errs = Vec::new();
    for o in old_list {
        let name = o["name"].as_str().unwrap_or_default();
        if by_name.get(name).is_none_or(|n| *n != o) {
            errs.push(FieldError::forbidden(
                "spec.ephemeralContainers",
                format!("existing ephemeral containers {name:?} may not be changed"),
            ));
        }
    }
    let mut names: std::collections::HashSet<&str> = ["containers", "initContainers"]
        .iter()
        .flat_map(|k| new["spec"][*k].as_array().into_iter().flatten())
        .filter_map(|c| c["name"].as_str())
        .collect();
    for (i, c) in new_list.iter().enumerate() {
        let name = c["name"].as_str().unwrap_or_default();
        if !names.insert(name) {
            errs.push(FieldError::duplicate(
                format!("spec.ephemeralContainers[{i}].name"),
                name,
            ));
        }
    }
    errs
}

#[cfg(test)]
mod ephemeral_tests {
    use super::*;

    fn pod(ephemeral: Value) -> Value {
        json!({"spec": {"containers": [{"name": "app"}], "ephemeralContainers": ephemeral}})
    }

    fn messages(new: Value, old: Value) -> Vec<String> {
        ephemeral_container_errors(&pod(new), &pod(old))
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn existing_ephemeral_containers_are_found_by_name_and_must_be_unchanged() {
        let a = json!({"name": "a", "image": "busybox"});
        let b = json!({"name": "b", "image": "busybox"});
        // Kept in another order, with one added: nothing to say.
        assert!(messages(json!([b, a, {"name": "c"}]), json!([a, b])).is_empty());
        // Changed or removed: forbidden, once per old container.
        let changed = json!([{"name": "a", "image": "other"}, b]);
        assert_eq!(
            messages(changed, json!([a, b])),
            ["spec.ephemeralContainers: Forbidden: existing ephemeral containers \"a\" may not be changed"]
        );
        assert_eq!(messages(json!([a]), json!([a, b])).len(), 1);
        // A name repeated in the new list: the later one stands for it (and is a duplicate).
        let errs = messages(json!([a, {"name": "a", "image": "x"}]), json!([a]));
        assert_eq!(errs.len(), 2, "{errs:?}");
        // A new container may not take a regular container's name.
        assert_eq!(
            messages(json!([{"name": "app"}]), json!([])),
            ["spec.ephemeralContainers[0].name: Duplicate value: \"app\""]
        );
    }
}

#[cfg(test)]
mod qos_tests {
    use super::*;

    #[test]
    fn pods_get_kubes_qos_classes() {
        let pod = |resources: Value| json!({"containers": [{"name": "c", "resources": resources}]});
        assert_eq!(pod_qos_class(&pod(json!({}))), "BestEffort");
        assert_eq!(
            pod_qos_class(&pod(json!({"requests": {"cpu": "100m"}}))),
            "Burstable"
        );
        assert_eq!(
            pod_qos_class(&pod(json!({"requests": {"cpu": "1", "memory": "1Gi"},
                                      "limits": {"cpu": "1000m", "memory": "1024Mi"}}))),
            "Guaranteed"
        );
        assert_eq!(
            pod_qos_class(&pod(json!({"requests": {"cpu": "1", "memory": "1Gi"},
                                      "limits": {"cpu": "2", "memory": "1Gi"}}))),
            "Burstable"
        );
        assert_eq!(
            pod_qos_class(&pod(json!({"limits": {"nvidia.com/gpu": "1"}}))),
            "BestEffort"
        );
        // An init container without limits keeps the pod from being Guaranteed.
        let mixed = json!({"containers": [{"name": "c", "resources": {
                "requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}}],
            "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "1"}}}]});
        assert_eq!(pod_qos_class(&mixed), "Burstable");
    }
}
