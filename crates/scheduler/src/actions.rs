//! The scheduler's writes besides binding: Events (`Scheduled`, `FailedScheduling`,
//! `Preempted`), the pod's `PodScheduled` condition and `nominatedNodeName`, and preemption's
//! evictions. They run as tasks off the scheduling loop; events go through a bounded queue that
//! drops when full (as upstream's broadcaster), so a slow API never stalls scheduling.

use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use serde_json::json;
use tokio::sync::mpsc;

use crate::framework::PodInfo;

/// An event to record about a pod.
#[derive(Debug)]
pub struct PodEvent {
    /// The pod.
    pub pod: ObjectReference,
    /// Warning or Normal.
    pub warning: bool,
    /// `Scheduled`, `FailedScheduling`, `Preempted`.
    pub reason: &'static str,
    /// `Binding`, `Scheduling`, `Preempting`.
    pub action: &'static str,
    /// The message.
    pub note: String,
}

/// A reference to `pod` for events.
pub fn pod_ref(pod: &PodInfo) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        name: Some(pod.name.clone()),
        namespace: Some(pod.namespace.clone()),
        uid: Some(pod.uid.clone()),
        resource_version: pod.pod.metadata.resource_version.clone(),
        field_path: None,
    }
}

/// The sending side of the event queue.
#[derive(Clone, Debug)]
pub struct Events {
    tx: mpsc::Sender<PodEvent>,
}

impl Events {
    /// Starts the event writer for `controller` (the profile's scheduler name).
    pub fn start(client: kube::Client, controller: &str) -> (Events, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::channel::<PodEvent>(1000);
        let reporter = Reporter {
            controller: controller.to_string(),
            instance: std::env::var("HOSTNAME").ok(),
        };
        let recorder = Recorder::new(client, reporter);
        let task = tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                let event = Event {
                    type_: if ev.warning {
                        EventType::Warning
                    } else {
                        EventType::Normal
                    },
                    reason: ev.reason.into(),
                    note: Some(ev.note),
                    action: ev.action.into(),
                    secondary: None,
                };
                if let Err(e) = recorder.publish(&event, &ev.pod).await {
                    tracing::debug!(error = %e, "recording a scheduler event failed");
                }
            }
        });
        (Events { tx }, task)
    }

    /// Queues an event; drops it if the queue is full.
    pub fn emit(&self, ev: PodEvent) {
        if self.tx.try_send(ev).is_err() {
            tracing::debug!("scheduler event queue full, dropping an event");
        }
    }
}

/// Sets the pod's `PodScheduled` condition to False with `reason` and `message`, and its
/// `nominatedNodeName` (`Some("")` clears it), unless both already say so.
pub async fn set_unschedulable(
    client: kube::Client,
    pod: &PodInfo,
    reason: &str,
    message: &str,
    nominated: Option<String>,
) {
    let status = pod.pod.status.as_ref();
    let current = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"));
    let same_condition = current.is_some_and(|c| {
        c.status == "False"
            && c.reason.as_deref() == Some(reason)
            && c.message.as_deref() == Some(message)
    });
    let current_nominated = status
        .and_then(|s| s.nominated_node_name.clone())
        .unwrap_or_default();
    let same_nomination = nominated.as_ref().is_none_or(|n| *n == current_nominated);
    if same_condition && same_nomination {
        return;
    }
    let transition = match current {
        Some(c) if c.status == "False" => c
            .last_transition_time
            .as_ref()
            .map(|t| json!(t))
            .unwrap_or_else(|| json!(now())),
        _ => json!(now()),
    };
    let mut patch = json!({"status": {"conditions": [{
        "type": "PodScheduled",
        "status": "False",
        "reason": reason,
        "message": message,
        "lastProbeTime": null,
        "lastTransitionTime": transition,
    }]}});
    if let Some(n) = nominated {
        patch["status"]["nominatedNodeName"] = if n.is_empty() { json!(null) } else { json!(n) };
    }
    let api: Api<Pod> = Api::namespaced(client, &pod.namespace);
    if let Err(e) = api
        .patch_status(
            &pod.name,
            &PatchParams::default(),
            &Patch::Strategic(&patch),
        )
        .await
    {
        tracing::debug!(pod = %pod.key(), error = %e, "updating the PodScheduled condition failed");
    }
}

/// Clears a pod's `nominatedNodeName` (its nomination was taken by a higher-priority pod).
pub async fn clear_nomination(client: kube::Client, pod: &PodInfo) {
    let api: Api<Pod> = Api::namespaced(client, &pod.namespace);
    let patch = json!({"status": {"nominatedNodeName": null}});
    if let Err(e) = api
        .patch_status(
            &pod.name,
            &PatchParams::default(),
            &Patch::Strategic(&patch),
        )
        .await
    {
        tracing::debug!(pod = %pod.key(), error = %e, "clearing a nomination failed");
    }
}

/// Evicts a preemption victim: marks it with the `DisruptionTarget` condition, then deletes it
/// (only if it is still the same pod), as upstream's preemption does.
pub async fn evict_victim(
    client: kube::Client,
    victim: &PodInfo,
    scheduler: &str,
    preemptor: &PodInfo,
    node: &str,
    events: &Events,
) -> Result<(), kube::Error> {
    let api: Api<Pod> = Api::namespaced(client, &victim.namespace);
    let patch = json!({"status": {"conditions": [{
        "type": "DisruptionTarget",
        "status": "True",
        "reason": "PreemptionByScheduler",
        "message": format!("{scheduler}: preempting to accommodate a higher priority pod"),
        "lastTransitionTime": now(),
    }]}});
    if let Err(e) = api
        .patch_status(
            &victim.name,
            &PatchParams::default(),
            &Patch::Strategic(&patch),
        )
        .await
    {
        if !is_not_found(&e) {
            return Err(e);
        }
        return Ok(());
    }
    let dp = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some(victim.uid.clone()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(&victim.name, &dp).await {
        Ok(_) => {}
        Err(e) if is_not_found(&e) => return Ok(()),
        Err(e) => return Err(e),
    }
    events.emit(PodEvent {
        pod: pod_ref(victim),
        warning: false,
        reason: "Preempted",
        action: "Preempting",
        note: format!("Preempted by pod {} on node {node}", preemptor.uid),
    });
    Ok(())
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

fn now() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .map(|t| t.to_string())
        .unwrap_or_default()
}
