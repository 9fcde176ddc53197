//! A plain-HTTP endpoint for a standalone component's `/metrics` (Prometheus text) and
//! `/healthz`, on a loopback address by default.

use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use prometheus_client::registry::Registry;

/// Serves until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, registry: Arc<Registry>) {
    let app = Router::new()
        .route(
            "/metrics",
            get(move || {
                let registry = registry.clone();
                async move {
                    let mut out = String::new();
                    if prometheus_client::encoding::text::encode(&mut out, &registry).is_err() {
                        out.clear();
                    }
                    (
                        [(
                            http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        out,
                    )
                }
            }),
        )
        .route("/healthz", get(|| async { "ok" }));
    if let Err(e) = axum::serve(listener, app).await {
        eprintln!("metrics endpoint stopped: {e}");
    }
}

/// Binds `addr` (nothing when empty) and serves `registry` there in the background.
pub async fn spawn(addr: &str, registry: Registry) -> std::io::Result<()> {
    if addr.is_empty() {
        return Ok(());
    }
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tokio::spawn(serve(listener, Arc::new(registry)));
    Ok(())
}
