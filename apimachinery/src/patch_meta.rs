//! Where strategic merge patch finds each field's patch strategy: a static table of the
//! `patchStrategy` / `patchMergeKey` struct tags (`x-kubernetes-patch-strategy` /
//! `x-kubernetes-patch-merge-key` in the OpenAPI) of the Kubernetes 1.35 built-in types.
//!
//! Only fields with a strategy, and the fields leading to them, are listed. Any field not in the
//! table is [`FieldStrategy::Replace`]: lists are atomic (replaced wholesale), which is what Go
//! does for a list field without tags; objects are merged key by key whatever their strategy.
//! Fields that are atomic in Kubernetes as well (tolerations, `command`/`args`, `envFrom`,
//! `resizePolicy`, readiness gates, node taints, endpoint subsets, ingress rules, RBAC rules,
//! CSR/CRD conditions, …) are deliberately absent.

use crate::strategic::{FieldStrategy, PatchMeta};

/// A field's strategy as written in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strategy {
    /// No tag: atomic list / merged object.
    None,
    /// `patchStrategy:"merge" patchMergeKey:"<key>"`.
    Merge(&'static str),
    /// `patchStrategy:"merge"` on a list of primitives.
    MergeSet,
    /// `patchStrategy:"retainKeys"`.
    RetainKeys,
    /// `patchStrategy:"merge,retainKeys" patchMergeKey:"<key>"`.
    MergeRetainKeys(&'static str),
}

impl From<Strategy> for FieldStrategy {
    fn from(s: Strategy) -> Self {
        match s {
            Strategy::None => FieldStrategy::Replace,
            Strategy::Merge(key) => FieldStrategy::Merge {
                key: Some(key.to_string()),
            },
            Strategy::MergeSet => FieldStrategy::Merge { key: None },
            Strategy::RetainKeys => FieldStrategy::RetainKeys,
            Strategy::MergeRetainKeys(key) => FieldStrategy::MergeRetainKeys {
                key: Some(key.to_string()),
            },
        }
    }
}

/// One field of a type: its JSON name, its strategy, and the fields of its value (of its items
/// for a list).
#[derive(Debug)]
struct Field {
    name: &'static str,
    strategy: Strategy,
    children: &'static [Field],
}

/// A field with a strategy and no interesting children.
const fn tagged(name: &'static str, strategy: Strategy) -> Field {
    Field {
        name,
        strategy,
        children: &[],
    }
}

/// A field with a strategy whose items/value have fields of interest.
const fn tagged_with(name: &'static str, strategy: Strategy, children: &'static [Field]) -> Field {
    Field {
        name,
        strategy,
        children,
    }
}

/// An untagged field on the way to tagged ones.
const fn nested(name: &'static str, children: &'static [Field]) -> Field {
    Field {
        name,
        strategy: Strategy::None,
        children,
    }
}

use Strategy::{Merge, MergeRetainKeys, MergeSet, RetainKeys};

// --- meta/v1 ---------------------------------------------------------------------------------

/// `metav1.ObjectMeta`.
const OBJECT_META: &[Field] = &[
    tagged("finalizers", MergeSet),
    tagged("ownerReferences", Merge("uid")),
];

const METADATA: Field = nested("metadata", OBJECT_META);

/// A status whose only tagged field is `conditions` merged by `type`.
const CONDITIONS_STATUS: &[Field] = &[tagged("conditions", Merge("type"))];

const STATUS_CONDITIONS: Field = nested("status", CONDITIONS_STATUS);

// --- core/v1 pods ------------------------------------------------------------------------------

/// `Container` and `EphemeralContainer` (same tagged fields).
const CONTAINER: &[Field] = &[
    tagged("ports", Merge("containerPort")),
    tagged("env", Merge("name")),
    tagged("volumeMounts", Merge("mountPath")),
    tagged("volumeDevices", Merge("devicePath")),
];

/// `PodSpec`.
const POD_SPEC: &[Field] = &[
    tagged("volumes", MergeRetainKeys("name")),
    tagged_with("initContainers", Merge("name"), CONTAINER),
    tagged_with("containers", Merge("name"), CONTAINER),
    tagged_with("ephemeralContainers", Merge("name"), CONTAINER),
    tagged("imagePullSecrets", Merge("name")),
    tagged("hostAliases", Merge("ip")),
    tagged("topologySpreadConstraints", Merge("topologyKey")),
    tagged("schedulingGates", Merge("name")),
    tagged("resourceClaims", MergeRetainKeys("name")),
];

/// `PodStatus`.
const POD_STATUS: &[Field] = &[
    tagged("conditions", Merge("type")),
    tagged("podIPs", Merge("ip")),
    tagged("hostIPs", Merge("ip")),
    tagged("resourceClaimStatuses", MergeRetainKeys("name")),
];

/// `PodTemplateSpec`.
const POD_TEMPLATE_SPEC: &[Field] = &[METADATA, nested("spec", POD_SPEC)];

const TEMPLATE: Field = nested("template", POD_TEMPLATE_SPEC);

// --- roots ---------------------------------------------------------------------------------------

const META_ONLY: &[Field] = &[METADATA];

const POD: &[Field] = &[
    METADATA,
    nested("spec", POD_SPEC),
    nested("status", POD_STATUS),
];

const POD_TEMPLATE: &[Field] = &[METADATA, TEMPLATE];

/// ReplicationController, ReplicaSet, StatefulSet, DaemonSet, Job: `spec.template`, and
/// `status.conditions` by type.
const TEMPLATED_WORKLOAD: &[Field] = &[METADATA, nested("spec", &[TEMPLATE]), STATUS_CONDITIONS];

const DEPLOYMENT: &[Field] = &[
    METADATA,
    nested("spec", &[TEMPLATE, tagged("strategy", RetainKeys)]),
    STATUS_CONDITIONS,
];

/// `JobTemplateSpec` (CronJob `spec.jobTemplate`).
const JOB_TEMPLATE_SPEC: &[Field] = &[METADATA, nested("spec", &[TEMPLATE])];

const CRON_JOB: &[Field] = &[
    METADATA,
    nested("spec", &[nested("jobTemplate", JOB_TEMPLATE_SPEC)]),
];

const SERVICE: &[Field] = &[
    METADATA,
    nested("spec", &[tagged("ports", Merge("port"))]),
    STATUS_CONDITIONS,
];

const NODE: &[Field] = &[
    METADATA,
    nested("spec", &[tagged("podCIDRs", MergeSet)]),
    nested(
        "status",
        &[
            tagged("conditions", Merge("type")),
            tagged("addresses", Merge("type")),
        ],
    ),
];

/// Kinds whose only tagged list is `status.conditions` (Namespace, PersistentVolumeClaim,
/// HorizontalPodAutoscaler, PodDisruptionBudget, APIService, FlowSchema,
/// PriorityLevelConfiguration, ServiceCIDR).
const CONDITIONS_ONLY: &[Field] = &[METADATA, STATUS_CONDITIONS];

const SERVICE_ACCOUNT: &[Field] = &[METADATA, tagged("secrets", Merge("name"))];

const COMPONENT_STATUS: &[Field] = &[METADATA, tagged("conditions", Merge("type"))];

/// Validating/MutatingWebhookConfiguration.
const WEBHOOK_CONFIGURATION: &[Field] = &[METADATA, tagged("webhooks", Merge("name"))];

const CSI_NODE: &[Field] = &[
    METADATA,
    nested("spec", &[tagged("drivers", Merge("name"))]),
];

const RESOURCE_CLAIM: &[Field] = &[
    METADATA,
    nested("status", &[tagged("reservedFor", Merge("uid"))]),
];

/// The root fields of the built-in kind `(group, kind)`, `None` when the kind is not built in.
fn root_for(group: &str, kind: &str) -> Option<&'static [Field]> {
    let root = match (group, kind) {
        ("" | "core", "Pod") => POD,
        ("" | "core", "PodTemplate") => POD_TEMPLATE,
        ("" | "core", "ReplicationController") => TEMPLATED_WORKLOAD,
        ("" | "core", "Service") => SERVICE,
        ("" | "core", "Node") => NODE,
        ("" | "core", "Namespace" | "PersistentVolumeClaim") => CONDITIONS_ONLY,
        ("" | "core", "ServiceAccount") => SERVICE_ACCOUNT,
        ("" | "core", "ComponentStatus") => COMPONENT_STATUS,
        (
            "" | "core",
            "ConfigMap" | "Secret" | "Endpoints" | "Event" | "LimitRange" | "ResourceQuota"
            | "PersistentVolume" | "Binding",
        ) => META_ONLY,
        ("apps" | "extensions", "Deployment") => DEPLOYMENT,
        ("apps" | "extensions", "ReplicaSet" | "DaemonSet") | ("apps", "StatefulSet") => {
            TEMPLATED_WORKLOAD
        }
        ("apps", "ControllerRevision") => META_ONLY,
        ("batch", "Job") => TEMPLATED_WORKLOAD,
        ("batch", "CronJob") => CRON_JOB,
        ("autoscaling", "HorizontalPodAutoscaler")
        | ("policy", "PodDisruptionBudget")
        | ("apiregistration.k8s.io", "APIService")
        | ("flowcontrol.apiserver.k8s.io", "FlowSchema" | "PriorityLevelConfiguration")
        | ("networking.k8s.io", "ServiceCIDR") => CONDITIONS_ONLY,
        (
            "admissionregistration.k8s.io",
            "ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration",
        ) => WEBHOOK_CONFIGURATION,
        ("storage.k8s.io", "CSINode") => CSI_NODE,
        ("resource.k8s.io", "ResourceClaim") => RESOURCE_CLAIM,
        _ => return None,
    };
    Some(root)
}

/// The patch strategies of a built-in kind's fields, from a static table of the Kubernetes 1.35
/// struct tags. A kind the table does not know gets the `ObjectMeta` rules (`metadata.finalizers`
/// merged as a set, `metadata.ownerReferences` by `uid`) and nothing else.
#[derive(Debug, Clone, Copy)]
pub struct BuiltinPatchMeta {
    root: &'static [Field],
    known: bool,
}

impl BuiltinPatchMeta {
    /// The table for objects of `kind` in API group `group` (`""` or `"core"` for the core
    /// group), e.g. `for_kind("apps", "Deployment")`.
    pub fn for_kind(group: &str, kind: &str) -> BuiltinPatchMeta {
        match root_for(group, kind) {
            Some(root) => BuiltinPatchMeta { root, known: true },
            None => BuiltinPatchMeta {
                root: META_ONLY,
                known: false,
            },
        }
    }

    /// Whether the table has an entry for the kind (`false`: only the `ObjectMeta` rules apply).
    pub fn is_known_kind(&self) -> bool {
        self.known
    }
}

impl PatchMeta for BuiltinPatchMeta {
    fn lookup(&self, path: &[&str]) -> FieldStrategy {
        let mut fields = self.root;
        for (i, segment) in path.iter().enumerate() {
            let Some(field) = fields.iter().find(|f| f.name == *segment) else {
                return FieldStrategy::Replace;
            };
            if i + 1 == path.len() {
                return field.strategy.into();
            }
            fields = field.children;
        }
        FieldStrategy::Replace
    }
}

/// No metadata at all: every list is atomic, every object merges (JSON merge patch semantics
/// plus the directives).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPatchMeta;

impl PatchMeta for NoPatchMeta {
    fn lookup(&self, _path: &[&str]) -> FieldStrategy {
        FieldStrategy::Replace
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn merge(key: &str) -> FieldStrategy {
        FieldStrategy::Merge {
            key: Some(key.to_string()),
        }
    }

    fn look(meta: &BuiltinPatchMeta, path: &str) -> FieldStrategy {
        let p: Vec<&str> = path.split('.').collect();
        meta.lookup(&p)
    }

    #[test]
    fn object_meta_everywhere() {
        for (g, k) in [
            ("", "Pod"),
            ("apps", "Deployment"),
            ("example.com", "Widget"),
        ] {
            let m = BuiltinPatchMeta::for_kind(g, k);
            assert_eq!(
                look(&m, "metadata.finalizers"),
                FieldStrategy::Merge { key: None }
            );
            assert_eq!(look(&m, "metadata.ownerReferences"), merge("uid"));
            assert_eq!(look(&m, "metadata.labels"), FieldStrategy::Replace);
            assert_eq!(look(&m, "metadata.managedFields"), FieldStrategy::Replace);
        }
        assert!(!BuiltinPatchMeta::for_kind("example.com", "Widget").is_known_kind());
        assert!(BuiltinPatchMeta::for_kind("", "Pod").is_known_kind());
        assert!(BuiltinPatchMeta::for_kind("core", "ConfigMap").is_known_kind());
    }

    #[test]
    fn pod_spec_fields() {
        let m = BuiltinPatchMeta::for_kind("", "Pod");
        assert_eq!(look(&m, "spec.containers"), merge("name"));
        assert_eq!(look(&m, "spec.initContainers"), merge("name"));
        assert_eq!(look(&m, "spec.ephemeralContainers"), merge("name"));
        assert_eq!(
            look(&m, "spec.volumes"),
            FieldStrategy::MergeRetainKeys {
                key: Some("name".into())
            }
        );
        assert_eq!(look(&m, "spec.imagePullSecrets"), merge("name"));
        assert_eq!(look(&m, "spec.hostAliases"), merge("ip"));
        assert_eq!(
            look(&m, "spec.topologySpreadConstraints"),
            merge("topologyKey")
        );
        assert_eq!(look(&m, "spec.schedulingGates"), merge("name"));
        assert_eq!(
            look(&m, "spec.resourceClaims"),
            FieldStrategy::MergeRetainKeys {
                key: Some("name".into())
            }
        );
        assert_eq!(look(&m, "spec.tolerations"), FieldStrategy::Replace);
        assert_eq!(look(&m, "spec.readinessGates"), FieldStrategy::Replace);
        assert_eq!(look(&m, "status.conditions"), merge("type"));
        assert_eq!(look(&m, "status.podIPs"), merge("ip"));
        assert_eq!(look(&m, "status.hostIPs"), merge("ip"));
        assert_eq!(look(&m, "status.containerStatuses"), FieldStrategy::Replace);
    }

    #[test]
    fn container_fields_in_every_container_list() {
        let m = BuiltinPatchMeta::for_kind("", "Pod");
        for list in ["containers", "initContainers", "ephemeralContainers"] {
            assert_eq!(look(&m, &format!("spec.{list}.env")), merge("name"));
            assert_eq!(
                look(&m, &format!("spec.{list}.ports")),
                merge("containerPort")
            );
            assert_eq!(
                look(&m, &format!("spec.{list}.volumeMounts")),
                merge("mountPath")
            );
            assert_eq!(
                look(&m, &format!("spec.{list}.volumeDevices")),
                merge("devicePath")
            );
            assert_eq!(
                look(&m, &format!("spec.{list}.command")),
                FieldStrategy::Replace
            );
            assert_eq!(
                look(&m, &format!("spec.{list}.envFrom")),
                FieldStrategy::Replace
            );
            assert_eq!(
                look(&m, &format!("spec.{list}.resizePolicy")),
                FieldStrategy::Replace
            );
        }
    }

    #[test]
    fn pod_templates_in_workloads() {
        for (g, k, prefix) in [
            ("", "PodTemplate", "template"),
            ("", "ReplicationController", "spec.template"),
            ("apps", "Deployment", "spec.template"),
            ("apps", "ReplicaSet", "spec.template"),
            ("apps", "StatefulSet", "spec.template"),
            ("apps", "DaemonSet", "spec.template"),
            ("batch", "Job", "spec.template"),
            ("batch", "CronJob", "spec.jobTemplate.spec.template"),
        ] {
            let m = BuiltinPatchMeta::for_kind(g, k);
            assert_eq!(
                look(&m, &format!("{prefix}.spec.containers")),
                merge("name"),
                "{k}"
            );
            assert_eq!(
                look(&m, &format!("{prefix}.spec.containers.env")),
                merge("name"),
                "{k}"
            );
            assert_eq!(
                look(&m, &format!("{prefix}.metadata.finalizers")),
                FieldStrategy::Merge { key: None },
                "{k}"
            );
            assert_eq!(
                look(&m, &format!("{prefix}.metadata.annotations")),
                FieldStrategy::Replace
            );
        }
        let cj = BuiltinPatchMeta::for_kind("batch", "CronJob");
        assert_eq!(
            look(&cj, "spec.jobTemplate.metadata.ownerReferences"),
            merge("uid")
        );
    }

    #[test]
    fn workload_status_and_strategy() {
        let d = BuiltinPatchMeta::for_kind("apps", "Deployment");
        assert_eq!(look(&d, "spec.strategy"), FieldStrategy::RetainKeys);
        assert_eq!(look(&d, "status.conditions"), merge("type"));
        for (g, k) in [
            ("apps", "ReplicaSet"),
            ("apps", "StatefulSet"),
            ("apps", "DaemonSet"),
            ("batch", "Job"),
            ("", "ReplicationController"),
            ("", "Namespace"),
            ("", "PersistentVolumeClaim"),
            ("autoscaling", "HorizontalPodAutoscaler"),
            ("policy", "PodDisruptionBudget"),
            ("apiregistration.k8s.io", "APIService"),
            ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
            ("", "Service"),
        ] {
            let m = BuiltinPatchMeta::for_kind(g, k);
            assert_eq!(look(&m, "status.conditions"), merge("type"), "{g}/{k}");
        }
        let ss = BuiltinPatchMeta::for_kind("apps", "StatefulSet");
        assert_eq!(
            look(&ss, "spec.volumeClaimTemplates"),
            FieldStrategy::Replace
        );
        assert_eq!(look(&ss, "spec.updateStrategy"), FieldStrategy::Replace);
    }

    #[test]
    fn other_kinds() {
        let svc = BuiltinPatchMeta::for_kind("", "Service");
        assert_eq!(look(&svc, "spec.ports"), merge("port"));
        assert_eq!(look(&svc, "spec.externalIPs"), FieldStrategy::Replace);
        let node = BuiltinPatchMeta::for_kind("", "Node");
        assert_eq!(
            look(&node, "spec.podCIDRs"),
            FieldStrategy::Merge { key: None }
        );
        assert_eq!(look(&node, "spec.taints"), FieldStrategy::Replace);
        assert_eq!(look(&node, "status.addresses"), merge("type"));
        assert_eq!(look(&node, "status.conditions"), merge("type"));
        let sa = BuiltinPatchMeta::for_kind("", "ServiceAccount");
        assert_eq!(look(&sa, "secrets"), merge("name"));
        assert_eq!(look(&sa, "imagePullSecrets"), FieldStrategy::Replace);
        let wh = BuiltinPatchMeta::for_kind(
            "admissionregistration.k8s.io",
            "MutatingWebhookConfiguration",
        );
        assert_eq!(look(&wh, "webhooks"), merge("name"));
        let csi = BuiltinPatchMeta::for_kind("storage.k8s.io", "CSINode");
        assert_eq!(look(&csi, "spec.drivers"), merge("name"));
        let ep = BuiltinPatchMeta::for_kind("", "Endpoints");
        assert_eq!(look(&ep, "subsets"), FieldStrategy::Replace);
        let cs = BuiltinPatchMeta::for_kind("", "ComponentStatus");
        assert_eq!(look(&cs, "conditions"), merge("type"));
        let rc = BuiltinPatchMeta::for_kind("resource.k8s.io", "ResourceClaim");
        assert_eq!(look(&rc, "status.reservedFor"), merge("uid"));
    }

    #[test]
    fn unknown_paths_and_no_meta() {
        let m = BuiltinPatchMeta::for_kind("", "Pod");
        assert_eq!(look(&m, "spec.nope.containers"), FieldStrategy::Replace);
        assert_eq!(m.lookup(&[]), FieldStrategy::Replace);
        assert_eq!(
            NoPatchMeta.lookup(&["spec", "containers"]),
            FieldStrategy::Replace
        );
        assert_eq!(
            NoPatchMeta.lookup(&["metadata", "finalizers"]),
            FieldStrategy::Replace
        );
    }
}
