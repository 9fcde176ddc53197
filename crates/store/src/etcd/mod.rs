//! The etcd backend: [`EtcdStore`] maps the [`Store`] trait onto a real etcd cluster through
//! `etcd-client`. The trait was modelled on etcd's v3 API, so most calls are one RPC; the work
//! here is in the details etcd's answers leave out (the compaction point behind a "compacted"
//! error, the lease behind "lease not found") and in running each watch as a task with
//! backpressure (see `watch.rs`).

mod convert;
mod error;
mod watch;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use etcd_client as ec;

use self::error::map_error;
use crate::error::{Result, StoreError};
use crate::types::{
    KeyRange, Lease, LeaseId, LeaseTimeToLive, RangeRequest, RangeResponse, Revision, TxnOp,
    TxnRequest, TxnResponse, WatchRequest,
};
use crate::{Store, WatchStream};

/// How long [`EtcdStore::connect`] waits for etcd to answer before giving up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest response the client accepts. etcd itself sends up to 2 GiB, and a list of a large
/// Kubernetes collection easily passes tonic's default of 4 MiB.
const MAX_RESPONSE_BYTES: usize = i32::MAX as usize;

/// A [`Store`] backed by an etcd cluster.
///
/// Cloning is cheap and shares the connection.
#[derive(Clone)]
pub struct EtcdStore {
    endpoints: Vec<String>,
    kv: ec::KvClient,
    watch: ec::WatchClient,
    lease: ec::LeaseClient,
}

impl fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdStore")
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

/// What a failed call was about, for filling in the details etcd's error messages leave out.
enum Origin<'a> {
    /// A read, a compaction: the revision asked for.
    Revision(Revision),
    /// A transaction.
    Txn(&'a TxnRequest),
    /// A lease call.
    Lease(LeaseId),
}

impl EtcdStore {
    /// Connects to an etcd cluster (`http://host:port` endpoints) and checks that it answers.
    pub async fn connect(endpoints: &[String]) -> Result<EtcdStore> {
        // HTTP/2 keep-alive notices a dead connection under a watch that sees no traffic. etcd
        // refuses pings more often than every 5 s (`--grpc-keepalive-min-time`).
        let opts = ec::ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            .with_keep_alive(Duration::from_secs(30), Duration::from_secs(10));
        let client = ec::Client::connect(endpoints, Some(opts))
            .await
            .map_err(map_error)?;
        let store = EtcdStore {
            endpoints: endpoints.to_vec(),
            kv: client
                .kv_client()
                .max_decoding_message_size(MAX_RESPONSE_BYTES),
            watch: client
                .watch_client()
                .max_decoding_message_size(MAX_RESPONSE_BYTES),
            lease: client.lease_client(),
        };
        // The client connects lazily; fail here rather than on the first request.
        match tokio::time::timeout(CONNECT_TIMEOUT, store.current_revision()).await {
            Ok(Ok(_)) => Ok(store),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(StoreError::Unavailable(format!(
                "etcd at {endpoints:?} did not answer within {CONNECT_TIMEOUT:?}"
            ))),
        }
    }

    /// Completes an error from [`map_error`] with what the request says and, where needed, what
    /// etcd can tell on a second question.
    async fn explain(&self, err: StoreError, origin: Origin<'_>) -> StoreError {
        match err {
            StoreError::Compacted { .. } => StoreError::Compacted {
                requested: origin.revision(),
                // Unknown only if etcd stops answering meanwhile; 0 then says "not known".
                compact_revision: watch::compact_revision(self.watch.clone())
                    .await
                    .unwrap_or(0),
            },
            StoreError::FutureRevision { .. } => StoreError::FutureRevision {
                requested: origin.revision(),
                current: self.current_revision().await.unwrap_or(0),
            },
            StoreError::RequestTooLarge { limit, .. } => {
                let size = match origin {
                    Origin::Txn(req) => req.encoded_len(),
                    _ => 0,
                };
                StoreError::RequestTooLarge { size, limit }
            }
            StoreError::LeaseNotFound(_) => StoreError::LeaseNotFound(match origin {
                Origin::Lease(id) => id,
                Origin::Txn(req) => self.missing_lease(req).await,
                Origin::Revision(_) => 0,
            }),
            StoreError::DuplicateKey(_) => StoreError::DuplicateKey(match origin {
                Origin::Txn(req) => duplicate_key(req)
                    .map(|k| String::from_utf8_lossy(k).into_owned())
                    .unwrap_or_default(),
                _ => String::new(),
            }),
            other => other,
        }
    }

    /// The lease a refused transaction named that does not exist. etcd does not say which; with
    /// one lease in the request it is that one, with several we ask about each.
    async fn missing_lease(&self, req: &TxnRequest) -> LeaseId {
        let mut leases: Vec<LeaseId> = req
            .success
            .iter()
            .chain(&req.failure)
            .filter_map(|op| match op {
                TxnOp::Put(p) if p.lease != 0 => Some(p.lease),
                _ => None,
            })
            .collect();
        leases.sort_unstable();
        leases.dedup();
        if let [only] = leases.as_slice() {
            return *only;
        }
        for &id in &leases {
            if let Ok(None) = self.lease_time_to_live(id).await {
                return id;
            }
        }
        leases.first().copied().unwrap_or(0)
    }
}

impl Origin<'_> {
    fn revision(&self) -> Revision {
        match self {
            Origin::Revision(rev) => *rev,
            // The first read at an explicit revision is the one etcd can have refused.
            Origin::Txn(req) => req
                .success
                .iter()
                .chain(&req.failure)
                .find_map(|op| match op {
                    TxnOp::Range(r) if r.revision != 0 => Some(r.revision),
                    _ => None,
                })
                .unwrap_or(0),
            Origin::Lease(_) => 0,
        }
    }
}

/// The key a transaction writes twice in one branch, which etcd refuses without naming it: two
/// puts of one key, or a put of a key that a deletion in the same branch covers.
fn duplicate_key(req: &TxnRequest) -> Option<&[u8]> {
    for ops in [&req.success, &req.failure] {
        let mut puts: Vec<&[u8]> = Vec::new();
        for op in ops.iter() {
            if let TxnOp::Put(p) = op {
                if puts.contains(&p.key.as_slice()) {
                    return Some(&p.key);
                }
                puts.push(&p.key);
            }
        }
        for op in ops.iter() {
            if let TxnOp::Delete(d) = op {
                if let Some(key) = puts.iter().find(|k| d.range.contains(k)) {
                    return Some(key);
                }
            }
        }
    }
    None
}

#[async_trait]
impl Store for EtcdStore {
    async fn range(&self, req: RangeRequest) -> Result<RangeResponse> {
        let (key, opts) = convert::get_options(&req);
        match self.kv.clone().get(key, Some(opts)).await {
            Ok(resp) => {
                let rev = convert::header_revision(resp.header())?;
                Ok(convert::range_response(resp, rev))
            }
            Err(e) => Err(self
                .explain(map_error(e), Origin::Revision(req.revision))
                .await),
        }
    }

    async fn txn(&self, req: TxnRequest) -> Result<TxnResponse> {
        let resp = match self.kv.clone().txn(convert::txn(&req)).await {
            Ok(resp) => resp,
            Err(e) => return Err(self.explain(map_error(e), Origin::Txn(&req)).await),
        };
        let header_revision = convert::header_revision(resp.header())?;
        let responses = resp
            .op_responses()
            .into_iter()
            .map(|r| convert::txn_op_response(r, header_revision))
            .collect::<Result<Vec<_>>>()?;
        Ok(TxnResponse {
            succeeded: resp.succeeded(),
            header_revision,
            responses,
        })
    }

    async fn watch(&self, req: WatchRequest) -> Result<WatchStream> {
        watch::start(self.watch.clone(), req).await
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        // Physical: return only once the old revisions are gone, so that what follows sees the
        // compaction in full.
        let opts = ec::CompactionOptions::new().with_physical();
        match self.kv.clone().compact(revision, Some(opts)).await {
            Ok(_) => Ok(()),
            Err(e) => Err(self.explain(map_error(e), Origin::Revision(revision)).await),
        }
    }

    async fn lease_grant(&self, ttl: i64) -> Result<Lease> {
        let resp = match self.lease.clone().grant(ttl, None).await {
            Ok(resp) => resp,
            Err(e) => return Err(self.explain(map_error(e), Origin::Lease(0)).await),
        };
        if !resp.error().is_empty() {
            return Err(StoreError::InvalidArgument(resp.error().to_string()));
        }
        Ok(Lease {
            id: resp.id(),
            ttl: resp.ttl(),
        })
    }

    async fn lease_keep_alive(&self, id: LeaseId) -> Result<i64> {
        // `etcd-client` sends one keep-alive when it opens the stream but keeps its answer to
        // itself (it only checks the lease exists), so a second one learns the TTL. Renewing
        // twice in a row is harmless.
        let (mut keeper, mut stream) = match self.lease.clone().keep_alive(id).await {
            Ok(pair) => pair,
            Err(ec::Error::LeaseKeepAliveError(msg)) if msg.contains("not found") => {
                return Err(StoreError::LeaseNotFound(id))
            }
            Err(e) => return Err(self.explain(map_error(e), Origin::Lease(id)).await),
        };
        keeper.keep_alive().await.map_err(map_error)?;
        match stream.message().await {
            // etcd answers a keep-alive for an unknown (or just expired) lease with TTL 0.
            Ok(Some(resp)) if resp.ttl() > 0 => Ok(resp.ttl()),
            Ok(Some(_)) => Err(StoreError::LeaseNotFound(id)),
            Ok(None) => Err(StoreError::Unavailable(
                "etcd closed the keep-alive stream".into(),
            )),
            Err(e) => Err(self.explain(map_error(e), Origin::Lease(id)).await),
        }
    }

    async fn lease_revoke(&self, id: LeaseId) -> Result<()> {
        match self.lease.clone().revoke(id).await {
            Ok(_) => Ok(()),
            Err(e) => Err(self.explain(map_error(e), Origin::Lease(id)).await),
        }
    }

    async fn lease_time_to_live(&self, id: LeaseId) -> Result<Option<LeaseTimeToLive>> {
        let opts = ec::LeaseTimeToLiveOptions::new().with_keys();
        let resp = match self.lease.clone().time_to_live(id, Some(opts)).await {
            Ok(resp) => resp,
            Err(e) => {
                return match map_error(e) {
                    StoreError::LeaseNotFound(_) => Ok(None),
                    other => Err(self.explain(other, Origin::Lease(id)).await),
                }
            }
        };
        // etcd answers -1 for a lease it does not know, and a negative TTL for one that has
        // expired but whose revocation has not been applied yet: gone either way.
        if resp.ttl() < 0 {
            return Ok(None);
        }
        Ok(Some(LeaseTimeToLive {
            id,
            ttl: resp.ttl(),
            granted_ttl: resp.granted_ttl(),
            keys: resp.keys().to_vec(),
        }))
    }

    async fn current_revision(&self) -> Result<Revision> {
        // etcd refuses the empty key the trait's default reads first; `\0` is the smallest key
        // etcd accepts, and any key's header carries the revision.
        let req = RangeRequest::new(KeyRange::key(vec![0])).count_only();
        Ok(self.range(req).await?.header_revision)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{DeleteRequest, PutRequest};

    #[test]
    fn duplicate_key_finds_two_puts_or_a_put_under_a_delete_in_one_branch() {
        let put = |k: &str| TxnOp::Put(PutRequest::new(k, "v"));
        let twice = TxnRequest {
            success: vec![put("a"), put("b"), put("a")],
            ..Default::default()
        };
        assert_eq!(duplicate_key(&twice), Some(&b"a"[..]));
        let covered = TxnRequest {
            failure: vec![
                put("p/x"),
                TxnOp::Delete(DeleteRequest::new(KeyRange::prefix("p/"))),
            ],
            ..Default::default()
        };
        assert_eq!(duplicate_key(&covered), Some(&b"p/x"[..]));
        let branches = TxnRequest {
            success: vec![put("a")],
            failure: vec![put("a")],
            ..Default::default()
        };
        assert_eq!(duplicate_key(&branches), None);
    }
}
