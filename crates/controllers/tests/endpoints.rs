//! The Endpoints controller (`endpoint`) against a real API server. The test plays the
//! kubelet: pods are bound at creation and get their IP and readiness through `pods/status`.

mod common;

use common::{cluster, start, wait_for, TestResult, CA_PEM};
use k8s_openapi::api::core::v1::{EndpointSubset, Endpoints, Service};
use kube::api::DeleteParams;
use kube::Api;
use rkube_controllers::ControllerContext;
use serde_json::json;

use common::services::{create_pod, create_service, prepare, set_status, NS};

/// Each subset as (ports, ready IPs, not-ready IPs), sorted.
fn shape(subsets: &[EndpointSubset]) -> Vec<(Vec<i32>, Vec<String>, Vec<String>)> {
    let ips = |v: &Option<Vec<k8s_openapi::api::core::v1::EndpointAddress>>| -> Vec<String> {
        v.iter().flatten().map(|a| a.ip.clone()).collect()
    };
    let mut out: Vec<_> = subsets
        .iter()
        .map(|s| {
            (
                s.ports.iter().flatten().map(|p| p.port).collect(),
                ips(&s.addresses),
                ips(&s.not_ready_addresses),
            )
        })
        .collect();
    out.sort();
    out
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn endpoints_list_ready_and_not_ready_pods_per_resolved_port() -> TestResult {
    let c = cluster().await?;
    let _ctl = start(
        &c,
        ControllerContext::new(CA_PEM),
        "serviceaccount,endpoint",
    );
    prepare(&c.client).await?;
    create_service(
        &c.client,
        "web",
        json!({"selector": {"app": "web"}, "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
            "ipFamilies": ["IPv4"], "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}),
    )
    .await?;
    create_pod(&c.client, "a", "web", 8080).await?;
    set_status(&c.client, "a", "10.1.0.1", true).await?;
    create_pod(&c.client, "b", "web", 8080).await?;
    set_status(&c.client, "b", "10.1.0.2", false).await?;
    create_pod(&c.client, "c", "web", 9090).await?;
    set_status(&c.client, "c", "10.1.0.3", true).await?;
    create_pod(&c.client, "other", "db", 8080).await?;
    set_status(&c.client, "other", "10.1.0.9", true).await?;

    let want = vec![
        (vec![8080], strings(&["10.1.0.1"]), strings(&["10.1.0.2"])),
        (vec![9090], strings(&["10.1.0.3"]), strings(&[])),
    ];
    let api = Api::<Endpoints>::namespaced(c.client.clone(), NS);
    let ep = wait_for("the endpoints of web", || {
        let api = api.clone();
        let want = want.clone();
        async move {
            let ep = api.get_opt("web").await.ok()??;
            (shape(ep.subsets.as_deref().unwrap_or_default()) == want).then_some(ep)
        }
    })
    .await;
    let addr = &ep.subsets.unwrap_or_default()[0]
        .addresses
        .clone()
        .unwrap_or_default()[0];
    assert_eq!(addr.node_name.as_deref(), Some("n1"));
    assert_eq!(
        addr.target_ref.as_ref().and_then(|t| t.name.as_deref()),
        Some("a")
    );
    assert!(ep
        .metadata
        .annotations
        .unwrap_or_default()
        .contains_key("endpoints.kubernetes.io/last-change-trigger-time"));

    // The service goes, and its Endpoints with it.
    Api::<Service>::namespaced(c.client.clone(), NS)
        .delete("web", &DeleteParams::default())
        .await?;
    wait_for("the endpoints to go with the service", || {
        let api = api.clone();
        async move { api.get_opt("web").await.ok()?.is_none().then_some(()) }
    })
    .await;
    Ok(())
}

#[tokio::test]
async fn headless_service_endpoints_are_labelled_headless_and_selectorless_ones_left_alone(
) -> TestResult {
    let c = cluster().await?;
    let _ctl = start(
        &c,
        ControllerContext::new(CA_PEM),
        "serviceaccount,endpoint",
    );
    prepare(&c.client).await?;
    create_service(
        &c.client,
        "db",
        json!({"selector": {"app": "db"}, "clusterIP": "None", "clusterIPs": ["None"], "ipFamilies": ["IPv4"]}),
    )
    .await?;
    create_service(&c.client, "manual", json!({"ports": [{"port": 80}]})).await?;
    create_pod(&c.client, "d", "db", 5432).await?;
    set_status(&c.client, "d", "10.1.0.5", true).await?;
    let api = Api::<Endpoints>::namespaced(c.client.clone(), NS);
    let ep = wait_for("the endpoints of db", || {
        let api = api.clone();
        async move {
            let ep = api.get_opt("db").await.ok()??;
            let subsets = ep.subsets.clone().unwrap_or_default();
            (shape(&subsets) == vec![(vec![], strings(&["10.1.0.5"]), vec![])]).then_some(ep)
        }
    })
    .await;
    let labels = ep.metadata.labels.unwrap_or_default();
    assert_eq!(
        labels
            .get("service.kubernetes.io/headless")
            .map(String::as_str),
        Some("")
    );
    assert!(
        api.get_opt("manual").await?.is_none(),
        "a selectorless service gets no Endpoints"
    );
    Ok(())
}
