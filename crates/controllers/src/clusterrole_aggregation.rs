//! `clusterrole-aggregation`: a ClusterRole with an `aggregationRule` has as `rules` the union
//! of the rules of every other ClusterRole that any of its `clusterRoleSelectors` matches,
//! taken selector by selector, roles in name order, each rule once, in first-seen order.
//!
//! As upstream, any ClusterRole change queues every aggregated role (the set is small and the
//! dependency graph unknown), and a role is written only when its rules differ. The write is a
//! server-side apply of `rules` as field manager `clusterrole-aggregation-controller`, forced,
//! falling back to an update on a server without apply (415), as upstream's.

use std::sync::Arc;

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, ResourceExt};
use rkube_api::selector::LabelSelector;

use crate::driver::{drive, on_any_change};
use crate::error::{is_conflict, is_not_found, is_unsupported_media_type};
use crate::{ControllerContext, Error};

pub const NAME: &str = "clusterrole-aggregation";
pub const FIELD_MANAGER: &str = "clusterrole-aggregation-controller";

/// The rules `role` should have: `None` when it has no aggregation rule.
pub fn aggregated_rules(
    role: &ClusterRole,
    all: &[Arc<ClusterRole>],
) -> Result<Option<Vec<PolicyRule>>, Error> {
    let Some(rule) = &role.aggregation_rule else {
        return Ok(None);
    };
    let me = role.name_any();
    let mut rules: Vec<PolicyRule> = Vec::new();
    for sel in rule.cluster_role_selectors.iter().flatten() {
        let selector = LabelSelector::from_typed(Some(sel)).map_err(|source| Error::Selector {
            name: me.clone(),
            source,
        })?;
        let mut matching: Vec<&ClusterRole> = all
            .iter()
            .map(|r| &**r)
            .filter(|r| selector.matches(&r.metadata.labels))
            .collect();
        matching.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        for other in matching.into_iter().filter(|r| r.name_any() != me) {
            for r in &other.rules.clone().unwrap_or_default() {
                if !rules.iter().any(|have| same_rule(have, r)) {
                    rules.push(r.clone());
                }
            }
        }
    }
    Ok(Some(rules))
}

/// An absent list and an empty one are the same (upstream's semantic equality).
fn norm(v: &Option<Vec<String>>) -> &[String] {
    v.as_deref().unwrap_or_default()
}

fn same_rule(a: &PolicyRule, b: &PolicyRule) -> bool {
    a.verbs == b.verbs
        && norm(&a.api_groups) == norm(&b.api_groups)
        && norm(&a.resources) == norm(&b.resources)
        && norm(&a.resource_names) == norm(&b.resource_names)
        && norm(&a.non_resource_urls) == norm(&b.non_resource_urls)
}

/// Whether the role's current rules differ from `desired`.
pub fn rules_differ(current: Option<&[PolicyRule]>, desired: &[PolicyRule]) -> bool {
    let current = current.unwrap_or_default();
    current.len() != desired.len() || current.iter().zip(desired).any(|(a, b)| !same_rule(a, b))
}

struct State {
    client: Client,
    roles: Store<ClusterRole>,
}

/// Runs the controller until its watch ends.
pub async fn run(client: Client, ctx: Arc<ControllerContext>) -> Result<(), Error> {
    let (roles, events) = ctx.informer::<ClusterRole>(NAME, &client).await;
    let cache = roles.clone();
    let triggers = vec![on_any_change(events, move || {
        cache
            .state()
            .iter()
            .filter(|r| r.aggregation_rule.is_some())
            .map(|r| ObjectRef::from_obj(&**r))
            .collect()
    })];
    let state = Arc::new(State {
        client,
        roles: roles.clone(),
    });
    drive(NAME, &ctx, roles, triggers, state, reconcile).await
}

async fn reconcile(role: Arc<ClusterRole>, st: Arc<State>) -> Result<Action, Error> {
    let Some(desired) = aggregated_rules(&role, &st.roles.state())? else {
        return Ok(Action::await_change());
    };
    if !rules_differ(role.rules.as_deref(), &desired) {
        return Ok(Action::await_change());
    }
    let name = role.name_any();
    let api = Api::<ClusterRole>::all(st.client.clone());
    let apply = serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name},
        "rules": desired,
    });
    let written = api
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&apply),
        )
        .await;
    match written {
        Ok(_) => {}
        Err(e) if is_unsupported_media_type(&e) => {
            let mut updated = (*role).clone();
            updated.rules = Some(desired.clone());
            match api.replace(&name, &PostParams::default(), &updated).await {
                Ok(_) => {}
                Err(e) if is_conflict(&e) || is_not_found(&e) => return Ok(Action::await_change()),
                Err(e) => return Err(e.into()),
            }
        }
        Err(e) if is_not_found(&e) => return Ok(Action::await_change()),
        Err(e) => return Err(e.into()),
    }
    tracing::info!(
        controller = NAME,
        clusterrole = name,
        rules = desired.len(),
        "aggregated rules"
    );
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::rbac::v1::AggregationRule;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
        LabelSelector as TypedSelector, LabelSelectorRequirement,
    };
    use kube::api::ObjectMeta;
    use std::collections::BTreeMap;

    /// What is checked, the role, the other roles, the rules it should get.
    type AggregationCase = (
        &'static str,
        Arc<ClusterRole>,
        Vec<Arc<ClusterRole>>,
        Option<Vec<PolicyRule>>,
    );
    /// What is checked, the current rules, the desired ones, whether they differ.
    type DiffCase = (&'static str, Option<Vec<PolicyRule>>, Vec<PolicyRule>, bool);

    fn rule(verb: &str, resource: &str) -> PolicyRule {
        PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec![resource.into()]),
            verbs: vec![verb.into()],
            ..Default::default()
        }
    }

    fn role(name: &str, labels: &[(&str, &str)], rules: Vec<PolicyRule>) -> Arc<ClusterRole> {
        Arc::new(ClusterRole {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            rules: Some(rules),
            ..Default::default()
        })
    }

    fn match_labels(k: &str, v: &str) -> TypedSelector {
        TypedSelector {
            match_labels: Some(BTreeMap::from([(k.to_string(), v.to_string())])),
            ..Default::default()
        }
    }

    fn aggregator(selectors: Vec<TypedSelector>, labels: &[(&str, &str)]) -> Arc<ClusterRole> {
        let mut r = (*role("agg", labels, vec![])).clone();
        r.aggregation_rule = Some(AggregationRule {
            cluster_role_selectors: Some(selectors),
        });
        Arc::new(r)
    }

    #[test]
    fn rules_are_the_union_in_name_order_without_duplicates() {
        let view = match_labels("agg/view", "true");
        let edit = match_labels("agg/edit", "true");
        let pods = rule("get", "pods");
        let svcs = rule("get", "services");
        let cms = rule("list", "configmaps");
        let b = role(
            "b-role",
            &[("agg/view", "true")],
            vec![svcs.clone(), pods.clone()],
        );
        let a = role("a-role", &[("agg/view", "true")], vec![pods.clone()]);
        let c = role(
            "c-role",
            &[("agg/edit", "true"), ("agg/view", "true")],
            vec![cms.clone(), pods.clone()],
        );
        let other = role("z-role", &[("team", "x")], vec![rule("delete", "nodes")]);
        let cases: Vec<AggregationCase> = vec![
            (
                "plain role",
                role("plain", &[], vec![]),
                vec![a.clone()],
                None,
            ),
            (
                "nothing matches",
                aggregator(vec![view.clone()], &[]),
                vec![other.clone()],
                Some(vec![]),
            ),
            (
                "sorted by name, first occurrence kept",
                aggregator(vec![view.clone()], &[]),
                vec![c.clone(), b.clone(), a.clone(), other.clone()],
                Some(vec![pods.clone(), svcs.clone(), cms.clone()]),
            ),
            (
                "selectors in order",
                aggregator(vec![edit.clone(), view.clone()], &[]),
                vec![a.clone(), b.clone(), c.clone()],
                Some(vec![cms.clone(), pods.clone(), svcs.clone()]),
            ),
            (
                "itself excluded",
                aggregator(vec![view.clone()], &[("agg/view", "true")]),
                vec![a.clone()],
                Some(vec![pods.clone()]),
            ),
            (
                "match expressions",
                aggregator(
                    vec![TypedSelector {
                        match_expressions: Some(vec![LabelSelectorRequirement {
                            key: "agg/edit".into(),
                            operator: "Exists".into(),
                            values: None,
                        }]),
                        ..Default::default()
                    }],
                    &[],
                ),
                vec![a.clone(), c.clone()],
                Some(vec![cms.clone(), pods.clone()]),
            ),
        ];
        for (what, target, mut all, want) in cases {
            all.push(target.clone());
            let got = aggregated_rules(&target, &all).unwrap();
            assert_eq!(got, want, "{what}");
        }
    }

    #[test]
    fn bad_selector_is_an_error_naming_the_role() {
        let bad = aggregator(
            vec![TypedSelector {
                match_expressions: Some(vec![LabelSelectorRequirement {
                    key: "k".into(),
                    operator: "In".into(),
                    values: None,
                }]),
                ..Default::default()
            }],
            &[],
        );
        let err = aggregated_rules(&bad, std::slice::from_ref(&bad)).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid aggregationRule of clusterrole agg"),
            "{err}"
        );
    }

    #[test]
    fn rules_compare_semantically() {
        let a = rule("get", "pods");
        let mut a_empty_names = a.clone();
        a_empty_names.resource_names = Some(vec![]);
        let cases: Vec<DiffCase> = vec![
            ("none vs empty", None, vec![], false),
            ("same", Some(vec![a.clone()]), vec![a.clone()], false),
            (
                "absent vs empty field",
                Some(vec![a.clone()]),
                vec![a_empty_names],
                false,
            ),
            ("missing rule", Some(vec![]), vec![a.clone()], true),
            (
                "other order",
                Some(vec![a.clone(), rule("list", "pods")]),
                vec![rule("list", "pods"), a.clone()],
                true,
            ),
        ];
        for (what, current, desired, want) in cases {
            assert_eq!(rules_differ(current.as_deref(), &desired), want, "{what}");
        }
    }
}
