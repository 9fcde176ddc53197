//! `clusterrole-aggregation` against a real API server.

mod common;

use std::collections::BTreeMap;

use common::{cluster, start, wait_for, TestResult, CA_PEM};
use k8s_openapi::api::rbac::v1::{AggregationRule, ClusterRole, PolicyRule};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::Api;
use rkube_controllers::clusterrole_aggregation::FIELD_MANAGER;
use rkube_controllers::ControllerContext;

fn rule(verb: &str, resource: &str) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![String::new()]),
        resources: Some(vec![resource.into()]),
        verbs: vec![verb.into()],
        ..Default::default()
    }
}

fn role(name: &str, labels: &[(&str, &str)], rules: Vec<PolicyRule>) -> ClusterRole {
    ClusterRole {
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
    }
}

/// Waits until `name`'s rules are `want` (an absent list counts as empty).
async fn wait_rules(api: &Api<ClusterRole>, name: &str, want: Vec<PolicyRule>, what: &str) {
    wait_for(what, || {
        let api = api.clone();
        let name = name.to_string();
        let want = want.clone();
        async move {
            let r = api.get_opt(&name).await.ok()??;
            (r.rules.unwrap_or_default() == want).then_some(())
        }
    })
    .await
}

#[tokio::test]
async fn aggregated_role_follows_the_roles_it_selects() -> TestResult {
    let c = cluster().await?;
    let _controllers = start(
        &c,
        ControllerContext::new(CA_PEM),
        "clusterrole-aggregation",
    );
    let api = Api::<ClusterRole>::all(c.client.clone());
    let pp = PostParams::default();

    let mut monitoring = role("monitoring", &[], vec![]);
    monitoring.aggregation_rule = Some(AggregationRule {
        cluster_role_selectors: Some(vec![LabelSelector {
            match_labels: Some(BTreeMap::from([(
                "rbac.example.com/aggregate-to-monitoring".to_string(),
                "true".to_string(),
            )])),
            ..Default::default()
        }]),
    });
    api.create(&pp, &monitoring).await?;
    let label = [("rbac.example.com/aggregate-to-monitoring", "true")];
    api.create(&pp, &role("unrelated", &[], vec![rule("delete", "nodes")]))
        .await?;

    api.create(
        &pp,
        &role(
            "pods-reader",
            &label,
            vec![rule("get", "pods"), rule("list", "pods")],
        ),
    )
    .await?;
    wait_rules(
        &api,
        "monitoring",
        vec![rule("get", "pods"), rule("list", "pods")],
        "rules of pods-reader to be aggregated",
    )
    .await;

    // Written as upstream writes it: server-side apply by the controller's field manager.
    let aggregated = api.get("monitoring").await?;
    let applied = aggregated
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .any(|m| {
            m.manager.as_deref() == Some(FIELD_MANAGER) && m.operation.as_deref() == Some("Apply")
        });
    assert!(applied, "rules were not applied by {FIELD_MANAGER}");

    // A second labelled role adds its rules after the first's (name order), once each.
    api.create(
        &pp,
        &role(
            "endpoints-reader",
            &label,
            vec![rule("get", "endpoints"), rule("get", "pods")],
        ),
    )
    .await?;
    wait_rules(
        &api,
        "monitoring",
        vec![
            rule("get", "endpoints"),
            rule("get", "pods"),
            rule("list", "pods"),
        ],
        "rules of both roles, deduplicated",
    )
    .await;

    api.delete("endpoints-reader", &DeleteParams::default())
        .await?;
    api.delete("pods-reader", &DeleteParams::default()).await?;
    wait_rules(&api, "monitoring", vec![], "the rules to go with the roles").await;
    Ok(())
}
