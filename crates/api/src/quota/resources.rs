//! Resource lists (`{"cpu": "500m", "pods": "3"}`) and the arithmetic quota does on them,
//! as upstream's `apiserver/pkg/quota/v1/resources.go`.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::quantity::{Format, Quantity};

/// Resource names to quantities, sorted by name.
pub type ResourceList = BTreeMap<String, Quantity>;

/// A quantity written as a JSON string (`"500m"`) or number (`2`); `None` when it is neither
/// or does not parse.
pub fn quantity_of(v: &Value) -> Option<Quantity> {
    match v {
        Value::String(s) => Quantity::parse(s).ok(),
        Value::Number(n) => Quantity::parse(&n.to_string()).ok(),
        _ => None,
    }
}

/// The resource list of a JSON map (absent or malformed entries are skipped: the API server
/// validated the object before admission).
pub fn resource_list(v: Option<&Value>) -> ResourceList {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), quantity_of(v)?)))
                .collect()
        })
        .unwrap_or_default()
}

/// The JSON form of a resource list, as it is stored in `status.used`.
pub fn to_json(list: &ResourceList) -> Value {
    Value::Object(
        list.iter()
            .map(|(k, q)| (k.clone(), Value::String(q.to_string())))
            .collect(),
    )
}

pub(crate) fn one() -> Quantity {
    Quantity::from_i64(1, Format::DecimalSI)
}

pub(crate) fn zero() -> Quantity {
    Quantity::from_i64(0, Format::DecimalSI)
}

/// `a + b`, keeping `a`'s format (upstream's `Quantity.Add`). Sums beyond the exact range
/// the quantity type spells out keep `a`, which only happens for absurd values.
pub(crate) fn add_q(a: &Quantity, b: &Quantity) -> Quantity {
    a.checked_add(b).unwrap_or_else(|| a.clone())
}

/// Every resource of either list, summed where both have it.
pub fn add(a: &ResourceList, b: &ResourceList) -> ResourceList {
    let mut out = a.clone();
    for (k, v) in b {
        let sum = match out.get(k) {
            Some(cur) => add_q(cur, v),
            None => v.clone(),
        };
        out.insert(k.clone(), sum);
    }
    out
}

/// `a - b` per resource, floored at zero; resources only in `b` become zero.
pub fn subtract_non_negative(a: &ResourceList, b: &ResourceList) -> ResourceList {
    let mut out = ResourceList::new();
    for (k, v) in a {
        let diff = match b.get(k) {
            Some(other) => v.checked_sub(other).unwrap_or_else(zero),
            None => v.clone(),
        };
        out.insert(k.clone(), if diff.sign() > 0 { diff } else { zero() });
    }
    for k in b.keys() {
        out.entry(k.clone()).or_insert_with(zero);
    }
    out
}

/// The entries of `list` whose names are in `names`.
pub fn mask<S: AsRef<str>>(list: &ResourceList, names: &[S]) -> ResourceList {
    list.iter()
        .filter(|(k, _)| names.iter().any(|n| n.as_ref() == k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The resources of `b` that `a` has more of (empty when `a <= b` everywhere both have).
pub fn exceeding(a: &ResourceList, b: &ResourceList) -> Vec<String> {
    b.iter()
        .filter(|(k, limit)| a.get(*k).is_some_and(|v| v > *limit))
        .map(|(k, _)| k.clone())
        .collect()
}

pub fn remove_zeros(list: &ResourceList) -> ResourceList {
    list.iter()
        .filter(|(_, v)| !v.is_zero())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

pub(crate) fn negative_names(list: &ResourceList) -> Vec<String> {
    list.iter()
        .filter(|(_, v)| v.sign() < 0)
        .map(|(k, _)| k.clone())
        .collect()
}

/// `cpu=1,pods=2`, sorted by name (upstream's `prettyPrint`).
pub fn pretty_print(list: &ResourceList) -> String {
    list.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Names sorted and comma-joined (upstream's `prettyPrintResourceNames`).
pub(crate) fn pretty_names<S: AsRef<str>>(names: &[S]) -> String {
    let mut v: Vec<&str> = names.iter().map(AsRef::as_ref).collect();
    v.sort_unstable();
    v.join(",")
}

/// Adds `list` into `into` (upstream's `addResourceList`).
pub(crate) fn add_into(into: &mut ResourceList, list: &ResourceList) {
    for (k, v) in list {
        let sum = match into.get(k) {
            Some(cur) => add_q(cur, v),
            None => v.clone(),
        };
        into.insert(k.clone(), sum);
    }
}

/// Raises each entry of `into` to `list`'s where that is greater (upstream's
/// `maxResourceList`).
pub(crate) fn max_into(into: &mut ResourceList, list: &ResourceList) {
    for (k, v) in list {
        if into.get(k).is_none_or(|cur| v > cur) {
            into.insert(k.clone(), v.clone());
        }
    }
}
