//! The structured-merge-diff view of a kind's OpenAPI schema, as kube-openapi's `schemaconv`
//! derives it: structs and string maps are granular unless `x-kubernetes-map-type: atomic`;
//! lists are atomic unless `x-kubernetes-list-type` says `set` or `map`, or (without a list
//! type) their patch strategy is `merge`, which makes them keyed by the patch merge key, or a
//! set when there is none; anything the schema leaves open (`RawExtension`, `JSON`) is an
//! atomic untyped value.
//!
//! Types are read lazily from [`crate::schema::definitions`], which already carries the
//! list and map extensions of [`crate::patch::meta`] on each field.

use serde_json::{Map, Value};

use crate::schema::definitions;
use crate::schema::definitions::ref_target;

/// How the elements of a list relate.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ListRel {
    Atomic,
    /// Scalars identified by their value.
    Set,
    /// Objects identified by these key fields.
    Keyed(&'static [Value]),
}

/// A position in the schema.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ty {
    /// An object with declared fields.
    Struct {
        props: &'static Map<String, Value>,
        atomic: bool,
    },
    /// An object with arbitrary keys whose values have one schema.
    Map {
        elem: &'static Value,
        atomic: bool,
    },
    List {
        items: &'static Value,
        rel: ListRel,
    },
    Scalar,
    /// Anything; merged and owned as one value.
    Untyped,
}

/// Defaults upstream's schema declares for list-map key fields, so elements that omit the
/// key still have an identity (`+default="TCP"` on the port protocols).
const KEY_DEFAULTS: &[(&str, &str, &str)] = &[
    ("io.k8s.api.core.v1.ContainerPort", "protocol", "TCP"),
    ("io.k8s.api.core.v1.ServicePort", "protocol", "TCP"),
];

impl Ty {
    /// The root type of a kind, or `None` for kinds without a schema.
    pub(crate) fn of_kind(group: &str, version: &str, kind: &str) -> Option<Ty> {
        let defs = definitions();
        let name = defs.definition_name(group, version, kind)?;
        let schema = defs.get(name)?;
        Some(classify(schema))
    }

    /// The type of a struct field or map value named `key`; `None` when a struct does not
    /// declare it.
    pub(crate) fn field(&self, key: &str) -> Option<Ty> {
        match *self {
            Ty::Struct { props, .. } => props.get(key).map(classify),
            Ty::Map { elem, .. } => Some(classify(elem)),
            Ty::Untyped => Some(Ty::Untyped),
            Ty::List { .. } | Ty::Scalar => None,
        }
    }

    /// The type of list elements.
    pub(crate) fn items(&self) -> Ty {
        match *self {
            Ty::List { items, .. } => classify(items),
            _ => Ty::Untyped,
        }
    }

    /// Whether the struct declares `key` (which makes it a named field rather than a map
    /// entry).
    pub(crate) fn declares(&self, key: &str) -> bool {
        matches!(self, Ty::Struct { props, .. } if props.contains_key(key))
    }

    /// The default of a list-map key field of this (element) type.
    pub(crate) fn key_default(&self, field: &str) -> Option<Value> {
        let Ty::Struct { props, .. } = *self else {
            return None;
        };
        let defs = definitions();
        KEY_DEFAULTS
            .iter()
            .filter(|(_, f, _)| *f == field)
            .find(|(def, _, _)| {
                defs.get(def)
                    .and_then(|d| d.get("properties"))
                    .and_then(Value::as_object)
                    .is_some_and(|p| std::ptr::eq(p, props))
            })
            .map(|(_, _, v)| Value::String((*v).to_string()))
    }
}

fn map_type_atomic(schema: &Value) -> Option<bool> {
    match schema.get("x-kubernetes-map-type").and_then(Value::as_str) {
        Some("atomic") => Some(true),
        Some("granular") => Some(false),
        _ => None,
    }
}

fn list_rel(schema: &'static Value) -> ListRel {
    let ext = |k: &str| schema.get(k);
    match ext("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("set") => return ListRel::Set,
        Some("map") => {
            return match ext("x-kubernetes-list-map-keys").and_then(Value::as_array) {
                Some(keys) => ListRel::Keyed(keys.as_slice()),
                None => ListRel::Set,
            }
        }
        Some(_) => return ListRel::Atomic,
        None => {}
    }
    match ext("x-kubernetes-patch-strategy").and_then(Value::as_str) {
        Some("merge" | "merge,retainKeys") => match ext("x-kubernetes-patch-merge-key") {
            Some(key @ Value::String(_)) => ListRel::Keyed(std::slice::from_ref(key)),
            _ => ListRel::Set,
        },
        _ => ListRel::Atomic,
    }
}

/// The type a (field) schema describes. A `x-kubernetes-map-type` on the field overrides the
/// one on the definition it refers to.
pub(crate) fn classify(schema: &'static Value) -> Ty {
    let defs = definitions();
    let field_atomic = map_type_atomic(schema);
    let name = ref_target(schema).or_else(|| {
        schema
            .get("allOf")
            .and_then(|a| a.get(0))
            .and_then(ref_target)
    });
    if name == Some("io.k8s.apimachinery.pkg.runtime.RawExtension") {
        return Ty::Untyped;
    }
    let target = defs.resolve(schema);
    let target_atomic = map_type_atomic(target);
    let atomic = field_atomic.or(target_atomic).unwrap_or(false);
    if let Some(props) = target.get("properties").and_then(Value::as_object) {
        return Ty::Struct { props, atomic };
    }
    match target.get("type").and_then(Value::as_str) {
        Some("array") => match target.get("items") {
            Some(items) => Ty::List {
                items,
                rel: list_rel(target),
            },
            None => Ty::Untyped,
        },
        Some("object") => match target.get("additionalProperties") {
            Some(elem @ Value::Object(_)) => Ty::Map { elem, atomic },
            _ => Ty::Untyped,
        },
        Some("string" | "integer" | "number" | "boolean") => match target.get("format") {
            Some(Value::String(f)) if f == "int-or-string" => Ty::Untyped,
            _ => Ty::Scalar,
        },
        _ => Ty::Untyped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(root: Ty, keys: &[&str]) -> Ty {
        keys.iter().fold(root, |ty, key| match *key {
            "[]" => ty.items(),
            k => ty.field(k).unwrap_or(Ty::Untyped),
        })
    }

    #[test]
    fn types_follow_upstream_schemaconv() {
        let Some(deploy) = Ty::of_kind("apps", "v1", "Deployment") else {
            panic!("no Deployment schema");
        };
        let containers = path(deploy, &["spec", "template", "spec", "containers"]);
        assert!(
            matches!(containers, Ty::List { rel: ListRel::Keyed(k), .. } if k == [Value::from("name")])
        );
        let ports = path(containers, &["[]", "ports"]);
        assert!(
            matches!(ports, Ty::List { rel: ListRel::Keyed(k), .. } if k.len() == 2),
            "{ports:?}"
        );
        assert_eq!(
            ports.items().key_default("protocol"),
            Some(Value::from("TCP"))
        );
        let args = path(containers, &["[]", "args"]);
        assert!(matches!(
            args,
            Ty::List {
                rel: ListRel::Atomic,
                ..
            }
        ));
        let labels = path(deploy, &["metadata", "labels"]);
        assert!(matches!(labels, Ty::Map { atomic: false, .. }));
        let selector = path(deploy, &["spec", "selector"]);
        assert!(matches!(selector, Ty::Struct { atomic: true, .. }));
        let finalizers = path(deploy, &["metadata", "finalizers"]);
        assert!(matches!(
            finalizers,
            Ty::List {
                rel: ListRel::Set,
                ..
            }
        ));
        let surge = path(deploy, &["spec", "strategy", "rollingUpdate", "maxSurge"]);
        assert!(matches!(surge, Ty::Untyped));
        assert!(matches!(path(deploy, &["spec", "replicas"]), Ty::Scalar));
        assert!(path(deploy, &["spec"]).field("nosuch").is_none());
        let Some(pv) = Ty::of_kind("", "v1", "PersistentVolume") else {
            panic!("no PersistentVolume schema");
        };
        assert!(matches!(
            path(pv, &["spec", "claimRef"]),
            Ty::Struct { atomic: false, .. }
        ));
        let Some(svc) = Ty::of_kind("", "v1", "Service") else {
            panic!("no Service schema");
        };
        assert!(matches!(
            path(svc, &["spec", "selector"]),
            Ty::Map { atomic: true, .. }
        ));
    }
}
