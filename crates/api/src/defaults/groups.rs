//! Defaults of the kinds in named groups (apps, batch, autoscaling, networking, discovery,
//! storage, scheduling, RBAC, apiextensions), as each group's `v1/defaults.go` sets them.

use k8s_openapi::api::apps::v1::{
    DaemonSet, Deployment, ReplicaSet, RollingUpdateDaemonSet, RollingUpdateDeployment,
    StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy,
};
use k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler as HpaV1;
use k8s_openapi::api::autoscaling::v2::{
    HPAScalingPolicy, HPAScalingRules, HorizontalPodAutoscaler as HpaV2, MetricSpec, MetricTarget,
    ResourceMetricSource,
};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{IngressClass, NetworkPolicy};
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleBinding, Subject};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::api::storage::v1::{CSIDriver, StorageClass};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceConversion, CustomResourceDefinition,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::core::persistent_volume_claim;
use super::pod::{default_str, template};

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

pub(super) fn deployment(d: &mut Deployment) {
    let Some(spec) = &mut d.spec else { return };
    spec.replicas.get_or_insert(1);
    let strategy = spec.strategy.get_or_insert_with(Default::default);
    default_str(&mut strategy.type_, "RollingUpdate");
    if strategy.type_.as_deref() == Some("RollingUpdate") {
        let ru = strategy
            .rolling_update
            .get_or_insert_with(RollingUpdateDeployment::default);
        ru.max_unavailable
            .get_or_insert_with(|| IntOrString::String("25%".to_string()));
        ru.max_surge
            .get_or_insert_with(|| IntOrString::String("25%".to_string()));
    }
    spec.revision_history_limit.get_or_insert(10);
    spec.progress_deadline_seconds.get_or_insert(600);
    template(&mut spec.template);
}

pub(super) fn daemon_set(ds: &mut DaemonSet) {
    let Some(spec) = &mut ds.spec else { return };
    let strategy = spec.update_strategy.get_or_insert_with(Default::default);
    default_str(&mut strategy.type_, "RollingUpdate");
    if strategy.type_.as_deref() == Some("RollingUpdate") {
        let ru = strategy
            .rolling_update
            .get_or_insert_with(RollingUpdateDaemonSet::default);
        ru.max_unavailable.get_or_insert(IntOrString::Int(1));
        ru.max_surge.get_or_insert(IntOrString::Int(0));
    }
    spec.revision_history_limit.get_or_insert(10);
    template(&mut spec.template);
}

pub(super) fn stateful_set(ss: &mut StatefulSet) {
    let Some(spec) = &mut ss.spec else { return };
    default_str(&mut spec.pod_management_policy, "OrderedReady");
    let strategy = spec.update_strategy.get_or_insert_with(Default::default);
    // Only a defaulted strategy gets an implicit rollingUpdate; an explicit RollingUpdate
    // without one keeps it absent, as upstream does.
    if strategy.type_.as_deref().unwrap_or("").is_empty() {
        strategy.type_ = Some("RollingUpdate".to_string());
        strategy.rolling_update.get_or_insert_with(Default::default);
    }
    if strategy.type_.as_deref() == Some("RollingUpdate") {
        if let Some(ru) = &mut strategy.rolling_update {
            ru.partition.get_or_insert(0);
        }
    }
    let retention = spec
        .persistent_volume_claim_retention_policy
        .get_or_insert_with(StatefulSetPersistentVolumeClaimRetentionPolicy::default);
    default_str(&mut retention.when_deleted, "Retain");
    default_str(&mut retention.when_scaled, "Retain");
    spec.replicas.get_or_insert(1);
    spec.revision_history_limit.get_or_insert(10);
    template(&mut spec.template);
    for pvc in spec.volume_claim_templates.iter_mut().flatten() {
        persistent_volume_claim(pvc);
    }
}

pub(super) fn replica_set(rs: &mut ReplicaSet) {
    let Some(spec) = &mut rs.spec else { return };
    spec.replicas.get_or_insert(1);
    if let Some(t) = &mut spec.template {
        template(t);
    }
}

pub(super) fn job(j: &mut Job) {
    let Some(spec) = &mut j.spec else { return };
    if spec.completions.is_none() && spec.parallelism.is_none() {
        spec.completions = Some(1);
        spec.parallelism = Some(1);
    }
    spec.parallelism.get_or_insert(1);
    if spec.backoff_limit.is_none() {
        // With per-index limits the global limit is effectively off.
        spec.backoff_limit = Some(if spec.backoff_limit_per_index.is_some() {
            i32::MAX
        } else {
            6
        });
    }
    let labels = spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone());
    if let Some(labels) = labels {
        if j.metadata.labels.as_ref().is_none_or(|l| l.is_empty()) {
            j.metadata.labels = Some(labels);
        }
    }
    default_str_opt(&mut spec.completion_mode, "NonIndexed");
    spec.suspend.get_or_insert(false);
    if let Some(pfp) = &mut spec.pod_failure_policy {
        for rule in pfp.rules.iter_mut() {
            for pattern in rule.on_pod_conditions.iter_mut().flatten() {
                if pattern.status.is_empty() {
                    pattern.status = "True".to_string();
                }
            }
        }
    }
    if spec.pod_replacement_policy.is_none() {
        spec.pod_replacement_policy = Some(
            if spec.pod_failure_policy.is_some() {
                "Failed"
            } else {
                "TerminatingOrFailed"
            }
            .to_string(),
        );
    }
    spec.manual_selector.get_or_insert(false);
    template(&mut spec.template);
}

/// Sets a pointer-typed string only when absent (Go checks `== nil`, not emptiness).
fn default_str_opt(field: &mut Option<String>, value: &str) {
    field.get_or_insert_with(|| value.to_string());
}

pub(super) fn cron_job(cj: &mut CronJob) {
    let Some(spec) = &mut cj.spec else { return };
    default_str(&mut spec.concurrency_policy, "Allow");
    spec.suspend.get_or_insert(false);
    spec.successful_jobs_history_limit.get_or_insert(3);
    spec.failed_jobs_history_limit.get_or_insert(1);
    // The job template gets pod defaults only; the Job defaults apply when a Job is created.
    if let Some(js) = &mut spec.job_template.spec {
        template(&mut js.template);
    }
}

pub(super) fn hpa_v1(h: &mut HpaV1) {
    if let Some(spec) = &mut h.spec {
        spec.min_replicas.get_or_insert(1);
    }
}

pub(super) fn hpa_v2(h: &mut HpaV2) {
    let Some(spec) = &mut h.spec else { return };
    spec.min_replicas.get_or_insert(1);
    if spec.metrics.as_ref().is_none_or(Vec::is_empty) {
        spec.metrics = Some(vec![MetricSpec {
            type_: "Resource".to_string(),
            resource: Some(ResourceMetricSource {
                name: "cpu".to_string(),
                target: MetricTarget {
                    type_: "Utilization".to_string(),
                    average_utilization: Some(80),
                    ..Default::default()
                },
            }),
            ..Default::default()
        }]);
    }
    if let Some(b) = &mut spec.behavior {
        let policy = |type_: &str, value: i32| HPAScalingPolicy {
            type_: type_.to_string(),
            value,
            period_seconds: 15,
        };
        b.scale_up = Some(scaling_rules(
            b.scale_up.take(),
            HPAScalingRules {
                stabilization_window_seconds: Some(0),
                select_policy: Some("Max".to_string()),
                policies: Some(vec![policy("Pods", 4), policy("Percent", 100)]),
                ..Default::default()
            },
        ));
        // Scale-down stabilization stays unset: the controller's flag supplies it.
        b.scale_down = Some(scaling_rules(
            b.scale_down.take(),
            HPAScalingRules {
                stabilization_window_seconds: None,
                select_policy: Some("Max".to_string()),
                policies: Some(vec![policy("Percent", 100)]),
                ..Default::default()
            },
        ));
    }
}

fn scaling_rules(given: Option<HPAScalingRules>, mut out: HPAScalingRules) -> HPAScalingRules {
    let Some(given) = given else { return out };
    if given.select_policy.is_some() {
        out.select_policy = given.select_policy;
    }
    if given.stabilization_window_seconds.is_some() {
        out.stabilization_window_seconds = given.stabilization_window_seconds;
    }
    if given.policies.is_some() {
        out.policies = given.policies;
    }
    if given.tolerance.is_some() {
        out.tolerance = given.tolerance;
    }
    out
}

pub(super) fn network_policy(np: &mut NetworkPolicy) {
    let Some(spec) = &mut np.spec else { return };
    let ingress_ports = spec
        .ingress
        .iter_mut()
        .flatten()
        .flat_map(|r| r.ports.iter_mut().flatten());
    let egress_ports = spec
        .egress
        .iter_mut()
        .flatten()
        .flat_map(|r| r.ports.iter_mut().flatten());
    for p in ingress_ports.chain(egress_ports) {
        default_str_opt(&mut p.protocol, "TCP");
    }
    if spec.policy_types.as_ref().is_none_or(Vec::is_empty) {
        let mut types = vec!["Ingress".to_string()];
        if spec.egress.as_ref().is_some_and(|e| !e.is_empty()) {
            types.push("Egress".to_string());
        }
        spec.policy_types = Some(types);
    }
}

pub(super) fn ingress_class(ic: &mut IngressClass) {
    if let Some(p) = ic.spec.as_mut().and_then(|s| s.parameters.as_mut()) {
        default_str_opt(&mut p.scope, "Cluster");
    }
}

pub(super) fn endpoint_slice(es: &mut EndpointSlice) {
    for p in es.ports.iter_mut().flatten() {
        p.name.get_or_insert_with(String::new);
        default_str_opt(&mut p.protocol, "TCP");
    }
}

pub(super) fn storage_class(sc: &mut StorageClass) {
    default_str_opt(&mut sc.reclaim_policy, "Delete");
    default_str_opt(&mut sc.volume_binding_mode, "Immediate");
}

pub(super) fn csi_driver(d: &mut CSIDriver) {
    let s = &mut d.spec;
    s.attach_required.get_or_insert(true);
    s.pod_info_on_mount.get_or_insert(false);
    s.storage_capacity.get_or_insert(false);
    default_str_opt(&mut s.fs_group_policy, "ReadWriteOnceWithFSType");
    if s.volume_lifecycle_modes.as_ref().is_none_or(Vec::is_empty) {
        s.volume_lifecycle_modes = Some(vec!["Persistent".to_string()]);
    }
    s.requires_republish.get_or_insert(false);
    s.se_linux_mount.get_or_insert(false);
}

pub(super) fn priority_class(pc: &mut PriorityClass) {
    default_str_opt(&mut pc.preemption_policy, "PreemptLowerPriority");
}

pub(super) fn role_binding(rb: &mut RoleBinding) {
    if rb.role_ref.api_group.is_empty() {
        rb.role_ref.api_group = RBAC_GROUP.to_string();
    }
    rb.subjects.iter_mut().flatten().for_each(subject);
}

pub(super) fn cluster_role_binding(rb: &mut ClusterRoleBinding) {
    if rb.role_ref.api_group.is_empty() {
        rb.role_ref.api_group = RBAC_GROUP.to_string();
    }
    rb.subjects.iter_mut().flatten().for_each(subject);
}

fn subject(s: &mut Subject) {
    // Service accounts keep the empty core group, which Go omits from JSON.
    if s.api_group.as_deref().unwrap_or("").is_empty()
        && matches!(s.kind.as_str(), "User" | "Group")
    {
        s.api_group = Some(RBAC_GROUP.to_string());
    }
}

pub(super) fn custom_resource_definition(crd: &mut CustomResourceDefinition) {
    let spec = &mut crd.spec;
    let names = &mut spec.names;
    if names.singular.as_deref().unwrap_or("").is_empty() {
        names.singular = Some(names.kind.to_lowercase());
    }
    if names.list_kind.as_deref().unwrap_or("").is_empty() && !names.kind.is_empty() {
        names.list_kind = Some(format!("{}List", names.kind));
    }
    let conversion = spec
        .conversion
        .get_or_insert_with(|| CustomResourceConversion {
            strategy: "None".to_string(),
            webhook: None,
        });
    let service = conversion
        .webhook
        .as_mut()
        .and_then(|w| w.client_config.as_mut())
        .and_then(|c| c.service.as_mut());
    if let Some(svc) = service {
        svc.port.get_or_insert(443);
    }
    let has_stored = crd
        .status
        .as_ref()
        .and_then(|s| s.stored_versions.as_ref())
        .is_some_and(|v| !v.is_empty());
    if !has_stored {
        if let Some(v) = spec.versions.iter().find(|v| v.storage) {
            crd.status
                .get_or_insert_with(Default::default)
                .stored_versions = Some(vec![v.name.clone()]);
        }
    }
}
