//! Pod startup latency: from the pod's creation until a watch sees it Running, with the image
//! present, for 1 pod at a time and for 30 pods created at once on one node; next to the bare
//! runtime floor on the same machine (CRI RunPodSandbox + CreateContainer + StartContainer called
//! directly, the same sandbox and container config shape, on the same CNI bridge).
//!
//! Everything is real: an in-process API server on the embedded store (RBAC, admission,
//! service-account tokens, so each pod gets upstream's projected token volume), rkube's kubelet
//! with a supervised containerd in a temporary directory, Debian's CNI plugins. Run as root:
//! `scripts/bench.sh pod-startup [--rounds N] [--out bench/RESULTS.md]`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use futures::StreamExt;
use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod, ServiceAccount};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::Api;
use rkube_bench::{hist, ms};
use rkube_kubelet::oci;
use tokio::sync::Mutex;

#[derive(Debug, Parser)]
struct Args {
    /// Sequential single-pod starts.
    #[arg(long, default_value_t = 20)]
    singles: usize,
    /// Rounds of 30 pods created at once.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Pods per burst.
    #[arg(long, default_value_t = 30)]
    burst: usize,
    /// Append the results to this file.
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

const IMAGE: &str = "localhost/rkube-bench/busybox:1";
const NODE: &str = "bench-node";
const BRIDGE: &str = "rkbench0";
const CGROUP: &str = "/rkube-bench";

fn busybox_archive() -> Result<Vec<u8>> {
    let bin = std::fs::read("/bin/busybox").context("/bin/busybox (busybox-static)")?;
    let mut entries = vec![
        oci::Entry::Dir {
            path: "bin".into(),
            mode: 0o755,
        },
        oci::Entry::Dir {
            path: "tmp".into(),
            mode: 0o1777,
        },
        oci::Entry::Dir {
            path: "etc".into(),
            mode: 0o755,
        },
        oci::Entry::File {
            path: "bin/busybox".into(),
            mode: 0o755,
            data: bin,
        },
    ];
    for applet in ["sh", "sleep"] {
        entries.push(oci::Entry::Symlink {
            path: format!("bin/{applet}"),
            target: "/bin/busybox".into(),
        });
    }
    let image = oci::build(
        &entries,
        &oci::ImageConfig {
            cmd: vec!["sh".into()],
            ..Default::default()
        },
    )?;
    Ok(oci::archive(&image, IMAGE)?)
}

fn pod(name: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": "default", "labels": {"bench": "startup"}},
        "spec": {
            "nodeName": NODE,
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "c", "image": IMAGE, "imagePullPolicy": "IfNotPresent",
                "command": ["sleep", "3600"]}],
        },
    }))
    .expect("pod")
}

/// When the watch first saw each pod Running.
type Seen = Arc<Mutex<HashMap<String, Instant>>>;

async fn wait_running(
    seen: &Seen,
    names: &[String],
    limit: Duration,
) -> Result<HashMap<String, Instant>> {
    let deadline = Instant::now() + limit;
    loop {
        {
            let s = seen.lock().await;
            if names.iter().all(|n| s.contains_key(n)) {
                return Ok(names.iter().map(|n| (n.clone(), s[n])).collect());
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "pods not Running within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Deletes the pods and waits until the kubelet removed their sandboxes too (so that one
/// measurement's teardown does not overlap the next one's start-up).
async fn delete_all(
    pods: &Api<Pod>,
    names: &[String],
    cri: &rkube_kubelet::cri::Cri,
) -> Result<()> {
    delete_api(pods, names).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = cri
            .runtime
            .clone()
            .list_pod_sandbox(cri::ListPodSandboxRequest { filter: None })
            .await?
            .into_inner()
            .items
            .len();
        if left == 0 {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "{left} sandboxes not removed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn delete_api(pods: &Api<Pod>, names: &[String]) -> Result<()> {
    for n in names {
        let _ = pods
            .delete(n, &DeleteParams::default().grace_period(0))
            .await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    for n in names {
        while pods.get_opt(n).await?.is_some() {
            anyhow::ensure!(Instant::now() < deadline, "pod {n} not deleted");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(())
}

/// The bare runtime floor: sandbox + container create + start through CRI, `n` at once.
async fn bare(
    cri: &rkube_kubelet::cri::Cri,
    n: usize,
    round: usize,
    log_dir: &std::path::Path,
) -> Result<Vec<Duration>> {
    let mut tasks = Vec::new();
    for i in 0..n {
        let cri = cri.clone();
        let log_dir = log_dir.to_path_buf();
        tasks.push(tokio::spawn(async move {
            let mut rt = cri.runtime.clone();
            let uid = format!("bare-{round}-{i}");
            let config = cri::PodSandboxConfig {
                metadata: Some(cri::PodSandboxMetadata {
                    name: uid.clone(),
                    uid: uid.clone(),
                    namespace: "bench".into(),
                    attempt: 0,
                }),
                hostname: uid.clone(),
                log_directory: log_dir.join(&uid).display().to_string(),
                labels: [("bench".to_string(), "bare".to_string())].into(),
                linux: Some(cri::LinuxPodSandboxConfig {
                    cgroup_parent: format!("{CGROUP}/bare/{uid}"),
                    ..Default::default()
                }),
                ..Default::default()
            };
            let start = Instant::now();
            let sb = rt
                .run_pod_sandbox(cri::RunPodSandboxRequest {
                    config: Some(config.clone()),
                    runtime_handler: String::new(),
                })
                .await?
                .into_inner()
                .pod_sandbox_id;
            let id = rt
                .create_container(cri::CreateContainerRequest {
                    pod_sandbox_id: sb.clone(),
                    config: Some(cri::ContainerConfig {
                        metadata: Some(cri::ContainerMetadata {
                            name: "c".into(),
                            attempt: 0,
                        }),
                        image: Some(cri::ImageSpec {
                            image: IMAGE.into(),
                            ..Default::default()
                        }),
                        command: vec!["sleep".into(), "3600".into()],
                        log_path: "c/0.log".into(),
                        ..Default::default()
                    }),
                    sandbox_config: Some(config),
                })
                .await?
                .into_inner()
                .container_id;
            rt.start_container(cri::StartContainerRequest { container_id: id })
                .await?;
            let took = start.elapsed();
            rt.stop_pod_sandbox(cri::StopPodSandboxRequest {
                pod_sandbox_id: sb.clone(),
            })
            .await?;
            rt.remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: sb })
                .await?;
            let _ = rkube_kubelet::cgroups::remove(&format!("{CGROUP}/bare/{uid}"));
            Ok::<_, tonic::Status>(took)
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await?.map_err(|e| anyhow::anyhow!("CRI: {e}"))?);
    }
    Ok(out)
}

fn row(what: &str, samples: &[Duration]) -> String {
    let mut h = hist();
    for s in samples {
        h.record(s.as_micros().max(1) as u64).ok();
    }
    format!(
        "| {what} | {} | {:.0} | {:.0} | {:.0} |",
        samples.len(),
        ms(&h, 0.5),
        ms(&h, 0.99),
        ms(&h, 1.0)
    )
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        nix_is_root(),
        "pod-startup-bench runs containerd and CNI: run it as root"
    );
    let dir = tempfile::Builder::new()
        .prefix("rkube-pod-bench-")
        .tempdir_in("/tmp")?;
    // the API server, with service-account tokens (each pod gets the projected token volume)
    let store: Arc<dyn rkube_store::Store> =
        Arc::new(rkube_store::embedded::EmbeddedStore::open(&dir.path().join("store")).await?);
    let key = rkube_pki::jwt::SigningKey::load_or_create(&dir.path().join("sa.key"))?;
    let security = rkube_apiserver::Security {
        admission: rkube_apiserver::admission::Admission::default_plugins(),
        service_accounts: Some(rkube_apiserver::sa_token::ServiceAccountTokens::new(
            key,
            "https://kubernetes.default.svc.cluster.local".into(),
        )),
        ..Default::default()
    };
    let server =
        rkube_apiserver::ApiServer::new(store, rkube_apiserver::Config::default(), security)
            .await?;
    let admin = server.client(rkube_apiserver::authz::User {
        name: "bench".into(),
        groups: vec!["system:masters".into(), "system:authenticated".into()],
        ..Default::default()
    });
    Api::<ServiceAccount>::namespaced(admin.clone(), "default")
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": "default"}}))?,
        )
        .await?;
    Api::<ConfigMap>::namespaced(admin.clone(), "default")
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": "kube-root-ca.crt"},
                "data": {"ca.crt": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"}}))?,
        )
        .await?;
    // the kubelet, as system:node:<name>
    let mut cfg = rkube_kubelet::kubelet::Config::new(NODE, vec!["127.0.0.1".parse()?], dir.path());
    cfg.cni_bridge = BRIDGE.into();
    cfg.cgroup_root = format!("{CGROUP}/{NODE}");
    let node_client = server.client(rkube_apiserver::authz::User {
        name: format!("system:node:{NODE}"),
        groups: vec!["system:nodes".into(), "system:authenticated".into()],
        ..Default::default()
    });
    let nodes: Api<Node> = Api::all(admin.clone());
    let assign = {
        let nodes = nodes.clone();
        tokio::spawn(async move {
            loop {
                let patch = serde_json::json!({"spec": {"podCIDR": "10.250.0.0/24", "podCIDRs": ["10.250.0.0/24"]}});
                if nodes
                    .patch(NODE, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .is_ok()
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let kubelet = rkube_kubelet::kubelet::start(cfg.clone(), node_client).await?;
    assign.await?;
    let socket = rkube_kubelet::containerd::Layout::new(&cfg.agent_dir).socket;
    rkube_kubelet::import::import_bytes(&socket, "busybox", &busybox_archive()?).await?;
    // ready when the runtime's network is
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n = nodes.get(NODE).await?;
        let ready = n
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        if ready {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "node not Ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let result = measure(&args, &admin, &kubelet.ctx.runtime.cri, dir.path()).await;
    kubelet.shutdown().await;
    let _ = std::process::Command::new("ip")
        .args(["link", "del", BRIDGE])
        .output();
    let _ = rkube_kubelet::cgroups::remove(CGROUP);
    let report = result?;
    println!("{report}");
    if let Some(out) = &args.out {
        rkube_bench::append_report(out, &report)?;
    }
    Ok(())
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1).map(|u| u == "0"))
        .unwrap_or(false)
}

async fn measure(
    args: &Args,
    admin: &kube::Client,
    cri: &rkube_kubelet::cri::Cri,
    dir: &std::path::Path,
) -> Result<String> {
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "default");
    let seen: Seen = Arc::default();
    let watch = {
        let seen = seen.clone();
        let pods = pods.clone();
        tokio::spawn(async move {
            let mut stream =
                watcher::watcher(pods, watcher::Config::default().labels("bench=startup")).boxed();
            while let Some(Ok(ev)) = stream.next().await {
                if let watcher::Event::Apply(p) | watcher::Event::InitApply(p) = ev {
                    if p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running") {
                        let now = Instant::now();
                        seen.lock()
                            .await
                            .entry(p.metadata.name.clone().unwrap_or_default())
                            .or_insert(now);
                    }
                }
            }
        })
    };
    // warm-up: the first pod pays for lazy set-up (image unpack caches, CNI plugin loads)
    let mut single = Vec::new();
    let mut burst = Vec::new();
    for i in 0..=args.singles {
        let name = format!("single-{i}");
        let created = Instant::now();
        pods.create(&PostParams::default(), &pod(&name)).await?;
        let at = wait_running(&seen, std::slice::from_ref(&name), Duration::from_secs(60)).await?;
        if i > 0 {
            single.push(at[&name] - created);
        }
        delete_all(&pods, &[name], cri).await?;
    }
    for r in 0..args.rounds {
        let names: Vec<String> = (0..args.burst).map(|i| format!("burst-{r}-{i}")).collect();
        let mut created = HashMap::new();
        let creates = names.iter().map(|n| {
            let pods = pods.clone();
            let n = n.clone();
            async move {
                let t = Instant::now();
                pods.create(&PostParams::default(), &pod(&n))
                    .await
                    .map(|_| (n, t))
            }
        });
        for r in futures::future::join_all(creates).await {
            let (n, t) = r?;
            created.insert(n, t);
        }
        let at = wait_running(&seen, &names, Duration::from_secs(120)).await?;
        for n in &names {
            burst.push(at[n] - created[n]);
        }
        delete_all(&pods, &names, cri).await?;
    }
    watch.abort();
    // the bare runtime floor, on the same containerd and bridge
    let logs = dir.join("bare-logs");
    let mut bare_single = Vec::new();
    for i in 0..=args.singles {
        let d = bare(cri, 1, 1000 + i, &logs).await?;
        if i > 0 {
            bare_single.extend(d);
        }
    }
    let mut bare_burst = Vec::new();
    for r in 0..args.rounds {
        bare_burst.extend(bare(cri, args.burst, r, &logs).await?);
    }
    let rkube_single = median(&single);
    let floor_single = median(&bare_single);
    Ok(format!(
        "\n## Pod startup benchmark ({date})\n\nCommand: `scripts/bench.sh pod-startup --out bench/RESULTS.md` (the `pod-startup-bench` binary of `bench/`), revision {rev}.\n\nMachine: {machine}; containerd {ctd} with runc, Debian's CNI plugins (bridge, host-local, portmap), cgroup v1.\n\nPod creation (POST) until a watch sees `phase: Running`, image present, each pod a busybox `sleep` with upstream's projected service-account token volume; the bare runtime floor is CRI RunPodSandbox + CreateContainer + StartContainer called directly (same containerd, same bridge, no volumes).\n\n| what | samples | p50 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|\n{r1}\n{r2}\n{r3}\n{r4}\n\nrkube's overhead over the bare runtime, single pod, p50: {ratio:.2}x. Kubernetes' SLO is p99 ≤ 5 s; upstream's kubelet takes about 1 s here (PITFALLS.md), mostly its 1 s status polling.\n",
        date = jiff::Timestamp::now().strftime("%Y-%m-%d"),
        rev = rkube_bench::git_revision(),
        machine = rkube_bench::machine(),
        ctd = containerd_version(),
        r1 = row("rkube, 1 pod at a time", &single),
        r2 = row(&format!("rkube, {} pods at once", args.burst), &burst),
        r3 = row("bare CRI, 1 at a time", &bare_single),
        r4 = row(&format!("bare CRI, {} at once", args.burst), &bare_burst),
        ratio = rkube_single.as_secs_f64() / floor_single.as_secs_f64().max(1e-9),
    ))
}

fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn containerd_version() -> String {
    std::process::Command::new("containerd")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.split_whitespace().nth(2).map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}
