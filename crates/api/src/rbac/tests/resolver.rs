//! The RBAC authorizer over bindings: decisions, reasons and rule listing.

use super::{
    binding, cluster_binding, cluster_role, named, role, role_ref, rule, subject, urls, Policy,
};
use crate::rbac::{
    authorize, role_reference_rules, rules_for, split_rules, Attributes, Decision, User,
};

fn policy() -> Policy {
    Policy::default()
        .with_cluster_role(cluster_role(
            "pod-reader",
            vec![rule(&["get", "list"], &[""], &["pods"])],
        ))
        .with_cluster_role(cluster_role(
            "health",
            vec![urls(&["get"], &["/healthz", "/healthz/*"])],
        ))
        .with_cluster_role(cluster_role(
            "secret-a",
            vec![named(&["get"], &[""], &["secrets"], &["a"])],
        ))
        .with_role(role(
            "team",
            "deployer",
            vec![rule(&["create"], &["apps"], &["deployments"])],
        ))
        .with_cluster_binding(cluster_binding(
            "readers",
            "pod-reader",
            vec![subject("Group", "readers", None)],
        ))
        .with_cluster_binding(cluster_binding(
            "health",
            "health",
            vec![subject("Group", "system:authenticated", None)],
        ))
        .with_binding(binding(
            "team",
            "deploy",
            role_ref("Role", "deployer"),
            vec![
                subject("User", "alice", None),
                subject("ServiceAccount", "ci", None),
            ],
        ))
        .with_binding(binding(
            "team",
            "secret-a",
            role_ref("ClusterRole", "secret-a"),
            vec![subject("User", "alice", None)],
        ))
}

fn res(user: &User, verb: &str, group: &str, resource: &str, ns: &str, name: &str) -> Attributes {
    Attributes::resource(user, verb, group, resource, ns, name)
}

#[test]
fn decisions_follow_the_bindings_that_apply() {
    let p = policy();
    let alice = User::new("alice", &["system:authenticated"]);
    let reader = User::new("rita", &["readers", "system:authenticated"]);
    let ci = User::new("system:serviceaccount:team:ci", &["system:serviceaccounts"]);
    let cases = [
        // A cluster binding grants in every namespace and cluster-wide.
        (res(&reader, "list", "", "pods", "", ""), true),
        (res(&reader, "get", "", "pods", "team", "p"), true),
        (res(&reader, "delete", "", "pods", "team", "p"), false),
        (res(&alice, "list", "", "pods", "", ""), false),
        // A role binding grants only in its namespace.
        (
            res(&alice, "create", "apps", "deployments", "team", ""),
            true,
        ),
        (
            res(&alice, "create", "apps", "deployments", "other", ""),
            false,
        ),
        (res(&alice, "create", "apps", "deployments", "", ""), false),
        // A role binding may reference a cluster role, granting it in the namespace.
        (res(&alice, "get", "", "secrets", "team", "a"), true),
        (res(&alice, "get", "", "secrets", "team", "b"), false),
        (res(&alice, "get", "", "secrets", "other", "a"), false),
        // A service account subject without a namespace is in the binding's.
        (res(&ci, "create", "apps", "deployments", "team", ""), true),
        (
            Attributes::non_resource(&alice, "get", "/healthz/etcd"),
            true,
        ),
        (Attributes::non_resource(&alice, "get", "/metrics"), false),
    ];
    for (i, (attrs, want)) in cases.iter().enumerate() {
        assert_eq!(
            authorize(&p, attrs).is_allowed(),
            *want,
            "case {i}: {attrs:?}"
        );
    }
}

#[test]
fn allow_reasons_name_the_binding_role_and_subject() {
    let p = policy();
    let reader = User::new("rita", &["readers"]);
    assert_eq!(
        authorize(&p, &res(&reader, "get", "", "pods", "team", "p")),
        Decision::Allow {
            reason: r#"RBAC: allowed by ClusterRoleBinding "readers" of ClusterRole "pod-reader" to Group "readers""#.to_string()
        }
    );
    let ci = User::new("system:serviceaccount:team:ci", &[]);
    assert_eq!(
        authorize(&p, &res(&ci, "create", "apps", "deployments", "team", "")).reason(),
        r#"RBAC: allowed by RoleBinding "deploy/team" of Role "deployer" to ServiceAccount "ci/team""#
    );
}

#[test]
fn denials_report_unresolvable_role_references() {
    let alice = User::new("alice", &["devs"]);
    let attrs = res(&alice, "get", "", "pods", "team", "p");
    assert_eq!(
        authorize(&Policy::default(), &attrs),
        Decision::NoOpinion {
            reason: String::new()
        }
    );

    let one_missing = Policy::default().with_cluster_binding(cluster_binding(
        "devs",
        "gone",
        vec![subject("Group", "devs", None)],
    ));
    assert_eq!(
        authorize(&one_missing, &attrs).reason(),
        r#"RBAC: clusterrole.rbac.authorization.k8s.io "gone" not found"#
    );

    let two_missing = one_missing.with_binding(binding(
        "team",
        "b",
        role_ref("Role", "absent"),
        vec![subject("User", "alice", None)],
    ));
    assert_eq!(
        authorize(&two_missing, &attrs).reason(),
        r#"RBAC: [clusterrole.rbac.authorization.k8s.io "gone" not found, role.rbac.authorization.k8s.io "absent" not found]"#
    );
}

#[test]
fn a_missing_role_does_not_hide_other_grants() {
    let p = policy().with_cluster_binding(cluster_binding(
        "broken",
        "gone",
        vec![subject("Group", "readers", None)],
    ));
    let reader = User::new("rita", &["readers"]);
    assert!(authorize(&p, &res(&reader, "get", "", "pods", "team", "p")).is_allowed());
}

#[test]
fn unsupported_role_reference_kinds_are_errors() {
    let p = Policy::default().with_binding(binding(
        "team",
        "odd",
        role_ref("Team", "x"),
        vec![subject("User", "alice", None)],
    ));
    let (rules, errors) = rules_for(&p, &User::new("alice", &[]), "team");
    assert!(rules.is_empty());
    assert_eq!(
        errors,
        vec![r#"unsupported role reference kind: "Team""#.to_string()]
    );
}

#[test]
fn rules_for_lists_cluster_then_namespace_rules() {
    let p = policy();
    let alice = User::new("alice", &["system:authenticated", "readers"]);
    let (rules, errors) = rules_for(&p, &alice, "team");
    assert!(errors.is_empty());
    let verbs: Vec<&str> = rules.iter().map(|r| r.verbs[0].as_str()).collect();
    // pod-reader and health (cluster), then deployer and secret-a (namespace).
    assert_eq!(rules.len(), 4, "{rules:?}");
    assert_eq!(verbs, ["get", "get", "create", "get"]);
    let (cluster_only, _) = rules_for(&p, &alice, "");
    assert_eq!(cluster_only.len(), 2);
}

#[test]
fn split_rules_separates_resource_and_url_rules() {
    let mixed = {
        let mut r = rule(&["get"], &[""], &["pods"]);
        r.non_resource_urls = Some(vec!["/x".to_string()]);
        r
    };
    let (resource, non_resource) = split_rules(&[
        rule(&["get"], &[""], &["pods"]),
        urls(&["get"], &["/healthz"]),
        mixed,
    ]);
    assert_eq!(resource.len(), 2);
    assert_eq!(
        resource[0].resources.as_deref(),
        Some(&["pods".to_string()][..])
    );
    assert_eq!(non_resource.len(), 2);
    assert_eq!(
        non_resource[0].non_resource_urls.as_deref(),
        Some(&["/healthz".to_string()][..])
    );
}

#[test]
fn role_references_resolve_to_rules_or_lister_errors() {
    let p = policy();
    assert_eq!(
        role_reference_rules(&p, &role_ref("Role", "deployer"), "team"),
        Ok(vec![rule(&["create"], &["apps"], &["deployments"])])
    );
    assert_eq!(
        role_reference_rules(&p, &role_ref("Role", "deployer"), "other"),
        Err(r#"role.rbac.authorization.k8s.io "deployer" not found"#.to_string())
    );
    assert_eq!(
        role_reference_rules(&p, &role_ref("ClusterRole", "health"), "team").map(|r| r.len()),
        Ok(1)
    );
}
