//! NodeResourcesFit: a node must have room for the pod's requests, and among the nodes that
//! do, the scoring strategy ranks them, as upstream's `noderesources/fit.go` in v1.33.
//!
//! Filter (upstream's `fitsRequest`): the node must take one more pod (`Too many pods` once
//! its pods reach allocatable `pods`), and each resource the pod requests (more than zero)
//! must fit in allocatable minus what the node's pods request: `Insufficient cpu`,
//! `Insufficient memory`, `Insufficient ephemeral-storage`, `Insufficient <name>` for every
//! other resource, one reason per short resource, all in one Unschedulable status. v1.33
//! returns Unschedulable even when the request exceeds the node's whole allocatable (the
//! UnschedulableAndUnresolvable variant arrived in v1.34). Extended resources named in
//! `ignoredResources`, or whose prefix (before `/`) is in `ignoredResourceGroups`, are not
//! checked. The pod's requests are `PodInfo::requests`: containers summed, the largest init
//! container (with the sidecars started before it), sidecars, and the pod overhead.
//!
//! Score: `scoringStrategy.type` LeastAllocated (default), MostAllocated or
//! RequestedToCapacityRatio over `scoringStrategy.resources` (default cpu and memory, weight
//! 1), as [`resource_scoring`](super::resource_scoring) describes.

use std::collections::HashSet;
use std::sync::Arc;

use rkube_api::field_error::{FieldError, FieldPath};
use rkube_api::validation::is_qualified_name;
use serde::{Deserialize, Serialize};

use super::resource_scoring::{
    aggregate, default_weights, validate_function_shape, validate_resources, BrokenLinearFunction,
    ResourceAllocation, ResourceSpec, Strategy, UtilizationShapePoint,
};
use crate::framework::types::{is_extended_resource, CPU, EPHEMERAL_STORAGE, MEMORY, PODS};
use crate::framework::{
    ActionType, ClusterEvent, Code, CycleState, EventResource, FilterPlugin, NodeInfo, Plugin,
    PodInfo, PreFilterPlugin, PreFilterResult, PreScorePlugin, ScorePlugin, Snapshot, Status,
};
use crate::registry::{parse_args, Handle};

/// The plugin's name.
pub const NAME: &str = "NodeResourcesFit";

/// The cycle-state key of the pod's requests, written by PreFilter.
pub const PRE_FILTER_STATE_KEY: &str = "PreFilterNodeResourcesFit";
/// The cycle-state key of the pod's per-resource requests for scoring, written by PreScore.
pub const PRE_SCORE_STATE_KEY: &str = "PreScoreNodeResourcesFit";

/// Upstream's reason when the node already runs its allocatable number of pods.
pub const REASON_TOO_MANY_PODS: &str = "Too many pods";
/// Upstream's reason for CPU.
pub const REASON_INSUFFICIENT_CPU: &str = "Insufficient cpu";
/// Upstream's reason for memory.
pub const REASON_INSUFFICIENT_MEMORY: &str = "Insufficient memory";
/// Upstream's reason for ephemeral storage.
pub const REASON_INSUFFICIENT_EPHEMERAL_STORAGE: &str = "Insufficient ephemeral-storage";

/// `scoringStrategy.type`: favour the least requested nodes.
pub const LEAST_ALLOCATED: &str = "LeastAllocated";
/// `scoringStrategy.type`: favour the most requested nodes.
pub const MOST_ALLOCATED: &str = "MostAllocated";
/// `scoringStrategy.type`: score utilization through `requestedToCapacityRatio.shape`.
pub const REQUESTED_TO_CAPACITY_RATIO: &str = "RequestedToCapacityRatio";

/// Upstream's reason for a resource other than CPU, memory and ephemeral storage.
pub fn insufficient_reason(resource: &str) -> String {
    format!("Insufficient {resource}")
}

/// The plugin's args (kubescheduler.config.k8s.io/v1 `NodeResourcesFitArgs`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeResourcesFitArgs {
    /// Extended resources Filter does not check.
    #[serde(default)]
    pub ignored_resources: Vec<String>,
    /// Prefixes (`example.com` of `example.com/foo`) of extended resources Filter does not
    /// check.
    #[serde(default)]
    pub ignored_resource_groups: Vec<String>,
    /// How Score ranks nodes; `None` before defaulting.
    #[serde(default)]
    pub scoring_strategy: Option<ScoringStrategy>,
}

/// `scoringStrategy`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScoringStrategy {
    /// `LeastAllocated`, `MostAllocated` or `RequestedToCapacityRatio`; kept as written so
    /// that validation can name an unsupported value.
    #[serde(rename = "type", default)]
    pub type_: String,
    /// The resources to score and their weights.
    #[serde(default)]
    pub resources: Vec<ResourceSpec>,
    /// The shape for `RequestedToCapacityRatio`.
    #[serde(default)]
    pub requested_to_capacity_ratio: Option<RequestedToCapacityRatioParam>,
}

/// `scoringStrategy.requestedToCapacityRatio`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestedToCapacityRatioParam {
    /// The scoring function's points.
    #[serde(default)]
    pub shape: Vec<UtilizationShapePoint>,
}

impl Default for NodeResourcesFitArgs {
    /// Upstream's defaulted args: LeastAllocated over cpu and memory, weight 1.
    fn default() -> Self {
        let mut a = NodeResourcesFitArgs {
            ignored_resources: Vec::new(),
            ignored_resource_groups: Vec::new(),
            scoring_strategy: None,
        };
        a.set_defaults();
        a
    }
}

impl NodeResourcesFitArgs {
    /// Upstream's v1 `SetDefaults_NodeResourcesFitArgs`: no strategy means LeastAllocated;
    /// no resources means cpu and memory; a weight left at 0 becomes 1. A strategy given
    /// without a type keeps the empty type (and fails validation), as upstream.
    pub fn set_defaults(&mut self) {
        let s = self
            .scoring_strategy
            .get_or_insert_with(|| ScoringStrategy {
                type_: LEAST_ALLOCATED.to_string(),
                resources: Vec::new(),
                requested_to_capacity_ratio: None,
            });
        default_weights(&mut s.resources);
    }

    /// Upstream's `ValidateNodeResourcesFitArgs`, with upstream's field paths and messages.
    pub fn validate(&self) -> Result<(), String> {
        let mut errs: Vec<FieldError> = Vec::new();
        let res_path = FieldPath::default().child("ignoredResources");
        for (i, r) in self.ignored_resources.iter().enumerate() {
            for msg in is_qualified_name(r) {
                errs.push(FieldError::invalid(&res_path.index(i), r.as_str(), &msg));
            }
        }
        let group_path = FieldPath::default().child("ignoredResourceGroups");
        for (i, g) in self.ignored_resource_groups.iter().enumerate() {
            let p = group_path.index(i);
            if g.contains('/') {
                errs.push(FieldError::invalid(
                    &p,
                    g.as_str(),
                    "resource group name can't contain '/'",
                ));
            }
            for msg in is_qualified_name(g) {
                errs.push(FieldError::invalid(&p, g.as_str(), &msg));
            }
        }
        let sp = FieldPath::default().child("scoringStrategy");
        match &self.scoring_strategy {
            None => errs.push(FieldError::required(
                &sp,
                "ScoringStrategy field is required",
            )),
            Some(s) => {
                let types = [LEAST_ALLOCATED, MOST_ALLOCATED, REQUESTED_TO_CAPACITY_RATIO];
                if !types.contains(&s.type_.as_str()) {
                    errs.push(FieldError::not_supported(
                        &sp.child("type"),
                        s.type_.as_str(),
                        &types,
                    ));
                }
                errs.extend(validate_resources(&s.resources, &sp.child("resources")));
                match &s.requested_to_capacity_ratio {
                    Some(r) => errs.extend(validate_function_shape(&r.shape, &sp.child("shape"))),
                    // v1.33 dereferences the missing shape and crashes; later releases
                    // reject it with this message
                    None if s.type_ == REQUESTED_TO_CAPACITY_RATIO => {
                        errs.push(FieldError::required(
                            &sp.child("requestedToCapacityRatio"),
                            "must be specified when type is RequestedToCapacityRatio",
                        ))
                    }
                    None => {}
                }
            }
        }
        aggregate(&errs)
    }
}

/// See the module documentation.
#[derive(Debug)]
pub struct NodeResourcesFit {
    ignored_resources: HashSet<String>,
    ignored_resource_groups: HashSet<String>,
    allocation: ResourceAllocation,
    strategy: Strategy,
}

/// The factory: parses, defaults and validates the args.
pub fn new(args: &serde_json::Value, _handle: &Handle) -> Result<Arc<dyn Plugin>, String> {
    let mut a: NodeResourcesFitArgs = parse_args(NAME, args)?;
    a.set_defaults();
    Ok(Arc::new(NodeResourcesFit::from_args(&a)?))
}

impl NodeResourcesFit {
    /// The plugin for already defaulted args; an error names every invalid field.
    pub fn from_args(args: &NodeResourcesFitArgs) -> Result<Self, String> {
        args.validate()?;
        let s = args
            .scoring_strategy
            .as_ref()
            .ok_or_else(|| "scoring strategy not specified".to_string())?;
        let strategy = match s.type_.as_str() {
            MOST_ALLOCATED => Strategy::MostAllocated,
            REQUESTED_TO_CAPACITY_RATIO => {
                let shape = s
                    .requested_to_capacity_ratio
                    .as_ref()
                    .map(|r| r.shape.as_slice())
                    .unwrap_or_default();
                Strategy::RequestedToCapacityRatio(BrokenLinearFunction::from_shape(shape))
            }
            _ => Strategy::LeastAllocated,
        };
        Ok(NodeResourcesFit {
            ignored_resources: args.ignored_resources.iter().cloned().collect(),
            ignored_resource_groups: args.ignored_resource_groups.iter().cloned().collect(),
            // Fit scores CPU and memory with the defaults for containers without requests
            allocation: ResourceAllocation::new(&s.resources, false),
            strategy,
        })
    }

    /// The requests Filter checks for `pod`: ignored extended resources and zero requests
    /// are dropped here, once per cycle, so that Filter only compares numbers.
    pub fn pre_filter_state(&self, pod: &PodInfo) -> PreFilterState {
        let r = &pod.requests;
        let scalar = r
            .scalar
            .iter()
            .filter(|(name, amount)| **amount != 0 && !self.ignored(name))
            .map(|(name, amount)| ScalarRequest {
                name: name.clone(),
                amount: *amount,
                reason: insufficient_reason(name),
            })
            .collect();
        PreFilterState {
            milli_cpu: r.milli_cpu,
            memory: r.memory,
            ephemeral_storage: r.ephemeral_storage,
            scalar,
        }
    }

    fn ignored(&self, name: &str) -> bool {
        if !is_extended_resource(name) {
            return false;
        }
        if self.ignored_resources.contains(name) {
            return true;
        }
        let group = name.split('/').next().unwrap_or(name);
        self.ignored_resource_groups.contains(group)
    }
}

/// A request of a resource other than CPU, memory and ephemeral storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScalarRequest {
    /// The resource.
    pub name: String,
    /// The amount, in the resource's unit.
    pub amount: i64,
    /// `Insufficient <name>`, built once per cycle rather than per node.
    pub reason: String,
}

/// What PreFilter stores for Filter: the pod's requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreFilterState {
    /// Millicores.
    pub milli_cpu: i64,
    /// Bytes.
    pub memory: i64,
    /// Bytes.
    pub ephemeral_storage: i64,
    /// Other resources to check: requested (non-zero) and not ignored.
    pub scalar: Vec<ScalarRequest>,
}

/// A resource the node is short of (upstream's `InsufficientResource`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InsufficientResource<'a> {
    /// The resource (`pods`, `cpu`, ...).
    pub resource_name: &'a str,
    /// The Filter reason.
    pub reason: &'a str,
    /// What the pod requests (1 for pods).
    pub requested: i64,
    /// What the node's pods request already.
    pub used: i64,
    /// The node's allocatable amount.
    pub capacity: i64,
}

/// Upstream's `fitsRequest`: every resource `node` is short of for a pod requesting `req`,
/// in upstream's order (pods, cpu, memory, ephemeral storage, then the other resources by
/// name). Allocates nothing when the pod fits.
pub fn fits_request<'a>(req: &'a PreFilterState, node: &NodeInfo) -> Vec<InsufficientResource<'a>> {
    let mut out = Vec::new();
    let alloc = &node.allocatable;
    let used = &node.requested;
    let pods = node.pods.len() as i64;
    if pods + 1 > alloc.allowed_pod_number {
        out.push(InsufficientResource {
            resource_name: PODS,
            reason: REASON_TOO_MANY_PODS,
            requested: 1,
            used: pods,
            capacity: alloc.allowed_pod_number,
        });
    }
    let fixed = [
        (
            CPU,
            REASON_INSUFFICIENT_CPU,
            req.milli_cpu,
            used.milli_cpu,
            alloc.milli_cpu,
        ),
        (
            MEMORY,
            REASON_INSUFFICIENT_MEMORY,
            req.memory,
            used.memory,
            alloc.memory,
        ),
        (
            EPHEMERAL_STORAGE,
            REASON_INSUFFICIENT_EPHEMERAL_STORAGE,
            req.ephemeral_storage,
            used.ephemeral_storage,
            alloc.ephemeral_storage,
        ),
    ];
    for (name, reason, want, used, capacity) in fixed {
        if want > 0 && want > capacity - used {
            out.push(InsufficientResource {
                resource_name: name,
                reason,
                requested: want,
                used,
                capacity,
            });
        }
    }
    for s in &req.scalar {
        let capacity = alloc.scalar.get(&s.name).copied().unwrap_or(0);
        let used = used.scalar.get(&s.name).copied().unwrap_or(0);
        if s.amount > capacity - used {
            out.push(InsufficientResource {
                resource_name: &s.name,
                reason: &s.reason,
                requested: s.amount,
                used,
                capacity,
            });
        }
    }
    out
}

/// What PreScore stores for Score: the pod's request of each scored resource, in the order
/// of `scoringStrategy.resources`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreScoreState {
    /// One request per listed resource.
    pub pod_requests: Vec<i64>,
}

impl Plugin for NodeResourcesFit {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events_to_register(&self) -> Vec<ClusterEvent> {
        // Upstream with queueing hints (the v1.33 default): room appears when a bound pod
        // goes away or shrinks (or the pod itself shrinks), or a node appears or grows.
        vec![
            ClusterEvent::new(
                EventResource::AssignedPod,
                ActionType::DELETE.or(ActionType::UPDATE_POD_SCALE_DOWN),
            ),
            ClusterEvent::new(
                EventResource::UnscheduledPod,
                ActionType::UPDATE_POD_SCALE_DOWN,
            ),
            ClusterEvent::new(
                EventResource::Node,
                ActionType::ADD.or(ActionType::UPDATE_NODE_ALLOCATABLE),
            ),
        ]
    }
    fn as_pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        Some(self)
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
    fn as_pre_score(&self) -> Option<&dyn PreScorePlugin> {
        Some(self)
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

impl PreFilterPlugin for NodeResourcesFit {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _snapshot: &Snapshot,
    ) -> (Option<PreFilterResult>, Status) {
        state.write(PRE_FILTER_STATE_KEY, self.pre_filter_state(pod));
        (None, Status::success())
    }
}

impl FilterPlugin for NodeResourcesFit {
    fn filter(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(req) = state.read::<PreFilterState>(PRE_FILTER_STATE_KEY) else {
            return Status::error(format!(
                "error reading {PRE_FILTER_STATE_KEY:?} from cycleState: not found"
            ));
        };
        let short = fits_request(req, node);
        if short.is_empty() {
            return Status::success();
        }
        Status::new(Code::Unschedulable, short.iter().map(|r| r.reason))
    }
}

impl PreScorePlugin for NodeResourcesFit {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _nodes: &[&NodeInfo],
        _snapshot: &Snapshot,
    ) -> Status {
        state.write(
            PRE_SCORE_STATE_KEY,
            PreScoreState {
                pod_requests: self.allocation.pod_requests(pod),
            },
        );
        Status::success()
    }
}

impl ScorePlugin for NodeResourcesFit {
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> (i64, Status) {
        if self.allocation.resources().is_empty() {
            return (0, Status::error("resources not found"));
        }
        let score = match state.read::<PreScoreState>(PRE_SCORE_STATE_KEY) {
            Some(s) => self.strategy.score(&self.allocation, node, &s.pod_requests),
            // as upstream, Score works without PreScore by computing the requests itself
            None => self
                .strategy
                .score(&self.allocation, node, &self.allocation.pod_requests(pod)),
        };
        (score, Status::success())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::plugins::testing::{containers, node_allocatable, pod, pod_requesting, quantities};

    const EXT_A: &str = "example.com/aaa";
    const EXT_B: &str = "example.com/bbb";
    const HUGE: &str = "hugepages-2Mi";

    fn plugin(args: Value) -> NodeResourcesFit {
        let mut a: NodeResourcesFitArgs = parse_args(NAME, &args).expect("args parse");
        a.set_defaults();
        NodeResourcesFit::from_args(&a).expect("valid args")
    }

    /// A pod with containers `c`, init containers `init` (see `testing::containers`), a
    /// leading `sidecar ` marking them `restartPolicy: Always`, and `overhead`.
    fn spec_pod(c: &str, init: &str, overhead: &str) -> Arc<PodInfo> {
        let (sidecar, init) = match init.strip_prefix("sidecar ") {
            Some(rest) => (true, rest),
            None => (false, init),
        };
        let mut init = containers(init);
        for c in init.iter_mut().filter(|_| sidecar) {
            c["restartPolicy"] = json!("Always");
        }
        let mut spec = json!({"containers": containers(c), "initContainers": init});
        if !overhead.is_empty() {
            spec["overhead"] = Value::Object(quantities(overhead));
        }
        pod(json!({ "spec": spec }))
    }

    fn run_filter(p: &NodeResourcesFit, pod: &PodInfo, node: &NodeInfo) -> Status {
        let mut state = CycleState::new();
        let (_, s) = p.pre_filter(&mut state, pod, &Snapshot::default());
        assert!(s.is_success());
        p.filter(&state, pod, node)
    }

    #[rustfmt::skip]
    #[test]
    #[allow(clippy::type_complexity)] // the cases' table
    fn filter_reports_every_short_resource_like_upstream() {
        // upstream's TestEnoughRequests and TestStorageRequests: the node's allocatable is
        // ALLOC and one pod on it requests the third column
        const ALLOC: &str =
            "cpu=10m,memory=20,pods=32,example.com/aaa=5,ephemeral-storage=20,hugepages-2Mi=5";
        const CM1: &str = "cpu=1m,memory=1";
        let (ext_a, ext_b, huge) = (insufficient_reason(EXT_A), insufficient_reason(EXT_B), insufficient_reason(HUGE));
        let (cpu, mem, eph) = (REASON_INSUFFICIENT_CPU, REASON_INSUFFICIENT_MEMORY, REASON_INSUFFICIENT_EPHEMERAL_STORAGE);
        let cases: Vec<(&str, Arc<PodInfo>, &str, Value, Vec<&str>)> = vec![
            ("no resources requested always fits", pod(json!({})), "cpu=10m,memory=20", Value::Null, vec![]),
            ("too many resources fails", pod_requesting(CM1), "cpu=10m,memory=20", Value::Null, vec![cpu, mem]),
            ("too many resources fails due to init container cpu",
                spec_pod(CM1, "cpu=3m,memory=1", ""), "cpu=8m,memory=19", Value::Null, vec![cpu]),
            ("too many resources fails due to highest init container cpu",
                spec_pod(CM1, "cpu=3m,memory=1 + cpu=2m,memory=1", ""), "cpu=8m,memory=19", Value::Null, vec![cpu]),
            ("too many resources fails due to init container memory",
                spec_pod(CM1, "cpu=1m,memory=3", ""), "cpu=9m,memory=19", Value::Null, vec![mem]),
            ("init container fits because it's the max, not sum, of containers and init containers",
                spec_pod(CM1, "cpu=1m,memory=1 + cpu=1m,memory=1", ""), "cpu=9m,memory=19", Value::Null, vec![]),
            ("sidecars run alongside the containers, so they add up",
                spec_pod(CM1, "sidecar cpu=5m,memory=1", ""), "cpu=5m,memory=5", Value::Null, vec![cpu]),
            ("both resources fit", pod_requesting(CM1), "cpu=5m,memory=5", Value::Null, vec![]),
            ("one resource memory fits", pod_requesting("cpu=2m,memory=1"), "cpu=9m,memory=5", Value::Null, vec![cpu]),
            ("one resource cpu fits", pod_requesting("cpu=1m,memory=2"), "cpu=5m,memory=19", Value::Null, vec![mem]),
            ("equal edge case", pod_requesting("cpu=5m,memory=1"), "cpu=5m,memory=19", Value::Null, vec![]),
            ("equal edge case for init container",
                spec_pod("cpu=4m,memory=1", "cpu=5m,memory=1", ""), "cpu=5m,memory=19", Value::Null, vec![]),
            ("extended resource fits", pod_requesting("example.com/aaa=1"), "", Value::Null, vec![]),
            ("extended resource fits for init container", spec_pod("", "example.com/aaa=1", ""), "", Value::Null, vec![]),
            ("extended resource capacity enforced",
                pod_requesting("cpu=1m,memory=1,example.com/aaa=10"), "example.com/aaa=0", Value::Null, vec![&ext_a]),
            ("extended resource allocatable enforced",
                pod_requesting("cpu=1m,memory=1,example.com/aaa=1"), "example.com/aaa=5", Value::Null, vec![&ext_a]),
            ("extended resource allocatable enforced for multiple containers",
                pod_requesting("example.com/aaa=3 + example.com/aaa=3"), "example.com/aaa=2", Value::Null, vec![&ext_a]),
            ("extended resource allocatable admits multiple init containers",
                spec_pod("", "example.com/aaa=3 + example.com/aaa=3", ""), "example.com/aaa=2", Value::Null, vec![]),
            ("extended resource allocatable enforced for multiple init containers",
                spec_pod("", "example.com/aaa=6 + example.com/aaa=3", ""), "example.com/aaa=2", Value::Null, vec![&ext_a]),
            ("extended resource allocatable enforced for unknown resource",
                pod_requesting("cpu=1m,memory=1,example.com/bbb=1"), "", Value::Null, vec![&ext_b]),
            ("extended resource allocatable enforced for unknown resource for init container",
                spec_pod("", "example.com/bbb=1", ""), "", Value::Null, vec![&ext_b]),
            ("hugepages resource capacity enforced", pod_requesting("hugepages-2Mi=10"), "", Value::Null, vec![&huge]),
            ("hugepages resource allocatable enforced for multiple containers",
                pod_requesting("hugepages-2Mi=3 + hugepages-2Mi=3"), "hugepages-2Mi=2", Value::Null, vec![&huge]),
            ("skip checking ignored extended resource",
                pod_requesting("cpu=1m,memory=1,example.com/bbb=1"), "", json!({"ignoredResources": [EXT_B]}), vec![]),
            ("skip checking ignored extended resource via resource groups",
                pod_requesting("cpu=1m,memory=1,example.com/bbb=1,hugepages-2Mi=10"), "",
                json!({"ignoredResourceGroups": ["example.com"]}), vec![&huge]),
            ("only extended resources are ignored", pod_requesting("hugepages-2Mi=10"), "",
                json!({"ignoredResourceGroups": ["hugepages-2Mi"], "ignoredResources": [HUGE]}), vec![&huge]),
            ("resources + pod overhead fits",
                spec_pod(CM1, "", "cpu=3m,memory=13"), "cpu=5m,memory=5", Value::Null, vec![]),
            ("requests + overhead does not fit for memory",
                spec_pod(CM1, "", "cpu=1m,memory=15"), "cpu=5m,memory=5", Value::Null, vec![mem]),
            ("skip checking extended resource request with quantity zero",
                pod_requesting("cpu=1m,memory=1,example.com/aaa=0"), "example.com/aaa=6", Value::Null, vec![]),
            ("skip checking resource request with quantity zero",
                pod_requesting("example.com/aaa=1"), "cpu=20m,memory=30,example.com/aaa=1", Value::Null, vec![]),
            ("storage ephemeral local storage request exceeds allocatable",
                pod_requesting("ephemeral-storage=25"), "cpu=2m,memory=2", Value::Null, vec![eph]),
            ("ephemeral local storage is sufficient",
                pod_requesting("ephemeral-storage=10"), "cpu=2m,memory=2,ephemeral-storage=10", Value::Null, vec![]),
        ];
        for (name, p, existing, args, want) in cases {
            let node = node_allocatable("n", ALLOC, &[existing]);
            let s = run_filter(&plugin(args), &p, &node);
            if want.is_empty() {
                assert!(s.is_success(), "{name}: {s}");
            } else {
                assert_eq!(s.code(), Code::Unschedulable, "{name}");
                assert_eq!(s.reasons(), want.as_slice(), "{name}");
            }
        }
    }

    #[test]
    fn insufficient_resources_carry_requested_used_and_capacity() {
        let node = node_allocatable(
            "n",
            "cpu=10m,memory=20,pods=32,example.com/aaa=5",
            &["example.com/aaa=2"],
        );
        let pod = pod_requesting("cpu=1m,example.com/aaa=6 + memory=21");
        let req = plugin(Value::Null).pre_filter_state(&pod);
        let ext_a = insufficient_reason(EXT_A);
        let short = |resource_name, reason, requested, used, capacity| InsufficientResource {
            resource_name,
            reason,
            requested,
            used,
            capacity,
        };
        assert_eq!(
            fits_request(&req, &node),
            [
                short(MEMORY, REASON_INSUFFICIENT_MEMORY, 21, 0, 20),
                short(EXT_A, &ext_a, 6, 2, 5),
            ]
        );
    }

    #[rustfmt::skip]
    #[test]
    fn a_full_node_takes_no_pod_even_without_requests() {
        // upstream's TestNotEnoughRequests: allocatable pods 1 with one pod on the node
        let too_many = REASON_TOO_MANY_PODS;
        let cases: Vec<(&str, Arc<PodInfo>, Vec<&str>)> = vec![
            ("even without specified resources", pod(json!({})), vec![too_many]),
            ("even if both resources fit", pod_requesting("cpu=1m,memory=1"), vec![too_many]),
            ("even for equal edge case", pod_requesting("cpu=5m,memory=1"), vec![too_many]),
            ("with the other short resources after it", pod_requesting("cpu=6m,memory=1"),
                vec![too_many, REASON_INSUFFICIENT_CPU]),
        ];
        for (name, p, want) in cases {
            let node = node_allocatable("n", "cpu=10m,memory=20,pods=1", &["cpu=5m,memory=19"]);
            let s = run_filter(&plugin(Value::Null), &p, &node);
            assert_eq!(s.code(), Code::Unschedulable, "{name}");
            assert_eq!(s.reasons(), want.as_slice(), "{name}");
        }
    }

    #[test]
    fn filter_without_pre_filter_is_an_error() {
        let node = node_allocatable("n", "pods=1", &[]);
        let s = plugin(Value::Null).filter(&CycleState::new(), &pod(json!({})), &node);
        assert_eq!(s.code(), Code::Error);
        assert_eq!(
            s.message(),
            r#"error reading "PreFilterNodeResourcesFit" from cycleState: not found"#
        );
    }

    #[rustfmt::skip]
    #[test]
    fn scoring_strategies_rank_nodes_like_upstream() {
        // upstream's TestFitScore; "cpu=4000" is 4000 cores
        let nodes = [
            node_allocatable("node1", "cpu=4000,memory=10000", &["cpu=2000,memory=4000"]),
            node_allocatable("node2", "cpu=6000,memory=10000", &["cpu=1000,memory=2000"]),
        ];
        let refs: Vec<&NodeInfo> = nodes.iter().collect();
        let (big, small) = ("cpu=3000,memory=5000", "cpu=1000,memory=2000");
        let ratio = |shape: Value| json!({"scoringStrategy": {"type": REQUESTED_TO_CAPACITY_RATIO,
            "resources": [{"name": "cpu", "weight": 1}, {"name": "memory", "weight": 1}],
            "requestedToCapacityRatio": {"shape": shape}}});
        let cases = [
            ("RequestedToCapacityRatio case1", big,
                ratio(json!([{"utilization": 0, "score": 10}, {"utilization": 100, "score": 0}])), [10, 32]),
            ("RequestedToCapacityRatio case2", big,
                ratio(json!([{"utilization": 0, "score": 0}, {"utilization": 100, "score": 10}])), [95, 68]),
            ("MostAllocated", small, json!({"scoringStrategy": {"type": MOST_ALLOCATED}}), [67, 36]),
            ("LeastAllocated", small, json!({"scoringStrategy": {"type": LEAST_ALLOCATED}}), [32, 63]),
            ("default strategy is LeastAllocated", small, Value::Null, [32, 63]),
        ];
        for (name, pod, args, want) in cases {
            let (p, pod) = (plugin(args), pod_requesting(pod));
            for run_pre_score in [true, false] {
                let mut state = CycleState::new();
                if run_pre_score {
                    assert!(p.pre_score(&mut state, &pod, &refs, &Snapshot::default()).is_success());
                }
                let got = nodes.iter().map(|n| {
                    let (v, s) = p.score(&state, &pod, n);
                    assert!(s.is_success(), "{name}: {s}");
                    v
                });
                assert_eq!(got.collect::<Vec<_>>(), want, "{name}, PreScore run: {run_pre_score}");
            }
        }
    }

    #[test]
    fn score_without_resources_is_an_error() {
        let p = NodeResourcesFit {
            ignored_resources: HashSet::new(),
            ignored_resource_groups: HashSet::new(),
            allocation: ResourceAllocation::new(&[], false),
            strategy: Strategy::LeastAllocated,
        };
        let node = node_allocatable("n", "cpu=1", &[]);
        let (v, s) = p.score(&CycleState::new(), &pod(json!({})), &node);
        assert_eq!(
            (v, s.code(), s.message().as_str()),
            (0, Code::Error, "resources not found")
        );
    }

    #[rustfmt::skip]
    #[test]
    fn args_default_and_validate_like_upstream() {
        let defaults = NodeResourcesFitArgs::default();
        let s = defaults.scoring_strategy.as_ref().expect("defaulted");
        assert_eq!((s.type_.as_str(), &s.resources), (LEAST_ALLOCATED, &super::super::resource_scoring::default_resources()));

        let parsed = |v: Value| -> Result<NodeResourcesFitArgs, String> {
            let mut a: NodeResourcesFitArgs = parse_args(NAME, &v)?;
            a.set_defaults();
            a.validate().map(|_| a)
        };
        let a = parsed(json!({"apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "NodeResourcesFitArgs",
            "scoringStrategy": {"type": "MostAllocated", "resources": [{"name": "cpu"}, {"name": "example.com/gpu", "weight": 5}]}}))
            .expect("valid");
        assert_eq!(a.scoring_strategy.expect("set").resources,
            vec![ResourceSpec::new("cpu", 1), ResourceSpec::new("example.com/gpu", 5)]);
        let a = parsed(json!({"scoringStrategy": {"type": "MostAllocated"}})).expect("valid");
        assert_eq!(a.scoring_strategy.expect("set").resources.len(), 2);

        let cases = [
            (json!({"scoringStrategy": {"resources": [{"name": "cpu"}]}}),
                r#"scoringStrategy.type: Unsupported value: "": supported values: "LeastAllocated", "MostAllocated", "RequestedToCapacityRatio""#),
            (json!({"scoringStrategy": {"type": "LeastAllocated", "resources": [{"name": "memory", "weight": -1}, {"name": "cpu", "weight": 101}]}}),
                "[scoringStrategy.resources[0].weight: Invalid value: -1: resource weight of memory not in valid range (0, 100], \
                 scoringStrategy.resources[1].weight: Invalid value: 101: resource weight of cpu not in valid range (0, 100]]"),
            (json!({"scoringStrategy": {"type": "RequestedToCapacityRatio"}}),
                "scoringStrategy.requestedToCapacityRatio: Required value: must be specified when type is RequestedToCapacityRatio"),
            (json!({"scoringStrategy": {"type": "RequestedToCapacityRatio", "requestedToCapacityRatio": {"shape": [{"utilization": 0, "score": 11}]}}}),
                "scoringStrategy.shape[0].score: Invalid value: 11: not in valid range [0, 10]"),
            (json!({"ignoredResourceGroups": ["example.com/aaa"]}),
                r#"ignoredResourceGroups[0]: Invalid value: "example.com/aaa": resource group name can't contain '/'"#),
        ];
        for (args, want) in cases {
            assert_eq!(parsed(args.clone()).unwrap_err(), want, "{args}");
        }
        let err = parsed(json!({"ignoredResources": ["-bad"]})).unwrap_err();
        assert!(err.starts_with(r#"ignoredResources[0]: Invalid value: "-bad": name part must consist of"#), "{err}");
        let err = parsed(json!({"scoringStrategy": {"type": "MostAllocated", "shape": []}})).unwrap_err();
        assert!(err.contains("unknown field `shape`"), "{err}");
        assert!(new(&json!({"scoringStrategy": {"type": "Spread"}}), &Handle::default()).is_err());
        assert!(new(&Value::Null, &Handle::default()).is_ok());
    }
}
