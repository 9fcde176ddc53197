//! The OpenAPI documents kube-apiserver serves: the whole OpenAPI v2 (swagger 2.0) document at
//! `/openapi/v2`, the v3 discovery document at `/openapi/v3`, and one v3 document per
//! discovery path (`api`, `api/v1`, `apis`, `apis/apps`, `apis/apps/v1`) at
//! `/openapi/v3/<path>?hash=<hash>`.
//!
//! What real kubectl (1.27 to 1.33) needs from them, and where it is met:
//! - `kubectl explain` fetches `/openapi/v3`, picks `api/v1` or `apis/<group>/<version>`,
//!   fetches that document from its `serverRelativeURL`, takes the kind from the
//!   `x-kubernetes-group-version-kind` object of a get/post/put/patch/delete operation on
//!   `<prefix>/<resource>`, `<prefix>/<resource>/{name}` or their namespaced forms, then looks
//!   for the `components.schemas` entry whose `x-kubernetes-group-version-kind` list contains
//!   an equal `{group, kind, version}` map, and walks `properties`, `items`,
//!   `additionalProperties`, `$ref` and `allOf` within the same document. So each document
//!   holds the closure of the definitions it references ([`Definitions::closure`](super::definitions::Definitions::closure)).
//! - kubectl's `QueryParamVerifierV3` (cli-runtime) decides whether to send
//!   `fieldValidation=Strict`: in the group-version document it takes the first PATCH
//!   operation whose `x-kubernetes-group-version-kind` is the object's kind and looks for a
//!   parameter named `fieldValidation` among that operation's own parameters (path-level
//!   parameters do not count). See [`super::paths`].
//!
//! The documents are large and fixed for the life of the process, so they are built once.
//! The hash in `serverRelativeURL` lets clients cache a document forever; upstream uses
//! SHA-512, any stable digest of the content works, and no hashing crate is available, so a
//! 128-bit FNV-1a digest is used (collision resistance against adversaries is not needed:
//! the server produces every document itself).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{json, Map, Value};

use super::definitions::{
    definitions, served_group_versions, DEFINITIONS_PREFIX, INT_OR_STRING, QUANTITY, WATCH_EVENT,
};
use super::params::{In, Param};
use super::paths::{
    discovery_path, group_version_paths, referenced_definitions, Body, Operation, PathItem,
    Response,
};
use crate::catalogue;

const V3_PREFIX: &str = "#/components/schemas/";

const PATCH_TYPES: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];
const OBJECT_TYPES: &[&str] = &["application/json", "application/yaml"];
const STREAM_TYPES: &[&str] = &[
    "application/json",
    "application/json;stream=watch",
    "application/yaml",
];

/// The whole OpenAPI v2 document, `info.version` set to `server_version`.
pub fn openapi_v2(server_version: &str) -> Value {
    let mut doc = v2_document().clone();
    if let Some(info) = doc.get_mut("info").and_then(Value::as_object_mut) {
        info.insert("version".into(), Value::String(server_version.to_string()));
    }
    doc
}

/// [`openapi_v2`] serialized, cached for the last server version asked for.
pub fn openapi_v2_json(server_version: &str) -> Arc<Vec<u8>> {
    static CACHE: Mutex<Option<(String, Arc<Vec<u8>>)>> = Mutex::new(None);
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((version, bytes)) = cache.as_ref() {
        if version == server_version {
            return Arc::clone(bytes);
        }
    }
    let bytes = Arc::new(serde_json::to_vec(&openapi_v2(server_version)).unwrap_or_default());
    *cache = Some((server_version.to_string(), Arc::clone(&bytes)));
    bytes
}

/// The OpenAPI v3 discovery document served at `/openapi/v3`.
pub fn openapi_v3_index() -> Value {
    let mut paths = Map::new();
    for (key, doc) in v3_documents() {
        paths.insert(
            key.clone(),
            json!({ "serverRelativeURL": format!("/openapi/v3/{key}?hash={}", doc.hash) }),
        );
    }
    json!({ "paths": paths })
}

/// The OpenAPI v3 document of one discovery path (`api/v1`, `apis/apps/v1`, `apis/apps`,
/// `api`, `apis`); `None` if rkube does not serve it.
pub fn openapi_v3(path: &str) -> Option<Value> {
    v3_documents().get(v3_key(path)).map(|d| d.value.clone())
}

/// [`openapi_v3`] serialized.
pub fn openapi_v3_json(path: &str) -> Option<&'static [u8]> {
    v3_documents().get(v3_key(path)).map(|d| d.bytes.as_slice())
}

/// The hash clients see in the `serverRelativeURL` of a v3 document, for ETags and for
/// deciding whether a request named the current version.
pub fn openapi_v3_hash(path: &str) -> Option<&'static str> {
    v3_documents().get(v3_key(path)).map(|d| d.hash.as_str())
}

fn v3_key(path: &str) -> &str {
    let path = path.trim_matches('/');
    path.strip_prefix("openapi/v3/").unwrap_or(path)
}

/// A stable 128-bit FNV-1a digest as 32 uppercase hex digits.
pub fn content_hash(bytes: &[u8]) -> String {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    let mut h = OFFSET;
    for b in bytes {
        h ^= u128::from(*b);
        h = h.wrapping_mul(PRIME);
    }
    format!("{h:032X}")
}

#[derive(Debug)]
struct V3Doc {
    value: Value,
    bytes: Vec<u8>,
    hash: String,
}

fn v2_document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(build_v2)
}

fn v3_documents() -> &'static BTreeMap<String, V3Doc> {
    static DOCS: OnceLock<BTreeMap<String, V3Doc>> = OnceLock::new();
    DOCS.get_or_init(|| {
        let mut out = BTreeMap::new();
        for key in v3_keys() {
            let Some(value) = build_v3(&key) else {
                continue;
            };
            let bytes = serde_json::to_vec(&value).unwrap_or_default();
            let hash = content_hash(&bytes);
            out.insert(key, V3Doc { value, bytes, hash });
        }
        out
    })
}

/// `api`, `api/v1`, `apis`, then `apis/<group>` and `apis/<group>/<version>` per group.
fn v3_keys() -> Vec<String> {
    let mut keys = vec!["api".to_string(), "apis".to_string()];
    for (group, version) in served_group_versions() {
        if group.is_empty() {
            keys.push(format!("api/{version}"));
        } else {
            keys.push(format!("apis/{group}/{version}"));
        }
    }
    for g in catalogue::groups() {
        keys.push(format!("apis/{}", g.name));
    }
    keys
}

fn paths_of(key: &str) -> Vec<PathItem> {
    if let Some(item) = discovery_path(key) {
        return vec![item];
    }
    let (group, version) = match key.split('/').collect::<Vec<_>>().as_slice() {
        ["api", version] => ("", *version),
        ["apis", group, version] => (*group, *version),
        _ => return Vec::new(),
    };
    group_version_paths(group, version)
}

fn security_scheme() -> Value {
    json!({
        "BearerToken": {
            "description": "Bearer Token authentication",
            "in": "header",
            "name": "authorization",
            "type": "apiKey"
        }
    })
}

fn build_v2() -> Value {
    let mut items: Vec<PathItem> = ["api", "apis"]
        .iter()
        .filter_map(|k| discovery_path(k))
        .collect();
    for g in catalogue::groups() {
        items.extend(discovery_path(&format!("apis/{}", g.name)));
    }
    for (group, version) in served_group_versions() {
        items.extend(group_version_paths(group, version));
    }
    items.sort_by(|a, b| a.path.cmp(&b.path));
    let mut paths = Map::new();
    for item in &items {
        paths.insert(item.path.clone(), render_item(item, Flavor::V2));
    }
    let defs: Map<String, Value> = definitions()
        .iter()
        .map(|(k, v)| (k.clone(), v2_definition(v)))
        .collect();
    json!({
        "definitions": defs,
        "info": { "title": "Kubernetes", "version": "unversioned" },
        "paths": paths,
        "security": [{ "BearerToken": [] }],
        "securityDefinitions": security_scheme(),
        "swagger": "2.0"
    })
}

/// Swagger 2.0 has no `oneOf`; upstream describes the apiextensions "or" types
/// (JSONSchemaPropsOrArray and friends) by their description alone.
fn v2_definition(schema: &Value) -> Value {
    let mut out = schema.clone();
    if let Some(obj) = out.as_object_mut() {
        obj.remove("oneOf");
    }
    out
}

fn build_v3(key: &str) -> Option<Value> {
    let items = paths_of(key);
    if items.is_empty() {
        return None;
    }
    let defs = definitions();
    let mut roots = Vec::new();
    let mut paths = Map::new();
    for item in &items {
        roots.extend(referenced_definitions(item));
        paths.insert(item.path.clone(), render_item(item, Flavor::V3));
    }
    let mut schemas = Map::new();
    for name in defs.closure(roots) {
        if let Some(schema) = defs.get(&name) {
            schemas.insert(name.clone(), v3_definition(&name, schema));
        }
    }
    Some(json!({
        "components": { "schemas": schemas, "securitySchemes": security_scheme() },
        "info": { "title": "Kubernetes", "version": "unversioned" },
        "openapi": "3.0.0",
        "paths": paths,
        "security": [{ "BearerToken": [] }]
    }))
}

/// A registry definition in v3 form: references under `#/components/schemas/`, a `$ref`
/// with siblings (a field's description) wrapped in `allOf` as OpenAPI 3.0 ignores `$ref`
/// siblings, and IntOrString and Quantity as upstream's `oneOf`.
fn v3_definition(name: &str, schema: &Value) -> Value {
    let mut out = to_v3(schema);
    if let Some(obj) = out.as_object_mut() {
        if name == INT_OR_STRING {
            obj.remove("type");
            obj.insert(
                "oneOf".into(),
                json!([{ "type": "integer" }, { "type": "string" }]),
            );
        } else if name == QUANTITY {
            obj.remove("type");
            obj.insert(
                "oneOf".into(),
                json!([{ "type": "string" }, { "type": "number" }]),
            );
        }
    }
    out
}

fn to_v3(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => {
            let reference = map
                .get("$ref")
                .and_then(Value::as_str)
                .map(|r| r.replacen(DEFINITIONS_PREFIX, V3_PREFIX, 1));
            let mut out = Map::new();
            for (k, v) in map {
                if k != "$ref" {
                    out.insert(k.clone(), to_v3(v));
                }
            }
            match reference {
                Some(r) if out.is_empty() => {
                    out.insert("$ref".into(), Value::String(r));
                }
                Some(r) => {
                    out.insert("allOf".into(), json!([{ "$ref": r }]));
                }
                None => {}
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(to_v3).collect()),
        other => other.clone(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    V2,
    V3,
}

impl Flavor {
    fn reference(self, definition: &str) -> Value {
        let prefix = match self {
            Flavor::V2 => DEFINITIONS_PREFIX,
            Flavor::V3 => V3_PREFIX,
        };
        json!({ "$ref": format!("{prefix}{definition}") })
    }
}

fn render_param(p: &Param, flavor: Flavor) -> Value {
    let mut m = Map::new();
    m.insert("description".into(), json!(p.description));
    let location = match p.location {
        In::Path => "path",
        In::Query => "query",
    };
    m.insert("in".into(), json!(location));
    m.insert("name".into(), json!(p.name));
    if p.location == In::Path {
        m.insert("required".into(), json!(true));
    }
    match flavor {
        Flavor::V2 => {
            m.insert("type".into(), json!(p.ty));
            m.insert("uniqueItems".into(), json!(true));
        }
        Flavor::V3 => {
            m.insert(
                "schema".into(),
                json!({ "type": p.ty, "uniqueItems": true }),
            );
        }
    }
    Value::Object(m)
}

fn render_item(item: &PathItem, flavor: Flavor) -> Value {
    let mut m = Map::new();
    let mut ops: Vec<&Operation> = item.ops.iter().collect();
    ops.sort_by_key(|o| o.method);
    for op in ops {
        m.insert(op.method.to_string(), render_op(op, flavor));
    }
    if !item.params.is_empty() {
        let params: Vec<Value> = item
            .params
            .iter()
            .map(|p| render_param(p, flavor))
            .collect();
        m.insert("parameters".into(), Value::Array(params));
    }
    Value::Object(m)
}

fn response_schema(response: &Response, flavor: Flavor) -> Value {
    match response {
        Response::Object(d) | Response::List(d) => flavor.reference(d),
        Response::Watch => flavor.reference(WATCH_EVENT),
        Response::Text | Response::Log => json!({ "type": "string" }),
    }
}

fn response_types(op: &Operation) -> &'static [&'static str] {
    match &op.response {
        Response::List(_) | Response::Watch => STREAM_TYPES,
        Response::Log => &["text/plain", "application/json", "application/yaml"],
        Response::Text => &["*/*"],
        Response::Object(_) => OBJECT_TYPES,
    }
}

fn body_parts(body: &Body) -> (&'static [&'static str], String, bool) {
    match body {
        Body::Object(d) => (&["*/*"], d.clone(), true),
        Body::Patch => (PATCH_TYPES, super::definitions::PATCH.to_string(), true),
        Body::DeleteOptions => (
            &["*/*"],
            super::definitions::DELETE_OPTIONS.to_string(),
            false,
        ),
    }
}

fn render_op(op: &Operation, flavor: Flavor) -> Value {
    let mut m = Map::new();
    let schema = response_schema(&op.response, flavor);
    let types = response_types(op);
    let mut codes: Vec<(&str, &str)> = vec![("200", "OK")];
    codes.extend(op.also.iter().copied());
    let mut responses = Map::new();
    for (code, description) in codes {
        let response = match flavor {
            Flavor::V2 => json!({ "description": description, "schema": schema }),
            Flavor::V3 => {
                let content: Map<String, Value> = types
                    .iter()
                    .map(|t| (t.to_string(), json!({ "schema": schema })))
                    .collect();
                json!({ "content": content, "description": description })
            }
        };
        responses.insert(code.to_string(), response);
    }
    responses.insert("401".into(), json!({ "description": "Unauthorized" }));

    let mut params: Vec<Value> = op.params.iter().map(|p| render_param(p, flavor)).collect();
    match (flavor, &op.body) {
        (Flavor::V2, Some(body)) => {
            let (consumes, definition, required) = body_parts(body);
            params.insert(
                0,
                json!({
                    "in": "body",
                    "name": "body",
                    "required": required,
                    "schema": flavor.reference(&definition)
                }),
            );
            m.insert("consumes".into(), json!(consumes));
        }
        (Flavor::V2, None) => {
            m.insert("consumes".into(), json!(["*/*"]));
        }
        (Flavor::V3, Some(body)) => {
            let (consumes, definition, required) = body_parts(body);
            let content: Map<String, Value> = consumes
                .iter()
                .map(|t| {
                    (
                        t.to_string(),
                        json!({ "schema": flavor.reference(&definition) }),
                    )
                })
                .collect();
            let mut request = Map::new();
            request.insert("content".into(), Value::Object(content));
            if required {
                request.insert("required".into(), json!(true));
            }
            m.insert("requestBody".into(), Value::Object(request));
        }
        (Flavor::V3, None) => {}
    }
    m.insert("description".into(), json!(op.description));
    m.insert("operationId".into(), json!(op.id));
    if !params.is_empty() {
        m.insert("parameters".into(), Value::Array(params));
    }
    if flavor == Flavor::V2 {
        m.insert("produces".into(), json!(types));
        m.insert("schemes".into(), json!(["https"]));
    }
    m.insert("responses".into(), Value::Object(responses));
    m.insert("tags".into(), json!([op.tag]));
    if let Some(action) = op.action {
        m.insert("x-kubernetes-action".into(), json!(action.as_str()));
    }
    if let Some(gvk) = &op.gvk {
        m.insert(
            "x-kubernetes-group-version-kind".into(),
            json!({ "group": gvk.group, "kind": gvk.kind, "version": gvk.version }),
        );
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::RESOURCES;

    fn gv_key(group: &str, version: &str) -> String {
        if group.is_empty() {
            format!("api/{version}")
        } else {
            format!("apis/{group}/{version}")
        }
    }

    /// What kubectl's plaintext explain template does: the kind from an operation on the
    /// resource's paths, then the schema carrying that kind, then the field path.
    fn explain(
        doc: &Value,
        group: &str,
        version: &str,
        plural: &str,
        fields: &[&str],
    ) -> Option<Value> {
        let prefix = if group.is_empty() {
            "/api".to_string()
        } else {
            format!("/apis/{group}")
        };
        let searches = [
            format!("{prefix}/{version}/{plural}"),
            format!("{prefix}/{version}/{plural}/{{name}}"),
            format!("{prefix}/{version}/namespaces/{{namespace}}/{plural}"),
            format!("{prefix}/{version}/namespaces/{{namespace}}/{plural}/{{name}}"),
        ];
        let gvk = searches.iter().find_map(|p| {
            let item = doc.get("paths")?.get(p)?;
            ["get", "post", "put", "patch", "delete"]
                .iter()
                .find_map(|m| item.get(m)?.get("x-kubernetes-group-version-kind").cloned())
        })?;
        let schemas = doc.pointer("/components/schemas")?.as_object()?;
        let schema = schemas.values().find(|s| {
            s.get("x-kubernetes-group-version-kind")
                .and_then(Value::as_array)
                .is_some_and(|l| l.contains(&gvk))
        })?;
        fn resolve<'a>(schemas: &'a Map<String, Value>, mut s: &'a Value) -> Option<Value> {
            loop {
                if let Some(r) = s.get("$ref").and_then(Value::as_str) {
                    s = schemas.get(r.strip_prefix(V3_PREFIX)?)?;
                } else if let Some([only]) =
                    s.get("allOf").and_then(Value::as_array).map(Vec::as_slice)
                {
                    s = only;
                } else if let Some(items) = s.get("items") {
                    s = items;
                } else {
                    return Some(s.clone());
                }
            }
        }
        let mut current = resolve(schemas, schema)?;
        for field in fields {
            let next = current.get("properties")?.get(*field)?.clone();
            current = resolve(schemas, &next)?;
        }
        Some(current)
    }

    #[test]
    fn v2_document_has_pods_with_their_kind_and_parameters() {
        let doc = openapi_v2("v1.33.0");
        assert_eq!(doc.get("swagger"), Some(&json!("2.0")));
        assert_eq!(doc.pointer("/info/title"), Some(&json!("Kubernetes")));
        assert_eq!(doc.pointer("/info/version"), Some(&json!("v1.33.0")));
        assert_eq!(
            doc.pointer("/definitions/io.k8s.api.core.v1.Pod/x-kubernetes-group-version-kind"),
            Some(&json!([{"group": "", "kind": "Pod", "version": "v1"}]))
        );
        let list = doc.pointer("/paths/~1api~1v1~1namespaces~1{namespace}~1pods/get");
        assert_eq!(
            list.and_then(|o| o.get("operationId")),
            Some(&json!("listCoreV1NamespacedPod"))
        );
        let list_params: Vec<&str> = list
            .and_then(|o| o.get("parameters"))
            .and_then(Value::as_array)
            .map(|ps| ps.iter().filter_map(|p| p.get("name")?.as_str()).collect())
            .unwrap_or_default();
        assert!(list_params.contains(&"labelSelector"));
        let create =
            doc.pointer("/paths/~1apis~1apps~1v1~1namespaces~1{namespace}~1deployments/post");
        let body = create.and_then(|o| o.pointer("/parameters/0/schema/$ref"));
        assert_eq!(
            body,
            Some(&json!("#/definitions/io.k8s.api.apps.v1.Deployment"))
        );
        let create_params = create
            .and_then(|o| o.get("parameters"))
            .cloned()
            .unwrap_or_default();
        for name in ["dryRun", "fieldManager", "fieldValidation"] {
            assert!(
                create_params
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|p| p["name"] == name)),
                "{name} missing"
            );
        }
        assert_eq!(
            create.and_then(|o| o.get("x-kubernetes-action")),
            Some(&json!("post"))
        );
        assert!(openapi_v2_json("v1.33.0").len() > 100_000);
        let defs = doc.get("definitions").and_then(Value::as_object);
        let with_one_of: Vec<&String> = defs
            .into_iter()
            .flatten()
            .filter(|(_, d)| d.get("oneOf").is_some())
            .map(|(name, _)| name)
            .collect();
        assert!(
            with_one_of.is_empty(),
            "swagger 2.0 has no oneOf: {with_one_of:?}"
        );
    }

    #[test]
    fn v3_index_lists_every_served_group_version_with_its_hash() {
        let index = openapi_v3_index();
        for key in [
            "api",
            "api/v1",
            "apis",
            "apis/apps",
            "apis/apps/v1",
            "apis/autoscaling/v2",
        ] {
            let url = index
                .pointer(&format!("/paths/{}", key.replace('/', "~1")))
                .and_then(|p| p.get("serverRelativeURL"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            let hash = openapi_v3_hash(key).unwrap_or_default();
            assert_eq!(hash.len(), 32);
            assert_eq!(url, format!("/openapi/v3/{key}?hash={hash}"));
        }
        assert!(openapi_v3("apis/apps/v1beta1").is_none());
        assert!(openapi_v3("apis/nosuch.k8s.io").is_none());
    }

    #[test]
    fn v3_paths_accept_a_leading_slash_or_prefix() {
        assert!(openapi_v3("/openapi/v3/apis/apps/v1").is_some());
        assert_eq!(openapi_v3_json("api/v1"), openapi_v3_json("/api/v1/"));
    }

    #[test]
    fn every_served_kind_advertises_field_validation_on_patch_in_its_v3_document() {
        let check = |group: &str, version: &str, kind: &str| {
            let doc = openapi_v3(&gv_key(group, version)).unwrap_or_default();
            let want = json!({"group": group, "kind": kind, "version": version});
            let patches: Vec<&Value> = doc
                .get("paths")
                .and_then(Value::as_object)
                .map(|paths| {
                    paths
                        .values()
                        .filter_map(|p| p.get("patch"))
                        .filter(|op| op.get("x-kubernetes-group-version-kind") == Some(&want))
                        .collect()
                })
                .unwrap_or_default();
            assert!(!patches.is_empty(), "no PATCH for {group}/{version} {kind}");
            // kubectl takes whichever matching operation its map iteration meets first.
            for op in patches {
                let names: Vec<&str> = op
                    .get("parameters")
                    .and_then(Value::as_array)
                    .map(|ps| ps.iter().filter_map(|p| p.get("name")?.as_str()).collect())
                    .unwrap_or_default();
                assert!(
                    names.contains(&"fieldValidation"),
                    "{group}/{version} {kind}: {names:?}"
                );
            }
        };
        for r in RESOURCES.iter().filter(|r| r.has_verb("patch")) {
            check(r.group, r.version, r.kind);
        }
        // The namespace check kubectl falls back to for custom resources.
        check("", "v1", "Namespace");
    }

    #[test]
    fn explain_finds_nested_fields_of_every_served_kind() {
        for r in RESOURCES {
            let doc = openapi_v3(&gv_key(r.group, r.version)).unwrap_or_default();
            let metadata = explain(&doc, r.group, r.version, r.plural, &["metadata", "labels"]);
            assert!(metadata.is_some(), "explain {}.metadata.labels", r.plural);
        }
        let pods = openapi_v3("api/v1").unwrap_or_default();
        let containers = explain(&pods, "", "v1", "pods", &["spec", "containers"]);
        assert!(containers
            .as_ref()
            .and_then(|c| c.pointer("/properties/image"))
            .is_some());
        let deployments = openapi_v3("apis/apps/v1").unwrap_or_default();
        let probe = explain(
            &deployments,
            "apps",
            "v1",
            "deployments",
            &[
                "spec",
                "template",
                "spec",
                "containers",
                "livenessProbe",
                "httpGet",
                "port",
            ],
        );
        assert!(probe.is_some());
    }

    #[test]
    fn v3_documents_are_self_contained_and_use_v3_references() {
        for key in ["api/v1", "apis/apps/v1", "apis/apps", "api"] {
            let doc = openapi_v3(key).unwrap_or_default();
            let text = serde_json::to_string(&doc).unwrap_or_default();
            assert!(!text.contains("#/definitions/"), "{key}");
            let schemas = doc
                .pointer("/components/schemas")
                .cloned()
                .unwrap_or_default();
            let mut refs = Vec::new();
            collect(&doc, &mut refs);
            for r in refs {
                let name = r.strip_prefix(V3_PREFIX).unwrap_or(&r);
                assert!(schemas.get(name).is_some(), "{key}: dangling {r}");
            }
        }
        let pods = openapi_v3("api/v1").unwrap_or_default();
        assert_eq!(
            pods.pointer("/components/schemas/io.k8s.api.core.v1.Pod/properties/spec/allOf/0/$ref"),
            Some(&json!("#/components/schemas/io.k8s.api.core.v1.PodSpec"))
        );
        assert_eq!(
            pods.pointer(
                "/components/schemas/io.k8s.apimachinery.pkg.util.intstr.IntOrString/format"
            ),
            Some(&json!("int-or-string"))
        );
    }

    fn collect(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                    out.push(r.to_string());
                }
                m.values().for_each(|v| collect(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| collect(v, out)),
            _ => {}
        }
    }

    #[test]
    fn content_hash_is_stable_and_content_sensitive() {
        assert_eq!(content_hash(b"abc"), content_hash(b"abc"));
        assert_ne!(content_hash(b"abc"), content_hash(b"abd"));
        assert_eq!(content_hash(b"").len(), 32);
        assert!(content_hash(b"x")
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase()));
    }
}
