//! The pure core of the EndpointSlice controller (upstream's `endpointslice` reconciler):
//! from a Service, the pods its selector picks, the nodes they run on and the slices the
//! controller already manages for it, the slices to create, update and delete.
//!
//! As upstream: one set of slices per address type the service's `ipFamilies` name; within
//! one, endpoints are grouped by the ports they resolve to (a named `targetPort` may resolve
//! differently per pod), each group in slices of at most `max` endpoints. Existing slices are
//! changed in place: endpoints no longer wanted are dropped and changed ones rewritten, then
//! the slices already being updated are filled (fullest first), then an unchanged slice that
//! the rest fits in, and only then new slices are made. A slice left empty is deleted, a
//! create that would replace a deleted slice becomes an update of it, and a service without
//! any endpoint keeps one empty placeholder slice.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{ObjectReference, Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};

use super::pods::{
    find_port, hostname_for, is_pod_ready, is_service_ip_set, pod_ips, publishes_not_ready,
    should_pod_be_in_endpoints,
};

/// The label naming the service a slice belongs to.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The label naming the controller that manages a slice.
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// This controller's `managed-by` value.
pub const CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";
/// The label every slice (and Endpoints) of a headless service carries.
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";
/// When the change that led to this write happened.
pub const TRIGGER_TIME_ANNOTATION: &str = "endpoints.kubernetes.io/last-change-trigger-time";
/// Upstream's `--max-endpoints-per-slice` default.
pub const DEFAULT_MAX_ENDPOINTS_PER_SLICE: usize = 100;

/// What to do to a service's slices. Created slices have no name (`generateName` is set).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Plan {
    pub create: Vec<EndpointSlice>,
    pub update: Vec<EndpointSlice>,
    pub delete: Vec<EndpointSlice>,
    /// Nodes pods name that are not known: those pods were left out, and the service should
    /// be synced again later (upstream returns an error for a retry).
    pub missing_nodes: Vec<String>,
}

impl Plan {
    /// Nothing to write.
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.update.is_empty() && self.delete.is_empty()
    }
}

/// What the planner observes besides the service, its pods and its slices.
pub struct Observed<'a> {
    /// A node by name: `None` when unknown, else its zone label, if any.
    pub node_zone: &'a dyn Fn(&str) -> Option<Option<String>>,
    /// Endpoints per slice.
    pub max_endpoints: usize,
    /// The value of the trigger-time annotation on written slices (removed when None).
    pub trigger_time: Option<Time>,
    /// The `managed-by` value of the slices made (`CONTROLLER_NAME` here; the mirroring
    /// controller has its own).
    pub controller_name: &'a str,
}

impl std::fmt::Debug for Observed<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observed")
            .field("max_endpoints", &self.max_endpoints)
            .field("trigger_time", &self.trigger_time)
            .field("controller_name", &self.controller_name)
            .finish_non_exhaustive()
    }
}

/// The address types (`IPv4`, `IPv6`) a service's slices use: its `ipFamilies`; without
/// them the family of its ClusterIP, and both for a headless service (upstream's
/// `getAddressTypesForService`).
pub fn address_types(service: &Service) -> BTreeSet<&'static str> {
    let spec = service.spec.as_ref();
    let mut out: BTreeSet<&'static str> = spec
        .and_then(|s| s.ip_families.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|f| match f.as_str() {
            "IPv4" => Some("IPv4"),
            "IPv6" => Some("IPv6"),
            _ => None,
        })
        .collect();
    if !out.is_empty() {
        return out;
    }
    if is_service_ip_set(service) {
        let ip = spec
            .and_then(|s| s.cluster_ip.as_deref())
            .unwrap_or_default();
        out.insert(if ip.contains(':') { "IPv6" } else { "IPv4" });
        return out;
    }
    ["IPv4", "IPv6"].into()
}

/// The ports a pod serves for the service: each service port whose target resolves on the pod
/// (upstream's `getEndpointPorts`); none for a headless service without ports.
pub fn endpoint_ports(service: &Service, pod: &Pod) -> Vec<EndpointPort> {
    let ports = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_deref())
        .unwrap_or_default();
    ports
        .iter()
        .filter_map(|sp| {
            let port = find_port(pod, sp)?;
            Some(EndpointPort {
                name: Some(sp.name.clone().unwrap_or_default()),
                port: Some(port),
                protocol: Some(sp.protocol.clone().unwrap_or_else(|| "TCP".into())),
                app_protocol: sp.app_protocol.clone(),
            })
        })
        .collect()
}

/// A set of ports as a comparable key, order and unset names aside.
type PortKey = Vec<(String, i32, String, String)>;

fn port_key(ports: &[EndpointPort]) -> PortKey {
    let mut key: PortKey = ports
        .iter()
        .map(|p| {
            (
                p.name.clone().unwrap_or_default(),
                p.port.unwrap_or_default(),
                p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                p.app_protocol.clone().unwrap_or_default(),
            )
        })
        .collect();
    key.sort();
    key
}

/// What identifies an endpoint across syncs (upstream's endpoint hash): its addresses,
/// hostname and the pod it points to. Anything else that differs is an update in place.
type EndpointKey = (Vec<String>, String, String, String);

fn endpoint_key(ep: &Endpoint) -> EndpointKey {
    let mut addrs = ep.addresses.clone();
    addrs.sort();
    let target = ep.target_ref.as_ref();
    (
        addrs,
        ep.hostname.clone().unwrap_or_default(),
        target.and_then(|t| t.namespace.clone()).unwrap_or_default(),
        target.and_then(|t| t.name.clone()).unwrap_or_default(),
    )
}

/// The endpoint of a pod for one address type (upstream's `podToEndpoint`): `serving` is the
/// pod's readiness, `terminating` its deletion, and `ready` serving and not terminating, or
/// always with `publishNotReadyAddresses`.
pub fn pod_to_endpoint(
    pod: &Pod,
    zone: Option<String>,
    service: &Service,
    address_type: &str,
) -> Endpoint {
    let serving = is_pod_ready(pod);
    let terminating = pod.metadata.deletion_timestamp.is_some();
    let ready = publishes_not_ready(service) || (serving && !terminating);
    let addresses = pod_ips(pod)
        .into_iter()
        .filter(|ip| ip.is_ipv6() == (address_type == "IPv6"))
        .map(|ip| ip.to_string())
        .collect();
    Endpoint {
        addresses,
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            serving: Some(serving),
            terminating: Some(terminating),
        }),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            namespace: pod.metadata.namespace.clone(),
            name: pod.metadata.name.clone(),
            uid: pod.metadata.uid.clone(),
            ..Default::default()
        }),
        node_name: pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty()),
        zone: zone.filter(|z| !z.is_empty()),
        hostname: hostname_for(pod, service),
        ..Default::default()
    }
}

/// The controller ownerReference a service's slices carry.
pub fn owner_reference(service: &Service) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: "Service".into(),
        name: service.metadata.name.clone().unwrap_or_default(),
        uid: service.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn owned_by(slice: &EndpointSlice, service: &Service) -> bool {
    let uid = service.metadata.uid.as_deref().unwrap_or_default();
    slice
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.uid == uid && o.kind == "Service" && o.api_version == "v1")
}

fn is_reserved_label(key: &str) -> bool {
    key == SERVICE_NAME_LABEL || key == MANAGED_BY_LABEL || key == HEADLESS_LABEL
}

/// A slice's labels (upstream's `setEndpointSliceLabels`): the service's own labels, the
/// headless label for a service without a ClusterIP, the service name and `managed-by`;
/// and whether the slice's non-reserved labels differ from the service's.
pub fn slice_labels(
    current: Option<&BTreeMap<String, String>>,
    service: &Service,
    controller_name: &str,
) -> (BTreeMap<String, String>, bool) {
    let mine: BTreeMap<&String, &String> = current
        .into_iter()
        .flatten()
        .filter(|(k, _)| !is_reserved_label(k))
        .collect();
    let mut labels: BTreeMap<String, String> = service
        .metadata
        .labels
        .iter()
        .flatten()
        .filter(|(k, _)| !is_reserved_label(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let changed =
        mine.len() != labels.len() || mine.iter().any(|(k, v)| labels.get(*k) != Some(*v));
    if !is_service_ip_set(service) {
        labels.insert(HEADLESS_LABEL.into(), String::new());
    }
    labels.insert(
        SERVICE_NAME_LABEL.into(),
        service.metadata.name.clone().unwrap_or_default(),
    );
    labels.insert(MANAGED_BY_LABEL.into(), controller_name.into());
    (labels, changed)
}

/// A new, empty slice of the service (upstream's `newEndpointSlice`).
fn new_slice(
    service: &Service,
    ports: Vec<EndpointPort>,
    address_type: &str,
    controller_name: &str,
) -> EndpointSlice {
    let name = service.metadata.name.clone().unwrap_or_default();
    EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}-")),
            namespace: service.metadata.namespace.clone(),
            owner_references: Some(vec![owner_reference(service)]),
            labels: Some(slice_labels(None, service, controller_name).0),
            ..Default::default()
        },
        address_type: address_type.into(),
        ports: Some(ports),
        endpoints: Vec::new(),
    }
}

/// Whether `existing` is the placeholder `placeholder` describes: same namespace, labels,
/// owners, ports, type and no endpoints (upstream's `placeholderSliceCompare`).
fn is_same_placeholder(existing: &EndpointSlice, placeholder: &EndpointSlice) -> bool {
    let m = (&existing.metadata, &placeholder.metadata);
    m.0.namespace == m.1.namespace
        && m.0.labels.clone().unwrap_or_default() == m.1.labels.clone().unwrap_or_default()
        && m.0.owner_references.clone().unwrap_or_default()
            == m.1.owner_references.clone().unwrap_or_default()
        && existing.ports.clone().unwrap_or_default()
            == placeholder.ports.clone().unwrap_or_default()
        && existing.address_type == placeholder.address_type
        && existing.endpoints.is_empty()
}

/// The slices to create, update and delete for `service`, given the pods its selector picks
/// and the slices `existing` this controller manages for it.
pub fn plan(
    service: &Service,
    pods: &[&Pod],
    existing: &[EndpointSlice],
    obs: &Observed<'_>,
) -> Plan {
    let types = address_types(service);
    let mut out = Plan::default();
    let mut by_type: BTreeMap<&str, Vec<&EndpointSlice>> = BTreeMap::new();
    for slice in existing {
        if types.contains(slice.address_type.as_str()) {
            by_type
                .entry(slice.address_type.as_str())
                .or_default()
                .push(slice);
        } else {
            out.delete.push(slice.clone());
        }
    }
    for address_type in types {
        let slices = by_type.remove(address_type).unwrap_or_default();
        let part = plan_address_type(service, pods, &slices, address_type, obs);
        out.create.extend(part.create);
        out.update.extend(part.update);
        out.delete.extend(part.delete);
        out.missing_nodes.extend(part.missing_nodes);
    }
    out.missing_nodes.sort();
    out.missing_nodes.dedup();
    out
}

fn plan_address_type(
    service: &Service,
    pods: &[&Pod],
    existing: &[&EndpointSlice],
    address_type: &str,
    obs: &Observed<'_>,
) -> Plan {
    let mut out = Plan::default();
    let mut existing_by_ports: BTreeMap<PortKey, Vec<&EndpointSlice>> = BTreeMap::new();
    for slice in existing {
        if owned_by(slice, service) {
            let key = port_key(slice.ports.as_deref().unwrap_or_default());
            existing_by_ports.entry(key).or_default().push(slice);
        } else {
            out.delete.push((*slice).clone());
        }
    }

    let mut desired: BTreeMap<PortKey, (Vec<EndpointPort>, BTreeMap<EndpointKey, Endpoint>)> =
        BTreeMap::new();
    for pod in pods {
        if !should_pod_be_in_endpoints(pod, true) {
            continue;
        }
        let ports = endpoint_ports(service, pod);
        let key = port_key(&ports);
        let group = desired
            .entry(key)
            .or_insert_with(|| (ports, BTreeMap::new()));
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .unwrap_or_default();
        let zone = match (obs.node_zone)(node) {
            Some(zone) => zone,
            // A pod on an unknown node is left out until the node shows up, unless the user
            // asked for every address to be published.
            None if !publishes_not_ready(service) => {
                out.missing_nodes.push(node.to_string());
                continue;
            }
            None => None,
        };
        let ep = pod_to_endpoint(pod, zone, service, address_type);
        if !ep.addresses.is_empty() {
            group.1.insert(endpoint_key(&ep), ep);
        }
    }

    for (key, (ports, endpoints)) in desired.iter() {
        let slices = existing_by_ports.get(key).cloned().unwrap_or_default();
        let part = plan_port_group(
            service,
            &slices,
            endpoints.clone(),
            ports,
            address_type,
            obs,
        );
        out.create.extend(part.create);
        out.update.extend(part.update);
        out.delete.extend(part.delete);
    }
    for (key, slices) in &existing_by_ports {
        if !desired.contains_key(key) {
            out.delete.extend(slices.iter().map(|s| (*s).clone()));
        }
    }

    // A service with no endpoints of this type keeps one empty placeholder slice.
    if existing.len() == out.delete.len() && out.create.is_empty() {
        let placeholder = new_slice(service, Vec::new(), address_type, obs.controller_name);
        if out.delete.len() == 1 && is_same_placeholder(&out.delete[0], &placeholder) {
            out.delete.clear();
        } else {
            out.create.push(placeholder);
        }
    }

    // Rather than create one slice and delete another, rewrite the one being deleted.
    let mut i = 0;
    while i < out.delete.len() && !out.create.is_empty() {
        let doomed = &out.delete[i];
        let reusable = doomed.address_type == address_type && owned_by(doomed, service);
        if let Some(mut slice) = reusable.then(|| out.create.pop()).flatten() {
            let doomed = out.delete.remove(i);
            slice.metadata.name = doomed.metadata.name;
            slice.metadata.generate_name = None;
            slice.metadata.resource_version = doomed.metadata.resource_version;
            slice.metadata.uid = doomed.metadata.uid;
            out.update.push(slice);
        } else {
            i += 1;
        }
    }
    for slice in out.create.iter_mut().chain(out.update.iter_mut()) {
        set_trigger_time(&mut slice.metadata, obs.trigger_time.as_ref());
    }
    out
}

/// Records (or clears) the trigger time on an object about to be written.
pub fn set_trigger_time(meta: &mut ObjectMeta, time: Option<&Time>) {
    let annotations = meta.annotations.get_or_insert_with(Default::default);
    match time {
        Some(t) => {
            annotations.insert(TRIGGER_TIME_ANNOTATION.into(), t.0.to_string());
        }
        None => {
            annotations.remove(TRIGGER_TIME_ANNOTATION);
        }
    }
}

/// Upstream's `reconcileByPortMapping` for the slices of one port set.
fn plan_port_group(
    service: &Service,
    existing: &[&EndpointSlice],
    mut desired: BTreeMap<EndpointKey, Endpoint>,
    ports: &[EndpointPort],
    address_type: &str,
    obs: &Observed<'_>,
) -> Plan {
    let max = obs.max_endpoints.max(1);
    let mut by_name: BTreeMap<String, EndpointSlice> = BTreeMap::new();
    let mut unchanged: BTreeSet<String> = BTreeSet::new();
    let mut to_update: BTreeSet<String> = BTreeSet::new();
    let mut to_delete: BTreeSet<String> = BTreeSet::new();

    // 1. Keep the endpoints still wanted, rewritten where they changed.
    for slice in existing {
        let name = slice.metadata.name.clone().unwrap_or_default();
        let mut kept = Vec::new();
        let mut changed = false;
        for ep in &slice.endpoints {
            if let Some(want) = desired.remove(&endpoint_key(ep)) {
                changed |= want != *ep;
                kept.push(want);
            }
        }
        let (labels, labels_changed) =
            slice_labels(slice.metadata.labels.as_ref(), service, obs.controller_name);
        let mut copy = (*slice).clone();
        if changed || kept.len() != slice.endpoints.len() {
            if kept.is_empty() {
                to_delete.insert(name.clone());
            } else {
                copy.endpoints = kept;
                copy.metadata.labels = Some(labels);
                to_update.insert(name.clone());
            }
        } else if labels_changed {
            copy.metadata.labels = Some(labels);
            to_update.insert(name.clone());
        } else {
            unchanged.insert(name.clone());
        }
        by_name.insert(name, copy);
    }

    // 2. Fill the slices being updated anyway, fullest first.
    if !desired.is_empty() && !to_update.is_empty() {
        let mut order: Vec<&String> = to_update.iter().collect();
        order.sort_by_key(|n| std::cmp::Reverse(by_name[*n].endpoints.len()));
        for name in order {
            let Some(slice) = by_name.get_mut(name) else {
                continue;
            };
            while slice.endpoints.len() < max {
                let Some((_, ep)) = desired.pop_first() else {
                    break;
                };
                slice.endpoints.push(ep);
            }
        }
    }

    // 3. Fit the rest into one unchanged slice if it has room, else into new slices.
    let mut create = Vec::new();
    while !desired.is_empty() {
        let fill = if desired.len() < max {
            slice_to_fill(&unchanged, &by_name, desired.len(), max)
        } else {
            None
        };
        let mut slice = match &fill {
            Some(name) => by_name[name].clone(),
            None => new_slice(service, ports.to_vec(), address_type, obs.controller_name),
        };
        while slice.endpoints.len() < max {
            let Some((_, ep)) = desired.pop_first() else {
                break;
            };
            slice.endpoints.push(ep);
        }
        match fill {
            Some(name) => {
                unchanged.remove(&name);
                to_update.insert(name.clone());
                by_name.insert(name, slice);
            }
            None => create.push(slice),
        }
    }

    Plan {
        create,
        update: to_update
            .iter()
            .filter_map(|n| by_name.get(n).cloned())
            .collect(),
        delete: to_delete
            .iter()
            .filter_map(|n| by_name.get(n).cloned())
            .collect(),
        missing_nodes: Vec::new(),
    }
}

/// The unchanged slice that `n` more endpoints would bring closest to full without
/// overflowing it (upstream's `getSliceToFill`).
fn slice_to_fill(
    unchanged: &BTreeSet<String>,
    by_name: &BTreeMap<String, EndpointSlice>,
    n: usize,
    max: usize,
) -> Option<String> {
    unchanged
        .iter()
        .filter_map(|name| {
            let room = max.checked_sub(n + by_name.get(name)?.endpoints.len())?;
            Some((room, name))
        })
        .filter(|(room, _)| *room < max)
        .min_by_key(|(room, _)| *room)
        .map(|(_, name)| name.clone())
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
