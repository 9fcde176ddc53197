//! The restricted checks (upstream's `policy/check_*.go` at level restricted). From v1.25
//! several of them skip pods whose `spec.os.name` is `windows`, where the fields they read
//! cannot be set.

use std::collections::BTreeSet;

use serde_json::Value;

use super::baseline::{seccomp_type, valid_seccomp_type};
use super::pod::{
    array, bool_at, container_sc, containers, containers_phrase, field, is_windows, join_quote,
    name, pod_sc,
};
use super::{forbid, CheckResult};

pub(super) fn allow_privilege_escalation_1_8(_meta: &Value, spec: &Value) -> Option<CheckResult> {
    let bad: Vec<&str> = containers(spec)
        .filter(|c| {
            container_sc(c).and_then(|sc| bool_at(sc, &["allowPrivilegeEscalation"])) != Some(false)
        })
        .map(name)
        .collect();
    if bad.is_empty() {
        return None;
    }
    forbid(
        "allowPrivilegeEscalation != false",
        format!(
            "{} must set securityContext.allowPrivilegeEscalation=false",
            containers_phrase(&bad)
        ),
    )
}

pub(super) fn allow_privilege_escalation_1_25(meta: &Value, spec: &Value) -> Option<CheckResult> {
    if is_windows(spec) {
        return None;
    }
    allow_privilege_escalation_1_8(meta, spec)
}

pub(super) fn capabilities_restricted_1_22(_meta: &Value, spec: &Value) -> Option<CheckResult> {
    let mut missing_drop_all = Vec::new();
    let mut adding_forbidden = Vec::new();
    let mut forbidden_caps = BTreeSet::new();
    for c in containers(spec) {
        let Some(caps) = container_sc(c).and_then(|sc| field(sc, "capabilities")) else {
            missing_drop_all.push(name(c));
            continue;
        };
        if !array(caps, "drop")
            .iter()
            .any(|d| d.as_str() == Some("ALL"))
        {
            missing_drop_all.push(name(c));
        }
        let mut added_forbidden = false;
        for cap in array(caps, "add").iter().filter_map(Value::as_str) {
            if cap != "NET_BIND_SERVICE" {
                added_forbidden = true;
                forbidden_caps.insert(cap);
            }
        }
        if added_forbidden {
            adding_forbidden.push(name(c));
        }
    }
    let mut details = Vec::new();
    if !missing_drop_all.is_empty() {
        details.push(format!(
            "{} must set securityContext.capabilities.drop=[\"ALL\"]",
            containers_phrase(&missing_drop_all)
        ));
    }
    if !adding_forbidden.is_empty() {
        let caps: Vec<&str> = forbidden_caps.into_iter().collect();
        details.push(format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&adding_forbidden),
            join_quote(&caps)
        ));
    }
    if details.is_empty() {
        return None;
    }
    forbid("unrestricted capabilities", details.join("; "))
}

pub(super) fn capabilities_restricted_1_25(meta: &Value, spec: &Value) -> Option<CheckResult> {
    if is_windows(spec) {
        return None;
    }
    capabilities_restricted_1_22(meta, spec)
}

/// The inline volume sources restricted allows.
const ALLOWED_VOLUME_SOURCES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// The restricted volume sources, in the order upstream names the first one found.
const RESTRICTED_VOLUME_SOURCES: &[&str] = &[
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "nfs",
    "iscsi",
    "glusterfs",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "fc",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "storageos",
];

pub(super) fn restricted_volumes_1_0(_meta: &Value, spec: &Value) -> Option<CheckResult> {
    let mut bad_volumes = Vec::new();
    let mut bad_types = BTreeSet::new();
    for v in array(spec, "volumes") {
        if ALLOWED_VOLUME_SOURCES.iter().any(|s| field(v, s).is_some()) {
            continue;
        }
        bad_volumes.push(name(v));
        let kind = RESTRICTED_VOLUME_SOURCES
            .iter()
            .find(|s| field(v, s).is_some())
            .copied()
            .unwrap_or("unknown");
        bad_types.insert(kind);
    }
    if bad_volumes.is_empty() {
        return None;
    }
    let types: Vec<&str> = bad_types.into_iter().collect();
    forbid(
        "restricted volume types",
        format!(
            "{} {} {} {} {}",
            super::pod::pluralize("volume", "volumes", bad_volumes.len()),
            join_quote(&bad_volumes),
            super::pod::pluralize("uses", "use", bad_volumes.len()),
            super::pod::pluralize(
                "restricted volume type",
                "restricted volume types",
                types.len()
            ),
            join_quote(&types)
        ),
    )
}

/// Pod-level setting, containers that explicitly set a bad value, and containers that set
/// nothing while the pod does not set a good value: the shape runAsNonRoot and seccomp share.
struct Offenders<'a> {
    pod_bad: bool,
    explicit: Vec<&'a str>,
    implicit: Vec<&'a str>,
}

impl Offenders<'_> {
    fn setters(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.pod_bad {
            out.push("pod".to_string());
        }
        if !self.explicit.is_empty() {
            out.push(containers_phrase(&self.explicit));
        }
        out
    }
}

/// Upstream relaxes this check for user-namespaced pods only behind an alpha gate that is
/// off in v1.33.
pub(super) fn run_as_non_root_1_0(_meta: &Value, spec: &Value) -> Option<CheckResult> {
    let pod_setting = pod_sc(spec).and_then(|sc| bool_at(sc, &["runAsNonRoot"]));
    let pod_ok = pod_setting == Some(true);
    let mut o = Offenders {
        pod_bad: pod_setting == Some(false),
        explicit: Vec::new(),
        implicit: Vec::new(),
    };
    for c in containers(spec) {
        match container_sc(c).and_then(|sc| bool_at(sc, &["runAsNonRoot"])) {
            Some(false) => o.explicit.push(name(c)),
            Some(true) => {}
            None if !pod_ok => o.implicit.push(name(c)),
            None => {}
        }
    }
    let setters = o.setters();
    if !setters.is_empty() {
        return forbid(
            "runAsNonRoot != true",
            format!(
                "{} must not set securityContext.runAsNonRoot=false",
                setters.join(" and ")
            ),
        );
    }
    if !o.implicit.is_empty() {
        return forbid(
            "runAsNonRoot != true",
            format!(
                "pod or {} must set securityContext.runAsNonRoot=true",
                containers_phrase(&o.implicit)
            ),
        );
    }
    None
}

/// As [`run_as_non_root_1_0`], never relaxed for user namespaces in v1.33.
pub(super) fn run_as_user_1_23(_meta: &Value, spec: &Value) -> Option<CheckResult> {
    let is_root = |sc: &Value| sc.get("runAsUser").and_then(Value::as_i64) == Some(0);
    let pod_bad = pod_sc(spec).is_some_and(is_root);
    let explicit: Vec<&str> = containers(spec)
        .filter(|c| container_sc(c).is_some_and(is_root))
        .map(name)
        .collect();
    let o = Offenders {
        pod_bad,
        explicit,
        implicit: Vec::new(),
    };
    let setters = o.setters();
    if setters.is_empty() {
        return None;
    }
    forbid(
        "runAsUser=0",
        format!("{} must not set runAsUser=0", setters.join(" and ")),
    )
}

pub(super) fn seccomp_profile_restricted_1_19(_meta: &Value, spec: &Value) -> Option<CheckResult> {
    let mut bad_values = BTreeSet::new();
    let mut pod_bad = false;
    let mut pod_set = false;
    if let Some(t) = pod_sc(spec).and_then(seccomp_type) {
        if valid_seccomp_type(t) {
            pod_set = true;
        } else {
            pod_bad = true;
            bad_values.insert(t);
        }
    }
    let mut o = Offenders {
        pod_bad,
        explicit: Vec::new(),
        implicit: Vec::new(),
    };
    for c in containers(spec) {
        match container_sc(c).and_then(seccomp_type) {
            Some(t) if !valid_seccomp_type(t) => {
                o.explicit.push(name(c));
                bad_values.insert(t);
            }
            Some(_) => {}
            None if !pod_set => o.implicit.push(name(c)),
            None => {}
        }
    }
    let setters = o.setters();
    if !setters.is_empty() {
        let values: Vec<&str> = bad_values.into_iter().collect();
        return forbid(
            "seccompProfile",
            format!(
                "{} must not set securityContext.seccompProfile.type to {}",
                setters.join(" and "),
                join_quote(&values)
            ),
        );
    }
    if !o.implicit.is_empty() {
        return forbid(
            "seccompProfile",
            format!(
                "pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
                containers_phrase(&o.implicit)
            ),
        );
    }
    None
}

pub(super) fn seccomp_profile_restricted_1_25(meta: &Value, spec: &Value) -> Option<CheckResult> {
    if is_windows(spec) {
        return None;
    }
    seccomp_profile_restricted_1_19(meta, spec)
}
