//! PodTopologySpread: spreads matching pods evenly across topology domains (the values of a
//! node label such as `topology.kubernetes.io/zone`), as upstream's `podtopologyspread`.
//!
//! - **Filter** (hard constraints, `whenUnsatisfiable: DoNotSchedule`): PreFilter counts the
//!   pods each constraint selects per domain, over every node that has all the constraints'
//!   topology keys and passes the constraint's node inclusion policies; a node passes if, for
//!   every constraint, `count(its domain) + (1 if the pod itself matches) - global minimum <=
//!   maxSkew`. The global minimum is 0 while there are fewer domains than `minDomains`. The
//!   minimum is tracked as upstream's two "critical paths", which preemption's
//!   `add_pod`/`remove_pod` update in place.
//! - **Score** (soft constraints, `ScheduleAnyway`): a node scores, per constraint, the
//!   matching pods in its domain times `ln(domains + 2)` plus `maxSkew - 1`; fewer is better, so
//!   NormalizeScore reverses the scale to 0..=100. Nodes missing a topology key score 0.
//!
//! A pod without constraints of its own gets the args' defaults: upstream's system defaults
//! (hostname and zone, ScheduleAnyway) or the configured list, selecting the pods that the
//! Services, ReplicationControllers, ReplicaSets and StatefulSets selecting the pod select.
//! Only pods in the pod's namespace that are not terminating are counted.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::TopologySpreadConstraint;
use rayon::prelude::*;

use super::topology_spread_common::{
    count_matching_pods, has_own_constraints, node_has_all_keys, pod_constraints,
    system_default_constraints, Constraint, PodTopologySpreadArgs, RequiredNodeAffinity,
    DO_NOT_SCHEDULE, LABEL_HOSTNAME, SCHEDULE_ANYWAY, SYSTEM_DEFAULTING,
};
use crate::framework::{
    ActionType, ClusterEvent, CycleState, EventResource, FilterPlugin, NodeInfo, Plugin, PodInfo,
    PreFilterPlugin, PreFilterResult, PreScorePlugin, ScorePlugin, Snapshot, Status,
    MAX_NODE_SCORE,
};
use crate::registry::{parse_args, Handle};

/// The plugin's name.
pub const NAME: &str = "PodTopologySpread";

/// Upstream's `ErrReasonConstraintsNotMatch`: placing the pod would exceed a maxSkew.
pub const ERR_REASON_CONSTRAINTS_NOT_MATCH: &str =
    "node(s) didn't match pod topology spread constraints";
/// Upstream's `ErrReasonNodeLabelNotMatch`: the node lacks a constraint's topology key.
pub const ERR_REASON_NODE_LABEL_NOT_MATCH: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";

const PRE_FILTER_KEY: &str = "PreFilterPodTopologySpread";
const PRE_SCORE_KEY: &str = "PreScorePodTopologySpread";

/// Below this many nodes a sequential pass beats rayon's hand-off.
const PARALLEL_MIN_NODES: usize = 64;

/// See the module documentation.
#[derive(Debug)]
pub struct PodTopologySpread {
    default_constraints: Vec<TopologySpreadConstraint>,
    /// `defaultingType: System`: nodes without the zone label still get hostname spreading.
    system_defaulted: bool,
}

/// The factory.
pub fn new(args: &serde_json::Value, _handle: &Handle) -> Result<Arc<dyn Plugin>, String> {
    let args: PodTopologySpreadArgs = parse_args(NAME, args)?;
    Ok(Arc::new(PodTopologySpread::from_args(args)?))
}

impl PodTopologySpread {
    /// The plugin for validated `args`.
    pub fn from_args(args: PodTopologySpreadArgs) -> Result<PodTopologySpread, String> {
        args.validate()?;
        let system_defaulted = args.defaulting_type == SYSTEM_DEFAULTING;
        Ok(PodTopologySpread {
            default_constraints: if system_defaulted {
                system_default_constraints()
            } else {
                args.default_constraints
            },
            system_defaulted,
        })
    }
}

impl Plugin for PodTopologySpread {
    fn name(&self) -> &'static str {
        NAME
    }
    /// Upstream registers Pod Add/UpdatePodLabel/UpdatePodToleration/Delete and Node
    /// Add/Delete/UpdateNodeLabel/UpdateNodeTaint, with queueing hints that let through only
    /// bound pods in the pod's namespace and the pod's own label or toleration changes; without
    /// hints those are the assigned-pod and the unscheduled-pod events below.
    fn events_to_register(&self) -> Vec<ClusterEvent> {
        vec![
            ClusterEvent::new(
                EventResource::AssignedPod,
                ActionType::ADD
                    .or(ActionType::UPDATE_POD_LABEL)
                    .or(ActionType::DELETE),
            ),
            ClusterEvent::new(
                EventResource::UnscheduledPod,
                ActionType::UPDATE_POD_LABEL.or(ActionType::UPDATE_POD_TOLERATIONS),
            ),
            ClusterEvent::new(
                EventResource::Node,
                ActionType::ADD
                    .or(ActionType::DELETE)
                    .or(ActionType::UPDATE_NODE_LABEL)
                    .or(ActionType::UPDATE_NODE_TAINT),
            ),
        ]
    }
    fn as_pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        Some(self)
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

/// The domains with the fewest matching pods, as upstream's `criticalPaths`: `[0]` always holds
/// the minimum; `[1]` is at least `[0]` but not necessarily the second minimum. Preemption only
/// moves pods on one node per copy of the state, which keeps `[0]` right.
#[derive(Clone, Debug, PartialEq)]
struct CriticalPaths([(String, i64); 2]);

impl CriticalPaths {
    fn new() -> CriticalPaths {
        let none = (String::new(), i64::from(i32::MAX));
        CriticalPaths([none.clone(), none])
    }

    fn update(&mut self, value: &str, num: i64) {
        let p = &mut self.0;
        let known = if value == p[0].0 {
            Some(0)
        } else if value == p[1].0 {
            Some(1)
        } else {
            None
        };
        match known {
            Some(i) => {
                p[i].1 = num;
                if p[0].1 > p[1].1 {
                    p.swap(0, 1);
                }
            }
            None if num < p[0].1 => p[1] = std::mem::replace(&mut p[0], (value.to_string(), num)),
            None if num < p[1].1 => p[1] = (value.to_string(), num),
            None => {}
        }
    }
}

/// What PreFilter derives from the pod once: its hard constraints, whether it matches each
/// itself, and its node affinity for the inclusion policies.
#[derive(Debug)]
struct PodSpread {
    constraints: Vec<Constraint>,
    self_match: Vec<bool>,
    affinity: RequiredNodeAffinity,
}

/// PreFilter's state: per constraint, the matching pods per domain and the critical paths.
#[derive(Clone, Debug)]
struct PreFilterState {
    spread: Arc<PodSpread>,
    critical_paths: Vec<CriticalPaths>,
    counts: Vec<HashMap<String, i64>>,
}

impl PreFilterState {
    /// The global minimum for constraint `i`: 0 while there are fewer domains than
    /// `minDomains`.
    fn min_match(&self, i: usize, min_domains: i32) -> i64 {
        if self.counts[i].len() < usize::try_from(min_domains).unwrap_or(0) {
            0
        } else {
            self.critical_paths[i].0[0].1
        }
    }

    /// Upstream's `updateWithPod`: `other` joins (`delta` 1) or leaves (-1) `node`.
    fn update_with_pod(&mut self, pod: &PodInfo, other: &PodInfo, node: &NodeInfo, delta: i64) {
        let spread = Arc::clone(&self.spread);
        if other.namespace != pod.namespace || !node_has_all_keys(&node.labels, &spread.constraints)
        {
            return;
        }
        for (i, c) in spread.constraints.iter().enumerate() {
            if !c.selector.matches(&other.labels) || !c.includes_node(pod, node, &spread.affinity) {
                continue;
            }
            let Some(value) = node.labels.get(&c.topology_key) else {
                continue;
            };
            let count = self.counts[i].entry(value.clone()).or_insert(0);
            *count += delta;
            let count = *count;
            self.critical_paths[i].update(value, count);
        }
    }
}

/// PreFilter's counts on one node: (constraint, domain, matching pods) for every constraint
/// whose inclusion policies the node passes, zero counts included (the domain still counts as
/// a domain); nothing when the node lacks a topology key.
fn hard_counts_on_node<'a>(
    n: &'a NodeInfo,
    pod: &PodInfo,
    constraints: &[Constraint],
    affinity: &RequiredNodeAffinity,
) -> Vec<(usize, &'a str, i64)> {
    if !node_has_all_keys(&n.labels, constraints) {
        return Vec::new();
    }
    constraints
        .iter()
        .enumerate()
        .filter(|(_, c)| c.includes_node(pod, n, affinity))
        .filter_map(|(i, c)| {
            let value = n.labels.get(&c.topology_key)?;
            let count = count_matching_pods(&n.pods, &c.selector, &pod.namespace);
            Some((i, value.as_str(), count))
        })
        .collect()
}

/// PreScore's counts on one node, for the domains of the feasible nodes only (hostname
/// constraints have none: Score counts them per node); zero counts left out.
fn soft_counts_on_node<'a>(
    n: &'a NodeInfo,
    pod: &PodInfo,
    constraints: &[Constraint],
    affinity: &RequiredNodeAffinity,
    domains: &[HashMap<String, i64>],
    require_all_keys: bool,
) -> Vec<(usize, &'a str, i64)> {
    if require_all_keys && !node_has_all_keys(&n.labels, constraints) {
        return Vec::new();
    }
    constraints
        .iter()
        .enumerate()
        .filter(|(_, c)| c.includes_node(pod, n, affinity))
        .filter_map(|(i, c)| {
            let value = n.labels.get(&c.topology_key).map_or("", String::as_str);
            if !domains[i].contains_key(value) {
                return None;
            }
            let count = count_matching_pods(&n.pods, &c.selector, &pod.namespace);
            (count > 0).then_some((i, value, count))
        })
        .collect()
}

fn missing_state(key: &str) -> Status {
    Status::error(format!("reading {key:?} from cycleState: not found"))
}

impl PreFilterPlugin for PodTopologySpread {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
    ) -> (Option<PreFilterResult>, Status) {
        let constraints =
            match pod_constraints(pod, DO_NOT_SCHEDULE, &self.default_constraints, snapshot) {
                Ok(c) => c,
                Err(e) => {
                    return (
                        None,
                        Status::error(format!("get constraints from pod: {e}")),
                    )
                }
            };
        if constraints.is_empty() {
            return (None, Status::skip());
        }
        let affinity = RequiredNodeAffinity::from_pod(&pod.pod);
        let found: Vec<(usize, &str, i64)> = snapshot
            .nodes()
            .par_iter()
            .with_min_len(PARALLEL_MIN_NODES)
            .flat_map_iter(|n| hard_counts_on_node(n, pod, &constraints, &affinity))
            .collect();
        let mut counts: Vec<HashMap<String, i64>> = constraints
            .iter()
            .map(|c| match c.topology_key == LABEL_HOSTNAME {
                true => HashMap::with_capacity(snapshot.len()),
                false => HashMap::new(),
            })
            .collect();
        for (i, value, count) in found {
            match counts[i].get_mut(value) {
                Some(total) => *total += count,
                None => {
                    counts[i].insert(value.to_string(), count);
                }
            }
        }
        let critical_paths = counts
            .iter()
            .map(|domains| {
                let mut paths = CriticalPaths::new();
                for (value, count) in domains {
                    paths.update(value, *count);
                }
                paths
            })
            .collect();
        let self_match = constraints
            .iter()
            .map(|c| c.selector.matches(&pod.labels))
            .collect();
        state.write(
            PRE_FILTER_KEY,
            PreFilterState {
                spread: Arc::new(PodSpread {
                    constraints,
                    self_match,
                    affinity,
                }),
                critical_paths,
                counts,
            },
        );
        (None, Status::success())
    }

    fn add_pod(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        added: &Arc<PodInfo>,
        node: &NodeInfo,
        _snapshot: &Snapshot,
    ) -> Status {
        match state.read_mut::<PreFilterState>(PRE_FILTER_KEY) {
            Some(s) => {
                s.update_with_pod(pod, added, node, 1);
                Status::success()
            }
            None => missing_state(PRE_FILTER_KEY),
        }
    }

    fn remove_pod(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        removed: &Arc<PodInfo>,
        node: &NodeInfo,
        _snapshot: &Snapshot,
    ) -> Status {
        match state.read_mut::<PreFilterState>(PRE_FILTER_KEY) {
            Some(s) => {
                s.update_with_pod(pod, removed, node, -1);
                Status::success()
            }
            None => missing_state(PRE_FILTER_KEY),
        }
    }
}

impl FilterPlugin for PodTopologySpread {
    fn filter(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(s) = state.read::<PreFilterState>(PRE_FILTER_KEY) else {
            return missing_state(PRE_FILTER_KEY);
        };
        for (i, c) in s.spread.constraints.iter().enumerate() {
            let Some(value) = node.labels.get(&c.topology_key) else {
                return Status::unresolvable(ERR_REASON_NODE_LABEL_NOT_MATCH);
            };
            let min = s.min_match(i, c.min_domains);
            let own = i64::from(s.spread.self_match[i]);
            let matching = s.counts[i].get(value.as_str()).copied().unwrap_or(0);
            if matching + own - min > i64::from(c.max_skew) {
                return Status::unschedulable(ERR_REASON_CONSTRAINTS_NOT_MATCH);
            }
        }
        Status::success()
    }
}

/// PreScore's state, shared (not copied) by clones of the cycle state as upstream's.
#[derive(Debug)]
struct PreScoreState {
    constraints: Vec<Constraint>,
    /// Nodes missing a topology key are ignored (scored 0) unless only the system defaults
    /// apply.
    require_all_keys: bool,
    /// Per feasible node, in PreScore's order: ignored.
    ignored: Vec<bool>,
    /// Per constraint (hostname ones excepted: counted per node in Score), matching pods per
    /// domain of the feasible nodes.
    counts: Vec<HashMap<String, i64>>,
    /// Per constraint, `ln(domains + 2)`: pods in small topologies weigh more.
    weights: Vec<f64>,
}

impl PreScoreState {
    fn ignores(&self, node: &NodeInfo) -> bool {
        self.require_all_keys && !node_has_all_keys(&node.labels, &self.constraints)
    }
}

impl PreScorePlugin for PodTopologySpread {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        nodes: &[&NodeInfo],
        snapshot: &Snapshot,
    ) -> Status {
        if snapshot.is_empty() {
            return Status::skip();
        }
        let constraints =
            match pod_constraints(pod, SCHEDULE_ANYWAY, &self.default_constraints, snapshot) {
                Ok(c) => c,
                Err(e) => return Status::error(format!("calculating preScoreState: {e}")),
            };
        if constraints.is_empty() {
            return Status::skip();
        }
        // only the system defaults let nodes without a zone label keep hostname spreading
        let require_all_keys = has_own_constraints(&pod.pod) || !self.system_defaulted;
        let mut ignored = vec![false; nodes.len()];
        let mut counts: Vec<HashMap<String, i64>> = vec![HashMap::new(); constraints.len()];
        for (ni, n) in nodes.iter().enumerate() {
            if require_all_keys && !node_has_all_keys(&n.labels, &constraints) {
                ignored[ni] = true;
                continue;
            }
            for (i, c) in constraints.iter().enumerate() {
                if c.topology_key == LABEL_HOSTNAME {
                    continue;
                }
                // upstream reads a missing label as "", which is then a domain of its own
                let value = n.labels.get(&c.topology_key).map_or("", String::as_str);
                if !counts[i].contains_key(value) {
                    counts[i].insert(value.to_string(), 0);
                }
            }
        }
        let scored = ignored.iter().filter(|i| !**i).count();
        let weights = constraints
            .iter()
            .zip(&counts)
            .map(|(c, domains)| {
                let size = match c.topology_key == LABEL_HOSTNAME {
                    true => scored,
                    false => domains.len(),
                };
                (size as f64 + 2.0).ln()
            })
            .collect();

        if constraints.iter().any(|c| c.topology_key != LABEL_HOSTNAME) {
            let affinity = RequiredNodeAffinity::from_pod(&pod.pod);
            let found: Vec<(usize, &str, i64)> = snapshot
                .nodes()
                .par_iter()
                .with_min_len(PARALLEL_MIN_NODES)
                .flat_map_iter(|n| {
                    soft_counts_on_node(n, pod, &constraints, &affinity, &counts, require_all_keys)
                })
                .collect();
            for (i, value, count) in found {
                if let Some(total) = counts[i].get_mut(value) {
                    *total += count;
                }
            }
        }
        state.write(
            PRE_SCORE_KEY,
            Arc::new(PreScoreState {
                constraints,
                require_all_keys,
                ignored,
                counts,
                weights,
            }),
        );
        Status::success()
    }
}

impl ScorePlugin for PodTopologySpread {
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> (i64, Status) {
        let Some(s) = state.read::<Arc<PreScoreState>>(PRE_SCORE_KEY) else {
            return (0, missing_state(PRE_SCORE_KEY));
        };
        if s.ignores(node) {
            return (0, Status::success());
        }
        let mut score = 0.0;
        for (i, c) in s.constraints.iter().enumerate() {
            let Some(value) = node.labels.get(&c.topology_key) else {
                continue;
            };
            let count = if c.topology_key == LABEL_HOSTNAME {
                count_matching_pods(&node.pods, &c.selector, &pod.namespace)
            } else {
                s.counts[i].get(value.as_str()).copied().unwrap_or(0)
            };
            // maxSkew - 1 waters down differences, making the score tolerate skew
            score += count as f64 * s.weights[i] + f64::from(c.max_skew - 1);
        }
        (score.round() as i64, Status::success())
    }

    fn normalize_scores(&self, state: &CycleState, _pod: &PodInfo, scores: &mut [i64]) -> Status {
        let Some(s) = state.read::<Arc<PreScoreState>>(PRE_SCORE_KEY) else {
            return missing_state(PRE_SCORE_KEY);
        };
        let ignored = |i: usize| s.ignored.get(i).copied().unwrap_or(false);
        let mut min = i64::MAX;
        let mut max = 0;
        for (i, v) in scores.iter().enumerate() {
            if !ignored(i) {
                min = min.min(*v);
                max = max.max(*v);
            }
        }
        for (i, v) in scores.iter_mut().enumerate() {
            *v = if ignored(i) {
                0
            } else if max == 0 {
                MAX_NODE_SCORE
            } else {
                MAX_NODE_SCORE * (max + min - *v) / max
            };
        }
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::framework::Code;
    use crate::plugins::testing::{node, pod, snapshot, with_pods};

    fn plugin(args: Value) -> PodTopologySpread {
        PodTopologySpread::from_args(parse_args(NAME, &args).unwrap()).unwrap()
    }

    /// A node with a hostname label, `zone` (unless empty) and extra labels.
    fn zone_node(name: &str, zone: &str, extra: Value) -> NodeInfo {
        let mut labels = json!({"kubernetes.io/hostname": name});
        if !zone.is_empty() {
            labels["zone"] = json!(zone);
            labels["topology.kubernetes.io/zone"] = json!(zone);
        }
        for (k, v) in extra.as_object().into_iter().flatten() {
            labels[k] = v.clone();
        }
        node(json!({"metadata": {"name": name, "labels": labels}}))
    }

    fn web(name: &str) -> Arc<PodInfo> {
        pod(json!({"metadata": {"name": name, "labels": {"app": "web"}}}))
    }

    fn spread(key: &str, skew: i32, when: &str, extra: Value) -> Value {
        let mut c = json!({"maxSkew": skew, "topologyKey": key, "whenUnsatisfiable": when,
            "labelSelector": {"matchLabels": {"app": "web"}}});
        for (k, v) in extra.as_object().into_iter().flatten() {
            c[k] = v.clone();
        }
        c
    }

    /// Zones a (n1: 2 web pods, n2: only a terminating and an other-namespace one), b (n3: 1),
    /// c (n4: none, no `disk` label, tainted) and n5 without a zone.
    fn cluster() -> Snapshot {
        let terminating = pod(json!({"metadata": {"name": "t", "labels": {"app": "web"},
            "deletionTimestamp": "2025-01-01T00:00:00Z"}}));
        let elsewhere =
            pod(json!({"metadata": {"name": "e", "namespace": "other", "labels": {"app": "web"}}}));
        let ssd = json!({"disk": "ssd"});
        let n4 = node(
            json!({"metadata": {"name": "n4", "labels": {"kubernetes.io/hostname": "n4",
            "zone": "c", "topology.kubernetes.io/zone": "c"}},
            "spec": {"taints": [{"key": "dedicated", "effect": "NoSchedule"}]}}),
        );
        snapshot(vec![
            with_pods(zone_node("n1", "a", ssd.clone()), &[web("w1"), web("w2")]),
            with_pods(zone_node("n2", "a", ssd.clone()), &[terminating, elsewhere]),
            with_pods(zone_node("n3", "b", ssd.clone()), &[web("w3")]),
            n4,
            zone_node("n5", "", ssd),
        ])
    }

    /// Each node's filter verdict as one letter: Success, Unschedulable, unresolvable (X).
    fn verdicts(
        pl: &PodTopologySpread,
        state: &CycleState,
        p: &PodInfo,
        snap: &Snapshot,
    ) -> String {
        let letter = |s: Status| match s.code() {
            Code::Success => 'S',
            Code::Unschedulable => 'U',
            Code::UnschedulableAndUnresolvable => 'X',
            _ => '?',
        };
        snap.nodes()
            .iter()
            .map(|n| letter(pl.filter(state, p, n)))
            .collect()
    }

    /// PreFilter's code and, if it succeeded, the verdicts.
    fn filter_all(pl: &PodTopologySpread, p: &PodInfo, snap: &Snapshot) -> (Code, String) {
        let mut state = CycleState::new();
        let (_, s) = pl.pre_filter(&mut state, p, snap);
        match s.is_success() {
            true => (s.code(), verdicts(pl, &state, p, snap)),
            false => (s.code(), String::new()),
        }
    }

    /// A pod labelled `labels` with one hard zone constraint (maxSkew 1, selecting app=web)
    /// changed by `constraint`, and `spec` merged into its spec.
    fn hard_pod(labels: Value, constraint: Value, spec: Value) -> Arc<PodInfo> {
        let c = spread("zone", 1, DO_NOT_SCHEDULE, constraint);
        let mut p = json!({"metadata": {"name": "in", "labels": labels},
            "spec": {"topologySpreadConstraints": [c]}});
        for (k, v) in spec.as_object().into_iter().flatten() {
            p["spec"][k] = v.clone();
        }
        pod(p)
    }

    #[test]
    fn hard_constraints_bound_the_skew_per_domain() {
        let me = || json!({"app": "web"});
        let ssd = || json!({"nodeSelector": {"disk": "ssd"}});
        let none = || json!({});
        let tolerate = json!({"tolerations": [{"key": "dedicated", "operator": "Exists"}]});
        let taints_only = json!({"nodeTaintsPolicy": "Honor", "nodeAffinityPolicy": "Ignore"});
        // n1..n5: a=2, a, b=1, c=0, no zone; excluding c makes the minimum b's 1
        #[rustfmt::skip]
        let cases = [
            ("skew 1: only the empty zone", me(), none(), none(), "UUUSX"),
            ("skew 2", me(), json!({"maxSkew": 2}), none(), "UUSSX"),
            ("pod not matching itself", none(), none(), none(), "UUSSX"),
            ("affinity honoured drops zone c", me(), none(), ssd(), "UUSSX"),
            ("affinity ignored keeps zone c", me(), json!({"nodeAffinityPolicy": "Ignore"}), ssd(), "UUUSX"),
            ("fewer domains than minDomains: minimum 0", me(), json!({"minDomains": 3}), ssd(), "UUUSX"),
            ("minDomains met", me(), json!({"minDomains": 2}), ssd(), "UUSSX"),
            ("taints honoured drop zone c", me(), taints_only, none(), "UUSSX"),
            ("tolerated taints keep zone c", me(), json!({"nodeTaintsPolicy": "Honor"}), tolerate, "UUUSX"),
            ("nil selector counts nothing", me(), json!({"labelSelector": null}), none(), "SSSSX"),
            ("matchLabelKeys narrow to the pod's values",
                json!({"app": "web", "rev": "2"}), json!({"matchLabelKeys": ["rev"]}), none(), "SSSSX"),
        ];
        let pl = plugin(json!(null));
        let snap = cluster();
        for (name, labels, constraint, spec, want) in cases {
            let p = hard_pod(labels, constraint, spec);
            assert_eq!(
                filter_all(&pl, &p, &snap),
                (Code::Success, want.into()),
                "{name}"
            );
        }
        let p = hard_pod(me(), none(), none());
        let mut state = CycleState::new();
        pl.pre_filter(&mut state, &p, &snap);
        let messages: Vec<String> = snap
            .nodes()
            .iter()
            .map(|n| pl.filter(&state, &p, n).message())
            .collect();
        assert_eq!(messages[0], ERR_REASON_CONSTRAINTS_NOT_MATCH);
        assert_eq!(messages[4], ERR_REASON_NODE_LABEL_NOT_MATCH);
    }

    #[test]
    fn pre_filter_skips_without_hard_constraints() {
        let soft = pod(json!({"metadata": {"labels": {"app": "web"}}, "spec": {
            "topologySpreadConstraints": [spread("zone", 1, SCHEDULE_ANYWAY, json!({}))]}}));
        let plain = web("in");
        let list = json!({"defaultingType": "List", "defaultConstraints": [
            {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": DO_NOT_SCHEDULE}]});
        let mut snap = cluster();
        let cases = [
            ("soft only", plugin(json!(null)), &soft),
            ("system defaults are soft", plugin(json!(null)), &plain),
            (
                "list default, nothing selects the pod",
                plugin(list.clone()),
                &plain,
            ),
        ];
        for (name, pl, p) in cases {
            assert_eq!(filter_all(&pl, p, &snap).0, Code::Skip, "{name}");
        }
        // a Service selecting the pod gives the listed default its selector
        snap.services = vec![Arc::new(
            serde_json::from_value(json!({"metadata": {"name": "s", "namespace": "default"},
                "spec": {"selector": {"app": "web"}}}))
            .unwrap(),
        )];
        assert_eq!(
            filter_all(&plugin(list), &plain, &snap),
            (Code::Success, "UUUSX".into())
        );
    }

    #[test]
    fn add_and_remove_pod_move_the_counts_and_the_minimum() {
        let pl = plugin(json!(null));
        let snap = cluster();
        let p = hard_pod(json!({"app": "web"}), json!({}), json!({}));
        let mut state = CycleState::new();
        pl.pre_filter(&mut state, &p, &snap);
        let nodes = snap.nodes();
        let other_ns =
            pod(json!({"metadata": {"name": "o", "namespace": "other", "labels": {"app": "web"}}}));
        let x1 = web("x1");
        #[rustfmt::skip]
        let steps = [
            ("other namespace: no change", &other_ns, 3, true, "UUUSX"),
            ("c gets one: minimum 1", &x1, 3, true, "UUSSX"),
            ("a loses one", &nodes[0].pods[0], 0, false, "SSSSX"),
            ("b loses its pod: minimum 0", &nodes[2].pods[0], 2, false, "UUSUX"),
            ("c loses its pod", &x1, 3, false, "UUSSX"),
        ];
        for (name, other, on, add, want) in steps {
            let s = match add {
                true => pl.add_pod(&mut state, &p, other, &nodes[on], &snap),
                false => pl.remove_pod(&mut state, &p, other, &nodes[on], &snap),
            };
            assert!(s.is_success(), "{name}");
            assert_eq!(verdicts(&pl, &state, &p, &snap), want, "{name}");
        }
    }

    fn scores(pl: &PodTopologySpread, p: &PodInfo, snap: &Snapshot) -> Option<Vec<i64>> {
        let mut state = CycleState::new();
        let nodes: Vec<&NodeInfo> = snap.nodes().iter().map(|n| n.as_ref()).collect();
        if pl.pre_score(&mut state, p, &nodes, snap).is_skip() {
            return None;
        }
        let mut out: Vec<i64> = nodes.iter().map(|n| pl.score(&state, p, n).0).collect();
        assert!(pl.normalize_scores(&state, p, &mut out).is_success());
        Some(out)
    }

    #[test]
    fn soft_constraints_prefer_the_emptier_domains() {
        // zone a (n1: 2, n2: 1), b (n3: 0), n4 without a zone: ignored, scored 0
        let snap = snapshot(vec![
            with_pods(zone_node("n1", "a", json!({})), &[web("w1"), web("w2")]),
            with_pods(zone_node("n2", "a", json!({})), &[web("w3")]),
            zone_node("n3", "b", json!({})),
            zone_node("n4", "", json!({})),
        ]);
        let soft = |constraints: Value| {
            pod(json!({"metadata": {"name": "in", "labels": {"app": "web"}},
                "spec": {"topologySpreadConstraints": constraints}}))
        };
        let zone = spread("zone", 1, SCHEDULE_ANYWAY, json!({}));
        let host = spread(LABEL_HOSTNAME, 1, SCHEDULE_ANYWAY, json!({}));
        #[rustfmt::skip]
        let cases = [
            // raw: 3·ln4 = 4.16 → 4 for zone a, 0 for b
            ("zone", soft(json!([zone])), Some(vec![0, 0, 100, 0])),
            // raw: n1 3·ln4 + 2·ln5 = 7.38 → 7, n2 4.16 + 1.61 → 6, n3 0
            ("zone and hostname", soft(json!([zone, host])), Some(vec![0, 14, 100, 0])),
            ("hard only", soft(json!([spread("zone", 1, DO_NOT_SCHEDULE, json!({}))])), None),
        ];
        let pl = plugin(json!(null));
        for (name, p, want) in cases {
            assert_eq!(scores(&pl, &p, &snap), want, "{name}");
        }
    }

    #[test]
    fn system_defaults_spread_the_pods_of_the_owning_workload() {
        // n1 (zone a): 2 web pods, n2 (zone a), n3 (zone b): 1 (and one in another namespace),
        // n4 without a zone: 1; nodes without a zone still get hostname spreading
        let elsewhere =
            pod(json!({"metadata": {"name": "e", "namespace": "other", "labels": {"app": "web"}}}));
        let mut snap = snapshot(vec![
            with_pods(zone_node("n1", "a", json!({})), &[web("w1"), web("w2")]),
            zone_node("n2", "a", json!({})),
            with_pods(zone_node("n3", "b", json!({})), &[web("w3"), elsewhere]),
            with_pods(zone_node("n4", "", json!({})), &[web("w4")]),
        ]);
        let owned = pod(json!({"metadata": {"name": "in", "labels": {"app": "web"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
                "uid": "u", "controller": true}]}}));
        let pl = plugin(json!(null));
        assert_eq!(
            scores(&pl, &owned, &snap),
            None,
            "no workload selects the pod"
        );
        snap.replica_sets = vec![Arc::new(
            serde_json::from_value(json!({"metadata": {"name": "rs", "namespace": "default"},
                "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {}}}))
            .unwrap(),
        )];
        // hostname weight ln6, zone weight ln5 (domains a, b and the zoneless ""):
        // n1 2·ln6+2 + 2·ln5+4 = 12.8 → 13, n2 2 + 7.2 → 9, n3 3.8 + 5.6 → 9, n4 3.8 → 4
        assert_eq!(scores(&pl, &owned, &snap), Some(vec![30, 61, 61, 100]));
        let listed = plugin(json!({"defaultingType": "List", "defaultConstraints": [
            {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": SCHEDULE_ANYWAY}]}));
        // listed defaults require the key: n4 is ignored; a has 2·ln4 → 3, b ln4 → 1
        assert_eq!(scores(&listed, &owned, &snap), Some(vec![33, 33, 100, 0]));
    }

    #[test]
    fn critical_paths_keep_the_minimum_first() {
        let mut p = CriticalPaths::new();
        for (v, n) in [("a", 3), ("b", 1), ("c", 2), ("b", 4)] {
            p.update(v, n);
        }
        assert_eq!(p.0[0], ("c".to_string(), 2));
        assert_eq!(p.0[1], ("b".to_string(), 4));
    }
}
