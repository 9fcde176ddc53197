//! `patch`: JSON patch, JSON merge patch and strategic merge patch, applied inside the
//! guaranteed-update loop so that a patch never loses a concurrent write.

use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;
use serde_json::Value;

use super::write::guaranteed_update;
use super::Ctx;
use crate::codec::{self, negotiate, respond};
use crate::status::{ApiError, ApiResult};

/// The patch formats, by `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatchType {
    Json,
    Merge,
    Strategic,
    Apply,
}

impl PatchType {
    fn from_content_type(ct: &str) -> ApiResult<Self> {
        match ct {
            "application/json-patch+json" => Ok(PatchType::Json),
            "application/merge-patch+json" => Ok(PatchType::Merge),
            "application/strategic-merge-patch+json" => Ok(PatchType::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => Ok(PatchType::Apply),
            other => Err(ApiError::unsupported_media_type(other)),
        }
    }
}

/// Applies a patch document to an object.
pub(crate) fn apply_patch(
    kind: PatchType,
    patch: &Value,
    target: &Value,
    group: &str,
    version: &str,
    type_kind: &str,
) -> ApiResult<Value> {
    let mut doc = target.clone();
    match kind {
        PatchType::Json => {
            let p: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            json_patch::patch(&mut doc, &p).map_err(|e| {
                ApiError::new(
                    422,
                    "Invalid",
                    format!("the server rejected our request due to an error in our request: {e}"),
                )
            })?;
        }
        PatchType::Merge => {
            if !patch.is_object() {
                return Err(ApiError::bad_request(
                    "error decoding patch: a merge patch must be a JSON object",
                ));
            }
            json_patch::merge(&mut doc, patch);
        }
        PatchType::Strategic => {
            doc = rkube_api::patch::strategic::apply(target, patch, group, version, type_kind)
                .map_err(|e| match e.status_code() {
                    400 => ApiError::bad_request(e.to_string()),
                    415 => {
                        ApiError::unsupported_media_type("application/strategic-merge-patch+json")
                    }
                    // Upstream answers the remaining malformed patches with a 500; they are
                    // the client's mistake, so rkube says 422.
                    _ => ApiError::new(422, "Invalid", e.to_string()),
                })?;
        }
        PatchType::Apply => {
            return Err(ApiError::unsupported_media_type(
                "application/apply-patch+yaml",
            ));
        }
    }
    Ok(doc)
}

pub(crate) async fn patch(ctx: Ctx, body: Bytes) -> ApiResult<Response> {
    let output = negotiate(&ctx.headers)?;
    let dry = ctx.query.dry_run()?;
    let ct = codec::content_type(&ctx.headers);
    let kind = PatchType::from_content_type(&ct)?;
    let patch_doc = match kind {
        PatchType::Apply => codec::decode_yaml(&body)?,
        _ => codec::decode_json(&body)?,
    };
    if ctx.req.subresource.as_deref() == Some("scale") {
        return super::subresource::patch_scale(ctx, kind, &patch_doc, dry).await;
    }
    if kind == PatchType::Apply {
        return server_side_apply(ctx, patch_doc, dry, output).await;
    }
    let res = ctx.req.resource;
    let (obj, _) = guaranteed_update(
        &ctx,
        dry,
        None,
        |cur| {
            let mut patched = apply_patch(kind, &patch_doc, cur, res.group, res.version, res.kind)?;
            // The patch may not change what the object is.
            let mut fixed = patched.clone();
            super::check_object(&ctx, &mut fixed, res.kind, &res.api_version())?;
            patched = fixed;
            // A resourceVersion in the patch is a precondition; otherwise the one read.
            if patch_doc.pointer("/metadata/resourceVersion").is_none() {
                if let Some(m) = patched.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.remove("resourceVersion");
                }
            }
            Ok(patched)
        },
        None,
    )
    .await?;
    Ok(respond(StatusCode::OK, output, &obj))
}

/// Server-side apply: the applied configuration is merged into the live object (or creates it)
/// with field ownership; another manager's field is a 409 conflict unless `force=true`.
async fn server_side_apply(
    mut ctx: Ctx,
    applied: Value,
    dry: bool,
    output: crate::codec::Output,
) -> ApiResult<Response> {
    let res = ctx.req.resource;
    let Some(manager) = ctx.query.get("fieldManager").map(str::to_string) else {
        return Err(ApiError::new(
            422,
            "Invalid",
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
        ));
    };
    let force = ctx.query.flag("force")?;
    if !applied.is_object() {
        return Err(ApiError::bad_request(
            "error decoding apply patch: the configuration must be an object",
        ));
    }
    let applied_name = applied
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    if applied_name != ctx.name() {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({applied_name}) does not match the name on the URL ({})",
            ctx.name()
        )));
    }
    if let Some(ns) = applied
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
    {
        if res.namespaced && !ns.is_empty() && ns != ctx.namespace() {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
    }
    ctx.track = false;
    let sub = ctx.req.subresource.clone();
    let merge = |live: Option<&Value>| -> ApiResult<Value> {
        let now = crate::object::now_rfc3339();
        rkube_api::apply::apply_subresource(
            res.group,
            res.version,
            res.kind,
            sub.as_deref(),
            live,
            &applied,
            &manager,
            force,
            &now,
        )
        .map_err(|e| apply_error(res, ctx.name(), e))
    };
    let key = crate::object::key(res, ctx.namespace(), ctx.name());
    let exists = super::read::find(&ctx, &key, 0).await?.is_some();
    let (obj, created) = if !exists && sub.is_none() {
        let mut obj = merge(None)?;
        super::check_object(&ctx, &mut obj, res.kind, &res.api_version())?;
        match super::write::create_object(&ctx, obj, dry).await {
            Ok(o) => (o, true),
            // Created meanwhile: apply to it instead.
            Err(e) if e.code == 409 && e.reason == "AlreadyExists" => (
                guaranteed_update(&ctx, dry, None, |cur| with_rv(merge(Some(cur))?), None)
                    .await?
                    .0,
                false,
            ),
            Err(e) => return Err(e),
        }
    } else {
        (
            guaranteed_update(&ctx, dry, None, |cur| with_rv(merge(Some(cur))?), None)
                .await?
                .0,
            false,
        )
    };
    let code = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(respond(code, output, &obj))
}

/// The applied result carries no resourceVersion precondition of its own.
fn with_rv(mut obj: Value) -> ApiResult<Value> {
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
    }
    Ok(obj)
}

fn apply_error(
    res: &rkube_api::ResourceInfo,
    name: &str,
    e: rkube_api::apply::ApplyError,
) -> ApiError {
    use rkube_api::apply::ApplyError;
    match e {
        ApplyError::Conflicts(conflicts) => {
            let message = ApplyError::Conflicts(conflicts.clone()).message();
            let mut err = ApiError::new(409, "Conflict", message);
            err.name = Some(name.to_string());
            err.group = Some(res.group.to_string());
            err.kind = Some(res.plural.to_string());
            err.causes = conflicts
                .iter()
                .map(|c| crate::status::Cause {
                    reason: "FieldManagerConflict".into(),
                    message: c.cause_message(),
                    field: c.field.clone(),
                })
                .collect();
            err
        }
        // Malformed configurations are the client's mistake: 400 (upstream says 500 for
        // some of them).
        other => ApiError::bad_request(other.message()),
    }
}
