//! The node authorizer (upstream's `plugin/pkg/auth/authorizer/node` with the default
//! node identifier): a kubelet, authenticated as `system:node:<name>` in group
//! `system:nodes`, may read only the secrets, config maps, claims, volumes and service
//! account tokens of the pods bound to its node, and its own Node, Lease and CSINode.
//! Everything else it asks is checked against the static [`node_rules`].
//!
//! Upstream keeps a graph of pods, volumes and attachments fed by informers; here the
//! relationships are computed from the API server's caches through [`NodeGraph`] when
//! asked. Feature gates are v1.33's defaults: `AuthorizeNodeWithSelectors` on (node and
//! pod reads are scoped), `KubeletServiceAccountTokenForCredentialProviders` off
//! (service accounts cannot be read).

use std::sync::Arc;

use k8s_openapi::api::rbac::v1::PolicyRule;
use serde_json::Value;

use super::attributes::{Attributes, Decision, User};
use super::bootstrap::bootstrap_policy;
use super::node_refs::{
    is_mirror_pod, pod_claim_names, pod_configmap_names, pod_key, pod_resource_claim_names,
    pod_secret_names, pod_service_account, pv_claim_ref, pv_kubelet_secrets,
};
use super::rules::rules_allow;
use crate::selector::FieldOperator;

/// Prefix of node user names.
pub const NODE_USER_PREFIX: &str = "system:node:";
/// The group every node is in.
pub const NODES_GROUP: &str = "system:nodes";
/// The namespace of node heartbeat leases.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";
/// Why a `SelfSubjectRulesReview` from a node is incomplete: the node authorizer cannot
/// enumerate what a node may do.
pub const NODE_RULES_UNSUPPORTED: &str = "node authorizer does not support user rule resolution";

/// The node a user acts for (upstream's default `NodeIdentity`): the name after
/// `system:node:` when the user is in `system:nodes`. `Some("")` is a node whose name
/// could not be read, which [`node_authorize`] refuses.
pub fn node_name(user: &User) -> Option<&str> {
    let name = user.name.strip_prefix(NODE_USER_PREFIX)?;
    user.in_group(NODES_GROUP).then_some(name)
}

/// The rules of `system:node` (upstream's `NodeRules` for v1.33): what every node may do
/// beyond the relationships the node authorizer checks.
pub fn node_rules() -> Vec<PolicyRule> {
    bootstrap_policy()
        .cluster_role("system:node")
        .and_then(|r| r.rules.clone())
        .unwrap_or_default()
}

/// What the node authorizer reads from the API server's caches.
pub trait NodeGraph {
    /// The pods bound to `node` (`spec.nodeName`), as stored.
    fn pods_on_node(&self, node: &str) -> Vec<Arc<Value>>;
    /// The persistent volume `name`.
    fn persistent_volume(&self, name: &str) -> Option<Arc<Value>>;
    /// The persistent volumes whose `spec.claimRef` is `namespace/claim`.
    fn persistent_volumes_for_claim(&self, namespace: &str, claim: &str) -> Vec<Arc<Value>>;
    /// The volume attachment `name`.
    fn volume_attachment(&self, name: &str) -> Option<Arc<Value>>;
    /// The resource slice `name`.
    fn resource_slice(&self, name: &str) -> Option<Arc<Value>>;
}

/// The kinds of object the graph relates to nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Secret,
    ConfigMap,
    Pvc,
    Pv,
    ResourceClaim,
    VolumeAttachment,
    ServiceAccount,
    ResourceSlice,
    Pod,
}

/// The node authorizer's decision for a request from any user: `NoOpinion` with no
/// reason unless the user is a node.
pub fn authorize_node(attrs: &Attributes, graph: &dyn NodeGraph) -> Decision {
    match node_name(&attrs.user) {
        Some(node) => node_authorize(node, attrs, graph),
        None => Decision::no_opinion(""),
    }
}

/// The node authorizer's decision for a request from `node` (upstream's
/// `NodeAuthorizer.Authorize`). Reasons are upstream's; an allow has no reason.
pub fn node_authorize(node: &str, attrs: &Attributes, graph: &dyn NodeGraph) -> Decision {
    if node.is_empty() {
        return Decision::no_opinion(format!(
            "unknown node for user {}",
            super::rules::go_quote(&attrs.user.name)
        ));
    }
    if attrs.resource_request {
        let check = Check { node, attrs, graph };
        match (attrs.api_group.as_str(), attrs.resource.as_str()) {
            ("", "secrets") => return check.read_namespaced(Kind::Secret),
            ("", "configmaps") => return check.read_namespaced(Kind::ConfigMap),
            ("", "persistentvolumeclaims") if attrs.subresource == "status" => {
                return check.status_update(Kind::Pvc)
            }
            ("", "persistentvolumeclaims") => return check.get(Kind::Pvc),
            ("", "persistentvolumes") => return check.get(Kind::Pv),
            ("resource.k8s.io", "resourceclaims") => return check.get(Kind::ResourceClaim),
            ("storage.k8s.io", "volumeattachments") => return check.get(Kind::VolumeAttachment),
            ("", "serviceaccounts") => return check.service_account(),
            ("coordination.k8s.io", "leases") => return check.lease(),
            ("storage.k8s.io", "csinodes") => return check.csi_node(),
            ("resource.k8s.io", "resourceslices") => return check.resource_slice(),
            ("", "nodes") => return check.node_object(),
            ("", "pods") => return check.pod(),
            _ => {}
        }
    }
    if rules_allow(attrs, &node_rules()) {
        Decision::allow("")
    } else {
        Decision::no_opinion("")
    }
}

/// One request being checked.
struct Check<'a> {
    node: &'a str,
    attrs: &'a Attributes,
    graph: &'a dyn NodeGraph,
}

impl Check<'_> {
    fn no_relationship(&self) -> Decision {
        Decision::no_opinion(format!(
            "no relationship found between node '{}' and this object",
            self.node
        ))
    }

    /// Allows the request when the named object is related to the node.
    fn related(&self, kind: Kind) -> Decision {
        if self.attrs.name.is_empty() {
            return Decision::no_opinion("No Object name found");
        }
        if self.has_path(kind, &self.attrs.namespace, &self.attrs.name) {
            Decision::allow("")
        } else {
            self.no_relationship()
        }
    }

    /// `get` of a single object, no subresource (upstream's `authorizeGet`).
    fn get(&self, kind: Kind) -> Decision {
        if self.attrs.verb != "get" {
            return Decision::no_opinion("can only get individual resources of this type");
        }
        if !self.attrs.subresource.is_empty() {
            return Decision::no_opinion("cannot get subresource");
        }
        self.related(kind)
    }

    /// `get`/`list`/`watch` of one named object in a namespace (upstream's
    /// `authorizeReadNamespacedObject`).
    fn read_namespaced(&self, kind: Kind) -> Decision {
        if !matches!(self.attrs.verb.as_str(), "get" | "list" | "watch") {
            return Decision::no_opinion("can only read resources of this type");
        }
        if !self.attrs.subresource.is_empty() {
            return Decision::no_opinion("cannot read subresource");
        }
        if self.attrs.namespace.is_empty() {
            return Decision::no_opinion("can only read namespaced object of this type");
        }
        self.related(kind)
    }

    /// `update`/`patch` of the `status` subresource (upstream's `authorizeStatusUpdate`).
    fn status_update(&self, kind: Kind) -> Decision {
        if !matches!(self.attrs.verb.as_str(), "update" | "patch") {
            return Decision::no_opinion("can only get/update/patch this type");
        }
        if self.attrs.subresource != "status" {
            return Decision::no_opinion("can only update status subresource");
        }
        self.related(kind)
    }

    /// Service accounts: reading them is off in v1.33, creating a token for one is
    /// allowed when a pod on the node runs as it. That the token is bound to such a pod
    /// is the NodeRestriction admission plugin's check on the request body.
    fn service_account(&self) -> Decision {
        let a = self.attrs;
        if a.verb == "get" && a.subresource.is_empty() {
            return Decision::no_opinion("not allowed to get service accounts");
        }
        if a.verb != "create" || a.name.is_empty() {
            return Decision::no_opinion("can only create tokens for individual service accounts");
        }
        if a.subresource != "token" {
            return Decision::no_opinion("can only create token subresource of serviceaccount");
        }
        if self.has_path(Kind::ServiceAccount, &a.namespace, &a.name) {
            Decision::allow("")
        } else {
            self.no_relationship()
        }
    }

    /// The node's own heartbeat lease in `kube-node-lease`.
    fn lease(&self) -> Decision {
        let a = self.attrs;
        if !matches!(
            a.verb.as_str(),
            "get" | "create" | "update" | "patch" | "delete"
        ) {
            return Decision::no_opinion(
                "can only get, create, update, patch, or delete a node lease",
            );
        }
        if a.namespace != NODE_LEASE_NAMESPACE {
            return Decision::no_opinion(format!(
                "can only access leases in the {} system namespace",
                super::rules::go_quote(NODE_LEASE_NAMESPACE)
            ));
        }
        // The name is unknown on create; NodeRestriction admission checks it there.
        if a.verb != "create" && a.name != self.node {
            return Decision::no_opinion(
                "can only access node lease with the same name as the requesting node",
            );
        }
        Decision::allow("")
    }

    /// The node's own CSINode.
    fn csi_node(&self) -> Decision {
        let a = self.attrs;
        if !matches!(
            a.verb.as_str(),
            "get" | "create" | "update" | "patch" | "delete"
        ) {
            return Decision::no_opinion(
                "can only get, create, update, patch, or delete a CSINode",
            );
        }
        if !a.subresource.is_empty() {
            return Decision::no_opinion("cannot authorize CSINode subresources");
        }
        if a.verb != "create" && a.name != self.node {
            return Decision::no_opinion(
                "can only access CSINode with the same name as the requesting node",
            );
        }
        Decision::allow("")
    }

    /// Whether the request's field selector has `field=<this node>`.
    fn selects_node(&self, field: &str) -> bool {
        self.attrs.field_selector.as_ref().is_some_and(|s| {
            s.requirements().iter().any(|r| {
                r.field == field && r.operator == FieldOperator::Equals && r.value == self.node
            })
        })
    }

    /// Resource slices: the node's own (by `spec.nodeName`); lists only scoped to it.
    fn resource_slice(&self) -> Decision {
        let a = self.attrs;
        if !a.subresource.is_empty() {
            return Decision::no_opinion("cannot authorize ResourceSlice subresources");
        }
        match a.verb.as_str() {
            // NodeRestriction admission checks the new slice's nodeName.
            "create" => Decision::allow(""),
            "get" | "update" | "patch" | "delete" => self.related(Kind::ResourceSlice),
            "watch" | "list" | "deletecollection" => {
                if self.selects_node("spec.nodeName") {
                    Decision::allow("")
                } else {
                    Decision::no_opinion(
                        "can only list/watch/deletecollection resourceslices with nodeName field selector",
                    )
                }
            }
            _ => Decision::no_opinion(
                "only the following verbs are allowed for a ResourceSlice: get, watch, list, create, update, patch, delete, deletecollection",
            ),
        }
    }

    /// Node objects: any write (NodeRestriction admission limits it to the node's own),
    /// reads of its own only.
    fn node_object(&self) -> Decision {
        let a = self.attrs;
        match (a.subresource.as_str(), a.verb.as_str()) {
            ("", "create" | "update" | "patch") => Decision::allow(""),
            // Compared by name rather than through the graph, so a kubelet can look for
            // its Node before creating it.
            ("", "get" | "list" | "watch") => {
                if a.name == self.node {
                    Decision::allow("")
                } else if a.name.is_empty() {
                    Decision::no_opinion(format!(
                        "node '{}' cannot read all nodes, only its own Node object",
                        self.node
                    ))
                } else {
                    Decision::no_opinion(format!(
                        "node '{}' cannot read '{}', only its own Node object",
                        self.node, a.name
                    ))
                }
            }
            ("status", "update" | "patch") => Decision::allow(""),
            _ => Decision::no_opinion(""),
        }
    }

    /// Pods: reads of pods bound to the node (lists only with a `spec.nodeName` field
    /// selector), mirror pod create/delete, status updates and evictions (which
    /// NodeRestriction admission limits to the node's pods).
    fn pod(&self) -> Decision {
        let a = self.attrs;
        match (a.subresource.as_str(), a.verb.as_str()) {
            ("", "get") => self.get(Kind::Pod),
            ("", "list" | "watch") => {
                if self.selects_node("spec.nodeName") {
                    Decision::allow("")
                } else if !a.name.is_empty() {
                    self.related(Kind::Pod)
                } else {
                    Decision::no_opinion(
                        "can only list/watch pods with spec.nodeName field selector",
                    )
                }
            }
            ("", "create" | "delete") => Decision::allow(""),
            ("status", "update" | "patch") => Decision::allow(""),
            ("eviction", "create") => Decision::allow(""),
            _ => Decision::no_opinion(""),
        }
    }

    /// Whether the object is related to the node, as a path in upstream's graph.
    fn has_path(&self, kind: Kind, namespace: &str, name: &str) -> bool {
        let node = self.node;
        let graph = self.graph;
        let spec_node = |obj: Option<Arc<Value>>| {
            obj.is_some_and(|o| o.pointer("/spec/nodeName").and_then(Value::as_str) == Some(node))
        };
        match kind {
            Kind::VolumeAttachment => spec_node(graph.volume_attachment(name)),
            Kind::ResourceSlice => spec_node(graph.resource_slice(name)),
            Kind::Pv => {
                let Some(pv) = graph.persistent_volume(name) else {
                    return false;
                };
                match pv_claim_ref(&pv) {
                    Some((ns, claim)) => self.pod_uses(ns, |p| pod_uses_claim(p, claim)),
                    None => false,
                }
            }
            Kind::Pod => graph
                .pods_on_node(node)
                .iter()
                .any(|p| pod_key(p) == (namespace, name)),
            Kind::ConfigMap => self.pod_uses(namespace, |p| pod_configmap_names(p).contains(&name)),
            Kind::Pvc => self.pod_uses(namespace, |p| pod_uses_claim(p, name)),
            Kind::ResourceClaim => {
                self.pod_uses(namespace, |p| pod_resource_claim_names(p).contains(&name))
            }
            Kind::ServiceAccount => {
                self.pod_uses(namespace, |p| pod_service_account(p) == Some(name))
            }
            Kind::Secret => {
                self.pod_uses(namespace, |p| pod_secret_names(p).contains(&name))
                    || self.volume_secret(namespace, name)
            }
        }
    }

    /// Whether a pod on the node in `namespace` (mirror pods excepted) satisfies `uses`.
    fn pod_uses(&self, namespace: &str, uses: impl Fn(&Value) -> bool) -> bool {
        self.graph
            .pods_on_node(self.node)
            .iter()
            .any(|p| pod_key(p).0 == namespace && !is_mirror_pod(p) && uses(p))
    }

    /// Whether the secret is one a persistent volume used on the node hands the
    /// kubelet: secret → volume → claim → pod → node.
    fn volume_secret(&self, namespace: &str, name: &str) -> bool {
        self.graph
            .pods_on_node(self.node)
            .iter()
            .filter(|p| !is_mirror_pod(p))
            .any(|p| {
                let pod_ns = pod_key(p).0;
                pod_claim_names(p).iter().any(|claim| {
                    self.graph
                        .persistent_volumes_for_claim(pod_ns, claim)
                        .iter()
                        .any(|pv| pv_kubelet_secrets(pv).contains(&(namespace, name)))
                })
            })
    }
}

fn pod_uses_claim(pod: &Value, claim: &str) -> bool {
    pod_claim_names(pod).iter().any(|c| c == claim)
}
