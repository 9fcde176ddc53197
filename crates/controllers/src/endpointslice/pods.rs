//! What a Service makes of a Pod, shared by the EndpointSlice and Endpoints controllers
//! (upstream's `endpointslice/util` and `endpoint/util`): which pods a selector picks, whether
//! a pod is published at all, whether it is ready, which ports a service port resolves to on
//! it (a named `targetPort` looks in the pod's container ports), and its hostname.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Pod, Service, ServicePort};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Whether the pod's `Ready` condition is `True` (the one copy, in `controller_utils`).
pub use crate::controller_utils::is_pod_ready;
use crate::controller_utils::{has_all_labels, ready_condition};

/// The node label whose value becomes an endpoint's `zone`.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// Whether a service selector (a plain label map) selects labels `labels`. An empty selector
/// selects everything, as `labels.Set(...).AsSelector()`.
pub fn selects(
    selector: &BTreeMap<String, String>,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    has_all_labels(labels, Some(selector))
}

/// The pods of the service's namespace its selector picks; none for a service without one.
pub fn selected_pods<'a>(
    service: &Service,
    pods: impl IntoIterator<Item = &'a Pod>,
) -> Vec<&'a Pod> {
    let Some(selector) = service.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
        return Vec::new();
    };
    let ns = service.metadata.namespace.as_deref();
    pods.into_iter()
        .filter(|p| p.metadata.namespace.as_deref() == ns)
        .filter(|p| selects(selector, p.metadata.labels.as_ref()))
        .collect()
}

/// When the pod's `Ready` condition last changed: upstream's trigger time for a pod.
pub fn ready_transition(pod: &Pod) -> Option<&Time> {
    ready_condition(pod).and_then(|c| c.last_transition_time.as_ref())
}

/// Whether a pod is published at all (upstream's `ShouldPodBeInEndpoints`): it has an IP, is
/// not finished (Succeeded/Failed), and is not terminating unless `include_terminating`.
pub fn should_pod_be_in_endpoints(pod: &Pod, include_terminating: bool) -> bool {
    let status = pod.status.as_ref();
    let has_ip = status
        .and_then(|s| s.pod_ip.as_deref())
        .is_some_and(|ip| !ip.is_empty())
        || status
            .and_then(|s| s.pod_ips.as_ref())
            .is_some_and(|ips| !ips.is_empty());
    if !has_ip {
        return false;
    }
    if !include_terminating && pod.metadata.deletion_timestamp.is_some() {
        return false;
    }
    !matches!(
        status.and_then(|s| s.phase.as_deref()),
        Some("Succeeded") | Some("Failed")
    )
}

/// The pod's IPs, `podIPs` or else `podIP`, normalised as upstream re-stringifies them.
pub fn pod_ips(pod: &Pod) -> Vec<IpAddr> {
    let status = pod.status.as_ref();
    let listed: Vec<&str> = status
        .and_then(|s| s.pod_ips.as_ref())
        .map(|ips| ips.iter().map(|ip| ip.ip.as_str()).collect())
        .unwrap_or_default();
    let raw = if listed.is_empty() {
        status
            .and_then(|s| s.pod_ip.as_deref())
            .into_iter()
            .collect()
    } else {
        listed
    };
    raw.into_iter().filter_map(|ip| ip.parse().ok()).collect()
}

/// Whether an endpoint of `pod` for `service` carries the pod's hostname: it has
/// `spec.hostname` and its `spec.subdomain` names the service, in the same namespace.
pub fn hostname_for(pod: &Pod, service: &Service) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let hostname = spec.hostname.as_deref().filter(|h| !h.is_empty())?;
    let same_ns = pod.metadata.namespace == service.metadata.namespace;
    (spec.subdomain.as_deref() == service.metadata.name.as_deref() && same_ns)
        .then(|| hostname.to_string())
}

/// The port `svc_port` reaches on `pod` (upstream's `FindPort`): a numeric `targetPort` as
/// is (the service's `port` when unset), a named one from the containers' ports of the same
/// name and protocol, sidecars (restartable init containers) included. None when a name does
/// not resolve.
pub fn find_port(pod: &Pod, svc_port: &ServicePort) -> Option<i32> {
    let protocol = svc_port.protocol.as_deref().unwrap_or("TCP");
    match &svc_port.target_port {
        None => Some(svc_port.port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => {
            if let Ok(n) = name.parse::<i32>() {
                return Some(n);
            }
            let spec = pod.spec.as_ref()?;
            let sidecars = spec
                .init_containers
                .iter()
                .flatten()
                .filter(|c| c.restart_policy.as_deref() == Some("Always"));
            spec.containers
                .iter()
                .chain(sidecars)
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| {
                    p.name.as_deref() == Some(name.as_str())
                        && p.protocol.as_deref().unwrap_or("TCP") == protocol
                })
                .map(|p| p.container_port)
        }
    }
}

/// The service's ClusterIP is a real address (not headless, not unset).
pub fn is_service_ip_set(service: &Service) -> bool {
    let ip = service
        .spec
        .as_ref()
        .and_then(|s| s.cluster_ip.as_deref())
        .unwrap_or_default();
    !ip.is_empty() && ip != "None"
}

/// A headless service: `clusterIP: None`.
pub fn is_headless(service: &Service) -> bool {
    service.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None")
}

/// `spec.publishNotReadyAddresses`.
pub fn publishes_not_ready(service: &Service) -> bool {
    service
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false)
}

/// The latest change among the service's creation and its pods' readiness transitions: what
/// the `endpoints.kubernetes.io/last-change-trigger-time` annotation records. Upstream's
/// tracker reports the earliest unprocessed change; without its per-sync bookkeeping the
/// latest known change is the closest stable value.
pub fn trigger_time(service: &Service, pods: &[&Pod]) -> Option<Time> {
    let created = service.metadata.creation_timestamp.as_ref();
    pods.iter()
        .filter_map(|p| ready_transition(p))
        .chain(created)
        .max_by_key(|t| t.0)
        .cloned()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).expect("pod")
    }

    #[test]
    fn named_target_ports_resolve_per_pod_and_protocol() {
        let p = pod(json!({"metadata": {"name": "a"}, "spec": {
            "containers": [{"name": "c", "ports": [
                {"name": "http", "containerPort": 8080},
                {"name": "dns", "containerPort": 53, "protocol": "UDP"}]}],
            "initContainers": [
                {"name": "side", "restartPolicy": "Always", "ports": [{"name": "metrics", "containerPort": 9090}]},
                {"name": "init", "ports": [{"name": "once", "containerPort": 1}]}]}}));
        let port = |v: serde_json::Value| -> ServicePort { serde_json::from_value(v).unwrap() };
        let cases = [
            (json!({"port": 80, "targetPort": "http"}), Some(8080)),
            (json!({"port": 80, "targetPort": 9000}), Some(9000)),
            (json!({"port": 80}), Some(80)),
            (
                json!({"port": 53, "targetPort": "dns", "protocol": "UDP"}),
                Some(53),
            ),
            (
                json!({"port": 53, "targetPort": "dns", "protocol": "TCP"}),
                None,
            ),
            (json!({"port": 1, "targetPort": "metrics"}), Some(9090)),
            (json!({"port": 1, "targetPort": "once"}), None),
            (json!({"port": 1, "targetPort": "nope"}), None),
        ];
        for (sp, want) in cases {
            assert_eq!(find_port(&p, &port(sp.clone())), want, "{sp}");
        }
    }

    #[test]
    fn only_pods_with_an_ip_that_have_not_finished_are_published() {
        let cases = [
            (
                json!({"status": {"podIP": "10.0.0.1", "phase": "Running"}}),
                true,
                true,
            ),
            (json!({"status": {"phase": "Running"}}), true, false),
            (
                json!({"status": {"podIPs": [{"ip": "fd00::1"}]}}),
                true,
                true,
            ),
            (
                json!({"status": {"podIP": "10.0.0.1", "phase": "Succeeded"}}),
                true,
                false,
            ),
            (
                json!({"status": {"podIP": "10.0.0.1", "phase": "Failed"}}),
                true,
                false,
            ),
            (
                json!({"metadata": {"deletionTimestamp": "2024-01-01T00:00:00Z"},
                "status": {"podIP": "10.0.0.1"}}),
                true,
                true,
            ),
            (
                json!({"metadata": {"deletionTimestamp": "2024-01-01T00:00:00Z"},
                "status": {"podIP": "10.0.0.1"}}),
                false,
                false,
            ),
        ];
        for (p, include_terminating, want) in cases {
            assert_eq!(
                should_pod_be_in_endpoints(&pod(p.clone()), include_terminating),
                want,
                "{p}"
            );
        }
    }

    #[test]
    fn hostname_needs_a_subdomain_naming_the_service() {
        let svc: Service =
            serde_json::from_value(json!({"metadata": {"name": "web", "namespace": "a"}})).unwrap();
        let cases = [
            (json!({"hostname": "h", "subdomain": "web"}), "a", Some("h")),
            (json!({"hostname": "h", "subdomain": "other"}), "a", None),
            (json!({"subdomain": "web"}), "a", None),
            (json!({"hostname": "h", "subdomain": "web"}), "b", None),
        ];
        for (spec, ns, want) in cases {
            let mut spec = spec.clone();
            spec["containers"] = json!([]);
            let p = pod(json!({"metadata": {"namespace": ns}, "spec": spec}));
            assert_eq!(hostname_for(&p, &svc).as_deref(), want, "{spec} in {ns}");
        }
    }

    #[test]
    fn selector_requires_every_label() {
        let sel: BTreeMap<String, String> = [("app".to_string(), "web".to_string())].into();
        let with = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(selects(&sel, Some(&with(&[("app", "web"), ("x", "y")]))));
        assert!(!selects(&sel, Some(&with(&[("app", "db")]))));
        assert!(!selects(&sel, None));
        assert!(selects(&BTreeMap::new(), None));
    }
}
