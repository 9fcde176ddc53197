//! Reading certificates back: PEM to DER, the fields rkube decides on (subject, SANs, validity,
//! usages), x509 client identity, and kubeadm's CA discovery hash.

use std::net::IpAddr;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

use crate::PkiError;

/// What rkube reads out of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// The subject's common name (the last one, as Go's crypto/x509 keeps), if any.
    pub common_name: Option<String>,
    /// The subject's organisations, in order (Kubernetes groups).
    pub organizations: Vec<String>,
    /// DNS subject alternative names.
    pub dns_names: Vec<String>,
    /// IP subject alternative names.
    pub ip_addresses: Vec<IpAddr>,
    /// Start of validity, Unix seconds.
    pub not_before: i64,
    /// End of validity, Unix seconds.
    pub not_after: i64,
    /// basicConstraints says CA.
    pub is_ca: bool,
    /// extKeyUsage allows TLS server authentication.
    pub server_auth: bool,
    /// extKeyUsage allows TLS client authentication.
    pub client_auth: bool,
}

/// The DER of every certificate in a PEM bundle, in order. Fails when there is none.
pub fn certs_from_pem(pem: &[u8]) -> Result<Vec<Vec<u8>>, PkiError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .map(|c| c.map(|c| c.as_ref().to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PkiError::Pem {
            what: "certificate",
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(PkiError::Pem {
            what: "certificate",
            reason: "no CERTIFICATE block".into(),
        });
    }
    Ok(certs)
}

/// The DER of the first certificate in a PEM bundle.
pub(crate) fn first_cert_der(pem: &str) -> Result<Vec<u8>, PkiError> {
    certs_from_pem(pem.as_bytes())?
        .into_iter()
        .next()
        .ok_or_else(|| PkiError::Certificate("empty bundle".into()))
}

pub(crate) fn parse(der: &[u8]) -> Result<X509Certificate<'_>, PkiError> {
    let (rest, cert) =
        X509Certificate::from_der(der).map_err(|e| PkiError::Certificate(e.to_string()))?;
    if !rest.is_empty() {
        return Err(PkiError::Certificate(
            "trailing data after certificate".into(),
        ));
    }
    Ok(cert)
}

/// Reads the fields rkube decides on from a DER certificate.
pub fn cert_info(der: &[u8]) -> Result<CertInfo, PkiError> {
    let cert = parse(der)?;
    let (common_name, organizations) = subject_cn_and_orgs(&cert);
    let mut info = CertInfo {
        common_name,
        organizations,
        dns_names: Vec::new(),
        ip_addresses: Vec::new(),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        is_ca: cert.is_ca(),
        server_auth: false,
        client_auth: false,
    };
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(san) => {
                for name in &san.general_names {
                    match name {
                        GeneralName::DNSName(dns) => info.dns_names.push((*dns).to_string()),
                        GeneralName::IPAddress(raw) => {
                            if let Some(ip) = ip_from_bytes(raw) {
                                info.ip_addresses.push(ip);
                            }
                        }
                        _ => {}
                    }
                }
            }
            ParsedExtension::ExtendedKeyUsage(eku) => {
                info.server_auth = eku.any || eku.server_auth;
                info.client_auth = eku.any || eku.client_auth;
            }
            _ => {}
        }
    }
    Ok(info)
}

pub(crate) fn ip_from_bytes(raw: &[u8]) -> Option<IpAddr> {
    match raw.len() {
        4 => <[u8; 4]>::try_from(raw).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(raw).ok().map(IpAddr::from),
        _ => None,
    }
}

/// (last CN, all O values): what Go's pkix.Name makes of a subject, which upstream's x509
/// authenticator turns into user name and groups.
fn subject_cn_and_orgs(cert: &X509Certificate<'_>) -> (Option<String>, Vec<String>) {
    let subject = cert.subject();
    let cn = subject
        .iter_common_name()
        .filter_map(|a| a.as_str().ok())
        .last()
        .map(str::to_string);
    let orgs = subject
        .iter_organization()
        .filter_map(|a| a.as_str().ok())
        .map(str::to_string)
        .collect();
    (cn, orgs)
}

/// Subject of a DER client certificate: (CN, O list), for x509 authentication. `None` when the
/// certificate does not parse or has no common name (upstream refuses an empty user name).
/// The chain must already have been verified (rustls does it during the handshake).
pub fn client_identity(cert_der: &[u8]) -> Option<(String, Vec<String>)> {
    let cert = parse(cert_der).ok()?;
    match subject_cn_and_orgs(&cert) {
        (Some(cn), orgs) if !cn.is_empty() => Some((cn, orgs)),
        _ => None,
    }
}

/// kubeadm's discovery hash of a CA (the first certificate of `ca_pem`):
/// `"sha256:<hex sha256 of the DER SubjectPublicKeyInfo>"`.
pub fn ca_hash(ca_pem: &str) -> Result<String, PkiError> {
    let der = first_cert_der(ca_pem)?;
    let cert = parse(&der)?;
    let digest = ring::digest::digest(&ring::digest::SHA256, cert.public_key().raw);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("sha256:{hex}"))
}
