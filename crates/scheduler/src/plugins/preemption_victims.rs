//! Preemption's per-node simulation, upstream's `DefaultPreemption.SelectVictimsOnNode` and the
//! helpers it relies on (`filterPodsWithPDBViolation`, `util.MoreImportantPod`).
//!
//! On a private copy of a node and of the cycle state, every pod of lower priority than the
//! preemptor is removed (through the PreFilter extensions' `remove_pod`, so that plugin state
//! such as inter-pod affinity counts follows). If the preemptor still does not pass the filters,
//! the node is no candidate. Otherwise the removed pods are given back one at a time, most
//! important first and those whose eviction would break a PodDisruptionBudget before the others,
//! and each that still lets the preemptor fit is spared. The pods not spared are the victims.
//! Nothing here changes the cluster: the caller gets the victims and decides.
//!
//! It also holds the rest of upstream's `Evaluator` that does not touch the API: the dry run
//! over the potential nodes (`DryRunPreemption`) and the ranking of the candidates it finds
//! (`pickOneNodeForPreemption`).

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use rayon::prelude::*;
use rkube_api::selector::LabelSelector;

use crate::framework::{
    Code, CycleState, Framework, NodeInfo, NodeToStatus, Nominated, PodInfo, Snapshot, Status,
};

/// Upstream's status for a node without any pod of lower priority than the preemptor.
pub const NO_VICTIMS_FOUND: &str = "No preemption victims found for incoming pod";

/// A PodDisruptionBudget reduced to what preemption reads, its selector parsed once per
/// preemption attempt rather than once per node.
#[derive(Clone, Debug)]
pub struct PdbInfo<'a> {
    namespace: &'a str,
    selector: LabelSelector,
    disruptions_allowed: i32,
    disrupted_pods: Option<&'a BTreeMap<String, Time>>,
}

/// The budgets that can match a pod. Budgets with an invalid, missing or empty selector match no
/// pod upstream, so they are dropped here once.
pub fn compile_pdbs(pdbs: &[Arc<PodDisruptionBudget>]) -> Vec<PdbInfo<'_>> {
    pdbs.iter()
        .filter_map(|pdb| {
            let selector = pdb.spec.as_ref().and_then(|s| s.selector.as_ref());
            let selector = LabelSelector::from_typed(selector).ok()?;
            if selector.is_empty() || selector.matches_nothing() {
                return None;
            }
            let status = pdb.status.as_ref();
            Some(PdbInfo {
                namespace: pdb.metadata.namespace.as_deref().unwrap_or(""),
                selector,
                disruptions_allowed: status.map_or(0, |s| s.disruptions_allowed),
                disrupted_pods: status.and_then(|s| s.disrupted_pods.as_ref()),
            })
        })
        .collect()
}

/// Splits `pods` (order kept) into those whose eviction would violate a budget and the others,
/// as upstream's `filterPodsWithPDBViolation`: each pod takes one disruption from every budget
/// that selects it (unless the budget already lists it in `disruptedPods`, meaning the API server
/// has counted its eviction), and violates once a budget's allowance drops below zero. Budgets
/// are shared, so of two pods under a budget allowing one disruption only the second violates.
pub fn split_by_pdb_violation(
    pods: Vec<Arc<PodInfo>>,
    pdbs: &[PdbInfo<'_>],
) -> (Vec<Arc<PodInfo>>, Vec<Arc<PodInfo>>) {
    let mut allowed: Vec<i32> = pdbs.iter().map(|p| p.disruptions_allowed).collect();
    let mut violating = Vec::new();
    let mut non_violating = Vec::new();
    for pod in pods {
        let mut violated = false;
        // a pod without labels matches no budget
        if !pod.labels.is_empty() {
            for (i, pdb) in pdbs.iter().enumerate() {
                if pdb.namespace != pod.namespace || !pdb.selector.matches(&pod.labels) {
                    continue;
                }
                if pdb
                    .disrupted_pods
                    .is_some_and(|d| d.contains_key(&pod.name))
                {
                    continue;
                }
                allowed[i] -= 1;
                if allowed[i] < 0 {
                    violated = true;
                }
            }
        }
        if violated {
            violating.push(pod);
        } else {
            non_violating.push(pod);
        }
    }
    (violating, non_violating)
}

/// `status.startTime`, or the latest possible time for a pod not started yet (upstream uses "now",
/// which is later than any real start).
pub fn start_time(pod: &PodInfo) -> Timestamp {
    pod.pod
        .status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .map_or(Timestamp::MAX, |t| t.0)
}

/// Upstream's `MoreImportantPod` as an ordering: higher priority first, then the longer-running
/// (earlier started) pod.
pub fn importance_order(a: &PodInfo, b: &PodInfo) -> Ordering {
    b.priority
        .cmp(&a.priority)
        .then_with(|| start_time(a).cmp(&start_time(b)))
}

/// The pods to evict from one node and how many of them break a budget.
#[derive(Clone, Debug, Default)]
pub struct Victims {
    /// Most important first.
    pub pods: Vec<Arc<PodInfo>>,
    /// How many of `pods` violate a PodDisruptionBudget.
    pub num_pdb_violations: usize,
}

/// What the simulation runs against.
#[derive(Clone, Copy, Debug)]
pub struct VictimSearch<'a> {
    /// The profile whose filters decide whether the preemptor fits.
    pub framework: &'a Framework,
    /// The cluster.
    pub snapshot: &'a Snapshot,
    /// Pods nominated to nodes; those of at least the preemptor's priority keep their space.
    pub nominated: &'a Nominated,
    /// The budgets, from [`compile_pdbs`].
    pub pdbs: &'a [PdbInfo<'a>],
}

/// The smallest set of lower-priority pods to evict from `node` for `pod` to fit, computed on
/// the given copies of the node and the cycle state. An error status is the node's verdict:
/// UnschedulableAndUnresolvable when no pod there has lower priority, the filters' own rejection
/// when the pod does not fit even without them, Error when a PreFilter extension fails.
pub fn select_victims_on_node(
    search: &VictimSearch<'_>,
    mut state: CycleState,
    pod: &PodInfo,
    mut node: NodeInfo,
) -> Result<Victims, Status> {
    let fw = search.framework;
    let snapshot = search.snapshot;
    let mut potential: Vec<Arc<PodInfo>> = node
        .pods
        .iter()
        .filter(|p| p.priority < pod.priority)
        .cloned()
        .collect();
    if potential.is_empty() {
        return Err(Status::unresolvable(NO_VICTIMS_FOUND));
    }
    for victim in &potential {
        remove(fw, &mut state, pod, &mut node, victim, snapshot)?;
    }
    // Without every lower-priority pod the preemptor must fit; a failure caused by affinity to
    // one of them is deliberately not examined, as upstream (such affinity is discouraged).
    let fits = fw.run_filter_with_nominated(&state, pod, &node, search.nominated, snapshot);
    if !fits.is_success() {
        return Err(fits);
    }
    potential.sort_by(|a, b| importance_order(a, b));
    let (violating, non_violating) = split_by_pdb_violation(potential, search.pdbs);
    let mixed = !violating.is_empty() && !non_violating.is_empty();
    let mut victims = Vec::new();
    let mut num_pdb_violations = 0;
    // Budget-violating pods are reprieved first so that as few of them as possible are evicted;
    // within each group the most important first.
    for (group_violates, group) in [(true, violating), (false, non_violating)] {
        for candidate in group {
            node.add_pod(Arc::clone(&candidate));
            let s = fw.run_pre_filter_add_pod(&mut state, pod, &candidate, &node, snapshot);
            if !s.is_success() {
                return Err(Status::error(s.message()));
            }
            let still_fits = fw
                .run_filter_with_nominated(&state, pod, &node, search.nominated, snapshot)
                .is_success();
            if !still_fits {
                remove(fw, &mut state, pod, &mut node, &candidate, snapshot)?;
                victims.push(candidate);
                if group_violates {
                    num_pdb_violations += 1;
                }
            }
        }
    }
    if mixed {
        victims.sort_by(|a, b| importance_order(a, b));
    }
    Ok(Victims {
        pods: victims,
        num_pdb_violations,
    })
}

/// Takes `victim` off the copied node and out of the copied cycle state.
fn remove(
    fw: &Framework,
    state: &mut CycleState,
    pod: &PodInfo,
    node: &mut NodeInfo,
    victim: &Arc<PodInfo>,
    snapshot: &Snapshot,
) -> Result<(), Status> {
    if node.remove_pod(&victim.uid).is_none() {
        return Err(Status::error(format!(
            "no corresponding pod {} in pods of node {}",
            victim.name, node.name
        )));
    }
    let s = fw.run_pre_filter_remove_pod(state, pod, victim, node, snapshot);
    if s.is_success() {
        Ok(())
    } else {
        Err(Status::error(s.message()))
    }
}

/// Upstream's smallest batch of nodes simulated at once (its parallelism); more are simulated
/// together when more candidates are still wanted.
const MIN_DRY_RUN_BATCH: usize = 16;

/// A node where the preemptor fits once its victims are gone.
#[derive(Clone, Debug)]
pub struct Candidate {
    /// The node.
    pub node: String,
    /// Its victims, most important first.
    pub victims: Victims,
}

/// The outcome of simulating preemption on the potential nodes.
#[derive(Debug, Default)]
pub struct DryRun {
    /// Candidates without budget violations first.
    pub candidates: Vec<Candidate>,
    /// The verdict of every simulated node that is no candidate.
    pub statuses: NodeToStatus,
    /// Internal errors met.
    pub errors: Vec<String>,
}

/// Upstream's `DryRunPreemption`: simulates preemption on `potential` nodes from `offset` on,
/// in parallel batches, until `num` candidates are found of which at least one violates no
/// budget. Batches keep the outcome deterministic for a given offset.
pub fn dry_run(
    search: &VictimSearch<'_>,
    state: &CycleState,
    pod: &PodInfo,
    potential: &[&Arc<NodeInfo>],
    offset: usize,
    num: usize,
) -> DryRun {
    let n = potential.len();
    let mut non_violating: Vec<Candidate> = Vec::new();
    let mut violating: Vec<Candidate> = Vec::new();
    let mut run = DryRun::default();
    let mut next = 0;
    while next < n {
        let found = non_violating.len() + violating.len();
        let batch = num
            .saturating_sub(found)
            .max(MIN_DRY_RUN_BATCH)
            .min(n - next);
        let results: Vec<(&str, Result<Victims, Status>)> = (next..next + batch)
            .into_par_iter()
            .map(|i| {
                let node = potential[(offset + i) % n];
                let r = select_victims_on_node(search, state.clone(), pod, (**node).clone());
                (node.name.as_str(), r)
            })
            .collect();
        next += batch;
        for (name, r) in results {
            let status = match r {
                Ok(victims) if !victims.pods.is_empty() => {
                    let list = if victims.num_pdb_violations == 0 {
                        &mut non_violating
                    } else {
                        &mut violating
                    };
                    if list.len() < num {
                        list.push(Candidate {
                            node: name.to_string(),
                            victims,
                        });
                    }
                    continue;
                }
                // the filters rejected the node, yet it fits without evicting anything
                Ok(_) => {
                    Status::error(format!("expected at least one victim pod on node {name:?}"))
                }
                Err(s) => s,
            };
            if status.code() == Code::Error {
                run.errors.push(status.message());
            }
            run.statuses.set(name, status);
        }
        if !non_violating.is_empty() && non_violating.len() + violating.len() >= num {
            break;
        }
    }
    non_violating.append(&mut violating);
    run.candidates = non_violating;
    run
}

/// Upstream's `pickOneNodeForPreemption` with its default criteria, each applied only to the
/// candidates tied on the previous ones: fewest budget violations, lowest highest-victim
/// priority, smallest sum of victim priorities, fewest victims, latest start among the
/// highest-priority victims, then the first. Returns an index into `candidates`.
pub fn pick_one_node_for_preemption(candidates: &[Candidate]) -> Option<usize> {
    type ScoreFn = fn(&Victims) -> i128;
    const CRITERIA: [ScoreFn; 5] = [
        |v| -(v.num_pdb_violations as i128),
        |v| -v.pods.first().map_or(0, |p| i128::from(p.priority)),
        // Shifting every priority to be non-negative keeps a node with a few negative-priority
        // victims from beating one with fewer victims of the same priority.
        |v| {
            -v.pods
                .iter()
                .map(|p| i128::from(p.priority) + (1i128 << 31))
                .sum::<i128>()
        },
        |v| -(v.pods.len() as i128),
        |v| earliest_start_of_highest_priority(v),
    ];
    let mut tied: Vec<usize> = (0..candidates.len()).collect();
    for score in CRITERIA {
        if tied.len() <= 1 {
            break;
        }
        let scores: Vec<i128> = tied
            .iter()
            .map(|i| score(&candidates[*i].victims))
            .collect();
        let Some(best) = scores.iter().copied().max() else {
            break;
        };
        tied = tied
            .iter()
            .zip(&scores)
            .filter(|(_, s)| **s == best)
            .map(|(i, _)| *i)
            .collect();
    }
    tied.first().copied()
}

/// Upstream's `GetEarliestPodStartTime` in nanoseconds: the earliest start among the victims of
/// the highest priority (a later one is better: those pods have run the shortest).
fn earliest_start_of_highest_priority(v: &Victims) -> i128 {
    let Some(top) = v.pods.iter().map(|p| p.priority).max() else {
        return i128::MIN;
    };
    v.pods
        .iter()
        .filter(|p| p.priority == top)
        .map(|p| start_time(p).as_nanosecond())
        .min()
        .unwrap_or(i128::MIN)
}

/// Filter plugins for preemption tests: `CpuFit` checks CPU as NodeResourcesFit does; `Exclusive`
/// keeps `exclusive`-labelled pods apart using only its PreFilter state, so that a test fails if
/// preemption does not keep that state current.
#[cfg(test)]
pub(crate) mod test_plugins {
    use std::collections::HashMap;
    use std::sync::Arc;

    use crate::framework::runtime::ExtensionPoint;
    use crate::framework::{
        CycleState, FilterPlugin, Framework, NodeInfo, Plugin, PodInfo, PreFilterPlugin,
        PreFilterResult, Snapshot, Status,
    };

    /// Rejects a pod that would over-commit the node's CPU, as NodeResourcesFit does.
    pub struct CpuFit;
    impl Plugin for CpuFit {
        fn name(&self) -> &'static str {
            "CpuFit"
        }
        fn as_filter(&self) -> Option<&dyn FilterPlugin> {
            Some(self)
        }
    }
    impl FilterPlugin for CpuFit {
        fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
            if node.requested.milli_cpu + pod.requests.milli_cpu > node.allocatable.milli_cpu {
                Status::unschedulable("Insufficient cpu")
            } else {
                Status::success()
            }
        }
    }

    /// An `exclusive` pod shares no node with another: a filter that reads only its PreFilter
    /// state, so preemption must keep that state current through `add_pod`/`remove_pod`.
    pub struct Exclusive;
    const EXCLUSIVE_KEY: &str = "PreFilterExclusive";
    #[derive(Clone)]
    pub struct ExclusiveCount(HashMap<String, i32>);
    pub fn is_exclusive(p: &PodInfo) -> bool {
        p.labels.contains_key("exclusive")
    }
    impl Plugin for Exclusive {
        fn name(&self) -> &'static str {
            "Exclusive"
        }
        fn as_pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
            Some(self)
        }
        fn as_filter(&self) -> Option<&dyn FilterPlugin> {
            Some(self)
        }
    }
    impl PreFilterPlugin for Exclusive {
        fn pre_filter(
            &self,
            state: &mut CycleState,
            _: &PodInfo,
            snapshot: &Snapshot,
        ) -> (Option<PreFilterResult>, Status) {
            let counts = snapshot
                .nodes()
                .iter()
                .map(|n| {
                    (
                        n.name.clone(),
                        n.pods.iter().filter(|p| is_exclusive(p)).count() as i32,
                    )
                })
                .collect();
            state.write(EXCLUSIVE_KEY, ExclusiveCount(counts));
            (None, Status::success())
        }
        fn add_pod(
            &self,
            state: &mut CycleState,
            _: &PodInfo,
            added: &Arc<PodInfo>,
            node: &NodeInfo,
            _: &Snapshot,
        ) -> Status {
            if let Some(c) = state.read_mut::<ExclusiveCount>(EXCLUSIVE_KEY) {
                *c.0.entry(node.name.clone()).or_default() += i32::from(is_exclusive(added));
            }
            Status::success()
        }
        fn remove_pod(
            &self,
            state: &mut CycleState,
            _: &PodInfo,
            removed: &Arc<PodInfo>,
            node: &NodeInfo,
            _: &Snapshot,
        ) -> Status {
            if let Some(c) = state.read_mut::<ExclusiveCount>(EXCLUSIVE_KEY) {
                *c.0.entry(node.name.clone()).or_default() -= i32::from(is_exclusive(removed));
            }
            Status::success()
        }
    }
    impl FilterPlugin for Exclusive {
        fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
            if !is_exclusive(pod) {
                return Status::success();
            }
            match state.read::<ExclusiveCount>(EXCLUSIVE_KEY) {
                None => Status::error("no Exclusive state"),
                Some(c) if c.0.get(&node.name).copied().unwrap_or(0) > 0 => {
                    Status::unschedulable("node(s) had exclusive pods")
                }
                Some(_) => Status::success(),
            }
        }
    }

    /// A profile with both.
    pub fn framework() -> Framework {
        let mut fw = Framework::new("default-scheduler");
        let ex: Arc<dyn Plugin> = Arc::new(Exclusive);
        fw.enable(ExtensionPoint::PreFilter, ex.clone(), 0).unwrap();
        fw.enable(ExtensionPoint::Filter, Arc::new(CpuFit), 0)
            .unwrap();
        fw.enable(ExtensionPoint::Filter, ex, 0).unwrap();
        fw
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::plugins::testing::pod;

    const EARLY: &str = "2024-01-01T00:00:00Z";
    const LATE: &str = "2024-06-01T00:00:00Z";

    fn p(name: &str, prio: i32) -> Arc<PodInfo> {
        pod(json!({"metadata": {"name": name}, "spec": {"priority": prio}}))
    }

    fn started(name: &str, prio: i32, at: &str) -> Arc<PodInfo> {
        pod(
            json!({"metadata": {"name": name}, "spec": {"priority": prio}, "status": {"startTime": at}}),
        )
    }

    fn pdb(v: serde_json::Value) -> Arc<PodDisruptionBudget> {
        Arc::new(serde_json::from_value(v).expect("valid pdb"))
    }

    fn labelled(name: &str, ns: &str, app: &str) -> Arc<PodInfo> {
        pod(json!({"metadata": {"name": name, "namespace": ns, "labels": {"app": app}}}))
    }

    fn names(pods: &[Arc<PodInfo>]) -> Vec<&str> {
        pods.iter().map(|p| p.name.as_str()).collect()
    }

    #[test]
    fn pods_violate_once_their_budget_is_used_up() {
        let budget = |allowed: i32, disrupted: serde_json::Value| {
            pdb(json!({
                "metadata": {"name": "b", "namespace": "default"},
                "spec": {"selector": {"matchLabels": {"app": "web"}}},
                "status": {"disruptionsAllowed": allowed, "currentHealthy": 0, "desiredHealthy": 0,
                           "expectedPods": 0, "disruptedPods": disrupted}
            }))
        };
        let pods = || {
            vec![
                labelled("w1", "default", "web"),
                labelled("w2", "default", "web"),
                labelled("db", "default", "db"),
                labelled("other-ns", "prod", "web"),
                pod(json!({"metadata": {"name": "unlabelled"}})),
            ]
        };
        type Row<'a> = (&'a str, Vec<Arc<PodDisruptionBudget>>, Vec<&'a str>);
        let cases: [Row; 6] = [
            ("no budgets", vec![], vec![]),
            ("none allowed", vec![budget(0, json!({}))], vec!["w1", "w2"]),
            (
                "one allowed: the second violates",
                vec![budget(1, json!({}))],
                vec!["w2"],
            ),
            ("two allowed", vec![budget(2, json!({}))], vec![]),
            (
                "an already disrupted pod takes no allowance",
                vec![budget(0, json!({"w1": "2024-01-01T00:00:00Z"}))],
                vec!["w2"],
            ),
            (
                "an empty selector matches nothing",
                vec![pdb(json!({
                    "metadata": {"name": "e", "namespace": "default"},
                    "spec": {"selector": {}},
                    "status": {"disruptionsAllowed": 0, "currentHealthy": 0,
                               "desiredHealthy": 0, "expectedPods": 0}
                }))],
                vec![],
            ),
        ];
        for (name, budgets, want) in cases {
            let compiled = compile_pdbs(&budgets);
            let (violating, non_violating) = split_by_pdb_violation(pods(), &compiled);
            assert_eq!(names(&violating), want, "{name}");
            assert_eq!(violating.len() + non_violating.len(), 5, "{name}");
        }
    }

    #[test]
    fn importance_is_priority_then_earlier_start() {
        let p = |name: &str, prio: i32, start: Option<&str>| {
            let status = start.map_or(json!({}), |s| json!({"startTime": s}));
            pod(json!({"metadata": {"name": name}, "spec": {"priority": prio}, "status": status}))
        };
        let mut pods = vec![
            p("low", 1, Some("2024-01-01T00:00:00Z")),
            p("high-unstarted", 5, None),
            p("high-new", 5, Some("2024-06-01T00:00:00Z")),
            p("high-old", 5, Some("2024-01-01T00:00:00Z")),
        ];
        pods.sort_by(|a, b| importance_order(a, b));
        assert_eq!(
            names(&pods),
            ["high-old", "high-new", "high-unstarted", "low"]
        );
    }

    #[test]
    fn candidates_are_ranked_by_upstream_criteria_in_order() {
        let c = |node: &str, violations: usize, victims: Vec<Arc<PodInfo>>| Candidate {
            node: node.into(),
            victims: Victims {
                pods: victims,
                num_pdb_violations: violations,
            },
        };
        let cases = [
            (
                "fewest budget violations",
                vec![c("a", 1, vec![p("a", 1)]), c("b", 0, vec![p("b", 9)])],
                "b",
            ),
            (
                "lowest highest priority",
                vec![
                    c("a", 0, vec![p("a", 9)]),
                    c("b", 0, vec![p("b", 8), p("b2", 7)]),
                ],
                "b",
            ),
            (
                "smallest sum",
                vec![
                    c("a", 0, vec![p("a", 5), p("a2", 4)]),
                    c("b", 0, vec![p("b", 5), p("b2", 3)]),
                ],
                "b",
            ),
            // the same shifted sum: 5 + 2^31 either way
            (
                "fewest victims",
                vec![
                    c("a", 0, vec![p("a", 5), p("a2", i32::MIN)]),
                    c("b", 0, vec![p("b", 5)]),
                ],
                "b",
            ),
            (
                "latest start",
                vec![
                    c("a", 0, vec![started("a", 5, EARLY)]),
                    c("b", 0, vec![started("b", 5, LATE)]),
                ],
                "b",
            ),
            (
                "never started counts as latest",
                vec![
                    c("a", 0, vec![started("a", 5, LATE)]),
                    c("b", 0, vec![p("b", 5)]),
                ],
                "b",
            ),
            (
                "then the first",
                vec![c("a", 0, vec![p("a", 5)]), c("b", 0, vec![p("b", 5)])],
                "a",
            ),
        ];
        for (name, candidates, want) in cases {
            let i = pick_one_node_for_preemption(&candidates).expect("a candidate");
            assert_eq!(candidates[i].node, want, "{name}");
        }
        assert_eq!(pick_one_node_for_preemption(&[]), None);
    }
}
