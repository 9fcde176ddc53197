//! Foreground deletion of a Deployment, with the `deployment`, `replicaset` and
//! `garbage-collector` controllers against a real API server: its ReplicaSet and pods are
//! removed first, and the Deployment goes last.

mod common;

use std::time::Duration;

use common::{cluster, start, wait_for, TestResult, CA_PEM};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::Api;
use rkube_controllers::ControllerContext;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreground_deletion_of_a_deployment_removes_its_replica_sets_and_pods_first() -> TestResult
{
    let c = cluster().await?;
    let _controllers = start(
        &c,
        ControllerContext::new(CA_PEM),
        "serviceaccount,replicaset,deployment,garbage-collector",
    );
    let accounts = Api::<ServiceAccount>::namespaced(c.client.clone(), "default");
    wait_for("serviceaccount default", || {
        let a = accounts.clone();
        async move { a.get_opt("default").await.ok()? }
    })
    .await;
    let deployments = Api::<Deployment>::namespaced(c.client.clone(), "default");
    let sets = Api::<ReplicaSet>::namespaced(c.client.clone(), "default");
    let pods = Api::<Pod>::namespaced(c.client.clone(), "default");
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}
            }
        }
    }))?;
    deployments.create(&PostParams::default(), &d).await?;
    wait_for("three pods of the deployment", || {
        let pods = pods.clone();
        async move {
            let l = pods.list(&ListParams::default()).await.ok()?;
            (l.items.len() == 3).then_some(())
        }
    })
    .await;

    deployments
        .delete("web", &DeleteParams::foreground())
        .await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut saw_deployment_waiting = false;
    loop {
        // The Deployment is read first: if it is gone, nothing it owned may be left after.
        let deployment = deployments.get_opt("web").await?;
        let left_sets = sets.list(&ListParams::default()).await?.items.len();
        let left_pods = pods.list(&ListParams::default()).await?.items.len();
        match deployment {
            None => {
                assert_eq!(
                    (left_sets, left_pods),
                    (0, 0),
                    "the Deployment went before its ReplicaSets and pods"
                );
                break;
            }
            Some(d) => {
                if left_sets + left_pods > 0 {
                    assert!(
                        d.metadata.deletion_timestamp.is_some(),
                        "a Deployment deleted in the foreground is marked while it waits"
                    );
                    assert!(d
                        .metadata
                        .finalizers
                        .iter()
                        .flatten()
                        .any(|f| f == "foregroundDeletion"));
                    saw_deployment_waiting = true;
                }
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "foreground deletion did not finish within 30 s ({left_sets} sets, {left_pods} pods left)"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        saw_deployment_waiting,
        "the Deployment was never seen waiting for its dependents"
    );
    Ok(())
}
