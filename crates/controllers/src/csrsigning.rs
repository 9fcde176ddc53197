//! `csrsigning` (upstream's `signer.go`, for the three built-in signers it serves:
//! `kubernetes.io/kube-apiserver-client`, `kubernetes.io/kube-apiserver-client-kubelet`,
//! `kubernetes.io/kubelet-serving`): an approved request (no `Denied`, no true `Failed`)
//! without a certificate gets one from the injected [`CsrSigner`], written
//! to `status.certificate` through the `status` subresource.
//!
//! A request the signer's rules refuse gets condition `Failed` (reason
//! `SignerValidationFailure`) instead. The lifetime is `spec.expirationSeconds`, at least ten
//! minutes and at most the configured `cluster_signing_duration`. Requests for other signers
//! are left alone.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::ByteString;
use kube::api::PostParams;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};

use crate::certificates::{
    approval_state, has_certificate, has_true_condition, parse_csr, usage_set,
    validate_apiserver_client_usages, validate_kubelet_client, validate_kubelet_serving,
    CsrSubject, CONDITION_FAILED, KUBELET_SERVING_SIGNER, KUBE_APISERVER_CLIENT_KUBELET_SIGNER,
    KUBE_APISERVER_CLIENT_SIGNER,
};
use crate::driver::{drive, on_objects, reflect};
use crate::{ControllerContext, CsrSigner, Error};

pub const NAME: &str = "csrsigning";

/// The signers this controller signs for.
pub const SIGNER_NAMES: &[&str] = &[
    KUBE_APISERVER_CLIENT_SIGNER,
    KUBE_APISERVER_CLIENT_KUBELET_SIGNER,
    KUBELET_SERVING_SIGNER,
];

/// The shortest certificate issued, whatever `expirationSeconds` asks: twice the signer's
/// five-minute backdating, as upstream.
pub const MIN_LIFETIME: Duration = Duration::from_secs(600);

pub const FAILURE_REASON: &str = "SignerValidationFailure";

/// What to do with a CSR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigningPlan {
    /// Not ours, not approved, already failed or already issued.
    Skip,
    /// `spec.request` cannot be read: an error, retried.
    Unreadable(String),
    /// The signer's rules refuse it: record condition `Failed` with this message.
    Fail(String),
    /// Sign it for this long.
    Sign { lifetime: Duration },
}

/// Upstream's `duration`: the requested lifetime clamped to `[MIN_LIFETIME, max]`, `max` when
/// none is requested.
pub fn lifetime(expiration_seconds: Option<i32>, max: Duration) -> Duration {
    let Some(secs) = expiration_seconds else {
        return max;
    };
    let requested = Duration::from_secs(u64::try_from(secs).unwrap_or(0));
    if requested > max {
        max
    } else if requested < MIN_LIFETIME {
        MIN_LIFETIME
    } else {
        requested
    }
}

/// The signer's rules for a request (upstream's `isRequestForSignerFn`).
fn validate(
    signer: &str,
    subject: &CsrSubject,
    csr: &CertificateSigningRequest,
) -> Result<(), String> {
    match signer {
        KUBELET_SERVING_SIGNER => validate_kubelet_serving(subject, &usage_set(csr)),
        KUBE_APISERVER_CLIENT_KUBELET_SIGNER => validate_kubelet_client(subject, &usage_set(csr)),
        _ => validate_apiserver_client_usages(csr.spec.usages.as_deref().unwrap_or_default()),
    }
}

/// Decides what a CSR needs; `parse` reads `spec.request`.
pub fn plan(
    csr: &CertificateSigningRequest,
    max: Duration,
    parse: impl FnOnce(&[u8]) -> Result<CsrSubject, String>,
) -> SigningPlan {
    let (approved, denied) = approval_state(csr);
    if has_certificate(csr) || !approved || denied || has_true_condition(csr, CONDITION_FAILED) {
        return SigningPlan::Skip;
    }
    let signer = csr.spec.signer_name.as_str();
    if !SIGNER_NAMES.contains(&signer) {
        return SigningPlan::Skip;
    }
    let subject = match parse(&csr.spec.request.0) {
        Ok(s) => s,
        Err(e) => return SigningPlan::Unreadable(e),
    };
    match validate(signer, &subject, csr) {
        Err(message) => SigningPlan::Fail(message),
        Ok(()) => SigningPlan::Sign {
            lifetime: lifetime(csr.spec.expiration_seconds, max),
        },
    }
}

/// The CSR with condition `Failed` appended.
pub fn failed(
    csr: &CertificateSigningRequest,
    message: &str,
    now: Time,
) -> CertificateSigningRequest {
    let mut out = csr.clone();
    out.status
        .get_or_insert_with(Default::default)
        .conditions
        .get_or_insert_with(Vec::new)
        .push(CertificateSigningRequestCondition {
            type_: CONDITION_FAILED.into(),
            status: "True".into(),
            reason: Some(FAILURE_REASON.into()),
            message: Some(message.into()),
            last_update_time: Some(now),
            ..Default::default()
        });
    out
}

/// The CSR with its certificate.
pub fn issued(
    csr: &CertificateSigningRequest,
    certificate_pem: String,
) -> CertificateSigningRequest {
    let mut out = csr.clone();
    out.status.get_or_insert_with(Default::default).certificate =
        Some(ByteString(certificate_pem.into_bytes()));
    out
}

struct State {
    client: Client,
    signer: Arc<dyn CsrSigner>,
    max: Duration,
}

/// Runs the controller until its watch ends; refuses to start without a signer.
pub async fn run(client: Client, ctx: Arc<ControllerContext>) -> Result<(), Error> {
    let signer = ctx.csr_signer.clone().ok_or(Error::MissingDependency {
        controller: NAME,
        what: "a CSR signer (the cluster signing CA)",
    })?;
    let api = Api::<CertificateSigningRequest>::all(ctx.informers(&client));
    let (csrs, events) = reflect(NAME, api, watcher::Config::default());
    let triggers = vec![on_objects(
        events,
        false,
        |c: &CertificateSigningRequest| Some(ObjectRef::from_obj(c)),
    )];
    let state = Arc::new(State {
        client,
        signer,
        max: ctx.cluster_signing_duration,
    });
    drive(NAME, &ctx, csrs, triggers, state, reconcile).await
}

async fn reconcile(csr: Arc<CertificateSigningRequest>, st: Arc<State>) -> Result<Action, Error> {
    let name = csr.name_any();
    let updated = match plan(&csr, st.max, parse_csr) {
        SigningPlan::Skip => return Ok(Action::await_change()),
        SigningPlan::Unreadable(message) => return Err(Error::CsrParse { name, message }),
        SigningPlan::Fail(message) => {
            tracing::info!(
                controller = NAME,
                csr = name,
                reason = message,
                "refusing to sign"
            );
            failed(&csr, &message, Time(k8s_openapi::jiff::Timestamp::now()))
        }
        SigningPlan::Sign { lifetime } => {
            let usages = csr.spec.usages.clone().unwrap_or_default();
            let cert = st
                .signer
                .sign(&csr.spec.request.0, &usages, lifetime)
                .map_err(|message| Error::Signing {
                    name: name.clone(),
                    message,
                })?;
            tracing::info!(
                controller = NAME,
                csr = name,
                lifetime_secs = lifetime.as_secs(),
                "signed certificate"
            );
            issued(&csr, cert)
        }
    };
    let api = Api::<CertificateSigningRequest>::all(st.client.clone());
    api.replace_status(&name, &PostParams::default(), &updated)
        .await?;
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certificates::{
        USAGE_CLIENT_AUTH, USAGE_DIGITAL_SIGNATURE, USAGE_KEY_ENCIPHERMENT, USAGE_SERVER_AUTH,
    };
    use k8s_openapi::api::certificates::v1::{
        CertificateSigningRequestSpec, CertificateSigningRequestStatus,
    };

    const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

    fn csr(
        signer: &str,
        usages: &[&str],
        conditions: &[(&str, &str)],
    ) -> CertificateSigningRequest {
        CertificateSigningRequest {
            metadata: kube::api::ObjectMeta {
                name: Some("csr-1".into()),
                ..Default::default()
            },
            spec: CertificateSigningRequestSpec {
                signer_name: signer.into(),
                usages: Some(usages.iter().map(|u| u.to_string()).collect()),
                request: ByteString(b"REQ".to_vec()),
                ..Default::default()
            },
            status: Some(CertificateSigningRequestStatus {
                conditions: Some(
                    conditions
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
        }
    }

    fn node_client(_: &[u8]) -> Result<CsrSubject, String> {
        Ok(CsrSubject {
            common_name: "system:node:n1".into(),
            organizations: vec!["system:nodes".into()],
            ..Default::default()
        })
    }

    const APPROVED: &[(&str, &str)] = &[("Approved", "True")];
    const CLIENT: &[&str] = &[
        USAGE_DIGITAL_SIGNATURE,
        USAGE_KEY_ENCIPHERMENT,
        USAGE_CLIENT_AUTH,
    ];

    #[test]
    fn approved_requests_of_our_signers_are_signed_and_others_skipped() {
        let sign = SigningPlan::Sign { lifetime: YEAR };
        let cases: Vec<(&str, CertificateSigningRequest, SigningPlan)> = vec![
            (
                "approved apiserver client",
                csr(KUBE_APISERVER_CLIENT_SIGNER, CLIENT, APPROVED),
                sign.clone(),
            ),
            (
                "approved kubelet client",
                csr(KUBE_APISERVER_CLIENT_KUBELET_SIGNER, CLIENT, APPROVED),
                sign,
            ),
            (
                "pending",
                csr(KUBE_APISERVER_CLIENT_SIGNER, CLIENT, &[]),
                SigningPlan::Skip,
            ),
            (
                "denied too",
                csr(
                    KUBE_APISERVER_CLIENT_SIGNER,
                    CLIENT,
                    &[("Approved", "True"), ("Denied", "True")],
                ),
                SigningPlan::Skip,
            ),
            (
                "failed",
                csr(
                    KUBE_APISERVER_CLIENT_SIGNER,
                    CLIENT,
                    &[("Approved", "True"), ("Failed", "True")],
                ),
                SigningPlan::Skip,
            ),
            (
                "foreign signer",
                csr("example.com/signer", CLIENT, APPROVED),
                SigningPlan::Skip,
            ),
            (
                "client signer, server usage",
                csr(
                    KUBE_APISERVER_CLIENT_SIGNER,
                    &[USAGE_CLIENT_AUTH, USAGE_SERVER_AUTH],
                    APPROVED,
                ),
                SigningPlan::Fail("invalid usage for client certificate: server auth".into()),
            ),
            (
                "serving signer without SANs",
                csr(
                    KUBELET_SERVING_SIGNER,
                    &[USAGE_DIGITAL_SIGNATURE, USAGE_SERVER_AUTH],
                    APPROVED,
                ),
                SigningPlan::Fail("DNS or IP subjectAltName is required".into()),
            ),
        ];
        for (what, c, want) in cases {
            assert_eq!(plan(&c, YEAR, node_client), want, "{what}");
        }
        let mut issued_already = csr(KUBE_APISERVER_CLIENT_SIGNER, CLIENT, APPROVED);
        issued_already = issued(&issued_already, "PEM".into());
        assert_eq!(plan(&issued_already, YEAR, node_client), SigningPlan::Skip);
        let unreadable = plan(
            &csr(KUBE_APISERVER_CLIENT_SIGNER, CLIENT, APPROVED),
            YEAR,
            |_| Err("bad".into()),
        );
        assert_eq!(unreadable, SigningPlan::Unreadable("bad".into()));
    }

    #[test]
    fn lifetime_honours_expiration_seconds_within_bounds() {
        let day = Duration::from_secs(86400);
        let cases: &[(Option<i32>, Duration, Duration)] = &[
            (None, YEAR, YEAR),
            (Some(86400), YEAR, day),
            (Some(60), YEAR, MIN_LIFETIME),
            (Some(-5), YEAR, MIN_LIFETIME),
            (Some(600), YEAR, MIN_LIFETIME),
            (Some(i32::MAX), YEAR, YEAR),
            (Some(86400 * 2), day, day),
        ];
        for (requested, max, want) in cases {
            assert_eq!(
                lifetime(*requested, *max),
                *want,
                "{requested:?} with max {max:?}"
            );
        }
    }

    #[test]
    fn failure_and_certificate_are_recorded_in_status() {
        let c = csr(KUBE_APISERVER_CLIENT_SIGNER, CLIENT, APPROVED);
        let now = Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
        let f = failed(&c, "nope", now.clone());
        let cond = f
            .status
            .as_ref()
            .unwrap()
            .conditions
            .as_ref()
            .unwrap()
            .last()
            .unwrap()
            .clone();
        assert_eq!(cond.type_, "Failed");
        assert_eq!(cond.reason.as_deref(), Some(FAILURE_REASON));
        assert_eq!(cond.message.as_deref(), Some("nope"));
        assert_eq!(cond.last_update_time, Some(now));
        let i = issued(&c, "PEM".into());
        assert_eq!(
            i.status.unwrap().certificate,
            Some(ByteString(b"PEM".to_vec()))
        );
    }
}
