//! Escalation prevention: whether the rules a user holds cover the rules they try to
//! grant (upstream's `Covers` in `component-helpers/auth/rbac/validation`), and the
//! message a refused role or binding write carries (`ConfirmNoEscalation` in
//! `pkg/registry/rbac/validation/rule.go`).
//!
//! The API server refuses to create or update a role whose rules the requester does not
//! hold (unless the requester is in `system:masters` or may `escalate` roles), and a
//! binding to a role whose rules the requester does not hold (unless they are in
//! `system:masters` or may `bind` it; the role's rules come from
//! [`role_reference_rules`](super::role_reference_rules)): it calls [`covers`] with the
//! requester's [`rules_for`](super::rules_for) in the object's namespace and, when that
//! fails, answers 403 with [`escalation_message`].
//! A cluster role with an `aggregationRule` also needs [`full_authority`], failing with
//! [`AGGREGATION_RULE_FORBIDDEN`].

use k8s_openapi::api::rbac::v1::PolicyRule;

use super::attributes::User;
use super::rules::{
    api_groups, compact_string, go_quote, go_quote_list, non_resource_urls, resource_names,
    resources, ALL,
};

/// Why a cluster role with an `aggregationRule` is refused to a requester without
/// [`full_authority`].
pub const AGGREGATION_RULE_FORBIDDEN: &str =
    "must have cluster-admin privileges to use the aggregationRule";

/// The rules of `cluster-admin`: everything on every resource and URL.
pub fn full_authority() -> Vec<PolicyRule> {
    vec![
        PolicyRule {
            api_groups: Some(vec![ALL.to_string()]),
            resources: Some(vec![ALL.to_string()]),
            verbs: vec![ALL.to_string()],
            ..PolicyRule::default()
        },
        PolicyRule {
            non_resource_urls: Some(vec![ALL.to_string()]),
            verbs: vec![ALL.to_string()],
            ..PolicyRule::default()
        },
    ]
}

/// Whether `owner` rules allow everything `requested` rules do, and the atomic requested
/// rules (one group, resource, verb and name, or one URL and verb) no owner rule covers.
pub fn covers(owner: &[PolicyRule], requested: &[PolicyRule]) -> (bool, Vec<PolicyRule>) {
    let uncovered: Vec<PolicyRule> = requested
        .iter()
        .flat_map(breakdown_rule)
        .filter(|sub| !owner.iter().any(|o| rule_covers(o, sub)))
        .collect();
    (uncovered.is_empty(), uncovered)
}

/// A rule as equivalent atomic rules, each with one API group, resource, verb and (if
/// the rule names any) resource name, or one non-resource URL and verb (upstream's
/// `BreakdownRule`). A rule without groups or resources yields no resource rules.
pub fn breakdown_rule(rule: &PolicyRule) -> Vec<PolicyRule> {
    let mut out = Vec::new();
    let names = resource_names(rule);
    for group in api_groups(rule) {
        for resource in resources(rule) {
            for verb in &rule.verbs {
                let atom = |name: Option<&String>| PolicyRule {
                    api_groups: Some(vec![group.clone()]),
                    resources: Some(vec![resource.clone()]),
                    verbs: vec![verb.clone()],
                    resource_names: name.map(|n| vec![n.clone()]),
                    non_resource_urls: None,
                };
                if names.is_empty() {
                    out.push(atom(None));
                } else {
                    out.extend(names.iter().map(|n| atom(Some(n))));
                }
            }
        }
    }
    for url in non_resource_urls(rule) {
        for verb in &rule.verbs {
            out.push(PolicyRule {
                non_resource_urls: Some(vec![url.clone()]),
                verbs: vec![verb.clone()],
                ..PolicyRule::default()
            });
        }
    }
    out
}

fn has(set: &[String], item: &str) -> bool {
    set.iter().any(|s| s == item)
}

fn has_all(set: &[String], items: &[String]) -> bool {
    items.iter().all(|i| has(set, i))
}

/// Whether the owner's resources cover all of `wanted`: `*`, the exact resource, or for
/// a subresource `*/<subresource>`.
fn resources_cover_all(owner: &[String], wanted: &[String]) -> bool {
    if has(owner, ALL) || has_all(owner, wanted) {
        return true;
    }
    wanted.iter().all(|path| {
        if has(owner, path) {
            return true;
        }
        match path.split_once('/') {
            Some((_, sub)) => has(owner, &format!("*/{sub}")),
            None => false,
        }
    })
}

fn non_resource_url_covers(owner: &str, path: &str) -> bool {
    owner == path || (owner.ends_with('*') && path.starts_with(owner.trim_end_matches('*')))
}

/// Whether `owner` (any shape) covers the atomic rule `sub` (upstream's `ruleCovers`).
/// A rule naming resources covers only requests for those names; one naming none covers
/// every name, but a named grant never covers an unnamed one.
fn rule_covers(owner: &PolicyRule, sub: &PolicyRule) -> bool {
    let verbs = has(&owner.verbs, ALL) || has_all(&owner.verbs, &sub.verbs);
    let groups = has(api_groups(owner), ALL) || has_all(api_groups(owner), api_groups(sub));
    let resources = resources_cover_all(resources(owner), resources(sub));
    let urls = non_resource_urls(sub).iter().all(|path| {
        non_resource_urls(owner)
            .iter()
            .any(|o| non_resource_url_covers(o, path))
    });
    let owner_names = resource_names(owner);
    let names = if resource_names(sub).is_empty() {
        owner_names.is_empty()
    } else {
        owner_names.is_empty() || has_all(owner_names, resource_names(sub))
    };
    verbs && groups && resources && names && urls
}

/// Merges rules that have one API group, one resource, at most one resource name and no
/// URLs and differ only in verbs (upstream's `CompactRules`), so the atomic rules
/// [`covers`] reports read as one line per resource.
pub fn compact_rules(rules: &[PolicyRule]) -> Vec<PolicyRule> {
    let mut compacted = Vec::new();
    // Merged rules in first-seen order (upstream's map order is random, but the
    // message sorts its lines anyway).
    let mut simple: Vec<(SimpleKey, PolicyRule)> = Vec::new();
    for rule in rules {
        match simple_key(rule) {
            Some(key) => match simple.iter_mut().find(|(k, _)| *k == key) {
                Some((_, merged)) => merged.verbs.extend(rule.verbs.iter().cloned()),
                None => simple.push((key, rule.clone())),
            },
            None => compacted.push(rule.clone()),
        }
    }
    compacted.extend(simple.into_iter().map(|(_, r)| r));
    compacted
}

/// The API group, resource and (optional) resource name of a rule [`compact_rules`]
/// can merge.
type SimpleKey = (String, String, Option<String>);

fn simple_key(rule: &PolicyRule) -> Option<SimpleKey> {
    let names = resource_names(rule);
    match (api_groups(rule), resources(rule)) {
        ([group], [resource]) if names.len() <= 1 && non_resource_urls(rule).is_empty() => {
            Some((group.clone(), resource.clone(), names.first().cloned()))
        }
        _ => None,
    }
}

/// The message of a refused role or binding write (upstream's `ConfirmNoEscalation`):
///
/// ```text
/// user "bob" (groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:
/// {APIGroups:[""], Resources:["pods"], Verbs:["get"]}
/// ```
///
/// `missing` is what [`covers`] reported; it is compacted and printed one rule per line,
/// sorted and de-duplicated. `resolution_errors` are the errors [`rules_for`] met
/// finding the requester's rules, appended as upstream does.
///
/// [`rules_for`]: super::rules_for
pub fn escalation_message(
    user: &User,
    missing: &[PolicyRule],
    resolution_errors: &[String],
) -> String {
    let mut lines: Vec<String> = compact_rules(missing).iter().map(compact_string).collect();
    lines.sort();
    lines.dedup();
    let mut msg = format!(
        "user {} (groups={}) is attempting to grant RBAC permissions not currently held:\n{}",
        go_quote(&user.name),
        go_quote_list(&user.groups),
        lines.join("\n")
    );
    if !resolution_errors.is_empty() {
        // Upstream prints a one-element slice holding the aggregate error.
        msg.push_str(&format!(
            "; resolution errors: [{}]",
            super::resolver::aggregate(resolution_errors)
        ));
    }
    msg
}
