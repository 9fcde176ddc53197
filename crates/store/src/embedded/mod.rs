//! The embedded backend: the default store of `rkube server`, durable on local disk.
//!
//! Layout (see `ARCHITECTURE.md` for the reasons):
//! - one `redb` file with an append-only `log` of changes keyed by `(revision, sub)` ([`disk`]);
//! - an in-memory [`index::Index`] from key to its changes, rebuilt from the log at start-up;
//! - one committer thread that takes every write, applies a whole queue of them in one redb
//!   transaction with one fsync (group commit), then publishes the new revision and its events
//!   ([`committer`]);
//! - watches that replay history from the log and then follow the committer's events, falling
//!   back to the log whenever they lag ([`watch`]);
//! - leases with expiry ([`lease`]) and automatic compaction every few minutes.

mod codec;
mod committer;
pub mod disk;
mod index;
mod lease;
mod watch;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::{Mutex, RwLock};
use redb::{Database, ReadableDatabase};
use tokio::sync::oneshot;

use crate::error::{Result, StoreError};
use crate::types::*;
use crate::{Store, WatchStream};
use codec::Record;
use committer::Request;
use index::Index;
use lease::Leases;
use watch::Hub;

/// Tunables of the embedded store.
#[derive(Debug, Clone)]
pub struct Options {
    /// The largest transaction accepted, as etcd's `--max-request-bytes` (default 1.5 MiB).
    pub max_request_bytes: usize,
    /// Automatic compaction: every interval, compact to the revision seen one interval before,
    /// as kube-apiserver does with etcd (default 5 minutes). `None` turns it off.
    pub compaction_interval: Option<Duration>,
    /// How often a watch that asked for progress notifications gets one (default 5 s).
    pub progress_notify_interval: Duration,
    /// redb's page cache (default 64 MiB).
    pub cache_size_bytes: usize,
    /// How often lease deadlines are checked (default 250 ms).
    pub lease_check_interval: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            compaction_interval: Some(Duration::from_secs(300)),
            progress_notify_interval: Duration::from_secs(5),
            cache_size_bytes: 64 << 20,
            lease_check_interval: Duration::from_millis(250),
        }
    }
}

/// State shared by the handle, the committer thread and the watch tasks.
#[derive(Debug)]
pub(crate) struct Shared {
    pub db: Database,
    pub path: PathBuf,
    pub index: RwLock<Index>,
    pub leases: Mutex<Leases>,
    pub hub: Hub,
    pub opts: Options,
    /// Set when a disk write failed: from then on every write is refused.
    pub failed: Mutex<Option<String>>,
    pub stats: Counters,
}

/// Counters of what the store has done, for tests, benchmarks and (later) metrics.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub commits: AtomicU64,
    pub write_txns: AtomicU64,
    pub watch_resyncs: AtomicU64,
}

/// A snapshot of the store's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// redb commits, each with one fsync.
    pub commits: u64,
    /// Transactions that wrote something (each got its own revision).
    pub write_txns: u64,
    /// Times a lagging watcher was dropped from live delivery and caught up from the log.
    pub watch_resyncs: u64,
}

impl Shared {
    fn storage_err(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Storage(format!("{}: {e}", self.path.display()))
    }

    /// Reads `range` at `rev` (0 for the latest), as a snapshot. A limit of 0 or below means
    /// no limit, as in etcd.
    pub(crate) fn read_range(&self, req: &RangeRequest) -> Result<RangeResponse> {
        let want_entries = !req.count_only;
        let (selected, count, header, rtx) = {
            let idx = self.index.read();
            let rev = if req.revision > 0 {
                req.revision
            } else {
                idx.current
            };
            if rev > idx.current {
                return Err(StoreError::FutureRevision {
                    requested: rev,
                    current: idx.current,
                });
            }
            if rev < idx.compact {
                return Err(StoreError::Compacted {
                    requested: rev,
                    compact_revision: idx.compact,
                });
            }
            let (sel, count) = idx.select(&req.range, rev, req.limit.max(0) as usize, want_entries);
            let sel: Vec<(Vec<u8>, index::Entry)> =
                sel.into_iter().map(|(k, e)| (k.to_vec(), e)).collect();
            // The snapshot is taken under the index lock so that compaction cannot delete a
            // selected record before we read it.
            let rtx = if want_entries && !req.keys_only && !sel.is_empty() {
                Some(self.db.begin_read().map_err(|e| self.storage_err(e))?)
            } else {
                None
            };
            (sel, count, idx.current, rtx)
        };
        let mut kvs = Vec::with_capacity(selected.len());
        match rtx {
            None => {
                for (key, e) in selected {
                    kvs.push(KeyValue {
                        key,
                        value: Vec::new(),
                        create_revision: e.create_revision,
                        mod_revision: e.rev,
                        version: e.version,
                        lease: e.lease,
                    });
                }
            }
            Some(rtx) => {
                let log = rtx.open_table(disk::LOG).map_err(|e| self.storage_err(e))?;
                for (_, e) in selected {
                    let guard = log
                        .get(e.pos())
                        .map_err(|e| self.storage_err(e))?
                        .ok_or_else(|| {
                            self.storage_err(format!("log record {:?} missing", e.pos()))
                        })?;
                    let rec =
                        Record::decode(e.pos(), guard.value()).map_err(|e| self.storage_err(e))?;
                    kvs.push(rec.to_kv(e.pos(), true));
                }
            }
        }
        let more = !req.count_only && req.limit > 0 && count > req.limit as usize;
        Ok(RangeResponse {
            header_revision: header,
            kvs,
            more,
            count: count as i64,
        })
    }
}

/// The embedded store. Cheap to clone; the data file closes when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    shared: Arc<Shared>,
    tx: Mutex<Option<mpsc::Sender<Request>>>,
    committer: Mutex<Option<std::thread::JoinHandle<()>>>,
    tasks: Mutex<Vec<tokio::task::AbortHandle>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for t in self.tasks.lock().drain(..) {
            t.abort();
        }
        self.tx.lock().take();
        if let Some(h) = self.committer.lock().take() {
            let _ = h.join();
        }
        self.shared.hub.close();
    }
}

impl EmbeddedStore {
    /// Opens the store in `dir` (creating it if absent) with default options. Must run inside a
    /// tokio runtime (lease expiry and compaction run as tasks).
    pub async fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(dir, Options::default()).await
    }

    /// Opens the store in `dir` with `opts`.
    pub async fn open_with(dir: impl AsRef<Path>, opts: Options) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let cache = opts.cache_size_bytes;
        let loaded = tokio::task::spawn_blocking(move || disk::open(&dir, cache))
            .await
            .map_err(|e| StoreError::Storage(format!("start-up task failed: {e}")))??;
        let path = loaded.path.clone();
        let now = Instant::now();
        let mut leases = Leases::default();
        for (id, ttl) in &loaded.leases {
            leases.insert(*id, *ttl, now);
        }
        for (key, e) in loaded.index.live_keys() {
            if e.lease != 0 {
                leases.reattach(key, 0, e.lease);
            }
        }
        let current = loaded.index.current;
        let shared = Arc::new(Shared {
            db: loaded.db,
            path,
            index: RwLock::new(loaded.index),
            leases: Mutex::new(leases),
            hub: Hub::new(current),
            opts: opts.clone(),
            failed: Mutex::new(None),
            stats: Counters::default(),
        });
        let (tx, rx) = mpsc::channel();
        let committer = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("rkube-store-commit".into())
                .spawn(move || committer::run(shared, rx))
                .map_err(|e| StoreError::Storage(format!("cannot start the committer: {e}")))?
        };
        let inner = Arc::new(Inner {
            shared,
            tx: Mutex::new(Some(tx)),
            committer: Mutex::new(Some(committer)),
            tasks: Mutex::new(Vec::new()),
        });
        let mut tasks = vec![tokio::spawn(expire_leases(
            Arc::downgrade(&inner),
            opts.lease_check_interval,
        ))
        .abort_handle()];
        if let Some(every) = opts.compaction_interval {
            tasks.push(tokio::spawn(auto_compact(Arc::downgrade(&inner), every)).abort_handle());
        }
        *inner.tasks.lock() = tasks;
        Ok(EmbeddedStore { inner })
    }

    /// The data file's path.
    pub fn path(&self) -> &Path {
        &self.inner.shared.path
    }

    /// The current compaction point.
    pub fn compact_revision(&self) -> Revision {
        self.inner.shared.index.read().compact
    }

    /// What the store has done since it was opened.
    pub fn stats(&self) -> Stats {
        let c = &self.inner.shared.stats;
        Stats {
            commits: c.commits.load(Ordering::Relaxed),
            write_txns: c.write_txns.load(Ordering::Relaxed),
            watch_resyncs: c.watch_resyncs.load(Ordering::Relaxed),
        }
    }

    /// How many keys have retained history in memory (for diagnostics).
    pub fn indexed_keys(&self) -> usize {
        self.inner.shared.index.read().key_count()
    }

    async fn submit<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T>>) -> Request,
    ) -> Result<T> {
        self.inner.submit(make).await
    }
}

impl Inner {
    async fn submit<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T>>) -> Request,
    ) -> Result<T> {
        let (otx, orx) = oneshot::channel();
        {
            let guard = self.tx.lock();
            let tx = guard
                .as_ref()
                .ok_or_else(|| StoreError::Unavailable("store closed".into()))?;
            tx.send(make(otx))
                .map_err(|_| StoreError::Unavailable("store closed".into()))?;
        }
        orx.await
            .map_err(|_| StoreError::Unavailable("store closed".into()))?
    }
}

async fn expire_leases(inner: Weak<Inner>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        let expired = inner.shared.leases.lock().expired(Instant::now());
        for id in expired {
            // Another revoke may have won the race; that is fine.
            let _ = inner.submit(|resp| Request::LeaseRevoke { id, resp }).await;
        }
    }
}

/// kube-apiserver's policy: every interval, compact to the revision observed one interval ago,
/// so that about one interval of history is always kept.
async fn auto_compact(inner: Weak<Inner>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    let mut previous: Option<Revision> = None;
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        let (current, compact) = {
            let idx = inner.shared.index.read();
            (idx.current, idx.compact)
        };
        if let Some(rev) = previous.filter(|r| *r > compact) {
            match inner.submit(|resp| Request::Compact { rev, resp }).await {
                Ok(()) => tracing::debug!(revision = rev, "compacted"),
                Err(e) => tracing::warn!(error = %e, "automatic compaction failed"),
            }
        }
        previous = Some(current);
    }
}

fn validate_key(key: &[u8]) -> Result<()> {
    if key.is_empty() {
        return Err(StoreError::InvalidArgument("key is not provided".into()));
    }
    Ok(())
}

/// etcd's `--max-txn-ops` default.
const MAX_TXN_OPS: usize = 128;

/// What etcd checks before a transaction reaches the store: its size, its number of
/// operations, empty keys, and keys written twice in either branch.
fn validate_txn(req: &TxnRequest, limit: usize) -> Result<()> {
    let size = req.encoded_len();
    if size > limit {
        return Err(StoreError::RequestTooLarge { size, limit });
    }
    if req
        .compare
        .len()
        .max(req.success.len())
        .max(req.failure.len())
        > MAX_TXN_OPS
    {
        return Err(StoreError::InvalidArgument(
            "too many operations in txn request".into(),
        ));
    }
    for c in &req.compare {
        validate_key(&c.key)?;
    }
    for op in req.success.iter().chain(&req.failure) {
        match op {
            TxnOp::Put(p) => validate_key(&p.key)?,
            TxnOp::Delete(d) => validate_key(&d.range.start)?,
            TxnOp::Range(r) => validate_key(&r.range.start)?,
        }
    }
    check_duplicates(&req.success)?;
    check_duplicates(&req.failure)
}

/// A branch may not put one key twice, nor put a key that one of its deletions covers.
fn check_duplicates(ops: &[TxnOp]) -> Result<()> {
    let puts: Vec<&[u8]> = ops
        .iter()
        .filter_map(|op| match op {
            TxnOp::Put(p) => Some(p.key.as_slice()),
            _ => None,
        })
        .collect();
    let dup = |k: &[u8]| StoreError::DuplicateKey(String::from_utf8_lossy(k).into_owned());
    for (i, k) in puts.iter().enumerate() {
        if puts[..i].contains(k) {
            return Err(dup(k));
        }
    }
    // etcd compares the deletion's bounds literally here: a from-key deletion (end `\0`) is an
    // empty interval to this check, so a put of a key it covers is allowed. We match etcd.
    let covers = |r: &KeyRange, k: &[u8]| match &r.end {
        None => k == r.start.as_slice(),
        Some(end) => k >= r.start.as_slice() && k < end.as_slice(),
    };
    for op in ops {
        if let TxnOp::Delete(d) = op {
            if let Some(k) = puts.iter().find(|k| covers(&d.range, k)) {
                return Err(dup(k));
            }
        }
    }
    Ok(())
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn range(&self, req: RangeRequest) -> Result<RangeResponse> {
        validate_key(&req.range.start)?;
        let shared = self.inner.shared.clone();
        // A large read decodes many records: keep it off the async worker threads.
        if req.range.is_single()
            || (req.limit > 0 && req.limit <= 64)
            || req.count_only
            || req.keys_only
        {
            shared.read_range(&req)
        } else {
            tokio::task::spawn_blocking(move || shared.read_range(&req))
                .await
                .map_err(|e| StoreError::Unavailable(format!("read task failed: {e}")))?
        }
    }

    async fn txn(&self, req: TxnRequest) -> Result<TxnResponse> {
        validate_txn(&req, self.inner.shared.opts.max_request_bytes)?;
        self.submit(|resp| Request::Txn { req, resp }).await
    }

    async fn watch(&self, req: WatchRequest) -> Result<WatchStream> {
        validate_key(&req.range.start)?;
        watch::start(self.inner.shared.clone(), req)
    }

    async fn compact(&self, rev: Revision) -> Result<()> {
        self.submit(|resp| Request::Compact { rev, resp }).await
    }

    async fn lease_grant(&self, ttl: i64) -> Result<Lease> {
        if ttl <= 0 {
            return Err(StoreError::InvalidArgument(format!(
                "lease TTL must be positive, got {ttl}"
            )));
        }
        self.submit(|resp| Request::LeaseGrant { ttl, resp }).await
    }

    async fn lease_keep_alive(&self, id: LeaseId) -> Result<i64> {
        self.inner
            .shared
            .leases
            .lock()
            .keep_alive(id, Instant::now())
            .ok_or(StoreError::LeaseNotFound(id))
    }

    async fn lease_revoke(&self, id: LeaseId) -> Result<()> {
        self.submit(|resp| Request::LeaseRevoke { id, resp }).await
    }

    async fn lease_time_to_live(&self, id: LeaseId) -> Result<Option<LeaseTimeToLive>> {
        let leases = self.inner.shared.leases.lock();
        let now = Instant::now();
        Ok(leases
            .get(id)
            .filter(|l| l.expiry > now)
            .map(|l| LeaseTimeToLive {
                id,
                ttl: (l.expiry - now).as_secs_f64().ceil() as i64,
                granted_ttl: l.ttl,
                keys: l.keys.iter().cloned().collect(),
            }))
    }

    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.inner.shared.index.read().current)
    }
}
