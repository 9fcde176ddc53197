//! Escalation prevention for RBAC writes, as upstream's policy-based RBAC storage does:
//! nobody can create or change a role that grants what they do not hold themselves, or
//! bind a role whose permissions they do not hold, unless they may `escalate` (roles) or
//! `bind` (bindings) it, or are in `system:masters`.

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule, Role, RoleRef};
use rkube_api::rbac;
use serde_json::Value;

use super::{authorize, Attributes, Decision, User};
use crate::authn::MASTERS;
use crate::server::ApiServer;
use crate::status::{ApiError, ApiResult};

const GROUP: &str = "rbac.authorization.k8s.io";

/// Checks a create or update (`old` set) of a Role, ClusterRole, RoleBinding or
/// ClusterRoleBinding by `user`.
pub fn check(
    server: &ApiServer,
    user: &User,
    plural: &str,
    namespace: &str,
    name: &str,
    obj: &Value,
    old: Option<&Value>,
) -> ApiResult<()> {
    if user.in_group(MASTERS) || server.security.authn.insecure {
        return Ok(());
    }
    let Some(res) = rkube_api::catalogue::find(GROUP, "v1", plural) else {
        return Ok(());
    };
    match plural {
        "roles" | "clusterroles" => {
            // Only a change of what the role grants needs checking.
            let same = |k: &str| old.is_some_and(|o| o.get(k) == obj.get(k));
            if same("rules") && same("aggregationRule") {
                return Ok(());
            }
            if permitted(server, user, "escalate", plural, namespace, name) {
                return Ok(());
            }
            let (rules, aggregation) = if plural == "roles" {
                let r: Role = typed(obj)?;
                (r.rules.unwrap_or_default(), false)
            } else {
                let r: ClusterRole = typed(obj)?;
                (r.rules.unwrap_or_default(), r.aggregation_rule.is_some())
            };
            let policy = server.rbac.snapshot(server);
            let (held, errors) = rbac::rules_for(policy.as_ref(), user, namespace);
            if aggregation && !rbac::covers(&held, &rbac::covers::full_authority()).0 {
                return Err(ApiError::forbidden(
                    res,
                    name,
                    rbac::covers::AGGREGATION_RULE_FORBIDDEN,
                ));
            }
            confirm_no_escalation(res, name, user, &held, &errors, &rules)
        }
        "rolebindings" | "clusterrolebindings" => {
            let same = |k: &str| old.is_some_and(|o| o.get(k) == obj.get(k));
            if same("roleRef") && same("subjects") {
                return Ok(());
            }
            let role_ref: RoleRef = obj
                .get("roleRef")
                .cloned()
                .map(serde_json::from_value)
                .transpose()
                .map_err(|e| ApiError::bad_request(format!("roleRef: {e}")))?
                .unwrap_or_default();
            let role_plural = if role_ref.kind == "Role" {
                "roles"
            } else {
                "clusterroles"
            };
            let role_ns = if role_ref.kind == "Role" {
                namespace
            } else {
                ""
            };
            if permitted(server, user, "bind", role_plural, role_ns, &role_ref.name) {
                return Ok(());
            }
            let policy = server.rbac.snapshot(server);
            let rules = rbac::resolver::role_reference_rules(policy.as_ref(), &role_ref, namespace)
                .map_err(|e| ApiError::new(404, "NotFound", e))?;
            let (held, errors) = rbac::rules_for(policy.as_ref(), user, namespace);
            confirm_no_escalation(res, name, user, &held, &errors, &rules)
        }
        _ => Ok(()),
    }
}

fn typed<T: serde::de::DeserializeOwned>(obj: &Value) -> ApiResult<T> {
    serde_json::from_value(obj.clone()).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// Whether the authorizer allows `verb` on an RBAC object (`escalate`, `bind`).
fn permitted(
    server: &ApiServer,
    user: &User,
    verb: &str,
    plural: &str,
    ns: &str,
    name: &str,
) -> bool {
    let attrs = Attributes {
        user: user.clone(),
        verb: verb.to_string(),
        resource_request: true,
        api_group: GROUP.to_string(),
        api_version: "*".to_string(),
        resource: plural.to_string(),
        namespace: ns.to_string(),
        name: name.to_string(),
        ..Attributes::default()
    };
    matches!(authorize(server, &attrs), Decision::Allow { .. })
}

fn confirm_no_escalation(
    res: &rkube_api::ResourceInfo,
    name: &str,
    user: &User,
    held: &[PolicyRule],
    errors: &[String],
    requested: &[PolicyRule],
) -> ApiResult<()> {
    let (ok, missing) = rbac::covers(held, requested);
    if ok {
        return Ok(());
    }
    Err(ApiError::forbidden(
        res,
        name,
        &rbac::escalation_message(user, &missing, errors),
    ))
}
