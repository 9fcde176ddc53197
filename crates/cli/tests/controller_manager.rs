//! `rkube controller-manager` against `rkube server`: the standalone manager takes the
//! kube-system/kube-controller-manager Lease, runs the controllers `--controllers` names (here
//! `serviceaccount`, which the server leaves out), and serves their queue metrics.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{Api, PostParams};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Kills the manager when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standalone_manager_leads_runs_its_controllers_and_serves_metrics() -> TestResult {
    let server_metrics = format!("127.0.0.1:{}", common::free_port());
    let server = common::Server::start(&[
        "--controllers",
        "*,-serviceaccount",
        "--controller-manager-metrics-bind-address",
        &server_metrics,
        "--scheduler-metrics-bind-address",
        "",
    ]);
    let metrics_port = common::free_port();
    let manager = Killed(
        Command::new(env!("CARGO_BIN_EXE_rkube"))
            .arg("controller-manager")
            .arg("--kubeconfig")
            .arg(&server.kubeconfig)
            .args([
                "--controllers",
                "serviceaccount",
                "--metrics-bind-address",
                &format!("127.0.0.1:{metrics_port}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let kc = kube::config::Kubeconfig::read_from(&server.kubeconfig)?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
    let client = kube::Client::try_from(cfg)?;

    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "cm-test"}}))?;
    namespaces.create(&PostParams::default(), &ns).await?;

    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), "cm-test");
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let sa = accounts.get_opt("default").await?;
        let lease = leases.get_opt("kube-controller-manager").await?;
        let holder = lease
            .and_then(|l| l.spec)
            .and_then(|s| s.holder_identity)
            .unwrap_or_default();
        if sa.is_some() && !holder.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "within 30 s: default account {}, lease holder {holder:?}",
            if sa.is_some() { "made" } else { "missing" }
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let body = tokio::task::spawn_blocking(move || common::scrape(metrics_port)).await??;
    let adds = body
        .lines()
        .find(|l| l.starts_with("workqueue_adds_total{name=\"serviceaccount\"}"))
        .unwrap_or_else(|| panic!("no serviceaccount queue in /metrics:\n{body}"));
    let n: f64 = adds.rsplit(' ').next().unwrap_or_default().parse()?;
    assert!(n >= 1.0, "{adds}");
    drop(manager);
    Ok(())
}
