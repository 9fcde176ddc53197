//! Core `v1` and `events.k8s.io/v1` Events are one resource: an event written through either
//! API reads, lists, watches, updates and patches through the other, in that API's field
//! names, with each API's field selectors, validation and tables.

mod common;

use std::time::Duration;

use common::TestServer;
use futures::{StreamExt, TryStreamExt};
use http::{Method, StatusCode};
use k8s_openapi::api::core::v1::Event as CoreEvent;
use k8s_openapi::api::events::v1::Event as NewEvent;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use serde_json::{json, Value};

const CORE: &str = "/api/v1/namespaces/default/events";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/default/events";

/// An event as the controllers write it: events.k8s.io/v1, about pod `pod`.
fn new_event(name: &str, pod: &str, note: &str) -> Value {
    json!({
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": "default"},
        "eventTime": "2025-01-01T00:00:00.000000Z",
        "reportingController": "replicaset-controller",
        "reportingInstance": "replicaset-controller-host",
        "action": "SuccessfulCreate",
        "reason": "SuccessfulCreate",
        "type": "Normal",
        "note": note,
        "regarding": {"apiVersion": "v1", "kind": "Pod", "namespace": "default", "name": pod,
            "uid": format!("uid-{pod}")},
        "related": {"apiVersion": "apps/v1", "kind": "ReplicaSet", "namespace": "default",
            "name": "web-abc"},
    })
}

/// An event as the kubelet and the scheduler write it: core v1, about pod `pod`.
fn core_event(name: &str, pod: &str, message: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": "default"},
        "involvedObject": {"apiVersion": "v1", "kind": "Pod", "namespace": "default",
            "name": pod, "uid": format!("uid-{pod}"), "fieldPath": "spec.containers{web}"},
        "reason": "Pulled",
        "message": message,
        "type": "Normal",
        "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": "2025-01-01T00:00:00Z",
        "lastTimestamp": "2025-01-01T00:00:00Z",
        "count": 1,
        "reportingComponent": "kubelet",
        "reportingInstance": "node-1",
    })
}

fn typed<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("typed event")
}

async fn create(t: &TestServer, path: &str, body: &Value) -> Value {
    let r = t.post_json(path, body).await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    r.json()
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn an_event_written_through_events_k8s_io_reads_through_core_v1() {
    let t = TestServer::start().await;
    let created = create(
        &t,
        EVENTS,
        &new_event("web-1.a", "web-1", "Created pod: web-1"),
    )
    .await;
    assert_eq!(created["apiVersion"], "events.k8s.io/v1");
    assert_eq!(created["note"], "Created pod: web-1");

    let got = t.get(&format!("{CORE}/web-1.a")).await;
    assert_eq!(got.status, StatusCode::OK);
    let got = got.json();
    assert_eq!(got["apiVersion"], "v1");
    assert_eq!(got["kind"], "Event");
    assert_eq!(got["message"], "Created pod: web-1");
    assert_eq!(got["involvedObject"]["name"], "web-1");
    assert_eq!(got["involvedObject"]["kind"], "Pod");
    assert_eq!(got["related"]["name"], "web-abc");
    assert_eq!(got["reportingComponent"], "replicaset-controller");
    assert_eq!(got["reportingInstance"], "replicaset-controller-host");
    assert_eq!(got["eventTime"], "2025-01-01T00:00:00.000000Z");
    assert_eq!(
        got["metadata"]["resourceVersion"],
        created["metadata"]["resourceVersion"]
    );
    for field in ["note", "regarding", "reportingController"] {
        assert!(got.get(field).is_none(), "{field} in {:?}", keys(&got));
    }
    // One storage: the core form, whichever API wrote it.
    let stored = t
        .store
        .range(rkube_store::RangeRequest::new(rkube_store::KeyRange::key(
            "/registry/events/default/web-1.a".as_bytes(),
        )))
        .await
        .expect("range");
    let stored: Value = serde_json::from_slice(&stored.kvs[0].value).expect("stored JSON");
    assert_eq!(stored["apiVersion"], "v1");
    assert_eq!(stored["involvedObject"]["name"], "web-1");
    assert!(stored.get("regarding").is_none());

    // The typed clients of each API read it, and core v1 selects it by its involved object.
    let core: Api<CoreEvent> = Api::namespaced(t.client.clone(), "default");
    let ev = core.get("web-1.a").await.expect("get");
    assert_eq!(ev.message.as_deref(), Some("Created pod: web-1"));
    assert_eq!(ev.involved_object.name.as_deref(), Some("web-1"));
    for selector in [
        "involvedObject.name=web-1",
        "involvedObject.name=web-1,involvedObject.namespace=default,involvedObject.kind=Pod,involvedObject.uid=uid-web-1",
        "reason=SuccessfulCreate,type=Normal,reportingComponent=replicaset-controller",
        // `source` falls back to the reporting controller.
        "source=replicaset-controller",
    ] {
        let listed = core
            .list(&ListParams::default().fields(selector))
            .await
            .expect("list");
        assert_eq!(listed.items.len(), 1, "{selector}");
        assert_eq!(
            listed.items[0].message.as_deref(),
            Some("Created pod: web-1")
        );
    }
    let none = core
        .list(&ListParams::default().fields("involvedObject.name=web-2"))
        .await
        .expect("list");
    assert!(none.items.is_empty());
    // Pages read from the store are converted as well.
    let page = core
        .list(
            &ListParams::default()
                .limit(1)
                .fields("involvedObject.name=web-1"),
        )
        .await
        .expect("list");
    assert_eq!(page.items[0].message.as_deref(), Some("Created pod: web-1"));
    let all = t.get("/api/v1/events?limit=500").await.json();
    assert_eq!(all["items"][0]["message"], "Created pod: web-1");
    assert!(all["items"][0].get("note").is_none());
}

#[tokio::test]
async fn an_event_written_through_core_v1_reads_through_events_k8s_io() {
    let t = TestServer::start().await;
    create(&t, CORE, &core_event("web-1.b", "web-1", "Pulled image")).await;
    let got = t.get(&format!("{EVENTS}/web-1.b")).await.json();
    assert_eq!(got["apiVersion"], "events.k8s.io/v1");
    assert_eq!(got["note"], "Pulled image");
    assert_eq!(got["regarding"]["name"], "web-1");
    assert_eq!(got["regarding"]["fieldPath"], "spec.containers{web}");
    assert_eq!(got["reportingController"], "kubelet");
    assert_eq!(got["deprecatedSource"]["component"], "kubelet");
    assert_eq!(got["deprecatedSource"]["host"], "node-1");
    assert_eq!(got["deprecatedFirstTimestamp"], "2025-01-01T00:00:00Z");
    assert_eq!(got["deprecatedLastTimestamp"], "2025-01-01T00:00:00Z");
    assert_eq!(got["deprecatedCount"], 1);
    for field in [
        "message",
        "involvedObject",
        "source",
        "firstTimestamp",
        "lastTimestamp",
        "count",
        "reportingComponent",
    ] {
        assert!(got.get(field).is_none(), "{field} in {:?}", keys(&got));
    }

    let events: Api<NewEvent> = Api::namespaced(t.client.clone(), "default");
    for selector in [
        "regarding.name=web-1",
        "regarding.kind=Pod,regarding.uid=uid-web-1,regarding.fieldPath=spec.containers{web}",
        "reportingController=kubelet,reason=Pulled,type=Normal",
    ] {
        let listed = events
            .list(&ListParams::default().fields(selector))
            .await
            .expect("list");
        assert_eq!(listed.items.len(), 1, "{selector}");
        assert_eq!(listed.items[0].note.as_deref(), Some("Pulled image"));
    }
    // Each API takes only its own field names, as upstream's field label conversions.
    let r = t
        .get(&format!(
            "{EVENTS}?fieldSelector=involvedObject.name%3Dweb-1"
        ))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("field label not supported: involvedObject.name")),
        "{}",
        r.json()
    );
    let r = t
        .get(&format!("{CORE}?fieldSelector=regarding.name%3Dweb-1"))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

/// The next watch event within 5 s, as (type, name, the event's text).
async fn next<T, S>(stream: &mut S, text: impl Fn(&T) -> Option<String>) -> (String, String, String)
where
    T: kube::Resource + Clone,
    S: futures::Stream<Item = kube::Result<WatchEvent<T>>> + Unpin,
{
    let ev = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
        .await
        .expect("event in time")
        .expect("ok")
        .expect("open");
    let (kind, obj) = match ev {
        WatchEvent::Added(o) => ("ADDED", o),
        WatchEvent::Modified(o) => ("MODIFIED", o),
        WatchEvent::Deleted(o) => ("DELETED", o),
        other => panic!("unexpected {other:?}"),
    };
    (
        kind.to_string(),
        obj.meta().name.clone().unwrap_or_default(),
        text(&obj).unwrap_or_default(),
    )
}

#[tokio::test]
async fn watches_through_either_api_see_writes_through_the_other_converted() {
    let t = TestServer::start().await;
    let core: Api<CoreEvent> = Api::namespaced(t.client.clone(), "default");
    let events: Api<NewEvent> = Api::namespaced(t.client.clone(), "default");
    let rv = core
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("rv");
    let mut core_watch = core
        .watch(
            &WatchParams::default().fields("involvedObject.name=web-1"),
            &rv,
        )
        .await
        .expect("watch")
        .boxed();
    let mut events_watch = events
        .watch(&WatchParams::default().fields("regarding.name=web-1"), &rv)
        .await
        .expect("watch")
        .boxed();

    create(
        &t,
        EVENTS,
        &new_event("web-1.a", "web-1", "Created pod: web-1"),
    )
    .await;
    create(
        &t,
        EVENTS,
        &new_event("web-2.a", "web-2", "Created pod: web-2"),
    )
    .await;
    create(&t, CORE, &core_event("web-1.b", "web-1", "Pulled image")).await;
    // The legacy recorder bumps a repeated event's count with a strategic merge patch.
    let r = t
        .patch(
            &format!("{CORE}/web-1.a"),
            "application/strategic-merge-patch+json",
            &json!({"count": 2, "lastTimestamp": "2025-01-01T00:01:00Z", "message": "Created pod: web-1 (again)"}),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );

    let message = |e: &CoreEvent| e.message.clone();
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(next(&mut core_watch, message).await);
    }
    assert_eq!(
        seen,
        [
            (
                "ADDED".into(),
                "web-1.a".into(),
                "Created pod: web-1".into()
            ),
            ("ADDED".into(), "web-1.b".into(), "Pulled image".into()),
            (
                "MODIFIED".into(),
                "web-1.a".into(),
                "Created pod: web-1 (again)".into()
            ),
        ]
    );
    let note = |e: &NewEvent| e.note.clone();
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(next(&mut events_watch, note).await);
    }
    assert_eq!(
        seen,
        [
            (
                "ADDED".into(),
                "web-1.a".into(),
                "Created pod: web-1".into()
            ),
            ("ADDED".into(), "web-1.b".into(), "Pulled image".into()),
            (
                "MODIFIED".into(),
                "web-1.a".into(),
                "Created pod: web-1 (again)".into()
            ),
        ]
    );
    let ev = events.get("web-1.a").await.expect("get");
    assert_eq!(ev.deprecated_count, Some(2));

    // Deletions through either API reach both watches.
    events
        .delete("web-1.b", &Default::default())
        .await
        .expect("delete");
    assert_eq!(
        next(&mut core_watch, message).await,
        ("DELETED".into(), "web-1.b".into(), "Pulled image".into())
    );
    assert_eq!(
        next(&mut events_watch, note).await,
        ("DELETED".into(), "web-1.b".into(), "Pulled image".into())
    );
}

#[tokio::test]
async fn updates_and_patches_through_either_api_change_the_one_event() {
    let t = TestServer::start().await;
    let core: Api<CoreEvent> = Api::namespaced(t.client.clone(), "default");
    let events: Api<NewEvent> = Api::namespaced(t.client.clone(), "default");
    events
        .create(
            &PostParams::default(),
            &typed(new_event("web-1.a", "web-1", "Created pod: web-1")),
        )
        .await
        .expect("create");
    core.create(
        &PostParams::default(),
        &typed(core_event("web-1.b", "web-1", "Pulled image")),
    )
    .await
    .expect("create");

    // A core v1 update of the events.k8s.io event: read, change, replace.
    let mut ev = core.get("web-1.a").await.expect("get");
    ev.message = Some("Created pod: web-1, updated".into());
    ev.count = Some(5);
    let updated = core
        .replace("web-1.a", &PostParams::default(), &ev)
        .await
        .expect("replace");
    assert_eq!(
        updated.message.as_deref(),
        Some("Created pod: web-1, updated")
    );
    let seen = events.get("web-1.a").await.expect("get");
    assert_eq!(seen.note.as_deref(), Some("Created pod: web-1, updated"));
    assert_eq!(seen.deprecated_count, Some(5));
    assert_eq!(
        seen.reporting_controller.as_deref(),
        Some("replicaset-controller")
    );

    // The new recorder continues a series with a merge patch through events.k8s.io.
    let series = json!({"series": {"count": 2, "lastObservedTime": "2025-01-01T00:02:00.000000Z"}});
    let patched = events
        .patch("web-1.b", &PatchParams::default(), &Patch::Merge(&series))
        .await
        .expect("series patch");
    assert_eq!(patched.series.as_ref().map(|s| s.count), Some(2));
    assert_eq!(patched.note.as_deref(), Some("Pulled image"));
    let seen = core.get("web-1.b").await.expect("get");
    assert_eq!(seen.series.as_ref().and_then(|s| s.count), Some(2));
    assert_eq!(seen.message.as_deref(), Some("Pulled image"));
    assert_eq!(seen.count, Some(1));

    // JSON patches address the request's field names.
    let r = t
        .patch(
            &format!("{CORE}/web-1.b"),
            "application/json-patch+json",
            &json!([{"op": "replace", "path": "/count", "value": 9}]),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(
        events.get("web-1.b").await.expect("get").deprecated_count,
        Some(9)
    );
    let r = t
        .patch(
            &format!("{EVENTS}/web-1.b"),
            "application/json-patch+json",
            &json!([{"op": "replace", "path": "/series/count", "value": 3}]),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(
        core.get("web-1.b")
            .await
            .expect("get")
            .series
            .and_then(|s| s.count),
        Some(3)
    );

    // Through events.k8s.io only the series may change, and errors name upstream's
    // internal fields.
    for (patch, message) in [
        (
            json!({"note": "rewritten"}),
            "message: Invalid value: \"rewritten\": field is immutable",
        ),
        (
            json!({"deprecatedCount": 10}),
            "count: Invalid value: 10: field is immutable",
        ),
    ] {
        let r = t
            .patch(
                &format!("{EVENTS}/web-1.b"),
                "application/merge-patch+json",
                &patch,
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            r.json()["message"],
            format!("Event.events.k8s.io \"web-1.b\" is invalid: {message}")
        );
    }

    // Server-side apply through core v1 of the events.k8s.io event.
    let applied = json!({"apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "web-1.a", "namespace": "default"}, "type": "Warning"});
    let r = t
        .raw(
            Method::PATCH,
            &format!("{CORE}/web-1.a?fieldManager=tester&force=true"),
            &[("content-type", "application/apply-patch+yaml")],
            serde_json::to_vec(&applied).expect("json"),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.json()["message"], "Created pod: web-1, updated");
    let seen = events.get("web-1.a").await.expect("get");
    assert_eq!(seen.type_.as_deref(), Some("Warning"));
    assert_eq!(seen.note.as_deref(), Some("Created pod: web-1, updated"));
}

#[tokio::test]
async fn validation_names_the_internal_fields_through_events_k8s_io() {
    let t = TestServer::start().await;
    let mut e = new_event("bad", "web-1", "n");
    e["deprecatedCount"] = json!(3);
    e["eventTime"] = Value::Null;
    let r = t.post_json(EVENTS, &e).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        r.json()["message"],
        "Event.events.k8s.io \"bad\" is invalid: [eventTime: Required value, count: Invalid value: \"\": needs to be unset]"
    );
    // The same event through core v1 passes the legacy checks.
    let mut c = core_event("fine", "web-1", "m");
    c["count"] = json!(3);
    create(&t, CORE, &c).await;
}

#[tokio::test]
async fn tables_show_events_written_through_either_api() {
    let t = TestServer::start().await;
    create(
        &t,
        EVENTS,
        &new_event("web-1.a", "web-1", "Created pod: web-1"),
    )
    .await;
    create(&t, CORE, &core_event("web-1.b", "web-1", "Pulled image")).await;
    let accept = [(
        "accept",
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
    )];
    for path in [
        CORE.to_string(),
        format!("{CORE}?limit=500"),
        EVENTS.to_string(),
    ] {
        let r = t.raw(Method::GET, &path, &accept, Vec::new()).await;
        assert_eq!(r.status, StatusCode::OK);
        let table = r.json();
        let names: Vec<&str> = table["columnDefinitions"]
            .as_array()
            .expect("columns")
            .iter()
            .filter(|c| c["priority"] == 0)
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert_eq!(
            names,
            ["Last Seen", "Type", "Reason", "Object", "Message"],
            "{path}"
        );
        let rows: Vec<(Value, Value, Value)> = table["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|r| {
                (
                    r["cells"][2].clone(),
                    r["cells"][3].clone(),
                    r["cells"][6].clone(),
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                (
                    json!("SuccessfulCreate"),
                    json!("pod/web-1"),
                    json!("Created pod: web-1")
                ),
                (json!("Pulled"), json!("pod/web-1"), json!("Pulled image")),
            ],
            "{path}"
        );
    }
}
