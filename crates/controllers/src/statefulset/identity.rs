//! The identity and storage of StatefulSet pods (upstream's `stateful_set_utils.go`): ordinals
//! parsed from pod names, the names of pods and claims, the identity labels, the volumes that
//! point at a pod's claims, the claims built from `volumeClaimTemplates`, and the ownerReferences
//! that carry out `persistentVolumeClaimRetentionPolicy` (the garbage collector deletes a claim
//! once its owner is gone). Everything here is pure.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::controller_utils::{controller_ref, pod_from_template};
use crate::history::POD_REVISION_LABEL;

/// The label naming a pod after itself, for per-pod Services (upstream's
/// `StatefulSetPodNameLabel`).
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";

/// The label holding a pod's ordinal (upstream's `PodIndexLabel`, on by default since 1.28).
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// The StatefulSet's group/version and kind, as its controller references name it.
pub const SET_API_VERSION: &str = "apps/v1";
pub const SET_KIND: &str = "StatefulSet";

/// What a pod's name says: the set it belongs to and its ordinal (upstream's
/// `getParentNameAndOrdinal`, the regexp `(.*)-([0-9]+)$`). The ordinal is `None` when the
/// digits do not fit an `int32`; the parent is still known then.
pub fn parent_and_ordinal(name: &str) -> Option<(&str, Option<i32>)> {
    let (parent, digits) = name.rsplit_once('-')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((parent, digits.parse().ok()))
}

/// The pod's ordinal, if its name has one.
pub fn ordinal_of(pod: &Pod) -> Option<i32> {
    parent_and_ordinal(pod.metadata.name.as_deref().unwrap_or_default()).and_then(|(_, o)| o)
}

fn name_of(set: &StatefulSet) -> &str {
    set.metadata.name.as_deref().unwrap_or_default()
}

/// `spec.replicas` (defaulted to 1 by the API).
pub fn replicas(set: &StatefulSet) -> i32 {
    set.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// The first ordinal: `spec.ordinals.start`, else 0.
pub fn start_ordinal(set: &StatefulSet) -> i32 {
    set.spec
        .as_ref()
        .and_then(|s| s.ordinals.as_ref())
        .and_then(|o| o.start)
        .unwrap_or(0)
}

/// The last ordinal the set keeps (inclusive; below the start when it has no replicas).
pub fn end_ordinal(set: &StatefulSet) -> i32 {
    start_ordinal(set)
        .saturating_add(replicas(set))
        .saturating_sub(1)
}

/// Whether `ordinal` is one the set keeps.
pub fn in_ordinal_range(ordinal: Option<i32>, set: &StatefulSet) -> bool {
    ordinal.is_some_and(|o| o >= start_ordinal(set) && o <= end_ordinal(set))
}

/// `<set>-<ordinal>`.
pub fn pod_name(set: &StatefulSet, ordinal: i32) -> String {
    format!("{}-{ordinal}", name_of(set))
}

/// `<template>-<set>-<ordinal>`: the claim of ordinal `ordinal` from template `template`.
pub fn claim_name(template: &str, set: &StatefulSet, ordinal: i32) -> String {
    format!("{template}-{}-{ordinal}", name_of(set))
}

/// Whether the pod's name makes it one of the set's (upstream's `isMemberOf`).
pub fn is_member_of(set: &StatefulSet, pod: &Pod) -> bool {
    parent_and_ordinal(pod.metadata.name.as_deref().unwrap_or_default())
        .is_some_and(|(parent, _)| parent == name_of(set))
}

/// Whether the pod has the name, namespace and pod-name label of a member of the set
/// (upstream's `identityMatches`).
pub fn identity_matches(set: &StatefulSet, pod: &Pod) -> bool {
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let Some((parent, Some(ordinal))) = parent_and_ordinal(name) else {
        return false;
    };
    parent == name_of(set)
        && name == pod_name(set, ordinal)
        && pod.metadata.namespace == set.metadata.namespace
        && pod
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(POD_NAME_LABEL))
            .map(String::as_str)
            == Some(name)
}

fn claim_templates(set: &StatefulSet) -> &[PersistentVolumeClaim] {
    set.spec
        .as_ref()
        .and_then(|s| s.volume_claim_templates.as_deref())
        .unwrap_or_default()
}

fn template_name(t: &PersistentVolumeClaim) -> &str {
    t.metadata.name.as_deref().unwrap_or_default()
}

/// Whether the pod mounts every claim its ordinal should (upstream's `storageMatches`).
pub fn storage_matches(set: &StatefulSet, pod: &Pod) -> bool {
    let Some(ordinal) = ordinal_of(pod) else {
        return false;
    };
    let volumes = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_deref())
        .unwrap_or_default();
    claim_templates(set).iter().all(|t| {
        let want = claim_name(template_name(t), set, ordinal);
        volumes.iter().any(|v| {
            v.name == template_name(t)
                && v.persistent_volume_claim
                    .as_ref()
                    .is_some_and(|c| c.claim_name == want)
        })
    })
}

/// The claims of ordinal `ordinal`, one per template in template order, each with its
/// template's name (upstream's `getPersistentVolumeClaims`): the template's content renamed
/// into the set's namespace, its labels plus the set's `matchLabels`.
pub fn claims_for(set: &StatefulSet, ordinal: i32) -> Vec<(String, PersistentVolumeClaim)> {
    let match_labels = set
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.clone())
        .unwrap_or_default();
    claim_templates(set)
        .iter()
        .map(|t| {
            let mut claim = t.clone();
            let mut labels = claim.metadata.labels.take().unwrap_or_default();
            labels.extend(match_labels.clone());
            claim.metadata = ObjectMeta {
                name: Some(claim_name(template_name(t), set, ordinal)),
                namespace: set.metadata.namespace.clone(),
                labels: Some(labels),
                annotations: claim.metadata.annotations.take(),
                finalizers: claim.metadata.finalizers.take(),
                owner_references: claim.metadata.owner_references.take(),
                ..Default::default()
            };
            claim.status = None;
            (template_name(t).to_string(), claim)
        })
        .collect()
}

/// Points the pod's volumes named after claim templates at its claims, keeping its other
/// volumes (upstream's `updateStorage`; the claims come first, in template order).
pub fn update_storage(set: &StatefulSet, pod: &mut Pod) {
    let Some(ordinal) = ordinal_of(pod) else {
        return;
    };
    let claims = claims_for(set, ordinal);
    let spec = pod.spec.get_or_insert_with(Default::default);
    let current = spec.volumes.take().unwrap_or_default();
    let mut volumes: Vec<Volume> = claims
        .iter()
        .map(|(template, claim)| Volume {
            name: template.clone(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim.metadata.name.clone().unwrap_or_default(),
                read_only: Some(false),
            }),
            ..Default::default()
        })
        .collect();
    volumes.extend(
        current
            .into_iter()
            .filter(|v| !claims.iter().any(|(t, _)| *t == v.name)),
    );
    spec.volumes = Some(volumes);
}

/// The identity labels of the pod's name (upstream's `updateIdentity`): pod-name and
/// pod-index.
pub fn update_identity(set: &StatefulSet, pod: &mut Pod) {
    let Some(ordinal) = ordinal_of(pod) else {
        return;
    };
    let name = pod_name(set, ordinal);
    let labels = pod.metadata.labels.get_or_insert_with(BTreeMap::new);
    labels.insert(POD_NAME_LABEL.to_string(), name.clone());
    labels.insert(POD_INDEX_LABEL.to_string(), ordinal.to_string());
    pod.metadata.name = Some(name);
    pod.metadata.namespace = set.metadata.namespace.clone();
}

/// The pod of ordinal `ordinal` from the set's template, at revision `revision` (upstream's
/// `newStatefulSetPod` plus `setPodRevision`): name, identity labels, `hostname` and
/// `subdomain` (set only on creation, they are immutable), volumes for its claims, and a
/// controller reference to the set.
pub fn new_pod(set: &StatefulSet, ordinal: i32, revision: &str) -> Pod {
    let template = set
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let namespace = set.metadata.namespace.clone().unwrap_or_default();
    let oref = controller_ref(&set.metadata, SET_API_VERSION, SET_KIND);
    let mut pod = pod_from_template(&template, &namespace, oref);
    pod.metadata.name = Some(pod_name(set, ordinal));
    update_identity(set, &mut pod);
    let spec = pod.spec.get_or_insert_with(Default::default);
    spec.hostname = pod.metadata.name.clone();
    spec.subdomain = set.spec.as_ref().and_then(|s| s.service_name.clone());
    update_storage(set, &mut pod);
    pod.metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert(POD_REVISION_LABEL.to_string(), revision.to_string());
    pod
}

/// The revision a pod was made from (its `controller-revision-hash` label), or "".
pub fn pod_revision(pod: &Pod) -> &str {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(POD_REVISION_LABEL))
        .map(String::as_str)
        .unwrap_or_default()
}

/// `persistentVolumeClaimRetentionPolicy`: whether claims go with the set (`whenDeleted`) and
/// with scaled-down pods (`whenScaled`). Anything but `Delete` retains, as upstream treats
/// unknown values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub delete_with_set: bool,
    pub delete_when_scaled: bool,
}

/// The set's retention policy (Retain/Retain when unset).
pub fn retention(set: &StatefulSet) -> Retention {
    let p = set
        .spec
        .as_ref()
        .and_then(|s| s.persistent_volume_claim_retention_policy.as_ref());
    let delete = |v: Option<&String>| v.map(String::as_str) == Some("Delete");
    Retention {
        delete_with_set: delete(p.and_then(|p| p.when_deleted.as_ref())),
        delete_when_scaled: delete(p.and_then(|p| p.when_scaled.as_ref())),
    }
}

/// An owner for claim references: the set or one of its pods.
#[derive(Debug, Clone, Copy)]
pub struct Owner<'a> {
    pub api_version: &'a str,
    pub kind: &'a str,
    pub meta: &'a ObjectMeta,
}

impl<'a> Owner<'a> {
    pub fn set(set: &'a StatefulSet) -> Self {
        Owner {
            api_version: SET_API_VERSION,
            kind: SET_KIND,
            meta: &set.metadata,
        }
    }

    pub fn pod(pod: &'a Pod) -> Self {
        Owner {
            api_version: "v1",
            kind: "Pod",
            meta: &pod.metadata,
        }
    }

    fn uid(&self) -> &str {
        self.meta.uid.as_deref().unwrap_or_default()
    }

    /// The reference names this owner's kind and name (its uid may differ: upstream's
    /// `matchesRef`).
    fn named_by(&self, r: &OwnerReference) -> bool {
        r.api_version == self.api_version
            && r.kind == self.kind
            && Some(&r.name) == self.meta.name.as_ref()
    }
}

fn refs_of(claim: &PersistentVolumeClaim) -> &[OwnerReference] {
    claim
        .metadata
        .owner_references
        .as_deref()
        .unwrap_or_default()
}

/// Whether any reference of the claim has the owner's uid (upstream's `hasOwnerRef`).
fn has_owner_ref(claim: &PersistentVolumeClaim, owner: Owner) -> bool {
    refs_of(claim).iter().any(|r| r.uid == owner.uid())
}

/// Whether the first reference naming the owner carries another uid: it belonged to an earlier
/// object of the same name (upstream's `hasStaleOwnerRef`).
pub fn has_stale_owner_ref(claim: &PersistentVolumeClaim, owner: Owner) -> bool {
    refs_of(claim)
        .iter()
        .find(|r| owner.named_by(r))
        .is_some_and(|r| r.uid != owner.uid())
}

/// Whether the claim has a controller other than the set or pod, under a policy that deletes
/// claims (upstream's `hasUnexpectedController`); a reference naming the set or pod with a
/// different uid counts as unexpected too.
pub fn has_unexpected_controller(
    claim: &PersistentVolumeClaim,
    set: &StatefulSet,
    pod: &Pod,
) -> bool {
    let policy = retention(set);
    if !policy.delete_with_set && !policy.delete_when_scaled {
        return false;
    }
    let (s, p) = (Owner::set(set), Owner::pod(pod));
    refs_of(claim).iter().any(|r| {
        if s.named_by(r) {
            r.uid != s.uid()
        } else if p.named_by(r) {
            r.uid != p.uid()
        } else {
            r.controller == Some(true)
        }
    })
}

/// Whether the set or pod owns the claim without being its controller.
fn has_non_controller_owner(claim: &PersistentVolumeClaim, set: &StatefulSet, pod: &Pod) -> bool {
    let (s, p) = (Owner::set(set), Owner::pod(pod));
    refs_of(claim)
        .iter()
        .any(|r| (r.uid == s.uid() || r.uid == p.uid()) && r.controller != Some(true))
}

/// Whether the claim's references already carry out the retention policy for this pod
/// (upstream's `isClaimOwnerUpToDate`): Retain/Retain wants no reference; whenDeleted=Delete a
/// reference to the set while the pod is in range; whenScaled=Delete a reference to the pod once
/// its ordinal is out of range. Claims with stale references or another controller are left
/// alone.
pub fn claim_owner_up_to_date(claim: &PersistentVolumeClaim, set: &StatefulSet, pod: &Pod) -> bool {
    if has_stale_owner_ref(claim, Owner::set(set)) || has_stale_owner_ref(claim, Owner::pod(pod)) {
        return true;
    }
    let (has_set, has_pod) = (
        has_owner_ref(claim, Owner::set(set)),
        has_owner_ref(claim, Owner::pod(pod)),
    );
    if has_unexpected_controller(claim, set, pod) {
        return !(has_set || has_pod);
    }
    if has_non_controller_owner(claim, set, pod) {
        return false;
    }
    let policy = retention(set);
    let scaled_down = !in_ordinal_range(ordinal_of(pod), set);
    let want_set = policy.delete_with_set && !(policy.delete_when_scaled && scaled_down);
    let want_pod = policy.delete_when_scaled && scaled_down;
    has_set == want_set && has_pod == want_pod
}

/// The claim's references rewritten for the retention policy (upstream's
/// `updateClaimOwnerRefForSetAndPod`): references to the set and pod are dropped, then the
/// policy's controller references added, unless another controller owns the claim.
pub fn claim_owner_refs(
    claim: &PersistentVolumeClaim,
    set: &StatefulSet,
    pod: &Pod,
) -> Vec<OwnerReference> {
    let unexpected = has_unexpected_controller(claim, set, pod);
    let (s, p) = (Owner::set(set), Owner::pod(pod));
    let mut refs: Vec<OwnerReference> = refs_of(claim)
        .iter()
        .filter(|r| !s.named_by(r) && !p.named_by(r))
        .cloned()
        .collect();
    if unexpected {
        return refs;
    }
    let policy = retention(set);
    let scaled_down = !in_ordinal_range(ordinal_of(pod), set);
    let mut add = |o: Owner| {
        if !refs.iter().any(|r| r.uid == o.uid()) {
            refs.push(controller_ref(o.meta, o.api_version, o.kind));
        }
    };
    if policy.delete_when_scaled && scaled_down {
        add(p);
    } else if policy.delete_with_set {
        add(s);
    }
    refs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(policy: (&str, &str)) -> StatefulSet {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "set-uid"},
            "spec": {
                "replicas": 3,
                "ordinals": {"start": 1},
                "serviceName": "nginx",
                "selector": {"matchLabels": {"app": "web"}},
                "persistentVolumeClaimRetentionPolicy": {"whenDeleted": policy.0, "whenScaled": policy.1},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "i"}],
                             "volumes": [{"name": "data", "emptyDir": {}},
                                         {"name": "cfg", "emptyDir": {}}]}
                },
                "volumeClaimTemplates": [
                    {"metadata": {"name": "data", "labels": {"tier": "db"}},
                     "spec": {"accessModes": ["ReadWriteOnce"],
                              "resources": {"requests": {"storage": "1Gi"}}}},
                    {"metadata": {"name": "logs"}, "spec": {"accessModes": ["ReadWriteOnce"]}}
                ]
            }
        }))
        .unwrap()
    }

    #[test]
    fn names_parse_into_parent_and_ordinal_as_upstreams_regexp() {
        type Parsed<'a> = Option<(&'a str, Option<i32>)>;
        let cases: &[(&str, Parsed)] = &[
            ("web-0", Some(("web", Some(0)))),
            ("web-12", Some(("web", Some(12)))),
            ("my-db-3", Some(("my-db", Some(3)))),
            ("web-01", Some(("web", Some(1)))),
            ("web-", None),
            ("web", None),
            ("web-x1", None),
            ("-4", Some(("", Some(4)))),
            ("web-99999999999", Some(("web", None))),
        ];
        for (name, want) in cases {
            assert_eq!(parent_and_ordinal(name), *want, "{name}");
        }
    }

    #[test]
    fn ordinal_range_starts_at_spec_ordinals_start() {
        let s = set(("Retain", "Retain"));
        assert_eq!((start_ordinal(&s), end_ordinal(&s)), (1, 3));
        let cases = [
            (None, false),
            (Some(0), false),
            (Some(1), true),
            (Some(3), true),
            (Some(4), false),
        ];
        for (o, want) in cases {
            assert_eq!(in_ordinal_range(o, &s), want, "{o:?}");
        }
    }

    #[test]
    fn new_pods_carry_identity_revision_storage_and_owner() {
        let s = set(("Retain", "Retain"));
        let pod = new_pod(&s, 2, "web-abc");
        let v = serde_json::to_value(&pod).unwrap();
        assert_eq!(v["metadata"]["name"], "web-2");
        assert_eq!(v["metadata"]["generateName"], "web-");
        assert_eq!(
            v["metadata"]["labels"],
            json!({"app": "web", POD_NAME_LABEL: "web-2", POD_INDEX_LABEL: "2",
                   "controller-revision-hash": "web-abc"})
        );
        assert_eq!(v["spec"]["hostname"], "web-2");
        assert_eq!(v["spec"]["subdomain"], "nginx");
        assert_eq!(
            v["spec"]["volumes"],
            json!([
                {"name": "data", "persistentVolumeClaim": {"claimName": "data-web-2", "readOnly": false}},
                {"name": "logs", "persistentVolumeClaim": {"claimName": "logs-web-2", "readOnly": false}},
                {"name": "cfg", "emptyDir": {}}
            ])
        );
        assert_eq!(v["metadata"]["ownerReferences"][0]["kind"], "StatefulSet");
        assert_eq!(v["metadata"]["ownerReferences"][0]["uid"], "set-uid");
        assert!(identity_matches(&s, &pod) && storage_matches(&s, &pod));

        let mut renamed = pod.clone();
        renamed
            .metadata
            .labels
            .as_mut()
            .unwrap()
            .remove(POD_NAME_LABEL);
        assert!(!identity_matches(&s, &renamed));
        update_identity(&s, &mut renamed);
        assert!(identity_matches(&s, &renamed));
        let mut unmounted = pod.clone();
        unmounted.spec.as_mut().unwrap().volumes = None;
        assert!(!storage_matches(&s, &unmounted));
    }

    #[test]
    fn claims_are_named_per_ordinal_and_labelled_with_the_selector() {
        let s = set(("Retain", "Retain"));
        let claims = claims_for(&s, 3);
        let got: Vec<_> = claims
            .iter()
            .map(|(t, c)| {
                (
                    t.as_str(),
                    c.metadata.name.as_deref().unwrap(),
                    c.metadata.labels.clone().unwrap(),
                )
            })
            .collect();
        let labels = |extra: &[(&str, &str)]| -> BTreeMap<String, String> {
            let mut l = BTreeMap::from([("app".to_string(), "web".to_string())]);
            l.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            l
        };
        assert_eq!(
            got,
            vec![
                ("data", "data-web-3", labels(&[("tier", "db")])),
                ("logs", "logs-web-3", labels(&[])),
            ]
        );
        assert_eq!(claims[0].1.metadata.namespace.as_deref(), Some("ns"));
    }

    fn pod(name: &str, uid: &str) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": "ns", "uid": uid}}))
            .unwrap()
    }

    fn claim(refs: &[(&str, &str, &str, bool)]) -> PersistentVolumeClaim {
        let refs: Vec<_> = refs
            .iter()
            .map(|(kind, name, uid, controller)| {
                let api = if *kind == "Pod" { "v1" } else { "apps/v1" };
                json!({"apiVersion": api, "kind": kind, "name": name, "uid": uid, "controller": controller})
            })
            .collect();
        serde_json::from_value(json!({"metadata": {"name": "data-web-1", "ownerReferences": refs}}))
            .unwrap()
    }

    fn owners(refs: &[OwnerReference]) -> Vec<(String, String, Option<bool>)> {
        refs.iter()
            .map(|r| (r.kind.clone(), r.uid.clone(), r.controller))
            .collect()
    }

    #[test]
    fn retention_policy_decides_claim_owners() {
        let in_range = pod("web-1", "pod-uid");
        let condemned = pod("web-9", "pod-uid");
        let set_ref = ("StatefulSet", "web", "set-uid", true);
        let pod_ref = |name| ("Pod", name, "pod-uid", true);
        // (policy whenDeleted/whenScaled, pod, claim refs, up to date?, owners after update)
        type Case<'a> = (
            (&'a str, &'a str),
            &'a Pod,
            Vec<(&'a str, &'a str, &'a str, bool)>,
            bool,
            Vec<&'a str>,
        );
        let cases: Vec<Case> = vec![
            (("Retain", "Retain"), &in_range, vec![], true, vec![]),
            (
                ("Retain", "Retain"),
                &in_range,
                vec![set_ref],
                false,
                vec![],
            ),
            (
                ("Delete", "Retain"),
                &in_range,
                vec![],
                false,
                vec!["StatefulSet"],
            ),
            (
                ("Delete", "Retain"),
                &in_range,
                vec![set_ref],
                true,
                vec!["StatefulSet"],
            ),
            (
                ("Delete", "Retain"),
                &condemned,
                vec![set_ref],
                true,
                vec!["StatefulSet"],
            ),
            (("Retain", "Delete"), &in_range, vec![], true, vec![]),
            (("Retain", "Delete"), &condemned, vec![], false, vec!["Pod"]),
            (
                ("Retain", "Delete"),
                &condemned,
                vec![pod_ref("web-9")],
                true,
                vec!["Pod"],
            ),
            (
                ("Delete", "Delete"),
                &in_range,
                vec![],
                false,
                vec!["StatefulSet"],
            ),
            (
                ("Delete", "Delete"),
                &condemned,
                vec![set_ref],
                false,
                vec!["Pod"],
            ),
            (
                ("Delete", "Delete"),
                &condemned,
                vec![pod_ref("web-9")],
                true,
                vec!["Pod"],
            ),
            // A reference that is not a controller is rewritten as one.
            (
                ("Delete", "Retain"),
                &in_range,
                vec![("StatefulSet", "web", "set-uid", false)],
                false,
                vec!["StatefulSet"],
            ),
        ];
        for (policy, p, refs, up_to_date, want) in cases {
            let s = set(policy);
            let c = claim(&refs);
            assert_eq!(
                claim_owner_up_to_date(&c, &s, p),
                up_to_date,
                "{policy:?} {:?} {refs:?}",
                p.metadata.name
            );
            let got = claim_owner_refs(&c, &s, p);
            let kinds: Vec<&str> = got.iter().map(|r| r.kind.as_str()).collect();
            assert_eq!(kinds, want, "{policy:?} {:?} {refs:?}", p.metadata.name);
            assert!(got
                .iter()
                .all(|r| r.controller == Some(true) && r.block_owner_deletion == Some(true)));
        }
    }

    #[test]
    fn claims_of_other_controllers_and_stale_refs_are_left_alone() {
        let s = set(("Delete", "Delete"));
        let p = pod("web-9", "pod-uid");
        let other = claim(&[("Thing", "x", "x-uid", true)]);
        assert!(has_unexpected_controller(&other, &s, &p));
        assert!(claim_owner_up_to_date(&other, &s, &p));
        assert_eq!(
            owners(&claim_owner_refs(&other, &s, &p)),
            vec![("Thing".into(), "x-uid".into(), Some(true))]
        );
        let both = claim(&[
            ("Thing", "x", "x-uid", true),
            ("Pod", "web-9", "pod-uid", true),
        ]);
        assert!(
            !claim_owner_up_to_date(&both, &s, &p),
            "our ref beside another controller is removed"
        );
        assert_eq!(claim_owner_refs(&both, &s, &p).len(), 1);
        let stale = claim(&[("Pod", "web-9", "old-uid", true)]);
        assert!(has_stale_owner_ref(&stale, Owner::pod(&p)));
        assert!(claim_owner_up_to_date(&stale, &s, &p));
        let unborn = pod("web-9", "");
        assert!(
            has_stale_owner_ref(&stale, Owner::pod(&unborn)),
            "a pod not yet created"
        );
        assert!(!has_stale_owner_ref(&claim(&[]), Owner::pod(&unborn)));
    }
}
