//! Levels, versions and the per-namespace policy read from the `pod-security.kubernetes.io/*`
//! labels, as upstream's `pod-security-admission/api` parses them.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use crate::field_error::{ErrorList, FieldError, FieldPath};

/// The prefix of every label and audit annotation the plugin reads or writes.
pub const LABEL_PREFIX: &str = "pod-security.kubernetes.io/";
pub const ENFORCE_LEVEL_LABEL: &str = "pod-security.kubernetes.io/enforce";
pub const ENFORCE_VERSION_LABEL: &str = "pod-security.kubernetes.io/enforce-version";
pub const AUDIT_LEVEL_LABEL: &str = "pod-security.kubernetes.io/audit";
pub const AUDIT_VERSION_LABEL: &str = "pod-security.kubernetes.io/audit-version";
pub const WARN_LEVEL_LABEL: &str = "pod-security.kubernetes.io/warn";
pub const WARN_VERSION_LABEL: &str = "pod-security.kubernetes.io/warn-version";

const LEVEL_ERROR: &str = "must be one of privileged, baseline, restricted";
const VERSION_ERROR: &str = "must be \"latest\" or \"v1.x\"";

/// A Pod Security Standards level, from least to most restrictive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Level {
    #[default]
    Privileged,
    Baseline,
    Restricted,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }

    /// Upstream's `ParseLevel`. On error it still yields `restricted`, which is what an
    /// invalid enforce label evaluates as (fail closed); audit and warn override that.
    pub fn parse(s: &str) -> Result<Level, &'static str> {
        match s {
            "privileged" => Ok(Level::Privileged),
            "baseline" => Ok(Level::Baseline),
            "restricted" => Ok(Level::Restricted),
            _ => Err(LEVEL_ERROR),
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses a policy version: `latest` is `None`, `v1.N` is `Some((1, N))` (upstream's
/// `ParseVersion`; anything else is an error and evaluates as latest).
pub fn parse_version(s: &str) -> Result<Option<(u32, u32)>, &'static str> {
    if s == "latest" {
        return Ok(None);
    }
    let minor = s.strip_prefix("v1.").ok_or(VERSION_ERROR)?;
    let well_formed = !minor.is_empty()
        && minor.bytes().all(|b| b.is_ascii_digit())
        && (minor == "0" || !minor.starts_with('0'));
    if !well_formed {
        return Err(VERSION_ERROR);
    }
    // Upstream accepts any minor that fits an int64; beyond u32 every version evaluates as
    // the newest policy anyway, so saturating changes nothing but an absurd label's echo.
    let n: u64 = minor.parse().map_err(|_| VERSION_ERROR)?;
    if n > i64::MAX as u64 {
        return Err(VERSION_ERROR);
    }
    Ok(Some((1, u32::try_from(n).unwrap_or(u32::MAX))))
}

/// A level at a policy version (`None` = latest), printed `restricted:latest` or
/// `baseline:v1.23`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct LevelVersion {
    pub level: Level,
    pub version: Option<(u32, u32)>,
}

impl LevelVersion {
    pub const PRIVILEGED_LATEST: LevelVersion = LevelVersion {
        level: Level::Privileged,
        version: None,
    };

    pub fn latest(level: Level) -> Self {
        LevelVersion {
            level,
            version: None,
        }
    }

    /// Upstream's `Equivalent`: privileged is privileged at any version.
    pub fn equivalent(&self, other: &LevelVersion) -> bool {
        (self.level == Level::Privileged && other.level == Level::Privileged) || self == other
    }
}

impl fmt::Display for LevelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.version {
            None => write!(f, "{}:latest", self.level),
            Some((major, minor)) => write!(f, "{}:v{major}.{minor}", self.level),
        }
    }
}

/// The three modes' levels for one namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NamespacePolicy {
    pub enforce: LevelVersion,
    pub audit: LevelVersion,
    pub warn: LevelVersion,
}

impl NamespacePolicy {
    /// The policy of a namespace without labels under the default configuration:
    /// `privileged:latest` in every mode.
    pub const DEFAULT: NamespacePolicy = NamespacePolicy {
        enforce: LevelVersion::PRIVILEGED_LATEST,
        audit: LevelVersion::PRIVILEGED_LATEST,
        warn: LevelVersion::PRIVILEGED_LATEST,
    };

    /// The policy the labels select over [`NamespacePolicy::DEFAULT`], with the label errors
    /// namespace validation reports. See [`NamespacePolicy::from_labels_with_defaults`].
    pub fn from_labels(labels: &BTreeMap<String, String>) -> (NamespacePolicy, ErrorList) {
        Self::from_labels_with_defaults(labels, &Self::DEFAULT)
    }

    /// The policy of a namespace object (its `metadata.labels`).
    pub fn from_namespace(namespace: &Value) -> (NamespacePolicy, ErrorList) {
        Self::from_labels(&labels_of(namespace))
    }

    /// Upstream's `PolicyToEvaluate`. Invalid values are reported and then evaluated so the
    /// plugin fails closed for enforce (an invalid level is `restricted`) and open for audit
    /// and warn (`privileged`); an invalid version is `latest`. A valid enforce level with no
    /// warn label raises warn to at least the enforce level (and its version, unless warn
    /// has its own), so users see what enforcement would refuse.
    pub fn from_labels_with_defaults(
        labels: &BTreeMap<String, String>,
        defaults: &NamespacePolicy,
    ) -> (NamespacePolicy, ErrorList) {
        let mut p = *defaults;
        let mut errs = ErrorList::new();
        if labels.is_empty() {
            return (p, errs);
        }
        let mut has_enforce_level = false;
        if let Some(v) = labels.get(ENFORCE_LEVEL_LABEL) {
            match Level::parse(v) {
                Ok(l) => {
                    p.enforce.level = l;
                    has_enforce_level = true;
                }
                Err(e) => {
                    p.enforce.level = Level::Restricted;
                    errs.push(label_error(ENFORCE_LEVEL_LABEL, v, e));
                }
            }
        }
        if let Some(v) = labels.get(ENFORCE_VERSION_LABEL) {
            p.enforce.version = version_or_latest(v, ENFORCE_VERSION_LABEL, &mut errs);
        }
        if let Some(v) = labels.get(AUDIT_LEVEL_LABEL) {
            p.audit.level = level_or_privileged(v, AUDIT_LEVEL_LABEL, &mut errs);
        }
        if let Some(v) = labels.get(AUDIT_VERSION_LABEL) {
            p.audit.version = version_or_latest(v, AUDIT_VERSION_LABEL, &mut errs);
        }
        let has_warn_level = labels.contains_key(WARN_LEVEL_LABEL);
        if let Some(v) = labels.get(WARN_LEVEL_LABEL) {
            p.warn.level = level_or_privileged(v, WARN_LEVEL_LABEL, &mut errs);
        }
        let has_warn_version = labels.contains_key(WARN_VERSION_LABEL);
        if let Some(v) = labels.get(WARN_VERSION_LABEL) {
            p.warn.version = version_or_latest(v, WARN_VERSION_LABEL, &mut errs);
        }
        if !has_warn_level && has_enforce_level && p.enforce.level > p.warn.level {
            p.warn.level = p.enforce.level;
            if !has_warn_version {
                p.warn.version = p.enforce.version;
            }
        }
        (p, errs)
    }

    /// Whether no mode checks anything.
    pub fn fully_privileged(&self) -> bool {
        self.enforce.level == Level::Privileged
            && self.audit.level == Level::Privileged
            && self.warn.level == Level::Privileged
    }

    pub fn equivalent(&self, other: &NamespacePolicy) -> bool {
        self.enforce.equivalent(&other.enforce)
            && self.audit.equivalent(&other.audit)
            && self.warn.equivalent(&other.warn)
    }
}

/// The string labels of an object's metadata (non-string values are skipped).
pub fn labels_of(obj: &Value) -> BTreeMap<String, String> {
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn label_error(label: &str, value: &str, detail: &str) -> FieldError {
    let path = FieldPath::new("metadata").child("labels").key(label);
    FieldError::invalid(&path, value, detail)
}

fn level_or_privileged(v: &str, label: &str, errs: &mut ErrorList) -> Level {
    Level::parse(v).unwrap_or_else(|e| {
        errs.push(label_error(label, v, e));
        Level::Privileged
    })
}

fn version_or_latest(v: &str, label: &str, errs: &mut ErrorList) -> Option<(u32, u32)> {
    parse_version(v).unwrap_or_else(|e| {
        errs.push(label_error(label, v, e));
        None
    })
}

/// Requests the plugin lets through unchecked (upstream's `PodSecurityConfiguration`
/// exemptions).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exemptions {
    pub usernames: Vec<String>,
    pub runtime_classes: Vec<String>,
    pub namespaces: Vec<String>,
}

/// Why a request was exempt; the value of the `pod-security.kubernetes.io/exempt` audit
/// annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exemption {
    Namespace,
    User,
    RuntimeClass,
}

impl Exemption {
    pub fn as_str(self) -> &'static str {
        match self {
            Exemption::Namespace => "namespace",
            Exemption::User => "user",
            Exemption::RuntimeClass => "runtimeClass",
        }
    }
}

impl Exemptions {
    pub fn namespace(&self, namespace: &str) -> bool {
        !namespace.is_empty() && self.namespaces.iter().any(|n| n == namespace)
    }

    pub fn user(&self, username: &str) -> bool {
        !username.is_empty() && self.usernames.iter().any(|n| n == username)
    }

    pub fn runtime_class(&self, runtime_class: Option<&str>) -> bool {
        matches!(runtime_class, Some(rc) if !rc.is_empty() && self.runtime_classes.iter().any(|n| n == rc))
    }

    /// The exemption that applies to a request on a pod or pod template, checked in
    /// upstream's order: namespace, user, then the spec's runtime class.
    pub fn check(&self, namespace: &str, username: &str, pod_spec: &Value) -> Option<Exemption> {
        if self.namespace(namespace) {
            Some(Exemption::Namespace)
        } else if self.user(username) {
            Some(Exemption::User)
        } else if self.runtime_class(pod_spec.get("runtimeClassName").and_then(Value::as_str)) {
            Some(Exemption::RuntimeClass)
        } else {
            None
        }
    }
}

/// The warning upstream gives when an exempt namespace is labelled with a policy that will
/// be ignored; `None` when the policy is fully privileged or equivalent to the defaults.
pub fn exempt_namespace_warning(
    namespace: &str,
    policy: &NamespacePolicy,
    defaults: &NamespacePolicy,
    labels: &BTreeMap<String, String>,
) -> Option<String> {
    if policy.fully_privileged() || policy.equivalent(defaults) {
        return None;
    }
    let modes = [
        (
            "enforce",
            &policy.enforce,
            ENFORCE_LEVEL_LABEL,
            ENFORCE_VERSION_LABEL,
        ),
        (
            "audit",
            &policy.audit,
            AUDIT_LEVEL_LABEL,
            AUDIT_VERSION_LABEL,
        ),
        ("warn", &policy.warn, WARN_LEVEL_LABEL, WARN_VERSION_LABEL),
    ];
    let parts: Vec<String> = modes
        .iter()
        .filter(|(_, lv, level_label, version_label)| {
            lv.level != Level::Privileged
                && (labels.contains_key(*level_label) || labels.contains_key(*version_label))
        })
        .map(|(mode, lv, _, _)| format!("{mode}={lv}"))
        .collect();
    Some(format!(
        "namespace \"{namespace}\" is exempt from Pod Security, and the policy ({}) will be ignored",
        parts.join(", ")
    ))
}
