//! What the plugins see: a pod with its derived scheduling facts ([`PodInfo`]), a node with the
//! pods on it and their summed requests ([`NodeInfo`]), and resource arithmetic ([`Resource`]).
//! Everything a plugin needs per pod is computed once here, not in every Filter call.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod, PodAffinityTerm};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as KQuantity;
use rkube_api::quantity::Quantity;
use rkube_api::selector::LabelSelector;

/// Resource names with their own fields in [`Resource`].
pub const CPU: &str = "cpu";
/// Memory.
pub const MEMORY: &str = "memory";
/// Local ephemeral storage.
pub const EPHEMERAL_STORAGE: &str = "ephemeral-storage";
/// The number of pods a node takes.
pub const PODS: &str = "pods";

/// The CPU (millicores) a container without a CPU request counts as when scoring, as upstream's
/// `DefaultMilliCPURequest`.
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// The memory (bytes) a container without a memory request counts as when scoring
/// (`DefaultMemoryRequest`, 200 MiB).
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// Amounts of resources: CPU in millicores, memory and storage in bytes, pods as a count, and
/// every other resource (extended resources, hugepages) by name in its integer unit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resource {
    /// Millicores.
    pub milli_cpu: i64,
    /// Bytes.
    pub memory: i64,
    /// Bytes.
    pub ephemeral_storage: i64,
    /// Pods (only meaningful for allocatable).
    pub allowed_pod_number: i64,
    /// Other resources, in their integer value.
    pub scalar: BTreeMap<String, i64>,
}

fn quantity_value(q: &KQuantity, milli: bool) -> i64 {
    match Quantity::parse(&q.0) {
        Ok(q) if milli => q.milli_value(),
        Ok(q) => q.value(),
        Err(_) => 0,
    }
}

impl Resource {
    /// From a resource list (a node's allocatable, a container's requests).
    pub fn from_list(list: &BTreeMap<String, KQuantity>) -> Resource {
        let mut r = Resource::default();
        for (name, q) in list {
            r.add_named(name, q);
        }
        r
    }

    fn add_named(&mut self, name: &str, q: &KQuantity) {
        match name {
            CPU => self.milli_cpu += quantity_value(q, true),
            MEMORY => self.memory += quantity_value(q, false),
            EPHEMERAL_STORAGE => self.ephemeral_storage += quantity_value(q, false),
            PODS => self.allowed_pod_number += quantity_value(q, false),
            other if is_scalar_resource(other) => {
                *self.scalar.entry(other.to_string()).or_default() += quantity_value(q, false)
            }
            _ => {}
        }
    }

    /// Adds `other` to this.
    pub fn add(&mut self, other: &Resource) {
        self.milli_cpu += other.milli_cpu;
        self.memory += other.memory;
        self.ephemeral_storage += other.ephemeral_storage;
        self.allowed_pod_number += other.allowed_pod_number;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_default() += v;
        }
    }

    /// Subtracts `other` from this.
    pub fn sub(&mut self, other: &Resource) {
        self.milli_cpu -= other.milli_cpu;
        self.memory -= other.memory;
        self.ephemeral_storage -= other.ephemeral_storage;
        self.allowed_pod_number -= other.allowed_pod_number;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_default() -= v;
        }
    }

    /// Raises each amount to at least `other`'s.
    pub fn set_max(&mut self, other: &Resource) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(other.ephemeral_storage);
        self.allowed_pod_number = self.allowed_pod_number.max(other.allowed_pod_number);
        for (k, v) in &other.scalar {
            let e = self.scalar.entry(k.clone()).or_default();
            *e = (*e).max(*v);
        }
    }

    /// The amount of resource `name` (upstream's resource names), 0 if absent.
    pub fn get(&self, name: &str) -> i64 {
        match name {
            CPU => self.milli_cpu,
            MEMORY => self.memory,
            EPHEMERAL_STORAGE => self.ephemeral_storage,
            PODS => self.allowed_pod_number,
            other => self.scalar.get(other).copied().unwrap_or(0),
        }
    }

    /// True when every amount is zero.
    pub fn is_zero(&self) -> bool {
        self.milli_cpu == 0
            && self.memory == 0
            && self.ephemeral_storage == 0
            && self.allowed_pod_number == 0
            && self.scalar.values().all(|v| *v == 0)
    }
}

/// Extended resources (`example.com/foo`, not in the `kubernetes.io/` namespace except
/// `requests.`-less native ones), hugepages and attachable volumes: upstream's
/// `IsScalarResourceName`.
pub fn is_scalar_resource(name: &str) -> bool {
    name.starts_with("hugepages-")
        || name.starts_with("attachable-volumes-")
        || name.contains("kubernetes.io/")
        || is_extended_resource(name)
}

/// Upstream's `IsExtendedResourceName`: a fully qualified name outside `kubernetes.io/`, not
/// starting with `requests.`.
pub fn is_extended_resource(name: &str) -> bool {
    if name.starts_with("requests.") {
        return false;
    }
    match name.split_once('/') {
        Some((prefix, _)) => !(prefix == "kubernetes.io" || prefix.ends_with(".kubernetes.io")),
        None => false,
    }
}

/// A pod's effective requests as upstream's `resource.PodRequests`: the sum of its containers,
/// or the largest init container (plus the sidecars started before it) if that is larger, with
/// restartable init containers (sidecars) counted as long-running, plus the pod overhead.
/// With `non_zero`, containers without a CPU or memory request count the scoring defaults.
pub fn pod_requests(pod: &Pod, non_zero: bool) -> Resource {
    let Some(spec) = pod.spec.as_ref() else {
        return Resource::default();
    };
    let container_req = |c: &k8s_openapi::api::core::v1::Container| {
        let mut r = c
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .map(Resource::from_list)
            .unwrap_or_default();
        if non_zero {
            let has = |n: &str| {
                c.resources
                    .as_ref()
                    .and_then(|r| r.requests.as_ref())
                    .is_some_and(|m| m.contains_key(n))
            };
            if !has(CPU) {
                r.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
            }
            if !has(MEMORY) {
                r.memory = DEFAULT_MEMORY_REQUEST;
            }
        }
        r
    };
    let mut total = Resource::default();
    for c in &spec.containers {
        total.add(&container_req(c));
    }
    let mut sidecars = Resource::default();
    let mut init_max = Resource::default();
    for c in spec.init_containers.iter().flatten() {
        let r = container_req(c);
        if c.restart_policy.as_deref() == Some("Always") {
            total.add(&r);
            sidecars.add(&r);
            init_max.set_max(&sidecars);
        } else {
            let mut with = sidecars.clone();
            with.add(&r);
            init_max.set_max(&with);
        }
    }
    total.set_max(&init_max);
    if let Some(overhead) = &spec.overhead {
        total.add(&Resource::from_list(overhead));
    }
    total
}

/// A required or preferred pod (anti-)affinity term, with its namespaces resolved as upstream's
/// `AffinityTerm`: the listed namespaces, or the pod's own when neither namespaces nor a
/// namespace selector is given.
#[derive(Clone, Debug)]
pub struct AffinityTerm {
    /// Namespaces listed by name.
    pub namespaces: HashSet<String>,
    /// The pods' label selector.
    pub selector: LabelSelector,
    /// The node label that defines the topology domain.
    pub topology_key: String,
    /// Selects further namespaces by their labels; `nothing` when unset.
    pub namespace_selector: LabelSelector,
}

impl AffinityTerm {
    /// The resolved term of `term` for a pod in `namespace`; `None` if a selector is invalid.
    pub fn new(namespace: &str, term: &PodAffinityTerm) -> Option<AffinityTerm> {
        let selector = LabelSelector::from_typed(term.label_selector.as_ref()).ok()?;
        let mut namespaces: HashSet<String> = term.namespaces.iter().flatten().cloned().collect();
        let namespace_selector = match &term.namespace_selector {
            Some(s) => LabelSelector::from_typed(Some(s)).ok()?,
            None => LabelSelector::nothing(),
        };
        if namespaces.is_empty() && term.namespace_selector.is_none() {
            namespaces.insert(namespace.to_string());
        }
        Some(AffinityTerm {
            namespaces,
            selector,
            topology_key: term.topology_key.clone(),
            namespace_selector,
        })
    }

    /// Whether `pod` (whose namespace has labels `ns_labels`) is selected by this term.
    pub fn matches(&self, pod: &PodInfo, ns_labels: Option<&BTreeMap<String, String>>) -> bool {
        let in_ns = self.namespaces.contains(&pod.namespace)
            || ns_labels.is_some_and(|l| self.namespace_selector.matches(l));
        in_ns && self.selector.matches(&pod.labels)
    }
}

/// A preferred term with its weight.
#[derive(Clone, Debug)]
pub struct WeightedAffinityTerm {
    /// The term.
    pub term: AffinityTerm,
    /// 1 to 100.
    pub weight: i32,
}

/// A host port a container asks for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// The host IP, `0.0.0.0` when unset.
    pub ip: String,
    /// TCP, UDP or SCTP.
    pub protocol: String,
    /// The port.
    pub port: i32,
}

/// A pod and what the scheduler derives from it once.
#[derive(Clone, Debug)]
pub struct PodInfo {
    /// The pod as the API returned it.
    pub pod: Arc<Pod>,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// UID (the cache's key).
    pub uid: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// `spec.priority`, 0 when unset.
    pub priority: i32,
    /// Effective requests.
    pub requests: Resource,
    /// Effective requests with the scoring defaults for unset CPU and memory.
    pub non_zero_requests: Resource,
    /// Required pod affinity terms.
    pub required_affinity: Vec<AffinityTerm>,
    /// Required pod anti-affinity terms.
    pub required_anti_affinity: Vec<AffinityTerm>,
    /// Preferred pod affinity terms.
    pub preferred_affinity: Vec<WeightedAffinityTerm>,
    /// Preferred pod anti-affinity terms.
    pub preferred_anti_affinity: Vec<WeightedAffinityTerm>,
    /// Host ports of its containers (and init containers).
    pub host_ports: Vec<HostPort>,
}

impl PodInfo {
    /// Derives the scheduling facts of `pod`.
    pub fn new(pod: Arc<Pod>) -> PodInfo {
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let spec = pod.spec.as_ref();
        let affinity = spec.and_then(|s| s.affinity.as_ref());
        let pa = affinity.and_then(|a| a.pod_affinity.as_ref());
        let paa = affinity.and_then(|a| a.pod_anti_affinity.as_ref());
        let required = |terms: Option<&Vec<PodAffinityTerm>>| -> Vec<AffinityTerm> {
            terms
                .into_iter()
                .flatten()
                .filter_map(|t| AffinityTerm::new(&namespace, t))
                .collect()
        };
        let preferred =
            |terms: Option<&Vec<k8s_openapi::api::core::v1::WeightedPodAffinityTerm>>| {
                terms
                    .into_iter()
                    .flatten()
                    .filter_map(|w| {
                        Some(WeightedAffinityTerm {
                            term: AffinityTerm::new(&namespace, &w.pod_affinity_term)?,
                            weight: w.weight,
                        })
                    })
                    .collect::<Vec<_>>()
            };
        let mut host_ports = Vec::new();
        if let Some(spec) = spec {
            // regular containers and sidecars (restartable init containers) hold host ports
            let sidecars = spec
                .init_containers
                .iter()
                .flatten()
                .filter(|c| c.restart_policy.as_deref() == Some("Always"));
            for c in sidecars.chain(&spec.containers) {
                for p in c.ports.iter().flatten() {
                    let Some(hp) = p.host_port.filter(|p| *p > 0) else {
                        continue;
                    };
                    host_ports.push(HostPort {
                        ip: p
                            .host_ip
                            .clone()
                            .filter(|s| !s.is_empty())
                            .unwrap_or_else(|| "0.0.0.0".into()),
                        protocol: p
                            .protocol
                            .clone()
                            .filter(|s| !s.is_empty())
                            .unwrap_or_else(|| "TCP".into()),
                        port: hp,
                    });
                }
            }
        }
        PodInfo {
            name: pod.metadata.name.clone().unwrap_or_default(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            labels: pod.metadata.labels.clone().unwrap_or_default(),
            priority: spec.and_then(|s| s.priority).unwrap_or(0),
            requests: pod_requests(&pod, false),
            non_zero_requests: pod_requests(&pod, true),
            required_affinity: required(pa.and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })),
            required_anti_affinity: required(paa.and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })),
            preferred_affinity: preferred(pa.and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })),
            preferred_anti_affinity: preferred(paa.and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })),
            host_ports,
            namespace,
            pod,
        }
    }

    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Whether the pod has any pod affinity or anti-affinity, required or preferred.
    pub fn has_affinity(&self) -> bool {
        !self.required_affinity.is_empty()
            || !self.required_anti_affinity.is_empty()
            || !self.preferred_affinity.is_empty()
            || !self.preferred_anti_affinity.is_empty()
    }

    /// The node the pod is bound (or nominated) to, "" if none.
    pub fn node_name(&self) -> &str {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .unwrap_or("")
    }
}

/// An image present on a node, with how many nodes have it (for ImageLocality's spread).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageState {
    /// Bytes.
    pub size: i64,
    /// Nodes that have the image.
    pub num_nodes: usize,
}

/// A node and the pods on it, including pods assumed by the scheduler whose binding has not
/// been confirmed yet.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    /// The node.
    pub node: Arc<Node>,
    /// The node's name.
    pub name: String,
    /// Labels of the node.
    pub labels: BTreeMap<String, String>,
    /// The pods on the node.
    pub pods: Vec<Arc<PodInfo>>,
    /// The pods with any pod (anti-)affinity.
    pub pods_with_affinity: Vec<Arc<PodInfo>>,
    /// The pods with required anti-affinity.
    pub pods_with_required_anti_affinity: Vec<Arc<PodInfo>>,
    /// Host ports in use.
    pub used_ports: HashSet<HostPort>,
    /// The sum of the pods' requests.
    pub requested: Resource,
    /// The sum of the pods' requests with scoring defaults.
    pub non_zero_requested: Resource,
    /// `status.allocatable`.
    pub allocatable: Resource,
    /// Images on the node by every name they have, with the cluster-wide node count.
    pub image_states: HashMap<String, ImageState>,
    /// Bumped on every change.
    pub generation: u64,
}

impl NodeInfo {
    /// A node with no pods.
    pub fn new(node: Arc<Node>) -> NodeInfo {
        let allocatable = node
            .status
            .as_ref()
            .and_then(|s| s.allocatable.as_ref())
            .map(Resource::from_list)
            .unwrap_or_default();
        NodeInfo {
            name: node.metadata.name.clone().unwrap_or_default(),
            labels: node.metadata.labels.clone().unwrap_or_default(),
            node,
            pods: Vec::new(),
            pods_with_affinity: Vec::new(),
            pods_with_required_anti_affinity: Vec::new(),
            used_ports: HashSet::new(),
            requested: Resource::default(),
            non_zero_requested: Resource::default(),
            allocatable,
            image_states: HashMap::new(),
            generation: 0,
        }
    }

    /// Replaces the node object, keeping the pods.
    pub fn set_node(&mut self, node: Arc<Node>) {
        let fresh = NodeInfo::new(node);
        self.node = fresh.node;
        self.labels = fresh.labels;
        self.allocatable = fresh.allocatable;
        self.generation += 1;
    }

    /// Adds a pod.
    pub fn add_pod(&mut self, pod: Arc<PodInfo>) {
        self.requested.add(&pod.requests);
        self.non_zero_requested.add(&pod.non_zero_requests);
        for hp in &pod.host_ports {
            self.used_ports.insert(hp.clone());
        }
        if pod.has_affinity() {
            self.pods_with_affinity.push(pod.clone());
        }
        if !pod.required_anti_affinity.is_empty() {
            self.pods_with_required_anti_affinity.push(pod.clone());
        }
        self.pods.push(pod);
        self.generation += 1;
    }

    /// Removes the pod with `uid`; returns it if it was there.
    pub fn remove_pod(&mut self, uid: &str) -> Option<Arc<PodInfo>> {
        let idx = self.pods.iter().position(|p| p.uid == uid)?;
        let pod = self.pods.swap_remove(idx);
        self.pods_with_affinity.retain(|p| p.uid != uid);
        self.pods_with_required_anti_affinity
            .retain(|p| p.uid != uid);
        self.requested.sub(&pod.requests);
        self.non_zero_requested.sub(&pod.non_zero_requests);
        for hp in &pod.host_ports {
            // Another pod may use the same port only if it is a different IP; recompute.
            if !self.pods.iter().any(|p| p.host_ports.contains(hp)) {
                self.used_ports.remove(hp);
            }
        }
        self.generation += 1;
        Some(pod)
    }

    /// Whether host port `want` conflicts with a port in use, as upstream's
    /// `HostPortInfo.CheckConflict`: `0.0.0.0` conflicts with the same port on any IP.
    pub fn port_conflicts(&self, want: &HostPort) -> bool {
        if want.ip == "0.0.0.0" {
            self.used_ports
                .iter()
                .any(|u| u.port == want.port && u.protocol == want.protocol)
        } else {
            self.used_ports.iter().any(|u| {
                u.port == want.port
                    && u.protocol == want.protocol
                    && (u.ip == want.ip || u.ip == "0.0.0.0")
            })
        }
    }
}
