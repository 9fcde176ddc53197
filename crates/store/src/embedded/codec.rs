//! The on-disk form of one history record (one key's change at one revision) in the `log`
//! table, encoded with `postcard`. The table key is `(revision, sub)`: the revision of the
//! transaction and the change's position within it.

use serde::{Deserialize, Serialize};

use crate::types::{KeyValue, LeaseId, Revision};

/// A `(revision, sub)` position in the log.
pub(crate) type LogPos = (u64, u32);

/// One change to one key, as stored. Borrowed on decode, so reading a record copies nothing
/// until a [`KeyValue`] is built from it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Record<'a> {
    #[serde(borrow, with = "serde_bytes")]
    pub key: &'a [u8],
    /// True for a deletion (then `value` is empty and the revisions describe nothing).
    pub tombstone: bool,
    pub create_revision: Revision,
    pub version: i64,
    pub lease: LeaseId,
    /// The log position of the key's state before this change's transaction, if it existed
    /// then, so that watches can deliver `prev_kv` from history (etcd reads it at revision - 1).
    pub prev: Option<LogPos>,
    #[serde(borrow, with = "serde_bytes")]
    pub value: &'a [u8],
}

/// The error returned when a stored record cannot be decoded.
#[derive(Debug, thiserror::Error)]
#[error("undecodable log record at revision {0}.{1}: {2}")]
pub(crate) struct DecodeError(pub u64, pub u32, pub postcard::Error);

impl<'a> Record<'a> {
    pub fn encode(&self) -> Result<Vec<u8>, postcard::Error> {
        postcard::to_allocvec(self)
    }

    pub fn decode(pos: LogPos, bytes: &'a [u8]) -> Result<Self, DecodeError> {
        postcard::from_bytes(bytes).map_err(|e| DecodeError(pos.0, pos.1, e))
    }

    /// The key-value pair this record describes, with `mod_revision` from its log position.
    pub fn to_kv(&self, pos: LogPos, with_value: bool) -> KeyValue {
        if self.tombstone {
            return KeyValue {
                key: self.key.to_vec(),
                mod_revision: pos.0 as i64,
                ..Default::default()
            };
        }
        KeyValue {
            key: self.key.to_vec(),
            value: if with_value {
                self.value.to_vec()
            } else {
                Vec::new()
            },
            create_revision: self.create_revision,
            mod_revision: pos.0 as i64,
            version: self.version,
            lease: self.lease,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_and_borrows_its_bytes() {
        let rec = Record {
            key: b"/registry/pods/default/a",
            tombstone: false,
            create_revision: 7,
            version: 3,
            lease: 42,
            prev: Some((9, 1)),
            value: b"{\"kind\":\"Pod\"}",
        };
        let bytes = rec.encode().unwrap();
        let back = Record::decode((10, 0), &bytes).unwrap();
        assert_eq!(back.key, rec.key);
        assert_eq!(back.value, rec.value);
        assert_eq!(back.prev, Some((9, 1)));
        let kv = back.to_kv((10, 0), true);
        assert_eq!(
            (kv.create_revision, kv.mod_revision, kv.version, kv.lease),
            (7, 10, 3, 42)
        );
    }

    #[test]
    fn garbage_is_a_decode_error_not_a_panic() {
        assert!(Record::decode((1, 0), &[0xff, 0xff, 0xff]).is_err());
    }
}
