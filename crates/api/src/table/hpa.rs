//! The HorizontalPodAutoscaler row, with upstream's `formatHPAMetrics` TARGETS cell. Both
//! served versions print through the internal (v2-shaped) type, so an autoscaling/v1 object's
//! CPU target is read as the one resource metric it converts to.

use serde_json::{json, Value};

use super::format::{arr_at, get, int_at, scalar_string, str_at};

fn quantity(v: Option<&Value>) -> String {
    // An absent quantity prints as Go's zero Quantity.
    scalar_string(v).unwrap_or_else(|| "0".to_string())
}

/// The v2 `spec.metrics` and `status.currentMetrics` of either version.
fn metrics(obj: &Value) -> (Vec<Value>, Vec<Value>) {
    let v1 = str_at(obj, &["apiVersion"]) == "autoscaling/v1"
        || get(obj, &["spec", "targetCPUUtilizationPercentage"]).is_some();
    if !v1 {
        return (
            arr_at(obj, &["spec", "metrics"]).to_vec(),
            arr_at(obj, &["status", "currentMetrics"]).to_vec(),
        );
    }
    let specs = match get(obj, &["spec", "targetCPUUtilizationPercentage"]).and_then(Value::as_i64)
    {
        Some(t) => vec![json!({"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": t}}})],
        None => vec![],
    };
    let statuses =
        match get(obj, &["status", "currentCPUUtilizationPercentage"]).and_then(Value::as_i64) {
            Some(c) => vec![json!({"type": "Resource", "resource": {"name": "cpu",
            "current": {"averageUtilization": c}}})],
            None => vec![],
        };
    (specs, statuses)
}

fn targets(specs: &[Value], statuses: &[Value]) -> String {
    if specs.is_empty() {
        return "<none>".to_string();
    }
    let unknown = || "<unknown>".to_string();
    let list: Vec<String> = specs
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let status = statuses.get(i);
            let current =
                |source: &str| status.and_then(|s| s.get(source)).filter(|v| v.is_object());
            match str_at(spec, &["type"]) {
                "External" | "Object" => {
                    let source = if str_at(spec, &["type"]) == "External" {
                        "external"
                    } else {
                        "object"
                    };
                    let target = get(spec, &[source, "target"]);
                    if let Some(avg) = target
                        .and_then(|t| t.get("averageValue"))
                        .filter(|v| !v.is_null())
                    {
                        let cur = current(source)
                            .and_then(|s| get(s, &["current", "averageValue"]))
                            .filter(|v| !v.is_null())
                            .map_or_else(unknown, |v| quantity(Some(v)));
                        format!("{cur}/{} (avg)", quantity(Some(avg)))
                    } else {
                        let cur = current(source)
                            .map_or_else(unknown, |s| quantity(get(s, &["current", "value"])));
                        format!("{cur}/{}", quantity(target.and_then(|t| t.get("value"))))
                    }
                }
                "Pods" => {
                    let cur = current("pods")
                        .map_or_else(unknown, |s| quantity(get(s, &["current", "averageValue"])));
                    format!(
                        "{cur}/{}",
                        quantity(get(spec, &["pods", "target", "averageValue"]))
                    )
                }
                "Resource" | "ContainerResource" => {
                    let source = if str_at(spec, &["type"]) == "Resource" {
                        "resource"
                    } else {
                        "containerResource"
                    };
                    let name = str_at(spec, &[source, "name"]);
                    let target = get(spec, &[source, "target"]);
                    if let Some(avg) = target
                        .and_then(|t| t.get("averageValue"))
                        .filter(|v| !v.is_null())
                    {
                        let cur = current(source).map_or_else(unknown, |s| {
                            quantity(get(s, &["current", "averageValue"]))
                        });
                        format!("{name}: {cur}/{}", quantity(Some(avg)))
                    } else {
                        let cur = current(source)
                            .and_then(|s| get(s, &["current", "averageUtilization"]))
                            .and_then(Value::as_i64)
                            .map_or_else(unknown, |u| format!("{u}%"));
                        let tgt = target
                            .and_then(|t| t.get("averageUtilization"))
                            .and_then(Value::as_i64)
                            .map_or_else(|| "<auto>".to_string(), |u| format!("{u}%"));
                        format!("{name}: {cur}/{tgt}")
                    }
                }
                _ => "<unknown type>".to_string(),
            }
        })
        .collect();
    const MAX: usize = 2;
    if list.len() > MAX {
        return format!("{} + {} more...", list[..MAX].join(", "), list.len() - MAX);
    }
    list.join(", ")
}

pub(super) fn row(obj: &Value, age: Value) -> Vec<Value> {
    let (specs, statuses) = metrics(obj);
    let min = get(obj, &["spec", "minReplicas"])
        .and_then(Value::as_i64)
        .map_or_else(|| "<unset>".to_string(), |m| m.to_string());
    vec![
        json!(str_at(obj, &["metadata", "name"])),
        json!(format!(
            "{}/{}",
            str_at(obj, &["spec", "scaleTargetRef", "kind"]),
            str_at(obj, &["spec", "scaleTargetRef", "name"])
        )),
        json!(targets(&specs, &statuses)),
        json!(min),
        json!(int_at(obj, &["spec", "maxReplicas"])),
        json!(int_at(obj, &["status", "currentReplicas"])),
        age,
    ]
}
