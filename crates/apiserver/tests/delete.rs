//! Deletion: finalizers, graceful pod deletion, propagation policies, preconditions and
//! deletecollection.

mod common;

use common::{pod, TestServer};
use http::StatusCode;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions, PropagationPolicy,
};
use serde_json::json;

fn code(err: kube::Error) -> u16 {
    match err {
        kube::Error::Api(s) => s.code,
        other => panic!("not an API error: {other:?}"),
    }
}

#[tokio::test]
async fn finalizers_hold_an_object_until_removed() {
    let t = TestServer::start().await;
    let api: Api<ConfigMap> = Api::namespaced(t.client.clone(), "default");
    let cm: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "f", "finalizers": ["example.com/hold"]}}),
    )
    .expect("cm");
    api.create(&PostParams::default(), &cm)
        .await
        .expect("create");
    api.delete("f", &DeleteParams::default())
        .await
        .expect("delete");
    let held = api.get("f").await.expect("still there");
    assert!(held.metadata.deletion_timestamp.is_some());
    assert_eq!(held.metadata.deletion_grace_period_seconds, Some(0));
    api.patch(
        "f",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("remove finalizer");
    assert_eq!(code(api.get("f").await.expect_err("gone")), 404);
}

#[tokio::test]
async fn finalizing_a_terminating_namespace_deletes_it() {
    use k8s_openapi::api::core::v1::Namespace;
    let t = TestServer::start().await;
    let api: Api<Namespace> = Api::all(t.client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "fin"}})).expect("ns");
    api.create(&PostParams::default(), &ns)
        .await
        .expect("create");
    api.delete("fin", &DeleteParams::default())
        .await
        .expect("delete");
    let mut held = api.get("fin").await.expect("held by spec.finalizers");
    assert_eq!(
        held.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Terminating")
    );
    // A status update of the terminating namespace does not delete it.
    api.replace_status("fin", &PostParams::default(), &held)
        .await
        .expect("status update");
    api.get("fin").await.expect("still held");
    held.spec.get_or_insert_with(Default::default).finalizers = Some(vec![]);
    api.replace_subresource::<Namespace>("finalize", "fin", &PostParams::default(), &held)
        .await
        .expect("finalize");
    assert_eq!(code(api.get("fin").await.expect_err("gone")), 404);
}

#[tokio::test]
async fn scheduled_pods_are_deleted_gracefully_and_unscheduled_ones_at_once() {
    let t = TestServer::start().await;
    let api: Api<Pod> = Api::namespaced(t.client.clone(), "default");
    let mut scheduled = pod("running", &[]);
    scheduled["spec"]["nodeName"] = json!("n1");
    let p: Pod = serde_json::from_value(scheduled).expect("pod");
    api.create(&PostParams::default(), &p)
        .await
        .expect("create");
    let p: Pod = serde_json::from_value(pod("pending", &[])).expect("pod");
    api.create(&PostParams::default(), &p)
        .await
        .expect("create");

    api.delete("pending", &DeleteParams::default())
        .await
        .expect("delete");
    assert_eq!(
        code(api.get("pending").await.expect_err("gone at once")),
        404
    );

    let resp = api
        .delete("running", &DeleteParams::default())
        .await
        .expect("delete");
    let marked = resp.left().expect("the pod, still terminating");
    assert_eq!(marked.metadata.deletion_grace_period_seconds, Some(30));
    assert!(marked.metadata.deletion_timestamp.is_some());
    let still = api.get("running").await.expect("terminating");
    assert_eq!(
        still.metadata.generation,
        Some(2),
        "deletion bumps generation"
    );
    // A shorter grace period shortens it; zero (the kubelet's confirmation) deletes.
    api.delete(
        "running",
        &DeleteParams {
            grace_period_seconds: Some(5),
            ..Default::default()
        },
    )
    .await
    .expect("shorten");
    assert_eq!(
        api.get("running")
            .await
            .expect("get")
            .metadata
            .deletion_grace_period_seconds,
        Some(5)
    );
    api.delete("running", &DeleteParams::default().grace_period(0))
        .await
        .expect("confirm");
    assert_eq!(code(api.get("running").await.expect_err("gone")), 404);
}

#[tokio::test]
async fn propagation_policies_are_recorded_as_finalizers() {
    let t = TestServer::start().await;
    let api: Api<ConfigMap> = Api::namespaced(t.client.clone(), "default");
    for name in ["orphan", "fg"] {
        let cm: ConfigMap =
            serde_json::from_value(json!({"metadata": {"name": name}})).expect("cm");
        api.create(&PostParams::default(), &cm)
            .await
            .expect("create");
    }
    api.delete(
        "orphan",
        &DeleteParams {
            propagation_policy: Some(PropagationPolicy::Orphan),
            ..Default::default()
        },
    )
    .await
    .expect("orphan");
    let o = api.get("orphan").await.expect("held by orphan finalizer");
    assert_eq!(o.metadata.finalizers, Some(vec!["orphan".to_string()]));
    api.delete("fg", &DeleteParams::foreground())
        .await
        .expect("foreground");
    let f = api.get("fg").await.expect("held by foreground finalizer");
    assert_eq!(
        f.metadata.finalizers,
        Some(vec!["foregroundDeletion".to_string()])
    );
}

#[tokio::test]
async fn preconditions_that_do_not_match_are_409() {
    let t = TestServer::start().await;
    let api: Api<ConfigMap> = Api::namespaced(t.client.clone(), "default");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "p"}})).expect("cm");
    let created = api
        .create(&PostParams::default(), &cm)
        .await
        .expect("create");
    let wrong_uid = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some("nope".into()),
            resource_version: None,
        }),
        ..Default::default()
    };
    assert_eq!(
        code(api.delete("p", &wrong_uid).await.expect_err("uid")),
        409
    );
    let wrong_rv = DeleteParams {
        preconditions: Some(Preconditions {
            uid: None,
            resource_version: Some("1".into()),
        }),
        ..Default::default()
    };
    assert_eq!(code(api.delete("p", &wrong_rv).await.expect_err("rv")), 409);
    let right = DeleteParams {
        preconditions: Some(Preconditions {
            uid: created.metadata.uid.clone(),
            resource_version: created.metadata.resource_version.clone(),
        }),
        ..Default::default()
    };
    api.delete("p", &right).await.expect("delete");
    assert_eq!(code(api.get("p").await.expect_err("gone")), 404);
}

#[tokio::test]
async fn delete_collection_deletes_what_the_selector_matches() {
    let t = TestServer::start().await;
    let api: Api<ConfigMap> = Api::namespaced(t.client.clone(), "default");
    for (name, app) in [("a", "x"), ("b", "x"), ("c", "y")] {
        let cm: ConfigMap =
            serde_json::from_value(json!({"metadata": {"name": name, "labels": {"app": app}}}))
                .expect("cm");
        api.create(&PostParams::default(), &cm)
            .await
            .expect("create");
    }
    api.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("app=x"),
    )
    .await
    .expect("deletecollection");
    let left: Vec<String> = api
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    assert_eq!(left, ["c"]);
}

#[tokio::test]
async fn deleting_a_missing_object_is_404_and_namespaces_reject_deletecollection() {
    let t = TestServer::start().await;
    let r = t
        .delete("/api/v1/namespaces/default/configmaps/none", None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["message"], "configmaps \"none\" not found");
    let r = t.delete("/api/v1/namespaces", None).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn deleting_a_namespace_marks_it_terminating_and_blocks_new_content() {
    let t = TestServer::start().await;
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "gone"}});
    assert_eq!(
        t.post_json("/api/v1/namespaces", &ns).await.status,
        StatusCode::CREATED
    );
    let r = t.delete("/api/v1/namespaces/gone", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["status"]["phase"], "Terminating");
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}});
    let r = t.post_json("/api/v1/namespaces/gone/configmaps", &cm).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.json()["message"]
        .as_str()
        .unwrap_or_default()
        .contains("because it is being terminated"));
}
