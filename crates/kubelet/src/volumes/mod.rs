//! Pod volumes: what upstream's volume manager and in-tree plugins do for the volume types
//! rkube supports, laid out on disk as upstream's `/var/lib/kubelet/pods`:
//!
//! ```text
//! <pods_dir>/<uid>/volumes/kubernetes.io~empty-dir/<name>     emptyDir (dir or tmpfs)
//!                          kubernetes.io~configmap/<name>     configMap (atomic writer)
//!                          kubernetes.io~secret/<name>        secret (tmpfs)
//!                          kubernetes.io~downward-api/<name>  downwardAPI
//!                          kubernetes.io~projected/<name>     projected (tmpfs)
//!                          kubernetes.io~local-volume/<pv>    a claim's local PV (bind mount)
//!                  volume-subpaths/<volume>/<container>/<i>   subPath bind mounts
//!                  plugins/kubernetes.io~empty-dir/<name>/ready
//! ```
//!
//! hostPath volumes (and claims bound to hostPath PVs) are mounted straight from the host.
//! [`VolumeManager::setup`] makes a pod's volumes ready, [`VolumeManager::container_mounts`]
//! gives a container's CRI mounts, [`VolumeManager::teardown`] undoes it all, and
//! [`VolumeManager::spawn_refresher`] keeps API-backed contents current. Each pod's
//! operations are serialised by a per-pod lock.

pub mod atomic_writer;
pub mod container;
pub mod emptydir;
pub mod hostpath;
pub mod mounts;
pub mod ownership;
pub mod payload;
pub mod pvc;
pub mod subpath;
pub mod token;

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, Node, PersistentVolume, PersistentVolumeClaim, Pod, Secret,
    ServiceAccount, ServiceAccountTokenProjection, Volume,
};
use kube::api::{Api, PostParams};
use rkube_api::go_quote::go_quote;
use rkube_api::quantity::Quantity;

use atomic_writer::Payload;
use token::{CachedToken, TokenKey};

/// The plugin directory of configMap volumes.
pub const CONFIGMAP_PLUGIN: &str = "kubernetes.io~configmap";
/// The plugin directory of secret volumes.
pub const SECRET_PLUGIN: &str = "kubernetes.io~secret";
/// The plugin directory of downwardAPI volumes.
pub const DOWNWARD_API_PLUGIN: &str = "kubernetes.io~downward-api";
/// The plugin directory of projected volumes.
pub const PROJECTED_PLUGIN: &str = "kubernetes.io~projected";

/// How long the node's allocatable resources (downward API limits, tmpfs sizes) are reused.
const ALLOCATABLE_TTL: Duration = Duration::from_secs(60);

/// Why a volume could not be made ready, mounted into a container or torn down. The
/// messages are upstream's event messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VolumeError {
    /// A volume's SetUp failed (event reason `FailedMount`).
    #[error("MountVolume.SetUp failed for volume \"{volume}\" : {message}")]
    SetUp { volume: String, message: String },
    /// A volume could not be processed before SetUp: a claim that is unbound, missing or
    /// being deleted, or whose volume is not bound back to it (event reason `FailedMount`).
    #[error("Unable to attach or mount volumes: unmounted volumes=[{volume}], unattached volumes=[], failed to process volumes=[{volume}]: {message}")]
    Process { volume: String, message: String },
    /// A container's volumeMount cannot be made (a missing volume, a bad subPath; the
    /// container's state is `CreateContainerConfigError`).
    #[error("{message}")]
    ContainerMount { container: String, message: String },
    /// Unmounting or removing the pod's volumes failed (event reason `FailedUnmount`).
    #[error("UnmountVolume.TearDown failed for pod \"{pod_uid}\" : {message}")]
    TearDown { pod_uid: String, message: String },
    /// The pod has no uid.
    #[error("pod {0} has no uid")]
    NoUid(String),
}

impl VolumeError {
    /// The event reason upstream records with this error.
    pub fn reason(&self) -> &'static str {
        match self {
            VolumeError::SetUp { .. } | VolumeError::Process { .. } | VolumeError::NoUid(_) => {
                "FailedMount"
            }
            VolumeError::ContainerMount { .. } => "CreateContainerConfigError",
            VolumeError::TearDown { .. } => "FailedUnmount",
        }
    }
}

/// A volume ready on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ReadyVolume {
    /// What containers mount (or the root subPaths are taken from).
    host_path: PathBuf,
    /// The plugin always mounts it read-only (configMap, secret, downwardAPI, projected, a
    /// read-only claim).
    read_only: bool,
    /// Its contents come from the API and are refreshed.
    refreshed: bool,
}

#[derive(Debug, Default)]
struct PodEntry {
    lock: Arc<tokio::sync::Mutex<()>>,
    /// Set by teardown: a setup or refresh that waited for the lock must not recreate it.
    gone: AtomicBool,
    ready: parking_lot::Mutex<BTreeMap<String, ReadyVolume>>,
}

/// The kubelet's volumes: sets up, mounts, refreshes and tears down the volumes of the pods
/// on its node.
pub struct VolumeManager {
    client: kube::Client,
    pods_dir: PathBuf,
    node_name: String,
    pods: parking_lot::Mutex<HashMap<String, Arc<PodEntry>>>,
    tokens: parking_lot::Mutex<HashMap<TokenKey, CachedToken>>,
    allocatable: parking_lot::Mutex<Option<(Instant, BTreeMap<String, Quantity>)>>,
    runtime_supports_rro: AtomicBool,
}

impl std::fmt::Debug for VolumeManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VolumeManager")
            .field("pods_dir", &self.pods_dir)
            .field("node_name", &self.node_name)
            .field("pods", &self.pods.lock().len())
            .finish_non_exhaustive()
    }
}

/// What one setup or refresh of a pod shares between its volumes.
struct Round<'a> {
    pod: &'a Pod,
    uid: String,
    namespace: String,
    pod_dir: PathBuf,
    fs_group: Option<i64>,
    fs_group_policy: Option<String>,
    fs_user: Option<i64>,
    configmaps: HashMap<String, Result<Option<ConfigMap>, String>>,
    secrets: HashMap<String, Result<Option<Secret>, String>>,
}

impl VolumeManager {
    /// `pods_dir` is the kubelet's per-pod directory root: a pod's volumes live under
    /// `<pods_dir>/<uid>/volumes/<plugin>/<name>` as upstream's /var/lib/kubelet/pods.
    pub fn new(client: kube::Client, pods_dir: PathBuf, node_name: String) -> VolumeManager {
        VolumeManager {
            client,
            pods_dir,
            node_name,
            pods: parking_lot::Mutex::new(HashMap::new()),
            tokens: parking_lot::Mutex::new(HashMap::new()),
            allocatable: parking_lot::Mutex::new(None),
            runtime_supports_rro: AtomicBool::new(false),
        }
    }

    /// Records whether the runtime supports recursive read-only mounts (CRI
    /// `RuntimeHandlerFeatures.recursive_read_only_mounts`); off until told.
    pub fn set_runtime_supports_rro(&self, supported: bool) {
        self.runtime_supports_rro
            .store(supported, Ordering::Relaxed);
    }

    /// The pod's directory, `<pods_dir>/<uid>`.
    pub fn pod_dir(&self, uid: &str) -> PathBuf {
        self.pods_dir.join(uid)
    }

    /// Where the volume `name` of plugin `plugin` (`kubernetes.io~empty-dir`, ...) lives.
    pub fn volume_dir(&self, uid: &str, plugin: &str, name: &str) -> PathBuf {
        self.pod_dir(uid).join("volumes").join(plugin).join(name)
    }

    /// Makes every volume of the pod ready on the host; idempotent (called on every sync of
    /// a pod until it succeeds; later calls refresh contents). Every volume is tried; the
    /// first failure is returned.
    pub async fn setup(&self, pod: &Pod) -> Result<(), VolumeError> {
        self.sync(pod, false).await
    }

    /// Rewrites the contents of the pod's configMap, secret, downwardAPI and projected
    /// volumes from the API (only those already set up; nothing for a pod never set up or
    /// torn down).
    pub async fn refresh(&self, pod: &Pod) -> Result<(), VolumeError> {
        self.sync(pod, true).await
    }

    async fn sync(&self, pod: &Pod, refresh_only: bool) -> Result<(), VolumeError> {
        let uid = pod_uid(pod)?;
        let entry = loop {
            let entry = if refresh_only {
                match self.pods.lock().get(&uid) {
                    Some(e) => e.clone(),
                    None => return Ok(()),
                }
            } else {
                self.pods.lock().entry(uid.clone()).or_default().clone()
            };
            let guard = entry.lock.clone().lock_owned().await;
            if !entry.gone.load(Ordering::Acquire) {
                break (entry, guard);
            }
            if refresh_only {
                return Ok(());
            }
            // Torn down while waiting: start over on a fresh entry.
        };
        let (entry, _guard) = entry;
        let spec = pod.spec.as_ref();
        let sc = spec.and_then(|s| s.security_context.as_ref());
        let mut round = Round {
            pod,
            namespace: pod
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".into()),
            pod_dir: self.pod_dir(&uid),
            uid,
            fs_group: sc.and_then(|s| s.fs_group),
            fs_group_policy: sc.and_then(|s| s.fs_group_change_policy.clone()),
            fs_user: ownership::fs_user_from(pod),
            configmaps: HashMap::new(),
            secrets: HashMap::new(),
        };
        if !refresh_only {
            let dir = round.pod_dir.join("volumes");
            blocking(move || {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o750)
                    .create(dir)
            })
            .await
            .map_err(|e| VolumeError::SetUp {
                volume: String::new(),
                message: e.to_string(),
            })?;
        }
        let mut first_error = None;
        for vol in spec.and_then(|s| s.volumes.as_ref()).into_iter().flatten() {
            let existing = entry.ready.lock().get(&vol.name).cloned();
            match (&existing, refresh_only) {
                (None, true) => continue,
                (Some(r), _) if !r.refreshed => continue,
                _ => {}
            }
            match self.set_up_volume(&mut round, vol).await {
                Ok(ready) => {
                    entry.ready.lock().insert(vol.name.clone(), ready);
                }
                Err(e) => {
                    tracing::warn!(pod = %round.uid, volume = %vol.name, error = %e, "volume setup failed");
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn set_up_volume(
        &self,
        r: &mut Round<'_>,
        vol: &Volume,
    ) -> Result<ReadyVolume, VolumeError> {
        let name = vol.name.clone();
        let setup_err = |message: String| VolumeError::SetUp {
            volume: name.clone(),
            message,
        };
        let pod_dir = r.pod_dir.clone();
        let dir = |plugin: &str| pod_dir.join("volumes").join(plugin).join(&vol.name);
        if let Some(ed) = &vol.empty_dir {
            let memory = match ed.medium.as_deref().unwrap_or("") {
                "" => false,
                "Memory" => true,
                other => {
                    return Err(setup_err(format!(
                        "emptyDir medium {other:?} is not supported by this kubelet"
                    )))
                }
            };
            let size = if memory {
                let limit = ed
                    .size_limit
                    .as_ref()
                    .and_then(|q| Quantity::parse(&q.0).ok());
                let alloc = self.node_allocatable().await;
                emptydir::memory_size(r.pod, limit.as_ref(), alloc.get("memory"))
            } else {
                None
            };
            let d = dir(emptydir::PLUGIN);
            let meta = emptydir::meta_dir(&r.pod_dir, &vol.name);
            let fs_group = r.fs_group;
            blocking(move || emptydir::set_up(&d, &meta, memory, size, fs_group))
                .await
                .map_err(|e| setup_err(e.to_string()))?;
            return Ok(ReadyVolume {
                host_path: dir(emptydir::PLUGIN),
                read_only: false,
                refreshed: false,
            });
        }
        if let Some(hp) = &vol.host_path {
            let (path, type_) = (hp.path.clone(), hp.type_.clone().unwrap_or_default());
            blocking(move || hostpath::set_up(&path, &type_).map_err(std::io::Error::other))
                .await
                .map_err(|e| setup_err(e.to_string()))?;
            return Ok(ReadyVolume {
                host_path: PathBuf::from(&hp.path),
                read_only: false,
                refreshed: false,
            });
        }
        if let Some(cm) = &vol.config_map {
            let optional = cm.optional.unwrap_or(false);
            let items = cm.items.clone().unwrap_or_default();
            let mode = cm.default_mode.unwrap_or(payload::DEFAULT_MODE);
            let payload = match self.configmap(r, &cm.name).await.map_err(&setup_err)? {
                Some(obj) => payload::configmap_payload(
                    &items,
                    &obj.data.unwrap_or_default(),
                    &obj.binary_data.unwrap_or_default(),
                    mode,
                    optional,
                ),
                None if optional => payload::configmap_payload(
                    &items,
                    &BTreeMap::new(),
                    &BTreeMap::new(),
                    mode,
                    true,
                ),
                None => Err(format!("configmap {} not found", go_quote(&cm.name))),
            }
            .map_err(&setup_err)?;
            return self
                .write_wrapped(r, dir(CONFIGMAP_PLUGIN), &vol.name, false, payload)
                .await
                .map_err(setup_err);
        }
        if let Some(s) = &vol.secret {
            let secret_name = s.secret_name.clone().unwrap_or_default();
            let optional = s.optional.unwrap_or(false);
            let items = s.items.clone().unwrap_or_default();
            let mode = s.default_mode.unwrap_or(payload::DEFAULT_MODE);
            let payload = match self.secret(r, &secret_name).await.map_err(&setup_err)? {
                Some(obj) => {
                    payload::secret_payload(&items, &obj.data.unwrap_or_default(), mode, optional)
                }
                None if optional => payload::secret_payload(&items, &BTreeMap::new(), mode, true),
                None => Err(format!("secret {} not found", go_quote(&secret_name))),
            }
            .map_err(&setup_err)?;
            return self
                .write_wrapped(r, dir(SECRET_PLUGIN), &vol.name, true, payload)
                .await
                .map_err(setup_err);
        }
        if let Some(d) = &vol.downward_api {
            let alloc = if needs_allocatable(d.items.iter().flatten()) {
                self.node_allocatable().await
            } else {
                BTreeMap::new()
            };
            let payload = payload::downward_api_payload(
                d.items.as_deref().unwrap_or_default(),
                r.pod,
                &alloc,
                d.default_mode.unwrap_or(payload::DEFAULT_MODE),
            )
            .map_err(&setup_err)?;
            return self
                .write_wrapped(r, dir(DOWNWARD_API_PLUGIN), &vol.name, false, payload)
                .await
                .map_err(setup_err);
        }
        if let Some(p) = &vol.projected {
            let payload = self.projected_payload(r, p).await.map_err(&setup_err)?;
            return self
                .write_wrapped(r, dir(PROJECTED_PLUGIN), &vol.name, true, payload)
                .await
                .map_err(setup_err);
        }
        if let Some(c) = &vol.persistent_volume_claim {
            return self.set_up_claim(r, vol, c).await;
        }
        Err(setup_err(format!(
            "volume type {} is not supported by this kubelet",
            volume_type(vol)
        )))
    }

    /// A configMap, secret, downwardAPI or projected volume: the emptyDir underneath (on
    /// tmpfs when `memory`), the payload written atomically, fsGroup applied to the new
    /// version before it is published.
    async fn write_wrapped(
        &self,
        r: &Round<'_>,
        dir: PathBuf,
        volume: &str,
        memory: bool,
        payload: Payload,
    ) -> Result<ReadyVolume, String> {
        let size = if memory {
            let alloc = self.node_allocatable().await;
            emptydir::memory_size(r.pod, None, alloc.get("memory"))
        } else {
            None
        };
        let meta = emptydir::meta_dir(&r.pod_dir, volume);
        let fs_group = r.fs_group;
        let d = dir.clone();
        blocking(move || {
            emptydir::set_up(&d, &meta, memory, size, fs_group)?;
            let perms_dir = d.clone();
            let set_perms =
                move |_: &Path| ownership::set_volume_ownership(&perms_dir, fs_group, None, true);
            let perms: Option<atomic_writer::SetPerms<'_>> = if fs_group.is_some() {
                Some(&set_perms)
            } else {
                None
            };
            atomic_writer::write(&d, &payload, perms).map(drop)
        })
        .await
        .map_err(|e| e.to_string())?;
        Ok(ReadyVolume {
            host_path: dir,
            read_only: true,
            refreshed: true,
        })
    }

    async fn projected_payload(
        &self,
        r: &mut Round<'_>,
        p: &k8s_openapi::api::core::v1::ProjectedVolumeSource,
    ) -> Result<Payload, String> {
        let default_mode = p.default_mode.unwrap_or(payload::DEFAULT_MODE);
        let mut out = Payload::new();
        let mut errors = Vec::new();
        for source in p.sources.iter().flatten() {
            let part = if let Some(s) = &source.secret {
                let optional = s.optional.unwrap_or(false);
                let items = s.items.clone().unwrap_or_default();
                match self.secret(r, &s.name).await {
                    Ok(Some(obj)) => payload::secret_payload(
                        &items,
                        &obj.data.unwrap_or_default(),
                        default_mode,
                        optional,
                    ),
                    Ok(None) if optional => {
                        payload::secret_payload(&items, &BTreeMap::new(), default_mode, true)
                    }
                    Ok(None) => Err(format!("secret {} not found", go_quote(&s.name))),
                    Err(e) => Err(e),
                }
            } else if let Some(c) = &source.config_map {
                let optional = c.optional.unwrap_or(false);
                let items = c.items.clone().unwrap_or_default();
                match self.configmap(r, &c.name).await {
                    Ok(Some(obj)) => payload::configmap_payload(
                        &items,
                        &obj.data.unwrap_or_default(),
                        &obj.binary_data.unwrap_or_default(),
                        default_mode,
                        optional,
                    ),
                    Ok(None) if optional => payload::configmap_payload(
                        &items,
                        &BTreeMap::new(),
                        &BTreeMap::new(),
                        default_mode,
                        true,
                    ),
                    Ok(None) => Err(format!("configmap {} not found", go_quote(&c.name))),
                    Err(e) => Err(e),
                }
            } else if let Some(d) = &source.downward_api {
                let alloc = if needs_allocatable(d.items.iter().flatten()) {
                    self.node_allocatable().await
                } else {
                    BTreeMap::new()
                };
                payload::downward_api_payload(
                    d.items.as_deref().unwrap_or_default(),
                    r.pod,
                    &alloc,
                    default_mode,
                )
            } else if let Some(t) = &source.service_account_token {
                // With fsGroup the ownership step turns 0600 into 0640.
                let mode = if r.fs_user.is_some() || r.fs_group.is_some() {
                    0o600
                } else {
                    u32::try_from(default_mode).unwrap_or(0o644)
                };
                match self.service_account_token(r, t).await {
                    Ok(tok) => {
                        let mut f = atomic_writer::FileProjection::new(tok.into_bytes(), mode);
                        f.fs_user = r.fs_user.and_then(|u| u32::try_from(u).ok());
                        Ok([(t.path.clone(), f)].into())
                    }
                    Err(e) => Err(e),
                }
            } else {
                // clusterTrustBundle (beta, off by default upstream) is not supported.
                Ok(Payload::new())
            };
            match part {
                Ok(files) => out.extend(files),
                Err(e) => errors.push(e),
            }
        }
        match payload::aggregate(&errors) {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    async fn set_up_claim(
        &self,
        r: &Round<'_>,
        vol: &Volume,
        c: &k8s_openapi::api::core::v1::PersistentVolumeClaimVolumeSource,
    ) -> Result<ReadyVolume, VolumeError> {
        let process_err = |m: String| VolumeError::Process {
            volume: vol.name.clone(),
            message: format!("error processing PVC {}/{}: {m}", r.namespace, c.claim_name),
        };
        let claim = Api::<PersistentVolumeClaim>::namespaced(self.client.clone(), &r.namespace)
            .get(&c.claim_name)
            .await
            .map_err(|e| {
                process_err(format!(
                    "failed to fetch PVC from API server: {}",
                    api_message(&e)
                ))
            })?;
        let (pv_name, claim_uid) = pvc::check_claim(&claim).map_err(process_err)?;
        let pv = Api::<PersistentVolume>::all(self.client.clone())
            .get(&pv_name)
            .await
            .map_err(|e| {
                process_err(format!(
                    "failed to fetch PV {pv_name} from API server: {}",
                    api_message(&e)
                ))
            })?;
        let source = pvc::check_volume(&pv, &claim_uid).map_err(process_err)?;
        let read_only = c.read_only.unwrap_or(false);
        let setup_err = |message: String| VolumeError::SetUp {
            volume: vol.name.clone(),
            message,
        };
        match source {
            pvc::Source::HostPath { path, type_ } => {
                let p = path.clone();
                blocking(move || hostpath::set_up(&p, &type_).map_err(std::io::Error::other))
                    .await
                    .map_err(|e| setup_err(e.to_string()))?;
                Ok(ReadyVolume {
                    host_path: PathBuf::from(path),
                    read_only,
                    refreshed: false,
                })
            }
            pvc::Source::Local { path } => {
                let dir = r
                    .pod_dir
                    .join("volumes")
                    .join(pvc::LOCAL_PLUGIN)
                    .join(&pv_name);
                let d = dir.clone();
                let fs_group = r.fs_group;
                let policy = r.fs_group_policy.clone();
                blocking(move || set_up_local(&path, &d, read_only, fs_group, policy.as_deref()))
                    .await
                    .map_err(|e| setup_err(e.to_string()))?;
                Ok(ReadyVolume {
                    host_path: dir,
                    read_only,
                    refreshed: false,
                })
            }
        }
    }

    /// The CRI mounts of one container's volumeMounts (readOnly, mountPropagation → CRI
    /// propagation, subPath and subPathExpr expanded with `env`, the container's resolved
    /// environment; subPath dirs created as upstream does and checked against escaping the
    /// volume). The pod's volumes must have been set up.
    pub fn container_mounts(
        &self,
        pod: &Pod,
        container: &Container,
        env: &BTreeMap<String, String>,
    ) -> Result<Vec<k8s_cri::v1::Mount>, VolumeError> {
        let uid = pod_uid(pod)?;
        let ready = self
            .pods
            .lock()
            .get(&uid)
            .map(|e| e.ready.lock().clone())
            .unwrap_or_default();
        let pod_dir = self.pod_dir(&uid);
        let supports_rro = self.runtime_supports_rro.load(Ordering::Relaxed);
        let err = |message: String| VolumeError::ContainerMount {
            container: container.name.clone(),
            message,
        };
        let mut out = Vec::new();
        for (i, m) in container.volume_mounts.iter().flatten().enumerate() {
            let Some(vol) = ready.get(&m.name) else {
                return Err(err(format!(
                    "cannot find volume {} to mount into container {}",
                    go_quote(&m.name),
                    go_quote(&container.name)
                )));
            };
            let rro = container::resolve_recursive_read_only(m, supports_rro).map_err(err)?;
            let mut host_path = vol.host_path.clone();
            let mut sub = m.sub_path.clone().unwrap_or_default();
            if let Some(expr) = m.sub_path_expr.as_deref().filter(|e| !e.is_empty()) {
                sub = subpath::expand_subpath_expr(expr, env).map_err(err)?;
            }
            if !sub.is_empty() {
                subpath::validate_subpath(&sub).map_err(err)?;
                let volume_path = host_path.clone();
                let full = volume_path.join(&sub);
                match full.try_exists() {
                    Ok(true) => {}
                    Ok(false) => {
                        // Created now so it gets the volume root's mode (and, through the
                        // root's setgid, its fsGroup), not what the runtime would give it.
                        let made = std::fs::metadata(&volume_path).and_then(|meta| {
                            subpath::safe_make_dir(&sub, &volume_path, meta.mode())
                        });
                        if let Err(e) = made {
                            tracing::warn!(container = %container.name, mount = %m.name, error = %e, "creating a subPath directory failed");
                            return Err(err(format!(
                                "failed to create subPath directory for volumeMount {} of container {}",
                                go_quote(&m.name),
                                go_quote(&container.name)
                            )));
                        }
                    }
                    Err(e) => {
                        tracing::warn!(path = %full.display(), error = %e, "could not determine whether the subPath exists");
                    }
                }
                let target = subpath::bind_target(&pod_dir, &m.name, &container.name, i);
                host_path = subpath::bind_subpath(&full, &volume_path, &target).map_err(|e| {
                    tracing::warn!(container = %container.name, mount = %m.name, error = %e, "preparing a subPath failed");
                    err(format!(
                        "failed to prepare subPath for volumeMount {} of container {}",
                        go_quote(&m.name),
                        go_quote(&container.name)
                    ))
                })?;
            }
            let propagation =
                container::translate_propagation(m.mount_propagation.as_deref()).map_err(err)?;
            out.push(k8s_cri::v1::Mount {
                container_path: m.mount_path.clone(),
                host_path: host_path.to_string_lossy().into_owned(),
                readonly: m.read_only.unwrap_or(false) || vol.read_only,
                selinux_relabel: false,
                propagation: propagation as i32,
                recursive_read_only: rro,
                ..Default::default()
            });
        }
        Ok(out)
    }

    /// Unmounts and removes everything of the pod (after its containers and sandbox are
    /// gone): subPath binds, tmpfs and local-volume mounts, then `<pods_dir>/<uid>` itself,
    /// never crossing into a mount that could not be undone.
    pub async fn teardown(&self, pod_uid: &str) -> Result<(), VolumeError> {
        let entry = self.pods.lock().remove(pod_uid);
        let _guard = match &entry {
            Some(e) => {
                let g = e.lock.clone().lock_owned().await;
                e.gone.store(true, Ordering::Release);
                Some(g)
            }
            None => None,
        };
        self.tokens.lock().retain(|k, _| k.pod_uid != pod_uid);
        let dir = self.pod_dir(pod_uid);
        blocking(move || tear_down_pod_dir(&dir))
            .await
            .map_err(|e| VolumeError::TearDown {
                pod_uid: pod_uid.to_string(),
                message: e.to_string(),
            })
    }

    /// Keeps configMap, secret, downwardAPI and projected volumes (including the
    /// serviceAccountToken, rotated when 80% of its lifetime or 24 h has passed, as
    /// upstream) of the given pods up to date; the main session calls this with the node's
    /// running pods. Pods never set up (or torn down) are skipped.
    pub fn spawn_refresher(
        self: Arc<Self>,
        pods: Arc<dyn Fn() -> Vec<Pod> + Send + Sync>,
        period: Duration,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                for pod in pods() {
                    if let Err(e) = self.refresh(&pod).await {
                        tracing::warn!(pod = ?pod.metadata.name, error = %e, "refreshing volumes failed");
                    }
                }
                // Tokens of pods that are gone are dropped.
                let live: std::collections::HashSet<String> =
                    self.pods.lock().keys().cloned().collect();
                self.tokens.lock().retain(|k, _| live.contains(&k.pod_uid));
            }
        })
    }

    /// When one of the pod's emptyDir volumes uses more than its `sizeLimit`, the message
    /// upstream's eviction manager evicts the pod with (`Usage of EmptyDir volume "x"
    /// exceeds the limit "1Gi". `). Measures usage as `du` does; blocking.
    pub fn emptydir_over_limit(&self, pod: &Pod) -> Option<String> {
        let uid = pod.metadata.uid.as_deref()?;
        let mut usage = BTreeMap::new();
        for v in pod.spec.as_ref()?.volumes.iter().flatten() {
            let Some(ed) = &v.empty_dir else { continue };
            if ed.size_limit.is_none() {
                continue;
            }
            let dir = self.volume_dir(uid, emptydir::PLUGIN, &v.name);
            match emptydir::disk_usage(&dir) {
                Ok(u) => {
                    usage.insert(v.name.clone(), u);
                }
                Err(e) => {
                    tracing::debug!(dir = %dir.display(), error = %e, "measuring emptyDir usage")
                }
            }
        }
        emptydir::limit_violation(pod, &usage)
    }

    async fn configmap(&self, r: &mut Round<'_>, name: &str) -> Result<Option<ConfigMap>, String> {
        if let Some(v) = r.configmaps.get(name) {
            return v.clone();
        }
        let v = Api::<ConfigMap>::namespaced(self.client.clone(), &r.namespace)
            .get_opt(name)
            .await
            .map_err(|e| api_message(&e));
        r.configmaps.insert(name.to_string(), v.clone());
        v
    }

    async fn secret(&self, r: &mut Round<'_>, name: &str) -> Result<Option<Secret>, String> {
        if let Some(v) = r.secrets.get(name) {
            return v.clone();
        }
        let v = Api::<Secret>::namespaced(self.client.clone(), &r.namespace)
            .get_opt(name)
            .await
            .map_err(|e| api_message(&e));
        r.secrets.insert(name.to_string(), v.clone());
        v
    }

    /// The node's allocatable resources, reused for a minute; empty when the node cannot be
    /// read (limits then stay unset, tmpfs sizes at the kernel's default).
    async fn node_allocatable(&self) -> BTreeMap<String, Quantity> {
        if let Some((at, v)) = self.allocatable.lock().as_ref() {
            if at.elapsed() < ALLOCATABLE_TTL {
                return v.clone();
            }
        }
        let v = match Api::<Node>::all(self.client.clone())
            .get(&self.node_name)
            .await
        {
            Ok(node) => node
                .status
                .and_then(|s| s.allocatable)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(k, q)| Some((k, Quantity::parse(&q.0).ok()?)))
                .collect(),
            Err(e) => {
                tracing::warn!(node = %self.node_name, error = %e, "reading the node's allocatable resources");
                BTreeMap::new()
            }
        };
        *self.allocatable.lock() = Some((Instant::now(), v.clone()));
        v
    }

    /// A bound token for the projection, from the cache unless it is due for renewal.
    async fn service_account_token(
        &self,
        r: &Round<'_>,
        t: &ServiceAccountTokenProjection,
    ) -> Result<String, String> {
        let sa = r
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "default".into());
        let key = TokenKey {
            namespace: r.namespace.clone(),
            service_account: sa,
            audiences: t
                .audience
                .clone()
                .filter(|a| !a.is_empty())
                .into_iter()
                .collect(),
            expiration_seconds: t.expiration_seconds,
            pod_name: r.pod.metadata.name.clone().unwrap_or_default(),
            pod_uid: r.uid.clone(),
        };
        let now = jiff::Timestamp::now();
        let cached = self.tokens.lock().get(&key).cloned();
        if let Some(c) = &cached {
            if !token::requires_refresh(now, c, token::jitter()) {
                return Ok(c.token.clone());
            }
        }
        match self.request_token(&key).await {
            Ok(t) => {
                let tok = t.token.clone();
                self.tokens.lock().insert(key, t);
                Ok(tok)
            }
            Err(e) => match cached {
                None => Err(format!("failed to fetch token: {e}")),
                Some(c) if token::expired(now, &c) => Err(format!(
                    "token {}/{} expired and refresh failed: {e}",
                    key.namespace, key.service_account
                )),
                Some(c) => {
                    tracing::warn!(namespace = %key.namespace, service_account = %key.service_account, error = %e, "couldn't update token");
                    Ok(c.token)
                }
            },
        }
    }

    async fn request_token(&self, key: &TokenKey) -> Result<CachedToken, String> {
        let req = TokenRequest {
            spec: TokenRequestSpec {
                audiences: key.audiences.clone(),
                expiration_seconds: key.expiration_seconds,
                bound_object_ref: Some(BoundObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Pod".into()),
                    name: Some(key.pod_name.clone()),
                    uid: Some(key.pod_uid.clone()),
                }),
            },
            ..Default::default()
        };
        let answer = Api::<ServiceAccount>::namespaced(self.client.clone(), &key.namespace)
            .create_token_request(&key.service_account, &PostParams::default(), &req)
            .await
            .map_err(|e| api_message(&e))?;
        let status = answer
            .status
            .ok_or("the TokenRequest answer has no status")?;
        Ok(CachedToken {
            token: status.token,
            expiration_seconds: answer.spec.expiration_seconds.or(key.expiration_seconds),
            expires_at: status.expiration_timestamp.0,
        })
    }
}

/// A local PersistentVolume: bind-mounted (read-only if asked) onto the pod's volume
/// directory, with fsGroup applied (per the pod's fsGroupChangePolicy) unless read-only.
fn set_up_local(
    path: &str,
    dir: &Path,
    read_only: bool,
    fs_group: Option<i64>,
    policy: Option<&str>,
) -> std::io::Result<()> {
    if path.is_empty() {
        return Err(std::io::Error::other("LocalVolume path is empty"));
    }
    hostpath::validate_no_backsteps(path)
        .map_err(|e| std::io::Error::other(format!("invalid path: {path} {e}")))?;
    if mounts::is_mount_point(dir)? {
        return Ok(());
    }
    let source = Path::new(path);
    if !source.exists() {
        return Err(std::io::Error::other(format!(
            "path {path:?} does not exist"
        )));
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o750)
        .create(dir)?;
    mounts::bind_mount(source, dir, read_only)?;
    if !read_only {
        if let Err(e) = ownership::set_volume_ownership(dir, fs_group, policy, false) {
            let _ = mounts::unmount(dir);
            return Err(e);
        }
    }
    Ok(())
}

/// Undoes everything below a pod's directory and removes it.
fn tear_down_pod_dir(dir: &Path) -> std::io::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    subpath::clean_subpaths(dir)?;
    let volumes = dir.join("volumes");
    if volumes.exists() {
        for plugin in std::fs::read_dir(&volumes)? {
            let plugin = plugin?.path();
            if !plugin.is_dir() {
                continue;
            }
            for vol in std::fs::read_dir(&plugin)? {
                let vol = vol?.path();
                mounts::unmount_all_under(&vol)?;
                mounts::remove_all_one_filesystem(&vol)?;
            }
        }
    }
    mounts::unmount_all_under(dir)?;
    mounts::remove_all_one_filesystem(dir)
}

/// Whether downwardAPI items ask for container resources (which need the node's
/// allocatable).
fn needs_allocatable<'a>(
    mut items: impl Iterator<Item = &'a k8s_openapi::api::core::v1::DownwardAPIVolumeFile>,
) -> bool {
    items.any(|i| i.resource_field_ref.is_some())
}

fn pod_uid(pod: &Pod) -> Result<String, VolumeError> {
    pod.metadata
        .uid
        .clone()
        .filter(|u| !u.is_empty())
        .ok_or_else(|| VolumeError::NoUid(pod.metadata.name.clone().unwrap_or_default()))
}

/// The API's message for a failed call (`configmaps "x" is forbidden: ...`).
fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

/// The source field a volume uses, for the unsupported-type message.
fn volume_type(v: &Volume) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|j| {
            j.as_object()
                .and_then(|o| o.keys().find(|k| k.as_str() != "name").cloned())
        })
        .unwrap_or_else(|| "(none)".into())
}

/// Runs file-system work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(std::io::Error::other)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_are_upstreams() {
        let e = VolumeError::SetUp {
            volume: "x".into(),
            message: "configmap \"y\" not found".into(),
        };
        assert_eq!(
            e.to_string(),
            "MountVolume.SetUp failed for volume \"x\" : configmap \"y\" not found"
        );
        assert_eq!(e.reason(), "FailedMount");
        let e = VolumeError::Process {
            volume: "data".into(),
            message: "error processing PVC default/claim: PVC is not bound".into(),
        };
        assert_eq!(
            e.to_string(),
            "Unable to attach or mount volumes: unmounted volumes=[data], unattached volumes=[], failed to process volumes=[data]: error processing PVC default/claim: PVC is not bound"
        );
    }

    #[test]
    fn unsupported_types_are_named() {
        let v: Volume = serde_json::from_value(
            serde_json::json!({"name": "n", "nfs": {"server": "s", "path": "/"}}),
        )
        .unwrap();
        assert_eq!(volume_type(&v), "nfs");
    }
}
