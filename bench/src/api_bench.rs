//! API server benchmark: create, get, update and list (1,000 and 10,000 objects) throughput
//! with p50/p99 latency at 1, 16 and 256 concurrent clients, and a watch fan-out (1,000
//! watchers; the time from a write until the last watcher has it).
//!
//! The server runs in this process on the embedded store in a temporary directory, serving
//! HTTP on loopback; clients speak HTTP/1.1 over keep-alive connections, one per client, as
//! kubectl and client-go do. Clients and server share the machine's cores. Results are
//! appended to the `--out` file with the command, the machine and the git revision.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use clap::Parser;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rkube_apiserver::storage::{self, Datastore};
use rkube_apiserver::{ApiServer, Config};
use rkube_bench::{git_revision, hist, machine, ms};
use serde_json::json;

#[derive(Debug, Parser)]
#[command(about = "rkube API server benchmark")]
struct Args {
    /// Seconds per measured phase.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Client counts to measure at.
    #[arg(long, value_delimiter = ',', default_value = "1,16,256")]
    clients: Vec<usize>,
    /// List sizes to measure.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    list_sizes: Vec<usize>,
    /// Watchers in the fan-out test.
    #[arg(long, default_value_t = 1000)]
    watchers: usize,
    /// Writes timed in the fan-out test.
    #[arg(long, default_value_t = 20)]
    fanout_writes: usize,
    /// Append the report to this file.
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

struct Target {
    client: HttpClient,
    base: String,
}

impl Target {
    async fn send(
        &self,
        method: http::Method,
        path: &str,
        ct: Option<&str>,
        body: Vec<u8>,
    ) -> Result<(u16, Bytes)> {
        let mut req = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(ct) = ct {
            req = req.header(http::header::CONTENT_TYPE, ct);
        }
        let resp = self
            .client
            .request(req.body(Full::new(Bytes::from(body)))?)
            .await?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}

fn configmap(name: &str, size: usize) -> Vec<u8> {
    let cm = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"app": "bench"}},
        "data": {"payload": "x".repeat(size)},
    });
    serde_json::to_vec(&cm).unwrap_or_default()
}

async fn create_namespace(t: &Target, ns: &str) -> Result<()> {
    let body = serde_json::to_vec(
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
    )?;
    let (code, resp) = t
        .send(
            http::Method::POST,
            "/api/v1/namespaces",
            Some("application/json"),
            body,
        )
        .await?;
    if code != 201 && code != 409 {
        bail!(
            "creating namespace {ns}: {code} {}",
            String::from_utf8_lossy(&resp)
        );
    }
    Ok(())
}

/// One phase: `clients` tasks each issue `op(client, i)` until the duration passes.
async fn phase<F, Fut>(
    t: &Arc<Target>,
    clients: usize,
    duration: Duration,
    op: F,
) -> Result<(f64, Histogram<u64>)>
where
    F: Fn(Arc<Target>, usize, usize) -> Fut + Send + Sync + 'static + Clone,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let counter = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let t = t.clone();
        let op = op.clone();
        let counter = counter.clone();
        tasks.push(tokio::spawn(async move {
            let mut h = hist();
            while start.elapsed() < duration {
                let i = counter.fetch_add(1, Ordering::Relaxed);
                let s = Instant::now();
                op(t.clone(), c, i).await?;
                h.record(s.elapsed().as_micros().max(1) as u64)?;
            }
            Ok::<_, anyhow::Error>(h)
        }));
    }
    let mut all = hist();
    for task in tasks {
        all.add(task.await??)?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    Ok((all.len() as f64 / elapsed, all))
}

struct Row {
    op: String,
    clients: usize,
    per_sec: f64,
    p50: f64,
    p99: f64,
}

async fn run_crud(
    t: &Arc<Target>,
    clients: usize,
    duration: Duration,
    rows: &mut Vec<Row>,
) -> Result<()> {
    let ns = format!("crud-{clients}");
    create_namespace(t, &ns).await?;
    let created = Arc::new(AtomicUsize::new(0));
    let (ns2, c2) = (ns.clone(), created.clone());
    let (rate, h) = phase(t, clients, duration, move |t, _, i| {
        let ns = ns2.clone();
        let c = c2.clone();
        async move {
            let (code, body) = t
                .send(
                    http::Method::POST,
                    &format!("/api/v1/namespaces/{ns}/configmaps"),
                    Some("application/json"),
                    configmap(&format!("cm-{i}"), 256),
                )
                .await?;
            if code != 201 {
                bail!("create: {code} {}", String::from_utf8_lossy(&body));
            }
            c.fetch_max(i + 1, Ordering::Relaxed);
            Ok(())
        }
    })
    .await?;
    rows.push(Row {
        op: "create".into(),
        clients,
        per_sec: rate,
        p50: ms(&h, 0.5),
        p99: ms(&h, 0.99),
    });
    let n = created.load(Ordering::Relaxed).max(1);
    let ns2 = ns.clone();
    let (rate, h) = phase(t, clients, duration, move |t, _, _| {
        let ns = ns2.clone();
        async move {
            let i = rand::random_range(0..n);
            let (code, body) = t
                .send(
                    http::Method::GET,
                    &format!("/api/v1/namespaces/{ns}/configmaps/cm-{i}"),
                    None,
                    Vec::new(),
                )
                .await?;
            if code != 200 {
                bail!("get: {code} {}", String::from_utf8_lossy(&body));
            }
            Ok(())
        }
    })
    .await?;
    rows.push(Row {
        op: "get".into(),
        clients,
        per_sec: rate,
        p50: ms(&h, 0.5),
        p99: ms(&h, 0.99),
    });
    let ns2 = ns.clone();
    let (rate, h) = phase(t, clients, duration, move |t, c, i| {
        let ns = ns2.clone();
        async move {
            // Each client updates its own objects, so updates measure the write path rather
            // than conflict retries.
            let obj = (c + clients * (i % 64)) % n;
            let patch = serde_json::to_vec(&json!({"data": {"counter": i.to_string()}}))?;
            let (code, body) = t
                .send(
                    http::Method::PATCH,
                    &format!("/api/v1/namespaces/{ns}/configmaps/cm-{obj}"),
                    Some("application/merge-patch+json"),
                    patch,
                )
                .await?;
            if code != 200 {
                bail!("update: {code} {}", String::from_utf8_lossy(&body));
            }
            Ok(())
        }
    })
    .await?;
    rows.push(Row {
        op: "update (merge patch)".into(),
        clients,
        per_sec: rate,
        p50: ms(&h, 0.5),
        p99: ms(&h, 0.99),
    });
    Ok(())
}

async fn fill(t: &Arc<Target>, ns: &str, n: usize) -> Result<()> {
    create_namespace(t, ns).await?;
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (t, next, ns) = (t.clone(), next.clone(), ns.to_string());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<_, anyhow::Error>(());
                }
                let (code, body) = t
                    .send(
                        http::Method::POST,
                        &format!("/api/v1/namespaces/{ns}/configmaps"),
                        Some("application/json"),
                        configmap(&format!("item-{i:06}"), 256),
                    )
                    .await?;
                if code != 201 {
                    bail!("fill: {code} {}", String::from_utf8_lossy(&body));
                }
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

async fn run_lists(t: &Arc<Target>, args: &Args, rows: &mut Vec<Row>) -> Result<()> {
    for &size in &args.list_sizes {
        let ns = format!("list-{size}");
        fill(t, &ns, size)
            .await
            .with_context(|| format!("filling {ns}"))?;
        for &clients in &args.clients {
            let ns2 = ns.clone();
            let (rate, h) = phase(
                t,
                clients,
                Duration::from_secs_f64(args.duration),
                move |t, _, _| {
                    let ns = ns2.clone();
                    async move {
                        let (code, body) = t
                            .send(
                                http::Method::GET,
                                &format!("/api/v1/namespaces/{ns}/configmaps"),
                                None,
                                Vec::new(),
                            )
                            .await?;
                        if code != 200 {
                            bail!("list: {code}");
                        }
                        if body.len() < size * 256 {
                            bail!("list returned {} bytes for {size} objects", body.len());
                        }
                        Ok(())
                    }
                },
            )
            .await?;
            rows.push(Row {
                op: format!("list {size}"),
                clients,
                per_sec: rate,
                p50: ms(&h, 0.5),
                p99: ms(&h, 0.99),
            });
        }
    }
    Ok(())
}

/// Opens `watchers` watches, then times each of `writes` writes until every watcher has seen it.
async fn run_fanout(t: &Arc<Target>, args: &Args) -> Result<(Histogram<u64>, Histogram<u64>)> {
    let ns = "fanout";
    create_namespace(t, ns).await?;
    let (code, body) = t
        .send(
            http::Method::GET,
            &format!("/api/v1/namespaces/{ns}/configmaps"),
            None,
            Vec::new(),
        )
        .await?;
    if code != 200 {
        bail!("list: {code}");
    }
    let rv = serde_json::from_slice::<serde_json::Value>(&body)?["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("0")
        .to_string();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, Instant)>();
    let ready = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..args.watchers {
        let (t, tx, rv, ready) = (t.clone(), tx.clone(), rv.clone(), ready.clone());
        tasks.push(tokio::spawn(async move {
            let uri = format!(
                "{}/api/v1/namespaces/{ns}/configmaps?watch=true&resourceVersion={rv}",
                t.base
            );
            let req = http::Request::get(uri).body(Full::new(Bytes::new()))?;
            let resp = t.client.request(req).await?;
            ready.fetch_add(1, Ordering::Relaxed);
            let mut body = resp.into_body();
            let mut buf = Vec::new();
            while let Some(frame) = body.frame().await {
                if let Ok(data) = frame?.into_data() {
                    buf.extend_from_slice(&data);
                    while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = buf.drain(..=pos).collect();
                        let v: serde_json::Value = serde_json::from_slice(&line)?;
                        if let Some(i) = v["object"]["metadata"]["name"]
                            .as_str()
                            .and_then(|n| n.strip_prefix("fan-"))
                            .and_then(|n| n.parse().ok())
                        {
                            let _ = tx.send((i, Instant::now()));
                        }
                    }
                }
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    drop(tx);
    let deadline = Instant::now() + Duration::from_secs(60);
    while ready.load(Ordering::Relaxed) < args.watchers {
        if Instant::now() > deadline {
            bail!(
                "only {} of {} watchers connected",
                ready.load(Ordering::Relaxed),
                args.watchers
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut last = hist();
    let mut median = hist();
    for i in 0..args.fanout_writes {
        let start = Instant::now();
        let (code, _) = t
            .send(
                http::Method::POST,
                &format!("/api/v1/namespaces/{ns}/configmaps"),
                Some("application/json"),
                configmap(&format!("fan-{i}"), 256),
            )
            .await?;
        if code != 201 {
            bail!("fan-out write: {code}");
        }
        let mut seen = Vec::with_capacity(args.watchers);
        while seen.len() < args.watchers {
            match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
                Ok(Some((j, at))) if j == i => seen.push(at.duration_since(start)),
                Ok(Some(_)) => {}
                _ => bail!(
                    "write {i}: only {} of {} watchers saw it",
                    seen.len(),
                    args.watchers
                ),
            }
        }
        seen.sort();
        median.record(seen[seen.len() / 2].as_micros().max(1) as u64)?;
        last.record(seen[seen.len() - 1].as_micros().max(1) as u64)?;
    }
    for task in tasks {
        task.abort();
    }
    Ok((median, last))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let dir = tempfile::Builder::new()
        .prefix("rkube-api-bench-")
        .tempdir()?;
    let store = storage::open(dir.path(), &Datastore::Embedded).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = ApiServer::new(
        store,
        Config {
            server_address: addr.to_string(),
            ..Config::default()
        },
        rkube_apiserver::Security::insecure(),
    )
    .await?;
    tokio::spawn(rkube_apiserver::serve(
        server,
        listener,
        std::future::pending(),
    ));
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(1024)
        .build_http();
    let t = Arc::new(Target {
        client,
        base: format!("http://{addr}"),
    });
    let duration = Duration::from_secs_f64(args.duration);

    let mut rows = Vec::new();
    for &c in &args.clients {
        eprintln!("create/get/update at {c} clients");
        run_crud(&t, c, duration, &mut rows).await?;
    }
    eprintln!("lists");
    run_lists(&t, &args, &mut rows).await?;
    eprintln!("watch fan-out, {} watchers", args.watchers);
    let (median, last) = run_fanout(&t, &args).await?;

    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut s = String::new();
    s.push_str(&format!(
        "\n## API server benchmark ({})\n\n",
        jiff::Timestamp::now().strftime("%Y-%m-%d")
    ));
    s.push_str(&format!(
        "Command: `scripts/bench.sh api {}`. Machine: {}. Git revision {}. \
         Embedded store, every write fsynced; server and clients in one process over loopback HTTP/1.1; \
         ConfigMaps with a 256-byte value; {} s per phase.\n\n",
        argv.join(" "),
        machine(),
        git_revision(),
        args.duration
    ));
    s.push_str(
        "| operation | clients | requests/s | p50 ms | p99 ms |\n|---|---:|---:|---:|---:|\n",
    );
    for r in &rows {
        s.push_str(&format!(
            "| {} | {} | {:.0} | {:.2} | {:.2} |\n",
            r.op, r.clients, r.per_sec, r.p50, r.p99
        ));
    }
    s.push_str(&format!(
        "\nWatch fan-out: {} watchers, {} writes. Time from the write until the median watcher has it: p50 {:.2} ms, p99 {:.2} ms; until the last watcher has it: p50 {:.2} ms, p99 {:.2} ms.\n",
        args.watchers,
        args.fanout_writes,
        ms(&median, 0.5),
        ms(&median, 0.99),
        ms(&last, 0.5),
        ms(&last, 0.99)
    ));
    print!("{s}");
    if let Some(out) = &args.out {
        rkube_bench::append_report(out, &s)?;
    }
    Ok(())
}
