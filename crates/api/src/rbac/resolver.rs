//! The RBAC authorizer over the roles and bindings the API server holds: upstream's
//! `DefaultRuleResolver` (`pkg/registry/rbac/validation/rule.go`) and `RBACAuthorizer`
//! (`plugin/pkg/auth/authorizer/rbac/rbac.go`).
//!
//! Rules are found by walking the cluster role bindings, then (for a namespaced request)
//! the role bindings of that namespace; a binding counts when one of its subjects is the
//! user, and contributes the rules of the role it references. A reference to a missing
//! role is an error that is reported but does not stop the walk, since rules only ever
//! add permissions.

use std::fmt;
use std::sync::Arc;

use k8s_openapi::api::authorization::v1::{NonResourceRule, ResourceRule};
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};

use super::attributes::{Attributes, Decision, User};
use super::rules::{go_quote, rule_allows};
use super::subjects::{applies_to, describe_subject};

/// Where the authorizer reads roles and bindings from: the API server's caches.
pub trait PolicySource {
    /// The cluster role `name`, if it exists.
    fn cluster_role(&self, name: &str) -> Option<Arc<ClusterRole>>;
    /// The role `name` in namespace `ns`, if it exists.
    fn role(&self, ns: &str, name: &str) -> Option<Arc<Role>>;
    /// Every cluster role binding.
    fn cluster_role_bindings(&self) -> Vec<Arc<ClusterRoleBinding>>;
    /// Every role binding in namespace `ns`.
    fn role_bindings(&self, ns: &str) -> Vec<Arc<RoleBinding>>;
}

/// The binding (and which of its subjects) a rule was granted through; its `Display` is
/// the text after `RBAC: allowed by `.
#[derive(Debug, Clone, Copy)]
pub enum RuleSource<'a> {
    ClusterRoleBinding {
        binding: &'a ClusterRoleBinding,
        subject: &'a Subject,
    },
    RoleBinding {
        binding: &'a RoleBinding,
        subject: &'a Subject,
    },
}

impl fmt::Display for RuleSource<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleSource::ClusterRoleBinding { binding, subject } => write!(
                f,
                "ClusterRoleBinding {} of {} {} to {}",
                go_quote(binding.metadata.name.as_deref().unwrap_or_default()),
                binding.role_ref.kind,
                go_quote(&binding.role_ref.name),
                describe_subject(subject, "")
            ),
            RuleSource::RoleBinding { binding, subject } => {
                let namespace = binding.metadata.namespace.as_deref().unwrap_or_default();
                let name = binding.metadata.name.as_deref().unwrap_or_default();
                write!(
                    f,
                    "RoleBinding {} of {} {} to {}",
                    go_quote(&format!("{name}/{namespace}")),
                    binding.role_ref.kind,
                    go_quote(&binding.role_ref.name),
                    describe_subject(subject, namespace)
                )
            }
        }
    }
}

/// What the walk over the bindings meets.
enum Visit<'a> {
    Rule(RuleSource<'a>, &'a PolicyRule),
    Error(String),
}

/// The role a binding references, kept alive while its rules are visited.
enum ReferencedRole {
    Cluster(Arc<ClusterRole>),
    Namespaced(Arc<Role>),
}

impl ReferencedRole {
    fn rules(&self) -> &[PolicyRule] {
        let rules = match self {
            ReferencedRole::Cluster(r) => &r.rules,
            ReferencedRole::Namespaced(r) => &r.rules,
        };
        rules.as_deref().unwrap_or_default()
    }
}

/// Resolves a binding's role reference (upstream's `GetRoleReferenceRules`); the error
/// texts are those of upstream's listers.
fn referenced_role(
    src: &dyn PolicySource,
    role_ref: &RoleRef,
    binding_namespace: &str,
) -> Result<ReferencedRole, String> {
    match role_ref.kind.as_str() {
        "Role" => src
            .role(binding_namespace, &role_ref.name)
            .map(ReferencedRole::Namespaced)
            .ok_or_else(|| not_found("role", &role_ref.name)),
        "ClusterRole" => src
            .cluster_role(&role_ref.name)
            .map(ReferencedRole::Cluster)
            .ok_or_else(|| not_found("clusterrole", &role_ref.name)),
        other => Err(format!(
            "unsupported role reference kind: {}",
            go_quote(other)
        )),
    }
}

/// The rules of the role a binding references (upstream's `GetRoleReferenceRules`;
/// `binding_namespace` is empty for a cluster role binding), or why it cannot be
/// resolved. Writing a binding to a role that cannot be resolved is a 400 with this
/// text; otherwise the writer must hold these rules (see [`covers`](super::covers())).
pub fn role_reference_rules(
    src: &dyn PolicySource,
    role_ref: &RoleRef,
    binding_namespace: &str,
) -> Result<Vec<PolicyRule>, String> {
    referenced_role(src, role_ref, binding_namespace).map(|r| r.rules().to_vec())
}

fn not_found(resource: &str, name: &str) -> String {
    format!(
        "{resource}.rbac.authorization.k8s.io {} not found",
        go_quote(name)
    )
}

/// Walks the rules that apply to `user` in `namespace`, calling `visit` for each rule and
/// each resolution error until it returns `false` (upstream's `VisitRulesFor`).
fn visit_rules_for(
    src: &dyn PolicySource,
    user: &User,
    namespace: &str,
    visit: &mut dyn FnMut(Visit<'_>) -> bool,
) {
    for binding in src.cluster_role_bindings() {
        let subjects = binding.subjects.as_deref().unwrap_or_default();
        let Some(index) = applies_to(user, subjects, "") else {
            continue;
        };
        let role = match referenced_role(src, &binding.role_ref, "") {
            Ok(role) => role,
            Err(e) => {
                if !visit(Visit::Error(e)) {
                    return;
                }
                continue;
            }
        };
        let source = RuleSource::ClusterRoleBinding {
            binding: &binding,
            subject: &subjects[index],
        };
        for rule in role.rules() {
            if !visit(Visit::Rule(source, rule)) {
                return;
            }
        }
    }
    if namespace.is_empty() {
        return;
    }
    for binding in src.role_bindings(namespace) {
        let subjects = binding.subjects.as_deref().unwrap_or_default();
        let Some(index) = applies_to(user, subjects, namespace) else {
            continue;
        };
        let role = match referenced_role(src, &binding.role_ref, namespace) {
            Ok(role) => role,
            Err(e) => {
                if !visit(Visit::Error(e)) {
                    return;
                }
                continue;
            }
        };
        let source = RuleSource::RoleBinding {
            binding: &binding,
            subject: &subjects[index],
        };
        for rule in role.rules() {
            if !visit(Visit::Rule(source, rule)) {
                return;
            }
        }
    }
}

/// Upstream's `utilerrors.NewAggregate(errs).Error()`: one message as is, several
/// de-duplicated, comma-separated and bracketed.
pub(crate) fn aggregate(errors: &[String]) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for e in errors {
        if !seen.contains(&e.as_str()) {
            seen.push(e);
        }
    }
    match seen.as_slice() {
        [] => String::new(),
        [one] => one.to_string(),
        many => format!("[{}]", many.join(", ")),
    }
}

/// The RBAC decision for a request (upstream's `RBACAuthorizer.Authorize`): `Allow` with
/// `RBAC: allowed by <binding> of <role> to <subject>` for the first rule that allows
/// it, otherwise `NoOpinion` whose reason lists the role references that could not be
/// resolved (`RBAC: clusterrole.rbac.authorization.k8s.io "x" not found`), or is empty.
///
/// `system:masters` is not special here: the API server allows it before asking.
pub fn authorize(src: &dyn PolicySource, attrs: &Attributes) -> Decision {
    let mut allowed_by: Option<String> = None;
    let mut errors: Vec<String> = Vec::new();
    visit_rules_for(src, &attrs.user, &attrs.namespace, &mut |v| match v {
        Visit::Rule(source, rule) => {
            if rule_allows(attrs, rule) {
                allowed_by = Some(format!("RBAC: allowed by {source}"));
                return false;
            }
            true
        }
        Visit::Error(e) => {
            errors.push(e);
            true
        }
    });
    match allowed_by {
        Some(reason) => Decision::allow(reason),
        None if errors.is_empty() => Decision::no_opinion(""),
        None => Decision::no_opinion(format!("RBAC: {}", aggregate(&errors))),
    }
}

/// Every rule that applies to `user` in `namespace` (the cluster role bindings' roles,
/// then those of the namespace's role bindings; cluster-wide only when `namespace` is
/// empty), and the errors met resolving role references (upstream's `RulesFor`). The
/// rules are usable even when there are errors: rules only add permissions.
pub fn rules_for(
    src: &dyn PolicySource,
    user: &User,
    namespace: &str,
) -> (Vec<PolicyRule>, Vec<String>) {
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    visit_rules_for(src, user, namespace, &mut |v| {
        match v {
            Visit::Rule(_, rule) => rules.push(rule.clone()),
            Visit::Error(e) => errors.push(e),
        }
        true
    });
    (rules, errors)
}

/// Splits rules as a `SelfSubjectRulesReview` status reports them (upstream's
/// `RBACAuthorizer.RulesFor`): a rule with resources becomes a resource rule, one with
/// non-resource URLs a non-resource rule (a rule with both becomes both).
pub fn split_rules(rules: &[PolicyRule]) -> (Vec<ResourceRule>, Vec<NonResourceRule>) {
    let mut resource_rules = Vec::new();
    let mut non_resource_rules = Vec::new();
    for rule in rules {
        if rule.resources.as_ref().is_some_and(|r| !r.is_empty()) {
            resource_rules.push(ResourceRule {
                verbs: rule.verbs.clone(),
                api_groups: rule.api_groups.clone(),
                resources: rule.resources.clone(),
                resource_names: rule.resource_names.clone(),
            });
        }
        if rule
            .non_resource_urls
            .as_ref()
            .is_some_and(|u| !u.is_empty())
        {
            non_resource_rules.push(NonResourceRule {
                verbs: rule.verbs.clone(),
                non_resource_urls: rule.non_resource_urls.clone(),
            });
        }
    }
    (resource_rules, non_resource_rules)
}
