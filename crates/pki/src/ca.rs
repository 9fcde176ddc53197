//! The cluster CA: created once (self-signed ECDSA P-256, ten years) and reused across
//! restarts, it issues the serving and client certificates rkube needs and signs CSRs.

use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ring::rand::{SecureRandom, SystemRandom};
use time::OffsetDateTime;
use x509_parser::extensions::ParsedExtension;

use crate::der::{self, key_usage, oid, Extensions, San, Tbs};
use crate::files::{read_to_string, write_file_atomic, CERT_MODE, KEY_MODE};
use crate::inspect;
use crate::key::EcKey;
use crate::PkiError;

/// The CA certificate's lifetime (client-go's `NewSelfSignedCACert`: ten years).
pub const CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// Lifetime of the serving and client certificates rkube issues itself.
pub const LEAF_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);
/// How far back `notBefore` is set, so that a node whose clock lags a little accepts a
/// certificate issued just now (upstream's CSR signer backdates by the same amount).
pub(crate) const BACKDATE: Duration = Duration::from_secs(5 * 60);

/// A certificate and its private key, both PEM (the key is PKCS#8).
#[derive(Clone, PartialEq, Eq)]
pub struct CertKey {
    /// PEM "CERTIFICATE".
    pub cert_pem: String,
    /// PEM "PRIVATE KEY" (PKCS#8, ECDSA P-256).
    pub key_pem: String,
}

impl fmt::Debug for CertKey {
    // Keeps private keys out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertKey")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"[redacted]")
            .finish()
    }
}

/// A certificate authority: its certificate and the key it signs with.
pub struct Ca {
    cert_pem: String,
    cert_der: Vec<u8>,
    /// DER of the CA's subject, the issuer of everything it signs.
    subject: Vec<u8>,
    /// Subject key identifier, repeated as the authority key identifier of what it signs.
    key_id: Vec<u8>,
    not_after: OffsetDateTime,
    key: EcKey,
}

impl fmt::Debug for Ca {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ca")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

impl Ca {
    /// Loads `<dir>/ca.crt` and `<dir>/ca.key`, or creates a self-signed ECDSA P-256 CA
    /// (CN `rkube-ca@<unix time>`, ten years) there. The key is written 0600. Restarts reuse
    /// the files; a lone certificate or key, or a pair that does not match, is an error rather
    /// than a reason to mint a CA that no existing client trusts.
    pub fn load_or_create(dir: &Path) -> Result<Ca, PkiError> {
        let cert_path = dir.join("ca.crt");
        let key_path = dir.join("ca.key");
        let exists = |p: &Path| p.try_exists().map_err(|e| PkiError::io("stat", p, e));
        match (exists(&cert_path)?, exists(&key_path)?) {
            (true, true) => {
                let cert_pem = read_to_string(&cert_path)?;
                let key_pem = read_to_string(&key_path)?;
                Ca::from_pem(&cert_pem, &key_pem).map_err(|e| PkiError::InconsistentCa {
                    dir: dir.to_path_buf(),
                    reason: e.to_string(),
                })
            }
            (false, false) => {
                let ca = Ca::generate()?;
                // Key first: a crash in between leaves a lone key, which the next start
                // reports instead of pairing it with a certificate for another key.
                write_file_atomic(&key_path, ca.key.pkcs8_pem().as_bytes(), KEY_MODE)?;
                write_file_atomic(&cert_path, ca.cert_pem.as_bytes(), CERT_MODE)?;
                Ok(ca)
            }
            (cert, _) => Err(PkiError::InconsistentCa {
                dir: dir.to_path_buf(),
                reason: format!(
                    "{} exists but {} does not",
                    if cert { "ca.crt" } else { "ca.key" },
                    if cert { "ca.key" } else { "ca.crt" }
                ),
            }),
        }
    }

    /// A new self-signed CA, in memory only.
    pub fn generate() -> Result<Ca, PkiError> {
        let key = EcKey::generate()?;
        let now = OffsetDateTime::now_utc();
        let subject = der::name(&format!("rkube-ca@{}", now.unix_timestamp()), &[]);
        let key_id = der::key_id(key.public_point());
        let extensions = Extensions {
            ca: Some(true),
            key_usage: key_usage::DIGITAL_SIGNATURE
                | key_usage::KEY_ENCIPHERMENT
                | key_usage::CERT_SIGN,
            subject_key_id: Some(key_id.clone()),
            ..Extensions::default()
        };
        let spki = key.spki_der();
        let not_after = now + CA_LIFETIME;
        let tbs = der::tbs_certificate(&Tbs {
            serial: random_serial()?,
            issuer: &subject,
            not_before: now - BACKDATE,
            not_after,
            subject: &subject,
            spki: &spki,
            extensions: &extensions,
        })?;
        let cert_der = der::signed(&tbs, &key.sign(&tbs)?);
        Ok(Ca {
            cert_pem: der::pem_encode("CERTIFICATE", &cert_der),
            cert_der,
            subject,
            key_id,
            not_after,
            key,
        })
    }

    /// A CA from its PEM certificate and PKCS#8 PEM key, which must belong together.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Ca, PkiError> {
        let cert_der = inspect::first_cert_der(cert_pem)?;
        let key = EcKey::from_pem(key_pem)?;
        let cert = inspect::parse(&cert_der)?;
        if cert.public_key().raw != key.spki_der().as_slice() {
            return Err(PkiError::Key(
                "the CA key does not match the CA certificate".into(),
            ));
        }
        if !cert.is_ca() {
            return Err(PkiError::Certificate(
                "the CA certificate is not a CA (basicConstraints)".into(),
            ));
        }
        // Reuse the certificate's own key identifier, so authority key identifiers match
        // it even if another tool made the CA.
        let key_id = cert
            .extensions()
            .iter()
            .find_map(|ext| match ext.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
                _ => None,
            })
            .unwrap_or_else(|| der::key_id(key.public_point()));
        let not_after = OffsetDateTime::from_unix_timestamp(cert.validity().not_after.timestamp())
            .map_err(|e| PkiError::Certificate(e.to_string()))?;
        let subject = cert.subject().as_raw().to_vec();
        Ok(Ca {
            cert_pem: der::pem_encode("CERTIFICATE", &cert_der),
            cert_der,
            subject,
            key_id,
            not_after,
            key,
        })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> Vec<u8> {
        self.cert_der.clone()
    }

    /// The CA's private key, PKCS#8 PEM (for writing it elsewhere, e.g. a CA bundle secret).
    pub fn key_pem(&self) -> String {
        self.key.pkcs8_pem()
    }

    /// Whether `cert_der` carries this CA as issuer and a valid signature by its key.
    pub fn issued(&self, cert_der: &[u8]) -> bool {
        let (Ok(cert), Ok(ca)) = (inspect::parse(cert_der), inspect::parse(&self.cert_der)) else {
            return false;
        };
        cert.issuer().as_raw() == self.subject.as_slice()
            && cert.verify_signature(Some(ca.public_key())).is_ok()
    }

    /// Server certificate with the given DNS names and IPs as SANs (serverAuth), one year.
    pub fn issue_serving(
        &self,
        cn: &str,
        dns: &[String],
        ips: &[IpAddr],
    ) -> Result<CertKey, PkiError> {
        let sans = dns
            .iter()
            .map(|d| San::Dns(d.clone()))
            .chain(ips.iter().map(|ip| San::Ip(*ip)))
            .collect();
        self.issue_leaf(&der::name(cn, &[]), sans, oid::EKU_SERVER_AUTH)
    }

    /// Client certificate (clientAuth): CN = user, one O per group, one year.
    pub fn issue_client(&self, cn: &str, groups: &[String]) -> Result<CertKey, PkiError> {
        self.issue_leaf(&der::name(cn, groups), Vec::new(), oid::EKU_CLIENT_AUTH)
    }

    fn issue_leaf(
        &self,
        subject: &[u8],
        sans: Vec<San>,
        eku: &'static [u64],
    ) -> Result<CertKey, PkiError> {
        let key = EcKey::generate()?;
        let extensions = Extensions {
            ca: Some(false),
            key_usage: key_usage::DIGITAL_SIGNATURE | key_usage::KEY_ENCIPHERMENT,
            ext_key_usage: vec![eku],
            sans,
            ..Extensions::default()
        };
        let now = OffsetDateTime::now_utc();
        let der = self.sign_tbs(
            subject,
            &key.spki_der(),
            extensions,
            now - BACKDATE,
            now + LEAF_LIFETIME,
        )?;
        Ok(CertKey {
            cert_pem: der::pem_encode("CERTIFICATE", &der),
            key_pem: key.pkcs8_pem(),
        })
    }

    /// Signs a certificate for `spki` with this CA; `not_after` is cut to the CA's own.
    pub(crate) fn sign_tbs(
        &self,
        subject: &[u8],
        spki: &[u8],
        mut extensions: Extensions,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<Vec<u8>, PkiError> {
        if not_before >= self.not_after {
            return Err(PkiError::SignerExpired(format!(
                "the signer has expired: NotAfter={}",
                self.not_after
            )));
        }
        extensions.authority_key_id = Some(self.key_id.clone());
        extensions.san_critical = is_empty_name(subject);
        let tbs = der::tbs_certificate(&Tbs {
            serial: random_serial()?,
            issuer: &self.subject,
            not_before,
            not_after: not_after.min(self.not_after),
            subject,
            spki,
            extensions: &extensions,
        })?;
        Ok(der::signed(&tbs, &self.key.sign(&tbs)?))
    }

    pub(crate) fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }
}

/// An empty Name is the two bytes of an empty SEQUENCE.
fn is_empty_name(name: &[u8]) -> bool {
    name == [0x30, 0x00]
}

/// A positive 127-bit random serial number (upstream draws 128 bits; the top bit is cleared
/// so the DER INTEGER stays 16 bytes and positive).
fn random_serial() -> Result<[u8; 16], PkiError> {
    let mut serial = [0u8; 16];
    SystemRandom::new()
        .fill(&mut serial)
        .map_err(|_| PkiError::Crypto("the system RNG failed".into()))?;
    serial[0] &= 0x7f;
    Ok(serial)
}

/// Seconds since the Unix epoch, for file names and CNs.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
