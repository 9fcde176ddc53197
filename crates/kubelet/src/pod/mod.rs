//! Pods: the observed runtime state, the decision core, the status core, and the workers
//! that drive the runtime.

pub mod backoff;
pub mod env;
pub mod observed;
pub mod ops;
pub mod plan;
pub mod spec;
pub mod status;
pub mod worker;

use std::collections::HashMap;

/// What the probes say about one pod's containers, by container name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProbeView {
    /// Readiness per container that has a readiness probe (absent: no result yet).
    pub ready: HashMap<String, bool>,
    /// Whether each container with a startup probe has passed it.
    pub started: HashMap<String, bool>,
    /// Containers whose liveness or startup probe failed, with the failing instance's id and
    /// the message.
    pub restart: HashMap<String, (String, String)>,
}
