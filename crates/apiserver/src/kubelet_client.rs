//! How the API server reaches kubelets (upstream's `--kubelet-client-certificate`,
//! `--kubelet-client-key`, `--kubelet-certificate-authority`,
//! `--kubelet-preferred-address-types`): HTTPS to the node's address and
//! `status.daemonEndpoints.kubeletEndpoint.Port`, HTTP/1.1 (upgrades need it), with the
//! API server's kubelet client certificate.
//!
//! Without a CA the kubelet's serving certificate is not verified, as upstream without
//! `--kubelet-certificate-authority`; `pods/log?insecureSkipTLSVerifyBackend=true` skips
//! verification for one request either way.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde_json::Value;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Upstream's default kubelet port.
pub const DEFAULT_PORT: u16 = 10250;

/// Upstream's default `--kubelet-preferred-address-types`, less the DNS names: resolving a
/// node's name through the machine's resolver would send a query off the machine, so only
/// addresses that are IPs are used.
pub const PREFERRED_ADDRESS_TYPES: &[&str] = &[
    "Hostname",
    "InternalDNS",
    "InternalIP",
    "ExternalDNS",
    "ExternalIP",
];

/// The kubelet client's settings.
#[derive(Debug, Clone, Default)]
pub struct KubeletClientConfig {
    /// The API server's client certificate for kubelets (PEM certificate and key).
    pub client_cert: Option<rkube_pki::CertKey>,
    /// CA bundle (PEM) kubelet serving certificates must chain to.
    pub ca_pem: Option<String>,
}

/// Connections to kubelets.
#[derive(Clone)]
pub struct KubeletClient {
    verified: Arc<ClientConfig>,
    insecure: Arc<ClientConfig>,
}

impl std::fmt::Debug for KubeletClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeletClient").finish_non_exhaustive()
    }
}

impl Default for KubeletClient {
    fn default() -> Self {
        // Without a certificate the configuration cannot fail to build.
        let insecure =
            Arc::new(insecure_config(None).expect("a kubelet client config without a certificate"));
        KubeletClient {
            verified: insecure.clone(),
            insecure,
        }
    }
}

/// A kubelet client configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("kubelet client: {0}")]
pub struct KubeletClientError(String);

fn identity(
    cert: &rkube_pki::CertKey,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), KubeletClientError> {
    let chain = rkube_pki::certs_from_pem(cert.cert_pem.as_bytes())
        .map_err(|e| KubeletClientError(e.to_string()))?
        .into_iter()
        .map(CertificateDer::from)
        .collect();
    let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes())
        .map_err(|e| KubeletClientError(format!("client key: {e}")))?;
    Ok((chain, key))
}

fn insecure_config(
    cert: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<ClientConfig, KubeletClientError> {
    let provider = rkube_pki::crypto_provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| KubeletClientError(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(NoVerification(provider)));
    let mut config = match cert {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| KubeletClientError(e.to_string()))?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

impl KubeletClient {
    pub fn new(cfg: &KubeletClientConfig) -> Result<KubeletClient, KubeletClientError> {
        let provider = rkube_pki::crypto_provider();
        let ident = match &cfg.client_cert {
            Some(c) => Some(identity(c)?),
            None => None,
        };
        let insecure = Arc::new(insecure_config(
            ident.as_ref().map(|(c, k)| (c.clone(), k.clone_key())),
        )?);
        let verified = match &cfg.ca_pem {
            None => insecure.clone(),
            Some(pem) => {
                let mut roots = RootCertStore::empty();
                for der in rkube_pki::certs_from_pem(pem.as_bytes())
                    .map_err(|e| KubeletClientError(e.to_string()))?
                {
                    roots
                        .add(CertificateDer::from(der))
                        .map_err(|e| KubeletClientError(format!("CA: {e}")))?;
                }
                let builder = ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(|e| KubeletClientError(e.to_string()))?
                    .with_root_certificates(roots);
                let mut config = match ident {
                    Some((chain, key)) => builder
                        .with_client_auth_cert(chain, key)
                        .map_err(|e| KubeletClientError(e.to_string()))?,
                    None => builder.with_no_client_auth(),
                };
                config.alpn_protocols = vec![b"http/1.1".to_vec()];
                Arc::new(config)
            }
        };
        Ok(KubeletClient { verified, insecure })
    }

    /// A TLS connection to a kubelet.
    pub async fn connect(
        &self,
        addr: SocketAddr,
        skip_verify: bool,
    ) -> std::io::Result<TlsStream<tokio::net::TcpStream>> {
        let config = if skip_verify {
            self.insecure.clone()
        } else {
            self.verified.clone()
        };
        let tcp = tokio::time::timeout(
            Duration::from_secs(30),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "i/o timeout"))??;
        let _ = tcp.set_nodelay(true);
        TlsConnector::from(config)
            .connect(ServerName::IpAddress(addr.ip().into()), tcp)
            .await
    }
}

/// A verifier that accepts any server certificate (signatures are still checked).
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
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
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Where a node's kubelet listens: the first address of a preferred type that is an IP,
/// and the port the node reports (default 10250). `Err` carries upstream's message.
pub fn kubelet_endpoint(node: &Value) -> Result<SocketAddr, String> {
    let addresses: Vec<(&str, &str)> = node
        .pointer("/status/addresses")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| Some((x.get("type")?.as_str()?, x.get("address")?.as_str()?)))
                .collect()
        })
        .unwrap_or_default();
    let port = node
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_u64)
        .filter(|p| *p > 0 && *p <= u64::from(u16::MAX))
        .map(|p| p as u16)
        .unwrap_or(DEFAULT_PORT);
    for kind in PREFERRED_ADDRESS_TYPES {
        for (t, a) in &addresses {
            if t == kind {
                if let Ok(ip) = a.parse::<IpAddr>() {
                    return Ok(SocketAddr::new(ip, port));
                }
            }
        }
    }
    let known: Vec<String> = addresses
        .iter()
        .map(|(t, a)| format!("{{{t} {a}}}"))
        .collect();
    Err(format!(
        "no preferred addresses found; known addresses: [{}]",
        known.join(" ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn endpoints_come_from_ip_addresses_in_preference_order() {
        let node = json!({"status": {
            "addresses": [
                {"type": "ExternalIP", "address": "192.0.2.1"},
                {"type": "Hostname", "address": "node-a"},
                {"type": "InternalIP", "address": "10.0.0.5"},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 12345}},
        }});
        assert_eq!(
            kubelet_endpoint(&node),
            Ok("10.0.0.5:12345".parse().expect("addr"))
        );
        // a host name that is an IP is used first; the default port otherwise
        let node = json!({"status": {"addresses": [
            {"type": "InternalIP", "address": "10.0.0.5"},
            {"type": "Hostname", "address": "127.0.0.1"},
        ]}});
        assert_eq!(
            kubelet_endpoint(&node),
            Ok("127.0.0.1:10250".parse().expect("addr"))
        );
        let node = json!({"status": {"addresses": [{"type": "Hostname", "address": "node-a"}]}});
        assert_eq!(
            kubelet_endpoint(&node),
            Err("no preferred addresses found; known addresses: [{Hostname node-a}]".into())
        );
    }
}
