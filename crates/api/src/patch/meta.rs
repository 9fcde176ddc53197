//! Patch and list metadata of the built-in types: what upstream's Go struct tags and
//! OpenAPI extensions say (`x-kubernetes-patch-strategy`, `x-kubernetes-patch-merge-key`,
//! `x-kubernetes-list-type`, `x-kubernetes-list-map-keys`, `x-kubernetes-map-type`).
//!
//! Keyed by OpenAPI definition name (`io.k8s.api.core.v1.PodSpec`, as k8s-openapi's
//! schemars implementations name them) and field name. The tables hold every definition
//! reachable from the served kinds, transcribed from upstream's v1.33.1
//! `api/openapi-spec/swagger.json` (which openapi-gen derives from the Go tags); fields
//! upstream declares nothing about are absent.

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
    let fields = FIELDS
        .binary_search_by(|(name, _)| (*name).cmp(definition))
        .ok()
        .and_then(|i| FIELDS.get(i))?
        .1;
    fields
        .binary_search_by(|(name, _)| (*name).cmp(field))
        .ok()
        .and_then(|i| fields.get(i))
        .map(|(_, meta)| *meta)
}

/// Whether a whole definition is atomic (`x-kubernetes-map-type: atomic` on a struct, such as
/// `io.k8s.api.core.v1.LocalObjectReference`), so server-side apply and strategic merge treat
/// it as one value.
pub fn definition_is_atomic(definition: &str) -> bool {
    ATOMIC_DEFINITIONS.binary_search(&definition).is_ok()
}

const fn f(
    patch_strategy: Option<&'static str>,
    patch_merge_key: Option<&'static str>,
    list_type: Option<&'static str>,
    list_map_keys: &'static [&'static str],
    map_type: Option<&'static str>,
) -> FieldMeta {
    FieldMeta {
        patch_strategy,
        patch_merge_key,
        list_type,
        list_map_keys,
        map_type,
    }
}

const NONE: Option<&str> = None;
const MERGE: Option<&str> = Some("merge");
const RETAIN: Option<&str> = Some("retainKeys");
const MERGE_RETAIN: Option<&str> = Some("merge,retainKeys");
const REPLACE: Option<&str> = Some("replace");
const ATOMIC: Option<&str> = Some("atomic");
const SET: Option<&str> = Some("set");
const MAP: Option<&str> = Some("map");
const GRANULAR: Option<&str> = Some("granular");

type Fields = &'static [(&'static str, FieldMeta)];

#[rustfmt::skip]
static FIELDS: &[(&str, Fields)] = &[
    ("io.k8s.api.apps.v1.DaemonSetStatus", &[
        ("conditions", f(MERGE, Some("type"), MAP, &["type"], NONE)),
    ]),
    ("io.k8s.api.apps.v1.DeploymentSpec", &[
        ("strategy", f(RETAIN, None, NONE, &[], NONE)),
    ]),
    ("io.k8s.api.apps.v1.DeploymentStatus", &[
        ("conditions", f(MERGE, Some("type"), MAP, &["type"], NONE)),
    ]),
    ("io.k8s.api.apps.v1.ReplicaSetStatus", &[
        ("conditions", f(MERGE, Some("type"), MAP, &["type"], NONE)),
    ]),
    ("io.k8s.api.apps.v1.StatefulSetSpec", &[
        ("volumeClaimTemplates", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.apps.v1.StatefulSetStatus", &[
        ("conditions", f(MERGE, Some("type"), MAP, &["type"], NONE)),
    ]),
    ("io.k8s.api.autoscaling.v2.HPAScalingRules", &[
        ("policies", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerSpec", &[
        ("metrics", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus", &[
        ("conditions", f(MERGE, Some("type"), MAP, &["type"], NONE)),
        ("currentMetrics", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.batch.v1.CronJobStatus", &[
        ("active", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.batch.v1.JobStatus", &[
        ("conditions", f(MERGE, Some("type"), ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.batch.v1.PodFailurePolicy", &[
        ("rules", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.batch.v1.PodFailurePolicyOnExitCodesRequirement", &[
        ("values", f(NONE, None, SET, &[], NONE)),
    ]),
    ("io.k8s.api.batch.v1.PodFailurePolicyRule", &[
        ("onPodConditions", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.batch.v1.SuccessPolicy", &[
        ("rules", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.batch.v1.UncountedTerminatedPods", &[
        ("failed", f(NONE, None, SET, &[], NONE)),
        ("succeeded", f(NONE, None, SET, &[], NONE)),
    ]),
    ("io.k8s.api.core.v1.Capabilities", &[
        ("add", f(NONE, None, ATOMIC, &[], NONE)),
        ("drop", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.core.v1.CephFSPersistentVolumeSource", &[
        ("monitors", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.core.v1.CephFSVolumeSource", &[
        ("monitors", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.core.v1.ConfigMapProjection", &[
        ("items", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.core.v1.ConfigMapVolumeSource", &[
        ("items", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.core.v1.Container", &[
        ("args", f(NONE, None, ATOMIC, &[], NONE)),
        ("command", f(NONE, None, ATOMIC, &[], NONE)),
        ("env", f(MERGE, Some("name"), MAP, &["name"], NONE)),
        ("envFrom", f(NONE, None, ATOMIC, &[], NONE)),
        ("ports", f(MERGE, Some("containerPort"), MAP, &["containerPort", "protocol"], NONE)),
        ("resizePolicy", f(NONE, None, ATOMIC, &[], NONE)),
        ("volumeDevices", f(MERGE, Some("devicePath"), MAP, &["devicePath"], NONE)),
        ("volumeMounts", f(MERGE, Some("mountPath"), MAP, &["mountPath"], NONE)),
    ]),
    ("io.k8s.api.core.v1.ContainerImage", &[
        ("names", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.core.v1.ContainerStatus", &[
        ("allocatedResourcesStatus", f(MERGE, Some("name"), MAP, &["name"], NONE)),
        ("volumeMounts", f(MERGE, Some("mountPath"), MAP, &["mountPath"], NONE)),
    ]),
    ("io.k8s.api.core.v1.DownwardAPIProjection", &[
        ("items", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.core.v1.DownwardAPIVolumeSource", &[
        ("items", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.core.v1.EndpointSubset", &[
        ("addresses", f(NONE, None, ATOMIC, &[], NONE)),
        ("notReadyAddresses", f(NONE, None, ATOMIC, &[], NONE)),
        ("ports", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.core.v1.Endpoints", &[
        ("subsets", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.core.v1.EphemeralContainer", &[
        ("args", f(NONE, None, ATOMIC, &[], NONE)),
        ("command", f(NONE, None, ATOMIC, &[], NONE)),
        ("env", f(MERGE, Some("name"), MAP, &["name"], NONE)),
        ("envFrom", f(NONE, None, ATOMIC, &[], NONE)),
        ("ports", f(MERGE, Some("containerPort"), MAP, &["containerPort", "protocol"], NONE)),
        ("resizePolicy", f(NONE, None, ATOMIC, &[], NONE)),
        ("volumeDevices", f(MERGE, Some("devicePath"), MAP, &["devicePath"], NONE)),
        ("volumeMounts", f(MERGE, Some("mountPath"), MAP, &["mountPath"], NONE)),
    ]),
    ("io.k8s.api.core.v1.ExecAction", &[
        ("command", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.core.v1.FCVolumeSource", &[
        ("targetWWNs", f(NONE, None, ATOMIC, &[], NONE)),
        ("wwids", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.core.v1.HTTPGetAction", &[
        ("httpHeaders", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.core.v1.HostAlias", &[
        ("hostnames", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.core.v1.ISCSIPersistentVolumeSource", &[
        ("portals", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.core.v1.ISCSIVolumeSource", &[
        ("portals", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.core.v1.LimitRangeSpec", &[
        ("limits", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.core.v1.LinuxContainerUser", &[
        ("supplementalGroups", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.core.v1.LoadBalancerIngress", &[
        ("ports", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.core.v1.LoadBalancerStatus", &[
        ("ingress", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.core.v1.NamespaceSpec", &[
        ("finalizers", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.core.v1.NamespaceStatus", &[
        ("conditions", f(MERGE, Some("type"), MAP, &["type"], NONE)),
    ]),
    ("io.k8s.api.core.v1.NodeAffinity", &[
        ("preferredDuringSchedulingIgnoredDuringExecution", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.core.v1.NodeSelector", &[
        ("nodeSelectorTerms", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.core.v1.NodeSelectorRequirement", &[
        ("values", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.core.v1.NodeSelectorTerm", &[
        ("matchExpressions", f(NONE, None, ATOMIC, &[], NONE)),
        ("matchFields", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.core.v1.NodeSpec", &[
        ("podCIDRs", f(MERGE, None, SET, &[], NONE)),
        ("taints", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.core.v1.NodeStatus", &[
        ("addresses", f(MERGE, Some("type"), MAP, &["type"], NONE)),
        ("conditions", f(MERGE, Some("type"), MAP, &["type"], NONE)),
        ("images", f(NONE, None, ATOMIC, &[], NONE)),
        ("runtimeHandlers", f(NONE, None, ATOMIC, &[], NONE)),
        ("volumesAttached", f(NONE, None, ATOMIC, &[], NONE)),
        ("volumesInUse", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.core.v1.PersistentVolumeClaimSpec", &[
        ("accessModes", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.core.v1.PersistentVolumeClaimStatus", &[
        ("accessModes", f(NONE, None, ATOMIC, &[], NONE)),
        ("allocatedResourceStatuses", f(NONE, None, NONE, &[], GRANULAR)),
        ("conditions", f(MERGE, Some("type"), MAP, &["type"], NONE)),
    ]),
    ("io.k8s.api.core.v1.PersistentVolumeSpec", &[
        ("accessModes", f(NONE, None, ATOMIC, &[], NONE)),
        ("claimRef", f(NONE, None, NONE, &[], GRANULAR)),
        ("mountOptions", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.core.v1.PodAffinity", &[
        ("preferredDuringSchedulingIgnoredDuringExecution", f(NONE, None, ATOMIC, &[], NONE)),
        ("requiredDuringSchedulingIgnoredDuringExecution", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.core.v1.PodAffinityTerm", &[
        ("matchLabelKeys", f(NONE, None, ATOMIC, &[], NONE)),
        ("mismatchLabelKeys", f(NONE, None, ATOMIC, &[], NONE)),
        ("namespaces", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.core.v1.PodAntiAffinity", &[
        ("preferredDuringSchedulingIgnoredDuringExecution", f(NONE, None, ATOMIC, &[], NONE)),
        ("requiredDuringSchedulingIgnoredDuringExecution", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.core.v1.PodDNSConfig", &[
        ("nameservers", f(NONE, None, ATOMIC, &[], NONE)),
        ("options", f(NONE, None, ATOMIC, &[], NONE)),
        ("searches", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.core.v1.PodSecurityContext", &[
        ("supplementalGroups", f(NONE, None, ATOMIC, &[], NONE)),
        ("sysctls", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.core.v1.PodSpec", &[
        ("containers", f(MERGE, Some("name"), MAP, &["name"], NONE)),
        ("ephemeralContainers", f(MERGE, Some("name"), MAP, &["name"], NONE)),
        ("hostAliases", f(MERGE, Some("ip"), MAP, &["ip"], NONE)),
        ("imagePullSecrets", f(MERGE, Some("name"), MAP, &["name"], NONE)),
        ("initContainers", f(MERGE, Some("name"), MAP, &["name"], NONE)),
        ("nodeSelector", f(NONE, None, NONE, &[], ATOMIC)),
        ("readinessGates", f(NONE, None, ATOMIC, &[], NONE)),
        ("resourceClaims", f(MERGE_RETAIN, Some("name"), MAP, &["name"], NONE)),
        ("schedulingGates", f(MERGE, Some("name"), MAP, &["name"], NONE)),
        ("tolerations", f(NONE, None, ATOMIC, &[], NONE)),
        ("topologySpreadConstraints", f(MERGE, Some("topologyKey"), MAP, &["topologyKey", "whenUnsatisfiable"], NONE)),
        ("volumes", f(MERGE_RETAIN, Some("name"), MAP, &["name"], NONE)),
    ]),
    ("io.k8s.api.core.v1.PodStatus", &[
        ("conditions", f(MERGE, Some("type"), MAP, &["type"], NONE)),
        ("containerStatuses", f(NONE, None, ATOMIC, &[], NONE)),
        ("ephemeralContainerStatuses", f(NONE, None, ATOMIC, &[], NONE)),
        ("hostIPs", f(MERGE, Some("ip"), ATOMIC, &[], NONE)),
        ("initContainerStatuses", f(NONE, None, ATOMIC, &[], NONE)),
        ("podIPs", f(MERGE, Some("ip"), MAP, &["ip"], NONE)),
        ("resourceClaimStatuses", f(MERGE_RETAIN, Some("name"), MAP, &["name"], NONE)),
    ]),
    ("io.k8s.api.core.v1.ProjectedVolumeSource", &[
        ("sources", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.core.v1.RBDPersistentVolumeSource", &[
        ("monitors", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.core.v1.RBDVolumeSource", &[
        ("monitors", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.core.v1.ReplicationControllerSpec", &[
        ("selector", f(NONE, None, NONE, &[], ATOMIC)),
    ]),
    ("io.k8s.api.core.v1.ReplicationControllerStatus", &[
        ("conditions", f(MERGE, Some("type"), MAP, &["type"], NONE)),
    ]),
    ("io.k8s.api.core.v1.ResourceQuotaSpec", &[
        ("scopes", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.core.v1.ResourceRequirements", &[
        ("claims", f(NONE, None, MAP, &["name"], NONE)),
    ]),
    ("io.k8s.api.core.v1.ResourceStatus", &[
        ("resources", f(NONE, None, MAP, &["resourceID"], NONE)),
    ]),
    ("io.k8s.api.core.v1.ScopeSelector", &[
        ("matchExpressions", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.core.v1.ScopedResourceSelectorRequirement", &[
        ("values", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.core.v1.SecretProjection", &[
        ("items", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.core.v1.SecretVolumeSource", &[
        ("items", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.core.v1.ServiceAccount", &[
        ("imagePullSecrets", f(NONE, None, ATOMIC, &[], NONE)),
        ("secrets", f(MERGE, Some("name"), MAP, &["name"], NONE)),
    ]),
    ("io.k8s.api.core.v1.ServiceSpec", &[
        ("clusterIPs", f(NONE, None, ATOMIC, &[], NONE)),
        ("externalIPs", f(NONE, None, ATOMIC, &[], NONE)),
        ("ipFamilies", f(NONE, None, ATOMIC, &[], NONE)),
        ("loadBalancerSourceRanges", f(NONE, None, ATOMIC, &[], NONE)),
        ("ports", f(MERGE, Some("port"), MAP, &["port", "protocol"], NONE)),
        ("selector", f(NONE, None, NONE, &[], ATOMIC)),
    ]),
    ("io.k8s.api.core.v1.ServiceStatus", &[
        ("conditions", f(MERGE, Some("type"), MAP, &["type"], NONE)),
    ]),
    ("io.k8s.api.core.v1.TopologySelectorLabelRequirement", &[
        ("values", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.core.v1.TopologySelectorTerm", &[
        ("matchLabelExpressions", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.core.v1.TopologySpreadConstraint", &[
        ("matchLabelKeys", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.discovery.v1.Endpoint", &[
        ("addresses", f(NONE, None, SET, &[], NONE)),
    ]),
    ("io.k8s.api.discovery.v1.EndpointHints", &[
        ("forNodes", f(NONE, None, ATOMIC, &[], NONE)),
        ("forZones", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.discovery.v1.EndpointSlice", &[
        ("endpoints", f(NONE, None, ATOMIC, &[], NONE)),
        ("ports", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.networking.v1.HTTPIngressRuleValue", &[
        ("paths", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.networking.v1.IPBlock", &[
        ("except", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.networking.v1.IngressLoadBalancerIngress", &[
        ("ports", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.networking.v1.IngressLoadBalancerStatus", &[
        ("ingress", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.networking.v1.IngressSpec", &[
        ("rules", f(NONE, None, ATOMIC, &[], NONE)),
        ("tls", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.networking.v1.IngressTLS", &[
        ("hosts", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.networking.v1.NetworkPolicyEgressRule", &[
        ("ports", f(NONE, None, ATOMIC, &[], NONE)),
        ("to", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.networking.v1.NetworkPolicyIngressRule", &[
        ("from", f(NONE, None, ATOMIC, &[], NONE)),
        ("ports", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.networking.v1.NetworkPolicySpec", &[
        ("egress", f(NONE, None, ATOMIC, &[], NONE)),
        ("ingress", f(NONE, None, ATOMIC, &[], NONE)),
        ("policyTypes", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.policy.v1.PodDisruptionBudgetSpec", &[
        ("selector", f(REPLACE, None, NONE, &[], NONE)),
    ]),
    ("io.k8s.api.policy.v1.PodDisruptionBudgetStatus", &[
        ("conditions", f(MERGE, Some("type"), MAP, &["type"], NONE)),
    ]),
    ("io.k8s.api.rbac.v1.AggregationRule", &[
        ("clusterRoleSelectors", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.rbac.v1.ClusterRole", &[
        ("rules", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.rbac.v1.ClusterRoleBinding", &[
        ("subjects", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.rbac.v1.PolicyRule", &[
        ("apiGroups", f(NONE, None, ATOMIC, &[], NONE)),
        ("nonResourceURLs", f(NONE, None, ATOMIC, &[], NONE)),
        ("resourceNames", f(NONE, None, ATOMIC, &[], NONE)),
        ("resources", f(NONE, None, ATOMIC, &[], NONE)),
        ("verbs", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.rbac.v1.Role", &[
        ("rules", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.rbac.v1.RoleBinding", &[
        ("subjects", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.storage.v1.CSIDriverSpec", &[
        ("tokenRequests", f(NONE, None, ATOMIC, &[], NONE)),
        ("volumeLifecycleModes", f(NONE, None, SET, &[], NONE)),
    ]),
    ("io.k8s.api.storage.v1.CSINodeDriver", &[
        ("topologyKeys", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.api.storage.v1.CSINodeSpec", &[
        ("drivers", f(MERGE, Some("name"), MAP, &["name"], NONE)),
    ]),
    ("io.k8s.api.storage.v1.StorageClass", &[
        ("allowedTopologies", f(NONE, None, ATOMIC, &[], NONE)),
        ("mountOptions", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionNames", &[
        ("categories", f(NONE, None, ATOMIC, &[], NONE)),
        ("shortNames", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionSpec", &[
        ("versions", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionStatus", &[
        ("conditions", f(NONE, None, MAP, &["type"], NONE)),
        ("storedVersions", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionVersion", &[
        ("additionalPrinterColumns", f(NONE, None, ATOMIC, &[], NONE)),
        ("selectableFields", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps", &[
        ("allOf", f(NONE, None, ATOMIC, &[], NONE)),
        ("anyOf", f(NONE, None, ATOMIC, &[], NONE)),
        ("enum", f(NONE, None, ATOMIC, &[], NONE)),
        ("oneOf", f(NONE, None, ATOMIC, &[], NONE)),
        ("required", f(NONE, None, ATOMIC, &[], NONE)),
        ("x-kubernetes-list-map-keys", f(NONE, None, ATOMIC, &[], NONE)),
        ("x-kubernetes-validations", f(MERGE, Some("rule"), MAP, &["rule"], NONE)),
    ]),
    ("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.WebhookConversion", &[
        ("conversionReviewVersions", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector", &[
        ("matchExpressions", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelectorRequirement", &[
        ("values", f(NONE, None, ATOMIC, &[], NONE)),
    ]),
    ("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", &[
        ("finalizers", f(MERGE, None, SET, &[], NONE)),
        ("managedFields", f(NONE, None, ATOMIC, &[], NONE)),
        ("ownerReferences", f(MERGE, Some("uid"), MAP, &["uid"], NONE)),
    ]),
];

#[rustfmt::skip]
static ATOMIC_DEFINITIONS: &[&str] = &[
    "io.k8s.api.autoscaling.v1.CrossVersionObjectReference",
    "io.k8s.api.core.v1.ConfigMapKeySelector",
    "io.k8s.api.core.v1.EndpointAddress",
    "io.k8s.api.core.v1.EndpointPort",
    "io.k8s.api.core.v1.LocalObjectReference",
    "io.k8s.api.core.v1.NodeSelector",
    "io.k8s.api.core.v1.NodeSelectorTerm",
    "io.k8s.api.core.v1.ObjectFieldSelector",
    "io.k8s.api.core.v1.ObjectReference",
    "io.k8s.api.core.v1.ResourceFieldSelector",
    "io.k8s.api.core.v1.ScopeSelector",
    "io.k8s.api.core.v1.SecretKeySelector",
    "io.k8s.api.core.v1.SecretReference",
    "io.k8s.api.core.v1.TopologySelectorTerm",
    "io.k8s.api.core.v1.TypedLocalObjectReference",
    "io.k8s.api.discovery.v1.EndpointPort",
    "io.k8s.api.networking.v1.ServiceBackendPort",
    "io.k8s.api.rbac.v1.RoleRef",
    "io.k8s.api.rbac.v1.Subject",
    "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
    "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch::schema_walk::definitions;
    use serde_json::Value;

    #[test]
    fn tables_are_sorted_for_binary_search() {
        assert!(FIELDS.windows(2).all(|w| w[0].0 < w[1].0));
        for (name, fields) in FIELDS {
            assert!(fields.windows(2).all(|w| w[0].0 < w[1].0), "{name}");
        }
        assert!(ATOMIC_DEFINITIONS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn every_definition_and_field_exists_in_the_schemars_output() {
        let schemas = &definitions().schemas;
        for (name, fields) in FIELDS {
            let props = schemas
                .get(*name)
                .and_then(|d| d.get("properties"))
                .and_then(Value::as_object);
            let Some(props) = props else {
                panic!("{name} is not a definition with properties");
            };
            for (field, _) in *fields {
                assert!(props.contains_key(*field), "{name}.{field}");
            }
        }
        for name in ATOMIC_DEFINITIONS {
            assert!(schemas.contains_key(*name), "{name}");
        }
    }

    #[test]
    fn lookups_answer_upstream_tags() {
        let cases = [
            (
                "io.k8s.api.core.v1.PodSpec",
                "containers",
                Some((Some("merge"), Some("name"))),
            ),
            (
                "io.k8s.api.core.v1.PodSpec",
                "volumes",
                Some((Some("merge,retainKeys"), Some("name"))),
            ),
            (
                "io.k8s.api.core.v1.PodSpec",
                "tolerations",
                Some((None, None)),
            ),
            (
                "io.k8s.api.core.v1.Container",
                "ports",
                Some((Some("merge"), Some("containerPort"))),
            ),
            (
                "io.k8s.api.apps.v1.DeploymentSpec",
                "strategy",
                Some((Some("retainKeys"), None)),
            ),
            (
                "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
                "finalizers",
                Some((Some("merge"), None)),
            ),
            (
                "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
                "ownerReferences",
                Some((Some("merge"), Some("uid"))),
            ),
            (
                "io.k8s.api.policy.v1.PodDisruptionBudgetSpec",
                "selector",
                Some((Some("replace"), None)),
            ),
            ("io.k8s.api.core.v1.PodSpec", "hostname", None),
            ("io.k8s.api.core.v1.NoSuchType", "containers", None),
        ];
        for (definition, field, want) in cases {
            let got = field_meta(definition, field).map(|m| (m.patch_strategy, m.patch_merge_key));
            assert_eq!(got, want, "{definition}.{field}");
        }
        let finalizers = field_meta(
            "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
            "finalizers",
        );
        assert_eq!(finalizers.and_then(|m| m.list_type), Some("set"));
        let ports = field_meta("io.k8s.api.core.v1.Container", "ports");
        assert_eq!(
            ports.map(|m| m.list_map_keys),
            Some(&["containerPort", "protocol"][..])
        );
        assert!(definition_is_atomic(
            "io.k8s.api.core.v1.LocalObjectReference"
        ));
        assert!(!definition_is_atomic("io.k8s.api.core.v1.PodSpec"));
    }
}
