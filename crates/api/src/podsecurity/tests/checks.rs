//! The checks themselves: details, version gates, ordering and the aggregate messages.

use serde_json::{json, Value};

use super::*;

#[test]
fn baseline_checks_report_upstream_details() {
    let meta = json!({});
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        (
            "capabilities baseline",
            json!({"containers": [
                {"name": "a", "securityContext": {"capabilities": {"add": ["FOO", "BAR"]}}},
                {"name": "b", "securityContext": {"capabilities": {"add": ["BAR", "BAZ"]}}},
                {"name": "c", "securityContext": {"capabilities": {"add": ["CHOWN"]}}},
            ]}),
            "non-default capabilities",
            r#"containers "a", "b" must not include "BAR", "BAZ", "FOO" in securityContext.capabilities.add"#,
        ),
        (
            "host namespaces",
            json!({"hostNetwork": true, "hostPID": true, "hostIPC": true}),
            "host namespaces",
            "hostNetwork=true, hostPID=true, hostIPC=true",
        ),
        (
            "host path volumes",
            json!({"volumes": [
                {"name": "a", "hostPath": {"path": "/"}},
                {"name": "b", "hostPath": {"path": "/"}},
                {"name": "c", "emptyDir": {}},
            ]}),
            "hostPath volumes",
            r#"volumes "a", "b""#,
        ),
        (
            "one host port",
            json!({"containers": [
                {"name": "a", "ports": [{"containerPort": 10}]},
                {"name": "b", "ports": [{"containerPort": 20, "hostPort": 20}]},
            ]}),
            "hostPort",
            r#"container "b" uses hostPort 20"#,
        ),
        (
            "several host ports",
            json!({"containers": [
                {"name": "a", "ports": [{"containerPort": 10}]},
                {"name": "b", "ports": [{"hostPort": 10}, {"hostPort": 20}]},
                {"name": "c", "ports": [{"hostPort": 30}]},
            ]}),
            "hostPort",
            r#"containers "b", "c" use hostPorts 10, 20, 30"#,
        ),
        (
            "privileged",
            json!({"containers": [
                {"name": "a"},
                {"name": "b", "securityContext": {}},
                {"name": "c", "securityContext": {"privileged": false}},
                {"name": "d", "securityContext": {"privileged": true}},
                {"name": "e", "securityContext": {"privileged": true}},
            ]}),
            "privileged",
            r#"containers "d", "e" must not set securityContext.privileged=true"#,
        ),
        (
            "procMount",
            json!({"containers": [
                {"name": "a"},
                {"name": "c", "securityContext": {"procMount": "Default"}},
                {"name": "d", "securityContext": {"procMount": "Unmasked"}},
                {"name": "e", "securityContext": {"procMount": "other"}},
            ]}),
            "procMount",
            r#"containers "d", "e" must not set securityContext.procMount to "Unmasked", "other""#,
        ),
        (
            "seLinuxOptions pod and containers",
            json!({
                "securityContext": {"seLinuxOptions": {"type": "foo", "user": "bar", "role": "baz"}},
                "containers": [
                    {"name": "a", "securityContext": {"seLinuxOptions": {"type": "container_t"}}},
                    {"name": "b", "securityContext": {"seLinuxOptions": {"type": "container_init_t"}}},
                    {"name": "c", "securityContext": {"seLinuxOptions": {"type": "container_kvm_t"}}},
                    {"name": "d", "securityContext": {"seLinuxOptions": {"type": "container_engine_t"}}},
                    {"name": "e", "securityContext": {"seLinuxOptions": {"type": "bar"}}},
                    {"name": "f", "securityContext": {"seLinuxOptions": {"user": "bar"}}},
                    {"name": "g", "securityContext": {"seLinuxOptions": {"role": "baz"}}},
                ],
            }),
            "seLinuxOptions",
            r#"pod and containers "e", "f", "g" set forbidden securityContext.seLinuxOptions: types "bar", "foo"; user may not be set; role may not be set"#,
        ),
        (
            "seLinuxOptions bad type",
            json!({"securityContext": {"seLinuxOptions": {"type": "bad"}}}),
            "seLinuxOptions",
            r#"pod set forbidden securityContext.seLinuxOptions: type "bad""#,
        ),
        (
            "seLinuxOptions bad role",
            json!({"securityContext": {"seLinuxOptions": {"role": "bad"}}}),
            "seLinuxOptions",
            "pod set forbidden securityContext.seLinuxOptions: role may not be set",
        ),
        (
            "seccomp pod and containers",
            json!({
                "securityContext": {"seccompProfile": {"type": "Unconfined"}},
                "containers": [
                    {"name": "a"},
                    {"name": "b", "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}},
                    {"name": "c", "securityContext": {"seccompProfile": {"type": "Unconfined"}}},
                    {"name": "d", "securityContext": {"seccompProfile": {"type": "Unconfined"}}},
                ],
            }),
            "seccompProfile",
            r#"pod and containers "c", "d" must not set securityContext.seccompProfile.type to "Unconfined""#,
        ),
        (
            "sysctls",
            json!({"securityContext": {"sysctls": [
                {"name": "a"}, {"name": "b"}, {"name": "net.ipv4.tcp_rmem"},
            ]}}),
            "forbidden sysctls",
            "a, b",
        ),
        (
            "windows hostProcess",
            json!({
                "securityContext": {"windowsOptions": {"hostProcess": true}},
                "containers": [
                    {"name": "a"},
                    {"name": "d", "securityContext": {"windowsOptions": {"hostProcess": false}}},
                    {"name": "e", "securityContext": {"windowsOptions": {"hostProcess": true}}},
                    {"name": "f", "securityContext": {"windowsOptions": {"hostProcess": true}}},
                ],
            }),
            "hostProcess",
            r#"pod and containers "e", "f" must not set securityContext.windowsOptions.hostProcess=true"#,
        ),
        (
            "apparmor unconfined init container",
            json!({
                "initContainers": [{"name": "bar", "securityContext": {"appArmorProfile": {"type": "Unconfined"}}}],
                "containers": [{"name": "foo", "securityContext": {"appArmorProfile": {"type": "RuntimeDefault"}}}],
            }),
            "forbidden AppArmor profile",
            r#"container "bar" must not set AppArmor profile type to "Unconfined""#,
        ),
        (
            "apparmor unconfined pod",
            json!({"securityContext": {"appArmorProfile": {"type": "Unconfined"}}}),
            "forbidden AppArmor profile",
            r#"pod must not set AppArmor profile type to "Unconfined""#,
        ),
    ];
    for (name, spec, reason, detail) in cases {
        let got = only_failure(&baseline(), &meta, &spec);
        assert_eq!(got, (reason.to_string(), detail.to_string()), "{name}");
    }
}

#[test]
fn apparmor_annotations_are_listed_as_values() {
    let meta = json!({"annotations": {
        "container.apparmor.security.beta.kubernetes.io/": "bogus",
        "container.apparmor.security.beta.kubernetes.io/a": "",
        "container.apparmor.security.beta.kubernetes.io/b": "runtime/default",
        "container.apparmor.security.beta.kubernetes.io/c": "localhost/",
        "container.apparmor.security.beta.kubernetes.io/d": "localhost/foo",
        "container.apparmor.security.beta.kubernetes.io/e": "unconfined",
        "container.apparmor.security.beta.kubernetes.io/f": "unknown",
    }});
    let got = only_failure(&baseline(), &meta, &json!({}));
    assert_eq!(got.0, "forbidden AppArmor profiles");
    assert_eq!(
        got.1,
        "annotations must not set AppArmor profile type to \
         \"container.apparmor.security.beta.kubernetes.io/=\"bogus\"\", \
         \"container.apparmor.security.beta.kubernetes.io/e=\"unconfined\"\", \
         \"container.apparmor.security.beta.kubernetes.io/f=\"unknown\"\""
    );
}

#[test]
fn seccomp_annotations_are_checked_before_v1_19() {
    let meta = json!({"annotations": {
        "seccomp.security.alpha.kubernetes.io/pod": "unconfined",
        "container.seccomp.security.alpha.kubernetes.io/a": "unconfined",
        "container.seccomp.security.alpha.kubernetes.io/b": "unknown",
        "container.seccomp.security.alpha.kubernetes.io/c": "localhost/x",
    }});
    let spec = json!({"containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}]});
    let got = only_failure(&lv(Level::Baseline, Some(18)), &meta, &spec);
    assert_eq!(
        got,
        (
            "seccompProfile".to_string(),
            "forbidden annotations container.seccomp.security.alpha.kubernetes.io/a=\"unconfined\", \
             container.seccomp.security.alpha.kubernetes.io/b=\"unknown\", \
             seccomp.security.alpha.kubernetes.io/pod=\"unconfined\""
                .to_string()
        )
    );
    // From v1.19 the annotations are ignored.
    assert!(check_pod(&lv(Level::Baseline, Some(19)), &meta, &spec).is_empty());
}

#[test]
fn restricted_checks_report_upstream_details() {
    let meta = json!({});
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        (
            "allowPrivilegeEscalation",
            json!({"securityContext": good_pod_sc(), "containers": [
                {"name": "a", "securityContext": {"capabilities": {"drop": ["ALL"]}}},
                {"name": "b", "securityContext": {"allowPrivilegeEscalation": true, "capabilities": {"drop": ["ALL"]}}},
                {"name": "c", "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}},
            ]}),
            "allowPrivilegeEscalation != false",
            r#"containers "a", "b" must set securityContext.allowPrivilegeEscalation=false"#,
        ),
        (
            "capabilities restricted",
            json!({"securityContext": good_pod_sc(), "containers": [
                {"name": "a", "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"add": ["FOO", "BAR"]}}},
                {"name": "b", "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"add": ["BAR", "BAZ"]}}},
                {"name": "c", "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"add": ["NET_BIND_SERVICE", "CHOWN"], "drop": ["ALL", "FOO"]}}},
            ]}),
            "unrestricted capabilities",
            r#"containers "a", "b" must set securityContext.capabilities.drop=["ALL"]; containers "a", "b", "c" must not include "BAR", "BAZ", "CHOWN", "FOO" in securityContext.capabilities.add"#,
        ),
        (
            "runAsNonRoot pod false",
            json!({"securityContext": {"runAsNonRoot": false, "seccompProfile": {"type": "RuntimeDefault"}},
                   "containers": [good_container("a")]}),
            "runAsNonRoot != true",
            "pod must not set securityContext.runAsNonRoot=false",
        ),
        (
            "runAsNonRoot containers false",
            json!({"securityContext": good_pod_sc(), "containers": [
                good_container("a"),
                {"name": "c", "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": false}},
                {"name": "d", "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": false}},
            ]}),
            "runAsNonRoot != true",
            r#"containers "c", "d" must not set securityContext.runAsNonRoot=false"#,
        ),
        (
            "runAsNonRoot unset",
            json!({"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                   "containers": [good_container("a"), good_container("b")]}),
            "runAsNonRoot != true",
            r#"pod or containers "a", "b" must set securityContext.runAsNonRoot=true"#,
        ),
        (
            "runAsUser",
            json!({"securityContext": {"runAsNonRoot": true, "runAsUser": 0, "seccompProfile": {"type": "RuntimeDefault"}},
                   "containers": [good_container("a")]}),
            "runAsUser=0",
            "pod must not set runAsUser=0",
        ),
        (
            "seccomp unset",
            json!({"securityContext": {"runAsNonRoot": true}, "containers": [good_container("a")]}),
            "seccompProfile",
            r#"pod or container "a" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost""#,
        ),
        (
            "seccomp explicit unconfined containers",
            json!({"securityContext": good_pod_sc(), "containers": [
                {"name": "c", "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "Unconfined"}}},
                {"name": "d", "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "Unconfined"}}},
            ]}),
            "seccompProfile",
            r#"containers "c", "d" must not set securityContext.seccompProfile.type to "Unconfined""#,
        ),
    ];
    for (name, spec, reason, detail) in cases {
        let got = only_failure(&restricted(), &meta, &spec);
        assert_eq!(got, (reason.to_string(), detail.to_string()), "{name}");
    }
}

#[test]
fn restricted_volumes_name_each_type_once() {
    let mut volumes: Vec<Value> = [
        "emptyDir",
        "secret",
        "persistentVolumeClaim",
        "downwardAPI",
        "configMap",
        "projected",
        "csi",
        "ephemeral",
        "image",
    ]
    .iter()
    .enumerate()
    .map(|(i, t)| json!({"name": format!("a{}", i + 1), *t: {}}))
    .collect();
    let restricted_types = [
        "hostPath",
        "gcePersistentDisk",
        "awsElasticBlockStore",
        "gitRepo",
        "nfs",
        "iscsi",
        "glusterfs",
        "rbd",
        "flexVolume",
        "cinder",
        "cephfs",
        "flocker",
        "fc",
        "azureFile",
        "vsphereVolume",
        "quobyte",
        "azureDisk",
        "photonPersistentDisk",
        "portworxVolume",
        "scaleIO",
        "storageos",
    ];
    volumes.extend(
        restricted_types
            .iter()
            .enumerate()
            .map(|(i, t)| json!({"name": format!("b{}", i + 1), *t: {}})),
    );
    volumes.push(json!({"name": "c1"}));
    let spec = json!({"securityContext": good_pod_sc(), "containers": [good_container("x")], "volumes": volumes});
    let got = only_failure(&restricted(), &json!({}), &spec);
    assert_eq!(got.0, "restricted volume types");
    assert_eq!(
        got.1,
        "volumes \"b1\", \"b2\", \"b3\", \"b4\", \"b5\", \"b6\", \"b7\", \"b8\", \"b9\", \"b10\", \
         \"b11\", \"b12\", \"b13\", \"b14\", \"b15\", \"b16\", \"b17\", \"b18\", \"b19\", \"b20\", \
         \"b21\", \"c1\" use restricted volume types \"awsElasticBlockStore\", \"azureDisk\", \
         \"azureFile\", \"cephfs\", \"cinder\", \"fc\", \"flexVolume\", \"flocker\", \
         \"gcePersistentDisk\", \"gitRepo\", \"glusterfs\", \"hostPath\", \"iscsi\", \"nfs\", \
         \"photonPersistentDisk\", \"portworxVolume\", \"quobyte\", \"rbd\", \"scaleIO\", \
         \"storageos\", \"unknown\", \"vsphereVolume\""
    );
}

#[test]
fn windows_pods_skip_linux_only_restricted_checks_from_v1_25() {
    let spec = json!({"os": {"name": "windows"}, "securityContext": {"runAsNonRoot": true},
                      "containers": [{"name": "a"}]});
    assert!(check_pod(&restricted(), &json!({}), &spec).is_empty());
    let reasons: Vec<String> = check_pod(&lv(Level::Restricted, Some(24)), &json!({}), &spec)
        .into_iter()
        .map(|r| r.reason)
        .collect();
    assert_eq!(
        reasons,
        [
            "allowPrivilegeEscalation != false",
            "unrestricted capabilities",
            "seccompProfile"
        ]
    );
}

#[test]
fn versions_gate_checks() {
    let spec = json!({"securityContext": {"sysctls": [{"name": "net.ipv4.ip_local_reserved_ports"}],
                                          "seLinuxOptions": {"type": "container_engine_t"}}});
    let meta = json!({});
    let reasons = |l: LevelVersion| -> Vec<String> {
        check_pod(&l, &meta, &spec)
            .into_iter()
            .map(|r| r.reason)
            .collect()
    };
    assert_eq!(
        reasons(lv(Level::Baseline, Some(26))),
        ["seLinuxOptions", "forbidden sysctls"]
    );
    assert_eq!(reasons(lv(Level::Baseline, Some(27))), ["seLinuxOptions"]);
    assert!(reasons(lv(Level::Baseline, Some(31))).is_empty());
    // Versions past the newest policy evaluate as it.
    assert!(reasons(lv(Level::Baseline, Some(99))).is_empty());

    // runAsUser exists from v1.23; restricted capabilities (which replace the baseline
    // capabilities check) from v1.22.
    let pod = json!({"securityContext": {"runAsNonRoot": true, "runAsUser": 0, "seccompProfile": {"type": "RuntimeDefault"}},
                     "containers": [{"name": "a", "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"add": ["SYS_ADMIN"]}}}]});
    let reasons = |l: LevelVersion| -> Vec<String> {
        check_pod(&l, &meta, &pod)
            .into_iter()
            .map(|r| r.reason)
            .collect()
    };
    assert_eq!(
        reasons(lv(Level::Restricted, Some(21))),
        ["non-default capabilities"]
    );
    assert_eq!(
        reasons(lv(Level::Restricted, Some(22))),
        ["unrestricted capabilities"]
    );
    assert_eq!(
        reasons(lv(Level::Restricted, Some(23))),
        ["unrestricted capabilities", "runAsUser=0"]
    );
}

#[test]
fn restricted_replaces_baseline_host_path_with_volume_types() {
    let spec = json!({"securityContext": good_pod_sc(), "containers": [good_container("a")],
                      "volumes": [{"name": "h", "hostPath": {"path": "/"}}]});
    assert_eq!(
        only_failure(&baseline(), &json!({}), &spec),
        ("hostPath volumes".to_string(), "volume \"h\"".to_string())
    );
    assert_eq!(
        only_failure(&restricted(), &json!({}), &spec),
        (
            "restricted volume types".to_string(),
            "volume \"h\" uses restricted volume type \"hostPath\"".to_string()
        )
    );
}

#[test]
fn privileged_allows_anything() {
    let spec = json!({"hostNetwork": true, "containers": [{"name": "a", "securityContext": {"privileged": true}}]});
    assert!(check_pod(&lv(Level::Privileged, None), &json!({}), &spec).is_empty());
}

#[test]
fn messages_aggregate_reasons_in_upstream_order() {
    let spec = json!({"containers": [{"name": "c", "image": "nginx"}]});
    let results = check_pod(&restricted(), &json!({}), &spec);
    assert_eq!(
        forbidden_message(&restricted(), &results),
        "violates PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false \
         (container \"c\" must set securityContext.allowPrivilegeEscalation=false), \
         unrestricted capabilities (container \"c\" must set securityContext.capabilities.drop=[\"ALL\"]), \
         runAsNonRoot != true (pod or container \"c\" must set securityContext.runAsNonRoot=true), \
         seccompProfile (pod or container \"c\" must set securityContext.seccompProfile.type to \
         \"RuntimeDefault\" or \"Localhost\")"
    );
    assert!(
        warning_message(&lv(Level::Restricted, Some(30)), &results).starts_with(
            "would violate PodSecurity \"restricted:v1.30\": allowPrivilegeEscalation != false ("
        )
    );
    assert_eq!(
        forbidden_reasons(&results),
        "allowPrivilegeEscalation != false, unrestricted capabilities, runAsNonRoot != true, seccompProfile"
    );
    let empty_detail = [CheckResult {
        reason: String::new(),
        detail: String::new(),
    }];
    assert_eq!(forbidden_detail(&empty_detail), "unknown forbidden reason");
}

#[test]
fn checks_order_is_baseline_then_restricted_sorted_by_id() {
    for level in [Level::Baseline, Level::Restricted] {
        let ids: Vec<&str> = CHECKS
            .iter()
            .filter(|c| c.level == level)
            .map(|c| c.id)
            .collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        assert_eq!(ids, sorted);
    }
    let first_restricted = CHECKS
        .iter()
        .position(|c| c.level == Level::Restricted)
        .unwrap_or(0);
    assert!(CHECKS[first_restricted..]
        .iter()
        .all(|c| c.level == Level::Restricted));
    assert_eq!(max_minor(), 32);
}
