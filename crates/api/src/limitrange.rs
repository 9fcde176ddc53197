//! LimitRanger admission, as upstream's `plugin/pkg/admission/limitranger` decides it in
//! v1.33: default container requests and limits from a namespace's LimitRanges, and refuse
//! pods and claims outside their min, max and limit/request ratio. No I/O: the API server's
//! plugin lists the namespace's LimitRanges and reports a refusal as Forbidden
//! (`pods "x" is forbidden: <message>`).

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::aggregate::aggregate_message;
use crate::quantity::Quantity;
use crate::quota::pods::{pod_resources, AggregateOptions};
use crate::quota::resources::{quantity_of, resource_list, ResourceList};

/// The annotation recording which defaults were applied.
pub const LIMIT_RANGER_ANNOTATION: &str = "kubernetes.io/limit-ranger";

/// Upstream's `resource.MaxMilliValue`: above it, comparisons are in whole units.
const MAX_MILLI_VALUE: i64 = i64::MAX / 1000;

/// Pod totals for the Pod limit type: spec only (no status, no overhead).
const LIMIT_RANGE_AGGREGATION: AggregateOptions = AggregateOptions {
    use_status_resources: false,
    exclude_overhead: true,
};

/// Whether the plugin looks at a request on `resource` (core group): pod creates and
/// resizes, and claim creates and updates, never other subresources. `old` is the stored
/// object of an update; objects already being deleted are left alone.
pub fn applies(resource: &str, subresource: &str, old: Option<&Value>) -> bool {
    if old.is_some_and(|o| {
        o.pointer("/metadata/deletionTimestamp")
            .is_some_and(|t| !t.is_null())
    }) {
        return false;
    }
    match (resource, subresource) {
        // Containers cannot change on a plain pod update, so only creates and resizes.
        ("pods", "") => old.is_none(),
        ("pods", "resize") => old.is_some(),
        ("persistentvolumeclaims", "") => true,
        _ => false,
    }
}

fn limits(limit_range: &Value) -> &[Value] {
    limit_range
        .pointer("/spec/limits")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn limit_type(item: &Value) -> &str {
    item.get("type").and_then(Value::as_str).unwrap_or("")
}

/// Fills in each container's (and init container's) missing requests and limits from the
/// `defaultRequest` and `default` of the `Container` items of each limit range in turn, and
/// records what was set in the `kubernetes.io/limit-ranger` annotation (the last limit
/// range that set anything writes it).
pub fn default_pod(pod: &mut Value, limit_ranges: &[Value]) {
    for lr in limit_ranges {
        let (mut default_requests, mut default_limits) = (Map::new(), Map::new());
        for item in limits(lr).iter().filter(|i| limit_type(i) == "Container") {
            extend_quantities(&mut default_requests, item.get("defaultRequest"));
            extend_quantities(&mut default_limits, item.get("default"));
        }
        let mut notes = Vec::new();
        for (key, what) in [
            ("containers", "container"),
            ("initContainers", "init container"),
        ] {
            let Some(containers) = pod
                .pointer_mut(&format!("/spec/{key}"))
                .and_then(Value::as_array_mut)
            else {
                continue;
            };
            for c in containers {
                let name = c
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let set_requests = fill(c, "requests", &default_requests);
                let set_limits = fill(c, "limits", &default_limits);
                if !set_requests.is_empty() {
                    notes.push(format!(
                        "{} request for {what} {name}",
                        set_requests.join(", ")
                    ));
                }
                if !set_limits.is_empty() {
                    notes.push(format!("{} limit for {what} {name}", set_limits.join(", ")));
                }
            }
        }
        if !notes.is_empty() {
            set_annotation(pod, format!("LimitRanger plugin set: {}", notes.join("; ")));
        }
    }
}

/// Copies valid quantities from a JSON map into `into`, in their canonical text.
fn extend_quantities(into: &mut Map<String, Value>, from: Option<&Value>) {
    for (k, v) in from.and_then(Value::as_object).into_iter().flatten() {
        if let Some(q) = quantity_of(v) {
            into.insert(k.clone(), Value::String(q.to_string()));
        }
    }
}

/// `v[key]`, created as `{}` when absent or null; `None` when `v` is not an object or the
/// field holds something other than an object (validation has refused such objects).
fn child_object<'a>(v: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    let slot = v.as_object_mut()?.entry(key).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    slot.is_object().then_some(slot)
}

/// Sets the defaults a container's `resources.<which>` lacks; the names set, sorted.
fn fill(container: &mut Value, which: &str, defaults: &Map<String, Value>) -> Vec<String> {
    let existing: BTreeSet<String> = container
        .get("resources")
        .and_then(|r| r.get(which))
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let missing: Vec<(&String, &Value)> = defaults
        .iter()
        .filter(|(k, _)| !existing.contains(*k))
        .collect();
    if missing.is_empty() {
        return Vec::new();
    }
    let Some(list) = child_object(container, "resources")
        .and_then(|r| child_object(r, which))
        .and_then(Value::as_object_mut)
    else {
        return Vec::new();
    };
    let mut names = Vec::new();
    for (k, v) in missing {
        list.insert(k.clone(), v.clone());
        names.push(k.clone());
    }
    names.sort();
    names
}

fn set_annotation(pod: &mut Value, text: String) {
    if let Some(annotations) = child_object(pod, "metadata")
        .and_then(|m| child_object(m, "annotations"))
        .and_then(Value::as_object_mut)
    {
        annotations.insert(LIMIT_RANGER_ANNOTATION.to_string(), Value::String(text));
    }
}

/// Checks a pod against each limit range in turn: every container and init container
/// against the `Container` items, and the pod's totals against the `Pod` items. The first
/// limit range the pod violates gives the error: its violations in upstream's aggregate
/// form (`maximum cpu usage per Container is 1, but limit is 2`, or several in brackets).
pub fn validate_pod(pod: &Value, limit_ranges: &[Value]) -> Result<(), String> {
    let spec = pod.get("spec").unwrap_or(&Value::Null);
    let containers: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .filter_map(|k| spec.get(*k).and_then(Value::as_array))
        .flatten()
        .collect();
    for lr in limit_ranges {
        let mut errs = Vec::new();
        for item in limits(lr) {
            match limit_type(item) {
                "Container" => {
                    for c in &containers {
                        let requests = resource_list(c.pointer("/resources/requests"));
                        let limits = resource_list(c.pointer("/resources/limits"));
                        check_item(item, "Container", &requests, &limits, &mut errs);
                    }
                }
                "Pod" => {
                    let requests = pod_resources(pod, "requests", LIMIT_RANGE_AGGREGATION);
                    let limits = pod_resources(pod, "limits", LIMIT_RANGE_AGGREGATION);
                    check_item(item, "Pod", &requests, &limits, &mut errs);
                }
                _ => {}
            }
        }
        if !errs.is_empty() {
            return Err(aggregate_message(&errs));
        }
    }
    Ok(())
}

/// Checks a claim's storage request against the `PersistentVolumeClaim` items of each
/// limit range (claims get no defaults: storage is required).
pub fn validate_pvc(pvc: &Value, limit_ranges: &[Value]) -> Result<(), String> {
    let requests = resource_list(pvc.pointer("/spec/resources/requests"));
    let no_limits = ResourceList::new();
    for lr in limit_ranges {
        let mut errs = Vec::new();
        for item in limits(lr)
            .iter()
            .filter(|i| limit_type(i) == "PersistentVolumeClaim")
        {
            for (name, min) in &resource_list(item.get("min")) {
                errs.extend(min_constraint(
                    "PersistentVolumeClaim",
                    name,
                    min,
                    &requests,
                    &no_limits,
                ));
            }
            for (name, max) in &resource_list(item.get("max")) {
                errs.extend(max_request_constraint(
                    "PersistentVolumeClaim",
                    name,
                    max,
                    &requests,
                ));
            }
        }
        if !errs.is_empty() {
            return Err(aggregate_message(&errs));
        }
    }
    Ok(())
}

fn check_item(
    item: &Value,
    kind: &str,
    requests: &ResourceList,
    limits: &ResourceList,
    errs: &mut Vec<String>,
) {
    for (name, min) in &resource_list(item.get("min")) {
        errs.extend(min_constraint(kind, name, min, requests, limits));
    }
    for (name, max) in &resource_list(item.get("max")) {
        errs.extend(max_constraint(kind, name, max, requests, limits));
    }
    for (name, ratio) in &resource_list(item.get("maxLimitRequestRatio")) {
        errs.extend(ratio_constraint(kind, name, ratio, requests, limits));
    }
}

/// Request, limit and bound at a common precision: thousandths unless any would overflow
/// them (upstream's `requestLimitEnforcedValues`). Absent quantities are zero.
fn comparable(
    request: Option<&Quantity>,
    limit: Option<&Quantity>,
    bound: &Quantity,
) -> (i64, i64, i64) {
    let value = |q: Option<&Quantity>| q.map_or(0, Quantity::value);
    let (r, l, b) = (value(request), value(limit), bound.value());
    if r <= MAX_MILLI_VALUE && l <= MAX_MILLI_VALUE && b <= MAX_MILLI_VALUE {
        let milli = |q: Option<&Quantity>| q.map_or(0, Quantity::milli_value);
        (milli(request), milli(limit), bound.milli_value())
    } else {
        (r, l, b)
    }
}

fn min_constraint(
    kind: &str,
    name: &str,
    min: &Quantity,
    requests: &ResourceList,
    limits: &ResourceList,
) -> Option<String> {
    let (req, lim) = (requests.get(name), limits.get(name));
    let (r, l, m) = comparable(req, lim, min);
    match (req, lim) {
        (None, _) => Some(format!(
            "minimum {name} usage per {kind} is {min}.  No request is specified"
        )),
        (Some(req), _) if r < m => Some(format!(
            "minimum {name} usage per {kind} is {min}, but request is {req}"
        )),
        (_, Some(lim)) if l < m => Some(format!(
            "minimum {name} usage per {kind} is {min}, but limit is {lim}"
        )),
        _ => None,
    }
}

fn max_constraint(
    kind: &str,
    name: &str,
    max: &Quantity,
    requests: &ResourceList,
    limits: &ResourceList,
) -> Option<String> {
    let (req, lim) = (requests.get(name), limits.get(name));
    let (r, l, m) = comparable(req, lim, max);
    match (req, lim) {
        (_, None) => Some(format!(
            "maximum {name} usage per {kind} is {max}.  No limit is specified"
        )),
        (_, Some(lim)) if l > m => Some(format!(
            "maximum {name} usage per {kind} is {max}, but limit is {lim}"
        )),
        (Some(req), _) if r > m => Some(format!(
            "maximum {name} usage per {kind} is {max}, but request is {req}"
        )),
        _ => None,
    }
}

/// The max constraint for kinds whose limits are not user input (claims): only the request.
fn max_request_constraint(
    kind: &str,
    name: &str,
    max: &Quantity,
    requests: &ResourceList,
) -> Option<String> {
    let req = requests.get(name);
    let (r, _, m) = comparable(req, None, max);
    match req {
        None => Some(format!(
            "maximum {name} usage per {kind} is {max}.  No request is specified"
        )),
        Some(req) if r > m => Some(format!(
            "maximum {name} usage per {kind} is {max}, but request is {req}"
        )),
        _ => None,
    }
}

fn ratio_constraint(
    kind: &str,
    name: &str,
    ratio: &Quantity,
    requests: &ResourceList,
    limits: &ResourceList,
) -> Option<String> {
    let (req, lim) = (requests.get(name), limits.get(name));
    let (r, l, _) = comparable(req, lim, ratio);
    if req.is_none() || r == 0 {
        return Some(format!(
            "{name} max limit to request ratio per {kind} is {ratio}, but no request is specified or request is 0"
        ));
    }
    if lim.is_none() || l == 0 {
        return Some(format!(
            "{name} max limit to request ratio per {kind} is {ratio}, but no limit is specified or limit is 0"
        ));
    }
    // Float arithmetic as upstream does it, so borderline ratios decide the same way.
    let observed = l as f64 / r as f64;
    let (scaled, allowed) = if ratio.value() <= MAX_MILLI_VALUE {
        (observed * 1000.0, ratio.milli_value() as f64)
    } else {
        (observed, ratio.value() as f64)
    };
    (scaled > allowed).then(|| {
        format!(
            "{name} max limit to request ratio per {kind} is {ratio}, but provided ratio is {observed:.6}"
        )
    })
}

#[cfg(test)]
mod tests;
