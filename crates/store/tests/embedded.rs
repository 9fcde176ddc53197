//! The conformance suite against the embedded backend, one fresh data directory per case,
//! and what only the embedded backend promises (exact limits, group commit, lag recovery).

mod conformance;

use std::sync::Arc;

use rkube_store::embedded::{EmbeddedStore, Options};

async fn open_without_compaction() -> (EmbeddedStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let opts = Options {
        compaction_interval: None,
        ..Options::default()
    };
    let store = EmbeddedStore::open_with(dir.path(), opts)
        .await
        .expect("open the embedded store");
    (store, dir)
}

async fn backend() -> conformance::Backend {
    let (store, dir) = open_without_compaction().await;
    conformance::Backend {
        store: Arc::new(store),
        guard: Box::new(dir),
    }
}

conformance_tests!(backend);

#[tokio::test]
async fn request_exactly_at_a_configured_limit_is_accepted_and_one_byte_more_is_refused() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let limit = 4096;
    let opts = Options {
        max_request_bytes: limit,
        compaction_interval: None,
        ..Options::default()
    };
    let store = EmbeddedStore::open_with(dir.path(), opts)
        .await
        .expect("open");
    let at = |n: usize| rkube_store::PutRequest::new("k", vec![1u8; n]);
    let size = |p: &rkube_store::PutRequest| {
        rkube_store::TxnRequest {
            success: vec![rkube_store::TxnOp::Put(p.clone())],
            ..Default::default()
        }
        .encoded_len()
    };
    let overhead = size(&at(0));
    let exact = at(limit - overhead);
    assert_eq!(size(&exact), limit);
    use rkube_store::Store;
    store
        .put(exact)
        .await
        .expect("a request of exactly the limit is accepted");
    match store.put(at(limit - overhead + 1)).await {
        Err(rkube_store::StoreError::RequestTooLarge { size, limit: l }) => {
            assert_eq!((size, l), (limit + 1, limit));
        }
        other => panic!("expected RequestTooLarge, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_share_fsyncs() {
    use rkube_store::Store;
    let (store, _dir) = open_without_compaction().await;
    let store = Arc::new(store);
    let before = store.stats();
    let mut tasks = Vec::new();
    for w in 0..64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..20 {
                let txn = rkube_store::TxnRequest::create(format!("/g/{w}/{i}"), "v");
                assert!(store.txn(txn).await.expect("create").succeeded);
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    let after = store.stats();
    let writes = after.write_txns - before.write_txns;
    let commits = after.commits - before.commits;
    assert_eq!(writes, 64 * 20);
    assert_eq!(
        store.current_revision().await.expect("revision"),
        1 + 64 * 20
    );
    assert!(
        commits * 4 < writes,
        "{writes} writes took {commits} commits: no group commit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_watcher_catches_up_from_the_log_and_loses_nothing() {
    use rkube_store::{KeyRange, PutRequest, Store, WatchRequest};
    let (store, _dir) = open_without_compaction().await;
    let store = Arc::new(store);
    let mut w = store
        .watch(WatchRequest::new(KeyRange::prefix("/lag/")))
        .await
        .expect("watch");
    // One writer, so that every write is its own batch: far more batches than a live watcher
    // may have queued.
    let n = 2000;
    for i in 0..n {
        store
            .put(PutRequest::new(format!("/lag/{}", i % 7), format!("{i}")))
            .await
            .expect("put");
    }
    let mut next = 2;
    while next <= 1 + n {
        let resp = tokio::time::timeout(std::time::Duration::from_secs(10), w.next())
            .await
            .expect("events in time")
            .expect("watch open")
            .expect("no error");
        for e in resp.events {
            assert_eq!(e.kv.mod_revision, next, "in order, none lost or repeated");
            assert_eq!(e.kv.value, format!("{}", next - 2).into_bytes());
            next += 1;
        }
    }
    assert!(
        store.stats().watch_resyncs >= 1,
        "the watcher lagged and caught up from the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_that_asks_for_progress_gets_periodic_notifications() {
    use rkube_store::{KeyRange, PutRequest, Store, WatchRequest};
    let dir = tempfile::tempdir().expect("temporary directory");
    let opts = Options {
        compaction_interval: None,
        progress_notify_interval: std::time::Duration::from_millis(100),
        ..Options::default()
    };
    let store = EmbeddedStore::open_with(dir.path(), opts)
        .await
        .expect("open");
    let mut w = store
        .watch(WatchRequest::new(KeyRange::prefix("/quiet/")).with_progress_notify())
        .await
        .expect("watch");
    let (rev, _) = store
        .put(PutRequest::new("/elsewhere", "x"))
        .await
        .expect("put");
    // Without asking, a notification arrives that covers the unrelated write.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let resp = tokio::time::timeout_at(deadline, w.next())
            .await
            .expect("a progress notification within 10 s")
            .expect("watch open")
            .expect("no error");
        assert!(resp.is_progress_notify(), "no events on /quiet/: {resp:?}");
        if resp.header_revision == rev {
            break;
        }
    }
}
