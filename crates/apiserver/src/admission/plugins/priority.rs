//! Priority: resolves a pod's `priorityClassName` to `spec.priority` and
//! `spec.preemptionPolicy` (or the global default class, or 0), and keeps a second
//! PriorityClass from claiming `globalDefault`.

use async_trait::async_trait;
use serde_json::{json, Value};

use super::Plugin;
use crate::admission::{Operation, Request};
use crate::status::ApiResult;

/// The classes every cluster has, which the API server creates at start.
pub const SYSTEM_CLASSES: &[(&str, i64, &str)] = &[
    (
        "system-node-critical",
        2_000_001_000,
        "Used for system critical pods that must not be moved from their current node.",
    ),
    (
        "system-cluster-critical",
        2_000_000_000,
        "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
    ),
];

#[derive(Debug)]
pub struct Priority;

#[async_trait]
impl Plugin for Priority {
    async fn admit(&self, req: &Request<'_>, obj: &mut Value) -> ApiResult<()> {
        if req.op != Operation::Create || !req.is("", "pods") || req.subresource.is_some() {
            return Ok(());
        }
        let classes = req
            .server
            .cached_list("scheduling.k8s.io", "priorityclasses", None);
        let classes: Vec<&Value> = classes.iter().map(|c| &c.value).collect();
        resolve(obj, &classes).map_err(|why| req.forbidden(&why))
    }

    async fn validate(&self, req: &Request<'_>, obj: &Value) -> ApiResult<()> {
        if !req.is("scheduling.k8s.io", "priorityclasses")
            || !matches!(req.op, Operation::Create | Operation::Update)
            || obj.get("globalDefault").and_then(Value::as_bool) != Some(true)
        {
            return Ok(());
        }
        let classes = req
            .server
            .cached_list("scheduling.k8s.io", "priorityclasses", None);
        for c in &classes {
            let name = crate::object::name(&c.value);
            if name != req.name
                && c.value.get("globalDefault").and_then(Value::as_bool) == Some(true)
            {
                return Err(req.forbidden(&format!(
                    "PriorityClass {name} is already marked as default. Only one default can exist"
                )));
            }
        }
        Ok(())
    }
}

/// Sets the pod's priority from its class; the error is upstream's reason.
pub fn resolve(pod: &mut Value, classes: &[&Value]) -> Result<(), String> {
    let class_name = pod
        .pointer("/spec/priorityClassName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let (name, value, policy) = match &class_name {
        Some(name) => {
            let Some(class) = classes.iter().find(|c| crate::object::name(c) == name) else {
                return Err(format!("no PriorityClass with name {name} was found"));
            };
            (Some(name.clone()), class_value(class), class_policy(class))
        }
        None => match classes
            .iter()
            .filter(|c| c.get("globalDefault").and_then(Value::as_bool) == Some(true))
            .min_by_key(|c| class_value(c))
        {
            Some(c) => (
                Some(crate::object::name(c).to_string()),
                class_value(c),
                class_policy(c),
            ),
            None => (None, 0, "PreemptLowerPriority".to_string()),
        },
    };
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    if let Some(given) = spec.get("priority").and_then(Value::as_i64) {
        if given != value {
            return Err(format!(
                "the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {value} from the given PriorityClass name"
            ));
        }
    }
    if let Some(given) = spec.get("preemptionPolicy").and_then(Value::as_str) {
        if given != policy {
            return Err(format!(
                "the string value of PreemptionPolicy ({given}) must not be provided in pod spec; priority admission controller computed {policy} from the given PriorityClass name"
            ));
        }
    }
    if let Some(name) = name {
        spec.insert("priorityClassName".into(), json!(name));
    }
    spec.insert("priority".into(), json!(value));
    spec.insert("preemptionPolicy".into(), json!(policy));
    Ok(())
}

fn class_value(c: &Value) -> i64 {
    c.get("value").and_then(Value::as_i64).unwrap_or(0)
}

fn class_policy(c: &Value) -> String {
    c.get("preemptionPolicy")
        .and_then(Value::as_str)
        .unwrap_or("PreemptLowerPriority")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(name: &str, value: i64, default: bool) -> Value {
        json!({"metadata": {"name": name}, "value": value, "globalDefault": default})
    }

    #[test]
    fn class_names_resolve_to_values_and_unknown_classes_are_refused() {
        let high = class("high", 1000, false);
        let dflt = class("dflt", 5, true);
        let classes = [&high, &dflt];
        let mut p = json!({"spec": {"priorityClassName": "high"}});
        resolve(&mut p, &classes).expect("resolves");
        assert_eq!(p["spec"]["priority"], json!(1000));
        assert_eq!(p["spec"]["preemptionPolicy"], json!("PreemptLowerPriority"));
        let mut p = json!({"spec": {}});
        resolve(&mut p, &classes).expect("default");
        assert_eq!(
            (
                p["spec"]["priority"].clone(),
                p["spec"]["priorityClassName"].clone()
            ),
            (json!(5), json!("dflt"))
        );
        let mut p = json!({"spec": {}});
        resolve(&mut p, &[&high]).expect("zero");
        assert_eq!(p["spec"]["priority"], json!(0));
        let mut p = json!({"spec": {"priorityClassName": "nope"}});
        assert_eq!(
            resolve(&mut p, &classes).err().as_deref(),
            Some("no PriorityClass with name nope was found")
        );
        let mut p = json!({"spec": {"priorityClassName": "high", "priority": 3}});
        assert!(resolve(&mut p, &classes)
            .err()
            .unwrap_or_default()
            .contains("computed 1000"));
    }
}
