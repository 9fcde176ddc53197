//! subPath and subPathExpr mounts, as upstream's `makeMounts` and `pkg/volume/util/subpath`:
//! the expression is expanded with the container's environment, the path may not be
//! absolute or step back, a missing directory is created inside the volume one element at
//! a time without following symlinks, and the resolved path is bind-mounted from an fd
//! opened the same way to `<pod>/volume-subpaths/<volume>/<container>/<index>`, so a symlink
//! swapped in later cannot redirect the container's mount outside the volume.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::mounts;

/// Upstream's `expansion.Expand` with `ExpandContainerVolumeMounts`' mapping: `$(VAR)` is the
/// variable's value, `$$` a literal `$`; a variable that is unset or empty is an error
/// naming every such variable.
pub fn expand_subpath_expr(expr: &str, env: &BTreeMap<String, String>) -> Result<String, String> {
    let mut missing = BTreeSet::new();
    let out = expand(expr, |name| match env.get(name) {
        Some(v) if !v.is_empty() => v.clone(),
        _ => {
            missing.insert(name.to_string());
            String::new()
        }
    });
    if !missing.is_empty() {
        return Err(format!(
            "missing value for {}",
            missing.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    Ok(out)
}

/// Upstream's `third_party/forked/golang/expansion.Expand`: `$(name)` → `mapping(name)`,
/// `$$` → `$`, an unterminated `$(` and any other `$x` stay as written.
pub fn expand(input: &str, mut mapping: impl FnMut(&str) -> String) -> String {
    let bytes = input.as_bytes();
    let mut out = String::with_capacity(input.len());
    let mut checkpoint = 0;
    let mut cursor = 0;
    while cursor < bytes.len() {
        if bytes[cursor] == b'$' && cursor + 1 < bytes.len() {
            out.push_str(&input[checkpoint..cursor]);
            let rest = &input[cursor + 1..];
            let advance;
            match rest.as_bytes()[0] {
                b'$' => {
                    out.push('$');
                    advance = 1;
                }
                b'(' => match rest[1..].find(')') {
                    Some(end) => {
                        out.push_str(&mapping(&rest[1..1 + end]));
                        advance = end + 2;
                    }
                    None => {
                        out.push_str("$(");
                        advance = 1;
                    }
                },
                _ => {
                    // `$` and the next character, kept as written
                    let c = rest.chars().next().unwrap_or_default();
                    out.push('$');
                    out.push(c);
                    advance = c.len_utf8();
                }
            }
            cursor += advance;
            checkpoint = cursor + 1;
        }
        cursor += 1;
    }
    if checkpoint < input.len() {
        out.push_str(&input[checkpoint..]);
    }
    out
}

/// The checks `makeMounts` makes on a (expanded) subPath.
pub fn validate_subpath(sub_path: &str) -> Result<(), String> {
    if sub_path.starts_with('/') {
        return Err(format!(
            "error SubPath `{sub_path}` must not be an absolute path"
        ));
    }
    if sub_path.split('/').any(|p| p == "..") {
        return Err(format!(
            "unable to provision SubPath `{sub_path}`: must not contain '..'"
        ));
    }
    Ok(())
}

/// Lexically cleans an absolute path (Go's `filepath.Clean`).
pub fn clean_abs(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// Upstream's `PathWithinBase`: `full` is `base` or below it, lexically.
pub fn path_within_base(full: &Path, base: &Path) -> bool {
    clean_abs(full).starts_with(clean_abs(base))
}

fn nofollow_dir() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC
}

/// Upstream's `doSafeOpen`: opens `path` (inside `base`, symlinks already resolved) one
/// element at a time with `O_PATH|O_NOFOLLOW`, so no element can be a symlink.
pub fn safe_open(path: &Path, base: &Path) -> io::Result<OwnedFd> {
    let path = clean_abs(path);
    let base = clean_abs(base);
    let rel = path
        .strip_prefix(&base)
        .map_err(|_| {
            io::Error::other(format!(
                "path {} is outside of allowed base {}",
                path.display(),
                base.display()
            ))
        })?
        .to_path_buf();
    let mut fd: OwnedFd = nix::fcntl::open(&base, nofollow_dir(), Mode::empty())
        .map_err(|e| io::Error::other(format!("cannot open directory {}: {e}", base.display())))?;
    let mut current = base.clone();
    for seg in rel.components() {
        let Component::Normal(seg) = seg else {
            return Err(io::Error::other(format!(
                "unexpected path element in {}",
                rel.display()
            )));
        };
        current.push(seg);
        let child = nix::fcntl::openat(
            &fd,
            seg,
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io::Error::other(format!("cannot open {}: {e}", current.display())))?;
        let st = nix::sys::stat::fstat(&child).map_err(|e| {
            io::Error::other(format!(
                "error running fstat on {} with {e}",
                current.display()
            ))
        })?;
        if st.st_mode & libc_s_ifmt() == libc_s_iflnk() {
            return Err(io::Error::other(format!(
                "unexpected symlink found {}",
                current.display()
            )));
        }
        fd = child;
    }
    Ok(fd)
}

const fn libc_s_ifmt() -> u32 {
    0o170000
}
const fn libc_s_iflnk() -> u32 {
    0o120000
}

/// Upstream's `SafeMakeDir`: creates `sub_path` below `base` with `perm`, each new element
/// made with mkdirat on an fd of its parent opened without following symlinks, and chmod-ed
/// to `perm` (the umask applied at creation).
pub fn safe_make_dir(sub_path: &str, base: &Path, perm: u32) -> io::Result<()> {
    let pathname = base.join(sub_path);
    if !path_within_base(&pathname, base) {
        return Err(io::Error::other(format!(
            "path {} is outside of allowed base {}",
            pathname.display(),
            base.display()
        )));
    }
    if let Ok(meta) = std::fs::metadata(&pathname) {
        if meta.is_dir() {
            return Ok(());
        }
        return Err(io::Error::other(format!(
            "mkdir {}: not a directory",
            pathname.display()
        )));
    }
    // the longest existing prefix, and what is left to create
    let mut existing = base.to_path_buf();
    let mut to_create = Vec::new();
    let rel = Path::new(sub_path);
    let mut comps = rel
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .peekable();
    while let Some(c) = comps.next() {
        let next = existing.join(c);
        if std::fs::symlink_metadata(&next).is_ok() && to_create.is_empty() {
            existing = next;
        } else {
            to_create.push(c.as_os_str().to_owned());
            to_create.extend(comps.by_ref().map(|c| c.as_os_str().to_owned()));
        }
    }
    let full_existing = std::fs::canonicalize(&existing).map_err(|e| {
        io::Error::other(format!(
            "error opening directory {}: {e}",
            existing.display()
        ))
    })?;
    let base_real = std::fs::canonicalize(base)?;
    if !path_within_base(&full_existing, &base_real) {
        return Err(io::Error::other(format!(
            "path {} is outside of allowed base {}",
            full_existing.display(),
            base_real.display()
        )));
    }
    let mut parent = open_dir_within(&full_existing, &base_real)?;
    let mut current = full_existing;
    for dir in to_create {
        current.push(&dir);
        nix::sys::stat::mkdirat(
            &parent,
            dir.as_os_str(),
            Mode::from_bits_truncate(perm & 0o777),
        )
        .map_err(|e| {
            io::Error::other(format!(
                "cannot create directory {}: {e}",
                current.display()
            ))
        })?;
        let child = nix::fcntl::openat(&parent, dir.as_os_str(), nofollow_dir(), Mode::empty())
            .map_err(|e| io::Error::other(format!("cannot open {}: {e}", current.display())))?;
        nix::sys::stat::fchmod(&child, Mode::from_bits_truncate(perm & 0o777))
            .map_err(|e| io::Error::other(format!("chmod {:?} failed: {e}", current.display())))?;
        parent = child;
    }
    Ok(())
}

/// Opens the directory `dir` below `base` element by element, refusing symlinks (a
/// readable fd, unlike [`safe_open`]'s `O_PATH`, so mkdirat can use it).
fn open_dir_within(dir: &Path, base: &Path) -> io::Result<OwnedFd> {
    let rel = dir
        .strip_prefix(base)
        .map_err(|_| {
            io::Error::other(format!(
                "path {} is outside of allowed base {}",
                dir.display(),
                base.display()
            ))
        })?
        .to_path_buf();
    let mut fd: OwnedFd = nix::fcntl::open(base, nofollow_dir(), Mode::empty())
        .map_err(|e| io::Error::other(format!("cannot open directory {}: {e}", base.display())))?;
    let mut current = base.to_path_buf();
    for seg in rel.components() {
        current.push(seg);
        fd = nix::fcntl::openat(&fd, seg.as_os_str(), nofollow_dir(), Mode::empty()).map_err(
            |e| io::Error::other(format!("cannot open directory {}: {e}", current.display())),
        )?;
    }
    Ok(fd)
}

/// Where one container's subPath mount of a volume is bound.
pub fn bind_target(pod_dir: &Path, volume: &str, container: &str, index: usize) -> PathBuf {
    pod_dir
        .join("volume-subpaths")
        .join(volume)
        .join(container)
        .join(index.to_string())
}

/// Upstream's `doBindSubPath`: resolves symlinks of `path` and `volume_path`, checks the
/// result is inside the volume, opens it safely and bind-mounts the fd to the target,
/// reusing a mount already there when it is the same file.
pub fn bind_subpath(path: &Path, volume_path: &Path, target: &Path) -> io::Result<PathBuf> {
    let volume_real = std::fs::canonicalize(volume_path).map_err(|e| {
        io::Error::other(format!(
            "error resolving symlinks in {:?}: {e}",
            volume_path.display()
        ))
    })?;
    let real = std::fs::canonicalize(path).map_err(|e| {
        io::Error::other(format!(
            "error resolving symlinks in {:?}: {e}",
            path.display()
        ))
    })?;
    if !path_within_base(&real, &volume_real) {
        return Err(io::Error::other(format!(
            "subpath {:?} not within volume path {:?}",
            real.display(),
            volume_real.display()
        )));
    }
    let fd = safe_open(&real, &volume_real)?;
    let st = nix::sys::stat::fstat(&fd).map_err(io::Error::other)?;
    let is_dir = st.st_mode & libc_s_ifmt() == 0o040000;
    if mounts::is_mount_point(target)? {
        // Already bound (a container restarted): reuse it if it is the same file.
        if let Ok(meta) = std::fs::metadata(target) {
            if meta.dev() == st.st_dev && meta.ino() == st.st_ino {
                return Ok(target.to_path_buf());
            }
        }
        mounts::unmount(target)?;
    }
    if let Some(parent) = target.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o750)
            .create(parent)?;
    }
    if is_dir {
        match std::fs::DirBuilder::new().mode(0o750).create(target) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    } else {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(target)?;
    }
    let source = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    mounts::bind_mount(&source, target, false)
        .map_err(|e| io::Error::other(format!("error mounting {}: {e}", path.display())))?;
    Ok(target.to_path_buf())
}

/// Unmounts and removes `<pod>/volume-subpaths` (upstream's `CleanSubPaths`).
pub fn clean_subpaths(pod_dir: &Path) -> io::Result<()> {
    let root = pod_dir.join("volume-subpaths");
    if !root.exists() {
        return Ok(());
    }
    mounts::unmount_all_under(&root)?;
    mounts::remove_all_one_filesystem(&root)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn subpath_expressions_expand_as_upstream() {
        let e = env(&[("POD", "web-0"), ("NS", "prod"), ("EMPTY", "")]);
        let cases = [
            ("logs/$(POD)", Ok("logs/web-0")),
            ("$(NS)/$(POD)", Ok("prod/web-0")),
            ("plain", Ok("plain")),
            ("$$(POD)", Ok("$(POD)")),
            ("a$$b", Ok("a$b")),
            ("cost$", Ok("cost$")),
            ("$x", Ok("$x")),
            ("$(POD", Ok("$(POD")),
            ("é$(POD)é", Ok("éweb-0é")),
            ("$(NOPE)/$(POD)", Err("missing value for NOPE")),
            ("$(B)$(A)$(EMPTY)", Err("missing value for A, B, EMPTY")),
        ];
        for (expr, want) in cases {
            assert_eq!(
                expand_subpath_expr(expr, &e),
                want.map(str::to_string).map_err(str::to_string),
                "{expr}"
            );
        }
    }

    #[test]
    fn subpaths_are_relative_and_do_not_step_back() {
        let cases = [
            ("a/b", Ok(())),
            ("a..b", Ok(())),
            (
                "/etc",
                Err("error SubPath `/etc` must not be an absolute path"),
            ),
            (
                "../x",
                Err("unable to provision SubPath `../x`: must not contain '..'"),
            ),
            (
                "a/../../x",
                Err("unable to provision SubPath `a/../../x`: must not contain '..'"),
            ),
        ];
        for (p, want) in cases {
            assert_eq!(validate_subpath(p), want.map_err(str::to_string), "{p}");
        }
    }

    #[test]
    fn within_base() {
        let cases = [
            ("/v", "/v", true),
            ("/v/a", "/v", true),
            ("/v/a/../b", "/v", true),
            ("/v/../w", "/v", false),
            ("/vx", "/v", false),
            ("/", "/v", false),
        ];
        for (full, base, want) in cases {
            assert_eq!(
                path_within_base(Path::new(full), Path::new(base)),
                want,
                "{full} in {base}"
            );
        }
    }

    #[test]
    fn safe_make_dir_creates_with_the_volume_mode_and_refuses_escapes() {
        let dir = tempfile::tempdir().unwrap();
        let vol = dir.path().join("vol");
        std::fs::create_dir(&vol).unwrap();
        safe_make_dir("a/b/c", &vol, 0o777).unwrap();
        use std::os::unix::fs::PermissionsExt;
        for p in ["a", "a/b", "a/b/c"] {
            let m = std::fs::metadata(vol.join(p)).unwrap().permissions().mode() & 0o777;
            assert_eq!(m, 0o777, "{p}");
        }
        safe_make_dir("a/b/c", &vol, 0o777).unwrap();
        // a symlink out of the volume is not followed to create directories outside
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, vol.join("link")).unwrap();
        let err = safe_make_dir("link/x", &vol, 0o755).unwrap_err();
        assert!(err.to_string().contains("outside of allowed base"), "{err}");
        assert!(!outside.join("x").exists());
        std::fs::write(vol.join("file"), b"").unwrap();
        assert!(safe_make_dir("file", &vol, 0o755).is_err());
    }

    #[test]
    fn safe_open_refuses_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let vol = dir.path();
        std::fs::create_dir(vol.join("d")).unwrap();
        std::os::unix::fs::symlink("d", vol.join("l")).unwrap();
        assert!(safe_open(&vol.join("d"), vol).is_ok());
        let err = safe_open(&vol.join("l"), vol).unwrap_err();
        assert!(err.to_string().contains("unexpected symlink"), "{err}");
        assert!(safe_open(Path::new("/etc"), vol).is_err());
    }
}
