//! Authentication: who sent a request.
//!
//! Authenticators are tried in upstream's order: the in-process transport's identity (for
//! components inside `rkube server`), the TLS client certificate (CN is the user, O the
//! groups), then a bearer token (static token file, bootstrap token, service-account JWT).
//! A request with no credentials is `system:anonymous` only on the health and version
//! endpoints; anywhere else, and with a bad credential anywhere, it gets 401.

pub mod bootstrap;
pub mod token_file;

use http::request::Parts;

pub use crate::authz::User;
use crate::server::ApiServer;
use crate::status::ApiError;

pub const AUTHENTICATED: &str = "system:authenticated";
pub const UNAUTHENTICATED: &str = "system:unauthenticated";
pub const ANONYMOUS: &str = "system:anonymous";
pub const MASTERS: &str = "system:masters";

/// The identity a connection's verified client certificate gives, put in each request's
/// extensions by the TLS acceptor.
#[derive(Debug, Clone)]
pub struct PeerIdentity(pub Option<User>);

/// The identity of a component calling through the in-process transport.
#[derive(Debug, Clone)]
pub struct InProcessIdentity(pub User);

/// The authenticated user, put in each request's extensions for the handlers.
#[derive(Debug, Clone)]
pub struct Authenticated(pub User);

/// Paths an anonymous request may reach, as upstream's default leaves open to
/// `system:public-info-viewer`.
pub fn anonymous_path_allowed(path: &str) -> bool {
    ["/healthz", "/livez", "/readyz"]
        .iter()
        .any(|p| path == *p || path.strip_prefix(p).is_some_and(|r| r.starts_with('/')))
        || path == "/version"
        || path == "/version/"
}

/// The configured authenticators.
#[derive(Debug, Default)]
pub struct Authenticator {
    pub token_file: Option<token_file::TokenFile>,
    /// `--insecure-dev`: a request without credentials acts as a cluster admin.
    pub insecure: bool,
}

/// The identity of a request without credentials.
pub fn anonymous() -> User {
    User {
        name: ANONYMOUS.to_string(),
        groups: vec![UNAUTHENTICATED.to_string()],
        ..User::default()
    }
}

/// The API server's own identity, for what it writes itself (upstream's loopback client).
pub fn apiserver_user() -> User {
    User {
        name: "system:apiserver".to_string(),
        groups: vec![MASTERS.to_string(), AUTHENTICATED.to_string()],
        ..User::default()
    }
}

/// The identity `--insecure-dev` gives unauthenticated requests.
pub fn insecure_admin() -> User {
    User {
        name: "system:admin".to_string(),
        groups: vec![MASTERS.to_string(), AUTHENTICATED.to_string()],
        ..User::default()
    }
}

/// The 401 upstream answers.
pub fn unauthorized() -> ApiError {
    ApiError::new(401, "Unauthorized", "Unauthorized")
}

/// Authenticates a request, or says why not with a 401.
pub fn authenticate(server: &ApiServer, parts: &Parts) -> Result<User, ApiError> {
    if let Some(InProcessIdentity(user)) = parts.extensions.get::<InProcessIdentity>() {
        return Ok(user.clone());
    }
    if let Some(PeerIdentity(Some(user))) = parts.extensions.get::<PeerIdentity>() {
        return Ok(with_authenticated_group(user.clone()));
    }
    if let Some(token) = bearer_token(parts) {
        return match authenticate_token(server, token, &[]) {
            Some((user, _)) => Ok(user),
            None => Err(unauthorized()),
        };
    }
    if server.security.authn.insecure {
        return Ok(insecure_admin());
    }
    if anonymous_path_allowed(parts.uri.path()) {
        return Ok(anonymous());
    }
    Err(unauthorized())
}

/// Authenticates a bearer token (static, bootstrap or service account) meant for
/// `audiences` (the API audiences when empty), as TokenReview and requests do. Returns the
/// user and the audiences the token matched.
pub fn authenticate_token(
    server: &ApiServer,
    token: &str,
    audiences: &[String],
) -> Option<(User, Vec<String>)> {
    let authn = &server.security.authn;
    let api_audiences = || {
        server
            .security
            .service_accounts
            .as_ref()
            .map(|t| t.api_audiences.clone())
            .unwrap_or_default()
    };
    // Tokens that carry no audience are good for the API audiences only.
    let plain = |user: User| {
        let wanted = api_audiences();
        let matched = if audiences.is_empty() {
            wanted
        } else {
            audiences
                .iter()
                .filter(|a| wanted.contains(a))
                .cloned()
                .collect()
        };
        (audiences.is_empty() || !matched.is_empty())
            .then(|| (with_authenticated_group(user), matched))
    };
    if let Some(user) = authn
        .token_file
        .as_ref()
        .and_then(|f| f.authenticate(token))
    {
        return plain(user);
    }
    if let Some(user) = bootstrap::authenticate(server, token) {
        return plain(user);
    }
    crate::sa_token::authenticate_with(server, token, audiences)
        .map(|(u, auds)| (with_authenticated_group(u), auds))
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts
        .headers
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Every authenticated user is in `system:authenticated`, as upstream's group adder makes sure.
pub fn with_authenticated_group(mut user: User) -> User {
    if !user.in_group(AUTHENTICATED) && !user.in_group(UNAUTHENTICATED) {
        user.groups.push(AUTHENTICATED.to_string());
    }
    user
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_health_and_version_paths_are_open_to_anonymous_requests() {
        for p in ["/healthz", "/livez", "/readyz", "/readyz/etcd", "/version"] {
            assert!(anonymous_path_allowed(p), "{p}");
        }
        for p in [
            "/api",
            "/apis",
            "/metrics",
            "/openapi/v2",
            "/healthzz",
            "/api/v1/pods",
            "/",
        ] {
            assert!(!anonymous_path_allowed(p), "{p}");
        }
    }

    #[test]
    fn authenticated_group_is_added_once() {
        let u = with_authenticated_group(User {
            name: "a".into(),
            groups: vec![AUTHENTICATED.into()],
            ..User::default()
        });
        assert_eq!(u.groups, vec![AUTHENTICATED]);
        let u = with_authenticated_group(User {
            name: "b".into(),
            ..User::default()
        });
        assert_eq!(u.groups, vec![AUTHENTICATED]);
    }
}
