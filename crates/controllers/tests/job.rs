//! The `job` controller against a real API server; the test plays the kubelet, finishing
//! pods through `pods/status` (with terminated container exit codes where a policy reads
//! them). Covers parallelism and completions, Indexed Jobs, backoffLimit, podFailurePolicy,
//! suspend/resume, and counting every pod once through the tracking finalizer.

mod common;

use common::{cluster, start, wait_for, TestResult, CA_PEM};
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use rkube_controllers::ControllerContext;
use serde_json::{json, Value};

const FINALIZER: &str = "batch.kubernetes.io/job-tracking";

/// A namespace with its `default` ServiceAccount (made by the serviceaccount controller).
async fn namespace(client: &kube::Client, name: &str) -> TestResult {
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: ObjectMeta {
                    name: Some(name.into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await?;
    let sas = Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(client.clone(), name);
    wait_for("the default service account", || async {
        sas.get_opt("default").await.ok().flatten()
    })
    .await;
    Ok(())
}

fn job(name: &str, spec: Value) -> Result<Job, serde_json::Error> {
    let mut spec = spec;
    spec["template"] = json!({"spec": {
        "restartPolicy": "Never",
        "containers": [{"name": "c", "image": "busybox"}]}});
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec}))
}

async fn pods_of(api: &Api<Pod>, job: &str) -> Vec<Pod> {
    let lp = ListParams::default().labels(&format!("batch.kubernetes.io/job-name={job}"));
    let mut pods = api.list(&lp).await.map(|l| l.items).unwrap_or_default();
    pods.sort_by_key(|p| p.metadata.creation_timestamp.clone().map(|t| t.0));
    pods
}

fn phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or_default()
}

fn running(p: &Pod) -> bool {
    !matches!(phase(p), "Succeeded" | "Failed") && p.metadata.deletion_timestamp.is_none()
}

/// Waits until the job has exactly `n` running pods, and returns them.
async fn running_pods(api: &Api<Pod>, job: &str, n: usize) -> Vec<Pod> {
    wait_for(&format!("{n} running pods of {job}"), || async {
        let pods: Vec<Pod> = pods_of(api, job)
            .await
            .into_iter()
            .filter(running)
            .collect();
        (pods.len() == n).then_some(pods)
    })
    .await
}

/// Finishes a pod as its kubelet would: the phase and the container's exit code.
async fn finish(api: &Api<Pod>, name: &str, exit_code: i32) -> TestResult {
    // Finished long enough ago that the Job's failure backoff has passed.
    let at = Timestamp::now() - jiff::SignedDuration::from_secs(3600);
    let phase = if exit_code == 0 {
        "Succeeded"
    } else {
        "Failed"
    };
    let status = json!({"status": {
        "phase": phase,
        "containerStatuses": [{
            "name": "c", "image": "busybox", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": exit_code,
                "startedAt": at.to_string(), "finishedAt": at.to_string()}},
        }],
    }});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    Ok(())
}

fn cond<'a>(job: &'a Job, type_: &str) -> Option<&'a k8s_openapi::api::batch::v1::JobCondition> {
    job.status
        .as_ref()?
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == type_ && c.status == "True")
}

async fn wait_condition(api: &Api<Job>, name: &str, type_: &str) -> Job {
    wait_for(&format!("job {name} {type_}"), || async {
        let j = api.get(name).await.ok()?;
        cond(&j, type_).is_some().then_some(j)
    })
    .await
}

struct Env {
    _c: common::Cluster,
    _running: common::Running,
    jobs: Api<Job>,
    pods: Api<Pod>,
}

async fn env(ns: &str) -> Result<Env, Box<dyn std::error::Error + Send + Sync>> {
    let c = cluster().await?;
    let client = c.client.clone();
    let running = start(&c, ControllerContext::new(CA_PEM), "job,serviceaccount");
    namespace(&client, ns).await?;
    Ok(Env {
        jobs: Api::namespaced(client.clone(), ns),
        pods: Api::namespaced(client.clone(), ns),
        _c: c,
        _running: running,
    })
}

fn no_finalizers(pods: &[Pod]) -> bool {
    pods.iter()
        .all(|p| !p.finalizers().iter().any(|f| f == FINALIZER))
}

#[tokio::test]
async fn three_completions_with_parallelism_two_run_two_then_one_and_complete() -> TestResult {
    let e = env("batch").await?;
    let j = job("three", json!({"completions": 3, "parallelism": 2}))?;
    e.jobs.create(&PostParams::default(), &j).await?;
    let first = running_pods(&e.pods, "three", 2).await;
    for p in &first {
        assert!(
            p.finalizers().iter().any(|f| f == FINALIZER),
            "created with the tracking finalizer"
        );
        let owner = &p.owner_references()[0];
        assert_eq!((owner.kind.as_str(), owner.controller), ("Job", Some(true)));
    }
    let j = wait_for("status.active 2", || async {
        let j = e.jobs.get("three").await.ok()?;
        (j.status.as_ref()?.active == Some(2)).then_some(j)
    })
    .await;
    assert!(j
        .status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .is_some());
    for p in &first {
        finish(&e.pods, &p.name_any(), 0).await?;
    }
    let last = running_pods(&e.pods, "three", 1).await;
    assert_eq!(
        pods_of(&e.pods, "three").await.len(),
        3,
        "one more pod for the last completion"
    );
    finish(&e.pods, &last[0].name_any(), 0).await?;
    let done = wait_condition(&e.jobs, "three", "Complete").await;
    let st = done.status.clone().unwrap_or_default();
    assert_eq!(st.succeeded, Some(3));
    assert!(st.completion_time.is_some());
    assert_eq!(st.active, Some(0));
    assert!(
        cond(&done, "SuccessCriteriaMet").is_some(),
        "the interim condition came first"
    );
    assert_eq!(
        cond(&done, "Complete").and_then(|c| c.reason.as_deref()),
        Some("CompletionsReached")
    );
    let pods = pods_of(&e.pods, "three").await;
    assert!(
        no_finalizers(&pods),
        "every finished pod lost its finalizer"
    );
    Ok(())
}

#[tokio::test]
async fn indexed_job_creates_each_index_once_and_completes_with_completed_indexes() -> TestResult {
    let e = env("indexed").await?;
    let j = job(
        "ix",
        json!({"completions": 3, "parallelism": 3, "completionMode": "Indexed"}),
    )?;
    e.jobs.create(&PostParams::default(), &j).await?;
    let pods = running_pods(&e.pods, "ix", 3).await;
    let mut indexes: Vec<String> = pods
        .iter()
        .map(|p| p.annotations()["batch.kubernetes.io/job-completion-index"].clone())
        .collect();
    indexes.sort();
    assert_eq!(indexes, ["0", "1", "2"]);
    for p in &pods {
        let ix = &p.annotations()["batch.kubernetes.io/job-completion-index"];
        assert_eq!(&p.labels()["batch.kubernetes.io/job-completion-index"], ix);
        assert!(p.name_any().starts_with(&format!("ix-{ix}-")));
        let spec = p.spec.clone().unwrap_or_default();
        assert_eq!(spec.hostname.as_deref(), Some(format!("ix-{ix}").as_str()));
        let env = spec.containers[0].env.clone().unwrap_or_default();
        assert!(
            env.iter().any(|v| v.name == "JOB_COMPLETION_INDEX"),
            "env var in {}",
            p.name_any()
        );
    }
    for p in &pods {
        finish(&e.pods, &p.name_any(), 0).await?;
    }
    let done = wait_condition(&e.jobs, "ix", "Complete").await;
    let st = done.status.unwrap_or_default();
    assert_eq!(st.completed_indexes.as_deref(), Some("0-2"));
    assert_eq!(st.succeeded, Some(3));
    Ok(())
}

#[tokio::test]
async fn failures_beyond_backoff_limit_fail_the_job() -> TestResult {
    let e = env("backoff").await?;
    let j = job("flaky", json!({"backoffLimit": 1}))?;
    e.jobs.create(&PostParams::default(), &j).await?;
    let first = running_pods(&e.pods, "flaky", 1).await;
    finish(&e.pods, &first[0].name_any(), 1).await?;
    // One failure is within the limit: the pod is replaced.
    let second = wait_for("a replacement pod", || async {
        let pods: Vec<Pod> = pods_of(&e.pods, "flaky")
            .await
            .into_iter()
            .filter(running)
            .collect();
        pods.into_iter()
            .find(|p| p.name_any() != first[0].name_any())
    })
    .await;
    finish(&e.pods, &second.name_any(), 1).await?;
    let failed = wait_condition(&e.jobs, "flaky", "Failed").await;
    let c = cond(&failed, "Failed").cloned().unwrap_or_default();
    assert_eq!(c.reason.as_deref(), Some("BackoffLimitExceeded"));
    assert_eq!(
        c.message.as_deref(),
        Some("Job has reached the specified backoff limit")
    );
    assert!(cond(&failed, "FailureTarget").is_some());
    assert_eq!(failed.status.as_ref().and_then(|s| s.failed), Some(2));
    assert!(no_finalizers(&pods_of(&e.pods, "flaky").await));
    Ok(())
}

#[tokio::test]
async fn pod_failure_policy_fail_job_on_exit_code_fails_at_once() -> TestResult {
    let e = env("policy").await?;
    let j = job(
        "strict",
        json!({"backoffLimit": 6, "podFailurePolicy": {"rules": [
            {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]}}),
    )?;
    e.jobs.create(&PostParams::default(), &j).await?;
    let pods = running_pods(&e.pods, "strict", 1).await;
    finish(&e.pods, &pods[0].name_any(), 42).await?;
    let failed = wait_condition(&e.jobs, "strict", "Failed").await;
    let c = cond(&failed, "Failed").cloned().unwrap_or_default();
    assert_eq!(c.reason.as_deref(), Some("PodFailurePolicy"));
    let msg = c.message.unwrap_or_default();
    assert!(
        msg.contains("failed with exit code 42 matching FailJob rule at index 0"),
        "{msg}"
    );
    assert_eq!(pods_of(&e.pods, "strict").await.len(), 1, "no replacement");
    Ok(())
}

#[tokio::test]
async fn suspend_deletes_active_pods_and_resume_recreates_them() -> TestResult {
    let e = env("suspend").await?;
    let j = job("pausable", json!({"completions": 4, "parallelism": 2}))?;
    e.jobs.create(&PostParams::default(), &j).await?;
    let before = running_pods(&e.pods, "pausable", 2).await;
    let pp = PatchParams::default();
    e.jobs
        .patch(
            "pausable",
            &pp,
            &Patch::Merge(json!({"spec": {"suspend": true}})),
        )
        .await?;
    wait_for("the suspended job's pods to be gone", || async {
        pods_of(&e.pods, "pausable").await.is_empty().then_some(())
    })
    .await;
    let j = wait_condition(&e.jobs, "pausable", "Suspended").await;
    assert_eq!(
        cond(&j, "Suspended").and_then(|c| c.reason.as_deref()),
        Some("JobSuspended")
    );
    let st = j.status.clone().unwrap_or_default();
    assert_eq!(
        (st.active, st.failed.unwrap_or(0)),
        (Some(0), 0),
        "deleted pods are not failures"
    );
    e.jobs
        .patch(
            "pausable",
            &pp,
            &Patch::Merge(json!({"spec": {"suspend": false}})),
        )
        .await?;
    let after = running_pods(&e.pods, "pausable", 2).await;
    assert!(
        after
            .iter()
            .all(|p| before.iter().all(|b| b.uid() != p.uid())),
        "new pods"
    );
    let j = wait_for("the Suspended condition to turn False", || async {
        let j = e.jobs.get("pausable").await.ok()?;
        let c = j
            .status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == "Suspended")?
            .clone();
        (c.status == "False").then_some(c)
    })
    .await;
    assert_eq!(j.reason.as_deref(), Some("JobResumed"));
    Ok(())
}

#[tokio::test]
async fn no_pod_is_counted_twice_even_when_deleted_right_after_finishing() -> TestResult {
    let e = env("once").await?;
    let j = job("count", json!({"completions": 4, "parallelism": 4}))?;
    e.jobs.create(&PostParams::default(), &j).await?;
    let pods = running_pods(&e.pods, "count", 4).await;
    for p in &pods {
        finish(&e.pods, &p.name_any(), 0).await?;
    }
    // Deleting a finished pod at once: its finalizer keeps it until it is counted.
    e.pods
        .delete(&pods[0].name_any(), &DeleteParams::default())
        .await?;
    let done = wait_condition(&e.jobs, "count", "Complete").await;
    let st = done.status.unwrap_or_default();
    assert_eq!(st.succeeded, Some(4));
    assert_eq!(st.failed.unwrap_or(0), 0);
    let unc = st.uncounted_terminated_pods.unwrap_or_default();
    assert!(
        unc.succeeded.unwrap_or_default().is_empty() && unc.failed.unwrap_or_default().is_empty()
    );
    let left = pods_of(&e.pods, "count").await;
    assert_eq!(
        left.len(),
        3,
        "the deleted pod went once its finalizer was removed"
    );
    assert!(no_finalizers(&left));
    assert_eq!(left.iter().filter(|p| phase(p) == "Succeeded").count(), 3);
    Ok(())
}

#[tokio::test]
async fn a_job_recreated_under_the_same_name_starts_afresh() -> TestResult {
    let e = env("recreate").await?;
    let pp = PostParams::default();
    let spec = json!({"completions": 1, "parallelism": 1, "backoffLimit": 0});
    e.jobs.create(&pp, &job("again", spec.clone())?).await?;
    let first = running_pods(&e.pods, "again", 1).await;
    finish(&e.pods, &first[0].name_any(), 1).await?;
    wait_condition(&e.jobs, "again", "Failed").await;

    // No garbage collector runs here: the old pod stays, owned by a Job that is gone.
    e.jobs.delete("again", &DeleteParams::background()).await?;
    wait_for("the first job to go", || async {
        e.jobs.get_opt("again").await.ok()?.is_none().then_some(())
    })
    .await;
    let second = e.jobs.create(&pp, &job("again", spec)?).await?;
    let uid = second.uid().unwrap_or_default();
    let owned_by_second = |p: &Pod| {
        p.owner_references()
            .iter()
            .any(|r| r.controller == Some(true) && r.uid == uid)
    };
    let pod = wait_for("a pod of the second job", || async {
        let pods = pods_of(&e.pods, "again").await;
        pods.into_iter().find(|p| owned_by_second(p) && running(p))
    })
    .await;
    finish(&e.pods, &pod.name_any(), 0).await?;
    let done = wait_condition(&e.jobs, "again", "Complete").await;
    let status = done.status.unwrap_or_default();
    assert_eq!(status.succeeded, Some(1));
    assert_eq!(
        status.failed.unwrap_or(0),
        0,
        "the first job's failure is not counted"
    );
    let of_second = pods_of(&e.pods, "again")
        .await
        .into_iter()
        .filter(|p| owned_by_second(p))
        .count();
    assert_eq!(of_second, 1, "exactly one pod made for the second job");
    Ok(())
}
