//! The conformance suite against the embedded backend, one fresh data directory per case.

mod conformance;

use std::sync::Arc;

use rkube_store::embedded::{EmbeddedStore, Options};

async fn backend() -> conformance::Backend {
    let dir = tempfile::tempdir().expect("temporary directory");
    let opts = Options {
        compaction_interval: None,
        ..Options::default()
    };
    let store = EmbeddedStore::open_with(dir.path(), opts)
        .await
        .expect("open the embedded store");
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
