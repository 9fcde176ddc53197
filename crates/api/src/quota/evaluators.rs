//! Upstream's quota evaluators: for each resource, what its objects use, which quota
//! resource names it tracks, which requests it handles, and how quota scopes match.
//! Pods, services and persistent volume claims have their own; every other resource is
//! counted as `count/<resource>.<group>` (configmaps, secrets, replicationcontrollers and
//! resourcequotas also under their legacy names).

use jiff::Timestamp;
use serde_json::Value;

use super::resources::{one, resource_list, zero, ResourceList};
use super::{pods, Operation};
use crate::quantity::Quantity;

/// How a resource is measured.
enum Evaluator {
    Pods,
    Services,
    PersistentVolumeClaims,
    /// Object counting under these names.
    Count(Vec<String>),
}

/// `count/<resource>` for the core group, `count/<resource>.<group>` otherwise.
pub fn object_count_name(group: &str, resource: &str) -> String {
    if group.is_empty() {
        format!("count/{resource}")
    } else {
        format!("count/{resource}.{group}")
    }
}

fn evaluator(group: &str, resource: &str) -> Evaluator {
    match (group, resource) {
        ("", "pods") => Evaluator::Pods,
        ("", "services") => Evaluator::Services,
        ("", "persistentvolumeclaims") => Evaluator::PersistentVolumeClaims,
        _ => {
            let mut names = vec![object_count_name(group, resource)];
            if group.is_empty()
                && matches!(
                    resource,
                    "configmaps" | "resourcequotas" | "replicationcontrollers" | "secrets"
                )
            {
                names.push(resource.to_string());
            }
            Evaluator::Count(names)
        }
    }
}

/// Resources quota never counts: virtual ones that are not stored, and events.
pub fn ignored_resource(group: &str, resource: &str) -> bool {
    matches!(
        (group, resource),
        ("", "bindings" | "componentstatuses" | "events")
            | (
                "authentication.k8s.io",
                "tokenreviews" | "selfsubjectreviews"
            )
            | (
                "authorization.k8s.io",
                "subjectaccessreviews"
                    | "selfsubjectaccessreviews"
                    | "localsubjectaccessreviews"
                    | "selfsubjectrulesreviews"
            )
            | ("events.k8s.io", "events")
    )
}

/// The quota usage of one object of `group`/`resource`, now.
pub fn usage(group: &str, resource: &str, obj: &Value) -> ResourceList {
    usage_at(group, resource, obj, Timestamp::now())
}

/// The quota usage of one object at time `now` (which decides whether a terminating pod's
/// grace period has run out).
pub fn usage_at(group: &str, resource: &str, obj: &Value, now: Timestamp) -> ResourceList {
    match evaluator(group, resource) {
        Evaluator::Pods => pods::usage(obj, now),
        Evaluator::Services => service_usage(obj),
        Evaluator::PersistentVolumeClaims => pvc_usage(obj),
        Evaluator::Count(names) => names.into_iter().map(|n| (n, one())).collect(),
    }
}

/// The names among `names` that objects of `group`/`resource` can use.
pub fn matching_resources<S: AsRef<str>>(group: &str, resource: &str, names: &[S]) -> Vec<String> {
    let mut out: Vec<String> = match evaluator(group, resource) {
        Evaluator::Pods => return pods::matching_resources(names),
        Evaluator::Services => {
            const SERVICES: &[&str] = &[
                "count/services",
                "services",
                "services.nodeports",
                "services.loadbalancers",
            ];
            names
                .iter()
                .map(AsRef::as_ref)
                .filter(|n| SERVICES.contains(n))
                .map(str::to_string)
                .collect()
        }
        Evaluator::PersistentVolumeClaims => names
            .iter()
            .map(AsRef::as_ref)
            .filter(|n| {
                matches!(
                    *n,
                    "count/persistentvolumeclaims" | "persistentvolumeclaims" | "requests.storage"
                ) || n.ends_with(".storageclass.storage.k8s.io/persistentvolumeclaims")
                    || n.ends_with(".storageclass.storage.k8s.io/requests.storage")
            })
            .map(str::to_string)
            .collect(),
        Evaluator::Count(own) => names
            .iter()
            .map(AsRef::as_ref)
            .filter(|n| own.iter().any(|o| o == n))
            .map(str::to_string)
            .collect(),
    };
    out.sort();
    out.dedup();
    out
}

/// Upstream's `Constraints`: only pods have any (every container must set the cpu and
/// memory requests and limits a matching quota tracks). The error is the text after
/// `failed quota: <name>: `.
pub fn constraints<S: AsRef<str>>(
    group: &str,
    resource: &str,
    required: &[S],
    obj: &Value,
) -> Result<(), String> {
    match evaluator(group, resource) {
        Evaluator::Pods => pods::constraints(required, obj),
        _ => Ok(()),
    }
}

/// Whether quota admission looks at this request at all (upstream's `Handles`): creates,
/// plus pod resizes, service updates, and claim updates (including status, where the
/// allocated size can grow).
pub fn handles(group: &str, resource: &str, subresource: &str, operation: Operation) -> bool {
    match evaluator(group, resource) {
        Evaluator::Pods => match subresource {
            "" => operation == Operation::Create,
            "resize" => operation == Operation::Update,
            _ => false,
        },
        Evaluator::Services => true,
        // Upstream compares freshly allocated pointers to decide whether a status update
        // changed the allocated size, so in effect it handles every status update.
        Evaluator::PersistentVolumeClaims => matches!(subresource, "" | "status"),
        Evaluator::Count(_) => subresource.is_empty() && operation == Operation::Create,
    }
}

fn service_usage(svc: &Value) -> ResourceList {
    let ports = svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let count =
        |n: usize| Quantity::from_i64(i64::try_from(n).unwrap_or(i64::MAX), Default::default());
    let mut out = ResourceList::new();
    out.insert("count/services".to_string(), one());
    out.insert("services".to_string(), one());
    out.insert("services.loadbalancers".to_string(), zero());
    out.insert("services.nodeports".to_string(), zero());
    match svc.pointer("/spec/type").and_then(Value::as_str) {
        Some("NodePort") => {
            out.insert("services.nodeports".to_string(), count(ports.len()));
        }
        Some("LoadBalancer") => {
            // Without node port allocation only ports asking for a node port use one.
            let allocate = svc
                .pointer("/spec/allocateLoadBalancerNodePorts")
                .and_then(Value::as_bool);
            let node_ports = if allocate == Some(false) {
                ports
                    .iter()
                    .filter(|p| p.get("nodePort").and_then(Value::as_i64).unwrap_or(0) != 0)
                    .count()
            } else {
                ports.len()
            };
            out.insert("services.nodeports".to_string(), count(node_ports));
            out.insert("services.loadbalancers".to_string(), one());
        }
        _ => {}
    }
    out
}

/// The storage class a claim uses: the beta annotation first, then `spec.storageClassName`.
fn pvc_class(pvc: &Value) -> &str {
    pvc.pointer("/metadata/annotations/volume.beta.kubernetes.io~1storage-class")
        .and_then(Value::as_str)
        .or_else(|| {
            pvc.pointer("/spec/storageClassName")
                .and_then(Value::as_str)
        })
        .unwrap_or("")
}

/// A storage size rounded up to whole bytes (quota validation refuses fractions).
fn round_up_bytes(q: Quantity) -> Quantity {
    let rounded = Quantity::from_i64(q.value(), q.format());
    // Beyond the int64 range the value saturates; such sizes are integral anyway.
    if q.value() == i64::MAX || rounded == q {
        q
    } else {
        rounded
    }
}

fn pvc_usage(pvc: &Value) -> ResourceList {
    let mut out = ResourceList::new();
    out.insert("persistentvolumeclaims".to_string(), one());
    out.insert("count/persistentvolumeclaims".to_string(), one());
    let class = pvc_class(pvc);
    if !class.is_empty() {
        out.insert(
            format!("{class}.storageclass.storage.k8s.io/persistentvolumeclaims"),
            one(),
        );
    }
    let requested = resource_list(pvc.pointer("/spec/resources/requests"))
        .remove("storage")
        .map(round_up_bytes);
    // A resize in progress is charged at the larger of the request and the allocation.
    let allocated = resource_list(pvc.pointer("/status/allocatedResources")).remove("storage");
    let storage = match (requested, allocated) {
        (Some(r), Some(a)) if a > r => Some(round_up_bytes(a)),
        (r, _) => r,
    };
    if let Some(storage) = storage {
        if !class.is_empty() {
            out.insert(
                format!("{class}.storageclass.storage.k8s.io/requests.storage"),
                storage.clone(),
            );
        }
        out.insert("requests.storage".to_string(), storage);
    }
    out
}

/// One requirement of a quota's scopes: a scope name, an operator and values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ScopeRequirement {
    scope: String,
    operator: String,
    values: Vec<String>,
}

/// A quota's `spec.scopes` (each as `Exists`) followed by its `spec.scopeSelector`
/// expressions.
pub(super) fn scope_requirements(quota_spec: &Value) -> Vec<ScopeRequirement> {
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| Some(s.as_str()?.to_string()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out: Vec<ScopeRequirement> = strings(quota_spec.get("scopes"))
        .into_iter()
        .map(|scope| ScopeRequirement {
            scope,
            operator: "Exists".to_string(),
            values: Vec::new(),
        })
        .collect();
    if let Some(exprs) = quota_spec
        .pointer("/scopeSelector/matchExpressions")
        .and_then(Value::as_array)
    {
        out.extend(exprs.iter().map(|e| {
            ScopeRequirement {
                scope: e
                    .get("scopeName")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                operator: e
                    .get("operator")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                values: strings(e.get("values")),
            }
        }));
    }
    out
}

/// Whether a pod is in one scope. The PriorityClass scope is a label selector over the
/// pod's priority class; the others ignore the operator.
fn pod_matches_scope(req: &ScopeRequirement, pod: &Value) -> bool {
    match req.scope.as_str() {
        "Terminating" => pods::is_terminating(pod),
        "NotTerminating" => !pods::is_terminating(pod),
        "BestEffort" => pods::is_best_effort(pod),
        "NotBestEffort" => !pods::is_best_effort(pod),
        "CrossNamespacePodAffinity" => pods::uses_cross_namespace_affinity(pod),
        "PriorityClass" => {
            let class = pod
                .pointer("/spec/priorityClassName")
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty());
            match req.operator.as_str() {
                "Exists" => class.is_some(),
                "DoesNotExist" => class.is_none(),
                "In" => class.is_some_and(|c| req.values.iter().any(|v| v == c)),
                "NotIn" => class.is_none_or(|c| !req.values.iter().any(|v| v == c)),
                // Validation refuses other operators; upstream fails to build the selector.
                _ => false,
            }
        }
        _ => false,
    }
}

/// Whether an object of `group`/`resource` is in every scope of the quota. Only pods have
/// scopes in v1.33 (volume attributes class scopes are behind an off-by-default gate), so
/// a scoped quota never matches other objects.
pub(super) fn matches_scope_requirements(
    group: &str,
    resource: &str,
    reqs: &[ScopeRequirement],
    obj: &Value,
) -> bool {
    match evaluator(group, resource) {
        Evaluator::Pods => reqs.iter().all(|r| pod_matches_scope(r, obj)),
        _ => reqs.is_empty(),
    }
}

/// Whether a pod is in every scope of a quota spec (`spec.scopes` and
/// `spec.scopeSelector`); a quota without scopes matches every pod.
pub fn matches_scopes(quota_spec: &Value, pod: &Value) -> bool {
    matches_scope_requirements("", "pods", &scope_requirements(quota_spec), pod)
}

/// Upstream's `Matches` for admission: the quota's `status.hard` tracks something objects of
/// `group`/`resource` use, and the object is in the quota's scopes.
pub fn quota_matches(quota: &Value, group: &str, resource: &str, obj: &Value) -> bool {
    let hard: Vec<String> = resource_list(quota.pointer("/status/hard"))
        .into_keys()
        .collect();
    !matching_resources(group, resource, &hard).is_empty()
        && matches_scope_requirements(
            group,
            resource,
            &scope_requirements(quota.get("spec").unwrap_or(&Value::Null)),
            obj,
        )
}

/// Whether some evaluator tracks a quota resource name: those of the built-in evaluators,
/// and any object count (`count/<resource>.<group>`), which the controller counts for every
/// resource it discovers.
pub(super) fn tracked_by_any(name: &str) -> bool {
    let one = [name];
    name.starts_with("count/")
        || [
            "pods",
            "services",
            "persistentvolumeclaims",
            "configmaps",
            "secrets",
            "resourcequotas",
            "replicationcontrollers",
        ]
        .iter()
        .any(|r| !matching_resources("", r, &one).is_empty())
}
