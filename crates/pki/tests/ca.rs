//! The CA on disk and the certificates it issues, checked with x509-parser and, where
//! installed, openssl.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions unwrap too

mod common;

use std::net::IpAddr;

use common::{have, mode, openssl, strings, tempdir};
use rkube_pki::{
    ca_hash, cert_info, certs_from_pem, client_identity, load_or_issue_client,
    load_or_issue_serving, Ca, PkiError,
};

fn der(pem: &str) -> Vec<u8> {
    certs_from_pem(pem.as_bytes()).unwrap().remove(0)
}

#[test]
fn ca_is_created_once_and_reused_across_restarts() {
    let dir = tempdir();
    let first = Ca::load_or_create(dir.path()).unwrap();
    let second = Ca::load_or_create(dir.path()).unwrap();
    assert_eq!(first.cert_pem(), second.cert_pem());
    assert_eq!(first.cert_der(), second.cert_der());

    // What the first CA issued, the reloaded one recognises (same key, same subject).
    let pair = first.issue_client("alice", &[]).unwrap();
    assert!(second.issued(&der(&pair.cert_pem)));

    let info = cert_info(&first.cert_der()).unwrap();
    assert!(info.is_ca);
    let cn = info.common_name.unwrap();
    let stamp: i64 = cn.strip_prefix("rkube-ca@").unwrap().parse().unwrap();
    assert!(
        (info.not_before - stamp).abs() <= 10 * 60,
        "{cn} vs {}",
        info.not_before
    );
    let years = (info.not_after - stamp) as f64 / (365.0 * 24.0 * 3600.0);
    assert!((9.9..=10.1).contains(&years), "{years} years");
}

#[test]
fn ca_key_is_0600() {
    let dir = tempdir();
    Ca::load_or_create(dir.path()).unwrap();
    assert_eq!(mode(&dir.path().join("ca.key")), 0o600);
    assert!(dir.path().join("ca.crt").exists());
}

#[test]
fn lone_or_mismatched_ca_files_are_refused_not_replaced() {
    let dir = tempdir();
    Ca::load_or_create(dir.path()).unwrap();
    std::fs::remove_file(dir.path().join("ca.key")).unwrap();
    assert!(matches!(
        Ca::load_or_create(dir.path()),
        Err(PkiError::InconsistentCa { .. })
    ));

    let other = tempdir();
    let other_ca = Ca::load_or_create(other.path()).unwrap();
    std::fs::write(dir.path().join("ca.key"), other_ca.key_pem()).unwrap();
    assert!(matches!(
        Ca::load_or_create(dir.path()),
        Err(PkiError::InconsistentCa { .. })
    ));
}

#[test]
fn client_cert_verifies_against_ca_and_carries_identity() {
    let ca = Ca::generate().unwrap();
    let pair = ca
        .issue_client("system:node:n1", &strings(&["system:nodes", "extra"]))
        .unwrap();
    let cert = der(&pair.cert_pem);
    assert!(ca.issued(&cert));
    assert!(
        !Ca::generate().unwrap().issued(&cert),
        "another CA did not issue it"
    );
    assert_eq!(
        client_identity(&cert),
        Some((
            "system:node:n1".to_string(),
            strings(&["system:nodes", "extra"])
        ))
    );
    let info = cert_info(&cert).unwrap();
    assert!(info.client_auth && !info.server_auth && !info.is_ca);
    let days = (info.not_after - info.not_before) as f64 / 86400.0;
    assert!((365.0..=366.0).contains(&days), "{days} days");
}

#[test]
fn client_identity_rejects_garbage_and_empty_cn() {
    assert_eq!(client_identity(b"not a certificate"), None);
    let ca = Ca::generate().unwrap();
    let pair = ca.issue_client("", &strings(&["g"])).unwrap();
    assert_eq!(client_identity(&der(&pair.cert_pem)), None);
}

#[test]
fn serving_cert_has_requested_sans() {
    let ca = Ca::generate().unwrap();
    let ips: Vec<IpAddr> = vec!["127.0.0.1".parse().unwrap(), "fd00::1".parse().unwrap()];
    let pair = ca
        .issue_serving(
            "kube-apiserver",
            &strings(&["localhost", "kubernetes"]),
            &ips,
        )
        .unwrap();
    let info = cert_info(&der(&pair.cert_pem)).unwrap();
    assert_eq!(info.dns_names, strings(&["localhost", "kubernetes"]));
    assert_eq!(info.ip_addresses, ips);
    assert!(info.server_auth && !info.client_auth);
    assert_eq!(info.common_name.as_deref(), Some("kube-apiserver"));
}

#[test]
fn non_ascii_dns_name_is_an_error() {
    let ca = Ca::generate().unwrap();
    assert!(matches!(
        ca.issue_serving("x", &strings(&["bücher"]), &[]),
        Err(PkiError::InvalidName { .. })
    ));
}

#[test]
fn serving_cert_is_reused_until_sans_change() {
    let dir = tempdir();
    let ca = Ca::load_or_create(dir.path()).unwrap();
    let ip: IpAddr = "10.0.0.5".parse().unwrap();
    let dns = strings(&["localhost", "node-a"]);

    let first = load_or_issue_serving(dir.path(), "serving", &ca, &dns, &[ip]).unwrap();
    assert_eq!(mode(&dir.path().join("serving.key")), 0o600);
    let again = load_or_issue_serving(dir.path(), "serving", &ca, &dns, &[ip]).unwrap();
    assert_eq!(first, again, "unchanged SANs reuse the files");
    let subset = load_or_issue_serving(dir.path(), "serving", &ca, &dns[..1], &[]).unwrap();
    assert_eq!(first, subset, "a subset of the SANs is still covered");

    let new_ip: IpAddr = "10.0.0.6".parse().unwrap();
    let moved = load_or_issue_serving(dir.path(), "serving", &ca, &dns, &[new_ip]).unwrap();
    assert_ne!(first.cert_pem, moved.cert_pem);
    assert_ne!(
        first.key_pem, moved.key_pem,
        "a new key goes with the new certificate"
    );
    let info = cert_info(&der(&moved.cert_pem)).unwrap();
    assert_eq!(info.ip_addresses, vec![new_ip]);
    assert_eq!(info.common_name.as_deref(), Some("localhost"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("serving.crt")).unwrap(),
        moved.cert_pem
    );
}

#[test]
fn client_cert_is_reissued_when_subject_or_ca_changes() {
    let dir = tempdir();
    let ca = Ca::load_or_create(dir.path()).unwrap();
    let groups = strings(&["system:masters", "b"]);
    let first = load_or_issue_client(dir.path(), "admin", &ca, "admin", &groups).unwrap();
    assert_eq!(mode(&dir.path().join("admin.key")), 0o600);

    let reordered = strings(&["b", "system:masters"]);
    let same = load_or_issue_client(dir.path(), "admin", &ca, "admin", &reordered).unwrap();
    assert_eq!(first, same, "group order does not matter");

    let renamed = load_or_issue_client(dir.path(), "admin", &ca, "root", &groups).unwrap();
    assert_ne!(first, renamed);
    let regrouped =
        load_or_issue_client(dir.path(), "admin", &ca, "root", &strings(&["x"])).unwrap();
    assert_ne!(renamed, regrouped);

    let other_ca = Ca::generate().unwrap();
    let moved =
        load_or_issue_client(dir.path(), "admin", &other_ca, "root", &strings(&["x"])).unwrap();
    assert_ne!(regrouped, moved);
    assert!(other_ca.issued(&der(&moved.cert_pem)));
}

#[test]
fn client_cert_with_mismatched_key_is_reissued() {
    let dir = tempdir();
    let ca = Ca::generate().unwrap();
    let first = load_or_issue_client(dir.path(), "u", &ca, "u", &[]).unwrap();
    let stray = ca.issue_client("u", &[]).unwrap();
    std::fs::write(dir.path().join("u.key"), &stray.key_pem).unwrap();
    let fixed = load_or_issue_client(dir.path(), "u", &ca, "u", &[]).unwrap();
    assert_ne!(first.cert_pem, fixed.cert_pem);
}

#[test]
fn ca_hash_has_kubeadm_form_and_matches_openssl() {
    let ca = Ca::generate().unwrap();
    let hash = ca_hash(ca.cert_pem()).unwrap();
    let hex = hash.strip_prefix("sha256:").unwrap();
    assert_eq!(hex.len(), 64);
    assert!(hex
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    assert!(ca_hash("garbage").is_err());

    if !have("openssl") {
        return;
    }
    // openssl x509 -pubkey | openssl pkey -pubin -outform der | sha256sum
    let (ok, pubkey, err) = openssl(&["x509", "-noout", "-pubkey"], ca.cert_pem().as_bytes());
    assert!(ok, "{err}");
    let (ok, spki, err) = openssl(&["pkey", "-pubin", "-outform", "der"], &pubkey);
    assert!(ok, "{err}");
    let (ok, digest, err) = openssl(&["dgst", "-sha256", "-r"], &spki);
    assert!(ok, "{err}");
    let openssl_hex = String::from_utf8(digest).unwrap();
    assert_eq!(openssl_hex.split_whitespace().next(), Some(hex));
}

#[test]
fn openssl_verifies_issued_certificates() {
    if !have("openssl") {
        return;
    }
    let dir = tempdir();
    let ca = Ca::load_or_create(dir.path()).unwrap();
    let client = ca.issue_client("alice", &strings(&["dev", "ops"])).unwrap();
    let serving = ca
        .issue_serving(
            "srv",
            &strings(&["localhost"]),
            &["127.0.0.1".parse().unwrap()],
        )
        .unwrap();
    let ca_file = dir.path().join("ca.crt");
    let ca_file = ca_file.to_str().unwrap();
    for (purpose, pair) in [("sslclient", &client), ("sslserver", &serving)] {
        let (ok, out, err) = openssl(
            &["verify", "-CAfile", ca_file, "-purpose", purpose],
            pair.cert_pem.as_bytes(),
        );
        assert!(ok, "{purpose}: {err} {}", String::from_utf8_lossy(&out));
        // openssl reads the PKCS#8 key and finds it matches the certificate.
        let (ok, key_pub, err) = openssl(&["pkey", "-pubout"], pair.key_pem.as_bytes());
        assert!(ok, "{err}");
        let (ok, cert_pub, err) = openssl(&["x509", "-noout", "-pubkey"], pair.cert_pem.as_bytes());
        assert!(ok, "{err}");
        assert_eq!(key_pub, cert_pub);
    }
    let (ok, subject, err) = openssl(
        &["x509", "-noout", "-subject", "-nameopt", "RFC2253"],
        client.cert_pem.as_bytes(),
    );
    assert!(ok, "{err}");
    assert_eq!(
        String::from_utf8(subject).unwrap().trim(),
        "subject=CN=alice,O=ops,O=dev"
    );
}
