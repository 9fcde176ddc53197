//! `statefulset` (upstream's statefulset-controller): pods with stable identities
//! (`<set>-<ordinal>`, hostname and subdomain, identity labels), each with its own
//! PersistentVolumeClaims from `volumeClaimTemplates`, created in ordinal order and removed
//! from the highest ordinal down (`OrderedReady`) or all at once (`Parallel`), updated by
//! recreating them at a new revision (`RollingUpdate` with a partition, or `OnDelete`), with
//! `persistentVolumeClaimRetentionPolicy` carried out through claim ownerReferences.
//!
//! Each sync claims the namespace's pods whose names make them members (adopting matching
//! orphans, releasing members that no longer match) and the revisions the selector matches,
//! finds the current and update ControllerRevisions (creating, rolling forward or reusing one,
//! [`revisions`]), lets the pure core ([`core`]) decide the ordered steps and the status, runs
//! the steps, writes `status` when upstream would (`inconsistentStatus`), and deletes revisions
//! beyond `revisionHistoryLimit`. Pod identity and claims are in [`identity`].
//!
//! Upstream keeps no expectations for StatefulSets and relies on its ordered algorithm; this
//! driver also waits, before acting again, until the pod cache shows the pods it created and
//! the deletions it made, so a lagging cache never makes it create or delete twice. Events
//! (upstream's texts): `SuccessfulCreate`/`FailedCreate` ("create Pod web-0 in StatefulSet web
//! successful", also for claims), `SuccessfulDelete`/`FailedDelete`,
//! `SuccessfulUpdate`/`FailedUpdate`, `ConflictingController`.

pub mod core;
pub mod identity;
mod pending;
pub mod revisions;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::events::Recorder;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{ObjectReference, PersistentVolumeClaim, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::controller::Action;
use kube::runtime::events::Event as KubeEvent;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use rkube_api::selector::LabelSelector;

use self::core::{
    complete_rolling_update, plan, status_changed, ClaimWork, DeleteCause, Inputs, Step, Work,
};
use self::identity::{is_member_of, SET_API_VERSION, SET_KIND};
use self::pending::Pending;
use self::revisions::{
    apply_revision, candidate_revision, choose_update_revision, current_revision, owned_revisions,
    revisions_to_delete, UpdateRevision,
};
use crate::controller_utils::{
    adopt_patch, claim, controller_of, controller_ref, key_of, release_patch, slow_start_batch,
    EXPECTATIONS_TIMEOUT,
};
use crate::driver::{drive, on_objects, Events, Triggers};
use crate::error::{api_message, is_already_exists, is_conflict, is_not_found};
use crate::events::event_type;
use crate::history;
use crate::{ControllerContext, Error};

pub const NAME: &str = "statefulset";
/// The component events are reported as.
pub const COMPONENT: &str = "statefulset-controller";

/// A step that failed for a reason the API did not give (upstream's aggregated claim errors).
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("pvc {0} is being deleted")]
    ClaimBeingDeleted(String),
    #[error("failed to create PVC {name}: {message}")]
    ClaimCreate { name: String, message: String },
    #[error("could not update claim {name} for delete policy ownerRefs: {message}")]
    ClaimUpdate { name: String, message: String },
}

impl From<StepError> for Error {
    fn from(e: StepError) -> Self {
        Error::Api(kube::Error::Service(Box::new(e)))
    }
}

struct State {
    client: Client,
    pods: Store<Pod>,
    claims: Store<PersistentVolumeClaim>,
    revisions: Store<ControllerRevision>,
    pending: Arc<Pending>,
    recorder: Recorder,
}

/// Runs the StatefulSet controller until its watches end.
pub async fn run(client: Client, ctx: Arc<ControllerContext>) -> Result<(), Error> {
    let (sets, set_events) = ctx.informer::<StatefulSet>(NAME, &client).await;
    let (pods, pod_events) = ctx.informer::<Pod>(NAME, &client).await;
    let (claims, claim_events) = ctx.informer::<PersistentVolumeClaim>(NAME, &client).await;
    let (revisions, revision_events) = ctx.informer::<ControllerRevision>(NAME, &client).await;
    let pending = Arc::new(Pending::default());
    let forget = pending.clone();
    let set_events: Events<StatefulSet> = set_events
        .inspect(move |ev| {
            if let watcher::Event::Delete(set) = ev {
                forget.forget(&key_of(&set.metadata));
            }
        })
        .boxed();
    let observe = pending.clone();
    let pod_events: Events<Pod> = pod_events
        .inspect(move |ev| {
            if let watcher::Event::Delete(pod) = ev {
                if let Some(r) = controller_of(&pod.metadata).filter(|r| r.kind == SET_KIND) {
                    let key = format!("{}/{}", pod.namespace().unwrap_or_default(), r.name);
                    observe.gone(&key, pod.uid().as_deref().unwrap_or_default());
                }
            }
        })
        .boxed();
    let triggers = vec![
        on_objects(set_events, true, |s: &StatefulSet| {
            Some(ObjectRef::from_obj(s))
        }),
        owned_triggers(pod_events, sets.clone(), false),
        owned_triggers(revision_events, sets.clone(), false),
        owned_triggers(claim_events, sets.clone(), true),
    ];
    let recorder = crate::events::recorder(client.clone(), COMPONENT);
    let state = Arc::new(State {
        client,
        pods,
        claims,
        revisions,
        pending,
        recorder,
    });
    drive(NAME, &ctx, sets, triggers, state, reconcile).await
}

/// Keys for objects a set may own: the set their controller reference names, or for objects
/// without a controller every set of their namespace whose selector matches them (one may
/// adopt it). Claims (`by_selector`) are matched by selector also when a pod owns them.
fn owned_triggers<K>(
    events: Events<K>,
    sets: Store<StatefulSet>,
    by_selector: bool,
) -> Triggers<StatefulSet>
where
    K: Resource + Send + 'static,
{
    on_objects(events, true, move |obj: &K| {
        let meta = obj.meta();
        let ns = meta.namespace.clone().unwrap_or_default();
        match controller_of(meta) {
            Some(r) if r.kind == SET_KIND && r.api_version == SET_API_VERSION => {
                vec![ObjectRef::new(&r.name).within(&ns)]
            }
            Some(_) if !by_selector => Vec::new(),
            _ => sets
                .state()
                .into_iter()
                .filter(|s| s.metadata.namespace.as_deref() == Some(ns.as_str()))
                .filter(|s| {
                    LabelSelector::from_typed(s.spec.as_ref().map(|sp| &sp.selector))
                        .is_ok_and(|sel| !sel.is_empty() && sel.matches(&meta.labels))
                })
                .map(|s| ObjectRef::from_obj(s.as_ref()))
                .collect(),
        }
    })
}

async fn reconcile(set: Arc<StatefulSet>, st: Arc<State>) -> Result<Action, Error> {
    let key = key_of(&set.metadata);
    let ns = set.namespace().unwrap_or_default();
    let selector = match LabelSelector::from_typed(set.spec.as_ref().map(|s| &s.selector)) {
        Ok(s) => s,
        // Validation refuses such selectors; upstream does not retry either.
        Err(e) => {
            tracing::warn!(controller = NAME, key, error = %e, "invalid selector");
            return Ok(Action::await_change());
        }
    };
    let ns_pods: Vec<Arc<Pod>> = st
        .pods
        .state()
        .into_iter()
        .filter(|p| p.namespace().as_deref() == Some(ns.as_str()))
        .collect();
    let by_uid: HashMap<&str, &Pod> = ns_pods
        .iter()
        .filter_map(|p| Some((p.metadata.uid.as_deref()?, p.as_ref())))
        .collect();
    if !st.pending.satisfied(&key, &by_uid) {
        // The pod events that show them queue the set again.
        return Ok(Action::requeue(EXPECTATIONS_TIMEOUT));
    }

    let revisions = adopt_revisions(&set, &selector, &st).await?;
    let pods = claim_pods(&set, &selector, &ns_pods, &st).await?;
    let pod_refs: Vec<&Pod> = pods.iter().map(|p| p.as_ref()).collect();

    let mut rev_refs: Vec<&ControllerRevision> = revisions.iter().collect();
    history::sort_revisions(&mut rev_refs);
    let mut collision_count = set
        .status
        .as_ref()
        .and_then(|s| s.collision_count)
        .unwrap_or(0);
    let candidate = candidate_revision(&set, history::next_revision(&rev_refs), collision_count);
    let rev_api = Api::<ControllerRevision>::namespaced(st.client.clone(), &ns);
    let update = match choose_update_revision(&rev_refs, candidate) {
        UpdateRevision::Latest(r) => r.clone(),
        UpdateRevision::RollForward(r, number) => {
            let mut newer = r.clone();
            newer.revision = number;
            rev_api
                .replace(&r.name_any(), &PostParams::default(), &newer)
                .await?
        }
        UpdateRevision::Create(r) => {
            history::create_revision(&rev_api, &set.name_any(), &r, &mut collision_count).await?
        }
    };
    let current = current_revision(&set, &rev_refs, &update).clone();
    let (current_set, update_set) = match (
        apply_revision(&set, &current),
        apply_revision(&set, &update),
    ) {
        (Ok(c), Ok(u)) => (c, u),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(controller = NAME, key, error = %e, "unreadable revision");
            return Ok(Action::await_change());
        }
    };

    let ns_claims: Vec<Arc<PersistentVolumeClaim>> = st
        .claims
        .state()
        .into_iter()
        .filter(|c| c.namespace().as_deref() == Some(ns.as_str()))
        .collect();
    let claims: HashMap<&str, &PersistentVolumeClaim> = ns_claims
        .iter()
        .filter_map(|c| Some((c.metadata.name.as_deref()?, c.as_ref())))
        .collect();
    let (current_name, update_name) = (current.name_any(), update.name_any());
    let planned = plan(&Inputs {
        set: &set,
        current_set: &current_set,
        update_set: &update_set,
        current_revision: &current_name,
        update_revision: &update_name,
        collision_count,
        pods: &pod_refs,
        claims: &claims,
        now: Timestamp::now(),
    });
    let mut status = planned.status.clone();
    let ctx = Sync {
        set: &set,
        key: &key,
        st: &st,
    };
    let result = ctx.execute(&planned, &mut status).await;

    complete_rolling_update(&set, &mut status);
    if status_changed(&set, &status) {
        write_status(&set, status.clone(), &st).await?;
    }
    for old in revisions_to_delete(&set, &pod_refs, &rev_refs, &current_name, &update_name) {
        match rev_api
            .delete(&old.name_any(), &DeleteParams::default())
            .await
        {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    result?;
    // Pods become available minReadySeconds after they are Ready, with no event to say so;
    // a second more, as upstream, since availability is counted in whole seconds.
    let min_ready = set
        .spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0);
    let wanted = identity::replicas(&set);
    if min_ready > 0 && status.available_replicas.unwrap_or(0) != wanted {
        let secs = u64::try_from(min_ready).unwrap_or(0) + 1;
        return Ok(Action::requeue(Duration::from_secs(secs)));
    }
    Ok(Action::await_change())
}

async fn write_status(
    set: &StatefulSet,
    status: StatefulSetStatus,
    st: &State,
) -> Result<(), Error> {
    let api =
        Api::<StatefulSet>::namespaced(st.client.clone(), &set.namespace().unwrap_or_default());
    let mut updated = set.clone();
    updated.status = Some(status);
    match api
        .replace_status(&set.name_any(), &PostParams::default(), &updated)
        .await
    {
        Ok(_) => Ok(()),
        // A newer set is on its way through the watch, which queues it again.
        Err(e) if is_conflict(&e) || is_not_found(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Upstream's `RecheckDeletionTimestamp`: adopt only if a live read still shows the same set,
/// not being deleted (the cache may lag a deletion).
async fn can_adopt(set: &StatefulSet, st: &State) -> Result<bool, Error> {
    let api =
        Api::<StatefulSet>::namespaced(st.client.clone(), &set.namespace().unwrap_or_default());
    Ok(api.get_opt(&set.name_any()).await?.is_some_and(|fresh| {
        fresh.metadata.uid == set.metadata.uid && fresh.metadata.deletion_timestamp.is_none()
    }))
}

/// The set's revisions, orphans matching its selector adopted first (upstream's
/// `adoptOrphanRevisions`).
async fn adopt_revisions(
    set: &StatefulSet,
    selector: &LabelSelector,
    st: &State,
) -> Result<Vec<ControllerRevision>, Error> {
    let all = st.revisions.state();
    let owned: Vec<ControllerRevision> =
        owned_revisions(set, selector, all.iter().map(|r| r.as_ref()))
            .into_iter()
            .cloned()
            .collect();
    let orphans = owned.iter().any(|r| controller_of(&r.metadata).is_none());
    if !orphans || set.metadata.deletion_timestamp.is_some() || !can_adopt(set, st).await? {
        // Orphans still count as the set's history, as upstream lists them.
        return Ok(owned);
    }
    let api = Api::<ControllerRevision>::namespaced(
        st.client.clone(),
        &set.namespace().unwrap_or_default(),
    );
    let oref = controller_ref(&set.metadata, SET_API_VERSION, SET_KIND);
    let mut out = Vec::with_capacity(owned.len());
    for r in owned {
        if controller_of(&r.metadata).is_some() {
            out.push(r);
            continue;
        }
        let patch = adopt_patch(&r.metadata, &oref);
        out.push(
            api.patch(
                &r.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?,
        );
    }
    Ok(out)
}

/// Claims the namespace's pods for the set (upstream's `getPodsForStatefulSet`): owned or
/// orphan pods matching the selector whose names make them members; owned pods that no longer
/// match or are not members are released.
async fn claim_pods(
    set: &StatefulSet,
    selector: &LabelSelector,
    ns_pods: &[Arc<Pod>],
    st: &State,
) -> Result<Vec<Arc<Pod>>, Error> {
    let claims = claim(&set.metadata, selector, ns_pods.iter().map(|p| p.as_ref()));
    let find = |p: &Pod| ns_pods.iter().find(|a| a.uid() == p.uid()).cloned();
    let mut owned = Vec::new();
    let mut release: Vec<&Pod> = claims.release.clone();
    for p in &claims.owned {
        if is_member_of(set, p) {
            owned.extend(find(p));
        } else if set.metadata.deletion_timestamp.is_none() {
            release.push(p);
        }
    }
    let adopt: Vec<&Pod> = claims
        .adopt
        .iter()
        .copied()
        .filter(|p| is_member_of(set, p))
        .collect();
    let api = Api::<Pod>::namespaced(st.client.clone(), &set.namespace().unwrap_or_default());
    let params = PatchParams::default();
    if !adopt.is_empty() && can_adopt(set, st).await? {
        let oref = controller_ref(&set.metadata, SET_API_VERSION, SET_KIND);
        for pod in adopt {
            let patch = adopt_patch(&pod.metadata, &oref);
            match api
                .patch(&pod.name_any(), &params, &Patch::Merge(&patch))
                .await
            {
                Ok(adopted) => owned.push(Arc::new(adopted)),
                // Gone, or changed since the cache saw it: the next sync looks again.
                Err(e) if is_not_found(&e) || is_conflict(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    let uid = set.metadata.uid.clone().unwrap_or_default();
    for pod in release {
        let patch = release_patch(&pod.metadata, &uid);
        match api
            .patch(&pod.name_any(), &params, &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {}
            Err(e) if is_not_found(&e) || is_conflict(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(owned)
}

/// One sync's context for running steps.
struct Sync<'a> {
    set: &'a StatefulSet,
    key: &'a str,
    st: &'a State,
}

impl Sync<'_> {
    /// Runs the plan: ordered sets one work at a time, stopping at the first failure;
    /// parallel sets each phase in slow-start batches, stopping after a phase with a failure.
    async fn execute(
        &self,
        plan: &core::Plan,
        status: &mut StatefulSetStatus,
    ) -> Result<(), Error> {
        for (i, phase) in plan.phases.iter().enumerate() {
            let result = if plan.monotonic {
                let mut r = Ok(());
                for work in phase {
                    r = self.run(work).await;
                    if r.is_err() {
                        break;
                    }
                }
                r
            } else {
                match slow_start_batch(phase.len(), 1, |n| self.run(&phase[n])).await {
                    (_, Some(e)) => Err(e),
                    (_, None) => Ok(()),
                }
            };
            if let Err(e) = result {
                if i == 3 {
                    // The outdated pod was not deleted after all: it is still current.
                    status.current_replicas = Some(status.current_replicas.unwrap_or(0) + 1);
                }
                return Err(e);
            }
        }
        Ok(())
    }

    async fn run(&self, work: &Work) -> Result<(), Error> {
        for step in work {
            self.step(step).await?;
        }
        Ok(())
    }

    /// Records an event about the set, `related` to the pod or claim it concerns.
    async fn event(&self, warning: bool, reason: &str, note: String, related: ObjectReference) {
        let ev = KubeEvent {
            type_: event_type(warning),
            reason: reason.into(),
            note: Some(note),
            action: reason.into(),
            secondary: Some(related),
        };
        if let Err(e) = self
            .st
            .recorder
            .publish(&ev, &self.set.object_ref(&()))
            .await
        {
            tracing::debug!(controller = NAME, reason, error = %e, "recording event failed");
        }
    }

    fn related(&self, kind: &str, name: &str) -> ObjectReference {
        ObjectReference {
            api_version: Some("v1".into()),
            kind: Some(kind.into()),
            name: Some(name.into()),
            namespace: self.set.namespace(),
            ..Default::default()
        }
    }

    /// Upstream's `recordPodEvent`.
    async fn pod_event(&self, verb: &str, pod: &str, err: Option<&Error>) {
        let set = self.set.name_any();
        let title = format!("{}{}", verb[..1].to_uppercase(), &verb[1..]);
        match err {
            None => {
                let note = format!("{verb} Pod {pod} in StatefulSet {set} successful");
                self.event(
                    false,
                    &format!("Successful{title}"),
                    note,
                    self.related("Pod", pod),
                )
                .await;
            }
            Some(e) => {
                let note = format!(
                    "{verb} Pod {pod} in StatefulSet {set} failed error: {}",
                    message(e)
                );
                self.event(
                    true,
                    &format!("Failed{title}"),
                    note,
                    self.related("Pod", pod),
                )
                .await;
            }
        }
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(
            self.st.client.clone(),
            &self.set.namespace().unwrap_or_default(),
        )
    }

    fn claims(&self) -> Api<PersistentVolumeClaim> {
        Api::namespaced(
            self.st.client.clone(),
            &self.set.namespace().unwrap_or_default(),
        )
    }

    async fn step(&self, step: &Step) -> Result<(), Error> {
        match step {
            Step::CreatePod { pod, claims } => {
                let name = pod.name_any();
                self.conflicting(claims).await;
                if let Err(e) = self.create_claims(&name, claims).await {
                    self.pod_event("create", &name, Some(&e)).await;
                    return Err(e);
                }
                let created = match self.pods().create(&PostParams::default(), pod).await {
                    Ok(p) => p,
                    // The cache has yet to show it; not an event.
                    Err(e) if is_already_exists(&e) => return Err(e.into()),
                    Err(e) => {
                        let e = e.into();
                        self.pod_event("create", &name, Some(&e)).await;
                        return Err(e);
                    }
                };
                self.st.pending.expect(self.key, created.uid(), true);
                if let Err(e) = self.update_claim_owners(claims).await {
                    self.pod_event("update", &name, Some(&e)).await;
                    return Err(e);
                }
                self.pod_event("create", &name, None).await;
                Ok(())
            }
            Step::CreateClaims { pod, claims } => {
                self.conflicting(claims).await;
                self.create_claims(pod, claims).await?;
                if let Err(e) = self.update_claim_owners(claims).await {
                    self.pod_event("update", pod, Some(&e)).await;
                    return Err(e);
                }
                Ok(())
            }
            Step::UpdatePod {
                pod,
                update,
                claims,
            } => {
                self.conflicting(claims).await;
                let result = async {
                    self.create_claims(pod, claims).await?;
                    self.update_claim_owners(claims).await?;
                    if let Some(u) = update {
                        let mut patch = serde_json::json!({"metadata": {
                            "labels": u.labels, "resourceVersion": u.resource_version}});
                        if let Some(v) = &u.volumes {
                            patch["spec"] = serde_json::json!({"volumes": v});
                        }
                        self.pods()
                            .patch(pod, &PatchParams::default(), &Patch::Merge(&patch))
                            .await?;
                    }
                    Ok::<(), Error>(())
                }
                .await;
                if update.is_some() || result.is_err() {
                    self.pod_event("update", pod, result.as_ref().err()).await;
                }
                result
            }
            Step::UpdateClaims { claims, .. } => {
                self.conflicting(claims).await;
                self.update_claim_owners(claims).await
            }
            Step::DeletePod { pod, uid, cause } => {
                self.delete_pod(pod, uid.as_deref(), *cause).await
            }
        }
    }

    /// Creates the pod's missing claims (upstream's `createPersistentVolumeClaims`): every
    /// claim is tried, failures are reported per claim and together.
    async fn create_claims(&self, pod: &str, work: &ClaimWork) -> Result<(), Error> {
        let set = self.set.name_any();
        let mut first: Option<StepError> = None;
        for claim in &work.create {
            let name = claim.name_any();
            match self.claims().create(&PostParams::default(), claim).await {
                Ok(_) => {
                    let note =
                        format!("create Claim {name} Pod {pod} in StatefulSet {set} success");
                    self.event(
                        false,
                        "SuccessfulCreate",
                        note,
                        self.related("PersistentVolumeClaim", &name),
                    )
                    .await;
                }
                // The cache has yet to show it: it is there.
                Err(e) if is_already_exists(&e) => {}
                Err(e) => {
                    let message = api_message(&e);
                    let note = format!("create Claim {name} for Pod {pod} in StatefulSet {set} failed error: {message}");
                    self.event(
                        true,
                        "FailedCreate",
                        note,
                        self.related("PersistentVolumeClaim", &name),
                    )
                    .await;
                    first.get_or_insert(StepError::ClaimCreate { name, message });
                }
            }
        }
        if let Some(name) = work.deleting.first() {
            first.get_or_insert(StepError::ClaimBeingDeleted(name.clone()));
        }
        match first {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// Rewrites claims' ownerReferences for the retention policy (PUT: the controller's role
    /// may update claims, not patch them).
    async fn update_claim_owners(&self, work: &ClaimWork) -> Result<(), Error> {
        for claim in &work.owners {
            let name = claim.name_any();
            match self
                .claims()
                .replace(&name, &PostParams::default(), claim)
                .await
            {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) if is_conflict(&e) => return Err(e.into()),
                Err(e) => {
                    let message = api_message(&e);
                    return Err(StepError::ClaimUpdate { name, message }.into());
                }
            }
        }
        Ok(())
    }

    async fn conflicting(&self, work: &ClaimWork) {
        for name in &work.conflicting {
            let note = format!("PersistentVolumeClaim {name} has a conflicting OwnerReference that acts as a manging controller, the retention policy is ignored for this claim");
            self.event(
                true,
                "ConflictingController",
                note,
                self.related("PersistentVolumeClaim", name),
            )
            .await;
        }
    }

    async fn delete_pod(
        &self,
        pod: &str,
        uid: Option<&str>,
        cause: DeleteCause,
    ) -> Result<(), Error> {
        tracing::debug!(
            controller = NAME,
            key = self.key,
            pod,
            ?cause,
            "deleting pod"
        );
        self.st
            .pending
            .expect(self.key, uid.map(str::to_string), false);
        let dp = DeleteParams {
            preconditions: uid.map(|u| Preconditions {
                uid: Some(u.to_string()),
                resource_version: None,
            }),
            ..Default::default()
        };
        match self.pods().delete(pod, &dp).await {
            Ok(_) => {
                self.pod_event("delete", pod, None).await;
                Ok(())
            }
            // Already gone, or replaced by a pod the cache has yet to show.
            Err(e) if is_not_found(&e) || is_conflict(&e) => {
                self.st.pending.unexpect_deletion(self.key, uid);
                Ok(())
            }
            Err(e) => {
                self.st.pending.unexpect_deletion(self.key, uid);
                let e = e.into();
                self.pod_event("delete", pod, Some(&e)).await;
                Err(e)
            }
        }
    }
}

/// An error as upstream prints it in events: the API's message, or the step's own.
fn message(e: &Error) -> String {
    match e {
        Error::Api(kube::Error::Service(inner)) => inner.to_string(),
        Error::Api(api) => api_message(api),
        other => other.to_string(),
    }
}
