use jiff::Timestamp;
use serde_json::{json, Value};

use crate::audit::event::micro_time;
use crate::audit::{AuditAttributes, AuditEvent, Level, Stage};

fn at(s: &str) -> Timestamp {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn create_pod_attrs() -> AuditAttributes {
    AuditAttributes {
        user: "alice".to_string(),
        groups: vec!["dev".to_string(), "system:authenticated".to_string()],
        verb: "create".to_string(),
        resource_request: true,
        api_group: String::new(),
        api_version: "v1".to_string(),
        resource: "pods".to_string(),
        subresource: String::new(),
        namespace: "default".to_string(),
        name: String::new(),
        path: "/api/v1/namespaces/default/pods".to_string(),
    }
}

fn pod() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "uid": "u-1",
            "resourceVersion": "42",
            "managedFields": [{"manager": "kubectl", "operation": "Update"}]
        },
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}
    })
}

/// A create of a pod as the request path would record it, at `level`.
fn create_pod_event(level: Level, omit_managed_fields: bool) -> AuditEvent {
    let mut ev = AuditEvent::new(
        level,
        &create_pod_attrs(),
        "/api/v1/namespaces/default/pods?fieldManager=kubectl",
        at("2024-05-06T07:08:09.123456789Z"),
    );
    ev.audit_id = "7e0a2d8c-1f7b-4d2e-9a51-3c7f2f6f0b11".to_string();
    ev.user.uid = "uid-alice".to_string();
    ev.user
        .extra
        .insert("scopes".to_string(), vec!["a".to_string()]);
    ev.source_ips = vec!["10.0.0.1".to_string()];
    ev.set_user_agent("kubectl/v1.33.0");
    ev.set_request_object(&pod(), omit_managed_fields);
    ev.set_response(201, Some(&pod()), omit_managed_fields);
    ev.at_stage(Stage::ResponseComplete, at("2024-05-06T07:08:09.200Z"))
}

fn to_json(ev: &AuditEvent) -> Value {
    serde_json::to_value(ev).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn request_response_event_has_upstreams_shape_and_order() {
    let text = serde_json::to_string(&create_pod_event(Level::RequestResponse, false))
        .unwrap_or_else(|e| panic!("{e}"));
    let pod = serde_json::to_string(&pod()).unwrap_or_else(|e| panic!("{e}"));
    let want = format!(
        concat!(
            r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","#,
            r#""auditID":"7e0a2d8c-1f7b-4d2e-9a51-3c7f2f6f0b11","stage":"ResponseComplete","#,
            r#""requestURI":"/api/v1/namespaces/default/pods?fieldManager=kubectl","verb":"create","#,
            r#""user":{{"username":"alice","uid":"uid-alice","groups":["dev","system:authenticated"],"extra":{{"scopes":["a"]}}}},"#,
            r#""sourceIPs":["10.0.0.1"],"userAgent":"kubectl/v1.33.0","#,
            r#""objectRef":{{"resource":"pods","namespace":"default","name":"web","uid":"u-1","apiVersion":"v1","resourceVersion":"42"}},"#,
            r#""responseStatus":{{"metadata":{{}},"code":201}},"#,
            r#""requestObject":{pod},"responseObject":{pod},"#,
            r#""requestReceivedTimestamp":"2024-05-06T07:08:09.123456Z","#,
            r#""stageTimestamp":"2024-05-06T07:08:09.200000Z"}}"#
        ),
        pod = pod
    );
    assert_eq!(text, want);
}

#[test]
fn bodies_are_recorded_by_level() {
    for (level, request, response) in [
        (Level::Metadata, false, false),
        (Level::Request, true, false),
        (Level::RequestResponse, true, true),
    ] {
        let v = to_json(&create_pod_event(level, false));
        assert_eq!(v["level"], json!(format!("{level:?}")));
        assert_eq!(v.get("requestObject").is_some(), request, "{level:?}");
        assert_eq!(v.get("responseObject").is_some(), response, "{level:?}");
        // Metadata is in every event.
        assert_eq!(v["responseStatus"], json!({"metadata": {}, "code": 201}));
        assert_eq!(v["objectRef"]["name"], "web", "{level:?}");
        assert_eq!(v["user"]["username"], "alice");
    }
    let none = to_json(&create_pod_event(Level::None, false));
    assert!(none.get("responseStatus").is_none());
    assert!(none.get("requestObject").is_none());
}

#[test]
fn managed_fields_are_stripped_only_when_asked() {
    let kept = to_json(&create_pod_event(Level::RequestResponse, false));
    assert!(kept["requestObject"]["metadata"]["managedFields"].is_array());
    let omitted = to_json(&create_pod_event(Level::RequestResponse, true));
    for body in ["requestObject", "responseObject"] {
        assert!(
            omitted[body]["metadata"].get("managedFields").is_none(),
            "{body}"
        );
        assert_eq!(omitted[body]["metadata"]["name"], "web", "{body}");
    }
}

#[test]
fn managed_fields_are_stripped_from_list_items_and_table_rows() {
    let mut ev = AuditEvent::new(
        Level::RequestResponse,
        &create_pod_attrs(),
        "/api/v1/pods",
        at("2024-01-01T00:00:00Z"),
    );
    let list = json!({"kind": "PodList", "metadata": {}, "items": [pod(), pod()]});
    ev.set_response(200, Some(&list), true);
    let v = to_json(&ev);
    for item in v["responseObject"]["items"]
        .as_array()
        .into_iter()
        .flatten()
    {
        assert!(item["metadata"].get("managedFields").is_none());
    }
    let table = json!({"kind": "Table", "rows": [{"cells": [], "object": pod()}]});
    ev.set_response(200, Some(&table), true);
    let v = to_json(&ev);
    assert!(v["responseObject"]["rows"][0]["object"]["metadata"]
        .get("managedFields")
        .is_none());
}

#[test]
fn status_responses_record_their_bounded_fields() {
    let mut ev = AuditEvent::new(
        Level::Metadata,
        &create_pod_attrs(),
        "/api/v1/namespaces/default/pods/x",
        at("2024-01-01T00:00:00Z"),
    );
    let status = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": "pods \"x\" not found", "reason": "NotFound",
        "details": {"name": "x", "kind": "pods"}, "code": 404
    });
    ev.set_response(404, Some(&status), false);
    assert_eq!(
        to_json(&ev)["responseStatus"],
        json!({
            "metadata": {}, "status": "Failure", "message": "pods \"x\" not found",
            "reason": "NotFound", "details": {"name": "x", "kind": "pods"}, "code": 404
        })
    );
}

#[test]
fn non_resource_requests_have_no_object_reference() {
    let attrs = AuditAttributes {
        user: "alice".to_string(),
        verb: "get".to_string(),
        path: "/metrics".to_string(),
        ..Default::default()
    };
    let mut ev = AuditEvent::new(
        Level::Metadata,
        &attrs,
        "/metrics",
        at("2024-01-01T00:00:00Z"),
    );
    ev.set_response(200, None, false);
    let v = to_json(&ev);
    assert!(v.get("objectRef").is_none());
    assert_eq!(v["stage"], "RequestReceived");
    assert_eq!(v["responseStatus"], json!({"metadata": {}, "code": 200}));
    for absent in ["impersonatedUser", "sourceIPs", "userAgent", "annotations"] {
        assert!(v.get(absent).is_none(), "{absent}");
    }
}

#[test]
fn new_events_get_distinct_audit_ids() {
    let a = AuditEvent::new(Level::Metadata, &create_pod_attrs(), "/", Timestamp::now());
    let b = AuditEvent::new(Level::Metadata, &create_pod_attrs(), "/", Timestamp::now());
    assert_eq!(a.audit_id.len(), 36);
    assert_ne!(a.audit_id, b.audit_id);
}

#[test]
fn impersonation_and_annotations_serialize_when_set() {
    let mut ev = create_pod_event(Level::Metadata, false);
    ev.impersonated_user = Some(crate::audit::UserInfo {
        username: "system:serviceaccount:ns:sa".to_string(),
        groups: vec!["system:serviceaccounts".to_string()],
        ..Default::default()
    });
    ev.annotations.insert(
        "authorization.k8s.io/decision".to_string(),
        "allow".to_string(),
    );
    let v = to_json(&ev);
    assert_eq!(
        v["impersonatedUser"],
        json!({"username": "system:serviceaccount:ns:sa", "groups": ["system:serviceaccounts"]})
    );
    assert_eq!(v["annotations"]["authorization.k8s.io/decision"], "allow");
}

#[test]
fn micro_time_always_has_six_digits_in_utc() {
    assert_eq!(
        micro_time(at("2024-01-01T00:00:00Z")),
        "2024-01-01T00:00:00.000000Z"
    );
    assert_eq!(
        micro_time(at("2024-01-01T01:00:00.9999999+01:00")),
        "2024-01-01T00:00:00.999999Z"
    );
}

#[test]
fn long_user_agents_are_truncated() {
    let mut ev = create_pod_event(Level::Metadata, false);
    ev.set_user_agent(&"x".repeat(2000));
    assert_eq!(ev.user_agent.len(), 1024 + "...TRUNCATED".len());
    assert!(ev.user_agent.ends_with("...TRUNCATED"));
    // Never cut inside a character.
    ev.set_user_agent(&"é".repeat(1000));
    assert!(ev.user_agent.ends_with("...TRUNCATED"));
}

#[test]
fn stages_keep_the_received_time() {
    let ev = create_pod_event(Level::Metadata, false);
    let panic = ev.at_stage(Stage::Panic, at("2024-05-06T07:08:10Z"));
    let v = to_json(&panic);
    assert_eq!(v["stage"], "Panic");
    assert_eq!(v["requestReceivedTimestamp"], "2024-05-06T07:08:09.123456Z");
    assert_eq!(v["stageTimestamp"], "2024-05-06T07:08:10.000000Z");
    assert_eq!(v["auditID"], to_json(&ev)["auditID"]);
}
