//! Who may use the kubelet's API: upstream's delegated authentication and authorization.
//!
//! - Authentication: a client certificate verified against the cluster CA (CN the user, O
//!   the groups), else a bearer token the API server vouches for through a `TokenReview`.
//!   Anonymous requests are refused (upstream's `--anonymous-auth=false`, kubeadm's default).
//! - Authorization: a `SubjectAccessReview` per request, for `nodes/<subresource>` of this
//!   node with the HTTP method's verb. [`request_attributes`] is upstream's mapping of
//!   paths to subresources, with `KubeletFineGrainedAuthz` (beta, on in 1.33): `/pods`,
//!   `/runningpods`, `/healthz`, `/configz` are tried as their own subresource first and as
//!   `proxy` after; `/stats`, `/metrics`, `/logs`, `/checkpoint` have theirs; everything else
//!   (exec, attach, port-forward, container logs) is `nodes/proxy`.
//! - Both answers are cached as upstream's kubelet does (tokens 2 minutes; allowed 5
//!   minutes, denied 30 seconds).

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::time::{Duration, Instant};

use http::Method;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::PostParams;
use kube::Api;
use parking_lot::Mutex;

/// An authenticated user.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

/// What a request asks to do, as the API server's authorizers see it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Attributes {
    pub verb: String,
    /// Always `nodes`, in the core group, version v1.
    pub resource: &'static str,
    pub subresource: &'static str,
    /// The node's name.
    pub name: String,
}

/// Whether `path` is `base` or below it (upstream's `isSubpath`).
fn is_subpath(path: &str, base: &str) -> bool {
    let base = base.trim_end_matches('/');
    path == base
        || path
            .strip_prefix(base)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The authorization attributes of a request to the kubelet, in the order they are tried:
/// the request is allowed if any of them is.
pub fn request_attributes(method: &Method, path: &str, node: &str) -> Vec<Attributes> {
    let verb = match *method {
        Method::POST => "create",
        Method::GET => "get",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "",
    };
    let mut subresources: Vec<&'static str> = Vec::new();
    if is_subpath(path, "/pods") || is_subpath(path, "/runningpods/") {
        subresources.push("pods");
    } else if is_subpath(path, "/healthz") {
        subresources.push("healthz");
    } else if is_subpath(path, "/configz") {
        subresources.push("configz");
    } else if is_subpath(path, "/statusz") {
        subresources.push("statusz");
    }
    subresources.push(if is_subpath(path, "/stats/") {
        "stats"
    } else if is_subpath(path, "/metrics") {
        "metrics"
    } else if is_subpath(path, "/logs/") {
        "log"
    } else if is_subpath(path, "/checkpoint/") {
        "checkpoint"
    } else {
        "proxy"
    });
    subresources
        .into_iter()
        .map(|subresource| Attributes {
            verb: verb.to_string(),
            resource: "nodes",
            subresource,
            name: node.to_string(),
        })
        .collect()
}

/// Upstream's 403 text for a refused request.
pub fn forbidden_message(user: &UserInfo, attrs: &[Attributes]) -> String {
    let subs: Vec<&str> = attrs.iter().map(|a| a.subresource).collect();
    let verb = attrs.first().map(|a| a.verb.as_str()).unwrap_or("");
    format!(
        "Forbidden (user={}, verb={verb}, resource=nodes, subresource(s)=[{}])\n",
        user.name,
        subs.join(" ")
    )
}

/// A failed review: the API server could not be asked.
#[derive(Debug, thiserror::Error)]
#[error("{review}: {source}")]
pub struct ReviewError {
    review: &'static str,
    #[source]
    source: kube::Error,
}

/// A small map whose entries expire; full, it drops what has expired, then everything.
#[derive(Debug)]
pub struct TtlCache<K, V> {
    entries: Mutex<HashMap<K, (V, Instant)>>,
    capacity: usize,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    pub fn new(capacity: usize) -> Self {
        TtlCache {
            entries: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    pub fn get(&self, key: &K, now: Instant) -> Option<V> {
        let entries = self.entries.lock();
        entries
            .get(key)
            .filter(|(_, expiry)| *expiry > now)
            .map(|(v, _)| v.clone())
    }

    pub fn insert(&self, key: K, value: V, ttl: Duration, now: Instant) {
        let mut entries = self.entries.lock();
        if entries.len() >= self.capacity {
            entries.retain(|_, (_, expiry)| *expiry > now);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(key, (value, now + ttl));
    }
}

/// How long answers are kept (upstream kubelet's defaults).
pub const TOKEN_TTL: Duration = Duration::from_secs(120);
pub const ALLOWED_TTL: Duration = Duration::from_secs(300);
pub const DENIED_TTL: Duration = Duration::from_secs(30);

/// Delegated authentication and authorization through the API server.
pub struct Delegated {
    client: kube::Client,
    tokens: TtlCache<[u8; 32], Option<UserInfo>>,
    decisions: TtlCache<(UserInfo, Attributes), bool>,
}

impl std::fmt::Debug for Delegated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delegated").finish_non_exhaustive()
    }
}

impl Delegated {
    pub fn new(client: kube::Client) -> Self {
        Delegated {
            client,
            tokens: TtlCache::new(4096),
            decisions: TtlCache::new(4096),
        }
    }

    /// The user a bearer token belongs to, per a TokenReview; `None` if it is not valid.
    pub async fn authenticate_token(&self, token: &str) -> Result<Option<UserInfo>, ReviewError> {
        let key: [u8; 32] = ring::digest::digest(&ring::digest::SHA256, token.as_bytes())
            .as_ref()
            .try_into()
            .unwrap_or([0; 32]);
        if let Some(hit) = self.tokens.get(&key, Instant::now()) {
            return Ok(hit);
        }
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_string()),
                audiences: None,
            },
            ..Default::default()
        };
        let api: Api<TokenReview> = Api::all(self.client.clone());
        let answer = api
            .create(&PostParams::default(), &review)
            .await
            .map_err(|source| ReviewError {
                review: "TokenReview",
                source,
            })?;
        let user = answer
            .status
            .filter(|s| s.authenticated == Some(true))
            .and_then(|s| s.user)
            .map(|u| UserInfo {
                name: u.username.unwrap_or_default(),
                uid: u.uid.unwrap_or_default(),
                groups: u.groups.unwrap_or_default(),
                extra: u.extra.unwrap_or_default().into_iter().collect(),
            })
            .filter(|u| !u.name.is_empty());
        self.tokens
            .insert(key, user.clone(), TOKEN_TTL, Instant::now());
        Ok(user)
    }

    /// Whether `user` may do `attrs`, per a SubjectAccessReview.
    pub async fn authorize(
        &self,
        user: &UserInfo,
        attrs: &Attributes,
    ) -> Result<bool, ReviewError> {
        let key = (user.clone(), attrs.clone());
        if let Some(hit) = self.decisions.get(&key, Instant::now()) {
            return Ok(hit);
        }
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(user.name.clone()),
                uid: (!user.uid.is_empty()).then(|| user.uid.clone()),
                groups: Some(user.groups.clone()),
                extra: (!user.extra.is_empty()).then(|| user.extra.clone().into_iter().collect()),
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(attrs.verb.clone()),
                    group: Some(String::new()),
                    version: Some("v1".into()),
                    resource: Some(attrs.resource.into()),
                    subresource: Some(attrs.subresource.into()),
                    name: Some(attrs.name.clone()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let api: Api<SubjectAccessReview> = Api::all(self.client.clone());
        let answer = api
            .create(&PostParams::default(), &review)
            .await
            .map_err(|source| ReviewError {
                review: "SubjectAccessReview",
                source,
            })?;
        let allowed = answer
            .status
            .is_some_and(|s| s.allowed && s.denied != Some(true));
        let ttl = if allowed { ALLOWED_TTL } else { DENIED_TTL };
        self.decisions.insert(key, allowed, ttl, Instant::now());
        Ok(allowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_upstreams_node_subresources() {
        // (method, path, verb, subresources in order)
        let cases: &[(Method, &str, &str, &[&str])] = &[
            (Method::GET, "/stats/summary", "get", &["stats"]),
            (Method::GET, "/stats", "get", &["stats"]),
            (Method::GET, "/metrics", "get", &["metrics"]),
            (Method::GET, "/metrics/resource", "get", &["metrics"]),
            (Method::GET, "/metrics/cadvisor", "get", &["metrics"]),
            (Method::GET, "/logs/syslog", "get", &["log"]),
            (Method::GET, "/pods", "get", &["pods", "proxy"]),
            (Method::GET, "/pods/", "get", &["pods", "proxy"]),
            (Method::GET, "/runningpods/", "get", &["pods", "proxy"]),
            (Method::GET, "/healthz", "get", &["healthz", "proxy"]),
            (Method::GET, "/healthz/ping", "get", &["healthz", "proxy"]),
            (Method::GET, "/configz", "get", &["configz", "proxy"]),
            (
                Method::POST,
                "/checkpoint/ns/p/c",
                "create",
                &["checkpoint"],
            ),
            (Method::GET, "/containerLogs/ns/p/c", "get", &["proxy"]),
            (Method::POST, "/exec/ns/p/c", "create", &["proxy"]),
            (Method::GET, "/exec/ns/p/c", "get", &["proxy"]),
            (Method::POST, "/attach/ns/p/c", "create", &["proxy"]),
            (Method::POST, "/portForward/ns/p", "create", &["proxy"]),
            (Method::PUT, "/x", "update", &["proxy"]),
            (Method::PATCH, "/x", "patch", &["proxy"]),
            (Method::DELETE, "/x", "delete", &["proxy"]),
            (Method::OPTIONS, "/x", "", &["proxy"]),
            // prefixes that are not path segments do not count
            (Method::GET, "/metricsfoo", "get", &["proxy"]),
            (Method::GET, "/podsx", "get", &["proxy"]),
            (Method::GET, "/statsx", "get", &["proxy"]),
        ];
        for (method, path, verb, subs) in cases {
            let attrs = request_attributes(method, path, "n1");
            let got: Vec<&str> = attrs.iter().map(|a| a.subresource).collect();
            assert_eq!(&got, subs, "{method} {path}");
            for a in &attrs {
                assert_eq!(a.verb, *verb, "{method} {path}");
                assert_eq!(a.resource, "nodes");
                assert_eq!(a.name, "n1");
            }
        }
    }

    #[test]
    fn forbidden_text_is_upstreams() {
        let user = UserInfo {
            name: "alice".into(),
            ..Default::default()
        };
        let attrs = request_attributes(&Method::GET, "/pods", "n1");
        assert_eq!(
            forbidden_message(&user, &attrs),
            "Forbidden (user=alice, verb=get, resource=nodes, subresource(s)=[pods proxy])\n"
        );
    }

    #[test]
    fn cache_entries_expire_and_a_full_cache_makes_room() {
        let cache: TtlCache<u32, bool> = TtlCache::new(2);
        let t0 = Instant::now();
        cache.insert(1, true, Duration::from_secs(10), t0);
        assert_eq!(cache.get(&1, t0), Some(true));
        assert_eq!(cache.get(&1, t0 + Duration::from_secs(11)), None);
        cache.insert(2, false, Duration::from_secs(1), t0);
        // full: the expired entry 2 goes, 1 stays
        cache.insert(
            3,
            true,
            Duration::from_secs(10),
            t0 + Duration::from_secs(2),
        );
        assert_eq!(cache.get(&1, t0 + Duration::from_secs(2)), Some(true));
        assert_eq!(cache.get(&2, t0), None);
        assert_eq!(cache.get(&3, t0 + Duration::from_secs(2)), Some(true));
    }
}
