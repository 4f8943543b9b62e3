//! Shape checks for built-in objects against Kubernetes 1.35's typed API (k8s-openapi).
//!
//! A value of the wrong type (`"replicas": "three"`) is a 400 BadRequest in kube-apiserver, caught
//! when it decodes into Go structs; kubox decodes into the k8s-openapi structs for the same effect.
//! Missing required fields are left to validation, which reports them as 422 causes.

use serde::de::DeserializeOwned;
use serde_json::Value;

fn check<T: DeserializeOwned>(obj: &Value) -> Result<(), String> {
    match T::deserialize(obj) {
        Ok(_) => Ok(()),
        Err(e) if e.to_string().starts_with("missing field") => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// Check an object's shape against its typed definition (chosen by its apiVersion and kind).
/// Kinds with no typed definition pass. The error is kube-apiserver's decode message. An object
/// whose values all have their schema's types plainly is not decoded
/// ([`kubox_openapi::decodes_plainly`]).
pub fn check_shape(_group: &str, kind: &str, obj: &Value) -> Result<(), String> {
    let api_version = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    if kubox_openapi::Schemas::builtin()
        .for_kind(group, version, kind)
        .is_some_and(|schema| kubox_openapi::decodes_plainly(schema, obj, &parses))
    {
        return Ok(());
    }
    let result = typed_result(kind, obj);
    result
        .unwrap_or(Ok(()))
        .map_err(|e| format!("{kind} in version \"{version}\" cannot be handled as a {kind}: {e}"))
}

/// Does a time or base64 string parse as the typed decode parses it?
fn parses(format: kubox_openapi::StringFormat, s: &str) -> bool {
    use serde::de::value::{Error, StrDeserializer};
    use serde::Deserialize;
    let text = StrDeserializer::<Error>::new(s);
    match format {
        // `Time` and `MicroTime` hold a jiff timestamp, which decodes the string itself.
        kubox_openapi::StringFormat::DateTime => {
            k8s_openapi::jiff::Timestamp::deserialize(text).is_ok()
        }
        kubox_openapi::StringFormat::Byte => k8s_openapi::ByteString::deserialize(text).is_ok(),
    }
}

/// The typed check of `obj` as `kind` at its apiVersion; None when there is no typed definition.
fn typed_result(kind: &str, obj: &Value) -> Option<Result<(), String>> {
    let api_version = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match (api_version, kind) {
        ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration") => Some(check::<k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration>(obj)),
        ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy") => Some(check::<k8s_openapi::api::admissionregistration::v1::ValidatingAdmissionPolicy>(obj)),
        ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding") => Some(check::<k8s_openapi::api::admissionregistration::v1::ValidatingAdmissionPolicyBinding>(obj)),
        ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration") => Some(check::<k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration>(obj)),
        ("admissionregistration.k8s.io/v1alpha1", "MutatingAdmissionPolicy") => Some(check::<k8s_openapi::api::admissionregistration::v1alpha1::MutatingAdmissionPolicy>(obj)),
        ("admissionregistration.k8s.io/v1alpha1", "MutatingAdmissionPolicyBinding") => Some(check::<k8s_openapi::api::admissionregistration::v1alpha1::MutatingAdmissionPolicyBinding>(obj)),
        ("admissionregistration.k8s.io/v1beta1", "MutatingAdmissionPolicy") => Some(check::<k8s_openapi::api::admissionregistration::v1beta1::MutatingAdmissionPolicy>(obj)),
        ("admissionregistration.k8s.io/v1beta1", "MutatingAdmissionPolicyBinding") => Some(check::<k8s_openapi::api::admissionregistration::v1beta1::MutatingAdmissionPolicyBinding>(obj)),
        ("internal.apiserver.k8s.io/v1alpha1", "StorageVersion") => Some(check::<k8s_openapi::api::apiserverinternal::v1alpha1::StorageVersion>(obj)),
        ("apps/v1", "ControllerRevision") => Some(check::<k8s_openapi::api::apps::v1::ControllerRevision>(obj)),
        ("apps/v1", "DaemonSet") => Some(check::<k8s_openapi::api::apps::v1::DaemonSet>(obj)),
        ("apps/v1", "Deployment") => Some(check::<k8s_openapi::api::apps::v1::Deployment>(obj)),
        ("apps/v1", "ReplicaSet") => Some(check::<k8s_openapi::api::apps::v1::ReplicaSet>(obj)),
        ("apps/v1", "StatefulSet") => Some(check::<k8s_openapi::api::apps::v1::StatefulSet>(obj)),
        ("authentication.k8s.io/v1", "SelfSubjectReview") => Some(check::<k8s_openapi::api::authentication::v1::SelfSubjectReview>(obj)),
        ("authentication.k8s.io/v1", "TokenRequest") => Some(check::<k8s_openapi::api::authentication::v1::TokenRequest>(obj)),
        ("authentication.k8s.io/v1", "TokenReview") => Some(check::<k8s_openapi::api::authentication::v1::TokenReview>(obj)),
        ("authorization.k8s.io/v1", "LocalSubjectAccessReview") => Some(check::<k8s_openapi::api::authorization::v1::LocalSubjectAccessReview>(obj)),
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview") => Some(check::<k8s_openapi::api::authorization::v1::SelfSubjectAccessReview>(obj)),
        ("authorization.k8s.io/v1", "SelfSubjectRulesReview") => Some(check::<k8s_openapi::api::authorization::v1::SelfSubjectRulesReview>(obj)),
        ("authorization.k8s.io/v1", "SubjectAccessReview") => Some(check::<k8s_openapi::api::authorization::v1::SubjectAccessReview>(obj)),
        ("autoscaling/v1", "HorizontalPodAutoscaler") => Some(check::<k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler>(obj)),
        ("autoscaling/v1", "Scale") => Some(check::<k8s_openapi::api::autoscaling::v1::Scale>(obj)),
        ("autoscaling/v2", "HorizontalPodAutoscaler") => Some(check::<k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler>(obj)),
        ("batch/v1", "CronJob") => Some(check::<k8s_openapi::api::batch::v1::CronJob>(obj)),
        ("batch/v1", "Job") => Some(check::<k8s_openapi::api::batch::v1::Job>(obj)),
        ("certificates.k8s.io/v1", "CertificateSigningRequest") => Some(check::<k8s_openapi::api::certificates::v1::CertificateSigningRequest>(obj)),
        ("certificates.k8s.io/v1alpha1", "ClusterTrustBundle") => Some(check::<k8s_openapi::api::certificates::v1alpha1::ClusterTrustBundle>(obj)),
        ("certificates.k8s.io/v1beta1", "ClusterTrustBundle") => Some(check::<k8s_openapi::api::certificates::v1beta1::ClusterTrustBundle>(obj)),
        ("certificates.k8s.io/v1beta1", "PodCertificateRequest") => Some(check::<k8s_openapi::api::certificates::v1beta1::PodCertificateRequest>(obj)),
        ("coordination.k8s.io/v1", "Lease") => Some(check::<k8s_openapi::api::coordination::v1::Lease>(obj)),
        ("coordination.k8s.io/v1alpha2", "LeaseCandidate") => Some(check::<k8s_openapi::api::coordination::v1alpha2::LeaseCandidate>(obj)),
        ("coordination.k8s.io/v1beta1", "LeaseCandidate") => Some(check::<k8s_openapi::api::coordination::v1beta1::LeaseCandidate>(obj)),
        ("v1", "Binding") => Some(check::<k8s_openapi::api::core::v1::Binding>(obj)),
        ("v1", "ComponentStatus") => Some(check::<k8s_openapi::api::core::v1::ComponentStatus>(obj)),
        ("v1", "ConfigMap") => Some(check::<k8s_openapi::api::core::v1::ConfigMap>(obj)),
        ("v1", "Endpoints") => Some(check::<k8s_openapi::api::core::v1::Endpoints>(obj)),
        ("v1", "Event") => Some(check::<k8s_openapi::api::core::v1::Event>(obj)),
        ("v1", "LimitRange") => Some(check::<k8s_openapi::api::core::v1::LimitRange>(obj)),
        ("v1", "Namespace") => Some(check::<k8s_openapi::api::core::v1::Namespace>(obj)),
        ("v1", "Node") => Some(check::<k8s_openapi::api::core::v1::Node>(obj)),
        ("v1", "PersistentVolume") => Some(check::<k8s_openapi::api::core::v1::PersistentVolume>(obj)),
        ("v1", "PersistentVolumeClaim") => Some(check::<k8s_openapi::api::core::v1::PersistentVolumeClaim>(obj)),
        ("v1", "Pod") => Some(check::<k8s_openapi::api::core::v1::Pod>(obj)),
        ("v1", "PodTemplate") => Some(check::<k8s_openapi::api::core::v1::PodTemplate>(obj)),
        ("v1", "ReplicationController") => Some(check::<k8s_openapi::api::core::v1::ReplicationController>(obj)),
        ("v1", "ResourceQuota") => Some(check::<k8s_openapi::api::core::v1::ResourceQuota>(obj)),
        ("v1", "Secret") => Some(check::<k8s_openapi::api::core::v1::Secret>(obj)),
        ("v1", "Service") => Some(check::<k8s_openapi::api::core::v1::Service>(obj)),
        ("v1", "ServiceAccount") => Some(check::<k8s_openapi::api::core::v1::ServiceAccount>(obj)),
        ("discovery.k8s.io/v1", "EndpointSlice") => Some(check::<k8s_openapi::api::discovery::v1::EndpointSlice>(obj)),
        ("events.k8s.io/v1", "Event") => Some(check::<k8s_openapi::api::events::v1::Event>(obj)),
        ("flowcontrol.apiserver.k8s.io/v1", "FlowSchema") => Some(check::<k8s_openapi::api::flowcontrol::v1::FlowSchema>(obj)),
        ("flowcontrol.apiserver.k8s.io/v1", "PriorityLevelConfiguration") => Some(check::<k8s_openapi::api::flowcontrol::v1::PriorityLevelConfiguration>(obj)),
        ("networking.k8s.io/v1", "IPAddress") => Some(check::<k8s_openapi::api::networking::v1::IPAddress>(obj)),
        ("networking.k8s.io/v1", "Ingress") => Some(check::<k8s_openapi::api::networking::v1::Ingress>(obj)),
        ("networking.k8s.io/v1", "IngressClass") => Some(check::<k8s_openapi::api::networking::v1::IngressClass>(obj)),
        ("networking.k8s.io/v1", "NetworkPolicy") => Some(check::<k8s_openapi::api::networking::v1::NetworkPolicy>(obj)),
        ("networking.k8s.io/v1", "ServiceCIDR") => Some(check::<k8s_openapi::api::networking::v1::ServiceCIDR>(obj)),
        ("networking.k8s.io/v1beta1", "IPAddress") => Some(check::<k8s_openapi::api::networking::v1beta1::IPAddress>(obj)),
        ("networking.k8s.io/v1beta1", "ServiceCIDR") => Some(check::<k8s_openapi::api::networking::v1beta1::ServiceCIDR>(obj)),
        ("node.k8s.io/v1", "RuntimeClass") => Some(check::<k8s_openapi::api::node::v1::RuntimeClass>(obj)),
        ("policy/v1", "Eviction") => Some(check::<k8s_openapi::api::policy::v1::Eviction>(obj)),
        ("policy/v1", "PodDisruptionBudget") => Some(check::<k8s_openapi::api::policy::v1::PodDisruptionBudget>(obj)),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => Some(check::<k8s_openapi::api::rbac::v1::ClusterRole>(obj)),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => Some(check::<k8s_openapi::api::rbac::v1::ClusterRoleBinding>(obj)),
        ("rbac.authorization.k8s.io/v1", "Role") => Some(check::<k8s_openapi::api::rbac::v1::Role>(obj)),
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => Some(check::<k8s_openapi::api::rbac::v1::RoleBinding>(obj)),
        ("resource.k8s.io/v1", "DeviceClass") => Some(check::<k8s_openapi::api::resource::v1::DeviceClass>(obj)),
        ("resource.k8s.io/v1", "ResourceClaim") => Some(check::<k8s_openapi::api::resource::v1::ResourceClaim>(obj)),
        ("resource.k8s.io/v1", "ResourceClaimTemplate") => Some(check::<k8s_openapi::api::resource::v1::ResourceClaimTemplate>(obj)),
        ("resource.k8s.io/v1", "ResourceSlice") => Some(check::<k8s_openapi::api::resource::v1::ResourceSlice>(obj)),
        ("resource.k8s.io/v1alpha3", "DeviceTaintRule") => Some(check::<k8s_openapi::api::resource::v1alpha3::DeviceTaintRule>(obj)),
        ("resource.k8s.io/v1beta1", "DeviceClass") => Some(check::<k8s_openapi::api::resource::v1beta1::DeviceClass>(obj)),
        ("resource.k8s.io/v1beta1", "ResourceClaim") => Some(check::<k8s_openapi::api::resource::v1beta1::ResourceClaim>(obj)),
        ("resource.k8s.io/v1beta1", "ResourceClaimTemplate") => Some(check::<k8s_openapi::api::resource::v1beta1::ResourceClaimTemplate>(obj)),
        ("resource.k8s.io/v1beta1", "ResourceSlice") => Some(check::<k8s_openapi::api::resource::v1beta1::ResourceSlice>(obj)),
        ("resource.k8s.io/v1beta2", "DeviceClass") => Some(check::<k8s_openapi::api::resource::v1beta2::DeviceClass>(obj)),
        ("resource.k8s.io/v1beta2", "ResourceClaim") => Some(check::<k8s_openapi::api::resource::v1beta2::ResourceClaim>(obj)),
        ("resource.k8s.io/v1beta2", "ResourceClaimTemplate") => Some(check::<k8s_openapi::api::resource::v1beta2::ResourceClaimTemplate>(obj)),
        ("resource.k8s.io/v1beta2", "ResourceSlice") => Some(check::<k8s_openapi::api::resource::v1beta2::ResourceSlice>(obj)),
        ("scheduling.k8s.io/v1", "PriorityClass") => Some(check::<k8s_openapi::api::scheduling::v1::PriorityClass>(obj)),
        ("scheduling.k8s.io/v1alpha1", "Workload") => Some(check::<k8s_openapi::api::scheduling::v1alpha1::Workload>(obj)),
        ("storage.k8s.io/v1", "CSIDriver") => Some(check::<k8s_openapi::api::storage::v1::CSIDriver>(obj)),
        ("storage.k8s.io/v1", "CSINode") => Some(check::<k8s_openapi::api::storage::v1::CSINode>(obj)),
        ("storage.k8s.io/v1", "CSIStorageCapacity") => Some(check::<k8s_openapi::api::storage::v1::CSIStorageCapacity>(obj)),
        ("storage.k8s.io/v1", "StorageClass") => Some(check::<k8s_openapi::api::storage::v1::StorageClass>(obj)),
        ("storage.k8s.io/v1", "VolumeAttachment") => Some(check::<k8s_openapi::api::storage::v1::VolumeAttachment>(obj)),
        ("storage.k8s.io/v1", "VolumeAttributesClass") => Some(check::<k8s_openapi::api::storage::v1::VolumeAttributesClass>(obj)),
        ("storage.k8s.io/v1beta1", "VolumeAttributesClass") => Some(check::<k8s_openapi::api::storage::v1beta1::VolumeAttributesClass>(obj)),
        ("storagemigration.k8s.io/v1beta1", "StorageVersionMigration") => Some(check::<k8s_openapi::api::storagemigration::v1beta1::StorageVersionMigration>(obj)),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => Some(check::<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>(obj)),
        ("apiregistration.k8s.io/v1", "APIService") => Some(check::<k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService>(obj)),
        _ => None,
    }
}

/// Is there a typed definition for `kind` at `api_version`?
#[cfg(test)]
pub fn knows(api_version: &str, kind: &str) -> bool {
    let obj = serde_json::json!({"apiVersion": api_version, "kind": kind});
    typed_result(kind, &obj).is_some()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::{json, Value};

    /// A value for every declared field of `schema` (OpenAPI v3 JSON, refs into the built-in
    /// definitions), `depth` levels down.
    fn sample(schema: &Value, depth: usize) -> Value {
        let defs = kubox_openapi::Schemas::builtin();
        if let Some(name) = schema
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.rsplit('/').next())
        {
            return match defs.definition(name) {
                Some(d) => sample(d, depth),
                None => json!({}),
            };
        }
        if let Some([only]) = schema
            .get("allOf")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
        {
            return sample(only, depth);
        }
        if schema.get("x-kubernetes-int-or-string") == Some(&json!(true)) {
            return json!("1");
        }
        let ty = schema.get("type").and_then(Value::as_str).unwrap_or("");
        match ty {
            "string" => match schema.get("format").and_then(Value::as_str) {
                Some("date-time") => json!("2024-01-02T03:04:05Z"),
                Some("byte") => json!("YQ=="),
                _ => json!("s"),
            },
            "integer" => json!(1),
            "number" => json!(1.5),
            "boolean" => json!(true),
            "array" if depth > 0 => json!([sample(&schema["items"], depth - 1)]),
            "array" => json!([]),
            _ if depth == 0 => json!({}),
            _ => {
                let mut out = serde_json::Map::new();
                if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                    for (k, p) in props {
                        out.insert(k.clone(), sample(p, depth - 1));
                    }
                } else if let Some(a) = schema.get("additionalProperties").filter(|a| a.is_object())
                {
                    out.insert("key".into(), sample(a, depth - 1));
                }
                // An embedded object (a StatefulSet's claim templates) names its own kind.
                if let Some(gvk) = schema["x-kubernetes-group-version-kind"].get(0) {
                    let (g, v) = (gvk["group"].as_str(), gvk["version"].as_str());
                    let api_version = match (g, v) {
                        (Some(""), Some(v)) => v.to_string(),
                        (Some(g), Some(v)) => format!("{g}/{v}"),
                        _ => String::new(),
                    };
                    out.insert("apiVersion".into(), json!(api_version));
                    out.insert("kind".into(), gvk["kind"].clone());
                }
                Value::Object(out)
            }
        }
    }

    /// Every JSON pointer in `v`.
    fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => m.iter().for_each(|(k, c)| {
                let p = format!("{at}/{k}");
                out.push(p.clone());
                pointers(c, p, out);
            }),
            Value::Array(a) => a.iter().enumerate().for_each(|(i, c)| {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                pointers(c, p, out);
            }),
            _ => {}
        }
    }

    /// Whenever the schema walk calls an object plain, the typed decode accepts it: every
    /// built-in kind, every field replaced by every kind of JSON value.
    #[test]
    fn a_plain_object_always_decodes() {
        let replacements = [
            Value::Null,
            json!("s"),
            json!("2024-01-02T03:04:05Z"),
            json!("2024-01-02T03:04:05.123456+02:00"),
            json!("2023-02-29T00:00:00Z"),
            json!("2024-01-02T24:00:00Z"),
            json!("2024-01-02 03:04:05Z"),
            json!("YQ=="),
            json!("YQ"),
            json!("!!"),
            json!(1),
            json!(-1),
            json!(3_000_000_000_i64),
            json!(u64::MAX),
            json!(1.5),
            json!(true),
            json!([]),
            json!(["s"]),
            json!([null]),
            json!({}),
            json!({"k": "s"}),
            json!({"k": null}),
        ];
        let schemas = kubox_openapi::Schemas::builtin();
        let (mut kinds, mut plain, mut checked) = (0, 0, 0);
        for (group, version, kind) in schemas.kinds() {
            let api_version = if group.is_empty() {
                version.to_string()
            } else {
                format!("{group}/{version}")
            };
            if !super::knows(&api_version, kind) {
                continue;
            }
            let schema = schemas.for_kind(group, version, kind).unwrap();
            let definition = schemas.definition_name(group, version, kind).unwrap();
            let mut obj = sample(schemas.definition(definition).unwrap(), 7);
            obj["apiVersion"] = json!(api_version);
            obj["kind"] = json!(kind);
            kinds += 1;
            plain += usize::from(kubox_openapi::decodes_plainly(schema, &obj, &super::parses));
            let mut paths = Vec::new();
            pointers(&obj, String::new(), &mut paths);
            // k8s-openapi checks an embedded object's apiVersion and kind, which Go does not.
            paths.retain(|p| !p.ends_with("/apiVersion") && !p.ends_with("/kind"));
            for path in paths.iter().step_by(paths.len().div_ceil(60).max(1)) {
                for r in &replacements {
                    let mut v = obj.clone();
                    *v.pointer_mut(path).unwrap() = r.clone();
                    if kubox_openapi::decodes_plainly(schema, &v, &super::parses) {
                        checked += 1;
                        let typed = super::typed_result(kind, &v).unwrap();
                        assert!(
                            typed.is_ok(),
                            "{api_version} {kind}: {path} = {r}: {typed:?}"
                        );
                    }
                }
            }
        }
        assert!(kinds > 80, "{kinds} kinds");
        assert!(checked > 10_000, "{checked} plain variants");
        assert!(plain * 2 > kinds, "{plain} of {kinds} samples plain");
    }
}
