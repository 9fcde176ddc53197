//! ImageLocality: favours nodes that already have the pod's container images, so the pod
//! starts without a long pull, as upstream's `imagelocality` plugin.
//!
//! Each image of the pod's init containers and containers that the node has counts its size,
//! scaled by the share of all nodes that have it (`size * num_nodes / total_nodes`): an image
//! present everywhere says little about where to go, and the scaling keeps pods from piling onto
//! the few nodes that pulled an image first. The sum is clamped to between 23 MB and 1000 MB per
//! container and mapped linearly onto 0..=100 (upstream's `calculatePriority`). Image names are
//! looked up as the runtime reports them, with `:latest` added to a name with neither tag nor
//! digest.
//!
//! Upstream reads the total node count from the snapshot inside Score; here PreScore records it
//! (with the pod's normalised image names) in the cycle state, since Score only sees one node.

use std::borrow::Cow;
use std::sync::Arc;

use crate::framework::{
    CycleState, NodeInfo, Plugin, PodInfo, PreScorePlugin, ScorePlugin, Snapshot, Status,
    MAX_NODE_SCORE,
};
use crate::registry::Handle;

/// The plugin's name.
pub const NAME: &str = "ImageLocality";

const MB: i64 = 1024 * 1024;
/// Below this sum of (scaled) image sizes a node scores 0.
const MIN_THRESHOLD: i64 = 23 * MB;
/// Per container: at or above this times the number of containers a node scores 100.
const MAX_CONTAINER_THRESHOLD: i64 = 1000 * MB;

const PRE_SCORE_KEY: &str = "PreScoreImageLocality";

/// See the module documentation.
#[derive(Debug)]
pub struct ImageLocality;

/// The factory.
pub fn new(_args: &serde_json::Value, _handle: &Handle) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(ImageLocality))
}

/// Upstream's `normalizedImageName`: the name with `:latest` appended when it has no tag or
/// digest (no `:` after the last `/`).
pub fn normalized_image_name(name: &str) -> Cow<'_, str> {
    if name.rfind(':') <= name.rfind('/') {
        Cow::Owned(format!("{name}:latest"))
    } else {
        Cow::Borrowed(name)
    }
}

/// Upstream's `calculatePriority`: `sum` clamped to `[MIN_THRESHOLD, MAX_CONTAINER_THRESHOLD *
/// containers]` and scaled linearly onto 0..=100.
fn calculate_priority(sum: i64, containers: usize) -> i64 {
    let max_threshold = MAX_CONTAINER_THRESHOLD * containers as i64;
    let sum = if sum < MIN_THRESHOLD {
        MIN_THRESHOLD
    } else {
        sum.min(max_threshold)
    };
    MAX_NODE_SCORE * (sum - MIN_THRESHOLD) / (max_threshold - MIN_THRESHOLD)
}

/// What PreScore works out once per pod.
#[derive(Clone, Debug)]
struct PreScoreState {
    /// Normalised image names of the init containers and containers, one per container.
    images: Arc<[String]>,
    /// Nodes in the cluster.
    total_nodes: usize,
}

impl Plugin for ImageLocality {
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

impl PreScorePlugin for ImageLocality {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _nodes: &[&NodeInfo],
        snapshot: &Snapshot,
    ) -> Status {
        let images: Arc<[String]> = pod
            .pod
            .spec
            .iter()
            .flat_map(|s| s.init_containers.iter().flatten().chain(&s.containers))
            .map(|c| normalized_image_name(c.image.as_deref().unwrap_or("")).into_owned())
            .collect();
        state.write(
            PRE_SCORE_KEY,
            PreScoreState {
                images,
                total_nodes: snapshot.len(),
            },
        );
        Status::success()
    }
}

impl ScorePlugin for ImageLocality {
    fn score(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> (i64, Status) {
        let Some(s) = state.read::<PreScoreState>(PRE_SCORE_KEY) else {
            return (
                0,
                Status::error(format!(
                    "reading {PRE_SCORE_KEY:?} from cycleState: not found"
                )),
            );
        };
        let sum: i64 = if s.total_nodes == 0 {
            0
        } else {
            s.images
                .iter()
                .filter_map(|name| node.image_states.get(name))
                .map(|image| {
                    // Upstream's float arithmetic, truncated per image.
                    let spread = image.num_nodes as f64 / s.total_nodes as f64;
                    (image.size as f64 * spread) as i64
                })
                .sum()
        };
        (calculate_priority(sum, s.images.len()), Status::success())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::{json, Value};

    use super::*;
    use crate::framework::types::ImageState;
    use crate::framework::Code;
    use crate::plugins::testing::{node, pod, snapshot};

    /// Nodes with `status.images`, their `image_states` filled as the cache fills them: every
    /// name of an image, with the number of nodes that have an image of that name.
    fn image_nodes(specs: Vec<(&str, Value)>) -> Vec<NodeInfo> {
        let mut nodes: Vec<NodeInfo> = specs
            .into_iter()
            .map(|(name, images)| {
                node(json!({"metadata": {"name": name}, "status": {"images": images}}))
            })
            .collect();
        let mut counts: HashMap<String, usize> = HashMap::new();
        for n in &nodes {
            let mut names: Vec<&String> = node_images(n).map(|(name, _)| name).collect();
            names.sort();
            names.dedup();
            for name in names {
                *counts.entry(name.clone()).or_default() += 1;
            }
        }
        for n in &mut nodes {
            let states: HashMap<String, ImageState> = node_images(n)
                .map(|(name, size)| {
                    (
                        name.clone(),
                        ImageState {
                            size,
                            num_nodes: counts[name],
                        },
                    )
                })
                .collect();
            n.image_states = states;
        }
        nodes
    }

    fn node_images(n: &NodeInfo) -> impl Iterator<Item = (&String, i64)> {
        n.node
            .status
            .iter()
            .flat_map(|s| s.images.iter().flatten())
            .flat_map(|i| {
                let size = i.size_bytes.unwrap_or(0);
                i.names.iter().flatten().map(move |name| (name, size))
            })
    }

    fn image(names: &[&str], mb: i64) -> Value {
        json!({"names": names, "sizeBytes": mb * MB})
    }

    fn containers(images: &[&str]) -> Value {
        let cs: Vec<Value> = images
            .iter()
            .enumerate()
            .map(|(i, img)| json!({"name": format!("c{i}"), "image": img}))
            .collect();
        Value::Array(cs)
    }

    #[test]
    fn nodes_with_large_widespread_images_score_higher() {
        let node_40_300_2000 = json!([
            image(&["gcr.io/40:latest", "gcr.io/40:v1", "gcr.io/40:v1"], 40),
            image(&["gcr.io/300:latest", "gcr.io/300:v1"], 300),
            image(&["gcr.io/2000:latest"], 2000)
        ]);
        let node_250_10 = json!([
            image(&["gcr.io/250:latest"], 250),
            image(&["gcr.io/10:latest", "gcr.io/10:v1"], 10)
        ]);
        let node_600_40_900 = json!([
            image(&["gcr.io/600:latest"], 600),
            image(&["gcr.io/40:latest"], 40),
            image(&["gcr.io/900:latest"], 900)
        ]);
        let node_300_600_900 = json!([
            image(&["gcr.io/300:latest"], 300),
            image(&["gcr.io/600:latest"], 600),
            image(&["gcr.io/900:latest"], 900)
        ]);
        let node_4000_30 = json!([
            image(&["gcr.io/4000:latest"], 4000),
            image(&["gcr.io/30:latest"], 30)
        ]);
        let node_20_30_40 = json!([
            image(&["gcr.io/20:latest"], 20),
            image(&["gcr.io/30:latest"], 30),
            image(&["gcr.io/40:latest"], 40)
        ]);
        let none = json!([]);
        let cases = vec![
            (
                "two images spread on two nodes, prefer the larger image one",
                json!({"containers": containers(&["gcr.io/40", "gcr.io/250"])}),
                vec![
                    ("node1", node_40_300_2000.clone()),
                    ("node2", node_250_10.clone()),
                ],
                vec![0, 5],
            ),
            (
                "two images on one node, prefer this node",
                json!({"containers": containers(&["gcr.io/40", "gcr.io/300"])}),
                vec![
                    ("node1", node_40_300_2000.clone()),
                    ("node2", node_250_10.clone()),
                ],
                vec![7, 0],
            ),
            (
                "if exceed limit, use limit",
                json!({"containers": containers(&["gcr.io/10", "gcr.io/4000"])}),
                vec![
                    ("node1", node_4000_30.clone()),
                    ("node2", node_250_10.clone()),
                ],
                vec![100, 0],
            ),
            (
                "if exceed limit, use limit (with node which has no images present)",
                json!({"containers": containers(&["gcr.io/10", "gcr.io/4000"])}),
                vec![
                    ("node1", node_4000_30.clone()),
                    ("node2", node_250_10),
                    ("node3", none.clone()),
                ],
                vec![66, 0, 0],
            ),
            (
                "pod with multiple large images, node2 is preferred",
                json!({"containers": containers(&["gcr.io/300", "gcr.io/600", "gcr.io/900"])}),
                vec![
                    ("node1", node_600_40_900),
                    ("node2", node_300_600_900),
                    ("node3", none),
                ],
                vec![32, 36, 0],
            ),
            (
                "pod with multiple small images",
                json!({"containers": containers(&["gcr.io/30", "gcr.io/40"])}),
                vec![("node1", node_20_30_40.clone()), ("node2", node_4000_30)],
                vec![1, 0],
            ),
            (
                "init containers' images count",
                json!({"containers": containers(&["gcr.io/30"]),
                       "initContainers": containers(&["gcr.io/300"])}),
                vec![
                    ("node1", node_40_300_2000.clone()),
                    ("node2", node_20_30_40),
                ],
                vec![6, 0],
            ),
            (
                "tagged and digest names are looked up as given",
                json!({"containers": containers(&["gcr.io/300:v1", "gcr.io/2000@sha256:0"])}),
                vec![("node1", node_40_300_2000)],
                vec![14],
            ),
        ];
        for (name, spec, nodes, want) in cases {
            let p = pod(json!({"spec": spec}));
            let nodes = image_nodes(nodes);
            let snap = snapshot(nodes.clone());
            let refs: Vec<&NodeInfo> = nodes.iter().collect();
            let mut state = CycleState::new();
            assert!(ImageLocality
                .pre_score(&mut state, &p, &refs, &snap)
                .is_success());
            let got: Vec<i64> = nodes
                .iter()
                .map(|n| {
                    let (v, s) = ImageLocality.score(&state, &p, n);
                    assert!(s.is_success(), "{name}: {s}");
                    v
                })
                .collect();
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn spread_uses_every_node_in_the_cluster_not_only_the_feasible_ones() {
        // One of two nodes has the image: 1000 MB * 1/2 = 500 MB, 100 * 477 / 977 = 48. Were
        // the spread taken over the one feasible node, the node would score 100.
        let nodes = image_nodes(vec![
            ("a", json!([image(&["big:latest"], 1000)])),
            ("b", json!([])),
        ]);
        let snap = snapshot(nodes.clone());
        let p = pod(json!({"spec": {"containers": containers(&["big"])}}));
        let mut state = CycleState::new();
        assert!(ImageLocality
            .pre_score(&mut state, &p, &[&nodes[0]], &snap)
            .is_success());
        assert_eq!(ImageLocality.score(&state, &p, &nodes[0]).0, 48);
    }

    #[test]
    fn score_without_pre_score_is_an_error() {
        let n = node(json!({"metadata": {"name": "a"}}));
        let (_, s) = ImageLocality.score(&CycleState::new(), &pod(json!({})), &n);
        assert_eq!(s.code(), Code::Error);
    }

    #[test]
    fn image_names_get_latest_only_without_tag_or_digest() {
        let digest = "root@sha256:4813494d137e1631bba301d5acab6e7bb7aa74ce1185d456565ef51d737677b2";
        let cases = [
            ("root", "root:latest"),
            ("gcr.io:5000/root", "gcr.io:5000/root:latest"),
            ("root:tag", "root:tag"),
            (digest, digest),
        ];
        for (input, want) in cases {
            assert_eq!(normalized_image_name(input), want, "{input}");
        }
    }
}
