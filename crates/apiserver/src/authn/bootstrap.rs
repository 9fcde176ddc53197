//! Bootstrap tokens (`abcdef.0123456789abcdef`): Secrets of type
//! `bootstrap.kubernetes.io/token` named `bootstrap-token-<id>` in kube-system. A valid one
//! authenticates as `system:bootstrap:<id>` in `system:bootstrappers` (plus the secret's
//! `auth-extra-groups`), which is what a joining node uses before it has a certificate.

use base64::Engine;
use serde_json::Value;

use super::User;
use crate::server::ApiServer;

pub const SECRET_TYPE: &str = "bootstrap.kubernetes.io/token";
pub const BOOTSTRAPPERS: &str = "system:bootstrappers";

/// Splits a token into id and secret if it has the bootstrap form.
pub fn parse_token(token: &str) -> Option<(&str, &str)> {
    let (id, secret) = token.split_once('.')?;
    let ok = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    (ok(id, 6) && ok(secret, 16)).then_some((id, secret))
}

pub fn authenticate(server: &ApiServer, token: &str) -> Option<User> {
    let (id, secret) = parse_token(token)?;
    let obj = server.cached(
        "",
        "secrets",
        "kube-system",
        &format!("bootstrap-token-{id}"),
    )?;
    user_for(&obj.value, id, secret, jiff::Timestamp::now())
}

/// The user a bootstrap token secret gives for `id.secret`, if the secret allows it at `now`.
pub fn user_for(secret_obj: &Value, id: &str, secret: &str, now: jiff::Timestamp) -> Option<User> {
    if secret_obj.get("type").and_then(Value::as_str) != Some(SECRET_TYPE)
        || secret_obj.pointer("/metadata/deletionTimestamp").is_some()
    {
        return None;
    }
    let data = |k: &str| -> Option<String> {
        let b64 = secret_obj.pointer(&format!("/data/{k}"))?.as_str()?;
        let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
        String::from_utf8(raw).ok()
    };
    if data("token-id")? != id {
        return None;
    }
    if !constant_time_eq(data("token-secret")?.as_bytes(), secret.as_bytes()) {
        return None;
    }
    if data("usage-bootstrap-authentication").as_deref() != Some("true") {
        return None;
    }
    if let Some(exp) = data("expiration") {
        match exp.parse::<jiff::Timestamp>() {
            Ok(t) if t > now => {}
            _ => return None,
        }
    }
    let mut groups = vec![BOOTSTRAPPERS.to_string()];
    if let Some(extra) = data("auth-extra-groups") {
        for g in extra.split(',').map(str::trim).filter(|g| !g.is_empty()) {
            // Upstream only honours extra groups under system:bootstrappers:.
            if !g.starts_with("system:bootstrappers:") {
                return None;
            }
            if !groups.iter().any(|x| x == g) {
                groups.push(g.to_string());
            }
        }
    }
    Some(User {
        name: format!("system:bootstrap:{id}"),
        groups,
        ..User::default()
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn secret(extra: &[(&str, &str)]) -> Value {
        let mut data = json!({
            "token-id": b64("abcdef"),
            "token-secret": b64("0123456789abcdef"),
            "usage-bootstrap-authentication": b64("true"),
        });
        for (k, v) in extra {
            data[*k] = json!(b64(v));
        }
        json!({"type": SECRET_TYPE, "metadata": {"name": "bootstrap-token-abcdef"}, "data": data})
    }

    fn now() -> jiff::Timestamp {
        "2026-01-01T00:00:00Z".parse().expect("time")
    }

    #[test]
    fn token_form_is_six_and_sixteen_lowercase_alphanumerics() {
        assert_eq!(
            parse_token("abcdef.0123456789abcdef"),
            Some(("abcdef", "0123456789abcdef"))
        );
        for bad in [
            "abcdef0123456789abcdef",
            "ABCDEF.0123456789abcdef",
            "abcde.0123456789abcdef",
            "abcdef.0123456789abcde",
        ] {
            assert_eq!(parse_token(bad), None, "{bad}");
        }
    }

    #[test]
    fn valid_secret_gives_bootstrap_user_with_extra_groups() {
        let s = secret(&[(
            "auth-extra-groups",
            "system:bootstrappers:rkube:default-node-token",
        )]);
        let u = user_for(&s, "abcdef", "0123456789abcdef", now()).expect("user");
        assert_eq!(u.name, "system:bootstrap:abcdef");
        assert_eq!(
            u.groups,
            vec![
                BOOTSTRAPPERS,
                "system:bootstrappers:rkube:default-node-token"
            ]
        );
    }

    #[test]
    fn wrong_secret_expiry_usage_or_groups_are_refused() {
        let ok = "0123456789abcdef";
        assert!(user_for(&secret(&[]), "abcdef", "0123456789abcdeX", now()).is_none());
        assert!(user_for(
            &secret(&[("expiration", "2025-01-01T00:00:00Z")]),
            "abcdef",
            ok,
            now()
        )
        .is_none());
        assert!(user_for(
            &secret(&[("expiration", "2027-01-01T00:00:00Z")]),
            "abcdef",
            ok,
            now()
        )
        .is_some());
        assert!(user_for(
            &secret(&[("usage-bootstrap-authentication", "false")]),
            "abcdef",
            ok,
            now()
        )
        .is_none());
        assert!(user_for(
            &secret(&[("auth-extra-groups", "system:masters")]),
            "abcdef",
            ok,
            now()
        )
        .is_none());
        let mut wrong_type = secret(&[]);
        wrong_type["type"] = json!("Opaque");
        assert!(user_for(&wrong_type, "abcdef", ok, now()).is_none());
    }
}
