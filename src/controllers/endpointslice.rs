//! A Service's EndpointSlices (kube-controller-manager's `endpointslice` controller and the
//! reconciler of `k8s.io/endpointslice`).
//!
//! For every Service with a selector (not ExternalName), discovery.k8s.io/v1 EndpointSlices
//! named `<service>-<random>` (generateName), labelled with the Service's labels plus
//! `kubernetes.io/service-name`, `endpointslice.kubernetes.io/managed-by:
//! endpointslice-controller.k8s.io` (and `service.kubernetes.io/headless` without a cluster
//! IP), controlled by the Service (ownerReference, so the garbage collector removes them with
//! it), one address type per IP family of the Service. Each selected pod that has an IP of the
//! family and is not finished is an endpoint: its addresses, conditions (`ready`: ready and not
//! terminating, or always with `publishNotReadyAddresses`; `serving`: ready; `terminating`:
//! being deleted), `nodeName`, `zone` (its node's `topology.kubernetes.io/zone`), `hostname`
//! (as for Endpoints) and `targetRef`. Pods whose node does not exist are skipped (unless
//! `publishNotReadyAddresses`) until it does. Endpoints with the same resolved ports share
//! slices of at most 100 endpoints, filled as kube's reconciler fills them: existing slices keep
//! their endpoints and are updated in place, slices emptied are deleted (or reused for a slice
//! that would be created), leftovers go to the slice they fill best, then to new slices. A
//! Service with no endpoints keeps one placeholder slice (no endpoints, no ports). Created and
//! updated slices carry `endpoints.kubernetes.io/last-change-trigger-time`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::endpoints::{
    find_port, hostname_for, is_ipv6, labels_json, pod_in_endpoints, pod_ips, protocol_of,
    selected_pods, service_ip_set, service_selector, services_for_pod_change, set_annotation,
    TriggerTimes, HEADLESS_LABEL, TRIGGER_TIME_ANNOTATION,
};
use super::workload::{
    controller_ref, is_ready, stamp, uid_of, Cache, Expectations, CONTROLLER_MANAGER,
};
use super::{Controller, Interest, Msg, Queue, Reconciler};
use crate::objects::labels_of;
use crate::registry::store::is_deleting;
use crate::registry::Backend;
use crate::status::ApiResult;

/// The label naming a slice's Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The label naming who manages a slice.
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// This controller's value for it.
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";
/// The node label giving an endpoint's zone.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
/// kube-controller-manager's `--max-endpoints-per-slice` default.
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;

const GROUP: &str = "discovery.k8s.io";
const RESOURCE: &str = "endpointslices";

fn is_reserved(label: &str) -> bool {
    matches!(
        label,
        SERVICE_NAME_LABEL | MANAGED_BY_LABEL | HEADLESS_LABEL
    )
}

/// The labels without the reserved ones.
fn plain_labels(obj: &Value) -> BTreeMap<String, String> {
    let mut l = labels_of(obj);
    l.retain(|k, _| !is_reserved(k));
    l
}

/// The labels of the Service's slices (kube's setEndpointSliceLabels).
fn slice_labels(svc: &Value) -> Value {
    let mut l = plain_labels(svc);
    if !service_ip_set(svc) {
        l.insert(HEADLESS_LABEL.into(), String::new());
    }
    l.insert(
        SERVICE_NAME_LABEL.into(),
        svc["metadata"]["name"].as_str().unwrap_or_default().into(),
    );
    l.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
    labels_json(&l)
}

/// The address types of a Service (kube's getAddressTypesForService).
fn address_types(svc: &Value) -> BTreeSet<&'static str> {
    let mut out = BTreeSet::new();
    for f in svc["spec"]["ipFamilies"].as_array().into_iter().flatten() {
        match f.as_str() {
            Some("IPv4") => {
                out.insert("IPv4");
            }
            Some("IPv6") => {
                out.insert("IPv6");
            }
            _ => {}
        }
    }
    if !out.is_empty() {
        return out;
    }
    if service_ip_set(svc) {
        let v6 = svc["spec"]["clusterIP"].as_str().is_some_and(is_ipv6);
        out.insert(if v6 { "IPv6" } else { "IPv4" });
    } else {
        out.extend(["IPv4", "IPv6"]);
    }
    out
}

/// A port set's identity, whatever the order (kube's PortMapKey).
fn ports_key(ports: &Value) -> String {
    let mut keys: Vec<String> = ports
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            format!(
                "{}/{}/{}/{}",
                p["name"].as_str().unwrap_or_default(),
                p["port"].as_i64().unwrap_or(0),
                protocol_of(p),
                p["appProtocol"].as_str().unwrap_or_default()
            )
        })
        .collect();
    keys.sort();
    keys.join(",")
}

/// An endpoint's identity: its pod, hostname and addresses (kube's endpoint hash).
fn endpoint_key(ep: &Value) -> String {
    let mut addrs: Vec<&str> = ep["addresses"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    addrs.sort_unstable();
    format!(
        "{}/{}|{}|{}",
        ep["targetRef"]["namespace"].as_str().unwrap_or_default(),
        ep["targetRef"]["name"].as_str().unwrap_or_default(),
        ep["hostname"].as_str().unwrap_or_default(),
        addrs.join(",")
    )
}

/// A value without null members (as compared with what the store holds).
fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// A list as kube stores it: an empty one is `null` (the fields have no `omitempty`, and a
/// list sent empty comes back nil from protobuf storage).
fn go_list(items: &[Value]) -> Value {
    if items.is_empty() {
        Value::Null
    } else {
        Value::Array(items.to_vec())
    }
}

/// The ports a pod serves for the Service (kube's getEndpointPorts).
fn endpoint_ports(svc: &Value, pod: &Value) -> Value {
    let mut out = Vec::new();
    for sp in svc["spec"]["ports"].as_array().into_iter().flatten() {
        let Some(port) = find_port(pod, sp) else {
            continue;
        };
        let mut p = Map::new();
        p.insert(
            "name".into(),
            json!(sp["name"].as_str().unwrap_or_default()),
        );
        p.insert("protocol".into(), json!(protocol_of(sp)));
        p.insert("port".into(), json!(port));
        if let Some(app) = sp["appProtocol"].as_str() {
            p.insert("appProtocol".into(), json!(app));
        }
        out.push(Value::Object(p));
    }
    Value::Array(out)
}

/// The endpoint of a pod (kube's podToEndpoint).
fn pod_endpoint(pod: &Value, node: Option<&Value>, svc: &Value, v6: bool) -> Value {
    let serving = is_ready(pod);
    let terminating = is_deleting(pod);
    let ready = svc["spec"]["publishNotReadyAddresses"] == true || (serving && !terminating);
    let addresses: Vec<&str> = pod_ips(pod)
        .into_iter()
        .filter(|ip| is_ipv6(ip) == v6)
        .collect();
    let meta = &pod["metadata"];
    let mut ep = Map::new();
    ep.insert("addresses".into(), json!(addresses));
    ep.insert(
        "conditions".into(),
        json!({"ready": ready, "serving": serving, "terminating": terminating}),
    );
    if let Some(h) = hostname_for(pod, svc) {
        ep.insert("hostname".into(), json!(h));
    }
    ep.insert(
        "targetRef".into(),
        json!({"kind": "Pod", "namespace": meta["namespace"], "name": meta["name"], "uid": meta["uid"]}),
    );
    if let Some(n) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
        ep.insert("nodeName".into(), json!(n));
    }
    if let Some(zone) = node
        .and_then(|n| n["metadata"]["labels"][ZONE_LABEL].as_str())
        .filter(|z| !z.is_empty())
    {
        ep.insert("zone".into(), json!(zone));
    }
    Value::Object(ep)
}

/// A slice as the reconciler plans it.
#[derive(Clone)]
struct Draft {
    /// None: to be created.
    name: Option<String>,
    uid: String,
    address_type: &'static str,
    ports: Value,
    endpoints: Vec<Value>,
    labels: Value,
}

impl Draft {
    fn from_existing(slice: &Value, address_type: &'static str) -> Draft {
        Draft {
            name: slice["metadata"]["name"].as_str().map(str::to_string),
            uid: uid_of(slice).to_string(),
            address_type,
            ports: if slice["ports"].is_array() {
                slice["ports"].clone()
            } else {
                json!([])
            },
            endpoints: slice["endpoints"].as_array().cloned().unwrap_or_default(),
            labels: slice["metadata"]["labels"].clone(),
        }
    }

    fn new(svc: &Value, address_type: &'static str, ports: &Value) -> Draft {
        Draft {
            name: None,
            uid: String::new(),
            address_type,
            ports: ports.clone(),
            endpoints: Vec::new(),
            labels: slice_labels(svc),
        }
    }
}

/// What one sync writes.
#[derive(Default)]
struct Plan {
    create: Vec<Draft>,
    update: Vec<Draft>,
    delete: Vec<Draft>,
}

/// The desired endpoints of one port set.
struct Group {
    ports: Value,
    endpoints: BTreeMap<String, Value>,
}

/// kube's reconcileByPortMapping: the slices of one port set brought to the desired endpoints.
fn by_port_mapping(
    svc: &Value,
    existing: &[Draft],
    mut desired: BTreeMap<String, Value>,
    ports: &Value,
    address_type: &'static str,
    max: usize,
    plan: &mut Plan,
) {
    let svc_plain = plain_labels(svc);
    let mut unchanged: Vec<Draft> = Vec::new();
    let mut update: Vec<Draft> = Vec::new();
    for slice in existing {
        let mut kept = Vec::new();
        let mut changed = false;
        for ep in &slice.endpoints {
            if let Some(want) = desired.remove(&endpoint_key(ep)) {
                if without_nulls(&want) != without_nulls(ep) {
                    changed = true;
                }
                kept.push(want);
            }
        }
        let labels_changed =
            plain_labels(&json!({"metadata": {"labels": slice.labels}})) != svc_plain;
        if changed || kept.len() != slice.endpoints.len() {
            if kept.is_empty() {
                plan.delete.push(slice.clone());
            } else {
                let mut d = slice.clone();
                d.endpoints = kept;
                d.labels = slice_labels(svc);
                update.push(d);
            }
        } else if labels_changed {
            let mut d = slice.clone();
            d.labels = slice_labels(svc);
            update.push(d);
        } else {
            unchanged.push(slice.clone());
        }
    }
    // Fill the slices being updated, fullest first.
    if !desired.is_empty() {
        update.sort_by_key(|d| std::cmp::Reverse(d.endpoints.len()));
        for d in &mut update {
            while d.endpoints.len() < max {
                let Some((_, ep)) = desired.pop_first() else {
                    break;
                };
                d.endpoints.push(ep);
            }
        }
    }
    // Then the unchanged slice the rest fills best, then new slices.
    while !desired.is_empty() {
        let mut fill = None;
        if desired.len() < max {
            let mut closest = max;
            for (i, s) in unchanged.iter().enumerate() {
                let room = max.checked_sub(desired.len() + s.endpoints.len());
                if let Some(diff) = room.filter(|d| *d < closest) {
                    closest = diff;
                    fill = Some(i);
                }
            }
        }
        let mut d = match fill {
            Some(i) => unchanged.remove(i),
            None => Draft::new(svc, address_type, ports),
        };
        while d.endpoints.len() < max {
            let Some((_, ep)) = desired.pop_first() else {
                break;
            };
            d.endpoints.push(ep);
        }
        if d.name.is_some() {
            update.push(d);
        } else {
            plan.create.push(d);
        }
    }
    plan.update.extend(update);
}

/// Is `slice` the placeholder this Service would get?
fn is_placeholder(slice: &Draft, owner: &Value, svc: &Value, existing: &Value) -> bool {
    slice.endpoints.is_empty()
        && slice.ports.as_array().is_none_or(Vec::is_empty)
        && labels_of(&json!({"metadata": {"labels": slice.labels}}))
            == labels_of(&json!({"metadata": {"labels": slice_labels(svc)}}))
        && existing["metadata"]["ownerReferences"] == json!([owner])
}

/// The EndpointSlice controller.
pub struct EndpointSliceController {
    services: Cache,
    pods: Cache,
    slices: Cache,
    nodes: Cache,
    expect: Expectations,
    triggers: TriggerTimes,
    max_per_slice: usize,
}

impl Default for EndpointSliceController {
    fn default() -> Self {
        EndpointSliceController::new(MAX_ENDPOINTS_PER_SLICE)
    }
}

impl EndpointSliceController {
    /// At most `max_per_slice` endpoints per slice (`--max-endpoints-per-slice`).
    pub fn new(max_per_slice: usize) -> Self {
        EndpointSliceController {
            services: Cache::new("", "services"),
            pods: Cache::new("", "pods"),
            slices: Cache::new(GROUP, RESOURCE),
            nodes: Cache::new("", "nodes"),
            expect: Expectations::default(),
            triggers: TriggerTimes::default(),
            max_per_slice: max_per_slice.max(1),
        }
    }

    /// The slices this controller manages for the Service `ns/name`, not being deleted.
    fn existing(&self, ns: &str, name: &str) -> Vec<Arc<Value>> {
        self.slices
            .in_namespace(ns)
            .filter(|(_, s)| {
                let l = &s["metadata"]["labels"];
                l[SERVICE_NAME_LABEL] == name && l[MANAGED_BY_LABEL] == MANAGED_BY
            })
            .filter(|(_, s)| !is_deleting(s))
            .map(|(_, s)| s.clone())
            .collect()
    }

    /// What to write for one Service.
    fn plan(&self, svc: &Value, existing: &[Arc<Value>]) -> Plan {
        let svc_uid = uid_of(svc);
        let owner = controller_ref(svc, "v1", "Service");
        let publish = svc["spec"]["publishNotReadyAddresses"] == true;
        let types = address_types(svc);
        let pods = selected_pods(&self.pods, svc);
        let mut plan = Plan::default();
        let mut by_type: BTreeMap<&'static str, Vec<&Arc<Value>>> = BTreeMap::new();
        for s in existing {
            match types.iter().find(|t| s["addressType"] == **t) {
                Some(t) => by_type.entry(t).or_default().push(s),
                None => plan.delete.push(Draft::from_existing(s, "IPv4")),
            }
        }
        for &ty in &types {
            let v6 = ty == "IPv6";
            let slices = by_type.remove(ty).unwrap_or_default();
            let mut type_plan = Plan::default();
            let mut owned: BTreeMap<String, Vec<Draft>> = BTreeMap::new();
            for s in &slices {
                let owned_here = s["metadata"]["ownerReferences"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|o| {
                        o["uid"] == svc_uid && o["kind"] == "Service" && o["apiVersion"] == "v1"
                    });
                let d = Draft::from_existing(s, ty);
                if owned_here {
                    owned.entry(ports_key(&d.ports)).or_default().push(d);
                } else {
                    type_plan.delete.push(d);
                }
            }
            let mut desired: BTreeMap<String, Group> = BTreeMap::new();
            for pod in &pods {
                if !pod_in_endpoints(pod, true) {
                    continue;
                }
                let node_name = pod["spec"]["nodeName"].as_str().unwrap_or_default();
                let node = self.nodes.get(&self.nodes.key("", node_name));
                if node.is_none() && !publish {
                    continue;
                }
                let ep = pod_endpoint(pod, node.map(|n| &**n), svc, v6);
                if ep["addresses"].as_array().is_none_or(Vec::is_empty) {
                    continue;
                }
                let ports = endpoint_ports(svc, pod);
                let group = desired.entry(ports_key(&ports)).or_insert_with(|| Group {
                    ports,
                    endpoints: BTreeMap::new(),
                });
                group.endpoints.insert(endpoint_key(&ep), ep);
            }
            for (pk, group) in desired.iter() {
                let current = owned.get(pk).map(Vec::as_slice).unwrap_or_default();
                by_port_mapping(
                    svc,
                    current,
                    group.endpoints.clone(),
                    &group.ports,
                    ty,
                    self.max_per_slice,
                    &mut type_plan,
                );
            }
            for (pk, drafts) in owned {
                if !desired.contains_key(&pk) {
                    type_plan.delete.extend(drafts);
                }
            }
            if slices.len() == type_plan.delete.len() && type_plan.create.is_empty() {
                let placeholder = Draft::new(svc, ty, &json!([]));
                let keep = type_plan.delete.len() == 1
                    && slices
                        .iter()
                        .find(|s| uid_of(s) == type_plan.delete[0].uid)
                        .is_some_and(|s| is_placeholder(&type_plan.delete[0], &owner, svc, s));
                if keep {
                    type_plan.delete.clear();
                } else {
                    type_plan.create.push(placeholder);
                }
            }
            // kube's finalize: a slice to create takes the place of one to delete.
            let mut i = 0;
            while i < type_plan.delete.len() && !type_plan.create.is_empty() {
                let victim = &type_plan.delete[i];
                let owned_victim = slices.iter().any(|s| {
                    uid_of(s) == victim.uid
                        && s["metadata"]["ownerReferences"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .any(|o| o["uid"] == svc_uid && o["kind"] == "Service")
                });
                if owned_victim && victim.address_type == ty {
                    let victim = type_plan.delete.remove(i);
                    if let Some(mut d) = type_plan.create.pop() {
                        d.name = victim.name;
                        d.uid = victim.uid;
                        type_plan.update.push(d);
                    }
                } else {
                    i += 1;
                }
            }
            plan.create.extend(type_plan.create);
            plan.update.extend(type_plan.update);
            plan.delete.extend(type_plan.delete);
        }
        plan
    }
}

#[async_trait::async_trait]
impl Reconciler for EndpointSliceController {
    const CONTROLLER: Controller = Controller::EndpointSlice;

    fn interest(&self) -> Interest {
        Interest::caches([&self.services, &self.pods, &self.slices, &self.nodes])
    }

    fn expectations(&mut self) -> Option<&mut Expectations> {
        Some(&mut self.expect)
    }

    fn observe(&mut self, _state: &Backend, msg: &Msg, queue: &mut Queue) {
        for c in self.services.observe(msg) {
            queue.add(c.key);
        }
        let relist = matches!(msg, Msg::Reset { .. });
        for c in self.pods.observe(msg) {
            if relist {
                // Every Service is queued already.
                continue;
            }
            for k in services_for_pod_change(&self.services, c.old.as_deref(), c.new.as_deref()) {
                queue.add(k);
            }
        }
        for c in self.slices.observe(msg) {
            let (ns, _) = self.slices.split(&c.key);
            let slices = [c.old.as_deref(), c.new.as_deref()];
            let ours = slices
                .iter()
                .flatten()
                .any(|s| s["metadata"]["labels"][MANAGED_BY_LABEL] == MANAGED_BY);
            if !ours {
                continue;
            }
            for s in slices.into_iter().flatten() {
                if let Some(svc) = s["metadata"]["labels"][SERVICE_NAME_LABEL].as_str() {
                    queue.add(self.services.key(ns, svc));
                }
            }
        }
        for c in self.nodes.observe(msg) {
            if relist {
                // Every Service is queued already.
                continue;
            }
            let zone =
                |n: Option<&Arc<Value>>| n.map(|n| n["metadata"]["labels"][ZONE_LABEL].clone());
            let appeared_or_gone = c.old.is_none() != c.new.is_none();
            if !appeared_or_gone && zone(c.old.as_ref()) == zone(c.new.as_ref()) {
                continue;
            }
            let (_, node) = self.nodes.split(&c.key);
            for (_, pod) in self.pods.iter() {
                if pod["spec"]["nodeName"] != node {
                    continue;
                }
                for k in services_for_pod_change(&self.services, None, Some(pod)) {
                    queue.add(k);
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
        if !self.expect.satisfied(key) {
            return Ok(());
        }
        let Some(svc) = self.services.get(key).cloned() else {
            // The garbage collector deletes the slices with their Service.
            self.triggers.forget(key);
            return Ok(());
        };
        if service_selector(&svc).is_none() {
            return Ok(());
        }
        let (ns, name) = self.services.split(key);
        let (ns, name) = (ns.to_string(), name.to_string());
        let existing = self.existing(&ns, &name);
        let selected = selected_pods(&self.pods, &svc);
        let trigger = self.triggers.compute(key, &svc, &selected).map(stamp);
        let plan = self.plan(&svc, &existing);
        if plan.create.is_empty() && plan.update.is_empty() && plan.delete.is_empty() {
            return Ok(());
        }
        let owner = controller_ref(&svc, "v1", "Service");
        if !is_deleting(&svc) {
            for d in &plan.create {
                let mut obj = json!({
                    "apiVersion": "discovery.k8s.io/v1",
                    "kind": "EndpointSlice",
                    "metadata": {
                        "generateName": format!("{name}-"),
                        "namespace": ns,
                        "labels": d.labels,
                        "ownerReferences": [owner],
                    },
                    "addressType": d.address_type,
                    "endpoints": go_list(&d.endpoints),
                    "ports": go_list(d.ports.as_array().map(Vec::as_slice).unwrap_or_default()),
                });
                set_annotation(&mut obj, TRIGGER_TIME_ANNOTATION, trigger.as_deref());
                CONTROLLER_MANAGER
                    .create(state, GROUP, RESOURCE, &ns, obj)
                    .await?;
            }
        }
        for d in &plan.update {
            let Some(slice_name) = &d.name else {
                continue;
            };
            CONTROLLER_MANAGER
                .update(
                    state,
                    GROUP,
                    RESOURCE,
                    &ns,
                    slice_name,
                    "",
                    Some(&d.uid),
                    |obj| {
                        let before = obj.clone();
                        obj["metadata"]["labels"] = d.labels.clone();
                        obj["endpoints"] = go_list(&d.endpoints);
                        obj["ports"] =
                            go_list(d.ports.as_array().map(Vec::as_slice).unwrap_or_default());
                        set_annotation(obj, TRIGGER_TIME_ANNOTATION, trigger.as_deref());
                        *obj != before
                    },
                )
                .await?;
        }
        for d in &plan.delete {
            if let Some(slice_name) = &d.name {
                CONTROLLER_MANAGER
                    .delete(
                        state,
                        GROUP,
                        RESOURCE,
                        &ns,
                        slice_name,
                        Some(&d.uid),
                        None,
                        None,
                    )
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

    fn svc() -> Value {
        json!({"metadata": {"name": "web", "namespace": "ns", "uid": "svc-uid", "labels": {"team": "a"}},
            "spec": {"selector": {"app": "web"}, "clusterIP": "10.0.0.1", "ipFamilies": ["IPv4"],
                "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}})
    }

    fn ep(name: &str) -> Value {
        json!({"addresses": [format!("10.1.0.{}", name.len())], "targetRef": {"kind": "Pod", "namespace": "ns", "name": name},
            "conditions": {"ready": true, "serving": true, "terminating": false}})
    }

    fn desired(names: &[String]) -> BTreeMap<String, Value> {
        names
            .iter()
            .map(|n| {
                let e = ep(n);
                (endpoint_key(&e), e)
            })
            .collect()
    }

    #[test]
    fn new_endpoints_fill_slices_of_at_most_the_maximum() {
        let names: Vec<String> = (0..250).map(|i| format!("p{i:03}")).collect();
        let mut plan = Plan::default();
        let ports = json!([{"name": "http", "port": 8080, "protocol": "TCP"}]);
        by_port_mapping(&svc(), &[], desired(&names), &ports, "IPv4", 100, &mut plan);
        let sizes: Vec<usize> = plan.create.iter().map(|d| d.endpoints.len()).collect();
        assert_eq!(sizes, vec![100, 100, 50]);
        assert_eq!(plan.create[0].labels[SERVICE_NAME_LABEL], "web");
        assert_eq!(plan.create[0].labels[MANAGED_BY_LABEL], MANAGED_BY);
        assert_eq!(plan.create[0].labels["team"], "a");
    }

    #[test]
    fn existing_slices_keep_their_endpoints_and_take_leftovers() {
        let ports = json!([{"name": "http", "port": 8080, "protocol": "TCP"}]);
        let mut existing = Draft::new(&svc(), "IPv4", &ports);
        existing.name = Some("web-abc".into());
        existing.endpoints = vec![ep("a"), ep("gone")];
        let names = vec!["a".to_string(), "b".to_string()];
        let mut plan = Plan::default();
        by_port_mapping(
            &svc(),
            &[existing],
            desired(&names),
            &ports,
            "IPv4",
            100,
            &mut plan,
        );
        assert!(plan.create.is_empty() && plan.delete.is_empty());
        assert_eq!(plan.update.len(), 1);
        let names: Vec<&str> = plan.update[0]
            .endpoints
            .iter()
            .map(|e| e["targetRef"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, vec!["a", "b"]);
    }

    #[test]
    fn address_types_follow_ip_families() {
        assert_eq!(
            address_types(&svc()).into_iter().collect::<Vec<_>>(),
            vec!["IPv4"]
        );
        let dual = json!({"spec": {"ipFamilies": ["IPv6", "IPv4"], "clusterIP": "fd00::1"}});
        assert_eq!(address_types(&dual).len(), 2);
        let headless_old = json!({"spec": {"clusterIP": "None"}});
        assert_eq!(address_types(&headless_old).len(), 2);
    }
}
