//! The Job controller's decisions, pure: from a Job, the pods it owns and `now`, what to
//! create and delete, which tracking finalizers to remove, and the status to write before and
//! after they are removed (upstream's `syncJob`, `manageJob` and
//! `trackJobStatusAndRemoveFinalizers`).
//!
//! Finished pods are counted exactly once: a pod the Job has not counted still carries the
//! `batch.kubernetes.io/job-tracking` finalizer. [`plan`] records such pods in
//! `status.uncountedTerminatedPods` (Indexed Jobs: in `completedIndexes`), the driver writes
//! that status, then removes their finalizers, then [`finish`] moves the uids whose
//! finalizer is gone into `succeeded`/`failed` and, once nothing is uncounted and no pod is
//! terminating, turns the interim `SuccessCriteriaMet`/`FailureTarget` condition into
//! `Complete`/`Failed`.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use k8s_openapi::api::batch::v1::{Job, JobCondition, JobSpec, JobStatus, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::indexes::{self, completion_index, Intervals};
use super::policy::{self, pod_failed, BackoffRecord};
use crate::controller_utils::{is_pod_active, is_pod_ready};

/// The finalizer on every pod the controller creates, until the pod is counted.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// At most this many pods are created or deleted per sync (upstream's
/// `MaxPodCreateDeletePerSync`).
pub const MAX_POD_CREATE_DELETE_PER_SYNC: usize = 500;
/// At most this many uids are uncounted at once (upstream's `MaxUncountedPods`).
pub const MAX_UNCOUNTED_PODS: usize = 500;

/// An event to record on the Job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub warning: bool,
    pub reason: String,
    pub message: String,
}

/// A pod to delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delete {
    pub name: String,
    pub uid: String,
    /// Scale-down and suspend remove the finalizer first, so the pod is not counted as a
    /// failure; a finishing Job keeps it, so the pod is counted as failed.
    pub remove_finalizer: bool,
}

/// What one sync does, in order: `deletes`, `creates`, write `status` (when
/// `status_changed`), remove the finalizers of `remove_finalizers`, then [`finish`].
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub deletes: Vec<Delete>,
    pub creates: Vec<Pod>,
    pub status: JobStatus,
    pub status_changed: bool,
    /// Pods (name, uid) whose finalizer is removed once the status is written.
    pub remove_finalizers: Vec<(String, String)>,
    /// Uids of the pods that carry the finalizer now.
    pub uids_with_finalizer: HashSet<String>,
    /// The terminal condition to add once nothing is uncounted or terminating.
    pub finished: Option<JobCondition>,
    /// Too many pods to count in one sync: the Job finishes at a later one.
    pub reached_max_uncounted: bool,
    pub backoff: BackoffRecord,
    pub events: Vec<Event>,
    pub requeue_after: Option<Duration>,
}

/// What [`plan`] looks at.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub job: &'a Job,
    /// The pods the Job controls.
    pub pods: &'a [&'a Pod],
    pub now: Timestamp,
    /// The Job's backoff record from earlier syncs.
    pub backoff: &'a BackoffRecord,
    /// Every create and delete of earlier syncs is in the cache.
    pub expectations_satisfied: bool,
    /// Pods whose finalizer this controller removed and the cache does not show yet.
    pub expected_rm_finalizers: &'a HashSet<String>,
}

pub fn has_tracking_finalizer(pod: &Pod) -> bool {
    pod.metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == TRACKING_FINALIZER)
}

pub(super) fn uid(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

pub(super) fn name(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

/// The condition of this type, if any.
pub fn condition<'a>(status: Option<&'a JobStatus>, type_: &str) -> Option<&'a JobCondition> {
    status?
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == type_)
}

fn condition_true(job: &Job, type_: &str) -> Option<JobCondition> {
    condition(job.status.as_ref(), type_)
        .filter(|c| c.status == "True")
        .cloned()
}

/// Complete or Failed (upstream's `IsJobFinished`).
pub fn is_finished(job: &Job) -> bool {
    condition_true(job, "Complete").is_some() || condition_true(job, "Failed").is_some()
}

fn new_condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> JobCondition {
    JobCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_probe_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// Sets condition `type_` (upstream's `ensureJobConditionStatus`): replaced when its status,
/// reason or message differ; a missing one is added unless it would be False. Returns whether
/// anything changed.
pub fn ensure_condition(
    conds: &mut Vec<JobCondition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> bool {
    if let Some(c) = conds.iter_mut().find(|c| c.type_ == type_) {
        let same = c.status == status
            && c.reason.as_deref() == Some(reason)
            && c.message.as_deref() == Some(message);
        if !same {
            *c = new_condition(type_, status, reason, message, now);
        }
        return !same;
    }
    if status == "False" {
        return false;
    }
    conds.push(new_condition(type_, status, reason, message, now));
    true
}

pub(super) fn suspended(spec: &JobSpec) -> bool {
    spec.suspend == Some(true)
}

pub(super) fn indexed(spec: &JobSpec) -> bool {
    spec.completion_mode.as_deref() == Some("Indexed")
}

/// `spec.completions` after upstream's defaulting: 1 when neither it nor parallelism is set.
pub(super) fn completions(spec: &JobSpec) -> Option<i64> {
    match (spec.completions, spec.parallelism) {
        (Some(c), _) => Some(i64::from(c)),
        (None, None) => Some(1),
        (None, Some(_)) => None,
    }
}

pub(super) fn parallelism(spec: &JobSpec) -> i64 {
    i64::from(spec.parallelism.unwrap_or(1).max(0))
}

fn backoff_limit(spec: &JobSpec) -> i64 {
    match (spec.backoff_limit, spec.backoff_limit_per_index) {
        (Some(b), _) => i64::from(b),
        (None, Some(_)) => i64::from(i32::MAX),
        (None, None) => 6,
    }
}

/// Restarts of the containers of running pods reach `backoffLimit` with `restartPolicy:
/// OnFailure` (upstream's `pastBackoffLimitOnFailure`).
fn past_backoff_limit_on_failure(spec: &JobSpec, pods: &[&Pod]) -> bool {
    let restart = spec
        .template
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref());
    if restart != Some("OnFailure") {
        return false;
    }
    let restarts: i64 = pods
        .iter()
        .filter_map(|p| p.status.as_ref())
        .filter(|s| matches!(s.phase.as_deref(), Some("Running") | Some("Pending")))
        .flat_map(|s| {
            s.init_container_statuses
                .iter()
                .flatten()
                .chain(s.container_statuses.iter().flatten())
        })
        .map(|c| i64::from(c.restart_count))
        .sum();
    match backoff_limit(spec) {
        0 => restarts > 0,
        limit => restarts >= limit,
    }
}

fn seconds_since(start: Option<&Time>, now: Timestamp) -> Option<i64> {
    start.map(|t| now.as_second() - t.0.as_second())
}

pub(super) fn valid_index(spec: &JobSpec, pod: &Pod) -> Option<i64> {
    completion_index(pod).filter(|i| completions(spec).is_some_and(|c| *i < c))
}

/// The newest failed, still tracked pod of each index that is neither succeeded nor failed:
/// its finalizer stays until its replacement exists, so the replacement can inherit its
/// failure count (upstream's `getPodsWithDelayedDeletionPerIndex`).
fn delayed_deletion_per_index<'a>(
    job: &Job,
    spec: &JobSpec,
    tracked: &[&'a Pod],
    active: &[&Pod],
    succeeded: &Intervals,
    failed: &Intervals,
) -> BTreeMap<i64, &'a Pod> {
    let mut out: BTreeMap<i64, &Pod> = BTreeMap::new();
    for p in tracked.iter().filter(|p| pod_failed(p, job)) {
        let Some(ix) = valid_index(spec, p) else {
            continue;
        };
        if succeeded.has(ix)
            || failed.has(ix)
            || active.iter().any(|a| completion_index(a) == Some(ix))
        {
            continue;
        }
        let newer = out
            .get(&ix)
            .is_none_or(|q| policy::finished_time(q) < policy::finished_time(p));
        if newer {
            out.insert(ix, p);
        }
    }
    out
}

pub(super) fn annotation_count(pod: &Pod, key: &str) -> i64 {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A failed pod fails its index: a `FailIndex` rule, or counted failures beyond
/// `backoffLimitPerIndex` (upstream's `isIndexFailed`).
fn index_failed(job: &Job, spec: &JobSpec, pod: &Pod) -> bool {
    if !pod_failed(pod, job) {
        return false;
    }
    if let Some(p) = &spec.pod_failure_policy {
        match policy::match_pod_failure_policy(p, pod) {
            Some(policy::Action::FailIndex) => return true,
            Some(a) if !a.counts() => return false,
            _ => {}
        }
    }
    let limit = i64::from(spec.backoff_limit_per_index.unwrap_or(0));
    annotation_count(pod, indexes::INDEX_FAILURE_COUNT_KEY) >= limit
}

/// Decides one sync of `inp.job`.
pub fn plan(inp: &Input) -> Plan {
    let job = inp.job;
    let now = inp.now;
    let spec = job.spec.clone().unwrap_or_default();
    let original = job.status.clone().unwrap_or_default();
    let mut status = original.clone();
    let mut p = Plan {
        backoff: inp.backoff.clone(),
        ..Default::default()
    };
    let tracked: Vec<&Pod> = inp
        .pods
        .iter()
        .copied()
        .filter(|pod| {
            has_tracking_finalizer(pod) && !inp.expected_rm_finalizers.contains(&uid(pod))
        })
        .collect();
    p.uids_with_finalizer = tracked.iter().map(|pod| uid(pod)).collect();
    if is_finished(job) {
        // Counted when the Job finished; what still has the finalizer only needs it gone.
        p.remove_finalizers = tracked.iter().map(|pod| (name(pod), uid(pod))).collect();
        p.status = status;
        return p;
    }
    let is_indexed = indexed(&spec);
    let completions_n = completions(&spec);
    let uncounted = status
        .uncounted_terminated_pods
        .get_or_insert_with(Default::default)
        .clone();
    let unc_succeeded: HashSet<&String> = uncounted.succeeded.iter().flatten().collect();
    let unc_failed: HashSet<&String> = uncounted.failed.iter().flatten().collect();
    let active_pods: Vec<&Pod> = inp
        .pods
        .iter()
        .copied()
        .filter(|pod| is_pod_active(pod))
        .collect();
    let mut active = active_pods.len() as i64;
    let index_ok = |pod: &Pod| !is_indexed || valid_index(&spec, pod).is_some();
    let new_succeeded: Vec<&Pod> = tracked
        .iter()
        .copied()
        .filter(|pod| !unc_succeeded.contains(&uid(pod)) && index_ok(pod) && policy::succeeded(pod))
        .collect();
    let new_failed: Vec<&Pod> = tracked
        .iter()
        .copied()
        .filter(|pod| !unc_failed.contains(&uid(pod)) && index_ok(pod) && pod_failed(pod, job))
        .collect();
    let mut succeeded = i64::from(status.succeeded.unwrap_or(0))
        + new_succeeded.len() as i64
        + unc_succeeded.len() as i64;
    let failed = i64::from(status.failed.unwrap_or(0))
        + new_failed
            .iter()
            .filter(|pod| policy::failure_counts(job, pod))
            .count() as i64
        + unc_failed.len() as i64;
    let mut ready = active_pods.iter().filter(|pod| is_pod_ready(pod)).count() as i64;
    let mut terminating = inp
        .pods
        .iter()
        .filter(|pod| policy::terminating(pod))
        .count() as i64;
    if status.start_time.is_none() && !suspended(&spec) {
        status.start_time = Some(Time(now));
    }
    p.backoff = inp.backoff.after(&new_succeeded, &new_failed);

    // The terminal condition this sync works towards; an earlier sync's interim condition
    // already decided it.
    let mut finished = condition_true(job, "SuccessCriteriaMet");
    if finished.is_none() {
        if let Some(target) = condition_true(job, "FailureTarget") {
            finished = Some(failed_for_target(&target, now));
        } else if let Some(msg) = policy::fail_job_message(job, inp.pods) {
            finished = Some(new_condition(
                "FailureTarget",
                "True",
                "PodFailurePolicy",
                &msg,
                now,
            ));
        }
    }
    if finished.is_none() {
        let deadline = spec.active_deadline_seconds;
        let elapsed = seconds_since(status.start_time.as_ref(), now);
        if failed > backoff_limit(&spec) || past_backoff_limit_on_failure(&spec, &active_pods) {
            finished = Some(failure_target(
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
                now,
            ));
        } else if let (Some(d), Some(e), false) = (deadline, elapsed, suspended(&spec)) {
            if e >= d {
                finished = Some(failure_target(
                    "DeadlineExceeded",
                    "Job was active longer than specified deadline",
                    now,
                ));
            } else {
                p.requeue_after = Some(Duration::from_secs((d - e) as u64));
            }
        }
    }

    let mut succeeded_indexes = Intervals::default();
    let mut failed_indexes: Option<Intervals> = None;
    let mut delayed: BTreeMap<i64, &Pod> = BTreeMap::new();
    if let (true, Some(c)) = (is_indexed, completions_n) {
        let prev = Intervals::parse(status.completed_indexes.as_deref().unwrap_or_default(), c);
        let new_ix = tracked
            .iter()
            .filter(|pod| policy::succeeded(pod))
            .filter_map(|pod| valid_index(&spec, pod));
        succeeded_indexes = prev.with(new_ix);
        succeeded = succeeded_indexes.total();
        if spec.backoff_limit_per_index.is_some() {
            let prev_failed =
                Intervals::parse(status.failed_indexes.as_deref().unwrap_or_default(), c);
            let fi = prev_failed.with(
                tracked
                    .iter()
                    .filter(|pod| index_failed(job, &spec, pod))
                    .filter_map(|pod| valid_index(&spec, pod)),
            );
            if finished.is_none() {
                if spec
                    .max_failed_indexes
                    .is_some_and(|m| fi.total() > i64::from(m))
                {
                    finished = Some(failure_target(
                        "MaxFailedIndexesExceeded",
                        "Job has exceeded the specified maximal number of failed indexes",
                        now,
                    ));
                } else if fi.total() > 0 && fi.total() + succeeded_indexes.total() >= c {
                    finished = Some(failure_target(
                        "FailedIndexes",
                        "Job has failed indexes",
                        now,
                    ));
                }
            }
            delayed = delayed_deletion_per_index(
                job,
                &spec,
                &tracked,
                &active_pods,
                &succeeded_indexes,
                &fi,
            );
            failed_indexes = Some(fi);
        }
        if finished.is_none() && condition_true(job, "SuccessCriteriaMet").is_none() {
            if let Some(msg) =
                policy::match_success_policy(spec.success_policy.as_ref(), c, &succeeded_indexes)
            {
                finished = Some(new_condition(
                    "SuccessCriteriaMet",
                    "True",
                    "SuccessPolicy",
                    &msg,
                    now,
                ));
            }
        }
    }

    if finished.is_some() {
        // A finishing Job stops its pods; they keep the finalizer and count as failed.
        for pod in &active_pods {
            p.deletes.push(Delete {
                name: name(pod),
                uid: uid(pod),
                remove_finalizer: false,
            });
        }
        ready -= active_pods.iter().filter(|pod| is_pod_ready(pod)).count() as i64;
        terminating += active;
        active = 0;
        if !inp.expectations_satisfied {
            // Pods the cache does not show yet may still need counting.
            finished = None;
        }
    } else {
        let manage = inp.expectations_satisfied && job.metadata.deletion_timestamp.is_none();
        if manage {
            let ctx = super::manage::Manage {
                job,
                spec: &spec,
                active_pods: &active_pods,
                succeeded,
                succeeded_indexes: &succeeded_indexes,
                failed_indexes: failed_indexes.as_ref(),
                delayed: &delayed,
                terminating,
                now,
            };
            let m = super::manage::manage_job(&ctx, &p.backoff);
            let deleted = m.deletes.len() as i64;
            ready -= m.deleted_ready;
            terminating += deleted;
            active = active - deleted + m.creates.len() as i64;
            p.deletes.extend(m.deletes);
            p.creates = m.creates;
            if let Some(d) = m.requeue_after {
                p.requeue_after = Some(p.requeue_after.map_or(d, |r| r.min(d)));
            }
        }
        let complete = match completions_n {
            None => succeeded > 0 && active == 0,
            Some(c) => succeeded >= c && active == 0,
        };
        let conds = status.conditions.get_or_insert_with(Vec::new);
        if complete {
            finished = Some(new_condition(
                "SuccessCriteriaMet",
                "True",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
                now,
            ));
        } else if manage && suspended(&spec) {
            if ensure_condition(
                conds,
                "Suspended",
                "True",
                "JobSuspended",
                "Job suspended",
                now,
            ) {
                p.events.push(normal("Suspended", "Job suspended"));
            }
        } else if manage
            && ensure_condition(
                conds,
                "Suspended",
                "False",
                "JobResumed",
                "Job resumed",
                now,
            )
        {
            p.events.push(normal("Resumed", "Job resumed"));
            // The deadline counts the time the Job is continuously active.
            status.start_time = Some(Time(now));
        }
        if status.conditions.as_ref().is_some_and(|c| c.is_empty()) {
            status.conditions = None;
        }
    }
    status.active = Some(active as i32);
    status.ready = Some(ready.max(0) as i32);
    status.terminating = Some(terminating as i32);

    track(
        &mut p,
        &mut status,
        Track {
            job,
            spec: &spec,
            tracked: &tracked,
            finished,
            prev_succeeded_indexes: if is_indexed {
                Intervals::parse(
                    original.completed_indexes.as_deref().unwrap_or_default(),
                    completions_n.unwrap_or(0),
                )
            } else {
                Intervals::default()
            },
            succeeded_indexes,
            failed_indexes,
            delayed: &delayed,
            now,
        },
    );
    p.status_changed = Some(&status) != job.status.as_ref();
    p.status = status;
    p
}

fn normal(reason: &str, message: &str) -> Event {
    Event {
        warning: false,
        reason: reason.into(),
        message: message.into(),
    }
}

fn failure_target(reason: &str, message: &str, now: Timestamp) -> JobCondition {
    new_condition("FailureTarget", "True", reason, message, now)
}

fn failed_for_target(target: &JobCondition, now: Timestamp) -> JobCondition {
    new_condition(
        "Failed",
        "True",
        target.reason.as_deref().unwrap_or_default(),
        target.message.as_deref().unwrap_or_default(),
        now,
    )
}

struct Track<'a> {
    job: &'a Job,
    spec: &'a JobSpec,
    tracked: &'a [&'a Pod],
    finished: Option<JobCondition>,
    prev_succeeded_indexes: Intervals,
    succeeded_indexes: Intervals,
    failed_indexes: Option<Intervals>,
    delayed: &'a BTreeMap<i64, &'a Pod>,
    now: Timestamp,
}

/// Moves uncounted uids whose pod no longer carries the finalizer (or is gone) into the
/// counters (upstream's `cleanUncountedPodsWithoutFinalizers`). Returns whether anything moved.
pub fn clean_uncounted(status: &mut JobStatus, with_finalizer: &HashSet<String>) -> bool {
    let unc = status
        .uncounted_terminated_pods
        .get_or_insert_with(UncountedTerminatedPods::default);
    let mut moved = (0, 0);
    for (list, n) in [
        (&mut unc.succeeded, &mut moved.0),
        (&mut unc.failed, &mut moved.1),
    ] {
        if let Some(l) = list.as_mut() {
            let before = l.len();
            l.retain(|u| with_finalizer.contains(u));
            *n = (before - l.len()) as i32;
            if l.is_empty() {
                *list = None;
            }
        }
    }
    if moved.0 > 0 {
        status.succeeded = Some(status.succeeded.unwrap_or(0) + moved.0);
    }
    if moved.1 > 0 {
        status.failed = Some(status.failed.unwrap_or(0) + moved.1);
    }
    moved != (0, 0)
}

/// The counting half of upstream's `trackJobStatusAndRemoveFinalizers`, up to the first
/// status write: which pods lose their finalizer and what is recorded of them first.
fn track(p: &mut Plan, status: &mut JobStatus, t: Track) {
    let Track { job, spec, .. } = t;
    clean_uncounted(status, &p.uids_with_finalizer);
    let is_indexed = indexed(spec);
    let finishing_failed = t
        .finished
        .as_ref()
        .is_some_and(|c| c.type_ != "SuccessCriteriaMet");
    let mut pods: Vec<&Pod> = t.tracked.to_vec();
    if is_indexed {
        pods.sort_by_key(|pod| completion_index(pod).unwrap_or(i64::MAX));
    }
    let unc = status
        .uncounted_terminated_pods
        .get_or_insert_with(Default::default);
    let mut unc_succeeded = unc.succeeded.take().unwrap_or_default();
    let mut unc_failed = unc.failed.take().unwrap_or_default();
    let mut new_indexes = Vec::new();
    for pod in pods {
        let pod_uid = uid(pod);
        let considered_failed = pod_failed(pod, job);
        let removable = job.metadata.deletion_timestamp.is_some()
            || t.finished.is_some()
            || policy::succeeded(pod)
            || (considered_failed
                && completion_index(pod)
                    .and_then(|ix| t.delayed.get(&ix))
                    .is_none_or(|d| uid(d) != pod_uid));
        if !removable {
            continue;
        }
        p.remove_finalizers.push((name(pod), pod_uid.clone()));
        if policy::succeeded(pod) && !unc_failed.contains(&pod_uid) {
            if is_indexed {
                let counted = valid_index(spec, pod).filter(|ix| {
                    !t.prev_succeeded_indexes.has(*ix)
                        && t.failed_indexes.as_ref().is_none_or(|f| !f.has(*ix))
                });
                new_indexes.extend(counted);
            } else if !unc_succeeded.contains(&pod_uid) {
                unc_succeeded.push(pod_uid);
            }
        } else if considered_failed || finishing_failed {
            let ix_ok = !is_indexed || valid_index(spec, pod).is_some();
            if !unc_failed.contains(&pod_uid) && ix_ok && policy::failure_counts(job, pod) {
                unc_failed.push(pod_uid);
            }
        }
        if new_indexes.len() + unc_succeeded.len() + unc_failed.len() >= MAX_UNCOUNTED_PODS {
            p.reached_max_uncounted = true;
            break;
        }
    }
    let unc = status
        .uncounted_terminated_pods
        .get_or_insert_with(Default::default);
    unc.succeeded = (!unc_succeeded.is_empty()).then_some(unc_succeeded);
    unc.failed = (!unc_failed.is_empty()).then_some(unc_failed);
    if is_indexed {
        let all = t.succeeded_indexes.with(new_indexes);
        status.succeeded = Some(all.total() as i32);
        status.completed_indexes = Some(all.to_string());
        status.failed_indexes = t.failed_indexes.as_ref().map(|f| f.to_string());
    }
    // The interim condition is written with the counts, before finalizers go.
    let mut finished = t.finished;
    if let Some(c) = finished.clone() {
        let conds = status.conditions.get_or_insert_with(Vec::new);
        if c.type_ == "FailureTarget" {
            conds.push(c.clone());
            finished = Some(failed_for_target(&c, t.now));
        } else if c.type_ == "SuccessCriteriaMet" {
            if !conds
                .iter()
                .any(|x| x.type_ == "SuccessCriteriaMet" && x.status == "True")
            {
                conds.push(c.clone());
            }
            let reason = c.reason.as_deref().unwrap_or_default();
            let message = c.message.as_deref().unwrap_or_default();
            finished = Some(new_condition("Complete", "True", reason, message, t.now));
        }
    }
    p.finished = finished;
}

/// After the finalizers were removed (`with_finalizer`: the uids that still carry it): counts
/// the pods that lost it and, when nothing is uncounted or terminating, adds the terminal
/// condition (upstream's `enactJobFinished`). Returns whether the status changed and the
/// event of a Job that finished.
pub fn finish(
    status: &mut JobStatus,
    plan: &Plan,
    with_finalizer: &HashSet<String>,
    now: Timestamp,
) -> (bool, Option<Event>) {
    let changed = clean_uncounted(status, with_finalizer);
    let Some(cond) = plan
        .finished
        .as_ref()
        .filter(|_| !plan.reached_max_uncounted)
    else {
        return (changed, None);
    };
    let unc = status.uncounted_terminated_pods.as_ref();
    let uncounted = unc.map_or(0, |u| {
        u.succeeded.as_ref().map_or(0, Vec::len) + u.failed.as_ref().map_or(0, Vec::len)
    });
    if uncounted > 0 || status.terminating.unwrap_or(0) > 0 {
        return (changed, None);
    }
    let reason = cond.reason.as_deref().unwrap_or_default();
    let message = cond.message.as_deref().unwrap_or_default();
    let conds = status.conditions.get_or_insert_with(Vec::new);
    ensure_condition(conds, &cond.type_, &cond.status, reason, message, now);
    let ev = if cond.type_ == "Complete" {
        status.completion_time = Some(Time(now));
        normal("Completed", "Job completed")
    } else {
        Event {
            warning: true,
            reason: reason.into(),
            message: message.into(),
        }
    };
    (true, Some(ev))
}
