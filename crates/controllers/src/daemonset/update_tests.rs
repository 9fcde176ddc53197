//! Table tests of the DaemonSet update core: the rolling update and the revision history.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::{json, Value};

use super::core::{pods_by_node, Eligibility};
use super::tests::{ds, ds_with, names, now, plain, pod, HASH, P, RUNNING};
use super::update::*;
use crate::history::POD_REVISION_LABEL;

struct RollCase {
    what: &'static str,
    max_unavailable: Value,
    max_surge: Value,
    nodes: &'static [&'static str],
    pods: Vec<P>,
    delete: &'static [&'static str],
    create: &'static [&'static str],
}

fn old(name: &'static str, node: &'static str) -> P {
    P {
        name,
        node,
        hash: "old",
        ..RUNNING
    }
}

fn new(name: &'static str, node: &'static str, ready: bool) -> P {
    P {
        name,
        node,
        ready_since: ready.then_some(0),
        created: 5,
        ..RUNNING
    }
}

#[test]
fn rolling_update_stays_within_max_unavailable_and_max_surge() {
    let three = &["n1", "n2", "n3"];
    let cases =
        vec![
        RollCase {
            what: "one old available pod at a time",
            max_unavailable: json!(1), max_surge: json!(0), nodes: three,
            pods: vec![old("a", "n1"), old("b", "n2"), old("c", "n3")],
            delete: &["a"], create: &[],
        },
        RollCase {
            what: "an unavailable new pod uses up the budget",
            max_unavailable: json!(1), max_surge: json!(0), nodes: three,
            pods: vec![new("a", "n1", false), old("b", "n2"), old("c", "n3")],
            delete: &[], create: &[],
        },
        RollCase {
            what: "a node without a pod counts as unavailable",
            max_unavailable: json!(1), max_surge: json!(0), nodes: three,
            pods: vec![old("b", "n2"), old("c", "n3")],
            delete: &[], create: &[],
        },
        RollCase {
            what: "unavailable old pods go regardless, then what the budget allows",
            max_unavailable: json!(2), max_surge: json!(0), nodes: three,
            pods: vec![old("a", "n1"), P { ready_since: None, ..old("b", "n2") }, old("c", "n3")],
            delete: &["b", "a"], create: &[],
        },
        RollCase {
            what: "percentages round up",
            max_unavailable: json!("50%"), max_surge: json!(0), nodes: three,
            pods: vec![old("a", "n1"), old("b", "n2"), old("c", "n3")],
            delete: &["a", "b"], create: &[],
        },
        RollCase {
            what: "zero and zero means one",
            max_unavailable: json!(0), max_surge: json!(0), nodes: three,
            pods: vec![old("a", "n1"), old("b", "n2"), old("c", "n3")],
            delete: &["a"], create: &[],
        },
        RollCase {
            what: "surge: a new pod next to an old one, up to maxSurge",
            max_unavailable: json!(0), max_surge: json!(1), nodes: three,
            pods: vec![old("a", "n1"), old("b", "n2"), old("c", "n3")],
            delete: &[], create: &["n1"],
        },
        RollCase {
            what: "surge: an unavailable new pod uses up the surge",
            max_unavailable: json!(0), max_surge: json!(1), nodes: three,
            pods: vec![old("a", "n1"), new("x", "n1", false), old("b", "n2"), old("c", "n3")],
            delete: &[], create: &[],
        },
        RollCase {
            what: "surge: an available new pod retires the old one, the next node surges",
            max_unavailable: json!(0), max_surge: json!(1), nodes: three,
            pods: vec![old("a", "n1"), new("x", "n1", true), old("b", "n2"), old("c", "n3")],
            delete: &["a"], create: &["n2"],
        },
        RollCase {
            what: "surge: an unavailable old pod is replaced beyond maxSurge",
            max_unavailable: json!(0), max_surge: json!(1), nodes: three,
            pods: vec![P { ready_since: None, ..old("a", "n1") }, old("b", "n2"), old("c", "n3")],
            delete: &[], create: &["n1", "n2"],
        },
        RollCase {
            what: "surge: an old pod on a node that no longer fits waits for a spare available pod",
            max_unavailable: json!(0), max_surge: json!(1), nodes: &["n1"],
            pods: vec![new("x", "n1", true), old("b", "gone")],
            delete: &["b"], create: &[],
        },
    ];
    for c in cases {
        let set = ds_with(
            json!({}),
            json!({"type": "RollingUpdate", "rollingUpdate":
                {"maxUnavailable": c.max_unavailable, "maxSurge": c.max_surge}}),
        );
        let pods: Vec<Pod> = c.pods.iter().map(|p| pod(*p)).collect();
        let refs: Vec<&Pod> = pods.iter().collect();
        let nodes: Vec<Node> = c.nodes.iter().map(|n| plain(n)).collect();
        let node_refs: Vec<&Node> = nodes.iter().collect();
        let by_node = pods_by_node(&refs, false);
        let plan = rolling_update(
            &set,
            &Eligibility::new(&set),
            &node_refs,
            &by_node,
            HASH,
            now(),
        )
        .expect("valid");
        assert_eq!(names(&plan.delete), c.delete, "{}: delete", c.what);
        assert_eq!(plan.create_on, c.create, "{}: create", c.what);
    }
    let on_delete = ds_with(json!({}), json!({"type": "OnDelete"}));
    assert!(!is_rolling_update(&on_delete));
    assert_eq!(surge_count(&on_delete, 10), Ok(0));
}

fn revision(name: &str, rev: i64, hash: &str) -> ControllerRevision {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {POD_REVISION_LABEL: hash}},
        "data": {"spec": {"template": {"x": name}}},
        "revision": rev,
    }))
    .unwrap()
}

#[test]
fn history_keeps_the_newest_duplicate_and_cleans_unused_old_revisions() {
    let (r1, r2, r3, r4) = (
        revision("r1", 1, "h1"),
        revision("r2", 2, "h2"),
        revision("r3", 3, "h3"),
        revision("r4", 4, "h4"),
    );
    let (keep, dups) = keep_of(&[&r2, &r4, &r3]).unwrap();
    assert_eq!(keep.metadata.name.as_deref(), Some("r4"));
    assert_eq!(dups.len(), 2);
    assert!(keep_of(&[]).is_none());
    assert_eq!(max_revision(&[&r1, &r3]), 3);

    let live = pod(P {
        hash: "h1",
        ..RUNNING
    });
    let cases: &[(i32, &[&str])] = &[
        (10, &[]),
        (3, &["r2"]),
        (2, &["r2", "r3"]),
        (0, &["r2", "r3", "r4"]),
    ];
    for (limit, want) in cases {
        let gone: Vec<String> = revisions_to_clean(&[&r4, &r1, &r3, &r2], &[&live], *limit)
            .iter()
            .map(|r| r.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(gone, *want, "limit {limit}: r1 is live");
    }
}

#[test]
fn a_snapshot_is_named_by_hash_and_matches_its_template_only() {
    let mut set = ds(json!({"containers": [{"name": "c", "image": "v1"}]}));
    set.metadata.annotations = Some(BTreeMap::from([(
        "kubernetes.io/change-cause".to_string(),
        "v1".to_string(),
    )]));
    let data = revision_data(&set);
    assert_eq!(data["spec"]["template"]["$patch"], "replace");
    let rev = snapshot(&set, data.clone(), 3);
    let hash = revision_hash(&rev).unwrap().to_string();
    assert_eq!(rev.metadata.name, Some(format!("agent-{hash}")));
    assert_eq!(rev.revision, 3);
    assert_eq!(rev.metadata.labels.as_ref().unwrap()["app"], "agent");
    assert_eq!(
        rev.metadata.annotations.as_ref().unwrap()["kubernetes.io/change-cause"],
        "v1"
    );
    assert!(is_current(&data, &rev));

    let mut collided = set.clone();
    collided.status = Some(k8s_openapi::api::apps::v1::DaemonSetStatus {
        collision_count: Some(1),
        ..Default::default()
    });
    assert_ne!(
        snapshot(&collided, data.clone(), 3).metadata.name,
        rev.metadata.name
    );

    let v2 = ds(json!({"containers": [{"name": "c", "image": "v2"}]}));
    assert!(!is_current(&revision_data(&v2), &rev));
}
