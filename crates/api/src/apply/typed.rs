//! The typed walks of structured-merge-diff (`typed/`) over JSON values: validation, the
//! field set of a value, merging an applied configuration into a live object, comparing two
//! objects, and removing a set of fields.
//!
//! `None` stands for an absent value and `Some(Value::Null)` for an explicit null; upstream
//! tells them apart (an explicit null is owned, an absent field is not), so these walks do
//! too. Values the schema does not expect are treated as opaque leaves: the applied object
//! is validated first, and stored objects were validated when written.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::fieldpath::{values_equal, Path, Pe, Set};
use super::schema::{ListRel, Ty};

/// The identity of a list element, or upstream's reason it has none.
pub(crate) fn list_item_pe(rel: ListRel, items: Ty, child: &Value) -> Result<Pe, String> {
    match rel {
        ListRel::Atomic => Err("invalid indexing of non-associative list".into()),
        ListRel::Keyed(keys) => {
            let map = match child {
                Value::Null => {
                    return Err("associative list with keys may not have a null element".into())
                }
                Value::Object(map) => map,
                _ => return Err("associative list with keys may not have non-map elements".into()),
            };
            let mut fields = Vec::with_capacity(keys.len());
            for key in keys {
                let name = key.as_str().unwrap_or_default();
                match map.get(name).cloned().or_else(|| items.key_default(name)) {
                    Some(v) => fields.push((name.to_string(), v)),
                    None => {
                        return Err(format!(
                            "associative list with keys has an element that omits key field {} (and doesn't have default value)",
                            super::fieldpath::go_quote(name)
                        ))
                    }
                }
            }
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(Pe::Key(fields))
        }
        ListRel::Set => match child {
            Value::Object(_) => {
                Err("associative list without keys has an element that's a map type".into())
            }
            Value::Array(_) => Err("not supported: associative list with lists as elements".into()),
            Value::Null => {
                Err("associative list without keys has an element that's an explicit null".into())
            }
            scalar => Ok(Pe::Value(scalar.clone())),
        },
    }
}

fn describe(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Upstream's validation of a typed value (`TypedValue.Validate`), as `path: message`
/// strings; duplicate list keys are errors unless `allow_duplicates`.
pub(crate) fn validate(ty: Ty, v: &Value, allow_duplicates: bool) -> Vec<String> {
    let mut errs = Vec::new();
    validate_at(ty, v, allow_duplicates, &mut String::new(), &mut errs);
    errs
}

fn validate_at(ty: Ty, v: &Value, dups: bool, path: &mut String, errs: &mut Vec<String>) {
    fn err(errs: &mut Vec<String>, path: &str, msg: String) {
        errs.push(if path.is_empty() {
            msg
        } else {
            format!("{path}: {msg}")
        })
    }
    match ty {
        Ty::Untyped => {}
        Ty::Scalar => {
            if matches!(v, Value::Array(_) | Value::Object(_)) {
                err(errs, path, format!("expected scalar, got {}", describe(v)));
            }
        }
        Ty::List { rel, .. } => {
            let items = match v {
                Value::Null => return,
                Value::Array(items) => items,
                other => {
                    return err(
                        errs,
                        path,
                        format!("expected list, got {}", describe(other)),
                    )
                }
            };
            let item_ty = ty.items();
            let mut seen: Vec<Pe> = Vec::new();
            for (i, child) in items.iter().enumerate() {
                let pe = match rel {
                    ListRel::Atomic => Pe::Index(i as i64),
                    _ => match list_item_pe(rel, item_ty, child) {
                        Ok(pe) => pe,
                        Err(e) => return err(errs, path, format!("element {i}: {e}")),
                    },
                };
                if !matches!(rel, ListRel::Atomic) {
                    if seen.contains(&pe) && !dups {
                        err(errs, path, format!("duplicate entries for key {pe}"));
                    }
                    seen.push(pe.clone());
                }
                let len = path.len();
                path.push_str(&pe.to_string());
                validate_at(item_ty, child, dups, path, errs);
                path.truncate(len);
            }
        }
        Ty::Struct { .. } | Ty::Map { .. } => {
            let map = match v {
                Value::Null => return,
                Value::Object(map) => map,
                other => return err(errs, path, format!("expected map, got {}", describe(other))),
            };
            for (key, child) in map {
                let len = path.len();
                path.push('.');
                path.push_str(key);
                let Some(child_ty) = ty.field(key) else {
                    err(errs, path, "field not declared in schema".into());
                    return;
                };
                validate_at(child_ty, child, dups, path, errs);
                path.truncate(len);
            }
        }
    }
}

/// The set of fields a value sets (`TypedValue.ToFieldSet`).
pub(crate) fn to_field_set(ty: Ty, v: &Value) -> Set {
    let mut set = Set::new();
    field_set_at(ty, v, &mut Vec::new(), &mut set);
    set
}

fn field_set_at(ty: Ty, v: &Value, path: &mut Path, set: &mut Set) {
    match ty {
        Ty::Scalar | Ty::Untyped => set.insert(path),
        Ty::List { rel, .. } => {
            if matches!(rel, ListRel::Atomic) {
                return set.insert(path);
            }
            let Value::Array(items) = v else {
                return;
            };
            let item_ty = ty.items();
            let pes: Vec<Option<Pe>> = items
                .iter()
                .map(|c| list_item_pe(rel, item_ty, c).ok())
                .collect();
            let mut seen: Vec<&Pe> = Vec::new();
            let mut duplicates: Vec<&Pe> = Vec::new();
            for pe in pes.iter().flatten() {
                if seen.contains(&pe) {
                    if !duplicates.contains(&pe) {
                        duplicates.push(pe);
                        path.push(pe.clone());
                        set.insert(path);
                        path.pop();
                    }
                } else {
                    seen.push(pe);
                }
            }
            for (child, pe) in items.iter().zip(&pes) {
                let Some(pe) = pe else { continue };
                if duplicates.contains(&pe) {
                    continue;
                }
                path.push(pe.clone());
                field_set_at(item_ty, child, path, set);
                set.insert(path);
                path.pop();
            }
        }
        Ty::Struct { atomic, .. } | Ty::Map { atomic, .. } => {
            if atomic {
                return set.insert(path);
            }
            let Value::Object(map) = v else {
                return;
            };
            for (key, child) in map {
                let child_ty = ty.field(key).unwrap_or(Ty::Untyped);
                path.push(Pe::Field(key.clone()));
                field_set_at(child_ty, child, path, set);
                let empty = match child {
                    Value::Null => true,
                    Value::Object(m) => m.is_empty(),
                    _ => false,
                };
                if empty || !ty.declares(key) {
                    set.insert(path);
                }
                path.pop();
            }
        }
    }
}

/// Upstream's `EnsureNamedFieldsAreMembers`: struct fields that only have owned children
/// become members themselves, so removing the set removes the emptied struct field.
pub(crate) fn ensure_named_fields_are_members(set: &Set, ty: Ty) -> Set {
    let mut out = Set {
        members: set.members.clone(),
        children: BTreeMap::new(),
    };
    for (pe, child) in &set.children {
        let child_ty = match pe {
            Pe::Field(name) => {
                if ty.declares(name) {
                    out.members.insert(pe.clone());
                }
                ty.field(name).unwrap_or(Ty::Untyped)
            }
            Pe::Key(_) => ty.items(),
            _ => Ty::Untyped,
        };
        out.children
            .insert(pe.clone(), ensure_named_fields_are_members(child, child_ty));
    }
    out
}

fn as_list(v: Option<&Value>) -> Option<&Vec<Value>> {
    v.and_then(Value::as_array)
}

fn as_map(v: Option<&Value>) -> Option<&Map<String, Value>> {
    v.and_then(Value::as_object)
}

/// The keys of both maps, the left one's order first.
fn zip_keys<'a>(
    lhs: Option<&'a Map<String, Value>>,
    rhs: Option<&'a Map<String, Value>>,
) -> Vec<&'a String> {
    let mut keys: Vec<&String> = lhs.map(|m| m.keys().collect()).unwrap_or_default();
    if let Some(rhs) = rhs {
        keys.extend(
            rhs.keys()
                .filter(|k| !lhs.is_some_and(|l| l.contains_key(*k))),
        );
    }
    keys
}

/// Merges `rhs` (the applied configuration) into `lhs` (the live object): the right side
/// wins on leaves, atomic values are replaced whole, maps merge key by key and associative
/// lists element by element (`TypedValue.Merge`). `None` means the merge yields nothing.
pub(crate) fn merge(ty: Ty, lhs: Option<&Value>, rhs: Option<&Value>) -> Option<Value> {
    let leaf = || rhs.or(lhs).cloned();
    match ty {
        Ty::Scalar | Ty::Untyped => leaf(),
        Ty::List { rel, .. } => {
            let (l, r) = (as_list(lhs), as_list(rhs));
            let empty = |x: Option<&Vec<Value>>| x.is_none_or(Vec::is_empty);
            if matches!(rel, ListRel::Atomic) || (empty(l) && empty(r)) {
                return leaf();
            }
            let out = merge_list(rel, ty.items(), l, r);
            (!out.is_empty()).then_some(Value::Array(out))
        }
        Ty::Struct { atomic, .. } | Ty::Map { atomic, .. } => {
            let (l, r) = (as_map(lhs), as_map(rhs));
            let empty = |x: Option<&Map<String, Value>>| x.is_none_or(Map::is_empty);
            if atomic || (empty(l) && empty(r)) {
                return leaf();
            }
            let mut out = Map::new();
            for key in zip_keys(l, r) {
                let child_ty = ty.field(key).unwrap_or(Ty::Untyped);
                let merged = merge(
                    child_ty,
                    l.and_then(|m| m.get(key)),
                    r.and_then(|m| m.get(key)),
                );
                if let Some(v) = merged {
                    out.insert(key.clone(), v);
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
    }
}

/// Element identities of a list; `observed` maps each identity to its element, or to null
/// when it is duplicated (upstream does not merge duplicates).
fn index_list(rel: ListRel, items: Ty, list: Option<&Vec<Value>>) -> (Vec<Pe>, Vec<(Pe, Value)>) {
    let mut pes = Vec::new();
    let mut observed: Vec<(Pe, Value)> = Vec::new();
    for child in list.into_iter().flatten() {
        let Ok(pe) = list_item_pe(rel, items, child) else {
            continue;
        };
        match observed.iter_mut().find(|(p, _)| *p == pe) {
            Some(slot) => slot.1 = Value::Null,
            None => observed.push((pe.clone(), child.clone())),
        }
        pes.push(pe);
    }
    (pes, observed)
}

fn lookup<'a>(observed: &'a [(Pe, Value)], pe: &Pe) -> Option<&'a Value> {
    observed.iter().find(|(p, _)| p == pe).map(|(_, v)| v)
}

/// Upstream's associative-list merge: elements of both sides merged in place, the right
/// side's order for shared elements, live-only elements kept where they were.
fn merge_list(
    rel: ListRel,
    items: Ty,
    lhs: Option<&Vec<Value>>,
    rhs: Option<&Vec<Value>>,
) -> Vec<Value> {
    let (rhs_pes, observed_rhs) = index_list(rel, items, rhs);
    let (lhs_pes, observed_lhs) = index_list(rel, items, lhs);
    let mut shared: std::collections::VecDeque<&Pe> = rhs_pes
        .iter()
        .filter(|pe| lookup(&observed_lhs, pe).is_some())
        .collect();
    let mut next_shared = shared.pop_front();
    let mut merged_rhs: Vec<&Pe> = Vec::new();
    let mut out = Vec::new();
    let (mut li, mut ri) = (0, 0);
    let lhs_items: Vec<&Value> = lhs
        .into_iter()
        .flatten()
        .filter(|c| list_item_pe(rel, items, c).is_ok())
        .collect();
    while li < lhs_pes.len() || ri < rhs_pes.len() {
        if li < lhs_pes.len() && ri < rhs_pes.len() {
            let pe = &lhs_pes[li];
            if *pe == rhs_pes[ri] {
                merged_rhs.push(pe);
                let m = merge(items, lookup(&observed_lhs, pe), lookup(&observed_rhs, pe));
                out.extend(m);
                li += 1;
                ri += 1;
                next_shared = shared.pop_front();
                continue;
            }
            if lookup(&observed_rhs, pe).is_some() && next_shared.is_some_and(|n| n != pe) {
                li += 1;
                continue;
            }
        }
        if li < lhs_pes.len() {
            let pe = &lhs_pes[li];
            if lookup(&observed_rhs, pe).is_none() {
                out.extend(merge(items, lhs_items.get(li).copied(), None));
                li += 1;
                continue;
            } else if merged_rhs.contains(&pe) {
                li += 1;
            }
        }
        if ri < rhs_pes.len() {
            let pe = &rhs_pes[ri];
            merged_rhs.push(pe);
            let m = merge(items, lookup(&observed_lhs, pe), lookup(&observed_rhs, pe));
            out.extend(m);
            ri += 1;
            if next_shared == Some(pe) {
                next_shared = shared.pop_front();
            }
        }
    }
    out
}

/// What changed between two objects (`TypedValue.Compare`).
#[derive(Debug, Default, Clone)]
pub(crate) struct Comparison {
    pub(crate) removed: Set,
    pub(crate) modified: Set,
    pub(crate) added: Set,
}

impl Comparison {
    /// Drops the ignored fields and everything beneath them.
    pub(crate) fn exclude(self, ignored: &Set) -> Comparison {
        Comparison {
            removed: self.removed.recursive_difference(ignored),
            modified: self.modified.recursive_difference(ignored),
            added: self.added.recursive_difference(ignored),
        }
    }
}

pub(crate) fn compare(ty: Ty, lhs: &Value, rhs: &Value) -> Comparison {
    let mut cmp = Comparison::default();
    compare_at(ty, Some(lhs), Some(rhs), &mut Vec::new(), &mut cmp);
    cmp
}

fn compare_leaf(lhs: Option<&Value>, rhs: Option<&Value>, path: &Path, cmp: &mut Comparison) {
    match (lhs, rhs) {
        (None, Some(_)) => cmp.added.insert(path),
        (Some(_), None) => cmp.removed.insert(path),
        (Some(l), Some(r)) if !values_equal(l, r) => cmp.modified.insert(path),
        _ => {}
    }
}

fn compare_at(
    ty: Ty,
    lhs: Option<&Value>,
    rhs: Option<&Value>,
    path: &mut Path,
    cmp: &mut Comparison,
) {
    let in_leaf = match ty {
        Ty::Scalar | Ty::Untyped => {
            compare_leaf(lhs, rhs, path, cmp);
            true
        }
        Ty::List { rel, .. } => {
            let (l, r) = (as_list(lhs), as_list(rhs));
            let empty = |x: Option<&Vec<Value>>| x.is_none_or(Vec::is_empty);
            if matches!(rel, ListRel::Atomic) || (empty(l) && empty(r)) {
                compare_leaf(lhs, rhs, path, cmp);
                true
            } else {
                compare_list(rel, ty.items(), l, r, path, cmp);
                false
            }
        }
        Ty::Struct { atomic, .. } | Ty::Map { atomic, .. } => {
            let (l, r) = (as_map(lhs), as_map(rhs));
            let empty = |x: Option<&Map<String, Value>>| x.is_none_or(Map::is_empty);
            if atomic || (empty(l) && empty(r)) {
                compare_leaf(lhs, rhs, path, cmp);
                true
            } else {
                for key in zip_keys(l, r) {
                    let child_ty = ty.field(key).unwrap_or(Ty::Untyped);
                    path.push(Pe::Field(key.clone()));
                    let (lc, rc) = (l.and_then(|m| m.get(key)), r.and_then(|m| m.get(key)));
                    compare_at(child_ty, lc, rc, path, cmp);
                    path.pop();
                }
                false
            }
        }
    };
    if !in_leaf {
        if lhs.is_none() {
            cmp.added.insert(path);
        } else if rhs.is_none() {
            cmp.removed.insert(path);
        }
    }
}

fn group_list(rel: ListRel, items: Ty, list: Option<&Vec<Value>>) -> Vec<(Pe, Vec<&Value>)> {
    let mut out: Vec<(Pe, Vec<&Value>)> = Vec::new();
    for child in list.into_iter().flatten() {
        let Ok(pe) = list_item_pe(rel, items, child) else {
            continue;
        };
        match out.iter_mut().find(|(p, _)| *p == pe) {
            Some(slot) => slot.1.push(child),
            None => out.push((pe, vec![child])),
        }
    }
    out
}

fn compare_list(
    rel: ListRel,
    items: Ty,
    lhs: Option<&Vec<Value>>,
    rhs: Option<&Vec<Value>>,
    path: &mut Path,
    cmp: &mut Comparison,
) {
    let l = group_list(rel, items, lhs);
    let r = group_list(rel, items, rhs);
    let mut all: Vec<&Pe> = l.iter().map(|(pe, _)| pe).collect();
    all.extend(
        r.iter()
            .map(|(pe, _)| pe)
            .filter(|pe| !l.iter().any(|(p, _)| p == *pe)),
    );
    let get = |side: &[(Pe, Vec<&Value>)], pe: &Pe| -> Vec<Value> {
        side.iter()
            .find(|(p, _)| p == pe)
            .map(|(_, v)| v.iter().map(|x| (*x).clone()).collect())
            .unwrap_or_default()
    };
    for pe in all {
        let (ll, rl) = (get(&l, pe), get(&r, pe));
        path.push(pe.clone());
        match (ll.len(), rl.len()) {
            (0, 0) => {}
            (a, b) if a <= 1 && b <= 1 => compare_at(items, ll.first(), rl.first(), path, cmp),
            (a, b) if a >= 2 && b >= 2 => {
                let same =
                    ll.len() == rl.len() && ll.iter().zip(&rl).all(|(x, y)| values_equal(x, y));
                if !same {
                    cmp.modified.insert(path);
                }
            }
            (a, _) if a >= 2 => {
                if let Some(first) = rl.first() {
                    compare_at(items, None, Some(first), path, cmp);
                }
                cmp.removed.insert(path);
            }
            _ => {
                if let Some(first) = ll.first() {
                    compare_at(items, Some(first), None, path, cmp);
                }
                cmp.added.insert(path);
            }
        }
        path.pop();
    }
}

/// Removes the fields of `to_remove` from a value (`TypedValue.RemoveItems`); what becomes
/// empty turns into null, as upstream leaves it.
pub(crate) fn remove(ty: Ty, v: &Value, to_remove: &Set) -> Value {
    match ty {
        Ty::Scalar | Ty::Untyped => v.clone(),
        Ty::List { rel, .. } => {
            let Value::Array(items) = v else {
                return Value::Null;
            };
            if items.is_empty() || matches!(rel, ListRel::Atomic) {
                return Value::Null;
            }
            let item_ty = ty.items();
            let mut out = Vec::new();
            for item in items {
                let Ok(pe) = list_item_pe(rel, item_ty, item) else {
                    out.push(item.clone());
                    continue;
                };
                if to_remove.members.contains(&pe) {
                    continue;
                }
                match to_remove.children.get(&pe) {
                    Some(sub) if !sub.is_empty() => out.push(remove(item_ty, item, sub)),
                    _ => out.push(item.clone()),
                }
            }
            if out.is_empty() {
                Value::Null
            } else {
                Value::Array(out)
            }
        }
        Ty::Struct { atomic, .. } | Ty::Map { atomic, .. } => {
            let Value::Object(map) = v else {
                return Value::Null;
            };
            if map.is_empty() || atomic {
                return Value::Null;
            }
            let mut out = Map::new();
            for (key, child) in map {
                let pe = Pe::Field(key.clone());
                if to_remove.members.contains(&pe) {
                    continue;
                }
                let child_ty = ty.field(key).unwrap_or(Ty::Untyped);
                let value = match to_remove.children.get(&pe) {
                    Some(sub) if !sub.is_empty() => remove(child_ty, child, sub),
                    _ => child.clone(),
                };
                out.insert(key.clone(), value);
            }
            if out.is_empty() {
                Value::Null
            } else {
                Value::Object(out)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn finalizers() -> Ty {
        let root = Ty::of_kind("", "v1", "ConfigMap").unwrap_or(Ty::Untyped);
        root.field("metadata")
            .and_then(|m| m.field("finalizers"))
            .unwrap_or(Ty::Untyped)
    }

    #[test]
    fn associative_lists_merge_in_upstreams_order() {
        // Shared elements follow the applied order; live-only ones keep their place.
        let cases = [
            (
                json!(["a", "b", "c"]),
                json!(["c", "a"]),
                json!(["b", "c", "a"]),
            ),
            (json!(["a", "b"]), json!(["c"]), json!(["a", "b", "c"])),
            (json!(["a"]), json!(["b", "a"]), json!(["b", "a"])),
            (json!([]), json!([]), json!([])),
        ];
        for (live, applied, want) in cases {
            let got = merge(finalizers(), Some(&live), Some(&applied));
            assert_eq!(got, Some(want), "{live} + {applied}");
        }
    }

    #[test]
    fn comparison_reports_added_removed_and_modified_paths() {
        let ty = Ty::of_kind("", "v1", "ConfigMap").unwrap_or(Ty::Untyped);
        let old = json!({"data": {"a": "1", "b": "2"}});
        let new = json!({"data": {"a": "9", "c": "3"}, "metadata": {"labels": {"x": "y"}}});
        let cmp = compare(ty, &old, &new);
        let show = |s: &Set| {
            s.paths()
                .iter()
                .map(|p| super::super::fieldpath::path_string(p))
                .collect::<Vec<_>>()
        };
        assert_eq!(show(&cmp.modified), [".data.a"]);
        assert_eq!(show(&cmp.removed), [".data.b"]);
        assert_eq!(
            show(&cmp.added),
            [
                ".metadata",
                ".data.c",
                ".metadata.labels",
                ".metadata.labels.x"
            ]
        );
    }
}
