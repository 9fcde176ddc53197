//! Object metadata and label selectors: upstream's apimachinery `ValidateObjectMeta`,
//! `ValidateObjectMetaUpdate`, label and annotation rules, owner references, finalizers,
//! and `ValidateLabelSelector` with selector matching.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use serde::Serialize;
use serde_json::Value;

use super::names::{is_dns1123_label, is_qualified_name, is_valid_label_value, NameFn};
use crate::field_error::{ErrorList, FieldError, FieldPath};

pub const FIELD_IMMUTABLE: &str = "field is immutable";
pub const IS_NEGATIVE: &str = "must be greater than or equal to 0";
const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// A value as JSON, for error messages and deep comparisons.
pub(crate) fn json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// `field is immutable` when the two differ.
pub(crate) fn immutable<T: Serialize + PartialEq>(
    new: &T,
    old: &T,
    path: &FieldPath,
    errs: &mut ErrorList,
) {
    if new != old {
        errs.push(FieldError::invalid(path, json(new), FIELD_IMMUTABLE));
    }
}

/// `must be greater than or equal to 0` for negative values.
pub(crate) fn non_negative(v: Option<i64>, path: &FieldPath, errs: &mut ErrorList) {
    if let Some(v) = v.filter(|v| *v < 0) {
        errs.push(FieldError::invalid(path, v, IS_NEGATIVE));
    }
}

/// Labels: keys are qualified names, values label values; both report on the map's path.
pub fn validate_labels(labels: Option<&BTreeMap<String, String>>, path: &FieldPath) -> ErrorList {
    let mut errs = ErrorList::new();
    for (k, v) in labels.into_iter().flatten() {
        for m in is_qualified_name(k) {
            errs.push(FieldError::invalid(path, k.as_str(), &m));
        }
        for m in is_valid_label_value(v) {
            errs.push(FieldError::invalid(path, v.as_str(), &m));
        }
    }
    errs
}

/// Annotations: keys are case-insensitive qualified names; the total size is capped.
pub fn validate_annotations(
    annotations: Option<&BTreeMap<String, String>>,
    path: &FieldPath,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut total = 0usize;
    for (k, v) in annotations.into_iter().flatten() {
        for m in is_qualified_name(&k.to_lowercase()) {
            errs.push(FieldError::invalid(path, k.as_str(), &m));
        }
        total += k.len() + v.len();
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(FieldError::too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
    errs
}

fn validate_owner_reference(r: &OwnerReference, path: &FieldPath, errs: &mut ErrorList) {
    let (group, version) = match r.api_version.rsplit_once('/') {
        Some((g, v)) => (g, v),
        None => ("", r.api_version.as_str()),
    };
    if version.is_empty() {
        errs.push(FieldError::invalid(
            &path.child("apiVersion"),
            r.api_version.as_str(),
            "version must not be empty",
        ));
    }
    if r.kind.is_empty() {
        errs.push(FieldError::invalid(
            &path.child("kind"),
            "",
            "must not be empty",
        ));
    }
    if r.name.is_empty() {
        errs.push(FieldError::invalid(
            &path.child("name"),
            "",
            "must not be empty",
        ));
    }
    if r.uid.is_empty() {
        errs.push(FieldError::invalid(
            &path.child("uid"),
            "",
            "must not be empty",
        ));
    }
    if group.is_empty() && version == "v1" && r.kind == "Event" {
        errs.push(FieldError::invalid(
            path,
            json(r),
            "/v1, Kind=Event is disallowed from being an owner",
        ));
    }
}

/// Owner references: each complete, at most one controller.
pub fn validate_owner_references(
    refs: Option<&Vec<OwnerReference>>,
    path: &FieldPath,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut first_controller: Option<String> = None;
    for r in refs.into_iter().flatten() {
        validate_owner_reference(r, path, &mut errs);
        if r.controller == Some(true) {
            let this = format!("{}/{}", r.kind, r.name);
            match &first_controller {
                Some(first) => errs.push(FieldError::invalid(
                    path,
                    json(&refs),
                    &format!("Only one reference can have Controller set to true. Found \"true\" in references for {first} and {this}"),
                )),
                None => first_controller = Some(this),
            }
        }
    }
    errs
}

/// Finalizers: qualified names, and not both `orphan` and `foregroundDeletion`.
pub fn validate_finalizers(finalizers: Option<&Vec<String>>, path: &FieldPath) -> ErrorList {
    let mut errs = ErrorList::new();
    let list = finalizers.map(Vec::as_slice).unwrap_or_default();
    for f in list {
        for m in is_qualified_name(f) {
            errs.push(FieldError::invalid(path, f.as_str(), &m));
        }
    }
    if list.iter().any(|f| f == "orphan") && list.iter().any(|f| f == "foregroundDeletion") {
        errs.push(FieldError::invalid(
            path,
            json(&list),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
    errs
}

/// Built-in kinds also require unprefixed finalizers to be the standard ones.
pub(crate) fn validate_kube_finalizers(
    finalizers: Option<&Vec<String>>,
    path: &FieldPath,
) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, f) in finalizers.into_iter().flatten().enumerate() {
        if !f.contains('/') && !matches!(f.as_str(), "kubernetes" | "orphan" | "foregroundDeletion")
        {
            errs.push(FieldError::invalid(
                &path.index(i),
                f.as_str(),
                "name is neither a standard finalizer name nor is it fully qualified",
            ));
        }
    }
    errs
}

/// Validates metadata on creation. `name_fn` is the kind's name rule; built-in kinds also
/// get the standard-finalizer check (see [`validate_generic_object_meta`] for the plain one).
pub fn validate_object_meta(
    meta: &ObjectMeta,
    namespaced: bool,
    name_fn: NameFn,
    path: &FieldPath,
) -> ErrorList {
    let mut errs = validate_generic_object_meta(meta, Some(namespaced), name_fn, path);
    errs.extend(validate_kube_finalizers(
        meta.finalizers.as_ref(),
        &path.child("finalizers"),
    ));
    errs
}

/// apimachinery's `ValidateObjectMeta`. A `None` scope skips the namespace rules, for
/// objects whose scope the caller does not know.
pub fn validate_generic_object_meta(
    meta: &ObjectMeta,
    namespaced: Option<bool>,
    name_fn: NameFn,
    path: &FieldPath,
) -> ErrorList {
    let mut errs = ErrorList::new();
    if let Some(g) = meta.generate_name.as_deref().filter(|g| !g.is_empty()) {
        for m in name_fn(g, true) {
            errs.push(FieldError::invalid(&path.child("generateName"), g, &m));
        }
    }
    match meta.name.as_deref().filter(|n| !n.is_empty()) {
        None => errs.push(FieldError::required(
            &path.child("name"),
            "name or generateName is required",
        )),
        Some(n) => {
            for m in name_fn(n, false) {
                errs.push(FieldError::invalid(&path.child("name"), n, &m));
            }
        }
    }
    let ns = meta.namespace.as_deref().unwrap_or_default();
    match namespaced {
        Some(true) if ns.is_empty() => {
            errs.push(FieldError::required(&path.child("namespace"), ""));
        }
        Some(true) => {
            for m in is_dns1123_label(ns) {
                errs.push(FieldError::invalid(&path.child("namespace"), ns, &m));
            }
        }
        Some(false) if !ns.is_empty() => {
            errs.push(FieldError::forbidden(
                &path.child("namespace"),
                "not allowed on this type",
            ));
        }
        _ => {}
    }
    non_negative(meta.generation, &path.child("generation"), &mut errs);
    errs.extend(validate_labels(meta.labels.as_ref(), &path.child("labels")));
    errs.extend(validate_annotations(
        meta.annotations.as_ref(),
        &path.child("annotations"),
    ));
    errs.extend(validate_owner_references(
        meta.owner_references.as_ref(),
        &path.child("ownerReferences"),
    ));
    errs.extend(validate_finalizers(
        meta.finalizers.as_ref(),
        &path.child("finalizers"),
    ));
    errs
}

/// apimachinery's `ValidateObjectMetaUpdate`: identity fields are immutable, a resource
/// version is required, the generation may not go back, and no finalizer may be added once
/// deletion has begun. The caller (the API server) is expected to have carried `uid`,
/// `creationTimestamp` and `resourceVersion` over from the stored object as upstream's
/// `BeforeUpdate` does.
pub fn validate_object_meta_update(
    new: &ObjectMeta,
    old: &ObjectMeta,
    path: &FieldPath,
) -> ErrorList {
    let mut errs = ErrorList::new();
    if old.deletion_timestamp.is_some() {
        let old_f = old.finalizers.clone().unwrap_or_default();
        let mut extra: Vec<&String> = new
            .finalizers
            .iter()
            .flatten()
            .filter(|f| !old_f.contains(f))
            .collect();
        extra.sort();
        extra.dedup();
        if !extra.is_empty() {
            let quoted: Vec<String> = extra.iter().map(|f| format!("{f:?}")).collect();
            errs.push(FieldError::forbidden(
                &path.child("finalizers"),
                &format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                    quoted.join(", ")
                ),
            ));
        }
    }
    if new
        .resource_version
        .as_deref()
        .unwrap_or_default()
        .is_empty()
    {
        errs.push(FieldError::invalid(
            &path.child("resourceVersion"),
            "",
            "must be specified for an update",
        ));
    }
    let (ng, og) = (new.generation.unwrap_or(0), old.generation.unwrap_or(0));
    if ng < og {
        errs.push(FieldError::invalid(
            &path.child("generation"),
            ng,
            "must not be decremented",
        ));
    }
    let s = |v: &Option<String>| v.clone().unwrap_or_default();
    immutable(&s(&new.name), &s(&old.name), &path.child("name"), &mut errs);
    immutable(
        &s(&new.namespace),
        &s(&old.namespace),
        &path.child("namespace"),
        &mut errs,
    );
    immutable(&s(&new.uid), &s(&old.uid), &path.child("uid"), &mut errs);
    immutable(
        &new.creation_timestamp,
        &old.creation_timestamp,
        &path.child("creationTimestamp"),
        &mut errs,
    );
    immutable(
        &new.deletion_timestamp,
        &old.deletion_timestamp,
        &path.child("deletionTimestamp"),
        &mut errs,
    );
    immutable(
        &new.deletion_grace_period_seconds,
        &old.deletion_grace_period_seconds,
        &path.child("deletionGracePeriodSeconds"),
        &mut errs,
    );
    errs.extend(validate_labels(new.labels.as_ref(), &path.child("labels")));
    errs.extend(validate_annotations(
        new.annotations.as_ref(),
        &path.child("annotations"),
    ));
    errs.extend(validate_owner_references(
        new.owner_references.as_ref(),
        &path.child("ownerReferences"),
    ));
    errs.extend(validate_finalizers(
        new.finalizers.as_ref(),
        &path.child("finalizers"),
    ));
    errs
}

/// `metav1validation.ValidateLabelSelector`, strict about label values.
pub fn validate_label_selector(sel: Option<&LabelSelector>, path: &FieldPath) -> ErrorList {
    let mut errs = ErrorList::new();
    let Some(sel) = sel else { return errs };
    errs.extend(validate_labels(
        sel.match_labels.as_ref(),
        &path.child("matchLabels"),
    ));
    for (i, r) in sel.match_expressions.iter().flatten().enumerate() {
        let p = path.child("matchExpressions").index(i);
        let values = r.values.as_deref().unwrap_or_default();
        match r.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => errs.push(FieldError::required(
                &p.child("values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            )),
            "In" | "NotIn" => {}
            "Exists" | "DoesNotExist" if !values.is_empty() => errs.push(FieldError::forbidden(
                &p.child("values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )),
            "Exists" | "DoesNotExist" => {}
            other => errs.push(FieldError::invalid(
                &p.child("operator"),
                other,
                "not a valid selector operator",
            )),
        }
        for m in is_qualified_name(&r.key) {
            errs.push(FieldError::invalid(&p.child("key"), r.key.as_str(), &m));
        }
        for (j, v) in values.iter().enumerate() {
            for m in is_valid_label_value(v) {
                errs.push(FieldError::invalid(
                    &p.child("values").index(j),
                    v.as_str(),
                    &m,
                ));
            }
        }
    }
    errs
}

/// How a label selector reads: `None` when it cannot be converted (bad operator),
/// otherwise whether it is empty (selects everything) and whether it matches `labels`.
pub(crate) fn selector_matches(
    sel: &LabelSelector,
    labels: Option<&BTreeMap<String, String>>,
) -> Option<bool> {
    let empty = BTreeMap::new();
    let labels = labels.unwrap_or(&empty);
    let mut ok = sel
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    for r in sel.match_expressions.iter().flatten() {
        let values = r.values.as_deref().unwrap_or_default();
        let have = labels.get(&r.key);
        let m = match r.operator.as_str() {
            "In" => have.is_some_and(|v| values.contains(v)),
            "NotIn" => have.is_none_or(|v| !values.contains(v)),
            "Exists" => have.is_some(),
            "DoesNotExist" => have.is_none(),
            _ => return None,
        };
        ok &= m;
    }
    Some(ok)
}

/// True for a selector with no terms, which selects everything.
pub(crate) fn selector_is_empty(sel: &LabelSelector) -> bool {
    sel.match_labels.as_ref().is_none_or(BTreeMap::is_empty)
        && sel.match_expressions.as_ref().is_none_or(Vec::is_empty)
}

#[cfg(test)]
mod tests {
    use super::super::names::{name_is_dns_label, name_is_dns_subdomain};
    use super::*;
    use crate::field_error::FieldErrorType;
    use serde_json::json as j;

    type MetaCase = (
        &'static str,
        Value,
        bool,
        Vec<(&'static str, FieldErrorType)>,
    );
    type UpdateCase = (
        &'static str,
        Value,
        Value,
        Vec<(&'static str, FieldErrorType)>,
    );

    fn meta(v: Value) -> ObjectMeta {
        serde_json::from_value(v).expect("test metadata")
    }

    fn summary(errs: &ErrorList) -> Vec<(String, FieldErrorType)> {
        errs.iter().map(|e| (e.field.to_string(), e.kind)).collect()
    }

    #[test]
    fn object_meta_create_rules() {
        use FieldErrorType::*;
        let cases: Vec<MetaCase> = vec![
            ("valid", j!({"name": "a", "namespace": "ns"}), true, vec![]),
            (
                "missing name",
                j!({"namespace": "ns"}),
                true,
                vec![("metadata.name", Required)],
            ),
            (
                "bad name",
                j!({"name": "A_b", "namespace": "ns"}),
                true,
                vec![("metadata.name", Invalid)],
            ),
            (
                "bad generateName",
                j!({"name": "a", "generateName": "X-", "namespace": "ns"}),
                true,
                vec![("metadata.generateName", Invalid)],
            ),
            (
                "namespace required",
                j!({"name": "a"}),
                true,
                vec![("metadata.namespace", Required)],
            ),
            (
                "namespace format",
                j!({"name": "a", "namespace": "a.b"}),
                true,
                vec![("metadata.namespace", Invalid)],
            ),
            (
                "namespace forbidden",
                j!({"name": "a", "namespace": "ns"}),
                false,
                vec![("metadata.namespace", Forbidden)],
            ),
            (
                "negative generation",
                j!({"name": "a", "generation": -1}),
                false,
                vec![("metadata.generation", Invalid)],
            ),
            (
                "bad label key",
                j!({"name": "a", "labels": {"a b": "c"}}),
                false,
                vec![("metadata.labels", Invalid)],
            ),
            (
                "bad label value",
                j!({"name": "a", "labels": {"a": "c d"}}),
                false,
                vec![("metadata.labels", Invalid)],
            ),
            (
                "bad annotation key",
                j!({"name": "a", "annotations": {"a/b/c": ""}}),
                false,
                vec![("metadata.annotations", Invalid)],
            ),
            (
                "uppercase annotation ok",
                j!({"name": "a", "annotations": {"Example.COM/Key": "x"}}),
                false,
                vec![],
            ),
            (
                "owner ref incomplete",
                j!({"name": "a", "ownerReferences": [{"apiVersion": "", "kind": "", "name": "", "uid": ""}]}),
                false,
                vec![
                    ("metadata.ownerReferences.apiVersion", Invalid),
                    ("metadata.ownerReferences.kind", Invalid),
                    ("metadata.ownerReferences.name", Invalid),
                    ("metadata.ownerReferences.uid", Invalid),
                ],
            ),
            (
                "two controllers",
                j!({"name": "a", "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "x", "uid": "1", "controller": true},
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "y", "uid": "2", "controller": true}]}),
                false,
                vec![("metadata.ownerReferences", Invalid)],
            ),
            (
                "event owner",
                j!({"name": "a", "ownerReferences": [{"apiVersion": "v1", "kind": "Event", "name": "e", "uid": "1"}]}),
                false,
                vec![("metadata.ownerReferences", Invalid)],
            ),
            (
                "bad finalizer",
                j!({"name": "a", "finalizers": ["foo"]}),
                false,
                vec![("metadata.finalizers[0]", Invalid)],
            ),
            (
                "standard finalizer",
                j!({"name": "a", "finalizers": ["kubernetes", "example.com/x"]}),
                false,
                vec![],
            ),
            (
                "conflicting finalizers",
                j!({"name": "a", "finalizers": ["orphan", "foregroundDeletion"]}),
                false,
                vec![("metadata.finalizers", Invalid)],
            ),
        ];
        for (name, m, namespaced, want) in cases {
            let got = validate_object_meta(
                &meta(m),
                namespaced,
                name_is_dns_subdomain,
                &FieldPath::new("metadata"),
            );
            let want: Vec<(String, FieldErrorType)> =
                want.into_iter().map(|(p, t)| (p.to_string(), t)).collect();
            assert_eq!(summary(&got), want, "{name}");
        }
    }

    #[test]
    fn messages_match_upstream() {
        let got = validate_object_meta(
            &meta(j!({"namespace": "ns"})),
            true,
            name_is_dns_label,
            &FieldPath::new("metadata"),
        );
        assert_eq!(
            got[0].to_string(),
            "metadata.name: Required value: name or generateName is required"
        );
        let got = validate_object_meta(
            &meta(j!({"name": "a", "namespace": "x"})),
            false,
            name_is_dns_label,
            &FieldPath::new("metadata"),
        );
        assert_eq!(
            got[0].to_string(),
            "metadata.namespace: Forbidden: not allowed on this type"
        );
        let mut big = BTreeMap::new();
        big.insert("a".to_string(), "x".repeat(256 * 1024));
        let errs =
            validate_annotations(Some(&big), &FieldPath::new("metadata").child("annotations"));
        assert_eq!(
            errs[0].to_string(),
            "metadata.annotations: Too long: may not be more than 262144 bytes"
        );
    }

    #[test]
    fn object_meta_update_rules() {
        use FieldErrorType::*;
        let old = j!({"name": "a", "namespace": "ns", "uid": "u1", "resourceVersion": "5", "generation": 2,
            "creationTimestamp": "2024-01-01T00:00:00Z"});
        let cases: Vec<UpdateCase> = vec![
            ("unchanged", old.clone(), old.clone(), vec![]),
            (
                "name changed",
                j!({"name": "b", "namespace": "ns", "uid": "u1", "resourceVersion": "5", "generation": 2, "creationTimestamp": "2024-01-01T00:00:00Z"}),
                old.clone(),
                vec![("metadata.name", Invalid)],
            ),
            (
                "uid changed",
                j!({"name": "a", "namespace": "ns", "uid": "u2", "resourceVersion": "5", "generation": 2, "creationTimestamp": "2024-01-01T00:00:00Z"}),
                old.clone(),
                vec![("metadata.uid", Invalid)],
            ),
            (
                "no resourceVersion",
                j!({"name": "a", "namespace": "ns", "uid": "u1", "generation": 2, "creationTimestamp": "2024-01-01T00:00:00Z"}),
                old.clone(),
                vec![("metadata.resourceVersion", Invalid)],
            ),
            (
                "generation decremented",
                j!({"name": "a", "namespace": "ns", "uid": "u1", "resourceVersion": "5", "generation": 1, "creationTimestamp": "2024-01-01T00:00:00Z"}),
                old.clone(),
                vec![("metadata.generation", Invalid)],
            ),
            (
                "creationTimestamp changed",
                j!({"name": "a", "namespace": "ns", "uid": "u1", "resourceVersion": "5", "generation": 2, "creationTimestamp": "2024-02-01T00:00:00Z"}),
                old.clone(),
                vec![("metadata.creationTimestamp", Invalid)],
            ),
            (
                "finalizer added while deleting",
                j!({"name": "a", "resourceVersion": "5", "deletionTimestamp": "2024-01-02T00:00:00Z", "finalizers": ["a.io/x", "a.io/y"]}),
                j!({"name": "a", "resourceVersion": "4", "deletionTimestamp": "2024-01-02T00:00:00Z", "finalizers": ["a.io/x"]}),
                vec![("metadata.finalizers", Forbidden)],
            ),
        ];
        for (name, new, old, want) in cases {
            let got =
                validate_object_meta_update(&meta(new), &meta(old), &FieldPath::new("metadata"));
            let want: Vec<(String, FieldErrorType)> =
                want.into_iter().map(|(p, t)| (p.to_string(), t)).collect();
            assert_eq!(summary(&got), want, "{name}");
        }
        let got = validate_object_meta_update(
            &meta(j!({"name": "b", "resourceVersion": "1"})),
            &meta(j!({"name": "a", "resourceVersion": "1"})),
            &FieldPath::new("metadata"),
        );
        assert_eq!(
            got[0].to_string(),
            "metadata.name: Invalid value: \"b\": field is immutable"
        );
    }

    #[test]
    fn label_selector_rules_and_matching() {
        use FieldErrorType::*;
        let sel: LabelSelector = serde_json::from_value(j!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["a", "b"]},
                {"key": "env", "operator": "DoesNotExist"}
            ]
        }))
        .expect("selector");
        assert!(
            validate_label_selector(Some(&sel), &FieldPath::new("spec").child("selector"))
                .is_empty()
        );
        let mut labels = BTreeMap::new();
        labels.insert("app".to_string(), "web".to_string());
        labels.insert("tier".to_string(), "a".to_string());
        assert_eq!(selector_matches(&sel, Some(&labels)), Some(true));
        labels.insert("env".to_string(), "x".to_string());
        assert_eq!(selector_matches(&sel, Some(&labels)), Some(false));

        let bad: LabelSelector = serde_json::from_value(j!({
            "matchExpressions": [
                {"key": "a", "operator": "In"},
                {"key": "b", "operator": "Exists", "values": ["x"]},
                {"key": "c", "operator": "Near"}
            ]
        }))
        .expect("selector");
        let got = validate_label_selector(Some(&bad), &FieldPath::new("s"));
        assert_eq!(
            summary(&got),
            vec![
                ("s.matchExpressions[0].values".to_string(), Required),
                ("s.matchExpressions[1].values".to_string(), Forbidden),
                ("s.matchExpressions[2].operator".to_string(), Invalid),
            ]
        );
        assert_eq!(selector_matches(&bad, None), None);
        assert!(selector_is_empty(&LabelSelector::default()));
    }
}
