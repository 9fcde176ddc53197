//! `rule_allows` against upstream's `RuleAllows` cases.

use super::{named, rule, urls};
use crate::rbac::rules::{compact_string, go_quote, go_quote_list};
use crate::rbac::{rule_allows, Attributes, User};

fn res(verb: &str, group: &str, resource: &str, name: &str) -> Attributes {
    Attributes::resource(&User::new("u", &[]), verb, group, resource, "ns", name)
}

fn path(verb: &str, p: &str) -> Attributes {
    Attributes::non_resource(&User::new("u", &[]), verb, p)
}

#[test]
fn resource_rules_match_verbs_groups_resources_and_names() {
    let cases = [
        // (rule, request, allowed)
        (
            rule(&["get"], &[""], &["pods"]),
            res("get", "", "pods", "p"),
            true,
        ),
        (
            rule(&["get"], &[""], &["pods"]),
            res("list", "", "pods", ""),
            false,
        ),
        (
            rule(&["*"], &[""], &["pods"]),
            res("deletecollection", "", "pods", ""),
            true,
        ),
        (
            rule(&["get"], &["apps"], &["pods"]),
            res("get", "", "pods", "p"),
            false,
        ),
        (
            rule(&["get"], &["*"], &["deployments"]),
            res("get", "apps", "deployments", "d"),
            true,
        ),
        (
            rule(&["get"], &[""], &["*"]),
            res("get", "", "secrets", "s"),
            true,
        ),
        // The whole resource does not grant its subresources, and vice versa.
        (
            rule(&["get"], &[""], &["pods"]),
            res("get", "", "pods/log", "p"),
            false,
        ),
        (
            rule(&["get"], &[""], &["pods/log"]),
            res("get", "", "pods/log", "p"),
            true,
        ),
        (
            rule(&["get"], &[""], &["pods/log"]),
            res("get", "", "pods", "p"),
            false,
        ),
        // `*/sub` covers that subresource of anything, but not the resource itself.
        (
            rule(&["get"], &["*"], &["*/scale"]),
            res("get", "apps", "deployments/scale", "d"),
            true,
        ),
        (
            rule(&["get"], &["*"], &["*/scale"]),
            res("get", "apps", "deployments/status", "d"),
            false,
        ),
        (
            rule(&["get"], &["*"], &["*/scale"]),
            res("get", "apps", "deployments", "d"),
            false,
        ),
        // `*` covers subresources too.
        (
            rule(&["get"], &[""], &["*"]),
            res("get", "", "pods/exec", "p"),
            true,
        ),
        // Resource names restrict to those objects, and never match a collection.
        (
            named(&["get"], &[""], &["configmaps"], &["a"]),
            res("get", "", "configmaps", "a"),
            true,
        ),
        (
            named(&["get"], &[""], &["configmaps"], &["a"]),
            res("get", "", "configmaps", "b"),
            false,
        ),
        (
            named(&["list"], &[""], &["configmaps"], &["a"]),
            res("list", "", "configmaps", ""),
            false,
        ),
        // A resource rule never matches a non-resource request, and vice versa.
        (
            rule(&["get"], &["*"], &["*"]),
            path("get", "/healthz"),
            false,
        ),
        (urls(&["get"], &["*"]), res("get", "", "pods", "p"), false),
    ];
    for (i, (r, attrs, want)) in cases.iter().enumerate() {
        assert_eq!(rule_allows(attrs, r), *want, "case {i}: {r:?} vs {attrs:?}");
    }
}

#[test]
fn non_resource_rules_match_exact_paths_and_star_prefixes() {
    let cases = [
        (urls(&["get"], &["/healthz"]), path("get", "/healthz"), true),
        (
            urls(&["get"], &["/healthz"]),
            path("get", "/healthz/etcd"),
            false,
        ),
        (
            urls(&["get"], &["/healthz"]),
            path("post", "/healthz"),
            false,
        ),
        (
            urls(&["get"], &["/healthz/*"]),
            path("get", "/healthz/etcd"),
            true,
        ),
        // The stem keeps its slash: `/healthz/*` does not cover `/healthz`.
        (
            urls(&["get"], &["/healthz/*"]),
            path("get", "/healthz"),
            false,
        ),
        (urls(&["get"], &["/api*"]), path("get", "/apis/apps"), true),
        (urls(&["*"], &["*"]), path("delete", "/anything"), true),
        (
            urls(&["get"], &["/version", "/version/"]),
            path("get", "/version/"),
            true,
        ),
    ];
    for (i, (r, attrs, want)) in cases.iter().enumerate() {
        assert_eq!(rule_allows(attrs, r), *want, "case {i}: {r:?} vs {attrs:?}");
    }
}

#[test]
fn compact_string_prints_non_empty_lists_go_quoted() {
    assert_eq!(
        compact_string(&rule(&["get", "list"], &[""], &["pods"])),
        r#"{APIGroups:[""], Resources:["pods"], Verbs:["get" "list"]}"#
    );
    assert_eq!(
        compact_string(&named(&["update"], &[""], &["configmaps"], &["a"])),
        r#"{APIGroups:[""], Resources:["configmaps"], ResourceNames:["a"], Verbs:["update"]}"#
    );
    assert_eq!(
        compact_string(&urls(&["get"], &["/metrics"])),
        r#"{NonResourceURLs:["/metrics"], Verbs:["get"]}"#
    );
}

#[test]
fn go_quoting_escapes_like_strconv_quote() {
    assert_eq!(go_quote(r#"a"b\c"#), r#""a\"b\\c""#);
    assert_eq!(go_quote("tab\there\n"), r#""tab\there\n""#);
    assert_eq!(go_quote("\u{1}"), r#""\x01""#);
    assert_eq!(go_quote("ünï"), "\"ünï\"");
    assert_eq!(go_quote("a\u{a0}b c"), r#""a\u00a0b c""#);
    assert_eq!(go_quote_list::<&str>(&[]), "[]");
    assert_eq!(go_quote_list(&["a", "b"]), r#"["a" "b"]"#);
}
