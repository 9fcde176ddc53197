//! Image references as upstream reads them: the grammar of `github.com/distribution/reference`
//! (which the kubelet and containerd share), its Docker Hub normalization
//! (`busybox` → `docker.io/library/busybox`), and the kubelet's default tag.
//!
//! Written here on top of the `regex` crate rather than taken from a crate: the Rust parsers
//! (oci-spec's `Reference`, oci-client) normalize the same way but report other errors than
//! upstream's (e.g. no "repository name (x) must be lowercase", no refusal of a bare 64-hex
//! identifier), and those messages end up in pod statuses.

use std::sync::OnceLock;

use regex::Regex;

/// Docker Hub's canonical domain.
pub const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
/// The longest repository name the grammar accepts.
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// A reference that does not parse, with upstream's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("repository name must have at least one component")]
    NameEmpty,
    #[error("invalid reference format: repository name must be lowercase")]
    NameContainsUppercase,
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    RemoteNameUppercase(String),
    #[error("invalid reference format")]
    InvalidFormat,
    #[error("repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters")]
    NameTooLong,
    #[error("unsupported digest algorithm")]
    DigestUnsupported,
    #[error("invalid checksum digest length")]
    DigestInvalidLength,
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    Identifier(String),
}

/// A parsed, normalized reference: `domain/path[:tag][@digest]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub domain: String,
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl Reference {
    /// `domain/path`, what upstream calls the reference's name (the repository to pull).
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The reference with `:latest` when it has neither tag nor digest (as containerd and
    /// `docker.ParseDockerRef` complete it).
    pub fn with_default_tag(mut self) -> Reference {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some("latest".into());
        }
        self
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.domain, self.path)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

struct Grammar {
    reference: Regex,
    name: Regex,
    identifier: Regex,
}

fn grammar() -> &'static Grammar {
    static GRAMMAR: OnceLock<Grammar> = OnceLock::new();
    GRAMMAR.get_or_init(|| {
        // distribution/reference's regexp.go, piece by piece (ASCII classes: Go's \w is ASCII).
        let alphanumeric = "[a-z0-9]+";
        let separator = "(?:[._]|__|[-]+)";
        let path_component = format!("{alphanumeric}(?:{separator}{alphanumeric})*");
        let domain_component = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
        let domain_name = format!(r"{domain_component}(?:\.{domain_component})*");
        let ipv6 = r"\[(?:[a-fA-F0-9:]+)\]";
        let domain_and_port = format!("(?:{domain_name}|{ipv6})(?::[0-9]+)?");
        let remote_name = format!("{path_component}(?:/{path_component})*");
        let name = format!("(?:{domain_and_port}/)?{remote_name}");
        let tag = "[0-9A-Za-z_][0-9A-Za-z_.-]{0,127}";
        let digest = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}";
        let compile = |re: String| Regex::new(&re).expect("the reference grammar compiles");
        Grammar {
            reference: compile(format!("^({name})(?::({tag}))?(?:@({digest}))?$")),
            name: compile(format!("^(?:({domain_and_port})/)?({remote_name})$")),
            identifier: compile("^[a-f0-9]{64}$".into()),
        }
    })
}

/// distribution/reference's `Parse`: the grammar, without normalization.
pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
    let g = grammar();
    let Some(caps) = g.reference.captures(s) else {
        if s.is_empty() {
            return Err(ReferenceError::NameEmpty);
        }
        if g.reference.is_match(&s.to_lowercase()) {
            return Err(ReferenceError::NameContainsUppercase);
        }
        return Err(ReferenceError::InvalidFormat);
    };
    let name = &caps[1];
    if name.len() > NAME_TOTAL_LENGTH_MAX {
        return Err(ReferenceError::NameTooLong);
    }
    let (domain, path) = match g.name.captures(name) {
        Some(n) => (
            n.get(1).map(|m| m.as_str().to_string()).unwrap_or_default(),
            n[2].to_string(),
        ),
        None => (String::new(), name.to_string()),
    };
    let digest = caps.get(3).map(|m| m.as_str().to_string());
    if let Some(d) = &digest {
        validate_digest(d)?;
    }
    Ok(Reference {
        domain,
        path,
        tag: caps.get(2).map(|m| m.as_str().to_string()),
        digest,
    })
}

/// go-digest's validation: a known algorithm and its hex length.
fn validate_digest(d: &str) -> Result<(), ReferenceError> {
    let (alg, hex) = d.split_once(':').unwrap_or((d, ""));
    let len = match alg {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(ReferenceError::DigestUnsupported),
    };
    if hex.len() != len {
        return Err(ReferenceError::DigestInvalidLength);
    }
    Ok(())
}

/// Splits off the domain as Docker does: the first component is a domain when it holds a `.`
/// or `:`, is `localhost`, or is not lowercase; otherwise the image is on Docker Hub.
fn split_docker_domain(name: &str) -> (String, String) {
    let (mut domain, mut remainder) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.to_lowercase() != first =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    if domain == LEGACY_DEFAULT_DOMAIN {
        domain = DEFAULT_DOMAIN.into();
    }
    if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        remainder = format!("{OFFICIAL_REPO_PREFIX}{remainder}");
    }
    (domain, remainder)
}

/// distribution/reference's `ParseNormalizedNamed`: `busybox:1` → `docker.io/library/busybox:1`.
pub fn parse_normalized(s: &str) -> Result<Reference, ReferenceError> {
    if grammar().identifier.is_match(s) {
        return Err(ReferenceError::Identifier(s.to_string()));
    }
    let (domain, remainder) = split_docker_domain(s);
    let remote = remainder.split(':').next().unwrap_or_default();
    if remote.to_lowercase() != remote {
        return Err(ReferenceError::RemoteNameUppercase(remote.to_string()));
    }
    parse(&format!("{domain}/{remainder}"))
}

/// The kubelet's `parsers.ParseImageName` failure: `couldn't parse image name "x": <why>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("couldn't parse image name {image:?}: {source}")]
pub struct ImageNameError {
    pub image: String,
    #[source]
    pub source: ReferenceError,
}

/// The kubelet's `applyDefaultImageTag`: the image as written, with `:latest` appended when
/// it has neither tag nor digest. The short name is kept (not `docker.io/library/...`), so
/// that the runtime sees the name the user wrote.
pub fn apply_default_tag(image: &str) -> Result<String, ImageNameError> {
    let r = parse_normalized(image).map_err(|source| ImageNameError {
        image: image.to_string(),
        source,
    })?;
    Ok(match (&r.tag, &r.digest) {
        (None, None) => format!("{image}:latest"),
        _ => image.to_string(),
    })
}

/// The tag upstream reads from an image: its tag, `latest` when it has neither tag nor digest,
/// none when it has only a digest or does not parse.
pub fn tag_of(image: &str) -> Option<String> {
    let r = parse_normalized(image).ok()?;
    match (r.tag, r.digest) {
        (Some(tag), _) => Some(tag),
        (None, None) => Some("latest".into()),
        (None, Some(_)) => None,
    }
}

/// The fully qualified form containerd stores and lists: `docker.io/library/busybox:latest`.
pub fn normalize(image: &str) -> Result<String, ReferenceError> {
    Ok(parse_normalized(image)?.with_default_tag().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

    #[test]
    fn names_normalize_as_docker_does() {
        for (input, normalized, name) in [
            (
                "busybox",
                "docker.io/library/busybox:latest",
                "docker.io/library/busybox",
            ),
            (
                "busybox:1.36",
                "docker.io/library/busybox:1.36",
                "docker.io/library/busybox",
            ),
            (
                "library/busybox",
                "docker.io/library/busybox:latest",
                "docker.io/library/busybox",
            ),
            ("user/app:v1", "docker.io/user/app:v1", "docker.io/user/app"),
            (
                "index.docker.io/busybox",
                "docker.io/library/busybox:latest",
                "docker.io/library/busybox",
            ),
            (
                "docker.io/user/app",
                "docker.io/user/app:latest",
                "docker.io/user/app",
            ),
            (
                "localhost/rkube/pause:1",
                "localhost/rkube/pause:1",
                "localhost/rkube/pause",
            ),
            (
                "localhost:5000/x",
                "localhost:5000/x:latest",
                "localhost:5000/x",
            ),
            (
                "127.0.0.1:5000/a/b:c",
                "127.0.0.1:5000/a/b:c",
                "127.0.0.1:5000/a/b",
            ),
            ("[::1]:5000/a", "[::1]:5000/a:latest", "[::1]:5000/a"),
            (
                "registry.k8s.io/pause:3.9",
                "registry.k8s.io/pause:3.9",
                "registry.k8s.io/pause",
            ),
            (
                "Registry.Example.com/app",
                "Registry.Example.com/app:latest",
                "Registry.Example.com/app",
            ),
            ("a.b/c__d-e.f:t", "a.b/c__d-e.f:t", "a.b/c__d-e.f"),
        ] {
            assert_eq!(normalize(input).as_deref(), Ok(normalized), "{input}");
            assert_eq!(parse_normalized(input).unwrap().name(), name, "{input}");
        }
        let with_digest = format!("busybox@{D}");
        assert_eq!(
            normalize(&with_digest).unwrap(),
            format!("docker.io/library/busybox@{D}")
        );
        let both = format!("x.io/a:1@{D}");
        let r = parse_normalized(&both).unwrap();
        assert_eq!(
            (r.tag.as_deref(), r.digest.as_deref()),
            (Some("1"), Some(D))
        );
    }

    #[test]
    fn bad_references_fail_with_upstreams_messages() {
        for (input, message) in [
            ("", "invalid reference format"),
            ("Busybox", "invalid reference format: repository name (library/Busybox) must be lowercase"),
            ("x.io/App:1", "invalid reference format: repository name (App) must be lowercase"),
            ("busybox:", "invalid reference format"),
            (":tag", "invalid reference format"),
            ("a//b", "invalid reference format"),
            ("busybox:-x", "invalid reference format"),
            ("busy box", "invalid reference format"),
            ("busybox@sha256:abc", "invalid reference format"),
            ("busybox@md5:ffffffffffffffffffffffffffffffff", "unsupported digest algorithm"),
            ("busybox@sha256:ffffffffffffffffffffffffffffffff", "invalid checksum digest length"),
            (
                "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
                "invalid repository name (ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff), cannot specify 64-byte hexadecimal strings",
            ),
        ] {
            let err = parse_normalized(input).expect_err(input);
            assert_eq!(err.to_string(), message, "{input:?}");
        }
        let long = format!("x.io/{}", "a".repeat(260));
        assert_eq!(parse_normalized(&long), Err(ReferenceError::NameTooLong));
        // the un-normalized parser's own messages
        assert_eq!(parse(""), Err(ReferenceError::NameEmpty));
        assert_eq!(parse("x.io/A"), Err(ReferenceError::NameContainsUppercase));
    }

    #[test]
    fn the_default_tag_keeps_the_name_as_written() {
        for (input, out) in [
            ("busybox", "busybox:latest"),
            ("busybox:1", "busybox:1"),
            ("x.io:5000/a", "x.io:5000/a:latest"),
            ("busybox:latest", "busybox:latest"),
        ] {
            assert_eq!(apply_default_tag(input).as_deref(), Ok(out), "{input}");
        }
        let d = format!("busybox@{D}");
        assert_eq!(apply_default_tag(&d).unwrap(), d);
        assert_eq!(
            apply_default_tag("Bad").unwrap_err().to_string(),
            "couldn't parse image name \"Bad\": invalid reference format: repository name (library/Bad) must be lowercase"
        );
    }

    #[test]
    fn tags_read_as_upstream_reads_them() {
        for (input, tag) in [
            ("busybox", Some("latest")),
            ("busybox:latest", Some("latest")),
            ("busybox:1", Some("1")),
            ("x.io:5000/a", Some("latest")),
            ("x.io:5000/a:5000", Some("5000")),
            ("Bad", None),
        ] {
            assert_eq!(tag_of(input).as_deref(), tag, "{input}");
        }
        assert_eq!(tag_of(&format!("busybox@{D}")), None);
        assert_eq!(
            tag_of(&format!("busybox:latest@{D}")).as_deref(),
            Some("latest")
        );
    }
}
