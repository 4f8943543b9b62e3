//! The `kubox` command: `kubox serve` runs the API server.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// mimalloc hands memory freed after a load back to the system (glibc's allocator, with one
/// arena per thread, keeps most of it). The library leaves the allocator to its embedder.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: allocator::Allocator = allocator::Allocator;
use kubox::{Server, StorageConfig};

/// mimalloc, with a block that grows out of its place copied in pieces ([`kubox::copy`]): the
/// old and new blocks of a growing buffer often share their page offset, where large copies
/// are slow. Growing a 400 KiB list answer spent 10 % of a LIST's CPU in those copies (README,
/// Performance).
#[cfg(feature = "mimalloc")]
#[allow(unsafe_code)] // an allocator; measured need above
mod allocator {
    use std::alloc::{GlobalAlloc, Layout};

    use kubox::copy::PIECE;
    use mimalloc::MiMalloc;

    pub struct Allocator;

    // SAFETY: every block comes from and goes back to mimalloc; `realloc` keeps
    // `GlobalAlloc::realloc`'s contract: the first min(old, new) bytes are kept, the old block
    // is freed only once the new one holds them, and a failed allocation returns null with the
    // old block untouched.
    unsafe impl GlobalAlloc for Allocator {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: forwarded as given.
            unsafe { MiMalloc.alloc(layout) }
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            // SAFETY: forwarded as given.
            unsafe { MiMalloc.alloc_zeroed(layout) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: forwarded as given; `ptr` came from mimalloc.
            unsafe { MiMalloc.dealloc(ptr, layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            let old = layout.size();
            if new_size <= old || old <= PIECE {
                // SAFETY: forwarded as given.
                return unsafe { MiMalloc.realloc(ptr, layout, new_size) };
            }
            // SAFETY: `ptr` is a live mimalloc block; `mi_expand` only looks at its size.
            if !unsafe { libmimalloc_sys::mi_expand(ptr.cast(), new_size) }.is_null() {
                return ptr;
            }
            // SAFETY: the caller guarantees `new_size`, rounded to `layout.align()`, fits isize.
            let new = unsafe {
                MiMalloc.alloc(Layout::from_size_align_unchecked(new_size, layout.align()))
            };
            if new.is_null() {
                return new;
            }
            let mut done = 0;
            while done < old {
                let n = (old - done).min(PIECE);
                // SAFETY: both blocks hold at least `old` bytes and are distinct.
                unsafe { std::ptr::copy_nonoverlapping(ptr.add(done), new.add(done), n) };
                done += n;
            }
            // SAFETY: `ptr` came from mimalloc with `layout` and is no longer used.
            unsafe { MiMalloc.dealloc(ptr, layout) };
            new
        }
    }

    #[cfg(test)]
    mod tests {
        #![allow(clippy::unwrap_used)]
        use super::*;

        #[test]
        fn a_growing_block_keeps_its_bytes_whatever_its_alignment() {
            for align in [1, 8, 64, 4096] {
                let mut size = 1000;
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: a non-zero size; every block is freed with the layout it has.
                unsafe {
                    let mut p = Allocator.alloc(layout);
                    assert!(!p.is_null());
                    for i in 0..size {
                        *p.add(i) = (i % 251) as u8;
                    }
                    for new_size in [5000, 5001, 70_000, 1 << 20, 3 << 20] {
                        let q = Allocator.realloc(
                            p,
                            Layout::from_size_align(size, align).unwrap(),
                            new_size,
                        );
                        assert!(!q.is_null());
                        assert_eq!(q as usize % align, 0, "align {align}");
                        for i in 0..size {
                            assert_eq!(*q.add(i), (i % 251) as u8, "align {align}, byte {i}");
                        }
                        for i in size..new_size {
                            *q.add(i) = (i % 251) as u8;
                        }
                        p = q;
                        size = new_size;
                    }
                    let shrunk =
                        Allocator.realloc(p, Layout::from_size_align(size, align).unwrap(), 3000);
                    for i in 0..3000 {
                        assert_eq!(*shrunk.add(i), (i % 251) as u8);
                    }
                    Allocator.dealloc(shrunk, Layout::from_size_align(3000, align).unwrap());
                }
            }
        }
    }
}

/// Hands memory that start-up freed back to the system. mimalloc returns freed pages after a
/// delay, on a later call into the allocator by the thread that holds them, and an idle server
/// makes few: what start-up built and dropped stayed resident (1.3 MiB with the memory store).
#[cfg(feature = "mimalloc")]
#[allow(unsafe_code)] // one call into the allocator's C interface (measured need: README)
fn release_freed_memory() {
    // SAFETY: `mi_collect` takes no pointers; it walks and locks only mimalloc's own state,
    // and any thread may call it at any time.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

#[cfg(not(feature = "mimalloc"))]
fn release_freed_memory() {}

#[derive(Parser)]
#[command(
    name = "kubox",
    version,
    about = "A Kubernetes API server for development and tests"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Storage {
    Sled,
    Memory,
    Etcd,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once, at start
enum Command {
    /// Serve the Kubernetes API.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:6443")]
        listen: SocketAddr,
        /// Storage backend.
        #[arg(long, value_enum, default_value = "sled")]
        storage: Storage,
        /// etcd members' client URLs, comma-separated (with `--storage etcd`).
        #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:2379")]
        etcd_servers: Vec<String>,
        /// The root of every key in etcd.
        #[arg(long, default_value = "/registry")]
        etcd_prefix: String,
        /// The CA (PEM) that etcd's serving certificates chain to.
        #[arg(long)]
        etcd_cafile: Option<PathBuf>,
        /// Client certificate (PEM) shown to etcd.
        #[arg(long, requires = "etcd_keyfile")]
        etcd_certfile: Option<PathBuf>,
        /// The key of --etcd-certfile (PEM).
        #[arg(long, requires = "etcd_certfile")]
        etcd_keyfile: Option<PathBuf>,
        /// How often etcd's history is compacted (Go duration; 0 never).
        #[arg(long, default_value = "5m", value_parser = kubox::controllers::parse_duration)]
        etcd_compaction_interval: std::time::Duration,
        /// Data directory (default: the per-user data directory, e.g. ~/.local/share/kubox).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Use a data directory that other users may read (refused by default: it holds every
        /// Secret and the CA's key). Directories kubox creates are always private (0700).
        #[arg(long)]
        allow_shared_data_dir: bool,
        /// Where to write the kubeconfig (default: DATA_DIR/kubeconfig).
        #[arg(long)]
        kubeconfig: Option<PathBuf>,
        /// Built-in controllers to run, kube-controller-manager style: `*` is every one on by
        /// default, `foo` enables foo, `-foo` disables it. Known: garbage-collector, namespace,
        /// serviceaccount, serviceaccount-token, event-ttl, and the workload controllers
        /// (deployment, replicaset, replicationcontroller, statefulset, daemonset, job, cronjob,
        /// endpoints, endpointslice, disruption, podgc), which `*` includes only with --nodes.
        #[arg(long, default_value = "*", value_parser = kubox::ControllerSet::parse)]
        controllers: kubox::ControllerSet,
        /// Simulate this many nodes: Ready Nodes with Leases in kube-node-lease, a scheduler
        /// binding pending pods to them, kubelets running those pods without containers, and
        /// the workload controllers. 0: no nodes, pods stay Pending.
        #[arg(long, default_value_t = 0)]
        nodes: u32,
        /// How long a simulated pod that runs to completion (restartPolicy Never or OnFailure)
        /// runs, on the server clock (Go duration; the pod annotation kubox.dev/run-for
        /// overrides it).
        #[arg(long, default_value = "0s", value_parser = kubox::controllers::parse_duration)]
        pod_run_time: std::time::Duration,
        /// How many finished pods may exist before the pod GC deletes the oldest (0: never).
        #[arg(long, default_value_t = 12500)]
        terminated_pod_gc_threshold: usize,
        /// The most endpoints in one EndpointSlice (1 … 1000).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=1000))]
        max_endpoints_per_slice: u16,
        /// Run the built-in controllers only on the replica that holds the Lease
        /// kube-system/kube-controller-manager (kube-controller-manager's leader election), for
        /// several kubox on one etcd. Default: on with `--storage etcd`, off otherwise.
        #[arg(long, num_args = 0..=1, default_missing_value = "true")]
        leader_elect: Option<bool>,
        /// How long a leader's lease is honoured after its last renewal.
        #[arg(long, default_value = "15s", value_parser = kubox::controllers::parse_duration)]
        leader_elect_lease_duration: std::time::Duration,
        /// How long a leader tries to renew before it stops its controllers.
        #[arg(long, default_value = "10s", value_parser = kubox::controllers::parse_duration)]
        leader_elect_renew_deadline: std::time::Duration,
        /// How often candidates try for the lease and the leader renews it.
        #[arg(long, default_value = "2s", value_parser = kubox::controllers::parse_duration)]
        leader_elect_retry_period: std::time::Duration,
        /// How long Events live after their creation (Go duration: 1h, 30m, 90s).
        #[arg(long, default_value = "1h", value_parser = kubox::controllers::parse_duration)]
        event_ttl: std::time::Duration,
        /// Extra subject alternative names (DNS names or IPs) for the generated serving
        /// certificate; repeat or separate with commas.
        #[arg(long = "tls-san", value_delimiter = ',')]
        tls_sans: Vec<String>,
        /// Serve this certificate (PEM) instead of one signed by the kubox CA.
        #[arg(long, requires = "tls_private_key_file")]
        tls_cert_file: Option<PathBuf>,
        /// The key of --tls-cert-file (PEM).
        #[arg(long, requires = "tls_cert_file")]
        tls_private_key_file: Option<PathBuf>,
        /// Serve plain HTTP instead of HTTPS (loopback addresses only).
        #[arg(long)]
        insecure_http: bool,
        /// Static bearer tokens, kube-apiserver's CSV format: token,user,uid,"group1,group2".
        #[arg(long)]
        token_auth_file: Option<PathBuf>,
        /// Also trust client certificates signed by the CAs in this PEM bundle (user: the
        /// common name, groups: the organizations).
        #[arg(long)]
        client_ca_file: Option<PathBuf>,
        /// Let requests without credentials in as system:anonymous.
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        anonymous_auth: bool,
        /// Authorization modes, comma-separated, asked in order: RBAC, AlwaysAllow, AlwaysDeny.
        /// Members of system:masters are always allowed.
        #[arg(long, default_value = "RBAC")]
        authorization_mode: String,
        /// Admission plugins to switch off, comma-separated (NamespaceLifecycle, LimitRanger,
        /// ServiceAccount, MutatingAdmissionWebhook, ValidatingAdmissionPolicy,
        /// ValidatingAdmissionWebhook, ResourceQuota).
        #[arg(long, default_value = "", value_parser = parse_admission)]
        disable_admission_plugins: kubox::admission::AdmissionConfig,
        /// Write audit.k8s.io/v1 events as JSON lines to this file.
        #[arg(long)]
        audit_log_path: Option<PathBuf>,
        /// Audit policy (audit.k8s.io/v1 Policy, YAML); default: everything at Metadata.
        #[arg(long, requires = "audit_log_path")]
        audit_policy_file: Option<PathBuf>,
        /// Start holding what this snapshot file holds (`kubox snapshot save`): with
        /// `--storage memory`, or a data directory that holds no store yet.
        #[arg(long)]
        from_snapshot: Option<PathBuf>,
        /// Append every request to this file as a JSON line (user, verb, resource, namespace,
        /// name, field manager, dry run, code); 0600.
        #[arg(long)]
        record: Option<PathBuf>,
        /// Start with these injected faults (YAML or JSON: `seed`, `rules` of `match`,
        /// `action`, `times`, `probability`); `/kubox/v1/faults` changes them while serving.
        #[arg(long)]
        faults: Option<PathBuf>,
    },
    /// Snapshots of a running server.
    Snapshot {
        #[command(subcommand)]
        command: SnapshotCommand,
    },
}

#[derive(Subcommand)]
enum SnapshotCommand {
    /// Save everything a running server holds, at one revision, to FILE (through its API, as
    /// a cluster admin; the file is 0600, it holds every Secret).
    Save {
        /// Where to write the snapshot.
        file: PathBuf,
        /// The kubeconfig to reach the server with (default: $KUBECONFIG, then ~/.kube/config).
        #[arg(long)]
        kubeconfig: Option<PathBuf>,
    },
}

/// `kubox snapshot save`: GET /kubox/v1/snapshot, check it reads back, write it.
async fn snapshot_save(
    file: &std::path::Path,
    kubeconfig: Option<PathBuf>,
) -> Result<String, String> {
    let path = kubeconfig
        .or_else(|| std::env::var_os("KUBECONFIG").and_then(|v| std::env::split_paths(&v).next()))
        .or_else(|| dirs::home_dir().map(|h| h.join(".kube").join("config")))
        .ok_or("no kubeconfig: pass --kubeconfig")?;
    let access = kubox::kubeconfig::Access::load(&path).map_err(|e| e.to_string())?;
    let (status, body) = access.get("/kubox/v1/snapshot").await?;
    if !status.is_success() {
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|s| s["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        return Err(format!("{}: {status}: {message}", access.server));
    }
    let snapshot = kubox::Snapshot::read_from(&body[..]).map_err(|e| e.to_string())?;
    snapshot.save(file).map_err(|e| e.to_string())?;
    Ok(format!(
        "saved {} keys at revision {} to {}",
        snapshot.len(),
        snapshot.revision(),
        file.display()
    ))
}

fn parse_admission(list: &str) -> Result<kubox::admission::AdmissionConfig, String> {
    let mut c = kubox::admission::AdmissionConfig::default();
    c.disable_list(list)?;
    Ok(c)
}

/// A future that completes on SIGINT or SIGTERM (Ctrl-C elsewhere); handlers are installed now.
#[cfg(unix)]
fn stop_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    })
}

#[cfg(not(unix))]
fn stop_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

/// How long shutdown may take before the process exits regardless.
const SHUTDOWN_DEADLINE: std::time::Duration = std::time::Duration::from_secs(5);

fn default_data_dir() -> PathBuf {
    dirs::data_local_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("kubox")
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KUBOX_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            listen,
            storage,
            etcd_servers,
            etcd_prefix,
            etcd_cafile,
            etcd_certfile,
            etcd_keyfile,
            etcd_compaction_interval,
            data_dir,
            allow_shared_data_dir,
            kubeconfig,
            controllers,
            nodes,
            pod_run_time,
            terminated_pod_gc_threshold,
            max_endpoints_per_slice,
            leader_elect,
            leader_elect_lease_duration,
            leader_elect_renew_deadline,
            leader_elect_retry_period,
            event_ttl,
            tls_sans,
            tls_cert_file,
            tls_private_key_file,
            insecure_http,
            token_auth_file,
            client_ca_file,
            anonymous_auth,
            authorization_mode,
            disable_admission_plugins,
            audit_log_path,
            audit_policy_file,
            from_snapshot,
            record,
            faults,
        } => {
            let authorization_mode =
                match kubox::authz::AuthorizationMode::parse_list(&authorization_mode) {
                    Ok(m) => m,
                    Err(e) => {
                        eprintln!("kubox: --authorization-mode: {e}");
                        return std::process::ExitCode::FAILURE;
                    }
                };
            let data_dir = data_dir.unwrap_or_else(default_data_dir);
            let kubeconfig = kubeconfig.unwrap_or_else(|| data_dir.join("kubeconfig"));
            let leader_elect = leader_elect.unwrap_or(matches!(storage, Storage::Etcd));
            let storage = match storage {
                Storage::Sled => StorageConfig::Sled(data_dir.join("db")),
                Storage::Memory => StorageConfig::Memory,
                Storage::Etcd => StorageConfig::Etcd(kubox::EtcdConfig {
                    prefix: etcd_prefix,
                    cafile: etcd_cafile,
                    certfile: etcd_certfile,
                    keyfile: etcd_keyfile,
                    compaction_interval: etcd_compaction_interval,
                    ..kubox::EtcdConfig::new(etcd_servers)
                }),
            };
            // Listen for Ctrl-C (and SIGTERM) before anything is printed, so a signal sent as soon
            // as the address appears is handled, not fatal.
            let stop = match stop_signal() {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("kubox: cannot install signal handlers: {e}");
                    return std::process::ExitCode::FAILURE;
                }
            };
            let mut builder = Server::builder();
            if let Some(path) = audit_log_path {
                builder = builder.audit_log(path);
            }
            if let Some(path) = audit_policy_file {
                match kubox::audit::Policy::load(&path) {
                    Ok(p) => builder = builder.audit_policy(p),
                    Err(e) => {
                        eprintln!("kubox: audit policy: {e}");
                        return std::process::ExitCode::FAILURE;
                    }
                }
            }
            let mut builder = builder
                .listen(listen)
                .storage(storage)
                .data_dir(&data_dir)
                .allow_shared_data_dir(allow_shared_data_dir)
                .kubeconfig_path(&kubeconfig)
                .controllers(controllers)
                .node_options(kubox::NodeOptions {
                    count: nodes,
                    pod_run_time,
                    ..Default::default()
                })
                .terminated_pod_gc_threshold(terminated_pod_gc_threshold)
                .max_endpoints_per_slice(usize::from(max_endpoints_per_slice))
                .leader_election(leader_elect.then(|| kubox::leader::LeaderElection {
                    lease_duration: leader_elect_lease_duration,
                    renew_deadline: leader_elect_renew_deadline,
                    retry_period: leader_elect_retry_period,
                    ..Default::default()
                }))
                .event_ttl(event_ttl)
                .tls_sans(tls_sans)
                .anonymous_auth(anonymous_auth)
                .authorization_mode(authorization_mode)
                .admission(disable_admission_plugins);
            if let (Some(cert), Some(key)) = (tls_cert_file, tls_private_key_file) {
                builder = builder.tls_cert_files(cert, key);
            }
            if insecure_http {
                builder = builder.insecure_http();
            }
            if let Some(f) = token_auth_file {
                builder = builder.token_auth_file(f);
            }
            if let Some(f) = client_ca_file {
                builder = builder.client_ca_file(f);
            }
            builder = match record {
                Some(path) => builder.record_to(path),
                None => builder.no_recorder(),
            };
            if let Some(path) = faults {
                let spec = std::fs::read(&path)
                    .map_err(|e| e.to_string())
                    .and_then(|text| kubox::faults::FaultsSpec::parse(&text));
                match spec {
                    Ok(spec) => builder = builder.faults(spec),
                    Err(e) => {
                        eprintln!("kubox: --faults {}: {e}", path.display());
                        return std::process::ExitCode::FAILURE;
                    }
                }
            }
            if let Some(f) = from_snapshot {
                match kubox::Snapshot::load(&f) {
                    Ok(snap) => builder = builder.from_snapshot(&snap),
                    Err(e) => {
                        eprintln!("kubox: --from-snapshot: {e}");
                        return std::process::ExitCode::FAILURE;
                    }
                }
            }
            let server = match builder.start().await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("kubox: cannot start: {e}");
                    return std::process::ExitCode::FAILURE;
                }
            };
            release_freed_memory();
            // A closed stdout (the launcher went away) must not take the server down.
            let mut out = std::io::stdout();
            let _ = writeln!(
                out,
                "kubox is serving the Kubernetes 1.{} API at {}",
                kubox::version::KUBERNETES_MINOR,
                server.url()
            );
            let _ = writeln!(out, "kubeconfig written to {}", kubeconfig.display());
            let _ = writeln!(
                out,
                "use it with:  export KUBECONFIG={}",
                kubeconfig.display()
            );
            let _ = out.flush();
            stop.await;
            eprintln!("kubox: shutting down");
            // Requests in progress get a grace period; whatever still runs after the deadline
            // (work that does not yield) does not keep the process alive: exit at once rather
            // than wait for the runtime to wind down.
            let code = match tokio::time::timeout(SHUTDOWN_DEADLINE, server.shutdown()).await {
                Ok(Ok(())) => 0,
                Ok(Err(e)) => {
                    eprintln!("kubox: shutdown: {e}");
                    1
                }
                Err(_) => {
                    eprintln!(
                        "kubox: shutdown did not finish within {SHUTDOWN_DEADLINE:?}; exiting"
                    );
                    1
                }
            };
            std::process::exit(code)
        }
        Command::Snapshot {
            command: SnapshotCommand::Save { file, kubeconfig },
        } => match snapshot_save(&file, kubeconfig).await {
            Ok(said) => {
                println!("{said}");
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("kubox: snapshot save: {e}");
                std::process::ExitCode::FAILURE
            }
        },
    }
}
