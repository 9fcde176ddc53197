//! Service-account JWTs: signing, verification, and the published key set.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions unwrap too

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::{have, mode, openssl, tempdir};
use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};
use rkube_pki::jwt::{openid_configuration, JwtError, SigningKey};
use serde_json::{json, Value};

const NOW: i64 = 1_800_000_000;

fn key() -> SigningKey {
    let dir = tempdir();
    SigningKey::load_or_create(&dir.path().join("sa.key")).unwrap()
}

fn claims(exp: i64) -> Value {
    json!({
        "iss": "https://kubernetes.default.svc.cluster.local",
        "sub": "system:serviceaccount:default:builder",
        "aud": ["https://kubernetes.default.svc.cluster.local"],
        "iat": NOW - 100,
        "nbf": NOW - 100,
        "exp": exp,
        "kubernetes.io": {"namespace": "default", "serviceaccount": {"name": "builder", "uid": "u-1"}},
    })
}

fn part(token: &str, i: usize) -> Value {
    let raw = URL_SAFE_NO_PAD
        .decode(token.split('.').nth(i).unwrap())
        .unwrap();
    serde_json::from_slice(&raw).unwrap()
}

#[test]
fn signed_token_verifies_and_returns_claims() {
    let key = key();
    let want = claims(NOW + 3600);
    let token = key.sign(&want).unwrap();
    assert_eq!(
        part(&token, 0),
        json!({"alg": "ES256", "kid": key.kid()}),
        "header"
    );
    assert_eq!(key.verify_at(&token, NOW).unwrap(), want);
    // Against the real clock too: a token made now and valid for an hour.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let live = key
        .sign(&json!({"sub": "x", "iat": now, "nbf": now, "exp": now + 3600}))
        .unwrap();
    assert!(key.verify(&live).is_ok());
}

#[test]
fn expiry_and_not_before_allow_sixty_seconds_of_skew() {
    let key = key();
    let cases = [
        (claims(NOW - 30), Ok(())),
        (claims(NOW - 61), Err(JwtError::Expired)),
        (json!({"sub": "x", "nbf": NOW + 30}), Ok(())),
        (
            json!({"sub": "x", "nbf": NOW + 61}),
            Err(JwtError::NotYetValid),
        ),
        (
            json!({"sub": "x", "iat": NOW + 61}),
            Err(JwtError::NotYetValid),
        ),
        (json!({"sub": "legacy token without exp"}), Ok(())),
        (
            json!({"sub": "x", "exp": "tomorrow"}),
            Err(JwtError::Malformed("exp is not a number".into())),
        ),
    ];
    for (claims, want) in cases {
        let token = key.sign(&claims).unwrap();
        assert_eq!(key.verify_at(&token, NOW).map(|_| ()), want, "{claims}");
    }
}

#[test]
fn token_from_another_key_is_a_bad_signature() {
    let token = key().sign(&claims(NOW + 60)).unwrap();
    assert_eq!(key().verify_at(&token, NOW), Err(JwtError::BadSignature));
}

#[test]
fn tampered_payload_is_a_bad_signature() {
    let key = key();
    let token = key.sign(&claims(NOW + 60)).unwrap();
    let mut forged = claims(NOW + 60);
    forged["sub"] = json!("system:serviceaccount:kube-system:admin");
    let parts: Vec<&str> = token.split('.').collect();
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
    let tampered = format!("{}.{}.{}", parts[0], body, parts[2]);
    assert_eq!(key.verify_at(&tampered, NOW), Err(JwtError::BadSignature));
}

#[test]
fn malformed_and_unsigned_tokens_are_refused() {
    let key = key();
    let b64 = |v: Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(&v).unwrap());
    let none = format!(
        "{}.{}.",
        b64(json!({"alg": "none"})),
        b64(json!({"sub": "x"}))
    );
    assert_eq!(
        key.verify_at(&none, NOW),
        Err(JwtError::UnsupportedAlgorithm("none".into()))
    );
    for token in ["", "a.b", "a.b.c.d", "!!.??.**", "e30.e30.AAAA"] {
        assert!(
            matches!(
                key.verify_at(token, NOW),
                Err(JwtError::Malformed(_)) | Err(JwtError::BadSignature)
            ),
            "{token:?}"
        );
    }
    assert!(matches!(
        key.verify_at("a.b", NOW),
        Err(JwtError::Malformed(_))
    ));
    assert!(key.sign(&json!(["not", "an", "object"])).is_err());
}

#[test]
fn key_is_persisted_0600_and_reloaded() {
    let dir = tempdir();
    let path = dir.path().join("keys/sa.key");
    let first = SigningKey::load_or_create(&path).unwrap();
    assert_eq!(mode(&path), 0o600);
    let second = SigningKey::load_or_create(&path).unwrap();
    assert_eq!(first.kid(), second.kid());
    let token = first.sign(&claims(NOW + 60)).unwrap();
    assert!(second.verify_at(&token, NOW).is_ok());
}

/// The SubjectPublicKeyInfo DER behind `public_key_pem`.
fn spki_der(key: &SigningKey) -> Vec<u8> {
    let body: String = key
        .public_key_pem()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

#[test]
fn jwks_coordinates_are_the_public_key() {
    let key = key();
    let jwks = key.jwks();
    let jwk = &jwks["keys"][0];
    let field_names: Vec<&String> = jwk.as_object().unwrap().keys().collect();
    assert_eq!(field_names, ["use", "kty", "kid", "crv", "alg", "x", "y"]);
    assert_eq!(jwk["use"], "sig");
    assert_eq!(jwk["kty"], "EC");
    assert_eq!(jwk["crv"], "P-256");
    assert_eq!(jwk["alg"], "ES256");
    assert_eq!(jwk["kid"], key.kid());

    let x = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap();
    let y = URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap();
    assert_eq!((x.len(), y.len()), (32, 32));
    let point = [&[0x04u8][..], &x, &y].concat();
    // The P-256 SPKI is a fixed 26-byte prefix followed by the uncompressed point.
    assert!(spki_der(&key).ends_with(&point));

    // A verifier that knows only the JWKS accepts a token.
    let token = key.sign(&claims(NOW + 60)).unwrap();
    let (input, sig) = token.rsplit_once('.').unwrap();
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
        .verify(input.as_bytes(), &URL_SAFE_NO_PAD.decode(sig).unwrap())
        .unwrap();
}

#[test]
fn kid_is_base64url_sha256_of_the_spki() {
    let key = key();
    let digest = ring::digest::digest(&ring::digest::SHA256, &spki_der(&key));
    assert_eq!(key.kid(), URL_SAFE_NO_PAD.encode(digest));
    if have("openssl") {
        // The same SPKI bytes as openssl derives them from the private key file.
        let dir = tempdir();
        let path = dir.path().join("sa.key");
        let key = SigningKey::load_or_create(&path).unwrap();
        let pem = std::fs::read(&path).unwrap();
        let (ok, der, err) = openssl(&["pkey", "-pubout", "-outform", "der"], &pem);
        assert!(ok, "{err}");
        let digest = ring::digest::digest(&ring::digest::SHA256, &der);
        assert_eq!(key.kid(), URL_SAFE_NO_PAD.encode(digest));
    }
}

#[test]
fn openid_configuration_has_upstream_fields() {
    let doc = openid_configuration(
        "https://kubernetes.default.svc.cluster.local",
        "https://10.0.0.1:6443/openid/v1/jwks",
    );
    assert_eq!(
        doc,
        json!({
            "issuer": "https://kubernetes.default.svc.cluster.local",
            "jwks_uri": "https://10.0.0.1:6443/openid/v1/jwks",
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
        })
    );
}
