//! Everyday kubectl commands, through every installed kubectl (1.27 … 1.33, and 1.35).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use kubox_conformance::{kubectl_binaries, Backend, Kubectl, Target};

const CONFIGMAP: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  labels:
    app: demo
data:
  greeting: hello
";

fn deployment(image: &str, replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: {image}
        ports:
        - containerPort: 80
        env:
        - name: MODE
          value: demo
      - name: sidecar
        image: busybox:1.36
"
    )
}

fn everyday(k: &Kubectl, ns: &str) {
    // Discovery.
    let out = k.run(&["api-resources"]).success().stdout;
    for needle in [
        "deployments",
        "deploy",
        "apps/v1",
        "configmaps",
        "cm",
        "customresourcedefinitions",
        "horizontalpodautoscalers",
    ] {
        assert!(out.contains(needle), "api-resources lacks {needle}:\n{out}");
    }
    let out = k.run(&["api-versions"]).success().stdout;
    assert!(
        out.lines().any(|l| l == "apps/v1") && out.lines().any(|l| l == "v1"),
        "{out}"
    );
    let out = k.run(&["cluster-info"]).success().stdout;
    assert!(out.contains("is running at"), "{out}");
    let v = k.run(&["get", "--raw", "/version"]).success().json();
    assert_eq!(v["minor"], "35");

    // Create, get in every output format.
    k.run_stdin(
        &["create", "-f", "-"],
        &format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n"),
    )
    .success();
    k.run_stdin(&["create", "-n", ns, "-f", "-"], CONFIGMAP)
        .success();
    let cm = k
        .run(&["get", "configmap", "settings", "-n", ns, "-o", "json"])
        .success()
        .json();
    assert_eq!(cm["data"]["greeting"], "hello");
    assert!(cm["metadata"]["uid"]
        .as_str()
        .is_some_and(|u| !u.is_empty()));
    let yaml = k
        .run(&["get", "cm", "settings", "-n", ns, "-o", "yaml"])
        .success()
        .stdout;
    assert!(yaml.contains("greeting: hello"), "{yaml}");
    let jp = k
        .run(&[
            "get",
            "cm",
            "settings",
            "-n",
            ns,
            "-o",
            "jsonpath={.data.greeting}",
        ])
        .success()
        .stdout;
    assert_eq!(jp, "hello");
    let table = k.run(&["get", "cm", "-n", ns]).success().stdout;
    assert!(
        table.starts_with("NAME") && table.contains("DATA") && table.contains("settings"),
        "{table}"
    );
    let wide = k.run(&["get", "ns", ns, "-o", "wide"]).success().stdout;
    assert!(wide.contains("Active"), "{wide}");
    let all_ns = k.run(&["get", "cm", "-A"]).success().stdout;
    assert!(
        all_ns.contains("NAMESPACE") && all_ns.contains(ns),
        "{all_ns}"
    );
    let described = k
        .run(&["describe", "cm", "settings", "-n", ns])
        .success()
        .stdout;
    assert!(
        described.contains("greeting") && described.contains(ns),
        "{described}"
    );

    // Client-side apply: create, change, apply again, unchanged.
    let out = k
        .run_stdin(
            &["apply", "-n", ns, "-f", "-"],
            &deployment("nginx:1.25", 1),
        )
        .success()
        .stdout;
    assert!(out.contains("created"), "{out}");
    let out = k
        .run_stdin(
            &["apply", "-n", ns, "-f", "-"],
            &deployment("nginx:1.26", 2),
        )
        .success()
        .stdout;
    assert!(out.contains("configured"), "{out}");
    let out = k
        .run_stdin(
            &["apply", "-n", ns, "-f", "-"],
            &deployment("nginx:1.26", 2),
        )
        .success()
        .stdout;
    assert!(out.contains("unchanged"), "{out}");
    let d = k
        .run(&["get", "deploy", "web", "-n", ns, "-o", "json"])
        .success()
        .json();
    assert_eq!(d["spec"]["replicas"], 2);
    let containers = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(containers.len(), 2);
    assert_eq!(containers[0]["image"], "nginx:1.26");
    assert_eq!(containers[0]["env"][0]["name"], "MODE");
    assert_eq!(d["metadata"]["generation"], 2);

    // label, annotate, the three patch types, scale, set image, rollout restart.
    k.run(&["label", "cm", "settings", "-n", ns, "tier=backend"])
        .success();
    let out = k
        .run(&[
            "get",
            "cm",
            "-n",
            ns,
            "-l",
            "tier=backend,app in (demo)",
            "-o",
            "name",
        ])
        .success()
        .stdout;
    assert_eq!(out.trim(), "configmap/settings");
    k.run(&["annotate", "cm", "settings", "-n", ns, "owner=team-a"])
        .success();
    k.run(&[
        "patch",
        "cm",
        "settings",
        "-n",
        ns,
        "--type",
        "merge",
        "-p",
        r#"{"data":{"merged":"yes"}}"#,
    ])
    .success();
    k.run(&[
        "patch",
        "cm",
        "settings",
        "-n",
        ns,
        "--type",
        "json",
        "-p",
        r#"[{"op":"add","path":"/data/json","value":"yes"}]"#,
    ])
    .success();
    k.run(&["patch", "deploy", "web", "-n", ns, "-p", r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox:1.37"}]}}}}"#]).success();
    let cm = k
        .run(&["get", "cm", "settings", "-n", ns, "-o", "json"])
        .success()
        .json();
    assert_eq!(cm["metadata"]["labels"]["tier"], "backend");
    assert_eq!(cm["metadata"]["annotations"]["owner"], "team-a");
    assert_eq!(
        (cm["data"]["merged"].as_str(), cm["data"]["json"].as_str()),
        (Some("yes"), Some("yes"))
    );
    k.run(&["scale", "deploy", "web", "-n", ns, "--replicas", "5"])
        .success();
    k.run(&["set", "image", "deploy/web", "-n", ns, "web=nginx:1.27"])
        .success();
    k.run(&["rollout", "restart", "deploy/web", "-n", ns])
        .success();
    let d = k
        .run(&["get", "deploy", "web", "-n", ns, "-o", "json"])
        .success()
        .json();
    assert_eq!(d["spec"]["replicas"], 5);
    let containers = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(containers[0]["image"], "nginx:1.27");
    assert_eq!(
        containers[1]["image"], "busybox:1.37",
        "strategic merge kept the other container"
    );
    assert!(
        d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .is_string()
    );

    // edit through an EDITOR script.
    let mut c = k.command(&["edit", "cm", "settings", "-n", ns]);
    c.env("EDITOR", "sed -i s/greeting:\\ hello/greeting:\\ edited/");
    k.run_with(c, &["edit", "cm", "settings"]).success();
    let jp = k
        .run(&[
            "get",
            "cm",
            "settings",
            "-n",
            ns,
            "-o",
            "jsonpath={.data.greeting}",
        ])
        .success()
        .stdout;
    assert_eq!(jp, "edited");

    // Chunked lists see every object.
    for i in 0..7 {
        let cm = format!(
            "apiVersion: v1
kind: ConfigMap
metadata:
  name: chunk-{i}
data:
  i: \"1\"
"
        );
        k.run_stdin(&["create", "-n", ns, "-f", "-"], &cm).success();
    }
    let out = k
        .run(&["get", "cm", "-n", ns, "--chunk-size", "2", "-o", "name"])
        .success()
        .stdout;
    assert_eq!(
        out.lines()
            .filter(|l| l.starts_with("configmap/chunk-"))
            .count(),
        7,
        "{out}"
    );

    // wait --for=condition on a status written through /status.
    let pod = "apiVersion: v1
kind: Pod
metadata:
  name: pod1
spec:
  containers:
  - name: main
    image: nginx:1.27
";
    k.run_stdin(&["create", "-n", ns, "-f", "-"], pod).success();
    k.run(&[
        "patch",
        "pod",
        "pod1",
        "-n",
        ns,
        "--subresource",
        "status",
        "--type",
        "merge",
        "-p",
        r#"{"status":{"conditions":[{"type":"Ready","status":"True"}]}}"#,
    ])
    .success();
    k.run(&[
        "wait",
        "--for=condition=Ready",
        "pod/pod1",
        "-n",
        ns,
        "--timeout",
        "20s",
    ])
    .success();

    // get -w sees an update made after it started.
    let mut c = k.command(&[
        "get",
        "cm",
        "settings",
        "-n",
        ns,
        "-w",
        "-o",
        "jsonpath={.data.greeting}{\"\\n\"}",
    ]);
    c.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = c.spawn().expect("kubectl get -w");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "edited");
    k.run(&[
        "patch",
        "cm",
        "settings",
        "-n",
        ns,
        "--type",
        "merge",
        "-p",
        r#"{"data":{"greeting":"watched"}}"#,
    ])
    .success();
    assert_eq!(lines.next().unwrap().unwrap(), "watched");
    let _ = child.kill();
    let _ = child.wait();

    // Errors print as on a cluster; delete.
    let out = k.run(&["get", "cm", "missing", "-n", ns]).failure().stderr;
    assert!(out.contains("configmaps \"missing\" not found"), "{out}");
    let out = k
        .run(&["delete", "cm", "settings", "-n", ns])
        .success()
        .stdout;
    assert!(out.contains("deleted"), "{out}");
    k.run(&["get", "cm", "settings", "-n", ns]).failure();
    let out = k
        .run_stdin(&["create", "-n", ns, "-f", "-"], CONFIGMAP)
        .success()
        .stdout;
    assert!(out.contains("created"), "{out}");
    let out = k
        .run_stdin(&["create", "-n", ns, "-f", "-"], CONFIGMAP)
        .failure()
        .stderr;
    assert!(
        out.contains("AlreadyExists") || out.contains("already exists"),
        "{out}"
    );
}

fn run_everyday(version: &str, backend: Backend) {
    let (_, bin) = kubectl_binaries()
        .into_iter()
        .find(|(v, _)| v == version)
        .unwrap_or_else(|| {
            panic!("kubectl {version} is not installed (run scripts/install-tools)")
        });
    let rt = tokio::runtime::Runtime::new().unwrap();
    let target = rt.block_on(Target::start(backend));
    let k = Kubectl::new(version, &bin, &target);
    everyday(&k, &target.namespace);
    rt.block_on(target.stop());
}

macro_rules! everyday_tests {
    ($($name:ident => $version:expr, $backend:expr;)*) => {
        $(#[test] fn $name() { run_everyday($version, $backend); })*
    };
}

everyday_tests! {
    kubectl_1_27_everyday_commands => "1.27", Backend::Memory;
    kubectl_1_28_everyday_commands => "1.28", Backend::Memory;
    kubectl_1_29_everyday_commands => "1.29", Backend::Memory;
    kubectl_1_30_everyday_commands => "1.30", Backend::Memory;
    kubectl_1_31_everyday_commands => "1.31", Backend::Memory;
    kubectl_1_32_everyday_commands => "1.32", Backend::Memory;
    kubectl_1_33_everyday_commands => "1.33", Backend::Memory;
    kubectl_1_35_everyday_commands => "1.35", Backend::Memory;
    kubectl_1_33_everyday_commands_on_sled => "1.33", Backend::Sled;
    kubectl_1_35_everyday_commands_on_sled => "1.35", Backend::Sled;
    kubectl_1_27_everyday_commands_on_etcd => "1.27", Backend::Etcd;
    kubectl_1_35_everyday_commands_on_etcd => "1.35", Backend::Etcd;
}
