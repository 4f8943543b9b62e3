//! Figures for the built-in controllers. Ignored by default; they print numbers and assert only
//! that the work happened, never timings. Run them with a release build:
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-controllers cargo test --release --test controllers_figures \
//!     -- --ignored --nocapture --test-threads=1
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Kubox {
    child: Child,
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Kubox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn kubox(args: &[&str]) -> Kubox {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kubox"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubox starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    lines.next().unwrap().unwrap();
    let second = lines.next().unwrap().unwrap();
    let kubeconfig = PathBuf::from(second.rsplit(' ').next().unwrap());
    std::thread::spawn(move || lines.for_each(drop));
    Kubox {
        child,
        kubeconfig,
        _dir: dir,
    }
}

fn kubectl(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> String {
    common::kubectl("1.35", kubeconfig, args, stdin)
}

/// 500 ConfigMaps, 300 Secrets, 200 ServiceAccounts.
fn thousand_objects() -> String {
    let mut items = Vec::new();
    for i in 0..500 {
        items.push(format!(
            "- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: cm-{i:04}\n  data:\n    i: \"{i}\""
        ));
    }
    for i in 0..300 {
        items.push(format!(
            "- apiVersion: v1\n  kind: Secret\n  metadata:\n    name: secret-{i:04}\n  stringData:\n    k: v"
        ));
    }
    for i in 0..200 {
        items.push(format!(
            "- apiVersion: v1\n  kind: ServiceAccount\n  metadata:\n    name: sa-{i:04}"
        ));
    }
    format!("apiVersion: v1\nkind: List\nitems:\n{}\n", items.join("\n"))
}

#[test]
#[ignore = "prints figures; run with --ignored --nocapture"]
fn kubectl_delete_namespace_with_1000_objects() {
    for storage in ["memory", "sled"] {
        let k = kubox(&["--storage", storage]);
        kubectl(&k.kubeconfig, &["create", "namespace", "big"], None);
        let t = Instant::now();
        kubectl(
            &k.kubeconfig,
            &["create", "-n", "big", "-f", "-", "-o", "name"],
            Some(&thousand_objects()),
        );
        let created = t.elapsed();
        let count = kubectl(
            &k.kubeconfig,
            &["get", "cm,secrets,sa", "-n", "big", "-o", "name"],
            None,
        )
        .lines()
        .count();
        let t = Instant::now();
        kubectl(&k.kubeconfig, &["delete", "namespace", "big"], None);
        let deleted = t.elapsed();
        let left = kubectl(&k.kubeconfig, &["get", "namespaces", "-o", "name"], None);
        assert!(!left.contains("namespace/big"), "{left}");
        println!(
            "[{storage}] {count} objects in the namespace (created in {created:.2?} by one kubectl create); \
             `kubectl delete namespace big` returned after {deleted:.2?}, namespace gone"
        );
    }
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command (which may contain spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after ") ".
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

#[test]
#[ignore = "prints figures; takes 60 s"]
fn idle_cpu_over_60_seconds() {
    let ticks_per_sec: u64 = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100);
    let none = "-garbage-collector,-namespace,-serviceaccount,-serviceaccount-token,-event-ttl";
    let runs = [
        ("memory", "*"),
        ("memory", none),
        ("sled", "*"),
        ("sled", none),
    ];
    let servers: Vec<(&str, &str, Kubox)> = runs
        .iter()
        .map(|(storage, ctl)| {
            (
                *storage,
                *ctl,
                kubox(&["--storage", storage, &format!("--controllers={ctl}")]),
            )
        })
        .collect();
    // Some objects for the controllers to hold in their caches; then let start-up work finish.
    for (_, _, k) in &servers {
        kubectl(&k.kubeconfig, &["create", "namespace", "idle"], None);
        kubectl(
            &k.kubeconfig,
            &["create", "-n", "idle", "-f", "-", "-o", "name"],
            Some(&thousand_objects()),
        );
    }
    std::thread::sleep(Duration::from_secs(3));
    let before: Vec<u64> = servers
        .iter()
        .map(|(_, _, k)| cpu_ticks(k.child.id()))
        .collect();
    std::thread::sleep(Duration::from_secs(60));
    for ((storage, ctl, k), b) in servers.iter().zip(before) {
        let used = cpu_ticks(k.child.id()) - b;
        println!(
            "[{storage}, --controllers={ctl}] idle 60 s with 1,000 objects: utime+stime = {used} ticks = {} ms",
            used * 1000 / ticks_per_sec
        );
    }
}

mod common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "prints figures; run with --ignored --nocapture"]
async fn in_process_namespace_deletion_with_1000_objects() {
    use serde_json::json;
    for sled in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let builder = kubox::Server::builder();
        let h = if sled {
            builder.sled(dir.path())
        } else {
            builder.memory()
        }
        .start()
        .await
        .unwrap();
        common::post_json(
            &h,
            "/api/v1/namespaces",
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "big"}}),
        )
        .await;
        for i in 0..1000 {
            let r = common::post_json(
                &h,
                "/api/v1/namespaces/big/configmaps",
                &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("cm-{i:04}")}, "data": {"i": i.to_string()}}),
            )
            .await;
            assert_eq!(r.status.as_u16(), 201);
        }
        h.settled().await;
        let t = Instant::now();
        common::send(&h, http::Method::DELETE, "/api/v1/namespaces/big", "", "").await;
        h.settled().await;
        let took = t.elapsed();
        let r = common::get(&h, "/api/v1/namespaces/big").await;
        assert_eq!(r.status.as_u16(), 404);
        println!(
            "[{}] in-process: DELETE of a namespace with 1,000 ConfigMaps (+ kube-root-ca.crt, default SA) to gone (settled): {took:.2?}",
            if sled { "sled" } else { "memory" }
        );
        h.shutdown().await.unwrap();
    }
}
