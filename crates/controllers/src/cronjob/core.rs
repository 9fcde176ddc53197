//! The pure core of the CronJob controller: from a CronJob, the Jobs it controls and `now`,
//! the actions upstream's `cleanupFinishedJobs` and `syncCronJob` take (events, jobs to
//! delete, the job to create, the new status and when to look again).

use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{CronJob, CronJobStatus, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};

use super::schedule::{
    most_recent_schedule_time, next_schedule_after, Missed, MostRecent, Schedule, TooClose,
};

/// The annotation with a job's scheduled time (RFC 3339 in the CronJob's zone).
pub const SCHEDULED_TIMESTAMP_ANNOTATION: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

/// Upstream's `nextScheduleDelta`: slack after the next scheduled time for clock skew.
pub const NEXT_SCHEDULE_DELTA: Duration = Duration::from_millis(100);

/// The API server's defaults of the history limits.
pub const DEFAULT_SUCCESSFUL_JOBS_HISTORY_LIMIT: i32 = 3;
pub const DEFAULT_FAILED_JOBS_HISTORY_LIMIT: i32 = 1;

/// An event on the CronJob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub warning: bool,
    pub reason: &'static str,
    pub message: String,
}

impl Event {
    fn normal(reason: &'static str, message: String) -> Self {
        Event {
            warning: false,
            reason,
            message,
        }
    }
    fn warning(reason: &'static str, message: String) -> Self {
        Event {
            warning: true,
            reason,
            message,
        }
    }
}

/// Why a job is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteReason {
    /// Beyond `successfulJobsHistoryLimit` / `failedJobsHistoryLimit`.
    History,
    /// Still running at the next scheduled time under `concurrencyPolicy: Replace`.
    Replace,
}

/// A job to delete (with background propagation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delete {
    pub name: String,
    pub reason: DeleteReason,
}

/// A job to create for a scheduled time.
#[derive(Debug, Clone, PartialEq)]
pub struct Create {
    pub job: Job,
    pub scheduled: Timestamp,
}

/// What one sync does. The status assumes every delete succeeds; the driver adds the created
/// job with [`record_created`].
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub events: Vec<Event>,
    pub deletes: Vec<Delete>,
    pub create: Option<Create>,
    pub status: CronJobStatus,
    pub status_changed: bool,
    /// When to sync again (the next scheduled time plus slack), if ever.
    pub requeue_after: Option<Duration>,
}

/// How a job finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    Complete,
    Failed,
}

/// A job is finished when a Complete or Failed condition is True, as upstream's
/// `IsJobFinished`. `SuccessCriteriaMet` (and `FailureTarget`) come earlier, while the job's
/// pods may still be terminating: counting them would let `Forbid` start the next run, and
/// set `lastSuccessfulTime`, too early.
pub fn finished(job: &Job) -> Option<Finished> {
    let conditions = job.status.as_ref().and_then(|s| s.conditions.as_ref())?;
    conditions
        .iter()
        .filter(|c| c.status == "True")
        .find_map(|c| match c.type_.as_str() {
            "Complete" => Some(Finished::Complete),
            "Failed" => Some(Finished::Failed),
            _ => None,
        })
}

/// Whether `job`'s controller reference names this CronJob (upstream matches by name).
pub fn controlled_by(job: &Job, cj: &CronJob) -> bool {
    job.metadata.owner_references.iter().flatten().any(|r| {
        r.controller == Some(true)
            && r.kind == "CronJob"
            && Some(&r.name) == cj.metadata.name.as_ref()
    })
}

fn uid(meta: &ObjectMeta) -> Option<&str> {
    meta.uid.as_deref()
}

/// Whether the CronJob's `status.active` holds a job with this uid.
pub fn in_active(cj: &CronJob, uid: &str) -> bool {
    active(cj).iter().any(|r| r.uid.as_deref() == Some(uid))
}

fn active(cj: &CronJob) -> &[ObjectReference] {
    cj.status
        .as_ref()
        .and_then(|s| s.active.as_deref())
        .unwrap_or_default()
}

/// Active references whose job is not among `jobs` (to look up before trusting the cache).
pub fn absent_active<'a>(cj: &'a CronJob, jobs: &[&Job]) -> Vec<&'a ObjectReference> {
    active(cj)
        .iter()
        .filter(|r| !jobs.iter().any(|j| uid(&j.metadata) == r.uid.as_deref()))
        .collect()
}

/// The reference `status.active` keeps for a job.
pub fn job_ref(job: &Job) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".into()),
        kind: Some("Job".into()),
        name: job.metadata.name.clone(),
        namespace: job.metadata.namespace.clone(),
        uid: job.metadata.uid.clone(),
        resource_version: job.metadata.resource_version.clone(),
        ..Default::default()
    }
}

/// Adds a created (or found, ours) job to `status.active` and records its scheduled time.
pub fn record_created(status: &mut CronJobStatus, job: &Job, scheduled: Timestamp) {
    let active = status.active.get_or_insert_with(Vec::new);
    if !active
        .iter()
        .any(|r| r.uid.is_some() && r.uid == job.metadata.uid)
    {
        active.push(job_ref(job));
    }
    status.last_schedule_time = Some(Time(scheduled));
}

/// The job name for a scheduled time: `<cronjob>-<unix minutes>`.
pub fn job_name(cj_name: &str, scheduled: Timestamp) -> String {
    format!("{cj_name}-{}", scheduled.as_second().div_euclid(60))
}

/// Go's RFC 3339 (`Z` for a zero offset).
fn rfc3339_in(t: Timestamp, tz: &TimeZone) -> String {
    let z = t.to_zoned(tz.clone());
    if z.offset().seconds() == 0 {
        z.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }
}

/// Upstream's `getJobFromTemplate2`: the template's labels, annotations and spec, the
/// scheduled-time annotation, and the CronJob as controller.
pub fn job_from_template(cj: &CronJob, scheduled: Timestamp, tz: &TimeZone) -> Job {
    let spec = cj.spec.as_ref();
    let template_meta = spec.and_then(|s| s.job_template.metadata.as_ref());
    let mut annotations = template_meta
        .and_then(|m| m.annotations.clone())
        .unwrap_or_default();
    annotations.insert(
        SCHEDULED_TIMESTAMP_ANNOTATION.into(),
        rfc3339_in(scheduled, tz),
    );
    let name = cj.metadata.name.clone().unwrap_or_default();
    Job {
        metadata: ObjectMeta {
            name: Some(job_name(&name, scheduled)),
            namespace: cj.metadata.namespace.clone(),
            labels: template_meta.and_then(|m| m.labels.clone()),
            annotations: Some(annotations),
            owner_references: Some(vec![OwnerReference {
                api_version: "batch/v1".into(),
                kind: "CronJob".into(),
                name,
                uid: cj.metadata.uid.clone().unwrap_or_default(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..Default::default()
        },
        spec: spec.and_then(|s| s.job_template.spec.clone()),
        status: None,
    }
}

/// Orders jobs oldest first by start time (jobs without one last), then by name.
fn by_start_time(a: &&Job, b: &&Job) -> std::cmp::Ordering {
    let start = |j: &Job| {
        j.status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .map(|t| t.0)
    };
    match (start(a), start(b)) {
        (Some(x), Some(y)) if x != y => x.cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        _ => a.metadata.name.cmp(&b.metadata.name),
    }
}

/// Upstream's `cleanupFinishedJobs`: the oldest finished jobs beyond each history limit.
fn history_deletes(cj: &CronJob, jobs: &[&Job]) -> Vec<Delete> {
    let spec = cj.spec.as_ref();
    let limit_ok = spec
        .and_then(|s| s.successful_jobs_history_limit)
        .unwrap_or(DEFAULT_SUCCESSFUL_JOBS_HISTORY_LIMIT);
    let limit_failed = spec
        .and_then(|s| s.failed_jobs_history_limit)
        .unwrap_or(DEFAULT_FAILED_JOBS_HISTORY_LIMIT);
    let mut out = Vec::new();
    for (kind, limit) in [
        (Finished::Complete, limit_ok),
        (Finished::Failed, limit_failed),
    ] {
        let mut of_kind: Vec<&Job> = jobs
            .iter()
            .copied()
            .filter(|j| finished(j) == Some(kind))
            .collect();
        let excess = of_kind
            .len()
            .saturating_sub(usize::try_from(limit).unwrap_or(0));
        of_kind.sort_by(by_start_time);
        out.extend(of_kind.into_iter().take(excess).map(|j| Delete {
            name: j.metadata.name.clone().unwrap_or_default(),
            reason: DeleteReason::History,
        }));
    }
    out
}

/// Splits an upstream-unsupported `TZ=zone ` / `CRON_TZ=zone ` prefix off a schedule.
fn tz_prefix(spec: &str) -> Option<(&str, &str)> {
    let rest = spec
        .strip_prefix("TZ=")
        .or_else(|| spec.strip_prefix("CRON_TZ="))?;
    let (zone, sched) = rest.split_once(char::is_whitespace)?;
    Some((zone, sched.trim_start()))
}

/// Go's `time.RFC1123Z` in UTC, as upstream's MissSchedule message.
fn rfc1123z(t: Timestamp) -> String {
    t.to_zoned(TimeZone::UTC)
        .strftime("%a, %d %b %Y %H:%M:%S %z")
        .to_string()
}

/// One sync of `cj` given the jobs it controls, at `now`.
pub fn plan(cj: &CronJob, jobs: &[&Job], now: Timestamp) -> Plan {
    let mut p = Plan {
        events: Vec::new(),
        deletes: history_deletes(cj, jobs),
        create: None,
        status: cj.status.clone().unwrap_or_default(),
        status_changed: false,
        requeue_after: None,
    };
    let name_of = |j: &Job| j.metadata.name.clone().unwrap_or_default();
    let mut active: Vec<ObjectReference> = p.status.active.take().unwrap_or_default();
    let remove = |active: &mut Vec<ObjectReference>, uid: Option<&str>| {
        let before = active.len();
        active.retain(|r| r.uid.as_deref() != uid);
        before != active.len()
    };
    for d in &p.deletes {
        if let Some(j) = jobs
            .iter()
            .find(|j| j.metadata.name.as_ref() == Some(&d.name))
        {
            remove(&mut active, uid(&j.metadata));
        }
        p.status_changed = true;
    }

    for j in jobs {
        let j_uid = uid(&j.metadata);
        let found = active.iter().any(|r| r.uid.as_deref() == j_uid);
        match finished(j) {
            None if !found => {
                p.events.push(Event::warning(
                    "UnexpectedJob",
                    format!(
                        "Saw a job that the controller did not create or forgot: {}",
                        name_of(j)
                    ),
                ));
            }
            None => {}
            Some(how) => {
                if found {
                    remove(&mut active, j_uid);
                    let status = match how {
                        Finished::Complete => "Complete",
                        Finished::Failed => "Failed",
                    };
                    p.events.push(Event::normal(
                        "SawCompletedJob",
                        format!("Saw completed job: {}, status: {status}", name_of(j)),
                    ));
                    p.status_changed = true;
                }
                if how == Finished::Complete {
                    let done = j.status.as_ref().and_then(|s| s.completion_time.clone());
                    let later = match (&p.status.last_successful_time, &done) {
                        (None, _) => true,
                        (Some(last), Some(done)) => done.0 > last.0,
                        (Some(_), None) => false,
                    };
                    if later {
                        p.status.last_successful_time = done;
                        p.status_changed = true;
                    }
                }
            }
        }
    }

    // Active jobs that no longer exist (the driver has confirmed it with the API).
    let missing: Vec<ObjectReference> = active
        .iter()
        .filter(|r| !jobs.iter().any(|j| uid(&j.metadata) == r.uid.as_deref()))
        .cloned()
        .collect();
    for r in missing {
        p.events.push(Event::normal(
            "MissingJob",
            format!(
                "Active job went missing: {}",
                r.name.clone().unwrap_or_default()
            ),
        ));
        remove(&mut active, r.uid.as_deref());
        p.status_changed = true;
    }

    let finish = |mut p: Plan, active: Vec<ObjectReference>| {
        p.status.active = (!active.is_empty()).then_some(active);
        p
    };
    if cj.metadata.deletion_timestamp.is_some() {
        return finish(p, active);
    }
    let Some(spec) = cj.spec.as_ref() else {
        return finish(p, active);
    };

    let mut tz = TimeZone::UTC;
    if let Some(zone) = &spec.time_zone {
        match TimeZone::get(zone) {
            Ok(z) => tz = z,
            Err(e) => {
                p.events.push(Event::warning(
                    "UnknownTimeZone",
                    format!("invalid timeZone: {zone:?}: {e}"),
                ));
                return finish(p, active);
            }
        }
    }
    if spec.suspend == Some(true) {
        return finish(p, active);
    }

    let mut sched_text = spec.schedule.as_str();
    if spec.schedule.contains("TZ") {
        p.events.push(Event::warning(
            "UnsupportedSchedule",
            format!(
                "CRON_TZ or TZ used in schedule {:?} is not officially supported, see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details",
                spec.schedule
            ),
        ));
    }
    let parsed = match tz_prefix(sched_text.trim_start()) {
        Some((zone, rest)) => match TimeZone::get(zone) {
            Ok(z) => {
                tz = z;
                sched_text = rest;
                Schedule::parse(sched_text)
            }
            Err(e) => Err(super::schedule::ScheduleError(format!(
                "provided bad location {zone}: {e}"
            ))),
        },
        None => Schedule::parse(sched_text),
    };
    let sched = match parsed {
        Ok(s) => s,
        Err(e) => {
            p.events.push(Event::warning(
                "UnparseableSchedule",
                format!("unparseable schedule: {:?} : {e}", spec.schedule),
            ));
            return finish(p, active);
        }
    };

    let created = cj.metadata.creation_timestamp.as_ref().map_or(now, |t| t.0);
    let last = p
        .status
        .last_schedule_time
        .as_ref()
        .map_or(created, |t| t.0);
    let requeue = |last: Timestamp| {
        next_schedule_after(&sched, &tz, last, now).map(|next| {
            let d = next.duration_since(now);
            Duration::try_from(d).unwrap_or_default() + NEXT_SCHEDULE_DELTA
        })
    };

    let scheduled = match most_recent_schedule_time(
        &sched,
        &tz,
        last,
        spec.starting_deadline_seconds,
        now,
    ) {
        Err(TooClose) => {
            p.events.push(Event::warning(
                "InvalidSchedule",
                format!(
                    "invalid schedule: {} : time difference between two schedules is less than 1 second",
                    spec.schedule
                ),
            ));
            return finish(p, active);
        }
        Ok(MostRecent {
            most_recent: None, ..
        }) => {
            p.requeue_after = requeue(last);
            return finish(p, active);
        }
        Ok(MostRecent {
            most_recent: Some(t),
            missed,
            ..
        }) => {
            if missed == Missed::Many {
                p.events.push(Event::warning(
                    "TooManyMissedTimes",
                    "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew".into(),
                ));
            }
            t
        }
    };
    p.requeue_after = requeue(last);

    if let Some(d) = spec.starting_deadline_seconds {
        let deadline = scheduled.as_second().saturating_add(d);
        if deadline < now.as_second() {
            p.events.push(Event::warning(
                "MissSchedule",
                format!(
                    "Missed scheduled time to start a job: {}",
                    rfc1123z(scheduled)
                ),
            ));
            return finish(p, active);
        }
    }
    let cj_name = cj.metadata.name.clone().unwrap_or_default();
    let name = job_name(&cj_name, scheduled);
    let processed = active
        .iter()
        .any(|r| r.name.as_deref() == Some(name.as_str()))
        || p.status.last_schedule_time.as_ref().map(|t| t.0) == Some(scheduled);
    if processed {
        return finish(p, active);
    }
    match spec.concurrency_policy.as_deref() {
        Some("Forbid") if !active.is_empty() => {
            p.events.push(Event::normal(
                "JobAlreadyActive",
                "Not starting job because prior execution is running and concurrency policy is Forbid".into(),
            ));
            return finish(p, active);
        }
        Some("Replace") => {
            for r in active.drain(..) {
                p.deletes.push(Delete {
                    name: r.name.unwrap_or_default(),
                    reason: DeleteReason::Replace,
                });
                p.status_changed = true;
            }
        }
        _ => {}
    }
    p.create = Some(Create {
        job: job_from_template(cj, scheduled, &tz),
        scheduled,
    });
    p.requeue_after = requeue(scheduled);
    finish(p, active)
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
