//! `node-ipam` against a real API server: every node gets its own pod CIDR, in order.

mod common;

use common::{cluster, start, wait_for, TestResult, CA_PEM};
use k8s_openapi::api::core::v1::Node;
use kube::api::{DeleteParams, PostParams};
use kube::Api;
use rkube_controllers::nodeipam::NodeIpamConfig;
use rkube_controllers::ControllerContext;
use serde_json::json;

async fn create_node(api: &Api<Node>, name: &str) -> TestResult {
    let node: Node = serde_json::from_value(json!({"metadata": {"name": name}}))?;
    api.create(&PostParams::default(), &node).await?;
    Ok(())
}

async fn pod_cidrs(api: &Api<Node>, name: &str) -> Vec<String> {
    wait_for(&format!("node {name} to get a pod CIDR"), || async move {
        let n = api.get(name).await.ok()?;
        let spec = n.spec?;
        let cidrs = spec.pod_cidrs.filter(|c| !c.is_empty())?;
        assert_eq!(
            spec.pod_cidr.as_ref(),
            cidrs.first(),
            "podCIDR is podCIDRs[0]"
        );
        Some(cidrs)
    })
    .await
}

#[tokio::test]
async fn every_node_gets_a_distinct_pod_cidr_and_a_new_one_the_next() -> TestResult {
    let c = cluster().await?;
    let api = Api::<Node>::all(c.client.clone());
    // One node already has its CIDR when the controller starts (a restart).
    let mut pre: Node = serde_json::from_value(json!({"metadata": {"name": "old"},
        "spec": {"podCIDR": "10.42.0.0/24", "podCIDRs": ["10.42.0.0/24"]}}))?;
    pre = api.create(&PostParams::default(), &pre).await?;
    assert_eq!(
        pre.spec.and_then(|s| s.pod_cidr).as_deref(),
        Some("10.42.0.0/24")
    );
    for n in ["a", "b"] {
        create_node(&api, n).await?;
    }
    let mut ctx = ControllerContext::new(CA_PEM);
    ctx.node_ipam = NodeIpamConfig::default();
    let _controllers = start(&c, ctx, "node-ipam");
    let a = pod_cidrs(&api, "a").await;
    let b = pod_cidrs(&api, "b").await;
    let mut all = vec![a[0].clone(), b[0].clone()];
    all.sort();
    assert_eq!(
        all,
        ["10.42.1.0/24", "10.42.2.0/24"],
        "distinct, and not old's"
    );
    assert_eq!(pod_cidrs(&api, "old").await, ["10.42.0.0/24"]);

    create_node(&api, "c").await?;
    assert_eq!(pod_cidrs(&api, "c").await, ["10.42.3.0/24"]);

    // A deleted node's subnet is free again once the cursor comes round; the next new node
    // still gets the next one.
    api.delete("a", &DeleteParams::default()).await?;
    create_node(&api, "d").await?;
    assert_eq!(pod_cidrs(&api, "d").await, ["10.42.4.0/24"]);
    Ok(())
}

#[tokio::test]
async fn dual_stack_nodes_get_a_cidr_of_each_family() -> TestResult {
    let c = cluster().await?;
    let api = Api::<Node>::all(c.client.clone());
    let mut ctx = ControllerContext::new(CA_PEM);
    ctx.node_ipam = NodeIpamConfig {
        cluster_cidrs: vec!["10.42.0.0/16".into(), "fd00:42::/48".into()],
        ..Default::default()
    };
    let _controllers = start(&c, ctx, "node-ipam");
    create_node(&api, "a").await?;
    assert_eq!(pod_cidrs(&api, "a").await, ["10.42.0.0/24", "fd00:42::/64"]);
    Ok(())
}
