//! Finding (or building) the release `kubox` binary and running `kubox serve` as a child process
//! with its own temporary data directory.
//!
//! Which binary: `--kubox-bin PATH` if given; otherwise `kubox` next to this bench's own
//! executable (`<target-dir>/release/kubox`), built first with
//! `cargo build --release -p kubox --bin kubox --target-dir <target-dir>` — a no-op when it is
//! fresh, so the report never measures a stale server. `--no-build` skips that cargo call and
//! only requires the file to exist.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::http::readyz_blocking;
use crate::Result;

/// How long a start may take before the bench gives up on it.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Pause between two `/readyz` attempts.
const POLL_PAUSE: Duration = Duration::from_micros(200);

/// Storage backend of a `kubox serve` process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Storage {
    Sled,
    Memory,
    /// A single-member etcd started for the run (Debian's etcd-server).
    Etcd,
    /// A three-member etcd cluster started for the run.
    Etcd3,
}

impl Storage {
    pub fn name(self) -> &'static str {
        match self {
            Storage::Sled => "sled",
            Storage::Memory => "memory",
            Storage::Etcd => "etcd",
            Storage::Etcd3 => "etcd3",
        }
    }

    /// The etcd members to start for this storage (0: none).
    fn etcd_members(self) -> usize {
        match self {
            Storage::Etcd => 1,
            Storage::Etcd3 => 3,
            Storage::Sled | Storage::Memory => 0,
        }
    }
}

/// Find the kubox binary, building it first unless told not to.
pub fn locate(explicit: Option<PathBuf>, build: bool) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("--kubox-bin {}: no such file", p.display()).into())
        };
    }
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .ok_or("the bench executable has no directory")?;
    let profile = profile_dir.file_name().and_then(|s| s.to_str());
    if profile != Some("release") {
        eprintln!(
            "warning: kubox-bench is not a release build ({}); client overhead will be inflated — \
             use `cargo run --release -p kubox-bench`",
            profile.unwrap_or("?")
        );
    }
    let target_dir = profile_dir
        .parent()
        .ok_or("the bench executable is not in a cargo target directory")?;
    let bin = target_dir.join("release").join("kubox");
    if build {
        build_release(target_dir)?;
    }
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!("{} is missing (run without --no-build)", bin.display()).into())
    }
}

fn build_release(target_dir: &Path) -> Result<()> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("bench crate has no parent directory")?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!(
        "building the release kubox server (target dir {})…",
        target_dir.display()
    );
    let status = Command::new(cargo)
        .current_dir(workspace)
        .args(["build", "--release", "-p", "kubox", "--bin", "kubox"])
        .arg("--target-dir")
        .arg(target_dir)
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo build of kubox failed: {status}").into())
    }
}

/// A running `kubox serve`, stopped (SIGINT, then SIGKILL) and its data removed on drop.
pub struct Kubox {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
    /// The server's stderr.
    log: PathBuf,
    /// The etcd the server stores into (stopped after it).
    _etcd: Option<kubox_storage::etcd_process::EtcdCluster>,
    /// From spawn until `/readyz` answered 200.
    pub ready_after: Duration,
    /// From spawn until the "kubox is serving" line appeared on stdout.
    pub serving_line_after: Option<Duration>,
}

impl Kubox {
    /// Spawn on a free loopback port and wait until `/readyz` answers 200.
    pub fn start(bin: &Path, storage: Storage) -> Result<Kubox> {
        Kubox::start_with(bin, storage, &[])
    }

    /// Like [`Kubox::start`], with more `kubox serve` flags.
    pub fn start_with(bin: &Path, storage: Storage, extra: &[String]) -> Result<Kubox> {
        Kubox::start_under(&[], bin, storage, extra)
    }

    /// Like [`Kubox::start_with`], run by `launcher` (a program and its arguments, the kubox
    /// binary and its arguments after them: valgrind, say); empty: run directly.
    pub fn start_under(
        launcher: &[String],
        bin: &Path,
        storage: Storage,
        extra: &[String],
    ) -> Result<Kubox> {
        let dir = tempfile::Builder::new().prefix("kubox-bench-").tempdir()?;
        // Pick a free port; the tiny window before kubox binds it again is harmless here.
        let addr = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        // `KUBOX_BENCH_STDERR=FILE` keeps the server's log (appended) after the run.
        let log = std::env::var_os("KUBOX_BENCH_STDERR")
            .map(PathBuf::from)
            .unwrap_or_else(|| dir.path().join("stderr.log"));
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        let started = Instant::now();
        crate::http::clear_credentials();
        let mut command = match launcher.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        command.arg("serve");
        if !crate::http::tls() {
            command.arg("--insecure-http");
        }
        let etcd = match storage.etcd_members() {
            0 => None,
            n => Some(kubox_storage::etcd_process::EtcdCluster::start(n)),
        };
        match &etcd {
            Some(cluster) => command
                .args(["--storage", "etcd", "--etcd-servers"])
                .arg(cluster.endpoints().join(",")),
            None => command.args(["--storage", storage.name()]),
        };
        let mut child = command
            .args(extra)
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--kubeconfig")
            .arg(dir.path().join("kubeconfig"))
            .env("KUBOX_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()?;
        let serving = watch_stdout(&mut child, started);
        let mut kubox = Kubox {
            child,
            addr,
            dir,
            log,
            _etcd: etcd,
            ready_after: Duration::ZERO,
            serving_line_after: None,
        };
        let kubeconfig = kubox.dir.path().join("kubeconfig");
        let mut have_credentials = false;
        loop {
            if !have_credentials {
                have_credentials = crate::http::load_credentials(&kubeconfig);
            }
            if have_credentials && readyz_blocking(addr) {
                kubox.ready_after = started.elapsed();
                break;
            }
            if let Some(status) = kubox.child.try_wait()? {
                return Err(format!(
                    "kubox exited before it was ready ({status}); stderr:\n{}",
                    kubox.stderr_tail()
                )
                .into());
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(format!("kubox not ready after {START_TIMEOUT:?}").into());
            }
            std::thread::sleep(POLL_PAUSE);
        }
        // The line is printed right after start() returns, so it is there by now or very soon.
        kubox.serving_line_after = serving.recv_timeout(Duration::from_secs(2)).ok();
        Ok(kubox)
    }

    /// The server's data directory (its `pki/` holds the serving certificate).
    pub fn data_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    pub fn kubeconfig(&self) -> std::path::PathBuf {
        self.dir.path().join("kubeconfig")
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident set size of the server process (VmRSS), in bytes.
    /// Bytes in the server's data directory (the sled database; the memory store writes none).
    pub fn disk_bytes(&self) -> u64 {
        fn walk(p: &std::path::Path) -> u64 {
            let Ok(entries) = std::fs::read_dir(p) else {
                return 0;
            };
            entries
                .filter_map(|e| e.ok())
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => walk(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        }
        walk(&self.dir.path().join("data"))
    }

    pub fn rss(&self) -> Result<u64> {
        proc_status_kib(self.pid(), "VmRSS:").map(|k| k * 1024)
    }

    /// The anonymous part of the resident set (RssAnon), in bytes: the process's own memory,
    /// without the pages of its executable and libraries mapped from the page cache (shared,
    /// and as many as the kernel's read-around happened to map).
    pub fn rss_anon(&self) -> Result<u64> {
        proc_status_kib(self.pid(), "RssAnon:").map(|k| k * 1024)
    }

    /// Peak resident set size of the server process (VmHWM), in bytes.
    pub fn peak_rss(&self) -> Result<u64> {
        proc_status_kib(self.pid(), "VmHWM:").map(|k| k * 1024)
    }

    /// CPU time (user + system, all threads) the server process has used so far.
    pub fn cpu(&self) -> Result<Duration> {
        process_cpu(self.pid())
    }

    /// Bytes under the data directory (the sled database; empty for memory storage).
    pub fn disk_usage(&self) -> u64 {
        dir_size(&self.dir.path().join("data"))
    }

    fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Kubox {
    fn drop(&mut self) {
        // Graceful stop: kubox shuts down (and flushes sled) on SIGINT.
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Report when the child prints its "kubox is serving" line; keep draining stdout after that.
fn watch_stdout(child: &mut Child, started: Instant) -> mpsc::Receiver<Duration> {
    let (tx, rx) = mpsc::channel();
    if let Some(out) = child.stdout.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("kubox is serving") {
                    let _ = tx.send(started.elapsed());
                }
            }
        });
    }
    rx
}

/// CPU time (user + system) of process `pid`, from /proc/PID/stat. Assumes USER_HZ = 100, as on
/// every mainstream Linux build, so the resolution is 10 ms.
pub fn process_cpu(pid: u32) -> Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or("malformed /proc/PID/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| -> Result<u64> {
        Ok(fields
            .get(i)
            .ok_or("short /proc/PID/stat")?
            .parse::<u64>()?)
    };
    let ticks = tick(11)? + tick(12)?;
    Ok(Duration::from_millis(ticks * 10))
}

fn proc_status_kib(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no {field} in /proc/{pid}/status").into())
}

fn dir_size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
