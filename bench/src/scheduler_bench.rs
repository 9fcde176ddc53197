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

#[path = "scheduler_bench/client.rs"]
mod client;
#[path = "scheduler_bench/workloads.rs"]
mod workloads;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use client::{create_all, BindWatch, HttpClient, Target};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rkube_apiserver::admission::Admission;
use rkube_apiserver::storage::{self, Datastore};
use rkube_apiserver::{ApiServer, Config, Security};
use rkube_bench::{git_revision, machine};
use serde::{Deserialize, Serialize};
use serde_json::json;
use workloads::{node, pod, workload, PodTemplate, Workload, WorkloadArg, INIT_NS, MEASURE_NS};

#[derive(Debug, Parser)]
#[command(about = "rkube scheduler benchmark (upstream's scheduler_perf workloads)")]
struct Args {
    /// Which workload to run; `all` runs each in its own process, one after the other.
    #[arg(long, value_enum, default_value = "basic")]
    workload: WorkloadArg,
    /// Multiplies every size of the workload (nodes, init and measured pods), keeping its
    /// shape: `--scale 0.1` is a quick run that still fits (anti-affinity needs a node per
    /// pod, preemption four low-priority pods per node).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
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
    /// Create the pods without a scheduler, to see how fast this machine's API server takes
    /// them (the ceiling of the measured rate); pods/s is then the create rate.
    #[arg(long)]
    create_only: bool,
    /// Append the report to this file.
    #[arg(long)]
    out: Option<std::path::PathBuf>,
    /// Internal: run one workload and print its outcome as one JSON line.
    #[arg(long, hide = true)]
    child: bool,
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
    /// No scheduler ran: only pod creation was timed.
    create_only: bool,
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
        let (n, secs) = if self.create_only {
            (self.measured_pods, self.create_secs)
        } else {
            (self.bound, self.elapsed)
        };
        if secs > 0.0 {
            n as f64 / secs
        } else {
            0.0
        }
    }

    fn verdict(&self) -> String {
        if self.create_only {
            return "create only (no scheduler): pods/s is the create rate".into();
        }
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
    proc_status_mib("VmHWM:")
}

/// A size line of /proc/self/status (`VmHWM:`, `VmRSS:`), in MiB.
fn proc_status_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

async fn run_workload(w: &Workload, args: &Args) -> Result<Outcome> {
    let scaled = |n: usize| ((n as f64 * args.scale).round() as usize).max(1);
    let nodes = args.nodes.unwrap_or(scaled(w.nodes));
    let init_pods = args.init_pods.unwrap_or(scaled(w.init_pods));
    let measured = args.pods.unwrap_or(scaled(w.measured_pods));
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

    eprintln!(
        "{}: {:.0} MiB resident after the nodes",
        w.flag,
        proc_status_mib("VmRSS:")
    );

    // The scheduler starts after the nodes exist, so its first list has all of them.
    let metrics = Arc::new(rkube_scheduler::Metrics::default());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let scheduler = (!args.create_only).then(|| {
        let client = server.client(rkube_apiserver::authz::User {
            name: "system:kube-scheduler".into(),
            groups: vec!["system:masters".into()],
            ..Default::default()
        });
        tokio::spawn(rkube_scheduler::run(
            client,
            rkube_scheduler::KubeSchedulerConfiguration::default(),
            metrics.clone(),
            async move {
                let _ = stop_rx.await;
            },
        ))
    });
    // Without a scheduler nothing is bound: creating is all there is to wait for.
    let wait_timeout = if args.create_only {
        Duration::ZERO
    } else {
        timeout
    };

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
    let init_bound = init_watch.wait(init_pods, wait_timeout, "init pods").await;
    let init_secs = init_start.elapsed().as_secs_f64();
    drop(init_watch);
    if init_bound < init_pods && !args.create_only {
        eprintln!(
            "{}: only {init_bound} of {init_pods} init pods bound; measuring anyway",
            w.flag
        );
    }
    eprintln!(
        "{}: {:.0} MiB resident after the init pods",
        w.flag,
        proc_status_mib("VmRSS:")
    );

    let profile = rkube_scheduler::config::DEFAULT_SCHEDULER_NAME;
    // The scheduler counts an attempt when its bind returns, which can be after the watch
    // shows the pod bound: let the init pods' attempts land before taking the baseline.
    let settle = Instant::now() + Duration::from_secs(2);
    while scheduler.is_some()
        && metrics.attempts("scheduled", profile) < init_bound as u64
        && Instant::now() < settle
    {
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
    let bound = watch.wait(measured, wait_timeout, "measured pods").await;
    let end = watch
        .last
        .lock()
        .ok()
        .and_then(|l| *l)
        .unwrap_or_else(Instant::now);
    let elapsed = end.saturating_duration_since(start).as_secs_f64();
    drop(watch);
    eprintln!(
        "{}: {:.0} MiB resident after the measured pods",
        w.flag,
        proc_status_mib("VmRSS:")
    );

    // As before the baseline: the last binds' attempts may land just after the watch saw them.
    let settle = Instant::now() + Duration::from_secs(2);
    while scheduler.is_some()
        && metrics.attempts("scheduled", profile) < before.0 + bound as u64
        && Instant::now() < settle
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = stop_tx.send(());
    if let Some(scheduler) = scheduler {
        match tokio::time::timeout(Duration::from_secs(10), scheduler).await {
            Ok(Ok(Err(e))) => eprintln!("the scheduler failed: {e}"),
            Ok(Err(e)) => eprintln!("the scheduler task failed: {e}"),
            Err(_) => eprintln!("the scheduler did not stop within 10 s"),
            Ok(Ok(Ok(()))) => {}
        }
    }
    Ok(Outcome {
        workload: w.flag.to_string(),
        upstream: w.upstream.to_string(),
        nodes,
        init_pods,
        measured_pods: measured,
        upstream_sizes,
        create_only: args.create_only,
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
        .args(["--timeout", &args.timeout.to_string()])
        .args(["--scale", &args.scale.to_string()]);
    if args.create_only {
        cmd.arg("--create-only");
    }
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
         Priority admission plugins off as in scheduler_perf (every client is in system:masters, \
         which the in-flight limits exempt, as upstream's); the scheduler in the same process \
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
        rkube_bench::append_report(out, &s)?;
    }
    Ok(())
}
