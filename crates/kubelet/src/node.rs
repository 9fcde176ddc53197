//! The kubelet's Node: what it registers (capacity, allocatable, addresses, labels, nodeInfo),
//! the conditions it reports, and the Lease it renews. `build_node` and `conditions` are pure;
//! `register`, `report_status` and `renew_lease` are the thin API drivers.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{
    DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeSpec, NodeStatus,
    NodeSystemInfo, Taint,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference, Time};
use kube::api::{Patch, PatchParams, PostParams};
use kube::Api;

/// The version the kubelet reports (the API server's).
pub const KUBELET_VERSION: &str = "v1.33.0+rkube";
/// Upstream's default pod limit.
pub const MAX_PODS: u32 = 110;

/// What the node is, as registered.
#[derive(Debug, Clone, Default)]
pub struct NodeConfig {
    pub name: String,
    pub ips: Vec<IpAddr>,
    pub hostname: String,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    pub kubelet_port: u16,
    pub max_pods: u32,
    /// Memory held back from pods (upstream's kube-reserved + system-reserved + the hard
    /// eviction threshold, 100Mi by default).
    pub reserved_memory: i64,
    /// Millicores held back from pods.
    pub reserved_cpu_milli: i64,
}

/// Facts about the machine.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Machine {
    pub cpus: u32,
    pub memory: i64,
    pub ephemeral_storage: i64,
    pub kernel: String,
    pub os_image: String,
    pub machine_id: String,
    pub boot_id: String,
    pub runtime_version: String,
}

impl Machine {
    /// Reads the machine's facts; `storage_dir` is where pods' ephemeral storage lives.
    pub fn read(storage_dir: &std::path::Path, runtime_version: String) -> Machine {
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        let memory = read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
            .map(|kb| kb * 1024)
            .unwrap_or(0);
        let storage = nix::sys::statvfs::statvfs(storage_dir)
            .map(|s| (s.blocks() as i64) * (s.fragment_size() as i64))
            .unwrap_or(0);
        let os_image = read("/etc/os-release")
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_else(|| "Linux".into());
        Machine {
            cpus: std::thread::available_parallelism()
                .map(|n| n.get() as u32)
                .unwrap_or(1),
            memory,
            ephemeral_storage: storage,
            kernel: read("/proc/sys/kernel/osrelease"),
            os_image,
            machine_id: read("/etc/machine-id"),
            boot_id: read("/proc/sys/kernel/random/boot_id"),
            runtime_version,
        }
    }
}

fn arch() -> &'static str {
    crate::oci::oci_arch()
}

/// The address a node advertises when none is given: the first IPv4 address of the
/// interface the default route leaves through, else of any interface that is up (not
/// loopback), else 127.0.0.1.
pub fn default_ip() -> IpAddr {
    let routes = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    // Iface Destination Gateway ...: the default route has destination 00000000
    let default_iface = routes
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() > 1 && f[1] == "00000000")
        .map(|f| f[0].to_string());
    let mut candidates: Vec<(String, std::net::Ipv4Addr)> = Vec::new();
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for a in addrs {
            let Some(ip) = a
                .address
                .as_ref()
                .and_then(|s| s.as_sockaddr_in())
                .map(|s| s.ip())
            else {
                continue;
            };
            let up = a.flags.contains(nix::net::if_::InterfaceFlags::IFF_UP);
            if up && !ip.is_loopback() {
                candidates.push((a.interface_name.clone(), ip));
            }
        }
    }
    candidates
        .iter()
        .find(|(name, _)| Some(name) == default_iface.as_ref())
        .or_else(|| candidates.first())
        .map(|(_, ip)| IpAddr::V4(*ip))
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
}

/// The Node to register.
pub fn build_node(cfg: &NodeConfig, m: &Machine) -> Node {
    let mut labels = BTreeMap::new();
    labels.insert("kubernetes.io/hostname".to_string(), cfg.hostname.clone());
    labels.insert("kubernetes.io/os".to_string(), "linux".to_string());
    labels.insert("kubernetes.io/arch".to_string(), arch().to_string());
    labels.insert("beta.kubernetes.io/os".to_string(), "linux".to_string());
    labels.insert("beta.kubernetes.io/arch".to_string(), arch().to_string());
    labels.extend(cfg.labels.clone());
    let mut capacity = BTreeMap::new();
    capacity.insert("cpu".to_string(), Quantity(m.cpus.to_string()));
    capacity.insert(
        "memory".to_string(),
        Quantity(format!("{}Ki", m.memory / 1024)),
    );
    capacity.insert("pods".to_string(), Quantity(cfg.max_pods.to_string()));
    capacity.insert(
        "ephemeral-storage".to_string(),
        Quantity(format!("{}Ki", m.ephemeral_storage / 1024)),
    );
    capacity.insert("hugepages-2Mi".to_string(), Quantity("0".into()));
    let mut allocatable = capacity.clone();
    let cpu_milli = (m.cpus as i64 * 1000 - cfg.reserved_cpu_milli).max(0);
    allocatable.insert(
        "cpu".to_string(),
        Quantity(if cpu_milli % 1000 == 0 {
            (cpu_milli / 1000).to_string()
        } else {
            format!("{cpu_milli}m")
        }),
    );
    allocatable.insert(
        "memory".to_string(),
        Quantity(format!(
            "{}Ki",
            (m.memory - cfg.reserved_memory).max(0) / 1024
        )),
    );
    // upstream's hard eviction threshold nodefs.available<10% comes off ephemeral storage
    allocatable.insert(
        "ephemeral-storage".to_string(),
        Quantity((((m.ephemeral_storage as f64) * 0.9) as i64).to_string()),
    );
    let mut addresses: Vec<NodeAddress> = cfg
        .ips
        .iter()
        .map(|ip| NodeAddress {
            type_: "InternalIP".into(),
            address: ip.to_string(),
        })
        .collect();
    addresses.push(NodeAddress {
        type_: "Hostname".into(),
        address: cfg.hostname.clone(),
    });
    Node {
        metadata: ObjectMeta {
            name: Some(cfg.name.clone()),
            labels: Some(labels),
            annotations: Some(
                [("node.alpha.kubernetes.io/ttl".to_string(), "0".to_string())].into(),
            ),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            taints: (!cfg.taints.is_empty()).then(|| cfg.taints.clone()),
            ..Default::default()
        }),
        status: Some(NodeStatus {
            capacity: Some(capacity),
            allocatable: Some(allocatable),
            addresses: Some(addresses),
            daemon_endpoints: Some(NodeDaemonEndpoints {
                kubelet_endpoint: Some(DaemonEndpoint {
                    port: cfg.kubelet_port as i32,
                }),
            }),
            node_info: Some(NodeSystemInfo {
                architecture: arch().into(),
                boot_id: m.boot_id.clone(),
                container_runtime_version: m.runtime_version.clone(),
                kernel_version: m.kernel.clone(),
                kube_proxy_version: KUBELET_VERSION.into(),
                kubelet_version: KUBELET_VERSION.into(),
                machine_id: m.machine_id.clone(),
                operating_system: "linux".into(),
                os_image: m.os_image.clone(),
                system_uuid: m.machine_id.clone(),
                swap: None,
            }),
            ..Default::default()
        }),
    }
}

/// What the kubelet knows about its health.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Health {
    /// The runtime answered and says it is ready.
    pub runtime_ready: bool,
    /// `None` when the pod network is ready, else why not.
    pub network_problem: Option<String>,
    /// The pod network (the CNI conflist with the node's podCIDR) is configured.
    pub pod_network_configured: bool,
}

/// The node's conditions at `now`, keeping transition times of conditions that did not flip.
pub fn conditions(old: &[NodeCondition], h: &Health, now: jiff::Timestamp) -> Vec<NodeCondition> {
    let make = |kind: &str, status: bool, reason: &str, message: String| {
        let s = if status { "True" } else { "False" };
        let since = old
            .iter()
            .find(|c| c.type_ == kind && c.status == s)
            .and_then(|c| c.last_transition_time.clone())
            .unwrap_or(Time(now));
        NodeCondition {
            type_: kind.into(),
            status: s.into(),
            reason: Some(reason.into()),
            message: Some(message),
            last_heartbeat_time: Some(Time(now)),
            last_transition_time: Some(since),
        }
    };
    let ready_problem = if !h.runtime_ready {
        Some("container runtime is down".to_string())
    } else {
        h.network_problem
            .as_ref()
            .map(|p| format!("container runtime network not ready: {p}"))
    };
    vec![
        make(
            "MemoryPressure",
            false,
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available".into(),
        ),
        make(
            "DiskPressure",
            false,
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure".into(),
        ),
        make(
            "PIDPressure",
            false,
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available".into(),
        ),
        match &ready_problem {
            None => make(
                "Ready",
                true,
                "KubeletReady",
                "kubelet is posting ready status".into(),
            ),
            Some(p) => make("Ready", false, "KubeletNotReady", p.clone()),
        },
        if h.pod_network_configured {
            make(
                "NetworkUnavailable",
                false,
                "RkubeCNIConfigured",
                "the node's pod network bridge is configured".into(),
            )
        } else {
            make(
                "NetworkUnavailable",
                true,
                "NoRouteCreated",
                "the node has no podCIDR yet".into(),
            )
        },
    ]
}

/// Whether two condition lists differ in anything but heartbeat times.
pub fn conditions_changed(a: &[NodeCondition], b: &[NodeCondition]) -> bool {
    let key = |c: &NodeCondition| {
        (
            c.type_.clone(),
            c.status.clone(),
            c.reason.clone(),
            c.message.clone(),
        )
    };
    let mut ka: Vec<_> = a.iter().map(key).collect();
    let mut kb: Vec<_> = b.iter().map(key).collect();
    ka.sort();
    kb.sort();
    ka != kb
}

/// Registers the node: creates it, or (when it exists, e.g. after a restart) brings its
/// labels, addresses and capacity up to date. Returns the node as stored.
pub async fn register(client: &kube::Client, node: &Node) -> Result<Node, kube::Error> {
    let api: Api<Node> = Api::all(client.clone());
    let name = node.metadata.name.clone().unwrap_or_default();
    match api.create(&PostParams::default(), node).await {
        Ok(n) => return Ok(n),
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => return Err(e),
    }
    let patch = serde_json::json!({
        "metadata": {"labels": node.metadata.labels},
    });
    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    let status = node.status.clone().unwrap_or_default();
    let patch = serde_json::json!({
        "status": {
            "capacity": status.capacity,
            "allocatable": status.allocatable,
            "addresses": status.addresses,
            "daemonEndpoints": status.daemon_endpoints,
            "nodeInfo": status.node_info,
        }
    });
    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
}

/// Writes the node's conditions (a strategic merge by condition type).
pub async fn report_status(
    client: &kube::Client,
    name: &str,
    conditions: &[NodeCondition],
) -> Result<Node, kube::Error> {
    let api: Api<Node> = Api::all(client.clone());
    let patch = serde_json::json!({ "status": { "conditions": conditions } });
    api.patch_status(name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
}

/// The node's Lease in `kube-node-lease`.
pub fn lease(node: &Node, duration_seconds: i32, now: jiff::Timestamp) -> Lease {
    let name = node.metadata.name.clone().unwrap_or_default();
    Lease {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some("kube-node-lease".into()),
            owner_references: node.metadata.uid.clone().map(|uid| {
                vec![OwnerReference {
                    api_version: "v1".into(),
                    kind: "Node".into(),
                    name: name.clone(),
                    uid,
                    ..Default::default()
                }]
            }),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(name),
            lease_duration_seconds: Some(duration_seconds),
            renew_time: Some(MicroTime(now)),
            ..Default::default()
        }),
    }
}

/// Renews (or creates) the node's Lease.
pub async fn renew_lease(
    client: &kube::Client,
    node: &Node,
    now: jiff::Timestamp,
) -> Result<(), kube::Error> {
    let api: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let want = lease(node, 40, now);
    let name = want.metadata.name.clone().unwrap_or_default();
    match api.get_opt(&name).await? {
        None => {
            api.create(&PostParams::default(), &want).await?;
        }
        Some(mut cur) => {
            let spec = cur.spec.get_or_insert_with(Default::default);
            spec.renew_time = Some(MicroTime(now));
            spec.holder_identity = Some(name.clone());
            spec.lease_duration_seconds = Some(40);
            if cur.metadata.owner_references.is_none() {
                cur.metadata.owner_references = want.metadata.owner_references.clone();
            }
            api.replace(&name, &PostParams::default(), &cur).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> NodeConfig {
        NodeConfig {
            name: "n1".into(),
            ips: vec!["192.168.5.2".parse().unwrap()],
            hostname: "n1".into(),
            kubelet_port: 10250,
            max_pods: MAX_PODS,
            reserved_memory: 100 << 20,
            reserved_cpu_milli: 0,
            ..Default::default()
        }
    }

    #[test]
    fn the_node_reports_capacity_allocatable_addresses_and_info() {
        let m = Machine {
            cpus: 2,
            memory: 4 << 30,
            ephemeral_storage: 100 << 30,
            kernel: "6.1.0".into(),
            os_image: "Debian GNU/Linux 12 (bookworm)".into(),
            runtime_version: "containerd://1.6.20".into(),
            ..Default::default()
        };
        let n = build_node(&cfg(), &m);
        let st = n.status.unwrap();
        let cap = st.capacity.unwrap();
        let alloc = st.allocatable.unwrap();
        assert_eq!(cap["cpu"].0, "2");
        assert_eq!(cap["pods"].0, "110");
        assert_eq!(cap["memory"].0, "4194304Ki");
        assert_eq!(alloc["memory"].0, format!("{}Ki", (4194304 - 102400)));
        assert_eq!(
            alloc["ephemeral-storage"].0,
            ((100i64 << 30) as f64 * 0.9).to_string()
        );
        let addrs = st.addresses.unwrap();
        assert_eq!(
            (addrs[0].type_.as_str(), addrs[0].address.as_str()),
            ("InternalIP", "192.168.5.2")
        );
        assert_eq!(addrs[1].type_, "Hostname");
        let info = st.node_info.unwrap();
        assert_eq!(info.container_runtime_version, "containerd://1.6.20");
        assert_eq!(info.operating_system, "linux");
        assert_eq!(
            st.daemon_endpoints.unwrap().kubelet_endpoint.unwrap().port,
            10250
        );
        let labels = n.metadata.labels.unwrap();
        assert_eq!(labels["kubernetes.io/hostname"], "n1");
        assert_eq!(labels["kubernetes.io/os"], "linux");
    }

    #[test]
    fn readiness_follows_the_runtime_and_network() {
        let now = jiff::Timestamp::from_second(100).unwrap();
        let ok = Health {
            runtime_ready: true,
            network_problem: None,
            pod_network_configured: true,
        };
        let c = conditions(&[], &ok, now);
        let get = |c: &[NodeCondition], k: &str| c.iter().find(|x| x.type_ == k).unwrap().clone();
        assert_eq!(get(&c, "Ready").status, "True");
        assert_eq!(get(&c, "Ready").reason.as_deref(), Some("KubeletReady"));
        assert_eq!(get(&c, "NetworkUnavailable").status, "False");
        assert_eq!(get(&c, "MemoryPressure").status, "False");
        let bad = Health {
            network_problem: Some("cni plugin not initialized".into()),
            ..ok.clone()
        };
        let later = jiff::Timestamp::from_second(200).unwrap();
        let c2 = conditions(&c, &bad, later);
        let ready = get(&c2, "Ready");
        assert_eq!(ready.status, "False");
        assert_eq!(
            ready.message.as_deref(),
            Some("container runtime network not ready: cni plugin not initialized")
        );
        assert_eq!(ready.last_transition_time.unwrap().0.as_second(), 200);
        // unchanged conditions keep their transition time, heartbeat moves
        let mem = get(&c2, "MemoryPressure");
        assert_eq!(mem.last_transition_time.unwrap().0.as_second(), 100);
        assert_eq!(mem.last_heartbeat_time.unwrap().0.as_second(), 200);
        assert!(conditions_changed(&c, &c2));
        assert!(!conditions_changed(&c, &conditions(&c, &ok, later)));
    }
}
