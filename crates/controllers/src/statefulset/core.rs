//! The StatefulSet's ordered pod decisions (upstream's `updateStatefulSet`,
//! `processReplica`, `processCondemned` and the rolling update), as a pure function from the
//! observed set, its revisions, its pods and the namespace's claims to a [`Plan`].
//!
//! Pods in the ordinal range are replicas; pods with valid ordinals outside it are condemned.
//! The plan has four phases, run in order: replicas (create missing pods after their claims,
//! delete failed or succeeded pods so they are recreated, create claims of pending pods, fix
//! identity, storage and claim owners of healthy pods), claim owners of condemned pods,
//! deletion of condemned pods (highest ordinal first), and the rolling update (the highest
//! ordinal at or above the partition whose revision is not the update revision is deleted, so
//! it comes back at the update revision; one at a time, each waiting until it is healthy).
//!
//! With `OrderedReady` ("monotonic") the plan stops at the first pod that is not yet Running,
//! Ready and available, or terminating, or just created, or just deleted: the driver then runs
//! its works one after another and stops at the first failure. With `Parallel` ("burst")
//! nothing waits: the driver runs each phase's works in slow-start batches and stops after a
//! phase with a failure.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Volume};
use k8s_openapi::jiff::Timestamp;

use super::identity::{
    claim_owner_refs, claim_owner_up_to_date, claims_for, end_ordinal, has_stale_owner_ref,
    has_unexpected_controller, identity_matches, in_ordinal_range, new_pod, ordinal_of,
    pod_revision, replicas, retention, start_ordinal, storage_matches, update_identity,
    update_storage, Owner,
};
use crate::controller_utils::{is_pod_available, is_pod_ready};

/// What the core reads.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    pub set: &'a StatefulSet,
    /// The set with the current revision's template.
    pub current_set: &'a StatefulSet,
    /// The set with the update revision's template.
    pub update_set: &'a StatefulSet,
    pub current_revision: &'a str,
    pub update_revision: &'a str,
    pub collision_count: i32,
    /// The pods the set owns (after claiming), in any order, including terminating ones.
    pub pods: &'a [&'a Pod],
    /// The namespace's claims by name.
    pub claims: &'a HashMap<&'a str, &'a PersistentVolumeClaim>,
    pub now: Timestamp,
}

/// Claim changes for one pod.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClaimWork {
    /// Claims to create, with the ownerReferences the retention policy wants.
    pub create: Vec<PersistentVolumeClaim>,
    /// Claims that exist but are being deleted: the pod cannot have them yet (an error).
    pub deleting: Vec<String>,
    /// Existing claims with the ownerReferences the retention policy wants instead.
    pub owners: Vec<PersistentVolumeClaim>,
    /// Claims another controller owns, where the policy is ignored (a warning).
    pub conflicting: Vec<String>,
}

impl ClaimWork {
    pub fn is_empty(&self) -> bool {
        self.create.is_empty()
            && self.deleting.is_empty()
            && self.owners.is_empty()
            && self.conflicting.is_empty()
    }
}

/// New identity labels and volumes for an existing pod.
#[derive(Debug, Clone, PartialEq)]
pub struct PodUpdate {
    pub labels: BTreeMap<String, String>,
    /// Set only when the volumes must change.
    pub volumes: Option<Vec<Volume>>,
    pub resource_version: Option<String>,
}

/// Why a pod is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteCause {
    /// It failed or succeeded; it comes back on a later sync.
    Finished,
    /// Its ordinal is out of range.
    ScaleDown,
    /// It is not at the update revision.
    Update,
}

/// One API-facing step.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Create the claims, then the pod (upstream's `CreateStatefulPod`).
    CreatePod { pod: Box<Pod>, claims: ClaimWork },
    /// Create the missing claims of a pending pod and fix their owners.
    CreateClaims { pod: String, claims: ClaimWork },
    /// Fix a pod's identity and storage, and its claims (upstream's `UpdateStatefulPod`).
    UpdatePod {
        pod: String,
        update: Option<PodUpdate>,
        claims: ClaimWork,
    },
    /// Fix the owners of a condemned pod's claims.
    UpdateClaims { pod: String, claims: ClaimWork },
    DeletePod {
        pod: String,
        uid: Option<String>,
        cause: DeleteCause,
    },
}

/// A sequence of steps for one pod, run in order until one fails.
pub type Work = Vec<Step>;

/// What to do, and the status to report.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// `OrderedReady`: run works one at a time; otherwise per phase in slow-start batches.
    pub monotonic: bool,
    /// The phases, in order: replicas, condemned claims, condemned pods, rolling update.
    pub phases: [Vec<Work>; 4],
    /// The status before [`complete_rolling_update`]; a failed [`DeleteCause::Update`]
    /// deletion must give back the current replica it took.
    pub status: StatefulSetStatus,
}

/// Running with phase Running and Ready (upstream's `isRunningAndReady`).
pub fn is_running_and_ready(pod: &Pod) -> bool {
    phase(pod) == "Running" && is_pod_ready(pod)
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or_default()
}

fn terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// Running, Ready and not terminating (upstream's `isHealthy`).
pub fn is_healthy(pod: &Pod) -> bool {
    is_running_and_ready(pod) && !terminating(pod)
}

fn name(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

fn min_ready_seconds(set: &StatefulSet) -> i32 {
    set.spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0)
}

/// `None` for zero: the status's counters (but `availableReplicas`) are `omitempty` upstream.
fn nz(n: i32) -> Option<i32> {
    (n != 0).then_some(n)
}

/// The status counters over `pods` (upstream's `computeReplicaStatus`): created pods,
/// Running and Ready ones, those also available for `minReadySeconds`, and the pods (not
/// terminating) at the current and at the update revision.
pub fn replica_status<'a>(
    set: &StatefulSet,
    pods: impl IntoIterator<Item = &'a Pod>,
    current: &str,
    update: &str,
    now: Timestamp,
) -> StatefulSetStatus {
    let min_ready = min_ready_seconds(set);
    let (mut replicas, mut ready, mut available, mut at_current, mut updated) = (0, 0, 0, 0, 0);
    for pod in pods {
        let created = !phase(pod).is_empty();
        replicas += i32::from(created);
        if is_running_and_ready(pod) {
            ready += 1;
            available += i32::from(is_pod_available(pod, min_ready, now));
        }
        if created && !terminating(pod) {
            at_current += i32::from(pod_revision(pod) == current);
            updated += i32::from(pod_revision(pod) == update);
        }
    }
    StatefulSetStatus {
        replicas,
        ready_replicas: nz(ready),
        // The one counter upstream writes even when zero (no `omitempty`).
        available_replicas: Some(available),
        current_replicas: nz(at_current),
        updated_replicas: nz(updated),
        ..Default::default()
    }
}

/// Marks a finished rolling update (upstream's `completeRollingUpdate`): once every wanted
/// replica exists, is Ready and is at the update revision, the update revision becomes current.
pub fn complete_rolling_update(set: &StatefulSet, status: &mut StatefulSetStatus) {
    let spec = set.spec.as_ref();
    let rolling = spec
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.type_.as_deref())
        == Some("RollingUpdate");
    let want = replicas(set);
    if rolling
        && status.updated_replicas.unwrap_or(0) == want
        && status.ready_replicas.unwrap_or(0) == want
        && status.replicas == want
    {
        status.current_replicas = status.updated_replicas;
        status.current_revision = status.update_revision.clone();
    }
}

/// Whether `status` differs from the set's in what upstream compares
/// (`inconsistentStatus`): a newer generation, a counter, or a revision.
pub fn status_changed(set: &StatefulSet, status: &StatefulSetStatus) -> bool {
    let old = set.status.clone().unwrap_or_default();
    let n = |v: Option<i32>| v.unwrap_or(0);
    let s = |v: &Option<String>| v.clone().unwrap_or_default();
    status.observed_generation.unwrap_or(0) > old.observed_generation.unwrap_or(0)
        || status.replicas != old.replicas
        || n(status.current_replicas) != n(old.current_replicas)
        || n(status.ready_replicas) != n(old.ready_replicas)
        || n(status.updated_replicas) != n(old.updated_replicas)
        || n(status.available_replicas) != n(old.available_replicas)
        || s(&status.current_revision) != s(&old.current_revision)
        || s(&status.update_revision) != s(&old.update_revision)
}

/// The pod a missing ordinal gets (upstream's `newVersionedStatefulSetPod`): the current
/// revision below the partition (or, for a RollingUpdate without parameters, below
/// `status.currentReplicas`), the update revision otherwise.
pub fn versioned_pod(inp: &Inputs, ordinal: i32) -> Pod {
    let set = inp.current_set;
    let strategy = set.spec.as_ref().and_then(|s| s.update_strategy.as_ref());
    let rolling = strategy.and_then(|u| u.type_.as_deref()) == Some("RollingUpdate");
    let ru = strategy.and_then(|u| u.rolling_update.as_ref());
    let start = start_ordinal(set);
    let current_replicas = set
        .status
        .as_ref()
        .and_then(|s| s.current_replicas)
        .unwrap_or(0);
    let below = match ru {
        None => rolling && ordinal < start.saturating_add(current_replicas),
        Some(ru) => ordinal < start.saturating_add(ru.partition.unwrap_or(0)),
    };
    if below {
        new_pod(inp.current_set, ordinal, inp.current_revision)
    } else {
        new_pod(inp.update_set, ordinal, inp.update_revision)
    }
}

/// A slot of the ordinal range: a pod the cache has, or one to create.
enum Replica<'a> {
    Existing(&'a Pod),
    New(Box<Pod>),
}

impl Replica<'_> {
    fn pod(&self) -> &Pod {
        match self {
            Replica::Existing(p) => p,
            Replica::New(p) => p,
        }
    }
}

/// The claims of `pod` that its creation (or its pending state) needs: those absent get
/// created with the owners the policy wants; those present get their owners fixed.
fn claim_work(inp: &Inputs, set: &StatefulSet, pod: &Pod) -> ClaimWork {
    let mut work = ClaimWork::default();
    let Some(ordinal) = ordinal_of(pod) else {
        return work;
    };
    for (_, mut claim) in claims_for(set, ordinal) {
        let claim_name = claim.metadata.name.clone().unwrap_or_default();
        match inp.claims.get(claim_name.as_str()) {
            None => {
                claim.metadata.owner_references =
                    Some(claim_owner_refs(&claim, set, pod)).filter(|r| !r.is_empty());
                work.create.push(claim);
            }
            Some(c) if c.metadata.deletion_timestamp.is_some() => work.deleting.push(claim_name),
            Some(_) => {}
        }
    }
    retention_work(inp, set, pod, &mut work);
    work
}

/// Owner fixes of the pod's existing claims (upstream's `UpdatePodClaimForRetentionPolicy`).
fn retention_work(inp: &Inputs, set: &StatefulSet, pod: &Pod, work: &mut ClaimWork) {
    let Some(ordinal) = ordinal_of(pod) else {
        return;
    };
    for (_, claim) in claims_for(set, ordinal) {
        let claim_name = claim.metadata.name.as_deref().unwrap_or_default();
        let Some(existing) = inp.claims.get(claim_name) else {
            continue;
        };
        if has_unexpected_controller(existing, set, pod) {
            work.conflicting.push(claim_name.to_string());
        }
        if !claim_owner_up_to_date(existing, set, pod) {
            let mut fixed = (*existing).clone();
            fixed.metadata.owner_references = Some(claim_owner_refs(existing, set, pod));
            work.owners.push(fixed);
        }
    }
}

/// Whether every existing claim of the pod carries out the policy (upstream's
/// `ClaimsMatchRetentionPolicy`; missing claims are picked up later).
fn claims_match(inp: &Inputs, set: &StatefulSet, pod: &Pod) -> bool {
    let Some(ordinal) = ordinal_of(pod) else {
        return true;
    };
    claims_for(set, ordinal).iter().all(|(_, c)| {
        let n = c.metadata.name.as_deref().unwrap_or_default();
        inp.claims
            .get(n)
            .is_none_or(|existing| claim_owner_up_to_date(existing, set, pod))
    })
}

/// Whether a claim of the pod to create still has an owner reference to an earlier pod of the
/// same name, under whenScaled=Delete: the garbage collector has yet to delete it, so the pod
/// must wait (upstream's `PodClaimIsStale`).
fn claim_is_stale(inp: &Inputs, pod: &Pod) -> bool {
    if !retention(inp.set).delete_when_scaled {
        return false;
    }
    let Some(ordinal) = ordinal_of(pod) else {
        return false;
    };
    claims_for(inp.set, ordinal).iter().any(|(_, c)| {
        let n = c.metadata.name.as_deref().unwrap_or_default();
        inp.claims
            .get(n)
            .is_some_and(|existing| has_stale_owner_ref(existing, Owner::pod(pod)))
    })
}

/// One replica (upstream's `processReplica`): its work, and whether an ordered set must stop
/// here.
fn process_replica(inp: &Inputs, replica: &Replica, monotonic: bool) -> (Work, bool) {
    let min_ready = min_ready_seconds(inp.set);
    let pod = match replica {
        Replica::New(pod) => {
            if claim_is_stale(inp, pod) {
                return (Vec::new(), true);
            }
            let claims = claim_work(inp, inp.set, pod);
            let work = vec![Step::CreatePod {
                pod: pod.clone(),
                claims,
            }];
            // A created pod has its identity, storage and claim owners already.
            return (work, monotonic);
        }
        Replica::Existing(pod) => *pod,
    };
    if matches!(phase(pod), "Failed" | "Succeeded") {
        let work = if terminating(pod) {
            Vec::new()
        } else {
            vec![Step::DeletePod {
                pod: name(pod),
                uid: pod.metadata.uid.clone(),
                cause: DeleteCause::Finished,
            }]
        };
        // The replacement is made once the cache no longer has this pod.
        return (work, true);
    }
    let mut work = Vec::new();
    if phase(pod) == "Pending" {
        let claims = claim_work(inp, inp.set, pod);
        if !claims.is_empty() {
            work.push(Step::CreateClaims {
                pod: name(pod),
                claims,
            });
        }
    }
    if monotonic
        && (terminating(pod)
            || !is_running_and_ready(pod)
            || !is_pod_available(pod, min_ready, inp.now))
    {
        return (work, true);
    }
    let set = inp.update_set;
    let identity_ok = identity_matches(set, pod);
    let storage_ok = storage_matches(set, pod);
    if identity_ok && storage_ok && claims_match(inp, set, pod) {
        return (work, false);
    }
    let mut claims = ClaimWork::default();
    let update = (!identity_ok || !storage_ok).then(|| {
        let mut fixed = pod.clone();
        update_identity(set, &mut fixed);
        let volumes = (!storage_ok).then(|| {
            update_storage(set, &mut fixed);
            fixed
                .spec
                .as_ref()
                .and_then(|s| s.volumes.clone())
                .unwrap_or_default()
        });
        PodUpdate {
            labels: fixed.metadata.labels.clone().unwrap_or_default(),
            volumes,
            resource_version: pod.metadata.resource_version.clone(),
        }
    });
    if storage_ok {
        retention_work(inp, set, pod, &mut claims);
    } else {
        claims = claim_work(inp, set, pod);
    }
    work.push(Step::UpdatePod {
        pod: name(pod),
        update,
        claims,
    });
    (work, false)
}

/// The plan for the set (upstream's `updateStatefulSet`).
pub fn plan(inp: &Inputs) -> Plan {
    let set = inp.set;
    let min_ready = min_ready_seconds(set);
    let count = usize::try_from(replicas(set)).unwrap_or(0);
    let start = start_ordinal(set);
    let mut slots: Vec<Option<&Pod>> = vec![None; count];
    let mut condemned: Vec<&Pod> = Vec::new();
    for pod in inp.pods.iter().copied() {
        let ordinal = ordinal_of(pod);
        match ordinal {
            Some(o) if in_ordinal_range(ordinal, set) => {
                if let Some(slot) = usize::try_from(o - start)
                    .ok()
                    .and_then(|i| slots.get_mut(i))
                {
                    *slot = Some(pod);
                }
            }
            Some(_) => condemned.push(pod),
            None => {}
        }
    }
    let replicas: Vec<Replica> = slots
        .iter()
        .zip(start..=end_ordinal(set))
        .map(|(slot, ordinal)| match slot {
            Some(p) => Replica::Existing(p),
            None => Replica::New(Box::new(versioned_pod(inp, ordinal))),
        })
        .collect();
    condemned.sort_by_key(|p| std::cmp::Reverse(ordinal_of(p)));

    let counted = replicas
        .iter()
        .map(Replica::pod)
        .chain(condemned.iter().copied());
    let mut status = replica_status(
        set,
        counted,
        inp.current_revision,
        inp.update_revision,
        inp.now,
    );
    status.observed_generation = set.metadata.generation;
    status.current_revision = Some(inp.current_revision.to_string()).filter(|s| !s.is_empty());
    status.update_revision = Some(inp.update_revision.to_string()).filter(|s| !s.is_empty());
    status.collision_count = Some(inp.collision_count);
    let monotonic = set
        .spec
        .as_ref()
        .and_then(|s| s.pod_management_policy.as_deref())
        != Some("Parallel");
    let mut plan = Plan {
        monotonic,
        phases: Default::default(),
        status,
    };
    if set.metadata.deletion_timestamp.is_some() {
        // A set being deleted only reports, over every pod it owns.
        let all = replica_status(
            set,
            inp.pods.iter().copied(),
            inp.current_revision,
            inp.update_revision,
            inp.now,
        );
        plan.status = StatefulSetStatus {
            observed_generation: plan.status.observed_generation,
            current_revision: plan.status.current_revision.clone(),
            update_revision: plan.status.update_revision.clone(),
            collision_count: plan.status.collision_count,
            ..all
        };
        return plan;
    }

    // Phase 1: the replicas, in ordinal order.
    for replica in &replicas {
        let (work, stop) = process_replica(inp, replica, monotonic);
        if !work.is_empty() {
            plan.phases[0].push(work);
        }
        if monotonic && stop {
            return plan;
        }
    }

    // Phase 2: claim owners of condemned pods.
    for pod in &condemned {
        if !claims_match(inp, inp.update_set, pod) {
            let mut claims = ClaimWork::default();
            retention_work(inp, inp.update_set, pod, &mut claims);
            plan.phases[1].push(vec![Step::UpdateClaims {
                pod: name(pod),
                claims,
            }]);
        }
    }

    // Phase 3: condemned pods, highest ordinal first. An ordered set deletes one only when
    // every replica is healthy and the others are healthy or it is the first unhealthy one.
    let first_unhealthy = replicas
        .iter()
        .map(Replica::pod)
        .chain(condemned.iter().rev().copied())
        .find(|p| !is_healthy(p))
        .map(name);
    for pod in &condemned {
        if terminating(pod) {
            if monotonic {
                return plan;
            }
            continue;
        }
        let first = first_unhealthy.as_deref() == pod.metadata.name.as_deref();
        if monotonic
            && !first
            && (!is_running_and_ready(pod) || !is_pod_available(pod, min_ready, inp.now))
        {
            return plan;
        }
        plan.phases[2].push(vec![Step::DeletePod {
            pod: name(pod),
            uid: pod.metadata.uid.clone(),
            cause: DeleteCause::ScaleDown,
        }]);
        if monotonic {
            return plan;
        }
    }

    // Phase 4: the rolling update. OnDelete leaves pods until someone deletes them.
    let strategy = set.spec.as_ref().and_then(|s| s.update_strategy.as_ref());
    if strategy.and_then(|u| u.type_.as_deref()) == Some("OnDelete") {
        return plan;
    }
    let partition = strategy
        .and_then(|u| u.rolling_update.as_ref())
        .and_then(|r| r.partition)
        .unwrap_or(0);
    let update_min = usize::try_from(partition).unwrap_or(0);
    for replica in replicas.iter().skip(update_min).rev() {
        let pod = replica.pod();
        if pod_revision(pod) != inp.update_revision && !terminating(pod) {
            if let Replica::Existing(p) = replica {
                plan.phases[3].push(vec![Step::DeletePod {
                    pod: name(p),
                    uid: p.metadata.uid.clone(),
                    cause: DeleteCause::Update,
                }]);
                plan.status.current_replicas = nz(plan.status.current_replicas.unwrap_or(0) - 1);
            }
            return plan;
        }
        if !is_healthy(pod) {
            return plan;
        }
    }
    plan
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
