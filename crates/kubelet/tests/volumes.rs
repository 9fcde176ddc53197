//! Pod volumes against an in-process API server, with the kubelet's client confined as
//! `system:node:<name>` by the Node authorizer: files on disk, tmpfs and bind mounts in the
//! mount table, refresh of API-backed contents, upstream's error messages, and (with the
//! supervised containerd) what busybox containers see through the CRI mounts.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::apiserver_vol::VolApi;
use k8s_openapi::api::authentication::v1::TokenReview;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, PersistentVolume, PersistentVolumeClaim, Pod, Secret,
};
use kube::api::{Api, Patch, PatchParams, PostParams};
use rkube_kubelet::volumes::{mounts, VolumeError, VolumeManager};
use serde_json::{json, Value};

const NODE: &str = "n1";

/// A temporary kubelet root (`pods` below it) under /tmp. Dropping it (also when a test
/// fails) unmounts whatever is still mounted below it before the directory goes.
struct KubeletRoot(Option<tempfile::TempDir>);

impl KubeletRoot {
    fn path(&self) -> &Path {
        self.0.as_ref().expect("root").path()
    }
}

impl Drop for KubeletRoot {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            if let Err(e) = mounts::unmount_all_under(dir.path()) {
                eprintln!("unmounting below {}: {e}", dir.path().display());
            }
            drop(dir);
        }
    }
}

fn kubelet_root() -> KubeletRoot {
    KubeletRoot(Some(
        tempfile::Builder::new()
            .prefix("rkv")
            .tempdir_in("/tmp")
            .expect("tempdir"),
    ))
}

async fn create<K>(client: &kube::Client, ns: &str, obj: Value) -> K
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
    <K as kube::Resource>::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    let obj: K = serde_json::from_value(obj).expect("object");
    api.create(&PostParams::default(), &obj)
        .await
        .expect("creating an object")
}

/// Polls `check` every 50 ms until it yields a value, for at most 15 s.
async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).expect("stat").permissions().mode() & 0o7777
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

/// The mounts at or below `dir`.
fn mounts_below(dir: &Path) -> Vec<mounts::MountEntry> {
    mounts::mounts_under(dir).expect("mount table")
}

/// Reviews `token` as the API server does for a client; the username if authenticated.
async fn review(api: &VolApi, token: &str, audiences: &[&str]) -> Option<String> {
    let reviews: Api<TokenReview> = Api::all(api.admin.clone());
    let r: TokenReview = serde_json::from_value(json!({
        "spec": {"token": token, "audiences": audiences},
    }))
    .expect("review");
    let out = reviews
        .create(&PostParams::default(), &r)
        .await
        .expect("TokenReview");
    let status = out.status.expect("review status");
    if status.authenticated != Some(true) {
        eprintln!("token review: {:?}", status.error);
        return None;
    }
    status.user.and_then(|u| u.username)
}

/// The plugin directory of a pod's volume.
fn vol_dir(root: &Path, pod: &Pod, plugin: &str, name: &str) -> PathBuf {
    root.join("pods")
        .join(pod.metadata.uid.as_deref().expect("uid"))
        .join("volumes")
        .join(plugin)
        .join(name)
}

async fn setup_namespace(api: &VolApi, ns: &str) {
    api.namespace(ns).await;
    create::<ConfigMap>(
        &api.admin,
        ns,
        json!({"metadata": {"name": "cfg"}, "data": {"a": "1", "b": "2"}, "binaryData": {"bin": "AAE="}}),
    )
    .await;
    create::<Secret>(
        &api.admin,
        ns,
        json!({"metadata": {"name": "sec"}, "stringData": {"password": "hunter2"}}),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn api_backed_volumes_are_projected_atomically_with_modes_fs_group_and_refreshes() {
    if !common::prerequisites() {
        return;
    }
    let api = VolApi::with_service_accounts().await;
    let ns = "team";
    setup_namespace(&api, ns).await;
    api.node(NODE, "4", "8Gi").await;
    let pod: Pod = create(
        &api.admin,
        ns,
        json!({
            "metadata": {"name": "web", "labels": {"app": "web", "tier": "front"}},
            "spec": {
                "nodeName": NODE,
                "securityContext": {"fsGroup": 2345},
                "containers": [{
                    "name": "c", "image": "busybox",
                    "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}},
                }],
                "volumes": [
                    {"name": "cfg", "configMap": {"name": "cfg", "items": [{"key": "a", "path": "dir/a.txt", "mode": 0o600}]}},
                    {"name": "cfg-all", "configMap": {"name": "cfg", "defaultMode": 0o640}},
                    {"name": "sec", "secret": {"secretName": "sec", "defaultMode": 0o400}},
                    {"name": "info", "downwardAPI": {"items": [
                        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                        {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
                        {"path": "cpu", "resourceFieldRef": {"containerName": "c", "resource": "limits.cpu", "divisor": "1m"}},
                        {"path": "mem", "resourceFieldRef": {"containerName": "c", "resource": "requests.memory", "divisor": "1Mi"}},
                        {"path": "eph", "resourceFieldRef": {"containerName": "c", "resource": "limits.ephemeral-storage", "divisor": "1Gi"}},
                    ]}},
                    {"name": "all-in-one", "projected": {"sources": [
                        {"configMap": {"name": "cfg", "optional": true, "items": [{"key": "b", "path": "b"}]}},
                        {"secret": {"name": "sec"}},
                        {"downwardAPI": {"items": [{"path": "uid", "fieldRef": {"fieldPath": "metadata.uid"}}]}},
                        {"serviceAccountToken": {"audience": "vault", "expirationSeconds": 3600, "path": "vault-token"}},
                    ]}},
                ],
            },
        }),
    )
    .await;
    let root = kubelet_root();
    let vm = Arc::new(VolumeManager::new(
        api.node_client(NODE),
        root.path().join("pods"),
        NODE.into(),
    ));
    vm.setup(&pod).await.expect("setup");

    // configMap with items: a visible link through ..data, the mode, fsGroup
    let cfg = vol_dir(root.path(), &pod, "kubernetes.io~configmap", "cfg");
    assert_eq!(
        std::fs::read_link(cfg.join("dir")).unwrap(),
        Path::new("..data/dir")
    );
    let first_version = std::fs::read_link(cfg.join("..data")).unwrap();
    assert!(
        first_version.to_string_lossy().starts_with("..20"),
        "{first_version:?}"
    );
    assert_eq!(read(&cfg.join("dir/a.txt")), "1");
    assert_eq!(
        mode(&cfg.join("dir/a.txt")),
        0o640,
        "0600 plus fsGroup's g+r"
    );
    assert_eq!(
        std::fs::metadata(cfg.join("dir/a.txt")).unwrap().gid(),
        2345
    );
    assert!(!cfg.join("b").exists());
    assert_eq!(mode(&cfg) & 0o777, 0o777);
    assert!(
        mounts_below(&cfg).is_empty(),
        "configMap volumes are on disk"
    );

    let all = vol_dir(root.path(), &pod, "kubernetes.io~configmap", "cfg-all");
    assert_eq!(read(&all.join("a")), "1");
    assert_eq!(read(&all.join("b")), "2");
    assert_eq!(std::fs::read(all.join("bin")).unwrap(), vec![0u8, 1]);
    assert_eq!(mode(&all.join("b")), 0o640);

    // secret: on a tmpfs
    let sec = vol_dir(root.path(), &pod, "kubernetes.io~secret", "sec");
    assert_eq!(read(&sec.join("password")), "hunter2");
    assert_eq!(mode(&sec.join("password")), 0o440);
    let m = mounts_below(&sec);
    assert_eq!(m.len(), 1, "{m:?}");
    assert_eq!(m[0].fs_type, "tmpfs");
    assert_eq!(m[0].mount_point, sec);

    // downward API: labels as upstream formats them, limits and requests
    let info = vol_dir(root.path(), &pod, "kubernetes.io~downward-api", "info");
    assert_eq!(read(&info.join("labels")), "app=\"web\"\ntier=\"front\"");
    assert_eq!(read(&info.join("name")), "web");
    assert_eq!(read(&info.join("cpu")), "500");
    assert_eq!(
        read(&info.join("mem")),
        "64",
        "requests default to the limits"
    );
    assert_eq!(
        read(&info.join("eph")),
        "10",
        "an unset limit is the node's allocatable"
    );

    // projected: every source, on a tmpfs; the token's mode is 0600 + fsGroup
    let proj = vol_dir(root.path(), &pod, "kubernetes.io~projected", "all-in-one");
    assert_eq!(read(&proj.join("b")), "2");
    assert_eq!(read(&proj.join("password")), "hunter2");
    assert_eq!(read(&proj.join("uid")), pod.metadata.uid.clone().unwrap());
    assert_eq!(mode(&proj.join("vault-token")), 0o640);
    assert_eq!(mounts_below(&proj)[0].fs_type, "tmpfs");
    let vault_token = read(&proj.join("vault-token"));
    assert_eq!(
        review(&api, &vault_token, &["vault"]).await.as_deref(),
        Some("system:serviceaccount:team:default")
    );
    assert_eq!(
        review(&api, &vault_token, &[]).await,
        None,
        "the token is for vault only"
    );

    // the ServiceAccount admission plugin's kube-api-access volume
    let access = pod
        .spec
        .as_ref()
        .unwrap()
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name.starts_with("kube-api-access-"))
        .expect("kube-api-access volume")
        .name
        .clone();
    let sa = vol_dir(root.path(), &pod, "kubernetes.io~projected", &access);
    assert_eq!(read(&sa.join("namespace")), "team");
    assert!(read(&sa.join("ca.crt")).starts_with("-----BEGIN CERTIFICATE-----"));
    let api_token = read(&sa.join("token"));
    assert_eq!(
        review(&api, &api_token, &[]).await.as_deref(),
        Some("system:serviceaccount:team:default")
    );

    // setup again: nothing rewritten
    vm.setup(&pod).await.expect("second setup");
    assert_eq!(
        std::fs::read_link(cfg.join("..data")).unwrap(),
        first_version
    );
    assert_eq!(
        read(&sa.join("token")),
        api_token,
        "the cached token is reused"
    );

    // the refresher picks up a changed config map, removed key and relabelled pod
    let current = Arc::new(parking_lot::Mutex::new(vec![pod.clone()]));
    let list = current.clone();
    let refresher = vm.clone().spawn_refresher(
        Arc::new(move || list.lock().clone()),
        Duration::from_millis(100),
    );
    let cms: Api<ConfigMap> = Api::namespaced(api.admin.clone(), ns);
    cms.patch(
        "cfg",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"a": "updated", "b": null}})),
    )
    .await
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(api.admin.clone(), ns);
    let relabelled = pods
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"tier": "back"}}})),
        )
        .await
        .unwrap();
    *current.lock() = vec![relabelled];
    wait_for("the config map update", || {
        let f = cfg.join("dir/a.txt");
        async move { (std::fs::read_to_string(f).ok()? == "updated").then_some(()) }
    })
    .await;
    assert_ne!(
        std::fs::read_link(cfg.join("..data")).unwrap(),
        first_version
    );
    assert!(
        !cfg.join(&first_version).exists(),
        "the old version is removed"
    );
    wait_for("the removed key to go", || {
        let b = all.join("b");
        async move { std::fs::symlink_metadata(b).is_err().then_some(()) }
    })
    .await;
    wait_for("the relabelled pod", || {
        let f = info.join("labels");
        async move { (std::fs::read_to_string(f).ok()? == "app=\"web\"\ntier=\"back\"").then_some(()) }
    })
    .await;
    wait_for("the projected config map key to go", || {
        let f = proj.join("b");
        async move { std::fs::symlink_metadata(f).is_err().then_some(()) }
    })
    .await;
    assert_eq!(read(&proj.join("password")), "hunter2");

    // teardown: mounts and directories gone, and the refresher leaves the pod alone
    vm.teardown(pod.metadata.uid.as_deref().unwrap())
        .await
        .expect("teardown");
    let pod_dir = root
        .path()
        .join("pods")
        .join(pod.metadata.uid.as_deref().unwrap());
    assert!(!pod_dir.exists());
    assert!(mounts_below(root.path()).is_empty());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!pod_dir.exists(), "the refresher recreated a torn-down pod");
    refresher.abort();
    // a second teardown is a no-op
    vm.teardown(pod.metadata.uid.as_deref().unwrap())
        .await
        .unwrap();
}

/// A local PV and a hostPath PV bound to claims of `ns`.
async fn bound_claim(api: &VolApi, ns: &str, claim: &str, pv: &str, source: Value) {
    let pvc: PersistentVolumeClaim = create(
        &api.admin,
        ns,
        json!({
            "metadata": {"name": claim},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
                "volumeName": pv,
                "storageClassName": "",
            },
        }),
    )
    .await;
    let mut spec = json!({
        "capacity": {"storage": "1Gi"},
        "accessModes": ["ReadWriteOnce"],
        "storageClassName": "",
        "claimRef": {"namespace": ns, "name": claim, "uid": pvc.metadata.uid},
        "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": [NODE]},
        ]}]}},
    });
    for (k, v) in source.as_object().expect("a PV source object") {
        spec[k] = v.clone();
    }
    let pvs: Api<PersistentVolume> = Api::all(api.admin.clone());
    pvs.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": pv}, "spec": spec})).expect("PV"),
    )
    .await
    .expect("creating the PV");
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(api.admin.clone(), ns);
    pvcs.patch_status(
        claim,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Bound"}})),
    )
    .await
    .expect("binding the claim");
}

fn container(v: Value) -> Container {
    serde_json::from_value(v).expect("container")
}

#[tokio::test(flavor = "multi_thread")]
async fn emptydirs_hostpaths_and_claims_are_set_up_mounted_and_torn_down() {
    if !common::prerequisites() {
        return;
    }
    let api = VolApi::with_service_accounts().await;
    let ns = "default";
    api.namespace(ns).await;
    api.node(NODE, "2", "4Gi").await;
    let root = kubelet_root();
    let data = root.path().join("data");
    let local_src = data.join("local");
    let host_src = data.join("host");
    std::fs::create_dir_all(&local_src).unwrap();
    std::fs::create_dir_all(&host_src).unwrap();
    std::fs::write(local_src.join("keep.txt"), "persistent").unwrap();
    bound_claim(
        &api,
        ns,
        "local-claim",
        "pv-local",
        json!({"local": {"path": local_src}}),
    )
    .await;
    bound_claim(
        &api,
        ns,
        "ro-claim",
        "pv-local-ro",
        json!({"local": {"path": local_src}}),
    )
    .await;
    bound_claim(
        &api,
        ns,
        "host-claim",
        "pv-host",
        json!({"hostPath": {"path": host_src, "type": "Directory"}}),
    )
    .await;
    let created_dir = data.join("made/by/kubelet");
    let pod: Pod = create(
        &api.admin,
        ns,
        json!({
            "metadata": {"name": "store"},
            "spec": {
                "nodeName": NODE,
                "automountServiceAccountToken": false,
                "securityContext": {"fsGroup": 3456},
                "containers": [{"name": "c", "image": "busybox", "resources": {"limits": {"memory": "64Mi"}}}],
                "volumes": [
                    {"name": "scratch", "emptyDir": {"sizeLimit": "1Mi"}},
                    {"name": "ram", "emptyDir": {"medium": "Memory", "sizeLimit": "8Mi"}},
                    {"name": "ram-default", "emptyDir": {"medium": "Memory"}},
                    {"name": "made", "hostPath": {"path": created_dir, "type": "DirectoryOrCreate"}},
                    {"name": "local", "persistentVolumeClaim": {"claimName": "local-claim"}},
                    {"name": "local-ro", "persistentVolumeClaim": {"claimName": "ro-claim", "readOnly": true}},
                    {"name": "host", "persistentVolumeClaim": {"claimName": "host-claim"}},
                ],
            },
        }),
    )
    .await;
    let uid = pod.metadata.uid.clone().unwrap();
    let vm = VolumeManager::new(api.node_client(NODE), root.path().join("pods"), NODE.into());
    vm.setup(&pod).await.expect("setup");

    let scratch = vol_dir(root.path(), &pod, "kubernetes.io~empty-dir", "scratch");
    assert_eq!(mode(&scratch), 0o2777, "0777, setgid for fsGroup");
    assert_eq!(std::fs::metadata(&scratch).unwrap().gid(), 3456);
    assert!(mounts_below(&scratch).is_empty());
    let ram = vol_dir(root.path(), &pod, "kubernetes.io~empty-dir", "ram");
    let m = mounts::mount_at(&ram).unwrap().expect("tmpfs mounted");
    assert_eq!(m.fs_type, "tmpfs");
    assert!(m.super_options.iter().any(|o| o == "size=8192k"), "{m:?}");
    let ram_default = vol_dir(root.path(), &pod, "kubernetes.io~empty-dir", "ram-default");
    let m = mounts::mount_at(&ram_default)
        .unwrap()
        .expect("tmpfs mounted");
    assert!(
        m.super_options.iter().any(|o| o == "size=65536k"),
        "the pod's memory limit sizes the tmpfs: {m:?}"
    );
    assert_eq!(mode(&created_dir), 0o755);

    let local = vol_dir(root.path(), &pod, "kubernetes.io~local-volume", "pv-local");
    assert_eq!(read(&local.join("keep.txt")), "persistent");
    assert_eq!(
        std::fs::metadata(local.join("keep.txt")).unwrap().gid(),
        3456
    );
    assert!(!mounts::mount_at(&local)
        .unwrap()
        .unwrap()
        .options
        .contains(&"ro".to_string()));
    let local_ro = vol_dir(
        root.path(),
        &pod,
        "kubernetes.io~local-volume",
        "pv-local-ro",
    );
    let m = mounts::mount_at(&local_ro).unwrap().expect("bind mounted");
    assert!(m.options.contains(&"ro".to_string()), "{m:?}");
    assert!(std::fs::write(local_ro.join("x"), "x").is_err());

    // sizeLimit on disk: measured, reported as upstream's eviction message
    assert_eq!(vm.emptydir_over_limit(&pod), None);
    std::fs::write(scratch.join("big"), vec![7u8; 2 << 20]).unwrap();
    assert_eq!(
        vm.emptydir_over_limit(&pod).as_deref(),
        Some("Usage of EmptyDir volume \"scratch\" exceeds the limit \"1Mi\". ")
    );
    std::fs::remove_file(scratch.join("big")).unwrap();

    // container mounts
    let env: BTreeMap<String, String> = [("POD_NAME".to_string(), "store".to_string())].into();
    let c = container(json!({
        "name": "app", "image": "busybox",
        "volumeMounts": [
            {"name": "scratch", "mountPath": "/scratch"},
            {"name": "scratch", "mountPath": "/logs", "subPathExpr": "logs/$(POD_NAME)"},
            {"name": "made", "mountPath": "/made", "mountPropagation": "HostToContainer"},
            {"name": "local", "mountPath": "/data", "readOnly": true},
            {"name": "local-ro", "mountPath": "/ro"},
            {"name": "host", "mountPath": "/host", "subPath": "sub"},
        ],
    }));
    let mounts_of_c = vm.container_mounts(&pod, &c, &env).expect("mounts");
    let by_path: BTreeMap<&str, &k8s_cri::v1::Mount> = mounts_of_c
        .iter()
        .map(|m| (m.container_path.as_str(), m))
        .collect();
    assert_eq!(by_path["/scratch"].host_path, scratch.to_string_lossy());
    assert!(!by_path["/scratch"].readonly);
    assert_eq!(
        by_path["/scratch"].propagation,
        k8s_cri::v1::MountPropagation::PropagationPrivate as i32
    );
    // the subPath directory was made inside the volume with the root's mode (the first
    // level inheriting the fsGroup through the root's setgid, as upstream), and is
    // bind-mounted under volume-subpaths
    let logs_dir = scratch.join("logs/store");
    assert!(logs_dir.is_dir());
    assert_eq!(mode(&logs_dir), 0o777);
    assert_eq!(mode(&scratch.join("logs")), 0o777);
    assert_eq!(std::fs::metadata(scratch.join("logs")).unwrap().gid(), 3456);
    let pod_dir = root.path().join("pods").join(&uid);
    assert_eq!(
        Path::new(&by_path["/logs"].host_path),
        pod_dir.join("volume-subpaths/scratch/app/1")
    );
    assert!(mounts::is_mount_point(Path::new(&by_path["/logs"].host_path)).unwrap());
    std::fs::write(Path::new(&by_path["/logs"].host_path).join("l"), "log").unwrap();
    assert_eq!(read(&logs_dir.join("l")), "log");
    assert_eq!(by_path["/made"].host_path, created_dir.to_string_lossy());
    assert_eq!(
        by_path["/made"].propagation,
        k8s_cri::v1::MountPropagation::PropagationHostToContainer as i32
    );
    assert_eq!(by_path["/data"].host_path, local.to_string_lossy());
    assert!(by_path["/data"].readonly);
    assert!(
        by_path["/ro"].readonly,
        "a read-only claim mounts read-only"
    );
    assert!(
        host_src.join("sub").is_dir(),
        "subPath created in the hostPath PV"
    );
    assert!(mounts::is_mount_point(Path::new(&by_path["/host"].host_path)).unwrap());
    // asking again (a restarted container) reuses the subPath binds
    let again = vm.container_mounts(&pod, &c, &env).expect("mounts again");
    assert_eq!(again, mounts_of_c);
    assert_eq!(
        mounts_below(&pod_dir.join("volume-subpaths")).len(),
        2,
        "one bind per subPath mount"
    );

    // refusals, as upstream words them
    std::os::unix::fs::symlink("/etc", scratch.join("escape")).unwrap();
    let refusals = [
        (
            json!({"name": "scratch", "mountPath": "/x", "subPath": "escape"}),
            "failed to prepare subPath for volumeMount \"scratch\" of container \"bad\"",
        ),
        (
            json!({"name": "scratch", "mountPath": "/x", "subPath": "escape/sub"}),
            "failed to create subPath directory for volumeMount \"scratch\" of container \"bad\"",
        ),
        (
            json!({"name": "scratch", "mountPath": "/x", "subPath": "../x"}),
            "unable to provision SubPath `../x`: must not contain '..'",
        ),
        (
            json!({"name": "scratch", "mountPath": "/x", "subPath": "/etc"}),
            "error SubPath `/etc` must not be an absolute path",
        ),
        (
            json!({"name": "scratch", "mountPath": "/x", "subPathExpr": "$(NOPE)/$(POD_NAME)"}),
            "missing value for NOPE",
        ),
        (
            json!({"name": "nothere", "mountPath": "/x"}),
            "cannot find volume \"nothere\" to mount into container \"bad\"",
        ),
    ];
    for (mount, want) in refusals {
        let bad = container(json!({"name": "bad", "image": "busybox", "volumeMounts": [mount]}));
        let err = vm.container_mounts(&pod, &bad, &env).unwrap_err();
        assert_eq!(err.to_string(), want);
        assert_eq!(err.reason(), "CreateContainerConfigError");
    }
    assert!(!Path::new("/etc/sub").exists());

    // teardown: every mount gone, the PVs' data untouched
    vm.teardown(&uid).await.expect("teardown");
    assert!(!pod_dir.exists());
    assert!(
        mounts_below(root.path()).is_empty(),
        "{:?}",
        mounts_below(root.path())
    );
    assert_eq!(read(&local_src.join("keep.txt")), "persistent");
    assert!(host_src.join("sub").is_dir());
    assert!(created_dir.is_dir());
}

#[tokio::test(flavor = "multi_thread")]
async fn setup_failures_read_as_upstreams_events_and_spare_the_other_volumes() {
    if !common::prerequisites() {
        return;
    }
    let api = VolApi::with_service_accounts().await;
    let ns = "default";
    setup_namespace(&api, ns).await;
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(api.admin.clone(), ns);
    pvcs.create(
        &PostParams::default(),
        &serde_json::from_value(json!({
            "metadata": {"name": "pending"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, "storageClassName": ""},
        }))
        .unwrap(),
    )
    .await
    .unwrap();
    let root = kubelet_root();
    let vm = VolumeManager::new(api.node_client(NODE), root.path().join("pods"), NODE.into());
    let file = root.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let cases: Vec<(Value, Result<(), String>)> = vec![
        (
            json!({"name": "v", "configMap": {"name": "nope"}}),
            Err("MountVolume.SetUp failed for volume \"v\" : configmap \"nope\" not found".into()),
        ),
        (json!({"name": "v", "configMap": {"name": "nope", "optional": true}}), Ok(())),
        (
            json!({"name": "v", "configMap": {"name": "cfg", "items": [{"key": "zz", "path": "zz"}]}}),
            Err("MountVolume.SetUp failed for volume \"v\" : configmap references non-existent config key: zz".into()),
        ),
        (
            json!({"name": "v", "configMap": {"name": "cfg", "optional": true, "items": [{"key": "zz", "path": "zz"}]}}),
            Ok(()),
        ),
        (
            json!({"name": "v", "secret": {"secretName": "nope"}}),
            Err("MountVolume.SetUp failed for volume \"v\" : secret \"nope\" not found".into()),
        ),
        (
            json!({"name": "v", "secret": {"secretName": "sec", "items": [{"key": "user", "path": "u"}]}}),
            Err("MountVolume.SetUp failed for volume \"v\" : references non-existent secret key: user".into()),
        ),
        (
            json!({"name": "v", "projected": {"sources": [
                {"configMap": {"name": "nope"}},
                {"secret": {"name": "nope2"}},
            ]}}),
            Err("MountVolume.SetUp failed for volume \"v\" : [configmap \"nope\" not found, secret \"nope2\" not found]".into()),
        ),
        (
            json!({"name": "v", "hostPath": {"path": file, "type": "Directory"}}),
            Err(format!("MountVolume.SetUp failed for volume \"v\" : hostPath type check failed: {} is not a directory", file.display())),
        ),
        (
            json!({"name": "v", "hostPath": {"path": root.path(), "type": "Socket"}}),
            Err(format!("MountVolume.SetUp failed for volume \"v\" : hostPath type check failed: {} is not a socket file", root.path().display())),
        ),
        (
            json!({"name": "v", "persistentVolumeClaim": {"claimName": "pending"}}),
            Err("Unable to attach or mount volumes: unmounted volumes=[v], unattached volumes=[], failed to process volumes=[v]: error processing PVC default/pending: PVC is not bound".into()),
        ),
        (
            json!({"name": "v", "persistentVolumeClaim": {"claimName": "gone"}}),
            Err("Unable to attach or mount volumes: unmounted volumes=[v], unattached volumes=[], failed to process volumes=[v]: error processing PVC default/gone: failed to fetch PVC from API server: persistentvolumeclaims \"gone\" not found".into()),
        ),
    ];
    for (i, (volume, want)) in cases.into_iter().enumerate() {
        let pod: Pod = create(
            &api.admin,
            ns,
            json!({
                "metadata": {"name": format!("p{i}")},
                "spec": {
                    "nodeName": NODE,
                    "automountServiceAccountToken": false,
                    "containers": [{"name": "c", "image": "busybox"}],
                    "volumes": [{"name": "ok", "emptyDir": {}}, volume],
                },
            }),
        )
        .await;
        let got = vm.setup(&pod).await.map_err(|e| e.to_string());
        assert_eq!(got, want, "case {i}");
        // the other volume is ready whatever happened to this one
        assert!(
            vol_dir(root.path(), &pod, "kubernetes.io~empty-dir", "ok").is_dir(),
            "case {i}"
        );
        vm.teardown(pod.metadata.uid.as_deref().unwrap())
            .await
            .unwrap();
    }

    // the Node authorizer: a pod bound to another node gives this kubelet nothing
    create::<Secret>(
        &api.admin,
        ns,
        json!({"metadata": {"name": "other-node-secret"}, "stringData": {"k": "v"}}),
    )
    .await;
    let elsewhere: Pod = create(
        &api.admin,
        ns,
        json!({
            "metadata": {"name": "elsewhere"},
            "spec": {
                "nodeName": "n2",
                "automountServiceAccountToken": false,
                "containers": [{"name": "c", "image": "busybox"}],
                "volumes": [{"name": "s", "secret": {"secretName": "other-node-secret"}}],
            },
        }),
    )
    .await;
    let err = vm.setup(&elsewhere).await.unwrap_err();
    assert!(matches!(err, VolumeError::SetUp { .. }), "{err:?}");
    assert_eq!(err.reason(), "FailedMount");
    let msg = err.to_string();
    assert!(
        msg.starts_with("MountVolume.SetUp failed for volume \"s\" : secrets \"other-node-secret\" is forbidden: User \"system:node:n1\" cannot get resource \"secrets\""),
        "{msg}"
    );
    vm.teardown(elsewhere.metadata.uid.as_deref().unwrap())
        .await
        .unwrap();
    assert!(mounts_below(root.path()).is_empty());
}

/// Removes a cgroup tree when dropped (also when a test fails).
struct CgroupGuard(String);

impl Drop for CgroupGuard {
    fn drop(&mut self) {
        let _ = rkube_kubelet::cgroups::remove(&self.0);
    }
}

/// Runs `cmd` in a container; its exit code and output.
async fn exec(cri: &rkube_kubelet::cri::Cri, id: &str, cmd: &str) -> (i32, String) {
    let out = cri
        .runtime
        .clone()
        .exec_sync(k8s_cri::v1::ExecSyncRequest {
            container_id: id.to_string(),
            cmd: vec!["sh".into(), "-c".into(), cmd.into()],
            timeout: 10,
        })
        .await
        .unwrap_or_else(|e| panic!("exec {cmd:?}: {e}"))
        .into_inner();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.exit_code, text)
}

async fn exec_ok(cri: &rkube_kubelet::cri::Cri, id: &str, cmd: &str) -> String {
    let (code, out) = exec(cri, id, cmd).await;
    assert_eq!(code, 0, "{cmd}: {out}");
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn busybox_containers_see_their_volumes_through_cri() {
    use k8s_cri::v1 as c;
    if !common::prerequisites() {
        return;
    }
    let api = VolApi::with_service_accounts().await;
    let ns = "default";
    setup_namespace(&api, ns).await;
    api.node(NODE, "2", "4Gi").await;
    let root = kubelet_root();
    let host_dir = root.path().join("hostdata");
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::write(host_dir.join("file"), "from-host").unwrap();
    let pod: Pod = create(
        &api.admin,
        ns,
        json!({
            "metadata": {"name": "shell", "labels": {"app": "shell"}},
            "spec": {
                "nodeName": NODE,
                "containers": [
                    {"name": "one", "image": common::images::BUSYBOX, "volumeMounts": [
                        {"name": "cfg", "mountPath": "/etc/cfg"},
                        {"name": "sec", "mountPath": "/etc/sec"},
                        {"name": "info", "mountPath": "/etc/podinfo"},
                        {"name": "shared", "mountPath": "/shared"},
                        {"name": "ram", "mountPath": "/ram"},
                        {"name": "shared", "mountPath": "/mine", "subPathExpr": "per-pod/$(POD_NAME)"},
                        {"name": "cfg", "mountPath": "/etc/b.conf", "subPath": "b"},
                        {"name": "host", "mountPath": "/host", "readOnly": true},
                    ]},
                    {"name": "two", "image": common::images::BUSYBOX, "volumeMounts": [
                        {"name": "shared", "mountPath": "/data"},
                    ]},
                ],
                "volumes": [
                    {"name": "cfg", "configMap": {"name": "cfg"}},
                    {"name": "sec", "secret": {"secretName": "sec"}},
                    {"name": "info", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
                    {"name": "shared", "emptyDir": {}},
                    {"name": "ram", "emptyDir": {"medium": "Memory", "sizeLimit": "4Mi"}},
                    {"name": "host", "hostPath": {"path": host_dir, "type": "Directory"}},
                ],
            },
        }),
    )
    .await;
    let uid = pod.metadata.uid.clone().unwrap();
    let vm = Arc::new(VolumeManager::new(
        api.node_client(NODE),
        root.path().join("pods"),
        NODE.into(),
    ));
    vm.setup(&pod).await.expect("setup");

    let cgroup_root = format!("/rkube-vol-{}", std::process::id());
    // declared before the runtime, so dropped after it has removed the containers
    let _cgroups = CgroupGuard(cgroup_root.clone());
    let rt = common::runtime::Runtime::start().await;
    let cgroup = format!("{cgroup_root}/shell");
    let sandbox_config = c::PodSandboxConfig {
        metadata: Some(c::PodSandboxMetadata {
            name: "shell".into(),
            uid: uid.clone(),
            namespace: ns.into(),
            attempt: 0,
        }),
        // the node's network namespace comes with its UTS namespace: no hostname of its own
        hostname: String::new(),
        log_directory: rt.dir.path().join("logs").display().to_string(),
        linux: Some(c::LinuxPodSandboxConfig {
            cgroup_parent: cgroup.clone(),
            security_context: Some(c::LinuxSandboxSecurityContext {
                namespace_options: Some(c::NamespaceOption {
                    network: c::NamespaceMode::Node as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut runtime = rt.cri.runtime.clone();
    let sandbox = runtime
        .run_pod_sandbox(c::RunPodSandboxRequest {
            config: Some(sandbox_config.clone()),
            runtime_handler: String::new(),
        })
        .await
        .expect("RunPodSandbox")
        .into_inner()
        .pod_sandbox_id;
    let env: BTreeMap<String, String> = [("POD_NAME".to_string(), "shell".to_string())].into();
    let mut ids = BTreeMap::new();
    for container in &pod.spec.as_ref().unwrap().containers {
        let mounts = vm
            .container_mounts(&pod, container, &env)
            .expect("container mounts");
        let id = runtime
            .create_container(c::CreateContainerRequest {
                pod_sandbox_id: sandbox.clone(),
                config: Some(c::ContainerConfig {
                    metadata: Some(c::ContainerMetadata {
                        name: container.name.clone(),
                        attempt: 0,
                    }),
                    image: Some(c::ImageSpec {
                        image: common::images::BUSYBOX.into(),
                        ..Default::default()
                    }),
                    command: vec!["sh".into(), "-c".into(), "exec sleep 1000".into()],
                    mounts,
                    log_path: format!("{}/0.log", container.name),
                    ..Default::default()
                }),
                sandbox_config: Some(sandbox_config.clone()),
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
        ids.insert(container.name.clone(), id);
    }
    let (one, two) = (&ids["one"], &ids["two"]);
    let cri = &rt.cri;

    // configMap, read-only; a subPath of it
    assert_eq!(exec_ok(cri, one, "cat /etc/cfg/a").await, "1");
    assert_ne!(
        exec(cri, one, "touch /etc/cfg/new").await.0,
        0,
        "configMap volumes are read-only"
    );
    assert_eq!(exec_ok(cri, one, "cat /etc/b.conf").await, "2");
    // secret on a tmpfs
    assert_eq!(exec_ok(cri, one, "cat /etc/sec/password").await, "hunter2");
    let m = exec_ok(cri, one, "grep ' /etc/sec ' /proc/mounts").await;
    assert!(m.starts_with("tmpfs /etc/sec tmpfs ro"), "{m}");
    // downward API
    assert_eq!(
        exec_ok(cri, one, "cat /etc/podinfo/labels").await,
        "app=\"shell\""
    );
    // one emptyDir, two containers
    exec_ok(cri, one, "echo hi > /shared/x").await;
    assert_eq!(exec_ok(cri, two, "cat /data/x").await, "hi\n");
    // a memory emptyDir is a tmpfs of its sizeLimit
    let m = exec_ok(cri, one, "grep ' /ram ' /proc/mounts").await;
    assert!(
        m.starts_with("tmpfs /ram tmpfs rw") && m.contains("size=4096k"),
        "{m}"
    );
    // subPathExpr: the container's own directory of the shared volume
    exec_ok(cri, one, "echo mine > /mine/f").await;
    assert_eq!(
        exec_ok(cri, two, "cat /data/per-pod/shell/f").await,
        "mine\n"
    );
    let shared = vol_dir(root.path(), &pod, "kubernetes.io~empty-dir", "shared");
    assert_eq!(read(&shared.join("per-pod/shell/f")), "mine\n");
    // hostPath, mounted read-only
    assert_eq!(exec_ok(cri, one, "cat /host/file").await, "from-host");
    assert_ne!(
        exec(cri, one, "touch /host/new").await.0,
        0,
        "readOnly hostPath"
    );
    assert!(!host_dir.join("new").exists());
    // the service-account token the ServiceAccount admission plugin mounted
    let token = exec_ok(
        cri,
        two,
        "cat /var/run/secrets/kubernetes.io/serviceaccount/token",
    )
    .await;
    assert_eq!(
        review(&api, &token, &[]).await.as_deref(),
        Some("system:serviceaccount:default:default")
    );
    assert_eq!(
        exec_ok(
            cri,
            two,
            "cat /var/run/secrets/kubernetes.io/serviceaccount/namespace"
        )
        .await,
        "default"
    );

    // an update of the config map reaches the running container
    let current = Arc::new(vec![pod.clone()]);
    let refresher = vm.clone().spawn_refresher(
        Arc::new(move || current.as_ref().clone()),
        Duration::from_millis(100),
    );
    let cms: Api<ConfigMap> = Api::namespaced(api.admin.clone(), ns);
    cms.patch(
        "cfg",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"a": "second"}})),
    )
    .await
    .unwrap();
    wait_for("the container to see the update", || async {
        (exec(cri, one, "cat /etc/cfg/a").await.1 == "second").then_some(())
    })
    .await;
    refresher.abort();

    // containers and sandbox gone, then every mount of the pod goes
    runtime
        .stop_pod_sandbox(c::StopPodSandboxRequest {
            pod_sandbox_id: sandbox.clone(),
        })
        .await
        .unwrap();
    runtime
        .remove_pod_sandbox(c::RemovePodSandboxRequest {
            pod_sandbox_id: sandbox,
        })
        .await
        .unwrap();
    rt.stop().await;
    assert!(!mounts_below(root.path()).is_empty());
    vm.teardown(&uid).await.expect("teardown");
    assert!(
        mounts_below(root.path()).is_empty(),
        "{:?}",
        mounts_below(root.path())
    );
    assert!(!root.path().join("pods").join(&uid).exists());
    assert_eq!(read(&host_dir.join("file")), "from-host");
    rkube_kubelet::cgroups::remove(&cgroup_root).unwrap();
    for dir in rkube_kubelet::cgroups::hierarchy_dirs(&cgroup) {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}
