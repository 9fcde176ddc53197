use super::*;

fn oref(uid: &str, block: bool) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        name: format!("cm-{uid}"),
        uid: uid.into(),
        block_owner_deletion: block.then_some(true),
        ..Default::default()
    }
}

fn obj(uid: &str, owners: &[OwnerReference]) -> ObjectInfo {
    ObjectInfo {
        uid: uid.into(),
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        namespace: Some("ns".into()),
        name: format!("cm-{uid}"),
        owners: owners.to_vec(),
        deleting: false,
        finalizers: vec![],
    }
}

fn deleting(mut o: ObjectInfo, finalizers: &[&str]) -> ObjectInfo {
    o.deleting = true;
    o.finalizers = finalizers.iter().map(|f| f.to_string()).collect();
    o
}

fn del(uid: &str) -> Work {
    Work::AttemptToDelete(uid.into())
}

#[test]
fn graph_changes_cause_upstreams_work() {
    let mut g = Graph::default();
    // A dependent seen before its owner is checked (the owner may not exist).
    assert_eq!(
        g.upsert(obj("child", &[oref("owner", true)])),
        [del("child")]
    );
    // The owner appearing causes nothing; the link is kept.
    assert_eq!(g.upsert(obj("owner", &[])), []);
    assert_eq!(g.dependents("owner").len(), 1);
    // A second dependent of an observed owner needs no check.
    assert_eq!(g.upsert(obj("other", &[oref("owner", false)])), []);
    // Foreground deletion of the owner: the owner and all its dependents are checked.
    assert_eq!(
        g.upsert(deleting(obj("owner", &[]), &[FOREGROUND_FINALIZER])),
        [del("child"), del("other"), del("owner")]
    );
    // The same state again is no transition.
    assert_eq!(
        g.upsert(deleting(obj("owner", &[]), &[FOREGROUND_FINALIZER])),
        []
    );
    // A dependent dropping its reference frees the waiting owner.
    assert_eq!(g.upsert(obj("other", &[])), [del("owner")]);
    assert_eq!(g.dependents("owner").len(), 1);
    // A dependent going away: its foreground-deleting owner is checked again.
    assert_eq!(g.remove("child"), [del("owner")]);
    assert!(g.dependents("owner").is_empty());
    // An owner going away: its dependents are checked.
    g.upsert(obj("a", &[]));
    g.upsert(obj("b", &[oref("a", false)]));
    assert_eq!(g.remove("a"), [del("b")]);
    assert!(g.get("a").is_none());
    // Orphan deletion is queued once, on the transition.
    assert_eq!(
        g.upsert(deleting(obj("o", &[]), &[ORPHAN_FINALIZER])),
        [Work::Orphan("o".into())]
    );
    assert_eq!(g.upsert(deleting(obj("o", &[]), &[ORPHAN_FINALIZER])), []);
    // Removing something never seen is a no-op.
    assert_eq!(g.remove("nobody"), []);
}

#[test]
fn views_report_blocking_dependents() {
    let mut g = Graph::default();
    g.upsert(obj("owner", &[]));
    g.upsert(obj("blocker", &[oref("owner", true)]));
    g.upsert(obj("loose", &[oref("owner", false)]));
    g.upsert(deleting(
        obj("busy", &[oref("owner", true)]),
        &[FOREGROUND_FINALIZER],
    ));
    let v = g.view("owner").unwrap();
    assert!(v.has_dependents && v.dependent_deleting_dependents);
    assert_eq!(
        v.blocking,
        [("blocker".to_string(), false), ("busy".to_string(), true)]
    );
    assert!(g.view("ghost").is_none());
}

#[test]
fn precheck_follows_attempt_to_delete_item() {
    let view = |blocking: &[(&str, bool)]| DependentsView {
        has_dependents: !blocking.is_empty(),
        dependent_deleting_dependents: false,
        blocking: blocking.iter().map(|(u, d)| (u.to_string(), *d)).collect(),
    };
    let fg = deleting(obj("x", &[]), &[FOREGROUND_FINALIZER]);
    let cases: Vec<(&str, ObjectInfo, DependentsView, Precheck)> = vec![
        (
            "foreground, nothing blocks",
            fg.clone(),
            view(&[]),
            Precheck::RemoveForegroundFinalizer,
        ),
        (
            "foreground, blocked: check blockers not deleting their own",
            fg,
            view(&[("a", false), ("b", true)]),
            Precheck::CheckDependents(vec!["a".into()]),
        ),
        (
            "being deleted otherwise",
            deleting(obj("x", &[oref("o", false)]), &[]),
            view(&[]),
            Precheck::Nothing,
        ),
        ("no owners", obj("x", &[]), view(&[]), Precheck::Nothing),
        (
            "owned",
            obj("x", &[oref("o", false)]),
            view(&[]),
            Precheck::LookUpOwners,
        ),
    ];
    for (what, o, v, want) in cases {
        assert_eq!(precheck(&o, &v), want, "{what}");
    }
}

#[test]
fn decisions_follow_classify_references() {
    use OwnerState::*;
    let present = Present {
        deleting_dependents: false,
    };
    let waiting = Present {
        deleting_dependents: true,
    };
    let leaf = DependentsView::default();
    let parent = DependentsView {
        has_dependents: true,
        ..Default::default()
    };
    let cycle = DependentsView {
        has_dependents: true,
        dependent_deleting_dependents: true,
        blocking: vec![],
    };
    let plain = obj("x", &[]);
    let with_orphan = deleting(obj("x", &[]), &[ORPHAN_FINALIZER]);
    let with_fg = ObjectInfo {
        deleting: false,
        ..deleting(obj("x", &[]), &[FOREGROUND_FINALIZER])
    };
    let s = |v: &[(&str, OwnerState)]| -> Vec<(String, OwnerState)> {
        v.iter().map(|(u, st)| (u.to_string(), *st)).collect()
    };
    type Case<'a> = (
        &'a str,
        &'a ObjectInfo,
        Vec<(String, OwnerState)>,
        &'a DependentsView,
        Decision,
    );
    let cases: Vec<Case> = vec![
        (
            "one solid owner",
            &plain,
            s(&[("a", present)]),
            &leaf,
            Decision::Keep,
        ),
        (
            "solid and dangling: drop the dangling reference",
            &plain,
            s(&[("a", present), ("b", Absent)]),
            &leaf,
            Decision::RemoveOwnerReferences(vec!["b".into()]),
        ),
        (
            "solid and waiting: drop the waiting reference",
            &plain,
            s(&[("a", waiting), ("b", present)]),
            &leaf,
            Decision::RemoveOwnerReferences(vec!["a".into()]),
        ),
        (
            "all owners gone: background",
            &plain,
            s(&[("a", Absent), ("b", Absent)]),
            &leaf,
            Decision::Delete(Propagation::Background),
        ),
        (
            "owner waiting, leaf: background",
            &plain,
            s(&[("a", waiting)]),
            &leaf,
            Decision::Delete(Propagation::Background),
        ),
        (
            "owner waiting, has dependents: foreground so it cascades",
            &plain,
            s(&[("a", waiting)]),
            &parent,
            Decision::Delete(Propagation::Foreground),
        ),
        (
            "owner waiting, a dependent waiting too: unblock first",
            &plain,
            s(&[("a", waiting)]),
            &cycle,
            Decision::UnblockThenDeleteForeground,
        ),
        (
            "gone owner, orphan finalizer honoured",
            &with_orphan,
            s(&[("a", Absent)]),
            &parent,
            Decision::Delete(Propagation::Orphan),
        ),
        (
            "gone owner, foreground finalizer honoured",
            &with_fg,
            s(&[("a", Absent)]),
            &leaf,
            Decision::Delete(Propagation::Foreground),
        ),
        (
            "cluster-scoped dependent of a namespaced owner is left alone",
            &plain,
            s(&[("a", Invalid)]),
            &leaf,
            Decision::Keep,
        ),
        (
            "an invalid reference does not keep an object whose other owner is gone",
            &plain,
            s(&[("a", Invalid), ("b", Absent)]),
            &leaf,
            Decision::Delete(Propagation::Background),
        ),
    ];
    for (what, o, owners, v, want) in cases {
        assert_eq!(decide(o, &owners, v), want, "{what}");
    }
}

#[test]
fn owner_reference_edits() {
    let refs = [oref("a", true), oref("b", true), oref("c", false)];
    let left = without_owners(&refs, &["a".into(), "c".into()]);
    assert_eq!(left, [oref("b", true)]);
    let un = unblocked(&refs);
    assert!(un.iter().all(|o| o.block_owner_deletion != Some(true)));
    assert_eq!(un[2].block_owner_deletion, None);
}

#[test]
fn object_info_reads_metadata() {
    let meta = ObjectMeta {
        uid: Some("u".into()),
        name: Some("n".into()),
        namespace: Some("".into()),
        finalizers: Some(vec![ORPHAN_FINALIZER.into()]),
        deletion_timestamp: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            Default::default(),
        )),
        ..Default::default()
    };
    let info = ObjectInfo::from_meta("v1", "Node", &meta).unwrap();
    assert_eq!(info.namespace, None);
    assert!(info.orphaning() && !info.deleting_dependents());
    assert!(ObjectInfo::from_meta("v1", "Node", &ObjectMeta::default()).is_none());
}
