//! The `metadata.managedFields` wire format and its bookkeeping, as upstream's
//! `managedfields/internal` does it: decoding entries into per-manager sets keyed by a
//! manager identifier, encoding them back sorted, stripping metadata fields nobody may own,
//! and capping the number of `Update` entries.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::fieldpath::{Pe, Set};
use super::updater::{Managers, VersionedSet};

/// Upstream's `DefaultMaxUpdateManagers`.
pub(crate) const MAX_UPDATE_MANAGERS: usize = 10;

/// The bucket the oldest update entries merge into.
const ANCIENT_CHANGES: &str = "ancient-changes";

/// Decoded managed fields: sets and, separately, the time of each entry.
#[derive(Debug, Clone, Default)]
pub(crate) struct Managed {
    pub(crate) fields: Managers,
    pub(crate) times: BTreeMap<String, String>,
}

/// The parts of an entry that identify its manager.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ManagerInfo {
    pub(crate) manager: String,
    pub(crate) operation: String,
    pub(crate) api_version: String,
    pub(crate) subresource: String,
}

impl ManagerInfo {
    /// Upstream's `BuildManagerIdentifier`: the entry's JSON without time and fields, and
    /// without the apiVersion for appliers (so an applier keeps one entry across versions).
    pub(crate) fn identifier(&self) -> String {
        let mut m = Map::new();
        let mut put = |k: &str, v: &str| {
            if !v.is_empty() {
                m.insert(k.into(), Value::String(v.into()));
            }
        };
        put("manager", &self.manager);
        put("operation", &self.operation);
        if self.operation != "Apply" {
            put("apiVersion", &self.api_version);
        }
        put("subresource", &self.subresource);
        Value::Object(m).to_string()
    }

    pub(crate) fn from_identifier(id: &str) -> ManagerInfo {
        let v: Value = serde_json::from_str(id).unwrap_or(Value::Null);
        let get = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        ManagerInfo {
            manager: get("manager"),
            operation: get("operation"),
            api_version: get("apiVersion"),
            subresource: get("subresource"),
        }
    }

    /// How conflict messages name the manager (upstream's `printManager`).
    pub(crate) fn display(&self) -> String {
        let mut out = super::fieldpath::go_quote(&self.manager);
        if !self.subresource.is_empty() {
            out = format!(
                "{out} with subresource {}",
                super::fieldpath::go_quote(&self.subresource)
            );
        }
        if self.operation == "Update" {
            out = format!("{out} using {}", self.api_version);
        }
        out
    }
}

/// Why stored or submitted managed fields cannot be decoded.
pub(crate) fn decode(entries: Option<&Value>) -> Result<Managed, String> {
    let mut managed = Managed::default();
    let entries = match entries {
        None | Some(Value::Null) => return Ok(managed),
        Some(Value::Array(entries)) => entries,
        Some(_) => return Err("managedFields must be a list".into()),
    };
    for (i, entry) in entries.iter().enumerate() {
        let get = |k: &str| entry.get(k).and_then(Value::as_str).unwrap_or_default();
        let operation = get("operation");
        if operation != "Apply" && operation != "Update" {
            return Err("operation must be `Apply` or `Update`".into());
        }
        if get("apiVersion").is_empty() {
            return Err("apiVersion must not be empty".into());
        }
        match get("fieldsType") {
            "FieldsV1" => {}
            "" => return Err(format!("missing fieldsType in managed fields entry {i}")),
            other => {
                return Err(format!(
                    "invalid fieldsType {} in managed fields entry {i}",
                    super::fieldpath::go_quote(other)
                ))
            }
        }
        let info = ManagerInfo {
            manager: get("manager").to_string(),
            operation: operation.to_string(),
            api_version: get("apiVersion").to_string(),
            subresource: get("subresource").to_string(),
        };
        let set = match entry.get("fieldsV1") {
            None | Some(Value::Null) => Set::new(),
            Some(v) => Set::from_fields_v1(v).map_err(|e| format!("error decoding set: {e}"))?,
        };
        let id = info.identifier();
        managed.fields.insert(
            id.clone(),
            VersionedSet {
                set,
                api_version: info.api_version.clone(),
                applied: operation == "Apply",
            },
        );
        match entry.get("time").and_then(Value::as_str) {
            Some(t) => managed.times.insert(id, t.to_string()),
            None => managed.times.remove(&id),
        };
    }
    Ok(managed)
}

fn unix_seconds(time: Option<&String>) -> i64 {
    time.and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map_or(0, |t| t.as_second())
}

/// The wire entries, sorted as upstream sorts them (operation, time, manager, apiVersion,
/// subresource); `None` when there are none.
pub(crate) fn encode(managed: &Managed) -> Option<Value> {
    if managed.fields.is_empty() {
        return None;
    }
    let mut entries: Vec<(ManagerInfo, Option<&String>, &VersionedSet)> = managed
        .fields
        .iter()
        .map(|(id, vs)| {
            let mut info = ManagerInfo::from_identifier(id);
            info.api_version = vs.api_version.clone();
            if vs.applied {
                info.operation = "Apply".into();
            }
            (info, managed.times.get(id), vs)
        })
        .collect();
    entries.sort_by(|(p, pt, _), (q, qt, _)| {
        p.operation
            .cmp(&q.operation)
            .then_with(|| unix_seconds(*pt).cmp(&unix_seconds(*qt)))
            .then_with(|| p.manager.cmp(&q.manager))
            .then_with(|| p.api_version.cmp(&q.api_version))
            .then_with(|| p.subresource.cmp(&q.subresource))
    });
    let out = entries
        .into_iter()
        .map(|(info, time, vs)| {
            let mut e = Map::new();
            if !info.manager.is_empty() {
                e.insert("manager".into(), json!(info.manager));
            }
            e.insert("operation".into(), json!(info.operation));
            e.insert("apiVersion".into(), json!(info.api_version));
            if let Some(t) = time {
                e.insert("time".into(), json!(t));
            }
            e.insert("fieldsType".into(), json!("FieldsV1"));
            e.insert("fieldsV1".into(), vs.set.to_fields_v1());
            if !info.subresource.is_empty() {
                e.insert("subresource".into(), json!(info.subresource));
            }
            Value::Object(e)
        })
        .collect();
    Some(Value::Array(out))
}

/// Fields no manager may own (upstream's `stripMetaManager`).
pub(crate) fn strip_meta(set: &Set) -> Set {
    let mut strip = Set::new();
    let f = |s: &str| Pe::Field(s.to_string());
    strip.insert(&[f("apiVersion")]);
    strip.insert(&[f("kind")]);
    strip.insert(&[f("metadata")]);
    for field in [
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
    ] {
        strip.insert(&[f("metadata"), f(field)]);
    }
    set.difference(&strip)
}

/// Strips the metadata fields from `manager`'s set, dropping it when nothing is left.
pub(crate) fn strip_manager(managed: &mut Managed, manager: &str) {
    if let Some(vs) = managed.fields.get_mut(manager) {
        vs.set = strip_meta(&vs.set);
        if vs.set.is_empty() {
            managed.fields.remove(manager);
        }
    }
}

/// Upstream's `capManagersManager`: merges the oldest `Update` entries into per-version
/// `ancient-changes` buckets until at most `max` remain.
pub(crate) fn cap_update_managers(managed: &mut Managed, max: usize) {
    let mut updaters: Vec<String> = managed
        .fields
        .iter()
        .filter(|(_, vs)| !vs.applied)
        .map(|(id, _)| id.clone())
        .collect();
    if updaters.len() <= max {
        return;
    }
    updaters.sort_by(|a, b| {
        unix_seconds(managed.times.get(a))
            .cmp(&unix_seconds(managed.times.get(b)))
            .then_with(|| a.cmp(b))
    });
    let mut first_of_version: BTreeMap<String, String> = BTreeMap::new();
    let mut length = updaters.len();
    for manager in updaters {
        if length <= max {
            break;
        }
        let Some(vs) = managed.fields.get(&manager).cloned() else {
            continue;
        };
        let time = managed.times.get(&manager).cloned();
        let bucket = ManagerInfo {
            manager: ANCIENT_CHANGES.into(),
            operation: "Update".into(),
            api_version: vs.api_version.clone(),
            subresource: String::new(),
        }
        .identifier();
        let Some(first) = first_of_version.get(&vs.api_version).cloned() else {
            first_of_version.insert(vs.api_version.clone(), manager);
            continue;
        };
        if !managed.fields.contains_key(&bucket) {
            if let Some(s) = managed.fields.remove(&first) {
                managed.fields.insert(bucket.clone(), s);
            }
        }
        let union = managed
            .fields
            .get(&bucket)
            .map_or_else(|| vs.set.clone(), |b| vs.set.union(&b.set));
        managed.fields.insert(
            bucket.clone(),
            VersionedSet {
                set: union,
                api_version: vs.api_version.clone(),
                applied: vs.applied,
            },
        );
        managed.fields.remove(&manager);
        length -= 1;
        match time {
            Some(t) => managed.times.insert(bucket, t),
            None => managed.times.remove(&bucket),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(manager: &str, op: &str, time: &str) -> Value {
        json!({"manager": manager, "operation": op, "apiVersion": "v1", "time": time,
               "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {format!("f:{manager}"): {}}}})
    }

    #[test]
    fn decoding_rejects_what_upstream_rejects() {
        let cases = [
            (
                json!([{"operation": "Patch", "apiVersion": "v1", "fieldsType": "FieldsV1"}]),
                "operation must be `Apply` or `Update`",
            ),
            (
                json!([{"operation": "Update", "fieldsType": "FieldsV1"}]),
                "apiVersion must not be empty",
            ),
            (
                json!([{"operation": "Update", "apiVersion": "v1"}]),
                "missing fieldsType in managed fields entry 0",
            ),
            (
                json!([{"operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV2"}]),
                "invalid fieldsType \"FieldsV2\" in managed fields entry 0",
            ),
        ];
        for (entries, want) in cases {
            assert_eq!(decode(Some(&entries)).unwrap_err(), want);
        }
    }

    #[test]
    fn encoding_sorts_apply_first_then_by_time_and_round_trips() {
        let entries = json!([
            entry("b", "Update", "2024-01-01T00:00:02Z"),
            entry("a", "Update", "2024-01-01T00:00:03Z"),
            entry("z", "Apply", "2024-01-01T00:00:09Z"),
        ]);
        let managed = decode(Some(&entries)).unwrap();
        let out = encode(&managed).unwrap();
        let names: Vec<&str> = out
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["manager"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["z", "b", "a"]);
        assert_eq!(out[1], entries[0]);
        assert_eq!(out[0]["apiVersion"], "v1");
    }

    #[test]
    fn capping_merges_the_oldest_updates_into_ancient_changes() {
        let entries: Vec<Value> = (0..12)
            .map(|i| {
                entry(
                    &format!("m{i:02}"),
                    "Update",
                    &format!("2024-01-01T00:00:{i:02}Z"),
                )
            })
            .collect();
        let mut managed = decode(Some(&Value::Array(entries))).unwrap();
        cap_update_managers(&mut managed, MAX_UPDATE_MANAGERS);
        assert_eq!(managed.fields.len(), 10);
        let bucket = r#"{"manager":"ancient-changes","operation":"Update","apiVersion":"v1"}"#;
        let Some(vs) = managed.fields.get(bucket) else {
            panic!("no bucket in {:?}", managed.fields.keys());
        };
        assert_eq!(
            vs.set.children.values().next().map(|s| s.members.len()),
            Some(3)
        );
        assert_eq!(
            managed.times.get(bucket).map(String::as_str),
            Some("2024-01-01T00:00:02Z")
        );
    }

    #[test]
    fn conflict_managers_print_like_upstream() {
        let cases = [
            (
                ManagerInfo {
                    manager: "kubectl".into(),
                    operation: "Apply".into(),
                    ..Default::default()
                },
                r#""kubectl""#,
            ),
            (
                ManagerInfo {
                    manager: "kubectl-client-side-apply".into(),
                    operation: "Update".into(),
                    api_version: "apps/v1".into(),
                    ..Default::default()
                },
                r#""kubectl-client-side-apply" using apps/v1"#,
            ),
            (
                ManagerInfo {
                    manager: "k".into(),
                    operation: "Update".into(),
                    api_version: "v1".into(),
                    subresource: "status".into(),
                },
                r#""k" with subresource "status" using v1"#,
            ),
        ];
        for (info, want) in cases {
            assert_eq!(info.display(), want);
            assert_eq!(
                ManagerInfo::from_identifier(&info.identifier()).manager,
                info.manager
            );
        }
    }
}
