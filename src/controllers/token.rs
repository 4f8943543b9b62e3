//! The legacy token controller (kube-controller-manager's `serviceaccount-token`): a Secret of
//! type `kubernetes.io/service-account-token` annotated `kubernetes.io/service-account.name`
//! gets `data.token` (a non-expiring JWT for that ServiceAccount), `data.ca.crt` and
//! `data.namespace`, and the `kubernetes.io/service-account.uid` annotation. In 1.35 such
//! Secrets are only made by hand; the controller still fills them.
//!
//! Unlike kube's, it does not delete the Secrets of missing or deleted ServiceAccounts: a
//! Secret waits until its ServiceAccount exists (the token stops authenticating once the
//! ServiceAccount is gone, see `authn/serviceaccount.rs`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use base64::Engine;
use kubox_storage::EventKind;
use serde_json::{json, Value};

use super::{read, update_with, Controller, Interest, Msg, Queue, Reconciler, ResourceIndex};
use crate::authn::serviceaccount::{Tokens as ServiceAccountTokens, SECRET_TYPE};
use crate::objects::from_stored;
use crate::registry::storage_prefix;
use crate::registry::Backend;
use crate::status::ApiResult;

/// The annotation naming the ServiceAccount.
pub const NAME_ANNOTATION: &str = "kubernetes.io/service-account.name";
/// The annotation the controller sets to the ServiceAccount's uid.
pub const UID_ANNOTATION: &str = "kubernetes.io/service-account.uid";

/// Fills service-account-token Secrets.
pub struct TokenController {
    root_ca: String,
    /// Signs the tokens (the server's ServiceAccount key).
    signer: Arc<ServiceAccountTokens>,
    index: ResourceIndex,
    /// Secrets (`ns/name`) waiting for their ServiceAccount, by `ns/serviceaccount`.
    waiting: HashMap<String, HashSet<String>>,
}

impl TokenController {
    /// Publish `root_ca` as each token Secret's `ca.crt`; tokens are signed by `signer`.
    pub fn new(root_ca: String, signer: Arc<ServiceAccountTokens>) -> Self {
        TokenController {
            root_ca,
            signer,
            index: ResourceIndex::default(),
            waiting: HashMap::new(),
        }
    }
}

fn is_token_secret(obj: &Value) -> bool {
    obj["type"] == SECRET_TYPE
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[async_trait::async_trait]
impl Reconciler for TokenController {
    const CONTROLLER: Controller = Controller::ServiceAccountToken;

    fn interest(&self) -> Interest {
        Interest::prefixes([
            storage_prefix("", "secrets"),
            storage_prefix("", "serviceaccounts"),
        ])
    }

    fn observe(&mut self, _state: &Backend, msg: &Msg, queue: &mut Queue) {
        let secrets = storage_prefix("", "secrets");
        let accounts = storage_prefix("", "serviceaccounts");
        match msg {
            Msg::Reset { items, .. } => {
                for kv in items.iter() {
                    if let Some(rest) = kv.key.strip_prefix(secrets.as_str()) {
                        if from_stored(kv).is_ok_and(|o| is_token_secret(&o)) {
                            queue.add(rest);
                        }
                    }
                }
            }
            Msg::Change(ev) => {
                if ev.kind != EventKind::Put {
                    return;
                }
                if let Some(rest) = ev.kv.key.strip_prefix(secrets.as_str()) {
                    if from_stored(&ev.kv).is_ok_and(|o| is_token_secret(&o)) {
                        queue.add(rest);
                    }
                } else if let Some(rest) = ev.kv.key.strip_prefix(accounts.as_str()) {
                    for s in self.waiting.remove(rest).unwrap_or_default() {
                        queue.add(s);
                    }
                }
            }
        }
    }

    async fn reconcile(
        &mut self,
        state: &Arc<Backend>,
        key: &str,
        _queue: &mut Queue,
    ) -> ApiResult<()> {
        let Some((ns, name)) = key.split_once('/') else {
            return Ok(());
        };
        let secret_key = format!("{}{key}", storage_prefix("", "secrets"));
        let Some((secret, _)) = read(state, &secret_key).await? else {
            return Ok(());
        };
        if !is_token_secret(&secret) || !secret["metadata"]["deletionTimestamp"].is_null() {
            return Ok(());
        }
        let sa_name = secret["metadata"]["annotations"][NAME_ANNOTATION]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if sa_name.is_empty() {
            return Ok(());
        }
        let sa_key = format!("{}{ns}/{sa_name}", storage_prefix("", "serviceaccounts"));
        let Some((sa, _)) = read(state, &sa_key).await? else {
            self.waiting
                .entry(format!("{ns}/{sa_name}"))
                .or_default()
                .insert(key.to_string());
            return Ok(());
        };
        let sa_uid = sa["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let done = secret["metadata"]["annotations"][UID_ANNOTATION] == sa_uid.as_str()
            && secret["data"]["token"]
                .as_str()
                .is_some_and(|t| !t.is_empty())
            && secret["data"]["ca.crt"] == b64(&self.root_ca).as_str()
            && secret["data"]["namespace"] == b64(ns).as_str();
        if done {
            return Ok(());
        }
        self.index.refresh(state);
        let Some(info) = self.index.for_key(&secret_key) else {
            return Ok(());
        };
        let token = self.signer.issue_legacy(ns, &sa_name, &sa_uid, name)?;
        let uid = secret["metadata"]["uid"].as_str().map(str::to_string);
        let (ca, namespace) = (b64(&self.root_ca), b64(ns));
        update_with(state, &info, &secret_key, "", uid.as_deref(), |obj| {
            if !obj["data"].is_object() {
                obj["data"] = json!({});
            }
            // A token minted for an earlier ServiceAccount of that name is replaced.
            let same_account = obj["metadata"]["annotations"][UID_ANNOTATION] == sa_uid.as_str();
            if !same_account || obj["data"]["token"].as_str().is_none_or(|t| t.is_empty()) {
                obj["data"]["token"] = json!(b64(&token));
            }
            obj["data"]["ca.crt"] = json!(ca);
            obj["data"]["namespace"] = json!(namespace);
            obj["metadata"]["annotations"][UID_ANNOTATION] = json!(sa_uid);
            true
        })
        .await?;
        Ok(())
    }
}
