//! NodeUnschedulable: nodes with `spec.unschedulable` (cordoned) take only pods that tolerate
//! the `node.kubernetes.io/unschedulable:NoSchedule` taint.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Taint;

use crate::framework::{
    ActionType, ClusterEvent, CycleState, EventResource, FilterPlugin, NodeInfo, Plugin, PodInfo,
    Status,
};
use crate::helpers::tolerates;
use crate::registry::Handle;

/// The plugin's name.
pub const NAME: &str = "NodeUnschedulable";

/// Upstream's reason.
pub const ERR_REASON: &str = "node(s) were unschedulable";

/// The taint a cordoned node behaves as if it had.
pub const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

/// See the module documentation.
#[derive(Debug)]
pub struct NodeUnschedulable;

/// The factory.
pub fn new(_args: &serde_json::Value, _handle: &Handle) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(NodeUnschedulable))
}

impl Plugin for NodeUnschedulable {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events_to_register(&self) -> Vec<ClusterEvent> {
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
}

impl FilterPlugin for NodeUnschedulable {
    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let cordoned = node
            .node
            .spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false);
        if !cordoned {
            return Status::success();
        }
        let taint = Taint {
            key: TAINT_UNSCHEDULABLE.into(),
            effect: "NoSchedule".into(),
            value: None,
            time_added: None,
        };
        let tolerated = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.tolerations.as_ref())
            .is_some_and(|ts| ts.iter().any(|t| tolerates(t, &taint)));
        if tolerated {
            Status::success()
        } else {
            Status::unresolvable(ERR_REASON)
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::framework::Code;
    use crate::plugins::testing::{node, pod};

    #[test]
    fn cordoned_nodes_take_only_tolerating_pods() {
        let open = node(json!({"metadata": {"name": "a"}}));
        let cordoned = node(json!({"metadata": {"name": "b"}, "spec": {"unschedulable": true}}));
        let tolerating = json!({"spec": {"tolerations": [
            {"key": TAINT_UNSCHEDULABLE, "operator": "Exists", "effect": "NoSchedule"}]}});
        let cases = [
            (&open, json!({}), Code::Success),
            (&cordoned, json!({}), Code::UnschedulableAndUnresolvable),
            (&cordoned, tolerating.clone(), Code::Success),
            (&open, tolerating, Code::Success),
        ];
        for (i, (n, p, want)) in cases.into_iter().enumerate() {
            let s = NodeUnschedulable.filter(&CycleState::new(), &pod(p), n);
            assert_eq!(s.code(), want, "case {i}");
            if want != Code::Success {
                assert_eq!(s.message(), ERR_REASON);
            }
        }
    }
}
