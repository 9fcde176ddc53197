//! The pure core of the ReplicaSet controller: how many pods to create or which to delete,
//! and the status a ReplicaSet should report (upstream's `manageReplicas` decisions and
//! `calculateStatus`).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::controller_utils::{has_all_labels, is_pod_available, is_pod_ready, pods_to_delete};

/// The most pods one sync creates or deletes (upstream's `BurstReplicas`).
pub const BURST_REPLICAS: usize = 500;

/// The condition a ReplicaSet carries while it cannot create or delete its pods.
pub const REPLICA_FAILURE: &str = "ReplicaFailure";

/// What one sync does to the pod count.
#[derive(Debug, PartialEq)]
pub enum ReplicaChange<'a> {
    /// The count is right.
    None,
    /// Create this many pods.
    Create(usize),
    /// Delete these pods, first to go first.
    Delete(Vec<&'a Pod>),
}

/// `spec.replicas`, defaulted to 1 as the API does.
pub fn desired_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

fn min_ready_seconds(rs: &ReplicaSet) -> i32 {
    rs.spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0)
}

/// The change that brings `owned` (the active pods the ReplicaSet owns) to `spec.replicas`,
/// at most [`BURST_REPLICAS`] at once. Deletions follow upstream's ranking, counting `related`
/// pods (those of sibling ReplicaSets of the same Deployment too) on each pod's node; they are
/// gathered only when there is something to delete.
pub fn replica_change<'a>(
    rs: &ReplicaSet,
    owned: &[&'a Pod],
    related: impl FnOnce() -> Vec<Arc<Pod>>,
    now: Timestamp,
) -> ReplicaChange<'a> {
    let desired = desired_replicas(rs).max(0) as usize;
    let have = owned.len();
    if have < desired {
        ReplicaChange::Create((desired - have).min(BURST_REPLICAS))
    } else if have > desired {
        let n = (have - desired).min(BURST_REPLICAS);
        let related = related();
        let related: Vec<&Pod> = related.iter().map(|p| p.as_ref()).collect();
        ReplicaChange::Delete(pods_to_delete(owned, &related, n, now))
    } else {
        ReplicaChange::None
    }
}

/// Why managing replicas failed, for the `ReplicaFailure` condition.
#[derive(Debug, Clone, PartialEq)]
pub struct ManageFailure {
    /// `FailedCreate` or `FailedDelete`.
    pub reason: &'static str,
    pub message: String,
}

/// Upstream's `calculateStatus`: counts over `owned`, `observedGeneration`, and the
/// `ReplicaFailure` condition set on a failure (kept while failing) and removed once a sync
/// succeeds. Zero counts are left out, as upstream's `omitempty`.
pub fn calculate_status(
    rs: &ReplicaSet,
    owned: &[&Pod],
    failure: Option<&ManageFailure>,
    now: Timestamp,
) -> ReplicaSetStatus {
    let mut status = rs.status.clone().unwrap_or_default();
    let template_labels = rs
        .spec
        .as_ref()
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.as_ref());
    let count = |f: &dyn Fn(&Pod) -> bool| {
        let n = owned.iter().filter(|p| f(p)).count() as i32;
        (n > 0).then_some(n)
    };
    status.replicas = owned.len() as i32;
    status.fully_labeled_replicas =
        count(&|p| has_all_labels(p.metadata.labels.as_ref(), template_labels));
    status.ready_replicas = count(&is_pod_ready);
    let min_ready = min_ready_seconds(rs);
    status.available_replicas = count(&|p| is_pod_available(p, min_ready, now));
    status.observed_generation = rs.metadata.generation;
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    let has_failure = conditions.iter().any(|c| c.type_ == REPLICA_FAILURE);
    match failure {
        Some(f) if !has_failure => conditions.push(ReplicaSetCondition {
            type_: REPLICA_FAILURE.into(),
            status: "True".into(),
            reason: Some(f.reason.into()),
            message: Some(f.message.clone()),
            last_transition_time: Some(Time(now)),
        }),
        None => conditions.retain(|c| c.type_ != REPLICA_FAILURE),
        Some(_) => {}
    }
    if conditions.is_empty() {
        status.conditions = None;
    }
    status
}

/// When to look again so that pods ready but not yet available for `minReadySeconds` are
/// counted as available (upstream requeues after `minReadySeconds`).
pub fn availability_requeue(rs: &ReplicaSet, status: &ReplicaSetStatus) -> Option<Duration> {
    let min_ready = min_ready_seconds(rs);
    let desired = desired_replicas(rs);
    let ready = status.ready_replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    (min_ready > 0 && ready == desired && available != desired)
        .then(|| Duration::from_secs(min_ready as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rs(replicas: i32, min_ready: i32, status: serde_json::Value) -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns", "generation": 3},
            "spec": {"replicas": replicas, "minReadySeconds": min_ready,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web", "tier": "fe"}}}},
            "status": status,
        }))
        .unwrap()
    }

    fn pod(name: &str, labels: serde_json::Value, ready_at: Option<i64>) -> Pod {
        let conditions = ready_at.map(|t| {
            json!([{"type": "Ready", "status": "True",
                "lastTransitionTime": Timestamp::from_second(t).unwrap().to_string()}])
        });
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "ns", "uid": name, "labels": labels},
            "status": {"phase": "Running", "conditions": conditions},
        }))
        .unwrap()
    }

    #[test]
    fn replica_change_creates_the_shortfall_and_deletes_the_surplus_unready_first() {
        let now = Timestamp::from_second(1_000).unwrap();
        let pods = [
            pod("ready", json!({"app": "web"}), Some(10)),
            pod("unready", json!({"app": "web"}), None),
            pod("ready2", json!({"app": "web"}), Some(900)),
        ];
        let refs: Vec<&Pod> = pods.iter().collect();
        let names = |c: ReplicaChange| match c {
            ReplicaChange::Delete(v) => {
                v.iter().map(|p| p.metadata.name.clone().unwrap()).collect()
            }
            other => vec![format!("{other:?}")],
        };
        let cases: &[(i32, usize, Vec<String>)] = &[
            (5, 3, vec!["Create(2)".into()]),
            (3, 3, vec!["None".into()]),
            (2, 3, vec!["unready".into()]),
            (1, 3, vec!["unready".into(), "ready2".into()]),
            (1000, 0, vec!["Create(500)".into()]),
        ];
        for (replicas, have, want) in cases {
            let got = names(replica_change(
                &rs(*replicas, 0, json!(null)),
                &refs[..*have],
                || refs.iter().map(|p| Arc::new((*p).clone())).collect(),
                now,
            ));
            assert_eq!(&got, want, "replicas {replicas}, have {have}");
        }
    }

    #[test]
    fn status_counts_labeled_ready_and_available_pods() {
        let now = Timestamp::from_second(1_000).unwrap();
        let pods = [
            pod("full-old", json!({"app": "web", "tier": "fe"}), Some(900)),
            pod("full-new", json!({"app": "web", "tier": "fe"}), Some(995)),
            pod("partial", json!({"app": "web"}), None),
        ];
        let refs: Vec<&Pod> = pods.iter().collect();
        let set = rs(3, 10, json!(null));
        let s = calculate_status(&set, &refs, None, now);
        assert_eq!(s.replicas, 3);
        assert_eq!(s.fully_labeled_replicas, Some(2));
        assert_eq!(s.ready_replicas, Some(2));
        assert_eq!(
            s.available_replicas,
            Some(1),
            "one ready for less than minReadySeconds"
        );
        assert_eq!(s.observed_generation, Some(3));
        assert_eq!(availability_requeue(&set, &s), None, "not all ready yet");
        let s = calculate_status(&set, &refs[..2], None, now);
        let set2 = rs(2, 10, json!(null));
        assert_eq!(
            availability_requeue(&set2, &s),
            Some(Duration::from_secs(10))
        );
        let empty = calculate_status(&set, &[], None, now);
        assert_eq!((empty.replicas, empty.ready_replicas), (0, None));
    }

    #[test]
    fn replica_failure_is_set_on_failure_kept_while_failing_and_cleared_after() {
        let now = Timestamp::from_second(1_000).unwrap();
        let failure = ManageFailure {
            reason: "FailedCreate",
            message: "pods \"web-x\" is forbidden: exceeded quota".into(),
        };
        let s = calculate_status(&rs(1, 0, json!(null)), &[], Some(&failure), now);
        let c = &s.conditions.as_ref().unwrap()[0];
        assert_eq!(
            (c.type_.as_str(), c.status.as_str()),
            (REPLICA_FAILURE, "True")
        );
        assert_eq!(c.reason.as_deref(), Some("FailedCreate"));
        let failing = rs(1, 0, serde_json::to_value(&s).unwrap());
        let later = Timestamp::from_second(2_000).unwrap();
        let again = calculate_status(&failing, &[], Some(&failure), later);
        assert_eq!(again.conditions, s.conditions, "transition time kept");
        let fixed = calculate_status(&failing, &[], None, later);
        assert_eq!(fixed.conditions, None);
    }
}
