//! The resource catalogue: every built-in resource rkube serves, with its group, version,
//! kind, scope, names, categories, verbs and subresources, as upstream's discovery
//! documents give them.
//!
//! `storage` names the store prefix a resource's objects live under. Two served versions of
//! one resource (autoscaling/v1 and v2 HPAs, core/v1 and events.k8s.io/v1 events) share it.

/// The verbs most resources support.
pub const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
/// Namespaces cannot be deleted as a collection.
const NAMESPACE_VERBS: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];
const STATUS_VERBS: &[&str] = &["get", "patch", "update"];
/// Reviews are created and answered, never stored.
const CREATE_ONLY: &[&str] = &["create"];
/// The `storage` of resources that are never stored.
pub const VIRTUAL: &str = "";

/// A subresource such as `pods/status` or `deployments/scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subresource {
    pub name: &'static str,
    /// The group, version and kind of the subresource's object (`autoscaling/v1 Scale`);
    /// an empty group and version mean the parent's.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub verbs: &'static [&'static str],
}

/// One served resource in one group-version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceInfo {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub verbs: &'static [&'static str],
    pub subresources: &'static [Subresource],
    /// The store prefix, shared by every version of the same resource.
    pub storage: &'static str,
}

impl ResourceInfo {
    /// `v1` for the core group, `apps/v1` otherwise.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn subresource(&self, name: &str) -> Option<&'static Subresource> {
        self.subresources.iter().find(|s| s.name == name)
    }

    /// Whether objects of this resource are stored (reviews are answered and forgotten).
    pub fn is_stored(&self) -> bool {
        !self.storage.is_empty()
    }

    pub fn has_verb(&self, verb: &str) -> bool {
        self.verbs.contains(&verb)
    }
}

const fn sub(
    name: &'static str,
    kind: &'static str,
    verbs: &'static [&'static str],
) -> Subresource {
    Subresource {
        name,
        group: "",
        version: "",
        kind,
        verbs,
    }
}

const fn status(kind: &'static str) -> Subresource {
    sub("status", kind, STATUS_VERBS)
}

const SCALE: Subresource = Subresource {
    name: "scale",
    group: "autoscaling",
    version: "v1",
    kind: "Scale",
    verbs: STATUS_VERBS,
};

const ALL: &[&str] = &["all"];
const NONE: &[&str] = &[];

macro_rules! res {
    ($group:expr, $version:expr, $kind:expr, $plural:expr, $singular:expr, $namespaced:expr,
     short: $short:expr, cat: $cat:expr, subs: $subs:expr) => {
        res!($group, $version, $kind, $plural, $singular, $namespaced,
             short: $short, cat: $cat, subs: $subs, verbs: ALL_VERBS, storage: $plural)
    };
    ($group:expr, $version:expr, $kind:expr, $plural:expr, $singular:expr, $namespaced:expr,
     short: $short:expr, cat: $cat:expr, subs: $subs:expr, verbs: $verbs:expr, storage: $storage:expr) => {
        ResourceInfo {
            group: $group,
            version: $version,
            kind: $kind,
            plural: $plural,
            singular: $singular,
            namespaced: $namespaced,
            short_names: $short,
            categories: $cat,
            verbs: $verbs,
            subresources: $subs,
            storage: $storage,
        }
    };
}

const POD_SUBS: &[Subresource] = &[
    sub("attach", "PodAttachOptions", &["create", "get"]),
    Subresource {
        name: "binding",
        group: "",
        version: "",
        kind: "Binding",
        verbs: &["create"],
    },
    sub("ephemeralcontainers", "Pod", STATUS_VERBS),
    Subresource {
        name: "eviction",
        group: "policy",
        version: "v1",
        kind: "Eviction",
        verbs: &["create"],
    },
    sub("exec", "PodExecOptions", &["create", "get"]),
    sub("log", "Pod", &["get"]),
    sub("portforward", "PodPortForwardOptions", &["create", "get"]),
    sub(
        "proxy",
        "PodProxyOptions",
        &["create", "delete", "get", "patch", "update"],
    ),
    sub("resize", "Pod", STATUS_VERBS),
    status("Pod"),
];

/// Every resource rkube serves, grouped by group-version in discovery order.
pub static RESOURCES: &[ResourceInfo] = &[
    // core/v1
    res!("", "v1", "ConfigMap", "configmaps", "configmap", true, short: &["cm"], cat: NONE, subs: &[]),
    res!("", "v1", "Endpoints", "endpoints", "endpoints", true, short: &["ep"], cat: NONE, subs: &[]),
    res!("", "v1", "Event", "events", "event", true, short: &["ev"], cat: NONE, subs: &[]),
    res!("", "v1", "LimitRange", "limitranges", "limitrange", true, short: &["limits"], cat: NONE, subs: &[]),
    res!("", "v1", "Namespace", "namespaces", "namespace", false, short: &["ns"], cat: NONE,
         subs: &[sub("finalize", "Namespace", &["update"]), status("Namespace")],
         verbs: NAMESPACE_VERBS, storage: "namespaces"),
    res!("", "v1", "Node", "nodes", "node", false, short: &["no"], cat: NONE,
         subs: &[sub("proxy", "NodeProxyOptions", &["create", "delete", "get", "patch", "update"]), status("Node")]),
    res!("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", "persistentvolumeclaim", true,
         short: &["pvc"], cat: NONE, subs: &[status("PersistentVolumeClaim")]),
    res!("", "v1", "PersistentVolume", "persistentvolumes", "persistentvolume", false,
         short: &["pv"], cat: NONE, subs: &[status("PersistentVolume")]),
    res!("", "v1", "Pod", "pods", "pod", true, short: &["po"], cat: ALL, subs: POD_SUBS),
    res!("", "v1", "PodTemplate", "podtemplates", "podtemplate", true, short: NONE, cat: NONE, subs: &[]),
    res!("", "v1", "ReplicationController", "replicationcontrollers", "replicationcontroller", true,
         short: &["rc"], cat: ALL, subs: &[SCALE, status("ReplicationController")]),
    res!("", "v1", "ResourceQuota", "resourcequotas", "resourcequota", true, short: &["quota"], cat: NONE,
         subs: &[status("ResourceQuota")]),
    res!("", "v1", "Secret", "secrets", "secret", true, short: NONE, cat: NONE, subs: &[]),
    res!("", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", true, short: &["sa"], cat: NONE,
         subs: &[Subresource { name: "token", group: "authentication.k8s.io", version: "v1",
                               kind: "TokenRequest", verbs: &["create"] }]),
    res!("", "v1", "Service", "services", "service", true, short: &["svc"], cat: ALL,
         subs: &[sub("proxy", "ServiceProxyOptions", &["create", "delete", "get", "patch", "update"]), status("Service")]),
    // apps/v1
    res!("apps", "v1", "ControllerRevision", "controllerrevisions", "controllerrevision", true,
         short: NONE, cat: NONE, subs: &[]),
    res!("apps", "v1", "DaemonSet", "daemonsets", "daemonset", true, short: &["ds"], cat: ALL,
         subs: &[status("DaemonSet")]),
    res!("apps", "v1", "Deployment", "deployments", "deployment", true, short: &["deploy"], cat: ALL,
         subs: &[SCALE, status("Deployment")]),
    res!("apps", "v1", "ReplicaSet", "replicasets", "replicaset", true, short: &["rs"], cat: ALL,
         subs: &[SCALE, status("ReplicaSet")]),
    res!("apps", "v1", "StatefulSet", "statefulsets", "statefulset", true, short: &["sts"], cat: ALL,
         subs: &[SCALE, status("StatefulSet")]),
    // autoscaling
    res!("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", "horizontalpodautoscaler",
         true, short: &["hpa"], cat: ALL, subs: &[status("HorizontalPodAutoscaler")]),
    res!("autoscaling", "v1", "HorizontalPodAutoscaler", "horizontalpodautoscalers", "horizontalpodautoscaler",
         true, short: &["hpa"], cat: ALL, subs: &[status("HorizontalPodAutoscaler")]),
    // batch/v1
    res!("batch", "v1", "CronJob", "cronjobs", "cronjob", true, short: &["cj"], cat: ALL,
         subs: &[status("CronJob")]),
    res!("batch", "v1", "Job", "jobs", "job", true, short: NONE, cat: ALL, subs: &[status("Job")]),
    // policy/v1
    res!("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", "poddisruptionbudget", true,
         short: &["pdb"], cat: NONE, subs: &[status("PodDisruptionBudget")]),
    // networking.k8s.io/v1
    res!("networking.k8s.io", "v1", "IngressClass", "ingressclasses", "ingressclass", false,
         short: NONE, cat: NONE, subs: &[]),
    res!("networking.k8s.io", "v1", "Ingress", "ingresses", "ingress", true, short: &["ing"], cat: NONE,
         subs: &[status("Ingress")]),
    res!("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", "networkpolicy", true,
         short: &["netpol"], cat: NONE, subs: &[]),
    // discovery.k8s.io/v1
    res!("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", "endpointslice", true,
         short: NONE, cat: NONE, subs: &[]),
    // coordination.k8s.io/v1
    res!("coordination.k8s.io", "v1", "Lease", "leases", "lease", true, short: NONE, cat: NONE, subs: &[]),
    // events.k8s.io/v1: the same objects as core/v1 events
    res!("events.k8s.io", "v1", "Event", "events", "event", true, short: &["ev"], cat: NONE, subs: &[]),
    // scheduling.k8s.io/v1
    res!("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", "priorityclass", false,
         short: &["pc"], cat: NONE, subs: &[]),
    // storage.k8s.io/v1
    res!("storage.k8s.io", "v1", "CSIDriver", "csidrivers", "csidriver", false, short: NONE, cat: NONE, subs: &[]),
    res!("storage.k8s.io", "v1", "CSINode", "csinodes", "csinode", false, short: NONE, cat: NONE, subs: &[]),
    res!("storage.k8s.io", "v1", "StorageClass", "storageclasses", "storageclass", false,
         short: &["sc"], cat: NONE, subs: &[]),
    res!("storage.k8s.io", "v1", "VolumeAttachment", "volumeattachments", "volumeattachment", false,
         short: NONE, cat: NONE, subs: &[status("VolumeAttachment")]),
    // rbac.authorization.k8s.io/v1
    res!("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", "clusterrolebinding",
         false, short: NONE, cat: NONE, subs: &[]),
    res!("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", "clusterrole", false,
         short: NONE, cat: NONE, subs: &[]),
    res!("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", "rolebinding", true,
         short: NONE, cat: NONE, subs: &[]),
    res!("rbac.authorization.k8s.io", "v1", "Role", "roles", "role", true, short: NONE, cat: NONE, subs: &[]),
    // authentication.k8s.io/v1 and authorization.k8s.io/v1: create-only reviews, never stored
    res!("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews", "selfsubjectreview",
         false, short: NONE, cat: NONE, subs: &[], verbs: CREATE_ONLY, storage: VIRTUAL),
    res!("authentication.k8s.io", "v1", "TokenReview", "tokenreviews", "tokenreview", false,
         short: NONE, cat: NONE, subs: &[], verbs: CREATE_ONLY, storage: VIRTUAL),
    res!("authorization.k8s.io", "v1", "LocalSubjectAccessReview", "localsubjectaccessreviews",
         "localsubjectaccessreview", true, short: NONE, cat: NONE, subs: &[], verbs: CREATE_ONLY,
         storage: VIRTUAL),
    res!("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews",
         "selfsubjectaccessreview", false, short: NONE, cat: NONE, subs: &[], verbs: CREATE_ONLY,
         storage: VIRTUAL),
    res!("authorization.k8s.io", "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews",
         "selfsubjectrulesreview", false, short: NONE, cat: NONE, subs: &[], verbs: CREATE_ONLY,
         storage: VIRTUAL),
    res!("authorization.k8s.io", "v1", "SubjectAccessReview", "subjectaccessreviews",
         "subjectaccessreview", false, short: NONE, cat: NONE, subs: &[], verbs: CREATE_ONLY,
         storage: VIRTUAL),
    // certificates.k8s.io/v1
    res!("certificates.k8s.io", "v1", "CertificateSigningRequest", "certificatesigningrequests",
         "certificatesigningrequest", false, short: &["csr"], cat: NONE,
         subs: &[sub("approval", "CertificateSigningRequest", STATUS_VERBS),
                 status("CertificateSigningRequest")]),
    // apiextensions.k8s.io/v1
    res!("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions",
         "customresourcedefinition", false, short: &["crd", "crds"], cat: &["api-extensions"],
         subs: &[status("CustomResourceDefinition")]),
];

/// A served group and its versions, preferred first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    pub name: &'static str,
    pub versions: Vec<&'static str>,
}

/// The named groups (not the core group) in discovery order, each with its versions,
/// preferred version first.
pub fn groups() -> Vec<GroupInfo> {
    let mut out: Vec<GroupInfo> = Vec::new();
    for r in RESOURCES.iter().filter(|r| !r.group.is_empty()) {
        match out.iter_mut().find(|g| g.name == r.group) {
            Some(g) => {
                if !g.versions.contains(&r.version) {
                    g.versions.push(r.version);
                }
            }
            None => out.push(GroupInfo {
                name: r.group,
                versions: vec![r.version],
            }),
        }
    }
    out
}

/// The resources of one group-version.
pub fn resources_in<'a>(
    group: &'a str,
    version: &'a str,
) -> impl Iterator<Item = &'static ResourceInfo> + 'a {
    RESOURCES
        .iter()
        .filter(move |r| r.group == group && r.version == version)
}

/// Looks a resource up by its URL coordinates.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceInfo> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Looks a resource up by group, version and kind.
pub fn find_kind(group: &str, version: &str, kind: &str) -> Option<&'static ResourceInfo> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.kind == kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_resource_is_unique_by_url() {
        for (i, a) in RESOURCES.iter().enumerate() {
            for b in &RESOURCES[i + 1..] {
                assert!(
                    !(a.group == b.group && a.version == b.version && a.plural == b.plural),
                    "{} served twice in {}",
                    a.plural,
                    a.api_version()
                );
            }
        }
    }

    #[test]
    fn autoscaling_prefers_v2() {
        let g = groups();
        let autoscaling = g
            .iter()
            .find(|g| g.name == "autoscaling")
            .map(|g| g.versions.clone());
        assert_eq!(autoscaling, Some(vec!["v2", "v1"]));
    }

    #[test]
    fn kubectl_get_all_categories_match_upstream() {
        let mut all: Vec<&str> = RESOURCES
            .iter()
            .filter(|r| r.categories.contains(&"all"))
            .map(|r| r.plural)
            .collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(
            all,
            [
                "cronjobs",
                "daemonsets",
                "deployments",
                "horizontalpodautoscalers",
                "jobs",
                "pods",
                "replicasets",
                "replicationcontrollers",
                "services",
                "statefulsets"
            ]
        );
    }
}
