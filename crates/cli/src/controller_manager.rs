//! `rkube controller-manager`: the controllers on their own, reaching the API server through a
//! kubeconfig, as upstream's kube-controller-manager; and [`ControllerFlags`], the controller
//! flags it shares with `rkube server`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use rkube_controllers::{start_all, ControllerContext, Controllers, SharedInformers};

/// Which controllers run and how many reconciles each runs at once.
#[derive(Debug, Clone, Args)]
pub struct ControllerFlags {
    /// Controllers to run, as upstream's `--controllers`: `*` for the defaults, `foo` to add
    /// one, `-foo` to leave one out.
    #[arg(long, default_value = "*")]
    pub controllers: String,
    /// Deployments reconciled at once.
    #[arg(long)]
    pub concurrent_deployment_syncs: Option<u16>,
    /// ReplicaSets reconciled at once.
    #[arg(long)]
    pub concurrent_replicaset_syncs: Option<u16>,
    /// ReplicationControllers reconciled at once.
    #[arg(long)]
    pub concurrent_rc_syncs: Option<u16>,
    /// StatefulSets reconciled at once.
    #[arg(long)]
    pub concurrent_statefulset_syncs: Option<u16>,
    /// DaemonSets reconciled at once.
    #[arg(long)]
    pub concurrent_daemonset_syncs: Option<u16>,
    /// Jobs reconciled at once.
    #[arg(long)]
    pub concurrent_job_syncs: Option<u16>,
    /// CronJobs reconciled at once.
    #[arg(long)]
    pub concurrent_cron_job_syncs: Option<u16>,
    /// Services whose Endpoints are reconciled at once.
    #[arg(long)]
    pub concurrent_endpoint_syncs: Option<u16>,
    /// Services whose EndpointSlices are reconciled at once.
    #[arg(long)]
    pub concurrent_service_endpoint_syncs: Option<u16>,
    /// Namespaces deleted at once.
    #[arg(long)]
    pub concurrent_namespace_syncs: Option<u16>,
    /// Garbage-collector workers.
    #[arg(long)]
    pub concurrent_gc_syncs: Option<u16>,
    /// ResourceQuotas recounted at once.
    #[arg(long)]
    pub concurrent_resource_quota_syncs: Option<u16>,
    /// Service-account token secrets reconciled at once.
    #[arg(long)]
    pub concurrent_serviceaccount_token_syncs: Option<u16>,
    /// Finished Jobs checked for their TTL at once.
    #[arg(long)]
    pub concurrent_ttl_after_finished_syncs: Option<u16>,
}

impl ControllerFlags {
    /// The parsed `--controllers`.
    pub fn enabled(&self) -> Result<Controllers> {
        self.controllers
            .parse()
            .map_err(|e| anyhow::anyhow!("--controllers: {e}"))
    }

    /// Worker counts by controller name, for the flags given.
    pub fn workers(&self) -> HashMap<String, u16> {
        [
            ("deployment", self.concurrent_deployment_syncs),
            ("replicaset", self.concurrent_replicaset_syncs),
            ("replicationcontroller", self.concurrent_rc_syncs),
            ("statefulset", self.concurrent_statefulset_syncs),
            ("daemonset", self.concurrent_daemonset_syncs),
            ("job", self.concurrent_job_syncs),
            ("cronjob", self.concurrent_cron_job_syncs),
            ("endpoint", self.concurrent_endpoint_syncs),
            ("endpointslice", self.concurrent_service_endpoint_syncs),
            ("namespace", self.concurrent_namespace_syncs),
            ("garbage-collector", self.concurrent_gc_syncs),
            ("resourcequota", self.concurrent_resource_quota_syncs),
            (
                "serviceaccount-token",
                self.concurrent_serviceaccount_token_syncs,
            ),
            (
                "ttl-after-finished",
                self.concurrent_ttl_after_finished_syncs,
            ),
        ]
        .into_iter()
        .filter_map(|(name, n)| n.map(|n| (name.to_string(), n.max(1))))
        .collect()
    }
}

#[derive(Debug, Args)]
pub struct ControllerManagerArgs {
    /// The kubeconfig to reach the API server with.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Elect a leader through the Lease kube-system/kube-controller-manager so that only one of
    /// several controller managers acts (upstream's default: on).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,
    /// Address of the plain-HTTP `/metrics` and `/healthz` endpoint (empty: none).
    #[arg(long, default_value = "127.0.0.1:10252")]
    pub metrics_bind_address: String,
    /// The CA bundle published as `kube-root-ca.crt` in every namespace (default: the
    /// kubeconfig's CA).
    #[arg(long)]
    pub root_ca_file: Option<PathBuf>,
    /// The cluster CA certificate `csrsigning` signs with (with `--cluster-signing-key-file`);
    /// without them that controller does not start, as upstream's.
    #[arg(long, requires = "cluster_signing_key_file")]
    pub cluster_signing_cert_file: Option<PathBuf>,
    /// The cluster CA's private key (PEM).
    #[arg(long, requires = "cluster_signing_cert_file")]
    pub cluster_signing_key_file: Option<PathBuf>,
    #[command(flatten)]
    pub controller: ControllerFlags,
}

fn read(path: &PathBuf) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// `rkube controller-manager`.
pub async fn run(args: ControllerManagerArgs) -> Result<()> {
    let enabled = args.controller.enabled()?;
    let client = crate::kubeconfig::client(args.kubeconfig.as_deref()).await?;
    let ca_pem = match (&args.root_ca_file, &args.kubeconfig) {
        (Some(f), _) => read(f)?,
        (None, Some(kc)) => crate::kubeconfig::ca_pem(kc)?.unwrap_or_default(),
        (None, None) => String::new(),
    };
    let mut ctx = ControllerContext::new(ca_pem);
    if let (Some(cert), Some(key)) = (
        &args.cluster_signing_cert_file,
        &args.cluster_signing_key_file,
    ) {
        let ca = rkube_pki::Ca::from_pem(&read(cert)?, &read(key)?)
            .context("loading the cluster signing CA")?;
        ctx.csr_signer = Some(Arc::new(ca));
    }
    ctx.workers = args.controller.workers();
    ctx.informer_client = Some(client.clone());
    let mut registry = prometheus_client::registry::Registry::default();
    ctx.metrics.register(&mut registry);
    crate::metrics_http::spawn(&args.metrics_bind_address, registry)
        .await
        .with_context(|| format!("listening on {}", args.metrics_bind_address))?;
    let election = crate::leader::Election::defaults("kube-controller-manager", args.leader_elect);
    eprintln!("rkube controller-manager starting");
    crate::leader::run_elected(
        client.clone(),
        &election,
        "kube-controller-manager",
        crate::server::shutdown_signal(),
        move |stop| async move {
            // Informers live only while leading: a follower watches nothing.
            ctx.shared_informers = Some(SharedInformers::new(client.clone()));
            let handles = start_all(&|_| client.clone(), Arc::new(ctx), &enabled);
            eprintln!(
                "rkube controller-manager: {} controllers started",
                handles.len()
            );
            stop.await;
            for h in &handles {
                h.abort();
            }
            Ok::<(), std::convert::Infallible>(())
        },
    )
    .await
}
