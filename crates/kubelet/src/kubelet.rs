//! The kubelet put together: the runtime (a supervised containerd or an external CRI
//! endpoint), node registration, the pod watch, the relist that notices container changes,
//! one worker per pod, the node status and the Lease.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod};
use kube::runtime::watcher;
use kube::Api;
use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;

use crate::cni::{self, CniConfig};
use crate::containerd::{self, Containerd, CriSettings, Layout};
use crate::cri::{Cri, CriError};
use crate::node::{self, Health, Machine, NodeConfig};
use crate::pod::ops::Runtime;
use crate::pod::spec::NodeSettings;
use crate::pod::worker::{Ctx, Worker};

/// How the kubelet is set up.
#[derive(Debug, Clone)]
pub struct Config {
    pub node: NodeConfig,
    /// The node's directory (`<data-dir>/agent`): containerd, CNI config, pods, logs.
    pub agent_dir: PathBuf,
    /// The cgroup the node's pods go under (its `kubepods` tree).
    pub cgroup_root: String,
    pub cluster_dns: Vec<IpAddr>,
    pub cluster_domain: String,
    /// The pod network bridge's name.
    pub cni_bridge: String,
    pub cni_bin_dir: PathBuf,
    /// An external CRI endpoint; `None` runs a supervised containerd.
    pub runtime_endpoint: Option<String>,
    /// How often the runtime is listed to notice container changes.
    pub relist_period: Duration,
    /// How often configMap, secret, downwardAPI and projected volumes are brought up to date.
    pub volume_refresh_period: Duration,
    /// The directory of static pod manifests (`None`: no static pods).
    pub static_pod_path: Option<PathBuf>,
    /// The kubelet's HTTPS server (logs, exec, attach, port-forward, stats), on
    /// `node.kubelet_port` (0: any free port, registered as the node's kubelet endpoint).
    pub serving: Option<Serving>,
}

/// The kubelet server's TLS: its serving certificate (the API server verifies it against the
/// cluster CA) and the CA client certificates must chain to.
#[derive(Clone)]
pub struct Serving {
    pub tls: Arc<rustls::ServerConfig>,
    pub client_ca_pem: Option<String>,
    pub bind: IpAddr,
}

impl std::fmt::Debug for Serving {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Serving")
            .field("bind", &self.bind)
            .finish_non_exhaustive()
    }
}

/// The server's view of the node's pods.
#[derive(Debug)]
struct CtxPods(Arc<Ctx>);

impl crate::server::PodSource for CtxPods {
    fn pods(&self) -> Vec<Pod> {
        self.0.pods.read().values().map(|p| (**p).clone()).collect()
    }
}

impl Config {
    /// Defaults for a node named `name` with address `ip` under `data_dir`.
    pub fn new(name: &str, ips: Vec<IpAddr>, data_dir: &std::path::Path) -> Config {
        Config {
            node: NodeConfig {
                name: name.to_string(),
                hostname: name.to_string(),
                ips,
                kubelet_port: 10250,
                max_pods: node::MAX_PODS,
                reserved_memory: 100 << 20,
                ..Default::default()
            },
            agent_dir: data_dir.join("agent"),
            cgroup_root: format!("/rkube/{name}"),
            cluster_dns: Vec::new(),
            cluster_domain: "cluster.local".into(),
            cni_bridge: "rkube0".into(),
            cni_bin_dir: "/usr/lib/cni".into(),
            runtime_endpoint: None,
            relist_period: Duration::from_millis(100),
            volume_refresh_period: Duration::from_secs(10),
            static_pod_path: Some(data_dir.join("agent").join("pod-manifests")),
            serving: None,
        }
    }

    pub fn cni(&self) -> CniConfig {
        CniConfig {
            conf_dir: self.agent_dir.join("cni").join("net.d"),
            bridge: self.cni_bridge.clone(),
            ipam_dir: self.agent_dir.join("cni").join("ipam"),
            mtu: 0,
        }
    }
}

/// Why the kubelet could not start.
#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    #[error(transparent)]
    Containerd(#[from] containerd::ContainerdError),
    #[error(transparent)]
    Cri(#[from] CriError),
    #[error("importing the sandbox image: {0}")]
    Import(#[from] crate::import::ImportError),
    #[error("registering node {node}: {source}")]
    Register {
        node: String,
        #[source]
        source: kube::Error,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A running kubelet.
#[derive(Debug)]
pub struct Running {
    pub ctx: Arc<Ctx>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    containerd: Option<Containerd>,
}

impl Running {
    /// Stops the kubelet. Pods keep running (their containers belong to the runtime's shims);
    /// a kubelet started again adopts them.
    pub async fn shutdown(mut self) {
        for t in &self.tasks {
            t.abort();
        }
        if let Some(c) = self.containerd.take() {
            c.stop().await;
        }
    }
}

/// The runtime: the supervised containerd (with the sandbox image imported) or the external
/// endpoint.
async fn runtime(cfg: &Config) -> Result<(Option<Containerd>, Cri), KubeletError> {
    if let Some(endpoint) = &cfg.runtime_endpoint {
        return Ok((None, Cri::connect(endpoint).await?));
    }
    let layout = Layout::new(&cfg.agent_dir);
    let settings = CriSettings {
        sandbox_image: crate::pause::image_name(),
        cni_bin_dir: cfg.cni_bin_dir.clone(),
        cni_conf_dir: cfg.cni().conf_dir,
    };
    let (containerd, cri) = Containerd::start(layout.clone(), &settings).await?;
    let present = cri
        .images
        .clone()
        .image_status(k8s_cri::v1::ImageStatusRequest {
            image: Some(k8s_cri::v1::ImageSpec {
                image: crate::pause::image_name(),
                ..Default::default()
            }),
            verbose: false,
        })
        .await
        .ok()
        .and_then(|r| r.into_inner().image)
        .is_some();
    if !present {
        let archive = crate::pause::image_archive()?;
        crate::import::import_bytes(&layout.socket, "pause", &archive).await?;
    }
    Ok((Some(containerd), cri))
}

fn host_search() -> Vec<String> {
    std::fs::read_to_string("/etc/resolv.conf")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("search "))
        .flat_map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .collect()
}

/// Starts the kubelet with the given API client (its identity must be `system:node:<name>`
/// for the Node authorizer, or an admin).
pub async fn start(cfg: Config, client: kube::Client) -> Result<Running, KubeletError> {
    let mut cfg = cfg;
    std::fs::create_dir_all(&cfg.agent_dir)?;
    // the server's port is known before the node registers it
    let listener = match &cfg.serving {
        Some(s) => {
            let l = tokio::net::TcpListener::bind((s.bind, cfg.node.kubelet_port)).await?;
            cfg.node.kubelet_port = l.local_addr()?.port();
            Some(l)
        }
        None => None,
    };
    let (containerd, cri) = runtime(&cfg).await?;
    let version = cri.version().await?;
    let runtime_name = version.runtime_name.clone();
    let machine = Machine::read(
        &cfg.agent_dir,
        format!("{}://{}", version.runtime_name, version.runtime_version),
    );
    let node_obj = node::build_node(&cfg.node, &machine);
    let registered = register_with_retry(&client, &node_obj).await?;
    let allocatable: BTreeMap<String, String> = registered
        .status
        .as_ref()
        .and_then(|s| s.allocatable.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    let pods_dir = cfg.agent_dir.join("pods");
    let log_root = cfg.agent_dir.join("logs").join("pods");
    std::fs::create_dir_all(&pods_dir)?;
    std::fs::create_dir_all(&log_root)?;
    let recorder = Arc::new(crate::events::Recorder::new(client.clone(), &cfg.node.name));
    let sink_recorder = recorder.clone();
    let images =
        crate::images::ImageManager::new(cri.clone(), client.clone()).with_events(Arc::new(
            move |pod: &Pod,
                  c: &k8s_openapi::api::core::v1::Container,
                  ev: crate::images::ImageEvent| {
                let recorder = sink_recorder.clone();
                let object = crate::pod::worker::container_reference(pod, &c.name);
                tokio::spawn(async move {
                    recorder
                        .record(&object, ev.type_ == "Warning", ev.reason, ev.message)
                        .await;
                });
            },
        ));
    let workers = Arc::new(Workers::default());
    let probe_workers = workers.clone();
    let probes = Arc::new(crate::probes::ProbeManager::new(
        cri.clone(),
        Arc::new(move |uid: &str| probe_workers.notify(uid)),
    ));
    let volumes = Arc::new(crate::volumes::VolumeManager::new(
        client.clone(),
        pods_dir.clone(),
        cfg.node.name.clone(),
    ));
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        runtime: Runtime::new(cri.clone()),
        node: NodeSettings {
            node_name: cfg.node.name.clone(),
            log_root: log_root.display().to_string(),
            cluster_dns: cfg.cluster_dns.iter().map(|i| i.to_string()).collect(),
            cluster_domain: cfg.cluster_domain.clone(),
            host_search: host_search(),
            memory_capacity: machine.memory,
        },
        host_ips: cfg.node.ips.iter().map(|i| i.to_string()).collect(),
        runtime_name,
        cgroup_root: cfg.cgroup_root.clone(),
        pods_dir,
        pods: RwLock::new(HashMap::new()),
        recorder,
        images,
        probes,
        volumes: volumes.clone(),
        node_allocatable: RwLock::new(allocatable),
        mirrors: RwLock::new(HashMap::new()),
    });
    let synced = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let running_pods = {
        let ctx = ctx.clone();
        Arc::new(move || {
            ctx.pods
                .read()
                .values()
                .map(|p| (**p).clone())
                .collect::<Vec<Pod>>()
        })
    };
    let events_live = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = vec![
        volumes.spawn_refresher(running_pods, cfg.volume_refresh_period),
        tokio::spawn(watch_pods(ctx.clone(), workers.clone(), synced.clone())),
        tokio::spawn(runtime_events(
            ctx.clone(),
            workers.clone(),
            events_live.clone(),
        )),
        tokio::spawn(relist(
            ctx.clone(),
            workers.clone(),
            synced.clone(),
            cfg.relist_period,
            events_live,
        )),
        tokio::spawn(node_status(ctx.clone(), cfg.clone(), registered.clone())),
        tokio::spawn(lease_loop(client, registered.clone())),
    ];
    if let (Some(serving), Some(listener)) = (cfg.serving.clone(), listener) {
        let deps = crate::server::ServerDeps {
            cri: cri.clone(),
            client: ctx.client.clone(),
            node_name: cfg.node.name.clone(),
            pods: Arc::new(CtxPods(ctx.clone())),
            client_ca: serving.client_ca_pem.clone(),
        };
        tasks.push(tokio::spawn(async move {
            if let Err(e) =
                crate::server::serve(listener, serving.tls, deps, std::future::pending()).await
            {
                tracing::error!(error = %e, "the kubelet server stopped");
            }
        }));
        tasks.push(tokio::spawn(rotate_logs(
            cri.clone(),
            cfg.node.name.clone(),
        )));
    }
    if let Some(dir) = cfg.static_pod_path.clone() {
        tasks.push(tokio::spawn(static_source(
            ctx.clone(),
            workers.clone(),
            dir,
            registered,
            synced,
        )));
    }
    Ok(Running {
        ctx,
        tasks,
        containerd,
    })
}

async fn register_with_retry(client: &kube::Client, node: &Node) -> Result<Node, KubeletError> {
    let mut delay = Duration::from_millis(100);
    let mut tries = 0;
    loop {
        match node::register(client, node).await {
            Ok(n) => return Ok(n),
            Err(e) if tries < 50 => {
                tracing::warn!(error = %e, "registering the node; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
                tries += 1;
            }
            Err(source) => {
                return Err(KubeletError::Register {
                    node: node.metadata.name.clone().unwrap_or_default(),
                    source,
                })
            }
        }
    }
}

/// The pod workers, by uid.
#[derive(Debug, Default)]
struct Workers {
    wakes: Mutex<HashMap<String, Arc<Notify>>>,
}

impl Workers {
    /// Wakes the pod's worker if it has one.
    fn notify(&self, uid: &str) {
        if let Some(n) = self.wakes.lock().get(uid) {
            n.notify_one();
        }
    }

    /// Wakes the pod's worker, starting one if there is none.
    fn wake(self: &Arc<Self>, ctx: &Arc<Ctx>, uid: &str) {
        let mut wakes = self.wakes.lock();
        if let Some(n) = wakes.get(uid) {
            n.notify_one();
            return;
        }
        let notify = Arc::new(Notify::new());
        wakes.insert(uid.to_string(), notify.clone());
        let worker = Worker::new(uid.to_string(), ctx.clone(), notify);
        let me = self.clone();
        let uid = uid.to_string();
        tokio::spawn(async move {
            worker.run().await;
            me.wakes.lock().remove(&uid);
        });
    }
}

/// Watches the pods bound to this node into the shared map and wakes their workers.
async fn watch_pods(
    ctx: Arc<Ctx>,
    workers: Arc<Workers>,
    synced: Arc<std::sync::atomic::AtomicBool>,
) {
    let api: Api<Pod> = Api::all(ctx.client.clone());
    let cfg = watcher::Config::default().fields(&format!("spec.nodeName={}", ctx.node.node_name));
    let mut stream = watcher::watcher(api, cfg).boxed();
    let mut listing: HashSet<String> = HashSet::new();
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(watcher::Event::Apply(pod)) | Ok(watcher::Event::InitApply(pod)) => {
                // a static pod's mirror only shows it; the kubelet runs it from its manifest
                if let Some(hash) = mirror_hash(&pod) {
                    ctx.mirrors.write().insert(hash.clone(), Arc::new(pod));
                    workers.notify(&hash);
                    continue;
                }
                let Some(uid) = pod.metadata.uid.clone() else {
                    continue;
                };
                listing.insert(uid.clone());
                ctx.pods.write().insert(uid.clone(), Arc::new(pod));
                workers.wake(&ctx, &uid);
            }
            Ok(watcher::Event::Delete(pod)) => {
                if let Some(hash) = mirror_hash(&pod) {
                    ctx.mirrors.write().remove(&hash);
                    continue;
                }
                let Some(uid) = pod.metadata.uid.clone() else {
                    continue;
                };
                ctx.pods.write().remove(&uid);
                workers.wake(&ctx, &uid);
            }
            Ok(watcher::Event::Init) => listing.clear(),
            Ok(watcher::Event::InitDone) => {
                // pods deleted while the watch was down
                let gone: Vec<String> = ctx
                    .pods
                    .read()
                    .iter()
                    .filter(|(u, p)| !listing.contains(*u) && !crate::static_pods::is_static(p))
                    .map(|(u, _)| u.clone())
                    .collect();
                for uid in gone {
                    ctx.pods.write().remove(&uid);
                    workers.wake(&ctx, &uid);
                }
                synced.store(true, std::sync::atomic::Ordering::SeqCst);
            }
            Err(e) => {
                tracing::debug!(error = %e, "pod watch");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// The static pod uid a mirror pod shows.
fn mirror_hash(pod: &Pod) -> Option<String> {
    pod.metadata
        .annotations
        .as_ref()?
        .get(crate::static_pods::MIRROR_ANNOTATION)
        .cloned()
}

/// Wakes pods' workers from the runtime's CRI event stream (GetContainerEvents: containerd 1.7
/// and later, CRI-O). Returns when the runtime has no such stream (containerd 1.6 answers
/// Unimplemented) or it ends; the relist then keeps noticing changes on its own.
async fn runtime_events(
    ctx: Arc<Ctx>,
    workers: Arc<Workers>,
    events_live: Arc<std::sync::atomic::AtomicBool>,
) {
    let stream = ctx
        .runtime
        .cri
        .runtime
        .clone()
        .get_container_events(k8s_cri::v1::GetEventsRequest {})
        .await;
    let mut stream = match stream {
        Ok(s) => s.into_inner(),
        Err(status) => {
            tracing::info!(code = ?status.code(), "the runtime serves no CRI event stream; relisting every 100 ms");
            return;
        }
    };
    events_live.store(true, std::sync::atomic::Ordering::SeqCst);
    while let Ok(Some(ev)) = stream.message().await {
        let uid = ev
            .pod_sandbox_status
            .and_then(|s| s.metadata)
            .map(|m| m.uid)
            .unwrap_or_default();
        if !uid.is_empty() && ctx.pods.read().contains_key(&uid) {
            workers.notify(&uid);
        }
    }
    events_live.store(false, std::sync::atomic::Ordering::SeqCst);
}

/// Lists the runtime periodically and wakes the workers of pods whose sandboxes or
/// containers changed; pods the runtime has and the API does not get a worker that removes
/// them.
async fn relist(
    ctx: Arc<Ctx>,
    workers: Arc<Workers>,
    synced: Arc<std::sync::atomic::AtomicBool>,
    period: Duration,
    events_live: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut last: HashMap<String, Vec<(String, i32)>> = HashMap::new();
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks: u64 = 0;
    loop {
        tick.tick().await;
        ticks += 1;
        // with a live event stream the relist is only a safety net (once a second, as
        // upstream's evented PLEG keeps one)
        if events_live.load(std::sync::atomic::Ordering::SeqCst)
            && ticks
                % (Duration::from_secs(1).as_millis() / period.as_millis().max(1)).max(1) as u64
                != 0
        {
            continue;
        }
        let Ok((sandboxes, containers)) = ctx.runtime.list_all(&ctx.node.node_name).await else {
            continue;
        };
        let mut now: HashMap<String, Vec<(String, i32)>> = HashMap::new();
        let mut live = HashSet::new();
        for sb in &sandboxes {
            live.insert(sb.id.clone());
            if let Some(uid) = sb.labels.get(crate::labels::POD_UID) {
                now.entry(uid.clone())
                    .or_default()
                    .push((sb.id.clone(), sb.state));
            }
        }
        for c in &containers {
            live.insert(c.id.clone());
            if let Some(uid) = c.labels.get(crate::labels::POD_UID) {
                now.entry(uid.clone())
                    .or_default()
                    .push((c.id.clone(), c.state + 10));
            }
        }
        for v in now.values_mut() {
            v.sort();
        }
        ctx.runtime.retain(&live);
        let is_synced = synced.load(std::sync::atomic::Ordering::SeqCst);
        for (uid, state) in &now {
            let changed = last.get(uid) != Some(state);
            let known = ctx.pods.read().contains_key(uid);
            if changed && (known || is_synced) {
                workers.wake(&ctx, uid);
            }
        }
        for uid in last.keys() {
            if !now.contains_key(uid) && ctx.pods.read().contains_key(uid) {
                workers.wake(&ctx, uid);
            }
        }
        last = now;
    }
}

/// Keeps the node's conditions and the pod network's CNI config up to date, watching the
/// Node for its podCIDR.
async fn node_status(ctx: Arc<Ctx>, cfg: Config, registered: Node) {
    let api: Api<Node> = Api::all(ctx.client.clone());
    let wcfg = watcher::Config::default().fields(&format!("metadata.name={}", cfg.node.name));
    let mut stream = watcher::watcher(api, wcfg).boxed();
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    let mut node = registered;
    let mut reported: Vec<NodeCondition> = Vec::new();
    let mut last_report = tokio::time::Instant::now();
    let cni_cfg = cfg.cni();
    loop {
        tokio::select! {
            ev = stream.next() => match ev {
                Some(Ok(watcher::Event::Apply(n))) | Some(Ok(watcher::Event::InitApply(n))) => node = n,
                Some(Ok(_)) => continue,
                Some(Err(_)) => { tokio::time::sleep(Duration::from_millis(500)).await; continue }
                None => return,
            },
            _ = tick.tick() => {}
        }
        let cidrs: Vec<String> = node
            .spec
            .as_ref()
            .and_then(|s| {
                s.pod_cidrs
                    .clone()
                    .or_else(|| s.pod_cidr.clone().map(|c| vec![c]))
            })
            .unwrap_or_default();
        let configured = !cidrs.is_empty();
        if configured {
            if let Err(e) = cni::write(&cni_cfg, &cidrs) {
                tracing::warn!(error = %e, "writing the CNI config");
            }
        }
        let health = match ctx.runtime.cri.status().await {
            Ok(st) => {
                let conds = st.status.map(|s| s.conditions).unwrap_or_default();
                let get = |t: &str| conds.iter().find(|c| c.r#type == t);
                Health {
                    runtime_ready: get("RuntimeReady").is_some_and(|c| c.status),
                    network_problem: match get("NetworkReady") {
                        Some(c) if c.status => None,
                        Some(c) => Some(format!(
                            "NetworkReady=false reason:{} message:{}",
                            c.reason, c.message
                        )),
                        None => Some("NetworkReady condition missing".into()),
                    },
                    pod_network_configured: configured,
                }
            }
            Err(_) => Health::default(),
        };
        let old = node
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        let conds = node::conditions(&old, &health, jiff::Timestamp::now());
        let due = last_report.elapsed() > Duration::from_secs(60);
        if node::conditions_changed(&reported, &conds) || due {
            match node::report_status(&ctx.client, &cfg.node.name, &conds).await {
                Ok(n) => {
                    reported = conds;
                    last_report = tokio::time::Instant::now();
                    node = n;
                }
                Err(e) => tracing::warn!(error = %e, "reporting node status"),
            }
        }
    }
}

/// Runs the static pods of `dir`: reads the manifests every second, starts the pods that
/// appear or change, stops those whose file went, and keeps each one's mirror pod in the API.
async fn static_source(
    ctx: Arc<Ctx>,
    workers: Arc<Workers>,
    dir: PathBuf,
    node: Node,
    synced: Arc<std::sync::atomic::AtomicBool>,
) {
    use crate::static_pods;
    let _ = std::fs::create_dir_all(&dir);
    let mut reported: HashSet<String> = HashSet::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let mut want: HashMap<String, Pod> = HashMap::new();
        for file in static_pods::manifest_files(&dir) {
            let Ok(text) = std::fs::read_to_string(&file) else {
                continue;
            };
            match static_pods::from_manifest(&file, &text, &ctx.node.node_name) {
                Ok(p) => {
                    let uid = p.metadata.uid.clone().unwrap_or_default();
                    want.insert(uid, p);
                }
                Err(e) => {
                    if reported.insert(format!("{e}")) {
                        tracing::warn!(error = %e, "ignoring a static pod manifest");
                    }
                }
            }
        }
        // pods that went or changed (a changed manifest is a new uid)
        let gone: Vec<String> = ctx
            .pods
            .read()
            .iter()
            .filter(|(u, p)| static_pods::is_static(p) && !want.contains_key(*u))
            .map(|(u, _)| u.clone())
            .collect();
        for uid in gone {
            ctx.pods.write().remove(&uid);
            workers.wake(&ctx, &uid);
        }
        for (uid, p) in &want {
            let new = !ctx.pods.read().contains_key(uid);
            if new {
                ctx.pods.write().insert(uid.clone(), Arc::new(p.clone()));
                workers.wake(&ctx, uid);
            }
        }
        // mirrors (as the pod watch saw them): one current mirror per static pod, none for
        // pods that went
        if !synced.load(std::sync::atomic::Ordering::SeqCst) {
            continue;
        }
        let mirrors: Vec<Arc<Pod>> = ctx.mirrors.read().values().cloned().collect();
        for m in &mirrors {
            let current = want.values().any(|p| {
                p.metadata.name == m.metadata.name
                    && p.metadata.namespace == m.metadata.namespace
                    && static_pods::mirror_is_current(m, p)
            });
            if !current && m.metadata.deletion_timestamp.is_none() {
                let ns: Api<Pod> = Api::namespaced(
                    ctx.client.clone(),
                    m.metadata.namespace.as_deref().unwrap_or(""),
                );
                let dp = kube::api::DeleteParams {
                    grace_period_seconds: Some(0),
                    preconditions: Some(kube::api::Preconditions {
                        uid: m.metadata.uid.clone(),
                        resource_version: None,
                    }),
                    ..Default::default()
                };
                let _ = ns
                    .delete(m.metadata.name.as_deref().unwrap_or(""), &dp)
                    .await;
            }
        }
        for (uid, p) in &want {
            let exists = mirrors.iter().any(|m| {
                m.metadata.name == p.metadata.name && m.metadata.namespace == p.metadata.namespace
            });
            if !exists {
                let ns: Api<Pod> = Api::namespaced(
                    ctx.client.clone(),
                    p.metadata.namespace.as_deref().unwrap_or(""),
                );
                match ns
                    .create(
                        &kube::api::PostParams::default(),
                        &static_pods::mirror(p, &node),
                    )
                    .await
                {
                    // the worker writes the status to the new mirror
                    Ok(_) => workers.wake(&ctx, uid),
                    Err(e) => tracing::debug!(error = %e, "creating a mirror pod"),
                }
            }
        }
    }
}

/// Rotates container logs past their size limit every 10 s (upstream's period).
async fn rotate_logs(cri: Cri, node: String) {
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    loop {
        tick.tick().await;
        let labels: HashMap<String, String> =
            [(crate::labels::NODE.to_string(), node.clone())].into();
        if let Err(e) = crate::server::rotation::rotate_all(&cri, Default::default(), labels).await
        {
            tracing::warn!(error = %e, "rotating container logs");
        }
    }
}

async fn lease_loop(client: kube::Client, node: Node) {
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    loop {
        tick.tick().await;
        if let Err(e) = node::renew_lease(&client, &node, jiff::Timestamp::now()).await {
            tracing::warn!(error = %e, "renewing the node lease");
        }
    }
}
