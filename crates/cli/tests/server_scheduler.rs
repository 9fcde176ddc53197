//! The scheduler inside `rkube server`: a pod is bound to the one ready node, and the
//! scheduler's `/metrics` endpoint (`--scheduler-metrics-bind-address`) counts the attempt.

mod common;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

async fn client(
    server: &common::Server,
) -> Result<kube::Client, Box<dyn std::error::Error + Send + Sync>> {
    let kc = kube::config::Kubeconfig::read_from(&server.kubeconfig)?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
    Ok(kube::Client::try_from(cfg)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_schedules_a_pod_and_serves_the_scheduler_metrics() -> TestResult {
    let metrics_port = common::free_port();
    let addr = format!("127.0.0.1:{metrics_port}");
    let server = common::Server::start(&["--scheduler-metrics-bind-address", &addr]);
    let client = client(&server).await?;

    // A ready node without kubelet; the not-ready taint admission puts on new nodes is
    // removed, as no node lifecycle controller runs yet.
    let nodes: Api<Node> = Api::all(client.clone());
    let node: Node = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "n1"},
        "status": {
            "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }))?;
    nodes.create(&PostParams::default(), &node).await?;
    nodes
        .patch_status(
            "n1",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"status": {
                "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                "conditions": [{"type": "Ready", "status": "True"}],
            }})),
        )
        .await?;
    nodes
        .patch(
            "n1",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"taints": null}})),
        )
        .await?;

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "p1"},
        "spec": {"containers": [{"name": "c", "image": "busybox",
            "resources": {"requests": {"cpu": "100m"}}}]},
    }))?;
    pods.create(&PostParams::default(), &pod).await?;

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let p = pods.get("p1").await?;
        let bound = p.spec.as_ref().and_then(|s| s.node_name.clone());
        if bound.as_deref() == Some("n1") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "pod not bound to n1 within 30 s: {:?}",
            p.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let body = tokio::task::spawn_blocking(move || common::scrape(metrics_port)).await??;
    assert!(
        body.starts_with("HTTP/1.0 200") || body.starts_with("HTTP/1.1 200"),
        "{body}"
    );
    let scheduled = body
        .lines()
        .find(|l| {
            l.starts_with("scheduler_schedule_attempts_total") && l.contains("result=\"scheduled\"")
        })
        .unwrap_or_else(|| panic!("no scheduled attempts in /metrics:\n{body}"));
    let count: f64 = scheduled.rsplit(' ').next().unwrap_or_default().parse()?;
    assert!(count >= 1.0, "{scheduled}");
    Ok(())
}
