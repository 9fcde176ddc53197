//! Patches of all three kinds, and the status, scale, binding and eviction subresources;
//! tables and discovery as kubectl reads them.

mod common;

use common::{deployment, pod, TestServer};
use http::{Method, StatusCode};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

const DEPLOY: &str = "/apis/apps/v1/namespaces/default/deployments/web";

async fn with_deployment() -> TestServer {
    let t = TestServer::start().await;
    let r = t
        .post_json(
            "/apis/apps/v1/namespaces/default/deployments",
            &deployment("web", 1),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    t
}

#[tokio::test]
async fn strategic_merge_patch_merges_containers_by_name() {
    let t = with_deployment().await;
    let api: Api<Deployment> = Api::namespaced(t.client.clone(), "default");
    let patch = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "busybox:1.37"},
        {"name": "sidecar", "image": "busybox:1.36"}
    ]}}}});
    let d = api
        .patch("web", &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .expect("patch");
    let cs = d
        .spec
        .expect("spec")
        .template
        .spec
        .expect("pod spec")
        .containers;
    assert_eq!(cs.len(), 2);
    let c = cs.iter().find(|c| c.name == "c").expect("c");
    assert_eq!(c.image.as_deref(), Some("busybox:1.37"));
    assert_eq!(
        c.ports.as_ref().map(Vec::len),
        Some(1),
        "ports kept by the merge"
    );
    let delete = json!({"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}}});
    let d = api
        .patch("web", &PatchParams::default(), &Patch::Strategic(delete))
        .await
        .expect("delete item");
    assert_eq!(
        d.spec
            .expect("spec")
            .template
            .spec
            .expect("pod spec")
            .containers
            .len(),
        1
    );
}

#[tokio::test]
async fn merge_patch_replaces_lists_and_json_patch_edits_paths() {
    let t = with_deployment().await;
    let api: Api<Deployment> = Api::namespaced(t.client.clone(), "default");
    let merge =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "only", "image": "x:1"}]}}}});
    let d = api
        .patch("web", &PatchParams::default(), &Patch::Merge(merge))
        .await
        .expect("merge");
    let cs = d
        .spec
        .expect("spec")
        .template
        .spec
        .expect("pod spec")
        .containers;
    assert_eq!(
        cs.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["only"]
    );
    assert_eq!(cs[0].ports, None, "a merge patch replaces the list");
    let ops = json!([
        {"op": "replace", "path": "/spec/replicas", "value": 4},
        {"op": "add", "path": "/metadata/labels", "value": {"k": "v"}}
    ]);
    let r = t.patch(DEPLOY, "application/json-patch+json", &ops).await;
    assert_eq!(r.status, StatusCode::OK);
    let d = r.json();
    assert_eq!(d["spec"]["replicas"], 4);
    assert_eq!(d["metadata"]["labels"]["k"], "v");
}

#[tokio::test]
async fn a_patch_with_a_stale_resource_version_is_409() {
    let t = with_deployment().await;
    let patch = json!({"metadata": {"resourceVersion": "1"}, "spec": {"replicas": 2}});
    let r = t
        .patch(DEPLOY, "application/merge-patch+json", &patch)
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn the_status_subresource_changes_only_status() {
    let t = with_deployment().await;
    let api: Api<Deployment> = Api::namespaced(t.client.clone(), "default");
    let patch = json!({"spec": {"replicas": 9}, "status": {"replicas": 1, "readyReplicas": 1}});
    let d = api
        .patch_status("web", &PatchParams::default(), &Patch::Merge(patch))
        .await
        .expect("status");
    assert_eq!(d.status.as_ref().and_then(|s| s.ready_replicas), Some(1));
    assert_eq!(
        d.spec.as_ref().and_then(|s| s.replicas),
        Some(1),
        "spec ignored on status"
    );
    assert_eq!(d.metadata.generation, Some(1));
    let got = api.get_status("web").await.expect("get status");
    assert_eq!(got.status.and_then(|s| s.replicas), Some(1));
}

#[tokio::test]
async fn scale_reads_and_writes_replicas() {
    let t = with_deployment().await;
    let api: Api<Deployment> = Api::namespaced(t.client.clone(), "default");
    let s = api.get_scale("web").await.expect("scale");
    assert_eq!(s.spec.and_then(|s| s.replicas), Some(1));
    assert_eq!(
        s.status.and_then(|s| s.selector).as_deref(),
        Some("app=web")
    );
    let scaled = api
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .expect("patch scale");
    assert_eq!(scaled.spec.and_then(|s| s.replicas), Some(5));
    let d = api.get("web").await.expect("get");
    assert_eq!(d.spec.and_then(|s| s.replicas), Some(5));
    assert_eq!(d.metadata.generation, Some(2));
    let mut stale = api.get_scale("web").await.expect("scale");
    stale.metadata.resource_version = Some("1".into());
    stale.spec = Some(k8s_openapi::api::autoscaling::v1::ScaleSpec { replicas: Some(2) });
    let r = t
        .put_json(
            &format!("{DEPLOY}/scale"),
            &serde_json::to_value(&stale).expect("json"),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn binding_assigns_a_node_once() {
    let t = TestServer::start().await;
    let api: Api<Pod> = Api::namespaced(t.client.clone(), "default");
    let p: Pod = serde_json::from_value(pod("b", &[])).expect("pod");
    api.create(&PostParams::default(), &p)
        .await
        .expect("create");
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "b"}, "target": {"apiVersion": "v1", "kind": "Node", "name": "n1"}});
    let r = t
        .post_json("/api/v1/namespaces/default/pods/b/binding", &binding)
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let got = api.get("b").await.expect("get");
    assert_eq!(got.spec.and_then(|s| s.node_name).as_deref(), Some("n1"));
    let scheduled = got.status.and_then(|s| s.conditions).unwrap_or_default();
    assert!(scheduled
        .iter()
        .any(|c| c.type_ == "PodScheduled" && c.status == "True"));
    let again = t
        .post_json("/api/v1/namespaces/default/pods/b/binding", &binding)
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn eviction_deletes_the_pod() {
    let t = TestServer::start().await;
    let api: Api<Pod> = Api::namespaced(t.client.clone(), "default");
    let p: Pod = serde_json::from_value(pod("e", &[])).expect("pod");
    api.create(&PostParams::default(), &p)
        .await
        .expect("create");
    let ev = json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "e"}});
    let r = t
        .post_json("/api/v1/namespaces/default/pods/e/eviction", &ev)
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert!(api.get_opt("e").await.expect("get").is_none());
}

#[tokio::test]
async fn tables_carry_upstream_pod_columns() {
    let t = TestServer::start().await;
    let api: Api<Pod> = Api::namespaced(t.client.clone(), "default");
    let p: Pod = serde_json::from_value(pod("tbl", &[])).expect("pod");
    api.create(&PostParams::default(), &p)
        .await
        .expect("create");
    let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
    let r = t
        .raw(
            Method::GET,
            "/api/v1/namespaces/default/pods?includeObject=Object",
            &[("accept", accept)],
            Vec::new(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let table = r.json();
    assert_eq!(table["kind"], "Table");
    let cols: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .expect("cols")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(&cols[..5], ["Name", "Ready", "Status", "Restarts", "Age"]);
    let row = &table["rows"][0];
    assert_eq!(row["cells"][0], "tbl");
    assert_eq!(row["cells"][1], "0/1");
    assert_eq!(row["cells"][2], "Pending");
    assert_eq!(row["object"]["kind"], "Pod");
}

#[tokio::test]
async fn discovery_lists_groups_resources_and_aggregated_documents() {
    let t = TestServer::start().await;
    let discovery = kube::Discovery::new(t.client.clone())
        .run()
        .await
        .expect("discovery");
    let mut kinds = Vec::new();
    for g in discovery.groups() {
        for (ar, _) in g.recommended_resources() {
            kinds.push(format!("{}/{}", ar.group, ar.kind));
        }
    }
    for want in [
        "/Pod",
        "apps/Deployment",
        "batch/CronJob",
        "networking.k8s.io/Ingress",
        "coordination.k8s.io/Lease",
        "apiextensions.k8s.io/CustomResourceDefinition",
    ] {
        assert!(kinds.iter().any(|k| k == want), "{want} missing");
    }
    let accept =
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
    let r = t
        .raw(Method::GET, "/apis", &[("accept", accept)], Vec::new())
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let ct = r
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(ct.contains("as=APIGroupDiscoveryList"), "{ct}");
    assert_eq!(r.json()["kind"], "APIGroupDiscoveryList");
    let v = t.get("/version").await.json();
    assert_eq!(v["major"], "1");
    for path in ["/healthz", "/livez", "/readyz"] {
        assert_eq!(t.get(path).await.status, StatusCode::OK, "{path}");
    }
    let v3 = t.get("/openapi/v3").await.json();
    assert!(v3["paths"]["api/v1"]["serverRelativeURL"]
        .as_str()
        .is_some());
    let core = t.get("/openapi/v3/api/v1").await;
    assert_eq!(core.status, StatusCode::OK);
    assert!(core.json()["components"]["schemas"]["io.k8s.api.core.v1.Pod"].is_object());
}

#[tokio::test]
async fn metrics_count_requests_and_watchers() {
    let t = TestServer::start().await;
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "m"}});
    // Through the socket, so the request passes the router like any client's.
    let api: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(t.client.clone(), "default");
    api.create(
        &PostParams::default(),
        &serde_json::from_value(cm).expect("cm"),
    )
    .await
    .expect("create");
    let rv = api
        .list(&Default::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("rv");
    let stream = api.watch(&Default::default(), &rv).await.expect("watch");
    let text = common::eventually(std::time::Duration::from_secs(5), || async {
        let text = String::from_utf8(t.get("/metrics").await.body).expect("utf8");
        text.contains(
            "apiserver_registered_watchers{group=\"\",version=\"v1\",kind=\"ConfigMap\"} 1",
        )
        .then_some(text)
    })
    .await;
    let created = text.lines().any(|l| {
        l.starts_with("apiserver_request_total{")
            && l.contains("verb=\"POST\"")
            && l.contains("resource=\"configmaps\"")
            && l.contains("code=\"201\"")
    });
    assert!(created, "{text}");
    assert!(
        text.contains("apiserver_request_duration_seconds_bucket{"),
        "{text}"
    );
    drop(stream);
}

#[tokio::test]
async fn metadata_only_get_list_and_watch_answer_partial_object_metadata() {
    use futures::{StreamExt, TryStreamExt};
    let t = TestServer::start().await;
    let api: Api<Pod> = Api::namespaced(t.client.clone(), "default");
    let p: Pod = serde_json::from_value(pod("meta", &[("app", "m")])).expect("pod");
    api.create(&PostParams::default(), &p)
        .await
        .expect("create");

    // kube-rs's metadata API sends `as=PartialObjectMetadata[List]` and decodes the reply.
    let one = api.get_metadata("meta").await.expect("get_metadata");
    assert_eq!(one.metadata.labels.unwrap_or_default()["app"], "m");
    assert_eq!(
        one.types.map(|t| t.kind).as_deref(),
        Some("PartialObjectMetadata")
    );
    let list = api
        .list_metadata(&Default::default())
        .await
        .expect("list_metadata");
    assert_eq!(list.items.len(), 1);
    assert_eq!(list.items[0].metadata.name.as_deref(), Some("meta"));
    assert!(list.metadata.resource_version.is_some());

    // No spec or status crosses the wire.
    let list_accept = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";
    let r = t
        .raw(
            Method::GET,
            "/api/v1/namespaces/default/pods",
            &[("accept", list_accept)],
            Vec::new(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let body = r.json();
    assert_eq!(body["kind"], "PartialObjectMetadataList");
    assert_eq!(body["items"][0]["kind"], "PartialObjectMetadata");
    assert!(body["items"][0].get("spec").is_none());

    // The shape must fit: a list asked for as one object, or an object as a list, is 406.
    let one_accept = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";
    let r = t
        .raw(
            Method::GET,
            "/api/v1/namespaces/default/pods",
            &[("accept", one_accept)],
            Vec::new(),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_ACCEPTABLE);
    let r = t
        .raw(
            Method::GET,
            "/api/v1/namespaces/default/pods/meta",
            &[("accept", list_accept)],
            Vec::new(),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_ACCEPTABLE);

    // A metadata watch sees a change as PartialObjectMetadata.
    let rv = list.metadata.resource_version.unwrap_or_default();
    let mut events = api
        .watch_metadata(&Default::default(), &rv)
        .await
        .expect("watch_metadata")
        .boxed();
    api.patch(
        "meta",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "n"}}})),
    )
    .await
    .expect("patch");
    let ev = tokio::time::timeout(std::time::Duration::from_secs(10), events.try_next())
        .await
        .expect("an event within 10 s")
        .expect("watch")
        .expect("stream open");
    match ev {
        kube::api::WatchEvent::Modified(m) => {
            assert_eq!(m.metadata.labels.unwrap_or_default()["app"], "n")
        }
        other => panic!("want Modified, got {other:?}"),
    }
}
