//! NamespaceLifecycle: nothing is created in a namespace that does not exist or is being
//! terminated, and the system namespaces cannot be deleted.

use async_trait::async_trait;
use serde_json::Value;

use super::Plugin;
use crate::admission::{Operation, Request};
use crate::status::{ApiError, ApiResult, Cause};

/// Namespaces that may never be deleted.
const IMMORTAL: &[&str] = &["default", "kube-system", "kube-public"];

#[derive(Debug)]
pub struct NamespaceLifecycle;

#[async_trait]
impl Plugin for NamespaceLifecycle {
    async fn validate(&self, req: &Request<'_>, _obj: &Value) -> ApiResult<()> {
        if req.is("", "namespaces") {
            if req.op == Operation::Delete && IMMORTAL.contains(&req.name) {
                return Err(req.forbidden("this namespace may not be deleted"));
            }
            return Ok(());
        }
        if req.op != Operation::Create || !req.resource.namespaced || req.namespace.is_empty() {
            return Ok(());
        }
        // Read from the store, not the cache: a namespace deleted a moment ago must already
        // refuse new content.
        let Some(ns) = req
            .server
            .read_object("", "namespaces", "", req.namespace)
            .await?
        else {
            return Err(match rkube_api::catalogue::find("", "v1", "namespaces") {
                Some(r) => ApiError::not_found(r, req.namespace),
                None => ApiError::bad_request("namespaces are not served"),
            });
        };
        let terminating = ns.pointer("/metadata/deletionTimestamp").is_some();
        // Events about a terminating namespace's objects are still recorded.
        if terminating && !req.is("", "events") && !req.is("events.k8s.io", "events") {
            let ns_name = req.namespace;
            let mut e = req.forbidden(&format!(
                "unable to create new content in namespace {ns_name} because it is being terminated"
            ));
            e.causes.push(Cause {
                reason: "NamespaceTerminating".into(),
                message: format!("namespace {ns_name} is being terminated"),
                field: "metadata.namespace".into(),
            });
            return Err(e);
        }
        Ok(())
    }
}
