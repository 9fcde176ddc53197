//! Loads image archives (OCI layout or docker-archive tarballs) into a containerd, for the
//! sandbox image and `rkube image import`.
//!
//! CRI has no import call, so this goes through containerd's own client, `ctr`, which the
//! Debian containerd package ships (as k3s goes through containerd's Go client). Images land
//! in the `k8s.io` namespace, where containerd's CRI plugin finds them, unpacked for its
//! snapshotter.

use std::path::Path;

use tokio::process::Command;

/// An image archive could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("running ctr (containerd's client, from the containerd package): {0}")]
    Ctr(std::io::Error),
    #[error("importing {file}: {message}")]
    Failed { file: String, message: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Imports the archive at `file` into the containerd listening on `socket`, and returns the
/// names of the images it held (from `io.containerd.image.name`, the OCI ref-name annotation,
/// or the docker-archive's tags).
pub async fn import_file(socket: &Path, file: &Path) -> Result<Vec<String>, ImportError> {
    let out = Command::new("ctr")
        .arg("--address")
        .arg(socket)
        .args([
            "--namespace",
            "k8s.io",
            "images",
            "import",
            "--all-platforms",
        ])
        .arg(file)
        .output()
        .await
        .map_err(ImportError::Ctr)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(ImportError::Failed {
            file: file.display().to_string(),
            message: format!("{}{}", stdout.trim(), stderr.trim()),
        });
    }
    // ctr prints "unpacking <name> (sha256:...)...done" per image
    Ok(stdout
        .lines()
        .filter_map(|l| l.strip_prefix("unpacking "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect())
}

/// Imports an archive held in memory (written to a temporary file beside the socket).
pub async fn import_bytes(
    socket: &Path,
    name: &str,
    bytes: &[u8],
) -> Result<Vec<String>, ImportError> {
    let dir = socket.parent().unwrap_or(Path::new("/tmp"));
    let file = dir.join(format!(".import-{}-{name}.tar", std::process::id()));
    tokio::fs::write(&file, bytes).await?;
    let result = import_file(socket, &file).await;
    let _ = tokio::fs::remove_file(&file).await;
    result
}
