//! `kubox serve` as an operator runs it on a harsh machine: private files, a full disk, file
//! descriptors running out, SIGTERM while the disk is full. Each scenario runs the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

struct Running {
    child: Child,
    addr: String,
    token: String,
    /// What the server logs, line by line.
    log: mpsc::Receiver<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `kubox serve` over plain HTTP with `data_dir`, run through `wrapper` (e.g. `prlimit`).
fn serve(wrapper: &[&str], data_dir: &Path, extra: &[&str]) -> Result<Running, String> {
    let kubox = env!("CARGO_BIN_EXE_kubox");
    let mut cmd = match wrapper.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(kubox);
            c
        }
        None => Command::new(kubox),
    };
    let mut child = cmd
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--insecure-http",
            "--data-dir",
        ])
        .arg(data_dir)
        .args(extra)
        .env("KUBOX_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubox runs");
    let (tx, log) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let Some(Ok(first)) = lines.next() else {
        let status = child.wait().unwrap();
        // The process is gone: its stderr ends, and so does this (every line it said).
        let said: Vec<String> = log.iter().collect();
        return Err(format!("{status}: {}", said.join("\n")));
    };
    let addr = first.rsplit("http://").next().unwrap().to_string();
    std::thread::spawn(move || lines.for_each(drop));
    let kubeconfig = std::fs::read_to_string(data_dir.join("kubeconfig")).unwrap();
    let token = kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix("token: "))
        .unwrap()
        .to_string();
    Ok(Running {
        child,
        addr,
        token,
        log,
    })
}

/// One request with `Connection: close`: (status code, body).
fn http(r: &Running, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(&r.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        r.addr,
        r.token,
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).expect("an answer within 30 s");
    let code = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
    (code, body)
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Send SIGTERM and wait for the exit, at most `limit`.
fn terminate(r: &mut Running, limit: Duration) -> std::process::ExitStatus {
    let ok = Command::new("kill")
        .args(["-TERM", &r.child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let (tx, rx) = mpsc::channel();
    let pid = r.child.id();
    let mut child = std::mem::replace(
        &mut r.child,
        Command::new("true").spawn().unwrap(), // a stand-in the Drop can reap
    );
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("kubox (pid {pid}) still runs {limit:?} after SIGTERM"))
        .unwrap()
}

#[test]
fn the_data_dir_is_private_and_every_file_holding_a_secret_is_0600() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("new/kubox");
    let r = serve(&[], &dir, &[]).unwrap();
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&t.path().join("new")), 0o700, "created parents too");
    assert_eq!(mode(&dir.join("kubeconfig")), 0o600);
    assert_eq!(mode(&dir.join("pki")), 0o700);
    for key in ["ca.key", "apiserver.key", "sa.key"] {
        assert_eq!(mode(&dir.join("pki").join(key)), 0o600, "{key}");
    }
    assert_eq!(mode(&dir.join("db")), 0o700);
    for entry in std::fs::read_dir(dir.join("db")).unwrap().flatten() {
        if entry.metadata().unwrap().is_file() {
            assert_eq!(mode(&entry.path()) & 0o077, 0, "{}", entry.path().display());
        }
    }
    drop(r);
}

#[test]
fn a_data_dir_other_users_can_read_is_refused_unless_allowed() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("shared");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    // Empty, it is made private and used.
    let r = serve(&[], &dir, &[]).unwrap();
    drop(r);
    assert_eq!(mode(&dir), 0o700);
    // Holding data, it is refused.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let err = serve(&[], &dir, &[]).err().expect("refused");
    assert!(
        err.contains(&format!(
            "kubox: cannot start: cannot use data dir {}: its permissions are 0755",
            dir.display()
        )),
        "{err}"
    );
    let r = serve(&[], &dir, &["--allow-shared-data-dir"]).unwrap();
    drop(r);
}

#[test]
fn startup_errors_name_the_path_and_the_cause() {
    let t = tempfile::tempdir().unwrap();
    let file = t.path().join("file");
    std::fs::write(&file, "").unwrap();
    let dir = file.join("kubox");
    let err = serve(&[], &dir, &[]).err().expect("refused");
    assert!(
        err.contains(&format!(
            "kubox: cannot start: cannot create data dir {}: Not a directory",
            dir.display()
        )),
        "{err}"
    );
}

/// A small tmpfs mounted for the test, unmounted when dropped. None where this user may not
/// mount (the test then says so and passes nothing off as checked).
struct SmallDisk {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk");
        std::fs::create_dir(&path).unwrap();
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(&path)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallDisk { path, _dir: dir })
    }

    fn grow(&self, size: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.path)
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// A disk with room for the PKI and sled's files but not for start-up's objects: sled writes
/// them without a sync each and syncs them once at the end of start-up, where the failure
/// surfaces: kubox stops with the cause, promptly, instead of serving (or hanging).
#[test]
fn a_disk_that_fills_during_start_up_stops_kubox_with_the_cause() {
    let Some(disk) = SmallDisk::mount("64k") else {
        eprintln!(
            "SKIPPED: cannot mount a tmpfs here (needs root): the full-disk start did not run"
        );
        return;
    };
    let started = std::time::Instant::now();
    let Err(said) = serve(&[], &disk.path.join("kubox"), &[]) else {
        panic!("kubox served on a disk too small for its start-up writes");
    };
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "kubox took {:?} to give up",
        started.elapsed()
    );
    assert!(said.contains("cannot start"), "{said}");
    assert!(said.contains("No space left on device"), "{said}");
}

#[test]
fn a_full_disk_fails_the_write_promptly_fails_readyz_keeps_reads_and_stops_on_sigterm() {
    let Some(disk) = SmallDisk::mount("12m") else {
        eprintln!(
            "SKIPPED: cannot mount a tmpfs here (needs root): the full-disk scenario did not run"
        );
        return;
    };
    let dir = disk.path.join("kubox");
    let mut r = serve(&[], &dir, &[]).unwrap();
    let cm = |i: usize| {
        serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("c{i}")}, "data": {"k": "x".repeat(200_000)}})
        .to_string()
    };
    let path = "/api/v1/namespaces/default/configmaps";
    let mut acknowledged = 0;
    let (code, body) = loop {
        let (code, body) = http(&r, "POST", path, &cm(acknowledged));
        if code != 201 {
            break (code, body);
        }
        acknowledged += 1;
        assert!(acknowledged < 200, "12 MB never filled up");
    };
    assert!(acknowledged > 0);
    assert_eq!(code, 500, "{body}");
    assert!(body.contains("No space left on device"), "{body}");
    // Later writes are refused up front, and say what to do.
    let (code, body) = http(&r, "POST", path, &cm(1000));
    assert_eq!(code, 503, "{body}");
    assert!(
        body.contains("restart kubox once the cause is fixed"),
        "{body}"
    );
    let (code, body) = http(&r, "GET", "/readyz?verbose", "");
    assert_eq!(code, 500, "{body}");
    assert!(body.contains("[-]etcd failed: reason withheld"), "{body}");
    // Reads keep working.
    let (code, _) = http(&r, "GET", &format!("{path}/c0"), "");
    assert_eq!(code, 200);
    let (code, body) = http(&r, "GET", path, "");
    assert_eq!(code, 200);
    assert_eq!(body.matches("\"name\":\"c").count(), acknowledged, "{body}");
    // Background loops do not spin: the failure is logged a handful of times, not per retry.
    let status = terminate(&mut r, Duration::from_secs(5));
    assert!(!status.success(), "a store that failed reports it at exit");
    let log: Vec<String> = r.log.iter().collect();
    assert!(
        log.len() < 50,
        "{} log lines:\n{}",
        log.len(),
        log.join("\n")
    );
    drop(r);
    // With room again, a restart has every acknowledged write and takes new ones.
    disk.grow("64m");
    let r = serve(&[], &dir, &[]).unwrap();
    let (code, body) = http(&r, "GET", path, "");
    assert_eq!(code, 200);
    assert_eq!(body.matches("\"name\":\"c").count(), acknowledged, "{body}");
    let (code, body) = http(&r, "POST", path, &cm(2000));
    assert_eq!(code, 201, "{body}");
}

#[test]
fn out_of_file_descriptors_the_accept_loop_backs_off_and_says_so_once() {
    if Command::new("prlimit").arg("--version").output().is_err() {
        panic!("prlimit (util-linux) is needed for this scenario");
    }
    let t = tempfile::tempdir().unwrap();
    let r = serve(
        &["prlimit", "--nofile=96:96", "--"],
        &t.path().join("kubox"),
        &["--storage", "memory"],
    )
    .unwrap();
    // More connections than descriptors (but fewer than the listen backlog): the kernel
    // queues them, accept() fails.
    let addr: std::net::SocketAddr = r.addr.parse().unwrap();
    let mut held: Vec<TcpStream> = (0..160)
        .map(|_| TcpStream::connect_timeout(&addr, Duration::from_secs(10)).unwrap())
        .collect();
    // Ask on one of them: it may be one the server could not accept; the log says it tried.
    let backing_off = std::iter::from_fn(|| r.log.recv_timeout(Duration::from_secs(30)).ok())
        .find(|l| l.contains("accepting connections failed; backing off"));
    assert!(backing_off.is_some(), "no accept failure was logged");
    held.clear();
    // With descriptors free again, requests are served.
    let (code, body) = http(&r, "GET", "/readyz", "");
    assert_eq!(code, 200, "{body}");
    let log: Vec<String> = r.log.try_iter().collect();
    let warnings = log
        .iter()
        .filter(|l| l.contains("accepting connections failed"))
        .count();
    assert!(warnings <= 1, "{}", log.join("\n"));
}
