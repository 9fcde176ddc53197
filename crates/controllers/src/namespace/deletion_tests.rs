use super::*;
use k8s_openapi::api::core::v1::{NamespaceSpec, PodSpec, PodStatus};

fn meta(finalizers: &[&str]) -> ObjectMeta {
    ObjectMeta {
        finalizers: (!finalizers.is_empty())
            .then(|| finalizers.iter().map(|f| f.to_string()).collect()),
        ..Default::default()
    }
}

fn pod(grace: Option<i64>, phase: Option<&str>) -> Pod {
    Pod {
        spec: Some(PodSpec {
            termination_grace_period_seconds: grace,
            ..Default::default()
        }),
        status: phase.map(|p| PodStatus {
            phase: Some(p.into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn pod_estimate_is_the_longest_grace_of_unfinished_pods() {
    let cases: Vec<(&str, Vec<Pod>, i64)> = vec![
        ("no pods", vec![], 0),
        (
            "longest wins",
            vec![pod(Some(30), Some("Running")), pod(Some(5), None)],
            30,
        ),
        (
            "finished pods do not count",
            vec![
                pod(Some(30), Some("Succeeded")),
                pod(Some(60), Some("Failed")),
            ],
            0,
        ),
        ("grace 0", vec![pod(Some(0), Some("Running"))], 0),
        ("no grace given", vec![pod(None, Some("Pending"))], 0),
    ];
    for (what, pods, want) in cases {
        assert_eq!(pod_estimate(&pods), want, "{what}");
    }
}

#[test]
fn remaining_content_is_expected_only_with_a_wait_or_finalizers() {
    let gvr = gvr_string("", "v1", "configmaps");
    assert_eq!(gvr, "/v1, Resource=configmaps");
    let held = meta(&["example.com/hold"]);
    let two = meta(&["example.com/hold", "other"]);
    let plain = meta(&[]);
    let cases: Vec<(&str, Vec<&ObjectMeta>, i64, Remaining, bool)> = vec![
        ("nothing left", vec![], 30, Remaining::default(), false),
        (
            "pods in their grace period",
            vec![&plain],
            30,
            Remaining {
                estimate: 30,
                count: 1,
                finalizers: BTreeMap::new(),
            },
            false,
        ),
        (
            "finalizers: the default estimate",
            vec![&held, &two],
            0,
            Remaining {
                estimate: FINALIZER_ESTIMATE_SECONDS,
                count: 2,
                finalizers: BTreeMap::from([
                    ("example.com/hold".to_string(), 2),
                    ("other".to_string(), 1),
                ]),
            },
            false,
        ),
        (
            "left for no reason: an error",
            vec![&plain],
            0,
            Remaining {
                estimate: 0,
                count: 1,
                finalizers: BTreeMap::new(),
            },
            true,
        ),
    ];
    for (what, items, estimate, want, is_err) in cases {
        let (got, err) = remaining(&items, estimate, "team", &gvr);
        assert_eq!(got, want, "{what}");
        assert_eq!(err.is_some(), is_err, "{what}");
        if let Some(e) = err {
            assert_eq!(
                e,
                "unexpected items still remain in namespace: team for gvr: /v1, Resource=configmaps"
            );
        }
    }
}

fn conds(p: &Pass) -> Vec<(String, String, String, String)> {
    p.conditions()
        .into_iter()
        .map(|(t, s, r, m)| (t.to_string(), s.to_string(), r, m))
        .collect()
}

#[test]
fn conditions_read_like_upstreams() {
    let ok = conds(&Pass::default());
    let types: Vec<&str> = ok.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(
        types,
        [
            DISCOVERY_FAILURE,
            GV_PARSING_FAILURE,
            CONTENT_FAILURE,
            CONTENT_REMAINING,
            FINALIZERS_REMAINING
        ]
    );
    assert!(ok.iter().all(|c| c.1 == "False"));
    assert_eq!(ok[3].2, "ContentRemoved");
    assert_eq!(ok[4].3, "All content-preserving finalizers finished");

    let mut p = Pass::default();
    p.add(
        "configmaps.".into(),
        Remaining {
            estimate: 15,
            count: 2,
            finalizers: BTreeMap::from([("example.com/hold".to_string(), 2)]),
        },
        None,
    );
    p.add(
        "pods.".into(),
        Remaining {
            estimate: 30,
            count: 1,
            finalizers: BTreeMap::new(),
        },
        None,
    );
    p.add(
        "secrets.".into(),
        Remaining::default(),
        Some("b failed".into()),
    );
    p.add(
        "leases.coordination.k8s.io".into(),
        Remaining::default(),
        Some("a failed".into()),
    );
    p.discovery_error = Some(
        "unable to retrieve the complete list of server APIs: metrics.k8s.io/v1beta1: gone".into(),
    );
    p.discovery_failed_groups = 1;
    let c = conds(&p);
    let want = [
        (
            DISCOVERY_FAILURE,
            "DiscoveryFailed",
            "Discovery failed for some groups, 1 failing: unable to retrieve the complete list of server APIs: metrics.k8s.io/v1beta1: gone",
        ),
        (
            GV_PARSING_FAILURE,
            "ParsedGroupVersions",
            "All legacy kube types successfully parsed",
        ),
        (
            CONTENT_FAILURE,
            "ContentDeletionFailed",
            "Failed to delete all resource types, 2 remaining: a failed, b failed",
        ),
        (
            CONTENT_REMAINING,
            "SomeResourcesRemain",
            "Some resources are remaining: configmaps. has 2 resource instances, pods. has 1 resource instances",
        ),
        (
            FINALIZERS_REMAINING,
            "SomeFinalizersRemain",
            "Some content in the namespace has finalizers remaining: example.com/hold in 2 resource instances",
        ),
    ];
    for (got, (ty, reason, msg)) in c.iter().zip(want) {
        assert_eq!(got.0, ty);
        assert_eq!(got.2, reason, "{ty}");
        assert_eq!(got.3, msg, "{ty}");
    }
    assert_eq!(p.estimate, 30);
    assert_eq!(p.requeue_after(), Some(Duration::from_secs(16)));
    assert_eq!(Pass::default().requeue_after(), None);
}

#[test]
fn conditions_change_only_when_they_differ_and_keep_transition_times() {
    let t0 = Time(k8s_openapi::jiff::Timestamp::from_second(1_000).unwrap());
    let t1 = Time(k8s_openapi::jiff::Timestamp::from_second(2_000).unwrap());
    let ok = Pass::default().conditions();
    let first = update_conditions(&[], &ok, &t0).expect("all added");
    assert_eq!(first.len(), 5);
    assert_eq!(update_conditions(&first, &ok, &t1), None, "no change");
    let mut p = Pass::default();
    p.add(
        "configmaps.".into(),
        Remaining {
            estimate: 15,
            count: 1,
            finalizers: BTreeMap::from([("x".to_string(), 1)]),
        },
        None,
    );
    let second = update_conditions(&first, &p.conditions(), &t1).expect("changed");
    let remaining = second
        .iter()
        .find(|c| c.type_ == CONTENT_REMAINING)
        .unwrap();
    assert_eq!(remaining.status, "True");
    assert_eq!(remaining.last_transition_time, Some(t1.clone()));
    let discovery = second
        .iter()
        .find(|c| c.type_ == DISCOVERY_FAILURE)
        .unwrap();
    assert_eq!(
        discovery.last_transition_time,
        Some(t0),
        "unchanged status keeps its time"
    );
}

#[test]
fn finalizing_removes_only_ours() {
    let ns = |f: Option<&[&str]>| Namespace {
        spec: Some(NamespaceSpec {
            finalizers: f.map(|f| f.iter().map(|s| s.to_string()).collect()),
        }),
        ..Default::default()
    };
    let cases: Vec<(&str, Namespace, Option<Vec<String>>)> = vec![
        ("ours only", ns(Some(&["kubernetes"])), Some(vec![])),
        (
            "others stay",
            ns(Some(&["z.io/x", "kubernetes", "a.io/y"])),
            Some(vec!["a.io/y".into(), "z.io/x".into()]),
        ),
        ("already finalized", ns(Some(&["a.io/y"])), None),
        ("no finalizers", ns(None), None),
        ("no spec", Namespace::default(), None),
    ];
    for (what, n, want) in cases {
        assert_eq!(finalized_spec(&n), want, "{what}");
    }
}
