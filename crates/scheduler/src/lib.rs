//! rkube's scheduler: upstream's scheduling framework as an API client.
//!
//! - [`framework`]: the extension-point traits, `Status`, `CycleState`, the cluster
//!   [`Snapshot`](framework::Snapshot) and the [`Framework`](framework::Framework) that runs a
//!   profile's plugins;
//! - [`plugins`]: upstream's default plugins, one file each;
//! - [`config`]: `KubeSchedulerConfiguration` and profile building;
//! - [`registry`]: plugin name to factory.

pub mod actions;
pub mod cache;
pub mod config;
pub mod framework;
pub mod helpers;
pub mod metrics;
pub mod plugins;
pub mod queue;
pub mod registry;
pub mod schedule;
pub mod scheduler;
pub mod watch;

pub use config::KubeSchedulerConfiguration;
pub use metrics::Metrics;
pub use scheduler::{run, Error};
