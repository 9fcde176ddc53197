//! The embedded v1.33 bootstrap policy, and what it grants once aggregated.

use std::sync::Arc;

use super::{rule, urls, Policy};
use crate::rbac::bootstrap::{load_bootstrap_policy, AUTOUPDATE_ANNOTATION, BOOTSTRAPPING_LABEL};
use crate::rbac::{aggregated_rules, authorize, bootstrap_policy, node_rules, Attributes, User};

#[test]
fn bootstrap_policy_loads() {
    let p = load_bootstrap_policy().expect("policy parses");
    assert_eq!(p.cluster_roles.len(), 66);
    assert_eq!(p.cluster_role_bindings.len(), 47);
    assert_eq!(p.roles.len(), 7);
    assert_eq!(p.role_bindings.len(), 7);
}

#[test]
fn bootstrap_policy_has_the_well_known_objects() {
    let p = bootstrap_policy();
    for name in [
        "cluster-admin",
        "admin",
        "edit",
        "view",
        "system:aggregate-to-admin",
        "system:aggregate-to-edit",
        "system:aggregate-to-view",
        "system:basic-user",
        "system:discovery",
        "system:public-info-viewer",
        "system:monitoring",
        "system:node",
        "system:node-proxier",
        "system:node-bootstrapper",
        "system:kube-scheduler",
        "system:kube-controller-manager",
        "system:kube-dns",
        "system:volume-scheduler",
        "system:auth-delegator",
        "system:heapster",
        "system:kubelet-api-admin",
        "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
        "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
        "system:certificates.k8s.io:kube-apiserver-client-approver",
        "system:service-account-issuer-discovery",
        "system:controller:deployment-controller",
        "system:controller:namespace-controller",
        "system:controller:clusterrole-aggregation-controller",
        "system:controller:service-cidrs-controller",
        "system:controller:selinux-warning-controller",
    ] {
        assert!(
            p.cluster_role(name).is_some(),
            "missing cluster role {name}"
        );
    }
    for name in [
        "cluster-admin",
        "system:node",
        "system:controller:deployment-controller",
    ] {
        assert!(
            p.cluster_role_binding(name).is_some(),
            "missing binding {name}"
        );
    }
    assert!(p
        .role("kube-system", "extension-apiserver-authentication-reader")
        .is_some());
    assert!(p
        .role("kube-system", "system::leader-locking-kube-scheduler")
        .is_some());
    assert!(p
        .role("kube-public", "system:controller:bootstrap-signer")
        .is_some());
    assert!(p
        .role_binding(
            "kube-system",
            "system::extension-apiserver-authentication-reader"
        )
        .is_some());
    // Gated off by default in v1.33, or OpenShift-only: not in the policy.
    for name in [
        "system:controller:resource-claim-controller",
        "system:controller:volumeattributesclass-protection-controller",
        "system:controller:service-ca-cert-publisher",
        "system:openshift:public-info-viewer",
    ] {
        assert!(p.cluster_role(name).is_none(), "unexpected {name}");
    }
}

#[test]
fn every_bootstrap_object_is_labelled_and_auto_updated() {
    let p = bootstrap_policy();
    let metas = p
        .cluster_roles
        .iter()
        .map(|o| &o.metadata)
        .chain(p.cluster_role_bindings.iter().map(|o| &o.metadata))
        .chain(p.roles.iter().map(|o| &o.metadata))
        .chain(p.role_bindings.iter().map(|o| &o.metadata));
    for m in metas {
        let labels = m.labels.clone().unwrap_or_default();
        assert_eq!(
            labels.get(BOOTSTRAPPING_LABEL.0).map(String::as_str),
            Some(BOOTSTRAPPING_LABEL.1),
            "{:?}",
            m.name
        );
        let annotations = m.annotations.clone().unwrap_or_default();
        assert_eq!(
            annotations.get(AUTOUPDATE_ANNOTATION).map(String::as_str),
            Some("true"),
            "{:?}",
            m.name
        );
    }
    assert!(p.roles.iter().all(|r| r.metadata.namespace.is_some()));
    assert!(p
        .role_bindings
        .iter()
        .all(|r| r.metadata.namespace.is_some()));
}

#[test]
fn aggregated_roles_carry_selectors_and_labels() {
    let p = bootstrap_policy();
    for (role, selects, label) in [
        (
            "admin",
            "rbac.authorization.k8s.io/aggregate-to-admin",
            None,
        ),
        (
            "edit",
            "rbac.authorization.k8s.io/aggregate-to-edit",
            Some("rbac.authorization.k8s.io/aggregate-to-admin"),
        ),
        (
            "view",
            "rbac.authorization.k8s.io/aggregate-to-view",
            Some("rbac.authorization.k8s.io/aggregate-to-edit"),
        ),
    ] {
        let r = p.cluster_role(role).expect("role");
        assert!(
            r.rules.as_deref().unwrap_or_default().is_empty(),
            "{role} has no own rules"
        );
        let selectors = r
            .aggregation_rule
            .as_ref()
            .and_then(|a| a.cluster_role_selectors.clone())
            .unwrap_or_default();
        assert_eq!(selectors.len(), 1);
        let match_labels = selectors[0].match_labels.clone().unwrap_or_default();
        assert_eq!(match_labels.get(selects).map(String::as_str), Some("true"));
        if let Some(label) = label {
            assert_eq!(
                r.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(label))
                    .map(String::as_str),
                Some("true")
            );
        }
    }
}

#[test]
fn well_known_roles_have_upstream_rules() {
    let p = bootstrap_policy();
    let rules = |name: &str| {
        p.cluster_role(name)
            .and_then(|r| r.rules.clone())
            .unwrap_or_default()
    };
    assert_eq!(
        rules("cluster-admin"),
        vec![rule(&["*"], &["*"], &["*"]), urls(&["*"], &["*"])]
    );
    assert_eq!(
        rules("system:node-proxier"),
        vec![
            rule(&["list", "watch"], &[""], &["endpoints", "services"]),
            rule(&["get", "list", "watch"], &[""], &["nodes"]),
            rule(
                &["create", "patch", "update"],
                &["", "events.k8s.io"],
                &["events"]
            ),
            rule(
                &["list", "watch"],
                &["networking.k8s.io"],
                &["servicecidrs"]
            ),
            rule(
                &["list", "watch"],
                &["discovery.k8s.io"],
                &["endpointslices"]
            ),
        ]
    );
    assert_eq!(
        rules("system:public-info-viewer"),
        vec![urls(
            &["get"],
            &["/healthz", "/livez", "/readyz", "/version", "/version/"]
        )]
    );
    // Since v1.22 edit may not write endpoints (CVE-2021-25740).
    let edit = rules("system:aggregate-to-edit");
    assert!(edit.iter().all(|r| !(r
        .resources
        .as_deref()
        .unwrap_or_default()
        .contains(&"endpoints".to_string())
        && r.verbs.contains(&"create".to_string()))));
    assert_eq!(node_rules(), rules("system:node"));
    assert_eq!(node_rules().len(), 22);
}

/// The bootstrap policy as a live cluster has it: aggregated roles filled in.
fn live_policy() -> Policy {
    let p = bootstrap_policy();
    let mut roles: Vec<Arc<_>> = p.cluster_roles.iter().cloned().map(Arc::new).collect();
    // `admin` aggregates `edit`, which aggregates `view`: iterate to the fixed point,
    // as the controller does over successive syncs.
    for _ in 0..3 {
        let snapshot = roles.clone();
        for r in roles.iter_mut() {
            if let Some(rules) = aggregated_rules(r, &snapshot) {
                let mut filled = (**r).clone();
                filled.rules = Some(rules);
                *r = Arc::new(filled);
            }
        }
    }
    let mut policy = Policy::default();
    for r in roles {
        policy = policy.with_cluster_role((*r).clone());
    }
    for b in &p.cluster_role_bindings {
        policy = policy.with_cluster_binding(b.clone());
    }
    for r in &p.roles {
        policy = policy.with_role(r.clone());
    }
    for b in &p.role_bindings {
        policy = policy.with_binding(b.clone());
    }
    policy
}

#[test]
fn bootstrap_policy_grants_what_clusters_expect() {
    let policy = live_policy();
    let anonymous = User::new("system:anonymous", &["system:unauthenticated"]);
    let alice = User::new("alice", &["system:authenticated"]);
    let proxy = User::new("system:kube-proxy", &["system:authenticated"]);
    let deployer = User::new(
        "system:serviceaccount:kube-system:deployment-controller",
        &[
            "system:serviceaccounts",
            "system:serviceaccounts:kube-system",
            "system:authenticated",
        ],
    );
    let scheduler = User::new("system:kube-scheduler", &["system:authenticated"]);
    let res = |u: &User, verb: &str, group: &str, resource: &str, ns: &str, name: &str| {
        Attributes::resource(u, verb, group, resource, ns, name)
    };
    let cases = [
        (
            Attributes::non_resource(&anonymous, "get", "/healthz"),
            true,
        ),
        (
            Attributes::non_resource(&anonymous, "get", "/version"),
            true,
        ),
        (Attributes::non_resource(&anonymous, "get", "/api"), false),
        (
            Attributes::non_resource(&alice, "get", "/apis/apps/v1"),
            true,
        ),
        (
            res(
                &alice,
                "create",
                "authorization.k8s.io",
                "selfsubjectaccessreviews",
                "",
                "",
            ),
            true,
        ),
        (res(&alice, "list", "", "pods", "default", ""), false),
        (
            res(
                &proxy,
                "watch",
                "discovery.k8s.io",
                "endpointslices",
                "",
                "",
            ),
            true,
        ),
        (res(&proxy, "get", "", "secrets", "default", "s"), false),
        (
            res(&deployer, "update", "apps", "deployments/status", "ns", "d"),
            true,
        ),
        (
            res(&deployer, "create", "apps", "replicasets", "ns", ""),
            true,
        ),
        (
            res(&deployer, "delete", "apps", "deployments", "ns", "d"),
            false,
        ),
        (
            res(&scheduler, "create", "", "pods/binding", "ns", "p"),
            true,
        ),
        (
            res(
                &scheduler,
                "update",
                "coordination.k8s.io",
                "leases",
                "kube-system",
                "kube-scheduler",
            ),
            true,
        ),
        (
            res(
                &scheduler,
                "update",
                "coordination.k8s.io",
                "leases",
                "kube-system",
                "other",
            ),
            true,
        ),
        (
            res(
                &scheduler,
                "get",
                "",
                "configmaps",
                "kube-system",
                "extension-apiserver-authentication",
            ),
            true,
        ),
    ];
    for (i, (attrs, want)) in cases.iter().enumerate() {
        assert_eq!(
            authorize(&policy, attrs).is_allowed(),
            *want,
            "case {i}: {attrs:?}"
        );
    }
}

#[test]
fn aggregated_view_edit_and_admin_nest() {
    let policy = live_policy();
    let bind = |role: &str| live_policy_with_binding(&policy, role);
    let user = User::new("u", &["g"]);
    let can = |p: &Policy, verb: &str, group: &str, resource: &str| {
        authorize(
            p,
            &Attributes::resource(&user, verb, group, resource, "ns", "x"),
        )
        .is_allowed()
    };
    let view = bind("view");
    assert!(can(&view, "list", "", "pods"));
    assert!(!can(&view, "get", "", "secrets"));
    assert!(!can(&view, "create", "apps", "deployments"));
    let edit = bind("edit");
    assert!(can(&edit, "list", "", "pods"));
    assert!(can(&edit, "get", "", "secrets"));
    assert!(can(&edit, "create", "apps", "deployments"));
    assert!(!can(&edit, "create", "rbac.authorization.k8s.io", "roles"));
    let admin = bind("admin");
    assert!(can(&admin, "create", "apps", "deployments"));
    assert!(can(&admin, "create", "rbac.authorization.k8s.io", "roles"));
    assert!(!can(&admin, "create", "", "namespaces"));
}

/// The live policy plus a role binding of `role` to group `g` in `ns`.
fn live_policy_with_binding(base: &Policy, role: &str) -> Policy {
    let p = Policy {
        cluster_roles: base.cluster_roles.clone(),
        roles: base.roles.clone(),
        cluster_role_bindings: base.cluster_role_bindings.clone(),
        role_bindings: base.role_bindings.clone(),
    };
    p.with_binding(super::binding(
        "ns",
        "b",
        super::role_ref("ClusterRole", role),
        vec![super::subject("Group", "g", None)],
    ))
}
