//! Auditing as upstream's `audit.k8s.io/v1`: which requests are recorded and how much of
//! them, the events, and the log they are written to.
//!
//! - [`policy`]: the `--audit-policy-file` [`Policy`] and [`Policy::evaluate`], which
//!   gives a request's [`Level`], the [`Stage`]s not to record and whether to drop
//!   `managedFields`;
//! - [`event`]: [`AuditEvent`], filled in as the request goes along and serialized as
//!   upstream's JSON;
//! - [`log`]: [`AuditLog`], the `--audit-log-path` backend: JSON lines written by a
//!   background writer, rotated by size.
//!
//! The request path owns the flow: evaluate the policy once per request; if the level is
//! not `None`, build the event, and log it at each stage that is not omitted.

pub mod event;
pub mod log;
pub mod policy;
#[cfg(test)]
mod tests;

use serde::Serialize;

pub use event::{AuditEvent, ObjectReference, ResponseStatus, UserInfo};
pub use log::{AuditLog, AuditLogError, AuditLogOptions};
pub use policy::{AuditAttributes, GroupResources, Policy, PolicyError, PolicyRule};

/// How much of a request is recorded; ordered from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Level {
    /// Not recorded.
    None,
    /// User, verb, resource, response code and timestamps.
    Metadata,
    /// Metadata and the request body.
    Request,
    /// Metadata, the request body and the response body.
    RequestResponse,
}

impl Level {
    /// The level named as in a policy file.
    pub fn parse(s: &str) -> Option<Level> {
        Some(match s {
            "None" => Level::None,
            "Metadata" => Level::Metadata,
            "Request" => Level::Request,
            "RequestResponse" => Level::RequestResponse,
            _ => return None,
        })
    }
}

/// When in a request's life an event is generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Stage {
    /// As soon as the request arrives, before it is handled.
    RequestReceived,
    /// Once response headers are sent; only for long-running requests such as watches.
    ResponseStarted,
    /// Once the response body is complete.
    ResponseComplete,
    /// When handling the request panicked.
    Panic,
}

impl Stage {
    /// The stage named as in a policy file.
    pub fn parse(s: &str) -> Option<Stage> {
        Some(match s {
            "RequestReceived" => Stage::RequestReceived,
            "ResponseStarted" => Stage::ResponseStarted,
            "ResponseComplete" => Stage::ResponseComplete,
            "Panic" => Stage::Panic,
            _ => return None,
        })
    }
}
