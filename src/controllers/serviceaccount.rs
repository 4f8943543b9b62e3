//! Service accounts (kube-controller-manager's `serviceaccount` controller and the root CA
//! publisher behind `kube-root-ca.crt`).
//!
//! Invariants, for every namespace that is not being deleted:
//! - a ServiceAccount named `default` exists (created when the namespace appears, re-created when
//!   deleted);
//! - a ConfigMap named `kube-root-ca.crt` exists with `data: {ca.crt: <root CA bundle>}` and the
//!   `kubernetes.io/description` annotation kube puts on it (re-created when deleted, put back
//!   when its data or annotation is changed).
//!
//! `ca.crt` is the kubox CA (`pki.rs`), which the server fills into
//! [`ControllerOptions::root_ca`](super::ControllerOptions::root_ca).
//! Objects are created through the API's create path, so a namespace turning Terminating refuses
//! them like any other client's.

use std::sync::Arc;

use http::StatusCode;
use kubox_storage::EventKind;
use serde_json::json;

use super::{
    is_deleting, read, update_with, Controller, Interest, Msg, Queue, Reconciler, ResourceIndex,
};
use crate::objects::from_stored;
use crate::registry::storage_prefix;
use crate::registry::store::{self, CreateOptions, Scope};
use crate::registry::Backend;
use crate::status::ApiResult;

/// The ServiceAccount every namespace gets.
pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";
/// The ConfigMap with the cluster's root CA.
pub const ROOT_CA_CONFIGMAP: &str = "kube-root-ca.crt";
/// The annotation kube's root CA publisher sets on it.
pub const DESCRIPTION_ANNOTATION: &str = "kubernetes.io/description";
/// Its value.
pub const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

/// The service account controller.
pub struct ServiceAccountController {
    root_ca: String,
    index: ResourceIndex,
    keys: Arc<Followed>,
}

impl ServiceAccountController {
    /// Publish `root_ca` as `ca.crt`.
    pub fn new(root_ca: String) -> Self {
        ServiceAccountController {
            root_ca,
            index: ResourceIndex::default(),
            keys: Arc::new(Followed {
                namespaces: storage_prefix("", "namespaces"),
                accounts: storage_prefix("", "serviceaccounts"),
                configmaps: storage_prefix("", "configmaps"),
            }),
        }
    }
}

/// The keys the controller follows, by their storage prefixes (spelled once, for every change).
struct Followed {
    namespaces: String,
    accounts: String,
    configmaps: String,
}

impl Followed {
    /// The name of the namespace `key` is.
    fn namespace<'a>(&self, key: &'a str) -> Option<&'a str> {
        key.strip_prefix(self.namespaces.as_str())
    }

    /// The namespace whose default ServiceAccount `key` is.
    fn default_account<'a>(&self, key: &'a str) -> Option<&'a str> {
        namespace_of_named(key, &self.accounts, DEFAULT_SERVICE_ACCOUNT)
    }

    /// The namespace whose root CA ConfigMap `key` is.
    fn root_ca<'a>(&self, key: &'a str) -> Option<&'a str> {
        namespace_of_named(key, &self.configmaps, ROOT_CA_CONFIGMAP)
    }

    /// The keys of namespace `ns`, its default ServiceAccount and its root CA ConfigMap.
    fn of(&self, ns: &str) -> (String, String, String) {
        (
            format!("{}{ns}", self.namespaces),
            format!("{}{ns}/{DEFAULT_SERVICE_ACCOUNT}", self.accounts),
            format!("{}{ns}/{ROOT_CA_CONFIGMAP}", self.configmaps),
        )
    }
}

/// Create `obj`; nothing when it was created meanwhile or the namespace turned Terminating.
async fn create(scope: &Scope, obj: serde_json::Value) -> ApiResult<()> {
    match store::create(scope, obj, &CreateOptions::default()).await {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.code, StatusCode::CONFLICT | StatusCode::FORBIDDEN) => Ok(()),
        Err(e) => Err(e),
    }
}

/// `ns` if `key` is `{prefix}{ns}/{name}` (`prefix`: a resource's storage prefix).
fn namespace_of_named<'a>(key: &'a str, prefix: &str, name: &str) -> Option<&'a str> {
    let rest = key.strip_prefix(prefix)?;
    let (ns, n) = rest.split_once('/')?;
    (n == name).then_some(ns)
}

#[async_trait::async_trait]
impl Reconciler for ServiceAccountController {
    const CONTROLLER: Controller = Controller::ServiceAccount;

    /// Namespaces, and the two objects it keeps in each.
    fn interest(&self) -> Interest {
        let keys = self.keys.clone();
        Interest::matching(move |key| {
            keys.namespace(key).is_some()
                || keys.default_account(key).is_some()
                || keys.root_ca(key).is_some()
        })
    }

    fn observe(&mut self, _state: &Backend, msg: &Msg, queue: &mut Queue) {
        let keys = &self.keys;
        match msg {
            Msg::Reset { items, .. } => {
                for kv in items.iter() {
                    if let Some(name) = keys.namespace(&kv.key) {
                        if from_stored(kv).is_ok_and(|o| !is_deleting(&o)) {
                            queue.add(name);
                        }
                    }
                }
            }
            Msg::Change(ev) => {
                let key = &ev.kv.key;
                if let Some(name) = keys.namespace(key) {
                    if ev.kind == EventKind::Put && ev.prev.is_none() {
                        queue.add(name);
                    }
                } else if let Some(ns) = keys.default_account(key) {
                    if ev.kind == EventKind::Delete {
                        queue.add(ns);
                    }
                } else if let Some(ns) = keys.root_ca(key) {
                    queue.add(ns);
                }
            }
        }
    }

    async fn reconcile(
        &mut self,
        state: &Arc<Backend>,
        ns: &str,
        _queue: &mut Queue,
    ) -> ApiResult<()> {
        let (ns_key, sa_key, cm_key) = self.keys.of(ns);
        match read(state, &ns_key).await? {
            Some((obj, _)) if !is_deleting(&obj) => {}
            _ => return Ok(()),
        }
        self.index.refresh(state);
        let (Some(sa_info), Some(cm_info)) =
            (self.index.for_key(&sa_key), self.index.for_key(&cm_key))
        else {
            return Ok(());
        };
        // The two objects are written together: a store that commits in groups (sled) syncs
        // them once.
        let service_account = async {
            if read(state, &sa_key).await?.is_none() {
                let sa = json!({
                    "apiVersion": "v1",
                    "kind": "ServiceAccount",
                    "metadata": {"name": DEFAULT_SERVICE_ACCOUNT, "namespace": ns},
                });
                create(&Scope::system(state, sa_info, ns, ""), sa).await?;
            }
            Ok(())
        };
        let root_ca = async {
            let data = json!({"ca.crt": self.root_ca});
            match read(state, &cm_key).await? {
                None => {
                    let cm = json!({
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "metadata": {
                            "name": ROOT_CA_CONFIGMAP,
                            "namespace": ns,
                            "annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION},
                        },
                        "data": data,
                    });
                    create(&Scope::system(state, cm_info, ns, ""), cm).await?;
                }
                Some((cm, _)) => {
                    let annotated = cm["metadata"]["annotations"][DESCRIPTION_ANNOTATION]
                        .as_str()
                        .is_some_and(|s| !s.is_empty());
                    if cm["data"] != data || !annotated {
                        let uid = cm["metadata"]["uid"].as_str().map(str::to_string);
                        update_with(state, &cm_info, &cm_key, "", uid.as_deref(), |obj| {
                            obj["data"] = data.clone();
                            if !obj["metadata"]["annotations"].is_object() {
                                obj["metadata"]["annotations"] = json!({});
                            }
                            obj["metadata"]["annotations"][DESCRIPTION_ANNOTATION] =
                                json!(DESCRIPTION);
                            true
                        })
                        .await?;
                    }
                }
            }
            Ok(())
        };
        futures::future::try_join(service_account, root_ca).await?;
        Ok(())
    }
}
