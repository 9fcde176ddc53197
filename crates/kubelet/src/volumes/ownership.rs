//! fsGroup ownership (upstream's `pkg/volume/volume_linux.go`): every file of the volume is
//! given the pod's fsGroup as its group and group read (and write, unless the volume is
//! read-only) permission; directories also get group execute and setgid, so what the
//! containers create later inherits the group. `OnRootMismatch` skips the walk when the
//! volume's root already looks right. And `FsUserFrom`: the one user every container runs
//! as, which owns service-account token files.

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use k8s_openapi::api::core::v1::Pod;

const RW_MASK: u32 = 0o660;
const RO_MASK: u32 = 0o440;
const EXEC_MASK: u32 = 0o110;
const SETGID: u32 = 0o2000;

/// The mode upstream's `changeFilePermission` gives a file or directory; None for a symlink
/// (its mode means nothing, and chmod would change its target).
pub fn new_mode(mode: u32, is_dir: bool, is_symlink: bool, read_only: bool) -> Option<u32> {
    if is_symlink {
        return None;
    }
    let mut mask = if read_only { RO_MASK } else { RW_MASK };
    if is_dir {
        mask |= SETGID | EXEC_MASK;
    }
    Some((mode & 0o7777) | mask)
}

/// Upstream's `requiresPermissionChange`: whether the volume root (its group, mode, and
/// whether it is a directory) does not yet carry the fsGroup settings.
pub fn requires_permission_change(
    root_gid: u32,
    root_mode: u32,
    root_is_dir: bool,
    fs_group: u32,
    read_only: bool,
) -> bool {
    if root_gid != fs_group || !root_is_dir {
        return true;
    }
    let perms = if read_only { RO_MASK } else { RW_MASK } | EXEC_MASK;
    if root_mode & perms != perms {
        return true;
    }
    root_mode & SETGID == 0
}

/// Applies fsGroup to everything under `dir` (symlinks not followed; their group changes,
/// their mode does not). With policy `OnRootMismatch`, nothing is done when the root
/// already carries the settings.
pub fn set_volume_ownership(
    dir: &Path,
    fs_group: Option<i64>,
    policy: Option<&str>,
    read_only: bool,
) -> io::Result<()> {
    let Some(gid) = fs_group.and_then(|g| u32::try_from(g).ok()) else {
        return Ok(());
    };
    if policy == Some("OnRootMismatch") {
        if let Ok(meta) = std::fs::metadata(dir) {
            if !requires_permission_change(meta.gid(), meta.mode(), meta.is_dir(), gid, read_only) {
                return Ok(());
            }
        }
    }
    for entry in walkdir::WalkDir::new(dir) {
        let entry = entry.map_err(io::Error::other)?;
        let meta = entry.metadata().map_err(io::Error::other)?;
        std::os::unix::fs::lchown(entry.path(), None, Some(gid))?;
        if let Some(mode) = new_mode(
            meta.mode(),
            meta.is_dir(),
            entry.path_is_symlink(),
            read_only,
        ) {
            std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(mode))?;
        }
    }
    Ok(())
}

/// Upstream's `FsUserFrom`: the effective runAsUser of every init and regular container
/// when they all have one and it is the same; otherwise None.
pub fn fs_user_from(pod: &Pod) -> Option<i64> {
    let spec = pod.spec.as_ref()?;
    let pod_user = spec.security_context.as_ref().and_then(|s| s.run_as_user);
    let mut user = None;
    for c in spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
    {
        let effective = c
            .security_context
            .as_ref()
            .and_then(|s| s.run_as_user)
            .or(pod_user)?;
        match user {
            None => user = Some(effective),
            Some(u) if u != effective => return None,
            Some(_) => {}
        }
    }
    user
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSecurityContext, PodSpec, SecurityContext};

    #[test]
    fn modes_as_upstream() {
        let cases = [
            // (mode, dir, symlink, read_only) → new mode
            ((0o644, false, false, false), Some(0o664)),
            ((0o600, false, false, true), Some(0o640)),
            ((0o400, false, false, true), Some(0o440)),
            ((0o777, true, false, false), Some(0o2777)),
            ((0o755, true, false, true), Some(0o2755)),
            ((0o700, true, false, false), Some(0o2770)),
            ((0o777, false, true, false), None),
        ];
        for ((mode, dir, link, ro), want) in cases {
            assert_eq!(
                new_mode(mode, dir, link, ro),
                want,
                "{mode:o} dir={dir} ro={ro}"
            );
        }
    }

    #[test]
    fn root_mismatch_as_upstream() {
        let cases = [
            // (gid, mode, dir, fsGroup, ro) → requires change
            ((1000, 0o2770, true, 1000, false), false),
            ((1000, 0o2775, true, 1000, false), false),
            ((1000, 0o2550, true, 1000, true), false),
            ((0, 0o2770, true, 1000, false), true),
            ((1000, 0o0770, true, 1000, false), true),
            ((1000, 0o2750, true, 1000, false), true),
            ((1000, 0o2770, false, 1000, false), true),
        ];
        for ((gid, mode, dir, fsg, ro), want) in cases {
            assert_eq!(
                requires_permission_change(gid, mode, dir, fsg, ro),
                want,
                "{gid} {mode:o} {dir}"
            );
        }
    }

    fn pod(pod_user: Option<i64>, users: &[Option<i64>], init: &[Option<i64>]) -> Pod {
        let c = |u: &Option<i64>| Container {
            security_context: u.map(|u| SecurityContext {
                run_as_user: Some(u),
                ..Default::default()
            }),
            ..Default::default()
        };
        Pod {
            spec: Some(PodSpec {
                security_context: Some(PodSecurityContext {
                    run_as_user: pod_user,
                    ..Default::default()
                }),
                containers: users.iter().map(c).collect(),
                init_containers: Some(init.iter().map(c).collect()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn fs_user_is_the_one_shared_user() {
        let cases = [
            (pod(Some(1000), &[None, None], &[]), Some(1000)),
            (pod(None, &[Some(5), Some(5)], &[Some(5)]), Some(5)),
            (pod(Some(1000), &[Some(5), None], &[]), None),
            (pod(None, &[Some(5), None], &[]), None),
            (pod(None, &[None], &[]), None),
            (pod(Some(7), &[None], &[Some(8)]), None),
        ];
        for (i, (p, want)) in cases.into_iter().enumerate() {
            assert_eq!(fs_user_from(&p), want, "case {i}");
        }
    }

    #[test]
    fn ownership_is_applied_to_a_tree() {
        if !nix::unistd::Uid::effective().is_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("v");
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(d.join("sub/f"), b"x").unwrap();
        std::fs::set_permissions(d.join("sub/f"), std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::symlink("sub/f", d.join("l")).unwrap();
        set_volume_ownership(&d, Some(4321), None, false).unwrap();
        let m = |p: &str| std::fs::symlink_metadata(d.join(p)).unwrap();
        assert_eq!(m("").gid(), 4321);
        assert_eq!(m("").mode() & 0o7777, 0o2775);
        assert_eq!(m("sub/f").gid(), 4321);
        assert_eq!(m("sub/f").mode() & 0o7777, 0o660);
        assert_eq!(m("l").gid(), 4321);
        // OnRootMismatch: a matching root skips the walk
        std::fs::set_permissions(d.join("sub/f"), std::fs::Permissions::from_mode(0o600)).unwrap();
        set_volume_ownership(&d, Some(4321), Some("OnRootMismatch"), false).unwrap();
        assert_eq!(m("sub/f").mode() & 0o7777, 0o600);
        set_volume_ownership(&d, Some(4321), Some("Always"), false).unwrap();
        assert_eq!(m("sub/f").mode() & 0o7777, 0o660);
    }
}
