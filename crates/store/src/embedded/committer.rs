//! The committer: the one thread that writes. It takes every queued write request, applies
//! them in order inside one redb write transaction (each transaction that writes gets its own
//! revision), commits with one fsync, and only then publishes the new revision to readers and
//! watchers and answers the callers. Writers that arrive during an fsync wait for the next one
//! and share it: group commit.
//!
//! If a commit fails, the store refuses every later write: after a failed fsync the page cache
//! cannot be trusted, and only a restart (which re-reads the file) may continue.

use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::Instant;

use redb::{ReadableTable, Table, WriteTransaction};
use tokio::sync::oneshot;

use super::codec::{LogPos, Record};
use super::disk::{write_meta_revisions, LEASES, LOG, META};
use super::index::Entry;
use super::watch::Committed;
use super::Shared;
use crate::error::{Result, StoreError};
use crate::types::*;

/// A write for the committer.
#[derive(Debug)]
pub(crate) enum Request {
    Txn {
        req: TxnRequest,
        resp: oneshot::Sender<Result<TxnResponse>>,
    },
    LeaseGrant {
        ttl: i64,
        resp: oneshot::Sender<Result<Lease>>,
    },
    LeaseRevoke {
        id: LeaseId,
        resp: oneshot::Sender<Result<()>>,
    },
    Compact {
        rev: Revision,
        resp: oneshot::Sender<Result<()>>,
    },
}

/// Most requests applied in one commit.
const MAX_BATCH: usize = 2048;

/// An answer held back until the batch is durable.
enum Reply {
    Txn(oneshot::Sender<Result<TxnResponse>>, Result<TxnResponse>),
    Lease(oneshot::Sender<Result<Lease>>, Result<Lease>),
    Unit(oneshot::Sender<Result<()>>, Result<()>),
}

impl Reply {
    fn send(self) {
        // A caller that gave up waiting is not an error.
        let _ = match self {
            Reply::Txn(tx, r) => tx.send(r).map_err(drop),
            Reply::Lease(tx, r) => tx.send(r).map_err(drop),
            Reply::Unit(tx, r) => tx.send(r).map_err(drop),
        };
    }

    fn fail(self, err: &str) {
        let e = || StoreError::Storage(err.to_string());
        match self {
            Reply::Txn(tx, _) => drop(tx.send(Err(e()))),
            Reply::Lease(tx, _) => drop(tx.send(Err(e()))),
            Reply::Unit(tx, _) => drop(tx.send(Err(e()))),
        }
    }
}

fn reply_err(req: Request, err: StoreError) {
    match req {
        Request::Txn { resp, .. } => drop(resp.send(Err(err))),
        Request::LeaseGrant { resp, .. } => drop(resp.send(Err(err))),
        Request::LeaseRevoke { resp, .. } => drop(resp.send(Err(err))),
        Request::Compact { resp, .. } => drop(resp.send(Err(err))),
    }
}

/// The committer thread's body: runs until every sender is gone.
pub(crate) fn run(shared: Arc<Shared>, rx: mpsc::Receiver<Request>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        if let Some(reason) = shared.failed.lock().clone() {
            for r in batch {
                reply_err(
                    r,
                    StoreError::Storage(format!("store stopped after a failed write: {reason}")),
                );
            }
            continue;
        }
        commit_batch(&shared, batch);
    }
}

/// The state of one batch while it is being applied.
struct Batch<'t> {
    log: Table<'t, LogPos, &'static [u8]>,
    leases_table: Table<'t, i64, i64>,
    /// The revision the next writing transaction gets.
    next_rev: Revision,
    compact: Option<Revision>,
    events: Vec<Event>,
}

fn commit_batch(shared: &Shared, batch: Vec<Request>) {
    let wtx = match shared.db.begin_write() {
        Ok(w) => w,
        Err(e) => {
            return fail_batch(
                shared,
                batch.into_iter().map(early_reply).collect(),
                &e.to_string(),
            )
        }
    };
    let start_rev = shared.index.read().current;
    let mut replies = Vec::with_capacity(batch.len());
    let outcome = apply_all(shared, &wtx, start_rev, batch, &mut replies);
    let (last_rev, events) = match outcome {
        Ok(v) => v,
        Err(e) => {
            drop(wtx);
            return fail_batch(shared, replies, &e);
        }
    };
    if let Err(e) = wtx.commit() {
        return fail_batch(shared, replies, &e.to_string());
    }
    let stats = &shared.stats;
    stats.commits.fetch_add(1, Ordering::Relaxed);
    stats
        .write_txns
        .fetch_add((last_rev - start_rev) as u64, Ordering::Relaxed);
    {
        let mut idx = shared.index.write();
        idx.current = last_rev;
    }
    if !events.is_empty() {
        shared.hub.publish(Arc::new(Committed {
            rev: last_rev,
            events,
        }));
    }
    for r in replies {
        r.send();
    }
}

/// A reply slot for a request that never ran (the batch failed before applying anything).
fn early_reply(r: Request) -> Reply {
    let err = || StoreError::Storage("not applied".into());
    match r {
        Request::Txn { resp, .. } => Reply::Txn(resp, Err(err())),
        Request::LeaseGrant { resp, .. } => Reply::Lease(resp, Err(err())),
        Request::LeaseRevoke { resp, .. } | Request::Compact { resp, .. } => {
            Reply::Unit(resp, Err(err()))
        }
    }
}

fn fail_batch(shared: &Shared, replies: Vec<Reply>, err: &str) {
    let reason = format!("write to {} failed: {err}", shared.path.display());
    tracing::error!("{reason}; refusing further writes until restart");
    *shared.failed.lock() = Some(reason.clone());
    for r in replies {
        r.fail(&reason);
    }
}

/// The batch's last revision and its events.
type Applied = (Revision, Vec<Event>);

fn apply_all(
    shared: &Shared,
    wtx: &WriteTransaction,
    start_rev: Revision,
    batch: Vec<Request>,
    replies: &mut Vec<Reply>,
) -> std::result::Result<Applied, String> {
    let s = |e: redb::Error| e.to_string();
    let mut b = Batch {
        log: wtx.open_table(LOG).map_err(|e| s(e.into()))?,
        leases_table: wtx.open_table(LEASES).map_err(|e| s(e.into()))?,
        next_rev: start_rev + 1,
        compact: None,
        events: Vec::new(),
    };
    // On a storage failure every request of the batch, applied or not, must still be answered
    // (with the failure): none may be left to look like a closed store.
    let mut pending = batch.into_iter();
    while let Some(req) = pending.next() {
        let fatal = match req {
            Request::Txn { req, resp } => {
                settle(replies, Reply::Txn, resp, apply_txn(shared, &mut b, &req))
            }
            Request::LeaseGrant { ttl, resp } => {
                let id = shared.leases.lock().new_id();
                let outcome = b
                    .leases_table
                    .insert(id, ttl)
                    .map_err(redb::Error::from)
                    .map(|_| {
                        shared.leases.lock().insert(id, ttl, Instant::now());
                        Ok(Lease { id, ttl })
                    });
                settle(replies, Reply::Lease, resp, outcome)
            }
            Request::LeaseRevoke { id, resp } => {
                settle(replies, Reply::Unit, resp, revoke(shared, &mut b, id))
            }
            Request::Compact { rev, resp } => {
                settle(replies, Reply::Unit, resp, compact(shared, &mut b, rev))
            }
        };
        if let Some(e) = fatal {
            replies.extend(pending.map(early_reply));
            return Err(e);
        }
    }
    let last_rev = b.next_rev - 1;
    let compact = b.compact;
    let events = std::mem::take(&mut b.events);
    drop(b);
    let mut meta = wtx.open_table(META).map_err(|e| s(e.into()))?;
    write_meta_revisions(&mut meta, last_rev, compact).map_err(|e| s(e.into()))?;
    Ok((last_rev, events))
}

/// A request's outcome: `Ok(answer)` (which may itself be a refusal of that request alone) or
/// `Err` for a storage failure that fails the whole batch.
type Applies<T> = std::result::Result<Result<T>, redb::Error>;

/// Queues a request's answer; returns the storage failure, if that is what it met.
fn settle<T>(
    replies: &mut Vec<Reply>,
    wrap: fn(oneshot::Sender<Result<T>>, Result<T>) -> Reply,
    resp: oneshot::Sender<Result<T>>,
    outcome: Applies<T>,
) -> Option<String> {
    match outcome {
        Ok(answer) => {
            replies.push(wrap(resp, answer));
            None
        }
        Err(e) => {
            replies.push(wrap(resp, Err(StoreError::Storage("not applied".into()))));
            Some(e.to_string())
        }
    }
}

fn read_kv(
    log: &Table<'_, LogPos, &'static [u8]>,
    e: &Entry,
    with_value: bool,
) -> std::result::Result<KeyValue, redb::Error> {
    if !with_value {
        return Ok(KeyValue {
            key: Vec::new(),
            value: Vec::new(),
            create_revision: e.create_revision,
            mod_revision: e.rev,
            version: e.version,
            lease: e.lease,
        });
    }
    let guard = log
        .get(e.pos())?
        .ok_or_else(|| redb::Error::Corrupted(format!("log record {:?} is missing", e.pos())))?;
    let rec = Record::decode(e.pos(), guard.value())
        .map_err(|e| redb::Error::Corrupted(e.to_string()))?;
    Ok(rec.to_kv(e.pos(), true))
}

/// Checks what etcd checks on the branch that runs, in etcd's order: first that every lease a
/// put names exists, then that every read at a past revision can be served. (Keys written twice
/// are refused before the transaction is queued, for both branches.)
fn check_ops(shared: &Shared, ops: &[TxnOp], current: Revision) -> Result<()> {
    for op in ops {
        if let TxnOp::Put(p) = op {
            if p.lease != 0 && !shared.leases.lock().contains(p.lease) {
                return Err(StoreError::LeaseNotFound(p.lease));
            }
        }
    }
    for op in ops {
        if let TxnOp::Range(r) = op {
            if r.revision <= 0 {
                continue;
            }
            let compact = shared.index.read().compact;
            if r.revision < compact {
                return Err(StoreError::Compacted {
                    requested: r.revision,
                    compact_revision: compact,
                });
            }
            if r.revision > current {
                return Err(StoreError::FutureRevision {
                    requested: r.revision,
                    current,
                });
            }
        }
    }
    Ok(())
}

fn apply_txn(shared: &Shared, b: &mut Batch<'_>, req: &TxnRequest) -> Applies<TxnResponse> {
    let mut succeeded = true;
    for c in &req.compare {
        let with_value = matches!(c.target, CompareTarget::Value(_));
        let latest = shared.index.read().latest(&c.key).copied();
        let kv = load(b, &c.key, latest, with_value)?;
        if !c.evaluate(kv.as_ref()) {
            succeeded = false;
            break;
        }
    }
    let ops = if succeeded {
        &req.success
    } else {
        &req.failure
    };
    if let Err(e) = check_ops(shared, ops, b.next_rev - 1) {
        return Ok(Err(e));
    }
    let rev = b.next_rev;
    let mut sub: u32 = 0;
    let mut responses = Vec::with_capacity(ops.len());
    for op in ops {
        let resp = match op {
            TxnOp::Put(p) => {
                let prev = write_put(shared, b, rev, sub, p)?;
                sub += 1;
                TxnOpResponse::Put {
                    prev_kv: if p.prev_kv { prev } else { None },
                }
            }
            TxnOp::Delete(d) => {
                let keys: Vec<Vec<u8>> = {
                    let idx = shared.index.read();
                    let (sel, _) = idx.select(&d.range, Revision::MAX, 0, true);
                    sel.into_iter().map(|(k, _)| k.to_vec()).collect()
                };
                let mut prev_kvs = Vec::new();
                for key in &keys {
                    let prev = write_delete(shared, b, rev, sub, key)?;
                    sub += 1;
                    if d.prev_kv {
                        prev_kvs.extend(prev);
                    }
                }
                TxnOpResponse::Delete {
                    deleted: keys.len() as i64,
                    prev_kvs,
                }
            }
            TxnOp::Range(r) => TxnOpResponse::Range(range_in_batch(shared, b, r)?),
        };
        responses.push(resp);
    }
    if sub > 0 {
        b.next_rev += 1;
    }
    let header_revision = b.next_rev - 1;
    // As in etcd, every read in a transaction reports the transaction's final revision.
    for r in &mut responses {
        if let TxnOpResponse::Range(rr) = r {
            rr.header_revision = header_revision;
        }
    }
    Ok(Ok(TxnResponse {
        succeeded,
        header_revision,
        responses,
    }))
}

/// A read inside a transaction: sees the batch's and the transaction's own earlier writes.
/// Its header revision is filled in once the transaction is done.
fn range_in_batch(
    shared: &Shared,
    b: &Batch<'_>,
    r: &RangeRequest,
) -> std::result::Result<RangeResponse, redb::Error> {
    let (sel, count) = {
        let idx = shared.index.read();
        let at = if r.revision > 0 {
            r.revision
        } else {
            Revision::MAX
        };
        let (sel, count) = idx.select(&r.range, at, r.limit.max(0) as usize, !r.count_only);
        let sel: Vec<(Vec<u8>, Entry)> = sel.into_iter().map(|(k, e)| (k.to_vec(), e)).collect();
        (sel, count)
    };
    let mut kvs = Vec::with_capacity(sel.len());
    for (key, e) in sel {
        let mut kv = read_kv(&b.log, &e, !r.keys_only)?;
        kv.key = key;
        kvs.push(kv);
    }
    let more = !r.count_only && r.limit > 0 && count > r.limit as usize;
    Ok(RangeResponse {
        header_revision: 0,
        kvs,
        more,
        count: count as i64,
    })
}

/// The key's state as `entry` describes it (including changes made earlier in this batch),
/// with its value if asked for.
fn load(
    b: &Batch<'_>,
    key: &[u8],
    entry: Option<Entry>,
    with_value: bool,
) -> std::result::Result<Option<KeyValue>, redb::Error> {
    match entry {
        None => Ok(None),
        Some(e) => {
            let mut kv = read_kv(&b.log, &e, with_value)?;
            kv.key = key.to_vec();
            Ok(Some(kv))
        }
    }
}

/// A key's state as a write in transaction `rev` sees it: `latest` includes the transaction's
/// own earlier writes (what a put's or delete's `prev_kv` answer shows), `before` is the state
/// before the transaction (what a watch event's `prev_kv` shows: etcd reads it at `rev - 1`).
/// The two differ only when one transaction touches a key twice.
struct Prior {
    latest: Option<Entry>,
    latest_kv: Option<KeyValue>,
    before: Option<Entry>,
    before_kv: Option<KeyValue>,
}

fn prior(
    shared: &Shared,
    b: &Batch<'_>,
    key: &[u8],
    rev: Revision,
) -> std::result::Result<Prior, redb::Error> {
    let (latest, before) = {
        let idx = shared.index.read();
        (idx.latest(key).copied(), idx.at(key, rev - 1).copied())
    };
    let latest_kv = load(b, key, latest, true)?;
    let before_kv = if before == latest {
        latest_kv.clone()
    } else {
        load(b, key, before, true)?
    };
    Ok(Prior {
        latest,
        latest_kv,
        before,
        before_kv,
    })
}

/// Writes a put; returns the key's previous state.
fn write_put(
    shared: &Shared,
    b: &mut Batch<'_>,
    rev: Revision,
    sub: u32,
    p: &PutRequest,
) -> std::result::Result<Option<KeyValue>, redb::Error> {
    let prior = prior(shared, b, &p.key, rev)?;
    let entry = Entry {
        rev,
        sub,
        tombstone: false,
        create_revision: prior.latest.map_or(rev, |e| e.create_revision),
        version: prior.latest.map_or(1, |e| e.version + 1),
        lease: p.lease,
    };
    let rec = Record {
        key: &p.key,
        tombstone: false,
        create_revision: entry.create_revision,
        version: entry.version,
        lease: p.lease,
        prev: prior.before.map(|e| e.pos()),
        value: &p.value,
    };
    b.log.insert(entry.pos(), encode(&rec)?.as_slice())?;
    shared.index.write().push(&p.key, entry);
    let old_lease = prior.latest.map_or(0, |e| e.lease);
    shared.leases.lock().reattach(&p.key, old_lease, p.lease);
    b.events.push(Event {
        kind: EventKind::Put,
        kv: rec.to_kv(entry.pos(), true),
        prev_kv: prior.before_kv,
    });
    Ok(prior.latest_kv)
}

/// Writes a deletion of a key that exists; returns its last state.
fn write_delete(
    shared: &Shared,
    b: &mut Batch<'_>,
    rev: Revision,
    sub: u32,
    key: &[u8],
) -> std::result::Result<Option<KeyValue>, redb::Error> {
    let prior = prior(shared, b, key, rev)?;
    let Some(latest) = prior.latest else {
        return Ok(None);
    };
    let entry = Entry {
        rev,
        sub,
        tombstone: true,
        create_revision: 0,
        version: 0,
        lease: 0,
    };
    let rec = Record {
        key,
        tombstone: true,
        create_revision: 0,
        version: 0,
        lease: 0,
        prev: prior.before.map(|e| e.pos()),
        value: &[],
    };
    b.log.insert(entry.pos(), encode(&rec)?.as_slice())?;
    shared.index.write().push(key, entry);
    shared.leases.lock().reattach(key, latest.lease, 0);
    b.events.push(Event {
        kind: EventKind::Delete,
        kv: rec.to_kv(entry.pos(), false),
        prev_kv: prior.before_kv,
    });
    Ok(prior.latest_kv)
}

fn encode(rec: &Record<'_>) -> std::result::Result<Vec<u8>, redb::Error> {
    rec.encode()
        .map_err(|e| redb::Error::Corrupted(format!("cannot encode a log record: {e}")))
}

fn revoke(shared: &Shared, b: &mut Batch<'_>, id: LeaseId) -> Applies<()> {
    let Some(state) = shared.leases.lock().remove(id) else {
        return Ok(Err(StoreError::LeaseNotFound(id)));
    };
    b.leases_table.remove(id)?;
    let rev = b.next_rev;
    let mut sub = 0;
    for key in &state.keys {
        if write_delete(shared, b, rev, sub, key)?.is_some() {
            sub += 1;
        }
    }
    if sub > 0 {
        b.next_rev += 1;
    }
    Ok(Ok(()))
}

fn compact(shared: &Shared, b: &mut Batch<'_>, rev: Revision) -> Applies<()> {
    let current = b.next_rev - 1;
    let dropped = {
        let mut idx = shared.index.write();
        if rev > current {
            return Ok(Err(StoreError::FutureRevision {
                requested: rev,
                current,
            }));
        }
        if rev <= idx.compact {
            return Ok(Err(StoreError::Compacted {
                requested: rev,
                compact_revision: idx.compact,
            }));
        }
        idx.compact(rev)
    };
    for pos in dropped {
        b.log.remove(pos)?;
    }
    b.compact = Some(rev);
    Ok(Ok(()))
}
