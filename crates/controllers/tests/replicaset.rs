//! The `replicaset` and `replicationcontroller` controllers against a real API server. There
//! is no kubelet: the tests mark pods Running and Ready through `pods/status` themselves.

mod common;

use std::collections::BTreeSet;

use common::{cluster, start, wait_for, TestResult, CA_PEM};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, ReplicationController, ResourceQuota, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use rkube_controllers::controller_utils::{controller_of, is_pod_active};
use rkube_controllers::ControllerContext;
use serde_json::json;

const NS: &str = "default";

async fn ready_namespace(client: &kube::Client) {
    let api = Api::<ServiceAccount>::namespaced(client.clone(), NS);
    wait_for("serviceaccount default", || {
        let api = api.clone();
        async move { api.get_opt("default").await.ok()? }
    })
    .await;
}

fn replica_set(name: &str, replicas: i32, min_ready: i32) -> ReplicaSet {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": replicas,
            "minReadySeconds": min_ready,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}
            }
        }
    }))
    .expect("replica set")
}

/// Active pods the ReplicaSet `owner` controls, by name.
async fn owned_pods(pods: &Api<Pod>, owner_uid: &str) -> Vec<Pod> {
    let list = pods.list(&ListParams::default()).await.expect("list pods");
    list.items
        .into_iter()
        .filter(is_pod_active)
        .filter(|p| controller_of(&p.metadata).is_some_and(|r| r.uid == owner_uid))
        .collect()
}

/// Waits until `owner_uid` controls exactly `n` active pods, and returns them.
async fn wait_owned(pods: &Api<Pod>, owner_uid: &str, n: usize) -> Vec<Pod> {
    wait_for(&format!("{n} pods owned by {owner_uid}"), || async {
        let got = owned_pods(pods, owner_uid).await;
        (got.len() == n).then_some(got)
    })
    .await
}

/// Plays the kubelet: the pod runs and is Ready.
async fn mark_ready(pods: &Api<Pod>, name: &str) -> TestResult {
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let status = json!({"status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": now}]}});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    Ok(())
}

fn names(pods: &[Pod]) -> BTreeSet<String> {
    pods.iter().map(|p| p.name_any()).collect()
}

#[tokio::test]
async fn replica_set_creates_its_pods_and_replaces_a_deleted_one() -> TestResult {
    let c = cluster().await?;
    let _ctl = start(
        &c,
        ControllerContext::new(CA_PEM),
        "serviceaccount,replicaset",
    );
    ready_namespace(&c.client).await;
    let sets = Api::<ReplicaSet>::namespaced(c.client.clone(), NS);
    let pods = Api::<Pod>::namespaced(c.client.clone(), NS);
    let rs = sets
        .create(&PostParams::default(), &replica_set("web", 3, 0))
        .await?;
    let uid = rs.uid().unwrap_or_default();
    let first = wait_owned(&pods, &uid, 3).await;
    for p in &first {
        assert!(p.name_any().starts_with("web-"), "generateName web-");
        assert_eq!(p.labels()["app"], "web");
        let r = controller_of(&p.metadata).expect("controller ref");
        assert_eq!(
            (r.kind.as_str(), r.block_owner_deletion),
            ("ReplicaSet", Some(true))
        );
    }
    let victim = first[0].name_any();
    pods.delete(&victim, &DeleteParams::default()).await?;
    let replaced = wait_for("a replacement pod", || async {
        let got = owned_pods(&pods, &uid).await;
        (got.len() == 3 && !names(&got).contains(&victim)).then_some(got)
    })
    .await;
    assert_eq!(replaced.len(), 3);
    wait_for("status.replicas 3 at the current generation", || async {
        let rs = sets.get("web").await.ok()?;
        let s = rs.status?;
        (s.replicas == 3 && s.observed_generation == rs.metadata.generation).then_some(())
    })
    .await;
    Ok(())
}

#[tokio::test]
async fn scale_down_deletes_unready_pods_first() -> TestResult {
    let c = cluster().await?;
    let _ctl = start(
        &c,
        ControllerContext::new(CA_PEM),
        "serviceaccount,replicaset",
    );
    ready_namespace(&c.client).await;
    let sets = Api::<ReplicaSet>::namespaced(c.client.clone(), NS);
    let pods = Api::<Pod>::namespaced(c.client.clone(), NS);
    let rs = sets
        .create(&PostParams::default(), &replica_set("api", 4, 0))
        .await?;
    let uid = rs.uid().unwrap_or_default();
    let all = wait_owned(&pods, &uid, 4).await;
    let ready: BTreeSet<String> = all.iter().take(2).map(|p| p.name_any()).collect();
    for p in &all {
        if ready.contains(&p.name_any()) {
            mark_ready(&pods, &p.name_any()).await?;
        } else {
            // Running too, so readiness alone decides which go first.
            let status = json!({"status": {"phase": "Running"}});
            pods.patch_status(
                &p.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&status),
            )
            .await?;
        }
    }
    wait_for("readyReplicas 2", || async {
        (sets.get("api").await.ok()?.status?.ready_replicas == Some(2)).then_some(())
    })
    .await;
    sets.patch(
        "api",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 2}})),
    )
    .await?;
    let left = wait_owned(&pods, &uid, 2).await;
    assert_eq!(names(&left), ready, "the unready pods went first");
    Ok(())
}

#[tokio::test]
async fn orphan_is_adopted_and_relabelled_pod_is_released() -> TestResult {
    let c = cluster().await?;
    let _ctl = start(
        &c,
        ControllerContext::new(CA_PEM),
        "serviceaccount,replicaset",
    );
    ready_namespace(&c.client).await;
    let sets = Api::<ReplicaSet>::namespaced(c.client.clone(), NS);
    let pods = Api::<Pod>::namespaced(c.client.clone(), NS);
    // The orphan exists first, so the ReplicaSet adopts it instead of creating a second pod.
    let orphan: Pod = serde_json::from_value(json!({
        "metadata": {"name": "stray", "labels": {"app": "db"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}
    }))?;
    pods.create(&PostParams::default(), &orphan).await?;
    let rs = sets
        .create(&PostParams::default(), &replica_set("db", 2, 0))
        .await?;
    let uid = rs.uid().unwrap_or_default();
    let owned = wait_owned(&pods, &uid, 2).await;
    assert!(names(&owned).contains("stray"), "the orphan was adopted");

    let other = owned
        .iter()
        .find(|p| p.name_any() != "stray")
        .expect("a created pod")
        .name_any();
    pods.patch(
        &other,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "elsewhere"}}})),
    )
    .await?;
    wait_for("the relabelled pod to be released", || async {
        let p = pods.get(&other).await.ok()?;
        controller_of(&p.metadata).is_none().then_some(())
    })
    .await;
    let now = wait_owned(&pods, &uid, 2).await;
    assert!(
        !names(&now).contains(&other),
        "a replacement took its place"
    );
    Ok(())
}

#[tokio::test]
async fn status_reports_ready_and_available_replicas() -> TestResult {
    let c = cluster().await?;
    let _ctl = start(
        &c,
        ControllerContext::new(CA_PEM),
        "serviceaccount,replicaset",
    );
    ready_namespace(&c.client).await;
    let sets = Api::<ReplicaSet>::namespaced(c.client.clone(), NS);
    let pods = Api::<Pod>::namespaced(c.client.clone(), NS);
    let rs = sets
        .create(&PostParams::default(), &replica_set("cache", 2, 1))
        .await?;
    let uid = rs.uid().unwrap_or_default();
    for p in wait_owned(&pods, &uid, 2).await {
        mark_ready(&pods, &p.name_any()).await?;
    }
    let status = wait_for(
        "2 ready and, after minReadySeconds, 2 available",
        || async {
            let s = sets.get("cache").await.ok()?.status?;
            (s.ready_replicas == Some(2) && s.available_replicas == Some(2)).then_some(s)
        },
    )
    .await;
    assert_eq!(status.replicas, 2);
    assert_eq!(status.fully_labeled_replicas, Some(2));
    Ok(())
}

#[tokio::test]
async fn replication_controller_keeps_its_replicas() -> TestResult {
    let c = cluster().await?;
    let _ctl = start(
        &c,
        ControllerContext::new(CA_PEM),
        "serviceaccount,replicationcontroller",
    );
    ready_namespace(&c.client).await;
    let rcs = Api::<ReplicationController>::namespaced(c.client.clone(), NS);
    let pods = Api::<Pod>::namespaced(c.client.clone(), NS);
    let rc: ReplicationController = serde_json::from_value(json!({
        "metadata": {"name": "legacy"},
        "spec": {"replicas": 2, "selector": {"app": "legacy"}, "template": {
            "metadata": {"labels": {"app": "legacy"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}
    }))?;
    let rc = rcs.create(&PostParams::default(), &rc).await?;
    let uid = rc.uid().unwrap_or_default();
    let owned = wait_owned(&pods, &uid, 2).await;
    let r = controller_of(&owned[0].metadata).expect("controller ref");
    assert_eq!(
        (r.api_version.as_str(), r.kind.as_str()),
        ("v1", "ReplicationController")
    );
    wait_for("rc status.replicas 2", || async {
        (rcs.get("legacy").await.ok()?.status?.replicas == 2).then_some(())
    })
    .await;
    // A deleted pod is replaced.
    let victim = owned[0].name_any();
    pods.delete(&victim, &DeleteParams::default()).await?;
    let replaced = wait_for("a replacement pod for the rc", || async {
        let got = owned_pods(&pods, &uid).await;
        (got.len() == 2 && !names(&got).contains(&victim)).then_some(got)
    })
    .await;
    assert_eq!(replaced.len(), 2);
    Ok(())
}

#[tokio::test]
async fn create_errors_set_replica_failure_until_creates_succeed() -> TestResult {
    let c = cluster().await?;
    let _ctl = start(
        &c,
        ControllerContext::new(CA_PEM),
        "serviceaccount,resourcequota,replicaset",
    );
    ready_namespace(&c.client).await;
    let quotas = Api::<ResourceQuota>::namespaced(c.client.clone(), NS);
    let quota: ResourceQuota = serde_json::from_value(json!({
        "metadata": {"name": "q"}, "spec": {"hard": {"pods": "1"}}
    }))?;
    quotas.create(&PostParams::default(), &quota).await?;
    wait_for("the quota to be counted", || async {
        quotas.get("q").await.ok()?.status?.used.map(|_| ())
    })
    .await;
    let sets = Api::<ReplicaSet>::namespaced(c.client.clone(), NS);
    sets.create(&PostParams::default(), &replica_set("capped", 3, 0))
        .await?;
    let cond = wait_for("ReplicaFailure on the ReplicaSet", || async {
        let s = sets.get("capped").await.ok()?.status?;
        let c = s
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "ReplicaFailure")?;
        (s.replicas == 1).then_some(c)
    })
    .await;
    assert_eq!(cond.status, "True");
    assert_eq!(cond.reason.as_deref(), Some("FailedCreate"));
    assert!(cond
        .message
        .as_deref()
        .unwrap_or_default()
        .contains("exceeded quota"));
    let events = Api::<Event>::namespaced(c.client.clone(), NS);
    wait_for("a FailedCreate event", || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items
            .iter()
            .any(|e| e.reason.as_deref() == Some("FailedCreate"))
            .then_some(())
    })
    .await;

    quotas
        .patch(
            "q",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"hard": {"pods": "10"}}})),
        )
        .await?;
    wait_for("3 replicas and no ReplicaFailure", || async {
        let s = sets.get("capped").await.ok()?.status?;
        (s.replicas == 3 && s.conditions.is_none()).then_some(())
    })
    .await;
    Ok(())
}
