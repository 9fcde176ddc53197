//! Storage kinds: persistent volumes and claims (core `v1`) and the `storage.k8s.io` kinds
//! (storage classes, CSI drivers, volume attachments).

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, PersistentVolumeSpec};
use k8s_openapi::api::storage::v1::{CSIDriver, StorageClass, VolumeAttachment};

use super::container::{enum_field, non_negative_quantity, quantity};
use super::meta::{immutable, json, validate_label_selector};
use super::names::{is_dns1123_subdomain, is_qualified_name, name_is_dns_subdomain};
use super::{no_update, MetaRule, Rules};
use crate::field_error::{ErrorList, FieldError, FieldPath};

const ACCESS_MODES: &[&str] = &[
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];
const VOLUME_MODES: &[&str] = &["Block", "Filesystem"];

fn access_modes(modes: &[String], path: &FieldPath, required_msg: &str, errs: &mut ErrorList) {
    if modes.is_empty() {
        errs.push(FieldError::required(path, required_msg));
    }
    for m in modes {
        if !ACCESS_MODES.contains(&m.as_str()) {
            errs.push(FieldError::not_supported(path, m.as_str(), ACCESS_MODES));
        }
    }
    if modes.iter().any(|m| m == "ReadWriteOncePod") && modes.len() > 1 {
        errs.push(FieldError::forbidden(
            path,
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
}

/// A positive quantity (`must be greater than zero`).
fn positive_quantity(
    q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity,
    path: &FieldPath,
    errs: &mut ErrorList,
) {
    if let Some(v) = quantity(q, path, errs) {
        if v <= 0.0 {
            errs.push(FieldError::invalid(
                path,
                q.0.as_str(),
                "must be greater than zero",
            ));
        }
    }
}

pub(crate) fn pvc_rules() -> Rules<PersistentVolumeClaim> {
    Rules {
        meta: MetaRule::Standard(name_is_dns_subdomain),
        create: |c, _| {
            let mut errs = ErrorList::new();
            let sp = FieldPath::new("spec");
            let spec = c.spec.clone().unwrap_or_default();
            access_modes(
                spec.access_modes.as_deref().unwrap_or_default(),
                &sp.child("accessModes"),
                "at least 1 access mode is required",
                &mut errs,
            );
            errs.extend(validate_label_selector(
                spec.selector.as_ref(),
                &sp.child("selector"),
            ));
            let requests = spec
                .resources
                .as_ref()
                .and_then(|r| r.requests.clone())
                .unwrap_or_default();
            match requests.get("storage") {
                None => errs.push(FieldError::required(
                    &sp.child("resources").key("storage"),
                    "",
                )),
                Some(q) => positive_quantity(q, &sp.child("resources").key("storage"), &mut errs),
            }
            for (k, q) in requests.iter().filter(|(k, _)| *k != "storage") {
                non_negative_quantity(
                    q,
                    &sp.child("resources").child("requests").key(k),
                    &mut errs,
                );
            }
            if let Some(m) = spec.volume_mode.as_deref() {
                if !VOLUME_MODES.contains(&m) {
                    errs.push(FieldError::not_supported(
                        &sp.child("volumeMode"),
                        m,
                        VOLUME_MODES,
                    ));
                }
            }
            if let Some(sc) = spec.storage_class_name.as_deref().filter(|s| !s.is_empty()) {
                for m in name_is_dns_subdomain(sc, false) {
                    errs.push(FieldError::invalid(&sp.child("storageClassName"), sc, &m));
                }
            }
            errs
        },
        update: |n, o, _| {
            let mut errs = ErrorList::new();
            let (mut ns, mut os) = (
                n.spec.clone().unwrap_or_default(),
                o.spec.clone().unwrap_or_default(),
            );
            let bound = o.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
            // Binding fills volumeName, and a bound claim may grow; nothing else may change.
            if os.volume_name.as_deref().unwrap_or_default().is_empty() {
                os.volume_name.clone_from(&ns.volume_name);
            }
            if os.storage_class_name.is_none() {
                os.storage_class_name.clone_from(&ns.storage_class_name);
            }
            let new_size = ns
                .resources
                .as_ref()
                .and_then(|r| r.requests.as_ref())
                .and_then(|r| r.get("storage"))
                .and_then(|q| super::qty::parse(&q.0));
            let old_size = os
                .resources
                .as_ref()
                .and_then(|r| r.requests.as_ref())
                .and_then(|r| r.get("storage"))
                .and_then(|q| super::qty::parse(&q.0));
            if bound {
                ns.resources.clone_from(&os.resources);
                ns.volume_attributes_class_name
                    .clone_from(&os.volume_attributes_class_name);
            }
            if json(&ns) != json(&os) {
                errs.push(FieldError::forbidden(&FieldPath::new("spec"), "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"));
            }
            if let (Some(a), Some(b)) = (new_size, old_size) {
                if a < b {
                    errs.push(FieldError::forbidden(
                        &FieldPath::new("spec")
                            .child("resources")
                            .child("requests")
                            .child("storage"),
                        "field can not be less than previous value",
                    ));
                }
            }
            errs
        },
        status: |n, _, _| {
            let mut errs = ErrorList::new();
            let cp = FieldPath::new("status").child("capacity");
            for (k, q) in n.status.iter().flat_map(|s| s.capacity.iter().flatten()) {
                non_negative_quantity(q, &cp.key(k), &mut errs);
            }
            errs
        },
    }
}

fn pv_sources(s: &PersistentVolumeSpec) -> [(&'static str, bool); 22] {
    [
        ("gcePersistentDisk", s.gce_persistent_disk.is_some()),
        ("awsElasticBlockStore", s.aws_elastic_block_store.is_some()),
        ("hostPath", s.host_path.is_some()),
        ("glusterfs", s.glusterfs.is_some()),
        ("nfs", s.nfs.is_some()),
        ("rbd", s.rbd.is_some()),
        ("quobyte", s.quobyte.is_some()),
        ("cephFS", s.cephfs.is_some()),
        ("iscsi", s.iscsi.is_some()),
        ("cinder", s.cinder.is_some()),
        ("fc", s.fc.is_some()),
        ("flocker", s.flocker.is_some()),
        ("flexVolume", s.flex_volume.is_some()),
        ("azureFile", s.azure_file.is_some()),
        ("vsphereVolume", s.vsphere_volume.is_some()),
        ("azureDisk", s.azure_disk.is_some()),
        ("photonPersistentDisk", s.photon_persistent_disk.is_some()),
        ("portworxVolume", s.portworx_volume.is_some()),
        ("scaleIO", s.scale_io.is_some()),
        ("local", s.local.is_some()),
        ("storageos", s.storageos.is_some()),
        ("csi", s.csi.is_some()),
    ]
}

pub(crate) fn pv_rules() -> Rules<PersistentVolume> {
    Rules {
        meta: MetaRule::Standard(name_is_dns_subdomain),
        create: |pv, _| {
            let mut errs = ErrorList::new();
            let sp = FieldPath::new("spec");
            let spec = pv.spec.clone().unwrap_or_default();
            access_modes(
                spec.access_modes.as_deref().unwrap_or_default(),
                &sp.child("accessModes"),
                "",
                &mut errs,
            );
            let cap = spec.capacity.clone().unwrap_or_default();
            if cap.is_empty() {
                errs.push(FieldError::required(&sp.child("capacity"), ""));
            }
            if !cap.contains_key("storage") || cap.len() > 1 {
                errs.push(FieldError::not_supported(
                    &sp.child("capacity"),
                    json(&cap),
                    &["storage"],
                ));
            }
            for (k, q) in &cap {
                positive_quantity(q, &sp.child("capacity").key(k), &mut errs);
            }
            if let Some(p) = spec.persistent_volume_reclaim_policy.as_deref() {
                enum_field(
                    Some(p),
                    &["Delete", "Recycle", "Retain"],
                    &sp.child("persistentVolumeReclaimPolicy"),
                    &mut errs,
                );
            }
            if let Some(m) = spec.volume_mode.as_deref() {
                if !VOLUME_MODES.contains(&m) {
                    errs.push(FieldError::not_supported(
                        &sp.child("volumeMode"),
                        m,
                        VOLUME_MODES,
                    ));
                }
            }
            let sources = pv_sources(&spec);
            let mut n = 0;
            for (name, set) in sources {
                if !set {
                    continue;
                }
                if n > 0 {
                    errs.push(FieldError::forbidden(
                        &sp.child(name),
                        "may not specify more than 1 volume type",
                    ));
                }
                n += 1;
            }
            if n == 0 {
                errs.push(FieldError::required(&sp, "must specify a volume type"));
            }
            if let Some(h) = &spec.host_path {
                if h.path.is_empty() {
                    errs.push(FieldError::required(
                        &sp.child("hostPath").child("path"),
                        "",
                    ));
                }
            }
            if let Some(l) = &spec.local {
                if l.path.is_empty() {
                    errs.push(FieldError::required(&sp.child("local").child("path"), ""));
                }
                if spec.node_affinity.is_none() {
                    errs.push(FieldError::required(
                        &sp.child("nodeAffinity"),
                        "Local volume requires node affinity",
                    ));
                }
            }
            if let Some(c) = &spec.csi {
                if c.driver.is_empty() {
                    errs.push(FieldError::required(&sp.child("csi").child("driver"), ""));
                }
                if c.volume_handle.is_empty() {
                    errs.push(FieldError::required(
                        &sp.child("csi").child("volumeHandle"),
                        "",
                    ));
                }
            }
            if let Some(sc) = spec.storage_class_name.as_deref().filter(|s| !s.is_empty()) {
                for m in name_is_dns_subdomain(sc, false) {
                    errs.push(FieldError::invalid(&sp.child("storageClassName"), sc, &m));
                }
            }
            errs
        },
        update: |n, o, _| {
            let mut errs = ErrorList::new();
            let (ns, os) = (
                n.spec.clone().unwrap_or_default(),
                o.spec.clone().unwrap_or_default(),
            );
            for ((_, a), (_, b)) in pv_sources(&ns).into_iter().zip(pv_sources(&os)) {
                if a != b {
                    errs.push(FieldError::forbidden(
                        &FieldPath::new("spec").child("persistentvolumesource"),
                        "spec.persistentvolumesource is immutable after creation",
                    ));
                    break;
                }
            }
            immutable(
                &ns.volume_mode,
                &os.volume_mode,
                &FieldPath::new("volumeMode"),
                &mut errs,
            );
            if os.node_affinity.is_some() {
                immutable(
                    &ns.node_affinity,
                    &os.node_affinity,
                    &FieldPath::new("nodeAffinity"),
                    &mut errs,
                );
            }
            errs
        },
        status: no_update,
    }
}

pub(crate) fn storage_class_rules() -> Rules<StorageClass> {
    Rules {
        meta: MetaRule::Standard(name_is_dns_subdomain),
        create: |sc, _| {
            let mut errs = ErrorList::new();
            let pp = FieldPath::new("provisioner");
            if sc.provisioner.is_empty() {
                errs.push(FieldError::required(&pp, ""));
            } else {
                for m in is_qualified_name(&sc.provisioner.to_lowercase()) {
                    errs.push(FieldError::invalid(&pp, sc.provisioner.as_str(), &m));
                }
            }
            if let Some(p) = sc.reclaim_policy.as_deref() {
                enum_field(
                    Some(p),
                    &["Delete", "Retain"],
                    &FieldPath::new("reclaimPolicy"),
                    &mut errs,
                );
            }
            if let Some(m) = sc.volume_binding_mode.as_deref() {
                if !matches!(m, "Immediate" | "WaitForFirstConsumer") {
                    errs.push(FieldError::not_supported(
                        &FieldPath::new("volumeBindingMode"),
                        m,
                        &["Immediate", "WaitForFirstConsumer"],
                    ));
                }
            }
            let params = sc.parameters.clone().unwrap_or_default();
            if params.len() > 512 {
                errs.push(FieldError::too_long(&FieldPath::new("parameters"), 512));
            }
            for k in params.keys().filter(|k| k.is_empty()) {
                errs.push(FieldError::invalid(
                    &FieldPath::new("parameters"),
                    k.as_str(),
                    "field can not be empty.",
                ));
            }
            errs
        },
        update: |n, o, _| {
            let mut errs = ErrorList::new();
            if n.parameters.clone().unwrap_or_default() != o.parameters.clone().unwrap_or_default()
            {
                errs.push(FieldError::forbidden(
                    &FieldPath::new("parameters"),
                    "updates to parameters are forbidden.",
                ));
            }
            if n.provisioner != o.provisioner {
                errs.push(FieldError::forbidden(
                    &FieldPath::new("provisioner"),
                    "updates to provisioner are forbidden.",
                ));
            }
            if n.reclaim_policy != o.reclaim_policy {
                errs.push(FieldError::forbidden(
                    &FieldPath::new("reclaimPolicy"),
                    "updates to reclaimPolicy are forbidden.",
                ));
            }
            immutable(
                &n.volume_binding_mode,
                &o.volume_binding_mode,
                &FieldPath::new("volumeBindingMode"),
                &mut errs,
            );
            errs
        },
        status: no_update,
    }
}

pub(crate) fn csi_driver_rules() -> Rules<CSIDriver> {
    Rules {
        meta: MetaRule::Standard(|name, prefix| {
            let mut errs = name_is_dns_subdomain(name, prefix);
            if name.len() > 63 {
                errs.push(super::names::max_len_error(63));
            }
            errs
        }),
        create: |d, _| {
            let mut errs = ErrorList::new();
            let sp = FieldPath::new("spec");
            if let Some(p) = d.spec.fs_group_policy.as_deref() {
                enum_field(
                    Some(p),
                    &["File", "None", "ReadWriteOnceWithFSType"],
                    &sp.child("fsGroupPolicy"),
                    &mut errs,
                );
            }
            for (i, m) in d.spec.volume_lifecycle_modes.iter().flatten().enumerate() {
                if !matches!(m.as_str(), "Ephemeral" | "Persistent") {
                    errs.push(FieldError::not_supported(
                        &sp.child("volumeLifecycleModes").index(i),
                        m.as_str(),
                        &["Ephemeral", "Persistent"],
                    ));
                }
            }
            errs
        },
        update: |n, o, _| {
            let mut errs = ErrorList::new();
            let sp = FieldPath::new("spec");
            immutable(
                &n.spec.attach_required,
                &o.spec.attach_required,
                &sp.child("attachRequired"),
                &mut errs,
            );
            immutable(
                &n.spec.volume_lifecycle_modes,
                &o.spec.volume_lifecycle_modes,
                &sp.child("volumeLifecycleModes"),
                &mut errs,
            );
            errs
        },
        status: no_update,
    }
}

pub(crate) fn volume_attachment_rules() -> Rules<VolumeAttachment> {
    Rules {
        meta: MetaRule::Standard(name_is_dns_subdomain),
        create: |va, _| {
            let mut errs = ErrorList::new();
            let sp = FieldPath::new("spec");
            if va.spec.attacher.is_empty() {
                errs.push(FieldError::required(&sp.child("attacher"), ""));
            } else {
                for m in is_dns1123_subdomain(&va.spec.attacher.to_lowercase()) {
                    errs.push(FieldError::invalid(
                        &sp.child("attacher"),
                        va.spec.attacher.as_str(),
                        &m,
                    ));
                }
            }
            if va.spec.node_name.is_empty() {
                errs.push(FieldError::required(&sp.child("nodeName"), ""));
            } else {
                for m in name_is_dns_subdomain(&va.spec.node_name, false) {
                    errs.push(FieldError::invalid(
                        &sp.child("nodeName"),
                        va.spec.node_name.as_str(),
                        &m,
                    ));
                }
            }
            let src = &va.spec.source;
            match (
                src.persistent_volume_name.as_deref(),
                src.inline_volume_spec.is_some(),
            ) {
                (None, false) | (Some(""), false) => errs.push(FieldError::required(
                    &sp.child("source"),
                    "must specify exactly one of inlineVolumeSpec and persistentVolumeName",
                )),
                (Some(n), true) if !n.is_empty() => errs.push(FieldError::forbidden(
                    &sp.child("source"),
                    "must specify exactly one of inlineVolumeSpec and persistentVolumeName",
                )),
                _ => {}
            }
            errs
        },
        update: |n, o, _| {
            let mut errs = ErrorList::new();
            if json(&n.spec) != json(&o.spec) {
                errs.push(FieldError::invalid(
                    &FieldPath::new("spec"),
                    json(&n.spec),
                    super::meta::FIELD_IMMUTABLE,
                ));
            }
            errs
        },
        status: no_update,
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{kinds, want, Case};
    use super::super::{validate_create, validate_update};
    use crate::field_error::FieldErrorType::*;
    use serde_json::{json, Value};

    fn pvc(spec: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "c", "namespace": "d", "resourceVersion": "1"}, "spec": spec})
    }

    #[test]
    fn pvc_rules() {
        let ok = json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}});
        let cases: Vec<Case> = vec![
            ("valid", ok.clone(), vec![]),
            (
                "no access modes",
                json!({"resources": {"requests": {"storage": "1Gi"}}}),
                vec![("spec.accessModes", Required)],
            ),
            (
                "bad access mode",
                json!({"accessModes": ["ReadWriteSometimes"], "resources": {"requests": {"storage": "1Gi"}}}),
                vec![("spec.accessModes", NotSupported)],
            ),
            (
                "no storage",
                json!({"accessModes": ["ReadWriteOnce"]}),
                vec![("spec.resources[storage]", Required)],
            ),
            (
                "zero storage",
                json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "0"}}}),
                vec![("spec.resources[storage]", Invalid)],
            ),
            (
                "bad volume mode",
                json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, "volumeMode": "Raw"}),
                vec![("spec.volumeMode", NotSupported)],
            ),
        ];
        for (name, spec, w) in cases {
            assert_eq!(
                kinds(&validate_create("", "PersistentVolumeClaim", &pvc(spec))),
                want(w),
                "{name}"
            );
        }
        let changed = pvc(
            json!({"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}}}),
        );
        assert_eq!(
            kinds(&validate_update(
                "",
                "PersistentVolumeClaim",
                &changed,
                &pvc(ok.clone())
            )),
            want(vec![("spec", Forbidden)])
        );
        let bound_old = {
            let mut o = pvc(ok.clone());
            o["status"] = json!({"phase": "Bound"});
            o
        };
        let grown = pvc(
            json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}}),
        );
        assert_eq!(
            kinds(&validate_update(
                "",
                "PersistentVolumeClaim",
                &grown,
                &bound_old
            )),
            want(vec![])
        );
        let shrunk = pvc(
            json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "500Mi"}}}),
        );
        assert_eq!(
            kinds(&validate_update(
                "",
                "PersistentVolumeClaim",
                &shrunk,
                &bound_old
            )),
            want(vec![("spec.resources.requests.storage", Forbidden)])
        );
    }

    #[test]
    fn pv_rules() {
        let pv = |spec: Value| json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "v"}, "spec": spec});
        assert_eq!(
            kinds(&validate_create(
                "",
                "PersistentVolume",
                &pv(
                    json!({"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}, "hostPath": {"path": "/data"}})
                )
            )),
            want(vec![])
        );
        assert_eq!(
            kinds(&validate_create(
                "",
                "PersistentVolume",
                &pv(json!({"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}}))
            )),
            want(vec![("spec", Required)])
        );
        assert_eq!(
            kinds(&validate_create(
                "",
                "PersistentVolume",
                &pv(
                    json!({"accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/d"}, "persistentVolumeReclaimPolicy": "Keep"})
                )
            )),
            want(vec![
                ("spec.capacity", Required),
                ("spec.capacity", NotSupported),
                ("spec.persistentVolumeReclaimPolicy", NotSupported)
            ])
        );
    }

    #[test]
    fn storage_class_rules() {
        let sc = |extra: Value| {
            let mut o = json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "fast", "resourceVersion": "1"}, "provisioner": "example.com/disk"});
            for (k, v) in extra.as_object().into_iter().flatten() {
                o[k] = v.clone();
            }
            o
        };
        assert_eq!(
            kinds(&validate_create(
                "storage.k8s.io",
                "StorageClass",
                &sc(json!({}))
            )),
            want(vec![])
        );
        assert_eq!(
            kinds(&validate_create(
                "storage.k8s.io",
                "StorageClass",
                &sc(json!({"provisioner": "", "reclaimPolicy": "Recycle"}))
            )),
            want(vec![
                ("provisioner", Required),
                ("reclaimPolicy", NotSupported)
            ])
        );
        assert_eq!(
            kinds(&validate_update(
                "storage.k8s.io",
                "StorageClass",
                &sc(json!({"parameters": {"a": "b"}})),
                &sc(json!({}))
            )),
            want(vec![("parameters", Forbidden)])
        );
    }
}
