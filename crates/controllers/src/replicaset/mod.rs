//! `replicaset` and `replicationcontroller` (upstream's replicaset-controller and
//! replicationcontroller-controller): keep `spec.replicas` pods matching each ReplicaSet
//! (or ReplicationController) running, and report their counts in its status.
//!
//! Upstream runs the ReplicationController controller as the ReplicaSet controller over
//! converted objects; so does this module: one generic driver over [`Workload`], one pure
//! core ([`sync`]). Each sync claims the namespace's active pods (adopting matching orphans,
//! releasing owned pods that no longer match), then, once the controller's expectations are
//! satisfied (its earlier creations and deletions reached the cache), creates missing pods in
//! slow-start batches or deletes surplus ones in upstream's order, and writes the status
//! (`replicas`, `fullyLabeledReplicas`, `readyReplicas`, `availableReplicas`,
//! `observedGeneration`, the `ReplicaFailure` condition). Events: `SuccessfulCreate`,
//! `FailedCreate`, `SuccessfulDelete`, `FailedDelete`.

pub mod sync;

use std::collections::HashSet;
use std::fmt::Debug;
use std::sync::Arc;

use crate::events::Recorder;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetStatus};
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use rkube_api::selector::LabelSelector;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::controller_utils::{
    adopt_patch, claim, controller_of, controller_ref, is_pod_active, key_of, pod_from_template,
    release_patch, slow_start_batch, Expectations, PodSightings, SLOW_START_INITIAL_BATCH_SIZE,
};
use crate::driver::{drive, on_objects, Events, Triggers};
use crate::error::{api_message, is_conflict, is_namespace_terminating, is_not_found};
use crate::events::publish;
use crate::{ControllerContext, Error};
use sync::{availability_requeue, calculate_status, replica_change, ManageFailure, ReplicaChange};

pub const NAME: &str = "replicaset";
pub const RC_NAME: &str = "replicationcontroller";

/// A kind this controller manages: ReplicaSet itself, or ReplicationController seen as one.
pub trait Workload:
    Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + Clone
    + Serialize
    + DeserializeOwned
    + Debug
    + Send
    + Sync
    + 'static
{
    /// The `--controllers` name.
    const CONTROLLER: &'static str;
    /// The component events are reported as (upstream's recorder name).
    const COMPONENT: &'static str;
    /// The object as a ReplicaSet (its selector a `matchLabels` for an RC).
    fn as_replica_set(&self) -> ReplicaSet;
    /// The object with this status.
    fn with_status(&self, status: ReplicaSetStatus) -> Self;
}

impl Workload for ReplicaSet {
    const CONTROLLER: &'static str = NAME;
    const COMPONENT: &'static str = "replicaset-controller";

    fn as_replica_set(&self) -> ReplicaSet {
        self.clone()
    }

    fn with_status(&self, status: ReplicaSetStatus) -> Self {
        ReplicaSet {
            status: Some(status),
            ..self.clone()
        }
    }
}

impl Workload for ReplicationController {
    const CONTROLLER: &'static str = RC_NAME;
    const COMPONENT: &'static str = "replication-controller";

    fn as_replica_set(&self) -> ReplicaSet {
        let spec = self.spec.as_ref();
        // API defaulting has already given a selector-less RC its template's labels.
        let selector = spec.and_then(|s| s.selector.clone());
        let v = serde_json::json!({
            "metadata": self.metadata,
            "spec": {
                "replicas": spec.and_then(|s| s.replicas),
                "minReadySeconds": spec.and_then(|s| s.min_ready_seconds),
                "selector": {"matchLabels": selector},
                "template": spec.and_then(|s| s.template.clone()),
            },
            "status": self.status,
        });
        // Both shapes are k8s-openapi's own, so the conversion cannot fail on input; an
        // empty ReplicaSet (selecting nothing) is the safe fallback regardless.
        serde_json::from_value(v).unwrap_or_default()
    }

    fn with_status(&self, status: ReplicaSetStatus) -> Self {
        let status = serde_json::to_value(status)
            .ok()
            .and_then(|v| serde_json::from_value(v).ok());
        ReplicationController {
            status,
            ..self.clone()
        }
    }
}

struct State<K: Workload> {
    client: Client,
    pods: Store<Pod>,
    workloads: Store<K>,
    expectations: Arc<Expectations>,
    recorder: Recorder,
}

/// Runs the ReplicaSet controller until its watches end.
pub async fn run(client: Client, ctx: Arc<ControllerContext>) -> Result<(), Error> {
    run_for::<ReplicaSet>(client, ctx).await
}

/// Runs the ReplicationController controller until its watches end.
pub async fn run_replication_controllers(
    client: Client,
    ctx: Arc<ControllerContext>,
) -> Result<(), Error> {
    run_for::<ReplicationController>(client, ctx).await
}

/// Whether `r` points at a `K`.
fn refers_to<K: Workload>(
    r: &k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
) -> bool {
    r.kind == K::kind(&()) && r.api_version == K::api_version(&())
}

async fn run_for<K: Workload>(client: Client, ctx: Arc<ControllerContext>) -> Result<(), Error> {
    let (workloads, workload_events) = ctx.informer::<K>(K::CONTROLLER, &client).await;
    let (pods, pod_events) = ctx.informer::<Pod>(K::CONTROLLER, &client).await;
    let expectations = Arc::new(Expectations::default());
    let forget = expectations.clone();
    let workload_events: Events<K> = workload_events
        .inspect(move |ev| {
            if let watcher::Event::Delete(obj) = ev {
                forget.delete(&key_of(obj.meta()));
            }
        })
        .boxed();
    let triggers = vec![
        on_objects(workload_events, true, |w: &K| Some(ObjectRef::from_obj(w))),
        pod_triggers::<K>(pod_events, workloads.clone(), expectations.clone()),
    ];
    let recorder = crate::events::recorder(client.clone(), K::COMPONENT);
    let state = Arc::new(State {
        client,
        pods,
        workloads: workloads.clone(),
        expectations,
        recorder,
    });
    drive(
        K::CONTROLLER,
        &ctx,
        workloads,
        triggers,
        state,
        reconcile::<K>,
    )
    .await
}

/// Pod events observe expectations (a pod first seen is a creation, one deleted or being
/// deleted a deletion) and queue the pod's controller, or for an orphan every controller of
/// its namespace whose selector matches (one of them may adopt it).
fn pod_triggers<K: Workload>(
    events: Events<Pod>,
    workloads: Store<K>,
    expectations: Arc<Expectations>,
) -> Triggers<K> {
    let sightings = PodSightings::default();
    events
        .flat_map(move |ev| {
            let (pod, deleted) = match &ev {
                watcher::Event::Apply(p) | watcher::Event::InitApply(p) => (p, false),
                watcher::Event::Delete(p) => (p, true),
                _ => return futures::stream::iter(Vec::new()),
            };
            let ns = pod.namespace().unwrap_or_default();
            let sighting = sightings.sight(pod, deleted);
            let keys: Vec<ObjectRef<K>> = match controller_of(&pod.metadata) {
                Some(r) if refers_to::<K>(r) => {
                    let owner = format!("{ns}/{}", r.name);
                    expectations.observe(&owner, sighting, &key_of(&pod.metadata));
                    vec![ObjectRef::new(&r.name).within(&ns)]
                }
                Some(_) => Vec::new(),
                None if deleted => Vec::new(),
                None => workloads
                    .state()
                    .into_iter()
                    .filter(|w| w.namespace().as_deref() == Some(ns.as_str()))
                    .filter(|w| {
                        let rs = w.as_replica_set();
                        let sel = rs.spec.as_ref().map(|s| &s.selector);
                        LabelSelector::from_typed(sel)
                            .is_ok_and(|s| !s.is_empty() && s.matches(&pod.metadata.labels))
                    })
                    .map(|w| ObjectRef::from_obj(w.as_ref()))
                    .collect(),
            };
            futures::stream::iter(keys)
        })
        .boxed()
}

impl<K: Workload> State<K> {
    /// Active pods of the namespace controlled by the ReplicaSets that share `rs`'s own
    /// controller (a Deployment's), for ranking deletions by node.
    fn related_pods(&self, rs: &ReplicaSet, ns: &str) -> Vec<Arc<Pod>> {
        let mut owners: HashSet<String> = rs.metadata.uid.iter().cloned().collect();
        if let Some(parent) = controller_of(&rs.metadata) {
            owners.extend(
                self.workloads
                    .state()
                    .iter()
                    .map(|w| w.meta())
                    .filter(|m| m.namespace.as_deref() == Some(ns))
                    .filter(|m| controller_of(m).is_some_and(|r| r.uid == parent.uid))
                    .filter_map(|m| m.uid.clone()),
            );
        }
        self.pods
            .state()
            .into_iter()
            .filter(|p| p.namespace().as_deref() == Some(ns))
            .filter(|p| controller_of(&p.metadata).is_some_and(|r| owners.contains(&r.uid)))
            .filter(|p| is_pod_active(p))
            .collect()
    }
}

async fn reconcile<K: Workload>(obj: Arc<K>, st: Arc<State<K>>) -> Result<Action, Error> {
    st.pods
        .wait_until_ready()
        .await
        .map_err(|_| Error::CacheStopped(K::CONTROLLER))?;
    let rs = obj.as_replica_set();
    let key = key_of(&rs.metadata);
    let ns = rs.namespace().unwrap_or_default();
    let selector = match LabelSelector::from_typed(rs.spec.as_ref().map(|s| &s.selector)) {
        Ok(s) => s,
        // Validation refuses such selectors; upstream logs and does not retry either.
        Err(e) => {
            tracing::warn!(controller = K::CONTROLLER, key, error = %e, "invalid selector");
            return Ok(Action::await_change());
        }
    };
    // Checked before reading pods: a creation observed in between then only delays the
    // next sync, never lets it act on a cache that lacks the pod.
    let needs_sync = st.expectations.satisfied(&key);
    let all: Vec<Arc<Pod>> = st
        .pods
        .state()
        .into_iter()
        .filter(|p| p.namespace().as_deref() == Some(ns.as_str()) && is_pod_active(p))
        .collect();
    let owned = claim_pods(obj.as_ref(), &rs, &selector, &all, &st).await?;
    let owned_refs: Vec<&Pod> = owned.iter().map(|p| p.as_ref()).collect();
    let now = Timestamp::now();

    let mut failure = None;
    let mut manage_error = None;
    if needs_sync && rs.metadata.deletion_timestamp.is_none() {
        let related = || st.related_pods(&rs, &ns);
        match replica_change(&rs, &owned_refs, related, now) {
            ReplicaChange::None => {}
            ReplicaChange::Create(n) => {
                if let Err(e) = create_pods(obj.as_ref(), &rs, &key, n, &st).await {
                    failure = Some(ManageFailure {
                        reason: "FailedCreate",
                        message: api_message(&e),
                    });
                    manage_error = Some(e);
                }
            }
            ReplicaChange::Delete(pods) => {
                if let Err(e) = delete_pods(obj.as_ref(), &key, &pods, &st).await {
                    failure = Some(ManageFailure {
                        reason: "FailedDelete",
                        message: api_message(&e),
                    });
                    manage_error = Some(e);
                }
            }
        }
    }

    let status = calculate_status(&rs, &owned_refs, failure.as_ref(), now);
    let requeue = availability_requeue(&rs, &status);
    if rs.status.as_ref() != Some(&status) {
        let api = Api::<K>::namespaced(st.client.clone(), &ns);
        let updated = obj.with_status(status);
        match api
            .replace_status(&obj.name_any(), &PostParams::default(), &updated)
            .await
        {
            Ok(_) => {}
            // A newer object is on its way through the watch, which queues it again.
            Err(e) if is_conflict(&e) || is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(e) = manage_error {
        return Err(e.into());
    }
    Ok(requeue.map_or_else(Action::await_change, Action::requeue))
}

/// Claims the namespace's active pods for `rs`: adopts matching orphans and releases owned
/// pods that no longer match through the API; returns the pods it owns afterwards.
async fn claim_pods<K: Workload>(
    obj: &K,
    rs: &ReplicaSet,
    selector: &LabelSelector,
    all: &[Arc<Pod>],
    st: &State<K>,
) -> Result<Vec<Arc<Pod>>, Error> {
    let claims = claim(&rs.metadata, selector, all.iter().map(|p| p.as_ref()));
    let find = |p: &Pod| all.iter().find(|a| a.uid() == p.uid()).cloned();
    let mut owned: Vec<Arc<Pod>> = claims.owned.iter().filter_map(|p| find(p)).collect();
    let ns = rs.namespace().unwrap_or_default();
    let pods = Api::<Pod>::namespaced(st.client.clone(), &ns);
    let params = PatchParams::default();
    let uid = rs.metadata.uid.clone().unwrap_or_default();
    let mut first_error: Option<kube::Error> = None;
    if !claims.adopt.is_empty() && can_adopt(obj, st).await? {
        let oref = controller_ref(&rs.metadata, &K::api_version(&()), &K::kind(&()));
        for pod in &claims.adopt {
            let patch = adopt_patch(&pod.metadata, &oref);
            match pods
                .patch(&pod.name_any(), &params, &Patch::Merge(&patch))
                .await
            {
                Ok(adopted) => owned.push(Arc::new(adopted)),
                // Gone, or changed since the cache saw it: the next sync looks again.
                Err(e) if is_not_found(&e) || is_conflict(&e) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
    }
    for pod in &claims.release {
        let patch = release_patch(&pod.metadata, &uid);
        match pods
            .patch(&pod.name_any(), &params, &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {}
            Err(e) if is_not_found(&e) || is_conflict(&e) => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e.into()),
        None => Ok(owned),
    }
}

/// Upstream's `RecheckDeletionTimestamp`: adopt only if a live read still shows the same
/// object, not being deleted (the cache may lag a deletion).
async fn can_adopt<K: Workload>(obj: &K, st: &State<K>) -> Result<bool, Error> {
    let ns = obj.namespace().unwrap_or_default();
    let api = Api::<K>::namespaced(st.client.clone(), &ns);
    match api.get_opt(&obj.name_any()).await? {
        Some(fresh) => {
            Ok(fresh.meta().uid == obj.meta().uid && fresh.meta().deletion_timestamp.is_none())
        }
        None => Ok(false),
    }
}

async fn create_pods<K: Workload>(
    obj: &K,
    rs: &ReplicaSet,
    key: &str,
    n: usize,
    st: &State<K>,
) -> Result<(), kube::Error> {
    let template = rs
        .spec
        .as_ref()
        .and_then(|s| s.template.clone())
        .unwrap_or_default();
    let ns = rs.namespace().unwrap_or_default();
    let oref = controller_ref(&rs.metadata, &K::api_version(&()), &K::kind(&()));
    let pod = pod_from_template(&template, &ns, oref);
    let api = Api::<Pod>::namespaced(st.client.clone(), &ns);
    st.expectations.expect_creations(key, n);
    let (created, err) = slow_start_batch(n, SLOW_START_INITIAL_BATCH_SIZE, |_| {
        let api = api.clone();
        let pod = pod.clone();
        async move {
            match api.create(&PostParams::default(), &pod).await {
                Ok(p) => {
                    let note = format!("Created pod: {}", p.name_any());
                    publish(
                        &st.recorder,
                        &obj.object_ref(&()),
                        EventType::Normal,
                        "SuccessfulCreate",
                        note,
                    )
                    .await;
                    Ok(())
                }
                // The namespace is going away; nothing to create, and no error to report.
                Err(e) if is_namespace_terminating(&e) => Err(None),
                Err(e) => {
                    let note = format!("Error creating: {}", api_message(&e));
                    publish(
                        &st.recorder,
                        &obj.object_ref(&()),
                        EventType::Warning,
                        "FailedCreate",
                        note,
                    )
                    .await;
                    Err(Some(e))
                }
            }
        }
    })
    .await;
    // Creations that failed or were never tried will never be observed.
    st.expectations.lower(key, n - created);
    match err.flatten() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

async fn delete_pods<K: Workload>(
    obj: &K,
    key: &str,
    pods: &[&Pod],
    st: &State<K>,
) -> Result<(), kube::Error> {
    st.expectations
        .expect_deletions(key, pods.iter().map(|p| key_of(&p.metadata)));
    let deletions = pods.iter().map(|pod| async move {
        let api = Api::<Pod>::namespaced(st.client.clone(), &pod.namespace().unwrap_or_default());
        match api.delete(&pod.name_any(), &DeleteParams::default()).await {
            Ok(_) => {
                let note = format!("Deleted pod: {}", pod.name_any());
                publish(
                    &st.recorder,
                    &obj.object_ref(&()),
                    EventType::Normal,
                    "SuccessfulDelete",
                    note,
                )
                .await;
                Ok(())
            }
            Err(e) => {
                // This deletion will not be observed.
                st.expectations
                    .deletion_observed(key, &key_of(&pod.metadata));
                if is_not_found(&e) {
                    return Ok(());
                }
                let note = format!("Error deleting: {}", api_message(&e));
                publish(
                    &st.recorder,
                    &obj.object_ref(&()),
                    EventType::Warning,
                    "FailedDelete",
                    note,
                )
                .await;
                Err(e)
            }
        }
    });
    let results = futures::future::join_all(deletions).await;
    results
        .into_iter()
        .collect::<Result<Vec<()>, _>>()
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn replication_controllers_are_seen_as_replica_sets_and_take_their_status_back() {
        let rc: ReplicationController = serde_json::from_value(json!({
            "metadata": {"name": "rc", "namespace": "ns", "uid": "u", "generation": 2},
            "spec": {"replicas": 3, "minReadySeconds": 5, "selector": {"app": "rc"},
                "template": {"metadata": {"labels": {"app": "rc", "v": "1"}}}}
        }))
        .unwrap();
        let rs = rc.as_replica_set();
        let spec = rs.spec.as_ref().unwrap();
        assert_eq!(json!(spec.selector.match_labels), json!({"app": "rc"}));
        assert_eq!((spec.replicas, spec.min_ready_seconds), (Some(3), Some(5)));
        assert_eq!(rs.metadata.uid.as_deref(), Some("u"));
        let status = ReplicaSetStatus {
            replicas: 2,
            ready_replicas: Some(1),
            observed_generation: Some(2),
            ..Default::default()
        };
        let back = rc.with_status(status);
        let s = back.status.unwrap();
        assert_eq!(
            (s.replicas, s.ready_replicas, s.observed_generation),
            (2, Some(1), Some(2))
        );
    }
}
