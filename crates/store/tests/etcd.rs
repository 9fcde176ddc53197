//! The conformance suite against a real etcd (Debian's etcd-server), one fresh etcd per case.
//!
//! A missing etcd fails every case: a backend that is not tested must not look like one that
//! passed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

// The suite on this branch builds a one-element slice by cloning, which newer clippy flags; the
// suite is shared with the other backend and is not this file's to change.
mod conformance;

use std::sync::Arc;

use rkube_store::etcd::EtcdStore;
use rkube_store::testing::EtcdServer;

async fn backend() -> conformance::Backend {
    // Starting etcd waits for it with blocking sleeps and I/O.
    let server = tokio::task::spawn_blocking(EtcdServer::start)
        .await
        .expect("the etcd start-up task panicked")
        .unwrap_or_else(|e| panic!("cannot start etcd for the conformance suite: {e}"));
    let store = EtcdStore::connect(&[server.client_url().to_string()])
        .await
        .unwrap_or_else(|e| panic!("cannot connect to etcd at {}: {e}", server.client_url()));
    conformance::Backend {
        store: Arc::new(store),
        guard: Box::new(server),
    }
}

conformance_tests!(backend);
