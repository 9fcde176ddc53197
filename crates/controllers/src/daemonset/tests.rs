//! Table tests of the DaemonSet controller's pure core: placement, the pod made for a node,
//! `manage` with its backoff, and the status (with the helpers the update tests share).

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::jiff::Timestamp;
use serde_json::{json, Value};

use super::core::*;
use crate::history::POD_REVISION_LABEL;

pub(super) const HASH: &str = "new";
pub(super) const NOW: i64 = 10_000;

pub(super) fn now() -> Timestamp {
    Timestamp::from_second(NOW).unwrap()
}

fn ts(secs: i64) -> String {
    Timestamp::from_second(secs).unwrap().to_string()
}

/// A DaemonSet with this template spec and strategy.
pub(super) fn ds_with(spec: Value, strategy: Value) -> DaemonSet {
    serde_json::from_value(json!({
        "metadata": {"name": "agent", "namespace": "ns", "uid": "ds-uid", "generation": 2},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "updateStrategy": strategy,
            "template": {"metadata": {"labels": {"app": "agent"}}, "spec": spec},
        },
    }))
    .unwrap()
}

pub(super) fn ds(spec: Value) -> DaemonSet {
    ds_with(
        spec,
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
    )
}

pub(super) fn node(name: &str, labels: Value, taints: Value) -> Node {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {"taints": taints},
    }))
    .unwrap()
}

pub(super) fn plain(name: &str) -> Node {
    node(name, json!({}), json!([]))
}

fn taint(key: &str, effect: &str) -> Value {
    json!({"key": key, "effect": effect})
}

/// A daemon pod: name, target node, bound or pending, phase, hash, ready since, created at.
#[derive(Clone, Copy)]
pub(super) struct P {
    pub name: &'static str,
    pub node: &'static str,
    pub bound: bool,
    pub phase: &'static str,
    pub hash: &'static str,
    pub ready_since: Option<i64>,
    pub created: i64,
}

pub(super) const RUNNING: P = P {
    name: "p",
    node: "n1",
    bound: true,
    phase: "Running",
    hash: HASH,
    ready_since: Some(0),
    created: 0,
};

pub(super) fn pod(p: P) -> Pod {
    let conditions = p
        .ready_since
        .map(|t| json!([{"type": "Ready", "status": "True", "lastTransitionTime": ts(t)}]));
    let mut spec = json!({"affinity": {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [p.node]}]}]}}}});
    if p.bound {
        spec["nodeName"] = json!(p.node);
    }
    serde_json::from_value(json!({
        "metadata": {"name": p.name, "namespace": "ns", "uid": p.name,
            "creationTimestamp": ts(p.created),
            "labels": {"app": "agent", POD_REVISION_LABEL: p.hash}},
        "spec": spec,
        "status": {"phase": p.phase, "conditions": conditions},
    }))
    .unwrap()
}

pub(super) fn names(pods: &[&Pod]) -> Vec<String> {
    pods.iter()
        .map(|p| p.metadata.name.clone().unwrap_or_default())
        .collect()
}

#[test]
fn placement_follows_selectors_affinity_and_taints_with_daemon_tolerations() {
    let fits = |run, cont| NodeFit {
        should_run: run,
        should_continue_running: cont,
    };
    let yes = fits(true, true);
    let no = fits(false, false);
    let only_keep = fits(false, true);
    let selector = json!({"nodeSelector": {"disk": "ssd"}});
    let tolerant = json!({"tolerations": [{"key": "dedicated", "operator": "Equal",
        "value": "infra", "effect": "NoSchedule"}]});
    let cases: Vec<(&str, Value, Node, NodeFit)> = vec![
        ("plain node", json!({}), plain("n1"), yes),
        (
            "nodeSelector matches",
            selector.clone(),
            node("n1", json!({"disk": "ssd"}), json!([])),
            yes,
        ),
        (
            "nodeSelector does not match",
            selector,
            node("n1", json!({"disk": "hdd"}), json!([])),
            no,
        ),
        (
            "required affinity by name",
            json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                {"nodeSelectorTerms": [{"matchFields": [
                    {"key": "metadata.name", "operator": "In", "values": ["n2"]}]}]}}}}),
            plain("n1"),
            no,
        ),
        (
            "template nodeName elsewhere",
            json!({"nodeName": "n2"}),
            plain("n1"),
            no,
        ),
        (
            "template nodeName here",
            json!({"nodeName": "n1"}),
            plain("n1"),
            yes,
        ),
        (
            "untolerated NoSchedule keeps running pods only",
            json!({}),
            node(
                "n1",
                json!({}),
                json!([{"key": "dedicated", "value": "infra", "effect": "NoSchedule"}]),
            ),
            only_keep,
        ),
        (
            "tolerated NoSchedule",
            tolerant.clone(),
            node(
                "n1",
                json!({}),
                json!([{"key": "dedicated", "value": "infra", "effect": "NoSchedule"}]),
            ),
            yes,
        ),
        (
            "untolerated NoExecute evicts",
            tolerant,
            node("n1", json!({}), json!([taint("gpu", "NoExecute")])),
            no,
        ),
        (
            "PreferNoSchedule is ignored",
            json!({}),
            node("n1", json!({}), json!([taint("x", "PreferNoSchedule")])),
            yes,
        ),
        (
            "not-ready NoExecute tolerated",
            json!({}),
            node(
                "n1",
                json!({}),
                json!([taint("node.kubernetes.io/not-ready", "NoExecute")]),
            ),
            yes,
        ),
        (
            "unreachable NoExecute tolerated",
            json!({}),
            node(
                "n1",
                json!({}),
                json!([taint("node.kubernetes.io/unreachable", "NoExecute")]),
            ),
            yes,
        ),
        (
            "not-ready NoSchedule is not",
            json!({}),
            node(
                "n1",
                json!({}),
                json!([taint("node.kubernetes.io/not-ready", "NoSchedule")]),
            ),
            only_keep,
        ),
        (
            "disk pressure tolerated",
            json!({}),
            node(
                "n1",
                json!({}),
                json!([taint("node.kubernetes.io/disk-pressure", "NoSchedule")]),
            ),
            yes,
        ),
        (
            "memory pressure tolerated",
            json!({}),
            node(
                "n1",
                json!({}),
                json!([taint("node.kubernetes.io/memory-pressure", "NoSchedule")]),
            ),
            yes,
        ),
        (
            "pid pressure tolerated",
            json!({}),
            node(
                "n1",
                json!({}),
                json!([taint("node.kubernetes.io/pid-pressure", "NoSchedule")]),
            ),
            yes,
        ),
        (
            "unschedulable tolerated",
            json!({}),
            node(
                "n1",
                json!({}),
                json!([taint("node.kubernetes.io/unschedulable", "NoSchedule")]),
            ),
            yes,
        ),
        (
            "network unavailable for pod network",
            json!({}),
            node(
                "n1",
                json!({}),
                json!([taint(
                    "node.kubernetes.io/network-unavailable",
                    "NoSchedule"
                )]),
            ),
            only_keep,
        ),
        (
            "network unavailable for host network",
            json!({"hostNetwork": true}),
            node(
                "n1",
                json!({}),
                json!([taint(
                    "node.kubernetes.io/network-unavailable",
                    "NoSchedule"
                )]),
            ),
            yes,
        ),
    ];
    for (what, spec, n, want) in cases {
        assert_eq!(Eligibility::new(&ds(spec)).fit(&n), want, "{what}");
    }
}

#[test]
fn pods_carry_daemon_tolerations_labels_owner_and_node_pinning_affinity() {
    let set = ds(json!({
        "containers": [{"name": "c", "image": "i"}],
        "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
            "effect": "NoExecute", "tolerationSeconds": 300}],
        "affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]},
            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "preference":
                {"matchExpressions": [{"key": "fast", "operator": "Exists"}]}}]}},
    }));
    let template = pod_template(&set, "h1");
    let p = serde_json::to_value(daemon_pod(&set, &template, "n7")).unwrap();
    assert_eq!(p["metadata"]["generateName"], "agent-");
    assert_eq!(
        p["metadata"]["labels"],
        json!({"app": "agent", POD_REVISION_LABEL: "h1", TEMPLATE_GENERATION_LABEL: "2"})
    );
    assert_eq!(p["metadata"]["ownerReferences"][0]["kind"], "DaemonSet");
    assert_eq!(p["metadata"]["ownerReferences"][0]["controller"], true);
    assert!(p["spec"].get("nodeName").is_none(), "the scheduler binds");
    let na = &p["spec"]["affinity"]["nodeAffinity"];
    assert_eq!(
        na["requiredDuringSchedulingIgnoredDuringExecution"],
        json!({"nodeSelectorTerms": [{"matchFields": [
            {"key": "metadata.name", "operator": "In", "values": ["n7"]}]}]})
    );
    assert_eq!(
        na["preferredDuringSchedulingIgnoredDuringExecution"][0]["weight"],
        1
    );
    let tols = p["spec"]["tolerations"].as_array().unwrap();
    let keys: Vec<(&str, &str)> = tols
        .iter()
        .map(|t| (t["key"].as_str().unwrap(), t["effect"].as_str().unwrap()))
        .collect();
    assert_eq!(
        keys,
        [
            ("node.kubernetes.io/not-ready", "NoExecute"),
            ("node.kubernetes.io/unreachable", "NoExecute"),
            ("node.kubernetes.io/disk-pressure", "NoSchedule"),
            ("node.kubernetes.io/memory-pressure", "NoSchedule"),
            ("node.kubernetes.io/pid-pressure", "NoSchedule"),
            ("node.kubernetes.io/unschedulable", "NoSchedule"),
        ]
    );
    assert!(
        tols[0].get("tolerationSeconds").is_none(),
        "the template's bounded not-ready toleration becomes unbounded"
    );
    let pinned: Pod = serde_json::from_value(p).unwrap();
    assert_eq!(target_node_name(&pinned), Some("n7"));
}

#[test]
fn a_pods_node_is_its_node_name_or_its_pinning_affinity() {
    let pinned = |values: Value| -> Pod {
        serde_json::from_value(json!({"spec": {"affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "a", "operator": "Exists"}]},
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": values}]}]}}}}}))
        .unwrap()
    };
    let bound: Pod = serde_json::from_value(json!({"spec": {"nodeName": "n9"}})).unwrap();
    assert_eq!(target_node_name(&bound), Some("n9"));
    assert_eq!(target_node_name(&pinned(json!(["n1"]))), Some("n1"));
    assert_eq!(target_node_name(&pinned(json!(["n1", "n2"]))), None);
    assert_eq!(target_node_name(&Pod::default()), None);
}

#[test]
fn pods_are_updated_by_hash_or_template_generation() {
    let labelled = |labels: Value| -> Pod {
        serde_json::from_value(json!({"metadata": {"labels": labels}})).unwrap()
    };
    let cases = [
        (json!({POD_REVISION_LABEL: "h"}), "h", None, true),
        (json!({POD_REVISION_LABEL: "old"}), "h", None, false),
        (
            json!({POD_REVISION_LABEL: "old", TEMPLATE_GENERATION_LABEL: "3"}),
            "h",
            Some(3),
            true,
        ),
        (json!({TEMPLATE_GENERATION_LABEL: "2"}), "h", Some(3), false),
        (json!({POD_REVISION_LABEL: ""}), "", None, false),
    ];
    for (labels, hash, generation, want) in cases {
        assert_eq!(
            is_pod_updated(&labelled(labels.clone()), hash, generation),
            want,
            "{labels}"
        );
    }
    let mut annotated = ds(json!({}));
    assert_eq!(
        template_generation(&annotated),
        Some(2),
        "metadata.generation"
    );
    annotated.metadata.annotations = Some(BTreeMap::from([(
        TEMPLATE_GENERATION_ANNOTATION.to_string(),
        "7".to_string(),
    )]));
    assert_eq!(
        template_generation(&annotated),
        Some(7),
        "upstream's annotation"
    );
}

struct ManageCase {
    what: &'static str,
    surge: bool,
    nodes: Vec<Node>,
    pods: Vec<P>,
    create: &'static [&'static str],
    delete: &'static [&'static str],
}

#[test]
fn manage_creates_missing_pods_and_deletes_misplaced_duplicate_and_finished_ones() {
    let nx = |name| node(name, json!({}), json!([taint("gpu", "NoExecute")]));
    let ns = |name| node(name, json!({}), json!([taint("gpu", "NoSchedule")]));
    let cases = vec![
        ManageCase {
            what: "a pod for each fitting node without one",
            surge: false,
            nodes: vec![plain("n1"), plain("n2"), ns("n3")],
            pods: vec![P {
                name: "a",
                node: "n1",
                ..RUNNING
            }],
            create: &["n2"],
            delete: &[],
        },
        ManageCase {
            what: "duplicates: the oldest bound one stays",
            surge: false,
            nodes: vec![plain("n1")],
            pods: vec![
                P {
                    name: "pending-oldest",
                    bound: false,
                    created: 1,
                    ..RUNNING
                },
                P {
                    name: "bound-newer",
                    created: 5,
                    ..RUNNING
                },
                P {
                    name: "bound-newest",
                    created: 9,
                    ..RUNNING
                },
            ],
            create: &[],
            delete: &["bound-newest", "pending-oldest"],
        },
        ManageCase {
            what: "succeeded pods are deleted, running ones counted without them",
            surge: false,
            nodes: vec![plain("n1")],
            pods: vec![P {
                name: "done",
                phase: "Succeeded",
                ..RUNNING
            }],
            create: &[],
            delete: &["done"],
        },
        ManageCase {
            what: "a node that stopped fitting loses its pods",
            surge: false,
            nodes: vec![nx("n1")],
            pods: vec![P {
                name: "a",
                ..RUNNING
            }],
            create: &[],
            delete: &["a"],
        },
        ManageCase {
            what: "NoSchedule keeps a running pod but gets no new one",
            surge: false,
            nodes: vec![ns("n1"), ns("n2")],
            pods: vec![P {
                name: "a",
                ..RUNNING
            }],
            create: &[],
            delete: &[],
        },
        ManageCase {
            what: "pending pods pinned to missing nodes go, bound ones are the pod GC's",
            surge: false,
            nodes: vec![],
            pods: vec![
                P {
                    name: "pending",
                    node: "gone",
                    bound: false,
                    ..RUNNING
                },
                P {
                    name: "bound",
                    node: "gone",
                    ..RUNNING
                },
            ],
            create: &[],
            delete: &["pending"],
        },
        ManageCase {
            what: "pods being deleted are left alone",
            surge: false,
            nodes: vec![nx("n1")],
            pods: vec![P {
                name: "terminating",
                ..RUNNING
            }],
            create: &[],
            delete: &[],
        },
        ManageCase {
            what: "surge: a ready old pod stays next to an unavailable new one",
            surge: true,
            nodes: vec![plain("n1")],
            pods: vec![
                P {
                    name: "old",
                    hash: "old",
                    ..RUNNING
                },
                P {
                    name: "new",
                    ready_since: None,
                    created: 5,
                    ..RUNNING
                },
            ],
            create: &[],
            delete: &[],
        },
        ManageCase {
            what: "surge: an available new pod replaces the old one",
            surge: true,
            nodes: vec![plain("n1")],
            pods: vec![
                P {
                    name: "old",
                    hash: "old",
                    ..RUNNING
                },
                P {
                    name: "new",
                    created: 5,
                    ..RUNNING
                },
            ],
            create: &[],
            delete: &["old"],
        },
        ManageCase {
            what: "surge: an unready old pod goes, extra pods of either kind too",
            surge: true,
            nodes: vec![plain("n1")],
            pods: vec![
                P {
                    name: "old",
                    hash: "old",
                    ready_since: None,
                    ..RUNNING
                },
                P {
                    name: "old2",
                    hash: "old",
                    created: 2,
                    ..RUNNING
                },
                P {
                    name: "new",
                    ready_since: None,
                    created: 5,
                    ..RUNNING
                },
            ],
            create: &[],
            delete: &["old2", "old"],
        },
        ManageCase {
            what: "surge: a node whose only pod finished gets a new one",
            surge: true,
            nodes: vec![plain("n1")],
            pods: vec![P {
                name: "done",
                phase: "Succeeded",
                ..RUNNING
            }],
            create: &["n1"],
            delete: &["done"],
        },
    ];
    for c in cases {
        let strategy = if c.surge {
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}})
        } else {
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}})
        };
        let set = ds_with(json!({}), strategy);
        let mut pods: Vec<Pod> = c.pods.iter().map(|p| pod(*p)).collect();
        for p in pods.iter_mut() {
            if p.metadata.name.as_deref() == Some("terminating") {
                p.metadata.deletion_timestamp =
                    Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now()));
            }
        }
        let refs: Vec<&Pod> = pods.iter().collect();
        let by_node = pods_by_node(&refs, false);
        let nodes: Vec<&Node> = c.nodes.iter().collect();
        let mut backoff = FailedPodBackoff::default();
        let plan = plan_manage(
            &set,
            &Eligibility::new(&set),
            &nodes,
            &by_node,
            HASH,
            &mut backoff,
            now(),
        );
        assert_eq!(plan.create_on, c.create, "{}: create", c.what);
        assert_eq!(names(&plan.delete), c.delete, "{}: delete", c.what);
    }
}

#[test]
fn failed_pods_are_deleted_with_a_doubling_backoff_per_node() {
    let set = ds(json!({}));
    let failed = pod(P {
        name: "f",
        phase: "Failed",
        ..RUNNING
    });
    let refs = [&failed];
    let by_node = pods_by_node(&refs, false);
    let n1 = plain("n1");
    let nodes = [&n1];
    let fit = Eligibility::new(&set);
    let mut backoff = FailedPodBackoff::default();
    let at = |s: i64| Timestamp::from_second(NOW + s).unwrap();
    let plan = plan_manage(&set, &fit, &nodes, &by_node, HASH, &mut backoff, at(0));
    assert_eq!(names(&plan.delete), ["f"]);
    assert_eq!(plan.notes.len(), 1);
    assert_eq!(
        (plan.notes[0].reason, plan.notes[0].warning),
        (FAILED_DAEMON_POD, true)
    );
    assert_eq!(
        plan.notes[0].message,
        "Found failed daemon pod ns/f on node n1, will try to kill it"
    );
    // The replacement fails too, at once: it waits out the backoff.
    let plan = plan_manage(&set, &fit, &nodes, &by_node, HASH, &mut backoff, at(0));
    assert!(plan.delete.is_empty());
    assert_eq!(plan.retry_after, Some(Duration::from_secs(1)));
    let plan = plan_manage(&set, &fit, &nodes, &by_node, HASH, &mut backoff, at(2));
    assert_eq!(names(&plan.delete), ["f"], "after the backoff");
    assert_eq!(
        backoff.in_backoff(&backoff_key(&set, "n1"), at(3)),
        Some(Duration::from_secs(2))
    );
    assert_eq!(backoff.in_backoff(&backoff_key(&set, "n1"), at(4)), None);
    backoff.gc(at(3600));
    backoff.next(&backoff_key(&set, "n1"), at(3600));
    assert_eq!(
        backoff.in_backoff(&backoff_key(&set, "n1"), at(3600)),
        Some(FailedPodBackoff::INITIAL),
        "forgotten after twice the maximum"
    );
}

#[test]
fn status_counts_nodes_by_their_oldest_pod() {
    let set = ds_with(
        json!({"nodeSelector": {"role": "worker"}}),
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}),
    );
    let mut set = set;
    set.spec.as_mut().unwrap().min_ready_seconds = Some(30);
    let worker = |n| node(n, json!({"role": "worker"}), json!([]));
    let nodes = [
        worker("ready-old"),
        worker("ready-new"),
        worker("pending"),
        worker("empty"),
        node("other", json!({}), json!([])),
    ];
    let pods = [
        pod(P {
            name: "a",
            node: "ready-old",
            hash: "old",
            ..RUNNING
        }),
        pod(P {
            name: "b",
            node: "ready-new",
            ready_since: Some(NOW - 5),
            ..RUNNING
        }),
        pod(P {
            name: "b2",
            node: "ready-new",
            hash: "old",
            created: 9,
            ..RUNNING
        }),
        pod(P {
            name: "c",
            node: "pending",
            bound: false,
            phase: "Pending",
            ready_since: None,
            ..RUNNING
        }),
        pod(P {
            name: "d",
            node: "other",
            ..RUNNING
        }),
    ];
    let refs: Vec<&Pod> = pods.iter().collect();
    let node_refs: Vec<&Node> = nodes.iter().collect();
    let by_node = pods_by_node(&refs, false);
    let fit = Eligibility::new(&set);
    let s = calculate_status(&set, &fit, &node_refs, &by_node, HASH, now(), true, Some(1));
    assert_eq!(s.desired_number_scheduled, 4);
    assert_eq!(
        s.current_number_scheduled, 3,
        "the pending pod counts by its affinity"
    );
    assert_eq!(s.number_misscheduled, 1);
    assert_eq!(s.number_ready, 2);
    assert_eq!(
        s.number_available,
        Some(1),
        "b is ready for less than minReadySeconds"
    );
    assert_eq!(s.number_unavailable, Some(3));
    assert_eq!(
        s.updated_number_scheduled,
        Some(2),
        "the oldest pod decides: b and c"
    );
    assert_eq!(
        (s.observed_generation, s.collision_count),
        (Some(2), Some(1))
    );
    assert_eq!(
        availability_requeue(&set, &refs, now()),
        Some(Duration::from_secs(26)),
        "b becomes available 30 s after it became ready, plus a second"
    );
    let unobserved = calculate_status(&set, &fit, &node_refs, &by_node, HASH, now(), false, None);
    assert_eq!(
        unobserved.observed_generation, None,
        "not raised before the sync acts"
    );

    assert!(status_changed(None, &s));
    assert!(!status_changed(Some(&s), &s));
    let mut zeros = s.clone();
    zeros.updated_number_scheduled = Some(0);
    let mut absent = s.clone();
    absent.updated_number_scheduled = None;
    assert!(!status_changed(Some(&zeros), &absent), "absent is zero");
    assert!(status_changed(Some(&s), &absent));
}
