//! hostPath volumes: the `type` checks upstream's hostPath plugin makes before a container
//! may mount the path (`checkTypeInternal`), with its messages. [`decide`] is the pure part.

use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

/// What is at a path (symlinks followed, as upstream's `GetFileType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileType {
    Directory,
    File,
    Socket,
    CharDevice,
    BlockDevice,
    /// A FIFO or anything else.
    Other,
}

/// What the check asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing to do; the path may be mounted.
    Ok,
    /// Create the directory (mode 0755, parents too).
    MakeDir,
    /// Create an empty file (mode 0644).
    MakeFile,
    /// The check failed with this message.
    Fail(String),
}

/// Upstream's `checkTypeInternal`: `existing` is what is at `path` (None when nothing is).
pub fn decide(path: &str, type_: &str, existing: Option<FileType>) -> Action {
    let fail =
        |what: &str| Action::Fail(format!("hostPath type check failed: {path} is not {what}"));
    match type_ {
        "" => Action::Ok,
        "DirectoryOrCreate" if existing.is_none() => Action::MakeDir,
        "DirectoryOrCreate" | "Directory" => {
            if existing == Some(FileType::Directory) {
                Action::Ok
            } else {
                fail("a directory")
            }
        }
        "FileOrCreate" if existing.is_none() => Action::MakeFile,
        "FileOrCreate" | "File" => {
            if existing == Some(FileType::File) {
                Action::Ok
            } else {
                fail("a file")
            }
        }
        "Socket" => {
            if existing == Some(FileType::Socket) {
                Action::Ok
            } else {
                fail("a socket file")
            }
        }
        "CharDevice" => {
            if existing == Some(FileType::CharDevice) {
                Action::Ok
            } else {
                fail("a character device")
            }
        }
        "BlockDevice" => {
            if existing == Some(FileType::BlockDevice) {
                Action::Ok
            } else {
                fail("a block device")
            }
        }
        other => Action::Fail(format!("{other} is an invalid volume type")),
    }
}

/// Upstream's `ValidatePathNoBacksteps`.
pub fn validate_no_backsteps(path: &str) -> Result<(), String> {
    if path.split('/').any(|p| p == "..") {
        return Err("must not contain '..'".to_string());
    }
    Ok(())
}

/// What is at `path`, following symlinks.
pub fn file_type(path: &Path) -> io::Result<Option<FileType>> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let t = meta.file_type();
    Ok(Some(if t.is_dir() {
        FileType::Directory
    } else if t.is_file() {
        FileType::File
    } else if t.is_socket() {
        FileType::Socket
    } else if t.is_char_device() {
        FileType::CharDevice
    } else if t.is_block_device() {
        FileType::BlockDevice
    } else {
        FileType::Other
    }))
}

/// The hostPath plugin's SetUp: validates the path and runs the type check, creating the
/// directory or file the type asks for.
pub fn set_up(path: &str, type_: &str) -> Result<(), String> {
    validate_no_backsteps(path).map_err(|e| format!("invalid HostPath `{path}`: {e}"))?;
    if type_.is_empty() {
        return Ok(());
    }
    let existing = file_type(Path::new(path)).map_err(|e| e.to_string())?;
    match decide(path, type_, existing) {
        Action::Ok => Ok(()),
        Action::Fail(m) => Err(m),
        Action::MakeDir => {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(path)
                .map_err(|e| format!("mkdir {path}: {e}"))
        }
        Action::MakeFile => {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o644)
                .open(path)
                .map(drop)
                .map_err(|e| format!("open {path}: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use FileType::*;

    #[test]
    fn type_checks_as_upstream() {
        let p = "/data";
        let fail =
            |what: &str| Action::Fail(format!("hostPath type check failed: /data is not {what}"));
        let cases = [
            ("", None, Action::Ok),
            ("", Some(Other), Action::Ok),
            ("DirectoryOrCreate", None, Action::MakeDir),
            ("DirectoryOrCreate", Some(Directory), Action::Ok),
            ("DirectoryOrCreate", Some(File), fail("a directory")),
            ("Directory", Some(Directory), Action::Ok),
            ("Directory", None, fail("a directory")),
            ("Directory", Some(Socket), fail("a directory")),
            ("FileOrCreate", None, Action::MakeFile),
            ("FileOrCreate", Some(File), Action::Ok),
            ("FileOrCreate", Some(Directory), fail("a file")),
            ("File", Some(File), Action::Ok),
            ("File", None, fail("a file")),
            ("File", Some(CharDevice), fail("a file")),
            ("Socket", Some(Socket), Action::Ok),
            ("Socket", Some(File), fail("a socket file")),
            ("Socket", None, fail("a socket file")),
            ("CharDevice", Some(CharDevice), Action::Ok),
            ("CharDevice", Some(BlockDevice), fail("a character device")),
            ("BlockDevice", Some(BlockDevice), Action::Ok),
            ("BlockDevice", Some(CharDevice), fail("a block device")),
            (
                "Fifo",
                Some(Other),
                Action::Fail("Fifo is an invalid volume type".into()),
            ),
        ];
        for (t, existing, want) in cases {
            assert_eq!(decide(p, t, existing), want, "{t} {existing:?}");
        }
    }

    #[test]
    fn backsteps_are_refused() {
        assert_eq!(
            set_up("/a/../etc", ""),
            Err("invalid HostPath `/a/../etc`: must not contain '..'".into())
        );
        assert!(set_up("/a..b/c", "").is_ok());
    }

    #[test]
    fn creating_types_create_and_real_types_are_seen() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("x/y");
        set_up(d.to_str().unwrap(), "DirectoryOrCreate").unwrap();
        assert_eq!(file_type(&d).unwrap(), Some(Directory));
        let f = dir.path().join("f");
        set_up(f.to_str().unwrap(), "FileOrCreate").unwrap();
        assert_eq!(file_type(&f).unwrap(), Some(File));
        assert_eq!(file_type(Path::new("/dev/null")).unwrap(), Some(CharDevice));
        assert_eq!(
            set_up(f.to_str().unwrap(), "Directory"),
            Err(format!(
                "hostPath type check failed: {} is not a directory",
                f.display()
            ))
        );
        let sock = dir.path().join("s.sock");
        let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        set_up(sock.to_str().unwrap(), "Socket").unwrap();
    }
}
