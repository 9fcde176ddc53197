//! Upstream's `manageJob`: the pods a running Job creates or deletes in one sync.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

use super::core::{
    annotation_count, completions, indexed, name, parallelism, suspended, uid, valid_index, Delete,
    MAX_POD_CREATE_DELETE_PER_SYNC, TRACKING_FINALIZER,
};
use super::indexes::{self, completion_index, Intervals};
use super::policy::{self, BackoffRecord};
use crate::controller_utils::{controller_ref, is_pod_ready, pod_from_template};

pub(super) struct Manage<'a> {
    pub(super) job: &'a Job,
    pub(super) spec: &'a JobSpec,
    pub(super) active_pods: &'a [&'a Pod],
    pub(super) succeeded: i64,
    pub(super) succeeded_indexes: &'a Intervals,
    pub(super) failed_indexes: Option<&'a Intervals>,
    pub(super) delayed: &'a BTreeMap<i64, &'a Pod>,
    pub(super) terminating: i64,
    pub(super) now: Timestamp,
}

#[derive(Default)]
pub(super) struct Managed {
    pub(super) deletes: Vec<Delete>,
    pub(super) deleted_ready: i64,
    pub(super) creates: Vec<Pod>,
    pub(super) requeue_after: Option<Duration>,
}

fn delete_for_manage(m: &mut Managed, pods: &[&Pod]) {
    for pod in pods.iter().take(MAX_POD_CREATE_DELETE_PER_SYNC) {
        m.deleted_ready += i64::from(is_pod_ready(pod));
        m.deletes.push(Delete {
            name: name(pod),
            uid: uid(pod),
            remove_finalizer: true,
        });
    }
}

/// Active pods to remove, at least `at_least`: for Indexed Jobs first those with an index out
/// of range or a duplicate index (the older of two stays), then by upstream's deletion rank
/// (upstream's `activePodsForRemoval`).
fn active_pods_for_removal<'a>(ctx: &Manage<'a>, at_least: usize) -> Vec<&'a Pod> {
    let mut rm: Vec<&Pod> = Vec::new();
    let mut left: Vec<&Pod> = Vec::new();
    if indexed(ctx.spec) {
        let mut by_index: BTreeMap<i64, Vec<&Pod>> = BTreeMap::new();
        for pod in ctx.active_pods {
            match valid_index(ctx.spec, pod) {
                Some(ix) if ctx.failed_indexes.is_none_or(|f| !f.has(ix)) => {
                    by_index.entry(ix).or_default().push(pod)
                }
                _ => rm.push(pod),
            }
        }
        for (_, mut pods) in by_index {
            pods.sort_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0));
            left.push(pods.remove(0));
            rm.extend(pods);
        }
    } else {
        left = ctx.active_pods.to_vec();
    }
    if rm.len() < at_least {
        let more = crate::controller_utils::pods_to_delete(
            &left,
            ctx.active_pods,
            at_least - rm.len(),
            ctx.now,
        );
        rm.extend(more);
    }
    rm
}

/// Upstream's `manageJob`: delete every active pod of a suspended Job; otherwise bring the
/// active pods to `min(parallelism, completions - succeeded)`, deletions first, creations
/// after the failure backoff.
pub(super) fn manage_job(ctx: &Manage, backoff: &BackoffRecord) -> Managed {
    let mut m = Managed::default();
    let spec = ctx.spec;
    let active = ctx.active_pods.len() as i64;
    if suspended(spec) {
        delete_for_manage(&mut m, ctx.active_pods);
        return m;
    }
    let want = match completions(spec) {
        None if ctx.succeeded > 0 => active,
        None => parallelism(spec),
        Some(c) => (c - ctx.succeeded).min(parallelism(spec)).max(0),
    };
    let rm = active_pods_for_removal(ctx, (active - want).max(0) as usize);
    if !rm.is_empty() {
        delete_for_manage(&mut m, &rm);
        return m;
    }
    let terminating = if policy::only_replace_failed(ctx.job) {
        ctx.terminating
    } else {
        0
    };
    let diff = (want - terminating - active).min(MAX_POD_CREATE_DELETE_PER_SYNC as i64);
    if diff <= 0 {
        return m;
    }
    if spec.backoff_limit_per_index.is_none() {
        let wait = backoff.remaining(ctx.now);
        if !wait.is_zero() {
            m.requeue_after = Some(wait);
            return m;
        }
    }
    let mut template = spec.template.clone();
    if indexed(spec) {
        indexes::add_completion_index_env(&mut template);
    }
    let finalizers = template
        .metadata
        .get_or_insert_with(Default::default)
        .finalizers
        .get_or_insert_with(Vec::new);
    if !finalizers.iter().any(|f| f == TRACKING_FINALIZER) {
        finalizers.push(TRACKING_FINALIZER.into());
    }
    let ns = ctx.job.metadata.namespace.clone().unwrap_or_default();
    let job_name = ctx.job.metadata.name.clone().unwrap_or_default();
    let owner = || controller_ref(&ctx.job.metadata, "batch/v1", "Job");
    let Some(c) = completions(spec).filter(|_| indexed(spec)) else {
        m.creates = (0..diff)
            .map(|_| pod_from_template(&template, &ns, owner()))
            .collect();
        return m;
    };
    let busy: HashSet<i64> = ctx
        .active_pods
        .iter()
        .filter_map(|p| completion_index(p))
        .collect();
    let pending = (0..c).filter(|ix| {
        !ctx.succeeded_indexes.has(*ix)
            && !busy.contains(ix)
            && ctx.failed_indexes.is_none_or(|f| !f.has(*ix))
    });
    let mut min_wait: Option<Duration> = None;
    for ix in pending.take(diff as usize) {
        let last_failed = ctx.delayed.get(&ix).copied();
        if spec.backoff_limit_per_index.is_some() {
            let wait = last_failed.map_or(Duration::ZERO, |lf| {
                let count = annotation_count(lf, indexes::INDEX_FAILURE_COUNT_KEY) + 1;
                policy::remaining_for(count as u32, policy::finished_time(lf), ctx.now)
            });
            if !wait.is_zero() {
                min_wait = Some(min_wait.map_or(wait, |w| w.min(wait)));
                continue;
            }
        }
        let mut pod = pod_from_template(&template, &ns, owner());
        indexes::stamp_index(&mut pod, &job_name, ix);
        if spec.backoff_limit_per_index.is_some() {
            let (mut failures, mut ignored) = (0, 0);
            if let Some(lf) = last_failed {
                failures = annotation_count(lf, indexes::INDEX_FAILURE_COUNT_KEY);
                ignored = annotation_count(lf, indexes::INDEX_IGNORED_FAILURE_COUNT_KEY);
                if policy::failure_counts(ctx.job, lf) {
                    failures += 1;
                } else {
                    ignored += 1;
                }
            }
            let a = pod
                .metadata
                .annotations
                .get_or_insert_with(Default::default);
            a.insert(
                indexes::INDEX_FAILURE_COUNT_KEY.into(),
                failures.to_string(),
            );
            if ignored > 0 {
                a.insert(
                    indexes::INDEX_IGNORED_FAILURE_COUNT_KEY.into(),
                    ignored.to_string(),
                );
            }
        }
        m.creates.push(pod);
    }
    if m.creates.is_empty() {
        m.requeue_after = min_wait;
    }
    m
}
