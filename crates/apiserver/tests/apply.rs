//! Server-side apply through kube-rs: creation, field ownership in managedFields, conflicts
//! (409 without force), forced takeover, removal of fields a manager stops applying, and
//! managed-fields tracking of ordinary updates.

mod common;

use common::TestServer;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

fn cm(data: serde_json::Value) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app"}, "data": data})
}

fn managers(obj: &ConfigMap) -> Vec<(String, String)> {
    obj.metadata
        .managed_fields
        .iter()
        .flatten()
        .map(|m| {
            (
                m.manager.clone().unwrap_or_default(),
                m.operation.clone().unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test]
async fn apply_creates_and_records_ownership() {
    let t = TestServer::start().await;
    let api: Api<ConfigMap> = Api::namespaced(t.client.clone(), "default");
    let got = api
        .patch(
            "app",
            &PatchParams::apply("alpha"),
            &Patch::Apply(cm(json!({"a": "1"}))),
        )
        .await
        .expect("apply");
    assert_eq!(
        got.data
            .as_ref()
            .and_then(|d| d.get("a"))
            .map(String::as_str),
        Some("1")
    );
    assert_eq!(managers(&got), [("alpha".to_string(), "Apply".to_string())]);
    let fields = got
        .metadata
        .managed_fields
        .as_ref()
        .and_then(|m| m[0].fields_v1.clone())
        .expect("fieldsV1");
    assert_eq!(fields.0["f:data"]["f:a"], json!({}));
    // Applying the same configuration again changes nothing.
    let again = api
        .patch(
            "app",
            &PatchParams::apply("alpha"),
            &Patch::Apply(cm(json!({"a": "1"}))),
        )
        .await
        .expect("apply");
    assert_eq!(
        again.metadata.resource_version,
        got.metadata.resource_version
    );
}

#[tokio::test]
async fn a_field_owned_by_another_manager_conflicts_unless_forced() {
    let t = TestServer::start().await;
    let api: Api<ConfigMap> = Api::namespaced(t.client.clone(), "default");
    api.patch(
        "app",
        &PatchParams::apply("alpha"),
        &Patch::Apply(cm(json!({"a": "1"}))),
    )
    .await
    .expect("alpha");
    let err = api
        .patch(
            "app",
            &PatchParams::apply("beta"),
            &Patch::Apply(cm(json!({"a": "2"}))),
        )
        .await
        .expect_err("conflict");
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 409);
            assert_eq!(
                s.message,
                "Apply failed with 1 conflict: conflict with \"alpha\": .data.a"
            );
        }
        other => panic!("{other:?}"),
    }
    // Disjoint fields apply side by side.
    let both = api
        .patch(
            "app",
            &PatchParams::apply("beta"),
            &Patch::Apply(cm(json!({"b": "2"}))),
        )
        .await
        .expect("beta");
    assert_eq!(both.data.as_ref().map(|d| d.len()), Some(2));
    let forced = api
        .patch(
            "app",
            &PatchParams::apply("beta").force(),
            &Patch::Apply(cm(json!({"a": "9", "b": "2"}))),
        )
        .await
        .expect("forced");
    assert_eq!(
        forced
            .data
            .as_ref()
            .and_then(|d| d.get("a"))
            .map(String::as_str),
        Some("9")
    );
    // alpha no longer owns data.a, so alpha dropping it leaves it alone.
    let dropped = api
        .patch(
            "app",
            &PatchParams::apply("alpha"),
            &Patch::Apply(cm(json!({}))),
        )
        .await
        .expect("alpha again");
    assert_eq!(
        dropped
            .data
            .as_ref()
            .and_then(|d| d.get("a"))
            .map(String::as_str),
        Some("9")
    );
}

#[tokio::test]
async fn fields_a_manager_stops_applying_are_removed() {
    let t = TestServer::start().await;
    let api: Api<ConfigMap> = Api::namespaced(t.client.clone(), "default");
    api.patch(
        "app",
        &PatchParams::apply("alpha"),
        &Patch::Apply(cm(json!({"a": "1", "b": "2"}))),
    )
    .await
    .expect("apply");
    let got = api
        .patch(
            "app",
            &PatchParams::apply("alpha"),
            &Patch::Apply(cm(json!({"a": "1"}))),
        )
        .await
        .expect("apply");
    assert_eq!(
        got.data.map(|d| d.into_keys().collect::<Vec<_>>()),
        Some(vec!["a".to_string()])
    );
}

#[tokio::test]
async fn ordinary_updates_are_tracked_and_conflict_with_apply() {
    let t = TestServer::start().await;
    let api: Api<ConfigMap> = Api::namespaced(t.client.clone(), "default");
    api.patch(
        "app",
        &PatchParams::apply("alpha"),
        &Patch::Apply(cm(json!({"a": "1"}))),
    )
    .await
    .expect("apply");
    let pp = PatchParams {
        field_manager: Some("editor".into()),
        ..Default::default()
    };
    let edited = api
        .patch("app", &pp, &Patch::Merge(json!({"data": {"a": "2"}})))
        .await
        .expect("merge");
    assert!(
        managers(&edited).contains(&("editor".to_string(), "Update".to_string())),
        "{:?}",
        managers(&edited)
    );
    let err = api
        .patch(
            "app",
            &PatchParams::apply("alpha"),
            &Patch::Apply(cm(json!({"a": "3"}))),
        )
        .await
        .expect_err("conflict");
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 409 && s.message.contains("conflict with \"editor\"")),
        "{err:?}"
    );
}

#[tokio::test]
async fn apply_merges_containers_by_name_across_managers() {
    let t = TestServer::start().await;
    let api: Api<Deployment> = Api::namespaced(t.client.clone(), "default");
    let base = |containers: serde_json::Value| {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": containers}}}
        })
    };
    api.patch(
        "web",
        &PatchParams::apply("main"),
        &Patch::Apply(base(json!([{"name": "app", "image": "busybox:1.36"}]))),
    )
    .await
    .expect("main");
    let d = api
        .patch(
            "web",
            &PatchParams::apply("mesh"),
            &Patch::Apply(base(json!([{"name": "proxy", "image": "busybox:1.37"}]))),
        )
        .await
        .expect("mesh");
    let names: Vec<String> = d
        .spec
        .expect("spec")
        .template
        .spec
        .expect("pod")
        .containers
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["app", "proxy"]);
    let err = t
        .patch(
            "/apis/apps/v1/namespaces/default/deployments/web",
            "application/apply-patch+yaml",
            &json!({}),
        )
        .await;
    assert_eq!(err.status.as_u16(), 422, "fieldManager is required");
}
