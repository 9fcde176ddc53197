//! `rkube server` and `rkube apiserver`: open the datastore, start the API server, write a
//! kubeconfig once the API answers, and run until SIGINT or SIGTERM.
//!
//! `server` will grow the other control-plane components and a local node; `apiserver` runs
//! the API server alone.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use rkube_apiserver::storage::{self, Datastore};
use rkube_apiserver::{ApiServer, Config};

#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Directory for the embedded store and the server's files.
    #[arg(long, default_value = "/var/lib/rkube")]
    pub data_dir: PathBuf,
    /// Port the API listens on.
    #[arg(long, default_value_t = 6443)]
    pub https_listen_port: u16,
    /// Address the API listens on.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind_address: std::net::IpAddr,
    /// Where to write a kubeconfig for this server once the API is ready
    /// (default: <data-dir>/kubeconfig.yaml).
    #[arg(long)]
    pub write_kubeconfig: Option<PathBuf>,
    /// etcd endpoints (`http://127.0.0.1:2379,...`) instead of the embedded store.
    #[arg(long, value_delimiter = ',')]
    pub datastore_endpoint: Vec<String>,
    #[command(flatten)]
    pub security: crate::security::SecurityArgs,
    /// A KubeSchedulerConfiguration file for the scheduler inside the server.
    #[arg(long)]
    pub scheduler_config: Option<PathBuf>,
    /// Run the server without its scheduler.
    #[arg(long)]
    pub disable_scheduler: bool,
    /// Address of the plain-HTTP `/metrics` and `/healthz` endpoint of the scheduler inside
    /// the server (empty: none), as `rkube scheduler --metrics-bind-address`.
    #[arg(long, default_value = "127.0.0.1:10251")]
    pub scheduler_metrics_bind_address: String,
    /// Address of the plain-HTTP `/metrics` and `/healthz` endpoint of the controllers inside
    /// the server (empty: none), as `rkube controller-manager --metrics-bind-address`.
    #[arg(long, default_value = "127.0.0.1:10252")]
    pub controller_manager_metrics_bind_address: String,
    #[command(flatten)]
    pub controller: crate::controller_manager::ControllerFlags,
    /// Run the control plane alone, without the local node (kubelet and containerd).
    #[arg(long)]
    pub disable_agent: bool,
    #[command(flatten)]
    pub node: crate::agent::NodeArgs,
}

/// Runs the API server, and the controllers when `with_controllers` (`rkube server`).
pub async fn run(args: ServerArgs, with_controllers: bool) -> Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating data directory {}", args.data_dir.display()))?;
    let datastore = if args.datastore_endpoint.is_empty() {
        Datastore::Embedded
    } else {
        Datastore::Etcd(args.datastore_endpoint.clone())
    };
    let store = storage::open(&args.data_dir, &datastore)
        .await
        .with_context(|| format!("opening the datastore ({datastore:?})"))?;
    let addr = SocketAddr::new(args.bind_address, args.https_listen_port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    let local = listener.local_addr()?;
    let config = Config {
        server_address: local.to_string(),
        ..Config::default()
    };
    let kubeconfig = args
        .write_kubeconfig
        .clone()
        .unwrap_or_else(|| args.data_dir.join("kubeconfig.yaml"));
    let host = if local.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        local.ip().to_string()
    };
    let scheme = if args.security.insecure_dev {
        "http"
    } else {
        "https"
    };
    let url = format!(
        "{scheme}://{}",
        SocketAddr::new(host.parse()?, local.port())
    );
    let pki = crate::security::load_pki(&args.data_dir, &args.security, &url)?;
    let mut security = crate::security::security(&args.data_dir, &args.security)?;
    security.kubelet = crate::security::kubelet_client(&pki)?;
    let server = ApiServer::new(store, config, security)
        .await
        .context("starting the API server")?;
    crate::security::bind_kubelet_api_admin(&server).await?;
    // The local node's kubelet reaches the API in-process as system:node:<name>.
    let node_client = Some(server.client(rkube_apiserver::authz::User {
        name: format!("system:node:{}", crate::security::node_name(&args.security)),
        groups: vec!["system:nodes".into(), "system:authenticated".into()],
        ..Default::default()
    }));
    if with_controllers {
        let handles = crate::controllers::start(
            &server,
            &pki,
            &args.controller,
            &args.controller_manager_metrics_bind_address,
        )
        .await?;
        eprintln!("rkube controllers started: {}", handles.len());
        if !args.disable_scheduler {
            let mut cfg = crate::scheduler::load_config(args.scheduler_config.as_ref())?;
            // one server, one scheduler: no election needed
            cfg.leader_election.leader_elect = false;
            crate::scheduler::start_in_server(&server, cfg, &args.scheduler_metrics_bind_address);
            eprintln!("rkube scheduler started");
        }
    }
    let serving = if args.security.insecure_dev {
        eprintln!(
            "WARNING: --insecure-dev: the API is served over plain HTTP with NO authentication \
             and NO authorization; anyone who reaches {local} is a cluster admin. Demo use only."
        );
        let serving = tokio::spawn(rkube_apiserver::serve(server, listener, shutdown_signal()));
        write_insecure_kubeconfig(&kubeconfig, &url)?;
        serving
    } else {
        let serving = tokio::spawn(rkube_apiserver::tls::serve_tls(
            server,
            listener,
            pki.tls.clone(),
            shutdown_signal(),
        ));
        crate::security::write_admin_kubeconfig(&kubeconfig, &pki, &url)?;
        serving
    };
    eprintln!(
        "rkube API server listening on {url}; kubeconfig at {}",
        kubeconfig.display()
    );
    let agent = if with_controllers && !args.disable_agent {
        let name = crate::security::node_name(&args.security);
        let cfg = crate::agent::config(
            &args.node,
            &name,
            &args.security.node_ip,
            &args.data_dir,
            &args.security.cluster_domain,
        )?;
        let mut cfg = cfg;
        cfg.serving = Some(crate::agent::serving_from_ca(&cfg, &pki.ca)?);
        let client = node_client.context("the local node's API client")?;
        Some(crate::agent::start(cfg, client).await?)
    } else {
        None
    };
    let result = serving
        .await
        .context("API server task")?
        .context("serving the API");
    if let Some(agent) = agent {
        eprintln!("rkube: stopping the local node (pods keep running)");
        agent.shutdown().await;
    }
    result
}

pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Writes an `--insecure-dev` kubeconfig (no credentials) atomically (a reader never sees
/// half a file), readable only by its owner.
fn write_insecure_kubeconfig(path: &Path, server: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    server: {server}\n  name: rkube\ncontexts:\n- context:\n    cluster: rkube\n    user: rkube-admin\n    namespace: default\n  name: rkube\ncurrent-context: rkube\npreferences: {{}}\nusers:\n- name: rkube-admin\n  user: {{}}\n"
    );
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
