//! Scheduler benchmark: scheduling throughput (pods/s) on upstream's scheduler_perf workloads
//! SchedulingBasic, SchedulingPodAntiAffinity, TopologySpreading and PreemptionBasic, with
//! upstream's node and pod templates and counts (test/integration/scheduler_perf/*/
//! performance-config.yaml and templates/).
//!
//! Each workload runs in a fresh process: the API server on the embedded store in a temporary
//! directory, serving loopback HTTP; fake Nodes (no kubelets) as upstream's node template
//! (4 cpu, 32Gi, 110 pods, Ready, `kubernetes.io/hostname`, zone labels where the workload
//! has them); then the scheduler in the same process, talking to the server through the
//! in-process transport `rkube server` uses. The init pods are created and waited for, then
//! the measured pods are created as fast as the API takes them by concurrent creators over
//! keep-alive loopback HTTP/1.1. Throughput is measured pods over the time from the first
//! measured create until one pod watch (on the measured namespace) has seen every measured
//! pod with `spec.nodeName` set.
//!
//! As upstream's scheduler_perf, the server runs with the ServiceAccount,
//! TaintNodesByCondition and Priority admission plugins off (no service-account controller,
//! no node lifecycle controller, and the priority templates set `spec.priority` directly).
//! Security is off (`Security::insecure()`: no TLS, authentication or authorization).

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rkube_apiserver::admission::Admission;
use rkube_apiserver::storage::{self, Datastore};
use rkube_apiserver::{ApiServer, Config, Security};
use rkube_bench::{git_revision, machine};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The target this project set for SchedulingBasic 5000 nodes / 10,000 pods.
const TARGET_BASIC: f64 = 2000.0;

/// The init pods go to `sched-0`, the measured ones to `sched-1`, as upstream's
/// SchedulingPodAntiAffinity names them (its anti-affinity term lists both).
const INIT_NS: &str = "sched-0";
const MEASURE_NS: &str = "sched-1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum WorkloadArg {
    Basic,
    #[value(name = "basic-50k")]
    Basic50k,
    AntiAffinity,
    TopologySpread,
    Preemption,
    All,
}

#[derive(Debug, Parser)]
#[command(about = "rkube scheduler benchmark (upstream's scheduler_perf workloads)")]
struct Args {
    /// Which workload to run; `all` runs each in its own process, one after the other.
    #[arg(long, value_enum, default_value = "basic")]
    workload: WorkloadArg,
    /// Nodes, instead of the workload's upstream count.
    #[arg(long)]
    nodes: Option<usize>,
    /// Measured pods, instead of the workload's upstream count.
    #[arg(long)]
    pods: Option<usize>,
    /// Init pods (created and bound before measuring), instead of the upstream count.
    #[arg(long)]
    init_pods: Option<usize>,
    /// Concurrent pod creators, each on its own keep-alive HTTP connection.
    #[arg(long, default_value_t = 64)]
    creators: usize,
    /// Seconds to wait for a phase's pods to be bound before reporting it incomplete.
    #[arg(long, default_value_t = 600.0)]
    timeout: f64,
    /// Append the report to this file.
    #[arg(long)]
    out: Option<std::path::PathBuf>,
    /// Internal: run one workload and print its outcome as one JSON line.
    #[arg(long, hide = true)]
    child: bool,
}

/// The pod templates of upstream's scheduler_perf that these workloads use.
#[derive(Debug, Clone, Copy)]
enum PodTemplate {
    /// templates/pod-default.yaml: 100m cpu, 500Mi.
    Default,
    /// templates/pod-with-pod-anti-affinity.yaml: label color=green, required anti-affinity
    /// to color=green on `kubernetes.io/hostname` across sched-0 and sched-1.
    AntiAffinity,
    /// templates/pod-with-topology-spreading.yaml: label color=blue, maxSkew 5 on the zone,
    /// DoNotSchedule.
    TopologySpread,
    /// templates/pod-low-priority.yaml: 900m cpu, grace period 0.
    LowPriority,
    /// templates/pod-high-priority.yaml: 3 cpu, priority 10.
    HighPriority,
}

/// One of upstream's workloads, with its `performance` sizes.
#[derive(Debug, Clone)]
struct Workload {
    flag: &'static str,
    upstream: &'static str,
    nodes: usize,
    init_pods: usize,
    measured_pods: usize,
    zones: &'static [&'static str],
    init_template: PodTemplate,
    measured_template: PodTemplate,
    /// Upstream's CI threshold (pods/s), if the workload has one.
    threshold: Option<f64>,
    /// This project's target (pods/s), if any.
    target: Option<f64>,
}

fn workload(w: WorkloadArg) -> Workload {
    let basic = Workload {
        flag: "basic",
        upstream: "SchedulingBasic/5000Nodes_10000Pods",
        nodes: 5000,
        init_pods: 1000,
        measured_pods: 10_000,
        zones: &[],
        init_template: PodTemplate::Default,
        measured_template: PodTemplate::Default,
        threshold: Some(680.0),
        target: Some(TARGET_BASIC),
    };
    match w {
        WorkloadArg::Basic | WorkloadArg::All => basic,
        WorkloadArg::Basic50k => Workload {
            flag: "basic-50k",
            upstream: "SchedulingBasic/5000Nodes_50000Pods",
            init_pods: 5000,
            measured_pods: 50_000,
            threshold: Some(810.0),
            target: None,
            ..basic
        },
        WorkloadArg::AntiAffinity => Workload {
            flag: "anti-affinity",
            upstream: "SchedulingPodAntiAffinity/5000Nodes_2000Pods",
            init_pods: 1000,
            measured_pods: 2000,
            init_template: PodTemplate::AntiAffinity,
            measured_template: PodTemplate::AntiAffinity,
            threshold: Some(60.0),
            target: None,
            ..basic
        },
        WorkloadArg::TopologySpread => Workload {
            flag: "topology-spread",
            upstream: "TopologySpreading/5000Nodes_5000Pods",
            init_pods: 5000,
            measured_pods: 5000,
            zones: &["moon-1", "moon-2", "moon-3"],
            measured_template: PodTemplate::TopologySpread,
            threshold: Some(460.0),
            target: None,
            ..basic
        },
        WorkloadArg::Preemption => Workload {
            flag: "preemption",
            upstream: "PreemptionBasic/1000Nodes",
            nodes: 1000,
            init_pods: 4000,
            measured_pods: 1000,
            init_template: PodTemplate::LowPriority,
            measured_template: PodTemplate::HighPriority,
            threshold: None,
            target: None,
            ..basic
        },
    }
}

/// upstream's node template (templates/node-default.yaml, plus the hostname label
/// scheduler_perf's node preparer adds), with the zone label where the workload has one.
/// Upstream picks each node's zone at random; round-robin gives the same spread, repeatably.
fn node(i: usize, zones: &[&str]) -> Value {
    let name = format!("scheduler-perf-{i:05}");
    let mut labels = json!({"kubernetes.io/hostname": name});
    if !zones.is_empty() {
        labels["topology.kubernetes.io/zone"] = json!(zones[i % zones.len()]);
    }
    let resources = json!({"cpu": "4", "memory": "32Gi", "pods": "110"});
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": {},
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "conditions": [{"type": "Ready", "status": "True"}],
            "phase": "Running",
        },
    })
}

fn pod(template: PodTemplate, name: &str) -> Value {
    let container = |cpu: &str| {
        json!([{
            "name": "pause",
            "image": "registry.k8s.io/pause:3.10",
            "ports": [{"containerPort": 80}],
            "resources": {
                "limits": {"cpu": cpu, "memory": "500Mi"},
                "requests": {"cpu": cpu, "memory": "500Mi"},
            },
        }])
    };
    let (labels, spec) = match template {
        PodTemplate::Default => (json!({}), json!({"containers": container("100m")})),
        PodTemplate::AntiAffinity => (
            json!({"color": "green"}),
            json!({
                "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
                    "labelSelector": {"matchLabels": {"color": "green"}},
                    "topologyKey": "kubernetes.io/hostname",
                    "namespaces": [MEASURE_NS, INIT_NS],
                }]}},
                "containers": container("100m"),
            }),
        ),
        PodTemplate::TopologySpread => (
            json!({"color": "blue"}),
            json!({
                "topologySpreadConstraints": [{
                    "maxSkew": 5,
                    "topologyKey": "topology.kubernetes.io/zone",
                    "whenUnsatisfiable": "DoNotSchedule",
                    "labelSelector": {"matchLabels": {"color": "blue"}},
                }],
                "containers": container("100m"),
            }),
        ),
        PodTemplate::LowPriority => (
            json!({}),
            json!({"terminationGracePeriodSeconds": 0, "containers": container("900m")}),
        ),
        PodTemplate::HighPriority => (
            json!({}),
            json!({"priority": 10, "containers": container("3000m")}),
        ),
    };
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
    })
}

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

struct Target {
    client: HttpClient,
    base: String,
}

impl Target {
    async fn post(&self, path: &str, body: Vec<u8>) -> Result<(u16, Bytes)> {
        let req = http::Request::post(format!("{}{path}", self.base))
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))?;
        let resp = self.client.request(req).await?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    /// Creates an object, retrying while the server sheds load (429) or is briefly
    /// unavailable; an object that already exists counts as created.
    async fn create(&self, path: &str, obj: &Value) -> Result<()> {
        let body = serde_json::to_vec(obj)?;
        loop {
            let (code, resp) = self.post(path, body.clone()).await?;
            match code {
                201 | 200 | 409 => return Ok(()),
                429 | 503 => tokio::time::sleep(Duration::from_millis(5)).await,
                _ => bail!("POST {path}: {code} {}", String::from_utf8_lossy(&resp)),
            }
        }
    }
}

/// Creates `n` objects with `workers` concurrent creators; returns when all are created.
async fn create_all<F>(t: &Arc<Target>, workers: usize, n: usize, path: &str, make: F) -> Result<()>
where
    F: Fn(usize) -> Value + Send + Sync + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let make = Arc::new(make);
    let mut tasks = Vec::new();
    for _ in 0..workers.clamp(1, n.max(1)) {
        let (t, next, make, path) = (t.clone(), next.clone(), make.clone(), path.to_string());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<_, anyhow::Error>(());
                }
                t.create(&path, &make(i)).await?;
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

/// The parts of a pod watch event this benchmark reads; serde skips the rest.
#[derive(Deserialize)]
struct WatchLine {
    #[serde(rename = "type")]
    kind: String,
    object: PodLite,
}

#[derive(Deserialize)]
struct PodLite {
    #[serde(default)]
    metadata: MetaLite,
    #[serde(default)]
    spec: SpecLite,
}

#[derive(Deserialize, Default)]
struct MetaLite {
    #[serde(default)]
    name: String,
    #[serde(default, rename = "resourceVersion")]
    resource_version: String,
}

#[derive(Deserialize, Default)]
struct SpecLite {
    #[serde(default, rename = "nodeName")]
    node_name: Option<String>,
}

/// Counts the pods of one namespace that have been bound, from one watch.
struct BindWatch {
    count: tokio::sync::watch::Receiver<usize>,
    /// When the latest newly bound pod was seen.
    last: Arc<Mutex<Option<Instant>>>,
    task: tokio::task::JoinHandle<()>,
}

impl BindWatch {
    /// Opens the watch and returns once the server has answered it, so that no pod created
    /// afterwards can be missed.
    async fn start(t: &Arc<Target>, ns: &str) -> Result<BindWatch> {
        let (tx, count) = tokio::sync::watch::channel(0usize);
        let last = Arc::new(Mutex::new(None));
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<Result<()>>();
        let (t, ns, last2) = (t.clone(), ns.to_string(), last.clone());
        let task = tokio::spawn(async move {
            let mut bound: HashSet<String> = HashSet::new();
            let mut rv = String::new();
            let mut ready = Some(ready_tx);
            loop {
                // Reconnects after the server ends a watch, from the last version seen (or
                // from a fresh list after an error event: the set de-duplicates).
                let uri = format!(
                    "{}/api/v1/namespaces/{ns}/pods?watch=true&resourceVersion={rv}",
                    t.base
                );
                let resp = match http::Request::get(uri).body(Full::new(Bytes::new())) {
                    Ok(req) => t.client.request(req).await,
                    Err(e) => {
                        if let Some(r) = ready.take() {
                            let _ = r.send(Err(e.into()));
                        }
                        return;
                    }
                };
                let resp = match resp {
                    Ok(r) if r.status().is_success() => r,
                    other => {
                        let why = match other {
                            Ok(r) => anyhow::anyhow!("watch answered {}", r.status()),
                            Err(e) => e.into(),
                        };
                        if let Some(r) = ready.take() {
                            let _ = r.send(Err(why));
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                if let Some(r) = ready.take() {
                    let _ = r.send(Ok(()));
                }
                let mut body = resp.into_body();
                let mut buf: Vec<u8> = Vec::new();
                while let Some(Ok(frame)) = body.frame().await {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    buf.extend_from_slice(&data);
                    let mut start = 0;
                    while let Some(pos) = buf[start..].iter().position(|b| *b == b'\n') {
                        let line = &buf[start..start + pos];
                        start += pos + 1;
                        let Ok(ev) = serde_json::from_slice::<WatchLine>(line) else {
                            continue;
                        };
                        if ev.kind == "ERROR" {
                            rv.clear();
                            continue;
                        }
                        if !ev.object.metadata.resource_version.is_empty() {
                            rv = ev.object.metadata.resource_version;
                        }
                        let is_bound = ev.object.spec.node_name.is_some_and(|n| !n.is_empty());
                        if ev.kind != "DELETED" && is_bound && bound.insert(ev.object.metadata.name)
                        {
                            if let Ok(mut l) = last2.lock() {
                                *l = Some(Instant::now());
                            }
                            tx.send_replace(bound.len());
                        }
                    }
                    buf.drain(..start);
                }
            }
        });
        ready_rx.await.context("the pod watch ended at once")??;
        Ok(BindWatch { count, last, task })
    }

    /// Waits until `n` pods are bound or `timeout` passes; returns the count reached, and
    /// reports progress on stderr every few seconds.
    async fn wait(&mut self, n: usize, timeout: Duration, what: &str) -> usize {
        let deadline = Instant::now() + timeout;
        let started = Instant::now();
        loop {
            let step =
                Duration::from_secs(5).min(deadline.saturating_duration_since(Instant::now()));
            let done = tokio::time::timeout(step, self.count.wait_for(|c| *c >= n))
                .await
                .map(|r| r.is_ok());
            let c = *self.count.borrow();
            if c >= n {
                return c;
            }
            // Ok(false): the watch task ended.
            if Instant::now() >= deadline || done == Ok(false) {
                eprintln!("  {what}: timed out with {c} of {n} bound");
                return c;
            }
            eprintln!(
                "  {what}: {c} of {n} bound after {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
    }
}

impl Drop for BindWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What one workload measured; the child process prints it as JSON for the parent.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Outcome {
    workload: String,
    upstream: String,
    nodes: usize,
    init_pods: usize,
    measured_pods: usize,
    /// Whether the sizes are upstream's, so its threshold applies.
    upstream_sizes: bool,
    threshold: Option<f64>,
    target: Option<f64>,
    /// Measured pods bound (less than `measured_pods` on a timeout).
    bound: usize,
    /// Seconds from the first measured create until the last measured pod was seen bound.
    elapsed: f64,
    /// Seconds the creators took to create every measured pod.
    create_secs: f64,
    attempts_scheduled: u64,
    attempts_unschedulable: u64,
    attempts_error: u64,
    /// Seconds the init pods took to be bound.
    init_secs: f64,
    peak_rss_mib: f64,
}

impl Outcome {
    fn rate(&self) -> f64 {
        if self.elapsed > 0.0 {
            self.bound as f64 / self.elapsed
        } else {
            0.0
        }
    }

    fn verdict(&self) -> String {
        if self.bound < self.measured_pods {
            return format!("INCOMPLETE: {} of {} bound", self.bound, self.measured_pods);
        }
        if !self.upstream_sizes {
            return "sizes differ from upstream's; no threshold applies".into();
        }
        let rate = self.rate();
        let mut parts = Vec::new();
        if let Some(t) = self.target {
            let ok = if rate >= t { "PASS" } else { "FAIL" };
            parts.push(format!("target ≥ {t:.0}: {ok}"));
        }
        match self.threshold {
            Some(t) => {
                let ok = if rate >= t { "PASS" } else { "FAIL" };
                parts.push(format!("upstream CI ≥ {t:.0}: {ok}"));
            }
            None => parts.push("no upstream threshold".into()),
        }
        parts.join("; ")
    }
}

/// The process's peak resident set (VmHWM), in MiB. Server, scheduler and creators share
/// the process, so this is all three.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

async fn run_workload(w: &Workload, args: &Args) -> Result<Outcome> {
    let nodes = args.nodes.unwrap_or(w.nodes);
    let init_pods = args.init_pods.unwrap_or(w.init_pods);
    let measured = args.pods.unwrap_or(w.measured_pods);
    let upstream_sizes =
        nodes == w.nodes && init_pods == w.init_pods && measured == w.measured_pods;
    if matches!(w.measured_template, PodTemplate::AntiAffinity) && init_pods + measured > nodes {
        eprintln!(
            "warning: anti-affinity allows one pod per node; {} pods on {nodes} nodes cannot all be bound",
            init_pods + measured
        );
    }
    let timeout = Duration::from_secs_f64(args.timeout);

    let dir = tempfile::Builder::new()
        .prefix("rkube-scheduler-bench-")
        .tempdir()?;
    let store = storage::open(dir.path(), &Datastore::Embedded).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    // As upstream's scheduler_perf: no service-account controller runs, nodes are not tainted
    // by a lifecycle controller, and the high-priority template sets `spec.priority`.
    let admission = Admission::from_flags(
        &[],
        &[
            "ServiceAccount".into(),
            "TaintNodesByCondition".into(),
            "Priority".into(),
        ],
    )?;
    let security = Security {
        admission,
        ..Security::insecure()
    };
    let server = ApiServer::new(
        store,
        Config {
            server_address: addr.to_string(),
            ..Config::default()
        },
        security,
    )
    .await?;
    tokio::spawn(rkube_apiserver::serve(
        server.clone(),
        listener,
        std::future::pending(),
    ));
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(args.creators + 8)
        .build_http();
    let t = Arc::new(Target {
        client,
        base: format!("http://{addr}"),
    });
    for ns in [INIT_NS, MEASURE_NS] {
        t.create(
            "/api/v1/namespaces",
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        )
        .await?;
    }

    eprintln!("{}: creating {nodes} nodes", w.flag);
    let zones = w.zones;
    create_all(&t, args.creators, nodes, "/api/v1/nodes", move |i| {
        node(i, zones)
    })
    .await?;

    // The scheduler starts after the nodes exist, so its first list has all of them.
    let metrics = Arc::new(rkube_scheduler::Metrics::default());
    let sched_client = server.client(rkube_apiserver::authz::User {
        name: "system:kube-scheduler".into(),
        groups: vec!["system:masters".into()],
        ..Default::default()
    });
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let scheduler = tokio::spawn(rkube_scheduler::run(
        sched_client,
        rkube_scheduler::KubeSchedulerConfiguration::default(),
        metrics.clone(),
        async move {
            let _ = stop_rx.await;
        },
    ));

    eprintln!("{}: creating {init_pods} init pods", w.flag);
    let init_start = Instant::now();
    let mut init_watch = BindWatch::start(&t, INIT_NS).await?;
    let tmpl = w.init_template;
    create_all(
        &t,
        args.creators,
        init_pods,
        &format!("/api/v1/namespaces/{INIT_NS}/pods"),
        move |i| pod(tmpl, &format!("init-{i}")),
    )
    .await?;
    let init_bound = init_watch.wait(init_pods, timeout, "init pods").await;
    let init_secs = init_start.elapsed().as_secs_f64();
    drop(init_watch);
    if init_bound < init_pods {
        eprintln!(
            "{}: only {init_bound} of {init_pods} init pods bound; measuring anyway",
            w.flag
        );
    }

    let profile = rkube_scheduler::config::DEFAULT_SCHEDULER_NAME;
    // The scheduler counts an attempt when its bind returns, which can be after the watch
    // shows the pod bound: let the init pods' attempts land before taking the baseline.
    let settle = Instant::now() + Duration::from_secs(2);
    while metrics.attempts("scheduled", profile) < init_bound as u64 && Instant::now() < settle {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let before = (
        metrics.attempts("scheduled", profile),
        metrics.attempts("unschedulable", profile),
        metrics.attempts("error", profile),
    );
    eprintln!("{}: creating {measured} measured pods", w.flag);
    let mut watch = BindWatch::start(&t, MEASURE_NS).await?;
    let start = Instant::now();
    let tmpl = w.measured_template;
    create_all(
        &t,
        args.creators,
        measured,
        &format!("/api/v1/namespaces/{MEASURE_NS}/pods"),
        move |i| pod(tmpl, &format!("pod-{i}")),
    )
    .await?;
    let create_secs = start.elapsed().as_secs_f64();
    let bound = watch.wait(measured, timeout, "measured pods").await;
    let end = watch
        .last
        .lock()
        .ok()
        .and_then(|l| *l)
        .unwrap_or_else(Instant::now);
    let elapsed = end.saturating_duration_since(start).as_secs_f64();
    drop(watch);

    let _ = stop_tx.send(());
    match tokio::time::timeout(Duration::from_secs(10), scheduler).await {
        Ok(Ok(Err(e))) => eprintln!("the scheduler failed: {e}"),
        Ok(Err(e)) => eprintln!("the scheduler task failed: {e}"),
        Err(_) => eprintln!("the scheduler did not stop within 10 s"),
        Ok(Ok(Ok(()))) => {}
    }
    Ok(Outcome {
        workload: w.flag.to_string(),
        upstream: w.upstream.to_string(),
        nodes,
        init_pods,
        measured_pods: measured,
        upstream_sizes,
        threshold: w.threshold,
        target: w.target,
        bound,
        elapsed,
        create_secs,
        attempts_scheduled: metrics.attempts("scheduled", profile) - before.0,
        attempts_unschedulable: metrics.attempts("unschedulable", profile) - before.1,
        attempts_error: metrics.attempts("error", profile) - before.2,
        init_secs,
        peak_rss_mib: peak_rss_mib(),
    })
}

/// Runs one workload in a child process (fresh memory, so each peak RSS is its own).
fn run_child(which: &str, args: &Args) -> Result<Outcome> {
    let exe = std::env::current_exe()?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["--child", "--workload", which])
        .args(["--creators", &args.creators.to_string()])
        .args(["--timeout", &args.timeout.to_string()]);
    for (flag, v) in [
        ("--nodes", args.nodes),
        ("--pods", args.pods),
        ("--init-pods", args.init_pods),
    ] {
        if let Some(v) = v {
            cmd.args([flag, &v.to_string()]);
        }
    }
    let out = cmd
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("running the {which} workload"))?;
    if !out.status.success() {
        bail!("the {which} workload failed ({})", out.status);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or_default();
    serde_json::from_str(line).with_context(|| format!("reading the {which} outcome: {line:?}"))
}

fn report(outcomes: &[Outcome], args: &Args) -> String {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut s = format!(
        "\n## Scheduler benchmark ({})\n\n",
        jiff::Timestamp::now().strftime("%Y-%m-%d")
    );
    s.push_str(&format!(
        "Command: `scripts/bench.sh scheduler {}`. Machine: {}. Git revision {}. \
         Upstream's scheduler_perf workloads (node and pod templates and counts), each in its own \
         process: the API server on the embedded store (every write fsynced), insecure (no TLS, \
         authentication or authorization) and with the ServiceAccount, TaintNodesByCondition and \
         Priority admission plugins off as in scheduler_perf; the scheduler in the same process \
         over the in-process transport, default configuration; {} pod creators over keep-alive \
         loopback HTTP/1.1. pods/s = measured pods / (first measured create → last one seen bound \
         by a pod watch). Attempts are the scheduler's `scheduler_schedule_attempts_total` during \
         the measured phase; peak RSS is the whole process (server, scheduler, creators).\n\n",
        argv.join(" "),
        machine(),
        git_revision(),
        args.creators,
    ));
    s.push_str(
        "| workload | nodes | init pods | measured pods | pods/s | s | create s | attempts scheduled / unschedulable / error | peak RSS MiB | verdict |\n\
         |---|---:|---:|---:|---:|---:|---:|---|---:|---|\n",
    );
    for o in outcomes {
        s.push_str(&format!(
            "| {} ({}) | {} | {} | {} | {:.0} | {:.2} | {:.2} | {} / {} / {} | {:.0} | {} |\n",
            o.workload,
            o.upstream,
            o.nodes,
            o.init_pods,
            o.measured_pods,
            o.rate(),
            o.elapsed,
            o.create_secs,
            o.attempts_scheduled,
            o.attempts_unschedulable,
            o.attempts_error,
            o.peak_rss_mib,
            o.verdict()
        ));
    }
    s
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    // Logs (the scheduler's and the server's) only when asked for, as `RUST_LOG=warn`.
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    if args.child {
        let o = run_workload(&workload(args.workload), &args).await?;
        println!("{}", serde_json::to_string(&o)?);
        return Ok(());
    }
    let outcomes = if args.workload == WorkloadArg::All {
        let mut v = Vec::new();
        for which in [
            "basic",
            "basic-50k",
            "anti-affinity",
            "topology-spread",
            "preemption",
        ] {
            let o = tokio::task::block_in_place(|| run_child(which, &args))?;
            eprintln!("{which}: {:.0} pods/s ({})", o.rate(), o.verdict());
            v.push(o);
        }
        v
    } else {
        vec![run_workload(&workload(args.workload), &args).await?]
    };
    let s = report(&outcomes, &args);
    print!("{s}");
    if let Some(out) = &args.out {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(out)?;
        f.write_all(s.as_bytes())?;
    }
    Ok(())
}
