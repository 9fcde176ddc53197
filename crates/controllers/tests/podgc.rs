//! `pod-garbage-collector` against a real API server.

mod common;

use std::time::Duration;

use common::{cluster, start, wait_for, TestResult, CA_PEM};
use k8s_openapi::api::core::v1::{Node, Pod, ServiceAccount};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::Api;
use rkube_controllers::podgc::PodGcConfig;
use rkube_controllers::ControllerContext;
use serde_json::json;

fn ctx(threshold: usize) -> ControllerContext {
    let mut ctx = ControllerContext::new(CA_PEM);
    ctx.pod_gc = PodGcConfig {
        terminated_pod_gc_threshold: threshold,
        gc_check_period: Duration::from_millis(200),
        quarantine: Duration::from_secs(1),
    };
    ctx
}

async fn default_sa(client: &kube::Client) {
    wait_for("serviceaccount default", || {
        let api = Api::<ServiceAccount>::namespaced(client.clone(), "default");
        async move { api.get_opt("default").await.ok()? }
    })
    .await;
}

async fn create_pod(api: &Api<Pod>, name: &str, node: Option<&str>) -> TestResult {
    let mut spec = json!({"containers": [{"name": "c", "image": "busybox"}]});
    if let Some(n) = node {
        spec["nodeName"] = json!(n);
    }
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default"}, "spec": spec}))?;
    api.create(&PostParams::default(), &pod).await?;
    Ok(())
}

async fn names(api: &Api<Pod>) -> Vec<String> {
    let mut v: Vec<String> = api
        .list(&Default::default())
        .await
        .map(|l| {
            l.items
                .into_iter()
                .filter_map(|p| p.metadata.name)
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[tokio::test]
async fn orphaned_pod_on_a_deleted_node_is_removed() -> TestResult {
    let c = cluster().await?;
    let _controllers = start(&c, ctx(0), "serviceaccount,pod-garbage-collector");
    default_sa(&c.client).await;
    let nodes = Api::<Node>::all(c.client.clone());
    for name in ["here", "gone"] {
        let node: Node = serde_json::from_value(json!({"metadata": {"name": name}}))?;
        nodes.create(&PostParams::default(), &node).await?;
    }
    let pods = Api::<Pod>::namespaced(c.client.clone(), "default");
    create_pod(&pods, "on-live-node", Some("here")).await?;
    create_pod(&pods, "orphan", Some("gone")).await?;
    nodes.delete("gone", &DeleteParams::default()).await?;
    wait_for("the orphan to be removed", || {
        let pods = pods.clone();
        async move { pods.get_opt("orphan").await.ok()?.is_none().then_some(()) }
    })
    .await;
    assert_eq!(names(&pods).await, ["on-live-node"]);
    Ok(())
}

#[tokio::test]
async fn terminated_pods_beyond_the_threshold_are_removed_oldest_first() -> TestResult {
    let c = cluster().await?;
    let _controllers = start(&c, ctx(2), "serviceaccount,pod-garbage-collector");
    default_sa(&c.client).await;
    let pods = Api::<Pod>::namespaced(c.client.clone(), "default");
    // Age must decide, not the name (the tie-break within a creation second): the older
    // pods sort after the younger ones by name, and are created a whole second earlier.
    for name in ["p5", "p6"] {
        create_pod(&pods, name, None).await?;
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for name in ["p3", "p4", "pending"] {
        create_pod(&pods, name, None).await?;
    }
    let created = |p: Pod| p.metadata.creation_timestamp.map(|t| t.0);
    assert!(
        created(pods.get("p6").await?) < created(pods.get("p3").await?),
        "p5 and p6 are older by creationTimestamp"
    );
    for name in ["p5", "p6", "p3", "p4"] {
        let status = json!({"status": {"phase": "Succeeded"}});
        pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await?;
    }
    wait_for("two terminated pods to remain", || {
        let pods = pods.clone();
        async move { (names(&pods).await.len() == 3).then_some(()) }
    })
    .await;
    assert_eq!(names(&pods).await, ["p3", "p4", "pending"]);
    Ok(())
}
