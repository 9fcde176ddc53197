//! Request and response types of the store, modelled on etcd's v3 API (`mvccpb` and
//! `etcdserverpb`), so that the etcd backend maps one-to-one and the embedded backend has a
//! precise contract to meet.

use std::ops::Bound;

/// A store revision. Revision 1 is the empty store; every committed write transaction adds one.
pub type Revision = i64;
/// A lease's identifier. 0 means "no lease".
pub type LeaseId = i64;

/// etcd's default `--max-request-bytes` (1.5 MiB).
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 1536 * 1024;

/// A key with its value and its revisions, as etcd's `mvccpb.KeyValue`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyValue {
    /// The key.
    pub key: Vec<u8>,
    /// The value (empty for keys-only reads and for delete events).
    pub value: Vec<u8>,
    /// The revision of the transaction that created this key (since its last deletion).
    pub create_revision: Revision,
    /// The revision of the transaction that last wrote this key.
    pub mod_revision: Revision,
    /// How many times the key was written since its creation (1 after the create).
    pub version: i64,
    /// The lease the key is attached to, or 0.
    pub lease: LeaseId,
}

/// The keys an operation applies to: one key, or the half-open interval `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRange {
    /// The first key.
    pub start: Vec<u8>,
    /// `None` for a single key; `Some(end)` for `[start, end)`; `Some(vec![0])` for every key
    /// from `start` on (etcd's convention).
    pub end: Option<Vec<u8>>,
}

impl KeyRange {
    /// Exactly one key.
    pub fn key(key: impl Into<Vec<u8>>) -> Self {
        KeyRange {
            start: key.into(),
            end: None,
        }
    }

    /// Every key that starts with `prefix` (every key at all for an empty prefix, which etcd
    /// spells as the range from `\0`).
    pub fn prefix(prefix: impl Into<Vec<u8>>) -> Self {
        let start = prefix.into();
        if start.is_empty() {
            return KeyRange {
                start: vec![0],
                end: Some(vec![0]),
            };
        }
        let end = prefix_end(&start);
        KeyRange {
            start,
            end: Some(end),
        }
    }

    /// Every key in `[start, end)`.
    pub fn range(start: impl Into<Vec<u8>>, end: impl Into<Vec<u8>>) -> Self {
        KeyRange {
            start: start.into(),
            end: Some(end.into()),
        }
    }

    /// Every key greater than or equal to `start`.
    pub fn from_key(start: impl Into<Vec<u8>>) -> Self {
        KeyRange {
            start: start.into(),
            end: Some(vec![0]),
        }
    }

    /// Whether the range names exactly one key.
    pub fn is_single(&self) -> bool {
        self.end.is_none()
    }

    /// The range as a pair of bounds over byte strings.
    pub fn bounds(&self) -> (Bound<&[u8]>, Bound<&[u8]>) {
        match &self.end {
            None => (Bound::Included(&self.start), Bound::Included(&self.start)),
            Some(end) if end.as_slice() == [0] => (Bound::Included(&self.start), Bound::Unbounded),
            Some(end) => (Bound::Included(&self.start), Bound::Excluded(end)),
        }
    }

    /// Whether `key` falls in the range.
    pub fn contains(&self, key: &[u8]) -> bool {
        match &self.end {
            None => key == self.start.as_slice(),
            Some(end) if end.as_slice() == [0] => key >= self.start.as_slice(),
            Some(end) => key >= self.start.as_slice() && key < end.as_slice(),
        }
    }

    /// Whether the range can hold no key at all (`end <= start`).
    pub fn is_empty(&self) -> bool {
        match &self.end {
            None => false,
            Some(end) if end.as_slice() == [0] => false,
            Some(end) => end.as_slice() <= self.start.as_slice(),
        }
    }

    pub(crate) fn encoded_len(&self) -> usize {
        self.start.len() + self.end.as_ref().map_or(0, Vec::len)
    }
}

/// The smallest key greater than every key that starts with `prefix` (etcd's `GetPrefixRangeEnd`).
/// An empty prefix, or one made only of 0xff bytes, yields `[0]`: every key.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// A read of one key or a range of keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeRequest {
    /// What to read.
    pub range: KeyRange,
    /// The revision to read at; 0 for the latest.
    pub revision: Revision,
    /// The most keys to return; 0 for no limit.
    pub limit: i64,
    /// Return keys and revisions without values.
    pub keys_only: bool,
    /// Return only the count.
    pub count_only: bool,
}

impl RangeRequest {
    /// A read of `range` at the latest revision.
    pub fn new(range: KeyRange) -> Self {
        RangeRequest {
            range,
            revision: 0,
            limit: 0,
            keys_only: false,
            count_only: false,
        }
    }

    /// Read at `revision` instead of the latest.
    pub fn at_revision(mut self, revision: Revision) -> Self {
        self.revision = revision;
        self
    }

    /// Return at most `limit` keys.
    pub fn with_limit(mut self, limit: i64) -> Self {
        self.limit = limit;
        self
    }

    /// Return no values.
    pub fn keys_only(mut self) -> Self {
        self.keys_only = true;
        self
    }

    /// Return only the count.
    pub fn count_only(mut self) -> Self {
        self.count_only = true;
        self
    }
}

/// The answer to a [`RangeRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RangeResponse {
    /// The store's revision when the read was served.
    pub header_revision: Revision,
    /// The keys, in key order (empty for count-only).
    pub kvs: Vec<KeyValue>,
    /// Whether more keys matched than `limit` let through.
    pub more: bool,
    /// How many keys matched in all (ignoring `limit`).
    pub count: i64,
}

/// What a [`Compare`] looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompareTarget {
    /// The key's version (0 when absent).
    Version(i64),
    /// The key's create revision (0 when absent).
    CreateRevision(Revision),
    /// The key's mod revision (0 when absent).
    ModRevision(Revision),
    /// The key's value (a compare on the value of an absent key is false).
    Value(Vec<u8>),
}

/// How a [`Compare`] relates the key's state to the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// Equal.
    Equal,
    /// Not equal.
    NotEqual,
    /// The key's state is greater than the target.
    Greater,
    /// The key's state is less than the target.
    Less,
}

/// One condition of a transaction, on a single key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compare {
    /// The key.
    pub key: Vec<u8>,
    /// The relation.
    pub op: CompareOp,
    /// What to compare and with what.
    pub target: CompareTarget,
}

impl Compare {
    /// A compare on the key's mod revision.
    pub fn mod_revision(key: impl Into<Vec<u8>>, op: CompareOp, rev: Revision) -> Self {
        Compare {
            key: key.into(),
            op,
            target: CompareTarget::ModRevision(rev),
        }
    }

    /// A compare on the key's create revision.
    pub fn create_revision(key: impl Into<Vec<u8>>, op: CompareOp, rev: Revision) -> Self {
        Compare {
            key: key.into(),
            op,
            target: CompareTarget::CreateRevision(rev),
        }
    }

    /// A compare on the key's version.
    pub fn version(key: impl Into<Vec<u8>>, op: CompareOp, version: i64) -> Self {
        Compare {
            key: key.into(),
            op,
            target: CompareTarget::Version(version),
        }
    }

    /// A compare on the key's value.
    pub fn value(key: impl Into<Vec<u8>>, op: CompareOp, value: impl Into<Vec<u8>>) -> Self {
        Compare {
            key: key.into(),
            op,
            target: CompareTarget::Value(value.into()),
        }
    }

    /// Evaluates the compare against the key's current state (`None` when absent), with etcd's
    /// rules: an absent key has version, create and mod revision 0, and fails every value compare.
    pub fn evaluate(&self, current: Option<&KeyValue>) -> bool {
        use std::cmp::Ordering;
        let ordering: Ordering = match (&self.target, current) {
            (CompareTarget::Value(_), None) => return false,
            (CompareTarget::Value(want), Some(kv)) => kv.value.as_slice().cmp(want.as_slice()),
            (CompareTarget::Version(want), kv) => kv.map_or(0, |kv| kv.version).cmp(want),
            (CompareTarget::CreateRevision(want), kv) => {
                kv.map_or(0, |kv| kv.create_revision).cmp(want)
            }
            (CompareTarget::ModRevision(want), kv) => kv.map_or(0, |kv| kv.mod_revision).cmp(want),
        };
        match self.op {
            CompareOp::Equal => ordering == Ordering::Equal,
            CompareOp::NotEqual => ordering != Ordering::Equal,
            CompareOp::Greater => ordering == Ordering::Greater,
            CompareOp::Less => ordering == Ordering::Less,
        }
    }
}

/// A write of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutRequest {
    /// The key.
    pub key: Vec<u8>,
    /// The new value.
    pub value: Vec<u8>,
    /// The lease to attach the key to, or 0.
    pub lease: LeaseId,
    /// Return the key's previous state.
    pub prev_kv: bool,
}

impl PutRequest {
    /// A put with no lease that does not return the previous state.
    pub fn new(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        PutRequest {
            key: key.into(),
            value: value.into(),
            lease: 0,
            prev_kv: false,
        }
    }

    /// Attach the key to `lease`.
    pub fn with_lease(mut self, lease: LeaseId) -> Self {
        self.lease = lease;
        self
    }

    /// Return the key's previous state.
    pub fn with_prev_kv(mut self) -> Self {
        self.prev_kv = true;
        self
    }
}

/// A deletion of one key or a range of keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteRequest {
    /// What to delete.
    pub range: KeyRange,
    /// Return the deleted keys' last state.
    pub prev_kv: bool,
}

impl DeleteRequest {
    /// A deletion of `range` that does not return the deleted keys.
    pub fn new(range: KeyRange) -> Self {
        DeleteRequest {
            range,
            prev_kv: false,
        }
    }

    /// Return the deleted keys' last state.
    pub fn with_prev_kv(mut self) -> Self {
        self.prev_kv = true;
        self
    }
}

/// One operation in a transaction branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnOp {
    /// Write a key.
    Put(PutRequest),
    /// Delete keys.
    Delete(DeleteRequest),
    /// Read keys (seeing the writes made earlier in the same transaction, as etcd does).
    Range(RangeRequest),
}

/// An atomic transaction: if every compare holds, run `success`, else run `failure`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TxnRequest {
    /// The conditions, all of which must hold.
    pub compare: Vec<Compare>,
    /// The operations to run when they do.
    pub success: Vec<TxnOp>,
    /// The operations to run when they do not.
    pub failure: Vec<TxnOp>,
}

impl TxnRequest {
    /// Creates `key` with `value` only if it does not exist; otherwise reads it.
    pub fn create(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        let key = key.into();
        TxnRequest {
            compare: vec![Compare::mod_revision(key.clone(), CompareOp::Equal, 0)],
            success: vec![TxnOp::Put(PutRequest::new(key.clone(), value))],
            failure: vec![TxnOp::Range(RangeRequest::new(KeyRange::key(key)))],
        }
    }

    /// Writes `value` to `key` only if its mod revision is still `expected`; otherwise reads it.
    pub fn update(key: impl Into<Vec<u8>>, expected: Revision, value: impl Into<Vec<u8>>) -> Self {
        let key = key.into();
        TxnRequest {
            compare: vec![Compare::mod_revision(
                key.clone(),
                CompareOp::Equal,
                expected,
            )],
            success: vec![TxnOp::Put(
                PutRequest::new(key.clone(), value).with_prev_kv(),
            )],
            failure: vec![TxnOp::Range(RangeRequest::new(KeyRange::key(key)))],
        }
    }

    /// Deletes `key` only if its mod revision is still `expected`; otherwise reads it.
    pub fn delete(key: impl Into<Vec<u8>>, expected: Revision) -> Self {
        let key = key.into();
        TxnRequest {
            compare: vec![Compare::mod_revision(
                key.clone(),
                CompareOp::Equal,
                expected,
            )],
            success: vec![TxnOp::Delete(
                DeleteRequest::new(KeyRange::key(key.clone())).with_prev_kv(),
            )],
            failure: vec![TxnOp::Range(RangeRequest::new(KeyRange::key(key)))],
        }
    }

    /// The request's size as the store counts it against its request limit: keys, values and
    /// range ends, plus a small fixed cost per element, close to the protobuf encoding's size.
    pub fn encoded_len(&self) -> usize {
        const PER_ELEMENT: usize = 8;
        let compares: usize = self
            .compare
            .iter()
            .map(|c| {
                let target = match &c.target {
                    CompareTarget::Value(v) => v.len(),
                    _ => 8,
                };
                c.key.len() + target + PER_ELEMENT
            })
            .sum();
        let ops = |ops: &[TxnOp]| -> usize {
            ops.iter()
                .map(|op| {
                    PER_ELEMENT
                        + match op {
                            TxnOp::Put(p) => p.key.len() + p.value.len() + 8,
                            TxnOp::Delete(d) => d.range.encoded_len(),
                            TxnOp::Range(r) => r.range.encoded_len() + 8,
                        }
                })
                .sum()
        };
        compares + ops(&self.success) + ops(&self.failure)
    }
}

/// The answer to one [`TxnOp`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnOpResponse {
    /// A put's answer: the key's previous state, when asked for and it existed.
    Put {
        /// The previous state.
        prev_kv: Option<KeyValue>,
    },
    /// A deletion's answer.
    Delete {
        /// How many keys were deleted.
        deleted: i64,
        /// Their last states, when asked for.
        prev_kvs: Vec<KeyValue>,
    },
    /// A read's answer.
    Range(RangeResponse),
}

/// The answer to a [`TxnRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnResponse {
    /// Whether every compare held (and so `success` ran).
    pub succeeded: bool,
    /// The store's revision after the transaction: its own revision if it wrote anything.
    pub header_revision: Revision,
    /// One answer per operation of the branch that ran.
    pub responses: Vec<TxnOpResponse>,
}

impl TxnResponse {
    /// The first read's first key, if the branch that ran read one: how the API server learns
    /// the current object when a compare fails.
    pub fn first_range_kv(&self) -> Option<&KeyValue> {
        self.responses.iter().find_map(|r| match r {
            TxnOpResponse::Range(rr) => rr.kvs.first(),
            _ => None,
        })
    }
}

/// A request to watch a key or a range of keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchRequest {
    /// What to watch.
    pub range: KeyRange,
    /// The first revision to deliver; 0 for "changes after now".
    pub start_revision: Revision,
    /// Deliver each event with the key's previous state.
    pub prev_kv: bool,
    /// Send a periodic progress notification while nothing else happens.
    pub progress_notify: bool,
}

impl WatchRequest {
    /// A watch of `range` from now on.
    pub fn new(range: KeyRange) -> Self {
        WatchRequest {
            range,
            start_revision: 0,
            prev_kv: false,
            progress_notify: false,
        }
    }

    /// Start at `revision` (which may be in the past).
    pub fn from_revision(mut self, revision: Revision) -> Self {
        self.start_revision = revision;
        self
    }

    /// Deliver previous states.
    pub fn with_prev_kv(mut self) -> Self {
        self.prev_kv = true;
        self
    }

    /// Ask for periodic progress notifications.
    pub fn with_progress_notify(mut self) -> Self {
        self.progress_notify = true;
        self
    }
}

/// The kind of a watch event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// The key was created or updated.
    Put,
    /// The key was deleted.
    Delete,
}

/// One change to one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Put or delete.
    pub kind: EventKind,
    /// The key's new state; for a delete, the key with `mod_revision` set to the deletion's
    /// revision and everything else zero.
    pub kv: KeyValue,
    /// The key's state before the change, when the watch asked for it and it is still known.
    pub prev_kv: Option<KeyValue>,
}

/// One message on a watch stream: some events, or (with none) a progress notification saying
/// that every event up to `header_revision` has been delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchResponse {
    /// Every event at or below this revision that matches the watch has been delivered.
    pub header_revision: Revision,
    /// The events, in revision order; all events of one revision come in one response.
    pub events: Vec<Event>,
}

impl WatchResponse {
    /// Whether this is a progress notification (no events).
    pub fn is_progress_notify(&self) -> bool {
        self.events.is_empty()
    }
}

/// A granted lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// Its identifier.
    pub id: LeaseId,
    /// Its time to live in seconds, as granted.
    pub ttl: i64,
}

/// A lease's remaining life and its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseTimeToLive {
    /// Its identifier.
    pub id: LeaseId,
    /// Seconds left before it expires.
    pub ttl: i64,
    /// Its TTL as granted.
    pub granted_ttl: i64,
    /// The keys attached to it.
    pub keys: Vec<Vec<u8>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_the_last_byte_below_0xff() {
        assert_eq!(prefix_end(b"/registry/pods/"), b"/registry/pods0".to_vec());
        assert_eq!(prefix_end(b"a\xff\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff"), vec![0]);
        assert_eq!(prefix_end(b""), vec![0]);
    }

    #[test]
    fn key_range_contains_follows_etcd_conventions() {
        let single = KeyRange::key("a");
        assert!(single.contains(b"a") && !single.contains(b"ab"));
        let prefix = KeyRange::prefix("a/");
        assert!(prefix.contains(b"a/") && prefix.contains(b"a/zzz") && !prefix.contains(b"a0"));
        let all = KeyRange::from_key("m");
        assert!(all.contains(b"m") && all.contains(b"\xff\xff") && !all.contains(b"l"));
        assert!(KeyRange::range("b", "a").is_empty());
    }

    #[test]
    fn compare_on_an_absent_key_sees_zero_revisions_and_fails_value_compares() {
        assert!(Compare::mod_revision("k", CompareOp::Equal, 0).evaluate(None));
        assert!(Compare::version("k", CompareOp::Less, 1).evaluate(None));
        assert!(!Compare::value("k", CompareOp::NotEqual, "x").evaluate(None));
        let kv = KeyValue {
            key: b"k".to_vec(),
            value: b"v".to_vec(),
            create_revision: 2,
            mod_revision: 5,
            version: 3,
            lease: 0,
        };
        assert!(Compare::mod_revision("k", CompareOp::Greater, 4).evaluate(Some(&kv)));
        assert!(Compare::create_revision("k", CompareOp::Equal, 2).evaluate(Some(&kv)));
        assert!(Compare::value("k", CompareOp::Less, "w").evaluate(Some(&kv)));
        assert!(!Compare::version("k", CompareOp::NotEqual, 3).evaluate(Some(&kv)));
    }
}
