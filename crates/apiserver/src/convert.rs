//! Conversion between served versions that share storage: core/v1 and events.k8s.io/v1
//! events, autoscaling/v2 and autoscaling/v1 HorizontalPodAutoscalers.
//!
//! Objects are stored in the version they were written in; a read through another version
//! converts them field by field, as upstream's conversion functions map them.

use rkube_api::ResourceInfo;
use serde_json::{json, Map, Value};

use crate::status::{ApiError, ApiResult};

/// Converts a stored object to the version `res` serves.
pub fn to_version(res: &ResourceInfo, mut obj: Value) -> ApiResult<Value> {
    let want = res.api_version();
    let have = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if have == want || have.is_empty() {
        return Ok(obj);
    }
    let map = obj
        .as_object_mut()
        .ok_or_else(|| ApiError::internal("stored object is not a JSON object"))?;
    match (have.as_str(), want.as_str()) {
        ("v1", "events.k8s.io/v1") => rename(map, CORE_TO_EVENTS),
        ("events.k8s.io/v1", "v1") => rename(map, &swap(CORE_TO_EVENTS)),
        ("autoscaling/v2", "autoscaling/v1") => hpa_v2_to_v1(map),
        ("autoscaling/v1", "autoscaling/v2") => hpa_v1_to_v2(map),
        _ => {
            return Err(ApiError::internal(format!(
                "no conversion from {have} to {want} for {}",
                res.kind
            )))
        }
    }
    map.insert("apiVersion".into(), json!(want));
    Ok(obj)
}

/// core/v1 Event field → events.k8s.io/v1 Event field.
const CORE_TO_EVENTS: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("reportingComponent", "reportingController"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
];

fn swap(pairs: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    pairs.iter().map(|(a, b)| (*b, *a)).collect()
}

fn rename(map: &mut Map<String, Value>, pairs: &[(&str, &str)]) {
    for (from, to) in pairs {
        if let Some(v) = map.remove(*from) {
            map.insert((*to).to_string(), v);
        }
    }
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
    use rkube_api::catalogue::find;

    #[test]
    fn core_events_read_as_events_k8s_io() {
        let res = find("events.k8s.io", "v1", "events").expect("events");
        let core = json!({"apiVersion": "v1", "kind": "Event", "involvedObject": {"name": "p"}, "message": "hi", "count": 2});
        let e = to_version(res, core).expect("convert");
        assert_eq!(e["apiVersion"], "events.k8s.io/v1");
        assert_eq!(e["regarding"]["name"], "p");
        assert_eq!(e["note"], "hi");
        assert_eq!(e["deprecatedCount"], 2);
        let back = to_version(find("", "v1", "events").expect("events"), e).expect("back");
        assert_eq!(back["message"], "hi");
    }

    #[test]
    fn hpa_cpu_target_round_trips() {
        let v1 = find("autoscaling", "v1", "horizontalpodautoscalers").expect("hpa v1");
        let v2 = find("autoscaling", "v2", "horizontalpodautoscalers").expect("hpa v2");
        let o = json!({"apiVersion": "autoscaling/v1", "spec": {"maxReplicas": 3, "targetCPUUtilizationPercentage": 50}});
        let two = to_version(v2, o).expect("to v2");
        assert_eq!(
            two["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
            50
        );
        let one = to_version(v1, two).expect("to v1");
        assert_eq!(one["spec"]["targetCPUUtilizationPercentage"], 50);
    }
}
