//! Helpers over objects held as JSON values: metadata access, store keys, encoding.

use rkube_api::ResourceInfo;
use serde_json::{Map, Value};

use crate::status::{ApiError, ApiResult};

/// `metadata.<field>` as a string, if present.
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

/// `metadata` as a mutable map, created if missing.
pub fn meta_mut(obj: &mut Value) -> ApiResult<&mut Map<String, Value>> {
    let map = obj
        .as_object_mut()
        .ok_or_else(|| ApiError::bad_request("object is not a JSON object"))?;
    let meta = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if meta.is_null() {
        *meta = Value::Object(Map::new());
    }
    meta.as_object_mut()
        .ok_or_else(|| ApiError::bad_request("metadata must be an object"))
}

pub fn name(obj: &Value) -> &str {
    meta_str(obj, "name").unwrap_or("")
}

pub fn namespace(obj: &Value) -> &str {
    meta_str(obj, "namespace").unwrap_or("")
}

/// Sets `metadata.resourceVersion`.
pub fn set_resource_version(obj: &mut Value, rv: i64) {
    if let Ok(meta) = meta_mut(obj) {
        meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
    }
}

/// Parses a resourceVersion string as a store revision; upstream answers a malformed one with
/// 400 (lists, watches) or 409 (updates; the caller decides).
pub fn parse_resource_version(rv: &str) -> ApiResult<i64> {
    rv.parse::<i64>()
        .ok()
        .filter(|r| *r >= 0)
        .ok_or_else(|| ApiError::bad_request(format!("invalid resource version: {rv:?}")))
}

/// The store key of an object: `/registry/<storage>/<namespace>/<name>` or
/// `/registry/<storage>/<name>` for cluster-scoped resources.
pub fn key(res: &ResourceInfo, namespace: &str, name: &str) -> String {
    if res.namespaced {
        format!("/registry/{}/{namespace}/{name}", res.storage)
    } else {
        format!("/registry/{}/{name}", res.storage)
    }
}

/// The store prefix of a resource, or of one namespace of it.
pub fn prefix(res: &ResourceInfo, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) if res.namespaced => format!("/registry/{}/{ns}/", res.storage),
        _ => format!("/registry/{}/", res.storage),
    }
}

/// Decodes a stored value and stamps its resourceVersion.
pub fn decode(value: &[u8], mod_revision: i64) -> ApiResult<Value> {
    let mut obj: Value = serde_json::from_slice(value)
        .map_err(|e| ApiError::internal(format!("stored object does not decode: {e}")))?;
    set_resource_version(&mut obj, mod_revision);
    Ok(obj)
}

/// Encodes an object for the store, without its resourceVersion (the store's revision is
/// the resourceVersion, so storing it would only go stale).
pub fn encode(obj: &Value) -> ApiResult<Vec<u8>> {
    let mut obj = obj.clone();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
        meta.remove("selfLink");
    }
    serde_json::to_vec(&obj).map_err(|e| ApiError::internal(format!("object does not encode: {e}")))
}

/// The current time as upstream's `metav1.Time` renders it: RFC 3339, whole seconds, UTC.
pub fn now_rfc3339() -> String {
    let now = jiff::Timestamp::now();
    let secs = now.as_second();
    jiff::Timestamp::from_second(secs)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| now.to_string())
}

/// A random suffix for `generateName`, from the alphabet upstream uses (no vowels, no
/// look-alike characters).
pub fn random_suffix() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// A new random UUID (version 4) for `metadata.uid`.
pub fn new_uid() -> String {
    use rand::Rng;
    let mut b: [u8; 16] = rand::rng().random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        h[0..4].concat(),
        h[4..6].concat(),
        h[6..8].concat(),
        h[8..10].concat(),
        h[10..16].concat()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_scope() {
        let pods = rkube_api::catalogue::find("", "v1", "pods").expect("pods");
        let nodes = rkube_api::catalogue::find("", "v1", "nodes").expect("nodes");
        assert_eq!(key(pods, "default", "web"), "/registry/pods/default/web");
        assert_eq!(key(nodes, "", "n1"), "/registry/nodes/n1");
        assert_eq!(prefix(pods, Some("default")), "/registry/pods/default/");
        assert_eq!(prefix(nodes, Some("ignored")), "/registry/nodes/");
    }

    #[test]
    fn encode_drops_resource_version() {
        let obj = serde_json::json!({"metadata": {"name": "a", "resourceVersion": "5"}});
        let back = decode(&encode(&obj).expect("encode"), 9).expect("decode");
        assert_eq!(back["metadata"]["resourceVersion"], "9");
        let raw: Value = serde_json::from_slice(&encode(&obj).expect("encode")).expect("json");
        assert!(raw["metadata"].get("resourceVersion").is_none());
    }

    #[test]
    fn uids_are_version_4() {
        let u = new_uid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_ne!(u, new_uid());
    }
}
