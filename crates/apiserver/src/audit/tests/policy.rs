use crate::audit::{AuditAttributes, Level, Policy, Stage};

const POLICY: &str = r#"
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
omitManagedFields: true
rules:
# 0: kube-proxy's watches are noise
- level: None
  users: ["system:kube-proxy"]
  verbs: ["watch"]
  resources:
  - group: ""
    resources: ["endpoints", "services"]
# 1: nodes reading nodes
- level: None
  userGroups: ["system:nodes"]
  verbs: ["get"]
  resources:
  - group: ""
    resources: ["nodes"]
# 2: health checks
- level: None
  nonResourceURLs: ["/healthz*", "/version"]
# 3: never the contents of secrets
- level: Metadata
  resources:
  - group: ""
    resources: ["secrets", "configmaps"]
  omitStages: [ResponseStarted]
# 4: subresources
- level: Request
  resources:
  - group: ""
    resources: ["pods/status", "*/scale"]
# 5: one deployment in full
- level: RequestResponse
  resources:
  - group: "apps"
    resources: ["deployments/*"]
    resourceNames: ["web"]
  omitManagedFields: false
# 6: system and cluster-scoped
- level: Request
  namespaces: ["kube-system", ""]
# 7: everything else
- level: Metadata
  omitStages: [Panic]
"#;

fn policy() -> Policy {
    Policy::from_bytes(POLICY.as_bytes()).unwrap_or_else(|e| panic!("{e}"))
}

fn resource(user: &str, verb: &str, group: &str, res: &str, ns: &str) -> AuditAttributes {
    let (resource, subresource) = res.split_once('/').unwrap_or((res, ""));
    AuditAttributes {
        user: user.to_string(),
        groups: vec!["system:authenticated".to_string()],
        verb: verb.to_string(),
        resource_request: true,
        api_group: group.to_string(),
        api_version: "v1".to_string(),
        resource: resource.to_string(),
        subresource: subresource.to_string(),
        namespace: ns.to_string(),
        name: String::new(),
        path: String::new(),
    }
}

fn non_resource(path: &str) -> AuditAttributes {
    AuditAttributes {
        user: "alice".to_string(),
        verb: "get".to_string(),
        path: path.to_string(),
        ..Default::default()
    }
}

fn named(mut a: AuditAttributes, name: &str) -> AuditAttributes {
    a.name = name.to_string();
    a
}

fn in_groups(mut a: AuditAttributes, groups: &[&str]) -> AuditAttributes {
    a.groups = groups.iter().map(|g| g.to_string()).collect();
    a
}

use Stage::{Panic, RequestReceived, ResponseStarted};

#[test]
fn first_matching_rule_decides_level_stages_and_managed_fields() {
    let p = policy();
    let cases: Vec<(&str, AuditAttributes, Level, Vec<Stage>, bool)> = vec![
        (
            "user and verb and resource",
            resource("system:kube-proxy", "watch", "", "endpoints", "default"),
            Level::None,
            vec![RequestReceived],
            true,
        ),
        (
            "same user, other verb falls through",
            resource("system:kube-proxy", "list", "", "endpoints", "default"),
            Level::Metadata,
            vec![RequestReceived, Panic],
            true,
        ),
        (
            "other user, same verb falls through",
            resource("alice", "watch", "", "services", "default"),
            Level::Metadata,
            vec![RequestReceived, Panic],
            true,
        ),
        (
            "any of the user's groups",
            in_groups(
                resource("system:node:n1", "get", "", "nodes", ""),
                &["system:authenticated", "system:nodes"],
            ),
            Level::None,
            vec![RequestReceived],
            true,
        ),
        (
            "group rule, other verb: cluster-scoped matches namespace \"\"",
            in_groups(
                resource("system:node:n1", "list", "", "nodes", ""),
                &["system:nodes"],
            ),
            Level::Request,
            vec![RequestReceived],
            true,
        ),
        (
            "not in the group",
            resource("bob", "get", "", "nodes", ""),
            Level::Request,
            vec![RequestReceived],
            true,
        ),
        (
            "non-resource prefix wildcard",
            non_resource("/healthz/etcd"),
            Level::None,
            vec![RequestReceived],
            true,
        ),
        (
            "non-resource wildcard covers the bare path",
            non_resource("/healthz"),
            Level::None,
            vec![RequestReceived],
            true,
        ),
        (
            "non-resource exact",
            non_resource("/version"),
            Level::None,
            vec![RequestReceived],
            true,
        ),
        (
            "non-resource exact is not a prefix",
            non_resource("/versions"),
            Level::Metadata,
            vec![RequestReceived, Panic],
            true,
        ),
        (
            "resource request never matches non-resource URLs",
            AuditAttributes {
                path: "/healthz".to_string(),
                ..resource("alice", "get", "", "pods", "default")
            },
            Level::Metadata,
            vec![RequestReceived, Panic],
            true,
        ),
        (
            "rule stages joined with the policy's",
            resource("alice", "get", "", "secrets", "default"),
            Level::Metadata,
            vec![RequestReceived, ResponseStarted],
            true,
        ),
        (
            "earlier rule beats the namespace rule",
            resource("alice", "get", "", "secrets", "kube-system"),
            Level::Metadata,
            vec![RequestReceived, ResponseStarted],
            true,
        ),
        (
            "resource/subresource",
            resource("alice", "update", "", "pods/status", "default"),
            Level::Request,
            vec![RequestReceived],
            true,
        ),
        (
            "a subresource rule does not cover the resource",
            resource("alice", "update", "", "pods", "default"),
            Level::Metadata,
            vec![RequestReceived, Panic],
            true,
        ),
        (
            "other subresource of the same resource",
            resource("alice", "get", "", "pods/log", "default"),
            Level::Metadata,
            vec![RequestReceived, Panic],
            true,
        ),
        (
            "*/subresource",
            resource(
                "alice",
                "update",
                "",
                "replicationcontrollers/scale",
                "default",
            ),
            Level::Request,
            vec![RequestReceived],
            true,
        ),
        (
            "groups must match: apps scale is not core scale",
            named(
                resource("alice", "update", "apps", "statefulsets/scale", "default"),
                "web",
            ),
            Level::Metadata,
            vec![RequestReceived, Panic],
            true,
        ),
        (
            "resource/* with resourceNames; rule overrides omitManagedFields",
            named(
                resource("alice", "update", "apps", "deployments/scale", "default"),
                "web",
            ),
            Level::RequestResponse,
            vec![RequestReceived],
            false,
        ),
        (
            "resource/* also covers the resource itself, as upstream's checker does",
            named(
                resource("alice", "get", "apps", "deployments", "default"),
                "web",
            ),
            Level::RequestResponse,
            vec![RequestReceived],
            false,
        ),
        (
            "resourceNames limit the rule",
            named(
                resource("alice", "update", "apps", "deployments/scale", "default"),
                "api",
            ),
            Level::Metadata,
            vec![RequestReceived, Panic],
            true,
        ),
        (
            "namespaces rule",
            resource("alice", "create", "", "pods", "kube-system"),
            Level::Request,
            vec![RequestReceived],
            true,
        ),
    ];
    for (name, attrs, level, stages, omit_managed) in cases {
        assert_eq!(
            p.evaluate(&attrs),
            (level, stages, omit_managed),
            "{name}: {attrs:?}"
        );
    }
}

#[test]
fn no_matching_rule_is_level_none_with_the_policy_settings() {
    let p = Policy::from_bytes(
        br#"
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [ResponseStarted, RequestReceived]
rules:
- level: RequestResponse
  verbs: [delete]
"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let attrs = resource("alice", "get", "", "pods", "default");
    assert_eq!(
        p.evaluate(&attrs),
        (Level::None, vec![RequestReceived, ResponseStarted], false)
    );
    let attrs = resource("alice", "delete", "", "pods", "default");
    assert_eq!(p.evaluate(&attrs).0, Level::RequestResponse);
}

#[test]
fn star_non_resource_url_and_empty_resource_list_match_everything_of_their_kind() {
    let p = Policy::from_bytes(
        br#"
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: Request
  nonResourceURLs: ["*"]
- level: Metadata
  resources: [{group: "batch"}]
"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.evaluate(&non_resource("/anything")).0, Level::Request);
    assert_eq!(
        p.evaluate(&resource("a", "get", "batch", "jobs/status", "x"))
            .0,
        Level::Metadata
    );
    assert_eq!(
        p.evaluate(&resource("a", "get", "", "pods", "x")).0,
        Level::None
    );
}

#[test]
fn invalid_policies_are_refused_with_the_field_path() {
    let rule = |r: &str| format!("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- {r}\n");
    let cases = [
        ("missing level", rule("verbs: [get]"), "rules[0].level: Required value"),
        (
            "unknown level",
            rule("level: Everything"),
            "rules[0].level: Unsupported value: \"Everything\": supported values: \"None\", \
             \"Metadata\", \"Request\", \"RequestResponse\"",
        ),
        (
            "url without slash",
            rule("level: None\n  nonResourceURLs: [healthz]"),
            "rules[0].nonResourceURLs[0]: Invalid value: \"healthz\": non-resource URL rules \
             must begin with a '/' character",
        ),
        (
            "wildcard not last",
            rule("level: None\n  nonResourceURLs: ['/a*/b']"),
            "non-resource URL wildcards '*' must be the final character of the rule",
        ),
        (
            "resources and urls",
            rule("level: None\n  nonResourceURLs: [/metrics]\n  resources: [{group: ''}]"),
            "rules cannot apply to both regular resources and non-resource URLs",
        ),
        (
            "namespaces and urls",
            rule("level: None\n  nonResourceURLs: [/metrics]\n  namespaces: [default]"),
            "rules cannot apply to both regular resources and non-resource URLs",
        ),
        (
            "bad group",
            rule("level: None\n  resources: [{group: 'apps/v1'}]"),
            "rules[0].resources.group: Invalid value: \"apps/v1\"",
        ),
        (
            "names without resources",
            rule("level: None\n  resources: [{group: '', resourceNames: [x]}]"),
            "using resourceNames requires at least one resource",
        ),
        (
            "bad rule stage",
            rule("level: None\n  omitStages: [Sometime]"),
            "rules[0].omitStages[0]: Invalid value: \"Sometime\": allowed stages are \
             RequestReceived,ResponseStarted,ResponseComplete,Panic",
        ),
        (
            "bad policy stage",
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [Never]\nrules:\n- level: None\n"
                .to_string(),
            "omitStages[0]: Invalid value: \"Never\"",
        ),
        (
            "no rules",
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: []\n".to_string(),
            "loaded illegal policy with 0 rules",
        ),
        (
            "wrong version",
            rule("level: None").replace("audit.k8s.io/v1", "audit.k8s.io/v1beta1"),
            "no kind \"Policy\" is registered for version \"audit.k8s.io/v1beta1\"",
        ),
        (
            "missing kind",
            rule("level: None").replace("kind: Policy\n", ""),
            "Object 'Kind' is missing",
        ),
        ("not yaml", "rules: [".to_string(), "failed decoding"),
    ];
    for (name, yaml, want) in cases {
        match Policy::from_bytes(yaml.as_bytes()) {
            Ok(_) => panic!("{name}: accepted"),
            Err(e) => assert!(e.to_string().contains(want), "{name}: got {e}, want {want}"),
        }
    }
}

#[test]
fn load_reads_a_file() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("policy.yaml");
    std::fs::write(&path, POLICY).unwrap_or_else(|e| panic!("{e}"));
    let p = Policy::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.rules().len(), 8);
    let err = Policy::load(&dir.path().join("nope.yaml")).expect_err("missing file");
    assert!(err.to_string().contains("nope.yaml"), "{err}");
}
