//! ResourceQuota decisions, as upstream's quota evaluators (`pkg/quota/v1/evaluator/core`,
//! `apiserver/pkg/quota/v1`) and admission plugin make them in v1.33. No I/O: the API
//! server's plugin lists the namespace's quotas and writes back the new usage; the quota
//! controller lists the namespace's objects and writes back the recount.
//!
//! - [`usage`]: what one object uses (`pods`, `requests.cpu`, `count/deployments.apps`...);
//! - [`matches_scopes`], [`quota_matches`]: which quotas an object is charged to;
//! - [`check`], [`check_request`]: admission's refusals and new usage;
//! - [`compute_used`]: the controller's recount of a quota.

mod admission;
mod controller;
mod evaluators;
pub(crate) mod pods;
pub mod resources;

#[cfg(test)]
mod tests;

pub use admission::{check, check_request, QuotaRequest, QuotaUpdate};
pub use controller::{compute_used, compute_used_at};
pub use evaluators::{
    constraints, handles, ignored_resource, matches_scopes, matching_resources, object_count_name,
    quota_matches, usage, usage_at,
};
pub use resources::ResourceList;

/// The operation of a request quota admission looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
}

/// Why quota admission refuses a request. The texts are upstream's; the API server reports
/// them as Forbidden: `pods "x" is forbidden: <text>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuotaError {
    /// The request would take a quota over a hard limit.
    #[error("exceeded quota: {quota}, requested: {requested}, used: {used}, limited: {limited}")]
    Exceeded {
        quota: String,
        requested: String,
        used: String,
        limited: String,
    },
    /// The quota controller has not yet counted a resource the quota limits.
    #[error("status unknown for quota: {quota}, resources: {resources}")]
    StatusUnknown { quota: String, resources: String },
    /// The object lacks something a matching quota needs (a container's cpu or memory).
    #[error("failed quota: {quota}: {message}")]
    Constraint { quota: String, message: String },
    #[error("quota usage is negative for resource(s): {resources}")]
    NegativeUsage { resources: String },
    #[error("unable to get previous usage since prior version of object was not found")]
    NoPriorVersion,
}
