//! Atomic projection of a set of files into a volume directory (upstream's
//! `pkg/volume/util/atomic_writer.go`), so a container never sees a half-updated volume.
//!
//! The files live in a hidden timestamped directory (`..2024_01_02_15_04_05.123456789`);
//! `..data` is a symlink to it, and each top-level name the container sees is a symlink
//! through `..data` (`key -> ..data/key`, `dir -> ..data/dir`). An update writes a new
//! timestamped directory, points `..data_tmp` at it and renames that over `..data` (one
//! atomic rename), then adds and prunes the visible links and removes the old directory.
//! Names starting with `..` are reserved.
//!
//! [`plan`] decides what a write does from the payload and the current version; [`write`]
//! carries the plan out.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const MAX_FILE_NAME_LENGTH: usize = 255;
const MAX_PATH_LENGTH: usize = 4096;
/// The symlink to the current timestamped directory.
pub const DATA_DIR_NAME: &str = "..data";
/// The symlink renamed over [`DATA_DIR_NAME`].
pub const NEW_DATA_DIR_NAME: &str = "..data_tmp";

/// One file of a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProjection {
    pub data: Vec<u8>,
    /// Permission bits (`0o644`).
    pub mode: u32,
    /// The file's owner, when the pod's containers all run as one user (service account
    /// tokens only).
    pub fs_user: Option<u32>,
}

impl FileProjection {
    pub fn new(data: impl Into<Vec<u8>>, mode: u32) -> Self {
        FileProjection {
            data: data.into(),
            mode,
            fs_user: None,
        }
    }
}

/// Relative path → file.
pub type Payload = BTreeMap<String, FileProjection>;

/// What runs on a new version's directory before it is published (fsGroup ownership).
pub type SetPerms<'a> = &'a dyn Fn(&Path) -> io::Result<()>;

/// Checks one payload path as upstream does: not empty, relative, at most 4096 characters,
/// no `..` element, no element longer than 255, not starting with `..`.
pub fn validate_path(target: &str) -> Result<(), String> {
    if target.is_empty() {
        return Err("invalid path: must not be empty: \"\"".to_string());
    }
    if target.starts_with('/') {
        return Err(format!("invalid path: must be relative path: {target}"));
    }
    if target.len() > MAX_PATH_LENGTH {
        return Err(format!(
            "invalid path: must be less than or equal to {MAX_PATH_LENGTH} characters"
        ));
    }
    let items: Vec<&str> = target.split('/').collect();
    for item in &items {
        if *item == ".." {
            return Err(format!("invalid path: must not contain '..': {target}"));
        }
        if item.len() > MAX_FILE_NAME_LENGTH {
            return Err(format!(
                "invalid path: filenames must be less than or equal to {MAX_FILE_NAME_LENGTH} characters"
            ));
        }
    }
    if items[0].starts_with("..") && items[0].len() > 2 {
        return Err(format!("invalid path: must not start with '..': {target}"));
    }
    Ok(())
}

/// Go's `path.Clean` of a relative path: no empty or `.` elements, no trailing slash.
pub fn clean(p: &str) -> String {
    let parts: Vec<&str> = p
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    if parts.is_empty() {
        ".".to_string()
    } else {
        parts.join("/")
    }
}

/// Validates every path and returns the payload keyed by cleaned paths.
pub fn validate_payload(payload: &Payload) -> Result<Payload, String> {
    let mut out = Payload::new();
    for (k, v) in payload {
        validate_path(k)?;
        out.insert(clean(k), v.clone());
    }
    Ok(out)
}

/// What the current timestamped directory holds: every relative path (files and
/// directories) and the content of each regular file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Current {
    pub paths: BTreeSet<String>,
    pub files: BTreeMap<String, Vec<u8>>,
}

/// What one write does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Write a new timestamped directory and switch `..data` to it.
    pub write_data: bool,
    /// Top-level names to link as `name -> ..data/name` if missing.
    pub links: BTreeSet<String>,
    /// Paths of the old version the payload no longer has; only top-level ones are
    /// removed from the visible directory (deeper ones go with the old data directory).
    pub remove: BTreeSet<String>,
}

/// Decides a write: new data is written when there is no current version, when a file is
/// new or its content differs, or when a path has to go. (A changed mode alone does not
/// cause a write, as upstream.)
pub fn plan(payload: &Payload, current: Option<&Current>) -> Plan {
    let links = payload
        .keys()
        .map(|p| p.split('/').next().unwrap_or(p).to_string())
        .collect();
    let Some(cur) = current else {
        return Plan {
            write_data: true,
            links,
            remove: BTreeSet::new(),
        };
    };
    let mut wanted = BTreeSet::new();
    for file in payload.keys() {
        let mut sub = file.as_str();
        loop {
            wanted.insert(sub.to_string());
            match sub.rfind('/') {
                Some(i) => sub = &sub[..i],
                None => break,
            }
        }
    }
    let remove: BTreeSet<String> = cur.paths.difference(&wanted).cloned().collect();
    let changed = payload
        .iter()
        .any(|(p, f)| cur.files.get(p) != Some(&f.data));
    Plan {
        write_data: changed || !remove.is_empty(),
        links,
        remove,
    }
}

/// Reads the timestamped directory `dir` into a [`Current`].
fn read_current(dir: &Path) -> io::Result<Option<Current>> {
    if !dir.exists() {
        return Ok(None);
    }
    let mut cur = Current::default();
    for entry in walkdir::WalkDir::new(dir).min_depth(1) {
        let entry = entry.map_err(io::Error::other)?;
        let rel = entry
            .path()
            .strip_prefix(dir)
            .map_err(io::Error::other)?
            .to_string_lossy()
            .into_owned();
        if entry.file_type().is_file() {
            cur.files.insert(rel.clone(), std::fs::read(entry.path())?);
        }
        cur.paths.insert(rel);
    }
    Ok(Some(cur))
}

/// Projects `payload` into `target_dir` (which must exist). `set_perms` runs on the new
/// timestamped directory before it is published (fsGroup ownership). Returns whether new
/// data was written. Callers serialise writes to one directory.
pub fn write(
    target_dir: &Path,
    payload: &Payload,
    set_perms: Option<SetPerms<'_>>,
) -> io::Result<bool> {
    let payload = validate_payload(payload).map_err(io::Error::other)?;
    let data_dir = target_dir.join(DATA_DIR_NAME);
    let old_ts = match std::fs::read_link(&data_dir) {
        Ok(p) => Some(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let current = match &old_ts {
        Some(ts) => read_current(&target_dir.join(ts))?,
        None => None,
    };
    // A `..data` pointing at a vanished directory counts as no version: rewrite all.
    let plan = plan(&payload, current.as_ref());
    let mut remove_old = None;
    if plan.write_data {
        let ts_dir = new_timestamp_dir(target_dir)?;
        let published = (|| -> io::Result<()> {
            write_payload(&ts_dir, &payload)?;
            if let Some(f) = set_perms {
                f(&ts_dir)?;
            }
            let ts_name = ts_dir
                .file_name()
                .ok_or_else(|| io::Error::other("timestamped directory without a name"))?;
            let tmp_link = target_dir.join(NEW_DATA_DIR_NAME);
            let _ = std::fs::remove_file(&tmp_link);
            std::os::unix::fs::symlink(ts_name, &tmp_link)?;
            if let Err(e) = std::fs::rename(&tmp_link, &data_dir) {
                let _ = std::fs::remove_file(&tmp_link);
                return Err(e);
            }
            Ok(())
        })();
        if let Err(e) = published {
            let _ = std::fs::remove_dir_all(&ts_dir);
            return Err(e);
        }
        // The new directory always has a fresh name, so the old one can go.
        remove_old = old_ts;
    }
    for name in &plan.links {
        let visible = target_dir.join(name);
        if std::fs::symlink_metadata(&visible).is_err() {
            std::os::unix::fs::symlink(Path::new(DATA_DIR_NAME).join(name), &visible)?;
        }
    }
    let mut last_err = None;
    for p in plan.remove.iter().filter(|p| !p.contains('/')) {
        if let Err(e) = std::fs::remove_file(target_dir.join(p)) {
            if e.kind() != io::ErrorKind::NotFound {
                last_err = Some(e);
            }
        }
    }
    if let Some(e) = last_err {
        return Err(e);
    }
    if let Some(old) = remove_old {
        let old = target_dir.join(old);
        if old.exists() {
            std::fs::remove_dir_all(old)?;
        }
    }
    Ok(plan.write_data)
}

/// Creates `..<UTC timestamp>.<random>` with mode 0755 (MkdirTemp's pattern).
fn new_timestamp_dir(target_dir: &Path) -> io::Result<PathBuf> {
    let stamp = jiff::Timestamp::now().strftime("..%Y_%m_%d_%H_%M_%S.");
    loop {
        let dir = target_dir.join(format!("{stamp}{}", rand::random::<u32>()));
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
                return Ok(dir);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

fn write_payload(dir: &Path, payload: &Payload) -> io::Result<()> {
    for (rel, file) in payload {
        let full = dir.join(rel);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&full, &file.data)?;
        // The umask applied at creation; set the exact mode.
        std::fs::set_permissions(&full, std::fs::Permissions::from_mode(file.mode & 0o7777))?;
        if let Some(uid) = file.fs_user {
            std::os::unix::fs::chown(&full, Some(uid), None)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(files: &[(&str, &str)]) -> Payload {
        files
            .iter()
            .map(|(p, d)| (p.to_string(), FileProjection::new(d.as_bytes(), 0o644)))
            .collect()
    }

    fn current(files: &[(&str, &str)], dirs: &[&str]) -> Current {
        let mut c = Current::default();
        for (p, d) in files {
            c.paths.insert(p.to_string());
            c.files.insert(p.to_string(), d.as_bytes().to_vec());
        }
        for d in dirs {
            c.paths.insert(d.to_string());
        }
        c
    }

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn paths_are_validated_as_upstream() {
        let long_name = "a".repeat(256);
        let long_path = "a/".repeat(2049);
        let cases: Vec<(&str, Option<String>)> = vec![
            ("key", None),
            ("dir/key", None),
            ("..", Some("invalid path: must not contain '..': ..".into())),
            ("a..b", None),
            ("", Some("invalid path: must not be empty: \"\"".into())),
            (
                "/abs",
                Some("invalid path: must be relative path: /abs".into()),
            ),
            (
                "a/../b",
                Some("invalid path: must not contain '..': a/../b".into()),
            ),
            (
                "..data",
                Some("invalid path: must not start with '..': ..data".into()),
            ),
            (
                "..a/b",
                Some("invalid path: must not start with '..': ..a/b".into()),
            ),
            (
                &long_name,
                Some("invalid path: filenames must be less than or equal to 255 characters".into()),
            ),
            (
                &long_path,
                Some("invalid path: must be less than or equal to 4096 characters".into()),
            ),
        ];
        for (path, want) in cases {
            assert_eq!(validate_path(path).err(), want, "{path:.20}");
        }
    }

    #[test]
    fn paths_are_cleaned() {
        for (p, want) in [
            ("a", "a"),
            ("a//b", "a/b"),
            ("./a/./b/", "a/b"),
            ("a/b/", "a/b"),
        ] {
            assert_eq!(clean(p), want);
        }
    }

    #[test]
    fn write_plans() {
        struct Case {
            name: &'static str,
            payload: Payload,
            current: Option<Current>,
            write: bool,
            links: &'static [&'static str],
            remove: &'static [&'static str],
        }
        let cases = [
            Case {
                name: "first write",
                payload: payload(&[("a", "1"), ("d/b", "2")]),
                current: None,
                write: true,
                links: &["a", "d"],
                remove: &[],
            },
            Case {
                name: "unchanged",
                payload: payload(&[("a", "1"), ("d/b", "2")]),
                current: Some(current(&[("a", "1"), ("d/b", "2")], &["d"])),
                write: false,
                links: &["a", "d"],
                remove: &[],
            },
            Case {
                name: "changed content",
                payload: payload(&[("a", "1"), ("d/b", "3")]),
                current: Some(current(&[("a", "1"), ("d/b", "2")], &["d"])),
                write: true,
                links: &["a", "d"],
                remove: &[],
            },
            Case {
                name: "new file",
                payload: payload(&[("a", "1"), ("c", "3")]),
                current: Some(current(&[("a", "1")], &[])),
                write: true,
                links: &["a", "c"],
                remove: &[],
            },
            Case {
                name: "removed file and directory",
                payload: payload(&[("a", "1")]),
                current: Some(current(&[("a", "1"), ("d/b", "2")], &["d"])),
                write: true,
                links: &["a"],
                remove: &["d", "d/b"],
            },
            Case {
                name: "file moved deeper keeps its parent",
                payload: payload(&[("d/e/b", "2")]),
                current: Some(current(&[("d/b", "2")], &["d"])),
                write: true,
                links: &["d"],
                remove: &["d/b"],
            },
            Case {
                name: "everything removed",
                payload: Payload::new(),
                current: Some(current(&[("a", "1")], &[])),
                write: true,
                links: &[],
                remove: &["a"],
            },
            Case {
                name: "empty stays empty",
                payload: Payload::new(),
                current: Some(current(&[], &[])),
                write: false,
                links: &[],
                remove: &[],
            },
        ];
        for c in cases {
            let p = plan(&c.payload, c.current.as_ref());
            assert_eq!(p.write_data, c.write, "{}", c.name);
            assert_eq!(p.links, set(c.links), "{}", c.name);
            assert_eq!(p.remove, set(c.remove), "{}", c.name);
        }
    }

    #[test]
    fn writes_switch_the_data_link_and_prune() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path();
        let mut p = payload(&[("a", "1"), ("d/b", "2")]);
        p.get_mut("a").unwrap().mode = 0o600;
        assert!(write(t, &p, None).unwrap());
        let first = std::fs::read_link(t.join("..data")).unwrap();
        assert!(first.to_string_lossy().starts_with(".."), "{first:?}");
        assert_eq!(
            std::fs::read_link(t.join("a")).unwrap(),
            Path::new("..data/a")
        );
        assert_eq!(
            std::fs::read_link(t.join("d")).unwrap(),
            Path::new("..data/d")
        );
        assert_eq!(std::fs::read_to_string(t.join("d/b")).unwrap(), "2");
        let mode = std::fs::metadata(t.join("a")).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o600);
        let ts_mode = std::fs::metadata(t.join(&first))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777;
        assert_eq!(ts_mode, 0o755);

        // unchanged: nothing written
        assert!(!write(t, &p, None).unwrap());
        assert_eq!(std::fs::read_link(t.join("..data")).unwrap(), first);

        // a removed visible link comes back without a new version (upstream issue 121472)
        std::fs::remove_file(t.join("a")).unwrap();
        assert!(!write(t, &p, None).unwrap());
        assert_eq!(std::fs::read_to_string(t.join("a")).unwrap(), "1");

        // update: new version, `d` pruned, old version gone
        let p2 = payload(&[("a", "new"), ("c", "3")]);
        assert!(write(t, &p2, None).unwrap());
        let second = std::fs::read_link(t.join("..data")).unwrap();
        assert_ne!(first, second);
        assert!(!t.join(&first).exists());
        assert!(std::fs::symlink_metadata(t.join("d")).is_err());
        assert_eq!(std::fs::read_to_string(t.join("a")).unwrap(), "new");
        assert_eq!(std::fs::read_to_string(t.join("c")).unwrap(), "3");
        let mut names: Vec<String> = std::fs::read_dir(t)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec![
                second.to_string_lossy().into_owned(),
                "..data".into(),
                "a".into(),
                "c".into()
            ]
        );
    }

    #[test]
    fn invalid_payloads_write_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let err = write(dir.path(), &payload(&[("..x", "1")]), None).unwrap_err();
        assert!(
            err.to_string().contains("must not start with '..'"),
            "{err}"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
