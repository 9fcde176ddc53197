//! `ttl-after-finished` (upstream's `TTLAfterFinishedController`): deletes a Job whose
//! `spec.ttlSecondsAfterFinished` is set that many seconds after it finished, i.e. after the
//! `lastTransitionTime` of its Complete or Failed condition (status True).
//!
//! Keys are Jobs; a Job not yet due is requeued for when it is. Before deleting, the Job is
//! read afresh from the API (its TTL may have been changed, as upstream re-checks), and the
//! delete carries its uid as precondition, with foreground propagation as upstream's: the
//! garbage collector removes the Job's pods first, then the Job.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Preconditions, PropagationPolicy};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Client, ResourceExt};

use crate::driver::{drive, on_objects};
use crate::error::{is_conflict, is_not_found};
use crate::{ControllerContext, Error};

pub const NAME: &str = "ttl-after-finished";

/// When a Job finished: the transition time of its true Complete or Failed condition.
pub fn finish_time(job: &Job) -> Option<Timestamp> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
        .and_then(|c| c.last_transition_time.as_ref())
        .map(|t| t.0)
}

/// What to do with a Job now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No TTL, not finished, or already being deleted.
    Keep,
    /// Due: delete it.
    Delete,
    /// Due after this long.
    Wait(Duration),
}

/// The verdict for `job` at `now`.
pub fn verdict(job: &Job, now: Timestamp) -> Verdict {
    if job.metadata.deletion_timestamp.is_some() {
        return Verdict::Keep;
    }
    let Some(ttl) = job.spec.as_ref().and_then(|s| s.ttl_seconds_after_finished) else {
        return Verdict::Keep;
    };
    let Some(finished) = finish_time(job) else {
        return Verdict::Keep;
    };
    let ttl = Duration::from_secs(u64::try_from(ttl).unwrap_or_default());
    let expire_at = finished.saturating_add(ttl).unwrap_or(finished);
    if now >= expire_at {
        Verdict::Delete
    } else {
        Verdict::Wait(expire_at.duration_since(now).unsigned_abs())
    }
}

struct State {
    client: Client,
}

/// Runs the controller until the Job watch ends.
pub async fn run(client: Client, ctx: Arc<ControllerContext>) -> Result<(), Error> {
    let (jobs, events) = ctx.informer::<Job>(NAME, &client).await;
    let triggers = vec![on_objects(events, false, |j: &Job| {
        (verdict(j, Timestamp::now()) != Verdict::Keep).then(|| ObjectRef::from_obj(j))
    })];
    drive(
        NAME,
        &ctx,
        jobs,
        triggers,
        Arc::new(State { client }),
        reconcile,
    )
    .await
}

async fn reconcile(job: Arc<Job>, st: Arc<State>) -> Result<Action, Error> {
    match verdict(&job, Timestamp::now()) {
        Verdict::Keep => return Ok(Action::await_change()),
        Verdict::Wait(d) => return Ok(Action::requeue(d)),
        Verdict::Delete => {}
    }
    let ns = job.namespace().unwrap_or_default();
    let name = job.name_any();
    let api = Api::<Job>::namespaced(st.client.clone(), &ns);
    // The cache may be stale: decide again on the Job as the API has it.
    let Some(fresh) = api.get_opt(&name).await? else {
        return Ok(Action::await_change());
    };
    match verdict(&fresh, Timestamp::now()) {
        Verdict::Keep => return Ok(Action::await_change()),
        Verdict::Wait(d) => return Ok(Action::requeue(d)),
        Verdict::Delete => {}
    }
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Foreground),
        preconditions: fresh.uid().map(|uid| Preconditions {
            uid: Some(uid),
            resource_version: None,
        }),
        ..Default::default()
    };
    match api.delete(&name, &dp).await {
        Ok(_) => {
            tracing::info!(controller = NAME, namespace = %ns, job = %name, "deleted finished job after its TTL");
            Ok(Action::await_change())
        }
        Err(e) if is_not_found(&e) || is_conflict(&e) => Ok(Action::await_change()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::{JobCondition, JobSpec, JobStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_000 + s).unwrap()
    }

    fn job(ttl: Option<i32>, cond: Option<(&str, &str, i64)>, deleting: bool) -> Job {
        let mut j = Job {
            spec: Some(JobSpec {
                ttl_seconds_after_finished: ttl,
                ..Default::default()
            }),
            status: Some(JobStatus {
                conditions: cond.map(|(ty, st, at)| {
                    vec![JobCondition {
                        type_: ty.into(),
                        status: st.into(),
                        last_transition_time: Some(Time(t(at))),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        if deleting {
            j.metadata.deletion_timestamp = Some(Time(t(0)));
        }
        j
    }

    #[test]
    fn jobs_are_deleted_ttl_seconds_after_they_finish() {
        let cases: &[(&str, Job, i64, Verdict)] = &[
            (
                "no ttl",
                job(None, Some(("Complete", "True", 0)), false),
                100,
                Verdict::Keep,
            ),
            ("running", job(Some(0), None, false), 100, Verdict::Keep),
            (
                "suspended is not finished",
                job(Some(0), Some(("Suspended", "True", 0)), false),
                100,
                Verdict::Keep,
            ),
            (
                "complete false is not finished",
                job(Some(0), Some(("Complete", "False", 0)), false),
                100,
                Verdict::Keep,
            ),
            (
                "complete, due",
                job(Some(10), Some(("Complete", "True", 0)), false),
                10,
                Verdict::Delete,
            ),
            (
                "failed, not yet due",
                job(Some(10), Some(("Failed", "True", 0)), false),
                4,
                Verdict::Wait(Duration::from_secs(6)),
            ),
            (
                "ttl 0 is due at once",
                job(Some(0), Some(("Complete", "True", 5)), false),
                5,
                Verdict::Delete,
            ),
            (
                "already deleting",
                job(Some(0), Some(("Complete", "True", 0)), true),
                100,
                Verdict::Keep,
            ),
        ];
        for (what, j, now, want) in cases {
            assert_eq!(verdict(j, t(*now)), *want, "{what}");
        }
    }
}
