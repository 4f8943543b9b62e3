//! Leader election for the built-in controllers, as kube-controller-manager elects its leader
//! (client-go's `leaderelection` with a Lease lock): replicas sharing one store run the
//! controllers on exactly one of them.
//!
//! - The lock is the `coordination.k8s.io/v1` Lease `kube-controller-manager` in
//!   `kube-system`, written through the registry like any controller's write (a create, then
//!   compare-and-swap updates).
//! - A candidate takes the lease when nobody holds it, or when its record has not changed for
//!   a lease duration by the candidate's own clock (never by comparing clocks between
//!   replicas); it then sets `holderIdentity`, `acquireTime`, `renewTime`, and counts one more
//!   `leaseTransitions`.
//! - The leader renews every retry period. A leader that could not renew for the renew
//!   deadline, or finds the lease held by another, stops its controllers and stands again (a
//!   kube-controller-manager exits instead; here the API server goes on serving).
//! - At shutdown, the leader releases the lease (holder emptied), so another replica takes
//!   over at its next try instead of after a lease duration.
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::controllers::{update_with, Controllers, ResourceIndex};
use crate::registry::store::{self, CreateOptions, Scope};
use crate::registry::Backend;
use crate::registry::ResourceInfo;
use crate::status::ApiResult;

/// Namespace and name of the controllers' lease (kube-controller-manager's).
pub const LEASE_NAMESPACE: &str = "kube-system";
/// The lease's name.
pub const LEASE_NAME: &str = "kube-controller-manager";

/// How replicas elect the one that runs the controllers (kube-controller-manager's
/// `--leader-elect-*` flags, with its defaults).
#[derive(Clone, Debug)]
pub struct LeaderElection {
    /// How long a lease is honoured after its last renewal (`--leader-elect-lease-duration`).
    pub lease_duration: Duration,
    /// How long a leader keeps trying to renew before it gives up
    /// (`--leader-elect-renew-deadline`).
    pub renew_deadline: Duration,
    /// How often candidates try and leaders renew (`--leader-elect-retry-period`).
    pub retry_period: Duration,
    /// This replica's `holderIdentity` (default: the host name and a fresh UUID).
    pub identity: String,
}

impl Default for LeaderElection {
    fn default() -> Self {
        LeaderElection {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
            identity: default_identity(),
        }
    }
}

/// `<host name>_<uuid>`, as kube-controller-manager names itself.
pub fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "kubox".to_string());
    format!("{host}_{}", uuid::Uuid::new_v4())
}

fn lease_key() -> String {
    format!(
        "{}{LEASE_NAMESPACE}/{LEASE_NAME}",
        crate::registry::storage_prefix("coordination.k8s.io", "leases")
    )
}

/// The Lease resource, from an index kept across tries (rebuilt only when the registry
/// changed).
fn lease_info(state: &Backend, index: &mut ResourceIndex) -> Option<Arc<ResourceInfo>> {
    index.refresh(state);
    index.for_key(&lease_key())
}

/// A MicroTime as Kubernetes writes it (RFC 3339, microseconds, UTC).
fn micro_time(t: std::time::SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// The candidate's view of the lease: its last record, and when this replica saw it change.
#[derive(Default)]
struct Observed {
    spec: Option<Value>,
    at: Option<Instant>,
}

/// Take or renew the lease; Ok(true) when this replica holds it afterwards.
async fn try_acquire_or_renew(
    state: &Arc<Backend>,
    election: &LeaderElection,
    index: &mut ResourceIndex,
    observed: &mut Observed,
) -> ApiResult<bool> {
    let Some(info) = lease_info(state, index) else {
        return Ok(false);
    };
    let now = state.clock.now();
    let seconds = i64::try_from(election.lease_duration.as_secs().max(1)).unwrap_or(i64::MAX);
    let mut seen = false;
    // A write happened exactly when this replica took or renewed the lease.
    let holds = update_with(state, &info, &lease_key(), "", None, |lease| {
        seen = true;
        let spec = lease.get("spec").cloned().unwrap_or(Value::Null);
        if observed.spec.as_ref() != Some(&spec) {
            observed.spec = Some(spec.clone());
            observed.at = Some(Instant::now());
        }
        let holder = spec["holderIdentity"].as_str().unwrap_or_default();
        let mine = holder == election.identity;
        let fresh = observed
            .at
            .is_some_and(|at| at.elapsed() < election.lease_duration);
        if !holder.is_empty() && !mine && fresh {
            return false;
        }
        let transitions = spec["leaseTransitions"].as_i64().unwrap_or(0);
        let spec = &mut lease["spec"];
        if !mine {
            spec["acquireTime"] = json!(micro_time(now));
            spec["leaseTransitions"] = json!(transitions + 1);
        }
        spec["holderIdentity"] = json!(election.identity);
        spec["leaseDurationSeconds"] = json!(seconds);
        spec["renewTime"] = json!(micro_time(now));
        true
    })
    .await?;
    if !seen {
        // No lease yet: the first to create it holds it.
        let lease = json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": LEASE_NAME, "namespace": LEASE_NAMESPACE},
            "spec": {
                "holderIdentity": election.identity,
                "leaseDurationSeconds": seconds,
                "acquireTime": micro_time(now),
                "renewTime": micro_time(now),
                "leaseTransitions": 0,
            },
        });
        let scope = Scope::system(state, info, LEASE_NAMESPACE, "");
        return match store::create(&scope, lease, &CreateOptions::default()).await {
            Ok(_) => Ok(true),
            Err(e) if e.code.as_u16() == 409 => Ok(false),
            Err(e) => Err(e),
        };
    }
    if holds {
        // What this replica wrote is the record it observes from now on (seen as a change on
        // the next try, at that time).
        observed.spec = None;
    }
    Ok(holds)
}

/// Give the lease up (at shutdown): the holder emptied, so the next candidate takes it at once.
async fn release(state: &Arc<Backend>, election: &LeaderElection, index: &mut ResourceIndex) {
    let Some(info) = lease_info(state, index) else {
        return;
    };
    let now = state.clock.now();
    let outcome = update_with(state, &info, &lease_key(), "", None, |lease| {
        if lease["spec"]["holderIdentity"].as_str() != Some(election.identity.as_str()) {
            return false;
        }
        lease["spec"]["holderIdentity"] = json!("");
        lease["spec"]["leaseDurationSeconds"] = json!(1);
        lease["spec"]["renewTime"] = json!(micro_time(now));
        true
    })
    .await;
    if let Err(e) = outcome {
        tracing::warn!(error = %e.message, "could not release the controllers' lease");
    }
}

/// Stand for the controllers' lease until shutdown: while this replica holds it, the
/// controllers `start_term` starts run (reported through `handle`); when it loses it, they stop.
pub(crate) async fn run<F>(
    state: Arc<Backend>,
    election: LeaderElection,
    handle: Controllers,
    start_term: F,
) where
    F: Fn(watch::Receiver<bool>) -> (Controllers, Vec<JoinHandle<()>>) + Send,
{
    let mut shutdown = state.shutdown.clone();
    let mut observed = Observed::default();
    let mut index = ResourceIndex::default();
    loop {
        // A candidate.
        loop {
            if *shutdown.borrow() {
                return;
            }
            match try_acquire_or_renew(&state, &election, &mut index, &mut observed).await {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => tracing::debug!(error = %e.message, "the controllers' lease: will retry"),
            }
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(election.retry_period) => {}
            }
        }
        tracing::info!(identity = %election.identity, "holding the controllers' lease: the controllers run here");
        let (term_tx, term_rx) = watch::channel(false);
        let (term, tasks) = start_term(term_rx);
        handle.adopt(Some(&term));
        // The leader.
        let mut renewed = Instant::now();
        let lost = loop {
            tokio::select! {
                _ = shutdown.changed() => break false,
                _ = tokio::time::sleep(election.retry_period) => {}
            }
            let left = election.renew_deadline.saturating_sub(renewed.elapsed());
            match tokio::time::timeout(
                left,
                try_acquire_or_renew(&state, &election, &mut index, &mut observed),
            )
            .await
            {
                Ok(Ok(true)) => renewed = Instant::now(),
                // Someone else holds it.
                Ok(Ok(false)) => break true,
                Ok(Err(_)) | Err(_) if renewed.elapsed() >= election.renew_deadline => break true,
                Ok(Err(_)) | Err(_) => {}
            }
        };
        let _ = term_tx.send(true);
        handle.adopt(None);
        for task in tasks {
            let _ = task.await;
        }
        if !lost {
            release(&state, &election, &mut index).await;
            return;
        }
        tracing::warn!(identity = %election.identity, "lost the controllers' lease: the controllers stopped here");
    }
}
