//! `rkube server` with its local node (the default): the node registers and turns Ready, a
//! Deployment's pods are scheduled onto it and run in the supervised containerd from an image
//! loaded with `rkube image import`, and deleting the Deployment removes them from the node.

mod common;

// the busybox test image of the kubelet's tests
#[path = "../../kubelet/tests/common/images.rs"]
#[allow(dead_code)]
mod images;

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::Api;

fn prerequisites() -> bool {
    let missing: Vec<&str> = [
        "/usr/bin/containerd",
        "/usr/bin/runc",
        "/usr/lib/cni/bridge",
        "/bin/busybox",
    ]
    .into_iter()
    .filter(|p| !std::path::Path::new(p).exists())
    .collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "the local-node test needs {} (run scripts/setup.sh)",
        missing.join(", ")
    );
    if std::env::var_os("CI").is_some() {
        panic!("{msg}");
    }
    eprintln!("SKIPPED: {msg}");
    false
}

async fn wait<T, F, Fut>(what: &str, limit: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rkube_server_runs_a_deployment_on_its_own_node() {
    if !prerequisites() {
        return;
    }
    let n = std::process::id() % 1000;
    let node = format!("srvnode{n}");
    let bridge = format!("rks{n}");
    let cgroup = format!("/rkube-clitest/{node}");
    let port = common::free_port().to_string();
    let mut server = common::Server::start_with_node(&[
        "--node-name",
        &node,
        "--cni-bridge",
        &bridge,
        "--cgroup-root",
        &cgroup,
        "--kubelet-port",
        &port,
        "--scheduler-metrics-bind-address",
        "",
        "--controller-manager-metrics-bind-address",
        "",
        "--cluster-cidr",
        "10.241.0.0/16",
    ]);
    let kc = kube::config::Kubeconfig::read_from(&server.kubeconfig).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    let client = kube::Client::try_from(cfg).unwrap();
    let nodes: Api<Node> = Api::all(client.clone());
    wait("the local node Ready", Duration::from_secs(60), || {
        let nodes = nodes.clone();
        let node = node.clone();
        async move {
            let n = nodes.get(&node).await.ok()?;
            let cidr = n.spec.as_ref()?.pod_cidr.clone()?;
            assert!(cidr.starts_with("10.241."), "podCIDR {cidr}");
            n.status?
                .conditions?
                .into_iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
                .then_some(())
        }
    })
    .await;
    // the image, loaded with `rkube image import` into the node's containerd
    let archive = server.data_dir().join("busybox.tar");
    std::fs::write(&archive, images::busybox_archive(images::BUSYBOX)).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rkube"))
        .args(["image", "import", "--data-dir"])
        .arg(server.data_dir())
        .arg(&archive)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "rkube image import: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deploy: Deployment = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{
                        "name": "web", "image": images::BUSYBOX, "imagePullPolicy": "IfNotPresent",
                        "command": ["httpd", "-f", "-p", "8080", "-h", "/etc"],
                        "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
                    }],
                },
            },
        },
    }))
    .unwrap();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    // the namespace's default service account comes from its controller
    wait("the Deployment created", Duration::from_secs(30), || {
        let d = deployments.clone();
        let deploy = deploy.clone();
        async move { d.create(&PostParams::default(), &deploy).await.ok() }
    })
    .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let running = wait(
        "two web pods Running and Ready on the node",
        Duration::from_secs(60),
        || {
            let pods = pods.clone();
            let node = node.clone();
            async move {
                let list = pods
                    .list(&ListParams::default().labels("app=web"))
                    .await
                    .ok()?;
                let ready: Vec<Pod> = list
                    .items
                    .into_iter()
                    .filter(|p| {
                        p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node.as_str())
                    })
                    .filter(|p| {
                        p.status.as_ref().is_some_and(|s| {
                            s.phase.as_deref() == Some("Running")
                                && s.conditions
                                    .iter()
                                    .flatten()
                                    .any(|c| c.type_ == "Ready" && c.status == "True")
                        })
                    })
                    .collect();
                (ready.len() == 2).then_some(ready)
            }
        },
    )
    .await;
    for p in &running {
        let ip = p.status.as_ref().unwrap().pod_ip.clone().unwrap();
        assert!(ip.starts_with("10.241."), "pod IP {ip}");
    }
    let d = wait("the Deployment's status", Duration::from_secs(30), || {
        let d = deployments.clone();
        async move {
            let d = d.get("web").await.ok()?;
            (d.status.as_ref()?.ready_replicas == Some(2)).then_some(d)
        }
    })
    .await;
    assert_eq!(d.status.unwrap().available_replicas, Some(2));
    deployments
        .delete("web", &DeleteParams::foreground())
        .await
        .unwrap();
    wait("the web pods gone", Duration::from_secs(60), || {
        let pods = pods.clone();
        async move {
            pods.list(&ListParams::default().labels("app=web"))
                .await
                .ok()
                .filter(|l| l.items.is_empty())
                .map(|_| ())
        }
    })
    .await;
    // the kubelet removes their sandboxes once they are gone from the API
    let socket =
        rkube_kubelet::containerd::Layout::new(&server.data_dir().join("agent")).endpoint();
    let cri = rkube_kubelet::cri::Cri::connect(&socket).await.unwrap();
    wait(
        "the node's sandboxes removed",
        Duration::from_secs(30),
        || {
            let mut rt = cri.runtime.clone();
            async move {
                let list = rt
                    .list_pod_sandbox(k8s_cri::v1::ListPodSandboxRequest { filter: None })
                    .await
                    .ok()?;
                list.into_inner().items.is_empty().then_some(())
            }
        },
    )
    .await;
    server.stop();
    let _ = std::process::Command::new("ip")
        .args(["link", "del", &bridge])
        .output();
    for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let dir = h.path().join("rkube-clitest");
        let _ = std::process::Command::new("find")
            .arg(&dir)
            .args(["-depth", "-type", "d", "-delete"])
            .output();
    }
}
