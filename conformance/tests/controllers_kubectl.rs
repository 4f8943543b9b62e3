//! The built-in controllers through kubectl (1.27 … 1.35): `kubectl delete --cascade=background|
//! foreground|orphan` on a Deployment → ReplicaSet → Pod chain and on a custom resource owning
//! ConfigMaps; `kubectl delete ns` on a namespace full of objects, some held by finalizers that a
//! kube-rs test controller removes; a new namespace's default ServiceAccount and root CA.
//!
//! Against the kubox these scenarios start, waiting for the controllers is `settled()`; against an
//! external server (`KUBOX_CONFORMANCE_KUBECONFIG`) the same checks are polled.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Debug;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::serde::de::DeserializeOwned;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Resource, ResourceExt};
use kubox_conformance::{kubectl_binaries, Backend, Kubectl, Target};
use serde_json::json;

const STACK_CRD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: stacks.conformance.kubox.dev
spec:
  group: conformance.kubox.dev
  scope: Namespaced
  names:
    plural: stacks
    singular: stack
    kind: Stack
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
";

/// The finalizer the test controller removes.
const HOLD: &str = "conformance.kubox.dev/hold";

struct Scenario<'a> {
    k: &'a Kubectl,
    target: &'a Target,
    rt: &'a tokio::runtime::Runtime,
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
                start.elapsed() < Duration::from_secs(60),
                "timed out: {what}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Create from YAML; the new object's uid.
    fn create(&self, ns: &str, yaml: &str) -> String {
        self.k
            .run_stdin(
                &[
                    "create",
                    "-n",
                    ns,
                    "-f",
                    "-",
                    "-o",
                    "jsonpath={.metadata.uid}",
                ],
                yaml,
            )
            .success()
            .stdout
    }

    /// `kind/name` of what exists among `kinds`, sorted.
    fn left(&self, ns: &str, kinds: &str) -> Vec<String> {
        let out = self
            .k
            .run(&["get", kinds, "-n", ns, "-o", "name"])
            .success()
            .stdout;
        let mut v: Vec<String> = out.lines().map(str::to_string).collect();
        v.sort();
        v
    }
}

fn owner(api_version: &str, kind: &str, name: &str, uid: &str) -> String {
    format!(
        "  ownerReferences:
  - apiVersion: {api_version}
    kind: {kind}
    name: {name}
    uid: {uid}
    controller: true
    blockOwnerDeletion: true
"
    )
}

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
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
        image: nginx:1.25
";

fn replicaset(deploy_uid: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: web-1
{}spec:
  replicas: 2
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
        image: nginx:1.25
",
        owner("apps/v1", "Deployment", "web", deploy_uid)
    )
}

fn pod(name: &str, rs_uid: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels:
    app: web
{}spec:
  containers:
  - name: web
    image: nginx:1.25
",
        owner("apps/v1", "ReplicaSet", "web-1", rs_uid)
    )
}

const CHAIN: &str = "deployments,replicasets,pods";

fn chain(s: &Scenario, ns: &str) -> Vec<String> {
    let d = s.create(ns, DEPLOYMENT);
    let rs = s.create(ns, &replicaset(&d));
    s.create(ns, &pod("web-1-a", &rs));
    s.create(ns, &pod("web-1-b", &rs));
    let all = s.left(ns, CHAIN);
    assert_eq!(
        all,
        [
            "deployment.apps/web",
            "pod/web-1-a",
            "pod/web-1-b",
            "replicaset.apps/web-1"
        ]
    );
    all
}

fn cascading(s: &Scenario, ns: &str) {
    let k = s.k;
    // Background: the owner goes at once, the garbage collector takes the rest.
    chain(s, ns);
    k.run(&[
        "delete",
        "deployment",
        "web",
        "-n",
        ns,
        "--cascade=background",
    ])
    .success();
    s.eventually("the chain is collected", || s.left(ns, CHAIN).is_empty());

    // Foreground: kubectl waits for the owner, which goes after its dependents.
    chain(s, ns);
    k.run(&[
        "delete",
        "deployment",
        "web",
        "-n",
        ns,
        "--cascade=foreground",
    ])
    .success();
    assert_eq!(
        s.left(ns, CHAIN),
        Vec::<String>::new(),
        "dependents go before a foreground-deleted owner"
    );

    // Orphan: dependents stay, without the reference.
    chain(s, ns);
    k.run(&["delete", "deployment", "web", "-n", ns, "--cascade=orphan"])
        .success();
    assert_eq!(
        s.left(ns, CHAIN),
        ["pod/web-1-a", "pod/web-1-b", "replicaset.apps/web-1"]
    );
    let refs = k
        .run(&[
            "get",
            "rs",
            "web-1",
            "-n",
            ns,
            "-o",
            "jsonpath={.metadata.ownerReferences}",
        ])
        .success()
        .stdout;
    assert_eq!(refs.trim(), "", "the orphan lost its owner reference");
    // apps/v1 defaults to background: the pods follow their ReplicaSet.
    k.run(&["delete", "rs", "web-1", "-n", ns]).success();
    s.eventually("pods follow their ReplicaSet", || {
        s.left(ns, CHAIN).is_empty()
    });

    // A custom resource owning ConfigMaps, in each mode.
    k.run_stdin(&["apply", "-f", "-"], STACK_CRD).success();
    k.run(&[
        "wait",
        "--for=condition=Established",
        "crd/stacks.conformance.kubox.dev",
        "--timeout=30s",
    ])
    .success();
    for mode in ["background", "foreground", "orphan"] {
        let uid = s.create(
            ns,
            "apiVersion: conformance.kubox.dev/v1\nkind: Stack\nmetadata:\n  name: s\n",
        );
        for cm in ["part-1", "part-2"] {
            s.create(
                ns,
                &format!(
                    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {cm}\n{}",
                    owner("conformance.kubox.dev/v1", "Stack", "s", &uid)
                ),
            );
        }
        k.run(&[
            "delete",
            "stack",
            "s",
            "-n",
            ns,
            &format!("--cascade={mode}"),
        ])
        .success();
        let parts = || {
            s.left(ns, "configmaps")
                .into_iter()
                .filter(|c| c.starts_with("configmap/part-"))
                .collect::<Vec<_>>()
        };
        if mode == "orphan" {
            assert_eq!(parts(), ["configmap/part-1", "configmap/part-2"]);
            k.run(&["delete", "cm", "part-1", "part-2", "-n", ns])
                .success();
        } else {
            s.eventually(&format!("{mode}: the stack's ConfigMaps go"), || {
                parts().is_empty()
            });
        }
    }
}

fn run_cascading(version: &str) {
    let (_, bin) = kubectl_binaries()
        .into_iter()
        .find(|(v, _)| v == version)
        .unwrap_or_else(|| panic!("kubectl {version} is not installed"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let target = rt.block_on(Target::start(Backend::Memory));
    let k = Kubectl::new(version, &bin, &target);
    let ns = target.namespace.clone();
    k.run(&["create", "namespace", &ns]).success();
    cascading(
        &Scenario {
            k: &k,
            target: &target,
            rt: &rt,
        },
        &ns,
    );
    rt.block_on(target.stop());
}

macro_rules! cascading_tests {
    ($($name:ident => $version:expr;)*) => {
        $(#[test] fn $name() { run_cascading($version); })*
    };
}

cascading_tests! {
    kubectl_1_27_cascading_deletion => "1.27";
    kubectl_1_28_cascading_deletion => "1.28";
    kubectl_1_29_cascading_deletion => "1.29";
    kubectl_1_30_cascading_deletion => "1.30";
    kubectl_1_31_cascading_deletion => "1.31";
    kubectl_1_32_cascading_deletion => "1.32";
    kubectl_1_33_cascading_deletion => "1.33";
    kubectl_1_35_cascading_deletion => "1.35";
}

/// Remove [`HOLD`] from every object of `api` once it is being deleted (a finalizing controller).
async fn release_held<K>(api: Api<K>)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let mut stream = watcher(api.clone(), watcher::Config::default())
        .applied_objects()
        .boxed();
    while let Some(item) = stream.next().await {
        let Ok(obj) = item else { continue };
        if obj.meta().deletion_timestamp.is_none() || !obj.finalizers().iter().any(|f| f == HOLD) {
            continue;
        }
        let kept: Vec<&String> = obj.finalizers().iter().filter(|f| *f != HOLD).collect();
        let _ = api
            .patch(
                &obj.name_any(),
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"finalizers": kept, "resourceVersion": obj.resource_version()}})),
            )
            .await;
    }
}

fn full_namespace(ns: &str) -> String {
    let mut items = Vec::new();
    for i in 0..60 {
        let hold = if i % 10 == 0 {
            format!("\n    finalizers: [{HOLD}]")
        } else {
            String::new()
        };
        items.push(format!(
            "- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: cm-{i:03}{hold}\n  data:\n    i: \"{i}\""
        ));
    }
    for i in 0..20 {
        let hold = if i % 5 == 0 {
            format!("\n    finalizers: [{HOLD}]")
        } else {
            String::new()
        };
        items.push(format!(
            "- apiVersion: v1\n  kind: Secret\n  metadata:\n    name: secret-{i:03}{hold}\n  stringData:\n    k: v"
        ));
    }
    for i in 0..5 {
        items.push(format!(
            "- apiVersion: v1\n  kind: Service\n  metadata:\n    name: svc-{i}\n  spec:\n    ports:\n    - port: 80"
        ));
    }
    for i in 0..10 {
        let hold = if i % 2 == 0 {
            format!("\n    finalizers: [{HOLD}]")
        } else {
            String::new()
        };
        items.push(format!(
            "- apiVersion: conformance.kubox.dev/v1\n  kind: Stack\n  metadata:\n    name: stack-{i}{hold}"
        ));
    }
    items.push(
        DEPLOYMENT
            .lines()
            .enumerate()
            .map(|(i, l)| {
                if i == 0 {
                    format!("- {l}")
                } else {
                    format!("  {l}")
                }
            })
            .collect::<Vec<_>>()
            .join("\n"),
    );
    format!(
        "apiVersion: v1\nkind: List\nmetadata:\n  namespace: {ns}\nitems:\n{}\n",
        items.join("\n")
    )
}

fn run_namespace_deletion(version: &str) {
    let (_, bin) = kubectl_binaries()
        .into_iter()
        .find(|(v, _)| v == version)
        .unwrap_or_else(|| panic!("kubectl {version} is not installed"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let target = rt.block_on(Target::start(Backend::Memory));
    let k = Kubectl::new(version, &bin, &target);
    let ns = target.namespace.clone();
    k.run(&["create", "namespace", &ns]).success();
    k.run_stdin(&["apply", "-f", "-"], STACK_CRD).success();
    k.run(&[
        "wait",
        "--for=condition=Established",
        "crd/stacks.conformance.kubox.dev",
        "--timeout=30s",
    ])
    .success();
    k.run_stdin(&["create", "-n", &ns, "-f", "-"], &full_namespace(&ns))
        .success();
    let n = k
        .run(&[
            "get",
            "cm,secrets,svc,stacks,deploy",
            "-n",
            &ns,
            "-o",
            "name",
        ])
        .success()
        .stdout
        .lines()
        .count();
    assert!(n >= 96, "{n} objects");

    // The test controller that releases held objects.
    let client = rt.block_on(target.client());
    let stacks = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("conformance.kubox.dev", "v1", "Stack"),
        "stacks",
    );
    let releasers = [
        rt.spawn(release_held(Api::<ConfigMap>::namespaced(
            client.clone(),
            &ns,
        ))),
        rt.spawn(release_held(Api::<Secret>::namespaced(client.clone(), &ns))),
        rt.spawn(release_held(Api::<DynamicObject>::namespaced_with(
            client, &ns, &stacks,
        ))),
    ];

    // kubectl waits until the namespace is gone.
    let out = k
        .run(&["delete", "namespace", &ns, "--timeout=60s"])
        .success()
        .stdout;
    assert!(out.contains("deleted"), "{out}");
    let gone = k.run(&["get", "namespace", &ns]).failure();
    assert!(
        gone.stderr.contains("NotFound") || gone.stderr.contains("not found"),
        "{gone:?}"
    );
    for r in releasers {
        r.abort();
    }
    rt.block_on(target.stop());
}

#[test]
fn kubectl_1_27_deletes_a_full_namespace() {
    run_namespace_deletion("1.27");
}

#[test]
fn kubectl_1_35_deletes_a_full_namespace() {
    run_namespace_deletion("1.35");
}

fn run_new_namespace(version: &str) {
    let (_, bin) = kubectl_binaries()
        .into_iter()
        .find(|(v, _)| v == version)
        .unwrap_or_else(|| panic!("kubectl {version} is not installed"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let target = rt.block_on(Target::start(Backend::Memory));
    let k = Kubectl::new(version, &bin, &target);
    let ns = target.namespace.clone();
    k.run(&["create", "namespace", &ns]).success();
    let s = Scenario {
        k: &k,
        target: &target,
        rt: &rt,
    };
    s.eventually(
        "the default ServiceAccount and kube-root-ca.crt exist",
        || {
            s.left(&ns, "serviceaccounts,configmaps")
                == ["configmap/kube-root-ca.crt", "serviceaccount/default"]
        },
    );
    let cm = k
        .run(&["get", "cm", "kube-root-ca.crt", "-n", &ns, "-o", "json"])
        .success()
        .json();
    assert!(cm["data"]["ca.crt"].is_string(), "{cm}");
    assert!(cm["metadata"]["annotations"]["kubernetes.io/description"]
        .as_str()
        .is_some_and(|d| d.contains("CA bundle")));
    let table = k.run(&["get", "sa", "-n", &ns]).success().stdout;
    assert!(table.contains("default"), "{table}");
    rt.block_on(target.stop());
}

#[test]
fn kubectl_1_27_sees_a_new_namespaces_service_account() {
    run_new_namespace("1.27");
}

#[test]
fn kubectl_1_35_sees_a_new_namespaces_service_account() {
    run_new_namespace("1.35");
}
