//! validation: placeholder entry points until upstream's rules land.

use crate::field_error::ErrorList;

/// Validates a new object (already defaulted).
pub fn validate_create(group: &str, kind: &str, obj: &serde_json::Value) -> ErrorList {
    let _ = (group, kind, obj);
    Vec::new()
}

/// Validates an update of `old` to `new`.
pub fn validate_update(
    group: &str,
    kind: &str,
    new: &serde_json::Value,
    old: &serde_json::Value,
) -> ErrorList {
    let _ = (group, kind, new, old);
    Vec::new()
}

/// Validates a status-subresource update.
pub fn validate_status_update(
    group: &str,
    kind: &str,
    new: &serde_json::Value,
    old: &serde_json::Value,
) -> ErrorList {
    let _ = (group, kind, new, old);
    Vec::new()
}
