//! The `kubox serve` command as a user runs it: default data dir, kubeconfig, Ctrl-C, restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

struct Running {
    child: Child,
    url: String,
    kubeconfig: String,
}

fn start(home: &std::path::Path, extra: &[&str]) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kubox"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(extra)
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("data"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubox starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let url = first.rsplit(' ').next().unwrap().to_string();
    let second = lines.next().unwrap().unwrap();
    let kubeconfig = second.rsplit(' ').next().unwrap().to_string();
    lines.next().unwrap().unwrap();
    // Keep draining stdout so the server never writes into a closed pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Running {
        child,
        url,
        kubeconfig,
    }
}

/// One HTTP/1.1 request with `Connection: close`; returns (status line, body).
fn http(url: &str, method: &str, path: &str, body: &str) -> (String, String) {
    let addr = url.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.lines().next().unwrap_or_default().to_string();
    let body = out.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
    (status, body)
}

fn interrupt(mut r: Running) -> std::process::ExitStatus {
    let ok = Command::new("kill")
        .args(["-INT", &r.child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    r.child.wait().unwrap()
}

#[test]
fn serve_writes_a_kubeconfig_in_the_default_data_dir_and_exits_cleanly_on_ctrl_c() {
    let home = tempfile::tempdir().unwrap();
    let r = start(home.path(), &[]);
    assert!(
        r.kubeconfig
            .starts_with(home.path().join("data/kubox").to_str().unwrap()),
        "{}",
        r.kubeconfig
    );
    let kc = std::fs::read_to_string(&r.kubeconfig).unwrap();
    assert!(
        kc.contains(&r.url) && kc.contains("current-context: kubox"),
        "{kc}"
    );
    let (status, body) = http(&r.url, "GET", "/version", "");
    assert!(status.contains("200"), "{status}");
    assert!(body.contains("\"minor\":\"35\""), "{body}");
    assert!(interrupt(r).success());
}

#[test]
fn sled_data_survives_a_restart() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("state");
    let dir_s = dir.to_str().unwrap();
    let r = start(home.path(), &["--data-dir", dir_s]);
    let cm =
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"kept"},"data":{"k":"v"}}"#;
    let (status, _) = http(&r.url, "POST", "/api/v1/namespaces/default/configmaps", cm);
    assert!(status.contains("201"), "{status}");
    assert!(interrupt(r).success());
    let r = start(home.path(), &["--data-dir", dir_s]);
    let (status, body) = http(
        &r.url,
        "GET",
        "/api/v1/namespaces/default/configmaps/kept",
        "",
    );
    assert!(status.contains("200"), "{status} {body}");
    assert!(body.contains("\"k\":\"v\""), "{body}");
    assert!(interrupt(r).success());
}

#[test]
fn memory_storage_starts_empty_every_time() {
    let home = tempfile::tempdir().unwrap();
    let r = start(home.path(), &["--storage", "memory"]);
    let cm = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"gone"}}"#;
    http(&r.url, "POST", "/api/v1/namespaces/default/configmaps", cm);
    assert!(interrupt(r).success());
    let r = start(home.path(), &["--storage", "memory"]);
    let (status, _) = http(
        &r.url,
        "GET",
        "/api/v1/namespaces/default/configmaps/gone",
        "",
    );
    assert!(status.contains("404"), "{status}");
    assert!(interrupt(r).success());
}
