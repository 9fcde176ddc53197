//! Container probes (liveness, readiness, startup) and lifecycle hooks (postStart, preStop), as
//! upstream's pkg/kubelet/prober, pkg/probe/{exec,http,tcp,grpc} and pkg/kubelet/lifecycle.
//!
//! - [`state`]: the pure state machine (a run of outcomes and the thresholds → results; when a
//!   probe runs at all).
//! - `action`: running one probe: exec through CRI ExecSync, HTTP GET, TCP connect, gRPC health.
//! - [`ProbeManager`]: a tokio task per probe of each running container instance; the pod
//!   worker reads a [`ProbeView`] and is woken when a result changes.
//! - [`run_handler`]: postStart / preStop handlers.

mod action;
mod expand;
mod gofmt;
mod lifecycle;
mod manager;
pub mod state;
#[cfg(test)]
mod tests;

pub use action::{resolve_port, KUBE_VERSION};
pub use expand::{command_with_static_env, expand};
pub use lifecycle::run_handler;
pub use manager::{ProbeEvent, ProbeManager, ProbeView, RunningContainer};
