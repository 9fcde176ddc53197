//! What the workload controllers share (upstream's `pkg/controller/controller_utils.go` and
//! `controller_ref_manager.go`): expectations, pods built from templates, slow-start batches,
//! the order in which pods are deleted, pod readiness, and claiming objects by ownerReference.
//!
//! Everything here is pure or behind a closure, so the ReplicaSet, ReplicationController,
//! Deployment, DaemonSet, Job and StatefulSet controllers can reuse it and table-test it.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, PodCondition, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use rkube_api::selector::LabelSelector;

/// How long expectations wait for the cache before the controller acts anyway (upstream's
/// `ExpectationsTimeout`).
pub const EXPECTATIONS_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// The first batch of [`slow_start_batch`] (upstream's `SlowStartInitialBatchSize`).
pub const SLOW_START_INITIAL_BATCH_SIZE: usize = 1;

/// The annotation that orders pods of equal rank for deletion (lower cost goes first).
pub const POD_DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

#[derive(Debug, Clone)]
struct Expectation {
    adds: i64,
    dels: i64,
    /// Keys (`namespace/name`) of the objects whose deletion is awaited, so a deletion seen
    /// twice (graceful then final) is counted once, as upstream's UID-tracking expectations.
    deleting: HashSet<String>,
    set_at: Instant,
}

/// Upstream's `ControllerExpectations` (with `UIDTrackingControllerExpectations` folded in):
/// per controller key, the creations and deletions the controller made and has not yet seen
/// in its cache. While some are outstanding (and younger than [`EXPECTATIONS_TIMEOUT`]) the
/// controller must not act on counts, or it would create or delete twice.
#[derive(Debug, Default)]
pub struct Expectations {
    inner: Mutex<HashMap<String, Expectation>>,
}

impl Expectations {
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, Expectation>) -> R) -> R {
        f(&mut self.inner.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Whether `key` may act: nothing is recorded, everything awaited was seen, or the
    /// record is older than the timeout.
    pub fn satisfied(&self, key: &str) -> bool {
        self.satisfied_at(key, Instant::now())
    }

    /// [`satisfied`](Self::satisfied) at `now`.
    pub fn satisfied_at(&self, key: &str, now: Instant) -> bool {
        self.with(|m| match m.get(key) {
            None => true,
            Some(e) => {
                (e.adds <= 0 && e.dels <= 0)
                    || now.saturating_duration_since(e.set_at) > EXPECTATIONS_TIMEOUT
            }
        })
    }

    /// Awaits `adds` creations for `key`, replacing what was recorded.
    pub fn expect_creations(&self, key: &str, adds: usize) {
        self.set(key, adds as i64, HashSet::new());
    }

    /// Awaits the deletion of these objects (`namespace/name` keys) for `key`.
    pub fn expect_deletions(&self, key: &str, objects: impl IntoIterator<Item = String>) {
        self.set(key, 0, objects.into_iter().collect());
    }

    /// Awaits `adds` creations and the deletion of these objects together, for a sync that
    /// does both (upstream's `SetExpectations`).
    pub fn expect(&self, key: &str, adds: usize, deletions: impl IntoIterator<Item = String>) {
        self.set(key, adds as i64, deletions.into_iter().collect());
    }

    /// Records what a watch event of pod `pod_key` (`namespace/name`) of `key` was.
    pub fn observe(&self, key: &str, sighting: Sighting, pod_key: &str) {
        match sighting {
            Sighting::Created => self.creation_observed(key),
            Sighting::Deleting => self.deletion_observed(key, pod_key),
            Sighting::Other => {}
        }
    }

    fn set(&self, key: &str, adds: i64, deleting: HashSet<String>) {
        let e = Expectation {
            adds,
            dels: deleting.len() as i64,
            deleting,
            set_at: Instant::now(),
        };
        self.with(|m| m.insert(key.to_string(), e));
    }

    /// One creation for `key` reached the cache (or will never happen: the create failed).
    pub fn creation_observed(&self, key: &str) {
        self.lower(key, 1);
    }

    /// Lowers the awaited creations of `key` by `n` (creations that were skipped or failed).
    pub fn lower(&self, key: &str, n: usize) {
        self.with(|m| {
            if let Some(e) = m.get_mut(key) {
                e.adds -= n as i64;
            }
        });
    }

    /// Object `object` (`namespace/name`) of `key` is gone or going; counted once.
    pub fn deletion_observed(&self, key: &str, object: &str) {
        self.with(|m| {
            if let Some(e) = m.get_mut(key) {
                if e.deleting.remove(object) {
                    e.dels -= 1;
                }
            }
        });
    }

    /// Forgets `key` (its controller was deleted).
    pub fn delete(&self, key: &str) {
        self.with(|m| m.remove(key));
    }
}

/// Upstream's `rand.SafeEncodeString` alphabet: no vowels, no confusable characters.
const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Upstream's `rand.SafeEncodeString`: each byte of `s` as a letter of an alphabet without
/// vowels, so hashes in names spell no words.
pub fn safe_encode(s: &str) -> String {
    s.bytes()
        .map(|b| SAFE_ALPHABET[b as usize % SAFE_ALPHABET.len()] as char)
        .collect()
}

/// FNV-1a, 32 bits (Go's `hash/fnv` `New32a`).
pub fn fnv32a(data: &[u8]) -> u32 {
    data.iter().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// FNV-1, 32 bits (Go's `hash/fnv` `New32`): multiply, then xor.
pub fn fnv32(data: &[u8]) -> u32 {
    data.iter().fold(0x811c_9dc5u32, |h, b| {
        h.wrapping_mul(0x0100_0193) ^ u32::from(*b)
    })
}

/// What one pod event tells a controller's expectations (upstream's `addPod`, `updatePod`
/// and `deletePod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sighting {
    /// The pod's first sighting: a creation.
    Created,
    /// Deleted, or being deleted: a deletion.
    Deleting,
    /// Neither.
    Other,
}

/// The pods a controller has seen, so that a pod's first sighting counts as its creation and
/// a pod adopted later (seen before, as an orphan) does not.
#[derive(Debug, Default)]
pub struct PodSightings(Mutex<HashSet<String>>);

impl PodSightings {
    /// Notes a watch event of `pod` (`deleted` for a delete event) and says what it was.
    pub fn sight(&self, pod: &Pod, deleted: bool) -> Sighting {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let mut seen = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if deleted {
            seen.remove(&uid);
            return Sighting::Deleting;
        }
        let first = seen.insert(uid);
        if pod.metadata.deletion_timestamp.is_some() {
            Sighting::Deleting
        } else if first {
            Sighting::Created
        } else {
            Sighting::Other
        }
    }
}

/// `namespace/name` of an object.
pub fn key_of(meta: &ObjectMeta) -> String {
    format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default()
    )
}

/// The owner reference a controller puts on what it creates or adopts (upstream's
/// `NewControllerRef`): `controller` and `blockOwnerDeletion` true.
pub fn controller_ref(owner: &ObjectMeta, api_version: &str, kind: &str) -> OwnerReference {
    OwnerReference {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
        name: owner.name.clone().unwrap_or_default(),
        uid: owner.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The ownerReference with `controller: true`, if any (upstream's `GetControllerOf`).
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
}

/// The `generateName` of pods made for controller `name`: `<name>-`, or the bare name when
/// the dash would make it an invalid pod name (upstream's `getPodsPrefix`).
pub fn pods_prefix(name: &str) -> String {
    let prefix = format!("{name}-");
    // Validated as a prefix: the trailing dash stands for the random suffix to come.
    let masked = format!("{name}a");
    if rkube_api::selector::names::dns1123_subdomain_errors(&masked).is_empty() {
        prefix
    } else {
        name.to_string()
    }
}

/// A pod for `template` owned by `owner_ref` (upstream's `GetPodFromTemplate`): the
/// template's labels, annotations, finalizers and spec, `generateName` from the owner.
pub fn pod_from_template(
    template: &PodTemplateSpec,
    namespace: &str,
    owner_ref: OwnerReference,
) -> Pod {
    let tmeta = template.metadata.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(pods_prefix(&owner_ref.name)),
            namespace: Some(namespace.to_string()),
            labels: tmeta.labels,
            annotations: tmeta.annotations,
            finalizers: tmeta.finalizers,
            owner_references: Some(vec![owner_ref]),
            ..Default::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

/// Runs `count` calls of `call` in batches of 1, 2, 4, ... (starting at `initial`), each
/// batch concurrently; stops after the first batch with a failure, so a controller that
/// cannot create (quota, admission) does not flood the API (upstream's `slowStartBatch`).
/// Returns how many calls succeeded and the first error.
pub async fn slow_start_batch<F, Fut, E>(
    count: usize,
    initial: usize,
    mut call: F,
) -> (usize, Option<E>)
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    let mut remaining = count;
    let mut successes = 0;
    let mut batch = initial.max(1).min(count);
    let mut index = 0;
    while batch > 0 {
        let calls: Vec<Fut> = (index..index + batch).map(&mut call).collect();
        index += batch;
        let results = futures::future::join_all(calls).await;
        let mut first_error = None;
        for r in results {
            match r {
                Ok(()) => successes += 1,
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if first_error.is_some() {
            return (successes, first_error);
        }
        remaining -= batch;
        batch = (2 * batch).min(remaining);
    }
    (successes, None)
}

/// The pod's `Ready` condition.
pub fn ready_condition(pod: &Pod) -> Option<&PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Ready")
}

/// Ready condition `True` (upstream's `IsPodReady`).
pub fn is_pod_ready(pod: &Pod) -> bool {
    ready_condition(pod).is_some_and(|c| c.status == "True")
}

/// Ready for at least `min_ready_seconds` at `now` (upstream's `IsPodAvailable`).
pub fn is_pod_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    let Some(c) = ready_condition(pod).filter(|c| c.status == "True") else {
        return false;
    };
    if min_ready_seconds <= 0 {
        return true;
    }
    c.last_transition_time.as_ref().is_some_and(|t| {
        let ready_since = t.0.as_second();
        ready_since.saturating_add(i64::from(min_ready_seconds)) < now.as_second()
    })
}

/// Neither finished nor being deleted (upstream's `IsPodActive`).
pub fn is_pod_active(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    !matches!(phase, Some("Succeeded") | Some("Failed"))
        && pod.metadata.deletion_timestamp.is_none()
}

/// Pending < Unknown < Running; any other phase ranks as Pending (upstream's map lookup
/// yields zero for phases it does not list).
fn phase_ordinal(pod: &Pod) -> u8 {
    match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Unknown") => 1,
        Some("Running") => 2,
        _ => 0,
    }
}

fn deletion_cost(pod: &Pod) -> i32 {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(POD_DELETION_COST))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn max_restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .map(|c| c.restart_count)
        .max()
        .unwrap_or(0)
}

/// `floor(log2(now - t))` in nanoseconds, -1 for a time not in the past: pods whose ages
/// are within a factor of two count as equally old (upstream's `LogarithmicScaleDown`).
fn log_age(t: &Timestamp, now: Timestamp) -> i64 {
    let d = now.as_nanosecond() - t.as_nanosecond();
    if d <= 0 {
        -1
    } else {
        127 - i64::from(d.leading_zeros())
    }
}

/// Compares two optional times as upstream's `afterOrZero` then the logarithmic rank: a zero
/// time first, then the newer one; `None` when they rank equal.
fn newer_first(a: Option<&Timestamp>, b: Option<&Timestamp>, now: Timestamp) -> Option<Ordering> {
    if a == b {
        return None;
    }
    match (a, b) {
        (None, _) => Some(Ordering::Less),
        (_, None) => Some(Ordering::Greater),
        (Some(a), Some(b)) => match log_age(a, now).cmp(&log_age(b, now)) {
            Ordering::Equal => None,
            o => Some(o),
        },
    }
}

fn created(pod: &Pod) -> Option<&Timestamp> {
    pod.metadata.creation_timestamp.as_ref().map(|t| &t.0)
}

fn ready_since(pod: &Pod) -> Option<&Timestamp> {
    ready_condition(pod)
        .filter(|c| c.status == "True")
        .and_then(|c| c.last_transition_time.as_ref())
        .map(|t| &t.0)
}

/// Upstream's `ActivePodsWithRanks.Less`: `Less` means `a` is deleted before `b`. Unassigned
/// before assigned; Pending before Unknown before Running; not ready before ready; lower
/// deletion cost first; higher `rank` (pods doubled up on a node) first; ready for less time
/// first; more restarts first; newer first; ties broken by uid. Times compare by their age at
/// `now` on a logarithmic scale (upstream's `LogarithmicScaleDown`).
pub fn compare_for_deletion(
    a: &Pod,
    rank_a: usize,
    b: &Pod,
    rank_b: usize,
    now: Timestamp,
) -> Ordering {
    let node = |p: &Pod| {
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .is_some_and(|n| !n.is_empty())
    };
    node(a)
        .cmp(&node(b))
        .then_with(|| phase_ordinal(a).cmp(&phase_ordinal(b)))
        .then_with(|| is_pod_ready(a).cmp(&is_pod_ready(b)))
        .then_with(|| deletion_cost(a).cmp(&deletion_cost(b)))
        .then_with(|| rank_b.cmp(&rank_a))
        .then_with(|| {
            if is_pod_ready(a) && is_pod_ready(b) {
                newer_first(ready_since(a), ready_since(b), now).unwrap_or(Ordering::Equal)
            } else {
                Ordering::Equal
            }
        })
        .then_with(|| max_restarts(b).cmp(&max_restarts(a)))
        .then_with(|| newer_first(created(a), created(b), now).unwrap_or(Ordering::Equal))
        .then_with(|| a.metadata.uid.cmp(&b.metadata.uid))
}

/// The `n` pods of `pods` to delete first: ranked by how many of `related` (active pods of
/// the same workload, e.g. all ReplicaSets of a Deployment) share their node (upstream's
/// `getPodsRankedByRelatedPodsOnSameNode`), then by [`compare_for_deletion`].
pub fn pods_to_delete<'a>(
    pods: &[&'a Pod],
    related: &[&Pod],
    n: usize,
    now: Timestamp,
) -> Vec<&'a Pod> {
    let node_of = |p: &Pod| p.spec.as_ref().and_then(|s| s.node_name.clone());
    let mut on_node: HashMap<String, usize> = HashMap::new();
    for p in related.iter().filter(|p| is_pod_active(p)) {
        if let Some(node) = node_of(p).filter(|n| !n.is_empty()) {
            *on_node.entry(node).or_default() += 1;
        }
    }
    let mut ranked: Vec<(&Pod, usize)> = pods
        .iter()
        .map(|p| {
            let rank = node_of(p)
                .and_then(|n| on_node.get(&n).copied())
                .unwrap_or(0);
            (*p, rank)
        })
        .collect();
    ranked.sort_by(|(a, ra), (b, rb)| compare_for_deletion(a, *ra, b, *rb, now));
    ranked.into_iter().take(n).map(|(p, _)| p).collect()
}

/// What claiming found among a controller's candidate objects.
#[derive(Debug)]
pub struct Claims<'a, T> {
    /// Owned (already or once adopted) and matching the selector.
    pub owned: Vec<&'a T>,
    /// Orphans matching the selector, to adopt by adding the controller reference.
    pub adopt: Vec<&'a T>,
    /// Owned but no longer matching, to release by removing the controller reference.
    pub release: Vec<&'a T>,
}

/// Upstream's `ControllerRefManager.ClaimObject` over `candidates` of the owner's namespace:
/// objects owned by another controller are ignored; owned ones that match stay, owned ones
/// that no longer match are released (not while the owner is being deleted); matching
/// orphans that are not being deleted are adopted (not while the owner is being deleted).
/// Callers must re-check the owner against the API before adopting, as upstream's
/// `RecheckDeletionTimestamp`, and treat an adoption as owned only once its patch succeeds.
pub fn claim<'a, T: kube::Resource>(
    owner: &ObjectMeta,
    selector: &LabelSelector,
    candidates: impl IntoIterator<Item = &'a T>,
) -> Claims<'a, T> {
    let mut out = Claims {
        owned: Vec::new(),
        adopt: Vec::new(),
        release: Vec::new(),
    };
    let owner_deleting = owner.deletion_timestamp.is_some();
    for obj in candidates {
        let meta = obj.meta();
        let matches = selector.matches(&meta.labels);
        match controller_of(meta) {
            Some(r) if Some(&r.uid) != owner.uid.as_ref() => {}
            Some(_) if matches => out.owned.push(obj),
            Some(_) if !owner_deleting => out.release.push(obj),
            Some(_) => {}
            None => {
                let adoptable = matches
                    && !owner_deleting
                    && meta.deletion_timestamp.is_none()
                    && meta.namespace == owner.namespace;
                if adoptable {
                    out.adopt.push(obj);
                }
            }
        }
    }
    out
}

/// The JSON merge patch that adopts `obj` (its ownerReferences plus `owner_ref`), guarded
/// by its uid and resourceVersion so it cannot land on a newer or a recreated object.
pub fn adopt_patch(obj: &ObjectMeta, owner_ref: &OwnerReference) -> serde_json::Value {
    let mut refs: Vec<OwnerReference> = obj.owner_references.clone().unwrap_or_default();
    refs.retain(|r| r.uid != owner_ref.uid);
    refs.push(owner_ref.clone());
    owner_refs_patch(obj, refs)
}

/// The JSON merge patch that releases `obj` from the owner with `owner_uid`.
pub fn release_patch(obj: &ObjectMeta, owner_uid: &str) -> serde_json::Value {
    let mut refs: Vec<OwnerReference> = obj.owner_references.clone().unwrap_or_default();
    refs.retain(|r| r.uid != owner_uid);
    owner_refs_patch(obj, refs)
}

fn owner_refs_patch(obj: &ObjectMeta, refs: Vec<OwnerReference>) -> serde_json::Value {
    serde_json::json!({"metadata": {
        "uid": obj.uid,
        "resourceVersion": obj.resource_version,
        "ownerReferences": refs,
    }})
}

/// Whether every label of `template` is on the object (upstream's `fullyLabeledReplicas`).
pub fn has_all_labels(
    labels: Option<&BTreeMap<String, String>>,
    template: Option<&BTreeMap<String, String>>,
) -> bool {
    template
        .into_iter()
        .flatten()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pods_first_sighting_is_its_creation_and_deletion_is_deleting() {
        let pod = |uid: &str, deleting: bool| Pod {
            metadata: ObjectMeta {
                uid: Some(uid.into()),
                deletion_timestamp: deleting.then_some(
                    k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Timestamp::UNIX_EPOCH),
                ),
                ..Default::default()
            },
            ..Default::default()
        };
        let s = PodSightings::default();
        assert_eq!(s.sight(&pod("a", false), false), Sighting::Created);
        assert_eq!(s.sight(&pod("a", false), false), Sighting::Other);
        assert_eq!(s.sight(&pod("a", true), false), Sighting::Deleting);
        assert_eq!(s.sight(&pod("a", true), true), Sighting::Deleting);
        assert_eq!(
            s.sight(&pod("a", false), false),
            Sighting::Created,
            "forgotten once deleted"
        );
    }
    use k8s_openapi::api::core::v1::{PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use serde_json::json;

    fn ts(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    /// A pod: name, node, phase, ready since (seconds), created at (seconds).
    fn pod(name: &str, node: &str, phase: &str, ready: Option<i64>, created: i64) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                uid: Some(format!("uid-{name}")),
                creation_timestamp: Some(Time(ts(created))),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: (!node.is_empty()).then(|| node.to_string()),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: ready.map(|t| {
                    vec![PodCondition {
                        type_: "Ready".into(),
                        status: "True".into(),
                        last_transition_time: Some(Time(ts(t))),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn creations_and_deletions_awaited_together_hold_until_both_are_observed() {
        let e = Expectations::default();
        e.expect("ns/ds", 1, ["ns/old".to_string()]);
        e.observe("ns/ds", Sighting::Created, "ns/new");
        assert!(!e.satisfied("ns/ds"), "the deletion is still awaited");
        e.observe("ns/ds", Sighting::Other, "ns/old");
        assert!(!e.satisfied("ns/ds"));
        e.observe("ns/ds", Sighting::Deleting, "ns/old");
        assert!(e.satisfied("ns/ds"));
    }

    #[test]
    fn expectations_hold_until_observed_or_expired() {
        let e = Expectations::default();
        assert!(e.satisfied("ns/rs"), "nothing recorded");
        e.expect_creations("ns/rs", 2);
        assert!(!e.satisfied("ns/rs"));
        e.creation_observed("ns/rs");
        assert!(!e.satisfied("ns/rs"));
        e.lower("ns/rs", 1);
        assert!(e.satisfied("ns/rs"));

        e.expect_deletions("ns/rs", ["ns/a".to_string(), "ns/b".to_string()]);
        e.deletion_observed("ns/rs", "ns/a");
        e.deletion_observed("ns/rs", "ns/a");
        assert!(!e.satisfied("ns/rs"), "a deletion seen twice counts once");
        e.deletion_observed("ns/rs", "ns/other");
        assert!(
            !e.satisfied("ns/rs"),
            "an unexpected deletion does not count"
        );
        let later = Instant::now() + EXPECTATIONS_TIMEOUT + Duration::from_secs(1);
        assert!(e.satisfied_at("ns/rs", later), "expired");
        e.deletion_observed("ns/rs", "ns/b");
        assert!(e.satisfied("ns/rs"));
        e.expect_creations("ns/rs", 1);
        e.delete("ns/rs");
        assert!(e.satisfied("ns/rs"));
    }

    #[test]
    fn pod_from_template_carries_labels_owner_and_generate_name() {
        let template: PodTemplateSpec = serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web"}, "annotations": {"a": "1"}},
            "spec": {"containers": [{"name": "c", "image": "i"}]}
        }))
        .unwrap();
        let owner = ObjectMeta {
            name: Some("web-1".into()),
            uid: Some("u1".into()),
            ..Default::default()
        };
        let pod = pod_from_template(
            &template,
            "ns",
            controller_ref(&owner, "apps/v1", "ReplicaSet"),
        );
        let v = serde_json::to_value(&pod).unwrap();
        assert_eq!(v["metadata"]["generateName"], "web-1-");
        assert_eq!(v["metadata"]["namespace"], "ns");
        assert_eq!(v["metadata"]["labels"], json!({"app": "web"}));
        assert_eq!(v["metadata"]["annotations"], json!({"a": "1"}));
        assert_eq!(
            v["metadata"]["ownerReferences"],
            json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1",
                "uid": "u1", "controller": true, "blockOwnerDeletion": true}])
        );
        assert_eq!(v["spec"]["containers"][0]["image"], "i");
        assert_eq!(pods_prefix(&"a".repeat(253)), "a".repeat(253));
    }

    #[tokio::test]
    async fn slow_start_doubles_batches_and_stops_at_the_first_failing_batch() {
        let cases: &[(usize, Option<usize>, usize, &[usize])] = &[
            // count, index that fails, successes, batch sizes seen
            (10, None, 10, &[1, 2, 4, 3]),
            (10, Some(4), 6, &[1, 2, 4]),
            (10, Some(0), 0, &[1]),
            (0, None, 0, &[]),
        ];
        for (count, fail, want_ok, want_batches) in cases {
            let calls = Mutex::new(Vec::new());
            let (ok, err) = slow_start_batch(*count, SLOW_START_INITIAL_BATCH_SIZE, |i| {
                calls.lock().unwrap().push(i);
                let fails = Some(i) == *fail;
                async move {
                    if fails {
                        Err("refused")
                    } else {
                        Ok(())
                    }
                }
            })
            .await;
            assert_eq!(ok, *want_ok, "count {count}, fail {fail:?}");
            assert_eq!(err.is_some(), fail.is_some());
            let n = calls.lock().unwrap().len();
            assert_eq!(n, want_batches.iter().sum::<usize>(), "calls made");
        }
    }

    #[test]
    fn pods_are_deleted_in_upstreams_order() {
        let now = ts(100_000);
        // Each pair: (first to delete, second), the reason in the name.
        let cases: Vec<(&str, Pod, Pod)> = vec![
            (
                "unassigned first",
                pod("a", "", "Pending", None, 0),
                pod("b", "n", "Pending", None, 0),
            ),
            (
                "pending before running",
                pod("a", "n", "Pending", None, 0),
                pod("b", "n", "Running", None, 0),
            ),
            (
                "unknown before running",
                pod("a", "n", "Unknown", None, 0),
                pod("b", "n", "Running", None, 0),
            ),
            (
                "not ready first",
                pod("a", "n", "Running", None, 0),
                pod("b", "n", "Running", Some(5), 0),
            ),
            (
                "ready for less time first",
                pod("a", "n", "Running", Some(99_990), 0),
                pod("b", "n", "Running", Some(10), 0),
            ),
            (
                "newer first",
                pod("a", "n", "Running", None, 99_000),
                pod("b", "n", "Running", None, 10),
            ),
        ];
        for (what, first, second) in &cases {
            assert_eq!(
                compare_for_deletion(first, 0, second, 0, now),
                Ordering::Less,
                "{what}"
            );
            assert_eq!(
                compare_for_deletion(second, 0, first, 0, now),
                Ordering::Greater,
                "{what}"
            );
        }
        let mut cheap = pod("a", "n", "Running", None, 0);
        cheap.metadata.annotations = Some(BTreeMap::from([(
            POD_DELETION_COST.to_string(),
            "-5".to_string(),
        )]));
        let plain = pod("b", "n", "Running", None, 0);
        assert_eq!(
            compare_for_deletion(&cheap, 0, &plain, 0, now),
            Ordering::Less,
            "lower cost first"
        );
        assert_eq!(
            compare_for_deletion(&plain, 3, &plain.clone(), 1, now),
            Ordering::Less,
            "doubled up first"
        );

        let pods = [
            pod("ready", "n1", "Running", Some(10), 0),
            pod("pending", "n1", "Pending", None, 0),
            pod("unready", "n2", "Running", None, 0),
        ];
        let refs: Vec<&Pod> = pods.iter().collect();
        let names: Vec<String> = pods_to_delete(&refs, &refs, 2, now)
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, ["pending", "unready"]);
    }

    #[test]
    fn pod_state_helpers_follow_conditions_phase_and_deletion() {
        let now = ts(1_000);
        let ready = pod("a", "n", "Running", Some(990), 0);
        assert!(is_pod_ready(&ready));
        assert!(is_pod_available(&ready, 0, now));
        assert!(is_pod_available(&ready, 9, now));
        assert!(
            !is_pod_available(&ready, 10, now),
            "ready exactly minReadySeconds is not yet"
        );
        let unready = pod("b", "n", "Running", None, 0);
        assert!(!is_pod_ready(&unready) && !is_pod_available(&unready, 0, now));
        assert!(is_pod_active(&unready));
        assert!(!is_pod_active(&pod("c", "n", "Succeeded", None, 0)));
        assert!(!is_pod_active(&pod("d", "n", "Failed", None, 0)));
        let mut deleting = pod("e", "n", "Running", None, 0);
        deleting.metadata.deletion_timestamp = Some(Time(now));
        assert!(!is_pod_active(&deleting));
    }

    #[test]
    fn claim_adopts_matching_orphans_and_releases_unmatched_owned() {
        let owner = ObjectMeta {
            name: Some("rs".into()),
            namespace: Some("ns".into()),
            uid: Some("me".into()),
            ..Default::default()
        };
        let selector = LabelSelector::from_set(&BTreeMap::from([("app".into(), "web".into())]));
        let mk = |name: &str, app: &str, owner_uid: Option<&str>| {
            let mut p = pod(name, "", "Running", None, 0);
            p.metadata.labels = Some(BTreeMap::from([("app".to_string(), app.to_string())]));
            p.metadata.owner_references = owner_uid.map(|u| {
                vec![OwnerReference {
                    uid: u.into(),
                    controller: Some(true),
                    ..Default::default()
                }]
            });
            p
        };
        let mut deleting_orphan = mk("deleting-orphan", "web", None);
        deleting_orphan.metadata.deletion_timestamp = Some(Time(ts(1)));
        let mut elsewhere = mk("other-ns", "web", None);
        elsewhere.metadata.namespace = Some("other".into());
        let pods = vec![
            mk("mine", "web", Some("me")),
            mk("orphan", "web", None),
            mk("relabelled", "db", Some("me")),
            mk("theirs", "web", Some("them")),
            mk("unmatched-orphan", "db", None),
            deleting_orphan,
            elsewhere,
        ];
        let names = |v: &[&Pod]| -> Vec<String> {
            v.iter().map(|p| p.metadata.name.clone().unwrap()).collect()
        };
        let c = claim(&owner, &selector, &pods);
        assert_eq!(names(&c.owned), ["mine"]);
        assert_eq!(names(&c.adopt), ["orphan"]);
        assert_eq!(names(&c.release), ["relabelled"]);

        let mut deleting = owner.clone();
        deleting.deletion_timestamp = Some(Time(ts(1)));
        let c = claim(&deleting, &selector, &pods);
        assert_eq!(names(&c.owned), ["mine"]);
        assert!(
            c.adopt.is_empty() && c.release.is_empty(),
            "an owner being deleted neither adopts nor releases"
        );

        let oref = controller_ref(&owner, "apps/v1", "ReplicaSet");
        let patch = adopt_patch(&pods[1].metadata, &oref);
        assert_eq!(patch["metadata"]["uid"], "uid-orphan");
        assert_eq!(patch["metadata"]["ownerReferences"][0]["uid"], "me");
        let patch = release_patch(&pods[2].metadata, "me");
        assert_eq!(patch["metadata"]["ownerReferences"], json!([]));
    }
}
