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

/// What the probes say about one pod's containers (the probe manager's view).
pub use crate::probes::ProbeView;
