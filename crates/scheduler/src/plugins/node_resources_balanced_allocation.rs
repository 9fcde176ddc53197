//! NodeResourcesBalancedAllocation: favours nodes whose resources would be used evenly with
//! the pod on them, as upstream's `noderesources/balanced_allocation.go` in v1.33.
//!
//! For each listed resource (args `resources`, default cpu and memory, each of weight 1,
//! the only weight allowed) the node's fraction in use with the pod is
//! `requested / allocatable`, capped at 1;
//! resources the node has none of, and extended resources the pod does not request, are left
//! out. The score is `(1 - std) * 100`, truncated, where `std` is the population standard
//! deviation of the fractions (`|f1 - f2| / 2` for two, 0 for fewer). Requests here are the
//! plain ones, without the scoring defaults for containers that set none, and a pod that
//! requests none of the listed resources (best effort) is not scored at all: PreScore
//! returns Skip, so that such pods do not pile onto one node (upstream issue 129138).

use std::sync::Arc;

use rkube_api::field_error::{FieldError, FieldPath};
use serde::{Deserialize, Serialize};

use super::resource_scoring::{
    aggregate, default_resources, default_weights, ResourceAllocation, ResourceSpec,
};
use crate::framework::{
    CycleState, NodeInfo, Plugin, PodInfo, PreScorePlugin, ScorePlugin, Snapshot, Status,
    MAX_NODE_SCORE,
};
use crate::registry::{parse_args, Handle};

/// The plugin's name.
pub const NAME: &str = "NodeResourcesBalancedAllocation";

/// The cycle-state key of the pod's per-resource requests, written by PreScore.
pub const PRE_SCORE_STATE_KEY: &str = "PreScoreNodeResourcesBalancedAllocation";

/// The plugin's args (kubescheduler.config.k8s.io/v1
/// `NodeResourcesBalancedAllocationArgs`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeResourcesBalancedAllocationArgs {
    /// The resources to balance; each weight must be 1.
    #[serde(default)]
    pub resources: Vec<ResourceSpec>,
}

impl Default for NodeResourcesBalancedAllocationArgs {
    /// Upstream's defaulted args: cpu and memory.
    fn default() -> Self {
        NodeResourcesBalancedAllocationArgs {
            resources: default_resources(),
        }
    }
}

impl NodeResourcesBalancedAllocationArgs {
    /// Upstream's v1 defaulting: no resources means cpu and memory; a weight left at 0
    /// becomes 1.
    pub fn set_defaults(&mut self) {
        default_weights(&mut self.resources);
    }

    /// Upstream's `ValidateNodeResourcesBalancedAllocationArgs`: no resource twice, every
    /// weight 1.
    pub fn validate(&self) -> Result<(), String> {
        let path = FieldPath::default().child("resources");
        let mut errs = Vec::new();
        for (i, r) in self.resources.iter().enumerate() {
            if self.resources[..i].iter().any(|o| o.name == r.name) {
                errs.push(FieldError::duplicate(
                    &path.index(i).child("name"),
                    r.name.as_str(),
                ));
            }
            if r.weight != 1 {
                errs.push(FieldError::invalid(
                    &path.index(i).child("weight"),
                    r.weight,
                    "must be 1",
                ));
            }
        }
        aggregate(&errs)
    }
}

/// See the module documentation.
#[derive(Debug)]
pub struct NodeResourcesBalancedAllocation {
    allocation: ResourceAllocation,
}

/// The factory: parses, defaults and validates the args.
pub fn new(args: &serde_json::Value, _handle: &Handle) -> Result<Arc<dyn Plugin>, String> {
    let mut a: NodeResourcesBalancedAllocationArgs = parse_args(NAME, args)?;
    a.set_defaults();
    Ok(Arc::new(NodeResourcesBalancedAllocation::from_args(&a)?))
}

impl NodeResourcesBalancedAllocation {
    /// The plugin for already defaulted args.
    pub fn from_args(args: &NodeResourcesBalancedAllocationArgs) -> Result<Self, String> {
        args.validate()?;
        Ok(NodeResourcesBalancedAllocation {
            // plain requests: the scoring defaults would make every node look CPU-heavy
            allocation: ResourceAllocation::new(&args.resources, true),
        })
    }
}

/// What PreScore stores for Score: the pod's request of each listed resource, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreScoreState {
    /// One request per listed resource.
    pub pod_requests: Vec<i64>,
}

/// Upstream's `balancedResourceScorer` over `node` with a pod requesting `pod_requests`:
/// `(1 - std) * 100` of the capped fractions in use. Two passes over the resources instead
/// of a list of fractions, so that scoring allocates nothing.
pub fn balanced_score(alloc: &ResourceAllocation, node: &NodeInfo, pod_requests: &[i64]) -> i64 {
    let fractions = || {
        alloc
            .resources()
            .iter()
            .enumerate()
            .filter_map(move |(i, (resource, _))| {
                let pod_request = pod_requests.get(i).copied().unwrap_or(0);
                let (allocatable, requested) =
                    alloc.allocatable_requested(resource, node, pod_request);
                (allocatable != 0).then(|| (requested as f64 / allocatable as f64).min(1.0))
            })
    };
    let mut count = 0usize;
    let mut total = 0.0f64;
    let mut first_two = [0.0f64; 2];
    for f in fractions() {
        if count < 2 {
            first_two[count] = f;
        }
        count += 1;
        total += f;
    }
    let std = match count {
        // the common cpu-and-memory case, exactly as upstream computes it
        2 => ((first_two[0] - first_two[1]) / 2.0).abs(),
        n if n > 2 => {
            let mean = total / n as f64;
            let sum = fractions().fold(0.0, |acc, f| acc + (f - mean) * (f - mean));
            (sum / n as f64).sqrt()
        }
        _ => 0.0,
    };
    ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
}

impl Plugin for NodeResourcesBalancedAllocation {
    fn name(&self) -> &'static str {
        NAME
    }
    fn as_pre_score(&self) -> Option<&dyn PreScorePlugin> {
        Some(self)
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

impl PreScorePlugin for NodeResourcesBalancedAllocation {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _nodes: &[&NodeInfo],
        _snapshot: &Snapshot,
    ) -> Status {
        let pod_requests = self.allocation.pod_requests(pod);
        if pod_requests.iter().all(|r| *r == 0) {
            return Status::skip();
        }
        state.write(PRE_SCORE_STATE_KEY, PreScoreState { pod_requests });
        Status::success()
    }
}

impl ScorePlugin for NodeResourcesBalancedAllocation {
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> (i64, Status) {
        if self.allocation.resources().is_empty() {
            return (0, Status::error("resources not found"));
        }
        let score = match state.read::<PreScoreState>(PRE_SCORE_STATE_KEY) {
            Some(s) => balanced_score(&self.allocation, node, &s.pod_requests),
            // as upstream, Score works without PreScore by computing the requests itself
            None => balanced_score(&self.allocation, node, &self.allocation.pod_requests(pod)),
        };
        (score, Status::success())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::framework::Code;
    use crate::plugins::testing::{node_allocatable as node, pod_requesting};

    const GPU: &str = "nvidia.com/gpu";

    fn plugin(args: Value) -> NodeResourcesBalancedAllocation {
        let mut a: NodeResourcesBalancedAllocationArgs = parse_args(NAME, &args).expect("parse");
        a.set_defaults();
        NodeResourcesBalancedAllocation::from_args(&a).expect("valid")
    }

    #[rustfmt::skip]
    #[test]
    #[allow(clippy::type_complexity)] // the cases' table
    fn balanced_nodes_score_higher_like_upstream() {
        // upstream's TestNodeResourcesBalancedAllocation (its makeNode's cpu is millicores)
        const CPU_ONLY: &str = "cpu=1000m,memory=0 + cpu=2000m,memory=0";
        const CPU_AND_MEMORY: &str = "cpu=1000m,memory=2000 + cpu=2000m,memory=3000";
        const CPU_MEMORY_GPU: &str = "cpu=1000m,memory=2000 + cpu=2000m,memory=3000,nvidia.com/gpu=3";
        const GPU_NODE: &str = "cpu=3500m,memory=40000,nvidia.com/gpu=8";
        let with_gpu = json!({"resources": [{"name": "cpu"}, {"name": "memory"}, {"name": GPU}]});
        // (name, args, pod, nodes, scores, PreScore skips the best-effort pod)
        let cases: Vec<(&str, Value, &str, [NodeInfo; 2], [i64; 2], bool)> = vec![
            ("nothing scheduled, nothing requested", Value::Null, "",
                [node("node1", "cpu=4000m,memory=10000", &[]), node("node2", "cpu=4000m,memory=10000", &[])], [100, 100], true),
            ("nothing scheduled, resources requested, differently sized nodes", Value::Null, CPU_AND_MEMORY,
                [node("node1", "cpu=4000m,memory=10000", &[]), node("node2", "cpu=6000m,memory=10000", &[])], [87, 100], false),
            ("no resources requested, pods without containers scheduled", Value::Null, "",
                [node("node1", "cpu=4000m,memory=10000", &["", ""]), node("node2", "cpu=4000m,memory=10000", &["", ""])], [100, 100], true),
            ("containers without requests count nothing here", Value::Null, "{}",
                [node("node1", "cpu=250m,memory=1000Mi", &["{}", "{}"]), node("node2", "cpu=250m,memory=1000Mi", &[])], [100, 100], true),
            ("no resources requested, pods scheduled with resources", Value::Null, "",
                [node("node1", "cpu=10000m,memory=20000", &[CPU_ONLY, CPU_ONLY]),
                 node("node2", "cpu=10000m,memory=20000", &[CPU_ONLY, CPU_AND_MEMORY])], [70, 82], true),
            ("resources requested, pods scheduled with resources", Value::Null, CPU_AND_MEMORY,
                [node("node1", "cpu=10000m,memory=20000", &[CPU_ONLY]),
                 node("node2", "cpu=10000m,memory=20000", &[CPU_AND_MEMORY])], [82, 95], false),
            ("resources requested, pods scheduled with resources, differently sized nodes", Value::Null, CPU_AND_MEMORY,
                [node("node1", "cpu=10000m,memory=20000", &[CPU_ONLY]),
                 node("node2", "cpu=10000m,memory=50000", &[CPU_AND_MEMORY])], [82, 80], false),
            ("requested resources at node capacity", Value::Null, CPU_ONLY,
                [node("node1", "cpu=6000m,memory=10000", &[CPU_ONLY]),
                 node("node2", "cpu=6000m,memory=10000", &[CPU_AND_MEMORY])], [50, 75], false),
            ("zero node resources, pods scheduled with resources", Value::Null, "",
                [node("node1", "", &[CPU_ONLY]), node("node2", "", &[CPU_AND_MEMORY])], [100, 100], true),
            ("include scalar resource on a node for balanced resource allocation", with_gpu, "memory=0,nvidia.com/gpu=1",
                [node("node1", GPU_NODE, &[CPU_MEMORY_GPU]), node("node2", GPU_NODE, &[CPU_AND_MEMORY])], [70, 65], false),
            ("node without the scalar resource results to a higher score",
                json!({"resources": [{"name": "cpu"}, {"name": GPU}]}), "",
                [node("node1", GPU_NODE, &[CPU_ONLY]), node("node2", "cpu=3500m,memory=40000", &[CPU_ONLY])], [100, 100], true),
        ];
        for (name, args, pod, nodes, want, skipped) in cases {
            let (p, pod) = (plugin(args), pod_requesting(pod));
            let refs: Vec<&NodeInfo> = nodes.iter().collect();
            let mut state = CycleState::new();
            let s = p.pre_score(&mut state, &pod, &refs, &Snapshot::default());
            assert_eq!(s.code(), if skipped { Code::Skip } else { Code::Success }, "{name}");
            assert_eq!(state.read::<PreScoreState>(PRE_SCORE_STATE_KEY).is_some(), !skipped, "{name}");
            // scores with the PreScore state, and (as upstream) without it
            for st in [state, CycleState::new()] {
                let got = nodes.iter().map(|n| {
                    let (v, s) = p.score(&st, &pod, n);
                    assert!(s.is_success(), "{name}: {s}");
                    v
                });
                assert_eq!(got.collect::<Vec<_>>(), want, "{name}");
            }
        }
    }

    #[rustfmt::skip]
    #[test]
    fn args_default_and_validate_like_upstream() {
        assert_eq!(NodeResourcesBalancedAllocationArgs::default().resources, default_resources());
        let parsed = |v: Value| -> Result<NodeResourcesBalancedAllocationArgs, String> {
            let mut a: NodeResourcesBalancedAllocationArgs = parse_args(NAME, &v)?;
            a.set_defaults();
            a.validate().map(|_| a)
        };
        assert_eq!(parsed(Value::Null).expect("valid").resources, default_resources());
        assert_eq!(parsed(json!({"resources": []})).expect("valid").resources, default_resources());
        assert_eq!(parsed(json!({"resources": [{"name": GPU}]})).expect("valid").resources, vec![ResourceSpec::new(GPU, 1)]);
        let cases = [
            (json!({"resources": [{"name": "cpu", "weight": 2}]}), "resources[0].weight: Invalid value: 2: must be 1"),
            (json!({"resources": [{"name": "cpu"}, {"name": "memory"}, {"name": "cpu", "weight": -1}]}),
                r#"[resources[2].name: Duplicate value: "cpu", resources[2].weight: Invalid value: -1: must be 1]"#),
        ];
        for (args, want) in cases {
            assert_eq!(parsed(args.clone()).unwrap_err(), want, "{args}");
        }
        assert!(parsed(json!({"resource": []})).unwrap_err().contains("unknown field"));
        assert!(new(&json!({"resources": [{"name": "cpu", "weight": 3}]}), &Handle::default()).is_err());
        assert!(new(&Value::Null, &Handle::default()).is_ok());
    }
}
