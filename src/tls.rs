//! TLS serving: the handshake asks for a client certificate but does not require one, and does
//! not refuse one it cannot verify. As Go's `tls.RequestClientCert` in kube-apiserver, the chain
//! is verified after the handshake and the x509 authenticator answers 401 for a bad one (a
//! handshake failure would give the client nothing to read). Proof of possession (the
//! handshake signature) is checked by rustls as usual.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};

use crate::authn::PeerCertificate;

/// Check that a PEM bundle holds at least one certificate a client CA store accepts.
pub fn check_ca_bundle(pem: &str) -> Result<(), String> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        roots
            .add(cert.map_err(|e| format!("not a PEM certificate bundle: {e}"))?)
            .map_err(|e| format!("not a CA certificate: {e}"))?;
    }
    if roots.is_empty() {
        return Err("no certificate in the file".to_string());
    }
    Ok(())
}

/// Client certificates: requested, verified against the client CA after the handshake.
#[derive(Debug)]
pub struct ClientCertPolicy {
    inner: Arc<dyn ClientCertVerifier>,
}

impl ClientCertPolicy {
    /// A policy trusting the CA certificates in `ca_pem`.
    pub fn new(ca_pem: &str, provider: Arc<CryptoProvider>) -> std::io::Result<Self> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            let cert = cert.map_err(|e| std::io::Error::other(e.to_string()))?;
            roots
                .add(cert)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
        }
        let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .allow_unauthenticated()
            .build()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(ClientCertPolicy { inner })
    }

    /// Verify a presented chain (end entity first) against the client CA, now.
    pub fn check(&self, chain: &[CertificateDer<'static>]) -> PeerCertificate {
        let verified = match chain.split_first() {
            None => Err("no certificate".to_string()),
            Some((end, intermediates)) => self
                .inner
                .verify_client_cert(end, intermediates, UnixTime::now())
                .map(|_| ())
                .map_err(|e| e.to_string()),
        };
        PeerCertificate {
            chain: chain.to_vec(),
            verified,
            user: Default::default(),
        }
    }
}

impl ClientCertVerifier for ClientCertPolicy {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // Checked after the handshake (see the module docs).
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let checked = self.inner.verify_tls12_signature(message, cert, dss);
        unverifiable_is_no_failure(checked, cert)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let checked = self.inner.verify_tls13_signature(message, cert, dss);
        unverifiable_is_no_failure(checked, cert)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A certificate webpki cannot even parse (an X.509 v1 certificate, say) cannot prove its key
/// here; but then it can never pass [`ClientCertPolicy::check`] either, so it authenticates
/// nobody. Such a handshake goes on, and the request is answered 401 as kube-apiserver answers
/// it (Go parses these certificates and fails them when it verifies the chain). A certificate
/// that parses must still prove its key.
fn unverifiable_is_no_failure(
    checked: Result<HandshakeSignatureValid, rustls::Error>,
    cert: &CertificateDer<'_>,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    match checked {
        Err(_) if rustls::server::ParsedCertificate::try_from(cert).is_err() => {
            Ok(HandshakeSignatureValid::assertion())
        }
        other => other,
    }
}

/// What the accept loop needs to serve TLS.
#[derive(Clone)]
pub struct TlsServing {
    /// Accepts handshakes.
    pub acceptor: tokio_rustls::TlsAcceptor,
    /// Checks presented client certificates.
    pub policy: Arc<ClientCertPolicy>,
}
