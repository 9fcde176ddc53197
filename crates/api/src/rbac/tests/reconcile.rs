//! Reconciling live objects with the bootstrap policy.

use std::collections::BTreeMap;

use k8s_openapi::api::rbac::v1::{AggregationRule, ClusterRole};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::{binding, cluster_binding, cluster_role, role, role_ref, rule, subject};
use crate::rbac::bootstrap::AUTOUPDATE_ANNOTATION;
use crate::rbac::{
    bootstrap_policy, reconcile_cluster_role, reconcile_cluster_role_binding, reconcile_role,
    reconcile_role_binding, BindingChange,
};

fn map(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn desired() -> ClusterRole {
    let mut r = cluster_role("reader", vec![rule(&["get", "list"], &[""], &["pods"])]);
    r.metadata.labels = map(&[("kubernetes.io/bootstrapping", "rbac-defaults")]);
    r.metadata.annotations = map(&[(AUTOUPDATE_ANNOTATION, "true")]);
    r
}

fn selector(key: &str) -> LabelSelector {
    LabelSelector {
        match_labels: map(&[(key, "true")]),
        ..LabelSelector::default()
    }
}

fn aggregated(keys: &[&str]) -> ClusterRole {
    ClusterRole {
        aggregation_rule: Some(AggregationRule {
            cluster_role_selectors: Some(keys.iter().map(|k| selector(k)).collect()),
        }),
        rules: None,
        ..desired()
    }
}

#[test]
fn missing_roles_are_created_as_desired() {
    assert_eq!(reconcile_cluster_role(None, &desired()), Some(desired()));
    let r = role(
        "kube-system",
        "r",
        vec![rule(&["get"], &[""], &["configmaps"])],
    );
    assert_eq!(reconcile_role(None, &r), Some(r.clone()));
}

#[test]
fn up_to_date_roles_need_nothing() {
    assert_eq!(reconcile_cluster_role(Some(&desired()), &desired()), None);
    // Extra labels, annotations and rules on the live role are kept, not a change.
    let mut live = desired();
    live.rules = Some(vec![rule(&["*"], &[""], &["pods"])]);
    live.metadata.labels = map(&[
        ("kubernetes.io/bootstrapping", "rbac-defaults"),
        ("team", "x"),
    ]);
    assert_eq!(reconcile_cluster_role(Some(&live), &desired()), None);
}

#[test]
fn missing_rules_labels_and_annotations_are_added() {
    let mut live = cluster_role("reader", vec![rule(&["get"], &[""], &["pods"])]);
    live.metadata.labels = map(&[("kubernetes.io/bootstrapping", "custom")]);
    live.metadata.resource_version = Some("42".to_string());
    let updated = reconcile_cluster_role(Some(&live), &desired()).expect("an update");
    // Live values win; only missing keys are added.
    assert_eq!(
        updated.metadata.labels,
        map(&[("kubernetes.io/bootstrapping", "custom")])
    );
    assert_eq!(
        updated.metadata.annotations,
        map(&[(AUTOUPDATE_ANNOTATION, "true")])
    );
    assert_eq!(
        updated.rules,
        Some(vec![
            rule(&["get"], &[""], &["pods"]),
            rule(&["list"], &[""], &["pods"])
        ])
    );
    assert_eq!(updated.metadata.resource_version.as_deref(), Some("42"));
}

#[test]
fn protected_objects_are_left_alone() {
    let mut live = cluster_role("reader", vec![]);
    live.metadata.annotations = map(&[(AUTOUPDATE_ANNOTATION, "false")]);
    assert_eq!(reconcile_cluster_role(Some(&live), &desired()), None);

    let mut live_binding = cluster_binding("b", "other", vec![]);
    live_binding.metadata.annotations = map(&[(AUTOUPDATE_ANNOTATION, "false")]);
    let want = cluster_binding("b", "reader", vec![subject("Group", "g", None)]);
    assert_eq!(
        reconcile_cluster_role_binding(Some(&live_binding), &want),
        None
    );
}

#[test]
fn aggregated_roles_get_selectors_not_rules() {
    // Rules the controller filled in stay; a missing selector is appended.
    let mut live = aggregated(&["a"]);
    live.rules = Some(vec![rule(&["get"], &[""], &["secrets"])]);
    let want = aggregated(&["a", "b"]);
    let updated = reconcile_cluster_role(Some(&live), &want).expect("an update");
    assert_eq!(updated.rules, live.rules);
    let selectors = updated
        .aggregation_rule
        .and_then(|a| a.cluster_role_selectors)
        .unwrap_or_default();
    assert_eq!(selectors, vec![selector("a"), selector("b")]);
    // Same selectors (an empty expression list equals none): nothing to do.
    let mut same = aggregated(&["a", "b"]);
    if let Some(s) = same
        .aggregation_rule
        .as_mut()
        .and_then(|a| a.cluster_role_selectors.as_mut())
    {
        s[0].match_expressions = Some(vec![]);
    }
    assert_eq!(reconcile_cluster_role(Some(&same), &want), None);
}

#[test]
fn roles_become_aggregated_or_stop_being_so_as_desired() {
    let plain = desired();
    let updated = reconcile_cluster_role(Some(&plain), &aggregated(&["a"])).expect("an update");
    assert_eq!(
        updated.aggregation_rule,
        aggregated(&["a"]).aggregation_rule
    );
    let updated = reconcile_cluster_role(Some(&aggregated(&["a"])), &plain).expect("an update");
    assert_eq!(updated.aggregation_rule, None);
}

#[test]
fn bindings_get_missing_subjects() {
    let want = cluster_binding(
        "b",
        "reader",
        vec![subject("Group", "g", None), subject("User", "u", None)],
    );
    assert_eq!(
        reconcile_cluster_role_binding(None, &want),
        Some(BindingChange::Create(want.clone()))
    );
    let mut live = cluster_binding(
        "b",
        "reader",
        vec![subject("User", "u", None), subject("User", "extra", None)],
    );
    live.metadata.labels = want.metadata.labels.clone();
    match reconcile_cluster_role_binding(Some(&live), &want) {
        Some(BindingChange::Update(b)) => assert_eq!(
            b.subjects,
            Some(vec![
                subject("User", "u", None),
                subject("User", "extra", None),
                subject("Group", "g", None)
            ])
        ),
        other => panic!("expected an update, got {other:?}"),
    }
    // An absent apiGroup equals an empty one, so this subject is present.
    let mut want_empty_group = want.clone();
    if let Some(s) = want_empty_group.subjects.as_mut() {
        s[0].api_group = Some(String::new());
    }
    let mut live_no_group = want.clone();
    if let Some(s) = live_no_group.subjects.as_mut() {
        s[0].api_group = None;
    }
    assert_eq!(
        reconcile_cluster_role_binding(Some(&live_no_group), &want_empty_group),
        None
    );
}

#[test]
fn bindings_to_another_role_are_recreated() {
    let live = binding(
        "ns",
        "b",
        role_ref("Role", "old"),
        vec![subject("User", "u", None)],
    );
    let want = binding(
        "ns",
        "b",
        role_ref("ClusterRole", "old"),
        vec![subject("User", "u", None)],
    );
    assert_eq!(
        reconcile_role_binding(Some(&live), &want),
        Some(BindingChange::Recreate(want.clone()))
    );
    assert_eq!(reconcile_role_binding(Some(&want), &want), None);
}

#[test]
fn the_bootstrap_policy_reconciles_onto_itself_as_a_no_op() {
    let p = bootstrap_policy();
    for r in &p.cluster_roles {
        assert_eq!(
            reconcile_cluster_role(Some(r), r),
            None,
            "{:?}",
            r.metadata.name
        );
    }
    for b in &p.cluster_role_bindings {
        assert_eq!(reconcile_cluster_role_binding(Some(b), b), None);
    }
    for r in &p.roles {
        assert_eq!(reconcile_role(Some(r), r), None);
    }
    for b in &p.role_bindings {
        assert_eq!(reconcile_role_binding(Some(b), b), None);
    }
}
