//! The API server's rustls configuration: its serving chain, and client certificates verified
//! against the cluster CA but optional, because bearer tokens authenticate too.

use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::inspect::certs_from_pem;
use crate::{CertKey, PkiError};

/// ALPN protocols offered, preferred first: kubectl and client-go speak HTTP/2.
pub const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// The ring crypto provider, named once so no other backend is ever picked up implicitly.
pub fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// rustls server config: `serving`'s certificate chain and key; client certificates verified
/// against `client_ca_pem` (every certificate in it is trusted) but optional; ALPN `h2`,
/// `http/1.1`; TLS 1.2 and 1.3 only.
pub fn server_tls_config(
    serving: &CertKey,
    client_ca_pem: &str,
) -> Result<Arc<ServerConfig>, PkiError> {
    let provider = crypto_provider();
    let chain: Vec<CertificateDer<'static>> = certs_from_pem(serving.cert_pem.as_bytes())?
        .into_iter()
        .map(CertificateDer::from)
        .collect();
    let key =
        PrivateKeyDer::from_pem_slice(serving.key_pem.as_bytes()).map_err(|e| PkiError::Pem {
            what: "private key",
            reason: e.to_string(),
        })?;

    let mut roots = RootCertStore::empty();
    for der in certs_from_pem(client_ca_pem.as_bytes())? {
        roots
            .add(CertificateDer::from(der))
            .map_err(|e| PkiError::Tls(format!("client CA: {e}")))?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| PkiError::Tls(e.to_string()))?;

    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| PkiError::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| PkiError::Tls(e.to_string()))?;
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}
