//! Upstream's default plugins, one file each, and the registry of their factories.

pub mod default_binder;
pub mod default_preemption;
pub mod image_locality;
pub mod inter_pod_affinity;
pub mod node_affinity;
pub mod node_name;
pub mod node_ports;
pub mod node_resources_balanced_allocation;
pub mod node_resources_fit;
pub mod node_unschedulable;
pub mod pod_topology_spread;
pub mod preemption_victims;
pub mod priority_sort;
pub mod resource_scoring;
pub mod scheduling_gates;
pub mod taint_toleration;
#[cfg(test)]
pub(crate) mod testing;
pub mod topology_spread_common;

use crate::registry::Registration;

/// Every in-tree plugin.
pub static REGISTRY: &[Registration] = &[
    Registration {
        name: scheduling_gates::NAME,
        factory: scheduling_gates::new,
    },
    Registration {
        name: priority_sort::NAME,
        factory: priority_sort::new,
    },
    Registration {
        name: node_unschedulable::NAME,
        factory: node_unschedulable::new,
    },
    Registration {
        name: node_name::NAME,
        factory: node_name::new,
    },
    Registration {
        name: taint_toleration::NAME,
        factory: taint_toleration::new,
    },
    Registration {
        name: node_affinity::NAME,
        factory: node_affinity::new,
    },
    Registration {
        name: node_ports::NAME,
        factory: node_ports::new,
    },
    Registration {
        name: node_resources_fit::NAME,
        factory: node_resources_fit::new,
    },
    Registration {
        name: pod_topology_spread::NAME,
        factory: pod_topology_spread::new,
    },
    Registration {
        name: inter_pod_affinity::NAME,
        factory: inter_pod_affinity::new,
    },
    Registration {
        name: default_preemption::NAME,
        factory: default_preemption::new,
    },
    Registration {
        name: node_resources_balanced_allocation::NAME,
        factory: node_resources_balanced_allocation::new,
    },
    Registration {
        name: image_locality::NAME,
        factory: image_locality::new,
    },
    Registration {
        name: default_binder::NAME,
        factory: default_binder::new,
    },
];
