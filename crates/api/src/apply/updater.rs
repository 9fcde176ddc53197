//! Ownership bookkeeping of structured-merge-diff's `merge.Updater`: who owns what after an
//! update or an apply, which changes conflict with other managers, and which fields an
//! applier's omission removes (`prune`).
//!
//! Every manager's set is interpreted at the request's version: rkube serves each kind at
//! one version, so upstream's conversions between versions are identities here.

use std::collections::BTreeMap;

use serde_json::Value;

use super::fieldpath::{Path, Set};
use super::schema::Ty;
use super::typed::{
    compare, ensure_named_fields_are_members, merge, remove, to_field_set, Comparison,
};

/// One manager's fields.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct VersionedSet {
    pub(crate) set: Set,
    pub(crate) api_version: String,
    pub(crate) applied: bool,
}

/// Managers by identifier (the JSON upstream builds from manager, operation, apiVersion and
/// subresource).
pub(crate) type Managers = BTreeMap<String, VersionedSet>;

/// A field another manager owns and the request would change.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawConflict {
    pub(crate) manager: String,
    pub(crate) path: Path,
}

/// Upstream's `Updater.update`: takes changed fields away from every other manager, or
/// reports them as conflicts when not forcing.
fn update(
    ty: Ty,
    old: &Value,
    new: &Value,
    managers: &mut Managers,
    workflow: &str,
    force: bool,
    ignored: &Set,
) -> Result<Comparison, Vec<RawConflict>> {
    let cmp = compare(ty, old, new).exclude(ignored);
    let changed = cmp.modified.union(&cmp.added);
    let mut conflicts: Vec<(String, Set)> = Vec::new();
    for (manager, vs) in managers.iter() {
        if manager == workflow {
            continue;
        }
        let conflict = vs.set.intersection(&changed);
        if !conflict.is_empty() {
            conflicts.push((manager.clone(), conflict));
        }
    }
    if !force && !conflicts.is_empty() {
        return Err(conflicts
            .into_iter()
            .flat_map(|(manager, set)| {
                set.paths().into_iter().map(move |path| RawConflict {
                    manager: manager.clone(),
                    path,
                })
            })
            .collect());
    }
    for (manager, conflict) in &conflicts {
        if let Some(vs) = managers.get_mut(manager) {
            vs.set = vs.set.difference(conflict);
        }
    }
    if !cmp.removed.is_empty() {
        for (manager, vs) in managers.iter_mut() {
            if manager != workflow {
                vs.set = vs.set.difference(&cmp.removed);
            }
        }
    }
    managers.retain(|_, vs| !vs.set.is_empty());
    Ok(cmp)
}

/// Upstream's `Updater.Update` for a create, update or patch by `manager`.
pub(crate) fn track(
    ty: Ty,
    live: &Value,
    new: &Value,
    version: &str,
    managers: &mut Managers,
    manager: &str,
    ignored: &Set,
) {
    // Forced updates cannot conflict.
    let Ok(cmp) = update(ty, live, new, managers, manager, true, ignored) else {
        return;
    };
    let previous = managers
        .remove(manager)
        .map(|vs| vs.set)
        .unwrap_or_default();
    let set = previous
        .difference(&cmp.removed)
        .union(&cmp.modified)
        .union(&cmp.added)
        .recursive_difference(ignored);
    if !set.is_empty() {
        managers.insert(
            manager.to_string(),
            VersionedSet {
                set,
                api_version: version.to_string(),
                applied: false,
            },
        );
    }
}

/// Upstream's `Updater.Apply`: merges `config` into `live`, records it as `manager`'s set,
/// prunes what the manager stopped applying, and settles ownership. Returns the new object.
#[allow(clippy::too_many_arguments)]
pub(crate) fn apply(
    ty: Ty,
    live: &Value,
    config: &Value,
    version: &str,
    managers: &mut Managers,
    manager: &str,
    force: bool,
    ignored: &Set,
) -> Result<Value, Vec<RawConflict>> {
    let merged = merge(ty, Some(live), Some(config)).unwrap_or(Value::Null);
    let last = managers.get(manager).map(|vs| vs.set.clone());
    let set = to_field_set(ty, config).recursive_difference(ignored);
    managers.insert(
        manager.to_string(),
        VersionedSet {
            set,
            api_version: version.to_string(),
            applied: true,
        },
    );
    let new = match last {
        Some(last) if !last.is_empty() => prune(ty, &merged, managers, &last),
        _ => merged,
    };
    update(ty, live, &new, managers, manager, force, ignored)?;
    Ok(new)
}

/// Removes what the applier applied last time but not now, unless someone else owns it.
fn prune(ty: Ty, merged: &Value, managers: &Managers, last: &Set) -> Value {
    let named = |s: &Set| ensure_named_fields_are_members(s, ty);
    let last = named(last);
    let pruned = remove(ty, merged, &last);
    // Add back what any manager (the applier's new configuration included) owns.
    let managed = managers
        .values()
        .fold(Set::new(), |acc, vs| acc.union(&vs.set));
    let merged_set = named(&to_field_set(ty, merged));
    let pruned_set = named(&to_field_set(ty, &pruned));
    let drop = merged_set.difference(&pruned_set.union(&named(&managed)));
    let pruned = remove(ty, merged, &drop);
    // Add back what the applier never owned (dangling items nobody claims).
    let pruned_set = named(&to_field_set(ty, &pruned));
    let drop = merged_set.difference(&pruned_set).intersection(&last);
    remove(ty, merged, &drop)
}
