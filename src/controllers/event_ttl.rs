//! Event expiry (kube-apiserver's `--event-ttl`, 1 h by default).
//!
//! core/v1 and events.k8s.io/v1 Events share one storage prefix; each is deleted once the
//! server's clock reaches its `metadata.creationTimestamp` plus the TTL. kube-apiserver attaches
//! an etcd lease to every write of an Event, so there an update (a bumped `count`) restarts the
//! TTL; here the TTL runs from creation, which the server stamps with its own clock, so expiry
//! is deterministic under a [`ManualClock`](crate::ManualClock) and survives restarts.
//! `creationTimestamp` has second precision: an Event may go up to a second early.
//!
//! Like a lease, expiry removes the key outright (finalizers do not hold an Event), with a
//! compare-and-swap on the revision last seen. The controller sleeps until the earliest expiry
//! (and wakes when a test moves the clock); it never polls.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use kubox_storage::{EventKind, KeyValue, StoreError};

use super::{Controller, Interest, Msg, Queue, Reconciler};
use crate::registry::storage_prefix;
use crate::registry::Backend;
use crate::status::{from_store, ApiResult, GroupResource};

/// The event TTL controller.
pub struct EventTtl {
    ttl: Duration,
    /// key → (expiry, revision last seen).
    events: HashMap<String, (SystemTime, i64)>,
    /// Expiries not yet handed to the queue, earliest first.
    schedule: BTreeSet<(SystemTime, String)>,
}

impl EventTtl {
    /// Expire Events `ttl` after their creation.
    pub fn new(ttl: Duration) -> Self {
        EventTtl {
            ttl,
            events: HashMap::new(),
            schedule: BTreeSet::new(),
        }
    }

    fn expiry(&self, kv: &KeyValue, now: SystemTime) -> SystemTime {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Meta {
            creation_timestamp: Option<String>,
        }
        #[derive(serde::Deserialize)]
        struct Stored {
            metadata: Option<Meta>,
        }
        let created = serde_json::from_slice::<Stored>(&kv.value)
            .ok()
            .and_then(|s| s.metadata?.creation_timestamp)
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
            .map(SystemTime::from)
            .unwrap_or(now);
        created + self.ttl
    }

    fn forget(&mut self, key: &str) {
        if let Some((at, _)) = self.events.remove(key) {
            self.schedule.remove(&(at, key.to_string()));
        }
    }

    fn track(&mut self, kv: &KeyValue, now: SystemTime) {
        self.forget(&kv.key);
        let at = self.expiry(kv, now);
        self.events
            .insert(kv.key.to_string(), (at, kv.mod_revision));
        self.schedule.insert((at, kv.key.to_string()));
    }
}

#[async_trait::async_trait]
impl Reconciler for EventTtl {
    const CONTROLLER: Controller = Controller::EventTtl;

    /// core/v1 and events.k8s.io/v1 Events share their storage.
    fn interest(&self) -> Interest {
        Interest::prefixes([storage_prefix("", "events")])
    }

    fn observe(&mut self, state: &Backend, msg: &Msg, _queue: &mut Queue) {
        let prefix = storage_prefix("", "events");
        let now = state.clock.now();
        match msg {
            Msg::Reset { items, .. } => {
                self.events.clear();
                self.schedule.clear();
                for kv in items.iter().filter(|kv| kv.key.starts_with(&prefix)) {
                    self.track(kv, now);
                }
            }
            Msg::Change(ev) if ev.kv.key.starts_with(&prefix) => match ev.kind {
                EventKind::Put => self.track(&ev.kv, now),
                EventKind::Delete => self.forget(&ev.kv.key),
            },
            Msg::Change(_) => {}
        }
    }

    fn next_due(&mut self) -> Option<SystemTime> {
        self.schedule.first().map(|(at, _)| *at)
    }

    fn take_due(&mut self, now: SystemTime, queue: &mut Queue) {
        while let Some((at, key)) = self.schedule.first().cloned() {
            if at > now {
                break;
            }
            self.schedule.remove(&(at, key.clone()));
            queue.add(key);
        }
    }

    async fn reconcile(
        &mut self,
        state: &Arc<Backend>,
        key: &str,
        _queue: &mut Queue,
    ) -> ApiResult<()> {
        let Some(&(at, rev)) = self.events.get(key) else {
            return Ok(());
        };
        let now = state.clock.now();
        if at > now {
            return Ok(());
        }
        let gr = GroupResource::new("", "events");
        match state.store.delete(key, Some(rev)).await {
            Ok(_) | Err(StoreError::NotFound(_)) => Ok(()),
            Err(StoreError::Conflict {
                current: Some(kv), ..
            }) => {
                // Written since: expire it if its (unchanged) creation says so, else reschedule.
                if self.expiry(&kv, now) <= now {
                    match state.store.delete(key, Some(kv.mod_revision)).await {
                        Ok(_) | Err(StoreError::NotFound(_)) => Ok(()),
                        Err(e) => Err(from_store(e, &gr, key)),
                    }
                } else {
                    self.track(&kv, now);
                    Ok(())
                }
            }
            Err(StoreError::Conflict { current: None, .. }) => Ok(()),
            Err(e) => Err(from_store(e, &gr, key)),
        }
    }
}
