//! Recording events (events.k8s.io/v1 through kube-runtime's `Recorder`) the way every
//! controller does: as its component, with the reason doubling as the action, and a failure to
//! record logged, never fatal (upstream's event broadcaster drops events the same way).

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

/// A recorder reporting as `component` (upstream's `reportingController`, e.g.
/// `job-controller`).
pub fn recorder(client: kube::Client, component: &str) -> Recorder {
    Recorder::new(
        client,
        Reporter {
            controller: component.into(),
            instance: None,
        },
    )
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
