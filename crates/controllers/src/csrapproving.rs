//! `csrapproving` (upstream's `sarapprove.go`): approves kubelet client certificate requests
//! (signer `kubernetes.io/kube-apiserver-client-kubelet`) when the requester may ask for one,
//! as a SubjectAccessReview says: `create certificatesigningrequests/selfnodeclient` when the
//! requester is the node the certificate names, else `.../nodeclient`.
//!
//! The access check goes through the [`AccessReviewer`] trait: [`ApiAccessReviewer`] POSTs a
//! SubjectAccessReview, tests inject answers. Approval appends condition `Approved` through the
//! `approval` subresource. A recognised request the review refuses is retried with backoff, as
//! upstream's ignorable error.

use std::sync::Arc;

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition,
};
use kube::api::PostParams;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Client, ResourceExt};

use crate::certificates::{
    approval_state, has_certificate, parse_csr, usage_set, validate_kubelet_client, CsrSubject,
    CONDITION_APPROVED, KUBE_APISERVER_CLIENT_KUBELET_SIGNER,
};
use crate::driver::{drive, on_objects};
use crate::{ControllerContext, Error};

pub const NAME: &str = "csrapproving";
pub const REASON: &str = "AutoApproved";

/// One kind of request the approver knows, and the permission that approves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recognizer {
    /// The `certificatesigningrequests` subresource the requester must be allowed to create.
    pub subresource: &'static str,
    /// The approval condition's message.
    pub message: &'static str,
}

pub const SELF_NODE_CLIENT: Recognizer = Recognizer {
    subresource: "selfnodeclient",
    message: "Auto approving self kubelet client certificate after SubjectAccessReview.",
};

pub const NODE_CLIENT: Recognizer = Recognizer {
    subresource: "nodeclient",
    message: "Auto approving kubelet client certificate after SubjectAccessReview.",
};

/// Whether a CSR still awaits a decision: no certificate, neither approved nor denied.
pub fn undecided(csr: &CertificateSigningRequest) -> bool {
    let (approved, denied) = approval_state(csr);
    !has_certificate(csr) && !approved && !denied
}

fn is_node_client(csr: &CertificateSigningRequest, subject: &CsrSubject) -> bool {
    csr.spec.signer_name == KUBE_APISERVER_CLIENT_KUBELET_SIGNER
        && validate_kubelet_client(subject, &usage_set(csr)).is_ok()
}

/// The recognizers that match a request, in the order their permissions are tried:
/// `selfnodeclient` when the requester is the node named in the request, then `nodeclient`.
pub fn recognize(csr: &CertificateSigningRequest, subject: &CsrSubject) -> Vec<Recognizer> {
    if !is_node_client(csr, subject) {
        return Vec::new();
    }
    let mut out = Vec::new();
    if csr.spec.username.as_deref() == Some(subject.common_name.as_str()) {
        out.push(SELF_NODE_CLIENT);
    }
    out.push(NODE_CLIENT);
    out
}

/// The review asking whether the CSR's requester may create the recognizer's subresource.
pub fn access_review(csr: &CertificateSigningRequest, r: &Recognizer) -> SubjectAccessReview {
    SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: csr.spec.username.clone(),
            uid: csr.spec.uid.clone(),
            groups: csr.spec.groups.clone(),
            extra: csr.spec.extra.clone(),
            resource_attributes: Some(ResourceAttributes {
                group: Some("certificates.k8s.io".into()),
                resource: Some("certificatesigningrequests".into()),
                verb: Some("create".into()),
                subresource: Some(r.subresource.into()),
                version: Some("*".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The CSR with the approval condition appended.
pub fn approved(csr: &CertificateSigningRequest, r: &Recognizer) -> CertificateSigningRequest {
    let mut out = csr.clone();
    let status = out.status.get_or_insert_with(Default::default);
    status
        .conditions
        .get_or_insert_with(Vec::new)
        .push(CertificateSigningRequestCondition {
            type_: CONDITION_APPROVED.into(),
            status: "True".into(),
            reason: Some(REASON.into()),
            message: Some(r.message.into()),
            ..Default::default()
        });
    out
}

/// Answers access reviews.
#[async_trait::async_trait]
pub trait AccessReviewer: Send + Sync {
    /// Whether the review's subject may do what it asks.
    async fn allowed(&self, review: &SubjectAccessReview) -> Result<bool, Error>;
}

/// Asks the API server (`POST /apis/authorization.k8s.io/v1/subjectaccessreviews`).
#[derive(Clone)]
pub struct ApiAccessReviewer {
    client: Client,
}

impl ApiAccessReviewer {
    pub fn new(client: Client) -> Self {
        ApiAccessReviewer { client }
    }
}

impl std::fmt::Debug for ApiAccessReviewer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiAccessReviewer")
    }
}

#[async_trait::async_trait]
impl AccessReviewer for ApiAccessReviewer {
    async fn allowed(&self, review: &SubjectAccessReview) -> Result<bool, Error> {
        let api = Api::<SubjectAccessReview>::all(self.client.clone());
        let answer = api.create(&PostParams::default(), review).await?;
        Ok(answer.status.is_some_and(|s| s.allowed))
    }
}

struct State {
    client: Client,
    reviewer: Arc<dyn AccessReviewer>,
}

/// Runs the controller until its watch ends, checking access with SubjectAccessReviews.
pub async fn run(client: Client, ctx: Arc<ControllerContext>) -> Result<(), Error> {
    let reviewer = Arc::new(ApiAccessReviewer::new(client.clone()));
    run_with_reviewer(client, ctx, reviewer).await
}

/// [`run`] with another way of answering access reviews.
pub async fn run_with_reviewer(
    client: Client,
    ctx: Arc<ControllerContext>,
    reviewer: Arc<dyn AccessReviewer>,
) -> Result<(), Error> {
    let (csrs, events) = ctx
        .informer::<CertificateSigningRequest>(NAME, &client)
        .await;
    let triggers = vec![on_objects(
        events,
        false,
        |c: &CertificateSigningRequest| Some(ObjectRef::from_obj(c)),
    )];
    let state = Arc::new(State { client, reviewer });
    drive(NAME, &ctx, csrs, triggers, state, reconcile).await
}

async fn reconcile(csr: Arc<CertificateSigningRequest>, st: Arc<State>) -> Result<Action, Error> {
    if !undecided(&csr) {
        return Ok(Action::await_change());
    }
    let name = csr.name_any();
    let subject = parse_csr(&csr.spec.request.0).map_err(|message| Error::CsrParse {
        name: name.clone(),
        message,
    })?;
    let mut tried = Vec::new();
    for r in recognize(&csr, &subject) {
        tried.push(r.subresource.to_string());
        if !st.reviewer.allowed(&access_review(&csr, &r)).await? {
            continue;
        }
        let api = Api::<CertificateSigningRequest>::all(st.client.clone());
        let body = approved(&csr, &r);
        api.replace_subresource("approval", &name, &PostParams::default(), &body)
            .await?;
        tracing::info!(
            controller = NAME,
            csr = name,
            permission = r.subresource,
            "approved certificate signing request"
        );
        return Ok(Action::await_change());
    }
    if tried.is_empty() {
        return Ok(Action::await_change());
    }
    Err(Error::NotApproved { name, tried })
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
    use k8s_openapi::ByteString;

    fn csr(signer: &str, username: &str, usages: &[&str]) -> CertificateSigningRequest {
        CertificateSigningRequest {
            metadata: kube::api::ObjectMeta {
                name: Some("csr-1".into()),
                ..Default::default()
            },
            spec: CertificateSigningRequestSpec {
                signer_name: signer.into(),
                username: Some(username.into()),
                groups: Some(vec!["system:bootstrappers".into()]),
                usages: Some(usages.iter().map(|u| u.to_string()).collect()),
                request: ByteString(Vec::new()),
                ..Default::default()
            },
            status: None,
        }
    }

    fn node(cn: &str) -> CsrSubject {
        CsrSubject {
            common_name: cn.into(),
            organizations: vec!["system:nodes".into()],
            ..Default::default()
        }
    }

    const CLIENT: &[&str] = &[
        USAGE_KEY_ENCIPHERMENT,
        USAGE_DIGITAL_SIGNATURE,
        USAGE_CLIENT_AUTH,
    ];
    const KUBELET: &str = KUBE_APISERVER_CLIENT_KUBELET_SIGNER;

    #[test]
    fn node_client_requests_are_recognized_self_first() {
        let cases: Vec<(&str, CertificateSigningRequest, CsrSubject, Vec<Recognizer>)> = vec![
            (
                "bootstrap token asks for a node",
                csr(KUBELET, "system:bootstrap:abc", CLIENT),
                node("system:node:n1"),
                vec![NODE_CLIENT],
            ),
            (
                "node renews itself",
                csr(KUBELET, "system:node:n1", CLIENT),
                node("system:node:n1"),
                vec![SELF_NODE_CLIENT, NODE_CLIENT],
            ),
            (
                "node asks for another",
                csr(KUBELET, "system:node:n2", CLIENT),
                node("system:node:n1"),
                vec![NODE_CLIENT],
            ),
            (
                "no key encipherment",
                csr(KUBELET, "u", &[USAGE_DIGITAL_SIGNATURE, USAGE_CLIENT_AUTH]),
                node("system:node:n1"),
                vec![NODE_CLIENT],
            ),
            (
                "other signer",
                csr("kubernetes.io/kube-apiserver-client", "u", CLIENT),
                node("system:node:n1"),
                vec![],
            ),
            (
                "serving usages",
                csr(KUBELET, "u", &[USAGE_DIGITAL_SIGNATURE, USAGE_SERVER_AUTH]),
                node("system:node:n1"),
                vec![],
            ),
            (
                "not a node",
                csr(KUBELET, "u", CLIENT),
                node("alice"),
                vec![],
            ),
            (
                "with a SAN",
                csr(KUBELET, "u", CLIENT),
                CsrSubject {
                    dns_names: vec!["n1".into()],
                    ..node("system:node:n1")
                },
                vec![],
            ),
        ];
        for (what, c, subject, want) in cases {
            assert_eq!(recognize(&c, &subject), want, "{what}");
        }
    }

    #[test]
    fn only_undecided_requests_without_certificate_are_looked_at() {
        let plain = csr(KUBELET, "u", CLIENT);
        assert!(undecided(&plain));
        let done = approved(&plain, &NODE_CLIENT);
        assert!(!undecided(&done));
        let mut denied = plain.clone();
        denied.status = Some(CertificateSigningRequestStatus {
            conditions: Some(vec![CertificateSigningRequestCondition {
                type_: "Denied".into(),
                status: "True".into(),
                ..Default::default()
            }]),
            ..Default::default()
        });
        assert!(!undecided(&denied));
        let mut issued = plain;
        issued.status = Some(CertificateSigningRequestStatus {
            certificate: Some(ByteString(b"PEM".to_vec())),
            ..Default::default()
        });
        assert!(!undecided(&issued));
    }

    #[test]
    fn review_asks_about_the_requester_and_the_subresource() {
        let mut c = csr(KUBELET, "system:bootstrap:abc", CLIENT);
        c.spec.uid = Some("u-1".into());
        c.spec.extra = Some([("scopes".to_string(), vec!["a".to_string()])].into());
        let sar = access_review(&c, &NODE_CLIENT);
        assert_eq!(sar.spec.user.as_deref(), Some("system:bootstrap:abc"));
        assert_eq!(sar.spec.uid.as_deref(), Some("u-1"));
        assert_eq!(
            sar.spec.groups,
            Some(vec!["system:bootstrappers".to_string()])
        );
        assert_eq!(sar.spec.extra, c.spec.extra);
        let attrs = sar.spec.resource_attributes.unwrap();
        assert_eq!(attrs.group.as_deref(), Some("certificates.k8s.io"));
        assert_eq!(
            attrs.resource.as_deref(),
            Some("certificatesigningrequests")
        );
        assert_eq!(attrs.subresource.as_deref(), Some("nodeclient"));
        assert_eq!(attrs.verb.as_deref(), Some("create"));
    }

    #[test]
    fn approval_appends_an_auto_approved_condition() {
        let out = approved(&csr(KUBELET, "u", CLIENT), &NODE_CLIENT);
        let conds = out.status.unwrap().conditions.unwrap();
        assert_eq!(conds.len(), 1);
        assert_eq!(conds[0].type_, "Approved");
        assert_eq!(conds[0].status, "True");
        assert_eq!(conds[0].reason.as_deref(), Some("AutoApproved"));
        assert_eq!(
            conds[0].message.as_deref(),
            Some("Auto approving kubelet client certificate after SubjectAccessReview.")
        );
    }
}
