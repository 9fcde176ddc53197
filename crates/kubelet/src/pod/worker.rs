//! The pod worker: one task per pod uid that brings the runtime in line with the pod's spec
//! and reports its status. It wakes when the pod changes (the watch), when its containers
//! change (the relist), when a probe result changes, or when a backoff ends. The decisions
//! are the pure cores' ([`super::plan`], [`super::status`]); this file performs them.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::events::Recorder;
use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container as SpecContainer, ObjectReference, Pod, PodStatus, Secret, Service,
};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, Preconditions};
use kube::Api;
use parking_lot::RwLock;
use tokio::sync::Notify;

use super::backoff::Backoff;
use super::observed::{PodRuntime, State};
use super::ops::Runtime;
use super::plan::{self, KillReason, Kind};
use super::spec::{self, ContainerInputs, NodeSettings};
use super::{env, status, ProbeView};
use crate::cgroups;
use crate::cri::CallExt;

/// What every worker shares.
pub struct Ctx {
    pub client: kube::Client,
    pub runtime: Runtime,
    pub node: NodeSettings,
    pub host_ips: Vec<String>,
    /// The scheme of container ids in statuses (`containerd`).
    pub runtime_name: String,
    pub cgroup_root: String,
    /// Per-pod directories (termination message files, etc-hosts, volumes).
    pub pods_dir: PathBuf,
    /// The pods bound to this node, by uid, as the watch last saw them.
    pub pods: RwLock<HashMap<String, Arc<Pod>>>,
    pub recorder: Arc<Recorder>,
    pub images: crate::images::ImageManager,
    pub probes: Arc<crate::probes::ProbeManager>,
    pub volumes: Arc<crate::volumes::VolumeManager>,
    pub node_allocatable: RwLock<BTreeMap<String, String>>,
    /// The mirror pods in the API as the watch last saw them, by the uid of the static pod
    /// each shows (its `kubernetes.io/config.mirror` hash; absent: no mirror yet).
    pub mirrors: RwLock<HashMap<String, Arc<Pod>>>,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("node", &self.node.node_name)
            .finish()
    }
}

fn now_nanos() -> i64 {
    jiff::Timestamp::now().as_nanosecond() as i64
}

fn reference(pod: &Pod, field: Option<String>) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        name: pod.metadata.name.clone(),
        namespace: pod.metadata.namespace.clone(),
        uid: pod.metadata.uid.clone(),
        resource_version: pod.metadata.resource_version.clone(),
        field_path: field,
    }
}

/// A reference to one of the pod's containers (`spec.containers{name}` or
/// `spec.initContainers{name}`), what container events are about.
pub fn container_reference(pod: &Pod, name: &str) -> ObjectReference {
    let kind = plan::spec_containers(pod)
        .into_iter()
        .find(|(c, _)| c.name == name)
        .map(|(_, k)| k)
        .unwrap_or(Kind::Regular);
    reference(pod, Some(field_path(kind, name)))
}

fn field_path(kind: Kind, name: &str) -> String {
    match kind {
        Kind::Regular => format!("spec.containers{{{name}}}"),
        _ => format!("spec.initContainers{{{name}}}"),
    }
}

/// Where a sync starts its containers: the sandbox and what its configs need.
struct StartIn<'a> {
    sandbox_id: &'a str,
    pod_ips: &'a [String],
    sandbox_cfg: cri::PodSandboxConfig,
    qos: cgroups::Qos,
}

/// One pod's worker state.
#[derive(Debug)]
pub struct Worker {
    uid: String,
    ctx: Arc<Ctx>,
    wake: Arc<Notify>,
    backoff: Backoff,
    /// Why containers wait, by name.
    waiting: HashMap<String, (String, String)>,
    /// The status last written.
    last_status: Option<PodStatus>,
    /// When to retry a failed sandbox creation.
    sandbox_retry: Option<tokio::time::Instant>,
    sandbox_backoff: Duration,
    /// The pod was finally deleted from the API by this worker.
    deleted: bool,
    /// The pod's volumes were set up (the refresher keeps them current after that).
    volumes_ready: bool,
}

/// How a sync ended.
enum Next {
    /// Sleep until woken, or at most this long.
    Wait(Option<Duration>),
    /// The pod is gone and cleaned up: the worker ends.
    Done,
}

impl Worker {
    pub fn new(uid: String, ctx: Arc<Ctx>, wake: Arc<Notify>) -> Worker {
        Worker {
            uid,
            ctx,
            wake,
            backoff: Backoff::default(),
            waiting: HashMap::new(),
            last_status: None,
            sandbox_retry: None,
            sandbox_backoff: Duration::from_millis(500),
            deleted: false,
            volumes_ready: false,
        }
    }

    /// Runs until the pod is gone from the API and from the runtime.
    pub async fn run(mut self) {
        loop {
            let pod = self.ctx.pods.read().get(&self.uid).cloned();
            let next = match pod {
                None => match self.cleanup().await {
                    Ok(()) => Next::Done,
                    Err(e) => {
                        tracing::warn!(uid = %self.uid, error = %e, "cleaning up a removed pod");
                        Next::Wait(Some(Duration::from_secs(2)))
                    }
                },
                Some(pod) if pod.metadata.deletion_timestamp.is_some() => {
                    self.terminate(&pod).await
                }
                Some(pod) => self.sync(&pod).await,
            };
            match next {
                Next::Done => return,
                Next::Wait(limit) => {
                    let limit = limit.unwrap_or(Duration::from_secs(60));
                    let _ = tokio::time::timeout(limit, self.wake.notified()).await;
                }
            }
        }
    }

    fn probes(&self) -> ProbeView {
        self.ctx.probes.results(&self.uid)
    }

    /// Tells the probe manager what runs now, and records the events its probes asked for.
    async fn sync_probes(&self, pod: &Pod, runtime: &PodRuntime) {
        let sandbox = runtime.latest_sandbox().filter(|s| s.ready);
        let host_network = pod
            .spec
            .as_ref()
            .and_then(|s| s.host_network)
            .unwrap_or(false);
        let ip = if host_network {
            self.ctx.host_ips.first().cloned()
        } else {
            sandbox.and_then(|s| s.ips.first().cloned())
        };
        let running: Vec<crate::probes::RunningContainer> = runtime
            .containers
            .iter()
            .filter(|c| c.state == State::Running && sandbox.is_some_and(|s| s.id == c.sandbox_id))
            .map(|c| crate::probes::RunningContainer {
                name: c.name.clone(),
                id: c.id.clone(),
                started_at: std::time::UNIX_EPOCH
                    + Duration::from_nanos(c.started_at.max(0) as u64),
            })
            .collect();
        self.ctx.probes.sync_pod(pod, ip.as_deref(), &running);
        for ev in self.ctx.probes.take_events(&self.uid) {
            self.ctx
                .recorder
                .record(
                    &container_reference(pod, &ev.container),
                    true,
                    ev.reason,
                    ev.message,
                )
                .await;
        }
    }

    /// Runs the container's preStop hook, bounded by `grace` seconds.
    async fn pre_stop(&self, pod: &Pod, name: &str, id: &str, grace: i64, pod_ip: Option<&str>) {
        let Some((spec, _)) = plan::spec_containers(pod)
            .into_iter()
            .find(|(c, _)| c.name == name)
        else {
            return;
        };
        let Some(handler) = spec.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref()) else {
            return;
        };
        let run = crate::probes::run_handler(&self.ctx.runtime.cri, pod, spec, id, handler, pod_ip);
        if let Ok(Err(message)) =
            tokio::time::timeout(Duration::from_secs(grace.max(0) as u64), run).await
        {
            self.ctx
                .recorder
                .record(
                    &container_reference(pod, name),
                    true,
                    "FailedPreStopHook",
                    message,
                )
                .await
        }
    }

    async fn sync(&mut self, pod: &Pod) -> Next {
        match self.sync_inner(pod).await {
            Ok(next) => next,
            Err(e) => {
                tracing::warn!(pod = %plan::pod_desc(pod), error = %e, "pod sync failed");
                Next::Wait(Some(Duration::from_secs(1)))
            }
        }
    }

    async fn sync_inner(&mut self, pod: &Pod) -> Result<Next, crate::cri::CriError> {
        let terminal_phase = matches!(
            pod.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        );
        let qos = status::qos_class(pod);
        let cgroup = cgroups::pod_cgroup(&self.ctx.cgroup_root, qos, &self.uid);
        let mut runtime = self.ctx.runtime.observe(&self.uid).await?;
        if terminal_phase {
            // a finished pod never runs again
            if runtime.anything_running() {
                self.kill_pod(pod, &runtime, Some(0)).await;
            }
            return Ok(Next::Wait(None));
        }
        if let Err(e) = cgroups::create(&cgroup) {
            tracing::warn!(%cgroup, error = %e, "creating the pod cgroup");
        } else if runtime.sandboxes.is_empty() {
            // the pod cgroup's own limits, set once before anything runs in it
            let l = spec::pod_cgroup_limits(pod);
            let mut writes = vec![("cpu", "cpu.shares", l.cpu_shares.to_string())];
            if let Some((quota, period)) = l.cpu_quota {
                writes.push(("cpu", "cpu.cfs_period_us", period.to_string()));
                writes.push(("cpu", "cpu.cfs_quota_us", quota.to_string()));
            }
            if let Some(m) = l.memory_limit {
                writes.push(("memory", "memory.limit_in_bytes", m.to_string()));
            }
            for (controller, file, value) in writes {
                if let Err(e) = cgroups::write(controller, &cgroup, file, &value) {
                    tracing::debug!(%cgroup, file, error = %e, "setting a pod cgroup limit");
                }
            }
        }
        if !self.volumes_ready {
            match self.ctx.volumes.setup(pod).await {
                Ok(()) => self.volumes_ready = true,
                Err(e) => {
                    self.event(pod, true, e.reason(), e.to_string(), None).await;
                    self.publish_status(pod, &runtime, false).await;
                    return Ok(Next::Wait(Some(Duration::from_secs(2))));
                }
            }
        }
        let probes = self.probes();
        let hashes: HashMap<String, String> = plan::spec_containers(pod)
            .iter()
            .map(|(c, _)| (c.name.clone(), spec::container_hash(c)))
            .collect();
        let now = now_nanos();
        let p = plan::plan(plan::Input {
            pod,
            runtime: &runtime,
            probes: &probes,
            backoff: &self.backoff,
            hashes: &hashes,
            now,
        });
        let mut acted = false;
        for w in &p.waiting {
            let old = self
                .waiting
                .insert(w.name.clone(), (w.reason.to_string(), w.message.clone()));
            if old.as_ref().map(|o| o.0.as_str()) != Some(w.reason) {
                self.event(
                    pod,
                    true,
                    "BackOff",
                    format!(
                        "Back-off restarting failed container {} in pod {}",
                        w.name,
                        plan::pod_desc(pod)
                    ),
                    None,
                )
                .await;
            }
        }
        if p.kill_pod {
            self.kill_pod(pod, &runtime, None).await;
            acted = true;
        }
        let mut sandbox = runtime.latest_sandbox().filter(|s| s.ready).cloned();
        let mut sandbox_attempt = sandbox.as_ref().map(|s| s.attempt).unwrap_or(0);
        if let Some(attempt) = p.create_sandbox {
            if self
                .sandbox_retry
                .is_some_and(|t| t > tokio::time::Instant::now())
            {
                return Ok(Next::Wait(
                    self.sandbox_retry.map(|t| t - tokio::time::Instant::now()),
                ));
            }
            let cfg = spec::sandbox_config(pod, attempt, &cgroup, &self.ctx.node);
            match self.ctx.runtime.run_sandbox(cfg).await {
                Ok(id) => {
                    self.sandbox_retry = None;
                    self.sandbox_backoff = Duration::from_millis(500);
                    sandbox_attempt = attempt;
                    runtime = self.ctx.runtime.observe(&self.uid).await?;
                    sandbox = runtime.sandboxes.iter().find(|s| s.id == id).cloned();
                    acted = true;
                }
                Err(e) => {
                    self.event(
                        pod,
                        true,
                        "FailedCreatePodSandBox",
                        format!("Failed to create pod sandbox: {}", e.message()),
                        None,
                    )
                    .await;
                    self.sandbox_retry = Some(tokio::time::Instant::now() + self.sandbox_backoff);
                    self.sandbox_backoff = (self.sandbox_backoff * 2).min(Duration::from_secs(60));
                    self.publish_status(pod, &runtime, false).await;
                    return Ok(Next::Wait(Some(self.sandbox_backoff)));
                }
            }
        }
        for k in &p.kill {
            let grace = pod_grace(pod);
            let msg = match &k.reason {
                KillReason::SpecChanged => {
                    format!("Container {} definition changed, will be restarted", k.name)
                }
                KillReason::Unhealthy(m) => m.clone(),
                KillReason::Stale => format!("Stopping container {}", k.name),
            };
            self.event(pod, false, "Killing", msg, None).await;
            if let Err(e) = self.ctx.runtime.stop_container(&k.id, grace).await {
                tracing::warn!(container = %k.id, error = %e, "stopping a container");
            }
            acted = true;
        }
        if let Some(sb) = &sandbox {
            let target = StartIn {
                sandbox_id: &sb.id,
                pod_ips: &sb.ips,
                sandbox_cfg: spec::sandbox_config(pod, sandbox_attempt, &cgroup, &self.ctx.node),
                qos,
            };
            // what the environments draw on, read from the API once for all the starts
            let mut sources = None;
            for s in &p.start {
                let started = self.start_container(pod, s, &target, &mut sources).await;
                acted = true;
                if !started && s.kind != Kind::Regular {
                    break;
                }
            }
        }
        for id in &p.remove {
            let _ = self.ctx.runtime.remove_container(id).await;
        }
        for id in &p.remove_sandboxes {
            let _ = self.ctx.runtime.remove_sandbox(id).await;
        }
        if acted {
            runtime = self.ctx.runtime.observe(&self.uid).await?;
        }
        // containers no longer waiting lose their reason
        self.waiting.retain(|name, _| {
            !runtime
                .latest(name)
                .is_some_and(|c| c.state == State::Running)
        });
        self.read_termination_messages(pod, &mut runtime);
        self.sync_probes(pod, &runtime).await;
        self.publish_status(pod, &runtime, p.terminal).await;
        let mut next = p.waiting.iter().map(|w| w.remaining).min();
        if !self.waiting.is_empty() && p.waiting.is_empty() {
            // a start failed (image pull, config, runtime): try again soon; the image manager
            // answers ImagePullBackOff without pulling while its backoff lasts
            next = Some(Duration::from_secs(1));
        }
        Ok(Next::Wait(next))
    }

    /// Creates and starts one container; false (with the reason recorded) when it could not.
    async fn start_container(
        &mut self,
        pod: &Pod,
        s: &plan::Start,
        target: &StartIn<'_>,
        sources: &mut Option<env::Sources>,
    ) -> bool {
        let (sandbox_id, pod_ips, sandbox_cfg, qos) = (
            target.sandbox_id,
            target.pod_ips,
            &target.sandbox_cfg,
            target.qos,
        );
        let Some((c, _)) = plan::spec_containers(pod)
            .into_iter()
            .find(|(c, _)| c.name == s.name)
        else {
            return false;
        };
        let c = c.clone();
        let fp = Some(field_path(s.kind, &c.name));
        // the image
        // (the image manager records Pulling, Pulled, Failed and BackOff itself)
        let image_ref = match self.ctx.images.ensure(pod, &c).await {
            Ok(r) => r.image_ref,
            Err(e) => {
                self.waiting
                    .insert(c.name.clone(), (e.reason.to_string(), e.message));
                return false;
            }
        };
        // the environment
        let env = match self.environment(pod, &c, pod_ips, sources).await {
            Ok(e) => e,
            Err(message) => {
                self.event(pod, true, "Failed", format!("Error: {message}"), fp.clone())
                    .await;
                self.waiting.insert(
                    c.name.clone(),
                    ("CreateContainerConfigError".into(), message),
                );
                return false;
            }
        };
        if let Err(message) = self.check_user(pod, &c, &image_ref).await {
            self.event(pod, true, "Failed", format!("Error: {message}"), fp.clone())
                .await;
            self.waiting.insert(
                c.name.clone(),
                ("CreateContainerConfigError".into(), message),
            );
            return false;
        }
        let env_map: BTreeMap<String, String> = env.iter().cloned().collect();
        let mut mounts = match self.ctx.volumes.container_mounts(pod, &c, &env_map) {
            Ok(m) => m,
            Err(e) => {
                self.event(pod, true, "Failed", format!("Error: {e}"), fp.clone())
                    .await;
                self.waiting.insert(
                    c.name.clone(),
                    ("CreateContainerConfigError".into(), e.to_string()),
                );
                return false;
            }
        };
        match self.termination_message_file(pod, &c, s.restart_count) {
            Ok(m) => mounts.push(m),
            Err(e) => tracing::warn!(error = %e, "termination message file"),
        }
        if let Some(m) = self.etc_hosts(pod, pod_ips) {
            mounts.push(m);
        }
        let cfg = spec::container_config(
            pod,
            &c,
            ContainerInputs {
                kind: s.kind,
                restart_count: s.restart_count,
                image_ref: &image_ref,
                env: &env,
                mounts,
                qos,
            },
            &self.ctx.node,
        );
        let id = match self
            .ctx
            .runtime
            .create_container(sandbox_id, cfg, sandbox_cfg.clone())
            .await
        {
            Ok(id) => id,
            Err(e) => {
                self.event(
                    pod,
                    true,
                    "Failed",
                    format!("Error: {}", e.message()),
                    fp.clone(),
                )
                .await;
                self.waiting
                    .insert(c.name.clone(), ("CreateContainerError".into(), e.message()));
                return false;
            }
        };
        self.event(
            pod,
            false,
            "Created",
            format!("Created container {}", c.name),
            fp.clone(),
        )
        .await;
        if let Some(key) = &s.backoff_key {
            self.backoff.next(key, now_nanos());
        }
        if let Err(e) = self.ctx.runtime.start_container(&id).await {
            self.event(
                pod,
                true,
                "Failed",
                format!("Error: {}", e.message()),
                fp.clone(),
            )
            .await;
            self.waiting
                .insert(c.name.clone(), ("RunContainerError".into(), e.message()));
            return false;
        }
        self.waiting.remove(&c.name);
        self.event(
            pod,
            false,
            "Started",
            format!("Started container {}", c.name),
            fp,
        )
        .await;
        true
    }

    async fn check_user(
        &self,
        pod: &Pod,
        c: &SpecContainer,
        image_ref: &str,
    ) -> Result<(), String> {
        let wants = c
            .security_context
            .as_ref()
            .and_then(|s| s.run_as_non_root)
            .or_else(|| {
                pod.spec
                    .as_ref()
                    .and_then(|s| s.security_context.as_ref())
                    .and_then(|s| s.run_as_non_root)
            });
        if wants != Some(true) {
            return Ok(());
        }
        let img = self
            .ctx
            .runtime
            .cri
            .images
            .clone()
            .image_status(cri::ImageStatusRequest {
                image: Some(cri::ImageSpec {
                    image: image_ref.to_string(),
                    ..Default::default()
                }),
                verbose: false,
            })
            .await
            .call("ImageStatus")
            .ok()
            .and_then(|r| r.image);
        let uid = img.as_ref().and_then(|i| i.uid.as_ref()).map(|u| u.value);
        let user = img.map(|i| i.username).unwrap_or_default();
        spec::verify_run_as_non_root(pod, c, uid, &user)
    }

    /// The container's environment; `sources` caches what it reads from the API for the
    /// other containers started in the same sync.
    async fn environment(
        &self,
        pod: &Pod,
        c: &SpecContainer,
        pod_ips: &[String],
        sources: &mut Option<env::Sources>,
    ) -> Result<Vec<(String, String)>, String> {
        let src = match sources {
            Some(src) => src,
            None => sources.insert(self.env_sources(pod, pod_ips).await?),
        };
        env::resolve(pod, c, src).map_err(|e| e.0)
    }

    /// The ConfigMaps, Secrets and Services the pod's environments may draw on.
    async fn env_sources(&self, pod: &Pod, pod_ips: &[String]) -> Result<env::Sources, String> {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let mut src = env::Sources {
            host_ips: self.ctx.host_ips.clone(),
            pod_ips: pod_ips.to_vec(),
            node_allocatable: self.ctx.node_allocatable.read().clone(),
            ..Default::default()
        };
        let (cms, secrets) = env::referenced(pod);
        let cm_api: Api<ConfigMap> = Api::namespaced(self.ctx.client.clone(), &ns);
        for name in cms {
            if let Some(cm) = cm_api.get_opt(&name).await.map_err(|e| e.to_string())? {
                src.config_maps.insert(name, cm);
            }
        }
        let secret_api: Api<Secret> = Api::namespaced(self.ctx.client.clone(), &ns);
        for name in secrets {
            if let Some(s) = secret_api.get_opt(&name).await.map_err(|e| e.to_string())? {
                src.secrets.insert(name, s);
            }
        }
        if pod
            .spec
            .as_ref()
            .and_then(|s| s.enable_service_links)
            .unwrap_or(true)
        {
            let svc_api: Api<Service> = Api::namespaced(self.ctx.client.clone(), &ns);
            if let Ok(list) = svc_api.list(&ListParams::default()).await {
                src.services = list.items;
            }
        }
        let default_api: Api<Service> = Api::namespaced(self.ctx.client.clone(), "default");
        if let Ok(Some(k)) = default_api.get_opt("kubernetes").await {
            if ns != "default"
                || !src
                    .services
                    .iter()
                    .any(|s| s.metadata.name.as_deref() == Some("kubernetes"))
            {
                src.master_service = Some(k);
            }
        }
        Ok(src)
    }

    fn pod_dir(&self) -> PathBuf {
        self.ctx.pods_dir.join(&self.uid)
    }

    /// The host file behind the container's terminationMessagePath.
    fn termination_message_file(
        &self,
        _pod: &Pod,
        c: &SpecContainer,
        restart_count: u32,
    ) -> std::io::Result<cri::Mount> {
        use std::os::unix::fs::PermissionsExt;
        let dir = self.pod_dir().join("containers").join(&c.name);
        std::fs::create_dir_all(&dir)?;
        let file = dir.join(restart_count.to_string());
        std::fs::write(&file, b"")?;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666))?;
        Ok(cri::Mount {
            container_path: c
                .termination_message_path
                .clone()
                .unwrap_or_else(|| "/dev/termination-log".into()),
            host_path: file.display().to_string(),
            ..Default::default()
        })
    }

    /// The pod's /etc/hosts (upstream's kubelet-managed hosts file), for pods on the pod
    /// network.
    fn etc_hosts(&self, pod: &Pod, pod_ips: &[String]) -> Option<cri::Mount> {
        let spec = pod.spec.as_ref()?;
        if spec.host_network.unwrap_or(false) {
            return None;
        }
        let mut text = String::from(
            "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n",
        );
        let hostname = spec
            .hostname
            .clone()
            .unwrap_or_else(|| pod.metadata.name.clone().unwrap_or_default());
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        for ip in pod_ips {
            match &spec.subdomain {
                Some(sub) if !sub.is_empty() => text.push_str(&format!(
                    "{ip}\t{hostname}.{sub}.{ns}.svc.{}\t{hostname}\n",
                    self.ctx.node.cluster_domain
                )),
                _ => text.push_str(&format!("{ip}\t{hostname}\n")),
            }
        }
        for alias in spec.host_aliases.iter().flatten() {
            let names = alias.hostnames.clone().unwrap_or_default().join("\t");
            text.push_str(&format!(
                "\n# Entries added by HostAliases.\n{}\t{names}\n",
                alias.ip
            ));
        }
        let path = self.pod_dir().join("etc-hosts");
        std::fs::create_dir_all(self.pod_dir()).ok()?;
        std::fs::write(&path, text).ok()?;
        Some(cri::Mount {
            container_path: "/etc/hosts".into(),
            host_path: path.display().to_string(),
            ..Default::default()
        })
    }

    /// Fills exited containers' messages from their termination message files (or, with
    /// FallbackToLogsOnError, the end of their log).
    fn read_termination_messages(&self, pod: &Pod, runtime: &mut PodRuntime) {
        let specs = plan::spec_containers(pod);
        for c in runtime
            .containers
            .iter_mut()
            .filter(|c| c.state == State::Exited)
        {
            let file = self
                .pod_dir()
                .join("containers")
                .join(&c.name)
                .join(c.restart_count.to_string());
            let mut msg = std::fs::read(&file)
                .map(|b| String::from_utf8_lossy(&b[..b.len().min(4096)]).into_owned())
                .unwrap_or_default();
            let policy = specs
                .iter()
                .find(|(s, _)| s.name == c.name)
                .and_then(|(s, _)| s.termination_message_policy.clone());
            if msg.is_empty()
                && c.exit_code != 0
                && policy.as_deref() == Some("FallbackToLogsOnError")
            {
                msg = log_tail(&c.log_path, 80, 2048);
            }
            if !msg.is_empty() {
                c.message = msg;
            }
        }
    }

    async fn publish_status(&mut self, pod: &Pod, runtime: &PodRuntime, terminal: bool) {
        let probes = self.probes();
        let mut st = status::compute(status::Input {
            pod,
            runtime,
            probes: &probes,
            waiting: &self.waiting,
            runtime_name: &self.ctx.runtime_name,
            host_ips: &self.ctx.host_ips,
            terminal,
            now: jiff::Timestamp::now(),
        });
        if terminal && !matches!(st.phase.as_deref(), Some("Succeeded" | "Failed")) {
            st.phase = Some(terminal_phase(&st).into());
        }
        if crate::static_pods::is_static(pod) {
            let mirror = self
                .ctx
                .mirrors
                .read()
                .get(&self.uid)
                .map(|m| m.status.clone());
            match mirror {
                // no mirror yet: the static source creates it and wakes this worker
                None => {
                    self.last_status = Some(st);
                    return;
                }
                Some(current) if current.as_ref() == Some(&st) => {
                    self.last_status = Some(st);
                    return;
                }
                Some(_) => {}
            }
        } else if self.last_status.as_ref() == Some(&st) || pod.status.as_ref() == Some(&st) {
            self.last_status = Some(st);
            return;
        }
        let api: Api<Pod> = Api::namespaced(
            self.ctx.client.clone(),
            pod.metadata.namespace.as_deref().unwrap_or(""),
        );
        // the uid guards against writing to a newer pod of the same name; a static pod's
        // mirror has a uid of its own
        let patch = if crate::static_pods::is_static(pod) {
            serde_json::json!({ "status": st })
        } else {
            serde_json::json!({ "metadata": {"uid": pod.metadata.uid}, "status": st })
        };
        match api
            .patch_status(
                pod.metadata.name.as_deref().unwrap_or(""),
                &PatchParams::default(),
                &Patch::Strategic(&patch),
            )
            .await
        {
            Ok(_) => self.last_status = Some(st),
            Err(e) => {
                tracing::debug!(pod = %plan::pod_desc(pod), error = %e, "writing pod status");
                self.last_status = None;
            }
        }
    }

    /// Stops every container (regular ones first, then sidecars and init containers) with the
    /// grace period, then the sandbox.
    async fn kill_pod(&self, pod: &Pod, runtime: &PodRuntime, grace: Option<i64>) {
        let grace = grace.unwrap_or_else(|| pod_grace(pod));
        let regular: Vec<String> = pod
            .spec
            .as_ref()
            .map(|s| s.containers.iter().map(|c| c.name.clone()).collect())
            .unwrap_or_default();
        let running = |first: bool| {
            runtime
                .containers
                .iter()
                .filter(|c| matches!(c.state, State::Running | State::Created | State::Unknown))
                .filter(|c| regular.contains(&c.name) == first)
                .cloned()
                .collect::<Vec<_>>()
        };
        let sandbox = runtime.latest_sandbox().filter(|s| s.ready);
        let pod_ip = sandbox.and_then(|s| s.ips.first().cloned());
        let pod_ip = pod_ip.as_deref();
        for group in [running(true), running(false)] {
            let stops = group.iter().map(|c| {
                let rt = self.ctx.runtime.clone();
                let id = c.id.clone();
                let name = c.name.clone();
                async move {
                    // the preStop hook first, inside the grace period; the rest of it is
                    // the container's
                    let started = tokio::time::Instant::now();
                    if c.state == State::Running {
                        self.pre_stop(pod, &name, &id, grace, pod_ip).await;
                    }
                    let left = grace - started.elapsed().as_secs() as i64;
                    if let Err(e) = rt.stop_container(&id, left.max(2).min(grace.max(0))).await {
                        tracing::warn!(container = %id, error = %e, "stopping a container");
                    }
                }
            });
            for c in &group {
                self.event(
                    pod,
                    false,
                    "Killing",
                    format!("Stopping container {}", c.name),
                    None,
                )
                .await;
            }
            futures::future::join_all(stops).await;
        }
        for sb in runtime.sandboxes.iter().filter(|s| s.ready) {
            if let Err(e) = self.ctx.runtime.stop_sandbox(&sb.id).await {
                tracing::warn!(sandbox = %sb.id, error = %e, "stopping a sandbox");
            }
        }
    }

    /// A pod being deleted: stop everything within its grace period, report the final
    /// status, then remove the pod from the API.
    async fn terminate(&mut self, pod: &Pod) -> Next {
        let runtime = match self.ctx.runtime.observe(&self.uid).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "observing a terminating pod");
                return Next::Wait(Some(Duration::from_secs(1)));
            }
        };
        if runtime.anything_running() {
            let grace = pod
                .metadata
                .deletion_grace_period_seconds
                .unwrap_or_else(|| pod_grace(pod));
            self.kill_pod(pod, &runtime, Some(grace)).await;
        }
        let mut runtime = match self.ctx.runtime.observe(&self.uid).await {
            Ok(r) => r,
            Err(_) => return Next::Wait(Some(Duration::from_secs(1))),
        };
        self.read_termination_messages(pod, &mut runtime);
        self.publish_status(pod, &runtime, true).await;
        if !self.deleted {
            let api: Api<Pod> = Api::namespaced(
                self.ctx.client.clone(),
                pod.metadata.namespace.as_deref().unwrap_or(""),
            );
            let dp = DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(Preconditions {
                    uid: pod.metadata.uid.clone(),
                    resource_version: None,
                }),
                ..Default::default()
            };
            match api
                .delete(pod.metadata.name.as_deref().unwrap_or(""), &dp)
                .await
            {
                Ok(_) => self.deleted = true,
                Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => self.deleted = true,
                Err(e) => {
                    tracing::warn!(pod = %plan::pod_desc(pod), error = %e, "deleting a terminated pod");
                    return Next::Wait(Some(Duration::from_secs(1)));
                }
            }
        }
        // the watch's delete wakes the worker for the cleanup
        Next::Wait(Some(Duration::from_secs(5)))
    }

    /// The pod is gone from the API: remove what is left of it on the node.
    async fn cleanup(&mut self) -> Result<(), crate::cri::CriError> {
        self.ctx.probes.remove_pod(&self.uid);
        if let Err(e) = self.ctx.volumes.teardown(&self.uid).await {
            tracing::warn!(uid = %self.uid, error = %e, "tearing down a pod's volumes");
        }
        let runtime = self.ctx.runtime.observe(&self.uid).await?;
        for c in &runtime.containers {
            if matches!(c.state, State::Running | State::Created | State::Unknown) {
                self.ctx.runtime.stop_container(&c.id, 0).await?;
            }
        }
        for sb in &runtime.sandboxes {
            self.ctx.runtime.stop_sandbox(&sb.id).await?;
            self.ctx.runtime.remove_sandbox(&sb.id).await?;
        }
        for c in &runtime.containers {
            self.ctx.runtime.remove_container(&c.id).await?;
        }
        for qos in [
            cgroups::Qos::Guaranteed,
            cgroups::Qos::Burstable,
            cgroups::Qos::BestEffort,
        ] {
            let cg = cgroups::pod_cgroup(&self.ctx.cgroup_root, qos, &self.uid);
            if let Err(e) = cgroups::remove(&cg) {
                tracing::warn!(cgroup = %cg, error = %e, "removing a pod cgroup");
            }
        }
        let _ = std::fs::remove_dir_all(self.pod_dir());
        // the pod's logs: `<ns>_<name>_<uid>` below the log root
        let suffix = format!("_{}", self.uid);
        if let Ok(entries) = std::fs::read_dir(&self.ctx.node.log_root) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().ends_with(&suffix) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        Ok(())
    }

    async fn event(
        &self,
        pod: &Pod,
        warning: bool,
        reason: &str,
        note: String,
        field: Option<String>,
    ) {
        self.ctx
            .recorder
            .record(&reference(pod, field), warning, reason, note)
            .await;
    }
}

/// The pod's termination grace period (30 s by default).
pub fn pod_grace(pod: &Pod) -> i64 {
    pod.spec
        .as_ref()
        .and_then(|s| s.termination_grace_period_seconds)
        .unwrap_or(30)
}

/// The phase of a pod that will not run again: Succeeded when every container exited 0.
fn terminal_phase(st: &PodStatus) -> &'static str {
    let all_ok = st.container_statuses.iter().flatten().all(|c| {
        c.state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .is_some_and(|t| t.exit_code == 0)
    });
    if all_ok {
        "Succeeded"
    } else {
        "Failed"
    }
}

/// The last `lines` lines (at most `bytes` bytes) of a CRI-format log file, as text (what
/// FallbackToLogsOnError puts in the status; partial entries joined as the log reader does).
pub fn log_tail(path: &str, lines: usize, bytes: usize) -> String {
    let Ok(data) = std::fs::read(path) else {
        return String::new();
    };
    let mut text: Vec<u8> = Vec::new();
    for line in data.split(|b| *b == b'\n') {
        if let Some(entry) = crate::server::logs::parse_line(line) {
            text.extend_from_slice(entry.text);
            if !entry.partial {
                text.push(b'\n');
            }
        }
    }
    let text = String::from_utf8_lossy(&text);
    let all: Vec<&str> = text.trim_end_matches('\n').split('\n').collect();
    let mut s = all[all.len().saturating_sub(lines)..].join("\n");
    if s.len() > bytes {
        let mut cut = s.len() - bytes;
        while !s.is_char_boundary(cut) {
            cut += 1;
        }
        s = s[cut..].to_string();
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_log_tail_joins_partial_lines_and_keeps_the_last_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        std::fs::write(
            &path,
            "2026-01-01T00:00:00Z stdout F one\n2026-01-01T00:00:01Z stderr P tw\n2026-01-01T00:00:02Z stderr F o\n2026-01-01T00:00:03Z stdout F three\n",
        )
        .unwrap();
        let p = path.to_str().unwrap();
        assert_eq!(super::log_tail(p, 80, 2048), "one\ntwo\nthree");
        assert_eq!(super::log_tail(p, 2, 2048), "two\nthree");
        assert_eq!(super::log_tail(p, 80, 4), "hree");
        assert_eq!(super::log_tail("/nonexistent", 80, 2048), "");
    }
}
