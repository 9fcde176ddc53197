//! ControllerRevisions: the recorded template history of DaemonSets and StatefulSets
//! (upstream's `pkg/controller/history`).
//!
//! A revision stores a patch that restores the owner's pod template (`{"spec":{"template":
//! {..., "$patch":"replace"}}}`), a `revision` number, and a name `<owner>-<hash>` where the hash
//! is FNV-1 over the data (plus the owner's `collisionCount` once a name collided), safe-encoded.
//! The pure parts (hashing, naming, equality, ordering) are here with table tests; the only I/O is
//! [`create_revision`], which retries under a new name while another object holds the name.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::PostParams;
use kube::Api;
use serde_json::Value;

use crate::controller_utils::{fnv32, safe_encode};
use crate::error::is_already_exists;

/// The label holding a revision's hash (upstream's `ControllerRevisionHashLabel`).
pub const REVISION_HASH_LABEL: &str = "controller.kubernetes.io/hash";

/// The label DaemonSet and StatefulSet pods carry naming their revision (upstream's
/// `DefaultDaemonSetUniqueLabelKey` and `StatefulSetRevisionLabel`).
pub const POD_REVISION_LABEL: &str = "controller-revision-hash";

/// Most collisions [`create_revision`] walks past before giving up (upstream loops without
/// bound; a bound turns a pathological case into an error instead of a spin).
const MAX_COLLISIONS: i32 = 1000;

/// `<prefix>-<hash>`, the prefix cut to 223 bytes so the name fits 253 (upstream's
/// `ControllerRevisionName`).
pub fn revision_name(prefix: &str, hash: &str) -> String {
    let mut end = prefix.len().min(223);
    while !prefix.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}-{hash}", &prefix[..end])
}

/// The canonical bytes of revision data: JSON with object keys sorted, as Go's encoder writes
/// the `map[string]interface{}` upstream builds the patch from.
pub fn canonical_bytes(data: &Value) -> Vec<u8> {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let by_key: BTreeMap<&String, Value> =
                    m.iter().map(|(k, v)| (k, sorted(v))).collect();
                Value::Object(by_key.into_iter().map(|(k, v)| (k.clone(), v)).collect())
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_vec(&sorted(data)).unwrap_or_default()
}

/// The hash of revision `data` with the owner's collision count (upstream's
/// `HashControllerRevision`): FNV-1 over the data's bytes, then the count in decimal,
/// printed in decimal and safe-encoded.
pub fn hash_revision(data: &Value, collision_count: Option<i32>) -> String {
    let mut bytes = canonical_bytes(data);
    if let Some(c) = collision_count {
        bytes.extend_from_slice(c.to_string().as_bytes());
    }
    safe_encode(&fnv32(&bytes).to_string())
}

/// The data of a revision of `owner` (a DaemonSet or StatefulSet serialized to JSON): a patch
/// that replaces `spec.template` with the owner's (upstream's `getPatch`).
pub fn template_patch(owner: &Value) -> Value {
    let mut template = owner
        .pointer("/spec/template")
        .cloned()
        .unwrap_or_else(|| Value::Object(Default::default()));
    if let Value::Object(m) = &mut template {
        m.insert("$patch".into(), Value::String("replace".into()));
    }
    serde_json::json!({ "spec": { "template": template } })
}

/// A revision of the owner (upstream's `NewControllerRevision`): the template's labels plus
/// the hash label, a controller reference to the owner, `data` and the `revision` number,
/// named by the hash with `collision_count`.
pub fn new_revision(
    owner_ref: OwnerReference,
    namespace: &str,
    template_labels: Option<&BTreeMap<String, String>>,
    data: Value,
    revision: i64,
    collision_count: Option<i32>,
) -> ControllerRevision {
    let hash = hash_revision(&data, collision_count);
    let mut labels = template_labels.cloned().unwrap_or_default();
    labels.insert(REVISION_HASH_LABEL.to_string(), hash.clone());
    ControllerRevision {
        metadata: ObjectMeta {
            name: Some(revision_name(&owner_ref.name, &hash)),
            namespace: Some(namespace.to_string()),
            labels: Some(labels),
            owner_references: Some(vec![owner_ref]),
            ..Default::default()
        },
        data: Some(RawExtension(data)),
        revision,
    }
}

fn data_of(r: &ControllerRevision) -> Option<&Value> {
    r.data.as_ref().map(|d| &d.0)
}

/// Whether two revisions hold the same data (upstream's `EqualRevision`): differing hash
/// labels settle it quickly, else the data are compared.
pub fn equal_revision(a: &ControllerRevision, b: &ControllerRevision) -> bool {
    let hash = |r: &ControllerRevision| {
        r.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(REVISION_HASH_LABEL))
            .cloned()
    };
    if let (Some(ha), Some(hb)) = (hash(a), hash(b)) {
        if ha != hb {
            return false;
        }
    }
    match (data_of(a), data_of(b)) {
        (Some(da), Some(db)) => canonical_bytes(da) == canonical_bytes(db),
        (None, None) => true,
        _ => false,
    }
}

/// The revisions equal to `needle`, in their order (upstream's `FindEqualRevisions`).
pub fn find_equal_revisions<'a>(
    revisions: &[&'a ControllerRevision],
    needle: &ControllerRevision,
) -> Vec<&'a ControllerRevision> {
    revisions
        .iter()
        .copied()
        .filter(|r| equal_revision(r, needle))
        .collect()
}

/// Upstream's revision order: by `revision`, then older first, then by name.
pub fn compare_revisions(a: &ControllerRevision, b: &ControllerRevision) -> Ordering {
    a.revision
        .cmp(&b.revision)
        .then_with(|| {
            let t = |r: &ControllerRevision| r.metadata.creation_timestamp.as_ref().map(|t| t.0);
            t(a).cmp(&t(b))
        })
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

/// Sorts revisions in [`compare_revisions`] order (stable, as upstream's).
pub fn sort_revisions(revisions: &mut [&ControllerRevision]) {
    revisions.sort_by(|a, b| compare_revisions(a, b));
}

/// The number the next revision gets: one more than the highest (upstream's
/// `nextRevision`), 1 for the first.
pub fn next_revision(revisions: &[&ControllerRevision]) -> i64 {
    revisions.iter().map(|r| r.revision).max().unwrap_or(0) + 1
}

/// `revision` named and labelled by the hash of its data with `collision_count`: the name and
/// the hash label (which pods are labelled from) always agree.
pub fn renamed(
    revision: &ControllerRevision,
    owner_name: &str,
    collision_count: i32,
) -> ControllerRevision {
    let data = data_of(revision).cloned().unwrap_or(Value::Null);
    let hash = hash_revision(&data, Some(collision_count));
    let mut out = revision.clone();
    out.metadata.name = Some(revision_name(owner_name, &hash));
    out.metadata
        .labels
        .get_or_insert_with(Default::default)
        .insert(REVISION_HASH_LABEL.to_string(), hash);
    out
}

/// Creates `revision` for the owner `owner_name` (upstream's `CreateControllerRevision`). A
/// name already taken by a revision with the same data is that revision; taken by other data,
/// it is a hash collision: `collision_count` goes up by one and the revision is renamed with
/// it. Callers persist the new `collision_count` in the owner's status.
pub async fn create_revision(
    api: &Api<ControllerRevision>,
    owner_name: &str,
    revision: &ControllerRevision,
    collision_count: &mut i32,
) -> Result<ControllerRevision, kube::Error> {
    let data = data_of(revision).cloned().unwrap_or(Value::Null);
    for _ in 0..MAX_COLLISIONS {
        let candidate = renamed(revision, owner_name, *collision_count);
        match api.create(&PostParams::default(), &candidate).await {
            Err(e) if is_already_exists(&e) => {
                let name = candidate.metadata.name.as_deref().unwrap_or_default();
                let existing = api.get(name).await?;
                if data_of(&existing).map(canonical_bytes) == Some(canonical_bytes(&data)) {
                    return Ok(existing);
                }
                *collision_count += 1;
            }
            other => return other,
        }
    }
    Err(kube::Error::Service(
        format!("{MAX_COLLISIONS} ControllerRevision name collisions for {owner_name}").into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rev(name: &str, revision: i64, data: Value) -> ControllerRevision {
        ControllerRevision {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(
                    [(REVISION_HASH_LABEL.to_string(), hash_revision(&data, None))].into(),
                ),
                ..Default::default()
            },
            data: Some(RawExtension(data)),
            revision,
        }
    }

    #[test]
    fn fnv1_matches_go_hash_fnv_new32() {
        // Reference values of Go's fnv.New32 (FNV-1, not FNV-1a).
        assert_eq!(fnv32(b""), 0x811c_9dc5);
        assert_eq!(fnv32(b"a"), 0x050c_5d7e);
        assert_eq!(fnv32(b"foobar"), 0x31f0_b262);
    }

    #[test]
    fn hash_is_independent_of_key_order_and_changes_with_data_and_collisions() {
        let a = json!({"spec": {"template": {"a": 1, "b": [{"y": 1, "x": 2}]}}});
        let b = json!({"spec": {"template": {"b": [{"x": 2, "y": 1}], "a": 1}}});
        let c = json!({"spec": {"template": {"a": 2, "b": [{"x": 2, "y": 1}]}}});
        assert_eq!(hash_revision(&a, None), hash_revision(&b, None));
        assert_ne!(hash_revision(&a, None), hash_revision(&c, None));
        assert_ne!(hash_revision(&a, None), hash_revision(&a, Some(1)));
        assert_ne!(hash_revision(&a, Some(1)), hash_revision(&a, Some(2)));
        let alphabet = "bcdfghjklmnpqrstvwxz2456789";
        assert!(hash_revision(&a, None)
            .chars()
            .all(|c| alphabet.contains(c)));
    }

    #[test]
    fn names_are_cut_to_fit_253_bytes() {
        assert_eq!(revision_name("web", "abc"), "web-abc");
        let long = "x".repeat(300);
        let name = revision_name(&long, "h");
        assert_eq!(name.len(), 225);
        assert!(name.ends_with("x-h"));
    }

    #[test]
    fn template_patch_replaces_only_the_template() {
        let ds = json!({
            "metadata": {"name": "ds", "generation": 3},
            "spec": {"selector": {"matchLabels": {"a": "b"}},
                     "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": []}}},
            "status": {"numberReady": 1},
        });
        let patch = template_patch(&ds);
        assert_eq!(
            patch,
            json!({"spec": {"template": {
                "metadata": {"labels": {"a": "b"}}, "spec": {"containers": []},
                "$patch": "replace"}}})
        );
    }

    #[test]
    fn new_revision_is_named_by_its_hash_and_owned() {
        let owner = OwnerReference {
            api_version: "apps/v1".into(),
            kind: "DaemonSet".into(),
            name: "ds".into(),
            uid: "u1".into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        };
        let labels = BTreeMap::from([("app".to_string(), "x".to_string())]);
        let data = json!({"spec": {"template": {"$patch": "replace"}}});
        let r = new_revision(owner, "ns", Some(&labels), data.clone(), 4, Some(2));
        let hash = hash_revision(&data, Some(2));
        assert_eq!(r.metadata.name, Some(format!("ds-{hash}")));
        let l = r.metadata.labels.as_ref().unwrap();
        assert_eq!(l.get("app").map(String::as_str), Some("x"));
        assert_eq!(l.get(REVISION_HASH_LABEL), Some(&hash));
        assert_eq!(r.revision, 4);
        assert_eq!(r.metadata.owner_references.unwrap()[0].uid, "u1");
    }

    #[test]
    fn a_renamed_revision_keeps_name_and_hash_label_in_step() {
        let r = rev("x", 1, json!({"spec": {"template": {"a": 1}}}));
        for count in [0, 1, 7] {
            let n = renamed(&r, "ds", count);
            let hash = n.metadata.labels.as_ref().unwrap()[REVISION_HASH_LABEL].clone();
            assert_eq!(n.metadata.name, Some(format!("ds-{hash}")));
            assert_eq!(
                hash,
                hash_revision(&json!({"spec": {"template": {"a": 1}}}), Some(count))
            );
        }
    }

    #[test]
    fn equality_ordering_and_next_revision() {
        let a = rev("a", 2, json!({"x": 1}));
        let b = rev("b", 1, json!({"x": 1}));
        let c = rev("c", 3, json!({"x": 2}));
        assert!(equal_revision(&a, &b));
        assert!(!equal_revision(&a, &c));
        let all = [&a, &b, &c];
        let eq: Vec<_> = find_equal_revisions(&all, &a)
            .iter()
            .map(|r| r.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(eq, ["a", "b"]);
        let mut sorted = all.to_vec();
        sort_revisions(&mut sorted);
        let names: Vec<_> = sorted.iter().map(|r| r.metadata.name.as_deref()).collect();
        assert_eq!(names, [Some("b"), Some("a"), Some("c")]);
        assert_eq!(next_revision(&all), 4);
        assert_eq!(next_revision(&[]), 1);
    }
}
