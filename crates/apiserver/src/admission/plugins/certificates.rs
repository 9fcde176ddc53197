//! The certificate plugins: CertificateApproval (approving or denying a CSR needs `approve`
//! on its signer), CertificateSigning (setting a CSR's certificate needs `sign` on its
//! signer) and CertificateSubjectRestriction (no `system:masters` client certificates
//! through the kube-apiserver-client signer).

use async_trait::async_trait;
use serde_json::Value;

use super::Plugin;
use crate::admission::{Operation, Request};
use crate::authz::{self, Attributes, Decision};
use crate::status::ApiResult;

const GROUP: &str = "certificates.k8s.io";
const CSRS: &str = "certificatesigningrequests";

fn signer_name(csr: &Value) -> &str {
    csr.pointer("/spec/signerName")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Whether the user may `verb` the signer, by its name or its `<domain>/*` wildcard.
fn may_use_signer(req: &Request<'_>, verb: &str, signer: &str) -> bool {
    let mut names = vec![signer.to_string()];
    if let Some((domain, _)) = signer.split_once('/') {
        names.push(format!("{domain}/*"));
    }
    names.into_iter().any(|name| {
        let attrs = Attributes {
            user: req.user.clone(),
            verb: verb.to_string(),
            resource_request: true,
            api_group: GROUP.to_string(),
            api_version: "*".to_string(),
            resource: "signers".to_string(),
            name,
            ..Attributes::default()
        };
        matches!(authz::authorize(req.server, &attrs), Decision::Allow { .. })
    })
}

#[derive(Debug)]
pub struct CertificateApproval;

#[async_trait]
impl Plugin for CertificateApproval {
    async fn validate(&self, req: &Request<'_>, obj: &Value) -> ApiResult<()> {
        if req.op != Operation::Update || !req.is(GROUP, CSRS) || req.subresource() != "approval" {
            return Ok(());
        }
        let signer = signer_name(obj);
        if !may_use_signer(req, "approve", signer) {
            return Err(req.forbidden(&format!(
                "user not permitted to approve requests with signerName \"{signer}\""
            )));
        }
        Ok(())
    }
}

#[derive(Debug)]
pub struct CertificateSigning;

#[async_trait]
impl Plugin for CertificateSigning {
    async fn validate(&self, req: &Request<'_>, obj: &Value) -> ApiResult<()> {
        if req.op != Operation::Update || !req.is(GROUP, CSRS) || req.subresource() != "status" {
            return Ok(());
        }
        // Only a change of the issued certificate needs the signer's permission.
        let old_cert = req.old.and_then(|o| o.pointer("/status/certificate"));
        if obj.pointer("/status/certificate") == old_cert {
            return Ok(());
        }
        let signer = signer_name(obj);
        if !may_use_signer(req, "sign", signer) {
            return Err(req.forbidden(&format!(
                "user not permitted to sign requests with signerName \"{signer}\""
            )));
        }
        Ok(())
    }
}

#[derive(Debug)]
pub struct CertificateSubjectRestriction;

#[async_trait]
impl Plugin for CertificateSubjectRestriction {
    async fn validate(&self, req: &Request<'_>, obj: &Value) -> ApiResult<()> {
        if req.op != Operation::Create || !req.is(GROUP, CSRS) || req.subresource.is_some() {
            return Ok(());
        }
        if signer_name(obj) != "kubernetes.io/kube-apiserver-client" {
            return Ok(());
        }
        let Some(request) = obj.pointer("/spec/request").and_then(Value::as_str) else {
            return Ok(());
        };
        if let Some((_, orgs)) = crate::csr::subject(request) {
            if orgs.iter().any(|o| o == crate::authn::MASTERS) {
                return Err(req.forbidden(
                    "use of kubernetes.io/kube-apiserver-client signer with system:masters group is not allowed",
                ));
            }
        }
        Ok(())
    }
}
