//! NodeName: a pod that names a node in `spec.nodeName` fits only that node. (The scheduler
//! only sees such pods when they are nominated or in preemption simulations.)

use std::sync::Arc;

use crate::framework::{
    ActionType, ClusterEvent, CycleState, EventResource, FilterPlugin, NodeInfo, Plugin, PodInfo,
    Status,
};
use crate::registry::Handle;

/// The plugin's name.
pub const NAME: &str = "NodeName";

/// Upstream's reason.
pub const ERR_REASON: &str = "node(s) didn't match the requested node name";

/// See the module documentation.
#[derive(Debug)]
pub struct NodeName;

/// The factory.
pub fn new(_args: &serde_json::Value, _handle: &Handle) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(NodeName))
}

impl Plugin for NodeName {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events_to_register(&self) -> Vec<ClusterEvent> {
        vec![ClusterEvent::new(EventResource::Node, ActionType::ADD)]
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
}

impl FilterPlugin for NodeName {
    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let want = pod.node_name();
        if want.is_empty() || want == node.name {
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
    fn only_the_named_node_fits() {
        let n = node(json!({"metadata": {"name": "n1"}}));
        let cases = [
            (json!({}), Code::Success),
            (json!({"spec": {"nodeName": "n1"}}), Code::Success),
            (
                json!({"spec": {"nodeName": "n2"}}),
                Code::UnschedulableAndUnresolvable,
            ),
        ];
        for (i, (p, want)) in cases.into_iter().enumerate() {
            let s = NodeName.filter(&CycleState::new(), &pod(p), &n);
            assert_eq!(s.code(), want, "case {i}");
        }
    }
}
