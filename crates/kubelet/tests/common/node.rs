//! A node for the kubelet server's tests: a private containerd with a CNI bridge, an API
//! server, the kubelet HTTPS server on a loopback port with a serving certificate from the
//! cluster CA, a Node object pointing at it (InternalIP 127.0.0.1, the server's port), and
//! pods made straight through CRI with the kubelet's labels, listed by a pod source the
//! test controls. `stop()` removes every sandbox, the bridge and the cgroups.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_cri::v1 as c;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Patch, PatchParams, PostParams};
use kube::Api;
use parking_lot::Mutex;
use rkube_kubelet::labels;
use rkube_kubelet::server::{PodSource, Server, ServerDeps};
use serde_json::json;

use super::apiserver::TestApi;
use super::images::BUSYBOX;
use super::runtime::Runtime;

/// The pods the kubelet server sees.
#[derive(Debug, Default)]
pub struct Pods(pub Mutex<Vec<Pod>>);

impl PodSource for Pods {
    fn pods(&self) -> Vec<Pod> {
        self.0.lock().clone()
    }
}

/// One container to run.
#[derive(Debug, Clone)]
pub struct Spec {
    pub name: &'static str,
    pub command: Vec<String>,
    pub stdin: bool,
}

pub fn sh(name: &'static str, script: &str) -> Spec {
    Spec {
        name,
        command: vec!["sh".into(), "-c".into(), script.into()],
        stdin: false,
    }
}

/// A pod running in the runtime.
#[derive(Debug, Clone)]
pub struct RunningPod {
    pub name: String,
    pub uid: String,
    pub sandbox: String,
    pub sandbox_config: c::PodSandboxConfig,
    /// container name → (id, attempt)
    pub containers: HashMap<String, (String, u32)>,
}

pub struct TestNode {
    pub rt: Option<Runtime>,
    pub api: TestApi,
    pub name: String,
    pub port: u16,
    pub pods: Arc<Pods>,
    pub server: Arc<Server>,
    bridge: String,
    cgroup_root: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

impl TestNode {
    pub async fn start() -> TestNode {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let rt = Runtime::start().await;
        let bridge = format!("rks{}x{n}", pid % 100_000);
        let subnet = format!("10.{}.{}.0/24", 100 + pid % 100, 10 + n);
        rkube_kubelet::cni::write(
            &rkube_kubelet::cni::CniConfig {
                conf_dir: rt.cni_conf_dir.clone(),
                bridge: bridge.clone(),
                ipam_dir: rt.dir.path().join("ipam"),
                mtu: 0,
            },
            &[subnet],
        )
        .expect("cni config");
        wait_for("the runtime's network", Duration::from_secs(20), || async {
            rt.cri
                .status()
                .await
                .ok()
                .and_then(|s| s.status)
                .is_some_and(|s| {
                    s.conditions
                        .iter()
                        .any(|c| c.r#type == "NetworkReady" && c.status)
                })
        })
        .await;
        let api = TestApi::start().await;
        let name = format!("kn{n}");
        let serving = api
            .ca
            .issue_serving(
                &name,
                std::slice::from_ref(&name),
                &["127.0.0.1".parse().expect("ip")],
            )
            .expect("kubelet serving cert");
        let tls = rkube_pki::server_tls_config(&serving, api.ca.cert_pem()).expect("tls");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let pods = Arc::new(Pods::default());
        let server = Server::new(ServerDeps {
            cri: rt.cri.clone(),
            client: api.node_client(&name),
            node_name: name.clone(),
            pods: pods.clone(),
            client_ca: Some(api.ca.cert_pem().to_string()),
        })
        .expect("kubelet server");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(rkube_kubelet::server::serve_with(
            server.clone(),
            listener,
            tls,
            async move {
                let _ = rx.await;
            },
        ));
        let node = TestNode {
            rt: Some(rt),
            api,
            name,
            port,
            pods,
            server,
            bridge,
            cgroup_root: format!("/rkube-srv-{pid}-{n}"),
            shutdown: Some(tx),
        };
        node.create_node(&node.name, port).await;
        node
    }

    /// A Node object whose kubelet listens on 127.0.0.1:`port`.
    pub async fn create_node(&self, name: &str, port: u16) {
        let nodes: Api<Node> = Api::all(self.api.admin.clone());
        nodes
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": name}})).expect("node"),
            )
            .await
            .expect("create node");
        nodes
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {
                    "addresses": [
                        {"type": "InternalIP", "address": "127.0.0.1"},
                        {"type": "Hostname", "address": name},
                    ],
                    "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
                }})),
            )
            .await
            .expect("node status");
    }

    pub fn cri(&self) -> &rkube_kubelet::cri::Cri {
        &self.rt.as_ref().expect("runtime").cri
    }

    fn log_root(&self) -> std::path::PathBuf {
        self.rt.as_ref().expect("runtime").dir.path().join("logs")
    }

    /// Creates the pod in the API (bound to this node), gives it to the kubelet server,
    /// and runs it through CRI.
    pub async fn run_pod(&self, name: &str, specs: &[Spec]) -> RunningPod {
        self.run_pod_on(&self.name, name, specs).await
    }

    /// [`TestNode::run_pod`] with the pod bound to another Node object (served by another
    /// kubelet server on the same runtime).
    pub async fn run_pod_on(&self, node: &str, name: &str, specs: &[Spec]) -> RunningPod {
        let pods: Api<Pod> = Api::namespaced(self.api.admin.clone(), "default");
        let containers: Vec<serde_json::Value> = specs
            .iter()
            .map(|s| json!({"name": s.name, "image": BUSYBOX, "stdin": s.stdin}))
            .collect();
        let pod = pods
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({
                    "metadata": {"name": name},
                    "spec": {"nodeName": node, "containers": containers},
                }))
                .expect("pod"),
            )
            .await
            .expect("create pod");
        let uid = pod.metadata.uid.clone().expect("uid");
        self.pods.0.lock().push(pod);
        let mut pod_labels = HashMap::new();
        pod_labels.insert(labels::POD_NAME.to_string(), name.to_string());
        pod_labels.insert(labels::POD_NAMESPACE.to_string(), "default".to_string());
        pod_labels.insert(labels::POD_UID.to_string(), uid.clone());
        let log_dir = self
            .log_root()
            .join(labels::pod_log_dir("default", name, &uid));
        let sandbox_config = c::PodSandboxConfig {
            metadata: Some(c::PodSandboxMetadata {
                name: name.into(),
                uid: uid.clone(),
                namespace: "default".into(),
                attempt: 0,
            }),
            hostname: name.into(),
            log_directory: log_dir.display().to_string(),
            labels: pod_labels.clone(),
            linux: Some(c::LinuxPodSandboxConfig {
                cgroup_parent: format!("{}/{name}", self.cgroup_root),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut runtime = self.cri().runtime.clone();
        let sandbox = runtime
            .run_pod_sandbox(c::RunPodSandboxRequest {
                config: Some(sandbox_config.clone()),
                runtime_handler: String::new(),
            })
            .await
            .expect("RunPodSandbox")
            .into_inner()
            .pod_sandbox_id;
        let mut running = RunningPod {
            name: name.into(),
            uid,
            sandbox,
            sandbox_config,
            containers: HashMap::new(),
        };
        for spec in specs {
            self.start_container(&mut running, spec, 0).await;
        }
        // What the kubelet would report (kubectl port-forward wants a Running pod).
        let statuses: Vec<serde_json::Value> = specs
            .iter()
            .map(|s| {
                json!({"name": s.name, "image": BUSYBOX, "imageID": "", "ready": true,
                       "restartCount": 0, "started": true,
                       "containerID": format!("containerd://{}", running.containers[s.name].0),
                       "state": {"running": {"startedAt": "2024-01-01T00:00:00Z"}}})
            })
            .collect();
        let pod = pods
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(
                    json!({"status": {"phase": "Running", "containerStatuses": statuses}}),
                ),
            )
            .await
            .expect("pod status");
        let mut known = self.pods.0.lock();
        known.retain(|p| p.metadata.name.as_deref() != Some(name));
        known.push(pod);
        drop(known);
        running
    }

    /// Creates and starts a container (attempt `attempt`) in a running pod.
    pub async fn start_container(&self, pod: &mut RunningPod, spec: &Spec, attempt: u32) {
        let mut container_labels = pod.sandbox_config.labels.clone();
        container_labels.insert(labels::CONTAINER_NAME.to_string(), spec.name.to_string());
        let mut runtime = self.cri().runtime.clone();
        let id = runtime
            .create_container(c::CreateContainerRequest {
                pod_sandbox_id: pod.sandbox.clone(),
                config: Some(c::ContainerConfig {
                    metadata: Some(c::ContainerMetadata {
                        name: spec.name.into(),
                        attempt,
                    }),
                    image: Some(c::ImageSpec {
                        image: BUSYBOX.into(),
                        ..Default::default()
                    }),
                    command: spec.command.clone(),
                    log_path: labels::container_log_path(spec.name, attempt),
                    labels: container_labels,
                    stdin: spec.stdin,
                    ..Default::default()
                }),
                sandbox_config: Some(pod.sandbox_config.clone()),
            })
            .await
            .expect("CreateContainer")
            .into_inner()
            .container_id;
        runtime
            .start_container(c::StartContainerRequest {
                container_id: id.clone(),
            })
            .await
            .expect("StartContainer");
        pod.containers.insert(spec.name.to_string(), (id, attempt));
    }

    /// Stops a container, as a crash would end it.
    pub async fn stop_container(&self, pod: &RunningPod, name: &str) {
        let (id, _) = pod.containers.get(name).expect("container").clone();
        self.cri()
            .runtime
            .clone()
            .stop_container(c::StopContainerRequest {
                container_id: id,
                timeout: 0,
            })
            .await
            .expect("StopContainer");
    }

    /// Puts a pod in the API only (no node, nothing running).
    pub async fn create_unbound_pod(&self, name: &str) {
        let pods: Api<Pod> = Api::namespaced(self.api.admin.clone(), "default");
        pods.create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": name},
                "spec": {"containers": [{"name": "c", "image": BUSYBOX}]},
            }))
            .expect("pod"),
        )
        .await
        .expect("create pod");
    }

    /// Stops the kubelet server, removes every sandbox, stops containerd, deletes the bridge
    /// and the cgroups.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(rt) = self.rt.take() {
            rt.stop().await;
        }
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.bridge])
            .status();
        rkube_kubelet::cgroups::remove(&self.cgroup_root).expect("removing the test cgroups");
        for dir in rkube_kubelet::cgroups::hierarchy_dirs(&self.cgroup_root) {
            assert!(!dir.exists(), "{} left behind", dir.display());
        }
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        // A failed test still takes its bridge and cgroups with it (the runtime's own
        // drop removes the sandboxes first).
        if self.rt.is_some() {
            self.rt.take();
            let _ = std::process::Command::new("ip")
                .args(["link", "del", &self.bridge])
                .status();
            let _ = rkube_kubelet::cgroups::remove(&self.cgroup_root);
        }
    }
}

/// Waits until `check` holds, polling; panics naming `what` at the deadline.
pub async fn wait_for<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if check().await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
