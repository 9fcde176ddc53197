//! InterPodAffinity: pod affinity and anti-affinity, as upstream's `interpodaffinity` plugin.
//!
//! Filter enforces the required terms. PreFilter counts, per topology pair (a node label key
//! and value), (1) existing pods whose required anti-affinity terms match the incoming pod,
//! (2) existing pods matching all of the incoming pod's required affinity terms, and (3)
//! existing pods matching each of its required anti-affinity terms; Filter then only looks the
//! node's labels up in those counts. A node must carry every affinity term's topology key and
//! have a matching pod in each domain, except that the first pod of a group that matches its own
//! terms may go anywhere with the keys when no pod matches anywhere (affinity failures are
//! UnschedulableAndUnresolvable; anti-affinity ones Unschedulable, as preemption can remove the
//! offending pods). PreFilter's `add_pod`/`remove_pod` keep the counts right for preemption.
//!
//! Score sums, per topology pair, the weights of the incoming pod's preferred terms matched by
//! existing pods (anti-affinity negative), `hardPodAffinityWeight` for existing pods' required
//! affinity terms matching the incoming pod, and existing pods' preferred terms matching it; a
//! node scores the sum of its pairs, and scores are min-max scaled to 0..=100.
//! `ignorePreferredTermsOfExistingPods` skips scoring pods without preferred terms of their own
//! (existing pods' preferences still count for pods with some, as upstream).
//!
//! The incoming pod's `namespaceSelector`s are resolved against the snapshot's namespaces once
//! per cycle (upstream's `mergeAffinityTermNamespacesIfNotEmpty`); existing pods' terms are
//! matched with the incoming pod's namespace labels (empty if its namespace is unknown).

mod filtering;
mod scoring;
#[cfg(test)]
mod test_support;

use std::collections::BTreeMap;
use std::sync::Arc;

use rkube_api::selector::LabelSelector;
use serde::{Deserialize, Deserializer};

use crate::framework::types::{AffinityTerm, WeightedAffinityTerm};
use crate::framework::{
    ActionType, ClusterEvent, EventResource, FilterPlugin, Plugin, PreFilterPlugin, PreScorePlugin,
    ScorePlugin, Snapshot, Status,
};
use crate::registry::Handle;

/// The plugin's name.
pub const NAME: &str = "InterPodAffinity";

/// Upstream's reason when the node would break an existing pod's required anti-affinity.
pub const ERR_REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";
/// Upstream's reason when the node does not satisfy the pod's required affinity.
pub const ERR_REASON_AFFINITY_RULES_NOT_MATCH: &str = "node(s) didn't match pod affinity rules";
/// Upstream's reason when the node does not satisfy the pod's required anti-affinity.
pub const ERR_REASON_ANTI_AFFINITY_RULES_NOT_MATCH: &str =
    "node(s) didn't match pod anti-affinity rules";

/// Upstream's default `hardPodAffinityWeight`.
pub const DEFAULT_HARD_POD_AFFINITY_WEIGHT: i32 = 1;
/// The largest valid `hardPodAffinityWeight`.
pub const MAX_HARD_POD_AFFINITY_WEIGHT: i32 = 100;

const PRE_FILTER_KEY: &str = "PreFilterInterPodAffinity";
const PRE_SCORE_KEY: &str = "PreScoreInterPodAffinity";

/// What a namespace selector sees for a pod whose namespace the snapshot does not know, and
/// for the incoming pod's resolved terms (whose selector no longer needs labels).
static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();

/// `InterPodAffinityArgs`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct InterPodAffinityArgs {
    /// The score weight of an existing pod's required affinity term that the incoming pod
    /// matches; 0 disables it.
    #[serde(deserialize_with = "weight_or_default")]
    pub hard_pod_affinity_weight: i32,
    /// Skip scoring for pods without preferred (anti-)affinity terms of their own, rather than
    /// ranking them by existing pods' terms (upstream's "ignore existing pods' preferred
    /// affinity rules unless the incoming pod has inter-pod affinities").
    pub ignore_preferred_terms_of_existing_pods: bool,
}

impl Default for InterPodAffinityArgs {
    fn default() -> Self {
        InterPodAffinityArgs {
            hard_pod_affinity_weight: DEFAULT_HARD_POD_AFFINITY_WEIGHT,
            ignore_preferred_terms_of_existing_pods: false,
        }
    }
}

/// Upstream's field is a pointer: `null` means the default.
fn weight_or_default<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    Ok(Option::<i32>::deserialize(d)?.unwrap_or(DEFAULT_HARD_POD_AFFINITY_WEIGHT))
}

impl InterPodAffinityArgs {
    /// Upstream's `ValidateInterPodAffinityArgs`.
    pub fn validate(&self) -> Result<(), String> {
        let w = self.hard_pod_affinity_weight;
        if !(0..=MAX_HARD_POD_AFFINITY_WEIGHT).contains(&w) {
            return Err(format!(
                "hardPodAffinityWeight: Invalid value: {w}: not in valid range [0-{MAX_HARD_POD_AFFINITY_WEIGHT}]"
            ));
        }
        Ok(())
    }
}

/// See the module documentation.
#[derive(Debug)]
pub struct InterPodAffinity {
    args: InterPodAffinityArgs,
}

impl InterPodAffinity {
    /// The plugin with validated args.
    pub fn new(args: InterPodAffinityArgs) -> Result<Self, String> {
        args.validate()?;
        Ok(InterPodAffinity { args })
    }
}

/// The factory.
pub fn new(args: &serde_json::Value, _handle: &Handle) -> Result<Arc<dyn Plugin>, String> {
    let args = crate::registry::parse_args::<InterPodAffinityArgs>(NAME, args)?;
    Ok(Arc::new(InterPodAffinity::new(args)?))
}

impl Plugin for InterPodAffinity {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events_to_register(&self) -> Vec<ClusterEvent> {
        vec![
            // A new matching pod satisfies affinity; a deleted or relabelled one may lift an
            // anti-affinity conflict.
            ClusterEvent::new(
                EventResource::AssignedPod,
                ActionType::ADD
                    .or(ActionType::UPDATE_POD_LABEL)
                    .or(ActionType::DELETE),
            ),
            // A new or relabelled node may bring the topology key or a new domain. (Upstream
            // adds UpdateNodeTaint only for its queue's preCheck, which rkube does not have.)
            ClusterEvent::new(
                EventResource::Node,
                ActionType::ADD.or(ActionType::UPDATE_NODE_LABEL),
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

/// Upstream's `mergeAffinityTermNamespacesIfNotEmpty`: a term's namespace selector becomes the
/// names of the namespaces it selects now. An empty selector (every namespace) stays as it is.
fn resolve_namespaces(term: &AffinityTerm, snapshot: &Snapshot) -> AffinityTerm {
    let mut t = term.clone();
    if t.namespace_selector.is_empty() || t.namespace_selector.matches_nothing() {
        return t;
    }
    for (name, labels) in &snapshot.namespaces {
        if t.namespace_selector.matches(labels) {
            t.namespaces.insert(name.clone());
        }
    }
    t.namespace_selector = LabelSelector::nothing();
    t
}

/// [`resolve_namespaces`] for preferred terms.
fn resolve_weighted(
    terms: &[WeightedAffinityTerm],
    snapshot: &Snapshot,
) -> Vec<WeightedAffinityTerm> {
    terms
        .iter()
        .map(|w| WeightedAffinityTerm {
            term: resolve_namespaces(&w.term, snapshot),
            weight: w.weight,
        })
        .collect()
}

/// The labels of namespace `ns`; none if the snapshot does not know it (upstream's
/// `GetNamespaceLabelsSnapshot` assumes an empty set then).
fn ns_labels_of<'a>(snapshot: &'a Snapshot, ns: &str) -> &'a BTreeMap<String, String> {
    snapshot.namespace_labels(ns).unwrap_or(&NO_LABELS)
}

/// The error when a point's state is absent (its PreFilter or PreScore did not run).
fn missing(key: &str) -> Status {
    Status::error(format!("error reading {key:?} from cycleState: not found"))
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::registry::parse_args;

    #[test]
    fn args_default_and_validate_as_upstream() {
        let build = |v: Value| new(&v, &Handle::default()).map(|_| ());
        let args = |v: Value| parse_args::<InterPodAffinityArgs>(NAME, &v);
        let weight = |v: Value| args(v).map(|a| a.hard_pod_affinity_weight);
        assert_eq!(args(Value::Null), Ok(InterPodAffinityArgs::default()));
        assert_eq!(weight(json!({})), Ok(1));
        assert_eq!(weight(json!({"hardPodAffinityWeight": null})), Ok(1));
        assert_eq!(
            weight(json!({"kind": "InterPodAffinityArgs", "hardPodAffinityWeight": 0})),
            Ok(0)
        );
        let ignore = args(json!({"ignorePreferredTermsOfExistingPods": true}));
        assert_eq!(
            ignore.map(|a| a.ignore_preferred_terms_of_existing_pods),
            Ok(true)
        );
        assert!(build(json!({"hardPodAffinityWeight": 100})).is_ok());
        assert_eq!(
            build(json!({"hardPodAffinityWeight": 101})),
            Err(
                "hardPodAffinityWeight: Invalid value: 101: not in valid range [0-100]".to_string()
            )
        );
        assert!(build(json!({"hardPodAffinityWeight": -1})).is_err());
        assert!(
            build(json!({"hardPodAfinityWeight": 1})).is_err(),
            "unknown fields are rejected"
        );
    }
}
