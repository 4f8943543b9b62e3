//! Deployments on simulated nodes through real clients: kubectl 1.27 and 1.35 drive a rollout
//! (create → rollout status → scale → set image → rollout status → history → undo → pause and
//! resume → wait Available), and a kube-rs operator creates a Deployment and waits for it to
//! become Available (settled(), no sleeps).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use kubox_conformance::{kubectl_bin, Backend, Kubectl, Target};
use serde_json::json;

fn start() -> (tokio::runtime::Runtime, Target) {
    let rt = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let target = rt.block_on(Target::start_with(Backend::Memory, |b| b.nodes(3)));
    (rt, target)
}

fn images(k: &Kubectl, ns: &str) -> Vec<String> {
    let out = k
        .run(&[
            "get",
            "pods",
            "-n",
            ns,
            "-l",
            "app=web",
            "-o",
            "jsonpath={range .items[*]}{.status.phase} {.spec.containers[0].image}{\"\\n\"}{end}",
        ])
        .success()
        .stdout;
    let mut v: Vec<String> = out.lines().map(str::to_string).collect();
    v.sort();
    v
}

fn rollout_status(k: &Kubectl, ns: &str) {
    let out = k
        .run(&[
            "rollout",
            "status",
            "deployment/web",
            "-n",
            ns,
            "--timeout=60s",
        ])
        .success()
        .stdout;
    assert!(out.contains("successfully rolled out"), "{out}");
}

fn rollout(version: &str) {
    let (rt, target) = start();
    let k = Kubectl::new(version, &kubectl_bin(version), &target);
    let ns = target.namespace.as_str();
    k.run(&["create", "namespace", ns]).success();
    k.run(&[
        "create",
        "deployment",
        "web",
        "-n",
        ns,
        "--image",
        "nginx:1.25",
        "--replicas",
        "2",
    ])
    .success();
    rollout_status(&k, ns);
    assert_eq!(images(&k, ns), ["Running nginx:1.25", "Running nginx:1.25"]);

    k.run(&["scale", "deployment/web", "-n", ns, "--replicas", "4"])
        .success();
    rollout_status(&k, ns);
    k.run(&[
        "wait",
        "--for=condition=Available",
        "deployment/web",
        "-n",
        ns,
        "--timeout=60s",
    ])
    .success();
    let ready = k
        .run(&[
            "get",
            "deployment",
            "web",
            "-n",
            ns,
            "-o",
            "jsonpath={.status.readyReplicas}/{.status.availableReplicas}",
        ])
        .success()
        .stdout;
    assert_eq!(ready, "4/4");

    k.run(&[
        "set",
        "image",
        "deployment/web",
        "-n",
        ns,
        "nginx=nginx:1.26",
    ])
    .success();
    rollout_status(&k, ns);
    assert_eq!(images(&k, ns), vec!["Running nginx:1.26".to_string(); 4]);
    let history = k
        .run(&["rollout", "history", "deployment/web", "-n", ns])
        .success()
        .stdout;
    assert!(
        history.contains("1 ") && history.contains("2 "),
        "{history}"
    );

    k.run(&["rollout", "undo", "deployment/web", "-n", ns])
        .success();
    rollout_status(&k, ns);
    assert_eq!(images(&k, ns), vec!["Running nginx:1.25".to_string(); 4]);
    let revision = k
        .run(&[
            "get",
            "deployment",
            "web",
            "-n",
            ns,
            "-o",
            "jsonpath={.metadata.annotations.deployment\\.kubernetes\\.io/revision}",
        ])
        .success()
        .stdout;
    assert_eq!(revision, "3");
    let rs = k
        .run(&["get", "replicasets", "-n", ns, "-o", "name"])
        .success()
        .stdout;
    assert_eq!(
        rs.lines().count(),
        2,
        "undo reuses the first ReplicaSet: {rs}"
    );

    // Paused: a new template waits; resumed: it rolls out.
    k.run(&["rollout", "pause", "deployment/web", "-n", ns])
        .success();
    k.run(&[
        "set",
        "image",
        "deployment/web",
        "-n",
        ns,
        "nginx=nginx:1.27",
    ])
    .success();
    k.run(&["rollout", "resume", "deployment/web", "-n", ns])
        .success();
    rollout_status(&k, ns);
    assert_eq!(images(&k, ns), vec!["Running nginx:1.27".to_string(); 4]);

    // The pods run on the simulated nodes; their logs are a clear error.
    let wide = k
        .run(&["get", "pods", "-n", ns, "-o", "wide"])
        .success()
        .stdout;
    assert!(wide.contains("kubox-node-"), "{wide}");
    let pod = k
        .run(&[
            "get",
            "pods",
            "-n",
            ns,
            "-o",
            "jsonpath={.items[0].metadata.name}",
        ])
        .success()
        .stdout;
    let logs = k.run(&["logs", &pod, "-n", ns]).failure();
    assert!(
        logs.stderr.contains("kubox runs no containers"),
        "{}",
        logs.stderr
    );
    let nodes = k.run(&["get", "nodes"]).success().stdout;
    assert_eq!(
        nodes.lines().filter(|l| l.contains(" Ready ")).count(),
        3,
        "{nodes}"
    );
    rt.block_on(target.stop());
}

#[test]
fn kubectl_1_27_rolls_a_deployment_out_scales_updates_and_undoes_it() {
    rollout("1.27");
}

#[test]
fn kubectl_1_35_rolls_a_deployment_out_scales_updates_and_undoes_it() {
    rollout("1.35");
}

/// `kubectl drain`: the node is cordoned, its pods evicted within the budget and scheduled on
/// the other nodes; `uncordon` makes it schedulable again.
fn drain(version: &str) {
    let (rt, target) = start();
    let k = Kubectl::new(version, &kubectl_bin(version), &target);
    let ns = target.namespace.as_str();
    k.run(&["create", "namespace", ns]).success();
    k.run(&[
        "create",
        "deployment",
        "web",
        "-n",
        ns,
        "--image",
        "nginx",
        "--replicas",
        "6",
    ])
    .success();
    k.run(&[
        "create",
        "poddisruptionbudget",
        "web",
        "-n",
        ns,
        "--selector",
        "app=web",
        "--max-unavailable",
        "1",
    ])
    .success();
    rollout_status(&k, ns);
    let on_node = |node: &str| {
        k.run(&[
            "get",
            "pods",
            "-n",
            ns,
            "--field-selector",
            &format!("spec.nodeName={node}"),
            "-o",
            "name",
        ])
        .success()
        .stdout
        .lines()
        .count()
    };
    assert!(
        on_node("kubox-node-0") > 0,
        "the pods spread over the nodes"
    );
    k.run(&[
        "drain",
        "kubox-node-0",
        "--ignore-daemonsets",
        "--timeout=120s",
    ])
    .success();
    let node = k
        .run(&[
            "get",
            "node",
            "kubox-node-0",
            "-o",
            "jsonpath={.spec.unschedulable}",
        ])
        .success()
        .stdout;
    assert_eq!(node, "true");
    rollout_status(&k, ns);
    assert_eq!(on_node("kubox-node-0"), 0);
    assert_eq!(images(&k, ns).len(), 6);
    k.run(&["uncordon", "kubox-node-0"]).success();
    let node = k
        .run(&[
            "get",
            "node",
            "kubox-node-0",
            "-o",
            "jsonpath={.spec.unschedulable}",
        ])
        .success()
        .stdout;
    assert_eq!(node, "");
    rt.block_on(target.stop());
}

#[test]
fn kubectl_1_27_drains_a_node_within_a_disruption_budget() {
    drain("1.27");
}

#[test]
fn kubectl_1_35_drains_a_node_within_a_disruption_budget() {
    drain("1.35");
}

/// What a controller author writes: an operator that creates a Deployment and waits until it is
/// Available, the test waiting on settled() rather than sleeping.
#[test]
fn a_kube_rs_operator_waits_for_its_deployment_to_become_available() {
    let (rt, target) = start();
    rt.block_on(async {
        let client = target.client().await;
        let ns = target.namespace.as_str();
        let nss: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
        nss.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
        )
        .await
        .unwrap();
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
        let d: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "api"},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "api"}},
                "template": {
                    "metadata": {"labels": {"app": "api"}},
                    "spec": {"containers": [{"name": "api", "image": "example/api:1"}]},
                },
            },
        }))
        .unwrap();
        deployments
            .create(&PostParams::default(), &d)
            .await
            .unwrap();
        if let Some(server) = target.server() {
            server.settled().await;
            let d = deployments.get("api").await.unwrap();
            let available = d
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|c| c.iter().find(|c| c.type_ == "Available"))
                .map(|c| c.status.clone());
            assert_eq!(available.as_deref(), Some("True"), "Available once settled");
        }
        let available = await_condition(
            deployments.clone(),
            "api",
            conditions::is_deployment_completed(),
        );
        tokio::time::timeout(std::time::Duration::from_secs(60), available)
            .await
            .expect("the Deployment completes")
            .unwrap();
        let pods: Api<Pod> = Api::namespaced(client, ns);
        let list = pods
            .list(&ListParams::default().labels("app=api"))
            .await
            .unwrap();
        assert_eq!(list.items.len(), 3);
        for p in &list.items {
            let s = p.status.as_ref().unwrap();
            assert_eq!(s.phase.as_deref(), Some("Running"));
            assert!(s
                .pod_ip
                .as_deref()
                .is_some_and(|ip| ip.starts_with("10.244.")));
        }
    });
    rt.block_on(target.stop());
}
