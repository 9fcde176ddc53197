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
