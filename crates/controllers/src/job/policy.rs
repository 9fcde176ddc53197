//! How a Job judges its finished pods (upstream's `pod_failure_policy.go`,
//! `success_policy.go` and `backoff_utils.go`): which pods count as failed, what the
//! `podFailurePolicy` says of a failed pod, whether the `successPolicy` is met, and how long
//! pod creation backs off after failures.

use std::time::Duration;

use k8s_openapi::api::batch::v1::{Job, PodFailurePolicy, SuccessPolicy};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use k8s_openapi::jiff::Timestamp;

use super::indexes::Intervals;

/// The first pod-creation backoff after a failure (upstream's `DefaultJobPodFailureBackOff`).
pub const POD_FAILURE_BACKOFF: Duration = Duration::from_secs(10);
/// The longest one (upstream's `MaxJobPodFailureBackOff`).
pub const MAX_POD_FAILURE_BACKOFF: Duration = Duration::from_secs(360);

/// What a `podFailurePolicy` rule does with a failed pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Fail the whole Job with this message (reason `PodFailurePolicy`).
    FailJob(String),
    /// Fail the pod's index (`backoffLimitPerIndex` only).
    FailIndex,
    /// The failure does not count towards `backoffLimit`.
    Ignore,
    /// The failure counts, as without a policy.
    Count,
}

impl Action {
    /// Whether the failure counts in `status.failed` and towards `backoffLimit`.
    pub fn counts(&self) -> bool {
        !matches!(self, Action::Ignore)
    }
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or_default()
}

pub fn succeeded(pod: &Pod) -> bool {
    phase(pod) == "Succeeded"
}

/// Only failed pods are replaced, not terminating ones (`podReplacementPolicy: Failed`, the
/// default with a `podFailurePolicy`).
pub fn only_replace_failed(job: &Job) -> bool {
    let spec = job.spec.as_ref();
    spec.and_then(|s| s.pod_replacement_policy.as_deref()) == Some("Failed")
        || spec.is_some_and(|s| s.pod_failure_policy.is_some())
}

/// Failed, or (unless only failed pods are replaced) deleted before succeeding: orphans that
/// never reach a phase count as failures (upstream's `isPodFailed`).
pub fn pod_failed(pod: &Pod, job: &Job) -> bool {
    if phase(pod) == "Failed" {
        return true;
    }
    if only_replace_failed(job) {
        return false;
    }
    pod.metadata.deletion_timestamp.is_some() && phase(pod) != "Succeeded"
}

/// Being deleted and not finished (upstream's terminating pods).
pub fn terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some() && !matches!(phase(pod), "Failed" | "Succeeded")
}

fn exit_code_match<'a>(
    statuses: &'a [ContainerStatus],
    req: &k8s_openapi::api::batch::v1::PodFailurePolicyOnExitCodesRequirement,
) -> Option<(&'a ContainerStatus, i32)> {
    statuses.iter().find_map(|cs| {
        let code = cs.state.as_ref()?.terminated.as_ref()?.exit_code;
        let named = req.container_name.as_ref().is_none_or(|n| *n == cs.name);
        // Exit code 0 is a success of that container, never a policy match.
        let hit = match req.operator.as_str() {
            "In" => req.values.contains(&code),
            "NotIn" => !req.values.contains(&code),
            _ => false,
        };
        (named && code != 0 && hit).then_some((cs, code))
    })
}

/// The action of the first `policy` rule that matches the failed `pod` (upstream's
/// `matchPodFailurePolicy`); None when no rule matches (the failure counts).
pub fn match_pod_failure_policy(policy: &PodFailurePolicy, pod: &Pod) -> Option<Action> {
    let status = pod.status.as_ref();
    let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    for (i, rule) in policy.rules.iter().enumerate() {
        let matched_msg = if let Some(req) = &rule.on_exit_codes {
            let init = status.and_then(|s| s.init_container_statuses.as_deref());
            let main = status.and_then(|s| s.container_statuses.as_deref());
            let hit = init
                .and_then(|c| exit_code_match(c, req))
                .or_else(|| main.and_then(|c| exit_code_match(c, req)));
            hit.map(|(cs, code)| {
                format!(
                    "Container {} for pod {ns}/{name} failed with exit code {code} matching {} rule at index {i}",
                    cs.name, rule.action
                )
            })
        } else if let Some(patterns) = &rule.on_pod_conditions {
            let conds = status
                .and_then(|s| s.conditions.as_deref())
                .unwrap_or_default();
            patterns.iter().find_map(|p| {
                conds
                    .iter()
                    .find(|c| c.type_ == p.type_ && c.status == p.status)
                    .map(|c| {
                        format!(
                            "Pod {ns}/{name} has condition {} matching {} rule at index {i}",
                            c.type_, rule.action
                        )
                    })
            })
        } else {
            None
        };
        let Some(msg) = matched_msg else { continue };
        return Some(match rule.action.as_str() {
            "FailJob" => Action::FailJob(msg),
            "FailIndex" => Action::FailIndex,
            "Ignore" => Action::Ignore,
            _ => Action::Count,
        });
    }
    None
}

/// Whether a failed pod counts towards `backoffLimit` under the Job's policy.
pub fn failure_counts(job: &Job, pod: &Pod) -> bool {
    match job
        .spec
        .as_ref()
        .and_then(|s| s.pod_failure_policy.as_ref())
    {
        Some(p) => match_pod_failure_policy(p, pod).is_none_or(|a| a.counts()),
        None => true,
    }
}

/// The message of the first failed pod a `FailJob` rule matches (upstream's
/// `getFailJobMessage`).
pub fn fail_job_message(job: &Job, pods: &[&Pod]) -> Option<String> {
    let policy = job.spec.as_ref()?.pod_failure_policy.as_ref()?;
    pods.iter().filter(|p| pod_failed(p, job)).find_map(|p| {
        match match_pod_failure_policy(policy, p) {
            Some(Action::FailJob(msg)) => Some(msg),
            _ => None,
        }
    })
}

/// The message of the first `successPolicy` rule the succeeded indexes meet (upstream's
/// `matchSuccessPolicy`).
pub fn match_success_policy(
    policy: Option<&SuccessPolicy>,
    completions: i64,
    succeeded: &Intervals,
) -> Option<String> {
    let policy = policy?;
    if succeeded.is_empty() {
        return None;
    }
    for (i, rule) in policy.rules.iter().enumerate() {
        let count = rule.succeeded_count.map(i64::from);
        let met = match &rule.succeeded_indexes {
            Some(s) => {
                let required = Intervals::parse(s, completions);
                if required.is_empty() {
                    continue;
                }
                let contains = required.overlap(succeeded);
                contains == required.total() || count.is_some_and(|c| contains >= c)
            }
            None => count.is_some_and(|c| succeeded.total() >= c),
        };
        if met {
            return Some(format!("Matched rules at index {i}"));
        }
    }
    None
}

/// When a pod finished (upstream's `getFinishedTime`): its last container's `finishedAt`
/// once all have terminated, else its `Ready=False` transition, else its deletion time minus
/// the grace period, else its creation.
pub fn finished_time(pod: &Pod) -> Option<Timestamp> {
    let status = pod.status.as_ref();
    let containers = status.and_then(|s| s.container_statuses.as_deref());
    if let Some(cs) = containers.filter(|c| !c.is_empty()) {
        let times: Option<Vec<Timestamp>> = cs
            .iter()
            .map(|c| {
                let t = c.state.as_ref()?.terminated.as_ref()?;
                t.finished_at.as_ref().map(|f| f.0)
            })
            .collect();
        if let Some(max) = times.and_then(|t| t.into_iter().max()) {
            return Some(max);
        }
    }
    let ready_false = status
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .find(|c| c.type_ == "Ready" && c.status == "False")
        .and_then(|c| c.last_transition_time.as_ref());
    if let Some(t) = ready_false {
        return Some(t.0);
    }
    if let Some(d) = &pod.metadata.deletion_timestamp {
        let grace = pod.metadata.deletion_grace_period_seconds.unwrap_or(0);
        return Some(d.0 - std::time::Duration::from_secs(grace.max(0) as u64));
    }
    pod.metadata.creation_timestamp.as_ref().map(|t| t.0)
}

/// Failures since the last success and when the last one happened (upstream's
/// `backoffRecord`), kept by the driver per Job.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackoffRecord {
    pub failures_after_last_success: u32,
    pub last_failure: Option<Timestamp>,
}

impl BackoffRecord {
    /// The record after these newly finished pods (upstream's `newBackoffRecord`): a success
    /// resets it, keeping only the failures that came after the last success.
    pub fn after(&self, new_succeeded: &[&Pod], new_failed: &[&Pod]) -> BackoffRecord {
        let mut failed: Vec<Timestamp> =
            new_failed.iter().filter_map(|p| finished_time(p)).collect();
        failed.sort();
        let last_success = new_succeeded.iter().filter_map(|p| finished_time(p)).max();
        match last_success {
            None if failed.is_empty() => self.clone(),
            None => BackoffRecord {
                failures_after_last_success: self.failures_after_last_success + failed.len() as u32,
                last_failure: failed.last().copied(),
            },
            Some(s) => {
                let after: Vec<&Timestamp> = failed.iter().filter(|t| **t > s).collect();
                BackoffRecord {
                    failures_after_last_success: after.len() as u32,
                    last_failure: after.last().map(|t| **t),
                }
            }
        }
    }

    /// How long pod creation still waits at `now`.
    pub fn remaining(&self, now: Timestamp) -> Duration {
        remaining_for(self.failures_after_last_success, self.last_failure, now)
    }
}

/// 10 s doubling per failure up to 6 min, from the last failure (upstream's
/// `getRemainingTimeForFailuresCount`).
pub fn remaining_for(failures: u32, last: Option<Timestamp>, now: Timestamp) -> Duration {
    let Some(last) = last.filter(|_| failures > 0) else {
        return Duration::ZERO;
    };
    let mut backoff = POD_FAILURE_BACKOFF;
    for _ in 1..failures {
        backoff *= 2;
        if backoff >= MAX_POD_FAILURE_BACKOFF {
            backoff = MAX_POD_FAILURE_BACKOFF;
            break;
        }
    }
    let elapsed = now.duration_since(last);
    let elapsed = Duration::try_from(elapsed).unwrap_or(Duration::ZERO);
    backoff.saturating_sub(elapsed)
}
