//! Pod volumes: DNS-label names, unique, exactly one source each, and the basic rules of the
//! common sources (secrets, config maps, claims, host paths, projections).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{KeyToPath, Volume};

use super::container::{non_negative_quantity, validate_local_descending_path};
use super::names::{is_dns1123_label, name_is_dns_subdomain};
use crate::field_error::{ErrorList, FieldError, FieldPath};

const FILE_MODE_ERR: &str = "must be a number between 0 and 0777 (octal), both inclusive";

/// Volumes: DNS-label names, unique, exactly one source each. Returns the valid volumes by
/// name, which is what volume mounts may refer to.
pub(crate) fn validate_volumes<'a>(
    volumes: &'a [Volume],
    path: &FieldPath,
) -> (BTreeMap<String, &'a Volume>, ErrorList) {
    let mut errs = ErrorList::new();
    let mut valid = BTreeMap::new();
    let mut names = BTreeSet::new();
    for (i, v) in volumes.iter().enumerate() {
        let p = path.index(i);
        let np = p.child("name");
        let mut el = validate_volume_source(v, &p);
        if v.name.is_empty() {
            el.push(FieldError::required(&np, ""));
        } else {
            for m in is_dns1123_label(&v.name) {
                el.push(FieldError::invalid(&np, v.name.as_str(), &m));
            }
        }
        if names.contains(v.name.as_str()) {
            el.push(FieldError::duplicate(&np, v.name.as_str()));
        }
        if el.is_empty() {
            names.insert(v.name.as_str());
            valid.insert(v.name.clone(), v);
        } else {
            errs.extend(el);
        }
    }
    (valid, errs)
}

fn file_mode(mode: Option<i32>, path: &FieldPath, errs: &mut ErrorList) {
    if let Some(m) = mode.filter(|m| !(0..=0o777).contains(m)) {
        errs.push(FieldError::invalid(path, m, FILE_MODE_ERR));
    }
}

fn validate_volume_source(v: &Volume, path: &FieldPath) -> ErrorList {
    let mut errs = ErrorList::new();
    let sources = volume_sources(v);
    let mut n = 0;
    for (name, set) in &sources {
        if !set {
            continue;
        }
        if n > 0 {
            errs.push(FieldError::forbidden(
                &path.child(name),
                "may not specify more than 1 volume type",
            ));
            continue;
        }
        n += 1;
        let p = path.child(name);
        match *name {
            "hostPath" => {
                if let Some(h) = &v.host_path {
                    if h.path.is_empty() {
                        errs.push(FieldError::required(&p.child("path"), ""));
                    } else if h.path.split('/').any(|s| s == "..") {
                        errs.push(FieldError::invalid(
                            &p.child("path"),
                            h.path.as_str(),
                            "must not contain '..'",
                        ));
                    }
                    let types = [
                        "",
                        "BlockDevice",
                        "CharDevice",
                        "Directory",
                        "DirectoryOrCreate",
                        "File",
                        "FileOrCreate",
                        "Socket",
                    ];
                    if let Some(t) = h.type_.as_deref().filter(|t| !types.contains(t)) {
                        errs.push(FieldError::not_supported(&p.child("type"), t, &types));
                    }
                }
            }
            "emptyDir" => {
                if let Some(q) = v.empty_dir.as_ref().and_then(|e| e.size_limit.as_ref()) {
                    let mut qerrs = ErrorList::new();
                    if let Some(x) = non_negative_quantity(q, &p.child("sizeLimit"), &mut qerrs) {
                        if x < 0.0 {
                            errs.push(FieldError::forbidden(
                                &p.child("sizeLimit"),
                                "SizeLimit field must be a valid resource quantity",
                            ));
                        }
                    } else {
                        errs.extend(qerrs);
                    }
                }
            }
            "secret" => {
                if let Some(s) = &v.secret {
                    match s.secret_name.as_deref() {
                        None | Some("") => {
                            errs.push(FieldError::required(&p.child("secretName"), ""))
                        }
                        Some(n) => {
                            for m in name_is_dns_subdomain(n, false) {
                                errs.push(FieldError::invalid(&p.child("secretName"), n, &m));
                            }
                        }
                    }
                    file_mode(s.default_mode, &p.child("defaultMode"), &mut errs);
                    key_to_paths(
                        s.items.as_deref().unwrap_or_default(),
                        &p.child("items"),
                        &mut errs,
                    );
                }
            }
            "configMap" => {
                if let Some(c) = &v.config_map {
                    if c.name.is_empty() {
                        errs.push(FieldError::required(&p.child("name"), ""));
                    } else {
                        for m in name_is_dns_subdomain(&c.name, false) {
                            errs.push(FieldError::invalid(&p.child("name"), c.name.as_str(), &m));
                        }
                    }
                    file_mode(c.default_mode, &p.child("defaultMode"), &mut errs);
                    key_to_paths(
                        c.items.as_deref().unwrap_or_default(),
                        &p.child("items"),
                        &mut errs,
                    );
                }
            }
            "persistentVolumeClaim"
                if v.persistent_volume_claim
                    .as_ref()
                    .is_some_and(|c| c.claim_name.is_empty()) =>
            {
                errs.push(FieldError::required(&p.child("claimName"), ""));
            }
            "nfs" => {
                if let Some(nfs) = &v.nfs {
                    if nfs.server.is_empty() {
                        errs.push(FieldError::required(&p.child("server"), ""));
                    }
                    if nfs.path.is_empty() {
                        errs.push(FieldError::required(&p.child("path"), ""));
                    } else if !nfs.path.starts_with('/') {
                        errs.push(FieldError::invalid(
                            &p.child("path"),
                            nfs.path.as_str(),
                            "must be an absolute path",
                        ));
                    }
                }
            }
            "csi" if v.csi.as_ref().is_some_and(|c| c.driver.is_empty()) => {
                errs.push(FieldError::required(&p.child("driver"), ""));
            }
            "downwardAPI" => {
                if let Some(d) = &v.downward_api {
                    file_mode(d.default_mode, &p.child("defaultMode"), &mut errs);
                    for (i, item) in d.items.iter().flatten().enumerate() {
                        let ip = p.child("items").index(i);
                        if item.path.is_empty() {
                            errs.push(FieldError::required(&ip.child("path"), ""));
                        }
                        file_mode(item.mode, &ip.child("mode"), &mut errs);
                    }
                }
            }
            "projected" => {
                if let Some(pr) = &v.projected {
                    file_mode(pr.default_mode, &p.child("defaultMode"), &mut errs);
                    for (i, s) in pr.sources.iter().flatten().enumerate() {
                        let sp = p.child("sources").index(i);
                        let kinds = [
                            ("secret", s.secret.is_some()),
                            ("downwardAPI", s.downward_api.is_some()),
                            ("configMap", s.config_map.is_some()),
                            ("serviceAccountToken", s.service_account_token.is_some()),
                            ("clusterTrustBundle", s.cluster_trust_bundle.is_some()),
                        ];
                        let count = kinds.iter().filter(|(_, set)| *set).count();
                        if count == 0 {
                            errs.push(FieldError::required(&sp, "must specify exactly 1 of: `secret`, `configMap`, `downwardAPI`, `serviceAccountToken`, `clusterTrustBundle`"));
                        }
                        for (k, _) in kinds.iter().filter(|(_, set)| *set).skip(1) {
                            errs.push(FieldError::forbidden(
                                &sp.child(k),
                                "may not specify more than 1 volume type per source",
                            ));
                        }
                        if let Some(t) = &s.service_account_token {
                            if t.path.is_empty() {
                                errs.push(FieldError::required(
                                    &sp.child("serviceAccountToken").child("path"),
                                    "",
                                ));
                            }
                            if let Some(e) = t.expiration_seconds.filter(|e| *e < 600) {
                                errs.push(FieldError::invalid(
                                    &sp.child("serviceAccountToken").child("expirationSeconds"),
                                    e,
                                    "may not specify a duration less than 10 minutes",
                                ));
                            }
                        }
                    }
                }
            }
            "ephemeral"
                if v.ephemeral
                    .as_ref()
                    .is_some_and(|e| e.volume_claim_template.is_none()) =>
            {
                errs.push(FieldError::required(&p.child("volumeClaimTemplate"), ""));
            }
            _ => {}
        }
    }
    if n == 0 {
        errs.push(FieldError::required(path, "must specify a volume type"));
    }
    errs
}

fn key_to_paths(items: &[KeyToPath], path: &FieldPath, errs: &mut ErrorList) {
    for (i, k) in items.iter().enumerate() {
        let p = path.index(i);
        if k.key.is_empty() {
            errs.push(FieldError::required(&p.child("key"), ""));
        }
        if k.path.is_empty() {
            errs.push(FieldError::required(&p.child("path"), ""));
        } else {
            errs.extend(validate_local_descending_path(&k.path, &p.child("path")));
        }
        file_mode(k.mode, &p.child("mode"), errs);
    }
}

fn volume_sources(v: &Volume) -> [(&'static str, bool); 30] {
    [
        ("hostPath", v.host_path.is_some()),
        ("emptyDir", v.empty_dir.is_some()),
        ("gitRepo", v.git_repo.is_some()),
        ("gcePersistentDisk", v.gce_persistent_disk.is_some()),
        ("awsElasticBlockStore", v.aws_elastic_block_store.is_some()),
        ("secret", v.secret.is_some()),
        ("nfs", v.nfs.is_some()),
        ("iscsi", v.iscsi.is_some()),
        ("glusterfs", v.glusterfs.is_some()),
        ("flocker", v.flocker.is_some()),
        ("persistentVolumeClaim", v.persistent_volume_claim.is_some()),
        ("rbd", v.rbd.is_some()),
        ("quobyte", v.quobyte.is_some()),
        ("flexVolume", v.flex_volume.is_some()),
        ("cinder", v.cinder.is_some()),
        ("cephfs", v.cephfs.is_some()),
        ("downwardAPI", v.downward_api.is_some()),
        ("fc", v.fc.is_some()),
        ("azureFile", v.azure_file.is_some()),
        ("configMap", v.config_map.is_some()),
        ("vsphereVolume", v.vsphere_volume.is_some()),
        ("azureDisk", v.azure_disk.is_some()),
        ("photonPersistentDisk", v.photon_persistent_disk.is_some()),
        ("projected", v.projected.is_some()),
        ("portworxVolume", v.portworx_volume.is_some()),
        ("scaleIO", v.scale_io.is_some()),
        ("storageos", v.storageos.is_some()),
        ("csi", v.csi.is_some()),
        ("ephemeral", v.ephemeral.is_some()),
        ("image", v.image.is_some()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field_error::FieldErrorType::*;
    use serde_json::json;

    #[test]
    fn only_valid_volumes_can_be_mounted() {
        let vols: Vec<Volume> = serde_json::from_value(json!([
            {"name": "ok", "emptyDir": {}},
            {"name": "bad", "secret": {"secretName": "s", "items": [{"key": "", "path": "../x"}]}},
            {"name": "two", "emptyDir": {}, "nfs": {"server": "s", "path": "/x"}}
        ]))
        .expect("volumes");
        let (valid, errs) = validate_volumes(&vols, &FieldPath::new("spec").child("volumes"));
        assert_eq!(valid.keys().collect::<Vec<_>>(), vec!["ok"]);
        let got: Vec<(String, crate::field_error::FieldErrorType)> =
            errs.iter().map(|e| (e.field.to_string(), e.kind)).collect();
        assert_eq!(
            got,
            vec![
                ("spec.volumes[1].secret.items[0].key".to_string(), Required),
                ("spec.volumes[1].secret.items[0].path".to_string(), Invalid),
                ("spec.volumes[2].nfs".to_string(), Forbidden),
            ]
        );
    }
}
