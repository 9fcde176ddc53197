//! Bad input gets a Kubernetes `Status` with the right code and reason, never a panic or a 500.

mod common;

use common::TestServer;
use http::{Method, StatusCode};
use serde_json::json;

const CMS: &str = "/api/v1/namespaces/default/configmaps";

#[tokio::test]
async fn malformed_bodies_are_400() {
    let t = TestServer::start().await;
    for body in [
        &b"{"[..],
        b"[1,2]",
        b"\"str\"",
        b"{\"metadata\": 5}",
        b"\xff\xfe",
    ] {
        let r = t
            .raw(
                Method::POST,
                CMS,
                &[("content-type", "application/json")],
                body.to_vec(),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{:?}",
            String::from_utf8_lossy(body)
        );
        assert_eq!(r.json()["kind"], "Status");
    }
    let yaml = t
        .raw(
            Method::POST,
            CMS,
            &[("content-type", "application/yaml")],
            b"a: [".to_vec(),
        )
        .await;
    assert_eq!(yaml.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn yaml_bodies_are_accepted() {
    let t = TestServer::start().await;
    let body =
        b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  k: v\n".to_vec();
    let r = t
        .raw(
            Method::POST,
            CMS,
            &[("content-type", "application/yaml")],
            body,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let y = t
        .raw(
            Method::GET,
            &format!("{CMS}/from-yaml"),
            &[("accept", "application/yaml")],
            Vec::new(),
        )
        .await;
    assert_eq!(y.status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&y.body).contains("name: from-yaml"));
}

#[tokio::test]
async fn a_kind_or_namespace_that_does_not_match_the_url_is_400() {
    let t = TestServer::start().await;
    let wrong_kind = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a"}});
    let r = t.post_json(CMS, &wrong_kind).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let wrong_version =
        json!({"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "a"}});
    assert_eq!(
        t.post_json(CMS, &wrong_version).await.status,
        StatusCode::BAD_REQUEST
    );
    let wrong_ns = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "kube-system"}});
    let r = t.post_json(CMS, &wrong_ns).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json()["message"],
        "the namespace of the provided object does not match the namespace sent on the request"
    );
    let wrong_name = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}});
    t.post_json(
        CMS,
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}),
    )
    .await;
    assert_eq!(
        t.put_json(&format!("{CMS}/a"), &wrong_name).await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn bodies_over_3_mib_are_413() {
    let t = TestServer::start().await;
    let big = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"}, "data": {"k": "x".repeat(3 * 1024 * 1024 + 10)}});
    let r = t.post_json(CMS, &big).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.json()["reason"], "RequestEntityTooLarge");
}

#[tokio::test]
async fn invalid_objects_are_422_with_a_cause_per_field() {
    let t = TestServer::start().await;
    let bad = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name", "labels": {"bad key!": "v"}}});
    let r = t.post_json(CMS, &bad).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let s = r.json();
    assert_eq!(s["reason"], "Invalid");
    let fields: Vec<&str> = s["details"]["causes"]
        .as_array()
        .expect("causes")
        .iter()
        .filter_map(|c| c["field"].as_str())
        .collect();
    assert!(fields.contains(&"metadata.name"), "{fields:?}");
    assert!(
        fields.iter().any(|f| f.starts_with("metadata.labels")),
        "{fields:?}"
    );
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 70000}]}]}});
    let r = t.post_json("/api/v1/namespaces/default/pods", &pod).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.json()["details"]["causes"]
        .as_array()
        .expect("causes")
        .iter()
        .any(|c| c["field"] == "spec.containers[0].ports[0].containerPort"));
    let no_containers = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": []}});
    assert_eq!(
        t.post_json("/api/v1/namespaces/default/pods", &no_containers)
            .await
            .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
}

#[tokio::test]
async fn wrongly_typed_fields_are_400() {
    let t = TestServer::start().await;
    let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"replicas": "three"}});
    let r = t
        .post_json("/apis/apps/v1/namespaces/default/deployments", &d)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json()["message"]
        .as_str()
        .unwrap_or_default()
        .contains("spec.replicas"));
}

#[tokio::test]
async fn immutable_fields_cannot_change() {
    let t = TestServer::start().await;
    let d = common::deployment("d", 1);
    assert_eq!(
        t.post_json("/apis/apps/v1/namespaces/default/deployments", &d)
            .await
            .status,
        StatusCode::CREATED
    );
    let patch = json!({"spec": {"selector": {"matchLabels": {"app": "other"}}, "template": {"metadata": {"labels": {"app": "other"}}}}});
    let r = t
        .patch(
            "/apis/apps/v1/namespaces/default/deployments/d",
            "application/merge-patch+json",
            &patch,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.json()["message"]
        .as_str()
        .unwrap_or_default()
        .contains("field is immutable"));
}

#[tokio::test]
async fn unknown_paths_methods_and_media_types_get_404_405_406_415() {
    let t = TestServer::start().await;
    assert_eq!(t.get("/api/v1/foos").await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        t.get("/apis/nope.example.com/v1").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        t.get(&format!("{CMS}/missing")).await.status,
        StatusCode::NOT_FOUND
    );
    let r = t
        .raw(
            Method::POST,
            &format!("{CMS}/x"),
            &[("content-type", "application/json")],
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    let r = t
        .raw(Method::GET, CMS, &[("accept", "text/html")], Vec::new())
        .await;
    assert_eq!(r.status, StatusCode::NOT_ACCEPTABLE);
    let r = t
        .raw(
            Method::POST,
            CMS,
            &[("content-type", "text/plain")],
            b"hi".to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = t
        .raw(
            Method::PATCH,
            &format!("{CMS}/x"),
            &[("content-type", "application/json")],
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn bad_query_parameters_are_400() {
    let t = TestServer::start().await;
    for q in [
        "limit=abc",
        "watch=maybe",
        "resourceVersion=xyz",
        "resourceVersionMatch=Sometimes&resourceVersion=1",
        "fieldSelector=a",
    ] {
        let r = t.get(&format!("{CMS}?{q}")).await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{q}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
    let r = t
        .post_json(
            &format!("{CMS}?dryRun=Some"),
            &json!({"metadata": {"name": "x"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = t
        .post_json(
            &format!("{CMS}?fieldValidation=Loose"),
            &json!({"metadata": {"name": "x"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn json_patch_errors_are_reported_not_500() {
    let t = TestServer::start().await;
    t.post_json(
        CMS,
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "p"}}),
    )
    .await;
    let r = t
        .patch(
            &format!("{CMS}/p"),
            "application/json-patch+json",
            &json!([{"op": "test", "path": "/data/x", "value": 1}]),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = t
        .patch(
            &format!("{CMS}/p"),
            "application/json-patch+json",
            &json!({"not": "a list"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let pod = common::pod("sp", &[]);
    t.post_json("/api/v1/namespaces/default/pods", &pod).await;
    let bad = json!({"spec": {"containers": [{"name": "c", "$patch": "nonsense"}]}});
    let r = t
        .patch(
            "/api/v1/namespaces/default/pods/sp",
            "application/strategic-merge-patch+json",
            &bad,
        )
        .await;
    assert!(
        r.status.is_client_error(),
        "{}: {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
}

#[tokio::test]
async fn protobuf_bodies_are_decoded_and_protobuf_only_clients_get_protobuf() {
    let t = TestServer::start().await;
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "pb"}, "data": {"k": "v"}});
    let body = rkube_proto::encode(&cm).expect("encode");
    let headers = [
        ("content-type", "application/vnd.kubernetes.protobuf"),
        (
            "accept",
            "application/vnd.kubernetes.protobuf,application/json",
        ),
    ];
    let r = t.raw(Method::POST, CMS, &headers, body).await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.json()["data"]["k"], "v");
    let accept = [("accept", "application/vnd.kubernetes.protobuf")];
    let r = t
        .raw(Method::GET, &format!("{CMS}/pb"), &accept, Vec::new())
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let ct = r.headers.get("content-type").and_then(|v| v.to_str().ok());
    assert_eq!(ct, Some("application/vnd.kubernetes.protobuf"));
    let back = rkube_proto::decode(&r.body).expect("decode");
    assert_eq!(back["metadata"]["name"], "pb");
    let garbage = t
        .raw(
            Method::POST,
            CMS,
            &[("content-type", "application/vnd.kubernetes.protobuf")],
            b"k8s\0garbage".to_vec(),
        )
        .await;
    assert_eq!(garbage.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn writes_beyond_the_in_flight_limit_get_429_with_retry_after() {
    use tower::ServiceExt;
    let t = TestServer::start_with(rkube_apiserver::Config {
        max_mutating_requests_inflight: 1,
        ..Default::default()
    })
    .await;
    // system:masters is exempt from the limit, as upstream: the limited requests come from a
    // user that cluster-admin is bound to
    let worker = rkube_apiserver::authz::User {
        name: "worker".into(),
        groups: vec!["system:authenticated".into()],
        ..Default::default()
    };
    let binding = t
        .post_json(
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                "metadata": {"name": "worker-admin"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "worker"}]}),
        )
        .await;
    assert_eq!(binding.status, StatusCode::CREATED);
    common::eventually(std::time::Duration::from_secs(5), || {
        let t = &t;
        let worker = worker.clone();
        async move {
            let r = t
                .raw_as(Some(worker), Method::GET, CMS, &[], Vec::new())
                .await;
            (r.status == StatusCode::OK).then_some(())
        }
    })
    .await;
    // The first write holds the only slot while its body has not arrived.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(1);
    let body = axum::body::Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    let mut req = http::Request::post(CMS)
        .header("content-type", "application/json")
        .body(body)
        .expect("request");
    req.extensions_mut()
        .insert(rkube_apiserver::authn::InProcessIdentity(worker.clone()));
    let router = t.server.router();
    let first = tokio::spawn(async move { router.oneshot(req).await });
    let server = t.server.clone();
    common::eventually(std::time::Duration::from_secs(5), || {
        let server = server.clone();
        async move { (server.free_inflight_slots().1 == 0).then_some(()) }
    })
    .await;
    let cm_b = serde_json::to_vec(
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}}),
    )
    .expect("json");
    let second = t
        .raw_as(
            Some(worker.clone()),
            Method::POST,
            CMS,
            &[("content-type", "application/json")],
            cm_b,
        )
        .await;
    assert_eq!(second.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        second
            .headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    assert_eq!(second.json()["reason"], "TooManyRequests");
    // Reads have their own limit.
    assert_eq!(t.get(CMS).await.status, StatusCode::OK);
    // system:masters writes even while the slot is taken.
    let privileged = t
        .post_json(
            CMS,
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
        )
        .await;
    assert_eq!(privileged.status, StatusCode::CREATED);
    let cm = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}"#;
    tx.send(Ok(bytes::Bytes::from_static(cm)))
        .await
        .expect("send body");
    drop(tx);
    let resp = first.await.expect("join").expect("infallible");
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(t.server.free_inflight_slots().1, 1);
}
