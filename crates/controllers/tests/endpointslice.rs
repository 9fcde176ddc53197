//! The EndpointSlice controllers against a real API server: `endpointslice` for selector
//! services and `endpointslice-mirroring` for selectorless ones with a custom Endpoints. The
//! test plays the kubelet: pods are bound at creation and get their IP and readiness through
//! `pods/status`.

mod common;

use std::collections::BTreeMap;

use common::{cluster, start, wait_for, TestResult, CA_PEM};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::Api;
use rkube_controllers::ControllerContext;
use serde_json::{json, Value};

use common::services::{create_pod, create_service, prepare, set_status, NS};

async fn running_pod(
    client: &kube::Client,
    name: &str,
    app: &str,
    ip: &str,
    ready: bool,
) -> TestResult {
    create_pod(client, name, app, 8080).await?;
    set_status(client, name, ip, ready).await
}

/// The slices of service `svc`.
async fn slices_of(client: &kube::Client, svc: &str) -> Vec<EndpointSlice> {
    let lp = ListParams::default().labels(&format!("kubernetes.io/service-name={svc}"));
    Api::<EndpointSlice>::namespaced(client.clone(), NS)
        .list(&lp)
        .await
        .map(|l| l.items)
        .unwrap_or_default()
}

/// Address to (ready, serving, terminating) over every slice of `svc`.
type Conditions = BTreeMap<String, (bool, bool, bool)>;

fn conditions(slices: &[EndpointSlice]) -> Conditions {
    slices
        .iter()
        .flat_map(|s| s.endpoints.iter())
        .flat_map(|e| {
            let c = e.conditions.clone().unwrap_or_default();
            let triple = (
                c.ready.unwrap_or_default(),
                c.serving.unwrap_or_default(),
                c.terminating.unwrap_or_default(),
            );
            e.addresses.iter().map(move |a| (a.clone(), triple))
        })
        .collect()
}

/// Waits until the slices of `svc` satisfy `check`, returning them.
async fn slices_where(
    client: &kube::Client,
    svc: &str,
    what: &str,
    check: impl Fn(&[EndpointSlice]) -> bool,
) -> Vec<EndpointSlice> {
    let check = &check;
    wait_for(what, || async move {
        let slices = slices_of(client, svc).await;
        check(&slices).then_some(slices)
    })
    .await
}

fn web_service() -> Value {
    // No ClusterIP allocator runs here: give the service its address and family.
    json!({"selector": {"app": "web"}, "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
        "ipFamilies": ["IPv4"],
        "ports": [{"name": "http", "port": 80, "targetPort": "http"}]})
}

#[tokio::test]
async fn selector_service_lists_ready_unready_and_terminating_pods() -> TestResult {
    let c = cluster().await?;
    let _ctl = start(
        &c,
        ControllerContext::new(CA_PEM),
        "serviceaccount,endpointslice",
    );
    prepare(&c.client).await?;
    create_service(&c.client, "web", web_service()).await?;
    running_pod(&c.client, "ready", "web", "10.1.0.1", true).await?;
    running_pod(&c.client, "unready", "web", "10.1.0.2", false).await?;
    running_pod(&c.client, "leaving", "web", "10.1.0.3", true).await?;
    running_pod(&c.client, "other", "db", "10.1.0.9", true).await?;
    let dp = DeleteParams {
        grace_period_seconds: Some(30),
        ..Default::default()
    };
    Api::<Pod>::namespaced(c.client.clone(), NS)
        .delete("leaving", &dp)
        .await?;

    let want: Conditions = [
        ("10.1.0.1".to_string(), (true, true, false)),
        ("10.1.0.2".to_string(), (false, false, false)),
        ("10.1.0.3".to_string(), (false, true, true)),
    ]
    .into();
    let slices = slices_where(&c.client, "web", "a slice with the three web pods", |s| {
        conditions(s) == want
    })
    .await;
    assert_eq!(slices.len(), 1);
    let slice = &slices[0];
    let labels = slice.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels["endpointslice.kubernetes.io/managed-by"],
        "endpointslice-controller.k8s.io"
    );
    assert_eq!(slice.address_type, "IPv4");
    let owner = &slice.metadata.owner_references.clone().unwrap_or_default()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("Service", "web", Some(true))
    );
    let ports = slice.ports.clone().unwrap_or_default();
    assert_eq!(ports[0].port, Some(8080));
    let ep = slice
        .endpoints
        .iter()
        .find(|e| e.addresses == ["10.1.0.1"])
        .expect("ready pod");
    assert_eq!(ep.node_name.as_deref(), Some("n1"));
    assert_eq!(ep.zone.as_deref(), Some("z1"));
    assert_eq!(
        ep.target_ref.as_ref().and_then(|t| t.name.as_deref()),
        Some("ready")
    );
    Ok(())
}

#[tokio::test]
async fn named_target_port_resolves_per_pod() -> TestResult {
    let c = cluster().await?;
    let _ctl = start(
        &c,
        ControllerContext::new(CA_PEM),
        "serviceaccount,endpointslice",
    );
    prepare(&c.client).await?;
    create_service(&c.client, "web", web_service()).await?;
    create_pod(&c.client, "a", "web", 8080).await?;
    set_status(&c.client, "a", "10.1.0.1", true).await?;
    create_pod(&c.client, "b", "web", 9090).await?;
    set_status(&c.client, "b", "10.1.0.2", true).await?;
    let slices = slices_where(&c.client, "web", "one slice per resolved port", |s| {
        s.len() == 2 && s.iter().all(|x| x.endpoints.len() == 1)
    })
    .await;
    let mut got: Vec<(i32, String)> = slices
        .iter()
        .map(|s| {
            let port = s.ports.clone().unwrap_or_default()[0]
                .port
                .unwrap_or_default();
            (port, s.endpoints[0].addresses[0].clone())
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            (8080, "10.1.0.1".to_string()),
            (9090, "10.1.0.2".to_string())
        ]
    );
    Ok(())
}

#[tokio::test]
async fn one_hundred_fifty_pods_split_into_two_slices_of_at_most_one_hundred() -> TestResult {
    let c = cluster().await?;
    let _ctl = start(
        &c,
        ControllerContext::new(CA_PEM),
        "serviceaccount,endpointslice",
    );
    prepare(&c.client).await?;
    create_service(&c.client, "web", web_service()).await?;
    for i in 0..150 {
        running_pod(
            &c.client,
            &format!("p{i}"),
            "web",
            &format!("10.2.{}.{}", i / 100, i % 100 + 1),
            true,
        )
        .await?;
    }
    let slices = slices_where(&c.client, "web", "150 endpoints", |s| {
        s.iter().map(|x| x.endpoints.len()).sum::<usize>() == 150
    })
    .await;
    let mut sizes: Vec<usize> = slices.iter().map(|s| s.endpoints.len()).collect();
    sizes.sort();
    assert_eq!(sizes, [50, 100]);
    Ok(())
}

#[tokio::test]
async fn pod_that_stops_matching_leaves_the_slice() -> TestResult {
    let c = cluster().await?;
    let _ctl = start(
        &c,
        ControllerContext::new(CA_PEM),
        "serviceaccount,endpointslice",
    );
    prepare(&c.client).await?;
    create_service(&c.client, "web", web_service()).await?;
    running_pod(&c.client, "a", "web", "10.1.0.1", true).await?;
    running_pod(&c.client, "b", "web", "10.1.0.2", true).await?;
    slices_where(&c.client, "web", "both pods listed", |s| {
        conditions(s).len() == 2
    })
    .await;
    let relabel = json!({"metadata": {"labels": {"app": "elsewhere"}}});
    Api::<Pod>::namespaced(c.client.clone(), NS)
        .patch("b", &PatchParams::default(), &Patch::Merge(&relabel))
        .await?;
    let slices = slices_where(&c.client, "web", "pod b to leave", |s| {
        conditions(s).keys().cloned().collect::<Vec<_>>() == ["10.1.0.1"]
    })
    .await;
    assert_eq!(slices.len(), 1);
    Ok(())
}

#[tokio::test]
async fn publish_not_ready_addresses_marks_every_pod_ready() -> TestResult {
    let c = cluster().await?;
    let _ctl = start(
        &c,
        ControllerContext::new(CA_PEM),
        "serviceaccount,endpointslice",
    );
    prepare(&c.client).await?;
    let mut spec = web_service();
    spec["publishNotReadyAddresses"] = json!(true);
    create_service(&c.client, "web", spec).await?;
    running_pod(&c.client, "a", "web", "10.1.0.1", true).await?;
    running_pod(&c.client, "b", "web", "10.1.0.2", false).await?;
    let want: Conditions = [
        ("10.1.0.1".to_string(), (true, true, false)),
        ("10.1.0.2".to_string(), (true, false, false)),
    ]
    .into();
    slices_where(&c.client, "web", "both pods ready", |s| {
        conditions(s) == want
    })
    .await;
    Ok(())
}

#[tokio::test]
async fn selectorless_service_with_manual_endpoints_gets_a_mirrored_slice() -> TestResult {
    let c = cluster().await?;
    let _ctl = start(
        &c,
        ControllerContext::new(CA_PEM),
        "endpointslice,endpointslice-mirroring",
    );
    create_service(
        &c.client,
        "ext",
        json!({"ports": [{"name": "http", "port": 80}]}),
    )
    .await?;
    let ep: k8s_openapi::api::core::v1::Endpoints = serde_json::from_value(json!({
        "metadata": {"name": "ext"},
        "subsets": [{"addresses": [{"ip": "192.0.2.10"}], "notReadyAddresses": [{"ip": "192.0.2.11"}],
            "ports": [{"name": "http", "port": 8080}]}]}))?;
    Api::<k8s_openapi::api::core::v1::Endpoints>::namespaced(c.client.clone(), NS)
        .create(&PostParams::default(), &ep)
        .await?;
    let want: Conditions = [
        ("192.0.2.10".to_string(), (true, true, false)),
        ("192.0.2.11".to_string(), (false, false, false)),
    ]
    .into();
    let slices = slices_where(&c.client, "ext", "a mirrored slice", |s| {
        conditions(s) == want
    })
    .await;
    assert_eq!(slices.len(), 1);
    let labels = slices[0].metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels["endpointslice.kubernetes.io/managed-by"],
        "endpointslicemirroring-controller.k8s.io"
    );
    assert_eq!(
        slices[0].ports.clone().unwrap_or_default()[0].port,
        Some(8080)
    );

    // The Endpoints go: so does their mirror.
    Api::<k8s_openapi::api::core::v1::Endpoints>::namespaced(c.client.clone(), NS)
        .delete("ext", &Default::default())
        .await?;
    slices_where(&c.client, "ext", "the mirrored slice to go", |s| {
        s.is_empty()
    })
    .await;
    Ok(())
}
