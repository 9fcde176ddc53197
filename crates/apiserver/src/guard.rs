//! The filter every request passes before a handler: authenticate, then authorize, as
//! upstream's handler chain does. The user rides on in the request's extensions.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::authn::{self, Authenticated};
use crate::authz::{self, Decision};
use crate::server::ApiServer;

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
    let attrs = authz::attributes(user.clone(), info);
    if let Decision::Deny { reason } = authz::authorize(&server, &attrs) {
        return authz::forbidden(&attrs, &reason).into_response();
    }
    parts.extensions.insert(Authenticated(user));
    next.run(Request::from_parts(parts, body)).await
}
