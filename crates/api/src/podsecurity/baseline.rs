//! The baseline checks (upstream's `policy/check_*.go` at level baseline), each returning the
//! reason and detail upstream reports when a pod fails it.

use std::collections::BTreeSet;

use serde_json::Value;

use super::pod::{
    annotation, annotations, array, bool_at, container_sc, containers, containers_phrase, field,
    go_quote, join_quote, name, path, pluralize, pod_sc, str_at,
};
use super::{forbid, CheckResult};

const APPARMOR_ANNOTATION_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";
const SECCOMP_POD_ANNOTATION: &str = "seccomp.security.alpha.kubernetes.io/pod";
const SECCOMP_CONTAINER_ANNOTATION_PREFIX: &str = "container.seccomp.security.alpha.kubernetes.io/";

/// Capabilities a container may add at baseline: the container runtime's default set.
const DEFAULT_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// `who` phrases such as `pod and containers "a", "b"`.
fn setters(pod: bool, bad_containers: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    if pod {
        out.push("pod".to_string());
    }
    if !bad_containers.is_empty() {
        out.push(containers_phrase(bad_containers));
    }
    out
}

pub(super) fn app_armor_profile_1_0(meta: &Value, spec: &Value) -> Option<CheckResult> {
    let allowed_type = |t: &str| t == "RuntimeDefault" || t == "Localhost";
    let mut bad_values = BTreeSet::new();
    let mut pod_bad = false;
    if let Some(profile) = pod_sc(spec).and_then(|sc| field(sc, "appArmorProfile")) {
        let t = str_at(profile, &["type"]).unwrap_or("");
        if !allowed_type(t) {
            pod_bad = true;
            bad_values.insert(t.to_string());
        }
    }
    let mut bad_containers = Vec::new();
    for c in containers(spec) {
        if let Some(profile) = container_sc(c).and_then(|sc| field(sc, "appArmorProfile")) {
            let t = str_at(profile, &["type"]).unwrap_or("");
            if !allowed_type(t) {
                bad_containers.push(name(c));
                bad_values.insert(t.to_string());
            }
        }
    }
    let mut bad_setters = setters(pod_bad, &bad_containers);
    // Sorted as formatted text (`key="value"`), as upstream sorts them.
    let mut forbidden_annotations: Vec<String> = annotations(meta)
        .into_iter()
        .filter(|(k, v)| {
            k.starts_with(APPARMOR_ANNOTATION_PREFIX)
                && !(v.is_empty() || *v == "runtime/default" || v.starts_with("localhost/"))
        })
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect();
    forbidden_annotations.sort_unstable();
    let mut bad_value_list: Vec<String> = bad_values.into_iter().collect();
    if !forbidden_annotations.is_empty() {
        bad_setters
            .push(pluralize("annotation", "annotations", forbidden_annotations.len()).to_string());
        bad_value_list.extend(forbidden_annotations);
    }
    if bad_setters.is_empty() {
        return None;
    }
    forbid(
        pluralize(
            "forbidden AppArmor profile",
            "forbidden AppArmor profiles",
            bad_value_list.len(),
        ),
        format!(
            "{} must not set AppArmor profile type to {}",
            bad_setters.join(" and "),
            join_quote(&bad_value_list)
        ),
    )
}

pub(super) fn capabilities_baseline_1_0(_meta: &Value, spec: &Value) -> Option<CheckResult> {
    let mut bad_containers = Vec::new();
    let mut non_default = BTreeSet::new();
    for c in containers(spec) {
        let Some(caps) = container_sc(c).and_then(|sc| field(sc, "capabilities")) else {
            continue;
        };
        let mut valid = true;
        for cap in array(caps, "add").iter().filter_map(Value::as_str) {
            if !DEFAULT_CAPABILITIES.contains(&cap) {
                valid = false;
                non_default.insert(cap);
            }
        }
        if !valid {
            bad_containers.push(name(c));
        }
    }
    if bad_containers.is_empty() {
        return None;
    }
    let non_default: Vec<&str> = non_default.into_iter().collect();
    forbid(
        "non-default capabilities",
        format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&bad_containers),
            join_quote(&non_default)
        ),
    )
}

pub(super) fn host_namespaces_1_0(_meta: &Value, spec: &Value) -> Option<CheckResult> {
    let found: Vec<&str> = [
        ("hostNetwork", "hostNetwork=true"),
        ("hostPID", "hostPID=true"),
        ("hostIPC", "hostIPC=true"),
    ]
    .iter()
    .filter(|(f, _)| bool_at(spec, &[f]) == Some(true))
    .map(|(_, text)| *text)
    .collect();
    if found.is_empty() {
        return None;
    }
    forbid("host namespaces", found.join(", "))
}

pub(super) fn host_path_volumes_1_0(_meta: &Value, spec: &Value) -> Option<CheckResult> {
    let volumes: Vec<&str> = array(spec, "volumes")
        .iter()
        .filter(|v| field(v, "hostPath").is_some())
        .map(name)
        .collect();
    if volumes.is_empty() {
        return None;
    }
    forbid(
        "hostPath volumes",
        format!(
            "{} {}",
            pluralize("volume", "volumes", volumes.len()),
            join_quote(&volumes)
        ),
    )
}

pub(super) fn host_ports_1_0(_meta: &Value, spec: &Value) -> Option<CheckResult> {
    let mut bad_containers = Vec::new();
    // Upstream keeps the ports as strings in a sorted set, so they sort as text.
    let mut ports = BTreeSet::new();
    for c in containers(spec) {
        let mut valid = true;
        for p in array(c, "ports") {
            let host_port = p.get("hostPort").and_then(Value::as_i64).unwrap_or(0);
            if host_port != 0 {
                valid = false;
                ports.insert(host_port.to_string());
            }
        }
        if !valid {
            bad_containers.push(name(c));
        }
    }
    if bad_containers.is_empty() {
        return None;
    }
    let ports: Vec<String> = ports.into_iter().collect();
    forbid(
        "hostPort",
        format!(
            "{} {} {} {}",
            containers_phrase(&bad_containers),
            pluralize("uses", "use", bad_containers.len()),
            pluralize("hostPort", "hostPorts", ports.len()),
            ports.join(", ")
        ),
    )
}

pub(super) fn privileged_1_0(_meta: &Value, spec: &Value) -> Option<CheckResult> {
    let bad: Vec<&str> = containers(spec)
        .filter(|c| container_sc(c).and_then(|sc| bool_at(sc, &["privileged"])) == Some(true))
        .map(name)
        .collect();
    if bad.is_empty() {
        return None;
    }
    forbid(
        "privileged",
        format!(
            "{} must not set securityContext.privileged=true",
            containers_phrase(&bad)
        ),
    )
}

/// Upstream relaxes this check for pods in a user namespace only behind the alpha
/// `UserNamespacesPodSecurityStandards` gate, which is off in v1.33, so it always applies.
pub(super) fn proc_mount_1_0(_meta: &Value, spec: &Value) -> Option<CheckResult> {
    let mut bad = Vec::new();
    let mut types = BTreeSet::new();
    for c in containers(spec) {
        let Some(pm) = container_sc(c).and_then(|sc| str_at(sc, &["procMount"])) else {
            continue;
        };
        if pm != "Default" {
            bad.push(name(c));
            types.insert(pm);
        }
    }
    if bad.is_empty() {
        return None;
    }
    let types: Vec<&str> = types.into_iter().collect();
    forbid(
        "procMount",
        format!(
            "{} must not set securityContext.procMount to {}",
            containers_phrase(&bad),
            join_quote(&types)
        ),
    )
}

const SELINUX_TYPES_1_0: &[&str] = &["", "container_t", "container_init_t", "container_kvm_t"];
const SELINUX_TYPES_1_31: &[&str] = &[
    "",
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

pub(super) fn se_linux_options_1_0(meta: &Value, spec: &Value) -> Option<CheckResult> {
    se_linux_options(meta, spec, SELINUX_TYPES_1_0)
}

pub(super) fn se_linux_options_1_31(meta: &Value, spec: &Value) -> Option<CheckResult> {
    se_linux_options(meta, spec, SELINUX_TYPES_1_31)
}

fn se_linux_options(_meta: &Value, spec: &Value, allowed_types: &[&str]) -> Option<CheckResult> {
    let mut bad_types = BTreeSet::new();
    let mut set_user = false;
    let mut set_role = false;
    let mut valid = |opts: &Value| {
        let mut ok = true;
        let t = str_at(opts, &["type"]).unwrap_or("");
        if !allowed_types.contains(&t) {
            ok = false;
            bad_types.insert(t.to_string());
        }
        if !str_at(opts, &["user"]).unwrap_or("").is_empty() {
            ok = false;
            set_user = true;
        }
        if !str_at(opts, &["role"]).unwrap_or("").is_empty() {
            ok = false;
            set_role = true;
        }
        ok
    };
    let pod_bad = pod_sc(spec)
        .and_then(|sc| field(sc, "seLinuxOptions"))
        .is_some_and(|o| !valid(o));
    let mut bad_containers = Vec::new();
    for c in containers(spec) {
        if let Some(opts) = container_sc(c).and_then(|sc| field(sc, "seLinuxOptions")) {
            if !valid(opts) {
                bad_containers.push(name(c));
            }
        }
    }
    let bad_setters = setters(pod_bad, &bad_containers);
    if bad_setters.is_empty() {
        return None;
    }
    let mut bad_data = Vec::new();
    if !bad_types.is_empty() {
        let types: Vec<String> = bad_types.into_iter().collect();
        bad_data.push(format!(
            "{} {}",
            pluralize("type", "types", types.len()),
            join_quote(&types)
        ));
    }
    if set_user {
        bad_data.push("user may not be set".to_string());
    }
    if set_role {
        bad_data.push("role may not be set".to_string());
    }
    forbid(
        "seLinuxOptions",
        format!(
            "{} set forbidden securityContext.seLinuxOptions: {}",
            bad_setters.join(" and "),
            bad_data.join("; ")
        ),
    )
}

/// Policy versions before 1.19 read seccomp from the alpha annotations.
pub(super) fn seccomp_profile_baseline_1_0(meta: &Value, spec: &Value) -> Option<CheckResult> {
    let valid =
        |v: &str| v == "runtime/default" || v == "docker/default" || v.starts_with("localhost/");
    let mut forbidden = BTreeSet::new();
    if let Some(v) = annotation(meta, SECCOMP_POD_ANNOTATION) {
        if !valid(v) {
            forbidden.insert(format!("{SECCOMP_POD_ANNOTATION}={}", go_quote(v)));
        }
    }
    for c in containers(spec) {
        let key = format!("{SECCOMP_CONTAINER_ANNOTATION_PREFIX}{}", name(c));
        if let Some(v) = annotation(meta, &key) {
            if !valid(v) {
                forbidden.insert(format!("{key}={}", go_quote(v)));
            }
        }
    }
    if forbidden.is_empty() {
        return None;
    }
    let forbidden: Vec<String> = forbidden.into_iter().collect();
    forbid(
        "seccompProfile",
        format!(
            "forbidden {} {}",
            pluralize("annotation", "annotations", forbidden.len()),
            forbidden.join(", ")
        ),
    )
}

pub(super) fn valid_seccomp_type(t: &str) -> bool {
    t == "Localhost" || t == "RuntimeDefault"
}

/// The seccomp profile type a security context sets explicitly, `""` for a profile without
/// a type.
pub(super) fn seccomp_type(sc: &Value) -> Option<&str> {
    field(sc, "seccompProfile").map(|p| str_at(p, &["type"]).unwrap_or(""))
}

pub(super) fn seccomp_profile_baseline_1_19(_meta: &Value, spec: &Value) -> Option<CheckResult> {
    let mut bad_values = BTreeSet::new();
    let mut pod_bad = false;
    if let Some(t) = pod_sc(spec).and_then(seccomp_type) {
        if !valid_seccomp_type(t) {
            pod_bad = true;
            bad_values.insert(t);
        }
    }
    let mut bad_containers = Vec::new();
    for c in containers(spec) {
        if let Some(t) = container_sc(c).and_then(seccomp_type) {
            if !valid_seccomp_type(t) {
                bad_containers.push(name(c));
                bad_values.insert(t);
            }
        }
    }
    let bad_setters = setters(pod_bad, &bad_containers);
    if bad_setters.is_empty() {
        return None;
    }
    let values: Vec<&str> = bad_values.into_iter().collect();
    forbid(
        "seccompProfile",
        format!(
            "{} must not set securityContext.seccompProfile.type to {}",
            bad_setters.join(" and "),
            join_quote(&values)
        ),
    )
}

const SYSCTLS_1_0: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
];
const SYSCTLS_ADDED_1_27: &[&str] = &["net.ipv4.ip_local_reserved_ports"];
const SYSCTLS_ADDED_1_29: &[&str] = &[
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];
const SYSCTLS_ADDED_1_32: &[&str] = &["net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"];

pub(super) fn sysctls_1_0(meta: &Value, spec: &Value) -> Option<CheckResult> {
    sysctls(meta, spec, &[SYSCTLS_1_0])
}

pub(super) fn sysctls_1_27(meta: &Value, spec: &Value) -> Option<CheckResult> {
    sysctls(meta, spec, &[SYSCTLS_1_0, SYSCTLS_ADDED_1_27])
}

pub(super) fn sysctls_1_29(meta: &Value, spec: &Value) -> Option<CheckResult> {
    sysctls(
        meta,
        spec,
        &[SYSCTLS_1_0, SYSCTLS_ADDED_1_27, SYSCTLS_ADDED_1_29],
    )
}

pub(super) fn sysctls_1_32(meta: &Value, spec: &Value) -> Option<CheckResult> {
    sysctls(
        meta,
        spec,
        &[
            SYSCTLS_1_0,
            SYSCTLS_ADDED_1_27,
            SYSCTLS_ADDED_1_29,
            SYSCTLS_ADDED_1_32,
        ],
    )
}

fn sysctls(_meta: &Value, spec: &Value, allowed: &[&[&str]]) -> Option<CheckResult> {
    let forbidden: Vec<&str> = pod_sc(spec)
        .map(|sc| array(sc, "sysctls"))
        .unwrap_or(&[])
        .iter()
        .map(|s| s.get("name").and_then(Value::as_str).unwrap_or(""))
        .filter(|n| !allowed.iter().any(|set| set.contains(n)))
        .collect();
    if forbidden.is_empty() {
        return None;
    }
    forbid("forbidden sysctls", forbidden.join(", "))
}

pub(super) fn windows_host_process_1_0(_meta: &Value, spec: &Value) -> Option<CheckResult> {
    let host_process = |sc: &Value| {
        path(sc, &["windowsOptions", "hostProcess"]).and_then(Value::as_bool) == Some(true)
    };
    let bad_containers: Vec<&str> = containers(spec)
        .filter(|c| container_sc(c).is_some_and(host_process))
        .map(name)
        .collect();
    let pod_bad = pod_sc(spec).is_some_and(host_process);
    let bad_setters = setters(pod_bad, &bad_containers);
    if bad_setters.is_empty() {
        return None;
    }
    forbid(
        "hostProcess",
        format!(
            "{} must not set securityContext.windowsOptions.hostProcess=true",
            bad_setters.join(" and ")
        ),
    )
}
