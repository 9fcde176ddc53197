//! What happens to an object between decoding and storing: defaulting, the resource's
//! strategy, and validation (upstream's create/update flow, before admission plugins).

use rkube_api::ResourceInfo;
use serde_json::Value;

use crate::object;
use crate::status::{ApiError, ApiResult};
use crate::strategy;

/// Defaults, prepares and validates a new object.
pub fn create(res: &ResourceInfo, obj: &mut Value) -> ApiResult<()> {
    decode(res, obj)?;
    rkube_api::defaults::apply(res.group, res.version, res.kind, obj);
    strategy::prepare_for_create(res, obj);
    let errors = rkube_api::validation::validate_create(res.group, res.kind, obj);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(res, object::name(obj), &errors))
    }
}

/// Defaults, prepares and validates an update of `old` to `new`, through the main resource
/// (`subresource == None`) or a subresource.
pub fn update(
    res: &ResourceInfo,
    new: &mut Value,
    old: &Value,
    subresource: Option<&str>,
) -> ApiResult<()> {
    decode(res, new)?;
    rkube_api::defaults::apply(res.group, res.version, res.kind, new);
    let errors = match subresource {
        Some("status") => {
            strategy::prepare_for_status_update(new, old);
            rkube_api::validation::validate_status_update(res.group, res.kind, new, old)
        }
        // A binding sets spec.nodeName and the PodScheduled condition, which the pod's own
        // update rules forbid; the binding handler checks what it may change.
        Some("binding") => Vec::new(),
        Some("finalize") => {
            // Only spec.finalizers change through finalize.
            let finalizers = new.pointer("/spec/finalizers").cloned();
            let rv = new.pointer("/metadata/resourceVersion").cloned();
            *new = old.clone();
            if let (Some(f), Some(spec)) = (
                finalizers,
                new.get_mut("spec").and_then(Value::as_object_mut),
            ) {
                spec.insert("finalizers".into(), f);
            }
            if let Some(rv) = rv {
                strategy::set_meta(new, "resourceVersion", rv);
            }
            rkube_api::validation::validate_update(res.group, res.kind, new, old)
        }
        _ => {
            strategy::prepare_for_update(res, new, old);
            rkube_api::validation::validate_update(res.group, res.kind, new, old)
        }
    };
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(res, object::name(new), &errors))
    }
}

/// Decodes as upstream's typed decoder: unknown and null fields dropped, wrong types a 400.
fn decode(res: &ResourceInfo, obj: &mut Value) -> ApiResult<()> {
    rkube_api::schema::prune(res.group, res.version, res.kind, obj).map_err(|e| {
        ApiError::bad_request(format!(
            "{kind} in version \"{v}\" cannot be handled as a {kind}: {e}",
            kind = res.kind,
            v = res.version
        ))
    })
}
