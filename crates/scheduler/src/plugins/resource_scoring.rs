//! What NodeResourcesFit's scoring strategies and NodeResourcesBalancedAllocation share, as
//! upstream's `resource_allocation.go`, `least_allocated.go`, `most_allocated.go`,
//! `requested_to_capacity_ratio.go` and `helper/shape_score.go`: the `resources` list of the
//! plugins' args, how a node's allocatable and requested amount of each listed resource is read,
//! the three scoring strategies, and the args validation both plugins use.
//!
//! Upstream's rules, kept exactly:
//! - the pod's request of each listed resource is computed once (PreScore); NodeResourcesFit
//!   counts CPU and memory with the scoring defaults for containers that set none (100m,
//!   200Mi) against the node's `NonZeroRequested`, BalancedAllocation counts plain requests
//!   against the node's `Requested`; ephemeral storage and other resources always use plain
//!   requests;
//! - a resource other than CPU, memory and ephemeral storage that the pod does not request, or
//!   that the node does not have, is left out of the node's score altogether;
//! - LeastAllocated and MostAllocated are weighted means truncated to an integer;
//!   RequestedToCapacityRatio interpolates the configured shape (scores 0..=10, scaled by 10 to
//!   0..=100) at the integer utilization percentage, counts only resources that score above
//!   zero, and rounds the weighted mean.

use rkube_api::field_error::{FieldError, FieldPath};
use serde::{Deserialize, Serialize};

use crate::framework::types::{CPU, EPHEMERAL_STORAGE, MEMORY};
use crate::framework::{NodeInfo, Resource, MAX_NODE_SCORE};

/// The highest score a `shape` point may give (upstream's `MaxCustomPriorityScore`); shape
/// scores are multiplied by `MAX_NODE_SCORE / MAX_CUSTOM_PRIORITY_SCORE`.
pub const MAX_CUSTOM_PRIORITY_SCORE: i64 = 10;
/// Utilization is a percentage.
pub const MAX_UTILIZATION: i64 = 100;

/// A resource to score and its weight (upstream's `ResourceSpec`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceSpec {
    /// The resource name: `cpu`, `memory`, `ephemeral-storage` or an extended resource.
    #[serde(default)]
    pub name: String,
    /// Its weight; 0 (unset) defaults to 1.
    #[serde(default)]
    pub weight: i64,
}

impl ResourceSpec {
    /// A resource with a weight.
    pub fn new(name: &str, weight: i64) -> Self {
        ResourceSpec {
            name: name.to_string(),
            weight,
        }
    }
}

/// Upstream's default `resources`: CPU and memory, weight 1 each.
pub fn default_resources() -> Vec<ResourceSpec> {
    vec![ResourceSpec::new(CPU, 1), ResourceSpec::new(MEMORY, 1)]
}

/// Upstream's defaulting of a `resources` list: empty means the defaults, and a weight left at
/// 0 becomes 1.
pub fn default_weights(resources: &mut Vec<ResourceSpec>) {
    if resources.is_empty() {
        *resources = default_resources();
    }
    for r in resources.iter_mut() {
        if r.weight == 0 {
            r.weight = 1;
        }
    }
}

/// A point of RequestedToCapacityRatio's scoring function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UtilizationShapePoint {
    /// Utilization percentage, 0..=100.
    #[serde(default)]
    pub utilization: i32,
    /// Score at that utilization, 0..=10.
    #[serde(default)]
    pub score: i32,
}

/// A resource the scorers read, resolved once from its name so that Score does no string
/// matching for the common resources.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScoredResource {
    /// `cpu`, in millicores.
    Cpu,
    /// `memory`, in bytes.
    Memory,
    /// `ephemeral-storage`, in bytes.
    EphemeralStorage,
    /// Anything else: extended resources, hugepages.
    Other(String),
}

impl ScoredResource {
    /// The resource called `name`.
    pub fn new(name: &str) -> Self {
        match name {
            CPU => ScoredResource::Cpu,
            MEMORY => ScoredResource::Memory,
            EPHEMERAL_STORAGE => ScoredResource::EphemeralStorage,
            other => ScoredResource::Other(other.to_string()),
        }
    }

    /// The amount of this resource in `r`.
    pub fn amount(&self, r: &Resource) -> i64 {
        match self {
            ScoredResource::Cpu => r.milli_cpu,
            ScoredResource::Memory => r.memory,
            ScoredResource::EphemeralStorage => r.ephemeral_storage,
            ScoredResource::Other(name) => r.scalar.get(name).copied().unwrap_or(0),
        }
    }
}

/// The listed resources with their weights and which of the node's sums they are read
/// against (upstream's `resourceAllocationScorer` without its scoring function).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceAllocation {
    resources: Vec<(ScoredResource, i64)>,
    use_requested: bool,
}

impl ResourceAllocation {
    /// `use_requested` reads CPU and memory from the node's plain `requested` (and the pod's
    /// plain requests); otherwise both include the scoring defaults for containers without
    /// requests.
    pub fn new(resources: &[ResourceSpec], use_requested: bool) -> Self {
        ResourceAllocation {
            resources: resources
                .iter()
                .map(|r| (ScoredResource::new(&r.name), r.weight))
                .collect(),
            use_requested,
        }
    }

    /// The listed resources and weights, in order.
    pub fn resources(&self) -> &[(ScoredResource, i64)] {
        &self.resources
    }

    /// The pod's request of each listed resource, in order (upstream's
    /// `calculatePodResourceRequestList`).
    pub fn pod_requests(&self, pod: &crate::framework::PodInfo) -> Vec<i64> {
        let r = if self.use_requested {
            &pod.requests
        } else {
            &pod.non_zero_requests
        };
        self.resources
            .iter()
            .map(|(res, _)| res.amount(r))
            .collect()
    }

    /// The node's allocatable amount of `resource` and what it would have requested with the
    /// pod on it; `(0, 0)` leaves the resource out of the score (upstream's
    /// `calculateResourceAllocatableRequest`).
    pub fn allocatable_requested(
        &self,
        resource: &ScoredResource,
        node: &NodeInfo,
        pod_request: i64,
    ) -> (i64, i64) {
        let counted = if self.use_requested {
            &node.requested
        } else {
            &node.non_zero_requested
        };
        match resource {
            ScoredResource::Cpu => (node.allocatable.milli_cpu, counted.milli_cpu + pod_request),
            ScoredResource::Memory => (node.allocatable.memory, counted.memory + pod_request),
            ScoredResource::EphemeralStorage => (
                node.allocatable.ephemeral_storage,
                node.requested.ephemeral_storage + pod_request,
            ),
            // A resource the pod does not ask for says nothing about how well it fits.
            ScoredResource::Other(_) if pod_request == 0 => (0, 0),
            ScoredResource::Other(name) => match node.allocatable.scalar.get(name) {
                Some(alloc) => (
                    *alloc,
                    node.requested.scalar.get(name).copied().unwrap_or(0) + pod_request,
                ),
                None => (0, 0),
            },
        }
    }
}

/// Upstream's `FunctionShape` turned into the broken linear function it describes, with the
/// scores already scaled to 0..=100.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokenLinearFunction {
    points: Vec<(i64, i64)>,
}

impl BrokenLinearFunction {
    /// From `(utilization, score)` points with increasing utilization, scores as given.
    pub fn new(points: Vec<(i64, i64)>) -> Self {
        BrokenLinearFunction { points }
    }

    /// From the args' shape: scores are scaled from 0..=10 to 0..=100.
    pub fn from_shape(shape: &[UtilizationShapePoint]) -> Self {
        let scale = MAX_NODE_SCORE / MAX_CUSTOM_PRIORITY_SCORE;
        BrokenLinearFunction::new(
            shape
                .iter()
                .map(|p| (i64::from(p.utilization), i64::from(p.score) * scale))
                .collect(),
        )
    }

    /// The value at `p`: the first point's score below it, the last point's above it, linear
    /// (integer, truncating) in between.
    pub fn eval(&self, p: i64) -> i64 {
        for (i, &(u, s)) in self.points.iter().enumerate() {
            if p <= u {
                if i == 0 {
                    return s;
                }
                let (pu, ps) = self.points[i - 1];
                if u == pu {
                    return s;
                }
                return ps + (s - ps) * (p - pu) / (u - pu);
            }
        }
        self.points.last().map_or(0, |&(_, s)| s)
    }
}

/// NodeResourcesFit's `scoringStrategy.type`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Favours nodes with more unrequested resources (the default).
    LeastAllocated,
    /// Favours nodes with fewer unrequested resources (bin packing).
    MostAllocated,
    /// Scores utilization through a configured function.
    RequestedToCapacityRatio(BrokenLinearFunction),
}

impl Strategy {
    /// The node's score for a pod requesting `pod_requests` (one per listed resource).
    pub fn score(&self, alloc: &ResourceAllocation, node: &NodeInfo, pod_requests: &[i64]) -> i64 {
        let mut node_score = 0i64;
        let mut weight_sum = 0i64;
        for (i, (resource, weight)) in alloc.resources.iter().enumerate() {
            let pod_request = pod_requests.get(i).copied().unwrap_or(0);
            let (allocatable, requested) = alloc.allocatable_requested(resource, node, pod_request);
            if allocatable == 0 {
                continue;
            }
            let resource_score = match self {
                Strategy::LeastAllocated => least_requested_score(requested, allocatable),
                Strategy::MostAllocated => most_requested_score(requested, allocatable),
                Strategy::RequestedToCapacityRatio(f) => {
                    let s = ratio_score(f, requested, allocatable);
                    // upstream counts only resources that score above zero
                    if s <= 0 {
                        continue;
                    }
                    s
                }
            };
            node_score += resource_score * weight;
            weight_sum += weight;
        }
        if weight_sum == 0 {
            return 0;
        }
        match self {
            Strategy::RequestedToCapacityRatio(_) => {
                (node_score as f64 / weight_sum as f64).round() as i64
            }
            _ => node_score / weight_sum,
        }
    }
}

/// `(capacity - requested) * 100 / capacity`, 0 when over capacity.
pub fn least_requested_score(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 || requested > capacity {
        return 0;
    }
    scale(capacity - requested, capacity)
}

/// `requested * 100 / capacity`, capped at 100 (pods without requests count defaults, so the
/// sum may exceed the capacity).
pub fn most_requested_score(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 {
        return 0;
    }
    scale(requested.min(capacity), capacity)
}

fn ratio_score(f: &BrokenLinearFunction, requested: i64, capacity: i64) -> i64 {
    if capacity == 0 || requested > capacity {
        return f.eval(MAX_UTILIZATION);
    }
    f.eval(scale(requested, capacity))
}

/// `amount * 100 / capacity` in 128 bits: byte counts times 100 must not overflow.
fn scale(amount: i64, capacity: i64) -> i64 {
    (i128::from(amount) * i128::from(MAX_NODE_SCORE) / i128::from(capacity)) as i64
}

/// Upstream's `validateResources`: every weight in 1..=100.
pub fn validate_resources(resources: &[ResourceSpec], path: &FieldPath) -> Vec<FieldError> {
    resources
        .iter()
        .enumerate()
        .filter(|(_, r)| r.weight <= 0 || r.weight > 100)
        .map(|(i, r)| {
            FieldError::invalid(
                &path.index(i).child("weight"),
                r.weight,
                &format!("resource weight of {} not in valid range (0, 100]", r.name),
            )
        })
        .collect()
}

/// Upstream's `validateFunctionShape`: at least one point, utilizations strictly increasing
/// and in 0..=100, scores in 0..=10.
pub fn validate_function_shape(
    shape: &[UtilizationShapePoint],
    path: &FieldPath,
) -> Vec<FieldError> {
    if shape.is_empty() {
        return vec![FieldError::required(
            path,
            "at least one point must be specified",
        )];
    }
    let mut errs = Vec::new();
    if let Some(i) = (1..shape.len()).find(|&i| shape[i - 1].utilization >= shape[i].utilization) {
        errs.push(FieldError::invalid(
            &path.index(i).child("utilization"),
            shape[i].utilization,
            "values must be sorted in increasing order",
        ));
    }
    for (i, p) in shape.iter().enumerate() {
        if !(0..=MAX_UTILIZATION).contains(&i64::from(p.utilization)) {
            errs.push(FieldError::invalid(
                &path.index(i).child("utilization"),
                p.utilization,
                &format!("not in valid range [0, {MAX_UTILIZATION}]"),
            ));
        }
        if !(0..=MAX_CUSTOM_PRIORITY_SCORE).contains(&i64::from(p.score)) {
            errs.push(FieldError::invalid(
                &path.index(i).child("score"),
                p.score,
                &format!("not in valid range [0, {MAX_CUSTOM_PRIORITY_SCORE}]"),
            ));
        }
    }
    errs
}

/// Upstream's `ErrorList.ToAggregate().Error()`: one error as itself, several as `[a, b]`
/// with repeats dropped; `Ok` when there are none.
pub fn aggregate(errs: &[FieldError]) -> Result<(), String> {
    let mut seen: Vec<String> = Vec::new();
    for e in errs {
        let m = e.to_string();
        if !seen.contains(&m) {
            seen.push(m);
        }
    }
    match seen.len() {
        0 => Ok(()),
        1 => Err(seen.remove(0)),
        _ => Err(format!("[{}]", seen.join(", "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{node_allocatable as node, pod_requesting};

    /// `"memory:2,cpu:1"` as a resources list.
    fn specs(s: &str) -> Vec<ResourceSpec> {
        s.split(',')
            .map(|r| {
                let (name, w) = r.split_once(':').expect("name:weight");
                ResourceSpec::new(name, w.parse().expect("weight"))
            })
            .collect()
    }

    fn shape(points: &[(i32, i32)]) -> Vec<UtilizationShapePoint> {
        points
            .iter()
            .map(|&(utilization, score)| UtilizationShapePoint { utilization, score })
            .collect()
    }

    fn ratio(points: &[(i32, i32)]) -> Strategy {
        Strategy::RequestedToCapacityRatio(BrokenLinearFunction::from_shape(&shape(points)))
    }

    fn scores(strategy: &Strategy, resources: &str, pod: &str, nodes: &[NodeInfo]) -> Vec<i64> {
        let alloc = ResourceAllocation::new(&specs(resources), false);
        let req = alloc.pod_requests(&pod_requesting(pod));
        nodes
            .iter()
            .map(|n| strategy.score(&alloc, n, &req))
            .collect()
    }

    #[rustfmt::skip]
    #[test]
    #[allow(clippy::type_complexity)] // the cases' table
    fn strategies_score_nodes_like_upstream() {
        // upstream's least_allocated_test, most_allocated_test and
        // requested_to_capacity_ratio_test; "cpu=4000" is 4000 cores
        const C4: &str = "cpu=4000,memory=10000";
        const C6: &str = "cpu=6000,memory=10000";
        const C10: &str = "cpu=10000,memory=20000";
        const C6X: &str = "cpu=6000,memory=10000,abc.com/xyz=4";
        const TWO: &str = "cpu=1000,memory=2000 + cpu=2000,memory=3000";
        const CPU3: &str = "cpu=3000,memory=0";
        const CPU3MEM5: &str = "cpu=3000,memory=5000";
        const DEF: &str = "cpu:1,memory:1";
        const EXT: &str = "cpu:1,memory:1,abc.com/xyz:1";
        const EXT_FIRST: &str = "abc.com/xyz:2,cpu:1,memory:1";
        let (least, most, r10) = (Strategy::LeastAllocated, Strategy::MostAllocated, ratio(&[(0, 10), (100, 0)]));
        let cases: Vec<(&str, &Strategy, &str, &str, [NodeInfo; 2], [i64; 2])> = vec![
            ("least: nothing scheduled, nothing requested", &least, DEF, "",
                [node("node1", C4, &[]), node("node2", C4, &[])], [100, 100]),
            ("least: resources requested, differently sized nodes", &least, DEF, TWO,
                [node("node1", C4, &[]), node("node2", C6, &[])], [37, 50]),
            ("least: pods without containers scheduled", &least, DEF, "",
                [node("node1", C4, &["", ""]), node("node2", C4, &["", ""])], [100, 100]),
            ("least: no resources requested, pods scheduled with resources", &least, DEF, "",
                [node("node1", C10, &[CPU3, CPU3]), node("node2", C10, &[CPU3, CPU3MEM5])], [70, 57]),
            ("least: resources requested, pods scheduled with resources", &least, DEF, TWO,
                [node("node1", C10, &[CPU3]), node("node2", C10, &[CPU3MEM5])], [57, 45]),
            ("least: differently sized nodes", &least, DEF, TWO,
                [node("node1", C10, &[CPU3]), node("node2", "cpu=10000,memory=50000", &[CPU3MEM5])], [57, 60]),
            ("least: requested resources exceed node capacity", &least, DEF, CPU3,
                [node("node1", C4, &[CPU3]), node("node2", C4, &[CPU3MEM5])], [50, 25]),
            ("least: zero node resources", &least, DEF, "",
                [node("node1", "", &[CPU3]), node("node2", "", &[CPU3MEM5])], [0, 0]),
            ("least: different weights on cpu and memory", &least, "memory:2,cpu:1", TWO,
                [node("node1", C4, &[]), node("node2", C6, &[])], [41, 50]),
            ("least: bypass extended resource the pod does not request", &least, EXT, TWO,
                [node("node1", C6, &[]), node("node2", C6X, &[])], [50, 50]),
            ("least: honor extended resource the pod requests", &least, EXT, "cpu=3000,memory=5000,abc.com/xyz=2",
                [node("node1", C6X, &[]), node("node2", "cpu=6000,memory=10000,abc.com/xyz=10", &[])], [50, 60]),
            ("least: the node doesn't have the resource", &least, EXT_FIRST, "cpu=3000,memory=4000",
                [node("node1", C6, &[]), node("node2", C6X, &[])], [55, 55]),
            ("most: nothing scheduled, nothing requested", &most, DEF, "",
                [node("node1", C4, &[]), node("node2", C4, &[])], [0, 0]),
            ("most: resources requested, differently sized nodes", &most, DEF, TWO,
                [node("node1", C4, &[]), node("node2", C6, &[])], [62, 50]),
            ("most: no resources requested, pods scheduled with resources", &most, DEF, "",
                [node("node1", C10, &[CPU3, CPU3]), node("node2", C10, &[CPU3, CPU3MEM5])], [30, 42]),
            ("most: resources requested, pods scheduled with resources", &most, DEF, TWO,
                [node("node1", C10, &[CPU3]), node("node2", C10, &[CPU3MEM5])], [42, 55]),
            ("most: resources requested equal node capacity", &most, DEF, "cpu=2000,memory=4000 + cpu=3000,memory=5000",
                [node("node1", "cpu=5000,memory=10000", &[]), node("node2", "cpu=10000,memory=9000", &[])], [95, 75]),
            ("most: different weights on cpu and memory", &most, "memory:2,cpu:1", TWO,
                [node("node1", C4, &[]), node("node2", C6, &[])], [58, 50]),
            ("most: containers without requests count the scoring defaults", &most, DEF, "{}",
                [node("node1", "cpu=250m,memory=1000Mi", &["{}", "{}"]), node("node2", "cpu=250m,memory=1000Mi", &[])], [80, 30]),
            ("most: bypass extended resource the pod does not request", &most, EXT, TWO,
                [node("node1", C6, &[]), node("node2", C6X, &[])], [50, 50]),
            ("most: honor extended resource the pod requests", &most, EXT, "cpu=3000,memory=5000,abc.com/xyz=2",
                [node("node1", C6X, &[]), node("node2", "cpu=6000,memory=10000,abc.com/xyz=10", &[])], [50, 40]),
            ("most: the node doesn't have the resource", &most, EXT_FIRST, "cpu=3000,memory=4000",
                [node("node1", C6, &[]), node("node2", C6X, &[])], [45, 45]),
            ("ratio: nothing scheduled, nothing requested", &r10, DEF, "",
                [node("node1", C4, &["", ""]), node("node2", C4, &[])], [100, 100]),
            ("ratio: resources requested, differently sized nodes", &r10, DEF, TWO,
                [node("node1", C4, &["", ""]), node("node2", C6, &[])], [38, 50]),
            ("ratio: no resources requested, pods scheduled with resources", &r10, DEF, "",
                [node("node1", C4, &[CPU3MEM5]), node("node2", C6, &[CPU3MEM5])], [38, 50]),
        ];
        for (name, strategy, resources, pod, nodes, want) in cases {
            assert_eq!(scores(strategy, resources, pod, &nodes), want, "{name}");
        }
    }

    #[rustfmt::skip]
    #[test]
    #[allow(clippy::type_complexity)] // the cases' table
    fn ratio_bin_packs_extended_resources_like_upstream() {
        // upstream's TestResourceBinPackingSingleExtended and ...MultipleExtended: shape
        // (0, 0) to (100, 1), i.e. 0 to 10 after scaling
        const N8: &str = "cpu=4,memory=10000Mi,intel.com/foo=8";
        const N4: &str = "cpu=4,memory=10000Mi,intel.com/foo=4";
        const N84: &str = "cpu=4,memory=10000Mi,intel.com/foo=8,intel.com/bar=4";
        const N48: &str = "cpu=4,memory=10000Mi,intel.com/foo=4,intel.com/bar=8";
        const SINGLE: &str = "intel.com/foo:1";
        const MULTI: &str = "intel.com/foo:3,intel.com/bar:5";
        let f = ratio(&[(0, 0), (100, 1)]);
        let cases: Vec<(&str, &str, &str, [NodeInfo; 2], [i64; 2])> = vec![
            ("single: nothing requested", SINGLE, "",
                [node("node1", N8, &[]), node("node2", N4, &[])], [0, 0]),
            ("single: requested, less used", SINGLE, "intel.com/foo=2",
                [node("node1", N8, &[""]), node("node2", N4, &[])], [2, 5]),
            ("single: requested, node with a pod using it", SINGLE, "intel.com/foo=2",
                [node("node1", N8, &[]), node("node2", N4, &["intel.com/foo=2"])], [2, 10]),
            ("single: requested more", SINGLE, "intel.com/foo=4",
                [node("node1", N8, &[]), node("node2", N4, &[])], [5, 10]),
            ("multiple: nothing requested", MULTI, "",
                [node("node1", N84, &[]), node("node2", N48, &[])], [0, 0]),
            ("multiple: requested, less used", MULTI, "intel.com/foo=2,intel.com/bar=2",
                [node("node1", N84, &[]), node("node2", N48, &[])], [4, 3]),
            ("multiple: requested, node with a pod using them", MULTI, "intel.com/foo=2,intel.com/bar=2",
                [node("node1", N84, &[]), node("node2", N48, &["intel.com/foo=4,intel.com/bar=2"])], [4, 7]),
            ("multiple: requested more", MULTI, "intel.com/foo=4,intel.com/bar=2",
                [node("node1", N84, &[]), node("node2", N48, &[])], [5, 5]),
        ];
        for (name, resources, pod, nodes, want) in cases {
            assert_eq!(scores(&f, resources, pod, &nodes), want, "{name}");
        }
    }

    #[rustfmt::skip]
    #[test]
    #[allow(clippy::type_complexity)] // the cases' table
    fn broken_linear_function_interpolates_like_upstream() {
        // upstream's TestBrokenLinearFunction: (points, [(p, want)])
        let cases: [(&[(i64, i64)], &[(i64, i64)]); 3] = [
            (&[(10, 1), (90, 9)],
                &[(-10, 1), (0, 1), (9, 1), (10, 1), (15, 1), (19, 1), (20, 2), (89, 8), (90, 9), (99, 9), (100, 9), (110, 9)]),
            (&[(0, 2), (40, 10), (100, 0)],
                &[(-10, 2), (0, 2), (20, 6), (30, 8), (40, 10), (70, 5), (100, 0), (110, 0)]),
            (&[(0, 2), (40, 2), (100, 2)],
                &[(-10, 2), (0, 2), (20, 2), (30, 2), (40, 2), (70, 2), (100, 2), (110, 2)]),
        ];
        for (ci, (points, assertions)) in cases.into_iter().enumerate() {
            let f = BrokenLinearFunction::new(points.to_vec());
            for &(p, want) in assertions {
                assert_eq!(f.eval(p), want, "case {ci}, p={p}");
            }
        }
    }

    #[test]
    fn shape_scores_scale_to_node_scores() {
        let f = BrokenLinearFunction::from_shape(&shape(&[(0, 10), (100, 0)]));
        assert_eq!((f.eval(0), f.eval(75), f.eval(100)), (100, 25, 0));
        // over capacity scores as full
        assert_eq!(ratio_score(&f, 11, 10), 0);
    }

    #[test]
    fn per_resource_scores_match_upstream() {
        // (requested, capacity, least, most); byte counts near the top of i64 do not overflow
        let cases = [
            (0, 4000, 100, 0),
            (3000, 4000, 25, 75),
            (5000, 4000, 0, 100),
            (4000, 4000, 0, 100),
            (1, 0, 0, 0),
            (i64::MAX / 2, i64::MAX, 50, 49),
        ];
        for (req, cap, least, most) in cases {
            assert_eq!(least_requested_score(req, cap), least, "least {req}/{cap}");
            assert_eq!(most_requested_score(req, cap), most, "most {req}/{cap}");
        }
    }

    #[rustfmt::skip]
    #[test]
    fn validation_reports_upstream_messages() {
        let p = FieldPath::new("scoringStrategy");
        let errs = validate_resources(&specs("memory:-1,cpu:1,x.com/y:101"), &p.child("resources"));
        assert_eq!(
            aggregate(&errs).unwrap_err(),
            "[scoringStrategy.resources[0].weight: Invalid value: -1: resource weight of memory not in valid range (0, 100], \
             scoringStrategy.resources[2].weight: Invalid value: 101: resource weight of x.com/y not in valid range (0, 100]]"
        );
        let cases: [(&[(i32, i32)], &str); 5] = [
            (&[(0, 10), (100, 0)], ""),
            (&[], "scoringStrategy.shape: Required value: at least one point must be specified"),
            (&[(50, 1), (50, 2), (10, 3)],
                "scoringStrategy.shape[1].utilization: Invalid value: 50: values must be sorted in increasing order"),
            (&[(-1, 1), (101, 11)],
                "[scoringStrategy.shape[0].utilization: Invalid value: -1: not in valid range [0, 100], \
                 scoringStrategy.shape[1].utilization: Invalid value: 101: not in valid range [0, 100], \
                 scoringStrategy.shape[1].score: Invalid value: 11: not in valid range [0, 10]]"),
            (&[(10, -1)], "scoringStrategy.shape[0].score: Invalid value: -1: not in valid range [0, 10]"),
        ];
        for (points, want) in cases {
            let got = aggregate(&validate_function_shape(&shape(points), &p.child("shape")));
            assert_eq!(got.err().unwrap_or_default(), want, "{points:?}");
        }
    }

    #[test]
    fn defaulting_fills_resources_and_zero_weights() {
        let mut r = Vec::new();
        default_weights(&mut r);
        assert_eq!(r, default_resources());
        let mut r = specs("cpu:0,memory:3");
        default_weights(&mut r);
        assert_eq!(r, specs("cpu:1,memory:3"));
    }
}
