//! Server-level behaviour of the generic registry, pinned to what kube-apiserver does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use http::{Method, Request};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

fn deployment(name: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}}}})
}

const DEP: &str = "/apis/apps/v1/namespaces/default/deployments";

#[tokio::test]
async fn version_reports_kubernetes_1_35() {
    let h = server().await;
    let v = get(&h, "/version").await.json();
    assert_eq!(
        (v["major"].as_str(), v["minor"].as_str()),
        (Some("1"), Some("35"))
    );
    assert!(v["gitVersion"].as_str().unwrap().starts_with("v1.35."));
}

#[tokio::test]
async fn health_endpoints_answer_ok_and_verbose_lists_checks() {
    let h = server().await;
    for p in ["/healthz", "/livez", "/readyz"] {
        let r = get(&h, p).await;
        assert_eq!((r.status.as_u16(), &r.body[..]), (200, &b"ok"[..]));
    }
    let r = get(&h, "/readyz?verbose").await;
    let text = String::from_utf8_lossy(&r.body).to_string();
    assert!(
        text.contains("[+]ping ok")
            && text.contains("[+]informer-sync ok")
            && text.ends_with("readyz check passed\n"),
        "{text}"
    );
    // kube-apiserver's post-start hook names, on every endpoint and one by one.
    for p in ["/healthz?verbose=1", "/livez?verbose=1"] {
        let text = String::from_utf8_lossy(&get(&h, p).await.body).to_string();
        for hook in [
            "start-apiserver-admission-initializer",
            "crd-informer-synced",
            "scheduling/bootstrap-system-priority-classes",
            "rbac/bootstrap-roles",
        ] {
            assert!(
                text.lines()
                    .any(|l| l == format!("[+]poststarthook/{hook} ok")),
                "{p} lacks {hook}: {text}"
            );
        }
    }
    let r = get(&h, "/livez/poststarthook/bootstrap-controller").await;
    assert_eq!((r.status.as_u16(), &r.body[..]), (200, &b"ok"[..]));
    let r = get(&h, "/livez/poststarthook/no-such-hook").await;
    assert_eq!(r.status.as_u16(), 404);
    // What the scheduling bootstrap hook creates.
    let pc = get(
        &h,
        "/apis/scheduling.k8s.io/v1/priorityclasses/system-node-critical",
    )
    .await
    .json();
    assert_eq!(
        (pc["value"].as_i64(), pc["preemptionPolicy"].as_str()),
        (Some(2_000_001_000), Some("PreemptLowerPriority"))
    );
}

/// A create resets the status to what kube's strategies reset it to: the Go zero value of the
/// kind's status struct, `{}` for the workloads (clients read `status` without a nil check).
#[tokio::test]
async fn creates_start_from_the_zero_status() {
    let h = server().await;
    let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "image": "i"}]}}},
        "status": {"replicas": 5, "readyReplicas": 5}});
    let r = post_json(&h, "/apis/apps/v1/namespaces/default/deployments", &d).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    assert_eq!(r.json()["status"], json!({}));
    let got = get(&h, "/apis/apps/v1/namespaces/default/deployments/d")
        .await
        .json();
    assert_eq!(got["status"], json!({}));
    let cj = json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"},
        "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}}}},
        "status": {"lastScheduleTime": "2026-01-01T00:00:00Z"}});
    let r = post_json(&h, "/apis/batch/v1/namespaces/default/cronjobs", &cj).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    assert_eq!(r.json()["status"], json!({}));
    // Scalars Go holds by value without omitempty are written as zeros.
    for (path, obj, status) in [
        (
            "/apis/apps/v1/namespaces/default/replicasets",
            json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "rs"},
                "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}},
                    "spec": {"containers": [{"name": "c", "image": "i"}]}}}}),
            json!({"replicas": 0}),
        ),
        (
            "/apis/apps/v1/namespaces/default/daemonsets",
            json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "ds"},
                "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}},
                    "spec": {"containers": [{"name": "c", "image": "i"}]}}}}),
            json!({"currentNumberScheduled": 0, "numberMisscheduled": 0, "desiredNumberScheduled": 0, "numberReady": 0}),
        ),
        (
            "/apis/policy/v1/namespaces/default/poddisruptionbudgets",
            json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "pdb"},
                "spec": {"minAvailable": 1, "selector": {"matchLabels": {"a": "b"}}}}),
            json!({"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0}),
        ),
        (
            "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers",
            json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "hpa"},
                "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"}, "maxReplicas": 3}}),
            json!({"desiredReplicas": 0, "currentMetrics": null}),
        ),
    ] {
        let r = post_json(&h, path, &obj).await;
        assert_eq!(r.status.as_u16(), 201, "{path}: {}", r.json());
        assert_eq!(r.json()["status"], status, "{path}");
    }
    // Kinds with their own initial status keep it.
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
        "spec": {"ports": [{"port": 80}]}});
    let r = post_json(&h, "/api/v1/namespaces/default/services", &svc).await;
    assert_eq!(r.json()["status"], json!({"loadBalancer": {}}));
}

/// JSON answers are framed as kube's serializer frames them: a newline after API answers;
/// indented (no newline) for `?pretty=true` and for curl, Wget and browsers; `/version` always
/// indented; watch streams untouched.
#[tokio::test]
async fn json_answers_end_with_a_newline_or_are_indented_on_request() {
    let h = server().await;
    let ua = |agent: &'static str| [("user-agent", agent)];
    let ns = "/api/v1/namespaces/default";
    let body = |r: &Resp| String::from_utf8(r.body.to_vec()).unwrap();
    let plain = body(&send_with(&h, Method::GET, ns, &ua("kubectl/v1.35.0"), "").await);
    assert!(
        plain.starts_with("{\"")
            && plain.ends_with("}\n")
            && !plain[..plain.len() - 1].contains('\n'),
        "{plain}"
    );
    for (path, agent) in [
        (format!("{ns}?pretty=true"), "kubectl/v1.35.0"),
        (format!("{ns}?pretty=1"), "kubectl/v1.35.0"),
        (ns.to_string(), "curl/8.5.0"),
        (ns.to_string(), "Wget/1.21"),
    ] {
        let p = body(&send_with(&h, Method::GET, &path, &ua(agent), "").await);
        assert!(
            p.starts_with("{\n  \"") && p.ends_with('}'),
            "{path} {agent}: {p}"
        );
        let a: Value = serde_json::from_str(&p).unwrap();
        let b: Value = serde_json::from_str(&plain).unwrap();
        assert_eq!(a, b);
    }
    let not_pretty = body(
        &send_with(
            &h,
            Method::GET,
            &format!("{ns}?pretty=false"),
            &ua("curl/8.5.0"),
            "",
        )
        .await,
    );
    assert!(
        not_pretty.ends_with("}\n") && !not_pretty.starts_with("{\n"),
        "{not_pretty}"
    );
    // Errors, lists and discovery alike.
    for path in [
        "/api/v1/namespaces/default/configmaps/none",
        "/api/v1/namespaces/default/configmaps",
        "/api",
        "/apis/apps/v1",
    ] {
        let b = body(&send_with(&h, Method::GET, path, &ua("kubectl/v1.35.0"), "").await);
        assert!(b.ends_with("}\n"), "{path}: {b}");
    }
    let version = body(&send_with(&h, Method::GET, "/version", &ua("kubectl/v1.35.0"), "").await);
    assert!(version.starts_with("{\n  \"major\": \"1\",\n"), "{version}");
    // A watch's frames are one line each, nothing added.
    assert_eq!(
        post_json(&h, "/api/v1/namespaces/default/configmaps", &configmap("w"))
            .await
            .status
            .as_u16(),
        201
    );
    let w = body(
        &send_with(
            &h,
            Method::GET,
            "/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=1",
            &ua("curl/8.5.0"),
            "",
        )
        .await,
    );
    assert!(
        w.starts_with("{\"type\":\"ADDED\"") && w.ends_with("}\n") && w.matches('\n').count() == 1,
        "{w}"
    );
}

/// Answers are written as kube-apiserver's Go encoder writes them: built-in objects, their
/// typed lists (items without kind and apiVersion), Status and discovery documents in the
/// field order of their Go structs (clients that grep answers depend on it); map keys sorted;
/// custom resources sorted, as kube holds them as maps.
#[tokio::test]
async fn answers_are_written_in_go_field_order() {
    let h = server().await;
    let text = |r: Resp| String::from_utf8(r.body.to_vec()).unwrap();
    // Discovery, as kubectl's own command tests grep it.
    let core = text(get(&h, "/api/v1").await);
    assert!(
        core.contains(concat!(
            r#"{"name":"configmaps","singularName":"configmap","namespaced":true,"kind":"ConfigMap","#,
            r#""verbs":["create","delete","deletecollection","get","list","patch","update","watch"],"#,
            r#""shortNames":["cm"],"storageVersionHash":"#
        )),
        "{core}"
    );
    let pods = &core[core.find(r#""name":"pods""#).unwrap()..];
    assert!(
        pods[..pods.find('}').unwrap()].contains(r#""categories":["all"]"#),
        "{pods}"
    );
    assert!(core.starts_with(r#"{"kind":"APIResourceList","apiVersion":"v1","groupVersion":"v1","resources":[{"name":"#), "{core}");
    let api = text(get(&h, "/api").await);
    assert!(
        api.starts_with(r#"{"kind":"APIVersions","versions":["v1"],"serverAddressByClientCIDRs":[{"clientCIDR":"0.0.0.0/0","serverAddress":""#),
        "{api}"
    );
    let apis = text(get(&h, "/apis").await);
    assert!(
        apis.starts_with(r#"{"kind":"APIGroupList","apiVersion":"v1","groups":[{"name":"#)
            && apis.contains(r#"{"name":"apps","versions":[{"groupVersion":"apps/v1","version":"v1"}],"preferredVersion":{"groupVersion":"apps/v1","version":"v1"}}"#),
        "{apis}"
    );
    // An object, from the write's answer, a read, a list and a watch.
    let mut cm = configmap("cm");
    cm["metadata"]["labels"] = json!({"z": "1", "a": "2"});
    let created = text(post_json(&h, "/api/v1/namespaces/default/configmaps", &cm).await);
    let read = text(get(&h, "/api/v1/namespaces/default/configmaps/cm").await);
    for answer in [&created, &read] {
        assert!(
            answer.starts_with(r#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"cm","namespace":"default","uid":""#),
            "{answer}"
        );
        let meta_order = [
            "\"uid\"",
            "\"resourceVersion\"",
            "\"creationTimestamp\"",
            "\"labels\":{\"a\":\"2\",\"z\":\"1\"}",
            "\"managedFields\"",
        ];
        let at: Vec<usize> = meta_order
            .iter()
            .map(|k| answer.find(k).unwrap_or_else(|| panic!("{k} in {answer}")))
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{answer}");
        assert!(
            answer.find("\"managedFields\"").unwrap() < answer.find("\"data\"").unwrap(),
            "{answer}"
        );
    }
    let list = text(get(&h, "/api/v1/namespaces/default/configmaps?labelSelector=z").await);
    assert!(
        list.starts_with(
            r#"{"kind":"ConfigMapList","apiVersion":"v1","metadata":{"resourceVersion":""#
        ) && list.contains(r#""items":[{"metadata":{"name":"cm","namespace":"default","uid":""#),
        "{list}"
    );
    post_json(
        &h,
        "/api/v1/namespaces/default/configmaps",
        &configmap("other"),
    )
    .await;
    let paged = text(get(&h, "/api/v1/namespaces/default/configmaps?limit=1").await);
    assert!(
        paged.starts_with(
            r#"{"kind":"ConfigMapList","apiVersion":"v1","metadata":{"resourceVersion":""#
        ) && paged.contains(r#"","continue":""#)
            && paged.contains(r#""items":[{"metadata":{"name":""#),
        "{paged}"
    );
    let watched = text(get(&h, "/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=1&fieldSelector=metadata.name=cm").await);
    assert!(
        watched.starts_with(r#"{"type":"ADDED","object":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"cm","namespace":"default","uid":""#),
        "{watched}"
    );
    // Nested structs: a Deployment's spec and its pod template.
    let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"app": "d"}}, "template": {
            "metadata": {"labels": {"app": "d"}},
            "spec": {"containers": [{"name": "c", "image": "i:1", "ports": [{"containerPort": 80}]}]}}}});
    let dep = text(post_json(&h, "/apis/apps/v1/namespaces/default/deployments", &d).await);
    assert!(dep.contains(r#""spec":{"replicas":1,"selector":{"matchLabels":{"app":"d"}},"template":{"metadata":{"labels":{"app":"d"}},"spec":{"containers":[{"name":"c","image":"i:1","ports":[{"containerPort":80,"protocol":"TCP"}],"resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}],"restartPolicy":"Always","#), "{dep}");
    assert!(dep.contains(r#"},"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":"25%","maxSurge":"25%"}},"revisionHistoryLimit":10,"progressDeadlineSeconds":600},"status":{}}"#), "{dep}");
    // Status.
    let missing = text(get(&h, "/api/v1/namespaces/default/configmaps/none").await);
    assert_eq!(
        missing,
        concat!(
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","#,
            r#""message":"configmaps \"none\" not found","reason":"NotFound","#,
            r#""details":{"name":"none","kind":"configmaps"},"code":404}"#,
            "\n"
        )
    );
    // Indented on request, in the same order.
    let pretty = text(get(&h, "/api/v1/namespaces/default/configmaps/cm?pretty=true").await);
    assert!(
        pretty.starts_with("{\n  \"kind\": \"ConfigMap\",\n  \"apiVersion\": \"v1\",\n  \"metadata\": {\n    \"name\": \"cm\",\n"),
        "{pretty}"
    );
}

/// Stored resources carry kube's storageVersionHash (SHA-256 of group/version/kind at the
/// storage version, 8 bytes, base64): the same for every version that shares a storage
/// version; resources without storage carry none.
#[tokio::test]
async fn discovery_carries_storage_version_hashes() {
    let h = server().await;
    let hash = |doc: &Value, name: &str| -> Option<String> {
        doc["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {doc}"))
            .get("storageVersionHash")
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let core = get(&h, "/api/v1").await.json();
    // kube-apiserver's own values.
    assert_eq!(hash(&core, "pods").as_deref(), Some("xPOwRZ+Yhw8="));
    assert_eq!(hash(&core, "configmaps").as_deref(), Some("qFsyl6wFWjQ="));
    assert_eq!(hash(&core, "bindings"), None);
    assert_eq!(hash(&core, "componentstatuses"), None);
    assert_eq!(hash(&core, "pods/status"), None, "subresources have none");
    let apps = get(&h, "/apis/apps/v1").await.json();
    assert_eq!(hash(&apps, "deployments").as_deref(), Some("8aSe+NMegvE="));
    let reviews = get(&h, "/apis/authentication.k8s.io/v1").await.json();
    assert_eq!(hash(&reviews, "tokenreviews"), None);
    let v1 = get(&h, "/apis/autoscaling/v1").await.json();
    let v2 = get(&h, "/apis/autoscaling/v2").await.json();
    let hpa = hash(&v2, "horizontalpodautoscalers");
    assert!(hpa.is_some());
    assert_eq!(
        hash(&v1, "horizontalpodautoscalers"),
        hpa,
        "one storage version"
    );
}

#[tokio::test]
async fn aggregated_discovery_is_served_with_its_content_type() {
    let h = server().await;
    let accept =
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
    let r = send_with(&h, Method::GET, "/apis", &[("accept", accept)], "").await;
    assert_eq!(
        r.headers["content-type"],
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    );
    let doc = r.json();
    assert_eq!(doc["kind"], "APIGroupDiscoveryList");
    let apps = doc["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["metadata"]["name"] == "apps")
        .unwrap();
    let deploy = apps["versions"][0]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "deployments")
        .unwrap();
    assert_eq!(deploy["shortNames"], json!(["deploy"]));
    assert!(deploy["subresources"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["subresource"] == "scale"));
    // Written in the Go structs' field order.
    let text = String::from_utf8(r.body.to_vec()).unwrap();
    assert!(
        text.starts_with(r#"{"kind":"APIGroupDiscoveryList","apiVersion":"apidiscovery.k8s.io/v2","metadata":{},"items":[{"metadata":{"name":"#),
        "{text}"
    );
    assert!(
        text.contains(r#"{"resource":"deployments","responseKind":{"group":"apps","version":"v1","kind":"Deployment"},"scope":"Namespaced","singularResource":"deployment","verbs":["#),
        "{text}"
    );
    assert!(text.contains(r#"{"subresource":"scale","responseKind":{"group":"autoscaling","version":"v1","kind":"Scale"},"verbs":["get","patch","update"]}"#), "{text}");
    let core = send_with(&h, Method::GET, "/api", &[("accept", accept)], "").await;
    let core_text = String::from_utf8(core.body.to_vec()).unwrap();
    assert!(
        core_text.starts_with(r#"{"kind":"APIGroupDiscoveryList","apiVersion":"apidiscovery.k8s.io/v2","metadata":{},"items":[{"metadata":{},"versions":[{"version":"v1","resources":[{"resource":"#),
        "{core_text}"
    );
    let core = core.json();
    assert_eq!(core["items"][0]["versions"][0]["version"], "v1");
    let legacy = get(&h, "/apis").await.json();
    assert_eq!(legacy["kind"], "APIGroupList");
}

/// Aggregated discovery carries an ETag, as kube's does: a client holding the content gets 304
/// Not Modified, with the same ETag; `/api` and `/apis` have their own; a change to what is
/// served changes it.
#[tokio::test]
async fn aggregated_discovery_answers_if_none_match() {
    let h = server().await;
    let accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
    let etag_of = |r: &Resp| r.headers["etag"].to_str().unwrap().to_string();
    let revalidate = |path: &'static str, etag: String| {
        let h = &h;
        async move {
            let headers = [("accept", accept), ("if-none-match", etag.as_str())];
            send_with(h, Method::GET, path, &headers, "").await
        }
    };
    let apis = send_with(&h, Method::GET, "/apis", &[("accept", accept)], "").await;
    assert_eq!(apis.status.as_u16(), 200);
    assert_eq!(apis.headers["vary"], "Accept");
    assert_eq!(apis.headers["cache-control"], "public");
    let etag = etag_of(&apis);
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    let again = revalidate("/apis", etag.clone()).await;
    assert_eq!(again.status.as_u16(), 304);
    assert!(
        again.body.is_empty(),
        "{:?} {:?}",
        again.headers,
        again.body
    );
    assert_eq!(etag_of(&again), etag);
    let core = send_with(&h, Method::GET, "/api", &[("accept", accept)], "").await;
    assert_ne!(etag_of(&core), etag);
    let stale = revalidate("/api", etag.clone()).await;
    assert_eq!(stale.status.as_u16(), 200);
    // A CRD served: a new group, a new ETag.
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "gadgets", "kind": "Gadget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object",
                    "x-kubernetes-preserve-unknown-fields": true}}}]}
    });
    let created = post_json(
        &h,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        &crd,
    )
    .await;
    assert_eq!(created.status.as_u16(), 201);
    let changed = revalidate("/apis", etag.clone()).await;
    assert_eq!(changed.status.as_u16(), 200);
    assert_ne!(etag_of(&changed), etag);
    assert!(changed.body_contains("\"gadgets\""));
}

#[tokio::test]
async fn bootstrap_namespaces_and_kubernetes_service_exist() {
    let h = server().await;
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let r = get(&h, &format!("/api/v1/namespaces/{ns}")).await;
        assert_eq!(r.json()["status"]["phase"], "Active", "{ns}");
    }
    let svc = get(&h, "/api/v1/namespaces/default/services/kubernetes")
        .await
        .json();
    assert_eq!(svc["spec"]["clusterIP"], "10.96.0.1");
}

#[tokio::test]
async fn create_sets_system_fields_and_generate_name() {
    let h = server().await;
    let r = post_json(
        &h,
        CM,
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "gen-"}}),
    )
    .await;
    assert_eq!(r.status.as_u16(), 201);
    let cm = r.json();
    let name = cm["metadata"]["name"].as_str().unwrap();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");
    assert!(cm["metadata"]["uid"].as_str().unwrap().len() == 36);
    assert!(cm["metadata"]["creationTimestamp"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    assert!(
        cm["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
            > 0
    );
    assert!(
        cm["metadata"].get("generation").is_none(),
        "configmaps have no generation"
    );
}

/// A generated name that is taken is retried with a new one, as kube's store does
/// (maxNameGenerationCreateAttempts); a seed makes the names reproducible.
#[tokio::test]
async fn generate_name_collisions_are_retried_and_names_follow_the_seed() {
    let seeded = || async {
        Server::builder()
            .memory()
            .name_seed(7)
            .start()
            .await
            .expect("server starts")
    };
    let generated =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "gen-"}});
    let first = seeded().await;
    let r = post_json(&first, CM, &generated).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    let name = r.json()["metadata"]["name"].as_str().unwrap().to_string();
    // The same seed gives the same first name: it is taken here, so the create must try again.
    let h = seeded().await;
    let taken = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}});
    assert_eq!(post_json(&h, CM, &taken).await.status.as_u16(), 201);
    let r = post_json(&h, CM, &generated).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    let second = r.json()["metadata"]["name"].as_str().unwrap().to_string();
    assert!(
        second.starts_with("gen-") && second != name,
        "{second} after {name}"
    );
    // Without generateName a taken name is still AlreadyExists.
    post_json(&h, CM, &taken)
        .await
        .status_failure(409, "AlreadyExists");
}

#[tokio::test]
async fn generation_bumps_only_on_spec_change() {
    let h = server().await;
    let d = post_json(&h, DEP, &deployment("g")).await.json();
    assert_eq!(d["metadata"]["generation"], 1);
    let r = patch(
        &h,
        &format!("{DEP}/g"),
        "application/merge-patch+json",
        r#"{"metadata":{"labels":{"x":"y"}}}"#,
    )
    .await
    .json();
    assert_eq!(r["metadata"]["generation"], 1);
    let r = patch(
        &h,
        &format!("{DEP}/g"),
        "application/merge-patch+json",
        r#"{"spec":{"replicas":3}}"#,
    )
    .await
    .json();
    assert_eq!(r["metadata"]["generation"], 2);
}

#[tokio::test]
async fn status_and_spec_are_split_between_resource_and_subresource() {
    let h = server().await;
    post_json(&h, DEP, &deployment("s")).await;
    let r = patch(
        &h,
        &format!("{DEP}/s/status"),
        "application/merge-patch+json",
        r#"{"status":{"replicas":7},"spec":{"replicas":9}}"#,
    )
    .await
    .json();
    assert_eq!(
        (
            r["status"]["replicas"].as_i64(),
            r["spec"]["replicas"].as_i64()
        ),
        (Some(7), Some(1))
    );
    let r = patch(
        &h,
        &format!("{DEP}/s"),
        "application/merge-patch+json",
        r#"{"status":{"replicas":0},"spec":{"replicas":4}}"#,
    )
    .await
    .json();
    assert_eq!(
        (
            r["status"]["replicas"].as_i64(),
            r["spec"]["replicas"].as_i64()
        ),
        (Some(7), Some(4))
    );
    assert_eq!(r["metadata"]["generation"], 2);
}

#[tokio::test]
async fn scale_subresource_reads_and_writes_replicas() {
    let h = server().await;
    post_json(&h, DEP, &deployment("sc")).await;
    let s = get(&h, &format!("{DEP}/sc/scale")).await.json();
    assert_eq!(
        (s["kind"].as_str(), s["apiVersion"].as_str()),
        (Some("Scale"), Some("autoscaling/v1"))
    );
    assert_eq!(
        (
            s["spec"]["replicas"].as_i64(),
            s["status"]["selector"].as_str()
        ),
        (Some(1), Some("app=sc"))
    );
    let s = patch(
        &h,
        &format!("{DEP}/sc/scale"),
        "application/merge-patch+json",
        r#"{"spec":{"replicas":5}}"#,
    )
    .await
    .json();
    assert_eq!(s["spec"]["replicas"], 5);
    assert_eq!(
        get(&h, &format!("{DEP}/sc")).await.json()["spec"]["replicas"],
        5
    );
}

#[tokio::test]
async fn no_op_update_keeps_the_resource_version() {
    let h = server().await;
    let cm = post_json(&h, CM, &configmap("n")).await.json();
    let again = put_json(&h, &format!("{CM}/n"), &cm).await.json();
    assert_eq!(
        again["metadata"]["resourceVersion"],
        cm["metadata"]["resourceVersion"]
    );
}

#[tokio::test]
async fn delete_with_finalizers_waits_until_the_last_one_is_removed() {
    let h = server().await;
    let mut cm = configmap("f");
    cm["metadata"]["finalizers"] = json!(["example.com/hold"]);
    post_json(&h, CM, &cm).await;
    let r = send(&h, Method::DELETE, &format!("{CM}/f"), "", "").await;
    assert_eq!(
        r.status.as_u16(),
        200,
        "a pending deletion answers 200 with the object"
    );
    assert!(r.json()["metadata"]["deletionTimestamp"].is_string());
    let live = get(&h, &format!("{CM}/f")).await.json();
    assert!(live["metadata"]["deletionTimestamp"].is_string());
    let r = patch(
        &h,
        &format!("{CM}/f"),
        "application/merge-patch+json",
        r#"{"metadata":{"finalizers":["example.com/new"]}}"#,
    )
    .await;
    r.status_failure(422, "Invalid");
    let r = patch(
        &h,
        &format!("{CM}/f"),
        "application/merge-patch+json",
        r#"{"metadata":{"finalizers":null}}"#,
    )
    .await;
    assert_eq!(r.status.as_u16(), 200);
    get(&h, &format!("{CM}/f"))
        .await
        .status_failure(404, "NotFound");
}

#[tokio::test]
async fn delete_returns_a_success_status_and_preconditions_are_checked() {
    let h = server().await;
    let cm = post_json(&h, CM, &configmap("d")).await.json();
    let body = json!({"preconditions": {"uid": "not-the-uid"}});
    let r = send(
        &h,
        Method::DELETE,
        &format!("{CM}/d"),
        "application/json",
        serde_json::to_vec(&body).unwrap(),
    )
    .await;
    r.status_failure(409, "Conflict");
    let r = send(&h, Method::DELETE, &format!("{CM}/d"), "", "").await;
    let s = r.json();
    assert_eq!(
        (s["kind"].as_str(), s["status"].as_str()),
        (Some("Status"), Some("Success"))
    );
    assert_eq!(s["details"]["uid"], cm["metadata"]["uid"]);
}

#[tokio::test]
async fn deleting_a_namespace_deletes_its_content() {
    let h = server().await;
    post_json(
        &h,
        "/api/v1/namespaces",
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "gone"}}),
    )
    .await;
    post_json(&h, "/api/v1/namespaces/gone/configmaps", &configmap("a")).await;
    let mut held = configmap("held");
    held["metadata"]["finalizers"] = json!(["example.com/hold"]);
    post_json(&h, "/api/v1/namespaces/gone/configmaps", &held).await;
    send(&h, Method::DELETE, "/api/v1/namespaces/gone", "", "").await;
    // The namespace controller empties it in the background.
    h.settled().await;
    let ns = get(&h, "/api/v1/namespaces/gone").await.json();
    assert_eq!(ns["status"]["phase"], "Terminating");
    get(&h, "/api/v1/namespaces/gone/configmaps/a")
        .await
        .status_failure(404, "NotFound");
    let r = post_json(&h, "/api/v1/namespaces/gone/configmaps", &configmap("late")).await;
    r.status_failure(403, "Forbidden");
    patch(
        &h,
        "/api/v1/namespaces/gone/configmaps/held",
        "application/merge-patch+json",
        r#"{"metadata":{"finalizers":null}}"#,
    )
    .await;
    h.settled().await;
    get(&h, "/api/v1/namespaces/gone")
        .await
        .status_failure(404, "NotFound");
}

#[tokio::test]
async fn dry_run_create_is_not_persisted() {
    let h = server().await;
    let r = send(
        &h,
        Method::POST,
        &format!("{CM}?dryRun=All"),
        "application/json",
        serde_json::to_vec(&configmap("dry")).unwrap(),
    )
    .await;
    assert_eq!(r.status.as_u16(), 201);
    get(&h, &format!("{CM}/dry"))
        .await
        .status_failure(404, "NotFound");
}

#[tokio::test]
async fn list_pages_are_served_at_the_first_pages_revision() {
    let h = server().await;
    for i in 0..5 {
        post_json(&h, CM, &configmap(&format!("p{i}"))).await;
    }
    let first = get(&h, &format!("{CM}?limit=2")).await.json();
    let rv = first["metadata"]["resourceVersion"].clone();
    assert_eq!(first["metadata"]["remainingItemCount"], 3);
    post_json(&h, CM, &configmap("p9")).await;
    let mut names: Vec<String> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    let mut cont = first["metadata"]["continue"].as_str().unwrap().to_string();
    loop {
        let page = get(&h, &format!("{CM}?limit=2&continue={cont}"))
            .await
            .json();
        assert_eq!(page["metadata"]["resourceVersion"], rv);
        names.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["metadata"]["name"].as_str().unwrap().to_string()),
        );
        match page["metadata"]["continue"].as_str() {
            Some(c) if !c.is_empty() => cont = c.to_string(),
            _ => break,
        }
    }
    assert_eq!(names, vec!["p0", "p1", "p2", "p3", "p4"]);
}

#[tokio::test]
async fn list_filters_by_label_and_field_selectors() {
    let h = server().await;
    let mut a = configmap("a");
    a["metadata"]["labels"] = json!({"tier": "web", "env": "prod"});
    let mut b = configmap("b");
    b["metadata"]["labels"] = json!({"tier": "db"});
    post_json(&h, CM, &a).await;
    post_json(&h, CM, &b).await;
    let names = |v: Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        names(
            get(&h, &format!("{CM}?labelSelector=tier%20in%20(web,api),env"))
                .await
                .json()
        ),
        vec!["a"]
    );
    assert_eq!(
        names(
            get(&h, &format!("{CM}?labelSelector=tier!%3Dweb"))
                .await
                .json()
        ),
        vec!["b"]
    );
    assert_eq!(
        names(
            get(&h, &format!("{CM}?fieldSelector=metadata.name%3Db"))
                .await
                .json()
        ),
        vec!["b"]
    );
    let all = get(&h, "/api/v1/configmaps?labelSelector=tier")
        .await
        .json();
    assert_eq!(all["kind"], "ConfigMapList");
    assert_eq!(names(all), vec!["a", "b"]);
}

/// Endpoints whose kube storage has no table convertor (reviews, bindings, evictions, token
/// requests) skip a Table media type: the next one asked for is used, 406 when none is left.
#[tokio::test]
async fn endpoints_without_tables_refuse_only_tables() {
    let h = server().await;
    let ssar = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "spec": {"nonResourceAttributes": {"path": "/", "verb": "get"}}})
    .to_string();
    let path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
    let json_ct = ("content-type", "application/json");
    let only = ("accept", "application/json;as=Table;v=v1;g=meta.k8s.io");
    let r = send_with(&h, Method::POST, path, &[json_ct, only], ssar.clone()).await;
    assert_eq!(r.status.as_u16(), 406, "{}", r.json());
    assert_eq!(
        (r.json()["reason"].as_str(), r.json()["message"].as_str()),
        (Some("NotAcceptable"), Some("only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf"))
    );
    let then_json = (
        "accept",
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
    );
    let r = send_with(&h, Method::POST, path, &[json_ct, then_json], ssar).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    assert_eq!(r.json()["kind"], "SelfSubjectAccessReview");
    // An eviction likewise; a lister (pods) converts.
    post_json(
        &h,
        "/api/v1/namespaces/default/pods",
        &json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}),
    )
    .await;
    let ev = json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "p"}})
        .to_string();
    let r = send_with(
        &h,
        Method::POST,
        "/api/v1/namespaces/default/pods/p/eviction",
        &[json_ct, only],
        ev,
    )
    .await;
    assert_eq!(r.status.as_u16(), 406, "{}", r.json());
    let r = send_with(
        &h,
        Method::GET,
        "/api/v1/namespaces/default/pods/p",
        &[only],
        "",
    )
    .await;
    assert_eq!(r.json()["kind"], "Table");
}

#[tokio::test]
async fn table_and_partial_metadata_encodings() {
    let h = server().await;
    post_json(&h, CM, &configmap("t")).await;
    let t = send_with(
        &h,
        Method::GET,
        CM,
        &[(
            "accept",
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
        )],
        "",
    )
    .await
    .json();
    assert_eq!(t["kind"], "Table");
    let cols: Vec<&str> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(cols, vec!["Name", "Data", "Age"]);
    assert_eq!(t["rows"][0]["cells"][0], "t");
    assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    let m = send_with(
        &h,
        Method::GET,
        CM,
        &[(
            "accept",
            "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io",
        )],
        "",
    )
    .await
    .json();
    assert_eq!(m["kind"], "PartialObjectMetadataList");
    assert_eq!(m["items"][0]["metadata"]["name"], "t");
    assert!(m["items"][0].get("data").is_none());
    // A list cannot be a PartialObjectMetadata, nor an object a PartialObjectMetadataList:
    // kube answers 406 naming its Go type.
    let meta_as = |kind: &str| format!("application/json;as={kind};v=v1;g=meta.k8s.io");
    let one = send_with(
        &h,
        Method::GET,
        &format!("{CM}/t"),
        &[("accept", &meta_as("PartialObjectMetadata"))],
        "",
    )
    .await;
    assert_eq!(one.status.as_u16(), 200);
    assert_eq!(one.json()["kind"], "PartialObjectMetadata");
    for (path, kind, message) in [
        (format!("{CM}/t"), "PartialObjectMetadataList",
         "you requested PartialObjectMetadataList, but the requested object is not a list (*core.ConfigMap)"),
        (CM.to_string(), "PartialObjectMetadata",
         "you requested PartialObjectMetadata, but the requested object is a list (*core.ConfigMapList)"),
        ("/apis/apps/v1/deployments".to_string(), "PartialObjectMetadata",
         "you requested PartialObjectMetadata, but the requested object is a list (*apps.DeploymentList)"),
    ] {
        let r = send_with(&h, Method::GET, &path, &[("accept", &meta_as(kind))], "").await;
        let status = r.status_failure(406, "NotAcceptable");
        assert_eq!(status["message"], message);
    }
    let y = send_with(
        &h,
        Method::GET,
        &format!("{CM}/t"),
        &[("accept", "application/yaml")],
        "",
    )
    .await;
    assert!(String::from_utf8_lossy(&y.body).contains("kind: ConfigMap"));
}

#[tokio::test]
async fn services_get_cluster_ips_and_node_ports() {
    let h = server().await;
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"type": "NodePort", "ports": [{"port": 80}]}});
    let s = post_json(&h, "/api/v1/namespaces/default/services", &svc)
        .await
        .json();
    assert!(s["spec"]["clusterIP"]
        .as_str()
        .unwrap()
        .starts_with("10.96."));
    assert_ne!(s["spec"]["clusterIP"], "10.96.0.1");
    assert_eq!(s["spec"]["ports"][0]["targetPort"], 80);
    let np = s["spec"]["ports"][0]["nodePort"].as_i64().unwrap();
    assert!((30000..=32767).contains(&np));
}

/// Read watch frames until `n` events arrived (bounded by a timeout).
async fn watch_events(h: &ServerHandle, path: &str, n: usize) -> Vec<Value> {
    let req = Request::builder()
        .uri(path)
        .body(bytes::Bytes::new())
        .unwrap();
    let resp = h.service().oneshot(req).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let mut body = resp.into_body();
    let mut buf = Vec::new();
    let mut events = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while events.len() < n {
            let Some(frame) = body.frame().await else {
                break;
            };
            if let Ok(data) = frame.unwrap().into_data() {
                buf.extend_from_slice(&data);
                while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    events.push(serde_json::from_slice(&line).unwrap());
                }
            }
        }
    })
    .await
    .expect("watch events arrive in time");
    events
}

#[tokio::test]
async fn watch_from_zero_starts_with_added_events_then_live_changes() {
    let h = server().await;
    post_json(&h, CM, &configmap("w1")).await;
    let path = format!("{CM}?watch=true&resourceVersion=0");
    let h2 = std::sync::Arc::new(h);
    let watcher = {
        let h = h2.clone();
        tokio::spawn(async move { watch_events(&h, &path, 3).await })
    };
    // The watch is registered before these writes only once it has produced its first event;
    // resourceVersion-based watches below pin the seam exactly.
    let events = {
        let list = get(&h2, CM).await.json();
        let rv = list["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .to_string();
        let from_rv = format!("{CM}?watch=true&resourceVersion={rv}");
        let h = h2.clone();
        let later = tokio::spawn(async move { watch_events(&h, &from_rv, 2).await });
        tokio::task::yield_now().await;
        post_json(&h2, CM, &configmap("w2")).await;
        send(&h2, Method::DELETE, &format!("{CM}/w1"), "", "").await;
        later.await.unwrap()
    };
    assert_eq!(events[0]["type"], "ADDED");
    assert_eq!(events[0]["object"]["metadata"]["name"], "w2");
    assert_eq!(events[1]["type"], "DELETED");
    assert_eq!(events[1]["object"]["metadata"]["name"], "w1");
    let first = watcher.await.unwrap();
    assert_eq!(
        (
            first[0]["type"].as_str(),
            first[0]["object"]["metadata"]["name"].as_str()
        ),
        (Some("ADDED"), Some("w1"))
    );
}

#[tokio::test]
async fn watch_with_selector_turns_entering_and_leaving_into_added_and_deleted() {
    let h = server().await;
    let cm = post_json(&h, CM, &configmap("sel")).await.json();
    let rv = cm["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("{CM}?watch=true&resourceVersion={rv}&labelSelector=stage%3Dlive");
    patch(
        &h,
        &format!("{CM}/sel"),
        "application/merge-patch+json",
        r#"{"metadata":{"labels":{"stage":"live"}}}"#,
    )
    .await;
    patch(
        &h,
        &format!("{CM}/sel"),
        "application/merge-patch+json",
        r#"{"data":{"k":"2"}}"#,
    )
    .await;
    patch(
        &h,
        &format!("{CM}/sel"),
        "application/merge-patch+json",
        r#"{"metadata":{"labels":{"stage":"old"}}}"#,
    )
    .await;
    let ev = watch_events(&h, &path, 3).await;
    let types: Vec<&str> = ev.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, vec!["ADDED", "MODIFIED", "DELETED"]);
}

#[tokio::test]
async fn watch_with_send_initial_events_ends_initial_state_with_an_annotated_bookmark() {
    let h = server().await;
    post_json(&h, CM, &configmap("i1")).await;
    let path = format!("{CM}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true");
    let ev = watch_events(&h, &path, 2).await;
    assert_eq!(ev[0]["type"], "ADDED");
    assert_eq!(ev[1]["type"], "BOOKMARK");
    assert_eq!(
        ev[1]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    let r = get(&h, &format!("{CM}?watch=true&sendInitialEvents=true")).await;
    r.status_failure(400, "BadRequest");
}

#[tokio::test]
async fn watch_below_the_compacted_revision_gets_a_410_error_event() {
    let h = server().await;
    for i in 0..5 {
        post_json(&h, CM, &configmap(&format!("c{i}"))).await;
    }
    let rev = h.store().current_revision().await.unwrap();
    h.store().compact(rev - 1).await.unwrap();
    let ev = watch_events(&h, &format!("{CM}?watch=true&resourceVersion=2"), 1).await;
    assert_eq!(ev[0]["type"], "ERROR");
    assert_eq!(ev[0]["object"]["code"], 410);
    assert_eq!(ev[0]["object"]["reason"], "Expired");
    let r = get(
        &h,
        &format!("{CM}?resourceVersion=2&resourceVersionMatch=Exact"),
    )
    .await;
    r.status_failure(410, "Expired");
}

#[tokio::test]
async fn watch_timeout_seconds_ends_the_stream() {
    let h = server().await;
    let req = Request::builder()
        .uri(format!(
            "{CM}?watch=true&timeoutSeconds=1&resourceVersion=1"
        ))
        .body(bytes::Bytes::new())
        .unwrap();
    let resp = h.service().oneshot(req).await.unwrap();
    let collected = tokio::time::timeout(Duration::from_secs(10), resp.into_body().collect()).await;
    assert!(collected.is_ok(), "the watch ended by itself");
}

#[tokio::test]
async fn hpa_is_served_at_v1_and_v2_from_one_storage() {
    let h = server().await;
    let v1 = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 4, "targetCPUUtilizationPercentage": 60}});
    let r = post_json(
        &h,
        "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers",
        &v1,
    )
    .await;
    assert_eq!(
        r.status.as_u16(),
        201,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.json()["spec"]["targetCPUUtilizationPercentage"], 60);
    let v2 = get(
        &h,
        "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/h",
    )
    .await
    .json();
    assert_eq!(v2["apiVersion"], "autoscaling/v2");
    assert_eq!(
        v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        60
    );
    assert_eq!(v2["spec"]["minReplicas"], 1);
}

#[tokio::test]
async fn events_k8s_io_events_share_storage_with_core_events() {
    let h = server().await;
    let ev = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e1"},
        "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "ctrl", "reportingInstance": "ctrl-1",
        "action": "Sync", "reason": "Synced", "type": "Normal", "note": "all good",
        "regarding": {"kind": "ConfigMap", "name": "x", "namespace": "default"}});
    let r = post_json(&h, "/apis/events.k8s.io/v1/namespaces/default/events", &ev).await;
    assert_eq!(
        r.status.as_u16(),
        201,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let core = get(&h, "/api/v1/namespaces/default/events/e1").await.json();
    assert_eq!(
        (
            core["message"].as_str(),
            core["involvedObject"]["kind"].as_str()
        ),
        (Some("all good"), Some("ConfigMap"))
    );
    let listed = get(&h, "/apis/events.k8s.io/v1/namespaces/default/events")
        .await
        .json();
    assert_eq!(listed["items"][0]["note"], "all good");
}

#[tokio::test]
async fn access_reviews_are_computed_not_stored() {
    let h = server().await;
    let ssar = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"verb": "create", "resource": "pods", "namespace": "default"}}});
    let r = post_json(
        &h,
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        &ssar,
    )
    .await;
    assert_eq!(r.status.as_u16(), 201);
    assert_eq!(r.json()["status"]["allowed"], true);
    let who = post_json(
        &h,
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}),
    )
    .await;
    assert!(who.json()["status"]["userInfo"]["username"].is_string());
}

#[tokio::test]
async fn pods_bind_to_a_node_once() {
    let h = server().await;
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}});
    post_json(&h, "/api/v1/namespaces/default/pods", &pod).await;
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"}, "target": {"kind": "Node", "name": "n1"}});
    assert_eq!(
        post_json(&h, "/api/v1/namespaces/default/pods/p/binding", &binding)
            .await
            .status
            .as_u16(),
        201
    );
    assert_eq!(
        get(&h, "/api/v1/namespaces/default/pods/p").await.json()["spec"]["nodeName"],
        "n1"
    );
    post_json(&h, "/api/v1/namespaces/default/bindings", &binding)
        .await
        .status_failure(409, "Conflict");
}

/// An update without a resourceVersion is unconditional: racing writers all succeed (kube
/// retries on the newer object), none gets a 409. With a stale resourceVersion it is a 409.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unconditional_updates_of_racing_writers_all_succeed() {
    let h = std::sync::Arc::new(server().await);
    let path = "/api/v1/namespaces/default/configmaps";
    post_json(
        &h,
        path,
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "race"}}),
    )
    .await;
    let tasks: Vec<_> = (0..16)
        .map(|t| {
            let h = h.clone();
            tokio::spawn(async move {
                let mut codes = Vec::new();
                for i in 0..20 {
                    let body = json!({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": "race"}, "data": {"writer": format!("{t}-{i}")}});
                    let r = put_json(&h, &format!("{path}/race"), &body).await;
                    codes.push(r.status.as_u16());
                }
                codes
            })
        })
        .collect();
    for t in tasks {
        let codes = t.await.unwrap();
        assert!(codes.iter().all(|c| *c == 200), "{codes:?}");
    }
    let stale = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "race", "resourceVersion": "1"}});
    let r = put_json(&h, &format!("{path}/race"), &stale).await;
    r.status_failure(409, "Conflict");
}

/// Watch `path` from its list's resourceVersion, write bytes that do not decode at `key`
/// straight into the store, and collect every frame the watch sends until it ends.
async fn frames_after_undecodable(h: &ServerHandle, path: &str, key: &str) -> Vec<Value> {
    let list = get(h, path).await.json();
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let req = Request::get(format!("{path}?watch=1&resourceVersion={rv}"))
        .body(bytes::Bytes::new())
        .unwrap();
    let resp = h.service().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), http::StatusCode::OK);
    h.store()
        .create(key, bytes::Bytes::from_static(b"{not json"))
        .await
        .unwrap();
    frames_to_the_end(resp).await
}

/// Every frame of a watch response, read until the watch ends after its ERROR event.
async fn frames_to_the_end(resp: http::Response<kubox::body::Body>) -> Vec<Value> {
    let body = tokio::time::timeout(Duration::from_secs(30), resp.into_body().collect())
        .await
        .expect("the watch ends after its ERROR event")
        .unwrap()
        .to_bytes();
    body.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

/// An event whose stored object cannot be decoded is not dropped silently: the watch sends an
/// ERROR event with an InternalError Status, then ends (kube's watcher does the same).
#[tokio::test]
async fn an_undecodable_event_is_an_error_event_that_ends_the_watch() {
    let h = server().await;
    let key = kubox::registry::storage_prefix("", "configmaps") + "default/broken";
    let frames = frames_after_undecodable(&h, "/api/v1/namespaces/default/configmaps", &key).await;
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0]["type"], "ERROR");
    assert_eq!(frames[0]["object"]["code"], 500);
    assert_eq!(frames[0]["object"]["reason"], "InternalError");
}

/// The same through a watch whose objects are converted (HorizontalPodAutoscalers served at
/// autoscaling/v1, stored at v2): the undecodable event is an ERROR event, never skipped.
#[tokio::test]
async fn an_undecodable_event_of_a_converted_watch_is_an_error_event() {
    let h = server().await;
    let key = kubox::registry::storage_prefix("autoscaling", "horizontalpodautoscalers")
        + "default/broken";
    let frames = frames_after_undecodable(
        &h,
        "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers",
        &key,
    )
    .await;
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0]["type"], "ERROR");
    assert_eq!(frames[0]["object"]["reason"], "InternalError");
}

/// An object in the initial state of a watch that cannot be decoded: the watch starts, sends
/// the objects before it, then an ERROR event (InternalError) and ends, never a silent gap.
#[tokio::test]
async fn an_undecodable_object_in_a_watchs_initial_state_is_an_error_event() {
    let h = server().await;
    let path = "/api/v1/namespaces/default/configmaps";
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a-good"}});
    assert_eq!(post_json(&h, path, &cm).await.status.as_u16(), 201);
    let key = kubox::registry::storage_prefix("", "configmaps") + "default/b-broken";
    h.store()
        .create(&key, bytes::Bytes::from_static(b"{not json"))
        .await
        .unwrap();
    let req = Request::get(format!("{path}?watch=1"))
        .body(bytes::Bytes::new())
        .unwrap();
    let resp = h.service().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), http::StatusCode::OK);
    let frames = frames_to_the_end(resp).await;
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert_eq!(frames[0]["type"], "ADDED");
    assert_eq!(frames[0]["object"]["metadata"]["name"], "a-good");
    assert_eq!(frames[1]["type"], "ERROR");
    assert_eq!(frames[1]["object"]["code"], 500);
    assert_eq!(frames[1]["object"]["reason"], "InternalError");
}

/// managedFields as kube keeps them for updates: a manager per write (`fieldManager`, else the
/// user agent's product), at most 10 Update entries (older ones merge into `ancient-changes`),
/// and `managedFields: [{}]` strips them.
#[tokio::test]
async fn managed_fields_are_kept_capped_and_can_be_stripped() {
    let h = server().await;
    let path = "/api/v1/namespaces/default/configmaps";
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "m"}, "data": {"k0": "v"}});
    let req = Request::post(path)
        .header("content-type", "application/json")
        .header("user-agent", "my-operator/1.2 (linux)")
        .body(bytes::Bytes::from(cm.to_string()))
        .unwrap();
    let created: Value = serde_json::from_slice(
        &h.service()
            .oneshot(req)
            .await
            .unwrap()
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes(),
    )
    .unwrap();
    let entries = created["metadata"]["managedFields"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{created}");
    assert_eq!(entries[0]["manager"], "my-operator");
    assert_eq!(
        entries[0]["fieldsV1"],
        json!({"f:data": {".": {}, "f:k0": {}}})
    );
    // Twelve more managers, each adding a key: ten Update entries remain.
    for i in 1..=12 {
        let r = patch(
            &h,
            &format!("{path}/m?fieldManager=m{i:02}"),
            "application/merge-patch+json",
            &json!({"data": {format!("k{i}"): "v"}}).to_string(),
        )
        .await;
        assert_eq!(r.status.as_u16(), 200, "{}", r.json());
    }
    let obj = get(&h, &format!("{path}/m")).await.json();
    let entries = obj["metadata"]["managedFields"].as_array().unwrap();
    assert_eq!(entries.len(), 10, "{obj}");
    let ancient = entries
        .iter()
        .find(|e| e["manager"] == "ancient-changes")
        .unwrap_or_else(|| panic!("older managers merged: {obj}"));
    assert_eq!(ancient["operation"], "Update");
    assert!(entries.iter().any(|e| e["manager"] == "m12"), "{obj}");
    // `[{}]` strips them; `[]` does not (kube keeps them from clients that do not know them).
    let r = patch(
        &h,
        &format!("{path}/m"),
        "application/merge-patch+json",
        r#"{"metadata":{"managedFields":[]}}"#,
    )
    .await;
    assert!(r.json()["metadata"]["managedFields"].is_array());
    let r = patch(
        &h,
        &format!("{path}/m"),
        "application/merge-patch+json",
        r#"{"metadata":{"managedFields":[{}]}}"#,
    )
    .await;
    assert!(
        r.json()["metadata"].get("managedFields").is_none(),
        "{}",
        r.json()
    );
}

/// What helm's upgrades rely on: an applier that changes a Service port and drops an
/// annotation leaves neither the old port nor the annotation behind.
#[tokio::test]
async fn an_apply_that_changes_a_port_and_drops_an_annotation_removes_the_old_ones() {
    let h = server().await;
    let path = "/api/v1/namespaces/default/services/web?fieldManager=helm&force=true";
    let apply = |port: u16, annotated: bool| {
        let mut svc = json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": port}]}});
        if annotated {
            svc["metadata"]["annotations"] = json!({"release": "1"});
        }
        svc.to_string()
    };
    let r = patch(&h, path, "application/apply-patch+yaml", &apply(80, true)).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    let r = patch(
        &h,
        path,
        "application/apply-patch+yaml",
        &apply(8080, false),
    )
    .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.json());
    let svc = r.json();
    let ports: Vec<i64> = svc["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["port"].as_i64().unwrap())
        .collect();
    assert_eq!(ports, vec![8080], "{svc}");
    assert!(
        svc["metadata"]["annotations"].get("release").is_none(),
        "{svc}"
    );
}

/// Apply merges built-in objects by their schema as kube does: Service ports are keyed by port
/// *and* protocol, so a second applier's UDP port 53 is an item of its own beside the first
/// applier's TCP port 53 (strategic merge patch, keyed by port alone, would merge them).
#[tokio::test]
async fn apply_merges_built_in_lists_by_their_schema_keys() {
    let h = server().await;
    let svc = |ports: Value| {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "dns"},
               "spec": {"selector": {"app": "dns"}, "ports": ports}})
        .to_string()
    };
    let path = "/api/v1/namespaces/default/services/dns";
    let r = patch(
        &h,
        &format!("{path}?fieldManager=tcp"),
        "application/apply-patch+yaml",
        &svc(json!([{"name": "dns-tcp", "port": 53, "protocol": "TCP"}])),
    )
    .await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    let r = patch(
        &h,
        &format!("{path}?fieldManager=udp"),
        "application/apply-patch+yaml",
        &svc(json!([{"name": "dns-udp", "port": 53, "protocol": "UDP"}])),
    )
    .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.json());
    let ports: Vec<(String, String)> = r.json()["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["protocol"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        ports,
        vec![
            ("dns-tcp".to_string(), "TCP".to_string()),
            ("dns-udp".to_string(), "UDP".to_string())
        ]
    );
}

/// Empty values of `omitempty` fields are dropped from built-in objects as a Go round trip
/// drops them (`labels: {}`, `data: {}`, `args: []`, `hostPort: 0`, `workingDir: ""`,
/// `stdin: false`), while pointers keep their zero (`replicas: 0`) and required fields stay.
#[tokio::test]
async fn empty_omitempty_fields_are_dropped_from_built_in_objects() {
    let h = server().await;
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "empty", "labels": {}, "annotations": {}, "finalizers": []},
        "data": {}});
    let r = post_json(&h, "/api/v1/namespaces/default/configmaps", &cm).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    let got = get(&h, "/api/v1/namespaces/default/configmaps/empty")
        .await
        .json();
    assert!(got.get("data").is_none(), "{got}");
    for k in ["labels", "annotations", "finalizers"] {
        assert!(got["metadata"].get(k).is_none(), "{k}: {got}");
    }
    let mut d = deployment("lean");
    d["spec"]["replicas"] = json!(0);
    d["spec"]["template"]["spec"]["containers"][0]["args"] = json!([]);
    d["spec"]["template"]["spec"]["containers"][0]["workingDir"] = json!("");
    d["spec"]["template"]["spec"]["containers"][0]["stdin"] = json!(false);
    d["spec"]["template"]["spec"]["containers"][0]["ports"] =
        json!([{"containerPort": 80, "hostPort": 0}]);
    let r = post_json(&h, DEP, &d).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    let got = get(&h, &format!("{DEP}/lean")).await.json();
    assert_eq!(got["spec"]["replicas"], 0, "{got}");
    let c = &got["spec"]["template"]["spec"]["containers"][0];
    for k in ["args", "workingDir", "stdin"] {
        assert!(c.get(k).is_none(), "{k}: {c}");
    }
    assert_eq!(
        c["ports"],
        json!([{"containerPort": 80, "protocol": "TCP"}]),
        "{c}"
    );
}

/// kube's strategies fill what controllers rely on: a Job without `manualSelector` gets its
/// template labelled with its name and uid and a selector on the uid; a ReplicationController
/// gets its selector and labels from its template's labels.
#[tokio::test]
async fn jobs_and_replication_controllers_get_their_selectors() {
    let h = server().await;
    let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi"},
        "spec": {"template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "pi", "image": "perl"}]}}}});
    let r = post_json(&h, "/apis/batch/v1/namespaces/default/jobs", &job).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    let j = r.json();
    let uid = j["metadata"]["uid"].as_str().unwrap();
    assert_eq!(
        j["spec"]["selector"],
        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}})
    );
    assert_eq!(
        j["spec"]["template"]["metadata"]["labels"],
        json!({"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": "pi",
               "controller-uid": uid, "job-name": "pi"})
    );
    let mut manual = job.clone();
    manual["metadata"]["name"] = json!("manual");
    manual["spec"]["manualSelector"] = json!(true);
    manual["spec"]["selector"] = json!({"matchLabels": {"app": "x"}});
    manual["spec"]["template"]["metadata"] = json!({"labels": {"app": "x"}});
    let r = post_json(&h, "/apis/batch/v1/namespaces/default/jobs", &manual).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    assert_eq!(
        r.json()["spec"]["template"]["metadata"]["labels"],
        json!({"app": "x"})
    );
    let rc = json!({"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "rc"},
        "spec": {"template": {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}});
    let r = post_json(&h, "/api/v1/namespaces/default/replicationcontrollers", &rc).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    let rc = r.json();
    assert_eq!(rc["spec"]["selector"], json!({"app": "web"}), "{rc}");
    assert_eq!(rc["metadata"]["labels"], json!({"app": "web"}), "{rc}");
    assert_eq!(rc["spec"]["replicas"], 1);
}

/// Field selectors see what kube's selectable-field functions give: an unset boolean or count
/// is its Go zero value (`spec.unschedulable=false` matches a Node that never set it), an
/// Event's `source` is its component, and events.k8s.io selects by its own field names
/// (`regarding.name`, `reportingController`).
#[tokio::test]
async fn field_selectors_see_kubes_selectable_values() {
    let h = server().await;
    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}, "spec": {}});
    assert_eq!(
        post_json(&h, "/api/v1/nodes", &node).await.status.as_u16(),
        201
    );
    let names = |r: Resp| -> Vec<String> {
        r.json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    let r = get(&h, "/api/v1/nodes?fieldSelector=spec.unschedulable%3Dfalse").await;
    assert_eq!(names(r), vec!["n1"]);
    let r = get(&h, "/api/v1/nodes?fieldSelector=spec.unschedulable%3Dtrue").await;
    assert!(names(r).is_empty());
    let ev = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e1"},
        "involvedObject": {"kind": "Pod", "name": "p1", "namespace": "default"},
        "reason": "Started", "source": {"component": "kubelet"}, "type": "Normal",
        "reportingComponent": "kubelet"});
    let r = post_json(&h, "/api/v1/namespaces/default/events", &ev).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    let r = get(
        &h,
        "/api/v1/namespaces/default/events?fieldSelector=source%3Dkubelet",
    )
    .await;
    assert_eq!(names(r), vec!["e1"]);
    let r = get(
        &h,
        "/apis/events.k8s.io/v1/namespaces/default/events?fieldSelector=regarding.name%3Dp1,reportingController%3Dkubelet",
    )
    .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.json());
    assert_eq!(names(r), vec!["e1"]);
    let r = get(
        &h,
        "/apis/events.k8s.io/v1/namespaces/default/events?fieldSelector=regarding.name%3Dother",
    )
    .await;
    assert!(names(r).is_empty());
}

/// `kube-system/extension-apiserver-authentication` holds the client CA, as kube-apiserver
/// publishes it for extension API servers and kube-controller-manager: the CA that signed the
/// admin's client certificate.
#[tokio::test]
async fn the_client_ca_is_published_for_extension_servers() {
    let h = server().await;
    let cm = get(
        &h,
        "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication",
    )
    .await
    .json();
    let ca = cm["data"]["client-ca-file"].as_str().unwrap_or_default();
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "{cm}");
    let root = get(&h, "/api/v1/namespaces/default/configmaps/kube-root-ca.crt").await;
    if root.status.as_u16() == 200 {
        assert_eq!(root.json()["data"]["ca.crt"], ca);
    }
}

/// A DELETE answers with the deleted object for the resources whose kube registry sets
/// `ReturnDeletedObject` (pods, services, serviceaccounts, volumes and claims, quotas, storage
/// and DRA kinds…), and with a Status for the others.
#[tokio::test]
async fn deletes_return_the_object_where_kube_does() {
    let h = server().await;
    let cases: Vec<(&str, Value, bool)> = vec![
        (
            "/api/v1/namespaces/default/podtemplates",
            json!({"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "x"},
                   "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}),
            true,
        ),
        (
            "/api/v1/namespaces/default/serviceaccounts",
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "x"}}),
            true,
        ),
        (
            "/api/v1/namespaces/default/services",
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"},
                   "spec": {"ports": [{"port": 80}]}}),
            true,
        ),
        (
            "/api/v1/namespaces/default/resourcequotas",
            json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "x"},
                   "spec": {"hard": {"pods": "10"}}}),
            true,
        ),
        (
            "/api/v1/namespaces/default/persistentvolumeclaims",
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "x"},
                   "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}),
            true,
        ),
        (
            "/api/v1/persistentvolumes",
            json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "x"},
                   "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                            "hostPath": {"path": "/tmp/x"}}}),
            true,
        ),
        (
            "/apis/storage.k8s.io/v1/storageclasses",
            json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                   "metadata": {"name": "x"}, "provisioner": "example.com/p"}),
            true,
        ),
        (
            "/apis/storage.k8s.io/v1/csidrivers",
            json!({"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver",
                   "metadata": {"name": "x.example.com"}, "spec": {}}),
            true,
        ),
        (
            "/api/v1/namespaces/default/configmaps",
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}),
            false,
        ),
        (
            "/apis/apps/v1/namespaces/default/deployments",
            deployment("x"),
            false,
        ),
    ];
    for (collection, obj, returns_object) in cases {
        let kind = obj["kind"].as_str().unwrap().to_string();
        let name = obj["metadata"]["name"].as_str().unwrap().to_string();
        let r = post_json(&h, collection, &obj).await;
        assert_eq!(r.status.as_u16(), 201, "{kind}: {}", r.json());
        let r = send(&h, Method::DELETE, &format!("{collection}/{name}"), "", "").await;
        assert_eq!(r.status.as_u16(), 200, "{kind}: {}", r.json());
        let got = r.json();
        if returns_object {
            assert_eq!(got["kind"], kind, "{got}");
        } else {
            assert_eq!(got["kind"], "Status", "{kind}: {got}");
        }
    }
}

/// A CertificateSigningRequest records who asked: kube replaces the username, uid, groups and
/// extra a client sets with the requesting user's, and a request cannot be created approved.
/// (`spec.request` is a real PKCS#10 request: kube checks its PEM block and signature.)
#[tokio::test]
async fn certificate_signing_requests_record_the_requesting_user() {
    let h = server().await;
    let csr = json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"name": "csr1"},
        "spec": {"request": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0KTUlIUU1IY0NBUUF3RlRFVE1CRUdBMVVFQXd3S2EzVmliM2d0ZEdWemREQlpNQk1HQnlxR1NNNDlBZ0VHQ0NxRwpTTTQ5QXdFSEEwSUFCSmVUczJPTG9ZNFh6aHlTcWd6c1kwSlZmZ25oU21WOFF0WkZiY2Y0NVgyWnBRR1k4dnFnCm5wUUpZV2FKQlljUzNyUnR5RFpNcENUTGJhbDNYZzN6OC9HZ0FEQUtCZ2dxaGtqT1BRUURBZ05KQURCR0FpRUEKOG5RTzBoKzlJLytueEc0OUhub2YzM2RCSG80TDhEcytrNnFOSEVjVlJNZ0NJUURFbFdKclpMTk1NOEh3UzF3cApvZkVEQ0N2NEFBUlBTVVBDUnJTbUlBbm41QT09Ci0tLS0tRU5EIENFUlRJRklDQVRFIFJFUVVFU1QtLS0tLQo=",
                 "signerName": "example.com/signer", "usages": ["client auth"],
                 "username": "forged", "groups": ["system:masters-forged"]},
        "status": {"conditions": [{"type": "Approved", "status": "True"}]}});
    let r = send_with(
        &h,
        Method::POST,
        "/apis/certificates.k8s.io/v1/certificatesigningrequests",
        &[
            ("content-type", "application/json"),
            ("impersonate-user", "alice"),
            ("impersonate-group", "system:masters"),
            ("impersonate-group", "devs"),
        ],
        csr.to_string(),
    )
    .await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    let got = r.json();
    assert_eq!(got["spec"]["username"], "alice", "{got}");
    let groups: Vec<&str> = got["spec"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap())
        .collect();
    assert!(
        groups.contains(&"devs") && !groups.contains(&"system:masters-forged"),
        "{got}"
    );
    assert!(got["status"].get("conditions").is_none(), "{got}");
}

/// Every Namespace carries its name as the `kubernetes.io/metadata.name` label, also one named
/// by `generateName`, and an update cannot take it away or change it.
#[tokio::test]
async fn namespaces_carry_their_name_as_a_label() {
    let h = server().await;
    let r = post_json(
        &h,
        "/api/v1/namespaces",
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}),
    )
    .await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    assert_eq!(
        r.json()["metadata"]["labels"],
        json!({"kubernetes.io/metadata.name": "team-a"})
    );
    let r = post_json(
        &h,
        "/api/v1/namespaces",
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"generateName": "tmp-"}}),
    )
    .await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    let ns = r.json();
    assert_eq!(
        ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
        ns["metadata"]["name"]
    );
    let r = patch(
        &h,
        "/api/v1/namespaces/team-a",
        "application/merge-patch+json",
        r#"{"metadata":{"labels":{"kubernetes.io/metadata.name":"other","x":"y"}}}"#,
    )
    .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.json());
    assert_eq!(
        r.json()["metadata"]["labels"],
        json!({"kubernetes.io/metadata.name": "team-a", "x": "y"})
    );
}

/// A Node keeps the status it is created with, as a kubelet registering its node relies on.
#[tokio::test]
async fn a_node_keeps_its_status_on_create() {
    let h = server().await;
    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "worker"},
        "status": {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                   "conditions": [{"type": "Ready", "status": "True"}]}});
    let r = post_json(&h, "/api/v1/nodes", &node).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    let got = get(&h, "/api/v1/nodes/worker").await.json();
    assert_eq!(got["status"]["capacity"]["cpu"], "4", "{got}");
    assert_eq!(got["status"]["conditions"][0]["type"], "Ready", "{got}");
}

/// A new Pod's status is what kube's strategy makes it: Pending, and the QoS class its
/// containers' resources give (limits alone default the requests: Guaranteed).
#[tokio::test]
async fn pods_start_pending_with_their_qos_class() {
    let h = server().await;
    let pod = |name: &str, resources: Value| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
               "spec": {"containers": [{"name": "c", "image": "nginx", "resources": resources}]}})
    };
    for (name, resources, class) in [
        ("besteffort", json!({}), "BestEffort"),
        (
            "burstable",
            json!({"requests": {"memory": "64Mi"}}),
            "Burstable",
        ),
        (
            "guaranteed",
            json!({"limits": {"cpu": "500m", "memory": "128Mi"}}),
            "Guaranteed",
        ),
    ] {
        let r = post_json(&h, "/api/v1/namespaces/default/pods", &pod(name, resources)).await;
        assert_eq!(r.status.as_u16(), 201, "{}", r.json());
        let status = &r.json()["status"];
        assert_eq!(status["phase"], "Pending", "{status}");
        assert_eq!(status["qosClass"], class, "{name}: {status}");
    }
}

/// Fields are tracked at the version a write is made through, as kube's field manager tracks
/// them on the versioned object, although HorizontalPodAutoscalers are stored as
/// `autoscaling/v2`: an apply through `autoscaling/v1` owns `spec.targetCPUUtilizationPercentage`
/// (stored as a v2 metric), a second applier changing it conflicts on that path, and a merge
/// patch through v1 records its manager at v1.
#[tokio::test]
async fn fields_are_tracked_at_the_version_of_the_request() {
    let h = server().await;
    let path = "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers/web";
    let hpa = |spec: Value| {
        json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
               "metadata": {"name": "web"}, "spec": spec})
        .to_string()
    };
    let r = patch(
        &h,
        &format!("{path}?fieldManager=a"),
        "application/apply-patch+yaml",
        &hpa(
            json!({"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                    "minReplicas": 1, "maxReplicas": 3, "targetCPUUtilizationPercentage": 50}),
        ),
    )
    .await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    let entry = &r.json()["metadata"]["managedFields"][0];
    assert_eq!(entry["apiVersion"], "autoscaling/v1", "{entry}");
    assert!(
        entry["fieldsV1"]["f:spec"]
            .get("f:targetCPUUtilizationPercentage")
            .is_some(),
        "{entry}"
    );
    let r = patch(
        &h,
        &format!("{path}?fieldManager=b"),
        "application/apply-patch+yaml",
        &hpa(json!({"targetCPUUtilizationPercentage": 70})),
    )
    .await;
    assert_eq!(r.status.as_u16(), 409, "{}", r.json());
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains(".spec.targetCPUUtilizationPercentage"),
        "{}",
        r.json()
    );
    let r = patch(
        &h,
        &format!("{path}?fieldManager=c"),
        "application/merge-patch+json",
        r#"{"spec":{"targetCPUUtilizationPercentage":60}}"#,
    )
    .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.json());
    // Read at v2, the entries are what the writes recorded.
    let v2 = get(
        &h,
        "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/web",
    )
    .await
    .json();
    let entries = v2["metadata"]["managedFields"].as_array().unwrap();
    let c = entries
        .iter()
        .find(|e| e["manager"] == "c")
        .unwrap_or_else(|| panic!("{v2}"));
    assert_eq!(c["apiVersion"], "autoscaling/v1");
    assert_eq!(
        c["fieldsV1"],
        json!({"f:spec": {"f:targetCPUUtilizationPercentage": {}}}),
        "{v2}"
    );
    let a = entries.iter().find(|e| e["manager"] == "a").unwrap();
    assert!(
        a["fieldsV1"]["f:spec"]
            .get("f:targetCPUUtilizationPercentage")
            .is_none(),
        "the changed field left a: {v2}"
    );
}

/// A manager's fields are compared at the version it wrote at: an applier of
/// `autoscaling/v2` metrics changes what an `autoscaling/v1` applier sees as
/// `spec.targetCPUUtilizationPercentage`, a conflict with it (kube converts both objects to each
/// manager's version); forced, the field leaves the v1 manager.
#[tokio::test]
async fn conflicts_are_found_at_each_managers_version() {
    let h = server().await;
    let v1 = "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers/api";
    let v2 = "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/api";
    let r = patch(
        &h,
        &format!("{v1}?fieldManager=old-tool"),
        "application/apply-patch+yaml",
        &json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": "api"},
                "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"},
                         "maxReplicas": 4, "targetCPUUtilizationPercentage": 50}})
        .to_string(),
    )
    .await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    let metrics = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "api"},
        "spec": {"metrics": [{"type": "Resource", "resource": {"name": "cpu",
                  "target": {"type": "Utilization", "averageUtilization": 70}}}]}})
    .to_string();
    let r = patch(
        &h,
        &format!("{v2}?fieldManager=new-tool"),
        "application/apply-patch+yaml",
        &metrics,
    )
    .await;
    assert_eq!(r.status.as_u16(), 409, "{}", r.json());
    let message = r.json()["message"].as_str().unwrap().to_string();
    assert!(
        message.contains(r#"conflict with "old-tool": .spec.targetCPUUtilizationPercentage"#),
        "{message}"
    );
    let r = patch(
        &h,
        &format!("{v2}?fieldManager=new-tool&force=true"),
        "application/apply-patch+yaml",
        &metrics,
    )
    .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.json());
    let entries = r.json()["metadata"]["managedFields"].clone();
    let old = entries
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["manager"] == "old-tool")
        .unwrap_or_else(|| panic!("{entries}"))
        .clone();
    assert_eq!(old["apiVersion"], "autoscaling/v1");
    assert!(
        old["fieldsV1"]["f:spec"]
            .get("f:targetCPUUtilizationPercentage")
            .is_none(),
        "{entries}"
    );
    assert!(
        old["fieldsV1"]["f:spec"].get("f:maxReplicas").is_some(),
        "{entries}"
    );
}

/// Explicit nulls are dropped from the object as it is stored: an `events.k8s.io/v1` Event is
/// stored as a core Event, whose fields are not the ones it was sent with.
#[tokio::test]
async fn explicit_nulls_are_dropped_at_the_storage_version() {
    let h = server().await;
    let ev = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "e1"}, "eventTime": "2026-01-01T00:00:00.000000Z",
        "reportingController": "me", "reportingInstance": "me-1", "action": "Do",
        "reason": "Done", "type": "Normal", "note": null, "series": null,
        "regarding": {"kind": "Pod", "name": "p", "namespace": "default"}});
    let r = post_json(&h, "/apis/events.k8s.io/v1/namespaces/default/events", &ev).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    let core = get(&h, "/api/v1/namespaces/default/events/e1").await.json();
    for k in ["message", "series"] {
        assert!(core.get(k).is_none(), "{k}: {core}");
    }
}

/// An apply of an unchanged configuration is a no-op: nothing written, the same
/// resourceVersion, the same managedFields.
#[tokio::test]
async fn an_unchanged_apply_writes_nothing() {
    let h = server().await;
    let path = "/api/v1/namespaces/default/configmaps/same?fieldManager=me";
    let cfg = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "same"},
                     "data": {"a": "1", "b": "2"}})
    .to_string();
    let first = patch(&h, path, "application/apply-patch+yaml", &cfg).await;
    assert_eq!(first.status.as_u16(), 201, "{}", first.json());
    let second = patch(&h, path, "application/apply-patch+yaml", &cfg).await;
    assert_eq!(second.status.as_u16(), 200, "{}", second.json());
    assert_eq!(
        first.json()["metadata"]["resourceVersion"],
        second.json()["metadata"]["resourceVersion"]
    );
    assert_eq!(
        first.json()["metadata"]["managedFields"],
        second.json()["metadata"]["managedFields"]
    );
}

/// Explicit nulls in a built-in object are dropped as a Go round trip drops them (a chart that
/// renders `annotations:` empty, or `data: null`); a custom resource keeps its own.
#[tokio::test]
async fn explicit_nulls_in_built_in_objects_are_dropped() {
    let h = server().await;
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "nulls", "annotations": null, "labels": {"a": "b"}},
                    "data": null, "binaryData": null});
    let r = post_json(&h, CM, &cm).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    let got = get(&h, &format!("{CM}/nulls")).await.json();
    assert!(got["metadata"].get("annotations").is_none(), "{got}");
    assert!(
        got.get("data").is_none() && got.get("binaryData").is_none(),
        "{got}"
    );
    assert_eq!(got["metadata"]["labels"], json!({"a": "b"}));
    // And on update.
    let mut upd = got.clone();
    upd["data"] = Value::Null;
    upd["metadata"]["labels"] = Value::Null;
    let r = put_json(&h, &format!("{CM}/nulls"), &upd).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.json());
    assert!(r.json()["metadata"].get("labels").is_none(), "{}", r.json());
}

/// `pods/ephemeralcontainers`: a patch adds an ephemeral container and changes nothing else of
/// the Pod; an existing one cannot be changed, and a name already used is refused.
#[tokio::test]
async fn ephemeral_containers_are_added_through_their_subresource() {
    let h = server().await;
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
    assert_eq!(
        post_json(&h, "/api/v1/namespaces/default/pods", &pod)
            .await
            .status
            .as_u16(),
        201
    );
    let path = "/api/v1/namespaces/default/pods/p/ephemeralcontainers";
    let r = patch(
        &h,
        path,
        "application/strategic-merge-patch+json",
        r#"{"metadata":{"labels":{"x":"y"}},"spec":{"containers":[{"name":"c","image":"evil"}],
            "ephemeralContainers":[{"name":"dbg","image":"busybox"}]}}"#,
    )
    .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.json());
    let got = r.json();
    assert_eq!(
        got["spec"]["ephemeralContainers"][0]["name"], "dbg",
        "{got}"
    );
    assert_eq!(got["spec"]["containers"][0]["image"], "nginx", "{got}");
    assert!(got["metadata"].get("labels").is_none(), "{got}");
    let r = patch(
        &h,
        path,
        "application/strategic-merge-patch+json",
        r#"{"spec":{"ephemeralContainers":[{"name":"dbg","image":"alpine"}]}}"#,
    )
    .await;
    let s = r.status_failure(422, "Invalid");
    assert_eq!(
        s["message"],
        "Pod \"p\" is invalid: spec.ephemeralContainers: Forbidden: existing ephemeral containers \"dbg\" may not be changed"
    );
    let r = patch(
        &h,
        path,
        "application/strategic-merge-patch+json",
        r#"{"spec":{"ephemeralContainers":[{"name":"c","image":"alpine"}]}}"#,
    )
    .await;
    let s = r.status_failure(422, "Invalid");
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .contains("].name: Duplicate value: \"c\""),
        "{s}"
    );
    let got = get(&h, path).await.json();
    assert_eq!(got["kind"], "Pod");
    // The write is recorded with its subresource, as any subresource write is.
    let dbg = got["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["subresource"] == "ephemeralcontainers")
        .unwrap_or_else(|| panic!("{got}"))
        .clone();
    assert!(
        dbg["fieldsV1"]["f:spec"]
            .get("f:ephemeralContainers")
            .is_some(),
        "{dbg}"
    );
}

/// `/openapi/v2` publishes the operations as kube does: each with its query parameters, typed
/// and described as the option types declare them, and list operations answering the built-in
/// list kinds, which are published among the definitions (kubectl's command tests grep the
/// document for these texts).
/// Every route kube-apiserver publishes, named as it names them: items, collections, lists
/// across namespaces, the deprecated watch paths, subresources and connections, with the
/// parameters all of a path's operations share on the path; `/openapi/v3` agrees.
#[tokio::test]
async fn openapi_publishes_kubes_routes() {
    let h = server().await;
    let doc = get(&h, "/openapi/v2").await.json();
    let names = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|p| p["name"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let path = |p: &str| -> Value {
        let v = doc["paths"][p].clone();
        assert!(v.is_object(), "no path {p}");
        v
    };
    let pod = path("/api/v1/namespaces/{namespace}/pods/{name}");
    assert_eq!(names(&pod["parameters"]), ["name", "namespace", "pretty"]);
    assert_eq!(pod["parameters"][0]["description"], "name of the Pod");
    assert_eq!(pod["parameters"][0]["in"], "path");
    assert_eq!(pod["parameters"][0]["required"], true);
    assert_eq!(pod["get"]["operationId"], "readCoreV1NamespacedPod");
    assert_eq!(pod["get"]["description"], "read the specified Pod");
    assert_eq!(pod["get"]["tags"], json!(["core_v1"]));
    assert_eq!(pod["get"]["schemes"], json!(["https"]));
    assert_eq!(
        pod["get"]["responses"]["401"]["description"],
        "Unauthorized"
    );
    assert_eq!(pod["put"]["operationId"], "replaceCoreV1NamespacedPod");
    assert_eq!(pod["delete"]["description"], "delete a Pod");
    assert_eq!(
        names(&pod["delete"]["parameters"]),
        [
            "body",
            "dryRun",
            "gracePeriodSeconds",
            "ignoreStoreReadErrorWithClusterBreakingPotential",
            "orphanDependents",
            "propagationPolicy"
        ]
    );
    assert_eq!(
        pod["patch"]["consumes"],
        json!([
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/strategic-merge-patch+json",
            "application/apply-patch+yaml"
        ])
    );
    assert_eq!(
        pod["patch"]["parameters"][0]["schema"]["$ref"],
        "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"
    );
    let pods = path("/api/v1/namespaces/{namespace}/pods");
    assert_eq!(pods["get"]["operationId"], "listCoreV1NamespacedPod");
    assert_eq!(
        pods["get"]["description"],
        "list or watch objects of kind Pod"
    );
    assert_eq!(
        pods["get"]["responses"]["200"]["schema"]["$ref"],
        "#/definitions/io.k8s.api.core.v1.PodList"
    );
    assert_eq!(
        pods["delete"]["operationId"],
        "deleteCoreV1CollectionNamespacedPod"
    );
    assert!(!names(&pods["delete"]["parameters"]).contains(&"watch".to_string()));
    assert_eq!(pods["post"]["responses"]["202"]["description"], "Accepted");
    // A path with one operation shares all its parameters.
    let all = path("/api/v1/pods");
    assert_eq!(all["get"]["operationId"], "listCoreV1PodForAllNamespaces");
    assert!(all["get"].get("parameters").is_none(), "{}", all["get"]);
    assert_eq!(
        names(&all["parameters"]),
        [
            "allowWatchBookmarks",
            "continue",
            "fieldSelector",
            "labelSelector",
            "limit",
            "pretty",
            "resourceVersion",
            "resourceVersionMatch",
            "sendInitialEvents",
            "timeoutSeconds",
            "watch"
        ]
    );
    for (p, id, action) in [
        (
            "/api/v1/watch/namespaces/{namespace}/pods/{name}",
            "watchCoreV1NamespacedPod",
            "watch",
        ),
        (
            "/api/v1/watch/namespaces/{namespace}/pods",
            "watchCoreV1NamespacedPodList",
            "watchlist",
        ),
        (
            "/api/v1/watch/pods",
            "watchCoreV1PodListForAllNamespaces",
            "watchlist",
        ),
        (
            "/api/v1/namespaces/{namespace}/pods/{name}/log",
            "readCoreV1NamespacedPodLog",
            "get",
        ),
        (
            "/api/v1/namespaces/{namespace}/pods/{name}/exec",
            "connectCoreV1GetNamespacedPodExec",
            "connect",
        ),
        (
            "/api/v1/namespaces/{namespace}/pods/{name}/proxy/{path}",
            "connectCoreV1GetNamespacedPodProxyWithPath",
            "connect",
        ),
        (
            "/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale",
            "readAppsV1NamespacedDeploymentScale",
            "get",
        ),
        (
            "/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}",
            "readRbacAuthorizationV1ClusterRole",
            "get",
        ),
        (
            "/api/v1/namespaces/{name}/status",
            "readCoreV1NamespaceStatus",
            "get",
        ),
    ] {
        let op = &path(p)["get"];
        assert_eq!(
            (
                op["operationId"].as_str(),
                op["x-kubernetes-action"].as_str()
            ),
            (Some(id), Some(action)),
            "{p}"
        );
    }
    let exec = path("/api/v1/namespaces/{namespace}/pods/{name}/exec");
    assert_eq!(
        exec["post"]["operationId"],
        "connectCoreV1PostNamespacedPodExec"
    );
    assert_eq!(
        exec["get"]["x-kubernetes-group-version-kind"]["kind"],
        "PodExecOptions"
    );
    assert!(names(&exec["parameters"]).contains(&"command".to_string()));
    let log = path("/api/v1/namespaces/{namespace}/pods/{name}/log");
    assert!(names(&log["parameters"]).contains(&"tailLines".to_string()));
    let scale = path("/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale");
    assert_eq!(
        scale["get"]["responses"]["200"]["schema"]["$ref"],
        "#/definitions/io.k8s.api.autoscaling.v1.Scale"
    );
    assert_eq!(
        scale["get"]["x-kubernetes-group-version-kind"],
        json!({"group": "autoscaling", "kind": "Scale", "version": "v1"})
    );
    let binding = path("/api/v1/namespaces/{namespace}/pods/{name}/binding");
    assert_eq!(
        binding["post"]["operationId"],
        "createCoreV1NamespacedPodBinding"
    );
    // /openapi/v3 names them alike, and its references resolve.
    let v3 = get(&h, "/openapi/v3/api/v1").await.json();
    assert_eq!(
        v3["paths"]["/api/v1/watch/pods"]["get"]["operationId"],
        "watchCoreV1PodListForAllNamespaces"
    );
    assert_eq!(
        v3["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["parameters"][0]["schema"],
        json!({"type": "string", "uniqueItems": true})
    );
    let text = v3.to_string();
    for r in text.split("\"#/components/schemas/").skip(1) {
        let name = &r[..r.find('"').unwrap()];
        assert!(
            v3["components"]["schemas"].get(name).is_some(),
            "dangling {name} in v3"
        );
    }
}

#[tokio::test]
async fn openapi_v2_publishes_parameters_and_list_kinds() {
    let h = server().await;
    let r = get(&h, "/openapi/v2").await;
    let text = String::from_utf8(r.body.to_vec()).unwrap();
    for needle in [
        "list of returned",
        "List of services",
        "Watch for changes to the described resources",
    ] {
        assert!(text.contains(needle), "no {needle:?} in /openapi/v2");
    }
    let doc: Value = serde_json::from_str(&text).unwrap();
    let list = &doc["paths"]["/api/v1/namespaces/{namespace}/services"]["get"];
    let param = |op: &Value, name: &str| -> Value {
        op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {op}"))
    };
    let watch = param(list, "watch");
    assert_eq!(watch["type"], "boolean");
    assert_eq!(watch["in"], "query");
    assert!(watch["description"]
        .as_str()
        .unwrap()
        .starts_with("Watch for changes to the described resources and return them"));
    assert_eq!(param(list, "limit")["type"], "integer");
    assert!(param(list, "labelSelector")["description"]
        .as_str()
        .unwrap()
        .contains("list of returned objects by their labels"));
    assert_eq!(
        list["responses"]["200"]["schema"]["$ref"],
        "#/definitions/io.k8s.api.core.v1.ServiceList"
    );
    let service_list = &doc["definitions"]["io.k8s.api.core.v1.ServiceList"];
    assert_eq!(
        service_list["properties"]["items"]["description"],
        "List of services"
    );
    assert_eq!(
        service_list["properties"]["items"]["items"]["$ref"],
        "#/definitions/io.k8s.api.core.v1.Service"
    );
    assert_eq!(
        service_list["x-kubernetes-group-version-kind"],
        json!([{"group": "", "kind": "ServiceList", "version": "v1"}])
    );
    let delete = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["delete"];
    assert_eq!(param(delete, "gracePeriodSeconds")["type"], "integer");
    assert_eq!(param(delete, "propagationPolicy")["type"], "string");
    let patch = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
    assert_eq!(param(patch, "force")["type"], "boolean");
    // Every reference resolves.
    let mut refs = Vec::new();
    fn collect(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                    out.push(r.to_string());
                }
                m.values().for_each(|x| collect(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| collect(x, out)),
            _ => {}
        }
    }
    collect(&doc, &mut refs);
    for r in refs {
        let name = r.strip_prefix("#/definitions/").unwrap();
        assert!(doc["definitions"].get(name).is_some(), "dangling {r}");
    }
}
