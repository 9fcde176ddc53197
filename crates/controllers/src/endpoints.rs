//! `endpoint` (upstream's endpoints-controller): every Service with a selector has a v1
//! Endpoints object of the same name listing the pods it selects, which older clients and
//! kube-proxy's fallback read.
//!
//! As upstream: each selected pod with an IP of the service's family is an address (with its
//! node, target pod and, when its `hostname`/`subdomain` name the service, its hostname),
//! ready when the pod is Ready or the service publishes not-ready addresses, else in
//! `notReadyAddresses`; terminating pods are left out unless the service publishes not-ready
//! addresses. Each service port resolves per pod (named `targetPort`s against container
//! ports) and subsets are repacked so that ports served by the same addresses share one
//! subset. More than 1000 addresses are truncated (ready ones kept first) and marked
//! `endpoints.kubernetes.io/over-capacity: truncated`. The Endpoints carries the service's
//! labels, plus `service.kubernetes.io/headless` for a headless service, and
//! `endpoints.kubernetes.io/last-change-trigger-time`. Services without a selector are left
//! alone (their Endpoints are the user's), and a deleted service's Endpoints is deleted.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{DeleteParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};

use crate::driver::{drive, on_objects, spawn_cleanup};
use crate::endpointslice::plan::{set_trigger_time, HEADLESS_LABEL};
use crate::endpointslice::pods::{
    find_port, hostname_for, is_headless, is_pod_ready, pod_ips, publishes_not_ready,
    selected_pods, selects, should_pod_be_in_endpoints, trigger_time,
};
use crate::error::{is_already_exists, is_conflict, is_namespace_terminating, is_not_found};
use crate::{ControllerContext, Error};

pub const NAME: &str = "endpoint";

/// Addresses one Endpoints object holds at most (upstream's `maxCapacity`).
pub const MAX_CAPACITY: usize = 1000;
/// Set to `truncated` on an Endpoints that lists only some of its addresses.
pub const OVER_CAPACITY_ANNOTATION: &str = "endpoints.kubernetes.io/over-capacity";

/// The address of a pod for a service: its IP of the service's (first) family, or its
/// primary IP for a headless service without families (upstream's
/// `podToEndpointAddressForService`). None when the pod has no IP of that family.
pub fn pod_address(service: &Service, pod: &Pod) -> Option<EndpointAddress> {
    let spec = service.spec.as_ref();
    let family = spec
        .and_then(|s| s.ip_families.as_ref())
        .and_then(|f| f.first().cloned())
        .or_else(|| {
            let ip = spec.and_then(|s| s.cluster_ip.as_deref())?;
            (!ip.is_empty() && ip != "None")
                .then(|| if ip.contains(':') { "IPv6" } else { "IPv4" }.to_string())
        });
    let ips = pod_ips(pod);
    let ip = match family.as_deref() {
        Some(f) => ips.into_iter().find(|ip| ip.is_ipv6() == (f == "IPv6"))?,
        None => ips.into_iter().next()?,
    };
    Some(EndpointAddress {
        ip: ip.to_string(),
        hostname: hostname_for(pod, service),
        node_name: pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty()),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            namespace: pod.metadata.namespace.clone(),
            name: pod.metadata.name.clone(),
            uid: pod.metadata.uid.clone(),
            ..Default::default()
        }),
    })
}

/// A port as a sortable key; the sentinel `None` stands for "no ports" (a headless service
/// without ports).
type PortKey = Option<(String, i32, String, String)>;

fn port_key(p: &EndpointPort) -> PortKey {
    Some((
        p.name.clone().unwrap_or_default(),
        p.port,
        p.protocol.clone().unwrap_or_else(|| "TCP".into()),
        p.app_protocol.clone().unwrap_or_default(),
    ))
}

/// An address in a port's set: (ip, pod uid) identify it, readiness is part of the set.
type AddrKey = (String, String, bool);

fn addr_key(a: &EndpointAddress, ready: bool) -> AddrKey {
    let uid = a
        .target_ref
        .as_ref()
        .and_then(|t| t.uid.clone())
        .unwrap_or_default();
    (a.ip.clone(), uid, ready)
}

/// The subsets of the service's Endpoints from the pods its selector picks (upstream's
/// `syncService` with `RepackSubsets` and `SortSubsets`).
pub fn subsets(service: &Service, pods: &[&Pod]) -> Vec<EndpointSubset> {
    let tolerate_unready = publishes_not_ready(service);
    let svc_ports = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .unwrap_or_default();
    // Each port (or the no-ports sentinel) and the addresses serving it.
    let mut by_port: BTreeMap<PortKey, (Option<EndpointPort>, BTreeMap<AddrKey, EndpointAddress>)> =
        BTreeMap::new();
    for pod in pods {
        if !should_pod_be_in_endpoints(pod, tolerate_unready) {
            continue;
        }
        let Some(addr) = pod_address(service, pod) else {
            continue;
        };
        let ready = tolerate_unready || is_pod_ready(pod);
        let key = addr_key(&addr, ready);
        if svc_ports.is_empty() && is_headless(service) {
            let entry = by_port.entry(None).or_default();
            entry.1.insert(key, addr);
            continue;
        }
        for sp in &svc_ports {
            let Some(port) = find_port(pod, sp) else {
                continue;
            };
            let ep = EndpointPort {
                name: Some(sp.name.clone().unwrap_or_default()).filter(|n| !n.is_empty()),
                port,
                protocol: Some(sp.protocol.clone().unwrap_or_else(|| "TCP".into())),
                app_protocol: sp.app_protocol.clone(),
            };
            let entry = by_port
                .entry(port_key(&ep))
                .or_insert_with(|| (Some(ep), BTreeMap::new()));
            entry.1.insert(key.clone(), addr.clone());
        }
    }
    // Ports served by the same set of addresses share a subset.
    type Addresses = Vec<(AddrKey, EndpointAddress)>;
    let mut by_addrs: BTreeMap<Vec<AddrKey>, (Vec<EndpointPort>, Addresses)> = BTreeMap::new();
    for (_, (port, addrs)) in by_port {
        let keys: Vec<AddrKey> = addrs.keys().cloned().collect();
        let entry = by_addrs
            .entry(keys)
            .or_insert_with(|| (Vec::new(), addrs.into_iter().collect()));
        entry.0.extend(port);
    }
    by_addrs
        .into_values()
        .map(|(ports, addrs)| {
            let (ready, not_ready): (Vec<_>, Vec<_>) = addrs.into_iter().partition(|(k, _)| k.2);
            let strip = |v: Vec<(AddrKey, EndpointAddress)>| -> Option<Vec<EndpointAddress>> {
                let v: Vec<EndpointAddress> = v.into_iter().map(|(_, a)| a).collect();
                (!v.is_empty()).then_some(v)
            };
            EndpointSubset {
                addresses: strip(ready),
                not_ready_addresses: strip(not_ready),
                ports: (!ports.is_empty()).then_some(ports),
            }
        })
        .collect()
}

/// Cuts the subsets down to [`MAX_CAPACITY`] addresses, as upstream's `truncateEndpoints`:
/// not-ready addresses go first; each subset keeps a share proportional to its size.
/// Whether anything was cut.
pub fn truncate(subsets: &mut [EndpointSubset]) -> bool {
    let len = |v: &Option<Vec<EndpointAddress>>| v.as_ref().map_or(0, Vec::len);
    let ready: usize = subsets.iter().map(|s| len(&s.addresses)).sum();
    let not_ready: usize = subsets.iter().map(|s| len(&s.not_ready_addresses)).sum();
    if ready + not_ready <= MAX_CAPACITY {
        return false;
    }
    let truncate_ready = ready > MAX_CAPACITY;
    let (max, total) = if truncate_ready {
        (MAX_CAPACITY, ready)
    } else {
        (MAX_CAPACITY - ready, not_ready)
    };
    let mut room = max;
    for s in subsets.iter_mut() {
        let n = if truncate_ready {
            len(&s.addresses)
        } else {
            len(&s.not_ready_addresses)
        };
        let share = (n * max).div_ceil(total.max(1)).min(room);
        let target = if truncate_ready {
            s.not_ready_addresses = None;
            &mut s.addresses
        } else {
            &mut s.not_ready_addresses
        };
        if let Some(v) = target.as_mut() {
            v.truncate(share);
            room -= v.len();
        }
    }
    true
}

/// The labels of a service's Endpoints: the service's, with the headless label for a
/// headless service.
fn endpoints_labels(service: &Service) -> BTreeMap<String, String> {
    let mut labels = service.metadata.labels.clone().unwrap_or_default();
    if is_headless(service) {
        labels.insert(HEADLESS_LABEL.into(), String::new());
    } else {
        labels.remove(HEADLESS_LABEL);
    }
    labels
}

/// The Endpoints to write for `service` given the `current` one, or None when it is up to
/// date (same subsets, labels and capacity mark).
pub fn desired(
    service: &Service,
    pods: &[&Pod],
    current: Option<&Endpoints>,
    trigger: Option<&Time>,
) -> Option<Endpoints> {
    let mut subsets = subsets(service, pods);
    let truncated = truncate(&mut subsets);
    let labels = endpoints_labels(service);
    if let Some(cur) = current {
        let cur_subsets = cur.subsets.clone().unwrap_or_default();
        let cur_truncated = cur
            .annotations()
            .get(OVER_CAPACITY_ANNOTATION)
            .is_some_and(|v| v == "truncated");
        let cur_labels = cur.metadata.labels.clone().unwrap_or_default();
        if cur_subsets == subsets && cur_labels == labels && cur_truncated == truncated {
            return None;
        }
    }
    let mut meta = match current {
        Some(cur) => cur.metadata.clone(),
        None => ObjectMeta {
            name: service.metadata.name.clone(),
            namespace: service.metadata.namespace.clone(),
            ..Default::default()
        },
    };
    meta.labels = Some(labels);
    set_trigger_time(&mut meta, trigger);
    let annotations = meta.annotations.get_or_insert_with(Default::default);
    if truncated {
        annotations.insert(OVER_CAPACITY_ANNOTATION.into(), "truncated".into());
    } else {
        annotations.remove(OVER_CAPACITY_ANNOTATION);
    }
    Some(Endpoints {
        metadata: meta,
        subsets: (!subsets.is_empty()).then_some(subsets),
    })
}

struct State {
    client: Client,
    pods: Store<Pod>,
    endpoints: Store<Endpoints>,
}

/// Runs the controller until its watches end.
pub async fn run(client: Client, ctx: Arc<ControllerContext>) -> Result<(), Error> {
    let (services, svc_events) = ctx.informer::<Service>(NAME, &client).await;
    let (pods, pod_events) = ctx.informer::<Pod>(NAME, &client).await;
    let (endpoints, ep_events) = ctx.informer::<Endpoints>(NAME, &client).await;
    // A deleted service's Endpoints goes with it; the key alone cannot be reconciled, since
    // the service has left the cache, so the delete happens as the event passes.
    let deleter = client.clone();
    let svc_events = svc_events
        .inspect(move |ev| {
            if let watcher::Event::Delete(svc) = ev {
                let ns = svc.namespace().unwrap_or_default();
                let name = svc.name_any();
                let api = Api::<Endpoints>::namespaced(deleter.clone(), &ns);
                spawn_cleanup(NAME, format!("endpoints {ns}/{name}"), move || {
                    let (api, name) = (api.clone(), name.clone());
                    async move {
                        api.delete(&name, &DeleteParams::default()).await?;
                        Ok(())
                    }
                });
            }
        })
        .boxed();
    let svc_store = services.clone();
    let triggers = vec![
        on_objects(svc_events, false, |s: &Service| {
            Some(ObjectRef::from_obj(s))
        }),
        // A pod's services: those selecting it now, and those whose Endpoints list it.
        on_objects(pod_events, true, {
            let endpoints = endpoints.clone();
            move |p: &Pod| pod_services(p, &svc_store, &endpoints)
        }),
        on_objects(ep_events, true, |e: &Endpoints| {
            Some(ObjectRef::new(&e.name_any()).within(&e.namespace()?))
        }),
    ];
    let state = Arc::new(State {
        client,
        pods,
        endpoints,
    });
    drive(NAME, &ctx, services, triggers, state, reconcile).await
}

fn pod_services(
    pod: &Pod,
    services: &Store<Service>,
    endpoints: &Store<Endpoints>,
) -> Vec<ObjectRef<Service>> {
    let ns = pod.namespace().unwrap_or_default();
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let mut keys: BTreeSet<String> = services
        .state()
        .into_iter()
        .filter(|s| s.metadata.namespace.as_deref() == Some(ns.as_str()))
        .filter(|s| {
            s.spec
                .as_ref()
                .and_then(|sp| sp.selector.as_ref())
                .is_some_and(|sel| selects(sel, pod.metadata.labels.as_ref()))
        })
        .map(|s| s.name_any())
        .collect();
    for ep in endpoints.state() {
        if ep.metadata.namespace.as_deref() != Some(ns.as_str()) {
            continue;
        }
        let lists = ep.subsets.iter().flatten().any(|s| {
            s.addresses
                .iter()
                .chain(s.not_ready_addresses.iter())
                .flatten()
                .any(|a| a.target_ref.as_ref().and_then(|t| t.uid.as_deref()) == Some(uid.as_str()))
        });
        if lists {
            keys.insert(ep.name_any());
        }
    }
    keys.into_iter()
        .map(|name| ObjectRef::new(&name).within(&ns))
        .collect()
}

async fn reconcile(service: Arc<Service>, st: Arc<State>) -> Result<Action, Error> {
    if st.pods.wait_until_ready().await.is_err() || st.endpoints.wait_until_ready().await.is_err() {
        return Err(Error::CacheStopped(NAME));
    }
    if service
        .spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .is_none()
    {
        return Ok(Action::await_change());
    }
    let ns = service.namespace().unwrap_or_default();
    let name = service.name_any();
    let all = st.pods.state();
    let pods = selected_pods(&service, all.iter().map(|p| p.as_ref()));
    let current = st.endpoints.get(&ObjectRef::new(&name).within(&ns));
    let trigger = trigger_time(&service, &pods);
    let Some(want) = desired(&service, &pods, current.as_deref(), trigger.as_ref()) else {
        return Ok(Action::await_change());
    };
    let api = Api::<Endpoints>::namespaced(st.client.clone(), &ns);
    let pp = PostParams::default();
    let res = match current {
        Some(_) => api.replace(&name, &pp, &want).await.map(drop),
        None => api.create(&pp, &want).await.map(drop),
    };
    match res {
        Ok(()) => Ok(Action::await_change()),
        // The cache was behind: the event of the newer object queues the service again.
        Err(e) if is_conflict(&e) || is_already_exists(&e) || is_not_found(&e) => {
            Ok(Action::requeue(std::time::Duration::from_secs(1)))
        }
        Err(e) if is_namespace_terminating(&e) => Ok(Action::await_change()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn service(spec: Value) -> Service {
        serde_json::from_value(json!({"metadata": {"name": "web", "namespace": "a",
            "labels": {"team": "x"}}, "spec": spec}))
        .expect("service")
    }

    fn pod(name: &str, ip: &str, port: i32, ready: bool) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "a", "uid": format!("uid-{name}")},
            "spec": {"nodeName": "n1", "containers": [{"name": "c",
                "ports": [{"name": "http", "containerPort": port}]}]},
            "status": {"phase": "Running", "podIP": ip,
                "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}}))
        .expect("pod")
    }

    /// Each subset as (ports, ready IPs, not-ready IPs).
    fn shape(subsets: &[EndpointSubset]) -> Vec<(Vec<i32>, Vec<String>, Vec<String>)> {
        let ips = |v: &Option<Vec<EndpointAddress>>| -> Vec<String> {
            v.iter().flatten().map(|a| a.ip.clone()).collect()
        };
        subsets
            .iter()
            .map(|s| {
                (
                    s.ports.iter().flatten().map(|p| p.port).collect(),
                    ips(&s.addresses),
                    ips(&s.not_ready_addresses),
                )
            })
            .collect()
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn subsets_group_addresses_by_resolved_ports_and_readiness() {
        let named = json!({"selector": {"app": "web"}, "clusterIP": "10.96.0.1",
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}]});
        let mut leaving = pod("t", "10.0.0.4", 8080, true);
        leaving.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        let pods = [
            pod("a", "10.0.0.1", 8080, true),
            pod("b", "10.0.0.2", 8080, false),
            pod("c", "10.0.0.3", 9090, true),
            leaving,
        ];
        let refs: Vec<&Pod> = pods.iter().collect();
        let cases = [
            (
                named.clone(),
                vec![
                    (vec![8080], s(&["10.0.0.1"]), s(&["10.0.0.2"])),
                    (vec![9090], s(&["10.0.0.3"]), s(&[])),
                ],
            ),
            (
                {
                    let mut v = named.clone();
                    v["publishNotReadyAddresses"] = json!(true);
                    v
                },
                vec![
                    (vec![8080], s(&["10.0.0.1", "10.0.0.2", "10.0.0.4"]), s(&[])),
                    (vec![9090], s(&["10.0.0.3"]), s(&[])),
                ],
            ),
            (
                json!({"selector": {"app": "web"}, "clusterIP": "None"}),
                vec![(vec![], s(&["10.0.0.1", "10.0.0.3"]), s(&["10.0.0.2"]))],
            ),
        ];
        for (spec, want) in cases {
            let mut got = shape(&subsets(&service(spec.clone()), &refs));
            got.sort();
            assert_eq!(got, want, "{spec}");
        }
    }

    #[test]
    fn more_than_a_thousand_addresses_are_truncated_keeping_ready_ones() {
        let addrs = |n: usize, p: &str| -> Option<Vec<EndpointAddress>> {
            Some(
                (0..n)
                    .map(|i| EndpointAddress {
                        ip: format!("{p}{i}"),
                        ..Default::default()
                    })
                    .collect(),
            )
        };
        let count = |subsets: &[EndpointSubset]| -> (usize, usize) {
            let n = |v: &Option<Vec<EndpointAddress>>| v.as_ref().map_or(0, Vec::len);
            (
                subsets.iter().map(|s| n(&s.addresses)).sum(),
                subsets.iter().map(|s| n(&s.not_ready_addresses)).sum(),
            )
        };
        let cases = [
            ((600, 300), false, (600, 300)),
            ((600, 600), true, (600, 400)),
            ((1200, 50), true, (1000, 0)),
        ];
        for ((ready, not_ready), cut, want) in cases {
            let mut subsets = vec![
                EndpointSubset {
                    addresses: addrs(ready / 2, "a"),
                    not_ready_addresses: addrs(not_ready / 2, "b"),
                    ports: None,
                },
                EndpointSubset {
                    addresses: addrs(ready - ready / 2, "c"),
                    not_ready_addresses: addrs(not_ready - not_ready / 2, "d"),
                    ports: None,
                },
            ];
            assert_eq!(truncate(&mut subsets), cut);
            assert_eq!(count(&subsets), want, "{ready}+{not_ready}");
        }
    }

    #[test]
    fn endpoints_carry_service_labels_headless_mark_and_skip_needless_writes() {
        let headless = service(json!({"selector": {"app": "web"}, "clusterIP": "None"}));
        let p = pod("a", "10.0.0.1", 8080, true);
        let made = desired(&headless, &[&p], None, None).expect("create");
        let labels = made.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels.get(HEADLESS_LABEL).map(String::as_str), Some(""));
        assert_eq!(labels["team"], "x");
        assert_eq!(made.metadata.name.as_deref(), Some("web"));
        assert!(desired(&headless, &[&p], Some(&made), None).is_none());
        let changed = desired(&headless, &[], Some(&made), None).expect("pod went away");
        assert_eq!(changed.subsets, None);
    }
}
