use std::path::{Path, PathBuf};

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

use crate::audit::{AuditAttributes, AuditEvent, AuditLog, AuditLogOptions, Level};

fn event(n: usize) -> AuditEvent {
    let attrs = AuditAttributes {
        user: format!("user-{n}"),
        verb: "get".to_string(),
        path: "/version".to_string(),
        ..Default::default()
    };
    let mut ev = AuditEvent::new(Level::Metadata, &attrs, "/version", Timestamp::now());
    ev.set_response(200, None, false);
    ev
}

fn read_lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}")))
        .collect()
}

fn usernames(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .map(|l| {
            l["user"]["username"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"))
}

fn open(path: &Path, options: AuditLogOptions) -> AuditLog {
    AuditLog::open(path, options).unwrap_or_else(|e| panic!("{e}"))
}

/// Rotated copies of `audit.log` in `dir`, oldest first.
fn backups(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{e}"))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            name.starts_with("audit-20") && name.ends_with(".log")
        })
        .collect();
    found.sort();
    found
}

#[tokio::test]
async fn events_are_written_as_json_lines_in_order_after_flush() {
    let dir = tempdir();
    let path = dir.path().join("logs/audit.log");
    let log = open(&path, AuditLogOptions::default());
    for n in 0..3 {
        log.log(event(n));
    }
    log.flush().await;
    let lines = read_lines(&path);
    assert_eq!(usernames(&lines), ["user-0", "user-1", "user-2"]);
    for line in &lines {
        assert_eq!(line["kind"], "Event");
        assert_eq!(line["apiVersion"], "audit.k8s.io/v1");
    }
    assert_eq!(log.dropped(), 0);
}

#[tokio::test]
async fn reopening_appends() {
    let dir = tempdir();
    let path = dir.path().join("audit.log");
    for n in 0..2 {
        let log = open(&path, AuditLogOptions::default());
        log.log(event(n));
        log.flush().await;
    }
    assert_eq!(usernames(&read_lines(&path)), ["user-0", "user-1"]);
}

#[cfg(unix)]
#[tokio::test]
async fn the_log_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempdir();
    let path = dir.path().join("new/audit.log");
    let log = open(&path, AuditLogOptions::default());
    log.log(event(0));
    log.flush().await;
    let mode = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or_else(|e| panic!("{e}"))
    };
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&dir.path().join("new")), 0o700);
}

#[tokio::test]
async fn a_full_queue_drops_and_counts_instead_of_blocking() {
    let dir = tempdir();
    let path = dir.path().join("audit.log");
    let options = AuditLogOptions {
        buffer_size: 1,
        ..Default::default()
    };
    let log = open(&path, options);
    const LOGGED: usize = 5000;
    for n in 0..LOGGED {
        log.log(event(n));
    }
    log.flush().await;
    let written = read_lines(&path).len();
    // Whatever the writer kept up with, every event is either in the file or counted.
    assert_eq!(written as u64 + log.dropped(), LOGGED as u64);
    assert!(written > 0);
}

#[tokio::test]
async fn the_file_rotates_by_size_and_keeps_max_backups() {
    let dir = tempdir();
    let path = dir.path().join("audit.log");
    let line_len = serde_json::to_vec(&event(0))
        .map(|v| v.len() + 1)
        .unwrap_or(0) as u64;
    let options = AuditLogOptions {
        max_backups: 2,
        ..Default::default()
    };
    // Room for three lines per file.
    let log = AuditLog::open_with_limit(&path, &options, line_len * 3 + line_len / 2)
        .unwrap_or_else(|e| panic!("{e}"));
    for n in 0..20 {
        log.log(event(n));
        log.flush().await;
    }
    let kept = backups(dir.path());
    assert_eq!(kept.len(), 2, "{kept:?}");
    let current = read_lines(&path);
    assert!(!current.is_empty() && current.len() <= 3);
    // The newest events survive, in order, across the backups and the live file.
    let mut tail: Vec<String> = Vec::new();
    for backup in &kept {
        tail.extend(usernames(&read_lines(backup)));
    }
    tail.extend(usernames(&current));
    let want: Vec<String> = (20 - tail.len()..20).map(|n| format!("user-{n}")).collect();
    assert_eq!(tail, want);
}

#[tokio::test]
async fn rotation_prunes_backups_older_than_max_age() {
    let dir = tempdir();
    let path = dir.path().join("audit.log");
    let old = Timestamp::now()
        .checked_sub(SignedDuration::from_hours(24 * 10))
        .unwrap_or_else(|e| panic!("{e}"));
    let old_name = format!("audit-{}.log", old.strftime("%Y-%m-%dT%H-%M-%S%.3f"));
    std::fs::write(dir.path().join(&old_name), "{}\n").unwrap_or_else(|e| panic!("{e}"));
    // Files that are not rotated copies are never touched.
    for other in ["audit-notes.log", "other.log"] {
        std::fs::write(dir.path().join(other), "x").unwrap_or_else(|e| panic!("{e}"));
    }
    let options = AuditLogOptions {
        max_age_days: 1,
        ..Default::default()
    };
    let log = AuditLog::open_with_limit(&path, &options, 1).unwrap_or_else(|e| panic!("{e}"));
    log.log(event(0));
    log.log(event(1));
    log.flush().await;
    assert!(!dir.path().join(&old_name).exists(), "old backup kept");
    assert_eq!(backups(dir.path()).len(), 1, "the fresh backup is kept");
    assert!(dir.path().join("audit-notes.log").exists());
    assert!(dir.path().join("other.log").exists());
}

#[test]
fn opening_an_unwritable_path_fails() {
    let dir = tempdir();
    let file = dir.path().join("plain");
    std::fs::write(&file, "x").unwrap_or_else(|e| panic!("{e}"));
    // A path under a regular file cannot be created.
    let err = AuditLog::open(file.join("audit.log"), AuditLogOptions::default())
        .expect_err("path under a file");
    assert!(err.to_string().contains("audit.log"), "{err}");
}
