//! The remaining groups: autoscaling, policy, coordination, events, scheduling, RBAC and
//! custom resource definitions.

use std::collections::BTreeSet;

use k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler as HpaV1;
use k8s_openapi::api::autoscaling::v2::{HorizontalPodAutoscaler, MetricTarget};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

use super::apps::{not_more_than_100_percent, positive_int_or_percent};
use super::container::{enum_field, non_negative_quantity};
use super::meta::{immutable, json, validate_label_selector};
use super::names::{
    is_dns1035_label, is_dns1123_subdomain, is_valid_path_segment_name, name_is_dns_subdomain,
    name_is_path_segment,
};
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

pub(crate) fn events_v1_rules() -> Rules<Event> {
    Rules {
        meta: MetaRule::Standard(name_is_dns_subdomain),
        create: |e, _| {
            let mut errs = ErrorList::new();
            if e.event_time.is_none() {
                errs.push(FieldError::required(&FieldPath::new("eventTime"), ""));
            }
            let ty = e.type_.as_deref().unwrap_or_default();
            if ty != "Normal" && ty != "Warning" {
                errs.push(FieldError::invalid(
                    &FieldPath::new("type"),
                    "",
                    &format!("has invalid value: {ty}"),
                ));
            }
            for (f, v, max) in [
                ("reportingController", e.reporting_controller.as_deref(), 0),
                ("reportingInstance", e.reporting_instance.as_deref(), 128),
                ("action", e.action.as_deref(), 128),
                ("reason", e.reason.as_deref(), 128),
            ] {
                let v = v.unwrap_or_default();
                if v.is_empty() {
                    errs.push(FieldError::required(&FieldPath::new(f), ""));
                } else if max > 0 && v.len() > max {
                    errs.push(FieldError::invalid(
                        &FieldPath::new(f),
                        "",
                        &format!("can have at most {max} characters"),
                    ));
                }
            }
            if let Some(n) = e.note.as_deref().filter(|n| n.len() > 1024) {
                let _ = n;
                errs.push(FieldError::invalid(
                    &FieldPath::new("note"),
                    "",
                    "can have at most 1024 characters",
                ));
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

fn policy_rules(rules: &[PolicyRule], namespaced: bool, path: &FieldPath, errs: &mut ErrorList) {
    for (i, r) in rules.iter().enumerate() {
        let p = path.index(i);
        if r.verbs.is_empty() {
            errs.push(FieldError::required(
                &p.child("verbs"),
                "verbs must contain at least one value",
            ));
        }
        let urls = r.non_resource_urls.as_deref().unwrap_or_default();
        let groups = r.api_groups.as_deref().unwrap_or_default();
        let resources = r.resources.as_deref().unwrap_or_default();
        if !urls.is_empty() {
            if namespaced {
                errs.push(FieldError::invalid(
                    &p.child("nonResourceURLs"),
                    json(&urls),
                    "namespaced rules cannot apply to non-resource URLs",
                ));
            }
            if !groups.is_empty()
                || !resources.is_empty()
                || r.resource_names.as_ref().is_some_and(|n| !n.is_empty())
            {
                errs.push(FieldError::invalid(
                    &p.child("nonResourceURLs"),
                    json(&urls),
                    "rules cannot apply to both regular resources and non-resource URLs",
                ));
            }
            continue;
        }
        if groups.is_empty() {
            errs.push(FieldError::required(
                &p.child("apiGroups"),
                "resource rules must supply at least one api group",
            ));
        }
        if resources.is_empty() {
            errs.push(FieldError::required(
                &p.child("resources"),
                "resource rules must supply at least one resource",
            ));
        }
    }
}

pub(crate) fn role_rules() -> Rules<Role> {
    Rules {
        meta: MetaRule::Standard(name_is_path_segment),
        create: |r, _| {
            let mut errs = ErrorList::new();
            policy_rules(
                r.rules.as_deref().unwrap_or_default(),
                true,
                &FieldPath::new("rules"),
                &mut errs,
            );
            errs
        },
        update: no_update,
        status: no_update,
    }
}

pub(crate) fn cluster_role_rules() -> Rules<ClusterRole> {
    Rules {
        meta: MetaRule::Standard(name_is_path_segment),
        create: |r, _| {
            let mut errs = ErrorList::new();
            policy_rules(
                r.rules.as_deref().unwrap_or_default(),
                false,
                &FieldPath::new("rules"),
                &mut errs,
            );
            if let Some(a) = &r.aggregation_rule {
                let ap = FieldPath::new("aggregationRule").child("clusterRoleSelectors");
                let sels = a.cluster_role_selectors.as_deref().unwrap_or_default();
                if sels.is_empty() {
                    errs.push(FieldError::required(
                        &ap,
                        "at least one clusterRoleSelector required if aggregationRule is non-nil",
                    ));
                }
                for (i, s) in sels.iter().enumerate() {
                    errs.extend(validate_label_selector(Some(s), &ap.index(i)));
                }
            }
            errs
        },
        update: no_update,
        status: no_update,
    }
}

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

fn binding_rules(role_ref: &RoleRef, subjects: &[Subject], namespaced: bool, errs: &mut ErrorList) {
    let rp = FieldPath::new("roleRef");
    if role_ref.api_group != RBAC_GROUP {
        errs.push(FieldError::not_supported(
            &rp.child("apiGroup"),
            role_ref.api_group.as_str(),
            &[RBAC_GROUP],
        ));
    }
    let kinds: &[&str] = if namespaced {
        &["Role", "ClusterRole"]
    } else {
        &["ClusterRole"]
    };
    if !kinds.contains(&role_ref.kind.as_str()) {
        errs.push(FieldError::not_supported(
            &rp.child("kind"),
            role_ref.kind.as_str(),
            kinds,
        ));
    }
    if role_ref.name.is_empty() {
        errs.push(FieldError::required(&rp.child("name"), ""));
    } else {
        for m in name_is_path_segment(&role_ref.name, false) {
            errs.push(FieldError::invalid(
                &rp.child("name"),
                role_ref.name.as_str(),
                &m,
            ));
        }
    }
    for (i, s) in subjects.iter().enumerate() {
        let p = FieldPath::new("subjects").index(i);
        if s.name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        }
        let group = s.api_group.as_deref().unwrap_or_default();
        match s.kind.as_str() {
            "ServiceAccount" => {
                if !s.name.is_empty() {
                    for m in name_is_dns_subdomain(&s.name, false) {
                        errs.push(FieldError::invalid(&p.child("name"), s.name.as_str(), &m));
                    }
                }
                if !group.is_empty() {
                    errs.push(FieldError::not_supported(
                        &p.child("apiGroup"),
                        group,
                        &[""],
                    ));
                }
                if !namespaced && s.namespace.as_deref().unwrap_or_default().is_empty() {
                    errs.push(FieldError::required(&p.child("namespace"), ""));
                }
            }
            "User" | "Group" => {
                // Defaulting fills the group for users and groups.
                if s.api_group.is_some() && group != RBAC_GROUP {
                    errs.push(FieldError::not_supported(
                        &p.child("apiGroup"),
                        group,
                        &[RBAC_GROUP],
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(
                &p.child("kind"),
                other,
                &["ServiceAccount", "User", "Group"],
            )),
        }
    }
}

fn role_ref_changed(n: &RoleRef, o: &RoleRef, errs: &mut ErrorList) {
    if n != o {
        errs.push(FieldError::invalid(
            &FieldPath::new("roleRef"),
            json(n),
            "cannot change roleRef",
        ));
    }
}

pub(crate) fn role_binding_rules() -> Rules<RoleBinding> {
    Rules {
        meta: MetaRule::Standard(name_is_path_segment),
        create: |b, _| {
            let mut errs = ErrorList::new();
            binding_rules(
                &b.role_ref,
                b.subjects.as_deref().unwrap_or_default(),
                true,
                &mut errs,
            );
            errs
        },
        update: |n, o, _| {
            let mut errs = ErrorList::new();
            role_ref_changed(&n.role_ref, &o.role_ref, &mut errs);
            errs
        },
        status: no_update,
    }
}

pub(crate) fn cluster_role_binding_rules() -> Rules<ClusterRoleBinding> {
    Rules {
        meta: MetaRule::Standard(name_is_path_segment),
        create: |b, _| {
            let mut errs = ErrorList::new();
            binding_rules(
                &b.role_ref,
                b.subjects.as_deref().unwrap_or_default(),
                false,
                &mut errs,
            );
            errs
        },
        update: |n, o, _| {
            let mut errs = ErrorList::new();
            role_ref_changed(&n.role_ref, &o.role_ref, &mut errs);
            errs
        },
        status: no_update,
    }
}

fn crd_name(name: &str, prefix: bool) -> Vec<String> {
    name_is_dns_subdomain(name, prefix)
}

fn dns1035_joined(v: &str) -> Option<String> {
    let errs = is_dns1035_label(v);
    (!errs.is_empty()).then(|| errs.join(","))
}

pub(crate) fn crd_rules() -> Rules<CustomResourceDefinition> {
    Rules {
        meta: MetaRule::Generic(crd_name),
        create: |crd, _| {
            let mut errs = ErrorList::new();
            let spec = &crd.spec;
            let sp = FieldPath::new("spec");
            let name = crd.metadata.name.clone().unwrap_or_default();
            if !name.is_empty() && name != format!("{}.{}", spec.names.plural, spec.group) {
                errs.push(FieldError::invalid(
                    &FieldPath::new("metadata").child("name"),
                    name.as_str(),
                    "must be spec.names.plural+\".\"+spec.group",
                ));
            }
            if spec.group.is_empty() {
                errs.push(FieldError::required(&sp.child("group"), ""));
            } else {
                let msgs = is_dns1123_subdomain(&spec.group);
                if !msgs.is_empty() {
                    errs.push(FieldError::invalid(
                        &sp.child("group"),
                        spec.group.as_str(),
                        &msgs.join(","),
                    ));
                } else if spec.group.split('.').count() < 2 {
                    errs.push(FieldError::invalid(
                        &sp.child("group"),
                        spec.group.as_str(),
                        "should be a domain with at least one dot",
                    ));
                }
            }
            match spec.scope.as_str() {
                "Cluster" | "Namespaced" => {}
                "" => errs.push(FieldError::required(&sp.child("scope"), "")),
                other => errs.push(FieldError::not_supported(
                    &sp.child("scope"),
                    other,
                    &["Cluster", "Namespaced"],
                )),
            }
            let np = sp.child("names");
            let n = &spec.names;
            if n.plural.is_empty() {
                errs.push(FieldError::required(&np.child("plural"), ""));
            } else if let Some(m) = dns1035_joined(&n.plural) {
                errs.push(FieldError::invalid(
                    &np.child("plural"),
                    n.plural.as_str(),
                    &m,
                ));
            }
            match n.singular.as_deref() {
                Some("") => errs.push(FieldError::required(&np.child("singular"), "")),
                Some(s) => {
                    if let Some(m) = dns1035_joined(s) {
                        errs.push(FieldError::invalid(&np.child("singular"), s, &m));
                    }
                }
                None => {}
            }
            if n.kind.is_empty() {
                errs.push(FieldError::required(&np.child("kind"), ""));
            } else if let Some(m) = dns1035_joined(&n.kind.to_lowercase()) {
                errs.push(FieldError::invalid(
                    &np.child("kind"),
                    n.kind.as_str(),
                    &format!("may have mixed case, but should otherwise match: {m}"),
                ));
            }
            match n.list_kind.as_deref() {
                Some("") => errs.push(FieldError::required(&np.child("listKind"), "")),
                Some(lk) => {
                    if let Some(m) = dns1035_joined(&lk.to_lowercase()) {
                        errs.push(FieldError::invalid(
                            &np.child("listKind"),
                            lk,
                            &format!("may have mixed case, but should otherwise match: {m}"),
                        ));
                    }
                    if !n.kind.is_empty() && lk == n.kind {
                        errs.push(FieldError::invalid(
                            &np.child("listKind"),
                            lk,
                            "kind and listKind may not be the same",
                        ));
                    }
                }
                None => {}
            }
            for (i, s) in n.short_names.iter().flatten().enumerate() {
                if let Some(m) = dns1035_joined(s) {
                    errs.push(FieldError::invalid(
                        &np.child("shortNames").index(i),
                        s.as_str(),
                        &m,
                    ));
                }
            }
            for (i, c) in n.categories.iter().flatten().enumerate() {
                if let Some(m) = dns1035_joined(c) {
                    errs.push(FieldError::invalid(
                        &np.child("categories").index(i),
                        c.as_str(),
                        &m,
                    ));
                }
            }
            let vp = sp.child("versions");
            if spec.versions.is_empty() {
                errs.push(FieldError::invalid(
                    &vp,
                    json(&spec.versions),
                    "must have exactly one version marked as storage version",
                ));
            }
            let mut seen = BTreeSet::new();
            let mut unique = true;
            let mut storage = 0;
            for (i, v) in spec.versions.iter().enumerate() {
                if v.storage {
                    storage += 1;
                }
                if !seen.insert(v.name.as_str()) {
                    unique = false;
                }
                if let Some(m) = dns1035_joined(&v.name) {
                    errs.push(FieldError::invalid(
                        &vp.index(i).child("name"),
                        v.name.as_str(),
                        &m,
                    ));
                }
                if v.schema
                    .as_ref()
                    .and_then(|s| s.open_api_v3_schema.as_ref())
                    .is_none()
                {
                    errs.push(FieldError::required(
                        &vp.index(i).child("schema").child("openAPIV3Schema"),
                        "schemas are required",
                    ));
                }
            }
            if !unique {
                errs.push(FieldError::invalid(
                    &vp,
                    json(&spec.versions),
                    "must contain unique version names",
                ));
            }
            if !spec.versions.is_empty() && storage != 1 {
                errs.push(FieldError::invalid(
                    &vp,
                    json(&spec.versions),
                    "must have exactly one version marked as storage version",
                ));
            }
            if spec.preserve_unknown_fields == Some(true) {
                errs.push(FieldError::invalid(
                    &sp.child("preserveUnknownFields"),
                    true,
                    "must be false in order to use defaults in the schema",
                ));
            }
            errs
        },
        update: |n, o, _| {
            let mut errs = ErrorList::new();
            let sp = FieldPath::new("spec");
            immutable(&n.spec.group, &o.spec.group, &sp.child("group"), &mut errs);
            immutable(&n.spec.scope, &o.spec.scope, &sp.child("scope"), &mut errs);
            immutable(
                &n.spec.names.plural,
                &o.spec.names.plural,
                &sp.child("names").child("plural"),
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

    #[test]
    fn rbac_rules() {
        let g = "rbac.authorization.k8s.io";
        let role = |rules: Value| obj(g, "v1", "Role", true, json!({"rules": rules}));
        assert_eq!(
            kinds(&validate_create(
                g,
                "Role",
                &role(json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]))
            )),
            want(vec![])
        );
        assert_eq!(
            kinds(&validate_create(
                g,
                "Role",
                &role(json!([{"apiGroups": [""], "resources": ["pods"], "verbs": []}]))
            )),
            want(vec![("rules[0].verbs", Required)])
        );
        assert_eq!(
            kinds(&validate_create(
                g,
                "Role",
                &role(json!([{"verbs": ["get"]}]))
            )),
            want(vec![
                ("rules[0].apiGroups", Required),
                ("rules[0].resources", Required)
            ])
        );
        assert_eq!(
            kinds(&validate_create(
                g,
                "Role",
                &role(json!([{"nonResourceURLs": ["/x"], "verbs": ["get"]}]))
            )),
            want(vec![("rules[0].nonResourceURLs", Invalid)])
        );
        let named = obj(
            g,
            "v1",
            "ClusterRole",
            false,
            json!({"metadata": {"name": "system:aggregate-to-view"}, "rules": [{"nonResourceURLs": ["/x"], "verbs": ["get"]}]}),
        );
        assert_eq!(
            kinds(&validate_create(g, "ClusterRole", &named)),
            want(vec![])
        );
        let bad_name = obj(
            g,
            "v1",
            "ClusterRole",
            false,
            json!({"metadata": {"name": "a/b"}}),
        );
        assert_eq!(
            kinds(&validate_create(g, "ClusterRole", &bad_name)),
            want(vec![("metadata.name", Invalid)])
        );
        let rb = |rr: Value, subjects: Value| {
            obj(
                g,
                "v1",
                "RoleBinding",
                true,
                json!({"roleRef": rr, "subjects": subjects}),
            )
        };
        let rr = json!({"apiGroup": g, "kind": "Role", "name": "r"});
        assert_eq!(
            kinds(&validate_create(
                g,
                "RoleBinding",
                &rb(
                    rr.clone(),
                    json!([{"kind": "ServiceAccount", "name": "default"}, {"kind": "User", "name": "jane", "apiGroup": g}])
                )
            )),
            want(vec![])
        );
        assert_eq!(
            kinds(&validate_create(
                g,
                "RoleBinding",
                &rb(
                    json!({"apiGroup": "x", "kind": "Thing", "name": ""}),
                    json!([{"kind": "Robot", "name": "r"}])
                )
            )),
            want(vec![
                ("roleRef.apiGroup", NotSupported),
                ("roleRef.kind", NotSupported),
                ("roleRef.name", Required),
                ("subjects[0].kind", NotSupported)
            ])
        );
        let changed = rb(
            json!({"apiGroup": g, "kind": "ClusterRole", "name": "r"}),
            json!([]),
        );
        assert_eq!(
            kinds(&validate_update(
                g,
                "RoleBinding",
                &changed,
                &rb(rr, json!([]))
            )),
            want(vec![("roleRef", Invalid)])
        );
        let crb = obj(
            g,
            "v1",
            "ClusterRoleBinding",
            false,
            json!({"roleRef": {"apiGroup": g, "kind": "ClusterRole", "name": "r"}, "subjects": [{"kind": "ServiceAccount", "name": "default"}]}),
        );
        assert_eq!(
            kinds(&validate_create(g, "ClusterRoleBinding", &crb)),
            want(vec![("subjects[0].namespace", Required)])
        );
    }

    #[test]
    fn crd_rules() {
        let g = "apiextensions.k8s.io";
        let schema = json!({"openAPIV3Schema": {"type": "object"}});
        let crd = |name: &str, spec: Value| {
            obj(
                g,
                "v1",
                "CustomResourceDefinition",
                false,
                json!({"metadata": {"name": name}, "spec": spec}),
            )
        };
        let ok = json!({"group": "example.com", "scope": "Namespaced", "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": schema}]});
        assert_eq!(
            kinds(&validate_create(
                g,
                "CustomResourceDefinition",
                &crd("widgets.example.com", ok.clone())
            )),
            want(vec![])
        );
        assert_eq!(
            kinds(&validate_create(
                g,
                "CustomResourceDefinition",
                &crd("widgets.other.com", ok.clone())
            )),
            want(vec![("metadata.name", Invalid)])
        );
        let two_storage = json!({"group": "example.com", "scope": "Cluster", "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": schema}, {"name": "v2", "served": true, "storage": true, "schema": schema}]});
        assert_eq!(
            kinds(&validate_create(
                g,
                "CustomResourceDefinition",
                &crd("widgets.example.com", two_storage)
            )),
            want(vec![("spec.versions", Invalid)])
        );
        let bad = json!({"group": "example", "scope": "Global", "names": {"plural": "Widgets", "kind": ""},
            "versions": [{"name": "V1", "served": true, "storage": true}]});
        assert_eq!(
            kinds(&validate_create(
                g,
                "CustomResourceDefinition",
                &crd("Widgets.example", bad)
            )),
            want(vec![
                ("metadata.name", Invalid),
                ("spec.group", Invalid),
                ("spec.scope", NotSupported),
                ("spec.names.plural", Invalid),
                ("spec.names.kind", Required),
                ("spec.versions[0].name", Invalid),
                ("spec.versions[0].schema.openAPIV3Schema", Required),
            ])
        );
        let mut moved = ok.clone();
        moved["scope"] = json!("Cluster");
        assert_eq!(
            kinds(&validate_update(
                g,
                "CustomResourceDefinition",
                &crd("widgets.example.com", moved),
                &crd("widgets.example.com", ok)
            )),
            want(vec![("spec.scope", Invalid)])
        );
    }
}
