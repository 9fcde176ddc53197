//! rkube's API model: what the API server knows about resources, without any I/O.
//!
//! - [`catalogue`]: every served resource with its scope, names, verbs and subresources;
//! - [`convert`]: conversion between the served versions of one resource (core and
//!   events.k8s.io Events, autoscaling v1 and v2 HorizontalPodAutoscalers);
//! - [`field_error`]: validation errors with upstream's field paths and messages;
//! - [`selector`]: label and field selectors;
//! - [`scheduling`]: node selectors, node affinity and taint tolerations (shared predicates);
//! - [`quantity`]: resource quantities (`500m`, `1Gi`);
//! - [`rbac`]: the RBAC and node authorizers' decisions and the bootstrap RBAC policy;
//! - [`validation`] and [`defaults`]: upstream's validation and defaulting per kind;
//! - [`patch`]: strategic merge patch and the patch metadata of the types;
//! - [`schema`]: OpenAPI schemas of the types and unknown-field detection;
//! - [`table`]: the server-side table columns `kubectl get` prints;
//! - [`podsecurity`], [`limitrange`] and [`quota`]: the decisions of the PodSecurity,
//!   LimitRanger and ResourceQuota admission plugins (and the quota controller's recount).

mod aggregate;
pub mod apply;
pub mod catalogue;
pub mod convert;
pub mod defaults;
pub mod field_error;
pub mod go_quote;
pub mod limitrange;
pub mod patch;
pub mod podsecurity;
pub mod quantity;
pub mod quota;
pub mod rbac;
pub mod scheduling;
pub mod schema;
pub mod selector;
pub mod table;
pub mod validation;

pub use catalogue::{ResourceInfo, Subresource, RESOURCES};
pub use field_error::{ErrorList, FieldError, FieldErrorType, FieldPath};
