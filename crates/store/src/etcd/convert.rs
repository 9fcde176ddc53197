//! Conversions between the store's request and response types and `etcd-client`'s. The store's
//! types are modelled on etcd's protobufs, so almost everything maps field for field; the few
//! places where the two differ (empty start keys, the header revision of watch responses) are
//! handled here and explained where they are.

use etcd_client as ec;

use crate::error::{Result, StoreError};
use crate::types::{
    Compare, CompareOp, CompareTarget, DeleteRequest, Event, EventKind, KeyRange, KeyValue,
    PutRequest, RangeRequest, RangeResponse, Revision, TxnOp, TxnOpResponse, TxnRequest,
    WatchRequest, WatchResponse,
};

/// The key and range end etcd expects for `range`: `(key, None)` for a single key,
/// `(key, Some(end))` for an interval, where `end == [0]` means "every key from `key` on".
///
/// etcd refuses an empty key in a ranged request, but no stored key can be empty, so a range
/// that starts at the empty key is the same as one that starts at `\0`, the smallest real key.
pub(crate) fn etcd_range(range: &KeyRange) -> (Vec<u8>, Option<Vec<u8>>) {
    match &range.end {
        None => (range.start.clone(), None),
        Some(end) => {
            let start = if range.start.is_empty() {
                vec![0]
            } else {
                range.start.clone()
            };
            (start, Some(end.clone()))
        }
    }
}

/// The revision etcd reports in a response header. etcd always sends one; a response without it
/// is not from a working etcd.
pub(crate) fn header_revision(header: Option<&ec::ResponseHeader>) -> Result<Revision> {
    header
        .map(ec::ResponseHeader::revision)
        .ok_or_else(|| StoreError::Unavailable("etcd sent a response without a header".into()))
}

pub(crate) fn key_value(kv: ec::KeyValue) -> KeyValue {
    let (create_revision, mod_revision, version, lease) = (
        kv.create_revision(),
        kv.mod_revision(),
        kv.version(),
        kv.lease(),
    );
    let (key, value) = kv.into_key_value();
    KeyValue {
        key,
        value,
        create_revision,
        mod_revision,
        version,
        lease,
    }
}

pub(crate) fn get_options(req: &RangeRequest) -> (Vec<u8>, ec::GetOptions) {
    let (key, end) = etcd_range(&req.range);
    let mut opts = ec::GetOptions::new()
        .with_revision(req.revision)
        .with_limit(req.limit);
    if let Some(end) = end {
        opts = opts.with_range(end);
    }
    if req.keys_only {
        opts = opts.with_keys_only();
    }
    if req.count_only {
        opts = opts.with_count_only();
    }
    (key, opts)
}

/// Converts a range answer. The header revision is passed in because a read inside a
/// transaction is reported under the transaction's header, as the trait's types expect.
pub(crate) fn range_response(
    mut resp: ec::GetResponse,
    header_revision: Revision,
) -> RangeResponse {
    RangeResponse {
        header_revision,
        more: resp.more(),
        count: resp.count(),
        kvs: resp.take_kvs().into_iter().map(key_value).collect(),
    }
}

fn compare_op(op: CompareOp) -> ec::CompareOp {
    match op {
        CompareOp::Equal => ec::CompareOp::Equal,
        CompareOp::NotEqual => ec::CompareOp::NotEqual,
        CompareOp::Greater => ec::CompareOp::Greater,
        CompareOp::Less => ec::CompareOp::Less,
    }
}

fn compare(c: &Compare) -> ec::Compare {
    let op = compare_op(c.op);
    let key = c.key.clone();
    match &c.target {
        CompareTarget::Version(v) => ec::Compare::version(key, op, *v),
        CompareTarget::CreateRevision(r) => ec::Compare::create_revision(key, op, *r),
        CompareTarget::ModRevision(r) => ec::Compare::mod_revision(key, op, *r),
        CompareTarget::Value(v) => ec::Compare::value(key, op, v.clone()),
    }
}

fn put_op(p: &PutRequest) -> ec::TxnOp {
    let mut opts = ec::PutOptions::new().with_lease(p.lease);
    if p.prev_kv {
        opts = opts.with_prev_key();
    }
    ec::TxnOp::put(p.key.clone(), p.value.clone(), Some(opts))
}

fn delete_op(d: &DeleteRequest) -> ec::TxnOp {
    let (key, end) = etcd_range(&d.range);
    let mut opts = ec::DeleteOptions::new();
    if let Some(end) = end {
        opts = opts.with_range(end);
    }
    if d.prev_kv {
        opts = opts.with_prev_key();
    }
    ec::TxnOp::delete(key, Some(opts))
}

fn txn_op(op: &TxnOp) -> ec::TxnOp {
    match op {
        TxnOp::Put(p) => put_op(p),
        TxnOp::Delete(d) => delete_op(d),
        TxnOp::Range(r) => {
            let (key, opts) = get_options(r);
            ec::TxnOp::get(key, Some(opts))
        }
    }
}

pub(crate) fn txn(req: &TxnRequest) -> ec::Txn {
    ec::Txn::new()
        .when(req.compare.iter().map(compare).collect::<Vec<_>>())
        .and_then(req.success.iter().map(txn_op).collect::<Vec<_>>())
        .or_else(req.failure.iter().map(txn_op).collect::<Vec<_>>())
}

pub(crate) fn txn_op_response(
    resp: ec::TxnOpResponse,
    header_revision: Revision,
) -> Result<TxnOpResponse> {
    Ok(match resp {
        ec::TxnOpResponse::Put(mut p) => TxnOpResponse::Put {
            prev_kv: p.take_prev_key().map(key_value),
        },
        ec::TxnOpResponse::Delete(mut d) => TxnOpResponse::Delete {
            deleted: d.deleted(),
            prev_kvs: d.take_prev_kvs().into_iter().map(key_value).collect(),
        },
        ec::TxnOpResponse::Get(g) => TxnOpResponse::Range(range_response(g, header_revision)),
        // The store never sends nested transactions, so etcd never answers with one.
        ec::TxnOpResponse::Txn(_) => {
            return Err(StoreError::Unavailable(
                "etcd answered with a nested transaction".into(),
            ))
        }
    })
}

/// The watch's key and options. A watch from revision 0 means "from now on" in both APIs.
pub(crate) fn watch_options(req: &WatchRequest) -> (Vec<u8>, ec::WatchOptions) {
    let (key, end) = etcd_range(&req.range);
    let mut opts = ec::WatchOptions::new().with_start_revision(req.start_revision);
    if let Some(end) = end {
        opts = opts.with_range(end);
    }
    if req.prev_kv {
        opts = opts.with_prev_key();
    }
    if req.progress_notify {
        opts = opts.with_progress_notify();
    }
    (key, opts)
}

fn event(e: &ec::Event) -> Event {
    let kind = match e.event_type() {
        ec::EventType::Put => EventKind::Put,
        ec::EventType::Delete => EventKind::Delete,
    };
    Event {
        kind,
        kv: e.kv().cloned().map(key_value).unwrap_or_default(),
        prev_kv: e.prev_kv().cloned().map(key_value),
    }
}

/// Converts a watch response that is not a creation or cancellation: events, or a progress
/// notification.
///
/// etcd's header revision on an event response is its current revision when it sent the batch,
/// which can be ahead of events it has yet to send (a lagging watcher catches up in batches).
/// Our contract says every event up to the header revision has been delivered, so an event
/// response reports its last event's revision instead: events come in revision order, all of one
/// revision together.
pub(crate) fn watch_response(resp: &ec::WatchResponse) -> Result<WatchResponse> {
    let events: Vec<Event> = resp.events().iter().map(event).collect();
    let header_revision = match events.last() {
        Some(last) => last.kv.mod_revision,
        None => header_revision(resp.header())?,
    };
    Ok(WatchResponse {
        header_revision,
        events,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_starting_at_the_empty_key_start_at_nul() {
        assert_eq!(etcd_range(&KeyRange::prefix("")), (vec![0], Some(vec![0])));
        assert_eq!(
            etcd_range(&KeyRange::range("", "b")),
            (vec![0], Some(b"b".to_vec()))
        );
        assert_eq!(
            etcd_range(&KeyRange::from_key("a")),
            (b"a".to_vec(), Some(vec![0]))
        );
        assert_eq!(etcd_range(&KeyRange::key("a")), (b"a".to_vec(), None));
        // A single empty key stays empty: etcd refuses it, as it should.
        assert_eq!(etcd_range(&KeyRange::key("")), (Vec::new(), None));
    }
}
