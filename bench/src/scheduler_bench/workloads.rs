//! The workloads: upstream's scheduler_perf test cases with their `performance` sizes and
//! thresholds (test/integration/scheduler_perf/{misc,affinity,topology_spreading}/
//! performance-config.yaml), and its node and pod templates (templates/*.yaml).

use clap::ValueEnum;
use serde_json::{json, Value};

/// The target this project set for SchedulingBasic 5000 nodes / 10,000 pods.
pub const TARGET_BASIC: f64 = 2000.0;

/// The init pods go to `sched-0`, the measured ones to `sched-1`, as upstream's
/// SchedulingPodAntiAffinity names them (its anti-affinity term lists both).
pub const INIT_NS: &str = "sched-0";
pub const MEASURE_NS: &str = "sched-1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WorkloadArg {
    Basic,
    #[value(name = "basic-50k")]
    Basic50k,
    AntiAffinity,
    TopologySpread,
    Preemption,
    All,
}

/// The pod templates of upstream's scheduler_perf that these workloads use.
#[derive(Debug, Clone, Copy)]
pub enum PodTemplate {
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
pub struct Workload {
    pub flag: &'static str,
    pub upstream: &'static str,
    pub nodes: usize,
    pub init_pods: usize,
    pub measured_pods: usize,
    pub zones: &'static [&'static str],
    pub init_template: PodTemplate,
    pub measured_template: PodTemplate,
    /// Upstream's CI threshold (pods/s), if the workload has one.
    pub threshold: Option<f64>,
    /// This project's target (pods/s), if any.
    pub target: Option<f64>,
}

pub fn workload(w: WorkloadArg) -> Workload {
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
pub fn node(i: usize, zones: &[&str]) -> Value {
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

pub fn pod(template: PodTemplate, name: &str) -> Value {
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
