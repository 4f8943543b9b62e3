//! What exists at start, as in a fresh cluster: the namespaces `default`, `kube-system`,
//! `kube-public`, `kube-node-lease`, the `kubernetes` Service, the
//! `kube-system/extension-apiserver-authentication` ConfigMap (the client CA) and the RBAC
//! bootstrap policy (`authz/policy.rs`), the system PriorityClasses. Idempotent across restarts: what exists is left as it is.

use serde_json::{json, Value};

use crate::objects::{timestamp, to_stored};
use crate::registry::storage_prefix;
use crate::registry::Backend;
use crate::status::{from_store, ApiResult, GroupResource};

async fn ensure(state: &Backend, key: String, obj: Value, gr: &GroupResource) -> ApiResult<()> {
    match state.store.create(&key, to_stored(&obj)?).await {
        Ok(_) | Err(kubox_storage::StoreError::AlreadyExists(_)) => Ok(()),
        Err(e) => Err(from_store(e, gr, "")),
    }
}

/// Create every missing one of `objects` at once: a store that commits in groups (sled) makes
/// them durable together, where one after another each waits for a sync of its own.
pub(crate) async fn ensure_all(
    state: &Backend,
    objects: Vec<(String, Value, GroupResource)>,
) -> ApiResult<()> {
    let creates = objects
        .into_iter()
        .map(|(key, obj, gr)| async move { ensure(state, key, obj, &gr).await });
    futures::future::join_all(creates)
        .await
        .into_iter()
        .collect()
}

/// Create the built-in objects that are missing. `trust`: the CA client certificates are
/// checked against and the front proxy's identity, published as kube-apiserver publishes them
/// (None when serving plain HTTP).
pub async fn run(state: &Backend, trust: Option<(&str, &crate::pki::FrontProxy)>) -> ApiResult<()> {
    let now = timestamp(state.clock.now());
    let mut objects = Vec::new();
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let obj = json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": ns,
                "uid": uuid::Uuid::new_v4().to_string(),
                "creationTimestamp": now,
                "labels": {"kubernetes.io/metadata.name": ns},
            },
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        });
        objects.push((
            storage_prefix("", "namespaces") + ns,
            obj,
            GroupResource::new("", "namespaces"),
        ));
    }
    let svc = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "uid": uuid::Uuid::new_v4().to_string(),
            "creationTimestamp": now,
            "labels": {"component": "apiserver", "provider": "kubernetes"},
        },
        "spec": {
            "type": "ClusterIP",
            "clusterIP": crate::allocators::KUBERNETES_SERVICE_IP,
            "clusterIPs": [crate::allocators::KUBERNETES_SERVICE_IP],
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "internalTrafficPolicy": "Cluster",
            "sessionAffinity": "None",
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}],
        },
        "status": {"loadBalancer": {}},
    });
    objects.push((
        storage_prefix("", "services") + "default/kubernetes",
        svc,
        GroupResource::new("", "services"),
    ));
    // `kube-system/extension-apiserver-authentication`: where extension API servers and
    // kube-controller-manager find the client CA and the front proxy's request-header
    // configuration (kube-apiserver's cluster authentication trust controller). Kept current:
    // a changed `--client-ca-file` or front-proxy CA replaces what an earlier start wrote.
    if let Some((ca, front_proxy)) = trust {
        let data = json!({
            "client-ca-file": ca,
            "requestheader-allowed-names": format!("[\"{}\"]", crate::pki::FRONT_PROXY_CLIENT),
            "requestheader-client-ca-file": front_proxy.ca_pem,
            "requestheader-extra-headers-prefix": "[\"X-Remote-Extra-\"]",
            "requestheader-group-headers": "[\"X-Remote-Group\"]",
            "requestheader-username-headers": "[\"X-Remote-User\"]",
        });
        let key =
            storage_prefix("", "configmaps") + "kube-system/extension-apiserver-authentication";
        let gr = GroupResource::new("", "configmaps");
        match state.store.get(&key, None).await {
            Ok(kv) => {
                let mut cm: Value = crate::objects::from_stored(&kv)?;
                if cm["data"] != data {
                    cm["data"] = data;
                    match state
                        .store
                        .update(&key, to_stored(&cm)?, Some(kv.mod_revision))
                        .await
                    {
                        Ok(_) | Err(kubox_storage::StoreError::Conflict { .. }) => {}
                        Err(e) => return Err(from_store(e, &gr, "")),
                    }
                }
            }
            Err(kubox_storage::StoreError::NotFound(_)) => {
                let cm = json!({
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {
                        "name": "extension-apiserver-authentication",
                        "namespace": "kube-system",
                        "uid": uuid::Uuid::new_v4().to_string(),
                        "creationTimestamp": now,
                    },
                    "data": data,
                });
                objects.push((key, cm, gr));
            }
            Err(e) => return Err(from_store(e, &gr, "")),
        }
    }
    let policy = [
        ("clusterroles", crate::authz::policy::cluster_roles()),
        (
            "clusterrolebindings",
            crate::authz::policy::cluster_role_bindings(),
        ),
    ];
    for (resource, roles) in policy {
        let gr = GroupResource::new(crate::authz::rbac::GROUP, resource);
        for mut obj in roles {
            let name = obj["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            obj["metadata"]["uid"] = json!(uuid::Uuid::new_v4().to_string());
            obj["metadata"]["creationTimestamp"] = json!(now);
            objects.push((
                storage_prefix(crate::authz::rbac::GROUP, resource) + &name,
                obj,
                gr.clone(),
            ));
        }
    }
    // The two system priority classes kube-apiserver's scheduling bootstrap creates.
    let classes = [
        (
            "system-node-critical",
            2_000_001_000,
            "Used for system critical pods that must not be moved from their current node.",
        ),
        (
            "system-cluster-critical",
            2_000_000_000,
            "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
        ),
    ];
    let gr = GroupResource::new("scheduling.k8s.io", "priorityclasses");
    for (name, value, description) in classes {
        let obj = json!({
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {
                "name": name,
                "uid": uuid::Uuid::new_v4().to_string(),
                "creationTimestamp": now,
            },
            "value": value,
            "description": description,
            "preemptionPolicy": "PreemptLowerPriority",
        });
        objects.push((
            storage_prefix("scheduling.k8s.io", "priorityclasses") + name,
            obj,
            gr.clone(),
        ));
    }
    ensure_all(state, objects).await
}
