//! Table tests of the disruption controller's core.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::{json, Value};

use super::core::*;

fn now() -> Timestamp {
    "2024-05-01T12:00:00Z".parse().expect("time")
}

fn ts(offset_secs: i64) -> String {
    (now() + SignedDuration::from_secs(offset_secs)).to_string()
}

#[derive(Default)]
struct Lists {
    rcs: Vec<Arc<ReplicationController>>,
    rss: Vec<Arc<ReplicaSet>>,
    deployments: Vec<Arc<Deployment>>,
    statefulsets: Vec<Arc<StatefulSet>>,
}

fn by_name<K: kube::Resource>(v: &[Arc<K>], ns: &str, name: &str) -> Option<Arc<K>> {
    v.iter()
        .find(|o| {
            o.meta().namespace.as_deref() == Some(ns) && o.meta().name.as_deref() == Some(name)
        })
        .cloned()
}

impl Workloads for Lists {
    fn replication_controller(&self, ns: &str, name: &str) -> Option<Arc<ReplicationController>> {
        by_name(&self.rcs, ns, name)
    }
    fn replica_set(&self, ns: &str, name: &str) -> Option<Arc<ReplicaSet>> {
        by_name(&self.rss, ns, name)
    }
    fn deployment(&self, ns: &str, name: &str) -> Option<Arc<Deployment>> {
        by_name(&self.deployments, ns, name)
    }
    fn stateful_set(&self, ns: &str, name: &str) -> Option<Arc<StatefulSet>> {
        by_name(&self.statefulsets, ns, name)
    }
}

fn owner(api_version: &str, kind: &str, name: &str) -> Value {
    json!([{"apiVersion": api_version, "kind": kind, "name": name, "uid": format!("uid-{name}"),
        "controller": true}])
}

fn workload<K: serde::de::DeserializeOwned>(name: &str, replicas: i32, owners: Value) -> Arc<K> {
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "a", "uid": format!("uid-{name}"),
                "ownerReferences": owners},
            "spec": {"replicas": replicas, "selector": {},
                "template": {}}}))
        .expect("workload"),
    )
}

fn lists() -> Lists {
    Lists {
        rcs: vec![workload("rc", 4, json!([]))],
        rss: vec![
            workload("rs", 3, json!([])),
            workload("rs-of-d", 2, owner("apps/v1", "Deployment", "d")),
            workload("rs-of-gone", 2, owner("apps/v1", "Deployment", "gone")),
        ],
        deployments: vec![workload("d", 5, json!([]))],
        statefulsets: vec![workload("ss", 6, json!([]))],
    }
}

/// A pod labelled app=web; `ready`, `deleting`, and its controller.
fn pod(name: &str, ready: bool, deleting: bool, owners: Value) -> Pod {
    let mut meta = json!({"name": name, "namespace": "a", "labels": {"app": "web"},
        "ownerReferences": owners});
    if deleting {
        meta["deletionTimestamp"] = json!(ts(-1));
    }
    serde_json::from_value(json!({"metadata": meta, "spec": {"containers": []},
        "status": {"phase": "Running", "conditions": [{"type": "Ready",
            "status": if ready { "True" } else { "False" }}]}}))
    .expect("pod")
}

fn pdb(spec: Value, status: Value) -> PodDisruptionBudget {
    let mut spec = spec;
    if spec.get("selector").is_none() {
        spec["selector"] = json!({"matchLabels": {"app": "web"}});
    }
    serde_json::from_value(
        json!({"metadata": {"name": "b", "namespace": "a", "generation": 2},
        "spec": spec, "status": status}),
    )
    .expect("pdb")
}

fn rs_pods(n: usize, ready: usize) -> Vec<Pod> {
    (0..n)
        .map(|i| {
            pod(
                &format!("p{i}"),
                i < ready,
                false,
                owner("apps/v1", "ReplicaSet", "rs"),
            )
        })
        .collect()
}

/// (expected, current healthy, desired healthy, allowed, condition reason)
type Want = (i32, i32, i32, i32, &'static str);

#[test]
fn status_follows_the_budget_and_its_pods() {
    let bare = |n: usize, ready: usize| -> Vec<Pod> {
        (0..n)
            .map(|i| pod(&format!("p{i}"), i < ready, false, json!([])))
            .collect()
    };
    let cases: Vec<(&str, Value, Vec<Pod>, Want)> = vec![
        (
            "integer minAvailable counts the selected pods",
            json!({"minAvailable": 2}),
            bare(3, 3),
            (3, 3, 2, 1, SUFFICIENT_PODS),
        ),
        (
            "an unready pod is not healthy",
            json!({"minAvailable": 2}),
            bare(3, 2),
            (3, 2, 2, 0, INSUFFICIENT_PODS),
        ),
        (
            "a pod being deleted is not healthy",
            json!({"minAvailable": 1}),
            vec![
                pod("x", true, true, json!([])),
                pod("y", true, false, json!([])),
            ],
            (2, 1, 1, 0, INSUFFICIENT_PODS),
        ),
        (
            "no pods allow nothing",
            json!({"minAvailable": 0}),
            vec![],
            (0, 0, 0, 0, INSUFFICIENT_PODS),
        ),
        (
            "percent minAvailable rounds up against the scale",
            json!({"minAvailable": "50%"}),
            rs_pods(3, 3),
            (3, 3, 2, 1, SUFFICIENT_PODS),
        ),
        (
            "maxUnavailable takes the scale, not the pods",
            json!({"maxUnavailable": 1}),
            rs_pods(2, 2),
            (3, 2, 2, 0, INSUFFICIENT_PODS),
        ),
        (
            "percent maxUnavailable rounds up",
            json!({"maxUnavailable": "34%"}),
            rs_pods(3, 3),
            (3, 3, 1, 2, SUFFICIENT_PODS),
        ),
        (
            "maxUnavailable larger than the scale desires none",
            json!({"maxUnavailable": 5}),
            rs_pods(3, 3),
            (3, 3, 0, 3, SUFFICIENT_PODS),
        ),
        (
            "a Deployment's scale replaces its ReplicaSet's",
            json!({"maxUnavailable": 1}),
            vec![pod(
                "p",
                true,
                false,
                owner("apps/v1", "ReplicaSet", "rs-of-d"),
            )],
            (5, 1, 4, 0, INSUFFICIENT_PODS),
        ),
        (
            "ReplicationController and StatefulSet scales add up",
            json!({"maxUnavailable": "10%"}),
            vec![
                pod("p", true, false, owner("v1", "ReplicationController", "rc")),
                pod("q", true, false, owner("apps/v1", "StatefulSet", "ss")),
            ],
            (10, 2, 9, 0, INSUFFICIENT_PODS),
        ),
        (
            "unmanaged pods are left out of the scale",
            json!({"maxUnavailable": 1}),
            vec![
                pod("p", true, false, owner("apps/v1", "ReplicaSet", "rs")),
                pod("u", true, false, json!([])),
            ],
            (3, 2, 2, 0, INSUFFICIENT_PODS),
        ),
        (
            "an empty selector selects every pod",
            json!({"selector": {}, "minAvailable": 1}),
            bare(2, 2),
            (2, 2, 1, 1, SUFFICIENT_PODS),
        ),
    ];
    for (name, spec, pods, want) in cases {
        let budget = pdb(spec, json!({}));
        let refs: Vec<&Pod> = pods.iter().collect();
        let plan = sync(&budget, &refs, &lists(), now());
        assert_eq!(plan.failed, None, "{name}");
        let s = plan.status.expect(name);
        let cond = s.conditions.as_ref().and_then(|c| c.first()).expect(name);
        assert_eq!(
            (
                s.expected_pods,
                s.current_healthy,
                s.desired_healthy,
                s.disruptions_allowed,
                cond.reason.as_str()
            ),
            want,
            "{name}"
        );
        assert_eq!(
            cond.status,
            if want.3 > 0 { "True" } else { "False" },
            "{name}"
        );
        assert_eq!(s.observed_generation, Some(2), "{name}");
    }
}

#[test]
fn a_missing_controller_fails_safe_when_a_percentage_needs_a_scale() {
    let cases: Vec<(&str, Value, Value, Option<&str>)> = vec![
        (
            "ReplicaSet not in the cache",
            json!({"maxUnavailable": 1}),
            owner("apps/v1", "ReplicaSet", "nope"),
            Some("found no controllers for pod \"p\""),
        ),
        (
            "ReplicaSet whose Deployment is gone",
            json!({"minAvailable": "50%"}),
            owner("apps/v1", "ReplicaSet", "rs-of-gone"),
            Some("found no controllers for pod \"p\""),
        ),
        (
            "a kind no finder knows",
            json!({"maxUnavailable": 1}),
            owner("example.com/v1", "Widget", "w"),
            Some("found no controllers for pod \"p\""),
        ),
        (
            "an integer minAvailable needs no scale",
            json!({"minAvailable": 0}),
            owner("apps/v1", "ReplicaSet", "nope"),
            None,
        ),
    ];
    for (name, spec, owners, want) in cases {
        let budget = pdb(
            spec,
            json!({"disruptionsAllowed": 3, "observedGeneration": 2}),
        );
        let p = pod("p", true, false, owners);
        let plan = sync(&budget, &[&p], &lists(), now());
        assert_eq!(plan.failed.as_deref(), want, "{name}");
        let s = plan.status.expect(name);
        let cond = s.conditions.as_ref().and_then(|c| c.first()).expect(name);
        if let Some(msg) = want {
            assert_eq!(s.disruptions_allowed, 0, "{name}");
            assert_eq!(
                (cond.status.as_str(), cond.reason.as_str()),
                ("False", SYNC_FAILED)
            );
            assert_eq!(cond.message, msg, "{name}");
            assert!(plan
                .events
                .iter()
                .any(|e| e.reason == "CalculateExpectedPodCountFailed"));
        } else {
            assert_eq!(cond.reason, SUFFICIENT_PODS, "{name}");
        }
    }
}

#[test]
fn disrupted_pods_expire_or_go_with_their_pod() {
    // (entry, its age in seconds, pod state) -> kept?
    let cases: &[(&str, i64, Option<bool>, bool)] = &[
        ("recent entry of a live pod is kept", 30, Some(false), true),
        (
            "entry older than two minutes is dropped",
            121,
            Some(false),
            false,
        ),
        (
            "entry of a terminating pod is dropped",
            30,
            Some(true),
            false,
        ),
        ("entry of a gone pod is dropped", 30, None, false),
    ];
    for (name, age, pod_state, kept) in cases {
        let mut pods = vec![pod("other", true, false, json!([]))];
        if let Some(deleting) = pod_state {
            pods.push(pod("x", true, *deleting, json!([])));
        }
        let budget = pdb(
            json!({"minAvailable": 0}),
            json!({"disruptedPods": {"x": ts(-age)}}),
        );
        let refs: Vec<&Pod> = pods.iter().collect();
        let (map, recheck, expired) = disrupted_pods(&budget, &refs, now());
        assert_eq!(map.contains_key("x"), *kept, "{name}");
        assert_eq!(
            recheck,
            kept.then(|| now() + SignedDuration::from_secs(120 - age)),
            "{name}"
        );
        assert_eq!(expired.len(), usize::from(*age > 120), "{name}");
        // A kept entry is not healthy; the other ready pod is.
        let healthy = count_healthy(&refs, &map, now());
        let live_x = pod_state == &Some(false);
        assert_eq!(healthy, 1 + i32::from(live_x && !kept), "{name}");
    }
}

#[test]
fn an_up_to_date_status_is_not_written_again() {
    let pods = rs_pods(3, 3);
    let refs: Vec<&Pod> = pods.iter().collect();
    let budget = pdb(json!({"minAvailable": 2}), json!({}));
    let first = sync(&budget, &refs, &lists(), now()).status.expect("first");
    let mut synced = budget.clone();
    synced.status = Some(first.clone());
    let again = sync(
        &synced,
        &refs,
        &lists(),
        now() + SignedDuration::from_secs(5),
    );
    assert_eq!(again.status, None);
    // A new generation is observed anew.
    synced.metadata.generation = Some(3);
    let bumped = sync(&synced, &refs, &lists(), now())
        .status
        .expect("bumped");
    assert_eq!(bumped.observed_generation, Some(3));
}

#[test]
fn condition_transition_time_moves_only_on_a_status_change() {
    let mut status = PodDisruptionBudgetStatus {
        disruptions_allowed: 1,
        ..Default::default()
    };
    update_allowed_condition(&mut status, now());
    let later = now() + SignedDuration::from_secs(60);
    status.disruptions_allowed = 2;
    update_allowed_condition(&mut status, later);
    let t = |s: &PodDisruptionBudgetStatus| s.conditions.as_ref().expect("c")[0].clone();
    assert_eq!(t(&status).last_transition_time, Time(now()));
    status.disruptions_allowed = 0;
    update_allowed_condition(&mut status, later);
    assert_eq!(t(&status).last_transition_time, Time(later));
    assert_eq!(t(&status).reason, INSUFFICIENT_PODS);
}

#[test]
fn percentages_round_up() {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    let cases: &[(IntOrString, i32, Result<i32, ()>)] = &[
        (IntOrString::Int(2), 10, Ok(2)),
        (IntOrString::String("50%".into()), 3, Ok(2)),
        (IntOrString::String("10%".into()), 10, Ok(1)),
        (IntOrString::String("0%".into()), 10, Ok(0)),
        (IntOrString::String("100%".into()), 7, Ok(7)),
        (IntOrString::String("50".into()), 10, Err(())),
        (IntOrString::String("x%".into()), 10, Err(())),
    ];
    for (v, total, want) in cases {
        assert_eq!(
            scaled_value(v, *total).map_err(drop),
            *want,
            "{v:?} of {total}"
        );
    }
}

#[test]
fn pods_wake_the_budgets_that_select_them() {
    let p = pod("p", true, false, json!([]));
    let mk = |name: &str, sel: Value| -> PodDisruptionBudget {
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": "a"},
            "spec": {"selector": sel}}))
        .expect("pdb")
    };
    let mut other_ns = mk("elsewhere", json!({}));
    other_ns.metadata.namespace = Some("b".into());
    let budgets = [
        mk("match", json!({"matchLabels": {"app": "web"}})),
        mk("miss", json!({"matchLabels": {"app": "db"}})),
        mk("empty", json!({})),
        other_ns,
    ];
    let got: Vec<String> = budgets_for_pod(&p, budgets.iter()).into_iter().collect();
    assert_eq!(got, vec!["empty".to_string(), "match".to_string()]);
}
