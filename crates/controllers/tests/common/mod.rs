//! What the integration tests share: a real API server on an embedded store in a temporary
//! directory, reached in-process as the controller manager's identity; controllers started
//! through the registry and stopped when the test ends; waiting on a condition with a
//! deadline.

#![allow(dead_code)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rkube_controllers::{start_all, ControllerContext, Controllers};

pub type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// A CA bundle to publish; the controllers only copy it.
pub const CA_PEM: &str =
    "-----BEGIN CERTIFICATE-----\nMIIBdGVzdC1jYQ==\n-----END CERTIFICATE-----\n";

/// A running API server and a client for it. The data directory lives as long as this.
pub struct Cluster {
    pub client: kube::Client,
    pub server: Arc<rkube_apiserver::ApiServer>,
    _dir: tempfile::TempDir,
}

/// Starts an API server on a fresh embedded store.
pub async fn cluster() -> Result<Cluster, Box<dyn std::error::Error + Send + Sync>> {
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn rkube_store::Store> =
        Arc::new(rkube_store::embedded::EmbeddedStore::open(dir.path()).await?);
    let server = rkube_apiserver::ApiServer::new(
        store,
        rkube_apiserver::Config::default(),
        rkube_apiserver::Security::insecure(),
    )
    .await?;
    let admin = rkube_apiserver::authz::User {
        name: "system:kube-controller-manager".into(),
        groups: vec!["system:masters".into()],
        ..Default::default()
    };
    let client = server.client(admin);
    Ok(Cluster {
        client,
        server,
        _dir: dir,
    })
}

/// Controller tasks that are aborted when the test drops this.
pub struct Running(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Running {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}

impl Running {
    pub fn spawn<F>(fut: F) -> Self
    where
        F: Future<Output = Result<(), rkube_controllers::Error>> + Send + 'static,
    {
        Running(vec![tokio::spawn(async move {
            if let Err(e) = fut.await {
                panic!("controller failed: {e}");
            }
        })])
    }
}

/// Starts the controllers `--controllers=<selection>` names, through the registry.
/// They share informers, as in the controller manager, unless `ctx` brings its own.
pub fn start(client: &kube::Client, mut ctx: ControllerContext, selection: &str) -> Running {
    if ctx.shared_informers.is_none() {
        ctx.shared_informers = Some(rkube_controllers::SharedInformers::new(client.clone()));
    }
    let enabled = match Controllers::parse(selection) {
        Ok(c) => c,
        Err(e) => panic!("bad selection {selection:?}: {e}"),
    };
    Running(start_all(&|_| client.clone(), Arc::new(ctx), &enabled))
}

/// Polls `check` every 50 ms until it yields a value, for at most 10 s; panics naming `what`
/// when the deadline passes.
pub async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after 10 s waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
