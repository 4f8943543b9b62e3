//! Passing a request on to an extension API server, as kube-aggregator's proxy handler does.
//!
//! The request has been authenticated, impersonated and authorized by kubox. It goes on over
//! TLS (trusting the APIService's caBundle, the system roots without one, or nothing with
//! `insecureSkipTLSVerify`; the certificate must name `<service>.<namespace>.svc`), with kubox's
//! front-proxy client certificate and the caller's identity in `X-Remote-User`,
//! `X-Remote-Group` and `X-Remote-Extra-*` — and without the caller's own credentials or
//! impersonation headers. The answer comes back as the extension server wrote it, streamed
//! (watches included). A discovery request (`/apis/<group>/<version>`) gets 5 seconds.
//! Unavailable APIServices answer 503 `service unavailable` as kube's does; upgrade requests
//! (exec, attach, port-forward) are refused.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::{header, HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper_rustls::{ConfigBuilderExt, HttpsConnector};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::{Aggregator, Remote};
use crate::authn::UserInfo;
use crate::body::Body;

/// A cached client's key: the caBundle, whether verification is skipped, the server name.
pub type ClientKey = (Vec<u8>, bool, String);

/// An HTTPS client presenting the front-proxy certificate.
pub type HttpsClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The most clients kept (one per distinct caBundle and service).
const MAX_CLIENTS: usize = 200;

/// How long a discovery request to an extension server may take (kube's).
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// Marks an answer that came from an extension server: the chain leaves its bytes alone.
#[derive(Debug, Clone, Copy)]
pub struct Proxied;

/// Hop-by-hop headers: they describe one connection, never passed on either way.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Request headers that are not passed on: hop-by-hop ones, the host and length (the new
/// request has its own), the caller's credentials and impersonation, and any front-proxy
/// header the caller sent itself.
fn dropped(name: &HeaderName) -> bool {
    let n = name.as_str();
    HOP_BY_HOP.contains(&n)
        || matches!(n, "host" | "content-length" | "authorization")
        || n.starts_with("impersonate-")
        || n.starts_with("x-remote-")
}

/// Percent-encode what may not stand in a header name (kube's `headerKeyEscape`).
fn escape_extra_key(key: &str) -> String {
    let mut out = String::new();
    for b in key.bytes() {
        let legal = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'!' | b'#'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        if legal {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The caller's identity as front-proxy headers.
pub fn identity_headers(headers: &mut HeaderMap, user: &UserInfo) {
    if let Ok(v) = HeaderValue::from_str(&user.username) {
        headers.insert("x-remote-user", v);
    }
    for g in &user.groups {
        if let Ok(v) = HeaderValue::from_str(g) {
            headers.append("x-remote-group", v);
        }
    }
    for (k, values) in &user.extra {
        let Ok(name) =
            HeaderName::from_bytes(format!("x-remote-extra-{}", escape_extra_key(k)).as_bytes())
        else {
            continue;
        };
        for value in values {
            if let Ok(v) = HeaderValue::from_str(&urlencoding_value(value)) {
                headers.append(name.clone(), v);
            }
        }
    }
}

/// Extra values are URL-escaped on the wire (kube's `url.PathEscape`).
fn urlencoding_value(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'@'
            )
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// kube's `http.Error`: a plain-text answer.
pub fn plain(code: StatusCode, message: &str) -> Response<Body> {
    let mut resp = Response::new(crate::body::full(format!("{message}\n")));
    *resp.status_mut() = code;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    resp.extensions_mut().insert(Proxied);
    resp
}

fn is_upgrade(req: &Request<Bytes>) -> bool {
    req.headers().contains_key(header::UPGRADE)
        || req
            .headers()
            .get(header::CONNECTION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains("upgrade"))
}

impl Aggregator {
    /// Pass `req` (from `user`) to the extension server behind `remote`.
    pub async fn proxy(
        &self,
        remote: &Remote,
        req: Request<Bytes>,
        user: &UserInfo,
        discovery: bool,
    ) -> Response<Body> {
        if !remote.available {
            return plain(StatusCode::SERVICE_UNAVAILABLE, "service unavailable");
        }
        if is_upgrade(&req) {
            let err = crate::status::ApiError::bad_request(format!(
                "upgrade requests (exec, attach, port-forward) to the aggregated API served by APIService {:?} are not supported",
                remote.name
            ));
            let mut resp = crate::body::error_response(&err);
            resp.extensions_mut().insert(Proxied);
            return resp;
        }
        let base = match self
            .resolver
            .resolve(&remote.namespace, &remote.service, remote.port)
        {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(apiservice = %remote.name, error = %e, "cannot resolve the extension server");
                return plain(StatusCode::SERVICE_UNAVAILABLE, "service unavailable");
            }
        };
        let client = match self.client(remote) {
            Ok(c) => c,
            Err(e) => return plain(StatusCode::INTERNAL_SERVER_ERROR, &e),
        };
        let (parts, body) = req.into_parts();
        let client_ip = parts
            .extensions
            .get::<crate::authn::Peer>()
            .map(|p| p.addr.ip().to_string());
        let path_and_query = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let url = format!("{}{path_and_query}", base.trim_end_matches('/'));
        let mut out = Request::builder().method(parts.method.clone()).uri(&url);
        if let Some(h) = out.headers_mut() {
            for (name, value) in parts.headers.iter() {
                if !dropped(name) {
                    h.append(name.clone(), value.clone());
                }
            }
            identity_headers(h, user);
            // The caller's address appended, as Go's reverse proxy does (extension servers
            // audit it as a source IP).
            if let Some(ip) = &client_ip {
                let forwarded = match h.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
                    Some(prior) => format!("{prior}, {ip}"),
                    None => ip.clone(),
                };
                if let Ok(v) = HeaderValue::from_str(&forwarded) {
                    h.insert("x-forwarded-for", v);
                }
            }
        }
        let out = match out.body(Full::new(body)) {
            Ok(r) => r,
            Err(e) => return plain(StatusCode::BAD_GATEWAY, &e.to_string()),
        };
        let call = client.request(out);
        let resp = if discovery {
            match tokio::time::timeout(DISCOVERY_TIMEOUT, call).await {
                Ok(r) => r,
                Err(_) => return plain(StatusCode::SERVICE_UNAVAILABLE, "request timed out"),
            }
        } else {
            call.await
        };
        match resp {
            Ok(resp) => {
                let (mut parts, incoming) = resp.into_parts();
                for h in HOP_BY_HOP {
                    parts.headers.remove(*h);
                }
                // Streamed as it comes (a watch for as long as both ends keep it); a failure
                // midway ends the body, a client gone ends the upstream request.
                let (tx, rx) = tokio::sync::mpsc::channel::<Frame<Bytes>>(16);
                tokio::spawn(async move {
                    let mut incoming = incoming;
                    while let Some(Ok(frame)) = incoming.frame().await {
                        if tx.send(frame).await.is_err() {
                            return;
                        }
                    }
                });
                let body: Body = BodyExt::boxed(StreamBody::new(
                    tokio_stream::wrappers::ReceiverStream::new(rx).map(Ok::<_, Infallible>),
                ));
                let mut resp = Response::from_parts(parts, body);
                resp.extensions_mut().insert(Proxied);
                resp
            }
            Err(e) => plain(
                StatusCode::SERVICE_UNAVAILABLE,
                &crate::webhook::error_chain_text(&e),
            ),
        }
    }

    /// GET `path` from the extension server behind `remote` as kube-aggregator checks one:
    /// as `system:kube-aggregator` in `system:masters`. The body of a 2xx answer.
    pub async fn get_from(&self, remote: &Remote, path: &str) -> Result<Bytes, String> {
        let base = self
            .resolver
            .resolve(&remote.namespace, &remote.service, remote.port)?;
        let url = format!("{}{path}", base.trim_end_matches('/'));
        let client = self.client(remote)?;
        let mut req = Request::get(&url);
        if let Some(h) = req.headers_mut() {
            identity_headers(
                h,
                &UserInfo {
                    username: "system:kube-aggregator".into(),
                    groups: vec!["system:masters".into()],
                    ..Default::default()
                },
            );
            h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        }
        let req = req
            .body(Full::new(Bytes::new()))
            .map_err(|e| e.to_string())?;
        let call = async {
            let resp = client
                .request(req)
                .await
                .map_err(|e| format!("Get \"{url}\": {}", crate::webhook::error_chain_text(&e)))?;
            let status = resp.status();
            let body = http_body_util::Limited::new(resp.into_body(), 8 << 20)
                .collect()
                .await
                .map_err(|e| format!("Get \"{url}\": {e}"))?
                .to_bytes();
            if !status.is_success() {
                return Err(format!("bad status from {url}: {}", status.as_u16()));
            }
            Ok(body)
        };
        match tokio::time::timeout(DISCOVERY_TIMEOUT, call).await {
            Ok(r) => r.map_err(|e| format!("failing or missing response from {url}: {e}")),
            Err(_) => Err(format!("timed out waiting for {url}")),
        }
    }

    fn client(&self, remote: &Remote) -> Result<HttpsClient, String> {
        let key: ClientKey = (
            remote.ca_bundle.clone(),
            remote.insecure,
            remote.server_name(),
        );
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(c) = clients.get(&key) {
            return Ok(c.clone());
        }
        let c = build_client(
            &remote.ca_bundle,
            remote.insecure,
            &remote.server_name(),
            &self.front_proxy,
        )?;
        if clients.len() >= MAX_CLIENTS {
            let victim = clients.keys().next().cloned();
            if let Some(v) = victim {
                clients.remove(&v);
            }
        }
        clients.insert(key, c.clone());
        Ok(c)
    }
}

fn build_client(
    ca_bundle: &[u8],
    insecure: bool,
    server_name: &str,
    identity: &crate::pki::FrontProxy,
) -> Result<HttpsClient, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
    } else if ca_bundle.is_empty() {
        builder
            .with_native_roots()
            .map_err(|e| format!("system trust roots: {e}"))?
    } else {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_bundle) {
            let cert = cert.map_err(|e| format!("caBundle is not PEM: {e}"))?;
            roots.add(cert).map_err(|e| format!("caBundle: {e}"))?;
        }
        builder.with_root_certificates(roots)
    };
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(identity.client.cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
    let key = PrivateKeyDer::from_pem_slice(identity.client.key_pem.as_bytes())
        .map_err(|e| e.to_string())?;
    let tls = builder
        .with_client_auth_cert(chain, key)
        .map_err(|e| e.to_string())?;
    let name = rustls_pki_types::ServerName::try_from(server_name.to_string())
        .map_err(|e| format!("server name {server_name:?}: {e}"))?;
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name))
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

/// `insecureSkipTLSVerify`: any certificate is accepted (signatures are still checked).
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_goes_in_front_proxy_headers_and_credentials_stay_behind() {
        let mut h = HeaderMap::new();
        let user = UserInfo {
            username: "jane".into(),
            groups: vec!["dev".into(), "system:authenticated".into()],
            extra: [(
                "scopes.example.com/a b".to_string(),
                vec!["x/y".to_string()],
            )]
            .into_iter()
            .collect(),
            ..Default::default()
        };
        identity_headers(&mut h, &user);
        assert_eq!(h["x-remote-user"], "jane");
        let groups: Vec<_> = h.get_all("x-remote-group").iter().collect();
        assert_eq!(groups, ["dev", "system:authenticated"]);
        assert_eq!(h["x-remote-extra-scopes.example.com%2Fa%20b"], "x%2Fy");
        for n in [
            "authorization",
            "impersonate-user",
            "x-remote-user",
            "connection",
        ] {
            assert!(dropped(&HeaderName::from_static(n)), "{n}");
        }
        assert!(!dropped(&header::ACCEPT));
    }
}
