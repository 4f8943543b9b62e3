//! The column definitions of every printer, in kube-apiserver's order.
//!
//! Names, types, formats and priorities follow kube-apiserver 1.35; descriptions are our own
//! wording (clients do not show them).

use super::ColumnDefinition;

const fn col(
    name: &'static str,
    type_: &'static str,
    description: &'static str,
) -> ColumnDefinition {
    ColumnDefinition {
        name,
        type_,
        format: "",
        description,
        priority: 0,
    }
}

const fn wide(
    name: &'static str,
    type_: &'static str,
    description: &'static str,
) -> ColumnDefinition {
    ColumnDefinition {
        name,
        type_,
        format: "",
        description,
        priority: 1,
    }
}

const NAME_DESC: &str = "The object's name, unique among objects of its kind within a namespace \
(or within the cluster for cluster-scoped kinds). Set by the client or generated; it cannot be updated.";
const AGE_DESC: &str = "How long ago the object was created, from metadata.creationTimestamp.";

const NAME: ColumnDefinition = ColumnDefinition {
    name: "Name",
    type_: "string",
    format: "name",
    description: NAME_DESC,
    priority: 0,
};
/// A Name column without the "name" format (used by a few printers).
const PLAIN_NAME: ColumnDefinition = col("Name", "string", NAME_DESC);
const AGE: ColumnDefinition = col("Age", "string", AGE_DESC);

const W_CONTAINERS: ColumnDefinition = wide(
    "Containers",
    "string",
    "The container names of the pod template.",
);
const W_IMAGES: ColumnDefinition = wide(
    "Images",
    "string",
    "The container images of the pod template.",
);

pub(super) static DEFAULT: &[ColumnDefinition] = &[
    NAME,
    col(
        "Created At",
        "date",
        "When the object was created (metadata.creationTimestamp), in RFC 3339 form.",
    ),
];

pub(super) static POD: &[ColumnDefinition] = &[
    NAME,
    col(
        "Ready",
        "string",
        "Ready containers out of all containers of the pod.",
    ),
    col(
        "Status",
        "string",
        "A summary of the pod's phase and its containers' states.",
    ),
    col(
        "Restarts",
        "string",
        "How many times the pod's containers restarted, and how long ago the last one did.",
    ),
    AGE,
    wide("IP", "string", "The pod's primary IP address."),
    wide("Node", "string", "The node the pod is bound to."),
    wide(
        "Nominated Node",
        "string",
        "The node preemption nominated for the pod.",
    ),
    wide(
        "Readiness Gates",
        "string",
        "Readiness gate conditions that are true, out of all gates.",
    ),
];

pub(super) static POD_TEMPLATE: &[ColumnDefinition] = &[
    NAME,
    col(
        "Containers",
        "string",
        "The container names of the template.",
    ),
    col("Images", "string", "The container images of the template."),
    col("Pod Labels", "string", "The labels of the pod template."),
];

pub(super) static POD_DISRUPTION_BUDGET: &[ColumnDefinition] = &[
    NAME,
    col("Min Available", "string", "Pods that must stay available."),
    col("Max Unavailable", "string", "Pods that may be unavailable."),
    col(
        "Allowed Disruptions",
        "integer",
        "Pod disruptions allowed right now.",
    ),
    AGE,
];

pub(super) static REPLICATION_CONTROLLER: &[ColumnDefinition] = &[
    NAME,
    col("Desired", "integer", "The desired number of replicas."),
    col("Current", "integer", "The number of replicas that exist."),
    col("Ready", "integer", "The number of ready replicas."),
    AGE,
    W_CONTAINERS,
    W_IMAGES,
    wide("Selector", "string", "The label selector of the pods."),
];

pub(super) static DAEMON_SET: &[ColumnDefinition] = &[
    NAME,
    col(
        "Desired",
        "integer",
        "Nodes that should run the daemon pod.",
    ),
    col(
        "Current",
        "integer",
        "Nodes that run at least one daemon pod.",
    ),
    col("Ready", "integer", "Nodes whose daemon pod is ready."),
    col(
        "Up-to-date",
        "integer",
        "Nodes that run the updated daemon pod.",
    ),
    col(
        "Available",
        "integer",
        "Nodes whose daemon pod is available.",
    ),
    col(
        "Node Selector",
        "string",
        "The node selector of the pod template.",
    ),
    AGE,
    W_CONTAINERS,
    W_IMAGES,
    wide("Selector", "string", "The label selector of the pods."),
];

pub(super) static JOB: &[ColumnDefinition] = &[
    NAME,
    col("Status", "string", "The status of the job."),
    col(
        "Completions",
        "string",
        "Succeeded pods out of the completions wanted.",
    ),
    col(
        "Duration",
        "string",
        "How long the job ran, or has been running.",
    ),
    AGE,
    W_CONTAINERS,
    W_IMAGES,
    wide(
        "Selector",
        "string",
        "The label selector of the job's pods.",
    ),
];

pub(super) static CRON_JOB: &[ColumnDefinition] = &[
    NAME,
    col("Schedule", "string", "The schedule, in cron format."),
    col("Timezone", "string", "The time zone of the schedule."),
    col(
        "Suspend",
        "boolean",
        "Whether later executions are suspended.",
    ),
    col("Active", "integer", "The number of running jobs."),
    col(
        "Last Schedule",
        "string",
        "How long ago a job was last scheduled.",
    ),
    AGE,
    W_CONTAINERS,
    W_IMAGES,
    wide(
        "Selector",
        "string",
        "The label selector of the jobs' pods.",
    ),
];

pub(super) static SERVICE: &[ColumnDefinition] = &[
    NAME,
    col("Type", "string", "How the service is exposed."),
    col(
        "Cluster-IP",
        "string",
        "The cluster-internal IP of the service.",
    ),
    col(
        "External-IP",
        "string",
        "External addresses the service is reachable at.",
    ),
    col("Port(s)", "string", "The ports the service exposes."),
    AGE,
    wide(
        "Selector",
        "string",
        "The label selector of the backing pods.",
    ),
];

pub(super) static INGRESS: &[ColumnDefinition] = &[
    NAME,
    col(
        "Class",
        "string",
        "The IngressClass that handles this ingress.",
    ),
    col("Hosts", "string", "The hosts the ingress rules match."),
    col(
        "Address",
        "string",
        "The load-balancer addresses of the ingress.",
    ),
    col("Ports", "string", "The ports the ingress listens on."),
    AGE,
];

pub(super) static INGRESS_CLASS: &[ColumnDefinition] = &[
    NAME,
    col(
        "Controller",
        "string",
        "The controller that implements this class.",
    ),
    col(
        "Parameters",
        "string",
        "The resource holding the class's parameters.",
    ),
    AGE,
];

pub(super) static STATEFUL_SET: &[ColumnDefinition] = &[
    NAME,
    col(
        "Ready",
        "string",
        "Ready replicas out of the desired replicas.",
    ),
    AGE,
    W_CONTAINERS,
    W_IMAGES,
];

pub(super) static ENDPOINTS: &[ColumnDefinition] = &[
    NAME,
    col(
        "Endpoints",
        "string",
        "The addresses and ports of the endpoints.",
    ),
    AGE,
];

pub(super) static NODE: &[ColumnDefinition] = &[
    NAME,
    col("Status", "string", "The readiness of the node."),
    col("Roles", "string", "The roles of the node, from its labels."),
    AGE,
    col("Version", "string", "The kubelet version of the node."),
    wide("Internal-IP", "string", "The node's first internal IP."),
    wide("External-IP", "string", "The node's first external IP."),
    wide(
        "OS-Image",
        "string",
        "The operating system image of the node.",
    ),
    wide(
        "Kernel-Version",
        "string",
        "The kernel version of the node.",
    ),
    wide(
        "Container-Runtime",
        "string",
        "The container runtime and its version.",
    ),
];

pub(super) static EVENT: &[ColumnDefinition] = &[
    col(
        "Last Seen",
        "string",
        "How long ago the event was last seen.",
    ),
    col("Type", "string", "The type of the event (Normal, Warning)."),
    col("Reason", "string", "Why the event happened, in CamelCase."),
    col("Object", "string", "The object the event is about."),
    wide(
        "Subobject",
        "string",
        "The part of the object the event is about.",
    ),
    wide("Source", "string", "The component that reported the event."),
    col("Message", "string", "The event's message."),
    wide(
        "First Seen",
        "string",
        "How long ago the event was first seen.",
    ),
    wide("Count", "string", "How many times the event occurred."),
    ColumnDefinition {
        name: "Name",
        type_: "string",
        format: "name",
        description: NAME_DESC,
        priority: 1,
    },
];

pub(super) static NAMESPACE: &[ColumnDefinition] = &[
    NAME,
    col("Status", "string", "The phase of the namespace."),
    AGE,
];

pub(super) static SECRET: &[ColumnDefinition] = &[
    NAME,
    col("Type", "string", "The type of the secret."),
    col("Data", "string", "The number of data entries."),
    AGE,
];

pub(super) static SERVICE_ACCOUNT: &[ColumnDefinition] = &[NAME, AGE];

pub(super) static PERSISTENT_VOLUME: &[ColumnDefinition] = &[
    NAME,
    col("Capacity", "string", "The storage capacity of the volume."),
    col("Access Modes", "string", "How the volume can be mounted."),
    col(
        "Reclaim Policy",
        "string",
        "What happens to the volume when its claim is released.",
    ),
    col("Status", "string", "The phase of the volume."),
    col("Claim", "string", "The claim bound to the volume."),
    col("StorageClass", "string", "The storage class of the volume."),
    col(
        "VolumeAttributesClass",
        "string",
        "The volume attributes class of the volume.",
    ),
    col("Reason", "string", "Why the volume is in its phase."),
    AGE,
    wide(
        "VolumeMode",
        "string",
        "Whether the volume is a filesystem or a block device.",
    ),
];

pub(super) static PERSISTENT_VOLUME_CLAIM: &[ColumnDefinition] = &[
    NAME,
    col("Status", "string", "The phase of the claim."),
    col("Volume", "string", "The volume bound to the claim."),
    col("Capacity", "string", "The capacity of the bound volume."),
    col(
        "Access Modes",
        "string",
        "The access modes of the bound volume.",
    ),
    col("StorageClass", "string", "The storage class of the claim."),
    col(
        "VolumeAttributesClass",
        "string",
        "The volume attributes class of the claim.",
    ),
    AGE,
    wide(
        "VolumeMode",
        "string",
        "Whether the claim wants a filesystem or a block device.",
    ),
];

pub(super) static COMPONENT_STATUS: &[ColumnDefinition] = &[
    NAME,
    col("Status", "string", "Whether the component is healthy."),
    col(
        "Message",
        "string",
        "The message of the component's health condition.",
    ),
    col(
        "Error",
        "string",
        "The error of the component's health condition.",
    ),
];

pub(super) static DEPLOYMENT: &[ColumnDefinition] = &[
    NAME,
    col(
        "Ready",
        "string",
        "Ready replicas out of the desired replicas.",
    ),
    col(
        "Up-to-date",
        "string",
        "Replicas running the latest pod template.",
    ),
    col("Available", "string", "Replicas available to serve."),
    AGE,
    W_CONTAINERS,
    W_IMAGES,
    wide("Selector", "string", "The label selector of the pods."),
];

pub(super) static HORIZONTAL_POD_AUTOSCALER: &[ColumnDefinition] = &[
    NAME,
    col("Reference", "string", "The scaled resource."),
    col(
        "Targets",
        "string",
        "Current and target values of the metrics.",
    ),
    col("MinPods", "string", "The lower limit of replicas."),
    col("MaxPods", "string", "The upper limit of replicas."),
    col("Replicas", "string", "The current number of replicas."),
    AGE,
];

pub(super) static CONFIG_MAP: &[ColumnDefinition] = &[
    NAME,
    col(
        "Data",
        "string",
        "The number of data and binary data entries.",
    ),
    AGE,
];

pub(super) static NETWORK_POLICY: &[ColumnDefinition] = &[
    NAME,
    col("Pod-Selector", "string", "The pods the policy applies to."),
    AGE,
];

pub(super) static ROLE_BINDING: &[ColumnDefinition] = &[
    NAME,
    col("Role", "string", "The role the binding grants."),
    AGE,
    wide("Users", "string", "The users of the binding."),
    wide("Groups", "string", "The groups of the binding."),
    wide(
        "ServiceAccounts",
        "string",
        "The service accounts of the binding.",
    ),
];

pub(super) static CERTIFICATE_SIGNING_REQUEST: &[ColumnDefinition] = &[
    NAME,
    AGE,
    col(
        "SignerName",
        "string",
        "The signer the request is addressed to.",
    ),
    col("Requestor", "string", "The user that created the request."),
    col(
        "RequestedDuration",
        "string",
        "The requested validity of the certificate.",
    ),
    col(
        "Condition",
        "string",
        "Approval and issuance state of the request.",
    ),
];

pub(super) static CLUSTER_TRUST_BUNDLE: &[ColumnDefinition] = &[
    NAME,
    col("SignerName", "string", "The signer the bundle belongs to."),
];

pub(super) static POD_CERTIFICATE_REQUEST: &[ColumnDefinition] = &[
    NAME,
    col("PodName", "string", "The pod the certificate is for."),
    col(
        "ServiceAccountName",
        "string",
        "The service account of the pod.",
    ),
    col("NodeName", "string", "The node the pod runs on."),
    col(
        "SignerName",
        "string",
        "The signer the request is addressed to.",
    ),
    col(
        "State",
        "string",
        "Whether the request is Pending, Issued, Denied or Failed.",
    ),
];

pub(super) static LEASE: &[ColumnDefinition] = &[
    NAME,
    col("Holder", "string", "The identity holding the lease."),
    AGE,
];

pub(super) static LEASE_CANDIDATE: &[ColumnDefinition] = &[
    NAME,
    col("LeaseName", "string", "The lease the candidate runs for."),
    col(
        "BinaryVersion",
        "string",
        "The binary version of the candidate.",
    ),
    col(
        "EmulationVersion",
        "string",
        "The emulation version of the candidate.",
    ),
    AGE,
];

pub(super) static STORAGE_CLASS: &[ColumnDefinition] = &[
    NAME,
    col(
        "Provisioner",
        "string",
        "The volume plugin that provisions volumes.",
    ),
    col(
        "ReclaimPolicy",
        "string",
        "The reclaim policy of provisioned volumes.",
    ),
    col(
        "VolumeBindingMode",
        "string",
        "When volumes are bound and provisioned.",
    ),
    col(
        "AllowVolumeExpansion",
        "string",
        "Whether volumes can be expanded.",
    ),
    AGE,
];

pub(super) static VOLUME_ATTRIBUTES_CLASS: &[ColumnDefinition] = &[
    NAME,
    col("DriverName", "string", "The CSI driver of the class."),
    AGE,
];

pub(super) static CONTROLLER_REVISION: &[ColumnDefinition] = &[
    NAME,
    col(
        "Controller",
        "string",
        "The controller owning the revision.",
    ),
    col("Revision", "string", "The revision number."),
    AGE,
];

pub(super) static RESOURCE_QUOTA: &[ColumnDefinition] = &[
    NAME,
    col("Request", "string", "Used and hard request quotas."),
    col("Limit", "string", "Used and hard limit quotas."),
    AGE,
];

pub(super) static PRIORITY_CLASS: &[ColumnDefinition] = &[
    NAME,
    col("Value", "integer", "The priority value."),
    col(
        "Global-Default",
        "boolean",
        "Whether this is the default priority class.",
    ),
    AGE,
    col(
        "PreemptionPolicy",
        "string",
        "Whether pods of this class preempt others.",
    ),
];

pub(super) static RUNTIME_CLASS: &[ColumnDefinition] = &[
    NAME,
    col("Handler", "string", "The CRI handler of the class."),
    AGE,
];

pub(super) static VOLUME_ATTACHMENT: &[ColumnDefinition] = &[
    NAME,
    ColumnDefinition {
        name: "Attacher",
        type_: "string",
        format: "name",
        description: "The volume driver that attaches the volume.",
        priority: 0,
    },
    col("PV", "string", "The persistent volume being attached."),
    col("Node", "string", "The node the volume is attached to."),
    col("Attached", "boolean", "Whether the volume is attached."),
    AGE,
];

pub(super) static ENDPOINT_SLICE: &[ColumnDefinition] = &[
    NAME,
    col("AddressType", "string", "The type of the addresses."),
    col("Ports", "string", "The ports of the slice."),
    col("Endpoints", "string", "The addresses of the endpoints."),
    AGE,
];

pub(super) static CSI_NODE: &[ColumnDefinition] = &[
    NAME,
    col(
        "Drivers",
        "integer",
        "The number of CSI drivers on the node.",
    ),
    AGE,
];

pub(super) static CSI_DRIVER: &[ColumnDefinition] = &[
    NAME,
    col(
        "AttachRequired",
        "boolean",
        "Whether volumes need an attach operation.",
    ),
    col(
        "PodInfoOnMount",
        "boolean",
        "Whether pod information is passed on mount.",
    ),
    col(
        "StorageCapacity",
        "boolean",
        "Whether the driver reports storage capacity.",
    ),
    col(
        "TokenRequests",
        "string",
        "Audiences of the service account tokens passed on mount.",
    ),
    col(
        "RequiresRepublish",
        "boolean",
        "Whether volumes are periodically re-published.",
    ),
    col(
        "Modes",
        "string",
        "The volume lifecycle modes the driver supports.",
    ),
    AGE,
];

pub(super) static CSI_STORAGE_CAPACITY: &[ColumnDefinition] = &[
    NAME,
    col(
        "StorageClassName",
        "string",
        "The storage class the capacity is for.",
    ),
    col("Capacity", "string", "The available capacity."),
];

pub(super) static WEBHOOK_CONFIGURATION: &[ColumnDefinition] = &[
    NAME,
    col(
        "Webhooks",
        "integer",
        "The number of webhooks in the configuration.",
    ),
    AGE,
];

pub(super) static VALIDATING_ADMISSION_POLICY: &[ColumnDefinition] = &[
    NAME,
    col("Validations", "integer", "The number of validation rules."),
    col(
        "ParamKind",
        "string",
        "The kind of the policy's parameters.",
    ),
    AGE,
];

pub(super) static MUTATING_ADMISSION_POLICY: &[ColumnDefinition] = &[
    NAME,
    col("Mutations", "integer", "The number of mutation rules."),
    col(
        "ParamKind",
        "string",
        "The kind of the policy's parameters.",
    ),
    AGE,
];

pub(super) static ADMISSION_POLICY_BINDING: &[ColumnDefinition] = &[
    NAME,
    col("PolicyName", "string", "The policy the binding binds."),
    col(
        "ParamRef",
        "string",
        "The parameter resource of the binding.",
    ),
    AGE,
];

pub(super) static FLOW_SCHEMA: &[ColumnDefinition] = &[
    NAME,
    col(
        "PriorityLevel",
        "string",
        "The priority level requests are assigned to.",
    ),
    col(
        "MatchingPrecedence",
        "string",
        "The schema's precedence; lower matches first.",
    ),
    col(
        "DistinguisherMethod",
        "string",
        "How requests are split into flows.",
    ),
    AGE,
    col(
        "MissingPL",
        "string",
        "Whether the priority level is missing.",
    ),
];

pub(super) static PRIORITY_LEVEL_CONFIGURATION: &[ColumnDefinition] = &[
    NAME,
    col("Type", "string", "Whether the level is Limited or Exempt."),
    col(
        "NominalConcurrencyShares",
        "string",
        "The level's share of the concurrency limit.",
    ),
    col("Queues", "string", "The number of queues."),
    col(
        "HandSize",
        "string",
        "The number of queues a flow is shuffled over.",
    ),
    col("QueueLengthLimit", "string", "The longest a queue may get."),
    AGE,
];

pub(super) static STORAGE_VERSION: &[ColumnDefinition] = &[
    NAME,
    col(
        "CommonEncodingVersion",
        "string",
        "The encoding version all API servers agree on.",
    ),
    col(
        "StorageVersions",
        "string",
        "The encoding version of each API server.",
    ),
    AGE,
];

pub(super) static SCALE: &[ColumnDefinition] = &[
    PLAIN_NAME,
    col("Desired", "integer", "The desired number of replicas."),
    col("Available", "integer", "The current number of replicas."),
    AGE,
];

pub(super) static NAME_AGE: &[ColumnDefinition] = &[NAME, AGE];

pub(super) static RESOURCE_CLAIM: &[ColumnDefinition] = &[
    NAME,
    col(
        "State",
        "string",
        "A summary of the claim's state (pending, allocated, reserved, deleted).",
    ),
    AGE,
];

pub(super) static RESOURCE_SLICE: &[ColumnDefinition] = &[
    NAME,
    col("Node", "string", "The node the devices are local to."),
    col("Driver", "string", "The driver publishing the slice."),
    col("Pool", "string", "The pool the slice belongs to."),
    AGE,
];

pub(super) static DEVICE_TAINT_RULE: &[ColumnDefinition] = &[
    NAME,
    col("Key", "string", "The taint key."),
    col("Value", "string", "The taint value."),
    col("Effect", "string", "The taint effect."),
    col("TimeAdded", "string", "How long ago the taint was added."),
    AGE,
];

pub(super) static SERVICE_CIDR: &[ColumnDefinition] = &[
    NAME,
    col("CIDRs", "string", "The IP ranges of the ServiceCIDR."),
    AGE,
];

pub(super) static IP_ADDRESS: &[ColumnDefinition] = &[
    NAME,
    col(
        "ParentRef",
        "string",
        "The object the IP address is allocated to.",
    ),
];

pub(super) static STORAGE_VERSION_MIGRATION: &[ColumnDefinition] = &[
    PLAIN_NAME,
    col("Resource", "string", "The group and resource to migrate."),
    col("Status", "string", "The status of the migration."),
];

pub(super) static API_SERVICE: &[ColumnDefinition] = &[
    NAME,
    col(
        "Service",
        "string",
        "The service that serves this API, or Local.",
    ),
    col("Available", "string", "Whether the API is available."),
    AGE,
];
