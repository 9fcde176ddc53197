//! Table tests of the shared scheduling predicates.

use k8s_openapi::api::core::v1::{Node, NodeSelector, Pod, Taint, Toleration};
use serde_json::{json, Value};

use super::*;

fn req(key: &str, op: &str, values: &[&str]) -> Value {
    json!({"key": key, "operator": op, "values": values})
}

fn exists(key: &str) -> Value {
    json!({"key": key, "operator": "Exists"})
}

fn exprs(reqs: Value) -> Value {
    json!({"matchExpressions": reqs})
}

fn fields(reqs: Value) -> Value {
    json!({"matchFields": reqs})
}

fn name_in(name: &str) -> Value {
    req(OBJECT_NAME_FIELD, "In", &[name])
}

#[test]
fn node_selectors_match_as_upstream() {
    let n = |name: &str, labels: Value| -> Node {
        serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).expect("node")
    };
    let sel = |terms: Value| -> NodeSelector {
        serde_json::from_value(json!({"nodeSelectorTerms": terms})).expect("selector")
    };
    let cases = [
        ("no terms", json!([]), n("a", json!({})), false),
        ("only an empty term", json!([{}]), n("a", json!({})), false),
        (
            "Gt on a non-integer label",
            json!([exprs(json!([req("v", "Gt", &["1"])]))]),
            n("a", json!({"v": "x"})),
            false,
        ),
        (
            "Lt",
            json!([exprs(json!([req("v", "Lt", &["10"])]))]),
            n("a", json!({"v": "9"})),
            true,
        ),
        (
            "Gt on a missing label",
            json!([exprs(json!([req("v", "Gt", &["1"])]))]),
            n("a", json!({})),
            false,
        ),
        (
            "DoesNotExist",
            json!([exprs(json!([{"key": "v", "operator": "DoesNotExist"}]))]),
            n("a", json!({"v": "1"})),
            false,
        ),
        (
            "NotIn on a missing label",
            json!([exprs(json!([req("v", "NotIn", &["1"])]))]),
            n("a", json!({})),
            true,
        ),
        (
            "matchFields NotIn the node's name",
            json!([fields(json!([req(OBJECT_NAME_FIELD, "NotIn", &["a"])]))]),
            n("a", json!({})),
            false,
        ),
        (
            "matchFields NotIn another name",
            json!([fields(json!([req(OBJECT_NAME_FIELD, "NotIn", &["b"])]))]),
            n("a", json!({})),
            true,
        ),
        (
            "matchFields on another field reads it as empty",
            json!([fields(json!([req("metadata.uid", "In", &["a"])]))]),
            n("a", json!({})),
            false,
        ),
        (
            "matchFields are ignored for a node without a name",
            json!([fields(json!([name_in("b")]))]),
            n("", json!({})),
            true,
        ),
        (
            "an unparsable term does not hide a matching one",
            json!([
                exprs(json!([{"key": "v", "operator": "Bogus"}])),
                exprs(json!([exists("v")]))
            ]),
            n("a", json!({"v": "1"})),
            true,
        ),
        (
            "an unparsable term matches nothing",
            json!([{"matchExpressions": [exists("v")],
                    "matchFields": [req(OBJECT_NAME_FIELD, "In", &["a", "b"])]}]),
            n("a", json!({"v": "1"})),
            false,
        ),
    ];
    for (name, terms, node, want) in cases {
        assert_eq!(node_matches_selector(&sel(terms), &node), want, "{name}");
    }

    let labelled_node = n("a", json!({"disk": "ssd"}));
    let pod_cases = [
        (json!({}), true),
        (json!({"nodeSelector": {"disk": "ssd"}}), true),
        (json!({"nodeSelector": {"disk": "hdd"}}), false),
        (
            json!({"nodeSelector": {"disk": "ssd"}, "affinity": {"nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [fields(json!([name_in("b")]))]}}}}),
            false,
        ),
    ];
    for (spec, want) in pod_cases {
        let p: Pod = serde_json::from_value(json!({"spec": spec})).expect("pod");
        assert_eq!(
            pod_matches_node_selector_and_affinity(&p, &labelled_node),
            want,
            "{spec}"
        );
    }
}

fn taint(key: &str, value: &str, effect: &str) -> Taint {
    Taint {
        key: key.into(),
        value: Some(value.into()),
        effect: effect.into(),
        time_added: None,
    }
}

fn tol(key: &str, op: &str, value: &str, effect: &str) -> Toleration {
    Toleration {
        key: Some(key.into()),
        operator: Some(op.into()),
        value: Some(value.into()),
        effect: Some(effect.into()),
        toleration_seconds: None,
    }
}

#[test]
fn toleration_matching_follows_upstream() {
    let t = taint("k", "v", "NoSchedule");
    let cases = [
        (tol("k", "Equal", "v", "NoSchedule"), true),
        (tol("k", "Equal", "other", "NoSchedule"), false),
        (tol("k", "Exists", "", ""), true),
        (tol("", "Exists", "", ""), true),
        (tol("k", "Equal", "v", "NoExecute"), false),
        (tol("other", "Exists", "", "NoSchedule"), false),
        (tol("k", "", "v", ""), true),
        (tol("k", "Gt", "v", ""), false),
    ];
    for (i, (tl, want)) in cases.iter().enumerate() {
        assert_eq!(tolerates(tl, &t), *want, "case {i}: {tl:?}");
    }
}

#[test]
fn the_first_untolerated_taint_among_the_filtered_effects_is_found() {
    let taints = [
        taint("soft", "", "PreferNoSchedule"),
        taint("a", "1", "NoSchedule"),
        taint("b", "", "NoExecute"),
    ];
    let hard = |t: &Taint| t.effect == "NoSchedule" || t.effect == "NoExecute";
    let no_execute = |t: &Taint| t.effect == "NoExecute";
    let key = |t: Option<&Taint>| t.map(|t| t.key.clone());
    let cases: &[(&str, Vec<Toleration>, bool, Option<&str>)] = &[
        ("nothing tolerated", vec![], false, Some("a")),
        (
            "NoSchedule tolerated",
            vec![tol("a", "Equal", "1", "NoSchedule")],
            false,
            Some("b"),
        ),
        (
            "all hard taints tolerated",
            vec![
                tol("a", "Exists", "", ""),
                tol("b", "Exists", "", "NoExecute"),
            ],
            false,
            None,
        ),
        ("only NoExecute counts", vec![], true, Some("b")),
        ("wildcard", vec![tol("", "Exists", "", "")], false, None),
    ];
    for (what, tols, only_execute, want) in cases {
        let got = if *only_execute {
            find_untolerated_taint(&taints, tols, no_execute)
        } else {
            find_untolerated_taint(&taints, tols, hard)
        };
        assert_eq!(key(got).as_deref(), *want, "{what}");
    }
}

#[test]
fn strict_parsing_reports_every_error_and_preferred_terms_add_weights() {
    let sel: NodeSelector = serde_json::from_value(json!({"nodeSelectorTerms": [
        fields(json!([req(OBJECT_NAME_FIELD, "Exists", &[])])),
        exprs(json!([req("v", "Gt", &["x"])])),
    ]}))
    .expect("selector");
    let errs = NodeSelectorMatcher::parse(&sel, &FieldPath::new("s")).expect_err("invalid");
    assert_eq!(errs.len(), 2, "{errs:?}");
    let node: Node = serde_json::from_value(json!({"metadata": {"name": "n1",
        "labels": {"zone": "a", "disk": "ssd"}}}))
    .expect("node");
    let terms: Vec<PreferredSchedulingTerm> = serde_json::from_value(json!([
        {"weight": 3, "preference": exprs(json!([req("zone", "In", &["a"])]))},
        {"weight": 5, "preference": exprs(json!([req("disk", "In", &["hdd"])]))},
        {"weight": 7, "preference": fields(json!([name_in("n1")]))},
        {"weight": 0, "preference": exprs(json!([exists("zone")]))},
    ]))
    .expect("terms");
    let parsed = PreferredTerms::parse(&terms, &FieldPath::default()).expect("valid");
    assert_eq!(parsed.score(&node), 10);
}

#[test]
fn a_pods_required_affinity_is_read_from_its_spec() {
    let p: Pod = serde_json::from_value(json!({"spec": {"affinity": {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [fields(json!([name_in("n1")]))]}}}}}))
    .expect("pod");
    let sel = required_node_affinity(&p).expect("required affinity");
    assert_eq!(sel.node_selector_terms.len(), 1);
    assert!(required_node_affinity(&Pod::default()).is_none());
    let n = |name: &str| -> Node {
        serde_json::from_value(json!({"metadata": {"name": name}})).expect("node")
    };
    let required = RequiredNodeAffinity::from_pod(&p);
    assert!(required.matches(&n("n1")));
    assert!(!required.matches(&n("n2")));
}
