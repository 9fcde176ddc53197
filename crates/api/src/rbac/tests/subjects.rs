//! Which binding subjects a user is.

use super::subject;
use crate::rbac::subjects::{applies_to, applies_to_user, describe_subject};
use crate::rbac::User;

#[test]
fn subjects_apply_by_kind() {
    let alice = User::new("alice", &["devs", "system:authenticated"]);
    let sa = User::new(
        "system:serviceaccount:team:builder",
        &["system:serviceaccounts", "system:serviceaccounts:team"],
    );
    let cases = [
        // (user, subject, binding namespace, applies)
        (&alice, subject("User", "alice", None), "", true),
        (&alice, subject("User", "bob", None), "", false),
        (&alice, subject("Group", "devs", None), "", true),
        (&alice, subject("Group", "ops", None), "", false),
        // A user subject names no group, and a group subject no user.
        (&alice, subject("User", "devs", None), "", false),
        (&alice, subject("Group", "alice", None), "", false),
        (
            &sa,
            subject("ServiceAccount", "builder", Some("team")),
            "",
            true,
        ),
        (
            &sa,
            subject("ServiceAccount", "builder", Some("other")),
            "team",
            false,
        ),
        (
            &sa,
            subject("ServiceAccount", "deployer", Some("team")),
            "",
            false,
        ),
        // The namespace defaults to the binding's...
        (
            &sa,
            subject("ServiceAccount", "builder", None),
            "team",
            true,
        ),
        (
            &sa,
            subject("ServiceAccount", "builder", Some("")),
            "team",
            true,
        ),
        (
            &sa,
            subject("ServiceAccount", "builder", None),
            "other",
            false,
        ),
        // ...and a cluster binding has none, so it matches no one.
        (&sa, subject("ServiceAccount", "builder", None), "", false),
        // The service account's user name works as a User subject.
        (
            &sa,
            subject("User", "system:serviceaccount:team:builder", None),
            "",
            true,
        ),
        (
            &sa,
            subject("Group", "system:serviceaccounts:team", None),
            "",
            true,
        ),
        // A user merely named like a service account is one.
        (
            &alice,
            subject("ServiceAccount", "alice", Some("team")),
            "",
            false,
        ),
        (&alice, subject("Robot", "alice", None), "", false),
    ];
    for (i, (user, s, ns, want)) in cases.iter().enumerate() {
        assert_eq!(
            applies_to_user(user, s, ns),
            *want,
            "case {i}: {s:?} in {ns:?}"
        );
    }
}

#[test]
fn applies_to_reports_the_first_matching_subject() {
    let alice = User::new("alice", &["devs"]);
    let subjects = [
        subject("User", "bob", None),
        subject("Group", "devs", None),
        subject("User", "alice", None),
    ];
    assert_eq!(applies_to(&alice, &subjects, ""), Some(1));
    assert_eq!(applies_to(&User::new("carol", &[]), &subjects, ""), None);
}

#[test]
fn subjects_are_described_as_upstream_reasons_name_them() {
    assert_eq!(
        describe_subject(&subject("User", "alice", None), ""),
        r#"User "alice""#
    );
    assert_eq!(
        describe_subject(&subject("Group", "devs", None), ""),
        r#"Group "devs""#
    );
    assert_eq!(
        describe_subject(&subject("ServiceAccount", "builder", Some("team")), ""),
        r#"ServiceAccount "builder/team""#
    );
    assert_eq!(
        describe_subject(&subject("ServiceAccount", "builder", None), "ci"),
        r#"ServiceAccount "builder/ci""#
    );
}
