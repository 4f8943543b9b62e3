//! `kubox serve --storage etcd` as an operator runs it: real kubox processes on real etcd
//! members (Debian's etcd-server on free loopback ports), driven through kube-rs. etcd or kubox
//! killed with SIGKILL under write load, etcd gone and back, several kubox replicas on one
//! etcd cluster.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use common::kubectl;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use kubox_storage::etcd::{EtcdOptions, EtcdStore};
use kubox_storage::etcd_process::EtcdCluster;
use kubox_storage::Store;

/// How long a recovery (etcd back, a replica learning a change) may take before the scenario
/// fails; polling stops as soon as it happened.
const RECOVERY: Duration = Duration::from_secs(30);

/// One `kubox serve` process.
struct Kubox {
    child: Child,
    kubeconfig: PathBuf,
    log: Arc<Mutex<Vec<String>>>,
}

impl Drop for Kubox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Kubox {
    /// `kubox serve --storage etcd` on 127.0.0.1:0, PKI in `dir` (shared by replicas), its own
    /// kubeconfig `dir/<name>.kubeconfig`.
    /// The process of [`Kubox::serve`], spawned, with its kubeconfig's path; stdout and stderr
    /// piped.
    fn spawn(dir: &Path, name: &str, etcd: &[String], extra: &[&str]) -> (Child, PathBuf) {
        let kubeconfig = dir.join(format!("{name}.kubeconfig"));
        let child = Command::new(env!("CARGO_BIN_EXE_kubox"))
            .args(["serve", "--listen", "127.0.0.1:0", "--storage", "etcd"])
            .arg("--etcd-servers")
            .arg(etcd.join(","))
            .arg("--data-dir")
            .arg(dir)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(extra)
            .env("KUBOX_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubox runs");
        (child, kubeconfig)
    }

    fn serve(dir: &Path, name: &str, etcd: &[String], extra: &[&str]) -> Kubox {
        let (mut child, kubeconfig) = Kubox::spawn(dir, name, etcd, extra);
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        match lines.next() {
            Some(Ok(first)) if first.contains("serving") => {}
            other => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "kubox {name} did not start ({other:?}):\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
        }
        std::thread::spawn(move || lines.for_each(drop));
        Kubox {
            child,
            kubeconfig,
            log,
        }
    }

    async fn client(&self) -> kube::Client {
        client_of(&self.kubeconfig, None).await
    }

    /// A client that does not retry 503s itself (kube-rs does by default): what the server
    /// answers, as it answers it.
    async fn client_without_retries(&self) -> kube::Client {
        client_with(&self.kubeconfig, |cfg| cfg.default_retry = false).await
    }

    /// SIGKILL, and wait for the process to be gone.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn said(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

/// A kube-rs client from a kubeconfig, optionally impersonating `user`.
async fn client_of(kubeconfig: &Path, user: Option<&str>) -> kube::Client {
    client_with(kubeconfig, |cfg| {
        cfg.auth_info.impersonate = user.map(str::to_string);
    })
    .await
}

/// A kube-rs client from a kubeconfig, its configuration adjusted by `adjust`.
async fn client_with(kubeconfig: &Path, adjust: impl FnOnce(&mut kube::Config)) -> kube::Client {
    let yaml = std::fs::read_to_string(kubeconfig).expect("kubeconfig readable");
    let kc: kube::config::Kubeconfig = serde_yaml::from_str(&yaml).expect("kubeconfig parses");
    let mut cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("kube config");
    adjust(&mut cfg);
    kube::Client::try_from(cfg).expect("kube client")
}

/// A store on `etcd` itself, without kubox's key mapping: what etcd holds, as it holds it.
async fn raw_store(etcd: &EtcdCluster) -> EtcdStore {
    EtcdStore::connect(EtcdOptions {
        endpoints: etcd.endpoints(),
        ..Default::default()
    })
    .await
    .unwrap()
}

fn start_etcd(members: usize) -> EtcdCluster {
    EtcdCluster::start(members)
}

fn cm(name: &str, value: &str) -> ConfigMap {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "data": {"v": value},
    }))
    .unwrap()
}

/// Poll `check` until it holds, at most [`RECOVERY`]; panics with `what` otherwise.
async fn eventually<F, Fut>(what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < RECOVERY, "{what} within {RECOVERY:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Names of the ConfigMaps in `default` whose name starts with `prefix`.
async fn stored_names(client: &kube::Client, prefix: &str) -> BTreeSet<String> {
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    api.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .filter(|n| n.starts_with(prefix))
        .collect()
}

/// `writers` tasks creating ConfigMaps `<prefix>-<task>-<i>` through `client` until `stop`,
/// retrying refused attempts; returns the names whose create was acknowledged (201).
fn write_load(
    client: kube::Client,
    prefix: &'static str,
    writers: usize,
    acked: Arc<Mutex<Vec<String>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Vec<tokio::task::JoinHandle<usize>> {
    (0..writers)
        .map(|t| {
            let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
            let acked = acked.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut refused = 0;
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Acquire) {
                    let name = format!("{prefix}-{t}-{i}");
                    match api.create(&PostParams::default(), &cm(&name, "v")).await {
                        Ok(_) => {
                            acked.lock().unwrap().push(name);
                            i += 1;
                        }
                        // Created before the failure answered: it counts as written.
                        Err(kube::Error::Api(e)) if e.code == 409 => i += 1,
                        Err(_) => {
                            refused += 1;
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                }
                refused
            })
        })
        .collect()
}

async fn wait_acked(acked: &Arc<Mutex<Vec<String>>>, n: usize) {
    eventually(&format!("{n} acknowledged creates"), || {
        let count = acked.lock().unwrap().len();
        async move { count >= n }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_live_under_the_etcd_prefix_as_kube_apiserver_lays_them_out() {
    let etcd = start_etcd(1);
    let dir = tempfile::tempdir().unwrap();
    let kubox = Kubox::serve(
        dir.path(),
        "a",
        &etcd.endpoints(),
        &["--etcd-prefix", "/team-a/registry"],
    );
    let client = kubox.client().await;
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    api.create(&PostParams::default(), &cm("prefixed", "1"))
        .await
        .unwrap();
    // etcd itself, read without kubox's mapping.
    let raw = raw_store(&etcd).await;
    let cm = raw
        .get("/team-a/registry/configmaps/default/prefixed", None)
        .await
        .unwrap();
    let stored: serde_json::Value = serde_json::from_slice(&cm.value).unwrap();
    assert_eq!(stored["data"]["v"], "1");
    // The object's resourceVersion is etcd's revision of the key.
    let served = api.get("prefixed").await.unwrap();
    assert_eq!(
        served.metadata.resource_version.unwrap(),
        cm.mod_revision.to_string()
    );
    for key in [
        "/team-a/registry/namespaces/default",
        "/team-a/registry/services/specs/default/kubernetes",
        "/team-a/registry/clusterroles/cluster-admin",
    ] {
        raw.get(key, None)
            .await
            .unwrap_or_else(|e| panic!("{key}: {e}"));
    }
    assert_eq!(raw.count("/registry/").await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_gone_answers_503_and_fails_readyz_until_it_returns() {
    let mut etcd = start_etcd(1);
    let dir = tempfile::tempdir().unwrap();
    let kubox = Kubox::serve(dir.path(), "a", &etcd.endpoints(), &[]);
    let client = kubox.client_without_retries().await;
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    api.create(&PostParams::default(), &cm("before", "1"))
        .await
        .unwrap();
    etcd.kill(0);

    // Reads and writes: 503 with Retry-After, answered (not hung) while etcd is away.
    let req = http::Request::get("/api/v1/namespaces/default/configmaps/before")
        .body(Vec::new())
        .unwrap();
    let started = Instant::now();
    let resp = client.send(req.map(Into::into)).await.unwrap();
    assert_eq!(resp.status().as_u16(), 503, "{}", kubox.said());
    assert_eq!(
        resp.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    match api.create(&PostParams::default(), &cm("during", "1")).await {
        Err(kube::Error::Api(e)) => {
            assert_eq!((e.code, e.reason.as_str()), (503, "ServiceUnavailable"))
        }
        other => panic!("a create while etcd is away: {other:?}"),
    }
    // /readyz fails its etcd check; the process itself answers (/livez/ping).
    let readyz = client
        .request_text(
            http::Request::get("/readyz?verbose")
                .body(Vec::new())
                .unwrap(),
        )
        .await;
    match readyz {
        Err(kube::Error::Api(e)) => assert!(e.message.contains("[-]etcd failed"), "{e:?}"),
        other => panic!("/readyz while etcd is away: {other:?}"),
    }
    client
        .request_text(http::Request::get("/livez/ping").body(Vec::new()).unwrap())
        .await
        .unwrap();

    // etcd back: kubox recovers by itself.
    etcd.restart(0);
    let took = eventually("/readyz passing again", || {
        let client = client.clone();
        async move {
            client
                .request_text(http::Request::get("/readyz").body(Vec::new()).unwrap())
                .await
                .is_ok()
        }
    })
    .await;
    eprintln!("readyz passed again {took:?} after etcd was back");
    assert_eq!(
        api.get("before").await.unwrap().data.unwrap()["v"],
        "1".to_string()
    );
    api.create(&PostParams::default(), &cm("after", "1"))
        .await
        .unwrap();
    // The watch-backed parts followed too: a watch from the newest revision sees a new write
    // (of its name: the controllers catch up on the namespace's kube-root-ca.crt meanwhile).
    let list = api.list(&ListParams::default()).await.unwrap();
    let rv = list.metadata.resource_version.unwrap();
    let mut watch = api
        .watch(&WatchParams::default().fields("metadata.name=watched"), &rv)
        .await
        .unwrap()
        .boxed();
    api.create(&PostParams::default(), &cm("watched", "1"))
        .await
        .unwrap();
    let ev = tokio::time::timeout(RECOVERY, watch.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    match ev {
        WatchEvent::Added(c) => assert_eq!(c.metadata.name.as_deref(), Some("watched")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_kubox_under_write_load_loses_no_acknowledged_write() {
    let etcd = start_etcd(1);
    let dir = tempfile::tempdir().unwrap();
    let mut kubox = Kubox::serve(dir.path(), "a", &etcd.endpoints(), &[]);
    let client = kubox.client().await;
    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers = write_load(client, "load", 8, acked.clone(), stop.clone());
    wait_acked(&acked, 300).await;
    kubox.kill();
    stop.store(true, std::sync::atomic::Ordering::Release);
    for w in writers {
        let _ = w.await;
    }
    let acked: Vec<String> = acked.lock().unwrap().clone();
    let again = Kubox::serve(dir.path(), "b", &etcd.endpoints(), &[]);
    let stored = stored_names(&again.client().await, "load-").await;
    let lost: Vec<&String> = acked.iter().filter(|n| !stored.contains(*n)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged creates lost: {lost:?}",
        lost.len(),
        acked.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_one_etcd_member_of_three_under_load_loses_nothing_and_writes_go_on() {
    let mut etcd = start_etcd(3);
    let dir = tempfile::tempdir().unwrap();
    let kubox = Kubox::serve(dir.path(), "a", &etcd.endpoints(), &[]);
    let client = kubox.client().await;
    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers = write_load(client.clone(), "three", 8, acked.clone(), stop.clone());
    wait_acked(&acked, 200).await;
    etcd.kill(0);
    let at_kill = acked.lock().unwrap().len();
    // Requests continue on the two members left. (A hundred show that they do; more would
    // time the test against the machine: run beside the file's other etcd clusters, the
    // three-member writes come as slowly as 10–25 per second.)
    wait_acked(&acked, at_kill + 100).await;
    stop.store(true, std::sync::atomic::Ordering::Release);
    let mut refused = 0;
    for w in writers {
        refused += w.await.unwrap();
    }
    eprintln!("creates refused around the member's death, then retried: {refused}");
    let acked: Vec<String> = acked.lock().unwrap().clone();
    let stored = stored_names(&client, "three-").await;
    let lost: Vec<&String> = acked.iter().filter(|n| !stored.contains(*n)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged creates lost: {lost:?}",
        lost.len(),
        acked.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_on_one_etcd_cluster_serve_one_api() {
    let etcd = start_etcd(3);
    let dir = tempfile::tempdir().unwrap();
    // Replicas share the PKI (one CA, one ServiceAccount key): the first one makes it.
    let a = Kubox::serve(dir.path(), "a", &etcd.endpoints(), &[]);
    let b = Kubox::serve(dir.path(), "b", &etcd.endpoints(), &[]);
    let c = Kubox::serve(dir.path(), "c", &etcd.endpoints(), &[]);
    let (ca, cb, cc) = (a.client().await, b.client().await, c.client().await);
    let (api_a, api_b, api_c): (Api<ConfigMap>, Api<ConfigMap>, Api<ConfigMap>) = (
        Api::default_namespaced(ca.clone()),
        Api::default_namespaced(cb.clone()),
        Api::default_namespaced(cc.clone()),
    );

    // A watcher on B sees every write made through A and C, once each, in order.
    let rv = api_b
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut watch = api_b
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    let mut written = Vec::new();
    for i in 0..20 {
        let (via, name) = if i % 2 == 0 {
            (&api_a, format!("r-{i}"))
        } else {
            (&api_c, format!("r-{i}"))
        };
        let created = via
            .create(&PostParams::default(), &cm(&name, "1"))
            .await
            .unwrap();
        written.push((
            name.clone(),
            created.metadata.resource_version.clone().unwrap(),
        ));
        let mut changed = created.clone();
        changed.data = Some([("v".to_string(), "2".to_string())].into());
        // Updated through the other replica.
        let other = if i % 2 == 0 { &api_c } else { &api_a };
        let updated = other
            .replace(&name, &PostParams::default(), &changed)
            .await
            .unwrap();
        written.push((name, updated.metadata.resource_version.unwrap()));
    }
    let mut seen = Vec::new();
    while seen.len() < written.len() {
        let ev = tokio::time::timeout(RECOVERY, watch.try_next())
            .await
            .expect("B's watch delivers in time")
            .unwrap()
            .expect("B's watch goes on");
        match ev {
            // The replicas' controllers may write the namespace's kube-root-ca.crt meanwhile.
            WatchEvent::Added(c) | WatchEvent::Modified(c)
                if c.metadata.name.as_deref() == Some("kube-root-ca.crt") => {}
            WatchEvent::Added(c) | WatchEvent::Modified(c) => seen.push((
                c.metadata.name.unwrap(),
                c.metadata.resource_version.unwrap(),
            )),
            WatchEvent::Bookmark(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        seen, written,
        "B's watch, against the writes through A and C"
    );

    // kubectl spread over the replicas: applied through C (1.35, server-side), read through
    // A (1.27), patched through B, read back through C.
    let manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\n  namespace: default\ndata:\n  v: one\n";
    kubectl(
        "1.35",
        &c.kubeconfig,
        &["apply", "--server-side", "-f", "-"],
        Some(manifest),
    );
    let read = |version, k: &Kubox| {
        kubectl(
            version,
            &k.kubeconfig,
            &["get", "configmap", "applied", "-o", "jsonpath={.data.v}"],
            None,
        )
    };
    assert_eq!(read("1.27", &a), "one");
    kubectl(
        "1.35",
        &b.kubeconfig,
        &[
            "patch",
            "configmap",
            "applied",
            "-p",
            r#"{"data":{"v":"two"}}"#,
        ],
        None,
    );
    assert_eq!(read("1.35", &c), "two");

    // Services created at once through all three: no address or node port is handed out twice.
    let creates = [&ca, &cb, &cc]
        .into_iter()
        .enumerate()
        .flat_map(|(r, client)| {
            (0..10).map(move |i| {
                let api: Api<k8s_openapi::api::core::v1::Service> =
                    Api::default_namespaced(client.clone());
                async move {
                    let svc = serde_json::from_value(serde_json::json!({
                        "metadata": {"name": format!("svc-{r}-{i}")},
                        "spec": {"type": "NodePort", "selector": {"app": "x"},
                                 "ports": [{"port": 80}]}
                    }))
                    .unwrap();
                    api.create(&PostParams::default(), &svc).await.unwrap()
                }
            })
        });
    let services = futures::future::join_all(creates).await;
    let ips: BTreeSet<String> = services
        .iter()
        .map(|s| s.spec.as_ref().unwrap().cluster_ip.clone().unwrap())
        .collect();
    let ports: BTreeSet<i32> = services
        .iter()
        .map(|s| {
            s.spec.as_ref().unwrap().ports.as_ref().unwrap()[0]
                .node_port
                .unwrap()
        })
        .collect();
    assert_eq!((ips.len(), ports.len()), (30, 30), "{ips:?} {ports:?}");

    // A CRD created through A is served by B within a second.
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(ca.clone());
    let crd = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "gadgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": {"type": "object",
                               "x-kubernetes-preserve-unknown-fields": true}}}]}
    }))
    .unwrap();
    crds.create(&PostParams::default(), &crd).await.unwrap();
    let took = eventually("B serving the CRD's resource", || {
        let cb = cb.clone();
        async move {
            cb.request_text(
                http::Request::get("/apis/example.com/v1/namespaces/default/gadgets")
                    .body(Vec::new())
                    .unwrap(),
            )
            .await
            .is_ok()
        }
    })
    .await;
    assert!(
        took < Duration::from_secs(1),
        "B served the CRD {took:?} after A created it"
    );

    // An RBAC change made through A is enforced by B.
    let jane_b = client_of(&b.kubeconfig, Some("jane")).await;
    let jane_api: Api<ConfigMap> = Api::default_namespaced(jane_b);
    match jane_api.get("r-0").await {
        Err(kube::Error::Api(e)) => assert_eq!(e.code, 403),
        other => panic!("jane before the binding: {other:?}"),
    }
    let roles: Api<k8s_openapi::api::rbac::v1::Role> = Api::default_namespaced(ca.clone());
    roles
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({
                "metadata": {"name": "cm-reader"},
                "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let bindings: Api<k8s_openapi::api::rbac::v1::RoleBinding> =
        Api::default_namespaced(ca.clone());
    bindings
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({
                "metadata": {"name": "jane-reads"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cm-reader"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "jane"}]
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let took = eventually("B letting jane read", || {
        let jane_api = jane_api.clone();
        async move { jane_api.get("r-0").await.is_ok() }
    })
    .await;
    assert!(
        took < Duration::from_secs(1),
        "B enforced the binding {took:?} after A wrote it"
    );
    drop((a, b, c));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controllers_run_on_one_replica_and_move_when_it_dies() {
    use k8s_openapi::api::coordination::v1::Lease;
    use k8s_openapi::api::core::v1::Namespace;
    let etcd = start_etcd(1);
    let dir = tempfile::tempdir().unwrap();
    let election = [
        "--leader-elect-lease-duration",
        "3s",
        "--leader-elect-renew-deadline",
        "2s",
        "--leader-elect-retry-period",
        "500ms",
    ];
    let mut replicas: Vec<Kubox> = ["a", "b", "c"]
        .iter()
        .map(|name| Kubox::serve(dir.path(), name, &etcd.endpoints(), &election))
        .collect();
    let holding = |k: &Kubox| k.said().contains("holding the controllers' lease");
    eventually("one replica holding the controllers' lease", || {
        let n = replicas.iter().filter(|k| holding(k)).count();
        async move { n >= 1 }
    })
    .await;
    let leaders: Vec<usize> = (0..3).filter(|&i| holding(&replicas[i])).collect();
    assert_eq!(leaders.len(), 1, "one leader, not {leaders:?}");
    let leader = leaders[0];
    let survivor = (leader + 1) % 3;
    let client = replicas[survivor].client().await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
    let before = leases.get("kube-controller-manager").await.unwrap();
    let before_holder = before
        .spec
        .as_ref()
        .unwrap()
        .holder_identity
        .clone()
        .unwrap();

    // The leader dies; a namespace deletion waits for the namespace controller.
    replicas[leader].kill();
    let killed = Instant::now();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": "doomed"}})).unwrap(),
        )
        .await
        .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "doomed");
    cms.create(&PostParams::default(), &cm("inside", "1"))
        .await
        .unwrap();
    namespaces
        .delete("doomed", &Default::default())
        .await
        .unwrap();
    let took = eventually("the namespace deletion finished by the new leader", || {
        let namespaces = namespaces.clone();
        async move {
            matches!(namespaces.get("doomed").await, Err(kube::Error::Api(e)) if e.code == 404)
        }
    })
    .await;
    let since_kill = killed.elapsed();
    eprintln!("namespace deleted {took:?} after the delete, {since_kill:?} after the leader died");
    // Within the lease duration (3 s), a retry period and the namespace's own work.
    assert!(
        since_kill < Duration::from_secs(8),
        "the controllers took {since_kill:?} to take over"
    );
    let after = leases.get("kube-controller-manager").await.unwrap();
    let spec = after.spec.unwrap();
    assert_ne!(spec.holder_identity.unwrap(), before_holder);
    assert_eq!(
        spec.lease_transitions.unwrap(),
        before.spec.unwrap().lease_transitions.unwrap() + 1
    );
    let new_leaders: Vec<usize> = (0..3)
        .filter(|&i| i != leader && holding(&replicas[i]))
        .collect();
    assert_eq!(new_leaders.len(), 1, "one new leader, not {new_leaders:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_version_etcd_compacted_away_is_410_gone() {
    let etcd = start_etcd(1);
    let dir = tempfile::tempdir().unwrap();
    let kubox = Kubox::serve(
        dir.path(),
        "a",
        &etcd.endpoints(),
        &["--etcd-compaction-interval", "0"],
    );
    let client = kubox.client_without_retries().await;
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let first = api
        .create(&PostParams::default(), &cm("old", "0"))
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    for i in 1..5 {
        api.replace("old", &PostParams::default(), &{
            let mut c = api.get("old").await.unwrap();
            c.data = Some([("v".to_string(), i.to_string())].into());
            c
        })
        .await
        .unwrap();
    }
    // Someone (another replica, an operator with etcdctl) compacts etcd.
    let raw = raw_store(&etcd).await;
    let current = raw.current_revision().await.unwrap();
    raw.compact(current - 1).await.unwrap();

    // A list at the compacted revision: 410 Expired, as kube-apiserver answers.
    let path = format!(
        "/api/v1/namespaces/default/configmaps?resourceVersion={first}&resourceVersionMatch=Exact"
    );
    match client
        .request_text(http::Request::get(&path).body(Vec::new()).unwrap())
        .await
    {
        Err(kube::Error::Api(e)) => assert_eq!((e.code, e.reason.as_str()), (410, "Expired")),
        other => panic!("a list at a compacted revision: {other:?}"),
    }
    // A watch from it: a 410 Gone error event (kube-rs's watcher relists on it).
    let mut watch = api
        .watch(&WatchParams::default(), &first)
        .await
        .unwrap()
        .boxed();
    match tokio::time::timeout(RECOVERY, watch.try_next()).await {
        Ok(Ok(Some(WatchEvent::Error(e)))) => assert_eq!(e.code, 410, "{e:?}"),
        Ok(Err(kube::Error::Api(e))) => assert_eq!(e.code, 410, "{e:?}"),
        other => panic!("a watch from a compacted revision: {other:?}"),
    }
    // The newest state is still served.
    assert_eq!(
        api.get("old").await.unwrap().data.unwrap()["v"],
        "4".to_string()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_started_at_once_on_one_data_directory_share_one_ca() {
    let etcd = start_etcd(1);
    let dir = tempfile::tempdir().unwrap();
    let endpoints = etcd.endpoints();
    let starts: Vec<_> = ["a", "b", "c"]
        .into_iter()
        .map(|name| {
            let (path, endpoints) = (dir.path().to_path_buf(), endpoints.clone());
            std::thread::spawn(move || Kubox::serve(&path, name, &endpoints, &[]))
        })
        .collect();
    let replicas: Vec<Kubox> = starts.into_iter().map(|t| t.join().unwrap()).collect();
    let cas: BTreeSet<String> = replicas
        .iter()
        .map(|k| {
            let yaml = std::fs::read_to_string(&k.kubeconfig).unwrap();
            yaml.lines()
                .find_map(|l| l.trim().strip_prefix("certificate-authority-data: "))
                .expect("a CA in the kubeconfig")
                .to_string()
        })
        .collect();
    assert_eq!(cas.len(), 1, "one CA for every replica");
    // And every kubeconfig works (its client certificate from the shared CA).
    for k in &replicas {
        let client = k.client().await;
        let api: Api<ConfigMap> = Api::default_namespaced(client);
        api.list(&ListParams::default()).await.unwrap();
    }
}

/// A CA, etcd's serving certificate (127.0.0.1) and a client certificate, as PEM files in `dir`:
/// (ca, serving cert, serving key, client cert, client key).
fn etcd_pki(dir: &Path) -> [PathBuf; 5] {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::default();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "etcd-ca");
    let ca_pem = ca_params.self_signed(&ca_key).unwrap().pem();
    let ca = Issuer::new(ca_params, ca_key);
    let issue = |sans: Vec<String>, cn: &str, usage: ExtendedKeyUsagePurpose| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(sans).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![usage];
        (
            params.signed_by(&key, &ca).unwrap().pem(),
            key.serialize_pem(),
        )
    };
    let (serving, serving_key) = issue(
        vec!["127.0.0.1".into(), "localhost".into()],
        "etcd",
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let (client, client_key) = issue(vec![], "kubox", ExtendedKeyUsagePurpose::ClientAuth);
    let files = [
        ("ca.crt", ca_pem),
        ("etcd.crt", serving),
        ("etcd.key", serving_key),
        ("client.crt", client),
        ("client.key", client_key),
    ];
    files.map(|(name, pem)| {
        let path = dir.join(name);
        std::fs::write(&path, pem).unwrap();
        path
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_over_tls_with_a_client_certificate() {
    let pki = tempfile::tempdir().unwrap();
    let [ca, cert, key, client_cert, client_key] = etcd_pki(pki.path());
    let etcd = EtcdCluster::start_with(
        1,
        Some(kubox_storage::etcd_process::ServerTls {
            cert_file: cert,
            key_file: key,
            client_ca_file: Some(ca.clone()),
        }),
    );
    assert!(etcd.endpoints()[0].starts_with("https://"));
    let path = |p: &PathBuf| p.to_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let kubox = Kubox::serve(
        dir.path(),
        "a",
        &etcd.endpoints(),
        &[
            "--etcd-cafile",
            &path(&ca),
            "--etcd-certfile",
            &path(&client_cert),
            "--etcd-keyfile",
            &path(&client_key),
        ],
    );
    let api: Api<ConfigMap> = Api::default_namespaced(kubox.client().await);
    api.create(&PostParams::default(), &cm("over-tls", "1"))
        .await
        .unwrap();
    assert_eq!(
        api.get("over-tls").await.unwrap().data.unwrap()["v"],
        "1".to_string()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubox_started_before_etcd_waits_for_it() {
    let mut etcd = start_etcd(1);
    etcd.kill(0);
    let dir = tempfile::tempdir().unwrap();
    let (mut child, kubeconfig) = Kubox::spawn(dir.path(), "a", &etcd.endpoints(), &[]);
    // kubox says it waits; only then does etcd come up.
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let waiting = stderr
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.contains("waiting for etcd"));
    assert!(waiting, "kubox never said it was waiting for etcd");
    std::thread::spawn(move || stderr.for_each(drop));
    etcd.restart(0);
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = stdout.next().unwrap().unwrap();
    assert!(first.contains("serving"), "{first}");
    std::thread::spawn(move || stdout.for_each(drop));
    let api: Api<ConfigMap> = Api::default_namespaced(client_of(&kubeconfig, None).await);
    api.create(&PostParams::default(), &cm("late", "1"))
        .await
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
}
