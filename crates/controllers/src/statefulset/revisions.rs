//! The StatefulSet's revisions (upstream's `getStatefulSetRevisions`, `truncateHistory`,
//! `ApplyRevision`, `newRevision`): which ControllerRevisions belong to a set, which one is
//! its update revision (an existing equal one, an older equal one rolled forward, or a new
//! one), which is its current revision, what a revision's template is, and which old
//! revisions `revisionHistoryLimit` lets go. Pure; the driver creates, updates and deletes.

use std::collections::HashSet;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use rkube_api::selector::LabelSelector;

use super::identity::{pod_revision, SET_API_VERSION, SET_KIND};
use crate::controller_utils::{controller_of, controller_ref};
use crate::history;

/// The revisions of `set` among `all`: in its namespace, matching its selector, and either
/// controlled by it or by nothing (orphans it will adopt), as upstream's
/// `ListControllerRevisions`. Sorted in upstream's revision order.
pub fn owned_revisions<'a>(
    set: &StatefulSet,
    selector: &LabelSelector,
    all: impl IntoIterator<Item = &'a ControllerRevision>,
) -> Vec<&'a ControllerRevision> {
    let mut out: Vec<&ControllerRevision> = all
        .into_iter()
        .filter(|r| r.metadata.namespace == set.metadata.namespace)
        .filter(|r| selector.matches(&r.metadata.labels))
        .filter(|r| match controller_of(&r.metadata) {
            None => true,
            Some(c) => Some(&c.uid) == set.metadata.uid.as_ref(),
        })
        .collect();
    history::sort_revisions(&mut out);
    out
}

/// The revision the set's template would be recorded as (upstream's `newRevision`): the
/// template patch, the template's labels, the set's annotations, revision number `number`,
/// named by its hash with the collision count (always part of the hash for StatefulSets).
pub fn candidate_revision(
    set: &StatefulSet,
    number: i64,
    collision_count: i32,
) -> ControllerRevision {
    let owner = serde_json::to_value(set).unwrap_or_default();
    let data = history::template_patch(&owner);
    let labels = set
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.as_ref());
    let mut rev = history::new_revision(
        controller_ref(&set.metadata, SET_API_VERSION, SET_KIND),
        set.metadata.namespace.as_deref().unwrap_or_default(),
        labels,
        data,
        number,
        Some(collision_count),
    );
    if let Some(a) = &set.metadata.annotations {
        rev.metadata.annotations = Some(a.clone());
    }
    rev
}

/// What the update revision is.
#[derive(Debug)]
pub enum UpdateRevision<'a> {
    /// The newest revision already records the template.
    Latest(&'a ControllerRevision),
    /// An older revision records it (a rollback): it becomes the newest by taking this number.
    RollForward(&'a ControllerRevision, i64),
    /// No revision records it: create this one.
    Create(Box<ControllerRevision>),
}

/// Chooses the update revision for `candidate` among `revisions` (sorted), as upstream's
/// `getStatefulSetRevisions`.
pub fn choose_update_revision<'a>(
    revisions: &[&'a ControllerRevision],
    candidate: ControllerRevision,
) -> UpdateRevision<'a> {
    let equal = history::find_equal_revisions(revisions, &candidate);
    match (equal.last(), revisions.last()) {
        (Some(e), Some(latest)) if history::equal_revision(latest, e) => {
            UpdateRevision::Latest(latest)
        }
        (Some(e), _) => UpdateRevision::RollForward(e, candidate.revision),
        (None, _) => UpdateRevision::Create(Box::new(candidate)),
    }
}

/// The current revision: the one `status.currentRevision` names, else (a new set, or a name
/// no longer found) the update revision.
pub fn current_revision<'a>(
    set: &StatefulSet,
    revisions: &[&'a ControllerRevision],
    update: &'a ControllerRevision,
) -> &'a ControllerRevision {
    let name = set
        .status
        .as_ref()
        .and_then(|s| s.current_revision.as_ref());
    revisions
        .iter()
        .copied()
        .find(|r| name.is_some() && r.metadata.name.as_ref() == name)
        .unwrap_or(update)
}

/// The set as of `revision` (upstream's `ApplyRevision`): the revision's patch replaces
/// `spec.template`, nothing else changes.
pub fn apply_revision(
    set: &StatefulSet,
    revision: &ControllerRevision,
) -> Result<StatefulSet, serde_json::Error> {
    let mut template = revision
        .data
        .as_ref()
        .and_then(|d| d.0.pointer("/spec/template"))
        .cloned()
        .unwrap_or_else(|| serde_json::json!({}));
    if let Some(m) = template.as_object_mut() {
        m.remove("$patch");
    }
    let template: PodTemplateSpec = serde_json::from_value(template)?;
    let mut out = set.clone();
    if let Some(spec) = &mut out.spec {
        spec.template = template;
    }
    Ok(out)
}

/// The revisions to delete so that at most `revisionHistoryLimit` non-live ones remain, oldest
/// first (upstream's `truncateHistory`). Live: the current and update revisions and any
/// revision a pod was made from. `revisions` must be sorted.
pub fn revisions_to_delete<'a>(
    set: &StatefulSet,
    pods: &[&Pod],
    revisions: &[&'a ControllerRevision],
    current: &str,
    update: &str,
) -> Vec<&'a ControllerRevision> {
    let mut live: HashSet<&str> = pods.iter().map(|p| pod_revision(p)).collect();
    live.insert(current);
    live.insert(update);
    let history: Vec<&ControllerRevision> = revisions
        .iter()
        .copied()
        .filter(|r| !live.contains(r.metadata.name.as_deref().unwrap_or_default()))
        .collect();
    let limit = set
        .spec
        .as_ref()
        .and_then(|s| s.revision_history_limit)
        .unwrap_or(10);
    let Ok(limit) = usize::try_from(limit) else {
        // A negative limit keeps everything, as upstream's.
        return Vec::new();
    };
    let excess = history.len().saturating_sub(limit);
    history.into_iter().take(excess).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
    use serde_json::json;

    fn set(image: &str) -> StatefulSet {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "set-uid",
                         "annotations": {"note": "x"}},
            "spec": {
                "replicas": 2,
                "revisionHistoryLimit": 1,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                             "spec": {"containers": [{"name": "c", "image": image}]}}
            },
            "status": {"replicas": 0, "currentRevision": "web-old"}
        }))
        .unwrap()
    }

    fn named(mut r: ControllerRevision, name: &str, number: i64) -> ControllerRevision {
        r.metadata.name = Some(name.into());
        r.revision = number;
        r
    }

    #[test]
    fn candidate_records_the_template_labels_annotations_and_owner() {
        let s = set("v1");
        let r = candidate_revision(&s, 3, 0);
        let hash = history::hash_revision(&r.data.as_ref().unwrap().0, Some(0));
        assert_eq!(r.metadata.name, Some(format!("web-{hash}")));
        assert_eq!(r.revision, 3);
        let labels = r.metadata.labels.clone().unwrap();
        assert_eq!(labels.get("app").map(String::as_str), Some("web"));
        assert_eq!(labels.get(history::REVISION_HASH_LABEL), Some(&hash));
        assert_eq!(r.metadata.annotations.clone().unwrap()["note"], "x");
        assert_eq!(
            r.metadata.owner_references.clone().unwrap()[0].uid,
            "set-uid"
        );
        assert_eq!(
            r.data.as_ref().unwrap().0["spec"]["template"]["$patch"],
            "replace"
        );
        assert_ne!(
            r.metadata.name,
            candidate_revision(&s, 3, 1).metadata.name,
            "collisions rename"
        );
        let back = apply_revision(&set("v2"), &r).unwrap();
        assert_eq!(back.spec.unwrap().template, s.spec.unwrap().template);
    }

    #[test]
    fn update_revision_is_the_latest_a_rolled_forward_one_or_new() {
        let v1 = named(candidate_revision(&set("v1"), 1, 0), "web-1", 1);
        let v2 = named(candidate_revision(&set("v2"), 2, 0), "web-2", 2);
        let revisions = [&v1, &v2];
        let pick =
            |image: &str| choose_update_revision(&revisions, candidate_revision(&set(image), 3, 0));
        assert!(
            matches!(pick("v2"), UpdateRevision::Latest(r) if r.metadata.name.as_deref() == Some("web-2"))
        );
        assert!(
            matches!(pick("v1"), UpdateRevision::RollForward(r, 3) if r.metadata.name.as_deref() == Some("web-1"))
        );
        assert!(matches!(pick("v3"), UpdateRevision::Create(r) if r.revision == 3));
        assert!(matches!(
            choose_update_revision(&[], candidate_revision(&set("v1"), 1, 0)),
            UpdateRevision::Create(_)
        ));
    }

    #[test]
    fn current_revision_is_the_status_one_if_it_still_exists() {
        let old = named(candidate_revision(&set("v1"), 1, 0), "web-old", 1);
        let new = named(candidate_revision(&set("v2"), 2, 0), "web-new", 2);
        let s = set("v2");
        assert_eq!(
            current_revision(&s, &[&old, &new], &new)
                .metadata
                .name
                .as_deref(),
            Some("web-old")
        );
        assert_eq!(
            current_revision(&s, &[&new], &new).metadata.name.as_deref(),
            Some("web-new")
        );
        let mut fresh = s.clone();
        fresh.status = None;
        assert_eq!(
            current_revision(&fresh, &[&old, &new], &new)
                .metadata
                .name
                .as_deref(),
            Some("web-new")
        );
    }

    #[test]
    fn revisions_of_the_set_are_its_own_and_orphans_in_order() {
        let s = set("v1");
        let selector = LabelSelector::from_typed(Some(&s.spec.as_ref().unwrap().selector)).unwrap();
        let mine = named(candidate_revision(&s, 2, 0), "mine", 2);
        let mut orphan = named(candidate_revision(&s, 1, 0), "orphan", 1);
        orphan.metadata.owner_references = None;
        let mut theirs = named(candidate_revision(&s, 3, 0), "theirs", 3);
        theirs.metadata.owner_references = Some(vec![OwnerReference {
            uid: "other".into(),
            controller: Some(true),
            ..Default::default()
        }]);
        let mut elsewhere = named(candidate_revision(&s, 4, 0), "elsewhere", 4);
        elsewhere.metadata.namespace = Some("other".into());
        let mut unlabelled = named(candidate_revision(&s, 5, 0), "unlabelled", 5);
        unlabelled.metadata.labels = None;
        let all = [mine, orphan, theirs, elsewhere, unlabelled];
        let names: Vec<_> = owned_revisions(&s, &selector, &all)
            .iter()
            .map(|r| r.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, ["orphan", "mine"]);
    }

    #[test]
    fn history_keeps_live_revisions_and_the_newest_up_to_the_limit() {
        let s = set("v1"); // revisionHistoryLimit 1
        let revs: Vec<ControllerRevision> = (1..=5)
            .map(|n| named(candidate_revision(&s, n, 0), &format!("r{n}"), n))
            .collect();
        let refs: Vec<&ControllerRevision> = revs.iter().collect();
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "web-0",
            "labels": {"controller-revision-hash": "r2"}}}))
        .unwrap();
        let gone: Vec<_> = revisions_to_delete(&s, &[&pod], &refs, "r4", "r5")
            .iter()
            .map(|r| r.metadata.name.clone().unwrap())
            .collect();
        // Non-live: r1, r3; keep the newest one (r3).
        assert_eq!(gone, ["r1"]);
        let mut unlimited = s.clone();
        unlimited.spec.as_mut().unwrap().revision_history_limit = Some(-1);
        assert!(revisions_to_delete(&unlimited, &[], &refs, "r4", "r5").is_empty());
    }
}
