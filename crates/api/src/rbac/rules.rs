//! Whether one `PolicyRule` allows a request: upstream's `RuleAllows` and the matchers of
//! `pkg/apis/rbac/v1/evaluation_helpers.go`, plus the compact text a rule is shown as in
//! escalation errors.

use k8s_openapi::api::rbac::v1::PolicyRule;

use super::attributes::Attributes;

/// Matches every verb, API group or resource.
pub const ALL: &str = "*";

/// The rule's lists as slices: k8s-openapi keeps the optional ones as `Option<Vec>`,
/// and upstream treats an absent list as an empty one.
pub(crate) fn api_groups(rule: &PolicyRule) -> &[String] {
    rule.api_groups.as_deref().unwrap_or_default()
}

pub(crate) fn resources(rule: &PolicyRule) -> &[String] {
    rule.resources.as_deref().unwrap_or_default()
}

pub(crate) fn resource_names(rule: &PolicyRule) -> &[String] {
    rule.resource_names.as_deref().unwrap_or_default()
}

pub(crate) fn non_resource_urls(rule: &PolicyRule) -> &[String] {
    rule.non_resource_urls.as_deref().unwrap_or_default()
}

/// Whether `rule` allows the request (upstream's `RuleAllows`). A resource request must
/// match a verb, an API group, a resource (`resource/subresource`, `*/subresource` or
/// `*`) and, when the rule names objects, the object's name; a non-resource request a
/// verb and a URL (`*`, exact, or a prefix ending in `*`).
pub fn rule_allows(attrs: &Attributes, rule: &PolicyRule) -> bool {
    if !verb_matches(rule, &attrs.verb) {
        return false;
    }
    if attrs.resource_request {
        let combined;
        let resource = if attrs.subresource.is_empty() {
            attrs.resource.as_str()
        } else {
            combined = format!("{}/{}", attrs.resource, attrs.subresource);
            combined.as_str()
        };
        api_group_matches(rule, &attrs.api_group)
            && resource_matches(rule, resource, &attrs.subresource)
            && resource_name_matches(rule, &attrs.name)
    } else {
        non_resource_url_matches(rule, &attrs.path)
    }
}

/// Whether any of `rules` allows the request (upstream's `RulesAllow`).
pub fn rules_allow(attrs: &Attributes, rules: &[PolicyRule]) -> bool {
    rules.iter().any(|r| rule_allows(attrs, r))
}

/// `*` or the verb itself.
pub fn verb_matches(rule: &PolicyRule, verb: &str) -> bool {
    rule.verbs.iter().any(|v| v == ALL || v == verb)
}

/// `*` or the group itself (`""` is the core group).
pub fn api_group_matches(rule: &PolicyRule, group: &str) -> bool {
    api_groups(rule).iter().any(|g| g == ALL || g == group)
}

/// `*`, the combined `resource/subresource`, or `*/subresource` when the request is
/// for a subresource.
pub fn resource_matches(rule: &PolicyRule, combined: &str, subresource: &str) -> bool {
    resources(rule).iter().any(|r| {
        r == ALL
            || r == combined
            || (!subresource.is_empty()
                && r.strip_prefix("*/").is_some_and(|sub| sub == subresource))
    })
}

/// A rule without resource names matches every name (including the empty name of
/// collection requests); one with names only those.
pub fn resource_name_matches(rule: &PolicyRule, name: &str) -> bool {
    let names = resource_names(rule);
    names.is_empty() || names.iter().any(|n| n == name)
}

/// `*`, the path itself, or a rule URL ending in `*` whose stem prefixes the path.
pub fn non_resource_url_matches(rule: &PolicyRule, path: &str) -> bool {
    non_resource_urls(rule)
        .iter()
        .any(|u| u == ALL || u == path || url_prefix_matches(u, path))
}

/// A rule URL ending in `*` covers every path starting with what precedes the stars
/// (upstream trims all trailing stars).
pub(crate) fn url_prefix_matches(rule_url: &str, path: &str) -> bool {
    rule_url.ends_with('*') && path.starts_with(rule_url.trim_end_matches('*'))
}

/// Upstream's `CompactString`: the rule's non-empty lists, Go-quoted, in a fixed order,
/// e.g. `{APIGroups:[""], Resources:["pods"], Verbs:["get"]}`.
pub fn compact_string(rule: &PolicyRule) -> String {
    let mut parts = Vec::new();
    let fields: [(&str, &[String]); 5] = [
        ("APIGroups", api_groups(rule)),
        ("Resources", resources(rule)),
        ("NonResourceURLs", non_resource_urls(rule)),
        ("ResourceNames", resource_names(rule)),
        ("Verbs", &rule.verbs),
    ];
    for (label, values) in fields {
        if !values.is_empty() {
            parts.push(format!("{label}:{}", go_quote_list(values)));
        }
    }
    format!("{{{}}}", parts.join(", "))
}

pub use crate::go_quote::go_quote;

/// Go's `%q` of a `[]string`: `["a" "b"]` (space-separated).
pub fn go_quote_list<S: AsRef<str>>(values: &[S]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| go_quote(v.as_ref())).collect();
    format!("[{}]", quoted.join(" "))
}
