//! A profile's plugins, in configured order per extension point, and the functions that run
//! each point as upstream's `frameworkImpl` does.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rayon::prelude::*;

use super::{
    Code, CycleState, NodeInfo, PodInfo, PostFilterContext, PostFilterResult, PreFilterResult,
    QueuedPodInfo, Snapshot, Status,
};
use super::{Plugin, MAX_NODE_SCORE, MIN_NODE_SCORE};

/// The extension points, as configuration names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExtensionPoint {
    /// preEnqueue
    PreEnqueue,
    /// queueSort
    QueueSort,
    /// preFilter
    PreFilter,
    /// filter
    Filter,
    /// postFilter
    PostFilter,
    /// preScore
    PreScore,
    /// score
    Score,
    /// reserve
    Reserve,
    /// permit
    Permit,
    /// preBind
    PreBind,
    /// bind
    Bind,
    /// postBind
    PostBind,
}

impl ExtensionPoint {
    /// Every point, in the order a pod meets them.
    pub const ALL: [ExtensionPoint; 12] = [
        ExtensionPoint::PreEnqueue,
        ExtensionPoint::QueueSort,
        ExtensionPoint::PreFilter,
        ExtensionPoint::Filter,
        ExtensionPoint::PostFilter,
        ExtensionPoint::PreScore,
        ExtensionPoint::Score,
        ExtensionPoint::Reserve,
        ExtensionPoint::Permit,
        ExtensionPoint::PreBind,
        ExtensionPoint::Bind,
        ExtensionPoint::PostBind,
    ];

    /// Whether `plugin` implements this point.
    pub fn implemented_by(self, plugin: &dyn Plugin) -> bool {
        match self {
            ExtensionPoint::PreEnqueue => plugin.as_pre_enqueue().is_some(),
            ExtensionPoint::QueueSort => plugin.as_queue_sort().is_some(),
            ExtensionPoint::PreFilter => plugin.as_pre_filter().is_some(),
            ExtensionPoint::Filter => plugin.as_filter().is_some(),
            ExtensionPoint::PostFilter => plugin.as_post_filter().is_some(),
            ExtensionPoint::PreScore => plugin.as_pre_score().is_some(),
            ExtensionPoint::Score => plugin.as_score().is_some(),
            ExtensionPoint::Reserve => plugin.as_reserve().is_some(),
            ExtensionPoint::Permit => plugin.as_permit().is_some(),
            ExtensionPoint::PreBind => plugin.as_pre_bind().is_some(),
            ExtensionPoint::Bind => plugin.as_bind().is_some(),
            ExtensionPoint::PostBind => plugin.as_post_bind().is_some(),
        }
    }
}

/// Each node's filter verdict in one cycle; nodes not evaluated (outside a PreFilter result)
/// share `absent`.
#[derive(Clone, Debug, Default)]
pub struct NodeToStatus {
    statuses: HashMap<String, Status>,
    absent: Option<Status>,
}

impl NodeToStatus {
    /// Records `node`'s verdict.
    pub fn set(&mut self, node: &str, status: Status) {
        self.statuses.insert(node.to_string(), status);
    }

    /// The status of nodes not evaluated.
    pub fn set_absent(&mut self, status: Status) {
        self.absent = Some(status);
    }

    /// `node`'s verdict: its own, else the absent nodes' one, else UnschedulableAndUnresolvable
    /// with no reason (never evaluated).
    pub fn get(&self, node: &str) -> Status {
        self.statuses
            .get(node)
            .or(self.absent.as_ref())
            .cloned()
            .unwrap_or_else(|| {
                Status::new(Code::UnschedulableAndUnresolvable, Vec::<String>::new())
            })
    }

    /// Recorded verdicts.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Status)> {
        self.statuses.iter()
    }

    /// The number of nodes with their own verdict.
    pub fn len(&self) -> usize {
        self.statuses.len()
    }

    /// Whether none has its own verdict.
    pub fn is_empty(&self) -> bool {
        self.statuses.is_empty()
    }

    /// The verdict of absent nodes.
    pub fn absent(&self) -> Option<&Status> {
        self.absent.as_ref()
    }
}

/// Pods nominated to nodes by preemption (`status.nominatedNodeName`), by node. Filters count
/// them on their node for pods of no higher priority, so the space they wait for stays free.
#[derive(Clone, Debug, Default)]
pub struct Nominated {
    by_node: HashMap<String, Vec<Arc<PodInfo>>>,
}

impl Nominated {
    /// Records that `pod` waits for `node` (replacing an earlier nomination of the same pod).
    pub fn add(&mut self, node: &str, pod: Arc<PodInfo>) {
        self.remove(&pod.uid);
        self.by_node.entry(node.to_string()).or_default().push(pod);
    }

    /// Forgets the pod with `uid`.
    pub fn remove(&mut self, uid: &str) {
        self.by_node.retain(|_, pods| {
            pods.retain(|p| p.uid != uid);
            !pods.is_empty()
        });
    }

    /// The pods nominated to `node`.
    pub fn on(&self, node: &str) -> &[Arc<PodInfo>] {
        self.by_node.get(node).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The node `uid` is nominated to.
    pub fn node_of(&self, uid: &str) -> Option<&str> {
        self.by_node
            .iter()
            .find(|(_, pods)| pods.iter().any(|p| p.uid == uid))
            .map(|(n, _)| n.as_str())
    }
}

/// One profile: a scheduler name and its plugins per extension point.
pub struct Framework {
    /// The `schedulerName` pods ask for.
    pub scheduler_name: String,
    /// The profile's `percentageOfNodesToScore`, overriding the global one.
    pub percentage_of_nodes_to_score: Option<i32>,
    plugins: HashMap<&'static str, Arc<dyn Plugin>>,
    points: HashMap<ExtensionPoint, Vec<Arc<dyn Plugin>>>,
    score_weights: HashMap<&'static str, i64>,
}

impl fmt::Debug for Framework {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut points: Vec<_> = self
            .points
            .iter()
            .map(|(p, v)| {
                (
                    format!("{p:?}"),
                    v.iter().map(|p| p.name()).collect::<Vec<_>>(),
                )
            })
            .collect();
        points.sort();
        f.debug_struct("Framework")
            .field("scheduler_name", &self.scheduler_name)
            .field("points", &points)
            .finish()
    }
}

/// A plugin's failure while building a profile.
pub type BuildError = String;

impl Framework {
    /// An empty profile.
    pub fn new(scheduler_name: &str) -> Framework {
        Framework {
            scheduler_name: scheduler_name.to_string(),
            percentage_of_nodes_to_score: None,
            plugins: HashMap::new(),
            points: HashMap::new(),
            score_weights: HashMap::new(),
        }
    }

    /// Enables `plugin` at `point` (after those already there). Score plugins take `weight`.
    pub fn enable(
        &mut self,
        point: ExtensionPoint,
        plugin: Arc<dyn Plugin>,
        weight: i64,
    ) -> Result<(), BuildError> {
        if !point.implemented_by(plugin.as_ref()) {
            return Err(format!(
                "plugin {:?} does not extend {point:?} plugin",
                plugin.name()
            ));
        }
        let list = self.points.entry(point).or_default();
        if list.iter().any(|p| p.name() == plugin.name()) {
            return Err(format!(
                "plugin {:?} already registered as {point:?}",
                plugin.name()
            ));
        }
        if point == ExtensionPoint::Score {
            self.score_weights.insert(plugin.name(), weight.max(1));
        }
        list.push(plugin.clone());
        self.plugins.insert(plugin.name(), plugin);
        Ok(())
    }

    /// Removes `name` from `point`.
    pub fn disable(&mut self, point: ExtensionPoint, name: &str) {
        if let Some(list) = self.points.get_mut(&point) {
            list.retain(|p| p.name() != name);
        }
    }

    /// The plugins at `point`.
    pub fn plugins_at(&self, point: ExtensionPoint) -> &[Arc<dyn Plugin>] {
        self.points.get(&point).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Every plugin of the profile.
    pub fn plugins(&self) -> impl Iterator<Item = &Arc<dyn Plugin>> {
        self.plugins.values()
    }

    /// The weight of score plugin `name`.
    pub fn score_weight(&self, name: &str) -> i64 {
        self.score_weights.get(name).copied().unwrap_or(1)
    }

    /// Checks what upstream's framework requires of a profile: one QueueSort and at least
    /// one Bind plugin.
    pub fn validate(&self) -> Result<(), BuildError> {
        if self.plugins_at(ExtensionPoint::QueueSort).len() != 1 {
            return Err(format!(
                "profile {:?}: exactly one queue sort plugin is required, found {}",
                self.scheduler_name,
                self.plugins_at(ExtensionPoint::QueueSort).len()
            ));
        }
        if self.plugins_at(ExtensionPoint::Bind).is_empty() {
            return Err(format!(
                "profile {:?}: at least one bind plugin is needed",
                self.scheduler_name
            ));
        }
        Ok(())
    }

    /// PreEnqueue: the first plugin that does not return Success keeps the pod out.
    pub fn run_pre_enqueue(&self, pod: &PodInfo) -> Status {
        for p in self.plugins_at(ExtensionPoint::PreEnqueue) {
            if let Some(pe) = p.as_pre_enqueue() {
                let s = pe.pre_enqueue(pod);
                if !s.is_success() {
                    return s.with_plugin(p.name());
                }
            }
        }
        Status::success()
    }

    /// QueueSort's order.
    pub fn less(&self, a: &QueuedPodInfo, b: &QueuedPodInfo) -> bool {
        match self
            .plugins_at(ExtensionPoint::QueueSort)
            .first()
            .and_then(|p| p.as_queue_sort())
        {
            Some(qs) => qs.less(a, b),
            None => a.timestamp < b.timestamp,
        }
    }

    /// PreFilter: runs every plugin, intersects their node sets, records Skips. A rejection
    /// stops at once and names the plugin. Also returns the plugins that narrowed the nodes.
    pub fn run_pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
    ) -> (PreFilterResult, Vec<&'static str>, Status) {
        let mut result = PreFilterResult::default();
        let mut narrowed_by = Vec::new();
        for p in self.plugins_at(ExtensionPoint::PreFilter) {
            let Some(pf) = p.as_pre_filter() else {
                continue;
            };
            let (r, s) = pf.pre_filter(state, pod, snapshot);
            if s.is_skip() {
                state.skip_filter.insert(p.name());
                continue;
            }
            if !s.is_success() {
                let s = if s.code() == Code::Error {
                    Status::error(format!(
                        "running PreFilter plugin {:?}: {}",
                        p.name(),
                        s.message()
                    ))
                } else {
                    s
                };
                return (result, narrowed_by, s.with_plugin(p.name()));
            }
            if let Some(names) = r.and_then(|r| r.node_names) {
                narrowed_by.push(p.name());
                result.node_names = Some(match result.node_names.take() {
                    None => names,
                    Some(prev) => prev.intersection(&names).cloned().collect(),
                });
                if result.node_names.as_ref().is_some_and(HashSet::is_empty) {
                    narrowed_by.sort();
                    let msg = format!(
                        "node(s) didn't satisfy plugin(s) [{}] simultaneously",
                        narrowed_by.join(" ")
                    );
                    return (
                        result,
                        narrowed_by,
                        Status::unresolvable(msg).with_plugin(p.name()),
                    );
                }
            }
        }
        narrowed_by.sort();
        (result, narrowed_by, Status::success())
    }

    /// Filter on one node: the first rejection wins.
    pub fn run_filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        for p in self.plugins_at(ExtensionPoint::Filter) {
            if state.skip_filter.contains(p.name()) {
                continue;
            }
            let Some(f) = p.as_filter() else { continue };
            let s = f.filter(state, pod, node);
            if !s.is_success() {
                let s = if s.code() == Code::Error {
                    Status::error(format!(
                        "running {:?} filter plugin: {}",
                        p.name(),
                        s.message()
                    ))
                } else {
                    s
                };
                return s.with_plugin(p.name());
            }
        }
        Status::success()
    }

    /// Filter with the pods nominated to `node` (of at least the pod's priority) counted as
    /// if they were there, then without them: the pod must fit both ways, as upstream's
    /// `RunFilterPluginsWithNominatedPods`.
    pub fn run_filter_with_nominated(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        node: &NodeInfo,
        nominated: &Nominated,
        snapshot: &Snapshot,
    ) -> Status {
        let others: Vec<&Arc<PodInfo>> = nominated
            .on(&node.name)
            .iter()
            .filter(|n| n.uid != pod.uid && n.priority >= pod.priority)
            .collect();
        if others.is_empty() {
            return self.run_filter(state, pod, node);
        }
        let mut with_state = state.clone();
        let mut with_node = node.clone();
        for n in &others {
            with_node.add_pod(Arc::clone(n));
            let s = self.run_pre_filter_add_pod(&mut with_state, pod, n, &with_node, snapshot);
            if !s.is_success() {
                return s;
            }
        }
        let s = self.run_filter(&with_state, pod, &with_node);
        if !s.is_success() {
            return s;
        }
        self.run_filter(state, pod, node)
    }

    /// PreFilter extensions: `added` joins `node` in the cycle state.
    pub fn run_pre_filter_add_pod(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        added: &Arc<PodInfo>,
        node: &NodeInfo,
        snapshot: &Snapshot,
    ) -> Status {
        for p in self.plugins_at(ExtensionPoint::PreFilter) {
            if state.skip_filter.contains(p.name()) {
                continue;
            }
            if let Some(pf) = p.as_pre_filter() {
                let s = pf.add_pod(state, pod, added, node, snapshot);
                if !s.is_success() {
                    return s.with_plugin(p.name());
                }
            }
        }
        Status::success()
    }

    /// PreFilter extensions: `removed` leaves `node` in the cycle state.
    pub fn run_pre_filter_remove_pod(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        removed: &Arc<PodInfo>,
        node: &NodeInfo,
        snapshot: &Snapshot,
    ) -> Status {
        for p in self.plugins_at(ExtensionPoint::PreFilter) {
            if state.skip_filter.contains(p.name()) {
                continue;
            }
            if let Some(pf) = p.as_pre_filter() {
                let s = pf.remove_pod(state, pod, removed, node, snapshot);
                if !s.is_success() {
                    return s.with_plugin(p.name());
                }
            }
        }
        Status::success()
    }

    /// PostFilter: the first plugin that returns Success (or an error) ends it.
    pub fn run_post_filter(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        statuses: &NodeToStatus,
        ctx: &PostFilterContext<'_>,
    ) -> (Option<PostFilterResult>, Status) {
        let mut reasons = Vec::new();
        let mut last = Status::unschedulable("no PostFilter plugin");
        // a rejecting plugin's result still counts: an empty nomination clears the pod's
        let mut result = None;
        for p in self.plugins_at(ExtensionPoint::PostFilter) {
            let Some(pf) = p.as_post_filter() else {
                continue;
            };
            let (r, s) = pf.post_filter(state, pod, statuses, ctx);
            if s.is_success() || s.code() == Code::Error {
                return (r, s.with_plugin(p.name()));
            }
            if r.is_some() {
                result = r;
            }
            reasons.extend(s.reasons().iter().cloned());
            last = s.with_plugin(p.name());
        }
        if !reasons.is_empty() {
            last = Status::new(last.code(), reasons);
        }
        (result, last)
    }

    /// PreScore over the feasible nodes.
    pub fn run_pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        nodes: &[&NodeInfo],
        snapshot: &Snapshot,
    ) -> Status {
        for p in self.plugins_at(ExtensionPoint::PreScore) {
            let Some(ps) = p.as_pre_score() else { continue };
            let s = ps.pre_score(state, pod, nodes, snapshot);
            if s.is_skip() {
                state.skip_score.insert(p.name());
                continue;
            }
            if !s.is_success() {
                return Status::error(format!(
                    "running PreScore plugin {:?}: {}",
                    p.name(),
                    s.message()
                ))
                .with_plugin(p.name());
            }
        }
        Status::success()
    }

    /// Score: each plugin scores every node (in parallel), normalises, and is weighted; the
    /// result is each node's total, in the order of `nodes`.
    pub fn run_score(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        nodes: &[&NodeInfo],
    ) -> Result<Vec<i64>, Status> {
        let plugins: Vec<&Arc<dyn Plugin>> = self
            .plugins_at(ExtensionPoint::Score)
            .iter()
            .filter(|p| !state.skip_score.contains(p.name()))
            .collect();
        let mut totals = vec![0i64; nodes.len()];
        if plugins.is_empty() {
            return Ok(totals);
        }
        // node-major: one parallel pass computes every plugin's raw score of a node
        let raw: Vec<Result<Vec<i64>, Status>> = nodes
            .par_iter()
            .with_min_len(32)
            .map(|n| {
                plugins
                    .iter()
                    .map(|p| {
                        let Some(sp) = p.as_score() else {
                            return Ok(0);
                        };
                        let (v, s) = sp.score(state, pod, n);
                        if s.is_success() {
                            Ok(v)
                        } else {
                            Err(Status::error(format!(
                                "running Score plugin {:?}: {}",
                                p.name(),
                                s.message()
                            ))
                            .with_plugin(p.name()))
                        }
                    })
                    .collect()
            })
            .collect();
        let mut per_plugin = vec![vec![0i64; nodes.len()]; plugins.len()];
        for (ni, r) in raw.into_iter().enumerate() {
            for (pi, v) in r?.into_iter().enumerate() {
                per_plugin[pi][ni] = v;
            }
        }
        for (pi, p) in plugins.iter().enumerate() {
            let Some(sp) = p.as_score() else { continue };
            let scores = &mut per_plugin[pi];
            let s = sp.normalize_scores(state, pod, scores);
            if !s.is_success() {
                return Err(Status::error(format!(
                    "running Normalize on Score plugin {:?}: {}",
                    p.name(),
                    s.message()
                ))
                .with_plugin(p.name()));
            }
            let weight = self.score_weight(p.name());
            for (ni, v) in scores.iter().enumerate() {
                if !(MIN_NODE_SCORE..=MAX_NODE_SCORE).contains(v) {
                    return Err(Status::error(format!(
                        "plugin {:?} returns an invalid score {v}, it should in the range of [{MIN_NODE_SCORE}, {MAX_NODE_SCORE}] after normalizing",
                        p.name()
                    )));
                }
                totals[ni] += v * weight;
            }
        }
        Ok(totals)
    }

    /// Reserve; on a failure every Reserve plugin's Unreserve runs.
    pub fn run_reserve(&self, state: &mut CycleState, pod: &PodInfo, node: &str) -> Status {
        for p in self.plugins_at(ExtensionPoint::Reserve) {
            if let Some(r) = p.as_reserve() {
                let s = r.reserve(state, pod, node);
                if !s.is_success() {
                    self.run_unreserve(state, pod, node);
                    return s.with_plugin(p.name());
                }
            }
        }
        Status::success()
    }

    /// Unreserve, in reverse order.
    pub fn run_unreserve(&self, state: &mut CycleState, pod: &PodInfo, node: &str) {
        for p in self.plugins_at(ExtensionPoint::Reserve).iter().rev() {
            if let Some(r) = p.as_reserve() {
                r.unreserve(state, pod, node);
            }
        }
    }

    /// Permit: a rejection wins; otherwise Wait with the shortest timeout if any plugin waits.
    pub fn run_permit(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        node: &str,
    ) -> (Status, Option<Duration>) {
        let mut wait: Option<Duration> = None;
        let mut waiting = Vec::new();
        for p in self.plugins_at(ExtensionPoint::Permit) {
            let Some(pp) = p.as_permit() else { continue };
            let (s, timeout) = pp.permit(state, pod, node);
            if s.is_wait() {
                // upstream caps a Permit wait at 15 minutes
                let t = timeout.min(Duration::from_secs(15 * 60));
                wait = Some(wait.map_or(t, |w| w.min(t)));
                waiting.push(p.name());
            } else if !s.is_success() {
                return (s.with_plugin(p.name()), None);
            }
        }
        match wait {
            Some(t) => (
                Status::new(Code::Wait, waiting.iter().map(|n| n.to_string())),
                Some(t),
            ),
            None => (Status::success(), None),
        }
    }

    /// PreBind.
    pub async fn run_pre_bind(&self, state: &CycleState, pod: &PodInfo, node: &str) -> Status {
        for p in self.plugins_at(ExtensionPoint::PreBind) {
            if let Some(pb) = p.as_pre_bind() {
                let s = pb.pre_bind(state, pod, node).await;
                if !s.is_success() {
                    return s.with_plugin(p.name());
                }
            }
        }
        Status::success()
    }

    /// Bind: the first plugin that does not Skip binds.
    pub async fn run_bind(&self, state: &CycleState, pod: &PodInfo, node: &str) -> Status {
        for p in self.plugins_at(ExtensionPoint::Bind) {
            if let Some(b) = p.as_bind() {
                let s = b.bind(state, pod, node).await;
                if s.is_skip() {
                    continue;
                }
                return s.with_plugin(p.name());
            }
        }
        Status::error("no bind plugin bound the pod")
    }

    /// PostBind.
    pub async fn run_post_bind(&self, state: &CycleState, pod: &PodInfo, node: &str) {
        for p in self.plugins_at(ExtensionPoint::PostBind) {
            if let Some(pb) = p.as_post_bind() {
                pb.post_bind(state, pod, node).await;
            }
        }
    }
}
