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
/// Kinds with no typed definition pass. The error is kube-apiserver's decode message.
pub fn check_shape(_group: &str, kind: &str, obj: &Value) -> Result<(), String> {
    let api_version = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let version = api_version.rsplit('/').next().unwrap_or_default();
    let result = match (api_version, kind) {
        ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration") => check::<k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration>(obj),
        ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy") => check::<k8s_openapi::api::admissionregistration::v1::ValidatingAdmissionPolicy>(obj),
        ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding") => check::<k8s_openapi::api::admissionregistration::v1::ValidatingAdmissionPolicyBinding>(obj),
        ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration") => check::<k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration>(obj),
        ("admissionregistration.k8s.io/v1alpha1", "MutatingAdmissionPolicy") => check::<k8s_openapi::api::admissionregistration::v1alpha1::MutatingAdmissionPolicy>(obj),
        ("admissionregistration.k8s.io/v1alpha1", "MutatingAdmissionPolicyBinding") => check::<k8s_openapi::api::admissionregistration::v1alpha1::MutatingAdmissionPolicyBinding>(obj),
        ("admissionregistration.k8s.io/v1beta1", "MutatingAdmissionPolicy") => check::<k8s_openapi::api::admissionregistration::v1beta1::MutatingAdmissionPolicy>(obj),
        ("admissionregistration.k8s.io/v1beta1", "MutatingAdmissionPolicyBinding") => check::<k8s_openapi::api::admissionregistration::v1beta1::MutatingAdmissionPolicyBinding>(obj),
        ("internal.apiserver.k8s.io/v1alpha1", "StorageVersion") => check::<k8s_openapi::api::apiserverinternal::v1alpha1::StorageVersion>(obj),
        ("apps/v1", "ControllerRevision") => check::<k8s_openapi::api::apps::v1::ControllerRevision>(obj),
        ("apps/v1", "DaemonSet") => check::<k8s_openapi::api::apps::v1::DaemonSet>(obj),
        ("apps/v1", "Deployment") => check::<k8s_openapi::api::apps::v1::Deployment>(obj),
        ("apps/v1", "ReplicaSet") => check::<k8s_openapi::api::apps::v1::ReplicaSet>(obj),
        ("apps/v1", "StatefulSet") => check::<k8s_openapi::api::apps::v1::StatefulSet>(obj),
        ("authentication.k8s.io/v1", "SelfSubjectReview") => check::<k8s_openapi::api::authentication::v1::SelfSubjectReview>(obj),
        ("authentication.k8s.io/v1", "TokenRequest") => check::<k8s_openapi::api::authentication::v1::TokenRequest>(obj),
        ("authentication.k8s.io/v1", "TokenReview") => check::<k8s_openapi::api::authentication::v1::TokenReview>(obj),
        ("authorization.k8s.io/v1", "LocalSubjectAccessReview") => check::<k8s_openapi::api::authorization::v1::LocalSubjectAccessReview>(obj),
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview") => check::<k8s_openapi::api::authorization::v1::SelfSubjectAccessReview>(obj),
        ("authorization.k8s.io/v1", "SelfSubjectRulesReview") => check::<k8s_openapi::api::authorization::v1::SelfSubjectRulesReview>(obj),
        ("authorization.k8s.io/v1", "SubjectAccessReview") => check::<k8s_openapi::api::authorization::v1::SubjectAccessReview>(obj),
        ("autoscaling/v1", "HorizontalPodAutoscaler") => check::<k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler>(obj),
        ("autoscaling/v1", "Scale") => check::<k8s_openapi::api::autoscaling::v1::Scale>(obj),
        ("autoscaling/v2", "HorizontalPodAutoscaler") => check::<k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler>(obj),
        ("batch/v1", "CronJob") => check::<k8s_openapi::api::batch::v1::CronJob>(obj),
        ("batch/v1", "Job") => check::<k8s_openapi::api::batch::v1::Job>(obj),
        ("certificates.k8s.io/v1", "CertificateSigningRequest") => check::<k8s_openapi::api::certificates::v1::CertificateSigningRequest>(obj),
        ("certificates.k8s.io/v1alpha1", "ClusterTrustBundle") => check::<k8s_openapi::api::certificates::v1alpha1::ClusterTrustBundle>(obj),
        ("certificates.k8s.io/v1beta1", "ClusterTrustBundle") => check::<k8s_openapi::api::certificates::v1beta1::ClusterTrustBundle>(obj),
        ("certificates.k8s.io/v1beta1", "PodCertificateRequest") => check::<k8s_openapi::api::certificates::v1beta1::PodCertificateRequest>(obj),
        ("coordination.k8s.io/v1", "Lease") => check::<k8s_openapi::api::coordination::v1::Lease>(obj),
        ("coordination.k8s.io/v1alpha2", "LeaseCandidate") => check::<k8s_openapi::api::coordination::v1alpha2::LeaseCandidate>(obj),
        ("coordination.k8s.io/v1beta1", "LeaseCandidate") => check::<k8s_openapi::api::coordination::v1beta1::LeaseCandidate>(obj),
        ("v1", "Binding") => check::<k8s_openapi::api::core::v1::Binding>(obj),
        ("v1", "ComponentStatus") => check::<k8s_openapi::api::core::v1::ComponentStatus>(obj),
        ("v1", "ConfigMap") => check::<k8s_openapi::api::core::v1::ConfigMap>(obj),
        ("v1", "Endpoints") => check::<k8s_openapi::api::core::v1::Endpoints>(obj),
        ("v1", "Event") => check::<k8s_openapi::api::core::v1::Event>(obj),
        ("v1", "LimitRange") => check::<k8s_openapi::api::core::v1::LimitRange>(obj),
        ("v1", "Namespace") => check::<k8s_openapi::api::core::v1::Namespace>(obj),
        ("v1", "Node") => check::<k8s_openapi::api::core::v1::Node>(obj),
        ("v1", "PersistentVolume") => check::<k8s_openapi::api::core::v1::PersistentVolume>(obj),
        ("v1", "PersistentVolumeClaim") => check::<k8s_openapi::api::core::v1::PersistentVolumeClaim>(obj),
        ("v1", "Pod") => check::<k8s_openapi::api::core::v1::Pod>(obj),
        ("v1", "PodTemplate") => check::<k8s_openapi::api::core::v1::PodTemplate>(obj),
        ("v1", "ReplicationController") => check::<k8s_openapi::api::core::v1::ReplicationController>(obj),
        ("v1", "ResourceQuota") => check::<k8s_openapi::api::core::v1::ResourceQuota>(obj),
        ("v1", "Secret") => check::<k8s_openapi::api::core::v1::Secret>(obj),
        ("v1", "Service") => check::<k8s_openapi::api::core::v1::Service>(obj),
        ("v1", "ServiceAccount") => check::<k8s_openapi::api::core::v1::ServiceAccount>(obj),
        ("discovery.k8s.io/v1", "EndpointSlice") => check::<k8s_openapi::api::discovery::v1::EndpointSlice>(obj),
        ("events.k8s.io/v1", "Event") => check::<k8s_openapi::api::events::v1::Event>(obj),
        ("flowcontrol.apiserver.k8s.io/v1", "FlowSchema") => check::<k8s_openapi::api::flowcontrol::v1::FlowSchema>(obj),
        ("flowcontrol.apiserver.k8s.io/v1", "PriorityLevelConfiguration") => check::<k8s_openapi::api::flowcontrol::v1::PriorityLevelConfiguration>(obj),
        ("networking.k8s.io/v1", "IPAddress") => check::<k8s_openapi::api::networking::v1::IPAddress>(obj),
        ("networking.k8s.io/v1", "Ingress") => check::<k8s_openapi::api::networking::v1::Ingress>(obj),
        ("networking.k8s.io/v1", "IngressClass") => check::<k8s_openapi::api::networking::v1::IngressClass>(obj),
        ("networking.k8s.io/v1", "NetworkPolicy") => check::<k8s_openapi::api::networking::v1::NetworkPolicy>(obj),
        ("networking.k8s.io/v1", "ServiceCIDR") => check::<k8s_openapi::api::networking::v1::ServiceCIDR>(obj),
        ("networking.k8s.io/v1beta1", "IPAddress") => check::<k8s_openapi::api::networking::v1beta1::IPAddress>(obj),
        ("networking.k8s.io/v1beta1", "ServiceCIDR") => check::<k8s_openapi::api::networking::v1beta1::ServiceCIDR>(obj),
        ("node.k8s.io/v1", "RuntimeClass") => check::<k8s_openapi::api::node::v1::RuntimeClass>(obj),
        ("policy/v1", "Eviction") => check::<k8s_openapi::api::policy::v1::Eviction>(obj),
        ("policy/v1", "PodDisruptionBudget") => check::<k8s_openapi::api::policy::v1::PodDisruptionBudget>(obj),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => check::<k8s_openapi::api::rbac::v1::ClusterRole>(obj),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => check::<k8s_openapi::api::rbac::v1::ClusterRoleBinding>(obj),
        ("rbac.authorization.k8s.io/v1", "Role") => check::<k8s_openapi::api::rbac::v1::Role>(obj),
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => check::<k8s_openapi::api::rbac::v1::RoleBinding>(obj),
        ("resource.k8s.io/v1", "DeviceClass") => check::<k8s_openapi::api::resource::v1::DeviceClass>(obj),
        ("resource.k8s.io/v1", "ResourceClaim") => check::<k8s_openapi::api::resource::v1::ResourceClaim>(obj),
        ("resource.k8s.io/v1", "ResourceClaimTemplate") => check::<k8s_openapi::api::resource::v1::ResourceClaimTemplate>(obj),
        ("resource.k8s.io/v1", "ResourceSlice") => check::<k8s_openapi::api::resource::v1::ResourceSlice>(obj),
        ("resource.k8s.io/v1alpha3", "DeviceTaintRule") => check::<k8s_openapi::api::resource::v1alpha3::DeviceTaintRule>(obj),
        ("resource.k8s.io/v1beta1", "DeviceClass") => check::<k8s_openapi::api::resource::v1beta1::DeviceClass>(obj),
        ("resource.k8s.io/v1beta1", "ResourceClaim") => check::<k8s_openapi::api::resource::v1beta1::ResourceClaim>(obj),
        ("resource.k8s.io/v1beta1", "ResourceClaimTemplate") => check::<k8s_openapi::api::resource::v1beta1::ResourceClaimTemplate>(obj),
        ("resource.k8s.io/v1beta1", "ResourceSlice") => check::<k8s_openapi::api::resource::v1beta1::ResourceSlice>(obj),
        ("resource.k8s.io/v1beta2", "DeviceClass") => check::<k8s_openapi::api::resource::v1beta2::DeviceClass>(obj),
        ("resource.k8s.io/v1beta2", "ResourceClaim") => check::<k8s_openapi::api::resource::v1beta2::ResourceClaim>(obj),
        ("resource.k8s.io/v1beta2", "ResourceClaimTemplate") => check::<k8s_openapi::api::resource::v1beta2::ResourceClaimTemplate>(obj),
        ("resource.k8s.io/v1beta2", "ResourceSlice") => check::<k8s_openapi::api::resource::v1beta2::ResourceSlice>(obj),
        ("scheduling.k8s.io/v1", "PriorityClass") => check::<k8s_openapi::api::scheduling::v1::PriorityClass>(obj),
        ("scheduling.k8s.io/v1alpha1", "Workload") => check::<k8s_openapi::api::scheduling::v1alpha1::Workload>(obj),
        ("storage.k8s.io/v1", "CSIDriver") => check::<k8s_openapi::api::storage::v1::CSIDriver>(obj),
        ("storage.k8s.io/v1", "CSINode") => check::<k8s_openapi::api::storage::v1::CSINode>(obj),
        ("storage.k8s.io/v1", "CSIStorageCapacity") => check::<k8s_openapi::api::storage::v1::CSIStorageCapacity>(obj),
        ("storage.k8s.io/v1", "StorageClass") => check::<k8s_openapi::api::storage::v1::StorageClass>(obj),
        ("storage.k8s.io/v1", "VolumeAttachment") => check::<k8s_openapi::api::storage::v1::VolumeAttachment>(obj),
        ("storage.k8s.io/v1", "VolumeAttributesClass") => check::<k8s_openapi::api::storage::v1::VolumeAttributesClass>(obj),
        ("storage.k8s.io/v1beta1", "VolumeAttributesClass") => check::<k8s_openapi::api::storage::v1beta1::VolumeAttributesClass>(obj),
        ("storagemigration.k8s.io/v1beta1", "StorageVersionMigration") => check::<k8s_openapi::api::storagemigration::v1beta1::StorageVersionMigration>(obj),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => check::<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>(obj),
        ("apiregistration.k8s.io/v1", "APIService") => check::<k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService>(obj),
        _ => Ok(()),
    };
    result
        .map_err(|e| format!("{kind} in version \"{version}\" cannot be handled as a {kind}: {e}"))
}
