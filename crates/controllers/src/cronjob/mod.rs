//! `cronjob` (upstream's cronjob-controller, `cronjob_controllerv2`): creates a Job from each
//! CronJob's template at the times its cron schedule names, in its `spec.timeZone` (UTC
//! without one), and keeps its status.
//!
//! Upstream's semantics: schedules are robfig/cron's standard syntax ([`schedule`]); only the
//! most recent missed time runs (more than 100 missed: `TooManyMissedTimes`), and not at all
//! once `startingDeadlineSeconds` have passed since it; `concurrencyPolicy` Forbid skips a run
//! while a job is active and Replace deletes the active jobs first; `suspend` stops new runs;
//! jobs are named `<cronjob>-<scheduled unix minutes>` so a time never runs twice, and an
//! AlreadyExists for a job the CronJob controls counts as created. `status.active` lists the
//! running jobs, `lastScheduleTime` the last run, `lastSuccessfulTime` the last completion;
//! finished jobs beyond `successfulJobsHistoryLimit` (3) and `failedJobsHistoryLimit` (1) are
//! deleted oldest first. Each CronJob is looked at again at its next scheduled time.
//!
//! The decisions are the pure [`core::plan`]; this driver reads the caches, confirms with
//! the API what the caches may not have seen yet (active jobs missing from the cache, jobs not
//! in a stale status), performs the plan and records events. Time comes from a [`Clock`].

pub mod core;
pub mod schedule;

use std::sync::{Arc, OnceLock};

use crate::events::Recorder;
use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use kube::api::{DeleteParams, PostParams, PropagationPolicy};
use kube::runtime::controller::Action;

use crate::events;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, Resource, ResourceExt};

use crate::driver::{drive, on_objects, Triggers};
use crate::error::{api_message, is_already_exists, is_conflict, is_not_found};
use crate::{ControllerContext, Error};

use self::core::{controlled_by, finished, in_active, plan, record_created, DeleteReason, Event};

pub const NAME: &str = "cronjob";

/// The event source, as upstream's.
const COMPONENT: &str = "cronjob-controller";

/// Where the controller reads the time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;

    /// Tells of jumps of the clock (test clocks), so every CronJob is looked at again; None
    /// for a clock that only moves forward in real time.
    fn changes(&self) -> Option<tokio::sync::watch::Receiver<Timestamp>> {
        None
    }
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

struct State {
    client: Client,
    jobs: Store<Job>,
    clock: Arc<dyn Clock>,
    recorder: OnceLock<Recorder>,
}

impl State {
    async fn event(&self, cj: &CronJob, ev: &Event) {
        let recorder = self
            .recorder
            .get_or_init(|| events::recorder(self.client.clone(), COMPONENT));
        let reference = cj.object_ref(&());
        let (type_, note) = (events::event_type(ev.warning), ev.message.clone());
        events::publish(recorder, &reference, type_, ev.reason, note).await;
    }
}

/// Runs the controller on the system clock until its watches end.
pub async fn run(client: Client, ctx: Arc<ControllerContext>) -> Result<(), Error> {
    run_with_clock(client, ctx, Arc::new(SystemClock)).await
}

/// Runs the controller with time from `clock`.
pub async fn run_with_clock(
    client: Client,
    ctx: Arc<ControllerContext>,
    clock: Arc<dyn Clock>,
) -> Result<(), Error> {
    let (cronjobs, cj_events) = ctx.informer::<CronJob>(NAME, &client).await;
    let (jobs, job_events) = ctx.informer::<Job>(NAME, &client).await;
    let mut triggers: Vec<Triggers<CronJob>> = vec![
        on_objects(cj_events, false, |cj: &CronJob| {
            Some(ObjectRef::from_obj(cj))
        }),
        // A job's changes concern the CronJob that controls it.
        on_objects(job_events, true, |job: &Job| {
            let ns = job.namespace();
            job.metadata
                .owner_references
                .iter()
                .flatten()
                .find(|r| r.controller == Some(true) && r.kind == "CronJob")
                .map(|r| {
                    ObjectRef::<CronJob>::new(&r.name).within(ns.as_deref().unwrap_or_default())
                })
        }),
    ];
    if let Some(rx) = clock.changes() {
        let all = cronjobs.clone();
        let ticks = futures::stream::unfold(rx, |mut rx| async move {
            rx.changed().await.ok().map(|()| ((), rx))
        });
        triggers.push(
            ticks
                .flat_map(move |()| {
                    futures::stream::iter(
                        all.state()
                            .iter()
                            .map(|cj| ObjectRef::from_obj(cj.as_ref()))
                            .collect::<Vec<_>>(),
                    )
                })
                .boxed(),
        );
    }
    let state = Arc::new(State {
        client,
        jobs,
        clock,
        recorder: OnceLock::new(),
    });
    drive(NAME, &ctx, cronjobs, triggers, state, reconcile).await
}

async fn reconcile(cached: Arc<CronJob>, st: Arc<State>) -> Result<Action, Error> {
    if st.jobs.wait_until_ready().await.is_err() {
        return Err(Error::CacheStopped(NAME));
    }
    let ns = cached.namespace().unwrap_or_default();
    let name = cached.name_any();
    let cj_api = Api::<CronJob>::namespaced(st.client.clone(), &ns);
    let job_api = Api::<Job>::namespaced(st.client.clone(), &ns);

    let mut cj = cached.as_ref().clone();
    let mut jobs: Vec<Job> = st
        .jobs
        .state()
        .iter()
        .filter(|j| j.namespace().as_deref() == Some(ns.as_str()) && controlled_by(j, &cj))
        .map(|j| j.as_ref().clone())
        .collect();

    // A running job the cached status does not list: the status may be stale (our own
    // update not seen yet), so ask for the current CronJob, as upstream.
    let unlisted = jobs.iter().any(|j| {
        finished(j).is_none() && !in_active(&cj, j.metadata.uid.as_deref().unwrap_or_default())
    });
    if unlisted {
        match cj_api.get(&name).await {
            Ok(fresh) => cj = fresh,
            Err(e) if is_not_found(&e) => return Ok(Action::await_change()),
            Err(e) => return Err(e.into()),
        }
    }
    // Active jobs missing from the cache may only be late in it: ask the API.
    let absent: Vec<String> = {
        let refs: Vec<&Job> = jobs.iter().collect();
        core::absent_active(&cj, &refs)
            .into_iter()
            .filter_map(|r| r.name.clone())
            .collect()
    };
    for job_name in absent {
        match job_api.get(&job_name).await {
            Ok(job) => jobs.push(job),
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }

    let refs: Vec<&Job> = jobs.iter().collect();
    let mut p = plan(&cj, &refs, st.clock.now());
    for ev in &p.events {
        st.event(&cj, ev).await;
    }

    let background = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..Default::default()
    };
    for d in &p.deletes {
        match job_api.delete(&d.name, &background).await {
            Ok(_) => {
                let ev = Event {
                    warning: false,
                    reason: "SuccessfulDelete",
                    message: format!("Deleted job {}", d.name),
                };
                st.event(&cj, &ev).await;
            }
            // Already gone: what the delete wanted.
            Err(e) if is_not_found(&e) => {}
            Err(e) => {
                let ev = Event {
                    warning: true,
                    reason: "FailedDelete",
                    message: format!("Deleted job: {}", api_message(&e)),
                };
                st.event(&cj, &ev).await;
                // A job Replace could not remove blocks the new run; a history job is
                // retried at the next sync.
                if d.reason == DeleteReason::Replace {
                    return Err(e.into());
                }
            }
        }
    }

    if let Some(create) = p.create.take() {
        let job_name = create.job.metadata.name.clone().unwrap_or_default();
        let created = match job_api.create(&PostParams::default(), &create.job).await {
            Ok(job) => {
                let ev = Event {
                    warning: false,
                    reason: "SuccessfulCreate",
                    message: format!("Created job {job_name}"),
                };
                st.event(&cj, &ev).await;
                Some(job)
            }
            Err(e) if is_already_exists(&e) => {
                // Created earlier with the status update lost, or by someone else.
                let job = job_api.get(&job_name).await?;
                let ours = job.metadata.owner_references.iter().flatten().any(|r| {
                    r.controller == Some(true) && Some(&r.uid) == cj.metadata.uid.as_ref()
                });
                let listed = p
                    .status
                    .active
                    .iter()
                    .flatten()
                    .any(|r| r.uid.is_some() && r.uid == job.metadata.uid);
                (ours && !listed).then_some(job)
            }
            Err(e) => {
                if !crate::error::is_namespace_terminating(&e) {
                    let ev = Event {
                        warning: true,
                        reason: "FailedCreate",
                        message: format!("Error creating job: {}", api_message(&e)),
                    };
                    st.event(&cj, &ev).await;
                }
                write_status(&cj_api, &cj, &p).await?;
                return Err(e.into());
            }
        };
        if let Some(job) = created {
            record_created(&mut p.status, &job, create.scheduled);
            p.status_changed = true;
        }
    }

    if !write_status(&cj_api, &cj, &p).await? {
        // A newer CronJob is on its way through the watch: sync again with it.
        return Ok(Action::requeue(CONFLICT_RETRY));
    }
    Ok(match p.requeue_after {
        Some(d) => Action::requeue(d),
        None => Action::await_change(),
    })
}

/// How soon to sync again after a status write lost a race.
const CONFLICT_RETRY: std::time::Duration = std::time::Duration::from_millis(200);

/// Writes the planned status when it changed; false when it lost a race (409).
async fn write_status(api: &Api<CronJob>, cj: &CronJob, p: &core::Plan) -> Result<bool, Error> {
    if !p.status_changed {
        return Ok(true);
    }
    let mut updated = cj.clone();
    updated.status = Some(p.status.clone());
    match api
        .replace_status(&cj.name_any(), &PostParams::default(), &updated)
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if is_conflict(&e) => Ok(false),
        Err(e) if is_not_found(&e) => Ok(true),
        Err(e) => Err(e.into()),
    }
}
