//! Recording events (events.k8s.io/v1) the way every controller does: as its component, with
//! the reason doubling as the action, and a failure to record logged, never fatal (upstream's
//! event broadcaster drops events the same way).
//!
//! Written here rather than taken from kube-runtime: its `Recorder` folds every event with the
//! same reason about the same object into one series and keeps the first note, so "Scaled up
//! replica set a from 0 to 3" and "... from 3 to 5" would show as the first one twice.
//! client-go's broadcaster keys a series by the note as well (`getKey`): an event repeated
//! within six minutes bumps its series' count and time, a different note is a new event.

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as K8sEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType};
use kube::Api;

/// How long a recorded event can still be continued as a series (client-go's 6 minutes).
const SERIES_TTL: SignedDuration = SignedDuration::from_mins(6);

/// What makes two events the same (client-go's `eventKey`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    warning: bool,
    action: String,
    reason: String,
    regarding: (String, String, String, String, String),
    related: Option<(String, String, String, String, String)>,
    note: Option<String>,
}

fn reference_key(r: &ObjectReference) -> (String, String, String, String, String) {
    let s = |v: &Option<String>| v.clone().unwrap_or_default();
    (
        s(&r.api_version),
        s(&r.kind),
        s(&r.namespace),
        s(&r.name),
        s(&r.uid),
    )
}

/// An event already recorded: where it is, how often it happened, and when last.
#[derive(Debug, Clone)]
struct Entry {
    namespace: String,
    name: String,
    count: i32,
    last: Timestamp,
}

/// Records events as one component (upstream's `reportingController`).
pub struct Recorder {
    client: kube::Client,
    controller: String,
    recorded: Mutex<Recorded>,
}

/// The recorded events, and when those past their series were last dropped.
#[derive(Default)]
struct Recorded {
    events: HashMap<Key, Entry>,
    pruned: Option<Timestamp>,
}

/// A recorder reporting as `component` (upstream's `reportingController`, e.g.
/// `job-controller`).
pub fn recorder(client: kube::Client, component: &str) -> Recorder {
    Recorder {
        client,
        controller: component.to_string(),
        recorded: Mutex::default(),
    }
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("controller", &self.controller)
            .finish()
    }
}

impl Recorder {
    fn with<R>(&self, f: impl FnOnce(&mut Recorded) -> R) -> R {
        f(&mut self.recorded.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Records `ev` about `regarding`: a new Event, or the next of a series when the same
    /// event (note included) was recorded within six minutes.
    pub async fn publish(
        &self,
        ev: &Event,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        let key = Key {
            warning: matches!(ev.type_, EventType::Warning),
            action: ev.action.clone(),
            reason: ev.reason.clone(),
            regarding: reference_key(regarding),
            related: ev.secondary.as_ref().map(reference_key),
            note: ev.note.clone(),
        };
        let earlier = self.with(|r| {
            // Expired entries go at most once per TTL, not on every event (a busy controller
            // records thousands).
            if r.pruned.is_none_or(|t| t + SERIES_TTL <= now) {
                r.events.retain(|_, e| e.last + SERIES_TTL > now);
                r.pruned = Some(now);
            }
            r.events
                .get(&key)
                .filter(|e| e.last + SERIES_TTL > now)
                .cloned()
        });
        if let Some(r) = earlier {
            let count = r.count + 1;
            let series = EventSeries {
                count,
                last_observed_time: MicroTime(now),
            };
            let patch = serde_json::json!({ "series": series });
            let api = Api::<K8sEvent>::namespaced(self.client.clone(), &r.namespace);
            match api
                .patch(&r.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    let entry = Entry {
                        count,
                        last: now,
                        ..r
                    };
                    self.with(|m| m.events.insert(key, entry));
                    return Ok(());
                }
                // Gone (expired or deleted): record it afresh.
                Err(e) if crate::error::is_not_found(&e) => {}
                Err(e) => return Err(e),
            }
        }
        let namespace = regarding
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_string());
        let name = format!(
            "{}.{:x}",
            regarding.name.as_deref().unwrap_or(&self.controller),
            now.as_nanosecond()
        );
        let event = K8sEvent {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
                ..Default::default()
            },
            event_time: Some(MicroTime(now)),
            action: Some(ev.action.clone()),
            reason: Some(ev.reason.clone()),
            note: ev.note.clone(),
            regarding: Some(regarding.clone()),
            related: ev.secondary.clone(),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.controller.clone()),
            type_: Some(if key.warning { "Warning" } else { "Normal" }.to_string()),
            ..Default::default()
        };
        Api::<K8sEvent>::namespaced(self.client.clone(), &namespace)
            .create(&PostParams::default(), &event)
            .await?;
        self.with(|m| {
            m.events.insert(
                key,
                Entry {
                    namespace,
                    name,
                    count: 1,
                    last: now,
                },
            )
        });
        Ok(())
    }
}

/// Records an event about `reference`.
pub async fn publish(
    recorder: &Recorder,
    reference: &ObjectReference,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let ev = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: reason.into(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&ev, reference).await {
        tracing::debug!(reason, error = %e, "recording event failed");
    }
}

/// Normal or Warning.
pub fn event_type(warning: bool) -> EventType {
    if warning {
        EventType::Warning
    } else {
        EventType::Normal
    }
}
