//! `ServiceAccount`: pods run as the `default` ServiceAccount unless they name one, and get the
//! `kube-api-access-*` projected volume (token, `kube-root-ca.crt`, namespace) mounted at
//! `/var/run/secrets/kubernetes.io/serviceaccount` in every container, unless the pod or its
//! ServiceAccount sets `automountServiceAccountToken: false` or the server was built without
//! token mounting.
//!
//! Unlike kube-apiserver, a pod whose ServiceAccount does not exist (yet) is not refused: the
//! ServiceAccount controller may be switched off, and nothing here issues tokens.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::{AdmissionPlugin, Attributes, Operation};
use crate::registry::Backend;
use crate::status::ApiResult;

pub(super) struct ServiceAccount {
    pub(super) mount_token: bool,
}

const VOLUME_PREFIX: &str = "kube-api-access-";
const MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

#[async_trait]
impl AdmissionPlugin for ServiceAccount {
    fn name(&self) -> &'static str {
        "ServiceAccount"
    }

    fn handles(&self, op: Operation) -> bool {
        op == Operation::Create
    }

    async fn admit(&self, state: &Arc<Backend>, a: &mut Attributes) -> ApiResult<()> {
        if !a.is_core("pods") {
            return Ok(());
        }
        let Some(pod) = a.object.as_mut() else {
            return Ok(());
        };
        // Mirror pods (created by a kubelet from a static manifest) are left alone.
        if pod["metadata"]["annotations"]
            .get("kubernetes.io/config.mirror")
            .is_some()
        {
            return Ok(());
        }
        let named = |f: &str| {
            pod["spec"][f]
                .as_str()
                .filter(|n| !n.is_empty())
                .map(str::to_string)
        };
        let sa_name = named("serviceAccountName")
            .or_else(|| named("serviceAccount"))
            .unwrap_or_else(|| "default".to_string());
        pod["spec"]["serviceAccountName"] = json!(sa_name);
        // The deprecated alias, as kube's v1 conversion writes it.
        pod["spec"]["serviceAccount"] = json!(sa_name);
        if !self.mount_token {
            return Ok(());
        }
        let sa = super::get_resource(state, "", "serviceaccounts", &a.namespace, &sa_name).await?;
        let automount = pod["spec"]["automountServiceAccountToken"]
            .as_bool()
            .or_else(|| {
                sa.as_ref()
                    .and_then(|s| s["automountServiceAccountToken"].as_bool())
            })
            .unwrap_or(true);
        if automount {
            mount_token(pod);
        }
        Ok(())
    }
}

/// kube's `mountServiceAccountToken`: reuse a `kube-api-access-*` volume or add one, and mount it
/// in every container that has nothing at the token path.
fn mount_token(pod: &mut Value) {
    let volumes: Vec<String> = pod["spec"]["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["name"].as_str().map(str::to_string))
        .collect();
    let existing = volumes
        .iter()
        .find(|n| n.starts_with(VOLUME_PREFIX))
        .cloned();
    let name = existing.clone().unwrap_or_else(|| loop {
        let n = format!(
            "{VOLUME_PREFIX}{}",
            crate::registry::store::generate_suffix()
        );
        if !volumes.contains(&n) {
            break n;
        }
    });
    for list in ["initContainers", "containers"] {
        let Some(cs) = pod
            .get_mut("spec")
            .and_then(|s| s.get_mut(list))
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for c in cs {
            let mounted = c["volumeMounts"]
                .as_array()
                .is_some_and(|m| m.iter().any(|m| m["mountPath"] == json!(MOUNT_PATH)));
            if mounted {
                continue;
            }
            let mount = json!({"name": name, "readOnly": true, "mountPath": MOUNT_PATH});
            match c["volumeMounts"].as_array_mut() {
                Some(m) => m.push(mount),
                None => c["volumeMounts"] = json!([mount]),
            }
        }
    }
    if existing.is_none() {
        let volume = json!({
            "name": name,
            "projected": {
                "sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                    {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
                ],
                "defaultMode": 420
            }
        });
        match pod["spec"]["volumes"].as_array_mut() {
            Some(v) => v.push(volume),
            None => pod["spec"]["volumes"] = json!([volume]),
        }
    }
}
