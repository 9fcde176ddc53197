//! What a pod costs: its aggregate requests and limits (upstream's
//! `component-helpers/resource` `PodRequests`/`PodLimits`), its quota usage, QoS and quota
//! scopes (`pkg/quota/v1/evaluator/core/pods.go`), as of v1.33 with its default gates
//! (in-place resize on, so status resources count; pod-level resources off).

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use serde_json::Value;

use super::resources::{add_into, max_into, one, resource_list, ResourceList};

/// How to aggregate container resources into the pod's.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AggregateOptions {
    /// Count the larger of spec and status resources (in-place resize).
    pub use_status_resources: bool,
    /// Leave out `spec.overhead`.
    pub exclude_overhead: bool,
}

/// What quota charges: status resources in, overhead in.
pub(crate) const QUOTA_AGGREGATION: AggregateOptions = AggregateOptions {
    use_status_resources: true,
    exclude_overhead: false,
};

fn containers<'a>(spec: &'a Value, key: &str) -> &'a [Value] {
    spec.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn container_resources(c: &Value, which: &str) -> ResourceList {
    resource_list(c.pointer(&format!("/resources/{which}")))
}

fn is_sidecar(c: &Value) -> bool {
    c.get("restartPolicy").and_then(Value::as_str) == Some("Always")
}

/// Container statuses (regular and init) by name, when they report resources.
fn statuses_with_resources(pod: &Value) -> BTreeMap<&str, &Value> {
    let status = pod.get("status").unwrap_or(&Value::Null);
    ["containerStatuses", "initContainerStatuses"]
        .iter()
        .flat_map(|k| containers(status, k))
        .filter(|cs| cs.get("resources").is_some_and(|r| !r.is_null()))
        .filter_map(|cs| Some((cs.get("name")?.as_str()?, cs)))
        .collect()
}

fn resize_infeasible(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some("PodResizePending"))
        })
        .is_some_and(|c| c.get("reason").and_then(Value::as_str) == Some("Infeasible"))
}

/// A container's requests or limits, raised to what its status reports while a resize is
/// pending (or replaced by the status when the resize is infeasible).
fn effective(pod: &Value, c: &Value, cs: Option<&&Value>, which: &str) -> ResourceList {
    let spec = container_resources(c, which);
    let Some(cs) = cs else { return spec };
    let status = resource_list(cs.pointer(&format!("/resources/{which}")));
    let mut out = if resize_infeasible(pod) {
        status
    } else {
        let mut out = spec;
        max_into(&mut out, &status);
        out
    };
    if which == "requests" {
        max_into(&mut out, &resource_list(cs.get("allocatedResources")));
    }
    out
}

/// The pod's requests (`which` = "requests") or limits ("limits"): the sum over containers
/// and sidecars, raised to the largest init container (plus the sidecars started before it),
/// plus overhead unless excluded (for limits, only onto limits that are set).
pub(crate) fn pod_resources(pod: &Value, which: &str, opts: AggregateOptions) -> ResourceList {
    let spec = pod.get("spec").unwrap_or(&Value::Null);
    let statuses = if opts.use_status_resources {
        statuses_with_resources(pod)
    } else {
        BTreeMap::new()
    };
    let mut total = ResourceList::new();
    for c in containers(spec, "containers") {
        let name = c.get("name").and_then(Value::as_str).unwrap_or("");
        add_into(&mut total, &effective(pod, c, statuses.get(name), which));
    }
    let mut sidecars = ResourceList::new();
    let mut init_max = ResourceList::new();
    for c in containers(spec, "initContainers") {
        let name = c.get("name").and_then(Value::as_str).unwrap_or("");
        let own = if is_sidecar(c) {
            effective(pod, c, statuses.get(name), which)
        } else {
            container_resources(c, which)
        };
        let during = if is_sidecar(c) {
            add_into(&mut total, &own);
            add_into(&mut sidecars, &own);
            sidecars.clone()
        } else {
            let mut tmp = own;
            add_into(&mut tmp, &sidecars);
            tmp
        };
        max_into(&mut init_max, &during);
    }
    max_into(&mut total, &init_max);
    if !opts.exclude_overhead {
        let overhead = resource_list(spec.get("overhead"));
        if which == "requests" {
            add_into(&mut total, &overhead);
        } else {
            for (k, v) in &overhead {
                if let Some(cur) = total.get(k).filter(|q| !q.is_zero()) {
                    let sum = super::resources::add_q(cur, v);
                    total.insert(k.clone(), sum);
                }
            }
        }
    }
    total
}

/// Resources whose names say they are native (no domain, or a `kubernetes.io` one).
fn is_native(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

/// Extended resources (`example.com/gpu`) that pods request and quota counts as
/// `requests.<name>`.
fn is_extended(name: &str) -> bool {
    !is_native(name) && !name.starts_with("requests.")
}

/// Quota names for extended resources: `requests.example.com/gpu`.
pub(super) fn is_extended_quota_name(name: &str) -> bool {
    !is_native(name) && name.starts_with("requests.")
}

/// The quota resources a pod (or one container) uses given its requests and limits
/// (upstream's `podComputeUsageHelper`).
fn compute_usage(requests: &ResourceList, limits: &ResourceList) -> ResourceList {
    let mut out = ResourceList::new();
    out.insert("pods".to_string(), one());
    for res in ["cpu", "memory", "ephemeral-storage"] {
        if let Some(q) = requests.get(res) {
            out.insert(res.to_string(), q.clone());
            out.insert(format!("requests.{res}"), q.clone());
        }
        if let Some(q) = limits.get(res) {
            out.insert(format!("limits.{res}"), q.clone());
        }
    }
    for (name, q) in requests {
        if name.starts_with("hugepages-") {
            out.insert(name.clone(), q.clone());
            out.insert(format!("requests.{name}"), q.clone());
        }
        if is_extended(name) {
            out.insert(format!("requests.{name}"), q.clone());
        }
    }
    out
}

/// Whether quota still charges a pod's compute resources: not when it has finished, nor
/// when its deletion grace period has run out (a pod stuck terminating on a lost node
/// should not block its replacement).
pub(super) fn charged(pod: &Value, now: Timestamp) -> bool {
    let phase = pod.pointer("/status/phase").and_then(Value::as_str);
    if matches!(phase, Some("Failed" | "Succeeded")) {
        return false;
    }
    let deletion = pod
        .pointer("/metadata/deletionTimestamp")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<Timestamp>().ok());
    let grace = pod
        .pointer("/metadata/deletionGracePeriodSeconds")
        .and_then(Value::as_i64);
    if let (Some(deletion), Some(grace)) = (deletion, grace) {
        let deadline = deletion
            .checked_add(jiff::SignedDuration::from_secs(grace))
            .unwrap_or(deletion);
        if now > deadline {
            return false;
        }
    }
    true
}

/// A pod's quota usage: `count/pods` always (it counts stored objects), and while it is
/// charged, `pods` and its compute resources.
pub(super) fn usage(pod: &Value, now: Timestamp) -> ResourceList {
    let mut out = ResourceList::new();
    out.insert("count/pods".to_string(), one());
    if !charged(pod, now) {
        return out;
    }
    let requests = pod_resources(pod, "requests", QUOTA_AGGREGATION);
    let limits = pod_resources(pod, "limits", QUOTA_AGGREGATION);
    add_into(&mut out, &compute_usage(&requests, &limits));
    out
}

/// The quota resources a pod evaluator tracks among `names`.
pub(super) fn matching_resources<S: AsRef<str>>(names: &[S]) -> Vec<String> {
    const POD_RESOURCES: &[&str] = &[
        "count/pods",
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
    ];
    let matched: BTreeSet<String> = names
        .iter()
        .map(AsRef::as_ref)
        .filter(|n| {
            POD_RESOURCES.contains(n)
                || n.starts_with("hugepages-")
                || n.starts_with("requests.hugepages-")
                || is_extended_quota_name(n)
        })
        .map(str::to_string)
        .collect();
    matched.into_iter().collect()
}

/// The resources that, when a quota tracks them, every container must set (a historical
/// mistake upstream keeps for compatibility; only cpu and memory).
const VALIDATION_SET: &[&str] = &[
    "cpu",
    "memory",
    "requests.cpu",
    "requests.memory",
    "limits.cpu",
    "limits.memory",
];

/// Upstream's pod `Constraints`: `must specify limits.cpu for: a,b; requests.memory for: c`
/// when tracked cpu/memory resources are missing from containers.
pub(super) fn constraints<S: AsRef<str>>(required: &[S], pod: &Value) -> Result<(), String> {
    let required: BTreeSet<&str> = required
        .iter()
        .map(AsRef::as_ref)
        .filter(|r| VALIDATION_SET.contains(r))
        .collect();
    let spec = pod.get("spec").unwrap_or(&Value::Null);
    let mut missing: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for c in containers(spec, "containers")
        .iter()
        .chain(containers(spec, "initContainers"))
    {
        let usage = compute_usage(
            &container_resources(c, "requests"),
            &container_resources(c, "limits"),
        );
        let name = c.get("name").and_then(Value::as_str).unwrap_or("");
        for r in &required {
            if !usage.contains_key(*r) {
                missing.entry(r).or_default().insert(name);
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let parts: Vec<String> = missing
        .iter()
        .map(|(r, names)| {
            let names: Vec<&str> = names.iter().copied().collect();
            format!("{r} for: {}", names.join(","))
        })
        .collect();
    Err(format!("must specify {}", parts.join("; ")))
}

/// Whether the pod has `activeDeadlineSeconds` (the Terminating scope).
pub(super) fn is_terminating(pod: &Value) -> bool {
    pod.pointer("/spec/activeDeadlineSeconds")
        .and_then(Value::as_i64)
        .is_some_and(|s| s >= 0)
}

/// Whether the pod is BestEffort: its reported QoS class, or else no container (or init
/// container) sets a positive cpu or memory request or limit.
pub(super) fn is_best_effort(pod: &Value) -> bool {
    if let Some(qos) = pod
        .pointer("/status/qosClass")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        return qos == "BestEffort";
    }
    let spec = pod.get("spec").unwrap_or(&Value::Null);
    !containers(spec, "containers")
        .iter()
        .chain(containers(spec, "initContainers"))
        .any(|c| {
            ["requests", "limits"].iter().any(|which| {
                let list = container_resources(c, which);
                ["cpu", "memory"]
                    .iter()
                    .any(|r| list.get(*r).is_some_and(|q| q.sign() > 0))
            })
        })
}

/// Whether the pod's affinity reaches other namespaces (the CrossNamespacePodAffinity
/// scope): any pod (anti-)affinity term with namespaces or a namespace selector.
pub(super) fn uses_cross_namespace_affinity(pod: &Value) -> bool {
    let cross = |term: &Value| {
        term.get("namespaces")
            .and_then(Value::as_array)
            .is_some_and(|n| !n.is_empty())
            || term.get("namespaceSelector").is_some_and(|s| !s.is_null())
    };
    ["podAffinity", "podAntiAffinity"].iter().any(|kind| {
        let Some(aff) = pod.pointer(&format!("/spec/affinity/{kind}")) else {
            return false;
        };
        containers(aff, "requiredDuringSchedulingIgnoredDuringExecution")
            .iter()
            .any(cross)
            || containers(aff, "preferredDuringSchedulingIgnoredDuringExecution")
                .iter()
                .any(|w| w.get("podAffinityTerm").is_some_and(cross))
    })
}
