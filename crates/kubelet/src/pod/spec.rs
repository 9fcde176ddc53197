//! Pod and container specs turned into CRI sandbox and container configs (upstream's
//! `generatePodSandboxConfig` and `generateContainerConfig`). Pure.

use std::collections::HashMap;

use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::{Container, Pod};
use rkube_api::quantity::Quantity;

use super::plan::Kind;
use crate::cgroups::Qos;
use crate::labels;

/// Node-level settings the configs need.
#[derive(Debug, Clone, Default)]
pub struct NodeSettings {
    pub node_name: String,
    /// The pod log root (`<ns>_<name>_<uid>` directories go below it).
    pub log_root: String,
    pub cluster_dns: Vec<String>,
    pub cluster_domain: String,
    /// The host's resolver settings (from /etc/resolv.conf), for dnsPolicy Default and
    /// ClusterFirst's search path.
    pub host_search: Vec<String>,
    /// The node's memory capacity, for Burstable containers' oom_score_adj.
    pub memory_capacity: i64,
}

/// FNV-1a (32 bits) of the container's spec as JSON: a change of spec (the image is the only
/// mutable field) restarts the container.
pub fn container_hash(c: &Container) -> String {
    let json = serde_json::to_vec(c).unwrap_or_default();
    let mut h: u32 = 0x811c9dc5;
    for b in json {
        h ^= b as u32;
        h = h.wrapping_mul(0x01000193);
    }
    format!("{h:x}")
}

fn pod_labels(pod: &Pod, node: &str) -> HashMap<String, String> {
    let mut l: HashMap<String, String> = pod
        .metadata
        .labels
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    l.insert(
        labels::POD_NAME.into(),
        pod.metadata.name.clone().unwrap_or_default(),
    );
    l.insert(
        labels::POD_NAMESPACE.into(),
        pod.metadata.namespace.clone().unwrap_or_default(),
    );
    l.insert(
        labels::POD_UID.into(),
        pod.metadata.uid.clone().unwrap_or_default(),
    );
    l.insert(labels::NODE.into(), node.to_string());
    l
}

/// The pod's log directory.
pub fn log_directory(pod: &Pod, node: &NodeSettings) -> String {
    format!(
        "{}/{}",
        node.log_root.trim_end_matches('/'),
        labels::pod_log_dir(
            pod.metadata.namespace.as_deref().unwrap_or(""),
            pod.metadata.name.as_deref().unwrap_or(""),
            pod.metadata.uid.as_deref().unwrap_or("")
        )
    )
}

/// The pod's DNS settings per `dnsPolicy` (None: the runtime copies the host's resolv.conf).
pub fn dns_config(pod: &Pod, node: &NodeSettings) -> Option<cri::DnsConfig> {
    let spec = pod.spec.as_ref()?;
    let host_network = spec.host_network.unwrap_or(false);
    let policy = spec.dns_policy.as_deref().unwrap_or("ClusterFirst");
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let domain = node.cluster_domain.trim_end_matches('.');
    let cluster = || cri::DnsConfig {
        servers: node.cluster_dns.clone(),
        searches: {
            let mut s = vec![
                format!("{ns}.svc.{domain}"),
                format!("svc.{domain}"),
                domain.to_string(),
            ];
            s.extend(node.host_search.iter().cloned());
            s
        },
        options: vec!["ndots:5".into()],
    };
    let mut cfg = match policy {
        "None" => cri::DnsConfig::default(),
        "ClusterFirstWithHostNet" if !node.cluster_dns.is_empty() => cluster(),
        "ClusterFirst" if !host_network && !node.cluster_dns.is_empty() => cluster(),
        _ => {
            // Default (and ClusterFirst without cluster DNS): the host's resolver
            spec.dns_config.as_ref()?;
            cri::DnsConfig::default()
        }
    };
    if let Some(extra) = &spec.dns_config {
        for s in extra.nameservers.iter().flatten() {
            if !cfg.servers.contains(s) {
                cfg.servers.push(s.clone());
            }
        }
        for s in extra.searches.iter().flatten() {
            if !cfg.searches.contains(s) {
                cfg.searches.push(s.clone());
            }
        }
        for o in extra.options.iter().flatten() {
            let text = match &o.value {
                Some(v) => format!("{}:{v}", o.name.as_deref().unwrap_or("")),
                None => o.name.clone().unwrap_or_default(),
            };
            let key = o.name.clone().unwrap_or_default();
            cfg.options
                .retain(|x| x.split(':').next() != Some(key.as_str()));
            cfg.options.push(text);
        }
    }
    Some(cfg)
}

/// The pod's sandbox config.
pub fn sandbox_config(
    pod: &Pod,
    attempt: u32,
    cgroup_parent: &str,
    node: &NodeSettings,
) -> cri::PodSandboxConfig {
    let spec = pod.spec.clone().unwrap_or_default();
    let host_network = spec.host_network.unwrap_or(false);
    let name = pod.metadata.name.clone().unwrap_or_default();
    let mut hostname = spec.hostname.clone().unwrap_or_else(|| name.clone());
    if host_network {
        hostname = String::new();
    }
    hostname.truncate(63);
    let hostname = hostname.trim_end_matches(['-', '.']).to_string();
    let mut port_mappings = Vec::new();
    for c in &spec.containers {
        for p in c.ports.iter().flatten() {
            let Some(host_port) = p.host_port.filter(|p| *p > 0) else {
                continue;
            };
            port_mappings.push(cri::PortMapping {
                protocol: match p.protocol.as_deref() {
                    Some("UDP") => cri::Protocol::Udp as i32,
                    Some("SCTP") => cri::Protocol::Sctp as i32,
                    _ => cri::Protocol::Tcp as i32,
                },
                container_port: p.container_port,
                host_port,
                host_ip: p.host_ip.clone().unwrap_or_default(),
            });
        }
    }
    let psc = spec.security_context.clone().unwrap_or_default();
    let ns_mode = |host: Option<bool>| {
        if host.unwrap_or(false) {
            cri::NamespaceMode::Node as i32
        } else {
            cri::NamespaceMode::Pod as i32
        }
    };
    let pid_mode = if spec.host_pid.unwrap_or(false) {
        cri::NamespaceMode::Node as i32
    } else if spec.share_process_namespace.unwrap_or(false) {
        cri::NamespaceMode::Pod as i32
    } else {
        cri::NamespaceMode::Container as i32
    };
    let privileged = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .any(|c| {
            c.security_context
                .as_ref()
                .and_then(|s| s.privileged)
                .unwrap_or(false)
        });
    let sysctls: HashMap<String, String> = psc
        .sysctls
        .iter()
        .flatten()
        .map(|s| (s.name.clone(), s.value.clone()))
        .collect();
    let mut supplemental: Vec<i64> = psc.supplemental_groups.clone().unwrap_or_default();
    if let Some(g) = psc.fs_group {
        supplemental.push(g);
    }
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name,
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            attempt,
        }),
        hostname,
        log_directory: log_directory(pod, node),
        dns_config: dns_config(pod, node),
        port_mappings,
        labels: pod_labels(pod, &node.node_name),
        annotations: pod
            .metadata
            .annotations
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        linux: Some(cri::LinuxPodSandboxConfig {
            cgroup_parent: cgroup_parent.to_string(),
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(cri::NamespaceOption {
                    network: ns_mode(spec.host_network),
                    pid: pid_mode,
                    ipc: ns_mode(spec.host_ipc),
                    ..Default::default()
                }),
                run_as_user: psc.run_as_user.map(|v| cri::Int64Value { value: v }),
                run_as_group: psc.run_as_group.map(|v| cri::Int64Value { value: v }),
                supplemental_groups: supplemental,
                privileged,
                seccomp: seccomp(psc.seccomp_profile.as_ref()),
                ..Default::default()
            }),
            sysctls,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn seccomp(
    profile: Option<&k8s_openapi::api::core::v1::SeccompProfile>,
) -> Option<cri::SecurityProfile> {
    let p = profile?;
    Some(match p.type_.as_str() {
        "RuntimeDefault" => cri::SecurityProfile {
            profile_type: cri::security_profile::ProfileType::RuntimeDefault as i32,
            localhost_ref: String::new(),
        },
        "Localhost" => cri::SecurityProfile {
            profile_type: cri::security_profile::ProfileType::Localhost as i32,
            localhost_ref: p.localhost_profile.clone().unwrap_or_default(),
        },
        _ => cri::SecurityProfile {
            profile_type: cri::security_profile::ProfileType::Unconfined as i32,
            localhost_ref: String::new(),
        },
    })
}

fn quantity(c: &Container, limits: bool, name: &str) -> Option<Quantity> {
    let res = c.resources.as_ref()?;
    let m = if limits {
        res.limits.as_ref()?
    } else {
        res.requests.as_ref()?
    };
    Quantity::parse(&m.get(name)?.0).ok()
}

/// Upstream's cpu.shares from a cpu request in millicores (2 when unset).
pub fn cpu_shares(milli: i64) -> i64 {
    if milli == 0 {
        return 2;
    }
    (milli * 1024 / 1000).max(2)
}

/// Upstream's oom_score_adj by QoS (`GetContainerOOMScoreAdjust`).
pub fn oom_score_adj(qos: Qos, memory_request: i64, capacity: i64) -> i64 {
    match qos {
        Qos::Guaranteed => -997,
        Qos::BestEffort => 1000,
        Qos::Burstable => {
            if capacity <= 0 {
                return 999;
            }
            let adj = 1000 - (1000 * memory_request) / capacity;
            adj.clamp(3, 999)
        }
    }
}

/// The resources of a container, for CRI.
pub fn container_resources(
    c: &Container,
    qos: Qos,
    node: &NodeSettings,
) -> cri::LinuxContainerResources {
    let cpu_request = quantity(c, false, "cpu")
        .or_else(|| quantity(c, true, "cpu"))
        .map(|q| q.milli_value())
        .unwrap_or(0);
    let cpu_limit = quantity(c, true, "cpu").map(|q| q.milli_value());
    let mem_limit = quantity(c, true, "memory").map(|q| q.value()).unwrap_or(0);
    let mem_request = quantity(c, false, "memory")
        .or_else(|| quantity(c, true, "memory"))
        .map(|q| q.value())
        .unwrap_or(0);
    let period = 100_000;
    cri::LinuxContainerResources {
        cpu_period: if cpu_limit.is_some() { period } else { 0 },
        cpu_quota: cpu_limit
            .map(|m| (m * period / 1000).max(1000))
            .unwrap_or(0),
        cpu_shares: cpu_shares(cpu_request),
        memory_limit_in_bytes: mem_limit,
        oom_score_adj: oom_score_adj(qos, mem_request, node.memory_capacity),
        ..Default::default()
    }
}

/// The pod cgroup's limits (upstream's `ResourceConfigForPod`): cpu.shares from the sum of the
/// cpu requests; a cpu quota and a memory limit only when every container has that limit
/// (init containers count by their largest value, as they run one at a time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodCgroupLimits {
    pub cpu_shares: i64,
    /// (quota, period) in microseconds.
    pub cpu_quota: Option<(i64, i64)>,
    pub memory_limit: Option<i64>,
}

pub fn pod_cgroup_limits(pod: &Pod) -> PodCgroupLimits {
    let spec = pod.spec.clone().unwrap_or_default();
    let sum_or_max = |limits: bool, name: &str, milli: bool| -> (i64, bool) {
        let value = |c: &Container| {
            quantity(c, limits, name)
                .or_else(|| {
                    if limits {
                        None
                    } else {
                        quantity(c, true, name)
                    }
                })
                .map(|q| if milli { q.milli_value() } else { q.value() })
        };
        let mut all = true;
        let mut sum = 0i64;
        for c in &spec.containers {
            match value(c) {
                Some(v) => sum += v,
                None => all = false,
            }
        }
        let mut init_max = 0i64;
        for c in spec.init_containers.iter().flatten() {
            match value(c) {
                Some(v) => init_max = init_max.max(v),
                None => all = false,
            }
        }
        (sum.max(init_max), all)
    };
    let (cpu_req, _) = sum_or_max(false, "cpu", true);
    let (cpu_lim, cpu_all) = sum_or_max(true, "cpu", true);
    let (mem_lim, mem_all) = sum_or_max(true, "memory", false);
    let period = 100_000;
    PodCgroupLimits {
        cpu_shares: cpu_shares(cpu_req),
        cpu_quota: (cpu_all && cpu_lim > 0).then(|| ((cpu_lim * period / 1000).max(1000), period)),
        memory_limit: (mem_all && mem_lim > 0).then_some(mem_lim),
    }
}

/// Everything [`container_config`] takes besides the pod and the container.
#[derive(Debug, Clone)]
pub struct ContainerInputs<'a> {
    pub kind: Kind,
    pub restart_count: u32,
    pub image_ref: &'a str,
    pub env: &'a [(String, String)],
    pub mounts: Vec<cri::Mount>,
    pub qos: Qos,
}

/// The container's CRI config.
pub fn container_config(
    pod: &Pod,
    c: &Container,
    input: ContainerInputs<'_>,
    node: &NodeSettings,
) -> cri::ContainerConfig {
    let vars: HashMap<&str, &str> = input
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let lookup = |n: &str| vars.get(n).map(|v| v.to_string());
    let expand_all = |v: &Option<Vec<String>>| -> Vec<String> {
        v.iter()
            .flatten()
            .map(|s| super::env::expand(s, &lookup))
            .collect()
    };
    let mut l = HashMap::new();
    l.insert(
        labels::POD_NAME.to_string(),
        pod.metadata.name.clone().unwrap_or_default(),
    );
    l.insert(
        labels::POD_NAMESPACE.to_string(),
        pod.metadata.namespace.clone().unwrap_or_default(),
    );
    l.insert(
        labels::POD_UID.to_string(),
        pod.metadata.uid.clone().unwrap_or_default(),
    );
    l.insert(labels::CONTAINER_NAME.to_string(), c.name.clone());
    l.insert(labels::NODE.to_string(), node.node_name.clone());
    let grace = pod
        .spec
        .as_ref()
        .and_then(|s| s.termination_grace_period_seconds)
        .unwrap_or(30);
    let mut a = HashMap::new();
    a.insert(labels::CONTAINER_HASH.to_string(), container_hash(c));
    a.insert(
        labels::RESTART_COUNT.to_string(),
        input.restart_count.to_string(),
    );
    a.insert(
        labels::TERMINATION_MESSAGE_PATH.to_string(),
        c.termination_message_path
            .clone()
            .unwrap_or_else(|| "/dev/termination-log".into()),
    );
    a.insert(
        labels::TERMINATION_MESSAGE_POLICY.to_string(),
        c.termination_message_policy
            .clone()
            .unwrap_or_else(|| "File".into()),
    );
    a.insert(labels::GRACE_PERIOD.to_string(), grace.to_string());
    a.insert(
        labels::CONTAINER_KIND.to_string(),
        input.kind.as_str().to_string(),
    );
    let sc = c.security_context.clone().unwrap_or_default();
    let psc = pod
        .spec
        .as_ref()
        .and_then(|s| s.security_context.clone())
        .unwrap_or_default();
    let caps = sc.capabilities.clone().unwrap_or_default();
    let mut supplemental: Vec<i64> = psc.supplemental_groups.clone().unwrap_or_default();
    if let Some(g) = psc.fs_group {
        supplemental.push(g);
    }
    let privileged = sc.privileged.unwrap_or(false);
    let pid_mode = {
        let spec = pod.spec.clone().unwrap_or_default();
        if spec.host_pid.unwrap_or(false) {
            cri::NamespaceMode::Node as i32
        } else if spec.share_process_namespace.unwrap_or(false) {
            cri::NamespaceMode::Pod as i32
        } else {
            cri::NamespaceMode::Container as i32
        }
    };
    let host = |b: Option<bool>| {
        if b.unwrap_or(false) {
            cri::NamespaceMode::Node as i32
        } else {
            cri::NamespaceMode::Pod as i32
        }
    };
    let spec = pod.spec.clone().unwrap_or_default();
    cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata {
            name: c.name.clone(),
            attempt: input.restart_count,
        }),
        image: Some(cri::ImageSpec {
            image: input.image_ref.to_string(),
            user_specified_image: c.image.clone().unwrap_or_default(),
            ..Default::default()
        }),
        command: expand_all(&c.command),
        args: expand_all(&c.args),
        working_dir: c.working_dir.clone().unwrap_or_default(),
        envs: input
            .env
            .iter()
            .map(|(k, v)| cri::KeyValue {
                key: k.clone(),
                value: v.clone(),
            })
            .collect(),
        mounts: input.mounts,
        labels: l,
        annotations: a,
        log_path: labels::container_log_path(&c.name, input.restart_count),
        stdin: c.stdin.unwrap_or(false),
        stdin_once: c.stdin_once.unwrap_or(false),
        tty: c.tty.unwrap_or(false),
        linux: Some(cri::LinuxContainerConfig {
            resources: Some(container_resources(c, input.qos, node)),
            security_context: Some(cri::LinuxContainerSecurityContext {
                capabilities: Some(cri::Capability {
                    add_capabilities: caps.add.clone().unwrap_or_default(),
                    drop_capabilities: caps.drop.clone().unwrap_or_default(),
                    ..Default::default()
                }),
                privileged,
                namespace_options: Some(cri::NamespaceOption {
                    network: host(spec.host_network),
                    pid: pid_mode,
                    ipc: host(spec.host_ipc),
                    ..Default::default()
                }),
                run_as_user: sc
                    .run_as_user
                    .or(psc.run_as_user)
                    .map(|v| cri::Int64Value { value: v }),
                run_as_group: sc
                    .run_as_group
                    .or(psc.run_as_group)
                    .map(|v| cri::Int64Value { value: v }),
                readonly_rootfs: sc.read_only_root_filesystem.unwrap_or(false),
                supplemental_groups: supplemental,
                no_new_privs: sc.allow_privilege_escalation == Some(false),
                seccomp: seccomp(sc.seccomp_profile.as_ref().or(psc.seccomp_profile.as_ref())),
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

/// Upstream's runAsNonRoot check (`verifyRunAsNonRoot`), given the user the image runs as
/// (`uid` when numeric, else the name).
pub fn verify_run_as_non_root(
    pod: &Pod,
    c: &Container,
    image_uid: Option<i64>,
    image_user: &str,
) -> Result<(), String> {
    let sc = c.security_context.clone().unwrap_or_default();
    let psc = pod
        .spec
        .as_ref()
        .and_then(|s| s.security_context.clone())
        .unwrap_or_default();
    if !sc.run_as_non_root.or(psc.run_as_non_root).unwrap_or(false) {
        return Ok(());
    }
    if let Some(uid) = sc.run_as_user.or(psc.run_as_user) {
        return if uid == 0 {
            Err(
                "container's runAsUser breaks non-root policy (pod: \"{pod}\", container: {c})"
                    .replace("{pod}", &super::plan::pod_desc(pod))
                    .replace("{c}", &c.name),
            )
        } else {
            Ok(())
        };
    }
    match image_uid {
        Some(0) => Err("container has runAsNonRoot and image will run as root (pod: \"{pod}\", container: {c})"
            .replace("{pod}", &super::plan::pod_desc(pod))
            .replace("{c}", &c.name)),
        Some(_) => Ok(()),
        None if image_user.is_empty() => Err(
            "container has runAsNonRoot and image will run as root (pod: \"{pod}\", container: {c})"
                .replace("{pod}", &super::plan::pod_desc(pod))
                .replace("{c}", &c.name),
        ),
        None => Err(format!(
            "container has runAsNonRoot and image has non-numeric user ({image_user}), cannot verify user is non-root (pod: \"{}\", container: {})",
            super::plan::pod_desc(pod),
            c.name
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ContainerPort, PodSpec, ResourceRequirements, SecurityContext,
    };
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity as Q;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn node() -> NodeSettings {
        NodeSettings {
            node_name: "n1".into(),
            log_root: "/logs".into(),
            cluster_dns: vec!["10.43.0.10".into()],
            cluster_domain: "cluster.local".into(),
            host_search: vec!["example.org".into()],
            memory_capacity: 8 << 30,
        }
    }

    fn pod() -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("ns".into()),
                uid: Some("u1".into()),
                labels: Some([("app".to_string(), "x".to_string())].into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    image: Some("busybox".into()),
                    command: Some(vec!["sh".into(), "-c".into(), "echo $(MSG)".into()]),
                    ports: Some(vec![ContainerPort {
                        container_port: 80,
                        host_port: Some(8080),
                        ..Default::default()
                    }]),
                    resources: Some(ResourceRequirements {
                        requests: Some([("cpu".to_string(), Q("500m".into()))].into()),
                        limits: Some(
                            [
                                ("cpu".to_string(), Q("1".into())),
                                ("memory".to_string(), Q("64Mi".into())),
                            ]
                            .into(),
                        ),
                        ..Default::default()
                    }),
                    security_context: Some(SecurityContext {
                        allow_privilege_escalation: Some(false),
                        read_only_root_filesystem: Some(true),
                        run_as_user: Some(1000),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: None,
        }
    }

    #[test]
    fn the_sandbox_config_carries_identity_dns_ports_and_cgroup() {
        let p = pod();
        let sb = sandbox_config(&p, 2, "/rkube/kubepods/burstable/podu1", &node());
        let meta = sb.metadata.unwrap();
        assert_eq!(
            (
                meta.name.as_str(),
                meta.namespace.as_str(),
                meta.uid.as_str(),
                meta.attempt
            ),
            ("web", "ns", "u1", 2)
        );
        assert_eq!(sb.hostname, "web");
        assert_eq!(sb.log_directory, "/logs/ns_web_u1");
        assert_eq!(sb.labels[labels::POD_UID], "u1");
        assert_eq!(sb.labels["app"], "x");
        let dns = sb.dns_config.unwrap();
        assert_eq!(dns.servers, vec!["10.43.0.10"]);
        assert_eq!(
            dns.searches,
            vec![
                "ns.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local",
                "example.org"
            ]
        );
        assert_eq!(dns.options, vec!["ndots:5"]);
        assert_eq!(sb.port_mappings[0].host_port, 8080);
        let linux = sb.linux.unwrap();
        assert_eq!(linux.cgroup_parent, "/rkube/kubepods/burstable/podu1");
        let ns = linux.security_context.unwrap().namespace_options.unwrap();
        assert_eq!(ns.network, cri::NamespaceMode::Pod as i32);
        assert_eq!(ns.pid, cri::NamespaceMode::Container as i32);
    }

    #[test]
    fn host_network_pods_use_the_host_resolver() {
        let mut p = pod();
        p.spec.as_mut().unwrap().host_network = Some(true);
        assert!(dns_config(&p, &node()).is_none());
        p.spec.as_mut().unwrap().dns_policy = Some("ClusterFirstWithHostNet".into());
        assert_eq!(dns_config(&p, &node()).unwrap().servers, vec!["10.43.0.10"]);
    }

    #[test]
    fn the_container_config_expands_commands_and_maps_resources_and_security() {
        let p = pod();
        let c = &p.spec.as_ref().unwrap().containers[0];
        let env = vec![("MSG".to_string(), "hi".to_string())];
        let cfg = container_config(
            &p,
            c,
            ContainerInputs {
                kind: Kind::Regular,
                restart_count: 3,
                image_ref: "sha256:abc",
                env: &env,
                mounts: vec![],
                qos: Qos::Burstable,
            },
            &node(),
        );
        assert_eq!(cfg.command, vec!["sh", "-c", "echo hi"]);
        assert_eq!(cfg.metadata.unwrap().attempt, 3);
        assert_eq!(cfg.log_path, "c/3.log");
        assert_eq!(cfg.annotations[labels::RESTART_COUNT], "3");
        assert_eq!(
            cfg.annotations[labels::TERMINATION_MESSAGE_PATH],
            "/dev/termination-log"
        );
        assert_eq!(cfg.labels[labels::CONTAINER_NAME], "c");
        let linux = cfg.linux.unwrap();
        let r = linux.resources.unwrap();
        assert_eq!(r.cpu_shares, 512);
        assert_eq!((r.cpu_quota, r.cpu_period), (100_000, 100_000));
        assert_eq!(r.memory_limit_in_bytes, 64 << 20);
        assert!(r.oom_score_adj > 2 && r.oom_score_adj < 1000);
        let sc = linux.security_context.unwrap();
        assert!(sc.no_new_privs && sc.readonly_rootfs);
        assert_eq!(sc.run_as_user.unwrap().value, 1000);
        assert_eq!(container_hash(c), container_hash(&c.clone()));
        let mut c2 = c.clone();
        c2.image = Some("other".into());
        assert_ne!(container_hash(c), container_hash(&c2));
    }

    #[test]
    fn pod_cgroups_get_the_summed_requests_and_limits_only_when_every_container_has_one() {
        let mut p = pod();
        let l = pod_cgroup_limits(&p);
        assert_eq!(l.cpu_shares, 512);
        assert_eq!(l.cpu_quota, Some((100_000, 100_000)));
        assert_eq!(l.memory_limit, Some(64 << 20));
        let mut second = p.spec.as_ref().unwrap().containers[0].clone();
        second.name = "b".into();
        second.resources = None;
        p.spec.as_mut().unwrap().containers.push(second);
        let l = pod_cgroup_limits(&p);
        assert_eq!(l.cpu_shares, 512);
        assert_eq!(
            (l.cpu_quota, l.memory_limit),
            (None, None),
            "one container without limits"
        );
    }

    #[test]
    fn run_as_non_root_is_verified() {
        let mut p = pod();
        let c = {
            let c = &mut p.spec.as_mut().unwrap().containers[0];
            c.security_context = Some(SecurityContext {
                run_as_non_root: Some(true),
                ..Default::default()
            });
            c.clone()
        };
        assert!(verify_run_as_non_root(&p, &c, Some(0), "").is_err());
        assert!(verify_run_as_non_root(&p, &c, None, "").is_err());
        assert!(verify_run_as_non_root(&p, &c, Some(1000), "").is_ok());
        assert!(verify_run_as_non_root(&p, &c, None, "app")
            .unwrap_err()
            .contains("non-numeric user (app)"));
        assert_eq!(oom_score_adj(Qos::Guaranteed, 0, 1), -997);
        assert_eq!(oom_score_adj(Qos::BestEffort, 0, 1), 1000);
        assert_eq!(cpu_shares(0), 2);
    }
}
