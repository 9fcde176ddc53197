//! Strategic merge of lists (upstream's `mergeSlice` and `mergePatchIntoOriginal`): lists
//! with the `merge` strategy merge maps by their merge key (honouring `$patch: delete` and
//! `$patch: replace` items) and union primitives; `$deleteFromPrimitiveList/<field>`
//! removes primitives; `$setElementOrder/<field>` fixes the final order. Other lists are
//! replaced by the patch.
//!
//! Order follows upstream: patch items keep the patch's relative order, items only on the
//! server keep theirs, and a server item precedes a patch item only when the server list
//! had it first, so new items land before the remaining server-only ones.

use serde_json::{Map, Value};

use super::gofmt;
use super::schema_walk::PatchSchema;
use super::smp_map::{
    extract_key, go_kind, merge_map, remove_directives, retain_keys_strategy, GoKind,
    DELETE_DIRECTIVE, DIRECTIVE_MARKER, MERGE_DIRECTIVE, REPLACE_DIRECTIVE, SET_ELEMENT_ORDER,
};
use super::strategic::StrategicPatchError as E;

const MAP_TYPE: &str = "map[string]interface {}";
const SLICE_TYPE: &str = "[]interface {}";

/// Merges a patch list into an original list by the field's strategy.
pub(crate) fn merge_slice_handler<S: PatchSchema>(
    original: Vec<Value>,
    patch: Vec<Value>,
    schema: S,
    strategy: &str,
    merge_key: &str,
    is_delete_list: bool,
) -> Result<Vec<Value>, E> {
    if strategy == MERGE_DIRECTIVE || is_delete_list {
        merge_slice(original, patch, schema, merge_key, is_delete_list)
    } else {
        Ok(patch)
    }
}

fn merge_slice<S: PatchSchema>(
    original: Vec<Value>,
    patch: Vec<Value>,
    schema: S,
    merge_key: &str,
    is_delete_list: bool,
) -> Result<Vec<Value>, E> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    let kind = slice_element_type(&[&original, &patch])?;
    let (original, patch, merged) = if kind != GoKind::Map {
        if is_delete_list {
            return Ok(original
                .into_iter()
                .filter(|v| !patch.contains(v))
                .collect());
        }
        let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
        for v in original.iter().chain(patch.iter()) {
            if !merged.contains(v) {
                merged.push(v.clone());
            }
        }
        (original, patch, merged)
    } else {
        if merge_key.is_empty() {
            return Err(E::NoMergeKeyForList(schema.name()));
        }
        let (original, patch) = apply_special_elements(original, patch, merge_key)?;
        let merged = merge_by_key(original.clone(), &patch, merge_key, schema)?;
        (original, patch, merged)
    };
    let (patch_items, server_only) = partition(merged, &patch, merge_key)?;
    normalize_element_order(patch_items, server_only, &patch, &original, merge_key, kind)
}

/// Handles `$patch` items of a list of maps: `delete` removes the original items with that
/// key, `replace` makes the other patch items the whole list.
fn apply_special_elements(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>), E> {
    let mut plain = Vec::with_capacity(patch.len());
    let mut replace = false;
    for item in patch {
        let Some(directive) = item.get(DIRECTIVE_MARKER) else {
            plain.push(item);
            continue;
        };
        match directive.as_str() {
            Some(DELETE_DIRECTIVE) => match item.get(merge_key) {
                Some(key_value) => {
                    original.retain(|o| o.get(merge_key) != Some(key_value));
                }
                None => return Err(no_merge_key(&item, merge_key)),
            },
            Some(REPLACE_DIRECTIVE) => replace = true,
            Some(MERGE_DIRECTIVE) => return Err(E::MergeDirectiveInList),
            _ => {
                return Err(E::BadPatchType {
                    directive: gofmt::s(directive),
                    map: gofmt::v(&item),
                })
            }
        }
    }
    if replace {
        Ok((plain, Vec::new()))
    } else {
        Ok((original, plain))
    }
}

/// Merges each patch item into the original item with the same merge key, appending
/// the ones the original lacks.
fn merge_by_key<S: PatchSchema>(
    mut original: Vec<Value>,
    patch: &[Value],
    merge_key: &str,
    schema: S,
) -> Result<Vec<Value>, E> {
    for item in patch {
        let Some(key_value) = item.get(merge_key) else {
            return Err(no_merge_key(item, merge_key));
        };
        match find_by_key(&original, merge_key, key_value)? {
            Some(i) => {
                let (Some(Value::Object(o)), Value::Object(p)) = (original.get_mut(i), item) else {
                    continue;
                };
                let merged = merge_map(std::mem::take(o), p.clone(), schema)?;
                *o = merged;
            }
            None => original.push(item.clone()),
        }
    }
    Ok(original)
}

fn find_by_key(list: &[Value], merge_key: &str, key_value: &Value) -> Result<Option<usize>, E> {
    for (i, item) in list.iter().enumerate() {
        let Value::Object(map) = item else {
            return Err(E::ListItemNotAMap(i));
        };
        if map.get(merge_key) == Some(key_value) {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

fn no_merge_key(item: &Value, merge_key: &str) -> E {
    E::NoMergeKey {
        map: gofmt::v(item),
        key: merge_key.to_string(),
    }
}

/// The one Go type of every element of `lists`.
fn slice_element_type(lists: &[&[Value]]) -> Result<GoKind, E> {
    let mut kind = None;
    for v in lists.iter().flat_map(|l| l.iter()) {
        let current = go_kind(v);
        match kind {
            // Upstream cannot type a leading null and fails; say so plainly.
            None if current == GoKind::Nil => return Err(E::NullListElement),
            None if current == GoKind::Slice => return Err(E::NoListOfLists),
            None => kind = Some(current),
            Some(k) if k != current => {
                let all = Value::Array(lists.iter().map(|l| Value::Array(l.to_vec())).collect());
                return Err(E::ElementTypesDiffer(gofmt::v(&all)));
            }
            Some(_) => {}
        }
    }
    kind.ok_or(E::NoElements)
}

/// Splits `merged` into the items `by` names (by merge key, or by value for primitives)
/// and the rest.
fn partition(
    merged: Vec<Value>,
    by: &[Value],
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>), E> {
    let mut named = Vec::new();
    let mut rest = Vec::new();
    for item in merged {
        let present = if merge_key.is_empty() {
            by.contains(&item)
        } else {
            let Value::Object(map) = &item else {
                return Err(E::BadArgType {
                    expected: MAP_TYPE,
                    actual: gofmt::type_name(&item),
                });
            };
            let Some(key_value) = map.get(merge_key) else {
                return Err(no_merge_key(&item, merge_key));
            };
            find_by_key(by, merge_key, key_value)?.is_some()
        };
        if present {
            named.push(item);
        } else {
            rest.push(item);
        }
    }
    Ok((named, rest))
}

/// Orders `patch` by `patch_order` and `server_only` by `server_order`, then interleaves them.
fn normalize_element_order(
    patch: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: &str,
    kind: GoKind,
) -> Result<Vec<Value>, E> {
    let patch = normalize_slice_order(patch, patch_order, merge_key, kind)?;
    let server_only = normalize_slice_order(server_only, server_order, merge_key, kind)?;
    Ok(merge_sorted(
        server_only,
        patch,
        server_order,
        merge_key,
        kind,
    ))
}

fn normalize_slice_order(
    to_sort: Vec<Value>,
    order: &[Value],
    merge_key: &str,
    kind: GoKind,
) -> Result<Vec<Value>, E> {
    let (mut to_sort, to_delete) = if kind == GoKind::Map {
        validate_merge_key(merge_key, &to_sort)?;
        validate_merge_key(merge_key, order)?;
        split_deletions(to_sort)?
    } else {
        (to_sort, Vec::new())
    };
    to_sort.sort_by_key(|item| index(order, item, merge_key, kind).unwrap_or(usize::MAX));
    to_sort.extend(to_delete);
    Ok(to_sort)
}

fn validate_merge_key(merge_key: &str, list: &[Value]) -> Result<(), E> {
    for item in list {
        let Value::Object(map) = item else {
            return Err(E::BadArgType {
                expected: MAP_TYPE,
                actual: gofmt::type_name(item),
            });
        };
        if !map.contains_key(merge_key) {
            return Err(no_merge_key(item, merge_key));
        }
    }
    Ok(())
}

/// Splits off the `$patch: delete` items.
fn split_deletions(list: Vec<Value>) -> Result<(Vec<Value>, Vec<Value>), E> {
    let mut keep = Vec::new();
    let mut delete = Vec::new();
    for item in list {
        let Value::Object(map) = &item else {
            return Err(E::BadArgType {
                expected: MAP_TYPE,
                actual: gofmt::type_name(&item),
            });
        };
        if map.get(DIRECTIVE_MARKER).and_then(Value::as_str) == Some(DELETE_DIRECTIVE) {
            delete.push(item);
        } else {
            keep.push(item);
        }
    }
    Ok((keep, delete))
}

/// Where `item` sits in `list`: by merge key for maps, by value otherwise.
fn index(list: &[Value], item: &Value, merge_key: &str, kind: GoKind) -> Option<usize> {
    if kind == GoKind::Map {
        let key_of = |v: &Value| v.as_object().and_then(|m| m.get(merge_key)).cloned();
        let wanted = key_of(item);
        list.iter().position(|v| key_of(v) == wanted)
    } else {
        list.iter().position(|v| v == item)
    }
}

/// Inserts the server-only items (`left`) among the patch items (`right`): a server item
/// goes first only when both are on the server and the server had it earlier.
fn merge_sorted(
    left: Vec<Value>,
    right: Vec<Value>,
    server_order: &[Value],
    merge_key: &str,
    kind: GoKind,
) -> Vec<Value> {
    let mut out = Vec::with_capacity(left.len() + right.len());
    let mut left = left.into_iter().peekable();
    let mut right = right.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => {
                match (
                    index(server_order, l, merge_key, kind),
                    index(server_order, r, merge_key, kind),
                ) {
                    (Some(li), Some(ri)) => li < ri,
                    _ => false,
                }
            }
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    out
}

/// Processes every `$setElementOrder/<field>` of `patch`: merges the field's patch list (if
/// any) into the original and orders the result, then drops both from the patch.
pub(crate) fn merge_set_element_order<S: PatchSchema>(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    schema: S,
) -> Result<(), E> {
    let keys: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
        .cloned()
        .collect();
    for key in keys {
        let Some(order) = patch.shift_remove(&key) else {
            continue;
        };
        let Value::Array(order) = order else {
            return Err(E::BadArgType {
                expected: SLICE_TYPE,
                actual: gofmt::type_name(&order),
            });
        };
        let field = extract_key(&key, SET_ELEMENT_ORDER)?;
        let original_list = list_at(original, &field)?;
        let patch_list = list_at(patch, &field)?;
        let (sub, meta) = schema.lookup_slice(&field)?;
        let (_, strategy) = retain_keys_strategy(&meta)?;
        let merge_key = meta.patch_merge_key.unwrap_or("");
        validate_patch_with_order(patch_list.as_deref().unwrap_or_default(), &order, merge_key)?;

        let original_items = original_list.clone().unwrap_or_default();
        let patch_items = patch_list.clone().unwrap_or_default();
        let merged = match (original_list, patch_list) {
            (Some(o), None) => o,
            (None, Some(p)) => match remove_directives(Value::Array(p)) {
                Some(Value::Array(items)) => items,
                _ => continue,
            },
            (Some(o), Some(p)) => merge_slice_handler(o, p, sub, strategy, merge_key, false)?,
            (None, None) => continue,
        };
        let (named, server_only) = partition(merged, &order, merge_key)?;
        let kind = slice_element_type(&[&original_items, &patch_items])?;
        let ordered =
            normalize_element_order(named, server_only, &order, &original_items, merge_key, kind)?;
        original.insert(field.clone(), Value::Array(ordered));
        patch.shift_remove(&field);
    }
    Ok(())
}

fn list_at(map: &Map<String, Value>, field: &str) -> Result<Option<Vec<Value>>, E> {
    match map.get(field) {
        None => Ok(None),
        Some(Value::Array(items)) => Ok(Some(items.clone())),
        Some(other) => Err(E::BadArgType {
            expected: SLICE_TYPE,
            actual: gofmt::type_name(other),
        }),
    }
}

/// The patch list's items (deletions and directives aside) must appear in the
/// `$setElementOrder` list, in the same relative order.
fn validate_patch_with_order(patch: &[Value], order: &[Value], merge_key: &str) -> Result<(), E> {
    if order.is_empty() || patch.is_empty() {
        return Ok(());
    }
    let items = if merge_key.is_empty() {
        patch.to_vec()
    } else {
        split_deletions(patch.to_vec())?.0
    };
    let (mut p, mut o) = (0, 0);
    while let (Some(item), Some(ordered)) = (items.get(p), order.get(o)) {
        if item.get(DIRECTIVE_MARKER).is_some() {
            p += 1;
            continue;
        }
        if merge_key_value_equal(item, ordered, merge_key)? {
            p += 1;
        }
        o += 1;
    }
    if p < items.len() && o >= order.len() {
        return Err(E::OrderMismatch {
            patch: gofmt::v(&Value::Array(patch.to_vec())),
            order: gofmt::v(&Value::Array(order.to_vec())),
        });
    }
    Ok(())
}

fn merge_key_value_equal(left: &Value, right: &Value, merge_key: &str) -> Result<bool, E> {
    if merge_key.is_empty() {
        return Ok(left == right);
    }
    let key_of = |v: &Value| -> Result<Value, E> {
        let Value::Object(map) = v else {
            return Err(E::BadArgType {
                expected: MAP_TYPE,
                actual: gofmt::type_name(v),
            });
        };
        map.get(merge_key)
            .cloned()
            .ok_or_else(|| no_merge_key(v, merge_key))
    };
    let left = key_of(left)?;
    let right = key_of(right)?;
    Ok(left == right)
}

#[cfg(test)]
mod tests {
    use crate::patch::smp_map::tests::run;
    use serde_json::json;

    #[test]
    fn list_cases_follow_upstream() {
        let cases = [
            (
                "merging int list unions without duplicates",
                json!({"mergingIntList": [1, 2]}),
                json!({"mergingIntList": [2, 3]}),
                json!({"mergingIntList": [1, 2, 3]}),
            ),
            (
                "new primitives go before the server-only ones",
                json!({"mergingIntList": [1, 2]}),
                json!({"mergingIntList": [3]}),
                json!({"mergingIntList": [3, 1, 2]}),
            ),
            (
                "non-merging lists are replaced",
                json!({"nonMergingIntList": [1, 2], "nonMergingList": [{"name": "a"}]}),
                json!({"nonMergingIntList": [3], "nonMergingList": [{"name": "b"}]}),
                json!({"nonMergingIntList": [3], "nonMergingList": [{"name": "b"}]}),
            ),
            (
                "merge lists of maps by key",
                json!({"mergingList": [{"name": "1", "value": "a"}, {"name": "2"}]}),
                json!({"mergingList": [{"name": "1", "other": "x"}, {"name": "3"}]}),
                json!({"mergingList": [{"name": "1", "value": "a", "other": "x"}, {"name": "3"}, {"name": "2"}]}),
            ),
            (
                "delete map from merging list",
                json!({"mergingList": [{"name": "1"}, {"name": "2"}]}),
                json!({"mergingList": [{"name": "1", "$patch": "delete"}]}),
                json!({"mergingList": [{"name": "2"}]}),
            ),
            (
                "delete all duplicate entries in a merging list",
                json!({"mergingList": [{"name": 1}, {"name": 1}, {"name": 2, "value": "a"}, {"name": 3}, {"name": 3}]}),
                json!({"mergingList": [{"name": 1, "$patch": "delete"}, {"name": 3, "$patch": "delete"}]}),
                json!({"mergingList": [{"name": 2, "value": "a"}]}),
            ),
            (
                "delete all items from merging list",
                json!({"mergingList": [{"name": 1}, {"name": 2}]}),
                json!({"mergingList": [{"$patch": "replace"}]}),
                json!({"mergingList": []}),
            ),
            (
                "replace directive keeps the other patch items",
                json!({"mergingList": [{"name": 1}, {"name": 2}]}),
                json!({"mergingList": [{"name": 3, "value": "c"}, {"$patch": "replace"}]}),
                json!({"mergingList": [{"name": 3, "value": "c"}]}),
            ),
            (
                "preserve the order from the patch in a merging list",
                json!({"mergingList": [{"name": 1}, {"name": 2, "value": "b"}, {"name": 3}]}),
                json!({"mergingList": [{"name": 3, "value": "c"}, {"name": 1, "value": "a"}]}),
                json!({"mergingList": [{"name": 2, "value": "b"}, {"name": 3, "value": "c"}, {"name": 1, "value": "a"}]}),
            ),
            (
                "preserve the order from the patch in a merging int list",
                json!({"mergingIntList": [1, 2, 3]}),
                json!({"mergingIntList": [3, 1]}),
                json!({"mergingIntList": [2, 3, 1]}),
            ),
            (
                "merge into an item nested in a merging list",
                json!({"mergingList": [{"name": 1, "mergingList": [{"name": "a", "value": "x"}]}]}),
                json!({"mergingList": [{"name": 1, "mergingList": [{"name": "a", "other": "y"}]}]}),
                json!({"mergingList": [{"name": 1, "mergingList": [{"name": "a", "value": "x", "other": "y"}]}]}),
            ),
            (
                "$deleteFromPrimitiveList deletes from a merging list",
                json!({"mergingIntList": [1, 2, 3]}),
                json!({"$deleteFromPrimitiveList/mergingIntList": [2]}),
                json!({"mergingIntList": [1, 3]}),
            ),
            (
                "$deleteFromPrimitiveList deletes from a non-merging list",
                json!({"nonMergingIntList": [1, 2, 3]}),
                json!({"$deleteFromPrimitiveList/nonMergingIntList": [2, 4]}),
                json!({"nonMergingIntList": [1, 3]}),
            ),
            (
                "$deleteFromPrimitiveList never adds a list",
                json!({"other": "x", "mergingIntList": null}),
                json!({"$deleteFromPrimitiveList/mergingIntList": [3], "$deleteFromPrimitiveList/nonMergingIntList": [3]}),
                json!({"other": "x", "mergingIntList": null}),
            ),
            (
                "add and delete in one primitive list",
                json!({"mergingIntList": [1, 2]}),
                json!({"$setElementOrder/mergingIntList": [1, 3], "mergingIntList": [3], "$deleteFromPrimitiveList/mergingIntList": [2]}),
                json!({"mergingIntList": [1, 3]}),
            ),
            (
                "$setElementOrder adds an item and orders the list",
                json!({"mergingList": [{"name": 1}, {"name": 2, "value": 2}]}),
                json!({"$setElementOrder/mergingList": [{"name": 3}, {"name": 1}, {"name": 2}], "mergingList": [{"name": 3, "value": 3}]}),
                json!({"mergingList": [{"name": 3, "value": 3}, {"name": 1}, {"name": 2, "value": 2}]}),
            ),
            (
                "$setElementOrder keeps server-only items after their predecessors",
                json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 2}, {"name": 7}, {"name": 9}, {"name": 8}, {"name": 3}, {"name": 4}]}),
                json!({"$setElementOrder/mergingList": [{"name": 2}, {"name": 1}, {"name": 4}, {"name": 3}]}),
                json!({"mergingList": [{"name": 2}, {"name": 1, "other": "a"}, {"name": 7}, {"name": 9}, {"name": 8}, {"name": 4}, {"name": 3}]}),
            ),
            (
                "$setElementOrder may name items the list lacks",
                json!({"mergingIntList": [1, 3]}),
                json!({"$setElementOrder/mergingIntList": [3, 2, 1]}),
                json!({"mergingIntList": [3, 1]}),
            ),
            (
                "$setElementOrder groups duplicates",
                json!({"mergingList": [{"name": 1}, {"name": 2, "value": "dup1"}, {"name": 3}, {"name": 2, "value": "dup2"}, {"name": 4}]}),
                json!({"$setElementOrder/mergingList": [{"name": 2}, {"name": 1}, {"name": 4}, {"name": 3}, {"name": 2}]}),
                json!({"mergingList": [{"name": 2, "value": "dup1"}, {"name": 2, "value": "dup2"}, {"name": 1}, {"name": 4}, {"name": 3}]}),
            ),
            (
                "retainKeys list items merge without the directive",
                json!({"retainKeysMergingList": [{"name": "bar"}, {"name": "foo", "value": "a"}]}),
                json!({"retainKeysMergingList": [{"name": "foo", "value": null}]}),
                json!({"retainKeysMergingList": [{"name": "bar"}, {"name": "foo"}]}),
            ),
            (
                "merge empty merging lists",
                json!({"mergingList": []}),
                json!({"mergingList": []}),
                json!({"mergingList": []}),
            ),
        ];
        for (name, original, patch, want) in cases {
            assert_eq!(run(original, patch), Ok(want), "{name}");
        }
    }

    #[test]
    fn malformed_list_patches_fail_with_upstream_messages() {
        let cases = [
            (
                json!({"mergingList": [{"name": 1, "value": "a"}]}),
                json!({"mergingList": [{"value": "b"}]}),
                "map: map[value:b] does not contain declared merge key: name",
            ),
            (
                json!({"mergingList": [{"name": 1}]}),
                json!({"mergingList": [{"$patch": "delete"}]}),
                "map: map[$patch:delete] does not contain declared merge key: name",
            ),
            (
                json!({"mergingList": [{"name": 1}]}),
                json!({"mergingList": [{"name": 1, "$patch": "merge"}]}),
                "merging lists cannot yet be specified in the patch",
            ),
            (
                json!({"mergingList": [{"name": 1}]}),
                json!({"mergingList": [{"name": 1, "$patch": "bogus"}]}),
                "unknown patch type: bogus in map: map[$patch:bogus name:1]",
            ),
            (
                json!({"mergingIntList": [1, 2]}),
                json!({"mergingIntList": ["a"]}),
                "list element types are not identical: [[1 2] [a]]",
            ),
            (
                json!({"mergingIntList": [[1]]}),
                json!({"mergingIntList": [[2]]}),
                "lists of lists are not supported",
            ),
            (
                json!({"mergingList": [{"name": 1}, {"name": 3}, {"name": 2}]}),
                json!({"$setElementOrder/mergingList": [{"name": 1}, {"name": 2}, {"name": 3}],
                       "mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]}),
                "The order in patch list:\n[map[name:3 value:3] map[name:1 value:1]]\n doesn't match $setElementOrder list:\n[map[name:1] map[name:2] map[name:3]]\n",
            ),
            (
                json!({"mergingList": [{"name": 1}]}),
                json!({"$setElementOrder": [{"name": 1}]}),
                "invalid patch format of setElementOrder list",
            ),
            (
                json!({"mergingList": [{"name": 1}]}),
                json!({"$setElementOrder/mergingList": "x"}),
                "expected a []interface {}, but received a string",
            ),
            (
                json!({"nonMergingList": [{"name": 1}]}),
                json!({"$deleteFromPrimitiveList/nonMergingList": [{"name": 1}]}),
                "cannot merge lists without merge key for struct",
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
}
