//! The embeddable server: `Server::builder()…start().await` gives a [`ServerHandle`] with its
//! address, a kubeconfig and `shutdown()`. No globals: many servers can run in one process.
//!
//! HTTPS by default (see `pki.rs` and `tls.rs`); the accept loop marks every request that came
//! over the network with an [`crate::authn::Peer`] (address, client certificate chain).

use crate::registry::store::NameGenerator;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kubox_storage::{Clock, CompactionPolicy, DynStore, SystemClock};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::ApiState;
use crate::authn::serviceaccount::Tokens as ServiceAccountTokens;
use crate::authn::token_file::StaticTokens;
use crate::authn::{Authentication, BearerToken, TokenUnion, UserInfo};
use crate::authz::rbac::Rbac;
use crate::authz::{AuthorizationMode, Authorizer};
use crate::chain::{self, ApiService, InFlightLimits};
use crate::controllers::{Controller, ControllerOptions, ControllerSet, Controllers, NodeOptions};
use crate::kubeconfig::Credential;
use crate::pki::{CertAndKey, Pki, ServingConfig};
use crate::registry::{Backend, Registry};
use crate::webhook::{ServiceResolver, WebhookClient};

/// The user of the kubeconfig kubox writes (as kubeadm's `admin.conf`, in `system:masters`).
pub const ADMIN_USER: &str = "kubernetes-admin";

pub use crate::conn::{ConnectionLimits, MAX_BODY_BYTES};

/// Where objects are kept.
#[derive(Clone)]
pub enum StorageConfig {
    /// In memory, gone at shutdown.
    Memory,
    /// The embedded sled store in this directory.
    Sled(PathBuf),
    /// An etcd v3 cluster (kube-apiserver's `--etcd-*` flags).
    Etcd(EtcdConfig),
    /// A store the caller built.
    Custom(DynStore),
}

/// How long a start waits for etcd to answer.
const ETCD_START_WAIT: Duration = Duration::from_secs(60);

/// How to reach etcd, with kube-apiserver's flag names and defaults.
#[derive(Clone, Debug)]
pub struct EtcdConfig {
    /// `--etcd-servers`: client URLs of the members.
    pub servers: Vec<String>,
    /// `--etcd-prefix`: the root of every key (default `/registry`).
    pub prefix: String,
    /// `--etcd-cafile`: the CA (PEM) etcd's serving certificates chain to.
    pub cafile: Option<PathBuf>,
    /// `--etcd-certfile`: the client certificate (PEM) shown to etcd.
    pub certfile: Option<PathBuf>,
    /// `--etcd-keyfile`: its key (PEM).
    pub keyfile: Option<PathBuf>,
    /// `--etcd-compaction-interval`: how often history older than this is compacted (zero:
    /// never; default 5 minutes).
    pub compaction_interval: Duration,
}

impl EtcdConfig {
    /// The members at `servers`, everything else at kube-apiserver's defaults.
    pub fn new(servers: Vec<String>) -> Self {
        EtcdConfig {
            servers,
            prefix: "/registry".to_string(),
            cafile: None,
            certfile: None,
            keyfile: None,
            compaction_interval: Duration::from_secs(300),
        }
    }

    async fn connect(&self, clock: Arc<dyn Clock>) -> Result<DynStore, ServerError> {
        let read = |path: &PathBuf, what: &str| {
            std::fs::read(path).map_err(|e| {
                ServerError::Config(format!(
                    "cannot read the etcd {what} {}: {e}",
                    path.display()
                ))
            })
        };
        let ca_pem = self
            .cafile
            .as_ref()
            .map(|p| read(p, "CA file"))
            .transpose()?;
        let client_pem = match (&self.certfile, &self.keyfile) {
            (Some(cert), Some(key)) => Some((read(cert, "certificate")?, read(key, "key")?)),
            (None, None) => None,
            _ => {
                return Err(ServerError::Config(
                    "--etcd-certfile and --etcd-keyfile go together".to_string(),
                ))
            }
        };
        let tls = (ca_pem.is_some() || client_pem.is_some())
            .then_some(kubox_storage::etcd::EtcdTls { ca_pem, client_pem });
        let prefix = self.prefix.trim_end_matches('/');
        if !prefix.starts_with('/') {
            return Err(ServerError::Config(format!(
                "--etcd-prefix must begin with '/': {:?}",
                self.prefix
            )));
        }
        let opts = kubox_storage::etcd::EtcdOptions {
            endpoints: self.servers.clone(),
            root: Some(kubox_storage::etcd::KeyRoot {
                kubox: "/registry".to_string(),
                etcd: prefix.to_string(),
            }),
            tls,
            clock,
            ..Default::default()
        };
        let store = kubox_storage::etcd::EtcdStore::connect(opts)
            .await
            .map_err(|e| ServerError::Config(format!("etcd: {e}")))?;
        // As kube-apiserver, wait for etcd to answer before starting (it may be starting too).
        let deadline = tokio::time::Instant::now() + ETCD_START_WAIT;
        let mut said = false;
        loop {
            match kubox_storage::Store::current_revision(&store).await {
                Ok(_) => break,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    if !said {
                        tracing::warn!(error = %e, "waiting for etcd to answer");
                        said = true;
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => {
                    return Err(ServerError::Config(format!(
                        "etcd did not answer within {ETCD_START_WAIT:?}: {e}"
                    )))
                }
            }
        }
        Ok(Arc::new(store))
    }
}

/// Errors starting a server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Could not bind or write files.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The store could not be opened.
    #[error("storage: {0}")]
    Storage(#[from] kubox_storage::StoreError),
    /// A file or directory could not be made or used (the message names the path).
    #[error("{0}")]
    File(#[from] crate::files::FileError),
    /// An option is unusable (an unreadable token file, plain HTTP off loopback…).
    #[error("{0}")]
    Config(String),
    /// A request made through the handle failed.
    #[error("{0}")]
    Api(String),
}

/// Builds a [`Server`].
pub struct ServerBuilder {
    listen: SocketAddr,
    storage: StorageConfig,
    clock: Arc<dyn Clock>,
    kubeconfig_path: Option<PathBuf>,
    limits: InFlightLimits,
    connection_limits: ConnectionLimits,
    controllers: ControllerOptions,
    admission: crate::admission::AdmissionConfig,
    audit_log: Option<PathBuf>,
    audit_policy: Option<crate::audit::Policy>,
    webhook_caller: Option<Arc<dyn crate::admission::webhook::WebhookCaller>>,
    service_resolver: Option<Arc<dyn ServiceResolver>>,
    data_dir: Option<PathBuf>,
    allow_shared_data_dir: bool,
    serving: ServingConfig,
    insecure_http: bool,
    token_auth_file: Option<PathBuf>,
    client_ca_file: Option<PathBuf>,
    static_tokens: Vec<(String, UserInfo)>,
    anonymous_auth: bool,
    authorization: Authorization,
    name_seed: Option<u64>,
    snapshot: Option<crate::snapshot::Snapshot>,
    recorder: Option<crate::recorder::RecorderOptions>,
    record_file: Option<PathBuf>,
    faults: Option<crate::faults::FaultsSpec>,
    leader_election: Option<crate::leader::LeaderElection>,
}

/// How requests are authorized.
#[derive(Clone)]
enum Authorization {
    Modes(Vec<AuthorizationMode>),
    Custom(Arc<dyn Authorizer>),
}

/// The kubox API server.
pub struct Server;

impl Server {
    /// A builder with defaults: 127.0.0.1:0, memory storage, the system clock.
    pub fn builder() -> ServerBuilder {
        ServerBuilder {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            storage: StorageConfig::Memory,
            clock: Arc::new(SystemClock),
            kubeconfig_path: None,
            limits: InFlightLimits::default(),
            connection_limits: ConnectionLimits::default(),
            controllers: ControllerOptions::default(),
            admission: Default::default(),
            audit_log: None,
            audit_policy: None,
            webhook_caller: None,
            service_resolver: None,
            data_dir: None,
            allow_shared_data_dir: false,
            serving: ServingConfig::default(),
            insecure_http: false,
            token_auth_file: None,
            client_ca_file: None,
            static_tokens: Vec::new(),
            anonymous_auth: true,
            authorization: Authorization::Modes(AuthorizationMode::default_modes()),
            name_seed: None,
            snapshot: None,
            recorder: Some(crate::recorder::RecorderOptions {
                capacity: 10_000,
                bodies: false,
            }),
            record_file: None,
            faults: None,
            leader_election: None,
        }
    }
}

impl ServerBuilder {
    /// Start holding exactly what `snapshot` holds: every object, CRD and RBAC rule, the
    /// revision counter (resourceVersions continue from the snapshot's revision), and — for a
    /// snapshot taken from a handle in this process — the same keys and certificates, so
    /// credentials and ServiceAccount tokens of the original are accepted. Each server gets its
    /// own store (the objects' bytes are shared); a sled data directory must not hold a store
    /// yet, and a store the caller built cannot be loaded.
    ///
    /// ```
    /// # async fn demo() -> Result<(), kubox::server::ServerError> {
    /// use kubox::server::Server;
    /// let seed = Server::builder().start().await?;
    /// // … create the objects every test needs through `seed` …
    /// let snap = seed.snapshot().await?;
    /// let fork = Server::builder().from_snapshot(&snap).start().await?;
    /// assert_eq!(fork.ca_pem(), seed.ca_pem());
    /// # fork.shutdown().await?; seed.shutdown().await?; Ok(()) }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
    /// ```
    pub fn from_snapshot(mut self, snapshot: &crate::snapshot::Snapshot) -> Self {
        self.snapshot = Some(snapshot.clone());
        self
    }

    /// How the request recorder keeps requests ([`ServerHandle::recorder`]); on by default,
    /// keeping the newest 10,000.
    pub fn recorder(mut self, options: crate::recorder::RecorderOptions) -> Self {
        self.recorder = Some(options);
        self
    }

    /// Record no request (what `kubox serve` does without `--record`).
    pub fn no_recorder(mut self) -> Self {
        self.recorder = None;
        self
    }

    /// Also append every request to `path` as a JSON line (`kubox serve --record`).
    pub fn record_to(mut self, path: impl Into<PathBuf>) -> Self {
        self.record_file = Some(path.into());
        if self.recorder.is_none() {
            self.recorder = Some(Default::default());
        }
        self
    }

    /// Start with these fault rules ([`ServerHandle::faults`] changes them later).
    pub fn faults(mut self, spec: crate::faults::FaultsSpec) -> Self {
        self.faults = Some(spec);
        self
    }

    /// Listen address (port 0 picks a free port).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Keep objects in memory.
    pub fn memory(mut self) -> Self {
        self.storage = StorageConfig::Memory;
        self
    }

    /// Keep objects in a sled database in `dir`.
    pub fn sled(mut self, dir: impl Into<PathBuf>) -> Self {
        self.storage = StorageConfig::Sled(dir.into());
        self
    }

    /// Use a store built by the caller.
    pub fn store(mut self, store: DynStore) -> Self {
        self.storage = StorageConfig::Custom(store);
        self
    }

    /// Set the storage from a config value.
    pub fn storage(mut self, storage: StorageConfig) -> Self {
        self.storage = storage;
        self
    }

    /// The clock for timestamps and compaction.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Generate the names `metadata.generateName` asks for from this seed: the same seed gives
    /// the same names in the same order, so a test run can be reproduced. Default: random.
    pub fn name_seed(mut self, seed: u64) -> Self {
        self.name_seed = Some(seed);
        self
    }

    /// Also write the kubeconfig to this file.
    pub fn kubeconfig_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.kubeconfig_path = Some(path.into());
        self
    }

    /// Concurrent request limits.
    pub fn in_flight_limits(mut self, limits: InFlightLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Timeouts and size bounds of connections (kube-apiserver's by default).
    pub fn connection_limits(mut self, limits: ConnectionLimits) -> Self {
        self.connection_limits = limits;
        self
    }

    /// Which built-in controllers run (all by default). See [`ControllerSet::parse`] for
    /// kube-controller-manager's `--controllers` syntax.
    pub fn controllers(mut self, set: ControllerSet) -> Self {
        self.controllers.enabled = set;
        self
    }

    /// Run this built-in controller (they all run by default).
    pub fn enable_controller(mut self, c: Controller) -> Self {
        self.controllers.enabled.enable(c);
        self
    }

    /// Do not run this built-in controller.
    pub fn disable_controller(mut self, c: Controller) -> Self {
        self.controllers.enabled.disable(c);
        self
    }

    /// How service references (a webhook's `clientConfig.service`, an APIService's
    /// `spec.service`) are reached. By default, as kube-apiserver's endpoint routing: through
    /// the Service's EndpointSlices (or its Endpoints), so a selector-less Service with an
    /// EndpointSlice naming `127.0.0.1` reaches a process on this machine
    /// ([`crate::routing`]); a test may map services to addresses itself.
    pub fn service_resolver(mut self, resolver: Arc<dyn ServiceResolver>) -> Self {
        self.service_resolver = Some(resolver);
        self
    }

    /// Run the built-in controllers only while this server holds the controllers' Lease
    /// (`kube-system/kube-controller-manager`), as kube-controller-manager with
    /// `--leader-elect`: for replicas sharing one store. Off by default (`None`): the
    /// controllers run at once.
    pub fn leader_election(mut self, election: Option<crate::leader::LeaderElection>) -> Self {
        self.leader_election = election;
        self
    }

    /// Simulate `count` nodes (`kubox serve --nodes N`): they register as Ready Nodes and
    /// renew their Leases in `kube-node-lease`; a scheduler binds pending pods to them and their
    /// simulated kubelets run those pods without containers; the workload controllers
    /// (deployment, replicaset, job…) are on unless switched off. See [`NodeOptions`].
    pub fn nodes(mut self, count: u32) -> Self {
        self.controllers.nodes.count = count;
        self
    }

    /// Simulated nodes with every option ([`NodeOptions`]).
    pub fn node_options(mut self, nodes: NodeOptions) -> Self {
        self.controllers.nodes = nodes;
        self
    }

    /// How many finished pods may exist before the pod GC deletes the oldest (default 12,500,
    /// kube-controller-manager's `--terminated-pod-gc-threshold`; 0: never).
    pub fn terminated_pod_gc_threshold(mut self, threshold: usize) -> Self {
        self.controllers.terminated_pod_gc_threshold = threshold;
        self
    }

    /// The most endpoints in one EndpointSlice (default 100, `--max-endpoints-per-slice`).
    pub fn max_endpoints_per_slice(mut self, max: usize) -> Self {
        self.controllers.max_endpoints_per_slice = max.clamp(1, 1000);
        self
    }

    /// How long Events live after their creation (default 1 h, kube-apiserver's `--event-ttl`).
    pub fn event_ttl(mut self, ttl: Duration) -> Self {
        self.controllers.event_ttl = ttl;
        self
    }

    /// Keep the CA, the serving certificate and the ServiceAccount signing key in
    /// `dir/pki/` (created at first start, reused after). Without it they are ephemeral.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// Use a data directory (or sled directory) that other users may read. By default such a
    /// directory is refused at start: it holds every Secret and the CA's key. Directories
    /// kubox creates are always private (`0700`).
    pub fn allow_shared_data_dir(mut self, allow: bool) -> Self {
        self.allow_shared_data_dir = allow;
        self
    }

    /// Extra subject alternative names for the generated serving certificate (`--tls-san`).
    pub fn tls_sans(mut self, sans: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.serving.sans.extend(sans.into_iter().map(Into::into));
        self
    }

    /// Serve this certificate and key (PEM files) instead of one signed by the kubox CA.
    pub fn tls_cert_files(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.serving.cert_files = Some((cert.into(), key.into()));
        self
    }

    /// Serve plain HTTP (loopback addresses only). The kubeconfig then carries an admin token.
    pub fn insecure_http(mut self) -> Self {
        self.insecure_http = true;
        self
    }

    /// Static bearer tokens from a file in kube-apiserver's CSV format
    /// (`token,user,uid,"group1,group2"`).
    pub fn token_auth_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.token_auth_file = Some(path.into());
        self
    }

    /// Trust client certificates signed by the CAs in this PEM bundle (kube-apiserver's
    /// `--client-ca-file`), besides those kubox's own CA signs (its kubeconfig's): the user is
    /// the certificate's common name, the groups its organizations. The bundle is published in
    /// `kube-system/extension-apiserver-authentication` with kubox's CA.
    pub fn client_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.client_ca_file = Some(path.into());
        self
    }

    /// Static bearer tokens: `(token, user)`.
    pub fn static_tokens(mut self, tokens: impl IntoIterator<Item = (String, UserInfo)>) -> Self {
        self.static_tokens.extend(tokens);
        self
    }

    /// Let requests without credentials in as `system:anonymous` (on by default, as
    /// kube-apiserver's `--anonymous-auth`).
    pub fn anonymous_auth(mut self, on: bool) -> Self {
        self.anonymous_auth = on;
        self
    }

    /// The authorization modes, in order (kube-apiserver's `--authorization-mode`; default
    /// `RBAC`). Members of `system:masters` are always allowed.
    pub fn authorization_mode(mut self, modes: Vec<AuthorizationMode>) -> Self {
        self.authorization = Authorization::Modes(modes);
        self
    }

    /// Decide every request with this authorizer instead of the modes.
    pub fn authorizer(mut self, authorizer: Arc<dyn Authorizer>) -> Self {
        self.authorization = Authorization::Custom(authorizer);
        self
    }

    /// Which admission plugins run (see [`crate::admission::AdmissionConfig`]).
    pub fn admission(mut self, config: crate::admission::AdmissionConfig) -> Self {
        self.admission = config;
        self
    }

    /// Do not run this admission plugin (one of [`crate::admission::PLUGINS`]).
    pub fn disable_admission_plugin(mut self, name: &str) -> Self {
        self.admission.disabled.push(name.to_string());
        self
    }

    /// How admission webhooks are called (default: the server's HTTPS webhook client; tests
    /// can answer reviews in-process).
    pub fn webhook_caller(
        mut self,
        caller: Arc<dyn crate::admission::webhook::WebhookCaller>,
    ) -> Self {
        self.webhook_caller = Some(caller);
        self
    }

    /// Write audit events as JSON lines to this file (kube-apiserver's `--audit-log-path`).
    pub fn audit_log(mut self, path: impl Into<PathBuf>) -> Self {
        self.audit_log = Some(path.into());
        self
    }

    /// The audit policy (`--audit-policy-file`); without one, every request is logged at
    /// `Metadata`.
    pub fn audit_policy(mut self, policy: crate::audit::Policy) -> Self {
        self.audit_policy = Some(policy);
        self
    }

    /// Open storage, bootstrap, bind and start serving. Returns once the built-in controllers
    /// have settled on what the store holds (see [`ServerHandle::settled`]).
    pub async fn start(mut self) -> Result<ServerHandle, ServerError> {
        // The built-in schemas (inflated and parsed once) are first needed by the bootstrap's
        // writes: they load while the PKI and the store are made ready. A sled store opens
        // first: sled allocates some 20 MB of zeroed metrics it never uses (compiled out), which
        // cost nothing in memory fresh from the system, but are written with zeros, and stay
        // resident, where the allocator reuses what loading the schemas freed.
        if !matches!(self.storage, StorageConfig::Sled(_)) {
            kubox_openapi::Schemas::preload();
        }
        if self.insecure_http && !self.listen.ip().is_loopback() {
            return Err(ServerError::Config(format!(
                "plain HTTP is only served on loopback addresses, not {}",
                self.listen
            )));
        }
        let mut static_tokens = StaticTokens::new(std::mem::take(&mut self.static_tokens));
        if let Some(path) = &self.token_auth_file {
            let text = std::fs::read_to_string(path)?;
            let from_file = StaticTokens::parse_csv(&text).map_err(ServerError::Config)?;
            static_tokens.extend(from_file);
        }
        if let Some(dir) = &self.data_dir {
            crate::files::private_dir(dir, self.allow_shared_data_dir)?;
        }
        let extra_client_ca = match &self.client_ca_file {
            Some(path) => {
                let pem = std::fs::read_to_string(path).map_err(|e| {
                    ServerError::Config(format!("--client-ca-file {}: {e}", path.display()))
                })?;
                crate::tls::check_ca_bundle(&pem).map_err(|e| {
                    ServerError::Config(format!("--client-ca-file {}: {e}", path.display()))
                })?;
                Some(pem)
            }
            None => None,
        };
        let image = self.snapshot.as_ref().map(|s| &s.image);
        // kubox never wrote etcd with its former key layout: nothing there to move.
        let former_layout_possible = !matches!(self.storage, StorageConfig::Etcd(_));
        let compaction = match &self.storage {
            StorageConfig::Etcd(etcd) if etcd.compaction_interval.is_zero() => None,
            // As kube-apiserver: what was current one interval ago, with no count of revisions
            // kept and no byte bound (etcd has its own quota).
            StorageConfig::Etcd(etcd) => Some(CompactionPolicy {
                min_age: etcd.compaction_interval,
                min_revisions: 0,
                max_history_bytes: u64::MAX,
            }),
            _ => Some(CompactionPolicy::default()),
        };
        // The PKI is loaded, or made and written, beside the store's opening: what it made is
        // handed over as soon as it is made, and written (synced) while start-up goes on.
        // Written first, before the store has written much, its files' sync commits little
        // else of the file system's (a sync later commits all that the store wrote meanwhile).
        let (pki_made, pki_made_rx) = tokio::sync::oneshot::channel();
        let pki_written = match self.snapshot.as_ref().and_then(|s| s.pki.clone()) {
            Some(given) => {
                let _ = pki_made.send(given);
                None
            }
            None => {
                let (dir, serving) = (self.data_dir.clone(), self.serving.clone());
                Some(tokio::task::spawn_blocking(move || {
                    let (pki, files) = Pki::load_or_make(dir.as_deref(), &serving)?;
                    let _ = pki_made.send(Arc::new(pki));
                    files.write()
                }))
            }
        };
        // The sled store writes start-up's objects (bootstrap, the controllers' first round)
        // without a sync each, and syncs them once before the first request is served.
        let mut deferred_syncs = None;
        let store: DynStore = match self.storage {
            StorageConfig::Memory => match image {
                None => Arc::new(kubox_storage::memory::MemoryStore::with_clock(
                    self.clock.clone(),
                )),
                Some(image) => Arc::new(kubox_storage::memory::MemoryStore::from_image(
                    image,
                    kubox_storage::memory::MemoryOptions {
                        clock: self.clock.clone(),
                        ..Default::default()
                    },
                )?),
            },
            StorageConfig::Sled(dir) => {
                crate::files::private_dir(&dir, self.allow_shared_data_dir)?;
                let opts = kubox_storage::sled_store::SledOptions {
                    clock: self.clock.clone(),
                    // Until the server is up, see `end_deferred_syncs` below.
                    defer_syncs: true,
                    ..Default::default()
                };
                let opened = match image {
                    None => kubox_storage::sled_store::SledStore::open_with(&dir, opts),
                    Some(image) => {
                        kubox_storage::sled_store::SledStore::create_from_image(&dir, image, opts)
                    }
                };
                let store = opened.map_err(|e| {
                    ServerError::Config(format!("cannot open the store in {}: {e}", dir.display()))
                })?;
                // sled creates its files with the process's default mode; inside a private
                // directory, make them private too.
                crate::files::restrict_files(&dir)?;
                deferred_syncs = Some(store.clone());
                Arc::new(store)
            }
            StorageConfig::Etcd(_) if image.is_some() => {
                return Err(ServerError::Config(
                    "a snapshot cannot be loaded into etcd (start from it with the memory or sled store)"
                        .to_string(),
                ))
            }
            StorageConfig::Etcd(etcd) => etcd.connect(self.clock.clone()).await?,
            StorageConfig::Custom(_) if image.is_some() => {
                return Err(ServerError::Config(
                    "a snapshot cannot be loaded into a store the caller built".to_string(),
                ))
            }
            StorageConfig::Custom(s) => s,
        };
        // Started above unless the store is sled's (a no-op then).
        kubox_openapi::Schemas::preload();
        let Ok(pki) = pki_made_rx.await else {
            // Not made: the task's error says why.
            if let Some(task) = pki_written {
                task.await.map_err(std::io::Error::other)??;
            }
            return Err(std::io::Error::other("the PKI was not made").into());
        };
        // The CAs client certificates are verified with: kubox's own, then the given bundle.
        let client_ca_bundle = match &extra_client_ca {
            Some(extra) => format!("{}\n{}", pki.ca_pem().trim_end(), extra.trim()),
            None => pki.ca_pem().to_string(),
        };
        let admin = pki.issue_client_cert(ADMIN_USER, &[crate::authn::MASTERS])?;
        let credential = if self.insecure_http {
            // No TLS, no client certificate: the kubeconfig's admin gets a token instead.
            let token = uuid::Uuid::new_v4().simple().to_string();
            static_tokens.insert(
                token.clone(),
                UserInfo {
                    username: ADMIN_USER.to_string(),
                    groups: vec![crate::authn::MASTERS.to_string()],
                    ..Default::default()
                },
            );
            Credential::Token(token)
        } else {
            Credential::ClientCert {
                cert_pem: admin.cert_pem.clone(),
                key_pem: admin.key_pem.clone(),
            }
        };
        if former_layout_possible {
            let moved = crate::registry::migrate_former_layout(&store).await?;
            if moved > 0 {
                tracing::info!(moved, "objects moved to kube-apiserver's key layout");
            }
        }
        let faults = Arc::new(crate::faults::Faults::new(store.clone()));
        if let Some(spec) = self.faults.take() {
            faults
                .set(spec)
                .map_err(|e| ServerError::Config(format!("faults: {e}")))?;
        }
        let listener = TcpListener::bind(self.listen).await?;
        let addr = listener.local_addr()?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let service_accounts = Arc::new(ServiceAccountTokens::new(
            pki.service_account_key_pem(),
            store.clone(),
            self.clock.clone(),
        )?);
        let api_audiences = vec![crate::authn::serviceaccount::ISSUER.to_string()];
        let tokens = Arc::new(TokenUnion {
            authenticators: vec![Arc::new(static_tokens), service_accounts.clone()],
        });
        let authentication = Arc::new(Authentication {
            request: vec![
                Arc::new(crate::authn::x509::ClientCert),
                Arc::new(BearerToken {
                    tokens: tokens.clone(),
                    audiences: api_audiences.clone(),
                }),
            ],
            tokens,
            anonymous: self.anonymous_auth,
            api_audiences,
            service_accounts,
        });
        let rbac = Arc::new(Rbac::default());
        let authorizer = match &self.authorization {
            Authorization::Modes(modes) => crate::authz::build(modes, rbac.clone()),
            Authorization::Custom(a) => a.clone(),
        };
        let informers: Arc<crate::informer::Informers> = Default::default();
        let resolver = self
            .service_resolver
            .clone()
            .unwrap_or_else(|| Arc::new(crate::routing::EndpointsResolver::new(informers.clone())));
        let webhooks = Arc::new(WebhookClient::new(resolver.clone()));
        let aggregator = Arc::new(crate::aggregator::Aggregator::new(
            informers.clone(),
            resolver,
            pki.front_proxy().clone(),
        ));
        let backend = Arc::new(Backend {
            watch_caches: crate::watch_cache::WatchCaches::new(store.clone(), shutdown_rx.clone()),
            store: store.clone(),
            registry: Registry::builtin(),
            clock: self.clock.clone(),
            shutdown: shutdown_rx.clone(),
            crds: Default::default(),
            service_ips: Default::default(),
            webhooks: webhooks.clone(),
            garbage_collection: self
                .controllers
                .enabled
                .contains(Controller::GarbageCollector),
            kubelets: self.controllers.nodes.count > 0,
            authorizer,
            rbac: rbac.clone(),
            informers,
            names: self
                .name_seed
                .map_or_else(NameGenerator::random, NameGenerator::seeded),
            admission: crate::admission::Admission::new(
                &self.admission,
                self.webhook_caller.clone().unwrap_or(webhooks),
            ),
        });
        let state = Arc::new(ApiState {
            backend: backend.clone(),
            advertise_address: addr.to_string(),
            authentication,
            audit: match &self.audit_log {
                Some(path) => Some(Arc::new(crate::audit::AuditSink::open(
                    path,
                    self.audit_policy.clone().unwrap_or_default(),
                )?)),
                None => None,
            },
            metrics: Arc::default(),
            started: Default::default(),
            recording: self.recorder.is_some(),
            recorder: Arc::new(match &self.record_file {
                Some(path) => crate::recorder::Recorder::with_file(
                    self.recorder.clone().unwrap_or_default(),
                    path,
                )?,
                None => crate::recorder::Recorder::new(self.recorder.clone().unwrap_or_default()),
            }),
            faults: faults.clone(),
            aggregator: aggregator.clone(),
        });
        let informer_tasks = backend.informers.start(&store, &shutdown_rx).await;
        let client_ca = (!self.insecure_http).then_some(client_ca_bundle.as_str());
        // Together, so that a store committing in groups syncs them together.
        futures::future::try_join(
            crate::bootstrap::run(&backend, client_ca.map(|ca| (ca, pki.front_proxy()))),
            crate::aggregator::register_builtin(&backend),
        )
        .await
        .map_err(|e| std::io::Error::other(e.message))?;
        let rbac_rev = crate::authz::rbac::load_all(&backend, &rbac)
            .await
            .map_err(|e| std::io::Error::other(e.message))?;
        let crd_rev = crate::crd::load_all(&backend)
            .await
            .map_err(|e| std::io::Error::other(e.message))?;
        let chain = chain::build(
            state.clone(),
            self.limits,
            self.connection_limits.request_timeout,
        );
        let tls = if self.insecure_http {
            None
        } else {
            Some(pki.tls_serving(&client_ca_bundle)?)
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let ca = tls.as_ref().map(|_| pki.ca_pem());
        let kubeconfig = crate::kubeconfig::render(&format!("{scheme}://{addr}"), ca, &credential);
        // The kubeconfig is written once the PKI whose CA it trusts is, while start-up goes
        // on: a client may read it and connect early.
        let files_written = {
            let path = self.kubeconfig_path.clone();
            let text = kubeconfig.clone();
            tokio::spawn(async move {
                if let Some(written) = pki_written {
                    written.await.map_err(std::io::Error::other)??;
                }
                if let Some(path) = path {
                    tokio::task::spawn_blocking(move || {
                        crate::files::write_private(&path, text.as_bytes())
                    })
                    .await
                    .map_err(std::io::Error::other)??;
                }
                Ok::<(), ServerError>(())
            })
        };
        // Connections are accepted from here on, so that a client's TLS handshake overlaps
        // the rest of start-up; their requests wait until the server is open (below).
        let (open, opened) = watch::channel(false);
        let mut tasks = vec![
            tokio::spawn(crate::conn::accept_loop(
                listener,
                tls.clone(),
                chain.clone(),
                self.connection_limits.clone(),
                shutdown_rx.clone(),
                opened,
            )),
            tokio::spawn(compaction_loop(
                store.clone(),
                compaction,
                shutdown_rx.clone(),
            )),
            tokio::spawn(crate::crd::run(backend.clone(), crd_rev)),
            tokio::spawn(crate::authz::rbac::run(backend.clone(), rbac, rbac_rev)),
            tokio::spawn(crate::aggregator::available::run(
                backend.clone(),
                aggregator,
            )),
        ];
        tasks.extend(informer_tasks);
        self.controllers.root_ca = pki.ca_pem().to_string();
        let controllers = match self.leader_election.clone() {
            Some(election) if self.controllers.enabled.iter().next().is_some() => {
                // Replicas on one store: the controllers run where the lease is held.
                let controllers = Controllers::idle(store.clone(), self.clock.clone());
                let (term_backend, opts, signer) = (
                    backend.clone(),
                    self.controllers.clone(),
                    state.authentication.service_accounts.clone(),
                );
                tasks.push(tokio::spawn(crate::leader::run(
                    backend.clone(),
                    election,
                    controllers.clone(),
                    move |stop| crate::controllers::start(&term_backend, &opts, &signer, stop),
                )));
                controllers
            }
            _ => {
                let (controllers, controller_tasks) = crate::controllers::start(
                    &backend,
                    &self.controllers,
                    &state.authentication.service_accounts,
                    backend.shutdown.clone(),
                );
                tasks.extend(controller_tasks);
                // Like a cluster that is up: the controllers have handled what the store holds
                // (every namespace has its default ServiceAccount and kube-root-ca.crt) before
                // clients come.
                controllers.settled().await;
                controllers
            }
        };
        // Requests are served once start-up's files and writes are durable: the PKI made and
        // the kubeconfig (above), beside the store's sync.
        let files_written = async {
            files_written
                .await
                .map_err(|e| ServerError::from(std::io::Error::other(e)))?
        };
        let store_synced = async {
            if let Some(sled) = deferred_syncs {
                sled.end_deferred_syncs().await?;
            }
            Ok::<(), ServerError>(())
        };
        futures::future::try_join(files_written, store_synced).await?;
        state
            .started
            .store(true, std::sync::atomic::Ordering::Release);
        let _ = open.send(true);
        Ok(ServerHandle {
            addr,
            scheme,
            pki,
            state: state.clone(),
            kubeconfig,
            kubeconfig_path: self.kubeconfig_path,
            service: chain.service(),
            store,
            shutdown_tx,
            tasks,
            controllers,
        })
    }
}

/// A running server.
pub struct ServerHandle {
    addr: SocketAddr,
    scheme: &'static str,
    pki: Arc<Pki>,
    state: Arc<ApiState>,
    kubeconfig: String,
    kubeconfig_path: Option<PathBuf>,
    service: ApiService,
    store: DynStore,
    shutdown_tx: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    controllers: Controllers,
}

impl ServerHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://127.0.0.1:PORT` (`http://` with [`ServerBuilder::insecure_http`]).
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// The CA certificate (PEM): it signed the serving certificate and signs accepted client
    /// certificates.
    pub fn ca_pem(&self) -> &str {
        self.pki.ca_pem()
    }

    /// A client certificate (and its key) the server accepts, for `user` in `groups` (at most
    /// two groups).
    pub fn client_cert(&self, user: &str, groups: &[&str]) -> Result<CertAndKey, ServerError> {
        Ok(self.pki.issue_client_cert(user, groups)?)
    }

    /// A kubeconfig for this server that authenticates as `user` in `groups` with a client
    /// certificate (over plain HTTP: not possible, an error).
    pub fn kubeconfig_for(&self, user: &str, groups: &[&str]) -> Result<String, ServerError> {
        if self.scheme != "https" {
            return Err(ServerError::Config(
                "client certificates need TLS; the server serves plain HTTP".to_string(),
            ));
        }
        let c = self.client_cert(user, groups)?;
        Ok(crate::kubeconfig::render(
            &self.url(),
            Some(self.ca_pem()),
            &Credential::ClientCert {
                cert_pem: c.cert_pem,
                key_pem: c.key_pem,
            },
        ))
    }

    /// A bound token of the ServiceAccount `namespace/name` (which must exist) for the API's
    /// audiences, valid for `expiration` from the server clock's now.
    pub async fn service_account_token(
        &self,
        namespace: &str,
        name: &str,
        expiration: Duration,
    ) -> Result<String, ServerError> {
        let key =
            crate::registry::storage_prefix("", "serviceaccounts") + &format!("{namespace}/{name}");
        let kv = self.store.get(&key, None).await?;
        let sa = crate::objects::from_stored(&kv).map_err(|e| ServerError::Api(e.message))?;
        let authn = &self.state.authentication;
        let (token, _) = authn
            .service_accounts
            .issue(
                namespace,
                &sa,
                &authn.api_audiences,
                expiration.as_secs() as i64,
                None,
            )
            .map_err(|e| ServerError::Api(e.message))?;
        Ok(token)
    }

    /// The kubeconfig (YAML) that reaches this server.
    pub fn kubeconfig(&self) -> &str {
        &self.kubeconfig
    }

    /// Where the kubeconfig was written, if anywhere.
    pub fn kubeconfig_path(&self) -> Option<&std::path::Path> {
        self.kubeconfig_path.as_deref()
    }

    /// The API as a tower service, for in-process requests without a socket.
    pub fn service(&self) -> ApiService {
        self.service.clone()
    }

    /// The store.
    pub fn store(&self) -> DynStore {
        self.store.clone()
    }

    /// Every request the server answered (when recording is on, as it is by default in
    /// process): count, list and wait for them in tests.
    pub fn recorder(&self) -> &crate::recorder::Recorder {
        &self.state.recorder
    }

    /// The injected fault rules: add, report, clear.
    ///
    /// ```
    /// # async fn demo() -> Result<(), kubox::server::ServerError> {
    /// use kubox::faults::{Action, Match, Rule, StatusFault};
    /// let server = kubox::Server::builder().start().await?;
    /// // The next two status updates of any Deployment are answered 409 Conflict.
    /// let rule = server
    ///     .faults()
    ///     .add(
    ///         Rule::new(
    ///             Match { subresource: Some("status".into()), ..Match::verb_resource("update", "deployments") },
    ///             Action::Status(StatusFault { code: 409, reason: None, message: None, retry_after_seconds: None }),
    ///         )
    ///         .times(2),
    ///     )
    ///     .expect("a valid rule");
    /// assert_eq!(server.faults().fired(rule), 0);
    /// # server.shutdown().await?; Ok(()) }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
    /// ```
    pub fn faults(&self) -> &crate::faults::Faults {
        &self.state.faults
    }

    /// A consistent image of everything the server holds, at its current revision, with its
    /// keys and certificates: start servers from it with [`ServerBuilder::from_snapshot`], or
    /// [`crate::snapshot::Snapshot::save`] it.
    pub async fn snapshot(&self) -> Result<crate::snapshot::Snapshot, ServerError> {
        let image = kubox_storage::Image::read(self.store.as_ref()).await?;
        Ok(crate::snapshot::Snapshot {
            image,
            pki: Some(self.pki.clone()),
        })
    }

    /// The built-in controllers that run.
    pub fn controllers(&self) -> &Controllers {
        &self.controllers
    }

    /// Wait until the built-in controllers have nothing left to do: for the store's current
    /// revision, every running controller has observed every change, has nothing queued or
    /// waiting for a retry and no timed work (event expiry) due at the server clock's current
    /// time, and the store has not moved meanwhile (so their own writes were handled too).
    /// Never sleeps for a fixed time; returns at once when no controller runs. Work that waits
    /// on someone else (a finalizer nobody removes) does not hold it.
    pub async fn settled(&self) {
        self.controllers.settled().await;
    }

    /// Stop accepting, end watches, flush and close storage.
    pub async fn shutdown(self) -> Result<(), ServerError> {
        let _ = self.shutdown_tx.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        self.store.close().await?;
        Ok(())
    }
}

/// Compact history by `policy` every ten seconds (the default policy keeps five minutes of
/// history, or less when it grows past its byte bound); `None`: never.
async fn compaction_loop(
    store: DynStore,
    policy: Option<CompactionPolicy>,
    mut shutdown: watch::Receiver<bool>,
) {
    let Some(policy) = policy else {
        return;
    };
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    tick.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tick.tick() => {
                // A store that refuses writes cannot compact either; /readyz says why.
                if store.health().is_err() {
                    continue;
                }
                if let Err(e) = store.compact_by_policy(policy).await {
                    tracing::warn!(error = %e, "compaction failed");
                }
            }
        }
    }
}
