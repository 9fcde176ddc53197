//! `apps/v1` kinds: deployments, replica sets, stateful sets, daemon sets and controller
//! revisions. Selectors are required, non-empty, must match the template labels and are
//! immutable; templates must restart `Always`.

use k8s_openapi::api::apps::v1::{
    ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet,
};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::meta::{
    immutable, json, non_negative, selector_is_empty, selector_matches, validate_label_selector,
};
use super::names::{is_valid_percent, name_is_dns_subdomain};
use super::pod::validate_pod_template_spec;
use super::{no_update, Cx, MetaRule, Rules};
use crate::field_error::{ErrorList, FieldError, FieldPath};

const SELECTOR_MISMATCH: &str = "`selector` does not match template `labels`";

/// `ValidatePositiveIntOrPercent`.
pub(crate) fn positive_int_or_percent(v: &IntOrString, path: &FieldPath, errs: &mut ErrorList) {
    match v {
        IntOrString::String(s) => {
            for m in is_valid_percent(s) {
                errs.push(FieldError::invalid(path, s.as_str(), &m));
            }
        }
        IntOrString::Int(i) => non_negative(Some((*i).into()), path, errs),
    }
}

fn percent_value(v: &IntOrString) -> Option<i64> {
    match v {
        IntOrString::String(s) => s.strip_suffix('%').and_then(|d| d.parse().ok()),
        IntOrString::Int(_) => None,
    }
}

/// `IsNotMoreThan100Percent`.
pub(crate) fn not_more_than_100_percent(v: &IntOrString, path: &FieldPath, errs: &mut ErrorList) {
    if percent_value(v).is_some_and(|p| p > 100) {
        errs.push(FieldError::invalid(
            path,
            int_or_string_json(v),
            "must not be greater than 100%",
        ));
    }
}

pub(crate) fn int_or_string_json(v: &IntOrString) -> serde_json::Value {
    match v {
        IntOrString::Int(i) => (*i).into(),
        IntOrString::String(s) => s.as_str().into(),
    }
}

fn int_or_percent_value(v: Option<&IntOrString>) -> i64 {
    match v {
        None => 0,
        Some(IntOrString::Int(i)) => (*i).into(),
        Some(s) => percent_value(s).unwrap_or(0),
    }
}

/// The selector rules every workload shares: present (when the raw object says so), valid,
/// non-empty. `what` names the kind in upstream's empty-selector message.
fn selector_rules(
    sel: &LabelSelector,
    present: bool,
    what: &str,
    path: &FieldPath,
    errs: &mut ErrorList,
) {
    if !present {
        errs.push(FieldError::required(path, ""));
        return;
    }
    errs.extend(validate_label_selector(Some(sel), path));
    if selector_is_empty(sel) {
        errs.push(FieldError::invalid(
            path,
            json(sel),
            &format!("empty selector is invalid for {what}"),
        ));
    }
}

/// `ValidatePodTemplateSpecForReplicaSet`-style checks: labels match, the template is valid,
/// restart policy `Always`, no active deadline.
fn workload_template(
    t: &PodTemplateSpec,
    sel: Option<&LabelSelector>,
    kind: &str,
    path: &FieldPath,
    errs: &mut ErrorList,
) {
    let labels = t.metadata.as_ref().and_then(|m| m.labels.clone());
    if let Some(sel) = sel.filter(|s| !selector_is_empty(s)) {
        if selector_matches(sel, labels.as_ref()) == Some(false) {
            errs.push(FieldError::invalid(
                &path.child("metadata").child("labels"),
                json(&labels.unwrap_or_default()),
                SELECTOR_MISMATCH,
            ));
        }
    }
    errs.extend(validate_pod_template_spec(t, path));
    let spec = t.spec.clone().unwrap_or_default();
    if let Some(r) = spec.restart_policy.as_deref().filter(|r| *r != "Always") {
        errs.push(FieldError::not_supported(
            &path.child("spec").child("restartPolicy"),
            r,
            &["Always"],
        ));
    }
    if let Some(a) = spec.active_deadline_seconds {
        errs.push(FieldError::invalid(
            &path.child("spec").child("activeDeadlineSeconds"),
            a,
            &format!("activeDeadlineSeconds in {kind} is not Supported"),
        ));
    }
}

pub(crate) fn deployment_rules() -> Rules<Deployment> {
    Rules {
        meta: MetaRule::Standard(name_is_dns_subdomain),
        create: |d, cx| {
            let mut errs = ErrorList::new();
            let sp = FieldPath::new("spec");
            let spec = d.spec.clone().unwrap_or_default();
            non_negative(
                spec.replicas.map(i64::from),
                &sp.child("replicas"),
                &mut errs,
            );
            selector_rules(
                &spec.selector,
                cx.has(&["spec", "selector"]),
                "deployment",
                &sp.child("selector"),
                &mut errs,
            );
            if selector_matches(&spec.selector, None).is_none() {
                errs.push(FieldError::invalid(
                    &sp.child("selector"),
                    json(&spec.selector),
                    "invalid label selector",
                ));
            } else {
                workload_template(
                    &spec.template,
                    Some(&spec.selector),
                    "ReplicaSet",
                    &sp.child("template"),
                    &mut errs,
                );
            }
            if let Some(s) = &spec.strategy {
                let stp = sp.child("strategy");
                match s.type_.as_deref() {
                    Some("Recreate") => {
                        if s.rolling_update.is_some() {
                            errs.push(FieldError::forbidden(
                                &stp.child("rollingUpdate"),
                                "may not be specified when strategy `type` is 'Recreate'",
                            ));
                        }
                    }
                    Some("RollingUpdate") | None => {
                        if let Some(ru) = &s.rolling_update {
                            let rp = stp.child("rollingUpdate");
                            let default = IntOrString::String("25%".into());
                            let mu = ru.max_unavailable.as_ref().unwrap_or(&default);
                            let ms = ru.max_surge.as_ref().unwrap_or(&default);
                            positive_int_or_percent(mu, &rp.child("maxUnavailable"), &mut errs);
                            positive_int_or_percent(ms, &rp.child("maxSurge"), &mut errs);
                            if int_or_percent_value(Some(mu)) == 0
                                && int_or_percent_value(Some(ms)) == 0
                            {
                                errs.push(FieldError::invalid(
                                    &rp.child("maxUnavailable"),
                                    int_or_string_json(mu),
                                    "may not be 0 when `maxSurge` is 0",
                                ));
                            }
                            not_more_than_100_percent(mu, &rp.child("maxUnavailable"), &mut errs);
                        }
                    }
                    Some(other) => errs.push(FieldError::not_supported(
                        &stp.child("type"),
                        other,
                        &["Recreate", "RollingUpdate"],
                    )),
                }
            }
            non_negative(
                spec.min_ready_seconds.map(i64::from),
                &sp.child("minReadySeconds"),
                &mut errs,
            );
            non_negative(
                spec.revision_history_limit.map(i64::from),
                &sp.child("revisionHistoryLimit"),
                &mut errs,
            );
            if let Some(p) = spec.progress_deadline_seconds {
                non_negative(
                    Some(p.into()),
                    &sp.child("progressDeadlineSeconds"),
                    &mut errs,
                );
                if p <= spec.min_ready_seconds.unwrap_or(0) {
                    errs.push(FieldError::invalid(
                        &sp.child("progressDeadlineSeconds"),
                        p,
                        "must be greater than minReadySeconds",
                    ));
                }
            }
            errs
        },
        update: |n, o, _| {
            let mut errs = ErrorList::new();
            let sel = |d: &Deployment| d.spec.as_ref().map(|s| s.selector.clone());
            immutable(
                &sel(n),
                &sel(o),
                &FieldPath::new("spec").child("selector"),
                &mut errs,
            );
            errs
        },
        status: |n, _, _| {
            replica_status(n.status.as_ref().map(|s| {
                [
                    ("replicas", s.replicas),
                    ("updatedReplicas", s.updated_replicas),
                    ("readyReplicas", s.ready_replicas),
                    ("availableReplicas", s.available_replicas),
                    ("unavailableReplicas", s.unavailable_replicas),
                    ("collisionCount", s.collision_count),
                ]
            }))
        },
    }
}

fn replica_status<const N: usize>(fields: Option<[(&str, Option<i32>); N]>) -> ErrorList {
    let mut errs = ErrorList::new();
    let sp = FieldPath::new("status");
    for (f, v) in fields.into_iter().flatten() {
        non_negative(v.map(i64::from), &sp.child(f), &mut errs);
    }
    errs
}

pub(crate) fn replica_set_rules() -> Rules<ReplicaSet> {
    Rules {
        meta: MetaRule::Standard(name_is_dns_subdomain),
        create: |rs, cx| {
            let mut errs = ErrorList::new();
            let sp = FieldPath::new("spec");
            let spec = rs.spec.clone().unwrap_or_default();
            non_negative(
                spec.replicas.map(i64::from),
                &sp.child("replicas"),
                &mut errs,
            );
            non_negative(
                spec.min_ready_seconds.map(i64::from),
                &sp.child("minReadySeconds"),
                &mut errs,
            );
            // Upstream's message names deployments here too.
            selector_rules(
                &spec.selector,
                cx.has(&["spec", "selector"]),
                "deployment",
                &sp.child("selector"),
                &mut errs,
            );
            if selector_matches(&spec.selector, None).is_none() {
                errs.push(FieldError::invalid(
                    &sp.child("selector"),
                    json(&spec.selector),
                    "invalid label selector",
                ));
            } else {
                match &spec.template {
                    None => errs.push(FieldError::required(&sp.child("template"), "")),
                    Some(t) => workload_template(
                        t,
                        Some(&spec.selector),
                        "ReplicaSet",
                        &sp.child("template"),
                        &mut errs,
                    ),
                }
            }
            errs
        },
        update: |n, o, _| {
            let mut errs = ErrorList::new();
            let sel = |d: &ReplicaSet| d.spec.as_ref().map(|s| s.selector.clone());
            immutable(
                &sel(n),
                &sel(o),
                &FieldPath::new("spec").child("selector"),
                &mut errs,
            );
            errs
        },
        status: |n, _, _| {
            replica_status(n.status.as_ref().map(|s| {
                [
                    ("replicas", Some(s.replicas)),
                    ("fullyLabeledReplicas", s.fully_labeled_replicas),
                    ("readyReplicas", s.ready_replicas),
                    ("availableReplicas", s.available_replicas),
                ]
            }))
        },
    }
}

pub(crate) fn stateful_set_rules() -> Rules<StatefulSet> {
    Rules {
        meta: MetaRule::Standard(name_is_dns_subdomain),
        create: |ss, cx| validate_stateful_set_spec(ss, cx),
        update: |n, o, _| {
            let mut errs = ErrorList::new();
            let (mut ns, os) = (
                n.spec.clone().unwrap_or_default(),
                o.spec.clone().unwrap_or_default(),
            );
            // Only these may change; anything else is forbidden.
            ns.replicas = os.replicas;
            ns.template = os.template.clone();
            ns.update_strategy.clone_from(&os.update_strategy);
            ns.min_ready_seconds = os.min_ready_seconds;
            ns.persistent_volume_claim_retention_policy
                .clone_from(&os.persistent_volume_claim_retention_policy);
            ns.ordinals.clone_from(&os.ordinals);
            ns.revision_history_limit = os.revision_history_limit;
            if json(&ns) != json(&os) {
                errs.push(FieldError::forbidden(
                    &FieldPath::new("spec"),
                    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
                ));
            }
            errs
        },
        status: |n, _, _| {
            replica_status(n.status.as_ref().map(|s| {
                [
                    ("replicas", Some(s.replicas)),
                    ("readyReplicas", s.ready_replicas),
                    ("currentReplicas", s.current_replicas),
                    ("updatedReplicas", s.updated_replicas),
                    ("availableReplicas", s.available_replicas),
                ]
            }))
        },
    }
}

fn validate_stateful_set_spec(ss: &StatefulSet, cx: &Cx) -> ErrorList {
    let mut errs = ErrorList::new();
    let sp = FieldPath::new("spec");
    let spec = ss.spec.clone().unwrap_or_default();
    match spec.pod_management_policy.as_deref() {
        None | Some("OrderedReady" | "Parallel") => {}
        Some("") => errs.push(FieldError::required(&sp.child("podManagementPolicy"), "")),
        Some(p) => errs.push(FieldError::invalid(
            &sp.child("podManagementPolicy"),
            p,
            "must be 'OrderedReady' or 'Parallel'",
        )),
    }
    if let Some(us) = &spec.update_strategy {
        let up = sp.child("updateStrategy");
        match us.type_.as_deref() {
            None | Some("RollingUpdate") => {
                if let Some(ru) = &us.rolling_update {
                    let rp = up.child("rollingUpdate");
                    non_negative(
                        ru.partition.map(i64::from),
                        &rp.child("partition"),
                        &mut errs,
                    );
                    if let Some(mu) = &ru.max_unavailable {
                        positive_int_or_percent(mu, &rp.child("maxUnavailable"), &mut errs);
                        if int_or_percent_value(Some(mu)) == 0 {
                            errs.push(FieldError::invalid(
                                &rp.child("maxUnavailable"),
                                int_or_string_json(mu),
                                "must be greater than 0",
                            ));
                        }
                        not_more_than_100_percent(mu, &rp.child("maxUnavailable"), &mut errs);
                    }
                }
            }
            Some("OnDelete") => {
                if let Some(ru) = &us.rolling_update {
                    errs.push(FieldError::invalid(
                        &up.child("rollingUpdate"),
                        json(ru),
                        "only allowed for updateStrategy 'RollingUpdate'",
                    ));
                }
            }
            Some("") => errs.push(FieldError::required(&up, "")),
            Some(_) => errs.push(FieldError::invalid(
                &up,
                json(us),
                "must be 'RollingUpdate' or 'OnDelete'",
            )),
        }
    }
    if let Some(o) = &spec.ordinals {
        non_negative(
            o.start.map(i64::from),
            &sp.child("ordinals").child("start"),
            &mut errs,
        );
    }
    if let Some(p) = &spec.persistent_volume_claim_retention_policy {
        let pp = sp.child("persistentVolumeClaimRetentionPolicy");
        for (f, v) in [
            ("whenDeleted", p.when_deleted.as_deref()),
            ("whenScaled", p.when_scaled.as_deref()),
        ] {
            if let Some(v) = v.filter(|v| !matches!(*v, "Retain" | "Delete")) {
                errs.push(FieldError::not_supported(
                    &pp.child(f),
                    v,
                    &["Retain", "Delete"],
                ));
            }
        }
    }
    non_negative(
        spec.replicas.map(i64::from),
        &sp.child("replicas"),
        &mut errs,
    );
    non_negative(
        spec.min_ready_seconds.map(i64::from),
        &sp.child("minReadySeconds"),
        &mut errs,
    );
    selector_rules(
        &spec.selector,
        cx.has(&["spec", "selector"]),
        "statefulset",
        &sp.child("selector"),
        &mut errs,
    );
    if selector_matches(&spec.selector, None).is_none() {
        errs.push(FieldError::invalid(
            &sp.child("selector"),
            json(&spec.selector),
            "",
        ));
    } else {
        let tp = sp.child("template");
        let labels = spec
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone());
        if !selector_is_empty(&spec.selector)
            && selector_matches(&spec.selector, labels.as_ref()) == Some(false)
        {
            errs.push(FieldError::invalid(
                &tp.child("metadata").child("labels"),
                json(&labels.unwrap_or_default()),
                SELECTOR_MISMATCH,
            ));
        }
        errs.extend(validate_pod_template_spec(&spec.template, &tp));
    }
    let tspec = spec.template.spec.clone().unwrap_or_default();
    if let Some(r) = tspec.restart_policy.as_deref().filter(|r| *r != "Always") {
        errs.push(FieldError::not_supported(
            &sp.child("template").child("spec").child("restartPolicy"),
            r,
            &["Always"],
        ));
    }
    if tspec.active_deadline_seconds.is_some() {
        errs.push(FieldError::forbidden(
            &sp.child("template")
                .child("spec")
                .child("activeDeadlineSeconds"),
            "activeDeadlineSeconds in StatefulSet is not Supported",
        ));
    }
    if let Some(name) = spec.service_name.as_deref().filter(|n| !n.is_empty()) {
        for m in super::names::is_dns1123_label(name) {
            errs.push(FieldError::invalid(&sp.child("serviceName"), name, &m));
        }
    }
    errs
}

pub(crate) fn daemon_set_rules() -> Rules<DaemonSet> {
    Rules {
        meta: MetaRule::Standard(name_is_dns_subdomain),
        create: |ds, cx| {
            let mut errs = ErrorList::new();
            let sp = FieldPath::new("spec");
            let spec = ds.spec.clone().unwrap_or_default();
            let present = cx.has(&["spec", "selector"]);
            errs.extend(validate_label_selector(
                Some(&spec.selector),
                &sp.child("selector"),
            ));
            let labels = spec
                .template
                .metadata
                .as_ref()
                .and_then(|m| m.labels.clone());
            // A missing selector selects nothing, so it cannot match the template.
            let matches =
                present && selector_matches(&spec.selector, labels.as_ref()) != Some(false);
            if !matches && selector_matches(&spec.selector, None).is_some() {
                errs.push(FieldError::invalid(
                    &sp.child("template").child("metadata").child("labels"),
                    json(&labels.unwrap_or_default()),
                    SELECTOR_MISMATCH,
                ));
            }
            if present && selector_is_empty(&spec.selector) {
                errs.push(FieldError::invalid(
                    &sp.child("selector"),
                    json(&spec.selector),
                    "empty selector is invalid for daemonset",
                ));
            }
            errs.extend(validate_pod_template_spec(
                &spec.template,
                &sp.child("template"),
            ));
            let tspec = spec.template.spec.clone().unwrap_or_default();
            if let Some(r) = tspec.restart_policy.as_deref().filter(|r| *r != "Always") {
                errs.push(FieldError::not_supported(
                    &sp.child("template").child("spec").child("restartPolicy"),
                    r,
                    &["Always"],
                ));
            }
            if let Some(a) = tspec.active_deadline_seconds {
                errs.push(FieldError::invalid(
                    &sp.child("template")
                        .child("spec")
                        .child("activeDeadlineSeconds"),
                    a,
                    "activeDeadlineSeconds in DaemonSet is not Supported",
                ));
            }
            non_negative(
                spec.min_ready_seconds.map(i64::from),
                &sp.child("minReadySeconds"),
                &mut errs,
            );
            non_negative(
                spec.revision_history_limit.map(i64::from),
                &sp.child("revisionHistoryLimit"),
                &mut errs,
            );
            if let Some(us) = &spec.update_strategy {
                let up = sp.child("updateStrategy");
                match us.type_.as_deref() {
                    None | Some("OnDelete") => {}
                    Some("RollingUpdate") => {
                        if let Some(ru) = &us.rolling_update {
                            let rp = up.child("rollingUpdate");
                            let zero = IntOrString::Int(0);
                            let one = IntOrString::Int(1);
                            let mu = ru.max_unavailable.as_ref().unwrap_or(&one);
                            let ms = ru.max_surge.as_ref().unwrap_or(&zero);
                            positive_int_or_percent(mu, &rp.child("maxUnavailable"), &mut errs);
                            positive_int_or_percent(ms, &rp.child("maxSurge"), &mut errs);
                            if int_or_percent_value(Some(mu)) == 0
                                && int_or_percent_value(Some(ms)) == 0
                            {
                                errs.push(FieldError::invalid(
                                    &rp.child("maxUnavailable"),
                                    int_or_string_json(mu),
                                    "may not be 0 when `maxSurge` is 0",
                                ));
                            }
                            not_more_than_100_percent(mu, &rp.child("maxUnavailable"), &mut errs);
                            not_more_than_100_percent(ms, &rp.child("maxSurge"), &mut errs);
                        }
                    }
                    Some(other) => errs.push(FieldError::not_supported(
                        &up.child("type"),
                        other,
                        &["OnDelete", "RollingUpdate"],
                    )),
                }
            }
            errs
        },
        update: |n, o, _| {
            let mut errs = ErrorList::new();
            let sel = |d: &DaemonSet| d.spec.as_ref().map(|s| s.selector.clone());
            immutable(
                &sel(n),
                &sel(o),
                &FieldPath::new("spec").child("selector"),
                &mut errs,
            );
            errs
        },
        status: |n, _, _| {
            replica_status(n.status.as_ref().map(|s| {
                [
                    ("currentNumberScheduled", Some(s.current_number_scheduled)),
                    ("numberMisscheduled", Some(s.number_misscheduled)),
                    ("desiredNumberScheduled", Some(s.desired_number_scheduled)),
                    ("numberReady", Some(s.number_ready)),
                    ("updatedNumberScheduled", s.updated_number_scheduled),
                    ("numberAvailable", s.number_available),
                    ("numberUnavailable", s.number_unavailable),
                ]
            }))
        },
    }
}

pub(crate) fn controller_revision_rules() -> Rules<ControllerRevision> {
    Rules {
        meta: MetaRule::Standard(name_is_dns_subdomain),
        create: |cr, _| {
            let mut errs = ErrorList::new();
            non_negative(Some(cr.revision), &FieldPath::new("revision"), &mut errs);
            errs
        },
        update: |n, o, _| {
            let mut errs = ErrorList::new();
            if json(&n.data) != json(&o.data) {
                errs.push(FieldError::invalid(
                    &FieldPath::new("data"),
                    "",
                    super::meta::FIELD_IMMUTABLE,
                ));
            }
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

    fn obj(kind: &str, spec: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": "web", "namespace": "d", "resourceVersion": "1"}, "spec": spec})
    }

    fn tmpl(labels: Value) -> Value {
        json!({"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
    }

    #[test]
    fn deployment_rules() {
        let sel = json!({"matchLabels": {"app": "web"}});
        let cases: Vec<Case> = vec![
            (
                "valid",
                json!({"replicas": 2, "selector": sel, "template": tmpl(json!({"app": "web"}))}),
                vec![],
            ),
            (
                "selector missing",
                json!({"template": tmpl(json!({"app": "web"}))}),
                vec![("spec.selector", Required)],
            ),
            (
                "selector empty",
                json!({"selector": {}, "template": tmpl(json!({"app": "web"}))}),
                vec![("spec.selector", Invalid)],
            ),
            (
                "mismatch",
                json!({"selector": sel, "template": tmpl(json!({"app": "db"}))}),
                vec![("spec.template.metadata.labels", Invalid)],
            ),
            (
                "negative replicas",
                json!({"replicas": -1, "selector": sel, "template": tmpl(json!({"app": "web"}))}),
                vec![("spec.replicas", Invalid)],
            ),
            (
                "restart never",
                json!({"selector": sel, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "x"}]}}}),
                vec![("spec.template.spec.restartPolicy", NotSupported)],
            ),
            (
                "no containers",
                json!({"selector": sel, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}}}),
                vec![("spec.template.spec.containers", Required)],
            ),
            (
                "bad strategy",
                json!({"selector": sel, "template": tmpl(json!({"app": "web"})), "strategy": {"type": "Blue"}}),
                vec![("spec.strategy.type", NotSupported)],
            ),
            (
                "both zero",
                json!({"selector": sel, "template": tmpl(json!({"app": "web"})), "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}}),
                vec![("spec.strategy.rollingUpdate.maxUnavailable", Invalid)],
            ),
            (
                "bad percent",
                json!({"selector": sel, "template": tmpl(json!({"app": "web"})), "strategy": {"rollingUpdate": {"maxSurge": "x", "maxUnavailable": "150%"}}}),
                vec![
                    ("spec.strategy.rollingUpdate.maxSurge", Invalid),
                    ("spec.strategy.rollingUpdate.maxUnavailable", Invalid),
                ],
            ),
            (
                "recreate with rolling",
                json!({"selector": sel, "template": tmpl(json!({"app": "web"})), "strategy": {"type": "Recreate", "rollingUpdate": {}}}),
                vec![("spec.strategy.rollingUpdate", Forbidden)],
            ),
            (
                "progress deadline",
                json!({"selector": sel, "template": tmpl(json!({"app": "web"})), "minReadySeconds": 10, "progressDeadlineSeconds": 5}),
                vec![("spec.progressDeadlineSeconds", Invalid)],
            ),
        ];
        for (name, spec, w) in cases {
            assert_eq!(
                kinds(&validate_create(
                    "apps",
                    "Deployment",
                    &obj("Deployment", spec)
                )),
                want(w),
                "{name}"
            );
        }
        let errs = validate_create(
            "apps",
            "Deployment",
            &obj(
                "Deployment",
                json!({"selector": sel, "template": tmpl(json!({"app": "db"}))}),
            ),
        );
        assert_eq!(errs[0].to_string(), "spec.template.metadata.labels: Invalid value: {\"app\":\"db\"}: `selector` does not match template `labels`");
        let old = obj(
            "Deployment",
            json!({"selector": sel, "template": tmpl(json!({"app": "web", "v": "1"}))}),
        );
        let new = obj(
            "Deployment",
            json!({"selector": {"matchLabels": {"app": "web", "v": "1"}}, "template": tmpl(json!({"app": "web", "v": "1"}))}),
        );
        assert_eq!(
            kinds(&validate_update("apps", "Deployment", &new, &old)),
            want(vec![("spec.selector", Invalid)])
        );
    }

    #[test]
    fn replica_set_and_daemon_set_rules() {
        let sel = json!({"matchLabels": {"app": "web"}});
        assert_eq!(
            kinds(&validate_create(
                "apps",
                "ReplicaSet",
                &obj(
                    "ReplicaSet",
                    json!({"selector": sel, "template": tmpl(json!({"app": "web"}))})
                )
            )),
            want(vec![])
        );
        assert_eq!(
            kinds(&validate_create(
                "apps",
                "ReplicaSet",
                &obj(
                    "ReplicaSet",
                    json!({"selector": sel, "template": tmpl(json!({"app": "x"}))})
                )
            )),
            want(vec![("spec.template.metadata.labels", Invalid)])
        );
        assert_eq!(
            kinds(&validate_create(
                "apps",
                "DaemonSet",
                &obj(
                    "DaemonSet",
                    json!({"selector": sel, "template": tmpl(json!({"app": "web"}))})
                )
            )),
            want(vec![])
        );
        assert_eq!(
            kinds(&validate_create(
                "apps",
                "DaemonSet",
                &obj(
                    "DaemonSet",
                    json!({"template": tmpl(json!({"app": "web"}))})
                )
            )),
            want(vec![("spec.template.metadata.labels", Invalid)])
        );
        assert_eq!(
            kinds(&validate_create(
                "apps",
                "DaemonSet",
                &obj(
                    "DaemonSet",
                    json!({"selector": sel, "template": tmpl(json!({"app": "web"})), "updateStrategy": {"type": "Sometimes"}})
                )
            )),
            want(vec![("spec.updateStrategy.type", NotSupported)])
        );
    }

    #[test]
    fn stateful_set_rules() {
        let sel = json!({"matchLabels": {"app": "db"}});
        let ok =
            json!({"serviceName": "db", "selector": sel, "template": tmpl(json!({"app": "db"}))});
        assert_eq!(
            kinds(&validate_create(
                "apps",
                "StatefulSet",
                &obj("StatefulSet", ok.clone())
            )),
            want(vec![])
        );
        assert_eq!(
            kinds(&validate_create(
                "apps",
                "StatefulSet",
                &obj(
                    "StatefulSet",
                    json!({"selector": {}, "podManagementPolicy": "Random", "template": tmpl(json!({"app": "db"}))})
                )
            )),
            want(vec![
                ("spec.podManagementPolicy", Invalid),
                ("spec.selector", Invalid)
            ])
        );
        let changed = json!({"serviceName": "other", "selector": sel, "template": tmpl(json!({"app": "db"}))});
        assert_eq!(
            kinds(&validate_update(
                "apps",
                "StatefulSet",
                &obj("StatefulSet", changed),
                &obj("StatefulSet", ok.clone())
            )),
            want(vec![("spec", Forbidden)])
        );
        let scaled = json!({"serviceName": "db", "replicas": 5, "selector": sel, "template": tmpl(json!({"app": "db"}))});
        assert_eq!(
            kinds(&validate_update(
                "apps",
                "StatefulSet",
                &obj("StatefulSet", scaled),
                &obj("StatefulSet", ok)
            )),
            want(vec![])
        );
    }
}
