//! Admission through the handlers: the built-in plugins (NamespaceLifecycle, ServiceAccount,
//! LimitRanger, ResourceQuota) and ValidatingAdmissionPolicy, in-process.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use http::Method;
use serde_json::{json, Value};

fn pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
           "spec": {"containers": [{"name": "app", "image": "nginx"}]}})
}

fn pod_with(name: &str, resources: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
           "spec": {"containers": [{"name": "app", "image": "nginx", "resources": resources}]}})
}

const PODS: &str = "/api/v1/namespaces/default/pods";
const VAP: &str = "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies";
const VAPB: &str = "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings";

fn warnings(r: &Resp) -> Vec<String> {
    r.headers
        .get_all("warning")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

// --- NamespaceLifecycle ---------------------------------------------------------------------

#[tokio::test]
async fn create_in_missing_namespace_is_404_namespace_not_found() {
    let h = server().await;
    let r = post_json(&h, "/api/v1/namespaces/nope/configmaps", &configmap("a")).await;
    let s = r.status_failure(404, "NotFound");
    assert_eq!(s["message"], "namespaces \"nope\" not found");
}

#[tokio::test]
async fn system_namespace_delete_is_forbidden_and_lifecycle_can_be_switched_off() {
    let h = server().await;
    let r = send(&h, Method::DELETE, "/api/v1/namespaces/kube-system", "", "").await;
    let s = r.status_failure(403, "Forbidden");
    assert_eq!(
        s["message"],
        "namespaces \"kube-system\" is forbidden: this namespace may not be deleted"
    );
    let h2 = kubox::Server::builder()
        .memory()
        .disable_controller(kubox::Controller::ServiceAccount)
        .disable_admission_plugin("NamespaceLifecycle")
        .start()
        .await
        .unwrap();
    let r = post_json(&h2, "/api/v1/namespaces/nope/configmaps", &configmap("a")).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
}

// --- ServiceAccount -------------------------------------------------------------------------

#[tokio::test]
async fn pods_get_the_default_service_account_and_its_token_volume() {
    let h = server().await;
    let r = post_json(&h, PODS, &pod("p")).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let p = r.json();
    assert_eq!(p["spec"]["serviceAccountName"], "default");
    assert_eq!(p["spec"]["serviceAccount"], "default");
    let vol = &p["spec"]["volumes"][0];
    let vname = vol["name"].as_str().unwrap();
    assert!(vname.starts_with("kube-api-access-"), "{vol}");
    assert_eq!(
        vol["projected"]["sources"][0]["serviceAccountToken"]["path"],
        "token"
    );
    assert_eq!(
        vol["projected"]["sources"][1]["configMap"]["name"],
        "kube-root-ca.crt"
    );
    let mount = &p["spec"]["containers"][0]["volumeMounts"][0];
    assert_eq!(mount["name"], vname);
    assert_eq!(
        mount["mountPath"],
        "/var/run/secrets/kubernetes.io/serviceaccount"
    );
    assert_eq!(mount["readOnly"], true);
}

#[tokio::test]
async fn automount_false_on_the_service_account_or_pod_skips_the_token_volume() {
    let h = server().await;
    let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": {"name": "quiet"}, "automountServiceAccountToken": false});
    assert_eq!(
        post_json(&h, "/api/v1/namespaces/default/serviceaccounts", &sa)
            .await
            .status,
        201
    );
    let mut p = pod("p1");
    p["spec"]["serviceAccountName"] = json!("quiet");
    let r = post_json(&h, PODS, &p).await;
    assert_eq!(r.status, 201);
    assert!(r.json()["spec"]["volumes"].is_null(), "{}", r.json());

    let mut p = pod("p2");
    p["spec"]["automountServiceAccountToken"] = json!(false);
    let r = post_json(&h, PODS, &p).await;
    assert_eq!(r.status, 201);
    let p = r.json();
    assert_eq!(p["spec"]["serviceAccountName"], "default");
    assert!(p["spec"]["volumes"].is_null(), "{p}");
}

#[tokio::test]
async fn token_mounting_can_be_switched_off_on_the_builder() {
    let h = kubox::Server::builder()
        .memory()
        .admission(kubox::admission::AdmissionConfig {
            mount_service_account_token: false,
            ..Default::default()
        })
        .start()
        .await
        .unwrap();
    let r = post_json(&h, PODS, &pod("p")).await;
    assert_eq!(r.status, 201);
    let p = r.json();
    assert_eq!(p["spec"]["serviceAccountName"], "default");
    assert!(p["spec"]["volumes"].is_null(), "{p}");
}

// --- LimitRanger ----------------------------------------------------------------------------

async fn limit_range(h: &ServerHandle, item: Value) {
    let lr = json!({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "lr"},
                    "spec": {"limits": [item]}});
    let r = post_json(h, "/api/v1/namespaces/default/limitranges", &lr).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
}

#[tokio::test]
async fn limit_range_defaults_container_resources_and_annotates_the_pod() {
    let h = server().await;
    limit_range(
        &h,
        json!({"type": "Container", "default": {"cpu": "500m", "memory": "128Mi"},
               "defaultRequest": {"cpu": "250m"}}),
    )
    .await;
    let r = post_json(&h, PODS, &pod("p")).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let p = r.json();
    let res = &p["spec"]["containers"][0]["resources"];
    assert_eq!(res["limits"], json!({"cpu": "500m", "memory": "128Mi"}));
    // defaultRequest falls back to default for memory.
    assert_eq!(res["requests"], json!({"cpu": "250m", "memory": "128Mi"}));
    assert_eq!(
        p["metadata"]["annotations"]["kubernetes.io/limit-ranger"],
        "LimitRanger plugin set: cpu, memory request for container app; cpu, memory limit for container app"
    );
}

#[tokio::test]
async fn limit_range_max_refuses_a_container_over_it_with_kubes_message() {
    let h = server().await;
    limit_range(
        &h,
        json!({"type": "Container", "max": {"memory": "1Gi"}, "min": {"cpu": "100m"}}),
    )
    .await;
    let r = post_json(
        &h,
        PODS,
        &pod_with(
            "big",
            json!({"limits": {"memory": "2Gi", "cpu": "1"}, "requests": {"cpu": "50m", "memory": "1Gi"}}),
        ),
    )
    .await;
    let s = r.status_failure(403, "Forbidden");
    assert_eq!(
        s["message"],
        "pods \"big\" is forbidden: [minimum cpu usage per Container is 100m, but request is 50m, maximum memory usage per Container is 1Gi, but limit is 2Gi]"
    );
    let ok = post_json(
        &h,
        PODS,
        &pod_with(
            "fits",
            json!({"limits": {"memory": "512Mi", "cpu": "1"}, "requests": {"cpu": "200m"}}),
        ),
    )
    .await;
    assert_eq!(ok.status, 201, "{}", String::from_utf8_lossy(&ok.body));
}

// --- ResourceQuota --------------------------------------------------------------------------

#[tokio::test]
async fn object_count_quota_refuses_the_create_over_it_and_reports_usage() {
    let h = server().await;
    let q = json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"},
                   "spec": {"hard": {"configmaps": "2", "count/secrets": "0"}}});
    let r = post_json(&h, "/api/v1/namespaces/default/resourcequotas", &q).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    for name in ["a", "b"] {
        let r = post_json(&h, CM, &configmap(name)).await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    }
    let r = post_json(&h, CM, &configmap("c")).await;
    let s = r.status_failure(403, "Forbidden");
    assert_eq!(
        s["message"],
        "configmaps \"c\" is forbidden: exceeded quota: q, requested: configmaps=1, used: configmaps=2, limited: configmaps=2"
    );
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}});
    let r = post_json(&h, "/api/v1/namespaces/default/secrets", &secret).await;
    let s = r.status_failure(403, "Forbidden");
    assert_eq!(
        s["message"],
        "secrets \"s\" is forbidden: exceeded quota: q, requested: count/secrets=1, used: count/secrets=0, limited: count/secrets=0"
    );

    let q = get(&h, "/api/v1/namespaces/default/resourcequotas/q")
        .await
        .json();
    assert_eq!(
        q["status"]["hard"],
        json!({"configmaps": "2", "count/secrets": "0"})
    );
    assert_eq!(
        q["status"]["used"],
        json!({"configmaps": "2", "count/secrets": "0"})
    );

    // Deleting one frees the slot and the status follows.
    let r = send(&h, Method::DELETE, &format!("{CM}/a"), "", "").await;
    assert_eq!(r.status, 200);
    let q = get(&h, "/api/v1/namespaces/default/resourcequotas/q")
        .await
        .json();
    assert_eq!(q["status"]["used"]["configmaps"], "1");
    assert_eq!(post_json(&h, CM, &configmap("c")).await.status, 201);
}

/// Racing creates cannot both take the last free slot: each is charged to the quota through
/// its resourceVersion (kube's quota admission). A create that fails after it was charged
/// (a duplicate name) gives its charge back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_never_exceed_an_object_count_quota() {
    // On sled a create waits for its commit: requests overlap between admission and storage.
    let dir = tempfile::tempdir().unwrap();
    let h = kubox::Server::builder()
        .sled(dir.path())
        .disable_controller(kubox::Controller::ServiceAccount)
        .start()
        .await
        .unwrap();
    let h = std::sync::Arc::new(h);
    let q = json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"},
                   "spec": {"hard": {"configmaps": "5"}}});
    let r = post_json(&h, "/api/v1/namespaces/default/resourcequotas", &q).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let h = h.clone();
            tokio::spawn(
                async move { post_json(&h, CM, &configmap(&format!("c{i}"))).await.status },
            )
        })
        .collect();
    let mut created = 0;
    for t in tasks {
        let status = t.await.unwrap();
        assert!(status == 201 || status == 403, "{status}");
        created += usize::from(status == 201);
    }
    assert_eq!(created, 5);
    let list = get(&h, CM).await.json();
    assert_eq!(list["items"].as_array().unwrap().len(), 5);
    // A duplicate is refused by the store after admission charged it: the charge goes back.
    let first = list["items"][0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let r = send(&h, Method::DELETE, &format!("{CM}/{first}"), "", "").await;
    assert_eq!(r.status, 200);
    let existing = list["items"][1]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let r = post_json(&h, CM, &configmap(&existing)).await;
    assert_eq!(r.status, 409);
    let q = get(&h, "/api/v1/namespaces/default/resourcequotas/q")
        .await
        .json();
    assert_eq!(q["status"]["used"]["configmaps"], "4", "{q}");
    assert_eq!(post_json(&h, CM, &configmap("last")).await.status, 201);
}

#[tokio::test]
async fn compute_quota_counts_pod_requests() {
    let h = server().await;
    let q = json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "cpu"},
                   "spec": {"hard": {"requests.cpu": "1", "pods": "5"}}});
    assert_eq!(
        post_json(&h, "/api/v1/namespaces/default/resourcequotas", &q)
            .await
            .status,
        201
    );
    let r = post_json(
        &h,
        PODS,
        &pod_with("a", json!({"requests": {"cpu": "600m"}})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let r = post_json(
        &h,
        PODS,
        &pod_with("b", json!({"requests": {"cpu": "600m"}})),
    )
    .await;
    let s = r.status_failure(403, "Forbidden");
    assert_eq!(
        s["message"],
        "pods \"b\" is forbidden: exceeded quota: cpu, requested: requests.cpu=600m, used: requests.cpu=600m, limited: requests.cpu=1"
    );
}

/// Quota usage is summed exactly and printed as kube prints quantities: 0.1 + 0.2 cores is
/// `300m` (not a float's 0.30000000000000004), 512Mi + 1Gi is `1536Mi`, and the last
/// millicore fits exactly.
#[tokio::test]
async fn compute_quota_sums_quantities_exactly() {
    let h = server().await;
    let q = json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "exact"},
                   "spec": {"hard": {"requests.cpu": "300m", "requests.memory": "2Gi"}}});
    assert_eq!(
        post_json(&h, "/api/v1/namespaces/default/resourcequotas", &q)
            .await
            .status,
        201
    );
    for (name, cpu, memory) in [("a", "0.1", "512Mi"), ("b", "200m", "1Gi")] {
        let r = post_json(
            &h,
            PODS,
            &pod_with(name, json!({"requests": {"cpu": cpu, "memory": memory}})),
        )
        .await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    }
    let quota = get(&h, "/api/v1/namespaces/default/resourcequotas/exact")
        .await
        .json();
    assert_eq!(
        quota["status"]["used"],
        json!({"requests.cpu": "300m", "requests.memory": "1536Mi"}),
        "{quota}"
    );
    let r = post_json(
        &h,
        PODS,
        &pod_with("c", json!({"requests": {"cpu": "1m", "memory": "1Mi"}})),
    )
    .await;
    let s = r.status_failure(403, "Forbidden");
    assert_eq!(
        s["message"],
        "pods \"c\" is forbidden: exceeded quota: exact, requested: requests.cpu=1m, used: requests.cpu=300m, limited: requests.cpu=300m"
    );
}

/// Quota charges are written as kube's quota admission writes them: an update of
/// `resourcequotas/status` through the API, admitted like any other write. A policy that
/// refuses such updates therefore refuses the creates that would be charged.
#[tokio::test]
async fn quota_charges_are_admitted_status_updates() {
    let h = server().await;
    let q = json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"},
                   "spec": {"hard": {"configmaps": "10"}}});
    assert_eq!(
        post_json(&h, "/api/v1/namespaces/default/resourcequotas", &q)
            .await
            .status,
        201
    );
    let p = json!({"apiVersion": "admissionregistration.k8s.io/v1",
                   "kind": "ValidatingAdmissionPolicy", "metadata": {"name": "frozen-quotas"},
                   "spec": {"matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                                "operations": ["UPDATE"], "resources": ["resourcequotas/status"]}]},
                            "validations": [{"expression": "false", "message": "quota usage is frozen"}]}});
    assert_eq!(post_json(&h, VAP, &p).await.status, 201);
    let b = json!({"apiVersion": "admissionregistration.k8s.io/v1",
                   "kind": "ValidatingAdmissionPolicyBinding", "metadata": {"name": "frozen-quotas"},
                   "spec": {"policyName": "frozen-quotas", "validationActions": ["Deny"]}});
    assert_eq!(
        post_json(
            &h,
            "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings",
            &b
        )
        .await
        .status,
        201
    );
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "charged"}});
    let r = post_json(&h, "/api/v1/namespaces/default/configmaps", &cm).await;
    let s = r.status_failure(422, "Invalid");
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .contains("quota usage is frozen"),
        "{s}"
    );
    // Outside the quota's namespace nothing is charged, so nothing is refused.
    assert_eq!(
        post_json(&h, "/api/v1/namespaces/kube-public/configmaps", &cm)
            .await
            .status,
        201
    );
}

// --- ValidatingAdmissionPolicy -------------------------------------------------------------

async fn policy(h: &ServerHandle, spec: Value) {
    let p = json!({"apiVersion": "admissionregistration.k8s.io/v1",
                   "kind": "ValidatingAdmissionPolicy", "metadata": {"name": "replicas"},
                   "spec": spec});
    let r = post_json(h, VAP, &p).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
}

async fn binding(h: &ServerHandle, spec: Value) {
    let b = json!({"apiVersion": "admissionregistration.k8s.io/v1",
                   "kind": "ValidatingAdmissionPolicyBinding", "metadata": {"name": "replicas-b"},
                   "spec": spec});
    let r = post_json(h, VAPB, &b).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
}

fn deployment(name: &str, replicas: i64) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": {"app": name}},
           "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}},
                                 "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})
}

const DEPLOY: &str = "/apis/apps/v1/namespaces/default/deployments";

fn deployments_rule() -> Value {
    json!({"resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"],
                              "operations": ["CREATE", "UPDATE"], "resources": ["deployments"]}]})
}

#[tokio::test]
async fn policy_deny_refuses_with_the_message_and_invalid_reason() {
    let h = server().await;
    policy(
        &h,
        json!({"matchConstraints": deployments_rule(),
               "validations": [{"expression": "object.spec.replicas <= 5",
                                "message": "replicas must be no greater than 5"}]}),
    )
    .await;
    binding(
        &h,
        json!({"policyName": "replicas", "validationActions": ["Deny"]}),
    )
    .await;
    let r = post_json(&h, DEPLOY, &deployment("big", 10)).await;
    let s = r.status_failure(422, "Invalid");
    assert_eq!(
        s["message"],
        "deployments.apps \"big\" is forbidden: ValidatingAdmissionPolicy 'replicas' with binding 'replicas-b' denied request: replicas must be no greater than 5"
    );
    assert_eq!(
        post_json(&h, DEPLOY, &deployment("small", 3)).await.status,
        201
    );
    // Updates are checked too.
    let r = patch(
        &h,
        &format!("{DEPLOY}/small"),
        "application/merge-patch+json",
        r#"{"spec":{"replicas":9}}"#,
    )
    .await;
    r.status_failure(422, "Invalid");
    // Other resources are not matched.
    assert_eq!(post_json(&h, CM, &configmap("x")).await.status, 201);
}

#[tokio::test]
async fn policy_message_expression_and_reason_shape_the_refusal() {
    let h = server().await;
    policy(
        &h,
        json!({"matchConstraints": deployments_rule(),
               "validations": [{"expression": "object.spec.replicas <= 5",
                                "messageExpression": "'got ' + string(object.spec.replicas) + ' replicas'",
                                "reason": "Forbidden"}]}),
    )
    .await;
    binding(
        &h,
        json!({"policyName": "replicas", "validationActions": ["Deny"]}),
    )
    .await;
    let r = post_json(&h, DEPLOY, &deployment("big", 7)).await;
    let s = r.status_failure(403, "Forbidden");
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .ends_with("denied request: got 7 replicas"),
        "{s}"
    );
}

#[tokio::test]
async fn policy_warn_admits_with_a_warning_header() {
    let h = server().await;
    policy(
        &h,
        json!({"matchConstraints": deployments_rule(),
               "validations": [{"expression": "object.spec.replicas <= 5"}]}),
    )
    .await;
    binding(
        &h,
        json!({"policyName": "replicas", "validationActions": ["Warn"]}),
    )
    .await;
    let r = post_json(&h, DEPLOY, &deployment("big", 10)).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        warnings(&r),
        vec![
            "299 - \"Validation failed for ValidatingAdmissionPolicy 'replicas' with binding 'replicas-b': failed expression: object.spec.replicas <= 5\""
        ]
    );
}

#[tokio::test]
async fn policy_params_come_from_a_configmap_named_by_the_binding() {
    let h = server().await;
    let limits = json!({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": "limits"}, "data": {"max": "4"}});
    assert_eq!(post_json(&h, CM, &limits).await.status, 201);
    policy(
        &h,
        json!({"paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
               "matchConstraints": deployments_rule(),
               "validations": [{"expression": "object.spec.replicas <= int(params.data.max)",
                                "messageExpression": "'at most ' + params.data.max + ' replicas'"}]}),
    )
    .await;
    binding(
        &h,
        json!({"policyName": "replicas", "validationActions": ["Deny"],
               "paramRef": {"name": "limits", "namespace": "default",
                            "parameterNotFoundAction": "Deny"}}),
    )
    .await;
    let r = post_json(&h, DEPLOY, &deployment("five", 5)).await;
    let s = r.status_failure(422, "Invalid");
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .ends_with("denied request: at most 4 replicas"),
        "{s}"
    );
    assert_eq!(
        post_json(&h, DEPLOY, &deployment("four", 4)).await.status,
        201
    );
    // The param changes and the next request sees it.
    let r = patch(
        &h,
        &format!("{CM}/limits"),
        "application/merge-patch+json",
        r#"{"data":{"max":"6"}}"#,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        post_json(&h, DEPLOY, &deployment("five", 5)).await.status,
        201
    );
    // Without the param, parameterNotFoundAction Deny refuses.
    assert_eq!(
        send(&h, Method::DELETE, &format!("{CM}/limits"), "", "")
            .await
            .status,
        200
    );
    let r = post_json(&h, DEPLOY, &deployment("one", 1)).await;
    let s = r.status_failure(422, "Invalid");
    assert!(
        s["message"].as_str().unwrap().contains("no params found"),
        "{s}"
    );
}

#[tokio::test]
async fn policy_match_conditions_namespace_selector_and_binding_match_resources_narrow_it() {
    let h = server().await;
    let ns = json!({"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": "strict", "labels": {"policy": "strict"}}});
    assert_eq!(post_json(&h, "/api/v1/namespaces", &ns).await.status, 201);
    policy(
        &h,
        json!({"matchConstraints": deployments_rule(),
               "matchConditions": [{"name": "not-exempt",
                                    "expression": "!has(object.metadata.labels) || !('exempt' in object.metadata.labels)"}],
               "validations": [{"expression": "object.spec.replicas <= 5"}]}),
    )
    .await;
    binding(
        &h,
        json!({"policyName": "replicas", "validationActions": ["Deny"],
               "matchResources": {"namespaceSelector": {"matchLabels": {"policy": "strict"}}}}),
    )
    .await;
    // default is not selected by the binding.
    assert_eq!(post_json(&h, DEPLOY, &deployment("a", 9)).await.status, 201);
    let strict = "/apis/apps/v1/namespaces/strict/deployments";
    post_json(&h, strict, &deployment("b", 9))
        .await
        .status_failure(422, "Invalid");
    let mut exempt = deployment("c", 9);
    exempt["metadata"]["labels"]["exempt"] = json!("yes");
    assert_eq!(post_json(&h, strict, &exempt).await.status, 201);
}

#[tokio::test]
async fn policy_eval_error_fails_closed_unless_failure_policy_ignore() {
    let h = server().await;
    policy(
        &h,
        json!({"matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                   "operations": ["CREATE"], "resources": ["configmaps"]}]},
               "validations": [{"expression": "object.data.missing == 'x'"}]}),
    )
    .await;
    binding(
        &h,
        json!({"policyName": "replicas", "validationActions": ["Deny"]}),
    )
    .await;
    let r = post_json(&h, CM, &configmap("a")).await;
    let s = r.status_failure(422, "Invalid");
    assert!(
        s["message"].as_str().unwrap().contains("resulted in error"),
        "{s}"
    );
    let r = patch(
        &h,
        &format!("{VAP}/replicas"),
        "application/merge-patch+json",
        r#"{"spec":{"failurePolicy":"Ignore"}}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(post_json(&h, CM, &configmap("a")).await.status, 201);
}

/// Policy expressions are bounded by kube's cost units for the values they run on: a loop
/// over a loop of a large map is over the per-call limit (the same answer on any machine), the
/// same expression on a small map runs.
#[tokio::test]
async fn policy_expressions_are_bounded_by_cost_units() {
    let h = server().await;
    let expression = "object.data.all(k, object.data.all(j, k == j || k != j))";
    policy(
        &h,
        json!({"matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                   "operations": ["CREATE"], "resources": ["configmaps"]}]},
               "validations": [{"expression": expression}]}),
    )
    .await;
    binding(
        &h,
        json!({"policyName": "replicas", "validationActions": ["Deny"]}),
    )
    .await;
    let with_keys = |name: &str, n: usize| {
        let data: serde_json::Map<String, Value> =
            (0..n).map(|i| (format!("k{i}"), json!("v"))).collect();
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data})
    };
    assert_eq!(post_json(&h, CM, &with_keys("small", 10)).await.status, 201);
    for _ in 0..2 {
        let r = post_json(&h, CM, &with_keys("large", 1000)).await;
        let s = r.status_failure(422, "Invalid");
        assert_eq!(
            s["message"],
            format!("configmaps \"large\" is forbidden: ValidatingAdmissionPolicy 'replicas' with binding 'replicas-b' denied request: expression '{expression}' resulted in error: operation cancelled: actual cost limit exceeded")
        );
    }
}

/// Admission configurations are validated (after kube's defaults) as kube validates them.
#[tokio::test]
async fn admission_configurations_are_validated_as_kube_validates_them() {
    let h = server().await;
    let invalid = |r: Resp| -> Vec<String> { r.invalid_causes() };
    // A policy's rules need operations; a binding needs actions.
    let p = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": "p"}, "spec": {
            "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                "resources": ["configmaps"]}]},
            "validations": [{"expression": "true", "reason": "Teapot"}]}});
    assert_eq!(
        invalid(post_json(&h, VAP, &p).await),
        [
            "spec.matchConstraints.resourceRules[0].operations: Required value",
            "spec.validations[0].reason: Unsupported value: \"Teapot\": supported values: \"Forbidden\", \"Invalid\", \"RequestEntityTooLarge\"",
        ]
    );
    let b = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": "b"}, "spec": {"policyName": "p", "validationActions": ["Deny", "Warn", "Nope"]}});
    assert_eq!(
        invalid(post_json(&h, VAPB, &b).await),
        [
            "spec.validationActions[2]: Unsupported value: \"Nope\": supported values: \"Audit\", \"Deny\", \"Warn\"",
            "spec.validationActions: Invalid value: []admissionregistration.ValidationAction{\"Deny\", \"Warn\", \"Nope\"}: must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)",
        ]
    );
    // Webhooks: a qualified name, rules, side effects, review versions, one client config.
    let w = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "w"}, "webhooks": [
            {"name": "short.test", "clientConfig": {"url": "http://example.com/x"},
             "rules": [{"operations": ["CREATE", "PATCH"], "apiGroups": [""], "apiVersions": ["v1"], "resources": []}],
             "timeoutSeconds": 60, "admissionReviewVersions": []},
            {"name": "ok.kubox.test", "clientConfig": {}, "sideEffects": "None", "admissionReviewVersions": ["v1"]},
            {"name": "ok.kubox.test", "clientConfig": {"service": {"name": "s", "namespace": "n"}},
             "sideEffects": "None", "admissionReviewVersions": ["v2"]}]});
    assert_eq!(
        invalid(post_json(&h, "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations", &w).await),
        [
            "webhooks[0].name: Invalid value: \"short.test\": should be a domain with at least three segments separated by dots",
            "webhooks[0].rules[0].operations[1]: Unsupported value: \"PATCH\": supported values: \"*\", \"CONNECT\", \"CREATE\", \"DELETE\", \"UPDATE\"",
            "webhooks[0].rules[0].resources: Required value",
            "webhooks[0].sideEffects: Required value: must specify one of None, NoneOnDryRun",
            "webhooks[0].timeoutSeconds: Invalid value: 60: the timeout value must be between 1 and 30 seconds",
            "webhooks[0].clientConfig.url: Invalid value: \"http://example.com/x\": 'https' is the only allowed URL scheme",
            "webhooks[0].admissionReviewVersions: Required value: must specify one of v1, v1beta1",
            "webhooks[1].clientConfig: Required value: exactly one of url or service is required",
            "webhooks[2].admissionReviewVersions: Invalid value: []string{\"v2\"}: must include at least one of v1, v1beta1",
            "webhooks[2].name: Duplicate value: \"ok.kubox.test\"",
        ]
    );
    // Valid ones are stored with kube's defaults.
    let w = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "m"}, "webhooks": [{"name": "ok.kubox.test", "sideEffects": "None",
            "clientConfig": {"service": {"name": "s", "namespace": "n"}}, "admissionReviewVersions": ["v1"],
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}]}]});
    let r = post_json(
        &h,
        "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
        &w,
    )
    .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let hook = &r.json()["webhooks"][0];
    assert_eq!(
        (
            &hook["failurePolicy"],
            &hook["matchPolicy"],
            &hook["timeoutSeconds"],
            &hook["reinvocationPolicy"]
        ),
        (
            &json!("Fail"),
            &json!("Equivalent"),
            &json!(10),
            &json!("Never")
        )
    );
    assert_eq!(hook["rules"][0]["scope"], "*");
    assert_eq!(hook["clientConfig"]["service"]["port"], 443);
    assert_eq!(
        (&hook["namespaceSelector"], &hook["objectSelector"]),
        (&json!({}), &json!({}))
    );
}

// --- Figures --------------------------------------------------------------------------------

async fn creates_per_second(h: &ServerHandle, n: usize, prefix: &str) -> f64 {
    let started = std::time::Instant::now();
    for i in 0..n {
        let r = post_json(h, CM, &configmap(&format!("{prefix}-{i}"))).await;
        assert_eq!(r.status, 201);
    }
    n as f64 / started.elapsed().as_secs_f64()
}

/// Cost of admission on the create path (in-process, sequential ConfigMap creates). Run with
/// `cargo test -p kubox --test admission -- --ignored --nocapture admission_overhead`.
#[tokio::test]
#[ignore = "a figure, not a check"]
async fn admission_overhead() {
    const N: usize = 3000;
    let mut none = kubox::admission::AdmissionConfig::default();
    none.disable_list(&kubox::admission::PLUGINS.join(","))
        .unwrap();
    let bare = kubox::Server::builder()
        .memory()
        .disable_controller(kubox::Controller::ServiceAccount)
        .admission(none)
        .start()
        .await
        .unwrap();
    let bare_rate = creates_per_second(&bare, N, "a").await;
    let h = server().await;
    let default_rate = creates_per_second(&h, N, "a").await;
    policy(
        &h,
        json!({"matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                   "operations": ["CREATE"], "resources": ["configmaps"]}]},
               "validations": [{"expression": "size(object.data) < 10"}]}),
    )
    .await;
    binding(
        &h,
        json!({"policyName": "replicas", "validationActions": ["Deny"]}),
    )
    .await;
    let q = json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"},
                   "spec": {"hard": {"configmaps": "100000"}}});
    assert_eq!(
        post_json(&h, "/api/v1/namespaces/default/resourcequotas", &q)
            .await
            .status,
        201
    );
    let configured_rate = creates_per_second(&h, N, "b").await;
    println!(
        "ConfigMap creates/s, in-process, sequential: no admission {bare_rate:.0}; \
         default plugins, nothing configured {default_rate:.0}; \
         one policy + binding and an object-count quota {configured_rate:.0}"
    );
}
