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
