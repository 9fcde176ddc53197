//! The log backend (`--audit-log-path`): one JSON event per line, to a file or stdout.
//!
//! Requests hand events to a bounded queue and never wait: when the queue is full the
//! event is dropped and counted, as upstream's batching backend does, because auditing
//! must not stall the API. A writer thread drains the queue in batches, writes the lines
//! and flushes once per batch. The file is created owner-only (0600 in a 0700 directory)
//! and rotated by size the way upstream's lumberjack writer does: the full file is renamed
//! to `<name>-<UTC time>.<ext>` and old copies are pruned by count and age.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::{mpsc, oneshot};

use super::AuditEvent;

/// Most messages handled between two flushes of the writer.
const MAX_BATCH: usize = 1000;
/// lumberjack's size limit when `--audit-log-maxsize` is 0.
const DEFAULT_MAX_SIZE_MB: u64 = 100;
/// The time format in rotated file names (lumberjack's `2006-01-02T15-04-05.000`); it
/// sorts in time order as text.
const BACKUP_TIME_FORMAT: &str = "%Y-%m-%dT%H-%M-%S%.3f";
const BACKUP_TIME_LEN: usize = "2006-01-02T15-04-05.000".len();
/// Ages beyond this many days (about 27 centuries) are treated as this.
const MAX_AGE_DAYS_CAP: u64 = 1_000_000;

/// The `--audit-log-*` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditLogOptions {
    /// `--audit-log-maxsize`: megabytes before the file is rotated; 0 means 100, as
    /// upstream's writer treats it.
    pub max_size_mb: u64,
    /// `--audit-log-maxbackup`: rotated files kept; 0 keeps all.
    pub max_backups: usize,
    /// `--audit-log-maxage`: days rotated files are kept; 0 keeps them regardless of age.
    pub max_age_days: u64,
    /// `--audit-log-batch-buffer-size`: events queued before new ones are dropped.
    pub buffer_size: usize,
}

impl Default for AuditLogOptions {
    fn default() -> Self {
        AuditLogOptions {
            max_size_mb: 0,
            max_backups: 0,
            max_age_days: 0,
            buffer_size: 10_000,
        }
    }
}

/// Why the log could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum AuditLogError {
    #[error("cannot open audit log {path:?}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("cannot start the audit log writer: {0}")]
    Spawn(io::Error),
}

enum Message {
    Event(Box<AuditEvent>),
    Flush(oneshot::Sender<()>),
}

/// A running log backend. Dropping it lets the writer finish the queue and stop.
#[derive(Debug)]
pub struct AuditLog {
    tx: mpsc::Sender<Message>,
    dropped: Arc<AtomicU64>,
}

impl AuditLog {
    /// Opens (creating if needed) the log at `path`, or stdout for `-`, and starts the
    /// writer thread.
    pub fn open(path: impl AsRef<Path>, options: AuditLogOptions) -> Result<Self, AuditLogError> {
        let max_mb = match options.max_size_mb {
            0 => DEFAULT_MAX_SIZE_MB,
            mb => mb,
        };
        Self::open_with_limit(path.as_ref(), &options, max_mb.saturating_mul(1024 * 1024))
    }

    /// [`open`](Self::open) with the rotation size in bytes, so tests can rotate small
    /// files.
    pub(crate) fn open_with_limit(
        path: &Path,
        options: &AuditLogOptions,
        max_bytes: u64,
    ) -> Result<Self, AuditLogError> {
        let sink = if path == Path::new("-") {
            Sink::Stdout
        } else {
            let open_err = |source| AuditLogError::Open {
                path: path.to_path_buf(),
                source,
            };
            let file = open_log_file(path).map_err(open_err)?;
            let size = file.metadata().map_err(open_err)?.len();
            Sink::File(Box::new(FileSink {
                path: path.to_path_buf(),
                file: BufWriter::new(file),
                size,
                max_bytes,
                max_backups: options.max_backups,
                max_age_days: options.max_age_days,
                last_backup: None,
            }))
        };
        let (tx, rx) = mpsc::channel(options.buffer_size.max(1));
        std::thread::Builder::new()
            .name("audit-log".to_string())
            .spawn(move || run_writer(rx, sink))
            .map_err(AuditLogError::Spawn)?;
        Ok(AuditLog {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Queues `event` for writing without waiting; if the queue is full the event is
    /// dropped and counted.
    pub fn log(&self, event: AuditEvent) {
        if self.tx.try_send(Message::Event(Box::new(event))).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            // Powers of two: a burst of drops is reported without a line per event.
            if n.is_power_of_two() {
                tracing::warn!(dropped = n, "audit log queue full: events dropped");
            }
        }
    }

    /// Waits until every event logged before this call is written and flushed.
    pub async fn flush(&self) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Message::Flush(ack)).await.is_ok() {
            // An error means the writer has stopped; nothing more can be flushed.
            let _ = done.await;
        }
    }

    /// Events dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

fn run_writer(mut rx: mpsc::Receiver<Message>, mut sink: Sink) {
    while let Some(first) = rx.blocking_recv() {
        let mut acks = Vec::new();
        let mut failed = None;
        let mut next = Some(first);
        let mut handled = 0;
        while let Some(message) = next {
            match message {
                Message::Event(event) => {
                    if let Err(e) = sink.write_event(&event) {
                        failed.get_or_insert(e);
                    }
                }
                Message::Flush(ack) => acks.push(ack),
            }
            handled += 1;
            next = if handled < MAX_BATCH {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        if let Err(e) = sink.flush() {
            failed.get_or_insert(e);
        }
        // One line per failed batch, not per event: a full disk fails every write.
        if let Some(e) = failed {
            tracing::error!(error = %e, "writing the audit log failed");
        }
        for ack in acks {
            let _ = ack.send(());
        }
    }
    if let Err(e) = sink.flush() {
        tracing::error!(error = %e, "flushing the audit log failed");
    }
}

enum Sink {
    Stdout,
    File(Box<FileSink>),
}

struct FileSink {
    path: PathBuf,
    file: BufWriter<File>,
    /// Bytes in the current file.
    size: u64,
    max_bytes: u64,
    max_backups: usize,
    max_age_days: u64,
    /// The time in the last rotated file's name.
    last_backup: Option<Timestamp>,
}

impl Sink {
    fn write_event(&mut self, event: &AuditEvent) -> io::Result<()> {
        let mut line = serde_json::to_vec(event)?;
        line.push(b'\n');
        match self {
            Sink::Stdout => io::stdout().lock().write_all(&line),
            Sink::File(f) => f.write_line(&line),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Stdout => io::stdout().lock().flush(),
            Sink::File(f) => f.file.flush(),
        }
    }
}

impl FileSink {
    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        let len = line.len() as u64;
        if self.size > 0 && self.size.saturating_add(len) > self.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(line)?;
        self.size += len;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        let backup = self.free_backup_name(Timestamp::now());
        fs::rename(&self.path, &backup)?;
        self.file = BufWriter::new(open_log_file(&self.path)?);
        self.size = 0;
        if let Err(e) = self.prune(Timestamp::now()) {
            tracing::warn!(error = %e, "pruning rotated audit logs failed");
        }
        Ok(())
    }

    /// `(directory, stem, extension)` of the log: `/var/log/audit.log` gives
    /// `("/var/log", "audit", ".log")`.
    fn name_parts(&self) -> (PathBuf, String, String) {
        let dir = self
            .path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match name.rfind('.') {
            Some(dot) if dot > 0 => (dir, name[..dot].to_string(), name[dot..].to_string()),
            _ => (dir, name, String::new()),
        }
    }

    /// The rotated name for `now`, moved past the previous rotation and past taken names
    /// a millisecond at a time, so that rotations in the same millisecond neither
    /// overwrite each other nor sort before older ones (pruning keeps the newest names).
    fn free_backup_name(&mut self, now: Timestamp) -> PathBuf {
        let (dir, stem, ext) = self.name_parts();
        let name =
            |t: Timestamp| dir.join(format!("{stem}-{}{ext}", t.strftime(BACKUP_TIME_FORMAT)));
        let millis = SignedDuration::from_millis(1);
        let mut t = match self.last_backup {
            Some(last) if now <= last => last.checked_add(millis).unwrap_or(Timestamp::MAX),
            _ => now,
        };
        for _ in 0..1000 {
            if !name(t).exists() {
                break;
            }
            t = t.checked_add(millis).unwrap_or(Timestamp::MAX);
        }
        // After a thousand taken names, overwrite rather than stall.
        self.last_backup = Some(t);
        name(t)
    }

    /// Removes rotated files beyond `max_backups` (newest kept) and older than
    /// `max_age_days`.
    fn prune(&self, now: Timestamp) -> io::Result<()> {
        if self.max_backups == 0 && self.max_age_days == 0 {
            return Ok(());
        }
        let (dir, stem, ext) = self.name_parts();
        let listed = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir.as_path()
        };
        let prefix = format!("{stem}-");
        let mut backups: Vec<(String, PathBuf)> = Vec::new();
        for entry in fs::read_dir(listed)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(time) = name
                .strip_prefix(&prefix)
                .and_then(|rest| rest.strip_suffix(ext.as_str()))
            else {
                continue;
            };
            if is_backup_time(time) {
                backups.push((time.to_string(), entry.path()));
            }
        }
        backups.sort_by(|a, b| b.0.cmp(&a.0));
        let cutoff = (self.max_age_days > 0).then(|| {
            // Capped far beyond any useful age so the arithmetic cannot overflow.
            let days = i64::try_from(self.max_age_days.min(MAX_AGE_DAYS_CAP)).unwrap_or(0);
            now.checked_sub(SignedDuration::from_hours(days * 24))
                .unwrap_or(Timestamp::MIN)
                .strftime(BACKUP_TIME_FORMAT)
                .to_string()
        });
        for (i, (time, path)) in backups.iter().enumerate() {
            let too_many = self.max_backups > 0 && i >= self.max_backups;
            let too_old = cutoff.as_ref().is_some_and(|c| time < c);
            if too_many || too_old {
                fs::remove_file(path)?;
            }
        }
        Ok(())
    }
}

/// Whether `s` has the shape of a rotation time (`2006-01-02T15-04-05.000`).
fn is_backup_time(s: &str) -> bool {
    s.len() == BACKUP_TIME_LEN
        && s.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 | 13 | 16 => b == b'-',
            10 => b == b'T',
            19 => b == b'.',
            _ => b.is_ascii_digit(),
        })
}

/// Opens the log for appending, creating it owner-only (and its directory) if needed:
/// audit events carry request bodies.
fn open_log_file(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        options.mode(0o600);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
    }
    #[cfg(not(unix))]
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    options.open(path)
}
