//! The aggregation controller's rule computation.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::rbac::v1::{AggregationRule, ClusterRole};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

use super::{cluster_role, rule};
use crate::rbac::aggregated_rules;

fn labelled(
    name: &str,
    labels: &[(&str, &str)],
    rules: Vec<k8s_openapi::api::rbac::v1::PolicyRule>,
) -> Arc<ClusterRole> {
    let mut r = cluster_role(name, rules);
    r.metadata.labels = Some(
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    Arc::new(r)
}

fn aggregating(name: &str, selectors: Vec<LabelSelector>) -> ClusterRole {
    ClusterRole {
        aggregation_rule: Some(AggregationRule {
            cluster_role_selectors: Some(selectors),
        }),
        ..cluster_role(name, vec![rule(&["stale"], &[""], &["x"])])
    }
}

fn match_labels(pairs: &[(&str, &str)]) -> LabelSelector {
    LabelSelector {
        match_labels: Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        ),
        ..LabelSelector::default()
    }
}

#[test]
fn roles_without_aggregation_rules_are_not_aggregated() {
    assert_eq!(aggregated_rules(&cluster_role("plain", vec![]), &[]), None);
}

#[test]
fn rules_are_the_union_of_matching_roles_in_name_order() {
    let all = vec![
        labelled(
            "zeta",
            &[("agg", "true")],
            vec![
                rule(&["get"], &[""], &["pods"]),
                rule(&["list"], &[""], &["z"]),
            ],
        ),
        labelled(
            "alpha",
            &[("agg", "true")],
            vec![
                rule(&["get"], &[""], &["pods"]),
                rule(&["list"], &[""], &["a"]),
            ],
        ),
        labelled(
            "other",
            &[("agg", "false")],
            vec![rule(&["delete"], &[""], &["pods"])],
        ),
        labelled("unlabelled", &[], vec![rule(&["watch"], &[""], &["pods"])]),
    ];
    let role = aggregating("combined", vec![match_labels(&[("agg", "true")])]);
    assert_eq!(
        aggregated_rules(&role, &all),
        Some(vec![
            rule(&["get"], &[""], &["pods"]),
            rule(&["list"], &[""], &["a"]),
            rule(&["list"], &[""], &["z"]),
        ])
    );
}

#[test]
fn selectors_contribute_in_order_and_the_role_never_aggregates_itself() {
    let mut me = aggregating(
        "me",
        vec![match_labels(&[("b", "1")]), match_labels(&[("a", "1")])],
    );
    me.metadata.labels = Some([("a".to_string(), "1".to_string())].into());
    let all = vec![
        labelled("x", &[("a", "1")], vec![rule(&["get"], &[""], &["from-a"])]),
        labelled("y", &[("b", "1")], vec![rule(&["get"], &[""], &["from-b"])]),
        Arc::new(me.clone()),
    ];
    assert_eq!(
        aggregated_rules(&me, &all),
        Some(vec![
            rule(&["get"], &[""], &["from-b"]),
            rule(&["get"], &[""], &["from-a"])
        ])
    );
}

#[test]
fn expression_selectors_match_and_nothing_selected_means_no_rules() {
    let expr = LabelSelector {
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: "tier".to_string(),
            operator: "In".to_string(),
            values: Some(vec!["gold".to_string()]),
        }]),
        ..LabelSelector::default()
    };
    let all = vec![
        labelled(
            "g",
            &[("tier", "gold")],
            vec![rule(&["get"], &[""], &["g"])],
        ),
        labelled(
            "s",
            &[("tier", "silver")],
            vec![rule(&["get"], &[""], &["s"])],
        ),
    ];
    assert_eq!(
        aggregated_rules(&aggregating("r", vec![expr]), &all),
        Some(vec![rule(&["get"], &[""], &["g"])])
    );
    assert_eq!(
        aggregated_rules(&aggregating("r", vec![]), &all),
        Some(vec![])
    );
}

#[test]
fn an_invalid_selector_leaves_the_role_alone() {
    let bad = LabelSelector {
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: "k".to_string(),
            operator: "Near".to_string(),
            values: None,
        }]),
        ..LabelSelector::default()
    };
    assert_eq!(aggregated_rules(&aggregating("r", vec![bad]), &[]), None);
}
