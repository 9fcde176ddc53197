//! SchedulingGates: a pod with `spec.schedulingGates` stays out of the active queue until the
//! last gate is removed.

use std::sync::Arc;

use crate::framework::{
    ActionType, ClusterEvent, Code, EventResource, Plugin, PodInfo, PreEnqueuePlugin, Status,
};
use crate::registry::Handle;

/// The plugin's name.
pub const NAME: &str = "SchedulingGates";

/// See the module documentation.
#[derive(Debug)]
pub struct SchedulingGates;

/// The factory.
pub fn new(_args: &serde_json::Value, _handle: &Handle) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(SchedulingGates))
}

impl Plugin for SchedulingGates {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events_to_register(&self) -> Vec<ClusterEvent> {
        vec![ClusterEvent::new(
            EventResource::UnscheduledPod,
            ActionType::UPDATE_POD_GATES_REMOVED,
        )]
    }
    fn as_pre_enqueue(&self) -> Option<&dyn PreEnqueuePlugin> {
        Some(self)
    }
}

impl PreEnqueuePlugin for SchedulingGates {
    fn pre_enqueue(&self, pod: &PodInfo) -> Status {
        let gates: Vec<&str> = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.scheduling_gates.as_ref())
            .into_iter()
            .flatten()
            .map(|g| g.name.as_str())
            .collect();
        if gates.is_empty() {
            return Status::success();
        }
        Status::new(
            Code::UnschedulableAndUnresolvable,
            [format!(
                "waiting for scheduling gates: [{}]",
                gates.join(" ")
            )],
        )
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::plugins::testing::pod;

    #[test]
    fn gated_pods_wait() {
        let cases = [
            (json!({}), Code::Success, ""),
            (json!({"spec": {"schedulingGates": []}}), Code::Success, ""),
            (
                json!({"spec": {"schedulingGates": [{"name": "foo"}, {"name": "bar"}]}}),
                Code::UnschedulableAndUnresolvable,
                "waiting for scheduling gates: [foo bar]",
            ),
        ];
        for (i, (p, code, msg)) in cases.into_iter().enumerate() {
            let s = SchedulingGates.pre_enqueue(&pod(p));
            assert_eq!(s.code(), code, "case {i}");
            assert_eq!(s.message(), msg, "case {i}");
        }
    }
}
