//! Pods, pod specs and pod templates: upstream's `ValidatePodSpec`, `ValidateVolumes`,
//! `ValidateTolerations`, `ValidatePodTemplateSpec` and `ValidatePodUpdate`, whose
//! "pod updates may not change fields other than ..." rule lets only images, the active
//! deadline, added tolerations and removed scheduling gates change.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, PodTemplateSpec, Toleration, Volume};
use serde_json::Value;

use super::container::{
    enum_field, validate_container_common, validate_containers, validate_init_containers,
    validate_resource_requirements,
};
use super::meta::{json, validate_annotations, validate_label_selector, validate_labels};
use super::names::{
    inclusive_range_error, is_dns1123_label, is_dns1123_subdomain, is_qualified_name,
    is_valid_label_value, name_is_dns_subdomain,
};
use super::volumes::validate_volumes;
use crate::field_error::{ErrorList, FieldError, FieldPath};

const MAX_INT32: i64 = i32::MAX as i64;

/// `ValidatePodSpec`. `is_pod` adds the checks upstream applies only to real pods.
pub(crate) fn validate_pod_spec(spec: &PodSpec, path: &FieldPath, is_pod: bool) -> ErrorList {
    let mut errs = ErrorList::new();
    let grace = spec.termination_grace_period_seconds;
    let restart = spec.restart_policy.as_deref();
    let (vols, verrs) = validate_volumes(
        spec.volumes.as_deref().unwrap_or_default(),
        &path.child("volumes"),
    );
    errs.extend(verrs);
    errs.extend(validate_containers(
        &spec.containers,
        &vols,
        grace,
        &path.child("containers"),
        restart,
    ));
    let inits = spec.init_containers.as_deref().unwrap_or_default();
    errs.extend(validate_init_containers(
        inits,
        &spec.containers,
        &vols,
        grace,
        &path.child("initContainers"),
        restart,
    ));
    errs.extend(validate_ephemeral_containers(
        spec,
        &vols,
        &path.child("ephemeralContainers"),
    ));
    if let Some(r) = &spec.resources {
        errs.extend(validate_resource_requirements(r, &path.child("resources")));
    }
    if spec.host_network == Some(true) {
        for (ci, c) in spec.containers.iter().enumerate() {
            for (pi, p) in c.ports.iter().flatten().enumerate() {
                let hp = p.host_port.unwrap_or(0);
                if (is_pod || hp != 0) && hp != p.container_port {
                    errs.push(FieldError::invalid(
                        &path
                            .child("containers")
                            .index(ci)
                            .child("ports")
                            .index(pi)
                            .child("hostPort"),
                        hp,
                        "must match `containerPort` when `hostNetwork` is true",
                    ));
                }
            }
        }
    }
    enum_field(
        restart,
        &["Always", "OnFailure", "Never"],
        &path.child("restartPolicy"),
        &mut errs,
    );
    enum_field(
        spec.dns_policy.as_deref(),
        &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        &path.child("dnsPolicy"),
        &mut errs,
    );
    errs.extend(validate_labels(
        spec.node_selector.as_ref(),
        &path.child("nodeSelector"),
    ));
    for (i, s) in spec.image_pull_secrets.iter().flatten().enumerate() {
        if s.name.is_empty() {
            errs.push(FieldError::invalid(
                &path.child("imagePullSecrets").index(i),
                json(s),
                "only name may be set",
            ));
        }
    }
    if spec.dns_policy.as_deref() == Some("None") {
        match &spec.dns_config {
            None => errs.push(FieldError::required(
                &path.child("dnsConfig"),
                "must provide `dnsConfig` when `dnsPolicy` is None",
            )),
            Some(c) if c.nameservers.as_ref().is_none_or(Vec::is_empty) => {
                errs.push(FieldError::required(
                    &path.child("dnsConfig").child("nameservers"),
                    "must provide at least one DNS nameserver when `dnsPolicy` is None",
                ))
            }
            _ => {}
        }
    }
    if let Some(c) = &spec.dns_config {
        let cp = path.child("dnsConfig");
        let ns = c.nameservers.as_deref().unwrap_or_default();
        if ns.len() > 3 {
            errs.push(FieldError::invalid(
                &cp.child("nameservers"),
                json(&ns),
                "must not have more than 3 nameservers",
            ));
        }
        for (i, n) in ns.iter().enumerate() {
            if n.parse::<std::net::IpAddr>().is_err() {
                errs.push(FieldError::invalid(
                    &cp.child("nameservers").index(i),
                    n.as_str(),
                    "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                ));
            }
        }
        for (i, s) in c.searches.iter().flatten().enumerate() {
            let s = s.strip_suffix('.').unwrap_or(s);
            for m in is_dns1123_subdomain(s) {
                errs.push(FieldError::invalid(&cp.child("searches").index(i), s, &m));
            }
        }
    }
    for (i, g) in spec.readiness_gates.iter().flatten().enumerate() {
        let p = path.child("readinessGates").index(i).child("conditionType");
        for m in is_qualified_name(&g.condition_type) {
            errs.push(FieldError::invalid(&p, g.condition_type.as_str(), &m));
        }
    }
    let mut gates = BTreeSet::new();
    for (i, g) in spec.scheduling_gates.iter().flatten().enumerate() {
        let p = path.child("schedulingGates").index(i);
        for m in is_qualified_name(&g.name) {
            errs.push(FieldError::invalid(&p, g.name.as_str(), &m));
        }
        if !gates.insert(g.name.as_str()) {
            errs.push(FieldError::duplicate(&p, g.name.as_str()));
        }
    }
    for (i, c) in spec
        .topology_spread_constraints
        .iter()
        .flatten()
        .enumerate()
    {
        let p = path.child("topologySpreadConstraints").index(i);
        if c.max_skew <= 0 {
            errs.push(FieldError::invalid(
                &p.child("maxSkew"),
                c.max_skew,
                "must be greater than zero",
            ));
        }
        if c.topology_key.is_empty() {
            errs.push(FieldError::required(
                &p.child("topologyKey"),
                "can not be empty",
            ));
        } else {
            for m in is_qualified_name(&c.topology_key) {
                errs.push(FieldError::invalid(
                    &p.child("topologyKey"),
                    c.topology_key.as_str(),
                    &m,
                ));
            }
        }
        if !matches!(
            c.when_unsatisfiable.as_str(),
            "DoNotSchedule" | "ScheduleAnyway"
        ) {
            errs.push(FieldError::not_supported(
                &p.child("whenUnsatisfiable"),
                c.when_unsatisfiable.as_str(),
                &["DoNotSchedule", "ScheduleAnyway"],
            ));
        }
        errs.extend(validate_label_selector(
            c.label_selector.as_ref(),
            &p.child("labelSelector"),
        ));
    }
    for (field, v) in [
        ("serviceAccountName", spec.service_account_name.as_deref()),
        ("nodeName", spec.node_name.as_deref()),
        ("priorityClassName", spec.priority_class_name.as_deref()),
        ("runtimeClassName", spec.runtime_class_name.as_deref()),
    ] {
        let Some(v) = v.filter(|v| !v.is_empty()) else {
            continue;
        };
        for m in name_is_dns_subdomain(v, false) {
            errs.push(FieldError::invalid(&path.child(field), v, &m));
        }
    }
    if let Some(v) = spec
        .active_deadline_seconds
        .filter(|v| !(1..=MAX_INT32).contains(v))
    {
        errs.push(FieldError::invalid(
            &path.child("activeDeadlineSeconds"),
            v,
            &inclusive_range_error(1, MAX_INT32),
        ));
    }
    for (field, v) in [
        ("hostname", spec.hostname.as_deref()),
        ("subdomain", spec.subdomain.as_deref()),
    ] {
        let Some(v) = v.filter(|v| !v.is_empty()) else {
            continue;
        };
        for m in is_dns1123_label(v) {
            errs.push(FieldError::invalid(&path.child(field), v, &m));
        }
    }
    errs.extend(validate_tolerations(
        spec.tolerations.as_deref().unwrap_or_default(),
        &path.child("tolerations"),
    ));
    for (i, a) in spec.host_aliases.iter().flatten().enumerate() {
        let p = path.child("hostAliases").index(i);
        if a.ip.parse::<std::net::IpAddr>().is_err() {
            errs.push(FieldError::invalid(
                &p.child("ip"),
                a.ip.as_str(),
                "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
            ));
        }
        for (j, h) in a.hostnames.iter().flatten().enumerate() {
            for m in is_dns1123_subdomain(h) {
                errs.push(FieldError::invalid(
                    &p.child("hostnames").index(j),
                    h.as_str(),
                    &m,
                ));
            }
        }
    }
    if let Some(p) = spec.preemption_policy.as_deref() {
        enum_field(
            Some(p),
            &["PreemptLowerPriority", "Never"],
            &path.child("preemptionPolicy"),
            &mut errs,
        );
    }
    if let Some(o) = spec
        .os
        .as_ref()
        .filter(|o| !matches!(o.name.as_str(), "linux" | "windows"))
    {
        errs.push(FieldError::not_supported(
            &path.child("os").child("name"),
            o.name.as_str(),
            &["linux", "windows"],
        ));
    }
    errs
}

fn validate_ephemeral_containers(
    spec: &PodSpec,
    vols: &BTreeMap<String, &Volume>,
    path: &FieldPath,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut all: BTreeSet<String> = spec.containers.iter().map(|c| c.name.clone()).collect();
    all.extend(
        spec.init_containers
            .iter()
            .flatten()
            .map(|c| c.name.clone()),
    );
    let others = all.clone();
    for (i, ec) in spec.ephemeral_containers.iter().flatten().enumerate() {
        let p = path.index(i);
        // The shared fields have the same JSON shape, so one check serves both types.
        let c: Container = match serde_json::to_value(ec).and_then(serde_json::from_value) {
            Ok(c) => c,
            Err(_) => continue,
        };
        errs.extend(validate_container_common(
            &c,
            vols,
            &p,
            spec.restart_policy.as_deref(),
        ));
        if !all.insert(ec.name.clone()) {
            errs.push(FieldError::duplicate(&p.child("name"), ec.name.as_str()));
        }
        if let Some(t) = ec
            .target_container_name
            .as_deref()
            .filter(|t| !t.is_empty() && !others.contains(*t))
        {
            errs.push(FieldError::not_found(&p.child("targetContainerName"), t));
        }
        let forbidden = [
            ("ports", ec.ports.is_some()),
            ("resources", ec.resources.is_some()),
            ("livenessProbe", ec.liveness_probe.is_some()),
            ("readinessProbe", ec.readiness_probe.is_some()),
            ("startupProbe", ec.startup_probe.is_some()),
            ("lifecycle", ec.lifecycle.is_some()),
        ];
        for (f, set) in forbidden {
            if set {
                errs.push(FieldError::forbidden(
                    &p.child(f),
                    "cannot be set for an Ephemeral Container",
                ));
            }
        }
    }
    errs
}

/// Tolerations: key format, operator and value agreement, effects.
pub(crate) fn validate_tolerations(tolerations: &[Toleration], path: &FieldPath) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, t) in tolerations.iter().enumerate() {
        let p = path.index(i);
        let key = t.key.as_deref().unwrap_or_default();
        let op = t.operator.as_deref().unwrap_or_default();
        let value = t.value.as_deref().unwrap_or_default();
        let effect = t.effect.as_deref().unwrap_or_default();
        if !key.is_empty() {
            for m in is_qualified_name(key) {
                errs.push(FieldError::invalid(&p.child("key"), key, &m));
            }
        }
        if key.is_empty() && op != "Exists" {
            errs.push(FieldError::invalid(
                &p.child("operator"),
                op,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        if t.toleration_seconds.is_some() && effect != "NoExecute" {
            errs.push(FieldError::invalid(
                &p.child("effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        match op {
            "Equal" | "" => {
                let msgs = is_valid_label_value(value);
                if !msgs.is_empty() {
                    errs.push(FieldError::invalid(
                        &p.child("operator"),
                        value,
                        &msgs.join(";"),
                    ));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    errs.push(FieldError::invalid(
                        &p.child("operator"),
                        value,
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(
                &p.child("operator"),
                other,
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() {
            errs.extend(validate_taint_effect(effect, &p.child("effect")));
        }
    }
    errs
}

/// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
pub(crate) fn validate_taint_effect(effect: &str, path: &FieldPath) -> ErrorList {
    if matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
        return ErrorList::new();
    }
    vec![FieldError::not_supported(
        path,
        effect,
        &["NoSchedule", "PreferNoSchedule", "NoExecute"],
    )]
}

/// `ValidatePodTemplateSpec`: template labels and annotations (reported on the template's
/// `labels`/`annotations`, as upstream does), the spec, and no ephemeral containers.
pub(crate) fn validate_pod_template_spec(t: &PodTemplateSpec, path: &FieldPath) -> ErrorList {
    let mut errs = ErrorList::new();
    let meta = t.metadata.clone().unwrap_or_default();
    errs.extend(validate_labels(meta.labels.as_ref(), &path.child("labels")));
    errs.extend(validate_annotations(
        meta.annotations.as_ref(),
        &path.child("annotations"),
    ));
    let spec = t.spec.clone().unwrap_or_default();
    errs.extend(validate_pod_spec(&spec, &path.child("spec"), false));
    if spec
        .ephemeral_containers
        .as_ref()
        .is_some_and(|e| !e.is_empty())
    {
        errs.push(FieldError::forbidden(
            &path.child("spec").child("ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
    errs
}

/// Pod-only checks on top of the spec: service account tokens need a service account, images
/// may not carry surrounding whitespace.
pub(crate) fn validate_pod_only(pod: &Pod) -> ErrorList {
    let mut errs = ErrorList::new();
    let spec_path = FieldPath::new("spec");
    let spec = pod.spec.clone().unwrap_or_default();
    errs.extend(validate_pod_spec(&spec, &spec_path, true));
    if spec
        .service_account_name
        .as_deref()
        .unwrap_or_default()
        .is_empty()
    {
        for (vi, v) in spec.volumes.iter().flatten().enumerate() {
            for (si, s) in v
                .projected
                .iter()
                .flat_map(|p| p.sources.iter().flatten())
                .enumerate()
            {
                if s.service_account_token.is_some() {
                    errs.push(FieldError::forbidden(
                        &spec_path
                            .child("volumes")
                            .index(vi)
                            .child("projected")
                            .child("sources")
                            .index(si)
                            .child("serviceAccountToken"),
                        "must not be specified when serviceAccountName is not set",
                    ));
                }
            }
        }
    }
    for (field, list) in [
        ("containers", &spec.containers),
        (
            "initContainers",
            spec.init_containers.as_ref().unwrap_or(&Vec::new()),
        ),
    ] {
        for (i, c) in list.iter().enumerate() {
            let image = c.image.as_deref().unwrap_or_default();
            if image.trim() != image {
                errs.push(FieldError::invalid(
                    &spec_path.child(field).index(i).child("image"),
                    image,
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }
    errs
}

const UPDATABLE_POD_SPEC_FIELDS: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// `ValidatePodUpdate`'s spec rules (metadata is checked by the caller).
pub(crate) fn validate_pod_spec_update(new: &PodSpec, old: &PodSpec) -> ErrorList {
    let mut errs = ErrorList::new();
    let sp = FieldPath::new("spec");
    let empty = Vec::new();
    for (field, n, o) in [
        ("containers", &new.containers, &old.containers),
        (
            "initContainers",
            new.init_containers.as_ref().unwrap_or(&empty),
            old.init_containers.as_ref().unwrap_or(&empty),
        ),
    ] {
        let p = sp.child(field);
        if n.len() != o.len() {
            errs.push(FieldError::forbidden(
                &p,
                "pod updates may not add or remove containers",
            ));
            return errs;
        }
        for (i, c) in n.iter().enumerate() {
            let image = c.image.as_deref().unwrap_or_default();
            if image.is_empty() {
                errs.push(FieldError::required(&p.index(i).child("image"), ""));
            }
            if image.trim() != image {
                errs.push(FieldError::invalid(
                    &p.index(i).child("image"),
                    image,
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }
    let adp = sp.child("activeDeadlineSeconds");
    match (new.active_deadline_seconds, old.active_deadline_seconds) {
        (Some(n), _) if !(0..=MAX_INT32).contains(&n) => {
            errs.push(FieldError::invalid(
                &adp,
                n,
                &inclusive_range_error(0, MAX_INT32),
            ));
            return errs;
        }
        (Some(n), Some(o)) if o < n => {
            errs.push(FieldError::invalid(
                &adp,
                n,
                "must be less than or equal to previous value",
            ));
            return errs;
        }
        (None, Some(_)) => errs.push(FieldError::invalid(
            &adp,
            Value::Null,
            "must not update from a positive integer to nil value",
        )),
        _ => {}
    }
    let new_tol = new.tolerations.as_deref().unwrap_or_default();
    for old_t in old.tolerations.iter().flatten() {
        let found = new_tol.iter().any(|t| {
            let mut o = old_t.clone();
            o.toleration_seconds = t.toleration_seconds;
            o == *t
        });
        if !found {
            errs.push(FieldError::forbidden(
                &sp.child("tolerations"),
                "existing toleration can not be modified except its tolerationSeconds",
            ));
            break;
        }
    }
    errs.extend(validate_tolerations(new_tol, &sp.child("tolerations")));
    let old_gates: BTreeSet<&str> = old
        .scheduling_gates
        .iter()
        .flatten()
        .map(|g| g.name.as_str())
        .collect();
    for (i, g) in new.scheduling_gates.iter().flatten().enumerate() {
        if !old_gates.contains(g.name.as_str()) {
            errs.push(FieldError::forbidden(
                &sp.child("schedulingGates").index(i).child("name"),
                &format!(
                    "only deletion is allowed, but found new scheduling gate '{}'",
                    g.name
                ),
            ));
        }
    }
    let mut munged = new.clone();
    for (c, o) in munged.containers.iter_mut().zip(&old.containers) {
        c.image.clone_from(&o.image);
    }
    if let (Some(n), Some(o)) = (
        munged.init_containers.as_mut(),
        old.init_containers.as_ref(),
    ) {
        for (c, oc) in n.iter_mut().zip(o) {
            c.image.clone_from(&oc.image);
        }
    }
    munged.active_deadline_seconds = old.active_deadline_seconds;
    munged.scheduling_gates.clone_from(&old.scheduling_gates);
    munged.tolerations.clone_from(&old.tolerations);
    if old.termination_grace_period_seconds.is_some_and(|g| g < 0)
        && munged.termination_grace_period_seconds == Some(1)
    {
        munged.termination_grace_period_seconds = old.termination_grace_period_seconds;
    }
    if !old.scheduling_gates.as_ref().is_none_or(Vec::is_empty) {
        // A gated pod may still gain node selectors and node affinity before scheduling.
        munged.node_selector.clone_from(&old.node_selector);
        munged.affinity.clone_from(&old.affinity);
    }
    let (mj, oj) = (json(&munged), json(old));
    if mj != oj {
        errs.push(FieldError::forbidden(
            &sp,
            &format!(
                "pod updates may not change fields other than {UPDATABLE_POD_SPEC_FIELDS}\n{}",
                spec_diff(&oj, &mj)
            ),
        ));
    }
    errs
}

/// A short account of which spec fields differ, standing in for upstream's `cmp.Diff`.
fn spec_diff(old: &Value, new: &Value) -> String {
    let empty = serde_json::Map::new();
    let (o, n) = (
        old.as_object().unwrap_or(&empty),
        new.as_object().unwrap_or(&empty),
    );
    let keys: BTreeSet<&String> = o.keys().chain(n.keys()).collect();
    let mut out = String::from("  core.PodSpec{\n");
    for k in keys {
        let (a, b) = (o.get(k), n.get(k));
        if a != b {
            if let Some(a) = a {
                out.push_str(&format!("- \t{k}: {a},\n"));
            }
            if let Some(b) = b {
                out.push_str(&format!("+ \t{k}: {b},\n"));
            }
        }
    }
    out.push_str("  }\n");
    out
}

#[cfg(test)]
mod tests {
    use super::super::test_support::Case;
    use super::*;
    use crate::field_error::FieldErrorType;
    use serde_json::json as j;

    fn spec(v: Value) -> PodSpec {
        serde_json::from_value(v).expect("test spec")
    }

    fn kinds(errs: &ErrorList) -> Vec<(String, FieldErrorType)> {
        errs.iter().map(|e| (e.field.to_string(), e.kind)).collect()
    }

    #[test]
    fn pod_spec_rules() {
        use FieldErrorType::*;
        let c = j!([{"name": "web", "image": "nginx"}]);
        let cases: Vec<Case> = vec![
            (
                "valid",
                j!({"containers": c, "restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
                "volumes": [{"name": "a", "emptyDir": {}}, {"name": "b", "configMap": {"name": "cm"}}]}),
                vec![],
            ),
            (
                "no containers",
                j!({"containers": []}),
                vec![("spec.containers", Required)],
            ),
            (
                "bad restartPolicy",
                j!({"containers": c, "restartPolicy": "Sometimes"}),
                vec![("spec.restartPolicy", NotSupported)],
            ),
            (
                "bad dnsPolicy",
                j!({"containers": c, "dnsPolicy": "Google"}),
                vec![("spec.dnsPolicy", NotSupported)],
            ),
            (
                "volume without source",
                j!({"containers": c, "volumes": [{"name": "a"}]}),
                vec![("spec.volumes[0]", Required)],
            ),
            (
                "volume two sources",
                j!({"containers": c, "volumes": [{"name": "a", "emptyDir": {}, "hostPath": {"path": "/x"}}]}),
                vec![("spec.volumes[0].emptyDir", Forbidden)],
            ),
            (
                "duplicate volume",
                j!({"containers": c, "volumes": [{"name": "a", "emptyDir": {}}, {"name": "a", "emptyDir": {}}]}),
                vec![("spec.volumes[1].name", Duplicate)],
            ),
            (
                "bad volume name",
                j!({"containers": c, "volumes": [{"name": "A", "emptyDir": {}}]}),
                vec![("spec.volumes[0].name", Invalid)],
            ),
            (
                "secret without name",
                j!({"containers": c, "volumes": [{"name": "a", "secret": {}}]}),
                vec![("spec.volumes[0].secret.secretName", Required)],
            ),
            (
                "pvc without claim",
                j!({"containers": c, "volumes": [{"name": "a", "persistentVolumeClaim": {"claimName": ""}}]}),
                vec![("spec.volumes[0].persistentVolumeClaim.claimName", Required)],
            ),
            (
                "bad default mode",
                j!({"containers": c, "volumes": [{"name": "a", "configMap": {"name": "x", "defaultMode": 1000}}]}),
                vec![("spec.volumes[0].configMap.defaultMode", Invalid)],
            ),
            (
                "bad toleration",
                j!({"containers": c, "tolerations": [{"operator": "Equal", "value": "x"}]}),
                vec![("spec.tolerations[0].operator", Invalid)],
            ),
            (
                "toleration seconds without NoExecute",
                j!({"containers": c, "tolerations": [{"key": "a", "operator": "Exists", "tolerationSeconds": 5}]}),
                vec![("spec.tolerations[0].effect", Invalid)],
            ),
            (
                "bad taint effect",
                j!({"containers": c, "tolerations": [{"key": "a", "operator": "Exists", "effect": "Never"}]}),
                vec![("spec.tolerations[0].effect", NotSupported)],
            ),
            (
                "bad node selector",
                j!({"containers": c, "nodeSelector": {"a": "b c"}}),
                vec![("spec.nodeSelector", Invalid)],
            ),
            (
                "bad hostname",
                j!({"containers": c, "hostname": "A.b"}),
                vec![("spec.hostname", Invalid)],
            ),
            (
                "bad active deadline",
                j!({"containers": c, "activeDeadlineSeconds": 0}),
                vec![("spec.activeDeadlineSeconds", Invalid)],
            ),
            (
                "bad service account",
                j!({"containers": c, "serviceAccountName": "A"}),
                vec![("spec.serviceAccountName", Invalid)],
            ),
            (
                "dns none without config",
                j!({"containers": c, "dnsPolicy": "None"}),
                vec![("spec.dnsConfig", Required)],
            ),
        ];
        for (name, s, want) in cases {
            let got = validate_pod_spec(&spec(s), &FieldPath::new("spec"), true);
            let want: Vec<(String, FieldErrorType)> =
                want.into_iter().map(|(p, t)| (p.to_string(), t)).collect();
            assert_eq!(kinds(&got), want, "{name}");
        }
    }

    #[test]
    fn pod_update_rules() {
        use FieldErrorType::*;
        let old = j!({"containers": [{"name": "web", "image": "nginx:1", "ports": [{"containerPort": 80}]}],
            "tolerations": [{"key": "a", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}],
            "activeDeadlineSeconds": 100});
        let cases: Vec<Case> = vec![
            (
                "image change allowed",
                j!({"containers": [{"name": "web", "image": "nginx:2", "ports": [{"containerPort": 80}]}],
                "tolerations": [{"key": "a", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}], "activeDeadlineSeconds": 100}),
                vec![],
            ),
            (
                "toleration added and seconds changed",
                j!({"containers": [{"name": "web", "image": "nginx:1", "ports": [{"containerPort": 80}]}],
                "tolerations": [{"key": "a", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 9}, {"key": "b", "operator": "Exists"}], "activeDeadlineSeconds": 50}),
                vec![],
            ),
            (
                "port change forbidden",
                j!({"containers": [{"name": "web", "image": "nginx:1", "ports": [{"containerPort": 81}]}],
                "tolerations": [{"key": "a", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}], "activeDeadlineSeconds": 100}),
                vec![("spec", Forbidden)],
            ),
            (
                "container added",
                j!({"containers": [{"name": "web", "image": "nginx:1"}, {"name": "b", "image": "x"}]}),
                vec![("spec.containers", Forbidden)],
            ),
            (
                "deadline raised",
                j!({"containers": [{"name": "web", "image": "nginx:1", "ports": [{"containerPort": 80}]}],
                "tolerations": [{"key": "a", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}], "activeDeadlineSeconds": 200}),
                vec![("spec.activeDeadlineSeconds", Invalid)],
            ),
            (
                "toleration removed",
                j!({"containers": [{"name": "web", "image": "nginx:1", "ports": [{"containerPort": 80}]}], "activeDeadlineSeconds": 100}),
                vec![("spec.tolerations", Forbidden)],
            ),
        ];
        for (name, n, want) in cases {
            let got = validate_pod_spec_update(&spec(n), &spec(old.clone()));
            let want: Vec<(String, FieldErrorType)> =
                want.into_iter().map(|(p, t)| (p.to_string(), t)).collect();
            assert_eq!(kinds(&got), want, "{name}");
        }
        let got = validate_pod_spec_update(
            &spec(
                j!({"containers": [{"name": "web", "image": "nginx:1", "env": [{"name": "A"}]}]}),
            ),
            &spec(j!({"containers": [{"name": "web", "image": "nginx:1"}]})),
        );
        assert!(got[0].to_string().starts_with("spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n"));
    }

    #[test]
    fn template_labels_report_on_template_path() {
        let t: PodTemplateSpec = serde_json::from_value(j!({"metadata": {"labels": {"a": "b c"}},
            "spec": {"containers": [{"name": "web", "image": "x"}], "ephemeralContainers": [{"name": "dbg", "image": "x"}]}})).expect("t");
        let got = validate_pod_template_spec(&t, &FieldPath::new("spec").child("template"));
        assert_eq!(
            kinds(&got),
            vec![
                ("spec.template.labels".to_string(), FieldErrorType::Invalid),
                (
                    "spec.template.spec.ephemeralContainers".to_string(),
                    FieldErrorType::Forbidden
                ),
            ]
        );
    }

    #[test]
    fn pod_only_checks() {
        let pod: Pod = serde_json::from_value(j!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "web", "image": " nginx"}]}})).expect("pod");
        let got = validate_pod_only(&pod);
        assert_eq!(
            kinds(&got),
            vec![(
                "spec.containers[0].image".to_string(),
                FieldErrorType::Invalid
            )]
        );
    }
}
