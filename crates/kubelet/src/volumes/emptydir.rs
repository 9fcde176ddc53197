//! emptyDir volumes (upstream's `pkg/volume/emptydir`): a mode-0777 directory on the node's
//! disk, or a tmpfs for `medium: Memory`, sized as upstream's `calculateEmptyDirMemorySize`.
//! Also what configMap, secret, downwardAPI and projected volumes are built on (secrets and
//! projections on tmpfs, so they never touch the disk). A `ready` file under
//! `<pod>/plugins/kubernetes.io~empty-dir/<volume>` marks a volume set up, so a later sync
//! (or a restarted kubelet) does not redo the fsGroup walk over data the pod wrote.
//!
//! On-disk `sizeLimit` is enforced upstream by eviction; here usage is measured as `du`
//! does ([`disk_usage`]) and compared ([`limit_violation`]) for the caller to act on.

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;

use k8s_openapi::api::core::v1::Pod;
use rkube_api::quantity::Quantity;

use super::{mounts, ownership};

/// The plugin directory name of emptyDir volumes.
pub const PLUGIN: &str = "kubernetes.io~empty-dir";

/// Where an emptyDir keeps its own state (the `ready` marker).
pub fn meta_dir(pod_dir: &Path, volume: &str) -> std::path::PathBuf {
    pod_dir.join("plugins").join(PLUGIN).join(volume)
}

/// The tmpfs size of a memory-backed emptyDir: the node's allocatable memory, lowered to
/// the pod's memory limit when every container has one, lowered to the volume's
/// `sizeLimit` when that is smaller still. None leaves the kernel's default (half of RAM).
pub fn memory_size(
    pod: &Pod,
    size_limit: Option<&Quantity>,
    node_allocatable_memory: Option<&Quantity>,
) -> Option<i64> {
    let mut size = node_allocatable_memory.map(Quantity::value);
    if let Some(limit) = pod_memory_limit(pod) {
        if limit > 0 && size.is_none_or(|s| limit <= s) {
            size = Some(limit);
        }
    }
    if let Some(v) = size_limit.map(Quantity::value) {
        if v > 0 && size.is_none_or(|s| v <= s) {
            size = Some(v);
        }
    }
    size
}

/// The pod's memory limit as upstream's `ResourceConfigForPod` computes it for the pod
/// cgroup: the larger of the regular containers' (and sidecars') sum and the largest init
/// container, plus the pod overhead; None unless every container has a memory limit.
pub fn pod_memory_limit(pod: &Pod) -> Option<i64> {
    let spec = pod.spec.as_ref()?;
    let limit = |c: &k8s_openapi::api::core::v1::Container| -> Option<i64> {
        let q = c.resources.as_ref()?.limits.as_ref()?.get("memory")?;
        Quantity::parse(&q.0).ok().map(|q| q.value())
    };
    let mut sum = 0i64;
    let mut max_init = 0i64;
    for c in &spec.containers {
        sum = sum.saturating_add(limit(c)?);
    }
    for c in spec.init_containers.iter().flatten() {
        let l = limit(c)?;
        if c.restart_policy.as_deref() == Some("Always") {
            sum = sum.saturating_add(l);
        } else {
            max_init = max_init.max(l);
        }
    }
    let overhead = spec
        .overhead
        .as_ref()
        .and_then(|o| o.get("memory"))
        .and_then(|q| Quantity::parse(&q.0).ok())
        .map_or(0, |q| q.value());
    Some(sum.max(max_init).saturating_add(overhead))
}

/// Sets up an emptyDir at `dir`: on disk (`memory` false) a 0777 directory, in memory a
/// tmpfs of `size` bytes; then fsGroup. Idempotent through the ready marker (and, for
/// memory, the mount itself).
pub fn set_up(
    dir: &Path,
    meta: &Path,
    memory: bool,
    size: Option<i64>,
    fs_group: Option<i64>,
) -> io::Result<()> {
    let ready = meta.join("ready");
    if ready.exists() {
        if memory {
            if mounts::is_mount_point(dir)? {
                return Ok(());
            }
        } else if dir.is_dir() {
            return Ok(());
        }
        // The marker outlived the volume (deleted by hand): set it up again.
        let _ = std::fs::remove_file(&ready);
    }
    set_up_dir(dir)?;
    if memory && !mounts::is_mount_point(dir)? {
        mounts::mount_tmpfs(dir, size)?;
    }
    ownership::set_volume_ownership(dir, fs_group, None, false)?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o750)
        .create(meta)?;
    std::fs::write(ready, b"")?;
    Ok(())
}

/// The directory with mode 0777 whatever the umask (upstream's `setupDir`).
fn set_up_dir(dir: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o777)
        .create(dir)?;
    let meta = std::fs::symlink_metadata(dir)?;
    if meta.permissions().mode() & 0o777 != 0o777 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777))?;
    }
    Ok(())
}

/// Bytes used below `dir` as upstream's `DiskUsage`: allocated blocks × 512, each inode
/// counted once, not descending into other file systems.
pub fn disk_usage(dir: &Path) -> io::Result<u64> {
    let mut seen = HashSet::new();
    let mut total = 0u64;
    for entry in walkdir::WalkDir::new(dir).same_file_system(true) {
        let entry = match entry {
            Ok(e) => e,
            // Files vanish while the pod runs.
            Err(e)
                if e.io_error()
                    .is_some_and(|e| e.kind() == io::ErrorKind::NotFound) =>
            {
                continue
            }
            Err(e) => return Err(io::Error::other(e)),
        };
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        if seen.insert((meta.dev(), meta.ino())) {
            total = total.saturating_add(meta.blocks().saturating_mul(512));
        }
    }
    Ok(total)
}

/// The eviction message upstream gives when an emptyDir uses more than its `sizeLimit`
/// (`emptyDirMessageFmt`), for the first volume over its limit. `usage` maps volume names
/// to bytes used.
pub fn limit_violation(pod: &Pod, usage: &BTreeMap<String, u64>) -> Option<String> {
    for v in pod.spec.as_ref()?.volumes.iter().flatten() {
        let Some(ed) = &v.empty_dir else { continue };
        let Some(limit) = ed
            .size_limit
            .as_ref()
            .and_then(|q| Quantity::parse(&q.0).ok())
        else {
            continue;
        };
        if limit.sign() <= 0 {
            continue;
        }
        let Some(used) = usage.get(&v.name) else {
            continue;
        };
        if i128::from(*used) > i128::from(limit.value()) {
            return Some(format!(
                "Usage of EmptyDir volume {} exceeds the limit {}. ",
                rkube_api::go_quote::go_quote(&v.name),
                rkube_api::go_quote::go_quote(&limit.to_string())
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        Container, EmptyDirVolumeSource, PodSpec, ResourceRequirements, Volume,
    };
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity as KQ;

    fn c(mem: Option<&str>, restart: Option<&str>) -> Container {
        Container {
            resources: mem.map(|m| ResourceRequirements {
                limits: Some([("memory".to_string(), KQ(m.into()))].into()),
                ..Default::default()
            }),
            restart_policy: restart.map(str::to_string),
            ..Default::default()
        }
    }

    fn pod(containers: Vec<Container>, init: Vec<Container>) -> Pod {
        Pod {
            spec: Some(PodSpec {
                containers,
                init_containers: Some(init),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap()
    }

    #[test]
    fn pod_memory_limits() {
        let mi = 1 << 20;
        let cases = [
            (
                pod(vec![c(Some("64Mi"), None), c(Some("32Mi"), None)], vec![]),
                Some(96 * mi),
            ),
            (
                pod(vec![c(Some("64Mi"), None)], vec![c(Some("128Mi"), None)]),
                Some(128 * mi),
            ),
            (
                pod(
                    vec![c(Some("64Mi"), None)],
                    vec![c(Some("16Mi"), Some("Always"))],
                ),
                Some(80 * mi),
            ),
            (
                pod(vec![c(Some("64Mi"), None), c(None, None)], vec![]),
                None,
            ),
            (pod(vec![c(Some("64Mi"), None)], vec![c(None, None)]), None),
        ];
        for (i, (p, want)) in cases.into_iter().enumerate() {
            assert_eq!(pod_memory_limit(&p), want, "case {i}");
        }
    }

    #[test]
    fn memory_sizes_as_upstream() {
        let mi = 1 << 20;
        let limited = pod(vec![c(Some("64Mi"), None)], vec![]);
        let unlimited = pod(vec![c(None, None)], vec![]);
        let cases = [
            ("nothing known", &unlimited, None, None, None),
            (
                "node allocatable",
                &unlimited,
                None,
                Some(q("1Gi")),
                Some(1024 * mi),
            ),
            ("pod limit", &limited, None, Some(q("1Gi")), Some(64 * mi)),
            ("pod limit, no node", &limited, None, None, Some(64 * mi)),
            (
                "sizeLimit smaller",
                &limited,
                Some(q("16Mi")),
                Some(q("1Gi")),
                Some(16 * mi),
            ),
            (
                "sizeLimit larger than the pod's",
                &limited,
                Some(q("128Mi")),
                Some(q("1Gi")),
                Some(64 * mi),
            ),
            (
                "sizeLimit alone",
                &unlimited,
                Some(q("8Mi")),
                None,
                Some(8 * mi),
            ),
            (
                "zero sizeLimit ignored",
                &unlimited,
                Some(q("0")),
                Some(q("1Gi")),
                Some(1024 * mi),
            ),
        ];
        for (name, p, sl, node, want) in cases {
            assert_eq!(memory_size(p, sl.as_ref(), node.as_ref()), want, "{name}");
        }
    }

    #[test]
    fn limit_violations() {
        let vol = |name: &str, limit: Option<&str>| Volume {
            name: name.into(),
            empty_dir: Some(EmptyDirVolumeSource {
                size_limit: limit.map(|l| KQ(l.into())),
                medium: None,
            }),
            ..Default::default()
        };
        let p = Pod {
            spec: Some(PodSpec {
                volumes: Some(vec![
                    vol("free", None),
                    vol("small", Some("1Mi")),
                    vol("zero", Some("0")),
                ]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let usage = |pairs: &[(&str, u64)]| -> BTreeMap<String, u64> {
            pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
        };
        assert_eq!(
            limit_violation(&p, &usage(&[("free", 1 << 40), ("small", 1 << 20)])),
            None
        );
        assert_eq!(
            limit_violation(&p, &usage(&[("small", (1 << 20) + 1)])),
            Some("Usage of EmptyDir volume \"small\" exceeds the limit \"1Mi\". ".into())
        );
        assert_eq!(limit_violation(&p, &usage(&[("zero", 100)])), None);
    }

    #[test]
    fn usage_counts_blocks_once() {
        let dir = tempfile::tempdir().unwrap();
        let before = disk_usage(dir.path()).unwrap();
        std::fs::write(dir.path().join("a"), vec![1u8; 64 * 1024]).unwrap();
        std::fs::hard_link(dir.path().join("a"), dir.path().join("b")).unwrap();
        let after = disk_usage(dir.path()).unwrap();
        assert!(after - before >= 64 * 1024, "{before} → {after}");
        assert!(
            after - before < 2 * 64 * 1024,
            "hard link counted twice: {before} → {after}"
        );
    }
}
