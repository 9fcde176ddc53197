//! Strategic merge patch (`application/strategic-merge-patch+json`) with upstream's
//! server-side semantics (`strategicpatch.StrategicMergePatch`): JSON objects merge key by
//! key with null deleting, lists merge or replace as the field's `patchStrategy` says, and
//! the `$patch`, `$retainKeys`, `$deleteFromPrimitiveList/…` and `$setElementOrder/…`
//! directives apply. The strategy of each field comes from [`super::meta`], found by
//! walking the kind's k8s-openapi schema.
//!
//! Only built-in kinds have that metadata; upstream refuses strategic merge patch for
//! custom resources with 415 Unsupported Media Type, which [`apply`] reports as
//! [`StrategicPatchError::UnsupportedKind`].

use serde_json::Value;

use super::schema_walk::{definitions, Node};
use super::smp_map::merge_map;

/// A strategic merge patch that cannot be applied, with upstream's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StrategicPatchError {
    /// The kind has no Go struct upstream (custom resources).
    #[error("strategic merge patch format is not supported")]
    UnsupportedKind {
        group: String,
        version: String,
        kind: String,
    },
    #[error("invalid JSON document")]
    BadJsonDoc,
    #[error("lists of lists are not supported")]
    NoListOfLists,
    #[error("invalid patch format of primitive list")]
    BadPatchFormatForPrimitiveList,
    #[error("invalid patch format of retainKeys")]
    BadPatchFormatForRetainKeys,
    #[error("invalid patch format of setElementOrder list")]
    BadPatchFormatForSetElementOrderList,
    #[error("map: {map} does not contain declared merge key: {key}")]
    NoMergeKey { map: String, key: String },
    #[error("expected a {expected}, but received a {actual}")]
    BadArgType {
        expected: &'static str,
        actual: &'static str,
    },
    #[error("unknown patch type: {directive} in map: {map}")]
    BadPatchType { directive: String, map: String },
    #[error("merging lists cannot yet be specified in the patch")]
    MergeDirectiveInList,
    #[error("cannot merge lists without merge key for {0}")]
    NoMergeKeyForList(&'static str),
    #[error("list element types are not identical: {0}")]
    ElementTypesDiffer(String),
    #[error("no elements in any of the given slices")]
    NoElements,
    /// Upstream cannot type a list whose first element is null (it panics, so answers 500).
    #[error("list elements must not be null")]
    NullListElement,
    #[error("The order in patch list:\n{patch}\n doesn't match $setElementOrder list:\n{order}\n")]
    OrderMismatch { patch: String, order: String },
    #[error("merging an object in json but data type is not struct, instead is: {0}")]
    NotAStruct(&'static str),
    #[error("value for key {0} is not a map")]
    ListItemNotAMap(usize),
    #[error("unexpected patch strategy: {0}")]
    UnexpectedPatchStrategy(String),
}

impl StrategicPatchError {
    /// The HTTP status upstream's patch handler answers with: 415 for kinds without
    /// strategic merge support, 400 for malformed documents and directives, 422 for lists of
    /// lists, and 500 (an internal error carrying the message) for the rest.
    pub fn status_code(&self) -> u16 {
        match self {
            Self::UnsupportedKind { .. } => 415,
            Self::BadJsonDoc
            | Self::BadPatchFormatForPrimitiveList
            | Self::BadPatchFormatForRetainKeys
            | Self::BadPatchFormatForSetElementOrderList => 400,
            Self::NoListOfLists => 422,
            _ => 500,
        }
    }
}

/// Whether strategic merge patch applies to a kind: only to the built-in kinds served.
pub fn supports_kind(group: &str, version: &str, kind: &str) -> bool {
    definitions().kind(group, version, kind).is_some()
}

/// Applies a strategic merge patch to `original` (a full object of the given kind).
///
/// A `null` patch changes nothing; a patch or original that is not a JSON object is an
/// invalid document.
pub fn apply(
    original: &Value,
    patch: &Value,
    group: &str,
    version: &str,
    kind: &str,
) -> Result<Value, StrategicPatchError> {
    let Some(definition) = definitions().kind(group, version, kind) else {
        return Err(StrategicPatchError::UnsupportedKind {
            group: group.to_string(),
            version: version.to_string(),
            kind: kind.to_string(),
        });
    };
    let Value::Object(original) = original else {
        return Err(StrategicPatchError::BadJsonDoc);
    };
    let patch = match patch {
        Value::Null => return Ok(Value::Object(original.clone())),
        Value::Object(patch) => patch.clone(),
        _ => return Err(StrategicPatchError::BadJsonDoc),
    };
    let merged = merge_map(original.clone(), patch, Node::definition(definition))?;
    Ok(Value::Object(merged))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(spec: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec})
    }

    #[test]
    fn built_in_kinds_merge_by_their_field_strategies() {
        let cases = [
            (
                "containers merge by name",
                ("", "v1", "Pod"),
                pod(
                    json!({"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]}),
                ),
                json!({"spec": {"containers": [{"name": "b", "image": "b:2"}]}}),
                pod(
                    json!({"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:2"}]}),
                ),
            ),
            (
                "a container is deleted by $patch",
                ("", "v1", "Pod"),
                pod(json!({"containers": [{"name": "a"}, {"name": "b"}]})),
                json!({"spec": {"containers": [{"name": "a", "$patch": "delete"}]}}),
                pod(json!({"containers": [{"name": "b"}]})),
            ),
            (
                "$patch: replace replaces the container list",
                ("", "v1", "Pod"),
                pod(json!({"containers": [{"name": "a"}, {"name": "b"}]})),
                json!({"spec": {"containers": [{"name": "c"}, {"$patch": "replace"}]}}),
                pod(json!({"containers": [{"name": "c"}]})),
            ),
            (
                "ports merge by containerPort and env by name",
                ("", "v1", "Pod"),
                pod(json!({"containers": [{"name": "a",
                    "ports": [{"containerPort": 80, "name": "http"}],
                    "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]}]})),
                json!({"spec": {"containers": [{"name": "a",
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    "env": [{"name": "Y", "value": "3"}]}]}}),
                pod(json!({"containers": [{"name": "a",
                    "ports": [{"containerPort": 80, "name": "http", "protocol": "TCP"}],
                    "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "3"}]}]})),
            ),
            (
                "tolerations have no strategy and are replaced",
                ("", "v1", "Pod"),
                pod(json!({"tolerations": [{"key": "a", "operator": "Exists"}]})),
                json!({"spec": {"tolerations": [{"key": "b", "operator": "Exists"}]}}),
                pod(json!({"tolerations": [{"key": "b", "operator": "Exists"}]})),
            ),
            (
                "null deletes a label",
                ("", "v1", "ConfigMap"),
                json!({"metadata": {"name": "c", "labels": {"a": "1", "b": "2"}}, "data": {"k": "v"}}),
                json!({"metadata": {"labels": {"a": null, "c": "3"}}, "data": {"k2": "v2"}}),
                json!({"metadata": {"name": "c", "labels": {"b": "2", "c": "3"}}, "data": {"k": "v", "k2": "v2"}}),
            ),
            (
                "finalizers are a merging primitive list",
                ("", "v1", "ConfigMap"),
                json!({"metadata": {"name": "c", "finalizers": ["a/x", "b/y"]}}),
                json!({"metadata": {"finalizers": ["b/y", "c/z"]}}),
                json!({"metadata": {"name": "c", "finalizers": ["a/x", "b/y", "c/z"]}}),
            ),
            (
                "finalizers are removed by $deleteFromPrimitiveList",
                ("", "v1", "Namespace"),
                json!({"metadata": {"name": "n", "finalizers": ["a/x", "b/y"]}}),
                json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a/x"]}}),
                json!({"metadata": {"name": "n", "finalizers": ["b/y"]}}),
            ),
            (
                "$setElementOrder orders containers",
                ("", "v1", "Pod"),
                pod(json!({"containers": [{"name": "a"}, {"name": "b"}]})),
                json!({"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "c"}, {"name": "a"}],
                                "containers": [{"name": "c", "image": "c"}]}}),
                pod(
                    json!({"containers": [{"name": "b"}, {"name": "c", "image": "c"}, {"name": "a"}]}),
                ),
            ),
            (
                "$retainKeys switches a deployment to Recreate",
                ("apps", "v1", "Deployment"),
                json!({"spec": {"replicas": 1, "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}),
                json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
                json!({"spec": {"replicas": 1, "strategy": {"type": "Recreate"}}}),
            ),
            (
                "a deployment's pod template merges containers and volumes",
                ("apps", "v1", "Deployment"),
                json!({"spec": {"template": {"metadata": {"labels": {"app": "x"}}, "spec": {
                    "containers": [{"name": "app", "image": "app:1", "volumeMounts": [{"name": "v", "mountPath": "/v"}]}],
                    "volumes": [{"name": "v", "emptyDir": {}}]}}}}),
                json!({"spec": {"template": {"spec": {
                    "containers": [{"name": "app", "image": "app:2"}, {"name": "side", "image": "side:1"}],
                    "volumes": [{"name": "w", "configMap": {"name": "cm"}}]}}}}),
                json!({"spec": {"template": {"metadata": {"labels": {"app": "x"}}, "spec": {
                    "containers": [
                        {"name": "app", "image": "app:2", "volumeMounts": [{"name": "v", "mountPath": "/v"}]},
                        {"name": "side", "image": "side:1"}],
                    "volumes": [{"name": "w", "configMap": {"name": "cm"}}, {"name": "v", "emptyDir": {}}]}}}}),
            ),
            (
                "owner references merge by uid",
                ("apps", "v1", "ReplicaSet"),
                json!({"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}]}}),
                json!({"metadata": {"ownerReferences": [{"uid": "2", "name": "b"}]}}),
                json!({"metadata": {"ownerReferences": [{"uid": "2", "name": "b"}, {"uid": "1", "name": "a"}]}}),
            ),
            (
                "pod conditions merge by type",
                ("", "v1", "Pod"),
                json!({"status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "Initialized", "status": "True"}]}}),
                json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
                json!({"status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Initialized", "status": "True"}]}}),
            ),
            (
                "a PDB selector is replaced",
                ("policy", "v1", "PodDisruptionBudget"),
                json!({"spec": {"selector": {"matchLabels": {"a": "1"}}}}),
                json!({"spec": {"selector": {"matchLabels": {"b": "2"}}}}),
                json!({"spec": {"selector": {"matchLabels": {"b": "2"}}}}),
            ),
            (
                "a null patch changes nothing",
                ("", "v1", "ConfigMap"),
                json!({"data": {"a": "1"}}),
                Value::Null,
                json!({"data": {"a": "1"}}),
            ),
        ];
        for (name, (group, version, kind), original, patch, want) in cases {
            assert_eq!(
                apply(&original, &patch, group, version, kind),
                Ok(want),
                "{name}"
            );
        }
    }

    #[test]
    fn unsupported_kinds_and_bad_documents_are_refused() {
        let cases = [
            (
                ("stable.example.com", "v1", "CronTab"),
                json!({}),
                json!({}),
                415,
                "strategic merge patch format is not supported",
            ),
            (
                ("", "v1", "ConfigMap"),
                json!({}),
                json!([1]),
                400,
                "invalid JSON document",
            ),
            (
                ("", "v1", "ConfigMap"),
                json!("x"),
                json!({}),
                400,
                "invalid JSON document",
            ),
            (
                ("", "v1", "Pod"),
                pod(json!({"containers": [{"name": "a"}]})),
                json!({"spec": {"containers": [{"image": "x"}]}}),
                500,
                "map: map[image:x] does not contain declared merge key: name",
            ),
            (
                ("", "v1", "ConfigMap"),
                json!({"metadata": {"finalizers": ["a"]}}),
                json!({"metadata": {"$setElementOrder/finalizers": "a"}}),
                500,
                "expected a []interface {}, but received a string",
            ),
        ];
        for ((group, version, kind), original, patch, status, message) in cases {
            let err = apply(&original, &patch, group, version, kind).unwrap_err();
            assert_eq!(
                (err.status_code(), err.to_string()),
                (status, message.to_string()),
                "{patch}"
            );
        }
        assert!(supports_kind("apps", "v1", "Deployment"));
        assert!(supports_kind("autoscaling", "v1", "Scale"));
        assert!(!supports_kind("stable.example.com", "v1", "CronTab"));
    }
}
