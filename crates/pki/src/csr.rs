//! Certificate signing requests: signing one as the CSR API's signers do (upstream's
//! `PermissiveSigningPolicy`), and creating one, as a kubelet does when it bootstraps.

use std::net::IpAddr;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateSigningRequestDer;
use time::OffsetDateTime;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

use crate::ca::{Ca, BACKDATE};
use crate::der::{self, key_usage, oid, Extensions, San};
use crate::inspect::ip_from_bytes;
use crate::key::EcKey;
use crate::PkiError;

/// Upstream's signer does not backdate certificates shorter than this, so that a short
/// certificate is not mostly spent before it is issued.
const SHORT: Duration = Duration::from_secs(8 * 3600);

/// A certificate signing request and the private key it was made with, both PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct CsrKey {
    /// PEM "CERTIFICATE REQUEST".
    pub csr_pem: String,
    /// PEM "PRIVATE KEY" (PKCS#8, ECDSA P-256).
    pub key_pem: String,
}

impl std::fmt::Debug for CsrKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsrKey")
            .field("csr_pem", &self.csr_pem)
            .field("key_pem", &"[redacted]")
            .finish()
    }
}

/// The certificates API's key usage names (`certificates.k8s.io/v1` KeyUsage) that map to a
/// keyUsage bit.
fn key_usage_bit(usage: &str) -> Option<u16> {
    Some(match usage {
        "signing" | "digital signature" => key_usage::DIGITAL_SIGNATURE,
        "content commitment" => key_usage::CONTENT_COMMITMENT,
        "key encipherment" => key_usage::KEY_ENCIPHERMENT,
        "key agreement" => key_usage::KEY_AGREEMENT,
        "data encipherment" => key_usage::DATA_ENCIPHERMENT,
        "cert sign" => key_usage::CERT_SIGN,
        "crl sign" => key_usage::CRL_SIGN,
        "encipher only" => key_usage::ENCIPHER_ONLY,
        "decipher only" => key_usage::DECIPHER_ONLY,
        _ => return None,
    })
}

/// The names that map to an extendedKeyUsage purpose.
fn ext_key_usage_oid(usage: &str) -> Option<&'static [u64]> {
    Some(match usage {
        "any" => oid::EKU_ANY,
        "server auth" => oid::EKU_SERVER_AUTH,
        "client auth" => oid::EKU_CLIENT_AUTH,
        "code signing" => oid::EKU_CODE_SIGNING,
        "email protection" | "s/mime" => oid::EKU_EMAIL_PROTECTION,
        "ipsec end system" => oid::EKU_IPSEC_END_SYSTEM,
        "ipsec tunnel" => oid::EKU_IPSEC_TUNNEL,
        "ipsec user" => oid::EKU_IPSEC_USER,
        "timestamping" => oid::EKU_TIME_STAMPING,
        "ocsp signing" => oid::EKU_OCSP_SIGNING,
        "microsoft sgc" => oid::EKU_MICROSOFT_SGC,
        "netscape sgc" => oid::EKU_NETSCAPE_SGC,
        _ => return None,
    })
}

/// keyUsage bits and extendedKeyUsage OIDs for the API's usage names; unknown names are an
/// error listing all of them, as upstream's `keyUsagesFromStrings`.
fn usages_from_strings(usages: &[String]) -> Result<(u16, Vec<&'static [u64]>), PkiError> {
    let mut bits = 0;
    let mut ekus: Vec<&'static [u64]> = Vec::new();
    let mut unrecognized = Vec::new();
    for usage in usages {
        if let Some(bit) = key_usage_bit(usage) {
            bits |= bit;
        } else if let Some(eku) = ext_key_usage_oid(usage) {
            if !ekus.contains(&eku) {
                ekus.push(eku);
            }
        } else {
            unrecognized.push(usage.clone());
        }
    }
    if !unrecognized.is_empty() {
        return Err(PkiError::UnrecognizedUsages(unrecognized));
    }
    Ok((bits, ekus))
}

/// Validity of a CSR-signed certificate, as upstream's signer computes it: it starts five
/// minutes back (clock skew); it lasts `lifetime` from then, except that one shorter than
/// eight hours lasts `lifetime` from now; it never ends after the CA.
fn validity(
    now: OffsetDateTime,
    lifetime: Duration,
    ca_not_after: OffsetDateTime,
) -> Result<(OffsetDateTime, OffsetDateTime), PkiError> {
    let not_before = now - BACKDATE;
    let start = if lifetime < SHORT { now } else { not_before };
    let not_after = time::Duration::try_from(lifetime)
        .ok()
        .and_then(|d| start.checked_add(d))
        .map_or(ca_not_after, |t| t.min(ca_not_after));
    if now >= ca_not_after {
        return Err(PkiError::SignerExpired(format!(
            "refusing to sign a certificate that expired in the past: NotAfter={ca_not_after}"
        )));
    }
    Ok((not_before, not_after))
}

impl Ca {
    /// Signs a PEM CSR (what the CSR API carries, base64-decoded, in `spec.request`) with the
    /// requested key usages (the API's names: "client auth", "server auth", "digital
    /// signature", "key encipherment", ...) and lifetime, and returns the PEM certificate.
    ///
    /// As upstream's signer: the CSR's self-signature must verify; subject, public key and the
    /// DNS, IP, e-mail and URI SANs are carried over; every other requested extension is
    /// dropped; the certificate is never a CA.
    pub fn sign_csr(
        &self,
        csr_pem: &[u8],
        usages: &[String],
        lifetime: Duration,
    ) -> Result<String, PkiError> {
        let der = CertificateSigningRequestDer::from_pem_slice(csr_pem).map_err(|e| {
            PkiError::Csr(match e {
                rustls_pki_types::pem::Error::NoItemsFound => {
                    "PEM block type must be CERTIFICATE REQUEST".into()
                }
                e => e.to_string(),
            })
        })?;
        let (rest, csr) = X509CertificationRequest::from_der(der.as_ref())
            .map_err(|e| PkiError::Csr(e.to_string()))?;
        if !rest.is_empty() {
            return Err(PkiError::Csr("trailing data after the request".into()));
        }
        csr.verify_signature()
            .map_err(|e| PkiError::CsrSignature(e.to_string()))?;

        let (key_usage, ext_key_usage) = usages_from_strings(usages)?;
        let info = &csr.certification_request_info;
        let extensions = Extensions {
            ca: Some(false),
            key_usage,
            ext_key_usage,
            sans: requested_sans(&csr),
            ..Extensions::default()
        };
        let (not_before, not_after) =
            validity(OffsetDateTime::now_utc(), lifetime, self.not_after())?;
        let cert = self.sign_tbs(
            info.subject.as_raw(),
            info.subject_pki.raw,
            extensions,
            not_before,
            not_after,
        )?;
        Ok(der::pem_encode("CERTIFICATE", &cert))
    }
}

/// The SANs of the kinds Go's x509 parser keeps (DNS, e-mail, URI, IP), in request order.
fn requested_sans(csr: &X509CertificationRequest<'_>) -> Vec<San> {
    let mut sans = Vec::new();
    for ext in csr.requested_extensions().into_iter().flatten() {
        if let ParsedExtension::SubjectAlternativeName(san) = ext {
            for name in &san.general_names {
                match name {
                    GeneralName::DNSName(s) => sans.push(San::Dns((*s).to_string())),
                    GeneralName::RFC822Name(s) => sans.push(San::Email((*s).to_string())),
                    GeneralName::URI(s) => sans.push(San::Uri((*s).to_string())),
                    GeneralName::IPAddress(raw) => {
                        if let Some(ip) = ip_from_bytes(raw) {
                            sans.push(San::Ip(ip));
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    sans
}

/// A new ECDSA P-256 key and a CSR for it with subject CN = `cn`, one O per group, and the
/// given DNS / IP SANs (what a kubelet submits for its client or serving certificate).
pub fn create_csr(
    cn: &str,
    groups: &[String],
    dns: &[String],
    ips: &[IpAddr],
) -> Result<CsrKey, PkiError> {
    let key = EcKey::generate()?;
    let sans: Vec<San> = dns
        .iter()
        .map(|d| San::Dns(d.clone()))
        .chain(ips.iter().map(|ip| San::Ip(*ip)))
        .collect();
    let info = der::csr_info(&der::name(cn, groups), &key.spki_der(), &sans)?;
    let csr = der::signed(&info, &key.sign(&info)?);
    Ok(CsrKey {
        csr_pem: der::pem_encode("CERTIFICATE REQUEST", &csr),
        key_pem: key.pkcs8_pem(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn usage_names_map_like_upstream() {
        // (usage names, keyUsage bits, extKeyUsage OIDs)
        type Case = (&'static [&'static str], u16, &'static [&'static [u64]]);
        let cases: &[Case] = &[
            (
                &["digital signature", "key encipherment", "client auth"],
                key_usage::DIGITAL_SIGNATURE | key_usage::KEY_ENCIPHERMENT,
                &[oid::EKU_CLIENT_AUTH],
            ),
            (
                &["signing", "server auth", "server auth"],
                key_usage::DIGITAL_SIGNATURE,
                &[oid::EKU_SERVER_AUTH],
            ),
            (
                &["s/mime", "email protection"],
                0,
                &[oid::EKU_EMAIL_PROTECTION],
            ),
            (&[], 0, &[]),
        ];
        for (names, bits, ekus) in cases {
            let (got_bits, got_ekus) = usages_from_strings(&strings(names)).unwrap();
            assert_eq!(got_bits, *bits, "{names:?}");
            assert_eq!(got_ekus, ekus.to_vec(), "{names:?}");
        }
    }

    #[test]
    fn unknown_usage_names_are_all_reported() {
        let err = usages_from_strings(&strings(&["client auth", "flying", "Server Auth"]));
        match err {
            Err(e @ PkiError::UnrecognizedUsages(_)) => assert_eq!(
                e.to_string(),
                r#"unrecognized usage values: ["flying", "Server Auth"]"#
            ),
            other => panic!("expected UnrecognizedUsages, got {other:?}"),
        }
    }

    #[test]
    fn validity_backdates_long_certificates_and_caps_at_the_ca() {
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let ca_end = now + Duration::from_secs(30 * 24 * 3600);
        let hour = Duration::from_secs(3600);

        let (nb, na) = validity(now, 24 * hour, ca_end).unwrap();
        assert_eq!(nb, now - BACKDATE);
        assert_eq!(na, now - BACKDATE + 24 * hour);

        let (nb, na) = validity(now, hour, ca_end).unwrap();
        assert_eq!(nb, now - BACKDATE);
        assert_eq!(
            na,
            now + hour,
            "short certificates are not backdated at the end"
        );

        let (_, na) = validity(now, 1000 * 24 * hour, ca_end).unwrap();
        assert_eq!(na, ca_end);

        let (_, na) = validity(now, Duration::MAX, ca_end).unwrap();
        assert_eq!(na, ca_end, "an absurd lifetime does not overflow");

        assert!(matches!(
            validity(ca_end, hour, ca_end),
            Err(PkiError::SignerExpired(_))
        ));
    }
}
