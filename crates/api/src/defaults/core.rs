//! Defaults of the core (`v1`) kinds, as upstream's `pkg/apis/core/v1/defaults.go` and its
//! generated defaulters set them.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Endpoints, LimitRange, Namespace, Node, PersistentVolume, PersistentVolumeClaim, Pod,
    PodTemplate, ReplicationController, Secret, Service,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::ByteString;

use super::pod::{default_str, pod_only, pod_spec, pvc_spec, template};

pub(super) fn pod(p: &mut Pod) {
    if let Some(spec) = &mut p.spec {
        pod_only(spec);
        pod_spec(spec);
    }
}

pub(super) fn pod_template(t: &mut PodTemplate) {
    if let Some(tpl) = &mut t.template {
        template(tpl);
    }
}

pub(super) fn replication_controller(rc: &mut ReplicationController) {
    let Some(spec) = &mut rc.spec else { return };
    // The selector and the object's labels follow the template's labels when unset.
    let labels = spec
        .template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone());
    if let Some(labels) = labels {
        if spec.selector.as_ref().is_none_or(BTreeMap::is_empty) {
            spec.selector = Some(labels.clone());
        }
        if rc.metadata.labels.as_ref().is_none_or(BTreeMap::is_empty) {
            rc.metadata.labels = Some(labels);
        }
    }
    spec.replicas.get_or_insert(1);
    if let Some(t) = &mut spec.template {
        template(t);
    }
}

pub(super) fn service(s: &mut Service) {
    let Some(spec) = &mut s.spec else { return };
    default_str(&mut spec.session_affinity, "None");
    match spec.session_affinity.as_deref() {
        Some("None") => spec.session_affinity_config = None,
        Some("ClientIP") => {
            let has_timeout = spec
                .session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .is_some_and(|c| c.timeout_seconds.is_some());
            if !has_timeout {
                spec.session_affinity_config =
                    Some(k8s_openapi::api::core::v1::SessionAffinityConfig {
                        client_ip: Some(k8s_openapi::api::core::v1::ClientIPConfig {
                            timeout_seconds: Some(10800),
                        }),
                    });
            }
        }
        _ => {}
    }
    default_str(&mut spec.type_, "ClusterIP");
    for p in spec.ports.iter_mut().flatten() {
        default_str(&mut p.protocol, "TCP");
        let unset = match &p.target_port {
            None => true,
            Some(IntOrString::Int(0)) => true,
            Some(IntOrString::String(s)) => s.is_empty(),
            Some(IntOrString::Int(_)) => false,
        };
        if unset {
            p.target_port = Some(IntOrString::Int(p.port));
        }
    }
    let ty = spec.type_.clone().unwrap_or_default();
    let externally_accessible = ty == "LoadBalancer"
        || ty == "NodePort"
        || (ty == "ClusterIP" && spec.external_ips.as_ref().is_some_and(|e| !e.is_empty()));
    if externally_accessible {
        default_str(&mut spec.external_traffic_policy, "Cluster");
    }
    if spec.internal_traffic_policy.is_none()
        && matches!(ty.as_str(), "NodePort" | "LoadBalancer" | "ClusterIP")
    {
        spec.internal_traffic_policy = Some("Cluster".to_string());
    }
    if ty == "LoadBalancer" {
        spec.allocate_load_balancer_node_ports.get_or_insert(true);
        let ingress = s
            .status
            .as_mut()
            .and_then(|st| st.load_balancer.as_mut())
            .and_then(|lb| lb.ingress.as_mut());
        for ing in ingress.into_iter().flatten() {
            if !ing.ip.as_deref().unwrap_or("").is_empty() && ing.ip_mode.is_none() {
                ing.ip_mode = Some("VIP".to_string());
            }
        }
    }
}

pub(super) fn endpoints(e: &mut Endpoints) {
    for ss in e.subsets.iter_mut().flatten() {
        for p in ss.ports.iter_mut().flatten() {
            default_str(&mut p.protocol, "TCP");
        }
    }
}

pub(super) fn persistent_volume(pv: &mut PersistentVolume) {
    let status = pv.status.get_or_insert_with(Default::default);
    default_str(&mut status.phase, "Pending");
    let spec = pv.spec.get_or_insert_with(Default::default);
    default_str(&mut spec.persistent_volume_reclaim_policy, "Retain");
    spec.volume_mode
        .get_or_insert_with(|| "Filesystem".to_string());
    if let Some(h) = &mut spec.host_path {
        h.type_.get_or_insert_with(String::new);
    }
    if let Some(s) = &mut spec.rbd {
        default_str(&mut s.pool, "rbd");
        default_str(&mut s.user, "admin");
        default_str(&mut s.keyring, "/etc/ceph/keyring");
    }
    if let Some(s) = &mut spec.iscsi {
        default_str(&mut s.iscsi_interface, "default");
    }
    if let Some(s) = &mut spec.azure_disk {
        s.caching_mode
            .get_or_insert_with(|| "ReadWrite".to_string());
        s.kind.get_or_insert_with(|| "Shared".to_string());
        s.fs_type.get_or_insert_with(|| "ext4".to_string());
        s.read_only.get_or_insert(false);
    }
    if let Some(s) = &mut spec.scale_io {
        default_str(&mut s.storage_mode, "ThinProvisioned");
        default_str(&mut s.fs_type, "xfs");
    }
}

/// Also used for StatefulSet claim templates, which upstream defaults as whole claims.
pub(super) fn persistent_volume_claim(pvc: &mut PersistentVolumeClaim) {
    let status = pvc.status.get_or_insert_with(Default::default);
    default_str(&mut status.phase, "Pending");
    pvc_spec(pvc.spec.get_or_insert_with(Default::default));
}

pub(super) fn namespace(ns: &mut Namespace) {
    // Every named namespace carries its own name as a label, so selectors can match it.
    if let Some(name) = ns.metadata.name.clone().filter(|n| !n.is_empty()) {
        ns.metadata
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert("kubernetes.io/metadata.name".to_string(), name);
    }
    let status = ns.status.get_or_insert_with(Default::default);
    default_str(&mut status.phase, "Active");
}

pub(super) fn node(n: &mut Node) {
    let Some(status) = &mut n.status else { return };
    if status.allocatable.is_none() {
        status.allocatable = status.capacity.clone();
    }
}

pub(super) fn secret(s: &mut Secret) {
    default_str(&mut s.type_, "Opaque");
    // stringData is write-only: the v1 conversion folds it into data, overriding keys.
    if let Some(string_data) = s.string_data.take() {
        let data = s.data.get_or_insert_with(BTreeMap::new);
        for (k, v) in string_data {
            data.insert(k, ByteString(v.into_bytes()));
        }
    }
}

pub(super) fn limit_range(lr: &mut LimitRange) {
    let Some(spec) = &mut lr.spec else { return };
    for item in spec.limits.iter_mut() {
        if item.type_ != "Container" {
            continue;
        }
        let mut default = item.default.take().unwrap_or_default();
        let mut default_request = item.default_request.take().unwrap_or_default();
        for (k, v) in item.max.iter().flatten() {
            default.entry(k.clone()).or_insert_with(|| v.clone());
        }
        for (k, v) in &default {
            default_request
                .entry(k.clone())
                .or_insert_with(|| v.clone());
        }
        for (k, v) in item.min.iter().flatten() {
            default_request
                .entry(k.clone())
                .or_insert_with(|| v.clone());
        }
        // Go omits empty maps, so an empty result stays absent.
        item.default = Some(default).filter(|m| !m.is_empty());
        item.default_request = Some(default_request).filter(|m| !m.is_empty());
    }
}

/// What the namespace registry strategy does on create, beyond defaulting: the phase starts
/// `Active` and the `kubernetes` finalizer is always present. Not part of [`super::apply`]
/// because it must not run on updates, where the finalizer may have been removed.
pub fn namespace_prepare_for_create(obj: &mut serde_json::Value) {
    let Some(o) = obj.as_object_mut() else { return };
    o.insert(
        "status".to_string(),
        serde_json::json!({ "phase": "Active" }),
    );
    let spec = o.entry("spec").or_insert_with(|| serde_json::json!({}));
    if !spec.is_object() {
        *spec = serde_json::json!({});
    }
    let Some(spec) = spec.as_object_mut() else {
        return;
    };
    let finalizers = spec
        .entry("finalizers")
        .or_insert_with(|| serde_json::json!([]));
    if !finalizers.is_array() {
        *finalizers = serde_json::json!([]);
    }
    if let Some(list) = finalizers.as_array_mut() {
        if !list.iter().any(|f| f == "kubernetes") {
            list.push(serde_json::json!("kubernetes"));
        }
    }
}
