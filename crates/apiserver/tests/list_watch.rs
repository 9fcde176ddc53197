//! Lists and watches: selectors, pagination over one snapshot, resourceVersion semantics,
//! watches from a revision, bookmarks, watch-list (`sendInitialEvents`) and 410 Gone.

mod common;

use std::time::Duration;

use common::{pod, TestServer};
use futures::{StreamExt, TryStreamExt};
use http::StatusCode;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;

async fn make_pods(api: &Api<Pod>, n: usize, prefix: &str, labels: &[(&str, &str)]) {
    for i in 0..n {
        let p: Pod = serde_json::from_value(pod(&format!("{prefix}-{i:03}"), labels)).expect("pod");
        api.create(&PostParams::default(), &p)
            .await
            .expect("create");
    }
}

fn names(pods: &[Pod]) -> Vec<String> {
    pods.iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect()
}

#[tokio::test]
async fn label_selectors_filter_lists() {
    let t = TestServer::start().await;
    let api: Api<Pod> = Api::namespaced(t.client.clone(), "default");
    make_pods(&api, 2, "web", &[("app", "web"), ("tier", "front")]).await;
    make_pods(&api, 2, "db", &[("app", "db")]).await;
    make_pods(&api, 1, "bare", &[]).await;
    let cases: &[(&str, usize)] = &[
        ("app=web", 2),
        ("app==db", 2),
        ("app!=web", 3),
        ("app in (web,db)", 4),
        ("app notin (web)", 3),
        ("tier", 2),
        ("!tier", 3),
        ("app=web,tier=front", 2),
        ("app=nothing", 0),
    ];
    for (sel, want) in cases {
        let got = api
            .list(&ListParams::default().labels(sel))
            .await
            .expect("list")
            .items;
        assert_eq!(got.len(), *want, "{sel}: {:?}", names(&got));
    }
    let bad = t
        .get("/api/v1/namespaces/default/pods?labelSelector=a%20in%20b")
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn field_selectors_filter_lists_and_unsupported_fields_are_rejected() {
    let t = TestServer::start().await;
    let api: Api<Pod> = Api::namespaced(t.client.clone(), "default");
    make_pods(&api, 3, "p", &[]).await;
    let one = api
        .list(&ListParams::default().fields("metadata.name=p-001"))
        .await
        .expect("list");
    assert_eq!(names(&one.items), ["p-001"]);
    let pending = api
        .list(&ListParams::default().fields("status.phase=Pending"))
        .await
        .expect("list");
    assert_eq!(pending.items.len(), 3);
    let unscheduled = api
        .list(&ListParams::default().fields("spec.nodeName="))
        .await
        .expect("list");
    assert_eq!(unscheduled.items.len(), 3);
    let not_one = api
        .list(&ListParams::default().fields("metadata.name!=p-001"))
        .await
        .expect("list");
    assert_eq!(not_one.items.len(), 2);
    let err = api
        .list(&ListParams::default().fields("spec.bogus=x"))
        .await
        .expect_err("unsupported");
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 400);
            assert!(
                s.message.contains("field label not supported"),
                "{}",
                s.message
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn pagination_serves_one_consistent_snapshot() {
    let t = TestServer::start().await;
    let api: Api<Pod> = Api::namespaced(t.client.clone(), "default");
    make_pods(&api, 10, "p", &[]).await;
    let first = api
        .list(&ListParams::default().limit(4))
        .await
        .expect("page 1");
    assert_eq!(first.items.len(), 4);
    let token = first.metadata.continue_.clone().expect("continue");
    assert_eq!(first.metadata.remaining_item_count, Some(6));
    // Writes after the first page are not in later pages.
    make_pods(&api, 3, "q", &[]).await;
    api.delete("p-009", &Default::default())
        .await
        .expect("delete");
    let mut all = names(&first.items);
    let mut token = Some(token);
    while let Some(t) = token {
        let page = api
            .list(&ListParams::default().limit(4).continue_token(&t))
            .await
            .expect("page");
        assert_eq!(
            page.metadata.resource_version,
            first.metadata.resource_version
        );
        all.extend(names(&page.items));
        token = page.metadata.continue_.filter(|c| !c.is_empty());
    }
    let want: Vec<String> = (0..10).map(|i| format!("p-{i:03}")).collect();
    assert_eq!(all, want);
}

#[tokio::test]
async fn a_bad_continue_token_is_400_and_a_compacted_one_410() {
    let t = TestServer::start().await;
    let api: Api<Pod> = Api::namespaced(t.client.clone(), "default");
    make_pods(&api, 3, "p", &[]).await;
    let bad = t
        .get("/api/v1/namespaces/default/pods?limit=1&continue=garbage")
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let first = api
        .list(&ListParams::default().limit(1))
        .await
        .expect("page 1");
    let token = first.metadata.continue_.clone().expect("continue");
    make_pods(&api, 1, "x", &[]).await;
    let rev = t.store.current_revision().await.expect("rev");
    t.store.compact(rev).await.expect("compact");
    let gone = t
        .get(&format!(
            "/api/v1/namespaces/default/pods?limit=1&continue={token}"
        ))
        .await;
    assert_eq!(gone.status, StatusCode::GONE);
    assert_eq!(gone.json()["reason"], "Expired");
}

#[tokio::test]
async fn resource_version_exact_lists_the_past() {
    let t = TestServer::start().await;
    let api: Api<ConfigMap> = Api::namespaced(t.client.clone(), "default");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "a"}})).expect("cm");
    let created = api
        .create(&PostParams::default(), &cm)
        .await
        .expect("create");
    let rv = created.metadata.resource_version.clone().expect("rv");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "b"}})).expect("cm");
    api.create(&PostParams::default(), &cm)
        .await
        .expect("create");
    let r = t
        .get(&format!(
            "/api/v1/namespaces/default/configmaps?resourceVersion={rv}&resourceVersionMatch=Exact"
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let body = r.json();
    assert_eq!(body["metadata"]["resourceVersion"], rv.as_str());
    assert_eq!(body["items"].as_array().map(Vec::len), Some(1));
    let now = t.get("/api/v1/namespaces/default/configmaps").await.json();
    assert_eq!(now["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(now["kind"], "ConfigMapList");
    let forbidden = t
        .get("/api/v1/namespaces/default/configmaps?resourceVersionMatch=Exact")
        .await;
    assert_eq!(forbidden.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_watch_from_a_revision_sees_later_changes_in_order() {
    let t = TestServer::start().await;
    let api: Api<Pod> = Api::namespaced(t.client.clone(), "default");
    make_pods(&api, 1, "old", &[]).await;
    let rv = api
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("rv");
    let stream = api
        .watch(&WatchParams::default(), &rv)
        .await
        .expect("watch");
    let mut stream = stream.boxed();
    make_pods(&api, 1, "new", &[("app", "x")]).await;
    api.delete("old-000", &Default::default())
        .await
        .expect("delete");
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let ev = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
            .await
            .expect("event in time")
            .expect("ok")
            .expect("open");
        match ev {
            WatchEvent::Added(p) => {
                seen.push(format!("ADDED {}", p.metadata.name.unwrap_or_default()))
            }
            WatchEvent::Deleted(p) => {
                seen.push(format!("DELETED {}", p.metadata.name.unwrap_or_default()))
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, ["ADDED new-000", "DELETED old-000"]);
}

#[tokio::test]
async fn a_selector_watch_turns_leaving_into_deleted() {
    let t = TestServer::start().await;
    let api: Api<Pod> = Api::namespaced(t.client.clone(), "default");
    make_pods(&api, 1, "p", &[("app", "web")]).await;
    let rv = api
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("rv");
    let mut stream = api
        .watch(&WatchParams::default().labels("app=web"), &rv)
        .await
        .expect("watch")
        .boxed();
    let patch = kube::api::Patch::Merge(json!({"metadata": {"labels": {"app": "db"}}}));
    api.patch("p-000", &Default::default(), &patch)
        .await
        .expect("relabel");
    let ev = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
        .await
        .expect("in time")
        .expect("ok")
        .expect("open");
    match ev {
        WatchEvent::Deleted(p) => assert_eq!(
            p.metadata
                .labels
                .and_then(|l| l.get("app").cloned())
                .as_deref(),
            Some("db")
        ),
        other => panic!("want DELETED, got {other:?}"),
    }
}

#[tokio::test]
async fn watch_list_sends_initial_events_then_a_bookmark() {
    let t = TestServer::start().await;
    let api: Api<Pod> = Api::namespaced(t.client.clone(), "default");
    make_pods(&api, 3, "p", &[]).await;
    let wp = WatchParams::default().initial_events();
    let mut stream = api.watch(&wp, "").await.expect("watch").boxed();
    let mut added = 0;
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
            .await
            .expect("in time")
            .expect("ok")
            .expect("open");
        match ev {
            WatchEvent::Added(_) => added += 1,
            WatchEvent::Bookmark(b) => {
                let ann = b.metadata.annotations;
                assert_eq!(
                    ann.get("k8s.io/initial-events-end").map(String::as_str),
                    Some("true")
                );
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(added, 3);
}

#[tokio::test]
async fn bookmarks_arrive_when_allowed() {
    let t = TestServer::start_with(rkube_apiserver::Config {
        bookmark_interval: Duration::from_millis(200),
        ..Default::default()
    })
    .await;
    let api: Api<Pod> = Api::namespaced(t.client.clone(), "default");
    let rv = api
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("rv");
    let mut stream = api
        .watch(&WatchParams::default(), &rv)
        .await
        .expect("watch")
        .boxed();
    let ev = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
        .await
        .expect("in time")
        .expect("ok")
        .expect("open");
    assert!(matches!(ev, WatchEvent::Bookmark(_)), "{ev:?}");
}

#[tokio::test]
async fn a_watch_ends_after_timeout_seconds() {
    let t = TestServer::start().await;
    let api: Api<Pod> = Api::namespaced(t.client.clone(), "default");
    let rv = api
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("rv");
    let mut stream = api
        .watch(&WatchParams::default().timeout(1), &rv)
        .await
        .expect("watch")
        .boxed();
    let end = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
        .await
        .expect("ended in time");
    assert!(matches!(end, Ok(None)), "{end:?}");
}

#[tokio::test]
async fn a_watch_from_before_the_cache_history_is_410_gone() {
    let t = TestServer::start().await;
    let api: Api<Pod> = Api::namespaced(t.client.clone(), "default");
    make_pods(&api, 1, "p", &[]).await;
    let old_rv = api
        .get("p-000")
        .await
        .expect("get")
        .metadata
        .resource_version
        .expect("rv");
    make_pods(&api, 2, "q", &[]).await;
    let rev = t.store.current_revision().await.expect("rev");
    t.store.compact(rev).await.expect("compact");
    // A restarted server's history starts at its first list.
    let (store, dir) = t.stop();
    let t = TestServer::on_store(store, dir, rkube_apiserver::Config::default()).await;
    let r = t
        .get(&format!(
            "/api/v1/namespaces/default/pods?watch=true&resourceVersion={old_rv}"
        ))
        .await;
    assert_eq!(r.status, StatusCode::GONE);
    assert_eq!(r.json()["reason"], "Expired");
}
