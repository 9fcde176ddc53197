//! Where the plugin finds pod specs and when it looks: the pod templates of workload kinds,
//! which pod updates and subresources it ignores, and its checks of namespaces (label
//! validation, and warnings for existing pods when the enforce level is raised).

use std::collections::BTreeMap;

use serde_json::Value;

use super::level::{
    exempt_namespace_warning, labels_of, Exemptions, Level, LevelVersion, NamespacePolicy,
};
use super::pod::array;
use super::{check_pod, forbidden_reasons};
use crate::field_error::ErrorList;

static NULL: Value = Value::Null;

/// Whether objects of this resource carry a pod spec the plugin checks: pods (enforced) and
/// the workload resources (audit and warn only).
pub fn has_pod_spec(group: &str, resource: &str) -> bool {
    matches!(
        (group, resource),
        ("", "pods" | "replicationcontrollers" | "podtemplates")
            | (
                "apps",
                "replicasets" | "deployments" | "statefulsets" | "daemonsets"
            )
            | ("batch", "jobs" | "cronjobs")
    )
}

/// The pod metadata and spec of an object of `kind`: a Pod's own, or the pod template of a
/// workload (`spec.jobTemplate.spec.template` for a CronJob). A missing template reads as
/// empty, as upstream's value-typed templates do, except a ReplicationController's optional
/// one, which has nothing to check (`None`, as for kinds without pods).
pub fn pod_template_of<'a>(kind: &str, obj: &'a Value) -> Option<(&'a Value, &'a Value)> {
    let template = match kind {
        "Pod" => return Some((meta_or_null(obj), obj.get("spec").unwrap_or(&NULL))),
        "PodTemplate" => obj.get("template"),
        "ReplicationController" => match obj.pointer("/spec/template") {
            None | Some(Value::Null) => return None,
            t => t,
        },
        "ReplicaSet" | "Deployment" | "DaemonSet" | "StatefulSet" | "Job" => {
            obj.pointer("/spec/template")
        }
        "CronJob" => obj.pointer("/spec/jobTemplate/spec/template"),
        _ => return None,
    };
    let template = template.unwrap_or(&NULL);
    Some((
        meta_or_null(template),
        template.get("spec").unwrap_or(&NULL),
    ))
}

fn meta_or_null(v: &Value) -> &Value {
    v.get("metadata").unwrap_or(&NULL)
}

/// Pod subresources the plugin lets through: none of them can change the pod spec. Any
/// other subresource (`ephemeralcontainers`, `resize`) is checked as a pod update.
pub fn ignored_pod_subresource(subresource: &str) -> bool {
    matches!(
        subresource,
        "exec" | "attach" | "binding" | "eviction" | "log" | "portforward" | "proxy" | "status"
    )
}

/// Whether a pod update could change the outcome: containers added or removed, an image
/// changed, or an ephemeral container added or changed. Other updates are always allowed.
pub fn is_significant_pod_update(pod: &Value, old_pod: &Value) -> bool {
    let spec = pod.get("spec").unwrap_or(&NULL);
    let old_spec = old_pod.get("spec").unwrap_or(&NULL);
    let image = |c: &Value| {
        c.get("image")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    for key in ["containers", "initContainers"] {
        let (new, old) = (array(spec, key), array(old_spec, key));
        if new.len() != old.len() || new.iter().zip(old).any(|(n, o)| image(n) != image(o)) {
            return true;
        }
    }
    let name = |c: &Value| {
        c.get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let old_ephemeral = array(old_spec, "ephemeralContainers");
    array(spec, "ephemeralContainers").iter().any(|c| {
        match old_ephemeral.iter().find(|o| name(o) == name(c)) {
            None => true,
            Some(o) => image(o) != image(c),
        }
    })
}

/// What the plugin answers to a namespace create or update.
#[derive(Debug, Clone, PartialEq)]
pub enum NamespaceOutcome {
    /// Allowed, with these warnings.
    Allowed { warnings: Vec<String> },
    /// Refused as Invalid (422) for these label errors.
    Invalid(ErrorList),
    /// Allowed; the enforce level was raised, so the response carries the warnings
    /// [`namespace_pod_warnings`] gives for the namespace's existing pods at this level.
    CheckPods(LevelVersion),
}

/// Upstream's `ValidateNamespace` for a create (`old` is `None`) or update of a namespace
/// (not a subresource; other operations are allowed unchecked). `request_namespace` is the
/// request's namespace as the API server's request info has it (the namespace's name on an
/// update, empty on a create), which is what the exemption is matched on.
pub fn validate_namespace(
    namespace: &Value,
    old: Option<&Value>,
    request_namespace: &str,
    exemptions: &Exemptions,
    defaults: &NamespacePolicy,
) -> NamespaceOutcome {
    let labels = labels_of(namespace);
    let name = namespace
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let (policy, errs) = NamespacePolicy::from_labels_with_defaults(&labels, defaults);
    let exempt_warning = || {
        let warnings = if exemptions.namespace(request_namespace) {
            exempt_namespace_warning(name, &policy, defaults, &labels)
                .into_iter()
                .collect()
        } else {
            Vec::new()
        };
        NamespaceOutcome::Allowed { warnings }
    };
    let allowed = NamespaceOutcome::Allowed {
        warnings: Vec::new(),
    };
    let Some(old) = old else {
        if !errs.is_empty() {
            return NamespaceOutcome::Invalid(errs);
        }
        return exempt_warning();
    };
    let (old_policy, old_errs) =
        NamespacePolicy::from_labels_with_defaults(&labels_of(old), defaults);
    // Labels that were already invalid in the same way do not block unrelated updates.
    if !errs.is_empty() && (old_errs.is_empty() || errs != old_errs) {
        return NamespaceOutcome::Invalid(errs);
    }
    if policy.enforce == old_policy.enforce || policy.enforce.level == Level::Privileged {
        return allowed;
    }
    if policy.enforce.version == old_policy.enforce.version
        && policy.enforce.level <= old_policy.enforce.level
    {
        return allowed;
    }
    if exemptions.namespace(request_namespace) {
        return exempt_warning();
    }
    NamespaceOutcome::CheckPods(policy.enforce)
}

/// The most existing pods upstream checks when a namespace's enforce level is raised.
const MAX_PODS_TO_CHECK: usize = 3000;

/// The warnings for a namespace's existing pods that `enforce` would refuse: a header, then
/// one line per distinct set of failed checks naming the alphabetically first pod and how
/// many others share it. Pods with an exempt runtime class are skipped, and one pod per
/// controller is checked before the rest, so a large workload does not hide the others.
pub fn namespace_pod_warnings(
    namespace: &str,
    enforce: &LevelVersion,
    pods: &[Value],
    exemptions: &Exemptions,
) -> Vec<String> {
    let prioritized = prioritize_pods(pods, exemptions);
    let total = prioritized.len();
    let checked = &prioritized[..total.min(MAX_PODS_TO_CHECK)];

    // Distinct warnings in first-seen order, with the first pod name and the count.
    let mut order: Vec<String> = Vec::new();
    let mut counts: BTreeMap<String, (String, usize)> = BTreeMap::new();
    for pod in checked {
        let meta = pod.get("metadata").unwrap_or(&NULL);
        let spec = pod.get("spec").unwrap_or(&NULL);
        let results = check_pod(enforce, meta, spec);
        if results.is_empty() {
            continue;
        }
        let warning = forbidden_reasons(&results);
        let pod_name = meta.get("name").and_then(Value::as_str).unwrap_or("");
        match counts.get_mut(&warning) {
            None => {
                order.push(warning.clone());
                counts.insert(warning, (pod_name.to_string(), 1));
            }
            Some((first, n)) => {
                if pod_name < first.as_str() {
                    *first = pod_name.to_string();
                }
                *n += 1;
            }
        }
    }

    let mut warnings = Vec::new();
    if checked.len() < total {
        warnings.push(format!(
            "new PodSecurity enforce level only checked against the first {} of {total} existing pods",
            checked.len()
        ));
    }
    if !order.is_empty() {
        warnings.push(format!(
            "existing pods in namespace \"{namespace}\" violate the new PodSecurity enforce level \"{enforce}\""
        ));
    }
    let mut pod_warnings: Vec<String> = order
        .into_iter()
        .map(|w| match counts.get(&w) {
            Some((first, 1)) => format!("{first}: {w}"),
            Some((first, 2)) => format!("{first} (and 1 other pod): {w}"),
            Some((first, n)) => format!("{first} (and {} other pods): {w}", n - 1),
            None => w,
        })
        .collect();
    pod_warnings.sort();
    warnings.extend(pod_warnings);
    warnings
}

/// Pods without an exempt runtime class, one per controller first, then the other pods of
/// controllers already represented.
fn prioritize_pods<'a>(pods: &'a [Value], exemptions: &Exemptions) -> Vec<&'a Value> {
    let mut first = Vec::new();
    let mut duplicates = Vec::new();
    let mut seen_controllers: Vec<&str> = Vec::new();
    for pod in pods {
        let runtime_class = pod
            .pointer("/spec/runtimeClassName")
            .and_then(Value::as_str);
        if exemptions.runtime_class(runtime_class) {
            continue;
        }
        let controller = pod
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .and_then(|refs| {
                refs.iter()
                    .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
            })
            .map(|r| r.get("uid").and_then(Value::as_str).unwrap_or(""));
        match controller {
            None => first.push(pod),
            Some(uid) if seen_controllers.contains(&uid) => duplicates.push(pod),
            Some(uid) => {
                seen_controllers.push(uid);
                first.push(pod);
            }
        }
    }
    first.extend(duplicates);
    first
}
