//! The `deployment` controller (with `replicaset`) against a real API server. There is no
//! kubelet: a task in each test plays it, marking every new pod Running and Ready.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{cluster, start, wait_for, TestResult, CA_PEM};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use rkube_controllers::controller_utils::{controller_of, is_pod_active, is_pod_ready};
use rkube_controllers::deployment::util::{
    compute_hash, get_condition, REVISION, REVISION_HISTORY,
};
use rkube_controllers::ControllerContext;
use serde_json::{json, Value};

const NS: &str = "default";

struct Env {
    client: kube::Client,
    deployments: Api<Deployment>,
    sets: Api<ReplicaSet>,
    pods: Api<Pod>,
    _cluster: common::Cluster,
    _controllers: common::Running,
    kubelet: tokio::task::JoinHandle<()>,
}

impl Drop for Env {
    fn drop(&mut self) {
        self.kubelet.abort();
    }
}

/// Plays the kubelet: every active pod that is not Ready becomes Running and Ready.
async fn kubelet(pods: Api<Pod>) {
    loop {
        if let Ok(list) = pods.list(&ListParams::default()).await {
            for p in list
                .items
                .iter()
                .filter(|p| is_pod_active(p) && !is_pod_ready(p))
            {
                let now = k8s_openapi::jiff::Timestamp::now().to_string();
                let status = json!({"status": {"phase": "Running", "conditions": [
                    {"type": "Ready", "status": "True", "lastTransitionTime": now}]}});
                let _ = pods
                    .patch_status(
                        &p.name_any(),
                        &PatchParams::default(),
                        &Patch::Merge(&status),
                    )
                    .await;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn env() -> Result<Env, Box<dyn std::error::Error + Send + Sync>> {
    let c = cluster().await?;
    let controllers = start(
        &c,
        ControllerContext::new(CA_PEM),
        "serviceaccount,replicaset,deployment",
    );
    let sa = Api::<ServiceAccount>::namespaced(c.client.clone(), NS);
    wait_for("serviceaccount default", || {
        let sa = sa.clone();
        async move { sa.get_opt("default").await.ok()? }
    })
    .await;
    let pods = Api::<Pod>::namespaced(c.client.clone(), NS);
    Ok(Env {
        client: c.client.clone(),
        deployments: Api::namespaced(c.client.clone(), NS),
        sets: Api::namespaced(c.client.clone(), NS),
        kubelet: tokio::spawn(kubelet(pods.clone())),
        pods,
        _cluster: c,
        _controllers: controllers,
    })
}

fn deployment(name: &str, replicas: i32, image: &str, strategy: Value) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": replicas,
            "strategy": strategy,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": image}]}
            }
        }
    }))
    .expect("deployment")
}

async fn set_image(e: &Env, name: &str, image: &str) -> TestResult {
    let patch =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}}});
    e.deployments
        .patch(name, &PatchParams::default(), &Patch::Strategic(patch))
        .await?;
    Ok(())
}

/// Waits with a longer deadline than `wait_for`, for rollouts of many pods.
async fn wait_long<T, F, Fut>(what: &str, secs: u64, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the rollout of `image` is complete as `kubectl rollout status` sees it.
async fn rolled_out(e: &Env, name: &str, image: &str, secs: u64) -> Deployment {
    wait_long(&format!("{name} rolled out with {image}"), secs, || async {
        let d = e.deployments.get(name).await.ok()?;
        let spec = d.spec.as_ref()?;
        let s = d.status.as_ref()?;
        let replicas = spec.replicas.unwrap_or(1);
        let image_now = spec.template.spec.as_ref()?.containers[0].image.as_deref();
        let progressing = get_condition(s, "Progressing")?;
        let done = image_now == Some(image)
            && s.observed_generation >= d.metadata.generation
            && s.updated_replicas.unwrap_or(0) == replicas
            && s.replicas.unwrap_or(0) == replicas
            && s.available_replicas.unwrap_or(0) == replicas
            && progressing.reason.as_deref() == Some("NewReplicaSetAvailable");
        done.then_some(d)
    })
    .await
}

async fn owned_sets(e: &Env, d: &Deployment) -> Vec<ReplicaSet> {
    let list = e.sets.list(&ListParams::default()).await.expect("list");
    list.items
        .into_iter()
        .filter(|rs| controller_of(&rs.metadata).map(|r| &r.uid) == d.metadata.uid.as_ref())
        .collect()
}

fn image_of(rs: &ReplicaSet) -> String {
    rs.spec
        .as_ref()
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.spec.as_ref())
        .and_then(|s| s.containers[0].image.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn rolling_update_of_100_replicas_keeps_surge_and_unavailability_bounds() -> TestResult {
    let e = env().await?;
    let strategy = json!({"type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": "20%", "maxUnavailable": 10}});
    e.deployments
        .create(
            &PostParams::default(),
            &deployment("big", 100, "v1", strategy),
        )
        .await?;
    let d = rolled_out(&e, "big", "v1", 60).await;
    assert_eq!(d.status.as_ref().and_then(|s| s.ready_replicas), Some(100));

    // Watch every step of the second rollout.
    let violations = Arc::new(Mutex::new(Vec::<String>::new()));
    let steps = Arc::new(Mutex::new(0usize));
    let watcher = {
        let (sets, pods, violations, steps) = (
            e.sets.clone(),
            e.pods.clone(),
            violations.clone(),
            steps.clone(),
        );
        tokio::spawn(async move {
            loop {
                // Paced, also after a failed list, so the watcher never spins.
                tokio::time::sleep(Duration::from_millis(20)).await;
                let (Ok(rss), Ok(ps)) = (
                    sets.list(&ListParams::default()).await,
                    pods.list(&ListParams::default()).await,
                ) else {
                    continue;
                };
                let total: i32 = rss
                    .items
                    .iter()
                    .map(|rs| rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0))
                    .sum();
                let ready = ps
                    .items
                    .iter()
                    .filter(|p| is_pod_active(p) && is_pod_ready(p))
                    .count();
                let mut v = violations.lock().unwrap();
                if total > 120 {
                    v.push(format!("ReplicaSets sized {total} > 100 + maxSurge 20"));
                }
                if ready < 90 {
                    v.push(format!("{ready} ready pods < 100 - maxUnavailable 10"));
                }
                *steps.lock().unwrap() += 1;
            }
        })
    };
    set_image(&e, "big", "v2").await?;
    let d = rolled_out(&e, "big", "v2", 60).await;
    watcher.abort();
    let v = violations.lock().unwrap().clone();
    assert!(v.is_empty(), "bounds broken: {:?}", &v[..v.len().min(5)]);
    assert!(*steps.lock().unwrap() > 5, "the rollout was observed");
    let sets = owned_sets(&e, &d).await;
    assert_eq!(sets.len(), 2);
    let old = sets.iter().find(|rs| image_of(rs) == "v1").expect("old rs");
    assert_eq!(old.spec.as_ref().and_then(|s| s.replicas), Some(0));
    let events = Api::<k8s_openapi::api::events::v1::Event>::namespaced(e.client.clone(), NS)
        .list(&ListParams::default())
        .await?;
    assert!(events
        .items
        .iter()
        .any(|ev| ev.reason.as_deref() == Some("ScalingReplicaSet")
            && ev
                .note
                .as_deref()
                .is_some_and(|n| n.starts_with("Scaled up replica set big-"))));
    Ok(())
}

#[tokio::test]
async fn rollback_restores_the_old_template_and_reuses_its_replica_set() -> TestResult {
    let e = env().await?;
    e.deployments
        .create(
            &PostParams::default(),
            &deployment("web", 3, "v1", json!({})),
        )
        .await?;
    let d1 = rolled_out(&e, "web", "v1", 20).await;
    let first = owned_sets(&e, &d1).await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].annotations()[REVISION], "1");
    assert!(first[0].labels().contains_key("pod-template-hash"));
    set_image(&e, "web", "v2").await?;
    rolled_out(&e, "web", "v2", 20).await;
    // kubectl rollout undo: the template of revision 1 goes back into the Deployment.
    set_image(&e, "web", "v1").await?;
    let d3 = rolled_out(&e, "web", "v1", 20).await;
    let sets = owned_sets(&e, &d3).await;
    assert_eq!(sets.len(), 2, "no third ReplicaSet");
    let reused = sets
        .iter()
        .find(|rs| rs.uid() == first[0].uid())
        .expect("the first rs");
    assert_eq!(reused.spec.as_ref().and_then(|s| s.replicas), Some(3));
    assert_eq!(reused.annotations()[REVISION], "3");
    assert_eq!(reused.annotations()[REVISION_HISTORY], "1");
    let d = wait_for("deployment revision 3", || async {
        let d = e.deployments.get("web").await.ok()?;
        (d.annotations().get(REVISION).map(String::as_str) == Some("3")).then_some(d)
    })
    .await;
    assert_eq!(d.annotations()[REVISION], "3");
    Ok(())
}

#[tokio::test]
async fn pause_stops_a_rollout_and_resume_continues_it() -> TestResult {
    let e = env().await?;
    e.deployments
        .create(
            &PostParams::default(),
            &deployment("api", 2, "v1", json!({})),
        )
        .await?;
    rolled_out(&e, "api", "v1", 20).await;
    let pause = json!({"spec": {"paused": true}});
    e.deployments
        .patch("api", &PatchParams::default(), &Patch::Merge(pause))
        .await?;
    set_image(&e, "api", "v2").await?;
    let d = wait_for("the paused deployment to be observed", || async {
        let d = e.deployments.get("api").await.ok()?;
        let s = d.status.as_ref()?;
        let paused = get_condition(s, "Progressing")?.reason.as_deref() == Some("DeploymentPaused");
        (paused && s.observed_generation >= d.metadata.generation).then_some(d)
    })
    .await;
    let sets = owned_sets(&e, &d).await;
    assert_eq!(sets.len(), 1, "no new ReplicaSet while paused");
    assert_eq!(image_of(&sets[0]), "v1");

    let resume = json!({"spec": {"paused": false}});
    e.deployments
        .patch("api", &PatchParams::default(), &Patch::Merge(resume))
        .await?;
    let d = rolled_out(&e, "api", "v2", 20).await;
    let sets = owned_sets(&e, &d).await;
    assert_eq!(sets.len(), 2);
    Ok(())
}

#[tokio::test]
async fn recreate_scales_old_to_zero_before_creating_new() -> TestResult {
    let e = env().await?;
    let strategy = json!({"type": "Recreate"});
    e.deployments
        .create(&PostParams::default(), &deployment("db", 3, "v1", strategy))
        .await?;
    let d = rolled_out(&e, "db", "v1", 20).await;
    let old_uid = owned_sets(&e, &d).await[0].uid().unwrap_or_default();
    let violations = Arc::new(Mutex::new(Vec::<String>::new()));
    let watcher = {
        let (sets, pods, violations) = (e.sets.clone(), e.pods.clone(), violations.clone());
        let old_uid = old_uid.clone();
        tokio::spawn(async move {
            loop {
                // Paced, also after a failed list, so the watcher never spins.
                tokio::time::sleep(Duration::from_millis(20)).await;
                let (Ok(rss), Ok(ps)) = (
                    sets.list(&ListParams::default()).await,
                    pods.list(&ListParams::default()).await,
                ) else {
                    continue;
                };
                let new_exists = rss
                    .items
                    .iter()
                    .any(|rs| rs.uid().as_deref() != Some(old_uid.as_str()));
                let old_pods = ps
                    .items
                    .iter()
                    .filter(|p| controller_of(&p.metadata).is_some_and(|r| r.uid == old_uid))
                    .count();
                if new_exists && old_pods > 0 {
                    violations
                        .lock()
                        .unwrap()
                        .push(format!("new ReplicaSet with {old_pods} old pods left"));
                }
            }
        })
    };
    set_image(&e, "db", "v2").await?;
    let d = rolled_out(&e, "db", "v2", 20).await;
    watcher.abort();
    let v = violations.lock().unwrap().clone();
    assert!(v.is_empty(), "{:?}", &v[..v.len().min(3)]);
    let sets = owned_sets(&e, &d).await;
    let old = sets
        .iter()
        .find(|rs| rs.uid().as_deref() == Some(old_uid.as_str()))
        .expect("old rs");
    assert_eq!(old.spec.as_ref().and_then(|s| s.replicas), Some(0));
    Ok(())
}

#[tokio::test]
async fn a_hash_collision_bumps_collision_count_and_picks_another_name() -> TestResult {
    let e = env().await?;
    let mut d = deployment("clash", 1, "v1", json!({}));
    d.spec.as_mut().expect("spec").paused = Some(true);
    let d = e.deployments.create(&PostParams::default(), &d).await?;
    // Someone else's ReplicaSet already has the name the template hashes to.
    let template = &d.spec.as_ref().expect("spec").template;
    let taken = format!("clash-{}", compute_hash(template, None));
    let squatter: ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": taken},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"other": "x"}}, "template": {
            "metadata": {"labels": {"other": "x"}},
            "spec": {"containers": [{"name": "c", "image": "other"}]}}}
    }))?;
    e.sets.create(&PostParams::default(), &squatter).await?;
    let resume = json!({"spec": {"paused": false}});
    e.deployments
        .patch("clash", &PatchParams::default(), &Patch::Merge(resume))
        .await?;
    let d = rolled_out(&e, "clash", "v1", 20).await;
    assert_eq!(d.status.as_ref().and_then(|s| s.collision_count), Some(1));
    let sets = owned_sets(&e, &d).await;
    assert_eq!(sets.len(), 1);
    assert_ne!(sets[0].name_any(), taken);
    assert_eq!(
        sets[0].name_any(),
        format!("clash-{}", compute_hash(template, Some(1)))
    );
    Ok(())
}
