//! Behaviour of server-side apply and update tracking end to end, against upstream's
//! documented results.

use serde_json::{json, Value};

use super::*;

const T1: &str = "2024-05-01T10:00:00Z";
const T2: &str = "2024-05-01T10:00:05Z";

fn deployment(spec: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "nginx", "namespace": "default"}, "spec": spec})
}

fn nginx() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "nginx", "labels": {"app": "nginx"}},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx:1.14.2",
                                         "ports": [{"containerPort": 80}]}]}
            }
        }
    })
}

fn entries(obj: &Value) -> Vec<Value> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn entry<'a>(obj: &'a Value, manager: &str) -> Option<&'a Value> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)?
        .iter()
        .find(|e| e["manager"] == manager)
}

fn apply_d(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
) -> Result<Value, ApplyError> {
    apply(
        "apps",
        "v1",
        "Deployment",
        live,
        applied,
        manager,
        force,
        T2,
    )
}

#[test]
fn fields_of_encodes_a_server_side_applied_deployment_like_upstream() {
    let got = fields_of("apps", "v1", "Deployment", &nginx()).unwrap();
    // What `kubectl apply --server-side` records for this manifest.
    let want = json!({
        "f:metadata": {"f:labels": {"f:app": {}}},
        "f:spec": {
            "f:replicas": {},
            "f:selector": {},
            "f:template": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {
                    ".": {}, "f:image": {}, "f:name": {},
                    "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {
                        ".": {}, "f:containerPort": {}}}
                }}}
            }
        }
    });
    assert_eq!(
        serde_json::to_string(&got).unwrap(),
        serde_json::to_string(&want).unwrap()
    );
}

#[test]
fn fields_of_marks_null_and_empty_objects_and_set_elements() {
    let cases = [
        (
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "finalizers": ["a/b"]},
                   "spec": {"securityContext": {}, "nodeName": null}}),
            json!({"f:metadata": {"f:finalizers": {"v:\"a/b\"": {}}},
                   "f:spec": {"f:nodeName": {}, "f:securityContext": {}}}),
        ),
        (
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "uid": "u",
                   "resourceVersion": "1", "annotations": {"a": "1"}}, "data": {"k": "v"}}),
            json!({"f:data": {"f:k": {}}, "f:metadata": {"f:annotations": {"f:a": {}}}}),
        ),
    ];
    for (obj, want) in cases {
        let kind = obj["kind"].as_str().unwrap_or_default().to_string();
        let got = fields_of("", "v1", &kind, &obj).unwrap();
        assert_eq!(got, want, "{kind}");
    }
}

#[test]
fn apply_creates_the_object_and_records_the_appliers_fields() {
    let out = apply_d(None, &nginx(), "kubectl", false).unwrap();
    assert_eq!(out["spec"]["replicas"], 3);
    let e = entries(&out);
    assert_eq!(e.len(), 1);
    assert_eq!(
        e[0],
        json!({"manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1", "time": T2,
               "fieldsType": "FieldsV1",
               "fieldsV1": fields_of("apps", "v1", "Deployment", &nginx()).unwrap()})
    );
}

#[test]
fn appliers_of_disjoint_fields_both_keep_theirs() {
    let a = deployment(json!({"replicas": 2}));
    let b = deployment(json!({"paused": true}));
    let live = apply_d(None, &a, "a", false).unwrap();
    let live = apply_d(Some(&live), &b, "b", false).unwrap();
    assert_eq!(live["spec"], json!({"replicas": 2, "paused": true}));
    let fields = |m: &str| entry(&live, m).map(|e| e["fieldsV1"].clone());
    assert_eq!(fields("a"), Some(json!({"f:spec": {"f:replicas": {}}})));
    assert_eq!(fields("b"), Some(json!({"f:spec": {"f:paused": {}}})));
}

#[test]
fn conflicting_apply_fails_with_upstreams_message_and_force_takes_ownership() {
    let created = apply_d(None, &deployment(json!({"replicas": 2})), "kubectl", false).unwrap();
    let mine = deployment(json!({"replicas": 5}));
    let err = apply_d(Some(&created), &mine, "hpa", false).unwrap_err();
    assert_eq!(err.status_code(), 409);
    assert_eq!(
        err.message(),
        r#"Apply failed with 1 conflict: conflict with "kubectl": .spec.replicas"#
    );
    let forced = apply_d(Some(&created), &mine, "hpa", true).unwrap();
    assert_eq!(forced["spec"]["replicas"], 5);
    assert!(entry(&forced, "kubectl").is_none(), "{forced}");
    assert_eq!(
        entry(&forced, "hpa").map(|e| e["fieldsV1"].clone()),
        Some(json!({"f:spec": {"f:replicas": {}}}))
    );
    // Applying the same value is shared ownership, not a conflict.
    let same = apply_d(
        Some(&created),
        &deployment(json!({"replicas": 2})),
        "other",
        false,
    )
    .unwrap();
    assert!(entry(&same, "kubectl").is_some() && entry(&same, "other").is_some());
}

#[test]
fn conflicts_with_update_managers_name_their_api_version() {
    let old = deployment(json!({"replicas": 1}));
    let updated = track_update(
        "apps",
        "v1",
        "Deployment",
        None,
        &old,
        "kubectl-client-side-apply",
        T1,
    )
    .unwrap();
    let err = apply_d(
        Some(&updated),
        &deployment(json!({"replicas": 3, "paused": true, "minReadySeconds": 4})),
        "kubectl",
        false,
    )
    .unwrap_err();
    assert_eq!(
        err.message(),
        r#"Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas"#
    );
    let ApplyError::Conflicts(c) = err else {
        panic!("not a conflict");
    };
    assert_eq!(
        c[0].cause_message(),
        r#"conflict with "kubectl-client-side-apply" using apps/v1"#
    );
}

#[test]
fn several_conflicts_are_listed_by_manager() {
    let live = apply_d(
        None,
        &deployment(json!({"replicas": 2, "paused": false})),
        "a",
        false,
    )
    .unwrap();
    let err = apply_d(
        Some(&live),
        &deployment(json!({"replicas": 3, "paused": true})),
        "b",
        false,
    )
    .unwrap_err();
    assert_eq!(
        err.message(),
        "Apply failed with 2 conflicts: conflicts with \"a\":\n- .spec.paused\n- .spec.replicas"
    );
}

#[test]
fn omitted_fields_are_removed_only_when_nobody_else_owns_them() {
    let full = deployment(json!({"replicas": 2, "paused": true, "minReadySeconds": 5}));
    let live = apply_d(None, &full, "a", false).unwrap();
    let live = apply_d(
        Some(&live),
        &deployment(json!({"paused": true})),
        "b",
        false,
    )
    .unwrap();
    let out = apply_d(
        Some(&live),
        &deployment(json!({"minReadySeconds": 5})),
        "a",
        false,
    )
    .unwrap();
    // replicas: only `a` owned it, gone; paused: `b` co-owns it, kept.
    assert_eq!(out["spec"], json!({"paused": true, "minReadySeconds": 5}));
    assert_eq!(
        entry(&out, "a").map(|e| e["fieldsV1"].clone()),
        Some(json!({"f:spec": {"f:minReadySeconds": {}}}))
    );
}

fn container_spec(containers: Value) -> Value {
    json!({"selector": {"matchLabels": {"app": "x"}},
           "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": containers}}})
}

#[test]
fn associative_lists_merge_by_key_with_per_element_ownership() {
    let a = deployment(container_spec(json!([
        {"name": "app", "image": "app:1", "ports": [{"containerPort": 80}],
         "env": [{"name": "A", "value": "1"}]}
    ])));
    let b = deployment(container_spec(json!([
        {"name": "app", "ports": [{"containerPort": 9090, "protocol": "TCP"}],
         "env": [{"name": "B", "value": "2"}]},
        {"name": "sidecar", "image": "side:1"}
    ])));
    let live = apply_d(None, &a, "a", false).unwrap();
    let live = apply_d(Some(&live), &b, "b", false).unwrap();
    let containers = &live["spec"]["template"]["spec"]["containers"];
    assert_eq!(
        containers,
        &json!([
            {"name": "app", "image": "app:1",
             "ports": [{"containerPort": 80}, {"containerPort": 9090, "protocol": "TCP"}],
             "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
            {"name": "sidecar", "image": "side:1"}
        ])
    );
    // `a` drops its env var and port; `b`'s elements stay.
    let a2 = deployment(container_spec(json!([{"name": "app", "image": "app:1"}])));
    let out = apply_d(Some(&live), &a2, "a", false).unwrap();
    let app = &out["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(app["env"], json!([{"name": "B", "value": "2"}]));
    assert_eq!(
        app["ports"],
        json!([{"containerPort": 9090, "protocol": "TCP"}])
    );
    assert_eq!(app["image"], "app:1");
    // A second applier of the same element's image conflicts on that element only.
    let b2 = deployment(container_spec(json!([{"name": "app", "image": "app:2"}])));
    let err = apply_d(Some(&out), &b2, "b", false).unwrap_err();
    assert_eq!(
        err.message(),
        r#"Apply failed with 1 conflict: conflict with "a": .spec.template.spec.containers[name="app"].image"#
    );
}

#[test]
fn atomic_lists_are_replaced_whole_and_maps_are_granular() {
    let a = deployment(container_spec(json!([{"name": "c", "args": ["x", "y"]}])));
    let live = apply_d(None, &a, "a", false).unwrap();
    let b = deployment(container_spec(json!([{"name": "c", "args": ["z"]}])));
    let err = apply_d(Some(&live), &b, "b", false).unwrap_err();
    assert!(
        err.message()
            .ends_with(r#".spec.template.spec.containers[name="c"].args"#),
        "{err}"
    );
    let out = apply_d(Some(&live), &b, "b", true).unwrap();
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"][0]["args"],
        json!(["z"])
    );

    let labels = |l: Value| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
                                   "metadata": {"name": "nginx", "labels": l}})
    };
    let live = apply_d(None, &labels(json!({"a": "1"})), "a", false).unwrap();
    let live = apply_d(Some(&live), &labels(json!({"b": "2"})), "b", false).unwrap();
    assert_eq!(live["metadata"]["labels"], json!({"a": "1", "b": "2"}));
    let out = apply_d(Some(&live), &labels(json!({})), "a", false).unwrap();
    assert_eq!(out["metadata"]["labels"], json!({"b": "2"}));
}

#[test]
fn track_update_moves_changed_fields_to_the_updater() {
    let created = apply_d(
        None,
        &deployment(json!({"replicas": 2, "paused": false})),
        "kubectl",
        false,
    )
    .unwrap();
    let mut edited = created.clone();
    edited["spec"]["replicas"] = json!(4);
    edited["metadata"]["labels"] = json!({"team": "x"});
    let out = track_update(
        "apps",
        "v1",
        "Deployment",
        Some(&created),
        &edited,
        "kubectl-edit",
        T2,
    )
    .unwrap();
    assert_eq!(
        entry(&out, "kubectl").map(|e| e["fieldsV1"].clone()),
        Some(json!({"f:spec": {"f:paused": {}}}))
    );
    assert_eq!(
        entry(&out, "kubectl-edit").cloned(),
        Some(
            json!({"manager": "kubectl-edit", "operation": "Update", "apiVersion": "apps/v1",
                    "time": T2, "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:team": {}}},
                                 "f:spec": {"f:replicas": {}}}})
        )
    );
    // A second update by the same manager merges into its entry; an unchanged write keeps it.
    let mut again = out.clone();
    again["spec"]["minReadySeconds"] = json!(1);
    let out2 = track_update(
        "apps",
        "v1",
        "Deployment",
        Some(&out),
        &again,
        "kubectl-edit",
        T2,
    )
    .unwrap();
    assert_eq!(entries(&out2).len(), 2);
    assert_eq!(
        entry(&out2, "kubectl-edit").map(|e| e["fieldsV1"]["f:spec"].clone()),
        Some(json!({"f:minReadySeconds": {}, "f:replicas": {}}))
    );
    let same = track_update("apps", "v1", "Deployment", Some(&out2), &out2, "other", T2).unwrap();
    assert_eq!(entries(&same), entries(&out2));
}

#[test]
fn track_update_on_create_compares_against_the_zero_object() {
    let obj = deployment(container_spec(
        json!([{"name": "c", "image": "i", "ports": [{"containerPort": 80}]}]),
    ));
    let out = track_update("apps", "v1", "Deployment", None, &obj, "kubectl-create", T1).unwrap();
    let fields = entry(&out, "kubectl-create").map(|e| e["fieldsV1"].clone());
    assert_eq!(
        fields,
        Some(json!({"f:spec": {"f:selector": {}, "f:template": {
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:image": {}, "f:name": {},
                "f:ports": {".": {}, "k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}}}}}}}))
    );
}

#[test]
fn client_sent_managed_fields_replace_reset_or_are_ignored() {
    let created = apply_d(None, &deployment(json!({"replicas": 2})), "kubectl", false).unwrap();
    let stored = entries(&created);
    let with = |mf: Value| {
        let mut o = created.clone();
        o["metadata"]["managedFields"] = mf;
        o
    };
    let cases = [
        ("reset with []", with(json!([])), 0),
        ("reset with [{}]", with(json!([{}])), 0),
        (
            "garbage keeps stored",
            with(json!([{"operation": "Nope"}])),
            stored.len(),
        ),
        (
            "absent keeps stored",
            without_managed_fields(&created),
            stored.len(),
        ),
    ];
    for (name, new, want) in cases {
        let out = track_update("apps", "v1", "Deployment", Some(&created), &new, "m", T2).unwrap();
        assert_eq!(entries(&out).len(), want, "{name}");
    }
    let mut replaced = stored.clone();
    replaced[0]["manager"] = json!("renamed");
    let out = track_update(
        "apps",
        "v1",
        "Deployment",
        Some(&created),
        &with(Value::Array(replaced)),
        "m",
        T2,
    )
    .unwrap();
    assert!(entry(&out, "renamed").is_some());
}

#[test]
fn status_is_reset_on_the_main_resource_and_spec_on_the_status_subresource() {
    let mut applied = deployment(json!({"replicas": 1}));
    applied["status"] = json!({"replicas": 7});
    let out = apply_d(None, &applied, "a", false).unwrap();
    assert!(out.get("status").is_none(), "{out}");
    assert_eq!(
        entry(&out, "a").map(|e| e["fieldsV1"].clone()),
        Some(json!({"f:spec": {"f:replicas": {}}}))
    );

    let mut live = out.clone();
    live["status"] = json!({"replicas": 1});
    let mut status = deployment(json!({"replicas": 9}));
    status["status"] = json!({"readyReplicas": 1});
    let out = apply_subresource(
        "apps",
        "v1",
        "Deployment",
        Some("status"),
        Some(&live),
        &status,
        "ctl",
        false,
        T2,
    )
    .unwrap();
    assert_eq!(out["spec"]["replicas"], 1);
    assert_eq!(out["status"], json!({"replicas": 1, "readyReplicas": 1}));
    assert_eq!(
        entry(&out, "ctl").cloned(),
        Some(
            json!({"manager": "ctl", "operation": "Apply", "apiVersion": "apps/v1", "time": T2,
                    "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {"f:readyReplicas": {}}},
                    "subresource": "status"})
        )
    );
}

#[test]
fn invalid_apply_requests_fail_with_upstreams_errors() {
    let mut with_mf = nginx();
    with_mf["metadata"]["managedFields"] = json!([]);
    let mut unknown = nginx();
    unknown["spec"]["foo"] = json!(1);
    let mut dup = deployment(container_spec(json!([{"name": "a"}, {"name": "a"}])));
    dup["metadata"]["namespace"] = json!("ns");
    let cases = [
        (json!({"apiVersion": "apps/v1", "kind": "Pod", "metadata": {"name": "x"}}), 400, "invalid object type: apps/v1, Kind=Pod"),
        (json!({"apiVersion": "v1", "kind": "Deployment"}), 400, "invalid object type: /v1, Kind=Deployment"),
        (with_mf, 400, "metadata.managedFields must be nil"),
        (unknown, 500, "failed to create typed patch object (/nginx; apps/v1, Kind=Deployment): .spec.foo: field not declared in schema"),
        (dup, 500, "failed to create typed patch object (ns/nginx; apps/v1, Kind=Deployment): .spec.template.spec.containers: duplicate entries for key [name=\"a\"]"),
    ];
    for (applied, code, msg) in cases {
        let err = apply_d(None, &applied, "m", false).unwrap_err();
        assert_eq!((err.status_code(), err.message().as_str()), (code, msg));
    }
}

#[test]
fn user_agents_become_manager_names() {
    let cases = [
        (
            "kubectl/v1.33.0 (linux/amd64) kubernetes/8adc0f0",
            "kubectl",
        ),
        ("Go-http-client/1.1", "Go-http-client"),
        ("OpenAPI-Generator/31.0.0/python", "OpenAPI-Generator"),
        ("", ""),
        ("a\tb/1", "ab"),
    ];
    for (ua, want) in cases {
        assert_eq!(manager_from_user_agent(ua), want, "{ua}");
    }
    assert_eq!(manager_from_user_agent(&"x".repeat(200)).len(), 128);
}
