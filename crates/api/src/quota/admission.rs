//! ResourceQuota admission (upstream's `apiserver/pkg/admission/plugin/resourcequota`
//! `CheckRequest`): which quotas a request is charged to, the refusals, and the new
//! `status.used` of each quota it changes.

use jiff::Timestamp;
use serde_json::Value;

use super::evaluators::{
    constraints, handles, ignored_resource, matching_resources, quota_matches, usage_at,
};
use super::resources::{
    add, exceeding, mask, negative_names, pretty_names, pretty_print, remove_zeros, resource_list,
    subtract_non_negative, ResourceList,
};
use super::{Operation, QuotaError};

fn quota_name(quota: &Value) -> String {
    quota
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// Charges `delta` to one quota: the hard limits are read from `status.hard`, usage from
/// `status.used`. Returns the quota's new `status.used`, or why the quota refuses:
/// a tracked resource of the delta has no usage yet (the quota controller has not counted
/// it), or the new usage would exceed a hard limit.
pub fn check(quota: &Value, delta: &ResourceList) -> Result<ResourceList, QuotaError> {
    let hard = resource_list(quota.pointer("/status/hard"));
    let used = resource_list(quota.pointer("/status/used"));
    let tracked: Vec<&String> = delta.keys().filter(|k| hard.contains_key(*k)).collect();
    let unknown = tracked.iter().any(|k| !used.contains_key(*k));
    if unknown {
        return Err(QuotaError::StatusUnknown {
            quota: quota_name(quota),
            resources: pretty_names(&tracked),
        });
    }
    charge(quota, &hard, &used, delta, true)
}

/// The charging step itself: usage plus the tracked part of `delta`, refused when
/// `enforce_hard` and it exceeds a hard limit.
fn charge(
    quota: &Value,
    hard: &ResourceList,
    used: &ResourceList,
    delta: &ResourceList,
    enforce_hard: bool,
) -> Result<ResourceList, QuotaError> {
    let hard_names: Vec<&String> = hard.keys().collect();
    let requested = mask(delta, &hard_names);
    let new_used = add(used, &requested);
    if enforce_hard {
        let requested_names: Vec<&String> = requested.keys().collect();
        let exceeded = exceeding(&mask(&new_used, &requested_names), hard);
        if !exceeded.is_empty() {
            return Err(QuotaError::Exceeded {
                quota: quota_name(quota),
                requested: pretty_print(&mask(&requested, &exceeded)),
                used: pretty_print(&mask(used, &exceeded)),
                limited: pretty_print(&mask(hard, &exceeded)),
            });
        }
    }
    Ok(new_used)
}

/// One write or create the quota plugin looks at.
#[derive(Debug, Clone, Copy)]
pub struct QuotaRequest<'a> {
    pub group: &'a str,
    /// The resource's plural name (`pods`).
    pub resource: &'a str,
    /// `""` for the object itself.
    pub subresource: &'a str,
    pub operation: Operation,
    /// The object as it will be stored (after mutating admission).
    pub object: &'a Value,
    /// The stored object, for an update.
    pub old_object: Option<&'a Value>,
    /// The time that decides whether a terminating pod is still charged.
    pub now: Timestamp,
}

/// A quota whose usage the request changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaUpdate {
    /// The quota's position in the slice given to [`check_request`].
    pub index: usize,
    pub name: String,
    /// The quota's new `status.used`.
    pub used: ResourceList,
}

/// Upstream's `CheckRequest` over a namespace's quotas (without the optional
/// `LimitedResources` configuration): every matching quota must track usage for what the
/// object uses and have room for it. On success, the quotas whose usage changes and their
/// new usage, which the caller writes back (`status.used`) before admitting the request;
/// a refused request changes nothing. On an update the object is charged only the growth
/// over the old object (for quotas the old object also matched).
pub fn check_request(
    quotas: &[Value],
    req: &QuotaRequest<'_>,
) -> Result<Vec<QuotaUpdate>, QuotaError> {
    if ignored_resource(req.group, req.resource)
        || !handles(req.group, req.resource, req.subresource, req.operation)
    {
        return Ok(Vec::new());
    }
    let mut interesting = Vec::new();
    for (i, quota) in quotas.iter().enumerate() {
        if !quota_matches(quota, req.group, req.resource, req.object) {
            continue;
        }
        let hard = resource_list(quota.pointer("/status/hard"));
        let hard_names: Vec<&String> = hard.keys().collect();
        let restricted = matching_resources(req.group, req.resource, &hard_names);
        constraints(req.group, req.resource, &restricted, req.object).map_err(|message| {
            QuotaError::Constraint {
                quota: quota_name(quota),
                message,
            }
        })?;
        let used = resource_list(quota.pointer("/status/used"));
        if restricted.iter().any(|r| !used.contains_key(r)) {
            return Err(QuotaError::StatusUnknown {
                quota: quota_name(quota),
                resources: pretty_names(&restricted),
            });
        }
        interesting.push(i);
    }

    let input = usage_at(req.group, req.resource, req.object, req.now);
    let negative = negative_names(&input);
    if !negative.is_empty() {
        return Err(QuotaError::NegativeUsage {
            resources: pretty_names(&negative),
        });
    }
    let mut deltas: Vec<(usize, ResourceList)> =
        interesting.iter().map(|&i| (i, input.clone())).collect();
    if req.operation == Operation::Update {
        let old = req.old_object.ok_or(QuotaError::NoPriorVersion)?;
        // An old object that was never stored (no resourceVersion) charges in full.
        let stored = old
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .is_some_and(|rv| !rv.is_empty());
        if stored {
            let growth =
                subtract_non_negative(&input, &usage_at(req.group, req.resource, old, req.now));
            for (i, delta) in &mut deltas {
                if quota_matches(&quotas[*i], req.group, req.resource, old) {
                    *delta = growth.clone();
                }
            }
        }
    }
    let mut updates = Vec::new();
    for (i, delta) in deltas {
        let delta = remove_zeros(&delta);
        if delta.is_empty() {
            continue;
        }
        let quota = &quotas[i];
        let hard = resource_list(quota.pointer("/status/hard"));
        let used = resource_list(quota.pointer("/status/used"));
        // Status writes never fail for quota; they only record what happened.
        let used_after = charge(quota, &hard, &used, &delta, req.subresource != "status")?;
        if used_after != used {
            updates.push(QuotaUpdate {
                index: i,
                name: quota_name(quota),
                used: used_after,
            });
        }
    }
    Ok(updates)
}
