//! NodeAffinity: a pod goes only to nodes its `spec.nodeSelector` and required node affinity
//! select (Filter), prefers nodes its preferred node affinity terms select (Score), and the
//! profile may add affinity of its own to every pod (`NodeAffinityArgs.addedAffinity`), as
//! upstream's `nodeaffinity` plugin.
//!
//! Node selector semantics are upstream's `component-helpers` `nodeaffinity` package, and
//! live here as public functions because the DaemonSet controller decides the same way:
//!
//! - a `NodeSelector`'s terms are ORed; a term with neither `matchExpressions` nor
//!   `matchFields` matches nothing, and so does a selector without terms;
//! - a term's requirements are ANDed; `matchExpressions` use the label operators `In`,
//!   `NotIn`, `Exists`, `DoesNotExist`, `Gt`, `Lt` (integers); `matchFields` take `In` and
//!   `NotIn` with exactly one value, and a node has only the field `metadata.name`;
//! - a term that does not parse (bad key, value or operator) matches no node; for the pod's
//!   own affinity that is not an error (upstream's "lazy" selector), while the profile's
//!   `addedAffinity` and the pod's preferred terms must parse.
//!
//! PreFilter skips pods with nothing to check, and narrows the candidate nodes when every
//! required term names nodes with `matchFields` `metadata.name In`. Both Filter reasons are
//! UnschedulableAndUnresolvable: evicting pods cannot change a node's labels. Score is the sum
//! of the weights of the matching preferred terms (the pod's and the added ones), normalised
//! so the best node scores 100.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    Node, NodeAffinity as NodeAffinitySpec, NodeSelector, NodeSelectorRequirement,
    NodeSelectorTerm, Pod, PreferredSchedulingTerm,
};
use rkube_api::field_error::{ErrorList, FieldError, FieldPath};
use rkube_api::selector::{Operator, Requirement, SelectorError};
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

/// The one node field a `matchFields` requirement can select on.
pub const OBJECT_NAME_FIELD: &str = "metadata.name";

const PRE_FILTER_KEY: &str = "PreFilterNodeAffinity";
const PRE_SCORE_KEY: &str = "PreScoreNodeAffinity";

const LABEL_OPERATORS: &[&str] = &["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"];
const FIELD_OPERATORS: &[&str] = &["In", "NotIn"];

static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();

fn node_labels(node: &Node) -> &BTreeMap<String, String> {
    node.metadata.labels.as_ref().unwrap_or(&NO_LABELS)
}

fn node_name(node: &Node) -> &str {
    node.metadata.name.as_deref().unwrap_or("")
}

/// One `matchFields` requirement: the node's field `key` equals (or not) `value`.
#[derive(Clone, Debug)]
struct FieldTerm {
    key: String,
    equal: bool,
    value: String,
}

impl FieldTerm {
    fn matches(&self, name: &str) -> bool {
        // A node has only `metadata.name`; any other field reads as empty, as upstream's
        // `fields.Set`.
        let have = if self.key == OBJECT_NAME_FIELD {
            name
        } else {
            ""
        };
        (have == self.value) == self.equal
    }
}

/// A parsed `NodeSelectorTerm`.
#[derive(Clone, Debug)]
struct ParsedTerm {
    /// `None` when the term has no `matchExpressions`: labels are not checked.
    labels: Option<Vec<Requirement>>,
    /// `None` when the term has no `matchFields`.
    fields: Option<Vec<FieldTerm>>,
    /// Parse errors: a term with any matches nothing.
    errors: ErrorList,
}

fn is_empty_term(term: &NodeSelectorTerm) -> bool {
    term.match_expressions.as_ref().is_none_or(Vec::is_empty)
        && term.match_fields.as_ref().is_none_or(Vec::is_empty)
}

fn parse_label_requirement(
    r: &NodeSelectorRequirement,
    path: &FieldPath,
    errors: &mut ErrorList,
) -> Option<Requirement> {
    let op = match r.operator.as_str() {
        "In" => Operator::In,
        "NotIn" => Operator::NotIn,
        "Exists" => Operator::Exists,
        "DoesNotExist" => Operator::DoesNotExist,
        "Gt" => Operator::GreaterThan,
        "Lt" => Operator::LessThan,
        other => {
            errors.push(FieldError::not_supported(
                &path.child("operator"),
                other,
                LABEL_OPERATORS,
            ));
            return None;
        }
    };
    let values = r.values.clone().unwrap_or_default();
    match Requirement::new_at(&r.key, op, values, Some(path)) {
        Ok(req) => Some(req),
        Err(errs) => {
            errors.extend(errs);
            None
        }
    }
}

fn parse_field_requirement(
    r: &NodeSelectorRequirement,
    path: &FieldPath,
    errors: &mut ErrorList,
) -> Option<FieldTerm> {
    let equal = match r.operator.as_str() {
        "In" => true,
        "NotIn" => false,
        other => {
            errors.push(FieldError::not_supported(
                &path.child("operator"),
                other,
                FIELD_OPERATORS,
            ));
            return None;
        }
    };
    match r.values.as_deref().unwrap_or(&[]) {
        [value] => Some(FieldTerm {
            key: r.key.clone(),
            equal,
            value: value.clone(),
        }),
        values => {
            errors.push(FieldError::invalid(
                &path.child("values"),
                serde_json::Value::from(values.to_vec()),
                "must have one element",
            ));
            None
        }
    }
}

impl ParsedTerm {
    fn parse(term: &NodeSelectorTerm, path: &FieldPath) -> ParsedTerm {
        let mut errors = ErrorList::new();
        let exprs = term.match_expressions.as_deref().unwrap_or(&[]);
        let labels = (!exprs.is_empty()).then(|| {
            let p = path.child("matchExpressions");
            exprs
                .iter()
                .enumerate()
                .filter_map(|(i, r)| parse_label_requirement(r, &p.index(i), &mut errors))
                .collect()
        });
        let fields = term.match_fields.as_deref().unwrap_or(&[]);
        let fields = (!fields.is_empty()).then(|| {
            let p = path.child("matchFields");
            fields
                .iter()
                .enumerate()
                .filter_map(|(i, r)| parse_field_requirement(r, &p.index(i), &mut errors))
                .collect()
        });
        ParsedTerm {
            labels,
            fields,
            errors,
        }
    }

    fn matches(&self, labels: &BTreeMap<String, String>, name: &str) -> bool {
        if !self.errors.is_empty() {
            return false;
        }
        if let Some(reqs) = &self.labels {
            if !reqs.iter().all(|r| r.matches(labels)) {
                return false;
            }
        }
        // Upstream checks fields only when the node has any, i.e. a name.
        if let Some(fields) = &self.fields {
            if !name.is_empty() && !fields.iter().all(|f| f.matches(name)) {
                return false;
            }
        }
        true
    }
}

fn aggregate(errors: ErrorList) -> String {
    SelectorError::InvalidRequirement(errors).to_string()
}

/// A parsed `NodeSelector` (upstream's `LazyErrorNodeSelector`): terms ORed, each term's
/// requirements ANDed; empty and unparsable terms match nothing.
#[derive(Clone, Debug)]
pub struct NodeSelectorMatcher {
    terms: Vec<ParsedTerm>,
}

impl NodeSelectorMatcher {
    /// Parses `selector`, keeping unparsable terms as terms that match nothing.
    pub fn new(selector: &NodeSelector) -> NodeSelectorMatcher {
        Self::parse_lazy(selector, &FieldPath::default())
    }

    fn parse_lazy(selector: &NodeSelector, path: &FieldPath) -> NodeSelectorMatcher {
        let path = path.child("nodeSelectorTerms");
        let terms = selector
            .node_selector_terms
            .iter()
            .enumerate()
            .filter(|(_, t)| !is_empty_term(t))
            .map(|(i, t)| ParsedTerm::parse(t, &path.index(i)))
            .collect();
        NodeSelectorMatcher { terms }
    }

    /// Parses `selector` strictly (upstream's `NewNodeSelector`): every parse error, reported
    /// under `path`.
    pub fn parse(
        selector: &NodeSelector,
        path: &FieldPath,
    ) -> Result<NodeSelectorMatcher, ErrorList> {
        let m = Self::parse_lazy(selector, path);
        let errors: ErrorList = m.terms.iter().flat_map(|t| t.errors.clone()).collect();
        if errors.is_empty() {
            Ok(m)
        } else {
            Err(errors)
        }
    }

    /// Whether a node with these labels and name matches.
    pub fn matches_labels(&self, labels: &BTreeMap<String, String>, name: &str) -> bool {
        self.terms.iter().any(|t| t.matches(labels, name))
    }

    /// Whether `node` matches.
    pub fn matches(&self, node: &Node) -> bool {
        self.matches_labels(node_labels(node), node_name(node))
    }
}

/// Parsed preferred scheduling terms (upstream's `PreferredSchedulingTerms`): terms of weight
/// 0 and empty terms are dropped.
#[derive(Clone, Debug)]
pub struct PreferredTerms {
    terms: Vec<(ParsedTerm, i64)>,
}

impl PreferredTerms {
    /// Parses `terms`; any parse error fails the whole list, reported under `path`.
    pub fn parse(
        terms: &[PreferredSchedulingTerm],
        path: &FieldPath,
    ) -> Result<PreferredTerms, ErrorList> {
        let mut errors = ErrorList::new();
        let mut parsed = Vec::with_capacity(terms.len());
        for (i, t) in terms.iter().enumerate() {
            if t.weight == 0 || is_empty_term(&t.preference) {
                continue;
            }
            let term = ParsedTerm::parse(&t.preference, &path.index(i));
            if term.errors.is_empty() {
                parsed.push((term, i64::from(t.weight)));
            } else {
                errors.extend(term.errors);
            }
        }
        if errors.is_empty() {
            Ok(PreferredTerms { terms: parsed })
        } else {
            Err(errors)
        }
    }

    /// The sum of the weights of the terms a node with these labels and name matches.
    pub fn score_labels(&self, labels: &BTreeMap<String, String>, name: &str) -> i64 {
        self.terms
            .iter()
            .filter(|(t, _)| t.matches(labels, name))
            .map(|(_, w)| w)
            .sum()
    }

    /// The sum of the weights of the terms `node` matches.
    pub fn score(&self, node: &Node) -> i64 {
        self.score_labels(node_labels(node), node_name(node))
    }
}

/// What a pod requires of its node (upstream's `RequiredNodeAffinity`): its `nodeSelector`
/// labels and its required node affinity, both of which must match.
#[derive(Clone, Debug, Default)]
pub struct RequiredNodeAffinity {
    node_selector: Vec<(String, String)>,
    affinity: Option<NodeSelectorMatcher>,
}

impl RequiredNodeAffinity {
    /// Reads `pod.spec.nodeSelector` and
    /// `pod.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution`.
    pub fn from_pod(pod: &Pod) -> RequiredNodeAffinity {
        let spec = pod.spec.as_ref();
        let node_selector = spec
            .and_then(|s| s.node_selector.as_ref())
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let affinity = required_affinity(pod).map(NodeSelectorMatcher::new);
        RequiredNodeAffinity {
            node_selector,
            affinity,
        }
    }

    /// Whether a node with these labels and name satisfies the pod.
    pub fn matches_labels(&self, labels: &BTreeMap<String, String>, name: &str) -> bool {
        self.node_selector
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self
                .affinity
                .as_ref()
                .is_none_or(|a| a.matches_labels(labels, name))
    }

    /// Whether `node` satisfies the pod.
    pub fn matches(&self, node: &Node) -> bool {
        self.matches_labels(node_labels(node), node_name(node))
    }
}

fn required_affinity(pod: &Pod) -> Option<&NodeSelector> {
    pod.spec
        .as_ref()?
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()
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

/// Whether `node` matches `selector` (terms ORed, requirements ANDed; unparsable terms match
/// nothing).
pub fn node_matches_selector(selector: &NodeSelector, node: &Node) -> bool {
    NodeSelectorMatcher::new(selector).matches(node)
}

/// Whether `node` satisfies `pod`'s `nodeSelector` and required node affinity, as upstream's
/// `GetRequiredNodeAffinity(pod).Match(node)`.
pub fn pod_matches_node_selector_and_affinity(pod: &Pod, node: &Node) -> bool {
    RequiredNodeAffinity::from_pod(pod).matches(node)
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
        let required = required_affinity(&pod.pod);
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
