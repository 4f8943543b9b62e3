//! The server's keys and certificates: a CA (it signs the serving certificate and the client
//! certificates it accepts, as kubeadm's `ca.crt`), the serving certificate, and the key that
//! signs ServiceAccount tokens, and the front proxy's CA and client certificate (what extension
//! API servers are called with). Created at first start in `DATA_DIR/pki/` and reused after;
//! without a data directory they are ephemeral (in memory, new at every start).

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The subject alternative names every generated serving certificate carries.
pub const DEFAULT_SANS: &[&str] = &[
    "localhost",
    "127.0.0.1",
    "::1",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
];

/// A PEM certificate and its PEM private key.
#[derive(Debug, Clone)]
pub struct CertAndKey {
    /// `-----BEGIN CERTIFICATE-----…`
    pub cert_pem: String,
    /// `-----BEGIN PRIVATE KEY-----…`
    pub key_pem: String,
}

/// Where the serving certificate comes from.
#[derive(Debug, Clone, Default)]
pub struct ServingConfig {
    /// Extra subject alternative names (`--tls-san`).
    pub sans: Vec<String>,
    /// `--tls-cert-file` and `--tls-private-key-file`: serve this certificate instead of one
    /// signed by the kubox CA.
    pub cert_files: Option<(PathBuf, PathBuf)>,
}

/// The server's keys and certificates.
pub struct Pki {
    ca_pem: String,
    ca: Issuer<'static, KeyPair>,
    serving: CertAndKey,
    service_account_key_pem: String,
    front_proxy: FrontProxy,
}

/// The front proxy's identity (kube-apiserver's `--requestheader-client-ca-file` and
/// `--proxy-client-cert-file`): a CA of its own, and the client certificate kubox presents to
/// extension API servers when it passes a request on with the caller's identity in
/// `X-Remote-*` headers. Extension servers trust the CA for those headers only.
#[derive(Debug, Clone)]
pub struct FrontProxy {
    /// The request-header CA (PEM).
    pub ca_pem: String,
    /// The client certificate (CN [`FRONT_PROXY_CLIENT`]) and its key.
    pub client: CertAndKey,
}

/// The common name of the front proxy's client certificate (`requestheader-allowed-names`).
pub const FRONT_PROXY_CLIENT: &str = "front-proxy-client";

impl FrontProxy {
    fn create() -> std::io::Result<(FrontProxy, String)> {
        let (ca_pem, ca, ca_key) = new_named_ca("front-proxy-ca").map_err(other)?;
        let client = issue_client(&ca, FRONT_PROXY_CLIENT, &[])?;
        Ok((FrontProxy { ca_pem, client }, ca_key))
    }

    fn load_or_make(dir: &Path, files: &mut PkiFiles) -> std::io::Result<FrontProxy> {
        let paths = [
            dir.join("front-proxy-ca.crt"),
            dir.join("front-proxy-ca.key"),
            dir.join("front-proxy-client.crt"),
            dir.join("front-proxy-client.key"),
        ];
        if let (Some(ca_pem), Some(cert_pem), Some(key_pem)) = (
            read_if_exists(&paths[0])?,
            read_if_exists(&paths[2])?,
            read_if_exists(&paths[3])?,
        ) {
            return Ok(FrontProxy {
                ca_pem,
                client: CertAndKey { cert_pem, key_pem },
            });
        }
        let (fp, ca_key) = FrontProxy::create()?;
        let [ca_crt, ca_key_path, client_crt, client_key] = paths;
        files.add(ca_key_path, ca_key);
        files.add(ca_crt, fp.ca_pem.clone());
        files.add(client_key, fp.client.key_pem.clone());
        files.add(client_crt, fp.client.cert_pem.clone());
        Ok(fp)
    }
}

/// What [`Pki::load_or_make`] made and the data directory does not hold yet, with the lock
/// that keeps other replicas from making their own meanwhile.
#[must_use = "the PKI made is lost at the next start unless it is written"]
#[derive(Default)]
pub struct PkiFiles {
    files: Vec<(PathBuf, String)>,
    lock: Option<std::fs::File>,
}

impl PkiFiles {
    fn add(&mut self, path: PathBuf, contents: String) {
        self.files.push((path, contents));
    }

    /// Nothing to write?
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Write the files (readable by their owner only, each replaced atomically, all synced
    /// together: see [`crate::files::write_private_files`]), then let replicas waiting for the
    /// lock read them.
    pub fn write(self) -> std::io::Result<()> {
        let files: Vec<(&Path, &[u8])> = self
            .files
            .iter()
            .map(|(p, c)| (p.as_path(), c.as_bytes()))
            .collect();
        let written = crate::files::write_private_files(&files).map_err(std::io::Error::other);
        drop(self.lock);
        written
    }
}

/// A client certificate signed by `ca`: CN = `user`, one O per group (at most two).
fn issue_client(
    ca: &Issuer<'static, KeyPair>,
    user: &str,
    groups: &[&str],
) -> std::io::Result<CertAndKey> {
    if groups.len() > 2 {
        return Err(other(
            "a generated client certificate carries at most two groups",
        ));
    }
    let key = KeyPair::generate().map_err(other)?;
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, user);
    // rcgen keeps one value per attribute type: the second O goes in under its bare OID.
    if let Some(g) = groups.first() {
        params.distinguished_name.push(DnType::OrganizationName, *g);
    }
    if let Some(g) = groups.get(1) {
        params
            .distinguished_name
            .push(DnType::CustomDnType(vec![2, 5, 4, 10]), *g);
    }
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, ca).map_err(other)?;
    Ok(CertAndKey {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

fn other(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

fn read_if_exists(path: &Path) -> std::io::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn new_ca() -> Result<(String, Issuer<'static, KeyPair>, String), rcgen::Error> {
    new_named_ca("kubox-ca")
}

fn new_named_ca(
    common_name: &str,
) -> Result<(String, Issuer<'static, KeyPair>, String), rcgen::Error> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key)?;
    let key_pem = key.serialize_pem();
    Ok((cert.pem(), Issuer::new(params, key), key_pem))
}

fn issue_serving(
    ca: &Issuer<'static, KeyPair>,
    sans: &[String],
) -> Result<CertAndKey, rcgen::Error> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(sans.to_vec())?;
    params
        .distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, ca)?;
    Ok(CertAndKey {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// The SANs of the serving certificate: the defaults plus `extra`, without duplicates.
fn all_sans(extra: &[String]) -> Vec<String> {
    let mut out: Vec<String> = DEFAULT_SANS.iter().map(|s| s.to_string()).collect();
    for s in extra {
        let s = s.trim();
        if !s.is_empty() && !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    }
    out
}

fn new_service_account_key() -> std::io::Result<String> {
    use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| other("cannot generate the service account key"))?;
    let der = PrivateKeyDer::Pkcs8(pkcs8.as_ref().to_vec().into());
    pem_of_private_key(&der)
}

fn pem_of_private_key(der: &PrivateKeyDer<'_>) -> std::io::Result<String> {
    let PrivateKeyDer::Pkcs8(p) = der else {
        return Err(other("expected a PKCS#8 private key"));
    };
    let b64 = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        p.secret_pkcs8_der(),
    );
    let mut out = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END PRIVATE KEY-----\n");
    Ok(out)
}

impl Pki {
    /// Load the PKI from `dir` (creating and writing what is missing), or make an ephemeral one.
    pub fn load_or_create(dir: Option<&Path>, serving: &ServingConfig) -> std::io::Result<Pki> {
        let (pki, files) = Self::load_or_make(dir, serving)?;
        files.write()?;
        Ok(pki)
    }

    /// Load the PKI from `dir`, making what is missing in memory: the files to write are
    /// returned, so that the caller may write them while it does other work (until they are
    /// written, or dropped, other replicas sharing `dir` wait for them). Without `dir`, an
    /// ephemeral PKI and nothing to write.
    pub fn load_or_make(
        dir: Option<&Path>,
        serving: &ServingConfig,
    ) -> std::io::Result<(Pki, PkiFiles)> {
        let sans = all_sans(&serving.sans);
        let Some(dir) = dir else {
            let (ca_pem, ca, _) = new_ca().map_err(other)?;
            let serving = Self::serving(&ca, &sans, serving)?;
            let pki = Pki {
                ca_pem,
                ca,
                serving,
                service_account_key_pem: new_service_account_key()?,
                front_proxy: FrontProxy::create()?.0,
            };
            return Ok((pki, PkiFiles::default()));
        };
        let dir = dir.join("pki");
        crate::files::private_dir(&dir, true).map_err(std::io::Error::other)?;
        // Replicas sharing one data directory may start at the same moment: one makes what is
        // missing while the others wait, then read it (an advisory lock, gone with the process).
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(".lock"))?;
        lock.lock()?;
        let mut files = PkiFiles::default();
        let (ca_crt, ca_key) = (dir.join("ca.crt"), dir.join("ca.key"));
        let (ca_pem, ca, new_ca_made) = match (read_if_exists(&ca_crt)?, read_if_exists(&ca_key)?) {
            (Some(cert), Some(key)) => {
                let key = KeyPair::from_pem(&key).map_err(other)?;
                let ca = Issuer::from_ca_cert_pem(&cert, key).map_err(other)?;
                (cert, ca, false)
            }
            _ => {
                let (cert, ca, key) = new_ca().map_err(other)?;
                files.add(ca_key, key);
                files.add(ca_crt, cert.clone());
                (cert, ca, true)
            }
        };
        let serving = if serving.cert_files.is_some() {
            Self::serving(&ca, &sans, serving)?
        } else {
            // Reused while the wanted SANs stay the same and its CA is the one it was signed
            // by; reissued when `--tls-san` changes or the CA was made anew.
            let (crt, key, sans_file) = (
                dir.join("apiserver.crt"),
                dir.join("apiserver.key"),
                dir.join("apiserver.sans"),
            );
            let wanted = sans.join("\n");
            match (
                read_if_exists(&crt)?,
                read_if_exists(&key)?,
                read_if_exists(&sans_file)?,
            ) {
                (Some(cert_pem), Some(key_pem), Some(had)) if had == wanted && !new_ca_made => {
                    CertAndKey { cert_pem, key_pem }
                }
                _ => {
                    let s = issue_serving(&ca, &sans).map_err(other)?;
                    files.add(key, s.key_pem.clone());
                    files.add(crt, s.cert_pem.clone());
                    files.add(sans_file, wanted);
                    s
                }
            }
        };
        let sa_key = dir.join("sa.key");
        let service_account_key_pem = match read_if_exists(&sa_key)? {
            Some(k) => k,
            None => {
                let k = new_service_account_key()?;
                files.add(sa_key, k.clone());
                k
            }
        };
        let front_proxy = FrontProxy::load_or_make(&dir, &mut files)?;
        if !files.is_empty() {
            files.lock = Some(lock);
        }
        let pki = Pki {
            ca_pem,
            ca,
            serving,
            service_account_key_pem,
            front_proxy,
        };
        Ok((pki, files))
    }

    fn serving(
        ca: &Issuer<'static, KeyPair>,
        sans: &[String],
        serving: &ServingConfig,
    ) -> std::io::Result<CertAndKey> {
        match &serving.cert_files {
            Some((cert, key)) => Ok(CertAndKey {
                cert_pem: std::fs::read_to_string(cert)?,
                key_pem: std::fs::read_to_string(key)?,
            }),
            None => issue_serving(ca, sans).map_err(other),
        }
    }

    /// The CA certificate (PEM): clients trust it, and it signs accepted client certificates.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The serving certificate and key.
    pub fn serving_cert(&self) -> &CertAndKey {
        &self.serving
    }

    /// The PKCS#8 PEM key that signs ServiceAccount tokens.
    pub fn service_account_key_pem(&self) -> &str {
        &self.service_account_key_pem
    }

    /// Issue a client certificate: CN = `user`, one O per group (at most two groups).
    pub fn issue_client_cert(&self, user: &str, groups: &[&str]) -> std::io::Result<CertAndKey> {
        issue_client(&self.ca, user, groups)
    }

    /// The front proxy's CA and client certificate.
    pub fn front_proxy(&self) -> &FrontProxy {
        &self.front_proxy
    }

    /// TLS serving: the serving certificate, client certificates requested (not required) and
    /// checked against `client_ca` (PEM bundle) after the handshake, ALPN h2 and http/1.1.
    pub fn tls_serving(&self, client_ca: &str) -> std::io::Result<crate::tls::TlsServing> {
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(self.serving.cert_pem.as_bytes())
                .collect::<Result<_, _>>()
                .map_err(other)?;
        let key = PrivateKeyDer::from_pem_slice(self.serving.key_pem.as_bytes()).map_err(other)?;
        let policy = std::sync::Arc::new(crate::tls::ClientCertPolicy::new(
            client_ca,
            provider.clone(),
        )?);
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(other)?
            .with_client_cert_verifier(policy.clone())
            .with_single_cert(chain, key)
            .map_err(other)?;
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(crate::tls::TlsServing {
            acceptor: tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(cfg)),
            policy,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rustls::client::danger::ServerCertVerifier;
    use std::os::unix::fs::PermissionsExt;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_pki_made_is_written_when_asked_private_and_whole_then_loaded_as_it_was() {
        let t = tempfile::tempdir().unwrap();
        let (made, files) = Pki::load_or_make(Some(t.path()), &ServingConfig::default()).unwrap();
        let pki_dir = t.path().join("pki");
        // Nothing but the lock until the files are written.
        assert_eq!(names(&pki_dir), [".lock"]);
        assert!(!files.is_empty());
        files.write().unwrap();
        let written = names(&pki_dir);
        assert_eq!(
            written,
            [
                ".lock",
                "apiserver.crt",
                "apiserver.key",
                "apiserver.sans",
                "ca.crt",
                "ca.key",
                "front-proxy-ca.crt",
                "front-proxy-ca.key",
                "front-proxy-client.crt",
                "front-proxy-client.key",
                "sa.key",
            ]
        );
        for name in &written[1..] {
            let mode = std::fs::metadata(pki_dir.join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
        let (loaded, again) = Pki::load_or_make(Some(t.path()), &ServingConfig::default()).unwrap();
        assert!(again.is_empty());
        assert_eq!(loaded.ca_pem(), made.ca_pem());
        assert_eq!(loaded.serving_cert().cert_pem, made.serving_cert().cert_pem);
        assert_eq!(
            loaded.service_account_key_pem(),
            made.service_account_key_pem()
        );
        assert_eq!(loaded.front_proxy().ca_pem, made.front_proxy().ca_pem);
        assert_eq!(
            loaded.front_proxy().client.key_pem,
            made.front_proxy().client.key_pem
        );
    }

    #[test]
    fn a_replica_starting_while_another_writes_its_pki_waits_and_reads_that_pki() {
        let t = tempfile::tempdir().unwrap();
        let (first, files) = Pki::load_or_make(Some(t.path()), &ServingConfig::default()).unwrap();
        let dir = t.path().to_path_buf();
        let second = std::thread::spawn(move || {
            let (pki, files) = Pki::load_or_make(Some(&dir), &ServingConfig::default()).unwrap();
            (pki.ca_pem().to_string(), files.is_empty())
        });
        files.write().unwrap();
        let (second_ca, nothing_made) = second.join().unwrap();
        assert_eq!(second_ca, first.ca_pem());
        assert!(nothing_made);
    }

    #[test]
    fn a_ca_made_anew_gets_a_serving_certificate_of_its_own() {
        let t = tempfile::tempdir().unwrap();
        let first = Pki::load_or_create(Some(t.path()), &ServingConfig::default()).unwrap();
        // The CA certificate lost (as a crash before it was written could lose it): both halves
        // are made again, and the serving certificate kept would chain to the old one.
        std::fs::remove_file(t.path().join("pki/ca.crt")).unwrap();
        let second = Pki::load_or_create(Some(t.path()), &ServingConfig::default()).unwrap();
        assert_ne!(second.ca_pem(), first.ca_pem());
        assert_ne!(
            second.serving_cert().cert_pem,
            first.serving_cert().cert_pem
        );
        // It verifies against the new CA: a TLS handshake with a client trusting only it.
        let ca = CertificateDer::from_pem_slice(second.ca_pem().as_bytes()).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca).unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            std::sync::Arc::new(roots),
            provider,
        )
        .build()
        .unwrap();
        let leaf =
            CertificateDer::from_pem_slice(second.serving_cert().cert_pem.as_bytes()).unwrap();
        let now = rustls_pki_types::UnixTime::now();
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        verifier
            .verify_server_cert(&leaf, &[], &name, &[], now)
            .unwrap();
    }
}
