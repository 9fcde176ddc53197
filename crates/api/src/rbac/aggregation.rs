//! The pure core of the clusterrole-aggregation controller
//! (`pkg/controller/clusterroleaggregation`): an aggregated cluster role's rules are the
//! union of the rules of the cluster roles its `aggregationRule` selects.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};

use crate::selector::LabelSelector;

/// Rule equality as upstream's semantic comparison: an absent list equals an empty one.
fn rules_equal(a: &PolicyRule, b: &PolicyRule) -> bool {
    fn list(l: &Option<Vec<String>>) -> &[String] {
        l.as_deref().unwrap_or_default()
    }
    a.verbs == b.verbs
        && list(&a.api_groups) == list(&b.api_groups)
        && list(&a.resources) == list(&b.resources)
        && list(&a.resource_names) == list(&b.resource_names)
        && list(&a.non_resource_urls) == list(&b.non_resource_urls)
}

/// The rules `role` should have, or `None` when it has no `aggregationRule` (or one of
/// its selectors is invalid, in which case upstream leaves the role alone).
///
/// For each selector in order, the cluster roles it matches (other than `role` itself)
/// are taken in name order and their rules appended, skipping rules already present.
/// The controller writes the result when it differs from the role's current rules.
pub fn aggregated_rules(role: &ClusterRole, all: &[Arc<ClusterRole>]) -> Option<Vec<PolicyRule>> {
    let aggregation = role.aggregation_rule.as_ref()?;
    let mut sorted: Vec<&ClusterRole> = all.iter().map(Arc::as_ref).collect();
    sorted.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let no_labels = BTreeMap::new();
    let mut rules: Vec<PolicyRule> = Vec::new();
    for selector in aggregation.cluster_role_selectors.iter().flatten() {
        let selector = LabelSelector::from_typed(Some(selector)).ok()?;
        for other in &sorted {
            if other.metadata.name == role.metadata.name {
                continue;
            }
            if !selector.matches(other.metadata.labels.as_ref().unwrap_or(&no_labels)) {
                continue;
            }
            for rule in other.rules.iter().flatten() {
                if !rules.iter().any(|r| rules_equal(r, rule)) {
                    rules.push(rule.clone());
                }
            }
        }
    }
    Some(rules)
}
