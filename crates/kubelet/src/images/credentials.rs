//! Registry credentials from a pod's image pull secrets, matched to an image as upstream's
//! `pkg/credentialprovider` does: the secrets' docker config entries (`.dockerconfigjson`'s
//! `auths`, or the older `.dockercfg` map) become a keyring indexed by `host[/path]`; an
//! image takes the credentials of every key whose host matches (same port, same number of
//! dot-separated parts, each part a glob such as `*.example.com`) and whose path is a prefix
//! of the image's path, the most specific keys first; Docker Hub images fall back to the
//! `index.docker.io` entry.

use std::collections::BTreeMap;

use base64::Engine;
use k8s_openapi::api::core::v1::Secret;
use serde_json::Value;

/// The secret type holding a `~/.docker/config.json`.
pub const DOCKER_CONFIG_JSON_TYPE: &str = "kubernetes.io/dockerconfigjson";
pub const DOCKER_CONFIG_JSON_KEY: &str = ".dockerconfigjson";
/// The legacy secret type holding a `~/.dockercfg`.
pub const DOCKERCFG_TYPE: &str = "kubernetes.io/dockercfg";
pub const DOCKERCFG_KEY: &str = ".dockercfg";
/// The key Docker Hub credentials are stored under (from `https://index.docker.io/v1/`).
const DEFAULT_REGISTRY_HOST: &str = "index.docker.io";

/// One registry login.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credential {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A pull secret whose docker config cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CredentialError {
    pub message: String,
}

fn err(message: impl Into<String>) -> CredentialError {
    CredentialError {
        message: message.into(),
    }
}

/// The entries of a docker config map (`{"host": {"username": .., "password": .., "auth": ..}}`).
/// Field names match case-insensitively, as Go's `encoding/json` matches them.
pub fn parse_docker_config(map: &Value) -> Result<Vec<(String, Credential)>, CredentialError> {
    let Value::Object(map) = map else {
        return Err(err("json: cannot unmarshal docker config: not an object"));
    };
    let mut out = Vec::new();
    for (registry, entry) in map {
        let Value::Object(fields) = entry else {
            return Err(err(format!(
                "json: cannot unmarshal the entry for {registry:?}: not an object"
            )));
        };
        let field = |name: &str| -> Result<String, CredentialError> {
            match fields.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
                None | Some((_, Value::Null)) => Ok(String::new()),
                Some((_, Value::String(s))) => Ok(s.clone()),
                Some((k, _)) => Err(err(format!(
                    "json: cannot unmarshal {k:?} of the entry for {registry:?}: not a string"
                ))),
            }
        };
        let mut cred = Credential {
            username: field("username")?,
            password: field("password")?,
        };
        let auth = field("auth")?;
        if !auth.is_empty() {
            (cred.username, cred.password) = decode_auth(&auth)?;
        }
        out.push((registry.clone(), cred));
    }
    Ok(out)
}

/// The `auth` field: base64 of `username:password`, padded or not.
pub fn decode_auth(field: &str) -> Result<(String, String), CredentialError> {
    let decoded = if field.trim().ends_with('=') {
        base64::engine::general_purpose::STANDARD.decode(field)
    } else {
        base64::engine::general_purpose::STANDARD_NO_PAD.decode(field)
    }
    .map_err(|e| err(format!("illegal base64 data in auth: {e}")))?;
    let decoded = String::from_utf8_lossy(&decoded);
    match decoded.split_once(':') {
        Some((user, password)) => Ok((user.to_string(), password.to_string())),
        None => Err(err("must be formatted as base64(username:password)")),
    }
}

/// The docker config entries of one pull secret; none when it is of another type or lacks
/// its key (upstream ignores such secrets).
pub fn secret_entries(secret: &Secret) -> Result<Vec<(String, Credential)>, CredentialError> {
    let data = |key: &str| {
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .map(|b| b.0.as_slice())
            .filter(|b| !b.is_empty())
    };
    let parse = |bytes: &[u8]| -> Result<Value, CredentialError> {
        serde_json::from_slice(bytes).map_err(|e| err(e.to_string()))
    };
    match secret.type_.as_deref() {
        Some(DOCKER_CONFIG_JSON_TYPE) => {
            let Some(bytes) = data(DOCKER_CONFIG_JSON_KEY) else {
                return Ok(Vec::new());
            };
            let config = parse(bytes)?;
            let auths = config.as_object().and_then(|o| {
                o.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("auths"))
                    .map(|(_, v)| v)
            });
            match auths {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(auths) => parse_docker_config(auths),
            }
        }
        Some(DOCKERCFG_TYPE) => match data(DOCKERCFG_KEY) {
            Some(bytes) => parse_docker_config(&parse(bytes)?),
            None => Ok(Vec::new()),
        },
        _ => Ok(Vec::new()),
    }
}

/// Credentials indexed by `host[/path]`, most specific first.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    /// Keys in reverse lexical order (longer, more specific paths before their prefixes).
    index: Vec<String>,
    creds: BTreeMap<String, Vec<Credential>>,
}

impl Keyring {
    /// The keyring of the pod's pull secrets, in their order.
    pub fn from_secrets(secrets: &[Secret]) -> Result<Keyring, CredentialError> {
        let mut keyring = Keyring::default();
        for secret in secrets {
            keyring.add(secret_entries(secret)?);
        }
        Ok(keyring)
    }

    /// Adds docker config entries. A registry written with a scheme or a `/v1/`, `/v2/` path
    /// is the same registry as its bare host.
    pub fn add(&mut self, entries: Vec<(String, Credential)>) {
        for (registry, cred) in entries {
            let Some(key) = registry_key(&registry) else {
                continue;
            };
            self.creds.entry(key.clone()).or_default().push(cred);
            if !self.index.contains(&key) {
                self.index.push(key);
            }
        }
        self.index.sort_by(|a, b| b.cmp(a));
    }

    /// The credentials for a repository (`host/path`, as `Reference::name` gives it), most
    /// specific first; empty when none match (pull anonymously).
    pub fn lookup(&self, repository: &str) -> Vec<Credential> {
        let mut out = Vec::new();
        for key in &self.index {
            if urls_match(key, repository) {
                out.extend(self.creds[key].iter().cloned());
            }
        }
        if out.is_empty() && is_default_registry_match(repository) {
            if let Some(creds) = self.creds.get(DEFAULT_REGISTRY_HOST) {
                out.extend(creds.iter().cloned());
            }
        }
        out
    }
}

/// `host[/path]` of a docker config key, without scheme, and with `/v1/`, `/v2/` dropped.
pub fn registry_key(registry: &str) -> Option<String> {
    let rest = registry
        .strip_prefix("https://")
        .or_else(|| registry.strip_prefix("http://"))
        .unwrap_or(registry);
    let (host, path) = split_host_path(rest);
    if host.is_empty() {
        return None;
    }
    let path = if path.starts_with("/v2/") || path.starts_with("/v1/") {
        &path[3..]
    } else {
        path
    };
    Some(if path.is_empty() || path == "/" {
        host.to_string()
    } else {
        format!("{host}{path}")
    })
}

/// Host and path of a URL without scheme (the query and fragment dropped).
fn split_host_path(s: &str) -> (&str, &str) {
    let s = s.split(['?', '#']).next().unwrap_or_default();
    match s.find('/') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    }
}

/// Host parts and port of `host[:port]` (as Go's `net.SplitHostPort`, then split on dots).
fn split_host_port(host: &str) -> (Vec<&str>, &str) {
    let (h, port) = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((h, tail)) => (h, tail.strip_prefix(':').unwrap_or("")),
            None => (host, ""),
        }
    } else {
        match host.split_once(':') {
            Some((h, p)) if !p.contains(':') => (h, p),
            _ => (host, ""),
        }
    };
    (h.split('.').collect(), port)
}

/// Whether the schemeless `target` (`host/path`) matches the key `glob`: same port, same
/// number of host parts each matching as a glob, and the key's path a prefix of the target's.
pub fn urls_match(glob: &str, target: &str) -> bool {
    let (glob_host, glob_path) = split_host_path(glob);
    let (target_host, target_path) = split_host_path(target);
    let (glob_parts, glob_port) = split_host_port(glob_host);
    let (target_parts, target_port) = split_host_port(target_host);
    glob_port == target_port
        && glob_parts.len() == target_parts.len()
        && target_path.starts_with(glob_path)
        && glob_parts
            .iter()
            .zip(&target_parts)
            .all(|(g, t)| glob_match(g.as_bytes(), t.as_bytes()))
}

/// `filepath.Match` for one host label: `*`, `?`, `[...]` classes, `\` escapes. Hand-written: a glob crate would be a dependency for a dozen lines.
fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|i| glob_match(rest, &name[i..])),
        Some((b'?', rest)) => !name.is_empty() && glob_match(rest, &name[1..]),
        Some((b'[', rest)) => {
            let Some(close) = rest.iter().position(|&c| c == b']') else {
                return false;
            };
            let (class, rest) = (&rest[..close], &rest[close + 1..]);
            let Some((&c, name_rest)) = name.split_first() else {
                return false;
            };
            let (negate, class) = match class.split_first() {
                Some((b'^', tail)) => (true, tail),
                _ => (false, class),
            };
            let mut hit = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == b'-' {
                    hit |= class[i] <= c && c <= class[i + 2];
                    i += 3;
                } else {
                    hit |= class[i] == c;
                    i += 1;
                }
            }
            hit != negate && glob_match(rest, name_rest)
        }
        Some((b'\\', rest)) if !rest.is_empty() => {
            name.first() == Some(&rest[0]) && glob_match(&rest[1..], &name[1..])
        }
        Some((&p, rest)) => name.first() == Some(&p) && glob_match(rest, &name[1..]),
    }
}

/// Whether an image pulls from Docker Hub, judging by its name.
fn is_default_registry_match(image: &str) -> bool {
    let mut parts = image.splitn(2, '/');
    let first = parts.next().unwrap_or_default();
    if first.is_empty() {
        return false;
    }
    if parts.next().is_none() {
        return true;
    }
    if first == "docker.io" || first == DEFAULT_REGISTRY_HOST {
        return true;
    }
    !first.contains(['.', ':'])
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn cred(u: &str) -> Credential {
        Credential {
            username: u.into(),
            password: format!("{u}-pw"),
        }
    }

    fn secret(type_: &str, key: &str, json: &str) -> Secret {
        Secret {
            type_: Some(type_.into()),
            data: Some([(key.to_string(), ByteString(json.as_bytes().to_vec()))].into()),
            ..Default::default()
        }
    }

    #[test]
    fn registry_keys_drop_scheme_and_api_version() {
        for (registry, key) in [
            ("registry.example.com", Some("registry.example.com")),
            ("https://registry.example.com", Some("registry.example.com")),
            ("http://127.0.0.1:5000", Some("127.0.0.1:5000")),
            ("https://index.docker.io/v1/", Some("index.docker.io")),
            ("quay.io/v2/", Some("quay.io")),
            ("quay.io/coreos", Some("quay.io/coreos")),
            ("https://quay.io/v1/coreos/", Some("quay.io/coreos/")),
            ("", None),
        ] {
            assert_eq!(registry_key(registry).as_deref(), key, "{registry}");
        }
    }

    #[test]
    fn urls_match_by_host_parts_port_and_path_prefix() {
        for (glob, target, matches) in [
            ("registry.example.com", "registry.example.com/app", true),
            ("*.example.com", "registry.example.com/app", true),
            ("*.example.com", "example.com/app", false),
            ("*.example.com", "a.b.example.com/app", false),
            ("*.*.com", "registry.example.com/app", true),
            // `?` starts a URL query, so it cannot glob in a key (as upstream parses keys)
            ("reg?stry.example.com", "registry.example.com/x", false),
            ("r[a-d]gistry.example.com", "registry.example.com/x", false),
            ("r[a-d]gistry.example.com", "rbgistry.example.com/x", true),
            ("127.0.0.1:5000", "127.0.0.1:5000/private/busybox", true),
            ("127.0.0.1:5000", "127.0.0.1:5001/private/busybox", false),
            ("127.0.0.1", "127.0.0.1:5000/private/busybox", false),
            (
                "127.0.0.1:5000/private",
                "127.0.0.1:5000/private/busybox",
                true,
            ),
            (
                "127.0.0.1:5000/other",
                "127.0.0.1:5000/private/busybox",
                false,
            ),
            ("[::1]:5000", "[::1]:5000/a", true),
            ("docker.io", "docker.io/library/busybox", true),
            ("index.docker.io", "docker.io/library/busybox", false),
        ] {
            assert_eq!(urls_match(glob, target), matches, "{glob} ~ {target}");
        }
    }

    #[test]
    fn lookup_prefers_the_most_specific_key_and_falls_back_to_docker_hub() {
        let mut keyring = Keyring::default();
        keyring.add(vec![
            ("quay.io".into(), cred("host")),
            ("https://quay.io/v1/coreos".into(), cred("path")),
            ("https://index.docker.io/v1/".into(), cred("hub")),
            ("*.example.com".into(), cred("wild")),
        ]);
        let users = |repo: &str| -> Vec<String> {
            keyring
                .lookup(repo)
                .into_iter()
                .map(|c| c.username)
                .collect()
        };
        assert_eq!(users("quay.io/coreos/etcd"), ["path", "host"]);
        assert_eq!(users("quay.io/other/x"), ["host"]);
        assert_eq!(users("docker.io/library/busybox"), ["hub"]);
        assert_eq!(users("docker.io/user/app"), ["hub"]);
        assert_eq!(users("registry.example.com/app"), ["wild"]);
        assert!(users("gcr.io/x/y").is_empty());
        assert!(users("localhost:5000/x").is_empty());
        // two secrets for one registry: both, in the secrets' order
        let mut k = Keyring::default();
        k.add(vec![("r.io".into(), cred("a"))]);
        k.add(vec![("https://r.io".into(), cred("b"))]);
        assert_eq!(
            k.lookup("r.io/x")
                .into_iter()
                .map(|c| c.username)
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
    }

    #[test]
    fn secrets_of_both_docker_types_parse() {
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret:x");
        let json =
            format!(r#"{{"auths":{{"127.0.0.1:5000":{{"auth":"{auth}","username":"ignored"}}}}}}"#);
        let s = secret(DOCKER_CONFIG_JSON_TYPE, DOCKER_CONFIG_JSON_KEY, &json);
        assert_eq!(
            secret_entries(&s).unwrap(),
            vec![(
                "127.0.0.1:5000".to_string(),
                Credential {
                    username: "alice".into(),
                    password: "s3cret:x".into()
                }
            )]
        );
        let s = secret(
            DOCKERCFG_TYPE,
            DOCKERCFG_KEY,
            r#"{"r.io":{"Username":"bob","Password":"pw","email":"b@x"}}"#,
        );
        assert_eq!(secret_entries(&s).unwrap()[0].1.username, "bob");
        // unpadded base64 auth
        let auth = base64::engine::general_purpose::STANDARD_NO_PAD.encode("u:p1");
        assert_eq!(decode_auth(&auth).unwrap(), ("u".into(), "p1".into()));
        // other types, or the key missing: ignored
        let opaque = secret("Opaque", DOCKERCFG_KEY, "{}");
        assert!(secret_entries(&opaque).unwrap().is_empty());
        let wrong_key = secret(DOCKER_CONFIG_JSON_TYPE, DOCKERCFG_KEY, "{}");
        assert!(secret_entries(&wrong_key).unwrap().is_empty());
        // broken content fails the keyring, as upstream's MakeDockerKeyring does
        let bad = secret(DOCKER_CONFIG_JSON_TYPE, DOCKER_CONFIG_JSON_KEY, "{");
        assert!(Keyring::from_secrets(&[bad]).is_err());
        let bad_auth = base64::engine::general_purpose::STANDARD.encode("nocolon");
        let bad = secret(
            DOCKERCFG_TYPE,
            DOCKERCFG_KEY,
            &format!(r#"{{"r.io":{{"auth":"{bad_auth}"}}}}"#),
        );
        assert_eq!(
            Keyring::from_secrets(&[bad]).unwrap_err().message,
            "must be formatted as base64(username:password)"
        );
        // the password never shows in debug output
        assert!(!format!("{:?}", cred("u")).contains("u-pw"));
    }
}
