//! Escalation checks: `covers` and the refusal message.

use super::{named, rule, urls};
use crate::rbac::covers::{breakdown_rule, compact_rules, full_authority};
use crate::rbac::{covers, escalation_message, User};

#[test]
fn owners_cover_requested_rules_as_upstream() {
    let cases = [
        // (owner, requested, covered)
        (
            vec![rule(&["*"], &["*"], &["*"])],
            vec![rule(&["get"], &["apps"], &["deployments/scale"])],
            true,
        ),
        (
            vec![rule(&["get", "list"], &[""], &["pods"])],
            vec![rule(&["get"], &[""], &["pods"])],
            true,
        ),
        (
            vec![rule(&["get"], &[""], &["pods"])],
            vec![rule(&["get", "list"], &[""], &["pods"])],
            false,
        ),
        // Split across owner rules still covers, atom by atom.
        (
            vec![
                rule(&["get"], &[""], &["pods"]),
                rule(&["list"], &[""], &["pods"]),
            ],
            vec![rule(&["get", "list"], &[""], &["pods"])],
            true,
        ),
        (
            vec![rule(&["get"], &["*"], &["pods"])],
            vec![rule(&["get"], &["apps", ""], &["pods"])],
            true,
        ),
        (
            vec![rule(&["get"], &[""], &["pods"])],
            vec![rule(&["get"], &["apps"], &["pods"])],
            false,
        ),
        // Subresources: `*/x` covers `r/x`; the resource does not cover its subresources.
        (
            vec![rule(&["get"], &["*"], &["*/scale"])],
            vec![rule(&["get"], &["apps"], &["deployments/scale"])],
            true,
        ),
        (
            vec![rule(&["get"], &[""], &["pods"])],
            vec![rule(&["get"], &[""], &["pods/log"])],
            false,
        ),
        (
            vec![rule(&["get"], &["*"], &["*/scale"])],
            vec![rule(&["get"], &["apps"], &["deployments"])],
            false,
        ),
        // Resource names: an unnamed grant covers any name, a named one only its names,
        // and never an unnamed request.
        (
            vec![rule(&["get"], &[""], &["secrets"])],
            vec![named(&["get"], &[""], &["secrets"], &["a"])],
            true,
        ),
        (
            vec![named(&["get"], &[""], &["secrets"], &["a", "b"])],
            vec![named(&["get"], &[""], &["secrets"], &["b"])],
            true,
        ),
        (
            vec![named(&["get"], &[""], &["secrets"], &["a"])],
            vec![named(&["get"], &[""], &["secrets"], &["c"])],
            false,
        ),
        (
            vec![named(&["get"], &[""], &["secrets"], &["a"])],
            vec![rule(&["get"], &[""], &["secrets"])],
            false,
        ),
        // Non-resource URLs: exact, star prefix, `*`; resource grants don't cover URLs.
        (
            vec![urls(&["get"], &["/healthz"])],
            vec![urls(&["get"], &["/healthz"])],
            true,
        ),
        (
            vec![urls(&["get"], &["/healthz/*"])],
            vec![urls(&["get"], &["/healthz/etcd"])],
            true,
        ),
        (
            vec![urls(&["get"], &["/healthz/*"])],
            vec![urls(&["get"], &["/healthz"])],
            false,
        ),
        (
            vec![urls(&["*"], &["*"])],
            vec![urls(&["post"], &["/anything"])],
            true,
        ),
        (
            vec![rule(&["*"], &["*"], &["*"])],
            vec![urls(&["get"], &["/metrics"])],
            false,
        ),
        (
            full_authority(),
            vec![
                urls(&["get"], &["/metrics"]),
                rule(&["escalate"], &["rbac.authorization.k8s.io"], &["roles"]),
            ],
            true,
        ),
        // Nothing requested is always covered.
        (vec![], vec![], true),
    ];
    for (i, (owner, requested, want)) in cases.iter().enumerate() {
        let (ok, missing) = covers(owner, requested);
        assert_eq!(ok, *want, "case {i}: missing {missing:?}");
        assert_eq!(missing.is_empty(), *want, "case {i}");
    }
}

#[test]
fn uncovered_rules_are_reported_atomically() {
    let (ok, missing) = covers(
        &[rule(&["get"], &[""], &["pods"])],
        &[rule(&["get", "delete"], &[""], &["pods", "services"])],
    );
    assert!(!ok);
    assert_eq!(
        missing,
        vec![
            rule(&["delete"], &[""], &["pods"]),
            rule(&["get"], &[""], &["services"]),
            rule(&["delete"], &[""], &["services"]),
        ]
    );
}

#[test]
fn breakdown_yields_one_atom_per_group_resource_verb_and_name() {
    let atoms = breakdown_rule(&named(
        &["get", "update"],
        &["", "apps"],
        &["x"],
        &["a", "b"],
    ));
    assert_eq!(atoms.len(), 8);
    assert!(atoms.contains(&named(&["update"], &["apps"], &["x"], &["b"])));
    assert_eq!(
        breakdown_rule(&urls(&["get", "head"], &["/a", "/b"])).len(),
        4
    );
}

#[test]
fn compaction_merges_verbs_of_the_same_simple_resource() {
    let compacted = compact_rules(&[
        rule(&["get"], &[""], &["pods"]),
        urls(&["get"], &["/x"]),
        rule(&["list"], &[""], &["pods"]),
        named(&["get"], &[""], &["secrets"], &["a"]),
        named(&["list"], &[""], &["secrets"], &["b"]),
    ]);
    assert_eq!(
        compacted,
        vec![
            urls(&["get"], &["/x"]),
            rule(&["get", "list"], &[""], &["pods"]),
            named(&["get"], &[""], &["secrets"], &["a"]),
            named(&["list"], &[""], &["secrets"], &["b"]),
        ]
    );
}

#[test]
fn escalation_message_matches_upstream_text() {
    let bob = User::new("bob", &["system:authenticated", "devs"]);
    let (_, missing) = covers(
        &[],
        &[
            rule(&["get", "list"], &[""], &["pods"]),
            urls(&["get"], &["/metrics"]),
        ],
    );
    assert_eq!(
        escalation_message(&bob, &missing, &[]),
        "user \"bob\" (groups=[\"system:authenticated\" \"devs\"]) is attempting to grant RBAC permissions not currently held:\n\
         {APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"get\" \"list\"]}\n\
         {NonResourceURLs:[\"/metrics\"], Verbs:[\"get\"]}"
    );
}

#[test]
fn escalation_message_appends_resolution_errors() {
    let (_, missing) = covers(&[], &[rule(&["get"], &[""], &["pods"])]);
    let msg = escalation_message(
        &User::new("bob", &[]),
        &missing,
        &[r#"clusterrole.rbac.authorization.k8s.io "gone" not found"#.to_string()],
    );
    assert_eq!(
        msg,
        "user \"bob\" (groups=[]) is attempting to grant RBAC permissions not currently held:\n\
         {APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"get\"]}; \
         resolution errors: [clusterrole.rbac.authorization.k8s.io \"gone\" not found]"
    );
}
