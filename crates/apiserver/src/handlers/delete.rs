//! `delete` and `deletecollection`: preconditions, graceful deletion (pods), finalizers and
//! the propagation policy, recorded as the `orphan` and `foregroundDeletion` finalizers for
//! the garbage collector.

use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;
use rkube_store::TxnRequest;
use serde_json::{json, Value};

use super::read::find;
use super::Ctx;
use crate::codec::{self, negotiate, respond, Output};
use crate::filter::Filter;
use crate::object;
use crate::status::{ApiError, ApiResult};
use crate::strategy;

/// DeleteOptions from the body and the query.
#[derive(Debug, Default, Clone)]
pub(crate) struct DeleteOptions {
    pub grace: Option<i64>,
    pub propagation: Option<String>,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    pub dry_run: bool,
}

impl DeleteOptions {
    pub(crate) fn parse(ctx: &Ctx, body: &[u8]) -> ApiResult<Self> {
        let mut o = DeleteOptions {
            dry_run: ctx.query.dry_run()?,
            ..Default::default()
        };
        o.grace = ctx.query.int("gracePeriodSeconds")?;
        o.propagation = ctx.query.get("propagationPolicy").map(str::to_string);
        if let Some(orphan) = ctx.query.get("orphanDependents") {
            if o.propagation.is_none() {
                o.propagation = Some(
                    if orphan == "true" {
                        "Orphan"
                    } else {
                        "Background"
                    }
                    .into(),
                );
            }
        }
        if !body.iter().all(u8::is_ascii_whitespace) {
            let ct = codec::content_type(&ctx.headers);
            let v = codec::decode_body(&ct, body)?;
            o.merge_body(&v)?;
        }
        match o.propagation.as_deref() {
            None | Some("Orphan" | "Background" | "Foreground") => {}
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "propagationPolicy: Unsupported value: {other:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""
                )))
            }
        }
        Ok(o)
    }

    fn merge_body(&mut self, v: &Value) -> ApiResult<()> {
        if !v.is_object() {
            return Err(ApiError::bad_request("DeleteOptions must be a JSON object"));
        }
        if let Some(kind) = v.get("kind").and_then(Value::as_str) {
            if kind != "DeleteOptions" {
                return Err(ApiError::bad_request(format!(
                    "the kind in the data ({kind}) does not match the expected kind (DeleteOptions)"
                )));
            }
        }
        if let Some(g) = v.get("gracePeriodSeconds") {
            self.grace =
                Some(g.as_i64().ok_or_else(|| {
                    ApiError::bad_request("gracePeriodSeconds must be an integer")
                })?);
        }
        if let Some(p) = v.get("propagationPolicy").and_then(Value::as_str) {
            self.propagation = Some(p.to_string());
        } else if let Some(o) = v.get("orphanDependents").and_then(Value::as_bool) {
            self.propagation = Some(if o { "Orphan" } else { "Background" }.into());
        }
        if let Some(p) = v.get("preconditions") {
            self.uid = p.get("uid").and_then(Value::as_str).map(str::to_string);
            self.resource_version = p
                .get("resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_string);
        }
        if let Some(d) = v.get("dryRun").and_then(Value::as_array) {
            for x in d {
                match x.as_str() {
                    Some("All") => self.dry_run = true,
                    other => {
                        return Err(ApiError::bad_request(format!(
                            "Invalid dry run value: {other:?}: supported values: \"All\""
                        )))
                    }
                }
            }
        }
        Ok(())
    }
}

/// Resources whose delete answers with the object rather than a `Status` (upstream's
/// `ReturnDeletedObject`).
fn returns_deleted_object(res: &rkube_api::ResourceInfo) -> bool {
    matches!(
        (res.group, res.kind),
        ("", "Pod" | "Service" | "ServiceAccount" | "Namespace")
            | ("storage.k8s.io", "StorageClass")
    )
}

pub(crate) async fn delete(ctx: Ctx, body: Bytes) -> ApiResult<Response> {
    let output = negotiate(&ctx.headers)?;
    let opts = DeleteOptions::parse(&ctx, &body)?;
    let key = object::key(ctx.req.resource, ctx.namespace(), ctx.name());
    let (obj, deleted) = delete_key(&ctx, &key, &opts).await?;
    let res = ctx.req.resource;
    if deleted && !returns_deleted_object(res) {
        let status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {
                "name": object::name(&obj),
                "group": res.group,
                "kind": res.plural,
                "uid": obj.pointer("/metadata/uid").cloned().unwrap_or(Value::Null),
            },
        });
        return Ok(respond(StatusCode::OK, output_json(output), &status));
    }
    let obj = crate::convert::to_version(res, obj)?;
    Ok(respond(StatusCode::OK, output_json(output), &obj))
}

fn output_json(o: Output) -> Output {
    match o {
        Output::Table => Output::Json,
        other => other,
    }
}

/// Deletes one object, or marks it for deletion. Returns the object and whether it is gone.
async fn delete_key(ctx: &Ctx, key: &str, opts: &DeleteOptions) -> ApiResult<(Value, bool)> {
    let res = ctx.req.resource;
    loop {
        let Some((mut obj, rev)) = find(ctx, key, 0).await? else {
            let name = key.rsplit('/').next().unwrap_or("");
            return Err(ApiError::not_found(res, name));
        };
        let name = object::name(&obj).to_string();
        if let Some(uid) = &opts.uid {
            let have = obj
                .pointer("/metadata/uid")
                .and_then(Value::as_str)
                .unwrap_or("");
            if uid != have {
                return Err(ApiError::conflict(
                    res,
                    &name,
                    &format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {have}"),
                ));
            }
        }
        if let Some(rv) = &opts.resource_version {
            if *rv != rev.to_string() {
                return Err(ApiError::conflict(
                    res,
                    &name,
                    &format!("Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in meta: {rev}"),
                ));
            }
        }
        crate::admission::admit_delete(ctx, &obj, opts.dry_run).await?;
        let before = obj.clone();
        let grace = strategy::delete_grace(res, &obj, opts.grace);
        let mut finalizers: Vec<Value> = obj
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let policy_finalizer = match opts.propagation.as_deref() {
            Some("Orphan") => Some("orphan"),
            Some("Foreground") => Some("foregroundDeletion"),
            _ => None,
        };
        if let Some(f) = policy_finalizer {
            finalizers.retain(|x| x != "orphan" && x != "foregroundDeletion");
            finalizers.push(json!(f));
        } else if opts.propagation.as_deref() == Some("Background") {
            finalizers.retain(|x| x != "orphan" && x != "foregroundDeletion");
        }
        let namespace_pending = res.group.is_empty()
            && res.kind == "Namespace"
            && obj
                .pointer("/spec/finalizers")
                .and_then(Value::as_array)
                .is_some_and(|f| !f.is_empty());
        let already = obj.pointer("/metadata/deletionTimestamp").is_some();
        let pending = !finalizers.is_empty() || grace.is_some() || namespace_pending;
        if !pending {
            if opts.dry_run {
                return Ok((obj, true));
            }
            let resp = ctx
                .server
                .store
                .txn(TxnRequest::delete(key.to_string(), rev))
                .await?;
            if resp.succeeded {
                object::set_resource_version(&mut obj, resp.header_revision);
                return Ok((obj, true));
            }
            continue;
        }
        // Mark for deletion: the finalizers' owners, or the kubelet, finish it.
        let meta = object::meta_mut(&mut obj)?;
        let grace_secs = grace.unwrap_or(0);
        let current_grace = meta
            .get("deletionGracePeriodSeconds")
            .and_then(Value::as_i64);
        if !already || current_grace.is_some_and(|g| grace_secs < g) {
            let at = jiff::Timestamp::now()
                .checked_add(jiff::SignedDuration::from_secs(grace_secs))
                .unwrap_or_else(|_| jiff::Timestamp::now());
            let at = jiff::Timestamp::from_second(at.as_second()).unwrap_or(at);
            meta.insert("deletionTimestamp".into(), json!(at.to_string()));
            meta.insert("deletionGracePeriodSeconds".into(), json!(grace_secs));
            if !already {
                if let Some(g) = meta
                    .get("generation")
                    .and_then(Value::as_i64)
                    .filter(|g| *g > 0)
                {
                    meta.insert("generation".into(), json!(g + 1));
                }
            }
        }
        meta.insert("finalizers".into(), Value::Array(finalizers));
        if meta
            .get("finalizers")
            .and_then(Value::as_array)
            .is_some_and(Vec::is_empty)
        {
            meta.remove("finalizers");
        }
        if namespace_pending {
            if let Some(status) = obj.get_mut("status").and_then(Value::as_object_mut) {
                status.insert("phase".into(), json!("Terminating"));
            }
        }
        if obj == before || opts.dry_run {
            return Ok((obj, false));
        }
        let resp = ctx
            .server
            .store
            .txn(TxnRequest::update(
                key.to_string(),
                rev,
                ctx.server.codec.encode(key, &obj)?,
            ))
            .await?;
        if resp.succeeded {
            object::set_resource_version(&mut obj, resp.header_revision);
            return Ok((obj, false));
        }
    }
}

pub(crate) async fn delete_collection(ctx: Ctx, body: Bytes) -> ApiResult<Response> {
    let output = negotiate(&ctx.headers)?;
    let opts = DeleteOptions::parse(&ctx, &body)?;
    let res = ctx.req.resource;
    let filter = Filter::from_query(res, ctx.req.namespace.as_deref(), &ctx.query)?;
    let current = ctx.server.store.current_revision().await?;
    let cache = ctx.server.cache(res);
    cache.wait_for(current).await?;
    let prefix = object::prefix(res, ctx.req.namespace.as_deref());
    let snap = cache.snapshot(&prefix, &|o| filter.matches(&o.value));
    let mut items = Vec::new();
    for o in snap.objects {
        match delete_key(&ctx, &o.key, &opts).await {
            Ok((obj, _)) => items.push(crate::convert::to_version(res, obj)?),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    let list = json!({
        "kind": format!("{}List", res.kind),
        "apiVersion": res.api_version(),
        "metadata": {"resourceVersion": snap.revision.to_string()},
        "items": items,
    });
    Ok(respond(StatusCode::OK, output_json(output), &list))
}
