//! Authentication and impersonation: client certificates over TLS, static and ServiceAccount
//! tokens, anonymous requests, TokenReview, impersonation, and the shape of every 401.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use kubox::authn::UserInfo;
use kubox::authz::{Attributes, Authorizer, Decision};
use kubox::ManualClock;
use serde_json::{json, Value};

const SSR: &str = "/apis/authentication.k8s.io/v1/selfsubjectreviews";
const TOKEN_REVIEWS: &str = "/apis/authentication.k8s.io/v1/tokenreviews";
const SA_PATH: &str = "/api/v1/namespaces/default/serviceaccounts";

fn ssr_body() -> Value {
    json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
}

/// A kube-rs client from a kubeconfig (YAML).
async fn client(kubeconfig: &str) -> kube::Client {
    let kc = kube::config::Kubeconfig::from_yaml(kubeconfig).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    kube::Client::try_from(cfg).unwrap()
}

/// One raw request over the network: (status, JSON body).
async fn call(c: &kube::Client, method: Method, path: &str, body: &Value) -> (StatusCode, Value) {
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(kube::client::Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap();
    let resp = c.send(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)));
    (status, v)
}

/// Who the server thinks `c` is.
async fn whoami(c: &kube::Client) -> Value {
    let (status, body) = call(c, Method::POST, SSR, &ssr_body()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["status"]["userInfo"].clone()
}

/// The kube-apiserver 401, exactly.
#[track_caller]
fn assert_unauthorized(status: StatusCode, body: &Value) {
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(
        body,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
    );
}

/// An in-process request with a bearer token and extra headers.
async fn as_token(h: &ServerHandle, token: &str, method: Method, path: &str, body: &Value) -> Resp {
    let auth = format!("Bearer {token}");
    send_with(
        h,
        method,
        path,
        &[
            ("content-type", "application/json"),
            ("authorization", &auth),
        ],
        Bytes::from(serde_json::to_vec(body).unwrap()),
    )
    .await
}

async fn start_with_clock(clock: &ManualClock) -> ServerHandle {
    Server::builder()
        .memory()
        .clock(Arc::new(clock.clone()))
        .start()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_kubeconfig_serves_https_as_kubernetes_admin_in_system_masters() {
    let h = Server::builder().memory().start().await.unwrap();
    assert!(h.url().starts_with("https://"), "{}", h.url());
    assert!(h.kubeconfig().contains("certificate-authority-data"));
    let user = whoami(&client(h.kubeconfig()).await).await;
    assert_eq!(user["username"], "kubernetes-admin");
    assert_eq!(
        user["groups"],
        json!(["system:masters", "system:authenticated"])
    );
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_client_certificate_names_the_user_by_cn_and_the_groups_by_o() {
    let h = Server::builder().memory().start().await.unwrap();
    let kc = h.kubeconfig_for("jane", &["dev", "ops"]).unwrap();
    let user = whoami(&client(&kc).await).await;
    assert_eq!(user["username"], "jane");
    assert_eq!(
        user["groups"],
        json!(["dev", "ops", "system:authenticated"])
    );
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_client_certificate_from_another_ca_is_401() {
    let h = Server::builder().memory().start().await.unwrap();
    let other = Server::builder().memory().start().await.unwrap();
    let foreign = other.client_cert("mallory", &["system:masters"]).unwrap();
    // Trust h's CA, present a certificate signed by the other server's CA.
    let kc = kubox::kubeconfig::render(
        &h.url(),
        Some(h.ca_pem()),
        &kubox::kubeconfig::Credential::ClientCert {
            cert_pem: foreign.cert_pem,
            key_pem: foreign.key_pem,
        },
    );
    let (status, body) = call(&client(&kc).await, Method::POST, SSR, &ssr_body()).await;
    assert_unauthorized(status, &body);
    other.shutdown().await.unwrap();
    h.shutdown().await.unwrap();
}

/// A kubeconfig that trusts the server's CA and carries no credentials.
fn no_credentials(h: &ServerHandle) -> String {
    let kc = h.kubeconfig();
    let start = kc.find("  user:\n").unwrap();
    let end = kc.find("contexts:").unwrap();
    format!("{}  user: {{}}\n{}", &kc[..start], &kc[end..])
}

#[tokio::test]
async fn a_network_request_without_credentials_is_anonymous() {
    // Under RBAC (the default) anonymous users may not even ask who they are, as on a cluster:
    // system:basic-user is bound to system:authenticated only.
    let h = Server::builder().memory().start().await.unwrap();
    let c = client(&no_credentials(&h)).await;
    let (status, body) = call(&c, Method::POST, SSR, &ssr_body()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("User \"system:anonymous\" cannot create resource \"selfsubjectreviews\""),
        "{body}"
    );
    h.shutdown().await.unwrap();
    let h = Server::builder()
        .memory()
        .authorization_mode(vec![kubox::authz::AuthorizationMode::AlwaysAllow])
        .start()
        .await
        .unwrap();
    let user = whoami(&client(&no_credentials(&h)).await).await;
    assert_eq!(user["username"], "system:anonymous");
    assert_eq!(user["groups"], json!(["system:unauthenticated"]));
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn with_anonymous_auth_off_a_request_without_credentials_is_401() {
    let h = Server::builder()
        .memory()
        .anonymous_auth(false)
        .start()
        .await
        .unwrap();
    let c = client(&no_credentials(&h)).await;
    let (status, body) = call(&c, Method::GET, "/version", &json!(null)).await;
    assert_unauthorized(status, &body);
    // The admin's certificate still works; in-process requests are the loopback user.
    assert_eq!(
        whoami(&client(h.kubeconfig()).await).await["username"],
        "kubernetes-admin"
    );
    let r = post_json(&h, SSR, &ssr_body()).await;
    assert_eq!(
        r.json()["status"]["userInfo"]["groups"][0],
        "system:masters"
    );
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn static_tokens_authenticate_and_an_unknown_token_is_401_even_with_anonymous_on() {
    let alice = UserInfo {
        username: "alice".into(),
        uid: "u-1".into(),
        groups: vec!["dev".into()],
        ..Default::default()
    };
    let h = Server::builder()
        .memory()
        .static_tokens([("s3cret".to_string(), alice)])
        .start()
        .await
        .unwrap();
    let r = as_token(&h, "s3cret", Method::POST, SSR, &ssr_body()).await;
    assert_eq!(
        r.json()["status"]["userInfo"],
        json!({"username": "alice", "uid": "u-1", "groups": ["dev", "system:authenticated"]})
    );
    let r = as_token(&h, "nope", Method::GET, "/version", &json!(null)).await;
    assert_unauthorized(r.status, &r.json());
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_token_auth_file_in_kube_apiserver_csv_format_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokens.csv");
    std::fs::write(&file, "tok1,bob,uid-b,\"a,b\"\n").unwrap();
    let h = Server::builder()
        .memory()
        .token_auth_file(&file)
        .start()
        .await
        .unwrap();
    let r = as_token(&h, "tok1", Method::POST, SSR, &ssr_body()).await;
    assert_eq!(r.json()["status"]["userInfo"]["username"], "bob");
    assert_eq!(
        r.json()["status"]["userInfo"]["groups"],
        json!(["a", "b", "system:authenticated"])
    );
    h.shutdown().await.unwrap();
}

async fn create_sa(h: &ServerHandle, name: &str) -> Value {
    let r = post_json(
        h,
        SA_PATH,
        &json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json());
    r.json()
}

async fn token_request(h: &ServerHandle, sa: &str, spec: Value) -> Resp {
    post_json(
        h,
        &format!("{SA_PATH}/{sa}/token"),
        &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}),
    )
    .await
}

#[tokio::test]
async fn a_token_request_gives_a_jwt_that_authenticates_as_the_service_account_until_it_expires() {
    let clock = ManualClock::default();
    let h = start_with_clock(&clock).await;
    let sa = create_sa(&h, "robot").await;
    let r = token_request(&h, "robot", json!({"expirationSeconds": 600})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json());
    let tr = r.json();
    assert_eq!(tr["kind"], "TokenRequest");
    assert_eq!(
        tr["spec"]["audiences"],
        json!(["https://kubernetes.default.svc.cluster.local"])
    );
    let token = tr["status"]["token"].as_str().unwrap().to_string();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    let r = as_token(&h, &token, Method::POST, SSR, &ssr_body()).await;
    let user = &r.json()["status"]["userInfo"];
    assert_eq!(user["username"], "system:serviceaccount:default:robot");
    assert_eq!(user["uid"], sa["metadata"]["uid"]);
    assert_eq!(
        user["groups"],
        json!([
            "system:serviceaccounts",
            "system:serviceaccounts:default",
            "system:authenticated"
        ])
    );
    assert!(
        user["extra"]["authentication.kubernetes.io/credential-id"][0]
            .as_str()
            .unwrap()
            .starts_with("JTI=")
    );
    clock.advance(Duration::from_secs(599));
    let r = as_token(&h, &token, Method::GET, "/version", &json!(null)).await;
    assert_eq!(r.status, StatusCode::OK);
    clock.advance(Duration::from_secs(1));
    let r = as_token(&h, &token, Method::GET, "/version", &json!(null)).await;
    assert_unauthorized(r.status, &r.json());
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_token_for_another_audience_does_not_authenticate_to_the_api_but_reviews_for_it() {
    let h = Server::builder().memory().start().await.unwrap();
    create_sa(&h, "robot").await;
    let tr = token_request(&h, "robot", json!({"audiences": ["vault"]}))
        .await
        .json();
    assert_eq!(tr["spec"]["expirationSeconds"], 3600);
    let token = tr["status"]["token"].as_str().unwrap();
    let r = as_token(&h, token, Method::GET, "/version", &json!(null)).await;
    assert_unauthorized(r.status, &r.json());
    let review = |audiences: Value| {
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
               "spec": {"token": token, "audiences": audiences}})
    };
    let r = post_json(&h, TOKEN_REVIEWS, &review(json!(["vault"]))).await;
    let status = &r.json()["status"];
    assert_eq!(status["authenticated"], true, "{status}");
    assert_eq!(status["audiences"], json!(["vault"]));
    assert_eq!(
        status["user"]["username"],
        "system:serviceaccount:default:robot"
    );
    let r = post_json(&h, TOKEN_REVIEWS, &review(json!([]))).await;
    let status = &r.json()["status"];
    assert!(status["authenticated"].is_null(), "{status}");
    assert!(
        status["error"].as_str().unwrap().contains("audience"),
        "{status}"
    );
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_token_review_of_a_static_token_and_of_garbage() {
    let h = Server::builder()
        .memory()
        .static_tokens([(
            "abc".to_string(),
            UserInfo {
                username: "carol".into(),
                ..Default::default()
            },
        )])
        .start()
        .await
        .unwrap();
    let review = |t: &str| json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": t}});
    let r = post_json(&h, TOKEN_REVIEWS, &review("abc")).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.json()["status"]["user"]["username"], "carol");
    assert_eq!(
        r.json()["status"]["user"]["groups"],
        json!(["system:authenticated"])
    );
    let r = post_json(&h, TOKEN_REVIEWS, &review("garbage")).await;
    assert_eq!(r.json()["status"]["error"], "invalid bearer token");
    post_json(&h, TOKEN_REVIEWS, &review(""))
        .await
        .status_failure(400, "BadRequest");
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_service_account_token_stops_working_when_the_account_is_deleted() {
    let h = Server::builder().memory().start().await.unwrap();
    create_sa(&h, "temp").await;
    let token = h
        .service_account_token("default", "temp", Duration::from_secs(3600))
        .await
        .unwrap();
    let r = as_token(&h, &token, Method::GET, "/version", &json!(null)).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = send(
        &h,
        Method::DELETE,
        &format!("{SA_PATH}/temp"),
        "",
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = as_token(&h, &token, Method::GET, "/version", &json!(null)).await;
    assert_unauthorized(r.status, &r.json());
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_token_bound_to_a_pod_names_the_pod_and_dies_with_it() {
    let h = Server::builder().memory().start().await.unwrap();
    create_sa(&h, "robot").await;
    let pod = post_json(&h, "/api/v1/namespaces/default/pods", &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}})).await.json();
    let tr = token_request(
        &h,
        "robot",
        json!({"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p"}}),
    )
    .await;
    assert_eq!(tr.status, StatusCode::CREATED, "{}", tr.json());
    let tr = tr.json();
    assert_eq!(tr["spec"]["boundObjectRef"]["uid"], pod["metadata"]["uid"]);
    let token = tr["status"]["token"].as_str().unwrap();
    let user = as_token(&h, token, Method::POST, SSR, &ssr_body())
        .await
        .json();
    assert_eq!(
        user["status"]["userInfo"]["extra"]["authentication.kubernetes.io/pod-name"],
        json!(["p"])
    );
    let r = send(
        &h,
        Method::DELETE,
        "/api/v1/namespaces/default/pods/p?gracePeriodSeconds=0",
        "",
        Bytes::new(),
    )
    .await;
    assert!(r.status.is_success(), "{}", r.json());
    let r = as_token(&h, token, Method::GET, "/version", &json!(null)).await;
    assert_unauthorized(r.status, &r.json());
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_token_request_refuses_short_lifetimes_and_unknown_accounts() {
    let h = Server::builder().memory().start().await.unwrap();
    create_sa(&h, "robot").await;
    let r = token_request(&h, "robot", json!({"expirationSeconds": 60})).await;
    let s = r.status_failure(422, "Invalid");
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .contains("less than 10 minutes"),
        "{s}"
    );
    token_request(&h, "ghost", json!({}))
        .await
        .status_failure(404, "NotFound");
    h.shutdown().await.unwrap();
}

async fn impersonating(h: &ServerHandle, headers: &[(&str, &str)]) -> Resp {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    send_with(
        h,
        Method::POST,
        SSR,
        &all,
        Bytes::from(serde_json::to_vec(&ssr_body()).unwrap()),
    )
    .await
}

#[tokio::test]
async fn impersonation_headers_switch_the_user_when_allowed() {
    let h = Server::builder().memory().start().await.unwrap();
    let r = impersonating(
        &h,
        &[
            ("impersonate-user", "jane"),
            ("impersonate-group", "dev"),
            ("impersonate-uid", "u-9"),
            ("impersonate-extra-scopes", "view"),
        ],
    )
    .await;
    assert_eq!(
        r.json()["status"]["userInfo"],
        json!({"username": "jane", "uid": "u-9", "groups": ["dev", "system:authenticated"], "extra": {"scopes": ["view"]}})
    );
    let r = impersonating(&h, &[("impersonate-user", "system:serviceaccount:ns1:bot")]).await;
    assert_eq!(
        r.json()["status"]["userInfo"]["groups"],
        json!([
            "system:serviceaccounts",
            "system:serviceaccounts:ns1",
            "system:authenticated"
        ])
    );
    let r = impersonating(&h, &[("impersonate-group", "dev")]).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", r.json());
    h.shutdown().await.unwrap();
}

/// Allows everything except impersonating users named `root`.
struct NoRoot;

impl Authorizer for NoRoot {
    fn authorize(&self, a: &Attributes<'_>) -> Decision {
        if a.verb == "impersonate" && a.resource == "users" && a.name == "root" {
            return Decision::NoOpinion(String::new());
        }
        Decision::Allow(String::new())
    }
}

#[tokio::test]
async fn impersonation_the_authorizer_does_not_allow_is_403() {
    let h = Server::builder()
        .memory()
        .authorizer(Arc::new(NoRoot))
        .start()
        .await
        .unwrap();
    let r = impersonating(&h, &[("impersonate-user", "root")]).await;
    let s = r.status_failure(403, "Forbidden");
    assert_eq!(
        s["message"],
        "users \"root\" is forbidden: User \"system:apiserver\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"
    );
    let r = impersonating(&h, &[("impersonate-user", "jane")]).await;
    assert_eq!(r.json()["status"]["userInfo"]["username"], "jane");
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_watch_streams_over_tls() {
    use futures::{StreamExt, TryStreamExt};
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Api, PostParams, WatchEvent, WatchParams};
    let h = Server::builder().memory().start().await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client(h.kubeconfig()).await, "default");
    let mut stream = cms
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    let cm: ConfigMap = serde_json::from_value(configmap("over-tls")).unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap();
    loop {
        match stream.try_next().await.unwrap().unwrap() {
            WatchEvent::Added(c) if c.metadata.name.as_deref() == Some("over-tls") => break,
            _ => continue,
        }
    }
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_service_account_token_secret_is_filled_and_its_token_authenticates_until_deleted() {
    use base64::Engine;
    let h = Server::builder().memory().start().await.unwrap();
    create_sa(&h, "legacy").await;
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
        "metadata": {"name": "legacy-token", "annotations": {"kubernetes.io/service-account.name": "legacy"}}});
    let r = post_json(&h, "/api/v1/namespaces/default/secrets", &secret).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json());
    h.settled().await;
    let got = get(&h, "/api/v1/namespaces/default/secrets/legacy-token")
        .await
        .json();
    let decode = |v: &Value| {
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap_or_else(|| panic!("{got}")))
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(decode(&got["data"]["ca.crt"]), h.ca_pem());
    assert_eq!(decode(&got["data"]["namespace"]), "default");
    let token = decode(&got["data"]["token"]);
    let r = as_token(&h, &token, Method::POST, SSR, &ssr_body()).await;
    assert_eq!(
        r.json()["status"]["userInfo"]["username"],
        "system:serviceaccount:default:legacy"
    );
    let r = send(
        &h,
        Method::DELETE,
        "/api/v1/namespaces/default/secrets/legacy-token",
        "",
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = as_token(&h, &token, Method::GET, "/version", &json!(null)).await;
    assert_unauthorized(r.status, &r.json());
    h.shutdown().await.unwrap();
}

/// `--client-ca-file`: certificates signed by the CAs of the bundle are accepted (user from the
/// common name, groups from the organizations), as well as kubox's own; the bundle is
/// published for extension servers; a file that is no CA bundle stops the start.
#[tokio::test]
async fn a_client_ca_file_adds_the_cas_client_certificates_are_accepted_from() {
    let external = Server::builder().memory().start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("client-ca.crt");
    std::fs::write(&bundle, external.ca_pem()).unwrap();
    let h = Server::builder()
        .memory()
        .client_ca_file(&bundle)
        .start()
        .await
        .unwrap();
    let cert = external.client_cert("jane", &["dev"]).unwrap();
    let kc = kubox::kubeconfig::render(
        &h.url(),
        Some(h.ca_pem()),
        &kubox::kubeconfig::Credential::ClientCert {
            cert_pem: cert.cert_pem,
            key_pem: cert.key_pem,
        },
    );
    let user = whoami(&client(&kc).await).await;
    assert_eq!(user["username"], "jane");
    assert_eq!(user["groups"], json!(["dev", "system:authenticated"]));
    // kubox's own credentials still work.
    let admin = whoami(&client(h.kubeconfig()).await).await;
    assert!(admin["groups"]
        .as_array()
        .unwrap()
        .contains(&json!("system:masters")));
    let published = get(
        &h,
        "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication",
    )
    .await
    .json();
    let cas = published["data"]["client-ca-file"].as_str().unwrap();
    assert!(cas.contains(external.ca_pem().trim()) && cas.contains(h.ca_pem().trim()));
    h.shutdown().await.unwrap();
    external.shutdown().await.unwrap();

    std::fs::write(&bundle, "not a certificate").unwrap();
    let refused = Server::builder()
        .memory()
        .client_ca_file(&bundle)
        .start()
        .await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.to_string().contains("--client-ca-file")),
        "{:?}",
        refused.err()
    );
}
