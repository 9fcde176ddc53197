//! Request handlers: one dispatcher that maps method and path to a verb, and one module per
//! group of verbs.

mod bootstrap;
pub(crate) use bootstrap::bootstrap;
mod connect;
mod delete;
mod eviction;
mod list;
mod patch;
mod read;
mod review;
mod subresource;
mod token;
mod watch;
mod write;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method};
use serde_json::Value;

use crate::authn::{Authenticated, User};
use crate::codec;
use crate::discovery;
use crate::request::{parse_path, Query, ResourceRequest, Target};
use crate::server::ApiServer;
use crate::status::{ApiError, ApiResult, MAX_REQUEST_BODY_BYTES};

/// Everything a resource handler gets.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub server: Arc<ApiServer>,
    pub req: ResourceRequest,
    pub query: Query,
    pub headers: HeaderMap,
    /// Who sent the request.
    pub user: User,
    /// Warnings for the response's `Warning` headers, from admission; shared so `dispatch`
    /// still holds them after the handler has consumed the context.
    pub warnings: Arc<parking_lot::Mutex<Vec<String>>>,
    /// Audit annotations admission plugins recorded (`pod-security.kubernetes.io/...`), for
    /// the request's audit event; shared like `warnings`, so the audit stage can hold a clone
    /// past the handler.
    pub audit_annotations: Arc<parking_lot::Mutex<Vec<(String, String)>>>,
    /// Whether writes record managed fields as an `Update` by [`Ctx::field_manager`]; off for
    /// server-side apply, which records its own.
    pub track: bool,
    /// The request path and raw query, as sent (for proxying).
    pub path: String,
    pub raw_query: Option<String>,
    /// The connection's pending upgrade, when the request asks for one (exec, attach,
    /// port-forward, proxy).
    pub upgrade: Option<hyper::upgrade::OnUpgrade>,
}

impl Ctx {
    pub fn namespace(&self) -> &str {
        self.req.namespace.as_deref().unwrap_or("")
    }

    pub fn name(&self) -> &str {
        self.req.name.as_deref().unwrap_or("")
    }

    /// The `fieldManager` query parameter, or upstream's default derived from the User-Agent.
    pub fn field_manager(&self) -> String {
        match self.query.get("fieldManager") {
            Some(m) => m.to_string(),
            None => {
                let ua = self
                    .headers
                    .get(http::header::USER_AGENT)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                rkube_api::apply::manager_from_user_agent(ua)
            }
        }
    }

    /// Records `new`'s changed fields as owned by this request's manager.
    pub fn track_update(&self, old: Option<&Value>, new: Value) -> Value {
        if !self.track {
            return new;
        }
        let res = self.req.resource;
        let now = crate::object::now_rfc3339();
        match rkube_api::apply::track_update_subresource(
            res.group,
            res.version,
            res.kind,
            self.req.subresource.as_deref(),
            old,
            &new,
            &self.field_manager(),
            &now,
        ) {
            Ok(tracked) => tracked,
            // Upstream keeps the write and drops the bookkeeping it could not do.
            Err(_) => new,
        }
    }
}

pub(crate) async fn dispatch(server: Arc<ApiServer>, req: Request<Body>) -> Response {
    let (mut parts, body) = req.into_parts();
    let target = match parse_path(parts.uri.path()) {
        None => return ApiError::not_found_path().into_response(),
        Some(Err(e)) => return e.into_response(),
        Some(Ok(t)) => t,
    };
    let is_get = parts.method == Method::GET || parts.method == Method::HEAD;
    match target {
        Target::CoreVersions if is_get => {
            discovery::root(true, &parts.headers, &server.config.server_address)
        }
        Target::Groups if is_get => {
            discovery::root(false, &parts.headers, &server.config.server_address)
        }
        Target::Group(g) if is_get => discovery::group_response(&g),
        Target::GroupVersion { group, version } if is_get => {
            discovery::resource_list_response(&group, &version)
        }
        Target::Resource(rr) => {
            let query = match Query::parse(parts.uri.query()) {
                Ok(q) => q,
                Err(e) => return e.into_response(),
            };
            let started = std::time::Instant::now();
            let labels = request_labels(&rr, &parts.method, &query);
            let user = parts
                .extensions
                .get::<Authenticated>()
                .map(|a| a.0.clone())
                .unwrap_or_else(crate::authn::anonymous);
            // Upstream's max-in-flight filter: long-running watches and system:masters are
            // exempt.
            let privileged = user.groups.iter().any(|g| g == "system:masters");
            let long_running = matches!(labels.verb.as_str(), "WATCH" | "CONNECT");
            let _permit = if long_running || privileged {
                None
            } else {
                let sem = if matches!(labels.verb.as_str(), "GET" | "LIST") {
                    &server.readonly_inflight
                } else {
                    &server.mutating_inflight
                };
                match sem.clone().try_acquire_owned() {
                    Ok(p) => Some(p),
                    Err(_) => {
                        let resp = ApiError::too_many_requests(
                            "Too many requests, please try again later.",
                        )
                        .into_response();
                        server.metrics.observe(labels, 429, started.elapsed());
                        return resp;
                    }
                }
            };
            let metrics_server = server.clone();
            let ctx = Ctx {
                server,
                req: rr,
                query,
                headers: parts.headers,
                user,
                warnings: Default::default(),
                audit_annotations: Default::default(),
                track: true,
                path: parts.uri.path().to_string(),
                raw_query: parts.uri.query().map(str::to_string),
                upgrade: parts.extensions.remove::<hyper::upgrade::OnUpgrade>(),
            };
            let warnings = ctx.warnings.clone();
            let mut resp = match resource(ctx, parts.method, body).await {
                Ok(r) => r,
                Err(e) => e.into_response(),
            };
            // Admission's warnings go on every response, refusals included, as upstream's
            // warning recorder writes them; a repeated warning is sent once.
            let mut admission_warnings = std::mem::take(&mut *warnings.lock());
            let mut seen = std::collections::HashSet::new();
            admission_warnings.retain(|w| seen.insert(w.clone()));
            add_warnings(&mut resp, &admission_warnings);
            metrics_server
                .metrics
                .observe(labels, resp.status().as_u16(), started.elapsed());
            resp
        }
        _ => ApiError::method_not_allowed().into_response(),
    }
}

/// The labels upstream's request metrics carry: the verb as upstream names it (LIST, WATCH,
/// GET, POST, PUT, PATCH, APPLY, DELETE, DELETECOLLECTION) and the resource's coordinates.
fn request_labels(
    rr: &ResourceRequest,
    method: &Method,
    query: &Query,
) -> crate::metrics::DurationLabels {
    let watching = rr.watch_path || query.flag("watch").unwrap_or(false);
    let connect = rr.name.is_some()
        && matches!(
            rr.subresource.as_deref(),
            Some("log" | "exec" | "attach" | "portforward" | "proxy")
        );
    let verb = match (method.as_str(), rr.name.is_some()) {
        _ if connect => "CONNECT",
        ("GET" | "HEAD", _) if watching => "WATCH",
        ("GET" | "HEAD", false) => "LIST",
        ("GET" | "HEAD", true) => "GET",
        ("DELETE", false) => "DELETECOLLECTION",
        (m, _) => m,
    };
    let scope = match (&rr.name, &rr.namespace) {
        (Some(_), _) => "resource",
        (None, Some(_)) => "namespace",
        (None, None) => "cluster",
    };
    crate::metrics::DurationLabels {
        verb: verb.to_string(),
        group: rr.resource.group.to_string(),
        version: rr.resource.version.to_string(),
        resource: rr.resource.plural.to_string(),
        subresource: rr.subresource.clone().unwrap_or_default(),
        scope: scope.to_string(),
        component: "apiserver".to_string(),
    }
}

fn require_verb(ctx: &Ctx, verb: &str) -> ApiResult<()> {
    let allowed = match &ctx.req.subresource {
        None => ctx.req.resource.has_verb(verb),
        Some(sub) => ctx
            .req
            .resource
            .subresource(sub)
            .is_some_and(|s| s.verbs.contains(&verb)),
    };
    if allowed {
        Ok(())
    } else {
        Err(ApiError::method_not_allowed())
    }
}

async fn resource(ctx: Ctx, method: Method, body: Body) -> ApiResult<Response> {
    let has_name = ctx.req.name.is_some();
    let sub = ctx.req.subresource.clone();
    let is_read = method == Method::GET || method == Method::HEAD;
    if ctx.req.resource.namespaced && ctx.req.namespace.is_none() && (has_name || !is_read) {
        // Namespaced objects are only listed and watched across namespaces.
        return Err(ApiError::not_found_path());
    }
    match (method.as_str(), has_name, sub.as_deref()) {
        (_, true, Some("log" | "exec" | "attach" | "portforward" | "proxy")) => {
            connect::connect(ctx, method, body).await
        }
        ("GET" | "HEAD", false, None) => {
            if ctx.req.watch_path || ctx.query.flag("watch")? {
                require_verb(&ctx, "watch")?;
                watch::watch(ctx).await
            } else {
                require_verb(&ctx, "list")?;
                list::list(ctx).await
            }
        }
        ("GET" | "HEAD", true, _) if ctx.req.watch_path || ctx.query.flag("watch")? => {
            require_verb(&ctx, "watch")?;
            watch::watch(ctx).await
        }
        ("GET" | "HEAD", true, None | Some("status") | Some("approval")) => {
            require_verb(&ctx, "get")?;
            read::get(ctx).await
        }
        ("GET" | "HEAD", true, Some("scale")) => subresource::get_scale(ctx).await,
        ("POST", false, None) => {
            require_verb(&ctx, "create")?;
            let body = read_body(body).await?;
            if ctx.req.resource.is_stored() {
                write::create(ctx, body).await
            } else {
                review::create(ctx, body).await
            }
        }
        ("POST", true, Some("token")) if ctx.req.resource.kind == "ServiceAccount" => {
            let body = read_body(body).await?;
            token::create(ctx, body).await
        }
        ("POST", true, Some("binding")) => {
            let body = read_body(body).await?;
            subresource::bind(ctx, body).await
        }
        ("POST", true, Some("eviction")) => {
            let body = read_body(body).await?;
            eviction::evict(ctx, body).await
        }
        ("PUT", true, None | Some("status") | Some("finalize") | Some("approval")) => {
            require_verb(&ctx, "update")?;
            let body = read_body(body).await?;
            write::update(ctx, body).await
        }
        ("PUT", true, Some("scale")) => {
            let body = read_body(body).await?;
            subresource::put_scale(ctx, body).await
        }
        ("PATCH", true, None | Some("status") | Some("scale") | Some("approval")) => {
            require_verb(&ctx, "patch")?;
            let body = read_body(body).await?;
            patch::patch(ctx, body).await
        }
        ("DELETE", true, None) => {
            require_verb(&ctx, "delete")?;
            let body = read_body(body).await?;
            delete::delete(ctx, body).await
        }
        ("DELETE", false, None) => {
            require_verb(&ctx, "deletecollection")?;
            let body = read_body(body).await?;
            delete::delete_collection(ctx, body).await
        }
        (_, true, Some(sub)) if ctx.req.resource.subresource(sub).is_some() => Err(ApiError::new(
            405,
            "MethodNotAllowed",
            format!("the {sub} subresource is not served by this server yet"),
        )),
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// Reads a body of at most 3 MiB; a larger one is 413.
async fn read_body(body: Body) -> ApiResult<bytes::Bytes> {
    axum::body::to_bytes(body, MAX_REQUEST_BODY_BYTES)
        .await
        .map_err(|e| {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.to_string().contains("length limit"))
                || e.to_string().contains("length limit");
            if too_large {
                ApiError::too_large()
            } else {
                ApiError::bad_request(format!("error reading request body: {e}"))
            }
        })
}

/// Decodes an object body and checks it against the URL: the kind and apiVersion must be the
/// resource's (filled in when absent), the namespace must match the path's.
pub(crate) fn decode_object(ctx: &Ctx, body: &[u8]) -> ApiResult<Value> {
    let ct = codec::content_type(&ctx.headers);
    let mut obj = codec::decode_body(&ct, body)?;
    check_object(
        ctx,
        &mut obj,
        ctx.req.resource.kind,
        &ctx.req.resource.api_version(),
    )?;
    Ok(obj)
}

pub(crate) fn check_object(
    ctx: &Ctx,
    obj: &mut Value,
    kind: &str,
    api_version: &str,
) -> ApiResult<()> {
    let map = obj
        .as_object_mut()
        .ok_or_else(|| ApiError::bad_request("the body of the request must be a JSON object"))?;
    match map.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("apiVersion".into(), Value::String(api_version.to_string()));
        }
        Some(v) if v == api_version => {}
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({api_version})"
            )))
        }
    }
    match map.get("kind").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("kind".into(), Value::String(kind.to_string()));
        }
        Some(k) if k == kind => {}
        Some(k) => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({kind})"
            )))
        }
    }
    let meta = crate::object::meta_mut(obj)?;
    if ctx.req.resource.namespaced {
        let path_ns = ctx.namespace();
        match meta.get("namespace").and_then(Value::as_str) {
            None | Some("") => {
                meta.insert("namespace".into(), Value::String(path_ns.to_string()));
            }
            Some(ns) if ns == path_ns => {}
            Some(_) => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ))
            }
        }
    } else {
        meta.remove("namespace");
    }
    Ok(())
}

/// Applies `fieldValidation` to a create or update body: returns the warnings to send
/// (`Warn`), or fails the request (`Strict`).
pub(crate) fn field_validation(ctx: &Ctx, body: &[u8]) -> ApiResult<Vec<String>> {
    let mode = ctx.query.field_validation()?;
    if mode == crate::request::FieldValidation::Ignore {
        return Ok(Vec::new());
    }
    let res = ctx.req.resource;
    let ct = codec::content_type(&ctx.headers);
    let json;
    let body = if ct.contains("yaml") {
        json = serde_json::to_vec(&codec::decode_yaml(body)?).unwrap_or_default();
        &json[..]
    } else {
        body
    };
    let problems = rkube_api::schema::strict_problems(res.group, res.version, res.kind, body);
    match mode {
        crate::request::FieldValidation::Strict if !problems.is_empty() => {
            Err(ApiError::bad_request(format!(
                "{kind} in version \"{v}\" cannot be handled as a {kind}: {msg}",
                kind = res.kind,
                v = res.version,
                msg = rkube_api::schema::strict_error_message(&problems)
            )))
        }
        crate::request::FieldValidation::Strict => Ok(Vec::new()),
        _ => Ok(problems),
    }
}

/// Adds `Warning: 299 - "..."` headers, as upstream sends warnings.
pub(crate) fn add_warnings(resp: &mut Response, warnings: &[String]) {
    for w in warnings {
        let escaped = w.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(v) = http::HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
            resp.headers_mut().append(http::header::WARNING, v);
        }
    }
}

/// The namespaces every cluster has, which the API server creates at start (upstream's
/// system-namespaces controller).
pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

/// A context for the API server's own writes, as `system:apiserver`.
pub(crate) fn internal_ctx(
    server: &Arc<ApiServer>,
    resource: &'static rkube_api::ResourceInfo,
    namespace: Option<&str>,
    name: &str,
) -> Ctx {
    Ctx {
        server: server.clone(),
        req: ResourceRequest {
            resource,
            namespace: namespace.map(str::to_string),
            name: Some(name.to_string()),
            subresource: None,
            watch_path: false,
        },
        query: Query::default(),
        headers: HeaderMap::new(),
        user: crate::authn::apiserver_user(),
        warnings: Default::default(),
        audit_annotations: Default::default(),
        track: true,
        path: String::new(),
        raw_query: None,
        upgrade: None,
    }
}

/// Creates `obj` unless an object of that name exists.
async fn create_if_missing(
    server: &Arc<ApiServer>,
    group: &str,
    plural: &str,
    obj: Value,
) -> ApiResult<()> {
    let Some(res) = crate::server::stored_resource(group, plural) else {
        return Ok(());
    };
    let ns = obj.pointer("/metadata/namespace").and_then(Value::as_str);
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let ctx = internal_ctx(server, res, ns, &name);
    match write::create_object(&ctx, obj, false).await {
        Ok(_) => Ok(()),
        Err(e) if e.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}
