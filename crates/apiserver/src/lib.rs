//! rkube's API server: the Kubernetes REST API over the store.
//!
//! The server is an axum [`Router`](axum::Router) built by [`ApiServer::router`]; `serve`
//! runs it on a listener. Only this crate talks to the store.
//!
//! - [`server`]: state and routes; [`handlers`]: one module per group of verbs;
//! - [`watch_cache`]: the in-memory cache that lists and watches are served from;
//! - [`discovery`]: `/api`, `/apis`, aggregated discovery, `/version`;
//! - [`admission`] and [`strategy`]: what happens to an object before it is stored;
//! - [`status`]: errors as Kubernetes `Status` objects;
//! - [`encryption`]: encryption at rest (`EncryptionConfiguration`) for the storage codec;
//! - [`audit`]: audit policy, events and the log backend.

// Handlers return `ApiError`s by value: errors are the rare path and boxing them would only
// add an allocation to every failure.
#![allow(clippy::result_large_err)]

pub mod admission;
pub mod at_rest;
pub mod audit;
pub mod authn;
pub mod authz;
pub mod codec;
pub mod convert;
pub mod csr;
pub mod discovery;
pub mod encryption;
pub mod filter;
pub mod guard;
mod handlers;
pub mod kubelet_client;
pub mod metrics;
pub mod object;
pub mod request;
pub mod sa_token;
pub mod server;
pub mod status;
pub mod storage;
pub mod strategy;
pub mod tables;
pub mod tls;
pub mod watch_cache;

pub use server::{ApiServer, Config, Security};

use std::sync::Arc;

/// Serves the API on `listener` until `shutdown` resolves.
pub async fn serve(
    server: Arc<ApiServer>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, server.router())
        .with_graceful_shutdown(shutdown)
        .await
}
