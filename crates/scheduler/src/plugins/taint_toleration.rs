//! TaintToleration: a node's `NoSchedule` and `NoExecute` taints keep off every pod that does
//! not tolerate them (Filter), and its `PreferNoSchedule` taints make it less attractive to pods
//! that do not tolerate them (Score), as upstream's `tainttoleration` plugin.
//!
//! - Filter rejects a node with the first such taint no toleration matches, as
//!   UnschedulableAndUnresolvable (preemption cannot remove a taint), with upstream's reason
//!   `node(s) had untolerated taint {key: value}`.
//! - PreScore keeps the pod's tolerations that can apply to `PreferNoSchedule` taints (that
//!   effect, or no effect, which means every effect); it never skips, since a pod without
//!   tolerations still prefers nodes without such taints.
//! - Score is the number of the node's `PreferNoSchedule` taints those tolerations miss, and
//!   NormalizeScore reverses it onto 0..=100: the fewest untolerated taints score highest.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Taint, Toleration};

use crate::framework::{
    ActionType, ClusterEvent, CycleState, EventResource, FilterPlugin, NodeInfo, Plugin, PodInfo,
    PreScorePlugin, ScorePlugin, Snapshot, Status, MAX_NODE_SCORE,
};
use crate::helpers::{default_normalize_score, find_untolerated_taint, tolerates};
use crate::registry::Handle;

/// The plugin's name.
pub const NAME: &str = "TaintToleration";

/// The cycle-state key of the PreScore data.
const PRE_SCORE_KEY: &str = "PreScoreTaintToleration";

/// Taint effects.
const NO_SCHEDULE: &str = "NoSchedule";
const NO_EXECUTE: &str = "NoExecute";
const PREFER_NO_SCHEDULE: &str = "PreferNoSchedule";

/// See the module documentation.
#[derive(Debug)]
pub struct TaintToleration;

/// The factory.
pub fn new(_args: &serde_json::Value, _handle: &Handle) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(TaintToleration))
}

/// Upstream's Filter reason for `taint`: `node(s) had untolerated taint {key: value}`.
pub fn untolerated_taint_reason(taint: &Taint) -> String {
    format!(
        "node(s) had untolerated taint {{{}: {}}}",
        taint.key,
        taint.value.as_deref().unwrap_or("")
    )
}

fn node_taints(node: &NodeInfo) -> &[Taint] {
    node.node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or(&[])
}

fn pod_tolerations(pod: &PodInfo) -> &[Toleration] {
    pod.pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or(&[])
}

impl Plugin for TaintToleration {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events_to_register(&self) -> Vec<ClusterEvent> {
        // Upstream's set with queueing hints enabled (the v1.33 default): a node appearing or
        // changing its taints, or the pod's own tolerations changing.
        vec![
            ClusterEvent::new(
                EventResource::Node,
                ActionType::ADD.or(ActionType::UPDATE_NODE_TAINT),
            ),
            ClusterEvent::new(
                EventResource::UnscheduledPod,
                ActionType::UPDATE_POD_TOLERATIONS,
            ),
        ]
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
    fn as_pre_score(&self) -> Option<&dyn PreScorePlugin> {
        Some(self)
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

impl FilterPlugin for TaintToleration {
    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let untolerated = find_untolerated_taint(node_taints(node), pod_tolerations(pod), |t| {
            t.effect == NO_SCHEDULE || t.effect == NO_EXECUTE
        });
        match untolerated {
            None => Status::success(),
            Some(taint) => Status::unresolvable(untolerated_taint_reason(taint)),
        }
    }
}

/// The pod's tolerations that can match a `PreferNoSchedule` taint.
#[derive(Clone, Debug)]
struct PreScoreState {
    tolerations: Arc<[Toleration]>,
}

impl PreScorePlugin for TaintToleration {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _nodes: &[&NodeInfo],
        _snapshot: &Snapshot,
    ) -> Status {
        let tolerations: Arc<[Toleration]> = pod_tolerations(pod)
            .iter()
            .filter(|t| {
                // An empty effect tolerates every effect, PreferNoSchedule included.
                t.effect
                    .as_deref()
                    .is_none_or(|e| e.is_empty() || e == PREFER_NO_SCHEDULE)
            })
            .cloned()
            .collect();
        state.write(PRE_SCORE_KEY, PreScoreState { tolerations });
        Status::success()
    }
}

impl ScorePlugin for TaintToleration {
    fn score(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> (i64, Status) {
        let Some(s) = state.read::<PreScoreState>(PRE_SCORE_KEY) else {
            return (
                0,
                Status::error(format!(
                    "failed to read {PRE_SCORE_KEY:?} from cycleState: not found"
                )),
            );
        };
        let count = node_taints(node)
            .iter()
            .filter(|taint| taint.effect == PREFER_NO_SCHEDULE)
            .filter(|taint| !s.tolerations.iter().any(|t| tolerates(t, taint)))
            .count();
        (count as i64, Status::success())
    }

    fn normalize_scores(&self, _state: &CycleState, _pod: &PodInfo, scores: &mut [i64]) -> Status {
        default_normalize_score(MAX_NODE_SCORE, true, scores);
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::framework::Code;
    use crate::plugins::testing::{node, pod, snapshot};

    fn tainted(name: &str, taints: Value) -> NodeInfo {
        node(json!({"metadata": {"name": name}, "spec": {"taints": taints}}))
    }

    fn tolerating(tolerations: Value) -> Arc<PodInfo> {
        pod(json!({"spec": {"tolerations": tolerations}}))
    }

    #[test]
    fn filter_rejects_untolerated_no_schedule_and_no_execute_taints() {
        let dedicated_user1 =
            json!([{"key": "dedicated", "value": "user1", "effect": "NoSchedule"}]);
        let cases = [
            (
                "no tolerations, NoSchedule taint",
                json!([]),
                dedicated_user1.clone(),
                Some("node(s) had untolerated taint {dedicated: user1}"),
            ),
            (
                "toleration with empty operator matches the value",
                json!([{"key": "dedicated", "value": "user1", "effect": "NoSchedule"}]),
                dedicated_user1.clone(),
                None,
            ),
            (
                "Equal toleration for another value",
                json!([{"key": "dedicated", "operator": "Equal", "value": "user2", "effect": "NoSchedule"}]),
                dedicated_user1.clone(),
                Some("node(s) had untolerated taint {dedicated: user1}"),
            ),
            (
                "Exists toleration tolerates any value",
                json!([{"key": "foo", "operator": "Exists", "effect": "NoSchedule"}]),
                json!([{"key": "foo", "value": "bar", "effect": "NoSchedule"}]),
                None,
            ),
            (
                "every taint tolerated",
                json!([
                    {"key": "dedicated", "operator": "Equal", "value": "user2", "effect": "NoSchedule"},
                    {"key": "foo", "operator": "Exists", "effect": "NoSchedule"}]),
                json!([
                    {"key": "dedicated", "value": "user2", "effect": "NoSchedule"},
                    {"key": "foo", "value": "bar", "effect": "NoSchedule"}]),
                None,
            ),
            (
                "matching key and value but another effect",
                json!([{"key": "foo", "operator": "Equal", "value": "bar", "effect": "PreferNoSchedule"}]),
                json!([{"key": "foo", "value": "bar", "effect": "NoSchedule"}]),
                Some("node(s) had untolerated taint {foo: bar}"),
            ),
            (
                "empty toleration effect tolerates NoSchedule",
                json!([{"key": "foo", "operator": "Equal", "value": "bar"}]),
                json!([{"key": "foo", "value": "bar", "effect": "NoSchedule"}]),
                None,
            ),
            (
                "PreferNoSchedule taints never filter",
                json!([{"key": "dedicated", "operator": "Equal", "value": "user2", "effect": "NoSchedule"}]),
                json!([{"key": "dedicated", "value": "user1", "effect": "PreferNoSchedule"}]),
                None,
            ),
            (
                "PreferNoSchedule taint, no tolerations",
                json!([]),
                json!([{"key": "dedicated", "value": "user1", "effect": "PreferNoSchedule"}]),
                None,
            ),
            (
                "NoExecute taints filter too, valueless taint prints empty",
                json!([]),
                json!([{"key": "gone", "effect": "NoExecute"}]),
                Some("node(s) had untolerated taint {gone: }"),
            ),
            (
                "first untolerated taint is reported",
                json!([{"key": "a", "operator": "Exists"}]),
                json!([
                    {"key": "a", "value": "1", "effect": "NoSchedule"},
                    {"key": "b", "value": "2", "effect": "PreferNoSchedule"},
                    {"key": "c", "value": "3", "effect": "NoExecute"},
                    {"key": "d", "value": "4", "effect": "NoSchedule"}]),
                Some("node(s) had untolerated taint {c: 3}"),
            ),
        ];
        for (name, tolerations, taints, want) in cases {
            let got = TaintToleration.filter(
                &CycleState::new(),
                &tolerating(tolerations),
                &tainted("n", taints),
            );
            match want {
                None => assert_eq!(got, Status::success(), "{name}"),
                Some(reason) => {
                    assert_eq!(got.code(), Code::UnschedulableAndUnresolvable, "{name}");
                    assert_eq!(got.reasons(), [reason.to_string()], "{name}");
                }
            }
        }
    }

    #[test]
    fn score_prefers_nodes_with_fewest_untolerated_prefer_no_schedule_taints() {
        let cpu_arm = json!({"key": "cpu-type", "value": "arm64", "effect": "PreferNoSchedule"});
        let disk_ssd = json!({"key": "disk-type", "value": "ssd", "effect": "PreferNoSchedule"});
        let cases = [
            (
                "tolerated taint beats untolerated one",
                json!([{"key": "foo", "operator": "Equal", "value": "bar", "effect": "PreferNoSchedule"}]),
                vec![
                    json!([{"key": "foo", "value": "bar", "effect": "PreferNoSchedule"}]),
                    json!([{"key": "foo", "value": "blah", "effect": "PreferNoSchedule"}]),
                ],
                vec![100, 0],
            ),
            (
                "the number of tolerated taints does not matter",
                json!([
                    {"key": "cpu-type", "operator": "Equal", "value": "arm64", "effect": "PreferNoSchedule"},
                    {"key": "disk-type", "operator": "Equal", "value": "ssd", "effect": "PreferNoSchedule"}]),
                vec![json!([]), json!([cpu_arm]), json!([cpu_arm, disk_ssd])],
                vec![100, 100, 100],
            ),
            (
                "more untolerated taints score lower",
                json!([{"key": "foo", "operator": "Equal", "value": "bar", "effect": "PreferNoSchedule"}]),
                vec![json!([]), json!([cpu_arm]), json!([cpu_arm, disk_ssd])],
                vec![100, 50, 0],
            ),
            (
                "only PreferNoSchedule taints and tolerations count",
                json!([
                    {"key": "cpu-type", "operator": "Equal", "value": "arm64", "effect": "NoSchedule"},
                    {"key": "disk-type", "operator": "Equal", "value": "ssd", "effect": "NoSchedule"}]),
                vec![
                    json!([]),
                    json!([{"key": "cpu-type", "value": "arm64", "effect": "NoSchedule"}]),
                    json!([cpu_arm, disk_ssd]),
                ],
                vec![100, 100, 0],
            ),
            (
                "no tolerations prefer the untainted node",
                json!([]),
                vec![json!([]), json!([cpu_arm])],
                vec![100, 0],
            ),
            (
                "a toleration without effect tolerates PreferNoSchedule",
                json!([{"key": "cpu-type", "operator": "Exists"}]),
                vec![json!([]), json!([cpu_arm]), json!([disk_ssd])],
                vec![100, 100, 0],
            ),
        ];
        for (name, tolerations, taints, want) in cases {
            let p = tolerating(tolerations);
            let nodes: Vec<NodeInfo> = taints
                .into_iter()
                .enumerate()
                .map(|(i, t)| tainted(&format!("node{i}"), t))
                .collect();
            let snap = snapshot(nodes.clone());
            let refs: Vec<&NodeInfo> = nodes.iter().collect();
            let mut state = CycleState::new();
            assert!(TaintToleration
                .pre_score(&mut state, &p, &refs, &snap)
                .is_success());
            let mut scores: Vec<i64> = nodes
                .iter()
                .map(|n| {
                    let (s, st) = TaintToleration.score(&state, &p, n);
                    assert!(st.is_success(), "{name}: {st}");
                    s
                })
                .collect();
            assert!(TaintToleration
                .normalize_scores(&state, &p, &mut scores)
                .is_success());
            assert_eq!(scores, want, "{name}");
        }
    }

    #[test]
    fn score_without_pre_score_is_an_error() {
        let (_, s) = TaintToleration.score(
            &CycleState::new(),
            &tolerating(json!([])),
            &tainted("n", json!([])),
        );
        assert_eq!(s.code(), Code::Error);
    }

    #[test]
    fn default_normalize_scales_and_reverses_like_upstream() {
        let cases: [(&[i64], bool, &[i64]); 6] = [
            (&[0, 0, 0], false, &[0, 0, 0]),
            (&[0, 0, 0], true, &[100, 100, 100]),
            (&[1, 2, 4], false, &[25, 50, 100]),
            (&[1, 2, 4], true, &[75, 50, 0]),
            (&[2, 6, 11], false, &[18, 54, 100]),
            (&[], true, &[]),
        ];
        for (input, reverse, want) in cases {
            let mut s = input.to_vec();
            default_normalize_score(MAX_NODE_SCORE, reverse, &mut s);
            assert_eq!(s, want, "{input:?} reverse={reverse}");
        }
    }
}
