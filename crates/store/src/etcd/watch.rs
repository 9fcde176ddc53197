//! Watches over etcd. Each [`WatchStream`] gets its own etcd watch stream and a task that owns
//! it, forwards its responses into a bounded channel, and turns the user's progress requests into
//! etcd progress requests.
//!
//! The channel is bounded on purpose: when the user reads slowly, the task stops reading from
//! etcd, gRPC flow control pushes back, and etcd parks the watcher and resends later. Nothing is
//! lost and memory stays bounded on both sides.

use std::time::Duration;

use etcd_client as ec;
use tokio::sync::mpsc;

use super::convert;
use super::error::map_error;
use crate::error::{Result, StoreError};
use crate::types::{Revision, WatchRequest, WatchResponse};
use crate::WatchStream;

/// How many responses may wait for the user before the task stops reading from etcd.
const CHANNEL_CAPACITY: usize = 128;

/// Starts a watch. Returns once etcd has registered it, so that a write made after this returns
/// is seen by a watch "from now on".
pub(crate) async fn start(mut client: ec::WatchClient, req: WatchRequest) -> Result<WatchStream> {
    let (key, opts) = convert::watch_options(&req);
    let (sender, mut responses) = client
        .watch(key, Some(opts))
        .await
        .map_err(map_error)?
        .split();
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    // One pending request is enough: it will be answered with the latest revision anyway.
    let (progress_tx, progress_rx) = mpsc::channel(1);
    let stream = WatchStream::new(rx, progress_tx);

    let watch_id = loop {
        let resp = match responses.message().await {
            Ok(Some(resp)) => resp,
            Ok(None) => {
                return Err(StoreError::Unavailable(
                    "etcd closed the watch before creating it".into(),
                ))
            }
            Err(e) => return Err(map_error(e)),
        };
        if resp.compact_revision() != 0 {
            // Some etcd versions refuse a compacted start in the creation answer itself.
            let _ = tx.try_send(Err(compacted(req.start_revision, resp.compact_revision())));
            return Ok(stream);
        }
        if resp.created() {
            if resp.canceled() {
                return Err(StoreError::InvalidArgument(format!(
                    "etcd refused the watch: {}",
                    resp.cancel_reason()
                )));
            }
            break resp.watch_id();
        }
    };

    let pump = Pump {
        sender,
        responses,
        watch_id,
        tx,
        progress_rx,
        next_revision: req.start_revision,
    };
    tokio::spawn(pump.run());
    Ok(stream)
}

fn compacted(requested: Revision, compact_revision: Revision) -> StoreError {
    StoreError::Compacted {
        requested,
        compact_revision,
    }
}

struct Pump {
    sender: ec::WatchRequestSender,
    responses: ec::WatchResponseStream,
    watch_id: i64,
    tx: mpsc::Sender<Result<WatchResponse>>,
    progress_rx: mpsc::Receiver<()>,
    /// The first revision not yet delivered, which a compaction may have removed.
    next_revision: Revision,
}

impl Pump {
    async fn run(mut self) {
        if let Some(last) = self.forward().await {
            // The user may already be gone; then nobody needs to hear how it ended.
            let _ = self.tx.send(Err(last)).await;
        }
        // Dropping the streams would end the watch too, but a cancel lets etcd free the watcher
        // without waiting for the stream reset.
        let _ = self.sender.cancel(self.watch_id).await;
    }

    /// Forwards responses until the watch ends; returns the error to deliver last, if any.
    async fn forward(&mut self) -> Option<StoreError> {
        loop {
            let msg = tokio::select! {
                _ = self.tx.closed() => return None,
                req = self.progress_rx.recv() => {
                    // `None` means the WatchStream was dropped.
                    req?;
                    if let Err(e) = self.sender.request_progress().await {
                        return Some(map_error(e));
                    }
                    continue;
                }
                msg = self.responses.message() => msg,
            };
            let resp = match msg {
                Ok(Some(resp)) => resp,
                Ok(None) => return Some(StoreError::Unavailable("etcd closed the watch".into())),
                Err(e) => return Some(map_error(e)),
            };
            if resp.compact_revision() != 0 {
                return Some(compacted(self.next_revision, resp.compact_revision()));
            }
            if resp.canceled() {
                return Some(StoreError::Unavailable(format!(
                    "etcd canceled the watch: {}",
                    resp.cancel_reason()
                )));
            }
            if resp.created() {
                continue;
            }
            let out = match convert::watch_response(&resp) {
                Ok(out) => out,
                Err(e) => return Some(e),
            };
            if let Some(last) = out.events.last() {
                self.next_revision = last.kv.mod_revision + 1;
            }
            if self.tx.send(Ok(out)).await.is_err() {
                return None;
            }
        }
    }
}

/// etcd's compaction point, which its "compacted" errors on reads do not state. A watch from
/// revision 1 is answered with it (etcd checks watches against the compaction point within its
/// 100 ms sync period), and etcd has already dropped that watch when it answers, so dropping the
/// stream is all the cleanup needed. `None` if etcd does not say in time.
pub(crate) async fn compact_revision(mut client: ec::WatchClient) -> Option<Revision> {
    let opts = ec::WatchOptions::new().with_start_revision(1);
    let mut stream = client.watch(vec![0], Some(opts)).await.ok()?;
    let lookup = async {
        loop {
            let resp = stream.message().await.ok()??;
            if resp.compact_revision() != 0 {
                return Some(resp.compact_revision());
            }
            if resp.canceled() {
                return None;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), lookup)
        .await
        .ok()?
}
