//! Upstream's validation of the built-in kinds: what the API server checks before it stores
//! a created or updated object, with upstream's field paths, error types and messages.
//!
//! The entry points take the full JSON object, read it into the `k8s-openapi` type of the
//! kind (a type mismatch becomes a field error), check metadata with the kind's name rule and
//! scope, then the kind's own rules. Objects are expected to be defaulted already; fields that
//! defaulting always fills are checked when present and taken as defaulted when absent.
//! Kinds without specific rules here get metadata validation only (see [`KINDS_WITH_RULES`]).

mod apps;
mod batch;
mod cluster;
mod container;
mod corev1;
mod crd;
mod events;
mod meta;
mod names;
mod networking;
mod others;
mod pod;
mod qty;
mod rbac;
mod resources;
mod service;
mod storage;
mod volumes;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::{Metadata, Resource};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::field_error::{ErrorList, FieldError, FieldErrorType, FieldPath};

pub use meta::{
    validate_annotations, validate_finalizers, validate_generic_object_meta,
    validate_label_selector, validate_labels, validate_object_meta, validate_object_meta_update,
    validate_owner_references, FIELD_IMMUTABLE,
};
pub use names::{
    is_config_map_key, is_dns1035_label, is_dns1123_label, is_dns1123_subdomain, is_env_var_name,
    is_qualified_name, is_relaxed_env_var_name, is_valid_label_value, is_valid_path_segment_name,
    is_valid_percent, is_valid_port_name, is_valid_port_num, is_wildcard_dns1123_subdomain,
    name_any, name_is_dns1035_label, name_is_dns_label, name_is_dns_subdomain,
    name_is_path_segment, NameFn,
};

/// The kinds with rules beyond metadata, as `(group, kind)`.
pub const KINDS_WITH_RULES: &[(&str, &str)] = &[
    ("", "Pod"),
    ("", "PodTemplate"),
    ("", "ReplicationController"),
    ("", "Service"),
    ("", "ConfigMap"),
    ("", "Secret"),
    ("", "Namespace"),
    ("", "Node"),
    ("", "PersistentVolumeClaim"),
    ("", "PersistentVolume"),
    ("", "ServiceAccount"),
    ("", "Endpoints"),
    ("", "Event"),
    ("", "LimitRange"),
    ("", "ResourceQuota"),
    ("apps", "Deployment"),
    ("apps", "ReplicaSet"),
    ("apps", "StatefulSet"),
    ("apps", "DaemonSet"),
    ("apps", "ControllerRevision"),
    ("batch", "Job"),
    ("batch", "CronJob"),
    ("autoscaling", "HorizontalPodAutoscaler"),
    ("policy", "PodDisruptionBudget"),
    ("networking.k8s.io", "Ingress"),
    ("networking.k8s.io", "IngressClass"),
    ("networking.k8s.io", "NetworkPolicy"),
    ("discovery.k8s.io", "EndpointSlice"),
    ("coordination.k8s.io", "Lease"),
    ("events.k8s.io", "Event"),
    ("scheduling.k8s.io", "PriorityClass"),
    ("storage.k8s.io", "StorageClass"),
    ("storage.k8s.io", "CSIDriver"),
    ("storage.k8s.io", "VolumeAttachment"),
    ("rbac.authorization.k8s.io", "Role"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "RoleBinding"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
];

/// Validates a new object (already defaulted). `obj` is the full JSON object with
/// apiVersion/kind/metadata.
pub fn validate_create(group: &str, kind: &str, obj: &Value) -> ErrorList {
    run(group, kind, obj, Op::Create)
}

/// Validates an update of `old` to `new` (both full objects): everything
/// [`validate_create`] checks plus immutability rules.
pub fn validate_update(group: &str, kind: &str, new: &Value, old: &Value) -> ErrorList {
    run(group, kind, new, Op::Update(old))
}

/// Validates a status-subresource update.
pub fn validate_status_update(group: &str, kind: &str, new: &Value, old: &Value) -> ErrorList {
    run(group, kind, new, Op::Status(old))
}

#[derive(Clone, Copy)]
enum Op<'a> {
    Create,
    Update(&'a Value),
    Status(&'a Value),
}

/// What a kind's rules may need beyond the typed object.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cx<'a> {
    /// The version of the request (`v1`, `v2`).
    pub version: &'a str,
    /// The object as sent, to tell an absent field from an empty one.
    pub raw: &'a Value,
}

impl Cx<'_> {
    /// Whether `path` (JSON keys) is present in the submitted object.
    pub(crate) fn has(&self, path: &[&str]) -> bool {
        let mut v = self.raw;
        for k in path {
            match v.get(k) {
                Some(next) if !next.is_null() => v = next,
                _ => return false,
            }
        }
        true
    }
}

/// How a kind's metadata is checked.
#[derive(Clone, Copy)]
pub(crate) enum MetaRule {
    /// Core's `ValidateObjectMeta` with this name rule.
    Standard(NameFn),
    /// apimachinery's plain one (no standard-finalizer check).
    Generic(NameFn),
}

type CreateFn<T> = fn(&T, &Cx) -> ErrorList;
type UpdateFn<T> = fn(&T, &T, &Cx) -> ErrorList;

/// One kind's rules: metadata, creation, the extra update rules, the status update rules.
pub(crate) struct Rules<T> {
    pub meta: MetaRule,
    pub create: CreateFn<T>,
    pub update: UpdateFn<T>,
    pub status: UpdateFn<T>,
}

pub(crate) fn no_create<T>(_: &T, _: &Cx) -> ErrorList {
    ErrorList::new()
}

pub(crate) fn no_update<T>(_: &T, _: &T, _: &Cx) -> ErrorList {
    ErrorList::new()
}

fn scope(group: &str, kind: &str) -> Option<bool> {
    crate::catalogue::RESOURCES
        .iter()
        .find(|r| r.group == group && r.kind == kind)
        .map(|r| r.namespaced)
}

fn version_of(obj: &Value) -> &str {
    obj.get("apiVersion")
        .and_then(Value::as_str)
        .map(|av| av.rsplit_once('/').map_or(av, |(_, v)| v))
        .unwrap_or("")
}

fn run(group: &str, kind: &str, obj: &Value, op: Op) -> ErrorList {
    let cx = Cx {
        version: version_of(obj),
        raw: obj,
    };
    let namespaced = scope(group, kind);
    macro_rules! go {
        ($m:path) => {
            apply(op, obj, &cx, namespaced, $m())
        };
    }
    match (group, kind) {
        ("", "Pod") => go!(corev1::pod_rules),
        ("", "PodTemplate") => go!(corev1::pod_template_rules),
        ("", "ReplicationController") => go!(corev1::replication_controller_rules),
        ("", "Service") => go!(service::service_rules),
        ("", "ConfigMap") => go!(corev1::config_map_rules),
        ("", "Secret") => go!(corev1::secret_rules),
        ("", "Namespace") => go!(corev1::namespace_rules),
        ("", "Node") => go!(cluster::node_rules),
        ("", "PersistentVolumeClaim") => go!(storage::pvc_rules),
        ("", "PersistentVolume") => go!(storage::pv_rules),
        ("", "ServiceAccount") => go!(corev1::service_account_rules),
        ("", "Endpoints") => go!(service::endpoints_rules),
        ("" | "events.k8s.io", "Event") => events::validate(group, obj, op),
        ("", "LimitRange") => go!(cluster::limit_range_rules),
        ("", "ResourceQuota") => go!(cluster::resource_quota_rules),
        ("apps", "Deployment") => go!(apps::deployment_rules),
        ("apps", "ReplicaSet") => go!(apps::replica_set_rules),
        ("apps", "StatefulSet") => go!(apps::stateful_set_rules),
        ("apps", "DaemonSet") => go!(apps::daemon_set_rules),
        ("apps", "ControllerRevision") => go!(apps::controller_revision_rules),
        ("batch", "Job") => go!(batch::job_rules),
        ("batch", "CronJob") => go!(batch::cron_job_rules),
        ("autoscaling", "HorizontalPodAutoscaler") if cx.version == "v1" => {
            go!(others::hpa_v1_rules)
        }
        ("autoscaling", "HorizontalPodAutoscaler") => go!(others::hpa_rules),
        ("policy", "PodDisruptionBudget") => go!(others::pdb_rules),
        ("networking.k8s.io", "Ingress") => go!(networking::ingress_rules),
        ("networking.k8s.io", "IngressClass") => go!(networking::ingress_class_rules),
        ("networking.k8s.io", "NetworkPolicy") => go!(networking::network_policy_rules),
        ("discovery.k8s.io", "EndpointSlice") => go!(networking::endpoint_slice_rules),
        ("coordination.k8s.io", "Lease") => go!(others::lease_rules),
        ("scheduling.k8s.io", "PriorityClass") => go!(others::priority_class_rules),
        ("storage.k8s.io", "StorageClass") => go!(storage::storage_class_rules),
        ("storage.k8s.io", "CSIDriver") => go!(storage::csi_driver_rules),
        ("storage.k8s.io", "VolumeAttachment") => go!(storage::volume_attachment_rules),
        ("rbac.authorization.k8s.io", "Role") => go!(rbac::role_rules),
        ("rbac.authorization.k8s.io", "ClusterRole") => go!(rbac::cluster_role_rules),
        ("rbac.authorization.k8s.io", "RoleBinding") => go!(rbac::role_binding_rules),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
            go!(rbac::cluster_role_binding_rules)
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => go!(crd::crd_rules),
        _ => metadata_only(op, obj, namespaced),
    }
}

/// Kinds without rules of their own (custom resources among them): metadata only.
fn metadata_only(op: Op, obj: &Value, namespaced: Option<bool>) -> ErrorList {
    let path = FieldPath::new("metadata");
    let read = |v: &Value| -> Result<ObjectMeta, ErrorList> {
        match v.get("metadata") {
            None | Some(Value::Null) => Ok(ObjectMeta::default()),
            Some(m) => serde_json::from_value(m.clone()).map_err(|e| vec![type_error(&path, &e)]),
        }
    };
    let new = match read(obj) {
        Ok(m) => m,
        Err(e) => return e,
    };
    match op {
        Op::Create => validate_generic_object_meta(&new, namespaced, name_is_dns_subdomain, &path),
        Op::Update(old) | Op::Status(old) => match read(old) {
            Ok(o) => validate_object_meta_update(&new, &o, &path),
            Err(e) => e,
        },
    }
}

fn type_error(path: &FieldPath, e: &serde_json::Error) -> FieldError {
    FieldError {
        kind: FieldErrorType::TypeInvalid,
        field: path.clone(),
        value: None,
        detail: e.to_string(),
    }
}

/// Reads `obj` as `T`. On failure, finds the top-level field that does not fit so the error
/// names it.
fn typed<T: DeserializeOwned + Resource>(obj: &Value) -> Result<T, ErrorList> {
    let mut v = obj.clone();
    if let Some(m) = v.as_object_mut() {
        m.insert("apiVersion".into(), Value::from(T::API_VERSION));
        m.insert("kind".into(), Value::from(T::KIND));
    }
    let err = match serde_json::from_value::<T>(v.clone()) {
        Ok(t) => return Ok(t),
        Err(e) => e,
    };
    let mut field = String::new();
    if let Some(m) = v.as_object() {
        for (k, val) in m {
            if matches!(k.as_str(), "apiVersion" | "kind") {
                continue;
            }
            let mut probe = serde_json::Map::new();
            probe.insert("apiVersion".into(), Value::from(T::API_VERSION));
            probe.insert("kind".into(), Value::from(T::KIND));
            probe.insert(k.clone(), val.clone());
            if serde_json::from_value::<T>(Value::Object(probe)).is_err() {
                field.clone_from(k);
                break;
            }
        }
    }
    Err(vec![type_error(&FieldPath::new(&field), &err)])
}

/// The immutable parts of `ValidateObjectMetaUpdate`; the rest repeats creation checks.
fn meta_update_identity(new: &ObjectMeta, old: &ObjectMeta) -> ErrorList {
    let mut strip_new = new.clone();
    strip_new.labels = None;
    strip_new.annotations = None;
    strip_new.owner_references = None;
    strip_new.finalizers = new.finalizers.clone();
    let mut errs = validate_object_meta_update(&strip_new, old, &FieldPath::new("metadata"));
    // Finalizer names were checked with the rest of the new metadata.
    errs.retain(|e| {
        !(e.field.as_str() == "metadata.finalizers" && e.kind == FieldErrorType::Invalid)
    });
    errs
}

fn apply<T>(op: Op, obj: &Value, cx: &Cx, namespaced: Option<bool>, rules: Rules<T>) -> ErrorList
where
    T: DeserializeOwned + Resource + Metadata<Ty = ObjectMeta>,
{
    let new: T = match typed(obj) {
        Ok(t) => t,
        Err(e) => return e,
    };
    let meta_path = FieldPath::new("metadata");
    let create = |errs: &mut ErrorList| {
        match rules.meta {
            MetaRule::Standard(f) => errs.extend(validate_object_meta(
                new.metadata(),
                namespaced.unwrap_or(false),
                f,
                &meta_path,
            )),
            MetaRule::Generic(f) => errs.extend(validate_generic_object_meta(
                new.metadata(),
                namespaced,
                f,
                &meta_path,
            )),
        }
        errs.extend((rules.create)(&new, cx));
    };
    let mut errs = ErrorList::new();
    match op {
        Op::Create => create(&mut errs),
        Op::Update(old_v) => {
            let old: T = match typed(old_v) {
                Ok(t) => t,
                Err(e) => return e,
            };
            errs.extend(meta_update_identity(new.metadata(), old.metadata()));
            create(&mut errs);
            errs.extend((rules.update)(&new, &old, cx));
        }
        Op::Status(old_v) => {
            let old: T = match typed(old_v) {
                Ok(t) => t,
                Err(e) => return e,
            };
            errs.extend(validate_object_meta_update(
                new.metadata(),
                old.metadata(),
                &meta_path,
            ));
            errs.extend((rules.status)(&new, &old, cx));
        }
    }
    errs
}

#[cfg(test)]
pub(crate) mod test_support {
    use crate::field_error::{ErrorList, FieldErrorType};
    use serde_json::Value;

    /// One table row: a name, the input, the expected `(path, type)` pairs.
    pub(crate) type Case = (&'static str, Value, Vec<(&'static str, FieldErrorType)>);

    /// `(path, type)` pairs, the shape the table-driven tests compare.
    pub(crate) fn kinds(errs: &ErrorList) -> Vec<(String, FieldErrorType)> {
        errs.iter().map(|e| (e.field.to_string(), e.kind)).collect()
    }

    pub(crate) fn want(v: Vec<(&str, FieldErrorType)>) -> Vec<(String, FieldErrorType)> {
        v.into_iter().map(|(p, t)| (p.to_string(), t)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{kinds, want};
    use super::*;
    use serde_json::json;

    #[test]
    fn type_mismatch_names_the_top_level_field() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "d"},
            "spec": {"containers": [{"name": "c", "image": "x", "ports": [{"containerPort": "eighty"}]}]}});
        let errs = validate_create("", "Pod", &pod);
        assert_eq!(
            kinds(&errs),
            want(vec![("spec", FieldErrorType::TypeInvalid)])
        );
    }

    #[test]
    fn unknown_kinds_get_metadata_checks() {
        let obj = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "Bad_Name"}});
        let errs = validate_create("example.com", "Widget", &obj);
        assert_eq!(
            kinds(&errs),
            want(vec![("metadata.name", FieldErrorType::Invalid)])
        );
        let old = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "a", "resourceVersion": "1"}});
        let new = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "b", "resourceVersion": "1"}});
        assert_eq!(
            kinds(&validate_update("example.com", "Widget", &new, &old)),
            want(vec![("metadata.name", FieldErrorType::Invalid)])
        );
    }

    #[test]
    fn update_reports_label_errors_once() {
        let old = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "d", "resourceVersion": "1"}});
        let new = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "d", "resourceVersion": "1", "labels": {"a": "b c"}}});
        assert_eq!(
            kinds(&validate_update("", "ConfigMap", &new, &old)),
            want(vec![("metadata.labels", FieldErrorType::Invalid)])
        );
    }

    #[test]
    fn every_listed_kind_accepts_a_minimal_valid_object_or_reports_spec_errors_only() {
        for (group, kind) in KINDS_WITH_RULES {
            let api_version = match *group {
                "" => "v1".to_string(),
                "autoscaling" => "autoscaling/v2".to_string(),
                g => format!("{g}/v1"),
            };
            let obj = json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": "x", "namespace": "default"}});
            // Must not panic; cluster-scoped kinds report the namespace.
            let errs = validate_create(group, kind, &obj);
            let ns_forbidden = errs
                .iter()
                .any(|e| e.field.as_str() == "metadata.namespace");
            assert_eq!(
                ns_forbidden,
                scope(group, kind) == Some(false),
                "{group}/{kind}: {errs:?}"
            );
        }
    }
}
