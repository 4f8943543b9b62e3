//! A Service's Endpoints (kube-controller-manager's `endpoints` controller), and what it shares
//! with the EndpointSlice controller ([`super::endpointslice`]): which pods a Service selects,
//! their ports, addresses and readiness, and the last-change trigger time.
//!
//! For every Service with a selector (and not of type ExternalName), an Endpoints object of the
//! same name lists the selected pods that have an IP and are not finished: ready ones (or all,
//! with `publishNotReadyAddresses`) under `addresses`, the others under `notReadyAddresses`,
//! each with `ip`, `nodeName`, `targetRef` (kind Pod, namespace, name, uid) and `hostname` when
//! the pod's `hostname`/`subdomain` name this Service. Each service port resolves its
//! `targetPort` on each pod (a number, or the name of a container port of the same protocol,
//! sidecar init containers included); a pod without the named port is left out of that port's
//! subset. Subsets are packed as kube's RepackSubsets packs them: addresses that offer the same
//! ports together, sorted by IP then uid. Terminating pods are left out unless
//! `publishNotReadyAddresses`.
//!
//! Metadata as kube writes it: the Service's labels, `endpoints.kubernetes.io/managed-by:
//! endpoint-controller`, `service.kubernetes.io/headless: ""` when the Service has no cluster
//! IP; the `endpoints.kubernetes.io/last-change-trigger-time` annotation (the earliest change
//! not yet written: a pod's Ready transition or the Service's creation), and past 1000
//! addresses the list truncated (ready ones first, in proportion across subsets) with
//! `endpoints.kubernetes.io/over-capacity: truncated`.
//!
//! The Endpoints is deleted when its Service is; at start every Endpoints without a Service is
//! deleted too (kube's checkLeftoverEndpoints), leader-election records aside. Services without a selector are left alone, so the Endpoints of `default/kubernetes`
//! (kept by the API server, if at all) is never touched. Updates to an Endpoints by others are
//! put right at the next change of its Service or pods, as kube does.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::SystemTime;

use serde_json::{json, Map, Value};

use super::workload::{
    condition, is_ready, is_terminal, stamp, time_at, Cache, Expectations, CONTROLLER_MANAGER,
};
use super::{Controller, Interest, Msg, Queue, Reconciler};
use crate::objects::labels_of;
use crate::registry::store::is_deleting;
use crate::registry::Backend;
use crate::status::ApiResult;

/// The label the endpoints controller marks its Endpoints with.
pub const MANAGED_BY_LABEL: &str = "endpoints.kubernetes.io/managed-by";
/// Its value.
pub const MANAGED_BY: &str = "endpoint-controller";
/// The label on the Endpoints and EndpointSlices of a Service without a cluster IP.
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";
/// When the change an Endpoints (or EndpointSlice) reflects happened.
pub const TRIGGER_TIME_ANNOTATION: &str = "endpoints.kubernetes.io/last-change-trigger-time";
/// Set on an Endpoints whose addresses were cut to [`MAX_CAPACITY`].
pub const OVER_CAPACITY_ANNOTATION: &str = "endpoints.kubernetes.io/over-capacity";
/// How many addresses an Endpoints holds at most.
pub const MAX_CAPACITY: usize = 1000;
/// client-go's leader-election record on an Endpoints (never deleted as left over).
const LEADER_ANNOTATION: &str = "control-plane.alpha.kubernetes.io/leader";

// ---------------------------------------------------------------------------------------------
// What both controllers read of Services and Pods.

/// The Service's selector, when this controller keeps its endpoints: None for a Service
/// without one (or an empty one, which kube stores as none) and for ExternalName Services.
pub(crate) fn service_selector(svc: &Value) -> Option<BTreeMap<String, String>> {
    if svc["spec"]["type"] == "ExternalName" {
        return None;
    }
    let m = svc["spec"]["selector"].as_object()?;
    if m.is_empty() {
        return None;
    }
    Some(
        m.iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect(),
    )
}

/// Does `selector` select an object with these labels?
pub(crate) fn selector_matches(
    selector: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// kube's IsServiceIPSet: a cluster IP other than `None`.
pub(crate) fn service_ip_set(svc: &Value) -> bool {
    svc["spec"]["clusterIP"]
        .as_str()
        .is_some_and(|ip| !ip.is_empty() && ip != "None")
}

/// The pod's IPs: `status.podIPs`, else `status.podIP`.
pub(crate) fn pod_ips(pod: &Value) -> Vec<&str> {
    let ips: Vec<&str> = pod["status"]["podIPs"]
        .as_array()
        .map(|a| a.iter().filter_map(|p| p["ip"].as_str()).collect())
        .unwrap_or_default();
    if !ips.is_empty() {
        return ips.into_iter().filter(|ip| !ip.is_empty()).collect();
    }
    pod["status"]["podIP"]
        .as_str()
        .filter(|ip| !ip.is_empty())
        .into_iter()
        .collect()
}

/// Is `ip` an IPv6 address?
pub(crate) fn is_ipv6(ip: &str) -> bool {
    ip.contains(':')
}

/// kube's ShouldPodBeInEndpoints: not finished, with an IP, and not terminating unless
/// `include_terminating`.
pub(crate) fn pod_in_endpoints(pod: &Value, include_terminating: bool) -> bool {
    !is_terminal(pod) && !pod_ips(pod).is_empty() && (include_terminating || !is_deleting(pod))
}

/// kube's ShouldSetHostname: the pod's hostname and subdomain name this Service.
pub(crate) fn hostname_for(pod: &Value, svc: &Value) -> Option<String> {
    let host = pod["spec"]["hostname"].as_str().filter(|h| !h.is_empty())?;
    let same_ns = pod["metadata"]["namespace"] == svc["metadata"]["namespace"];
    (same_ns && pod["spec"]["subdomain"] == svc["metadata"]["name"]).then(|| host.to_string())
}

/// The protocol of a port (TCP when unset, as defaulted).
pub(crate) fn protocol_of(port: &Value) -> &str {
    port["protocol"].as_str().unwrap_or("TCP")
}

/// kube's FindPort: the pod's port for a service port — a numeric `targetPort` as it is, a
/// named one from the containers' ports of that name and protocol (sidecar init containers
/// too). None when the pod has no such port.
pub(crate) fn find_port(pod: &Value, svc_port: &Value) -> Option<i64> {
    let target = &svc_port["targetPort"];
    if let Some(n) = target.as_i64() {
        return Some(n);
    }
    let Some(name) = target.as_str() else {
        // Not defaulted (never the case through the API): the port itself.
        return svc_port["port"].as_i64();
    };
    let protocol = protocol_of(svc_port);
    let from = |containers: &Value, sidecars_only: bool| -> Option<i64> {
        containers.as_array()?.iter().find_map(|c| {
            if sidecars_only && c["restartPolicy"] != "Always" {
                return None;
            }
            c["ports"].as_array()?.iter().find_map(|p| {
                (p["name"] == name && protocol_of(p) == protocol)
                    .then(|| p["containerPort"].as_i64())
                    .flatten()
            })
        })
    };
    from(&pod["spec"]["containers"], false).or_else(|| from(&pod["spec"]["initContainers"], true))
}

/// The fields of a pod that the endpoints of a Service depend on: a change elsewhere (a
/// kubelet heartbeat, an annotation) queues nothing.
pub(crate) fn endpoint_view(pod: &Value) -> Value {
    let spec = &pod["spec"];
    json!([
        pod["metadata"]["labels"],
        pod["metadata"]["deletionTimestamp"],
        pod["metadata"]["uid"],
        spec["nodeName"],
        spec["hostname"],
        spec["subdomain"],
        spec["containers"]
            .as_array()
            .map(|cs| cs.iter().map(|c| c["ports"].clone()).collect::<Vec<_>>()),
        spec["initContainers"].as_array().map(|cs| cs
            .iter()
            .map(|c| (c["ports"].clone(), c["restartPolicy"].clone()))
            .collect::<Vec<_>>()),
        pod["status"]["phase"],
        pod["status"]["podIP"],
        pod["status"]["podIPs"],
        condition(pod, "Ready").map(|c| (c["status"].clone(), c["lastTransitionTime"].clone())),
    ])
}

/// The Services in a pod's namespace selecting the pod before or after a change.
pub(crate) fn services_for_pod_change(
    services: &Cache,
    old: Option<&Value>,
    new: Option<&Value>,
) -> Vec<String> {
    if let (Some(o), Some(n)) = (old, new) {
        if endpoint_view(o) == endpoint_view(n) {
            return Vec::new();
        }
    }
    let Some(ns) = new
        .or(old)
        .and_then(|p| p["metadata"]["namespace"].as_str())
    else {
        return Vec::new();
    };
    let old_labels = old.map(labels_of);
    let new_labels = new.map(labels_of);
    services
        .in_namespace(ns)
        .filter(|(_, svc)| {
            service_selector(svc).is_some_and(|s| {
                old_labels.as_ref().is_some_and(|l| selector_matches(&s, l))
                    || new_labels.as_ref().is_some_and(|l| selector_matches(&s, l))
            })
        })
        .map(|(k, _)| k.clone())
        .collect()
}

/// The pods a Service selects, by name.
pub(crate) fn selected_pods<'a>(pods: &'a Cache, svc: &Value) -> Vec<&'a Arc<Value>> {
    let Some(selector) = service_selector(svc) else {
        return Vec::new();
    };
    let ns = svc["metadata"]["namespace"].as_str().unwrap_or_default();
    pods.in_namespace(ns)
        .filter(|(_, p)| selector_matches(&selector, &labels_of(p)))
        .map(|(_, p)| p)
        .collect()
}

/// kube's TriggerTimeTracker: per Service, the trigger times seen at its last sync; a sync's
/// trigger time is the earliest one that changed since (a pod's Ready transition, the
/// Service's creation), none when nothing changed.
#[derive(Default)]
pub(crate) struct TriggerTimes {
    states: HashMap<String, TriggerState>,
}

#[derive(Default)]
struct TriggerState {
    pods: HashMap<String, SystemTime>,
    service: Option<SystemTime>,
}

impl TriggerTimes {
    /// The trigger time of a sync of `key` (the Service `svc` selecting `pods`).
    pub fn compute(&mut self, key: &str, svc: &Value, pods: &[&Arc<Value>]) -> Option<SystemTime> {
        let state = self.states.entry(key.to_string()).or_default();
        let mut earliest: Option<SystemTime> = None;
        let mut note = |t: SystemTime| {
            if earliest.is_none_or(|e| t < e) {
                earliest = Some(t);
            }
        };
        let mut seen = HashMap::new();
        for pod in pods {
            let Some(t) = condition(pod, "Ready").and_then(|c| time_at(&c["lastTransitionTime"]))
            else {
                continue;
            };
            let name = pod["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if state.pods.get(&name).is_none_or(|prev| t > *prev) {
                note(t);
            }
            seen.insert(name, t);
        }
        let created = time_at(&svc["metadata"]["creationTimestamp"]);
        if let Some(t) = created {
            if state.service.is_none_or(|prev| t > prev) {
                note(t);
            }
        }
        state.pods = seen;
        state.service = created;
        earliest
    }

    /// Forget a deleted Service.
    pub fn forget(&mut self, key: &str) {
        self.states.remove(key);
    }
}

/// Set or clear one annotation; true when it changed.
pub(crate) fn set_annotation(obj: &mut Value, key: &str, value: Option<&str>) -> bool {
    let current = obj["metadata"]["annotations"][key]
        .as_str()
        .map(str::to_string);
    if current.as_deref() == value {
        return false;
    }
    match value {
        Some(v) => {
            if !obj["metadata"]["annotations"].is_object() {
                obj["metadata"]["annotations"] = json!({});
            }
            obj["metadata"]["annotations"][key] = json!(v);
        }
        None => {
            if let Some(m) = obj["metadata"]["annotations"].as_object_mut() {
                m.remove(key);
                if m.is_empty() {
                    if let Some(meta) = obj["metadata"].as_object_mut() {
                        meta.remove("annotations");
                    }
                }
            }
        }
    }
    true
}

/// Labels as a JSON object.
pub(crate) fn labels_json(labels: &BTreeMap<String, String>) -> Value {
    Value::Object(
        labels
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect(),
    )
}

// ---------------------------------------------------------------------------------------------
// Subsets.

/// An address with its identity (IP, pod uid) and readiness, offering one port (None: a
/// headless Service without ports).
struct Offer {
    address: Value,
    ip: String,
    uid: String,
    port: Option<Value>,
    ready: bool,
}

/// A port's identity: name, port, protocol, appProtocol.
fn port_key(p: &Value) -> (String, i64, String, String) {
    (
        p["name"].as_str().unwrap_or_default().to_string(),
        p["port"].as_i64().unwrap_or(0),
        protocol_of(p).to_string(),
        p["appProtocol"].as_str().unwrap_or_default().to_string(),
    )
}

/// kube's RepackSubsets: every (address, port) pair regrouped so that the addresses offering the
/// same ports share a subset; an address not ready on one port is not ready on it; addresses
/// sorted by IP then uid, ports by name and number.
fn repack(offers: Vec<Offer>) -> Vec<Value> {
    type AddrKey = (String, String);
    type PortKey = Option<(String, i64, String, String)>;
    let mut addresses: BTreeMap<AddrKey, Value> = BTreeMap::new();
    let mut ports: BTreeMap<PortKey, Option<Value>> = BTreeMap::new();
    let mut by_port: BTreeMap<PortKey, BTreeMap<AddrKey, bool>> = BTreeMap::new();
    for o in offers {
        let ak = (o.ip.clone(), o.uid.clone());
        addresses.entry(ak.clone()).or_insert(o.address);
        let pk = o.port.as_ref().map(port_key);
        ports.entry(pk.clone()).or_insert(o.port);
        let entry = by_port.entry(pk).or_default().entry(ak).or_insert(o.ready);
        if !o.ready {
            *entry = false;
        }
    }
    let mut groups: BTreeMap<BTreeMap<AddrKey, bool>, Vec<PortKey>> = BTreeMap::new();
    for (pk, addrs) in by_port {
        groups.entry(addrs).or_default().push(pk);
    }
    groups
        .into_iter()
        .map(|(addrs, pks)| {
            let mut subset = Map::new();
            let pick = |want: bool| -> Vec<Value> {
                addrs
                    .iter()
                    .filter(|(_, ready)| **ready == want)
                    .filter_map(|(k, _)| addresses.get(k).cloned())
                    .collect()
            };
            let (ready, not_ready) = (pick(true), pick(false));
            if !ready.is_empty() {
                subset.insert("addresses".into(), Value::Array(ready));
            }
            if !not_ready.is_empty() {
                subset.insert("notReadyAddresses".into(), Value::Array(not_ready));
            }
            let ps: Vec<Value> = pks
                .iter()
                .filter_map(|pk| ports.get(pk).cloned().flatten())
                .collect();
            if !ps.is_empty() {
                subset.insert("ports".into(), Value::Array(ps));
            }
            Value::Object(subset)
        })
        .collect()
}

fn count(subset: &Value, field: &str) -> usize {
    subset[field].as_array().map_or(0, Vec::len)
}

/// kube's truncateEndpoints: past [`MAX_CAPACITY`] addresses, ready ones are kept first, each
/// subset keeping its share (rounded up, the last ones getting what is left). True when
/// anything was cut.
fn truncate(subsets: &mut [Value]) -> bool {
    let ready: usize = subsets.iter().map(|s| count(s, "addresses")).sum();
    let not_ready: usize = subsets.iter().map(|s| count(s, "notReadyAddresses")).sum();
    if ready + not_ready <= MAX_CAPACITY {
        return false;
    }
    let cut_ready = ready > MAX_CAPACITY;
    let (max, total) = if cut_ready {
        (MAX_CAPACITY, ready)
    } else {
        (MAX_CAPACITY - ready, not_ready)
    };
    let mut left = max;
    for subset in subsets.iter_mut() {
        let field = if cut_ready {
            "addresses"
        } else {
            "notReadyAddresses"
        };
        let here = count(subset, field);
        let share = (here * max).div_ceil(total.max(1)).min(left);
        if let Some(list) = subset[field].as_array_mut() {
            list.truncate(share);
        }
        if cut_ready {
            if let Some(m) = subset.as_object_mut() {
                m.remove("notReadyAddresses");
            }
        }
        left -= count(subset, field);
        if let Some(m) = subset.as_object_mut() {
            if m.get(field)
                .and_then(Value::as_array)
                .is_some_and(Vec::is_empty)
            {
                m.remove(field);
            }
        }
    }
    true
}

/// The address of `pod` for the Service: its IP of the Service's first family (kube's
/// podToEndpointAddressForService).
fn address_for(svc: &Value, pod: &Value) -> Option<(Value, String)> {
    let ips = pod_ips(pod);
    let v6 = match svc["spec"]["ipFamilies"][0].as_str() {
        Some(family) => family == "IPv6",
        None if service_ip_set(svc) => svc["spec"]["clusterIP"].as_str().is_some_and(is_ipv6),
        None => ips.first().is_some_and(|ip| is_ipv6(ip)),
    };
    let ip = ips.into_iter().find(|ip| is_ipv6(ip) == v6)?.to_string();
    let meta = &pod["metadata"];
    let mut a = Map::new();
    a.insert("ip".into(), json!(ip));
    if let Some(h) = hostname_for(pod, svc) {
        a.insert("hostname".into(), json!(h));
    }
    a.insert(
        "nodeName".into(),
        json!(pod["spec"]["nodeName"].as_str().unwrap_or_default()),
    );
    a.insert(
        "targetRef".into(),
        json!({"kind": "Pod", "namespace": meta["namespace"], "name": meta["name"], "uid": meta["uid"]}),
    );
    Some((Value::Object(a), ip))
}

/// The Endpoints subsets of a Service selecting `pods`.
fn subsets_for(svc: &Value, pods: &[&Arc<Value>]) -> Vec<Value> {
    let publish = svc["spec"]["publishNotReadyAddresses"] == true;
    let svc_ports = svc["spec"]["ports"].as_array().cloned().unwrap_or_default();
    let headless = svc["spec"]["clusterIP"] == "None";
    let mut offers = Vec::new();
    for pod in pods {
        if !pod_in_endpoints(pod, publish) {
            continue;
        }
        let Some((address, ip)) = address_for(svc, pod) else {
            continue;
        };
        let uid = pod["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let ready = publish || is_ready(pod);
        if svc_ports.is_empty() {
            if headless {
                offers.push(Offer {
                    address,
                    ip,
                    uid,
                    port: None,
                    ready,
                });
            }
            continue;
        }
        for sp in &svc_ports {
            let Some(port) = find_port(pod, sp) else {
                continue;
            };
            let mut p = Map::new();
            if let Some(name) = sp["name"].as_str().filter(|n| !n.is_empty()) {
                p.insert("name".into(), json!(name));
            }
            p.insert("port".into(), json!(port));
            p.insert("protocol".into(), json!(protocol_of(sp)));
            if let Some(app) = sp["appProtocol"].as_str() {
                p.insert("appProtocol".into(), json!(app));
            }
            offers.push(Offer {
                address: address.clone(),
                ip: ip.clone(),
                uid: uid.clone(),
                port: Some(Value::Object(p)),
                ready,
            });
        }
    }
    repack(offers)
}

/// Subsets as compared: without resourceVersions in target references, empty lists as none.
fn comparable(subsets: &Value) -> Value {
    let mut out = Vec::new();
    for s in subsets.as_array().into_iter().flatten() {
        let mut s = s.clone();
        for field in ["addresses", "notReadyAddresses"] {
            if let Some(list) = s[field].as_array_mut() {
                for a in list {
                    if let Some(r) = a["targetRef"].as_object_mut() {
                        r.remove("resourceVersion");
                    }
                }
            }
        }
        if let Some(m) = s.as_object_mut() {
            m.retain(|_, v| !(v.is_null() || v.as_array().is_some_and(Vec::is_empty)));
        }
        out.push(s);
    }
    Value::Array(out)
}

// ---------------------------------------------------------------------------------------------
// The controller.

/// The endpoints controller.
pub struct EndpointsController {
    services: Cache,
    pods: Cache,
    endpoints: Cache,
    expect: Expectations,
    triggers: TriggerTimes,
    /// The first list was seen (left-over Endpoints are looked for then only, as kube does at
    /// start).
    listed: bool,
}

impl Default for EndpointsController {
    fn default() -> Self {
        EndpointsController {
            services: Cache::new("", "services"),
            pods: Cache::new("", "pods"),
            endpoints: Cache::new("", "endpoints"),
            expect: Expectations::default(),
            triggers: TriggerTimes::default(),
            listed: false,
        }
    }
}

#[async_trait::async_trait]
impl Reconciler for EndpointsController {
    const CONTROLLER: Controller = Controller::Endpoints;

    fn interest(&self) -> Interest {
        Interest::caches([&self.services, &self.pods, &self.endpoints])
    }

    fn expectations(&mut self) -> Option<&mut Expectations> {
        Some(&mut self.expect)
    }

    fn observe(&mut self, _state: &Backend, msg: &Msg, queue: &mut Queue) {
        let (services, pods, endpoints) = (&mut self.services, &mut self.pods, &mut self.endpoints);
        for c in services.observe(msg) {
            queue.add(c.key);
        }
        let relist = matches!(msg, Msg::Reset { .. });
        for c in pods.observe(msg) {
            if relist {
                // Every Service is queued already.
                continue;
            }
            for k in services_for_pod_change(services, c.old.as_deref(), c.new.as_deref()) {
                queue.add(k);
            }
        }
        let first_list = relist && !self.listed;
        self.listed |= first_list;
        for c in endpoints.observe(msg) {
            let left_over = first_list
                && c.new
                    .as_ref()
                    .is_some_and(|e| e["metadata"]["annotations"][LEADER_ANNOTATION].is_null());
            if c.new.is_none() || left_over {
                let (ns, name) = endpoints.split(&c.key);
                queue.add(services.key(ns, name));
            }
        }
    }

    async fn reconcile(
        &mut self,
        state: &Arc<Backend>,
        key: &str,
        _queue: &mut Queue,
    ) -> ApiResult<()> {
        if !self.expect.satisfied(key) {
            return Ok(());
        }
        let (services, pods, endpoints) = (&self.services, &self.pods, &self.endpoints);
        let (ns, name) = services.split(key);
        let (ns, name) = (ns.to_string(), name.to_string());
        let current = endpoints.get(&endpoints.key(&ns, &name)).cloned();
        let Some(svc) = services.get(key).cloned() else {
            self.triggers.forget(key);
            if current.is_some() {
                CONTROLLER_MANAGER
                    .delete(state, "", "endpoints", &ns, &name, None, None, None)
                    .await?;
                self.expect.wait_for_store(state, key).await;
            }
            return Ok(());
        };
        if service_selector(&svc).is_none() {
            return Ok(());
        }
        let selected = selected_pods(pods, &svc);
        let trigger = self.triggers.compute(key, &svc, &selected);
        let mut subsets = subsets_for(&svc, &selected);

        let mut labels = labels_of(&svc);
        labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
        if service_ip_set(&svc) {
            labels.remove(HEADLESS_LABEL);
        } else {
            labels.insert(HEADLESS_LABEL.into(), String::new());
        }
        let labels = labels_json(&labels);

        if let Some(cur) = &current {
            let total: usize = subsets
                .iter()
                .map(|s| count(s, "addresses") + count(s, "notReadyAddresses"))
                .sum();
            let capacity_ok = total <= MAX_CAPACITY
                && cur["metadata"]["annotations"][OVER_CAPACITY_ANNOTATION].is_null();
            let cur_labels = if cur["metadata"]["labels"].is_object() {
                cur["metadata"]["labels"].clone()
            } else {
                json!({})
            };
            if comparable(&cur["subsets"]) == comparable(&Value::Array(subsets.clone()))
                && cur_labels == labels
                && capacity_ok
            {
                return Ok(());
            }
        }
        let truncated = truncate(&mut subsets);
        let trigger = trigger.map(stamp);
        let apply = |obj: &mut Value| {
            obj["metadata"]["labels"] = labels.clone();
            set_annotation(obj, TRIGGER_TIME_ANNOTATION, trigger.as_deref());
            set_annotation(
                obj,
                OVER_CAPACITY_ANNOTATION,
                truncated.then_some("truncated"),
            );
            match obj.as_object_mut() {
                Some(m) if subsets.is_empty() => {
                    m.remove("subsets");
                }
                Some(m) => {
                    m.insert("subsets".into(), Value::Array(subsets.clone()));
                }
                None => {}
            }
        };
        match current {
            None => {
                let mut obj = json!({
                    "apiVersion": "v1",
                    "kind": "Endpoints",
                    "metadata": {"name": name, "namespace": ns},
                });
                apply(&mut obj);
                CONTROLLER_MANAGER
                    .create(state, "", "endpoints", &ns, obj)
                    .await?;
            }
            Some(_) => {
                CONTROLLER_MANAGER
                    .update(state, "", "endpoints", &ns, &name, "", None, |obj| {
                        let before = obj.clone();
                        apply(obj);
                        *obj != before
                    })
                    .await?;
            }
        }
        self.expect.wait_for_store(state, key).await;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pod(name: &str, ip: &str, ready: bool) -> Arc<Value> {
        Arc::new(json!({
            "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"), "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]}]},
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }, "lastTransitionTime": "2024-01-01T00:00:00Z"}]},
        }))
    }

    fn service(ports: Value) -> Value {
        json!({"metadata": {"name": "web", "namespace": "ns", "creationTimestamp": "2023-01-01T00:00:00Z"},
            "spec": {"selector": {"app": "web"}, "clusterIP": "10.0.0.10", "ipFamilies": ["IPv4"], "ports": ports}})
    }

    #[test]
    fn subsets_group_ready_and_not_ready_addresses_by_ports() {
        let svc = service(json!([
            {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"},
            {"name": "admin", "port": 81, "targetPort": 9000, "protocol": "TCP"},
        ]));
        let (a, b, c) = (
            pod("a", "10.0.0.2", true),
            pod("b", "10.0.0.1", false),
            pod("c", "10.0.0.3", true),
        );
        let mut no_http = (*c).clone();
        no_http["spec"]["containers"][0]["ports"] = json!([]);
        let c = Arc::new(no_http);
        // a and b offer both ports: one subset, b not ready.
        let subsets = subsets_for(&svc, &[&a, &b]);
        assert_eq!(subsets.len(), 1, "{subsets:#?}");
        assert_eq!(subsets[0]["addresses"][0]["ip"], "10.0.0.2");
        assert_eq!(subsets[0]["notReadyAddresses"][0]["ip"], "10.0.0.1");
        assert_eq!(subsets[0]["ports"][0]["name"], "admin");
        assert_eq!(subsets[0]["ports"][1]["port"], 8080);
        // c has no `http` port: the ports' address sets differ, one subset each.
        let subsets = subsets_for(&svc, &[&a, &b, &c]);
        assert_eq!(subsets.len(), 2, "{subsets:#?}");
        let admin = subsets
            .iter()
            .find(|s| s["ports"][0]["name"] == "admin")
            .unwrap();
        assert_eq!(count(admin, "addresses"), 2);
        assert_eq!(admin["addresses"][1]["targetRef"]["name"], "c");
        assert_eq!(admin["ports"][0]["port"], 9000);
        let http = subsets
            .iter()
            .find(|s| s["ports"][0]["name"] == "http")
            .unwrap();
        assert_eq!(count(http, "addresses"), 1);
        assert_eq!(count(http, "notReadyAddresses"), 1);
    }

    #[test]
    fn truncation_keeps_ready_addresses_first() {
        let addrs = |n: usize| -> Value {
            Value::Array(
                (0..n)
                    .map(|i| json!({"ip": format!("10.1.{}.{}", i / 256, i % 256)}))
                    .collect(),
            )
        };
        let mut subsets = vec![
            json!({"addresses": addrs(600), "notReadyAddresses": addrs(300)}),
            json!({"addresses": addrs(200), "notReadyAddresses": addrs(300)}),
        ];
        assert!(truncate(&mut subsets));
        let total: usize = subsets
            .iter()
            .map(|s| count(s, "addresses") + count(s, "notReadyAddresses"))
            .sum();
        assert_eq!(total, MAX_CAPACITY);
        assert_eq!(count(&subsets[0], "addresses"), 600);
        assert_eq!(count(&subsets[1], "addresses"), 200);
        assert_eq!(count(&subsets[0], "notReadyAddresses"), 100);
        assert_eq!(count(&subsets[1], "notReadyAddresses"), 100);
        let mut small = vec![json!({"addresses": addrs(3)})];
        assert!(!truncate(&mut small));
    }

    #[test]
    fn trigger_time_is_the_earliest_change_since_the_last_sync() {
        let svc = service(json!([]));
        let mut t = TriggerTimes::default();
        let a = pod("a", "10.0.0.1", true);
        let first = t.compute("k", &svc, &[&a]).unwrap();
        assert_eq!(stamp(first), "2023-01-01T00:00:00Z");
        assert_eq!(t.compute("k", &svc, &[&a]), None);
        let mut b = (*pod("b", "10.0.0.2", true)).clone();
        b["status"]["conditions"][0]["lastTransitionTime"] = json!("2024-02-01T00:00:00Z");
        let b = Arc::new(b);
        let next = t.compute("k", &svc, &[&a, &b]).unwrap();
        assert_eq!(stamp(next), "2024-02-01T00:00:00Z");
    }

    #[test]
    fn named_ports_match_protocol_and_sidecars() {
        let p = json!({"spec": {
            "containers": [{"ports": [{"name": "dns", "containerPort": 53, "protocol": "UDP"}]}],
            "initContainers": [{"restartPolicy": "Always", "ports": [{"name": "proxy", "containerPort": 15001}]},
                               {"ports": [{"name": "init", "containerPort": 1}]}],
        }});
        assert_eq!(
            find_port(&p, &json!({"targetPort": "dns", "protocol": "UDP"})),
            Some(53)
        );
        assert_eq!(
            find_port(&p, &json!({"targetPort": "dns", "protocol": "TCP"})),
            None
        );
        assert_eq!(find_port(&p, &json!({"targetPort": "proxy"})), Some(15001));
        assert_eq!(find_port(&p, &json!({"targetPort": "init"})), None);
        assert_eq!(find_port(&p, &json!({"targetPort": 7})), Some(7));
    }
}
