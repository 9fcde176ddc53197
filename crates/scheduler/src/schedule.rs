//! One scheduling cycle, pure: given a pod, its profile and the snapshot, find the node, or
//! say why none fits (and what preemption proposes). Upstream's `schedulePod`,
//! `findNodesThatFitPod`, `prioritizeNodes` and `selectHost`, and `FitError`'s message.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use rand::Rng;
use rayon::prelude::*;

use crate::framework::{
    Code, CycleState, Framework, NodeInfo, NodeToStatus, Nominated, PodInfo, PostFilterContext,
    PostFilterResult, Snapshot, Status,
};

/// Fewer nodes than this are all evaluated.
pub const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
/// The adaptive percentage never goes below this.
pub const MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND: i64 = 5;
/// Upstream's message when the cluster has no nodes.
pub const NO_NODES_AVAILABLE: &str = "no nodes available to schedule pods";

/// Upstream's `numFeasibleNodesToFind`: every node below 100; otherwise the configured
/// percentage, or the adaptive default `50 - nodes/125` (at least 5 %), and at least 100.
pub fn num_feasible_nodes_to_find(percentage: i32, num_all_nodes: usize) -> usize {
    if num_all_nodes < MIN_FEASIBLE_NODES_TO_FIND {
        return num_all_nodes;
    }
    let mut pct = percentage as i64;
    if pct <= 0 {
        pct = (50 - num_all_nodes as i64 / 125).max(MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND);
    }
    let n = (num_all_nodes as i64 * pct / 100) as usize;
    n.max(MIN_FEASIBLE_NODES_TO_FIND)
}

/// Why no node fits.
#[derive(Clone, Debug, Default)]
pub struct Diagnosis {
    /// Every node's verdict.
    pub node_to_status: NodeToStatus,
    /// The plugins that rejected the pod somewhere.
    pub unschedulable_plugins: HashSet<&'static str>,
    /// A PreFilter plugin's rejection, which stands for every node.
    pub pre_filter_msg: String,
    /// What PostFilter (preemption) said.
    pub post_filter_msg: String,
}

/// No node fits: upstream's `FitError`.
#[derive(Clone, Debug)]
pub struct FitError {
    /// Nodes in the cluster.
    pub num_all_nodes: usize,
    /// Why.
    pub diagnosis: Diagnosis,
}

impl std::fmt::Display for FitError {
    /// "0/5 nodes are available: 3 Insufficient cpu, 2 node(s) had untolerated taint {a: b}."
    /// with PreFilter's and PostFilter's messages, as upstream.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.num_all_nodes == 0 {
            return f.write_str(NO_NODES_AVAILABLE);
        }
        write!(f, "0/{} nodes are available:", self.num_all_nodes)?;
        let d = &self.diagnosis;
        if !d.pre_filter_msg.is_empty() {
            write!(f, " {}.", d.pre_filter_msg)?;
        } else {
            let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
            for (_, s) in d.node_to_status.iter() {
                for r in s.reasons() {
                    *reasons.entry(r).or_default() += 1;
                }
            }
            if d.node_to_status.len() < self.num_all_nodes {
                if let Some(absent) = d.node_to_status.absent() {
                    for r in absent.reasons() {
                        *reasons.entry(r).or_default() +=
                            self.num_all_nodes - d.node_to_status.len();
                    }
                }
            }
            let mut parts: Vec<String> = reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
            parts.sort();
            if !parts.is_empty() {
                write!(f, " {}.", parts.join(", "))?;
            }
        }
        if !d.post_filter_msg.is_empty() {
            write!(f, " {}.", d.post_filter_msg)?;
        }
        Ok(())
    }
}

/// How a cycle ended.
#[derive(Debug)]
pub enum Outcome {
    /// The pod goes to `node`.
    Scheduled {
        /// The chosen node.
        node: String,
        /// Nodes evaluated.
        evaluated: usize,
        /// Nodes found feasible.
        feasible: usize,
    },
    /// No node fits now.
    Unschedulable {
        /// Why, for the event and the pod condition.
        fit: Box<FitError>,
        /// Preemption's proposal: a node and victims, or an empty node to clear the pod's
        /// nomination.
        nomination: Option<PostFilterResult>,
    },
    /// An internal error: retried with backoff.
    Error(Status),
}

/// Per-scheduler state that persists across cycles.
#[derive(Debug, Default)]
pub struct CycleCursor {
    /// Where the next cycle starts iterating nodes, so that all nodes get their turn.
    pub next_start_node: usize,
}

/// Runs one scheduling cycle for `pod` with profile `fw`.
pub fn schedule_pod(
    fw: &Framework,
    state: &mut CycleState,
    pod: &PodInfo,
    snapshot: &Snapshot,
    nominated: &Nominated,
    cursor: &mut CycleCursor,
    global_percentage: i32,
) -> Outcome {
    if snapshot.is_empty() {
        // upstream treats an empty cluster as UnschedulableAndUnresolvable: any event retries
        return Outcome::Unschedulable {
            fit: Box::new(FitError {
                num_all_nodes: 0,
                diagnosis: Diagnosis::default(),
            }),
            nomination: None,
        };
    }
    let (feasible, diagnosis, evaluated) = match find_nodes_that_fit(
        fw,
        state,
        pod,
        snapshot,
        nominated,
        cursor,
        global_percentage,
    ) {
        Ok(r) => r,
        Err(s) => return Outcome::Error(s),
    };
    if feasible.is_empty() {
        let mut fit = FitError {
            num_all_nodes: snapshot.len(),
            diagnosis,
        };
        let ctx = PostFilterContext {
            snapshot,
            framework: fw,
            nominated,
        };
        let (result, status) = fw.run_post_filter(state, pod, &fit.diagnosis.node_to_status, &ctx);
        if status.code() == Code::Error {
            return Outcome::Error(status);
        }
        fit.diagnosis.post_filter_msg = status.message();
        return Outcome::Unschedulable {
            fit: Box::new(fit),
            nomination: result,
        };
    }
    if feasible.len() == 1 {
        return Outcome::Scheduled {
            node: feasible[0].name.clone(),
            evaluated,
            feasible: 1,
        };
    }
    let s = fw.run_pre_score(state, pod, &feasible, snapshot);
    if !s.is_success() {
        return Outcome::Error(s);
    }
    let scores = match fw.run_score(state, pod, &feasible) {
        Ok(s) => s,
        Err(s) => return Outcome::Error(s),
    };
    let node = select_host(&feasible, &scores);
    Outcome::Scheduled {
        node,
        evaluated,
        feasible: feasible.len(),
    }
}

/// The highest-scoring node, ties broken at random (reservoir sampling) as upstream.
fn select_host(nodes: &[&NodeInfo], scores: &[i64]) -> String {
    let mut rng = rand::rng();
    let mut best = 0usize;
    let mut ties = 0u32;
    for (i, s) in scores.iter().enumerate() {
        if *s > scores[best] {
            best = i;
            ties = 1;
        } else if *s == scores[best] {
            ties += 1;
            if rng.random_range(0..ties) == 0 {
                best = i;
            }
        }
    }
    nodes[best].name.clone()
}

type Found<'a> = (Vec<&'a NodeInfo>, Diagnosis, usize);

/// PreFilter, then Filter over the nodes (the nominated node first), in parallel, stopping
/// once enough feasible nodes are found.
fn find_nodes_that_fit<'a>(
    fw: &Framework,
    state: &mut CycleState,
    pod: &PodInfo,
    snapshot: &'a Snapshot,
    nominated: &Nominated,
    cursor: &mut CycleCursor,
    global_percentage: i32,
) -> Result<Found<'a>, Status> {
    let mut diagnosis = Diagnosis::default();
    let (pre, narrowed_by, s) = fw.run_pre_filter(state, pod, snapshot);
    if !s.is_success() {
        if !s.is_rejected() {
            return Err(s);
        }
        if let Some(p) = s.plugin() {
            diagnosis.unschedulable_plugins.insert(p);
        }
        diagnosis.pre_filter_msg = s.message();
        diagnosis.node_to_status.set_absent(s);
        return Ok((Vec::new(), diagnosis, 0));
    }

    // a node nominated by an earlier preemption is tried first
    let nominated_node = pod
        .pod
        .status
        .as_ref()
        .and_then(|s| s.nominated_node_name.as_deref())
        .unwrap_or("");
    if !nominated_node.is_empty() {
        if let Some(n) = snapshot.get(nominated_node) {
            let allowed = pre
                .node_names
                .as_ref()
                .is_none_or(|names| names.contains(nominated_node));
            if allowed
                && fw
                    .run_filter_with_nominated(state, pod, n, nominated, snapshot)
                    .is_success()
            {
                return Ok((vec![n.as_ref()], diagnosis, 1));
            }
        }
    }

    let all = snapshot.nodes();
    let candidates: Vec<&Arc<NodeInfo>> = match &pre.node_names {
        Some(names) => {
            diagnosis
                .node_to_status
                .set_absent(Status::unresolvable(format!(
                    "node(s) didn't satisfy plugin(s) [{}]",
                    narrowed_by.join(" ")
                )));
            let mut v: Vec<&Arc<NodeInfo>> = names.iter().filter_map(|n| snapshot.get(n)).collect();
            v.sort_by(|a, b| a.name.cmp(&b.name));
            v
        }
        None => all.iter().collect(),
    };
    let total = candidates.len();
    let pct = fw.percentage_of_nodes_to_score.unwrap_or(global_percentage);
    let want = num_feasible_nodes_to_find(pct, total);
    let start = if total == 0 {
        0
    } else {
        cursor.next_start_node % total
    };
    let state_ref: &CycleState = state;
    let mut feasible: Vec<&NodeInfo> = Vec::with_capacity(want.min(total));
    let mut processed = 0usize;
    const BATCH: usize = 256;
    while processed < total && feasible.len() < want {
        let end = (processed + BATCH).min(total);
        let verdicts: Vec<(usize, Status)> = (processed..end)
            .into_par_iter()
            .with_min_len(16)
            .map(|i| {
                let n = candidates[(start + i) % total];
                (
                    i,
                    fw.run_filter_with_nominated(state_ref, pod, n, nominated, snapshot),
                )
            })
            .collect();
        for (i, s) in verdicts {
            let n = candidates[(start + i) % total];
            if s.is_success() {
                if feasible.len() < want {
                    feasible.push(n.as_ref());
                }
            } else if s.code() == Code::Error {
                return Err(s);
            } else {
                if let Some(p) = s.plugin() {
                    diagnosis.unschedulable_plugins.insert(p);
                }
                diagnosis.node_to_status.set(&n.name, s);
            }
        }
        processed = end;
    }
    if total > 0 {
        cursor.next_start_node = (start + processed) % total;
    }
    Ok((feasible, diagnosis, processed))
}
