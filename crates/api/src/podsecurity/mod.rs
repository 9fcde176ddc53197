//! Pod Security admission's decisions, as upstream's `k8s.io/pod-security-admission` v1.33
//! makes them: the Pod Security Standards checks at each level and policy version, the
//! messages for enforce, audit and warn, the namespace labels that select a policy, and the
//! exemptions. No I/O: the API server's plugin fetches the namespace (and, when a namespace's
//! enforce level is raised, its pods) and applies the outcome.
//!
//! - [`level`]: levels, versions, [`NamespacePolicy`] from labels, [`Exemptions`];
//! - [`check_pod`]: the checks failed by a pod spec at a level and version;
//! - [`evaluate_pod`]: upstream's `EvaluatePod` (enforce, audit and warn with their texts);
//! - [`workload`]: pod templates of workload kinds, update filtering, and the namespace
//!   checks (label validation, warnings for existing pods).

mod baseline;
pub mod level;
mod pod;
mod restricted;
pub mod workload;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde_json::Value;

use crate::aggregate::aggregate_message;
use crate::field_error::FieldError;

pub use level::{
    exempt_namespace_warning, parse_version, Exemption, Exemptions, Level, LevelVersion,
    NamespacePolicy,
};
pub use workload::{
    has_pod_spec, ignored_pod_subresource, is_significant_pod_update, namespace_pod_warnings,
    pod_template_of, validate_namespace, NamespaceOutcome,
};

/// The audit annotation holding the enforce level a pod was checked at.
pub const ENFORCE_POLICY_ANNOTATION: &str = "pod-security.kubernetes.io/enforce-policy";
/// The audit annotation holding what the audit level would refuse.
pub const AUDIT_VIOLATIONS_ANNOTATION: &str = "pod-security.kubernetes.io/audit-violations";
/// The audit annotation naming why a request was exempt.
pub const EXEMPT_ANNOTATION: &str = "pod-security.kubernetes.io/exempt";
/// The audit annotation reporting invalid namespace labels.
pub const ERROR_ANNOTATION: &str = "pod-security.kubernetes.io/error";

/// One failed check: a short reason (`privileged`) and what exactly failed
/// (`container "c" must not set securityContext.privileged=true`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    pub reason: String,
    pub detail: String,
}

fn forbid(reason: &str, detail: String) -> Option<CheckResult> {
    Some(CheckResult {
        reason: reason.to_string(),
        detail,
    })
}

type CheckFn = fn(&Value, &Value) -> Option<CheckResult>;

/// One implementation of a check, in force from `v1.<min_minor>` until the next one.
struct Versioned {
    min_minor: u32,
    check: CheckFn,
    /// Baseline checks this restricted check replaces at the same version.
    overrides: &'static [&'static str],
}

struct Check {
    id: &'static str,
    level: Level,
    versions: &'static [Versioned],
}

const fn v(min_minor: u32, check: CheckFn) -> Versioned {
    Versioned {
        min_minor,
        check,
        overrides: &[],
    }
}

const fn v_over(min_minor: u32, check: CheckFn, overrides: &'static [&'static str]) -> Versioned {
    Versioned {
        min_minor,
        check,
        overrides,
    }
}

/// Every check, baseline then restricted, each group sorted by id: the order upstream runs
/// them in and so the order of the reasons in its messages.
const CHECKS: &[Check] = &[
    Check {
        id: "appArmorProfile",
        level: Level::Baseline,
        versions: &[v(0, baseline::app_armor_profile_1_0)],
    },
    Check {
        id: "capabilities_baseline",
        level: Level::Baseline,
        versions: &[v(0, baseline::capabilities_baseline_1_0)],
    },
    Check {
        id: "hostNamespaces",
        level: Level::Baseline,
        versions: &[v(0, baseline::host_namespaces_1_0)],
    },
    Check {
        id: "hostPathVolumes",
        level: Level::Baseline,
        versions: &[v(0, baseline::host_path_volumes_1_0)],
    },
    Check {
        id: "hostPorts",
        level: Level::Baseline,
        versions: &[v(0, baseline::host_ports_1_0)],
    },
    Check {
        id: "privileged",
        level: Level::Baseline,
        versions: &[v(0, baseline::privileged_1_0)],
    },
    Check {
        id: "procMount",
        level: Level::Baseline,
        versions: &[v(0, baseline::proc_mount_1_0)],
    },
    Check {
        id: "seLinuxOptions",
        level: Level::Baseline,
        versions: &[
            v(0, baseline::se_linux_options_1_0),
            v(31, baseline::se_linux_options_1_31),
        ],
    },
    Check {
        id: "seccompProfile_baseline",
        level: Level::Baseline,
        versions: &[
            v(0, baseline::seccomp_profile_baseline_1_0),
            v(19, baseline::seccomp_profile_baseline_1_19),
        ],
    },
    Check {
        id: "sysctls",
        level: Level::Baseline,
        versions: &[
            v(0, baseline::sysctls_1_0),
            v(27, baseline::sysctls_1_27),
            v(29, baseline::sysctls_1_29),
            v(32, baseline::sysctls_1_32),
        ],
    },
    Check {
        id: "windowsHostProcess",
        level: Level::Baseline,
        versions: &[v(0, baseline::windows_host_process_1_0)],
    },
    Check {
        id: "allowPrivilegeEscalation",
        level: Level::Restricted,
        versions: &[
            v(8, restricted::allow_privilege_escalation_1_8),
            v(25, restricted::allow_privilege_escalation_1_25),
        ],
    },
    Check {
        id: "capabilities_restricted",
        level: Level::Restricted,
        versions: &[
            v_over(
                22,
                restricted::capabilities_restricted_1_22,
                &["capabilities_baseline"],
            ),
            v_over(
                25,
                restricted::capabilities_restricted_1_25,
                &["capabilities_baseline"],
            ),
        ],
    },
    Check {
        id: "restrictedVolumes",
        level: Level::Restricted,
        versions: &[v_over(
            0,
            restricted::restricted_volumes_1_0,
            &["hostPathVolumes"],
        )],
    },
    Check {
        id: "runAsNonRoot",
        level: Level::Restricted,
        versions: &[v(0, restricted::run_as_non_root_1_0)],
    },
    Check {
        id: "runAsUser",
        level: Level::Restricted,
        versions: &[v(23, restricted::run_as_user_1_23)],
    },
    Check {
        id: "seccompProfile_restricted",
        level: Level::Restricted,
        versions: &[
            v_over(
                19,
                restricted::seccomp_profile_restricted_1_19,
                &["seccompProfile_baseline"],
            ),
            v_over(
                25,
                restricted::seccomp_profile_restricted_1_25,
                &["seccompProfile_baseline"],
            ),
        ],
    },
];

/// The newest policy version any check distinguishes (`v1.32` in v1.33); later versions
/// and `latest` evaluate as this one.
fn max_minor() -> u32 {
    CHECKS
        .iter()
        .filter_map(|c| c.versions.last())
        .map(|v| v.min_minor)
        .max()
        .unwrap_or(0)
}

/// The implementation of a check in force at `v1.<minor>`, if the check exists by then.
fn in_force(check: &Check, minor: u32) -> Option<&Versioned> {
    check.versions.iter().rev().find(|v| v.min_minor <= minor)
}

/// The checks `pod_spec` fails at `level`, in upstream's order (baseline checks first, each
/// level's checks sorted by id). Empty means allowed; privileged allows everything.
pub fn check_pod(level: &LevelVersion, pod_meta: &Value, pod_spec: &Value) -> Vec<CheckResult> {
    if level.level == Level::Privileged {
        return Vec::new();
    }
    let max = max_minor();
    let minor = match level.version {
        None => max,
        Some((1, minor)) => minor.min(max),
        // Only v1.N parses; a hand-built v0.N predates every check, v2+ is the newest.
        Some((0, _)) => return Vec::new(),
        Some(_) => max,
    };
    let overridden: Vec<&str> = if level.level == Level::Restricted {
        CHECKS
            .iter()
            .filter(|c| c.level == Level::Restricted)
            .filter_map(|c| in_force(c, minor))
            .flat_map(|v| v.overrides.iter().copied())
            .collect()
    } else {
        Vec::new()
    };
    CHECKS
        .iter()
        .filter(|c| c.level <= level.level && !overridden.contains(&c.id))
        .filter_map(|c| in_force(c, minor))
        .filter_map(|v| (v.check)(pod_meta, pod_spec))
        .collect()
}

/// The reasons with their details: `privileged (container "c" must not set ...), host
/// namespaces (hostNetwork=true)` (upstream's `ForbiddenDetail`).
pub fn forbidden_detail(results: &[CheckResult]) -> String {
    results
        .iter()
        .map(|r| {
            let reason = if r.reason.is_empty() {
                "unknown forbidden reason"
            } else {
                r.reason.as_str()
            };
            if r.detail.is_empty() {
                reason.to_string()
            } else {
                format!("{reason} ({})", r.detail)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The reasons alone, `privileged, host namespaces` (upstream's `ForbiddenReason`), as the
/// warnings about existing pods list them.
pub fn forbidden_reasons(results: &[CheckResult]) -> String {
    results
        .iter()
        .map(|r| {
            if r.reason.is_empty() {
                "unknown forbidden reason"
            } else {
                r.reason.as_str()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The enforce refusal: `violates PodSecurity "restricted:latest": ...`. The API server
/// reports it as `pods "x" is forbidden: <this>`.
pub fn forbidden_message(level: &LevelVersion, results: &[CheckResult]) -> String {
    format!(
        "violates PodSecurity \"{level}\": {}",
        forbidden_detail(results)
    )
}

/// The warn-mode warning and the audit annotation value:
/// `would violate PodSecurity "restricted:latest": ...`.
pub fn warning_message(level: &LevelVersion, results: &[CheckResult]) -> String {
    format!(
        "would violate PodSecurity \"{level}\": {}",
        forbidden_detail(results)
    )
}

/// What the plugin decides about one pod or pod template.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evaluation {
    /// The message of the Forbidden error when enforce refuses the pod.
    pub forbidden: Option<String>,
    /// Warnings for the response (warn mode); none when the request is refused.
    pub warnings: Vec<String>,
    /// Audit annotations, with their full `pod-security.kubernetes.io/` keys.
    pub audit_annotations: BTreeMap<String, String>,
}

impl Evaluation {
    pub fn allowed(&self) -> bool {
        self.forbidden.is_none()
    }

    /// What an exempt request gets: allowed, annotated with the reason.
    pub fn exempt(why: Exemption) -> Evaluation {
        Evaluation {
            audit_annotations: BTreeMap::from([(
                EXEMPT_ANNOTATION.to_string(),
                why.as_str().to_string(),
            )]),
            ..Evaluation::default()
        }
    }
}

/// Upstream's `EvaluatePod` for a pod (`enforce` true) or a workload's pod template
/// (`enforce` false: only audit and warn apply), including its short cuts for namespaces
/// that check nothing. `policy_errors` are the namespace's label errors, reported in an
/// audit annotation. Exemptions are the caller's to check first ([`Exemptions::check`]).
pub fn evaluate_pod(
    policy: &NamespacePolicy,
    policy_errors: &[FieldError],
    pod_meta: &Value,
    pod_spec: &Value,
    enforce: bool,
) -> Evaluation {
    let mut out = Evaluation::default();
    if policy_errors.is_empty() {
        if enforce && policy.fully_privileged() {
            out.audit_annotations.insert(
                ENFORCE_POLICY_ANNOTATION.to_string(),
                LevelVersion::PRIVILEGED_LATEST.to_string(),
            );
            return out;
        }
        if !enforce
            && policy.warn.level == Level::Privileged
            && policy.audit.level == Level::Privileged
        {
            return out;
        }
    } else {
        let messages: Vec<String> = policy_errors.iter().map(ToString::to_string).collect();
        out.audit_annotations.insert(
            ERROR_ANNOTATION.to_string(),
            format!("Failed to parse policy: {}", aggregate_message(&messages)),
        );
    }

    let mut cache: Vec<(LevelVersion, Vec<CheckResult>)> = Vec::new();
    let mut results_for = |lv: &LevelVersion| -> Vec<CheckResult> {
        if let Some((_, r)) = cache.iter().find(|(k, _)| k == lv) {
            return r.clone();
        }
        let r = check_pod(lv, pod_meta, pod_spec);
        cache.push((*lv, r.clone()));
        r
    };

    if enforce {
        out.audit_annotations.insert(
            ENFORCE_POLICY_ANNOTATION.to_string(),
            policy.enforce.to_string(),
        );
        let r = results_for(&policy.enforce);
        if !r.is_empty() {
            out.forbidden = Some(forbidden_message(&policy.enforce, &r));
        }
    }
    let audit = results_for(&policy.audit);
    if !audit.is_empty() {
        out.audit_annotations.insert(
            AUDIT_VIOLATIONS_ANNOTATION.to_string(),
            warning_message(&policy.audit, &audit),
        );
    }
    // No warnings on a request that is refused anyway.
    if out.forbidden.is_none() {
        let warn = results_for(&policy.warn);
        if !warn.is_empty() {
            out.warnings.push(warning_message(&policy.warn, &warn));
        }
    }
    out
}
