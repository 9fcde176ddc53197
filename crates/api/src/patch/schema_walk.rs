//! The typed side of strategic merge patch: which k8s-openapi type serves each kind, and a
//! walk over its schemars definitions that answers, at each key, the field's patch strategy
//! and merge key (from [`super::meta`]) and the schema beneath it.
//!
//! Upstream looks these up on the Go structs (`PatchMetaFromStruct`); the OpenAPI
//! definitions carry the same shape. Where the schema says nothing (fields it does not
//! know, free-form JSON such as `RawExtension`), the walk answers "no strategy", which
//! makes the merge behave like a JSON merge patch.

use std::sync::OnceLock;

use k8s_openapi::api::{
    apps, authentication, authorization, autoscaling, batch, certificates, coordination, core,
    discovery, events, networking, policy, rbac, scheduling, storage,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use schemars::JsonSchema;
use serde_json::{Map, Value};

use super::meta::{field_meta, FieldMeta};
use super::strategic::StrategicPatchError;

const REF_PREFIX: &str = "#/components/schemas/";

/// What strategic merge needs from a schema: the metadata and sub-schema of a field whose
/// value is an object (`LookupPatchMetadataForStruct`) or a list, where the sub-schema is the
/// items' (`LookupPatchMetadataForSlice`).
pub(crate) trait PatchSchema: Sized + Copy {
    fn lookup_struct(&self, key: &str) -> Result<(Self, FieldMeta), StrategicPatchError>;
    fn lookup_slice(&self, key: &str) -> Result<(Self, FieldMeta), StrategicPatchError>;
    /// The Go kind of the type, as upstream's messages name it (`struct`, `map`).
    fn name(&self) -> &'static str;
}

/// The OpenAPI definitions of every served kind, and which definition each kind is.
pub(crate) struct Definitions {
    pub(crate) schemas: Map<String, Value>,
    kinds: Vec<(&'static str, &'static str, &'static str, String)>,
}

impl Definitions {
    /// The definition name of a kind that strategic merge patch serves.
    pub(crate) fn kind(&self, group: &str, version: &str, kind: &str) -> Option<&str> {
        self.kinds
            .iter()
            .find(|(g, v, k, _)| *g == group && *v == version && *k == kind)
            .map(|(_, _, _, name)| name.as_str())
    }

    /// Every served kind with its definition name.
    #[cfg(test)]
    pub(crate) fn kinds(
        &self,
    ) -> impl Iterator<Item = (&'static str, &'static str, &'static str, &str)> {
        self.kinds
            .iter()
            .map(|(g, v, k, n)| (*g, *v, *k, n.as_str()))
    }
}

fn register<T: JsonSchema>(generator: &mut SchemaGenerator) -> String {
    generator.subschema_for::<T>();
    T::schema_name().into_owned()
}

macro_rules! kinds {
    ($generator:ident; $(($group:literal, $version:literal, $kind:literal, $ty:ty)),* $(,)?) => {
        vec![$(($group, $version, $kind, register::<$ty>(&mut $generator))),*]
    };
}

/// The schemars definitions of the served kinds (and `autoscaling/v1 Scale`, which the
/// `scale` subresources patch), generated once.
pub(crate) fn definitions() -> &'static Definitions {
    static DEFINITIONS: OnceLock<Definitions> = OnceLock::new();
    DEFINITIONS.get_or_init(|| {
        let mut g = SchemaSettings::openapi3().into_generator();
        let kinds = kinds![g;
            ("", "v1", "ConfigMap", core::v1::ConfigMap),
            ("", "v1", "Endpoints", core::v1::Endpoints),
            ("", "v1", "Event", core::v1::Event),
            ("", "v1", "LimitRange", core::v1::LimitRange),
            ("", "v1", "Namespace", core::v1::Namespace),
            ("", "v1", "Node", core::v1::Node),
            ("", "v1", "PersistentVolumeClaim", core::v1::PersistentVolumeClaim),
            ("", "v1", "PersistentVolume", core::v1::PersistentVolume),
            ("", "v1", "Pod", core::v1::Pod),
            ("", "v1", "PodTemplate", core::v1::PodTemplate),
            ("", "v1", "ReplicationController", core::v1::ReplicationController),
            ("", "v1", "ResourceQuota", core::v1::ResourceQuota),
            ("", "v1", "Secret", core::v1::Secret),
            ("", "v1", "ServiceAccount", core::v1::ServiceAccount),
            ("", "v1", "Service", core::v1::Service),
            ("apps", "v1", "ControllerRevision", apps::v1::ControllerRevision),
            ("apps", "v1", "DaemonSet", apps::v1::DaemonSet),
            ("apps", "v1", "Deployment", apps::v1::Deployment),
            ("apps", "v1", "ReplicaSet", apps::v1::ReplicaSet),
            ("apps", "v1", "StatefulSet", apps::v1::StatefulSet),
            ("autoscaling", "v2", "HorizontalPodAutoscaler", autoscaling::v2::HorizontalPodAutoscaler),
            ("autoscaling", "v1", "HorizontalPodAutoscaler", autoscaling::v1::HorizontalPodAutoscaler),
            ("autoscaling", "v1", "Scale", autoscaling::v1::Scale),
            ("batch", "v1", "CronJob", batch::v1::CronJob),
            ("batch", "v1", "Job", batch::v1::Job),
            ("policy", "v1", "PodDisruptionBudget", policy::v1::PodDisruptionBudget),
            ("networking.k8s.io", "v1", "IngressClass", networking::v1::IngressClass),
            ("networking.k8s.io", "v1", "Ingress", networking::v1::Ingress),
            ("networking.k8s.io", "v1", "NetworkPolicy", networking::v1::NetworkPolicy),
            ("discovery.k8s.io", "v1", "EndpointSlice", discovery::v1::EndpointSlice),
            ("coordination.k8s.io", "v1", "Lease", coordination::v1::Lease),
            ("events.k8s.io", "v1", "Event", events::v1::Event),
            ("scheduling.k8s.io", "v1", "PriorityClass", scheduling::v1::PriorityClass),
            ("storage.k8s.io", "v1", "CSIDriver", storage::v1::CSIDriver),
            ("storage.k8s.io", "v1", "CSINode", storage::v1::CSINode),
            ("storage.k8s.io", "v1", "StorageClass", storage::v1::StorageClass),
            ("storage.k8s.io", "v1", "VolumeAttachment", storage::v1::VolumeAttachment),
            ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", rbac::v1::ClusterRoleBinding),
            ("rbac.authorization.k8s.io", "v1", "ClusterRole", rbac::v1::ClusterRole),
            ("rbac.authorization.k8s.io", "v1", "RoleBinding", rbac::v1::RoleBinding),
            ("rbac.authorization.k8s.io", "v1", "Role", rbac::v1::Role),
            ("authentication.k8s.io", "v1", "SelfSubjectReview", authentication::v1::SelfSubjectReview),
            ("authentication.k8s.io", "v1", "TokenReview", authentication::v1::TokenReview),
            ("authorization.k8s.io", "v1", "LocalSubjectAccessReview",
             authorization::v1::LocalSubjectAccessReview),
            ("authorization.k8s.io", "v1", "SelfSubjectAccessReview",
             authorization::v1::SelfSubjectAccessReview),
            ("authorization.k8s.io", "v1", "SelfSubjectRulesReview",
             authorization::v1::SelfSubjectRulesReview),
            ("authorization.k8s.io", "v1", "SubjectAccessReview", authorization::v1::SubjectAccessReview),
            ("certificates.k8s.io", "v1", "CertificateSigningRequest",
             certificates::v1::CertificateSigningRequest),
            ("apiextensions.k8s.io", "v1", "CustomResourceDefinition",
             apiextensions::v1::CustomResourceDefinition),
        ];
        let schemas = g.take_definitions(false);
        Definitions { schemas, kinds }
    })
}

/// A position in a kind's schema.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Node {
    /// A named definition with properties.
    Struct(&'static str, &'static Map<String, Value>),
    /// An object with `additionalProperties`: upstream's Go maps.
    Map,
    /// A list; the sub-schema of its items.
    Array(&'static Value),
    /// A string, number or boolean, with its Go kind.
    Scalar(&'static str),
    /// Free-form or unknown: merged without any strategy.
    Any,
}

impl Node {
    /// The root of a kind's schema.
    pub(crate) fn definition(name: &str) -> Node {
        let defs = definitions();
        match defs.schemas.get_key_value(name) {
            Some((name, schema)) => classify_definition(name, schema),
            None => Node::Any,
        }
    }

    fn field(
        name: &'static str,
        props: &'static Map<String, Value>,
        key: &str,
    ) -> (Node, FieldMeta) {
        let meta = field_meta(name, key).unwrap_or_default();
        match props.get(key) {
            Some(schema) => (classify(schema), meta),
            None => (Node::Any, meta),
        }
    }
}

fn reference(schema: &Value) -> Option<&str> {
    let direct = schema.get("$ref").and_then(Value::as_str);
    let wrapped = || {
        schema
            .get("allOf")?
            .get(0)?
            .get("$ref")
            .and_then(Value::as_str)
    };
    direct.or_else(wrapped)?.strip_prefix(REF_PREFIX)
}

fn classify(schema: &'static Value) -> Node {
    match reference(schema) {
        Some(name) => Node::definition(name),
        None => classify_inline(schema),
    }
}

fn classify_definition(name: &'static str, schema: &'static Value) -> Node {
    match schema.get("properties").and_then(Value::as_object) {
        Some(props) => Node::Struct(name, props),
        None => classify_inline(schema),
    }
}

fn classify_inline(schema: &'static Value) -> Node {
    match schema.get("type").and_then(Value::as_str) {
        Some("array") => schema.get("items").map_or(Node::Any, Node::Array),
        Some("object")
            if schema
                .get("additionalProperties")
                .is_some_and(Value::is_object) =>
        {
            Node::Map
        }
        Some("object") => match schema.get("properties").and_then(Value::as_object) {
            Some(props) => Node::Struct("", props),
            None => Node::Any,
        },
        Some("string") => Node::Scalar("string"),
        Some("integer") => Node::Scalar("int64"),
        Some("number") => Node::Scalar("float64"),
        Some("boolean") => Node::Scalar("bool"),
        _ => Node::Any,
    }
}

impl PatchSchema for Node {
    fn lookup_struct(&self, key: &str) -> Result<(Node, FieldMeta), StrategicPatchError> {
        match *self {
            Node::Struct(name, props) => Ok(Node::field(name, props, key)),
            Node::Any => Ok((Node::Any, FieldMeta::default())),
            other => Err(StrategicPatchError::NotAStruct(other.name())),
        }
    }

    fn lookup_slice(&self, key: &str) -> Result<(Node, FieldMeta), StrategicPatchError> {
        let (field, meta) = self.lookup_struct(key)?;
        match field {
            Node::Array(items) => Ok((classify(items), meta)),
            other => Ok((other, meta)),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Node::Struct(..) => "struct",
            Node::Map => "map",
            Node::Array(_) => "slice",
            Node::Scalar(kind) => kind,
            Node::Any => "interface",
        }
    }
}

/// A schema shaped like upstream's `MergeItem` test struct, to run the merge engine's
/// cases without a real kind.
#[cfg(test)]
pub(crate) mod fake {
    use super::PatchSchema;
    use crate::patch::meta::FieldMeta;
    use crate::patch::strategic::StrategicPatchError;

    #[derive(Debug, Clone, Copy)]
    pub(crate) enum Fake {
        MergeItem,
        RetainKeysItem,
        MergeItemList,
        IntList,
        Map,
        Scalar,
        Any,
    }

    fn meta(strategy: Option<&'static str>, key: Option<&'static str>) -> FieldMeta {
        FieldMeta {
            patch_strategy: strategy,
            patch_merge_key: key,
            ..FieldMeta::default()
        }
    }

    impl PatchSchema for Fake {
        fn lookup_struct(&self, key: &str) -> Result<(Fake, FieldMeta), StrategicPatchError> {
            let merge = Some("merge");
            let (ty, m) = match (self, key) {
                (Fake::MergeItem | Fake::RetainKeysItem, "name" | "value" | "other") => {
                    (Fake::Scalar, meta(None, None))
                }
                (Fake::MergeItem | Fake::RetainKeysItem, "mergingList") => {
                    (Fake::MergeItemList, meta(merge, Some("name")))
                }
                (Fake::MergeItem | Fake::RetainKeysItem, "nonMergingList") => {
                    (Fake::MergeItemList, meta(None, None))
                }
                (Fake::MergeItem | Fake::RetainKeysItem, "mergingIntList") => {
                    (Fake::IntList, meta(merge, None))
                }
                (Fake::MergeItem, "nonMergingIntList") => (Fake::IntList, meta(None, None)),
                (Fake::MergeItem, "mergeItemPtr") => (Fake::MergeItem, meta(merge, Some("name"))),
                (Fake::MergeItem | Fake::RetainKeysItem, "simpleMap") => {
                    (Fake::Map, meta(None, None))
                }
                (Fake::MergeItem, "replacingItem") => (Fake::Any, meta(Some("replace"), None)),
                (Fake::MergeItem, "retainKeysMap") => {
                    (Fake::RetainKeysItem, meta(Some("retainKeys"), None))
                }
                (Fake::MergeItem, "retainKeysMergingList") => (
                    Fake::MergeItemList,
                    meta(Some("merge,retainKeys"), Some("name")),
                ),
                (Fake::MergeItem | Fake::RetainKeysItem | Fake::Any, _) => {
                    (Fake::Any, meta(None, None))
                }
                (other, _) => return Err(StrategicPatchError::NotAStruct(other.name())),
            };
            Ok((ty, m))
        }

        fn lookup_slice(&self, key: &str) -> Result<(Fake, FieldMeta), StrategicPatchError> {
            let (ty, m) = self.lookup_struct(key)?;
            let item = match ty {
                Fake::MergeItemList => Fake::MergeItem,
                Fake::IntList => Fake::Scalar,
                other => other,
            };
            Ok((item, m))
        }

        fn name(&self) -> &'static str {
            match self {
                Fake::MergeItem | Fake::RetainKeysItem => "struct",
                Fake::MergeItemList | Fake::IntList => "slice",
                Fake::Map => "map",
                Fake::Scalar => "string",
                Fake::Any => "interface",
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_patchable_catalogue_kind_has_a_definition() {
        let defs = definitions();
        for r in crate::catalogue::RESOURCES {
            let name = defs.kind(r.group, r.version, r.kind);
            assert!(name.is_some(), "{}/{} {}", r.group, r.version, r.kind);
            assert!(defs.schemas.contains_key(name.unwrap_or_default()));
        }
    }

    #[test]
    fn every_kind_root_is_a_struct_with_metadata() {
        for (group, version, kind, name) in definitions().kinds() {
            let root = Node::definition(name);
            assert!(matches!(root, Node::Struct(..)), "{group}/{version} {kind}");
            let (metadata, _) = root.lookup_struct("metadata").unwrap();
            assert!(matches!(
                metadata,
                Node::Struct("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", _)
            ));
        }
    }

    #[test]
    fn walk_reaches_container_ports_through_a_deployment() {
        let root = Node::definition("io.k8s.api.apps.v1.Deployment");
        let (spec, _) = root.lookup_struct("spec").unwrap();
        let (template, _) = spec.lookup_struct("template").unwrap();
        let (pod_spec, _) = template.lookup_struct("spec").unwrap();
        let (container, meta) = pod_spec.lookup_slice("containers").unwrap();
        assert_eq!(meta.patch_merge_key, Some("name"));
        let (_, ports) = container.lookup_slice("ports").unwrap();
        assert_eq!(ports.patch_merge_key, Some("containerPort"));
        let (labels, _) = root
            .lookup_struct("metadata")
            .and_then(|(m, _)| m.lookup_struct("labels"))
            .unwrap();
        assert_eq!(labels.name(), "map");
        assert_eq!(
            labels.lookup_struct("x").unwrap_err().to_string(),
            "merging an object in json but data type is not struct, instead is: map"
        );
    }
}
