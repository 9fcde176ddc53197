//! NodeAffinity: a pod goes only to nodes its `spec.nodeSelector` and required node affinity
//! select (Filter), prefers nodes its preferred node affinity terms select (Score), and the
//! profile may add affinity of its own to every pod (`NodeAffinityArgs.addedAffinity`), as
//! upstream's `nodeaffinity` plugin.
//!
//! Node selector semantics are upstream's `component-helpers` `nodeaffinity` package, shared
//! with the DaemonSet controller in [`rkube_api::scheduling`] and re-exported here. The pod's
//! own affinity is parsed lazily (an unparsable term matches nothing), while the profile's
//! `addedAffinity` and the pod's preferred terms must parse.
//!
//! PreFilter skips pods with nothing to check, and narrows the candidate nodes when every
//! required term names nodes with `matchFields` `metadata.name In`. Both Filter reasons are
//! UnschedulableAndUnresolvable: evicting pods cannot change a node's labels. Score is the sum
//! of the weights of the matching preferred terms (the pod's and the added ones), normalised
//! so the best node scores 100.

use std::collections::HashSet;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    NodeAffinity as NodeAffinitySpec, NodeSelectorTerm, Pod, PreferredSchedulingTerm,
};
use rkube_api::field_error::{ErrorList, FieldPath};
pub use rkube_api::scheduling::{
    node_matches_selector, pod_matches_node_selector_and_affinity, required_node_affinity,
    NodeSelectorMatcher, PreferredTerms, RequiredNodeAffinity, OBJECT_NAME_FIELD,
};
use rkube_api::selector::SelectorError;
use serde::Deserialize;

use crate::framework::{
    ActionType, ClusterEvent, CycleState, EventResource, FilterPlugin, NodeInfo, Plugin, PodInfo,
    PreFilterPlugin, PreFilterResult, PreScorePlugin, ScorePlugin, Snapshot, Status,
    MAX_NODE_SCORE,
};
use crate::helpers::default_normalize_score;
use crate::registry::{parse_args, Handle};

/// The plugin's name.
pub const NAME: &str = "NodeAffinity";

/// Upstream's reason when the pod's node selector or required affinity does not match.
pub const ERR_REASON_POD: &str = "node(s) didn't match Pod's node affinity/selector";

/// Upstream's reason when the profile's added affinity does not match.
pub const ERR_REASON_ENFORCED: &str = "node(s) didn't match scheduler-enforced node affinity";

/// Upstream's PreFilter reason when every required term names nodes but no node satisfies
/// all the names within a term.
pub const ERR_REASON_CONFLICT: &str = "pod affinity terms conflict";

const PRE_FILTER_KEY: &str = "PreFilterNodeAffinity";
const PRE_SCORE_KEY: &str = "PreScoreNodeAffinity";

fn aggregate(errors: ErrorList) -> String {
    SelectorError::InvalidRequirement(errors).to_string()
}

fn preferred_affinity(pod: &Pod) -> Option<&[PreferredSchedulingTerm]> {
    pod.spec
        .as_ref()?
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .preferred_during_scheduling_ignored_during_execution
        .as_deref()
}

/// The pod's preferred terms, `None` when it has none; parse errors as upstream's message.
fn pod_preferred_terms(pod: &Pod) -> Result<Option<PreferredTerms>, String> {
    preferred_affinity(pod)
        .map(|terms| PreferredTerms::parse(terms, &FieldPath::default()).map_err(aggregate))
        .transpose()
}

/// The plugin's args (upstream's `NodeAffinityArgs`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeAffinityArgs {
    /// Affinity every pod of the profile gets in addition to its own.
    #[serde(default)]
    pub added_affinity: Option<NodeAffinitySpec>,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct NodeAffinity {
    added_selector: Option<NodeSelectorMatcher>,
    added_preferred: Option<PreferredTerms>,
}

impl NodeAffinity {
    /// The plugin with `args`, validated as upstream's `ValidateNodeAffinityArgs`.
    pub fn with_args(args: &NodeAffinityArgs) -> Result<NodeAffinity, String> {
        let mut pl = NodeAffinity::default();
        let Some(added) = &args.added_affinity else {
            return Ok(pl);
        };
        let path = FieldPath::new("addedAffinity");
        let mut errors = ErrorList::new();
        if let Some(ns) = &added.required_during_scheduling_ignored_during_execution {
            let p = path.child("requiredDuringSchedulingIgnoredDuringExecution");
            match NodeSelectorMatcher::parse(ns, &p) {
                Ok(m) => pl.added_selector = Some(m),
                Err(e) => errors.extend(e),
            }
        }
        if let Some(terms) = added
            .preferred_during_scheduling_ignored_during_execution
            .as_deref()
            .filter(|t| !t.is_empty())
        {
            let p = path.child("preferredDuringSchedulingIgnoredDuringExecution");
            match PreferredTerms::parse(terms, &p) {
                Ok(t) => pl.added_preferred = Some(t),
                Err(e) => errors.extend(e),
            }
        }
        if errors.is_empty() {
            Ok(pl)
        } else {
            Err(aggregate(errors))
        }
    }
}

/// The factory.
pub fn new(args: &serde_json::Value, _handle: &Handle) -> Result<Arc<dyn Plugin>, String> {
    let args: NodeAffinityArgs = parse_args(NAME, args)?;
    Ok(Arc::new(NodeAffinity::with_args(&args)?))
}

impl Plugin for NodeAffinity {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events_to_register(&self) -> Vec<ClusterEvent> {
        // Upstream's set with queueing hints enabled (the v1.33 default): only a new node or
        // changed labels can make a node match.
        vec![ClusterEvent::new(
            EventResource::Node,
            ActionType::ADD.or(ActionType::UPDATE_NODE_LABEL),
        )]
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

/// The node names a required term pins the pod to with `metadata.name In` field requirements
/// (intersected, since they are ANDed); `None` if it has none.
fn term_node_names(term: &NodeSelectorTerm) -> Option<HashSet<String>> {
    let mut names: Option<HashSet<String>> = None;
    for r in term.match_fields.iter().flatten() {
        if r.key != OBJECT_NAME_FIELD || r.operator != "In" {
            continue;
        }
        let set: HashSet<String> = r.values.iter().flatten().cloned().collect();
        names = Some(match names {
            None => set,
            Some(prev) => prev.intersection(&set).cloned().collect(),
        });
    }
    names
}

impl PreFilterPlugin for NodeAffinity {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _snapshot: &Snapshot,
    ) -> (Option<PreFilterResult>, Status) {
        let required = required_node_affinity(&pod.pod);
        let has_node_selector = pod
            .pod
            .spec
            .as_ref()
            .is_some_and(|s| s.node_selector.is_some());
        if required.is_none() && self.added_selector.is_none() && !has_node_selector {
            return (None, Status::skip());
        }
        state.write(
            PRE_FILTER_KEY,
            Arc::new(RequiredNodeAffinity::from_pod(&pod.pod)),
        );
        let Some(required) = required.filter(|r| !r.node_selector_terms.is_empty()) else {
            return (None, Status::success());
        };
        // Terms are ORed: the pod is pinned to named nodes only if every term names some.
        let mut names: HashSet<String> = HashSet::new();
        for term in &required.node_selector_terms {
            let Some(term_names) = term_node_names(term) else {
                return (None, Status::success());
            };
            names.extend(term_names);
        }
        if names.is_empty() {
            return (None, Status::unresolvable(ERR_REASON_CONFLICT));
        }
        (
            Some(PreFilterResult {
                node_names: Some(names),
            }),
            Status::success(),
        )
    }
}

impl FilterPlugin for NodeAffinity {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        if let Some(added) = &self.added_selector {
            if !added.matches_labels(&node.labels, &node.name) {
                return Status::unresolvable(ERR_REASON_ENFORCED);
            }
        }
        let matched = match state.read::<Arc<RequiredNodeAffinity>>(PRE_FILTER_KEY) {
            Some(required) => required.matches_labels(&node.labels, &node.name),
            // PreFilter did not run (it is disabled): work it out here.
            None => {
                RequiredNodeAffinity::from_pod(&pod.pod).matches_labels(&node.labels, &node.name)
            }
        };
        if matched {
            Status::success()
        } else {
            Status::unresolvable(ERR_REASON_POD)
        }
    }
}

/// The pod's parsed preferred terms, `None` when it has none.
type PreScoreState = Option<Arc<PreferredTerms>>;

impl PreScorePlugin for NodeAffinity {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _nodes: &[&NodeInfo],
        _snapshot: &Snapshot,
    ) -> Status {
        let preferred = match pod_preferred_terms(&pod.pod) {
            Ok(p) => p,
            Err(e) => return Status::error(e),
        };
        if preferred.is_none() && self.added_preferred.is_none() {
            return Status::skip();
        }
        state.write::<PreScoreState>(PRE_SCORE_KEY, preferred.map(Arc::new));
        Status::success()
    }
}

impl ScorePlugin for NodeAffinity {
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> (i64, Status) {
        let (labels, name) = (&node.labels, node.name.as_str());
        let mut count = self
            .added_preferred
            .as_ref()
            .map_or(0, |t| t.score_labels(labels, name));
        match state.read::<PreScoreState>(PRE_SCORE_KEY) {
            Some(preferred) => {
                count += preferred
                    .as_ref()
                    .map_or(0, |t| t.score_labels(labels, name));
            }
            // PreScore did not run (it is disabled): work it out here.
            None => match pod_preferred_terms(&pod.pod) {
                Ok(preferred) => {
                    count += preferred.map_or(0, |t| t.score_labels(labels, name));
                }
                Err(e) => return (0, Status::error(e)),
            },
        }
        (count, Status::success())
    }

    fn normalize_scores(&self, _state: &CycleState, _pod: &PodInfo, scores: &mut [i64]) -> Status {
        default_normalize_score(MAX_NODE_SCORE, false, scores);
        Status::success()
    }
}

#[cfg(test)]
mod tests;
