//! PreScore, Score and NormalizeScore: upstream's `scoring.go`. PreScore sums weights per
//! topology pair over the existing pods; Score adds up the node's pairs.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rayon::prelude::*;

use super::{missing, ns_labels_of, resolve_weighted, InterPodAffinity, NO_LABELS, PRE_SCORE_KEY};
use crate::framework::types::{AffinityTerm, WeightedAffinityTerm};
use crate::framework::{
    CycleState, NodeInfo, PodInfo, PreScorePlugin, ScorePlugin, Snapshot, Status, MAX_NODE_SCORE,
};

/// Score per topology pair; unlike [`TopologyCounts`](super::TopologyCounts), zero entries
/// stay (a pair that was touched still makes NormalizeScore scale).
#[derive(Clone, Debug, Default)]
struct ScoreMap(HashMap<String, HashMap<String, i64>>);

impl ScoreMap {
    /// Adds `weight` to the pair of `term`'s key on a node with `node_labels`, if it has it.
    fn add(&mut self, node_labels: &BTreeMap<String, String>, term: &AffinityTerm, weight: i64) {
        let Some(value) = node_labels.get(&term.topology_key) else {
            return;
        };
        if !self.0.contains_key(&term.topology_key) {
            self.0.insert(term.topology_key.clone(), HashMap::new());
        }
        let Some(values) = self.0.get_mut(&term.topology_key) else {
            return;
        };
        match values.get_mut(value) {
            Some(c) => *c += weight,
            None => {
                values.insert(value.clone(), weight);
            }
        }
    }

    fn merge(mut self, other: ScoreMap) -> ScoreMap {
        for (k, values) in other.0 {
            let mine = self.0.entry(k).or_default();
            for (v, c) in values {
                *mine.entry(v).or_default() += c;
            }
        }
        self
    }
}

/// What PreScore computes for Score.
#[derive(Clone, Debug)]
struct PreScoreState {
    topology_score: Arc<ScoreMap>,
}

/// The incoming pod's side of scoring, resolved once per cycle.
struct ScoreInputs<'a> {
    pod: &'a PodInfo,
    preferred_affinity: Vec<WeightedAffinityTerm>,
    preferred_anti_affinity: Vec<WeightedAffinityTerm>,
    ns_labels: &'a BTreeMap<String, String>,
}

impl InterPodAffinity {
    /// Upstream's `processExistingPod`.
    fn process_existing_pod(
        &self,
        inputs: &ScoreInputs<'_>,
        existing: &PodInfo,
        node_labels: &BTreeMap<String, String>,
        out: &mut ScoreMap,
    ) {
        if node_labels.is_empty() {
            return;
        }
        for (terms, sign) in [
            (&inputs.preferred_affinity, 1),
            (&inputs.preferred_anti_affinity, -1),
        ] {
            for w in terms {
                if w.term.matches(existing, Some(&NO_LABELS)) {
                    out.add(node_labels, &w.term, sign * i64::from(w.weight));
                }
            }
        }
        let hard = i64::from(self.args.hard_pod_affinity_weight);
        if hard > 0 {
            for t in &existing.required_affinity {
                if t.matches(inputs.pod, Some(inputs.ns_labels)) {
                    out.add(node_labels, t, hard);
                }
            }
        }
        // Existing pods' preferences count even with ignorePreferredTermsOfExistingPods:
        // that option only skips scoring pods without preferences of their own (PreScore).
        for (terms, sign) in [
            (&existing.preferred_affinity, 1),
            (&existing.preferred_anti_affinity, -1),
        ] {
            for w in terms {
                if w.term.matches(inputs.pod, Some(inputs.ns_labels)) {
                    out.add(node_labels, &w.term, sign * i64::from(w.weight));
                }
            }
        }
    }
}

impl PreScorePlugin for InterPodAffinity {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        nodes: &[&NodeInfo],
        snapshot: &Snapshot,
    ) -> Status {
        if nodes.is_empty() {
            return Status::skip();
        }
        let has_constraints =
            !pod.preferred_affinity.is_empty() || !pod.preferred_anti_affinity.is_empty();
        if !has_constraints
            && (self.args.ignore_preferred_terms_of_existing_pods
                || snapshot.nodes_with_affinity_pods().next().is_none())
        {
            return Status::skip();
        }
        let inputs = ScoreInputs {
            pod,
            preferred_affinity: resolve_weighted(&pod.preferred_affinity, snapshot),
            preferred_anti_affinity: resolve_weighted(&pod.preferred_anti_affinity, snapshot),
            ns_labels: ns_labels_of(snapshot, &pod.namespace),
        };
        // Every node's pods count, not only the feasible nodes': a matching pod raises its
        // whole topology domain. Without preferred terms of its own, only pods with affinity
        // can contribute.
        let scores = snapshot
            .nodes()
            .par_iter()
            .with_min_len(64)
            .fold(ScoreMap::default, |mut acc, n| {
                let pods = if has_constraints {
                    &n.pods
                } else {
                    &n.pods_with_affinity
                };
                for e in pods {
                    self.process_existing_pod(&inputs, e, &n.labels, &mut acc);
                }
                acc
            })
            .reduce(ScoreMap::default, ScoreMap::merge);
        if scores.0.is_empty() {
            return Status::skip();
        }
        state.write(
            PRE_SCORE_KEY,
            PreScoreState {
                topology_score: Arc::new(scores),
            },
        );
        Status::success()
    }
}

impl ScorePlugin for InterPodAffinity {
    fn score(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> (i64, Status) {
        let Some(s) = state.read::<PreScoreState>(PRE_SCORE_KEY) else {
            return (0, missing(PRE_SCORE_KEY));
        };
        let score = s
            .topology_score
            .0
            .iter()
            .filter_map(|(k, values)| node.labels.get(k).and_then(|v| values.get(v)))
            .sum();
        (score, Status::success())
    }

    fn normalize_scores(&self, state: &CycleState, _pod: &PodInfo, scores: &mut [i64]) -> Status {
        let Some(s) = state.read::<PreScoreState>(PRE_SCORE_KEY) else {
            return missing(PRE_SCORE_KEY);
        };
        if s.topology_score.0.is_empty() {
            return Status::success();
        }
        let (Some(min), Some(max)) = (scores.iter().min().copied(), scores.iter().max().copied())
        else {
            return Status::success();
        };
        let diff = max - min;
        for v in scores.iter_mut() {
            *v = if diff > 0 {
                // Truncating, as upstream's int64(float64) conversion.
                (MAX_NODE_SCORE as f64 * ((*v - min) as f64 / diff as f64)) as i64
            } else {
                0
            };
        }
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{both, cluster, pd, plain, pref, req, term, HOST, ZONE};
    use super::super::InterPodAffinityArgs;
    use super::*;

    /// Normalised scores per node, or `None` when PreScore skips.
    fn scores(args: InterPodAffinityArgs, pod: &PodInfo, snap: &Snapshot) -> Option<Vec<i64>> {
        let pl = InterPodAffinity::new(args).expect("valid");
        let mut state = CycleState::new();
        let nodes: Vec<&NodeInfo> = snap.nodes().iter().map(|n| &**n).collect();
        let s = pl.pre_score(&mut state, pod, &nodes, snap);
        if s.is_skip() {
            return None;
        }
        assert!(s.is_success(), "{s}");
        let mut out: Vec<i64> = nodes.iter().map(|n| pl.score(&state, pod, n).0).collect();
        assert!(pl.normalize_scores(&state, pod, &mut out).is_success());
        Some(out)
    }

    #[test]
    fn score_ranks_by_preferred_terms_of_both_sides() {
        let args = |hard, ignore| InterPodAffinityArgs {
            hard_pod_affinity_weight: hard,
            ignore_preferred_terms_of_existing_pods: ignore,
        };
        // Prefers db pods in its zone (weight `aff`) and no web pod on its host (`anti`).
        let prefers = |aff, anti| {
            let a = pref("podAffinity", &[(aff, term("app=db", ZONE))]);
            let b = pref("podAntiAffinity", &[(anti, term("app=web", HOST))]);
            pd("in", "default", "app=web", both(a, b))
        };
        let web = || plain("in", "default", "app=web");
        let db = || plain("db", "default", "app=db");
        let needs_web = pd(
            "x",
            "default",
            "",
            req("podAffinity", &[term("app=web", ZONE)]),
        );
        let avoids_web = pd(
            "y",
            "default",
            "",
            pref("podAntiAffinity", &[(20, term("app=web", ZONE))]),
        );
        let db_and_web = vec![(0, db()), (1, plain("w", "default", "app=web"))];
        let avoider_and_db = vec![(0, avoids_web.clone()), (0, db())];
        let cases = [
            (
                "no affinity anywhere",
                args(1, false),
                vec![(0, db())],
                web(),
                None,
            ),
            (
                "incoming pod's preferences",
                args(1, false),
                db_and_web.clone(),
                prefers(10, 5),
                Some([100, 50, 0, 0]),
            ),
            (
                "scaled scores truncate",
                args(1, false),
                db_and_web,
                prefers(3, 1),
                Some([100, 66, 0, 0]),
            ),
            (
                "existing pod's required affinity weighs hardPodAffinityWeight",
                args(1, false),
                vec![(2, needs_web.clone())],
                web(),
                Some([0, 0, 100, 0]),
            ),
            (
                "hardPodAffinityWeight 0 ignores required affinity",
                args(0, false),
                vec![(2, needs_web)],
                web(),
                None,
            ),
            (
                "existing pod's preferred anti-affinity",
                args(1, false),
                vec![(0, avoids_web.clone())],
                web(),
                Some([0, 0, 100, 100]),
            ),
            (
                "ignoring existing pods' preferences skips a pod without its own",
                args(1, true),
                vec![(0, avoids_web)],
                web(),
                None,
            ),
            (
                "existing pods' preferences outweigh the incoming pod's",
                args(1, false),
                avoider_and_db.clone(),
                prefers(10, 1),
                Some([0, 0, 100, 100]),
            ),
            (
                "ignoring existing pods' preferences still counts them for a pod with its own",
                args(1, true),
                avoider_and_db,
                prefers(10, 1),
                Some([0, 0, 100, 100]),
            ),
        ];
        for (name, args, pods, incoming, want) in cases {
            let snap = cluster(&pods);
            assert_eq!(
                scores(args, &incoming, &snap),
                want.map(Vec::from),
                "{name}"
            );
        }
    }

    #[test]
    fn equal_scores_normalise_to_zero() {
        let pl = InterPodAffinity::new(InterPodAffinityArgs::default()).expect("valid");
        let incoming = pd(
            "in",
            "default",
            "",
            pref("podAffinity", &[(5, term("app=db", "nowhere"))]),
        );
        let snap = cluster(&[(0, plain("db", "default", "app=db"))]);
        let mut state = CycleState::new();
        let nodes: Vec<&NodeInfo> = snap.nodes().iter().map(|n| &**n).collect();
        // No node has the topology key: nothing to score.
        assert!(pl.pre_score(&mut state, &incoming, &nodes, &snap).is_skip());
        state.write(
            PRE_SCORE_KEY,
            PreScoreState {
                topology_score: Arc::new(ScoreMap(
                    [(ZONE.to_string(), [("z1".to_string(), 0)].into())].into(),
                )),
            },
        );
        let mut s = vec![7, 7, 7];
        assert!(pl.normalize_scores(&state, &incoming, &mut s).is_success());
        assert_eq!(s, [0, 0, 0]);
    }
}
