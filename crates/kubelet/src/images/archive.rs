//! Names image archives right before containerd imports them (`rkube image import`).
//!
//! `ctr images import` (containerd 1.6) reads an archive as an OCI layout when it holds an
//! `oci-layout` file, else as a docker archive (`manifest.json`). It names images as follows,
//! and the CRI plugin only finds an image by its normalized name
//! (`docker.io/library/busybox:1`), so some of these names are useless to a pod:
//!
//! | archive names the image by                     | ctr's name                   | here                          |
//! |------------------------------------------------|------------------------------|-------------------------------|
//! | docker archive `RepoTags` `busybox:1`          | `docker.io/library/busybox:1`| the same (archive unchanged)  |
//! | `io.containerd.image.name` `busybox:1`         | `busybox:1` (verbatim)       | `docker.io/library/busybox:1` |
//! | `org.opencontainers.image.ref.name` `x.io/a:1` | `x.io/a:1`                   | the same (archive unchanged)  |
//! | `org.opencontainers.image.ref.name` `busybox:1`| `busybox:1` (verbatim)       | `docker.io/library/busybox:1` |
//! | `org.opencontainers.image.ref.name` `1.0`      | `import-<date>:1.0`          | `<--base-name>:1.0`, or an error asking for `--base-name` |
//!
//! So [`plan`] computes each image's normalized name, and when it differs from ctr's, the
//! archive is copied with an `index.json` whose entries carry that name as
//! `io.containerd.image.name`, which ctr takes verbatim. (`ctr --base-name` is no help: it
//! drops every full name that does not start with it, and normalizes nothing.)

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::reference;
use crate::oci::{CONTAINERD_NAME, OCI_REF_NAME};

/// An archive that cannot be imported as it is named.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("reading {file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: unrecognized image format: neither an OCI layout (oci-layout, index.json) nor a docker archive (manifest.json)")]
    Unrecognized { file: String },
    #[error("{file}: {what} is not valid JSON: {message}")]
    Json {
        file: String,
        what: &'static str,
        message: String,
    },
    #[error("{file}: the image {digest} is named only by the tag {tag:?}; give its repository with --base-name (e.g. --base-name example.com/app)")]
    TagOnly {
        file: String,
        digest: String,
        tag: String,
    },
    #[error("{file}: invalid image name {name:?}: {reason}")]
    BadName {
        file: String,
        name: String,
        reason: reference::ReferenceError,
    },
    #[error("{file} names no image (no RepoTags, io.containerd.image.name or org.opencontainers.image.ref.name); the image would have no name to run it by")]
    Unnamed { file: String },
}

/// The format `ctr images import` will read the archive as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    OciLayout,
    DockerArchive,
}

/// What an archive says about its images.
#[derive(Debug, Clone, PartialEq)]
pub struct Contents {
    pub format: Format,
    /// The OCI `index.json`, or the docker `manifest.json`.
    pub document: Value,
}

/// How to import an archive.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The normalized names the images will have.
    pub names: Vec<String>,
    /// A replacement `index.json`, when ctr would name some image otherwise.
    pub new_index: Option<Vec<u8>>,
}

/// Whether a reference names a repository (`a/b`, `a:1`, `a@sha256:..`) rather than being
/// only a tag: ctr's own test.
fn is_full_reference(name: &str) -> bool {
    name.contains(['/', ':', '@'])
}

/// The names the archive's images get, and the `index.json` that gives them those names.
pub fn plan(
    file: &str,
    contents: &Contents,
    base_name: Option<&str>,
) -> Result<Plan, ArchiveError> {
    let normalize = |name: &str| {
        reference::normalize(name).map_err(|reason| ArchiveError::BadName {
            file: file.to_string(),
            name: name.to_string(),
            reason,
        })
    };
    let mut names = Vec::new();
    let mut new_index = None;
    match contents.format {
        Format::DockerArchive => {
            // containerd's importer normalizes RepoTags itself
            for image in contents.document.as_array().into_iter().flatten() {
                for tag in image["RepoTags"].as_array().into_iter().flatten() {
                    if let Some(tag) = tag.as_str() {
                        names.push(normalize(tag)?);
                    }
                }
            }
        }
        Format::OciLayout => {
            let mut index = contents.document.clone();
            let mut changed = false;
            let manifests = index
                .get_mut("manifests")
                .and_then(Value::as_array_mut)
                .map(std::mem::take)
                .unwrap_or_default();
            let mut out = Vec::with_capacity(manifests.len());
            for mut m in manifests {
                let annotation = |key: &str| m["annotations"][key].as_str().map(str::to_string);
                let (containerd_name, ref_name) =
                    (annotation(CONTAINERD_NAME), annotation(OCI_REF_NAME));
                let digest = m["digest"].as_str().unwrap_or_default().to_string();
                // (the name ctr would give, the name it should have)
                let (ctr_name, name) = match (
                    containerd_name.filter(|n| !n.is_empty()),
                    ref_name.filter(|n| !n.is_empty()),
                ) {
                    (Some(n), _) => (Some(n.clone()), Some(normalize(&n)?)),
                    (None, Some(r)) if is_full_reference(&r) => {
                        (Some(r.clone()), Some(normalize(&r)?))
                    }
                    (None, Some(tag)) => match base_name {
                        Some(base) => (None, Some(normalize(&format!("{base}:{tag}"))?)),
                        None => {
                            return Err(ArchiveError::TagOnly {
                                file: file.to_string(),
                                digest,
                                tag,
                            })
                        }
                    },
                    (None, None) => (None, None),
                };
                if let Some(name) = name {
                    if ctr_name.as_deref() != Some(name.as_str()) {
                        changed = true;
                        let annotations = m.as_object_mut().map(|o| {
                            o.entry("annotations")
                                .or_insert_with(|| Value::Object(Default::default()))
                        });
                        if let Some(Value::Object(a)) = annotations {
                            a.insert(CONTAINERD_NAME.into(), Value::String(name.clone()));
                        }
                    }
                    names.push(name);
                }
                out.push(m);
            }
            if let Some(slot) = index.get_mut("manifests") {
                *slot = Value::Array(out);
            }
            if changed {
                new_index = Some(serde_json::to_vec(&index).unwrap_or_default());
            }
        }
    }
    if names.is_empty() {
        return Err(ArchiveError::Unnamed {
            file: file.to_string(),
        });
    }
    Ok(Plan { names, new_index })
}

/// The archive's member name without a leading `./`.
fn member_name(path: &Path) -> String {
    let s = path.to_string_lossy();
    s.trim_start_matches("./").to_string()
}

/// Compression of an archive, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    /// containerd reads these, rkube does not look inside.
    Zstd,
}

fn compression(file: &mut File) -> std::io::Result<Compression> {
    let mut magic = [0u8; 4];
    let n = file.read(&mut magic)?;
    file.seek(SeekFrom::Start(0))?;
    Ok(match &magic[..n] {
        [0x1f, 0x8b, ..] => Compression::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd] => Compression::Zstd,
        _ => Compression::None,
    })
}

fn open(path: &Path) -> Result<(Box<dyn Read>, Compression), ArchiveError> {
    let io = |source| ArchiveError::Io {
        file: path.display().to_string(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    let kind = compression(&mut file).map_err(io)?;
    let reader: Box<dyn Read> = match kind {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(file))),
        _ => Box::new(BufReader::new(file)),
    };
    Ok((reader, kind))
}

/// Reads the archive's `oci-layout`, `index.json` and `manifest.json` (None for a
/// zstd-compressed archive, which is left to containerd).
pub fn inspect(path: &Path) -> Result<Option<Contents>, ArchiveError> {
    let file = path.display().to_string();
    let io = |source| ArchiveError::Io {
        file: file.clone(),
        source,
    };
    let (reader, kind) = open(path)?;
    if kind == Compression::Zstd {
        return Ok(None);
    }
    let mut archive = tar::Archive::new(reader);
    let (mut layout, mut index, mut manifest) = (false, None, None);
    for entry in archive.entries().map_err(io)? {
        let mut entry = entry.map_err(io)?;
        let name = member_name(&entry.path().map_err(io)?);
        let slot = match name.as_str() {
            "oci-layout" => {
                layout = true;
                continue;
            }
            "index.json" => &mut index,
            "manifest.json" => &mut manifest,
            _ => continue,
        };
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).map_err(io)?;
        *slot = Some(bytes);
    }
    let parse = |what: &'static str, bytes: &[u8]| {
        serde_json::from_slice(bytes).map_err(|e| ArchiveError::Json {
            file: file.clone(),
            what,
            message: e.to_string(),
        })
    };
    match (layout, index, manifest) {
        (true, Some(index), _) => Ok(Some(Contents {
            format: Format::OciLayout,
            document: parse("index.json", &index)?,
        })),
        (false, _, Some(manifest)) => Ok(Some(Contents {
            format: Format::DockerArchive,
            document: parse("manifest.json", &manifest)?,
        })),
        _ => Err(ArchiveError::Unrecognized { file }),
    }
}

/// Copies the (decompressed) archive to `dst` with `index.json` replaced.
pub fn rewrite(src: &Path, dst: &Path, new_index: &[u8]) -> Result<(), ArchiveError> {
    let io_src = |source| ArchiveError::Io {
        file: src.display().to_string(),
        source,
    };
    let io_dst = |source| ArchiveError::Io {
        file: dst.display().to_string(),
        source,
    };
    let (reader, _) = open(src)?;
    let mut archive = tar::Archive::new(reader);
    let out = File::create(dst).map_err(io_dst)?;
    let mut builder = tar::Builder::new(std::io::BufWriter::new(out));
    for entry in archive.entries().map_err(io_src)? {
        let entry = entry.map_err(io_src)?;
        let path = entry.path().map_err(io_src)?.into_owned();
        let mut header = entry.header().clone();
        let kind = header.entry_type();
        if member_name(&path) == "index.json" {
            header.set_size(new_index.len() as u64);
            builder
                .append_data(&mut header, &path, new_index)
                .map_err(io_dst)?;
        } else if kind.is_symlink() || kind.is_hard_link() {
            let target = entry
                .link_name()
                .map_err(io_src)?
                .map(|t| t.into_owned())
                .unwrap_or_default();
            builder
                .append_link(&mut header, &path, target)
                .map_err(io_dst)?;
        } else {
            builder
                .append_data(&mut header, &path, entry)
                .map_err(io_dst)?;
        }
    }
    builder
        .into_inner()
        .and_then(|mut w| std::io::Write::flush(&mut w))
        .map_err(io_dst)
}

/// An archive ready for `ctr images import`.
#[derive(Debug)]
pub struct Prepared {
    /// The file to import: the archive itself, or its renamed copy.
    pub file: PathBuf,
    /// The names its images will have (empty when the archive was not looked into).
    pub names: Vec<String>,
    copy: Option<PathBuf>,
}

impl Prepared {
    /// Whether the archive had to be copied to rename its images.
    pub fn renamed(&self) -> bool {
        self.copy.is_some()
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        if let Some(copy) = &self.copy {
            let _ = std::fs::remove_file(copy);
        }
    }
}

/// Inspects the archive and, when its images would otherwise be misnamed, writes a renamed
/// copy into `scratch_dir` (removed when the result is dropped).
pub fn prepare(
    path: &Path,
    base_name: Option<&str>,
    scratch_dir: &Path,
) -> Result<Prepared, ArchiveError> {
    let Some(contents) = inspect(path)? else {
        return Ok(Prepared {
            file: path.to_path_buf(),
            names: Vec::new(),
            copy: None,
        });
    };
    let plan = plan(&path.display().to_string(), &contents, base_name)?;
    let Some(new_index) = plan.new_index else {
        return Ok(Prepared {
            file: path.to_path_buf(),
            names: plan.names,
            copy: None,
        });
    };
    let stem = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let copy = scratch_dir.join(format!(".import-{}-{stem}", std::process::id()));
    let prepared = Prepared {
        file: copy.clone(),
        names: plan.names,
        copy: Some(copy.clone()),
    };
    rewrite(path, &copy, &new_index)?;
    Ok(prepared)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn oci(annotations: Value) -> Contents {
        Contents {
            format: Format::OciLayout,
            document: json!({"schemaVersion": 2, "manifests": [
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:aa", "size": 1, "annotations": annotations}
            ]}),
        }
    }

    fn names_in(index: &[u8]) -> Vec<String> {
        let v: Value = serde_json::from_slice(index).unwrap();
        v["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                m["annotations"][CONTAINERD_NAME]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn oci_names_are_normalized_and_tag_only_names_need_a_base() {
        // (annotations, --base-name, expected name, whether index.json is rewritten)
        for (annotations, base, name, rewritten) in [
            (
                json!({OCI_REF_NAME: "localhost/rkube/pause:1"}),
                None,
                "localhost/rkube/pause:1",
                false,
            ),
            (
                json!({OCI_REF_NAME: "busybox:1"}),
                None,
                "docker.io/library/busybox:1",
                true,
            ),
            (json!({OCI_REF_NAME: "x.io/a"}), None, "x.io/a:latest", true),
            (
                json!({CONTAINERD_NAME: "docker.io/library/b:2", OCI_REF_NAME: "2"}),
                None,
                "docker.io/library/b:2",
                false,
            ),
            (
                json!({CONTAINERD_NAME: "b:2", OCI_REF_NAME: "2"}),
                None,
                "docker.io/library/b:2",
                true,
            ),
            (
                json!({OCI_REF_NAME: "1.0"}),
                Some("example.com/app"),
                "example.com/app:1.0",
                true,
            ),
            (
                json!({OCI_REF_NAME: "1.0"}),
                Some("app"),
                "docker.io/library/app:1.0",
                true,
            ),
            // a full name is kept even when it is not under --base-name
            (
                json!({OCI_REF_NAME: "x.io/a:1"}),
                Some("example.com/app"),
                "x.io/a:1",
                false,
            ),
        ] {
            let p = plan("f.tar", &oci(annotations.clone()), base).unwrap();
            assert_eq!(p.names, [name], "{annotations}");
            assert_eq!(p.new_index.is_some(), rewritten, "{annotations}");
            if let Some(index) = p.new_index {
                assert_eq!(names_in(&index), [name]);
                // the OCI name stays as it was
                let v: Value = serde_json::from_slice(&index).unwrap();
                assert_eq!(
                    v["manifests"][0]["annotations"][OCI_REF_NAME],
                    annotations[OCI_REF_NAME]
                );
            }
        }
        let err = plan("f.tar", &oci(json!({OCI_REF_NAME: "1.0"})), None).unwrap_err();
        assert!(
            matches!(err, ArchiveError::TagOnly { ref tag, .. } if tag == "1.0"),
            "{err}"
        );
        assert!(err.to_string().contains("--base-name"));
        let err = plan("f.tar", &oci(json!({OCI_REF_NAME: "Bad/Name:1"})), None).unwrap_err();
        assert!(matches!(err, ArchiveError::BadName { .. }), "{err}");
        let err = plan("f.tar", &oci(json!({})), None).unwrap_err();
        assert!(matches!(err, ArchiveError::Unnamed { .. }), "{err}");
    }

    #[test]
    fn docker_archives_keep_their_repo_tags() {
        let contents = Contents {
            format: Format::DockerArchive,
            document: json!([{"Config": "c.json", "RepoTags": ["busybox:5", "localhost/a/b:6"], "Layers": []}]),
        };
        let p = plan("d.tar", &contents, Some("ignored")).unwrap();
        assert_eq!(p.names, ["docker.io/library/busybox:5", "localhost/a/b:6"]);
        assert!(p.new_index.is_none());
        let untagged = Contents {
            format: Format::DockerArchive,
            document: json!([{"Config": "c.json", "RepoTags": null, "Layers": []}]),
        };
        assert!(matches!(
            plan("d.tar", &untagged, None),
            Err(ArchiveError::Unnamed { .. })
        ));
    }

    fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in files {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, path, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn archives_are_recognized_as_containerd_recognizes_them_and_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let index = br#"{"schemaVersion":2,"manifests":[{"digest":"sha256:aa","annotations":{"org.opencontainers.image.ref.name":"1.0"}}]}"#;
        let manifest = br#"[{"Config":"c.json","RepoTags":["busybox:5"],"Layers":[]}]"#;
        let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
        // an OCI layout wins over manifest.json only with its oci-layout file
        let both = dir.path().join("both.tar");
        std::fs::write(
            &both,
            tar_of(&[
                ("./oci-layout", layout),
                ("./index.json", index),
                ("./manifest.json", manifest),
                ("blobs/sha256/aa", b"x"),
            ]),
        )
        .unwrap();
        assert_eq!(inspect(&both).unwrap().unwrap().format, Format::OciLayout);
        let no_layout = dir.path().join("nolayout.tar");
        std::fs::write(
            &no_layout,
            tar_of(&[("index.json", index), ("manifest.json", manifest)]),
        )
        .unwrap();
        assert_eq!(
            inspect(&no_layout).unwrap().unwrap().format,
            Format::DockerArchive
        );
        let neither = dir.path().join("neither.tar");
        std::fs::write(&neither, tar_of(&[("index.json", index)])).unwrap();
        assert!(matches!(
            inspect(&neither),
            Err(ArchiveError::Unrecognized { .. })
        ));

        // gzip is read through; the renamed copy holds every other member unchanged
        let gz = dir.path().join("both.tar.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut enc, &std::fs::read(&both).unwrap()).unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        let prepared = prepare(&gz, Some("example.com/app"), dir.path()).unwrap();
        assert!(prepared.renamed());
        assert_eq!(prepared.names, ["example.com/app:1.0"]);
        let copy = prepared.file.clone();
        let contents = inspect(&copy).unwrap().unwrap();
        assert_eq!(
            contents.document["manifests"][0]["annotations"][CONTAINERD_NAME],
            "example.com/app:1.0"
        );
        let mut members = Vec::new();
        for e in tar::Archive::new(File::open(&copy).unwrap())
            .entries()
            .unwrap()
        {
            let mut e = e.unwrap();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            members.push((member_name(&e.path().unwrap()), data));
        }
        assert_eq!(members.len(), 4);
        assert_eq!(members[3], ("blobs/sha256/aa".to_string(), b"x".to_vec()));
        drop(prepared);
        assert!(!copy.exists(), "the renamed copy is removed");

        // zstd is left to containerd
        let zst = dir.path().join("x.tar.zst");
        std::fs::write(&zst, [0x28, 0xb5, 0x2f, 0xfd, 0, 0]).unwrap();
        assert!(inspect(&zst).unwrap().is_none());
        let p = prepare(&zst, None, dir.path()).unwrap();
        assert!(!p.renamed() && p.names.is_empty());
    }
}
