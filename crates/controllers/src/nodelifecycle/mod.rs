//! `node-lifecycle` (upstream's `NodeLifecycleController`): watches node health and taints
//! nodes by their conditions.
//!
//! Every `node_monitor_period`, and whenever a node changes, one pass over all nodes
//! ([`monitor::Monitor::pass`]) decides:
//! - **health**: a node heard of neither through its Ready heartbeat nor its Lease in
//!   `kube-node-lease` for `node_monitor_grace_period` has Ready, MemoryPressure,
//!   DiskPressure and PIDPressure set Unknown (`NodeStatusUnknown`, "Kubelet stopped posting
//!   node status."); when Ready leaves True the node's pods are marked not ready and a
//!   `NodeNotReady` event is recorded, as upstream;
//! - **NoSchedule taints** (TaintNodesByCondition): not-ready / unreachable for Ready
//!   False / Unknown, memory/disk/pid-pressure and network-unavailable for those conditions,
//!   unschedulable for `spec.unschedulable`; all removed when the condition clears;
//! - **NoExecute taints** (taint-based eviction): not-ready / unreachable, added per zone at
//!   `node_eviction_rate` (`secondary_node_eviction_rate` or none in a partially disrupted
//!   zone), swapped at once between the two, removed at once when Ready is True, and
//!   removed from every node while every zone is fully disrupted. Pods are evicted from
//!   NoExecute-tainted nodes by [`crate::tainteviction`].

mod monitor;
pub mod taints;

use std::sync::Arc;

use crate::events::Recorder;
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::runtime::events::EventType;

pub(crate) use crate::events::publish;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, Resource, ResourceExt};

pub use monitor::{
    observe, zone_key, zone_rate, zone_state, Monitor, NodeAction, NodeHealth, NodeLifecycleConfig,
    ZoneState, NEVER_POSTED, NODE_STATUS_NEVER_UPDATED, NODE_STATUS_UNKNOWN, STOPPED_POSTING,
};

use crate::error::{is_conflict, is_not_found};
use crate::{ControllerContext, Error};

pub const NAME: &str = "node-lifecycle";

/// The namespace of node heartbeat leases.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

/// Runs the controller until the node watch ends, with the settings in `ctx.node_lifecycle`.
pub async fn run(client: Client, ctx: Arc<ControllerContext>) -> Result<(), Error> {
    let cfg = ctx.node_lifecycle.clone();
    let (nodes, mut node_events) = ctx.informer::<Node>(NAME, &client).await;
    let (leases, lease_events) = ctx.informer::<Lease>(NAME, &client).await;
    let (pods, pod_events) = ctx.informer::<Pod>(NAME, &client).await;
    // Lease and pod changes need no pass of their own; their streams are polled so that a
    // cache of the controller's own (no shared informers) keeps filling.
    tokio::spawn(lease_events.for_each(|_| async {}));
    tokio::spawn(pod_events.for_each(|_| async {}));
    let recorder = crate::events::recorder(client.clone(), "node-controller");
    let mut monitor = Monitor::default();
    let mut tick = tokio::time::interval(cfg.node_monitor_period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tracing::info!(controller = NAME, "starting controller");
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            ev = node_events.next() => {
                if ev.is_none() {
                    break;
                }
                // Coalesce a burst of node events into one pass.
                while let Some(Some(_)) = futures::FutureExt::now_or_never(node_events.next()) {}
            }
        }
        let all = nodes.state();
        let refs: Vec<&Node> = all.iter().map(|n| n.as_ref()).collect();
        let lease_renew = |name: &str| {
            leases
                .get(&ObjectRef::new(name).within(NODE_LEASE_NAMESPACE))
                .and_then(|l| l.spec.as_ref()?.renew_time.as_ref().map(|t| t.0))
        };
        let now = Timestamp::now();
        let actions = monitor.pass(&refs, lease_renew, now, &cfg);
        for action in actions {
            let Some(node) = nodes.get(&ObjectRef::new(&action.name)) else {
                continue;
            };
            let mut event_recorded = !action.became_not_ready;
            let applied = apply(
                &client,
                &recorder,
                &pods,
                &node,
                &action,
                now,
                &mut event_recorded,
            )
            .await;
            if let Err(e) = applied {
                // The pass has already taken the node as not ready; without this, a failed
                // write would leave its pods Ready for good (upstream's `nodesToRetry`).
                if action.mark_pods_not_ready {
                    monitor.retry_not_ready(&action.name, event_recorded);
                }
                if !(e.is_conflict_or_gone()) {
                    tracing::warn!(controller = NAME, node = %action.name, error = %e, "updating node failed, will retry");
                }
            }
        }
    }
    tracing::info!(controller = NAME, "controller stopped");
    Ok(())
}

impl Error {
    fn is_conflict_or_gone(&self) -> bool {
        matches!(self, Error::Api(e) if is_conflict(e) || is_not_found(e))
    }
}

/// Writes one node's new conditions (status subresource) and taints, reports `NodeNotReady`
/// when it just left Ready (setting `event_recorded`), and marks its pods not ready. A
/// conflict leaves the rest to the next pass.
async fn apply(
    client: &Client,
    recorder: &Recorder,
    pods: &Store<Pod>,
    node: &Node,
    action: &NodeAction,
    now: Timestamp,
    event_recorded: &mut bool,
) -> Result<(), Error> {
    let api = Api::<Node>::all(client.clone());
    let name = node.name_any();
    let mut current = node.clone();
    if let Some(conds) = &action.conditions {
        current
            .status
            .get_or_insert_with(Default::default)
            .conditions = Some(conds.clone());
        current = api
            .replace_status(&name, &PostParams::default(), &current)
            .await?;
        tracing::info!(controller = NAME, node = %name, "node stopped posting status; conditions set Unknown");
    }
    if let Some(taints) = &action.taints {
        current.spec.get_or_insert_with(Default::default).taints = Some(taints.clone());
        api.replace(&name, &PostParams::default(), &current).await?;
    }
    if action.became_not_ready {
        let reference = node.object_ref(&());
        publish(
            recorder,
            &reference,
            EventType::Normal,
            "NodeNotReady",
            format!("Node {name} status is now: NodeNotReady"),
        )
        .await;
        *event_recorded = true;
    }
    if action.mark_pods_not_ready {
        mark_pods_not_ready(client, recorder, pods, &name, now).await?;
    }
    Ok(())
}

/// Sets the Ready condition of the node's pods False (upstream's `MarkPodsNotReady`), so
/// that endpoints stop sending them traffic.
async fn mark_pods_not_ready(
    client: &Client,
    recorder: &Recorder,
    pods: &Store<Pod>,
    node: &str,
    now: Timestamp,
) -> Result<(), Error> {
    let mut first_error = None;
    for pod in pods.state() {
        if pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) != Some(node) {
            continue;
        }
        let mut updated = pod.as_ref().clone();
        let Some(ready) = updated
            .status
            .as_mut()
            .and_then(|s| s.conditions.as_mut())
            .and_then(|cs| cs.iter_mut().find(|c| c.type_ == "Ready"))
        else {
            continue;
        };
        if ready.status == "False" {
            continue;
        }
        ready.status = "False".into();
        ready.last_transition_time = Some(Time(now));
        let api = Api::<Pod>::namespaced(client.clone(), &pod.namespace().unwrap_or_default());
        match api
            .replace_status(&pod.name_any(), &PostParams::default(), &updated)
            .await
        {
            Ok(_) => {
                publish(
                    recorder,
                    &pod.object_ref(&()),
                    EventType::Warning,
                    "NodeNotReady",
                    "Node is not ready".into(),
                )
                .await
            }
            Err(e) if is_not_found(&e) => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(()), |e| Err(e.into()))
}
