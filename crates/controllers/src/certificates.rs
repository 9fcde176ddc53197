//! What the CSR controllers share: the built-in signer names, reading `spec.request`, the
//! approval state, and upstream's checks of kubelet client and serving requests
//! (`pkg/apis/certificates` helpers), with upstream's error texts.
//!
//! The checks take a [`CsrSubject`], the parts of the x509 request they look at, so they are
//! pure and tested without certificates.

use std::collections::BTreeSet;

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
pub use rkube_pki::{parse_csr, CsrSubject};

pub const KUBE_APISERVER_CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client";
pub const KUBE_APISERVER_CLIENT_KUBELET_SIGNER: &str =
    "kubernetes.io/kube-apiserver-client-kubelet";
pub const KUBELET_SERVING_SIGNER: &str = "kubernetes.io/kubelet-serving";

pub const USAGE_DIGITAL_SIGNATURE: &str = "digital signature";
pub const USAGE_KEY_ENCIPHERMENT: &str = "key encipherment";
pub const USAGE_CLIENT_AUTH: &str = "client auth";
pub const USAGE_SERVER_AUTH: &str = "server auth";

pub const CONDITION_APPROVED: &str = "Approved";
pub const CONDITION_DENIED: &str = "Denied";
pub const CONDITION_FAILED: &str = "Failed";

/// Upstream's `GetCertApprovalCondition`: whether any condition is `Approved`, and whether
/// any is `Denied` (whatever their status, as upstream).
pub fn approval_state(csr: &CertificateSigningRequest) -> (bool, bool) {
    let conditions = csr
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default();
    let has = |t: &str| conditions.iter().any(|c| c.type_ == t);
    (has(CONDITION_APPROVED), has(CONDITION_DENIED))
}

/// Upstream's `HasTrueCondition`: a condition of this type with status True or empty.
pub fn has_true_condition(csr: &CertificateSigningRequest, type_: &str) -> bool {
    csr.status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default()
        .iter()
        .any(|c| c.type_ == type_ && (c.status.is_empty() || c.status == "True"))
}

/// Whether `status.certificate` is set.
pub fn has_certificate(csr: &CertificateSigningRequest) -> bool {
    csr.status
        .as_ref()
        .and_then(|s| s.certificate.as_ref())
        .is_some_and(|c| !c.0.is_empty())
}

/// `spec.usages` as a set, as upstream compares them.
pub fn usage_set(csr: &CertificateSigningRequest) -> BTreeSet<String> {
    csr.spec.usages.iter().flatten().cloned().collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Go's `%v` of a sorted string list: `[a b c]`.
fn go_list(s: &BTreeSet<String>) -> String {
    format!("[{}]", s.iter().cloned().collect::<Vec<_>>().join(" "))
}

fn organization_is_system_nodes(subject: &CsrSubject) -> Result<(), String> {
    if subject.organizations != ["system:nodes"] {
        return Err("subject organization is not system:nodes".into());
    }
    Ok(())
}

fn common_name_is_node(subject: &CsrSubject) -> Result<(), String> {
    if !subject.common_name.starts_with("system:node:") {
        return Err("subject common name does not begin with system:node:".into());
    }
    Ok(())
}

/// Upstream's `ValidateKubeletClientCSR`: O exactly `system:nodes`, no SANs, CN
/// `system:node:*`, usages exactly {digital signature, client auth} plus optionally key
/// encipherment.
pub fn validate_kubelet_client(
    subject: &CsrSubject,
    usages: &BTreeSet<String>,
) -> Result<(), String> {
    organization_is_system_nodes(subject)?;
    if !subject.dns_names.is_empty() {
        return Err("DNS subjectAltNames are not allowed".into());
    }
    if !subject.email_addresses.is_empty() {
        return Err("Email subjectAltNames are not allowed".into());
    }
    if !subject.ip_addresses.is_empty() {
        return Err("IP subjectAltNames are not allowed".into());
    }
    if !subject.uris.is_empty() {
        return Err("URI subjectAltNames are not allowed".into());
    }
    common_name_is_node(subject)?;
    let full = set(&[
        USAGE_DIGITAL_SIGNATURE,
        USAGE_KEY_ENCIPHERMENT,
        USAGE_CLIENT_AUTH,
    ]);
    let no_rsa = set(&[USAGE_DIGITAL_SIGNATURE, USAGE_CLIENT_AUTH]);
    if *usages != full && *usages != no_rsa {
        return Err(format!("usages did not match {}", go_list(&full)));
    }
    Ok(())
}

/// Upstream's `ValidateKubeletServingCSR`: O exactly `system:nodes`, a DNS or IP SAN, no
/// email or URI SANs, usages exactly {digital signature, server auth} plus optionally key
/// encipherment, CN `system:node:*`.
pub fn validate_kubelet_serving(
    subject: &CsrSubject,
    usages: &BTreeSet<String>,
) -> Result<(), String> {
    organization_is_system_nodes(subject)?;
    if subject.dns_names.is_empty() && subject.ip_addresses.is_empty() {
        return Err("DNS or IP subjectAltName is required".into());
    }
    if !subject.email_addresses.is_empty() {
        return Err("Email subjectAltNames are not allowed".into());
    }
    if !subject.uris.is_empty() {
        return Err("URI subjectAltNames are not allowed".into());
    }
    let full = set(&[
        USAGE_DIGITAL_SIGNATURE,
        USAGE_KEY_ENCIPHERMENT,
        USAGE_SERVER_AUTH,
    ]);
    let no_rsa = set(&[USAGE_DIGITAL_SIGNATURE, USAGE_SERVER_AUTH]);
    if *usages != full && *usages != no_rsa {
        return Err(format!("usages did not match {}", go_list(&full)));
    }
    common_name_is_node(subject)
}

/// Upstream's `validAPIServerClientUsages`: client auth required; digital signature and key
/// encipherment allowed; nothing else.
pub fn validate_apiserver_client_usages(usages: &[String]) -> Result<(), String> {
    let mut client_auth = false;
    for u in usages {
        match u.as_str() {
            USAGE_DIGITAL_SIGNATURE | USAGE_KEY_ENCIPHERMENT => {}
            USAGE_CLIENT_AUTH => client_auth = true,
            other => return Err(format!("invalid usage for client certificate: {other}")),
        }
    }
    if !client_auth {
        return Err(format!(
            "missing required usage for client certificate: {USAGE_CLIENT_AUTH}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::certificates::v1::{
        CertificateSigningRequestCondition, CertificateSigningRequestStatus,
    };

    fn node(cn: &str) -> CsrSubject {
        CsrSubject {
            common_name: cn.into(),
            organizations: vec!["system:nodes".into()],
            ..Default::default()
        }
    }

    fn usages(u: &[&str]) -> BTreeSet<String> {
        set(u)
    }

    /// What is checked, the subject, the usages, the expected answer.
    type Case = (
        &'static str,
        CsrSubject,
        BTreeSet<String>,
        Result<(), &'static str>,
    );

    const CLIENT: &[&str] = &[
        USAGE_DIGITAL_SIGNATURE,
        USAGE_KEY_ENCIPHERMENT,
        USAGE_CLIENT_AUTH,
    ];

    #[test]
    fn kubelet_client_requests_are_checked_like_upstream() {
        let with = |f: fn(&mut CsrSubject)| {
            let mut s = node("system:node:n1");
            f(&mut s);
            s
        };
        let cases: Vec<Case> = vec![
            ("valid", node("system:node:n1"), usages(CLIENT), Ok(())),
            (
                "valid without key encipherment",
                node("system:node:n1"),
                usages(&[USAGE_DIGITAL_SIGNATURE, USAGE_CLIENT_AUTH]),
                Ok(()),
            ),
            (
                "extra org",
                with(|s| s.organizations.push("x".into())),
                usages(CLIENT),
                Err("subject organization is not system:nodes"),
            ),
            (
                "no org",
                with(|s| s.organizations.clear()),
                usages(CLIENT),
                Err("subject organization is not system:nodes"),
            ),
            (
                "dns san",
                with(|s| s.dns_names.push("n1".into())),
                usages(CLIENT),
                Err("DNS subjectAltNames are not allowed"),
            ),
            (
                "email san",
                with(|s| s.email_addresses.push("a@b".into())),
                usages(CLIENT),
                Err("Email subjectAltNames are not allowed"),
            ),
            (
                "ip san",
                with(|s| s.ip_addresses.push("10.0.0.1".into())),
                usages(CLIENT),
                Err("IP subjectAltNames are not allowed"),
            ),
            (
                "uri san",
                with(|s| s.uris.push("spiffe://x".into())),
                usages(CLIENT),
                Err("URI subjectAltNames are not allowed"),
            ),
            (
                "not a node",
                node("alice"),
                usages(CLIENT),
                Err("subject common name does not begin with system:node:"),
            ),
            (
                "server auth",
                node("system:node:n1"),
                usages(&[
                    USAGE_DIGITAL_SIGNATURE,
                    USAGE_KEY_ENCIPHERMENT,
                    USAGE_CLIENT_AUTH,
                    USAGE_SERVER_AUTH,
                ]),
                Err("usages did not match [client auth digital signature key encipherment]"),
            ),
            (
                "client auth only",
                node("system:node:n1"),
                usages(&[USAGE_CLIENT_AUTH]),
                Err("usages did not match [client auth digital signature key encipherment]"),
            ),
        ];
        for (what, subject, usages, want) in cases {
            let got = validate_kubelet_client(&subject, &usages);
            assert_eq!(
                got.as_ref().map_err(String::as_str),
                want.as_ref().map_err(|e| *e),
                "{what}"
            );
        }
    }

    #[test]
    fn kubelet_serving_requests_are_checked_like_upstream() {
        const SERVING: &[&str] = &[
            USAGE_DIGITAL_SIGNATURE,
            USAGE_KEY_ENCIPHERMENT,
            USAGE_SERVER_AUTH,
        ];
        let dns = |cn: &str| CsrSubject {
            dns_names: vec!["n1.example".into()],
            ..node(cn)
        };
        let cases: Vec<Case> = vec![
            ("valid", dns("system:node:n1"), usages(SERVING), Ok(())),
            (
                "ip only",
                CsrSubject {
                    ip_addresses: vec!["10.0.0.1".into()],
                    ..node("system:node:n1")
                },
                usages(&[USAGE_DIGITAL_SIGNATURE, USAGE_SERVER_AUTH]),
                Ok(()),
            ),
            (
                "no san",
                node("system:node:n1"),
                usages(SERVING),
                Err("DNS or IP subjectAltName is required"),
            ),
            (
                "client usages",
                dns("system:node:n1"),
                usages(CLIENT),
                Err("usages did not match [digital signature key encipherment server auth]"),
            ),
            (
                "not a node",
                dns("n1"),
                usages(SERVING),
                Err("subject common name does not begin with system:node:"),
            ),
        ];
        for (what, subject, usages, want) in cases {
            let got = validate_kubelet_serving(&subject, &usages);
            assert_eq!(
                got.as_ref().map_err(String::as_str),
                want.as_ref().map_err(|e| *e),
                "{what}"
            );
        }
    }

    #[test]
    fn apiserver_client_usages_need_client_auth_and_nothing_foreign() {
        let v = |u: &[&str]| {
            validate_apiserver_client_usages(&u.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        };
        assert_eq!(v(&[USAGE_CLIENT_AUTH]), Ok(()));
        assert_eq!(v(CLIENT), Ok(()));
        assert_eq!(
            v(&[USAGE_DIGITAL_SIGNATURE]),
            Err("missing required usage for client certificate: client auth".into())
        );
        assert_eq!(
            v(&[USAGE_CLIENT_AUTH, USAGE_SERVER_AUTH]),
            Err("invalid usage for client certificate: server auth".into())
        );
    }

    #[test]
    fn approval_state_reads_condition_types() {
        let csr = |types: &[(&str, &str)]| CertificateSigningRequest {
            status: Some(CertificateSigningRequestStatus {
                conditions: Some(
                    types
                        .iter()
                        .map(|(t, s)| CertificateSigningRequestCondition {
                            type_: t.to_string(),
                            status: s.to_string(),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(approval_state(&csr(&[])), (false, false));
        assert_eq!(approval_state(&csr(&[("Approved", "True")])), (true, false));
        assert_eq!(
            approval_state(&csr(&[("Approved", "True"), ("Denied", "True")])),
            (true, true)
        );
        assert!(has_true_condition(
            &csr(&[("Failed", "")]),
            CONDITION_FAILED
        ));
        assert!(!has_true_condition(
            &csr(&[("Failed", "False")]),
            CONDITION_FAILED
        ));
    }

    #[test]
    fn pem_that_is_not_a_request_is_refused_with_upstreams_text() {
        let cert = b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";
        assert_eq!(
            parse_csr(cert),
            Err("PEM block type must be CERTIFICATE REQUEST".into())
        );
        assert_eq!(
            parse_csr(b"garbage"),
            Err("PEM block type must be CERTIFICATE REQUEST".into())
        );
        let bad = b"-----BEGIN CERTIFICATE REQUEST-----\nMAA=\n-----END CERTIFICATE REQUEST-----\n";
        assert!(parse_csr(bad).is_err());
    }

    #[test]
    fn requests_made_by_rcgen_are_read_back() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["n1.example".to_string()]).unwrap();
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress("10.0.0.7".parse().unwrap()));
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "system:node:n1");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "system:nodes");
        let pem = params.serialize_request(&key).unwrap().pem().unwrap();
        let got = parse_csr(pem.as_bytes()).unwrap();
        assert_eq!(
            got,
            CsrSubject {
                common_name: "system:node:n1".into(),
                organizations: vec!["system:nodes".into()],
                dns_names: vec!["n1.example".into()],
                ip_addresses: vec!["10.0.0.7".into()],
                ..Default::default()
            }
        );
    }
}
