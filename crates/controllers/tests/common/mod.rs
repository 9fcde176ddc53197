//! What the integration tests share: a real API server on an embedded store in a temporary
//! directory, with RBAC on; controllers started through the registry, each under the identity
//! `rkube server` gives it (its kube-system service account, watching as the controller
//! manager), so a request a controller's upstream role does not allow fails here as it would
//! in a cluster; stopped when the test ends; waiting on a condition with a deadline.

#![allow(dead_code)]

pub mod services;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rkube_controllers::{identity, start_all, ControllerContext, Controllers};

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

/// Starts an API server on a fresh embedded store: authorization by RBAC with upstream's
/// bootstrap policy, the default admission plugins. `client` is a cluster admin (the test
/// itself).
pub async fn cluster() -> Result<Cluster, Box<dyn std::error::Error + Send + Sync>> {
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn rkube_store::Store> =
        Arc::new(rkube_store::embedded::EmbeddedStore::open(dir.path()).await?);
    let server = rkube_apiserver::ApiServer::new(
        store,
        rkube_apiserver::Config::default(),
        rkube_apiserver::Security {
            admission: rkube_apiserver::admission::Admission::default_plugins(),
            ..Default::default()
        },
    )
    .await?;
    let admin = rkube_apiserver::authz::User {
        name: "test-admin".into(),
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

impl Cluster {
    /// A client acting as `user`, through RBAC.
    pub fn client_as(&self, user: rkube_api::rbac::User) -> kube::Client {
        self.server.client(user)
    }
}

/// Starts the controllers `--controllers=<selection>` names, through the registry, as
/// `rkube server` does: each writes as its own service account and they watch through
/// shared informers as the controller manager, unless `ctx` brings its own.
pub fn start(c: &Cluster, mut ctx: ControllerContext, selection: &str) -> Running {
    if ctx.informer_client.is_none() {
        ctx.informer_client = Some(c.client_as(identity("")));
    }
    if ctx.shared_informers.is_none() {
        let informers = ctx
            .informer_client
            .clone()
            .unwrap_or_else(|| c.client.clone());
        ctx.shared_informers = Some(rkube_controllers::SharedInformers::new(informers));
    }
    let enabled = match Controllers::parse(selection) {
        Ok(c) => c,
        Err(e) => panic!("bad selection {selection:?}: {e}"),
    };
    let server = c.server.clone();
    let client_for = move |sa: &str| server.client(identity(sa));
    Running(start_all(&client_for, Arc::new(ctx), &enabled))
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
