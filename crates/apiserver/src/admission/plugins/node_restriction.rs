//! NodeRestriction: a kubelet (`system:node:<name>` in `system:nodes`) may change only its
//! own Node and Lease, only pods bound to it, and may request tokens only for pods bound to
//! it. With the Node authorizer this confines a compromised node to its own workload.

use async_trait::async_trait;
use serde_json::Value;

use rkube_api::rbac::node_name;
use rkube_api::rbac::node_refs::MIRROR_POD_ANNOTATION;

use super::Plugin;
use crate::admission::{Operation, Request};
use crate::status::ApiResult;

/// Labels a node may not set on itself: they steer workloads with isolation requirements.
const RESTRICTED_LABEL_PREFIX: &str = "node-restriction.kubernetes.io/";

#[derive(Debug)]
pub struct NodeRestriction;

#[async_trait]
impl Plugin for NodeRestriction {
    async fn validate(&self, req: &Request<'_>, obj: &Value) -> ApiResult<()> {
        let Some(node) = node_name(req.user) else {
            return Ok(());
        };
        let why = match (req.resource.group, req.resource.plural) {
            ("", "pods") => pod(req, node, obj),
            ("", "nodes") => node_object(req, node, obj),
            ("", "serviceaccounts") if req.subresource() == "token" => {
                token(req, node, obj).await?
            }
            ("coordination.k8s.io", "leases") if req.namespace == "kube-node-lease" => {
                (req.name != node).then(|| {
                    "can only access node lease with the same name as the requesting node"
                        .to_string()
                })
            }
            ("storage.k8s.io", "csinodes") => (req.name != node).then(|| {
                "can only access CSINode with the same name as the requesting node".to_string()
            }),
            _ => None,
        };
        match why {
            Some(why) => Err(req.forbidden(&why)),
            None => Ok(()),
        }
    }
}

fn bound_node(pod: &Value) -> &str {
    pod.pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn pod(req: &Request<'_>, node: &str, obj: &Value) -> Option<String> {
    let existing = req.old.unwrap_or(obj);
    match (req.op, req.subresource()) {
        (Operation::Create, "") => {
            let mirror = obj
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(MIRROR_POD_ANNOTATION))
                .is_some();
            if !mirror {
                return Some(format!(
                    "pod does not have \"{MIRROR_POD_ANNOTATION}\" annotation, node \"{node}\" can only create mirror pods"
                ));
            }
            if bound_node(obj) != node {
                return Some(format!(
                    "node \"{node}\" can only create pods with spec.nodeName set to itself"
                ));
            }
            mirror_pod_references(node, obj)
        }
        (Operation::Delete, "") => (bound_node(existing) != node).then(|| {
            format!("node \"{node}\" can only delete pods with spec.nodeName set to itself")
        }),
        (Operation::Update, "status") => (bound_node(existing) != node).then(|| {
            format!("node \"{node}\" can only update pod status for pods with spec.nodeName set to itself")
        }),
        (Operation::Create, "eviction") => (bound_node(existing) != node).then(|| {
            format!("node \"{node}\" can only evict pods with spec.nodeName set to itself")
        }),
        (Operation::Update, "") => Some(format!(
            "unexpected operation UPDATE, node \"{node}\" can only create and delete mirror pods"
        )),
        _ => None,
    }
}

/// A mirror pod may not reach secrets, config maps, claims or a service account.
fn mirror_pod_references(node: &str, pod: &Value) -> Option<String> {
    use rkube_api::rbac::node_refs::{pod_claim_names, pod_configmap_names, pod_secret_names};
    if pod
        .pointer("/spec/serviceAccountName")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty())
    {
        return Some(format!(
            "node \"{node}\" can not create pods that use service accounts"
        ));
    }
    let what = if !pod_secret_names(pod).is_empty() {
        "secrets"
    } else if !pod_configmap_names(pod).is_empty() {
        "configmaps"
    } else if !pod_claim_names(pod).is_empty() {
        "persistentvolumeclaims"
    } else {
        return None;
    };
    Some(format!(
        "node \"{node}\" can not create pods that reference {what}"
    ))
}

fn node_object(req: &Request<'_>, node: &str, obj: &Value) -> Option<String> {
    if req.name != node {
        return Some(format!(
            "node \"{node}\" is not allowed to modify node \"{}\"",
            req.name
        ));
    }
    let labels = |o: &Value| -> Vec<(String, String)> {
        o.pointer("/metadata/labels")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let old_labels = req.old.map(labels).unwrap_or_default();
    let mut forbidden: Vec<String> = labels(obj)
        .into_iter()
        .filter(|(k, v)| {
            restricted_label(k) && !old_labels.iter().any(|(ok, ov)| ok == k && ov == v)
        })
        .map(|(k, _)| k)
        .collect();
    if req.op == Operation::Update {
        forbidden.extend(
            old_labels
                .iter()
                .filter(|(k, _)| restricted_label(k))
                .filter(|(k, _)| !labels(obj).iter().any(|(nk, _)| nk == k))
                .map(|(k, _)| k.clone()),
        );
    }
    if !forbidden.is_empty() {
        forbidden.sort();
        let verb = if req.op == Operation::Create {
            "set"
        } else {
            "modify"
        };
        return Some(format!(
            "is not allowed to {verb} the following labels: {}",
            forbidden.join(", ")
        ));
    }
    if req.op == Operation::Update && req.subresource.is_none() {
        let taints = |o: &Value| o.pointer("/spec/taints").cloned().unwrap_or(Value::Null);
        let old_taints = req.old.map(taints).unwrap_or(Value::Null);
        let empty = |v: &Value| v.is_null() || v.as_array().is_some_and(Vec::is_empty);
        if taints(obj) != old_taints && !(empty(&taints(obj)) && empty(&old_taints)) {
            return Some(format!("node \"{node}\" is not allowed to modify taints"));
        }
    }
    None
}

fn restricted_label(key: &str) -> bool {
    let prefix = key.split_once('/').map(|(p, _)| p).unwrap_or("");
    key.starts_with(RESTRICTED_LABEL_PREFIX)
        || prefix == "node-restriction.kubernetes.io"
        || prefix.ends_with(".node-restriction.kubernetes.io")
}

/// A node may request a token only when it is bound to a pod on that node.
async fn token(req: &Request<'_>, node: &str, obj: &Value) -> ApiResult<Option<String>> {
    let Some(bound) = obj.pointer("/spec/boundObjectRef") else {
        return Ok(Some("node requested token not bound to a pod".to_string()));
    };
    if bound.get("kind").and_then(Value::as_str) != Some("Pod") {
        return Ok(Some("node requested token not bound to a pod".to_string()));
    }
    let pod_name = bound.get("name").and_then(Value::as_str).unwrap_or("");
    let pod = match req.server.cached("", "pods", req.namespace, pod_name) {
        Some(p) => Some(p.value.clone()),
        None => {
            req.server
                .read_object("", "pods", req.namespace, pod_name)
                .await?
        }
    };
    let Some(pod) = pod else {
        return Ok(Some(format!("pod \"{pod_name}\" not found")));
    };
    if let Some(uid) = bound
        .get("uid")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
    {
        if pod.pointer("/metadata/uid").and_then(Value::as_str) != Some(uid) {
            return Ok(Some(format!(
                "the UID in the bound object reference ({uid}) does not match the UID in record"
            )));
        }
    }
    if bound_node(&pod) != node {
        return Ok(Some(
            "node requested token bound to a pod scheduled on a different node".to_string(),
        ));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restricted_labels_are_the_node_restriction_domain() {
        assert!(restricted_label("node-restriction.kubernetes.io/zone"));
        assert!(restricted_label("foo.node-restriction.kubernetes.io/x"));
        assert!(!restricted_label("kubernetes.io/hostname"));
    }

    #[test]
    fn mirror_pods_may_not_reference_secrets_or_accounts() {
        let pod = serde_json::json!({"spec": {"volumes": [{"name": "s", "secret": {"secretName": "x"}}]}});
        assert_eq!(
            mirror_pod_references("n1", &pod).as_deref(),
            Some("node \"n1\" can not create pods that reference secrets")
        );
        // A value that merely says "secret" is no reference.
        let pod = serde_json::json!({"spec": {"containers": [{"name": "secret",
            "env": [{"name": "MODE", "value": "secret"}]}]}});
        assert_eq!(mirror_pod_references("n1", &pod), None);
        let pod = serde_json::json!({"spec": {"containers": [{"name": "c",
            "envFrom": [{"configMapRef": {"name": "cfg"}}]}]}});
        assert_eq!(
            mirror_pod_references("n1", &pod).as_deref(),
            Some("node \"n1\" can not create pods that reference configmaps")
        );
    }
}
