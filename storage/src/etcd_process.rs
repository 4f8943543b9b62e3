//! Real etcd processes for tests and benchmarks: a single member or a cluster of several, on
//! free loopback ports, each member's data in its own temporary directory.
//!
//! The binary is `$ETCD_BIN`, else `etcd` on `PATH` (Debian's `etcd-server`; `scripts/install-tools`
//! installs it). Dropping the cluster kills its members and removes their data.
#![allow(clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a member may take to answer `/health` after it starts.
const START_WAIT: Duration = Duration::from_secs(30);

/// One member of an [`EtcdCluster`].
struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    /// Plain-HTTP `/health` (etcd's metrics listener), whatever the client URLs' scheme.
    health_port: u16,
    data_dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

/// A running etcd cluster of one or more members.
pub struct EtcdCluster {
    members: Vec<Member>,
    root: PathBuf,
    token: String,
    tls: Option<ServerTls>,
}

/// TLS for the members' client URLs (PEM files): they serve `cert_file`, and with
/// `client_ca_file` require client certificates signed by it.
#[derive(Clone, Debug)]
pub struct ServerTls {
    /// The serving certificate (SAN 127.0.0.1).
    pub cert_file: PathBuf,
    /// Its key.
    pub key_file: PathBuf,
    /// The CA client certificates must chain to (None: no client certificates asked for).
    pub client_ca_file: Option<PathBuf>,
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The etcd binary these tests run.
pub fn etcd_binary() -> String {
    std::env::var("ETCD_BIN").unwrap_or_else(|_| "etcd".to_string())
}

/// Whether an etcd binary can be run here.
pub fn etcd_available() -> bool {
    Command::new(etcd_binary())
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl EtcdCluster {
    /// Start `size` members on fresh loopback ports and wait until every one is healthy.
    /// Panics with what went wrong (and the end of the member's log) when one does not start.
    pub fn start(size: usize) -> EtcdCluster {
        EtcdCluster::start_with(size, None)
    }

    /// [`EtcdCluster::start`], with `https://` client URLs when `tls` is given.
    pub fn start_with(size: usize, tls: Option<ServerTls>) -> EtcdCluster {
        // Ports are picked free, then bound by etcd: another process may take one in between.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut cluster = EtcdCluster::prepare(size);
            cluster.tls = tls.clone();
            for i in 0..size {
                cluster.spawn(i, "new");
            }
            match (0..size).try_for_each(|i| cluster.wait_healthy(i)) {
                Ok(()) => return cluster,
                Err(e) if attempt >= 3 => panic!("{e}"),
                Err(_) => {}
            }
        }
    }

    fn prepare(size: usize) -> EtcdCluster {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        // A memory-backed directory where there is one: etcd syncs every write.
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let token = format!("kubox-{}-{seq}", std::process::id());
        let root = base.join(format!("kubox-etcd-{token}"));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).expect("create the etcd directory");
        let members = (0..size)
            .map(|i| {
                let name = format!("m{i}");
                Member {
                    data_dir: root.join(format!("{name}.etcd")),
                    log: root.join(format!("{name}.log")),
                    name,
                    client_port: free_port().expect("a free port"),
                    peer_port: free_port().expect("a free port"),
                    health_port: free_port().expect("a free port"),
                    child: None,
                }
            })
            .collect();
        EtcdCluster {
            members,
            root,
            token,
            tls: None,
        }
    }

    fn initial_cluster(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    fn spawn(&mut self, i: usize, state: &str) {
        let initial = self.initial_cluster();
        let scheme = self.scheme();
        let tls = self.tls.clone();
        let m = self.members.get_mut(i).expect("member index");
        let client = format!("{scheme}://127.0.0.1:{}", m.client_port);
        let health = format!("http://127.0.0.1:{}", m.health_port);
        let peer = format!("http://127.0.0.1:{}", m.peer_port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&m.log)
            .expect("open the etcd log");
        let mut command = Command::new(etcd_binary());
        if let Some(tls) = &tls {
            command.arg("--cert-file").arg(&tls.cert_file);
            command.arg("--key-file").arg(&tls.key_file);
            if let Some(ca) = &tls.client_ca_file {
                command
                    .arg("--client-cert-auth")
                    .arg("--trusted-ca-file")
                    .arg(ca);
            }
        }
        let child = command
            .args(["--name", &m.name])
            .args(["--listen-metrics-urls", &health])
            .arg("--data-dir")
            .arg(&m.data_dir)
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &initial])
            .args(["--initial-cluster-state", state])
            .args(["--initial-cluster-token", &self.token])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {:?} ({e}); install Debian's etcd-server (scripts/install-tools does)",
                    etcd_binary()
                )
            });
        m.child = Some(child);
    }

    fn wait_healthy(&mut self, i: usize) -> Result<(), String> {
        let deadline = Instant::now() + START_WAIT;
        loop {
            let m = self.members.get_mut(i).expect("member index");
            if healthy(m.health_port) {
                return Ok(());
            }
            if let Some(child) = m.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!(
                        "etcd member {} exited ({status}):\n{}",
                        m.name,
                        log_tail(&m.log)
                    ));
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "etcd member {} not healthy within {START_WAIT:?}:\n{}",
                    m.name,
                    log_tail(&m.log)
                ));
            }
            // Polling an external process's health endpoint until its deadline.
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Client URLs of every member.
    pub fn endpoints(&self) -> Vec<String> {
        let scheme = self.scheme();
        self.members
            .iter()
            .map(|m| format!("{scheme}://127.0.0.1:{}", m.client_port))
            .collect()
    }

    /// How many members the cluster has.
    pub fn size(&self) -> usize {
        self.members.len()
    }

    /// Kill member `i` with SIGKILL and wait for it to be gone.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members.get_mut(i).and_then(|m| m.child.take()) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start member `i` again on its data and ports, and wait until it is healthy.
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i, "existing");
        if let Err(e) = self.wait_healthy(i) {
            panic!("{e}");
        }
    }

    /// Whether member `i` answers `/health` with true.
    pub fn is_healthy(&self, i: usize) -> bool {
        self.members.get(i).is_some_and(|m| healthy(m.health_port))
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// `GET /health` on a member's plain-HTTP metrics port.
fn healthy(port: u16) -> bool {
    let Ok(mut conn) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
    if conn
        .write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = conn.read_to_string(&mut answer);
    answer.contains("\"health\":\"true\"")
}

fn log_tail(path: &std::path::Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
