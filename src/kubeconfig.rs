//! The kubeconfig kubox writes: one cluster, one user, one context, all named `kubox`.

use base64::Engine;

/// How the kubeconfig's user authenticates.
#[derive(Debug, Clone)]
pub enum Credential {
    /// A client certificate and key (PEM).
    ClientCert {
        /// PEM certificate.
        cert_pem: String,
        /// PEM private key.
        key_pem: String,
    },
    /// A bearer token.
    Token(String),
}

/// Render a kubeconfig for a server URL, trusting `ca_pem` (for https) and authenticating
/// with `credential`.
pub fn render(server: &str, ca_pem: Option<&str>, credential: &Credential) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let ca = ca_pem
        .map(|c| format!("    certificate-authority-data: {}\n", b64(c)))
        .unwrap_or_default();
    let user = match credential {
        Credential::ClientCert { cert_pem, key_pem } => format!(
            "    client-certificate-data: {}\n    client-key-data: {}\n",
            b64(cert_pem),
            b64(key_pem)
        ),
        Credential::Token(t) => format!("    token: {t}\n"),
    };
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: kubox
  cluster:
    server: {server}
{ca}users:
- name: kubox
  user:
{user}contexts:
- name: kubox
  context:
    cluster: kubox
    user: kubox
    namespace: default
current-context: kubox
preferences: {{}}
"
    )
}

/// Where a kubeconfig's current context points and how it authenticates: what `kubox`'s own
/// commands (`kubox snapshot save`) need to talk to a server.
#[derive(Debug, Clone)]
pub struct Access {
    /// The server URL.
    pub server: String,
    /// The CA bundle to trust (PEM); None: the system's roots.
    pub ca_pem: Option<String>,
    /// The user's credential, if any.
    pub credential: Option<Credential>,
}

/// A kubeconfig that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("kubeconfig {path}: {message}")]
pub struct AccessError {
    path: String,
    message: String,
}

impl Access {
    /// The current context of the kubeconfig at `path`.
    pub fn load(path: &std::path::Path) -> Result<Access, AccessError> {
        let fail = |message: String| AccessError {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let doc: serde_yaml::Value =
            serde_yaml::from_str(&text).map_err(|e| fail(format!("not YAML: {e}")))?;
        let base = path.parent().unwrap_or(std::path::Path::new("."));
        Access::from_doc(&doc, base).map_err(fail)
    }

    fn from_doc(doc: &serde_yaml::Value, base: &std::path::Path) -> Result<Access, String> {
        let current = doc["current-context"]
            .as_str()
            .ok_or("no current-context")?;
        let named = |list: &str, name: &str| -> Result<serde_yaml::Value, String> {
            doc[list]
                .as_sequence()
                .into_iter()
                .flatten()
                .find(|e| e["name"].as_str() == Some(name))
                .map(|e| e[&list[..list.len() - 1]].clone())
                .ok_or_else(|| format!("no {} named {name:?}", &list[..list.len() - 1]))
        };
        let context = named("contexts", current)?;
        let cluster = named("clusters", context["cluster"].as_str().unwrap_or_default())?;
        let user = match context["user"].as_str() {
            Some(u) => named("users", u)?,
            None => serde_yaml::Value::Null,
        };
        // `*-data` holds base64 PEM; the plain field names a file (relative to the kubeconfig).
        let pem = |v: &serde_yaml::Value, field: &str| -> Result<Option<String>, String> {
            if let Some(data) = v[&format!("{field}-data")].as_str() {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(data.trim())
                    .map_err(|e| format!("{field}-data: {e}"))?;
                return String::from_utf8(bytes)
                    .map(Some)
                    .map_err(|_| format!("{field}-data is not PEM"));
            }
            match v[field].as_str() {
                Some(file) => std::fs::read_to_string(base.join(file))
                    .map(Some)
                    .map_err(|e| format!("{field} {file}: {e}")),
                None => Ok(None),
            }
        };
        let server = cluster["server"]
            .as_str()
            .ok_or("the cluster has no server")?
            .trim_end_matches('/')
            .to_string();
        let ca_pem = pem(&cluster, "certificate-authority")?;
        let credential = match (
            pem(&user, "client-certificate")?,
            pem(&user, "client-key")?,
            user["token"].as_str(),
        ) {
            (Some(cert_pem), Some(key_pem), _) => {
                Some(Credential::ClientCert { cert_pem, key_pem })
            }
            (_, _, Some(token)) => Some(Credential::Token(token.to_string())),
            _ => None,
        };
        Ok(Access {
            server,
            ca_pem,
            credential,
        })
    }

    /// GET `path` (with its query) from the server: the status and body.
    pub async fn get(&self, path: &str) -> Result<(http::StatusCode, bytes::Bytes), String> {
        use http_body_util::BodyExt;
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        let builder = rustls::ClientConfig::builder();
        let builder = match &self.ca_pem {
            Some(pem) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                    roots
                        .add(cert.map_err(|e| format!("certificate authority: {e}"))?)
                        .map_err(|e| format!("certificate authority: {e}"))?;
                }
                builder.with_root_certificates(roots)
            }
            None => {
                use hyper_rustls::ConfigBuilderExt;
                builder
                    .with_native_roots()
                    .map_err(|e| format!("system roots: {e}"))?
            }
        };
        let tls = match &self.credential {
            Some(Credential::ClientCert { cert_pem, key_pem }) => {
                let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("client certificate: {e}"))?;
                let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
                    .map_err(|e| format!("client key: {e}"))?;
                builder
                    .with_client_auth_cert(certs, key)
                    .map_err(|e| format!("client certificate: {e}"))?
            }
            _ => builder.with_no_client_auth(),
        };
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build::<_, http_body_util::Empty<bytes::Bytes>>(connector);
        let mut req = http::Request::get(format!("{}{path}", self.server));
        if let Some(Credential::Token(t)) = &self.credential {
            req = req.header(http::header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = req
            .body(http_body_util::Empty::new())
            .map_err(|e| e.to_string())?;
        let resp = client
            .request(req)
            .await
            .map_err(|e| format!("{}: {e}", self.server))?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("{}: {e}", self.server))?
            .to_bytes();
        Ok((status, body))
    }
}
