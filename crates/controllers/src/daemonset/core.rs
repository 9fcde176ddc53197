//! The pure core of the DaemonSet controller: which nodes should run a daemon pod (upstream's
//! `NodeShouldRunDaemonPod`), the pod made for a node (`CreatePodTemplate`,
//! `ReplaceDaemonSetPodNodeNameNodeAffinity`), which node a pod is for (`GetTargetNodeName`),
//! what `manage` creates and deletes (`podsShouldBeOnNode`), the backoff before deleting a
//! failed pod again, and the status (`updateDaemonSetStatus`).

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    PodSpec, PodTemplateSpec, Taint, Toleration,
};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use rkube_api::scheduling::{find_untolerated_taint, RequiredNodeAffinity, OBJECT_NAME_FIELD};

use crate::controller_utils::{
    controller_ref, is_pod_available, is_pod_ready, pod_from_template, ready_condition,
};
use crate::history::POD_REVISION_LABEL;

/// The label daemon pods carry with their template generation, for pods made before
/// revision hashes (upstream's `DaemonSetTemplateGenerationKey`).
pub const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";

/// The DaemonSet annotation holding its template generation (upstream's
/// `DeprecatedTemplateGeneration`, the v1 form of `spec.templateGeneration`).
pub const TEMPLATE_GENERATION_ANNOTATION: &str = "deprecated.daemonset.template.generation";

/// The most pods one sync creates or deletes (upstream's `BurstReplicas`).
pub const BURST_REPLICAS: usize = 250;

/// Event reason: a daemon pod failed and is deleted to be replaced.
pub const FAILED_DAEMON_POD: &str = "FailedDaemonPod";
/// Event reason: a daemon pod succeeded and is deleted to be replaced.
pub const SUCCEEDED_DAEMON_POD: &str = "SucceededDaemonPod";
/// Event reason: the DaemonSet's selector is empty, so it is not synced.
pub const SELECTING_ALL: &str = "SelectingAll";

const NO_SCHEDULE: &str = "NoSchedule";
const NO_EXECUTE: &str = "NoExecute";

/// The `DaemonSet` kind's API version, for owner references.
pub const API_VERSION: &str = "apps/v1";
/// The kind, for owner references.
pub const KIND: &str = "DaemonSet";

fn template_spec(ds: &DaemonSet) -> Option<&PodSpec> {
    ds.spec.as_ref()?.template.spec.as_ref()
}

fn same(a: &Option<String>, b: &Option<String>) -> bool {
    a.as_deref().unwrap_or("") == b.as_deref().unwrap_or("")
}

/// Upstream's `AddOrUpdateTolerationInPodSpec`: a toleration with the same key, effect,
/// operator and value is replaced by `tol`; otherwise `tol` is appended.
fn add_or_update_toleration(spec: &mut PodSpec, tol: Toleration) {
    let tols = spec.tolerations.get_or_insert_with(Vec::new);
    let matching = |t: &Toleration| {
        same(&t.key, &tol.key)
            && same(&t.effect, &tol.effect)
            && same(&t.operator, &tol.operator)
            && same(&t.value, &tol.value)
    };
    match tols.iter_mut().find(|t| matching(t)) {
        Some(t) => *t = tol,
        None => tols.push(tol),
    }
}

fn exists(key: &str, effect: &str) -> Toleration {
    Toleration {
        key: Some(key.to_string()),
        operator: Some("Exists".to_string()),
        effect: Some(effect.to_string()),
        ..Default::default()
    }
}

/// Upstream's `AddOrUpdateDaemonPodTolerations`: daemon pods survive node problems (not-ready
/// and unreachable NoExecute, forever) and are placed despite pressure and unschedulable
/// nodes; host-network pods also despite an unavailable network.
pub fn add_daemon_tolerations(spec: &mut PodSpec) {
    for (key, effect) in [
        ("node.kubernetes.io/not-ready", NO_EXECUTE),
        ("node.kubernetes.io/unreachable", NO_EXECUTE),
        ("node.kubernetes.io/disk-pressure", NO_SCHEDULE),
        ("node.kubernetes.io/memory-pressure", NO_SCHEDULE),
        ("node.kubernetes.io/pid-pressure", NO_SCHEDULE),
        ("node.kubernetes.io/unschedulable", NO_SCHEDULE),
    ] {
        add_or_update_toleration(spec, exists(key, effect));
    }
    if spec.host_network == Some(true) {
        add_or_update_toleration(
            spec,
            exists("node.kubernetes.io/network-unavailable", NO_SCHEDULE),
        );
    }
}

/// Whether a node should run the DaemonSet's pod: `should_run` when none runs there yet,
/// `should_continue_running` when one already does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeFit {
    pub should_run: bool,
    pub should_continue_running: bool,
}

/// What a DaemonSet asks of a node, read once per sync: the template's `nodeName`, its node
/// selector and required affinity, and its tolerations with the automatic ones added.
#[derive(Debug, Clone)]
pub struct Eligibility {
    node_name: Option<String>,
    required: RequiredNodeAffinity,
    tolerations: Vec<Toleration>,
}

impl Eligibility {
    pub fn new(ds: &DaemonSet) -> Eligibility {
        let mut spec = template_spec(ds).cloned().unwrap_or_default();
        add_daemon_tolerations(&mut spec);
        let pod = Pod {
            spec: Some(PodSpec {
                node_selector: spec.node_selector.clone(),
                affinity: spec.affinity.clone(),
                ..Default::default()
            }),
            ..Default::default()
        };
        Eligibility {
            node_name: spec.node_name.filter(|n| !n.is_empty()),
            required: RequiredNodeAffinity::from_pod(&pod),
            tolerations: spec.tolerations.unwrap_or_default(),
        }
    }

    /// Upstream's `NodeShouldRunDaemonPod`: the template's `nodeName` (if any) and its node
    /// selector and required affinity must match; a NoSchedule or NoExecute taint the pod
    /// does not tolerate keeps new pods off, and only an untolerated NoExecute taint also
    /// removes a running one.
    pub fn fit(&self, node: &Node) -> NodeFit {
        let name = node.metadata.name.as_deref().unwrap_or_default();
        let none = NodeFit {
            should_run: false,
            should_continue_running: false,
        };
        if self.node_name.as_deref().is_some_and(|n| n != name) || !self.required.matches(node) {
            return none;
        }
        let taints: &[Taint] = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.as_deref())
            .unwrap_or_default();
        let hard = |t: &Taint| t.effect == NO_SCHEDULE || t.effect == NO_EXECUTE;
        if find_untolerated_taint(taints, &self.tolerations, hard).is_none() {
            return NodeFit {
                should_run: true,
                should_continue_running: true,
            };
        }
        let evicting = |t: &Taint| t.effect == NO_EXECUTE;
        NodeFit {
            should_run: false,
            should_continue_running: find_untolerated_taint(taints, &self.tolerations, evicting)
                .is_none(),
        }
    }
}

/// The DaemonSet's template generation: upstream's deprecated annotation, or, since this API
/// server does not keep that annotation, `metadata.generation` (only ever higher after a
/// template change, so a pod labelled with it was made from the current template or a
/// later-unchanged one).
pub fn template_generation(ds: &DaemonSet) -> Option<i64> {
    match ds
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(TEMPLATE_GENERATION_ANNOTATION))
    {
        // Upstream ignores an annotation that does not parse.
        Some(v) => v.parse().ok(),
        None => ds.metadata.generation,
    }
}

/// Upstream's `IsPodUpdated`: the pod carries the current revision's hash, or the current
/// template generation.
pub fn is_pod_updated(pod: &Pod, hash: &str, generation: Option<i64>) -> bool {
    let label = |k: &str| pod.metadata.labels.as_ref().and_then(|l| l.get(k));
    let generation_matches = generation.is_some_and(|g| {
        label(TEMPLATE_GENERATION_LABEL).map(String::as_str) == Some(&*g.to_string())
    });
    let hash_matches =
        !hash.is_empty() && label(POD_REVISION_LABEL).map(String::as_str) == Some(hash);
    hash_matches || generation_matches
}

/// Upstream's `CreatePodTemplate`: the DaemonSet's template with the automatic tolerations,
/// the template generation and the revision hash as labels.
pub fn pod_template(ds: &DaemonSet, hash: &str) -> PodTemplateSpec {
    let mut template = ds
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    add_daemon_tolerations(template.spec.get_or_insert_with(Default::default));
    let labels = template
        .metadata
        .get_or_insert_with(Default::default)
        .labels
        .get_or_insert_with(Default::default);
    if let Some(g) = template_generation(ds) {
        labels.insert(TEMPLATE_GENERATION_LABEL.to_string(), g.to_string());
    }
    if !hash.is_empty() {
        labels.insert(POD_REVISION_LABEL.to_string(), hash.to_string());
    }
    template
}

/// Upstream's `ReplaceDaemonSetPodNodeNameNodeAffinity`: the required node affinity becomes
/// the single term `metadata.name In [node]`, so that the scheduler binds the pod to that
/// node; preferred terms and other affinities are kept.
pub fn replace_node_affinity(affinity: Option<Affinity>, node: &str) -> Affinity {
    let selector = NodeSelector {
        node_selector_terms: vec![NodeSelectorTerm {
            match_fields: Some(vec![NodeSelectorRequirement {
                key: OBJECT_NAME_FIELD.to_string(),
                operator: "In".to_string(),
                values: Some(vec![node.to_string()]),
            }]),
            match_expressions: None,
        }],
    };
    let mut affinity = affinity.unwrap_or_default();
    let node_affinity = affinity
        .node_affinity
        .get_or_insert_with(NodeAffinity::default);
    node_affinity.required_during_scheduling_ignored_during_execution = Some(selector);
    affinity
}

/// The pod for `node`: `template` (from [`pod_template`]) pinned to the node by affinity and
/// owned by the DaemonSet. `spec.nodeName` stays unset: the scheduler binds it.
pub fn daemon_pod(ds: &DaemonSet, template: &PodTemplateSpec, node: &str) -> Pod {
    let ns = ds.metadata.namespace.as_deref().unwrap_or_default();
    let mut pod = pod_from_template(
        template,
        ns,
        controller_ref(&ds.metadata, API_VERSION, KIND),
    );
    if let Some(spec) = pod.spec.as_mut() {
        spec.affinity = Some(replace_node_affinity(spec.affinity.take(), node));
    }
    pod
}

/// Upstream's `GetTargetNodeName`: the pod's `spec.nodeName`, or for a pending pod the node
/// its required affinity pins it to (the first `metadata.name In` field requirement, which
/// must have exactly one value).
pub fn target_node_name(pod: &Pod) -> Option<&str> {
    let spec = pod.spec.as_ref()?;
    if let Some(n) = spec.node_name.as_deref().filter(|n| !n.is_empty()) {
        return Some(n);
    }
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    let req = terms
        .iter()
        .flat_map(|t| t.match_fields.iter().flatten())
        .find(|r| r.key == OBJECT_NAME_FIELD && r.operator == "In")?;
    match req.values.as_deref() {
        Some([one]) => Some(one.as_str()),
        _ => None,
    }
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Failed") | Some("Succeeded")
    )
}

/// Upstream's `getNodesToDaemonPods`: the DaemonSet's pods by the node they are for. Pods
/// that are terminal and being deleted are left out unless `include_deleted_terminal`, and
/// so are pods with no target node.
pub fn pods_by_node<'a>(
    pods: &[&'a Pod],
    include_deleted_terminal: bool,
) -> BTreeMap<String, Vec<&'a Pod>> {
    let mut out: BTreeMap<String, Vec<&'a Pod>> = BTreeMap::new();
    for pod in pods {
        if !include_deleted_terminal
            && is_terminal(pod)
            && pod.metadata.deletion_timestamp.is_some()
        {
            continue;
        }
        if let Some(node) = target_node_name(pod) {
            out.entry(node.to_string()).or_default().push(pod);
        }
    }
    out
}

fn bound(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty())
}

/// Upstream's `podByCreationTimestampAndPhase`: bound pods first, then older first, then by
/// name.
pub fn oldest_first(a: &Pod, b: &Pod) -> Ordering {
    let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    bound(b)
        .cmp(&bound(a))
        .then_with(|| created(a).cmp(&created(b)))
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

/// Upstream's failed-pods backoff (`flowcontrol.Backoff` of 1 s doubling to 15 min, keyed by
/// DaemonSet, observed generation and node): a node whose daemon pod keeps failing gets its
/// replacement deleted less and less often.
#[derive(Debug, Default)]
pub struct FailedPodBackoff {
    entries: HashMap<String, (Duration, Timestamp)>,
}

impl FailedPodBackoff {
    pub const INITIAL: Duration = Duration::from_secs(1);
    pub const MAX: Duration = Duration::from_secs(15 * 60);

    fn since(now: Timestamp, then: Timestamp) -> Duration {
        now.duration_since(then)
            .try_into()
            .unwrap_or(Duration::ZERO)
    }

    /// An entry untouched for twice the maximum is forgotten.
    fn expired(now: Timestamp, last: Timestamp) -> bool {
        Self::since(now, last) > 2 * Self::MAX
    }

    /// The current delay of `key` if it is still in backoff at `now`.
    pub fn in_backoff(&self, key: &str, now: Timestamp) -> Option<Duration> {
        let (delay, last) = *self.entries.get(key)?;
        (!Self::expired(now, last) && Self::since(now, last) < delay).then_some(delay)
    }

    /// Records an attempt for `key` at `now`: the delay starts at [`Self::INITIAL`] and
    /// doubles up to [`Self::MAX`].
    pub fn next(&mut self, key: &str, now: Timestamp) {
        let delay = match self.entries.get(key) {
            Some((d, last)) if !Self::expired(now, *last) => (*d * 2).min(Self::MAX),
            _ => Self::INITIAL,
        };
        self.entries.insert(key.to_string(), (delay, now));
    }

    /// Forgets expired entries.
    pub fn gc(&mut self, now: Timestamp) {
        self.entries
            .retain(|_, (_, last)| !Self::expired(now, *last));
    }
}

/// Upstream's `failedPodsBackoffKey`.
pub fn backoff_key(ds: &DaemonSet, node: &str) -> String {
    let observed = ds
        .status
        .as_ref()
        .and_then(|s| s.observed_generation)
        .unwrap_or(0);
    format!(
        "{}/{observed}/{node}",
        ds.metadata.uid.as_deref().unwrap_or_default()
    )
}

/// An event about the DaemonSet that `manage` decided on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub warning: bool,
    pub reason: &'static str,
    pub message: String,
}

/// What one sync's `manage` does.
#[derive(Debug, Default)]
pub struct ManagePlan<'a> {
    /// Nodes to create a daemon pod for.
    pub create_on: Vec<String>,
    /// Pods to delete.
    pub delete: Vec<&'a Pod>,
    /// Events to record.
    pub notes: Vec<Note>,
    /// A failed pod waits out its backoff: look again after this.
    pub retry_after: Option<Duration>,
}

/// Whether the DaemonSet's rolling update may surge (run a new pod next to an old one).
pub fn allows_surge(ds: &DaemonSet) -> bool {
    super::update::surge_count(ds, 1).is_ok_and(|n| n > 0)
}

fn pod_name(p: &Pod) -> &str {
    p.metadata.name.as_deref().unwrap_or_default()
}

/// Upstream's `manage` decisions: for each node, upstream's `podsShouldBeOnNode` (create a
/// pod where one should run and none does; delete failed and succeeded pods, failed ones
/// subject to the per-node backoff; keep the oldest of duplicates, or with surge the oldest
/// new and oldest old pod while the new one is not yet available; delete every pod on a
/// node where it should not continue running), then pending pods pinned to nodes that do
/// not exist (`getUnscheduledPodsWithoutNode`).
pub fn plan_manage<'a>(
    ds: &DaemonSet,
    fit: &Eligibility,
    nodes: &[&Node],
    by_node: &BTreeMap<String, Vec<&'a Pod>>,
    hash: &str,
    backoff: &mut FailedPodBackoff,
    now: Timestamp,
) -> ManagePlan<'a> {
    let mut plan = ManagePlan::default();
    let surge = allows_surge(ds);
    let min_ready = ds
        .spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0);
    for node in nodes {
        let name = node.metadata.name.as_deref().unwrap_or_default();
        let f = fit.fit(node);
        let pods = by_node.get(name);
        match pods {
            None if f.should_run => plan.create_on.push(name.to_string()),
            _ if f.should_continue_running => {
                let mut running: Vec<&'a Pod> = Vec::new();
                for pod in pods.into_iter().flatten().copied() {
                    if pod.metadata.deletion_timestamp.is_some() {
                        continue;
                    }
                    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
                    let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
                    match phase {
                        Some("Failed") => {
                            let key = backoff_key(ds, name);
                            if let Some(delay) = backoff.in_backoff(&key, now) {
                                plan.retry_after =
                                    Some(plan.retry_after.map_or(delay, |d| d.min(delay)));
                                continue;
                            }
                            backoff.next(&key, now);
                            plan.notes.push(Note {
                                warning: true,
                                reason: FAILED_DAEMON_POD,
                                message: format!(
                                    "Found failed daemon pod {ns}/{} on node {name}, will try to kill it",
                                    pod_name(pod)
                                ),
                            });
                            plan.delete.push(pod);
                        }
                        Some("Succeeded") => {
                            plan.notes.push(Note {
                                warning: false,
                                reason: SUCCEEDED_DAEMON_POD,
                                message: format!(
                                    "Found succeeded daemon pod {ns}/{} on node {name}, will try to delete it",
                                    pod_name(pod)
                                ),
                            });
                            plan.delete.push(pod);
                        }
                        _ => running.push(pod),
                    }
                }
                running.sort_by(|a, b| oldest_first(a, b));
                if !surge {
                    plan.delete.extend(running.iter().skip(1));
                    continue;
                }
                if running.len() <= 1 {
                    // Surging needs at least one live pod on the node.
                    if running.is_empty() && f.should_run {
                        plan.create_on.push(name.to_string());
                    }
                    continue;
                }
                // With surge, at most the oldest new and the oldest old pod stay, and the old
                // one only while it is ready and the new one not yet available.
                let is_new = |p: &Pod| {
                    p.metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get(POD_REVISION_LABEL))
                        == Some(&hash.to_string())
                };
                let (mut oldest_new, mut oldest_old) = (None, None);
                for pod in running {
                    let slot = if is_new(pod) {
                        &mut oldest_new
                    } else {
                        &mut oldest_old
                    };
                    if slot.is_none() {
                        *slot = Some(pod);
                    } else {
                        plan.delete.push(pod);
                    }
                }
                if let (Some(new), Some(old)) = (oldest_new, oldest_old) {
                    if !is_pod_ready(old) || is_pod_available(new, min_ready, now) {
                        plan.delete.push(old);
                    }
                }
            }
            Some(pods) => plan.delete.extend(
                pods.iter()
                    .copied()
                    .filter(|p| p.metadata.deletion_timestamp.is_none()),
            ),
            None => {}
        }
    }
    let known: std::collections::HashSet<&str> = nodes
        .iter()
        .filter_map(|n| n.metadata.name.as_deref())
        .collect();
    for (node, pods) in by_node {
        if !known.contains(node.as_str()) {
            plan.delete
                .extend(pods.iter().copied().filter(|p| !bound(p)));
        }
    }
    plan
}

/// Upstream's `updateDaemonSetStatus` counts over the nodes: desired (should run), current
/// (should run and has a pod), misscheduled (has a pod but should not run), and of the
/// oldest pod on each desired node whether it is ready, available and updated.
/// `observedGeneration` moves only when `observe` (the sync acted on this generation);
/// `collisionCount` is the one the revisions were named with. Zero optional counts are left
/// out, as upstream's `omitempty`.
#[allow(clippy::too_many_arguments)]
pub fn calculate_status(
    ds: &DaemonSet,
    fit: &Eligibility,
    nodes: &[&Node],
    by_node: &BTreeMap<String, Vec<&Pod>>,
    hash: &str,
    now: Timestamp,
    observe: bool,
    collision_count: Option<i32>,
) -> DaemonSetStatus {
    let mut status = ds.status.clone().unwrap_or_default();
    let min_ready = ds
        .spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0);
    let generation = template_generation(ds);
    let (mut desired, mut current, mut misscheduled) = (0, 0, 0);
    let (mut ready, mut available, mut updated) = (0, 0, 0);
    for node in nodes {
        let name = node.metadata.name.as_deref().unwrap_or_default();
        let pods = by_node.get(name).filter(|p| !p.is_empty());
        if !fit.fit(node).should_run {
            misscheduled += i32::from(pods.is_some());
            continue;
        }
        desired += 1;
        let Some(pods) = pods else { continue };
        current += 1;
        let Some(pod) = pods.iter().copied().min_by(|a, b| oldest_first(a, b)) else {
            continue;
        };
        if is_pod_ready(pod) {
            ready += 1;
            available += i32::from(is_pod_available(pod, min_ready, now));
        }
        updated += i32::from(is_pod_updated(pod, hash, generation));
    }
    let opt = |n: i32| (n != 0).then_some(n);
    status.desired_number_scheduled = desired;
    status.current_number_scheduled = current;
    status.number_misscheduled = misscheduled;
    status.number_ready = ready;
    status.updated_number_scheduled = opt(updated);
    status.number_available = opt(available);
    status.number_unavailable = opt(desired - available);
    if observe {
        status.observed_generation = ds.metadata.generation;
    }
    status.collision_count = collision_count;
    status
}

/// Whether `new` differs from the DaemonSet's status in anything the controller writes
/// (absent and zero counts are the same).
pub fn status_changed(old: Option<&DaemonSetStatus>, new: &DaemonSetStatus) -> bool {
    let key = |s: &DaemonSetStatus| {
        (
            [
                s.desired_number_scheduled,
                s.current_number_scheduled,
                s.number_misscheduled,
                s.number_ready,
                s.updated_number_scheduled.unwrap_or(0),
                s.number_available.unwrap_or(0),
                s.number_unavailable.unwrap_or(0),
            ],
            s.observed_generation.unwrap_or(0),
            s.collision_count,
        )
    };
    old.map(key) != Some(key(new))
}

/// When to look again so that pods ready but not yet ready for `minReadySeconds` are
/// counted as available: a second after the first of them becomes available (upstream adds
/// the second against clock skew).
pub fn availability_requeue(ds: &DaemonSet, pods: &[&Pod], now: Timestamp) -> Option<Duration> {
    let min_ready = ds
        .spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0);
    if min_ready <= 0 {
        return None;
    }
    pods.iter()
        .filter(|p| is_pod_ready(p) && !is_pod_available(p, min_ready, now))
        .filter_map(|p| ready_condition(p)?.last_transition_time.as_ref())
        .map(|t| {
            let due = t.0 + SignedDuration::from_secs(i64::from(min_ready) + 1);
            Duration::try_from(due.duration_since(now)).unwrap_or(Duration::ZERO)
        })
        .min()
        .map(|d| d.max(Duration::from_secs(1)))
}
