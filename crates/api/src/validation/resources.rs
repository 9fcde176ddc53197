//! Resource requirements (`limits`, `requests`): names, quantities, integers for extended
//! resources, and requests no larger than limits; plus the quantity checks other kinds share.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::meta::IS_NEGATIVE;
use super::names::is_qualified_name;
use super::qty;
use crate::field_error::{ErrorList, FieldError, FieldPath};

const STANDARD_CONTAINER_RESOURCES: &[&str] = &["cpu", "memory", "ephemeral-storage"];
const STANDARD_RESOURCES: &[&str] = &[
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "storage",
    "requests.storage",
    "services.nodeports",
    "services.loadbalancers",
];

fn is_hugepages(name: &str) -> bool {
    name.starts_with("hugepages-")
}

fn is_native(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

/// Extended resources (`example.com/gpu`) may not be overcommitted.
fn is_extended(name: &str) -> bool {
    !is_native(name)
        && !name.starts_with("requests.")
        && is_qualified_name(&format!("requests.{name}")).is_empty()
}

fn validate_container_resource_name(name: &str, path: &FieldPath) -> ErrorList {
    let mut errs: ErrorList = is_qualified_name(name)
        .into_iter()
        .map(|m| FieldError::invalid(path, name, &m))
        .collect();
    if errs.is_empty()
        && !name.contains('/')
        && !(STANDARD_RESOURCES.contains(&name)
            || is_hugepages(name)
            || name.starts_with("requests.hugepages-"))
    {
        errs.push(FieldError::invalid(
            path,
            name,
            "must be a standard resource type or fully qualified",
        ));
    }
    if !name.contains('/') {
        if !(STANDARD_CONTAINER_RESOURCES.contains(&name) || is_hugepages(name)) {
            errs.push(FieldError::invalid(
                path,
                name,
                "must be a standard resource for containers",
            ));
        }
    } else if !is_native(name) && !is_extended(name) {
        errs.push(FieldError::invalid(
            path,
            name,
            "doesn't follow extended resource name standard",
        ));
    }
    errs
}

/// Parses a quantity, reporting a malformed one at `path`.
pub(crate) fn quantity(q: &Quantity, path: &FieldPath, errs: &mut ErrorList) -> Option<f64> {
    let v = qty::parse(&q.0);
    if v.is_none() {
        errs.push(FieldError::invalid(
            path,
            q.0.as_str(),
            qty::QUANTITY_FORMAT_ERROR,
        ));
    }
    v
}

/// A quantity that must not be negative.
pub(crate) fn non_negative_quantity(
    q: &Quantity,
    path: &FieldPath,
    errs: &mut ErrorList,
) -> Option<f64> {
    let v = quantity(q, path, errs)?;
    if v < 0.0 {
        errs.push(FieldError::invalid(path, q.0.as_str(), IS_NEGATIVE));
    }
    Some(v)
}

/// Container (or pod) resources: names, non-negative quantities, integers for extended
/// resources, and requests no larger than limits.
pub(crate) fn validate_resource_requirements(
    r: &ResourceRequirements,
    path: &FieldPath,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let lim_path = path.child("limits");
    let req_path = path.child("requests");
    let empty = BTreeMap::new();
    let limits = r.limits.as_ref().unwrap_or(&empty);
    let requests = r.requests.as_ref().unwrap_or(&empty);
    let mut lim_values = BTreeMap::new();
    for (name, q) in limits {
        let p = lim_path.key(name);
        errs.extend(validate_container_resource_name(name, &p));
        if let Some(v) = non_negative_quantity(q, &p, &mut errs) {
            integer_check(name, q, v, &p, &mut errs);
            lim_values.insert(name.as_str(), v);
        }
    }
    for (name, q) in requests {
        let p = req_path.key(name);
        errs.extend(validate_container_resource_name(name, &p));
        let Some(v) = non_negative_quantity(q, &p, &mut errs) else {
            continue;
        };
        integer_check(name, q, v, &p, &mut errs);
        let overcommit = !is_extended(name) && !is_hugepages(name);
        match (limits.get(name), lim_values.get(name.as_str())) {
            (Some(lq), Some(lv)) => {
                if (v - lv).abs() > f64::EPSILON * lv.abs().max(1.0) && !overcommit {
                    errs.push(FieldError::invalid(
                        &req_path,
                        q.0.as_str(),
                        &format!("must be equal to {name} limit of {}", lq.0),
                    ));
                } else if v > *lv {
                    errs.push(FieldError::invalid(
                        &req_path,
                        q.0.as_str(),
                        &format!("must be less than or equal to {name} limit of {}", lq.0),
                    ));
                }
            }
            (None, _) if !overcommit => errs.push(FieldError::required(
                &lim_path,
                "Limit must be set for non overcommitable resources",
            )),
            _ => {}
        }
    }
    let has_cpu_mem = ["cpu", "memory"]
        .iter()
        .any(|k| limits.contains_key(*k) || requests.contains_key(*k));
    let has_huge = limits
        .keys()
        .chain(requests.keys())
        .any(|k| is_hugepages(k));
    if has_huge && !has_cpu_mem {
        errs.push(FieldError::forbidden(
            path,
            "HugePages require cpu or memory",
        ));
    }
    errs
}

fn integer_check(name: &str, q: &Quantity, v: f64, path: &FieldPath, errs: &mut ErrorList) {
    if is_extended(name) && v.fract() != 0.0 {
        errs.push(FieldError::invalid(
            path,
            q.0.as_str(),
            "must be an integer",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json as j;

    #[test]
    fn request_limit_message_matches_upstream() {
        let r: ResourceRequirements =
            serde_json::from_value(j!({"limits": {"cpu": "1"}, "requests": {"cpu": "2"}}))
                .expect("r");
        let errs = validate_resource_requirements(&r, &FieldPath::new("resources"));
        assert_eq!(errs[0].to_string(), "resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1");
    }
}
