//! ECDSA P-256 private keys: generation with ring, PKCS#8 PEM in and out, the DER
//! SubjectPublicKeyInfo, and signing. Every key rkube creates (CA, leaves, service-account
//! signing key) is of this one kind.

use std::fmt;

use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, EcdsaSigningAlgorithm, KeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivateKeyDer;

use crate::der;
use crate::PkiError;

/// An ECDSA P-256 key pair with its PKCS#8 encoding (kept so it can be written out again).
pub(crate) struct EcKey {
    pair: EcdsaKeyPair,
    pkcs8: Vec<u8>,
    rng: SystemRandom,
}

impl fmt::Debug for EcKey {
    // Never print key material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EcKey").finish_non_exhaustive()
    }
}

impl EcKey {
    /// A fresh key whose signatures are ASN.1 DER (what X.509 wants).
    pub(crate) fn generate() -> Result<Self, PkiError> {
        Self::generate_for(&ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING)
    }

    /// A fresh key for the given signature encoding (JWTs want the fixed r||s form).
    pub(crate) fn generate_for(alg: &'static EcdsaSigningAlgorithm) -> Result<Self, PkiError> {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(alg, &rng)
            .map_err(|_| PkiError::Crypto("generating an ECDSA P-256 key failed".into()))?;
        Self::from_pkcs8(doc.as_ref(), alg)
    }

    /// Loads a key from PKCS#8 DER.
    pub(crate) fn from_pkcs8(
        pkcs8: &[u8],
        alg: &'static EcdsaSigningAlgorithm,
    ) -> Result<Self, PkiError> {
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8, &rng)
            .map_err(|e| PkiError::Key(format!("not an ECDSA P-256 PKCS#8 key: {e}")))?;
        Ok(EcKey {
            pair,
            pkcs8: pkcs8.to_vec(),
            rng,
        })
    }

    /// Loads a key from a PEM "PRIVATE KEY" (PKCS#8) block, signing ASN.1 DER.
    pub(crate) fn from_pem(pem: &str) -> Result<Self, PkiError> {
        Self::from_pem_for(pem, &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING)
    }

    /// Loads a key from a PEM "PRIVATE KEY" (PKCS#8) block for the given signature encoding.
    pub(crate) fn from_pem_for(
        pem: &str,
        alg: &'static EcdsaSigningAlgorithm,
    ) -> Result<Self, PkiError> {
        let key = PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| PkiError::Pem {
            what: "private key",
            reason: e.to_string(),
        })?;
        match key {
            PrivateKeyDer::Pkcs8(der) => Self::from_pkcs8(der.secret_pkcs8_der(), alg),
            _ => Err(PkiError::Key(
                "expected a PKCS#8 \"PRIVATE KEY\" block with an ECDSA P-256 key".into(),
            )),
        }
    }

    /// PKCS#8 PEM ("PRIVATE KEY"), the form rustls, Go's crypto/tls and openssl all read.
    pub(crate) fn pkcs8_pem(&self) -> String {
        der::pem_encode("PRIVATE KEY", &self.pkcs8)
    }

    /// The uncompressed public point (0x04 || X || Y), 65 bytes.
    pub(crate) fn public_point(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    /// DER SubjectPublicKeyInfo of the public key.
    pub(crate) fn spki_der(&self) -> Vec<u8> {
        der::spki_p256(self.public_point())
    }

    /// Signs `msg` with ECDSA P-256 / SHA-256, in the encoding the key was loaded for.
    pub(crate) fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, PkiError> {
        self.pair
            .sign(&self.rng, msg)
            .map(|sig| sig.as_ref().to_vec())
            .map_err(|_| PkiError::Crypto("ECDSA signing failed".into()))
    }
}
