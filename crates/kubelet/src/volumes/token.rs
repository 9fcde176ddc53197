//! Service-account tokens for projected volumes (upstream's `pkg/kubelet/token`): issued
//! through the TokenRequest API, bound to the pod, cached, and replaced once 80% of their
//! lifetime or 24 hours have passed (less up to 10 s of jitter, so many pods do not renew at
//! once). When a renewal fails, the cached token is used while it has not expired.

use std::time::Duration;

use jiff::Timestamp;

/// The longest a token is used before it is renewed, whatever its lifetime.
pub const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
/// The most the renewal is brought forward at random.
pub const MAX_JITTER: Duration = Duration::from_secs(10);

/// What identifies a token request (upstream's `keyFunc`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenKey {
    pub namespace: String,
    pub service_account: String,
    pub audiences: Vec<String>,
    pub expiration_seconds: Option<i64>,
    pub pod_name: String,
    pub pod_uid: String,
}

/// An issued token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedToken {
    pub token: String,
    /// The lifetime the server granted (`spec.expirationSeconds` of the answer).
    pub expiration_seconds: Option<i64>,
    pub expires_at: Timestamp,
}

/// Upstream's `requiresRefresh`: the token is older than 24 h less the jitter, or within
/// 20% of its lifetime (plus the jitter) of expiring. A token with no known lifetime is
/// never renewed early.
pub fn requires_refresh(now: Timestamp, token: &CachedToken, jitter: Duration) -> bool {
    let Some(ttl) = token.expiration_seconds else {
        return false;
    };
    let jitter_s = i64::try_from(jitter.as_secs()).unwrap_or(0);
    let exp = token.expires_at.as_second();
    let issued = exp - ttl;
    let max_ttl = i64::try_from(MAX_TTL.as_secs()).unwrap_or(i64::MAX);
    let now_s = now.as_second();
    if now_s > issued + max_ttl - jitter_s {
        return true;
    }
    now_s > exp - ttl * 20 / 100 - jitter_s
}

/// Whether the token has expired.
pub fn expired(now: Timestamp, token: &CachedToken) -> bool {
    now > token.expires_at
}

/// A random jitter in whole seconds below [`MAX_JITTER`], as upstream's.
pub fn jitter() -> Duration {
    Duration::from_secs(rand::random_range(0..MAX_JITTER.as_secs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(issued: i64, ttl: Option<i64>, lifetime: i64) -> CachedToken {
        CachedToken {
            token: "t".into(),
            expiration_seconds: ttl,
            expires_at: Timestamp::from_second(issued + lifetime).unwrap(),
        }
    }

    #[test]
    fn refresh_timing_as_upstream() {
        let t0 = 1_700_000_000;
        let at = |s: i64| Timestamp::from_second(t0 + s).unwrap();
        let hour = 3600;
        let day = 24 * hour;
        let cases = [
            // (token, now (s after issue), jitter s) → refresh
            (
                "fresh 1h token",
                tok(t0, Some(hour), hour),
                at(60),
                0,
                false,
            ),
            (
                "1h token at 79%",
                tok(t0, Some(hour), hour),
                at(2843),
                0,
                false,
            ),
            (
                "1h token at 80%",
                tok(t0, Some(hour), hour),
                at(2881),
                0,
                true,
            ),
            (
                "1h token at 79% with jitter",
                tok(t0, Some(hour), hour),
                at(2875),
                9,
                true,
            ),
            ("expired", tok(t0, Some(hour), hour), at(hour + 1), 0, true),
            (
                "10 min token at 81%",
                tok(t0, Some(600), 600),
                at(486),
                0,
                true,
            ),
            (
                "1y token at 23h",
                tok(t0, Some(365 * day), 365 * day),
                at(23 * hour),
                0,
                false,
            ),
            (
                "1y token after 24h",
                tok(t0, Some(365 * day), 365 * day),
                at(day + 1),
                0,
                true,
            ),
            (
                "1y token 24h less jitter",
                tok(t0, Some(365 * day), 365 * day),
                at(day - 5),
                9,
                true,
            ),
            (
                "48h token after 24h",
                tok(t0, Some(2 * day), 2 * day),
                at(day + 1),
                0,
                true,
            ),
            (
                "unknown lifetime",
                tok(t0, None, hour),
                at(hour * 2),
                0,
                false,
            ),
        ];
        for (name, t, now, j, want) in cases {
            assert_eq!(
                requires_refresh(now, &t, Duration::from_secs(j)),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn expiry_and_jitter() {
        let t = tok(100, Some(600), 600);
        assert!(!expired(Timestamp::from_second(700).unwrap(), &t));
        assert!(expired(Timestamp::from_second(701).unwrap(), &t));
        for _ in 0..100 {
            assert!(jitter() < MAX_JITTER);
        }
    }
}
