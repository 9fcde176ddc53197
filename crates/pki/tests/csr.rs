//! Signing certificate signing requests as the CSR API's signers do.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions unwrap too

mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::{have, openssl, strings, tempdir};
use rkube_pki::{cert_info, certs_from_pem, client_identity, create_csr, Ca, PkiError};

const DAY: Duration = Duration::from_secs(24 * 3600);

fn der(pem: &str) -> Vec<u8> {
    certs_from_pem(pem.as_bytes()).unwrap().remove(0)
}

/// A CSR made by rcgen, an encoder independent of ours.
fn rcgen_csr(cn: &str, org: &str, dns: &[&str]) -> String {
    let mut params =
        rcgen::CertificateParams::new(dns.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, org);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    let key = rcgen::KeyPair::generate().unwrap();
    params.serialize_request(&key).unwrap().pem().unwrap()
}

#[test]
fn signs_an_rcgen_csr_with_requested_usages() {
    let ca = Ca::generate().unwrap();
    let csr = rcgen_csr("system:node:n1", "system:nodes", &["n1.example"]);
    let usages = strings(&["digital signature", "key encipherment", "client auth"]);
    let pem = ca.sign_csr(csr.as_bytes(), &usages, 30 * DAY).unwrap();
    let cert = der(&pem);
    assert!(ca.issued(&cert));
    assert_eq!(
        client_identity(&cert),
        Some(("system:node:n1".into(), strings(&["system:nodes"])))
    );
    let info = cert_info(&cert).unwrap();
    assert!(info.client_auth && !info.server_auth && !info.is_ca);
    assert_eq!(info.dns_names, strings(&["n1.example"]));
    // Backdated five minutes; lifetime counted from the backdated start.
    assert_eq!(info.not_after - info.not_before, 30 * 86400);
}

#[test]
fn own_csr_keeps_every_group_and_san() {
    let ca = Ca::generate().unwrap();
    let ip: IpAddr = "10.1.2.3".parse().unwrap();
    let req = create_csr(
        "system:node:n2",
        &strings(&["system:nodes", "g2"]),
        &strings(&["n2"]),
        &[ip],
    )
    .unwrap();
    let pem = ca
        .sign_csr(req.csr_pem.as_bytes(), &strings(&["server auth"]), DAY)
        .unwrap();
    let info = cert_info(&der(&pem)).unwrap();
    assert_eq!(info.organizations, strings(&["system:nodes", "g2"]));
    assert_eq!(info.dns_names, strings(&["n2"]));
    assert_eq!(info.ip_addresses, vec![ip]);
    assert!(info.server_auth && !info.client_auth);
}

#[test]
fn lifetime_is_capped_at_the_ca() {
    let ca = Ca::generate().unwrap();
    let req = create_csr("u", &[], &[], &[]).unwrap();
    let pem = ca
        .sign_csr(
            req.csr_pem.as_bytes(),
            &strings(&["client auth"]),
            100 * 365 * DAY,
        )
        .unwrap();
    let ca_info = cert_info(&ca.cert_der()).unwrap();
    assert_eq!(cert_info(&der(&pem)).unwrap().not_after, ca_info.not_after);
}

#[test]
fn garbage_and_wrong_pem_blocks_are_rejected() {
    let ca = Ca::generate().unwrap();
    let usages = strings(&["client auth"]);
    let cases: [&[u8]; 4] = [
        b"",
        b"not pem at all",
        b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
        ca.cert_pem().as_bytes(),
    ];
    for csr in cases {
        let err = ca.sign_csr(csr, &usages, DAY).unwrap_err();
        assert!(matches!(err, PkiError::Csr(_)), "{err:?}");
    }
}

#[test]
fn tampered_csr_fails_its_signature_check() {
    let ca = Ca::generate().unwrap();
    let req = create_csr("alice", &strings(&["dev"]), &[], &[]).unwrap();
    let mut der = certs_pem_body(&req.csr_pem);
    // Turn "alice" into "alicf": still a well-formed request, but no longer the signed one.
    let at = der.windows(5).position(|w| w == b"alice").unwrap();
    der[at + 4] = b'f';
    let tampered = pem("CERTIFICATE REQUEST", &der);
    let err = ca
        .sign_csr(tampered.as_bytes(), &strings(&["client auth"]), DAY)
        .unwrap_err();
    assert!(matches!(err, PkiError::CsrSignature(_)), "{err:?}");
}

#[test]
fn unknown_usages_are_refused() {
    let ca = Ca::generate().unwrap();
    let req = create_csr("alice", &[], &[], &[]).unwrap();
    let err = ca
        .sign_csr(
            req.csr_pem.as_bytes(),
            &strings(&["client auth", "teleport"]),
            DAY,
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"unrecognized usage values: ["teleport"]"#
    );
}

#[test]
fn openssl_csr_with_two_organizations_keeps_both() {
    if !have("openssl") {
        return;
    }
    let dir = tempdir();
    let key = dir.path().join("k.pem");
    let (ok, _, err) = openssl(
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            key.to_str().unwrap(),
            "-subj",
            "/O=team-a/O=team-b/CN=bob",
            "-out",
            dir.path().join("r.csr").to_str().unwrap(),
        ],
        b"",
    );
    assert!(ok, "{err}");
    let csr = std::fs::read(dir.path().join("r.csr")).unwrap();
    let ca = Ca::generate().unwrap();
    let pem = ca.sign_csr(&csr, &strings(&["client auth"]), DAY).unwrap();
    assert_eq!(
        client_identity(&der(&pem)),
        Some(("bob".into(), strings(&["team-a", "team-b"])))
    );
}

#[test]
fn openssl_accepts_our_csr_and_its_certificate() {
    if !have("openssl") {
        return;
    }
    let dir = tempdir();
    let req = create_csr("carol", &strings(&["g"]), &strings(&["c.example"]), &[]).unwrap();
    let (ok, _, err) = openssl(&["req", "-verify", "-noout"], req.csr_pem.as_bytes());
    assert!(ok, "openssl req -verify: {err}");

    let ca = Ca::load_or_create(dir.path()).unwrap();
    let pem = ca
        .sign_csr(
            req.csr_pem.as_bytes(),
            &strings(&["digital signature", "client auth"]),
            DAY,
        )
        .unwrap();
    let ca_file = dir.path().join("ca.crt");
    let (ok, out, err) = openssl(
        &[
            "verify",
            "-CAfile",
            ca_file.to_str().unwrap(),
            "-purpose",
            "sslclient",
        ],
        pem.as_bytes(),
    );
    assert!(ok, "{err} {}", String::from_utf8_lossy(&out));
}

fn certs_pem_body(pem_text: &str) -> Vec<u8> {
    use base64::Engine;
    let body: String = pem_text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    format!("-----BEGIN {label}-----\n{b64}\n-----END {label}-----\n")
}
