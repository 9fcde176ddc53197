//! Which binding subjects a user is (upstream's `appliesTo`), and how a subject is named
//! in an authorization reason.

use k8s_openapi::api::rbac::v1::Subject;

use super::attributes::User;
use super::rules::go_quote;

/// `Subject.kind` of a user.
pub const USER_KIND: &str = "User";
/// `Subject.kind` of a group.
pub const GROUP_KIND: &str = "Group";
/// `Subject.kind` of a service account.
pub const SERVICE_ACCOUNT_KIND: &str = "ServiceAccount";

/// Whether `subject` is `user`: a `User` subject by name (a service account's user name
/// `system:serviceaccount:<ns>:<name>` works too), a `Group` subject by membership, a
/// `ServiceAccount` subject by the service account's user name, its namespace defaulting
/// to `binding_namespace` (empty for cluster role bindings, where a `ServiceAccount`
/// subject without a namespace matches no one). Unknown kinds match no one.
pub fn applies_to_user(user: &User, subject: &Subject, binding_namespace: &str) -> bool {
    match subject.kind.as_str() {
        USER_KIND => user.name == subject.name,
        GROUP_KIND => user.in_group(&subject.name),
        SERVICE_ACCOUNT_KIND => {
            let namespace = match subject.namespace.as_deref() {
                Some(ns) if !ns.is_empty() => ns,
                _ => binding_namespace,
            };
            !namespace.is_empty() && user.is_service_account(namespace, &subject.name)
        }
        _ => false,
    }
}

/// The index of the first of `subjects` that is `user` (upstream's `appliesTo`).
pub fn applies_to(user: &User, subjects: &[Subject], binding_namespace: &str) -> Option<usize> {
    subjects
        .iter()
        .position(|s| applies_to_user(user, s, binding_namespace))
}

/// A subject as upstream's `describeSubject` writes it in reasons: `User "alice"`,
/// `Group "devs"`, `ServiceAccount "name/namespace"` (namespace defaulted from the
/// binding).
pub fn describe_subject(subject: &Subject, binding_namespace: &str) -> String {
    if subject.kind == SERVICE_ACCOUNT_KIND {
        let namespace = match subject.namespace.as_deref() {
            Some(ns) if !ns.is_empty() => ns,
            _ => binding_namespace,
        };
        format!(
            "{} {}",
            subject.kind,
            go_quote(&format!("{}/{}", subject.name, namespace))
        )
    } else {
        format!("{} {}", subject.kind, go_quote(&subject.name))
    }
}

/// Subject equality as upstream's struct comparison: an absent `apiGroup` or
/// `namespace` equals an empty one.
pub fn subjects_equal(a: &Subject, b: &Subject) -> bool {
    a.kind == b.kind
        && a.name == b.name
        && a.api_group.as_deref().unwrap_or_default() == b.api_group.as_deref().unwrap_or_default()
        && a.namespace.as_deref().unwrap_or_default() == b.namespace.as_deref().unwrap_or_default()
}
