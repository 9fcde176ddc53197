//! Server-side apply and managed-fields tracking with upstream's semantics
//! (`sigs.k8s.io/structured-merge-diff/v4` under `k8s.io/apimachinery/pkg/util/managedfields`),
//! over JSON objects of the built-in kinds.
//!
//! - [`apply`] / [`apply_subresource`]: merge an apply configuration into the live object,
//!   record the applier's fields, detect conflicts with other managers, remove what the
//!   applier stopped applying;
//! - [`track_update`] / [`track_update_subresource`]: the bookkeeping of every other write
//!   (operation `Update`);
//! - [`fields_of`]: the FieldsV1 set of an object;
//! - [`manager_from_user_agent`]: the default manager name of non-apply writes.
//!
//! Status: on the main resource of a kind with a `status` subresource, `status` is a reset
//! field: nobody owns it and the result keeps the live status; on the `status` subresource,
//! `spec` (and a few kind-specific metadata fields) are reset instead
//! ([`reset_fields`]). Not done here: the `kubectl.kubernetes.io/last-applied-configuration`
//! upgrade and update of upstream's `lastAppliedManager`/`lastAppliedUpdater`, and
//! conversion of managers' sets between versions (each kind is served at one version).

mod fieldpath;
mod managed;
mod schema;
mod typed;
mod updater;

#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

use fieldpath::{path_string, Pe, Set};
use managed::{Managed, ManagerInfo};
use schema::Ty;

/// A field another manager owns that an apply would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The manager as upstream prints it: `"kubectl"`, or `"kubectl-client-side-apply"
    /// using apps/v1` for an `Update` entry.
    pub manager: String,
    /// The field path as upstream prints it: `.spec.replicas`,
    /// `.spec.template.spec.containers[name="c"].image`.
    pub field: String,
}

impl Conflict {
    /// The `message` of the conflict's `StatusCause` (type `FieldManagerConflict`).
    pub fn cause_message(&self) -> String {
        format!("conflict with {}", self.manager)
    }
}

/// Why an apply or a managed-fields update failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// Other managers own fields the apply changes (409 Conflict).
    #[error("{}", conflict_message(.0))]
    Conflicts(Vec<Conflict>),
    /// The apply request is malformed (400 Bad Request).
    #[error("{0}")]
    BadRequest(String),
    /// Upstream reports these as internal errors (500): the applied object does not match
    /// the kind's schema, or the live managed fields cannot be decoded.
    #[error("{0}")]
    Internal(String),
    /// The kind has no schema here (custom resources).
    #[error("no corresponding type for {0}")]
    UnsupportedKind(String),
}

impl ApplyError {
    /// The message of the `Status` upstream answers with.
    pub fn message(&self) -> String {
        self.to_string()
    }

    /// The HTTP status upstream answers with.
    pub fn status_code(&self) -> u16 {
        match self {
            ApplyError::Conflicts(_) => 409,
            ApplyError::BadRequest(_) => 400,
            ApplyError::Internal(_) | ApplyError::UnsupportedKind(_) => 500,
        }
    }
}

fn conflict_message(conflicts: &[Conflict]) -> String {
    if let [only] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            only.manager, only.field
        );
    }
    // Grouped by manager in the order they come, which is sorted by manager identifier.
    let mut lines: Vec<String> = Vec::new();
    let mut current: Option<&str> = None;
    for c in conflicts {
        if current != Some(c.manager.as_str()) {
            lines.push(format!("conflicts with {}:", c.manager));
            current = Some(c.manager.as_str());
        }
        lines.push(format!("- {}", c.field));
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

fn api_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

/// Go's `GroupVersionKind.String()`: `apps/v1, Kind=Deployment`, `/v1, Kind=Pod`.
fn gvk_string(api_version: &str, kind: &str) -> String {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    format!("{group}/{version}, Kind={kind}")
}

fn root_type(group: &str, version: &str, kind: &str) -> Result<Ty, ApplyError> {
    Ty::of_kind(group, version, kind)
        .ok_or_else(|| ApplyError::UnsupportedKind(gvk_string(&api_version(group, version), kind)))
}

fn without_managed_fields(obj: &Value) -> Value {
    let mut obj = obj.clone();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    obj
}

fn set_managed_fields(obj: &mut Value, managed: &Managed) {
    let encoded = managed::encode(managed);
    let Some(root) = obj.as_object_mut() else {
        return;
    };
    match encoded {
        Some(entries) => {
            let meta = root
                .entry("metadata")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(meta) = meta.as_object_mut() {
                meta.insert("managedFields".into(), entries);
            }
        }
        None => {
            if let Some(meta) = root.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove("managedFields");
            }
        }
    }
}

/// The fields upstream's strategies reset, so no manager owns them and writes cannot change
/// them: `status` on the main resource of kinds with a status subresource; `spec` (and, for
/// some kinds, metadata fields) on the `status` subresource.
pub fn reset_fields(
    group: &str,
    version: &str,
    kind: &str,
    subresource: Option<&str>,
) -> Vec<Vec<&'static str>> {
    let has_status = crate::catalogue::RESOURCES.iter().any(|r| {
        r.group == group
            && r.version == version
            && r.kind == kind
            && r.subresource("status").is_some()
    });
    match subresource {
        None if has_status => vec![vec!["status"]],
        Some("status") => {
            let mut out = vec![vec!["spec"]];
            match (group, kind) {
                ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet") => {
                    out.push(vec!["metadata", "labels"]);
                }
                ("", "Pod") => {
                    out.push(vec!["metadata", "deletionTimestamp"]);
                    out.push(vec!["metadata", "ownerReferences"]);
                }
                _ => {}
            }
            out
        }
        _ => Vec::new(),
    }
}

fn reset_set(paths: &[Vec<&str>]) -> Set {
    let mut set = Set::new();
    for path in paths {
        let pes: Vec<Pe> = path.iter().map(|p| Pe::Field((*p).to_string())).collect();
        set.insert(&pes);
    }
    set
}

/// Puts the live values of the reset fields back (or removes them when the live object has
/// none), as the strategies' `PrepareForUpdate`/`PrepareForCreate` do.
fn restore_reset_fields(out: &mut Value, live: Option<&Value>, paths: &[Vec<&str>]) {
    for path in paths {
        let Some((last, parents)) = path.split_last() else {
            continue;
        };
        let live_value = live.and_then(|live| {
            parents
                .iter()
                .chain(std::iter::once(last))
                .try_fold(live, |v, k| v.get(*k))
        });
        let mut target = Some(&mut *out);
        for p in parents {
            target = target.and_then(|t| t.get_mut(*p));
        }
        let Some(parent) = target.and_then(Value::as_object_mut) else {
            continue;
        };
        match live_value {
            Some(v) => {
                parent.insert((*last).to_string(), v.clone());
            }
            None => {
                parent.remove(*last);
            }
        }
    }
}

/// Drops null-valued keys, which upstream's round trip through the Go types drops.
fn drop_nulls(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.retain(|_, child| !child.is_null());
            map.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

/// The object upstream compares a create against: the kind's Go zero value as JSON, whose
/// non-pointer structs exist (so creating their fields does not make the creator own the
/// struct itself) and whose required lists are null. Only non-leaf structure matters here.
fn zero_object(kind: &str, ty: Ty) -> Value {
    let pod_template = || serde_json::json!({"metadata": {}, "spec": {"containers": null}});
    let mut obj = Map::new();
    obj.insert("metadata".into(), Value::Object(Map::new()));
    for field in ["spec", "status"] {
        if ty.declares(field) {
            obj.insert(field.into(), Value::Object(Map::new()));
        }
    }
    let spec = match kind {
        "Pod" => serde_json::json!({"containers": null}),
        "Deployment" => serde_json::json!({"template": pod_template(), "strategy": {}}),
        "ReplicaSet" | "Job" => serde_json::json!({"template": pod_template()}),
        "StatefulSet" | "DaemonSet" => {
            serde_json::json!({"template": pod_template(), "updateStrategy": {}})
        }
        "CronJob" => {
            serde_json::json!({"jobTemplate": {"metadata": {}, "spec": {"template": pod_template()}}})
        }
        "PersistentVolumeClaim" => serde_json::json!({"resources": {}}),
        "HorizontalPodAutoscaler" => serde_json::json!({"scaleTargetRef": {}}),
        "CustomResourceDefinition" => serde_json::json!({"names": {}}),
        "VolumeAttachment" => serde_json::json!({"source": {}}),
        _ => Value::Object(Map::new()),
    };
    if spec.as_object().is_some_and(|m| !m.is_empty()) {
        obj.insert("spec".into(), spec);
    }
    if kind == "PodTemplate" {
        obj.insert("template".into(), pod_template());
    }
    Value::Object(obj)
}

/// The FieldsV1 set of the fields `obj` sets, as an apply of `obj` would record it: with
/// upstream's `f:`/`k:`/`v:`/`i:` keys and `"."` for owned elements, and without the fields
/// nobody owns (`apiVersion`, `kind`, `metadata.name`, `namespace`, `uid`,
/// `resourceVersion`, `generation`, `creationTimestamp`, `selfLink`, `managedFields`).
pub fn fields_of(group: &str, version: &str, kind: &str, obj: &Value) -> Result<Value, ApplyError> {
    let ty = root_type(group, version, kind)?;
    let obj = without_managed_fields(obj);
    let errs = typed::validate(ty, &obj, true);
    if !errs.is_empty() {
        return Err(ApplyError::Internal(join_errors(&errs)));
    }
    let set = managed::strip_meta(&typed::to_field_set(ty, &obj));
    Ok(set.to_fields_v1())
}

/// Upstream's `ValidationErrors.Error()`.
fn join_errors(errs: &[String]) -> String {
    match errs {
        [one] => one.clone(),
        many => {
            let mut lines = vec!["errors:".to_string()];
            lines.extend(many.iter().map(|e| format!("  {e}")));
            lines.join("\n")
        }
    }
}

/// Server-side apply to the main resource; see [`apply_subresource`].
#[allow(clippy::too_many_arguments)]
pub fn apply(
    group: &str,
    version: &str,
    kind: &str,
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    now: &str,
) -> Result<Value, ApplyError> {
    apply_subresource(
        group, version, kind, None, live, applied, manager, force, now,
    )
}

/// Server-side apply of `applied` (the request body as parsed from YAML) by `manager` onto
/// `live` (`None` when creating), to the main resource or a subresource (`Some("status")`).
///
/// Returns the new object with `metadata.managedFields` updated (an `Apply` entry for the
/// manager, its time `now` when the object changed). Without `force`, changing a field
/// another manager owns fails with [`ApplyError::Conflicts`]; with it, ownership moves.
/// Fields the manager applied before and omits now are removed unless another manager
/// owns them.
#[allow(clippy::too_many_arguments)]
pub fn apply_subresource(
    group: &str,
    version: &str,
    kind: &str,
    subresource: Option<&str>,
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    now: &str,
) -> Result<Value, ApplyError> {
    let ty = root_type(group, version, kind)?;
    let gv = api_version(group, version);
    let mut managed = match live {
        Some(live) => managed::decode(live.pointer("/metadata/managedFields"))
            .map_err(|e| ApplyError::Internal(format!("failed to decode managed fields: {e}")))?,
        None => Managed::default(),
    };
    let str_at = |k: &str| applied.get(k).and_then(Value::as_str).unwrap_or_default();
    if !applied.is_object() || str_at("apiVersion") != gv || str_at("kind") != kind {
        return Err(ApplyError::BadRequest(format!(
            "invalid object type: {}",
            gvk_string(str_at("apiVersion"), str_at("kind"))
        )));
    }
    if applied
        .pointer("/metadata/managedFields")
        .is_some_and(Value::is_array)
    {
        return Err(ApplyError::BadRequest(
            "metadata.managedFields must be nil".into(),
        ));
    }
    let errs = typed::validate(ty, applied, false);
    if !errs.is_empty() {
        let meta = |k: &str| {
            applied
                .pointer(&format!("/metadata/{k}"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        return Err(ApplyError::Internal(format!(
            "failed to create typed patch object ({}/{}; {}): {}",
            meta("namespace"),
            meta("name"),
            gvk_string(&gv, kind),
            join_errors(&errs)
        )));
    }
    let id = ManagerInfo {
        manager: if manager.is_empty() {
            "unknown"
        } else {
            manager
        }
        .to_string(),
        operation: "Apply".into(),
        api_version: gv.clone(),
        subresource: subresource.unwrap_or_default().to_string(),
    }
    .identifier();
    let reset = reset_fields(group, version, kind, subresource);
    let live_obj = live
        .map(without_managed_fields)
        .unwrap_or_else(|| Value::Object(Map::new()));
    let new = updater::apply(
        ty,
        &live_obj,
        applied,
        &gv,
        &mut managed.fields,
        &id,
        force,
        &reset_set(&reset),
    )
    .map_err(|raw| {
        ApplyError::Conflicts(
            raw.into_iter()
                .map(|c| Conflict {
                    manager: ManagerInfo::from_identifier(&c.manager).display(),
                    field: path_string(&c.path),
                })
                .collect(),
        )
    })?;
    managed::strip_manager(&mut managed, &id);
    if !fieldpath::values_equal(&live_obj, &new) {
        managed.times.insert(id, now.to_string());
    }
    let mut out = new;
    drop_nulls(&mut out);
    restore_reset_fields(&mut out, live, &reset);
    set_managed_fields(&mut out, &managed);
    Ok(out)
}

/// Managed-fields bookkeeping of a create, update or patch of the main resource; see
/// [`track_update_subresource`].
pub fn track_update(
    group: &str,
    version: &str,
    kind: &str,
    old: Option<&Value>,
    new: &Value,
    manager: &str,
    now: &str,
) -> Result<Value, ApplyError> {
    track_update_subresource(group, version, kind, None, old, new, manager, now)
}

/// Whether a client asks to clear managed fields: `[]` or `[{}]`.
fn is_reset(entries: Option<&Value>) -> bool {
    match entries.and_then(Value::as_array).map(Vec::as_slice) {
        Some([]) => true,
        Some([only]) => only.as_object().is_some_and(Map::is_empty),
        _ => false,
    }
}

/// Managed-fields bookkeeping of a non-apply write by `manager` (operation `Update`): the
/// fields that differ between `old` (`None` on create) and `new` become the manager's (in
/// its one entry per apiVersion and subresource, time `now`) and leave every other
/// manager's set; emptied entries disappear; beyond ten `Update` entries the oldest merge
/// into `ancient-changes`.
///
/// Managed fields the client sent in `new` replace the stored ones when they decode (on the
/// main resource only); `[]` or `[{}]` clears them; anything else keeps the stored ones.
#[allow(clippy::too_many_arguments)]
pub fn track_update_subresource(
    group: &str,
    version: &str,
    kind: &str,
    subresource: Option<&str>,
    old: Option<&Value>,
    new: &Value,
    manager: &str,
    now: &str,
) -> Result<Value, ApplyError> {
    let ty = root_type(group, version, kind)?;
    let gv = api_version(group, version);
    let stored = || {
        managed::decode(old.and_then(|o| o.pointer("/metadata/managedFields"))).unwrap_or_default()
    };
    let sent = new.pointer("/metadata/managedFields");
    let mut managed = if subresource.is_some() {
        stored()
    } else if is_reset(sent) {
        Managed::default()
    } else {
        match managed::decode(sent) {
            Ok(m) if !m.fields.is_empty() => m,
            _ => stored(),
        }
    };
    let id = ManagerInfo {
        manager: if manager.is_empty() {
            "unknown"
        } else {
            manager
        }
        .to_string(),
        operation: "Update".into(),
        api_version: gv.clone(),
        subresource: subresource.unwrap_or_default().to_string(),
    }
    .identifier();
    let old_obj = old
        .map(without_managed_fields)
        .unwrap_or_else(|| zero_object(kind, ty));
    let new_obj = without_managed_fields(new);
    let reset = reset_set(&reset_fields(group, version, kind, subresource));
    const SELF: &str = "current-operation";
    updater::track(
        ty,
        &old_obj,
        &new_obj,
        &gv,
        &mut managed.fields,
        SELF,
        &reset,
    );
    managed::strip_manager(&mut managed, SELF);
    if let Some(mut vs) = managed.fields.remove(SELF) {
        if let Some(previous) = managed.fields.get(&id) {
            vs.set = vs.set.union(&previous.set);
        }
        managed.fields.insert(id.clone(), vs);
        managed.times.insert(id, now.to_string());
    }
    managed::cap_update_managers(&mut managed, managed::MAX_UPDATE_MANAGERS);
    let mut out = new_obj;
    set_managed_fields(&mut out, &managed);
    Ok(out)
}

/// The manager name upstream derives from a User-Agent when a non-apply request has no
/// `fieldManager`: the text before the first `/`, printable characters only, at most 128
/// bytes (`kubectl/v1.33.0 (linux/amd64) kubernetes/abc` → `kubectl`).
pub fn manager_from_user_agent(user_agent: &str) -> String {
    const MAX: usize = 128;
    let prefix = user_agent.split('/').next().unwrap_or_default();
    let mut out = String::new();
    for c in prefix.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > MAX {
            break;
        }
        out.push(c);
    }
    out
}
