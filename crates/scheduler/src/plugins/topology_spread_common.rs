//! What PodTopologySpread's filtering and scoring share, as upstream's `podtopologyspread/common.go`
//! and `helper/spread.go`: the plugin's args (`PodTopologySpreadArgs`) with upstream's defaults
//! and validation, a pod's constraints parsed for one `whenUnsatisfiable` action (its own, or the
//! args' defaults with a selector deduced from the workloads that select the pod), the node
//! inclusion policies, and the pod's required node affinity they honour.
//!
//! A constraint's selector is the `labelSelector` with the pod's values of `matchLabelKeys`
//! merged in; a nil `labelSelector` selects nothing (so nothing is counted), unless
//! `matchLabelKeys` adds requirements, as upstream's merge keeps only a set-based selector's
//! requirements.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, TopologySpreadConstraint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as metav1;
use rkube_api::field_error::{ErrorList, FieldError, FieldPath};
use rkube_api::selector::names::label_key_errors;
use rkube_api::selector::LabelSelector;
use serde::Deserialize;

use crate::framework::{NodeInfo, PodInfo, Snapshot};
use crate::helpers::find_untolerated_taint;

/// `whenUnsatisfiable: DoNotSchedule`: a hard constraint, enforced by Filter.
pub const DO_NOT_SCHEDULE: &str = "DoNotSchedule";
/// `whenUnsatisfiable: ScheduleAnyway`: a soft constraint, preferred by Score.
pub const SCHEDULE_ANYWAY: &str = "ScheduleAnyway";
/// `defaultingType: System`: upstream's built-in default constraints.
pub const SYSTEM_DEFAULTING: &str = "System";
/// `defaultingType: List`: the args' `defaultConstraints`.
pub const LIST_DEFAULTING: &str = "List";
/// The node label upstream scores per node rather than per domain.
pub const LABEL_HOSTNAME: &str = "kubernetes.io/hostname";
/// The zone label of the system default constraints.
pub const LABEL_TOPOLOGY_ZONE: &str = "topology.kubernetes.io/zone";
const POLICY_HONOR: &str = "Honor";

/// Upstream's `systemDefaultConstraints`: spread by hostname (maxSkew 3) and zone (maxSkew 5),
/// both `ScheduleAnyway`.
pub fn system_default_constraints() -> Vec<TopologySpreadConstraint> {
    [(LABEL_HOSTNAME, 3), (LABEL_TOPOLOGY_ZONE, 5)]
        .into_iter()
        .map(|(key, skew)| TopologySpreadConstraint {
            topology_key: key.to_string(),
            when_unsatisfiable: SCHEDULE_ANYWAY.to_string(),
            max_skew: skew,
            ..Default::default()
        })
        .collect()
}

/// `PodTopologySpreadArgs` (kubescheduler.config.k8s.io/v1), with upstream's v1 default: an
/// empty `defaultingType` is `System`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(from = "RawArgs")]
pub struct PodTopologySpreadArgs {
    /// Constraints for pods that have none, with `defaultingType: List`.
    pub default_constraints: Vec<TopologySpreadConstraint>,
    /// `System` or `List`.
    pub defaulting_type: String,
}

impl Default for PodTopologySpreadArgs {
    fn default() -> Self {
        PodTopologySpreadArgs {
            default_constraints: Vec::new(),
            defaulting_type: SYSTEM_DEFAULTING.to_string(),
        }
    }
}

/// The args as decoded: constraint fields upstream decodes to zero values when absent, so that
/// validation (not decoding) reports them.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawArgs {
    #[serde(default)]
    default_constraints: Option<Vec<RawConstraint>>,
    #[serde(default)]
    defaulting_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawConstraint {
    #[serde(default)]
    max_skew: i32,
    #[serde(default)]
    topology_key: String,
    #[serde(default)]
    when_unsatisfiable: String,
    label_selector: Option<metav1::LabelSelector>,
    min_domains: Option<i32>,
    node_affinity_policy: Option<String>,
    node_taints_policy: Option<String>,
    match_label_keys: Option<Vec<String>>,
}

impl From<RawArgs> for PodTopologySpreadArgs {
    fn from(raw: RawArgs) -> Self {
        let defaulting_type = raw
            .defaulting_type
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| SYSTEM_DEFAULTING.to_string());
        let default_constraints = raw
            .default_constraints
            .unwrap_or_default()
            .into_iter()
            .map(|c| TopologySpreadConstraint {
                max_skew: c.max_skew,
                topology_key: c.topology_key,
                when_unsatisfiable: c.when_unsatisfiable,
                label_selector: c.label_selector,
                min_domains: c.min_domains,
                node_affinity_policy: c.node_affinity_policy,
                node_taints_policy: c.node_taints_policy,
                match_label_keys: c.match_label_keys,
            })
            .collect();
        PodTopologySpreadArgs {
            default_constraints,
            defaulting_type,
        }
    }
}

impl PodTopologySpreadArgs {
    /// Upstream's `ValidatePodTopologySpreadArgs` (with a nil root path), its errors joined as
    /// upstream's aggregate.
    pub fn validate(&self) -> Result<(), String> {
        let mut errs = ErrorList::new();
        let dt = FieldPath::new("defaultingType");
        if self.defaulting_type != SYSTEM_DEFAULTING && self.defaulting_type != LIST_DEFAULTING {
            errs.push(FieldError::not_supported(
                &dt,
                self.defaulting_type.as_str(),
                &[SYSTEM_DEFAULTING, LIST_DEFAULTING],
            ));
        } else if self.defaulting_type == SYSTEM_DEFAULTING && !self.default_constraints.is_empty()
        {
            errs.push(FieldError::invalid(
                &dt,
                self.defaulting_type.as_str(),
                "when .defaultConstraints are not empty",
            ));
        }
        let path = FieldPath::new("defaultConstraints");
        for (i, c) in self.default_constraints.iter().enumerate() {
            let p = path.index(i);
            if c.max_skew <= 0 {
                errs.push(FieldError::invalid(
                    &p.child("maxSkew"),
                    c.max_skew,
                    "not in valid range (0, inf)",
                ));
            }
            let key = p.child("topologyKey");
            if c.topology_key.is_empty() {
                errs.push(FieldError::required(&key, "can not be empty"));
            } else {
                for msg in label_key_errors(&c.topology_key) {
                    errs.push(FieldError::invalid(&key, c.topology_key.as_str(), &msg));
                }
            }
            let when = p.child("whenUnsatisfiable");
            if c.when_unsatisfiable.is_empty() {
                errs.push(FieldError::required(&when, "can not be empty"));
            } else if c.when_unsatisfiable != DO_NOT_SCHEDULE
                && c.when_unsatisfiable != SCHEDULE_ANYWAY
            {
                errs.push(FieldError::not_supported(
                    &when,
                    c.when_unsatisfiable.as_str(),
                    &[DO_NOT_SCHEDULE, SCHEDULE_ANYWAY],
                ));
            }
            if c.label_selector.is_some() {
                errs.push(FieldError::forbidden(
                    &p.child("labelSelector"),
                    "constraint must not define a selector, as they deduced for each pod",
                ));
            }
            let repeated = self.default_constraints[..i].iter().any(|o| {
                o.topology_key == c.topology_key && o.when_unsatisfiable == c.when_unsatisfiable
            });
            if repeated {
                errs.push(FieldError::duplicate(
                    &p,
                    format!("{{{}, {}}}", c.topology_key, c.when_unsatisfiable),
                ));
            }
        }
        if errs.is_empty() {
            return Ok(());
        }
        // upstream's aggregate: one message as is, several deduplicated in brackets
        let mut msgs: Vec<String> = Vec::new();
        for e in &errs {
            let m = e.to_string();
            if !msgs.contains(&m) {
                msgs.push(m);
            }
        }
        Err(match msgs.as_slice() {
            [one] => one.clone(),
            many => format!("[{}]", many.join(", ")),
        })
    }
}

/// One constraint of the pod, parsed (upstream's `topologySpreadConstraint`).
#[derive(Clone, Debug)]
pub struct Constraint {
    /// The allowed skew.
    pub max_skew: i32,
    /// The node label whose values are the domains.
    pub topology_key: String,
    /// The pods counted.
    pub selector: LabelSelector,
    /// Fewer eligible domains than this make the global minimum 0 (1 when unset).
    pub min_domains: i32,
    /// `nodeAffinityPolicy: Honor` (the default): only nodes matching the pod's node selector
    /// and required node affinity count.
    pub honor_node_affinity: bool,
    /// `nodeTaintsPolicy: Honor` (default Ignore): only nodes whose NoSchedule/NoExecute
    /// taints the pod tolerates count.
    pub honor_node_taints: bool,
}

impl Constraint {
    /// Upstream's `matchNodeInclusionPolicies`: whether `node`'s pods count for this
    /// constraint when placing `pod`.
    pub fn includes_node(
        &self,
        pod: &PodInfo,
        node: &NodeInfo,
        affinity: &RequiredNodeAffinity,
    ) -> bool {
        if self.honor_node_affinity && !affinity.matches_labels(&node.labels, &node.name) {
            return false;
        }
        if self.honor_node_taints {
            let taints = node
                .node
                .spec
                .as_ref()
                .and_then(|s| s.taints.as_deref())
                .unwrap_or_default();
            let tolerations = pod
                .pod
                .spec
                .as_ref()
                .and_then(|s| s.tolerations.as_deref())
                .unwrap_or_default();
            let do_not_schedule = |t: &k8s_openapi::api::core::v1::Taint| {
                t.effect == "NoSchedule" || t.effect == "NoExecute"
            };
            if find_untolerated_taint(taints, tolerations, do_not_schedule).is_some() {
                return false;
            }
        }
        true
    }
}

/// Upstream's `filterTopologySpreadConstraints`: the constraints with `whenUnsatisfiable ==
/// action`, their selectors parsed and `matchLabelKeys` merged in.
pub fn filter_constraints(
    constraints: &[TopologySpreadConstraint],
    pod_labels: &BTreeMap<String, String>,
    action: &str,
) -> Result<Vec<Constraint>, String> {
    let mut out = Vec::new();
    for c in constraints
        .iter()
        .filter(|c| c.when_unsatisfiable == action)
    {
        let mut selector =
            LabelSelector::from_typed(c.label_selector.as_ref()).map_err(|e| e.to_string())?;
        let keys = c.match_label_keys.as_deref().unwrap_or_default();
        let merged: BTreeMap<String, String> = keys
            .iter()
            .filter_map(|k| pod_labels.get(k).map(|v| (k.clone(), v.clone())))
            .collect();
        if !merged.is_empty() {
            // upstream builds the merged selector from the set and adds the original's
            // requirements; a nil selector has none, so the set alone remains
            selector = LabelSelector::from_set(&merged)
                .with_requirements(selector.requirements().to_vec());
        }
        let honor = |policy: &Option<String>, default: bool| match policy {
            Some(p) => p == POLICY_HONOR,
            None => default,
        };
        out.push(Constraint {
            max_skew: c.max_skew,
            topology_key: c.topology_key.clone(),
            selector,
            min_domains: c.min_domains.unwrap_or(1),
            honor_node_affinity: honor(&c.node_affinity_policy, true),
            honor_node_taints: honor(&c.node_taints_policy, false),
        });
    }
    Ok(out)
}

/// A pod's constraints for `action` (DoNotSchedule or ScheduleAnyway): its own when it has
/// any, else `defaults` with the selector [`default_selector`] deduces (none when that selector
/// is empty). Errors carry upstream's wording.
pub fn pod_constraints(
    pod: &PodInfo,
    action: &str,
    defaults: &[TopologySpreadConstraint],
    snapshot: &Snapshot,
) -> Result<Vec<Constraint>, String> {
    let kind = if action == DO_NOT_SCHEDULE {
        "hard"
    } else {
        "soft"
    };
    let own = pod
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.topology_spread_constraints.as_deref())
        .unwrap_or_default();
    if !own.is_empty() {
        return filter_constraints(own, &pod.labels, action)
            .map_err(|e| format!("obtaining pod's {kind} topology spread constraints: {e}"));
    }
    let mut constraints = filter_constraints(defaults, &pod.labels, action)
        .map_err(|e| format!("setting default {kind} topology spread constraints: {e}"))?;
    if constraints.is_empty() {
        return Ok(constraints);
    }
    let selector = default_selector(pod, snapshot);
    if selector.is_empty() {
        return Ok(Vec::new());
    }
    for c in &mut constraints {
        c.selector = selector.clone();
    }
    Ok(constraints)
}

/// Whether the pod has constraints of its own (rather than defaults).
pub fn has_own_constraints(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.topology_spread_constraints.as_ref())
        .is_some_and(|c| !c.is_empty())
}

/// Upstream's `helper.DefaultSelector`: the labels of the Services in the pod's namespace
/// that select it, merged, plus the selector of its controlling ReplicationController,
/// ReplicaSet or StatefulSet (looked up by namespace and name).
pub fn default_selector(pod: &PodInfo, snapshot: &Snapshot) -> LabelSelector {
    let in_ns =
        |meta: &metav1::ObjectMeta| meta.namespace.as_deref().unwrap_or("") == pod.namespace;
    let mut set: BTreeMap<String, String> = BTreeMap::new();
    for svc in snapshot.services.iter().filter(|s| in_ns(&s.metadata)) {
        // a nil service selector selects nothing, not everything
        let Some(sel) = svc.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
            continue;
        };
        if sel.iter().all(|(k, v)| pod.labels.get(k) == Some(v)) {
            set.extend(sel.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
    let mut selector = LabelSelector::from_set(&set);
    let owner = pod
        .pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true));
    let Some(owner) = owner else {
        return selector;
    };
    let named =
        |meta: &metav1::ObjectMeta| in_ns(meta) && meta.name.as_deref() == Some(&owner.name);
    let add_typed = |selector: LabelSelector, typed: Option<&metav1::LabelSelector>| {
        // a nil selector (nothing) has no requirements to add
        match typed.map(|t| LabelSelector::from_typed(Some(t))) {
            Some(Ok(other)) => selector.with_requirements(other.requirements().to_vec()),
            _ => selector,
        }
    };
    match (owner.api_version.as_str(), owner.kind.as_str()) {
        ("v1", "ReplicationController") => {
            let rc = snapshot
                .replication_controllers
                .iter()
                .find(|rc| named(&rc.metadata));
            if let Some(rc) = rc {
                let sel = rc.spec.as_ref().and_then(|s| s.selector.as_ref());
                set.extend(
                    sel.into_iter()
                        .flatten()
                        .map(|(k, v)| (k.clone(), v.clone())),
                );
                selector = LabelSelector::from_set(&set);
            }
        }
        ("apps/v1", "ReplicaSet") => {
            if let Some(rs) = snapshot.replica_sets.iter().find(|rs| named(&rs.metadata)) {
                selector = add_typed(selector, rs.spec.as_ref().map(|s| &s.selector));
            }
        }
        ("apps/v1", "StatefulSet") => {
            if let Some(ss) = snapshot.stateful_sets.iter().find(|s| named(&s.metadata)) {
                selector = add_typed(selector, ss.spec.as_ref().map(|s| &s.selector));
            }
        }
        _ => {}
    }
    selector
}

/// Upstream's `nodeLabelsMatchSpreadConstraints`: whether the node has every constraint's
/// topology key.
pub fn node_has_all_keys(labels: &BTreeMap<String, String>, constraints: &[Constraint]) -> bool {
    constraints
        .iter()
        .all(|c| labels.contains_key(&c.topology_key))
}

/// Upstream's `countPodsMatchSelector`: pods in `namespace`, not terminating, that the
/// selector matches.
pub fn count_matching_pods(
    pods: &[std::sync::Arc<PodInfo>],
    selector: &LabelSelector,
    namespace: &str,
) -> i64 {
    if selector.matches_nothing() {
        return 0;
    }
    pods.iter()
        .filter(|p| {
            // the terminating check reads the pod object itself: last, as it is rarely decisive
            p.namespace == namespace
                && selector.matches(&p.labels)
                && p.pod.metadata.deletion_timestamp.is_none()
        })
        .count() as i64
}

/// A pod's `nodeSelector` and required node affinity: NodeAffinity's matcher, shared.
pub use super::node_affinity::RequiredNodeAffinity;

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use k8s_openapi::api::apps::v1::{ReplicaSet, StatefulSet};
    use k8s_openapi::api::core::v1::{ReplicationController, Service};
    use serde_json::json;

    use super::*;
    use crate::plugins::testing::{node, pod, snapshot};

    #[test]
    fn required_node_affinity_matches_like_upstream() {
        let n = node(json!({"metadata": {"name": "n1", "labels": {"zone": "a", "gen": "5"}}}));
        let affinity = |terms: serde_json::Value| {
            json!({"spec": {"affinity": {"nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}}})
        };
        let req = |key: &str, op: &str, values: serde_json::Value| json!({"key": key, "operator": op, "values": values});
        let expr =
            |key, op, values| affinity(json!([{"matchExpressions": [req(key, op, values)]}]));
        let field = |key, op, values| affinity(json!([{"matchFields": [req(key, op, values)]}]));
        let empty_or_zone_a =
            affinity(json!([{}, {"matchExpressions": [req("zone", "In", json!(["a"]))]}]));
        #[rustfmt::skip]
        let cases = [
            (json!({}), true),
            (json!({"spec": {"nodeSelector": {"zone": "a"}}}), true),
            (json!({"spec": {"nodeSelector": {"zone": "b"}}}), false),
            (expr("zone", "In", json!(["a", "b"])), true),
            (expr("zone", "NotIn", json!(["a"])), false),
            (expr("zone", "Exists", json!([])), true),
            (expr("rack", "DoesNotExist", json!([])), true),
            (expr("gen", "Gt", json!(["4"])), true),
            (expr("gen", "Lt", json!(["4"])), false),
            (expr("gen", "Gt", json!(["x"])), false),
            (expr("zone", "Bogus", json!(["a"])), false),
            (affinity(json!([])), false),
            (affinity(json!([{}])), false),
            (empty_or_zone_a, true),
            (field("metadata.name", "In", json!(["n1"])), true),
            (field("metadata.name", "NotIn", json!(["n1"])), false),
            (field("metadata.uid", "In", json!(["n1"])), false),
            (field("metadata.name", "In", json!(["n1", "n2"])), false),
        ];
        for (i, (p, want)) in cases.into_iter().enumerate() {
            let p = pod(p);
            assert_eq!(
                RequiredNodeAffinity::from_pod(&p.pod).matches_labels(&n.labels, &n.name),
                want,
                "case {i}"
            );
        }
    }

    #[test]
    fn match_label_keys_merge_pod_values_into_the_selector() {
        let labels: BTreeMap<String, String> = [("app", "web"), ("rev", "7")]
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        let c = |sel: serde_json::Value| -> TopologySpreadConstraint {
            serde_json::from_value(json!({"maxSkew": 1, "topologyKey": "zone",
                "whenUnsatisfiable": "DoNotSchedule", "labelSelector": sel,
                "matchLabelKeys": ["rev", "absent"]}))
            .unwrap()
        };
        let got = filter_constraints(
            &[c(json!({"matchLabels": {"app": "web"}}))],
            &labels,
            DO_NOT_SCHEDULE,
        )
        .unwrap();
        assert_eq!(got[0].selector.to_string(), "app=web,rev=7");
        // a nil selector matches nothing, but matchLabelKeys alone makes a set selector
        let got = filter_constraints(&[c(json!(null))], &labels, DO_NOT_SCHEDULE).unwrap();
        assert_eq!(got[0].selector.to_string(), "rev=7");
        assert!(got[0].honor_node_affinity && !got[0].honor_node_taints);
        assert_eq!(got[0].min_domains, 1);
        assert!(
            filter_constraints(&[c(json!({}))], &labels, SCHEDULE_ANYWAY)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn default_selector_merges_services_and_the_controller() {
        let p = pod(
            json!({"metadata": {"name": "p", "labels": {"app": "web", "tier": "fe"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
                "uid": "u", "controller": true}]}}),
        );
        let svc = |ns: &str, sel: serde_json::Value| -> Arc<Service> {
            Arc::new(
                serde_json::from_value(json!({"metadata": {"name": "s", "namespace": ns},
                "spec": {"selector": sel}}))
                .unwrap(),
            )
        };
        let rs = |ns: &str| -> Arc<ReplicaSet> {
            Arc::new(serde_json::from_value(json!({"metadata": {"name": "rs", "namespace": ns},
                "spec": {"selector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe"]}]},
                    "template": {}}})).unwrap())
        };
        let mut s = snapshot(vec![]);
        assert!(
            default_selector(&p, &s).is_empty(),
            "nothing selects the pod"
        );
        s.services = vec![
            svc("default", json!({"app": "web"})),
            svc("other", json!({"tier": "fe"})),
            svc("default", json!({"app": "db"})),
            svc("default", json!(null)),
        ];
        assert_eq!(default_selector(&p, &s).to_string(), "app=web");
        s.replica_sets = vec![rs("other")];
        assert_eq!(
            default_selector(&p, &s).to_string(),
            "app=web",
            "RS in another namespace"
        );
        s.replica_sets.push(rs("default"));
        assert_eq!(default_selector(&p, &s).to_string(), "app=web,tier in (fe)");

        let owned = |api: &str, kind: &str| {
            pod(
                json!({"metadata": {"name": "p", "labels": {"app": "web"}, "ownerReferences": [
                {"apiVersion": api, "kind": kind, "name": "c", "uid": "u", "controller": true}]}}),
            )
        };
        let mut s = snapshot(vec![]);
        s.replication_controllers = vec![Arc::new(
            serde_json::from_value::<ReplicationController>(
                json!({"metadata": {"name": "c", "namespace": "default"},
                "spec": {"selector": {"app": "web", "rc": "1"}}}),
            )
            .unwrap(),
        )];
        s.stateful_sets = vec![Arc::new(
            serde_json::from_value::<StatefulSet>(json!({"metadata": {"name": "c", "namespace": "default"},
                "spec": {"selector": {"matchLabels": {"ss": "1"}}, "serviceName": "x", "template": {}}})).unwrap(),
        )];
        assert_eq!(
            default_selector(&owned("v1", "ReplicationController"), &s).to_string(),
            "app=web,rc=1"
        );
        assert_eq!(
            default_selector(&owned("apps/v1", "StatefulSet"), &s).to_string(),
            "ss=1"
        );
        assert!(default_selector(&owned("apps/v1beta1", "StatefulSet"), &s).is_empty());
    }

    #[test]
    fn args_default_to_system_and_validate_like_upstream() {
        let parse = |v: serde_json::Value| {
            crate::registry::parse_args::<PodTopologySpreadArgs>("PodTopologySpread", &v)
        };
        assert_eq!(
            parse(json!(null)).unwrap().defaulting_type,
            SYSTEM_DEFAULTING
        );
        assert_eq!(
            parse(json!({"defaultingType": ""}))
                .unwrap()
                .defaulting_type,
            SYSTEM_DEFAULTING
        );
        assert!(parse(json!({"bogus": 1})).is_err(), "strict decoding");
        #[rustfmt::skip]
        let cases = [
            (json!({}), None),
            (json!({"defaultingType": "List"}), None),
            (json!({"defaultingType": "List", "defaultConstraints": [
                {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway"}]}), None),
            (json!({"defaultingType": "Other"}),
                Some(r#"defaultingType: Unsupported value: "Other": supported values: "System", "List""#)),
            (json!({"defaultConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway"}]}),
                Some(r#"defaultingType: Invalid value: "System": when .defaultConstraints are not empty"#)),
            (json!({"defaultingType": "List", "defaultConstraints": [{"topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}]}),
                Some("defaultConstraints[0].maxSkew: Invalid value: 0: not in valid range (0, inf)")),
            (json!({"defaultingType": "List", "defaultConstraints": [{"maxSkew": 1, "whenUnsatisfiable": "DoNotSchedule"}]}),
                Some("defaultConstraints[0].topologyKey: Required value: can not be empty")),
            (json!({"defaultingType": "List", "defaultConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "Maybe"}]}),
                Some(r#"defaultConstraints[0].whenUnsatisfiable: Unsupported value: "Maybe": supported values: "DoNotSchedule", "ScheduleAnyway""#)),
            (json!({"defaultingType": "List", "defaultConstraints": [{"maxSkew": 1, "topologyKey": "zone",
                "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {}}]}),
                Some("defaultConstraints[0].labelSelector: Forbidden: constraint must not define a selector, as they deduced for each pod")),
            (json!({"defaultingType": "List", "defaultConstraints": [
                {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"},
                {"maxSkew": 2, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}]}),
                Some(r#"defaultConstraints[1]: Duplicate value: "{zone, DoNotSchedule}""#)),
            (json!({"defaultingType": "List", "defaultConstraints": [{"topologyKey": "zone"}]}),
                Some("[defaultConstraints[0].maxSkew: Invalid value: 0: not in valid range (0, inf), defaultConstraints[0].whenUnsatisfiable: Required value: can not be empty]")),
        ];
        for (i, (args, want)) in cases.into_iter().enumerate() {
            let got = parse(args).unwrap().validate();
            assert_eq!(got.err().as_deref(), want, "case {i}");
        }
    }
}
