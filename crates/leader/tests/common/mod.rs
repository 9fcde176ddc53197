//! What the election tests share: a real API server on an embedded store in a temporary
//! directory, reached in-process as the scheduler's identity (so the bootstrap RBAC policy, not
//! `system:masters`, lets it at its Lease); a client whose requests can be made to fail or
//! hang; candidates run in tasks with a probe on the work they do as leader; waiting on a
//! condition with a deadline.

#![allow(dead_code)]

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use rkube_leader::{Config, ElectionStatus, Error, LeaderElector, Leadership};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// The Lease the scheduler elects on, which its bootstrap role may get and update.
pub const NAMESPACE: &str = "kube-system";
pub const NAME: &str = "kube-scheduler";

/// A running API server. The data directory lives as long as this.
pub struct Cluster {
    pub server: Arc<rkube_apiserver::ApiServer>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// A client acting as the scheduler.
    pub fn client(&self) -> kube::Client {
        self.server.client(rkube_apiserver::authz::User {
            name: "system:kube-scheduler".into(),
            groups: vec!["system:authenticated".into()],
            ..Default::default()
        })
    }

    /// An administrator's client, for the test's own reads and writes.
    pub fn admin(&self) -> kube::Client {
        self.server.client(rkube_apiserver::authz::User {
            name: "admin".into(),
            groups: vec!["system:masters".into()],
            ..Default::default()
        })
    }

    /// The Lease as stored, if it exists.
    pub async fn lease(&self) -> Option<Lease> {
        let api: kube::Api<Lease> = kube::Api::namespaced(self.admin(), NAMESPACE);
        match api.get_opt(NAME).await {
            Ok(l) => l,
            Err(e) => panic!("reading the lease: {e}"),
        }
    }
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
    Ok(Cluster { server, _dir: dir })
}

/// What a flaky client does with a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Network {
    /// Passes it on.
    Up = 0,
    /// Answers 503 at once, as an overloaded or restarting server.
    Refusing = 1,
    /// Never answers, as a partitioned network.
    Hanging = 2,
}

/// A client whose requests pass through a switch the test controls.
pub fn flaky(inner: kube::Client) -> (kube::Client, Arc<AtomicU8>) {
    let mode = Arc::new(AtomicU8::new(Network::Up as u8));
    let m = mode.clone();
    let service = tower::service_fn(move |req: http::Request<kube::client::Body>| {
        let inner = inner.clone();
        let mode = m.load(Ordering::SeqCst);
        async move {
            if mode == Network::Refusing as u8 {
                let status = br#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"unavailable","reason":"ServiceUnavailable","code":503}"#;
                let resp = http::Response::builder()
                    .status(503)
                    .header("content-type", "application/json")
                    .body(kube::client::Body::from(status.to_vec()))
                    .map_err(kube::Error::HttpError)?;
                return Ok::<_, kube::Error>(resp);
            }
            if mode == Network::Hanging as u8 {
                std::future::pending::<()>().await;
            }
            inner.send(req).await
        }
    });
    (kube::Client::new(service, "default"), mode)
}

pub fn set_network(mode: &AtomicU8, to: Network) {
    mode.store(to as u8, Ordering::SeqCst);
}

/// Short timing, as upstream's ratios: lease 1 s, renew deadline 0.7 s, retry 0.2 s.
pub fn config(identity: &str) -> Config {
    Config {
        lease_duration: Duration::from_millis(1000),
        renew_deadline: Duration::from_millis(700),
        retry_period: Duration::from_millis(200),
        ..Config::new(NAMESPACE, NAME, identity)
    }
}

/// What happened to the work a candidate ran as leader.
#[derive(Default)]
pub struct Probe {
    pub started_at: Mutex<Option<Instant>>,
    /// The work saw the stop signal and returned by itself.
    pub returned: AtomicBool,
    /// The work's future finished or was dropped.
    pub ended_at: Mutex<Option<Instant>>,
}

impl Probe {
    pub fn started(&self) -> Option<Instant> {
        *self.started_at.lock().unwrap_or_else(|e| e.into_inner())
    }
    pub fn ended(&self) -> Option<Instant> {
        *self.ended_at.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Marks the work ended when its future goes away, however it goes.
struct EndGuard(Arc<Probe>);

impl Drop for EndGuard {
    fn drop(&mut self) {
        *self.0.ended_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    }
}

/// A candidate running in a task: its work waits for the stop signal and returns `"done"`.
pub struct Candidate {
    pub identity: String,
    pub status: ElectionStatus,
    pub probe: Arc<Probe>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<Option<&'static str>, Error>>>,
}

impl Candidate {
    pub fn start(client: kube::Client, cfg: Config) -> Candidate {
        let identity = cfg.identity.clone();
        let elector = match LeaderElector::new(client, cfg) {
            Ok(e) => e,
            Err(e) => panic!("bad config: {e}"),
        };
        let status = elector.status();
        let probe = Arc::new(Probe::default());
        let (tx, rx) = oneshot::channel::<()>();
        let p = probe.clone();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                // A dropped sender is no shutdown: only an explicit send stops the candidate.
                if rx.await.is_err() {
                    std::future::pending::<()>().await;
                }
            };
            elector
                .run(shutdown, move |mut leadership: Leadership| async move {
                    *p.started_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
                    let _guard = EndGuard(p.clone());
                    leadership.stopped().await;
                    assert!(leadership.is_stopped());
                    p.returned.store(true, Ordering::SeqCst);
                    "done"
                })
                .await
        });
        Candidate {
            identity,
            status,
            probe,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// Asks the candidate to shut down and returns what its run returned.
    pub async fn shutdown(&mut self) -> Result<Option<&'static str>, Error> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.join().await
    }

    /// Waits (at most 10 s) for the candidate's run to return by itself.
    pub async fn join(&mut self) -> Result<Option<&'static str>, Error> {
        let Some(task) = self.task.take() else {
            panic!("candidate {} already joined", self.identity);
        };
        match tokio::time::timeout(Duration::from_secs(10), task).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => panic!("candidate {} panicked: {e}", self.identity),
            Err(_) => panic!("candidate {} did not return within 10 s", self.identity),
        }
    }

    /// Kills the candidate as a crash would: no release, no more renewals.
    pub fn kill(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Drop for Candidate {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `check` every 20 ms until it yields a value, for at most 10 s; panics naming `what`
/// when the deadline passes.
pub async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out after 10 s waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
