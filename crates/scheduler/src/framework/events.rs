//! Cluster events, for requeueing: a pod rejected by some plugins goes back to the active queue
//! only on an event one of those plugins registered for, as upstream's `ClusterEvent`.

/// The kind of object that changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventResource {
    /// A pod not yet bound (this scheduler's or another's).
    UnscheduledPod,
    /// A pod bound to a node.
    AssignedPod,
    /// A node.
    Node,
    /// A namespace.
    Namespace,
    /// A PodDisruptionBudget.
    PodDisruptionBudget,
    /// Any of the above: "every event".
    Wildcard,
}

/// What happened, as a bit set (upstream's `ActionType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ActionType(pub u32);

impl ActionType {
    /// Created.
    pub const ADD: ActionType = ActionType(1);
    /// Deleted.
    pub const DELETE: ActionType = ActionType(1 << 1);
    /// A node's allocatable changed.
    pub const UPDATE_NODE_ALLOCATABLE: ActionType = ActionType(1 << 2);
    /// A node's labels changed.
    pub const UPDATE_NODE_LABEL: ActionType = ActionType(1 << 3);
    /// A node's taints or `unschedulable` changed.
    pub const UPDATE_NODE_TAINT: ActionType = ActionType(1 << 4);
    /// A node's conditions changed.
    pub const UPDATE_NODE_CONDITION: ActionType = ActionType(1 << 5);
    /// A node's annotations changed.
    pub const UPDATE_NODE_ANNOTATION: ActionType = ActionType(1 << 6);
    /// A pod's labels changed.
    pub const UPDATE_POD_LABEL: ActionType = ActionType(1 << 7);
    /// A pod's requests went down.
    pub const UPDATE_POD_SCALE_DOWN: ActionType = ActionType(1 << 8);
    /// A pod's tolerations changed.
    pub const UPDATE_POD_TOLERATIONS: ActionType = ActionType(1 << 9);
    /// A pod's last scheduling gate was removed.
    pub const UPDATE_POD_GATES_REMOVED: ActionType = ActionType(1 << 10);
    /// Any other update.
    pub const UPDATE_OTHER: ActionType = ActionType(1 << 11);
    /// Any update.
    pub const UPDATE: ActionType = ActionType(0b1111_1111_1100);
    /// Anything.
    pub const ALL: ActionType = ActionType(u32::MAX);

    /// Both sets.
    pub const fn or(self, other: ActionType) -> ActionType {
        ActionType(self.0 | other.0)
    }

    /// Whether the sets share an action.
    pub fn intersects(self, other: ActionType) -> bool {
        self.0 & other.0 != 0
    }
}

/// An event: a resource and what happened to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClusterEvent {
    /// The resource.
    pub resource: EventResource,
    /// What happened.
    pub action: ActionType,
}

impl ClusterEvent {
    /// An event.
    pub const fn new(resource: EventResource, action: ActionType) -> Self {
        ClusterEvent { resource, action }
    }

    /// Whether a plugin registered for `self` cares about `happened`.
    pub fn matches(&self, happened: &ClusterEvent) -> bool {
        (self.resource == EventResource::Wildcard
            || happened.resource == EventResource::Wildcard
            || self.resource == happened.resource)
            && self.action.intersects(happened.action)
    }

    /// Every event (the periodic flush and errors use it).
    pub const WILDCARD: ClusterEvent = ClusterEvent::new(EventResource::Wildcard, ActionType::ALL);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_events_match_only_their_resource_and_actions() {
        let reg = ClusterEvent::new(
            EventResource::Node,
            ActionType::ADD.or(ActionType::UPDATE_NODE_TAINT),
        );
        assert!(reg.matches(&ClusterEvent::new(EventResource::Node, ActionType::ADD)));
        assert!(reg.matches(&ClusterEvent::new(
            EventResource::Node,
            ActionType::UPDATE_NODE_TAINT
        )));
        assert!(!reg.matches(&ClusterEvent::new(
            EventResource::Node,
            ActionType::UPDATE_NODE_LABEL
        )));
        assert!(!reg.matches(&ClusterEvent::new(
            EventResource::AssignedPod,
            ActionType::ADD
        )));
        assert!(reg.matches(&ClusterEvent::WILDCARD));
    }
}
