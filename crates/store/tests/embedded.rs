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
