//! The catalogue of built-in API resources served by a Kubernetes 1.35 kube-apiserver with
//! default settings: every GA API, plus the beta APIs enabled by default (in 1.35 there are
//! none left: since KEP-3136 new beta APIs are off by default and the last legacy default-on
//! betas, `flowcontrol.apiserver.k8s.io/v1beta3`, were removed in 1.32), and no alpha API.
//!
//! The data is what discovery (`/api`, `/api/v1`, `/apis`, `/apis/<group>/<version>` and the
//! aggregated `apidiscovery.k8s.io/v2` documents) reports, so that `kubectl api-resources` and
//! `kubectl api-versions` print exactly what they print against a real 1.35 server.
//!
//! Conventions that hold for every entry (and are checked by the tests):
//! * verbs are sorted alphabetically, as kube-apiserver's installer sorts them;
//! * within a group, resources are listed in alphabetical order (the order discovery uses);
//! * subresources are listed in alphabetical order of their names;
//! * `versions[0]` is the preferred version of the resource's group.
//!
//! Sources: the kube-apiserver discovery fixtures in `kubernetes/kubernetes` `api/discovery/`
//! (generated with every API enabled, so beta/alpha versions were filtered out by hand), the
//! group priorities in `pkg/controlplane/apiserver/aggregator.go` and
//! `cmd/kube-apiserver/app/aggregator.go`, `pkg/controlplane/instance.go`
//! (`DefaultAPIResourceConfigSource`), `staging/.../server/storage/resource_encoding_config.go`
//! (`emulatedStorageVersion`) and real `kubectl api-resources` / `GET /api/v1` dumps from 1.33+
//! clusters. Decisions that could not be confirmed against a 1.35 tree are marked `UNCERTAIN`.

/// A subresource of a built-in resource, as listed by discovery (`pods/log`, `deployments/scale`…).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subresource {
    /// The subresource name, the part after the slash: `"status"`, `"scale"`, `"log"`, …
    pub name: &'static str,
    /// The kind of the object the subresource accepts or returns (`"Scale"`, `"Pod"`, …).
    pub kind: &'static str,
    /// The group of `kind`; `""` means the same group as the parent resource.
    pub group: &'static str,
    /// The version of `kind`; `""` means the same version as the parent resource.
    pub version: &'static str,
    /// The verbs discovery lists for the subresource, in kube-apiserver's (alphabetical) order.
    pub verbs: &'static [&'static str],
}

/// One built-in resource of one API group, with every version of the group that serves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinResource {
    /// The API group; `""` for the core group served at `/api`.
    pub group: &'static str,
    /// The versions that serve this resource, the group's preferred version first
    /// (e.g. autoscaling: `["v2", "v1"]`).
    pub versions: &'static [&'static str],
    /// The version kube-apiserver 1.35 encodes the resource in when it writes it to storage.
    /// For resources that are never persisted (reviews, `bindings`, `componentstatuses`) this is
    /// simply the version they are served at; see [`BuiltinResource::is_persisted`].
    pub storage_version: &'static str,
    /// The plural resource name used in URLs, e.g. `"deployments"`.
    pub resource: &'static str,
    /// The singular name, e.g. `"deployment"`.
    pub singular: &'static str,
    /// The kind of the objects, e.g. `"Deployment"`.
    pub kind: &'static str,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// The short names discovery lists, e.g. `["deploy"]`.
    pub short_names: &'static [&'static str],
    /// The categories discovery lists, e.g. `["all"]` or `["api-extensions"]`.
    pub categories: &'static [&'static str],
    /// The verbs discovery lists, exactly as kube-apiserver lists them (alphabetical order).
    pub verbs: &'static [&'static str],
    /// The subresources discovery lists, in alphabetical order of their names.
    pub subresources: &'static [Subresource],
}

impl BuiltinResource {
    /// The version discovery prefers for this resource's group (`versions[0]`).
    pub fn preferred_version(&self) -> &'static str {
        self.versions.first().copied().unwrap_or("")
    }

    /// Whether `version` serves this resource.
    pub fn serves(&self, version: &str) -> bool {
        self.versions.contains(&version)
    }

    /// Whether discovery lists `verb` for the resource itself.
    pub fn supports(&self, verb: &str) -> bool {
        self.verbs.contains(&verb)
    }

    /// The subresource called `name` (`"status"`, `"scale"`, …), if discovery lists one.
    pub fn subresource(&self, name: &str) -> Option<&'static Subresource> {
        self.subresources.iter().find(|s| s.name == name)
    }

    /// Whether kube-apiserver keeps objects of this resource in storage. The create-only
    /// reviews and `bindings`, and the computed `componentstatuses`, are virtual: they have no
    /// `watch` verb, which every persisted built-in resource has.
    pub fn is_persisted(&self) -> bool {
        self.supports("watch")
    }
}

// ---------------------------------------------------------------------------------------------
// Verb sets (kube-apiserver sorts verbs alphabetically before publishing them).

/// The full verb set of an ordinary persisted resource.
const CRUD: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
/// `namespaces` has no `deletecollection`.
const CRUD_NO_DELETECOLLECTION: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];
const CREATE: &[&str] = &["create"];
const CREATE_GET: &[&str] = &["create", "get"];
const GET: &[&str] = &["get"];
const GET_LIST: &[&str] = &["get", "list"];
const GET_PATCH_UPDATE: &[&str] = &["get", "patch", "update"];
const UPDATE: &[&str] = &["update"];
/// The verbs of the `proxy` subresources (nodes, pods, services).
const PROXY: &[&str] = &["create", "delete", "get", "patch", "update"];

const V1: &[&str] = &["v1"];
const ALL: &[&str] = &["all"];
const API_EXTENSIONS: &[&str] = &["api-extensions"];
const NONE: &[&str] = &[];
const NO_SUBRESOURCES: &[Subresource] = &[];

/// A `status` subresource returning the parent's own kind.
const fn status(kind: &'static str) -> Subresource {
    Subresource {
        name: "status",
        kind,
        group: "",
        version: "",
        verbs: GET_PATCH_UPDATE,
    }
}

/// A `scale` subresource returning `autoscaling/v1` `Scale`.
const fn scale() -> Subresource {
    Subresource {
        name: "scale",
        kind: "Scale",
        group: "autoscaling",
        version: "v1",
        verbs: GET_PATCH_UPDATE,
    }
}

/// A subresource in the parent's group and version.
const fn sub(
    name: &'static str,
    kind: &'static str,
    verbs: &'static [&'static str],
) -> Subresource {
    Subresource {
        name,
        kind,
        group: "",
        version: "",
        verbs,
    }
}

/// An ordinary persisted resource served at `v1` and stored as `v1`, with full verbs.
#[allow(clippy::too_many_arguments)]
const fn v1(
    group: &'static str,
    resource: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    subresources: &'static [Subresource],
) -> BuiltinResource {
    BuiltinResource {
        group,
        versions: V1,
        storage_version: "v1",
        resource,
        singular,
        kind,
        namespaced,
        short_names,
        categories,
        verbs: CRUD,
        subresources,
    }
}

/// A virtual, create-only resource served at `v1` (the reviews, `bindings`).
const fn create_only(
    group: &'static str,
    resource: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
) -> BuiltinResource {
    BuiltinResource {
        group,
        versions: V1,
        // Never persisted; the version it is served at.
        storage_version: "v1",
        resource,
        singular,
        kind,
        namespaced,
        short_names: NONE,
        categories: NONE,
        verbs: CREATE,
        subresources: NO_SUBRESOURCES,
    }
}

// ---------------------------------------------------------------------------------------------
// Groups.

/// Every API group kube-apiserver 1.35 serves by default, with its served versions (preferred
/// first), in discovery order: the core group `""` (served at `/api`) first, then the groups of
/// `/apis` in the order kube-apiserver lists them there.
///
/// The `/apis` order comes from the aggregator: `apiregistration.k8s.io` (its own group) first,
/// then the APIService group priorities of `apiVersionPriorities` (higher first: apps 17800,
/// events 17750, authentication 17700, authorization 17600, autoscaling 17500, batch 17400,
/// certificates 17300, networking 17200, policy 17100, rbac 17000, storage 16800,
/// admissionregistration and apiextensions 16700, scheduling 16600, coordination 16500,
/// node 16300, discovery and resource 16200, flowcontrol 16100), ties broken by name.
/// Versions within a group follow the version priorities (autoscaling v2 = 30 before v1 = 15).
///
/// Not listed because they are beta (off by default since KEP-3136) or alpha in 1.35:
/// `admissionregistration.k8s.io/v1beta1` (MutatingAdmissionPolicy, ValidatingAdmissionPolicy),
/// `admissionregistration.k8s.io/v1alpha1`, `authentication.k8s.io/v1beta1` and `/v1alpha1`,
/// `certificates.k8s.io/v1beta1` (ClusterTrustBundle, PodCertificateRequest) and `/v1alpha1`,
/// `coordination.k8s.io/v1beta1` and `/v1alpha2` (LeaseCandidate), `networking.k8s.io/v1beta1`,
/// `resource.k8s.io/v1beta1`, `/v1beta2` and `/v1alpha3`, `storage.k8s.io/v1beta1` and
/// `/v1alpha1`, `scheduling.k8s.io/v1alpha1` (Workload), `storagemigration.k8s.io/v1beta1`,
/// `internal.apiserver.k8s.io/v1alpha1` (StorageVersion), `node.k8s.io` and `policy` betas
/// long removed.
pub static GROUPS: &[(&str, &[&str])] = &[
    ("", V1),
    ("apiregistration.k8s.io", V1),
    ("apps", V1),
    ("events.k8s.io", V1),
    ("authentication.k8s.io", V1),
    ("authorization.k8s.io", V1),
    ("autoscaling", &["v2", "v1"]),
    ("batch", V1),
    ("certificates.k8s.io", V1),
    ("networking.k8s.io", V1),
    ("policy", V1),
    ("rbac.authorization.k8s.io", V1),
    ("storage.k8s.io", V1),
    ("admissionregistration.k8s.io", V1),
    ("apiextensions.k8s.io", V1),
    ("scheduling.k8s.io", V1),
    ("coordination.k8s.io", V1),
    ("node.k8s.io", V1),
    ("discovery.k8s.io", V1),
    // resource.k8s.io and discovery.k8s.io share group priority 16200; the aggregator breaks the
    // tie by name ("v1.discovery.k8s.io" < "v1.resource.k8s.io"), so discovery comes first.
    ("resource.k8s.io", V1),
    ("flowcontrol.apiserver.k8s.io", V1),
];

/// Each served group with its served versions, preferred first, in discovery order: the core
/// group `""` (served at `/api`, not `/apis`) first, then the `/apis` groups in the order
/// kube-apiserver lists them. See [`GROUPS`].
pub fn groups() -> Vec<(&'static str, Vec<&'static str>)> {
    GROUPS.iter().map(|(g, vs)| (*g, vs.to_vec())).collect()
}

/// The served versions of `group`, preferred first, or `None` if the group is not served.
pub fn group_versions(group: &str) -> Option<&'static [&'static str]> {
    GROUPS.iter().find(|(g, _)| *g == group).map(|(_, vs)| *vs)
}

/// The built-in resource `resource` (plural) of `group` (`""` for core).
pub fn find(group: &str, resource: &str) -> Option<&'static BuiltinResource> {
    BUILTIN_RESOURCES
        .iter()
        .find(|r| r.group == group && r.resource == resource)
}

/// The built-in resource of `group` whose objects are of kind `kind`.
pub fn find_by_kind(group: &str, kind: &str) -> Option<&'static BuiltinResource> {
    BUILTIN_RESOURCES
        .iter()
        .find(|r| r.group == group && r.kind == kind)
}

/// The resources served at `group`/`version`, in discovery order.
pub fn resources_for<'a>(
    group: &'a str,
    version: &'a str,
) -> impl Iterator<Item = &'static BuiltinResource> + 'a {
    BUILTIN_RESOURCES
        .iter()
        .filter(move |r| r.group == group && r.serves(version))
}

// ---------------------------------------------------------------------------------------------
// Resources, grouped by API group in the order of GROUPS, alphabetical within a group.

/// Every built-in resource kube-apiserver 1.35 serves with default settings, one entry per
/// (group, resource), grouped in the order of [`GROUPS`] and alphabetical within a group.
pub static BUILTIN_RESOURCES: &[BuiltinResource] = &[
    // ---- core (/api/v1) -----------------------------------------------------------------
    create_only("", "bindings", "binding", "Binding", true),
    BuiltinResource {
        group: "",
        versions: V1,
        // Computed on every request, never persisted.
        storage_version: "v1",
        resource: "componentstatuses",
        singular: "componentstatus",
        kind: "ComponentStatus",
        namespaced: false,
        short_names: &["cs"],
        categories: NONE,
        verbs: GET_LIST,
        subresources: NO_SUBRESOURCES,
    },
    v1(
        "",
        "configmaps",
        "configmap",
        "ConfigMap",
        true,
        &["cm"],
        NONE,
        NO_SUBRESOURCES,
    ),
    // The singular of "endpoints" is "endpoints".
    v1(
        "",
        "endpoints",
        "endpoints",
        "Endpoints",
        true,
        &["ep"],
        NONE,
        NO_SUBRESOURCES,
    ),
    v1(
        "",
        "events",
        "event",
        "Event",
        true,
        &["ev"],
        NONE,
        NO_SUBRESOURCES,
    ),
    v1(
        "",
        "limitranges",
        "limitrange",
        "LimitRange",
        true,
        &["limits"],
        NONE,
        NO_SUBRESOURCES,
    ),
    BuiltinResource {
        group: "",
        versions: V1,
        storage_version: "v1",
        resource: "namespaces",
        singular: "namespace",
        kind: "Namespace",
        namespaced: false,
        short_names: &["ns"],
        categories: NONE,
        verbs: CRUD_NO_DELETECOLLECTION,
        subresources: &[sub("finalize", "Namespace", UPDATE), status("Namespace")],
    },
    v1(
        "",
        "nodes",
        "node",
        "Node",
        false,
        &["no"],
        NONE,
        &[sub("proxy", "NodeProxyOptions", PROXY), status("Node")],
    ),
    v1(
        "",
        "persistentvolumeclaims",
        "persistentvolumeclaim",
        "PersistentVolumeClaim",
        true,
        &["pvc"],
        NONE,
        &[status("PersistentVolumeClaim")],
    ),
    v1(
        "",
        "persistentvolumes",
        "persistentvolume",
        "PersistentVolume",
        false,
        &["pv"],
        NONE,
        &[status("PersistentVolume")],
    ),
    v1(
        "",
        "pods",
        "pod",
        "Pod",
        true,
        &["po"],
        ALL,
        &[
            sub("attach", "PodAttachOptions", CREATE_GET),
            sub("binding", "Binding", CREATE),
            sub("ephemeralcontainers", "Pod", GET_PATCH_UPDATE),
            Subresource {
                name: "eviction",
                kind: "Eviction",
                group: "policy",
                version: "v1",
                verbs: CREATE,
            },
            sub("exec", "PodExecOptions", CREATE_GET),
            sub("log", "Pod", GET),
            sub("portforward", "PodPortForwardOptions", CREATE_GET),
            sub("proxy", "PodProxyOptions", PROXY),
            // Registered only while the InPlacePodVerticalScaling gate is on: beta (on) since
            // 1.33, GA in 1.35. The api/discovery fixtures in the indexed tree lack it, but live
            // 1.33+ `GET /api/v1` dumps list it between proxy and status with these verbs.
            sub("resize", "Pod", GET_PATCH_UPDATE),
            status("Pod"),
        ],
    ),
    v1(
        "",
        "podtemplates",
        "podtemplate",
        "PodTemplate",
        true,
        NONE,
        NONE,
        NO_SUBRESOURCES,
    ),
    v1(
        "",
        "replicationcontrollers",
        "replicationcontroller",
        "ReplicationController",
        true,
        &["rc"],
        ALL,
        &[scale(), status("ReplicationController")],
    ),
    v1(
        "",
        "resourcequotas",
        "resourcequota",
        "ResourceQuota",
        true,
        &["quota"],
        NONE,
        &[status("ResourceQuota")],
    ),
    v1(
        "",
        "secrets",
        "secret",
        "Secret",
        true,
        NONE,
        NONE,
        NO_SUBRESOURCES,
    ),
    v1(
        "",
        "serviceaccounts",
        "serviceaccount",
        "ServiceAccount",
        true,
        &["sa"],
        NONE,
        &[Subresource {
            name: "token",
            kind: "TokenRequest",
            group: "authentication.k8s.io",
            version: "v1",
            verbs: CREATE,
        }],
    ),
    v1(
        "",
        "services",
        "service",
        "Service",
        true,
        &["svc"],
        ALL,
        &[
            sub("proxy", "ServiceProxyOptions", PROXY),
            status("Service"),
        ],
    ),
    // ---- apiregistration.k8s.io ---------------------------------------------------------
    v1(
        "apiregistration.k8s.io",
        "apiservices",
        "apiservice",
        "APIService",
        false,
        NONE,
        API_EXTENSIONS,
        &[status("APIService")],
    ),
    // ---- apps -----------------------------------------------------------------------------
    v1(
        "apps",
        "controllerrevisions",
        "controllerrevision",
        "ControllerRevision",
        true,
        NONE,
        NONE,
        NO_SUBRESOURCES,
    ),
    v1(
        "apps",
        "daemonsets",
        "daemonset",
        "DaemonSet",
        true,
        &["ds"],
        ALL,
        &[status("DaemonSet")],
    ),
    v1(
        "apps",
        "deployments",
        "deployment",
        "Deployment",
        true,
        &["deploy"],
        ALL,
        &[scale(), status("Deployment")],
    ),
    v1(
        "apps",
        "replicasets",
        "replicaset",
        "ReplicaSet",
        true,
        &["rs"],
        ALL,
        &[scale(), status("ReplicaSet")],
    ),
    v1(
        "apps",
        "statefulsets",
        "statefulset",
        "StatefulSet",
        true,
        &["sts"],
        ALL,
        &[scale(), status("StatefulSet")],
    ),
    // ---- events.k8s.io --------------------------------------------------------------------
    // Cohabits with core events: kube-apiserver stores events.k8s.io/v1 Events in the same
    // etcd keys as core events, encoded as core `v1` `Event` (test/integration/etcd/data.go:
    // ExpectedGVK ("", "v1", "Event")). `storage_version` says "v1" for that reason. The short
    // name "ev" is shared with core events, as in kube-apiserver.
    v1(
        "events.k8s.io",
        "events",
        "event",
        "Event",
        true,
        &["ev"],
        NONE,
        NO_SUBRESOURCES,
    ),
    // ---- authentication.k8s.io ------------------------------------------------------------
    // v1beta1 (selfsubjectreviews) is beta and off by default; v1alpha1 is alpha.
    create_only(
        "authentication.k8s.io",
        "selfsubjectreviews",
        "selfsubjectreview",
        "SelfSubjectReview",
        false,
    ),
    create_only(
        "authentication.k8s.io",
        "tokenreviews",
        "tokenreview",
        "TokenReview",
        false,
    ),
    // ---- authorization.k8s.io -------------------------------------------------------------
    create_only(
        "authorization.k8s.io",
        "localsubjectaccessreviews",
        "localsubjectaccessreview",
        "LocalSubjectAccessReview",
        true,
    ),
    create_only(
        "authorization.k8s.io",
        "selfsubjectaccessreviews",
        "selfsubjectaccessreview",
        "SelfSubjectAccessReview",
        false,
    ),
    create_only(
        "authorization.k8s.io",
        "selfsubjectrulesreviews",
        "selfsubjectrulesreview",
        "SelfSubjectRulesReview",
        false,
    ),
    create_only(
        "authorization.k8s.io",
        "subjectaccessreviews",
        "subjectaccessreview",
        "SubjectAccessReview",
        false,
    ),
    // ---- autoscaling ----------------------------------------------------------------------
    // Served at v2 (preferred, version priority 30) and v1 (15); stored as v2
    // (test/integration/etcd/data.go expects autoscaling/v2 for objects created through v1).
    BuiltinResource {
        group: "autoscaling",
        versions: &["v2", "v1"],
        storage_version: "v2",
        resource: "horizontalpodautoscalers",
        singular: "horizontalpodautoscaler",
        kind: "HorizontalPodAutoscaler",
        namespaced: true,
        short_names: &["hpa"],
        categories: ALL,
        verbs: CRUD,
        subresources: &[status("HorizontalPodAutoscaler")],
    },
    // ---- batch ----------------------------------------------------------------------------
    v1(
        "batch",
        "cronjobs",
        "cronjob",
        "CronJob",
        true,
        &["cj"],
        ALL,
        &[status("CronJob")],
    ),
    v1(
        "batch",
        "jobs",
        "job",
        "Job",
        true,
        NONE,
        ALL,
        &[status("Job")],
    ),
    // ---- certificates.k8s.io --------------------------------------------------------------
    // clustertrustbundles (v1beta1 since 1.33) and podcertificaterequests (v1beta1 in 1.35) are
    // beta and off by default. UNCERTAIN: ClusterTrustBundle was not found promoted to v1 in
    // 1.35 in any source consulted; it is left out.
    v1(
        "certificates.k8s.io",
        "certificatesigningrequests",
        "certificatesigningrequest",
        "CertificateSigningRequest",
        false,
        &["csr"],
        NONE,
        &[
            sub("approval", "CertificateSigningRequest", GET_PATCH_UPDATE),
            status("CertificateSigningRequest"),
        ],
    ),
    // ---- networking.k8s.io ----------------------------------------------------------------
    v1(
        "networking.k8s.io",
        "ingressclasses",
        "ingressclass",
        "IngressClass",
        false,
        NONE,
        NONE,
        NO_SUBRESOURCES,
    ),
    v1(
        "networking.k8s.io",
        "ingresses",
        "ingress",
        "Ingress",
        true,
        &["ing"],
        NONE,
        &[status("Ingress")],
    ),
    // GA (v1) since 1.33; v1beta1 is off by default. Stored as v1: v1 was introduced in 1.33,
    // before 1.35's MinCompatibilityVersion (1.34).
    v1(
        "networking.k8s.io",
        "ipaddresses",
        "ipaddress",
        "IPAddress",
        false,
        &["ip"],
        NONE,
        NO_SUBRESOURCES,
    ),
    // No status subresource: NetworkPolicyStatus was removed in 1.27.
    v1(
        "networking.k8s.io",
        "networkpolicies",
        "networkpolicy",
        "NetworkPolicy",
        true,
        &["netpol"],
        NONE,
        NO_SUBRESOURCES,
    ),
    // GA (v1) since 1.33, no short name; stored as v1 (see ipaddresses).
    v1(
        "networking.k8s.io",
        "servicecidrs",
        "servicecidr",
        "ServiceCIDR",
        false,
        NONE,
        NONE,
        &[status("ServiceCIDR")],
    ),
    // ---- policy ---------------------------------------------------------------------------
    v1(
        "policy",
        "poddisruptionbudgets",
        "poddisruptionbudget",
        "PodDisruptionBudget",
        true,
        &["pdb"],
        NONE,
        &[status("PodDisruptionBudget")],
    ),
    // ---- rbac.authorization.k8s.io --------------------------------------------------------
    v1(
        "rbac.authorization.k8s.io",
        "clusterrolebindings",
        "clusterrolebinding",
        "ClusterRoleBinding",
        false,
        NONE,
        NONE,
        NO_SUBRESOURCES,
    ),
    v1(
        "rbac.authorization.k8s.io",
        "clusterroles",
        "clusterrole",
        "ClusterRole",
        false,
        NONE,
        NONE,
        NO_SUBRESOURCES,
    ),
    v1(
        "rbac.authorization.k8s.io",
        "rolebindings",
        "rolebinding",
        "RoleBinding",
        true,
        NONE,
        NONE,
        NO_SUBRESOURCES,
    ),
    v1(
        "rbac.authorization.k8s.io",
        "roles",
        "role",
        "Role",
        true,
        NONE,
        NONE,
        NO_SUBRESOURCES,
    ),
    // ---- storage.k8s.io -------------------------------------------------------------------
    v1(
        "storage.k8s.io",
        "csidrivers",
        "csidriver",
        "CSIDriver",
        false,
        NONE,
        NONE,
        NO_SUBRESOURCES,
    ),
    v1(
        "storage.k8s.io",
        "csinodes",
        "csinode",
        "CSINode",
        false,
        NONE,
        NONE,
        NO_SUBRESOURCES,
    ),
    v1(
        "storage.k8s.io",
        "csistoragecapacities",
        "csistoragecapacity",
        "CSIStorageCapacity",
        true,
        NONE,
        NONE,
        NO_SUBRESOURCES,
    ),
    v1(
        "storage.k8s.io",
        "storageclasses",
        "storageclass",
        "StorageClass",
        false,
        &["sc"],
        NONE,
        NO_SUBRESOURCES,
    ),
    v1(
        "storage.k8s.io",
        "volumeattachments",
        "volumeattachment",
        "VolumeAttachment",
        false,
        NONE,
        NONE,
        &[status("VolumeAttachment")],
    ),
    // GA (v1) in 1.34; v1beta1 is off by default. Stored as v1 in 1.35: emulatedStorageVersion
    // picks the highest-priority non-alpha version introduced by MinCompatibilityVersion (1.34),
    // which is v1 (in 1.34 itself it was still v1beta1).
    v1(
        "storage.k8s.io",
        "volumeattributesclasses",
        "volumeattributesclass",
        "VolumeAttributesClass",
        false,
        &["vac"],
        NONE,
        NO_SUBRESOURCES,
    ),
    // ---- admissionregistration.k8s.io -----------------------------------------------------
    // MutatingAdmissionPolicy(Binding) is v1beta1 in 1.35 (off by default; v1 arrives in 1.36)
    // and v1alpha1; ValidatingAdmissionPolicy's v1beta1 is off by default too.
    v1(
        "admissionregistration.k8s.io",
        "mutatingwebhookconfigurations",
        "mutatingwebhookconfiguration",
        "MutatingWebhookConfiguration",
        false,
        NONE,
        API_EXTENSIONS,
        NO_SUBRESOURCES,
    ),
    v1(
        "admissionregistration.k8s.io",
        "validatingadmissionpolicies",
        "validatingadmissionpolicy",
        "ValidatingAdmissionPolicy",
        false,
        NONE,
        API_EXTENSIONS,
        &[status("ValidatingAdmissionPolicy")],
    ),
    v1(
        "admissionregistration.k8s.io",
        "validatingadmissionpolicybindings",
        "validatingadmissionpolicybinding",
        "ValidatingAdmissionPolicyBinding",
        false,
        NONE,
        API_EXTENSIONS,
        NO_SUBRESOURCES,
    ),
    v1(
        "admissionregistration.k8s.io",
        "validatingwebhookconfigurations",
        "validatingwebhookconfiguration",
        "ValidatingWebhookConfiguration",
        false,
        NONE,
        API_EXTENSIONS,
        NO_SUBRESOURCES,
    ),
    // ---- apiextensions.k8s.io -------------------------------------------------------------
    v1(
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        "customresourcedefinition",
        "CustomResourceDefinition",
        false,
        &["crd", "crds"],
        API_EXTENSIONS,
        &[status("CustomResourceDefinition")],
    ),
    // ---- scheduling.k8s.io ----------------------------------------------------------------
    // v1alpha1 (Workload, new in 1.35) is alpha.
    v1(
        "scheduling.k8s.io",
        "priorityclasses",
        "priorityclass",
        "PriorityClass",
        false,
        &["pc"],
        NONE,
        NO_SUBRESOURCES,
    ),
    // ---- coordination.k8s.io --------------------------------------------------------------
    // leasecandidates is v1beta1 (since 1.33, off by default) and v1alpha2.
    v1(
        "coordination.k8s.io",
        "leases",
        "lease",
        "Lease",
        true,
        NONE,
        NONE,
        NO_SUBRESOURCES,
    ),
    // ---- node.k8s.io ----------------------------------------------------------------------
    v1(
        "node.k8s.io",
        "runtimeclasses",
        "runtimeclass",
        "RuntimeClass",
        false,
        NONE,
        NONE,
        NO_SUBRESOURCES,
    ),
    // ---- discovery.k8s.io -----------------------------------------------------------------
    v1(
        "discovery.k8s.io",
        "endpointslices",
        "endpointslice",
        "EndpointSlice",
        true,
        NONE,
        NONE,
        NO_SUBRESOURCES,
    ),
    // ---- resource.k8s.io (DRA) ------------------------------------------------------------
    // GA (v1) in 1.34 and enabled by default; v1beta1 and v1beta2 stay off by default (beta),
    // devicetaintrules is not in v1. Stored as v1 in 1.35 (v1 introduced in 1.34 =
    // MinCompatibilityVersion; in 1.34 itself storage was still v1beta2). No short names.
    v1(
        "resource.k8s.io",
        "deviceclasses",
        "deviceclass",
        "DeviceClass",
        false,
        NONE,
        NONE,
        NO_SUBRESOURCES,
    ),
    v1(
        "resource.k8s.io",
        "resourceclaims",
        "resourceclaim",
        "ResourceClaim",
        true,
        NONE,
        NONE,
        &[status("ResourceClaim")],
    ),
    v1(
        "resource.k8s.io",
        "resourceclaimtemplates",
        "resourceclaimtemplate",
        "ResourceClaimTemplate",
        true,
        NONE,
        NONE,
        NO_SUBRESOURCES,
    ),
    v1(
        "resource.k8s.io",
        "resourceslices",
        "resourceslice",
        "ResourceSlice",
        false,
        NONE,
        NONE,
        NO_SUBRESOURCES,
    ),
    // ---- flowcontrol.apiserver.k8s.io -----------------------------------------------------
    // Only v1 since 1.32 (v1beta3, the last default-on legacy beta, was removed).
    v1(
        "flowcontrol.apiserver.k8s.io",
        "flowschemas",
        "flowschema",
        "FlowSchema",
        false,
        NONE,
        NONE,
        &[status("FlowSchema")],
    ),
    v1(
        "flowcontrol.apiserver.k8s.io",
        "prioritylevelconfigurations",
        "prioritylevelconfiguration",
        "PriorityLevelConfiguration",
        false,
        NONE,
        NONE,
        &[status("PriorityLevelConfiguration")],
    ),
];

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    #[test]
    fn no_duplicate_group_resource() {
        let mut seen = BTreeSet::new();
        for r in BUILTIN_RESOURCES {
            assert!(
                seen.insert((r.group, r.resource)),
                "duplicate {}/{}",
                r.group,
                r.resource
            );
        }
    }

    #[test]
    fn no_duplicate_group_kind() {
        let mut seen = BTreeSet::new();
        for r in BUILTIN_RESOURCES {
            assert!(
                seen.insert((r.group, r.kind)),
                "duplicate kind {}/{}",
                r.group,
                r.kind
            );
        }
    }

    /// Every short name designates one resource. The only short name used twice is "ev", which
    /// kube-apiserver gives to `events` in both the core group and events.k8s.io: the same
    /// plural, so kubectl resolves it to one resource name either way.
    #[test]
    fn short_names_are_unique() {
        let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
        let mut uses: BTreeMap<&str, usize> = BTreeMap::new();
        for r in BUILTIN_RESOURCES {
            for s in r.short_names {
                let prev = owner.insert(s, r.resource);
                assert!(
                    prev.is_none() || prev == Some(r.resource),
                    "short name {s} used by {} and {}",
                    prev.unwrap_or_default(),
                    r.resource
                );
                *uses.entry(s).or_default() += 1;
            }
        }
        let shared: Vec<_> = uses
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(s, _)| *s)
            .collect();
        assert_eq!(shared, vec!["ev"]);
        // No short name collides with a plural or singular of another resource.
        for r in BUILTIN_RESOURCES {
            for s in r.short_names {
                assert!(
                    !BUILTIN_RESOURCES
                        .iter()
                        .any(|o| o.resource != r.resource && (o.resource == *s || o.singular == *s)),
                    "short name {s} collides with a resource name"
                );
            }
        }
    }

    #[test]
    fn find_works() {
        let d = find("apps", "deployments").expect("deployments");
        assert_eq!(d.kind, "Deployment");
        assert_eq!(d.singular, "deployment");
        assert!(find("", "pods").is_some());
        assert!(find("apps", "pods").is_none());
        assert!(find("", "deployments").is_none());
        assert!(find("nope.example.com", "things").is_none());
        assert_eq!(
            find("events.k8s.io", "events").map(|r| r.group),
            Some("events.k8s.io")
        );
        assert_eq!(find("", "events").map(|r| r.group), Some(""));
        assert_eq!(
            find_by_kind("apps", "StatefulSet").map(|r| r.resource),
            Some("statefulsets")
        );
        let hpa = find("autoscaling", "horizontalpodautoscalers").expect("hpa");
        assert_eq!(hpa.versions, &["v2", "v1"]);
        assert_eq!(hpa.preferred_version(), "v2");
        assert_eq!(hpa.storage_version, "v2");
        assert_eq!(resources_for("autoscaling", "v1").count(), 1);
        assert_eq!(resources_for("apps", "v1").count(), 5);
        assert_eq!(resources_for("apps", "v1beta1").count(), 0);
    }

    #[test]
    fn pods() {
        let pods = find("", "pods").expect("pods");
        assert_eq!(pods.short_names, &["po"]);
        assert_eq!(pods.categories, &["all"]);
        assert!(pods.namespaced);
        assert_eq!(pods.verbs, CRUD);
        let names: Vec<_> = pods.subresources.iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            vec![
                "attach",
                "binding",
                "ephemeralcontainers",
                "eviction",
                "exec",
                "log",
                "portforward",
                "proxy",
                "resize",
                "status"
            ]
        );
        assert_eq!(pods.subresource("log").map(|s| s.verbs), Some(GET));
        assert_eq!(pods.subresource("status").map(|s| s.kind), Some("Pod"));
        let eviction = pods.subresource("eviction").expect("eviction");
        assert_eq!(
            (eviction.group, eviction.version, eviction.kind),
            ("policy", "v1", "Eviction")
        );
    }

    #[test]
    fn deployments_scale() {
        let d = find("apps", "deployments").expect("deployments");
        let s = d.subresource("scale").expect("scale");
        assert_eq!((s.kind, s.group, s.version), ("Scale", "autoscaling", "v1"));
        assert_eq!(s.verbs, &["get", "patch", "update"]);
        assert!(d.subresource("status").is_some());
    }

    #[test]
    fn storage_version_is_served() {
        for r in BUILTIN_RESOURCES {
            assert!(
                r.versions.contains(&r.storage_version),
                "{}/{} stores {} but serves {:?}",
                r.group,
                r.resource,
                r.storage_version,
                r.versions
            );
        }
    }

    #[test]
    fn no_alpha_or_beta_versions() {
        for (g, vs) in GROUPS {
            for v in *vs {
                assert!(!v.contains("alpha") && !v.contains("beta"), "{g}/{v}");
            }
        }
    }

    #[test]
    fn groups_match_resources() {
        let listed = groups();
        assert_eq!(listed.len(), GROUPS.len());
        assert_eq!(listed[0], ("", vec!["v1"]));
        assert_eq!(listed[1].0, "apiregistration.k8s.io");
        // Group names unique.
        let names: BTreeSet<_> = listed.iter().map(|(g, _)| *g).collect();
        assert_eq!(names.len(), listed.len());
        // Every group serves something, with exactly the union of its resources' versions, and
        // every resource's group is listed.
        for (g, vs) in &listed {
            let mut union = BTreeSet::new();
            for r in BUILTIN_RESOURCES.iter().filter(|r| r.group == *g) {
                assert_eq!(r.preferred_version(), vs[0], "{g}/{}", r.resource);
                union.extend(r.versions.iter().copied());
            }
            let mine: BTreeSet<_> = vs.iter().copied().collect();
            assert_eq!(union, mine, "group {g}");
            assert_eq!(group_versions(g), Some(&vs[..]));
        }
        for r in BUILTIN_RESOURCES {
            assert!(names.contains(r.group), "{} not in GROUPS", r.group);
        }
        assert_eq!(group_versions("storagemigration.k8s.io"), None);
    }

    #[test]
    fn resources_follow_group_order_and_sort_within_group() {
        let order: BTreeMap<&str, usize> = GROUPS
            .iter()
            .enumerate()
            .map(|(i, (g, _))| (*g, i))
            .collect();
        for pair in BUILTIN_RESOURCES.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            let (ia, ib) = (order[a.group], order[b.group]);
            assert!(
                ia < ib || (ia == ib && a.resource < b.resource),
                "{} before {}",
                a.resource,
                b.resource
            );
        }
    }

    #[test]
    fn verbs_and_subresources_sorted() {
        for r in BUILTIN_RESOURCES {
            assert!(
                r.verbs.windows(2).all(|w| w[0] < w[1]),
                "{} verbs",
                r.resource
            );
            assert!(
                r.subresources.windows(2).all(|w| w[0].name < w[1].name),
                "{} subresources",
                r.resource
            );
            for s in r.subresources {
                assert!(!s.verbs.is_empty());
                assert!(
                    s.verbs.windows(2).all(|w| w[0] < w[1]),
                    "{}/{} verbs",
                    r.resource,
                    s.name
                );
                assert!(
                    s.group.is_empty() == s.version.is_empty(),
                    "{}/{}",
                    r.resource,
                    s.name
                );
            }
            assert!(!r.singular.is_empty() && !r.kind.is_empty());
        }
    }

    #[test]
    fn virtual_resources() {
        let virtual_: BTreeSet<_> = BUILTIN_RESOURCES
            .iter()
            .filter(|r| !r.is_persisted())
            .map(|r| r.resource)
            .collect();
        let expected: BTreeSet<_> = [
            "bindings",
            "componentstatuses",
            "localsubjectaccessreviews",
            "selfsubjectaccessreviews",
            "selfsubjectreviews",
            "selfsubjectrulesreviews",
            "subjectaccessreviews",
            "tokenreviews",
        ]
        .into_iter()
        .collect();
        assert_eq!(virtual_, expected);
    }

    #[test]
    fn counts() {
        assert_eq!(GROUPS.len(), 21);
        assert_eq!(BUILTIN_RESOURCES.len(), 65);
        assert_eq!(resources_for("", "v1").count(), 17);
    }
}
