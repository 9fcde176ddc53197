//! Create, read, update and delete through kube-rs: system fields, generateName, generation,
//! optimistic concurrency, dry run and field validation.

mod common;

use common::{deployment, pod, TestServer};
use http::StatusCode;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, PatchParams, PostParams};
use serde_json::json;

fn status_code(err: kube::Error) -> u16 {
    match err {
        kube::Error::Api(s) => s.code,
        other => panic!("not an API error: {other:?}"),
    }
}

#[tokio::test]
async fn system_namespaces_exist_at_start() {
    let t = TestServer::start().await;
    let ns: Api<Namespace> = Api::all(t.client.clone());
    let names: Vec<String> = ns
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    for want in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(
            names.contains(&want.to_string()),
            "{want} missing from {names:?}"
        );
    }
    let default = ns.get("default").await.expect("default");
    assert_eq!(
        default.status.and_then(|s| s.phase).as_deref(),
        Some("Active")
    );
    assert_eq!(
        default.spec.and_then(|s| s.finalizers),
        Some(vec!["kubernetes".to_string()])
    );
}

#[tokio::test]
async fn create_sets_system_fields_and_get_returns_them() {
    let t = TestServer::start().await;
    let pods: Api<Pod> = Api::namespaced(t.client.clone(), "default");
    let p: Pod = serde_json::from_value(pod("web", &[("app", "web")])).expect("pod");
    let created = pods
        .create(&PostParams::default(), &p)
        .await
        .expect("create");
    let meta = &created.metadata;
    assert_eq!(meta.uid.as_ref().map(String::len), Some(36));
    assert!(meta.creation_timestamp.is_some());
    assert!(meta
        .resource_version
        .as_ref()
        .is_some_and(|rv| rv.parse::<i64>().is_ok()));
    assert_eq!(meta.namespace.as_deref(), Some("default"));
    assert_eq!(meta.generation, Some(1));
    let status = created.status.clone().expect("status");
    assert_eq!(status.phase.as_deref(), Some("Pending"));
    assert_eq!(status.qos_class.as_deref(), Some("BestEffort"));
    // Defaults were applied.
    let spec = created.spec.clone().expect("spec");
    assert_eq!(spec.restart_policy.as_deref(), Some("Always"));
    assert_eq!(
        spec.containers[0].image_pull_policy.as_deref(),
        Some("IfNotPresent")
    );
    let got = pods.get("web").await.expect("get");
    assert_eq!(got.metadata.uid, created.metadata.uid);
    assert_eq!(
        got.metadata.resource_version,
        created.metadata.resource_version
    );
    assert_eq!(got.metadata.labels, created.metadata.labels);
}

#[tokio::test]
async fn generate_name_makes_unique_names() {
    let t = TestServer::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(t.client.clone(), "default");
    let mut names = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let cm: ConfigMap =
            serde_json::from_value(json!({"metadata": {"generateName": "cfg-"}})).expect("cm");
        let c = cms
            .create(&PostParams::default(), &cm)
            .await
            .expect("create");
        let name = c.metadata.name.expect("name");
        assert!(name.starts_with("cfg-") && name.len() == 9, "{name}");
        assert!(names.insert(name));
    }
}

#[tokio::test]
async fn creating_an_existing_name_is_409_already_exists() {
    let t = TestServer::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(t.client.clone(), "default");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "a"}})).expect("cm");
    cms.create(&PostParams::default(), &cm)
        .await
        .expect("create");
    let err = cms
        .create(&PostParams::default(), &cm)
        .await
        .expect_err("exists");
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 409);
            assert_eq!(s.reason, "AlreadyExists");
            assert_eq!(s.message, "configmaps \"a\" already exists");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn generation_moves_on_spec_changes_only() {
    let t = TestServer::start().await;
    let deploys: Api<Deployment> = Api::namespaced(t.client.clone(), "default");
    let d: Deployment = serde_json::from_value(deployment("web", 1)).expect("deploy");
    let d = deploys
        .create(&PostParams::default(), &d)
        .await
        .expect("create");
    assert_eq!(d.metadata.generation, Some(1));
    let labelled = deploys
        .patch(
            "web",
            &PatchParams::default(),
            &kube::api::Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .expect("label");
    assert_eq!(labelled.metadata.generation, Some(1));
    let scaled = deploys
        .patch(
            "web",
            &PatchParams::default(),
            &kube::api::Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .expect("scale");
    assert_eq!(scaled.metadata.generation, Some(2));
    // Status written through the main resource is ignored.
    let ignored = deploys
        .patch(
            "web",
            &PatchParams::default(),
            &kube::api::Patch::Merge(json!({"status": {"replicas": 7}})),
        )
        .await
        .expect("status via main");
    assert_eq!(ignored.status.and_then(|s| s.replicas), None);
}

#[tokio::test]
async fn a_stale_resource_version_is_409_conflict() {
    let t = TestServer::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(t.client.clone(), "default");
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "a"}, "data": {"k": "1"}})).expect("cm");
    let first = cms
        .create(&PostParams::default(), &cm)
        .await
        .expect("create");
    let mut v2 = first.clone();
    v2.data = Some([("k".to_string(), "2".to_string())].into());
    let second = cms
        .replace("a", &PostParams::default(), &v2)
        .await
        .expect("update");
    assert_ne!(
        second.metadata.resource_version,
        first.metadata.resource_version
    );
    let mut stale = first.clone();
    stale.data = Some([("k".to_string(), "3".to_string())].into());
    let err = cms
        .replace("a", &PostParams::default(), &stale)
        .await
        .expect_err("stale");
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 409);
            assert_eq!(s.reason, "Conflict");
            assert!(
                s.message.contains("the object has been modified"),
                "{}",
                s.message
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        cms.get("a")
            .await
            .expect("get")
            .data
            .and_then(|d| d.get("k").cloned())
            .as_deref(),
        Some("2")
    );
}

#[tokio::test]
async fn dry_run_creates_and_deletes_nothing() {
    let t = TestServer::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(t.client.clone(), "default");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "dry"}})).expect("cm");
    let pp = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let echoed = cms.create(&pp, &cm).await.expect("dry create");
    assert_eq!(echoed.metadata.name.as_deref(), Some("dry"));
    assert_eq!(
        status_code(cms.get("dry").await.expect_err("not stored")),
        404
    );
    cms.create(&PostParams::default(), &cm)
        .await
        .expect("create");
    let dp = DeleteParams {
        dry_run: true,
        ..Default::default()
    };
    cms.delete("dry", &dp).await.expect("dry delete");
    cms.get("dry").await.expect("still there");
}

#[tokio::test]
async fn cluster_scoped_objects_have_no_namespace() {
    let t = TestServer::start().await;
    let nodes: Api<Node> = Api::all(t.client.clone());
    let n: Node =
        serde_json::from_value(json!({"metadata": {"name": "n1", "labels": {"zone": "a"}}}))
            .expect("node");
    let created = nodes
        .create(&PostParams::default(), &n)
        .await
        .expect("create");
    assert_eq!(created.metadata.namespace, None);
    let r = t.get("/api/v1/namespaces/default/nodes/n1").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn creating_in_a_missing_namespace_is_404() {
    let t = TestServer::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(t.client.clone(), "nope");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "a"}})).expect("cm");
    match cms
        .create(&PostParams::default(), &cm)
        .await
        .expect_err("404")
    {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 404);
            assert_eq!(s.message, "namespaces \"nope\" not found");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn strict_field_validation_rejects_unknown_fields_and_warn_reports_them() {
    let t = TestServer::start().await;
    let body =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "s"}, "bogus": 1});
    let strict = t
        .post_json(
            "/api/v1/namespaces/default/configmaps?fieldValidation=Strict",
            &body,
        )
        .await;
    assert_eq!(strict.status, StatusCode::BAD_REQUEST);
    let msg = strict.json()["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        msg.contains("strict decoding error: unknown field \"bogus\""),
        "{msg}"
    );
    let warn = t
        .post_json(
            "/api/v1/namespaces/default/configmaps?fieldValidation=Warn",
            &body,
        )
        .await;
    assert_eq!(warn.status, StatusCode::CREATED);
    let warning = warn
        .headers
        .get("warning")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(warning.contains("unknown field \\\"bogus\\\""), "{warning}");
    assert!(
        warn.json().get("bogus").is_none(),
        "unknown fields are dropped"
    );
    let dup = t
        .raw(
            http::Method::POST,
            "/api/v1/namespaces/default/configmaps?fieldValidation=Strict",
            &[("content-type", "application/json")],
            br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"d","name":"e"}}"#
                .to_vec(),
        )
        .await;
    assert_eq!(dup.status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&dup.body).contains("duplicate field \\\"metadata.name\\\""));
}
