//! A Service's endpoints through kubectl (1.27 and 1.35), on a server with simulated nodes: two
//! pods run by `kubectl run` are scheduled and become Ready, `kubectl create service` selects
//! them, and `kubectl get endpointslices -l kubernetes.io/service-name=…` and `kubectl get
//! endpoints` list their addresses with the resolved target port; a pod deleted leaves both.
//!
//! Against the kubox this scenario starts, waiting for the controllers is `settled()`; against an
//! external server (`KUBOX_CONFORMANCE_KUBECONFIG`) the same checks are polled.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use kubox_conformance::{kubectl_bin, Backend, Kubectl, Target};
use serde_json::Value;

struct Scenario<'a> {
    k: &'a Kubectl,
    target: &'a Target,
    rt: &'a tokio::runtime::Runtime,
    ns: String,
}

impl Scenario<'_> {
    /// Wait until `done` holds: after the controllers settle (local kubox), or polling (remote).
    fn eventually(&self, what: &str, done: impl Fn() -> bool) {
        if let Some(server) = self.target.server() {
            self.rt.block_on(server.settled());
            assert!(done(), "not true once the controllers settled: {what}");
            return;
        }
        let start = Instant::now();
        while !done() {
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "timed out: {what}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-n", &self.ns, "-o", "json"]);
        self.k.run(&all).success().json()
    }

    /// The pod IPs of the Ready pods labelled app=web, sorted.
    fn ready_pod_ips(&self) -> Vec<String> {
        let pods = self.json(&["get", "pods", "-l", "app=web"]);
        let mut ips: Vec<String> = pods["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| {
                p["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
            .filter_map(|p| p["status"]["podIP"].as_str().map(str::to_string))
            .collect();
        ips.sort();
        ips
    }

    /// The ready endpoints' addresses in the Service's slices, sorted.
    fn slice_ips(&self) -> Vec<String> {
        let list = self.json(&[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=web",
        ]);
        let mut ips: Vec<String> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
            .filter(|e| e["conditions"]["ready"] == true)
            .flat_map(|e| e["addresses"].as_array().cloned().unwrap_or_default())
            .filter_map(|a| a.as_str().map(str::to_string))
            .collect();
        ips.sort();
        ips
    }

    /// The ready addresses of the Service's Endpoints, sorted.
    fn endpoints_ips(&self) -> Vec<String> {
        let ep = self.json(&["get", "endpoints", "web"]);
        let mut ips: Vec<String> = ep["subsets"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|s| s["addresses"].as_array().cloned().unwrap_or_default())
            .filter_map(|a| a["ip"].as_str().map(str::to_string))
            .collect();
        ips.sort();
        ips
    }
}

fn run(version: &str) {
    let bin = kubectl_bin(version);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let target = rt.block_on(Target::start_with(Backend::Memory, |b| b.nodes(3)));
    let k = Kubectl::new(version, &bin, &target);
    let s = Scenario {
        k: &k,
        target: &target,
        rt: &rt,
        ns: target.namespace.clone(),
    };
    let ns = s.ns.as_str();
    k.run(&["create", "namespace", ns]).success();
    for pod in ["web-0", "web-1"] {
        k.run(&[
            "run",
            pod,
            "-n",
            ns,
            "--image=nginx",
            "--labels=app=web",
            "--port=8080",
        ])
        .success();
    }
    // Selects app=web; port 80 → 8080, named "80-8080".
    k.run(&[
        "create",
        "service",
        "clusterip",
        "web",
        "-n",
        ns,
        "--tcp=80:8080",
    ])
    .success();
    s.eventually("both pods are Ready and listed by the slices", || {
        let pods = s.ready_pod_ips();
        pods.len() == 2 && s.slice_ips() == pods
    });
    let pods = s.ready_pod_ips();

    let list = s.json(&[
        "get",
        "endpointslices",
        "-l",
        "kubernetes.io/service-name=web",
    ]);
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list:#}");
    let slice = &items[0];
    assert_eq!(slice["addressType"], "IPv4");
    assert!(slice["metadata"]["name"]
        .as_str()
        .unwrap()
        .starts_with("web-"));
    assert_eq!(
        slice["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"],
        "endpointslice-controller.k8s.io"
    );
    assert_eq!(slice["metadata"]["ownerReferences"][0]["kind"], "Service");
    assert_eq!(slice["metadata"]["ownerReferences"][0]["name"], "web");
    assert_eq!(slice["ports"][0]["name"], "80-8080");
    assert_eq!(slice["ports"][0]["port"], 8080);
    assert_eq!(slice["ports"][0]["protocol"], "TCP");
    for e in slice["endpoints"].as_array().unwrap() {
        assert_eq!(e["conditions"]["serving"], true, "{e}");
        assert_eq!(e["conditions"]["terminating"], false, "{e}");
        assert_eq!(e["targetRef"]["kind"], "Pod");
        assert!(e["nodeName"].as_str().is_some_and(|n| !n.is_empty()));
    }
    // The table kubectl prints.
    let table = k
        .run(&[
            "get",
            "endpointslices",
            "-n",
            ns,
            "-l",
            "kubernetes.io/service-name=web",
        ])
        .success()
        .stdout;
    assert!(
        table.contains("ADDRESSTYPE") && table.contains("IPv4"),
        "{table}"
    );
    assert!(table.contains("8080"), "{table}");

    assert_eq!(s.endpoints_ips(), pods);
    let ep = s.json(&["get", "endpoints", "web"]);
    assert_eq!(ep["subsets"][0]["ports"][0]["port"], 8080);
    assert_eq!(ep["subsets"][0]["ports"][0]["name"], "80-8080");
    assert_eq!(
        ep["metadata"]["labels"]["app"], "web",
        "the Service's labels: {ep:#}"
    );
    let table = k
        .run(&["get", "endpoints", "web", "-n", ns])
        .success()
        .stdout;
    for ip in &pods {
        assert!(table.contains(&format!("{ip}:8080")), "{table}");
    }

    // One pod deleted: gone from both.
    k.run(&["delete", "pod", "web-0", "-n", ns, "--wait=false"])
        .success();
    s.eventually("web-0 left the slices and the Endpoints", || {
        let pods = s.ready_pod_ips();
        pods.len() == 1 && s.slice_ips() == pods && s.endpoints_ips() == pods
    });
    rt.block_on(target.stop());
}

#[test]
fn kubectl_1_27_lists_a_services_endpoints() {
    run("1.27");
}

#[test]
fn kubectl_1_35_lists_a_services_endpoints() {
    run("1.35");
}
