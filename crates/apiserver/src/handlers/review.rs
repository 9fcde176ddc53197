//! The reviews: create-only resources that are answered and never stored. TokenReview and
//! SelfSubjectReview (authentication.k8s.io/v1) say who a token or the caller is;
//! SubjectAccessReview, LocalSubjectAccessReview and SelfSubjectAccessReview
//! (authorization.k8s.io/v1) ask the authorizer; SelfSubjectRulesReview lists what the
//! caller may do in a namespace (`kubectl auth can-i --list`).

use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;
use rkube_api::FieldError;
use serde_json::{json, Map, Value};

use super::{decode_object, Ctx};
use crate::authn::User;
use crate::authz::{self, Attributes, Decision};
use crate::codec::{negotiate, respond};
use crate::status::{ApiError, ApiResult};

pub(crate) async fn create(ctx: Ctx, body: Bytes) -> ApiResult<Response> {
    let output = negotiate(&ctx.headers)?;
    let mut obj = decode_object(&ctx, &body)?;
    let res = ctx.req.resource;
    rkube_api::schema::prune(res.group, res.version, res.kind, &mut obj)
        .map_err(ApiError::bad_request)?;
    let status = match res.kind {
        "TokenReview" => token_review(&ctx, &obj)?,
        "SelfSubjectReview" => json!({"userInfo": user_info(&ctx.user)}),
        "SubjectAccessReview" => subject_access_review(&ctx, &obj)?,
        "LocalSubjectAccessReview" => local_subject_access_review(&ctx, &mut obj)?,
        "SelfSubjectAccessReview" => self_subject_access_review(&ctx, &obj)?,
        "SelfSubjectRulesReview" => self_subject_rules_review(&ctx, &obj),
        _ => return Err(ApiError::method_not_allowed()),
    };
    let Some(o) = obj.as_object_mut() else {
        return Err(ApiError::bad_request("the body is not an object"));
    };
    let meta = o.entry("metadata").or_insert_with(|| json!({}));
    if let Some(m) = meta.as_object_mut() {
        m.insert("creationTimestamp".into(), Value::Null);
    }
    o.insert("status".into(), status);
    Ok(respond(StatusCode::CREATED, output, &obj))
}

fn user_info(user: &User) -> Value {
    let mut info = Map::new();
    info.insert("username".into(), json!(user.name));
    if !user.uid.is_empty() {
        info.insert("uid".into(), json!(user.uid));
    }
    if !user.groups.is_empty() {
        info.insert("groups".into(), json!(user.groups));
    }
    if !user.extra.is_empty() {
        info.insert("extra".into(), json!(user.extra));
    }
    Value::Object(info)
}

fn invalid(ctx: &Ctx, field: &str, value: &str, why: &str) -> ApiError {
    let path = rkube_api::FieldPath::new(field);
    ApiError::invalid(
        ctx.req.resource,
        "",
        &[FieldError::invalid(&path, json!(value), why)],
    )
}

fn token_review(ctx: &Ctx, obj: &Value) -> ApiResult<Value> {
    let token = obj
        .pointer("/spec/token")
        .and_then(Value::as_str)
        .unwrap_or("");
    if token.is_empty() {
        return Err(ApiError::invalid(
            ctx.req.resource,
            "",
            &[FieldError::required(
                &rkube_api::FieldPath::new("spec.token"),
                "",
            )],
        ));
    }
    let audiences: Vec<String> = obj
        .pointer("/spec/audiences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Ok(
        match crate::authn::authenticate_token(&ctx.server, token, &audiences) {
            Some((user, auds)) => json!({
                "authenticated": true,
                "user": user_info(&user),
                "audiences": auds,
            }),
            None => json!({"user": {}, "error": "[invalid bearer token, token lookup failed]"}),
        },
    )
}

/// `spec.resourceAttributes` or `spec.nonResourceAttributes` (exactly one) as attributes.
fn attributes(ctx: &Ctx, spec: &Value, user: User) -> ApiResult<Attributes> {
    let ra = spec.get("resourceAttributes").filter(|v| !v.is_null());
    let nra = spec.get("nonResourceAttributes").filter(|v| !v.is_null());
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    match (ra, nra) {
        (Some(ra), None) => Ok(Attributes {
            user,
            verb: s(ra, "verb"),
            resource_request: true,
            api_group: s(ra, "group"),
            api_version: s(ra, "version"),
            resource: s(ra, "resource"),
            subresource: s(ra, "subresource"),
            namespace: s(ra, "namespace"),
            name: s(ra, "name"),
            path: String::new(),
            field_selector: None,
        }),
        (None, Some(nra)) => Ok(Attributes {
            user,
            verb: s(nra, "verb"),
            resource_request: false,
            path: s(nra, "path"),
            ..Attributes::default()
        }),
        (Some(_), Some(_)) => Err(invalid(
            ctx,
            "spec.nonResourceAttributes",
            "",
            "cannot be specified in combination with resourceAttributes",
        )),
        (None, None) => Err(invalid(
            ctx,
            "spec.resourceAttributes",
            "",
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        )),
    }
}

fn decision_status(server: &crate::server::ApiServer, attrs: &Attributes) -> Value {
    match authz::authorize(server, attrs) {
        Decision::Allow { reason } => json!({"allowed": true, "reason": reason}),
        Decision::Deny { reason } => {
            let mut st = json!({"allowed": false});
            if !reason.is_empty() {
                st["reason"] = json!(reason);
            }
            st
        }
    }
}

/// The user a SubjectAccessReview names.
fn spec_user(spec: &Value) -> User {
    let strings = |k: &str| -> Vec<String> {
        spec.get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let extra = spec
        .get("extra")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let vals = v
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|x| x.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default();
                    (k.clone(), vals)
                })
                .collect()
        })
        .unwrap_or_default();
    User {
        name: spec
            .get("user")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        uid: spec
            .get("uid")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        groups: strings("groups"),
        extra,
    }
}

fn subject_access_review(ctx: &Ctx, obj: &Value) -> ApiResult<Value> {
    let spec = obj.get("spec").cloned().unwrap_or_else(|| json!({}));
    let user = spec_user(&spec);
    if user.name.is_empty() && user.groups.is_empty() {
        return Err(invalid(
            ctx,
            "spec.user",
            "",
            "at least one of user or group must be specified",
        ));
    }
    let attrs = attributes(ctx, &spec, user)?;
    Ok(decision_status(&ctx.server, &attrs))
}

fn local_subject_access_review(ctx: &Ctx, obj: &mut Value) -> ApiResult<Value> {
    let ns = ctx.namespace().to_string();
    let given = obj
        .pointer("/spec/resourceAttributes/namespace")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if obj.pointer("/spec/resourceAttributes").is_some() {
        if given.is_empty() {
            if let Some(ra) = obj
                .pointer_mut("/spec/resourceAttributes")
                .and_then(Value::as_object_mut)
            {
                ra.insert("namespace".into(), json!(ns));
            }
        } else if given != ns {
            return Err(ApiError::bad_request(format!(
                "spec.resourceAttributes.namespace must match namespace: {ns}"
            )));
        }
    }
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        m.insert("namespace".into(), json!(ns));
    }
    subject_access_review(ctx, obj)
}

fn self_subject_access_review(ctx: &Ctx, obj: &Value) -> ApiResult<Value> {
    let spec = obj.get("spec").cloned().unwrap_or_else(|| json!({}));
    let attrs = attributes(ctx, &spec, ctx.user.clone())?;
    Ok(decision_status(&ctx.server, &attrs))
}

fn self_subject_rules_review(ctx: &Ctx, obj: &Value) -> Value {
    let ns = obj
        .pointer("/spec/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    let review = authz::rules_review(&ctx.server, &ctx.user, ns);
    let mut st = json!({
        "resourceRules": review.resource_rules,
        "nonResourceRules": review.non_resource_rules,
        "incomplete": review.incomplete,
    });
    if !review.errors.is_empty() {
        st["evaluationError"] = json!(review.errors.join(", "));
    }
    st
}
