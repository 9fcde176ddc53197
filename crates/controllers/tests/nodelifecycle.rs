//! `node-lifecycle` and `taint-eviction-controller` against a real API server. The test plays
//! the kubelets: it posts Ready conditions and renews node leases, and stops renewing one.

mod common;

use std::time::Duration;

use common::{cluster, start, wait_for, TestResult, CA_PEM};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::Api;
use rkube_controllers::nodelifecycle::{NodeLifecycleConfig, NODE_STATUS_UNKNOWN, STOPPED_POSTING};
use rkube_controllers::ControllerContext;
use serde_json::json;

fn ctx() -> ControllerContext {
    let mut ctx = ControllerContext::new(CA_PEM);
    ctx.node_lifecycle = NodeLifecycleConfig {
        node_monitor_period: Duration::from_millis(200),
        node_monitor_grace_period: Duration::from_secs(2),
        ..Default::default()
    };
    ctx
}

/// Registers node `name` and posts it Ready, as its kubelet would.
async fn ready_node(client: &kube::Client, name: &str) -> TestResult {
    let api = Api::<Node>::all(client.clone());
    let node: Node = serde_json::from_value(json!({"metadata": {"name": name}}))?;
    api.create(&PostParams::default(), &node).await?;
    let now = Timestamp::now().to_string();
    let status = json!({"status": {"conditions": [{"type": "Ready", "status": "True",
        "reason": "KubeletReady", "message": "kubelet is posting ready status",
        "lastHeartbeatTime": now, "lastTransitionTime": now}]}});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    Ok(())
}

/// Creates or renews node `name`'s lease.
async fn renew_lease(client: &kube::Client, name: &str) -> TestResult {
    let api = Api::<Lease>::namespaced(client.clone(), "kube-node-lease");
    let mut lease: Lease = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "kube-node-lease"},
        "spec": {"holderIdentity": name, "leaseDurationSeconds": 40}}))?;
    lease.spec.get_or_insert_with(Default::default).renew_time = Some(MicroTime(Timestamp::now()));
    match api.get_opt(name).await? {
        None => {
            api.create(&PostParams::default(), &lease).await?;
        }
        Some(old) => {
            lease.metadata.resource_version = old.metadata.resource_version;
            api.replace(name, &PostParams::default(), &lease).await?;
        }
    }
    Ok(())
}

fn taints(node: &Node) -> Vec<String> {
    node.spec
        .iter()
        .flat_map(|s| s.taints.iter().flatten())
        .map(|t| format!("{}:{}", t.key, t.effect))
        .collect()
}

/// A pod on `node` tolerating the unreachable NoExecute taint for `seconds` (None: forever).
fn pod(name: &str, node: &str, seconds: Option<i64>) -> Result<Pod, serde_json::Error> {
    let mut tol = json!({"key": "node.kubernetes.io/unreachable", "operator": "Exists",
        "effect": "NoExecute"});
    if let Some(s) = seconds {
        tol["tolerationSeconds"] = json!(s);
    }
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"nodeName": node, "tolerations": [tol],
            "containers": [{"name": "c", "image": "busybox"}]}}))
}

async fn evicted(api: &Api<Pod>, name: &str) -> Option<Pod> {
    let pod = api.get_opt(name).await.ok()??;
    pod.metadata.deletion_timestamp.is_some().then_some(pod)
}

#[tokio::test]
async fn silent_node_goes_unknown_gets_unreachable_noexecute_and_its_pods_are_evicted_after_their_toleration(
) -> TestResult {
    let c = cluster().await?;
    let _controllers = start(
        &c,
        ctx(),
        "serviceaccount,node-lifecycle,taint-eviction-controller",
    );
    wait_for("serviceaccount default", || {
        let api = Api::<ServiceAccount>::namespaced(c.client.clone(), "default");
        async move { api.get_opt("default").await.ok()? }
    })
    .await;
    for n in ["alive", "silent"] {
        ready_node(&c.client, n).await?;
        renew_lease(&c.client, n).await?;
    }
    // The healthy node keeps renewing, so its zone is not fully disrupted.
    let renewer = {
        let client = c.client.clone();
        tokio::spawn(async move {
            loop {
                let _ = renew_lease(&client, "alive").await;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        })
    };
    let pods = Api::<Pod>::namespaced(c.client.clone(), "default");
    for (name, secs) in [("short", Some(1)), ("long", Some(3)), ("forever", None)] {
        pods.create(&PostParams::default(), &pod(name, "silent", secs)?)
            .await?;
    }

    let nodes = Api::<Node>::all(c.client.clone());
    let node = wait_for(
        "the silent node to be tainted unreachable:NoExecute",
        || {
            let nodes = nodes.clone();
            async move {
                let n = nodes.get("silent").await.ok()?;
                taints(&n)
                    .contains(&"node.kubernetes.io/unreachable:NoExecute".to_string())
                    .then_some(n)
            }
        },
    )
    .await;
    let conds = node
        .status
        .clone()
        .and_then(|s| s.conditions)
        .unwrap_or_default();
    let ready = conds.iter().find(|c| c.type_ == "Ready").expect("Ready");
    assert_eq!(ready.status, "Unknown");
    assert_eq!(ready.reason.as_deref(), Some(NODE_STATUS_UNKNOWN));
    assert_eq!(ready.message.as_deref(), Some(STOPPED_POSTING));
    for ty in ["MemoryPressure", "DiskPressure", "PIDPressure"] {
        let c = conds.iter().find(|c| c.type_ == ty).expect(ty);
        assert_eq!(c.status, "Unknown", "{ty}");
    }
    assert!(taints(&node).contains(&"node.kubernetes.io/unreachable:NoSchedule".to_string()));
    let alive = nodes.get("alive").await?;
    assert!(
        !taints(&alive)
            .iter()
            .any(|t| t.contains("unreachable") || t.contains("not-ready")),
        "{:?}",
        taints(&alive)
    );

    let short = wait_for("pod short to be evicted", || evicted(&pods, "short")).await;
    let target = short
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "DisruptionTarget")
        .expect("DisruptionTarget condition");
    assert_eq!(target.reason.as_deref(), Some("DeletionByTaintManager"));
    assert!(
        evicted(&pods, "long").await.is_none(),
        "long tolerates 3 s, evicted with short"
    );
    wait_for("pod long to be evicted", || evicted(&pods, "long")).await;
    assert!(
        evicted(&pods, "forever").await.is_none(),
        "a pod tolerating forever stays"
    );
    assert!(pods.get_opt("forever").await?.is_some());
    renewer.abort();
    Ok(())
}

#[tokio::test]
async fn ready_node_loses_the_not_ready_taint() -> TestResult {
    let c = cluster().await?;
    let _controllers = start(&c, ctx(), "node-lifecycle");
    let api = Api::<Node>::all(c.client.clone());
    let node: Node = serde_json::from_value(json!({"metadata": {"name": "fresh"}}))?;
    // The create's answer shows what admission did; the controller may act on the node at
    // once.
    let created = api.create(&PostParams::default(), &node).await?;
    assert!(
        taints(&created).contains(&"node.kubernetes.io/not-ready:NoSchedule".to_string()),
        "admission taints a new node not-ready: {:?}",
        taints(&created)
    );
    renew_lease(&c.client, "fresh").await?;
    let now = Timestamp::now().to_string();
    let status = json!({"status": {"conditions": [{"type": "Ready", "status": "True",
        "reason": "KubeletReady", "lastHeartbeatTime": now, "lastTransitionTime": now}]}});
    api.patch_status("fresh", &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    wait_for("the not-ready taint to be removed", || {
        let api = api.clone();
        async move {
            let n = api.get("fresh").await.ok()?;
            taints(&n).is_empty().then_some(())
        }
    })
    .await;
    Ok(())
}
