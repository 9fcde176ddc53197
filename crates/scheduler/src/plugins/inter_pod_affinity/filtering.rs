//! PreFilter and Filter: upstream's `filtering.go`. PreFilter counts matching pods per topology
//! pair once; Filter looks the node's labels up in the counts.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rayon::prelude::*;

use super::{
    missing, ns_labels_of, resolve_namespaces, InterPodAffinity,
    ERR_REASON_AFFINITY_RULES_NOT_MATCH, ERR_REASON_ANTI_AFFINITY_RULES_NOT_MATCH,
    ERR_REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH, NO_LABELS, PRE_FILTER_KEY,
};
use crate::framework::types::AffinityTerm;
use crate::framework::{
    CycleState, FilterPlugin, NodeInfo, PodInfo, PreFilterPlugin, PreFilterResult, Snapshot, Status,
};

/// Counts per topology pair, keyed by topology key then value so that lookups borrow the
/// node's label strings. Pairs whose count drops to zero are removed, as upstream's: the
/// first-pod rule asks whether any pair is left.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopologyCounts(HashMap<String, HashMap<String, i64>>);

impl TopologyCounts {
    /// Adds `delta` to the pair (`key`, the node's value of `key`), if the node has the label.
    fn add(&mut self, node_labels: &BTreeMap<String, String>, key: &str, delta: i64) {
        if let Some(value) = node_labels.get(key) {
            self.add_pair(key, value, delta);
        }
    }

    fn add_pair(&mut self, key: &str, value: &str, delta: i64) {
        // Lookups first: the strings are allocated only for a new pair.
        if !self.0.contains_key(key) {
            self.0.insert(key.to_owned(), HashMap::new());
        }
        let Some(values) = self.0.get_mut(key) else {
            return;
        };
        if !values.contains_key(value) {
            values.insert(value.to_owned(), 0);
        }
        if let Some(c) = values.get_mut(value) {
            *c += delta;
            if *c == 0 {
                values.remove(value);
            }
        }
        if values.is_empty() {
            self.0.remove(key);
        }
    }

    fn merge(mut self, other: TopologyCounts) -> TopologyCounts {
        for (k, values) in other.0 {
            for (v, c) in values {
                self.add_pair(&k, &v, c);
            }
        }
        self
    }

    /// The count of pair (`key`, `value`).
    pub fn get(&self, key: &str, value: &str) -> i64 {
        self.0
            .get(key)
            .and_then(|m| m.get(value))
            .copied()
            .unwrap_or(0)
    }

    /// Whether no pair has a count.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether any of the node's label pairs has a positive count.
    fn any_positive(&self, node_labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().any(|(k, values)| {
            node_labels
                .get(k)
                .and_then(|v| values.get(v))
                .is_some_and(|c| *c > 0)
        })
    }

    /// Upstream's `updateWithAffinityTerms`: each term's pair counts `pod` if it matches
    /// every term (the incoming pod's resolved terms).
    fn count_affinity(
        &mut self,
        terms: &[AffinityTerm],
        pod: &PodInfo,
        node_labels: &BTreeMap<String, String>,
        delta: i64,
    ) {
        if matches_all(terms, pod) {
            for t in terms {
                self.add(node_labels, &t.topology_key, delta);
            }
        }
    }

    /// Upstream's `updateWithAntiAffinityTerms`: each term that matches `pod` counts.
    fn count_anti_affinity(
        &mut self,
        terms: &[AffinityTerm],
        pod: &PodInfo,
        ns_labels: &BTreeMap<String, String>,
        node_labels: &BTreeMap<String, String>,
        delta: i64,
    ) {
        for t in terms {
            if t.matches(pod, Some(ns_labels)) {
                self.add(node_labels, &t.topology_key, delta);
            }
        }
    }
}

/// Whether `pod` matches every one of the incoming pod's resolved `terms` (false for none).
fn matches_all(terms: &[AffinityTerm], pod: &PodInfo) -> bool {
    !terms.is_empty() && terms.iter().all(|t| t.matches(pod, Some(&NO_LABELS)))
}

/// What PreFilter computes for Filter.
#[derive(Clone, Debug)]
pub struct PreFilterState {
    /// Pairs of existing pods whose required anti-affinity terms match the incoming pod.
    pub existing_anti_affinity: TopologyCounts,
    /// Pairs of existing pods matching all the incoming pod's required affinity terms.
    pub affinity: TopologyCounts,
    /// Pairs of existing pods matching the incoming pod's required anti-affinity terms.
    pub anti_affinity: TopologyCounts,
    /// The incoming pod's required terms with their namespace selectors resolved.
    required_affinity: Arc<[AffinityTerm]>,
    required_anti_affinity: Arc<[AffinityTerm]>,
    /// The incoming pod's namespace labels.
    ns_labels: Arc<BTreeMap<String, String>>,
    /// Whether the incoming pod matches all its own required affinity terms.
    matches_own_affinity: bool,
}

impl PreFilterState {
    /// Upstream's `updateWithPod`: `other` joins (`delta` 1) or leaves (-1) a node.
    fn update_with_pod(&mut self, pod: &PodInfo, other: &PodInfo, node: &NodeInfo, delta: i64) {
        self.existing_anti_affinity.count_anti_affinity(
            &other.required_anti_affinity,
            pod,
            &self.ns_labels,
            &node.labels,
            delta,
        );
        self.affinity
            .count_affinity(&self.required_affinity, other, &node.labels, delta);
        self.anti_affinity.count_anti_affinity(
            &self.required_anti_affinity,
            other,
            &NO_LABELS,
            &node.labels,
            delta,
        );
    }

    /// Upstream's `satisfyPodAffinity`.
    fn satisfies_affinity(&self, node_labels: &BTreeMap<String, String>) -> bool {
        let mut pods_exist = true;
        for t in self.required_affinity.iter() {
            // Every topology key must be on the node, first pod or not.
            let Some(value) = node_labels.get(&t.topology_key) else {
                return false;
            };
            if self.affinity.get(&t.topology_key, value) <= 0 {
                pods_exist = false;
            }
        }
        // The first pod of a group with affinity to itself may go anywhere with the keys,
        // or it would stay pending forever.
        pods_exist || (self.affinity.is_empty() && self.matches_own_affinity)
    }

    /// Upstream's `satisfyPodAntiAffinity`.
    fn satisfies_anti_affinity(&self, node_labels: &BTreeMap<String, String>) -> bool {
        if self.anti_affinity.is_empty() {
            return true;
        }
        !self.required_anti_affinity.iter().any(|t| {
            node_labels
                .get(&t.topology_key)
                .is_some_and(|v| self.anti_affinity.get(&t.topology_key, v) > 0)
        })
    }
}

impl PreFilterPlugin for InterPodAffinity {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
    ) -> (Option<PreFilterResult>, Status) {
        if pod.required_affinity.is_empty()
            && pod.required_anti_affinity.is_empty()
            && snapshot
                .nodes_with_required_anti_affinity_pods()
                .next()
                .is_none()
        {
            return (None, Status::skip());
        }
        let ns_labels = ns_labels_of(snapshot, &pod.namespace);
        let existing_anti_affinity = snapshot
            .nodes()
            .par_iter()
            .with_min_len(64)
            .filter(|n| !n.pods_with_required_anti_affinity.is_empty())
            .fold(TopologyCounts::default, |mut acc, n| {
                for e in &n.pods_with_required_anti_affinity {
                    acc.count_anti_affinity(
                        &e.required_anti_affinity,
                        pod,
                        ns_labels,
                        &n.labels,
                        1,
                    );
                }
                acc
            })
            .reduce(TopologyCounts::default, TopologyCounts::merge);
        if existing_anti_affinity.is_empty()
            && pod.required_affinity.is_empty()
            && pod.required_anti_affinity.is_empty()
        {
            return (None, Status::skip());
        }
        let resolve = |terms: &[AffinityTerm]| -> Arc<[AffinityTerm]> {
            terms
                .iter()
                .map(|t| resolve_namespaces(t, snapshot))
                .collect()
        };
        let required_affinity = resolve(&pod.required_affinity);
        let required_anti_affinity = resolve(&pod.required_anti_affinity);
        let (affinity, anti_affinity) =
            if required_affinity.is_empty() && required_anti_affinity.is_empty() {
                Default::default()
            } else {
                snapshot
                    .nodes()
                    .par_iter()
                    .with_min_len(64)
                    .fold(
                        || (TopologyCounts::default(), TopologyCounts::default()),
                        |(mut aff, mut anti), n| {
                            for e in &n.pods {
                                aff.count_affinity(&required_affinity, e, &n.labels, 1);
                                anti.count_anti_affinity(
                                    &required_anti_affinity,
                                    e,
                                    &NO_LABELS,
                                    &n.labels,
                                    1,
                                );
                            }
                            (aff, anti)
                        },
                    )
                    .reduce(
                        || (TopologyCounts::default(), TopologyCounts::default()),
                        |(a1, b1), (a2, b2)| (a1.merge(a2), b1.merge(b2)),
                    )
            };
        let matches_own_affinity = matches_all(&required_affinity, pod);
        state.write(
            PRE_FILTER_KEY,
            PreFilterState {
                existing_anti_affinity,
                affinity,
                anti_affinity,
                required_affinity,
                required_anti_affinity,
                ns_labels: Arc::new(ns_labels.clone()),
                matches_own_affinity,
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
            None => missing(PRE_FILTER_KEY),
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
            None => missing(PRE_FILTER_KEY),
        }
    }
}

impl FilterPlugin for InterPodAffinity {
    fn filter(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(s) = state.read::<PreFilterState>(PRE_FILTER_KEY) else {
            return missing(PRE_FILTER_KEY);
        };
        if !s.satisfies_affinity(&node.labels) {
            return Status::unresolvable(ERR_REASON_AFFINITY_RULES_NOT_MATCH);
        }
        if !s.satisfies_anti_affinity(&node.labels) {
            return Status::unschedulable(ERR_REASON_ANTI_AFFINITY_RULES_NOT_MATCH);
        }
        if s.existing_anti_affinity.any_positive(&node.labels) {
            return Status::unschedulable(ERR_REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH);
        }
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::test_support::{cluster, pd, plain, req, term, term_ns, HOST, ZONE};
    use super::super::InterPodAffinityArgs;
    use super::*;
    use crate::framework::Code;

    fn plugin() -> InterPodAffinity {
        InterPodAffinity::new(InterPodAffinityArgs::default()).expect("valid")
    }

    /// Each node's verdict: ok, affinity, anti or existing, each checked against upstream's
    /// code for that reason.
    fn verdicts(state: &CycleState, pod: &PodInfo, snap: &Snapshot) -> Vec<String> {
        let short = |s: Status| match (s.code(), s.message().as_str()) {
            (Code::Success, _) => "ok".to_string(),
            (Code::UnschedulableAndUnresolvable, ERR_REASON_AFFINITY_RULES_NOT_MATCH) => {
                "affinity".into()
            }
            (Code::Unschedulable, ERR_REASON_ANTI_AFFINITY_RULES_NOT_MATCH) => "anti".into(),
            (Code::Unschedulable, ERR_REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH) => {
                "existing".into()
            }
            (c, m) => format!("unexpected {c:?}: {m}"),
        };
        let pl = plugin();
        snap.nodes()
            .iter()
            .map(|n| short(pl.filter(state, pod, n)))
            .collect()
    }

    fn pre_filter(pod: &PodInfo, snap: &Snapshot) -> (CycleState, Status) {
        let mut state = CycleState::new();
        let (_, s) = plugin().pre_filter(&mut state, pod, snap);
        (state, s)
    }

    #[test]
    fn filter_enforces_required_affinity_and_anti_affinity() {
        let db = |ns: &str| plain("db", ns, "app=db");
        let web = || plain("in", "default", "app=web");
        let wants =
            |lbls: &str, t: serde_json::Value| pd("in", "default", lbls, req("podAffinity", &[t]));
        let avoids = |t: serde_json::Value| pd("in", "default", "", req("podAntiAffinity", &[t]));
        let guard = |ns: &str, t| pd("guard", ns, "app=guard", req("podAntiAffinity", &[t]));
        let db_zone = || term("app=db", ZONE);
        let cases = [
            (
                "no terms anywhere",
                vec![(0, db("default"))],
                web(),
                ["ok"; 4],
            ),
            (
                "affinity holds in the matching pod's zone only",
                vec![(0, db("default"))],
                wants("", db_zone()),
                ["ok", "ok", "affinity", "affinity"],
            ),
            (
                "no matching pod and the pod does not match itself",
                vec![(2, plain("w", "default", "app=web"))],
                wants("app=web", db_zone()),
                ["affinity"; 4],
            ),
            (
                "first pod of a self-affine group fits where the key exists",
                vec![(2, plain("w", "default", "app=web"))],
                wants("app=db", db_zone()),
                ["ok", "ok", "ok", "affinity"],
            ),
            (
                "first-pod rule is off once a matching pod exists",
                vec![(2, db("default"))],
                wants("app=db", db_zone()),
                ["affinity", "affinity", "ok", "affinity"],
            ),
            (
                "a matching pod must match every affinity term",
                vec![(0, db("default"))],
                pd(
                    "in",
                    "default",
                    "",
                    req("podAffinity", &[db_zone(), term("tier=x", HOST)]),
                ),
                ["affinity"; 4],
            ),
            (
                "pods in other namespaces do not match by default",
                vec![(2, db("other"))],
                wants("", db_zone()),
                ["affinity"; 4],
            ),
            (
                "namespaceSelector selects the matching pod's namespace",
                vec![(2, db("other"))],
                wants(
                    "",
                    term_ns("app=db", ZONE, json!({"matchLabels": {"team": "b"}})),
                ),
                ["affinity", "affinity", "ok", "affinity"],
            ),
            (
                "an empty namespaceSelector selects every namespace",
                vec![(2, db("other"))],
                wants("", term_ns("app=db", ZONE, json!({}))),
                ["affinity", "affinity", "ok", "affinity"],
            ),
            (
                "anti-affinity per host",
                vec![(0, plain("w", "default", "app=web"))],
                avoids(term("app=web", HOST)),
                ["anti", "ok", "ok", "ok"],
            ),
            (
                "anti-affinity per zone spares nodes without the key",
                vec![(0, plain("w", "default", "app=web"))],
                avoids(term("app=web", ZONE)),
                ["anti", "anti", "ok", "ok"],
            ),
            (
                "existing pod's anti-affinity rejects its zone",
                vec![(0, guard("default", term("app=web", ZONE)))],
                web(),
                ["existing", "existing", "ok", "ok"],
            ),
            (
                "existing pod's anti-affinity covers only its own namespace",
                vec![(0, guard("other", term("app=web", ZONE)))],
                web(),
                ["ok"; 4],
            ),
            (
                "existing pod's namespaceSelector matches the incoming pod's namespace labels",
                vec![(
                    0,
                    guard(
                        "other",
                        term_ns("app=web", ZONE, json!({"matchLabels": {"team": "a"}})),
                    ),
                )],
                web(),
                ["existing", "existing", "ok", "ok"],
            ),
        ];
        for (name, pods, incoming, want) in cases {
            let snap = cluster(&pods);
            let (state, s) = pre_filter(&incoming, &snap);
            let got = if s.is_skip() {
                vec!["ok".to_string(); snap.len()]
            } else {
                assert!(s.is_success(), "{name}: {s}");
                verdicts(&state, &incoming, &snap)
            };
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn pre_filter_skips_only_without_required_terms_on_either_side() {
        let guard = pd(
            "g",
            "default",
            "",
            req("podAntiAffinity", &[term("app=web", ZONE)]),
        );
        let wants_db = pd(
            "in",
            "default",
            "",
            req("podAffinity", &[term("app=db", ZONE)]),
        );
        let cases = [
            (
                vec![(0, plain("db", "default", "app=db"))],
                plain("in", "default", "app=web"),
                true,
            ),
            (
                vec![(0, guard.clone())],
                plain("in", "default", "app=db"),
                true,
            ),
            (vec![(0, guard)], plain("in", "default", "app=web"), false),
            (vec![], wants_db, false),
        ];
        for (i, (pods, incoming, skip)) in cases.into_iter().enumerate() {
            let (_, s) = pre_filter(&incoming, &cluster(&pods));
            assert_eq!(s.is_skip(), skip, "case {i}");
        }
    }

    #[test]
    fn add_pod_and_remove_pod_update_the_counts() {
        let incoming = pd(
            "in",
            "default",
            "app=web",
            super::super::test_support::both(
                req("podAffinity", &[term("app=db", ZONE)]),
                req("podAntiAffinity", &[term("app=web", HOST)]),
            ),
        );
        let guard = pd(
            "guard",
            "default",
            "",
            req("podAntiAffinity", &[term("app=web", ZONE)]),
        );
        let db1 = plain("db1", "default", "app=db");
        let w2 = plain("w2", "default", "app=web");
        let db3 = plain("db3", "default", "app=db");
        let snap = cluster(&[
            (0, db1.clone()),
            (1, w2.clone()),
            (2, db3),
            (2, guard.clone()),
        ]);
        let (mut state, s) = pre_filter(&incoming, &snap);
        assert!(s.is_success());
        assert_eq!(
            verdicts(&state, &incoming, &snap),
            ["ok", "anti", "existing", "affinity"]
        );
        let steps = [
            ("remove", &w2, 1, ["ok", "ok", "existing", "affinity"]),
            ("remove", &guard, 2, ["ok", "ok", "ok", "affinity"]),
            ("add", &w2, 0, ["anti", "ok", "ok", "affinity"]),
            (
                "remove",
                &db1,
                0,
                ["affinity", "affinity", "ok", "affinity"],
            ),
            ("add", &guard, 3, ["affinity", "affinity", "ok", "affinity"]),
            (
                "add",
                &guard,
                2,
                ["affinity", "affinity", "existing", "affinity"],
            ),
        ];
        let pl = plugin();
        for (op, target, at, want) in steps {
            let n = &snap.nodes()[at];
            let s = if op == "add" {
                pl.add_pod(&mut state, &incoming, target, n, &snap)
            } else {
                pl.remove_pod(&mut state, &incoming, target, n, &snap)
            };
            assert!(s.is_success());
            let got = verdicts(&state, &incoming, &snap);
            assert_eq!(got, want, "{op} {} on {}", target.name, n.name);
        }
    }
}
