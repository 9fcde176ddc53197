//! The disruption controller's pure core: from a PodDisruptionBudget, the pods of its
//! namespace, the workloads that own them and the time, the status the budget should have
//! (upstream's `trySync`, `getExpectedPodCount`, `buildDisruptedPodMap`, `countHealthyPods`,
//! `updatePdbStatus` and `failSafe`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta, OwnerReference, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use rkube_api::selector::LabelSelector;

use crate::controller_utils::{controller_of, is_pod_ready};

/// How long after an eviction the pod may go on looking undeleted before the budget stops
/// counting it as disrupted (upstream's `DeletionTimeout`).
pub const DELETION_TIMEOUT: SignedDuration = SignedDuration::from_secs(120);

/// The condition the controller keeps on every budget.
pub const DISRUPTION_ALLOWED: &str = "DisruptionAllowed";
/// `DisruptionAllowed` is True: at least one disruption is allowed.
pub const SUFFICIENT_PODS: &str = "SufficientPods";
/// `DisruptionAllowed` is False: no disruption is allowed.
pub const INSUFFICIENT_PODS: &str = "InsufficientPods";
/// `DisruptionAllowed` is False because the status could not be computed.
pub const SYNC_FAILED: &str = "SyncFailed";

/// The workloads whose scale a budget's percentage is taken of, looked up by namespace and
/// name (the controller's caches; plain lists in tests).
pub trait Workloads {
    fn replication_controller(&self, ns: &str, name: &str) -> Option<Arc<ReplicationController>>;
    fn replica_set(&self, ns: &str, name: &str) -> Option<Arc<ReplicaSet>>;
    fn deployment(&self, ns: &str, name: &str) -> Option<Arc<Deployment>>;
    fn stateful_set(&self, ns: &str, name: &str) -> Option<Arc<StatefulSet>>;
}

/// An event to record, on the budget or (when `pod` names one) on a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub warning: bool,
    pub reason: &'static str,
    pub message: String,
    pub pod: Option<String>,
}

/// What a sync decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The status to write, or None when the budget's is up to date.
    pub status: Option<PodDisruptionBudgetStatus>,
    /// When to look again: the earliest time a disrupted pod's entry expires.
    pub recheck_at: Option<Timestamp>,
    pub events: Vec<Event>,
    /// Why the status could not be computed (the fail-safe status is in `status`).
    pub failed: Option<String>,
}

fn group_of(api_version: &str) -> &str {
    match api_version.split_once('/') {
        Some((group, _)) => group,
        None => "",
    }
}

/// Whether `r` is a `kind` of one of `groups` (upstream's `verifyGroupKind`).
fn is_kind(r: &OwnerReference, kind: &str, groups: &[&str]) -> bool {
    r.kind == kind && groups.contains(&group_of(&r.api_version))
}

fn uid_is(meta: &ObjectMeta, uid: &str) -> bool {
    meta.uid.as_deref() == Some(uid)
}

/// The controller a pod's controller reference leads to and its scale, as upstream's finders
/// in their order: a ReplicationController; a ReplicaSet's Deployment; a ReplicaSet without
/// a Deployment; a StatefulSet. None when no finder knows it (upstream's generic `scale`
/// finder is not implemented).
pub fn find_scale(r: &OwnerReference, ns: &str, w: &dyn Workloads) -> Option<(String, i32)> {
    const APPS: &[&str] = &["apps", "extensions"];
    if is_kind(r, "ReplicationController", &[""]) {
        let rc = w.replication_controller(ns, &r.name)?;
        return uid_is(&rc.metadata, &r.uid).then(|| {
            (
                r.uid.clone(),
                rc.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
            )
        });
    }
    if is_kind(r, "ReplicaSet", APPS) {
        let rs = w.replica_set(ns, &r.name)?;
        if !uid_is(&rs.metadata, &r.uid) {
            return None;
        }
        match controller_of(&rs.metadata) {
            // A ReplicaSet run by a Deployment counts at the Deployment's scale.
            Some(d) if d.kind == "Deployment" => {
                if !is_kind(d, "Deployment", APPS) {
                    return None;
                }
                let dep = w.deployment(ns, &d.name)?;
                return uid_is(&dep.metadata, &d.uid).then(|| {
                    let replicas = dep.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                    (d.uid.clone(), replicas)
                });
            }
            _ => {
                let replicas = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                return Some((r.uid.clone(), replicas));
            }
        }
    }
    if is_kind(r, "StatefulSet", &["apps"]) {
        let ss = w.stateful_set(ns, &r.name)?;
        return uid_is(&ss.metadata, &r.uid).then(|| {
            (
                r.uid.clone(),
                ss.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
            )
        });
    }
    None
}

/// The value of an int-or-percent against `total`, a percentage rounded up (upstream's
/// `GetScaledValueFromIntOrPercent(v, total, true)`).
pub fn scaled_value(v: &IntOrString, total: i32) -> Result<i32, String> {
    match v {
        IntOrString::Int(i) => Ok(*i),
        IntOrString::String(s) => {
            let Some(num) = s.strip_suffix('%') else {
                return Err(format!("invalid type: string is not a percentage: {s:?}"));
            };
            let pct: i64 = num
                .parse()
                .map_err(|e| format!("invalid value for IntOrString: invalid value {s:?}: {e}"))?;
            let scaled = (pct * i64::from(total) + 99).div_euclid(100);
            i32::try_from(scaled).map_err(|e| format!("invalid value {s:?}: {e}"))
        }
    }
}

/// The sum of the scales of the pods' controllers, and the pods without a controller
/// (upstream's `getExpectedScale`). A pod whose controller cannot be found is an error.
pub fn expected_scale(pods: &[&Pod], w: &dyn Workloads) -> Result<(i32, Vec<String>), String> {
    let mut scales: BTreeMap<String, i32> = BTreeMap::new();
    let mut unmanaged = Vec::new();
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let Some(r) = controller_of(&pod.metadata) else {
            unmanaged.push(name);
            continue;
        };
        if scales.contains_key(&r.uid) {
            continue;
        }
        let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
        match find_scale(r, ns, w) {
            Some((uid, scale)) => {
                scales.insert(uid, scale);
            }
            None => return Err(format!("found no controllers for pod {name:?}")),
        }
    }
    Ok((scales.values().sum(), unmanaged))
}

/// Expected pods, desired healthy pods and unmanaged pods (upstream's `getExpectedPodCount`):
/// an integer `minAvailable` counts the selected pods; a percentage `minAvailable` or any
/// `maxUnavailable` takes the controllers' scale.
pub fn expected_counts(
    pdb: &PodDisruptionBudget,
    pods: &[&Pod],
    w: &dyn Workloads,
) -> Result<(i32, i32, Vec<String>), String> {
    let spec = pdb.spec.as_ref();
    if let Some(max) = spec.and_then(|s| s.max_unavailable.as_ref()) {
        let (expected, unmanaged) = expected_scale(pods, w)?;
        let max = scaled_value(max, expected)?;
        return Ok((expected, (expected - max).max(0), unmanaged));
    }
    match spec.and_then(|s| s.min_available.as_ref()) {
        Some(IntOrString::Int(min)) => {
            let expected = i32::try_from(pods.len()).unwrap_or(i32::MAX);
            Ok((expected, *min, Vec::new()))
        }
        Some(min) => {
            let (expected, unmanaged) = expected_scale(pods, w)?;
            Ok((expected, scaled_value(min, expected)?, unmanaged))
        }
        None => Ok((0, 0, Vec::new())),
    }
}

/// The budget's disrupted pods that still count: listed, not yet being deleted, and evicted
/// less than [`DELETION_TIMEOUT`] ago (upstream's `buildDisruptedPodMap`). Also the earliest
/// expiry, and the pods that outlived it (for `NotDeleted` events).
pub fn disrupted_pods(
    pdb: &PodDisruptionBudget,
    pods: &[&Pod],
    now: Timestamp,
) -> (BTreeMap<String, Time>, Option<Timestamp>, Vec<String>) {
    let mut kept = BTreeMap::new();
    let mut recheck: Option<Timestamp> = None;
    let mut expired = Vec::new();
    let Some(listed) = pdb.status.as_ref().and_then(|s| s.disrupted_pods.as_ref()) else {
        return (kept, recheck, expired);
    };
    for pod in pods {
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let name = pod.metadata.name.clone().unwrap_or_default();
        let Some(at) = listed.get(&name) else {
            continue;
        };
        let due = at.0 + DELETION_TIMEOUT;
        if due < now {
            expired.push(name);
        } else {
            recheck = Some(recheck.map_or(due, |r| r.min(due)));
            kept.insert(name, at.clone());
        }
    }
    (kept, recheck, expired)
}

/// Ready pods not being deleted and not just evicted (upstream's `countHealthyPods`).
pub fn count_healthy(pods: &[&Pod], disrupted: &BTreeMap<String, Time>, now: Timestamp) -> i32 {
    let n = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            let name = p.metadata.name.as_deref().unwrap_or_default();
            disrupted
                .get(name)
                .is_none_or(|at| at.0 + DELETION_TIMEOUT <= now)
        })
        .filter(|p| is_pod_ready(p))
        .count();
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Sets a condition as upstream's `meta.SetStatusCondition`: the transition time moves only
/// when the status changes.
pub fn set_condition(conds: &mut Vec<Condition>, new: Condition) {
    match conds.iter_mut().find(|c| c.type_ == new.type_) {
        Some(c) => {
            if c.status != new.status {
                c.status = new.status;
                c.last_transition_time = new.last_transition_time;
            }
            c.reason = new.reason;
            c.message = new.message;
            c.observed_generation = new.observed_generation;
        }
        None => conds.push(new),
    }
}

/// The `DisruptionAllowed` condition for the status's `disruptionsAllowed` (upstream's
/// `UpdateDisruptionAllowedCondition`).
pub fn update_allowed_condition(status: &mut PodDisruptionBudgetStatus, now: Timestamp) {
    let (s, reason) = if status.disruptions_allowed > 0 {
        ("True", SUFFICIENT_PODS)
    } else {
        ("False", INSUFFICIENT_PODS)
    };
    let observed = status.observed_generation;
    set_condition(
        status.conditions.get_or_insert_with(Vec::new),
        Condition {
            type_: DISRUPTION_ALLOWED.into(),
            status: s.into(),
            reason: reason.into(),
            message: String::new(),
            observed_generation: observed,
            last_transition_time: Time(now),
        },
    );
}

/// Whether the condition agrees with `disruptionsAllowed` at the current generation
/// (upstream's `ConditionsAreUpToDate`).
fn conditions_up_to_date(pdb: &PodDisruptionBudget) -> bool {
    let Some(status) = pdb.status.as_ref() else {
        return false;
    };
    let Some(c) = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == DISRUPTION_ALLOWED)
    else {
        return false;
    };
    if status.observed_generation != pdb.metadata.generation {
        return false;
    }
    if status.disruptions_allowed > 0 {
        c.status == "True" && c.reason == SUFFICIENT_PODS
    } else {
        c.status == "False" && c.reason == INSUFFICIENT_PODS
    }
}

/// The fail-safe status after a failed sync: no disruptions allowed, `SyncFailed` with the
/// error (upstream's `failSafe`). None when the budget already says so.
pub fn fail_safe(
    pdb: &PodDisruptionBudget,
    err: &str,
    now: Timestamp,
) -> Option<PodDisruptionBudgetStatus> {
    let mut status = pdb.status.clone().unwrap_or_default();
    status.disruptions_allowed = 0;
    let observed = status.observed_generation;
    set_condition(
        status.conditions.get_or_insert_with(Vec::new),
        Condition {
            type_: DISRUPTION_ALLOWED.into(),
            status: "False".into(),
            reason: SYNC_FAILED.into(),
            message: err.to_string(),
            observed_generation: observed,
            last_transition_time: Time(now),
        },
    );
    (pdb.status.as_ref() != Some(&status)).then_some(status)
}

/// The pods of the budget's namespace its selector picks: an empty selector picks every pod
/// and a missing one none (policy/v1's `LabelSelectorAsSelector`).
pub fn selected_pods<'a>(
    pdb: &PodDisruptionBudget,
    pods: impl IntoIterator<Item = &'a Pod>,
) -> Result<Vec<&'a Pod>, String> {
    let sel = LabelSelector::from_typed(pdb.spec.as_ref().and_then(|s| s.selector.as_ref()))
        .map_err(|e| e.to_string())?;
    let ns = pdb.metadata.namespace.as_deref();
    Ok(pods
        .into_iter()
        .filter(|p| p.metadata.namespace.as_deref() == ns)
        .filter(|p| sel.matches(&p.metadata.labels))
        .collect())
}

/// One sync of a budget (upstream's `trySync` and, when it fails, `failSafe`).
pub fn sync(
    pdb: &PodDisruptionBudget,
    all_pods: &[&Pod],
    w: &dyn Workloads,
    now: Timestamp,
) -> Plan {
    let mut events = Vec::new();
    let failed = |err: String, events: Vec<Event>| Plan {
        status: fail_safe(pdb, &err, now),
        recheck_at: None,
        events,
        failed: Some(err),
    };
    let pods = match selected_pods(pdb, all_pods.iter().copied()) {
        Ok(p) => p,
        Err(e) => {
            let ev = Event {
                warning: true,
                reason: "NoPods",
                message: format!("Failed to get pods: {e}"),
                pod: None,
            };
            return failed(e, vec![ev]);
        }
    };
    if pods.is_empty() {
        events.push(Event {
            warning: false,
            reason: "NoPods",
            message: "No matching pods found".into(),
            pod: None,
        });
    }
    let (expected, desired, unmanaged) = match expected_counts(pdb, &pods, w) {
        Ok(c) => c,
        Err(e) => {
            events.push(Event {
                warning: true,
                reason: "CalculateExpectedPodCountFailed",
                message: format!("Failed to calculate the number of expected pods: {e}"),
                pod: None,
            });
            return failed(e, events);
        }
    };
    if !unmanaged.is_empty() {
        let selector = pdb
            .spec
            .as_ref()
            .and_then(|s| s.selector.as_ref())
            .and_then(|s| LabelSelector::from_typed(Some(s)).ok())
            .map(|s| s.to_string())
            .unwrap_or_default();
        events.push(Event {
            warning: true,
            reason: "UnmanagedPods",
            message: format!(
                "Pods selected by this PodDisruptionBudget (selector: {selector}) were found to be unmanaged. As a result, the status of the PDB cannot be calculated correctly, which may result in undefined behavior. To account for these pods please set \".spec.minAvailable\" field of the PDB to an integer value."
            ),
            pod: None,
        });
    }
    let (disrupted, recheck_at, expired) = disrupted_pods(pdb, &pods, now);
    for pod in expired {
        let ns = pdb.metadata.namespace.clone().unwrap_or_default();
        let name = pdb.metadata.name.clone().unwrap_or_default();
        events.push(Event {
            warning: true,
            reason: "NotDeleted",
            message: format!("Pod was expected by PDB {ns}/{name} to be deleted but it wasn't"),
            pod: Some(pod),
        });
    }
    let healthy = count_healthy(&pods, &disrupted, now);
    let allowed = if expected <= 0 {
        0
    } else {
        (healthy - desired).max(0)
    };
    let cur = pdb.status.clone().unwrap_or_default();
    let up_to_date = cur.current_healthy == healthy
        && cur.desired_healthy == desired
        && cur.expected_pods == expected
        && cur.disruptions_allowed == allowed
        && cur.disrupted_pods.clone().unwrap_or_default() == disrupted
        && cur.observed_generation == pdb.metadata.generation
        && conditions_up_to_date(pdb);
    let status = (!up_to_date).then(|| {
        let mut status = PodDisruptionBudgetStatus {
            current_healthy: healthy,
            desired_healthy: desired,
            expected_pods: expected,
            disruptions_allowed: allowed,
            disrupted_pods: (!disrupted.is_empty()).then_some(disrupted),
            observed_generation: pdb.metadata.generation,
            conditions: cur.conditions.clone(),
        };
        update_allowed_condition(&mut status, now);
        status
    });
    Plan {
        status,
        recheck_at,
        events,
        failed: None,
    }
}

/// The budgets of `pdbs` whose selector picks `pod`, by name.
pub fn budgets_for_pod<'a>(
    pod: &Pod,
    pdbs: impl IntoIterator<Item = &'a PodDisruptionBudget>,
) -> BTreeSet<String> {
    pdbs.into_iter()
        .filter(|b| b.metadata.namespace == pod.metadata.namespace)
        .filter(|b| selected_pods(b, [pod]).is_ok_and(|p| !p.is_empty()))
        .filter_map(|b| b.metadata.name.clone())
        .collect()
}
