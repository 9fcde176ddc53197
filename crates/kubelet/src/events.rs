//! The kubelet's events, as core/v1 Events (what upstream's kubelet writes, and all the
//! Node authorizer's `system:node` role lets it write): named `<object>.<hex time>`, with the
//! kubelet and node as source, and a repeat of the same event within ten minutes counted on
//! the first one (client-go's legacy correlator) instead of written again.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Patch, PatchParams, PostParams};
use kube::Api;
use parking_lot::Mutex;

/// How long a repeat still counts on the first event.
const SERIES: jiff::SignedDuration = jiff::SignedDuration::from_mins(10);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    object: (String, String, String, String),
    warning: bool,
    reason: String,
    message: String,
}

#[derive(Debug, Clone)]
struct Entry {
    name: String,
    namespace: String,
    count: i32,
    last: jiff::Timestamp,
}

/// Records events as the kubelet of one node.
pub struct Recorder {
    client: kube::Client,
    host: String,
    seen: Mutex<HashMap<Key, Entry>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("host", &self.host)
            .finish()
    }
}

impl Recorder {
    pub fn new(client: kube::Client, host: &str) -> Recorder {
        Recorder {
            client,
            host: host.to_string(),
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Records an event about `object`; a failure is logged, never returned (as upstream's
    /// broadcaster drops events).
    pub async fn record(
        &self,
        object: &ObjectReference,
        warning: bool,
        reason: &str,
        message: String,
    ) {
        if let Err(e) = self.try_record(object, warning, reason, message).await {
            tracing::debug!(reason, error = %e, "recording an event");
        }
    }

    async fn try_record(
        &self,
        object: &ObjectReference,
        warning: bool,
        reason: &str,
        message: String,
    ) -> Result<(), kube::Error> {
        let now = jiff::Timestamp::now();
        let s = |v: &Option<String>| v.clone().unwrap_or_default();
        let key = Key {
            object: (
                s(&object.kind),
                s(&object.namespace),
                s(&object.name),
                s(&object.uid),
            ),
            warning,
            reason: reason.to_string(),
            message: message.clone(),
        };
        let namespace = object.namespace.clone().unwrap_or_else(|| "default".into());
        let earlier = {
            let mut seen = self.seen.lock();
            seen.retain(|_, e| e.last + SERIES > now);
            seen.get(&key).cloned()
        };
        if let Some(e) = earlier {
            let api: Api<Event> = Api::namespaced(self.client.clone(), &e.namespace);
            let patch = serde_json::json!({"count": e.count + 1, "lastTimestamp": Time(now)});
            if api
                .patch(&e.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .is_ok()
            {
                self.seen.lock().insert(
                    key,
                    Entry {
                        count: e.count + 1,
                        last: now,
                        ..e
                    },
                );
                return Ok(());
            }
        }
        let name = format!("{}.{:x}", s(&object.name), now.as_nanosecond());
        let ev = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
                ..Default::default()
            },
            involved_object: object.clone(),
            reason: Some(reason.to_string()),
            message: Some(message),
            source: Some(EventSource {
                component: Some("kubelet".into()),
                host: Some(self.host.clone()),
            }),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            count: Some(1),
            type_: Some(if warning { "Warning" } else { "Normal" }.into()),
            reporting_component: Some("kubelet".into()),
            reporting_instance: Some(self.host.clone()),
            ..Default::default()
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        api.create(&PostParams::default(), &ev).await?;
        self.seen.lock().insert(
            key,
            Entry {
                name,
                namespace,
                count: 1,
                last: now,
            },
        );
        Ok(())
    }
}
