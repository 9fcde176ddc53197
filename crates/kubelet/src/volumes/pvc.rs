//! persistentVolumeClaim volumes: the checks upstream's volume manager makes on the claim
//! and its bound volume (`getPVCExtractPV`, `getPVSpec`), and which of the supported
//! plugins (`local`, `hostPath`) mounts the volume.

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};

/// The finalizer that keeps a claim in use from being deleted.
pub const PVC_PROTECTION_FINALIZER: &str = "kubernetes.io/pvc-protection";

/// The plugin directory name of local volumes.
pub const LOCAL_PLUGIN: &str = "kubernetes.io~local-volume";

/// A bound claim's volume and the claim's uid.
pub fn check_claim(pvc: &PersistentVolumeClaim) -> Result<(String, String), String> {
    let meta = &pvc.metadata;
    let protected = meta
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == PVC_PROTECTION_FINALIZER);
    if meta.deletion_timestamp.is_some() && !protected {
        return Err("PVC is being deleted".into());
    }
    if pvc.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Bound") {
        return Err("PVC is not bound".into());
    }
    let volume = pvc
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.clone())
        .unwrap_or_default();
    if volume.is_empty() {
        return Err("PVC has empty pvc.Spec.VolumeName".into());
    }
    Ok((volume, meta.uid.clone().unwrap_or_default()))
}

/// How a persistent volume is mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A `local` volume: bind-mounted into the pod's volume directory.
    Local { path: String },
    /// A `hostPath` volume: mounted straight from the host path after its type check.
    HostPath { path: String, type_: String },
}

/// Checks the volume is bound to the claim and picks its plugin.
pub fn check_volume(pv: &PersistentVolume, claim_uid: &str) -> Result<Source, String> {
    let name = pv.metadata.name.as_deref().unwrap_or("");
    let spec = pv.spec.as_ref();
    let Some(claim_ref) = spec.and_then(|s| s.claim_ref.as_ref()) else {
        return Err(format!(
            "found PV object {name} but it has a nil pv.Spec.ClaimRef indicating it is not yet bound to the claim"
        ));
    };
    let ref_uid = claim_ref.uid.as_deref().unwrap_or("");
    if ref_uid != claim_uid {
        return Err(format!(
            "found PV object {name} but its pv.Spec.ClaimRef.UID {ref_uid} does not point to claim.UID {claim_uid}"
        ));
    }
    let spec = spec.ok_or("no volume plugin matched")?;
    if spec.volume_mode.as_deref() == Some("Block") {
        return Err("volumeMode Block is not supported by this kubelet".into());
    }
    if let Some(l) = &spec.local {
        return Ok(Source::Local {
            path: l.path.clone(),
        });
    }
    if let Some(h) = &spec.host_path {
        return Ok(Source::HostPath {
            path: h.path.clone(),
            type_: h.type_.clone().unwrap_or_default(),
        });
    }
    Err("no volume plugin matched".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        HostPathVolumeSource, LocalVolumeSource, ObjectReference, PersistentVolumeClaimSpec,
        PersistentVolumeClaimStatus, PersistentVolumeSpec,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    fn pvc(
        phase: &str,
        volume: Option<&str>,
        deleting: bool,
        finalizer: bool,
    ) -> PersistentVolumeClaim {
        PersistentVolumeClaim {
            metadata: ObjectMeta {
                uid: Some("claim-uid".into()),
                deletion_timestamp: deleting.then_some(Time(jiff::Timestamp::UNIX_EPOCH)),
                finalizers: finalizer.then(|| vec![PVC_PROTECTION_FINALIZER.to_string()]),
                ..Default::default()
            },
            spec: Some(PersistentVolumeClaimSpec {
                volume_name: volume.map(str::to_string),
                ..Default::default()
            }),
            status: Some(PersistentVolumeClaimStatus {
                phase: Some(phase.into()),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn claims() {
        let ok = Ok(("pv1".to_string(), "claim-uid".to_string()));
        let cases = [
            (pvc("Bound", Some("pv1"), false, true), ok.clone()),
            (pvc("Bound", Some("pv1"), true, true), ok),
            (
                pvc("Bound", Some("pv1"), true, false),
                Err("PVC is being deleted".to_string()),
            ),
            (
                pvc("Pending", None, false, true),
                Err("PVC is not bound".to_string()),
            ),
            (
                pvc("Lost", Some("pv1"), false, true),
                Err("PVC is not bound".to_string()),
            ),
            (
                pvc("Bound", None, false, true),
                Err("PVC has empty pvc.Spec.VolumeName".to_string()),
            ),
        ];
        for (i, (c, want)) in cases.into_iter().enumerate() {
            assert_eq!(check_claim(&c), want, "case {i}");
        }
    }

    fn pv(claim_uid: Option<&str>, local: bool, host: bool) -> PersistentVolume {
        PersistentVolume {
            metadata: ObjectMeta {
                name: Some("pv1".into()),
                ..Default::default()
            },
            spec: Some(PersistentVolumeSpec {
                claim_ref: claim_uid.map(|u| ObjectReference {
                    uid: Some(u.into()),
                    ..Default::default()
                }),
                local: local.then(|| LocalVolumeSource {
                    path: "/mnt/disk".into(),
                    fs_type: None,
                }),
                host_path: host.then(|| HostPathVolumeSource {
                    path: "/srv".into(),
                    type_: Some("Directory".into()),
                }),
                ..Default::default()
            }),
            status: None,
        }
    }

    #[test]
    fn volumes() {
        let cases = [
            (pv(Some("claim-uid"), true, false), Ok(Source::Local { path: "/mnt/disk".into() })),
            (
                pv(Some("claim-uid"), false, true),
                Ok(Source::HostPath {
                    path: "/srv".into(),
                    type_: "Directory".into(),
                }),
            ),
            (pv(Some("claim-uid"), false, false), Err("no volume plugin matched".to_string())),
            (
                pv(None, true, false),
                Err("found PV object pv1 but it has a nil pv.Spec.ClaimRef indicating it is not yet bound to the claim".to_string()),
            ),
            (
                pv(Some("other"), true, false),
                Err("found PV object pv1 but its pv.Spec.ClaimRef.UID other does not point to claim.UID claim-uid".to_string()),
            ),
        ];
        for (i, (v, want)) in cases.into_iter().enumerate() {
            assert_eq!(check_volume(&v, "claim-uid"), want, "case {i}");
        }
    }
}
