//! Pod cgroups on cgroupfs (v1, one hierarchy per controller, as on this project's machines;
//! a unified v2 mount is handled too): the QoS tree the kubelet keeps under its own root, and
//! removal of a pod's cgroups when the pod is gone.
//!
//! Layout, as upstream's cgroupfs driver: `<root>/kubepods` holds Guaranteed pods directly,
//! `<root>/kubepods/burstable` and `<root>/kubepods/besteffort` the others; a pod's cgroup is
//! `pod<uid>`, and the runtime puts the pod's containers below it.

use std::path::{Path, PathBuf};

/// The cgroupfs mount point.
pub const CGROUP_FS: &str = "/sys/fs/cgroup";

/// A pod's QoS class, which picks its place in the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qos {
    Guaranteed,
    Burstable,
    BestEffort,
}

impl Qos {
    pub fn as_str(self) -> &'static str {
        match self {
            Qos::Guaranteed => "Guaranteed",
            Qos::Burstable => "Burstable",
            Qos::BestEffort => "BestEffort",
        }
    }
}

/// The cgroup (relative to each controller's mount, starting with `/`) of a pod.
pub fn pod_cgroup(root: &str, qos: Qos, uid: &str) -> String {
    let base = format!("{}/kubepods", root.trim_end_matches('/'));
    match qos {
        Qos::Guaranteed => format!("{base}/pod{uid}"),
        Qos::Burstable => format!("{base}/burstable/pod{uid}"),
        Qos::BestEffort => format!("{base}/besteffort/pod{uid}"),
    }
}

/// The directories of a cgroup in every mounted hierarchy (v1: one per controller).
pub fn hierarchy_dirs(cgroup: &str) -> Vec<PathBuf> {
    let rel = cgroup.trim_start_matches('/');
    let Ok(entries) = std::fs::read_dir(CGROUP_FS) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if Path::new(CGROUP_FS).join("cgroup.controllers").exists() {
        // a pure v2 mount
        out.push(Path::new(CGROUP_FS).join(rel));
        return out;
    }
    for entry in entries.flatten() {
        let path = entry.path();
        // skip the controller aliases (cpu,cpuacct -> cpu); keep the named `systemd` and the
        // hybrid `unified` hierarchies, where runc creates the cgroup too
        if entry.file_type().map(|t| t.is_symlink()).unwrap_or(true) {
            continue;
        }
        out.push(path.join(rel));
    }
    out
}

/// Creates the cgroup in every hierarchy.
pub fn create(cgroup: &str) -> std::io::Result<()> {
    for dir in hierarchy_dirs(cgroup) {
        std::fs::create_dir_all(&dir)?;
    }
    Ok(())
}

/// Writes a control file of one controller (`memory`, `cpu`, ...) of the cgroup.
pub fn write(controller: &str, cgroup: &str, file: &str, value: &str) -> std::io::Result<()> {
    let dir = Path::new(CGROUP_FS)
        .join(controller)
        .join(cgroup.trim_start_matches('/'));
    std::fs::write(dir.join(file), value)
}

/// Removes the cgroup and everything below it from every hierarchy, deepest first. A cgroup
/// still holding processes cannot be removed; that is reported, the rest is removed.
pub fn remove(cgroup: &str) -> std::io::Result<()> {
    let mut first_error = None;
    for dir in hierarchy_dirs(cgroup) {
        if let Err(e) = remove_tree(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

fn remove_tree(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            remove_tree(&entry.path())?;
        }
    }
    std::fs::remove_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_sit_under_their_qos_class() {
        assert_eq!(
            pod_cgroup("/rkube/n1", Qos::Guaranteed, "u1"),
            "/rkube/n1/kubepods/podu1"
        );
        assert_eq!(
            pod_cgroup("/rkube/n1/", Qos::Burstable, "u1"),
            "/rkube/n1/kubepods/burstable/podu1"
        );
        assert_eq!(
            pod_cgroup("/", Qos::BestEffort, "u1"),
            "/kubepods/besteffort/podu1"
        );
    }
}
