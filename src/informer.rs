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
//! LimitRanges, ResourceQuotas), namespaces, and the Services, EndpointSlices and Endpoints that
//! service references are routed through ([`crate::routing`]), and the APIServices the
//! aggregator serves ([`crate::aggregator`]).

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use kubox_storage::{DynStore, Event, EventKind, KeyValue};
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
    synced: Arc<AtomicBool>,
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
            synced: Arc::new(AtomicBool::new(false)),
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

    /// Holds it no object at all?
    pub fn is_empty(&self) -> bool {
        self.objects
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
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

    /// The revisions it has seen, as they come (a change to await).
    pub fn changes(&self) -> watch::Receiver<i64> {
        self.observed.subscribe()
    }

    /// Listed and watching (false before the first list and while a lost watch is relisted).
    pub fn in_sync(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    fn put(&self, kv: &KeyValue, objects: &mut BTreeMap<Arc<str>, Cached>) {
        match serde_json::from_slice::<Value>(&kv.value) {
            Ok(obj) => {
                objects.insert(
                    kv.key.clone(),
                    Cached {
                        object: Arc::new(obj),
                        revision: kv.mod_revision,
                    },
                );
            }
            Err(e) => {
                tracing::warn!(key = %kv.key, error = %e, "stored object is not JSON");
                objects.remove(&*kv.key);
            }
        }
    }
}

#[async_trait]
impl Handler for Informer {
    async fn relisted(&self, items: Vec<KeyValue>, revision: i64) -> Result<(), String> {
        let mut fresh = BTreeMap::new();
        for kv in &items {
            self.put(kv, &mut fresh);
        }
        *self.objects.write().unwrap_or_else(PoisonError::into_inner) = fresh;
        self.observed.send_replace(revision);
        Ok(())
    }

    async fn changed(&self, ev: &Arc<Event>) {
        {
            let mut objects = self.objects.write().unwrap_or_else(PoisonError::into_inner);
            match ev.kind {
                EventKind::Put => self.put(&ev.kv, &mut objects),
                EventKind::Delete => {
                    objects.remove(&*ev.kv.key);
                }
            }
        }
        self.observed.send_replace(ev.revision());
    }
}

/// What an informer's list and watch feed, in revision order: the RBAC index, the CRD
/// controller and the cached copies all take this one loop ([`list_and_watch`]).
#[async_trait]
pub trait Handler: Send + Sync {
    /// Everything under the prefix, listed at `revision` (at start, and after a lost watch).
    /// An error makes the loop list again after a backoff.
    async fn relisted(&self, items: Vec<KeyValue>, revision: i64) -> Result<(), String>;

    /// One change after the list.
    async fn changed(&self, event: &Arc<Event>);
}

/// List `prefix` once into `handler`; returns the revision it was read at.
pub async fn list_into(
    store: &DynStore,
    prefix: &str,
    handler: &dyn Handler,
) -> Result<i64, String> {
    let page = store
        .list(prefix, Default::default())
        .await
        .map_err(|e| e.to_string())?;
    let revision = page.revision;
    handler.relisted(page.items, revision).await?;
    Ok(revision)
}

/// Keep `handler` current with `prefix` until shutdown: (when `from` is None, list first;)
/// watch from the revision after the list; when the watch fails or ends, wait (backoff,
/// logged once per run of failures), list again and watch from there. `synced` says whether
/// the loop is listed and watching (`/readyz`'s informer-sync).
pub async fn list_and_watch(
    name: &'static str,
    store: DynStore,
    prefix: String,
    handler: Arc<dyn Handler>,
    from: Option<i64>,
    synced: Arc<AtomicBool>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Backoff::standard(name);
    let mut from = from;
    loop {
        // A list at R (unless the caller has just listed), a watch from R+1, then the list is
        // handed over: in sync from the moment both exist.
        let (start, listed) = match from.take() {
            Some(rev) => (rev, None),
            None => {
                synced.store(false, Ordering::Release);
                match store.list(&prefix, Default::default()).await {
                    Ok(page) => (page.revision, Some(page.items)),
                    Err(e) => {
                        let d = backoff.failed(&e);
                        if !crate::backoff::wait(d, &mut shutdown).await {
                            return;
                        }
                        continue;
                    }
                }
            }
        };
        let mut stream = match store.watch(&prefix, start + 1).await {
            Ok(s) => s,
            Err(e) => {
                synced.store(false, Ordering::Release);
                let d = backoff.failed(&e);
                if !crate::backoff::wait(d, &mut shutdown).await {
                    return;
                }
                continue;
            }
        };
        synced.store(true, Ordering::Release);
        if let Some(items) = listed {
            if let Err(e) = handler.relisted(items, start).await {
                synced.store(false, Ordering::Release);
                let d = backoff.failed(&e);
                if !crate::backoff::wait(d, &mut shutdown).await {
                    return;
                }
                continue;
            }
        }
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                item = stream.next() => match item {
                    Some(Ok(ev)) => {
                        backoff.succeeded();
                        handler.changed(&ev).await;
                    }
                    other => {
                        if *shutdown.borrow() {
                            return;
                        }
                        synced.store(false, Ordering::Release);
                        let why = match other {
                            Some(Err(e)) => e.to_string(),
                            _ => "the watch ended".to_string(),
                        };
                        let d = backoff.failed(&why);
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

/// The resources the server keeps informers for: `(name, group, resource)`.
const CACHED: &[(&str, &str, &str)] = &[
    ("the namespaces informer", "", "namespaces"),
    ("the services informer", "", "services"),
    ("the endpoints informer", "", "endpoints"),
    (
        "the endpointslices informer",
        "discovery.k8s.io",
        "endpointslices",
    ),
    (
        "the apiservices informer",
        "apiregistration.k8s.io",
        "apiservices",
    ),
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
    /// Other list-and-watch loops (the RBAC index, the CRD controller), for readiness.
    others: std::sync::Mutex<Vec<(&'static str, Arc<AtomicBool>)>>,
}

impl Default for Informers {
    fn default() -> Self {
        Informers {
            all: CACHED
                .iter()
                .map(|(name, g, r)| Arc::new(Informer::new(name, g, r)))
                .collect(),
            others: Default::default(),
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
            let from = match list_into(store, &inf.prefix, inf.as_ref()).await {
                Ok(rev) => Some(rev),
                Err(e) => {
                    tracing::warn!(error = %e, "{} could not list; retrying", inf.name);
                    None
                }
            };
            tasks.push(tokio::spawn(list_and_watch(
                inf.name,
                store.clone(),
                inf.prefix.clone(),
                inf.clone(),
                from,
                inf.synced.clone(),
                shutdown.clone(),
            )));
        }
        tasks
    }

    /// Run another list-and-watch loop ([`list_and_watch`]) feeding `handler` until shutdown,
    /// reported under `name` by [`Informers::out_of_sync`]; `from`: the revision its caller
    /// has just listed at (None: list first).
    pub async fn run(
        &self,
        name: &'static str,
        store: DynStore,
        prefix: String,
        handler: Arc<dyn Handler>,
        from: Option<i64>,
        shutdown: watch::Receiver<bool>,
    ) {
        let synced = Arc::new(AtomicBool::new(from.is_some()));
        self.others
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((name, synced.clone()));
        list_and_watch(name, store, prefix, handler, from, synced.clone(), shutdown).await;
        // A loop that ended (its controllers lost their leadership) no longer counts.
        self.others
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(_, f)| !Arc::ptr_eq(f, &synced));
    }

    /// The informer of the resource stored under `prefix` (its storage prefix), if cached.
    pub fn for_prefix(&self, prefix: &str) -> Option<&Arc<Informer>> {
        self.all.iter().find(|i| i.prefix == prefix)
    }

    /// The informer whose storage prefix begins `prefix` (a storage prefix, or one namespace of
    /// it), if cached.
    pub fn covering(&self, prefix: &str) -> Option<&Arc<Informer>> {
        self.all
            .iter()
            .find(|i| prefix.starts_with(i.prefix.as_str()))
    }

    /// The informer of a built-in `group`/`resource`, if cached.
    pub fn for_resource(&self, group: &str, resource: &str) -> Option<&Arc<Informer>> {
        self.all
            .iter()
            .find(|i| i.resource == resource && i.group == group)
    }

    /// The names of informers not in sync (empty: all are).
    pub fn out_of_sync(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = self
            .all
            .iter()
            .filter(|i| !i.in_sync())
            .map(|i| i.name)
            .collect();
        let others = self.others.lock().unwrap_or_else(PoisonError::into_inner);
        out.extend(
            others
                .iter()
                .filter(|(_, f)| !f.load(Ordering::Acquire))
                .map(|(n, _)| *n),
        );
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use kubox_storage::memory::{MemoryOptions, MemoryStore};
    use std::collections::BTreeSet;
    use std::time::Duration;

    /// Records what it is fed; its first change waits for `gate`.
    struct Recorder {
        keys: std::sync::Mutex<BTreeSet<String>>,
        lists: watch::Sender<usize>,
        changes: watch::Sender<i64>,
        gate: tokio::sync::Semaphore,
    }

    #[async_trait]
    impl Handler for Recorder {
        async fn relisted(&self, items: Vec<KeyValue>, _revision: i64) -> Result<(), String> {
            *self.keys.lock().unwrap() = items.iter().map(|kv| kv.key.to_string()).collect();
            self.lists.send_modify(|n| *n += 1);
            Ok(())
        }

        async fn changed(&self, event: &Arc<Event>) {
            let _permit = self.gate.acquire().await.unwrap();
            self.keys.lock().unwrap().insert(event.kv.key.to_string());
            self.changes.send_replace(event.revision());
        }
    }

    /// A watch cut off because its consumer fell behind is not the end: the loop lists again,
    /// reports itself out of sync meanwhile and watches on from the new list.
    #[tokio::test]
    async fn a_lost_watch_is_relisted_and_watched_again() {
        let store: DynStore = Arc::new(MemoryStore::with_options(MemoryOptions {
            watch_backlog: 4,
            ..Default::default()
        }));
        let put = |k: String| {
            let store = store.clone();
            async move {
                store
                    .create(&k, Bytes::from_static(b"{}"))
                    .await
                    .unwrap()
                    .mod_revision
            }
        };
        put("/p/a".into()).await;
        let rec = Arc::new(Recorder {
            keys: Default::default(),
            lists: watch::channel(0).0,
            changes: watch::channel(0).0,
            gate: tokio::sync::Semaphore::new(0),
        });
        let synced = Arc::new(AtomicBool::new(false));
        let (_stop, shutdown) = watch::channel(false);
        let mut lists = rec.lists.subscribe();
        tokio::spawn(list_and_watch(
            "a test informer",
            store.clone(),
            "/p/".into(),
            rec.clone(),
            None,
            synced.clone(),
            shutdown,
        ));
        let wait = Duration::from_secs(30);
        tokio::time::timeout(wait, lists.wait_for(|n| *n == 1))
            .await
            .unwrap()
            .unwrap();
        // The first change blocks the handler; the writes after it overflow the watch.
        for i in 0..12 {
            put(format!("/p/k{i:02}")).await;
        }
        rec.gate.add_permits(1_000);
        tokio::time::timeout(wait, lists.wait_for(|n| *n == 2))
            .await
            .expect("the informer lists again")
            .unwrap();
        assert_eq!(rec.keys.lock().unwrap().len(), 13);
        // Watching again: a later write arrives as a change.
        let mut changes = rec.changes.subscribe();
        let rev = put("/p/z".into()).await;
        tokio::time::timeout(wait, changes.wait_for(|r| *r >= rev))
            .await
            .expect("the informer watches again")
            .unwrap();
        assert!(synced.load(Ordering::Acquire));
        assert!(rec.keys.lock().unwrap().contains("/p/z"));
    }
}
