//! RBAC authorization in-process: identities are put into the request extensions (as the
//! authentication layer does), objects are set up through the privileged loopback identity.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::Bytes;
use common::*;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use kubox::authn::UserInfo;
use serde_json::{json, Value};
use tower::ServiceExt;

fn user(name: &str, groups: &[&str]) -> UserInfo {
    UserInfo {
        username: name.to_string(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        ..Default::default()
    }
}

fn jane() -> UserInfo {
    user("jane", &["system:authenticated"])
}

/// Send as `who`; the body is read unless the answer is a watch stream (then only the status).
async fn send_as(
    h: &ServerHandle,
    who: &UserInfo,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Resp {
    let content_type = if method == Method::PATCH {
        "application/merge-patch+json"
    } else {
        "application/json"
    };
    let bytes = body
        .map(|b| Bytes::from(serde_json::to_vec(b).unwrap()))
        .unwrap_or_default();
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type)
        .body(bytes)
        .unwrap();
    req.extensions_mut().insert(who.clone());
    let resp = h.service().oneshot(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let body = if path.contains("watch=true") && parts.status == StatusCode::OK {
        Bytes::new()
    } else {
        body.collect().await.unwrap().to_bytes()
    };
    Resp {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

async fn create(h: &ServerHandle, path: &str, obj: Value) {
    let r = post_json(h, path, &obj).await;
    assert_eq!(
        r.status.as_u16(),
        201,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
}

async fn namespace(h: &ServerHandle, name: &str) {
    create(
        h,
        "/api/v1/namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
    )
    .await;
}

const RBAC: &str = "/apis/rbac.authorization.k8s.io/v1";

fn rules_json(rules: &[(&[&str], &[&str], &[&str])]) -> Value {
    json!(rules
        .iter()
        .map(|(verbs, groups, resources)| json!({"verbs": verbs, "apiGroups": groups, "resources": resources}))
        .collect::<Vec<_>>())
}

async fn role(h: &ServerHandle, ns: &str, name: &str, rules: Value) {
    create(
        h,
        &format!("{RBAC}/namespaces/{ns}/roles"),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": name}, "rules": rules}),
    )
    .await;
}

async fn cluster_role(h: &ServerHandle, name: &str, rules: Value) {
    create(
        h,
        &format!("{RBAC}/clusterroles"),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name}, "rules": rules}),
    )
    .await;
}

fn subject(kind: &str, name: &str) -> Value {
    match kind {
        "ServiceAccount" => {
            let (ns, n) = name.split_once('/').unwrap();
            json!({"kind": kind, "name": n, "namespace": ns})
        }
        _ => json!({"kind": kind, "name": name, "apiGroup": "rbac.authorization.k8s.io"}),
    }
}

async fn role_binding(
    h: &ServerHandle,
    ns: &str,
    name: &str,
    role_kind: &str,
    role: &str,
    subjects: Vec<Value>,
) {
    create(
        h,
        &format!("{RBAC}/namespaces/{ns}/rolebindings"),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role}, "subjects": subjects}),
    )
    .await;
}

async fn cluster_role_binding(h: &ServerHandle, name: &str, role: &str, subjects: Vec<Value>) {
    create(
        h,
        &format!("{RBAC}/clusterrolebindings"),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role}, "subjects": subjects}),
    )
    .await;
}

const VERBS: [&str; 8] = [
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
];

/// One request per verb on configmaps in `ns`; true where it was authorized (not 403).
async fn verb_matrix(h: &ServerHandle, who: &UserInfo, ns: &str) -> Vec<(String, bool)> {
    let base = format!("/api/v1/namespaces/{ns}/configmaps");
    let mut out = Vec::new();
    for verb in VERBS {
        let cm = configmap("cm1");
        let (method, path, body) = match verb {
            "get" => (Method::GET, format!("{base}/cm1"), None),
            "list" => (Method::GET, base.clone(), None),
            "watch" => (Method::GET, format!("{base}?watch=true"), None),
            "create" => (Method::POST, base.clone(), Some(configmap("made"))),
            "update" => (Method::PUT, format!("{base}/cm1"), Some(cm)),
            "patch" => (
                Method::PATCH,
                format!("{base}/cm1"),
                Some(json!({"data": {"p": "1"}})),
            ),
            "delete" => (Method::DELETE, format!("{base}/made"), None),
            _ => (
                Method::DELETE,
                format!("{base}?labelSelector=none%3Dnone"),
                None,
            ),
        };
        let r = send_as(h, who, method, &path, body.as_ref()).await;
        out.push((verb.to_string(), r.status != StatusCode::FORBIDDEN));
    }
    out
}

fn expect(allowed: &[&str]) -> Vec<(String, bool)> {
    VERBS
        .iter()
        .map(|v| (v.to_string(), allowed.contains(v)))
        .collect()
}

#[tokio::test]
async fn forbidden_requests_answer_kube_apiservers_status() {
    let h = server().await;
    let r = send_as(
        &h,
        &jane(),
        Method::GET,
        "/api/v1/namespaces/default/pods/x",
        None,
    )
    .await;
    let s = r.status_failure(403, "Forbidden");
    assert_eq!(
        s["message"],
        r#"pods "x" is forbidden: User "jane" cannot get resource "pods" in API group "" in the namespace "default""#
    );
    assert_eq!(s["details"], json!({"name": "x", "kind": "pods"}));

    let r = send_as(&h, &jane(), Method::GET, "/apis/apps/v1/deployments", None).await;
    let s = r.status_failure(403, "Forbidden");
    assert_eq!(
        s["message"],
        r#"deployments.apps is forbidden: User "jane" cannot list resource "deployments" in API group "apps" at the cluster scope"#
    );
    assert_eq!(
        s["details"],
        json!({"group": "apps", "kind": "deployments"})
    );

    let r = send_as(
        &h,
        &jane(),
        Method::GET,
        "/api/v1/namespaces/default/pods/x/status",
        None,
    )
    .await;
    assert_eq!(
        r.status_failure(403, "Forbidden")["message"],
        r#"pods "x" is forbidden: User "jane" cannot get resource "pods/status" in API group "" in the namespace "default""#
    );

    let anonymous = UserInfo::anonymous();
    let r = send_as(&h, &anonymous, Method::GET, "/apis", None).await;
    assert_eq!(
        r.status_failure(403, "Forbidden")["message"],
        r#"forbidden: User "system:anonymous" cannot get path "/apis""#
    );
}

#[tokio::test]
async fn health_version_and_discovery_are_allowed_through_bootstrap_roles() {
    let h = server().await;
    let anonymous = UserInfo::anonymous();
    for path in ["/healthz", "/livez", "/readyz", "/version"] {
        let r = send_as(&h, &anonymous, Method::GET, path, None).await;
        assert_eq!(r.status, StatusCode::OK, "{path} as anonymous");
    }
    for path in ["/api", "/apis", "/apis/apps/v1", "/openapi/v3"] {
        let r = send_as(&h, &jane(), Method::GET, path, None).await;
        assert_eq!(r.status, StatusCode::OK, "{path} as an authenticated user");
    }
    // Without a binding to system:monitoring, /metrics is refused.
    let r = send_as(&h, &jane(), Method::GET, "/metrics", None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_role_binding_grants_exactly_the_roles_verbs_in_its_namespace() {
    let h = server().await;
    namespace(&h, "team").await;
    create(&h, "/api/v1/namespaces/team/configmaps", configmap("cm1")).await;
    role(
        &h,
        "team",
        "reader",
        rules_json(&[(&["get", "list", "watch"], &[""], &["configmaps"])]),
    )
    .await;
    role_binding(
        &h,
        "team",
        "jane-reads",
        "Role",
        "reader",
        vec![subject("User", "jane")],
    )
    .await;
    assert_eq!(
        verb_matrix(&h, &jane(), "team").await,
        expect(&["get", "list", "watch"])
    );
    assert_eq!(verb_matrix(&h, &jane(), "default").await, expect(&[]));

    role(
        &h,
        "team",
        "writer",
        rules_json(&[(
            &["create", "update", "patch", "delete", "deletecollection"],
            &[""],
            &["configmaps"],
        )]),
    )
    .await;
    let bob = user("bob", &["system:authenticated"]);
    role_binding(
        &h,
        "team",
        "bob-writes",
        "Role",
        "writer",
        vec![subject("User", "bob")],
    )
    .await;
    assert_eq!(
        verb_matrix(&h, &bob, "team").await,
        expect(&["create", "update", "patch", "delete", "deletecollection"])
    );
}

#[tokio::test]
async fn deleting_a_binding_takes_the_access_away_at_once() {
    let h = server().await;
    namespace(&h, "team").await;
    role(
        &h,
        "team",
        "reader",
        rules_json(&[(&["list"], &[""], &["configmaps"])]),
    )
    .await;
    role_binding(
        &h,
        "team",
        "jane-reads",
        "Role",
        "reader",
        vec![subject("User", "jane")],
    )
    .await;
    let path = "/api/v1/namespaces/team/configmaps";
    assert_eq!(
        send_as(&h, &jane(), Method::GET, path, None).await.status,
        StatusCode::OK
    );
    let r = send(
        &h,
        Method::DELETE,
        &format!("{RBAC}/namespaces/team/rolebindings/jane-reads"),
        "",
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        send_as(&h, &jane(), Method::GET, path, None).await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn a_namespace_object_is_authorized_in_its_own_namespace() {
    let h = server().await;
    namespace(&h, "team").await;
    role(
        &h,
        "team",
        "ns-reader",
        rules_json(&[(&["get"], &[""], &["namespaces"])]),
    )
    .await;
    role_binding(
        &h,
        "team",
        "b",
        "Role",
        "ns-reader",
        vec![subject("User", "jane")],
    )
    .await;
    let r = send_as(&h, &jane(), Method::GET, "/api/v1/namespaces/team", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = send_as(&h, &jane(), Method::GET, "/api/v1/namespaces/default", None).await;
    assert_eq!(
        r.status_failure(403, "Forbidden")["message"],
        r#"namespaces "default" is forbidden: User "jane" cannot get resource "namespaces" in API group "" in the namespace "default""#
    );
}

#[tokio::test]
async fn subresources_are_authorized_apart_from_their_resource() {
    let h = server().await;
    namespace(&h, "team").await;
    role(
        &h,
        "team",
        "status-reader",
        rules_json(&[
            (&["get"], &[""], &["pods/status"]),
            (&["get"], &["apps"], &["*/scale"]),
        ]),
    )
    .await;
    role_binding(
        &h,
        "team",
        "b",
        "Role",
        "status-reader",
        vec![subject("User", "jane")],
    )
    .await;
    let ok = |p: &str| format!("/api/v1/namespaces/team/pods/{p}");
    assert_eq!(
        send_as(&h, &jane(), Method::GET, &ok("p/status"), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send_as(&h, &jane(), Method::GET, &ok("p"), None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let scale = "/apis/apps/v1/namespaces/team/deployments/d/scale";
    assert_eq!(
        send_as(&h, &jane(), Method::GET, scale, None).await.status,
        StatusCode::NOT_FOUND
    );
    let status = "/apis/apps/v1/namespaces/team/deployments/d/status";
    assert_eq!(
        send_as(&h, &jane(), Method::GET, status, None).await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn resource_names_limit_a_rule_to_the_named_objects() {
    let h = server().await;
    namespace(&h, "team").await;
    create(
        &h,
        &format!("{RBAC}/namespaces/team/roles"),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "one"},
            "rules": [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"]}]}),
    )
    .await;
    role_binding(
        &h,
        "team",
        "b",
        "Role",
        "one",
        vec![subject("User", "jane")],
    )
    .await;
    let base = "/api/v1/namespaces/team/configmaps";
    assert_eq!(
        send_as(&h, &jane(), Method::GET, &format!("{base}/a"), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send_as(&h, &jane(), Method::GET, &format!("{base}/b"), None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send_as(&h, &jane(), Method::GET, base, None).await.status,
        StatusCode::FORBIDDEN
    );
}

/// kube's RequestInfo names the object of a list or watch by its `metadata.name` field
/// selector (how `kubectl get cm a -w` and informers on one object ask), so `resourceNames`
/// rules apply to them; `watch` is a boolean as kube decodes it.
#[tokio::test]
async fn resource_names_apply_to_a_list_or_watch_of_one_name() {
    let h = server().await;
    namespace(&h, "team").await;
    create(
        &h,
        "/api/v1/namespaces/team/configmaps",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}),
    )
    .await;
    create(
        &h,
        &format!("{RBAC}/namespaces/team/roles"),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "one"},
            "rules": [{"verbs": ["list", "watch"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"]}]}),
    )
    .await;
    role_binding(
        &h,
        "team",
        "b",
        "Role",
        "one",
        vec![subject("User", "jane")],
    )
    .await;
    let base = "/api/v1/namespaces/team/configmaps";
    let r = send_as(
        &h,
        &jane(),
        Method::GET,
        &format!("{base}?fieldSelector=metadata.name%3Da"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["items"][0]["metadata"]["name"], "a");
    for q in ["fieldSelector=metadata.name%3Db", "labelSelector=x%3Dy"] {
        let r = send_as(&h, &jane(), Method::GET, &format!("{base}?{q}"), None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{q}");
    }
    // A watch of that one name, with `watch=True`: the stream starts (its first event is `a`).
    let mut req = Request::builder()
        .uri(format!("{base}?fieldSelector=metadata.name%3Da&watch=True"))
        .body(Bytes::new())
        .unwrap();
    req.extensions_mut().insert(jane());
    let resp = h.service().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    let frame = body.frame().await.unwrap().unwrap().into_data().unwrap();
    let event: Value = serde_json::from_slice(&frame).unwrap();
    assert_eq!(event["type"], "ADDED", "{event}");
    assert_eq!(event["object"]["metadata"]["name"], "a");
}

#[tokio::test]
async fn non_resource_urls_match_exactly_or_by_star_suffix() {
    let h = server().await;
    create(
        &h,
        &format!("{RBAC}/clusterroles"),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "probe"},
            "rules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz/*", "/openapi/v2"]}]}),
    )
    .await;
    cluster_role_binding(&h, "probe", "probe", vec![subject("User", "prober")]).await;
    // No system:authenticated group: only what the binding gives (and public info).
    let prober = user("prober", &[]);
    for (path, code) in [
        ("/healthz/ping", StatusCode::OK),
        ("/openapi/v2", StatusCode::OK),
        ("/openapi/v3", StatusCode::FORBIDDEN),
        ("/apis", StatusCode::FORBIDDEN),
    ] {
        assert_eq!(
            send_as(&h, &prober, Method::GET, path, None).await.status,
            code,
            "{path}"
        );
    }
}

#[tokio::test]
async fn cluster_bindings_grant_everywhere_role_bindings_to_a_cluster_role_only_in_their_namespace()
{
    let h = server().await;
    namespace(&h, "team").await;
    cluster_role(
        &h,
        "cm-reader",
        rules_json(&[(&["list"], &[""], &["configmaps"])]),
    )
    .await;
    role_binding(
        &h,
        "team",
        "b",
        "ClusterRole",
        "cm-reader",
        vec![subject("User", "jane")],
    )
    .await;
    let list = |ns: &str| format!("/api/v1/namespaces/{ns}/configmaps");
    assert_eq!(
        send_as(&h, &jane(), Method::GET, &list("team"), None)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        send_as(&h, &jane(), Method::GET, &list("default"), None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send_as(&h, &jane(), Method::GET, "/api/v1/configmaps", None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    cluster_role_binding(&h, "everywhere", "cm-reader", vec![subject("User", "jane")]).await;
    assert_eq!(
        send_as(&h, &jane(), Method::GET, &list("default"), None)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        send_as(&h, &jane(), Method::GET, "/api/v1/configmaps", None)
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn group_and_service_account_subjects_match_their_users() {
    let h = server().await;
    namespace(&h, "team").await;
    cluster_role(
        &h,
        "cm-reader",
        rules_json(&[(&["list"], &[""], &["configmaps"])]),
    )
    .await;
    cluster_role(
        &h,
        "secret-reader",
        rules_json(&[(&["list"], &[""], &["secrets"])]),
    )
    .await;
    cluster_role(
        &h,
        "pod-reader",
        rules_json(&[(&["list"], &[""], &["pods"])]),
    )
    .await;
    role_binding(
        &h,
        "team",
        "devs",
        "ClusterRole",
        "cm-reader",
        vec![subject("Group", "devs")],
    )
    .await;
    role_binding(
        &h,
        "team",
        "robot",
        "ClusterRole",
        "secret-reader",
        vec![subject("ServiceAccount", "team/robot")],
    )
    .await;
    role_binding(
        &h,
        "team",
        "all-sa",
        "ClusterRole",
        "pod-reader",
        vec![subject("Group", "system:serviceaccounts:team")],
    )
    .await;

    let dev = user("dave", &["devs", "system:authenticated"]);
    let robot = user(
        "system:serviceaccount:team:robot",
        &[
            "system:serviceaccounts",
            "system:serviceaccounts:team",
            "system:authenticated",
        ],
    );
    let other_sa = user(
        "system:serviceaccount:team:other",
        &[
            "system:serviceaccounts",
            "system:serviceaccounts:team",
            "system:authenticated",
        ],
    );
    let path = |r: &str| format!("/api/v1/namespaces/team/{r}");
    let cases = [
        (&dev, "configmaps", true),
        (&dev, "secrets", false),
        (&robot, "secrets", true),
        (&robot, "pods", true),
        (&robot, "configmaps", false),
        (&other_sa, "secrets", false),
        (&other_sa, "pods", true),
    ];
    for (who, resource, allowed) in cases {
        let r = send_as(&h, who, Method::GET, &path(resource), None).await;
        assert_eq!(
            r.status != StatusCode::FORBIDDEN,
            allowed,
            "{} list {resource}",
            who.username
        );
    }
}

#[tokio::test]
async fn system_masters_and_wildcard_rules_allow_everything() {
    let h = server().await;
    let root = user("root", &["system:masters"]);
    let r = send_as(&h, &root, Method::GET, "/api/v1/nodes", None).await;
    assert_eq!(r.status, StatusCode::OK);
    cluster_role(&h, "star", rules_json(&[(&["*"], &["*"], &["*"])])).await;
    cluster_role_binding(&h, "star", "star", vec![subject("User", "jane")]).await;
    for path in [
        "/api/v1/nodes",
        "/apis/apps/v1/namespaces/default/deployments",
        "/api/v1/namespaces/default/pods/x/status",
    ] {
        let r = send_as(&h, &jane(), Method::GET, path, None).await;
        assert_ne!(r.status, StatusCode::FORBIDDEN, "{path}");
    }
    // Resource wildcards do not reach non-resource URLs.
    assert_eq!(
        send_as(&h, &jane(), Method::GET, "/metrics", None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn always_allow_mode_lets_everyone_in() {
    let h = Server::builder()
        .memory()
        .authorization_mode(vec![kubox::authz::AuthorizationMode::AlwaysAllow])
        .start()
        .await
        .unwrap();
    let r = send_as(
        &h,
        &UserInfo::anonymous(),
        Method::GET,
        "/api/v1/secrets",
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(kubox::authz::AuthorizationMode::parse_list("RBAC,Webhook").is_err());
    assert_eq!(
        kubox::authz::AuthorizationMode::parse_list("RBAC,AlwaysAllow").unwrap(),
        vec![
            kubox::authz::AuthorizationMode::Rbac,
            kubox::authz::AuthorizationMode::AlwaysAllow
        ]
    );
}

/// jane may write roles and bindings in `team` and read pods there, nothing more.
async fn role_admin_setup(h: &ServerHandle) {
    namespace(h, "team").await;
    role(
        h,
        "team",
        "role-admin",
        rules_json(&[
            (
                &["create", "update", "get"],
                &["rbac.authorization.k8s.io"],
                &["roles", "rolebindings"],
            ),
            (&["get", "list"], &[""], &["pods"]),
        ]),
    )
    .await;
    role_binding(
        h,
        "team",
        "jane",
        "Role",
        "role-admin",
        vec![subject("User", "jane")],
    )
    .await;
}

fn role_body(name: &str, rules: Value) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": name}, "rules": rules})
}

#[tokio::test]
async fn creating_a_role_with_rules_not_held_is_forbidden_unless_escalate() {
    let h = server().await;
    role_admin_setup(&h).await;
    let roles = format!("{RBAC}/namespaces/team/roles");
    let held = role_body("held", rules_json(&[(&["get"], &[""], &["pods"])]));
    assert_eq!(
        send_as(&h, &jane(), Method::POST, &roles, Some(&held))
            .await
            .status,
        StatusCode::CREATED
    );

    let more = role_body(
        "more",
        rules_json(&[(&["get", "delete"], &[""], &["pods", "secrets"])]),
    );
    let r = send_as(&h, &jane(), Method::POST, &roles, Some(&more)).await;
    let s = r.status_failure(403, "Forbidden");
    assert_eq!(
        s["message"],
        "roles.rbac.authorization.k8s.io \"more\" is forbidden: user \"jane\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"pods\" \"secrets\"], Verbs:[\"delete\"]}\n{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\"]}"
    );
    // Updating a held role to more rules is an escalation too.
    let mut grown = held.clone();
    grown["rules"] = more["rules"].clone();
    let r = send_as(
        &h,
        &jane(),
        Method::PUT,
        &format!("{roles}/held"),
        Some(&grown),
    )
    .await;
    r.status_failure(403, "Forbidden");

    role(
        &h,
        "team",
        "escalator",
        rules_json(&[(&["escalate"], &["rbac.authorization.k8s.io"], &["roles"])]),
    )
    .await;
    role_binding(
        &h,
        "team",
        "jane-escalates",
        "Role",
        "escalator",
        vec![subject("User", "jane")],
    )
    .await;
    assert_eq!(
        send_as(&h, &jane(), Method::POST, &roles, Some(&more))
            .await
            .status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn binding_a_role_needs_its_rules_or_the_bind_verb() {
    let h = server().await;
    role_admin_setup(&h).await;
    let bindings = format!("{RBAC}/namespaces/team/rolebindings");
    let binding = |name: &str, role: &str| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "User", "name": "bob", "apiGroup": "rbac.authorization.k8s.io"}]})
    };
    cluster_role(
        &h,
        "pod-getter",
        rules_json(&[(&["get"], &[""], &["pods"])]),
    )
    .await;
    let r = send_as(
        &h,
        &jane(),
        Method::POST,
        &bindings,
        Some(&binding("ok", "pod-getter")),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);

    let r = send_as(
        &h,
        &jane(),
        Method::POST,
        &bindings,
        Some(&binding("edit", "edit")),
    )
    .await;
    let s = r.status_failure(403, "Forbidden");
    let msg = s["message"].as_str().unwrap();
    assert!(
        msg.starts_with("rolebindings.rbac.authorization.k8s.io \"edit\" is forbidden: user \"jane\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n"),
        "{msg}"
    );

    create(
        &h,
        &format!("{RBAC}/namespaces/team/roles"),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "binder"},
            "rules": [{"verbs": ["bind"], "apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "resourceNames": ["edit"]}]}),
    )
    .await;
    role_binding(
        &h,
        "team",
        "jane-binds",
        "Role",
        "binder",
        vec![subject("User", "jane")],
    )
    .await;
    let r = send_as(
        &h,
        &jane(),
        Method::POST,
        &bindings,
        Some(&binding("edit", "edit")),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    // `bind` on edit says nothing about admin.
    let r = send_as(
        &h,
        &jane(),
        Method::POST,
        &bindings,
        Some(&binding("admin", "admin")),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn labelled_cluster_roles_are_aggregated_into_view_edit_and_admin() {
    let h = server().await;
    let view = get(&h, &format!("{RBAC}/clusterroles/view")).await.json();
    assert!(
        view["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["resources"].as_array().unwrap().contains(&json!("pods"))),
        "view starts with the bootstrap rules: {view}"
    );
    create(
        &h,
        &format!("{RBAC}/clusterroles"),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "widgets-view", "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
            "rules": [{"verbs": ["get", "list"], "apiGroups": ["example.com"], "resources": ["widgets"]}]}),
    )
    .await;
    let widgets =
        json!({"verbs": ["get", "list"], "apiGroups": ["example.com"], "resources": ["widgets"]});
    for role in ["view", "edit", "admin"] {
        let r = get(&h, &format!("{RBAC}/clusterroles/{role}")).await.json();
        assert!(
            r["rules"].as_array().unwrap().contains(&widgets),
            "{role}: {r}"
        );
    }
    namespace(&h, "team").await;
    role_binding(
        &h,
        "team",
        "viewers",
        "ClusterRole",
        "view",
        vec![subject("User", "jane")],
    )
    .await;
    let r = send_as(
        &h,
        &jane(),
        Method::GET,
        "/api/v1/namespaces/team/pods",
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let sar = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": "jane", "resourceAttributes": {"namespace": "team", "verb": "list", "group": "example.com", "resource": "widgets"}}});
    let r = post_json(
        &h,
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        &sar,
    )
    .await
    .json();
    assert_eq!(r["status"]["allowed"], true, "{r}");
}

#[tokio::test]
async fn access_reviews_are_decided_by_the_authorizer() {
    let h = server().await;
    namespace(&h, "team").await;
    role(
        &h,
        "team",
        "reader",
        rules_json(&[(&["get", "list"], &[""], &["pods"])]),
    )
    .await;
    role_binding(
        &h,
        "team",
        "jane",
        "Role",
        "reader",
        vec![subject("User", "jane")],
    )
    .await;

    let sar = |verb: &str, ns: &str| {
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": "jane", "groups": ["system:authenticated"], "resourceAttributes": {"namespace": ns, "verb": verb, "resource": "pods"}}})
    };
    let path = "/apis/authorization.k8s.io/v1/subjectaccessreviews";
    let allowed = post_json(&h, path, &sar("list", "team")).await.json();
    assert_eq!(allowed["status"]["allowed"], true);
    assert_eq!(
        allowed["status"]["reason"],
        r#"RBAC: allowed by RoleBinding "jane/team" of Role "reader" to User "jane""#
    );
    assert_eq!(
        post_json(&h, path, &sar("delete", "team")).await.json()["status"]["allowed"],
        false
    );
    assert_eq!(
        post_json(&h, path, &sar("list", "default")).await.json()["status"]["allowed"],
        false
    );
    let nonres = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"groups": ["system:unauthenticated"], "nonResourceAttributes": {"path": "/version", "verb": "get"}}});
    assert_eq!(
        post_json(&h, path, &nonres).await.json()["status"]["allowed"],
        true
    );
    post_json(&h, path, &json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": {"resourceAttributes": {"verb": "get"}}}))
        .await
        .status_failure(422, "Invalid");

    // jane may not ask about others...
    let r = send_as(&h, &jane(), Method::POST, path, Some(&sar("list", "team"))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // ...but about herself (system:basic-user).
    let ssar = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"namespace": "team", "verb": "get", "resource": "pods"}}});
    let r = send_as(
        &h,
        &jane(),
        Method::POST,
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        Some(&ssar),
    )
    .await;
    assert_eq!(r.json()["status"]["allowed"], true);

    let lsar = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "LocalSubjectAccessReview", "metadata": {"namespace": "team"},
        "spec": {"user": "jane", "resourceAttributes": {"namespace": "team", "verb": "get", "resource": "pods"}}});
    let r = post_json(
        &h,
        "/apis/authorization.k8s.io/v1/namespaces/team/localsubjectaccessreviews",
        &lsar,
    )
    .await;
    assert_eq!(r.json()["status"]["allowed"], true);

    let ssrr = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview", "spec": {"namespace": "team"}});
    let r = send_as(
        &h,
        &jane(),
        Method::POST,
        "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
        Some(&ssrr),
    )
    .await
    .json();
    let rules = r["status"]["resourceRules"].as_array().unwrap();
    assert!(
        rules
            .contains(&json!({"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]})),
        "{r}"
    );
    assert!(
        rules.iter().any(|r| r["resources"]
            .as_array()
            .unwrap()
            .contains(&json!("selfsubjectaccessreviews"))),
        "{r}"
    );
    assert!(
        r["status"]["nonResourceRules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["nonResourceURLs"]
                .as_array()
                .unwrap()
                .contains(&json!("/apis/*"))),
        "{r}"
    );
}

#[tokio::test]
async fn the_bootstrap_policy_is_created_and_annotated() {
    let h = server().await;
    for name in [
        "cluster-admin",
        "admin",
        "edit",
        "view",
        "system:discovery",
        "system:public-info-viewer",
        "system:basic-user",
        "system:monitoring",
    ] {
        let r = get(&h, &format!("{RBAC}/clusterroles/{name}")).await;
        assert_eq!(r.status, StatusCode::OK, "{name}");
        let o = r.json();
        assert_eq!(
            o["metadata"]["annotations"]["rbac.authorization.kubernetes.io/autoupdate"],
            "true"
        );
        assert_eq!(
            o["metadata"]["labels"]["kubernetes.io/bootstrapping"],
            "rbac-defaults"
        );
    }
    let b = get(
        &h,
        &format!("{RBAC}/clusterrolebindings/system:public-info-viewer"),
    )
    .await
    .json();
    let groups: Vec<&str> = b["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        groups,
        vec!["system:authenticated", "system:unauthenticated"]
    );
    let b = get(&h, &format!("{RBAC}/clusterrolebindings/cluster-admin"))
        .await
        .json();
    assert_eq!(b["subjects"][0]["name"], "system:masters");
}

/// The aggregation writes through the API's store with admission, as kube's
/// clusterrole-aggregation controller does: a ValidatingAdmissionPolicy refusing updates of
/// the aggregated role keeps it as it was; once the policy is unbound, aggregation resumes.
#[tokio::test]
async fn cluster_role_aggregation_is_admitted_like_any_write() {
    let h = server().await;
    let vap = "/apis/admissionregistration.k8s.io/v1";
    create(
        &h,
        &format!("{RBAC}/clusterroles"),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "gadgets"},
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"aggregate-to-gadgets": "true"}}]}}),
    )
    .await;
    create(
        &h,
        &format!("{vap}/validatingadmissionpolicies"),
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": "frozen-gadgets"},
            "spec": {"matchConstraints": {"resourceRules": [{"apiGroups": ["rbac.authorization.k8s.io"],
                        "apiVersions": ["v1"], "operations": ["UPDATE"], "resources": ["clusterroles"]}]},
                     "validations": [{"expression": "object.metadata.name != 'gadgets'"}]}}),
    )
    .await;
    create(
        &h,
        &format!("{vap}/validatingadmissionpolicybindings"),
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": "frozen-gadgets"},
            "spec": {"policyName": "frozen-gadgets", "validationActions": ["Deny"]}}),
    )
    .await;
    let labelled = |name: &str, resource: &str| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": name, "labels": {"aggregate-to-gadgets": "true"}},
            "rules": [{"verbs": ["get"], "apiGroups": ["example.com"], "resources": [resource]}]})
    };
    create(
        &h,
        &format!("{RBAC}/clusterroles"),
        labelled("gadgets-a", "as"),
    )
    .await;
    let role = get(&h, &format!("{RBAC}/clusterroles/gadgets"))
        .await
        .json();
    assert!(
        role["rules"].as_array().is_none_or(|r| r.is_empty()),
        "admission refused the aggregation: {role}"
    );
    let r = send(
        &h,
        Method::DELETE,
        &format!("{vap}/validatingadmissionpolicybindings/frozen-gadgets"),
        "application/json",
        Vec::new(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    create(
        &h,
        &format!("{RBAC}/clusterroles"),
        labelled("gadgets-b", "bs"),
    )
    .await;
    let role = get(&h, &format!("{RBAC}/clusterroles/gadgets"))
        .await
        .json();
    assert_eq!(
        role["rules"].as_array().map(Vec::len),
        Some(2),
        "both labelled roles aggregated: {role}"
    );
}
