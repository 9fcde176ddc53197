//! Which k8s-openapi Rust type carries the schema of each kind rkube knows: the served
//! resources, the kinds of their subresources (Scale, Eviction, Binding, TokenRequest) and the
//! meta kinds every API server serves (Status, DeleteOptions, discovery documents).
//!
//! Generating a type's schema through one shared `SchemaGenerator` also records every
//! definition it references, so the registry ends up with the transitive closure.

use k8s_openapi::api::{
    apps, authentication, authorization, autoscaling, batch, certificates, coordination, core,
    discovery, events, networking, policy, rbac, scheduling, storage,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions;
use k8s_openapi::apimachinery::pkg::apis::meta;
use k8s_openapi::schemars::{JsonSchema, SchemaGenerator};

/// A kind and the OpenAPI definition that describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindDef {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    /// The definition name, e.g. `io.k8s.api.core.v1.Pod`.
    pub definition: String,
}

fn add<T: JsonSchema>(
    generator: &mut SchemaGenerator,
    group: &'static str,
    version: &'static str,
    kind: &'static str,
) -> KindDef {
    // Called for the side effect: the generator records T and everything it references.
    let _ = generator.subschema_for::<T>();
    KindDef {
        group,
        version,
        kind,
        definition: T::schema_name().into_owned(),
    }
}

/// Generates the schemas of every kind with a Rust type, returning each kind's definition.
/// The order is the catalogue's, then subresource kinds, then meta kinds.
pub fn generate(g: &mut SchemaGenerator) -> Vec<KindDef> {
    vec![
        add::<core::v1::ConfigMap>(g, "", "v1", "ConfigMap"),
        add::<core::v1::Endpoints>(g, "", "v1", "Endpoints"),
        add::<core::v1::Event>(g, "", "v1", "Event"),
        add::<core::v1::LimitRange>(g, "", "v1", "LimitRange"),
        add::<core::v1::Namespace>(g, "", "v1", "Namespace"),
        add::<core::v1::Node>(g, "", "v1", "Node"),
        add::<core::v1::PersistentVolumeClaim>(g, "", "v1", "PersistentVolumeClaim"),
        add::<core::v1::PersistentVolume>(g, "", "v1", "PersistentVolume"),
        add::<core::v1::Pod>(g, "", "v1", "Pod"),
        add::<core::v1::PodTemplate>(g, "", "v1", "PodTemplate"),
        add::<core::v1::ReplicationController>(g, "", "v1", "ReplicationController"),
        add::<core::v1::ResourceQuota>(g, "", "v1", "ResourceQuota"),
        add::<core::v1::Secret>(g, "", "v1", "Secret"),
        add::<core::v1::ServiceAccount>(g, "", "v1", "ServiceAccount"),
        add::<core::v1::Service>(g, "", "v1", "Service"),
        add::<apps::v1::ControllerRevision>(g, "apps", "v1", "ControllerRevision"),
        add::<apps::v1::DaemonSet>(g, "apps", "v1", "DaemonSet"),
        add::<apps::v1::Deployment>(g, "apps", "v1", "Deployment"),
        add::<apps::v1::ReplicaSet>(g, "apps", "v1", "ReplicaSet"),
        add::<apps::v1::StatefulSet>(g, "apps", "v1", "StatefulSet"),
        add::<autoscaling::v2::HorizontalPodAutoscaler>(
            g,
            "autoscaling",
            "v2",
            "HorizontalPodAutoscaler",
        ),
        add::<autoscaling::v1::HorizontalPodAutoscaler>(
            g,
            "autoscaling",
            "v1",
            "HorizontalPodAutoscaler",
        ),
        add::<batch::v1::CronJob>(g, "batch", "v1", "CronJob"),
        add::<batch::v1::Job>(g, "batch", "v1", "Job"),
        add::<policy::v1::PodDisruptionBudget>(g, "policy", "v1", "PodDisruptionBudget"),
        add::<networking::v1::IngressClass>(g, "networking.k8s.io", "v1", "IngressClass"),
        add::<networking::v1::Ingress>(g, "networking.k8s.io", "v1", "Ingress"),
        add::<networking::v1::NetworkPolicy>(g, "networking.k8s.io", "v1", "NetworkPolicy"),
        add::<discovery::v1::EndpointSlice>(g, "discovery.k8s.io", "v1", "EndpointSlice"),
        add::<coordination::v1::Lease>(g, "coordination.k8s.io", "v1", "Lease"),
        add::<events::v1::Event>(g, "events.k8s.io", "v1", "Event"),
        add::<scheduling::v1::PriorityClass>(g, "scheduling.k8s.io", "v1", "PriorityClass"),
        add::<storage::v1::CSIDriver>(g, "storage.k8s.io", "v1", "CSIDriver"),
        add::<storage::v1::CSINode>(g, "storage.k8s.io", "v1", "CSINode"),
        add::<storage::v1::StorageClass>(g, "storage.k8s.io", "v1", "StorageClass"),
        add::<storage::v1::VolumeAttachment>(g, "storage.k8s.io", "v1", "VolumeAttachment"),
        add::<rbac::v1::ClusterRoleBinding>(
            g,
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRoleBinding",
        ),
        add::<rbac::v1::ClusterRole>(g, "rbac.authorization.k8s.io", "v1", "ClusterRole"),
        add::<rbac::v1::RoleBinding>(g, "rbac.authorization.k8s.io", "v1", "RoleBinding"),
        add::<rbac::v1::Role>(g, "rbac.authorization.k8s.io", "v1", "Role"),
        add::<authentication::v1::SelfSubjectReview>(
            g,
            "authentication.k8s.io",
            "v1",
            "SelfSubjectReview",
        ),
        add::<authentication::v1::TokenReview>(g, "authentication.k8s.io", "v1", "TokenReview"),
        add::<authorization::v1::LocalSubjectAccessReview>(
            g,
            "authorization.k8s.io",
            "v1",
            "LocalSubjectAccessReview",
        ),
        add::<authorization::v1::SelfSubjectAccessReview>(
            g,
            "authorization.k8s.io",
            "v1",
            "SelfSubjectAccessReview",
        ),
        add::<authorization::v1::SelfSubjectRulesReview>(
            g,
            "authorization.k8s.io",
            "v1",
            "SelfSubjectRulesReview",
        ),
        add::<authorization::v1::SubjectAccessReview>(
            g,
            "authorization.k8s.io",
            "v1",
            "SubjectAccessReview",
        ),
        add::<certificates::v1::CertificateSigningRequest>(
            g,
            "certificates.k8s.io",
            "v1",
            "CertificateSigningRequest",
        ),
        add::<apiextensions::v1::CustomResourceDefinition>(
            g,
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
        ),
        // Subresource kinds.
        add::<autoscaling::v1::Scale>(g, "autoscaling", "v1", "Scale"),
        add::<policy::v1::Eviction>(g, "policy", "v1", "Eviction"),
        add::<core::v1::Binding>(g, "", "v1", "Binding"),
        add::<authentication::v1::TokenRequest>(g, "authentication.k8s.io", "v1", "TokenRequest"),
        // Meta kinds. DeleteOptions and WatchEvent are served in every group-version; the
        // registry adds those group-versions.
        add::<meta::v1::Status>(g, "", "v1", "Status"),
        add::<meta::v1::APIResourceList>(g, "", "v1", "APIResourceList"),
        add::<meta::v1::APIGroupList>(g, "", "v1", "APIGroupList"),
        add::<meta::v1::APIGroup>(g, "", "v1", "APIGroup"),
        add::<meta::v1::APIVersions>(g, "", "v1", "APIVersions"),
        add::<meta::v1::DeleteOptions>(g, "", "v1", "DeleteOptions"),
        // The type parameter only matters to Rust: the schema's `object` is a RawExtension.
        add::<meta::v1::WatchEvent<core::v1::Pod>>(g, "", "v1", "WatchEvent"),
    ]
}

/// Definitions every document needs although no kind above references them.
pub fn generate_extra(g: &mut SchemaGenerator) {
    let _ = g.subschema_for::<meta::v1::Patch>();
    let _ = g.subschema_for::<meta::v1::ListMeta>();
}

/// Kinds that are served in every group-version (upstream lists one GVK per group-version).
pub const EVERY_GROUP_VERSION: &[&str] = &["DeleteOptions", "WatchEvent"];
