//! The crate's error type: one enum, so callers can tell a broken file on disk from a rejected
//! CSR from a failed signature.

use std::path::PathBuf;

/// Everything that can go wrong building or loading PKI material.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// Reading or writing a file failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was attempted ("read", "write", "create directory", ...).
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Only one of a certificate/key pair exists on disk, or they do not belong together.
    /// rkube refuses to overwrite such a CA rather than silently minting a new one.
    #[error("inconsistent CA in {dir}: {reason}")]
    InconsistentCa {
        /// The CA directory.
        dir: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A PEM document could not be decoded (no block, wrong block type, bad base64).
    #[error("invalid PEM ({what}): {reason}")]
    Pem {
        /// What the PEM was supposed to hold.
        what: &'static str,
        /// Why it was rejected.
        reason: String,
    },
    /// A certificate could not be parsed.
    #[error("invalid certificate: {0}")]
    Certificate(String),
    /// A private key could not be parsed or is not an ECDSA P-256 PKCS#8 key.
    #[error("invalid private key: {0}")]
    Key(String),
    /// A certificate signing request could not be parsed.
    #[error("unable to parse certificate request: {0}")]
    Csr(String),
    /// The CSR's self-signature does not verify.
    #[error("unable to verify certificate request signature: {0}")]
    CsrSignature(String),
    /// Usage names that the certificates API does not define (message as upstream's signer).
    #[error("unrecognized usage values: {0:?}")]
    UnrecognizedUsages(Vec<String>),
    /// The CA can no longer sign (it expired, or expires before the certificate would start).
    #[error("{0}")]
    SignerExpired(String),
    /// A name that cannot go into a certificate (non-ASCII DNS name, ...).
    #[error("invalid name {name:?}: {reason}")]
    InvalidName {
        /// The offending name.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A service CIDR that does not parse or has no room for a first address.
    #[error("invalid service CIDR {cidr:?}: {reason}")]
    InvalidCidr {
        /// The offending CIDR.
        cidr: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A cryptographic primitive failed (key generation, signing, RNG).
    #[error("crypto failure: {0}")]
    Crypto(String),
    /// rustls rejected the TLS configuration.
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// JWT claims that cannot be signed.
    #[error("invalid claims: {0}")]
    InvalidClaims(&'static str),
    /// JSON (de)serialisation failed.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl PkiError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        PkiError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
