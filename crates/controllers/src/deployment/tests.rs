//! Table tests of the Deployment core: hashes, fenceposts, and whole rollouts simulated on
//! plain objects (the "cluster" applies each plan and makes pods available one step later).

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, ReplicaSetStatus};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde_json::{json, Value};

use super::rollout::{plan, Action};
use super::util::*;

fn ts(s: i64) -> Timestamp {
    Timestamp::from_second(s).unwrap()
}

fn deployment(replicas: i32, image: &str, strategy: Value) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "ns", "uid": "d-uid", "generation": 1},
        "spec": {"replicas": replicas, "strategy": strategy, "progressDeadlineSeconds": 600,
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": image}]}}}
    }))
    .unwrap()
}

/// A tiny cluster: applies plans to ReplicaSets; pods become available one step after
/// their ReplicaSet grows.
struct Sim {
    d: Deployment,
    rss: Vec<ReplicaSet>,
    clock: i64,
    events: Vec<String>,
}

impl Sim {
    fn step(&mut self) -> Vec<Action> {
        self.clock += 1;
        let p = plan(&self.d, self.rss.clone(), &[], ts(self.clock));
        for a in &p.actions {
            match a {
                Action::CreateReplicaSet(rs) => {
                    let mut rs = rs.clone();
                    rs.metadata.uid = Some(format!("rs-{}", self.rss.len()));
                    rs.metadata.creation_timestamp = Some(Time(ts(self.clock)));
                    self.rss.push(rs);
                }
                Action::UpdateReplicaSet(rs) => {
                    let i = self
                        .rss
                        .iter()
                        .position(|r| r.metadata.name == rs.metadata.name)
                        .unwrap();
                    self.rss[i] = rs.clone();
                }
                Action::DeleteReplicaSet(rs) => {
                    self.rss.retain(|r| r.metadata.name != rs.metadata.name)
                }
                Action::SetRevision(r) => {
                    self.d
                        .metadata
                        .annotations
                        .get_or_insert_with(Default::default)
                        .insert(REVISION.into(), r.clone());
                }
                Action::UpdateStatus(s) => self.d.status = Some(s.clone()),
                Action::Event { note, .. } => self.events.push(note.clone()),
            }
        }
        // The ReplicaSet controller and kubelet: pods exist at once, available next step.
        for rs in &mut self.rss {
            let spec = rs_replicas(rs);
            let prev = rs.status.clone().unwrap_or_default();
            let available = spec.min(prev.replicas);
            rs.status = Some(ReplicaSetStatus {
                replicas: spec,
                ready_replicas: Some(available),
                available_replicas: Some(available),
                observed_generation: rs.metadata.generation,
                ..Default::default()
            });
        }
        p.actions
    }

    fn run_until_complete(&mut self, check: impl Fn(&Sim)) {
        for _ in 0..100 {
            self.step();
            check(self);
            if self
                .d
                .status
                .as_ref()
                .is_some_and(|s| deployment_complete(&self.d, s))
                && self.rss.iter().filter(|r| rs_replicas(r) > 0).count() == 1
            {
                return;
            }
        }
        panic!("rollout did not complete: {:?}", self.d.status);
    }

    fn sizes(&self) -> Vec<(String, i32)> {
        let image = |rs: &ReplicaSet| {
            rs.spec
                .as_ref()
                .and_then(|s| s.template.as_ref())
                .and_then(|t| t.spec.as_ref())
                .and_then(|s| s.containers[0].image.clone())
                .unwrap_or_default()
        };
        self.rss
            .iter()
            .map(|r| (image(r), rs_replicas(r)))
            .collect()
    }
}

fn set_image(d: &mut Deployment, image: &str) {
    let spec = d.spec.as_mut().unwrap();
    spec.template.spec.as_mut().unwrap().containers[0].image = Some(image.into());
    d.metadata.generation = Some(d.metadata.generation.unwrap_or(0) + 1);
}

#[test]
fn hash_is_stable_safe_encoded_and_changes_with_template_or_collision_count() {
    let t: PodTemplateSpec = serde_json::from_value(json!({"metadata": {"labels": {"a": "b"}},
        "spec": {"containers": [{"name": "c", "image": "i"}]}}))
    .unwrap();
    let h = compute_hash(&t, None);
    assert_eq!(h, compute_hash(&t.clone(), None));
    assert!(
        h.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)),
        "{h}"
    );
    assert_ne!(h, compute_hash(&t, Some(1)));
    let mut other = t.clone();
    other.spec.as_mut().unwrap().containers[0].image = Some("j".into());
    assert_ne!(h, compute_hash(&other, None));
    let mut hashed = t.clone();
    hashed
        .metadata
        .as_mut()
        .unwrap()
        .labels
        .as_mut()
        .unwrap()
        .insert(POD_TEMPLATE_HASH.into(), h);
    assert!(equal_ignore_hash(Some(&hashed), Some(&t)));
    assert!(!equal_ignore_hash(Some(&other), Some(&t)));
}

#[test]
fn fenceposts_round_surge_up_and_unavailability_down() {
    let cases: &[(i32, Value, Value, (i32, i32))] = &[
        (10, json!("25%"), json!("25%"), (3, 2)),
        (1, json!("25%"), json!("25%"), (1, 0)),
        (100, json!("20%"), json!(10), (20, 10)),
        (5, json!(0), json!(0), (0, 1)),
        (3, json!("0%"), json!("50%"), (0, 1)),
    ];
    for (replicas, surge, unavailable, want) in cases {
        let d = deployment(
            *replicas,
            "v1",
            json!({"type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}),
        );
        assert_eq!(
            (max_surge(&d), max_unavailable(&d)),
            *want,
            "{replicas} {surge} {unavailable}"
        );
    }
    let recreate = deployment(5, "v1", json!({"type": "Recreate"}));
    assert_eq!((max_surge(&recreate), max_unavailable(&recreate)), (0, 0));
}

#[test]
fn rolling_updates_keep_surge_and_unavailability_bounds_at_every_step() {
    let cases: &[(i32, Value, Value)] = &[
        (10, json!(3), json!(2)),
        (10, json!("25%"), json!("25%")),
        (7, json!(0), json!(1)),
        (7, json!(1), json!(0)),
        (1, json!("25%"), json!("25%")),
    ];
    for (replicas, surge, unavailable) in cases {
        let strategy = json!({"type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}});
        let mut sim = Sim {
            d: deployment(*replicas, "v1", strategy),
            rss: vec![],
            clock: 0,
            events: vec![],
        };
        sim.run_until_complete(|_| {});
        let (max_total, min_available) = (
            replicas + max_surge(&sim.d),
            replicas - max_unavailable(&sim.d),
        );
        set_image(&mut sim.d, "v2");
        sim.run_until_complete(|s| {
            let total: i32 = s.rss.iter().map(rs_replicas).sum();
            let available: i32 = s
                .rss
                .iter()
                .map(|r| {
                    r.status
                        .as_ref()
                        .and_then(|s| s.available_replicas)
                        .unwrap_or(0)
                })
                .sum();
            assert!(
                total <= max_total,
                "{replicas}/{surge}/{unavailable}: {total} > {max_total}: {:?}",
                s.sizes()
            );
            assert!(
                available >= min_available,
                "{replicas}/{surge}/{unavailable}: {available} < {min_available}"
            );
        });
        assert_eq!(
            sim.sizes(),
            vec![("v1".to_string(), 0), ("v2".to_string(), *replicas)]
        );
        let revs: Vec<String> = sim
            .rss
            .iter()
            .map(|r| r.metadata.annotations.as_ref().unwrap()[REVISION].clone())
            .collect();
        assert_eq!(revs, ["1", "2"]);
        assert!(sim
            .events
            .iter()
            .any(|e| e.starts_with("Scaled up replica set web-") && e.contains(" from 0 to ")));
        let s = sim.d.status.clone().unwrap();
        assert_eq!(
            get_condition(&s, PROGRESSING).unwrap().reason.as_deref(),
            Some(NEW_RS_AVAILABLE)
        );
        assert_eq!(
            get_condition(&s, AVAILABLE).unwrap().reason.as_deref(),
            Some(MIN_AVAILABLE)
        );
    }
}

#[test]
fn recreate_creates_the_new_replica_set_only_after_old_pods_are_gone() {
    let mut sim = Sim {
        d: deployment(3, "v1", json!({"type": "Recreate"})),
        rss: vec![],
        clock: 0,
        events: vec![],
    };
    sim.run_until_complete(|_| {});
    set_image(&mut sim.d, "v2");
    sim.step();
    assert_eq!(
        sim.sizes(),
        vec![("v1".to_string(), 0)],
        "old scaled to zero first"
    );
    let old_uid = sim.rss[0].metadata.uid.clone().unwrap();
    let running: Pod = serde_json::from_value(json!({"metadata": {"name": "p", "ownerReferences": [
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "x", "uid": old_uid, "controller": true}]},
        "status": {"phase": "Running"}})).unwrap();
    let p = plan(&sim.d, sim.rss.clone(), &[&running], ts(100));
    assert!(
        !p.actions
            .iter()
            .any(|a| matches!(a, Action::CreateReplicaSet(_))),
        "an old pod still runs"
    );
    let p = plan(&sim.d, sim.rss.clone(), &[], ts(100));
    let created = p
        .actions
        .iter()
        .find_map(|a| match a {
            Action::CreateReplicaSet(rs) => Some(rs),
            _ => None,
        })
        .expect("new rs");
    assert_eq!(rs_replicas(created), 3);
}

#[test]
fn scaling_mid_rollout_is_shared_in_proportion() {
    let mut sim = Sim {
        d: deployment(10, "v1", json!({})),
        rss: vec![],
        clock: 0,
        events: vec![],
    };
    sim.run_until_complete(|_| {});
    set_image(&mut sim.d, "v2");
    sim.step();
    sim.step();
    assert_eq!(
        sim.sizes(),
        vec![("v1".to_string(), 8), ("v2".to_string(), 3)]
    );
    sim.d.spec.as_mut().unwrap().replicas = Some(20);
    sim.step();
    // Sized for 13 (max-replicas); 20 + 5 surge = 25 allowed, 14 more: old 8 gets
    // round(8*25/13) - 8 = 7, new 3 gets round(3*25/13) - 3 = 3, the largest the rest.
    assert_eq!(
        sim.sizes(),
        vec![("v1".to_string(), 19), ("v2".to_string(), 6)]
    );
    for rs in &sim.rss {
        assert_eq!(desired_annotation(rs), Some(20));
        assert_eq!(max_replicas_annotation(rs), Some(25));
    }
}

#[test]
fn paused_deployments_scale_but_do_not_roll_out() {
    let mut sim = Sim {
        d: deployment(2, "v1", json!({})),
        rss: vec![],
        clock: 0,
        events: vec![],
    };
    sim.run_until_complete(|_| {});
    sim.d.spec.as_mut().unwrap().paused = Some(true);
    set_image(&mut sim.d, "v2");
    sim.d.spec.as_mut().unwrap().replicas = Some(4);
    sim.step();
    assert_eq!(sim.sizes(), vec![("v1".to_string(), 4)]);
    let s = sim.d.status.clone().unwrap();
    let c = get_condition(&s, PROGRESSING).unwrap();
    assert_eq!(
        (c.status.as_str(), c.reason.as_deref()),
        ("Unknown", Some(PAUSED))
    );
    sim.d.spec.as_mut().unwrap().paused = Some(false);
    sim.run_until_complete(|_| {});
    assert_eq!(
        sim.sizes(),
        vec![("v1".to_string(), 0), ("v2".to_string(), 4)]
    );
}

#[test]
fn old_replica_sets_beyond_the_history_limit_are_deleted_oldest_revision_first() {
    let mut sim = Sim {
        d: deployment(1, "v1", json!({})),
        rss: vec![],
        clock: 0,
        events: vec![],
    };
    sim.d.spec.as_mut().unwrap().revision_history_limit = Some(1);
    sim.run_until_complete(|_| {});
    for image in ["v2", "v3", "v4"] {
        set_image(&mut sim.d, image);
        sim.run_until_complete(|_| {});
        sim.step();
    }
    let images: Vec<String> = sim.sizes().into_iter().map(|(i, _)| i).collect();
    assert_eq!(images, ["v3", "v4"]);
}

#[test]
fn a_stalled_rollout_times_out_after_the_progress_deadline() {
    let mut sim = Sim {
        d: deployment(2, "v1", json!({})),
        rss: vec![],
        clock: 0,
        events: vec![],
    };
    sim.run_until_complete(|_| {});
    set_image(&mut sim.d, "v2");
    sim.step();
    // Nothing becomes available any more: freeze the new ReplicaSet's status.
    let frozen = sim.rss.clone();
    let mut d = sim.d.clone();
    let p = plan(&d, frozen.clone(), &[], ts(sim.clock + 1));
    let status = p.actions.iter().find_map(|a| match a {
        Action::UpdateStatus(s) => Some(s.clone()),
        _ => None,
    });
    d.status = Some(status.expect("the frozen rollout's status is written"));
    let c = get_condition(d.status.as_ref().unwrap(), PROGRESSING).unwrap();
    assert_eq!(c.reason.as_deref(), Some(RS_UPDATED));
    assert!(p.requeue.is_some(), "the deadline is checked again");
    let late = plan(&d, frozen, &[], ts(sim.clock + 1 + 601));
    let s = late
        .actions
        .iter()
        .find_map(|a| match a {
            Action::UpdateStatus(s) => Some(s),
            _ => None,
        })
        .expect("status");
    let c = get_condition(s, PROGRESSING).unwrap();
    assert_eq!(
        (c.status.as_str(), c.reason.as_deref()),
        ("False", Some(TIMED_OUT))
    );
}

#[test]
fn a_restart_annotation_on_the_template_starts_a_new_rollout() {
    let mut sim = Sim {
        d: deployment(2, "v1", json!({})),
        rss: vec![],
        clock: 0,
        events: vec![],
    };
    sim.run_until_complete(|_| {});
    // kubectl rollout restart
    let t = &mut sim.d.spec.as_mut().unwrap().template;
    t.metadata.as_mut().unwrap().annotations = Some(
        [(
            "kubectl.kubernetes.io/restartedAt".to_string(),
            "2026-01-01T00:00:00Z".to_string(),
        )]
        .into(),
    );
    sim.d.metadata.generation = Some(2);
    sim.run_until_complete(|_| {});
    assert_eq!(sim.rss.len(), 2);
    assert_eq!(rs_replicas(&sim.rss[0]), 0);
    assert_eq!(rs_replicas(&sim.rss[1]), 2);
    assert_eq!(sim.d.metadata.annotations.as_ref().unwrap()[REVISION], "2");
}
