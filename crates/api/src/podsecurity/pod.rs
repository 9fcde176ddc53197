//! Reading a pod spec in JSON form the way the checks need it, and the phrasing helpers the
//! checks share.
//!
//! A field that is absent or `null` is upstream's nil pointer; a value of the wrong JSON type
//! is treated as absent (the API server has type-checked objects before admission).

pub(super) use crate::go_quote::go_quote;
use serde_json::Value;

/// `v[key]` unless it is absent or null.
pub(super) fn field<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|x| !x.is_null())
}

/// `v[k0][k1]...` unless any step is absent or null.
pub(super) fn path<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().try_fold(v, |cur, k| field(cur, k))
}

pub(super) fn bool_at(v: &Value, keys: &[&str]) -> Option<bool> {
    path(v, keys).and_then(Value::as_bool)
}

pub(super) fn str_at<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a str> {
    path(v, keys).and_then(Value::as_str)
}

pub(super) fn array<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Every container of the spec in upstream's visiting order: init containers, containers,
/// then ephemeral containers (which carry the same security fields).
pub(super) fn containers(spec: &Value) -> impl Iterator<Item = &Value> {
    array(spec, "initContainers")
        .iter()
        .chain(array(spec, "containers"))
        .chain(array(spec, "ephemeralContainers"))
}

pub(super) fn name(container: &Value) -> &str {
    container.get("name").and_then(Value::as_str).unwrap_or("")
}

/// `spec.securityContext`.
pub(super) fn pod_sc(spec: &Value) -> Option<&Value> {
    field(spec, "securityContext")
}

/// A container's `securityContext`.
pub(super) fn container_sc(container: &Value) -> Option<&Value> {
    field(container, "securityContext")
}

/// Whether `spec.os.name` is `windows`; several restricted checks skip such pods from v1.25.
pub(super) fn is_windows(spec: &Value) -> bool {
    str_at(spec, &["os", "name"]) == Some("windows")
}

/// `"a", "b"` (upstream's `joinQuote`).
pub(super) fn join_quote<S: AsRef<str>>(items: &[S]) -> String {
    if items.is_empty() {
        return String::new();
    }
    let inner: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    format!("\"{}\"", inner.join("\", \""))
}

pub(super) fn pluralize<'a>(singular: &'a str, plural: &'a str, count: usize) -> &'a str {
    if count == 1 {
        singular
    } else {
        plural
    }
}

/// `container "a"` or `containers "a", "b"`.
pub(super) fn containers_phrase<S: AsRef<str>>(names: &[S]) -> String {
    format!(
        "{} {}",
        pluralize("container", "containers", names.len()),
        join_quote(names)
    )
}

/// The string annotations of pod metadata, sorted by key.
pub(super) fn annotations(meta: &Value) -> Vec<(&str, &str)> {
    let mut out: Vec<(&str, &str)> = meta
        .get("annotations")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
                .collect()
        })
        .unwrap_or_default();
    out.sort_unstable();
    out
}

pub(super) fn annotation<'a>(meta: &'a Value, key: &str) -> Option<&'a str> {
    meta.get("annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}
