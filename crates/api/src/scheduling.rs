//! Scheduling predicates shared by the scheduler and the controllers (upstream's
//! `k8s.io/component-helpers/scheduling/corev1` and its `nodeaffinity` package): whether a
//! node matches a `NodeSelector`, a pod's `nodeSelector` and required node affinity, and
//! whether tolerations tolerate taints.
//!
//! Node selector semantics:
//!
//! - a `NodeSelector`'s terms are ORed; a term with neither `matchExpressions` nor
//!   `matchFields` matches nothing, and so does a selector without terms;
//! - a term's requirements are ANDed; `matchExpressions` use the label operators `In`,
//!   `NotIn`, `Exists`, `DoesNotExist`, `Gt`, `Lt` (integers); `matchFields` take `In` and
//!   `NotIn` with exactly one value, and a node has only the field `metadata.name`;
//! - a term that does not parse (bad key, value or operator) matches no node; for a pod's own
//!   affinity that is not an error (upstream's "lazy" selector), while strict parsing
//!   ([`NodeSelectorMatcher::parse`], [`PreferredTerms::parse`]) reports every error.
//!
//! Toleration semantics are upstream's `Toleration.ToleratesTaint`: an empty effect or key
//! matches any; `Exists` matches any value, `Equal` (or an empty operator) the same value.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Node, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod, PreferredSchedulingTerm,
    Taint, Toleration,
};

use crate::field_error::{ErrorList, FieldError, FieldPath};
use crate::selector::{Operator, Requirement};

/// The one node field a `matchFields` requirement can select on.
pub const OBJECT_NAME_FIELD: &str = "metadata.name";

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
        let affinity = required_node_affinity(pod).map(NodeSelectorMatcher::new);
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

/// The pod's required node affinity
/// (`spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution`).
pub fn required_node_affinity(pod: &Pod) -> Option<&NodeSelector> {
    pod.spec
        .as_ref()?
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()
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

/// Upstream's `Toleration.ToleratesTaint`: an empty effect or key matches any; `Exists`
/// matches any value, `Equal` (or empty) the same value.
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if t.effect
        .as_deref()
        .is_some_and(|e| !e.is_empty() && e != taint.effect)
    {
        return false;
    }
    if t.key
        .as_deref()
        .is_some_and(|k| !k.is_empty() && k != taint.key)
    {
        return false;
    }
    match t.operator.as_deref() {
        None | Some("") | Some("Equal") => {
            t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        Some("Exists") => true,
        _ => false,
    }
}

/// The first taint (among those `filter` keeps) that no toleration tolerates (upstream's
/// `FindMatchingUntoleratedTaint`).
pub fn find_untolerated_taint<'a>(
    taints: &'a [Taint],
    tolerations: &[Toleration],
    filter: impl Fn(&Taint) -> bool,
) -> Option<&'a Taint> {
    taints
        .iter()
        .filter(|t| filter(t))
        .find(|taint| !tolerations.iter().any(|t| tolerates(t, taint)))
}

#[cfg(test)]
mod tests;
