//! `job` (upstream's job-controller, `pkg/controller/job`): runs a Job's pods to completion.
//!
//! Upstream's v1.33 semantics: `parallelism` pods run at once, never more than the
//! completions still missing; failed pods are replaced after a backoff (10 s doubling to
//! 6 min) until more than `backoffLimit` have failed (`BackoffLimitExceeded`) or the Job has
//! been active for `activeDeadlineSeconds` (`DeadlineExceeded`); `suspend` deletes the active
//! pods (condition `Suspended`) and resuming resets `startTime`. Indexed Jobs give each pod
//! its completion index (annotation, label, `JOB_COMPLETION_INDEX`, hostname
//! `<job>-<index>`), track `completedIndexes` and, with `backoffLimitPerIndex`,
//! `failedIndexes`. `podFailurePolicy` rules can fail the Job or an index at once, ignore a
//! failure or count it; a `successPolicy` can declare an Indexed Job successful early. A
//! finishing Job first gets the interim `SuccessCriteriaMet` or `FailureTarget` condition and
//! becomes `Complete` or `Failed` once none of its pods is uncounted or terminating.
//!
//! Every pod carries the `batch.kubernetes.io/job-tracking` finalizer until it is counted (see
//! [`core`]), so a pod is counted once even when it is deleted right after it finishes.
//!
//! The decisions are the pure [`core::plan`] and [`core::finish`]; this driver reads the
//! caches, keeps the per-Job state upstream keeps in memory (expectations, the failure
//! backoff record, finalizers removed but not yet seen), performs the plan and records
//! events. Time comes from a [`Clock`] (the one the `cronjob` controller defines).

pub mod core;
#[cfg(test)]
mod core_tests;
pub mod indexes;
mod manage;
pub mod policy;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::events::Recorder;
use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;

use crate::events;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};

use crate::controller_utils::{
    key_of, slow_start_batch, EXPECTATIONS_TIMEOUT, SLOW_START_INITIAL_BATCH_SIZE,
};
pub use crate::cronjob::{Clock, SystemClock};
use crate::driver::{drive, on_objects, Events, Triggers};
use crate::error::{api_message, is_conflict, is_namespace_terminating, is_not_found};
use crate::{ControllerContext, Error};

use self::core::{Event, TRACKING_FINALIZER};
use self::policy::BackoffRecord;

pub const NAME: &str = "job";

/// The event source, as upstream's.
const COMPONENT: &str = "job-controller";

/// How soon to sync again after a status write lost a race.
const CONFLICT_RETRY: Duration = Duration::from_millis(200);

/// Creations and deletions of one Job the cache has not shown yet (upstream's expectations,
/// checked against the cache by uid rather than counted from events).
#[derive(Debug, Default)]
struct Pending {
    /// (name, uid) of created pods.
    creates: Vec<(String, String)>,
    /// (name, uid) of deleted pods.
    deletes: Vec<(String, String)>,
    at: Option<Instant>,
}

struct State {
    client: Client,
    pods: Store<Pod>,
    clock: Arc<dyn Clock>,
    recorder: OnceLock<Recorder>,
    pending: Mutex<HashMap<String, Pending>>,
    backoff: Mutex<HashMap<String, BackoffRecord>>,
    /// Uids whose finalizer was removed, per Job, until the cache shows it gone.
    removed_finalizers: Mutex<HashMap<String, HashSet<String>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl State {
    /// Drops everything kept about Job `key`.
    fn forget(&self, key: &str) {
        lock(&self.pending).remove(key);
        lock(&self.backoff).remove(key);
        lock(&self.removed_finalizers).remove(key);
    }

    async fn event(&self, job: &Job, ev: &Event) {
        let recorder = self
            .recorder
            .get_or_init(|| events::recorder(self.client.clone(), COMPONENT));
        let reference = job.object_ref(&());
        let (type_, note) = (events::event_type(ev.warning), ev.message.clone());
        events::publish(recorder, &reference, type_, &ev.reason, note).await;
    }

    fn cached_pod(&self, ns: &str, name: &str) -> Option<Arc<Pod>> {
        self.pods.get(&ObjectRef::new(name).within(ns))
    }

    /// Whether the cache shows every earlier create and delete of `key` (or they are too
    /// old to wait for).
    fn satisfied(&self, key: &str, ns: &str) -> bool {
        let mut pending = lock(&self.pending);
        let Some(p) = pending.get(key) else {
            return true;
        };
        let seen_created = p.creates.iter().all(|(n, u)| {
            self.cached_pod(ns, n)
                .is_some_and(|pod| pod.metadata.uid.as_deref() == Some(u.as_str()))
        });
        let seen_deleted = p.deletes.iter().all(|(n, u)| {
            self.cached_pod(ns, n).is_none_or(|pod| {
                pod.metadata.uid.as_deref() != Some(u.as_str())
                    || pod.metadata.deletion_timestamp.is_some()
            })
        });
        let expired = p.at.is_some_and(|t| t.elapsed() > EXPECTATIONS_TIMEOUT);
        let ok = (seen_created && seen_deleted) || expired;
        if ok {
            pending.remove(key);
        }
        ok
    }
}

fn owner_job_key(pod: &Pod) -> Option<ObjectRef<Job>> {
    let ns = pod.namespace()?;
    let r = crate::controller_utils::controller_of(&pod.metadata)?;
    (r.kind == "Job" && r.api_version.starts_with("batch/"))
        .then(|| ObjectRef::new(&r.name).within(&ns))
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
    let (jobs, job_events) = ctx.informer::<Job>(NAME, &client).await;
    let (pods, pod_events) = ctx.informer::<Pod>(NAME, &client).await;
    let state = Arc::new(State {
        client,
        pods,
        clock: clock.clone(),
        recorder: OnceLock::new(),
        pending: Mutex::default(),
        backoff: Mutex::default(),
        removed_finalizers: Mutex::default(),
    });
    // A deleted Job's per-Job state goes with it, so one recreated under the same name
    // starts afresh (upstream drops the backoff record on delete).
    let forget = state.clone();
    let job_events: Events<Job> = job_events
        .inspect(move |ev| {
            if let watcher::Event::Delete(job) = ev {
                forget.forget(&key_of(&job.metadata));
            }
        })
        .boxed();
    let mut triggers: Vec<Triggers<Job>> = vec![
        on_objects(job_events, false, |j: &Job| Some(ObjectRef::from_obj(j))),
        on_objects(pod_events, true, owner_job_key),
    ];
    if let Some(rx) = clock.changes() {
        let all = jobs.clone();
        let ticks = futures::stream::unfold(rx, |mut rx| async move {
            rx.changed().await.ok().map(|()| ((), rx))
        });
        triggers.push(
            ticks
                .flat_map(move |()| {
                    futures::stream::iter(
                        all.state()
                            .iter()
                            .map(|j| ObjectRef::from_obj(j.as_ref()))
                            .collect::<Vec<_>>(),
                    )
                })
                .boxed(),
        );
    }
    drive(NAME, &ctx, jobs, triggers, state, reconcile).await
}

/// A merge patch dropping the tracking finalizer, guarded by the pod's resourceVersion so it
/// cannot drop a finalizer another client added meanwhile; None when the pod has none.
fn remove_finalizer_patch(pod: &Pod) -> Option<serde_json::Value> {
    let all = pod.metadata.finalizers.as_deref().unwrap_or_default();
    if !all.iter().any(|f| f == TRACKING_FINALIZER) {
        return None;
    }
    let rest: Vec<&String> = all.iter().filter(|f| *f != TRACKING_FINALIZER).collect();
    Some(serde_json::json!({"metadata": {
        "resourceVersion": pod.metadata.resource_version,
        "finalizers": rest,
    }}))
}

/// Removes the tracking finalizer of pod `name`; true once it is gone (or the pod is). A
/// stale cached pod is read again once.
/// Pod deletions and finalizer removals in flight at once for one Job.
const PARALLEL_WRITES: usize = 32;

async fn remove_finalizer(api: &Api<Pod>, st: &State, ns: &str, name: &str) -> Result<bool, Error> {
    let mut pod = match st.cached_pod(ns, name) {
        Some(p) => p.as_ref().clone(),
        None => return Ok(true),
    };
    for attempt in 0..2 {
        let Some(patch) = remove_finalizer_patch(&pod) else {
            return Ok(true);
        };
        match api
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => return Ok(true),
            Err(e) if is_not_found(&e) => return Ok(true),
            Err(e) if is_conflict(&e) && attempt == 0 => match api.get(name).await {
                Ok(fresh) => pod = fresh,
                Err(e) if is_not_found(&e) => return Ok(true),
                Err(e) => return Err(e.into()),
            },
            Err(e) => return Err(e.into()),
        }
    }
    Ok(false)
}

async fn reconcile(cached: Arc<Job>, st: Arc<State>) -> Result<Action, Error> {
    if st.pods.wait_until_ready().await.is_err() {
        return Err(Error::CacheStopped(NAME));
    }
    let job = cached.as_ref().clone();
    let key = key_of(&job.metadata);
    let ns = job.namespace().unwrap_or_default();
    let job_uid = job.metadata.uid.clone().unwrap_or_default();
    let pods: Vec<Arc<Pod>> = st
        .pods
        .state()
        .into_iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(ns.as_str()))
        .filter(|p| {
            crate::controller_utils::controller_of(&p.metadata).is_some_and(|r| r.uid == job_uid)
        })
        .collect();
    let pod_refs: Vec<&Pod> = pods.iter().map(|p| p.as_ref()).collect();
    let satisfied = st.satisfied(&key, &ns);
    let expected_rm: HashSet<String> = {
        let mut removed = lock(&st.removed_finalizers);
        match removed.get_mut(&key) {
            Some(set) => {
                // Seen without the finalizer (or gone): nothing more to wait for.
                set.retain(|u| {
                    pods.iter().any(|p| {
                        p.metadata.uid.as_deref() == Some(u.as_str())
                            && core::has_tracking_finalizer(p)
                    })
                });
                let set = set.clone();
                if set.is_empty() {
                    removed.remove(&key);
                }
                set
            }
            None => HashSet::new(),
        }
    };
    let backoff = lock(&st.backoff).get(&key).cloned().unwrap_or_default();
    let now = st.clock.now();
    let mut p = core::plan(&core::Input {
        job: &job,
        pods: &pod_refs,
        now,
        backoff: &backoff,
        expectations_satisfied: satisfied,
        expected_rm_finalizers: &expected_rm,
    });
    for ev in &p.events {
        st.event(&job, ev).await;
    }
    let pod_api = Api::<Pod>::namespaced(st.client.clone(), &ns);
    let job_api = Api::<Job>::namespaced(st.client.clone(), &ns);
    let mut first_error: Option<Error> = None;

    if !p.deletes.is_empty() {
        // Concurrently, as upstream's `deleteJobPods`; the outcomes are then recorded in order.
        let outcomes: Vec<_> = futures::stream::iter(p.deletes.iter().cloned())
            .map(|d| {
                let (pod_api, st, ns) = (pod_api.clone(), st.clone(), ns.clone());
                async move {
                    if d.remove_finalizer {
                        if let Err(e) = remove_finalizer(&pod_api, &st, &ns, &d.name).await {
                            return (d, false, Err(e));
                        }
                    }
                    let deleted = pod_api.delete(&d.name, &DeleteParams::default()).await;
                    let removed = d.remove_finalizer;
                    (d, removed, Ok(deleted))
                }
            })
            .buffer_unordered(PARALLEL_WRITES)
            .collect()
            .await;
        let mut done = Vec::new();
        for (d, finalizer_removed, outcome) in outcomes {
            if finalizer_removed {
                lock(&st.removed_finalizers)
                    .entry(key.clone())
                    .or_default()
                    .insert(d.uid.clone());
            }
            let deleted = match outcome {
                Ok(deleted) => deleted,
                Err(e) => {
                    first_error.get_or_insert(e);
                    continue;
                }
            };
            match deleted {
                Ok(_) => {
                    done.push((d.name.clone(), d.uid.clone()));
                    let msg = format!("Deleted pod: {}", d.name);
                    st.event(
                        &job,
                        &Event {
                            warning: false,
                            reason: "SuccessfulDelete".into(),
                            message: msg,
                        },
                    )
                    .await;
                }
                Err(e) if is_not_found(&e) => {}
                Err(e) => {
                    let msg = format!("Error deleting: {}", api_message(&e));
                    st.event(
                        &job,
                        &Event {
                            warning: true,
                            reason: "FailedDelete".into(),
                            message: msg,
                        },
                    )
                    .await;
                    first_error.get_or_insert(e.into());
                }
            }
        }
        let mut pending = lock(&st.pending);
        let entry = pending.entry(key.clone()).or_default();
        entry.deletes.extend(done);
        entry.at = Some(Instant::now());
    }
    if first_error.is_some() {
        // Counts that assumed the deletions would happen must not be written.
        return Err(first_error.unwrap_or(Error::CacheStopped(NAME)));
    }

    if !p.creates.is_empty() {
        let creates = std::mem::take(&mut p.creates);
        let created: Mutex<Vec<(String, String)>> = Mutex::default();
        let events: Mutex<Vec<Event>> = Mutex::default();
        let (ok, err) = slow_start_batch(creates.len(), SLOW_START_INITIAL_BATCH_SIZE, |i| {
            let pod = creates[i].clone();
            let api = pod_api.clone();
            let created = &created;
            let events = &events;
            async move {
                match api.create(&PostParams::default(), &pod).await {
                    Ok(made) => {
                        let name = made.name_any();
                        lock(created)
                            .push((name.clone(), made.metadata.uid.clone().unwrap_or_default()));
                        lock(events).push(Event {
                            warning: false,
                            reason: "SuccessfulCreate".into(),
                            message: format!("Created pod: {name}"),
                        });
                        Ok(())
                    }
                    Err(e) => {
                        if !is_namespace_terminating(&e) {
                            lock(events).push(Event {
                                warning: true,
                                reason: "FailedCreate".into(),
                                message: format!("Error creating: {}", api_message(&e)),
                            });
                        }
                        Err(e)
                    }
                }
            }
        })
        .await;
        {
            let mut pending = lock(&st.pending);
            let entry = pending.entry(key.clone()).or_default();
            entry.creates.extend(lock(&created).drain(..));
            entry.at = Some(Instant::now());
        }
        let events = std::mem::take(&mut *lock(&events));
        for ev in events {
            st.event(&job, &ev).await;
        }
        let missing = (creates.len() - ok) as i32;
        if missing > 0 {
            if let Some(a) = p.status.active.as_mut() {
                *a -= missing;
            }
            p.status_changed = true;
        }
        if let Some(e) = err.filter(|e| !is_namespace_terminating(e)) {
            first_error = Some(e.into());
        }
    }

    let mut job = job;
    if p.status_changed {
        let mut updated = job.clone();
        updated.status = Some(p.status.clone());
        match job_api
            .replace_status(&job.name_any(), &PostParams::default(), &updated)
            .await
        {
            Ok(j) => job = j,
            Err(e) if is_conflict(&e) => return Ok(Action::requeue(CONFLICT_RETRY)),
            Err(e) if is_not_found(&e) => return Ok(Action::await_change()),
            Err(e) => return Err(e.into()),
        }
    }
    lock(&st.backoff).insert(key.clone(), p.backoff.clone());

    let mut with_finalizer = p.uids_with_finalizer.clone();
    let removals: Vec<_> = futures::stream::iter(p.remove_finalizers.iter().cloned())
        .map(|(name, uid)| {
            let (pod_api, st, ns) = (pod_api.clone(), st.clone(), ns.clone());
            async move {
                let removed = remove_finalizer(&pod_api, &st, &ns, &name).await;
                (uid, removed)
            }
        })
        .buffer_unordered(PARALLEL_WRITES)
        .collect()
        .await;
    for (uid, removed) in removals {
        match removed {
            Ok(true) => {
                with_finalizer.remove(&uid);
                lock(&st.removed_finalizers)
                    .entry(key.clone())
                    .or_default()
                    .insert(uid.clone());
            }
            Ok(false) => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    let mut status = job.status.clone().unwrap_or_default();
    let (changed, finished_event) = core::finish(&mut status, &p, &with_finalizer, st.clock.now());
    if changed {
        let mut updated = job.clone();
        updated.status = Some(status);
        match job_api
            .replace_status(&job.name_any(), &PostParams::default(), &updated)
            .await
        {
            Ok(_) => {
                if let Some(ev) = finished_event {
                    st.event(&job, &ev).await;
                }
            }
            Err(e) if is_conflict(&e) => return Ok(Action::requeue(CONFLICT_RETRY)),
            Err(e) if is_not_found(&e) => return Ok(Action::await_change()),
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    Ok(match p.requeue_after {
        Some(d) => Action::requeue(d.max(Duration::from_millis(10))),
        None => Action::await_change(),
    })
}
