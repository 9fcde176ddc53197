//! What the benchmarks share: latency histograms and the description of the machine and
//! revision a result was measured on.

use hdrhistogram::Histogram;

/// The benchmarks run on the allocator the `rkube` binary uses.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A latency histogram in microseconds, from 1 µs to 100 s with 3 significant digits.
pub fn hist() -> Histogram<u64> {
    // Constant, valid bounds.
    Histogram::new_with_bounds(1, 100_000_000, 3).expect("valid histogram bounds")
}

/// The latency at quantile `q`, in milliseconds.
pub fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

/// Cores, CPU model and memory of this machine.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| format!(", {:.0} GiB RAM", kb as f64 / 1024.0 / 1024.0))
        .unwrap_or_default();
    format!("{cores} cores ({cpu}){mem}")
}

/// The short git revision of the working tree, if there is one.
pub fn git_revision() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Appends a report to the `--out` file (creating it).
pub fn append_report(out: &std::path::Path, report: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(out)?;
    f.write_all(report.as_bytes())
}
