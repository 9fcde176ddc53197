//! Builds OCI image-layout archives in memory: a single uncompressed layer from a list of
//! files, its image config and manifest, and an `index.json` naming the image. The kubelet
//! builds its sandbox ("pause") image this way, and tests build their images (busybox from
//! Debian's `busybox-static`) the same way, since no registry is reachable.
//!
//! Written here rather than taken from a crate: the only OCI crates build on a registry
//! client; this needs a tar writer (the `tar` crate) and three small JSON documents.

use std::io::Write;

use serde_json::json;

/// The name annotation containerd's importer reads.
pub const CONTAINERD_NAME: &str = "io.containerd.image.name";
/// The OCI reference-name annotation.
pub const OCI_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// One entry of the image's single layer.
#[derive(Debug, Clone)]
pub enum Entry {
    Dir {
        path: String,
        mode: u32,
    },
    File {
        path: String,
        mode: u32,
        data: Vec<u8>,
    },
    Symlink {
        path: String,
        target: String,
    },
}

/// What the image runs and how.
#[derive(Debug, Clone, Default)]
pub struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
}

/// A built image: its manifest and blobs.
#[derive(Debug, Clone)]
pub struct Image {
    /// `(digest, bytes)` of the layer, config and manifest, in that order.
    pub blobs: Vec<(String, Vec<u8>)>,
    pub manifest_digest: String,
    pub manifest: Vec<u8>,
    pub config_digest: String,
    pub layer_digest: String,
}

/// `sha256:<hex>` of the bytes.
pub fn digest(bytes: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut hex = String::with_capacity(64);
    for b in d.as_ref() {
        hex.push_str(&format!("{b:02x}"));
    }
    format!("sha256:{hex}")
}

/// The layer tarball of the entries (parents are not implied: list directories first).
pub fn layer(entries: &[Entry]) -> std::io::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_ustar();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        match entry {
            Entry::Dir { path, mode } => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(*mode);
                header.set_size(0);
                tar.append_data(&mut header, path.trim_start_matches('/'), std::io::empty())?;
            }
            Entry::File { path, mode, data } => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(*mode);
                header.set_size(data.len() as u64);
                tar.append_data(&mut header, path.trim_start_matches('/'), data.as_slice())?;
            }
            Entry::Symlink { path, target } => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                tar.append_link(&mut header, path.trim_start_matches('/'), target)?;
            }
        }
    }
    tar.into_inner()
}

/// Builds a linux/amd64 (or the build's own architecture) image from the entries.
pub fn build(entries: &[Entry], config: &ImageConfig) -> std::io::Result<Image> {
    let layer = layer(entries)?;
    let layer_digest = digest(&layer);
    let mut cfg = serde_json::Map::new();
    if !config.entrypoint.is_empty() {
        cfg.insert("Entrypoint".into(), json!(config.entrypoint));
    }
    if !config.cmd.is_empty() {
        cfg.insert("Cmd".into(), json!(config.cmd));
    }
    if !config.env.is_empty() {
        cfg.insert("Env".into(), json!(config.env));
    }
    if let Some(dir) = &config.working_dir {
        cfg.insert("WorkingDir".into(), json!(dir));
    }
    if let Some(user) = &config.user {
        cfg.insert("User".into(), json!(user));
    }
    let image_config = json!({
        "architecture": oci_arch(),
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": cfg,
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "rkube"}],
    });
    let config_bytes = serde_json::to_vec(&image_config)?;
    let config_digest = digest(&config_bytes);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config_bytes.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer_digest,
            "size": layer.len(),
        }],
    }))?;
    let manifest_digest = digest(&manifest);
    Ok(Image {
        blobs: vec![
            (layer_digest.clone(), layer),
            (config_digest.clone(), config_bytes),
            (manifest_digest.clone(), manifest.clone()),
        ],
        manifest_digest,
        manifest,
        config_digest,
        layer_digest,
    })
}

/// The OCI-layout archive of the image, named `name` (a full reference such as
/// `localhost/rkube/pause:0.1.0`) in both annotations containerd's importer reads.
pub fn archive(image: &Image, name: &str) -> std::io::Result<Vec<u8>> {
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": image.manifest_digest,
            "size": image.manifest.len(),
            "annotations": {CONTAINERD_NAME: name, OCI_REF_NAME: name},
            "platform": {"architecture": oci_arch(), "os": "linux"},
        }],
    }))?;
    let mut tar = tar::Builder::new(Vec::new());
    let mut add = |path: &str, data: &[u8]| -> std::io::Result<()> {
        let mut header = tar::Header::new_ustar();
        header.set_mtime(0);
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, path, data)
    };
    add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    add("index.json", &index)?;
    for (digest, bytes) in &image.blobs {
        let hex = digest.trim_start_matches("sha256:");
        add(&format!("blobs/sha256/{hex}"), bytes)?;
    }
    let mut out = tar.into_inner()?;
    out.flush()?;
    Ok(out)
}

/// The OCI name of the architecture this binary was built for.
pub fn oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_archive_is_an_oci_layout_whose_digests_match() {
        let image = build(
            &[
                Entry::Dir {
                    path: "bin".into(),
                    mode: 0o755,
                },
                Entry::File {
                    path: "bin/x".into(),
                    mode: 0o755,
                    data: b"hello".to_vec(),
                },
                Entry::Symlink {
                    path: "bin/y".into(),
                    target: "x".into(),
                },
            ],
            &ImageConfig {
                entrypoint: vec!["/bin/x".into()],
                ..Default::default()
            },
        )
        .unwrap();
        let bytes = archive(&image, "localhost/t:1").unwrap();
        let mut ar = tar::Archive::new(bytes.as_slice());
        let mut names = Vec::new();
        for entry in ar.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().display().to_string();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
            if let Some(hex) = path.strip_prefix("blobs/sha256/") {
                assert_eq!(digest(&data), format!("sha256:{hex}"), "blob {path}");
            }
            if path == "index.json" {
                let index: serde_json::Value = serde_json::from_slice(&data).unwrap();
                assert_eq!(
                    index["manifests"][0]["digest"],
                    image.manifest_digest.as_str()
                );
                assert_eq!(
                    index["manifests"][0]["annotations"][CONTAINERD_NAME],
                    "localhost/t:1"
                );
            }
            names.push(path);
        }
        assert_eq!(names.len(), 5, "{names:?}");
        let manifest: serde_json::Value = serde_json::from_slice(&image.manifest).unwrap();
        assert_eq!(manifest["layers"][0]["digest"], image.layer_digest.as_str());
        // the layer's entries are as given
        let layer = &image.blobs[0].1;
        let mut ar = tar::Archive::new(layer.as_slice());
        let kinds: Vec<_> = ar
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().display().to_string(),
                    e.header().entry_type(),
                )
            })
            .collect();
        assert_eq!(kinds[0], ("bin".into(), tar::EntryType::Directory));
        assert_eq!(kinds[2], ("bin/y".into(), tar::EntryType::Symlink));
    }
}
