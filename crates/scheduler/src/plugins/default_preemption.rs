//! DefaultPreemption: the PostFilter that, when no node fits a pod, looks for lower-priority pods
//! whose eviction would make room, as upstream's `DefaultPreemption` plugin with its
//! `preemption.Evaluator.Preempt`.
//!
//! 1. Eligibility: a pod with `preemptionPolicy: Never` never preempts, nor does a pod whose
//!    nominated node still has a lower-priority pod terminating because of an earlier
//!    preemption (unless the filters now call that node UnschedulableAndUnresolvable).
//! 2. Candidates: only nodes the filters rejected as Unschedulable (UnschedulableAndUnresolvable
//!    ones cannot be helped by evictions). Starting at a random offset, nodes are simulated
//!    ([`select_victims_on_node`](super::preemption_victims::select_victims_on_node)) until `max(minCandidateNodesPercentage% of them,
//!    minCandidateNodesAbsolute)` candidates are found, at least one without budget violations.
//! 3. Choice: fewest PodDisruptionBudget violations, then the lowest highest-victim priority, the
//!    smallest sum of priorities, the fewest victims, the latest start of the highest-priority
//!    victims, then the first.
//!
//! The plugin is pure: it returns the chosen node, its victims and the lower-priority pods
//! nominated to that node whose nomination must be cleared. The scheduler's driver evicts and
//! patches; upstream marks each victim with a `DisruptionTarget` condition
//! ([`DISRUPTION_TARGET`], [`REASON_PREEMPTION_BY_SCHEDULER`]) before deleting it, which is
//! what the eligibility check above recognises.

use std::sync::Arc;

use rand::Rng;
use serde::Deserialize;

use super::preemption_victims::{
    compile_pdbs, dry_run, pick_one_node_for_preemption, DryRun, VictimSearch,
};
use crate::framework::{
    Code, CycleState, NodeInfo, NodeToStatus, Plugin, PodInfo, PostFilterContext, PostFilterPlugin,
    PostFilterResult, Snapshot, Status,
};
use crate::registry::{parse_args, Handle};

pub use super::preemption_victims::NO_VICTIMS_FOUND;

/// The plugin's name.
pub const NAME: &str = "DefaultPreemption";

/// Upstream's prefix of every message this plugin returns.
pub const MESSAGE_PREFIX: &str = "preemption: ";
/// A pod with `preemptionPolicy: Never`.
pub const ERR_PREEMPTION_NEVER: &str = "not eligible due to preemptionPolicy=Never.";
/// A pod whose earlier victims are still terminating.
pub const ERR_TERMINATING_ON_NOMINATED: &str =
    "not eligible due to a terminating pod on the nominated node.";
/// The status of nodes preemption did not consider.
pub const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
/// The cluster has no nodes.
pub const ERR_NO_NODES: &str = "no nodes available";
/// The best candidate has no node (unreachable with the default ranking).
pub const ERR_NO_CANDIDATE: &str = "no candidate node for preemption";
/// Upstream's "0/N nodes are available" head of a fit error.
pub const NO_NODE_AVAILABLE: &str = "nodes are available";

/// The pod condition upstream sets on a victim before deleting it.
pub const DISRUPTION_TARGET: &str = "DisruptionTarget";
/// That condition's reason.
pub const REASON_PREEMPTION_BY_SCHEDULER: &str = "PreemptionByScheduler";

/// The message of the victim's `DisruptionTarget` condition.
pub fn disruption_message(scheduler_name: &str) -> String {
    format!("{scheduler_name}: preempting to accommodate a higher priority pod")
}

/// `DefaultPreemptionArgs` with upstream's v1 defaults.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct DefaultPreemptionArgs {
    /// The share of the candidate nodes to simulate at least, 0 to 100.
    pub min_candidate_nodes_percentage: i32,
    /// The number of candidate nodes to simulate at least.
    pub min_candidate_nodes_absolute: i32,
}

impl Default for DefaultPreemptionArgs {
    fn default() -> Self {
        DefaultPreemptionArgs {
            min_candidate_nodes_percentage: 10,
            min_candidate_nodes_absolute: 100,
        }
    }
}

impl DefaultPreemptionArgs {
    /// Upstream's `ValidateDefaultPreemptionArgs`, with its messages.
    pub fn validate(&self) -> Result<(), String> {
        use rkube_api::{FieldError, FieldPath};
        let pct_path = FieldPath::new("minCandidateNodesPercentage");
        let abs_path = FieldPath::new("minCandidateNodesAbsolute");
        let (pct, abs) = (
            self.min_candidate_nodes_percentage,
            self.min_candidate_nodes_absolute,
        );
        let mut errs = Vec::new();
        if !(0..=100).contains(&pct) {
            errs.push(FieldError::invalid(
                &pct_path,
                pct,
                "not in valid range [0, 100]",
            ));
        }
        if abs < 0 {
            errs.push(FieldError::invalid(
                &abs_path,
                abs,
                "not in valid range [0, inf)",
            ));
        }
        if pct == 0 && abs == 0 {
            errs.push(FieldError::invalid(
                &pct_path,
                pct,
                "cannot be zero at the same time as minCandidateNodesAbsolute",
            ));
            errs.push(FieldError::invalid(
                &abs_path,
                abs,
                "cannot be zero at the same time as minCandidateNodesPercentage",
            ));
        }
        match errs.as_slice() {
            [] => Ok(()),
            [one] => Err(one.to_string()),
            many => Err(format!(
                "[{}]",
                many.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    /// Upstream's `calculateNumCandidates`: how many candidates the dry run looks for among
    /// `num_nodes` potential nodes.
    pub fn num_candidates(&self, num_nodes: usize) -> usize {
        let pct = usize::try_from(self.min_candidate_nodes_percentage).unwrap_or(0);
        let abs = usize::try_from(self.min_candidate_nodes_absolute).unwrap_or(0);
        (num_nodes * pct / 100).max(abs).min(num_nodes)
    }
}

/// See the module documentation.
#[derive(Debug)]
pub struct DefaultPreemption {
    args: DefaultPreemptionArgs,
    /// Tests fix the dry run's starting node; otherwise it is random.
    fixed_offset: Option<usize>,
}

/// The factory.
pub fn new(args: &serde_json::Value, _handle: &Handle) -> Result<Arc<dyn Plugin>, String> {
    let args: DefaultPreemptionArgs = parse_args(NAME, args)?;
    args.validate()?;
    Ok(Arc::new(DefaultPreemption {
        args,
        fixed_offset: None,
    }))
}

impl Plugin for DefaultPreemption {
    fn name(&self) -> &'static str {
        NAME
    }
    fn as_post_filter(&self) -> Option<&dyn PostFilterPlugin> {
        Some(self)
    }
}

impl PostFilterPlugin for DefaultPreemption {
    fn post_filter(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        statuses: &NodeToStatus,
        ctx: &PostFilterContext<'_>,
    ) -> (Option<PostFilterResult>, Status) {
        let (result, status) = self.preempt(state, pod, statuses, ctx);
        let msg = status.message();
        if msg.is_empty() {
            return (result, status);
        }
        (
            result,
            Status::new(status.code(), [format!("{MESSAGE_PREFIX}{msg}")]),
        )
    }
}

impl DefaultPreemption {
    /// Upstream's `Evaluator.Preempt` without the API calls.
    fn preempt(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        statuses: &NodeToStatus,
        ctx: &PostFilterContext<'_>,
    ) -> (Option<PostFilterResult>, Status) {
        // The queue's copy of the pod may predate the patch that nominated it; the nominator
        // knows at once.
        let nominated_node = pod
            .pod
            .status
            .as_ref()
            .and_then(|s| s.nominated_node_name.as_deref())
            .filter(|n| !n.is_empty())
            .or_else(|| ctx.nominated.node_of(&pod.uid));
        if let Err(msg) =
            pod_eligible_to_preempt_others(pod, nominated_node, statuses, ctx.snapshot)
        {
            return (None, Status::unschedulable(msg));
        }

        let all_nodes = ctx.snapshot.nodes();
        if all_nodes.is_empty() {
            return (None, Status::error(ERR_NO_NODES));
        }
        let potential: Vec<&Arc<NodeInfo>> = all_nodes
            .iter()
            .filter(|n| statuses.get(&n.name).code() == Code::Unschedulable)
            .collect();
        let run = if potential.is_empty() {
            DryRun::default()
        } else {
            let pdbs = compile_pdbs(&ctx.snapshot.pdbs);
            let search = VictimSearch {
                framework: ctx.framework,
                snapshot: ctx.snapshot,
                nominated: ctx.nominated,
                pdbs: &pdbs,
            };
            let offset = self
                .fixed_offset
                .unwrap_or_else(|| rand::rng().random_range(0..potential.len()))
                % potential.len();
            let num = self.args.num_candidates(potential.len());
            dry_run(&search, state, pod, &potential, offset, num)
        };
        if run.candidates.is_empty() {
            if !run.errors.is_empty() {
                return (None, Status::error(aggregate(&run.errors)));
            }
            let mut node_statuses = run.statuses;
            node_statuses.set_absent(Status::unresolvable(NOT_HELPFUL));
            let msg = fit_error_message(all_nodes.len(), &node_statuses);
            // an empty nomination clears the pod's `nominatedNodeName`, as upstream
            return (
                Some(PostFilterResult::default()),
                Status::unschedulable(msg),
            );
        }
        let Some(best) = pick_one_node_for_preemption(&run.candidates) else {
            return (None, Status::unschedulable(ERR_NO_CANDIDATE));
        };
        let best = &run.candidates[best];
        let clear_nominations = ctx
            .nominated
            .on(&best.node)
            .iter()
            .filter(|p| p.priority < pod.priority)
            .cloned()
            .collect();
        (
            Some(PostFilterResult {
                nominated_node: best.node.clone(),
                victims: best.victims.pods.clone(),
                clear_nominations,
            }),
            Status::success(),
        )
    }
}

/// Upstream's `PodEligibleToPreemptOthers`: `Err` carries the reason a pod may not preempt.
pub fn pod_eligible_to_preempt_others(
    pod: &PodInfo,
    nominated_node: Option<&str>,
    statuses: &NodeToStatus,
    snapshot: &Snapshot,
) -> Result<(), &'static str> {
    let spec = pod.pod.spec.as_ref();
    if spec.and_then(|s| s.preemption_policy.as_deref()) == Some("Never") {
        return Err(ERR_PREEMPTION_NEVER);
    }
    let Some(nominated) = nominated_node else {
        return Ok(());
    };
    // The filters say no eviction can help on the nominated node any more: look elsewhere.
    if statuses.get(nominated).code() == Code::UnschedulableAndUnresolvable {
        return Ok(());
    }
    if let Some(node) = snapshot.get(nominated) {
        // Earlier victims still terminating will free the space the pod waits for.
        if node
            .pods
            .iter()
            .any(|p| p.priority < pod.priority && terminating_by_preemption(p))
        {
            return Err(ERR_TERMINATING_ON_NOMINATED);
        }
    }
    Ok(())
}

/// Whether `p` is being deleted because the scheduler preempted it: it has a deletion timestamp
/// and its `DisruptionTarget` condition is True with reason `PreemptionByScheduler`.
pub fn terminating_by_preemption(p: &PodInfo) -> bool {
    if p.pod.metadata.deletion_timestamp.is_none() {
        return false;
    }
    let conditions = p.pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions
        .into_iter()
        .flatten()
        .find(|c| c.type_ == DISRUPTION_TARGET)
        .is_some_and(|c| {
            c.status == "True" && c.reason.as_deref() == Some(REASON_PREEMPTION_BY_SCHEDULER)
        })
}

/// Upstream's `FitError.Error()` without PreFilter and PostFilter messages: `0/N nodes are
/// available: ` followed by each reason prefixed with the number of nodes giving it (nodes
/// without their own status give the absent status's reasons), sorted as strings.
pub fn fit_error_message(num_all_nodes: usize, statuses: &NodeToStatus) -> String {
    let mut counts: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (_, s) in statuses.iter() {
        for r in s.reasons() {
            *counts.entry(r.as_str()).or_default() += 1;
        }
    }
    if statuses.len() < num_all_nodes {
        for r in statuses.absent().map(Status::reasons).unwrap_or_default() {
            *counts.entry(r.as_str()).or_default() += num_all_nodes - statuses.len();
        }
    }
    let mut reasons: Vec<String> = counts.iter().map(|(r, n)| format!("{n} {r}")).collect();
    reasons.sort();
    let mut msg = format!("0/{num_all_nodes} {NO_NODE_AVAILABLE}:");
    if !reasons.is_empty() {
        msg.push(' ');
        msg.push_str(&reasons.join(", "));
        msg.push('.');
    }
    msg
}

/// Upstream's aggregate error text: one message as itself, several as `[a, b]` without repeats.
fn aggregate(messages: &[String]) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for m in messages {
        if !seen.contains(&m.as_str()) {
            seen.push(m);
        }
    }
    match seen.as_slice() {
        [one] => one.to_string(),
        many => format!("[{}]", many.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::policy::v1::PodDisruptionBudget;
    use serde_json::{json, Value};

    use super::*;
    use crate::framework::Nominated;
    use crate::plugins::preemption_victims::test_plugins::framework;
    use crate::plugins::testing::{node_with_allocatable, pod, snapshot, with_pods};

    /// A pod of `prio` requesting `cpu` millicores; `extra` merges into its sections.
    fn pj(name: &str, prio: i32, cpu: i64, extra: Value) -> Arc<PodInfo> {
        let mut v = json!({
            "metadata": {"name": name},
            "spec": {"priority": prio, "containers": [
                {"name": "c", "resources": {"requests": {"cpu": format!("{cpu}m")}}}]},
        });
        for (section, fields) in extra.as_object().into_iter().flatten() {
            let target = v
                .as_object_mut()
                .unwrap()
                .entry(section.clone())
                .or_insert_with(|| json!({}));
            for (k, val) in fields.as_object().unwrap() {
                target[k] = val.clone();
            }
        }
        pod(v)
    }

    fn p(name: &str, prio: i32, cpu: i64) -> Arc<PodInfo> {
        pj(name, prio, cpu, json!({}))
    }

    fn started(name: &str, prio: i32, cpu: i64, at: &str) -> Arc<PodInfo> {
        pj(name, prio, cpu, json!({"status": {"startTime": at}}))
    }

    fn web(name: &str, prio: i32, cpu: i64) -> Arc<PodInfo> {
        pj(
            name,
            prio,
            cpu,
            json!({"metadata": {"labels": {"app": "web"}}}),
        )
    }

    fn n(name: &str, cpu: i64, pods: &[Arc<PodInfo>]) -> NodeInfo {
        with_pods(node_with_allocatable(name, cpu, 1 << 30, 110), pods)
    }

    fn pdb(app: &str, allowed: i32) -> Arc<PodDisruptionBudget> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": format!("pdb-{app}"), "namespace": "default"},
                "spec": {"selector": {"matchLabels": {"app": app}}},
                "status": {"disruptionsAllowed": allowed, "currentHealthy": 0,
                           "desiredHealthy": 0, "expectedPods": 0}
            }))
            .unwrap(),
        )
    }

    fn plugin(args: DefaultPreemptionArgs, offset: usize) -> DefaultPreemption {
        DefaultPreemption {
            args,
            fixed_offset: Some(offset),
        }
    }

    /// One scheduling attempt: PreFilter, Filter on every node (with `overrides` replacing some
    /// verdicts), then the plugin's PostFilter.
    fn attempt(
        pl: &DefaultPreemption,
        snap: &Snapshot,
        nominated: &Nominated,
        pod: &PodInfo,
        overrides: &[(&str, Code)],
    ) -> (Option<PostFilterResult>, Status) {
        let fw = framework();
        let mut state = CycleState::new();
        assert!(fw.run_pre_filter(&mut state, pod, snap).2.is_success());
        let mut statuses = NodeToStatus::default();
        for node in snap.nodes() {
            let s = fw.run_filter_with_nominated(&state, pod, node, nominated, snap);
            if !s.is_success() {
                statuses.set(&node.name, s);
            }
        }
        for (name, code) in overrides {
            statuses.set(name, Status::new(*code, ["forced"]));
        }
        let ctx = PostFilterContext {
            snapshot: snap,
            framework: &fw,
            nominated,
        };
        pl.post_filter(&state, pod, &statuses, &ctx)
    }

    fn names(pods: &[Arc<PodInfo>]) -> Vec<&str> {
        pods.iter().map(|p| p.name.as_str()).collect()
    }

    const EARLY: &str = "2024-01-01T00:00:00Z";
    const LATE: &str = "2024-06-01T00:00:00Z";

    #[test]
    fn preemption_picks_the_cheapest_node_and_victims() {
        use Code::{Unschedulable as U, UnschedulableAndUnresolvable as UU};
        // the chosen node and victims, or the status code and message
        type Want<'a> = Result<(&'a str, Vec<&'a str>), (Code, &'a str)>;
        type Budgets = Vec<Arc<PodDisruptionBudget>>;
        type Row<'a> = (
            &'a str,
            Vec<NodeInfo>,
            Budgets,
            Arc<PodInfo>,
            Vec<(&'a str, Code)>,
            Want<'a>,
        );
        let hi = |cpu| p("preemptor", 10, cpu);
        let cases: Vec<Row> = vec![
            ("only as many lowest-priority victims as needed",
             vec![n("a", 1000, &[p("l1", 1, 300), p("l2", 2, 300), p("m", 5, 300)])],
             vec![], hi(300), vec![], Ok(("a", vec!["l1"]))),
            ("several victims, most important first",
             vec![n("a", 1000, &[p("l1", 1, 400), p("l2", 2, 400), p("m", 5, 200)])],
             vec![], hi(700), vec![], Ok(("a", vec!["l2", "l1"]))),
            ("equal and higher priority pods are never victims",
             vec![n("a", 1000, &[p("eq", 10, 500), p("hi", 20, 500)])],
             vec![], hi(500), vec![],
             Err((U, "preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."))),
            ("evicting every lower-priority pod is not enough",
             vec![n("a", 1000, &[p("lo", 1, 200), p("hi", 20, 800)])],
             vec![], hi(500), vec![],
             Err((U, "preemption: 0/1 nodes are available: 1 Insufficient cpu."))),
            ("plugin state follows the removed pods",
             vec![n("a", 1000, &[pj("ex", 1, 0, json!({"metadata": {"labels": {"exclusive": "y"}}})), p("other", 1, 0)])],
             vec![], pj("preemptor", 10, 0, json!({"metadata": {"labels": {"exclusive": "y"}}})), vec![],
             Ok(("a", vec!["ex"]))),
            ("UnschedulableAndUnresolvable nodes are skipped",
             vec![n("a", 1000, &[p("a5", 5, 1000)]), n("b", 1000, &[p("b1", 1, 1000)])],
             vec![], hi(500), vec![("b", UU)], Ok(("a", vec!["a5"]))),
            ("no node can be helped",
             vec![n("a", 1000, &[p("a5", 5, 1000)]), n("b", 1000, &[p("b1", 1, 1000)])],
             vec![], hi(500), vec![("a", UU), ("b", UU)],
             Err((U, "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."))),
            ("reasons of simulated and skipped nodes are counted",
             vec![n("a", 1000, &[p("a20", 20, 1000)]), n("b", 1000, &[p("b1", 1, 1000)]),
                  n("c", 1000, &[p("c1", 1, 1000)])],
             vec![], hi(500), vec![("b", UU), ("c", UU)],
             Err((U, "preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling."))),
            ("a node the pod fits without evictions is an error",
             vec![n("a", 1000, &[p("lo", 1, 100)])],
             vec![], hi(500), vec![("a", U)],
             Err((Code::Error, "preemption: expected at least one victim pod on node \"a\""))),
            // w is newer, so without budgets x would be spared and w evicted
            ("a budget-protected pod is spared when another victim suffices",
             vec![n("a", 1000, &[
                 pj("w", 1, 500, json!({"metadata": {"labels": {"app": "web"}}, "status": {"startTime": LATE}})),
                 started("x", 1, 500, EARLY)])],
             vec![pdb("web", 0)], hi(500), vec![], Ok(("a", vec!["x"]))),
            ("fewest budget violations beats lower victim priority",
             vec![n("a", 1000, &[web("w", 1, 1000)]), n("b", 1000, &[p("v", 3, 1000)])],
             vec![pdb("web", 0)], hi(500), vec![], Ok(("b", vec!["v"]))),
            ("a budget with room is no violation",
             vec![n("a", 1000, &[web("w", 1, 1000)]), n("b", 1000, &[p("v", 3, 1000)])],
             vec![pdb("web", 1)], hi(500), vec![], Ok(("a", vec!["w"]))),
            ("lowest highest-victim priority",
             vec![n("a", 1000, &[p("a5", 5, 1000)]), n("b", 1000, &[p("b3", 3, 1000)])],
             vec![], hi(500), vec![], Ok(("b", vec!["b3"]))),
            ("smallest sum of victim priorities",
             vec![n("a", 1000, &[p("a3", 3, 500), p("a2", 2, 500)]),
                  n("b", 1000, &[p("b3", 3, 500), p("b1", 1, 500)])],
             vec![], hi(1000), vec![], Ok(("b", vec!["b3", "b1"]))),
            ("latest start of the highest-priority victims",
             vec![n("a", 1000, &[started("a3", 3, 1000, EARLY)]),
                  n("b", 1000, &[started("b3", 3, 1000, LATE)])],
             vec![], hi(500), vec![], Ok(("b", vec!["b3"]))),
        ];
        for (name, nodes, pdbs, preemptor, overrides, want) in cases {
            let mut snap = snapshot(nodes);
            snap.pdbs = pdbs;
            let pl = plugin(DefaultPreemptionArgs::default(), 0);
            let (r, s) = attempt(&pl, &snap, &Nominated::default(), &preemptor, &overrides);
            match want {
                Ok((node, victims)) => {
                    assert!(s.is_success(), "{name}: {s:?}");
                    let r = r.expect("result");
                    assert_eq!(r.nominated_node, node, "{name}");
                    assert_eq!(names(&r.victims), victims, "{name}");
                }
                Err((code, msg)) => {
                    assert_eq!((s.code(), s.message().as_str()), (code, msg), "{name}");
                    if code == Code::Unschedulable {
                        let r = r.expect("an empty nomination");
                        assert!(
                            r.nominated_node.is_empty() && r.victims.is_empty(),
                            "{name}"
                        );
                    } else {
                        assert!(r.is_none(), "{name}");
                    }
                }
            }
        }
    }

    #[test]
    fn ties_go_to_the_first_node_simulated_from_the_offset() {
        let snap = snapshot(vec![
            n("a", 1000, &[p("a1", 1, 1000)]),
            n("b", 1000, &[p("b1", 1, 1000)]),
        ]);
        for (offset, want) in [(0, "a"), (1, "b"), (2, "a")] {
            let pl = plugin(DefaultPreemptionArgs::default(), offset);
            let (r, s) = attempt(&pl, &snap, &Nominated::default(), &p("hi", 10, 500), &[]);
            assert!(s.is_success());
            assert_eq!(r.unwrap().nominated_node, want, "offset {offset}");
        }
    }

    #[test]
    fn the_dry_run_stops_once_enough_candidates_are_found() {
        // 40 nodes; only node 30's victim has the lowest priority
        let nodes = (0..40)
            .map(|i| {
                let prio = if i == 30 { 1 } else { 5 };
                n(
                    &format!("n{i:02}"),
                    1000,
                    &[p(&format!("v{i:02}"), prio, 1000)],
                )
            })
            .collect();
        let snap = snapshot(nodes);
        let one = DefaultPreemptionArgs {
            min_candidate_nodes_percentage: 0,
            min_candidate_nodes_absolute: 1,
        };
        for (args, want) in [(DefaultPreemptionArgs::default(), "n30"), (one, "n00")] {
            let (r, _) = attempt(
                &plugin(args, 0),
                &snap,
                &Nominated::default(),
                &p("hi", 10, 500),
                &[],
            );
            assert_eq!(r.unwrap().nominated_node, want);
        }
    }

    #[test]
    fn lower_priority_nominations_on_the_chosen_node_are_cleared() {
        let snap = snapshot(vec![
            n("a", 1000, &[p("a1", 1, 1000)]),
            n("b", 1000, &[p("b5", 5, 1000)]),
        ]);
        let mut nominated = Nominated::default();
        nominated.add("a", p("low-on-a", 2, 0));
        nominated.add("a", p("high-on-a", 20, 0));
        nominated.add("a", p("equal-on-a", 10, 0));
        nominated.add("b", p("low-on-b", 2, 0));
        let (r, s) = attempt(
            &plugin(Default::default(), 0),
            &snap,
            &nominated,
            &p("hi", 10, 500),
            &[],
        );
        assert!(s.is_success());
        let r = r.unwrap();
        assert_eq!(
            (r.nominated_node.as_str(), names(&r.victims)),
            ("a", vec!["a1"])
        );
        assert_eq!(names(&r.clear_nominations), ["low-on-a"]);
    }

    #[test]
    fn eligibility_follows_policy_and_terminating_victims() {
        let terminating = |name: &str, prio: i32, reason: &str| {
            pj(
                name,
                prio,
                0,
                json!({
                    "metadata": {"deletionTimestamp": EARLY},
                    "status": {"conditions": [{"type": DISRUPTION_TARGET, "status": "True", "reason": reason}]}
                }),
            )
        };
        let never = pj("p", 10, 0, json!({"spec": {"preemptionPolicy": "Never"}}));
        let plain = p("p", 10, 0);
        let cases = [
            (
                "policy Never",
                vec![],
                &never,
                None,
                None,
                Err(ERR_PREEMPTION_NEVER),
            ),
            ("nothing nominated", vec![], &plain, None, None, Ok(())),
            (
                "a victim is still terminating",
                vec![terminating("t", 1, REASON_PREEMPTION_BY_SCHEDULER)],
                &plain,
                Some("a"),
                None,
                Err(ERR_TERMINATING_ON_NOMINATED),
            ),
            (
                "the nominated node cannot be helped any more",
                vec![terminating("t", 1, REASON_PREEMPTION_BY_SCHEDULER)],
                &plain,
                Some("a"),
                Some(Code::UnschedulableAndUnresolvable),
                Ok(()),
            ),
            (
                "terminating for another reason",
                vec![terminating("t", 1, "DeletionByTaintManager")],
                &plain,
                Some("a"),
                None,
                Ok(()),
            ),
            (
                "a higher-priority pod terminating",
                vec![terminating("t", 20, REASON_PREEMPTION_BY_SCHEDULER)],
                &plain,
                Some("a"),
                None,
                Ok(()),
            ),
        ];
        for (name, pods, pod, nominated, nominated_code, want) in cases {
            let snap = snapshot(vec![n("a", 1000, &pods)]);
            // PostFilter runs after every node was rejected
            let mut statuses = NodeToStatus::default();
            let code = nominated_code.unwrap_or(Code::Unschedulable);
            statuses.set("a", Status::new(code, ["x"]));
            let got = pod_eligible_to_preempt_others(pod, nominated, &statuses, &snap);
            assert_eq!(got, want, "{name}");
        }
        let snap = snapshot(vec![n("a", 1000, &[p("lo", 1, 1000)])]);
        let (r, s) = attempt(
            &plugin(Default::default(), 0),
            &snap,
            &Nominated::default(),
            &pj("p", 10, 500, json!({"spec": {"preemptionPolicy": "Never"}})),
            &[],
        );
        assert!(r.is_none());
        assert_eq!(s.code(), Code::Unschedulable);
        assert_eq!(
            s.message(),
            "preemption: not eligible due to preemptionPolicy=Never."
        );
    }

    #[test]
    fn args_default_validate_and_size_the_dry_run() {
        let handle = Handle::default();
        let cases = [
            (json!(null), Ok((10, 100))),
            (json!({"minCandidateNodesPercentage": 0}), Ok((0, 100))),
            (json!({"minCandidateNodesPercentage": 101}),
             Err("minCandidateNodesPercentage: Invalid value: 101: not in valid range [0, 100]".to_string())),
            (json!({"minCandidateNodesAbsolute": -1}),
             Err("minCandidateNodesAbsolute: Invalid value: -1: not in valid range [0, inf)".to_string())),
            (json!({"minCandidateNodesPercentage": 0, "minCandidateNodesAbsolute": 0}),
             Err("[minCandidateNodesPercentage: Invalid value: 0: cannot be zero at the same time as minCandidateNodesAbsolute, minCandidateNodesAbsolute: Invalid value: 0: cannot be zero at the same time as minCandidateNodesPercentage]".to_string())),
        ];
        for (args, want) in cases {
            let parsed: Result<DefaultPreemptionArgs, String> = parse_args(NAME, &args);
            let got = parsed.and_then(|a| a.validate().map(|()| a)).map(|a| {
                (
                    a.min_candidate_nodes_percentage,
                    a.min_candidate_nodes_absolute,
                )
            });
            assert_eq!(got, want, "{args}");
            assert_eq!(new(&args, &handle).is_ok(), want.is_ok(), "{args}");
        }
        assert!(new(&json!({"bogus": 1}), &handle).is_err());
        let d = DefaultPreemptionArgs::default();
        let pct = |p, a| DefaultPreemptionArgs {
            min_candidate_nodes_percentage: p,
            min_candidate_nodes_absolute: a,
        };
        for (args, nodes, want) in [
            (&d, 50, 50),
            (&d, 5000, 500),
            (&pct(0, 1), 40, 1),
            (&pct(50, 0), 40, 20),
        ] {
            assert_eq!(args.num_candidates(nodes), want, "{args:?} of {nodes}");
        }
    }
}
