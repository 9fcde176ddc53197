//! Service-account tokens: signed JWTs. Bound tokens come from the TokenRequest API
//! (`serviceaccounts/<name>/token`) with audiences, an expiry and optionally a bound pod,
//! secret or node; legacy tokens (no expiry) sit in secrets of type
//! `kubernetes.io/service-account-token`. Both authenticate as
//! `system:serviceaccount:<ns>:<name>` while the objects they name still exist.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};

use crate::authn::User;
use crate::server::ApiServer;

/// The issuer of legacy secret tokens.
pub const LEGACY_ISSUER: &str = "kubernetes/serviceaccount";
/// The shortest TokenRequest upstream allows.
pub const MIN_EXPIRATION: Duration = Duration::from_secs(600);
/// The default TokenRequest lifetime.
pub const DEFAULT_EXPIRATION: Duration = Duration::from_secs(3600);

/// The signing key and the names tokens are issued under.
#[derive(Debug)]
pub struct ServiceAccountTokens {
    pub key: rkube_pki::jwt::SigningKey,
    /// `--service-account-issuer`, e.g. `https://kubernetes.default.svc.cluster.local`.
    pub issuer: String,
    /// `--api-audiences`: what a token must be meant for to authenticate to this server.
    pub api_audiences: Vec<String>,
}

/// What a TokenRequest binds its token to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BoundObject {
    pub kind: String,
    pub name: String,
    pub uid: String,
}

impl ServiceAccountTokens {
    pub fn new(key: rkube_pki::jwt::SigningKey, issuer: String) -> Self {
        ServiceAccountTokens {
            key,
            api_audiences: vec![issuer.clone()],
            issuer,
        }
    }

    /// A bound token's claims, as upstream's `Claims` lays them out.
    #[allow(clippy::too_many_arguments)]
    pub fn bound_claims(
        &self,
        namespace: &str,
        sa_name: &str,
        sa_uid: &str,
        audiences: &[String],
        expiration: Duration,
        bound: Option<&BoundObject>,
        node: Option<&BoundObject>,
        now: i64,
    ) -> Value {
        let mut k8s = json!({
            "namespace": namespace,
            "serviceaccount": {"name": sa_name, "uid": sa_uid},
        });
        if let Some(b) = bound {
            let key = match b.kind.as_str() {
                "Pod" => "pod",
                "Secret" => "secret",
                _ => "node",
            };
            k8s[key] = json!({"name": b.name, "uid": b.uid});
        }
        if let Some(n) = node {
            k8s["node"] = json!({"name": n.name, "uid": n.uid});
        }
        let exp = now + i64::try_from(expiration.as_secs()).unwrap_or(i64::MAX / 2);
        json!({
            "aud": audiences,
            "exp": exp,
            "iat": now,
            "iss": self.issuer,
            "jti": crate::object::new_uid(),
            "kubernetes.io": k8s,
            "nbf": now,
            "sub": format!("system:serviceaccount:{namespace}:{sa_name}"),
        })
    }

    pub fn sign(&self, claims: &Value) -> Option<String> {
        self.key.sign(claims).ok()
    }

    /// A legacy (secret-based, non-expiring) token, as the tokens controller writes.
    pub fn legacy_token(
        &self,
        namespace: &str,
        sa_name: &str,
        sa_uid: &str,
        secret: &str,
    ) -> Option<String> {
        self.sign(&json!({
            "iss": LEGACY_ISSUER,
            "kubernetes.io/serviceaccount/namespace": namespace,
            "kubernetes.io/serviceaccount/secret.name": secret,
            "kubernetes.io/serviceaccount/service-account.name": sa_name,
            "kubernetes.io/serviceaccount/service-account.uid": sa_uid,
            "sub": format!("system:serviceaccount:{namespace}:{sa_name}"),
        }))
    }
}

fn uid_of(obj: &Value) -> &str {
    obj.pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Authenticates a service-account JWT meant for one of `audiences` (the API audiences when
/// empty). Returns the user and the audiences that matched.
pub fn authenticate_with(
    server: &ApiServer,
    token: &str,
    audiences: &[String],
) -> Option<(User, Vec<String>)> {
    let tokens = server.security.service_accounts.as_ref()?;
    // Cheap shape check first: three base64url parts.
    if token.split('.').count() != 3 {
        return None;
    }
    let claims = tokens.key.verify(token).ok()?;
    let s = |p: &str| {
        claims
            .pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let issuer = s("/iss");
    if issuer == LEGACY_ISSUER {
        return legacy(server, token, &claims).map(|u| (u, Vec::new()));
    }
    if issuer != tokens.issuer {
        return None;
    }
    let wanted: &[String] = if audiences.is_empty() {
        &tokens.api_audiences
    } else {
        audiences
    };
    let token_auds: Vec<String> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    let matched: Vec<String> = wanted
        .iter()
        .filter(|a| token_auds.contains(a))
        .cloned()
        .collect();
    if matched.is_empty() {
        return None;
    }
    let k8s = claims.get("kubernetes.io")?;
    let ns = k8s.get("namespace").and_then(Value::as_str)?;
    let sa_name = k8s
        .pointer("/serviceaccount/name")
        .and_then(Value::as_str)?;
    let sa_uid = k8s
        .pointer("/serviceaccount/uid")
        .and_then(Value::as_str)
        .unwrap_or("");
    let sa = server.cached("", "serviceaccounts", ns, sa_name)?;
    if sa.value.pointer("/metadata/deletionTimestamp").is_some() || uid_of(&sa.value) != sa_uid {
        return None;
    }
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if let Some(pod) = k8s.get("pod") {
        let name = pod.get("name").and_then(Value::as_str)?;
        let uid = pod.get("uid").and_then(Value::as_str).unwrap_or("");
        let obj = server.cached("", "pods", ns, name)?;
        if uid_of(&obj.value) != uid {
            return None;
        }
        extra.insert(
            "authentication.kubernetes.io/pod-name".into(),
            vec![name.to_string()],
        );
        extra.insert(
            "authentication.kubernetes.io/pod-uid".into(),
            vec![uid.to_string()],
        );
    }
    if let Some(secret) = k8s.get("secret") {
        let name = secret.get("name").and_then(Value::as_str)?;
        let uid = secret.get("uid").and_then(Value::as_str).unwrap_or("");
        let obj = server.cached("", "secrets", ns, name)?;
        if uid_of(&obj.value) != uid {
            return None;
        }
    }
    if let Some(node) = k8s.get("node") {
        let name = node.get("name").and_then(Value::as_str).unwrap_or("");
        let uid = node.get("uid").and_then(Value::as_str).unwrap_or("");
        if k8s.get("pod").is_none() {
            // A token bound to a node lives only as long as the node.
            let obj = server.cached("", "nodes", "", name)?;
            if uid_of(&obj.value) != uid {
                return None;
            }
        }
        extra.insert(
            "authentication.kubernetes.io/node-name".into(),
            vec![name.to_string()],
        );
        extra.insert(
            "authentication.kubernetes.io/node-uid".into(),
            vec![uid.to_string()],
        );
    }
    let jti = s("/jti");
    if !jti.is_empty() {
        extra.insert(
            "authentication.kubernetes.io/credential-id".into(),
            vec![format!("JTI={jti}")],
        );
    }
    Some((sa_user(ns, sa_name, sa_uid, extra), matched))
}

/// Authenticates a request's bearer token as a service account.
pub fn authenticate(server: &ApiServer, token: &str) -> Option<User> {
    authenticate_with(server, token, &[]).map(|(u, _)| u)
}

fn sa_user(ns: &str, name: &str, uid: &str, extra: BTreeMap<String, Vec<String>>) -> User {
    User {
        name: format!("system:serviceaccount:{ns}:{name}"),
        uid: uid.to_string(),
        groups: vec![
            "system:serviceaccounts".to_string(),
            format!("system:serviceaccounts:{ns}"),
        ],
        extra,
    }
}

/// A legacy token is valid while its secret holds it and its account exists.
fn legacy(server: &ApiServer, token: &str, claims: &Value) -> Option<User> {
    let s = |k: &str| claims.get(k).and_then(Value::as_str).unwrap_or("");
    let ns = s("kubernetes.io/serviceaccount/namespace");
    let secret_name = s("kubernetes.io/serviceaccount/secret.name");
    let sa_name = s("kubernetes.io/serviceaccount/service-account.name");
    let sa_uid = s("kubernetes.io/serviceaccount/service-account.uid");
    let secret = server.cached("", "secrets", ns, secret_name)?;
    let stored = secret
        .value
        .pointer("/data/token")
        .and_then(Value::as_str)?;
    use base64::Engine;
    let stored = base64::engine::general_purpose::STANDARD
        .decode(stored)
        .ok()?;
    if stored != token.as_bytes()
        || secret
            .value
            .pointer("/metadata/deletionTimestamp")
            .is_some()
    {
        return None;
    }
    let sa = server.cached("", "serviceaccounts", ns, sa_name)?;
    if uid_of(&sa.value) != sa_uid || sa.value.pointer("/metadata/deletionTimestamp").is_some() {
        return None;
    }
    Some(sa_user(ns, sa_name, sa_uid, BTreeMap::new()))
}
