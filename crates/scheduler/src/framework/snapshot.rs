//! The cluster as one scheduling cycle sees it: every node with its pods (assumed ones
//! included), namespace labels and PodDisruptionBudgets. The cache owns it and changes it only
//! between cycles, so a cycle reads it without locks.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{ReplicationController, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;

use super::types::NodeInfo;

/// See the module documentation.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    nodes: Vec<Arc<NodeInfo>>,
    index: HashMap<String, usize>,
    /// Labels of every namespace, for `namespaceSelector`s.
    pub namespaces: HashMap<String, BTreeMap<String, String>>,
    /// Every PodDisruptionBudget, for preemption.
    pub pdbs: Vec<Arc<PodDisruptionBudget>>,
    /// Every Service (PodTopologySpread's system default constraints select a pod's peers
    /// through the services, replication controllers, replica sets and stateful sets that
    /// select it).
    pub services: Vec<Arc<Service>>,
    /// Every ReplicationController.
    pub replication_controllers: Vec<Arc<ReplicationController>>,
    /// Every ReplicaSet.
    pub replica_sets: Vec<Arc<ReplicaSet>>,
    /// Every StatefulSet.
    pub stateful_sets: Vec<Arc<StatefulSet>>,
}

impl Snapshot {
    /// A snapshot of these nodes (tests build clusters this way).
    pub fn from_nodes(nodes: impl IntoIterator<Item = NodeInfo>) -> Snapshot {
        let mut s = Snapshot::default();
        for n in nodes {
            s.upsert(n);
        }
        s
    }

    /// Every node, in a stable order.
    pub fn nodes(&self) -> &[Arc<NodeInfo>] {
        &self.nodes
    }

    /// The number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The node called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<NodeInfo>> {
        self.index.get(name).map(|i| &self.nodes[*i])
    }

    /// The node called `name`, for changing (copied first if a cycle still holds it).
    pub fn get_mut(&mut self, name: &str) -> Option<&mut NodeInfo> {
        let i = *self.index.get(name)?;
        Some(Arc::make_mut(&mut self.nodes[i]))
    }

    /// Adds or replaces a node.
    pub fn upsert(&mut self, node: NodeInfo) {
        match self.index.get(&node.name) {
            Some(i) => self.nodes[*i] = Arc::new(node),
            None => {
                self.index.insert(node.name.clone(), self.nodes.len());
                self.nodes.push(Arc::new(node));
            }
        }
    }

    /// Removes a node; returns it.
    pub fn remove(&mut self, name: &str) -> Option<Arc<NodeInfo>> {
        let i = self.index.remove(name)?;
        let removed = self.nodes.swap_remove(i);
        if let Some(moved) = self.nodes.get(i) {
            self.index.insert(moved.name.clone(), i);
        }
        Some(removed)
    }

    /// Labels of namespace `ns`.
    pub fn namespace_labels(&self, ns: &str) -> Option<&BTreeMap<String, String>> {
        self.namespaces.get(ns)
    }

    /// Nodes with at least one pod with pod (anti-)affinity.
    pub fn nodes_with_affinity_pods(&self) -> impl Iterator<Item = &Arc<NodeInfo>> {
        self.nodes
            .iter()
            .filter(|n| !n.pods_with_affinity.is_empty())
    }

    /// Nodes with at least one pod with required anti-affinity.
    pub fn nodes_with_required_anti_affinity_pods(&self) -> impl Iterator<Item = &Arc<NodeInfo>> {
        self.nodes
            .iter()
            .filter(|n| !n.pods_with_required_anti_affinity.is_empty())
    }
}
