//! `pod-garbage-collector` (upstream's `PodGCController`): force-deletes pods nobody else
//! will, every `gc_check_period`:
//! - **terminated** pods (Succeeded or Failed) beyond `terminated_pod_gc_threshold`,
//!   evicted ones first, then oldest first by creation (name breaking ties);
//! - **orphaned** pods, bound to a node that has not existed for the quarantine (40 s), re-
//!   checked against the API before deleting; a non-terminal one is first marked Failed with
//!   the `DisruptionTarget` condition (reason `DeletionByPodGC`);
//! - **unscheduled terminating** pods (a deletionTimestamp and no node);
//! - **terminating pods on out-of-service nodes** (not Ready and tainted
//!   `node.kubernetes.io/out-of-service`), whose kubelet will never finish them.
//!
//! Non-terminal pods are marked Failed before deletion, as upstream; deletion is forced
//! (grace period 0) with the pod's uid as precondition.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::{Api, Client, ResourceExt};

use crate::error::{is_conflict, is_not_found};
use crate::tainteviction::with_disruption_target;
use crate::{ControllerContext, Error};

pub const NAME: &str = "pod-garbage-collector";

/// The taint that says a node is out of service.
pub const OUT_OF_SERVICE: &str = "node.kubernetes.io/out-of-service";

/// The condition reason and message for orphaned pods.
pub const REASON: &str = "DeletionByPodGC";
pub const ORPHAN_MESSAGE: &str = "PodGC: node no longer exists";

/// The controller's settings, upstream's flags and constants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodGcConfig {
    /// Terminated pods kept at most (`--terminated-pod-gc-threshold`, 12500); 0 keeps all.
    pub terminated_pod_gc_threshold: usize,
    /// How often pods are collected (upstream's `gcCheckPeriod`, 20 s).
    pub gc_check_period: Duration,
    /// How long a node must be gone before its pods are orphans (`quarantineTime`, 40 s).
    pub quarantine: Duration,
}

impl Default for PodGcConfig {
    fn default() -> Self {
        PodGcConfig {
            terminated_pod_gc_threshold: 12500,
            gc_check_period: Duration::from_secs(20),
            quarantine: Duration::from_secs(40),
        }
    }
}

/// Why a pod is collected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    Terminated,
    Orphaned,
    UnscheduledTerminating,
    OutOfService,
}

fn phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or_default()
}

fn is_terminated(p: &Pod) -> bool {
    matches!(phase(p), "Succeeded" | "Failed")
}

fn is_evicted(p: &Pod) -> bool {
    phase(p) == "Failed" && p.status.as_ref().and_then(|s| s.reason.as_deref()) == Some("Evicted")
}

fn node_of(p: &Pod) -> Option<&str> {
    p.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
}

fn out_of_service(n: &Node) -> bool {
    let tainted = n
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|ts| ts.iter().any(|t| t.key == OUT_OF_SERVICE));
    let ready = n
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True");
    tainted && !ready
}

/// Remembers since when each missing node has been missing (the quarantine).
#[derive(Debug, Default)]
pub struct Quarantine {
    missing_since: HashMap<String, Timestamp>,
}

impl Quarantine {
    /// Updates the memory with the nodes pods are bound to that do not exist, and returns
    /// those missing for at least `period`.
    pub fn expired(
        &mut self,
        missing: BTreeSet<String>,
        now: Timestamp,
        period: Duration,
    ) -> BTreeSet<String> {
        self.missing_since.retain(|n, _| missing.contains(n));
        missing
            .into_iter()
            .filter(|n| {
                let since = *self.missing_since.entry(n.clone()).or_insert(now);
                now >= since.saturating_add(period).unwrap_or(now)
            })
            .collect()
    }
}

/// The pods to collect and why, given the pods, the nodes (name → node) and which missing
/// nodes are past their quarantine. A pod is listed once, for its first reason.
pub fn plan<'a>(
    pods: &[&'a Pod],
    nodes: &HashMap<String, &Node>,
    orphaned_nodes: &BTreeSet<String>,
    threshold: usize,
) -> Vec<(&'a Pod, Why)> {
    let mut out: Vec<(&Pod, Why)> = Vec::new();
    if threshold > 0 {
        let mut terminated: Vec<&Pod> = pods.iter().copied().filter(|p| is_terminated(p)).collect();
        if terminated.len() > threshold {
            terminated.sort_by(|a, b| {
                is_evicted(b)
                    .cmp(&is_evicted(a))
                    .then_with(|| {
                        a.metadata
                            .creation_timestamp
                            .cmp(&b.metadata.creation_timestamp)
                    })
                    .then_with(|| a.metadata.name.cmp(&b.metadata.name))
            });
            let n = terminated.len() - threshold;
            out.extend(terminated.into_iter().take(n).map(|p| (p, Why::Terminated)));
        }
    }
    let terminated: HashSet<*const Pod> = out.iter().map(|(p, _)| *p as *const Pod).collect();
    for p in pods {
        if terminated.contains(&(*p as *const Pod)) {
            continue;
        }
        let terminating = p.metadata.deletion_timestamp.is_some();
        let why = match node_of(p) {
            Some(n) if orphaned_nodes.contains(n) => Some(Why::Orphaned),
            Some(n) => nodes
                .get(n)
                .filter(|node| terminating && out_of_service(node))
                .map(|_| Why::OutOfService),
            None if terminating => Some(Why::UnscheduledTerminating),
            None => None,
        };
        out.extend(why.map(|w| (*p, w)));
    }
    out
}

/// The nodes pods are bound to that are not in `nodes`.
pub fn missing_nodes(pods: &[&Pod], nodes: &HashMap<String, &Node>) -> BTreeSet<String> {
    pods.iter()
        .filter_map(|p| node_of(p))
        .filter(|n| !nodes.contains_key(*n))
        .map(str::to_string)
        .collect()
}

/// Runs the controller until the pod watch ends, with `ctx.pod_gc`.
pub async fn run(client: Client, ctx: Arc<ControllerContext>) -> Result<(), Error> {
    let cfg = ctx.pod_gc.clone();
    let (pods, mut pod_events) = ctx.informer::<Pod>(NAME, &client).await;
    let (nodes, node_events) = ctx.informer::<Node>(NAME, &client).await;
    tokio::spawn(node_events.for_each(|_| async {}));
    let mut quarantine = Quarantine::default();
    let mut tick = tokio::time::interval(cfg.gc_check_period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tracing::info!(controller = NAME, "starting controller");
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            ev = pod_events.next() => {
                // Pod events only keep a cache of our own filling; collection is periodic.
                if ev.is_none() { break; }
                continue;
            }
        }
        let all_pods = pods.state();
        let all_nodes = nodes.state();
        let pod_refs: Vec<&Pod> = all_pods.iter().map(|p| p.as_ref()).collect();
        let node_map: HashMap<String, &Node> = all_nodes
            .iter()
            .map(|n| (n.name_any(), n.as_ref()))
            .collect();
        let now = Timestamp::now();
        let candidates =
            quarantine.expired(missing_nodes(&pod_refs, &node_map), now, cfg.quarantine);
        // The cache may lag: a node is an orphan's only if the API says it is gone.
        let mut orphaned = BTreeSet::new();
        let node_api = Api::<Node>::all(client.clone());
        for n in candidates {
            match node_api.get_opt(&n).await {
                Ok(None) => {
                    orphaned.insert(n);
                }
                Ok(Some(_)) => {}
                Err(e) => {
                    tracing::warn!(controller = NAME, node = %n, error = %e, "checking node failed")
                }
            }
        }
        for (pod, why) in plan(
            &pod_refs,
            &node_map,
            &orphaned,
            cfg.terminated_pod_gc_threshold,
        ) {
            if let Err(e) = collect(&client, pod, why, now).await {
                tracing::warn!(controller = NAME, pod = %pod.name_any(), error = %e, "collecting pod failed, will retry");
            }
        }
    }
    tracing::info!(controller = NAME, "controller stopped");
    Ok(())
}

/// Marks a non-terminal pod Failed (with `DisruptionTarget` for an orphan), then force
/// deletes it.
async fn collect(client: &Client, pod: &Pod, why: Why, now: Timestamp) -> Result<(), Error> {
    let ns = pod.namespace().unwrap_or_default();
    let name = pod.name_any();
    let api = Api::<Pod>::namespaced(client.clone(), &ns);
    if !is_terminated(pod) {
        // A patch, the verb upstream's role grants on pods/status; guarded by uid and
        // resourceVersion so it lands only on the pod this decision was made for.
        let mut status = serde_json::json!({"phase": "Failed"});
        if why == Why::Orphaned {
            let conds = pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_deref())
                .unwrap_or_default();
            let conds = with_disruption_target(conds, REASON, ORPHAN_MESSAGE, now);
            status["conditions"] = serde_json::to_value(conds).unwrap_or_default();
        }
        let patch = serde_json::json!({
            "metadata": {"uid": pod.metadata.uid, "resourceVersion": pod.metadata.resource_version},
            "status": status,
        });
        match api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {}
            Err(e) if is_not_found(&e) || is_conflict(&e) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
    let dp = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: pod.uid().map(|uid| Preconditions {
            uid: Some(uid),
            resource_version: None,
        }),
        ..Default::default()
    };
    match api.delete(&name, &dp).await {
        Ok(_) => {
            tracing::info!(controller = NAME, namespace = %ns, pod = %name, reason = ?why, "garbage collected pod");
            Ok(())
        }
        Err(e) if is_not_found(&e) || is_conflict(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        NodeCondition, NodeSpec, NodeStatus, PodSpec, PodStatus, Taint,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use kube::api::ObjectMeta;

    fn pod(name: &str, created: i64, node: Option<&str>, phase: &str, terminating: bool) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                creation_timestamp: Some(Time(Timestamp::from_second(created).unwrap())),
                deletion_timestamp: terminating.then_some(Time(Timestamp::UNIX_EPOCH)),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: node.map(Into::into),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                ..Default::default()
            }),
        }
    }

    fn node(name: &str, ready: bool, oos: bool) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            spec: Some(NodeSpec {
                taints: oos.then(|| {
                    vec![Taint {
                        key: OUT_OF_SERVICE.into(),
                        effect: "NoExecute".into(),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
            status: Some(NodeStatus {
                conditions: Some(vec![NodeCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn pods_are_collected_for_upstreams_reasons() {
        let mut evicted = pod("evicted", 9, None, "Failed", false);
        evicted.status.as_mut().unwrap().reason = Some("Evicted".into());
        let pods = vec![
            pod("done-old", 1, None, "Succeeded", false),
            pod("done-new", 5, None, "Succeeded", false),
            pod("failed-mid", 3, None, "Failed", false),
            evicted,
            pod("orphan", 2, Some("gone"), "Running", false),
            pod("quarantined", 2, Some("just-gone"), "Running", false),
            pod("unscheduled-terminating", 2, None, "Pending", true),
            pod("unscheduled", 2, None, "Pending", false),
            pod("oos-terminating", 2, Some("oos"), "Running", true),
            pod("oos-running", 2, Some("oos"), "Running", false),
            pod(
                "ready-oos-terminating",
                2,
                Some("ready-oos"),
                "Running",
                true,
            ),
            pod("healthy-terminating", 2, Some("ok"), "Running", true),
        ];
        let nodes = [
            node("ok", true, false),
            node("oos", false, true),
            node("ready-oos", true, true),
        ];
        let node_map: HashMap<String, &Node> = nodes.iter().map(|n| (n.name_any(), n)).collect();
        let refs: Vec<&Pod> = pods.iter().collect();
        assert_eq!(
            missing_nodes(&refs, &node_map),
            BTreeSet::from(["gone".to_string(), "just-gone".to_string()])
        );
        let orphaned = BTreeSet::from(["gone".to_string()]);
        let got: Vec<(String, Why)> = plan(&refs, &node_map, &orphaned, 2)
            .into_iter()
            .map(|(p, w)| (p.name_any(), w))
            .collect();
        let want = [
            ("evicted", Why::Terminated),
            ("done-old", Why::Terminated),
            ("orphan", Why::Orphaned),
            ("unscheduled-terminating", Why::UnscheduledTerminating),
            ("oos-terminating", Why::OutOfService),
        ];
        let want: Vec<(String, Why)> = want.iter().map(|(n, w)| (n.to_string(), *w)).collect();
        assert_eq!(got, want);
        // Threshold 0 keeps every terminated pod.
        assert!(plan(&refs, &node_map, &BTreeSet::new(), 0)
            .iter()
            .all(|(_, w)| *w != Why::Terminated));
    }

    #[test]
    fn a_missing_node_is_an_orphan_only_after_the_quarantine() {
        let mut q = Quarantine::default();
        let t = |s: i64| Timestamp::from_second(1000 + s).unwrap();
        let period = Duration::from_secs(40);
        let missing = |ns: &[&str]| ns.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        assert!(q.expired(missing(&["a"]), t(0), period).is_empty());
        assert!(q.expired(missing(&["a", "b"]), t(39), period).is_empty());
        assert_eq!(
            q.expired(missing(&["a", "b"]), t(40), period),
            missing(&["a"])
        );
        // A node that came back starts over if it goes missing again.
        assert!(q.expired(missing(&["b"]), t(50), period).is_empty());
        assert!(q.expired(missing(&["a", "b"]), t(60), period).is_empty());
        assert_eq!(
            q.expired(missing(&["a", "b"]), t(100), period),
            missing(&["a", "b"])
        );
    }
}
