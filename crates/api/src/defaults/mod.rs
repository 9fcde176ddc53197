//! Upstream's defaulting: the values the API server fills in when an object is decoded, as
//! `pkg/apis/*/v1/defaults.go` and the generated defaulters set them in Kubernetes v1.33 with
//! its default feature gates.
//!
//! The defaults run on the k8s-openapi type, but only their effect is written back: the
//! object is decoded twice, once left alone and once defaulted, and the differences between
//! the two re-encodings are applied to the caller's JSON. So fields the typed model would add
//! on its own (required strings as `""`, required structs as `{}`) and representation changes
//! (re-encoded base64, timestamps) never leak into the object, and validation sees what the
//! client sent plus upstream's defaults.
//!
//! - [`pod`]: pod specs, containers and volumes, wherever a pod template appears;
//! - [`core`]: the other core kinds;
//! - [`groups`]: the kinds of the named groups.

mod core;
mod groups;
mod pod;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

pub use self::core::namespace_prepare_for_create;

/// Applies upstream's defaults to a full JSON object of the given group/version/kind in place.
/// Deserializes into the k8s-openapi type, defaults, and serializes back; a value that does not
/// deserialize is left untouched (validation reports it).
pub fn apply(group: &str, version: &str, kind: &str, obj: &mut Value) {
    use k8s_openapi::api;
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiext;
    match (group, version, kind) {
        ("", "v1", "Pod") => typed::<api::core::v1::Pod>(obj, self::core::pod),
        ("", "v1", "PodTemplate") => {
            typed::<api::core::v1::PodTemplate>(obj, self::core::pod_template)
        }
        ("", "v1", "ReplicationController") => {
            typed::<api::core::v1::ReplicationController>(obj, self::core::replication_controller)
        }
        ("", "v1", "Service") => typed::<api::core::v1::Service>(obj, self::core::service),
        ("", "v1", "Endpoints") => typed::<api::core::v1::Endpoints>(obj, self::core::endpoints),
        ("", "v1", "PersistentVolume") => {
            typed::<api::core::v1::PersistentVolume>(obj, self::core::persistent_volume)
        }
        ("", "v1", "PersistentVolumeClaim") => {
            typed::<api::core::v1::PersistentVolumeClaim>(obj, self::core::persistent_volume_claim)
        }
        ("", "v1", "Namespace") => typed::<api::core::v1::Namespace>(obj, self::core::namespace),
        ("", "v1", "Node") => typed::<api::core::v1::Node>(obj, self::core::node),
        ("", "v1", "Secret") => typed::<api::core::v1::Secret>(obj, self::core::secret),
        ("", "v1", "LimitRange") => {
            typed::<api::core::v1::LimitRange>(obj, self::core::limit_range)
        }
        ("apps", "v1", "Deployment") => typed::<api::apps::v1::Deployment>(obj, groups::deployment),
        ("apps", "v1", "DaemonSet") => typed::<api::apps::v1::DaemonSet>(obj, groups::daemon_set),
        ("apps", "v1", "StatefulSet") => {
            typed::<api::apps::v1::StatefulSet>(obj, groups::stateful_set)
        }
        ("apps", "v1", "ReplicaSet") => {
            typed::<api::apps::v1::ReplicaSet>(obj, groups::replica_set)
        }
        ("batch", "v1", "Job") => typed::<api::batch::v1::Job>(obj, groups::job),
        ("batch", "v1", "CronJob") => typed::<api::batch::v1::CronJob>(obj, groups::cron_job),
        ("autoscaling", "v1", "HorizontalPodAutoscaler") => {
            typed::<api::autoscaling::v1::HorizontalPodAutoscaler>(obj, groups::hpa_v1)
        }
        ("autoscaling", "v2", "HorizontalPodAutoscaler") => {
            typed::<api::autoscaling::v2::HorizontalPodAutoscaler>(obj, groups::hpa_v2)
        }
        ("networking.k8s.io", "v1", "NetworkPolicy") => {
            typed::<api::networking::v1::NetworkPolicy>(obj, groups::network_policy)
        }
        ("networking.k8s.io", "v1", "IngressClass") => {
            typed::<api::networking::v1::IngressClass>(obj, groups::ingress_class)
        }
        ("discovery.k8s.io", "v1", "EndpointSlice") => {
            typed::<api::discovery::v1::EndpointSlice>(obj, groups::endpoint_slice)
        }
        ("storage.k8s.io", "v1", "StorageClass") => {
            typed::<api::storage::v1::StorageClass>(obj, groups::storage_class)
        }
        ("storage.k8s.io", "v1", "CSIDriver") => {
            typed::<api::storage::v1::CSIDriver>(obj, groups::csi_driver)
        }
        ("scheduling.k8s.io", "v1", "PriorityClass") => {
            typed::<api::scheduling::v1::PriorityClass>(obj, groups::priority_class)
        }
        ("rbac.authorization.k8s.io", "v1", "RoleBinding") => {
            typed::<api::rbac::v1::RoleBinding>(obj, groups::role_binding)
        }
        ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding") => {
            typed::<api::rbac::v1::ClusterRoleBinding>(obj, groups::cluster_role_binding)
        }
        ("apiextensions.k8s.io", "v1", "CustomResourceDefinition") => {
            typed::<apiext::CustomResourceDefinition>(obj, groups::custom_resource_definition)
        }
        // The remaining served kinds (ConfigMap, Event, ResourceQuota, ServiceAccount,
        // ControllerRevision, PodDisruptionBudget, Ingress, Lease, CSINode, VolumeAttachment,
        // Role, ClusterRole) have no upstream defaults beyond quantity canonicalisation.
        _ => {}
    }
}

/// Decodes `obj` as `T`, defaults it with `f`, and writes only the changes `f` made back.
fn typed<T: DeserializeOwned + Serialize>(obj: &mut Value, f: impl FnOnce(&mut T)) {
    let Some(map) = obj.as_object() else { return };
    // k8s-openapi rejects a mismatched apiVersion or kind; the caller already chose the type.
    let mut input = map.clone();
    input.remove("apiVersion");
    input.remove("kind");
    let Ok(mut value) = serde_json::from_value::<T>(Value::Object(input)) else {
        return;
    };
    let Ok(before) = serde_json::to_value(&value) else {
        return;
    };
    f(&mut value);
    let Ok(after) = serde_json::to_value(&value) else {
        return;
    };
    apply_changes(obj, &before, &after);
}

/// Makes `target` reflect every difference between `before` and `after`, leaving the parts
/// of `target` that defaulting did not touch exactly as they were.
fn apply_changes(target: &mut Value, before: &Value, after: &Value) {
    if before == after {
        return;
    }
    match (target, before, after) {
        (Value::Object(t), Value::Object(b), Value::Object(a)) => {
            for (k, av) in a {
                match (t.get_mut(k), b.get(k)) {
                    // Unchanged, even if only the typed model put it there.
                    (_, Some(bv)) if bv == av => {}
                    (Some(tv), Some(bv)) => apply_changes(tv, bv, av),
                    _ => {
                        t.insert(k.clone(), av.clone());
                    }
                }
            }
            for k in b.keys() {
                if !a.contains_key(k) {
                    t.remove(k);
                }
            }
        }
        (Value::Array(t), Value::Array(b), Value::Array(a))
            if t.len() == b.len() && b.len() == a.len() =>
        {
            for ((tv, bv), av) in t.iter_mut().zip(b).zip(a) {
                apply_changes(tv, bv, av);
            }
        }
        (t, _, a) => *t = a.clone(),
    }
}

#[cfg(test)]
mod tests;
