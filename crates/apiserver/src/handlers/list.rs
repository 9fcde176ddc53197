//! `list`: from the watch cache, or, for paginated and exact-revision lists, from the store
//! at one revision so that every page belongs to the same snapshot.

use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::{BufMut, BytesMut};
use http::{header, StatusCode};
use rkube_api::ResourceInfo;
use rkube_store::{KeyRange, RangeRequest};
use serde_json::{json, Value};

use super::Ctx;
use crate::codec::{negotiate, respond, Output};
use crate::filter::Filter;
use crate::object;
use crate::status::{ApiError, ApiResult};
use crate::tables;

/// A continue token: the revision of the first page and the key to resume at.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    v: String,
    rv: i64,
    start: String,
}

fn encode_continue(rv: i64, start: &str) -> String {
    let token = ContinueToken {
        v: "meta.k8s.io/v1".into(),
        rv,
        start: start.into(),
    };
    let json = serde_json::to_vec(&token).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE.encode(json)
}

fn decode_continue(token: &str) -> ApiResult<ContinueToken> {
    let bad = || {
        ApiError::bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
    };
    let raw = base64::engine::general_purpose::URL_SAFE
        .decode(token)
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(token))
        .map_err(|_| bad())?;
    let t: ContinueToken = serde_json::from_slice(&raw).map_err(|_| bad())?;
    if t.v != "meta.k8s.io/v1" || t.rv <= 0 || t.start.contains("..") {
        return Err(bad());
    }
    Ok(t)
}

/// The list's kind, e.g. `PodList`.
fn list_kind(res: &ResourceInfo) -> String {
    format!("{}List", res.kind)
}

pub(crate) async fn list(ctx: Ctx) -> ApiResult<Response> {
    let output = negotiate(&ctx.headers)?;
    let res = ctx.req.resource;
    let filter = Filter::from_query(res, ctx.req.namespace.as_deref(), &ctx.query)?;
    let limit = ctx.query.int("limit")?.filter(|l| *l > 0);
    let continue_token = ctx.query.get("continue");
    let rv = ctx.query.get("resourceVersion");
    let rv_match = ctx.query.get("resourceVersionMatch");
    match (rv_match, rv) {
        (Some(_), None) => {
            return Err(ApiError::bad_request(
                "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",
            ))
        }
        (Some("Exact"), Some("0")) => {
            return Err(ApiError::bad_request(
                "resourceVersionMatch: Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
            ))
        }
        (Some("Exact" | "NotOlderThan") | None, _) => {}
        (Some(other), _) => {
            return Err(ApiError::bad_request(format!(
                "resourceVersionMatch: Unsupported value: {other:?}: supported values: \"Exact\", \"NotOlderThan\""
            )))
        }
    }
    if continue_token.is_some() && rv.is_some_and(|v| v != "0") {
        return Err(ApiError::bad_request(
            "specifying resource version is not allowed when using continue",
        ));
    }

    let prefix = object::prefix(res, ctx.req.namespace.as_deref());
    let page = if let Some(token) = continue_token {
        let t = decode_continue(token)?;
        store_page(
            &ctx,
            &filter,
            &prefix,
            t.rv,
            &format!("{prefix}{}", t.start),
            limit,
        )
        .await?
    } else if rv_match == Some("Exact") {
        let rev = object::parse_resource_version(rv.unwrap_or("0"))?;
        store_page(&ctx, &filter, &prefix, rev, &prefix, limit).await?
    } else if limit.is_some() && rv != Some("0") {
        let rev = match rv {
            None => ctx.server.store.current_revision().await?,
            Some(v) => {
                let want = object::parse_resource_version(v)?;
                let cache = ctx.server.cache(res);
                cache.wait_for(want).await?;
                cache.revision().max(want)
            }
        };
        store_page(&ctx, &filter, &prefix, rev, &prefix, limit).await?
    } else {
        cache_page(&ctx, &filter, &prefix, rv).await?
    };

    let mut meta = json!({"resourceVersion": page.revision.to_string()});
    if let Some(c) = &page.continue_token {
        meta["continue"] = json!(c);
        if let Some(n) = page.remaining {
            meta["remainingItemCount"] = json!(n);
        }
    }
    let needs_conversion = page.items.iter().any(|i| i.needs_conversion(res));
    match output {
        Output::Json if !needs_conversion => Ok(raw_list(res, &meta, &page.items)),
        Output::Table => {
            let objs = page.values(res)?;
            let t = tables::table(res, &objs, &ctx.query, Some(meta))?;
            Ok(respond(StatusCode::OK, Output::Json, &t))
        }
        Output::Metadata(p) if !p.list => Err(crate::codec::wrong_partial_shape(p)),
        Output::Metadata(p) => {
            let objs = page.values(res)?;
            Ok(respond(StatusCode::OK, Output::Json, &p.list(&meta, &objs)))
        }
        other => {
            let objs = page.values(res)?;
            let list = json!({
                "kind": list_kind(res),
                "apiVersion": res.api_version(),
                "metadata": meta,
                "items": objs,
            });
            Ok(respond(StatusCode::OK, other, &list))
        }
    }
}

/// One item: encoded JSON ready to send, and the value.
pub(crate) enum Item {
    Cached(std::sync::Arc<crate::watch_cache::CachedObject>),
    Loaded(Value),
}

impl Item {
    fn value(&self) -> &Value {
        match self {
            Item::Cached(c) => &c.value,
            Item::Loaded(v) => v,
        }
    }

    fn needs_conversion(&self, res: &ResourceInfo) -> bool {
        self.value()
            .get("apiVersion")
            .and_then(Value::as_str)
            .is_some_and(|v| v != res.api_version())
    }
}

pub(crate) struct Page {
    revision: i64,
    items: Vec<Item>,
    continue_token: Option<String>,
    remaining: Option<i64>,
}

impl Page {
    fn values(&self, res: &ResourceInfo) -> ApiResult<Vec<Value>> {
        self.items
            .iter()
            .map(|i| crate::convert::to_version(res, i.value().clone()))
            .collect()
    }
}

/// Writes the list's JSON around the items' cached encodings, without re-encoding them.
fn raw_list(res: &ResourceInfo, meta: &Value, items: &[Item]) -> Response {
    let mut buf = BytesMut::with_capacity(64 + items.len() * 512);
    buf.put_slice(b"{\"kind\":");
    buf.put_slice(json!(list_kind(res)).to_string().as_bytes());
    buf.put_slice(b",\"apiVersion\":");
    buf.put_slice(json!(res.api_version()).to_string().as_bytes());
    buf.put_slice(b",\"metadata\":");
    buf.put_slice(meta.to_string().as_bytes());
    buf.put_slice(b",\"items\":[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            buf.put_u8(b',');
        }
        match item {
            Item::Cached(c) => buf.put_slice(&c.json),
            Item::Loaded(v) => buf.put_slice(&serde_json::to_vec(v).unwrap_or_default()),
        }
    }
    buf.put_slice(b"]}");
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        buf.freeze(),
    )
        .into_response()
}

async fn cache_page(ctx: &Ctx, filter: &Filter, prefix: &str, rv: Option<&str>) -> ApiResult<Page> {
    let cache = ctx.server.cache(ctx.req.resource);
    match rv {
        // The most recent state: a consistent read, as upstream serves it from the cache once
        // the cache has caught up; a cache that lags (a busy machine) does not fail the list,
        // it is read from the store at that revision instead, as upstream falls back.
        None => {
            let current = ctx.server.store.current_revision().await?;
            if cache.wait_for(current).await.is_err() {
                return store_page(ctx, filter, prefix, current, prefix, None).await;
            }
        }
        Some("0") => {}
        Some(v) => cache.wait_for(object::parse_resource_version(v)?).await?,
    }
    let snap = cache.snapshot(prefix, &|o| filter.matches(&o.value));
    Ok(Page {
        revision: snap.revision,
        items: snap.objects.into_iter().map(Item::Cached).collect(),
        continue_token: None,
        remaining: None,
    })
}

/// A page read from the store at `revision`, starting at key `start`, of at most `limit`
/// matching objects.
async fn store_page(
    ctx: &Ctx,
    filter: &Filter,
    prefix: &str,
    revision: i64,
    start: &str,
    limit: Option<i64>,
) -> ApiResult<Page> {
    let end = rkube_store::prefix_end(prefix.as_bytes());
    let mut from = start.as_bytes().to_vec();
    let mut items = Vec::new();
    let want = limit.unwrap_or(i64::MAX);
    // Fetch a little more than asked, so a selective filter needs fewer round trips.
    let chunk = limit.map_or(0, |l| (l + 1).max(64));
    loop {
        let req = RangeRequest::new(KeyRange::range(from.clone(), end.clone()))
            .at_revision(revision)
            .with_limit(chunk);
        let resp = ctx.server.store.range(req).await.map_err(|e| match e {
            rkube_store::StoreError::Compacted { .. } => ApiError::expired(
                "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
            ),
            other => ApiError::from_store(other),
        })?;
        let n = resp.kvs.len();
        let mut last_key: Option<Vec<u8>> = None;
        for kv in resp.kvs {
            if items.len() as i64 >= want {
                // One more object exists past the page: it starts the next one.
                let next = String::from_utf8_lossy(&kv.key).into_owned();
                let rest = next.strip_prefix(prefix).unwrap_or(&next).to_string();
                let remaining = if filter.has_selectors() {
                    None
                } else {
                    count_from(ctx, &kv.key, &end, revision).await.ok()
                };
                return Ok(Page {
                    revision,
                    items,
                    continue_token: Some(encode_continue(revision, &rest)),
                    remaining,
                });
            }
            let key = String::from_utf8_lossy(&kv.key);
            let obj = ctx.server.codec.decode(&key, &kv.value, kv.mod_revision)?;
            if filter.matches(&obj) {
                items.push(Item::Loaded(obj));
            }
            last_key = Some(kv.key);
        }
        match last_key {
            Some(k) if resp.more && n > 0 => {
                from = k;
                from.push(0);
            }
            _ => {
                return Ok(Page {
                    revision,
                    items,
                    continue_token: None,
                    remaining: None,
                })
            }
        }
    }
}

async fn count_from(ctx: &Ctx, from: &[u8], end: &[u8], revision: i64) -> ApiResult<i64> {
    let req = RangeRequest::new(KeyRange::range(from.to_vec(), end.to_vec()))
        .at_revision(revision)
        .count_only();
    Ok(ctx.server.store.range(req).await?.count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip_and_reject_garbage() {
        let t = decode_continue(&encode_continue(42, "default/web")).expect("token");
        assert_eq!((t.rv, t.start.as_str()), (42, "default/web"));
        assert_eq!(
            decode_continue("not-a-token")
                .map(|_| ())
                .expect_err("bad")
                .code,
            400
        );
    }
}
