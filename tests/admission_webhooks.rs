//! Mutating and validating admission webhooks. Most tests build the server with a webhook caller
//! that answers AdmissionReviews from handlers written here, to check the admission side:
//! matching, the review sent, JSONPatch, denials, warnings, failurePolicy, timeouts, dry run,
//! reinvocation. The `https` module drives the server's own HTTPS client against a webhook
//! served here (rustls, rcgen certificates): caBundle trust, service references through the
//! resolver, a webhook that never answers, an untrusted certificate, nothing listening.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use common::*;
use http::Method;
use kubox::admission::webhook::WebhookCaller;
use serde_json::{json, Value};

type Handler = Arc<dyn Fn(&Value) -> Option<Value> + Send + Sync>;

/// Webhooks by URL; each call is recorded (url, review, timeout).
#[derive(Default, Clone)]
struct Hooks {
    handlers: Arc<Mutex<HashMap<String, Handler>>>,
    calls: Arc<Mutex<Vec<(String, Value, Duration)>>>,
}

impl Hooks {
    fn on(&self, url: &str, f: impl Fn(&Value) -> Option<Value> + Send + Sync + 'static) {
        self.handlers
            .lock()
            .unwrap()
            .insert(url.to_string(), Arc::new(f));
    }

    fn calls(&self, url: &str) -> Vec<Value> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(u, _, _)| u == url)
            .map(|(_, r, _)| r.clone())
            .collect()
    }
}

#[async_trait::async_trait]
impl WebhookCaller for Hooks {
    async fn call(&self, cc: &Value, review: &Value, timeout: Duration) -> Result<Value, String> {
        let url = cc["url"].as_str().unwrap_or_default().to_string();
        self.calls
            .lock()
            .unwrap()
            .push((url.clone(), review.clone(), timeout));
        let h = self.handlers.lock().unwrap().get(&url).cloned();
        let Some(h) = h else {
            return Err(format!(
                "Post \"{url}\": dial tcp: connect: connection refused"
            ));
        };
        match h(review) {
            Some(resp) => Ok(resp),
            // A webhook that never answers: the caller's deadline decides.
            None => {
                tokio::time::sleep(timeout).await;
                Err(format!("Post \"{url}\": context deadline exceeded"))
            }
        }
    }
}

fn allow(review: &Value) -> Value {
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
           "response": {"uid": review["request"]["uid"], "allowed": true}})
}

fn allow_patch(review: &Value, ops: Value) -> Value {
    let mut r = allow(review);
    r["response"]["patchType"] = json!("JSONPatch");
    r["response"]["patch"] =
        json!(base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&ops).unwrap()));
    r
}

async fn server_with(hooks: &Hooks) -> ServerHandle {
    kubox::Server::builder()
        .memory()
        .disable_controller(kubox::Controller::ServiceAccount)
        .webhook_caller(Arc::new(hooks.clone()))
        .start()
        .await
        .unwrap()
}

fn hook(name: &str, url: &str, resources: &[&str], extra: Value) -> Value {
    let mut h = json!({
        "name": name,
        "clientConfig": {"url": url},
        "rules": [{"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE"],
                   "resources": resources}],
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
    });
    if let (Some(h), Some(e)) = (h.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            h.insert(k.clone(), v.clone());
        }
    }
    h
}

async fn configure(h: &ServerHandle, kind: &str, name: &str, hooks: Vec<Value>) {
    let (path, k) = match kind {
        "mutating" => (
            "mutatingwebhookconfigurations",
            "MutatingWebhookConfiguration",
        ),
        _ => (
            "validatingwebhookconfigurations",
            "ValidatingWebhookConfiguration",
        ),
    };
    let cfg = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": k,
                     "metadata": {"name": name}, "webhooks": hooks});
    let r = post_json(
        h,
        &format!("/apis/admissionregistration.k8s.io/v1/{path}"),
        &cfg,
    )
    .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
}

#[tokio::test]
async fn mutating_webhook_json_patch_adds_a_label_that_reads_back() {
    let hooks = Hooks::default();
    hooks.on("https://mutate.test/cm", |r| {
        Some(allow_patch(
            r,
            json!([{"op": "add", "path": "/metadata/labels/mutated", "value": "yes"}]),
        ))
    });
    let h = server_with(&hooks).await;
    configure(
        &h,
        "mutating",
        "m",
        vec![hook(
            "hook.label.test",
            "https://mutate.test/cm",
            &["configmaps"],
            json!({}),
        )],
    )
    .await;
    let r = post_json(&h, CM, &configmap("a")).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["metadata"]["labels"]["mutated"], "yes");
    let got = get(&h, &format!("{CM}/a")).await.json();
    assert_eq!(
        got["metadata"]["labels"],
        json!({"app": "demo", "mutated": "yes"})
    );

    let calls = hooks.calls("https://mutate.test/cm");
    assert_eq!(calls.len(), 1);
    let req = &calls[0]["request"];
    assert_eq!(calls[0]["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(calls[0]["kind"], "AdmissionReview");
    assert_eq!(req["operation"], "CREATE");
    assert_eq!(
        req["kind"],
        json!({"group": "", "version": "v1", "kind": "ConfigMap"})
    );
    assert_eq!(
        req["resource"],
        json!({"group": "", "version": "v1", "resource": "configmaps"})
    );
    assert_eq!(req["namespace"], "default");
    assert_eq!(req["name"], "a");
    assert_eq!(req["object"]["data"], json!({"k": "v"}));
    assert!(req["oldObject"].is_null());
    assert_eq!(req["userInfo"]["username"], "system:apiserver");
    assert_eq!(req["dryRun"], false);

    // Updates carry the old object.
    let r = patch(
        &h,
        &format!("{CM}/a"),
        "application/merge-patch+json",
        r#"{"data":{"k":"w"}}"#,
    )
    .await;
    assert_eq!(r.status, 200);
    let calls = hooks.calls("https://mutate.test/cm");
    assert_eq!(calls[1]["request"]["operation"], "UPDATE");
    assert_eq!(calls[1]["request"]["oldObject"]["data"]["k"], "v");
    assert_eq!(calls[1]["request"]["object"]["data"]["k"], "w");
}

/// A webhook's patch may put a value of any type anywhere: the object is checked against its
/// kind's schema again, on create and on update, and nothing of it is stored.
#[tokio::test]
async fn a_webhook_patch_of_the_wrong_type_is_a_400_and_nothing_is_stored() {
    let hooks = Hooks::default();
    hooks.on("https://retype.test/", |r| {
        let ops = match r["request"]["object"]["data"]["k"].as_str() {
            Some("number") => json!([{"op": "replace", "path": "/data/k", "value": 5}]),
            Some("label") => {
                json!([{"op": "add", "path": "/metadata/labels/n", "value": {"x": 1}}])
            }
            Some("items") => json!([{"op": "add", "path": "/data", "value": ["a"]}]),
            _ => return Some(allow(r)),
        };
        Some(allow_patch(r, ops))
    });
    let h = server_with(&hooks).await;
    configure(
        &h,
        "mutating",
        "m",
        vec![hook(
            "hook.retype.test",
            "https://retype.test/",
            &["configmaps"],
            json!({}),
        )],
    )
    .await;
    for (name, k) in [("n", "number"), ("l", "label"), ("i", "items")] {
        let mut cm = configmap(name);
        cm["data"]["k"] = json!(k);
        post_json(&h, CM, &cm)
            .await
            .status_failure(400, "BadRequest");
        assert_eq!(get(&h, &format!("{CM}/{name}")).await.status, 404, "{k}");
    }
    let r = post_json(&h, CM, &configmap("a")).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    for k in ["number", "label", "items"] {
        let body = json!({"data": {"k": k}}).to_string();
        patch(
            &h,
            &format!("{CM}/a"),
            "application/merge-patch+json",
            &body,
        )
        .await
        .status_failure(400, "BadRequest");
    }
    let got = get(&h, &format!("{CM}/a")).await.json();
    assert_eq!(got["data"], json!({"k": "v"}));
    assert_eq!(got["metadata"]["labels"], json!({"app": "demo"}));
}

#[tokio::test]
async fn validating_webhook_denial_carries_its_status_and_kube_message() {
    let hooks = Hooks::default();
    hooks.on("https://deny.test/", |r| {
        let name = r["request"]["name"].as_str().unwrap().to_string();
        let allowed = name != "forbidden";
        let mut resp = allow(r);
        resp["response"]["allowed"] = json!(allowed);
        if !allowed {
            resp["response"]["status"] =
                json!({"code": 403, "reason": "Forbidden", "message": "name is reserved"});
        }
        Some(resp)
    });
    let h = server_with(&hooks).await;
    configure(
        &h,
        "validating",
        "v",
        vec![hook(
            "hook.names.test",
            "https://deny.test/",
            &["configmaps"],
            json!({}),
        )],
    )
    .await;
    let r = post_json(&h, CM, &configmap("forbidden")).await;
    let s = r.status_failure(403, "Forbidden");
    assert_eq!(
        s["message"],
        "admission webhook \"hook.names.test\" denied the request: name is reserved"
    );
    assert_eq!(get(&h, &format!("{CM}/forbidden")).await.status, 404);
    assert_eq!(post_json(&h, CM, &configmap("fine")).await.status, 201);
}

#[tokio::test]
async fn denial_without_status_is_400_without_explanation() {
    let hooks = Hooks::default();
    hooks.on("https://deny.test/", |r| {
        let mut resp = allow(r);
        resp["response"]["allowed"] = json!(false);
        Some(resp)
    });
    let h = server_with(&hooks).await;
    configure(
        &h,
        "validating",
        "v",
        vec![hook(
            "hook.bare.test",
            "https://deny.test/",
            &["configmaps"],
            json!({}),
        )],
    )
    .await;
    let r = post_json(&h, CM, &configmap("a")).await;
    let s = r.json();
    assert_eq!(r.status, 400, "{s}");
    assert_eq!(
        s["message"],
        "admission webhook \"hook.bare.test\" denied the request without explanation"
    );
}

#[tokio::test]
async fn webhook_warnings_become_warning_headers() {
    let hooks = Hooks::default();
    hooks.on("https://warn.test/", |r| {
        let mut resp = allow(r);
        resp["response"]["warnings"] = json!(["configmaps are deprecated here"]);
        Some(resp)
    });
    let h = server_with(&hooks).await;
    configure(
        &h,
        "validating",
        "v",
        vec![hook(
            "hook.warn.test",
            "https://warn.test/",
            &["configmaps"],
            json!({}),
        )],
    )
    .await;
    let r = post_json(&h, CM, &configmap("a")).await;
    assert_eq!(r.status, 201);
    let w: Vec<_> = r.headers.get_all("warning").iter().collect();
    assert_eq!(w, ["299 - \"configmaps are deprecated here\""]);
}

#[tokio::test]
async fn failure_policy_fail_refuses_and_ignore_admits_when_the_webhook_is_down() {
    let hooks = Hooks::default(); // nothing answers
    let h = server_with(&hooks).await;
    configure(
        &h,
        "validating",
        "v",
        vec![
            hook(
                "hook.down-ignore.test",
                "https://down.test/a",
                &["configmaps"],
                json!({"failurePolicy": "Ignore"}),
            ),
            hook(
                "hook.down-fail.test",
                "https://down.test/b",
                &["secrets"],
                json!({"failurePolicy": "Fail"}),
            ),
        ],
    )
    .await;
    assert_eq!(post_json(&h, CM, &configmap("a")).await.status, 201);
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}});
    let r = post_json(&h, "/api/v1/namespaces/default/secrets", &secret).await;
    let s = r.status_failure(500, "InternalError");
    assert_eq!(
        s["message"],
        "Internal error occurred: failed calling webhook \"hook.down-fail.test\": failed to call webhook: Post \"https://down.test/b\": dial tcp: connect: connection refused"
    );
    // failurePolicy defaults to Fail.
    configure(
        &h,
        "mutating",
        "m",
        vec![hook(
            "hook.down-default.test",
            "https://down.test/c",
            &["services"],
            json!({}),
        )],
    )
    .await;
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"},
                     "spec": {"ports": [{"port": 80}]}});
    post_json(&h, "/api/v1/namespaces/default/services", &svc)
        .await
        .status_failure(500, "InternalError");
}

#[tokio::test]
async fn webhook_that_never_answers_times_out_after_timeout_seconds() {
    let hooks = Hooks::default();
    hooks.on("https://slow.test/", |_| None);
    let h = server_with(&hooks).await;
    configure(
        &h,
        "validating",
        "v",
        vec![hook(
            "hook.slow.test",
            "https://slow.test/",
            &["configmaps"],
            json!({"timeoutSeconds": 1}),
        )],
    )
    .await;
    let started = std::time::Instant::now();
    let r = post_json(&h, CM, &configmap("a")).await;
    let s = r.status_failure(500, "InternalError");
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .ends_with("context deadline exceeded"),
        "{s}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        hooks.calls.lock().unwrap()[0].2,
        Duration::from_secs(1),
        "timeoutSeconds is the call's deadline"
    );
}

#[tokio::test]
async fn dry_runs_reach_side_effect_free_webhooks_and_side_effects_cannot_be_configured() {
    let hooks = Hooks::default();
    hooks.on("https://ok.test/", |r| Some(allow(r)));
    let h = server_with(&hooks).await;
    configure(
        &h,
        "validating",
        "v",
        vec![
            hook(
                "hook.pure.test",
                "https://ok.test/",
                &["configmaps"],
                json!({"sideEffects": "None"}),
            ),
            hook(
                "hook.effects.test",
                "https://ok.test/",
                &["secrets"],
                json!({"sideEffects": "NoneOnDryRun"}),
            ),
        ],
    )
    .await;
    let r = post_json(&h, &format!("{CM}?dryRun=All"), &configmap("a")).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        hooks.calls("https://ok.test/")[0]["request"]["dryRun"],
        true
    );
    assert_eq!(get(&h, &format!("{CM}/a")).await.status, 404);

    // NoneOnDryRun: called for a dry run too.
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}});
    let r = post_json(&h, "/api/v1/namespaces/default/secrets?dryRun=All", &secret).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(hooks.calls("https://ok.test/").len(), 2);
    // A webhook with side effects cannot be configured any more (admissionregistration/v1).
    let cfg = json!({"apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration", "metadata": {"name": "effects"},
        "webhooks": [{"name": "hook.some.test", "sideEffects": "Some",
            "clientConfig": {"url": "https://ok.test/"}, "admissionReviewVersions": ["v1"],
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                       "resources": ["secrets"]}]}]});
    let r = post_json(
        &h,
        "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
        &cfg,
    )
    .await;
    let s = r.status_failure(422, "Invalid");
    assert_eq!(
        s["message"],
        "ValidatingWebhookConfiguration.admissionregistration.k8s.io \"effects\" is invalid: webhooks[0].sideEffects: Unsupported value: \"Some\": supported values: \"None\", \"NoneOnDryRun\""
    );
}

#[tokio::test]
async fn match_conditions_and_namespace_selector_decide_which_requests_are_sent() {
    let hooks = Hooks::default();
    hooks.on("https://sel.test/", |r| {
        let mut resp = allow(r);
        resp["response"]["allowed"] = json!(false);
        Some(resp)
    });
    let h = server_with(&hooks).await;
    let ns = json!({"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": "guarded", "labels": {"webhooks": "on"}}});
    assert_eq!(post_json(&h, "/api/v1/namespaces", &ns).await.status, 201);
    configure(
        &h,
        "validating",
        "v",
        vec![hook(
            "hook.sel.test",
            "https://sel.test/",
            &["configmaps"],
            json!({
                "namespaceSelector": {"matchLabels": {"webhooks": "on"}},
                "matchConditions": [{"name": "not-skipped",
                    "expression": "!('skip' in object.metadata.labels)"}]
            }),
        )],
    )
    .await;
    // Not in a selected namespace: not sent.
    assert_eq!(post_json(&h, CM, &configmap("a")).await.status, 201);
    let guarded = "/api/v1/namespaces/guarded/configmaps";
    let r = post_json(&h, guarded, &configmap("b")).await;
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    let mut skipped = configmap("c");
    skipped["metadata"]["labels"]["skip"] = json!("yes");
    assert_eq!(post_json(&h, guarded, &skipped).await.status, 201);
    assert_eq!(hooks.calls("https://sel.test/").len(), 1);
}

#[tokio::test]
async fn mutating_webhook_on_a_custom_resource_sees_and_patches_it() {
    let hooks = Hooks::default();
    hooks.on("https://cr.test/", |r| {
        assert_eq!(r["request"]["kind"]["kind"], "Widget");
        Some(allow_patch(
            r,
            json!([{"op": "add", "path": "/spec/size", "value": 3}]),
        ))
    });
    let h = server_with(&hooks).await;
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.demo.test"},
        "spec": {"group": "demo.test", "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                        "spec": {"type": "object", "properties": {
                            "color": {"type": "string"}, "size": {"type": "integer"}}}}}}}]}});
    let r = post_json(
        &h,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        &crd,
    )
    .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    configure(
        &h,
        "mutating",
        "m",
        vec![hook(
            "hook.widgets.test",
            "https://cr.test/",
            &["widgets"],
            json!({}),
        )],
    )
    .await;
    let w = json!({"apiVersion": "demo.test/v1", "kind": "Widget",
                   "metadata": {"name": "w"}, "spec": {"color": "red"}});
    let path = "/apis/demo.test/v1/namespaces/default/widgets";
    let r = post_json(&h, path, &w).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let got = get(&h, &format!("{path}/w")).await.json();
    assert_eq!(got["spec"], json!({"color": "red", "size": 3}));
}

#[tokio::test]
async fn reinvocation_if_needed_calls_an_earlier_webhook_again_after_a_later_change() {
    let hooks = Hooks::default();
    hooks.on("https://first.test/", |r| {
        let seen = r["request"]["object"]["metadata"]["labels"]
            .get("second")
            .is_some();
        Some(allow_patch(
            r,
            json!([{"op": "add", "path": "/metadata/annotations",
                    "value": {"first-saw-second": seen.to_string()}}]),
        ))
    });
    hooks.on("https://second.test/", |r| {
        Some(allow_patch(
            r,
            json!([{"op": "add", "path": "/metadata/labels/second", "value": "yes"}]),
        ))
    });
    let h = server_with(&hooks).await;
    configure(
        &h,
        "mutating",
        "a-first",
        vec![hook(
            "hook.first.test",
            "https://first.test/",
            &["configmaps"],
            json!({"reinvocationPolicy": "IfNeeded"}),
        )],
    )
    .await;
    configure(
        &h,
        "mutating",
        "b-second",
        vec![hook(
            "hook.second.test",
            "https://second.test/",
            &["configmaps"],
            json!({}),
        )],
    )
    .await;
    let r = post_json(&h, CM, &configmap("a")).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let got = r.json();
    assert_eq!(got["metadata"]["annotations"]["first-saw-second"], "true");
    assert_eq!(hooks.calls("https://first.test/").len(), 2);
    assert_eq!(hooks.calls("https://second.test/").len(), 1);
}

#[tokio::test]
async fn match_policy_equivalent_sends_the_object_at_the_version_the_rule_names() {
    let hooks = Hooks::default();
    hooks.on("https://hpa.test/", |r| Some(allow(r)));
    let h = server_with(&hooks).await;
    let mut rule_v2 = hook(
        "hook.hpa.test",
        "https://hpa.test/",
        &["horizontalpodautoscalers"],
        json!({}),
    );
    rule_v2["rules"][0]["apiVersions"] = json!(["v2"]);
    configure(&h, "validating", "v", vec![rule_v2]).await;
    let hpa = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "minReplicas": 1, "maxReplicas": 3, "targetCPUUtilizationPercentage": 50}});
    let r = post_json(
        &h,
        "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers",
        &hpa,
    )
    .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let calls = hooks.calls("https://hpa.test/");
    assert_eq!(calls.len(), 1);
    let req = &calls[0]["request"];
    assert_eq!(req["kind"]["version"], "v2");
    assert_eq!(req["object"]["apiVersion"], "autoscaling/v2");
    assert_eq!(req["object"]["spec"]["maxReplicas"], 3);

    // matchPolicy Exact: the v1 request is not sent.
    let mut exact = hook(
        "hook.hpa.test",
        "https://hpa.test/",
        &["horizontalpodautoscalers"],
        json!({"matchPolicy": "Exact"}),
    );
    exact["rules"][0]["apiVersions"] = json!(["v2"]);
    let r = put_json(
        &h,
        "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/v",
        &json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
                "metadata": {"name": "v"}, "webhooks": [exact]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let mut hpa2 = hpa.clone();
    hpa2["metadata"]["name"] = json!("web2");
    let r = post_json(
        &h,
        "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers",
        &hpa2,
    )
    .await;
    assert_eq!(r.status, 201);
    assert_eq!(hooks.calls("https://hpa.test/").len(), 1);
}

#[tokio::test]
async fn webhook_configuration_writes_are_never_sent_to_webhooks() {
    let hooks = Hooks::default(); // every call would fail
    let h = server_with(&hooks).await;
    configure(
        &h,
        "validating",
        "v",
        vec![hook(
            "hook.all.test",
            "https://down.test/",
            &["*"],
            json!({}),
        )],
    )
    .await;
    let r = send(
        &h,
        Method::DELETE,
        "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/v",
        "",
        "",
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(hooks.calls("https://down.test/").is_empty());
}

// --- Over HTTPS: the server's own webhook client against a webhook written here ------------

mod https {
    use super::*;
    use common::webhook_server::WebhookServer;

    /// Maps every service to the test webhook's address.
    struct LoopbackResolver(std::net::SocketAddr);

    impl kubox::ServiceResolver for LoopbackResolver {
        fn resolve(&self, _ns: &str, _name: &str, _port: u16) -> Result<String, String> {
            Ok(format!("https://{}", self.0))
        }
    }

    async fn https_server(resolver: Option<std::net::SocketAddr>) -> ServerHandle {
        let mut b = kubox::Server::builder()
            .memory()
            .disable_controller(kubox::Controller::ServiceAccount);
        if let Some(addr) = resolver {
            b = b.service_resolver(Arc::new(LoopbackResolver(addr)));
        }
        b.start().await.unwrap()
    }

    fn url_hook(
        name: &str,
        ws: &WebhookServer,
        path: &str,
        resources: &[&str],
        extra: Value,
    ) -> Value {
        let mut h = hook(name, "", resources, extra);
        h["clientConfig"] = json!({"url": ws.url(path), "caBundle": ws.ca_bundle()});
        h
    }

    #[tokio::test]
    async fn https_mutating_webhook_trusted_by_ca_bundle_labels_a_pod() {
        let ws = WebhookServer::start(
            Arc::new(|r: Value| {
                Some(allow_patch(
                    &r,
                    json!([{"op": "add", "path": "/metadata/labels", "value": {"injected": "true"}}]),
                ))
            }),
            &[],
        )
        .await;
        let h = https_server(None).await;
        configure(
            &h,
            "mutating",
            "m",
            vec![url_hook(
                "hook.pods.test",
                &ws,
                "/mutate",
                &["pods"],
                json!({}),
            )],
        )
        .await;
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                         "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
        let r = post_json(&h, "/api/v1/namespaces/default/pods", &pod).await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        let got = get(&h, "/api/v1/namespaces/default/pods/p").await.json();
        assert_eq!(got["metadata"]["labels"]["injected"], "true");
        assert_eq!(ws.calls(), 1);
    }

    #[tokio::test]
    async fn https_validating_webhook_reached_by_service_reference_denies() {
        let ws = WebhookServer::start(
            Arc::new(|r: Value| {
                let mut resp = allow(&r);
                resp["response"]["allowed"] = json!(false);
                resp["response"]["status"] =
                    json!({"code": 422, "reason": "Invalid", "message": "spec is not acceptable"});
                Some(resp)
            }),
            &["hooks.webhooks.svc"],
        )
        .await;
        let h = https_server(Some(ws.addr)).await;
        let mut hk = hook("hook.svc.test", "", &["configmaps"], json!({}));
        hk["clientConfig"] = json!({"service": {"namespace": "webhooks", "name": "hooks", "path": "/validate"},
                                    "caBundle": ws.ca_bundle()});
        configure(&h, "validating", "v", vec![hk]).await;
        let r = post_json(&h, CM, &configmap("a")).await;
        let s = r.status_failure(422, "Invalid");
        assert_eq!(
            s["message"],
            "admission webhook \"hook.svc.test\" denied the request: spec is not acceptable"
        );
        assert_eq!(ws.calls(), 1);
    }

    #[tokio::test]
    async fn https_webhook_that_never_answers_fails_after_timeout_seconds() {
        // Accepts connections (the kernel does) but never speaks TLS.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}/", silent.local_addr().unwrap());
        let h = https_server(None).await;
        let mut fail = hook(
            "hook.silent-fail.test",
            "",
            &["configmaps"],
            json!({"timeoutSeconds": 1}),
        );
        fail["clientConfig"] = json!({"url": url});
        let mut ignore = hook(
            "hook.silent-ignore.test",
            "",
            &["secrets"],
            json!({"timeoutSeconds": 1, "failurePolicy": "Ignore"}),
        );
        ignore["clientConfig"] = json!({"url": url});
        configure(&h, "validating", "v", vec![fail, ignore]).await;

        let started = std::time::Instant::now();
        let r = post_json(&h, CM, &configmap("a")).await;
        let s = r.status_failure(500, "InternalError");
        let elapsed = started.elapsed();
        assert_eq!(
            s["message"],
            format!("Internal error occurred: failed calling webhook \"hook.silent-fail.test\": failed to call webhook: Post \"{url}?timeout=1s\": context deadline exceeded")
        );
        assert!(
            elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(5),
            "{elapsed:?}"
        );

        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}});
        let r = post_json(&h, "/api/v1/namespaces/default/secrets", &secret).await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        drop(silent);
    }

    #[tokio::test]
    async fn https_webhook_with_untrusted_certificate_or_nothing_listening_follows_failure_policy()
    {
        let ws = WebhookServer::start(Arc::new(|r: Value| Some(allow(&r))), &[]).await;
        let h = https_server(None).await;
        // No caBundle: the system roots do not trust the test CA.
        let mut untrusted = hook("hook.untrusted.test", "", &["configmaps"], json!({}));
        untrusted["clientConfig"] = json!({"url": ws.url("/")});
        configure(&h, "validating", "v", vec![untrusted]).await;
        let r = post_json(&h, CM, &configmap("a")).await;
        let s = r.status_failure(500, "InternalError");
        assert!(
            s["message"].as_str().unwrap().starts_with(
                "Internal error occurred: failed calling webhook \"hook.untrusted.test\": failed to call webhook: Post"
            ),
            "{s}"
        );
        assert_eq!(ws.calls(), 0);

        // Nothing listening: Ignore admits, Fail refuses.
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let mut ignore = hook(
            "hook.closed-ignore.test",
            "",
            &["secrets"],
            json!({"failurePolicy": "Ignore"}),
        );
        ignore["clientConfig"] =
            json!({"url": format!("https://{closed}/"), "caBundle": ws.ca_bundle()});
        let mut fail = hook("hook.closed-fail.test", "", &["services"], json!({}));
        fail["clientConfig"] = ignore["clientConfig"].clone();
        configure(&h, "validating", "w", vec![ignore, fail]).await;
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}});
        let r = post_json(&h, "/api/v1/namespaces/default/secrets", &secret).await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"},
                         "spec": {"ports": [{"port": 80}]}});
        let r = post_json(&h, "/api/v1/namespaces/default/services", &svc).await;
        let s = r.status_failure(500, "InternalError");
        assert!(
            s["message"]
                .as_str()
                .unwrap()
                .contains("hook.closed-fail.test"),
            "{s}"
        );
    }
}

/// `?timeout=` shortens a request's deadline as kube-apiserver's request deadline does: a
/// create held by a webhook that never answers is a 504 at the asked time, not at the webhook's;
/// a malformed timeout is a 400.
#[tokio::test]
async fn a_request_timeout_parameter_bounds_the_request() {
    let hooks = Hooks::default();
    hooks.on("https://stuck.test/", |_| None);
    let h = server_with(&hooks).await;
    configure(
        &h,
        "validating",
        "v",
        vec![hook(
            "hook.stuck.test",
            "https://stuck.test/",
            &["configmaps"],
            json!({"timeoutSeconds": 30}),
        )],
    )
    .await;
    let r = send(
        &h,
        Method::POST,
        &format!("{CM}?timeout=1s"),
        "application/json",
        serde_json::to_vec(&configmap("a")).unwrap(),
    )
    .await;
    let s = r.status_failure(504, "Timeout");
    assert_eq!(
        s["message"],
        "Timeout: request did not complete within the allotted timeout"
    );
    let r = send(&h, Method::GET, &format!("{CM}?timeout=bogus"), "", "").await;
    let s = r.status_failure(400, "BadRequest");
    assert_eq!(
        s["message"],
        "invalid timeout specified in the request URL - time: invalid duration \"bogus\""
    );
    // 0 and negative timeouts mean the server's own bound.
    for t in ["0", "-5s"] {
        let r = send(&h, Method::GET, &format!("{CM}?timeout={t}"), "", "").await;
        assert_eq!(r.status.as_u16(), 200, "{t}");
    }
}
