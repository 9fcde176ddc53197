//! The pure core of node health monitoring (upstream's `monitorNodeHealth`): when each node
//! was last heard of, which conditions to set Unknown, the state of each zone, and which
//! nodes get their NoExecute taint now under the zone's eviction rate.
//!
//! A node is heard of when its Ready condition's heartbeat changes or its Lease in
//! `kube-node-lease` is renewed; the controller stamps that with its own clock (`now`), so
//! skew between kubelet and controller does not matter, as upstream. A node not heard of for
//! the grace period (the startup grace period while it never posted a Ready condition) gets
//! Ready, MemoryPressure, DiskPressure and PIDPressure set to Unknown.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, NodeCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::taints::{self, NoExecute};

/// The controller's settings, upstream's flags and their defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeLifecycleConfig {
    /// How often every node is checked (`--node-monitor-period`, 5 s).
    pub node_monitor_period: Duration,
    /// How long a node may go unheard before it is Unknown (`--node-monitor-grace-period`, 40 s).
    pub node_monitor_grace_period: Duration,
    /// The same for a node that never posted a Ready condition (`--node-startup-grace-period`, 60 s).
    pub node_startup_grace_period: Duration,
    /// Nodes tainted NoExecute per second in a healthy zone (`--node-eviction-rate`, 0.1).
    pub node_eviction_rate: f64,
    /// The same in a partially disrupted zone (`--secondary-node-eviction-rate`, 0.01).
    pub secondary_node_eviction_rate: f64,
    /// Zones of at most this many nodes stop tainting when partially disrupted
    /// (`--large-cluster-size-threshold`, 50).
    pub large_cluster_size_threshold: usize,
    /// The share of not-ready nodes (more than 2) that makes a zone partially disrupted
    /// (`--unhealthy-zone-threshold`, 0.55).
    pub unhealthy_zone_threshold: f64,
}

impl Default for NodeLifecycleConfig {
    fn default() -> Self {
        NodeLifecycleConfig {
            node_monitor_period: Duration::from_secs(5),
            node_monitor_grace_period: Duration::from_secs(40),
            node_startup_grace_period: Duration::from_secs(60),
            node_eviction_rate: 0.1,
            secondary_node_eviction_rate: 0.01,
            large_cluster_size_threshold: 50,
            unhealthy_zone_threshold: 0.55,
        }
    }
}

pub const NODE_STATUS_UNKNOWN: &str = "NodeStatusUnknown";
pub const NODE_STATUS_NEVER_UPDATED: &str = "NodeStatusNeverUpdated";
pub const STOPPED_POSTING: &str = "Kubelet stopped posting node status.";
pub const NEVER_POSTED: &str = "Kubelet never posted node status.";

/// The conditions set Unknown when the kubelet goes silent.
const SILENCED: &[&str] = &["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

/// What the controller remembers of a node between passes.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeHealth {
    /// When the node was last heard of, on the controller's clock.
    pub probe: Timestamp,
    /// Whether the node had posted a Ready condition, and its heartbeat then.
    pub ready_seen: bool,
    pub heartbeat: Option<Timestamp>,
    /// The lease's renewTime last seen.
    pub lease_renew: Option<Timestamp>,
    /// The Ready status after the last pass.
    pub ready: Option<String>,
}

fn condition<'a>(conds: &'a [NodeCondition], type_: &str) -> Option<&'a NodeCondition> {
    conds.iter().find(|c| c.type_ == type_)
}

/// The node's health after this observation and, when its Ready condition must change to
/// Unknown, the node's conditions to write.
pub fn observe(
    prev: Option<&NodeHealth>,
    node: &Node,
    lease_renew: Option<Timestamp>,
    now: Timestamp,
    cfg: &NodeLifecycleConfig,
) -> (NodeHealth, Option<Vec<NodeCondition>>) {
    let conds: &[NodeCondition] = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default();
    let created = node
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0)
        .unwrap_or(now);
    let ready = condition(conds, "Ready");
    let heartbeat = ready
        .and_then(|c| c.last_heartbeat_time.as_ref())
        .map(|t| t.0);
    let grace = if ready.is_some() {
        cfg.node_monitor_grace_period
    } else {
        cfg.node_startup_grace_period
    };
    let mut h = match prev {
        // A node never reported on is given its grace from creation; one that did, from now.
        None => NodeHealth {
            probe: if ready.is_some() { now } else { created },
            ready_seen: ready.is_some(),
            heartbeat,
            lease_renew: None,
            ready: None,
        },
        Some(p) => {
            let mut h = p.clone();
            if p.ready_seen != ready.is_some() || (ready.is_some() && p.heartbeat != heartbeat) {
                h.probe = now;
            }
            h.ready_seen = ready.is_some();
            h.heartbeat = heartbeat;
            h
        }
    };
    if let Some(renew) = lease_renew {
        if h.lease_renew.is_none_or(|seen| seen < renew) {
            h.lease_renew = Some(renew);
            h.probe = now;
        }
    }
    let mut update = None;
    if now > h.probe.saturating_add(grace).unwrap_or(now) {
        let mut new = conds.to_vec();
        for type_ in SILENCED {
            match new.iter_mut().find(|c| c.type_ == *type_) {
                None => new.push(NodeCondition {
                    type_: type_.to_string(),
                    status: "Unknown".into(),
                    reason: Some(NODE_STATUS_NEVER_UPDATED.into()),
                    message: Some(NEVER_POSTED.into()),
                    last_heartbeat_time: Some(Time(created)),
                    last_transition_time: Some(Time(now)),
                }),
                Some(c) if c.status != "Unknown" => {
                    c.status = "Unknown".into();
                    c.reason = Some(NODE_STATUS_UNKNOWN.into());
                    c.message = Some(STOPPED_POSTING.into());
                    c.last_transition_time = Some(Time(now));
                }
                Some(_) => {}
            }
        }
        // Upstream writes only when the Ready condition changes.
        if condition(&new, "Ready") != ready {
            update = Some(new);
        }
    }
    (h, update)
}

/// A zone's health (upstream's `ZoneState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneState {
    Normal,
    PartialDisruption,
    FullDisruption,
}

/// The zone's state from its nodes' Ready statuses (anything but True counts as not ready).
pub fn zone_state(ready: &[Option<&str>], unhealthy_threshold: f64) -> ZoneState {
    let not_ready = ready.iter().filter(|r| **r != Some("True")).count();
    let ready_n = ready.len() - not_ready;
    if ready_n == 0 && not_ready > 0 {
        ZoneState::FullDisruption
    } else if not_ready > 2 && not_ready as f64 / ready.len() as f64 >= unhealthy_threshold {
        ZoneState::PartialDisruption
    } else {
        ZoneState::Normal
    }
}

/// Nodes tainted NoExecute per second in a zone of `size` nodes in `state`; zero while every
/// zone is fully disrupted (the trouble is then the control plane's, not the nodes').
pub fn zone_rate(
    state: ZoneState,
    size: usize,
    all_fully_disrupted: bool,
    cfg: &NodeLifecycleConfig,
) -> f64 {
    if all_fully_disrupted {
        return 0.0;
    }
    match state {
        ZoneState::Normal | ZoneState::FullDisruption => cfg.node_eviction_rate,
        ZoneState::PartialDisruption if size > cfg.large_cluster_size_threshold => {
            cfg.secondary_node_eviction_rate
        }
        ZoneState::PartialDisruption => 0.0,
    }
}

/// The zone a node is in: upstream's key of region and zone labels (GA or beta).
pub fn zone_key(node: &Node) -> String {
    let labels = node.metadata.labels.as_ref();
    let get = |ga: &str, beta: &str| {
        labels
            .and_then(|l| l.get(ga).or_else(|| l.get(beta)))
            .cloned()
            .unwrap_or_default()
    };
    let region = get(
        "topology.kubernetes.io/region",
        "failure-domain.beta.kubernetes.io/region",
    );
    let zone = get(
        "topology.kubernetes.io/zone",
        "failure-domain.beta.kubernetes.io/zone",
    );
    if region.is_empty() && zone.is_empty() {
        String::new()
    } else {
        format!("{region}:\x00:{zone}")
    }
}

/// A token bucket of burst 1, as upstream's eviction rate limiter.
#[derive(Debug, Clone)]
struct Bucket {
    tokens: f64,
    last: Timestamp,
}

impl Bucket {
    fn take(&mut self, rate: f64, now: Timestamp) -> bool {
        let elapsed = now.duration_since(self.last).as_secs_f64().max(0.0);
        self.last = now;
        self.tokens = (self.tokens + elapsed * rate).min(1.0);
        if rate > 0.0 && self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What one pass does to one node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeAction {
    pub name: String,
    /// The node's conditions to write, with the silenced ones Unknown.
    pub conditions: Option<Vec<NodeCondition>>,
    /// The node's taints to write.
    pub taints: Option<Vec<k8s_openapi::api::core::v1::Taint>>,
    /// Ready just left True: report `NodeNotReady` (and mark the pods, below).
    pub became_not_ready: bool,
    /// Mark the node's pods not ready: Ready just left True, or an earlier attempt failed
    /// ([`Monitor::retry_not_ready`]) and Ready is still not True.
    pub mark_pods_not_ready: bool,
}

/// The monitor's memory across passes: per-node health, tainting queues and rate limiters
/// per zone, and whether every zone is down.
#[derive(Debug, Default)]
pub struct Monitor {
    health: HashMap<String, NodeHealth>,
    queues: BTreeMap<String, VecDeque<String>>,
    buckets: BTreeMap<String, Bucket>,
    all_disrupted: bool,
    /// Nodes whose pods are to be marked not ready again (upstream's `nodesToRetry`), and
    /// whether their `NodeNotReady` event was recorded already.
    retry: HashMap<String, bool>,
}

impl Monitor {
    /// Whether every zone was fully disrupted at the last pass.
    pub fn all_disrupted(&self) -> bool {
        self.all_disrupted
    }

    /// Asks the next pass to mark `name`'s pods not ready again, while its Ready is still not
    /// True: writing its status or its pods failed after a pass found it leaving Ready
    /// (upstream's `nodesToRetry`). Unless `event_recorded`, the next pass also reports
    /// `NodeNotReady`, as the transition it then repeats.
    pub fn retry_not_ready(&mut self, name: &str, event_recorded: bool) {
        let recorded = self.retry.entry(name.to_string()).or_insert(true);
        *recorded &= event_recorded;
    }

    /// One pass over every node: `lease_renew` gives a node's lease renewTime.
    pub fn pass(
        &mut self,
        nodes: &[&Node],
        lease_renew: impl Fn(&str) -> Option<Timestamp>,
        now: Timestamp,
        cfg: &NodeLifecycleConfig,
    ) -> Vec<NodeAction> {
        let names: Vec<String> = nodes
            .iter()
            .map(|n| n.metadata.name.clone().unwrap_or_default())
            .collect();
        let present: HashSet<&str> = names.iter().map(String::as_str).collect();
        self.health.retain(|k, _| present.contains(k.as_str()));
        self.retry.retain(|k, _| present.contains(k.as_str()));
        for q in self.queues.values_mut() {
            q.retain(|n| present.contains(n.as_str()));
        }

        // Health, and each node's conditions and Ready status after this pass.
        let mut seen = Vec::with_capacity(nodes.len());
        for (node, name) in nodes.iter().zip(&names) {
            let (mut h, update) = observe(self.health.get(name), node, lease_renew(name), now, cfg);
            let conds: Vec<NodeCondition> = update.clone().unwrap_or_else(|| {
                node.status
                    .as_ref()
                    .and_then(|s| s.conditions.clone())
                    .unwrap_or_default()
            });
            let ready = condition(&conds, "Ready").map(|c| c.status.clone());
            let not_ready = ready.as_deref() != Some("True");
            // A retry whose event was not recorded repeats the whole transition.
            let retry = self.retry.remove(name);
            let became = not_ready && (h.ready.as_deref() == Some("True") || retry == Some(false));
            let mark_pods = became || (not_ready && retry.is_some());
            h.ready = ready.clone();
            self.health.insert(name.clone(), h);
            seen.push((zone_key(node), conds, ready, update, (became, mark_pods)));
        }

        // Zone states, and the way out of "every zone is down".
        let mut zones: BTreeMap<&str, Vec<Option<&str>>> = BTreeMap::new();
        for (zone, _, ready, _, _) in &seen {
            zones.entry(zone).or_default().push(ready.as_deref());
        }
        let states: BTreeMap<&str, (ZoneState, usize)> = zones
            .iter()
            .map(|(z, r)| (*z, (zone_state(r, cfg.unhealthy_zone_threshold), r.len())))
            .collect();
        let all = !states.is_empty()
            && states
                .values()
                .all(|(s, _)| *s == ZoneState::FullDisruption);
        if self.all_disrupted && !all {
            // Every node gets a fresh grace period, as upstream on leaving that mode.
            for h in self.health.values_mut() {
                h.probe = now;
            }
        }
        self.all_disrupted = all;

        // NoExecute: remove, swap at once, or queue an add behind the zone's rate limiter.
        let mut decisions = Vec::with_capacity(nodes.len());
        for (node, (zone, _, ready, _, _)) in nodes.iter().zip(&seen) {
            let name = node.metadata.name.clone().unwrap_or_default();
            let existing = node
                .spec
                .as_ref()
                .and_then(|s| s.taints.as_deref())
                .unwrap_or_default();
            let want = taints::no_execute_key(ready.as_deref());
            let queue = self.queues.entry(zone.clone()).or_default();
            let decision = match (all, want, taints::current_no_execute(existing)) {
                (true, _, _) | (false, None, _) => {
                    queue.retain(|n| *n != name);
                    NoExecute::Remove
                }
                (false, Some(key), Some(_)) => {
                    queue.retain(|n| *n != name);
                    NoExecute::Set(key)
                }
                (false, Some(_), None) => {
                    if !queue.contains(&name) {
                        queue.push_back(name.clone());
                    }
                    NoExecute::Leave
                }
            };
            decisions.push(decision);
        }
        let mut granted: HashSet<String> = HashSet::new();
        for (zone, queue) in self.queues.iter_mut() {
            let (state, size) = states
                .get(zone.as_str())
                .copied()
                .unwrap_or((ZoneState::Normal, 0));
            let rate = zone_rate(state, size, all, cfg);
            let bucket = self.buckets.entry(zone.clone()).or_insert(Bucket {
                tokens: 1.0,
                last: now,
            });
            while !queue.is_empty() && bucket.take(rate, now) {
                granted.extend(queue.pop_front());
            }
        }
        self.queues.retain(|_, q| !q.is_empty());

        let mut actions = Vec::new();
        for (((node, name), (_, conds, ready, update, (became, mark_pods))), decision) in
            nodes.iter().zip(&names).zip(seen).zip(decisions)
        {
            let decision = match decision {
                NoExecute::Leave if granted.contains(name) => {
                    taints::no_execute_key(ready.as_deref())
                        .map_or(NoExecute::Leave, NoExecute::Set)
                }
                d => d,
            };
            let spec = node.spec.as_ref();
            let existing = spec.and_then(|s| s.taints.as_deref()).unwrap_or_default();
            let unschedulable = spec.and_then(|s| s.unschedulable).unwrap_or(false);
            let want = taints::reconcile_taints(existing, &conds, unschedulable, decision, now);
            let taints = (want.as_slice() != existing).then_some(want);
            if update.is_some() || taints.is_some() || mark_pods {
                actions.push(NodeAction {
                    name: name.clone(),
                    conditions: update,
                    taints,
                    became_not_ready: became,
                    mark_pods_not_ready: mark_pods,
                });
            }
        }
        actions
    }
}

#[cfg(test)]
#[path = "monitor_tests.rs"]
mod tests;
