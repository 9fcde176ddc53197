//! `disruption` (upstream's disruption-controller): keeps the status of every
//! PodDisruptionBudget, which the API server's eviction subresource reads and decrements.
//!
//! As upstream's `pkg/controller/disruption`: the budget's pods are those of its namespace
//! its selector picks (an empty selector picks all, a missing one none). An integer
//! `minAvailable` expects the selected pods and desires that many healthy; a percentage
//! `minAvailable` or any `maxUnavailable` expects the sum of the scales of the pods'
//! controllers (ReplicationController, the Deployment of a ReplicaSet that has one, a
//! ReplicaSet, a StatefulSet, found through ownerReferences), percentages rounded up. Healthy
//! pods are Ready ones neither being deleted nor listed in `disruptedPods`; entries there
//! older than two minutes, or whose pod is gone or terminating, are dropped, and the budget
//! is looked at again when the next one expires. `disruptionsAllowed` is healthy minus
//! desired (0 when nothing is expected) and the `DisruptionAllowed` condition says
//! `SufficientPods` or `InsufficientPods`; a sync that fails writes the fail-safe status
//! (`disruptionsAllowed` 0, `SyncFailed` with the error). The pure core is [`core`].
//!
//! Not done: upstream's generic `scale`-subresource finder (pods owned by other kinds make the
//! sync fail) and the cleanup of stale `DisruptionTarget` pod conditions. Events are recorded
//! when the status is written, not on every sync.

pub mod core;
#[cfg(test)]
mod core_tests;

use std::sync::{Arc, OnceLock};

use crate::events::Recorder;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{ObjectReference, Pod, ReplicationController};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::PostParams;
use kube::runtime::controller::Action;

use crate::events;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, Resource, ResourceExt};

use crate::driver::{drive, on_objects};
use crate::error::{is_conflict, is_not_found};
use crate::{ControllerContext, Error};

pub const NAME: &str = "disruption";
/// The component upstream's events name.
const COMPONENT: &str = "controllermanager";

/// The controller's caches of the workloads a percentage is taken of.
struct Caches {
    rcs: Store<ReplicationController>,
    rss: Store<ReplicaSet>,
    deployments: Store<Deployment>,
    statefulsets: Store<StatefulSet>,
}

impl core::Workloads for Caches {
    fn replication_controller(&self, ns: &str, name: &str) -> Option<Arc<ReplicationController>> {
        self.rcs.get(&ObjectRef::new(name).within(ns))
    }
    fn replica_set(&self, ns: &str, name: &str) -> Option<Arc<ReplicaSet>> {
        self.rss.get(&ObjectRef::new(name).within(ns))
    }
    fn deployment(&self, ns: &str, name: &str) -> Option<Arc<Deployment>> {
        self.deployments.get(&ObjectRef::new(name).within(ns))
    }
    fn stateful_set(&self, ns: &str, name: &str) -> Option<Arc<StatefulSet>> {
        self.statefulsets.get(&ObjectRef::new(name).within(ns))
    }
}

struct State {
    client: Client,
    pods: Store<Pod>,
    workloads: Caches,
    recorder: OnceLock<Recorder>,
}

impl State {
    async fn record(&self, pdb: &PodDisruptionBudget, ev: &core::Event) {
        let recorder = self
            .recorder
            .get_or_init(|| events::recorder(self.client.clone(), COMPONENT));
        let regarding = match &ev.pod {
            Some(pod) => ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                namespace: pdb.namespace(),
                name: Some(pod.clone()),
                ..Default::default()
            },
            None => pdb.object_ref(&()),
        };
        let (type_, note) = (events::event_type(ev.warning), ev.message.clone());
        events::publish(recorder, &regarding, type_, ev.reason, note).await;
    }
}

/// Runs the controller until its watches end.
pub async fn run(client: Client, ctx: Arc<ControllerContext>) -> Result<(), Error> {
    let (pdbs, pdb_events) = ctx.informer::<PodDisruptionBudget>(NAME, &client).await;
    let (pods, pod_events) = ctx.informer::<Pod>(NAME, &client).await;
    let (rcs, _) = ctx.informer::<ReplicationController>(NAME, &client).await;
    let (rss, _) = ctx.informer::<ReplicaSet>(NAME, &client).await;
    let (deployments, _) = ctx.informer::<Deployment>(NAME, &client).await;
    let (statefulsets, _) = ctx.informer::<StatefulSet>(NAME, &client).await;
    let pdb_store = pdbs.clone();
    let triggers = vec![
        on_objects(pdb_events, false, |b: &PodDisruptionBudget| {
            Some(ObjectRef::from_obj(b))
        }),
        // A pod wakes the budgets that select it (upstream picks one; all are kept here).
        on_objects(pod_events, true, move |p: &Pod| {
            let ns = p.namespace().unwrap_or_default();
            let all = pdb_store.state();
            core::budgets_for_pod(p, all.iter().map(|b| b.as_ref()))
                .into_iter()
                .map(|name| ObjectRef::new(&name).within(&ns))
                .collect::<Vec<_>>()
        }),
    ];
    let state = Arc::new(State {
        client,
        pods,
        workloads: Caches {
            rcs,
            rss,
            deployments,
            statefulsets,
        },
        recorder: OnceLock::new(),
    });
    drive(NAME, &ctx, pdbs, triggers, state, reconcile).await
}

async fn reconcile(pdb: Arc<PodDisruptionBudget>, st: Arc<State>) -> Result<Action, Error> {
    let w = &st.workloads;
    let ready = [
        st.pods.wait_until_ready().await.is_ok(),
        w.rcs.wait_until_ready().await.is_ok(),
        w.rss.wait_until_ready().await.is_ok(),
        w.deployments.wait_until_ready().await.is_ok(),
        w.statefulsets.wait_until_ready().await.is_ok(),
    ];
    if ready.contains(&false) {
        return Err(Error::CacheStopped(NAME));
    }
    let now = jiff::Timestamp::now();
    let all = st.pods.state();
    let pods: Vec<&Pod> = all.iter().map(|p| p.as_ref()).collect();
    let plan = core::sync(&pdb, &pods, w, now);
    if let Some(err) = &plan.failed {
        tracing::warn!(controller = NAME, pdb = %ObjectRef::from_obj(pdb.as_ref()), error = %err,
            "failed to sync PDB");
    }
    let Some(status) = plan.status else {
        return Ok(requeue(plan.recheck_at, now));
    };
    for ev in &plan.events {
        st.record(&pdb, ev).await;
    }
    let mut new = pdb.as_ref().clone();
    new.metadata.managed_fields = None;
    new.status = Some(status);
    let api = Api::<PodDisruptionBudget>::namespaced(
        st.client.clone(),
        &pdb.namespace().unwrap_or_default(),
    );
    match api
        .replace_status(&pdb.name_any(), &PostParams::default(), &new)
        .await
    {
        Ok(_) => Ok(requeue(plan.recheck_at, now)),
        // The cache was behind: the newer budget's event queues it again.
        Err(e) if is_conflict(&e) || is_not_found(&e) => {
            Ok(Action::requeue(std::time::Duration::from_secs(1)))
        }
        Err(e) => Err(e.into()),
    }
}

/// Look again when the first disrupted pod's entry expires (upstream's recheck queue).
fn requeue(at: Option<jiff::Timestamp>, now: jiff::Timestamp) -> Action {
    match at {
        Some(at) => {
            let wait = at.duration_since(now).unsigned_abs();
            Action::requeue(wait + std::time::Duration::from_millis(100))
        }
        None => Action::await_change(),
    }
}
