//! The pure core of DaemonSet updates (upstream's `update.go`): the rolling update's choice
//! of old pods to delete and nodes to surge onto within `maxUnavailable` and `maxSurge`, and
//! the ControllerRevision history (which revision is current, which to renumber, which
//! duplicates to drop, which old ones to clean up under `revisionHistoryLimit`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

use super::core::{is_pod_updated, template_generation, Eligibility, API_VERSION, KIND};
use crate::controller_utils::{controller_ref, is_pod_available};
use crate::deployment::util::scaled_value;
use crate::history::POD_REVISION_LABEL;
use crate::history::{canonical_bytes, hash_revision, revision_name, template_patch};

/// Upstream's default `revisionHistoryLimit`.
pub const DEFAULT_REVISION_HISTORY_LIMIT: i32 = 10;

fn rolling(ds: &DaemonSet) -> Option<&k8s_openapi::api::apps::v1::RollingUpdateDaemonSet> {
    let strategy = ds.spec.as_ref()?.update_strategy.as_ref()?;
    if strategy.type_.as_deref() != Some("RollingUpdate") {
        return None;
    }
    strategy.rolling_update.as_ref()
}

/// Whether the DaemonSet updates by rolling update (the default) rather than `OnDelete`.
pub fn is_rolling_update(ds: &DaemonSet) -> bool {
    ds.spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        .is_none_or(|t| t == "RollingUpdate")
}

/// Upstream's `SurgeCount`: `maxSurge` of `n` nodes, rounded up; 0 unless rolling.
pub fn surge_count(ds: &DaemonSet, n: i32) -> Result<i32, String> {
    match rolling(ds).and_then(|r| r.max_surge.as_ref()) {
        Some(v) => scaled_value(v, n, true),
        None => Ok(0),
    }
}

/// Upstream's `UnavailableCount`: `maxUnavailable` of `n` nodes, rounded up; 0 unless rolling.
pub fn unavailable_count(ds: &DaemonSet, n: i32) -> Result<i32, String> {
    match rolling(ds).and_then(|r| r.max_unavailable.as_ref()) {
        Some(v) => scaled_value(v, n, true),
        None => Ok(0),
    }
}

/// What one rolling-update step does.
#[derive(Debug, Default, PartialEq)]
pub struct RollingPlan<'a> {
    /// Old pods to delete.
    pub delete: Vec<&'a Pod>,
    /// Nodes to create a new pod on next to the old one (surge).
    pub create_on: Vec<String>,
}

/// Upstream's `findUpdatedPodsOnNode`: the node's one new and one old pod (not being
/// deleted), or `None` when it has more of either, which `manage` prunes first.
fn updated_and_old<'a>(
    pods: &[&'a Pod],
    hash: &str,
    generation: Option<i64>,
) -> Option<(Option<&'a Pod>, Option<&'a Pod>)> {
    let (mut new, mut old) = (None, None);
    for pod in pods.iter().copied() {
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let slot = if is_pod_updated(pod, hash, generation) {
            &mut new
        } else {
            &mut old
        };
        if slot.replace(pod).is_some() {
            return None;
        }
    }
    Some((new, old))
}

/// Upstream's `rollingUpdate`. Nodes are visited in name order (upstream's map order is
/// random).
///
/// Without surge, old pods are deleted so that no more than `maxUnavailable` nodes lack an
/// available pod: old pods that are not available go at once (they count as unavailable
/// already), available ones only while the count of unavailable nodes stays under the
/// limit; `manage` then creates the new pods.
///
/// With surge, a new pod is created next to an old one: at once where the old pod is not
/// available, and for up to `maxSurge` nodes at a time otherwise; an old pod is deleted once
/// the new pod beside it is available. Old pods on nodes that no longer fit are deleted
/// only while more pods are available than desired, so the workload never drops below it.
pub fn rolling_update<'a>(
    ds: &DaemonSet,
    fit: &Eligibility,
    nodes: &[&Node],
    by_node: &BTreeMap<String, Vec<&'a Pod>>,
    hash: &str,
    now: Timestamp,
) -> Result<RollingPlan<'a>, String> {
    let min_ready = ds
        .spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0);
    let available = |p: &Pod| is_pod_available(p, min_ready, now);
    let generation = template_generation(ds);
    // Upstream's `updatedDesiredNodeCounts`: nodes that should run a pod count even when
    // they have none yet.
    let should_run: HashMap<&str, bool> = nodes
        .iter()
        .map(|n| {
            (
                n.metadata.name.as_deref().unwrap_or_default(),
                fit.fit(n).should_run,
            )
        })
        .collect();
    let mut node_names: BTreeSet<&str> = by_node.keys().map(String::as_str).collect();
    node_names.extend(should_run.iter().filter(|(_, run)| **run).map(|(n, _)| *n));
    let desired = should_run.values().filter(|r| **r).count() as i32;
    let mut max_unavailable = unavailable_count(ds, desired)?;
    let max_surge = surge_count(ds, desired)?;
    if desired > 0 && max_unavailable == 0 && max_surge == 0 {
        // An impossible configuration: accept one unavailable node, as upstream.
        max_unavailable = 1;
    }
    let no_pods: Vec<&Pod> = Vec::new();
    let pods_on = |node: &str| by_node.get(node).unwrap_or(&no_pods);
    // A node missing from the cache no longer fits (upstream fails the sync until the pod
    // collector removes its pods).
    let fits = |node: &str| should_run.get(node).copied().unwrap_or(false);
    let mut plan = RollingPlan::default();

    if max_surge == 0 {
        let mut unavailable = 0;
        let mut candidates: Vec<&'a Pod> = Vec::new();
        for node in &node_names {
            let Some((new, old)) = updated_and_old(pods_on(node), hash, generation) else {
                unavailable += 1;
                continue;
            };
            match (new, old) {
                (None, None) | (Some(_), Some(_)) => unavailable += 1,
                (Some(new), None) => unavailable += i32::from(!available(new)),
                (None, Some(old)) if !available(old) => {
                    plan.delete.push(old);
                    unavailable += 1;
                }
                (None, Some(_)) if unavailable >= max_unavailable => {}
                (None, Some(old)) => candidates.push(old),
            }
        }
        let room = (max_unavailable - unavailable).max(0) as usize;
        plan.delete.extend(candidates.into_iter().take(room));
        return Ok(plan);
    }

    let (mut surging, mut available_nodes) = (0, 0);
    let mut candidates: Vec<String> = Vec::new();
    let mut not_fitting: Vec<&'a Pod> = Vec::new();
    for node in &node_names {
        let Some((new, old)) = updated_and_old(pods_on(node), hash, generation) else {
            surging += 1;
            continue;
        };
        if let Some(p) = old.or(new) {
            available_nodes += i32::from(available(p));
        }
        match (new, old) {
            (_, None) => {}
            (None, Some(old)) if !available(old) => {
                if fits(node) {
                    plan.create_on.push(node.to_string());
                } else {
                    plan.delete.push(old);
                }
            }
            (None, Some(old)) if !fits(node) => not_fitting.push(old),
            (None, Some(_)) if surging >= max_surge => {}
            (None, Some(_)) => candidates.push(node.to_string()),
            (Some(new), Some(_)) if !available(new) => surging += 1,
            (Some(_), Some(old)) => plan.delete.push(old),
        }
    }
    let deletable = (available_nodes - desired).max(0) as usize;
    plan.delete.extend(not_fitting.into_iter().take(deletable));
    let room = (max_surge - surging).max(0) as usize;
    plan.create_on.extend(candidates.into_iter().take(room));
    Ok(plan)
}

/// The data of the DaemonSet's current revision: a patch restoring its template.
pub fn revision_data(ds: &DaemonSet) -> Value {
    template_patch(&serde_json::to_value(ds).unwrap_or(Value::Null))
}

/// Upstream's `Match`: whether `rev` holds the same template as `data`.
pub fn is_current(data: &Value, rev: &ControllerRevision) -> bool {
    rev.data
        .as_ref()
        .is_some_and(|d| canonical_bytes(&d.0) == canonical_bytes(data))
}

/// Upstream's `snapshot` (before its create): revision `revision` of the DaemonSet, named
/// `<name>-<hash>` with the hash of `data` and the DaemonSet's collision count, labelled with
/// the template's labels and `controller-revision-hash`, annotated as the DaemonSet (so
/// `kubernetes.io/change-cause` reaches `kubectl rollout history`), owned by it.
pub fn snapshot(ds: &DaemonSet, data: Value, revision: i64) -> ControllerRevision {
    let collision_count = ds.status.as_ref().and_then(|s| s.collision_count);
    let hash = hash_revision(&data, collision_count);
    let mut labels = ds
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    labels.insert(POD_REVISION_LABEL.to_string(), hash.clone());
    let name = ds.metadata.name.as_deref().unwrap_or_default();
    ControllerRevision {
        metadata: ObjectMeta {
            name: Some(revision_name(name, &hash)),
            namespace: ds.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: ds.metadata.annotations.clone(),
            owner_references: Some(vec![controller_ref(&ds.metadata, API_VERSION, KIND)]),
            ..Default::default()
        },
        data: Some(RawExtension(data)),
        revision,
    }
}

/// The revision's `controller-revision-hash` label.
pub fn revision_hash(rev: &ControllerRevision) -> Option<&str> {
    rev.metadata
        .labels
        .as_ref()?
        .get(POD_REVISION_LABEL)
        .map(String::as_str)
}

/// The highest revision number (0 for none).
pub fn max_revision(revs: &[&ControllerRevision]) -> i64 {
    revs.iter().map(|r| r.revision).max().unwrap_or(0)
}

/// Upstream's `dedupCurHistories` choice among revisions equal to the template: the highest
/// revision number (the last of equals); the others are duplicates to delete.
pub fn keep_of<'a>(
    current: &[&'a ControllerRevision],
) -> Option<(&'a ControllerRevision, Vec<&'a ControllerRevision>)> {
    let mut keep: Option<&ControllerRevision> = None;
    for r in current.iter().copied() {
        if keep.is_none_or(|k| r.revision >= k.revision) {
            keep = Some(r);
        }
    }
    let keep = keep?;
    let dups = current
        .iter()
        .copied()
        .filter(|r| r.metadata.name != keep.metadata.name)
        .collect();
    Some((keep, dups))
}

/// Upstream's `cleanupHistory` choice: with more old revisions than `limit`, the surplus is
/// deleted lowest revision first, skipping revisions a live pod (any of `pods`, terminal ones
/// included) still carries the hash of.
pub fn revisions_to_clean<'a>(
    old: &[&'a ControllerRevision],
    pods: &[&Pod],
    limit: i32,
) -> Vec<&'a ControllerRevision> {
    let surplus = old.len() as i64 - i64::from(limit.max(0));
    if surplus <= 0 {
        return Vec::new();
    }
    let live: BTreeSet<&str> = pods
        .iter()
        .filter_map(|p| p.metadata.labels.as_ref()?.get(POD_REVISION_LABEL))
        .map(String::as_str)
        .filter(|h| !h.is_empty())
        .collect();
    let mut sorted = old.to_vec();
    sorted.sort_by_key(|r| r.revision);
    sorted
        .into_iter()
        .filter(|r| revision_hash(r).is_none_or(|h| !live.contains(h)))
        .take(surplus as usize)
        .collect()
}
