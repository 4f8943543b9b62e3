//! Server-side Table printers: the columns and cells kube-apiserver returns for
//! `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`, which is what `kubectl get` (and
//! `kubectl get -o wide`, which shows the priority-1 columns too) prints.
//!
//! The printers follow kube-apiserver 1.35 (`pkg/printers/internalversion`, plus the
//! kube-aggregator's APIService table and the generic default table). Like kube-apiserver, every
//! row carries all columns, wide ones included; clients hide the columns whose priority is
//! above zero unless asked for wide output.
//!
//! Objects are read as JSON in any served version. Where kube-apiserver would print a field
//! that its defaulting always fills in (a Service's type, a port's protocol, a Deployment's
//! replicas, ...), a missing field prints as its default.

mod columns;
mod core;
mod others;
mod util;
mod workloads;

#[cfg(test)]
mod tests;

use serde_json::Value;
use std::time::SystemTime;

/// One column of a Table (`meta.k8s.io/v1 TableColumnDefinition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnDefinition {
    /// The column's header, e.g. "Name" or "Port(s)" (kubectl shows it upper-cased).
    pub name: &'static str,
    /// The OpenAPI type of the column: "string", "integer", "number", "boolean" or "date".
    pub type_: &'static str,
    /// The OpenAPI format: "name" for the column holding the object's name, else "".
    pub format: &'static str,
    /// A human-readable description of the column.
    pub description: &'static str,
    /// 0 for columns always shown, 1 for those only shown with `-o wide`.
    pub priority: i32,
}

type CellFn = fn(&Value, util::Nanos) -> Vec<Value>;

/// The printer of a built-in kind: its columns and its row function.
fn printer(group: &str, kind: &str) -> Option<(&'static [ColumnDefinition], CellFn)> {
    use columns as c;
    let p: (&'static [ColumnDefinition], CellFn) = match (group, kind) {
        ("" | "core", "Pod") => (c::POD, core::pod),
        ("" | "core", "PodTemplate") => (c::POD_TEMPLATE, core::pod_template),
        ("" | "core", "ReplicationController") => {
            (c::REPLICATION_CONTROLLER, core::replication_controller)
        }
        ("" | "core", "Service") => (c::SERVICE, core::service),
        ("" | "core", "Endpoints") => (c::ENDPOINTS, core::endpoints),
        ("" | "core", "Node") => (c::NODE, core::node),
        ("" | "core", "Event") => (c::EVENT, core::event),
        ("" | "core", "Namespace") => (c::NAMESPACE, core::namespace),
        ("" | "core", "Secret") => (c::SECRET, core::secret),
        ("" | "core", "ServiceAccount") => (c::SERVICE_ACCOUNT, core::name_age),
        ("" | "core", "PersistentVolume") => (c::PERSISTENT_VOLUME, core::persistent_volume),
        ("" | "core", "PersistentVolumeClaim") => {
            (c::PERSISTENT_VOLUME_CLAIM, core::persistent_volume_claim)
        }
        ("" | "core", "ComponentStatus") => (c::COMPONENT_STATUS, core::component_status),
        ("" | "core", "ConfigMap") => (c::CONFIG_MAP, core::config_map),
        ("" | "core", "ResourceQuota") => (c::RESOURCE_QUOTA, core::resource_quota),

        ("apps", "ReplicaSet") => (c::REPLICATION_CONTROLLER, workloads::replica_set),
        ("apps", "Deployment") => (c::DEPLOYMENT, workloads::deployment),
        ("apps", "StatefulSet") => (c::STATEFUL_SET, workloads::stateful_set),
        ("apps", "DaemonSet") => (c::DAEMON_SET, workloads::daemon_set),
        ("apps", "ControllerRevision") => (c::CONTROLLER_REVISION, workloads::controller_revision),
        ("batch", "Job") => (c::JOB, workloads::job),
        ("batch", "CronJob") => (c::CRON_JOB, workloads::cron_job),
        ("autoscaling", "HorizontalPodAutoscaler") => (
            c::HORIZONTAL_POD_AUTOSCALER,
            workloads::horizontal_pod_autoscaler,
        ),
        ("autoscaling", "Scale") => (c::SCALE, workloads::scale),
        ("policy", "PodDisruptionBudget") => {
            (c::POD_DISRUPTION_BUDGET, core::pod_disruption_budget)
        }

        ("networking.k8s.io", "Ingress") => (c::INGRESS, others::ingress),
        ("networking.k8s.io", "IngressClass") => (c::INGRESS_CLASS, others::ingress_class),
        ("networking.k8s.io", "NetworkPolicy") => (c::NETWORK_POLICY, others::network_policy),
        ("networking.k8s.io", "ServiceCIDR") => (c::SERVICE_CIDR, others::service_cidr),
        ("networking.k8s.io", "IPAddress") => (c::IP_ADDRESS, others::ip_address),
        ("discovery.k8s.io", "EndpointSlice") => (c::ENDPOINT_SLICE, others::endpoint_slice),
        ("events.k8s.io", "Event") => (c::EVENT, core::events_event),

        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
            (c::ROLE_BINDING, others::role_binding)
        }
        ("certificates.k8s.io", "CertificateSigningRequest") => (
            c::CERTIFICATE_SIGNING_REQUEST,
            others::certificate_signing_request,
        ),
        ("certificates.k8s.io", "ClusterTrustBundle") => {
            (c::CLUSTER_TRUST_BUNDLE, others::cluster_trust_bundle)
        }
        ("certificates.k8s.io", "PodCertificateRequest") => {
            (c::POD_CERTIFICATE_REQUEST, others::pod_certificate_request)
        }
        ("coordination.k8s.io", "Lease") => (c::LEASE, others::lease),
        ("coordination.k8s.io", "LeaseCandidate") => (c::LEASE_CANDIDATE, others::lease_candidate),

        ("storage.k8s.io", "StorageClass") => (c::STORAGE_CLASS, others::storage_class),
        ("storage.k8s.io", "VolumeAttributesClass") => {
            (c::VOLUME_ATTRIBUTES_CLASS, others::volume_attributes_class)
        }
        ("storage.k8s.io", "VolumeAttachment") => (c::VOLUME_ATTACHMENT, others::volume_attachment),
        ("storage.k8s.io", "CSINode") => (c::CSI_NODE, others::csi_node),
        ("storage.k8s.io", "CSIDriver") => (c::CSI_DRIVER, others::csi_driver),
        ("storage.k8s.io", "CSIStorageCapacity") => {
            (c::CSI_STORAGE_CAPACITY, others::csi_storage_capacity)
        }

        ("scheduling.k8s.io", "PriorityClass") => (c::PRIORITY_CLASS, others::priority_class),
        ("scheduling.k8s.io", "Workload") => (c::NAME_AGE, core::name_age),
        ("node.k8s.io", "RuntimeClass") => (c::RUNTIME_CLASS, others::runtime_class),

        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration")
        | ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration") => {
            (c::WEBHOOK_CONFIGURATION, others::webhook_configuration)
        }
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy") => (
            c::VALIDATING_ADMISSION_POLICY,
            others::validating_admission_policy,
        ),
        ("admissionregistration.k8s.io", "MutatingAdmissionPolicy") => (
            c::MUTATING_ADMISSION_POLICY,
            others::mutating_admission_policy,
        ),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding")
        | ("admissionregistration.k8s.io", "MutatingAdmissionPolicyBinding") => (
            c::ADMISSION_POLICY_BINDING,
            others::admission_policy_binding,
        ),

        ("flowcontrol.apiserver.k8s.io", "FlowSchema") => (c::FLOW_SCHEMA, others::flow_schema),
        ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration") => (
            c::PRIORITY_LEVEL_CONFIGURATION,
            others::priority_level_configuration,
        ),
        ("internal.apiserver.k8s.io", "StorageVersion") => {
            (c::STORAGE_VERSION, others::storage_version)
        }
        ("storagemigration.k8s.io", "StorageVersionMigration") => (
            c::STORAGE_VERSION_MIGRATION,
            others::storage_version_migration,
        ),

        ("resource.k8s.io", "DeviceClass" | "ResourceClaimTemplate") => {
            (c::NAME_AGE, core::name_age)
        }
        ("resource.k8s.io", "ResourceClaim") => (c::RESOURCE_CLAIM, others::resource_claim),
        ("resource.k8s.io", "ResourceSlice") => (c::RESOURCE_SLICE, others::resource_slice),
        ("resource.k8s.io", "DeviceTaintRule") => (c::DEVICE_TAINT_RULE, others::device_taint_rule),

        ("apiregistration.k8s.io", "APIService") => (c::API_SERVICE, others::api_service),
        _ => return None,
    };
    Some(p)
}

/// The columns for a built-in kind (group "" = core), or None when kube-apiserver has no
/// printer for it (then the server uses the default Name + Created At columns, see
/// [`default_columns`]). Role, ClusterRole, LimitRange and CustomResourceDefinition, for
/// instance, have none.
pub fn columns(group: &str, kind: &str) -> Option<&'static [ColumnDefinition]> {
    printer(group, kind).map(|(cols, _)| cols)
}

/// The columns of kinds without a printer: Name (format "name") and "Created At" (type date).
pub fn default_columns() -> &'static [ColumnDefinition] {
    columns::DEFAULT
}

/// The cells of one row (same length as the columns), computed from the object as JSON.
///
/// Kinds without a printer get the default cells: the name and the creation timestamp in
/// RFC 3339 (UTC, whole seconds). Ages are relative to `now`.
pub fn row_cells(group: &str, kind: &str, obj: &Value, now: SystemTime) -> Vec<Value> {
    let now = util::system_time_nanos(now);
    match printer(group, kind) {
        Some((_, cells)) => cells(obj, now),
        None => default_cells(obj),
    }
}

fn default_cells(obj: &Value) -> Vec<Value> {
    let created = match util::get(obj, &["metadata", "creationTimestamp"]).and_then(Value::as_str) {
        Some(text) => match util::parse_rfc3339(text) {
            Some(t) => util::format_rfc3339_utc(t),
            None => text.to_string(),
        },
        // Go formats the zero time.
        None => "0001-01-01T00:00:00Z".to_string(),
    };
    vec![util::cell(util::name(obj)), util::cell(created)]
}

/// Go's `duration.HumanDuration`, which kube-apiserver uses for ages: "45s", "119s", "2m",
/// "5m30s", "3h2m", "47h", "3d4h", "12d", "2y30d", "9y".
pub fn human_duration(d: std::time::Duration) -> String {
    util::human_duration_nanos(i128::try_from(d.as_nanos()).unwrap_or(i128::MAX))
}
