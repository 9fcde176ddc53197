//! PrioritySort: the active queue orders pods by priority, highest first, then by the time
//! they were queued.

use std::sync::Arc;

use crate::framework::{Plugin, QueueSortPlugin, QueuedPodInfo};
use crate::registry::Handle;

/// The plugin's name.
pub const NAME: &str = "PrioritySort";

/// See the module documentation.
#[derive(Debug)]
pub struct PrioritySort;

/// The factory.
pub fn new(_args: &serde_json::Value, _handle: &Handle) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(PrioritySort))
}

impl Plugin for PrioritySort {
    fn name(&self) -> &'static str {
        NAME
    }
    fn as_queue_sort(&self) -> Option<&dyn QueueSortPlugin> {
        Some(self)
    }
}

impl QueueSortPlugin for PrioritySort {
    fn less(&self, a: &QueuedPodInfo, b: &QueuedPodInfo) -> bool {
        a.pod.priority > b.pod.priority
            || (a.pod.priority == b.pod.priority && a.timestamp < b.timestamp)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use serde_json::json;

    use super::*;
    use crate::plugins::testing::pod;

    #[test]
    fn higher_priority_first_then_earlier() {
        let t0 = Instant::now();
        let q = |prio: i32, at: u64| {
            let mut q = QueuedPodInfo::new(
                pod(json!({"spec": {"priority": prio}})),
                t0 + Duration::from_secs(at),
            );
            q.timestamp = t0 + Duration::from_secs(at);
            q
        };
        let cases = [
            (q(10, 5), q(1, 0), true),
            (q(1, 0), q(10, 5), false),
            (q(5, 0), q(5, 1), true),
            (q(5, 1), q(5, 0), false),
            (q(5, 1), q(5, 1), false),
        ];
        for (i, (a, b, want)) in cases.iter().enumerate() {
            assert_eq!(PrioritySort.less(a, b), *want, "case {i}");
        }
    }
}
