//! The disruption controller against a real API server. The test plays the kubelet (pods
//! become Running and Ready through `pods/status`) and the ReplicaSet controller (it creates
//! the ReplicaSet's pods itself).

mod common;

use common::{cluster, start, wait_for, TestResult, CA_PEM};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use kube::api::{Patch, PatchParams, PostParams};
use kube::Api;
use rkube_controllers::ControllerContext;
use serde_json::{json, Value};

const NS: &str = "default";

async fn default_sa(client: &kube::Client) {
    let sas = Api::<ServiceAccount>::namespaced(client.clone(), NS);
    wait_for("the default service account", || {
        let sas = sas.clone();
        async move { sas.get_opt("default").await.ok()? }
    })
    .await;
}

/// A pod labelled app=web with these owners, Running and Ready.
async fn ready_pod(client: &kube::Client, name: &str, owners: Value) -> TestResult {
    let api = Api::<Pod>::namespaced(client.clone(), NS);
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": "web"}, "ownerReferences": owners},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}}))?;
    api.create(&PostParams::default(), &pod).await?;
    set_ready(client, name, true).await
}

async fn set_ready(client: &kube::Client, name: &str, ready: bool) -> TestResult {
    let status = json!({"status": {"phase": "Running", "conditions": [{"type": "Ready",
        "status": if ready { "True" } else { "False" },
        "lastTransitionTime": "2024-01-01T00:00:00Z"}]}});
    Api::<Pod>::namespaced(client.clone(), NS)
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    Ok(())
}

async fn create_pdb(client: &kube::Client, name: &str, spec: Value) -> TestResult {
    let mut spec = spec;
    spec["selector"] = json!({"matchLabels": {"app": "web"}});
    let pdb: PodDisruptionBudget =
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec}))?;
    Api::<PodDisruptionBudget>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &pdb)
        .await?;
    Ok(())
}

/// (expectedPods, currentHealthy, desiredHealthy, disruptionsAllowed, condition status,
/// condition reason)
type Shape = (i32, i32, i32, i32, String, String);

fn shape(s: &PodDisruptionBudgetStatus) -> Option<Shape> {
    let c = s
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "DisruptionAllowed")?;
    Some((
        s.expected_pods,
        s.current_healthy,
        s.desired_healthy,
        s.disruptions_allowed,
        c.status.clone(),
        c.reason.clone(),
    ))
}

async fn wait_status(client: &kube::Client, name: &str, want: Shape) -> PodDisruptionBudgetStatus {
    let api = Api::<PodDisruptionBudget>::namespaced(client.clone(), NS);
    wait_for(&format!("the status of {name} to be {want:?}"), || {
        let api = api.clone();
        let want = want.clone();
        async move {
            let pdb = api.get_opt(name).await.ok()??;
            let s = pdb.status?;
            (shape(&s) == Some(want) && s.observed_generation == pdb.metadata.generation)
                .then_some(s)
        }
    })
    .await
}

fn want(e: i32, c: i32, d: i32, a: i32, status: &str, reason: &str) -> Shape {
    (e, c, d, a, status.into(), reason.into())
}

#[tokio::test]
async fn min_available_counts_ready_pods_and_follows_readiness() -> TestResult {
    let c = cluster().await?;
    let _ctl = start(
        &c,
        ControllerContext::new(CA_PEM),
        "serviceaccount,disruption",
    );
    default_sa(&c.client).await;
    for name in ["a", "b", "c"] {
        ready_pod(&c.client, name, json!([])).await?;
    }
    create_pdb(&c.client, "web", json!({"minAvailable": 2})).await?;
    wait_status(&c.client, "web", want(3, 3, 2, 1, "True", "SufficientPods")).await;
    set_ready(&c.client, "b", false).await?;
    wait_status(
        &c.client,
        "web",
        want(3, 2, 2, 0, "False", "InsufficientPods"),
    )
    .await;
    Ok(())
}

#[tokio::test]
async fn max_unavailable_takes_the_replica_sets_scale() -> TestResult {
    let c = cluster().await?;
    let _ctl = start(
        &c,
        ControllerContext::new(CA_PEM),
        "serviceaccount,disruption",
    );
    default_sa(&c.client).await;
    let rs: ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}))?;
    let rs = Api::<ReplicaSet>::namespaced(c.client.clone(), NS)
        .create(&PostParams::default(), &rs)
        .await?;
    let owners = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
        "uid": rs.metadata.uid.clone().unwrap_or_default(), "controller": true}]);
    // Only two of the three replicas exist: the scale, not the pods, is expected.
    for name in ["web-a", "web-b"] {
        ready_pod(&c.client, name, owners.clone()).await?;
    }
    create_pdb(&c.client, "web", json!({"maxUnavailable": 1})).await?;
    wait_status(
        &c.client,
        "web",
        want(3, 2, 2, 0, "False", "InsufficientPods"),
    )
    .await;
    ready_pod(&c.client, "web-c", owners).await?;
    wait_status(&c.client, "web", want(3, 3, 2, 1, "True", "SufficientPods")).await;
    Ok(())
}

#[tokio::test]
async fn a_pod_whose_controller_is_missing_fails_safe() -> TestResult {
    let c = cluster().await?;
    let _ctl = start(
        &c,
        ControllerContext::new(CA_PEM),
        "serviceaccount,disruption",
    );
    default_sa(&c.client).await;
    let owners = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "gone",
        "uid": "no-such-uid", "controller": true}]);
    ready_pod(&c.client, "p", owners).await?;
    create_pdb(&c.client, "web", json!({"minAvailable": "50%"})).await?;
    let api = Api::<PodDisruptionBudget>::namespaced(c.client.clone(), NS);
    let cond = wait_for("the SyncFailed condition", || {
        let api = api.clone();
        async move {
            let s = api.get_opt("web").await.ok()??.status?;
            s.conditions
                .into_iter()
                .flatten()
                .find(|c| c.type_ == "DisruptionAllowed" && c.reason == "SyncFailed")
        }
    })
    .await;
    assert_eq!(cond.status, "False");
    assert_eq!(cond.message, "found no controllers for pod \"p\"");
    Ok(())
}
