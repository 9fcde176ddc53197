//! The pure parts of turning a container's volumeMounts into CRI mounts: mount propagation
//! and recursive read-only, as upstream's `translateMountPropagation` and
//! `resolveRecursiveReadOnly`.

use k8s_cri::v1::MountPropagation;
use k8s_openapi::api::core::v1::VolumeMount;

/// `mountPropagation` → the CRI's: none or `None` is private (rprivate), `HostToContainer`
/// rslave, `Bidirectional` rshared.
pub fn translate_propagation(mode: Option<&str>) -> Result<MountPropagation, String> {
    match mode {
        None | Some("None") => Ok(MountPropagation::PropagationPrivate),
        Some("HostToContainer") => Ok(MountPropagation::PropagationHostToContainer),
        Some("Bidirectional") => Ok(MountPropagation::PropagationBidirectional),
        Some(other) => Err(format!(
            "invalid MountPropagation mode: {}",
            rkube_api::go_quote::go_quote(other)
        )),
    }
}

/// Whether the mount is recursively read-only: `Disabled` (or unset) never, `IfPossible`
/// when the runtime supports it, `Enabled` always or an error. Only a read-only mount may
/// ask.
pub fn resolve_recursive_read_only(
    m: &VolumeMount,
    runtime_supports_rro: bool,
) -> Result<bool, String> {
    let name = rkube_api::go_quote::go_quote(&m.name);
    let wrap = |e: String| format!("failed to resolve recursive read-only mode: {e}");
    match m.recursive_read_only.as_deref() {
        None | Some("Disabled") => Ok(false),
        Some(_) if !m.read_only.unwrap_or(false) => Err(wrap(format!(
            "volume {name} requested recursive read-only mode, but it is not read-only"
        ))),
        Some("IfPossible") => Ok(runtime_supports_rro),
        Some("Enabled") if runtime_supports_rro => Ok(true),
        Some("Enabled") => Err(wrap(format!(
            "volume {name} requested recursive read-only mode, but it is not supported by the runtime"
        ))),
        Some(other) => Err(wrap(format!(
            "unknown recursive read-only mode {}",
            rkube_api::go_quote::go_quote(other)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn propagation_modes() {
        let cases = [
            (None, Ok(MountPropagation::PropagationPrivate)),
            (Some("None"), Ok(MountPropagation::PropagationPrivate)),
            (
                Some("HostToContainer"),
                Ok(MountPropagation::PropagationHostToContainer),
            ),
            (
                Some("Bidirectional"),
                Ok(MountPropagation::PropagationBidirectional),
            ),
            (
                Some("Shared"),
                Err("invalid MountPropagation mode: \"Shared\"".to_string()),
            ),
        ];
        for (mode, want) in cases {
            assert_eq!(translate_propagation(mode), want, "{mode:?}");
        }
    }

    #[test]
    fn recursive_read_only() {
        let m = |rro: Option<&str>, ro: bool| VolumeMount {
            name: "data".into(),
            read_only: Some(ro),
            recursive_read_only: rro.map(str::to_string),
            ..Default::default()
        };
        let cases = [
            (m(None, false), false, Ok(false)),
            (m(Some("Disabled"), false), true, Ok(false)),
            (m(Some("IfPossible"), true), false, Ok(false)),
            (m(Some("IfPossible"), true), true, Ok(true)),
            (m(Some("Enabled"), true), true, Ok(true)),
            (
                m(Some("Enabled"), true),
                false,
                Err("failed to resolve recursive read-only mode: volume \"data\" requested recursive read-only mode, but it is not supported by the runtime"),
            ),
            (
                m(Some("IfPossible"), false),
                true,
                Err("failed to resolve recursive read-only mode: volume \"data\" requested recursive read-only mode, but it is not read-only"),
            ),
        ];
        for (i, (mount, rro, want)) in cases.into_iter().enumerate() {
            assert_eq!(
                resolve_recursive_read_only(&mount, rro),
                want.map_err(str::to_string),
                "case {i}"
            );
        }
    }
}
