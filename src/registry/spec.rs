//! One spec per built-in kind: everything the generic machinery asks about a built-in resource
//! beyond its catalogue entry (names, generation, status on create, field selectors, PUT that
//! creates, what DELETE answers, the garbage collector's default, the store hooks), and which of
//! the kind-specific tables elsewhere must know it (Table printer, strategic-merge keys,
//! defaulting, validation beyond metadata). Every typed kind also needs a shape check in
//! `typed.rs`.
//!
//! A persisted kind added to the catalogue without a spec here, or whose spec and tables
//! disagree, fails this module's tests: nothing falls back silently.

use kubox_apimachinery::builtin::BuiltinResource;
use kubox_apimachinery::validation::NameValidation;

/// The spec of one built-in kind.
#[derive(Debug, Clone, Copy)]
pub struct KindSpec {
    /// API group ("" = core).
    pub group: &'static str,
    /// The resource (plural) of the catalogue entry.
    pub resource: &'static str,
    /// The kind.
    pub kind: &'static str,
    /// How `metadata.name` is validated.
    pub names: NameValidation,
    /// kube-apiserver maintains `metadata.generation` (spec changes bump it).
    pub generation: bool,
    /// `status` set on create (JSON); None: a create's status is dropped.
    pub initial_status: Option<&'static str>,
    /// Field-selector fields besides metadata.name and metadata.namespace.
    pub selectable: &'static [&'static str],
    /// PUT of a missing object creates it.
    pub create_on_update: bool,
    /// DELETE answers the object (graceful deletion) rather than a Status.
    pub returns_deleted: bool,
    /// Its Table printer.
    pub printer: Printer,
    /// Its strategic-merge-patch keys.
    pub merge_keys: MergeKeys,
    /// Its defaulting.
    pub defaults: Defaults,
    /// Its validation beyond metadata.
    pub validation: Validation,
    /// What DELETE does to dependents by default.
    pub gc: GcDefault,
    /// What it adds to the generic store.
    pub hooks: HooksKind,
}

/// Which Table printer a kind has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Printer {
    /// kube's own columns (`kubox_apimachinery::printers`).
    Kube,
    /// Name and age.
    NameAge,
}

/// Which strategic-merge-patch keys a kind has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeKeys {
    /// kube's patch strategies (`kubox_apimachinery::patch_meta`).
    Kube,
    /// Only ObjectMeta's (lists replaced).
    ObjectMetaOnly,
}

/// Whether a kind has defaulting of its own (`defaults.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Defaults {
    /// kube's SetDefaults for the kind.
    Kube,
    /// None beyond quantities.
    None,
}

/// Whether a kind is validated beyond metadata (`registry/strategy.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validation {
    /// kube's checks that clients rely on seeing refused.
    Kube,
    /// Metadata and the typed shape only.
    MetadataOnly,
}

/// The garbage collector's default for DELETE without a propagation policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GcDefault {
    /// Background deletion of dependents.
    Background,
    /// Dependents orphaned (kept for compatibility: ReplicationControllers, Jobs).
    Orphan,
    /// No GC finalizers ever (events).
    Unsupported,
}

/// What a kind adds to the generic registry store (`registry::hooks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HooksKind {
    /// Nothing.
    None,
    /// Cluster IPs and node ports.
    Services,
    /// Deletion turns the namespace Terminating.
    Namespaces,
    /// Writes wait for the CRD controller.
    Crds,
    /// Escalation checks; writes wait for the RBAC index.
    Rbac,
    /// The requesting user recorded on create.
    Csrs,
    /// Graceful deletion while simulated kubelets run.
    Pods,
}

const BASE: KindSpec = KindSpec {
    group: "",
    resource: "",
    kind: "",
    names: NameValidation::Subdomain,
    generation: false,
    initial_status: None,
    selectable: &[],
    create_on_update: false,
    returns_deleted: false,
    printer: Printer::NameAge,
    merge_keys: MergeKeys::ObjectMetaOnly,
    defaults: Defaults::None,
    validation: Validation::MetadataOnly,
    gc: GcDefault::Background,
    hooks: HooksKind::None,
};

const EVENT_FIELDS: &[&str] = &[
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
];

/// Every persisted built-in kind of Kubernetes 1.35.
pub static SPECS: &[KindSpec] = &[
    KindSpec {
        group: "",
        resource: "configmaps",
        kind: "ConfigMap",
        printer: Printer::Kube,
        merge_keys: MergeKeys::Kube,
        validation: Validation::Kube,
        ..BASE
    },
    KindSpec {
        group: "",
        resource: "endpoints",
        kind: "Endpoints",
        create_on_update: true,
        printer: Printer::Kube,
        merge_keys: MergeKeys::Kube,
        validation: Validation::Kube,
        ..BASE
    },
    KindSpec {
        group: "",
        resource: "events",
        kind: "Event",
        selectable: EVENT_FIELDS,
        create_on_update: true,
        printer: Printer::Kube,
        merge_keys: MergeKeys::Kube,
        gc: GcDefault::Unsupported,
        ..BASE
    },
    KindSpec {
        group: "",
        resource: "limitranges",
        kind: "LimitRange",
        create_on_update: true,
        merge_keys: MergeKeys::Kube,
        validation: Validation::Kube,
        ..BASE
    },
    KindSpec {
        group: "",
        resource: "namespaces",
        kind: "Namespace",
        names: NameValidation::Label,
        initial_status: Some(r#"{"phase":"Active"}"#),
        selectable: &["status.phase"],
        printer: Printer::Kube,
        merge_keys: MergeKeys::Kube,
        hooks: HooksKind::Namespaces,
        returns_deleted: true,
        defaults: Defaults::Kube,
        validation: Validation::Kube,
        ..BASE
    },
    KindSpec {
        group: "",
        resource: "nodes",
        kind: "Node",
        selectable: &["spec.unschedulable"],
        printer: Printer::Kube,
        merge_keys: MergeKeys::Kube,
        validation: Validation::Kube,
        ..BASE
    },
    KindSpec {
        group: "",
        resource: "persistentvolumeclaims",
        kind: "PersistentVolumeClaim",
        initial_status: Some(r#"{"phase":"Pending"}"#),
        printer: Printer::Kube,
        merge_keys: MergeKeys::Kube,
        returns_deleted: true,
        defaults: Defaults::Kube,
        validation: Validation::Kube,
        ..BASE
    },
    KindSpec {
        group: "",
        resource: "persistentvolumes",
        kind: "PersistentVolume",
        initial_status: Some(r#"{"phase":"Pending"}"#),
        printer: Printer::Kube,
        merge_keys: MergeKeys::Kube,
        returns_deleted: true,
        defaults: Defaults::Kube,
        validation: Validation::Kube,
        ..BASE
    },
    KindSpec {
        group: "",
        resource: "pods",
        kind: "Pod",
        generation: true,
        initial_status: Some(r#"{"phase":"Pending","qosClass":"BestEffort"}"#),
        selectable: &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        returns_deleted: true,
        printer: Printer::Kube,
        merge_keys: MergeKeys::Kube,
        defaults: Defaults::Kube,
        validation: Validation::Kube,
        hooks: HooksKind::Pods,
        ..BASE
    },
    KindSpec {
        group: "",
        resource: "podtemplates",
        kind: "PodTemplate",
        printer: Printer::Kube,
        merge_keys: MergeKeys::Kube,
        defaults: Defaults::Kube,
        returns_deleted: true,
        ..BASE
    },
    KindSpec {
        group: "",
        resource: "replicationcontrollers",
        kind: "ReplicationController",
        generation: true,
        selectable: &["status.replicas"],
        printer: Printer::Kube,
        merge_keys: MergeKeys::Kube,
        defaults: Defaults::Kube,
        gc: GcDefault::Orphan,
        ..BASE
    },
    KindSpec {
        group: "",
        resource: "resourcequotas",
        kind: "ResourceQuota",
        printer: Printer::Kube,
        merge_keys: MergeKeys::Kube,
        returns_deleted: true,
        validation: Validation::Kube,
        ..BASE
    },
    KindSpec {
        group: "",
        resource: "secrets",
        kind: "Secret",
        selectable: &["type"],
        printer: Printer::Kube,
        merge_keys: MergeKeys::Kube,
        defaults: Defaults::Kube,
        validation: Validation::Kube,
        ..BASE
    },
    KindSpec {
        group: "",
        resource: "serviceaccounts",
        kind: "ServiceAccount",
        printer: Printer::Kube,
        merge_keys: MergeKeys::Kube,
        returns_deleted: true,
        validation: Validation::Kube,
        ..BASE
    },
    KindSpec {
        group: "",
        resource: "services",
        kind: "Service",
        names: NameValidation::Dns1035Label,
        initial_status: Some(r#"{"loadBalancer":{}}"#),
        selectable: &["spec.clusterIP", "spec.type"],
        printer: Printer::Kube,
        merge_keys: MergeKeys::Kube,
        defaults: Defaults::Kube,
        hooks: HooksKind::Services,
        returns_deleted: true,
        validation: Validation::Kube,
        ..BASE
    },
    KindSpec {
        group: "apiregistration.k8s.io",
        resource: "apiservices",
        kind: "APIService",
        printer: Printer::Kube,
        merge_keys: MergeKeys::Kube,
        names: NameValidation::PathSegment,
        defaults: Defaults::Kube,
        validation: Validation::Kube,
        ..BASE
    },
    KindSpec {
        group: "apps",
        resource: "controllerrevisions",
        kind: "ControllerRevision",
        printer: Printer::Kube,
        merge_keys: MergeKeys::Kube,
        ..BASE
    },
    KindSpec {
        group: "apps",
        resource: "daemonsets",
        kind: "DaemonSet",
        generation: true,
        printer: Printer::Kube,
        merge_keys: MergeKeys::Kube,
        defaults: Defaults::Kube,
        validation: Validation::Kube,
        ..BASE
    },
    KindSpec {
        group: "apps",
        resource: "deployments",
        kind: "Deployment",
        generation: true,
        printer: Printer::Kube,
        merge_keys: MergeKeys::Kube,
        defaults: Defaults::Kube,
        validation: Validation::Kube,
        ..BASE
    },
    KindSpec {
        group: "apps",
        resource: "replicasets",
        kind: "ReplicaSet",
        generation: true,
        selectable: &["status.replicas"],
        printer: Printer::Kube,
        merge_keys: MergeKeys::Kube,
        defaults: Defaults::Kube,
        validation: Validation::Kube,
        ..BASE
    },
    KindSpec {
        group: "apps",
        resource: "statefulsets",
        kind: "StatefulSet",
        generation: true,
        printer: Printer::Kube,
        merge_keys: MergeKeys::Kube,
        defaults: Defaults::Kube,
        validation: Validation::Kube,
        ..BASE
    },
    KindSpec {
        group: "events.k8s.io",
        resource: "events",
        kind: "Event",
        selectable: EVENT_FIELDS,
        printer: Printer::Kube,
        gc: GcDefault::Unsupported,
        ..BASE
    },
    KindSpec {
        group: "autoscaling",
        resource: "horizontalpodautoscalers",
        kind: "HorizontalPodAutoscaler",
        generation: true,
        printer: Printer::Kube,
        merge_keys: MergeKeys::Kube,
        defaults: Defaults::Kube,
        validation: Validation::Kube,
        ..BASE
    },
    KindSpec {
        group: "batch",
        resource: "cronjobs",
        kind: "CronJob",
        generation: true,
        printer: Printer::Kube,
        merge_keys: MergeKeys::Kube,
        defaults: Defaults::Kube,
        validation: Validation::Kube,
        ..BASE
    },
    KindSpec {
        group: "batch",
        resource: "jobs",
        kind: "Job",
        generation: true,
        selectable: &["status.successful"],
        printer: Printer::Kube,
        merge_keys: MergeKeys::Kube,
        defaults: Defaults::Kube,
        gc: GcDefault::Orphan,
        validation: Validation::Kube,
        ..BASE
    },
    KindSpec {
        group: "certificates.k8s.io",
        resource: "certificatesigningrequests",
        kind: "CertificateSigningRequest",
        // kube's ValidateCertificateRequestName accepts any name (a path segment).
        names: NameValidation::PathSegment,
        selectable: &["spec.signerName"],
        hooks: HooksKind::Csrs,
        printer: Printer::Kube,
        validation: Validation::Kube,
        ..BASE
    },
    KindSpec {
        group: "networking.k8s.io",
        resource: "ingressclasses",
        kind: "IngressClass",
        printer: Printer::Kube,
        validation: Validation::Kube,
        ..BASE
    },
    KindSpec {
        group: "networking.k8s.io",
        resource: "ingresses",
        kind: "Ingress",
        printer: Printer::Kube,
        validation: Validation::Kube,
        ..BASE
    },
    KindSpec {
        group: "networking.k8s.io",
        resource: "ipaddresses",
        kind: "IPAddress",
        printer: Printer::Kube,
        ..BASE
    },
    KindSpec {
        group: "networking.k8s.io",
        resource: "networkpolicies",
        kind: "NetworkPolicy",
        generation: true,
        printer: Printer::Kube,
        validation: Validation::Kube,
        ..BASE
    },
    KindSpec {
        group: "networking.k8s.io",
        resource: "servicecidrs",
        kind: "ServiceCIDR",
        generation: true,
        printer: Printer::Kube,
        merge_keys: MergeKeys::Kube,
        ..BASE
    },
    KindSpec {
        group: "policy",
        resource: "poddisruptionbudgets",
        kind: "PodDisruptionBudget",
        generation: true,
        printer: Printer::Kube,
        merge_keys: MergeKeys::Kube,
        validation: Validation::Kube,
        ..BASE
    },
    KindSpec {
        group: "rbac.authorization.k8s.io",
        resource: "clusterrolebindings",
        kind: "ClusterRoleBinding",
        names: NameValidation::PathSegment,
        printer: Printer::Kube,
        hooks: HooksKind::Rbac,
        validation: Validation::Kube,
        ..BASE
    },
    KindSpec {
        group: "rbac.authorization.k8s.io",
        resource: "clusterroles",
        kind: "ClusterRole",
        names: NameValidation::PathSegment,
        hooks: HooksKind::Rbac,
        validation: Validation::Kube,
        ..BASE
    },
    KindSpec {
        group: "rbac.authorization.k8s.io",
        resource: "rolebindings",
        kind: "RoleBinding",
        names: NameValidation::PathSegment,
        printer: Printer::Kube,
        hooks: HooksKind::Rbac,
        validation: Validation::Kube,
        ..BASE
    },
    KindSpec {
        group: "rbac.authorization.k8s.io",
        resource: "roles",
        kind: "Role",
        names: NameValidation::PathSegment,
        hooks: HooksKind::Rbac,
        validation: Validation::Kube,
        ..BASE
    },
    KindSpec {
        group: "storage.k8s.io",
        resource: "csidrivers",
        kind: "CSIDriver",
        printer: Printer::Kube,
        returns_deleted: true,
        ..BASE
    },
    KindSpec {
        group: "storage.k8s.io",
        resource: "csinodes",
        kind: "CSINode",
        printer: Printer::Kube,
        merge_keys: MergeKeys::Kube,
        returns_deleted: true,
        ..BASE
    },
    KindSpec {
        group: "storage.k8s.io",
        resource: "csistoragecapacities",
        kind: "CSIStorageCapacity",
        printer: Printer::Kube,
        ..BASE
    },
    KindSpec {
        group: "storage.k8s.io",
        resource: "storageclasses",
        kind: "StorageClass",
        printer: Printer::Kube,
        returns_deleted: true,
        defaults: Defaults::Kube,
        validation: Validation::Kube,
        ..BASE
    },
    KindSpec {
        group: "storage.k8s.io",
        resource: "volumeattachments",
        kind: "VolumeAttachment",
        printer: Printer::Kube,
        returns_deleted: true,
        ..BASE
    },
    KindSpec {
        group: "storage.k8s.io",
        resource: "volumeattributesclasses",
        kind: "VolumeAttributesClass",
        printer: Printer::Kube,
        returns_deleted: true,
        ..BASE
    },
    KindSpec {
        group: "admissionregistration.k8s.io",
        resource: "mutatingwebhookconfigurations",
        kind: "MutatingWebhookConfiguration",
        generation: true,
        printer: Printer::Kube,
        merge_keys: MergeKeys::Kube,
        validation: Validation::Kube,
        ..BASE
    },
    KindSpec {
        group: "admissionregistration.k8s.io",
        resource: "validatingadmissionpolicies",
        kind: "ValidatingAdmissionPolicy",
        generation: true,
        printer: Printer::Kube,
        validation: Validation::Kube,
        defaults: Defaults::Kube,
        ..BASE
    },
    KindSpec {
        group: "admissionregistration.k8s.io",
        resource: "validatingadmissionpolicybindings",
        kind: "ValidatingAdmissionPolicyBinding",
        generation: true,
        printer: Printer::Kube,
        validation: Validation::Kube,
        ..BASE
    },
    KindSpec {
        group: "admissionregistration.k8s.io",
        resource: "validatingwebhookconfigurations",
        kind: "ValidatingWebhookConfiguration",
        generation: true,
        printer: Printer::Kube,
        merge_keys: MergeKeys::Kube,
        validation: Validation::Kube,
        ..BASE
    },
    KindSpec {
        group: "apiextensions.k8s.io",
        resource: "customresourcedefinitions",
        kind: "CustomResourceDefinition",
        generation: true,
        defaults: Defaults::Kube,
        validation: Validation::Kube,
        hooks: HooksKind::Crds,
        ..BASE
    },
    KindSpec {
        group: "scheduling.k8s.io",
        resource: "priorityclasses",
        kind: "PriorityClass",
        printer: Printer::Kube,
        validation: Validation::Kube,
        ..BASE
    },
    KindSpec {
        group: "coordination.k8s.io",
        resource: "leases",
        kind: "Lease",
        create_on_update: true,
        printer: Printer::Kube,
        validation: Validation::Kube,
        ..BASE
    },
    KindSpec {
        group: "node.k8s.io",
        resource: "runtimeclasses",
        kind: "RuntimeClass",
        printer: Printer::Kube,
        ..BASE
    },
    KindSpec {
        group: "discovery.k8s.io",
        resource: "endpointslices",
        kind: "EndpointSlice",
        generation: true,
        printer: Printer::Kube,
        validation: Validation::Kube,
        ..BASE
    },
    KindSpec {
        group: "resource.k8s.io",
        resource: "deviceclasses",
        kind: "DeviceClass",
        generation: true,
        printer: Printer::Kube,
        returns_deleted: true,
        ..BASE
    },
    KindSpec {
        group: "resource.k8s.io",
        resource: "resourceclaims",
        kind: "ResourceClaim",
        generation: true,
        printer: Printer::Kube,
        merge_keys: MergeKeys::Kube,
        returns_deleted: true,
        ..BASE
    },
    KindSpec {
        group: "resource.k8s.io",
        resource: "resourceclaimtemplates",
        kind: "ResourceClaimTemplate",
        printer: Printer::Kube,
        returns_deleted: true,
        ..BASE
    },
    KindSpec {
        group: "resource.k8s.io",
        resource: "resourceslices",
        kind: "ResourceSlice",
        generation: true,
        printer: Printer::Kube,
        returns_deleted: true,
        ..BASE
    },
    KindSpec {
        group: "flowcontrol.apiserver.k8s.io",
        resource: "flowschemas",
        kind: "FlowSchema",
        generation: true,
        printer: Printer::Kube,
        merge_keys: MergeKeys::Kube,
        ..BASE
    },
    KindSpec {
        group: "flowcontrol.apiserver.k8s.io",
        resource: "prioritylevelconfigurations",
        kind: "PriorityLevelConfiguration",
        generation: true,
        printer: Printer::Kube,
        merge_keys: MergeKeys::Kube,
        ..BASE
    },
];

/// The spec of a catalogue entry (None for resources that are never stored, such as reviews).
pub fn of(b: &BuiltinResource) -> Option<&'static KindSpec> {
    SPECS
        .iter()
        .find(|s| s.resource == b.resource && s.group == b.group)
}

impl KindSpec {
    /// For resources without one (never stored): every property at its plainest.
    pub const PLAIN: KindSpec = BASE;
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubox_apimachinery::builtin::BUILTIN_RESOURCES;
    use kubox_apimachinery::patch_meta::BuiltinPatchMeta;
    use serde_json::json;

    #[test]
    fn every_persisted_kind_has_exactly_one_spec_and_every_spec_a_kind() {
        for b in BUILTIN_RESOURCES.iter().filter(|b| b.is_persisted()) {
            let found: Vec<&KindSpec> = SPECS
                .iter()
                .filter(|s| s.group == b.group && s.resource == b.resource)
                .collect();
            assert_eq!(found.len(), 1, "{}/{}: add a KindSpec", b.group, b.resource);
            assert_eq!(found[0].kind, b.kind, "{}/{}", b.group, b.resource);
        }
        for s in SPECS {
            assert!(
                BUILTIN_RESOURCES
                    .iter()
                    .any(|b| b.group == s.group && b.resource == s.resource && b.is_persisted()),
                "{}/{} has a spec but no persisted catalogue entry",
                s.group,
                s.resource
            );
        }
    }

    #[test]
    fn the_kind_tables_agree_with_the_specs() {
        for b in BUILTIN_RESOURCES.iter().filter(|b| b.is_persisted()) {
            let Some(s) = of(b) else { continue };
            let what = format!("{}/{}", b.group, b.kind);
            assert_eq!(
                kubox_apimachinery::printers::columns(b.group, b.kind).is_some(),
                s.printer == Printer::Kube,
                "{what}: printer"
            );
            assert_eq!(
                BuiltinPatchMeta::for_kind(b.group, b.kind).is_known_kind(),
                s.merge_keys == MergeKeys::Kube,
                "{what}: strategic merge keys"
            );
            for v in b.versions {
                let api_version = if b.group.is_empty() {
                    v.to_string()
                } else {
                    format!("{}/{v}", b.group)
                };
                assert!(
                    crate::typed::knows(&api_version, b.kind),
                    "{what} at {api_version}: no typed shape check"
                );
            }
            let has_status = b.subresources.iter().any(|x| x.name == "status");
            if let Some(st) = s.initial_status {
                assert!(has_status, "{what}: an initial status without a status");
                assert!(
                    serde_json::from_str::<serde_json::Value>(st).is_ok(),
                    "{what}"
                );
            }
            // Defaulting declared ⇔ defaulting does something to a bare object.
            let pod_spec = json!({"containers": [{"name": "c"}]});
            let stored_as = if b.group.is_empty() {
                b.storage_version.to_string()
            } else {
                format!("{}/{}", b.group, b.storage_version)
            };
            // (`service`: an APIService's defaults are its service reference's.)
            let mut obj = json!({"apiVersion": stored_as, "kind": b.kind, "metadata": {},
                                 "spec": {"template": {"spec": pod_spec}, "service": {}},
                                 "template": {"spec": pod_spec}});
            let before = obj.clone();
            crate::defaults::apply(b.group, b.kind, &mut obj);
            assert_eq!(
                obj != before,
                s.defaults == Defaults::Kube,
                "{what}: defaulting declared {:?}",
                s.defaults
            );
        }
    }
}
