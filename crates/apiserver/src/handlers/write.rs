//! `create` and `update`, and the guaranteed-update loop that updates, patches and
//! subresource writes share: read, change, write with a compare on the revision read, retry
//! on a race unless the client gave a resourceVersion precondition.

use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;
use rkube_store::{TxnOpResponse, TxnRequest};
use serde_json::{json, Value};

use super::read::find;
use super::{decode_object, Ctx};
use crate::admission;
use crate::codec::{negotiate, respond};
use crate::object;
use crate::status::{ApiError, ApiResult};
use crate::strategy;

/// How often `generateName` picks a new name after a collision.
const GENERATE_NAME_TRIES: usize = 8;

pub(crate) async fn create(ctx: Ctx, body: Bytes) -> ApiResult<Response> {
    let output = negotiate(&ctx.headers)?;
    let dry = ctx.query.dry_run()?;
    let warnings = super::field_validation(&ctx, &body)?;
    let obj = decode_object(&ctx, &body)?;
    let created = create_object(&ctx, obj, dry).await?;
    let mut resp = respond(StatusCode::CREATED, output, &created);
    super::add_warnings(&mut resp, &warnings);
    Ok(resp)
}

/// Creates an object: names it, stamps the system fields, admits it and stores it.
pub(crate) async fn create_object(ctx: &Ctx, mut obj: Value, dry: bool) -> ApiResult<Value> {
    let res = ctx.req.resource;
    let meta = object::meta_mut(&mut obj)?;
    if meta
        .get("resourceVersion")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty())
    {
        return Err(ApiError::bad_request(
            "resourceVersion should not be set on objects to be created",
        ));
    }
    let generate = meta
        .get("generateName")
        .and_then(Value::as_str)
        .filter(|g| !g.is_empty())
        .map(str::to_string);
    let named = meta
        .get("name")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    meta.insert("uid".into(), json!(object::new_uid()));
    meta.insert("creationTimestamp".into(), json!(object::now_rfc3339()));
    meta.remove("deletionTimestamp");
    for attempt in 0..GENERATE_NAME_TRIES {
        if let (false, Some(prefix)) = (named, &generate) {
            let name = format!("{prefix}{}", object::random_suffix());
            object::meta_mut(&mut obj)?.insert("name".into(), json!(name));
        }
        let mut candidate = obj.clone();
        admission::admit_create(ctx, &mut candidate, dry).await?;
        let mut candidate = ctx.track_update(None, candidate);
        let name = object::name(&candidate).to_string();
        let key = object::key(res, object::namespace(&candidate), &name);
        if dry {
            if find(ctx, &key, 0).await?.is_some() {
                return Err(ApiError::already_exists(res, &name));
            }
            return Ok(candidate);
        }
        let stored = crate::convert::storage_form(res, &candidate)?;
        let value = ctx.server.codec.encode(&key, &stored)?;
        drop(stored);
        let resp = ctx
            .server
            .store
            .txn(TxnRequest::create(key.clone(), value))
            .await?;
        if resp.succeeded {
            object::set_resource_version(&mut candidate, resp.header_revision);
            return Ok(candidate);
        }
        if named || generate.is_none() || attempt + 1 == GENERATE_NAME_TRIES {
            return Err(ApiError::already_exists(res, &name));
        }
    }
    Err(ApiError::already_exists(res, object::name(&obj)))
}

pub(crate) async fn update(ctx: Ctx, body: Bytes) -> ApiResult<Response> {
    let output = negotiate(&ctx.headers)?;
    let dry = ctx.query.dry_run()?;
    let warnings = super::field_validation(&ctx, &body)?;
    let obj = decode_object(&ctx, &body)?;
    let body_name = object::name(&obj);
    if !body_name.is_empty() && body_name != ctx.name() {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({})",
            ctx.name()
        )));
    }
    let precondition = obj
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let res = ctx.req.resource;
    if precondition.is_none() && !strategy::allow_unconditional_update(res) {
        let errs = [rkube_api::FieldError::invalid(
            &rkube_api::FieldPath::new("metadata").child("resourceVersion"),
            "",
            "must be specified for an update",
        )];
        return Err(ApiError::invalid(res, ctx.name(), &errs));
    }
    let (obj, created) = guaranteed_update(
        &ctx,
        dry,
        precondition.as_deref(),
        |_| Ok(obj.clone()),
        Some(&obj),
    )
    .await?;
    let code = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut resp = respond(code, output, &obj);
    super::add_warnings(&mut resp, &warnings);
    Ok(resp)
}

/// Parses a precondition resourceVersion; a malformed one can never match.
fn precondition_rev(res: &rkube_api::ResourceInfo, name: &str, rv: &str) -> ApiResult<i64> {
    object::parse_resource_version(rv).map_err(|_| {
        let errs = [rkube_api::FieldError::invalid(
            &rkube_api::FieldPath::new("metadata").child("resourceVersion"),
            rv,
            "must be a valid resource version",
        )];
        ApiError::invalid(res, name, &errs)
    })
}

/// Reads the object, applies `change` to it and writes the result if it differs, retrying on
/// a concurrent write unless `precondition` pins the revision. When the object is missing and
/// `create_with` is given (a PUT of a resource that allows create-on-update), creates that
/// instead. Returns the stored object and whether it was created.
pub(crate) async fn guaranteed_update(
    ctx: &Ctx,
    dry: bool,
    precondition: Option<&str>,
    change: impl Fn(&Value) -> ApiResult<Value>,
    create_with: Option<&Value>,
) -> ApiResult<(Value, bool)> {
    update_loop(ctx, dry, precondition, change, create_with, true).await
}

/// A write at the storage layer, as upstream's `pods/binding` does: `change` alone decides the
/// new object, with no admission, validation or managedFields entry. Returns the stored object.
pub(crate) async fn storage_update(
    ctx: &Ctx,
    dry: bool,
    change: impl Fn(&Value) -> ApiResult<Value>,
) -> ApiResult<Value> {
    Ok(update_loop(ctx, dry, None, change, None, false).await?.0)
}

async fn update_loop(
    ctx: &Ctx,
    dry: bool,
    precondition: Option<&str>,
    change: impl Fn(&Value) -> ApiResult<Value>,
    create_with: Option<&Value>,
    admit: bool,
) -> ApiResult<(Value, bool)> {
    let res = ctx.req.resource;
    let key = object::key(res, ctx.namespace(), ctx.name());
    let pinned = precondition
        .map(|rv| precondition_rev(res, ctx.name(), rv))
        .transpose()?;
    // A storage-level write's first attempt starts from the watch cache's copy, as upstream's
    // cacher passes its object to the store's GuaranteedUpdate: that copy may be stale, so
    // only a write that the store accepts at its revision settles on it; any other outcome (an
    // error, a no-op, a conflict) is decided again from a fresh read. Writes through admission
    // always start from the store: admission has side effects (ResourceQuota charges the
    // quota) that must not be taken on a copy that may be stale.
    let mut cached = if admit {
        None
    } else {
        ctx.server.cache(res).get(&key)
    };
    loop {
        let from_cache = cached.is_some();
        let current = match cached.take() {
            Some(c) => Some((c.value.clone(), c.mod_revision)),
            None => find(ctx, &key, 0).await?,
        };
        // The change is made to (and admitted on) the request's version of the object.
        let current = match current {
            Some((old, rev)) => Some((crate::convert::for_change(res, old)?, rev)),
            None => None,
        };
        // Leaves the loop with `$e`, unless the decision rests on the cache's copy.
        macro_rules! settle {
            ($e:expr) => {{
                if from_cache {
                    continue;
                }
                return $e;
            }};
        }
        macro_rules! check {
            ($e:expr) => {
                match $e {
                    Ok(v) => v,
                    Err(e) => settle!(Err(e)),
                }
            };
        }
        let Some((old, rev)) = current else {
            if let (Some(obj), None, true) = (
                create_with,
                &ctx.req.subresource,
                strategy::allow_create_on_update(res),
            ) {
                if pinned.is_some() {
                    return Err(ApiError::not_found(res, ctx.name()));
                }
                let mut obj = obj.clone();
                if let Ok(m) = object::meta_mut(&mut obj) {
                    m.remove("resourceVersion");
                }
                return Ok((create_object(ctx, obj, dry).await?, true));
            }
            return Err(ApiError::not_found(res, ctx.name()));
        };
        if let Some(want) = pinned {
            if want != rev {
                settle!(Err(ApiError::stale(res, ctx.name())));
            }
        }
        let mut new = check!(change(&old));
        // A resourceVersion the change itself carries (a patch that sets it) is a precondition too.
        if let Some(rv) = new
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
        {
            if !rv.is_empty() && check!(precondition_rev(res, ctx.name(), rv)) != rev {
                settle!(Err(ApiError::stale(res, ctx.name())));
            }
        }
        if object::name(&new) != ctx.name() && !object::name(&new).is_empty() {
            settle!(Err(ApiError::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({})",
                object::name(&new),
                ctx.name()
            ))));
        }
        // An unconditional write updates the revision read, as upstream's store does.
        object::set_resource_version(&mut new, rev);
        check!(object::meta_mut(&mut new)).insert("name".into(), json!(ctx.name()));
        if res.namespaced {
            check!(object::meta_mut(&mut new)).insert("namespace".into(), json!(ctx.namespace()));
        }
        if admit {
            check!(admission::admit_update(ctx, &mut new, &old, dry).await);
        }
        if unchanged(&new, &old) {
            settle!(Ok((old, false)));
        }
        let mut new = if admit {
            ctx.track_update(Some(&old), new)
        } else {
            new
        };
        if dry {
            settle!({
                let mut new = new;
                object::set_resource_version(&mut new, rev);
                Ok((new, false))
            });
        }
        let deleting = should_delete_during_update(res, &new, &old);
        let txn = if deleting {
            TxnRequest::delete(key.clone(), rev)
        } else {
            let stored = crate::convert::storage_form(res, &new)?;
            TxnRequest::update(key.clone(), rev, ctx.server.codec.encode(&key, &stored)?)
        };
        let resp = ctx.server.store.txn(txn).await?;
        let written = resp.succeeded
            && (deleting
                || resp
                    .responses
                    .iter()
                    .any(|r| matches!(r, TxnOpResponse::Put { .. })));
        if written {
            object::set_resource_version(&mut new, resp.header_revision);
            return Ok((new, false));
        }
        if pinned.is_some() && !from_cache {
            return Err(ApiError::stale(res, ctx.name()));
        }
    }
}

/// Equal apart from the resourceVersion: nothing to write. Compares in place; objects are
/// large and this runs on every update.
fn unchanged(new: &Value, old: &Value) -> bool {
    let (Some(n), Some(o)) = (new.as_object(), old.as_object()) else {
        return new == old;
    };
    let meta_eq = |a: &Value, b: &Value| match (a.as_object(), b.as_object()) {
        (Some(a), Some(b)) => {
            let rv =
                |m: &serde_json::Map<String, Value>| usize::from(m.contains_key("resourceVersion"));
            a.len() - rv(a) == b.len() - rv(b)
                && a.iter()
                    .filter(|(k, _)| *k != "resourceVersion")
                    .all(|(k, v)| b.get(k) == Some(v))
        }
        _ => a == b,
    };
    n.len() == o.len()
        && n.iter().all(|(k, v)| match o.get(k) {
            Some(ov) if k == "metadata" => meta_eq(v, ov),
            Some(ov) => v == ov,
            None => false,
        })
}

/// An update that removes the last finalizer of an object already being deleted (with no
/// grace period left) deletes it, as upstream's `ShouldDeleteDuringUpdate`.
fn should_delete_during_update(res: &rkube_api::ResourceInfo, new: &Value, old: &Value) -> bool {
    // Upstream's `ShouldDeleteDuringUpdate`: no finalizers left on an object already being
    // deleted with no grace left; a namespace also needs its `spec.finalizers` empty
    // (`ShouldDeleteNamespaceDuringUpdate`), so the finalize subresource deletes it.
    let empty = |v: &Value, at: &str| {
        v.pointer(at)
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
    };
    let namespace = res.group.is_empty() && res.plural == "namespaces";
    empty(new, "/metadata/finalizers")
        && old.pointer("/metadata/deletionTimestamp").is_some()
        && old
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            .is_none_or(|g| g == 0)
        && (!namespace || empty(new, "/spec/finalizers"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_update_deletes_what_is_being_deleted_with_nothing_left_holding_it() {
        let res = |plural| rkube_api::catalogue::find("", "v1", plural).expect("served");
        let deleting = |grace: Option<i64>, finalizers: &[&str]| {
            let mut meta = json!({"name": "x", "deletionTimestamp": "2026-01-01T00:00:00Z",
                "finalizers": finalizers});
            if let Some(g) = grace {
                meta["deletionGracePeriodSeconds"] = json!(g);
            }
            json!({"metadata": meta})
        };
        let cm = res("configmaps");
        let cases = [
            (
                "last finalizer removed",
                deleting(Some(0), &["a"]),
                deleting(Some(0), &[]),
                true,
            ),
            (
                "a finalizer left",
                deleting(Some(0), &["a", "b"]),
                deleting(Some(0), &["b"]),
                false,
            ),
            (
                "no grace recorded",
                deleting(None, &["a"]),
                deleting(None, &[]),
                true,
            ),
            (
                "grace still running",
                deleting(Some(30), &["a"]),
                deleting(Some(30), &[]),
                false,
            ),
            (
                "not being deleted",
                json!({"metadata": {"name": "x", "finalizers": ["a"]}}),
                json!({"metadata": {"name": "x"}}),
                false,
            ),
        ];
        for (name, old, new, want) in cases {
            assert_eq!(should_delete_during_update(cm, &new, &old), want, "{name}");
        }
        let ns = res("namespaces");
        let held = |spec: &[&str]| {
            let mut v = deleting(Some(0), &[]);
            v["spec"] = json!({"finalizers": spec});
            v
        };
        assert!(!should_delete_during_update(
            ns,
            &held(&["kubernetes"]),
            &held(&["kubernetes"])
        ));
        assert!(should_delete_during_update(
            ns,
            &held(&[]),
            &held(&["kubernetes"])
        ));
    }

    #[test]
    fn only_a_resource_version_difference_is_unchanged() {
        let a = json!({"metadata": {"name": "x", "resourceVersion": "1"}, "data": {"k": "v"}});
        let b = json!({"metadata": {"name": "x", "resourceVersion": "2"}, "data": {"k": "v"}});
        let c = json!({"metadata": {"name": "x"}, "data": {"k": "w"}});
        let d = json!({"metadata": {"name": "x", "labels": {"l": "1"}}, "data": {"k": "v"}});
        assert!(unchanged(&a, &b));
        assert!(!unchanged(&a, &c));
        assert!(!unchanged(&d, &a));
    }
}
