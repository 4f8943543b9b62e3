//! CustomResourceDefinitions: a watch-driven controller turns each CRD into served resources.
//!
//! For every CRD it checks names against the other CRDs of its group (NamesAccepted), registers
//! the served versions in the [`Registry`](crate::registry::Registry) and marks the CRD
//! Established; when a CRD is deleted it deletes the custom resources, then drops the
//! `customresourcecleanup` finalizer, and the API leaves discovery once the CRD is gone.
//! API writes to CRDs wait until the controller has seen them, so a client that creates a CRD
//! can use the new API as soon as the create returns.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::watch;

use crate::objects::{from_stored, timestamp, to_stored};
use crate::registry::strategy::ScalePaths;
use crate::registry::Backend;
use crate::registry::{
    custom_storage_prefix, storage_prefix, version_priority, ResourceInfo, SubresourceInfo,
};
use crate::status::{from_store, ApiResult, GroupResource};

pub mod conversion;
mod shared;
pub mod strategy;
pub mod validation;

use conversion::{Converter, NoConversion, WebhookConverter};
use kubox_openapi::published::CrdVersion;
use strategy::{CustomResourceStrategy, PrinterColumn};

/// The finalizer that holds a CRD until its custom resources are deleted.
pub const FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

/// Tracks how far the controller has got, so writers can wait for it.
pub struct Tracker {
    observed: watch::Sender<i64>,
    /// Each stored CRD's name, group and accepted names, by key, at its mod revision: the
    /// name-conflict check reads every CRD at every reconcile, and decoding them all each
    /// time made loading N large CRDs quadratic.
    names: std::sync::Mutex<NamesByKey>,
}

/// Stored CRDs' names by key, with the mod revision they were read at.
type NamesByKey = HashMap<Arc<str>, (i64, Arc<CrdNames>)>;

/// What the name-conflict check reads of a CRD.
struct CrdNames {
    name: String,
    group: String,
    accepted: Value,
}

impl Default for Tracker {
    fn default() -> Self {
        Tracker {
            observed: watch::channel(0).0,
            names: Default::default(),
        }
    }
}

impl Tracker {
    /// The names of the CRD stored as `kv`, decoded once per revision; entries of CRDs not
    /// in the current list are dropped by [`Tracker::forget_others`].
    fn names_of(&self, kv: &kubox_storage::KeyValue) -> ApiResult<Arc<CrdNames>> {
        let mut cache = self
            .names
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((rev, names)) = cache.get(&kv.key) {
            if *rev == kv.mod_revision {
                return Ok(names.clone());
            }
        }
        let crd = from_stored(kv)?;
        let names = Arc::new(CrdNames {
            name: crd["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            group: crd["spec"]["group"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            accepted: accepted_names(&crd),
        });
        cache.insert(kv.key.clone(), (kv.mod_revision, names.clone()));
        Ok(names)
    }

    fn forget_others(&self, live: &[kubox_storage::KeyValue]) {
        let keep: std::collections::HashSet<&str> = live.iter().map(|kv| &*kv.key).collect();
        self.names
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|k, _| keep.contains(&**k));
    }
}

impl Tracker {
    /// Wait (bounded) until the controller has processed revision `rev`.
    pub async fn wait_for(&self, rev: i64) {
        let mut rx = self.observed.subscribe();
        let _ =
            tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|seen| *seen >= rev)).await;
    }
}

fn crd_prefix() -> String {
    storage_prefix("apiextensions.k8s.io", "customresourcedefinitions")
}

fn gr() -> GroupResource {
    GroupResource::new("apiextensions.k8s.io", "customresourcedefinitions")
}

/// What feeds the CRD controller: the informer loop's list and watch of CRDs.
struct Feed {
    state: Arc<Backend>,
}

fn name_of_key(key: &str) -> String {
    key.rsplit('/').next().unwrap_or_default().to_string()
}

#[async_trait::async_trait]
impl crate::informer::Handler for Feed {
    async fn relisted(
        &self,
        items: Vec<kubox_storage::KeyValue>,
        revision: i64,
    ) -> Result<(), String> {
        for kv in &items {
            reconcile(&self.state, &name_of_key(&kv.key))
                .await
                .map_err(|e| e.message)?;
        }
        self.state.crds.observed.send_replace(revision);
        Ok(())
    }

    async fn changed(&self, ev: &Arc<kubox_storage::Event>) {
        let name = name_of_key(&ev.kv.key);
        if let Err(e) = reconcile(&self.state, &name).await {
            tracing::warn!(crd = %name, error = %e.message, "CRD reconcile failed");
        }
        self.state.crds.observed.send_replace(ev.revision());
    }
}

/// Register every stored CRD (at start); returns the revision read at.
pub async fn load_all(state: &Arc<Backend>) -> ApiResult<i64> {
    let feed = Feed {
        state: state.clone(),
    };
    crate::informer::list_into(&state.store, &crd_prefix(), &feed)
        .await
        .map_err(crate::status::ApiError::internal)
}

/// The controller loop: watch CRDs from `from` and reconcile each change until shutdown
/// (relisting after a lost watch).
pub async fn run(state: Arc<Backend>, from: i64) {
    let feed = Arc::new(Feed {
        state: state.clone(),
    });
    state
        .informers
        .run(
            "the CRD controller",
            state.store.clone(),
            crd_prefix(),
            feed,
            Some(from),
            state.shutdown.clone(),
        )
        .await;
}

/// Bring one CRD's served API in line with its stored object.
pub async fn reconcile(state: &Backend, name: &str) -> ApiResult<()> {
    let key = format!("{}{name}", crd_prefix());
    let kv = match state.store.get(&key, None).await {
        Ok(kv) => kv,
        Err(kubox_storage::StoreError::NotFound(_)) => {
            state.registry.remove_custom(name);
            return Ok(());
        }
        Err(e) => return Err(from_store(e, &gr(), name)),
    };
    let mut crd = from_stored(&kv)?;
    if crd["metadata"]
        .get("deletionTimestamp")
        .is_some_and(|v| !v.is_null())
    {
        return finish_deletion(state, &key, crd, kv.mod_revision).await;
    }
    let conflict = name_conflict(state, &crd, kv.create_revision).await?;
    let mut status = crd.get("status").cloned().unwrap_or(json!({}));
    let now = timestamp(state.clock.now());
    match &conflict {
        None => {
            status["acceptedNames"] = accepted_names(&crd);
            set_condition(
                &mut status,
                "NamesAccepted",
                "True",
                "NoConflicts",
                "no conflicts found",
                &now,
            );
            // Established means served: it turns True only once the versions are registered.
            match build_infos(&crd, &state.webhooks, shared::fingerprint(&kv.value)) {
                Ok(infos) => {
                    state.registry.set_custom(name, infos);
                    set_condition(
                        &mut status,
                        "Established",
                        "True",
                        "InitialNamesAccepted",
                        "the initial names have been accepted",
                        &now,
                    );
                }
                Err(e) => {
                    tracing::warn!(crd = %name, error = %e, "CRD not servable");
                    state.registry.remove_custom(name);
                    set_condition(
                        &mut status,
                        "Established",
                        "False",
                        "Installing",
                        &format!("the resource cannot be served: {e}"),
                        &now,
                    );
                }
            }
        }
        Some((reason, message)) => {
            state.registry.remove_custom(name);
            set_condition(&mut status, "NamesAccepted", "False", reason, message, &now);
            set_condition(
                &mut status,
                "Established",
                "False",
                "NotAccepted",
                "not all names are accepted",
                &now,
            );
        }
    }
    let storage = storage_version(&crd);
    let mut stored: Vec<Value> = status["storedVersions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if let Some(v) = storage {
        if !stored.contains(&json!(v)) {
            stored.push(json!(v));
        }
    }
    status["storedVersions"] = json!(stored);
    if crd.get("status") != Some(&status) {
        crd["status"] = status;
        match state
            .store
            .update(&key, to_stored(&crd)?, Some(kv.mod_revision))
            .await
        {
            Ok(_)
            | Err(kubox_storage::StoreError::Conflict { .. })
            | Err(kubox_storage::StoreError::NotFound(_)) => {}
            Err(e) => return Err(from_store(e, &gr(), name)),
        }
    }
    Ok(())
}

fn set_condition(
    status: &mut Value,
    ty: &str,
    value: &str,
    reason: &str,
    message: &str,
    now: &str,
) {
    let mut conds: Vec<Value> = status["conditions"].as_array().cloned().unwrap_or_default();
    crate::objects::set_condition(&mut conds, ty, value, reason, message, now);
    status["conditions"] = json!(conds);
}

fn accepted_names(crd: &Value) -> Value {
    let mut names = crd["spec"]["names"].clone();
    let kind = names["kind"].as_str().unwrap_or_default().to_string();
    if names.get("listKind").is_none_or(|v| v.is_null()) {
        names["listKind"] = json!(format!("{kind}List"));
    }
    if names
        .get("singular")
        .is_none_or(|v| v.as_str().is_none_or(str::is_empty))
    {
        names["singular"] = json!(kind.to_lowercase());
    }
    names
}

fn storage_version(crd: &Value) -> Option<String> {
    crd["spec"]["versions"]
        .as_array()?
        .iter()
        .find(|v| v["storage"] == true)
        .and_then(|v| v["name"].as_str())
        .map(str::to_string)
}

/// Another CRD of the same group already using one of our names (the older one wins).
async fn name_conflict(
    state: &Backend,
    crd: &Value,
    created: i64,
) -> ApiResult<Option<(String, String)>> {
    let group = crd["spec"]["group"].as_str().unwrap_or_default();
    let ours = accepted_names(crd);
    let my_name = crd["metadata"]["name"].as_str().unwrap_or_default();
    let plural = ours["plural"].as_str().unwrap_or_default();
    if state.registry.is_builtin(group, plural) {
        return Ok(Some((
            "PluralConflict".into(),
            format!("{plural:?} is already in use"),
        )));
    }
    let list = state
        .store
        .list(&crd_prefix(), Default::default())
        .await
        .map_err(|e| from_store(e, &gr(), ""))?;
    state.crds.forget_others(&list.items);
    for kv in &list.items {
        let other = state.crds.names_of(kv)?;
        if other.name == my_name || other.group != group {
            continue;
        }
        if kv.create_revision > created {
            continue;
        }
        let theirs = &other.accepted;
        let mut their_words: Vec<&str> = ["plural", "singular"]
            .iter()
            .filter_map(|k| theirs[*k].as_str())
            .collect();
        their_words.extend(
            theirs["shortNames"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str),
        );
        if their_words.contains(&plural) {
            return Ok(Some((
                "PluralConflict".into(),
                format!("{plural:?} is already in use"),
            )));
        }
        if let Some(s) = ours["singular"]
            .as_str()
            .filter(|s| their_words.contains(s))
        {
            return Ok(Some((
                "SingularConflict".into(),
                format!("{s:?} is already in use"),
            )));
        }
        for short in ours["shortNames"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if their_words.contains(&short) {
                return Ok(Some((
                    "ShortNamesConflict".into(),
                    format!("{short:?} is already in use"),
                )));
            }
        }
        if theirs["kind"] == ours["kind"] {
            return Ok(Some((
                "KindConflict".into(),
                format!(
                    "{:?} is already in use",
                    ours["kind"].as_str().unwrap_or_default()
                ),
            )));
        }
        if theirs["listKind"] == ours["listKind"] {
            return Ok(Some((
                "ListKindConflict".into(),
                format!(
                    "{:?} is already in use",
                    ours["listKind"].as_str().unwrap_or_default()
                ),
            )));
        }
    }
    Ok(None)
}

/// The warning requests to a deprecated version carry: its `deprecationWarning`, or
/// kube-apiserver's default `<group>/<version> <Kind> is deprecated`.
fn deprecation_warning(group: &str, kind: &str, version: &Value) -> Option<String> {
    if version["deprecated"] != true {
        return None;
    }
    Some(match version["deprecationWarning"].as_str() {
        Some(w) => w.to_string(),
        None => format!(
            "{group}/{} {kind} is deprecated",
            version["name"].as_str().unwrap_or_default()
        ),
    })
}

/// The resources a CRD serves, one per served version, preferred version first.
pub fn build_infos(
    crd: &Value,
    webhooks: &Arc<crate::webhook::WebhookClient>,
    stored: shared::Fingerprint,
) -> Result<Vec<ResourceInfo>, String> {
    let spec = &crd["spec"];
    let group = spec["group"]
        .as_str()
        .ok_or("spec.group is missing")?
        .to_string();
    let names = accepted_names(crd);
    let plural = names["plural"]
        .as_str()
        .ok_or("spec.names.plural is missing")?
        .to_string();
    let kind = names["kind"]
        .as_str()
        .ok_or("spec.names.kind is missing")?
        .to_string();
    let namespaced = spec["scope"] != "Cluster";
    let storage = storage_version(crd).ok_or("no storage version")?;
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    };
    let conversion: Arc<dyn Converter> = match spec["conversion"]["strategy"].as_str() {
        Some("Webhook") => {
            let config = crate::webhook::ClientConfig::from_json(
                &spec["conversion"]["webhook"]["clientConfig"],
            )?;
            let group = spec["group"].as_str().unwrap_or_default();
            let schemas = spec["versions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| {
                    let name = v["name"].as_str()?;
                    let ops = crate::crd::validation::schema_ops(crd, v)?;
                    Some((format!("{group}/{name}"), ops))
                })
                .collect();
            Arc::new(WebhookConverter::new(webhooks.clone(), config, schemas))
        }
        _ => Arc::new(NoConversion),
    };
    let mut versions: Vec<&Value> = spec["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["served"] == true)
        .collect();
    versions.sort_by_key(|v| version_priority(v["name"].as_str().unwrap_or_default()));
    let mut infos = Vec::new();
    for v in versions {
        let version = v["name"].as_str().unwrap_or_default().to_string();
        let subs = &v["subresources"];
        let status = subs.get("status").is_some_and(|s| !s.is_null());
        let scale = subs
            .get("scale")
            .filter(|s| !s.is_null())
            .map(|s| ScalePaths {
                spec_replicas: s["specReplicasPath"]
                    .as_str()
                    .unwrap_or(".spec.replicas")
                    .to_string(),
                status_replicas: s["statusReplicasPath"]
                    .as_str()
                    .unwrap_or(".status.replicas")
                    .to_string(),
                label_selector: Some(
                    s["labelSelectorPath"]
                        .as_str()
                        .unwrap_or(".status.selector")
                        .to_string(),
                ),
            });
        let mut columns = Vec::new();
        for c in v["additionalPrinterColumns"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let raw = c["jsonPath"].as_str().unwrap_or_default();
            // A column kube's JSONPath cannot parse does not keep the version from being
            // served: as kube-apiserver, the columns before it are printed and the rest dropped.
            let path = match crate::jsonpath::Path::parse_path(raw) {
                Ok(p) => p,
                Err(e) => {
                    tracing::info!(
                        crd = %crate::objects::name_of(crd),
                        "the CRD has an invalid printer column {raw:?} ({e}); printing the columns before it"
                    );
                    break;
                }
            };
            columns.push(PrinterColumn {
                name: c["name"].as_str().unwrap_or_default().to_string(),
                type_: c["type"].as_str().unwrap_or("string").to_string(),
                format: c["format"].as_str().unwrap_or_default().to_string(),
                description: c["description"].as_str().unwrap_or_default().to_string(),
                priority: c["priority"].as_i64().unwrap_or(0) as i32,
                path,
            });
        }
        let selectable: Vec<String> = v["selectableFields"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f["jsonPath"].as_str())
            .map(|p| p.trim_start_matches('.').to_string())
            .collect();
        // Compiled once per process for a given schema (forks of a snapshot share it).
        let schema = shared::schema_ops(stored, crd, v);
        let strategy = CustomResourceStrategy::new(
            namespaced,
            status,
            scale.clone(),
            columns,
            selectable,
            schema,
            conversion.clone(),
            deprecation_warning(&group, &kind, v),
        )
        .with_published_schema(shared::published_schema(
            stored,
            CrdVersion {
                group: &group,
                version: &version,
                kind: &kind,
                list_kind: names["listKind"].as_str().unwrap_or_default(),
                plural: &plural,
                schema: v
                    .get("schema")
                    .and_then(|s| s.get("openAPIV3Schema"))
                    .filter(|s| s.is_object()),
                preserve_unknown_fields: spec["preserveUnknownFields"] == true,
            },
        ));
        let mut subresources = Vec::new();
        if status {
            subresources.push(SubresourceInfo {
                name: "status".into(),
                kind: kind.clone(),
                group: String::new(),
                version: String::new(),
                verbs: vec!["get".into(), "patch".into(), "update".into()],
            });
        }
        if scale.is_some() {
            subresources.push(SubresourceInfo {
                name: "scale".into(),
                kind: "Scale".into(),
                group: "autoscaling".into(),
                version: "v1".into(),
                verbs: vec!["get".into(), "patch".into(), "update".into()],
            });
        }
        infos.push(ResourceInfo {
            group: group.clone(),
            version,
            resource: plural.clone(),
            singular: names["singular"].as_str().unwrap_or_default().to_string(),
            kind: kind.clone(),
            namespaced,
            short_names: strs(&names["shortNames"]),
            categories: strs(&names["categories"]),
            verbs: [
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "create",
                "update",
                "watch",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            subresources,
            storage_api_version: format!("{group}/{storage}"),
            storage_prefix: custom_storage_prefix(&group, &plural),
            strategy: Arc::new(strategy),
            hooks: Arc::new(crate::registry::store::NoHooks),
            spec: None,
        });
    }
    Ok(infos)
}

/// A deleted CRD: mark it Terminating, delete its custom resources, then release it.
async fn finish_deletion(state: &Backend, key: &str, mut crd: Value, rev: i64) -> ApiResult<()> {
    let name = crd["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let now = timestamp(state.clock.now());
    let mut status = crd.get("status").cloned().unwrap_or(json!({}));
    set_condition(
        &mut status,
        "Terminating",
        "True",
        "InstanceDeletionInProgress",
        "CustomResource deletion is in progress",
        &now,
    );
    let group = crd["spec"]["group"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let plural = crd["spec"]["names"]["plural"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let prefix = custom_storage_prefix(&group, &plural);
    let list = state
        .store
        .list(&prefix, Default::default())
        .await
        .map_err(|e| from_store(e, &gr(), &name))?;
    let mut remaining = 0;
    for kv in &list.items {
        let mut obj = from_stored(kv)?;
        if obj["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
        {
            remaining += 1;
            if obj["metadata"]
                .get("deletionTimestamp")
                .is_none_or(|v| v.is_null())
            {
                obj["metadata"]["deletionTimestamp"] = json!(now);
                obj["metadata"]["deletionGracePeriodSeconds"] = json!(0);
                let _ = state
                    .store
                    .update(&kv.key, to_stored(&obj)?, Some(kv.mod_revision))
                    .await;
            }
        } else {
            let _ = state.store.delete(&kv.key, Some(kv.mod_revision)).await;
        }
    }
    if remaining > 0 {
        if crd.get("status") != Some(&status) {
            crd["status"] = status;
            let _ = state.store.update(key, to_stored(&crd)?, Some(rev)).await;
        }
        return Ok(());
    }
    let finalizers: Vec<Value> = crd["metadata"]["finalizers"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|f| f != FINALIZER)
        .collect();
    if finalizers.is_empty() {
        state.registry.remove_custom(&name);
        match state.store.delete(key, Some(rev)).await {
            Ok(_)
            | Err(kubox_storage::StoreError::NotFound(_))
            | Err(kubox_storage::StoreError::Conflict { .. }) => Ok(()),
            Err(e) => Err(from_store(e, &gr(), &name)),
        }
    } else {
        crd["metadata"]["finalizers"] = json!(finalizers);
        crd["status"] = status;
        let _ = state.store.update(key, to_stored(&crd)?, Some(rev)).await;
        Ok(())
    }
}
