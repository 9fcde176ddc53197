//! Conversion between served versions that share storage: core/v1 and events.k8s.io/v1
//! events, autoscaling/v2 and autoscaling/v1 HorizontalPodAutoscalers (the mapping is
//! `rkube_api::convert`).
//!
//! Events are stored in the core/v1 form whichever API wrote them ([`storage_form`] on every
//! write); HorizontalPodAutoscalers in the version written. Every read converts to the
//! version of the request ([`to_version`]), and so does every update and patch of an event
//! before it changes the stored object ([`for_change`]), so a change is always made to, and
//! validated on, the request's form.

use std::borrow::Cow;

use rkube_api::ResourceInfo;
use serde_json::Value;

use crate::status::{ApiError, ApiResult};

/// Converts a stored object to the version `res` serves.
pub fn to_version(res: &ResourceInfo, obj: Value) -> ApiResult<Value> {
    rkube_api::convert::to_version(res.kind, &res.api_version(), obj)
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// The stored object an update, patch or apply through `res` changes: in `res`'s version for
/// kinds stored in one form (events), whose conversion loses nothing. HorizontalPodAutoscalers
/// are changed in the version stored: autoscaling/v1 cannot carry v2's metrics (upstream keeps
/// them in annotations, rkube does not), so a change through the other version must not
/// silently drop them.
pub fn for_change(res: &ResourceInfo, stored: Value) -> ApiResult<Value> {
    if rkube_api::convert::storage_version(res.group, res.kind).is_some() {
        to_version(res, stored)
    } else {
        Ok(stored)
    }
}

/// Converts an object of `res`'s version to the form the store keeps.
pub fn to_storage(res: &ResourceInfo, obj: Value) -> ApiResult<Value> {
    rkube_api::convert::to_storage(res.group, res.kind, obj)
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// The form of `obj` (of `res`'s version) the store keeps, borrowed when it is already that.
pub fn storage_form<'a>(res: &ResourceInfo, obj: &'a Value) -> ApiResult<Cow<'a, Value>> {
    match rkube_api::convert::storage_version(res.group, res.kind) {
        Some(v) if v != res.api_version() => Ok(Cow::Owned(to_storage(res, obj.clone())?)),
        _ => Ok(Cow::Borrowed(obj)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rkube_api::catalogue::find;
    use serde_json::json;

    #[test]
    fn events_k8s_io_events_are_stored_in_the_core_form_and_read_back() {
        let events = find("events.k8s.io", "v1", "events").expect("events");
        let core = find("", "v1", "events").expect("events");
        let e = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
            "regarding": {"name": "p"}, "note": "hi", "deprecatedCount": 2});
        let stored = to_storage(events, e.clone()).expect("store");
        assert_eq!(stored["apiVersion"], "v1");
        assert_eq!(stored["involvedObject"]["name"], "p");
        assert_eq!(stored["message"], "hi");
        assert_eq!(to_version(core, stored.clone()).expect("core"), stored);
        assert_eq!(to_version(events, stored).expect("events"), e);
    }
}
