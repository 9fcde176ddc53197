//! Conversion between the served versions of one resource, on JSON objects.
//!
//! Upstream converts every served version to and from one internal type; rkube converts
//! directly between the versions it serves, with the same field mapping:
//!
//! - core `v1` and `events.k8s.io/v1` Events are one resource (upstream's internal type is
//!   `core.Event`). Both are stored in the core `v1` form ([`storage_version`]) and converted on
//!   every read and write through `events.k8s.io/v1`: `involvedObject` ↔ `regarding`,
//!   `message` ↔ `note`, `reportingComponent` ↔ `reportingController`, `source` ↔
//!   `deprecatedSource`, `firstTimestamp` ↔ `deprecatedFirstTimestamp`, `lastTimestamp` ↔
//!   `deprecatedLastTimestamp`, `count` ↔ `deprecatedCount`; `metadata`, `related`,
//!   `reportingInstance`, `eventTime`, `series` (the same `count` and `lastObservedTime` in
//!   both), `action`, `reason` and `type` are the same in both.
//! - `autoscaling/v1` and `autoscaling/v2` HorizontalPodAutoscalers: the CPU utilization
//!   target and current value of v1 are v2's `Resource` metric for `cpu`.
//!
//! Fields a version does not know are dropped by the API server's pruning, not here.

use serde_json::{json, Map, Value};

/// Core `v1` Event field → `events.k8s.io/v1` Event field (the fields not listed have the
/// same name in both).
pub const CORE_TO_EVENTS_V1: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("reportingComponent", "reportingController"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
];

/// A conversion the API server does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no conversion from {from} to {to} for {kind}")]
pub struct ConversionError {
    pub from: String,
    pub to: String,
    pub kind: String,
}

/// The apiVersion objects of `group`/`kind` are stored in, when every version writes one
/// form (as upstream's storage version); `None` when objects are stored in the version they
/// were written in.
pub fn storage_version(group: &str, kind: &str) -> Option<&'static str> {
    match (group, kind) {
        ("" | "events.k8s.io", "Event") => Some("v1"),
        _ => None,
    }
}

/// Converts `obj` of `kind` to `api_version` (`v1`, `events.k8s.io/v1`, `autoscaling/v2`).
/// An object already in that version, or with no apiVersion, is returned unchanged.
pub fn to_version(kind: &str, api_version: &str, mut obj: Value) -> Result<Value, ConversionError> {
    let have = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if have == api_version || have.is_empty() {
        return Ok(obj);
    }
    let unknown = || ConversionError {
        from: have.clone(),
        to: api_version.to_string(),
        kind: kind.to_string(),
    };
    let Some(map) = obj.as_object_mut() else {
        return Err(unknown());
    };
    match (kind, have.as_str(), api_version) {
        ("Event", "v1", "events.k8s.io/v1") => event_core_to_events_v1(map),
        ("Event", "events.k8s.io/v1", "v1") => event_events_v1_to_core(map),
        ("HorizontalPodAutoscaler", "autoscaling/v2", "autoscaling/v1") => hpa_v2_to_v1(map),
        ("HorizontalPodAutoscaler", "autoscaling/v1", "autoscaling/v2") => hpa_v1_to_v2(map),
        _ => return Err(unknown()),
    }
    map.insert("apiVersion".into(), json!(api_version));
    Ok(obj)
}

/// Converts `obj` to the form it is stored in (see [`storage_version`]); unchanged for kinds
/// stored in the version written.
pub fn to_storage(group: &str, kind: &str, obj: Value) -> Result<Value, ConversionError> {
    match storage_version(group, kind) {
        Some(v) => to_version(kind, v, obj),
        None => Ok(obj),
    }
}

fn rename(map: &mut Map<String, Value>, from: &str, to: &str) {
    match map.remove(from) {
        Some(v) => {
            map.insert(to.to_string(), v);
        }
        None => {
            map.remove(to);
        }
    }
}

fn event_core_to_events_v1(map: &mut Map<String, Value>) {
    for (core, events) in CORE_TO_EVENTS_V1 {
        rename(map, core, events);
    }
}

fn event_events_v1_to_core(map: &mut Map<String, Value>) {
    for (core, events) in CORE_TO_EVENTS_V1 {
        rename(map, events, core);
    }
    // The core type's involvedObject is a required struct: always present, if empty.
    map.entry("involvedObject").or_insert_with(|| json!({}));
}

fn hpa_v2_to_v1(map: &mut Map<String, Value>) {
    if let Some(spec) = map.get_mut("spec").and_then(Value::as_object_mut) {
        let cpu = spec.remove("metrics").and_then(|m| {
            m.as_array()?.iter().find_map(|metric| {
                let r = metric.get("resource")?;
                (r.get("name")? == "cpu")
                    .then(|| r.pointer("/target/averageUtilization").cloned())?
            })
        });
        spec.remove("behavior");
        if let Some(cpu) = cpu {
            spec.insert("targetCPUUtilizationPercentage".into(), cpu);
        }
    }
    if let Some(status) = map.get_mut("status").and_then(Value::as_object_mut) {
        let cpu = status.remove("currentMetrics").and_then(|m| {
            m.as_array()?.iter().find_map(|metric| {
                let r = metric.get("resource")?;
                (r.get("name")? == "cpu")
                    .then(|| r.pointer("/current/averageUtilization").cloned())?
            })
        });
        status.remove("conditions");
        if let Some(cpu) = cpu {
            status.insert("currentCPUUtilizationPercentage".into(), cpu);
        }
    }
}

fn hpa_v1_to_v2(map: &mut Map<String, Value>) {
    if let Some(spec) = map.get_mut("spec").and_then(Value::as_object_mut) {
        if let Some(cpu) = spec.remove("targetCPUUtilizationPercentage") {
            spec.insert(
                "metrics".into(),
                json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": cpu}}}]),
            );
        }
    }
    if let Some(status) = map.get_mut("status").and_then(Value::as_object_mut) {
        if let Some(cpu) = status.remove("currentCPUUtilizationPercentage") {
            status.insert(
                "currentMetrics".into(),
                json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": cpu}}}]),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn core_event() -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": "web-1.17a", "namespace": "default", "uid": "u-1",
                "resourceVersion": "7", "labels": {"a": "b"}},
            "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web-1",
                "uid": "p-1", "apiVersion": "v1", "resourceVersion": "3",
                "fieldPath": "spec.containers{web}"},
            "related": {"kind": "Node", "name": "n1", "apiVersion": "v1"},
            "reason": "Pulled",
            "message": "Successfully pulled image",
            "source": {"component": "kubelet", "host": "n1"},
            "firstTimestamp": "2025-01-01T00:00:00Z",
            "lastTimestamp": "2025-01-01T00:05:00Z",
            "count": 4,
            "type": "Normal",
            "eventTime": "2025-01-01T00:00:00.123456Z",
            "series": {"count": 4, "lastObservedTime": "2025-01-01T00:05:00.000001Z"},
            "action": "Pulling",
            "reportingComponent": "kubelet",
            "reportingInstance": "n1",
        })
    }

    fn events_v1_event() -> Value {
        json!({
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"name": "web.17b", "namespace": "default", "uid": "u-2"},
            "regarding": {"kind": "Deployment", "namespace": "default", "name": "web",
                "uid": "d-1", "apiVersion": "apps/v1"},
            "related": {"kind": "ReplicaSet", "namespace": "default", "name": "web-abc"},
            "reason": "ScalingReplicaSet",
            "note": "Scaled up replica set web-abc from 0 to 3",
            "type": "Normal",
            "eventTime": "2025-01-01T00:00:00.000000Z",
            "series": {"count": 2, "lastObservedTime": "2025-01-01T00:01:00.000000Z"},
            "action": "ScalingReplicaSet",
            "reportingController": "deployment-controller",
            "reportingInstance": "deployment-controller-host",
            "deprecatedSource": {"component": "deployment-controller"},
            "deprecatedFirstTimestamp": "2025-01-01T00:00:00Z",
            "deprecatedLastTimestamp": "2025-01-01T00:01:00Z",
            "deprecatedCount": 2,
        })
    }

    #[test]
    fn core_events_read_as_events_k8s_io_field_by_field() {
        let e = to_version("Event", "events.k8s.io/v1", core_event()).expect("convert");
        let want = json!({
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"name": "web-1.17a", "namespace": "default", "uid": "u-1",
                "resourceVersion": "7", "labels": {"a": "b"}},
            "regarding": {"kind": "Pod", "namespace": "default", "name": "web-1",
                "uid": "p-1", "apiVersion": "v1", "resourceVersion": "3",
                "fieldPath": "spec.containers{web}"},
            "related": {"kind": "Node", "name": "n1", "apiVersion": "v1"},
            "reason": "Pulled",
            "note": "Successfully pulled image",
            "deprecatedSource": {"component": "kubelet", "host": "n1"},
            "deprecatedFirstTimestamp": "2025-01-01T00:00:00Z",
            "deprecatedLastTimestamp": "2025-01-01T00:05:00Z",
            "deprecatedCount": 4,
            "type": "Normal",
            "eventTime": "2025-01-01T00:00:00.123456Z",
            "series": {"count": 4, "lastObservedTime": "2025-01-01T00:05:00.000001Z"},
            "action": "Pulling",
            "reportingController": "kubelet",
            "reportingInstance": "n1",
        });
        assert_eq!(e, want);
    }

    #[test]
    fn events_k8s_io_events_read_as_core_field_by_field() {
        let c = to_version("Event", "v1", events_v1_event()).expect("convert");
        assert_eq!(c["apiVersion"], "v1");
        assert_eq!(c["involvedObject"]["name"], "web");
        assert_eq!(c["involvedObject"]["kind"], "Deployment");
        assert_eq!(c["message"], "Scaled up replica set web-abc from 0 to 3");
        assert_eq!(c["reportingComponent"], "deployment-controller");
        assert_eq!(c["reportingInstance"], "deployment-controller-host");
        assert_eq!(c["source"]["component"], "deployment-controller");
        assert_eq!(c["firstTimestamp"], "2025-01-01T00:00:00Z");
        assert_eq!(c["lastTimestamp"], "2025-01-01T00:01:00Z");
        assert_eq!(c["count"], 2);
        assert_eq!(c["series"]["count"], 2);
        assert_eq!(c["related"]["name"], "web-abc");
        for gone in [
            "regarding",
            "note",
            "reportingController",
            "deprecatedSource",
            "deprecatedFirstTimestamp",
            "deprecatedLastTimestamp",
            "deprecatedCount",
        ] {
            assert!(c.get(gone).is_none(), "{gone} left in {c}");
        }
    }

    #[test]
    fn events_round_trip_through_either_version() {
        let core = core_event();
        let there = to_version("Event", "events.k8s.io/v1", core.clone()).expect("to events");
        assert_eq!(to_version("Event", "v1", there).expect("back"), core);
        let ev = events_v1_event();
        let there = to_version("Event", "v1", ev.clone()).expect("to core");
        assert_eq!(
            to_version("Event", "events.k8s.io/v1", there).expect("back"),
            ev
        );
    }

    #[test]
    fn an_event_without_an_involved_object_gets_the_empty_one_core_requires() {
        let ev = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "note": "n"});
        let c = to_version("Event", "v1", ev).expect("convert");
        assert_eq!(c["involvedObject"], json!({}));
        assert_eq!(c["message"], "n");
    }

    #[test]
    fn a_field_of_the_target_name_never_survives_unmapped() {
        // A stray `regarding` on a core object (pruning drops it on writes) must not shadow
        // the converted `involvedObject`, nor survive when there is none.
        let odd = json!({"apiVersion": "v1", "kind": "Event", "regarding": {"name": "stray"}});
        let e = to_version("Event", "events.k8s.io/v1", odd).expect("convert");
        assert!(e.get("regarding").is_none(), "{e}");
    }

    #[test]
    fn events_are_stored_in_the_core_form_and_others_as_written() {
        assert_eq!(storage_version("events.k8s.io", "Event"), Some("v1"));
        assert_eq!(storage_version("", "Event"), Some("v1"));
        assert_eq!(storage_version("", "ConfigMap"), None);
        let stored = to_storage("events.k8s.io", "Event", events_v1_event()).expect("store");
        assert_eq!(stored["apiVersion"], "v1");
        assert_eq!(stored["involvedObject"]["name"], "web");
        let hpa = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler"});
        assert_eq!(
            to_storage("autoscaling", "HorizontalPodAutoscaler", hpa.clone()).expect("store"),
            hpa
        );
    }

    #[test]
    fn unknown_conversions_are_errors() {
        let e = to_version("Event", "events.k8s.io/v1beta1", core_event()).expect_err("unknown");
        assert_eq!(
            e.to_string(),
            "no conversion from v1 to events.k8s.io/v1beta1 for Event"
        );
        let untyped = json!({"kind": "Event", "message": "m"});
        assert_eq!(
            to_version("Event", "events.k8s.io/v1", untyped.clone()).expect("as is"),
            untyped
        );
    }

    #[test]
    fn hpa_cpu_target_round_trips() {
        let o = json!({"apiVersion": "autoscaling/v1", "spec": {"maxReplicas": 3, "targetCPUUtilizationPercentage": 50}});
        let two = to_version("HorizontalPodAutoscaler", "autoscaling/v2", o).expect("to v2");
        assert_eq!(
            two["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
            50
        );
        let one = to_version("HorizontalPodAutoscaler", "autoscaling/v1", two).expect("to v1");
        assert_eq!(one["spec"]["targetCPUUtilizationPercentage"], 50);
    }
}
