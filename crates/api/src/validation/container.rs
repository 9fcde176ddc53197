//! Containers: upstream's `validateContainerCommon` and what it calls — names, images,
//! ports, environment, volume mounts, resources, probes and lifecycle handlers.
//!
//! Fields that upstream's defaulting always fills (`imagePullPolicy`, `protocol`,
//! `terminationMessagePolicy`, probe thresholds) are checked when present; an absent one is
//! taken to be defaulted, and an explicit empty string is reported as upstream does.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvFromSource, EnvVar, HTTPGetAction, Lifecycle, LifecycleHandler,
    Probe, Volume,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::meta::non_negative;
use super::names::{
    is_config_map_key, is_dns1123_label, is_http_header_name, is_qualified_name,
    is_relaxed_env_var_name, is_valid_port_name, is_valid_port_num, name_is_dns_subdomain,
};
pub(crate) use super::resources::{
    non_negative_quantity, quantity, validate_resource_requirements,
};
use crate::field_error::{ErrorList, FieldError, FieldPath};

pub(crate) const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

/// Common checks for one container of any kind.
pub(crate) fn validate_container_common(
    c: &Container,
    volumes: &BTreeMap<String, &Volume>,
    path: &FieldPath,
    pod_restart_policy: Option<&str>,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let name_path = path.child("name");
    if c.name.is_empty() {
        errs.push(FieldError::required(&name_path, ""));
    } else {
        for m in is_dns1123_label(&c.name) {
            errs.push(FieldError::invalid(&name_path, c.name.as_str(), &m));
        }
    }
    if c.image.as_deref().unwrap_or_default().is_empty() {
        errs.push(FieldError::required(&path.child("image"), ""));
    }
    enum_field(
        c.termination_message_policy.as_deref(),
        &["File", "FallbackToLogsOnError"],
        &path.child("terminationMessagePolicy"),
        &mut errs,
    );
    errs.extend(validate_container_ports(
        c.ports.as_deref().unwrap_or_default(),
        &path.child("ports"),
    ));
    errs.extend(validate_env(
        c.env.as_deref().unwrap_or_default(),
        &path.child("env"),
    ));
    errs.extend(validate_env_from(
        c.env_from.as_deref().unwrap_or_default(),
        &path.child("envFrom"),
    ));
    validate_volume_mounts(c, volumes, &path.child("volumeMounts"), &mut errs);
    enum_field(
        c.image_pull_policy.as_deref(),
        &["Always", "IfNotPresent", "Never"],
        &path.child("imagePullPolicy"),
        &mut errs,
    );
    if let Some(r) = &c.resources {
        errs.extend(validate_resource_requirements(r, &path.child("resources")));
    }
    for p in c.resize_policy.iter().flatten() {
        let rp = path.child("resizePolicy");
        if !matches!(p.resource_name.as_str(), "cpu" | "memory") {
            errs.push(FieldError::not_supported(
                &rp,
                p.resource_name.as_str(),
                &["cpu", "memory"],
            ));
        }
        if !matches!(
            p.restart_policy.as_str(),
            "NotRequired" | "RestartContainer"
        ) {
            errs.push(FieldError::not_supported(
                &rp,
                p.restart_policy.as_str(),
                &["NotRequired", "RestartContainer"],
            ));
        }
        if pod_restart_policy == Some("Never") && p.restart_policy != "NotRequired" {
            errs.push(FieldError::invalid(
                &rp,
                p.restart_policy.as_str(),
                "must be 'NotRequired' when `restartPolicy` is 'Never'",
            ));
        }
    }
    errs
}

/// Checks an optional enum-valued field: absent means defaulted, empty is required.
pub(crate) fn enum_field(
    value: Option<&str>,
    supported: &[&str],
    path: &FieldPath,
    errs: &mut ErrorList,
) {
    match value {
        None => {}
        Some("") => errs.push(FieldError::required(path, "")),
        Some(v) if supported.contains(&v) => {}
        Some(v) => errs.push(FieldError::not_supported(path, v, supported)),
    }
}

/// Regular containers: at least one, unique names, probes and lifecycle allowed,
/// no per-container restart policy, no host port conflicts.
pub(crate) fn validate_containers(
    containers: &[Container],
    volumes: &BTreeMap<String, &Volume>,
    grace: Option<i64>,
    path: &FieldPath,
    pod_restart_policy: Option<&str>,
) -> ErrorList {
    let mut errs = ErrorList::new();
    if containers.is_empty() {
        errs.push(FieldError::required(path, ""));
        return errs;
    }
    let mut names = BTreeSet::new();
    for (i, c) in containers.iter().enumerate() {
        let p = path.index(i);
        errs.extend(validate_container_common(
            c,
            volumes,
            &p,
            pod_restart_policy,
        ));
        if !names.insert(c.name.as_str()) {
            errs.push(FieldError::duplicate(&p.child("name"), c.name.as_str()));
        }
        if let Some(l) = &c.lifecycle {
            errs.extend(validate_lifecycle(l, grace, &p.child("lifecycle")));
        }
        validate_probes(c, &p, &mut errs);
        if c.restart_policy.is_some() {
            errs.push(FieldError::forbidden(
                &p.child("restartPolicy"),
                "may not be set for non-init containers",
            ));
        }
    }
    errs.extend(check_host_port_conflicts(containers, path));
    errs
}

/// Init containers: names unique across regular and init containers; probes and lifecycle
/// only for sidecars (`restartPolicy: Always`).
pub(crate) fn validate_init_containers(
    inits: &[Container],
    regular: &[Container],
    volumes: &BTreeMap<String, &Volume>,
    grace: Option<i64>,
    path: &FieldPath,
    pod_restart_policy: Option<&str>,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut names: BTreeSet<&str> = regular.iter().map(|c| c.name.as_str()).collect();
    for (i, c) in inits.iter().enumerate() {
        let p = path.index(i);
        errs.extend(validate_container_common(
            c,
            volumes,
            &p,
            pod_restart_policy,
        ));
        let sidecar = c.restart_policy.as_deref() == Some("Always");
        if let Some(rp) = c.restart_policy.as_deref().filter(|r| *r != "Always") {
            errs.push(FieldError::not_supported(
                &p.child("restartPolicy"),
                rp,
                &["Always"],
            ));
        }
        if names.contains(c.name.as_str()) {
            errs.push(FieldError::duplicate(&p.child("name"), c.name.as_str()));
        } else if !c.name.is_empty() {
            names.insert(c.name.as_str());
        }
        errs.extend(check_host_port_conflicts(std::slice::from_ref(c), path));
        if sidecar {
            if let Some(l) = &c.lifecycle {
                errs.extend(validate_lifecycle(l, grace, &p.child("lifecycle")));
            }
            validate_probes(c, &p, &mut errs);
        } else {
            let msg = "may not be set for init containers without restartPolicy=Always";
            if c.lifecycle.is_some() {
                errs.push(FieldError::forbidden(&p.child("lifecycle"), msg));
            }
            for (set, field) in [
                (c.liveness_probe.is_some(), "livenessProbe"),
                (c.readiness_probe.is_some(), "readinessProbe"),
                (c.startup_probe.is_some(), "startupProbe"),
            ] {
                if set {
                    errs.push(FieldError::forbidden(&p.child(field), msg));
                }
            }
        }
    }
    errs
}

fn validate_probes(c: &Container, p: &FieldPath, errs: &mut ErrorList) {
    if let Some(pr) = &c.liveness_probe {
        let lp = p.child("livenessProbe");
        errs.extend(validate_probe(pr, &lp));
        success_threshold_one(pr, &lp, errs);
    }
    if let Some(pr) = &c.readiness_probe {
        let rp = p.child("readinessProbe");
        errs.extend(validate_probe(pr, &rp));
        if let Some(t) = pr.termination_grace_period_seconds {
            errs.push(FieldError::invalid(
                &rp.child("terminationGracePeriodSeconds"),
                t,
                "must not be set for readinessProbes",
            ));
        }
    }
    if let Some(pr) = &c.startup_probe {
        let sp = p.child("startupProbe");
        errs.extend(validate_probe(pr, &sp));
        success_threshold_one(pr, &sp, errs);
    }
}

fn success_threshold_one(p: &Probe, path: &FieldPath, errs: &mut ErrorList) {
    if let Some(t) = p.success_threshold.filter(|t| *t != 1) {
        errs.push(FieldError::invalid(
            &path.child("successThreshold"),
            t,
            "must be 1",
        ));
    }
}

fn validate_probe(p: &Probe, path: &FieldPath) -> ErrorList {
    let mut errs = ErrorList::new();
    let handlers = [
        ("exec", p.exec.is_some()),
        ("httpGet", p.http_get.is_some()),
        ("tcpSocket", p.tcp_socket.is_some()),
        ("grpc", p.grpc.is_some()),
    ];
    check_handler_count(&handlers, path, &mut errs);
    if let Some(e) = p
        .exec
        .as_ref()
        .filter(|_| first_handler(&handlers) == "exec")
    {
        if e.command.as_deref().unwrap_or_default().is_empty() {
            errs.push(FieldError::required(
                &path.child("exec").child("command"),
                "",
            ));
        }
    }
    if let Some(h) = p
        .http_get
        .as_ref()
        .filter(|_| first_handler(&handlers) == "httpGet")
    {
        errs.extend(validate_http_get(h, &path.child("httpGet")));
    }
    if let Some(t) = p
        .tcp_socket
        .as_ref()
        .filter(|_| first_handler(&handlers) == "tcpSocket")
    {
        errs.extend(validate_port_num_or_name(
            &t.port,
            &path.child("tcpSocket").child("port"),
        ));
    }
    if let Some(g) = p
        .grpc
        .as_ref()
        .filter(|_| first_handler(&handlers) == "grpc")
    {
        for m in is_valid_port_num(g.port.into()) {
            errs.push(FieldError::invalid(
                &path.child("grpc").child("port"),
                g.port,
                &m,
            ));
        }
    }
    for (v, f) in [
        (p.initial_delay_seconds, "initialDelaySeconds"),
        (p.timeout_seconds, "timeoutSeconds"),
        (p.period_seconds, "periodSeconds"),
        (p.success_threshold, "successThreshold"),
        (p.failure_threshold, "failureThreshold"),
    ] {
        non_negative(v.map(i64::from), &path.child(f), &mut errs);
    }
    if let Some(t) = p.termination_grace_period_seconds.filter(|t| *t <= 0) {
        errs.push(FieldError::invalid(
            &path.child("terminationGracePeriodSeconds"),
            t,
            "must be greater than 0",
        ));
    }
    errs
}

fn first_handler(handlers: &[(&'static str, bool)]) -> &'static str {
    handlers
        .iter()
        .find(|(_, set)| *set)
        .map(|(n, _)| *n)
        .unwrap_or("")
}

/// Exactly one handler: the second and later are forbidden, none is required.
fn check_handler_count(handlers: &[(&str, bool)], path: &FieldPath, errs: &mut ErrorList) {
    let mut n = 0;
    for (name, set) in handlers {
        if *set {
            if n > 0 {
                errs.push(FieldError::forbidden(
                    &path.child(name),
                    "may not specify more than 1 handler type",
                ));
            }
            n += 1;
        }
    }
    if n == 0 {
        errs.push(FieldError::required(path, "must specify a handler type"));
    }
}

fn validate_lifecycle(l: &Lifecycle, grace: Option<i64>, path: &FieldPath) -> ErrorList {
    let mut errs = ErrorList::new();
    if let Some(h) = &l.post_start {
        errs.extend(validate_lifecycle_handler(
            h,
            grace,
            &path.child("postStart"),
        ));
    }
    if let Some(h) = &l.pre_stop {
        errs.extend(validate_lifecycle_handler(h, grace, &path.child("preStop")));
    }
    errs
}

fn validate_lifecycle_handler(
    h: &LifecycleHandler,
    grace: Option<i64>,
    path: &FieldPath,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let handlers = [
        ("exec", h.exec.is_some()),
        ("httpGet", h.http_get.is_some()),
        ("tcpSocket", h.tcp_socket.is_some()),
        ("sleep", h.sleep.is_some()),
    ];
    check_handler_count(&handlers, path, &mut errs);
    match first_handler(&handlers) {
        "exec"
            if h.exec
                .as_ref()
                .and_then(|e| e.command.as_ref())
                .is_none_or(Vec::is_empty) =>
        {
            errs.push(FieldError::required(
                &path.child("exec").child("command"),
                "",
            ));
        }
        "httpGet" => {
            if let Some(g) = &h.http_get {
                errs.extend(validate_http_get(g, &path.child("httpGet")));
            }
        }
        "tcpSocket" => {
            if let Some(t) = &h.tcp_socket {
                errs.extend(validate_port_num_or_name(
                    &t.port,
                    &path.child("tcpSocket").child("port"),
                ));
            }
        }
        "sleep" => {
            if let (Some(s), Some(g)) = (&h.sleep, grace) {
                if s.seconds < 0 || s.seconds > g {
                    errs.push(FieldError::invalid(
                        &path.child("sleep"),
                        s.seconds,
                        &format!("must be non-negative and less than terminationGracePeriodSeconds ({g})"),
                    ));
                }
            }
        }
        _ => {}
    }
    errs
}

fn validate_http_get(h: &HTTPGetAction, path: &FieldPath) -> ErrorList {
    let mut errs = ErrorList::new();
    if h.path.as_deref() == Some("") {
        errs.push(FieldError::required(&path.child("path"), ""));
    }
    errs.extend(validate_port_num_or_name(&h.port, &path.child("port")));
    if let Some(s) = h
        .scheme
        .as_deref()
        .filter(|s| !matches!(*s, "HTTP" | "HTTPS"))
    {
        errs.push(FieldError::not_supported(
            &path.child("scheme"),
            s,
            &["HTTP", "HTTPS"],
        ));
    }
    for hd in h.http_headers.iter().flatten() {
        for m in is_http_header_name(&hd.name) {
            errs.push(FieldError::invalid(
                &path.child("httpHeaders"),
                hd.name.as_str(),
                &m,
            ));
        }
    }
    errs
}

/// A port given as a number (1–65535) or an IANA name.
pub(crate) fn validate_port_num_or_name(port: &IntOrString, path: &FieldPath) -> ErrorList {
    match port {
        IntOrString::Int(n) => is_valid_port_num((*n).into())
            .into_iter()
            .map(|m| FieldError::invalid(path, *n, &m))
            .collect(),
        IntOrString::String(s) => is_valid_port_name(s)
            .into_iter()
            .map(|m| FieldError::invalid(path, s.as_str(), &m))
            .collect(),
    }
}

fn validate_container_ports(ports: &[ContainerPort], path: &FieldPath) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut names = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let p = path.index(i);
        if let Some(name) = port.name.as_deref().filter(|n| !n.is_empty()) {
            let msgs = is_valid_port_name(name);
            if !msgs.is_empty() {
                for m in msgs {
                    errs.push(FieldError::invalid(&p.child("name"), name, &m));
                }
            } else if !names.insert(name) {
                errs.push(FieldError::duplicate(&p.child("name"), name));
            }
        }
        if port.container_port == 0 {
            errs.push(FieldError::required(&p.child("containerPort"), ""));
        } else {
            for m in is_valid_port_num(port.container_port.into()) {
                errs.push(FieldError::invalid(
                    &p.child("containerPort"),
                    port.container_port,
                    &m,
                ));
            }
        }
        if let Some(hp) = port.host_port.filter(|hp| *hp != 0) {
            for m in is_valid_port_num(hp.into()) {
                errs.push(FieldError::invalid(&p.child("hostPort"), hp, &m));
            }
        }
        enum_field(
            port.protocol.as_deref(),
            PROTOCOLS,
            &p.child("protocol"),
            &mut errs,
        );
    }
    errs
}

fn check_host_port_conflicts(containers: &[Container], path: &FieldPath) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut seen = BTreeSet::new();
    for (ci, c) in containers.iter().enumerate() {
        for (pi, port) in c.ports.iter().flatten().enumerate() {
            let Some(hp) = port.host_port.filter(|h| *h != 0) else {
                continue;
            };
            let key = format!(
                "{}/{}/{hp}",
                port.protocol.as_deref().unwrap_or("TCP"),
                port.host_ip.as_deref().unwrap_or_default()
            );
            if !seen.insert(key.clone()) {
                errs.push(FieldError::duplicate(
                    &path.index(ci).child("ports").index(pi).child("hostPort"),
                    key,
                ));
            }
        }
    }
    errs
}

const ENV_FIELD_PATHS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];
const RESOURCE_FIELD_PATHS: &[&str] = &[
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
];

fn validate_env(vars: &[EnvVar], path: &FieldPath) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, ev) in vars.iter().enumerate() {
        let p = path.index(i);
        if ev.name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        } else {
            for m in is_relaxed_env_var_name(&ev.name) {
                errs.push(FieldError::invalid(&p.child("name"), ev.name.as_str(), &m));
            }
        }
        let Some(from) = &ev.value_from else { continue };
        let vp = p.child("valueFrom");
        let mut n = 0;
        if let Some(f) = &from.field_ref {
            n += 1;
            let fp = vp.child("fieldRef");
            if f.api_version.as_deref() == Some("") {
                errs.push(FieldError::required(&fp.child("apiVersion"), ""));
            } else if f.field_path.is_empty() {
                errs.push(FieldError::required(&fp.child("fieldPath"), ""));
            } else if let Some((base, sub)) = subscripted(&f.field_path) {
                match base {
                    "metadata.annotations" => {
                        for m in is_qualified_name(&sub.to_lowercase()) {
                            errs.push(FieldError::invalid(&fp, sub, &m));
                        }
                    }
                    "metadata.labels" => {
                        for m in is_qualified_name(sub) {
                            errs.push(FieldError::invalid(&fp, sub, &m));
                        }
                    }
                    _ => errs.push(FieldError::invalid(&fp, base, "does not support subscript")),
                }
            } else if !ENV_FIELD_PATHS.contains(&f.field_path.as_str())
                && !matches!(
                    f.field_path.as_str(),
                    "metadata.labels" | "metadata.annotations"
                )
            {
                errs.push(FieldError::not_supported(
                    &fp.child("fieldPath"),
                    f.field_path.as_str(),
                    ENV_FIELD_PATHS,
                ));
            }
        }
        if let Some(r) = &from.resource_field_ref {
            n += 1;
            let rp = vp.child("resourceFieldRef");
            if r.resource.is_empty() {
                errs.push(FieldError::required(&rp.child("resource"), ""));
            } else if !RESOURCE_FIELD_PATHS.contains(&r.resource.as_str())
                && !r.resource.starts_with("requests.hugepages-")
                && !r.resource.starts_with("limits.hugepages-")
            {
                errs.push(FieldError::not_supported(
                    &rp.child("resource"),
                    r.resource.as_str(),
                    RESOURCE_FIELD_PATHS,
                ));
            }
        }
        if let Some(k) = &from.config_map_key_ref {
            n += 1;
            errs.extend(validate_key_selector(
                &k.name,
                &k.key,
                &vp.child("configMapKeyRef"),
            ));
        }
        if let Some(k) = &from.secret_key_ref {
            n += 1;
            errs.extend(validate_key_selector(
                &k.name,
                &k.key,
                &vp.child("secretKeyRef"),
            ));
        }
        if n == 0 {
            errs.push(FieldError::invalid(
                &vp,
                "",
                "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
            ));
        } else if !ev.value.as_deref().unwrap_or_default().is_empty() {
            errs.push(FieldError::invalid(
                &vp,
                "",
                "may not be specified when `value` is not empty",
            ));
        } else if n > 1 {
            errs.push(FieldError::invalid(
                &vp,
                "",
                "may not have more than one field specified at a time",
            ));
        }
    }
    errs
}

fn subscripted(path: &str) -> Option<(&str, &str)> {
    let (base, rest) = path.split_once("['")?;
    let sub = rest.strip_suffix("']")?;
    Some((base, sub))
}

fn validate_key_selector(name: &str, key: &str, path: &FieldPath) -> ErrorList {
    let mut errs = ErrorList::new();
    for m in name_is_dns_subdomain(name, false) {
        errs.push(FieldError::invalid(&path.child("name"), name, &m));
    }
    if key.is_empty() {
        errs.push(FieldError::required(&path.child("key"), ""));
    } else {
        for m in is_config_map_key(key) {
            errs.push(FieldError::invalid(&path.child("key"), key, &m));
        }
    }
    errs
}

fn validate_env_from(vars: &[EnvFromSource], path: &FieldPath) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, ev) in vars.iter().enumerate() {
        let p = path.index(i);
        if let Some(prefix) = ev.prefix.as_deref().filter(|p| !p.is_empty()) {
            for m in is_relaxed_env_var_name(prefix) {
                errs.push(FieldError::invalid(&p.child("prefix"), prefix, &m));
            }
        }
        let mut n = 0;
        for (name, field) in [
            (
                ev.config_map_ref.as_ref().map(|r| r.name.as_str()),
                "configMapRef",
            ),
            (ev.secret_ref.as_ref().map(|r| r.name.as_str()), "secretRef"),
        ] {
            let Some(name) = name else { continue };
            n += 1;
            let np = p.child(field).child("name");
            if name.is_empty() {
                errs.push(FieldError::required(&np, ""));
            } else {
                for m in name_is_dns_subdomain(name, true) {
                    errs.push(FieldError::invalid(&np, name, &m));
                }
            }
        }
        if n == 0 {
            errs.push(FieldError::invalid(
                path,
                "",
                "must specify one of: `configMapRef` or `secretRef`",
            ));
        } else if n > 1 {
            errs.push(FieldError::invalid(
                path,
                "",
                "may not have more than one field specified at a time",
            ));
        }
    }
    errs
}

fn validate_volume_mounts(
    c: &Container,
    volumes: &BTreeMap<String, &Volume>,
    path: &FieldPath,
    errs: &mut ErrorList,
) {
    let devices: BTreeMap<&str, &str> = c
        .volume_devices
        .iter()
        .flatten()
        .map(|d| (d.name.as_str(), d.device_path.as_str()))
        .collect();
    let mut mount_points = BTreeSet::new();
    for (i, m) in c.volume_mounts.iter().flatten().enumerate() {
        let p = path.index(i);
        if m.name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        }
        if !volumes.contains_key(&m.name) {
            errs.push(FieldError::not_found(&p.child("name"), m.name.as_str()));
        }
        if m.mount_path.is_empty() {
            errs.push(FieldError::required(&p.child("mountPath"), ""));
        }
        if !mount_points.insert(m.mount_path.as_str()) {
            errs.push(FieldError::invalid(
                &p.child("mountPath"),
                m.mount_path.as_str(),
                "must be unique",
            ));
        }
        if devices.contains_key(m.name.as_str()) {
            errs.push(FieldError::invalid(
                &p.child("name"),
                m.name.as_str(),
                "must not already exist in volumeDevices",
            ));
        }
        if devices.values().any(|d| *d == m.mount_path) {
            errs.push(FieldError::invalid(
                &p.child("mountPath"),
                m.mount_path.as_str(),
                "must not already exist as a path in volumeDevices",
            ));
        }
        let sub_path = m.sub_path.as_deref().unwrap_or_default();
        let sub_expr = m.sub_path_expr.as_deref().unwrap_or_default();
        if !sub_path.is_empty() {
            errs.extend(validate_local_descending_path(
                sub_path,
                &path.child("subPath"),
            ));
        }
        if !sub_expr.is_empty() {
            if !sub_path.is_empty() {
                errs.push(FieldError::invalid(
                    &p.child("subPathExpr"),
                    sub_expr,
                    "subPathExpr and subPath are mutually exclusive",
                ));
            }
            errs.extend(validate_local_descending_path(
                sub_expr,
                &path.child("subPathExpr"),
            ));
        }
        if let Some(mp) = m.mount_propagation.as_deref() {
            let supported = ["Bidirectional", "HostToContainer", "None"];
            if !supported.contains(&mp) {
                errs.push(FieldError::not_supported(
                    &path.child("mountPropagation"),
                    mp,
                    &supported,
                ));
            }
        }
    }
}

/// A relative path that does not climb out with `..`.
pub(crate) fn validate_local_descending_path(p: &str, path: &FieldPath) -> ErrorList {
    let mut errs = ErrorList::new();
    if p.starts_with('/') {
        errs.push(FieldError::invalid(path, p, "must be a relative path"));
    }
    if p.split(['/', '\\']).any(|s| s == "..") {
        errs.push(FieldError::invalid(path, p, "must not contain '..'"));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field_error::FieldErrorType;
    use serde_json::json as j;

    type ContainerCase = (
        &'static str,
        serde_json::Value,
        Vec<(String, FieldErrorType)>,
    );

    fn check(c: serde_json::Value) -> Vec<(String, FieldErrorType)> {
        let c: Container = serde_json::from_value(c).expect("test container");
        let vol: Volume =
            serde_json::from_value(j!({"name": "data", "emptyDir": {}})).expect("vol");
        let mut vols = BTreeMap::new();
        vols.insert("data".to_string(), &vol);
        let mut errs = validate_containers(
            std::slice::from_ref(&c),
            &vols,
            Some(30),
            &FieldPath::new("spec").child("containers"),
            Some("Always"),
        );
        errs.sort_by(|a, b| a.field.as_str().cmp(b.field.as_str()));
        errs.iter().map(|e| (e.field.to_string(), e.kind)).collect()
    }

    #[test]
    fn container_rules() {
        use FieldErrorType::*;
        let p = |s: &str| format!("spec.containers[0].{s}");
        let cases: Vec<ContainerCase> = vec![
            (
                "valid",
                j!({"name": "web", "image": "nginx", "ports": [{"containerPort": 80, "name": "http"}],
                "env": [{"name": "A", "value": "b"}], "volumeMounts": [{"name": "data", "mountPath": "/d"}],
                "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m", "memory": "512Mi"}},
                "livenessProbe": {"httpGet": {"port": 80, "path": "/"}}}),
                vec![],
            ),
            (
                "missing name",
                j!({"image": "nginx"}),
                vec![(p("name"), Required)],
            ),
            (
                "bad name",
                j!({"name": "Web", "image": "nginx"}),
                vec![(p("name"), Invalid)],
            ),
            (
                "missing image",
                j!({"name": "web"}),
                vec![(p("image"), Required)],
            ),
            (
                "port zero",
                j!({"name": "web", "image": "x", "ports": [{"containerPort": 0}]}),
                vec![(p("ports[0].containerPort"), Required)],
            ),
            (
                "port too big",
                j!({"name": "web", "image": "x", "ports": [{"containerPort": 70000}]}),
                vec![(p("ports[0].containerPort"), Invalid)],
            ),
            (
                "bad protocol",
                j!({"name": "web", "image": "x", "ports": [{"containerPort": 80, "protocol": "HTTP"}]}),
                vec![(p("ports[0].protocol"), NotSupported)],
            ),
            (
                "duplicate port name",
                j!({"name": "web", "image": "x", "ports": [{"containerPort": 80, "name": "a"}, {"containerPort": 81, "name": "a"}]}),
                vec![(p("ports[1].name"), Duplicate)],
            ),
            (
                "bad env name",
                j!({"name": "web", "image": "x", "env": [{"name": "A=B"}]}),
                vec![(p("env[0].name"), Invalid)],
            ),
            (
                "empty env name",
                j!({"name": "web", "image": "x", "env": [{"name": ""}]}),
                vec![(p("env[0].name"), Required)],
            ),
            (
                "env valueFrom and value",
                j!({"name": "web", "image": "x", "env": [{"name": "A", "value": "x", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}),
                vec![(p("env[0].valueFrom"), Invalid)],
            ),
            (
                "env bad fieldPath",
                j!({"name": "web", "image": "x", "env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "spec.foo"}}}]}),
                vec![(p("env[0].valueFrom.fieldRef.fieldPath"), NotSupported)],
            ),
            (
                "mount of unknown volume",
                j!({"name": "web", "image": "x", "volumeMounts": [{"name": "nope", "mountPath": "/x"}]}),
                vec![(p("volumeMounts[0].name"), NotFound)],
            ),
            (
                "duplicate mount path",
                j!({"name": "web", "image": "x", "volumeMounts": [{"name": "data", "mountPath": "/x"}, {"name": "data", "mountPath": "/x"}]}),
                vec![(p("volumeMounts[1].mountPath"), Invalid)],
            ),
            (
                "request above limit",
                j!({"name": "web", "image": "x", "resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "2"}}}),
                vec![(p("resources.requests"), Invalid)],
            ),
            (
                "negative quantity",
                j!({"name": "web", "image": "x", "resources": {"limits": {"memory": "-1"}}}),
                vec![(p("resources.limits[memory]"), Invalid)],
            ),
            (
                "malformed quantity",
                j!({"name": "web", "image": "x", "resources": {"requests": {"cpu": "abc"}}}),
                vec![(p("resources.requests[cpu]"), Invalid)],
            ),
            (
                "unknown resource",
                j!({"name": "web", "image": "x", "resources": {"requests": {"gpu": "1"}}}),
                vec![
                    (p("resources.requests[gpu]"), Invalid),
                    (p("resources.requests[gpu]"), Invalid),
                ],
            ),
            (
                "extended needs limit",
                j!({"name": "web", "image": "x", "resources": {"requests": {"example.com/gpu": "1"}}}),
                vec![(p("resources.limits"), Required)],
            ),
            (
                "bad pull policy",
                j!({"name": "web", "image": "x", "imagePullPolicy": "Sometimes"}),
                vec![(p("imagePullPolicy"), NotSupported)],
            ),
            (
                "probe without handler",
                j!({"name": "web", "image": "x", "readinessProbe": {}}),
                vec![(p("readinessProbe"), Required)],
            ),
            (
                "probe two handlers",
                j!({"name": "web", "image": "x", "livenessProbe": {"exec": {"command": ["a"]}, "tcpSocket": {"port": 80}}}),
                vec![(p("livenessProbe.tcpSocket"), Forbidden)],
            ),
            (
                "liveness success threshold",
                j!({"name": "web", "image": "x", "livenessProbe": {"exec": {"command": ["a"]}, "successThreshold": 2}}),
                vec![(p("livenessProbe.successThreshold"), Invalid)],
            ),
            (
                "negative period",
                j!({"name": "web", "image": "x", "readinessProbe": {"exec": {"command": ["a"]}, "periodSeconds": -1}}),
                vec![(p("readinessProbe.periodSeconds"), Invalid)],
            ),
            (
                "probe bad port",
                j!({"name": "web", "image": "x", "readinessProbe": {"tcpSocket": {"port": "HTTP"}}}),
                vec![
                    (p("readinessProbe.tcpSocket.port"), Invalid),
                    (p("readinessProbe.tcpSocket.port"), Invalid),
                ],
            ),
            (
                "restartPolicy on regular container",
                j!({"name": "web", "image": "x", "restartPolicy": "Always"}),
                vec![(p("restartPolicy"), Forbidden)],
            ),
            (
                "bad subPath",
                j!({"name": "web", "image": "x", "volumeMounts": [{"name": "data", "mountPath": "/x", "subPath": "../etc"}]}),
                vec![(
                    "spec.containers[0].volumeMounts.subPath".to_string(),
                    Invalid,
                )],
            ),
        ];
        for (name, c, want) in cases {
            assert_eq!(check(c), want, "{name}");
        }
    }

    #[test]
    fn init_containers_forbid_probes_unless_sidecar() {
        use FieldErrorType::*;
        let inits: Vec<Container> = serde_json::from_value(j!([
            {"name": "init", "image": "x", "readinessProbe": {"exec": {"command": ["a"]}}},
            {"name": "side", "image": "x", "restartPolicy": "Always", "readinessProbe": {"exec": {"command": ["a"]}}},
            {"name": "web", "image": "x"},
            {"name": "bad", "image": "x", "restartPolicy": "Never"}
        ])).expect("inits");
        let regular: Vec<Container> =
            serde_json::from_value(j!([{"name": "web", "image": "x"}])).expect("c");
        let errs = validate_init_containers(
            &inits,
            &regular,
            &BTreeMap::new(),
            Some(30),
            &FieldPath::new("spec").child("initContainers"),
            Some("Always"),
        );
        let got: Vec<(String, FieldErrorType)> =
            errs.iter().map(|e| (e.field.to_string(), e.kind)).collect();
        assert_eq!(
            got,
            vec![
                (
                    "spec.initContainers[0].readinessProbe".to_string(),
                    Forbidden
                ),
                ("spec.initContainers[2].name".to_string(), Duplicate),
                (
                    "spec.initContainers[3].restartPolicy".to_string(),
                    NotSupported
                ),
            ]
        );
    }
}
