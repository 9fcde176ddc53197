//! The namespace controller's pure core: what remains of a resource's content after deleting
//! it, how long to wait for it, and the status conditions upstream's
//! `namespaceConditionUpdater` reports (types, reasons and messages as upstream's).

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, NamespaceCondition, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

/// The finalizer in `spec.finalizers` the namespace controller owns.
pub const FINALIZER: &str = "kubernetes";

/// The wait assumed for content held by finalizers (upstream's `finalizerEstimateSeconds`).
pub const FINALIZER_ESTIMATE_SECONDS: i64 = 15;

pub const DISCOVERY_FAILURE: &str = "NamespaceDeletionDiscoveryFailure";
pub const GV_PARSING_FAILURE: &str = "NamespaceDeletionGroupVersionParsingFailure";
pub const CONTENT_FAILURE: &str = "NamespaceDeletionContentFailure";
pub const CONTENT_REMAINING: &str = "NamespaceContentRemaining";
pub const FINALIZERS_REMAINING: &str = "NamespaceFinalizersRemaining";

/// The condition types the controller maintains, in upstream's order, with the reason and
/// message each has when all is well.
pub const CONDITIONS: &[(&str, &str, &str)] = &[
    (
        DISCOVERY_FAILURE,
        "ResourcesDiscovered",
        "All resources successfully discovered",
    ),
    (
        GV_PARSING_FAILURE,
        "ParsedGroupVersions",
        "All legacy kube types successfully parsed",
    ),
    (
        CONTENT_FAILURE,
        "ContentDeleted",
        "All content successfully deleted, may be waiting on finalization",
    ),
    (
        CONTENT_REMAINING,
        "ContentRemoved",
        "All content successfully removed",
    ),
    (
        FINALIZERS_REMAINING,
        "ContentHasNoFinalizers",
        "All content-preserving finalizers finished",
    ),
];

/// What is left of one resource's content after deleting it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Remaining {
    /// Seconds to wait before looking again.
    pub estimate: i64,
    pub count: usize,
    /// Finalizer → items holding it.
    pub finalizers: BTreeMap<String, usize>,
}

/// Upstream's `estimateGracefulTerminationForPods`: the longest grace period of the pods that
/// have not finished.
pub fn pod_estimate(pods: &[Pod]) -> i64 {
    pods.iter()
        .filter(|p| {
            !matches!(
                p.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded" | "Failed")
            )
        })
        .filter_map(|p| p.spec.as_ref()?.termination_grace_period_seconds)
        .max()
        .unwrap_or(0)
        .max(0)
}

/// Upstream's check after deleting a resource's content: `items` are what a list still
/// returns, `estimate` the graceful-termination estimate. Remaining items are expected when
/// something will remove them (a grace period, finalizers); otherwise it is an error, with
/// upstream's message (`gvr` as Go prints a GroupVersionResource).
pub fn remaining(
    items: &[&ObjectMeta],
    estimate: i64,
    namespace: &str,
    gvr: &str,
) -> (Remaining, Option<String>) {
    if items.is_empty() {
        return (Remaining::default(), None);
    }
    let mut finalizers = BTreeMap::new();
    for f in items.iter().flat_map(|m| m.finalizers.iter().flatten()) {
        *finalizers.entry(f.clone()).or_insert(0) += 1;
    }
    let mut r = Remaining {
        estimate,
        count: items.len(),
        finalizers,
    };
    if estimate != 0 {
        return (r, None);
    }
    if !r.finalizers.is_empty() {
        r.estimate = FINALIZER_ESTIMATE_SECONDS;
        return (r, None);
    }
    (
        r,
        Some(format!(
            "unexpected items still remain in namespace: {namespace} for gvr: {gvr}"
        )),
    )
}

/// Go's `GroupVersionResource.String()`: `apps/v1, Resource=deployments`, `/v1, Resource=pods`.
pub fn gvr_string(group: &str, version: &str, resource: &str) -> String {
    format!("{group}/{version}, Resource={resource}")
}

/// What one pass over a namespace's content found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pass {
    /// Upstream's `ErrGroupDiscoveryFailed` text, or another discovery error's.
    pub discovery_error: Option<String>,
    /// How many group versions failed, when the error is a partial discovery failure.
    pub discovery_failed_groups: usize,
    /// Errors deleting content, one per resource.
    pub content_errors: Vec<String>,
    /// `resource.group` → items remaining.
    pub remaining: BTreeMap<String, usize>,
    /// Finalizer → items remaining that hold it.
    pub finalizers: BTreeMap<String, usize>,
    /// Seconds until the remaining content is expected gone.
    pub estimate: i64,
}

impl Pass {
    /// Adds one resource's result.
    pub fn add(&mut self, group_resource: String, r: Remaining, error: Option<String>) {
        self.estimate = self.estimate.max(r.estimate);
        if r.count > 0 {
            *self.remaining.entry(group_resource).or_insert(0) += r.count;
        }
        for (f, n) in r.finalizers {
            *self.finalizers.entry(f).or_insert(0) += n;
        }
        self.content_errors.extend(error);
    }

    /// The conditions upstream reports for this pass: (type, status, reason, message).
    pub fn conditions(&self) -> Vec<(&'static str, &'static str, String, String)> {
        let mut out = Vec::new();
        for (ty, ok_reason, ok_message) in CONDITIONS {
            let failing = match *ty {
                DISCOVERY_FAILURE => self.discovery_error.as_ref().map(|e| {
                    let msg = match self.discovery_failed_groups {
                        0 => e.clone(),
                        n => format!("Discovery failed for some groups, {n} failing: {e}"),
                    };
                    ("DiscoveryFailed", msg)
                }),
                CONTENT_FAILURE if !self.content_errors.is_empty() => {
                    let mut msgs = self.content_errors.clone();
                    msgs.sort();
                    Some((
                        "ContentDeletionFailed",
                        format!(
                            "Failed to delete all resource types, {} remaining: {}",
                            msgs.len(),
                            msgs.join(", ")
                        ),
                    ))
                }
                CONTENT_REMAINING if !self.remaining.is_empty() => {
                    let parts: Vec<String> = self
                        .remaining
                        .iter()
                        .map(|(gr, n)| format!("{gr} has {n} resource instances"))
                        .collect();
                    Some((
                        "SomeResourcesRemain",
                        format!("Some resources are remaining: {}", parts.join(", ")),
                    ))
                }
                FINALIZERS_REMAINING if !self.finalizers.is_empty() => {
                    let parts: Vec<String> = self
                        .finalizers
                        .iter()
                        .map(|(f, n)| format!("{f} in {n} resource instances"))
                        .collect();
                    Some((
                        "SomeFinalizersRemain",
                        format!(
                            "Some content in the namespace has finalizers remaining: {}",
                            parts.join(", ")
                        ),
                    ))
                }
                _ => None,
            };
            out.push(match failing {
                Some((reason, msg)) => (*ty, "True", reason.to_string(), msg),
                None => (*ty, "False", ok_reason.to_string(), ok_message.to_string()),
            });
        }
        out
    }

    /// When to look again: upstream's `estimate/2 + 1` seconds.
    pub fn requeue_after(&self) -> Option<Duration> {
        (self.estimate > 0).then(|| Duration::from_secs((self.estimate / 2 + 1) as u64))
    }
}

/// Upstream's `updateConditions`: `existing` with each maintained type set to `new`'s
/// status, reason and message (the transition time moves only when the status does).
/// `None` when nothing changes.
pub fn update_conditions(
    existing: &[NamespaceCondition],
    new: &[(&'static str, &'static str, String, String)],
    now: &Time,
) -> Option<Vec<NamespaceCondition>> {
    let mut out = existing.to_vec();
    let mut changed = false;
    for (ty, status, reason, message) in new {
        match out.iter_mut().find(|c| c.type_ == *ty) {
            None => {
                out.push(NamespaceCondition {
                    type_: ty.to_string(),
                    status: status.to_string(),
                    reason: Some(reason.clone()),
                    message: Some(message.clone()),
                    last_transition_time: Some(now.clone()),
                });
                changed = true;
            }
            Some(c) => {
                let same = c.status == *status
                    && c.reason.as_deref() == Some(reason)
                    && c.message.as_deref() == Some(message);
                if !same {
                    if c.status != *status {
                        c.last_transition_time = Some(now.clone());
                    }
                    c.status = status.to_string();
                    c.reason = Some(reason.clone());
                    c.message = Some(message.clone());
                    changed = true;
                }
            }
        }
    }
    changed.then_some(out)
}

/// The namespace's `spec.finalizers` without ours, if ours is there (else it is finalized
/// as far as this controller goes).
pub fn finalized_spec(ns: &Namespace) -> Option<Vec<String>> {
    let finalizers = ns.spec.as_ref()?.finalizers.as_ref()?;
    if !finalizers.iter().any(|f| f == FINALIZER) {
        return None;
    }
    let mut left: Vec<String> = finalizers
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    left.sort();
    left.dedup();
    Some(left)
}

#[cfg(test)]
#[path = "deletion_tests.rs"]
mod tests;
