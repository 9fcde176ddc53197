//! Discovery documents: `/api`, `/apis`, each group and group-version, aggregated discovery
//! (`apidiscovery.k8s.io` v2 and v2beta1, which kubectl 1.30+ asks for first), and `/version`.
//! All are built from the resource catalogue.

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::response::{IntoResponse, Response};
use http::{header, HeaderMap, StatusCode};
use rkube_api::catalogue::{self, ResourceInfo, Subresource};
use serde_json::{json, Value};

use crate::codec::{json_response, media_ranges};
use crate::status::ApiError;

/// The Kubernetes version whose API rkube serves.
pub const KUBE_MAJOR: &str = "1";
pub const KUBE_MINOR: &str = "33";
pub const GIT_VERSION: &str = "v1.33.0+rkube";

pub fn version() -> Value {
    json!({
        "major": KUBE_MAJOR,
        "minor": KUBE_MINOR,
        "gitVersion": GIT_VERSION,
        "gitCommit": env!("CARGO_PKG_VERSION"),
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "rustc",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, goarch()),
    })
}

fn goarch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// `GET /api`.
pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn group_json(g: &catalogue::GroupInfo) -> Value {
    let versions: Vec<Value> = g
        .versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{}/{v}", g.name), "version": v}))
        .collect();
    let preferred = versions.first().cloned().unwrap_or(Value::Null);
    json!({"name": g.name, "versions": versions, "preferredVersion": preferred})
}

/// `GET /apis`.
pub fn group_list() -> Value {
    let groups: Vec<Value> = catalogue::groups().iter().map(group_json).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /apis/{group}`.
pub fn group(name: &str) -> Option<Value> {
    let g = catalogue::groups().into_iter().find(|g| g.name == name)?;
    let mut v = group_json(&g);
    let obj = v.as_object_mut()?;
    obj.insert("kind".into(), json!("APIGroup"));
    obj.insert("apiVersion".into(), json!("v1"));
    Some(v)
}

fn sub_gv<'a>(res: &'a ResourceInfo, s: &'a Subresource) -> (&'a str, &'a str) {
    if s.version.is_empty() {
        (res.group, res.version)
    } else {
        (s.group, s.version)
    }
}

/// `GET /api/v1` or `/apis/{group}/{version}`: the APIResourceList.
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    for r in catalogue::resources_in(group, version) {
        let mut entry = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": r.verbs,
        });
        if !r.short_names.is_empty() {
            entry["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            entry["categories"] = json!(r.categories);
        }
        resources.push(entry);
        for s in r.subresources {
            let mut e = json!({
                "name": format!("{}/{}", r.plural, s.name),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": s.kind,
                "verbs": s.verbs,
            });
            if !s.version.is_empty() {
                e["group"] = json!(s.group);
                e["version"] = json!(s.version);
            }
            resources.push(e);
        }
    }
    if resources.is_empty() {
        return None;
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}

fn discovery_resource(r: &ResourceInfo) -> Value {
    let subs: Vec<Value> = r
        .subresources
        .iter()
        .map(|s| {
            let (g, v) = sub_gv(r, s);
            json!({
                "subresource": s.name,
                "responseKind": {"group": g, "version": v, "kind": s.kind},
                "verbs": s.verbs,
            })
        })
        .collect();
    let mut e = json!({
        "resource": r.plural,
        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": r.verbs,
    });
    if !r.short_names.is_empty() {
        e["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        e["categories"] = json!(r.categories);
    }
    if !subs.is_empty() {
        e["subresources"] = Value::Array(subs);
    }
    e
}

fn discovery_group(name: &str, versions: &[&str]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| {
            let resources: Vec<Value> = catalogue::resources_in(name, v)
                .map(discovery_resource)
                .collect();
            json!({"version": v, "resources": resources, "freshness": "Current"})
        })
        .collect();
    let metadata = if name.is_empty() {
        json!({"creationTimestamp": null})
    } else {
        json!({"name": name, "creationTimestamp": null})
    };
    json!({"metadata": metadata, "versions": versions})
}

/// The aggregated discovery document for `/api` (`core == true`) or `/apis`.
pub fn aggregated_doc(core: bool, api_version: &str) -> Value {
    let items: Vec<Value> = if core {
        vec![discovery_group("", &["v1"])]
    } else {
        catalogue::groups()
            .iter()
            .map(|g| discovery_group(g.name, &g.versions))
            .collect()
    };
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{api_version}"),
        "metadata": {},
        "items": items,
    })
}

/// Which aggregated discovery version the client asked for, if any (`v2` or `v2beta1`).
pub fn wants_aggregated(headers: &HeaderMap) -> Option<&'static str> {
    let accept = headers.get(header::ACCEPT)?.to_str().ok()?;
    for r in media_ranges(accept) {
        if r.mime == "application/json"
            && r.param("g") == Some("apidiscovery.k8s.io")
            && r.param("as") == Some("APIGroupDiscoveryList")
        {
            match r.param("v") {
                Some("v2") => return Some("v2"),
                Some("v2beta1") => return Some("v2beta1"),
                _ => {}
            }
        }
        if r.mime == "application/json" && r.param("as").is_none() {
            return None;
        }
    }
    None
}

/// The discovery documents, encoded once: they depend only on the catalogue, and kubectl
/// asks for them before most commands.
struct Encoded {
    /// Aggregated documents by (core, version).
    aggregated: HashMap<(bool, &'static str), Vec<u8>>,
    group_list: Vec<u8>,
    /// `/apis/{group}` by group; `/api/v1` and `/apis/{group}/{version}` by group-version.
    groups: HashMap<&'static str, Vec<u8>>,
    resource_lists: HashMap<String, Vec<u8>>,
}

fn encoded() -> &'static Encoded {
    static ENCODED: OnceLock<Encoded> = OnceLock::new();
    ENCODED.get_or_init(|| {
        let bytes = |v: &Value| serde_json::to_vec(v).unwrap_or_default();
        let mut aggregated = HashMap::new();
        for core in [true, false] {
            for v in ["v2", "v2beta1"] {
                aggregated.insert((core, v), bytes(&aggregated_doc(core, v)));
            }
        }
        let mut groups = HashMap::new();
        let mut resource_lists = HashMap::new();
        if let Some(doc) = resource_list("", "v1") {
            resource_lists.insert("/v1".to_string(), bytes(&doc));
        }
        for g in catalogue::groups() {
            if let Some(doc) = group(g.name) {
                groups.insert(g.name, bytes(&doc));
            }
            for v in g.versions {
                if let Some(doc) = resource_list(g.name, v) {
                    resource_lists.insert(format!("{}/{v}", g.name), bytes(&doc));
                }
            }
        }
        Encoded {
            aggregated,
            group_list: bytes(&group_list()),
            groups,
            resource_lists,
        }
    })
}

fn json_bytes(body: &'static [u8]) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// `/api` or `/apis`, aggregated when asked for.
pub fn root(core: bool, headers: &HeaderMap, server_address: &str) -> Response {
    if let Some(v) = wants_aggregated(headers) {
        let body: &'static [u8] = encoded()
            .aggregated
            .get(&(core, v))
            .map_or(&[], Vec::as_slice);
        let ct = format!("application/json;g=apidiscovery.k8s.io;v={v};as=APIGroupDiscoveryList");
        return (StatusCode::OK, [(header::CONTENT_TYPE, ct)], body).into_response();
    }
    if core {
        json_response(StatusCode::OK, &core_versions(server_address))
    } else {
        json_bytes(&encoded().group_list)
    }
}

/// `/apis/{group}`.
pub fn group_response(name: &str) -> Response {
    match encoded().groups.get(name) {
        Some(doc) => json_bytes(doc),
        None => ApiError::not_found_path().into_response(),
    }
}

/// `/api/v1`, `/apis/{group}/{version}`.
pub fn resource_list_response(group: &str, version: &str) -> Response {
    match encoded().resource_lists.get(&format!("{group}/{version}")) {
        Some(doc) => json_bytes(doc),
        None => ApiError::not_found_path().into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_resource_list_has_pods_and_subresources() {
        let doc = resource_list("", "v1").expect("v1");
        let res = doc["resources"].as_array().expect("resources");
        let pods = res.iter().find(|r| r["name"] == "pods").expect("pods");
        assert_eq!(pods["shortNames"], json!(["po"]));
        assert_eq!(pods["categories"], json!(["all"]));
        let eviction = res
            .iter()
            .find(|r| r["name"] == "pods/eviction")
            .expect("eviction");
        assert_eq!(eviction["group"], "policy");
    }

    #[test]
    fn aggregated_discovery_names_scale_kind() {
        let doc = aggregated_doc(false, "v2");
        let apps = doc["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|g| g["metadata"]["name"] == "apps")
            .expect("apps");
        let deploy = apps["versions"][0]["resources"]
            .as_array()
            .expect("resources")
            .iter()
            .find(|r| r["resource"] == "deployments")
            .expect("deployments");
        let scale = deploy["subresources"]
            .as_array()
            .expect("subs")
            .iter()
            .find(|s| s["subresource"] == "scale")
            .expect("scale");
        assert_eq!(scale["responseKind"]["kind"], "Scale");
        assert_eq!(scale["responseKind"]["group"], "autoscaling");
    }

    #[test]
    fn kubectl_accept_header_selects_aggregated_v2() {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json".parse().expect("h"));
        assert_eq!(wants_aggregated(&h), Some("v2"));
        h.insert(header::ACCEPT, "application/json".parse().expect("h"));
        assert_eq!(wants_aggregated(&h), None);
    }
}
