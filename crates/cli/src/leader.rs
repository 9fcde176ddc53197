//! `--leader-elect` for the standalone components: the work runs only while this process holds
//! the component's Lease in kube-system; losing it ends the process with an error, as upstream
//! ("leaderelection lost"), so a supervisor restarts it as a follower.

use std::future::Future;

use std::time::Duration;

use anyhow::{bail, Context, Result};
use rkube_scheduler::KubeSchedulerConfiguration;

/// Whether and how to elect a leader: upstream's `leaderElection` settings.
#[derive(Debug, Clone)]
pub struct Election {
    pub enabled: bool,
    /// The Lease's namespace and name.
    pub namespace: String,
    pub name: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl Election {
    /// Upstream's defaults for `component`: a Lease of that name in kube-system, 15 s lease,
    /// 10 s renew deadline, 2 s retry period.
    pub fn defaults(component: &str, enabled: bool) -> Election {
        Election {
            enabled,
            namespace: "kube-system".into(),
            name: component.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }

    /// The scheduler configuration's `leaderElection`.
    pub fn from_scheduler(
        config: &KubeSchedulerConfiguration,
        component: &str,
    ) -> Result<Election> {
        let le = &config.leader_election;
        let (lease, renew, retry) = config.leader_durations()?;
        let or = |v: &str, d: &str| {
            if v.is_empty() {
                d.to_string()
            } else {
                v.to_string()
            }
        };
        Ok(Election {
            enabled: le.leader_elect,
            namespace: or(&le.resource_namespace, "kube-system"),
            name: or(&le.resource_name, component),
            lease_duration: lease,
            renew_deadline: renew,
            retry_period: retry,
        })
    }
}

/// Runs `work` (given a future that completes when it must stop) under leader election when
/// `election` asks for it, or directly otherwise.
pub async fn run_elected<F, Fut, E>(
    client: kube::Client,
    election: &Election,
    component: &str,
    shutdown: impl Future<Output = ()> + Send + 'static,
    work: F,
) -> Result<()>
where
    F: FnOnce(std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: std::error::Error + Send + Sync + 'static,
{
    if !election.enabled {
        return work(Box::pin(shutdown)).await.map_err(anyhow::Error::from);
    }
    let (namespace, name) = (&election.namespace, &election.name);
    let mut cfg = rkube_leader::Config::new(
        namespace,
        name,
        rkube_leader::default_identity().context("choosing a leader-election identity")?,
    );
    cfg.lease_duration = election.lease_duration;
    cfg.renew_deadline = election.renew_deadline;
    cfg.retry_period = election.retry_period;
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
