//! The definitions registry: every OpenAPI definition reachable from the served kinds, named
//! as upstream names them (`io.k8s.api.core.v1.Pod`), with upstream's extensions added:
//! `x-kubernetes-group-version-kind` on kinds and list kinds, and the patch and list metadata
//! of [`crate::patch::meta`] on fields.
//!
//! Schemas come from k8s-openapi's schemars implementations. Three things differ from what
//! upstream serves and are fixed here:
//! - k8s-openapi has no schema for lists (`k8s_openapi::List<T>`), so `PodList` and friends
//!   are written here in upstream's shape;
//! - k8s-openapi marks `metadata` required because its Rust field is not optional; upstream
//!   never requires it (`kubectl explain` would print `-required-`);
//! - IntOrString and Quantity carry `x-kubernetes-int-or-string` where upstream's v2 document
//!   says `type: string` (with `format: int-or-string` for IntOrString).
//!
//! References use the OpenAPI v2 form `#/definitions/<name>`; the v3 documents rewrite them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use k8s_openapi::schemars::generate::SchemaSettings;
use serde_json::{json, Map, Value};

use super::types::{self, KindDef, EVERY_GROUP_VERSION};
use crate::catalogue::{self, RESOURCES};
use crate::patch::meta::{definition_is_atomic, field_meta};

/// How references to definitions start in the registry (and in the OpenAPI v2 document).
pub const DEFINITIONS_PREFIX: &str = "#/definitions/";

pub const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
pub const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";
pub const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
pub const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
pub const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
pub const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";
pub const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";

/// One kind known to the registry: served kinds, their list kinds, subresource kinds and
/// meta kinds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindEntry {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: String,
    /// The definition name, e.g. `io.k8s.api.core.v1.PodList`.
    pub definition: String,
}

/// Every definition, sorted by name, and the kinds they describe.
#[derive(Debug)]
pub struct Definitions {
    defs: Map<String, Value>,
    kinds: Vec<KindEntry>,
}

/// The registry, built once.
pub fn definitions() -> &'static Definitions {
    static DEFS: OnceLock<Definitions> = OnceLock::new();
    DEFS.get_or_init(Definitions::build)
}

/// The definition name of a kind (`("", "v1", "Pod")` → `io.k8s.api.core.v1.Pod`), including
/// list kinds (`PodList`) and meta kinds (`Status`, `DeleteOptions` in any served
/// group-version).
pub fn definition_name(group: &str, version: &str, kind: &str) -> Option<&'static str> {
    definitions().definition_name(group, version, kind)
}

/// The schema of a kind, with `#/definitions/` references.
pub fn kind_schema(group: &str, version: &str, kind: &str) -> Option<&'static Value> {
    definitions().kind_schema(group, version, kind)
}

/// The definition a `$ref` schema points at, if it is one.
pub fn ref_target(schema: &Value) -> Option<&str> {
    schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix(DEFINITIONS_PREFIX))
}

impl Definitions {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.defs.get(name)
    }

    /// All definitions, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.defs.iter()
    }

    pub fn len(&self) -> usize {
        self.defs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.defs.is_empty()
    }

    pub fn kinds(&self) -> &[KindEntry] {
        &self.kinds
    }

    pub fn definition_name(&self, group: &str, version: &str, kind: &str) -> Option<&str> {
        self.kinds
            .iter()
            .find(|k| k.group == group && k.version == version && k.kind == kind)
            .map(|k| k.definition.as_str())
            .or_else(|| {
                // DeleteOptions and WatchEvent are accepted in every served group-version.
                let served = served_group_versions()
                    .iter()
                    .any(|(g, v)| *g == group && *v == version);
                (served && EVERY_GROUP_VERSION.contains(&kind))
                    .then(|| self.definition_name("", "v1", kind))
                    .flatten()
            })
    }

    pub fn kind_schema(&self, group: &str, version: &str, kind: &str) -> Option<&Value> {
        self.definition_name(group, version, kind)
            .and_then(|name| self.get(name))
    }

    /// Follows `$ref`s (and single-element `allOf` wrappers) to the schema they name.
    /// Unknown references resolve to themselves.
    pub fn resolve<'a>(&'a self, mut schema: &'a Value) -> &'a Value {
        // Definitions never refer to themselves directly; the bound only guards input.
        for _ in 0..16 {
            if let Some(target) = ref_target(schema).and_then(|name| self.get(name)) {
                schema = target;
            } else if let Some([only]) = schema
                .get("allOf")
                .and_then(Value::as_array)
                .map(|a| a.as_slice())
            {
                if schema.get("properties").is_some() {
                    break;
                }
                schema = only;
            } else {
                break;
            }
        }
        schema
    }

    /// The names of `roots` and every definition they reference, directly or not.
    pub fn closure<I, S>(&self, roots: I) -> BTreeSet<String>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<String> = roots.into_iter().map(Into::into).collect();
        while let Some(name) = todo.pop() {
            if !seen.insert(name.clone()) {
                continue;
            }
            if let Some(schema) = self.get(&name) {
                collect_refs(schema, &mut todo);
            }
        }
        seen.retain(|name| self.defs.contains_key(name));
        seen
    }

    fn build() -> Definitions {
        let mut generator = SchemaSettings::draft07()
            .with(|s| {
                s.definitions_path = "/definitions".into();
                s.meta_schema = None;
                // The default draft-07 transforms drop `description` next to `$ref`.
                s.transforms = Vec::new();
            })
            .into_generator();
        let kind_defs = types::generate(&mut generator);
        types::generate_extra(&mut generator);
        // Sorted by name, as upstream serves them.
        let mut sorted: BTreeMap<String, Value> =
            generator.take_definitions(false).into_iter().collect();
        for (name, schema) in sorted.iter_mut() {
            fix_upstream_differences(name, schema);
            add_patch_metadata(name, schema);
        }
        let mut kinds: Vec<KindEntry> = kind_defs.iter().map(entry).collect();
        for (entry, schema) in list_kinds(&kind_defs) {
            sorted.insert(entry.definition.clone(), schema);
            kinds.push(entry);
        }
        let mut defs: Map<String, Value> = sorted.into_iter().collect();
        add_group_version_kinds(&mut defs, &kinds);
        Definitions { defs, kinds }
    }
}

fn entry(k: &KindDef) -> KindEntry {
    KindEntry {
        group: k.group,
        version: k.version,
        kind: k.kind.to_string(),
        definition: k.definition.clone(),
    }
}

/// The group-versions rkube serves, core first, in discovery order.
pub fn served_group_versions() -> &'static [(&'static str, &'static str)] {
    static GVS: OnceLock<Vec<(&'static str, &'static str)>> = OnceLock::new();
    GVS.get_or_init(|| {
        let mut out: Vec<(&'static str, &'static str)> = Vec::new();
        if RESOURCES.iter().any(|r| r.group.is_empty()) {
            out.push(("", "v1"));
        }
        for g in catalogue::groups() {
            for v in g.versions {
                out.push((g.name, v));
            }
        }
        out
    })
}

fn collect_refs(schema: &Value, out: &mut Vec<String>) {
    match schema {
        Value::Object(map) => {
            if let Some(name) = ref_target(schema) {
                out.push(name.to_string());
            }
            for v in map.values() {
                collect_refs(v, out);
            }
        }
        Value::Array(items) => {
            for v in items {
                collect_refs(v, out);
            }
        }
        _ => {}
    }
}

fn fix_upstream_differences(name: &str, schema: &mut Value) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    if name == INT_OR_STRING || name == QUANTITY {
        obj.remove("x-kubernetes-int-or-string");
        if name == INT_OR_STRING {
            obj.insert("format".into(), json!("int-or-string"));
        }
        obj.insert("type".into(), json!("string"));
    }
    let drop_required = match obj.get_mut("required").and_then(Value::as_array_mut) {
        Some(required) => {
            required.retain(|f| f != "metadata");
            required.is_empty()
        }
        None => false,
    };
    if drop_required {
        obj.remove("required");
    }
}

fn add_patch_metadata(name: &str, schema: &mut Value) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    if definition_is_atomic(name) {
        obj.insert("x-kubernetes-map-type".into(), json!("atomic"));
    }
    let Some(props) = obj.get_mut("properties").and_then(Value::as_object_mut) else {
        return;
    };
    for (field, prop) in props.iter_mut() {
        let (Some(meta), Some(prop)) = (field_meta(name, field), prop.as_object_mut()) else {
            continue;
        };
        if !meta.list_map_keys.is_empty() {
            prop.insert(
                "x-kubernetes-list-map-keys".into(),
                json!(meta.list_map_keys),
            );
        }
        if let Some(t) = meta.list_type {
            prop.insert("x-kubernetes-list-type".into(), json!(t));
        }
        if let Some(t) = meta.map_type {
            prop.insert("x-kubernetes-map-type".into(), json!(t));
        }
        if let Some(k) = meta.patch_merge_key {
            prop.insert("x-kubernetes-patch-merge-key".into(), json!(k));
        }
        if let Some(s) = meta.patch_strategy {
            prop.insert("x-kubernetes-patch-strategy".into(), json!(s));
        }
    }
}

/// The list kind of every served resource, in upstream's shape.
fn list_kinds(kind_defs: &[KindDef]) -> Vec<(KindEntry, Value)> {
    let mut out: Vec<(KindEntry, Value)> = Vec::new();
    for r in RESOURCES {
        let Some(item) = kind_defs
            .iter()
            .find(|k| k.group == r.group && k.version == r.version && k.kind == r.kind)
        else {
            continue;
        };
        let list_kind = format!("{}List", r.kind);
        if out
            .iter()
            .any(|(e, _)| e.group == r.group && e.version == r.version && e.kind == list_kind)
        {
            continue;
        }
        let package = item
            .definition
            .rsplit_once('.')
            .map_or("", |(package, _)| package);
        let definition = format!("{package}.{list_kind}");
        let schema = json!({
            "description": format!("{list_kind} is a list of {} objects.", r.kind),
            "properties": {
                "apiVersion": {
                    "description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources",
                    "type": "string"
                },
                "items": {
                    "description": format!("List of {}.", r.plural),
                    "items": { "$ref": format!("{DEFINITIONS_PREFIX}{}", item.definition) },
                    "type": "array"
                },
                "kind": {
                    "description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
                    "type": "string"
                },
                "metadata": {
                    "$ref": format!("{DEFINITIONS_PREFIX}{LIST_META}"),
                    "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"
                }
            },
            "required": ["items"],
            "type": "object"
        });
        out.push((
            KindEntry {
                group: r.group,
                version: r.version,
                kind: list_kind,
                definition,
            },
            schema,
        ));
    }
    out
}

fn gvk_value(group: &str, version: &str, kind: &str) -> Value {
    // Keys in upstream's (sorted) order; kubectl explain compares these maps for equality.
    json!({ "group": group, "kind": kind, "version": version })
}

fn add_group_version_kinds(defs: &mut Map<String, Value>, kinds: &[KindEntry]) {
    let mut push = |definition: &str, gvk: Value| {
        let Some(obj) = defs.get_mut(definition).and_then(Value::as_object_mut) else {
            return;
        };
        let list = obj
            .entry("x-kubernetes-group-version-kind")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Some(list) = list.as_array_mut() {
            if !list.contains(&gvk) {
                list.push(gvk);
            }
        }
    };
    for k in kinds {
        if EVERY_GROUP_VERSION.contains(&k.kind.as_str()) {
            for (group, version) in served_group_versions() {
                push(&k.definition, gvk_value(group, version, &k.kind));
            }
        } else {
            push(&k.definition, gvk_value(k.group, k.version, &k.kind));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_served_resource_has_a_schema_and_a_list_schema() {
        for r in RESOURCES {
            let name = definition_name(r.group, r.version, r.kind);
            assert!(
                name.is_some(),
                "no schema for {} {}",
                r.api_version(),
                r.kind
            );
            let list = definition_name(r.group, r.version, &format!("{}List", r.kind));
            assert!(
                list.is_some(),
                "no list schema for {} {}",
                r.api_version(),
                r.kind
            );
        }
    }

    #[test]
    fn kinds_map_to_upstream_definition_names() {
        let cases = [
            ("", "v1", "Pod", "io.k8s.api.core.v1.Pod"),
            ("", "v1", "PodList", "io.k8s.api.core.v1.PodList"),
            ("apps", "v1", "Deployment", "io.k8s.api.apps.v1.Deployment"),
            ("apps", "v1", "DeploymentList", "io.k8s.api.apps.v1.DeploymentList"),
            ("autoscaling", "v1", "Scale", "io.k8s.api.autoscaling.v1.Scale"),
            ("policy", "v1", "Eviction", "io.k8s.api.policy.v1.Eviction"),
            ("", "v1", "Binding", "io.k8s.api.core.v1.Binding"),
            ("", "v1", "Status", STATUS),
            ("apps", "v1", "DeleteOptions", DELETE_OPTIONS),
            ("batch", "v1", "WatchEvent", WATCH_EVENT),
            (
                "apiextensions.k8s.io",
                "v1",
                "CustomResourceDefinitionList",
                "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionList",
            ),
        ];
        for (g, v, k, want) in cases {
            assert_eq!(definition_name(g, v, k), Some(want), "{g}/{v} {k}");
        }
        assert_eq!(definition_name("apps", "v1", "Pod"), None);
        assert_eq!(
            definition_name("nosuch.k8s.io", "v1", "DeleteOptions"),
            None
        );
    }

    #[test]
    fn kinds_carry_their_group_version_kind() {
        let defs = definitions();
        let gvks = |name: &str| {
            defs.get(name)
                .and_then(|s| s.get("x-kubernetes-group-version-kind"))
                .cloned()
        };
        assert_eq!(
            gvks("io.k8s.api.core.v1.Pod"),
            Some(json!([{"group": "", "kind": "Pod", "version": "v1"}]))
        );
        assert_eq!(
            gvks("io.k8s.api.core.v1.PodList"),
            Some(json!([{"group": "", "kind": "PodList", "version": "v1"}]))
        );
        assert_eq!(gvks("io.k8s.api.core.v1.PodSpec"), None);
        let delete_options = gvks(DELETE_OPTIONS).unwrap_or_default();
        assert!(delete_options.as_array().is_some_and(
            |l| l.contains(&json!({"group": "apps", "kind": "DeleteOptions", "version": "v1"}))
        ));
    }

    #[test]
    fn every_reference_resolves() {
        let defs = definitions();
        let mut refs = Vec::new();
        for (_, schema) in defs.iter() {
            collect_refs(schema, &mut refs);
        }
        assert!(!refs.is_empty());
        for r in refs {
            assert!(defs.get(&r).is_some(), "dangling reference to {r}");
        }
    }

    #[test]
    fn metadata_is_never_required_and_scalars_look_like_upstream() {
        let defs = definitions();
        for (name, schema) in defs.iter() {
            let required = schema.get("required").and_then(Value::as_array);
            assert!(
                !required.is_some_and(|r| r.contains(&json!("metadata"))),
                "{name} requires metadata"
            );
        }
        let binding = defs
            .get("io.k8s.api.core.v1.Binding")
            .and_then(|s| s.get("required"));
        assert_eq!(binding, Some(&json!(["target"])));
        let ios = defs.get(INT_OR_STRING).cloned().unwrap_or_default();
        assert_eq!(ios.get("format"), Some(&json!("int-or-string")));
        assert_eq!(ios.get("type"), Some(&json!("string")));
    }

    #[test]
    fn closure_follows_nested_references() {
        let names = definitions().closure(["io.k8s.api.apps.v1.Deployment"]);
        for want in [
            "io.k8s.api.apps.v1.Deployment",
            "io.k8s.api.core.v1.PodSpec",
            "io.k8s.api.core.v1.Container",
            "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
            QUANTITY,
        ] {
            assert!(names.contains(want), "{want} missing");
        }
        assert!(!names.contains("io.k8s.api.core.v1.Node"));
    }

    #[test]
    fn patch_metadata_appears_on_fields_when_declared() {
        // `field_meta` may not know `containers` yet; when it does, the extension must appear.
        let defs = definitions();
        let containers = defs
            .get("io.k8s.api.core.v1.PodSpec")
            .and_then(|s| s.pointer("/properties/containers"));
        let declared = field_meta("io.k8s.api.core.v1.PodSpec", "containers");
        let key = containers.and_then(|c| c.get("x-kubernetes-patch-merge-key"));
        assert_eq!(
            key.and_then(Value::as_str),
            declared.and_then(|m| m.patch_merge_key)
        );
    }
}
