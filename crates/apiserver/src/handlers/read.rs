//! `get`: one object, from the store (a consistent read) or, for `resourceVersion=0`, from
//! the watch cache.

use axum::response::Response;
use http::StatusCode;
use serde_json::Value;

use super::Ctx;
use crate::codec::{negotiate, respond, Output};
use crate::object;
use crate::status::{ApiError, ApiResult};
use crate::tables;

pub(crate) async fn get(ctx: Ctx) -> ApiResult<Response> {
    let output = negotiate(&ctx.headers)?;
    let obj = match ctx.query.get("resourceVersion") {
        Some("0") => {
            let key = object::key(ctx.req.resource, ctx.namespace(), ctx.name());
            ctx.server
                .cache(ctx.req.resource)
                .get(&key)
                .map(|o| o.value.clone())
                .ok_or_else(|| ApiError::not_found(ctx.req.resource, ctx.name()))?
        }
        Some(rv) => {
            let rev = object::parse_resource_version(rv)?;
            let (obj, _) = load_at(&ctx, rev).await?;
            obj
        }
        None => load(&ctx).await?.0,
    };
    let obj = crate::convert::to_version(ctx.req.resource, obj)?;
    Ok(match output {
        Output::Table => {
            let table = tables::table(
                ctx.req.resource,
                std::slice::from_ref(&obj),
                &ctx.query,
                None,
            )?;
            respond(StatusCode::OK, Output::Json, &table)
        }
        Output::Metadata(p) if p.list => return Err(crate::codec::wrong_partial_shape(p)),
        other => respond(StatusCode::OK, other, &obj),
    })
}

/// Reads the object the request names from the store: its value and mod revision.
pub(crate) async fn load(ctx: &Ctx) -> ApiResult<(Value, i64)> {
    load_at(ctx, 0).await
}

async fn load_at(ctx: &Ctx, revision: i64) -> ApiResult<(Value, i64)> {
    let key = object::key(ctx.req.resource, ctx.namespace(), ctx.name());
    find(ctx, &key, revision)
        .await?
        .ok_or_else(|| ApiError::not_found(ctx.req.resource, ctx.name()))
}

/// Reads a key from the store at a revision (0 for the latest).
pub(crate) async fn find(ctx: &Ctx, key: &str, revision: i64) -> ApiResult<Option<(Value, i64)>> {
    ctx.server.read_key(key, revision).await
}
