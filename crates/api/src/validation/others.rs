//! The remaining groups: autoscaling, policy, coordination, events and scheduling.

use k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler as HpaV1;
use k8s_openapi::api::autoscaling::v2::{HorizontalPodAutoscaler, MetricTarget};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::scheduling::v1::PriorityClass;

use super::apps::{not_more_than_100_percent, positive_int_or_percent};
use super::container::{enum_field, non_negative_quantity};
use super::meta::{immutable, json, validate_label_selector};
use super::names::{is_valid_path_segment_name, name_is_dns_subdomain};
use super::{no_update, MetaRule, Rules};
use crate::field_error::{ErrorList, FieldError, FieldPath};

fn scale_target(kind: &str, name: &str, path: &FieldPath, errs: &mut ErrorList) {
    for (f, v) in [("kind", kind), ("name", name)] {
        if v.is_empty() {
            errs.push(FieldError::required(&path.child(f), ""));
        } else {
            for m in is_valid_path_segment_name(v) {
                errs.push(FieldError::invalid(&path.child(f), v, &m));
            }
        }
    }
}

fn replica_bounds(min: Option<i32>, max: i32, sp: &FieldPath, errs: &mut ErrorList) {
    if let Some(m) = min.filter(|m| *m < 1) {
        errs.push(FieldError::invalid(
            &sp.child("minReplicas"),
            m,
            "must be greater than or equal to 1",
        ));
    }
    if max < 1 {
        errs.push(FieldError::invalid(
            &sp.child("maxReplicas"),
            max,
            "must be greater than 0",
        ));
    }
    if min.is_some_and(|m| max < m) {
        errs.push(FieldError::invalid(
            &sp.child("maxReplicas"),
            max,
            "must be greater than or equal to `minReplicas`",
        ));
    }
}

fn metric_target(t: &MetricTarget, path: &FieldPath, errs: &mut ErrorList) {
    let types = ["AverageValue", "Utilization", "Value"];
    if t.type_.is_empty() {
        errs.push(FieldError::required(
            &path.child("type"),
            "must specify a metric target type",
        ));
    } else if !types.contains(&t.type_.as_str()) {
        errs.push(FieldError::not_supported(
            &path.child("type"),
            t.type_.as_str(),
            &types,
        ));
    }
    if let Some(v) = &t.value {
        if let Some(x) = non_negative_quantity(v, &path.child("value"), errs) {
            if x <= 0.0 {
                errs.push(FieldError::invalid(
                    &path.child("value"),
                    v.0.as_str(),
                    "must be positive",
                ));
            }
        }
    }
    if let Some(v) = &t.average_value {
        if let Some(x) = non_negative_quantity(v, &path.child("averageValue"), errs) {
            if x <= 0.0 {
                errs.push(FieldError::invalid(
                    &path.child("averageValue"),
                    v.0.as_str(),
                    "must be positive",
                ));
            }
        }
    }
    if let Some(u) = t.average_utilization.filter(|u| *u < 1) {
        errs.push(FieldError::invalid(
            &path.child("averageUtilization"),
            u,
            "must be greater than 0",
        ));
    }
}

pub(crate) fn hpa_rules() -> Rules<HorizontalPodAutoscaler> {
    Rules {
        meta: MetaRule::Standard(name_is_dns_subdomain),
        create: |h, _| {
            let mut errs = ErrorList::new();
            let sp = FieldPath::new("spec");
            let spec = h.spec.clone().unwrap_or_default();
            scale_target(
                &spec.scale_target_ref.kind,
                &spec.scale_target_ref.name,
                &sp.child("scaleTargetRef"),
                &mut errs,
            );
            replica_bounds(spec.min_replicas, spec.max_replicas, &sp, &mut errs);
            let types = [
                "ContainerResource",
                "External",
                "Object",
                "Pods",
                "Resource",
            ];
            for (i, m) in spec.metrics.iter().flatten().enumerate() {
                let mp = sp.child("metrics").index(i);
                if m.type_.is_empty() {
                    errs.push(FieldError::required(
                        &mp.child("type"),
                        "must specify a metric source type",
                    ));
                    continue;
                }
                if !types.contains(&m.type_.as_str()) {
                    errs.push(FieldError::not_supported(
                        &mp.child("type"),
                        m.type_.as_str(),
                        &types,
                    ));
                    continue;
                }
                let sources = [
                    ("object", "Object", m.object.is_some()),
                    ("pods", "Pods", m.pods.is_some()),
                    ("resource", "Resource", m.resource.is_some()),
                    ("external", "External", m.external.is_some()),
                    (
                        "containerResource",
                        "ContainerResource",
                        m.container_resource.is_some(),
                    ),
                ];
                for (field, ty, set) in sources {
                    if ty == m.type_ && !set {
                        errs.push(FieldError::required(&mp.child(field), &format!("must populate information for the given metric source (only allowed when type is {ty})")));
                    }
                    if ty != m.type_ && set {
                        errs.push(FieldError::forbidden(&mp.child(field), &format!("must populate the given metric source only (only allowed when type is {ty})")));
                    }
                }
                if let Some(r) = &m.resource {
                    let rp = mp.child("resource");
                    if r.name.is_empty() {
                        errs.push(FieldError::required(
                            &rp.child("name"),
                            "must specify a resource name",
                        ));
                    }
                    metric_target(&r.target, &rp.child("target"), &mut errs);
                }
                if let Some(r) = &m.container_resource {
                    let rp = mp.child("containerResource");
                    if r.name.is_empty() {
                        errs.push(FieldError::required(
                            &rp.child("name"),
                            "must specify a resource name",
                        ));
                    }
                    if r.container.is_empty() {
                        errs.push(FieldError::required(
                            &rp.child("container"),
                            "must specify a container",
                        ));
                    }
                    metric_target(&r.target, &rp.child("target"), &mut errs);
                }
                if let Some(p) = &m.pods {
                    metric_target(&p.target, &mp.child("pods").child("target"), &mut errs);
                }
                if let Some(o) = &m.object {
                    metric_target(&o.target, &mp.child("object").child("target"), &mut errs);
                }
                if let Some(e) = &m.external {
                    metric_target(&e.target, &mp.child("external").child("target"), &mut errs);
                }
            }
            errs
        },
        update: no_update,
        status: no_update,
    }
}

pub(crate) fn hpa_v1_rules() -> Rules<HpaV1> {
    Rules {
        meta: MetaRule::Standard(name_is_dns_subdomain),
        create: |h, _| {
            let mut errs = ErrorList::new();
            let sp = FieldPath::new("spec");
            let spec = h.spec.clone().unwrap_or_default();
            scale_target(
                &spec.scale_target_ref.kind,
                &spec.scale_target_ref.name,
                &sp.child("scaleTargetRef"),
                &mut errs,
            );
            replica_bounds(spec.min_replicas, spec.max_replicas, &sp, &mut errs);
            if let Some(t) = spec.target_cpu_utilization_percentage.filter(|t| *t < 1) {
                errs.push(FieldError::invalid(
                    &sp.child("targetCPUUtilizationPercentage"),
                    t,
                    "must be greater than 0",
                ));
            }
            errs
        },
        update: no_update,
        status: no_update,
    }
}

pub(crate) fn pdb_rules() -> Rules<PodDisruptionBudget> {
    Rules {
        meta: MetaRule::Standard(name_is_dns_subdomain),
        create: |p, _| {
            let mut errs = ErrorList::new();
            let sp = FieldPath::new("spec");
            let spec = p.spec.clone().unwrap_or_default();
            if spec.min_available.is_some() && spec.max_unavailable.is_some() {
                errs.push(FieldError::invalid(
                    &sp,
                    json(&spec),
                    "minAvailable and maxUnavailable cannot be both set",
                ));
            }
            for (v, f) in [
                (&spec.min_available, "minAvailable"),
                (&spec.max_unavailable, "maxUnavailable"),
            ] {
                if let Some(v) = v {
                    positive_int_or_percent(v, &sp.child(f), &mut errs);
                    not_more_than_100_percent(v, &sp.child(f), &mut errs);
                }
            }
            errs.extend(validate_label_selector(
                spec.selector.as_ref(),
                &sp.child("selector"),
            ));
            if let Some(u) = spec.unhealthy_pod_eviction_policy.as_deref() {
                let supported = ["AlwaysAllow", "IfHealthyBudget"];
                if !supported.contains(&u) {
                    errs.push(FieldError::not_supported(
                        &sp.child("unhealthyPodEvictionPolicy"),
                        u,
                        &supported,
                    ));
                }
            }
            errs
        },
        update: no_update,
        status: |n, _, _| {
            let mut errs = ErrorList::new();
            let sp = FieldPath::new("status");
            if let Some(s) = &n.status {
                for (v, f) in [
                    (s.disruptions_allowed, "disruptionsAllowed"),
                    (s.current_healthy, "currentHealthy"),
                    (s.desired_healthy, "desiredHealthy"),
                    (s.expected_pods, "expectedPods"),
                ] {
                    super::meta::non_negative(Some(v.into()), &sp.child(f), &mut errs);
                }
            }
            errs
        },
    }
}

pub(crate) fn lease_rules() -> Rules<Lease> {
    Rules {
        meta: MetaRule::Standard(name_is_dns_subdomain),
        create: |l, _| {
            let mut errs = ErrorList::new();
            let sp = FieldPath::new("spec");
            if let Some(s) = &l.spec {
                if let Some(d) = s.lease_duration_seconds.filter(|d| *d <= 0) {
                    errs.push(FieldError::invalid(
                        &sp.child("leaseDurationSeconds"),
                        d,
                        "must be greater than 0",
                    ));
                }
                if let Some(t) = s.lease_transitions.filter(|t| *t < 0) {
                    errs.push(FieldError::invalid(
                        &sp.child("leaseTransitions"),
                        t,
                        "must be greater than or equal to 0",
                    ));
                }
                if let Some(st) = s.strategy.as_deref() {
                    enum_field(
                        Some(st),
                        &["OldestEmulationVersion"],
                        &sp.child("strategy"),
                        &mut errs,
                    );
                }
            }
            errs
        },
        update: no_update,
        status: no_update,
    }
}

const HIGHEST_USER_PRIORITY: i32 = 1_000_000_000;

pub(crate) fn priority_class_rules() -> Rules<PriorityClass> {
    Rules {
        meta: MetaRule::Standard(name_is_dns_subdomain),
        create: |pc, _| {
            let mut errs = ErrorList::new();
            let name = pc.metadata.name.clone().unwrap_or_default();
            if name.starts_with("system-") {
                let known = [
                    ("system-node-critical", 2_000_001_000),
                    ("system-cluster-critical", 2_000_000_000),
                ];
                match known.iter().find(|(n, _)| *n == name) {
                    None => errs.push(FieldError::forbidden(&FieldPath::new("metadata").child("name"), &format!("priority class names with 'system-' prefix are reserved for system use only. error: {name} is not a known system priority class"))),
                    Some((_, v)) if *v != pc.value => errs.push(FieldError::forbidden(&FieldPath::new("metadata").child("name"), &format!("priority class names with 'system-' prefix are reserved for system use only. error: value of {name} PriorityClass must be {v}"))),
                    _ => {}
                }
            } else if pc.value > HIGHEST_USER_PRIORITY {
                errs.push(FieldError::forbidden(
                    &FieldPath::new("value"),
                    "maximum allowed value of a user defined priority is 1000000000",
                ));
            }
            if let Some(p) = pc.preemption_policy.as_deref() {
                enum_field(
                    Some(p),
                    &["PreemptLowerPriority", "Never"],
                    &FieldPath::new("preemptionPolicy"),
                    &mut errs,
                );
            }
            errs
        },
        update: |n, o, _| {
            let mut errs = ErrorList::new();
            if n.value != o.value {
                errs.push(FieldError::forbidden(
                    &FieldPath::new("value"),
                    "may not be changed in an update.",
                ));
            }
            immutable(
                &n.preemption_policy,
                &o.preemption_policy,
                &FieldPath::new("preemptionPolicy"),
                &mut errs,
            );
            errs
        },
        status: no_update,
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{kinds, want, Case};
    use super::super::{validate_create, validate_update};
    use crate::field_error::FieldErrorType::*;
    use serde_json::{json, Value};

    fn obj(group: &str, version: &str, kind: &str, ns: bool, body: Value) -> Value {
        let mut o = json!({"apiVersion": format!("{group}/{version}"), "kind": kind, "metadata": {"name": "x", "resourceVersion": "1"}});
        if ns {
            o["metadata"]["namespace"] = json!("d");
        }
        for (k, v) in body.as_object().into_iter().flatten() {
            if k == "metadata" {
                for (mk, mv) in v.as_object().into_iter().flatten() {
                    o["metadata"][mk] = mv.clone();
                }
            } else {
                o[k] = v.clone();
            }
        }
        o
    }

    #[test]
    fn hpa_rules() {
        let hpa = |spec: Value| {
            obj(
                "autoscaling",
                "v2",
                "HorizontalPodAutoscaler",
                true,
                json!({"spec": spec}),
            )
        };
        let target = json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"});
        let cases: Vec<Case> = vec![
            (
                "valid",
                json!({"scaleTargetRef": target, "minReplicas": 1, "maxReplicas": 5, "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]}),
                vec![],
            ),
            (
                "min above max",
                json!({"scaleTargetRef": target, "minReplicas": 5, "maxReplicas": 2}),
                vec![("spec.maxReplicas", Invalid)],
            ),
            (
                "zero max",
                json!({"scaleTargetRef": target, "maxReplicas": 0}),
                vec![("spec.maxReplicas", Invalid)],
            ),
            (
                "no target",
                json!({"scaleTargetRef": {"kind": "", "name": ""}, "maxReplicas": 1}),
                vec![
                    ("spec.scaleTargetRef.kind", Required),
                    ("spec.scaleTargetRef.name", Required),
                ],
            ),
            (
                "bad metric type",
                json!({"scaleTargetRef": target, "maxReplicas": 1, "metrics": [{"type": "Magic"}]}),
                vec![("spec.metrics[0].type", NotSupported)],
            ),
            (
                "missing source",
                json!({"scaleTargetRef": target, "maxReplicas": 1, "metrics": [{"type": "Resource"}]}),
                vec![("spec.metrics[0].resource", Required)],
            ),
        ];
        for (name, spec, w) in cases {
            assert_eq!(
                kinds(&validate_create(
                    "autoscaling",
                    "HorizontalPodAutoscaler",
                    &hpa(spec)
                )),
                want(w),
                "{name}"
            );
        }
        let v1 = obj(
            "autoscaling",
            "v1",
            "HorizontalPodAutoscaler",
            true,
            json!({"spec": {"scaleTargetRef": target, "maxReplicas": 3, "targetCPUUtilizationPercentage": 0}}),
        );
        assert_eq!(
            kinds(&validate_create(
                "autoscaling",
                "HorizontalPodAutoscaler",
                &v1
            )),
            want(vec![("spec.targetCPUUtilizationPercentage", Invalid)])
        );
    }

    #[test]
    fn pdb_lease_priority_class() {
        let pdb = |spec: Value| {
            obj(
                "policy",
                "v1",
                "PodDisruptionBudget",
                true,
                json!({"spec": spec}),
            )
        };
        assert_eq!(
            kinds(&validate_create(
                "policy",
                "PodDisruptionBudget",
                &pdb(json!({"minAvailable": 1, "selector": {"matchLabels": {"a": "b"}}}))
            )),
            want(vec![])
        );
        assert_eq!(
            kinds(&validate_create(
                "policy",
                "PodDisruptionBudget",
                &pdb(json!({"minAvailable": 1, "maxUnavailable": "10%"}))
            )),
            want(vec![("spec", Invalid)])
        );
        assert_eq!(
            kinds(&validate_create(
                "policy",
                "PodDisruptionBudget",
                &pdb(json!({"maxUnavailable": "120%"}))
            )),
            want(vec![("spec.maxUnavailable", Invalid)])
        );
        let lease = obj(
            "coordination.k8s.io",
            "v1",
            "Lease",
            true,
            json!({"spec": {"leaseDurationSeconds": 0, "leaseTransitions": -1}}),
        );
        assert_eq!(
            kinds(&validate_create("coordination.k8s.io", "Lease", &lease)),
            want(vec![
                ("spec.leaseDurationSeconds", Invalid),
                ("spec.leaseTransitions", Invalid)
            ])
        );
        let pc = |value: i64| {
            obj(
                "scheduling.k8s.io",
                "v1",
                "PriorityClass",
                false,
                json!({"value": value}),
            )
        };
        assert_eq!(
            kinds(&validate_create(
                "scheduling.k8s.io",
                "PriorityClass",
                &pc(1000)
            )),
            want(vec![])
        );
        assert_eq!(
            kinds(&validate_create(
                "scheduling.k8s.io",
                "PriorityClass",
                &pc(2_000_000_000)
            )),
            want(vec![("value", Forbidden)])
        );
        assert_eq!(
            kinds(&validate_update(
                "scheduling.k8s.io",
                "PriorityClass",
                &pc(5),
                &pc(6)
            )),
            want(vec![("value", Forbidden)])
        );
        let sys = obj(
            "scheduling.k8s.io",
            "v1",
            "PriorityClass",
            false,
            json!({"metadata": {"name": "system-mine"}, "value": 1}),
        );
        assert_eq!(
            kinds(&validate_create("scheduling.k8s.io", "PriorityClass", &sys)),
            want(vec![("metadata.name", Forbidden)])
        );
    }
}
