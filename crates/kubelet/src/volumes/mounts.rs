//! Host mount-table helpers: which paths are mount points (from `/proc/self/mountinfo`),
//! tmpfs and bind mounts, unmounting, and a recursive removal that refuses to cross into
//! another file system, so a leftover mount (a bind of host data) is never emptied.

use std::collections::HashSet;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};
use procfs_core::FromRead;

/// One line of the mount table, as far as the volume code needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub mount_point: PathBuf,
    pub fs_type: String,
    /// Per-mount options (`ro`, `nosuid`, ...).
    pub options: Vec<String>,
    /// Per-superblock options (`size=8192k`, ...), as `key=value`.
    pub super_options: Vec<String>,
}

/// The mounts of this process's mount namespace.
pub fn mount_table() -> io::Result<Vec<MountEntry>> {
    let file = std::fs::File::open("/proc/self/mountinfo")?;
    let infos = procfs_core::process::MountInfos::from_read(file)
        .map_err(|e| io::Error::other(format!("parsing /proc/self/mountinfo: {e}")))?;
    Ok(infos
        .into_iter()
        .map(|m| MountEntry {
            // procfs-core leaves the kernel's octal escapes (`\040` for a space) in place.
            mount_point: PathBuf::from(unescape_octal(&m.mount_point.to_string_lossy())),
            fs_type: m.fs_type,
            options: m.mount_options.into_keys().collect(),
            super_options: m
                .super_options
                .into_iter()
                .map(|(k, v)| match v {
                    Some(v) => format!("{k}={v}"),
                    None => k,
                })
                .collect(),
        })
        .collect())
}

/// Undoes the kernel's `\ooo` escapes of mountinfo paths (space, tab, newline, backslash).
pub fn unescape_octal(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let v = (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mount points at or below `root`, deepest first (the order to unmount them in).
pub fn mounts_under(root: &Path) -> io::Result<Vec<MountEntry>> {
    let mut found: Vec<MountEntry> = mount_table()?
        .into_iter()
        .filter(|m| m.mount_point.starts_with(root))
        .collect();
    found.sort_by(|a, b| {
        b.mount_point
            .components()
            .count()
            .cmp(&a.mount_point.components().count())
            .then_with(|| b.mount_point.cmp(&a.mount_point))
    });
    // A path mounted over twice is listed twice; one unmount per entry is right.
    Ok(found)
}

/// Whether `path` is a mount point (listed in the mount table).
pub fn is_mount_point(path: &Path) -> io::Result<bool> {
    Ok(mount_table()?.iter().any(|m| m.mount_point == path))
}

/// The mount table entry of `path`, the last one if it is mounted over several times.
pub fn mount_at(path: &Path) -> io::Result<Option<MountEntry>> {
    Ok(mount_table()?.into_iter().rfind(|m| m.mount_point == path))
}

/// Mounts a tmpfs on `dir`, with `size=<bytes>` when a size is given (otherwise the
/// kernel's default, half of memory).
pub fn mount_tmpfs(dir: &Path, size: Option<i64>) -> io::Result<()> {
    let data = size.filter(|s| *s > 0).map(|s| format!("size={s}"));
    nix::mount::mount(
        Some("tmpfs"),
        dir,
        Some("tmpfs"),
        MsFlags::empty(),
        data.as_deref(),
    )
    .map_err(|e| io::Error::other(format!("mount tmpfs on {}: {e}", dir.display())))
}

/// Bind-mounts `source` on `target`; read-only needs a second, remounting call, as
/// mount(8) does.
pub fn bind_mount(source: &Path, target: &Path, read_only: bool) -> io::Result<()> {
    nix::mount::mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| {
        io::Error::other(format!(
            "bind mount {} on {}: {e}",
            source.display(),
            target.display()
        ))
    })?;
    if read_only {
        if let Err(e) = nix::mount::mount(
            None::<&str>,
            target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        ) {
            let _ = unmount(target);
            return Err(io::Error::other(format!(
                "remount {} read-only: {e}",
                target.display()
            )));
        }
    }
    Ok(())
}

/// Unmounts `path`. A mount still busy (a process keeps it open) is detached lazily, so the
/// pod's directories can go; the file system itself stays until its last user is gone.
pub fn unmount(path: &Path) -> io::Result<()> {
    match nix::mount::umount2(path, MntFlags::empty()) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EBUSY) => {
            tracing::warn!(path = %path.display(), "mount busy, detaching it lazily");
            nix::mount::umount2(path, MntFlags::MNT_DETACH)
                .map_err(|e| io::Error::other(format!("unmount {}: {e}", path.display())))
        }
        Err(e) => Err(io::Error::other(format!("unmount {}: {e}", path.display()))),
    }
}

/// Unmounts every mount at or below `root`, deepest first.
pub fn unmount_all_under(root: &Path) -> io::Result<()> {
    for m in mounts_under(root)? {
        unmount(&m.mount_point)?;
    }
    Ok(())
}

/// Removes `path` and everything below it without crossing into another mount (upstream's
/// `RemoveAllOneFilesystem`): a mount point found below it is an error, and nothing of that
/// mount is touched.
pub fn remove_all_one_filesystem(path: &Path) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.is_dir() {
        return std::fs::remove_file(path);
    }
    let mounted: HashSet<PathBuf> = mount_table()?
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|m| m.starts_with(path))
        .collect();
    remove_dir_one_fs(path, meta.dev(), &mounted)
}

fn remove_dir_one_fs(dir: &Path, dev: u64, mounted: &HashSet<PathBuf>) -> io::Result<()> {
    if mounted.contains(dir) {
        return Err(io::Error::other(format!(
            "cannot delete directory {}: it is a mount point",
            dir.display()
        )));
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let p = entry.path();
        let meta = std::fs::symlink_metadata(&p)?;
        if meta.is_dir() {
            if meta.dev() != dev {
                return Err(io::Error::other(format!(
                    "cannot delete directory {}: it is on another file system",
                    p.display()
                )));
            }
            remove_dir_one_fs(&p, dev, mounted)?;
        } else {
            if mounted.contains(&p) {
                return Err(io::Error::other(format!(
                    "cannot delete {}: it is a mount point",
                    p.display()
                )));
            }
            std::fs::remove_file(&p)?;
        }
    }
    std::fs::remove_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_undone() {
        for (raw, want) in [
            ("/plain/path", "/plain/path"),
            ("/with\\040space", "/with space"),
            ("/tab\\011x", "/tab\tx"),
            ("/back\\134slash", "/back\\slash"),
            ("/short\\04", "/short\\04"),
            ("/not\\999", "/not\\999"),
        ] {
            assert_eq!(unescape_octal(raw), want, "{raw}");
        }
    }

    #[test]
    fn the_root_is_a_mount_point() {
        assert!(is_mount_point(Path::new("/")).unwrap());
    }
}
