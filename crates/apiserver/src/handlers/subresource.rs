//! Subresources with their own object: `scale` (autoscaling/v1 Scale over a workload's
//! replicas) and `binding` (assigning a pod to a node); `eviction` is in `eviction.rs`.

use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;
use serde_json::{json, Value};

use super::patch::{apply_patch, PatchType};
use super::read::load;
use super::write::{guaranteed_update, storage_update};
use super::{check_object, Ctx};
use crate::codec::{self, negotiate, respond};
use crate::object;
use crate::status::{ApiError, ApiResult};

/// The `Scale` view of a workload.
fn scale_of(obj: &Value) -> Value {
    let meta = obj.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let pick = |f: &str| meta.get(f).cloned().unwrap_or(Value::Null);
    let mut m = json!({
        "name": pick("name"),
        "namespace": pick("namespace"),
        "uid": pick("uid"),
        "resourceVersion": pick("resourceVersion"),
        "creationTimestamp": pick("creationTimestamp"),
    });
    if let Some(map) = m.as_object_mut() {
        map.retain(|_, v| !v.is_null());
    }
    let replicas = obj
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let status_replicas = obj
        .pointer("/status/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let selector = obj
        .pointer("/spec/selector")
        .map(selector_string)
        .unwrap_or_default();
    let mut status = json!({"replicas": status_replicas});
    if !selector.is_empty() {
        status["selector"] = json!(selector);
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": m,
        "spec": {"replicas": replicas},
        "status": status,
    })
}

/// A selector in the query-string syntax: a LabelSelector, or for ReplicationControllers a
/// plain map.
fn selector_string(sel: &Value) -> String {
    use rkube_api::selector::LabelSelector;
    let typed = if sel.get("matchLabels").is_some() || sel.get("matchExpressions").is_some() {
        serde_json::from_value(sel.clone())
            .ok()
            .and_then(|s| LabelSelector::from_typed(Some(&s)).ok())
    } else {
        serde_json::from_value(sel.clone())
            .ok()
            .map(|m| LabelSelector::from_set(&m))
    };
    typed.map(|s| s.to_string()).unwrap_or_default()
}

pub(crate) async fn get_scale(ctx: Ctx) -> ApiResult<Response> {
    let output = negotiate(&ctx.headers)?;
    let (obj, _) = load(&ctx).await?;
    Ok(respond(StatusCode::OK, output, &scale_of(&obj)))
}

pub(crate) async fn put_scale(ctx: Ctx, body: Bytes) -> ApiResult<Response> {
    let output = negotiate(&ctx.headers)?;
    let dry = ctx.query.dry_run()?;
    let ct = codec::content_type(&ctx.headers);
    let mut scale = codec::decode_body(&ct, &body)?;
    check_object(&ctx, &mut scale, "Scale", "autoscaling/v1")?;
    write_scale(ctx, scale, dry, output).await
}

pub(crate) async fn patch_scale(
    ctx: Ctx,
    kind: PatchType,
    patch: &Value,
    dry: bool,
) -> ApiResult<Response> {
    let output = negotiate(&ctx.headers)?;
    let (obj, _) = load(&ctx).await?;
    let mut scale = apply_patch(kind, patch, &scale_of(&obj), "autoscaling", "v1", "Scale")?;
    if patch.pointer("/metadata/resourceVersion").is_none() {
        if let Some(m) = scale.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
        }
    }
    write_scale(ctx, scale, dry, output).await
}

async fn write_scale(
    ctx: Ctx,
    scale: Value,
    dry: bool,
    output: crate::codec::Output,
) -> ApiResult<Response> {
    let res = ctx.req.resource;
    let replicas = match scale.pointer("/spec/replicas") {
        None => 0,
        Some(v) => v
            .as_i64()
            .filter(|r| *r >= 0 && *r <= i64::from(i32::MAX))
            .ok_or_else(|| {
                let errs = [rkube_api::FieldError::invalid(
                    &rkube_api::FieldPath::new("spec").child("replicas"),
                    v.clone(),
                    "must be greater than or equal to 0",
                )];
                ApiError::invalid(
                    &rkube_api::ResourceInfo {
                        kind: "Scale",
                        group: "autoscaling",
                        ..*res
                    },
                    ctx.name(),
                    &errs,
                )
            })?,
    };
    let precondition = scale
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let (obj, _) = guaranteed_update(
        &ctx,
        dry,
        precondition.as_deref(),
        |cur| {
            let mut new = cur.clone();
            if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
                spec.insert("replicas".into(), json!(replicas));
            }
            if let Some(m) = new.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("resourceVersion");
            }
            Ok(new)
        },
        None,
    )
    .await?;
    Ok(respond(StatusCode::OK, output, &scale_of(&obj)))
}

fn success(code: u16) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": code})
}

pub(crate) async fn bind(ctx: Ctx, body: Bytes) -> ApiResult<Response> {
    let dry = ctx.query.dry_run()?;
    let ct = codec::content_type(&ctx.headers);
    let mut binding = codec::decode_body(&ct, &body)?;
    check_object(&ctx, &mut binding, "Binding", "v1")?;
    let node = binding
        .pointer("/target/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if node.is_empty() {
        let errs = [rkube_api::FieldError::required(
            &rkube_api::FieldPath::new("target").child("name"),
            "",
        )];
        let res = rkube_api::ResourceInfo {
            kind: "Binding",
            ..*ctx.req.resource
        };
        return Err(ApiError::invalid(&res, ctx.name(), &errs));
    }
    let name = ctx.name().to_string();
    let res = ctx.req.resource;
    let annotations = binding.pointer("/metadata/annotations").cloned();
    let uid_pre = binding
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .map(str::to_string);
    // Upstream binds at the storage layer: no pod update admission and no managedFields entry.
    storage_update(&ctx, dry, |cur| {
        if let Some(uid) = &uid_pre {
            if cur.pointer("/metadata/uid").and_then(Value::as_str) != Some(uid) {
                return Err(ApiError::conflict(
                    res,
                    &name,
                    "Precondition failed: UID in precondition does not match",
                ));
            }
        }
        if cur.pointer("/metadata/deletionTimestamp").is_some() {
            return Err(ApiError::conflict(
                res,
                &name,
                &format!("pod {name} is being deleted, cannot be assigned to a host"),
            ));
        }
        let assigned = cur
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !assigned.is_empty() {
            return Err(ApiError::conflict(
                res,
                &name,
                &format!("pod {name} is already assigned to node \"{assigned}\""),
            ));
        }
        let mut new = cur.clone();
        if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
            spec.insert("nodeName".into(), json!(node));
        }
        if let Some(Value::Object(a)) = &annotations {
            let meta = object::meta_mut(&mut new)?;
            let entry = meta.entry("annotations").or_insert_with(|| json!({}));
            if let Some(existing) = entry.as_object_mut() {
                for (k, v) in a {
                    existing.insert(k.clone(), v.clone());
                }
            }
        }
        set_condition(&mut new, "PodScheduled", "True");
        if let Some(m) = new.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
        }
        Ok(new)
    })
    .await?;
    Ok(crate::codec::json_response(
        StatusCode::CREATED,
        &success(201),
    ))
}

/// Sets a pod condition's status, adding it if missing.
fn set_condition(pod: &mut Value, kind: &str, status: &str) {
    let now = object::now_rfc3339();
    let Some(obj) = pod.as_object_mut() else {
        return;
    };
    let st = obj.entry("status").or_insert_with(|| json!({}));
    let Some(st) = st.as_object_mut() else { return };
    let conds = st.entry("conditions").or_insert_with(|| json!([]));
    let Some(conds) = conds.as_array_mut() else {
        return;
    };
    match conds.iter_mut().find(|c| c.get("type").and_then(Value::as_str) == Some(kind)) {
        Some(c) => {
            if c.get("status").and_then(Value::as_str) != Some(status) {
                c["status"] = json!(status);
                c["lastTransitionTime"] = json!(now);
            }
        }
        None => conds.push(json!({"type": kind, "status": status, "lastProbeTime": null, "lastTransitionTime": now})),
    }
}
