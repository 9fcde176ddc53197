//! What an authorizer is asked: who ([`User`]) wants to do what ([`Attributes`]), and
//! what it answers ([`Decision`]). These mirror upstream's `user.Info`,
//! `authorizer.Attributes` and `authorizer.Decision`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::selector::FieldSelector;

/// Prefix of the user names service accounts authenticate as:
/// `system:serviceaccount:<namespace>:<name>`.
pub const SERVICE_ACCOUNT_USER_PREFIX: &str = "system:serviceaccount:";

/// An authenticated identity (upstream's `user.Info`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct User {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

impl User {
    /// A user with a name and groups, no uid or extra.
    pub fn new(name: &str, groups: &[&str]) -> Self {
        User {
            name: name.to_string(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..User::default()
        }
    }

    /// Whether the user is in `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    /// Whether this is the service account `namespace/name` (upstream's
    /// `serviceaccount.MatchesUsername`): the name must be exactly
    /// `system:serviceaccount:<namespace>:<name>`.
    pub fn is_service_account(&self, namespace: &str, name: &str) -> bool {
        // Compared piecewise so no string is built per check: this runs for every
        // ServiceAccount subject of every binding on every request.
        self.name
            .strip_prefix(SERVICE_ACCOUNT_USER_PREFIX)
            .and_then(|rest| rest.strip_prefix(namespace))
            .and_then(|rest| rest.strip_prefix(':'))
            == Some(name)
    }
}

/// One request to authorize (upstream's `authorizer.Attributes`).
///
/// For a resource request (`resource_request`), `verb` is the API verb (`get`, `list`,
/// `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`, or a special verb
/// such as `impersonate`, `bind`, `escalate`, `approve`), and `api_group`, `resource`,
/// `subresource`, `namespace` and `name` say what it is for. Otherwise `verb` is the
/// lower-cased HTTP method and `path` the request path.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attributes {
    pub user: User,
    pub verb: String,
    pub resource_request: bool,
    pub api_group: String,
    pub api_version: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    pub path: String,
    /// The request's parsed `fieldSelector` (upstream's `GetFieldSelector`), when it had
    /// one. RBAC ignores it; the node authorizer lets a kubelet list and watch pods and
    /// resource slices only with a `spec.nodeName=<its node>` term.
    pub field_selector: Option<FieldSelector>,
}

impl Attributes {
    /// A resource request: `verb` on `resource[/subresource]` in `api_group`, in
    /// `namespace` (empty for cluster scope), for the object `name` (empty for
    /// collections).
    pub fn resource(
        user: &User,
        verb: &str,
        api_group: &str,
        resource: &str,
        namespace: &str,
        name: &str,
    ) -> Self {
        let (resource, subresource) = match resource.split_once('/') {
            Some((r, s)) => (r, s),
            None => (resource, ""),
        };
        Attributes {
            user: user.clone(),
            verb: verb.to_string(),
            resource_request: true,
            api_group: api_group.to_string(),
            api_version: String::new(),
            resource: resource.to_string(),
            subresource: subresource.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
            path: String::new(),
            field_selector: None,
        }
    }

    /// A non-resource request: `verb` (a lower-cased HTTP method) on `path`.
    pub fn non_resource(user: &User, verb: &str, path: &str) -> Self {
        Attributes {
            user: user.clone(),
            verb: verb.to_string(),
            path: path.to_string(),
            ..Attributes::default()
        }
    }

    /// The same request with this field selector.
    pub fn with_field_selector(mut self, selector: FieldSelector) -> Self {
        self.field_selector = Some(selector);
        self
    }
}

/// An authorizer's answer. Only `Allow` grants anything: `NoOpinion` lets the next
/// authorizer in the chain decide, and a request no authorizer allows is forbidden.
/// `reason` is upstream's text, which the API server puts in the 403 message and the
/// `SubjectAccessReview` status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow { reason: String },
    NoOpinion { reason: String },
}

impl Decision {
    /// Whether the request is allowed.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }

    /// The reason, allowed or not.
    pub fn reason(&self) -> &str {
        match self {
            Decision::Allow { reason } | Decision::NoOpinion { reason } => reason,
        }
    }

    pub(crate) fn allow(reason: impl Into<String>) -> Self {
        Decision::Allow {
            reason: reason.into(),
        }
    }

    pub(crate) fn no_opinion(reason: impl Into<String>) -> Self {
        Decision::NoOpinion {
            reason: reason.into(),
        }
    }
}
