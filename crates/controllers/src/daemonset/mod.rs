//! `daemonset` (upstream's daemonset-controller): one pod of each DaemonSet on every node
//! that should run it, rolled to new templates, with its status.
//!
//! A node should run the pod when the template's node selector and required node affinity
//! match it and its NoSchedule and NoExecute taints are tolerated, counting the tolerations
//! every daemon pod gets (not-ready and unreachable NoExecute forever; disk, memory and PID
//! pressure, unschedulable, and for host-network pods network-unavailable NoSchedule); a
//! running pod stays unless a NoExecute taint is not tolerated ([`core::Eligibility`]). Pods
//! are made from the template with those tolerations, the labels `controller-revision-hash`
//! and `pod-template-generation`, and the required node affinity replaced by `metadata.name
//! In [node]`, so the scheduler binds each to its node. A pod counts as on a node by its
//! `spec.nodeName`, or, while pending, by that affinity.
//!
//! Each sync (upstream's `syncDaemonSet`) constructs the revision history (claims the
//! namespace's ControllerRevisions, finds or creates the one holding the current template,
//! renumbers it to be the newest, drops duplicates; a name collision bumps
//! `status.collisionCount`), then, once its expectations are met, runs `manage` (create
//! missing pods in slow-start batches, delete misplaced, duplicate, failed and succeeded
//! pods, failed ones with a per-node backoff), the rolling update (`maxUnavailable` and
//! `maxSurge`; nothing for `OnDelete`) when `manage` had nothing to do, and the history
//! cleanup (`revisionHistoryLimit`), and writes the status through the status subresource
//! when it changed. Events: `SuccessfulCreate`, `FailedCreate`, `SuccessfulDelete`,
//! `FailedDelete`, `FailedDaemonPod`, `SucceededDaemonPod`, `SelectingAll`.

pub mod core;
pub mod update;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod update_tests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::events::Recorder;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Node, Pod, Taint};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use rkube_api::selector::LabelSelector;

use self::core::{
    availability_requeue, calculate_status, daemon_pod, plan_manage, pod_template, pods_by_node,
    status_changed, Eligibility, FailedPodBackoff, NodeFit, BURST_REPLICAS, KIND, SELECTING_ALL,
};
use self::update::{is_rolling_update, rolling_update};
use crate::controller_utils::{
    adopt_patch, claim, controller_of, controller_ref, key_of, release_patch, slow_start_batch,
    Expectations, PodSightings, SLOW_START_INITIAL_BATCH_SIZE,
};
use crate::driver::{drive, on_objects, Events, Triggers};
use crate::error::{api_message, is_conflict, is_namespace_terminating, is_not_found};
use crate::events::{event_type, publish};
use crate::{ControllerContext, Error};

mod revisions;

pub const NAME: &str = "daemonset";

/// The component events are reported as.
pub const COMPONENT: &str = "daemonset-controller";

struct State {
    client: Client,
    pods: Store<Pod>,
    nodes: Store<Node>,
    revisions: Store<ControllerRevision>,
    expectations: Arc<Expectations>,
    backoff: Mutex<FailedPodBackoff>,
    recorder: Recorder,
}

/// Runs the DaemonSet controller until its watches end.
pub async fn run(client: Client, ctx: Arc<ControllerContext>) -> Result<(), Error> {
    let (sets, set_events) = ctx.informer::<DaemonSet>(NAME, &client).await;
    let (pods, pod_events) = ctx.informer::<Pod>(NAME, &client).await;
    let (nodes, node_events) = ctx.informer::<Node>(NAME, &client).await;
    let (revisions, revision_events) = ctx.informer::<ControllerRevision>(NAME, &client).await;
    let expectations = Arc::new(Expectations::default());
    let forget = expectations.clone();
    let set_events: Events<DaemonSet> = set_events
        .inspect(move |ev| {
            if let watcher::Event::Delete(ds) = ev {
                forget.delete(&key_of(&ds.metadata));
            }
        })
        .boxed();
    let triggers = vec![
        on_objects(set_events, true, |ds: &DaemonSet| {
            Some(ObjectRef::from_obj(ds))
        }),
        pod_triggers(pod_events, sets.clone(), expectations.clone()),
        node_triggers(node_events, sets.clone()),
        revision_triggers(revision_events, sets.clone()),
    ];
    let state = Arc::new(State {
        recorder: crate::events::recorder(client.clone(), COMPONENT),
        client,
        pods,
        nodes,
        revisions,
        expectations,
        backoff: Mutex::default(),
    });
    drive(NAME, &ctx, sets, triggers, state, reconcile).await
}

/// The DaemonSet a controller reference names, as a key, if it is one.
fn daemon_set_key(
    r: &k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
    ns: &str,
) -> Option<ObjectRef<DaemonSet>> {
    (r.kind == KIND && r.api_version.starts_with("apps/"))
        .then(|| ObjectRef::new(&r.name).within(ns))
}

/// The DaemonSets of namespace `ns` whose selector matches `labels` (candidates to adopt an
/// orphan).
fn selecting(
    sets: &Store<DaemonSet>,
    ns: &str,
    labels: &Option<std::collections::BTreeMap<String, String>>,
) -> Vec<ObjectRef<DaemonSet>> {
    sets.state()
        .into_iter()
        .filter(|ds| ds.namespace().as_deref() == Some(ns))
        .filter(|ds| {
            let sel = ds.spec.as_ref().map(|s| &s.selector);
            LabelSelector::from_typed(sel).is_ok_and(|s| !s.is_empty() && s.matches(labels))
        })
        .map(|ds| ObjectRef::from_obj(ds.as_ref()))
        .collect()
}

/// Pod events observe expectations (a pod first seen is a creation, one deleted or being
/// deleted a deletion) and queue the pod's DaemonSet, or for an orphan every DaemonSet of
/// its namespace whose selector matches.
fn pod_triggers(
    events: Events<Pod>,
    sets: Store<DaemonSet>,
    expectations: Arc<Expectations>,
) -> Triggers<DaemonSet> {
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
            let keys = match controller_of(&pod.metadata) {
                Some(r) => match daemon_set_key(r, &ns) {
                    Some(key) => {
                        let owner = format!("{ns}/{}", r.name);
                        expectations.observe(&owner, sighting, &key_of(&pod.metadata));
                        vec![key]
                    }
                    None => Vec::new(),
                },
                None if deleted => Vec::new(),
                None => selecting(&sets, &ns, &pod.metadata.labels),
            };
            futures::stream::iter(keys)
        })
        .boxed()
}

/// What of a node decides whether daemon pods run on it: its name, labels and taints.
fn node_shape(node: &Node) -> Node {
    Node {
        metadata: kube::api::ObjectMeta {
            name: node.metadata.name.clone(),
            labels: node.metadata.labels.clone(),
            ..Default::default()
        },
        spec: Some(k8s_openapi::api::core::v1::NodeSpec {
            taints: node.spec.as_ref().and_then(|s| s.taints.clone()),
            ..Default::default()
        }),
        status: None,
    }
}

/// Node events queue the DaemonSets whose placement they change (upstream's `addNode` and
/// `updateNode`): a new node queues those that should run on it; a changed node those whose
/// `should run` or `should continue running` differs from before; a deleted one all that had
/// it, so their counts drop.
fn node_triggers(events: Events<Node>, sets: Store<DaemonSet>) -> Triggers<DaemonSet> {
    let known: Mutex<HashMap<String, Node>> = Mutex::default();
    events
        .flat_map(move |ev| {
            let (node, deleted) = match &ev {
                watcher::Event::Apply(n) | watcher::Event::InitApply(n) => (n, false),
                watcher::Event::Delete(n) => (n, true),
                _ => return futures::stream::iter(Vec::new()),
            };
            let name = node.name_any();
            let shape = node_shape(node);
            let before = {
                let mut known = known.lock().unwrap_or_else(|p| p.into_inner());
                if deleted {
                    known.remove(&name)
                } else {
                    known.insert(name, shape.clone())
                }
            };
            let unchanged = before.as_ref().is_some_and(|b| {
                b.metadata.labels == shape.metadata.labels && taints(b) == taints(&shape)
            });
            if unchanged && !deleted {
                return futures::stream::iter(Vec::new());
            }
            let none = NodeFit {
                should_run: false,
                should_continue_running: false,
            };
            let keys: Vec<ObjectRef<DaemonSet>> = sets
                .state()
                .into_iter()
                .filter(|ds| {
                    let fit = Eligibility::new(ds);
                    let old = before.as_ref().map_or(none, |b| fit.fit(b));
                    let new = if deleted { none } else { fit.fit(&shape) };
                    old != new
                })
                .map(|ds| ObjectRef::from_obj(ds.as_ref()))
                .collect();
            futures::stream::iter(keys)
        })
        .boxed()
}

fn taints(node: &Node) -> Option<&Vec<Taint>> {
    node.spec.as_ref()?.taints.as_ref()
}

/// ControllerRevision events queue the revision's DaemonSet, or for an orphan every
/// DaemonSet of its namespace whose selector matches it.
fn revision_triggers(
    events: Events<ControllerRevision>,
    sets: Store<DaemonSet>,
) -> Triggers<DaemonSet> {
    on_objects(events, true, move |rev: &ControllerRevision| {
        let ns = rev.namespace().unwrap_or_default();
        match controller_of(&rev.metadata) {
            Some(r) => daemon_set_key(r, &ns).into_iter().collect(),
            None => selecting(&sets, &ns, &rev.metadata.labels),
        }
    })
}

async fn reconcile(ds: Arc<DaemonSet>, st: Arc<State>) -> Result<Action, Error> {
    for ready in [
        st.pods.wait_until_ready().await,
        st.nodes.wait_until_ready().await,
        st.revisions.wait_until_ready().await,
    ] {
        ready.map_err(|_| Error::CacheStopped(NAME))?;
    }
    let key = key_of(&ds.metadata);
    let spec_selector = ds.spec.as_ref().map(|s| &s.selector);
    let selector = match LabelSelector::from_typed(spec_selector) {
        Ok(s) => s,
        // Validation refuses such selectors; upstream logs and does not retry either.
        Err(e) => {
            tracing::warn!(controller = NAME, key, error = %e, "invalid selector");
            return Ok(Action::await_change());
        }
    };
    if selector.is_empty() {
        let note = "This daemon set is selecting all pods. A non-empty selector is required.";
        publish(
            &st.recorder,
            &ds.object_ref(&()),
            EventType::Warning,
            SELECTING_ALL,
            note.into(),
        )
        .await;
        return Ok(Action::await_change());
    }
    // A DaemonSet being deleted may already have lost its history to the garbage collector,
    // so its status cannot be trusted (upstream leaves it alone too).
    if ds.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let Some(history) = revisions::construct(&ds, &selector, &st).await? else {
        // The collision count moved: the DaemonSet's watch event brings the new one.
        return Ok(Action::requeue(Duration::from_secs(1)));
    };
    let hash = history.hash.as_str();
    // Checked before reading pods: a creation observed in between then only delays the next
    // sync, never lets it act on a cache that lacks the pod.
    let satisfied = st.expectations.satisfied(&key);
    let owned = claim_pods(&ds, &selector, &st).await?;
    let owned: Vec<&Pod> = owned.iter().map(|p| p.as_ref()).collect();
    let mut nodes = st.nodes.state();
    nodes.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let nodes: Vec<&Node> = nodes.iter().map(|n| n.as_ref()).collect();
    let fit = Eligibility::new(&ds);
    let by_node = pods_by_node(&owned, false);
    let now = Timestamp::now();

    let mut retry = None;
    let mut failure = None;
    if satisfied {
        let plan = {
            let mut backoff = st.backoff.lock().unwrap_or_else(|p| p.into_inner());
            backoff.gc(now);
            plan_manage(&ds, &fit, &nodes, &by_node, hash, &mut backoff, now)
        };
        for n in &plan.notes {
            let ty = event_type(n.warning);
            publish(
                &st.recorder,
                &ds.object_ref(&()),
                ty,
                n.reason,
                n.message.clone(),
            )
            .await;
        }
        retry = plan.retry_after;
        let acted = !plan.create_on.is_empty() || !plan.delete.is_empty();
        failure = sync_nodes(&ds, &key, &plan.delete, &plan.create_on, hash, &st)
            .await
            .err()
            .map(Error::from);
        // The rolling update works on a settled node-to-pod map: after `manage` acted, the
        // watch events of its changes bring the next sync.
        if failure.is_none() && !acted && is_rolling_update(&ds) {
            match rolling_update(&ds, &fit, &nodes, &by_node, hash, now) {
                Ok(r) => {
                    failure = sync_nodes(&ds, &key, &r.delete, &r.create_on, hash, &st)
                        .await
                        .err()
                        .map(Error::from)
                }
                // Validation refuses such values; upstream retries, to no avail either.
                Err(e) => {
                    tracing::warn!(controller = NAME, key, error = %e, "invalid rolling update")
                }
            }
        }
        if failure.is_none() {
            failure = revisions::cleanup(&ds, &history.old, &owned, &st)
                .await
                .err();
        }
    }

    let status = calculate_status(
        &ds,
        &fit,
        &nodes,
        &by_node,
        hash,
        now,
        satisfied,
        history.collision_count,
    );
    if status_changed(ds.status.as_ref(), &status) {
        let api =
            Api::<DaemonSet>::namespaced(st.client.clone(), &ds.namespace().unwrap_or_default());
        let updated = DaemonSet {
            status: Some(status),
            ..(*ds).clone()
        };
        match api
            .replace_status(&ds.name_any(), &PostParams::default(), &updated)
            .await
        {
            Ok(_) => {}
            // A newer object is on its way through the watch, which queues it again.
            Err(e) if is_conflict(&e) || is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    // The status is written even when acting failed, as upstream's.
    if let Some(e) = failure {
        return Err(e);
    }
    let requeue = [retry, availability_requeue(&ds, &owned, now)]
        .into_iter()
        .flatten()
        .min();
    Ok(requeue.map_or_else(Action::await_change, Action::requeue))
}

/// Claims the namespace's pods for the DaemonSet (upstream's `getDaemonPods`): adopts
/// matching orphans and releases owned pods that no longer match through the API; returns
/// the pods it owns afterwards.
async fn claim_pods(
    ds: &DaemonSet,
    selector: &LabelSelector,
    st: &State,
) -> Result<Vec<Arc<Pod>>, Error> {
    let ns = ds.namespace().unwrap_or_default();
    let all: Vec<Arc<Pod>> = st
        .pods
        .state()
        .into_iter()
        .filter(|p| p.namespace().as_deref() == Some(ns.as_str()))
        .collect();
    let claims = claim(&ds.metadata, selector, all.iter().map(|p| p.as_ref()));
    let find = |p: &Pod| all.iter().find(|a| a.uid() == p.uid()).cloned();
    let mut owned: Vec<Arc<Pod>> = claims.owned.iter().filter_map(|p| find(p)).collect();
    let api = Api::<Pod>::namespaced(st.client.clone(), &ns);
    let adopted = adopt_and_release(ds, &api, &claims.adopt, &claims.release, st).await?;
    owned.extend(adopted.into_iter().map(Arc::new));
    Ok(owned)
}

/// Adopts `adopt` and releases `release` (pods or revisions) by patching their owner
/// references; returns the adopted objects. Adoption first re-reads the DaemonSet (upstream's
/// `RecheckDeletionTimestamp`): the cache may lag its deletion.
async fn adopt_and_release<K>(
    ds: &DaemonSet,
    api: &Api<K>,
    adopt: &[&K],
    release: &[&K],
    st: &State,
) -> Result<Vec<K>, Error>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let params = PatchParams::default();
    let mut out = Vec::new();
    let mut first_error: Option<kube::Error> = None;
    if !adopt.is_empty() && can_adopt(ds, st).await? {
        let oref = controller_ref(&ds.metadata, core::API_VERSION, KIND);
        for obj in adopt {
            let patch = adopt_patch(obj.meta(), &oref);
            let name = obj.meta().name.clone().unwrap_or_default();
            match api.patch(&name, &params, &Patch::Merge(&patch)).await {
                Ok(adopted) => out.push(adopted),
                // Gone, or changed since the cache saw it: the next sync looks again.
                Err(e) if is_not_found(&e) || is_conflict(&e) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
    }
    let uid = ds.metadata.uid.clone().unwrap_or_default();
    for obj in release {
        let patch = release_patch(obj.meta(), &uid);
        let name = obj.meta().name.clone().unwrap_or_default();
        match api.patch(&name, &params, &Patch::Merge(&patch)).await {
            Ok(_) => {}
            Err(e) if is_not_found(&e) || is_conflict(&e) => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e.into()),
        None => Ok(out),
    }
}

async fn can_adopt(ds: &DaemonSet, st: &State) -> Result<bool, Error> {
    let api = Api::<DaemonSet>::namespaced(st.client.clone(), &ds.namespace().unwrap_or_default());
    match api.get_opt(&ds.name_any()).await? {
        Some(fresh) => Ok(
            fresh.metadata.uid == ds.metadata.uid && fresh.metadata.deletion_timestamp.is_none()
        ),
        None => Ok(false),
    }
}

/// Upstream's `syncNodes`: records the expectations, then creates a pod for each of
/// `create_on` in slow-start batches and deletes `delete`, at most [`BURST_REPLICAS`] of
/// each; returns the first error.
async fn sync_nodes(
    ds: &DaemonSet,
    key: &str,
    delete: &[&Pod],
    create_on: &[String],
    hash: &str,
    st: &State,
) -> Result<(), kube::Error> {
    let create_on = &create_on[..create_on.len().min(BURST_REPLICAS)];
    let delete = &delete[..delete.len().min(BURST_REPLICAS)];
    st.expectations.expect(
        key,
        create_on.len(),
        delete.iter().map(|p| key_of(&p.metadata)),
    );
    let created = create_pods(ds, key, create_on, hash, st).await;
    let deleted = delete_pods(ds, key, delete, st).await;
    created.and(deleted)
}

async fn create_pods(
    ds: &DaemonSet,
    key: &str,
    nodes: &[String],
    hash: &str,
    st: &State,
) -> Result<(), kube::Error> {
    if nodes.is_empty() {
        return Ok(());
    }
    let template = pod_template(ds, hash);
    let ns = ds.namespace().unwrap_or_default();
    let api = Api::<Pod>::namespaced(st.client.clone(), &ns);
    let reference = ds.object_ref(&());
    let (created, err) = slow_start_batch(nodes.len(), SLOW_START_INITIAL_BATCH_SIZE, |i| {
        let api = api.clone();
        let pod = daemon_pod(ds, &template, &nodes[i]);
        let reference = reference.clone();
        async move {
            match api.create(&PostParams::default(), &pod).await {
                Ok(p) => {
                    let note = format!("Created pod: {}", p.name_any());
                    publish(
                        &st.recorder,
                        &reference,
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
                        &reference,
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
    st.expectations.lower(key, nodes.len() - created);
    match err.flatten() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

async fn delete_pods(
    ds: &DaemonSet,
    key: &str,
    pods: &[&Pod],
    st: &State,
) -> Result<(), kube::Error> {
    let reference = ds.object_ref(&());
    let deletions = pods.iter().map(|pod| {
        let reference = reference.clone();
        async move {
            let ns = pod.namespace().unwrap_or_default();
            let api = Api::<Pod>::namespaced(st.client.clone(), &ns);
            match api.delete(&pod.name_any(), &DeleteParams::default()).await {
                Ok(_) => {
                    let note = format!("Deleted pod: {}", pod.name_any());
                    publish(
                        &st.recorder,
                        &reference,
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
                        &reference,
                        EventType::Warning,
                        "FailedDelete",
                        note,
                    )
                    .await;
                    Err(e)
                }
            }
        }
    });
    futures::future::join_all(deletions)
        .await
        .into_iter()
        .collect::<Result<Vec<()>, _>>()
        .map(|_| ())
}

/// The revisions of the DaemonSet's namespace, for the history.
fn namespace_revisions(st: &State, ns: &str) -> Vec<Arc<ControllerRevision>> {
    st.revisions
        .state()
        .into_iter()
        .filter(|r| r.namespace().as_deref() == Some(ns))
        .collect()
}
