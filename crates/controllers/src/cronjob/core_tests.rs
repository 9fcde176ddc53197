use serde_json::{json, Value};

use super::*;

fn ts(s: &str) -> Timestamp {
    s.parse().expect("timestamp")
}

/// A CronJob created at 10:00:30 UTC with `spec` merged over an every-minute schedule.
fn cronjob(spec: Value, status: Value) -> CronJob {
    let mut base = json!({
        "schedule": "* * * * *",
        "jobTemplate": {"metadata": {"labels": {"app": "x"}, "annotations": {"a": "b"}},
                        "spec": {"template": {"spec": {"containers": []}}}},
    });
    if let (Some(b), Some(s)) = (base.as_object_mut(), spec.as_object()) {
        for (k, v) in s {
            b.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(json!({
        "metadata": {"name": "cj", "namespace": "ns", "uid": "cj-uid",
                     "creationTimestamp": "2024-01-01T10:00:30Z"},
        "spec": base,
        "status": status,
    }))
    .expect("cronjob")
}

/// A job of `cj` named `name`, with conditions `cond` ("" for running) and a start time.
fn job(name: &str, cond: &str, start: &str) -> Job {
    let mut status = json!({"startTime": start});
    if !cond.is_empty() {
        status["conditions"] = json!([{"type": cond, "status": "True"}]);
        status["completionTime"] = json!(start);
    }
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "ns", "uid": format!("{name}-uid"),
                     "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "cj",
                                          "uid": "cj-uid", "controller": true}]},
        "status": status,
    }))
    .expect("job")
}

fn active(names: &[&str]) -> Value {
    json!({"active": names.iter().map(|n| json!({"kind": "Job", "name": n, "namespace": "ns",
        "uid": format!("{n}-uid")})).collect::<Vec<_>>(),
        "lastScheduleTime": "2024-01-01T10:01:00Z"})
}

fn reasons(p: &Plan) -> Vec<&'static str> {
    p.events.iter().map(|e| e.reason).collect()
}

fn created(p: &Plan) -> Option<String> {
    p.create.as_ref().and_then(|c| c.job.metadata.name.clone())
}

fn deleted(p: &Plan) -> Vec<(&str, DeleteReason)> {
    p.deletes
        .iter()
        .map(|d| (d.name.as_str(), d.reason))
        .collect()
}

#[test]
fn scheduling_follows_concurrency_policy_suspend_and_deadline() {
    // 10:02:05: the 10:02 run is due (10:01 ran, creation 10:00:30).
    let now = ts("2024-01-01T10:02:05Z");
    let running = job("cj-28401721", "", "2024-01-01T10:01:00Z");
    struct Case {
        name: &'static str,
        spec: Value,
        status: Value,
        jobs: Vec<Job>,
        create: Option<&'static str>,
        deletes: Vec<(&'static str, DeleteReason)>,
        events: Vec<&'static str>,
    }
    let cases = vec![
        Case {
            name: "first run at the first minute after creation",
            spec: json!({}),
            status: json!({}),
            jobs: vec![],
            // The most recent of 10:01 and 10:02.
            create: Some("cj-28401722"),
            deletes: vec![],
            events: vec![],
        },
        Case {
            name: "allow runs beside an active job",
            spec: json!({"concurrencyPolicy": "Allow"}),
            status: active(&["cj-28401721"]),
            jobs: vec![running.clone()],
            create: Some("cj-28401722"),
            deletes: vec![],
            events: vec![],
        },
        Case {
            name: "forbid skips while a job is active",
            spec: json!({"concurrencyPolicy": "Forbid"}),
            status: active(&["cj-28401721"]),
            jobs: vec![running.clone()],
            create: None,
            deletes: vec![],
            events: vec!["JobAlreadyActive"],
        },
        Case {
            name: "replace deletes the active job and creates",
            spec: json!({"concurrencyPolicy": "Replace"}),
            status: active(&["cj-28401721"]),
            jobs: vec![running.clone()],
            create: Some("cj-28401722"),
            deletes: vec![("cj-28401721", DeleteReason::Replace)],
            events: vec![],
        },
        Case {
            name: "suspend creates nothing",
            spec: json!({"suspend": true}),
            status: json!({}),
            jobs: vec![],
            create: None,
            deletes: vec![],
            events: vec![],
        },
        Case {
            name: "a run older than the starting deadline is skipped",
            spec: json!({"schedule": "0 * * * *", "startingDeadlineSeconds": 60}),
            status: json!({"lastScheduleTime": "2024-01-01T09:00:00Z"}),
            jobs: vec![],
            // 10:00 was due, but more than 60 s ago.
            create: None,
            deletes: vec![],
            events: vec![],
        },
        Case {
            name: "a run within the starting deadline starts",
            spec: json!({"schedule": "0 * * * *", "startingDeadlineSeconds": 300}),
            status: json!({"lastScheduleTime": "2024-01-01T09:00:00Z"}),
            jobs: vec![],
            create: Some("cj-28401720"),
            deletes: vec![],
            events: vec![],
        },
        Case {
            name: "a time already run is not run again",
            spec: json!({}),
            status: json!({"lastScheduleTime": "2024-01-01T10:02:00Z"}),
            jobs: vec![],
            create: None,
            deletes: vec![],
            events: vec![],
        },
        Case {
            name: "an unknown zone schedules nothing",
            spec: json!({"timeZone": "Mars/Olympus_Mons"}),
            status: json!({}),
            jobs: vec![],
            create: None,
            deletes: vec![],
            events: vec!["UnknownTimeZone"],
        },
        Case {
            name: "an unparseable schedule schedules nothing",
            spec: json!({"schedule": "61 * * * *"}),
            status: json!({}),
            jobs: vec![],
            create: None,
            deletes: vec![],
            events: vec!["UnparseableSchedule"],
        },
        Case {
            name: "too many missed runs still run the latest, with a warning",
            spec: json!({}),
            status: json!({"lastScheduleTime": "2023-12-31T10:00:00Z"}),
            jobs: vec![],
            create: Some("cj-28401722"),
            deletes: vec![],
            events: vec!["TooManyMissedTimes"],
        },
    ];
    for c in cases {
        let cj = cronjob(c.spec, c.status);
        let jobs: Vec<&Job> = c.jobs.iter().collect();
        let p = plan(&cj, &jobs, now);
        assert_eq!(created(&p).as_deref(), c.create, "{}: create", c.name);
        assert_eq!(deleted(&p), c.deletes, "{}: deletes", c.name);
        assert_eq!(reasons(&p), c.events, "{}: events", c.name);
    }
}

#[test]
fn created_jobs_carry_template_owner_and_scheduled_time_in_the_zone() {
    let cj = cronjob(json!({"timeZone": "America/New_York"}), json!({}));
    let p = plan(&cj, &[], ts("2024-01-01T10:02:05Z"));
    let c = p.create.expect("a job");
    assert_eq!(c.scheduled, ts("2024-01-01T10:02:00Z"));
    let meta = &c.job.metadata;
    assert_eq!(meta.name.as_deref(), Some("cj-28401722"));
    assert_eq!(meta.namespace.as_deref(), Some("ns"));
    let ann = meta.annotations.as_ref().expect("annotations");
    assert_eq!(ann["a"], "b");
    assert_eq!(
        ann[SCHEDULED_TIMESTAMP_ANNOTATION],
        "2024-01-01T05:02:00-05:00"
    );
    assert_eq!(meta.labels.as_ref().expect("labels")["app"], "x");
    let owner = &meta.owner_references.as_ref().expect("owner")[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
        ("CronJob", "cj", "cj-uid")
    );
    assert_eq!(
        (owner.controller, owner.block_owner_deletion),
        (Some(true), Some(true))
    );
    assert!(c.job.spec.is_some());
    // Looked at again at 10:03 plus slack.
    assert_eq!(p.requeue_after, Some(Duration::from_millis(55_100)));

    let utc = plan(
        &cronjob(json!({}), json!({})),
        &[],
        ts("2024-01-01T10:02:05Z"),
    );
    let ann = utc
        .create
        .expect("a job")
        .job
        .metadata
        .annotations
        .expect("annotations");
    assert_eq!(ann[SCHEDULED_TIMESTAMP_ANNOTATION], "2024-01-01T10:02:00Z");
}

#[test]
fn finished_and_vanished_jobs_leave_the_active_list() {
    let now = ts("2024-01-01T10:01:30Z");
    let done = job("cj-1", "Complete", "2024-01-01T10:00:40Z");
    let failed = job("cj-2", "Failed", "2024-01-01T10:00:50Z");
    let later = job("cj-3", "Complete", "2024-01-01T10:00:45Z");
    let cj = cronjob(json!({}), active(&["cj-1", "cj-2", "cj-3", "cj-gone"]));
    let p = plan(&cj, &[&done, &failed, &later], now);
    assert_eq!(p.status.active, None);
    assert!(p.status_changed);
    let msgs: Vec<&str> = p.events.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        msgs,
        [
            "Saw completed job: cj-1, status: Complete",
            "Saw completed job: cj-2, status: Failed",
            "Saw completed job: cj-3, status: Complete",
            "Active job went missing: cj-gone",
        ]
    );
    // The latest completion of a successful job.
    assert_eq!(
        p.status.last_successful_time.map(|t| t.0),
        Some(ts("2024-01-01T10:00:45Z"))
    );
}

#[test]
fn success_criteria_met_or_failure_target_alone_is_not_finished() {
    // Both precede Complete/Failed while the job's pods still terminate (upstream's
    // IsJobFinished looks at Complete and Failed only).
    let cases = [
        ("SuccessCriteriaMet", None),
        ("FailureTarget", None),
        ("Complete", Some(Finished::Complete)),
        ("Failed", Some(Finished::Failed)),
        ("", None),
    ];
    for (cond, want) in cases {
        assert_eq!(
            finished(&job("cj-1", cond, "2024-01-01T10:00:40Z")),
            want,
            "{cond}"
        );
    }
    // Still running for the CronJob: it stays active, no success is recorded, and Forbid
    // starts no new run.
    let met = job("cj-28401721", "SuccessCriteriaMet", "2024-01-01T10:01:00Z");
    let cj = cronjob(
        json!({"concurrencyPolicy": "Forbid"}),
        active(&["cj-28401721"]),
    );
    let p = plan(&cj, &[&met], ts("2024-01-01T10:02:05Z"));
    assert_eq!(p.status.active.as_ref().map(Vec::len), Some(1));
    assert_eq!(p.status.last_successful_time, None);
    assert_eq!(created(&p), None);
}

#[test]
fn an_unlisted_running_job_is_reported_not_adopted() {
    let stray = job("cj-9", "", "2024-01-01T10:00:40Z");
    let cj = cronjob(
        json!({}),
        json!({"lastScheduleTime": "2024-01-01T10:01:00Z"}),
    );
    let p = plan(&cj, &[&stray], ts("2024-01-01T10:01:30Z"));
    assert_eq!(reasons(&p), ["UnexpectedJob"]);
    assert_eq!(p.status.active, None);
}

#[test]
fn history_limits_delete_the_oldest_finished_jobs() {
    let now = ts("2024-01-01T10:01:30Z");
    let status = json!({"lastScheduleTime": "2024-01-01T10:01:00Z"});
    let ok = |n: &str, start: &str| job(n, "Complete", start);
    let bad = |n: &str, start: &str| job(n, "Failed", start);
    let jobs = [
        ok("s3", "2024-01-01T03:00:00Z"),
        ok("s1", "2024-01-01T01:00:00Z"),
        ok("s4", "2024-01-01T04:00:00Z"),
        ok("s2", "2024-01-01T02:00:00Z"),
        bad("f2", "2024-01-01T02:00:00Z"),
        bad("f1", "2024-01-01T01:00:00Z"),
        job("running", "", "2024-01-01T00:00:00Z"),
    ];
    let refs: Vec<&Job> = jobs.iter().collect();
    let cases: [(Value, &[&str]); 3] = [
        (json!({}), &["s1", "f1"]),
        (
            json!({"successfulJobsHistoryLimit": 1, "failedJobsHistoryLimit": 0}),
            &["s1", "s2", "s3", "f1", "f2"],
        ),
        (
            json!({"successfulJobsHistoryLimit": 10, "failedJobsHistoryLimit": 2}),
            &[],
        ),
    ];
    for (spec, want) in cases {
        let cj = cronjob(spec.clone(), status.clone());
        let p = plan(&cj, &refs, now);
        let got: Vec<&str> = p
            .deletes
            .iter()
            .filter(|d| d.reason == DeleteReason::History)
            .map(|d| d.name.as_str())
            .collect();
        assert_eq!(got, want, "{spec}");
    }
}

#[test]
fn a_created_job_joins_the_active_list_once() {
    let mut status = CronJobStatus::default();
    let j = job("cj-5", "", "2024-01-01T10:00:40Z");
    record_created(&mut status, &j, ts("2024-01-01T10:01:00Z"));
    record_created(&mut status, &j, ts("2024-01-01T10:01:00Z"));
    let active = status.active.expect("active");
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].name.as_deref(), Some("cj-5"));
    assert_eq!(active[0].kind.as_deref(), Some("Job"));
    assert_eq!(
        status.last_schedule_time.map(|t| t.0),
        Some(ts("2024-01-01T10:01:00Z"))
    );
}
