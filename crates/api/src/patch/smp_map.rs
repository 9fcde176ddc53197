//! Strategic merge of JSON objects (upstream's `mergeMap`): null deletes a key, `$patch`
//! replaces or deletes the whole map, `$retainKeys` clears the keys it does not list, and
//! each field merges by the strategy the schema gives it. Only the server's mode exists
//! here: parallel deletion lists are applied and unmatched nulls dropped.

use serde_json::{Map, Value};

use super::gofmt;
use super::meta::FieldMeta;
use super::schema_walk::PatchSchema;
use super::smp_list::{merge_set_element_order, merge_slice_handler};
use super::strategic::StrategicPatchError as E;

pub(crate) const DIRECTIVE_MARKER: &str = "$patch";
pub(crate) const DELETE_DIRECTIVE: &str = "delete";
pub(crate) const REPLACE_DIRECTIVE: &str = "replace";
pub(crate) const MERGE_DIRECTIVE: &str = "merge";
const RETAIN_KEYS_STRATEGY: &str = "retainKeys";
const RETAIN_KEYS_DIRECTIVE: &str = "$retainKeys";
pub(crate) const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";
pub(crate) const SET_ELEMENT_ORDER: &str = "$setElementOrder";

/// The Go type a decoded JSON value has upstream: integers and other numbers differ, so a
/// patch `1.0` replaces rather than merges with an original `1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GoKind {
    Nil,
    Bool,
    Int,
    Float,
    String,
    Slice,
    Map,
}

pub(crate) fn go_kind(value: &Value) -> GoKind {
    match value {
        Value::Null => GoKind::Nil,
        Value::Bool(_) => GoKind::Bool,
        Value::Number(n) if n.is_i64() || n.is_u64() => GoKind::Int,
        Value::Number(_) => GoKind::Float,
        Value::String(_) => GoKind::String,
        Value::Array(_) => GoKind::Slice,
        Value::Object(_) => GoKind::Map,
    }
}

/// Merges `patch` into `original`, `schema` describing both.
pub(crate) fn merge_map<S: PatchSchema>(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    schema: S,
) -> Result<Map<String, Value>, E> {
    if let Some(directive) = patch.get(DIRECTIVE_MARKER).cloned() {
        return directive_in_map(&directive, patch);
    }
    apply_retain_keys(&mut original, &mut patch)?;
    merge_set_element_order(&mut original, &mut patch, schema)?;

    for (key, patch_value) in patch {
        let (key, is_delete_list) = if key.starts_with(DELETE_FROM_PRIMITIVE_LIST) {
            (extract_key(&key, DELETE_FROM_PRIMITIVE_LIST)?, true)
        } else {
            (key, false)
        };
        if patch_value.is_null() {
            original.shift_remove(&key);
            continue;
        }
        let Some(original_value) = original.get_mut(&key) else {
            if !is_delete_list {
                set_from_patch(&mut original, key, patch_value);
            }
            continue;
        };
        if go_kind(original_value) != go_kind(&patch_value) {
            if !is_delete_list {
                set_from_patch(&mut original, key, patch_value);
            }
            continue;
        }
        let merged = match (original_value.take(), patch_value) {
            (Value::Object(o), Value::Object(p)) => {
                let (sub, meta) = schema.lookup_struct(&key)?;
                let (_, strategy) = retain_keys_strategy(&meta)?;
                if strategy == REPLACE_DIRECTIVE {
                    Some(Value::Object(p))
                } else {
                    Some(Value::Object(merge_map(o, p, sub)?))
                }
            }
            (Value::Array(o), Value::Array(p)) => {
                let (sub, meta) = schema.lookup_slice(&key)?;
                let (_, strategy) = retain_keys_strategy(&meta)?;
                let merge_key = meta.patch_merge_key.unwrap_or("");
                Some(Value::Array(merge_slice_handler(
                    o,
                    p,
                    sub,
                    strategy,
                    merge_key,
                    is_delete_list,
                )?))
            }
            // Scalars of one type: upstream replaces them even under a deletion-list key.
            (_, p) => remove_directives(p),
        };
        match merged {
            Some(value) => {
                original.insert(key, value);
            }
            None => {
                original.shift_remove(&key);
            }
        }
    }
    Ok(original)
}

/// A patch value for a key the original lacks (or holds with another type): taken as is,
/// less its nulls and directives; a value that is itself a directive is dropped.
fn set_from_patch(original: &mut Map<String, Value>, key: String, mut value: Value) {
    discard_nulls(&mut value);
    match remove_directives(value) {
        Some(value) => {
            original.insert(key, value);
        }
        None => {
            original.shift_remove(&key);
        }
    }
}

/// `$patch` in a map: `replace` takes the patch as the whole map, `delete` empties it.
fn directive_in_map(
    directive: &Value,
    mut patch: Map<String, Value>,
) -> Result<Map<String, Value>, E> {
    match directive.as_str() {
        Some(REPLACE_DIRECTIVE) => {
            patch.shift_remove(DIRECTIVE_MARKER);
            Ok(patch)
        }
        Some(DELETE_DIRECTIVE) => Ok(Map::new()),
        _ => Err(E::BadPatchType {
            directive: gofmt::s(directive),
            map: gofmt::v(&Value::Object(patch)),
        }),
    }
}

/// Splits `$setElementOrder/containers` into `containers`.
pub(crate) fn extract_key(key: &str, prefix: &str) -> Result<String, E> {
    match key.split_once('/') {
        Some((head, rest)) if head == prefix => Ok(rest.to_string()),
        _ if prefix == DELETE_FROM_PRIMITIVE_LIST => Err(E::BadPatchFormatForPrimitiveList),
        _ => Err(E::BadPatchFormatForSetElementOrderList),
    }
}

/// Applies `$retainKeys`: every key the patch sets must be listed, and the original keeps
/// only the listed keys.
fn apply_retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<(), E> {
    let Some(retain) = patch.shift_remove(RETAIN_KEYS_DIRECTIVE) else {
        return Ok(());
    };
    let Value::Array(retain) = retain else {
        return Err(E::BadPatchFormatForRetainKeys);
    };
    let listed = |key: &str| retain.iter().any(|v| v.as_str() == Some(key));
    for (key, value) in patch.iter() {
        if value.is_null()
            || key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            || key.starts_with(SET_ELEMENT_ORDER)
        {
            continue;
        }
        if !listed(key) {
            return Err(E::BadPatchFormatForRetainKeys);
        }
    }
    original.retain(|key, _| listed(key));
    Ok(())
}

/// The strategy other than `retainKeys` in a field's (comma-separated) patch strategy, and
/// whether `retainKeys` was among them.
pub(crate) fn retain_keys_strategy(meta: &FieldMeta) -> Result<(bool, &'static str), E> {
    let strategies: Vec<&'static str> = meta
        .patch_strategy
        .map(|s| s.split(',').collect())
        .unwrap_or_default();
    match strategies.as_slice() {
        [] => Ok((false, "")),
        [RETAIN_KEYS_STRATEGY] => Ok((true, "")),
        [single] => Ok((false, single)),
        [RETAIN_KEYS_STRATEGY, other] | [other, RETAIN_KEYS_STRATEGY] => Ok((true, other)),
        more => Err(E::UnexpectedPatchStrategy(format!("[{}]", more.join(" ")))),
    }
}

/// Drops every map carrying `$patch` (and the key holding it); `None` when `value` itself
/// is one.
pub(crate) fn remove_directives(value: Value) -> Option<Value> {
    match value {
        Value::Object(map) => {
            if map.contains_key(DIRECTIVE_MARKER) {
                return None;
            }
            let kept = map
                .into_iter()
                .filter_map(|(k, v)| remove_directives(v).map(|v| (k, v)))
                .collect();
            Some(Value::Object(kept))
        }
        Value::Array(items) => Some(Value::Array(
            items.into_iter().filter_map(remove_directives).collect(),
        )),
        other => Some(other),
    }
}

fn discard_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(discard_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(discard_nulls),
        _ => {}
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::patch::schema_walk::fake::Fake;
    use serde_json::json;

    /// Applies `patch` to `original` with the `MergeItem`-shaped schema.
    pub(crate) fn run(original: Value, patch: Value) -> Result<Value, String> {
        let (Value::Object(o), Value::Object(p)) = (original, patch) else {
            return Err("test documents must be objects".to_string());
        };
        merge_map(o, p, Fake::MergeItem)
            .map(Value::Object)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn map_cases_follow_upstream() {
        let cases = [
            (
                "add field to map",
                json!({"name": 1}),
                json!({"value": 1}),
                json!({"name": 1, "value": 1}),
            ),
            (
                "null deletes a field and ignores unmatched nulls",
                json!({"name": 1, "value": 1}),
                json!({"value": null, "other": null}),
                json!({"name": 1}),
            ),
            (
                "delete field from nested map",
                json!({"simpleMap": {"key1": 1, "key2": 1}}),
                json!({"simpleMap": {"key2": null}}),
                json!({"simpleMap": {"key1": 1}}),
            ),
            (
                "$patch: delete empties a nested map",
                json!({"simpleMap": {"key1": 1, "key2": 1}}),
                json!({"simpleMap": {"$patch": "delete"}}),
                json!({"simpleMap": {}}),
            ),
            (
                "$patch: replace replaces the whole document",
                json!({"name": 1, "value": 1}),
                json!({"other": "a", "$patch": "replace"}),
                json!({"other": "a"}),
            ),
            (
                "$patch: replace replaces a nested map",
                json!({"mergeItemPtr": {"name": "a", "value": "b"}}),
                json!({"mergeItemPtr": {"name": "a", "$patch": "replace"}}),
                json!({"mergeItemPtr": {"name": "a"}}),
            ),
            (
                "a new key takes the patch less its directives and nulls",
                json!({}),
                json!({"mergeItemPtr": {"name": "a", "value": null, "simpleMap": {"$patch": "delete"}}}),
                json!({"mergeItemPtr": {"name": "a"}}),
            ),
            (
                "a new key holding only a directive is dropped",
                json!({"name": "a"}),
                json!({"simpleMap": {"$patch": "delete"}}),
                json!({"name": "a"}),
            ),
            (
                "replace strategy takes the patch map as is",
                json!({"replacingItem": {"a": 1, "b": {"c": 1}}}),
                json!({"replacingItem": {"b": {"d": 2}}}),
                json!({"replacingItem": {"b": {"d": 2}}}),
            ),
            (
                "unknown fields merge like a JSON merge patch",
                json!({"extra": {"a": 1, "b": [1, 2], "c": {"d": 1}}}),
                json!({"extra": {"a": null, "b": [3], "c": {"e": 2}}}),
                json!({"extra": {"b": [3], "c": {"d": 1, "e": 2}}}),
            ),
            (
                "a scalar replaced by a map",
                json!({"name": "a"}),
                json!({"name": {"x": 1}}),
                json!({"name": {"x": 1}}),
            ),
            (
                "retainKeys map clears fields it does not list",
                json!({"retainKeysMap": {"name": "foo", "value": "a", "other": "b"}}),
                json!({"retainKeysMap": {"$retainKeys": ["name", "value"], "value": "c"}}),
                json!({"retainKeysMap": {"name": "foo", "value": "c"}}),
            ),
            (
                "retainKeys map without the directive merges",
                json!({"retainKeysMap": {"name": "foo", "value": "a"}}),
                json!({"retainKeysMap": {"value": null}}),
                json!({"retainKeysMap": {"name": "foo"}}),
            ),
            (
                "retainKeys ignores nulls and parallel lists in the patch",
                json!({"retainKeysMap": {"name": "foo", "mergingIntList": [1, 2]}}),
                json!({"retainKeysMap": {
                    "$retainKeys": ["mergingIntList"],
                    "name": null,
                    "$deleteFromPrimitiveList/mergingIntList": [1]
                }}),
                json!({"retainKeysMap": {"mergingIntList": [2]}}),
            ),
        ];
        for (name, original, patch, want) in cases {
            assert_eq!(run(original, patch), Ok(want), "{name}");
        }
    }

    #[test]
    fn malformed_map_directives_fail_with_upstream_messages() {
        let cases = [
            (
                json!({"name": "a"}),
                json!({"$patch": "merge", "name": "b"}),
                "unknown patch type: merge in map: map[$patch:merge name:b]",
            ),
            (
                json!({"simpleMap": {"a": "1"}}),
                json!({"simpleMap": {"$patch": 1}}),
                "unknown patch type: %!s(int64=1) in map: map[$patch:1]",
            ),
            (
                json!({"retainKeysMap": {"name": "foo"}}),
                json!({"retainKeysMap": {"$retainKeys": ["name"], "value": "x"}}),
                "invalid patch format of retainKeys",
            ),
            (
                json!({"retainKeysMap": {"name": "foo"}}),
                json!({"retainKeysMap": {"$retainKeys": "name"}}),
                "invalid patch format of retainKeys",
            ),
            (
                json!({"mergingIntList": [1]}),
                json!({"$deleteFromPrimitiveList": [1]}),
                "invalid patch format of primitive list",
            ),
            (
                json!({"simpleMap": {"a": {"b": 1}}}),
                json!({"simpleMap": {"a": {"c": 1}}}),
                "merging an object in json but data type is not struct, instead is: map",
            ),
        ];
        for (original, patch, want) in cases {
            assert_eq!(
                run(original, patch.clone()),
                Err(want.to_string()),
                "{patch}"
            );
        }
    }

    #[test]
    fn strategies_split_off_retain_keys() {
        let cases = [
            (None, Ok((false, ""))),
            (Some("merge"), Ok((false, "merge"))),
            (Some("retainKeys"), Ok((true, ""))),
            (Some("merge,retainKeys"), Ok((true, "merge"))),
            (Some("retainKeys,replace"), Ok((true, "replace"))),
            (
                Some("merge,replace"),
                Err(E::UnexpectedPatchStrategy("[merge replace]".to_string())),
            ),
        ];
        for (strategy, want) in cases {
            let meta = FieldMeta {
                patch_strategy: strategy,
                ..FieldMeta::default()
            };
            assert_eq!(retain_keys_strategy(&meta), want, "{strategy:?}");
        }
    }
}
