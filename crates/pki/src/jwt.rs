//! Service-account tokens: an ES256 (ECDSA P-256) signing key kept on disk, compact JWS
//! signing and verification, and the OIDC discovery documents upstream serves for it.
//!
//! JWS is done directly on ring (the crate's one crypto backend): rkube only ever needs
//! ES256 with one key, and verification must tell a malformed token from a bad signature
//! from an expired one.

use std::fmt;
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::signature::{
    UnparsedPublicKey, ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING,
};
use serde_json::{json, Value};

use crate::der;
use crate::files::{read_to_string, write_file_atomic, KEY_MODE};
use crate::key::EcKey;
use crate::PkiError;

/// Where upstream serves the OIDC discovery document.
pub const OPENID_CONFIG_PATH: &str = "/.well-known/openid-configuration";
/// Where upstream serves the key set.
pub const JWKS_PATH: &str = "/openid/v1/jwks";
/// Clock skew tolerated on `exp`, `nbf` and `iat` (go-jose's `DefaultLeeway`, which upstream
/// uses).
pub const LEEWAY_SECONDS: i64 = 60;

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Not a compact JWS with a JSON header and a JSON object as payload.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// A header `alg` other than ES256 (including `none`).
    #[error("unsupported signing algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// The signature does not verify with this key.
    #[error("invalid signature")]
    BadSignature,
    /// `exp` is more than the leeway in the past.
    #[error("service account token has expired")]
    Expired,
    /// `nbf` or `iat` is more than the leeway in the future.
    #[error("service account token is not valid yet")]
    NotYetValid,
}

/// ES256 (P-256) service-account signing key; PKCS#8 PEM on disk.
pub struct SigningKey {
    key: EcKey,
    kid: String,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Loads the PKCS#8 PEM key at `path`, or creates one there (mode 0600).
    pub fn load_or_create(path: &Path) -> Result<SigningKey, PkiError> {
        let exists = path
            .try_exists()
            .map_err(|e| PkiError::io("stat", path, e))?;
        if exists {
            return SigningKey::from_pem(&read_to_string(path)?);
        }
        let key = SigningKey::from_key(EcKey::generate_for(&ECDSA_P256_SHA256_FIXED_SIGNING)?);
        write_file_atomic(path, key.key.pkcs8_pem().as_bytes(), KEY_MODE)?;
        Ok(key)
    }

    /// A key from PKCS#8 PEM.
    pub fn from_pem(pem: &str) -> Result<SigningKey, PkiError> {
        Ok(SigningKey::from_key(EcKey::from_pem_for(
            pem,
            &ECDSA_P256_SHA256_FIXED_SIGNING,
        )?))
    }

    fn from_key(key: EcKey) -> SigningKey {
        // Upstream's keyIDFromPublicKey: base64url(sha256(DER SubjectPublicKeyInfo)).
        let digest = ring::digest::digest(&ring::digest::SHA256, &key.spki_der());
        let kid = URL_SAFE_NO_PAD.encode(digest);
        SigningKey { key, kid }
    }

    /// Upstream's key id: base64url (no padding) of the SHA-256 of the DER
    /// SubjectPublicKeyInfo.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWKS document:
    /// `{"keys":[{"use":"sig","kty":"EC","kid":..,"crv":"P-256","alg":"ES256","x":..,"y":..}]}`
    /// (field order as go-jose writes it; x and y are the 32-byte big-endian coordinates).
    pub fn jwks(&self) -> Value {
        let point = self.key.public_point();
        let (x, y) = (&point[1..33], &point[33..65]);
        json!({
            "keys": [{
                "use": "sig",
                "kty": "EC",
                "kid": self.kid,
                "crv": "P-256",
                "alg": "ES256",
                "x": URL_SAFE_NO_PAD.encode(x),
                "y": URL_SAFE_NO_PAD.encode(y),
            }]
        })
    }

    /// The public key, PEM "PUBLIC KEY" (SubjectPublicKeyInfo).
    pub fn public_key_pem(&self) -> String {
        der::pem_encode("PUBLIC KEY", &self.key.spki_der())
    }

    /// Signs `claims` (a JSON object) as a compact JWS with header `{"alg":"ES256","kid":..}`.
    pub fn sign(&self, claims: &Value) -> Result<String, PkiError> {
        if !claims.is_object() {
            return Err(PkiError::InvalidClaims("JWT claims must be a JSON object"));
        }
        let header = json!({ "alg": "ES256", "kid": self.kid });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?)
        );
        let signature = self.key.sign(signing_input.as_bytes())?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }

    /// Verifies the signature, `exp`, `nbf` and `iat` (60 s leeway, as upstream) against the
    /// current time and returns the claims. No audience or issuer check: the caller does it.
    /// The header's `kid` is not consulted: with one key, the signature decides.
    pub fn verify(&self, token: &str) -> Result<Value, JwtError> {
        self.verify_at(token, crate::ca::unix_now())
    }

    /// As [`verify`](Self::verify), at the given Unix time.
    pub fn verify_at(&self, token: &str, now: i64) -> Result<Value, JwtError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed(
                "expected three dot-separated parts".into(),
            ));
        };
        let header: Value = decode_json(header, "header")?;
        match header.get("alg").and_then(Value::as_str) {
            Some("ES256") => {}
            Some(other) => return Err(JwtError::UnsupportedAlgorithm(other.to_string())),
            None => return Err(JwtError::Malformed("header has no alg".into())),
        }
        let sig = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|e| JwtError::Malformed(format!("signature: {e}")))?;
        let signing_input = &token[..header_payload_len(token)];
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, self.key.public_point())
            .verify(signing_input.as_bytes(), &sig)
            .map_err(|_| JwtError::BadSignature)?;

        let claims: Value = decode_json(payload, "payload")?;
        if !claims.is_object() {
            return Err(JwtError::Malformed("payload is not a JSON object".into()));
        }
        if let Some(exp) = numeric_date(&claims, "exp")? {
            if now - LEEWAY_SECONDS > exp {
                return Err(JwtError::Expired);
            }
        }
        for field in ["nbf", "iat"] {
            if let Some(t) = numeric_date(&claims, field)? {
                if now + LEEWAY_SECONDS < t {
                    return Err(JwtError::NotYetValid);
                }
            }
        }
        Ok(claims)
    }
}

/// Length of `<header>.<payload>` in a token already known to have three parts.
fn header_payload_len(token: &str) -> usize {
    token.rfind('.').unwrap_or(token.len())
}

fn decode_json(part: &str, what: &str) -> Result<Value, JwtError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|e| JwtError::Malformed(format!("{what}: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| JwtError::Malformed(format!("{what}: {e}")))
}

/// A NumericDate claim in whole seconds (fractions are truncated); absent is `None`.
fn numeric_date(claims: &Value, field: &str) -> Result<Option<i64>, JwtError> {
    match claims.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_f64().map(|f| f as i64))
            .map(Some)
            .ok_or_else(|| JwtError::Malformed(format!("{field} is not a number"))),
    }
}

/// The OIDC discovery document upstream serves at [`OPENID_CONFIG_PATH`]. Upstream's default
/// `jwks_uri` is `https://<external address>`[`JWKS_PATH`].
pub fn openid_configuration(issuer: &str, jwks_uri: &str) -> Value {
    json!({
        "issuer": issuer,
        "jwks_uri": jwks_uri,
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
    })
}
