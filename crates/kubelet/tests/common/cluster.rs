//! An in-process API server (embedded store, RBAC and the default admission plugins) with a
//! kubelet of its own: a supervised containerd in a temporary directory, the busybox test
//! image imported, the node registered as `system:node:<name>` with a podCIDR and a bridge
//! of its own. `stop()` deletes every pod, stops the kubelet and containerd and removes the
//! bridge and the node's cgroups.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::Api;
use rkube_kubelet::kubelet::{self, Config, Running};

static NEXT: AtomicU32 = AtomicU32::new(0);

pub struct Cluster {
    pub admin: kube::Client,
    pub server: Arc<rkube_apiserver::ApiServer>,
    pub kubelet: Option<Running>,
    pub config: Config,
    pub node: String,
    pub pod_cidr: String,
    pub dir: tempfile::TempDir,
    _api: super::apiserver_vol::VolApi,
}

/// A user for `name` in `groups` (plus system:authenticated).
pub fn user(name: &str, groups: &[&str]) -> rkube_apiserver::authz::User {
    let mut g: Vec<String> = groups.iter().map(|s| s.to_string()).collect();
    g.push("system:authenticated".into());
    rkube_apiserver::authz::User {
        name: name.into(),
        groups: g,
        ..Default::default()
    }
}

impl Cluster {
    pub async fn start() -> Cluster {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
            )
            .with_test_writer()
            .try_init();
        let dir = tempfile::Builder::new()
            .prefix("rkk")
            .tempdir_in("/tmp")
            .expect("tempdir");
        // the API server with service-account tokens, and the namespace's default service
        // account and kube-root-ca.crt, which every pod's kube-api-access volume needs
        let api = super::apiserver_vol::VolApi::with_service_accounts().await;
        api.namespace("default").await;
        let (server, admin) = (api.server.clone(), api.admin.clone());
        let n = (std::process::id() % 100) * 20 + NEXT.fetch_add(1, Ordering::SeqCst) % 20;
        let node = format!("kt{n}");
        let pod_cidr = format!("10.{}.{}.0/24", 200 + n / 250, n % 250);
        // the default service account exists before pods are created
        let mut config = Config::new(&node, vec!["127.0.0.1".parse().expect("ip")], dir.path());
        config.cni_bridge = format!("rkb{n}");
        config.cgroup_root = format!("/rkube-test/{node}");
        config.volume_refresh_period = Duration::from_secs(1);
        let kubelet_client = server.client(user(&format!("system:node:{node}"), &["system:nodes"]));
        // the node gets its podCIDR as soon as it registers (the node-ipam controller's job)
        let admin2 = admin.clone();
        let (node2, cidr2) = (node.clone(), pod_cidr.clone());
        let assign = tokio::spawn(async move {
            let api: Api<Node> = Api::all(admin2);
            loop {
                if let Ok(Some(_)) = api.get_opt(&node2).await {
                    let patch =
                        serde_json::json!({"spec": {"podCIDR": cidr2, "podCIDRs": [cidr2]}});
                    if api
                        .patch(&node2, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                        .is_ok()
                    {
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        let running = kubelet::start(config.clone(), kubelet_client)
            .await
            .expect("starting the kubelet");
        assign.await.expect("assigning the podCIDR");
        let layout = rkube_kubelet::containerd::Layout::new(&config.agent_dir);
        let busybox = super::images::busybox_archive(super::images::BUSYBOX);
        rkube_kubelet::import::import_bytes(&layout.socket, "busybox", &busybox)
            .await
            .expect("importing busybox");
        let c = Cluster {
            admin,
            server,
            kubelet: Some(running),
            config,
            node,
            pod_cidr,
            dir,
            _api: api,
        };
        // ready once the network is (the conflist is written and containerd has read it)
        c.wait("node Ready", Duration::from_secs(30), || async {
            let n = Api::<Node>::all(c.admin.clone()).get(&c.node).await.ok()?;
            let ready = n
                .status?
                .conditions?
                .into_iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            ready.then_some(())
        })
        .await;
        c
    }

    /// Stops the kubelet (and its containerd; containers keep running under their shims) and
    /// starts it again with the same config.
    pub async fn restart_kubelet(&mut self) {
        if let Some(k) = self.kubelet.take() {
            k.shutdown().await;
        }
        let client = self.server.client(user(
            &format!("system:node:{}", self.node),
            &["system:nodes"],
        ));
        self.kubelet = Some(
            kubelet::start(self.config.clone(), client)
                .await
                .expect("restarting the kubelet"),
        );
    }

    pub fn pods(&self, ns: &str) -> Api<Pod> {
        Api::namespaced(self.admin.clone(), ns)
    }

    /// Polls `check` every 20 ms until it yields a value or `limit` passes.
    pub async fn wait<T, F, Fut>(&self, what: &str, limit: Duration, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(v) = check().await {
                return v;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!("timed out after {limit:?} waiting for {what}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Deletes every pod (waiting until the kubelet removed them), then stops everything.
    pub async fn stop(mut self) {
        let pods: Api<Pod> = Api::all(self.admin.clone());
        if let Ok(list) = pods.list(&ListParams::default()).await {
            for p in list.items {
                let api = self.pods(p.metadata.namespace.as_deref().unwrap_or("default"));
                let _ = api
                    .delete(
                        p.metadata.name.as_deref().unwrap_or(""),
                        &DeleteParams::default().grace_period(1),
                    )
                    .await;
            }
        }
        let admin = self.admin.clone();
        self.wait("every pod gone", Duration::from_secs(30), || {
            let pods: Api<Pod> = Api::all(admin.clone());
            async move {
                pods.list(&ListParams::default())
                    .await
                    .ok()
                    .filter(|l| l.items.is_empty())
                    .map(|_| ())
            }
        })
        .await;
        // the workers' last cleanups
        let ctx = self.kubelet.as_ref().map(|k| k.ctx.clone());
        if let Some(ctx) = ctx {
            let node = self.node.clone();
            self.wait("the runtime empty", Duration::from_secs(10), || {
                let ctx = ctx.clone();
                let node = node.clone();
                async move {
                    let (s, c) = ctx.runtime.list_all(&node).await.ok()?;
                    (s.is_empty() && c.is_empty()).then_some(())
                }
            })
            .await;
        }
        self.teardown().await;
    }

    async fn teardown(&mut self) {
        if let Some(k) = self.kubelet.take() {
            k.shutdown().await;
        }
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.config.cni_bridge])
            .output();
        let _ = rkube_kubelet::cgroups::remove(&self.config.cgroup_root);
        // the shared parent goes with the last test that used it
        for dir in rkube_kubelet::cgroups::hierarchy_dirs("/rkube-test") {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

impl Drop for Cluster {
    /// A failed test still removes everything: its pods' sandboxes (through a fresh CRI
    /// connection: the test's runtime may be unwinding), containerd, the processes left in
    /// the node's cgroups, the mounts under its directory, the bridge and the cgroups.
    fn drop(&mut self) {
        let Some(k) = self.kubelet.take() else {
            return;
        };
        let socket = rkube_kubelet::containerd::Layout::new(&self.config.agent_dir).endpoint();
        let bridge = self.config.cni_bridge.clone();
        let root = self.config.cgroup_root.clone();
        let dir = self.dir.path().to_path_buf();
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Runtime::new() {
                rt.block_on(async move {
                    if let Ok(cri) = rkube_kubelet::cri::Cri::connect(&socket).await {
                        let runtime = rkube_kubelet::pod::ops::Runtime::new(cri);
                        let mut client = runtime.cri.runtime.clone();
                        if let Ok(list) = client
                            .list_pod_sandbox(k8s_cri::v1::ListPodSandboxRequest { filter: None })
                            .await
                        {
                            for sb in list.into_inner().items {
                                let _ = runtime.stop_sandbox(&sb.id).await;
                                let _ = runtime.remove_sandbox(&sb.id).await;
                            }
                        }
                    }
                    k.shutdown().await;
                });
            }
            force_cleanup(&dir, &bridge, &root);
        })
        .join();
    }
}

/// Kills what is left in the node's cgroups, unmounts everything below `dir`, and removes
/// the bridge and the cgroups.
pub fn force_cleanup(dir: &std::path::Path, bridge: &str, cgroup_root: &str) {
    for d in rkube_kubelet::cgroups::hierarchy_dirs(cgroup_root) {
        for entry in walk(&d) {
            if let Ok(procs) = std::fs::read_to_string(entry.join("cgroup.procs")) {
                for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
    }
    let prefix = format!("{}/", dir.display());
    let mut mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|m| m.starts_with(&prefix))
        .collect();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in mounts {
        let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
    }
    let _ = std::process::Command::new("ip")
        .args(["link", "del", bridge])
        .output();
    std::thread::sleep(Duration::from_millis(200));
    let _ = rkube_kubelet::cgroups::remove(cgroup_root);
}

/// The directory and every directory below it.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(walk(&e.path()));
            }
        }
    }
    out
}
