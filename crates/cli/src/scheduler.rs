//! `rkube scheduler`: the scheduler on its own, reaching the API server through a kubeconfig
//! (`--kubeconfig`, or `clientConnection.kubeconfig` in `--config`), as upstream's
//! kube-scheduler; and [`start_in_server`], the scheduler inside `rkube server`, reaching the
//! API server in-process as `system:kube-scheduler`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use rkube_apiserver::ApiServer;
use rkube_scheduler::{KubeSchedulerConfiguration, Metrics};

#[derive(Debug, Args)]
pub struct SchedulerArgs {
    /// A KubeSchedulerConfiguration (kubescheduler.config.k8s.io/v1) file.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The kubeconfig to reach the API server with (overrides the configuration file's).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Elect a leader through a Lease so that only one of several schedulers schedules
    /// (overrides the configuration file's `leaderElection.leaderElect`).
    #[arg(long)]
    pub leader_elect: Option<bool>,
    /// Address of the plain-HTTP `/metrics` and `/healthz` endpoint (empty: none).
    #[arg(long, default_value = "127.0.0.1:10251")]
    pub metrics_bind_address: String,
}

/// Reads `--config`, or upstream's defaults.
pub fn load_config(path: Option<&PathBuf>) -> Result<KubeSchedulerConfiguration> {
    match path {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading scheduler configuration {}", p.display()))?;
            Ok(KubeSchedulerConfiguration::parse(&text)?)
        }
        None => Ok(KubeSchedulerConfiguration::default()),
    }
}

/// `rkube scheduler`.
pub async fn run(args: SchedulerArgs) -> Result<()> {
    let mut config = load_config(args.config.as_ref())?;
    if let Some(le) = args.leader_elect {
        config.leader_election.leader_elect = le;
    }
    let kubeconfig = args.kubeconfig.clone().or_else(|| {
        let p = &config.client_connection.kubeconfig;
        (!p.is_empty()).then(|| PathBuf::from(p))
    });
    let client = crate::kubeconfig::client(kubeconfig.as_deref()).await?;
    let metrics = Arc::new(Metrics::default());
    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    crate::metrics_http::spawn(&args.metrics_bind_address, registry)
        .await
        .with_context(|| format!("listening on {}", args.metrics_bind_address))?;
    eprintln!("rkube scheduler starting");
    let sched_config = config.clone();
    let election = crate::leader::Election::from_scheduler(&config, "kube-scheduler")?;
    crate::leader::run_elected(
        client.clone(),
        &election,
        "kube-scheduler",
        crate::server::shutdown_signal(),
        move |stop| rkube_scheduler::run(client, sched_config, metrics, stop),
    )
    .await
}

/// Starts the scheduler inside `rkube server`, with its `/metrics` and `/healthz` on
/// `metrics_addr` (empty: none; an address in use is reported and skipped, as the server runs
/// on without them).
pub fn start_in_server(
    server: &Arc<ApiServer>,
    config: KubeSchedulerConfiguration,
    metrics_addr: &str,
) -> tokio::task::JoinHandle<()> {
    let client = server.client(rkube_api::rbac::User {
        name: "system:kube-scheduler".into(),
        groups: vec!["system:authenticated".into()],
        ..Default::default()
    });
    let metrics = Arc::new(Metrics::default());
    let metrics_addr = metrics_addr.to_string();
    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    tokio::spawn(async move {
        if let Err(e) = crate::metrics_http::spawn(&metrics_addr, registry).await {
            eprintln!("rkube scheduler: no /metrics on {metrics_addr}: {e}");
        }
        let stop = std::future::pending::<()>();
        if let Err(e) = rkube_scheduler::run(client, config, metrics, stop).await {
            eprintln!("rkube scheduler stopped: {e}");
        }
    })
}
