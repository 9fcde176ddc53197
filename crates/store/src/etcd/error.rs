//! Mapping `etcd-client` failures onto [`StoreError`].
//!
//! etcd reports most failures as a gRPC status whose message is one of a fixed set of strings
//! (`etcdserver: ...`, `mvcc: ...`), so the mapping matches on those. The messages do not carry
//! the details our errors have (which revision, which lease, which key): [`map_error`] fills those
//! with zeros and the caller, which knows its request, completes them (see `EtcdStore::explain`).

use etcd_client::Error as EtcdError;

use crate::error::StoreError;
use crate::types::DEFAULT_MAX_REQUEST_BYTES;

// gRPC status codes (https://grpc.github.io/grpc/core/md_doc_statuscodes.html), compared as
// numbers so that this crate needs no direct dependency on `tonic`.
const INVALID_ARGUMENT: i32 = 3;
const RESOURCE_EXHAUSTED: i32 = 8;
const OUT_OF_RANGE: i32 = 11;

/// The store error for an etcd failure, with request-specific details left at zero.
pub(crate) fn map_error(err: EtcdError) -> StoreError {
    let status = match err {
        EtcdError::GRpcStatus(status) => status,
        EtcdError::InvalidArgs(msg) => return StoreError::InvalidArgument(msg),
        other => return StoreError::Unavailable(other.to_string()),
    };
    let code = i32::from(status.code());
    let msg = status.message();
    if msg.contains("required revision has been compacted") {
        StoreError::Compacted {
            requested: 0,
            compact_revision: 0,
        }
    } else if msg.contains("required revision is a future revision") {
        StoreError::FutureRevision {
            requested: 0,
            current: 0,
        }
    } else if msg.contains("request is too large")
        || msg.contains("message larger than max")
        || code == RESOURCE_EXHAUSTED
    {
        // The second form is gRPC's own limit (etcd's limit plus 512 KiB of slack), hit before
        // etcd sees the request at all.
        StoreError::RequestTooLarge {
            size: 0,
            limit: DEFAULT_MAX_REQUEST_BYTES,
        }
    } else if msg.contains("requested lease not found") {
        StoreError::LeaseNotFound(0)
    } else if msg.contains("duplicate key given in txn request") {
        StoreError::DuplicateKey(String::new())
    } else if msg.contains("message length too large") {
        // The client's own limit on a response's size: nothing wrong with the request itself.
        StoreError::Unavailable(format!("etcd's response is too large: {msg}"))
    } else if code == INVALID_ARGUMENT || code == OUT_OF_RANGE {
        // etcd uses OutOfRange for arguments out of bounds too ("too large lease TTL").
        StoreError::InvalidArgument(msg.to_string())
    } else {
        StoreError::Unavailable(format!("{:?}: {msg}", status.code()))
    }
}
