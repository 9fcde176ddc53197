//! Upstream's scheduling framework: one trait per extension point, the [`Status`] a plugin
//! returns, the [`CycleState`] it passes between points, the [`Snapshot`] of the cluster it
//! reads, and the [`Framework`] that runs a profile's plugins.
//!
//! A plugin is one type implementing [`Plugin`] plus the extension-point traits it needs;
//! `Plugin::as_filter` and its siblings tell the framework which ones. Everything but
//! PreBind, Bind and PostBind is synchronous and pure: plugins read the snapshot and the cycle
//! state and return a verdict. The binding points are async because they call the API.

pub mod cycle_state;
pub mod events;
pub mod runtime;
pub mod snapshot;
pub mod status;
pub mod types;
pub mod waiting;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

pub use cycle_state::CycleState;
pub use events::{ActionType, ClusterEvent, EventResource};
pub use runtime::{Framework, NodeToStatus, Nominated};
pub use snapshot::Snapshot;
pub use status::{Code, Status};
pub use types::{NodeInfo, PodInfo, Resource};
pub use waiting::WaitingPods;

/// A pod waiting in the scheduling queue.
#[derive(Clone, Debug)]
pub struct QueuedPodInfo {
    /// The pod.
    pub pod: Arc<PodInfo>,
    /// When the pod was last added to the queue (the QueueSort tie-break).
    pub timestamp: Instant,
    /// Scheduling attempts so far.
    pub attempts: u32,
    /// When the pod was first added (for the end-to-end latency metric).
    pub initial_attempt: Instant,
    /// The plugins that rejected the pod in its last attempt: only events these registered
    /// for move it back to the active queue.
    pub unschedulable_plugins: HashSet<&'static str>,
    /// A PreEnqueue plugin keeps the pod out of the active queue.
    pub gated: bool,
}

impl QueuedPodInfo {
    /// A pod just added.
    pub fn new(pod: Arc<PodInfo>, now: Instant) -> Self {
        QueuedPodInfo {
            pod,
            timestamp: now,
            attempts: 0,
            initial_attempt: now,
            unschedulable_plugins: HashSet::new(),
            gated: false,
        }
    }
}

/// What every plugin is: a name, the cluster events that may make a pod it rejected
/// schedulable, and the extension points it implements.
pub trait Plugin: Send + Sync {
    /// The plugin's name as configuration spells it.
    fn name(&self) -> &'static str;

    /// The events after which a pod this plugin rejected is worth retrying. Plugins that
    /// never reject return nothing.
    fn events_to_register(&self) -> Vec<ClusterEvent> {
        Vec::new()
    }

    /// PreEnqueue.
    fn as_pre_enqueue(&self) -> Option<&dyn PreEnqueuePlugin> {
        None
    }
    /// QueueSort.
    fn as_queue_sort(&self) -> Option<&dyn QueueSortPlugin> {
        None
    }
    /// PreFilter.
    fn as_pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        None
    }
    /// Filter.
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        None
    }
    /// PostFilter.
    fn as_post_filter(&self) -> Option<&dyn PostFilterPlugin> {
        None
    }
    /// PreScore.
    fn as_pre_score(&self) -> Option<&dyn PreScorePlugin> {
        None
    }
    /// Score.
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        None
    }
    /// Reserve (and Unreserve).
    fn as_reserve(&self) -> Option<&dyn ReservePlugin> {
        None
    }
    /// Permit.
    fn as_permit(&self) -> Option<&dyn PermitPlugin> {
        None
    }
    /// PreBind.
    fn as_pre_bind(&self) -> Option<&dyn PreBindPlugin> {
        None
    }
    /// Bind.
    fn as_bind(&self) -> Option<&dyn BindPlugin> {
        None
    }
    /// PostBind.
    fn as_post_bind(&self) -> Option<&dyn PostBindPlugin> {
        None
    }
}

impl std::fmt::Debug for dyn Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Decides whether a pod may enter the active queue at all.
pub trait PreEnqueuePlugin: Send + Sync {
    /// Success lets the pod in; anything else keeps it in the unschedulable pool.
    fn pre_enqueue(&self, pod: &PodInfo) -> Status;
}

/// Orders the active queue. Exactly one per profile.
pub trait QueueSortPlugin: Send + Sync {
    /// Whether `a` goes before `b`.
    fn less(&self, a: &QueuedPodInfo, b: &QueuedPodInfo) -> bool;
}

/// What PreFilter may narrow the candidate nodes to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PreFilterResult {
    /// The only nodes worth filtering; `None` means all.
    pub node_names: Option<HashSet<String>>,
}

/// Computes per-pod state before the per-node filters, and may reject the pod outright.
pub trait PreFilterPlugin: Send + Sync {
    /// Runs once per cycle. Skip means the plugin's Filter does not run this cycle.
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
    ) -> (Option<PreFilterResult>, Status);

    /// Preemption: update the state as if `added` were on `node`. Plugins whose state
    /// depends on other pods implement it.
    fn add_pod(
        &self,
        _state: &mut CycleState,
        _pod: &PodInfo,
        _added: &Arc<PodInfo>,
        _node: &NodeInfo,
        _snapshot: &Snapshot,
    ) -> Status {
        Status::success()
    }

    /// Preemption: update the state as if `removed` were no longer on `node`.
    fn remove_pod(
        &self,
        _state: &mut CycleState,
        _pod: &PodInfo,
        _removed: &Arc<PodInfo>,
        _node: &NodeInfo,
        _snapshot: &Snapshot,
    ) -> Status {
        Status::success()
    }
}

/// Decides whether the pod fits one node. Runs in parallel across nodes.
pub trait FilterPlugin: Send + Sync {
    /// Success if the pod fits `node`.
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status;
}

/// What a PostFilter plugin (preemption) proposes.
#[derive(Clone, Debug, Default)]
pub struct PostFilterResult {
    /// The node the pod should wait for (`status.nominatedNodeName`).
    pub nominated_node: String,
    /// The pods to evict so that it fits.
    pub victims: Vec<Arc<PodInfo>>,
    /// Lower-priority pods nominated to that node whose nomination must be cleared.
    pub clear_nominations: Vec<Arc<PodInfo>>,
}

/// What a PostFilter plugin may read.
#[derive(Debug)]
pub struct PostFilterContext<'a> {
    /// The cluster.
    pub snapshot: &'a Snapshot,
    /// The profile, for re-running filters on changed nodes.
    pub framework: &'a Framework,
    /// Pods nominated to nodes.
    pub nominated: &'a Nominated,
}

/// Runs when no node fits: preemption.
pub trait PostFilterPlugin: Send + Sync {
    /// `statuses` holds every node's filter verdict.
    fn post_filter(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        statuses: &NodeToStatus,
        ctx: &PostFilterContext<'_>,
    ) -> (Option<PostFilterResult>, Status);
}

/// Computes per-pod state before scoring the feasible nodes.
pub trait PreScorePlugin: Send + Sync {
    /// Skip means the plugin's Score does not run this cycle.
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        nodes: &[&NodeInfo],
        snapshot: &Snapshot,
    ) -> Status;
}

/// The highest score a plugin gives, after normalisation.
pub const MAX_NODE_SCORE: i64 = 100;
/// The lowest.
pub const MIN_NODE_SCORE: i64 = 0;

/// Ranks feasible nodes. Runs in parallel across nodes.
pub trait ScorePlugin: Send + Sync {
    /// The raw score of `node`.
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> (i64, Status);

    /// Scales raw scores (one per node, in the order given to PreScore) to 0..=100.
    fn normalize_scores(&self, _state: &CycleState, _pod: &PodInfo, _scores: &mut [i64]) -> Status {
        Status::success()
    }
}

/// Claims resources for the pod on its node before binding; Unreserve releases them if a
/// later point fails.
pub trait ReservePlugin: Send + Sync {
    /// Reserve.
    fn reserve(&self, state: &mut CycleState, pod: &PodInfo, node: &str) -> Status;
    /// Unreserve; must be idempotent.
    fn unreserve(&self, state: &mut CycleState, pod: &PodInfo, node: &str);
}

/// Approves, rejects or delays (Wait, up to the returned timeout) the binding.
pub trait PermitPlugin: Send + Sync {
    /// Permit.
    fn permit(&self, state: &mut CycleState, pod: &PodInfo, node: &str) -> (Status, Duration);
}

/// Runs before binding (volume provisioning, for example).
#[async_trait]
pub trait PreBindPlugin: Send + Sync {
    /// PreBind.
    async fn pre_bind(&self, state: &CycleState, pod: &PodInfo, node: &str) -> Status;
}

/// Binds the pod to the node. The first bind plugin that does not return Skip binds.
#[async_trait]
pub trait BindPlugin: Send + Sync {
    /// Bind.
    async fn bind(&self, state: &CycleState, pod: &PodInfo, node: &str) -> Status;
}

/// Informational, after a successful bind.
#[async_trait]
pub trait PostBindPlugin: Send + Sync {
    /// PostBind.
    async fn post_bind(&self, state: &CycleState, pod: &PodInfo, node: &str);
}
