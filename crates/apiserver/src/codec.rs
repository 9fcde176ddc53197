//! Content negotiation: request bodies in JSON or YAML, responses in JSON, YAML or as a
//! `meta.k8s.io/v1 Table`, as the `Accept` header asks.

use axum::response::{IntoResponse, Response};
use http::{header, HeaderMap, StatusCode};
use serde_json::Value;

use crate::status::{ApiError, ApiResult};

/// What the client accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Json,
    Yaml,
    /// `application/json;as=Table;v=v1;g=meta.k8s.io`.
    Table,
    /// `application/vnd.kubernetes.protobuf`, chosen only when the client accepts nothing
    /// JSON-shaped: JSON is cheaper for rkube to produce, and every client that lists both
    /// reads it.
    Protobuf,
    /// `application/json;as=PartialObjectMetadata[List];g=meta.k8s.io;v=v1`: objects reduced
    /// to their metadata, what metadata-only clients and informers read.
    Metadata(Partial),
}

/// Which partial-metadata shape a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partial {
    /// `PartialObjectMetadataList` (for lists) rather than `PartialObjectMetadata`.
    pub list: bool,
    /// `meta.k8s.io/v1beta1` rather than `v1`.
    pub v1beta1: bool,
}

impl Partial {
    fn api_version(self) -> &'static str {
        if self.v1beta1 {
            "meta.k8s.io/v1beta1"
        } else {
            "meta.k8s.io/v1"
        }
    }

    /// `obj` as a `PartialObjectMetadata`.
    pub fn object(self, obj: &Value) -> Value {
        let meta = obj
            .get("metadata")
            .cloned()
            .unwrap_or_else(|| Value::Object(Default::default()));
        serde_json::json!({"kind": "PartialObjectMetadata", "apiVersion": self.api_version(),
            "metadata": meta})
    }

    /// A `PartialObjectMetadataList` of `items` with the list metadata `meta`.
    pub fn list<'a>(self, meta: &Value, items: impl IntoIterator<Item = &'a Value>) -> Value {
        let items: Vec<Value> = items.into_iter().map(|o| self.object(o)).collect();
        serde_json::json!({"kind": "PartialObjectMetadataList", "apiVersion": self.api_version(),
            "metadata": meta, "items": items})
    }

    /// A response body in this shape: a list's items or an object reduced to metadata; a
    /// `Status` stays as it is.
    fn transform(self, value: &Value) -> Value {
        if value.get("kind").and_then(Value::as_str) == Some("Status") {
            return value.clone();
        }
        match value.get("items").and_then(Value::as_array) {
            Some(items) => self.list(value.get("metadata").unwrap_or(&Value::Null), items),
            None => self.object(value),
        }
    }
}

/// One media range of an `Accept` header: type and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRange {
    pub mime: String,
    pub params: Vec<(String, String)>,
}

impl MediaRange {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Splits an `Accept` header into media ranges, in the client's order.
pub fn media_ranges(accept: &str) -> Vec<MediaRange> {
    accept
        .split(',')
        .filter_map(|part| {
            let mut pieces = part.split(';').map(str::trim);
            let mime = pieces.next()?.to_ascii_lowercase();
            if mime.is_empty() {
                return None;
            }
            let params = pieces
                .filter_map(|p| {
                    let (k, v) = p.split_once('=')?;
                    Some((k.trim().to_string(), v.trim().trim_matches('"').to_string()))
                })
                .collect();
            Some(MediaRange { mime, params })
        })
        .collect()
}

/// Picks the response format for an object or list; 406 when nothing offered is served.
pub fn negotiate(headers: &HeaderMap) -> ApiResult<Output> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Ok(Output::Json);
    };
    if accept.trim().is_empty() {
        return Ok(Output::Json);
    }
    let ranges = media_ranges(accept);
    let protobuf = ranges
        .iter()
        .any(|r| r.mime == "application/vnd.kubernetes.protobuf" && r.param("as").is_none());
    for range in ranges {
        match (range.mime.as_str(), range.param("as")) {
            ("application/json", Some("Table"))
                if range.param("g") == Some("meta.k8s.io")
                    && matches!(range.param("v"), Some("v1" | "v1beta1")) =>
            {
                return Ok(Output::Table)
            }
            (
                "application/json",
                Some(shape @ ("PartialObjectMetadata" | "PartialObjectMetadataList")),
            ) if range.param("g") == Some("meta.k8s.io")
                && matches!(range.param("v"), Some("v1" | "v1beta1")) =>
            {
                return Ok(Output::Metadata(Partial {
                    list: shape == "PartialObjectMetadataList",
                    v1beta1: range.param("v") == Some("v1beta1"),
                }))
            }
            ("application/json" | "*/*" | "application/*", None) => return Ok(Output::Json),
            ("application/yaml", None) => return Ok(Output::Yaml),
            _ => {}
        }
    }
    if protobuf {
        return Ok(Output::Protobuf);
    }
    Err(ApiError::not_acceptable(accept))
}

/// The body's media type, without parameters.
pub fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Decodes a body given as JSON or YAML.
pub fn decode_body(content_type: &str, body: &[u8]) -> ApiResult<Value> {
    match content_type {
        "" | "application/json" => decode_json(body),
        "application/yaml" | "application/apply-patch+yaml" | "text/yaml" => decode_yaml(body),
        "application/vnd.kubernetes.protobuf" => rkube_proto::decode(body).map_err(|e| {
            ApiError::bad_request(format!("error decoding request body as protobuf: {e}"))
        }),
        other => Err(ApiError::unsupported_media_type(other)),
    }
}

pub fn decode_json(body: &[u8]) -> ApiResult<Value> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding request body as JSON: {e}")))
}

/// YAML is read as one document and turned into JSON values.
pub fn decode_yaml(body: &[u8]) -> ApiResult<Value> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("error decoding request body as YAML: not UTF-8"))?;
    let v: Value = serde_yaml_ng::from_str(text)
        .map_err(|e| ApiError::bad_request(format!("error decoding request body as YAML: {e}")))?;
    Ok(v)
}

/// Renders a value as JSON or YAML with the given status.
pub fn respond(code: StatusCode, output: Output, value: &Value) -> Response {
    match output {
        Output::Yaml => match serde_yaml_ng::to_string(value) {
            Ok(s) => (code, [(header::CONTENT_TYPE, "application/yaml")], s).into_response(),
            Err(e) => ApiError::internal(e.to_string()).into_response(),
        },
        Output::Protobuf => match rkube_proto::encode(value) {
            Ok(b) => (code, [(header::CONTENT_TYPE, rkube_proto::CONTENT_TYPE)], b).into_response(),
            Err(_) => json_response(code, value),
        },
        Output::Json | Output::Table => json_response(code, value),
        Output::Metadata(p) => json_response(code, &p.transform(value)),
    }
}

/// 406 for a partial-metadata shape that does not fit the response: a list asked for as
/// `PartialObjectMetadata`, or an object as `PartialObjectMetadataList`.
pub fn wrong_partial_shape(p: Partial) -> ApiError {
    let (asked, is) = if p.list {
        ("PartialObjectMetadataList", "an object")
    } else {
        ("PartialObjectMetadata", "a list")
    };
    let mut e = ApiError::not_acceptable(&format!("application/json;as={asked}"));
    e.message = format!("you requested {asked}, but the requested object is {is}");
    e
}

pub fn json_response(code: StatusCode, value: &Value) -> Response {
    match serde_json::to_vec(value) {
        Ok(b) => (code, [(header::CONTENT_TYPE, "application/json")], b).into_response(),
        Err(e) => ApiError::internal(e.to_string()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> ApiResult<Output> {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, v.parse().expect("header"));
        negotiate(&h)
    }

    #[test]
    fn kubectl_get_asks_for_tables_first() {
        let kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(accept(kubectl), Ok(Output::Table));
        assert_eq!(accept("application/json"), Ok(Output::Json));
        assert_eq!(accept("application/yaml"), Ok(Output::Yaml));
        assert_eq!(accept("*/*"), Ok(Output::Json));
    }

    #[test]
    fn protobuf_is_chosen_only_when_nothing_else_is_accepted() {
        assert_eq!(
            accept("application/vnd.kubernetes.protobuf"),
            Ok(Output::Protobuf)
        );
        assert_eq!(accept("text/html").expect_err("406").code, 406);
        assert_eq!(
            accept("application/vnd.kubernetes.protobuf, application/json"),
            Ok(Output::Json)
        );
    }

    #[test]
    fn bodies_decode_from_json_and_yaml() {
        let y =
            decode_body("application/yaml", b"kind: Pod\nmetadata:\n  name: a\n").expect("yaml");
        assert_eq!(y["metadata"]["name"], "a");
        assert_eq!(
            decode_body("application/json", b"{").expect_err("bad").code,
            400
        );
        assert_eq!(
            decode_body("application/vnd.kubernetes.protobuf", b"")
                .expect_err("400")
                .code,
            400
        );
        assert_eq!(
            decode_body("application/cbor", b"").expect_err("415").code,
            415
        );
    }
}
