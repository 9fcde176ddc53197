//! `endpointslice-mirroring` (upstream's endpointslice-mirroring-controller): a Service
//! without a selector whose Endpoints the user maintains gets EndpointSlices mirroring it,
//! labelled `endpointslice.kubernetes.io/managed-by: endpointslicemirroring-controller.k8s.io`
//! and owned by the Endpoints, so that slice consumers (kube-proxy, DNS) see custom
//! endpoints too.
//!
//! Keys are Endpoints. As upstream: an Endpoints is mirrored only while a Service of its name
//! exists without a selector, it is not labelled `endpointslice.kubernetes.io/skip-mirror:
//! "true"` and is not a leader-election lock; otherwise its mirrored slices are deleted. Each
//! subset becomes slices of its ports, one set per address family, ready addresses as ready
//! endpoints and not-ready ones as not ready; at most 1000 addresses of a subset are
//! mirrored. The slices carry the Endpoints' labels and annotations (but not the
//! last-applied configuration or trigger time).

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{EndpointAddress, Endpoints, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{DeleteParams, ListParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};

use crate::driver::{drive, on_objects, spawn_cleanup};
use crate::endpointslice::plan::{MANAGED_BY_LABEL, SERVICE_NAME_LABEL, TRIGGER_TIME_ANNOTATION};
use crate::endpointslice::{
    apply_plan, forget_deleted_services, forget_deleted_slices, managed_slices, Plan, SliceTracker,
};
use crate::error::is_not_found;
use crate::{ControllerContext, Error};

pub const NAME: &str = "endpointslice-mirroring";
/// This controller's `managed-by` value.
pub const CONTROLLER_NAME: &str = "endpointslicemirroring-controller.k8s.io";
/// `"true"` on an Endpoints keeps it from being mirrored.
pub const SKIP_MIRROR_LABEL: &str = "endpointslice.kubernetes.io/skip-mirror";
/// Endpoints used as leader-election locks are never mirrored.
const LEADER_ANNOTATION: &str = "control-plane.alpha.kubernetes.io/leader";
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// Upstream's `--mirroring-max-endpoints-per-subset`.
pub const MAX_ENDPOINTS_PER_SUBSET: usize = 1000;
/// Endpoints per mirrored slice.
const MAX_ENDPOINTS_PER_SLICE: usize = 100;

/// Whether `endpoints` is to be mirrored, given the service of its name.
pub fn should_mirror(endpoints: &Endpoints, service: Option<&Service>) -> bool {
    let skip = endpoints
        .labels()
        .get(SKIP_MIRROR_LABEL)
        .is_some_and(|v| v == "true");
    let leader = endpoints.annotations().contains_key(LEADER_ANNOTATION);
    let selectorless = service.is_some_and(|s| {
        s.spec
            .as_ref()
            .and_then(|sp| sp.selector.as_ref())
            .is_none()
    });
    selectorless && !skip && !leader
}

fn endpoint_of(addr: &EndpointAddress, ready: bool) -> Endpoint {
    Endpoint {
        addresses: vec![addr.ip.clone()],
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            serving: Some(ready),
            terminating: Some(false),
        }),
        hostname: addr.hostname.clone().filter(|h| !h.is_empty()),
        node_name: addr.node_name.clone().filter(|n| !n.is_empty()),
        target_ref: addr.target_ref.clone(),
        ..Default::default()
    }
}

/// The slices an Endpoints mirrors to, before names: per subset and address family, its
/// endpoints in slices of at most 100.
pub fn desired_slices(endpoints: &Endpoints) -> Vec<EndpointSlice> {
    let mut groups: BTreeMap<(String, String), (Vec<EndpointPort>, Vec<Endpoint>)> =
        BTreeMap::new();
    for subset in endpoints.subsets.iter().flatten() {
        let ports: Vec<EndpointPort> = subset
            .ports
            .iter()
            .flatten()
            .map(|p| EndpointPort {
                name: Some(p.name.clone().unwrap_or_default()),
                port: Some(p.port),
                protocol: Some(p.protocol.clone().unwrap_or_else(|| "TCP".into())),
                app_protocol: p.app_protocol.clone(),
            })
            .collect();
        let port_key = serde_json::to_string(&ports).unwrap_or_default();
        let ready = subset.addresses.iter().flatten().map(|a| (a, true));
        let not_ready = subset
            .not_ready_addresses
            .iter()
            .flatten()
            .map(|a| (a, false));
        for (addr, is_ready) in ready.chain(not_ready).take(MAX_ENDPOINTS_PER_SUBSET) {
            let Ok(ip) = addr.ip.parse::<std::net::IpAddr>() else {
                continue;
            };
            let family = if ip.is_ipv6() { "IPv6" } else { "IPv4" };
            let group = groups
                .entry((family.to_string(), port_key.clone()))
                .or_insert_with(|| (ports.clone(), Vec::new()));
            group.1.push(endpoint_of(addr, is_ready));
        }
    }
    let mut out = Vec::new();
    for ((family, _), (ports, eps)) in groups {
        for chunk in eps.chunks(MAX_ENDPOINTS_PER_SLICE) {
            out.push(new_slice(endpoints, ports.clone(), &family, chunk.to_vec()));
        }
    }
    out
}

fn new_slice(
    endpoints: &Endpoints,
    ports: Vec<EndpointPort>,
    family: &str,
    eps: Vec<Endpoint>,
) -> EndpointSlice {
    let name = endpoints.name_any();
    let mut labels = endpoints.labels().clone();
    labels.insert(SERVICE_NAME_LABEL.into(), name.clone());
    labels.insert(MANAGED_BY_LABEL.into(), CONTROLLER_NAME.into());
    let mut annotations = endpoints.annotations().clone();
    annotations.remove(LAST_APPLIED);
    annotations.remove(TRIGGER_TIME_ANNOTATION);
    EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}-")),
            namespace: endpoints.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references: Some(vec![OwnerReference {
                api_version: "v1".into(),
                kind: "Endpoints".into(),
                name,
                uid: endpoints.metadata.uid.clone().unwrap_or_default(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..Default::default()
        },
        address_type: family.into(),
        ports: Some(ports),
        endpoints: eps,
    }
}

/// What differs between a slice and the one wanted in its place.
fn same_content(have: &EndpointSlice, want: &EndpointSlice) -> bool {
    have.endpoints == want.endpoints
        && have.ports.clone().unwrap_or_default() == want.ports.clone().unwrap_or_default()
        && have.metadata.labels.clone().unwrap_or_default()
            == want.metadata.labels.clone().unwrap_or_default()
        && have.metadata.annotations.clone().unwrap_or_default()
            == want.metadata.annotations.clone().unwrap_or_default()
        && have.metadata.owner_references == want.metadata.owner_references
}

/// Pairs the existing mirrored slices with the wanted ones of the same address type, in
/// order: equal ones stay, others are rewritten in place, the rest created or deleted.
pub fn plan(wanted: Vec<EndpointSlice>, existing: &[EndpointSlice]) -> Plan {
    let mut out = Plan::default();
    let mut pool: BTreeMap<String, Vec<EndpointSlice>> = BTreeMap::new();
    for s in existing {
        pool.entry(s.address_type.clone())
            .or_default()
            .push(s.clone());
    }
    for want in wanted {
        let candidates = pool.entry(want.address_type.clone()).or_default();
        let exact = candidates.iter().position(|h| same_content(h, &want));
        match exact.map(|i| candidates.remove(i)) {
            Some(_) => {}
            None if !candidates.is_empty() => {
                let have = candidates.remove(0);
                let mut next = want;
                next.metadata.name = have.metadata.name;
                next.metadata.generate_name = None;
                next.metadata.resource_version = have.metadata.resource_version;
                out.update.push(next);
            }
            None => out.create.push(want),
        }
    }
    out.delete = pool.into_values().flatten().collect();
    out
}

struct State {
    client: Client,
    services: Store<Service>,
    slices: Store<EndpointSlice>,
    tracker: Arc<SliceTracker>,
}

/// Runs the controller until its watches end.
pub async fn run(client: Client, ctx: Arc<ControllerContext>) -> Result<(), Error> {
    let (endpoints, ep_events) = ctx.informer::<Endpoints>(NAME, &client).await;
    let (services, svc_events) = ctx.informer::<Service>(NAME, &client).await;
    let (slices, slice_events) = ctx.informer::<EndpointSlice>(NAME, &client).await;
    // As upstream's `HandleDeletion` and `DeleteService`: a deleted slice is no longer
    // expected, a deleted Endpoints' writes are forgotten.
    let tracker = Arc::new(SliceTracker::default());
    let slice_events = forget_deleted_slices(slice_events, tracker.clone());
    let ep_events = forget_deleted_services(ep_events, tracker.clone());
    // A deleted Endpoints' slices go with it (its key can no longer be reconciled).
    let deleter = client.clone();
    let ep_events = ep_events
        .inspect(move |ev| {
            if let watcher::Event::Delete(ep) = ev {
                let ns = ep.namespace().unwrap_or_default();
                let name = ep.name_any();
                let client = deleter.clone();
                spawn_cleanup(NAME, format!("mirrored slices of {ns}/{name}"), move || {
                    let (client, ns, name) = (client.clone(), ns.clone(), name.clone());
                    async move { delete_mirrored(&client, &ns, &name).await }
                });
            }
        })
        .boxed();
    let triggers = vec![
        on_objects(ep_events, false, |e: &Endpoints| {
            Some(ObjectRef::from_obj(e))
        }),
        on_objects(svc_events, true, |s: &Service| {
            Some(ObjectRef::new(&s.name_any()).within(&s.namespace()?))
        }),
        on_objects(slice_events, true, |s: &EndpointSlice| {
            let labels = s.metadata.labels.as_ref()?;
            if labels.get(MANAGED_BY_LABEL).map(String::as_str) != Some(CONTROLLER_NAME) {
                return None;
            }
            let name = labels.get(SERVICE_NAME_LABEL)?;
            Some(ObjectRef::new(name).within(s.metadata.namespace.as_deref()?))
        }),
    ];
    let state = Arc::new(State {
        client,
        services,
        slices,
        tracker,
    });
    drive(NAME, &ctx, endpoints, triggers, state, reconcile).await
}

async fn delete_mirrored(client: &Client, ns: &str, name: &str) -> Result<(), kube::Error> {
    // One by one: upstream's role grants `delete`, not `deletecollection`.
    let api = Api::<EndpointSlice>::namespaced(client.clone(), ns);
    let lp = ListParams::default().labels(&format!(
        "{SERVICE_NAME_LABEL}={name},{MANAGED_BY_LABEL}={CONTROLLER_NAME}"
    ));
    for slice in api.list(&lp).await?.items {
        match api
            .delete(&slice.name_any(), &DeleteParams::default())
            .await
        {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn reconcile(endpoints: Arc<Endpoints>, st: Arc<State>) -> Result<Action, Error> {
    if st.services.wait_until_ready().await.is_err() || st.slices.wait_until_ready().await.is_err()
    {
        return Err(Error::CacheStopped(NAME));
    }
    let ns = endpoints.namespace().unwrap_or_default();
    let name = endpoints.name_any();
    let key = format!("{ns}/{name}");
    let in_ns: Vec<Arc<EndpointSlice>> = st
        .slices
        .state()
        .into_iter()
        .filter(|s| s.metadata.namespace.as_deref() == Some(ns.as_str()))
        .collect();
    if st.tracker.is_stale(&key, &in_ns) {
        return Ok(Action::requeue(std::time::Duration::from_secs(1)));
    }
    let service = st.services.get(&ObjectRef::new(&name).within(&ns));
    let existing = managed_slices(&st.slices, &ns, &name, CONTROLLER_NAME);
    let wanted = if should_mirror(&endpoints, service.as_deref()) {
        desired_slices(&endpoints)
    } else {
        Vec::new()
    };
    let plan = plan(wanted, &existing);
    let api = Api::<EndpointSlice>::namespaced(st.client.clone(), &ns);
    let deleting = endpoints.metadata.deletion_timestamp.is_some();
    if !apply_plan(&api, &st.tracker, &key, deleting, plan).await? {
        return Ok(Action::requeue(std::time::Duration::from_secs(1)));
    }
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn endpoints(labels: serde_json::Value) -> Endpoints {
        serde_json::from_value(
            json!({"metadata": {"name": "ext", "namespace": "a", "uid": "ep-uid",
            "labels": labels, "annotations": {LAST_APPLIED: "{}", "note": "kept"}},
            "subsets": [{"addresses": [{"ip": "192.0.2.1"}, {"ip": "2001:db8::1"}],
                "notReadyAddresses": [{"ip": "192.0.2.2"}],
                "ports": [{"name": "http", "port": 8080}]}]}),
        )
        .expect("endpoints")
    }

    fn service(selector: Option<serde_json::Value>) -> Service {
        serde_json::from_value(json!({"metadata": {"name": "ext", "namespace": "a"},
            "spec": {"selector": selector}}))
        .expect("service")
    }

    #[test]
    fn only_selectorless_services_without_skip_mirror_are_mirrored() {
        let cases = [
            (json!({}), Some(service(None)), true),
            (json!({}), Some(service(Some(json!({"app": "x"})))), false),
            (json!({}), None, false),
            (
                json!({SKIP_MIRROR_LABEL: "true"}),
                Some(service(None)),
                false,
            ),
            (
                json!({SKIP_MIRROR_LABEL: "false"}),
                Some(service(None)),
                true,
            ),
        ];
        for (labels, svc, want) in cases {
            assert_eq!(
                should_mirror(&endpoints(labels.clone()), svc.as_ref()),
                want,
                "{labels}"
            );
        }
    }

    #[test]
    fn subsets_become_one_slice_per_family_with_readiness() {
        let slices = desired_slices(&endpoints(json!({"team": "x"})));
        let got: Vec<(String, Vec<(String, bool)>)> = slices
            .iter()
            .map(|s| {
                let eps = s
                    .endpoints
                    .iter()
                    .map(|e| {
                        let ready = e
                            .conditions
                            .as_ref()
                            .and_then(|c| c.ready)
                            .unwrap_or_default();
                        (e.addresses[0].clone(), ready)
                    })
                    .collect();
                (s.address_type.clone(), eps)
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "IPv4".to_string(),
                    vec![
                        ("192.0.2.1".to_string(), true),
                        ("192.0.2.2".to_string(), false)
                    ]
                ),
                ("IPv6".to_string(), vec![("2001:db8::1".to_string(), true)]),
            ]
        );
        let meta = &slices[0].metadata;
        let labels = meta.labels.clone().unwrap_or_default();
        assert_eq!(labels[MANAGED_BY_LABEL], CONTROLLER_NAME);
        assert_eq!(labels[SERVICE_NAME_LABEL], "ext");
        assert_eq!(labels["team"], "x");
        let ann = meta.annotations.clone().unwrap_or_default();
        assert!(!ann.contains_key(LAST_APPLIED));
        assert_eq!(ann["note"], "kept");
        assert_eq!(meta.owner_references.as_ref().unwrap()[0].kind, "Endpoints");
    }

    #[test]
    fn existing_slices_are_kept_rewritten_or_deleted() {
        let wanted = desired_slices(&endpoints(json!({})));
        let mut existing = wanted.clone();
        for (i, s) in existing.iter_mut().enumerate() {
            s.metadata.name = Some(format!("ext-{i}"));
        }
        assert!(plan(wanted.clone(), &existing).is_empty());
        let fewer = vec![wanted[0].clone()];
        let p = plan(fewer, &existing);
        assert_eq!(p.delete.len(), 1);
        assert_eq!(p.delete[0].address_type, "IPv6");
        let mut changed = wanted[0].clone();
        changed.endpoints.pop();
        let p = plan(vec![changed], &existing[..1]);
        assert_eq!(p.update.len(), 1);
        assert_eq!(p.update[0].metadata.name.as_deref(), Some("ext-0"));
    }
}
