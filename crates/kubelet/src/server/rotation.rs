//! Container log rotation, as upstream's container log manager: when a running container's
//! log grows past `containerLogMaxSize` (10Mi), it is renamed to `<log>.<YYYYMMDD-hhmmss>`
//! and the runtime is told to reopen it (CRI `ReopenContainerLog`), keeping at most
//! `containerLogMaxFiles` (5) files per container, the live one included. Rotated files are
//! kept as they are (upstream gzips all but the newest; nothing reads them here).
//!
//! [`plan`] decides (pure); [`rotate_all`] is the driver the kubelet runs periodically
//! (upstream every 10 seconds).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use k8s_cri::v1 as cri;

use crate::cri::{CallExt, Cri, CriError};

/// `containerLogMaxSize` and `containerLogMaxFiles`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub max_size: u64,
    pub max_files: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_size: 10 * 1024 * 1024,
            max_files: 5,
        }
    }
}

/// What to do with one container's logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Rotated files to delete, oldest first.
    pub remove: Vec<PathBuf>,
    /// Where the live log goes (then the runtime reopens it); `None`: no rotation.
    pub rotate_to: Option<PathBuf>,
}

/// The suffix a rotated log gets.
pub fn rotation_suffix(now: Timestamp) -> String {
    now.strftime("%Y%m%d-%H%M%S").to_string()
}

/// Decides the rotation of the live log `log` of `size` bytes, given the names of the files
/// beside it, at `now`.
pub fn plan(log: &Path, size: u64, siblings: &[String], policy: Policy, now: Timestamp) -> Plan {
    if size < policy.max_size || policy.max_files < 2 {
        return Plan::default();
    }
    let Some(base) = log.file_name().and_then(|n| n.to_str()) else {
        return Plan::default();
    };
    let dir = log.parent().unwrap_or(Path::new("."));
    let prefix = format!("{base}.");
    let mut rotated: Vec<&String> = siblings
        .iter()
        .filter(|n| n.starts_with(&prefix) && !n.ends_with(".tmp"))
        .collect();
    // The suffix is a timestamp, so names sort oldest first.
    rotated.sort();
    // After this rotation there is one more rotated file and the live one.
    let keep = policy.max_files - 2;
    let excess = rotated.len().saturating_sub(keep);
    Plan {
        remove: rotated[..excess].iter().map(|n| dir.join(n)).collect(),
        rotate_to: Some(dir.join(format!("{base}.{}", rotation_suffix(now)))),
    }
}

/// A rotation that failed.
#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    #[error(transparent)]
    Cri(#[from] CriError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Rotates the logs of the running containers that need it; `labels` narrows which
/// containers (e.g. this node's marker label). Returns the files rotated.
pub async fn rotate_all(
    cri: &Cri,
    policy: Policy,
    labels: HashMap<String, String>,
) -> Result<Vec<PathBuf>, RotationError> {
    let mut rt = cri.runtime.clone();
    let containers = rt
        .list_containers(cri::ListContainersRequest {
            filter: Some(cri::ContainerFilter {
                state: Some(cri::ContainerStateValue {
                    state: cri::ContainerState::ContainerRunning as i32,
                }),
                label_selector: labels,
                ..Default::default()
            }),
        })
        .await
        .call("ListContainers")?
        .containers;
    let mut rotated = Vec::new();
    for c in containers {
        let status = match rt
            .container_status(cri::ContainerStatusRequest {
                container_id: c.id.clone(),
                verbose: false,
            })
            .await
            .call("ContainerStatus")
        {
            Ok(s) => s,
            // gone meanwhile
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e.into()),
        };
        let Some(log) = status.status.map(|s| s.log_path).filter(|p| !p.is_empty()) else {
            continue;
        };
        if let Some(to) = rotate_one(cri, &c.id, Path::new(&log), policy).await? {
            rotated.push(to);
        }
    }
    Ok(rotated)
}

/// Rotates one container's log if [`plan`] says so.
pub async fn rotate_one(
    cri: &Cri,
    container_id: &str,
    log: &Path,
    policy: Policy,
) -> Result<Option<PathBuf>, RotationError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| RotationError::Io { path, source }
    };
    let size = match std::fs::metadata(log) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(log)(e)),
    };
    let dir = log.parent().unwrap_or(Path::new("."));
    let siblings: Vec<String> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    let plan = plan(log, size, &siblings, policy, Timestamp::now());
    for old in &plan.remove {
        match std::fs::remove_file(old) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(old)(e)),
        }
    }
    let Some(to) = plan.rotate_to else {
        return Ok(None);
    };
    std::fs::rename(log, &to).map_err(io(log))?;
    let reopened = cri
        .runtime
        .clone()
        .reopen_container_log(cri::ReopenContainerLogRequest {
            container_id: container_id.to_string(),
        })
        .await
        .call("ReopenContainerLog");
    if let Err(e) = reopened {
        // Put the log back so the runtime keeps writing where readers look.
        let _ = std::fs::rename(&to, log);
        return Err(e.into());
    }
    Ok(Some(to))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn small_logs_stay_and_big_ones_rotate_keeping_at_most_max_files() {
        let now: Timestamp = "2024-03-05T06:07:08Z".parse().expect("ts");
        let log = Path::new("/logs/ns_p_u/c/0.log");
        let policy = Policy {
            max_size: 100,
            max_files: 3,
        };
        assert_eq!(
            plan(log, 99, &names(&["0.log"]), policy, now),
            Plan::default()
        );
        assert_eq!(
            plan(log, 100, &names(&["0.log"]), policy, now),
            Plan {
                remove: vec![],
                rotate_to: Some("/logs/ns_p_u/c/0.log.20240305-060708".into()),
            }
        );
        // max 3 files: live + 2 rotated after this rotation, so 1 old rotated file stays
        let siblings = names(&[
            "0.log",
            "0.log.20240101-000000",
            "0.log.20240301-000000",
            "0.log.20240201-000000",
            "0.log.20240301-000000.tmp",
            "1.log",
            "1.log.20240101-000000",
        ]);
        assert_eq!(
            plan(log, 1000, &siblings, policy, now).remove,
            vec![
                PathBuf::from("/logs/ns_p_u/c/0.log.20240101-000000"),
                PathBuf::from("/logs/ns_p_u/c/0.log.20240201-000000"),
            ]
        );
        // a policy of one file never rotates (upstream requires at least two)
        assert_eq!(
            plan(
                log,
                1000,
                &siblings,
                Policy {
                    max_size: 1,
                    max_files: 1
                },
                now
            ),
            Plan::default()
        );
    }
}
