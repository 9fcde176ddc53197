//! The controllers inside `rkube server`: each reaches the API server through the
//! in-process transport under its own identity, the kube-system service account upstream's
//! controller manager uses for it, so RBAC confines it as upstream does.

use std::sync::Arc;

use anyhow::Result;
use rkube_apiserver::ApiServer;
use rkube_controllers::{identity, start_all, ControllerContext, TokenGenerator};

use crate::controller_manager::ControllerFlags;

use crate::security::ServerPki;

/// Starts the enabled controllers, with their metrics on `metrics_addr` (empty: none; an
/// address in use is reported and skipped).
pub async fn start(
    server: &Arc<ApiServer>,
    pki: &ServerPki,
    flags: &ControllerFlags,
    metrics_addr: &str,
) -> Result<Vec<tokio::task::JoinHandle<()>>> {
    let enabled = flags.enabled()?;
    let mut ctx = ControllerContext::new(pki.ca.cert_pem());
    ctx.csr_signer = Some(pki.ca.clone());
    ctx.token_generator = Some(Arc::new(LegacyTokens(server.clone())));
    let informer_client = server.client(identity(""));
    ctx.shared_informers = Some(rkube_controllers::SharedInformers::new(
        informer_client.clone(),
    ));
    ctx.informer_client = Some(informer_client);
    ctx.workers = flags.workers();
    let mut registry = prometheus_client::registry::Registry::default();
    ctx.metrics.register(&mut registry);
    if let Err(e) = crate::metrics_http::spawn(metrics_addr, registry).await {
        eprintln!("rkube controllers: no /metrics on {metrics_addr}: {e}");
    }
    let client_for = |sa: &str| server.client(identity(sa));
    Ok(start_all(&client_for, Arc::new(ctx), &enabled))
}

/// Issues legacy service-account tokens with the server's signing key.
#[derive(Debug)]
struct LegacyTokens(Arc<ApiServer>);

impl TokenGenerator for LegacyTokens {
    fn legacy_token(
        &self,
        namespace: &str,
        sa_name: &str,
        sa_uid: &str,
        secret_name: &str,
    ) -> Result<String, String> {
        let tokens = self
            .0
            .security()
            .service_accounts
            .as_ref()
            .ok_or("service-account tokens are not configured")?;
        tokens
            .legacy_token(namespace, sa_name, sa_uid, secret_name)
            .ok_or_else(|| "signing the token failed".to_string())
    }
}
