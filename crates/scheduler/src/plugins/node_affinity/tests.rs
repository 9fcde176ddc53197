//! NodeAffinity's table tests: upstream's `node_affinity_test.go` cases (the selector
//! matching itself is tested with `rkube_api::scheduling`).

use serde_json::{json, Value};

use super::*;
use crate::framework::Code;
use crate::plugins::testing::{node, pod, snapshot};

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

/// A pod whose required node affinity has these terms.
fn required(terms: Value) -> Value {
    json!({"spec": {"affinity": {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}}})
}

fn selector_pod(labels: Value) -> Value {
    json!({"spec": {"nodeSelector": labels}})
}

fn labelled(name: &str, labels: Value) -> NodeInfo {
    node(json!({"metadata": {"name": name, "labels": labels}}))
}

fn plugin(args: Value) -> NodeAffinity {
    let args: NodeAffinityArgs = parse_args(NAME, &args).expect("args parse");
    NodeAffinity::with_args(&args).expect("args valid")
}

#[derive(Default)]
enum Pre {
    #[default]
    Success,
    Skip,
    Conflict,
    NotRun,
}

#[derive(Default)]
struct FilterCase {
    name: &'static str,
    pod: Value,
    node: &'static str,
    labels: Value,
    args: Value,
    pre: Pre,
    names: Option<&'static [&'static str]>,
    want: Option<&'static str>,
}

#[test]
fn filter_and_pre_filter_follow_upstream_cases() {
    let foo_bar = json!({"foo": "bar"});
    let zone_added = |zone: &str| {
        json!({"addedAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [exprs(json!([req("zone", "In", &[zone])]))]}}})
    };
    let added_node2 = json!({"addedAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [fields(json!([name_in("node2")]))]}}});
    let gpu_not_amd = required(json!([exprs(json!([
        exists("GPU"),
        req("GPU", "NotIn", &["AMD", "INTER"])
    ]))]));
    let cases = vec![
        FilterCase {
            name: "missing labels",
            pod: selector_pod(foo_bar.clone()),
            want: Some(ERR_REASON_POD),
            ..Default::default()
        },
        FilterCase {
            name: "same labels",
            pod: selector_pod(foo_bar.clone()),
            labels: foo_bar.clone(),
            ..Default::default()
        },
        FilterCase {
            name: "node labels are superset",
            pod: selector_pod(foo_bar.clone()),
            labels: json!({"foo": "bar", "baz": "blah"}),
            ..Default::default()
        },
        FilterCase {
            name: "node labels are subset",
            pod: selector_pod(json!({"foo": "bar", "baz": "blah"})),
            labels: foo_bar.clone(),
            want: Some(ERR_REASON_POD),
            ..Default::default()
        },
        FilterCase {
            name: "In matches",
            pod: required(json!([exprs(json!([req(
                "foo",
                "In",
                &["bar", "value2"]
            )]))])),
            labels: foo_bar.clone(),
            ..Default::default()
        },
        FilterCase {
            name: "Gt matches",
            pod: required(json!([exprs(json!([req(
                "kernel-version",
                "Gt",
                &["0204"]
            )]))])),
            labels: json!({"kernel-version": "0206"}),
            ..Default::default()
        },
        FilterCase {
            name: "NotIn matches",
            pod: required(json!([exprs(json!([req(
                "mem-type",
                "NotIn",
                &["DDR", "DDR2"]
            )]))])),
            labels: json!({"mem-type": "DDR3"}),
            ..Default::default()
        },
        FilterCase {
            name: "Exists matches",
            pod: required(json!([exprs(json!([exists("GPU")]))])),
            labels: json!({"GPU": "NVIDIA-GRID-K1"}),
            ..Default::default()
        },
        FilterCase {
            name: "In does not match",
            pod: required(json!([exprs(json!([req(
                "foo",
                "In",
                &["value1", "value2"]
            )]))])),
            labels: foo_bar.clone(),
            want: Some(ERR_REASON_POD),
            ..Default::default()
        },
        FilterCase {
            name: "empty matchExpressions match nothing",
            pod: required(json!([exprs(json!([]))])),
            labels: foo_bar.clone(),
            want: Some(ERR_REASON_POD),
            ..Default::default()
        },
        FilterCase {
            name: "no affinity: PreFilter skips, Filter passes",
            pod: json!({}),
            labels: foo_bar.clone(),
            pre: Pre::Skip,
            ..Default::default()
        },
        FilterCase {
            name: "affinity without required selector: PreFilter skips",
            pod: json!({"spec": {"affinity": {"nodeAffinity": {}}}}),
            labels: foo_bar.clone(),
            pre: Pre::Skip,
            ..Default::default()
        },
        FilterCase {
            name: "ANDed expressions match",
            pod: gpu_not_amd.clone(),
            labels: json!({"GPU": "NVIDIA-GRID-K1"}),
            ..Default::default()
        },
        FilterCase {
            name: "ANDed expressions do not match",
            pod: required(json!([exprs(json!([
                exists("GPU"),
                req("GPU", "In", &["AMD", "INTER"])
            ]))])),
            labels: json!({"GPU": "NVIDIA-GRID-K1"}),
            want: Some(ERR_REASON_POD),
            ..Default::default()
        },
        FilterCase {
            name: "ORed terms, the first matches",
            pod: required(json!([
                exprs(json!([req("foo", "In", &["bar", "value2"])])),
                exprs(json!([req("diffkey", "In", &["wrong", "value2"])]))
            ])),
            labels: foo_bar.clone(),
            ..Default::default()
        },
        FilterCase {
            name: "affinity and nodeSelector both satisfied",
            pod: json!({"spec": {"nodeSelector": {"foo": "bar"}, "affinity": {"nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [exprs(json!([exists("foo")]))]}}}}}),
            labels: foo_bar.clone(),
            ..Default::default()
        },
        FilterCase {
            name: "affinity satisfied but nodeSelector not",
            pod: json!({"spec": {"nodeSelector": {"foo": "bar"}, "affinity": {"nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [exprs(json!([exists("foo")]))]}}}}}),
            labels: json!({"foo": "barrrrrr"}),
            want: Some(ERR_REASON_POD),
            ..Default::default()
        },
        FilterCase {
            name: "invalid value in a term matches nothing",
            pod: required(json!([exprs(json!([req(
                "foo",
                "NotIn",
                &["invalid value: ___@#$%^"]
            )]))])),
            labels: foo_bar.clone(),
            want: Some(ERR_REASON_POD),
            ..Default::default()
        },
        FilterCase {
            name: "matchFields In matches the node",
            pod: required(json!([fields(json!([name_in("node1")]))])),
            node: "node1",
            names: Some(&["node1"]),
            ..Default::default()
        },
        FilterCase {
            name: "matchFields In does not match the node",
            pod: required(json!([fields(json!([name_in("node1")]))])),
            node: "node2",
            names: Some(&["node1"]),
            want: Some(ERR_REASON_POD),
            ..Default::default()
        },
        FilterCase {
            name: "two terms: fields miss, expressions match",
            pod: required(json!([
                fields(json!([name_in("node1"), name_in("node2")])),
                exprs(json!([req("foo", "In", &["bar"])]))
            ])),
            node: "node2",
            labels: foo_bar.clone(),
            ..Default::default()
        },
        FilterCase {
            name: "one term: fields miss, expressions match",
            pod: json!({"spec": {"affinity": {"nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{
                    "matchFields": [name_in("node1")],
                    "matchExpressions": [req("foo", "In", &["bar"])]}]}}}}}),
            node: "node2",
            labels: foo_bar.clone(),
            names: Some(&["node1"]),
            want: Some(ERR_REASON_POD),
            ..Default::default()
        },
        FilterCase {
            name: "one term: fields and expressions match",
            pod: json!({"spec": {"affinity": {"nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{
                    "matchFields": [name_in("node1")],
                    "matchExpressions": [req("foo", "In", &["bar"])]}]}}}}}),
            node: "node1",
            labels: foo_bar.clone(),
            names: Some(&["node1"]),
            ..Default::default()
        },
        FilterCase {
            name: "two terms: neither matches",
            pod: required(json!([
                fields(json!([name_in("node1")])),
                exprs(json!([req("foo", "In", &["not-match-to-bar"])]))
            ])),
            node: "node2",
            labels: foo_bar.clone(),
            want: Some(ERR_REASON_POD),
            ..Default::default()
        },
        FilterCase {
            name: "two terms of node names are united",
            pod: required(json!([
                fields(json!([name_in("node1")])),
                fields(json!([name_in("node2")]))
            ])),
            node: "node2",
            names: Some(&["node1", "node2"]),
            ..Default::default()
        },
        FilterCase {
            name: "conflicting name requirements in one term",
            pod: required(json!([fields(json!([name_in("node1"), name_in("node2")]))])),
            node: "node2",
            labels: foo_bar.clone(),
            pre: Pre::Conflict,
            want: Some(ERR_REASON_POD),
            ..Default::default()
        },
        FilterCase {
            name: "matches added affinity and the pod's",
            pod: required(json!([exprs(json!([req("zone", "In", &["foo"])]))])),
            node: "node2",
            labels: json!({"zone": "foo"}),
            args: added_node2.clone(),
            ..Default::default()
        },
        FilterCase {
            name: "matches added affinity but not the pod's",
            pod: required(json!([exprs(json!([req("zone", "In", &["bar"])]))])),
            node: "node2",
            labels: json!({"zone": "foo"}),
            args: added_node2,
            want: Some(ERR_REASON_POD),
            ..Default::default()
        },
        FilterCase {
            name: "does not match added affinity",
            pod: json!({}),
            node: "node2",
            labels: json!({"zone": "foo"}),
            args: zone_added("bar"),
            want: Some(ERR_REASON_ENFORCED),
            ..Default::default()
        },
        FilterCase {
            name: "nodeSelector checked without PreFilter",
            pod: selector_pod(foo_bar.clone()),
            labels: json!({"foo": "bar", "baz": "blah"}),
            pre: Pre::NotRun,
            ..Default::default()
        },
        FilterCase {
            name: "affinity checked without PreFilter",
            pod: gpu_not_amd,
            labels: json!({"GPU": "NVIDIA-GRID-K1"}),
            pre: Pre::NotRun,
            ..Default::default()
        },
        FilterCase {
            name: "mismatch found without PreFilter",
            pod: selector_pod(foo_bar),
            labels: json!({"foo": "baz"}),
            pre: Pre::NotRun,
            want: Some(ERR_REASON_POD),
            ..Default::default()
        },
    ];
    for c in cases {
        let pl = plugin(c.args);
        let p = pod(c.pod);
        let n = labelled(c.node, c.labels);
        let mut state = CycleState::new();
        let want_pre = match c.pre {
            Pre::Success => Some(Status::success()),
            Pre::Skip => Some(Status::skip()),
            Pre::Conflict => Some(Status::unresolvable(ERR_REASON_CONFLICT)),
            Pre::NotRun => None,
        };
        if let Some(want_pre) = want_pre {
            let (result, status) = pl.pre_filter(&mut state, &p, &Snapshot::default());
            assert_eq!(status, want_pre, "{}: PreFilter status", c.name);
            let want_names: Option<HashSet<String>> =
                c.names.map(|ns| ns.iter().map(|s| s.to_string()).collect());
            assert_eq!(
                result.and_then(|r| r.node_names),
                want_names,
                "{}: PreFilter result",
                c.name
            );
        }
        let got = pl.filter(&state, &p, &n);
        let want = c.want.map_or_else(Status::success, Status::unresolvable);
        assert_eq!(got, want, "{}: Filter", c.name);
    }
}

struct ScoreCase {
    name: &'static str,
    pod: Value,
    nodes: Vec<(&'static str, Value)>,
    args: Value,
    pre_score: bool,
    want_pre: Status,
    want: Vec<i64>,
}

#[test]
fn score_sums_matching_preferred_weights_and_normalises() {
    let label1 = json!({"foo": "bar"});
    let label2 = json!({"key": "value"});
    let label3 = json!({"az": "az1"});
    let label4 = json!({"abc": "az11", "def": "az22"});
    let label5 = json!({"foo": "bar", "key": "value", "az": "az1"});
    let preferred = |terms: Value| {
        json!({"spec": {"affinity": {"nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": terms}}}})
    };
    let affinity1 =
        json!([{"weight": 2, "preference": exprs(json!([req("foo", "In", &["bar"])]))}]);
    let affinity2 = json!([
        {"weight": 2, "preference": exprs(json!([req("foo", "In", &["bar"])]))},
        {"weight": 4, "preference": exprs(json!([req("key", "In", &["value"])]))},
        {"weight": 5, "preference": exprs(json!([
            req("foo", "In", &["bar"]),
            req("key", "In", &["value"]),
            req("az", "In", &["az1"])
        ]))}
    ]);
    let invalid_key = "[0].matchExpressions[0].key: Invalid value: \"invalid key\": name part \
        must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an \
        alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for \
        validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
    let cases = vec![
        ScoreCase {
            name: "no node affinity: every node scores 0",
            pod: json!({}),
            nodes: vec![
                ("node1", label1.clone()),
                ("node2", label2.clone()),
                ("node3", label3.clone()),
            ],
            args: Value::Null,
            pre_score: false,
            want_pre: Status::success(),
            want: vec![0, 0, 0],
        },
        ScoreCase {
            name: "no node affinity: PreScore skips",
            pod: json!({}),
            nodes: vec![("node1", label1.clone())],
            args: Value::Null,
            pre_score: true,
            want_pre: Status::skip(),
            want: vec![],
        },
        ScoreCase {
            name: "broken preferred affinity is a PreScore error",
            pod: preferred(json!([{"weight": 2, "preference": exprs(json!([req(
                "invalid key",
                "In",
                &["bar"]
            )]))}])),
            nodes: vec![("node1", label1.clone())],
            args: Value::Null,
            pre_score: true,
            want_pre: Status::error(invalid_key),
            want: vec![],
        },
        ScoreCase {
            name: "no node matches the preferred terms",
            pod: preferred(affinity1.clone()),
            nodes: vec![
                ("node1", label4),
                ("node2", label2.clone()),
                ("node3", label3.clone()),
            ],
            args: Value::Null,
            pre_score: true,
            want_pre: Status::success(),
            want: vec![0, 0, 0],
        },
        ScoreCase {
            name: "only node1 matches",
            pod: preferred(affinity1.clone()),
            nodes: vec![
                ("node1", label1.clone()),
                ("node2", label2.clone()),
                ("node3", label3),
            ],
            args: Value::Null,
            pre_score: true,
            want_pre: Status::success(),
            want: vec![100, 0, 0],
        },
        ScoreCase {
            name: "weights add up per node",
            pod: preferred(affinity2.clone()),
            nodes: vec![
                ("node1", label1.clone()),
                ("node5", label5.clone()),
                ("node2", label2.clone()),
            ],
            args: Value::Null,
            pre_score: true,
            want_pre: Status::success(),
            want: vec![18, 100, 36],
        },
        ScoreCase {
            name: "added preferred affinity alone",
            pod: json!({}),
            nodes: vec![("node1", label1.clone()), ("node2", label2.clone())],
            args: json!({"addedAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": affinity1.clone()}}),
            pre_score: true,
            want_pre: Status::success(),
            want: vec![100, 0],
        },
        ScoreCase {
            name: "added preferred affinity and the pod's add up",
            pod: preferred(affinity1),
            nodes: vec![
                ("node1", label1.clone()),
                ("node2", label2.clone()),
                ("node3", label5.clone()),
            ],
            args: json!({"addedAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 3, "preference": exprs(json!([req("key", "In", &["value"])]))}]}}),
            pre_score: true,
            want_pre: Status::success(),
            want: vec![40, 60, 100],
        },
        ScoreCase {
            name: "scores without PreScore",
            pod: preferred(affinity2),
            nodes: vec![("node1", label1), ("node5", label5), ("node2", label2)],
            args: Value::Null,
            pre_score: false,
            want_pre: Status::success(),
            want: vec![18, 100, 36],
        },
    ];
    for c in cases {
        let pl = plugin(c.args);
        let p = pod(c.pod);
        let nodes: Vec<NodeInfo> = c.nodes.into_iter().map(|(n, l)| labelled(n, l)).collect();
        let snap = snapshot(nodes.clone());
        let mut state = CycleState::new();
        if c.pre_score {
            let refs: Vec<&NodeInfo> = nodes.iter().collect();
            let s = pl.pre_score(&mut state, &p, &refs, &snap);
            assert_eq!(s, c.want_pre, "{}: PreScore", c.name);
            if !s.is_success() {
                continue;
            }
        }
        let mut scores: Vec<i64> = nodes
            .iter()
            .map(|n| {
                let (v, s) = pl.score(&state, &p, n);
                assert!(s.is_success(), "{}: {s}", c.name);
                v
            })
            .collect();
        assert!(pl.normalize_scores(&state, &p, &mut scores).is_success());
        assert_eq!(scores, c.want, "{}", c.name);
    }
}

#[test]
fn invalid_added_affinity_is_refused_with_every_error() {
    let cases = [
        (
            json!({"addedAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [fields(json!([req("metadata.name", "Exists", &[])]))]}}}),
            "addedAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]\
             .matchFields[0].operator: Unsupported value: \"Exists\": supported values: \"In\", \
             \"NotIn\"",
        ),
        (
            json!({"addedAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    exprs(json!([req("a", "Exists", &["x"])]))]},
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 1, "preference": exprs(json!([req("b", "Gt", &["x"])]))}]}}),
            "[addedAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]\
             .matchExpressions[0].values: Invalid value: [\"x\"]: values set must be empty for \
             exists and does not exist, addedAffinity.preferredDuringSchedulingIgnoredDuring\
             Execution[0].matchExpressions[0].values[0]: Invalid value: \"x\": for 'Gt', 'Lt' \
             operators, the value must be an integer]",
        ),
    ];
    for (args, want) in cases {
        let args: NodeAffinityArgs = parse_args(NAME, &args).expect("args parse");
        assert_eq!(NodeAffinity::with_args(&args).err().as_deref(), Some(want));
    }
    assert!(new(
        &json!({"addedAffinity": {}, "bogus": 1}),
        &Handle::default()
    )
    .is_err());
    assert!(new(&Value::Null, &Handle::default()).is_ok());
}

#[test]
fn filter_uses_the_requirements_pre_filter_recorded() {
    // Filter reads PreFilter's state rather than the pod: a pod without requirements is
    // still held to the recorded node selector.
    let pl = plugin(Value::Null);
    let mut state = CycleState::new();
    let (_, s) = pl.pre_filter(
        &mut state,
        &pod(selector_pod(json!({"foo": "bar"}))),
        &Snapshot::default(),
    );
    assert!(s.is_success());
    let plain = pod(json!({}));
    assert_eq!(
        pl.filter(&state, &plain, &labelled("n", json!({"foo": "bar"}))),
        Status::success()
    );
    assert_eq!(
        pl.filter(&state, &plain, &labelled("n", json!({}))).code(),
        Code::UnschedulableAndUnresolvable
    );
}
