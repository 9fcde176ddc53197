//! Patch and list metadata of the built-in types: what upstream's Go struct tags and
//! OpenAPI extensions say (`x-kubernetes-patch-strategy`, `x-kubernetes-patch-merge-key`,
//! `x-kubernetes-list-type`, `x-kubernetes-list-map-keys`, `x-kubernetes-map-type`).
//!
//! Keyed by OpenAPI definition name (`io.k8s.api.core.v1.PodSpec`, as k8s-openapi's
//! schemars implementations name them) and field name.

/// What upstream declares about one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FieldMeta {
    /// `x-kubernetes-patch-strategy`: `merge`, `replace`, `retainKeys` or `merge,retainKeys`.
    pub patch_strategy: Option<&'static str>,
    /// `x-kubernetes-patch-merge-key`, e.g. `name` for containers.
    pub patch_merge_key: Option<&'static str>,
    /// `x-kubernetes-list-type`: `atomic`, `set` or `map`.
    pub list_type: Option<&'static str>,
    /// `x-kubernetes-list-map-keys` for `map` lists.
    pub list_map_keys: &'static [&'static str],
    /// `x-kubernetes-map-type`: `atomic` or `granular`.
    pub map_type: Option<&'static str>,
}

/// The metadata of `definition.field`, or `None` when upstream declares nothing.
pub fn field_meta(definition: &str, field: &str) -> Option<FieldMeta> {
    let _ = (definition, field);
    None
}

/// Whether a whole definition is atomic (`x-kubernetes-map-type: atomic` on a struct, such as
/// `io.k8s.api.core.v1.LocalObjectReference`), so server-side apply and strategic merge treat
/// it as one value.
pub fn definition_is_atomic(definition: &str) -> bool {
    let _ = definition;
    false
}
