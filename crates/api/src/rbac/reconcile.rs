//! Bringing live RBAC objects up to the bootstrap policy at API server start: upstream's
//! `component-helpers/auth/rbac/reconciliation` in the union mode the post-start hook
//! uses (missing permissions are added, extra ones kept).
//!
//! Each function compares the live object (`None` when it does not exist) with the
//! desired one and says what to write, or `None` when nothing is to be done: the object
//! is up to date, or it is protected by the annotation
//! `rbac.authorization.kubernetes.io/autoupdate: "false"`.

use std::collections::BTreeMap;

use k8s_openapi::api::rbac::v1::{
    AggregationRule, ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef,
    Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use super::bootstrap::AUTOUPDATE_ANNOTATION;
use super::covers::covers;
use super::subjects::subjects_equal;

/// What to write to bring a binding up to date.
#[derive(Debug, Clone, PartialEq)]
pub enum BindingChange<T> {
    /// The binding does not exist: create this.
    Create(T),
    /// Update the live binding to this (the live object with the missing labels,
    /// annotations and subjects added; it keeps the live `resourceVersion`).
    Update(T),
    /// The live binding references another role, which cannot be changed in place:
    /// delete it (preconditioned on its uid) and create this.
    Recreate(T),
}

/// Whether the live object opted out of reconciliation.
fn protected(meta: &ObjectMeta) -> bool {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(AUTOUPDATE_ANNOTATION))
        .is_some_and(|v| v == "false")
}

/// Adds the desired labels and annotations the live object lacks (live values win);
/// returns whether anything changed.
fn merge_metadata(live: &mut ObjectMeta, desired: &ObjectMeta) -> bool {
    let labels = merge_map(&mut live.labels, desired.labels.as_ref());
    let annotations = merge_map(&mut live.annotations, desired.annotations.as_ref());
    labels || annotations
}

fn merge_map(
    live: &mut Option<BTreeMap<String, String>>,
    desired: Option<&BTreeMap<String, String>>,
) -> bool {
    let mut changed = false;
    for (k, v) in desired.into_iter().flatten() {
        let map = live.get_or_insert_with(BTreeMap::new);
        if !map.contains_key(k) {
            map.insert(k.clone(), v.clone());
            changed = true;
        }
    }
    changed
}

/// Adds the desired rules the live ones do not cover, as the atomic rules
/// [`covers`] reports; returns whether any were missing.
fn add_missing_rules(live: &mut Option<Vec<PolicyRule>>, desired: &[PolicyRule]) -> bool {
    let (_, missing) = covers(live.as_deref().unwrap_or_default(), desired);
    if missing.is_empty() {
        return false;
    }
    live.get_or_insert_with(Vec::new).extend(missing);
    true
}

/// Label selector equality as upstream's semantic comparison: absent and empty lists or
/// maps are equal.
fn selectors_equal(a: &LabelSelector, b: &LabelSelector) -> bool {
    a.match_labels.as_ref().filter(|m| !m.is_empty())
        == b.match_labels.as_ref().filter(|m| !m.is_empty())
        && a.match_expressions.as_deref().unwrap_or_default()
            == b.match_expressions.as_deref().unwrap_or_default()
}

/// Reconciles the aggregation rule: dropped when the desired role has none, otherwise
/// extended with the desired selectors the live rule lacks. Returns whether it changed.
fn reconcile_aggregation(
    live: &mut Option<AggregationRule>,
    desired: Option<&AggregationRule>,
) -> bool {
    let Some(desired) = desired else {
        return live.take().is_some();
    };
    let have: Vec<LabelSelector> = live
        .as_ref()
        .and_then(|a| a.cluster_role_selectors.clone())
        .unwrap_or_default();
    let missing: Vec<LabelSelector> = desired
        .cluster_role_selectors
        .iter()
        .flatten()
        .filter(|want| !have.iter().any(|h| selectors_equal(h, want)))
        .cloned()
        .collect();
    if missing.is_empty() {
        return false;
    }
    live.get_or_insert_with(AggregationRule::default)
        .cluster_role_selectors
        .get_or_insert_with(Vec::new)
        .extend(missing);
    true
}

/// What to write so the live cluster role has at least the desired one's labels,
/// annotations, rules and aggregation selectors (upstream's `computeReconciledRole`):
/// `desired` when it does not exist, the updated live role, or `None`. An aggregated
/// role's rules are the aggregation controller's to fill, and the desired aggregated
/// roles have none, so reconciling them only touches the selectors.
pub fn reconcile_cluster_role(
    existing: Option<&ClusterRole>,
    desired: &ClusterRole,
) -> Option<ClusterRole> {
    let Some(existing) = existing else {
        return Some(desired.clone());
    };
    if protected(&existing.metadata) {
        return None;
    }
    let mut role = existing.clone();
    let mut changed = merge_metadata(&mut role.metadata, &desired.metadata);
    changed |= add_missing_rules(
        &mut role.rules,
        desired.rules.as_deref().unwrap_or_default(),
    );
    changed |= reconcile_aggregation(
        &mut role.aggregation_rule,
        desired.aggregation_rule.as_ref(),
    );
    changed.then_some(role)
}

/// [`reconcile_cluster_role`] for a namespaced role (which has no aggregation).
pub fn reconcile_role(existing: Option<&Role>, desired: &Role) -> Option<Role> {
    let Some(existing) = existing else {
        return Some(desired.clone());
    };
    if protected(&existing.metadata) {
        return None;
    }
    let mut role = existing.clone();
    let mut changed = merge_metadata(&mut role.metadata, &desired.metadata);
    changed |= add_missing_rules(
        &mut role.rules,
        desired.rules.as_deref().unwrap_or_default(),
    );
    changed.then_some(role)
}

/// Adds the desired subjects the live binding lacks; returns whether any were missing.
fn add_missing_subjects(live: &mut Option<Vec<Subject>>, desired: Option<&Vec<Subject>>) -> bool {
    let mut missing: Vec<Subject> = Vec::new();
    for want in desired.into_iter().flatten() {
        let present = live.iter().flatten().any(|s| subjects_equal(s, want));
        if !present && !missing.iter().any(|m| subjects_equal(m, want)) {
            missing.push(want.clone());
        }
    }
    if missing.is_empty() {
        return false;
    }
    live.get_or_insert_with(Vec::new).extend(missing);
    true
}

fn role_refs_equal(a: &RoleRef, b: &RoleRef) -> bool {
    a.api_group == b.api_group && a.kind == b.kind && a.name == b.name
}

/// What to write so the live cluster role binding has at least the desired one's
/// labels, annotations and subjects (upstream's `computeReconciledRoleBinding`); a
/// binding to another role is replaced, since `roleRef` is immutable.
pub fn reconcile_cluster_role_binding(
    existing: Option<&ClusterRoleBinding>,
    desired: &ClusterRoleBinding,
) -> Option<BindingChange<ClusterRoleBinding>> {
    let Some(existing) = existing else {
        return Some(BindingChange::Create(desired.clone()));
    };
    if protected(&existing.metadata) {
        return None;
    }
    if !role_refs_equal(&existing.role_ref, &desired.role_ref) {
        return Some(BindingChange::Recreate(desired.clone()));
    }
    let mut binding = existing.clone();
    let mut changed = merge_metadata(&mut binding.metadata, &desired.metadata);
    changed |= add_missing_subjects(&mut binding.subjects, desired.subjects.as_ref());
    changed.then_some(BindingChange::Update(binding))
}

/// [`reconcile_cluster_role_binding`] for a namespaced role binding.
pub fn reconcile_role_binding(
    existing: Option<&RoleBinding>,
    desired: &RoleBinding,
) -> Option<BindingChange<RoleBinding>> {
    let Some(existing) = existing else {
        return Some(BindingChange::Create(desired.clone()));
    };
    if protected(&existing.metadata) {
        return None;
    }
    if !role_refs_equal(&existing.role_ref, &desired.role_ref) {
        return Some(BindingChange::Recreate(desired.clone()));
    }
    let mut binding = existing.clone();
    let mut changed = merge_metadata(&mut binding.metadata, &desired.metadata);
    changed |= add_missing_subjects(&mut binding.subjects, desired.subjects.as_ref());
    changed.then_some(BindingChange::Update(binding))
}
