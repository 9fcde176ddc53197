//! `deployment` (upstream's deployment-controller): rolls a Deployment's pod template out
//! through ReplicaSets.
//!
//! Each ReplicaSet holds one template, labelled and selected by its `pod-template-hash`
//! ([`util::compute_hash`]). A changed template makes a new ReplicaSet, named
//! `<deployment>-<hash>`, and the old ones are scaled down: RollingUpdate keeps the pods
//! between `replicas - maxUnavailable` available and `replicas + maxSurge` in total, Recreate
//! scales every old ReplicaSet to zero and waits for their pods to finish first. Revisions
//! are the `deployment.kubernetes.io/revision` annotations; setting the template back to an
//! older one (`kubectl rollout undo`) finds that ReplicaSet again and gives it the next
//! revision. Paused Deployments only scale; a scaled Deployment mid-rollout shares the change
//! among its ReplicaSets in proportion. Status carries the counts, `collisionCount` and the
//! Progressing and Available conditions that `kubectl rollout status` reads. The decisions
//! are pure ([`rollout::plan`]); this driver claims ReplicaSets and performs the plan.

pub mod rollout;
#[cfg(test)]
mod tests;
pub mod util;

use std::collections::HashSet;
use std::sync::Arc;

use crate::events::Recorder;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action as Requeue;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use rkube_api::selector::LabelSelector;

use crate::controller_utils::{adopt_patch, claim, controller_of, controller_ref, release_patch};
use crate::driver::{drive, on_objects, Events, Triggers};
use crate::error::{api_message, is_already_exists, is_conflict, is_not_found};
use crate::events;
use crate::{ControllerContext, Error};
use rollout::{plan, Action};

pub const NAME: &str = "deployment";

struct State {
    client: Client,
    sets: Store<ReplicaSet>,
    pods: Store<Pod>,
    recorder: Recorder,
}

/// Runs the controller until its watches end.
pub async fn run(client: Client, ctx: Arc<ControllerContext>) -> Result<(), Error> {
    let (deployments, d_events) = ctx.informer::<Deployment>(NAME, &client).await;
    let (sets, rs_events) = ctx.informer::<ReplicaSet>(NAME, &client).await;
    let (pods, pod_events) = ctx.informer::<Pod>(NAME, &client).await;
    let triggers = vec![
        on_objects(d_events, false, |d: &Deployment| {
            Some(ObjectRef::from_obj(d))
        }),
        rs_triggers(rs_events, deployments.clone()),
        pod_deletions(pod_events, sets.clone()),
    ];
    let recorder = crate::events::recorder(client.clone(), "deployment-controller");
    let state = Arc::new(State {
        client,
        sets,
        pods,
        recorder,
    });
    drive(NAME, &ctx, deployments, triggers, state, reconcile).await
}

fn is_deployment_ref(r: &k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference) -> bool {
    r.kind == "Deployment" && r.api_version == "apps/v1"
}

/// A ReplicaSet's event queues its Deployment, or for an orphan every Deployment of its
/// namespace that selects it.
fn rs_triggers(events: Events<ReplicaSet>, deployments: Store<Deployment>) -> Triggers<Deployment> {
    on_objects(events, true, move |rs: &ReplicaSet| {
        let ns = rs.namespace().unwrap_or_default();
        match controller_of(&rs.metadata) {
            Some(r) if is_deployment_ref(r) => vec![ObjectRef::new(&r.name).within(&ns)],
            Some(_) => Vec::new(),
            None => deployments
                .state()
                .into_iter()
                .filter(|d| d.namespace().as_deref() == Some(ns.as_str()))
                .filter(|d| {
                    LabelSelector::from_typed(d.spec.as_ref().map(|s| &s.selector))
                        .is_ok_and(|s| !s.is_empty() && s.matches(&rs.metadata.labels))
                })
                .map(|d| ObjectRef::from_obj(d.as_ref()))
                .collect(),
        }
    })
}

/// A deleted pod queues the Deployment of its ReplicaSet: Recreate waits for old pods to go.
fn pod_deletions(events: Events<Pod>, sets: Store<ReplicaSet>) -> Triggers<Deployment> {
    events
        .filter_map(move |ev| {
            let key = match ev {
                watcher::Event::Delete(pod) => {
                    let ns = pod.namespace().unwrap_or_default();
                    controller_of(&pod.metadata)
                        .filter(|r| r.kind == "ReplicaSet")
                        .and_then(|r| sets.get(&ObjectRef::new(&r.name).within(&ns)))
                        .and_then(|rs| {
                            controller_of(&rs.metadata)
                                .filter(|r| is_deployment_ref(r))
                                .map(|r| ObjectRef::new(&r.name).within(&ns))
                        })
                }
                _ => None,
            };
            std::future::ready(key)
        })
        .boxed()
}

async fn reconcile(mut d: Arc<Deployment>, st: Arc<State>) -> Result<Requeue, Error> {
    for ready in [
        st.sets.wait_until_ready().await.is_ok(),
        st.pods.wait_until_ready().await.is_ok(),
    ] {
        if !ready {
            return Err(Error::CacheStopped(NAME));
        }
    }
    let ns = d.namespace().unwrap_or_default();
    let selector = match LabelSelector::from_typed(d.spec.as_ref().map(|s| &s.selector)) {
        Ok(s) if !s.is_empty() => s,
        Ok(_) => {
            let note = "This deployment is selecting all pods. A non-empty selector is required.";
            let (type_, reference) = (events::event_type(true), d.object_ref(&()));
            events::publish(&st.recorder, &reference, type_, "SelectingAll", note.into()).await;
            return Ok(Requeue::await_change());
        }
        Err(e) => {
            tracing::warn!(controller = NAME, deployment = %d.name_any(), error = %e, "invalid selector");
            return Ok(Requeue::await_change());
        }
    };
    let in_ns: Vec<Arc<ReplicaSet>> = st
        .sets
        .state()
        .into_iter()
        .filter(|rs| rs.namespace().as_deref() == Some(ns.as_str()))
        .collect();
    let owned = claim_sets(&d, &selector, &in_ns, &st).await?;
    // Only Recreate reads the pods (it waits for the old ones to finish).
    let pods: Vec<Arc<Pod>> = if util::is_recreate(&d) {
        let uids: HashSet<String> = owned.iter().filter_map(|rs| rs.uid()).collect();
        st.pods
            .state()
            .into_iter()
            .filter(|p| p.namespace().as_deref() == Some(ns.as_str()))
            .filter(|p| controller_of(&p.metadata).is_some_and(|r| uids.contains(&r.uid)))
            .collect()
    } else {
        Vec::new()
    };
    let pod_refs: Vec<&Pod> = pods.iter().map(|p| p.as_ref()).collect();
    let plan = plan(&d, owned, &pod_refs, Timestamp::now());
    let sets = Api::<ReplicaSet>::namespaced(st.client.clone(), &ns);
    let deployments = Api::<Deployment>::namespaced(st.client.clone(), &ns);
    // The status write is guarded by the version this sync read (or wrote itself), so a
    // sync that started from a stale cache cannot put an older status back.
    let mut version = d.resource_version();
    for action in plan.actions {
        match action {
            Action::CreateReplicaSet(rs) => {
                if let Err(e) = sets.create(&PostParams::default(), &rs).await {
                    if !is_already_exists(&e) {
                        report_create_error(&d, &rs, &e, &deployments, &st).await;
                        return Err(e.into());
                    }
                    if !created_by_us(&d, &rs, &sets).await? {
                        return bump_collision_count(&d, &deployments).await;
                    }
                }
            }
            Action::UpdateReplicaSet(rs) => {
                match sets
                    .replace(&rs.name_any(), &PostParams::default(), &rs)
                    .await
                {
                    Ok(_) => {}
                    // The cache was behind; its update queues this Deployment again.
                    Err(e) if is_conflict(&e) || is_not_found(&e) => {
                        return Ok(Requeue::await_change())
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Action::DeleteReplicaSet(rs) => {
                match sets.delete(&rs.name_any(), &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(e) if is_not_found(&e) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Action::SetRevision(rev) => {
                // An update of the main resource (the verb upstream's role grants): this API
                // server's status subresource takes status only.
                let mut updated = Deployment::clone(&d);
                updated.metadata.resource_version = version.clone();
                updated
                    .annotations_mut()
                    .insert(util::REVISION.to_string(), rev);
                match deployments
                    .replace(&d.name_any(), &PostParams::default(), &updated)
                    .await
                {
                    Ok(replaced) => {
                        version = replaced.resource_version();
                        d = Arc::new(replaced);
                    }
                    Err(e) if is_not_found(&e) || is_conflict(&e) => {
                        return Ok(Requeue::await_change())
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Action::UpdateStatus(status) => {
                let mut updated = Deployment::clone(&d);
                updated.metadata.resource_version = version.clone();
                updated.status = Some(status);
                match deployments
                    .replace_status(&d.name_any(), &PostParams::default(), &updated)
                    .await
                {
                    Ok(_) => {}
                    // Newer than this sync's view: its event queues another sync.
                    Err(e) if is_not_found(&e) || is_conflict(&e) => {
                        return Ok(Requeue::await_change())
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Action::Event {
                warning,
                reason,
                note,
            } => {
                let (type_, reference) = (events::event_type(warning), d.object_ref(&()));
                events::publish(&st.recorder, &reference, type_, reason, note).await
            }
        }
    }
    Ok(plan
        .requeue
        .map_or_else(Requeue::await_change, Requeue::requeue))
}

/// After AlreadyExists: whether the existing ReplicaSet is this Deployment's with this
/// template (then the create had simply happened before), rather than a hash collision.
async fn created_by_us(
    d: &Deployment,
    rs: &ReplicaSet,
    sets: &Api<ReplicaSet>,
) -> Result<bool, Error> {
    let Some(existing) = sets.get_opt(&rs.name_any()).await? else {
        return Ok(false);
    };
    let ours =
        controller_of(&existing.metadata).is_some_and(|r| Some(&r.uid) == d.metadata.uid.as_ref());
    let same = util::equal_ignore_hash(
        existing.spec.as_ref().and_then(|s| s.template.as_ref()),
        d.spec.as_ref().map(|s| &s.template),
    );
    Ok(ours && same)
}

/// Upstream's answer to a failed ReplicaSet create: a Warning event and, with a progress
/// deadline, Progressing False `ReplicaSetCreateError`.
async fn report_create_error(
    d: &Deployment,
    rs: &ReplicaSet,
    err: &kube::Error,
    api: &Api<Deployment>,
    st: &State,
) {
    let msg = format!(
        "Failed to create new replica set {:?}: {}",
        rs.name_any(),
        api_message(err)
    );
    let (type_, reference) = (events::event_type(true), d.object_ref(&()));
    events::publish(
        &st.recorder,
        &reference,
        type_,
        util::RS_CREATE_ERROR,
        msg.clone(),
    )
    .await;
    if util::progress_deadline(d).is_none() {
        return;
    }
    let mut status = d.status.clone().unwrap_or_default();
    let now = Timestamp::now();
    let cond = util::condition(util::PROGRESSING, "False", util::RS_CREATE_ERROR, msg, now);
    util::set_condition(&mut status, cond);
    let mut updated = d.clone();
    updated.status = Some(status);
    if let Err(e) = api
        .replace_status(&d.name_any(), &PostParams::default(), &updated)
        .await
    {
        tracing::debug!(controller = NAME, error = %e, "status not updated");
    }
}

/// A hash collision: the next hash includes a higher `collisionCount` (upstream's answer).
async fn bump_collision_count(d: &Deployment, api: &Api<Deployment>) -> Result<Requeue, Error> {
    let count = d
        .status
        .as_ref()
        .and_then(|s| s.collision_count)
        .unwrap_or(0)
        + 1;
    let mut updated = d.clone();
    updated
        .status
        .get_or_insert_with(Default::default)
        .collision_count = Some(count);
    match api
        .replace_status(&d.name_any(), &PostParams::default(), &updated)
        .await
    {
        Ok(_) => Ok(Requeue::await_change()),
        Err(e) if is_not_found(&e) || is_conflict(&e) => Ok(Requeue::await_change()),
        Err(e) => Err(e.into()),
    }
}

/// Claims the namespace's ReplicaSets for `d` (adopting matching orphans, releasing owned
/// ones that no longer match) and returns those it owns.
async fn claim_sets(
    d: &Deployment,
    selector: &LabelSelector,
    all: &[Arc<ReplicaSet>],
    st: &State,
) -> Result<Vec<ReplicaSet>, Error> {
    let claims = claim(&d.metadata, selector, all.iter().map(|r| r.as_ref()));
    let mut owned: Vec<ReplicaSet> = claims.owned.iter().map(|r| (*r).clone()).collect();
    let ns = d.namespace().unwrap_or_default();
    let api = Api::<ReplicaSet>::namespaced(st.client.clone(), &ns);
    let params = PatchParams::default();
    if !claims.adopt.is_empty() {
        // Upstream's RecheckDeletionTimestamp: a live read, since the cache may lag.
        let fresh = Api::<Deployment>::namespaced(st.client.clone(), &ns)
            .get_opt(&d.name_any())
            .await?;
        let can_adopt = fresh.is_some_and(|f| {
            f.metadata.uid == d.metadata.uid && f.metadata.deletion_timestamp.is_none()
        });
        if can_adopt {
            let oref = controller_ref(&d.metadata, "apps/v1", "Deployment");
            for rs in &claims.adopt {
                let patch = adopt_patch(&rs.metadata, &oref);
                match api
                    .patch(&rs.name_any(), &params, &Patch::Merge(&patch))
                    .await
                {
                    Ok(adopted) => owned.push(adopted),
                    Err(e) if is_not_found(&e) || is_conflict(&e) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    let uid = d.metadata.uid.clone().unwrap_or_default();
    for rs in &claims.release {
        let patch = release_patch(&rs.metadata, &uid);
        match api
            .patch(&rs.name_any(), &params, &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {}
            Err(e) if is_not_found(&e) || is_conflict(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(owned)
}
