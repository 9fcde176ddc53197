//! Watches. Each watch is a task that first replays history from the log (in chunks, each from
//! a fresh read snapshot) and then follows the batches the committer publishes through the
//! [`Hub`]. The hub never blocks the committer: a watcher whose buffer is full is dropped from
//! the hub, finishes what it has buffered, and catches up from the log again. So a slow watcher
//! costs disk reads, not memory, and loses nothing; if it falls behind the compaction point it
//! gets [`StoreError::Compacted`], as in etcd.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use parking_lot::Mutex;
use redb::ReadableDatabase;
use tokio::sync::mpsc;

use super::codec::Record;
use super::disk::LOG;
use super::Shared;
use crate::error::{Result, StoreError};
use crate::types::*;
use crate::WatchStream;

/// Batches a watcher may have queued before the hub drops it.
const LIVE_BUFFER: usize = 256;
/// Responses a watch stream buffers for its reader.
const OUT_BUFFER: usize = 64;
/// Events read from the log per snapshot while catching up.
const REPLAY_CHUNK: usize = 1000;

/// The events of one committed batch, in revision order.
#[derive(Debug)]
pub(crate) struct Committed {
    /// The batch's last revision.
    pub rev: Revision,
    pub events: Vec<Event>,
}

#[derive(Debug)]
struct Sub {
    id: u64,
    range: KeyRange,
    tx: mpsc::Sender<Arc<Committed>>,
}

#[derive(Debug)]
struct HubState {
    rev: Revision,
    subs: Vec<Sub>,
    next_id: u64,
    closed: bool,
}

/// Fan-out of committed batches to live watchers.
#[derive(Debug)]
pub(crate) struct Hub {
    state: Mutex<HubState>,
}

impl Hub {
    pub fn new(rev: Revision) -> Self {
        Hub {
            state: Mutex::new(HubState {
                rev,
                subs: Vec::new(),
                next_id: 0,
                closed: false,
            }),
        }
    }

    /// Publishes a batch to every watcher whose range it touches.
    pub fn publish(&self, batch: Arc<Committed>) {
        let mut st = self.state.lock();
        st.rev = batch.rev;
        st.subs.retain(|s| {
            if !batch.events.iter().any(|e| s.range.contains(&e.kv.key)) {
                return true;
            }
            // Full: the watcher lags and will catch up from the log. Closed: it is gone.
            s.tx.try_send(batch.clone()).is_ok()
        });
    }

    /// Drops every watcher: the store is closing.
    pub fn close(&self) {
        let mut st = self.state.lock();
        st.closed = true;
        st.subs.clear();
    }

    fn register(
        &self,
        range: &KeyRange,
    ) -> Option<(u64, mpsc::Receiver<Arc<Committed>>, Revision)> {
        let mut st = self.state.lock();
        if st.closed {
            return None;
        }
        let (tx, rx) = mpsc::channel(LIVE_BUFFER);
        let id = st.next_id;
        st.next_id += 1;
        st.subs.push(Sub {
            id,
            range: range.clone(),
            tx,
        });
        Some((id, rx, st.rev))
    }

    fn unregister(&self, id: u64) {
        self.state.lock().subs.retain(|s| s.id != id);
    }

    /// The revision through which a live watcher has seen everything, if its queue is empty
    /// and it is still registered. Holding the hub lock makes the check atomic with publishing.
    fn synced(&self, rx: &mpsc::Receiver<Arc<Committed>>) -> Option<Revision> {
        let st = self.state.lock();
        (rx.is_empty() && !rx.is_closed()).then_some(st.rev)
    }
}

/// Starts a watch task and returns its stream.
///
/// The watch registers with the hub before this returns, so that "from now" (a start revision
/// of 0) means the revision current at the call, and no write made after it is missed.
pub(crate) fn start(shared: Arc<Shared>, req: WatchRequest) -> Result<WatchStream> {
    let first = shared.hub.register(&req.range).ok_or_else(closed)?;
    let (out, rx) = mpsc::channel(OUT_BUFFER);
    let (ptx, prx) = mpsc::channel(1);
    tokio::spawn(run(shared, req, first, out, prx));
    Ok(WatchStream::new(rx, ptx))
}

fn closed() -> StoreError {
    StoreError::Unavailable("store closed".into())
}

type Registration = (u64, mpsc::Receiver<Arc<Committed>>, Revision);

fn filter(req: &WatchRequest, events: &[Event], from: Revision) -> Vec<Event> {
    events
        .iter()
        .filter(|e| e.kv.mod_revision >= from && req.range.contains(&e.kv.key))
        .map(|e| {
            let mut e = e.clone();
            if !req.prev_kv {
                e.prev_kv = None;
            }
            e
        })
        .collect()
}

async fn run(
    shared: Arc<Shared>,
    req: WatchRequest,
    first: Registration,
    out: mpsc::Sender<Result<WatchResponse>>,
    mut progress: mpsc::Receiver<()>,
) {
    let mut first = Some(first);
    let mut next = req.start_revision;
    let mut tick = tokio::time::interval(shared.opts.progress_notify_interval);
    tick.tick().await;
    'register: loop {
        let Some((id, mut rx, hub_rev)) = first.take().or_else(|| shared.hub.register(&req.range))
        else {
            let _ = out.send(Err(closed())).await;
            return;
        };
        if next <= 0 {
            next = hub_rev + 1;
        }
        // Catch up from the log.
        while next <= hub_rev {
            let chunk = {
                let shared = shared.clone();
                let req = req.clone();
                tokio::task::spawn_blocking(move || replay(&shared, &req, next, hub_rev)).await
            };
            let (events, through) = match chunk {
                Ok(Ok(v)) => v,
                Ok(Err(e)) => {
                    shared.hub.unregister(id);
                    let _ = out.send(Err(e)).await;
                    return;
                }
                Err(e) => {
                    shared.hub.unregister(id);
                    let _ = out
                        .send(Err(StoreError::Unavailable(format!(
                            "watch task failed: {e}"
                        ))))
                        .await;
                    return;
                }
            };
            if !events.is_empty()
                && out
                    .send(Ok(WatchResponse {
                        header_revision: hub_rev,
                        events,
                    }))
                    .await
                    .is_err()
            {
                shared.hub.unregister(id);
                return;
            }
            next = through + 1;
        }
        // Follow live batches.
        let mut progress_wanted = false;
        loop {
            if progress_wanted {
                if let Some(rev) = shared.hub.synced(&rx) {
                    progress_wanted = false;
                    let resp = WatchResponse {
                        header_revision: rev.max(next - 1),
                        events: Vec::new(),
                    };
                    if out.send(Ok(resp)).await.is_err() {
                        shared.hub.unregister(id);
                        return;
                    }
                }
            }
            tokio::select! {
                biased;
                _ = out.closed() => {
                    shared.hub.unregister(id);
                    return;
                }
                batch = rx.recv() => match batch {
                    Some(batch) => {
                        let events = filter(&req, &batch.events, next);
                        next = next.max(batch.rev + 1);
                        if !events.is_empty()
                            && out.send(Ok(WatchResponse { header_revision: batch.rev, events })).await.is_err()
                        {
                            shared.hub.unregister(id);
                            return;
                        }
                    }
                    // Dropped by the hub for lagging: catch up from the log.
                    None => {
                        shared.stats.watch_resyncs.fetch_add(1, Ordering::Relaxed);
                        continue 'register;
                    }
                },
                Some(()) = progress.recv() => progress_wanted = true,
                _ = tick.tick(), if req.progress_notify => progress_wanted = true,
            }
        }
    }
}

/// Reads events of `req` from the log from revision `from` up to `to`, at most about
/// [`REPLAY_CHUNK`] of them (never splitting a revision). Returns them and the revision through
/// which the log was read.
fn replay(
    shared: &Shared,
    req: &WatchRequest,
    from: Revision,
    to: Revision,
) -> Result<(Vec<Event>, Revision)> {
    let storage =
        |e: &dyn std::fmt::Display| StoreError::Storage(format!("{}: {e}", shared.path.display()));
    let rtx = {
        let idx = shared.index.read();
        if from < idx.compact {
            return Err(StoreError::Compacted {
                requested: from,
                compact_revision: idx.compact,
            });
        }
        shared.db.begin_read().map_err(|e| storage(&e))?
    };
    let log = rtx.open_table(LOG).map_err(|e| storage(&e))?;
    let mut events = Vec::new();
    let mut through = to;
    let mut last_rev = from - 1;
    for (scanned, item) in log
        .range((from as u64, 0)..=(to as u64, u32::MAX))
        .map_err(|e| storage(&e))?
        .enumerate()
    {
        let (k, v) = item.map_err(|e| storage(&e))?;
        let pos = k.value();
        let rev = pos.0 as i64;
        if rev != last_rev && scanned >= REPLAY_CHUNK {
            through = last_rev;
            break;
        }
        last_rev = rev;
        let rec = Record::decode(pos, v.value()).map_err(|e| storage(&e))?;
        if !req.range.contains(rec.key) {
            continue;
        }
        let prev_kv = match (req.prev_kv, rec.prev) {
            (true, Some(p)) => match log.get(p).map_err(|e| storage(&e))? {
                Some(g) => Some(
                    Record::decode(p, g.value())
                        .map_err(|e| storage(&e))?
                        .to_kv(p, true),
                ),
                None => None,
            },
            _ => None,
        };
        events.push(Event {
            kind: if rec.tombstone {
                EventKind::Delete
            } else {
                EventKind::Put
            },
            kv: rec.to_kv(pos, true),
            prev_kv,
        });
    }
    Ok((events, through))
}
