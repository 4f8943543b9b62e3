//! The embeddable server: `Server::builder()…start().await` gives a [`ServerHandle`] with its
//! address, a kubeconfig and `shutdown()`. No globals: many servers can run in one process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use kubox_storage::{Clock, CompactionPolicy, DynStore, SystemClock};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower::ServiceExt;

use crate::api::ApiState;
use crate::body::{error_response, Body};
use crate::chain::{self, ApiService, InFlightLimits};
use crate::controllers::{Controller, ControllerOptions, ControllerSet, Controllers};
use crate::registry::Registry;
use crate::status::ApiError;
use crate::webhook::{NoServiceResolver, ServiceResolver, WebhookClient};

/// Request bodies above this size are refused with 413 (kube-apiserver's limit).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// Where objects are kept.
#[derive(Clone)]
pub enum StorageConfig {
    /// In memory, gone at shutdown.
    Memory,
    /// The embedded sled store in this directory.
    Sled(PathBuf),
    /// A store the caller built.
    Custom(DynStore),
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
}

/// Builds a [`Server`].
pub struct ServerBuilder {
    listen: SocketAddr,
    storage: StorageConfig,
    clock: Arc<dyn Clock>,
    kubeconfig_path: Option<PathBuf>,
    limits: InFlightLimits,
    controllers: ControllerOptions,
    admission: crate::admission::AdmissionConfig,
    audit_log: Option<PathBuf>,
    audit_policy: Option<crate::audit::Policy>,
    webhook_caller: Option<Arc<dyn crate::admission::webhook::WebhookCaller>>,
    service_resolver: Arc<dyn ServiceResolver>,
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
            controllers: ControllerOptions::default(),
            admission: Default::default(),
            audit_log: None,
            audit_policy: None,
            webhook_caller: None,
            service_resolver: Arc::new(NoServiceResolver),
        }
    }
}

impl ServerBuilder {
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

    /// How webhooks named by a service reference (`clientConfig.service`) are reached. kubox
    /// runs no pods, so by default such a webhook cannot be called; a test maps the service to
    /// the address its webhook listens on.
    pub fn service_resolver(mut self, resolver: Arc<dyn ServiceResolver>) -> Self {
        self.service_resolver = resolver;
        self
    }

    /// How long Events live after their creation (default 1 h, kube-apiserver's `--event-ttl`).
    pub fn event_ttl(mut self, ttl: Duration) -> Self {
        self.controllers.event_ttl = ttl;
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
    pub async fn start(self) -> Result<ServerHandle, ServerError> {
        let store: DynStore = match self.storage {
            StorageConfig::Memory => Arc::new(kubox_storage::memory::MemoryStore::with_clock(
                self.clock.clone(),
            )),
            StorageConfig::Sled(dir) => {
                std::fs::create_dir_all(&dir)?;
                let opts = kubox_storage::sled_store::SledOptions {
                    clock: self.clock.clone(),
                    ..Default::default()
                };
                Arc::new(kubox_storage::sled_store::SledStore::open_with(&dir, opts)?)
            }
            StorageConfig::Custom(s) => s,
        };
        let listener = TcpListener::bind(self.listen).await?;
        let addr = listener.local_addr()?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let webhooks = Arc::new(WebhookClient::new(self.service_resolver.clone()));
        let state = Arc::new(ApiState {
            store: store.clone(),
            registry: Registry::builtin(),
            clock: self.clock.clone(),
            advertise_address: addr.to_string(),
            shutdown: shutdown_rx.clone(),
            crds: Default::default(),
            service_ips: Default::default(),
            webhooks: webhooks.clone(),
            garbage_collection: self
                .controllers
                .enabled
                .contains(Controller::GarbageCollector),
            authorizer: Arc::new(crate::authz::AlwaysAllow),
            admission: crate::admission::Admission::new(
                &self.admission,
                self.webhook_caller.clone().unwrap_or(webhooks),
            ),
            audit: match &self.audit_log {
                Some(path) => Some(Arc::new(crate::audit::AuditSink::open(
                    path,
                    self.audit_policy.clone().unwrap_or_default(),
                )?)),
                None => None,
            },
        });
        crate::bootstrap::run(&state)
            .await
            .map_err(|e| std::io::Error::other(e.message))?;
        let crd_rev = crate::crd::load_all(&state)
            .await
            .map_err(|e| std::io::Error::other(e.message))?;
        let service = chain::build(state.clone(), self.limits);
        let kubeconfig = crate::kubeconfig::render(&format!("http://{addr}"));
        if let Some(path) = &self.kubeconfig_path {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(path, &kubeconfig)?;
        }
        let mut tasks = vec![
            tokio::spawn(accept_loop(listener, service.clone(), shutdown_rx.clone())),
            tokio::spawn(compaction_loop(store.clone(), shutdown_rx)),
            tokio::spawn(crate::crd::run(state.clone(), crd_rev)),
        ];
        let (controllers, controller_tasks) = crate::controllers::start(&state, &self.controllers);
        tasks.extend(controller_tasks);
        // Like a cluster that is up: the controllers have handled what the store holds (every
        // namespace has its default ServiceAccount and kube-root-ca.crt) before clients come.
        controllers.settled().await;
        Ok(ServerHandle {
            addr,
            kubeconfig,
            kubeconfig_path: self.kubeconfig_path,
            service,
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

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
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

async fn accept_loop(
    listener: TcpListener,
    service: ApiService,
    mut shutdown: watch::Receiver<bool>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let svc = service.clone();
                let hyper_svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let svc = svc.clone();
                    async move { Ok::<_, std::convert::Infallible>(handle(svc, req).await) }
                });
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), hyper_svc).into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
}

/// Read the whole body (bounded), then hand the request to the chain.
async fn handle(service: ApiService, req: Request<Incoming>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let bytes: Bytes = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                return error_response(&ApiError::too_large(MAX_BODY_BYTES));
            }
            return error_response(&ApiError::bad_request(format!(
                "error reading the request body: {e}"
            )));
        }
    };
    match service.oneshot(Request::from_parts(parts, bytes)).await {
        Ok(r) => r,
        Err(never) => match never {},
    }
}

/// Compact history on the storage's policy once a minute.
async fn compaction_loop(store: DynStore, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    tick.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tick.tick() => {
                if let Err(e) = store.compact_by_policy(CompactionPolicy::default()).await {
                    tracing::warn!(error = %e, "compaction failed");
                }
            }
        }
    }
}
