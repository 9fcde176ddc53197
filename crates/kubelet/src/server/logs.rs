//! Container logs: the CRI log format, `PodLogOptions`, and reading a log file as
//! `/containerLogs` serves it (tail, since, timestamps, byte limit, follow across rotation).
//!
//! A CRI log line is `<RFC3339Nano timestamp> <stdout|stderr> <tag> <text>`, the tag `F` for
//! a full line and `P` for a piece of one the runtime split (it goes on in the next entry of
//! the same stream). The pure parts ([`parse_line`], [`Formatter`], [`tail_offset`],
//! [`parse_options`]) are tested below; [`stream_log`] drives them over a file.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use jiff::Timestamp;
use tokio::sync::mpsc;

/// Which stream a log entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One parsed log entry; `text` keeps the line's newline (absent on a partial entry and on
/// an unterminated last line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    pub timestamp: Timestamp,
    pub stream: Stream,
    pub partial: bool,
    pub text: &'a [u8],
}

/// Parses one line of a CRI log file; `None` if it is not in the format.
pub fn parse_line(line: &[u8]) -> Option<Entry<'_>> {
    let mut parts = line.splitn(4, |b| *b == b' ');
    let ts = std::str::from_utf8(parts.next()?).ok()?;
    let timestamp: Timestamp = ts.parse().ok()?;
    let stream = match parts.next()? {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
        _ => return None,
    };
    let tags = parts.next()?;
    // tags are `:`-separated; the first says full or partial
    let partial = tags.split(|b| *b == b':').next() == Some(b"P");
    let mut text = parts.next().unwrap_or(b"");
    if partial {
        text = text.strip_suffix(b"\n").unwrap_or(text);
    }
    Some(Entry {
        timestamp,
        stream,
        partial,
        text,
    })
}

/// Which streams `stream=` asks for (`PodLogsQuerySplitStreams`); all by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StreamFilter {
    #[default]
    All,
    Stdout,
    Stderr,
}

/// `PodLogOptions` as the kubelet reads them from its query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    pub follow: bool,
    pub previous: bool,
    pub timestamps: bool,
    pub tail_lines: Option<i64>,
    pub since_seconds: Option<i64>,
    pub since_time: Option<Timestamp>,
    pub limit_bytes: Option<i64>,
    pub stream: StreamFilter,
}

/// Why the options were refused: upstream's kubelet answers 400 for what it cannot decode
/// and 422 for what fails validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionsError {
    pub code: u16,
    pub message: String,
}

fn go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Reads and validates the log options of a query (last value wins, as Go's decoder).
pub fn parse_options(pairs: &[(String, String)]) -> Result<LogOptions, OptionsError> {
    let undecodable = || OptionsError {
        code: 400,
        message: r#"{"message": "Unable to decode query."}"#.into(),
    };
    let invalid = || OptionsError {
        code: 422,
        message: r#"{"message": "Invalid request."}"#.into(),
    };
    let get = |k: &str| {
        pairs
            .iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    };
    let flag = |k: &str| -> Result<bool, OptionsError> {
        match get(k) {
            None | Some("") => Ok(false),
            Some(v) => go_bool(v).ok_or_else(undecodable),
        }
    };
    let int = |k: &str| -> Result<Option<i64>, OptionsError> {
        match get(k) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| undecodable()),
        }
    };
    let mut o = LogOptions {
        follow: flag("follow")?,
        previous: flag("previous")?,
        timestamps: flag("timestamps")?,
        tail_lines: int("tailLines")?,
        since_seconds: int("sinceSeconds")?,
        limit_bytes: int("limitBytes")?,
        ..Default::default()
    };
    // the legacy `tail` parameter; `all` means no tail
    match get("tail") {
        None | Some("") => {}
        Some("all") => o.tail_lines = None,
        Some(v) => o.tail_lines = Some(v.parse().map_err(|_| undecodable())?),
    }
    if let Some(t) = get("sinceTime").filter(|t| !t.is_empty()) {
        o.since_time = Some(t.parse().map_err(|_| undecodable())?);
    }
    o.stream = match get("stream") {
        None | Some("") | Some("All") => StreamFilter::All,
        Some("Stdout") => StreamFilter::Stdout,
        Some("Stderr") => StreamFilter::Stderr,
        Some(_) => return Err(invalid()),
    };
    if o.tail_lines.is_some_and(|t| t < 0)
        || o.limit_bytes.is_some_and(|b| b < 1)
        || o.since_seconds.is_some_and(|s| s < 1)
        || (o.since_seconds.is_some() && o.since_time.is_some())
    {
        return Err(invalid());
    }
    Ok(o)
}

impl LogOptions {
    /// The earliest entry to show: `sinceSeconds` before `now`, or `sinceTime` if later.
    pub fn since(&self, now: Timestamp) -> Option<Timestamp> {
        let by_seconds = self
            .since_seconds
            .and_then(|s| now.checked_sub(jiff::SignedDuration::from_secs(s)).ok());
        match (by_seconds, self.since_time) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Upstream's `RFC3339NanoFixed`: always nine fractional digits, UTC.
pub fn format_timestamp(ts: Timestamp) -> String {
    let secs = ts.as_second();
    let nanos = ts.subsec_nanosecond().max(0);
    let whole = Timestamp::from_second(secs).unwrap_or(ts);
    format!("{}.{nanos:09}Z", whole.strftime("%Y-%m-%dT%H:%M:%S"))
}

/// Whether a formatter wants more entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    More,
    /// The byte limit is reached.
    Done,
}

/// Turns log lines into what the client reads: partial entries joined with the rest of
/// their line, entries before `since` and of unwanted streams dropped, timestamps
/// prefixed, output cut at the byte limit.
#[derive(Debug, Clone)]
pub struct Formatter {
    since: Option<Timestamp>,
    timestamps: bool,
    filter: StreamFilter,
    remaining: Option<u64>,
    /// An unfinished line per stream: its first piece's timestamp and the text so far.
    pending: [Option<(Timestamp, Vec<u8>)>; 2],
}

fn slot(stream: Stream) -> usize {
    match stream {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
    }
}

impl Formatter {
    pub fn new(opts: &LogOptions, now: Timestamp) -> Self {
        Formatter {
            since: opts.since(now),
            timestamps: opts.timestamps,
            filter: opts.stream,
            remaining: opts.limit_bytes.map(|b| b.max(0) as u64),
            pending: [None, None],
        }
    }

    /// Handles one line of the file (with its newline if it has one); appends output to
    /// `out`. Lines not in the CRI format are skipped.
    pub fn push_line(&mut self, line: &[u8], out: &mut Vec<u8>) -> Flow {
        if self.remaining == Some(0) {
            return Flow::Done;
        }
        let Some(entry) = parse_line(line) else {
            return Flow::More;
        };
        let pending = &mut self.pending[slot(entry.stream)];
        if entry.partial {
            match pending {
                Some((_, text)) => text.extend_from_slice(entry.text),
                None => *pending = Some((entry.timestamp, entry.text.to_vec())),
            }
            return Flow::More;
        }
        let (timestamp, text) = match pending.take() {
            Some((ts, mut text)) => {
                text.extend_from_slice(entry.text);
                (ts, text)
            }
            None => (entry.timestamp, entry.text.to_vec()),
        };
        self.emit(timestamp, entry.stream, &text, out)
    }

    /// Emits whatever partial lines are left (the end of a log whose writer stopped
    /// mid-line).
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Flow {
        for stream in [Stream::Stdout, Stream::Stderr] {
            if let Some((ts, text)) = self.pending[slot(stream)].take() {
                if self.emit(ts, stream, &text, out) == Flow::Done {
                    return Flow::Done;
                }
            }
        }
        Flow::More
    }

    fn emit(&mut self, ts: Timestamp, stream: Stream, text: &[u8], out: &mut Vec<u8>) -> Flow {
        let wanted = match self.filter {
            StreamFilter::All => true,
            StreamFilter::Stdout => stream == Stream::Stdout,
            StreamFilter::Stderr => stream == Stream::Stderr,
        };
        if !wanted || self.since.is_some_and(|since| ts < since) {
            return Flow::More;
        }
        let mut line = Vec::with_capacity(text.len() + 32);
        if self.timestamps {
            line.extend_from_slice(format_timestamp(ts).as_bytes());
            line.push(b' ');
        }
        line.extend_from_slice(text);
        if let Some(remaining) = self.remaining.as_mut() {
            let take = line.len().min(*remaining as usize);
            out.extend_from_slice(&line[..take]);
            *remaining -= take as u64;
            if *remaining == 0 {
                return Flow::Done;
            }
        } else {
            out.extend_from_slice(&line);
        }
        Flow::More
    }
}

/// Where the last `n` lines of a file start (upstream's `FindTailLineStartIndex`): the
/// newline ending the file does not start another line.
pub fn tail_offset<R: Read + Seek>(r: &mut R, n: u64) -> std::io::Result<u64> {
    let len = r.seek(SeekFrom::End(0))?;
    if n == 0 {
        return Ok(len);
    }
    const BLOCK: u64 = 8192;
    let mut buf = vec![0u8; BLOCK as usize];
    let mut pos = len;
    let mut found = 0u64;
    while pos > 0 {
        let start = pos.saturating_sub(BLOCK);
        let size = (pos - start) as usize;
        r.seek(SeekFrom::Start(start))?;
        r.read_exact(&mut buf[..size])?;
        for i in (0..size).rev() {
            let at = start + i as u64;
            if buf[i] == b'\n' && at + 1 != len {
                found += 1;
                if found == n {
                    return Ok(at + 1);
                }
            }
        }
        pos = start;
    }
    Ok(0)
}

/// Whether the container writing the log is still running: following stops once it is not.
pub trait Liveness: Send + Sync {
    fn running(&self) -> futures::future::BoxFuture<'_, bool>;
}

/// How often a follower looks for new lines, and how often it asks whether the container
/// still runs.
const POLL: Duration = Duration::from_millis(100);
const LIVENESS_EVERY: u32 = 10;

/// The chunk a reader takes at once.
const CHUNK: usize = 64 * 1024;

/// Streams a container's log file into `tx` as [`LogOptions`] say. With `follow`, it keeps
/// reading new lines until the container stops or the receiver goes away, and when the
/// file is rotated (renamed, a new file created at `path`) it finishes the old file and
/// goes on with the new one.
pub async fn stream_log(
    path: PathBuf,
    opts: LogOptions,
    liveness: Box<dyn Liveness>,
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    if let Err(e) = stream_log_inner(&path, &opts, liveness.as_ref(), &tx).await {
        let _ = tx.send(Err(e)).await;
    }
}

async fn stream_log_inner(
    path: &Path,
    opts: &LogOptions,
    liveness: &dyn Liveness,
    tx: &mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> std::io::Result<()> {
    let (mut file, mut ino) = {
        let path = path.to_path_buf();
        let tail = opts.tail_lines;
        tokio::task::spawn_blocking(move || -> std::io::Result<_> {
            let mut f = std::fs::File::open(&path)?;
            let start = match tail {
                Some(n) => tail_offset(&mut f, n.max(0) as u64)?,
                None => 0,
            };
            f.seek(SeekFrom::Start(start))?;
            let ino = std::os::unix::fs::MetadataExt::ino(&f.metadata()?);
            Ok((f, ino))
        })
        .await
        .map_err(std::io::Error::other)??
    };
    let mut formatter = Formatter::new(opts, Timestamp::now());
    // Without follow, a tail shows exactly that many lines even if more arrive meanwhile.
    let mut lines_left = opts.tail_lines.filter(|_| !opts.follow);
    let mut pending: Vec<u8> = Vec::new();
    let mut polls = 0u32;
    let mut last_pass = false;
    let mut switch_to: Option<(std::fs::File, u64)> = None;
    loop {
        let (f, chunk) = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; CHUNK];
            let n = file.read(&mut buf);
            (
                file,
                n.map(|n| {
                    buf.truncate(n);
                    buf
                }),
            )
        })
        .await
        .map_err(std::io::Error::other)?;
        file = f;
        let chunk = chunk?;
        let eof = chunk.is_empty();
        pending.extend_from_slice(&chunk);
        let mut out = Vec::new();
        let mut done = false;
        let mut consumed = 0;
        while let Some(nl) = pending[consumed..].iter().position(|b| *b == b'\n') {
            let line = &pending[consumed..consumed + nl + 1];
            consumed += nl + 1;
            if lines_left == Some(0) {
                done = true;
                break;
            }
            if formatter.push_line(line, &mut out) == Flow::Done {
                done = true;
                break;
            }
            if let Some(n) = lines_left.as_mut() {
                *n -= 1;
            }
        }
        pending.drain(..consumed);
        if lines_left == Some(0) {
            done = true;
        }
        if eof && !done && !opts.follow {
            // an unterminated last line still counts
            if !pending.is_empty() {
                formatter.push_line(&std::mem::take(&mut pending), &mut out);
            }
            formatter.finish(&mut out);
            done = true;
        }
        if !out.is_empty() && tx.send(Ok(Bytes::from(out))).await.is_err() {
            return Ok(());
        }
        if done {
            return Ok(());
        }
        if !eof {
            continue;
        }
        // Following, at the end of the file.
        if last_pass {
            let mut out = Vec::new();
            formatter.finish(&mut out);
            if !out.is_empty() {
                let _ = tx.send(Ok(Bytes::from(out))).await;
            }
            return Ok(());
        }
        if let Some(next) = switch_to.take() {
            // the old file is read to its end after the runtime reopened: go on with the new
            file = next.0;
            ino = next.1;
            pending.clear();
            continue;
        }
        if let Some(next) = reopened(path, ino).await {
            // Rotated. The runtime may have written to the old file between this reader's
            // last read and the reopen: read it to its end once more before switching.
            switch_to = Some(next);
            continue;
        }
        polls += 1;
        if polls % LIVENESS_EVERY == 1 && !liveness.running().await {
            // one more pass for what the container wrote before it stopped
            last_pass = true;
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = tx.closed() => return Ok(()),
        }
    }
}

/// The file now at `path` if it is not the one being read (inode `ino`).
async fn reopened(path: &Path, ino: u64) -> Option<(std::fs::File, u64)> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let meta = std::fs::metadata(&path).ok()?;
        let now = std::os::unix::fs::MetadataExt::ino(&meta);
        if now == ino {
            return None;
        }
        let f = std::fs::File::open(&path).ok()?;
        Some((f, now))
    })
    .await
    .ok()
    .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    #[test]
    fn cri_lines_parse_with_partial_tags_and_offsets() {
        let e =
            parse_line(b"2016-10-06T00:17:09.669794202Z stdout F log content 1\n").expect("line");
        assert_eq!(e.timestamp, ts("2016-10-06T00:17:09.669794202Z"));
        assert_eq!(e.stream, Stream::Stdout);
        assert!(!e.partial);
        assert_eq!(e.text, b"log content 1\n");
        let e = parse_line(b"2016-10-06T00:17:09.669794203+02:00 stderr P part\n").expect("line");
        assert_eq!(e.stream, Stream::Stderr);
        assert!(e.partial);
        assert_eq!(
            e.text, b"part",
            "a partial entry loses the newline the runtime added"
        );
        assert_eq!(e.timestamp, ts("2016-10-05T22:17:09.669794203Z"));
        // tags may carry more after a colon; an empty message is fine
        let e = parse_line(b"2016-10-06T00:17:09Z stdout F:x \n").expect("line");
        assert_eq!(e.text, b"\n");
        for bad in [
            &b"not a log line\n"[..],
            b"2016-10-06T00:17:09Z stdin F x\n",
            b"2016-10-06T00:17:09Z stdout\n",
            b"yesterday stdout F x\n",
        ] {
            assert!(
                parse_line(bad).is_none(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    fn q(s: &str) -> Vec<(String, String)> {
        serde_urlencoded::from_str(s).expect("query")
    }

    #[test]
    fn options_decode_and_validate_as_upstreams_kubelet() {
        let o = parse_options(&q(
            "follow=true&previous=1&timestamps=true&tailLines=5&limitBytes=10&sinceSeconds=3",
        ))
        .expect("valid");
        assert!(o.follow && o.previous && o.timestamps);
        assert_eq!(
            (o.tail_lines, o.limit_bytes, o.since_seconds),
            (Some(5), Some(10), Some(3))
        );
        assert_eq!(
            parse_options(&q("sinceTime=2024-01-02T03:04:05Z"))
                .expect("valid")
                .since_time,
            Some(ts("2024-01-02T03:04:05Z"))
        );
        assert_eq!(
            parse_options(&q("tail=7")).expect("valid").tail_lines,
            Some(7)
        );
        assert_eq!(
            parse_options(&q("tail=all")).expect("valid").tail_lines,
            None
        );
        assert_eq!(
            parse_options(&q("stream=Stderr")).expect("valid").stream,
            StreamFilter::Stderr
        );
        for (query, code) in [
            ("follow=maybe", 400),
            ("tailLines=x", 400),
            ("sinceTime=yesterday", 400),
            ("tailLines=-1", 422),
            ("limitBytes=0", 422),
            ("sinceSeconds=0", 422),
            ("sinceSeconds=5&sinceTime=2024-01-02T03:04:05Z", 422),
            ("stream=Both", 422),
        ] {
            assert_eq!(
                parse_options(&q(query)).map_err(|e| e.code),
                Err(code),
                "{query}"
            );
        }
    }

    #[test]
    fn since_takes_the_later_of_seconds_and_time() {
        let now = ts("2024-01-01T00:01:00Z");
        let o = LogOptions {
            since_seconds: Some(30),
            ..Default::default()
        };
        assert_eq!(o.since(now), Some(ts("2024-01-01T00:00:30Z")));
        let o = LogOptions {
            since_time: Some(ts("2024-01-01T00:00:10Z")),
            ..Default::default()
        };
        assert_eq!(o.since(now), Some(ts("2024-01-01T00:00:10Z")));
        assert_eq!(LogOptions::default().since(now), None);
    }

    fn run(opts: &LogOptions, lines: &[&str]) -> String {
        let mut f = Formatter::new(opts, ts("2024-01-01T00:01:00Z"));
        let mut out = Vec::new();
        for l in lines {
            if f.push_line(l.as_bytes(), &mut out) == Flow::Done {
                return String::from_utf8(out).expect("utf8");
            }
        }
        f.finish(&mut out);
        String::from_utf8(out).expect("utf8")
    }

    const LOG: &[&str] = &[
        "2024-01-01T00:00:00.5Z stdout F one\n",
        "2024-01-01T00:00:10Z stderr F two\n",
        "2024-01-01T00:00:20Z stdout P thr\n",
        "2024-01-01T00:00:21Z stderr F err-between\n",
        "2024-01-01T00:00:22Z stdout F ee\n",
        "garbage that is skipped\n",
        "2024-01-01T00:00:40Z stdout F four\n",
    ];

    #[test]
    fn partial_lines_join_and_options_filter_and_cut() {
        assert_eq!(
            run(&LogOptions::default(), LOG),
            "one\ntwo\nerr-between\nthree\nfour\n"
        );
        let ts_opts = LogOptions {
            timestamps: true,
            ..Default::default()
        };
        assert_eq!(
            run(&ts_opts, &LOG[..3]),
            "2024-01-01T00:00:00.500000000Z one\n2024-01-01T00:00:10.000000000Z two\n\
             2024-01-01T00:00:20.000000000Z thr",
            "an unfinished line is shown at the end, with its first piece's time"
        );
        let since = LogOptions {
            since_seconds: Some(45),
            ..Default::default()
        };
        // since 00:00:15: the joined line counts from its first piece (00:00:20)
        assert_eq!(run(&since, LOG), "err-between\nthree\nfour\n");
        let limit = LogOptions {
            limit_bytes: Some(6),
            ..Default::default()
        };
        assert_eq!(run(&limit, LOG), "one\ntw");
        let stderr = LogOptions {
            stream: StreamFilter::Stderr,
            ..Default::default()
        };
        assert_eq!(run(&stderr, LOG), "two\nerr-between\n");
    }

    #[test]
    fn tail_offsets_count_lines_from_the_end() {
        let text = b"a\nbb\nccc\n";
        let mut c = std::io::Cursor::new(&text[..]);
        assert_eq!(tail_offset(&mut c, 0).expect("tail"), 9);
        assert_eq!(tail_offset(&mut c, 1).expect("tail"), 5);
        assert_eq!(tail_offset(&mut c, 2).expect("tail"), 2);
        assert_eq!(tail_offset(&mut c, 3).expect("tail"), 0);
        assert_eq!(tail_offset(&mut c, 10).expect("tail"), 0);
        // an unterminated last line is a line
        let mut c = std::io::Cursor::new(&b"a\nbb"[..]);
        assert_eq!(tail_offset(&mut c, 1).expect("tail"), 2);
        // across blocks
        let big: Vec<u8> = (0..5000)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        let mut c = std::io::Cursor::new(&big[..]);
        let at = tail_offset(&mut c, 1234).expect("tail") as usize;
        assert!(big[at..].starts_with(b"line 3766\n"));
        assert_eq!(big[at..].iter().filter(|b| **b == b'\n').count(), 1234);
        let mut empty = std::io::Cursor::new(&b""[..]);
        assert_eq!(tail_offset(&mut empty, 3).expect("tail"), 0);
    }

    #[test]
    fn timestamps_have_nine_fractional_digits() {
        assert_eq!(
            format_timestamp(ts("2016-10-06T00:17:09.6697942Z")),
            "2016-10-06T00:17:09.669794200Z"
        );
        assert_eq!(
            format_timestamp(ts("2016-10-06T02:17:09+02:00")),
            "2016-10-06T00:17:09.000000000Z"
        );
    }

    struct Running(std::sync::Arc<std::sync::atomic::AtomicBool>);
    impl Liveness for Running {
        fn running(&self) -> futures::future::BoxFuture<'_, bool> {
            Box::pin(async { self.0.load(std::sync::atomic::Ordering::SeqCst) })
        }
    }

    async fn recv_until(
        rx: &mut mpsc::Receiver<Result<Bytes, std::io::Error>>,
        got: &mut String,
        want: &str,
    ) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !got.contains(want) {
            let chunk = tokio::time::timeout_at(deadline, rx.recv())
                .await
                .unwrap_or_else(|_| panic!("no {want:?} in {got:?}"))
                .expect("stream open")
                .expect("chunk");
            got.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    #[tokio::test]
    async fn following_reads_new_lines_across_rotation_until_the_container_stops() {
        use std::io::Write;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("0.log");
        std::fs::write(&path, "2024-01-01T00:00:00Z stdout F old\n").expect("write");
        let running = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (tx, mut rx) = mpsc::channel(16);
        let task = tokio::spawn(stream_log(
            path.clone(),
            LogOptions {
                follow: true,
                ..Default::default()
            },
            Box::new(Running(running.clone())),
            tx,
        ));
        let mut got = String::new();
        recv_until(&mut rx, &mut got, "old\n").await;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("open");
        f.write_all(b"2024-01-01T00:00:01Z stdout F appended\n")
            .expect("append");
        recv_until(&mut rx, &mut got, "appended\n").await;
        // rotate: the old file gets a last line, is renamed, a new one starts
        f.write_all(b"2024-01-01T00:00:02Z stdout P last-of-")
            .expect("append");
        f.write_all(b"\n2024-01-01T00:00:02Z stdout F old-file\n")
            .expect("append");
        drop(f);
        std::fs::rename(&path, dir.path().join("0.log.20240101-000002")).expect("rename");
        std::fs::write(&path, "2024-01-01T00:00:03Z stdout F new-file\n").expect("write");
        recv_until(&mut rx, &mut got, "new-file\n").await;
        assert_eq!(got, "old\nappended\nlast-of-old-file\nnew-file\n");
        running.store(false, std::sync::atomic::Ordering::SeqCst);
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the follower ends once the container stops")
            .expect("task");
    }

    #[tokio::test]
    async fn tail_without_follow_shows_exactly_the_last_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("0.log");
        let text: String = (0..10)
            .map(|i| format!("2024-01-01T00:00:0{i}Z stdout F l{i}\n"))
            .collect();
        std::fs::write(&path, text).expect("write");
        let (tx, mut rx) = mpsc::channel(16);
        stream_log(
            path,
            LogOptions {
                tail_lines: Some(3),
                ..Default::default()
            },
            Box::new(Running(Default::default())),
            tx,
        )
        .await;
        let mut got = String::new();
        while let Some(chunk) = rx.recv().await {
            got.push_str(&String::from_utf8_lossy(&chunk.expect("chunk")));
        }
        assert_eq!(got, "l7\nl8\nl9\n");
    }
}
