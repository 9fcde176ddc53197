//! `taint-eviction-controller` (upstream's `TaintEvictionController`, the taint manager):
//! deletes pods from nodes with NoExecute taints they do not tolerate.
//!
//! A pod that does not tolerate every NoExecute taint of its node is deleted at once. One
//! that tolerates them all, some only for `tolerationSeconds`, is deleted that long after the
//! controller first saw it on the tainted node (the least `tolerationSeconds` of the
//! tolerations used; a negative one counts as zero); one that tolerates them forever stays.
//! Before deleting, the pod gets the `DisruptionTarget` condition (reason
//! `DeletionByTaintManager`) and a `TaintManagerEviction` event, as upstream. The clock of
//! "first saw" is kept in memory, so a restart starts it again, as upstream's queue.
//!
//! Keys are pods; a node's change queues every pod on it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::events::Recorder;
use k8s_openapi::api::core::v1::{Node, Pod, PodCondition, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, Resource, ResourceExt};
pub use rkube_api::scheduling::tolerates;

use crate::driver::{drive, on_objects};
use crate::error::{is_conflict, is_not_found};
use crate::events::publish;
use crate::{ControllerContext, Error};

pub const NAME: &str = "taint-eviction-controller";

/// The condition reason upstream's taint manager sets before deleting.
pub const REASON: &str = "DeletionByTaintManager";
pub const MESSAGE: &str = "Taint manager: deleting due to NoExecute taint";

/// What becomes of a pod on a node with these taints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No NoExecute taint, or tolerated forever.
    Stay,
    /// A NoExecute taint not tolerated.
    EvictNow,
    /// Tolerated for this long.
    EvictAfter(Duration),
}

/// The verdict for a pod with `tolerations` on a node with `taints` (only NoExecute ones
/// count): each taint is matched with the first toleration that tolerates it, and the least
/// `tolerationSeconds` of those decides.
pub fn verdict(tolerations: &[Toleration], taints: &[Taint]) -> Verdict {
    let mut least: Option<i64> = None;
    for taint in taints.iter().filter(|t| t.effect == "NoExecute") {
        let Some(tol) = tolerations.iter().find(|tol| tolerates(tol, taint)) else {
            return Verdict::EvictNow;
        };
        if let Some(secs) = tol.toleration_seconds {
            least = Some(least.map_or(secs, |l| l.min(secs)));
        }
    }
    match least {
        None => Verdict::Stay,
        Some(secs) => Verdict::EvictAfter(Duration::from_secs(secs.max(0) as u64)),
    }
}

/// When a pod first seen on its tainted node at `since` is due, given the verdict: `None`
/// when it stays.
pub fn due(verdict: Verdict, since: Timestamp) -> Option<Timestamp> {
    match verdict {
        Verdict::Stay => None,
        Verdict::EvictNow => Some(since),
        Verdict::EvictAfter(d) => Some(since.saturating_add(d).unwrap_or(since)),
    }
}

/// The pod's conditions with `DisruptionTarget` True for the taint manager.
pub fn with_disruption_target(
    conditions: &[PodCondition],
    reason: &str,
    message: &str,
    now: Timestamp,
) -> Vec<PodCondition> {
    let mut out: Vec<PodCondition> = conditions
        .iter()
        .filter(|c| c.type_ != "DisruptionTarget")
        .cloned()
        .collect();
    out.push(PodCondition {
        type_: "DisruptionTarget".into(),
        status: "True".into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_transition_time: Some(Time(now)),
        ..Default::default()
    });
    out
}

struct State {
    client: Client,
    nodes: Store<Node>,
    recorder: Recorder,
    /// When each pod (by uid) was first seen on a NoExecute-tainted node it tolerates.
    since: Mutex<HashMap<String, Timestamp>>,
}

/// Runs the controller until its watches end.
pub async fn run(client: Client, ctx: Arc<ControllerContext>) -> Result<(), Error> {
    let (pods, pod_events) = ctx.informer::<Pod>(NAME, &client).await;
    let (nodes, node_events) = ctx.informer::<Node>(NAME, &client).await;
    let pods_of_node = pods.clone();
    let triggers = vec![
        on_objects(pod_events, false, |p: &Pod| {
            p.spec
                .as_ref()
                .and_then(|s| s.node_name.as_ref())
                .map(|_| ObjectRef::from_obj(p))
        }),
        on_objects(node_events, false, move |n: &Node| {
            let name = n.name_any();
            let has_no_execute = n
                .spec
                .as_ref()
                .and_then(|s| s.taints.as_ref())
                .is_some_and(|ts| ts.iter().any(|t| t.effect == "NoExecute"));
            if !has_no_execute {
                return Vec::new();
            }
            pods_of_node
                .state()
                .into_iter()
                .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(&name))
                .map(|p| ObjectRef::from_obj(p.as_ref()))
                .collect()
        }),
    ];
    let recorder = crate::events::recorder(client.clone(), NAME);
    let state = Arc::new(State {
        client,
        nodes,
        recorder,
        since: Mutex::new(HashMap::new()),
    });
    drive(NAME, &ctx, pods, triggers, state, reconcile).await
}

async fn reconcile(pod: Arc<Pod>, st: Arc<State>) -> Result<Action, Error> {
    let uid = pod.uid().unwrap_or_default();
    let node_name = pod.spec.as_ref().and_then(|s| s.node_name.clone());
    let taints = node_name
        .and_then(|n| st.nodes.get(&ObjectRef::new(&n)))
        .and_then(|n| n.spec.as_ref()?.taints.clone())
        .unwrap_or_default();
    let tolerations = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.clone())
        .unwrap_or_default();
    let now = Timestamp::now();
    let v = verdict(&tolerations, &taints);
    let since = {
        let mut since = st.since.lock().unwrap_or_else(|p| p.into_inner());
        if v == Verdict::Stay || pod.metadata.deletion_timestamp.is_some() {
            since.remove(&uid);
            return Ok(Action::await_change());
        }
        *since.entry(uid.clone()).or_insert(now)
    };
    let Some(at) = due(v, since) else {
        return Ok(Action::await_change());
    };
    if at > now {
        let wait = now.duration_since(at).unsigned_abs();
        return Ok(Action::requeue(wait));
    }
    evict(&st, &pod, now).await?;
    st.since
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&uid);
    Ok(Action::await_change())
}

/// Marks the pod a disruption target, then deletes it (with its own grace period).
async fn evict(st: &State, pod: &Pod, now: Timestamp) -> Result<(), Error> {
    let ns = pod.namespace().unwrap_or_default();
    let name = pod.name_any();
    let api = Api::<Pod>::namespaced(st.client.clone(), &ns);
    publish(
        &st.recorder,
        &pod.object_ref(&()),
        EventType::Normal,
        "TaintManagerEviction",
        format!("Marking for deletion Pod {ns}/{name}"),
    )
    .await;
    let mut updated = pod.clone();
    let status = updated.status.get_or_insert_with(Default::default);
    let conds = status.conditions.as_deref().unwrap_or_default();
    status.conditions = Some(with_disruption_target(conds, REASON, MESSAGE, now));
    match api
        .replace_status(&name, &PostParams::default(), &updated)
        .await
    {
        Ok(_) => {}
        Err(e) if is_not_found(&e) => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    let dp = DeleteParams {
        preconditions: pod.uid().map(|uid| kube::api::Preconditions {
            uid: Some(uid),
            resource_version: None,
        }),
        ..Default::default()
    };
    match api.delete(&name, &dp).await {
        Ok(_) => {
            tracing::info!(controller = NAME, namespace = %ns, pod = %name, "evicted pod from NoExecute-tainted node");
            Ok(())
        }
        Err(e) if is_not_found(&e) || is_conflict(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str, value: Option<&str>, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            value: value.map(Into::into),
            effect: effect.into(),
            time_added: None,
        }
    }

    fn tol(
        key: &str,
        op: &str,
        value: Option<&str>,
        effect: &str,
        secs: Option<i64>,
    ) -> Toleration {
        Toleration {
            key: (!key.is_empty()).then(|| key.into()),
            operator: (!op.is_empty()).then(|| op.into()),
            value: value.map(Into::into),
            effect: (!effect.is_empty()).then(|| effect.into()),
            toleration_seconds: secs,
        }
    }

    const UNREACH: &str = "node.kubernetes.io/unreachable";
    const NOT_READY: &str = "node.kubernetes.io/not-ready";

    #[test]
    fn verdict_follows_tolerations_of_noexecute_taints() {
        let unreachable = taint(UNREACH, None, "NoExecute");
        let not_ready = taint(NOT_READY, None, "NoExecute");
        let no_schedule = taint("x", None, "NoSchedule");
        let cases: &[(&str, Vec<Toleration>, Vec<Taint>, Verdict)] = &[
            ("no taints", vec![], vec![], Verdict::Stay),
            (
                "only NoSchedule",
                vec![],
                vec![no_schedule.clone()],
                Verdict::Stay,
            ),
            (
                "untolerated",
                vec![],
                vec![unreachable.clone()],
                Verdict::EvictNow,
            ),
            (
                "tolerated forever",
                vec![tol(UNREACH, "Exists", None, "NoExecute", None)],
                vec![unreachable.clone()],
                Verdict::Stay,
            ),
            (
                "tolerated for 300 s",
                vec![tol(UNREACH, "Exists", None, "NoExecute", Some(300))],
                vec![unreachable.clone()],
                Verdict::EvictAfter(Duration::from_secs(300)),
            ),
            (
                "least seconds over taints",
                vec![
                    tol(UNREACH, "Exists", None, "NoExecute", Some(300)),
                    tol(NOT_READY, "Exists", None, "", Some(20)),
                ],
                vec![unreachable.clone(), not_ready.clone()],
                Verdict::EvictAfter(Duration::from_secs(20)),
            ),
            (
                "one of two taints untolerated",
                vec![tol(UNREACH, "Exists", None, "NoExecute", None)],
                vec![unreachable.clone(), not_ready.clone()],
                Verdict::EvictNow,
            ),
            (
                "empty key with Exists tolerates all",
                vec![tol("", "Exists", None, "", None)],
                vec![unreachable.clone(), not_ready.clone()],
                Verdict::Stay,
            ),
            (
                "Equal needs the value",
                vec![tol("k", "Equal", Some("a"), "NoExecute", None)],
                vec![taint("k", Some("b"), "NoExecute")],
                Verdict::EvictNow,
            ),
            (
                "Equal with the value",
                vec![tol("k", "", Some("a"), "NoExecute", None)],
                vec![taint("k", Some("a"), "NoExecute")],
                Verdict::Stay,
            ),
            (
                "wrong effect does not tolerate",
                vec![tol(UNREACH, "Exists", None, "NoSchedule", None)],
                vec![unreachable.clone()],
                Verdict::EvictNow,
            ),
            (
                "negative seconds mean now",
                vec![tol(UNREACH, "Exists", None, "NoExecute", Some(-5))],
                vec![unreachable.clone()],
                Verdict::EvictAfter(Duration::ZERO),
            ),
        ];
        for (what, tols, taints, want) in cases {
            assert_eq!(verdict(tols, taints), *want, "{what}");
        }
    }

    #[test]
    fn due_counts_from_first_seen() {
        let t0 = Timestamp::from_second(1000).unwrap();
        assert_eq!(due(Verdict::Stay, t0), None);
        assert_eq!(due(Verdict::EvictNow, t0), Some(t0));
        assert_eq!(
            due(Verdict::EvictAfter(Duration::from_secs(5)), t0),
            Some(Timestamp::from_second(1005).unwrap())
        );
    }

    #[test]
    fn disruption_target_replaces_an_old_one() {
        let old = PodCondition {
            type_: "DisruptionTarget".into(),
            status: "False".into(),
            ..Default::default()
        };
        let ready = PodCondition {
            type_: "Ready".into(),
            status: "True".into(),
            ..Default::default()
        };
        let got = with_disruption_target(
            &[ready.clone(), old],
            REASON,
            MESSAGE,
            Timestamp::UNIX_EPOCH,
        );
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], ready);
        assert_eq!(got[1].status, "True");
        assert_eq!(got[1].reason.as_deref(), Some(REASON));
    }
}
