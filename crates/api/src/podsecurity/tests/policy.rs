//! Namespace policies, evaluation of the three modes, exemptions, workloads and the
//! namespace checks.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::*;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (format!("pod-security.kubernetes.io/{k}"), v.to_string()))
        .collect()
}

#[test]
fn namespace_labels_select_the_policy() {
    let (p, errs) = NamespacePolicy::from_labels(&BTreeMap::new());
    assert_eq!(p, NamespacePolicy::DEFAULT);
    assert!(errs.is_empty());

    // Warn follows a stricter enforce level and its version.
    let (p, errs) = NamespacePolicy::from_labels(&labels(&[
        ("enforce", "baseline"),
        ("enforce-version", "v1.25"),
    ]));
    assert!(errs.is_empty());
    assert_eq!(p.enforce.to_string(), "baseline:v1.25");
    assert_eq!(p.warn.to_string(), "baseline:v1.25");
    assert_eq!(p.audit.to_string(), "privileged:latest");

    // An explicit warn label is kept, with the enforce version when it has none.
    let (p, _) =
        NamespacePolicy::from_labels(&labels(&[("enforce", "restricted"), ("warn", "baseline")]));
    assert_eq!(p.warn.to_string(), "baseline:latest");
    let (p, _) = NamespacePolicy::from_labels(&labels(&[
        ("enforce", "restricted"),
        ("enforce-version", "v1.22"),
        ("warn-version", "v1.30"),
    ]));
    assert_eq!(p.warn.to_string(), "restricted:v1.30");
}

#[test]
fn invalid_labels_fail_closed_for_enforce_and_open_for_audit_and_warn() {
    let (p, errs) = NamespacePolicy::from_labels(&labels(&[
        ("enforce", "bogus"),
        ("audit", "bogus"),
        ("warn", "bogus"),
        ("audit-version", "v2.0"),
    ]));
    assert_eq!(p.enforce.level, Level::Restricted);
    assert_eq!(p.audit, LevelVersion::PRIVILEGED_LATEST);
    assert_eq!(p.warn.level, Level::Privileged);
    let texts: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert_eq!(
        texts,
        [
            "metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: \"bogus\": must be one of privileged, baseline, restricted",
            "metadata.labels[pod-security.kubernetes.io/audit]: Invalid value: \"bogus\": must be one of privileged, baseline, restricted",
            "metadata.labels[pod-security.kubernetes.io/audit-version]: Invalid value: \"v2.0\": must be \"latest\" or \"v1.x\"",
            "metadata.labels[pod-security.kubernetes.io/warn]: Invalid value: \"bogus\": must be one of privileged, baseline, restricted",
        ]
    );
    // An invalid enforce level does not raise warn.
    assert_eq!(p.warn.level, Level::Privileged);
}

#[test]
fn versions_parse_as_upstream() {
    type Parsed = Result<Option<(u32, u32)>, ()>;
    let cases: &[(&str, Parsed)] = &[
        ("latest", Ok(None)),
        ("v1.0", Ok(Some((1, 0)))),
        ("v1.25", Ok(Some((1, 25)))),
        ("v1.05", Err(())),
        ("v1.", Err(())),
        ("v2.0", Err(())),
        ("1.25", Err(())),
        ("v1.25.0", Err(())),
        ("", Err(())),
    ];
    for (s, want) in cases {
        assert_eq!(parse_version(s).map_err(|_| ()), *want, "{s}");
    }
}

#[test]
fn evaluate_pod_enforces_audits_and_warns() {
    let (policy, errs) = NamespacePolicy::from_labels(&labels(&[
        ("enforce", "baseline"),
        ("audit", "restricted"),
        ("warn", "restricted"),
    ]));
    assert!(errs.is_empty());
    let meta = json!({});
    let spec = json!({"containers": [{"name": "c"}]});
    let e = evaluate_pod(&policy, &errs, &meta, &spec, true);
    assert!(e.allowed());
    assert_eq!(e.warnings.len(), 1);
    assert!(e.warnings[0].starts_with("would violate PodSecurity \"restricted:latest\": "));
    assert_eq!(
        e.audit_annotations
            .get(ENFORCE_POLICY_ANNOTATION)
            .map(String::as_str),
        Some("baseline:latest")
    );
    assert_eq!(
        e.audit_annotations.get(AUDIT_VIOLATIONS_ANNOTATION),
        Some(&e.warnings[0])
    );

    // A refused pod gets no warnings.
    let bad = json!({"hostNetwork": true, "containers": [{"name": "c"}]});
    let e = evaluate_pod(&policy, &errs, &meta, &bad, true);
    assert_eq!(
        e.forbidden.as_deref(),
        Some("violates PodSecurity \"baseline:latest\": host namespaces (hostNetwork=true)")
    );
    assert!(e.warnings.is_empty());

    // Workload templates are only audited and warned about.
    let e = evaluate_pod(&policy, &errs, &meta, &bad, false);
    assert!(e.allowed());
    assert_eq!(e.warnings.len(), 1);
    assert!(!e.audit_annotations.contains_key(ENFORCE_POLICY_ANNOTATION));
}

#[test]
fn evaluate_pod_short_cuts_privileged_namespaces_and_reports_label_errors() {
    let spec = json!({"hostNetwork": true, "containers": [{"name": "c"}]});
    let e = evaluate_pod(&NamespacePolicy::DEFAULT, &[], &json!({}), &spec, true);
    assert_eq!(
        e.audit_annotations,
        BTreeMap::from([(
            ENFORCE_POLICY_ANNOTATION.to_string(),
            "privileged:latest".to_string()
        )])
    );
    assert_eq!(
        evaluate_pod(&NamespacePolicy::DEFAULT, &[], &json!({}), &spec, false),
        Evaluation::default()
    );

    let (policy, errs) = NamespacePolicy::from_labels(&labels(&[("enforce", "bogus")]));
    let e = evaluate_pod(&policy, &errs, &json!({}), &spec, true);
    assert_eq!(
        e.audit_annotations.get(ERROR_ANNOTATION).map(String::as_str),
        Some("Failed to parse policy: metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: \"bogus\": must be one of privileged, baseline, restricted")
    );
    assert!(e.forbidden.is_some_and(
        |m| m.starts_with("violates PodSecurity \"restricted:latest\": host namespaces")
    ));
}

#[test]
fn exemptions_apply_in_upstream_order() {
    let ex = Exemptions {
        usernames: vec!["admin".into()],
        runtime_classes: vec!["kata".into()],
        namespaces: vec!["kube-system".into()],
    };
    let spec = json!({"runtimeClassName": "kata"});
    assert_eq!(
        ex.check("kube-system", "admin", &spec),
        Some(Exemption::Namespace)
    );
    assert_eq!(ex.check("default", "admin", &spec), Some(Exemption::User));
    assert_eq!(
        ex.check("default", "bob", &spec),
        Some(Exemption::RuntimeClass)
    );
    assert_eq!(ex.check("default", "bob", &json!({})), None);
    assert_eq!(ex.check("", "", &json!({"runtimeClassName": ""})), None);
    assert_eq!(
        Evaluation::exempt(Exemption::RuntimeClass)
            .audit_annotations
            .get(EXEMPT_ANNOTATION)
            .map(String::as_str),
        Some("runtimeClass")
    );
}

#[test]
fn pod_templates_are_found_per_kind() {
    let template = json!({"metadata": {"labels": {"a": "b"}}, "spec": {"hostPID": true}});
    let cases = [
        ("Deployment", json!({"spec": {"template": template}})),
        ("ReplicaSet", json!({"spec": {"template": template}})),
        ("StatefulSet", json!({"spec": {"template": template}})),
        ("DaemonSet", json!({"spec": {"template": template}})),
        ("Job", json!({"spec": {"template": template}})),
        (
            "ReplicationController",
            json!({"spec": {"template": template}}),
        ),
        (
            "CronJob",
            json!({"spec": {"jobTemplate": {"spec": {"template": template}}}}),
        ),
        ("PodTemplate", json!({"template": template})),
        ("Pod", template.clone()),
    ];
    for (kind, obj) in &cases {
        let (meta, spec) = pod_template_of(kind, obj).unwrap_or((&Value::Null, &Value::Null));
        assert_eq!(meta, &template["metadata"], "{kind}");
        assert_eq!(spec, &template["spec"], "{kind}");
    }
    assert!(pod_template_of("ReplicationController", &json!({"spec": {}})).is_none());
    assert!(pod_template_of("ConfigMap", &json!({})).is_none());
    // A workload without a template is checked as an empty pod, as upstream does.
    let no_template = json!({"spec": {}});
    assert!(pod_template_of("Deployment", &no_template)
        .is_some_and(|(meta, spec)| meta.is_null() && spec.is_null()));
    assert!(has_pod_spec("batch", "cronjobs"));
    assert!(has_pod_spec("", "podtemplates"));
    assert!(!has_pod_spec("", "configmaps"));
    assert!(!has_pod_spec("extensions", "deployments"));
}

#[test]
fn only_image_and_container_changes_are_significant_updates() {
    let old = json!({"spec": {"containers": [{"name": "a", "image": "x"}],
                              "ephemeralContainers": [{"name": "e", "image": "y"}]},
                     "metadata": {"labels": {"a": "1"}}});
    let mut relabelled = old.clone();
    relabelled["metadata"]["labels"]["a"] = json!("2");
    assert!(!is_significant_pod_update(&relabelled, &old));
    let mut new_image = old.clone();
    new_image["spec"]["containers"][0]["image"] = json!("z");
    assert!(is_significant_pod_update(&new_image, &old));
    let mut new_ephemeral = old.clone();
    new_ephemeral["spec"]["ephemeralContainers"] =
        json!([{"name": "e", "image": "y"}, {"name": "f", "image": "y"}]);
    assert!(is_significant_pod_update(&new_ephemeral, &old));
    let mut added_init = old.clone();
    added_init["spec"]["initContainers"] = json!([{"name": "i", "image": "y"}]);
    assert!(is_significant_pod_update(&added_init, &old));
    assert!(ignored_pod_subresource("status"));
    assert!(!ignored_pod_subresource("ephemeralcontainers"));
}

fn namespace(labels: &[(&str, &str)]) -> Value {
    let l: serde_json::Map<String, Value> = labels
        .iter()
        .map(|(k, v)| (format!("pod-security.kubernetes.io/{k}"), json!(v)))
        .collect();
    json!({"metadata": {"name": "ns", "labels": l}})
}

#[test]
fn namespace_updates_check_pods_only_when_enforcement_tightens() {
    let ex = Exemptions::default();
    let d = NamespacePolicy::DEFAULT;
    let allowed = NamespaceOutcome::Allowed { warnings: vec![] };
    let base = namespace(&[("enforce", "baseline")]);
    let restricted_ns = namespace(&[("enforce", "restricted")]);
    assert_eq!(validate_namespace(&base, None, "", &ex, &d), allowed);
    assert_eq!(
        validate_namespace(&restricted_ns, Some(&base), "ns", &ex, &d),
        NamespaceOutcome::CheckPods(LevelVersion::latest(Level::Restricted))
    );
    assert_eq!(
        validate_namespace(&base, Some(&restricted_ns), "ns", &ex, &d),
        allowed
    );
    assert_eq!(
        validate_namespace(&base, Some(&base), "ns", &ex, &d),
        allowed
    );
    // A version change re-checks even at a lower level.
    let base_old = namespace(&[("enforce", "restricted"), ("enforce-version", "v1.20")]);
    assert_eq!(
        validate_namespace(&base, Some(&base_old), "ns", &ex, &d),
        NamespaceOutcome::CheckPods(LevelVersion::latest(Level::Baseline))
    );

    let bad = namespace(&[("enforce", "bogus")]);
    assert!(
        matches!(validate_namespace(&bad, None, "", &ex, &d), NamespaceOutcome::Invalid(e) if e.len() == 1)
    );
    assert!(matches!(
        validate_namespace(&bad, Some(&base), "ns", &ex, &d),
        NamespaceOutcome::Invalid(_)
    ));
    // Unchanged invalid labels do not block the update.
    assert_eq!(validate_namespace(&bad, Some(&bad), "ns", &ex, &d), allowed);

    let ex = Exemptions {
        namespaces: vec!["ns".into()],
        ..Exemptions::default()
    };
    let both = namespace(&[("enforce", "restricted"), ("warn", "baseline")]);
    assert_eq!(
        validate_namespace(&both, Some(&base), "ns", &ex, &d),
        NamespaceOutcome::Allowed {
            warnings: vec!["namespace \"ns\" is exempt from Pod Security, and the policy (enforce=restricted:latest, warn=baseline:latest) will be ignored".to_string()]
        }
    );
}

#[test]
fn existing_pod_warnings_group_pods_by_reasons() {
    let pod = |name: &str, spec: Value, owner: Option<&str>| {
        let mut p = json!({"metadata": {"name": name}, "spec": spec});
        if let Some(uid) = owner {
            p["metadata"]["ownerReferences"] = json!([{"uid": uid, "controller": true}]);
        }
        p
    };
    let host = json!({"hostNetwork": true, "containers": [{"name": "c"}]});
    let privileged =
        json!({"containers": [{"name": "c", "securityContext": {"privileged": true}}]});
    let pods = vec![
        pod("b", host.clone(), None),
        pod("a", host.clone(), Some("rs1")),
        pod("c", host, Some("rs1")),
        pod("z", privileged.clone(), None),
        pod("y", privileged, None),
        pod("ok", json!({"containers": [{"name": "c"}]}), None),
        pod(
            "exempt",
            json!({"hostPID": true, "runtimeClassName": "kata"}),
            None,
        ),
    ];
    let ex = Exemptions {
        runtime_classes: vec!["kata".into()],
        ..Exemptions::default()
    };
    let got = namespace_pod_warnings("ns", &baseline(), &pods, &ex);
    assert_eq!(
        got,
        [
            "existing pods in namespace \"ns\" violate the new PodSecurity enforce level \"baseline:latest\"",
            "a (and 2 other pods): host namespaces",
            "y (and 1 other pod): privileged",
        ]
    );
    assert!(namespace_pod_warnings("ns", &baseline(), &pods[5..6], &ex).is_empty());
}
