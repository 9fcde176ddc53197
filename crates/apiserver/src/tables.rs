//! `meta.k8s.io/v1 Table` responses (what `kubectl get` prints), built from the columns and
//! cells `rkube_api::table` defines per kind.

use rkube_api::ResourceInfo;
use serde_json::{json, Value};

use crate::request::Query;
use crate::status::{ApiError, ApiResult};

/// What each row carries besides its cells (`includeObject`).
fn include_object(query: &Query) -> ApiResult<&'static str> {
    match query.get("includeObject") {
        None | Some("Metadata") => Ok("Metadata"),
        Some("Object") => Ok("Object"),
        Some("None") => Ok("None"),
        Some(other) => Err(ApiError::bad_request(format!(
            "includeObject: Unsupported value: {other:?}: supported values: \"None\", \"Metadata\", \"Object\""
        ))),
    }
}

/// The column definitions of a resource.
pub fn column_definitions(res: &ResourceInfo) -> Vec<Value> {
    rkube_api::table::columns(res.group, res.kind)
        .into_iter()
        .map(|c| {
            json!({
                "name": c.name,
                "type": c.type_,
                "format": c.format,
                "description": c.description,
                "priority": c.priority,
            })
        })
        .collect()
}

/// One row.
pub fn row(res: &ResourceInfo, obj: &Value, include: &str, now: jiff::Timestamp) -> Value {
    let cells = rkube_api::table::row(res.group, res.kind, obj, now);
    let mut row = json!({"cells": cells});
    match include {
        "Object" => row["object"] = obj.clone(),
        "Metadata" => {
            row["object"] = json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
            })
        }
        _ => {}
    }
    row
}

/// A table of `objects`; `list_meta` is the list's metadata (resourceVersion, continue), absent
/// for a single object's table.
pub fn table(
    res: &ResourceInfo,
    objects: &[Value],
    query: &Query,
    list_meta: Option<Value>,
) -> ApiResult<Value> {
    let include = include_object(query)?;
    let now = jiff::Timestamp::now();
    let rows: Vec<Value> = objects.iter().map(|o| row(res, o, include, now)).collect();
    let metadata = list_meta.unwrap_or_else(|| {
        let rv = objects
            .first()
            .and_then(|o| o.pointer("/metadata/resourceVersion"))
            .cloned()
            .unwrap_or_else(|| json!(""));
        json!({"resourceVersion": rv})
    });
    Ok(json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": column_definitions(res),
        "rows": rows,
    }))
}

/// A watch event's table: one row; the column definitions only on the first event, as
/// upstream sends them.
pub fn watch_table(
    res: &ResourceInfo,
    obj: &Value,
    query: &Query,
    first: bool,
) -> ApiResult<Value> {
    let include = include_object(query)?;
    let cols = if first {
        column_definitions(res)
    } else {
        Vec::new()
    };
    let rv = obj
        .pointer("/metadata/resourceVersion")
        .cloned()
        .unwrap_or_else(|| json!(""));
    Ok(json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": rv},
        "columnDefinitions": cols,
        "rows": [row(res, obj, include, jiff::Timestamp::now())],
    }))
}
