//! The `cronjob` controller against a real API server, with a clock the test moves: jobs at
//! the scheduled minute with their name, owner and annotation; Forbid and Replace; completed
//! jobs leaving `status.active`; history limits.

mod common;

use std::sync::{Arc, Mutex};

use common::{cluster, wait_for, Running, TestResult, CA_PEM};
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::events::v1::Event;
use kube::api::{ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use rkube_controllers::cronjob::core::SCHEDULED_TIMESTAMP_ANNOTATION;
use rkube_controllers::cronjob::{run_with_clock, Clock};
use rkube_controllers::{identity, ControllerContext};
use serde_json::json;

/// A clock the test sets; each change wakes the controller.
struct TestClock {
    now: Mutex<Timestamp>,
    tx: tokio::sync::watch::Sender<Timestamp>,
}

impl TestClock {
    fn new(now: Timestamp) -> Arc<Self> {
        Arc::new(TestClock {
            now: Mutex::new(now),
            tx: tokio::sync::watch::channel(now).0,
        })
    }

    fn set(&self, t: Timestamp) {
        *self.now.lock().expect("clock") = t;
        self.tx.send_replace(t);
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().expect("clock")
    }
    fn changes(&self) -> Option<tokio::sync::watch::Receiver<Timestamp>> {
        Some(self.tx.subscribe())
    }
}

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(seconds).expect("in range")
}

async fn jobs(api: &Api<Job>) -> Vec<Job> {
    let mut list = api
        .list(&ListParams::default())
        .await
        .expect("list jobs")
        .items;
    list.sort_by_key(|j| j.name_any());
    list
}

async fn job_names(api: &Api<Job>) -> Vec<String> {
    jobs(api).await.iter().map(|j| j.name_any()).collect()
}

/// Waits until the CronJob's `status.active` names exactly `want`.
async fn active_is(api: &Api<CronJob>, want: &[&str]) -> CronJob {
    wait_for(&format!("status.active to be {want:?}"), || async {
        let cj = api.get("tick").await.ok()?;
        let active: Vec<String> = cj
            .status
            .as_ref()
            .and_then(|s| s.active.as_ref())
            .map(|a| a.iter().filter_map(|r| r.name.clone()).collect())
            .unwrap_or_default();
        (active == want).then_some(cj)
    })
    .await
}

/// Marks a job finished as the Job controller would, through `jobs/status`.
async fn complete(api: &Api<Job>, name: &str, at: Timestamp) -> TestResult {
    let status = json!({"status": {
        "startTime": at.to_string(),
        "completionTime": at.to_string(),
        "conditions": [{"type": "Complete", "status": "True",
                        "lastTransitionTime": at.to_string()}],
    }});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    Ok(())
}

#[tokio::test]
async fn cronjob_runs_on_schedule_with_forbid_replace_completion_and_history() -> TestResult {
    let c = cluster().await?;
    let client = c.client.clone();
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: ObjectMeta {
                    name: Some("cron".into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await?;
    let cjs = Api::<CronJob>::namespaced(client.clone(), "cron");
    let job_api = Api::<Job>::namespaced(client.clone(), "cron");
    let cj: CronJob = serde_json::from_value(json!({
        "metadata": {"name": "tick"},
        "spec": {
            "schedule": "*/1 * * * *",
            "concurrencyPolicy": "Forbid",
            "successfulJobsHistoryLimit": 1,
            "jobTemplate": {
                "metadata": {"labels": {"app": "tick"}},
                "spec": {"template": {"spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "busybox"}]}}}},
        },
    }))?;
    let cj = cjs.create(&PostParams::default(), &cj).await?;
    let created = cj.metadata.creation_timestamp.clone().unwrap().0;

    // The clock starts at creation: nothing is due until the next minute.
    let clock = TestClock::new(created);
    let _running = Running::spawn(run_with_clock(
        c.client_as(identity("cronjob-controller")),
        Arc::new(ControllerContext::new(CA_PEM)),
        clock.clone(),
    ));
    let minute1 = (created.as_second() / 60 + 1) * 60;
    clock.set(at(minute1 + 5));
    let first = format!("tick-{}", minute1 / 60);
    let cj = active_is(&cjs, &[first.as_str()]).await;
    assert_eq!(job_names(&job_api).await, std::slice::from_ref(&first));
    let job = job_api.get(&first).await?;
    let owner = &job.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
        ("CronJob", "tick", cj.uid().unwrap().as_str())
    );
    assert_eq!(
        (owner.controller, owner.block_owner_deletion),
        (Some(true), Some(true))
    );
    assert_eq!(
        job.annotations()[SCHEDULED_TIMESTAMP_ANNOTATION],
        at(minute1).to_string()
    );
    assert_eq!(job.labels()["app"], "tick");
    assert_eq!(
        cj.status.unwrap().last_schedule_time.map(|t| t.0),
        Some(at(minute1))
    );

    // Forbid: the first job is still active at the next minute, so nothing new starts.
    let minute2 = minute1 + 60;
    clock.set(at(minute2 + 5));
    let events = Api::<Event>::namespaced(client.clone(), "cron");
    wait_for("a JobAlreadyActive event", || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items
            .iter()
            .any(|e| e.reason.as_deref() == Some("JobAlreadyActive"))
            .then_some(())
    })
    .await;
    assert_eq!(job_names(&job_api).await, std::slice::from_ref(&first));

    // Replace: the active job is deleted and the minute's job created.
    cjs.patch(
        "tick",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"concurrencyPolicy": "Replace"}})),
    )
    .await?;
    let second = format!("tick-{}", minute2 / 60);
    active_is(&cjs, &[second.as_str()]).await;
    wait_for("the replaced job to be deleted", || async {
        (job_names(&job_api).await == [second.clone()]).then_some(())
    })
    .await;

    // Completion: the job leaves status.active and lastSuccessfulTime is its completion.
    complete(&job_api, &second, at(minute2 + 30)).await?;
    let cj = active_is(&cjs, &[]).await;
    assert_eq!(
        cj.status.unwrap().last_successful_time.map(|t| t.0),
        Some(at(minute2 + 30))
    );

    // History: with a limit of one successful job, the older one goes once a newer finishes.
    let minute3 = minute2 + 60;
    clock.set(at(minute3 + 5));
    let third = format!("tick-{}", minute3 / 60);
    active_is(&cjs, &[third.as_str()]).await;
    assert_eq!(job_names(&job_api).await, [second.clone(), third.clone()]);
    complete(&job_api, &third, at(minute3 + 30)).await?;
    wait_for("the oldest successful job to be deleted", || async {
        (job_names(&job_api).await == [third.clone()]).then_some(())
    })
    .await;
    active_is(&cjs, &[]).await;
    Ok(())
}
