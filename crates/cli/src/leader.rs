//! `--leader-elect` for the standalone components: the work runs only while this process holds
//! the component's Lease in kube-system; losing it ends the process with an error, as upstream
//! ("leaderelection lost"), so a supervisor restarts it as a follower.

use std::future::Future;

use anyhow::{bail, Context, Result};
use rkube_scheduler::KubeSchedulerConfiguration;

/// Runs `work` (given a future that completes when it must stop) under leader election when
/// the configuration asks for it, or directly otherwise.
pub async fn run_elected<F, Fut, E>(
    client: kube::Client,
    config: &KubeSchedulerConfiguration,
    component: &str,
    shutdown: impl Future<Output = ()> + Send + 'static,
    work: F,
) -> Result<()>
where
    F: FnOnce(std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: std::error::Error + Send + Sync + 'static,
{
    let le = &config.leader_election;
    if !le.leader_elect {
        return work(Box::pin(shutdown)).await.map_err(anyhow::Error::from);
    }
    let (lease, renew, retry) = config.leader_durations()?;
    let namespace = if le.resource_namespace.is_empty() {
        "kube-system"
    } else {
        &le.resource_namespace
    };
    let name = if le.resource_name.is_empty() {
        component
    } else {
        &le.resource_name
    };
    let mut cfg = rkube_leader::Config::new(
        namespace,
        name,
        rkube_leader::default_identity().context("choosing a leader-election identity")?,
    );
    cfg.lease_duration = lease;
    cfg.renew_deadline = renew;
    cfg.retry_period = retry;
    cfg.release_on_cancel = true;
    eprintln!("{component}: waiting to acquire lease {namespace}/{name}");
    let res = rkube_leader::run(client, cfg, shutdown, |mut leadership| async move {
        eprintln!("{component}: acquired the lease, starting");
        work(Box::pin(async move { leadership.stopped().await })).await
    })
    .await;
    match res {
        Ok(None) => Ok(()),
        Ok(Some(r)) => r.map_err(anyhow::Error::from),
        Err(e) => bail!("{component}: leaderelection lost: {e}"),
    }
}
