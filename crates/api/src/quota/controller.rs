//! The quota controller's full recount (upstream's `CalculateUsage` inside
//! `syncResourceQuota`): the usage of every hard resource of a quota over the objects of its
//! namespace.

use jiff::Timestamp;
use serde_json::Value;

use super::evaluators::{
    matches_scope_requirements, matching_resources, scope_requirements, tracked_by_any, usage_at,
};
use super::resources::{add, mask, resource_list, zero, ResourceList};

/// The quota's new `status.used`, counted at the current time. See [`compute_used_at`].
pub fn compute_used<'a>(
    quota: &Value,
    objects: impl IntoIterator<Item = (&'a str, &'a str, &'a Value)>,
) -> ResourceList {
    compute_used_at(quota, objects, Timestamp::now())
}

/// The quota's new `status.used` from `objects` (group, resource plural, object): every
/// object of the namespace the caller holds, of any resource. Each resource of `spec.hard`
/// that some evaluator tracks is recounted (zero when nothing uses it), over the objects in
/// the quota's scopes; other hard resources keep their previous `status.used` value, and
/// resources no longer in `spec.hard` are dropped.
pub fn compute_used_at<'a>(
    quota: &Value,
    objects: impl IntoIterator<Item = (&'a str, &'a str, &'a Value)>,
    now: Timestamp,
) -> ResourceList {
    let hard = resource_list(quota.pointer("/spec/hard"));
    let hard_names: Vec<&str> = hard.keys().map(String::as_str).collect();
    let tracked: Vec<&str> = hard_names
        .iter()
        .copied()
        .filter(|n| tracked_by_any(n))
        .collect();
    let scopes = scope_requirements(quota.get("spec").unwrap_or(&Value::Null));

    let mut recount: ResourceList = tracked.iter().map(|n| (n.to_string(), zero())).collect();
    for (group, resource, obj) in objects {
        if matching_resources(group, resource, &tracked).is_empty()
            || !matches_scope_requirements(group, resource, &scopes, obj)
        {
            continue;
        }
        recount = add(&recount, &usage_at(group, resource, obj, now));
    }
    let recount = mask(&recount, &tracked);

    let mut used = resource_list(quota.pointer("/status/used"));
    used.extend(recount);
    mask(&used, &hard_names)
}
