//! Expected reasons, details and messages are upstream's, from `policy/check_*_test.go` and
//! the plugin's admission tests.

mod checks;
mod policy;

use serde_json::{json, Value};

use super::*;

pub(super) fn lv(level: Level, version: Option<u32>) -> LevelVersion {
    LevelVersion {
        level,
        version: version.map(|m| (1, m)),
    }
}

pub(super) fn restricted() -> LevelVersion {
    lv(Level::Restricted, None)
}

pub(super) fn baseline() -> LevelVersion {
    lv(Level::Baseline, None)
}

/// The single failure a check at `level` reports for `spec` (and `meta`), as
/// (reason, detail).
pub(super) fn only_failure(level: &LevelVersion, meta: &Value, spec: &Value) -> (String, String) {
    let r = check_pod(level, meta, spec);
    assert_eq!(r.len(), 1, "{r:?}");
    (r[0].reason.clone(), r[0].detail.clone())
}

/// A container that passes every restricted check when the pod sets [`good_pod_sc`].
pub(super) fn good_container(name: &str) -> Value {
    json!({"name": name, "image": "i", "securityContext": {
        "allowPrivilegeEscalation": false,
        "capabilities": {"drop": ["ALL"]},
    }})
}

/// A pod security context that passes runAsNonRoot and seccomp.
pub(super) fn good_pod_sc() -> Value {
    json!({"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}})
}
