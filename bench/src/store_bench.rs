//! The store benchmark: the embedded backend and a single-member real etcd side by side, on the
//! same machine, in the same run, both durable (every acknowledged write fsynced).
//!
//! Measures durable write throughput and p50/p99 latency with 1, 16 and 256 concurrent writers
//! (each write a create-if-absent transaction, as the API server issues), a full read of a
//! 10,000-key prefix, and watch delivery latency (from the start of a write to the event's
//! arrival at a watcher). Prints a Markdown report; `--out` also writes it to a file.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use rkube_bench::{hist, ms};
use rkube_store::embedded::{EmbeddedStore, Options};
use rkube_store::etcd::EtcdStore;
use rkube_store::testing::EtcdServer;
use rkube_store::*;

#[derive(Debug, Parser)]
#[command(about = "Store benchmark: embedded backend vs a real single-member etcd")]
struct Args {
    /// Which backends to run: embedded, etcd or both.
    #[arg(long, default_value = "both")]
    backend: String,
    /// Seconds of load per writer count.
    #[arg(long, default_value_t = 5)]
    duration: u64,
    /// Writer counts, comma-separated.
    #[arg(long, default_value = "1,16,256", value_delimiter = ',')]
    writers: Vec<usize>,
    /// Value size in bytes (a small Kubernetes object is about 1 KiB).
    #[arg(long, default_value_t = 1024)]
    value_size: usize,
    /// Keys in the range benchmark.
    #[arg(long, default_value_t = 10_000)]
    range_keys: usize,
    /// Writes timed in the watch-latency benchmark.
    #[arg(long, default_value_t = 1000)]
    watch_writes: usize,
    /// Run the range and watch benchmarks after the write phases, on the store they filled,
    /// instead of before them on a store holding only their own keys.
    #[arg(long)]
    reads_after_writes: bool,
    /// Also write the report to this file.
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

#[derive(Debug, Default)]
struct Report {
    writes: Vec<(usize, f64, f64, f64)>,
    range_ms: (f64, f64),
    watch_ms: (f64, f64),
}

async fn write_load(
    store: Arc<dyn Store>,
    writers: usize,
    secs: u64,
    value: Arc<Vec<u8>>,
    run: usize,
) -> Result<(usize, f64, f64, f64)> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        let value = value.clone();
        tasks.push(tokio::spawn(async move {
            let mut h = hist();
            let mut n = 0u64;
            while Instant::now() < deadline {
                let key = format!("/bench/{run}/{w}/{n}");
                let t0 = Instant::now();
                let resp = store
                    .txn(TxnRequest::create(key, value.as_slice().to_vec()))
                    .await?;
                let _ = h.record(t0.elapsed().as_micros() as u64);
                if !resp.succeeded {
                    bail!("create of a fresh key failed");
                }
                n += 1;
            }
            Ok(h)
        }));
    }
    let mut all = hist();
    for t in tasks {
        let h = t.await.context("writer task")??;
        all.add(&h).context("merge histograms")?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok((
        writers,
        all.len() as f64 / elapsed,
        ms(&all, 0.5),
        ms(&all, 0.99),
    ))
}

async fn range_bench(store: &Arc<dyn Store>, keys: usize, value: &[u8]) -> Result<(f64, f64)> {
    // Fill with batched transactions to keep set-up short.
    let batch = 100;
    let mut fills = Vec::new();
    for chunk in 0..keys.div_ceil(batch) {
        let store = store.clone();
        let value = value.to_vec();
        fills.push(tokio::spawn(async move {
            let ops = (chunk * batch..((chunk + 1) * batch).min(keys))
                .map(|i| TxnOp::Put(PutRequest::new(format!("/range/{i:06}"), value.clone())))
                .collect();
            store
                .txn(TxnRequest {
                    success: ops,
                    ..Default::default()
                })
                .await
        }));
        if fills.len() >= 16 {
            for f in fills.drain(..) {
                f.await.context("fill task")??;
            }
        }
    }
    for f in fills {
        f.await.context("fill task")??;
    }
    let mut h = hist();
    for _ in 0..20 {
        let t0 = Instant::now();
        let r = store
            .range(RangeRequest::new(KeyRange::prefix("/range/")))
            .await?;
        let _ = h.record(t0.elapsed().as_micros() as u64);
        if r.kvs.len() != keys {
            bail!("range returned {} keys, expected {keys}", r.kvs.len());
        }
    }
    Ok((ms(&h, 0.5), ms(&h, 0.99)))
}

async fn watch_bench(store: &Arc<dyn Store>, writes: usize, value: &[u8]) -> Result<(f64, f64)> {
    let mut w = store
        .watch(WatchRequest::new(KeyRange::prefix("/watchlat/")))
        .await?;
    let mut h = hist();
    for i in 0..writes {
        let t0 = Instant::now();
        store
            .put(PutRequest::new(format!("/watchlat/{i}"), value.to_vec()))
            .await?;
        loop {
            let resp = tokio::time::timeout(Duration::from_secs(10), w.next())
                .await
                .context("watch event within 10 s")?
                .context("watch ended")??;
            if !resp.events.is_empty() {
                break;
            }
        }
        let _ = h.record(t0.elapsed().as_micros() as u64);
    }
    Ok((ms(&h, 0.5), ms(&h, 0.99)))
}

async fn run_backend(store: Arc<dyn Store>, args: &Args) -> Result<Report> {
    let value = Arc::new(vec![b'v'; args.value_size]);
    let mut writes = Vec::new();
    if args.reads_after_writes {
        writes = write_phases(&store, args, &value).await?;
    }
    // By default reads and watches run first, on a store holding only their own keys: the write
    // phases leave each backend with as much data as it managed to write, which would not
    // compare equally.
    let range_ms = range_bench(&store, args.range_keys, &value).await?;
    eprintln!(
        "  range of {} keys: p50 {:.2} ms",
        args.range_keys, range_ms.0
    );
    let watch_ms = watch_bench(&store, args.watch_writes, &value).await?;
    eprintln!(
        "  watch delivery: p50 {:.3} ms p99 {:.3} ms",
        watch_ms.0, watch_ms.1
    );
    if !args.reads_after_writes {
        writes = write_phases(&store, args, &value).await?;
    }
    Ok(Report {
        range_ms,
        watch_ms,
        writes,
    })
}

async fn write_phases(
    store: &Arc<dyn Store>,
    args: &Args,
    value: &Arc<Vec<u8>>,
) -> Result<Vec<(usize, f64, f64, f64)>> {
    let mut out = Vec::new();
    for (run, &writers) in args.writers.iter().enumerate() {
        let r = write_load(store.clone(), writers, args.duration, value.clone(), run).await?;
        eprintln!(
            "  {writers:>4} writers: {:>9.0} writes/s  p50 {:>7.2} ms  p99 {:>7.2} ms",
            r.1, r.2, r.3
        );
        out.push(r);
    }
    Ok(out)
}

/// Reopens the embedded store after the run (everything the write phases left in it) and says
/// how long start-up took: it reads the whole log to rebuild the index.
async fn measure_restart(dir: &std::path::Path, opts: Options) -> Result<String> {
    let size = std::fs::metadata(dir.join(rkube_store::embedded::disk::DATA_FILE))?.len();
    let t0 = Instant::now();
    let store = EmbeddedStore::open_with(dir, opts).await?;
    let took = t0.elapsed();
    let revision = store.current_revision().await?;
    let line = format!(
        "\nEmbedded restart after the run: {} keys, revision {revision}, {:.0} MiB file, opened in {:.2} s.\n",
        store.indexed_keys(),
        size as f64 / (1 << 20) as f64,
        took.as_secs_f64()
    );
    eprintln!("{}", line.trim());
    Ok(line)
}

/// The machine, and the etcd the comparison ran against.
fn machine() -> String {
    let etcd = std::process::Command::new("etcd")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_string))
        .unwrap_or_else(|| "etcd not found".into());
    format!("{}; {etcd}", rkube_bench::machine())
}

fn render(args: &Args, results: &[(&str, Report)]) -> String {
    let mut s = String::new();
    let argv: Vec<String> = std::env::args().skip(1).collect();
    s.push_str("# Store benchmark results\n\n");
    s.push_str(&format!(
        "Command: `scripts/bench.sh store {}` (the `store-bench` binary of `bench/`).\n\n",
        argv.join(" ")
    ));
    s.push_str(&format!(
        "Machine: {}. Value size {} B, {} s per writer count, every write durable (fsync before ack).\n\n",
        machine(),
        args.value_size,
        args.duration
    ));
    s.push_str("| backend | writers | writes/s | p50 ms | p99 ms |\n|---|---:|---:|---:|---:|\n");
    for (name, r) in results {
        for (w, tput, p50, p99) in &r.writes {
            s.push_str(&format!(
                "| {name} | {w} | {tput:.0} | {p50:.2} | {p99:.2} |\n"
            ));
        }
    }
    s.push_str(&format!(
        "\n| backend | range of {} keys, p50 ms | p99 ms | watch delivery p50 ms | p99 ms |\n|---|---:|---:|---:|---:|\n",
        args.range_keys
    ));
    for (name, r) in results {
        s.push_str(&format!(
            "| {name} | {:.2} | {:.2} | {:.3} | {:.3} |\n",
            r.range_ms.0, r.range_ms.1, r.watch_ms.0, r.watch_ms.1
        ));
    }
    if let (Some((_, e)), Some((_, d))) = (
        results.iter().find(|r| r.0 == "embedded"),
        results.iter().find(|r| r.0 == "etcd"),
    ) {
        s.push_str("\n| writers | embedded / etcd throughput | embedded p99 / etcd p99 |\n|---:|---:|---:|\n");
        for (a, b) in e.writes.iter().zip(&d.writes) {
            s.push_str(&format!(
                "| {} | {:.1}x | {:.2} |\n",
                a.0,
                a.1 / b.1,
                a.3 / b.3
            ));
        }
    }
    s
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let mut results = Vec::new();
    // etcd runs first, so that whatever the embedded run leaves behind on the disk (a large
    // file to delete, say) cannot slow etcd down. Both data directories live until the end.
    let mut keep_alive: Vec<Box<dyn std::any::Any>> = Vec::new();
    let mut restart = None;
    if matches!(args.backend.as_str(), "etcd" | "both") {
        eprintln!("etcd:");
        let server = tokio::task::spawn_blocking(EtcdServer::start).await??;
        let store: Arc<dyn Store> =
            Arc::new(EtcdStore::connect(&[server.client_url().to_string()]).await?);
        results.push(("etcd", run_backend(store, &args).await?));
        keep_alive.push(Box::new(server));
    }
    if matches!(args.backend.as_str(), "embedded" | "both") {
        eprintln!("embedded:");
        let dir = tempfile::Builder::new()
            .prefix("rkube-bench-")
            .tempdir_in(std::env::var("RKUBE_BENCH_DIR").unwrap_or_else(|_| "/var/tmp".into()))?;
        let opts = Options {
            compaction_interval: None,
            ..Options::default()
        };
        let store: Arc<dyn Store> =
            Arc::new(EmbeddedStore::open_with(dir.path(), opts.clone()).await?);
        results.push(("embedded", run_backend(store, &args).await?));
        restart = Some(measure_restart(dir.path(), opts).await?);
        keep_alive.push(Box::new(dir));
    }
    if results.is_empty() {
        bail!("--backend must be embedded, etcd or both");
    }
    let mut report = render(&args, &results);
    if let Some(r) = restart {
        report.push_str(&r);
    }
    println!("{report}");
    if let Some(path) = &args.out {
        // The store section leads the file; the API benchmark's dated sections after it stay.
        let existing = std::fs::read_to_string(path).unwrap_or_default();
        let rest = existing
            .find("\n## API server benchmark")
            .map_or("", |i| &existing[i..]);
        let text = format!("{}{rest}", report.trim_end());
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
