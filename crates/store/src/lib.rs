//! rkube's store: one [`Store`] trait with etcd v3 semantics, and two backends.
//!
//! The API server builds the whole Kubernetes API on this trait, so it offers what the real
//! kube-apiserver needs from etcd: one revision counter, per-key create/mod revisions and
//! versions, ranged reads at old revisions with limits, compare-and-swap transactions, watches
//! from a past revision with previous values and progress notifications, compaction, and leases.
//!
//! - [`embedded::EmbeddedStore`] (the default) keeps everything in one `redb` file with group
//!   commit; see `ARCHITECTURE.md` for why.
//! - [`etcd::EtcdStore`] maps the same trait onto a real etcd cluster through `etcd-client`.
//!
//! Only the API server depends on this crate (the architecture's first invariant).

pub mod embedded;
pub mod error;
pub mod etcd;
pub mod testing;
pub mod types;

use std::pin::Pin;
use std::task::{Context, Poll};

use async_trait::async_trait;
use futures::Stream;
use tokio::sync::mpsc;

pub use error::{Result, StoreError};
pub use types::*;

/// A key-value store with etcd v3 semantics. Every method is atomic on its own.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Reads a key or a range of keys, at the latest revision or an older one.
    async fn range(&self, req: RangeRequest) -> Result<RangeResponse>;

    /// Runs a transaction atomically. A transaction that writes anything gets exactly one new
    /// revision, shared by all its writes; one that writes nothing leaves the revision alone.
    async fn txn(&self, req: TxnRequest) -> Result<TxnResponse>;

    /// Watches a key or a range of keys from a revision (which may be in the past).
    async fn watch(&self, req: WatchRequest) -> Result<WatchStream>;

    /// Discards history older than `revision`. Reads and watches below it then fail with
    /// [`StoreError::Compacted`].
    async fn compact(&self, revision: Revision) -> Result<()>;

    /// Grants a lease that lives `ttl` seconds unless kept alive.
    async fn lease_grant(&self, ttl: i64) -> Result<Lease>;

    /// Renews a lease for its full TTL; returns the TTL.
    async fn lease_keep_alive(&self, id: LeaseId) -> Result<i64>;

    /// Revokes a lease, deleting every key attached to it in one revision.
    async fn lease_revoke(&self, id: LeaseId) -> Result<()>;

    /// A lease's remaining time and keys, or `None` if it does not exist.
    async fn lease_time_to_live(&self, id: LeaseId) -> Result<Option<LeaseTimeToLive>>;

    /// The store's current revision.
    async fn current_revision(&self) -> Result<Revision>;

    /// Writes one key unconditionally; returns the new revision and, if asked, the previous state.
    async fn put(&self, req: PutRequest) -> Result<(Revision, Option<KeyValue>)> {
        let resp = self
            .txn(TxnRequest {
                success: vec![TxnOp::Put(req)],
                ..Default::default()
            })
            .await?;
        let prev = match resp.responses.into_iter().next() {
            Some(TxnOpResponse::Put { prev_kv }) => prev_kv,
            _ => None,
        };
        Ok((resp.header_revision, prev))
    }

    /// Deletes a key or a range unconditionally; returns the revision and how many were deleted.
    async fn delete(&self, req: DeleteRequest) -> Result<(Revision, i64, Vec<KeyValue>)> {
        let resp = self
            .txn(TxnRequest {
                success: vec![TxnOp::Delete(req)],
                ..Default::default()
            })
            .await?;
        match resp.responses.into_iter().next() {
            Some(TxnOpResponse::Delete { deleted, prev_kvs }) => {
                Ok((resp.header_revision, deleted, prev_kvs))
            }
            _ => Ok((resp.header_revision, 0, Vec::new())),
        }
    }

    /// Reads one key at the latest revision.
    async fn get(&self, key: &[u8]) -> Result<Option<KeyValue>> {
        Ok(self
            .range(RangeRequest::new(KeyRange::key(key.to_vec())))
            .await?
            .kvs
            .into_iter()
            .next())
    }
}

/// A live watch. Dropping it cancels the watch.
///
/// Yields [`WatchResponse`]s in revision order with nothing lost or repeated. A watch whose
/// start revision was compacted away (before it started, or while it lagged) yields one
/// [`StoreError::Compacted`] and ends.
#[derive(Debug)]
pub struct WatchStream {
    rx: mpsc::Receiver<Result<WatchResponse>>,
    progress: mpsc::Sender<()>,
}

impl WatchStream {
    /// Builds a stream from the channel a backend's watch task feeds, and the channel on which
    /// it takes progress requests.
    pub(crate) fn new(
        rx: mpsc::Receiver<Result<WatchResponse>>,
        progress: mpsc::Sender<()>,
    ) -> Self {
        WatchStream { rx, progress }
    }

    /// The next response, or `None` when the watch has ended.
    pub async fn next(&mut self) -> Option<Result<WatchResponse>> {
        self.rx.recv().await
    }

    /// Asks for a progress notification: an empty response whose header revision is the
    /// revision up to which every event has been delivered (etcd's `RequestProgress`).
    pub fn request_progress(&self) {
        // A full channel already holds a request that will be answered.
        let _ = self.progress.try_send(());
    }
}

impl Stream for WatchStream {
    type Item = Result<WatchResponse>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}
