use super::*;
use k8s_openapi::api::core::v1::{NodeSpec, NodeStatus, Taint};
use kube::api::ObjectMeta;

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + secs).unwrap()
}

fn cfg() -> NodeLifecycleConfig {
    NodeLifecycleConfig {
        node_monitor_grace_period: Duration::from_secs(2),
        node_startup_grace_period: Duration::from_secs(5),
        ..Default::default()
    }
}

fn node(name: &str, zone: &str, ready: Option<(&str, i64)>, taints: &[(&str, &str)]) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some(name.into()),
            creation_timestamp: Some(Time(t(0))),
            labels: Some(
                [("topology.kubernetes.io/zone".to_string(), zone.to_string())]
                    .into_iter()
                    .collect(),
            ),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            taints: Some(
                taints
                    .iter()
                    .map(|(k, e)| Taint {
                        key: (*k).into(),
                        effect: (*e).into(),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
        status: Some(NodeStatus {
            conditions: ready.map(|(s, hb)| {
                vec![NodeCondition {
                    type_: "Ready".into(),
                    status: s.into(),
                    last_heartbeat_time: Some(Time(t(hb))),
                    last_transition_time: Some(Time(t(0))),
                    ..Default::default()
                }]
            }),
            ..Default::default()
        }),
    }
}

fn status_of(conds: &[NodeCondition], type_: &str) -> (String, Option<String>) {
    let c = condition(conds, type_).unwrap();
    (c.status.clone(), c.reason.clone())
}

#[test]
fn a_node_unheard_for_the_grace_period_goes_unknown() {
    let c = cfg();
    // (what, previous probe, heartbeat changed, lease renewed, now, expect update)
    let cases: &[(&str, i64, bool, bool, i64, bool)] = &[
        ("within grace", 10, false, false, 12, false),
        ("grace passed", 10, false, false, 13, true),
        ("heartbeat refreshes", 10, true, false, 13, false),
        ("lease renewal refreshes", 10, false, true, 13, false),
    ];
    for (what, probe, hb_changed, renewed, now, want) in cases {
        let prev = NodeHealth {
            probe: t(*probe),
            ready_seen: true,
            heartbeat: Some(t(1)),
            lease_renew: Some(t(1)),
            ready: Some("True".into()),
        };
        let n = node(
            "a",
            "z",
            Some(("True", if *hb_changed { 9 } else { 1 })),
            &[],
        );
        let lease = Some(if *renewed { t(9) } else { t(1) });
        let (h, update) = observe(Some(&prev), &n, lease, t(*now), &c);
        assert_eq!(update.is_some(), *want, "{what}");
        if let Some(conds) = update {
            assert_eq!(
                status_of(&conds, "Ready"),
                ("Unknown".into(), Some(NODE_STATUS_UNKNOWN.into())),
                "{what}"
            );
            assert_eq!(
                condition(&conds, "Ready").unwrap().message.as_deref(),
                Some(STOPPED_POSTING)
            );
            for ty in ["MemoryPressure", "DiskPressure", "PIDPressure"] {
                assert_eq!(
                    status_of(&conds, ty),
                    ("Unknown".into(), Some(NODE_STATUS_NEVER_UPDATED.into())),
                    "{what} {ty}"
                );
            }
        } else if *hb_changed || *renewed {
            assert_eq!(h.probe, t(*now), "{what}");
        }
    }
}

#[test]
fn a_node_that_never_posted_status_gets_the_startup_grace_from_creation() {
    let c = cfg();
    let n = node("a", "z", None, &[]);
    let (h, update) = observe(None, &n, None, t(4), &c);
    assert_eq!(h.probe, t(0));
    assert!(update.is_none());
    let (_, update) = observe(Some(&h), &n, None, t(6), &c);
    let conds = update.expect("past startup grace");
    assert_eq!(
        status_of(&conds, "Ready"),
        ("Unknown".into(), Some(NODE_STATUS_NEVER_UPDATED.into()))
    );
}

#[test]
fn already_unknown_ready_is_not_rewritten() {
    let c = cfg();
    let n = node("a", "z", Some(("Unknown", 1)), &[]);
    let prev = NodeHealth {
        probe: t(0),
        ready_seen: true,
        heartbeat: Some(t(1)),
        lease_renew: None,
        ready: Some("Unknown".into()),
    };
    assert!(observe(Some(&prev), &n, None, t(100), &c).1.is_none());
}

#[test]
fn zone_state_follows_upstreams_thresholds() {
    let cases: &[(&str, &[Option<&str>], ZoneState)] = &[
        ("all ready", &[Some("True"); 3], ZoneState::Normal),
        (
            "one of two down",
            &[Some("True"), Some("Unknown")],
            ZoneState::Normal,
        ),
        (
            "all down",
            &[Some("False"), None],
            ZoneState::FullDisruption,
        ),
        (
            "two of three down is not enough (needs more than 2)",
            &[Some("True"), Some("False"), Some("False")],
            ZoneState::Normal,
        ),
        (
            "3 of 5 down (0.6)",
            &[
                Some("True"),
                Some("True"),
                Some("False"),
                Some("False"),
                None,
            ],
            ZoneState::PartialDisruption,
        ),
        (
            "3 of 6 down (0.5)",
            &[
                Some("True"),
                Some("True"),
                Some("True"),
                Some("False"),
                Some("False"),
                Some("Unknown"),
            ],
            ZoneState::Normal,
        ),
        ("empty", &[], ZoneState::Normal),
    ];
    for (what, ready, want) in cases {
        assert_eq!(zone_state(ready, 0.55), *want, "{what}");
    }
}

#[test]
fn zone_rate_slows_or_stops_tainting_in_disruptions() {
    let c = NodeLifecycleConfig::default();
    let cases: &[(&str, ZoneState, usize, bool, f64)] = &[
        ("normal", ZoneState::Normal, 3, false, 0.1),
        (
            "partial, small zone",
            ZoneState::PartialDisruption,
            50,
            false,
            0.0,
        ),
        (
            "partial, large zone",
            ZoneState::PartialDisruption,
            51,
            false,
            0.01,
        ),
        (
            "one zone fully down",
            ZoneState::FullDisruption,
            10,
            false,
            0.1,
        ),
        ("every zone down", ZoneState::FullDisruption, 10, true, 0.0),
        ("every zone down, normal", ZoneState::Normal, 10, true, 0.0),
    ];
    for (what, state, size, all, want) in cases {
        assert_eq!(zone_rate(*state, *size, *all, &c), *want, "{what}");
    }
}

fn taint_keys(a: &NodeAction) -> Vec<String> {
    a.taints
        .iter()
        .flatten()
        .map(|t| format!("{}:{}", t.key, t.effect))
        .collect()
}

#[test]
fn unreachable_nodes_are_tainted_at_the_eviction_rate() {
    let c = cfg();
    let mut m = Monitor::default();
    // Two of five nodes fall silent in a zone: one is tainted at once (burst 1), the other
    // after 1/rate = 10 s.
    let nodes: Vec<Node> = (0..5)
        .map(|i| node(&format!("n{i}"), "z", Some(("True", 0)), &[]))
        .collect();
    let refs: Vec<&Node> = nodes.iter().collect();
    let alive = |n: &str, at: i64| (n != "n0" && n != "n1").then(|| t(at));
    assert!(m.pass(&refs, |n| alive(n, 0), t(0), &c).is_empty());
    let actions = m.pass(&refs, |n| alive(n, 3), t(3), &c);
    assert_eq!(actions.len(), 2);
    let with_ne = actions
        .iter()
        .filter(|a| taint_keys(a).contains(&"node.kubernetes.io/unreachable:NoExecute".into()))
        .count();
    assert_eq!(with_ne, 1, "{actions:?}");
    for a in &actions {
        assert!(a.became_not_ready);
        assert!(taint_keys(a).contains(&"node.kubernetes.io/unreachable:NoSchedule".into()));
    }
    // The written state, as the next pass sees it, 5 s later: no token yet.
    let apply = |nodes: &mut Vec<Node>, actions: &[NodeAction]| {
        for a in actions {
            let n = nodes
                .iter_mut()
                .find(|n| n.metadata.name.as_deref() == Some(&a.name))
                .unwrap();
            if let Some(c) = &a.conditions {
                n.status.as_mut().unwrap().conditions = Some(c.clone());
            }
            if let Some(ts) = &a.taints {
                n.spec.as_mut().unwrap().taints = Some(ts.clone());
            }
        }
    };
    let mut nodes = nodes;
    apply(&mut nodes, &actions);
    let refs: Vec<&Node> = nodes.iter().collect();
    assert!(m.pass(&refs, |n| alive(n, 8), t(8), &c).is_empty());
    let later = m.pass(&refs, |n| alive(n, 14), t(14), &c);
    assert_eq!(later.len(), 1, "{later:?}");
    assert_eq!(
        taint_keys(&later[0]).last().map(String::as_str),
        Some("node.kubernetes.io/unreachable:NoExecute")
    );
}

#[test]
fn when_every_zone_is_down_no_node_is_tainted_noexecute() {
    let c = cfg();
    let mut m = Monitor::default();
    let nodes = [
        node("a", "z", Some(("True", 0)), &[]),
        node(
            "b",
            "z",
            Some(("True", 0)),
            &[("node.kubernetes.io/unreachable", "NoExecute")],
        ),
    ];
    let refs: Vec<&Node> = nodes.iter().collect();
    m.pass(&refs, |_| Some(t(0)), t(0), &c);
    let actions = m.pass(&refs, |_| Some(t(0)), t(10), &c);
    assert!(m.all_disrupted());
    assert_eq!(actions.len(), 2);
    for a in &actions {
        assert_eq!(
            taint_keys(a),
            ["node.kubernetes.io/unreachable:NoSchedule"],
            "{}",
            a.name
        );
    }
}

#[test]
fn a_failed_not_ready_write_is_retried_while_the_node_stays_not_ready() {
    let c = cfg();
    // (name, retry asked after the transition (event recorded?), Ready at the next pass,
    //  (became_not_ready, mark_pods_not_ready) then, the same one pass later)
    type Case = (
        &'static str,
        Option<bool>,
        &'static str,
        (bool, bool),
        (bool, bool),
    );
    let cases: [Case; 5] = [
        (
            "no failure: once",
            None,
            "False",
            (false, false),
            (false, false),
        ),
        (
            "pods failed: pods again, no second event",
            Some(true),
            "False",
            (false, true),
            (false, false),
        ),
        (
            "status write failed: the whole transition again",
            Some(false),
            "False",
            (true, true),
            (false, false),
        ),
        (
            "ready again: nothing to retry",
            Some(false),
            "True",
            (false, false),
            (false, false),
        ),
        (
            "unknown now: still not ready, retried",
            Some(true),
            "Unknown",
            (false, true),
            (false, false),
        ),
    ];
    let flags = |actions: &[NodeAction]| {
        actions
            .iter()
            .find(|a| a.name == "n")
            .map_or((false, false), |a| {
                (a.became_not_ready, a.mark_pods_not_ready)
            })
    };
    for (name, retry, next, want, after) in cases {
        let mut m = Monitor::default();
        let ready = node("n", "z", Some(("True", 0)), &[]);
        let lease = |at: i64| move |_: &str| Some(t(at));
        assert_eq!(
            flags(&m.pass(&[&ready], lease(0), t(0), &c)),
            (false, false)
        );
        let not_ready = node("n", "z", Some(("False", 1)), &[]);
        assert_eq!(
            flags(&m.pass(&[&not_ready], lease(1), t(1), &c)),
            (true, true),
            "{name}: the transition"
        );
        if let Some(recorded) = retry {
            m.retry_not_ready("n", recorded);
        }
        let then = node("n", "z", Some((next, 2)), &[]);
        assert_eq!(flags(&m.pass(&[&then], lease(2), t(2), &c)), want, "{name}");
        let later = node("n", "z", Some((next, 3)), &[]);
        assert_eq!(
            flags(&m.pass(&[&later], lease(3), t(3), &c)),
            after,
            "{name}: one retry per failure"
        );
    }
    // A node gone drops its retry.
    let mut m = Monitor::default();
    m.retry_not_ready("n", true);
    m.pass(&[], |_| None, t(0), &c);
    let not_ready = node("n", "z", Some(("False", 1)), &[]);
    assert_eq!(
        flags(&m.pass(&[&not_ready], |_| Some(t(1)), t(1), &c)),
        (false, false)
    );
}
