//! The scheduler's view of the cluster, kept from watch events: the [`Snapshot`] (nodes with
//! their pods) plus the pods it has *assumed* onto nodes whose bindings are still in flight.
//!
//! Assuming is what lets binding be asynchronous: once a pod is placed, its requests count on
//! its node at once, so the next pod is scheduled against the right free space while the bind
//! call is still going. When the watch delivers the bound pod, the assumption is confirmed; if
//! the bind fails, the pod is forgotten and its space freed. Upstream's cache also keeps pods
//! whose node is not known yet; so does this one, and they join the node when it arrives.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};

use crate::framework::types::ImageState;
use crate::framework::{NodeInfo, PodInfo, Snapshot};

/// Where a pod the cache knows sits.
#[derive(Clone, Debug)]
struct PodState {
    node: String,
    assumed: bool,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct Cache {
    snapshot: Snapshot,
    pods: HashMap<String, PodState>,
    /// Pods on nodes the cache has not seen yet, by node.
    orphans: HashMap<String, Vec<Arc<PodInfo>>>,
    /// Every image name, with its size and the nodes that have it.
    images: HashMap<String, (i64, HashSet<String>)>,
}

/// A bound pod's node, `""` when unbound.
fn node_of(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}

/// The images a node reports, by every name, with their sizes.
fn node_images(node: &Node) -> HashMap<String, i64> {
    let mut out = HashMap::new();
    for img in node.status.iter().flat_map(|s| s.images.iter().flatten()) {
        for name in img.names.iter().flatten() {
            out.insert(name.clone(), img.size_bytes.unwrap_or(0));
        }
    }
    out
}

impl Cache {
    /// An empty cache.
    pub fn new() -> Cache {
        Cache::default()
    }

    /// The snapshot scheduling cycles read.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// For the driver's namespace, PDB and workload watches.
    pub fn snapshot_mut(&mut self) -> &mut Snapshot {
        &mut self.snapshot
    }

    /// Whether the pod with `uid` is assumed (placed, binding not yet confirmed).
    pub fn is_assumed(&self, uid: &str) -> bool {
        self.pods.get(uid).is_some_and(|p| p.assumed)
    }

    /// Whether the cache counts the pod with `uid` on a node.
    pub fn contains(&self, uid: &str) -> bool {
        self.pods.contains_key(uid)
    }

    /// Adds or updates a node; returns the node as it was.
    pub fn upsert_node(&mut self, node: Arc<Node>) -> Option<Arc<Node>> {
        let name = node.metadata.name.clone().unwrap_or_default();
        let new_images = node_images(&node);
        let old = match self.snapshot.get_mut(&name) {
            Some(info) => {
                let old = info.node.clone();
                info.set_node(node);
                Some(old)
            }
            None => {
                let mut info = NodeInfo::new(node);
                for p in self.orphans.remove(&name).unwrap_or_default() {
                    info.add_pod(p);
                }
                self.snapshot.upsert(info);
                None
            }
        };
        let old_images = old.as_deref().map(node_images).unwrap_or_default();
        if old_images != new_images {
            self.update_images(&name, &old_images, &new_images);
        }
        old
    }

    /// Removes a node. Its pods stay known (as upstream's cache keeps them until their own
    /// delete events) and rejoin if the node comes back.
    pub fn remove_node(&mut self, name: &str) {
        if let Some(info) = self.snapshot.remove(name) {
            let images = node_images(&info.node);
            self.update_images(name, &images, &HashMap::new());
            if !info.pods.is_empty() {
                self.orphans.insert(name.to_string(), info.pods.clone());
            }
        }
    }

    /// Names of every node.
    pub fn node_names(&self) -> Vec<String> {
        self.snapshot
            .nodes()
            .iter()
            .map(|n| n.name.clone())
            .collect()
    }

    fn update_images(
        &mut self,
        node: &str,
        old: &HashMap<String, i64>,
        new: &HashMap<String, i64>,
    ) {
        let mut changed: HashSet<String> = HashSet::new();
        for name in old.keys() {
            if !new.contains_key(name) {
                if let Some((_, nodes)) = self.images.get_mut(name) {
                    nodes.remove(node);
                    if nodes.is_empty() {
                        self.images.remove(name);
                    }
                }
                changed.insert(name.clone());
            }
        }
        for (name, size) in new {
            let e = self
                .images
                .entry(name.clone())
                .or_insert_with(|| (*size, HashSet::new()));
            e.0 = *size;
            e.1.insert(node.to_string());
            // An image the node already had at this size changes no node's view of it.
            if old.get(name) != Some(size) {
                changed.insert(name.clone());
            }
        }
        // refresh the per-node view of every node holding a changed image
        let mut affected: HashSet<String> = HashSet::new();
        for name in &changed {
            if let Some((_, nodes)) = self.images.get(name) {
                affected.extend(nodes.iter().cloned());
            }
        }
        affected.insert(node.to_string());
        for n in affected {
            let Some(info) = self.snapshot.get(&n) else {
                continue;
            };
            let names = node_images(&info.node);
            let states: HashMap<String, ImageState> = names
                .into_keys()
                .filter_map(|img| {
                    let (size, nodes) = self.images.get(&img)?;
                    Some((
                        img,
                        ImageState {
                            size: *size,
                            num_nodes: nodes.len(),
                        },
                    ))
                })
                .collect();
            if let Some(info) = self.snapshot.get_mut(&n) {
                info.image_states = states;
            }
        }
    }

    fn place(&mut self, pod: Arc<PodInfo>, assumed: bool) {
        let node = pod.node_name().to_string();
        self.pods.insert(
            pod.uid.clone(),
            PodState {
                node: node.clone(),
                assumed,
            },
        );
        match self.snapshot.get_mut(&node) {
            Some(info) => info.add_pod(pod),
            None => self.orphans.entry(node).or_default().push(pod),
        }
    }

    fn unplace(&mut self, uid: &str) -> Option<PodState> {
        let st = self.pods.remove(uid)?;
        match self.snapshot.get_mut(&st.node) {
            Some(info) => {
                info.remove_pod(uid);
            }
            None => {
                if let Some(list) = self.orphans.get_mut(&st.node) {
                    list.retain(|p| p.uid != uid);
                    if list.is_empty() {
                        self.orphans.remove(&st.node);
                    }
                }
            }
        }
        Some(st)
    }

    /// Counts `pod` (whose `spec.nodeName` is set to the chosen node) on its node before the
    /// bind is confirmed.
    pub fn assume(&mut self, pod: Arc<PodInfo>) {
        self.unplace(&pod.uid);
        self.place(pod, true);
    }

    /// Drops an assumed pod whose binding failed. A pod already confirmed by the watch stays.
    pub fn forget(&mut self, uid: &str) {
        if self.is_assumed(uid) {
            self.unplace(uid);
        }
    }

    /// A bound pod from the watch (added or updated): confirms an assumption or replaces what
    /// was known.
    pub fn add_or_update_pod(&mut self, pod: Arc<PodInfo>) {
        if node_of(&pod.pod).is_empty() {
            return;
        }
        self.unplace(&pod.uid);
        self.place(pod, false);
    }

    /// A bound pod was deleted (or finished).
    pub fn remove_pod(&mut self, uid: &str) -> Option<String> {
        self.unplace(uid).map(|s| s.node)
    }

    /// Uids of every pod the cache knows.
    pub fn pod_uids(&self) -> Vec<String> {
        self.pods.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn node(name: &str, images: serde_json::Value) -> Arc<Node> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name},
                "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}, "images": images}
            }))
            .expect("node"),
        )
    }

    fn pod(uid: &str, node: &str, cpu: &str) -> Arc<PodInfo> {
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": uid, "namespace": "default", "uid": uid},
            "spec": {"nodeName": node, "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}
        }))
        .expect("pod");
        Arc::new(PodInfo::new(Arc::new(p)))
    }

    #[test]
    fn assumed_pods_count_until_forgotten_or_confirmed() {
        let mut c = Cache::new();
        c.upsert_node(node("n1", json!([])));
        c.assume(pod("a", "n1", "500m"));
        assert!(c.is_assumed("a"));
        assert_eq!(c.snapshot().get("n1").expect("n1").requested.milli_cpu, 500);
        c.forget("a");
        assert_eq!(c.snapshot().get("n1").expect("n1").requested.milli_cpu, 0);
        assert!(!c.contains("a"));

        c.assume(pod("b", "n1", "1"));
        c.add_or_update_pod(pod("b", "n1", "1"));
        assert!(!c.is_assumed("b"), "the watch confirmed it");
        c.forget("b");
        assert_eq!(
            c.snapshot().get("n1").expect("n1").requested.milli_cpu,
            1000,
            "a confirmed pod is not forgotten"
        );
        c.remove_pod("b");
        assert_eq!(c.snapshot().get("n1").expect("n1").pods.len(), 0);
    }

    #[test]
    fn pods_of_unknown_nodes_join_when_the_node_arrives() {
        let mut c = Cache::new();
        c.add_or_update_pod(pod("a", "later", "250m"));
        assert!(c.snapshot().get("later").is_none());
        c.upsert_node(node("later", json!([])));
        assert_eq!(
            c.snapshot().get("later").expect("node").requested.milli_cpu,
            250
        );
        c.remove_node("later");
        c.upsert_node(node("later", json!([])));
        assert_eq!(
            c.snapshot().get("later").expect("node").pods.len(),
            1,
            "pods survive their node's deletion and re-creation"
        );
    }

    #[test]
    fn image_states_count_the_nodes_that_have_each_image() {
        let mut c = Cache::new();
        let imgs = json!([{"names": ["busybox:1", "sha"], "sizeBytes": 1000}]);
        c.upsert_node(node("n1", imgs.clone()));
        c.upsert_node(node("n2", imgs));
        c.upsert_node(node("n3", json!([])));
        let st = &c.snapshot().get("n1").expect("n1").image_states["busybox:1"];
        assert_eq!((st.size, st.num_nodes), (1000, 2));
        // A heartbeat with the same images changes nothing; a new size reaches every holder.
        c.upsert_node(node(
            "n2",
            json!([{"names": ["busybox:1", "sha"], "sizeBytes": 1000}]),
        ));
        let st = &c.snapshot().get("n1").expect("n1").image_states["busybox:1"];
        assert_eq!((st.size, st.num_nodes), (1000, 2));
        c.upsert_node(node(
            "n2",
            json!([{"names": ["busybox:1", "sha"], "sizeBytes": 2000}]),
        ));
        let st = &c.snapshot().get("n1").expect("n1").image_states["busybox:1"];
        assert_eq!((st.size, st.num_nodes), (2000, 2));
        c.remove_node("n2");
        let st = &c.snapshot().get("n1").expect("n1").image_states["busybox:1"];
        assert_eq!(st.num_nodes, 1);
        assert!(c.snapshot().get("n3").expect("n3").image_states.is_empty());
    }
}
