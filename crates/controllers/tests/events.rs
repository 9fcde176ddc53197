//! The controllers' event recorder against a real API server: the same event repeated is one
//! Event with a series, a different note is an Event of its own (client-go's keying).

mod common;

use common::{cluster, TestResult};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use kube::api::ListParams;
use kube::runtime::events::EventType;
use kube::Api;
use rkube_controllers::events::{publish, recorder};

#[tokio::test]
async fn repeats_form_a_series_and_other_notes_are_events_of_their_own() -> TestResult {
    let c = cluster().await?;
    let rec = recorder(c.client.clone(), "test-controller");
    let regarding = ObjectReference {
        api_version: Some("apps/v1".into()),
        kind: Some("ReplicaSet".into()),
        namespace: Some("default".into()),
        name: Some("web".into()),
        uid: Some("u1".into()),
        ..Default::default()
    };
    let normal = || EventType::Normal;
    publish(
        &rec,
        &regarding,
        normal(),
        "SuccessfulCreate",
        "Created pod: web-a".into(),
    )
    .await;
    publish(
        &rec,
        &regarding,
        normal(),
        "SuccessfulCreate",
        "Created pod: web-b".into(),
    )
    .await;
    publish(
        &rec,
        &regarding,
        normal(),
        "SuccessfulCreate",
        "Created pod: web-a".into(),
    )
    .await;

    let events = Api::<Event>::namespaced(c.client.clone(), "default")
        .list(&ListParams::default())
        .await?
        .items;
    let mut seen: Vec<(String, i32)> = events
        .iter()
        .map(|e| {
            let count = e.series.as_ref().map_or(1, |s| s.count);
            (e.note.clone().unwrap_or_default(), count)
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("Created pod: web-a".to_string(), 2),
            ("Created pod: web-b".to_string(), 1)
        ]
    );
    for e in &events {
        assert_eq!(e.reporting_controller.as_deref(), Some("test-controller"));
        assert_eq!(e.reason.as_deref(), Some("SuccessfulCreate"));
        assert_eq!(
            e.regarding.as_ref().and_then(|r| r.name.as_deref()),
            Some("web")
        );
    }
    Ok(())
}
