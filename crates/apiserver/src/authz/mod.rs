//! Authorization: may this user do this? Upstream's chain for a secure server: members of
//! `system:masters` may do anything, then the Node authorizer, then RBAC. The first that
//! allows wins; if none does, the request gets 403 with upstream's message.

pub mod escalation;
pub mod index;
pub mod request_info;

use k8s_openapi::api::authorization::v1::{NonResourceRule, ResourceRule};

use crate::authn::MASTERS;
use crate::server::ApiServer;
use crate::status::ApiError;
pub use request_info::{request_info, RequestInfo};

pub use rkube_api::rbac::{Attributes, User};

/// The attributes of a request by `user`.
pub fn attributes(user: User, info: RequestInfo) -> Attributes {
    Attributes {
        user,
        verb: info.verb,
        resource_request: info.resource_request,
        api_group: info.api_group,
        api_version: info.api_version,
        resource: info.resource,
        subresource: info.subresource,
        namespace: info.namespace,
        name: info.name,
        path: info.path,
        field_selector: None,
    }
}

/// The chain's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow {
        reason: String,
    },
    /// No authorizer allowed it; the reason is the last non-empty one an authorizer gave.
    Deny {
        reason: String,
    },
}

/// Runs the authorizer chain.
pub fn authorize(server: &ApiServer, attrs: &Attributes) -> Decision {
    if server.security.authn.insecure || attrs.user.groups.iter().any(|g| g == MASTERS) {
        return Decision::Allow {
            reason: String::new(),
        };
    }
    let node = rkube_api::rbac::authorize_node(attrs, &index::CacheGraph(server));
    if node.is_allowed() {
        return Decision::Allow {
            reason: node.reason().to_string(),
        };
    }
    let policy = server.rbac.snapshot(server);
    let rbac = rkube_api::rbac::authorize(policy.as_ref(), attrs);
    if rbac.is_allowed() {
        return Decision::Allow {
            reason: rbac.reason().to_string(),
        };
    }
    let reason = [node.reason(), rbac.reason()]
        .into_iter()
        .filter(|r| !r.is_empty())
        .collect::<Vec<_>>()
        .join(", ");
    Decision::Deny { reason }
}

/// What a SelfSubjectRulesReview reports.
#[derive(Debug, Default)]
pub struct RulesReview {
    pub resource_rules: Vec<ResourceRule>,
    pub non_resource_rules: Vec<NonResourceRule>,
    pub incomplete: bool,
    pub errors: Vec<String>,
}

/// The rules `user` has in `namespace`, as RBAC grants them (upstream's `RulesFor`).
pub fn rules_review(server: &ApiServer, user: &User, namespace: &str) -> RulesReview {
    let policy = server.rbac.snapshot(server);
    let (rules, errors) = rkube_api::rbac::rules_for(policy.as_ref(), user, namespace);
    let (resource_rules, non_resource_rules) = rkube_api::rbac::split_rules(&rules);
    RulesReview {
        resource_rules,
        non_resource_rules,
        incomplete: !errors.is_empty(),
        errors,
    }
}

/// Upstream's 403 for a refused request.
pub fn forbidden(attrs: &Attributes, reason: &str) -> ApiError {
    let user = &attrs.user.name;
    let suffix = if reason.is_empty() {
        String::new()
    } else {
        format!(": {reason}")
    };
    if !attrs.resource_request {
        let msg = format!(
            "forbidden: User \"{user}\" cannot {} path \"{}\"{suffix}",
            attrs.verb, attrs.path
        );
        return ApiError::new(403, "Forbidden", msg);
    }
    let mut resource = attrs.resource.clone();
    if !attrs.subresource.is_empty() {
        resource = format!("{resource}/{}", attrs.subresource);
    }
    let scope = if attrs.namespace.is_empty() {
        "at the cluster scope".to_string()
    } else {
        format!("in the namespace \"{}\"", attrs.namespace)
    };
    let why = format!(
        "User \"{user}\" cannot {} resource \"{resource}\" in API group \"{}\" {scope}{suffix}",
        attrs.verb, attrs.api_group
    );
    let qualified = if attrs.api_group.is_empty() {
        attrs.resource.clone()
    } else {
        format!("{}.{}", attrs.resource, attrs.api_group)
    };
    let message = if attrs.name.is_empty() {
        format!("{qualified} is forbidden: {why}")
    } else {
        format!("{qualified} \"{}\" is forbidden: {why}", attrs.name)
    };
    let mut err = ApiError::new(403, "Forbidden", message);
    err.name = Some(attrs.name.clone());
    err.group = Some(attrs.api_group.clone());
    err.kind = Some(attrs.resource.clone());
    err
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    fn attrs(method: Method, path: &str) -> Attributes {
        let user = User {
            name: "bob".into(),
            ..User::default()
        };
        attributes(user, request_info(&method, path, None))
    }

    #[test]
    fn forbidden_messages_match_upstream() {
        let cases = [
            (
                Method::GET,
                "/api/v1/namespaces/default/pods",
                r#"pods is forbidden: User "bob" cannot list resource "pods" in API group "" in the namespace "default""#,
            ),
            (
                Method::GET,
                "/api/v1/namespaces/default/pods/p1/log",
                r#"pods "p1" is forbidden: User "bob" cannot get resource "pods/log" in API group "" in the namespace "default""#,
            ),
            (
                Method::POST,
                "/apis/apps/v1/namespaces/a/deployments",
                r#"deployments.apps is forbidden: User "bob" cannot create resource "deployments" in API group "apps" in the namespace "a""#,
            ),
            (
                Method::GET,
                "/api/v1/nodes",
                r#"nodes is forbidden: User "bob" cannot list resource "nodes" in API group "" at the cluster scope"#,
            ),
            (
                Method::GET,
                "/metrics",
                r#"forbidden: User "bob" cannot get path "/metrics""#,
            ),
        ];
        for (m, path, want) in cases {
            assert_eq!(forbidden(&attrs(m, path), "").message, want);
        }
        let e = forbidden(
            &attrs(Method::GET, "/api/v1/namespaces/a/secrets/s"),
            "no relationship",
        );
        assert!(
            e.message
                .ends_with("in the namespace \"a\": no relationship"),
            "{}",
            e.message
        );
        assert_eq!((e.code, e.reason), (403, "Forbidden"));
    }
}
