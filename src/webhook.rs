//! Calling webhooks: POST a JSON review over HTTPS and read the JSON reply.
//!
//! One client for every webhook kube-apiserver calls (CRD conversion now, admission later). A
//! webhook is named by a `clientConfig` as in `apiextensions.k8s.io/v1` and
//! `admissionregistration.k8s.io/v1`: a `url`, or a `service` reference resolved by the
//! server's [`ServiceResolver`] (by default through the Service's EndpointSlices, as
//! kube-apiserver's endpoint routing: [`crate::routing`]),
//! and a `caBundle` (base64 PEM) that is the only trust root when set; the system roots are used
//! when it is empty. For a service the certificate must name `<service>.<namespace>.svc`, as
//! kube-apiserver requires. HTTPS clients are cached per (caBundle, server name).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::{header, Request};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::{ConfigBuilderExt, HttpsConnector};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use serde_json::Value;

/// A webhook reply larger than this is refused.
const MAX_REPLY_BYTES: usize = 3 * 1024 * 1024;

/// Maps a service reference to the base URL it is reached at.
pub trait ServiceResolver: Send + Sync {
    /// `https://host:port` for port `port` of service `namespace/name`.
    fn resolve(&self, namespace: &str, name: &str, port: u16) -> Result<String, String>;
}

/// A resolver that reaches no service (a server that must never call out through one).
pub struct NoServiceResolver;

impl ServiceResolver for NoServiceResolver {
    fn resolve(&self, namespace: &str, name: &str, _port: u16) -> Result<String, String> {
        Err(format!(
            "service \"{namespace}/{name}\" cannot be reached: this server runs no pods; \
             use a url in the clientConfig or configure a service resolver"
        ))
    }
}

/// A service reference of a clientConfig.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceReference {
    /// Namespace of the service.
    pub namespace: String,
    /// Name of the service.
    pub name: String,
    /// URL path (`/convert`), empty for `/`.
    pub path: String,
    /// Port (443 when unset).
    pub port: u16,
}

/// Where a webhook is and whom to trust: `clientConfig` of a CRD conversion webhook or an
/// admission webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// An `https://` URL.
    pub url: Option<String>,
    /// A service reference.
    pub service: Option<ServiceReference>,
    /// PEM certificates trusted for the webhook's serving certificate (empty: system roots).
    pub ca_bundle: Vec<u8>,
}

impl ClientConfig {
    /// Read a `clientConfig` object.
    pub fn from_json(v: &Value) -> Result<ClientConfig, String> {
        let url = v["url"]
            .as_str()
            .filter(|u| !u.is_empty())
            .map(str::to_string);
        let service = v
            .get("service")
            .filter(|s| s.is_object())
            .map(|s| ServiceReference {
                namespace: s["namespace"].as_str().unwrap_or_default().to_string(),
                name: s["name"].as_str().unwrap_or_default().to_string(),
                path: s["path"].as_str().unwrap_or_default().to_string(),
                port: s["port"]
                    .as_u64()
                    .and_then(|p| u16::try_from(p).ok())
                    .unwrap_or(443),
            });
        let ca_bundle = match v["caBundle"].as_str().filter(|c| !c.is_empty()) {
            Some(b) => base64::engine::general_purpose::STANDARD
                .decode(b)
                .map_err(|e| format!("caBundle is not base64: {e}"))?,
            None => Vec::new(),
        };
        if url.is_some() == service.is_some() {
            return Err("exactly one of url or service is required".into());
        }
        Ok(ClientConfig {
            url,
            service,
            ca_bundle,
        })
    }
}

/// Why a webhook call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WebhookError {
    /// The clientConfig cannot be used (bad URL, bad caBundle, unresolvable service).
    #[error("{0}")]
    Config(String),
    /// No connection or no reply (refused, TLS failure, connection reset).
    #[error("Post \"{url}\": {message}")]
    Connection {
        /// The URL called.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// No reply within the timeout.
    #[error("Post \"{url}\": context deadline exceeded")]
    Timeout {
        /// The URL called.
        url: String,
    },
    /// The webhook answered with a status other than 200.
    #[error(
        "the server responded with the status code {code} but did not return more information"
    )]
    Status {
        /// HTTP status code.
        code: u16,
        /// The reply body.
        body: String,
    },
    /// The reply is not the JSON expected.
    #[error("{0}")]
    Body(String),
}

type HttpsClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The most HTTPS clients kept (kube-apiserver's webhook client cache size).
const MAX_CACHED_CLIENTS: usize = 200;

/// A cached client's key: the caBundle and the server name the certificate must carry.
type ClientKey = (Vec<u8>, Option<String>);

/// Calls webhooks; one per server, shared by everything that calls out.
pub struct WebhookClient {
    resolver: Arc<dyn ServiceResolver>,
    clients: Mutex<HashMap<ClientKey, HttpsClient>>,
}

impl WebhookClient {
    /// A client resolving service references with `resolver`.
    pub fn new(resolver: Arc<dyn ServiceResolver>) -> Self {
        WebhookClient {
            resolver,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// POST `body` as JSON to the webhook (with `?timeout=` as client-go adds it) and return its JSON reply; the whole call (connect,
    /// TLS, reply) is bounded by `timeout`.
    pub async fn post(
        &self,
        config: &ClientConfig,
        body: &Value,
        timeout: Duration,
    ) -> Result<Value, WebhookError> {
        let (url, server_name) = self.target(config)?;
        // kube-apiserver tells the webhook how long it waits (client-go's `?timeout=`), and
        // its errors name the URL with it.
        let url = with_timeout(&url, timeout);
        let client = self.client(&config.ca_bundle, server_name)?;
        let payload = kubox_apimachinery::json_text::to_vec(body)
            .map_err(|e| WebhookError::Body(e.to_string()))?;
        let req = Request::post(url.as_str())
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json, */*")
            .body(Full::new(Bytes::from(payload)))
            .map_err(|e| WebhookError::Config(format!("invalid webhook URL {url:?}: {e}")))?;
        let call = async {
            let resp = client
                .request(req)
                .await
                .map_err(|e| WebhookError::Connection {
                    url: url.clone(),
                    message: error_chain(&e),
                })?;
            let status = resp.status();
            let bytes = Limited::new(resp.into_body(), MAX_REPLY_BYTES)
                .collect()
                .await
                .map_err(|e| WebhookError::Connection {
                    url: url.clone(),
                    message: e.to_string(),
                })?
                .to_bytes();
            Ok::<_, WebhookError>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(timeout, call)
            .await
            .map_err(|_| WebhookError::Timeout { url: url.clone() })??;
        if status != http::StatusCode::OK {
            return Err(WebhookError::Status {
                code: status.as_u16(),
                body: String::from_utf8_lossy(&bytes).into_owned(),
            });
        }
        if bytes.is_empty() {
            return Err(WebhookError::Body(format!(
                "0-length response with status code: {} and content type: application/json",
                status.as_u16()
            )));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| WebhookError::Body(format!("the webhook reply is not JSON: {e}")))
    }

    /// The URL to call and, for a service, the name its certificate must carry.
    fn target(&self, config: &ClientConfig) -> Result<(String, Option<String>), WebhookError> {
        if let Some(url) = &config.url {
            if !url.starts_with("https://") {
                return Err(WebhookError::Config(format!(
                    "webhook URL {url:?} must use the https scheme"
                )));
            }
            return Ok((url.clone(), None));
        }
        let Some(svc) = &config.service else {
            return Err(WebhookError::Config(
                "the clientConfig has neither url nor service".into(),
            ));
        };
        let base = self
            .resolver
            .resolve(&svc.namespace, &svc.name, svc.port)
            .map_err(WebhookError::Config)?;
        let path = if svc.path.starts_with('/') {
            svc.path.clone()
        } else {
            format!("/{}", svc.path)
        };
        Ok((
            format!("{}{path}", base.trim_end_matches('/')),
            Some(format!("{}.{}.svc", svc.name, svc.namespace)),
        ))
    }

    /// The cached HTTPS client for this trust root and server name.
    fn client(
        &self,
        ca_bundle: &[u8],
        server_name: Option<String>,
    ) -> Result<HttpsClient, WebhookError> {
        let key = (ca_bundle.to_vec(), server_name);
        if let Ok(clients) = self.clients.lock() {
            if let Some(c) = clients.get(&key) {
                return Ok(c.clone());
            }
        }
        let client = build_client(ca_bundle, key.1.clone())?;
        if let Ok(mut clients) = self.clients.lock() {
            // Bounded (kube's webhook client cache holds 200): rotating CA bundles must not
            // add clients forever. A full cache forgets one client to make room.
            if clients.len() >= MAX_CACHED_CLIENTS {
                let victim = clients.keys().next().cloned();
                if let Some(victim) = victim {
                    clients.remove(&victim);
                }
            }
            clients.insert(key, client.clone());
        }
        Ok(client)
    }
}

fn build_client(
    ca_bundle: &[u8],
    server_name: Option<String>,
) -> Result<HttpsClient, WebhookError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| WebhookError::Config(e.to_string()))?;
    let tls = if ca_bundle.is_empty() {
        builder
            .with_native_roots()
            .map_err(|e| WebhookError::Config(format!("system trust roots: {e}")))?
            .with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_bundle) {
            let cert =
                cert.map_err(|e| WebhookError::Config(format!("caBundle is not PEM: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| WebhookError::Config(format!("caBundle: {e}")))?;
        }
        if roots.is_empty() {
            return Err(WebhookError::Config("caBundle holds no certificate".into()));
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only();
    let connector = match server_name {
        Some(name) => {
            let name = rustls_pki_types::ServerName::try_from(name.clone())
                .map_err(|e| WebhookError::Config(format!("server name {name:?}: {e}")))?;
            connector.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name))
        }
        None => connector,
    };
    let connector = connector.enable_http1().build();
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

/// An error and its sources on one line (`client error (Connect): tcp connect error: …`).
pub(crate) fn error_chain_text<E: std::error::Error + 'static>(e: &E) -> String {
    error_chain(e)
}

/// An error and its sources, as Go prints a wrapped error (`client error (Connect): tcp connect
/// error: Connection refused`).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let m = s.to_string();
        if !out.contains(&m) {
            out.push_str(": ");
            out.push_str(&m);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_client_cache_is_bounded_whatever_the_bundles_and_names() {
        let key = rcgen::KeyPair::generate().unwrap();
        let ca = rcgen::CertificateParams::new(vec!["ca.example".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap()
            .pem();
        let w = WebhookClient::new(Arc::new(NoServiceResolver));
        for i in 0..(MAX_CACHED_CLIENTS + 50) {
            w.client(ca.as_bytes(), Some(format!("s{i}.example")))
                .unwrap();
        }
        assert_eq!(w.clients.lock().unwrap().len(), MAX_CACHED_CLIENTS);
    }

    #[test]
    fn a_client_config_names_exactly_one_of_url_or_service_and_decodes_the_ca_bundle() {
        let c = ClientConfig::from_json(&json!({"service": {"namespace": "ns", "name": "hook"},
            "caBundle": "UEVN"}))
        .unwrap();
        assert_eq!(c.ca_bundle, b"PEM");
        assert_eq!(
            c.service,
            Some(ServiceReference {
                namespace: "ns".into(),
                name: "hook".into(),
                path: String::new(),
                port: 443
            })
        );
        assert!(ClientConfig::from_json(&json!({})).is_err());
        assert!(
            ClientConfig::from_json(&json!({"url": "https://a", "service": {"name": "b"}}))
                .is_err()
        );
        assert!(ClientConfig::from_json(&json!({"url": "https://a", "caBundle": "%%"})).is_err());
    }

    #[test]
    fn a_service_reference_is_resolved_and_must_present_its_service_name() {
        struct At;
        impl ServiceResolver for At {
            fn resolve(&self, _: &str, _: &str, port: u16) -> Result<String, String> {
                Ok(format!("https://10.0.0.1:{port}/"))
            }
        }
        let client = WebhookClient::new(Arc::new(At));
        let config =
            ClientConfig::from_json(&json!({"service": {"namespace": "ns", "name": "hook",
            "path": "convert", "port": 8443}}))
            .unwrap();
        assert_eq!(
            client.target(&config).unwrap(),
            (
                "https://10.0.0.1:8443/convert".to_string(),
                Some("hook.ns.svc".to_string())
            )
        );
        let none = WebhookClient::new(Arc::new(NoServiceResolver));
        assert!(matches!(none.target(&config), Err(WebhookError::Config(_))));
    }
}

/// `url` with client-go's `timeout` query parameter (a Go duration: `10s`, `1m30s`).
fn with_timeout(url: &str, timeout: Duration) -> String {
    let ms = timeout.as_millis();
    let value = if ms < 1000 {
        format!("{ms}ms")
    } else if !ms.is_multiple_of(1000) {
        format!("{}s", ms as f64 / 1000.0)
    } else {
        let secs = ms / 1000;
        match (secs / 3600, secs % 3600 / 60, secs % 60) {
            (0, 0, s) => format!("{s}s"),
            (0, m, s) => format!("{m}m{s}s"),
            (h, m, s) => format!("{h}h{m}m{s}s"),
        }
    };
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}timeout={value}")
}

#[cfg(test)]
mod timeout_tests {
    use super::*;

    #[test]
    fn the_timeout_parameter_is_a_go_duration() {
        assert_eq!(
            with_timeout("https://h/convert", Duration::from_secs(30)),
            "https://h/convert?timeout=30s"
        );
        assert_eq!(
            with_timeout("https://h/x?a=b", Duration::from_secs(90)),
            "https://h/x?a=b&timeout=1m30s"
        );
        assert_eq!(
            with_timeout("https://h/", Duration::from_millis(1500)),
            "https://h/?timeout=1.5s"
        );
        assert_eq!(
            with_timeout("https://h/", Duration::from_millis(300)),
            "https://h/?timeout=300ms"
        );
    }
}
