//! The eviction subresource honours PodDisruptionBudgets: the test plays the disruption
//! controller (writes the budgets' status) and the kubelet (makes pods Running and Ready).

mod common;

use common::{pod, TestServer};
use http::StatusCode;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{json, Value};

const NS: &str = "default";

/// A Running pod labelled app=web, Ready or not.
async fn running_pod(t: &TestServer, name: &str, ready: bool) {
    let api: Api<Pod> = Api::namespaced(t.client.clone(), NS);
    let p: Pod = serde_json::from_value(pod(name, &[("app", "web")])).expect("pod");
    api.create(&PostParams::default(), &p)
        .await
        .expect("create pod");
    let status = json!({"status": {"phase": "Running", "conditions": [{"type": "Ready",
        "status": if ready { "True" } else { "False" }}]}});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("pod status");
}

/// A budget over app=web with this status (observedGeneration 1 unless the status says).
async fn budget(t: &TestServer, name: &str, status: Value) {
    let api: Api<PodDisruptionBudget> = Api::namespaced(t.client.clone(), NS);
    let b: PodDisruptionBudget = serde_json::from_value(json!({"metadata": {"name": name},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}}))
    .expect("pdb");
    api.create(&PostParams::default(), &b)
        .await
        .expect("create pdb");
    let mut status = status;
    if status.get("observedGeneration").is_none() {
        status["observedGeneration"] = json!(1);
    }
    status["expectedPods"] = json!(2);
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(&json!({"status": status})),
    )
    .await
    .expect("pdb status");
}

async fn evict(t: &TestServer, name: &str) -> common::Raw {
    let ev = json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name}});
    t.post_json(
        &format!("/api/v1/namespaces/{NS}/pods/{name}/eviction"),
        &ev,
    )
    .await
}

/// Whether the pod is gone or being deleted.
async fn evicted(t: &TestServer, name: &str) -> bool {
    let api: Api<Pod> = Api::namespaced(t.client.clone(), NS);
    match api.get_opt(name).await.expect("get pod") {
        None => true,
        Some(p) => p.metadata.deletion_timestamp.is_some(),
    }
}

#[tokio::test]
async fn eviction_without_a_budget_deletes_the_pod() {
    let t = TestServer::start().await;
    running_pod(&t, "p", true).await;
    let r = evict(&t, "p").await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert!(evicted(&t, "p").await);
}

#[tokio::test]
async fn a_spent_budget_refuses_with_429_and_its_cause() {
    let t = TestServer::start().await;
    running_pod(&t, "p", true).await;
    budget(
        &t,
        "b",
        json!({"disruptionsAllowed": 0, "currentHealthy": 1, "desiredHealthy": 1}),
    )
    .await;
    let r = evict(&t, "p").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let s = r.json();
    assert_eq!(s["reason"], "TooManyRequests");
    assert_eq!(
        s["message"],
        "Cannot evict pod as it would violate the pod's disruption budget."
    );
    assert_eq!(s["details"]["causes"][0]["reason"], "DisruptionBudget");
    assert_eq!(
        s["details"]["causes"][0]["message"],
        "The disruption budget b needs 1 healthy pods and has 1 currently"
    );
    assert!(!evicted(&t, "p").await);
}

#[tokio::test]
async fn an_allowed_disruption_is_spent_and_recorded() {
    let t = TestServer::start().await;
    running_pod(&t, "p", true).await;
    running_pod(&t, "q", true).await;
    budget(
        &t,
        "b",
        json!({"disruptionsAllowed": 1, "currentHealthy": 2, "desiredHealthy": 1}),
    )
    .await;
    let r = evict(&t, "p").await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert!(evicted(&t, "p").await);
    let api: Api<PodDisruptionBudget> = Api::namespaced(t.client.clone(), NS);
    let b = api.get("b").await.expect("pdb");
    let s = b.status.expect("status");
    assert_eq!(s.disruptions_allowed, 0);
    assert!(s.disrupted_pods.unwrap_or_default().contains_key("p"));
    let cond = s.conditions.unwrap_or_default();
    assert_eq!(
        cond.iter()
            .find(|c| c.type_ == "DisruptionAllowed")
            .map(|c| c.reason.as_str()),
        Some("InsufficientPods")
    );
    // The budget is spent now: the next eviction is refused.
    let r = evict(&t, "q").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(!evicted(&t, "q").await);
}

#[tokio::test]
async fn a_dry_run_eviction_spends_nothing() {
    let t = TestServer::start().await;
    running_pod(&t, "p", true).await;
    budget(
        &t,
        "b",
        json!({"disruptionsAllowed": 1, "currentHealthy": 2, "desiredHealthy": 1}),
    )
    .await;
    let ev = json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "p"},
        "deleteOptions": {"dryRun": ["All"]}});
    let r = t
        .post_json(&format!("/api/v1/namespaces/{NS}/pods/p/eviction"), &ev)
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert!(!evicted(&t, "p").await);
    let api: Api<PodDisruptionBudget> = Api::namespaced(t.client.clone(), NS);
    let s = api.get("b").await.expect("pdb").status.expect("status");
    assert_eq!(s.disruptions_allowed, 1);
    assert!(s.disrupted_pods.unwrap_or_default().is_empty());
}

#[tokio::test]
async fn a_budget_with_a_stale_status_is_429() {
    let t = TestServer::start().await;
    running_pod(&t, "p", true).await;
    budget(
        &t,
        "b",
        json!({"disruptionsAllowed": 1, "currentHealthy": 2, "desiredHealthy": 1,
            "observedGeneration": 0}),
    )
    .await;
    let r = evict(&t, "p").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        r.json()["details"]["causes"][0]["message"],
        "The disruption budget b is still being processed by the server."
    );
    assert!(!evicted(&t, "p").await);
}

#[tokio::test]
async fn two_budgets_over_one_pod_are_500() {
    let t = TestServer::start().await;
    running_pod(&t, "p", true).await;
    let ok = json!({"disruptionsAllowed": 1, "currentHealthy": 2, "desiredHealthy": 1});
    budget(&t, "a", ok.clone()).await;
    budget(&t, "b", ok).await;
    let r = evict(&t, "p").await;
    assert_eq!(
        r.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(
        r.json()["message"],
        "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
    );
    assert!(!evicted(&t, "p").await);
}

#[tokio::test]
async fn an_unready_pod_goes_without_spending_a_met_budget() {
    let t = TestServer::start().await;
    running_pod(&t, "p", false).await;
    budget(
        &t,
        "b",
        json!({"disruptionsAllowed": 0, "currentHealthy": 1, "desiredHealthy": 1}),
    )
    .await;
    let r = evict(&t, "p").await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert!(evicted(&t, "p").await);
    let api: Api<PodDisruptionBudget> = Api::namespaced(t.client.clone(), NS);
    let s = api.get("b").await.expect("pdb").status.expect("status");
    assert_eq!(s.disruptions_allowed, 0);
    assert!(s.disrupted_pods.unwrap_or_default().is_empty());
}
