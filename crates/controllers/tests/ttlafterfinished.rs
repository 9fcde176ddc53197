//! `ttl-after-finished` against a real API server. No job controller runs: the test marks
//! the Job Complete itself through `jobs/status`.

mod common;

use common::{cluster, start, wait_for, TestResult, CA_PEM};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::Api;
use rkube_controllers::ControllerContext;
use serde_json::json;

fn job(name: &str, ttl: Option<i32>) -> Result<Job, serde_json::Error> {
    let mut spec = json!({"template": {"spec": {"restartPolicy": "Never",
        "containers": [{"name": "c", "image": "busybox"}]}}});
    if let Some(ttl) = ttl {
        spec["ttlSecondsAfterFinished"] = json!(ttl);
    }
    serde_json::from_value(
        json!({"metadata": {"name": name, "namespace": "default"}, "spec": spec}),
    )
}

async fn complete(api: &Api<Job>, name: &str) -> TestResult {
    let now = Timestamp::now().to_string();
    let status = json!({"status": {"startTime": now, "completionTime": now, "succeeded": 1,
        "conditions": [
            {"type": "SuccessCriteriaMet", "status": "True", "lastProbeTime": now, "lastTransitionTime": now},
            {"type": "Complete", "status": "True", "lastProbeTime": now, "lastTransitionTime": now}]}});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    Ok(())
}

#[tokio::test]
async fn finished_job_with_ttl_is_deleted_after_it() -> TestResult {
    let c = cluster().await?;
    let _controllers = start(
        &c,
        ControllerContext::new(CA_PEM),
        "ttl-after-finished,garbage-collector",
    );
    let api = Api::<Job>::namespaced(c.client.clone(), "default");
    api.create(&PostParams::default(), &job("short-lived", Some(1))?)
        .await?;
    api.create(&PostParams::default(), &job("kept", None)?)
        .await?;
    api.create(&PostParams::default(), &job("unfinished", Some(0))?)
        .await?;
    complete(&api, "short-lived").await?;
    complete(&api, "kept").await?;
    let finished = api.get("short-lived").await?;
    assert!(
        finished
            .status
            .and_then(|s| s.conditions)
            .is_some_and(|cs| cs
                .iter()
                .any(|c| c.type_ == "Complete" && c.status == "True")),
        "the Job is Complete"
    );
    wait_for("the finished job to be deleted", || {
        let api = api.clone();
        async move {
            api.get_opt("short-lived")
                .await
                .ok()?
                .is_none()
                .then_some(())
        }
    })
    .await;
    assert!(api.get_opt("kept").await?.is_some(), "no TTL, kept");
    assert!(
        api.get_opt("unfinished").await?.is_some(),
        "not finished, kept"
    );
    Ok(())
}
