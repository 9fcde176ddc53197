//! Role-based access control, without I/O: the decisions of upstream's RBAC and node
//! authorizers, escalation checks, and the bootstrap policy with its reconciliation and
//! aggregation. The API server feeds these the roles, bindings and pods from its caches.
//!
//! - [`attributes`]: the [`User`] and request [`Attributes`] an authorizer is asked
//!   about, and its [`Decision`];
//! - [`rules`]: whether a `PolicyRule` allows a request ([`rule_allows`]);
//! - [`subjects`]: whether a binding subject is a user;
//! - [`resolver`]: the RBAC authorizer over a [`PolicySource`] ([`authorize`],
//!   [`rules_for`]);
//! - [`covers`](mod@covers): escalation prevention ([`covers()`], [`escalation_message`]);
//! - [`bootstrap`]: the v1.33 bootstrap roles and bindings ([`bootstrap_policy`]);
//! - [`reconcile`]: bringing live objects up to the bootstrap policy;
//! - [`aggregation`]: the rules of aggregated cluster roles ([`aggregated_rules`]);
//! - [`node`]: the node authorizer ([`node_authorize`]) over a [`NodeGraph`].
//!
//! `system:masters` is not special here: the API server allows it before asking.

pub mod aggregation;
pub mod attributes;
pub mod bootstrap;
pub mod covers;
pub mod node;
pub mod node_refs;
pub mod reconcile;
pub mod resolver;
pub mod rules;
pub mod subjects;

#[cfg(test)]
mod tests;

pub use aggregation::aggregated_rules;
pub use attributes::{Attributes, Decision, User};
pub use bootstrap::{bootstrap_policy, BootstrapPolicy};
pub use covers::{covers, escalation_message};
pub use node::{authorize_node, node_authorize, node_name, node_rules, NodeGraph};
pub use reconcile::{
    reconcile_cluster_role, reconcile_cluster_role_binding, reconcile_role, reconcile_role_binding,
    BindingChange,
};
pub use resolver::{authorize, role_reference_rules, rules_for, split_rules, PolicySource};
pub use rules::{rule_allows, rules_allow};
