//! DefaultStorageClass: a claim that names no storage class gets the cluster's default one
//! (the class annotated `storageclass.kubernetes.io/is-default-class: "true"`; the newest
//! if several are).

use async_trait::async_trait;
use serde_json::{json, Value};

use super::Plugin;
use crate::admission::{Operation, Request};
use crate::status::ApiResult;

pub const IS_DEFAULT: &str = "storageclass.kubernetes.io/is-default-class";

#[derive(Debug)]
pub struct DefaultStorageClass;

#[async_trait]
impl Plugin for DefaultStorageClass {
    async fn admit(&self, req: &Request<'_>, obj: &mut Value) -> ApiResult<()> {
        if req.op != Operation::Create
            || !req.is("", "persistentvolumeclaims")
            || req.subresource.is_some()
        {
            return Ok(());
        }
        // An explicit "" means "no class" and is kept.
        if obj
            .pointer("/spec/storageClassName")
            .is_some_and(|v| !v.is_null())
        {
            return Ok(());
        }
        let classes = req
            .server
            .cached_list("storage.k8s.io", "storageclasses", None);
        if let Some(name) = newest_default(classes.iter().map(|c| &c.value), IS_DEFAULT) {
            if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                spec.insert("storageClassName".into(), json!(name));
            }
        }
        Ok(())
    }
}

/// The name of the newest object annotated `annotation: "true"` (ties: the name first in order).
pub fn newest_default<'a>(
    objs: impl Iterator<Item = &'a Value>,
    annotation: &str,
) -> Option<String> {
    objs.filter(|o| {
        o.pointer("/metadata/annotations")
            .and_then(|a| a.get(annotation))
            .and_then(Value::as_str)
            == Some("true")
    })
    .max_by(|a, b| {
        let ts = |o: &Value| {
            o.pointer("/metadata/creationTimestamp")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let name = |o: &Value| {
            o.pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        ts(a).cmp(&ts(b)).then_with(|| name(b).cmp(&name(a)))
    })
    .and_then(|o| {
        o.pointer("/metadata/name")
            .and_then(Value::as_str)
            .map(str::to_string)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_default_wins() {
        let classes = [
            json!({"metadata": {"name": "old", "creationTimestamp": "2024-01-01T00:00:00Z",
                    "annotations": {IS_DEFAULT: "true"}}}),
            json!({"metadata": {"name": "new", "creationTimestamp": "2025-01-01T00:00:00Z",
                    "annotations": {IS_DEFAULT: "true"}}}),
            json!({"metadata": {"name": "newest-not-default", "creationTimestamp": "2026-01-01T00:00:00Z"}}),
        ];
        assert_eq!(
            newest_default(classes.iter(), IS_DEFAULT).as_deref(),
            Some("new")
        );
        assert_eq!(newest_default(classes[2..].iter(), IS_DEFAULT), None);
    }
}
