//! The node authorizer: identity, relationships and static rules.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::rbac::{authorize_node, node_authorize, node_name, Attributes, NodeGraph, User};
use crate::selector::FieldSelector;

#[derive(Debug, Default)]
struct Graph {
    pods: Vec<Arc<Value>>,
    pvs: Vec<Arc<Value>>,
    attachments: Vec<Arc<Value>>,
    slices: Vec<Arc<Value>>,
}

fn named<'a>(objs: &'a [Arc<Value>], name: &str) -> Option<&'a Arc<Value>> {
    objs.iter().find(|o| o["metadata"]["name"] == name)
}

impl NodeGraph for Graph {
    fn pods_on_node(&self, node: &str) -> Vec<Arc<Value>> {
        self.pods
            .iter()
            .filter(|p| p["spec"]["nodeName"] == node)
            .cloned()
            .collect()
    }
    fn persistent_volume(&self, name: &str) -> Option<Arc<Value>> {
        named(&self.pvs, name).cloned()
    }
    fn persistent_volumes_for_claim(&self, namespace: &str, claim: &str) -> Vec<Arc<Value>> {
        self.pvs
            .iter()
            .filter(|pv| {
                pv["spec"]["claimRef"]["namespace"] == namespace
                    && pv["spec"]["claimRef"]["name"] == claim
            })
            .cloned()
            .collect()
    }
    fn volume_attachment(&self, name: &str) -> Option<Arc<Value>> {
        named(&self.attachments, name).cloned()
    }
    fn resource_slice(&self, name: &str) -> Option<Arc<Value>> {
        named(&self.slices, name).cloned()
    }
}

fn graph() -> Graph {
    let web = json!({
        "metadata": {"namespace": "app", "name": "web"},
        "spec": {
            "nodeName": "n1",
            "serviceAccountName": "web-sa",
            "imagePullSecrets": [{"name": "pull"}],
            "initContainers": [{"name": "init", "envFrom": [{"secretRef": {"name": "init-env"}}]}],
            "containers": [{
                "name": "c",
                "env": [
                    {"name": "A", "valueFrom": {"secretKeyRef": {"name": "env-secret", "key": "k"}}},
                    {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "env-cm", "key": "k"}}}
                ],
                "envFrom": [{"configMapRef": {"name": "envfrom-cm"}}]
            }],
            "ephemeralContainers": [{"name": "debug", "envFrom": [{"secretRef": {"name": "debug-secret"}}]}],
            "volumes": [
                {"name": "s", "secret": {"secretName": "vol-secret"}},
                {"name": "c", "configMap": {"name": "vol-cm"}},
                {"name": "p", "projected": {"sources": [
                    {"secret": {"name": "proj-secret"}}, {"configMap": {"name": "proj-cm"}},
                    {"serviceAccountToken": {"path": "t"}}
                ]}},
                {"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
                {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}},
                {"name": "csi", "csi": {"driver": "d", "nodePublishSecretRef": {"name": "csi-secret"}}}
            ],
            "resourceClaims": [
                {"name": "gpu", "resourceClaimName": "shared-gpu"},
                {"name": "tpl", "resourceClaimTemplateName": "t"}
            ]
        },
        "status": {"resourceClaimStatuses": [{"name": "tpl", "resourceClaimName": "web-tpl-xyz"}]}
    });
    let mirror = json!({
        "metadata": {"namespace": "kube-system", "name": "static-n1",
                     "annotations": {"kubernetes.io/config.mirror": "hash"}},
        "spec": {"nodeName": "n1", "serviceAccountName": "mirror-sa",
                 "volumes": [{"name": "s", "secret": {"secretName": "mirror-secret"}}]}
    });
    let elsewhere = json!({
        "metadata": {"namespace": "app", "name": "db"},
        "spec": {"nodeName": "n2", "serviceAccountName": "db-sa",
                 "volumes": [{"name": "s", "secret": {"secretName": "db-secret"}},
                             {"name": "d", "persistentVolumeClaim": {"claimName": "db-data"}}]}
    });
    let pv = |name: &str, claim: &str, secret: &str| {
        json!({"metadata": {"name": name},
               "spec": {"claimRef": {"namespace": "app", "name": claim},
                        "csi": {"driver": "d",
                                "nodeStageSecretRef": {"name": secret, "namespace": "storage"},
                                "controllerPublishSecretRef": {"name": format!("{secret}-ctrl"), "namespace": "storage"}}}})
    };
    Graph {
        pods: vec![Arc::new(web), Arc::new(mirror), Arc::new(elsewhere)],
        pvs: vec![
            Arc::new(pv("pv-data", "data", "stage")),
            Arc::new(pv("pv-db", "db-data", "db-stage")),
            Arc::new(json!({"metadata": {"name": "pv-free"}, "spec": {}})),
        ],
        attachments: vec![
            Arc::new(json!({"metadata": {"name": "va1"}, "spec": {"nodeName": "n1"}})),
            Arc::new(json!({"metadata": {"name": "va2"}, "spec": {"nodeName": "n2"}})),
        ],
        slices: vec![
            Arc::new(json!({"metadata": {"name": "slice1"}, "spec": {"nodeName": "n1"}})),
            Arc::new(json!({"metadata": {"name": "slice2"}, "spec": {"nodeName": "n2"}})),
        ],
    }
}

fn n1() -> User {
    User::new("system:node:n1", &["system:nodes", "system:authenticated"])
}

fn req(verb: &str, group: &str, resource: &str, ns: &str, name: &str) -> Attributes {
    Attributes::resource(&n1(), verb, group, resource, ns, name)
}

#[test]
fn node_identity_needs_the_name_prefix_and_the_group() {
    assert_eq!(node_name(&n1()), Some("n1"));
    assert_eq!(
        node_name(&User::new("system:node:n1", &["system:authenticated"])),
        None
    );
    assert_eq!(node_name(&User::new("n1", &["system:nodes"])), None);
    assert_eq!(
        node_name(&User::new("system:node:", &["system:nodes"])),
        Some("")
    );
}

#[test]
fn nodes_read_only_what_their_pods_reference() {
    let g = graph();
    let cases = [
        // Secrets of every kind of reference, containers of every kind.
        (req("get", "", "secrets", "app", "pull"), true),
        (req("get", "", "secrets", "app", "init-env"), true),
        (req("get", "", "secrets", "app", "env-secret"), true),
        (req("get", "", "secrets", "app", "debug-secret"), true),
        (req("get", "", "secrets", "app", "vol-secret"), true),
        (req("get", "", "secrets", "app", "proj-secret"), true),
        (req("get", "", "secrets", "app", "csi-secret"), true),
        (req("watch", "", "secrets", "app", "vol-secret"), true),
        // Secrets a volume of a claim used on the node hands the kubelet.
        (req("get", "", "secrets", "storage", "stage"), true),
        (req("get", "", "secrets", "storage", "stage-ctrl"), false),
        (req("get", "", "secrets", "storage", "db-stage"), false),
        // Another node's pods, another namespace, a mirror pod, no name: denied.
        (req("get", "", "secrets", "app", "db-secret"), false),
        (req("get", "", "secrets", "other", "vol-secret"), false),
        (
            req("get", "", "secrets", "kube-system", "mirror-secret"),
            false,
        ),
        (req("list", "", "secrets", "app", ""), false),
        (req("update", "", "secrets", "app", "vol-secret"), false),
        (req("get", "", "configmaps", "app", "env-cm"), true),
        (req("get", "", "configmaps", "app", "envfrom-cm"), true),
        (req("get", "", "configmaps", "app", "vol-cm"), true),
        (req("get", "", "configmaps", "app", "proj-cm"), true),
        (req("get", "", "configmaps", "app", "nope"), false),
        // Claims (named and ephemeral), their volumes, claim status updates.
        (
            req("get", "", "persistentvolumeclaims", "app", "data"),
            true,
        ),
        (
            req("get", "", "persistentvolumeclaims", "app", "web-scratch"),
            true,
        ),
        (
            req("get", "", "persistentvolumeclaims", "app", "db-data"),
            false,
        ),
        (
            req("list", "", "persistentvolumeclaims", "app", "data"),
            false,
        ),
        (
            req("patch", "", "persistentvolumeclaims/status", "app", "data"),
            true,
        ),
        (
            req("get", "", "persistentvolumeclaims/status", "app", "data"),
            false,
        ),
        (req("get", "", "persistentvolumes", "", "pv-data"), true),
        (req("get", "", "persistentvolumes", "", "pv-db"), false),
        (req("get", "", "persistentvolumes", "", "pv-free"), false),
        (
            req(
                "get",
                "resource.k8s.io",
                "resourceclaims",
                "app",
                "shared-gpu",
            ),
            true,
        ),
        (
            req(
                "get",
                "resource.k8s.io",
                "resourceclaims",
                "app",
                "web-tpl-xyz",
            ),
            true,
        ),
        (
            req("get", "storage.k8s.io", "volumeattachments", "", "va1"),
            true,
        ),
        (
            req("get", "storage.k8s.io", "volumeattachments", "", "va2"),
            false,
        ),
    ];
    for (i, (attrs, want)) in cases.iter().enumerate() {
        assert_eq!(
            authorize_node(attrs, &g).is_allowed(),
            *want,
            "case {i}: {attrs:?}"
        );
    }
}

#[test]
fn nodes_get_tokens_only_for_service_accounts_their_pods_run_as() {
    let g = graph();
    let cases = [
        (
            req("create", "", "serviceaccounts/token", "app", "web-sa"),
            true,
        ),
        (
            req("create", "", "serviceaccounts/token", "app", "db-sa"),
            false,
        ),
        (
            req(
                "create",
                "",
                "serviceaccounts/token",
                "kube-system",
                "mirror-sa",
            ),
            false,
        ),
        (req("get", "", "serviceaccounts", "app", "web-sa"), false),
        (req("create", "", "serviceaccounts", "app", "web-sa"), false),
    ];
    for (i, (attrs, want)) in cases.iter().enumerate() {
        assert_eq!(
            authorize_node(attrs, &g).is_allowed(),
            *want,
            "case {i}: {attrs:?}"
        );
    }
}

#[test]
fn nodes_manage_their_own_node_lease_csinode_and_slices() {
    let g = graph();
    let by_node = FieldSelector::parse("spec.nodeName=n1").expect("selector");
    let other_node = FieldSelector::parse("spec.nodeName=n2").expect("selector");
    let cases = [
        (req("get", "", "nodes", "", "n1"), true),
        (req("get", "", "nodes", "", "n2"), false),
        (req("list", "", "nodes", "", ""), false),
        (req("create", "", "nodes", "", ""), true),
        (req("patch", "", "nodes/status", "", "n1"), true),
        (req("delete", "", "nodes", "", "n1"), false),
        (req("get", "", "nodes/proxy", "", "n1"), false),
        (
            req(
                "update",
                "coordination.k8s.io",
                "leases",
                "kube-node-lease",
                "n1",
            ),
            true,
        ),
        (
            req(
                "create",
                "coordination.k8s.io",
                "leases",
                "kube-node-lease",
                "",
            ),
            true,
        ),
        (
            req(
                "update",
                "coordination.k8s.io",
                "leases",
                "kube-node-lease",
                "n2",
            ),
            false,
        ),
        (
            req("get", "coordination.k8s.io", "leases", "kube-system", "n1"),
            false,
        ),
        (
            req(
                "list",
                "coordination.k8s.io",
                "leases",
                "kube-node-lease",
                "",
            ),
            false,
        ),
        (req("patch", "storage.k8s.io", "csinodes", "", "n1"), true),
        (req("get", "storage.k8s.io", "csinodes", "", "n2"), false),
        (
            req("create", "resource.k8s.io", "resourceslices", "", ""),
            true,
        ),
        (
            req("update", "resource.k8s.io", "resourceslices", "", "slice1"),
            true,
        ),
        (
            req("delete", "resource.k8s.io", "resourceslices", "", "slice2"),
            false,
        ),
        (
            req("list", "resource.k8s.io", "resourceslices", "", "")
                .with_field_selector(by_node.clone()),
            true,
        ),
        (
            req("list", "resource.k8s.io", "resourceslices", "", "")
                .with_field_selector(other_node),
            false,
        ),
        (
            req("watch", "resource.k8s.io", "resourceslices", "", ""),
            false,
        ),
    ];
    for (i, (attrs, want)) in cases.iter().enumerate() {
        assert_eq!(
            authorize_node(attrs, &g).is_allowed(),
            *want,
            "case {i}: {attrs:?}"
        );
    }
}

#[test]
fn nodes_read_their_pods_and_fall_back_to_node_rules() {
    let g = graph();
    let by_node = FieldSelector::parse("spec.nodeName==n1").expect("selector");
    let cases = [
        (req("get", "", "pods", "app", "web"), true),
        (req("get", "", "pods", "kube-system", "static-n1"), true),
        (req("get", "", "pods", "app", "db"), false),
        (
            req("list", "", "pods", "", "").with_field_selector(by_node),
            true,
        ),
        (req("list", "", "pods", "", ""), false),
        (req("create", "", "pods", "kube-system", ""), true),
        (req("patch", "", "pods/status", "app", "db"), true),
        (req("create", "", "pods/eviction", "app", "web"), true),
        (req("get", "", "pods/log", "app", "web"), false),
        // Not subdivided: the static system:node rules decide.
        (req("list", "", "services", "", ""), true),
        (req("create", "", "events", "app", ""), true),
        (
            req(
                "create",
                "certificates.k8s.io",
                "certificatesigningrequests",
                "",
                "",
            ),
            true,
        ),
        (req("list", "", "namespaces", "", ""), false),
        (req("delete", "", "services", "app", "s"), false),
        (Attributes::non_resource(&n1(), "get", "/healthz"), false),
    ];
    for (i, (attrs, want)) in cases.iter().enumerate() {
        assert_eq!(
            authorize_node(attrs, &g).is_allowed(),
            *want,
            "case {i}: {attrs:?}"
        );
    }
}

#[test]
fn denials_carry_upstream_reasons() {
    let g = graph();
    let reason = |attrs: &Attributes| authorize_node(attrs, &g).reason().to_string();
    assert_eq!(
        reason(&req("get", "", "secrets", "app", "db-secret")),
        "no relationship found between node 'n1' and this object"
    );
    assert_eq!(
        reason(&req("delete", "", "secrets", "app", "x")),
        "can only read resources of this type"
    );
    assert_eq!(
        reason(&req("get", "", "secrets", "app", "")),
        "No Object name found"
    );
    assert_eq!(
        reason(&req("get", "", "secrets", "", "x")),
        "can only read namespaced object of this type"
    );
    assert_eq!(
        reason(&req("list", "", "persistentvolumes", "", "")),
        "can only get individual resources of this type"
    );
    assert_eq!(
        reason(&req("get", "", "nodes", "", "n2")),
        "node 'n1' cannot read 'n2', only its own Node object"
    );
    assert_eq!(
        reason(&req("list", "", "nodes", "", "")),
        "node 'n1' cannot read all nodes, only its own Node object"
    );
    assert_eq!(
        reason(&req(
            "get",
            "coordination.k8s.io",
            "leases",
            "default",
            "n1"
        )),
        r#"can only access leases in the "kube-node-lease" system namespace"#
    );
    assert_eq!(
        reason(&req("list", "", "pods", "", "")),
        "can only list/watch pods with spec.nodeName field selector"
    );
    let nameless = Attributes::resource(
        &User::new("system:node:", &["system:nodes"]),
        "get",
        "",
        "pods",
        "a",
        "b",
    );
    assert_eq!(
        node_authorize("", &nameless, &g).reason(),
        r#"unknown node for user "system:node:""#
    );
}

#[test]
fn non_nodes_get_no_opinion() {
    let g = graph();
    let alice = Attributes::resource(
        &User::new("alice", &["system:nodes"]),
        "get",
        "",
        "secrets",
        "app",
        "pull",
    );
    let d = authorize_node(&alice, &g);
    assert!(!d.is_allowed());
    assert_eq!(d.reason(), "");
}
