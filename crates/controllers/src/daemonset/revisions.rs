//! The DaemonSet's ControllerRevisions through the API (upstream's `constructHistory`,
//! `snapshot`, `dedupCurHistories` and `cleanupHistory`); the decisions are in [`super::update`].

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use rkube_api::selector::LabelSelector;
use serde_json::{json, Value};

use super::core::pods_by_node;
use super::update::{
    is_current, keep_of, max_revision, revision_data, revision_hash, revisions_to_clean, snapshot,
    DEFAULT_REVISION_HISTORY_LIMIT,
};
use super::{adopt_and_release, namespace_revisions, State};
use crate::controller_utils::{claim, controller_of};
use crate::error::{is_already_exists, is_not_found};
use crate::history::POD_REVISION_LABEL;
use crate::Error;

/// The DaemonSet's history after [`construct`].
#[derive(Debug)]
pub(super) struct History {
    /// The current revision's `controller-revision-hash`, which new pods carry.
    pub hash: String,
    /// The other revisions the DaemonSet owns.
    pub old: Vec<ControllerRevision>,
    /// The collision count the current revision is named with.
    pub collision_count: Option<i32>,
}

/// Claims the namespace's revisions for the DaemonSet, labels those without a hash label
/// with their name, finds the revision holding the current template (creating it when there
/// is none, renumbering it to follow the newest old one, deleting equal duplicates after
/// moving their pods to it) and returns the history. `None` when a name collision was found
/// and `status.collisionCount` raised (or found stale): the sync is retried with the new
/// count.
pub(super) async fn construct(
    ds: &DaemonSet,
    selector: &LabelSelector,
    st: &State,
) -> Result<Option<History>, Error> {
    let ns = ds.namespace().unwrap_or_default();
    let api = Api::<ControllerRevision>::namespaced(st.client.clone(), &ns);
    let all = namespace_revisions(st, &ns);
    let claims = claim(&ds.metadata, selector, all.iter().map(|r| r.as_ref()));
    let mut revisions: Vec<ControllerRevision> =
        claims.owned.iter().map(|r| (*r).clone()).collect();
    revisions.extend(adopt_and_release(ds, &api, &claims.adopt, &claims.release, st).await?);
    for rev in revisions.iter_mut() {
        let labelled = rev
            .metadata
            .labels
            .as_ref()
            .is_some_and(|l| l.contains_key(POD_REVISION_LABEL));
        if !labelled {
            // The name stands in for the hash, which a collision count may have changed.
            let mut update = rev.clone();
            let name = rev.name_any();
            update
                .metadata
                .labels
                .get_or_insert_with(Default::default)
                .insert(POD_REVISION_LABEL.to_string(), name.clone());
            *rev = api.replace(&name, &PostParams::default(), &update).await?;
        }
    }
    let data = revision_data(ds);
    let (current, old): (Vec<&ControllerRevision>, Vec<&ControllerRevision>) =
        revisions.iter().partition(|r| is_current(&data, r));
    let next = max_revision(&old) + 1;
    let cur = match keep_of(&current) {
        None => match create(ds, &api, data, next, st).await? {
            Some(created) => created,
            None => return Ok(None),
        },
        Some((keep, dups)) => {
            if !dups.is_empty() {
                dedup(ds, keep, &dups, &api, st).await?;
            }
            if keep.revision < next {
                let mut update = keep.clone();
                update.revision = next;
                api.replace(&keep.name_any(), &PostParams::default(), &update)
                    .await?
            } else {
                keep.clone()
            }
        }
    };
    Ok(Some(History {
        hash: revision_hash(&cur).unwrap_or_default().to_string(),
        old: old.into_iter().cloned().collect(),
        collision_count: ds.status.as_ref().and_then(|s| s.collision_count),
    }))
}

/// Upstream's `snapshot`: creates revision `revision`. Its name taken by the same template
/// is that revision; taken by another, it is a hash collision: `status.collisionCount` goes
/// up (unless the cached count was stale) and `None` asks for a retry under the new name.
async fn create(
    ds: &DaemonSet,
    api: &Api<ControllerRevision>,
    data: Value,
    revision: i64,
    st: &State,
) -> Result<Option<ControllerRevision>, Error> {
    let rev = snapshot(ds, data.clone(), revision);
    let name = rev.name_any();
    match api.create(&PostParams::default(), &rev).await {
        Ok(created) => return Ok(Some(created)),
        Err(e) if is_already_exists(&e) => {}
        Err(e) => return Err(e.into()),
    }
    let existing = api.get(&name).await?;
    if is_current(&data, &existing) {
        return Ok(Some(existing));
    }
    let sets = Api::<DaemonSet>::namespaced(st.client.clone(), &ds.namespace().unwrap_or_default());
    let mut fresh = sets.get(&ds.name_any()).await?;
    let count = |d: &DaemonSet| d.status.as_ref().and_then(|s| s.collision_count);
    if count(&fresh) != count(ds) {
        tracing::debug!(name, "stale collision count, retrying");
        return Ok(None);
    }
    let status = fresh.status.get_or_insert_with(Default::default);
    status.collision_count = Some(status.collision_count.unwrap_or(0) + 1);
    tracing::info!(
        name,
        count = status.collision_count,
        "revision name collision, bumping collisionCount"
    );
    sets.replace_status(&ds.name_any(), &PostParams::default(), &fresh)
        .await?;
    Ok(None)
}

/// Moves the DaemonSet's pods labelled with a duplicate's hash to the kept revision's hash,
/// then deletes the duplicates. (Upstream relabels every pod whose hash differs from the kept
/// one, which would also mark pods of older templates as updated; only the duplicates' pods
/// hold the same template.)
async fn dedup(
    ds: &DaemonSet,
    keep: &ControllerRevision,
    dups: &[&ControllerRevision],
    api: &Api<ControllerRevision>,
    st: &State,
) -> Result<(), Error> {
    let keep_hash = revision_hash(keep).unwrap_or_default();
    let dup_hashes: Vec<&str> = dups.iter().filter_map(|r| revision_hash(r)).collect();
    let ns = ds.namespace().unwrap_or_default();
    let pods = Api::<Pod>::namespaced(st.client.clone(), &ns);
    let patch = json!({"metadata": {"labels": {POD_REVISION_LABEL: keep_hash}}});
    for pod in st.pods.state() {
        let ours = pod.namespace().as_deref() == Some(ns.as_str())
            && controller_of(&pod.metadata)
                .is_some_and(|r| Some(&r.uid) == ds.metadata.uid.as_ref());
        let hash = pod.labels().get(POD_REVISION_LABEL).map(String::as_str);
        if ours && hash.is_some_and(|h| h != keep_hash && dup_hashes.contains(&h)) {
            match pods
                .patch(
                    &pod.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
            {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    for dup in dups {
        match api.delete(&dup.name_any(), &DeleteParams::default()).await {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Upstream's `cleanupHistory`: deletes the old revisions beyond `revisionHistoryLimit` that
/// no pod of the DaemonSet (terminal ones included) still uses, oldest first.
pub(super) async fn cleanup(
    ds: &DaemonSet,
    old: &[ControllerRevision],
    owned: &[&Pod],
    st: &State,
) -> Result<(), Error> {
    let limit = ds
        .spec
        .as_ref()
        .and_then(|s| s.revision_history_limit)
        .unwrap_or(DEFAULT_REVISION_HISTORY_LIMIT);
    let with_node: Vec<&Pod> = pods_by_node(owned, true).into_values().flatten().collect();
    let old: Vec<&ControllerRevision> = old.iter().collect();
    let victims = revisions_to_clean(&old, &with_node, limit);
    if victims.is_empty() {
        return Ok(());
    }
    let api = Api::<ControllerRevision>::namespaced(
        st.client.clone(),
        &ds.namespace().unwrap_or_default(),
    );
    for rev in victims {
        match api.delete(&rev.name_any(), &DeleteParams::default()).await {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
