//! Table tests of the Job controller's pure core, one per feature.

use std::collections::HashSet;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use serde_json::{json, Value};

use super::core::{finish, plan, Input, Plan, TRACKING_FINALIZER};
use super::policy::BackoffRecord;

const NOW: i64 = 1_700_000_000;

fn ts(s: i64) -> Timestamp {
    Timestamp::from_second(s).unwrap()
}

fn t(s: i64) -> String {
    ts(s).to_string()
}

fn job(spec: Value, status: Value) -> Job {
    let mut spec = spec;
    spec["template"] = json!({"spec": {"restartPolicy": "Never",
        "containers": [{"name": "c", "image": "i"}]}});
    serde_json::from_value(json!({
        "metadata": {"name": "j", "namespace": "ns", "uid": "job-uid"},
        "spec": spec, "status": status,
    }))
    .unwrap()
}

/// A pod of the Job: name, phase, exit code of its container (when finished), finished at.
fn pod(name: &str, phase: &str, exit: Option<i32>, at: i64) -> Pod {
    let mut status = json!({"phase": phase});
    if let Some(code) = exit {
        status["containerStatuses"] = json!([{"name": "c", "image": "i", "imageID": "",
            "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": code, "finishedAt": t(at)}}}]);
    }
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"),
            "creationTimestamp": t(at - 10),
            "finalizers": [TRACKING_FINALIZER],
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "j",
                "uid": "job-uid", "controller": true}]},
        "spec": {"containers": [{"name": "c", "image": "i"}]},
        "status": status,
    }))
    .unwrap()
}

fn indexed_pod(name: &str, ix: i64, phase: &str, exit: Option<i32>) -> Pod {
    let mut p = pod(name, phase, exit, NOW - 100);
    p.metadata.annotations = Some(
        [(
            "batch.kubernetes.io/job-completion-index".to_string(),
            ix.to_string(),
        )]
        .into(),
    );
    p
}

fn run(job: &Job, pods: &[Pod], backoff: &BackoffRecord) -> Plan {
    let refs: Vec<&Pod> = pods.iter().collect();
    plan(&Input {
        job,
        pods: &refs,
        now: ts(NOW),
        backoff,
        expectations_satisfied: true,
        expected_rm_finalizers: &HashSet::new(),
    })
}

fn cond(p: &Plan, type_: &str) -> Option<(String, String)> {
    p.status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone().unwrap_or_default()))
}

#[test]
fn active_pods_are_parallelism_capped_by_remaining_completions() {
    let running = |n: usize| -> Vec<Pod> {
        (0..n)
            .map(|i| pod(&format!("r{i}"), "Running", None, NOW))
            .collect()
    };
    // (spec, status.succeeded, running pods, creates, deletes)
    let cases: Vec<(Value, i32, usize, usize, usize)> = vec![
        (json!({"completions": 3, "parallelism": 2}), 0, 0, 2, 0),
        (json!({"completions": 3, "parallelism": 2}), 2, 0, 1, 0),
        (json!({"completions": 3, "parallelism": 2}), 2, 1, 0, 0),
        (json!({"completions": 3, "parallelism": 5}), 0, 1, 2, 0),
        (json!({"completions": 2, "parallelism": 5}), 1, 3, 0, 2),
        (json!({"parallelism": 3}), 0, 1, 2, 0),
        (json!({"parallelism": 3}), 1, 1, 0, 0),
        (json!({}), 0, 0, 1, 0),
    ];
    for (spec, succeeded, n, creates, deletes) in cases {
        let j = job(spec.clone(), json!({"succeeded": succeeded}));
        let p = run(&j, &running(n), &BackoffRecord::default());
        assert_eq!(
            (p.creates.len(), p.deletes.len()),
            (creates, deletes),
            "{spec} succeeded={succeeded} running={n}"
        );
        assert!(
            p.deletes.iter().all(|d| d.remove_finalizer),
            "scale-down is not a failure"
        );
        for c in &p.creates {
            assert!(c
                .metadata
                .finalizers
                .iter()
                .flatten()
                .any(|f| f == TRACKING_FINALIZER));
            assert_eq!(c.metadata.generate_name.as_deref(), Some("j-"));
        }
    }
}

#[test]
fn failures_beyond_backoff_limit_fail_the_job_through_failure_target() {
    // (backoffLimit, failed pods, running pods, failure target?)
    let cases = [
        (1, 1, 1, false),
        (1, 2, 1, true),
        (0, 1, 0, true),
        (6, 3, 0, false),
    ];
    for (limit, failed, running, fails) in cases {
        let mut pods: Vec<Pod> = (0..failed)
            .map(|i| pod(&format!("f{i}"), "Failed", Some(1), NOW - 3600))
            .collect();
        pods.extend((0..running).map(|i| pod(&format!("r{i}"), "Running", None, NOW)));
        let j = job(json!({"backoffLimit": limit, "parallelism": 1}), json!({}));
        let p = run(&j, &pods, &BackoffRecord::default());
        let target = cond(&p, "FailureTarget");
        assert_eq!(target.is_some(), fails, "limit {limit} failed {failed}");
        if fails {
            assert_eq!(target.unwrap().1, "BackoffLimitExceeded");
            assert_eq!(p.deletes.len(), running, "a failing job stops its pods");
            assert!(
                p.deletes.iter().all(|d| !d.remove_finalizer),
                "kept to count them"
            );
            assert_eq!(
                p.finished.as_ref().map(|c| c.type_.as_str()),
                Some("Failed")
            );
            let unc = p
                .status
                .uncounted_terminated_pods
                .clone()
                .unwrap_or_default();
            assert_eq!(unc.failed.unwrap_or_default().len(), failed + running);
        }
    }
}

#[test]
fn pod_creation_backs_off_ten_seconds_doubling_after_failures() {
    // (failures since last success, seconds since the last failure, wait)
    let cases = [
        (1, 4, Some(6)),
        (1, 11, None),
        (2, 5, Some(15)),
        (3, 0, Some(40)),
        (9, 0, Some(360)),
    ];
    for (failures, ago, want) in cases {
        let record = BackoffRecord {
            failures_after_last_success: failures,
            last_failure: Some(ts(NOW - ago)),
        };
        let j = job(
            json!({"parallelism": 1, "completions": 1}),
            json!({"failed": 1}),
        );
        let p = run(&j, &[], &record);
        assert_eq!(
            p.creates.is_empty(),
            want.is_some(),
            "{failures} failures {ago}s ago"
        );
        assert_eq!(p.requeue_after, want.map(Duration::from_secs));
    }
    let failed = pod("f", "Failed", Some(1), NOW - 3);
    let next = BackoffRecord::default().after(&[], &[&failed]);
    assert_eq!(
        (next.failures_after_last_success, next.last_failure),
        (1, Some(ts(NOW - 3)))
    );
    let ok = pod("s", "Succeeded", Some(0), NOW - 1);
    assert_eq!(
        next.after(&[&ok], &[]),
        BackoffRecord::default(),
        "a success resets it"
    );
}

#[test]
fn active_deadline_fails_the_job_or_requeues_at_the_deadline() {
    // (deadline, started seconds ago, suspended, failure target?, requeue)
    let cases = [
        (60, 100, false, true, None),
        (200, 100, false, false, Some(100)),
        (60, 100, true, false, None),
    ];
    for (deadline, ago, suspend, fails, requeue) in cases {
        let j = job(
            json!({"activeDeadlineSeconds": deadline, "suspend": suspend}),
            json!({"startTime": t(NOW - ago)}),
        );
        let running = [pod("r", "Running", None, NOW)];
        let p = run(&j, &running, &BackoffRecord::default());
        assert_eq!(
            cond(&p, "FailureTarget").map(|c| c.1),
            fails.then(|| "DeadlineExceeded".to_string())
        );
        assert_eq!(p.requeue_after, requeue.map(Duration::from_secs));
    }
}

#[test]
fn suspend_deletes_pods_without_counting_and_resume_resets_start_time() {
    let running = [
        pod("a", "Running", None, NOW),
        pod("b", "Running", None, NOW),
    ];
    let j = job(
        json!({"parallelism": 2, "completions": 4, "suspend": true}),
        json!({"startTime": t(NOW - 50)}),
    );
    let p = run(&j, &running, &BackoffRecord::default());
    assert_eq!(p.deletes.len(), 2);
    assert!(p.deletes.iter().all(|d| d.remove_finalizer));
    assert_eq!(
        cond(&p, "Suspended"),
        Some(("True".into(), "JobSuspended".into()))
    );
    assert_eq!(p.events[0].reason, "Suspended");
    assert_eq!((p.status.active, p.status.terminating), (Some(0), Some(2)));

    let resumed = job(
        json!({"parallelism": 2, "completions": 4, "suspend": false}),
        json!({"startTime": t(NOW - 50), "conditions": [{"type": "Suspended", "status": "True",
            "reason": "JobSuspended", "message": "Job suspended"}]}),
    );
    let p = run(&resumed, &[], &BackoffRecord::default());
    assert_eq!(p.creates.len(), 2);
    assert_eq!(
        cond(&p, "Suspended"),
        Some(("False".into(), "JobResumed".into()))
    );
    assert_eq!(p.events[0].reason, "Resumed");
    assert_eq!(p.status.start_time.as_ref().map(|t| t.0), Some(ts(NOW)));

    let never = job(json!({"suspend": true}), json!({}));
    assert!(
        run(&never, &[], &BackoffRecord::default())
            .status
            .start_time
            .is_none(),
        "no start while suspended"
    );
}

#[test]
fn finished_pods_are_recorded_uncounted_then_counted_once_their_finalizer_is_gone() {
    let j = job(json!({"completions": 2, "parallelism": 2}), json!({}));
    let pods = [
        pod("a", "Succeeded", Some(0), NOW),
        pod("b", "Running", None, NOW),
    ];
    let p = run(&j, &pods, &BackoffRecord::default());
    let unc = p
        .status
        .uncounted_terminated_pods
        .clone()
        .unwrap_or_default();
    assert_eq!(unc.succeeded, Some(vec!["uid-a".to_string()]));
    assert_eq!(
        p.status.succeeded, None,
        "not counted before the finalizer goes"
    );
    assert_eq!(
        p.remove_finalizers,
        vec![("a".to_string(), "uid-a".to_string())]
    );
    assert!(p.status_changed);

    // The finalizer was removed: the uid moves into the counter, once.
    let mut status = p.status.clone();
    let still: HashSet<String> = ["uid-b".to_string()].into();
    let (changed, ev) = finish(&mut status, &p, &still, ts(NOW));
    assert!(changed && ev.is_none());
    assert_eq!(status.succeeded, Some(1));
    assert!(status
        .uncounted_terminated_pods
        .clone()
        .unwrap_or_default()
        .succeeded
        .is_none());

    // A later sync with the cache still showing the finalizer does not count it again.
    let j2 = job(
        json!({"completions": 2, "parallelism": 2}),
        serde_json::to_value(&status).unwrap(),
    );
    let refs: Vec<&Pod> = pods.iter().collect();
    let expected: HashSet<String> = ["uid-a".to_string()].into();
    let p2 = plan(&Input {
        job: &j2,
        pods: &refs,
        now: ts(NOW),
        backoff: &BackoffRecord::default(),
        expectations_satisfied: true,
        expected_rm_finalizers: &expected,
    });
    assert_eq!(p2.status.succeeded, Some(1));
    assert!(p2.remove_finalizers.is_empty());
}

#[test]
fn completion_goes_through_success_criteria_met_to_complete() {
    let j = job(json!({"completions": 1}), json!({"startTime": t(NOW - 5)}));
    let pods = [pod("a", "Succeeded", Some(0), NOW)];
    let p = run(&j, &pods, &BackoffRecord::default());
    assert_eq!(
        cond(&p, "SuccessCriteriaMet"),
        Some(("True".into(), "CompletionsReached".into()))
    );
    assert!(
        cond(&p, "Complete").is_none(),
        "not before the pod is counted"
    );
    let mut status = p.status.clone();
    let (changed, ev) = finish(&mut status, &p, &HashSet::new(), ts(NOW));
    assert!(changed);
    assert_eq!(
        ev.map(|e| (e.reason, e.message)),
        Some(("Completed".into(), "Job completed".into()))
    );
    assert_eq!(status.succeeded, Some(1));
    assert!(status.completion_time.is_some());
    let complete = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Complete")
        .unwrap();
    assert_eq!(complete.reason.as_deref(), Some("CompletionsReached"));

    // With a pod still terminating, Failed waits.
    let failing = job(json!({"backoffLimit": 0}), json!({}));
    let pods = [
        pod("f", "Failed", Some(1), NOW),
        pod("r", "Running", None, NOW),
    ];
    let p = run(&failing, &pods, &BackoffRecord::default());
    let mut status = p.status.clone();
    let (_, ev) = finish(&mut status, &p, &HashSet::new(), ts(NOW));
    assert!(ev.is_none(), "the deleted running pod is still terminating");
    assert_eq!(status.failed, Some(2), "both counted as failed");
}

#[test]
fn indexed_jobs_create_missing_indexes_and_track_completed_indexes() {
    let j = job(
        json!({"completions": 5, "parallelism": 3, "completionMode": "Indexed"}),
        json!({"completedIndexes": "0", "succeeded": 1}),
    );
    let pods = [
        indexed_pod("p1", 1, "Running", None),
        indexed_pod("p3", 3, "Succeeded", Some(0)),
    ];
    let p = run(&j, &pods, &BackoffRecord::default());
    let ix: Vec<String> = p
        .creates
        .iter()
        .map(|c| {
            c.metadata.annotations.as_ref().unwrap()["batch.kubernetes.io/job-completion-index"]
                .clone()
        })
        .collect();
    assert_eq!(
        ix,
        ["2", "4"],
        "3 completions left, 1 running: the two lowest free indexes"
    );
    let c = &p.creates[0];
    assert_eq!(c.metadata.generate_name.as_deref(), Some("j-2-"));
    assert_eq!(c.spec.as_ref().unwrap().hostname.as_deref(), Some("j-2"));
    let env = c.spec.as_ref().unwrap().containers[0].env.clone().unwrap();
    assert_eq!(env[0].name, "JOB_COMPLETION_INDEX");
    assert_eq!(p.status.completed_indexes.as_deref(), Some("0,3"));
    assert_eq!(p.status.succeeded, Some(2));

    // Duplicate indexes: the newer pod goes.
    let mut dup = indexed_pod("p1b", 1, "Running", None);
    dup.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        ts(NOW),
    ));
    let pods = [indexed_pod("p1", 1, "Running", None), dup];
    let p = run(&j, &pods, &BackoffRecord::default());
    assert_eq!(
        p.deletes
            .iter()
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>(),
        ["p1b"]
    );
}

#[test]
fn pod_failure_policy_actions() {
    let policy = json!({"rules": [
        {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}},
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
        {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [1]}},
    ]});
    let disrupted = {
        let mut p = pod("d", "Failed", Some(1), NOW - 3600);
        p.status.as_mut().unwrap().conditions = Some(vec![serde_json::from_value(
            json!({"type": "DisruptionTarget", "status": "True"}),
        )
        .unwrap()]);
        p
    };
    // (pod, failure target reason, failed counted)
    let cases: Vec<(Pod, Option<&str>, usize)> = vec![
        (
            pod("x", "Failed", Some(42), NOW - 3600),
            Some("PodFailurePolicy"),
            1,
        ),
        (disrupted, None, 0),
        (pod("y", "Failed", Some(3), NOW - 3600), None, 1),
        (pod("z", "Failed", Some(1), NOW - 3600), None, 1),
    ];
    for (failed, reason, counted) in cases {
        let name = failed.metadata.name.clone().unwrap();
        let j = job(
            json!({"podFailurePolicy": policy, "backoffLimit": 6}),
            json!({}),
        );
        let p = run(&j, &[failed], &BackoffRecord::default());
        let target = cond(&p, "FailureTarget").map(|c| c.1);
        assert_eq!(target.as_deref(), reason, "{name}");
        let unc = p
            .status
            .uncounted_terminated_pods
            .clone()
            .unwrap_or_default();
        assert_eq!(unc.failed.unwrap_or_default().len(), counted, "{name}");
        assert_eq!(
            p.remove_finalizers.len(),
            1,
            "{name}: the finalizer goes either way"
        );
    }
    let j = job(json!({"podFailurePolicy": policy}), json!({}));
    let p = run(
        &j,
        &[pod("x", "Failed", Some(42), NOW)],
        &BackoffRecord::default(),
    );
    let msg = p.status.conditions.unwrap()[0].message.clone().unwrap();
    assert_eq!(
        msg,
        "Container c for pod ns/x failed with exit code 42 matching FailJob rule at index 0"
    );
}

#[test]
fn success_policy_and_backoff_limit_per_index() {
    let succeeded = |ixs: &[i64]| -> Vec<Pod> {
        ixs.iter()
            .map(|i| indexed_pod(&format!("s{i}"), *i, "Succeeded", Some(0)))
            .collect()
    };
    // (rule, succeeded indexes, met)
    let cases = [
        (json!({"succeededIndexes": "0-1"}), vec![0, 1], true),
        (json!({"succeededIndexes": "0-2"}), vec![0, 1], false),
        (
            json!({"succeededIndexes": "0-4", "succeededCount": 2}),
            vec![1, 3],
            true,
        ),
        (json!({"succeededCount": 3}), vec![0, 4], false),
    ];
    for (rule, ixs, met) in cases {
        let j = job(
            json!({"completions": 5, "parallelism": 5, "completionMode": "Indexed",
                "successPolicy": {"rules": [rule]}}),
            json!({}),
        );
        let p = run(&j, &succeeded(&ixs), &BackoffRecord::default());
        let got = cond(&p, "SuccessCriteriaMet").map(|c| c.1);
        assert_eq!(
            got.as_deref(),
            met.then_some("SuccessPolicy"),
            "{rule} {ixs:?}"
        );
    }

    let spec = json!({"completions": 3, "parallelism": 3, "completionMode": "Indexed",
        "backoffLimitPerIndex": 1, "maxFailedIndexes": 1});
    let mut f0 = indexed_pod("f0", 0, "Failed", Some(1));
    f0.metadata.annotations.as_mut().unwrap().insert(
        "batch.kubernetes.io/job-index-failure-count".into(),
        "1".into(),
    );
    let first_failure = indexed_pod("g1", 1, "Failed", Some(1));
    let p = run(
        &job(spec.clone(), json!({})),
        &[f0, first_failure, indexed_pod("r2", 2, "Running", None)],
        &BackoffRecord::default(),
    );
    assert_eq!(p.status.failed_indexes.as_deref(), Some("0"));
    assert!(cond(&p, "FailureTarget").is_none());
    assert!(
        p.remove_finalizers.iter().all(|(n, _)| n != "g1"),
        "the last failure of a retried index keeps its finalizer until it is replaced"
    );
    let p = run(
        &job(spec, json!({"failedIndexes": "0,1"})),
        &[],
        &BackoffRecord::default(),
    );
    assert_eq!(
        cond(&p, "FailureTarget").map(|c| c.1).as_deref(),
        Some("MaxFailedIndexesExceeded")
    );
}
