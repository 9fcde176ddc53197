//! The store conformance suite: etcd v3 semantics, written once and run against every backend
//! (`tests/embedded.rs`, `tests/etcd.rs`). Each case gets a fresh, empty store.
//!
//! `conformance_tests!(factory)` expands into one `#[tokio::test]` per case, where `factory` is an
//! async fn returning a [`Backend`].

#![allow(dead_code, clippy::unwrap_used)]

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use rkube_store::*;

/// A store under test and whatever keeps it alive (a temporary directory, an etcd process).
pub struct Backend {
    pub store: Arc<dyn Store>,
    pub guard: Box<dyn Any + Send + Sync>,
}

#[macro_export]
macro_rules! conformance_tests {
    ($factory:path) => {
        $crate::conformance_tests!(@cases $factory;
            revisions_increase_by_one_per_write_transaction,
            create_revision_and_version_follow_the_key_generation,
            range_reads_a_key_a_prefix_and_an_interval_in_key_order,
            range_limit_sets_more_and_counts_every_match,
            range_keys_only_and_count_only,
            range_reads_old_revisions_and_refuses_future_ones,
            txn_create_if_absent_is_atomic,
            txn_update_if_unchanged_detects_conflicts,
            txn_delete_if_unchanged_detects_conflicts,
            txn_compares_on_version_create_revision_and_value,
            txn_range_sees_writes_made_earlier_in_the_same_transaction,
            txn_writing_one_key_twice_is_refused,
            txn_range_reads_at_a_past_revision,
            delete_range_removes_every_key_in_one_revision,
            concurrent_writers_lose_no_update,
            watch_from_the_past_replays_every_event_in_order_then_follows_live,
            watch_delivers_prev_kv_for_updates_and_deletes,
            watch_of_a_prefix_sees_only_its_keys,
            watch_request_progress_reports_the_current_revision,
            slow_watcher_loses_nothing,
            compaction_refuses_older_reads_and_watches_with_the_compact_revision,
            compaction_keeps_the_latest_state_of_every_key,
            lease_keep_alive_time_to_live_and_revoke,
            lease_expiry_deletes_attached_keys,
            put_with_an_unknown_lease_is_refused,
            value_just_under_the_request_limit_is_stored_and_one_over_is_refused,
        );
    };
    (@cases $factory:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let backend = $factory().await;
                conformance::$case(backend.store.clone()).await;
                drop(backend);
            }
        )*
    };
}

const WAIT: Duration = Duration::from_secs(10);

async fn put(s: &dyn Store, k: &str, v: &str) -> Revision {
    s.put(PutRequest::new(k, v)).await.unwrap().0
}

async fn get(s: &dyn Store, k: &str) -> Option<KeyValue> {
    s.get(k.as_bytes()).await.unwrap()
}

async fn next_response(w: &mut WatchStream) -> WatchResponse {
    match tokio::time::timeout(WAIT, w.next()).await {
        Ok(Some(Ok(r))) => r,
        Ok(Some(Err(e))) => panic!("watch failed: {e}"),
        Ok(None) => panic!("watch ended"),
        Err(_) => panic!("no watch response within {WAIT:?}"),
    }
}

/// Reads events until `n` have arrived (skipping progress notifications).
async fn next_events(w: &mut WatchStream, n: usize) -> Vec<Event> {
    let mut out = Vec::new();
    while out.len() < n {
        let r = next_response(w).await;
        out.extend(r.events);
    }
    assert_eq!(out.len(), n, "more events than expected: {out:?}");
    out
}

fn keys(kvs: &[KeyValue]) -> Vec<String> {
    kvs.iter()
        .map(|kv| String::from_utf8_lossy(&kv.key).into_owned())
        .collect()
}

pub async fn revisions_increase_by_one_per_write_transaction(st: Arc<dyn Store>) {
    let s = &*st;
    let r0 = s.current_revision().await.unwrap();
    assert_eq!(put(s, "a", "1").await, r0 + 1);
    let multi = s
        .txn(TxnRequest {
            success: vec![
                TxnOp::Put(PutRequest::new("b", "1")),
                TxnOp::Put(PutRequest::new("c", "1")),
                TxnOp::Put(PutRequest::new("d", "1")),
            ],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        multi.header_revision,
        r0 + 2,
        "a transaction is one revision"
    );
    for k in ["b", "c", "d"] {
        assert_eq!(get(s, k).await.unwrap().mod_revision, r0 + 2);
    }
    // A transaction whose compare fails and that only reads writes nothing.
    let failed = s.txn(TxnRequest::create("a", "again")).await.unwrap();
    assert!(!failed.succeeded);
    assert_eq!(failed.header_revision, r0 + 2);
    // Deleting a key that does not exist changes nothing.
    let (rev, deleted, _) = s
        .delete(DeleteRequest::new(KeyRange::key("missing")))
        .await
        .unwrap();
    assert_eq!((rev, deleted), (r0 + 2, 0));
    assert_eq!(s.current_revision().await.unwrap(), r0 + 2);
    assert_eq!(put(s, "a", "2").await, r0 + 3);
}

pub async fn create_revision_and_version_follow_the_key_generation(st: Arc<dyn Store>) {
    let s = &*st;
    let r1 = put(s, "k", "1").await;
    let r2 = put(s, "k", "2").await;
    let kv = get(s, "k").await.unwrap();
    assert_eq!(
        (kv.create_revision, kv.mod_revision, kv.version),
        (r1, r2, 2)
    );
    assert_eq!(kv.value, b"2");
    s.delete(DeleteRequest::new(KeyRange::key("k")))
        .await
        .unwrap();
    assert!(get(s, "k").await.is_none());
    let r4 = put(s, "k", "3").await;
    let kv = get(s, "k").await.unwrap();
    assert_eq!(
        (kv.create_revision, kv.mod_revision, kv.version),
        (r4, r4, 1)
    );
}

pub async fn range_reads_a_key_a_prefix_and_an_interval_in_key_order(st: Arc<dyn Store>) {
    let s = &*st;
    for k in ["p/c", "p/a", "p/b", "pa", "q", "o"] {
        put(s, k, k).await;
    }
    let r = s
        .range(RangeRequest::new(KeyRange::prefix("p/")))
        .await
        .unwrap();
    assert_eq!(keys(&r.kvs), ["p/a", "p/b", "p/c"]);
    assert_eq!(r.count, 3);
    assert!(!r.more);
    assert_eq!(r.kvs[0].value, b"p/a");
    let r = s
        .range(RangeRequest::new(KeyRange::range("p/b", "q")))
        .await
        .unwrap();
    assert_eq!(keys(&r.kvs), ["p/b", "p/c", "pa"]);
    let r = s
        .range(RangeRequest::new(KeyRange::from_key("pa")))
        .await
        .unwrap();
    assert_eq!(keys(&r.kvs), ["pa", "q"]);
    let r = s
        .range(RangeRequest::new(KeyRange::key("q")))
        .await
        .unwrap();
    assert_eq!(keys(&r.kvs), ["q"]);
    let r = s
        .range(RangeRequest::new(KeyRange::key("p")))
        .await
        .unwrap();
    assert!(r.kvs.is_empty() && r.count == 0);
}

pub async fn range_limit_sets_more_and_counts_every_match(st: Arc<dyn Store>) {
    let s = &*st;
    for i in 0..10 {
        put(s, &format!("l/{i:02}"), "v").await;
    }
    let r = s
        .range(RangeRequest::new(KeyRange::prefix("l/")).with_limit(4))
        .await
        .unwrap();
    assert_eq!(keys(&r.kvs), ["l/00", "l/01", "l/02", "l/03"]);
    assert!(r.more);
    assert_eq!(r.count, 10);
    // Continue from the key after the last one, as the API server paginates.
    let mut next = r.kvs.last().unwrap().key.clone();
    next.push(0);
    let r2 = s
        .range(
            RangeRequest::new(KeyRange::range(next, rkube_store::prefix_end(b"l/")))
                .with_limit(10)
                .at_revision(r.header_revision),
        )
        .await
        .unwrap();
    assert_eq!(r2.kvs.len(), 6);
    assert!(!r2.more);
    let exact = s
        .range(RangeRequest::new(KeyRange::prefix("l/")).with_limit(10))
        .await
        .unwrap();
    assert!(
        !exact.more,
        "a limit equal to the count leaves nothing more"
    );
}

pub async fn range_keys_only_and_count_only(st: Arc<dyn Store>) {
    let s = &*st;
    let r1 = put(s, "x/1", "one").await;
    put(s, "x/2", "two").await;
    let r = s
        .range(RangeRequest::new(KeyRange::prefix("x/")).keys_only())
        .await
        .unwrap();
    assert_eq!(keys(&r.kvs), ["x/1", "x/2"]);
    assert!(r.kvs.iter().all(|kv| kv.value.is_empty()));
    assert_eq!(r.kvs[0].mod_revision, r1);
    let r = s
        .range(RangeRequest::new(KeyRange::prefix("x/")).count_only())
        .await
        .unwrap();
    assert!(r.kvs.is_empty());
    assert_eq!(r.count, 2);
    let r = s
        .range(
            RangeRequest::new(KeyRange::prefix("x/"))
                .count_only()
                .with_limit(1),
        )
        .await
        .unwrap();
    assert_eq!(
        (r.count, r.more),
        (2, false),
        "count-only reads ignore the limit"
    );
}

pub async fn range_reads_old_revisions_and_refuses_future_ones(st: Arc<dyn Store>) {
    let s = &*st;
    let r1 = put(s, "h/k", "v1").await;
    let r2 = put(s, "h/k", "v2").await;
    put(s, "h/other", "o").await;
    let (r3, _, _) = s
        .delete(DeleteRequest::new(KeyRange::key("h/k")))
        .await
        .unwrap();
    let at = |rev| RangeRequest::new(KeyRange::key("h/k")).at_revision(rev);
    assert_eq!(s.range(at(r1)).await.unwrap().kvs[0].value, b"v1");
    let kv2 = s.range(at(r2)).await.unwrap().kvs[0].clone();
    assert_eq!(
        (kv2.value.as_slice(), kv2.version, kv2.create_revision),
        (&b"v2"[..], 2, r1)
    );
    assert!(s.range(at(r3)).await.unwrap().kvs.is_empty());
    let old = s
        .range(RangeRequest::new(KeyRange::prefix("h/")).at_revision(r2))
        .await
        .unwrap();
    assert_eq!(keys(&old.kvs), ["h/k"]);
    assert!(
        old.header_revision >= r3,
        "the header is the current revision"
    );
    match s.range(at(r3 + 100)).await {
        Err(StoreError::FutureRevision { requested, .. }) => assert_eq!(requested, r3 + 100),
        other => panic!("expected FutureRevision, got {other:?}"),
    }
}

pub async fn txn_create_if_absent_is_atomic(st: Arc<dyn Store>) {
    let s = &*st;
    let first = s.txn(TxnRequest::create("c", "first")).await.unwrap();
    assert!(first.succeeded);
    let second = s.txn(TxnRequest::create("c", "second")).await.unwrap();
    assert!(!second.succeeded);
    let current = second.first_range_kv().unwrap();
    assert_eq!(current.value, b"first");
    assert_eq!(current.mod_revision, first.header_revision);
    assert_eq!(get(s, "c").await.unwrap().value, b"first");
}

pub async fn txn_update_if_unchanged_detects_conflicts(st: Arc<dyn Store>) {
    let s = &*st;
    let r1 = put(s, "u", "1").await;
    let ok = s.txn(TxnRequest::update("u", r1, "2")).await.unwrap();
    assert!(ok.succeeded);
    match &ok.responses[0] {
        TxnOpResponse::Put {
            prev_kv: Some(prev),
        } => assert_eq!(prev.value, b"1"),
        other => panic!("expected the previous value, got {other:?}"),
    }
    let stale = s.txn(TxnRequest::update("u", r1, "3")).await.unwrap();
    assert!(!stale.succeeded);
    assert_eq!(stale.first_range_kv().unwrap().value, b"2");
    assert_eq!(get(s, "u").await.unwrap().value, b"2");
    // Updating a key that does not exist fails too.
    assert!(
        !s.txn(TxnRequest::update("nope", r1, "x"))
            .await
            .unwrap()
            .succeeded
    );
    assert!(get(s, "nope").await.is_none());
}

pub async fn txn_delete_if_unchanged_detects_conflicts(st: Arc<dyn Store>) {
    let s = &*st;
    let r1 = put(s, "d", "1").await;
    let r2 = put(s, "d", "2").await;
    let stale = s.txn(TxnRequest::delete("d", r1)).await.unwrap();
    assert!(!stale.succeeded);
    assert!(get(s, "d").await.is_some());
    let ok = s.txn(TxnRequest::delete("d", r2)).await.unwrap();
    assert!(ok.succeeded);
    match &ok.responses[0] {
        TxnOpResponse::Delete {
            deleted: 1,
            prev_kvs,
        } => assert_eq!(prev_kvs[0].value, b"2"),
        other => panic!("expected one deletion, got {other:?}"),
    }
    assert!(get(s, "d").await.is_none());
}

pub async fn txn_compares_on_version_create_revision_and_value(st: Arc<dyn Store>) {
    let s = &*st;
    let r1 = put(s, "t", "bbb").await;
    put(s, "t", "ccc").await;
    let check = |c: Compare| async move {
        s.txn(TxnRequest {
            compare: vec![c],
            ..Default::default()
        })
        .await
        .unwrap()
        .succeeded
    };
    assert!(check(Compare::version("t", CompareOp::Equal, 2)).await);
    assert!(check(Compare::version("t", CompareOp::Greater, 1)).await);
    assert!(!check(Compare::version("t", CompareOp::Less, 2)).await);
    assert!(check(Compare::create_revision("t", CompareOp::Equal, r1)).await);
    assert!(check(Compare::create_revision("t", CompareOp::NotEqual, r1 + 1)).await);
    assert!(check(Compare::value("t", CompareOp::Equal, "ccc")).await);
    assert!(check(Compare::value("t", CompareOp::Greater, "bbb")).await);
    assert!(!check(Compare::value("t", CompareOp::Less, "ccc")).await);
    assert!(!check(Compare::value("absent", CompareOp::NotEqual, "x")).await);
    assert!(check(Compare::version("absent", CompareOp::Equal, 0)).await);
    // Every compare must hold.
    let both = s
        .txn(TxnRequest {
            compare: vec![
                Compare::version("t", CompareOp::Equal, 2),
                Compare::value("t", CompareOp::Equal, "nope"),
            ],
            success: vec![TxnOp::Put(PutRequest::new("t", "yes"))],
            failure: vec![TxnOp::Put(PutRequest::new("t-failed", "1"))],
        })
        .await
        .unwrap();
    assert!(!both.succeeded);
    assert_eq!(get(s, "t").await.unwrap().value, b"ccc");
    assert!(get(s, "t-failed").await.is_some(), "the failure branch ran");
}

pub async fn txn_range_sees_writes_made_earlier_in_the_same_transaction(st: Arc<dyn Store>) {
    let s = &*st;
    put(s, "r/a", "old").await;
    let resp = s
        .txn(TxnRequest {
            success: vec![
                TxnOp::Put(PutRequest::new("r/a", "new")),
                TxnOp::Put(PutRequest::new("r/b", "b")),
                TxnOp::Range(RangeRequest::new(KeyRange::prefix("r/"))),
            ],
            ..Default::default()
        })
        .await
        .unwrap();
    match &resp.responses[2] {
        TxnOpResponse::Range(r) => {
            assert_eq!(keys(&r.kvs), ["r/a", "r/b"]);
            assert_eq!(r.kvs[0].value, b"new");
            assert_eq!(r.kvs[0].mod_revision, resp.header_revision);
        }
        other => panic!("expected a range answer, got {other:?}"),
    }
}

pub async fn txn_writing_one_key_twice_is_refused(st: Arc<dyn Store>) {
    let s = &*st;
    let r0 = s.current_revision().await.unwrap();
    let err = s
        .txn(TxnRequest {
            success: vec![
                TxnOp::Put(PutRequest::new("dup", "1")),
                TxnOp::Put(PutRequest::new("dup", "2")),
            ],
            ..Default::default()
        })
        .await;
    assert!(
        matches!(err, Err(StoreError::DuplicateKey(_))),
        "got {err:?}"
    );
    assert!(get(s, "dup").await.is_none());
    assert_eq!(s.current_revision().await.unwrap(), r0);
}

pub async fn delete_range_removes_every_key_in_one_revision(st: Arc<dyn Store>) {
    let s = &*st;
    for k in ["del/a", "del/b", "del/c", "keep"] {
        put(s, k, "v").await;
    }
    let r0 = s.current_revision().await.unwrap();
    let (rev, deleted, prev) = s
        .delete(DeleteRequest::new(KeyRange::prefix("del/")).with_prev_kv())
        .await
        .unwrap();
    assert_eq!((rev, deleted), (r0 + 1, 3));
    assert_eq!(keys(&prev), ["del/a", "del/b", "del/c"]);
    assert_eq!(
        s.range(RangeRequest::new(KeyRange::prefix("del/")))
            .await
            .unwrap()
            .count,
        0
    );
    assert!(get(s, "keep").await.is_some());
}

pub async fn concurrent_writers_lose_no_update(st: Arc<dyn Store>) {
    let s = &*st;
    // 16 writers each increment one shared counter 25 times with compare-and-swap.
    put(s, "counter", "0").await;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let st = st.clone();
        tasks.push(tokio::spawn(async move {
            let s = &*st;
            for _ in 0..25 {
                loop {
                    let cur = get(s, "counter").await.unwrap();
                    let n: u64 = String::from_utf8(cur.value).unwrap().parse().unwrap();
                    let resp = s
                        .txn(TxnRequest::update(
                            "counter",
                            cur.mod_revision,
                            (n + 1).to_string(),
                        ))
                        .await
                        .unwrap();
                    if resp.succeeded {
                        break;
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let kv = get(s, "counter").await.unwrap();
    assert_eq!(kv.value, b"400");
    assert_eq!(kv.version, 401);
}

pub async fn watch_from_the_past_replays_every_event_in_order_then_follows_live(
    st: Arc<dyn Store>,
) {
    let s = &*st;
    let r1 = put(s, "w/a", "1").await;
    let r2 = put(s, "w/b", "1").await;
    let r3 = put(s, "w/a", "2").await;
    let (r4, _, _) = s
        .delete(DeleteRequest::new(KeyRange::key("w/b")))
        .await
        .unwrap();
    let mut w = s
        .watch(WatchRequest::new(KeyRange::prefix("w/")).from_revision(r2))
        .await
        .unwrap();
    let past = next_events(&mut w, 3).await;
    let seen: Vec<_> = past
        .iter()
        .map(|e| {
            (
                e.kind,
                String::from_utf8_lossy(&e.kv.key).into_owned(),
                e.kv.mod_revision,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (EventKind::Put, "w/b".to_string(), r2),
            (EventKind::Put, "w/a".to_string(), r3),
            (EventKind::Delete, "w/b".to_string(), r4),
        ]
    );
    assert_eq!(past[1].kv.value, b"2");
    assert_eq!((past[1].kv.create_revision, past[1].kv.version), (r1, 2));
    let r5 = put(s, "w/c", "live").await;
    let live = next_events(&mut w, 1).await;
    assert_eq!(
        (live[0].kind, live[0].kv.mod_revision),
        (EventKind::Put, r5)
    );
    assert_eq!(live[0].kv.value, b"live");
}

pub async fn watch_delivers_prev_kv_for_updates_and_deletes(st: Arc<dyn Store>) {
    let s = &*st;
    let mut w = s
        .watch(WatchRequest::new(KeyRange::key("pk")).with_prev_kv())
        .await
        .unwrap();
    put(s, "pk", "1").await;
    put(s, "pk", "2").await;
    s.delete(DeleteRequest::new(KeyRange::key("pk")))
        .await
        .unwrap();
    let ev = next_events(&mut w, 3).await;
    assert!(ev[0].prev_kv.is_none(), "a create has no previous state");
    assert_eq!(ev[1].prev_kv.as_ref().unwrap().value, b"1");
    assert_eq!(ev[2].kind, EventKind::Delete);
    assert_eq!(ev[2].prev_kv.as_ref().unwrap().value, b"2");
    assert_eq!(ev[2].kv.key, b"pk");
    // The same from the past.
    let start = ev[0].kv.mod_revision;
    let mut w = s
        .watch(
            WatchRequest::new(KeyRange::key("pk"))
                .from_revision(start)
                .with_prev_kv(),
        )
        .await
        .unwrap();
    let replay = next_events(&mut w, 3).await;
    assert_eq!(replay, ev);
}

pub async fn watch_of_a_prefix_sees_only_its_keys(st: Arc<dyn Store>) {
    let s = &*st;
    let mut w = s
        .watch(WatchRequest::new(KeyRange::prefix("mine/")))
        .await
        .unwrap();
    put(s, "other/1", "x").await;
    put(s, "mine", "x").await;
    let r = put(s, "mine/1", "x").await;
    let ev = next_events(&mut w, 1).await;
    assert_eq!(
        (ev[0].kv.key.as_slice(), ev[0].kv.mod_revision),
        (&b"mine/1"[..], r)
    );
}

pub async fn watch_request_progress_reports_the_current_revision(st: Arc<dyn Store>) {
    let s = &*st;
    let mut w = s
        .watch(WatchRequest::new(KeyRange::prefix("prog/")))
        .await
        .unwrap();
    put(s, "prog/a", "1").await;
    next_events(&mut w, 1).await;
    let r = put(s, "elsewhere", "1").await;
    // Ask until the notification covers the unrelated write (progress is per watcher).
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        w.request_progress();
        let resp = next_response(&mut w).await;
        assert!(resp.is_progress_notify(), "unexpected events: {resp:?}");
        if resp.header_revision >= r {
            assert_eq!(resp.header_revision, r);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "progress never reached {r}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn slow_watcher_loses_nothing(st: Arc<dyn Store>) {
    let s = &*st;
    let start = s.current_revision().await.unwrap() + 1;
    let mut w = s
        .watch(WatchRequest::new(KeyRange::prefix("slow/")).with_prev_kv())
        .await
        .unwrap();
    // Write far more than any buffer holds before reading a single event.
    let n = 3000;
    let mut tasks = Vec::new();
    for t in 0..8 {
        let st = st.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..n / 8 {
                st.put(PutRequest::new(format!("slow/{t}"), format!("{i}")))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let ev = next_events(&mut w, n).await;
    for (i, e) in ev.iter().enumerate() {
        assert_eq!(
            e.kv.mod_revision,
            start + i as i64,
            "events in revision order, no gaps"
        );
        if e.kv.version > 1 {
            let prev = e
                .prev_kv
                .as_ref()
                .expect("an update carries its previous state");
            assert_eq!(prev.version, e.kv.version - 1);
        }
    }
}

pub async fn compaction_refuses_older_reads_and_watches_with_the_compact_revision(
    st: Arc<dyn Store>,
) {
    let s = &*st;
    let r1 = put(s, "cmp", "1").await;
    let r2 = put(s, "cmp", "2").await;
    let r3 = put(s, "cmp", "3").await;
    put(s, "cmp", "4").await;
    s.compact(r3).await.unwrap();
    match s
        .range(RangeRequest::new(KeyRange::key("cmp")).at_revision(r2))
        .await
    {
        Err(StoreError::Compacted {
            compact_revision, ..
        }) => assert_eq!(compact_revision, r3),
        other => panic!("expected Compacted, got {other:?}"),
    }
    let at3 = s
        .range(RangeRequest::new(KeyRange::key("cmp")).at_revision(r3))
        .await
        .unwrap();
    assert_eq!(at3.kvs[0].value, b"3");
    let mut w = s
        .watch(WatchRequest::new(KeyRange::key("cmp")).from_revision(r1))
        .await
        .unwrap();
    match tokio::time::timeout(WAIT, w.next()).await {
        Ok(Some(Err(StoreError::Compacted {
            compact_revision,
            requested,
        }))) => {
            assert_eq!((compact_revision, requested), (r3, r1));
        }
        other => panic!("expected Compacted from the watch, got {other:?}"),
    }
    // Compacting again to an older revision is refused.
    assert!(matches!(
        s.compact(r2).await,
        Err(StoreError::Compacted { .. })
    ));
    // A watch from after the compaction point replays what is left.
    let mut w = s
        .watch(WatchRequest::new(KeyRange::key("cmp")).from_revision(r3 + 1))
        .await
        .unwrap();
    let ev = next_events(&mut w, 1).await;
    assert_eq!(ev[0].kv.value, b"4");
}

pub async fn compaction_keeps_the_latest_state_of_every_key(st: Arc<dyn Store>) {
    let s = &*st;
    for i in 0..20 {
        put(s, &format!("keep/{}", i % 5), &format!("{i}")).await;
    }
    put(s, "gone", "x").await;
    s.delete(DeleteRequest::new(KeyRange::key("gone")))
        .await
        .unwrap();
    let before = s
        .range(RangeRequest::new(KeyRange::prefix("")))
        .await
        .unwrap();
    let rev = s.current_revision().await.unwrap();
    s.compact(rev).await.unwrap();
    let after = s
        .range(RangeRequest::new(KeyRange::prefix("")))
        .await
        .unwrap();
    assert_eq!(after.kvs, before.kvs);
    assert_eq!(after.count, 5);
    let at = s
        .range(RangeRequest::new(KeyRange::prefix("")).at_revision(rev))
        .await
        .unwrap();
    assert_eq!(at.kvs, before.kvs);
    assert_eq!(put(s, "keep/0", "next").await, rev + 1);
    assert_eq!(get(s, "keep/0").await.unwrap().version, 5);
}

pub async fn lease_keep_alive_time_to_live_and_revoke(st: Arc<dyn Store>) {
    let s = &*st;
    let lease = s.lease_grant(30).await.unwrap();
    assert_eq!(lease.ttl, 30);
    assert!(lease.id > 0);
    s.put(PutRequest::new("l/a", "1").with_lease(lease.id))
        .await
        .unwrap();
    s.put(PutRequest::new("l/b", "1").with_lease(lease.id))
        .await
        .unwrap();
    put(s, "l/c", "1").await;
    assert_eq!(get(s, "l/a").await.unwrap().lease, lease.id);
    let ttl = s.lease_time_to_live(lease.id).await.unwrap().unwrap();
    assert_eq!(ttl.granted_ttl, 30);
    assert!(ttl.ttl > 0 && ttl.ttl <= 30);
    let mut ks = ttl.keys.clone();
    ks.sort();
    assert_eq!(ks, vec![b"l/a".to_vec(), b"l/b".to_vec()]);
    assert_eq!(s.lease_keep_alive(lease.id).await.unwrap(), 30);
    // Overwriting a key without the lease detaches it.
    put(s, "l/b", "2").await;
    let ttl = s.lease_time_to_live(lease.id).await.unwrap().unwrap();
    assert_eq!(ttl.keys, vec![b"l/a".to_vec()]);
    let mut w = s
        .watch(WatchRequest::new(KeyRange::prefix("l/")))
        .await
        .unwrap();
    s.lease_revoke(lease.id).await.unwrap();
    let ev = next_events(&mut w, 1).await;
    assert_eq!(
        (ev[0].kind, ev[0].kv.key.as_slice()),
        (EventKind::Delete, &b"l/a"[..])
    );
    assert!(get(s, "l/a").await.is_none());
    assert!(get(s, "l/b").await.is_some() && get(s, "l/c").await.is_some());
    assert!(s.lease_time_to_live(lease.id).await.unwrap().is_none());
    assert!(matches!(
        s.lease_keep_alive(lease.id).await,
        Err(StoreError::LeaseNotFound(_))
    ));
    assert!(matches!(
        s.lease_revoke(lease.id).await,
        Err(StoreError::LeaseNotFound(_))
    ));
}

pub async fn lease_expiry_deletes_attached_keys(st: Arc<dyn Store>) {
    let s = &*st;
    let lease = s.lease_grant(2).await.unwrap();
    let mut w = s
        .watch(WatchRequest::new(KeyRange::prefix("exp/")))
        .await
        .unwrap();
    s.put(PutRequest::new("exp/a", "1").with_lease(lease.id))
        .await
        .unwrap();
    s.put(PutRequest::new("exp/b", "1").with_lease(lease.id))
        .await
        .unwrap();
    next_events(&mut w, 2).await;
    // The deletions arrive once the lease expires, in one revision.
    let ev = next_events(&mut w, 2).await;
    assert!(ev.iter().all(|e| e.kind == EventKind::Delete));
    assert_eq!(ev[0].kv.mod_revision, ev[1].kv.mod_revision);
    assert!(get(s, "exp/a").await.is_none() && get(s, "exp/b").await.is_none());
    assert!(s.lease_time_to_live(lease.id).await.unwrap().is_none());
}

pub async fn put_with_an_unknown_lease_is_refused(st: Arc<dyn Store>) {
    let s = &*st;
    let r0 = s.current_revision().await.unwrap();
    let err = s
        .put(PutRequest::new("nl", "1").with_lease(0x1234_5678))
        .await;
    assert!(
        matches!(err, Err(StoreError::LeaseNotFound(0x1234_5678))),
        "got {err:?}"
    );
    assert!(get(s, "nl").await.is_none());
    assert_eq!(s.current_revision().await.unwrap(), r0);
}

pub async fn value_just_under_the_request_limit_is_stored_and_one_over_is_refused(
    st: Arc<dyn Store>,
) {
    let s = &*st;
    let limit = DEFAULT_MAX_REQUEST_BYTES;
    let big: Vec<u8> = (0..limit - 1024).map(|i| (i % 251) as u8).collect();
    s.put(PutRequest::new("big", big.clone())).await.unwrap();
    assert_eq!(get(s, "big").await.unwrap().value, big);
    let r0 = s.current_revision().await.unwrap();
    let over = vec![7u8; limit + 1];
    let err = s.put(PutRequest::new("big", over)).await;
    assert!(
        matches!(err, Err(StoreError::RequestTooLarge { .. })),
        "got {err:?}"
    );
    assert_eq!(
        get(s, "big").await.unwrap().value,
        big,
        "the old value is untouched"
    );
    assert_eq!(s.current_revision().await.unwrap(), r0);
}

pub async fn txn_range_reads_at_a_past_revision(st: Arc<dyn Store>) {
    let s = &*st;
    let r1 = put(s, "tp", "1").await;
    put(s, "tp", "2").await;
    let resp = s
        .txn(TxnRequest {
            success: vec![TxnOp::Range(
                RangeRequest::new(KeyRange::key("tp")).at_revision(r1),
            )],
            ..Default::default()
        })
        .await
        .unwrap();
    match &resp.responses[0] {
        TxnOpResponse::Range(r) => assert_eq!(r.kvs[0].value, b"1"),
        other => panic!("expected a range answer, got {other:?}"),
    }
    let future = s
        .txn(TxnRequest {
            success: vec![TxnOp::Range(
                RangeRequest::new(KeyRange::key("tp")).at_revision(r1 + 50),
            )],
            ..Default::default()
        })
        .await;
    assert!(
        matches!(future, Err(StoreError::FutureRevision { .. })),
        "got {future:?}"
    );
}
