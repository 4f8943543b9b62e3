//! Informers: a decoded, always-current copy of one storage prefix, as client-go's shared
//! informers keep one for kube-apiserver's admission plugins and controllers.
//!
//! An [`Informer`] lists its prefix at revision R, then watches from R+1 (no gap, no duplicate);
//! when the watch fails it waits (backoff), lists again and watches from the new revision. Every
//! failure is logged once, and the informer reports whether it is in sync (`/readyz`'s
//! `informer-sync` check). Readers take the objects they need under a short read lock
//! (`Arc`s, no decoding); [`Informer::wait_for`] lets a write return once the informer has
//! seen it, so what it configures applies to the next request.
//!
//! [`Informers`] holds the server's informers, one per cached resource: the admission plugins'
//! configuration (webhook configurations, ValidatingAdmissionPolicies and their bindings,
//! LimitRanges, ResourceQuotas) and namespaces.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use futures::StreamExt;
use kubox_storage::{DynStore, EventKind};
use serde_json::Value;
use tokio::sync::watch;

use crate::backoff::Backoff;
use crate::registry::storage_prefix;

/// One cached object: decoded, with the revision it was written at.
#[derive(Debug, Clone)]
pub struct Cached {
    /// The object as stored (storage version, without resourceVersion).
    pub object: Arc<Value>,
    /// Its resourceVersion.
    pub revision: i64,
}

/// A decoded copy of one storage prefix, kept current by a list and a watch.
pub struct Informer {
    name: &'static str,
    group: &'static str,
    resource: &'static str,
    prefix: String,
    objects: RwLock<BTreeMap<Arc<str>, Cached>>,
    observed: watch::Sender<i64>,
    in_sync: AtomicBool,
}

/// How long a write waits for an informer to see it before it returns anyway.
const WAIT_LIMIT: Duration = Duration::from_secs(5);

impl Informer {
    fn new(name: &'static str, group: &'static str, resource: &'static str) -> Informer {
        Informer {
            name,
            group,
            resource,
            prefix: storage_prefix(group, resource),
            objects: RwLock::default(),
            observed: watch::channel(0).0,
            in_sync: AtomicBool::new(false),
        }
    }

    /// The storage prefix it caches.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The objects whose keys start with `prefix` (a namespace's, or all), in key order.
    pub fn list(&self, prefix: &str) -> Vec<Cached> {
        let objects = self.objects.read().unwrap_or_else(PoisonError::into_inner);
        objects
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, c)| c.clone())
            .collect()
    }

    /// Is anything stored under `prefix`?
    pub fn any(&self, prefix: &str) -> bool {
        let objects = self.objects.read().unwrap_or_else(PoisonError::into_inner);
        objects
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .next()
            .is_some_and(|(k, _)| k.starts_with(prefix))
    }

    /// The object stored at `key`.
    pub fn get(&self, key: &str) -> Option<Cached> {
        self.objects
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    /// Wait (at most 5 s) until the informer has seen revision `rev`.
    pub async fn wait_for(&self, rev: i64) {
        let mut rx = self.observed.subscribe();
        let _ = tokio::time::timeout(WAIT_LIMIT, rx.wait_for(|seen| *seen >= rev)).await;
    }

    /// Listed and watching (false before the first list and while a lost watch is relisted).
    pub fn in_sync(&self) -> bool {
        self.in_sync.load(Ordering::Acquire)
    }

    /// Replace everything with a fresh list; returns the revision it was read at.
    async fn relist(&self, store: &DynStore) -> Result<i64, String> {
        let page = store
            .list(&self.prefix, Default::default())
            .await
            .map_err(|e| e.to_string())?;
        let mut fresh = BTreeMap::new();
        for kv in &page.items {
            match serde_json::from_slice::<Value>(&kv.value) {
                Ok(obj) => {
                    fresh.insert(
                        kv.key.clone(),
                        Cached {
                            object: Arc::new(obj),
                            revision: kv.mod_revision,
                        },
                    );
                }
                Err(e) => tracing::warn!(key = %kv.key, error = %e, "stored object is not JSON"),
            }
        }
        *self.objects.write().unwrap_or_else(PoisonError::into_inner) = fresh;
        self.observed.send_replace(page.revision);
        self.in_sync.store(true, Ordering::Release);
        Ok(page.revision)
    }

    fn apply(&self, ev: &kubox_storage::Event) {
        let mut objects = self.objects.write().unwrap_or_else(PoisonError::into_inner);
        match ev.kind {
            EventKind::Put => match serde_json::from_slice::<Value>(&ev.kv.value) {
                Ok(obj) => {
                    objects.insert(
                        ev.kv.key.clone(),
                        Cached {
                            object: Arc::new(obj),
                            revision: ev.kv.mod_revision,
                        },
                    );
                }
                Err(e) => {
                    tracing::warn!(key = %ev.kv.key, error = %e, "stored object is not JSON");
                    objects.remove(&*ev.kv.key);
                }
            },
            EventKind::Delete => {
                objects.remove(&*ev.kv.key);
            }
        }
    }

    /// Keep the copy current from revision `from` (just listed) until shutdown.
    /// (`from` None: not listed yet, list first).
    async fn run(
        self: Arc<Self>,
        store: DynStore,
        from: Option<i64>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut backoff = Backoff::standard(self.name);
        let mut relist = from.is_none();
        let mut from = from.unwrap_or_default();
        loop {
            if relist {
                self.in_sync.store(false, Ordering::Release);
                match self.relist(&store).await {
                    Ok(rev) => from = rev,
                    Err(e) => {
                        let d = backoff.failed(&e);
                        if !crate::backoff::wait(d, &mut shutdown).await {
                            return;
                        }
                        continue;
                    }
                }
            }
            relist = true;
            let mut stream = match store.watch(&self.prefix, from + 1).await {
                Ok(s) => s,
                Err(e) => {
                    let d = backoff.failed(&e);
                    if !crate::backoff::wait(d, &mut shutdown).await {
                        return;
                    }
                    continue;
                }
            };
            loop {
                tokio::select! {
                    _ = shutdown.changed() => return,
                    item = stream.next() => match item {
                        Some(Ok(ev)) => {
                            backoff.succeeded();
                            self.apply(&ev);
                            from = ev.revision();
                            self.observed.send_replace(from);
                        }
                        Some(Err(e)) => {
                            self.in_sync.store(false, Ordering::Release);
                            let d = backoff.failed(&e);
                            if !crate::backoff::wait(d, &mut shutdown).await {
                                return;
                            }
                            break;
                        }
                        None => {
                            if *shutdown.borrow() {
                                return;
                            }
                            self.in_sync.store(false, Ordering::Release);
                            let d = backoff.failed(&"the watch ended");
                            if !crate::backoff::wait(d, &mut shutdown).await {
                                return;
                            }
                            break;
                        }
                    }
                }
            }
        }
    }
}

/// The resources the server keeps informers for: `(name, group, resource)`.
const CACHED: &[(&str, &str, &str)] = &[
    ("the namespaces informer", "", "namespaces"),
    ("the limitranges informer", "", "limitranges"),
    ("the resourcequotas informer", "", "resourcequotas"),
    (
        "the validatingadmissionpolicies informer",
        "admissionregistration.k8s.io",
        "validatingadmissionpolicies",
    ),
    (
        "the validatingadmissionpolicybindings informer",
        "admissionregistration.k8s.io",
        "validatingadmissionpolicybindings",
    ),
    (
        "the mutatingwebhookconfigurations informer",
        "admissionregistration.k8s.io",
        "mutatingwebhookconfigurations",
    ),
    (
        "the validatingwebhookconfigurations informer",
        "admissionregistration.k8s.io",
        "validatingwebhookconfigurations",
    ),
];

/// The server's informers.
pub struct Informers {
    all: Vec<Arc<Informer>>,
}

impl Default for Informers {
    fn default() -> Self {
        Informers {
            all: CACHED
                .iter()
                .map(|(name, g, r)| Arc::new(Informer::new(name, g, r)))
                .collect(),
        }
    }
}

impl Informers {
    /// List every cached resource, then keep each current in a task of its own until shutdown.
    /// Returns once all have listed, so the first request finds them in sync; a list that fails
    /// here is retried by the task (the informer reports not in sync meanwhile).
    pub async fn start(
        &self,
        store: &DynStore,
        shutdown: &watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = Vec::with_capacity(self.all.len());
        for inf in &self.all {
            let from = match inf.relist(store).await {
                Ok(rev) => Some(rev),
                Err(e) => {
                    tracing::warn!(error = %e, "{} could not list; retrying", inf.name);
                    None
                }
            };
            tasks.push(tokio::spawn(inf.clone().run(
                store.clone(),
                from,
                shutdown.clone(),
            )));
        }
        tasks
    }

    /// The informer of the resource stored under `prefix` (its storage prefix), if cached.
    pub fn for_prefix(&self, prefix: &str) -> Option<&Arc<Informer>> {
        self.all.iter().find(|i| i.prefix == prefix)
    }

    /// The informer of a built-in `group`/`resource`, if cached.
    pub fn for_resource(&self, group: &str, resource: &str) -> Option<&Arc<Informer>> {
        self.all
            .iter()
            .find(|i| i.resource == resource && i.group == group)
    }

    /// The names of informers not in sync (empty: all are).
    pub fn out_of_sync(&self) -> Vec<&'static str> {
        self.all
            .iter()
            .filter(|i| !i.in_sync())
            .map(|i| i.name)
            .collect()
    }
}
