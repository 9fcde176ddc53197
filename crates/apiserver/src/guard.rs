//! The filter every request passes before a handler: authenticate, audit, then authorize,
//! as upstream's handler chain does. The user rides on in the request's extensions.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::audit::{AuditAttributes, AuditEvent, AuditLog, Level, Stage};
use crate::authn::{self, Authenticated};
use crate::authz::{self, Attributes, Decision};
use crate::server::ApiServer;
use crate::status::MAX_REQUEST_BODY_BYTES;

/// The largest response body an audit event records in full.
const MAX_AUDITED_RESPONSE_BYTES: usize = 10 * 1024 * 1024;

/// The address a request came from, put in its extensions by the TLS acceptor.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub std::net::SocketAddr);

/// `--audit-policy-file` with `--audit-log-path`.
#[derive(Debug)]
pub struct Audit {
    pub policy: crate::audit::Policy,
    pub log: Arc<AuditLog>,
}

pub(crate) async fn guard(
    State(server): State<Arc<ApiServer>>,
    req: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = req.into_parts();
    let user = match authn::authenticate(&server, &parts) {
        Ok(u) => u,
        Err(e) => return e.into_response(),
    };
    let info = authz::request_info(&parts.method, parts.uri.path(), parts.uri.query());
    let mut attrs = authz::attributes(user.clone(), info);
    // The node authorizer lets a kubelet list and watch only with a `spec.nodeName` field
    // selector, so a list's selector is part of what is authorized.
    if let Some(selector) = parts.uri.query().and_then(field_selector) {
        attrs = attrs.with_field_selector(selector);
    }
    let mut audit = start_audit(&server, &parts, &attrs);
    let mut body = body;
    if let Some(a) = audit.as_mut() {
        if a.level >= Level::Request && matches!(parts.method.as_str(), "POST" | "PUT" | "PATCH") {
            // The handler reads the same bytes afterwards.
            let bytes = match axum::body::to_bytes(body, MAX_REQUEST_BODY_BYTES).await {
                Ok(b) => b,
                Err(_) => Bytes::new(),
            };
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) {
                a.event.set_request_object(&v, a.omit_managed_fields);
            }
            body = Body::from(bytes);
        }
    }
    let response = match authz::authorize(&server, &attrs) {
        Decision::Deny { reason } => authz::forbidden(&attrs, &reason).into_response(),
        Decision::Allow { .. } => {
            parts.extensions.insert(Authenticated(user));
            next.run(Request::from_parts(parts, body)).await
        }
    };
    match audit {
        Some(a) => a.finish(response, attrs.verb == "watch").await,
        None => response,
    }
}

/// The `fieldSelector` query parameter, parsed (an unparsable one is left to the handler,
/// which answers it with 400).
fn field_selector(query: &str) -> Option<rkube_api::selector::FieldSelector> {
    let value = serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == "fieldSelector")?
        .1;
    rkube_api::selector::FieldSelector::parse(&value).ok()
}

/// An audit event in progress.
struct Pending {
    log: Arc<AuditLog>,
    event: AuditEvent,
    level: Level,
    omitted: Vec<Stage>,
    omit_managed_fields: bool,
}

fn start_audit(
    server: &ApiServer,
    parts: &http::request::Parts,
    attrs: &Attributes,
) -> Option<Pending> {
    let audit = server.security.audit.as_ref()?;
    let aa = AuditAttributes {
        user: attrs.user.name.clone(),
        groups: attrs.user.groups.clone(),
        verb: attrs.verb.clone(),
        resource_request: attrs.resource_request,
        api_group: attrs.api_group.clone(),
        api_version: attrs.api_version.clone(),
        resource: attrs.resource.clone(),
        subresource: attrs.subresource.clone(),
        namespace: attrs.namespace.clone(),
        name: attrs.name.clone(),
        path: attrs.path.clone(),
    };
    let (level, omitted, omit_managed_fields) = audit.policy.evaluate(&aa);
    if level == Level::None {
        return None;
    }
    let uri = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let mut event = AuditEvent::new(level, &aa, &uri, jiff::Timestamp::now());
    event.user.uid = attrs.user.uid.clone();
    event.user.extra = attrs.user.extra.clone();
    if let Some(ua) = parts
        .headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
    {
        event.set_user_agent(ua);
    }
    if let Some(PeerAddr(addr)) = parts.extensions.get::<PeerAddr>() {
        event.source_ips = vec![addr.ip().to_string()];
    }
    let pending = Pending {
        log: audit.log.clone(),
        event,
        level,
        omitted,
        omit_managed_fields,
    };
    pending.emit(Stage::RequestReceived);
    Some(pending)
}

impl Pending {
    fn emit(&self, stage: Stage) {
        if !self.omitted.contains(&stage) {
            self.log
                .log(self.event.at_stage(stage, jiff::Timestamp::now()));
        }
    }

    async fn finish(mut self, response: Response, long_running: bool) -> Response {
        let code = response.status().as_u16();
        if long_running && response.status().is_success() {
            // A watch's event is complete when its stream ends.
            self.event
                .set_response(code, None, self.omit_managed_fields);
            self.emit(Stage::ResponseStarted);
            let (parts, body) = response.into_parts();
            let body = Body::new(AuditOnEnd {
                inner: body,
                pending: Some(self),
            });
            return Response::from_parts(parts, body);
        }
        let json_body = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/json"));
        let wants_body = self.level >= Level::RequestResponse || !response.status().is_success();
        if wants_body && json_body {
            let (parts, body) = response.into_parts();
            let bytes = match axum::body::to_bytes(body, MAX_AUDITED_RESPONSE_BYTES).await {
                Ok(b) => b,
                Err(_) => Bytes::new(),
            };
            let value = serde_json::from_slice::<serde_json::Value>(&bytes).ok();
            self.event
                .set_response(code, value.as_ref(), self.omit_managed_fields);
            self.emit(Stage::ResponseComplete);
            return Response::from_parts(parts, Body::from(bytes));
        }
        self.event
            .set_response(code, None, self.omit_managed_fields);
        self.emit(Stage::ResponseComplete);
        response
    }
}

/// A response body that logs the ResponseComplete stage when it ends or is dropped.
struct AuditOnEnd {
    inner: Body,
    pending: Option<Pending>,
}

impl Drop for AuditOnEnd {
    fn drop(&mut self) {
        if let Some(p) = self.pending.take() {
            p.emit(Stage::ResponseComplete);
        }
    }
}

impl http_body::Body for AuditOnEnd {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
