//! Conformance scenarios run against any Kubernetes API server given a kubeconfig.
//!
//! Set `KUBOX_CONFORMANCE_KUBECONFIG` to run them against an existing server (kubox or a real
//! cluster); otherwise each scenario starts a fresh kubox on 127.0.0.1:0 with the backend it asks
//! for, so scenarios never share state.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![warn(missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use kubox::{Server, ServerHandle};

pub mod extension_server;
pub mod webhook_server;

/// Storage backends scenarios run against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// In-memory store.
    Memory,
    /// Embedded sled store in a temporary directory.
    Sled,
    /// A single-member etcd (Debian's etcd-server) started for the scenario on loopback.
    Etcd,
}

/// A server under test: a kubeconfig file, and the kubox instance when we started one.
pub struct Target {
    /// Path of a kubeconfig that reaches the server.
    pub kubeconfig: PathBuf,
    /// A namespace for this scenario's objects.
    pub namespace: String,
    server: Option<ServerHandle>,
    // Dropped after the server stopped: the etcd it stored into.
    _etcd: Option<kubox_storage::etcd_process::EtcdCluster>,
    _dir: tempfile::TempDir,
}

impl Target {
    /// Start (or connect to) a server for one scenario.
    pub async fn start(backend: Backend) -> Target {
        Target::start_with(backend, |b| b).await
    }

    /// Like [`Target::start`], with the kubox builder adjusted by `configure` (static tokens,
    /// authorization modes…) when this target starts its own server.
    pub async fn start_with(
        backend: Backend,
        configure: impl FnOnce(kubox::ServerBuilder) -> kubox::ServerBuilder,
    ) -> Target {
        let dir = tempfile::tempdir().expect("tempdir");
        let namespace = format!("conf-{}", std::process::id() as u64 * 1000 + rand_suffix());
        if let Ok(existing) = std::env::var("KUBOX_CONFORMANCE_KUBECONFIG") {
            return Target {
                kubeconfig: PathBuf::from(existing),
                namespace,
                server: None,
                _etcd: None,
                _dir: dir,
            };
        }
        let kubeconfig = dir.path().join("kubeconfig");
        let builder = Server::builder().kubeconfig_path(&kubeconfig);
        let mut etcd = None;
        let builder = match backend {
            Backend::Memory => builder.memory(),
            Backend::Sled => builder.sled(dir.path().join("db")),
            Backend::Etcd => {
                let cluster = tokio::task::spawn_blocking(|| {
                    kubox_storage::etcd_process::EtcdCluster::start(1)
                })
                .await
                .expect("etcd starts");
                let config = kubox::EtcdConfig::new(cluster.endpoints());
                etcd = Some(cluster);
                builder.storage(kubox::StorageConfig::Etcd(config))
            }
        };
        let builder = configure(builder);
        let server = builder.start().await.expect("kubox starts");
        Target {
            kubeconfig,
            namespace,
            server: Some(server),
            _etcd: etcd,
            _dir: dir,
        }
    }

    /// The kubox instance, when this target started one.
    pub fn server(&self) -> Option<&ServerHandle> {
        self.server.as_ref()
    }

    /// A kube-rs client for this server.
    pub async fn client(&self) -> kube::Client {
        let yaml = std::fs::read_to_string(&self.kubeconfig).expect("kubeconfig readable");
        let kc: kube::config::Kubeconfig = serde_yaml::from_str(&yaml).expect("kubeconfig parses");
        let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .expect("kube config");
        kube::Client::try_from(cfg).expect("kube client")
    }

    /// Stop the server if we started it.
    pub async fn stop(self) {
        if let Some(s) = self.server {
            s.shutdown().await.expect("clean shutdown");
        }
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// The kubectl binaries scenarios run: every installed 1.27 … 1.33, and 1.35 from `.tools/bin`.
pub fn kubectl_binaries() -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for minor in 27..=33 {
        let p = PathBuf::from(format!("/usr/lib/google-cloud-sdk/bin/kubectl.1.{minor}"));
        if p.exists() {
            out.push((format!("1.{minor}"), p));
        }
    }
    let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/bin/kubectl-1.35");
    if tools.exists() {
        out.push(("1.35".to_string(), tools));
    }
    out
}

/// The installed kubectl of `version` (`1.27` … `1.35`); a missing one fails the scenario,
/// naming the script that installs it.
pub fn kubectl_bin(version: &str) -> PathBuf {
    kubectl_binaries()
        .into_iter()
        .find(|(v, _)| v == version)
        .map(|(_, bin)| bin)
        .unwrap_or_else(|| panic!("kubectl {version} is not installed (run scripts/install-tools)"))
}

/// Run `scenario` with kubectl `version` against a fresh kubox (memory storage): it gets the
/// kubectl and the namespace the scenario may create and use.
pub fn with_kubectl(version: &str, scenario: impl FnOnce(&Kubectl, &str)) {
    let bin = kubectl_bin(version);
    let rt = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let target = rt.block_on(Target::start(Backend::Memory));
    scenario(&Kubectl::new(version, &bin, &target), &target.namespace);
    rt.block_on(target.stop());
}

/// One kubectl binary pointed at one target, with its own discovery cache.
pub struct Kubectl {
    /// The binary.
    pub bin: PathBuf,
    /// Its version, e.g. `1.33`.
    pub version: String,
    kubeconfig: PathBuf,
    cache: tempfile::TempDir,
}

/// What one kubectl run produced.
#[derive(Debug)]
pub struct Run {
    /// The command line, for failure messages.
    pub cmdline: String,
    /// Exit success.
    pub ok: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Panic with a readable message unless the command succeeded.
    #[track_caller]
    pub fn success(self) -> Run {
        assert!(
            self.ok,
            "`{}` failed\nstdout:\n{}\nstderr:\n{}",
            self.cmdline, self.stdout, self.stderr
        );
        self
    }

    /// Panic with a readable message unless the command failed.
    #[track_caller]
    pub fn failure(self) -> Run {
        assert!(
            !self.ok,
            "`{}` should have failed\nstdout:\n{}\nstderr:\n{}",
            self.cmdline, self.stdout, self.stderr
        );
        self
    }

    /// Parse stdout as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!("`{}` printed no JSON ({e}):\n{}", self.cmdline, self.stdout)
        })
    }
}

impl Kubectl {
    /// kubectl `bin` (version `version`) against `target`.
    pub fn new(version: &str, bin: &Path, target: &Target) -> Kubectl {
        Kubectl {
            bin: bin.to_path_buf(),
            version: version.to_string(),
            kubeconfig: target.kubeconfig.clone(),
            cache: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// kubectl `bin` (version `version`) with another kubeconfig (another user, same server).
    pub fn with_kubeconfig(version: &str, bin: &Path, kubeconfig: &Path) -> Kubectl {
        Kubectl {
            bin: bin.to_path_buf(),
            version: version.to_string(),
            kubeconfig: kubeconfig.to_path_buf(),
            cache: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// The command, ready to run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("KUBECACHEDIR", self.cache.path())
            .env("HOME", self.cache.path())
            .stdin(Stdio::null());
        c
    }

    /// Run kubectl with arguments.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(self.command(args), args)
    }

    /// Run kubectl with `stdin` fed to it.
    pub fn run_stdin(&self, args: &[&str], stdin: &str) -> Run {
        use std::io::Write;
        let mut c = self.command(args);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("kubectl spawns");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        let out = child.wait_with_output().expect("kubectl runs");
        self.finish(args, out)
    }

    /// Run a prepared command.
    pub fn run_with(&self, mut c: Command, args: &[&str]) -> Run {
        let out = c.output().expect("kubectl runs");
        self.finish(args, out)
    }

    fn finish(&self, args: &[&str], out: Output) -> Run {
        Run {
            cmdline: format!("kubectl({}) {}", self.version, args.join(" ")),
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}
