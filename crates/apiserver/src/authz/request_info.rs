//! What a request asks to do, read from its method, path and query alone, as upstream's
//! `RequestInfoFactory` does: authorization runs before the resource is looked up, so an
//! unknown resource is authorized (and then 404s) like any other.

use http::Method;

/// The authorization view of one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestInfo {
    pub resource_request: bool,
    /// The request path (for non-resource requests).
    pub path: String,
    /// Upstream's verbs: get, list, watch, create, update, patch, delete, deletecollection
    /// for resources; the lower-cased HTTP method for everything else.
    pub verb: String,
    pub api_group: String,
    pub api_version: String,
    pub namespace: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
}

/// Subresources of a namespace that are not namespaced resources of their own.
const NAMESPACE_SUBRESOURCES: &[&str] = &["status", "finalize"];

/// Reads a request the way upstream's `RequestInfoFactory.NewRequestInfo` does.
pub fn request_info(method: &Method, path: &str, query: Option<&str>) -> RequestInfo {
    let non_resource = || RequestInfo {
        resource_request: false,
        path: path.to_string(),
        verb: method.as_str().to_ascii_lowercase(),
        ..RequestInfo::default()
    };
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, mut rest) = match parts.as_slice() {
        ["api", version, rest @ ..] if !rest.is_empty() => ("", *version, rest),
        ["apis", group, version, rest @ ..] if !rest.is_empty() => (*group, *version, rest),
        _ => return non_resource(),
    };
    let mut info = RequestInfo {
        resource_request: true,
        path: path.to_string(),
        api_group: group.to_string(),
        api_version: version.to_string(),
        ..RequestInfo::default()
    };
    let mut watch_prefix = false;
    if rest.first() == Some(&"watch") {
        watch_prefix = true;
        rest = &rest[1..];
    }
    let params: Vec<(String, String)> = query
        .map(|q| serde_urlencoded::from_str(q).unwrap_or_default())
        .unwrap_or_default();
    let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    info.verb = match *method {
        Method::POST => "create",
        Method::GET | Method::HEAD => "get",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "",
    }
    .to_string();
    if rest.first() == Some(&"namespaces") {
        if let Some(ns) = rest.get(1) {
            info.namespace = (*ns).to_string();
            if rest.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&rest[2]) {
                rest = &rest[2..];
            }
        }
    }
    if let Some(r) = rest.first() {
        info.resource = (*r).to_string();
    }
    if let Some(n) = rest.get(1) {
        info.name = (*n).to_string();
    }
    if let Some(s) = rest.get(2) {
        info.subresource = (*s).to_string();
    }
    if watch_prefix {
        info.verb = "watch".to_string();
    } else if info.verb == "get" && rest.len() < 2 {
        let watching = matches!(param("watch"), Some("1" | "true" | "True"));
        info.verb = if watching { "watch" } else { "list" }.to_string();
    } else if info.verb == "delete" && rest.len() < 2 {
        info.verb = "deletecollection".to_string();
    }
    // A list or watch of one object by `metadata.name` is authorized as that object.
    if matches!(info.verb.as_str(), "list" | "watch") {
        if let Some(sel) = param("fieldSelector") {
            for term in sel.split(',') {
                let term = term.trim();
                if let Some(name) = term
                    .strip_prefix("metadata.name==")
                    .or_else(|| term.strip_prefix("metadata.name="))
                {
                    info.name = name.to_string();
                }
            }
        }
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (method, path, query, verb, group, namespace, resource, name, subresource)
    type Case = (
        Method,
        &'static str,
        Option<&'static str>,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
    );

    fn ri(method: Method, path: &str, query: Option<&str>) -> RequestInfo {
        request_info(&method, path, query)
    }

    #[test]
    fn resource_paths_map_to_upstream_verbs_and_coordinates() {
        // (method, path, query, verb, group, namespace, resource, name, subresource)
        let cases: &[Case] = &[
            (
                Method::GET,
                "/api/v1/pods",
                None,
                "list",
                "",
                "",
                "pods",
                "",
                "",
            ),
            (
                Method::GET,
                "/api/v1/pods",
                Some("watch=true"),
                "watch",
                "",
                "",
                "pods",
                "",
                "",
            ),
            (
                Method::GET,
                "/api/v1/watch/namespaces/a/pods",
                None,
                "watch",
                "",
                "a",
                "pods",
                "",
                "",
            ),
            (
                Method::GET,
                "/api/v1/namespaces/a/pods/p",
                None,
                "get",
                "",
                "a",
                "pods",
                "p",
                "",
            ),
            (
                Method::GET,
                "/api/v1/namespaces/a/pods/p/log",
                None,
                "get",
                "",
                "a",
                "pods",
                "p",
                "log",
            ),
            (
                Method::POST,
                "/api/v1/namespaces/a/pods",
                None,
                "create",
                "",
                "a",
                "pods",
                "",
                "",
            ),
            (
                Method::PUT,
                "/apis/apps/v1/namespaces/a/deployments/d/scale",
                None,
                "update",
                "apps",
                "a",
                "deployments",
                "d",
                "scale",
            ),
            (
                Method::PATCH,
                "/api/v1/nodes/n1/status",
                None,
                "patch",
                "",
                "",
                "nodes",
                "n1",
                "status",
            ),
            (
                Method::DELETE,
                "/api/v1/namespaces/a/pods",
                None,
                "deletecollection",
                "",
                "a",
                "pods",
                "",
                "",
            ),
            (
                Method::DELETE,
                "/api/v1/namespaces/a",
                None,
                "delete",
                "",
                "a",
                "namespaces",
                "a",
                "",
            ),
            (
                Method::GET,
                "/api/v1/namespaces",
                None,
                "list",
                "",
                "",
                "namespaces",
                "",
                "",
            ),
            (
                Method::GET,
                "/api/v1/namespaces/a",
                None,
                "get",
                "",
                "a",
                "namespaces",
                "a",
                "",
            ),
            (
                Method::PUT,
                "/api/v1/namespaces/a/finalize",
                None,
                "update",
                "",
                "a",
                "namespaces",
                "a",
                "finalize",
            ),
            // connect subresources: SPDY upgrades are POSTs (create), WebSocket handshakes
            // GETs (get; upstream asks for create too only from 1.35)
            (
                Method::POST,
                "/api/v1/namespaces/a/pods/p/exec",
                Some("command=sh&stdin=true"),
                "create",
                "",
                "a",
                "pods",
                "p",
                "exec",
            ),
            (
                Method::GET,
                "/api/v1/namespaces/a/pods/p/portforward",
                Some("ports=80"),
                "get",
                "",
                "a",
                "pods",
                "p",
                "portforward",
            ),
            (
                Method::GET,
                "/api/v1/nodes/n1/proxy/stats/summary",
                None,
                "get",
                "",
                "",
                "nodes",
                "n1",
                "proxy",
            ),
            (
                Method::GET,
                "/api/v1/namespaces/a/secrets",
                Some("fieldSelector=metadata.name%3Ds1"),
                "list",
                "",
                "a",
                "secrets",
                "s1",
                "",
            ),
        ];
        for (m, path, q, verb, group, ns, res, name, sub) in cases {
            let got = ri(m.clone(), path, *q);
            assert!(got.resource_request, "{path}");
            assert_eq!(
                (
                    got.verb.as_str(),
                    got.api_group.as_str(),
                    got.namespace.as_str(),
                    got.resource.as_str(),
                    got.name.as_str(),
                    got.subresource.as_str()
                ),
                (*verb, *group, *ns, *res, *name, *sub),
                "{m} {path}"
            );
        }
    }

    #[test]
    fn discovery_and_other_paths_are_non_resource_requests() {
        for path in [
            "/api",
            "/apis",
            "/apis/apps",
            "/api/v1",
            "/apis/apps/v1",
            "/healthz",
            "/version",
            "/openapi/v2",
            "/metrics",
        ] {
            let got = ri(Method::GET, path, None);
            assert!(!got.resource_request, "{path}");
            assert_eq!(got.verb, "get");
            assert_eq!(got.path, path);
        }
    }
}
