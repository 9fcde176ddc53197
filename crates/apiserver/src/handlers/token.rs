//! TokenRequest (`POST .../serviceaccounts/<name>/token`): a bound service-account token
//! with the requested audiences and lifetime, optionally bound to a pod, secret or node
//! whose deletion revokes it.

use std::time::Duration;

use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;
use rkube_api::{FieldError, FieldPath};
use serde_json::{json, Value};

use super::Ctx;
use crate::codec::{negotiate, respond};
use crate::sa_token::{self, BoundObject};
use crate::status::{ApiError, ApiResult};

pub(crate) async fn create(ctx: Ctx, body: Bytes) -> ApiResult<Response> {
    let output = negotiate(&ctx.headers)?;
    let Some(tokens) = ctx.server.security.service_accounts.as_ref() else {
        return Err(ApiError::not_found_path());
    };
    let sa_res = ctx.req.resource;
    let ct = crate::codec::content_type(&ctx.headers);
    let mut obj = crate::codec::decode_body(&ct, &body)?;
    rkube_api::schema::prune("authentication.k8s.io", "v1", "TokenRequest", &mut obj)
        .map_err(ApiError::bad_request)?;
    let ns = ctx.namespace().to_string();
    let sa_name = ctx.name().to_string();
    let Some(sa) = ctx
        .server
        .read_object("", "serviceaccounts", &ns, &sa_name)
        .await?
    else {
        return Err(ApiError::not_found(sa_res, &sa_name));
    };
    let sa_uid = crate::object::meta_str(&sa, "uid")
        .unwrap_or("")
        .to_string();
    let spec = obj.get("spec").cloned().unwrap_or_else(|| json!({}));
    let mut audiences: Vec<String> = spec
        .get("audiences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if audiences.is_empty() {
        audiences = tokens.api_audiences.clone();
    }
    let seconds = spec
        .get("expirationSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(3600);
    let invalid = |field: &str, value: Value, why: &str| {
        let mut e = ApiError::invalid(
            sa_res,
            &sa_name,
            &[FieldError::invalid(&FieldPath::new(field), value, why)],
        );
        e.kind = Some("TokenRequest".into());
        e.group = Some("authentication.k8s.io".into());
        e
    };
    if u64::try_from(seconds).map_or(true, |s| s < sa_token::MIN_EXPIRATION.as_secs()) {
        return Err(invalid(
            "spec.expirationSeconds",
            json!(seconds),
            "may not specify a duration less than 10 minutes",
        ));
    }
    if seconds > 1 << 32 {
        return Err(invalid(
            "spec.expirationSeconds",
            json!(seconds),
            "may not specify a duration larger than 2^32 seconds",
        ));
    }
    let mut bound = None;
    let mut node = None;
    if let Some(r) = spec.get("boundObjectRef").filter(|v| !v.is_null()) {
        let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let kind = s("kind");
        let (plural, namespaced) = match kind.as_str() {
            "Pod" => ("pods", true),
            "Secret" => ("secrets", true),
            "Node" => ("nodes", false),
            other => {
                return Err(invalid(
                    "spec.boundObjectRef.kind",
                    json!(other),
                    "supported values: \"Node\", \"Pod\", \"Secret\"",
                ))
            }
        };
        let name = s("name");
        let target_ns = if namespaced { ns.as_str() } else { "" };
        let Some(target) = ctx.server.read_object("", plural, target_ns, &name).await? else {
            return Err(ApiError::new(
                404,
                "NotFound",
                format!("{plural} \"{name}\" not found"),
            ));
        };
        let uid = crate::object::meta_str(&target, "uid")
            .unwrap_or("")
            .to_string();
        let want_uid = s("uid");
        if !want_uid.is_empty() && want_uid != uid {
            return Err(ApiError::conflict(
                sa_res,
                &sa_name,
                &format!("the UID in the bound object reference ({want_uid}) does not match the UID in record. The object might have been deleted and then recreated"),
            ));
        }
        if kind == "Pod" {
            if let Some(pod_sa) = target
                .pointer("/spec/serviceAccountName")
                .and_then(Value::as_str)
            {
                if pod_sa != sa_name {
                    return Err(ApiError::bad_request(format!(
                        "cannot issue token for ServiceAccount {sa_name} bound to Pod {name}: the pod runs as ServiceAccount {pod_sa}"
                    )));
                }
            }
            // Upstream also records the node the pod runs on.
            if let Some(node_name) = target.pointer("/spec/nodeName").and_then(Value::as_str) {
                if let Some(n) = ctx.server.read_object("", "nodes", "", node_name).await? {
                    node = Some(BoundObject {
                        kind: "Node".into(),
                        name: node_name.to_string(),
                        uid: crate::object::meta_str(&n, "uid").unwrap_or("").to_string(),
                    });
                }
            }
        }
        bound = Some(BoundObject { kind, name, uid });
    }
    let now = jiff::Timestamp::now().as_second();
    let expiration = Duration::from_secs(u64::try_from(seconds).unwrap_or(3600));
    let claims = tokens.bound_claims(
        &ns,
        &sa_name,
        &sa_uid,
        &audiences,
        expiration,
        bound.as_ref(),
        node.as_ref(),
        now,
    );
    let token = tokens
        .sign(&claims)
        .ok_or_else(|| ApiError::internal("signing the token failed"))?;
    let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(now);
    let exp_ts = jiff::Timestamp::from_second(exp)
        .map(|t| t.to_string())
        .unwrap_or_default();
    let mut spec_out = spec.clone();
    spec_out["audiences"] = json!(audiences);
    spec_out["expirationSeconds"] = json!(seconds);
    let out = json!({
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": sa_name, "namespace": ns, "creationTimestamp": Value::Null},
        "spec": spec_out,
        "status": {"token": token, "expirationTimestamp": exp_ts},
    });
    Ok(respond(StatusCode::CREATED, output, &out))
}
