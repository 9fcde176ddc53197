//! `csrapproving` and `csrsigning` against a real API server, with certificate requests made
//! by rcgen, a fake signer and fake access reviewers.
//!
//! Two stand-ins for API server features this branch does not have yet:
//! - SubjectAccessReviews are answered by an injected [`AccessReviewer`] (the controller's
//!   seam for this), not by the server;
//! - the `approval` subresource answers 405 here, so the approver's client retries such a
//!   PUT on `status` ([`approval_falls_back_to_status`]); once the server serves `approval`,
//!   the first attempt succeeds and the fallback is never used.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{cluster, start, wait_for, Running, TestResult, CA_PEM};
use k8s_openapi::api::authorization::v1::SubjectAccessReview;
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition, CertificateSigningRequestSpec,
    CertificateSigningRequestStatus,
};
use k8s_openapi::ByteString;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, ResourceExt};
use rkube_controllers::csrapproving::{self, AccessReviewer};
use rkube_controllers::{identity, ControllerContext, CsrSigner, Error};

/// A signer that issues a throwaway self-signed certificate and writes down each request.
#[derive(Default)]
struct RecordingSigner {
    calls: Mutex<Vec<(Vec<String>, Duration)>>,
    certificate: String,
}

impl RecordingSigner {
    fn new() -> Result<Self, rcgen::Error> {
        let key = rcgen::KeyPair::generate()?;
        let cert =
            rcgen::CertificateParams::new(vec!["issued.example".to_string()])?.self_signed(&key)?;
        Ok(RecordingSigner {
            calls: Mutex::default(),
            certificate: cert.pem(),
        })
    }

    fn calls(&self) -> Vec<(Vec<String>, Duration)> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

impl CsrSigner for RecordingSigner {
    fn sign(
        &self,
        csr_pem: &[u8],
        usages: &[String],
        lifetime: Duration,
    ) -> Result<String, String> {
        if !csr_pem.starts_with(b"-----BEGIN CERTIFICATE REQUEST-----") {
            return Err("not a PEM certificate request".into());
        }
        if let Ok(mut calls) = self.calls.lock() {
            calls.push((usages.to_vec(), lifetime));
        }
        Ok(self.certificate.clone())
    }
}

/// Answers every access review with `allow`, and writes the reviews down.
struct FixedReviewer {
    allow: bool,
    reviews: Mutex<Vec<SubjectAccessReview>>,
}

impl FixedReviewer {
    fn new(allow: bool) -> Arc<Self> {
        Arc::new(FixedReviewer {
            allow,
            reviews: Mutex::default(),
        })
    }

    fn reviews(&self) -> Vec<SubjectAccessReview> {
        self.reviews.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

#[async_trait::async_trait]
impl AccessReviewer for FixedReviewer {
    async fn allowed(&self, review: &SubjectAccessReview) -> Result<bool, Error> {
        if let Ok(mut r) = self.reviews.lock() {
            r.push(review.clone());
        }
        Ok(self.allow)
    }
}

/// A PEM certificate request with this subject and DNS names.
fn request(cn: &str, org: Option<&str>, dns: &[&str]) -> Result<String, rcgen::Error> {
    let key = rcgen::KeyPair::generate()?;
    let mut params =
        rcgen::CertificateParams::new(dns.iter().map(|d| d.to_string()).collect::<Vec<_>>())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    if let Some(o) = org {
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, o);
    }
    params.serialize_request(&key)?.pem()
}

fn csr(
    name: &str,
    pem: String,
    signer: &str,
    usages: &[&str],
    expiration: Option<i32>,
) -> CertificateSigningRequest {
    CertificateSigningRequest {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        spec: CertificateSigningRequestSpec {
            request: ByteString(pem.into_bytes()),
            signer_name: signer.into(),
            usages: Some(usages.iter().map(|u| u.to_string()).collect()),
            expiration_seconds: expiration,
            username: Some("system:bootstrap:abc123".into()),
            groups: Some(vec![
                "system:bootstrappers".into(),
                "system:authenticated".into(),
            ]),
            ..Default::default()
        },
        status: None,
    }
}

/// Approves `name` as an administrator would (`kubectl certificate approve`).
async fn approve(client: &kube::Client, name: &str) -> TestResult {
    let api = Api::<CertificateSigningRequest>::all(client.clone());
    let mut c = api.get(name).await?;
    c.status = Some(CertificateSigningRequestStatus {
        conditions: Some(vec![CertificateSigningRequestCondition {
            type_: "Approved".into(),
            status: "True".into(),
            reason: Some("KubectlApprove".into()),
            message: Some("This CSR was approved by kubectl certificate approve.".into()),
            ..Default::default()
        }]),
        ..Default::default()
    });
    api.replace_subresource("approval", name, &PostParams::default(), &c)
        .await?;
    Ok(())
}

async fn wait_certificate(api: &Api<CertificateSigningRequest>, name: &str) -> Vec<u8> {
    wait_for(&format!("csr {name} to get a certificate"), || {
        let api = api.clone();
        let name = name.to_string();
        async move {
            let c = api.get_opt(&name).await.ok()??;
            c.status?.certificate.map(|b| b.0).filter(|b| !b.is_empty())
        }
    })
    .await
}

fn signing_context(signer: Arc<RecordingSigner>) -> ControllerContext {
    let mut ctx = ControllerContext::new(CA_PEM);
    ctx.csr_signer = Some(signer);
    ctx
}

const CLIENT_AUTH: &str = "client auth";
const KUBELET_CLIENT_USAGES: &[&str] = &["digital signature", "key encipherment", "client auth"];

#[tokio::test]
async fn approved_csr_gets_a_certificate_from_the_signer() -> TestResult {
    let c = cluster().await?;
    let signer = Arc::new(RecordingSigner::new()?);
    let _controllers = start(&c, signing_context(signer.clone()), "csrsigning");
    let admin = c.client.clone();
    let api = Api::<CertificateSigningRequest>::all(c.client.clone());
    let pp = PostParams::default();

    // Pending, and for a signer rkube does not run: neither may be signed.
    api.create(
        &pp,
        &csr(
            "pending",
            request("alice", None, &[])?,
            "kubernetes.io/kube-apiserver-client",
            &[CLIENT_AUTH],
            None,
        ),
    )
    .await?;
    api.create(
        &pp,
        &csr(
            "foreign",
            request("bob", None, &[])?,
            "example.com/signer",
            &[CLIENT_AUTH],
            None,
        ),
    )
    .await?;
    approve(&admin, "foreign").await?;

    let short = csr(
        "alice",
        request("alice", Some("devs"), &[])?,
        "kubernetes.io/kube-apiserver-client",
        &[CLIENT_AUTH],
        Some(3600),
    );
    api.create(&pp, &short).await?;
    approve(&admin, "alice").await?;
    let pem = wait_certificate(&api, "alice").await;
    assert_eq!(pem, signer.certificate.as_bytes());
    assert_eq!(
        signer.calls(),
        vec![(vec![CLIENT_AUTH.to_string()], Duration::from_secs(3600))]
    );

    // A lifetime below ten minutes is raised to ten minutes.
    let tiny = csr(
        "tiny",
        request("alice", None, &[])?,
        "kubernetes.io/kube-apiserver-client",
        &[CLIENT_AUTH],
        Some(60),
    );
    api.create(&pp, &tiny).await?;
    approve(&admin, "tiny").await?;
    wait_certificate(&api, "tiny").await;
    assert_eq!(
        signer.calls().last().map(|c| c.1),
        Some(Duration::from_secs(600))
    );

    for name in ["pending", "foreign"] {
        let other = api.get(name).await?;
        assert!(
            other.status.and_then(|s| s.certificate).is_none(),
            "{name} was signed"
        );
    }
    Ok(())
}

#[tokio::test]
async fn approved_csr_the_signer_rules_refuse_is_marked_failed() -> TestResult {
    let c = cluster().await?;
    let signer = Arc::new(RecordingSigner::new()?);
    let _controllers = start(&c, signing_context(signer.clone()), "csrsigning");
    let admin = c.client.clone();
    let api = Api::<CertificateSigningRequest>::all(c.client.clone());
    // A kubelet client certificate for someone who is not a node.
    let bad = csr(
        "not-a-node",
        request("alice", None, &[])?,
        "kubernetes.io/kube-apiserver-client-kubelet",
        KUBELET_CLIENT_USAGES,
        None,
    );
    api.create(&PostParams::default(), &bad).await?;
    approve(&admin, "not-a-node").await?;
    let failed = wait_for("condition Failed", || {
        let api = api.clone();
        async move {
            let c = api.get_opt("not-a-node").await.ok()??;
            c.status?
                .conditions?
                .into_iter()
                .find(|c| c.type_ == "Failed")
        }
    })
    .await;
    assert_eq!(failed.reason.as_deref(), Some("SignerValidationFailure"));
    assert_eq!(
        failed.message.as_deref(),
        Some("subject organization is not system:nodes")
    );
    assert!(signer.calls().is_empty());
    Ok(())
}

#[tokio::test]
async fn kubelet_client_csr_is_approved_after_access_review_and_signed() -> TestResult {
    let c = cluster().await?;
    let signer = Arc::new(RecordingSigner::new()?);
    let _signing = start(&c, signing_context(signer.clone()), "csrsigning");
    let reviewer = FixedReviewer::new(true);
    let _approving = Running::spawn(csrapproving::run_with_reviewer(
        c.client_as(identity("certificate-controller")),
        Arc::new(ControllerContext::new(CA_PEM)),
        reviewer.clone(),
    ));
    let api = Api::<CertificateSigningRequest>::all(c.client.clone());
    let node = csr(
        "node-n1",
        request("system:node:n1", Some("system:nodes"), &[])?,
        "kubernetes.io/kube-apiserver-client-kubelet",
        KUBELET_CLIENT_USAGES,
        None,
    );
    api.create(&PostParams::default(), &node).await?;

    let approved = wait_for("the CSR to be approved", || {
        let api = api.clone();
        async move {
            let c = api.get_opt("node-n1").await.ok()??;
            c.status?
                .conditions?
                .into_iter()
                .find(|c| c.type_ == "Approved")
        }
    })
    .await;
    assert_eq!(approved.status, "True");
    assert_eq!(approved.reason.as_deref(), Some("AutoApproved"));
    assert_eq!(
        approved.message.as_deref(),
        Some("Auto approving kubelet client certificate after SubjectAccessReview.")
    );
    wait_certificate(&api, "node-n1").await;

    let stored = api.get("node-n1").await?;
    let reviews = reviewer.reviews();
    let asked = reviews.first().ok_or("no access review")?;
    assert_eq!(asked.spec.user, stored.spec.username);
    assert_eq!(asked.spec.groups, stored.spec.groups);
    let attrs = asked
        .spec
        .resource_attributes
        .as_ref()
        .ok_or("no resource attributes")?;
    assert_eq!(attrs.subresource.as_deref(), Some("nodeclient"));
    assert_eq!(attrs.verb.as_deref(), Some("create"));
    assert_eq!(stored.name_any(), "node-n1");
    Ok(())
}

#[tokio::test]
async fn refused_access_review_leaves_the_csr_pending() -> TestResult {
    let c = cluster().await?;
    let reviewer = FixedReviewer::new(false);
    let _approving = Running::spawn(csrapproving::run_with_reviewer(
        c.client_as(identity("certificate-controller")),
        Arc::new(ControllerContext::new(CA_PEM)),
        reviewer.clone(),
    ));
    let api = Api::<CertificateSigningRequest>::all(c.client.clone());
    let node = csr(
        "node-n2",
        request("system:node:n2", Some("system:nodes"), &[])?,
        "kubernetes.io/kube-apiserver-client-kubelet",
        KUBELET_CLIENT_USAGES,
        None,
    );
    api.create(&PostParams::default(), &node).await?;
    // A second review means the first reconcile finished (refused) and was retried.
    wait_for("the review to be retried", || {
        let n = reviewer.reviews().len();
        async move { (n >= 2).then_some(()) }
    })
    .await;
    let pending = api.get("node-n2").await?;
    let conditions = pending
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default();
    assert!(conditions.is_empty(), "{conditions:?}");
    Ok(())
}
