//! Resource usage: `/stats/summary` in upstream's Summary API shape (`stats/v1alpha1`),
//! `/metrics/resource` (what metrics-server scrapes) and `/runningpods/`, from the runtime's
//! `ListContainerStats` / `ListPodSandboxStats` and, for the node, the root cgroup and
//! `/proc`.
//!
//! [`Snapshot`] is gathered once per request; rendering it ([`Snapshot::summary_json`],
//! [`Snapshot::resource_metrics`]) is pure. CPU rates (`usageNanoCores`) come from the
//! runtime when it reports them, else from the difference to the previous sample this
//! server took of the same container ([`Sampler`]).

use std::collections::HashMap;
use std::fmt::Write as _;

use jiff::Timestamp;
use k8s_cri::v1 as cri;
use parking_lot::Mutex;
use serde_json::{json, Value};

use super::Server;
use crate::cri::{CallExt, Cri, CriError};
use crate::labels;

/// Cumulative CPU samples per key, for rates.
#[derive(Debug, Default)]
pub struct Sampler {
    last: Mutex<HashMap<String, (i64, u64)>>,
}

impl Sampler {
    /// The rate in nanocores since the previous sample of `key`, recording this one.
    pub fn nano_cores(&self, key: &str, at_nanos: i64, usage_nanos: u64) -> Option<u64> {
        let mut last = self.last.lock();
        let prev = last.insert(key.to_string(), (at_nanos, usage_nanos));
        let (t0, u0) = prev?;
        rate(t0, u0, at_nanos, usage_nanos)
    }
}

/// CPU nanoseconds per second between two cumulative samples.
pub fn rate(t0: i64, u0: u64, t1: i64, u1: u64) -> Option<u64> {
    let dt = t1.checked_sub(t0).filter(|d| *d > 0)? as u128;
    let du = u1.checked_sub(u0)? as u128;
    Some((du * 1_000_000_000 / dt) as u64)
}

/// CPU usage at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cpu {
    pub time: i64,
    pub usage_core_nano_seconds: Option<u64>,
    pub usage_nano_cores: Option<u64>,
}

/// Memory usage at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Memory {
    pub time: i64,
    pub working_set_bytes: Option<u64>,
    pub usage_bytes: Option<u64>,
    pub available_bytes: Option<u64>,
    pub rss_bytes: Option<u64>,
    pub page_faults: Option<u64>,
    pub major_page_faults: Option<u64>,
}

/// One container's usage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerUsage {
    pub name: String,
    pub start_time: i64,
    pub cpu: Cpu,
    pub memory: Memory,
    pub rootfs_used_bytes: Option<u64>,
    pub rootfs_inodes_used: Option<u64>,
}

/// One pod's usage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodUsage {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub start_time: i64,
    pub containers: Vec<ContainerUsage>,
    pub cpu: Cpu,
    pub memory: Memory,
    pub process_count: Option<u64>,
    /// (interface, rx bytes, tx bytes) of the pod's default interface.
    pub network: Option<(String, u64, u64)>,
}

/// The node's usage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeUsage {
    pub name: String,
    pub start_time: i64,
    pub cpu: Cpu,
    pub memory: Memory,
    /// (capacity, available, used) bytes of the root filesystem.
    pub fs: Option<(u64, u64, u64)>,
    /// used bytes and inodes of the runtime's image filesystem.
    pub image_fs: Option<(u64, u64)>,
}

/// Everything one `/stats/summary` or `/metrics/resource` shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub node: NodeUsage,
    pub pods: Vec<PodUsage>,
}

fn time_string(nanos: i64) -> Value {
    match Timestamp::from_nanosecond(i128::from(nanos)) {
        Ok(ts) if nanos > 0 => Value::String(ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()),
        _ => Value::Null,
    }
}

fn put(map: &mut serde_json::Map<String, Value>, key: &str, v: Option<u64>) {
    if let Some(v) = v {
        map.insert(key.into(), json!(v));
    }
}

fn cpu_json(c: &Cpu) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("time".into(), time_string(c.time));
    put(&mut m, "usageNanoCores", c.usage_nano_cores);
    put(&mut m, "usageCoreNanoSeconds", c.usage_core_nano_seconds);
    Value::Object(m)
}

fn memory_json(mem: &Memory) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("time".into(), time_string(mem.time));
    put(&mut m, "availableBytes", mem.available_bytes);
    put(&mut m, "usageBytes", mem.usage_bytes);
    put(&mut m, "workingSetBytes", mem.working_set_bytes);
    put(&mut m, "rssBytes", mem.rss_bytes);
    put(&mut m, "pageFaults", mem.page_faults);
    put(&mut m, "majorPageFaults", mem.major_page_faults);
    Value::Object(m)
}

impl Snapshot {
    /// The Summary API document.
    pub fn summary_json(&self) -> Value {
        let n = &self.node;
        let mut node = json!({
            "nodeName": n.name,
            "systemContainers": [],
            "startTime": time_string(n.start_time),
            "cpu": cpu_json(&n.cpu),
            "memory": memory_json(&n.memory),
        });
        if let Some((capacity, available, used)) = n.fs {
            node["fs"] = json!({
                "time": time_string(n.cpu.time),
                "availableBytes": available,
                "capacityBytes": capacity,
                "usedBytes": used,
            });
        }
        if let Some((used, inodes)) = n.image_fs {
            node["runtime"] = json!({"imageFs": {
                "time": time_string(n.cpu.time),
                "usedBytes": used,
                "inodesUsed": inodes,
            }});
        }
        let pods: Vec<Value> = self
            .pods
            .iter()
            .map(|p| {
                let containers: Vec<Value> = p
                    .containers
                    .iter()
                    .map(|c| {
                        let mut rootfs = serde_json::Map::new();
                        rootfs.insert("time".into(), time_string(c.cpu.time));
                        put(&mut rootfs, "usedBytes", c.rootfs_used_bytes);
                        put(&mut rootfs, "inodesUsed", c.rootfs_inodes_used);
                        json!({
                            "name": c.name,
                            "startTime": time_string(c.start_time),
                            "cpu": cpu_json(&c.cpu),
                            "memory": memory_json(&c.memory),
                            "rootfs": rootfs,
                        })
                    })
                    .collect();
                let ephemeral: u64 = p
                    .containers
                    .iter()
                    .filter_map(|c| c.rootfs_used_bytes)
                    .sum();
                let mut pod = json!({
                    "podRef": {"name": p.name, "namespace": p.namespace, "uid": p.uid},
                    "startTime": time_string(p.start_time),
                    "containers": containers,
                    "cpu": cpu_json(&p.cpu),
                    "memory": memory_json(&p.memory),
                    "ephemeral-storage": {"time": time_string(p.cpu.time), "usedBytes": ephemeral},
                });
                if let Some(count) = p.process_count {
                    pod["process_stats"] = json!({"process_count": count});
                }
                if let Some((name, rx, tx)) = &p.network {
                    pod["network"] = json!({
                        "time": time_string(p.cpu.time),
                        "name": name, "rxBytes": rx, "txBytes": tx,
                        "interfaces": [{"name": name, "rxBytes": rx, "txBytes": tx}],
                    });
                }
                pod
            })
            .collect();
        json!({"node": node, "pods": pods})
    }

    /// The `/metrics/resource` exposition. Written out here because every sample carries
    /// the time it was taken, which prometheus-client's encoder cannot express.
    pub fn resource_metrics(&self) -> String {
        let mut out = String::new();
        let ms = |nanos: i64| nanos / 1_000_000;
        let secs = |nanos: u64| nanos as f64 / 1e9;
        let header = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} [STABLE] {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
        };
        header(
            &mut out,
            "container_cpu_usage_seconds_total",
            "counter",
            "Cumulative cpu time consumed by the container in core-seconds",
        );
        for p in &self.pods {
            for c in &p.containers {
                if let Some(u) = c.cpu.usage_core_nano_seconds {
                    let _ = writeln!(out, "container_cpu_usage_seconds_total{{container=\"{}\",namespace=\"{}\",pod=\"{}\"}} {} {}",
                        c.name, p.namespace, p.name, secs(u), ms(c.cpu.time));
                }
            }
        }
        header(
            &mut out,
            "container_memory_working_set_bytes",
            "gauge",
            "Current working set of the container in bytes",
        );
        for p in &self.pods {
            for c in &p.containers {
                if let Some(w) = c.memory.working_set_bytes {
                    let _ = writeln!(out, "container_memory_working_set_bytes{{container=\"{}\",namespace=\"{}\",pod=\"{}\"}} {} {}",
                        c.name, p.namespace, p.name, w, ms(c.memory.time));
                }
            }
        }
        header(
            &mut out,
            "container_start_time_seconds",
            "gauge",
            "Start time of the container since unix epoch in seconds",
        );
        for p in &self.pods {
            for c in &p.containers {
                let _ = writeln!(out, "container_start_time_seconds{{container=\"{}\",namespace=\"{}\",pod=\"{}\"}} {} {}",
                    c.name, p.namespace, p.name, c.start_time as f64 / 1e9, ms(c.start_time));
            }
        }
        header(
            &mut out,
            "node_cpu_usage_seconds_total",
            "counter",
            "Cumulative cpu time consumed by the node in core-seconds",
        );
        if let Some(u) = self.node.cpu.usage_core_nano_seconds {
            let _ = writeln!(
                out,
                "node_cpu_usage_seconds_total {} {}",
                secs(u),
                ms(self.node.cpu.time)
            );
        }
        header(
            &mut out,
            "node_memory_working_set_bytes",
            "gauge",
            "Current working set of the node in bytes",
        );
        if let Some(w) = self.node.memory.working_set_bytes {
            let _ = writeln!(
                out,
                "node_memory_working_set_bytes {} {}",
                w,
                ms(self.node.memory.time)
            );
        }
        header(
            &mut out,
            "pod_cpu_usage_seconds_total",
            "counter",
            "Cumulative cpu time consumed by the pod in core-seconds",
        );
        for p in &self.pods {
            if let Some(u) = p.cpu.usage_core_nano_seconds {
                let _ = writeln!(
                    out,
                    "pod_cpu_usage_seconds_total{{namespace=\"{}\",pod=\"{}\"}} {} {}",
                    p.namespace,
                    p.name,
                    secs(u),
                    ms(p.cpu.time)
                );
            }
        }
        header(
            &mut out,
            "pod_memory_working_set_bytes",
            "gauge",
            "Current working set of the pod in bytes",
        );
        for p in &self.pods {
            if let Some(w) = p.memory.working_set_bytes {
                let _ = writeln!(
                    out,
                    "pod_memory_working_set_bytes{{namespace=\"{}\",pod=\"{}\"}} {} {}",
                    p.namespace,
                    p.name,
                    w,
                    ms(p.memory.time)
                );
            }
        }
        header(
            &mut out,
            "resource_scrape_error",
            "gauge",
            "1 if there was an error while getting container metrics, 0 otherwise",
        );
        let _ = writeln!(out, "resource_scrape_error 0");
        out
    }
}

fn val(v: &Option<cri::UInt64Value>) -> Option<u64> {
    v.as_ref().map(|v| v.value)
}

fn cpu_of(c: &Option<cri::CpuUsage>, key: &str, sampler: &Sampler) -> Cpu {
    let Some(c) = c else { return Cpu::default() };
    let usage = val(&c.usage_core_nano_seconds);
    let sampled = usage.and_then(|u| sampler.nano_cores(key, c.timestamp, u));
    Cpu {
        time: c.timestamp,
        usage_core_nano_seconds: usage,
        usage_nano_cores: val(&c.usage_nano_cores).filter(|v| *v > 0).or(sampled),
    }
}

fn memory_of(m: &Option<cri::MemoryUsage>) -> Memory {
    let Some(m) = m else { return Memory::default() };
    Memory {
        time: m.timestamp,
        working_set_bytes: val(&m.working_set_bytes),
        usage_bytes: val(&m.usage_bytes),
        available_bytes: val(&m.available_bytes).filter(|v| *v > 0),
        rss_bytes: val(&m.rss_bytes),
        page_faults: val(&m.page_faults),
        major_page_faults: val(&m.major_page_faults),
    }
}

fn add(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a + b),
        (a, b) => a.or(b),
    }
}

/// Gathers usage from the runtime and the node.
pub async fn snapshot(server: &Server) -> Result<Snapshot, CriError> {
    let cri = &server.deps.cri;
    let mut rt = cri.runtime.clone();
    let sandboxes = rt
        .list_pod_sandbox(cri::ListPodSandboxRequest {
            filter: Some(cri::PodSandboxFilter {
                state: Some(cri::PodSandboxStateValue {
                    state: cri::PodSandboxState::SandboxReady as i32,
                }),
                ..Default::default()
            }),
        })
        .await
        .call("ListPodSandbox")?
        .items;
    let containers = rt
        .list_containers(cri::ListContainersRequest {
            filter: Some(cri::ContainerFilter {
                state: Some(cri::ContainerStateValue {
                    state: cri::ContainerState::ContainerRunning as i32,
                }),
                ..Default::default()
            }),
        })
        .await
        .call("ListContainers")?
        .containers;
    let stats: HashMap<String, cri::ContainerStats> = rt
        .list_container_stats(cri::ListContainerStatsRequest { filter: None })
        .await
        .call("ListContainerStats")?
        .stats
        .into_iter()
        .filter_map(|s| Some((s.attributes.as_ref()?.id.clone(), s)))
        .collect();
    // Pod-level stats are newer CRI; a runtime without them gets sums of its containers.
    let sandbox_stats: HashMap<String, cri::PodSandboxStats> = rt
        .list_pod_sandbox_stats(cri::ListPodSandboxStatsRequest { filter: None })
        .await
        .map(|r| r.into_inner().stats)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|s| Some((s.attributes.as_ref()?.id.clone(), s)))
        .collect();
    let mut pods = Vec::new();
    for sb in &sandboxes {
        let label = |k: &str| sb.labels.get(k).cloned().unwrap_or_default();
        let meta = sb.metadata.clone().unwrap_or_default();
        let name = Some(label(labels::POD_NAME))
            .filter(|s| !s.is_empty())
            .unwrap_or(meta.name);
        let namespace = Some(label(labels::POD_NAMESPACE))
            .filter(|s| !s.is_empty())
            .unwrap_or(meta.namespace);
        let uid = Some(label(labels::POD_UID))
            .filter(|s| !s.is_empty())
            .unwrap_or(meta.uid);
        let mut pod = PodUsage {
            name,
            namespace,
            uid,
            start_time: sb.created_at,
            ..Default::default()
        };
        for c in containers.iter().filter(|c| c.pod_sandbox_id == sb.id) {
            let s = stats.get(&c.id);
            let cname = c
                .labels
                .get(labels::CONTAINER_NAME)
                .cloned()
                .or_else(|| c.metadata.as_ref().map(|m| m.name.clone()))
                .unwrap_or_default();
            let usage = ContainerUsage {
                name: cname,
                start_time: c.created_at,
                cpu: s
                    .map(|s| cpu_of(&s.cpu, &c.id, &server.stats))
                    .unwrap_or_default(),
                memory: s.map(|s| memory_of(&s.memory)).unwrap_or_default(),
                rootfs_used_bytes: s
                    .and_then(|s| s.writable_layer.as_ref())
                    .and_then(|w| val(&w.used_bytes)),
                rootfs_inodes_used: s
                    .and_then(|s| s.writable_layer.as_ref())
                    .and_then(|w| val(&w.inodes_used)),
            };
            pod.containers.push(usage);
        }
        pod.containers.sort_by(|a, b| a.name.cmp(&b.name));
        match sandbox_stats.get(&sb.id).and_then(|s| s.linux.as_ref()) {
            Some(linux) => {
                pod.cpu = cpu_of(&linux.cpu, &format!("pod/{}", sb.id), &server.stats);
                pod.memory = memory_of(&linux.memory);
                pod.process_count = linux.process.as_ref().and_then(|p| val(&p.process_count));
                pod.network = linux
                    .network
                    .as_ref()
                    .and_then(|n| n.default_interface.as_ref())
                    .map(|i| {
                        (
                            i.name.clone(),
                            val(&i.rx_bytes).unwrap_or(0),
                            val(&i.tx_bytes).unwrap_or(0),
                        )
                    });
            }
            None => {
                for c in &pod.containers {
                    pod.cpu.time = pod.cpu.time.max(c.cpu.time);
                    pod.cpu.usage_core_nano_seconds = add(
                        pod.cpu.usage_core_nano_seconds,
                        c.cpu.usage_core_nano_seconds,
                    );
                    pod.cpu.usage_nano_cores =
                        add(pod.cpu.usage_nano_cores, c.cpu.usage_nano_cores);
                    pod.memory.time = pod.memory.time.max(c.memory.time);
                    pod.memory.working_set_bytes =
                        add(pod.memory.working_set_bytes, c.memory.working_set_bytes);
                    pod.memory.usage_bytes = add(pod.memory.usage_bytes, c.memory.usage_bytes);
                    pod.memory.rss_bytes = add(pod.memory.rss_bytes, c.memory.rss_bytes);
                }
            }
        }
        pods.push(pod);
    }
    pods.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    let image_fs = cri
        .images
        .clone()
        .image_fs_info(cri::ImageFsInfoRequest {})
        .await
        .ok()
        .and_then(|r| {
            let fs = r.into_inner().image_filesystems.into_iter().next()?;
            Some((
                val(&fs.used_bytes).unwrap_or(0),
                val(&fs.inodes_used).unwrap_or(0),
            ))
        });
    let mut node = node_usage(&server.deps.node_name, &server.stats);
    node.image_fs = image_fs;
    Ok(Snapshot { node, pods })
}

/// The node's usage from the root cgroup and `/proc`.
fn node_usage(name: &str, sampler: &Sampler) -> NodeUsage {
    let now = Timestamp::now().as_nanosecond() as i64;
    let usage = root_cpu_usage();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem = |key: &str| {
        meminfo.lines().find_map(|l| {
            let rest = l.strip_prefix(key)?.strip_prefix(':')?;
            rest.split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
                .map(|kb| kb * 1024)
        })
    };
    let (total, free, available) = (mem("MemTotal"), mem("MemFree"), mem("MemAvailable"));
    let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("btime ")?.trim().parse::<i64>().ok())
    });
    let fs = nix::sys::statvfs::statvfs("/").ok().map(|s| {
        let frsize = s.fragment_size();
        let capacity = s.blocks() * frsize;
        let available = s.blocks_available() * frsize;
        let used = capacity.saturating_sub(s.blocks_free() * frsize);
        (capacity, available, used)
    });
    NodeUsage {
        name: name.to_string(),
        start_time: boot.map(|b| b * 1_000_000_000).unwrap_or(0),
        cpu: Cpu {
            time: now,
            usage_core_nano_seconds: usage,
            usage_nano_cores: usage.and_then(|u| sampler.nano_cores("node", now, u)),
        },
        memory: Memory {
            time: now,
            available_bytes: available,
            usage_bytes: match (total, free) {
                (Some(t), Some(f)) => Some(t.saturating_sub(f)),
                _ => None,
            },
            working_set_bytes: match (total, available) {
                (Some(t), Some(a)) => Some(t.saturating_sub(a)),
                _ => None,
            },
            ..Default::default()
        },
        fs,
        image_fs: None,
    }
}

/// Total CPU time of the machine in nanoseconds: the root cgroup's (v1 cpuacct, or v2
/// cpu.stat), else `/proc/stat`'s jiffies.
fn root_cpu_usage() -> Option<u64> {
    if let Some(v) = std::fs::read_to_string("/sys/fs/cgroup/cpuacct/cpuacct.usage")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
    {
        return Some(v);
    }
    if let Some(v) = std::fs::read_to_string("/sys/fs/cgroup/cpu.stat")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("usage_usec ")?.trim().parse::<u64>().ok())
        })
    {
        return Some(v * 1000);
    }
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = cpu
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system (idle iowait skipped) irq softirq steal
    let busy: u64 = fields
        .iter()
        .enumerate()
        .filter(|(i, _)| !matches!(i, 3 | 4))
        .take(8)
        .map(|(_, v)| *v)
        .sum();
    Some(busy * 10_000_000)
}

/// `/stats/summary`.
pub async fn summary(server: &Server) -> Result<Value, CriError> {
    Ok(snapshot(server).await?.summary_json())
}

/// `/metrics/resource`; a failure to gather shows as `resource_scrape_error 1`.
pub async fn resource_metrics(server: &Server) -> String {
    match snapshot(server).await {
        Ok(s) => s.resource_metrics(),
        Err(_) => "# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise\n# TYPE resource_scrape_error gauge\nresource_scrape_error 1\n".into(),
    }
}

/// `/runningpods/`: a PodList of what the runtime runs (name, namespace, uid and the
/// containers' names and images), as upstream's `GetRunningPods`.
pub async fn running_pods(cri: &Cri, _node: &str) -> Result<Value, CriError> {
    let mut rt = cri.runtime.clone();
    let sandboxes = rt
        .list_pod_sandbox(cri::ListPodSandboxRequest {
            filter: Some(cri::PodSandboxFilter {
                state: Some(cri::PodSandboxStateValue {
                    state: cri::PodSandboxState::SandboxReady as i32,
                }),
                ..Default::default()
            }),
        })
        .await
        .call("ListPodSandbox")?
        .items;
    let containers = rt
        .list_containers(cri::ListContainersRequest {
            filter: Some(cri::ContainerFilter {
                state: Some(cri::ContainerStateValue {
                    state: cri::ContainerState::ContainerRunning as i32,
                }),
                ..Default::default()
            }),
        })
        .await
        .call("ListContainers")?
        .containers;
    let items: Vec<Value> = sandboxes
        .iter()
        .map(|sb| {
            let meta = sb.metadata.clone().unwrap_or_default();
            let cs: Vec<Value> = containers
                .iter()
                .filter(|c| c.pod_sandbox_id == sb.id)
                .map(|c| {
                    json!({
                        "name": c.labels.get(labels::CONTAINER_NAME).cloned()
                            .or_else(|| c.metadata.as_ref().map(|m| m.name.clone()))
                            .unwrap_or_default(),
                        "image": c.image.as_ref().map(|i| i.image.clone()).unwrap_or_default(),
                        "resources": {},
                    })
                })
                .collect();
            json!({
                "metadata": {"name": meta.name, "namespace": meta.namespace, "uid": meta.uid,
                             "creationTimestamp": null},
                "spec": {"containers": cs},
                "status": {},
            })
        })
        .collect();
    Ok(json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_rates_come_from_consecutive_samples() {
        assert_eq!(rate(0, 0, 1_000_000_000, 500_000_000), Some(500_000_000));
        assert_eq!(rate(10, 5, 10, 9), None, "no time passed");
        assert_eq!(rate(0, 9, 10, 5), None, "a counter that went back");
        let s = Sampler::default();
        assert_eq!(s.nano_cores("c", 0, 100), None);
        assert_eq!(
            s.nano_cores("c", 2_000_000_000, 1_000_000_100),
            Some(500_000_000)
        );
    }

    fn snapshot() -> Snapshot {
        Snapshot {
            node: NodeUsage {
                name: "n1".into(),
                start_time: 1_700_000_000_000_000_000,
                cpu: Cpu {
                    time: 1_700_000_100_000_000_000,
                    usage_core_nano_seconds: Some(2_500_000_000),
                    usage_nano_cores: Some(1000),
                },
                memory: Memory {
                    time: 1_700_000_100_000_000_000,
                    working_set_bytes: Some(4096),
                    ..Default::default()
                },
                fs: Some((100, 40, 60)),
                image_fs: Some((7, 3)),
            },
            pods: vec![PodUsage {
                name: "p".into(),
                namespace: "ns".into(),
                uid: "u1".into(),
                start_time: 1_700_000_050_000_000_000,
                containers: vec![ContainerUsage {
                    name: "c".into(),
                    start_time: 1_700_000_060_000_000_000,
                    cpu: Cpu {
                        time: 1_700_000_100_000_000_000,
                        usage_core_nano_seconds: Some(1_500_000_000),
                        usage_nano_cores: None,
                    },
                    memory: Memory {
                        time: 1_700_000_100_000_000_000,
                        working_set_bytes: Some(2048),
                        ..Default::default()
                    },
                    rootfs_used_bytes: Some(10),
                    rootfs_inodes_used: Some(2),
                }],
                cpu: Cpu {
                    time: 1_700_000_100_000_000_000,
                    usage_core_nano_seconds: Some(1_500_000_000),
                    usage_nano_cores: None,
                },
                memory: Memory {
                    time: 1_700_000_100_000_000_000,
                    working_set_bytes: Some(2048),
                    ..Default::default()
                },
                process_count: Some(3),
                network: Some(("eth0".into(), 11, 22)),
            }],
        }
    }

    #[test]
    fn summary_has_upstreams_field_names() {
        let s = snapshot().summary_json();
        assert_eq!(s["node"]["nodeName"], "n1");
        assert_eq!(s["node"]["startTime"], "2023-11-14T22:13:20Z");
        assert_eq!(s["node"]["cpu"]["usageCoreNanoSeconds"], 2_500_000_000u64);
        assert_eq!(s["node"]["memory"]["workingSetBytes"], 4096);
        assert_eq!(s["node"]["fs"]["capacityBytes"], 100);
        assert_eq!(s["node"]["runtime"]["imageFs"]["usedBytes"], 7);
        let pod = &s["pods"][0];
        assert_eq!(
            pod["podRef"],
            json!({"name": "p", "namespace": "ns", "uid": "u1"})
        );
        assert_eq!(pod["containers"][0]["name"], "c");
        assert_eq!(pod["containers"][0]["rootfs"]["usedBytes"], 10);
        assert!(pod["containers"][0]["cpu"].get("usageNanoCores").is_none());
        assert_eq!(pod["process_stats"]["process_count"], 3);
        assert_eq!(pod["network"]["rxBytes"], 11);
        assert_eq!(pod["ephemeral-storage"]["usedBytes"], 10);
    }

    #[test]
    fn resource_metrics_carry_values_and_sample_times() {
        let text = snapshot().resource_metrics();
        for line in [
            r#"container_cpu_usage_seconds_total{container="c",namespace="ns",pod="p"} 1.5 1700000100000"#,
            r#"container_memory_working_set_bytes{container="c",namespace="ns",pod="p"} 2048 1700000100000"#,
            r#"container_start_time_seconds{container="c",namespace="ns",pod="p"} 1700000060 1700000060000"#,
            "node_cpu_usage_seconds_total 2.5 1700000100000",
            "node_memory_working_set_bytes 4096 1700000100000",
            r#"pod_cpu_usage_seconds_total{namespace="ns",pod="p"} 1.5 1700000100000"#,
            r#"pod_memory_working_set_bytes{namespace="ns",pod="p"} 2048 1700000100000"#,
            "resource_scrape_error 0",
            "# TYPE container_cpu_usage_seconds_total counter",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
    }
}
