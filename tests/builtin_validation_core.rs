//! Namespaces, Nodes, ServiceAccounts, PersistentVolumes, PersistentVolumeClaims and Endpoints
//! validated as kube-apiserver 1.35 validates them: for each rule, an object kube refuses,
//! refused with kube's field paths, error types, values and messages (table-driven), valid
//! objects accepted, the updates kube refuses, and what the strategies change on the way in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use http::Method;
use serde_json::{json, Value};

const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const NAME_PART_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_KEY_MSG: &str = "a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const VALID_CIDR: &str = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)";
const BAD_FINALIZER: &str =
    r#"Invalid value: "bad": name is neither a standard finalizer name nor is it fully qualified"#;

/// The causes of a 422 as `field: message` lines, or the answer when it is not a 422.
fn causes(r: &Resp) -> Result<Vec<String>, String> {
    if r.status.as_u16() != 422 {
        return Err(format!("{}: {}", r.status, r.json()));
    }
    Ok(r.invalid_causes())
}

fn lines(expected: &[String]) -> Result<Vec<String>, String> {
    Ok(expected.to_vec())
}

/// `base` with the top-level keys of `changes` replaced (a `null` removes the key).
fn with(base: &Value, changes: Value) -> Value {
    let mut out = base.clone();
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            out.as_object_mut().unwrap().remove(k);
        } else {
            out[k] = v.clone();
        }
    }
    out
}

/// The stored object, ready to be sent back as an unconditional update.
async fn fetch(h: &ServerHandle, path: &str) -> Value {
    let r = get(h, path).await;
    assert_eq!(r.status.as_u16(), 200, "{path}: {}", r.json());
    let mut obj = r.json();
    let meta = obj["metadata"].as_object_mut().unwrap();
    meta.remove("resourceVersion");
    meta.remove("managedFields");
    obj
}

async fn put_ok(h: &ServerHandle, path: &str, obj: &Value) -> Value {
    let r = put_json(h, path, obj).await;
    assert_eq!(r.status.as_u16(), 200, "{path}: {}", r.json());
    r.json()
}

/// Create each case and expect exactly its causes.
async fn refused_creates(
    h: &ServerHandle,
    collection: &str,
    cases: Vec<(&str, Value, Vec<String>)>,
) {
    for (what, obj, expected) in cases {
        let r = post_json(h, collection, &obj).await;
        assert_eq!(causes(&r), lines(&expected), "{what}");
    }
}

// ---------------------------------------------------------------------------------------------

const NAMESPACES: &str = "/api/v1/namespaces";

fn namespace(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}, "spec": spec})
}

#[tokio::test]
async fn namespaces_are_validated_as_kube_validates_them() {
    let h = server().await;
    // Accepted: the given finalizers kept with `kubernetes` added, the name label forced, the
    // status Active whatever was sent.
    let mut keeps = namespace("keeps", json!({"finalizers": ["example.com/cleanup"]}));
    keeps["metadata"]["labels"] = json!({"kubernetes.io/metadata.name": "other", "team": "a"});
    keeps["status"] =
        json!({"phase": "Terminating", "conditions": [{"type": "X", "status": "True"}]});
    let r = post_json(&h, NAMESPACES, &keeps).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    let created = r.json();
    assert_eq!(
        created["spec"]["finalizers"],
        json!(["example.com/cleanup", "kubernetes"])
    );
    assert_eq!(
        created["metadata"]["labels"],
        json!({"kubernetes.io/metadata.name": "keeps", "team": "a"})
    );
    assert_eq!(created["status"], json!({"phase": "Active"}));
    let r = post_json(
        &h,
        NAMESPACES,
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"generateName": "gen-"}}),
    )
    .await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    let generated = r.json();
    assert_eq!(
        generated["metadata"]["labels"]["kubernetes.io/metadata.name"],
        generated["metadata"]["name"]
    );
    assert_eq!(generated["spec"]["finalizers"], json!(["kubernetes"]));

    let mut bad_meta = namespace("bad-meta", json!({}));
    bad_meta["metadata"]["finalizers"] = json!(["bad"]);
    let cases = vec![
        (
            "unqualified spec finalizer",
            namespace("c1", json!({"finalizers": ["bad"]})),
            vec![format!("spec.finalizers: {BAD_FINALIZER}")],
        ),
        (
            "three-part spec finalizer",
            namespace("c2", json!({"finalizers": ["a/b/c"]})),
            vec![format!(
                r#"spec.finalizers: Invalid value: "a/b/c": {LABEL_KEY_MSG}"#
            )],
        ),
        (
            "empty name part",
            namespace("c3", json!({"finalizers": ["example.com/"]})),
            vec![
                r#"spec.finalizers: Invalid value: "example.com/": name part must be non-empty"#
                    .to_string(),
                format!(r#"spec.finalizers: Invalid value: "example.com/": {NAME_PART_MSG}"#),
            ],
        ),
        (
            "unqualified metadata finalizer",
            bad_meta,
            vec![format!("metadata.finalizers[0]: {BAD_FINALIZER}")],
        ),
        (
            "dotted name",
            namespace("a.b", json!({})),
            vec![r#"metadata.name: Invalid value: "a.b": must not contain dots"#.to_string()],
        ),
    ];
    refused_creates(&h, NAMESPACES, cases).await;

    // The main resource cannot change spec or status: what is sent there is dropped.
    let path = format!("{NAMESPACES}/keeps");
    let mut ns = fetch(&h, &path).await;
    ns["spec"]["finalizers"] = json!([]);
    ns["status"]["phase"] = json!("Terminating");
    let updated = put_ok(&h, &path, &ns).await;
    assert_eq!(
        updated["spec"]["finalizers"],
        json!(["example.com/cleanup", "kubernetes"])
    );
    assert_eq!(updated["status"]["phase"], "Active");
    // Its metadata finalizers are checked twice (object, then update).
    let mut ns = fetch(&h, &path).await;
    ns["metadata"]["finalizers"] = json!(["bad"]);
    let twice = format!("metadata.finalizers[0]: {BAD_FINALIZER}");
    assert_eq!(
        causes(&put_json(&h, &path, &ns).await),
        lines(&[twice.clone(), twice])
    );
    // /status: the phase follows deletionTimestamp.
    let mut ns = fetch(&h, &path).await;
    ns["status"]["phase"] = json!("Terminating");
    assert_eq!(
        causes(&put_json(&h, &format!("{path}/status"), &ns).await),
        lines(&[r#"status.Phase: Invalid value: "Terminating": may only be 'Active' if `deletionTimestamp` is empty"#.to_string()])
    );
    // /finalize: finalizers change freely, each checked at its index.
    let mut ns = fetch(&h, &path).await;
    ns["spec"]["finalizers"] = json!(["kubernetes", "bad"]);
    assert_eq!(
        causes(&put_json(&h, &format!("{path}/finalize"), &ns).await),
        lines(&[format!("spec.finalizers[1]: {BAD_FINALIZER}")])
    );
    ns["spec"]["finalizers"] = json!(["example.com/hold"]);
    let finalized = put_ok(&h, &format!("{path}/finalize"), &ns).await;
    assert_eq!(finalized["spec"]["finalizers"], json!(["example.com/hold"]));
    // Once deleted (held by its finalizer), the phase may only be Terminating.
    let r = send(&h, Method::DELETE, &path, "", "").await;
    assert!(r.status.is_success(), "{}", r.json());
    let mut ns = fetch(&h, &path).await;
    assert!(ns["metadata"]["deletionTimestamp"].is_string(), "{ns}");
    ns["status"]["phase"] = json!("Active");
    assert_eq!(
        causes(&put_json(&h, &format!("{path}/status"), &ns).await),
        lines(&[r#"status.Phase: Invalid value: "Active": may only be 'Terminating' if `deletionTimestamp` is not empty"#.to_string()])
    );
}

// ---------------------------------------------------------------------------------------------

const NODES: &str = "/api/v1/nodes";

fn node(name: &str, spec: Value, status: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
           "spec": spec, "status": status})
}

#[tokio::test]
async fn nodes_are_validated_as_kube_validates_them() {
    let h = server().await;
    // Accepted: podCIDR mirrored into podCIDRs, allocatable defaulted to the capacity, the
    // removed dynamic kubelet configuration dropped.
    let n1 = node(
        "n1",
        json!({"podCIDR": "10.244.0.0/24", "providerID": "kind://n1",
               "taints": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"},
                          {"key": "dedicated", "value": "db", "effect": "NoExecute"}],
               "configSource": {"configMap": {"name": "c", "namespace": "kube-system",
                                              "kubeletConfigKey": "k"}}}),
        json!({"capacity": {"cpu": "500m", "memory": "4Gi", "pods": "110"},
               "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
               "declaredFeatures": ["A", "B/c"],
               "config": {"error": "x"}}),
    );
    let r = post_json(&h, NODES, &n1).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    let created = r.json();
    assert_eq!(created["spec"]["podCIDRs"], json!(["10.244.0.0/24"]));
    assert!(created["spec"].get("configSource").is_none(), "{created}");
    assert!(created["status"].get("config").is_none(), "{created}");
    assert_eq!(
        created["status"]["allocatable"],
        created["status"]["capacity"]
    );
    let r = post_json(
        &h,
        NODES,
        &node(
            "dual",
            json!({"podCIDRs": ["10.244.1.0/24", "fd00:1::/64"]}),
            json!({}),
        ),
    )
    .await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    assert_eq!(r.json()["spec"]["podCIDR"], "10.244.1.0/24");
    let r = post_json(&h, NODES, &node("n2", json!({}), json!({}))).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());

    let taint = |t: Value| node("t", json!({"taints": [t]}), json!({}));
    let long_value = format!("{}-", "a".repeat(63));
    let mut bad_meta = node("bad-meta", json!({}), json!({}));
    bad_meta["metadata"]["finalizers"] = json!(["bad"]);
    let mut annotated_taints = node("ann-taints", json!({}), json!({}));
    annotated_taints["metadata"]["annotations"] =
        json!({"scheduler.alpha.kubernetes.io/taints": r#"[{"key":"k","effect":"Bad"}]"#});
    let mut avoid_pods = node("avoid", json!({}), json!({}));
    avoid_pods["metadata"]["annotations"] = json!({"scheduler.alpha.kubernetes.io/preferAvoidPods":
        r#"{"preferAvoidPods":[{"podSignature":{}},{"podSignature":{"podController":{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"rs","uid":"u","controller":false}}}]}"#});
    let cases = vec![
        ("taint key", taint(json!({"key": "a b", "effect": "NoSchedule"})),
         vec![format!(r#"metadata.taints[0].key: Invalid value: "a b": {NAME_PART_MSG}"#)]),
        ("taint value", taint(json!({"key": "k", "value": long_value, "effect": "NoSchedule"})),
         vec![format!(r#"metadata.taints[0].value: Invalid value: "{long_value}": must be no more than 63 bytes;{LABEL_VALUE_MSG}"#)]),
        ("taint effect missing", taint(json!({"key": "k"})),
         vec!["metadata.taints[0].effect: Required value".to_string()]),
        ("taint effect", taint(json!({"key": "k", "effect": "Sometimes"})),
         vec![r#"metadata.taints[0].effect: Unsupported value: "Sometimes": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute""#.to_string()]),
        ("duplicate taint", node("t", json!({"taints": [{"key": "k", "value": "a", "effect": "NoSchedule"},
                                                       {"key": "k", "value": "b", "effect": "NoSchedule"}]}), json!({})),
         vec![r#"metadata.taints[1]: Duplicate value: {"Key":"k","Value":"b","Effect":"NoSchedule","TimeAdded":null}: taints must be unique by key and effect pair"#.to_string()]),
        ("negative capacity (allocatable defaulted to it)", node("r", json!({}), json!({"capacity": {"cpu": "-1"}})),
         vec![r#"status.capacity.cpu: Invalid value: "-1": must be greater than or equal to 0"#.to_string(),
              r#"status.allocatable.cpu: Invalid value: "-1": must be greater than or equal to 0"#.to_string()]),
        ("fractional pods", node("r", json!({}), json!({"capacity": {"pods": "1500m"}, "allocatable": {"cpu": "1"}})),
         vec![r#"status.capacity.pods: Invalid value: "1500m": must be an integer"#.to_string()]),
        ("fractional extended resource", node("r", json!({}), json!({"capacity": {"example.com/gpu": "500m"}, "allocatable": {"cpu": "1"}})),
         vec![r#"status.capacity.example.com/gpu: Invalid value: "500m": must be an integer"#.to_string()]),
        ("negative allocatable", node("r", json!({}), json!({"allocatable": {"memory": "-1Gi"}})),
         vec![r#"status.allocatable.memory: Invalid value: "-1Gi": must be greater than or equal to 0"#.to_string()]),
        ("swap", node("r", json!({}), json!({"nodeInfo": {"swap": {"capacity": 0}}})),
         vec!["metadata.nodeSwapStatus.capacity: Invalid value: 0: must be greater than zero".to_string()]),
        ("feature name", node("r", json!({}), json!({"declaredFeatures": ["b"]})),
         vec![r#"status.declaredFeatures[0]: Invalid value: "b": invalid feature name "b": must start with an UpperCamelCase segment, with subsequent segments separated by '/' (e.g., MyFeature or MyFeature/mySubFeature), and contain only alphanumeric characters and slashes"#.to_string()]),
        ("features unsorted", node("r", json!({}), json!({"declaredFeatures": ["B", "A"]})),
         vec![r#"status.declaredFeatures[1]: Invalid value: "A": list must be sorted alphabetically"#.to_string()]),
        ("features repeated", node("r", json!({}), json!({"declaredFeatures": ["A", "A"]})),
         vec![r#"status.declaredFeatures[1]: Duplicate value: "A""#.to_string()]),
        ("pod CIDR", node("c", json!({"podCIDR": "10.0.0.0/33"}), json!({})),
         vec![format!(r#"spec.podCIDRs[0]: Invalid value: "10.0.0.0/33": {VALID_CIDR}"#)]),
        ("two IPv4 pod CIDRs", node("c", json!({"podCIDRs": ["10.0.0.0/24", "10.1.0.0/24"]}), json!({})),
         vec![r#"spec.podCIDRs: Invalid value: ["10.0.0.0/24","10.1.0.0/24"]: may specify no more than one CIDR for each IP family"#.to_string()]),
        ("three pod CIDRs", node("c", json!({"podCIDRs": ["10.0.0.0/24", "fd00::/64", "10.1.0.0/24"]}), json!({})),
         vec![r#"spec.podCIDRs: Invalid value: ["10.0.0.0/24","fd00::/64","10.1.0.0/24"]: may specify no more than one CIDR for each IP family"#.to_string()]),
        ("unparsable second pod CIDR", node("c", json!({"podCIDRs": ["10.0.0.0/24", "bad"]}), json!({})),
         vec![format!(r#"spec.podCIDRs[1]: Invalid value: "bad": {VALID_CIDR}"#),
              "spec.podCIDRs: Internal error: invalid PodCIDRs. failed to check with dual stack with error:invalid CIDR[1]: <nil> (invalid CIDR address: bad)".to_string(),
              r#"spec.podCIDRs: Invalid value: ["10.0.0.0/24","bad"]: may specify no more than one CIDR for each IP family"#.to_string()]),
        ("taints annotation", annotated_taints,
         vec![r#"metadata.annotations.scheduler.alpha.kubernetes.io/taints[0].effect: Unsupported value: "Bad": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute""#.to_string()]),
        ("avoid-pods annotation", avoid_pods,
         vec!["metadata.annotations.scheduler.alpha.kubernetes.io/preferAvoidPods[0].PodSignature: Required value".to_string(),
              "metadata.annotations.scheduler.alpha.kubernetes.io/preferAvoidPods[1].PodSignature.PodController.Controller: Invalid value: false: must point to a controller".to_string()]),
        ("metadata finalizer", bad_meta, vec![format!("metadata.finalizers[0]: {BAD_FINALIZER}")]),
    ];
    refused_creates(&h, NODES, cases).await;
    // A taints annotation that is not JSON names the annotation (the decoder's words follow).
    let mut garbled = node("garbled", json!({}), json!({}));
    garbled["metadata"]["annotations"] =
        json!({"scheduler.alpha.kubernetes.io/taints": "not json"});
    let c = causes(&post_json(&h, NODES, &garbled).await).unwrap();
    assert_eq!(c.len(), 1, "{c:?}");
    assert!(
        c[0].starts_with(
            r#"metadata.annotations: Invalid value: "scheduler.alpha.kubernetes.io/taints": "#
        ),
        "{c:?}"
    );

    // Updates of the main resource: podCIDRs and providerID only from empty, externalID never;
    // the shared checks run twice.
    let path = format!("{NODES}/n1");
    let base = fetch(&h, &path).await;
    let mut n = base.clone();
    n["spec"]["podCIDR"] = json!("10.245.0.0/24");
    n["spec"]["podCIDRs"] = json!(["10.245.0.0/24"]);
    assert_eq!(
        causes(&put_json(&h, &path, &n).await),
        lines(&[r#"spec.podCIDRs: Forbidden: node updates may not change podCIDR except from "" to valid"#.to_string()])
    );
    let mut n = base.clone();
    n["spec"]["providerID"] = json!("kind://other");
    assert_eq!(
        causes(&put_json(&h, &path, &n).await),
        lines(&[r#"spec.providerID: Forbidden: node updates may not change providerID except from "" to valid"#.to_string()])
    );
    let mut n = base.clone();
    n["spec"]["externalID"] = json!("x");
    assert_eq!(
        causes(&put_json(&h, &path, &n).await),
        lines(&["spec.externalID: Forbidden: may not be updated".to_string()])
    );
    let mut n = base.clone();
    n["spec"]["taints"] = json!([{"key": "k", "effect": "Bad"}]);
    let bad_effect = r#"metadata.taints[0].effect: Unsupported value: "Bad": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute""#.to_string();
    assert_eq!(
        causes(&put_json(&h, &path, &n).await),
        lines(&[bad_effect.clone(), bad_effect])
    );
    let mut n = base.clone();
    n["spec"]["unschedulable"] = json!(true);
    n["spec"]["taints"] = json!([{"key": "k", "effect": "NoSchedule"}]);
    n["spec"]["configSource"] =
        json!({"configMap": {"name": "c", "namespace": "kube-system", "kubeletConfigKey": "k"}});
    let updated = put_ok(&h, &path, &n).await;
    assert!(updated["spec"].get("configSource").is_none(), "{updated}");
    let n2_path = format!("{NODES}/n2");
    let mut n2 = fetch(&h, &n2_path).await;
    n2["spec"]["podCIDR"] = json!("10.246.0.0/24");
    n2["spec"]["providerID"] = json!("kind://n2");
    let updated = put_ok(&h, &n2_path, &n2).await;
    assert_eq!(updated["spec"]["podCIDRs"], json!(["10.246.0.0/24"]));

    // /status: ValidateNodeUpdate alone (its checks once), addresses without repeats.
    let status_path = format!("{path}/status");
    let mut n = fetch(&h, &path).await;
    n["status"]["capacity"]["cpu"] = json!("-1");
    assert_eq!(
        causes(&put_json(&h, &status_path, &n).await),
        lines(&[
            r#"status.capacity.cpu: Invalid value: "-1": must be greater than or equal to 0"#
                .to_string()
        ])
    );
    let mut n = fetch(&h, &path).await;
    n["status"]["addresses"] = json!([{"type": "InternalIP", "address": "10.0.0.1"},
                                      {"type": "Hostname", "address": "n1"},
                                      {"type": "InternalIP", "address": "10.0.0.1"}]);
    assert_eq!(
        causes(&put_json(&h, &status_path, &n).await),
        lines(&[
            r#"status.addresses[2]: Duplicate value: {"Type":"InternalIP","Address":"10.0.0.1"}"#
                .to_string()
        ])
    );
    let mut n = fetch(&h, &path).await;
    n["status"]["addresses"] = json!([{"type": "InternalIP", "address": "10.0.0.2"}]);
    n["status"]["config"] = json!({"error": "x"});
    let updated = put_ok(&h, &status_path, &n).await;
    assert_eq!(updated["status"]["addresses"][0]["address"], "10.0.0.2");
    assert!(updated["status"].get("config").is_none(), "{updated}");
}

// ---------------------------------------------------------------------------------------------

const SERVICE_ACCOUNTS: &str = "/api/v1/namespaces/default/serviceaccounts";

#[tokio::test]
async fn service_accounts_keep_secret_names_and_check_only_metadata() {
    let h = server().await;
    let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot"},
        "secrets": [{"name": "token", "namespace": "other", "kind": "Secret", "uid": "u",
                     "apiVersion": "v1", "resourceVersion": "7", "fieldPath": "f"},
                    {"name": "Not_A_Valid-Name!"}, {"name": "Not_A_Valid-Name!"}],
        "imagePullSecrets": [{"name": "Registry_Key"}],
        "automountServiceAccountToken": false});
    let r = post_json(&h, SERVICE_ACCOUNTS, &sa).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    let created = r.json();
    assert_eq!(
        created["secrets"],
        json!([{"name": "token"}, {"name": "Not_A_Valid-Name!"}, {"name": "Not_A_Valid-Name!"}])
    );
    assert_eq!(
        created["imagePullSecrets"],
        json!([{"name": "Registry_Key"}])
    );

    let mut bad = with(&sa, json!({"metadata": {"name": "bad"}}));
    bad["metadata"]["finalizers"] = json!(["bad"]);
    let once = format!("metadata.finalizers[0]: {BAD_FINALIZER}");
    assert_eq!(
        causes(&post_json(&h, SERVICE_ACCOUNTS, &bad).await),
        lines(std::slice::from_ref(&once))
    );

    let path = format!("{SERVICE_ACCOUNTS}/robot");
    let mut sa = fetch(&h, &path).await;
    sa["secrets"] = json!([{"name": "other", "namespace": "x", "uid": "v"}]);
    let updated = put_ok(&h, &path, &sa).await;
    assert_eq!(updated["secrets"], json!([{"name": "other"}]));
    sa["metadata"]["finalizers"] = json!(["bad"]);
    assert_eq!(
        causes(&put_json(&h, &path, &sa).await),
        lines(&[once.clone(), once])
    );
}

// ---------------------------------------------------------------------------------------------

const PVS: &str = "/api/v1/persistentvolumes";

fn pv(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name}, "spec": spec})
}

fn host_pv_spec() -> Value {
    json!({"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
           "hostPath": {"path": "/data"}})
}

fn affinity(key: &str, values: Value) -> Value {
    json!({"required": {"nodeSelectorTerms": [{"matchExpressions": [
        {"key": key, "operator": "In", "values": values}]}]}})
}

#[tokio::test]
async fn persistent_volumes_are_validated_as_kube_validates_them() {
    let h = server().await;
    let base = host_pv_spec();
    // Accepted, with kube's defaults; a create's status is Pending whatever was sent.
    let mut host = pv("host", base.clone());
    host["status"] = json!({"phase": "Bound"});
    let r = post_json(&h, PVS, &host).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    let created = r.json();
    assert_eq!(created["spec"]["persistentVolumeReclaimPolicy"], "Retain");
    assert_eq!(created["spec"]["volumeMode"], "Filesystem");
    assert_eq!(
        created["spec"]["hostPath"],
        json!({"path": "/data", "type": ""})
    );
    assert_eq!(created["status"]["phase"], "Pending");
    let local = |key: &str, value: &str| {
        with(
            &base,
            json!({"hostPath": null, "local": {"path": "/mnt/disk"},
                           "nodeAffinity": affinity(key, json!([value]))}),
        )
    };
    let mut nfs = pv(
        "nfs",
        with(
            &base,
            json!({"hostPath": null,
        "nfs": {"server": "nfs.example.com", "path": "/export"}}),
        ),
    );
    nfs["metadata"]["annotations"] = json!({"volume.beta.kubernetes.io/mount-options": "hard"});
    for obj in [
        pv("local", local("kubernetes.io/hostname", "n1")),
        pv("zone", local("failure-domain.beta.kubernetes.io/zone", "a")),
        pv(
            "csi",
            with(
                &base,
                json!({"hostPath": null, "accessModes": ["ReadWriteOncePod"],
            "csi": {"driver": "Example.COM", "volumeHandle": "h"},
            "volumeAttributesClassName": "gold"}),
            ),
        ),
        nfs,
        pv(
            "flex",
            with(&base, json!({"flexVolume": {"driver": "example/flex"}})),
        ),
    ] {
        let r = post_json(&h, PVS, &obj).await;
        assert_eq!(
            r.status.as_u16(),
            201,
            "{}: {}",
            obj["metadata"]["name"],
            r.json()
        );
    }

    let spec = |changes: Value| with(&base, changes);
    let expr = |e: Value| json!({"required": {"nodeSelectorTerms": [{"matchExpressions": [e]}]}});
    let field = |e: Value| json!({"required": {"nodeSelectorTerms": [{"matchFields": [e]}]}});
    let term = "spec.nodeAffinity.required.nodeSelectorTerms[0]";
    let mut mount_options = pv("x", base.clone());
    mount_options["metadata"]["annotations"] =
        json!({"volume.beta.kubernetes.io/mount-options": "hard"});
    let mut bad_meta = pv("x", base.clone());
    bad_meta["metadata"]["finalizers"] = json!(["bad"]);
    let cases: Vec<(&str, Value, Vec<String>)> = vec![
        ("no access modes", spec(json!({"accessModes": null})),
         vec!["spec.accessModes: Required value".into()]),
        ("access mode", spec(json!({"accessModes": ["ReadWriteSometimes"]})),
         vec![r#"spec.accessModes: Unsupported value: "ReadWriteSometimes": supported values: "ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod""#.into()]),
        ("RWOP with others", spec(json!({"accessModes": ["ReadWriteOncePod", "ReadWriteOnce"]})),
         vec!["spec.accessModes: Forbidden: may not use ReadWriteOncePod with other access modes".into()]),
        ("no capacity", spec(json!({"capacity": null})),
         vec!["spec.capacity: Required value".into(),
              r#"spec.capacity: Unsupported value: {}: supported values: "storage""#.into()]),
        ("capacity beyond storage", spec(json!({"capacity": {"storage": "1Gi", "cpu": "1"}})),
         vec![r#"spec.capacity: Unsupported value: {"cpu":"1","storage":"1Gi"}: supported values: "storage""#.into()]),
        ("negative capacity", spec(json!({"capacity": {"storage": "-1"}})),
         vec!["spec.capacity[storage]: Invalid value: -1: must be a valid resource quantity".into(),
              r#"spec.capacity[storage]: Invalid value: "-1": must be greater than zero"#.into()]),
        ("zero capacity", spec(json!({"capacity": {"storage": "0"}})),
         vec![r#"spec.capacity[storage]: Invalid value: "0": must be greater than zero"#.into()]),
        ("reclaim policy", spec(json!({"persistentVolumeReclaimPolicy": "Keep"})),
         vec![r#"spec.persistentVolumeReclaimPolicy: Unsupported value: "Keep": supported values: "Delete", "Recycle", "Retain""#.into()]),
        ("affinity without required", spec(json!({"nodeAffinity": {}})),
         vec!["spec.nodeAffinity.required: Required value: must specify required node constraints".into()]),
        ("affinity without terms", spec(json!({"nodeAffinity": {"required": {"nodeSelectorTerms": []}}})),
         vec!["spec.nodeAffinity.required.nodeSelectorTerms: Required value: must have at least one node selector term".into()]),
        ("In without values", spec(json!({"nodeAffinity": expr(json!({"key": "k", "operator": "In"}))})),
         vec![format!("{term}.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'")]),
        ("Exists with values", spec(json!({"nodeAffinity": expr(json!({"key": "k", "operator": "Exists", "values": ["a"]}))})),
         vec![format!("{term}.matchExpressions[0].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'")]),
        ("Gt with two values", spec(json!({"nodeAffinity": expr(json!({"key": "k", "operator": "Gt", "values": ["1", "2"]}))})),
         vec![format!("{term}.matchExpressions[0].values: Required value: must be specified single value when `operator` is 'Lt' or 'Gt'")]),
        ("operator, key and value", spec(json!({"nodeAffinity": expr(json!({"key": "a b", "operator": "Near", "values": ["c d"]}))})),
         vec![format!(r#"{term}.matchExpressions[0].operator: Invalid value: "Near": not a valid selector operator"#),
              format!(r#"{term}.matchExpressions[0].key: Invalid value: "a b": {NAME_PART_MSG}"#),
              format!(r#"{term}.matchExpressions[0].values[0]: Invalid value: "c d": {LABEL_VALUE_MSG}"#)]),
        ("field key", spec(json!({"nodeAffinity": field(json!({"key": "spec.nodeName", "operator": "In", "values": ["n"]}))})),
         vec![format!(r#"{term}.matchFields[0].key: Invalid value: "spec.nodeName": not a valid field selector key"#)]),
        ("field values", spec(json!({"nodeAffinity": field(json!({"key": "metadata.name", "operator": "NotIn", "values": ["a", "Bad_Name"]}))})),
         vec![format!("{term}.matchFields[0].values: Required value: must be only one value when `operator` is 'In' or 'NotIn' for node field selector"),
              format!(r#"{term}.matchFields[0].values[1]: Invalid value: "Bad_Name": {SUBDOMAIN_MSG}"#)]),
        ("field operator", spec(json!({"nodeAffinity": field(json!({"key": "metadata.name", "operator": "Exists"}))})),
         vec![format!(r#"{term}.matchFields[0].operator: Invalid value: "Exists": not a valid selector operator"#)]),
        ("no source", spec(json!({"hostPath": null})),
         vec!["spec: Required value: must specify a volume type".into()]),
        ("two sources", spec(json!({"nfs": {"server": "s", "path": "/p"}, "cephfs": {"monitors": ["m"]}})),
         vec!["spec.nfs: Forbidden: may not specify more than 1 volume type".into(),
              "spec.cephFS: Forbidden: may not specify more than 1 volume type".into()]),
        ("host path empty", spec(json!({"hostPath": {"path": ""}})),
         vec!["spec.hostPath.path: Required value".into()]),
        ("host path backsteps", spec(json!({"hostPath": {"path": "/a/../b/../c"}})),
         vec![r#"spec.hostPath.path: Invalid value: "/a/../b/../c": must not contain '..'"#.into()]),
        ("host path type", spec(json!({"hostPath": {"path": "/a", "type": "Pipe"}})),
         vec![r#"spec.hostPath.type: Unsupported value: "Pipe": supported values: "", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate", "Socket""#.into()]),
        ("local without affinity", spec(json!({"hostPath": null, "local": {"path": ""}})),
         vec!["spec.local.path: Required value".into(),
              "spec.nodeAffinity: Required value: Local volume requires node affinity".into()]),
        ("nfs", spec(json!({"hostPath": null, "nfs": {"server": "", "path": "export"}})),
         vec!["spec.nfs.server: Required value".into(),
              r#"spec.nfs.path: Invalid value: "export": must be an absolute path"#.into()]),
        ("csi empty", spec(json!({"hostPath": null, "csi": {"driver": "", "volumeHandle": ""}})),
         vec!["spec.csi.driver: Required value".into(),
              format!(r#"spec.csi.driver: Invalid value: "": {SUBDOMAIN_MSG}"#),
              "spec.csi.volumeHandle: Required value".into()]),
        ("csi driver too long", spec(json!({"hostPath": null, "csi": {"driver": "d".repeat(64), "volumeHandle": "h"}})),
         vec!["spec.csi.driver: Too long: may not be more than 63 bytes".into()]),
        ("csi secret", spec(json!({"hostPath": null, "csi": {"driver": "d", "volumeHandle": "h",
                                   "nodePublishSecretRef": {"name": "", "namespace": "Bad"}}})),
         vec!["spec.csi.nodePublishSecretRef.name: Required value".into(),
              format!(r#"spec.csi.nodePublishSecretRef.namespace: Invalid value: "Bad": {LABEL_MSG}"#)]),
        ("recycling /", spec(json!({"hostPath": {"path": "//"}, "persistentVolumeReclaimPolicy": "Recycle"})),
         vec!["spec.persistentVolumeReclaimPolicy: Forbidden: may not be 'recycle' for a hostPath mount of '/'".into()]),
        ("storage class", spec(json!({"storageClassName": "Fast_SSD"})),
         vec![format!(r#"spec.storageClassName: Invalid value: "Fast_SSD": {SUBDOMAIN_MSG}"#)]),
        ("volume mode", spec(json!({"volumeMode": "Raw"})),
         vec![r#"spec.volumeMode: Unsupported value: "Raw": supported values: "Block", "Filesystem""#.into()]),
        ("empty attributes class", spec(json!({"hostPath": null, "csi": {"driver": "d", "volumeHandle": "h"},
                                               "volumeAttributesClassName": ""})),
         vec!["spec.volumeAttributesClassName: Required value: an empty string is disallowed".into()]),
        ("attributes class without csi", spec(json!({"volumeAttributesClassName": "gold"})),
         vec!["spec.csi: Required value: has to be specified when using volumeAttributesClassName".into()]),
        ("mount options on a host path", mount_options,
         vec!["metadata.annotations.volume.beta.kubernetes.io/mount-options: Forbidden: may not specify mount options for this volume type".into()]),
        ("metadata finalizer", bad_meta, vec![format!("metadata.finalizers[0]: {BAD_FINALIZER}")]),
    ];
    let cases = cases
        .into_iter()
        .enumerate()
        .map(|(i, (what, obj, expected))| {
            let obj = if obj["kind"] == "PersistentVolume" {
                with(&obj, json!({"metadata": with(&obj["metadata"], json!({"name": format!("bad-{i}")}))}))
            } else {
                pv(&format!("bad-{i}"), obj)
            };
            (what, obj, expected)
        })
        .collect();
    refused_creates(&h, PVS, cases).await;

    // Updates: the source, volume mode and node affinity (but for beta labels) are fixed, an
    // attributes class cannot be removed; the volume's own checks run twice.
    let path = format!("{PVS}/host");
    let stored = fetch(&h, &path).await;
    let mut v = stored.clone();
    v["spec"]["hostPath"]["path"] = json!("/elsewhere");
    let c = causes(&put_json(&h, &path, &v).await).unwrap();
    assert_eq!(c.len(), 1, "{c:?}");
    assert!(
        c[0].starts_with("spec.persistentvolumesource: Forbidden: spec.persistentvolumesource is immutable after creation\n"),
        "{c:?}"
    );
    let mut v = stored.clone();
    v["spec"]["volumeMode"] = json!("Block");
    assert_eq!(
        causes(&put_json(&h, &path, &v).await),
        lines(&[r#"volumeMode: Invalid value: "Block": field is immutable"#.to_string()])
    );
    let mut v = stored.clone();
    v["spec"]["storageClassName"] = json!("Bad_Class");
    let bad_class =
        format!(r#"spec.storageClassName: Invalid value: "Bad_Class": {SUBDOMAIN_MSG}"#);
    assert_eq!(
        causes(&put_json(&h, &path, &v).await),
        lines(&[bad_class.clone(), bad_class])
    );
    let mut v = stored.clone();
    v["spec"]["capacity"]["storage"] = json!("2Gi");
    v["spec"]["persistentVolumeReclaimPolicy"] = json!("Delete");
    v["spec"]["storageClassName"] = json!("slow");
    v["spec"]["mountOptions"] = json!(["ro"]);
    v["spec"]["claimRef"] = json!({"namespace": "default", "name": "c"});
    v["spec"]["nodeAffinity"] = affinity("kubernetes.io/hostname", json!(["n1"]));
    put_ok(&h, &path, &v).await;

    let local_path = format!("{PVS}/local");
    let mut v = fetch(&h, &local_path).await;
    v["spec"]["nodeAffinity"] = affinity("kubernetes.io/hostname", json!(["n2"]));
    assert_eq!(
        causes(&put_json(&h, &local_path, &v).await),
        lines(&[r#"nodeAffinity: Invalid value: {"Required":{"NodeSelectorTerms":[{"MatchExpressions":[{"Key":"kubernetes.io/hostname","Operator":"In","Values":["n2"]}],"MatchFields":null}]}}: field is immutable, except for updating from beta label to GA"#.to_string()])
    );
    let zone_path = format!("{PVS}/zone");
    let mut v = fetch(&h, &zone_path).await;
    v["spec"]["nodeAffinity"] = affinity("topology.kubernetes.io/zone", json!(["a"]));
    put_ok(&h, &zone_path, &v).await;

    let csi_path = format!("{PVS}/csi");
    let stored = fetch(&h, &csi_path).await;
    let mut v = stored.clone();
    v["spec"]
        .as_object_mut()
        .unwrap()
        .remove("volumeAttributesClassName");
    assert_eq!(
        causes(&put_json(&h, &csi_path, &v).await),
        lines(&["spec.volumeAttributesClassName: Forbidden: update from non-nil value to nil is forbidden".to_string()])
    );
    let mut v = stored.clone();
    v["spec"]["csi"]["controllerExpandSecretRef"] =
        json!({"name": "s", "namespace": "kube-system"});
    v["spec"]["volumeAttributesClassName"] = json!("silver");
    put_ok(&h, &csi_path, &v).await;

    // /status writes the phase; the main resource keeps it.
    let mut v = fetch(&h, &path).await;
    v["status"]["phase"] = json!("Available");
    put_ok(&h, &format!("{path}/status"), &v).await;
    let mut v = fetch(&h, &path).await;
    v["status"]["phase"] = json!("Failed");
    let updated = put_ok(&h, &path, &v).await;
    assert_eq!(updated["status"]["phase"], "Available");
}

// ---------------------------------------------------------------------------------------------

const PVCS: &str = "/api/v1/namespaces/default/persistentvolumeclaims";

fn pvc(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
           "spec": spec})
}

fn claim_spec() -> Value {
    json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}})
}

const SPEC_IMMUTABLE: &str = "spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n";

#[tokio::test]
async fn persistent_volume_claims_are_validated_as_kube_validates_them() {
    let h = server().await;
    let base = claim_spec();
    let spec = |changes: Value| with(&base, changes);
    let create = |obj: Value| {
        let h = &h;
        async move {
            let r = post_json(h, PVCS, &obj).await;
            assert_eq!(
                r.status.as_u16(),
                201,
                "{}: {}",
                obj["metadata"]["name"],
                r.json()
            );
            r.json()
        }
    };
    // Accepted, with kube's defaults, data sources dropped or mirrored as kube's strategy does.
    let mut plain = pvc("plain", base.clone());
    plain["status"] = json!({"phase": "Bound"});
    let created = create(plain).await;
    assert_eq!(created["spec"]["volumeMode"], "Filesystem");
    assert_eq!(created["status"], json!({"phase": "Pending"}));
    let created = create(pvc(
        "from-claim",
        spec(json!({"dataSource": {"kind": "PersistentVolumeClaim", "name": "src"}})),
    ))
    .await;
    assert_eq!(
        created["spec"]["dataSourceRef"],
        json!({"kind": "PersistentVolumeClaim", "name": "src"})
    );
    let snapshot =
        json!({"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": "snap"});
    let created = create(pvc("from-ref", spec(json!({"dataSourceRef": snapshot})))).await;
    assert_eq!(created["spec"]["dataSource"], snapshot);
    let created = create(pvc(
        "dropped",
        spec(json!({"dataSource": {"apiGroup": "example.com", "kind": "Foo", "name": "f"}})),
    ))
    .await;
    assert!(
        created["spec"].get("dataSource").is_none()
            && created["spec"].get("dataSourceRef").is_none(),
        "{created}"
    );
    let created = create(pvc("cross-namespace", spec(json!({"dataSourceRef": {"kind": "PersistentVolumeClaim", "name": "x", "namespace": "other"}})))).await;
    assert!(
        created["spec"].get("dataSource").is_none()
            && created["spec"].get("dataSourceRef").is_none(),
        "{created}"
    );
    let created = create(pvc(
        "custom-ref",
        spec(json!({"dataSourceRef": {"apiGroup": "example.com", "kind": "Foo", "name": "f"}})),
    ))
    .await;
    assert_eq!(
        created["spec"]["dataSource"],
        json!({"apiGroup": "example.com", "kind": "Foo", "name": "f"})
    );
    create(pvc(
        "empty-classes",
        spec(json!({"storageClassName": "", "volumeAttributesClassName": ""})),
    ))
    .await;
    create(pvc("plain2", base.clone())).await;
    create(pvc("bound", base.clone())).await;
    create(pvc(
        "vac",
        spec(json!({"volumeAttributesClassName": "gold"})),
    ))
    .await;
    for name in ["legacy-class", "legacy-class2"] {
        let mut legacy = pvc(name, base.clone());
        legacy["metadata"]["annotations"] =
            json!({"volume.beta.kubernetes.io/storage-class": "fast"});
        create(legacy).await;
    }

    let sel = |e: Value| json!({"selector": {"matchExpressions": [e]}});
    let cases: Vec<(&str, Value, Vec<String>)> = vec![
        ("no access modes", spec(json!({"accessModes": null})),
         vec!["spec.accessModes: Required value: at least 1 access mode is required".into()]),
        ("In without values", spec(sel(json!({"key": "tier", "operator": "In"}))),
         vec!["spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'".into()]),
        ("selector operator and value", spec(sel(json!({"key": "tier", "operator": "Near", "values": ["a b"]}))),
         vec![r#"spec.selector.matchExpressions[0].operator: Invalid value: "Near": not a valid selector operator"#.into(),
              format!(r#"spec.selector.matchExpressions[0].values[0]: Invalid value: "a b": {LABEL_VALUE_MSG}"#)]),
        ("selector labels", spec(json!({"selector": {"matchLabels": {"a b": "c"}}})),
         vec![format!(r#"spec.selector.matchLabels: Invalid value: "a b": {NAME_PART_MSG}"#)]),
        ("access mode", spec(json!({"accessModes": ["ReadWriteSometimes"]})),
         vec![r#"spec.accessModes: Unsupported value: "ReadWriteSometimes": supported values: "ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod""#.into()]),
        ("RWOP with others", spec(json!({"accessModes": ["ReadWriteOncePod", "ReadOnlyMany"]})),
         vec!["spec.accessModes: Forbidden: may not use ReadWriteOncePod with other access modes".into()]),
        ("no storage", spec(json!({"resources": {}})),
         vec!["spec.resources[storage]: Required value".into()]),
        ("zero storage", spec(json!({"resources": {"requests": {"storage": "0"}}})),
         vec![r#"spec.resources[storage]: Invalid value: "0": must be greater than zero"#.into()]),
        ("storage class", spec(json!({"storageClassName": "Fast_SSD"})),
         vec![format!(r#"spec.storageClassName: Invalid value: "Fast_SSD": {SUBDOMAIN_MSG}"#)]),
        ("volume mode", spec(json!({"volumeMode": "Raw"})),
         vec![r#"spec.volumeMode: Unsupported value: "Raw": supported values: "Block", "Filesystem""#.into()]),
        ("claim source without name", spec(json!({"dataSource": {"kind": "PersistentVolumeClaim"}})),
         vec!["spec.dataSource.name: Required value".into(), "spec.dataSourceRef.name: Required value".into()]),
        ("core kind other than a claim", spec(json!({"dataSourceRef": {"kind": "Foo", "name": "f"}})),
         vec![r#"spec.dataSource: Invalid value: "Foo": must be 'PersistentVolumeClaim' when referencing the default apiGroup"#.into(),
              r#"spec.dataSourceRef: Invalid value: "Foo": must be 'PersistentVolumeClaim' when referencing the default apiGroup"#.into()]),
        ("api group", spec(json!({"dataSourceRef": {"apiGroup": "Bad_Group", "kind": "Foo", "name": "f"}})),
         vec![format!(r#"spec.dataSource.apiGroup: Invalid value: "Bad_Group": {SUBDOMAIN_MSG}"#),
              format!(r#"spec.dataSourceRef.apiGroup: Invalid value: "Bad_Group": {SUBDOMAIN_MSG}"#)]),
        ("sources disagree", spec(json!({"dataSource": {"kind": "PersistentVolumeClaim", "name": "a"},
                                         "dataSourceRef": {"kind": "PersistentVolumeClaim", "name": "b"}})),
         vec!["spec: Invalid value: {}: must match dataSourceRef".into()]),
        ("attributes class", spec(json!({"volumeAttributesClassName": "Gold_1"})),
         vec![format!(r#"spec.volumeAttributesClassName: Invalid value: "Gold_1": {SUBDOMAIN_MSG}"#)]),
        ("metadata finalizer", base.clone(), vec![format!("metadata.finalizers[0]: {BAD_FINALIZER}")]),
    ];
    let cases = cases
        .into_iter()
        .enumerate()
        .map(|(i, (what, spec, expected))| {
            let mut obj = pvc(&format!("bad-{i}"), spec);
            if what == "metadata finalizer" {
                obj["metadata"]["finalizers"] = json!(["bad"]);
            }
            (what, obj, expected)
        })
        .collect();
    refused_creates(&h, PVCS, cases).await;

    // Updates of an unbound claim: nothing but a first volume name and a storage class given
    // where there was none; the claim's checks run twice around the metadata update's.
    let path = format!("{PVCS}/plain");
    let stored = fetch(&h, &path).await;
    let mut c = stored.clone();
    c["spec"]["resources"]["requests"]["storage"] = json!("2Gi");
    let got = causes(&put_json(&h, &path, &c).await).unwrap();
    assert!(
        got.len() == 1 && got[0].starts_with(SPEC_IMMUTABLE),
        "{got:?}"
    );
    let mut c = stored.clone();
    c["spec"]["volumeMode"] = json!("Block");
    let got = causes(&put_json(&h, &path, &c).await).unwrap();
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got[0].starts_with(SPEC_IMMUTABLE), "{got:?}");
    assert_eq!(
        got[1],
        r#"volumeMode: Invalid value: "Block": field is immutable"#
    );
    let mut c = stored.clone();
    c["metadata"]["finalizers"] = json!(["bad"]);
    let thrice = format!("metadata.finalizers[0]: {BAD_FINALIZER}");
    assert_eq!(
        causes(&put_json(&h, &path, &c).await),
        lines(&[thrice.clone(), thrice.clone(), thrice])
    );
    let mut c = stored.clone();
    c["spec"]["volumeName"] = json!("pv-1");
    put_ok(&h, &path, &c).await;
    c["spec"]["volumeName"] = json!("pv-2");
    let got = causes(&put_json(&h, &path, &c).await).unwrap();
    assert!(
        got.len() == 1 && got[0].starts_with(SPEC_IMMUTABLE),
        "{got:?}"
    );
    let plain2 = format!("{PVCS}/plain2");
    let mut c = fetch(&h, &plain2).await;
    c["spec"]["storageClassName"] = json!("standard");
    put_ok(&h, &plain2, &c).await;
    // The beta storage-class annotation may become the field; it may not change.
    let legacy = format!("{PVCS}/legacy-class");
    let mut c = fetch(&h, &legacy).await;
    c["spec"]["storageClassName"] = json!("fast");
    put_ok(&h, &legacy, &c).await;
    let legacy2 = format!("{PVCS}/legacy-class2");
    let mut c = fetch(&h, &legacy2).await;
    c["metadata"]["annotations"]["volume.beta.kubernetes.io/storage-class"] = json!("slow");
    assert_eq!(
        causes(&put_json(&h, &legacy2, &c).await),
        lines(&[r#"metadata.annotations.volume.beta.kubernetes.io/storage-class: Invalid value: "slow": field is immutable"#.to_string()])
    );

    // A bound claim may grow, and shrink no lower than its capacity.
    let bound = format!("{PVCS}/bound");
    let mut c = fetch(&h, &bound).await;
    c["status"] = json!({"phase": "Bound", "capacity": {"storage": "1Gi"}});
    put_ok(&h, &format!("{bound}/status"), &c).await;
    let mut c = fetch(&h, &bound).await;
    c["spec"]["resources"]["requests"]["storage"] = json!("3Gi");
    put_ok(&h, &bound, &c).await;
    c["spec"]["resources"]["requests"]["storage"] = json!("1Gi");
    assert_eq!(
        causes(&put_json(&h, &bound, &c).await),
        lines(&["spec.resources.requests.storage: Forbidden: field can not be less than status.capacity".to_string()])
    );
    c["spec"]["resources"]["requests"]["storage"] = json!("2Gi");
    put_ok(&h, &bound, &c).await;

    // A bound claim's attributes class changes, but not to nothing once one is current.
    let vac = format!("{PVCS}/vac");
    let mut c = fetch(&h, &vac).await;
    c["status"] = json!({"phase": "Bound", "currentVolumeAttributesClassName": "gold"});
    put_ok(&h, &format!("{vac}/status"), &c).await;
    let mut c = fetch(&h, &vac).await;
    c["spec"]["volumeAttributesClassName"] = json!("");
    assert_eq!(
        causes(&put_json(&h, &vac, &c).await),
        lines(&["spec.volumeAttributesClassName: Forbidden: update to empty string is forbidden when status.currentVolumeAttributesClassName is not nil".to_string()])
    );
    c["spec"]["volumeAttributesClassName"] = json!("silver");
    put_ok(&h, &vac, &c).await;
    c["spec"]
        .as_object_mut()
        .unwrap()
        .remove("volumeAttributesClassName");
    let got = causes(&put_json(&h, &vac, &c).await).unwrap();
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got[0].starts_with(SPEC_IMMUTABLE), "{got:?}");
    assert_eq!(got[1], "spec.volumeAttributesClassName: Forbidden: update to nil is forbidden when status.currentVolumeAttributesClassName is not nil");

    // /status: quantities and resize statuses.
    let status_path = format!("{path}/status");
    let stored = fetch(&h, &path).await;
    let status_cases: Vec<(&str, Value, Vec<String>)> = vec![
        ("negative capacity", json!({"capacity": {"storage": "-1"}}),
         vec!["status.capacity[storage]: Invalid value: -1: must be a valid resource quantity".into()]),
        ("resize status", json!({"allocatedResourceStatuses": {"storage": "Resizing"}}),
         vec![r#"status.allocatedResourceStatuses: Unsupported value: "storage": supported values: "ControllerResizeInProgress", "ControllerResizeInfeasible", "NodeResizeInProgress", "NodeResizeInfeasible", "NodeResizePending""#.into()]),
        ("resize status of another resource", json!({"allocatedResourceStatuses": {"cpu": "NodeResizePending"}}),
         vec![r#"status.allocatedResourceStatuses: Unsupported value: "cpu": supported values: "storage""#.into()]),
        ("negative allocation", json!({"allocatedResources": {"storage": "-1"}}),
         vec!["status.allocatedResources[storage]: Invalid value: -1: must be a valid resource quantity".into()]),
        ("allocated resource name", json!({"allocatedResources": {"a b": "1"}}),
         vec![format!(r#"status.allocatedResources: Invalid value: "a b": {NAME_PART_MSG}"#)]),
    ];
    for (what, status, expected) in status_cases {
        let c = with(
            &stored,
            json!({"status": with(&json!({"phase": "Pending"}), status)}),
        );
        assert_eq!(
            causes(&put_json(&h, &status_path, &c).await),
            lines(&expected),
            "{what}"
        );
    }
    let c = with(
        &stored,
        json!({"status": {"phase": "Lost", "allocatedResources": {"storage": "1Gi"},
                                           "allocatedResourceStatuses": {"storage": "NodeResizePending"}}}),
    );
    put_ok(&h, &status_path, &c).await;
}

// ---------------------------------------------------------------------------------------------

const ENDPOINTS: &str = "/api/v1/namespaces/default/endpoints";

fn endpoints(name: &str, subsets: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name}, "subsets": subsets})
}

fn one_address(ip: &str) -> Value {
    json!([{"addresses": [{"ip": ip}], "ports": [{"port": 80}]}])
}

#[tokio::test]
async fn endpoints_are_validated_as_kube_validates_them() {
    let h = server().await;
    // Accepted: target references unchecked, port names neither unique nor service names,
    // legacy IP forms (leading zeros), broadcast and multicast addresses.
    let ok = endpoints(
        "ok",
        json!([{
        "addresses": [{"ip": "10.1.1.1", "hostname": "web-0", "nodeName": "n1",
                       "targetRef": {"kind": "Anything", "name": "Not A Name!", "namespace": "Nope_"}}],
        "notReadyAddresses": [{"ip": "2001:db8::1"}],
        "ports": [{"name": "http", "port": 80},
                  {"name": "http", "port": 8080, "protocol": "UDP", "appProtocol": "example.com/custom"}]}]),
    );
    let r = post_json(&h, ENDPOINTS, &ok).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    assert_eq!(r.json()["subsets"][0]["ports"][0]["protocol"], "TCP");
    let lenient = endpoints(
        "lenient",
        json!([{"addresses": [
        {"ip": "010.001.002.003"}, {"ip": "255.255.255.255"}, {"ip": "239.1.2.3"}]}]),
    );
    let r = post_json(&h, ENDPOINTS, &lenient).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    let r = put_json(
        &h,
        &format!("{ENDPOINTS}/by-put"),
        &endpoints("by-put", one_address("10.1.1.2")),
    )
    .await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());

    let ip = "subsets[0].addresses[0].ip";
    let port = |p: Value| json!([{"addresses": [{"ip": "10.1.1.1"}], "ports": [p]}]);
    let cases: Vec<(&str, Value, Vec<String>)> = vec![
        ("empty subset", json!([{}]),
         vec!["subsets[0]: Required value: must specify `addresses` or `notReadyAddresses`".into()]),
        ("not an IP", one_address("ten"),
         vec![format!(r#"{ip}: Invalid value: "ten": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"#),
              format!(r#"{ip}: Invalid value: "ten": must be a valid IP address"#)]),
        ("unspecified", one_address("0.0.0.0"),
         vec![format!(r#"{ip}: Invalid value: "0.0.0.0": may not be unspecified (0.0.0.0)"#)]),
        ("unspecified IPv6", one_address("::"),
         vec![format!(r#"{ip}: Invalid value: "::": may not be unspecified (::)"#)]),
        ("link-local", one_address("169.254.169.254"),
         vec![format!(r#"{ip}: Invalid value: "169.254.169.254": may not be in the link-local range (169.254.0.0/16, fe80::/10)"#)]),
        ("link-local IPv6", one_address("fe80::1"),
         vec![format!(r#"{ip}: Invalid value: "fe80::1": may not be in the link-local range (169.254.0.0/16, fe80::/10)"#)]),
        ("link-local multicast", one_address("224.0.0.251"),
         vec![format!(r#"{ip}: Invalid value: "224.0.0.251": may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"#)]),
        ("link-local multicast IPv6", one_address("ff12::1"),
         vec![format!(r#"{ip}: Invalid value: "ff12::1": may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"#)]),
        ("not-ready address", json!([{"notReadyAddresses": [{"ip": "169.254.1.1"}]}]),
         vec![r#"subsets[0].notReadyAddresses[0].ip: Invalid value: "169.254.1.1": may not be in the link-local range (169.254.0.0/16, fe80::/10)"#.into()]),
        ("hostname and node name", json!([{"addresses": [{"ip": "10.1.1.1", "hostname": "Web_0", "nodeName": "Node_1"}]}]),
         vec![format!(r#"subsets[0].addresses[0].hostname: Invalid value: "Web_0": {LABEL_MSG}"#),
              format!(r#"subsets[0].addresses[0].nodeName: Invalid value: "Node_1": {SUBDOMAIN_MSG}"#)]),
        ("unnamed second port", json!([{"addresses": [{"ip": "10.1.1.1"}], "ports": [{"name": "a", "port": 80}, {"port": 81}]}]),
         vec!["subsets[0].ports[1].name: Required value".into()]),
        ("port name", port(json!({"name": "Web", "port": 80})),
         vec![format!(r#"subsets[0].ports[0].name: Invalid value: "Web": {LABEL_MSG}"#)]),
        ("port number", port(json!({"port": 0})),
         vec!["subsets[0].ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive".into()]),
        ("protocol", port(json!({"port": 80, "protocol": "HTTP"})),
         vec![r#"subsets[0].ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP""#.into()]),
        ("app protocol", port(json!({"port": 80, "appProtocol": "a b"})),
         vec![format!(r#"subsets[0].ports[0].appProtocol: Invalid value: "a b": {NAME_PART_MSG}"#)]),
        ("metadata finalizer", one_address("10.1.1.1"), vec![format!("metadata.finalizers[0]: {BAD_FINALIZER}")]),
    ];
    let cases = cases
        .into_iter()
        .enumerate()
        .map(|(i, (what, subsets, expected))| {
            let mut obj = endpoints(&format!("bad-{i}"), subsets);
            if what == "metadata finalizer" {
                obj["metadata"]["finalizers"] = json!(["bad"]);
            }
            (what, obj, expected)
        })
        .collect();
    refused_creates(&h, ENDPOINTS, cases).await;

    // Updates: new subsets are checked; metadata finalizers twice.
    let path = format!("{ENDPOINTS}/ok");
    let stored = fetch(&h, &path).await;
    let mut e = stored.clone();
    e["subsets"] = one_address("169.254.0.2");
    assert_eq!(
        causes(&put_json(&h, &path, &e).await),
        lines(&[format!(
            r#"{ip}: Invalid value: "169.254.0.2": may not be in the link-local range (169.254.0.0/16, fe80::/10)"#
        )])
    );
    // Loopback addresses (kube refuses them) are accepted with a warning: they are how a
    // Service reaches a process on the machine kubox runs on.
    for (i, addr) in ["127.0.0.1", "::ffff:127.0.0.1"].into_iter().enumerate() {
        let r = post_json(
            &h,
            ENDPOINTS,
            &endpoints(&format!("local-{i}"), one_address(addr)),
        )
        .await;
        assert_eq!(r.status.as_u16(), 201, "{addr}");
        let warning = r.headers["warning"].to_str().unwrap();
        assert!(
            warning.contains("a loopback address, accepted by kubox"),
            "{warning}"
        );
    }
    let mut e = stored.clone();
    e["metadata"]["finalizers"] = json!(["bad"]);
    let twice = format!("metadata.finalizers[0]: {BAD_FINALIZER}");
    assert_eq!(
        causes(&put_json(&h, &path, &e).await),
        lines(&[twice.clone(), twice])
    );
    let mut e = stored;
    e["subsets"] = one_address("10.1.1.9");
    put_ok(&h, &path, &e).await;
}
