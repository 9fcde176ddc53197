//! The store's typed errors. Both backends map their failures onto these, so that the API server
//! can turn each into the right Kubernetes `Status` without knowing which backend it runs on.

use std::path::PathBuf;

use crate::types::{LeaseId, Revision};

/// A store operation's failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The revision asked for (a read or a watch start) is older than the compaction point.
    #[error(
        "required revision {requested} has been compacted (compact revision {compact_revision})"
    )]
    Compacted {
        /// The revision that was asked for.
        requested: Revision,
        /// The store's compaction point: the oldest revision that can still be read.
        compact_revision: Revision,
    },
    /// A read asked for a revision the store has not reached yet.
    #[error("required revision {requested} is a future revision (current revision {current})")]
    FutureRevision {
        /// The revision that was asked for.
        requested: Revision,
        /// The store's current revision.
        current: Revision,
    },
    /// The request is larger than the store accepts (etcd's `--max-request-bytes`).
    #[error("request is too large: {size} bytes, limit {limit} bytes")]
    RequestTooLarge {
        /// The request's size as the store counts it, when known (0 when the server did not say).
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A put named a lease that does not exist, or a lease call named one that has expired.
    #[error("lease {0:x} not found")]
    LeaseNotFound(LeaseId),
    /// A transaction wrote the same key twice.
    #[error("duplicate key given in txn request: {0:?}")]
    DuplicateKey(String),
    /// The request is malformed (an empty key, a negative limit, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The data file exists but cannot be read as a store: it is damaged. Start-up stops here;
    /// the file is never reset.
    #[error("data file {path} is corrupt: {reason}")]
    Corrupt {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The data file is a readable database, but not one that rkube wrote.
    #[error("data file {path} is not an rkube store: {reason}")]
    NotOurs {
        /// The file at fault.
        path: PathBuf,
        /// Why it is not ours.
        reason: String,
    },
    /// Another process holds the data file open.
    #[error("data file {0} is already open in another process")]
    Locked(PathBuf),
    /// A disk write or fsync failed. The embedded store stops accepting writes after this: what
    /// the page cache holds can no longer be trusted, so only a restart (which re-reads the file)
    /// may continue.
    #[error("storage failure: {0}")]
    Storage(String),
    /// The store (or the connection to etcd) is closed or unreachable.
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

/// Shorthand for results of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
