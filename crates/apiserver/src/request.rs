//! What a request asks for: the URL parsed into group, version, namespace, resource, name and
//! subresource (upstream's `RequestInfo`), and the query parameters the handlers use.

use rkube_api::{catalogue, ResourceInfo};

use crate::status::{ApiError, ApiResult};

/// A request against a resource (not discovery).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRequest {
    pub resource: &'static ResourceInfo,
    /// The namespace from the path; `None` for cluster-wide requests.
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
    /// Whether the legacy `/watch/` path prefix was used.
    pub watch_path: bool,
}

/// What a path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `/api`
    CoreVersions,
    /// `/apis`
    Groups,
    /// `/apis/{group}`
    Group(String),
    /// `/api/v1` or `/apis/{group}/{version}`
    GroupVersion {
        group: String,
        version: String,
    },
    Resource(ResourceRequest),
}

/// Parses an API path. `None` means the path is not under `/api` or `/apis`.
pub fn parse_path(path: &str) -> Option<ApiResult<Target>> {
    let parts: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|p| !p.is_empty())
        .collect();
    let (group, version, rest) = match parts.as_slice() {
        ["api"] => return Some(Ok(Target::CoreVersions)),
        ["apis"] => return Some(Ok(Target::Groups)),
        ["apis", group] => return Some(Ok(Target::Group((*group).to_string()))),
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return None,
    };
    if rest.is_empty() {
        return Some(Ok(Target::GroupVersion {
            group: group.to_string(),
            version: version.to_string(),
        }));
    }
    Some(parse_resource(group, version, rest).map(Target::Resource))
}

fn parse_resource(group: &str, version: &str, parts: &[&str]) -> ApiResult<ResourceRequest> {
    let (watch_path, parts) = match parts {
        ["watch", rest @ ..] => (true, rest),
        other => (false, other),
    };
    // `namespaces/{ns}/{resource}/...` is namespaced; `namespaces/{name}[/status|finalize]`
    // is the namespace object itself.
    let (namespace, parts): (Option<String>, &[&str]) = match parts {
        ["namespaces", ns, rest @ ..]
            if !rest.is_empty() && !matches!(rest[0], "status" | "finalize") =>
        {
            (Some((*ns).to_string()), rest)
        }
        other => (None, other),
    };
    let (plural, name, subresource) = match parts {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some(*name), None),
        [plural, name, sub] => (*plural, Some(*name), Some(*sub)),
        // Proxy paths carry more segments; only the first names the subresource.
        [plural, name, sub, ..] => (*plural, Some(*name), Some(*sub)),
        [] => return Err(ApiError::not_found_path()),
    };
    let resource = catalogue::find(group, version, plural).ok_or_else(ApiError::not_found_path)?;
    if namespace.is_some() && !resource.namespaced {
        return Err(ApiError::not_found_path());
    }
    let subresource = subresource.map(str::to_string);
    if let Some(sub) = &subresource {
        if resource.subresource(sub).is_none() {
            return Err(ApiError::not_found_path());
        }
    }
    Ok(ResourceRequest {
        resource,
        namespace,
        name: name.map(str::to_string),
        subresource,
        watch_path,
    })
}

impl ApiError {
    /// Upstream answers an unknown path with a bare 404 `Status`.
    pub fn not_found_path() -> Self {
        ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }
}

/// The query parameters, as given.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(raw: Option<&str>) -> ApiResult<Self> {
        let pairs = match raw {
            None | Some("") => Vec::new(),
            Some(q) => serde_urlencoded::from_str::<Vec<(String, String)>>(q)
                .map_err(|e| ApiError::bad_request(format!("invalid query string: {e}")))?,
        };
        Ok(Query { pairs })
    }

    /// The last value of `key`, if given and non-empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean such as `watch=true`, `watch=1`; absent is false.
    pub fn flag(&self, key: &str) -> ApiResult<bool> {
        match self.get(key) {
            None => Ok(false),
            Some("true" | "1" | "True" | "TRUE" | "t" | "T") => Ok(true),
            Some("false" | "0" | "False" | "FALSE" | "f" | "F") => Ok(false),
            Some(other) => Err(ApiError::bad_request(format!(
                "invalid value for {key}: {other:?}: must be true or false"
            ))),
        }
    }

    pub fn int(&self, key: &str) -> ApiResult<Option<i64>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.parse::<i64>().map(Some).map_err(|_| {
                ApiError::bad_request(format!(
                    "invalid value for {key}: {v:?}: must be an integer"
                ))
            }),
        }
    }

    /// `dryRun=All`; any other value is rejected as upstream does.
    pub fn dry_run(&self) -> ApiResult<bool> {
        let mut dry = false;
        for v in self.all("dryRun") {
            match v {
                "All" => dry = true,
                "" => {}
                other => {
                    return Err(ApiError::bad_request(format!(
                        "Invalid dry run value: {other:?}: supported values: \"All\""
                    )))
                }
            }
        }
        Ok(dry)
    }
}

/// `fieldValidation`: what to do with unknown or duplicate fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

impl Query {
    /// Upstream's default is `Warn` when the parameter is absent.
    pub fn field_validation(&self) -> ApiResult<FieldValidation> {
        match self.get("fieldValidation") {
            None | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation parameter unsupported: {other}. Must be one of Ignore, Warn, or Strict"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(path: &str) -> ResourceRequest {
        match parse_path(path) {
            Some(Ok(Target::Resource(r))) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn namespaced_paths_split_into_parts() {
        let r = res("/api/v1/namespaces/default/pods/web/status");
        assert_eq!(r.resource.plural, "pods");
        assert_eq!(r.namespace.as_deref(), Some("default"));
        assert_eq!(r.name.as_deref(), Some("web"));
        assert_eq!(r.subresource.as_deref(), Some("status"));
        let r = res("/apis/apps/v1/namespaces/x/deployments");
        assert_eq!(r.resource.kind, "Deployment");
        assert_eq!(r.name, None);
    }

    #[test]
    fn namespace_object_paths_are_cluster_scoped() {
        let r = res("/api/v1/namespaces/kube-system");
        assert_eq!(r.resource.plural, "namespaces");
        assert_eq!(r.name.as_deref(), Some("kube-system"));
        assert_eq!(r.namespace, None);
        let r = res("/api/v1/namespaces/kube-system/finalize");
        assert_eq!(r.subresource.as_deref(), Some("finalize"));
    }

    #[test]
    fn legacy_watch_prefix_is_recognised() {
        let r = res("/api/v1/watch/namespaces/default/pods");
        assert!(r.watch_path);
        assert_eq!(r.namespace.as_deref(), Some("default"));
    }

    #[test]
    fn unknown_resources_and_scopes_are_404() {
        for p in [
            "/api/v1/foos",
            "/api/v1/namespaces/x/nodes",
            "/api/v1/namespaces/x/pods/a/nope",
        ] {
            match parse_path(p) {
                Some(Err(e)) => assert_eq!(e.code, 404, "{p}"),
                other => panic!("{p}: {other:?}"),
            }
        }
        assert!(parse_path("/healthz").is_none());
    }
}
